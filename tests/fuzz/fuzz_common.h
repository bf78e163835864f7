/* What fuzz_proto.c and gen_corpus.c agree on: how an input is split and
 * the page key both use.
 *
 * An input is one selector byte (taken modulo FZ_MODES) and a payload:
 *   FZ_JSON          a peer's JSON message: field checks, the reply check,
 *                    its "clone" (prepare) and "image" (image_*) objects,
 *                    its "to" endpoint (migrate, image_push)
 *   FZ_ENDPOINT      an "addr:port" string
 *   FZ_RECORDS       page records as one DATA frame of a pre-copy round
 *   FZ_STREAM        a file stream (put_images) to a target without a page store
 *   FZ_STREAM_PAGES  u16 big-endian n, n bytes of pre-copy round records (fill
 *                    the page store), then a file stream decoded with that
 *                    store, the key and a spare file, as target.c does
 *   FZ_FLEET         a fleet file (src/fleet/fleet.h), written back when read
 *   FZ_LAZY          a lazy final dump's exchange (src/memory/pagerelay.h): u16
 *                    big-endian n, n bytes of pre-copy round records (fill the
 *                    page store), a 24-byte request as the source reads it,
 *                    then the first frame of an answer to FZ_LAZY_Q as the
 *                    target reads it (header, sizes, records decoded)
 *   FZ_API           a request body of the orchestrator's API, checked against
 *                    each of its tables and rules (src/orch/schema.h) and as a
 *                    migration's options (src/plane/options.h)
 *   FZ_COVERAGE      a coverage map's text (src/mobility/coverage.h), written
 *                    back when read, points located in it
 *   FZ_TRACE         a format byte (csv, json, fcd: modulo 3), a vehicle
 *                    byte (odd: "car0", even: none), then a trace's text
 *                    (src/mobility/trace.h), resolved against a fixed map and
 *                    planned when read
 *   FZ_SCENARIO      a scenario file's text (src/scenario/scenario.h), with
 *                    no trace files allowed */
#pragma once
#include <stdint.h>

#include "memory/pagestore.h"

/* FZ_TRACE's map: three cells on two hosts (a polygon, a circle, a name) */
#define FZ_TRACE_MAP                                                                                          \
        "{\"cells\":[{\"id\":\"c1\",\"host\":\"mec1\",\"polygon\":[[-10,-100],[500,-100],[500,100],[-10,100]]}," \
        "{\"id\":\"c2\",\"host\":\"mec2\",\"center\":[800,0],\"radius\":350},{\"id\":\"c3\",\"host\":\"mec2\"}]}"

enum { FZ_JSON, FZ_ENDPOINT, FZ_RECORDS, FZ_STREAM, FZ_STREAM_PAGES, FZ_FLEET, FZ_LAZY, FZ_API, FZ_COVERAGE, FZ_TRACE, FZ_SCENARIO, FZ_MODES };

/* the request FZ_LAZY's answers answer */
#define FZ_LAZY_Q_ID ((1ull << 8) | 1u)
#define FZ_LAZY_Q_VADDR 0x7f0000000000ull
#define FZ_LAZY_Q_NR 4u

/* max_total of fm_files_recv: every valid seed fits, an input of max_len
 * (80000) can exceed it with raw bytes, and a decoder that writes past it is
 * caught (fuzz_proto.c) after at most one more flush (1 MiB) */
#define FZ_ROOM (64u << 10)
#define FZ_STORE_PAGES 256 /* pages of the pre-copy store */
#define FZ_SPARE_BYTES (8u * FM_PAGE_SIZE)

static inline void fz_key(uint8_t key[FM_HASH_KEY_SIZE])
{
        for (unsigned i = 0; i < FM_HASH_KEY_SIZE; i++)
                key[i] = (uint8_t)(i * 131u + 7u);
}
