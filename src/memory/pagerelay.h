/* The lazy final dump's pages, between two agents.
 *
 *   target: criu lazy-pages ──CRIU's page-server protocol──► target agent
 *           ──frames──► source agent ──CRIU's page-server protocol──► criu dump --lazy-pages
 *
 * CRIU's lazy-pages daemon asks its page server for pages (a task, an
 * address, a count). The target agent is that page server: it forwards
 * each request; the source agent reads the pages from the frozen dump's own
 * page server (they are still in the frozen tasks' memory) and answers with
 * page records (pagestream.h), in which a page the target holds since
 * pre-copy is a 17-byte reference. The target rebuilds the pages into the
 * daemon's socket. Byte layout: docs/PROTOCOL.md, "Lazy pages". */
#pragma once
#include "memory/pagestream.h"

/* CRIU's struct page_server_iov (criu/page-xfer.c): native byte order */
typedef struct fm_criu_iov {
        uint32_t cmd;
        uint32_t pad;
        uint64_t nr_pages;
        uint64_t vaddr;
        uint64_t dst_id;
} fm_criu_iov;
_Static_assert(sizeof(fm_criu_iov) == 32, "CRIU's page_server_iov is 32 bytes");

#define FM_CRIU_PS_IOV_ADD_F 6
#define FM_CRIU_PS_IOV_GET 7
#define FM_CRIU_PS_IOV_CLOSE 0x1023
#define FM_CRIU_PS_IOV_FORCE_CLOSE 0x1024
#define FM_CRIU_PE_PRESENT (1u << 2)

/* CRIU's daemon asks for 4 MiB at most (MAX_XFER_LEN) */
#define FM_LAZY_MAX_PAGES 1024u

/* A request between the agents: id, vaddr, nr_pages, each u64 big-endian */
#define FM_LAZY_REQ_LEN 24
typedef struct fm_lazy_req {
        uint64_t id;    /* CRIU's dst_id: the task's id in the images and a type */
        uint64_t vaddr; /* page-aligned */
        uint64_t nr;    /* 1..FM_LAZY_MAX_PAGES */
} fm_lazy_req;

void fm_lazy_req_build(uint8_t out[FM_LAZY_REQ_LEN], const fm_lazy_req *q);
/* Pure (fuzzed): exactly FM_LAZY_REQ_LEN bytes, an aligned address, a count in range. */
int fm_lazy_req_parse(const uint8_t *buf, size_t len, fm_lazy_req *q, fm_error *e);

/* An answer's first frame starts with the request as answered (its count:
 * the pages that follow, 1..q's) and the XXH64 of those pages, u64
 * big-endian; records follow, then more frames of records. */
#define FM_LAZY_ANSWER_LEN (FM_LAZY_REQ_LEN + 8)
/* Pure (fuzzed): the header of the answer to q, its pages' XXH64 and where
 * its records start. */
int fm_lazy_answer_parse(const uint8_t *buf, size_t len, const fm_lazy_req *q, fm_lazy_req *a, uint64_t *xxh64,
                         size_t *records, fm_error *e);
/* What one frame of an answer's records rebuilds, checked against what is
 * still due: whole pages, at least one, no more than left. Pure (fuzzed). */
int fm_lazy_records_size(const uint8_t *buf, size_t len, uint64_t left, uint64_t *size, fm_error *e);

/* What CRIU's page server may be asked for: the lazy entries of a task's
 * pagemap image (pagemap-ID.img in the dump's directory), merged and
 * sorted. CRIU crashes on a task it does not know and waits for ever on a
 * range it does not hold lazily, so the source checks every request. */
typedef struct fm_lazy_range {
        uint64_t start, end;
} fm_lazy_range;
typedef struct fm_lazy_map {
        uint64_t id;
        fm_lazy_range *r;
        size_t n;
} fm_lazy_map;
/* Pure (fuzzed): a CRIU pagemap image (two magics, then length-prefixed
 * protobuf records: a pagemap_head, then pagemap_entry). */
int fm_lazy_map_parse(const uint8_t *buf, size_t len, fm_lazy_map *m, fm_error *e);
bool fm_lazy_map_covers(const fm_lazy_map *m, uint64_t vaddr, uint64_t nr);
void fm_lazy_map_free(fm_lazy_map *m);

typedef struct fm_pagerelay_stats {
        uint64_t requests, pages;
        fm_pagestream_stats st;
        int criu_status; /* what CRIU's page server said when it was closed */
} fm_pagerelay_stats;

/* Source: answers the peer's requests (peer_fd) with the pages of CRIU's
 * page server (criu_fd), each checked against the lazy entries of the
 * dump's pagemap images in images, until the peer ends its stream; then closes CRIU's
 * page server (the dump then ends) and replies with CRIU's status. held:
 * what the peer holds (updated with every literal); corrupt_one (test
 * hook): flip a byte of the first literal page sent. Another thread stops
 * it by shutting the descriptors down. */
int fm_pagerelay_source(int peer_fd, int criu_fd, const char *images, const uint8_t *key, fm_hashset *held,
                        bool compress, bool corrupt_one, fm_pagerelay_stats *st, fm_error *e);
/* Target: answers the lazy-pages daemon (daemon_fd) with pages asked of the
 * peer (peer_fd), rebuilt with the page store and checked against the
 * sender's XXH64 before the daemon gets any of them (a mismatch ends it:
 * the daemon fails, the migration rolls back); on the daemon's close, ends the peer's stream and passes its
 * status on. */
int fm_pagerelay_target(int daemon_fd, int peer_fd, const uint8_t *key, fm_pagestore *store, fm_pagerelay_stats *st,
                        fm_error *e);
