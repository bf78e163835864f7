/* libFuzzer target for everything a peer can send: frame headers, JSON
 * messages and their field checks (a clone's and an image's description,
 * endpoints), pre-copy page records and whole image streams, raw, growing
 * and page-encoded. The first byte of an input picks the decoder
 * (fuzz_common.h); seeds: gen_corpus.c.
 *
 * Files go only under $FASTMIG_FUZZ_DIR (must start with
 * /dev/shm/fastmig-fuzz; default /dev/shm/fastmig-fuzz-PID), emptied after
 * every input and removed at exit.
 *
 * Linked with -Wl,--wrap=fm_write_all: every byte files.c and pagestream.c
 * write while fm_files_recv runs is counted, and more than the stream's
 * cap (max_total) aborts at once, so a decoder that expands records past
 * the cap is a crash here, not a full /dev/shm. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "image/store.h"
#include "memory/pagerelay.h"
#include "memory/pagestream.h"
#include "fleet/fleet.h"
#include "mobility/coverage.h"
#include "mobility/planner.h"
#include "mobility/trace.h"
#include "scenario/scenario.h"
#include "orch/schema.h"
#include "plane/options.h"
#include "proto/proto.h"
#include "transfer/files.h"

static struct {
        char dir[200], img[260], store_path[260], spare[260];
        int in;      /* memfd: the input as the stream's socket */
        int devnull;
        uint8_t key[FM_HASH_KEY_SIZE];
        fm_pagestore store;
        bool counting;
        uint64_t written, limit;
} g = {.in = -1, .devnull = -1};

int __real_fm_write_all(int fd, const void *buf, size_t len);
int __wrap_fm_write_all(int fd, const void *buf, size_t len)
{
        if (g.counting && (g.written += len) > g.limit) {
                fprintf(stderr, "fuzz_proto: fm_files_recv wrote %llu bytes, more than its cap of %llu\n",
                        (unsigned long long)g.written, (unsigned long long)g.limit);
                abort();
        }
        return __real_fm_write_all(fd, buf, len);
}

static void cleanup(void)
{
        fm_pagestore_close(&g.store);
        if (g.dir[0])
                fm_rm_rf(g.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        const char *d = getenv("FASTMIG_FUZZ_DIR");
        if (d && strncmp(d, "/dev/shm/fastmig-fuzz", 21)) {
                fprintf(stderr, "fuzz_proto: FASTMIG_FUZZ_DIR must start with /dev/shm/fastmig-fuzz\n");
                exit(2);
        }
        if (d)
                snprintf(g.dir, sizeof(g.dir), "%s", d);
        else
                snprintf(g.dir, sizeof(g.dir), "/dev/shm/fastmig-fuzz-%d", (int)getpid());
        snprintf(g.img, sizeof(g.img), "%s/img", g.dir);
        snprintf(g.store_path, sizeof(g.store_path), "%s/store", g.dir);
        snprintf(g.spare, sizeof(g.spare), "%s/.spare", g.dir);
        fm_error e = {0};
        if (fm_mkdir_p(g.dir, 0700) < 0 || (g.in = memfd_create("fuzz-input", MFD_CLOEXEC)) < 0 ||
            (g.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0 ||
            fm_pagestore_open(&g.store, g.store_path, FZ_STORE_PAGES, &e) < 0) {
                fprintf(stderr, "fuzz_proto: setting up %s: %s %s\n", g.dir, strerror(errno), e.msg);
                exit(2);
        }
        atexit(cleanup);
        fz_key(g.key);
        return 0;
}

/* ---- JSON ---- */

static void endpoint(const char *s)
{
        char addr[16]; /* as migrate.h and push.h hold it */
        uint16_t port;
        fm_error e = {0};
        fm_parse_endpoint(s, addr, sizeof(addr), &port, &e);
}

static void json(const uint8_t *data, size_t size)
{
        fm_error e = {0};
        uint8_t t;
        uint32_t l;
        if (size >= FM_FRAME_HEADER_LEN)
                fm_frame_header_parse(data, &t, &l, &e);
        json_object *o = NULL;
        if (fm_msg_parse((const char *)data, size, &o, &e) < 0)
                return;
        const char *s;
        int64_t n;
        fm_json_str(o, "op", true, 32, &s, &e);
        fm_json_str(o, "name", false, 63, &s, &e);
        fm_json_int(o, "size", false, 0, 1 << 30, &n, &e);
        fm_reply_check(o, &e);
        if (fm_json_str(o, "to", false, 64, &s, &e) == 0 && s)
                endpoint(s);
        /* as agent.c takes them: prepare's "clone" (any value), image_*'s
         * "image" (an object), and the object itself (a clone link file, an
         * image's meta.json) */
        json_object *m = NULL;
        fm_clone c;
        fm_image im;
        if (json_object_object_get_ex(o, "clone", &m) && m)
                fm_clone_from_json(m, &c, &e);
        if (json_object_object_get_ex(o, "image", &m) && json_object_is_type(m, json_type_object))
                fm_image_from_json(m, &im, &e);
        fm_clone_from_json(o, &c, &e);
        fm_image_from_json(o, &im, &e);
        json_object_put(o);
}

/* ---- page records and streams ---- */

static void store_reset(void)
{
        fm_error e = {0};
        fm_pagestore_close(&g.store);
        if (fm_pagestore_open(&g.store, g.store_path, FZ_STORE_PAGES, &e) < 0) {
                fprintf(stderr, "fuzz_proto: %s\n", e.msg);
                abort();
        }
}

/* One pre-copy round's DATA frame, as target.c decodes it (to /dev/null,
 * literal pages into the store); its rebuilt size is computed first and a
 * round that rebuilds more than 4 MiB is not decoded (zero records expand
 * 4096-fold: bounded work per input). */
static void round_records(const uint8_t *data, size_t size)
{
        fm_error e = {0};
        uint64_t n = 0;
        fm_pagestream_stats st = {0};
        if (fm_pagestream_decoded_size(data, size, &n, &e) == 0 && n <= (4u << 20))
                fm_pagestream_decode(data, size, g.key, &g.store, g.devnull, NULL, &st, &e);
}

static int feed(const uint8_t *data, size_t size)
{
        if (ftruncate(g.in, 0) < 0 || pwrite(g.in, data, size, 0) != (ssize_t)size || lseek(g.in, 0, SEEK_SET) < 0) {
                perror("fuzz_proto: memfd");
                abort();
        }
        return g.in;
}

static void stream(const uint8_t *data, size_t size, fm_page_decoder *dec)
{
        fm_error e = {0};
        uint64_t bytes = 0;
        int fd = feed(data, size);
        g.written = 0;
        g.limit = FZ_ROOM;
        g.counting = true;
        fm_files_recv(fd, g.img, FZ_ROOM, dec, &bytes, &e);
        g.counting = false;
        fm_rm_rf(g.img);
}

/* An input's leading u16 n and n bytes of round records: into a fresh
 * store (as the rounds before a final stream fill it); the rest is left. */
static void rounds_first(const uint8_t **data, size_t *size)
{
        size_t n = *size >= 2 ? (size_t)(*data)[0] << 8 | (*data)[1] : 0;
        *data += *size >= 2 ? 2 : *size;
        *size -= *size >= 2 ? 2 : *size;
        if (n > *size)
                n = *size;
        store_reset();
        round_records(*data, n);
        *data += n;
        *size -= n;
}

static void stream_pages(const uint8_t *data, size_t size)
{
        rounds_first(&data, &size);
        /* the spare the target allocates after each round (fallocate) */
        int sp = open(g.spare, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (sp < 0 || fallocate(sp, 0, 0, FZ_SPARE_BYTES) < 0) {
                perror("fuzz_proto: spare");
                abort();
        }
        close(sp);
        fm_page_decoder dec = {.key = g.key, .store = &g.store, .spare = g.spare};
        stream(data, size, &dec);
        unlink(g.spare);
}

static void lazy(const uint8_t *data, size_t size)
{
        /* the whole input as a CRIU pagemap image (what the source reads to
         * check each request) */
        fm_lazy_map lm;
        fm_error pe = {0};
        if (fm_lazy_map_parse(data, size, &lm, &pe) == 0) {
                for (size_t i = 0; i < lm.n; i++)
                        if (!fm_lazy_map_covers(&lm, lm.r[i].start, 1) || (i && lm.r[i].start <= lm.r[i - 1].end)) {
                                fprintf(stderr, "fuzz_proto: lazy ranges not sorted and merged\n");
                                abort();
                        }
                fm_lazy_map_free(&lm);
        }
        rounds_first(&data, &size);
        fm_error e = {0};
        fm_lazy_req q, a;
        if (size >= FM_LAZY_REQ_LEN && fm_lazy_req_parse(data, FM_LAZY_REQ_LEN, &q, &e) == 0) {
                uint8_t back[FM_LAZY_REQ_LEN];
                fm_lazy_req_build(back, &q);
                if (memcmp(back, data, FM_LAZY_REQ_LEN)) {
                        fprintf(stderr, "fuzz_proto: a lazy-pages request does not build back\n");
                        abort();
                }
        }
        data += size >= FM_LAZY_REQ_LEN ? FM_LAZY_REQ_LEN : size;
        size -= size >= FM_LAZY_REQ_LEN ? FM_LAZY_REQ_LEN : size;
        fm_lazy_req want = {.id = FZ_LAZY_Q_ID, .vaddr = FZ_LAZY_Q_VADDR, .nr = FZ_LAZY_Q_NR};
        size_t off = 0;
        uint64_t got = 0;
        fm_pagestream_stats st = {0};
        uint64_t xh = 0;
        if (fm_lazy_answer_parse(data, size, &want, &a, &xh, &off, &e) == 0 &&
            fm_lazy_records_size(data + off, size - off, a.nr * FM_PAGE_SIZE, &got, &e) == 0)
                fm_pagestream_decode(data + off, size - off, g.key, &g.store, g.devnull, NULL, &st, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size == 0)
                return 0;
        int mode = data[0] % FZ_MODES;
        data++;
        size--;
        switch (mode) {
        case FZ_JSON:
                json(data, size);
                break;
        case FZ_ENDPOINT: {
                char s[128];
                size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
                memcpy(s, data, n);
                s[n] = '\0';
                endpoint(s);
                break;
        }
        case FZ_RECORDS:
                store_reset();
                round_records(data, size);
                break;
        case FZ_STREAM:
                stream(data, size, NULL);
                break;
        case FZ_STREAM_PAGES:
                stream_pages(data, size);
                break;
        case FZ_LAZY:
                lazy(data, size);
                break;
        case FZ_API: {
                json_object *o = NULL;
                fm_error e = {0};
                if (fm_msg_parse((const char *)data, size, &o, &e) < 0)
                        break;
                if (fm_validate(o, fm_api_registration, &e) == 0)
                        fm_api_registration_check(o, &e);
                if (fm_validate(o, fm_api_subscription, &e) == 0)
                        fm_api_subscription_check(o, 1700000000000, &e);
                fm_validate(o, fm_api_migration, &e);
                fm_validate(o, fm_api_image_placement, &e);
                fm_validate(o, fm_api_cell_change, &e);
                fm_validate(o, fm_api_trajectory, &e);
                fm_validate(o, fm_api_position, &e);
                fm_api_ho_status_normalize(o);
                fm_validate(o, fm_api_cell_change_notification, &e);
                json_object *opts = NULL;
                fm_migrate_opts mo = {0};
                fm_migrate_opts_from_json(json_object_object_get_ex(o, "options", &opts) ? opts : o, &mo, &e);
                json_object_put(o);
                break;
        }
        case FZ_COVERAGE: {
                json_object *o = NULL;
                fm_error e = {0};
                fm_coverage c;
                if (fm_json_parse_text((const char *)data, size, &o, &e) == 0 && fm_coverage_parse(o, NULL, &c, &e) == 0) {
                        json_object *back = fm_coverage_json(&c);
                        fm_coverage d;
                        if (fm_coverage_parse(back, NULL, &d, &e) < 0 || d.n != c.n) {
                                fprintf(stderr, "fuzz_proto: a coverage map read does not read back: %s\n", e.msg);
                                abort();
                        }
                        const fm_cell *cur = NULL;
                        for (int x = -1000; x <= 1000; x += 250)
                                cur = fm_coverage_locate(&c, x, x / 2, cur);
                        fm_coverage_free(&d);
                        json_object_put(back);
                        fm_coverage_free(&c);
                }
                json_object_put(o);
                break;
        }
        case FZ_TRACE: {
                if (size < 2)
                        break;
                fm_trace_format f = (fm_trace_format)(data[0] % 3);
                const char *vehicle = data[1] & 1 ? "car0" : NULL;
                fm_trace t;
                fm_error e = {0};
                if (fm_trace_parse((const char *)data + 2, size - 2, f, vehicle, &t, &e) < 0)
                        break;
                json_object *m = NULL;
                fm_coverage c;
                if (fm_json_parse_text(FZ_TRACE_MAP, strlen(FZ_TRACE_MAP), &m, &e) < 0 ||
                    fm_coverage_parse(m, NULL, &c, &e) < 0) {
                        fprintf(stderr, "fuzz_proto: FZ_TRACE_MAP: %s\n", e.msg);
                        abort();
                }
                if (fm_trace_resolve(&t, &c, &e) == 0) {
                        fm_handover_plan *h = NULL;
                        size_t nh = 0;
                        if (fm_plan_handovers(&t, &c, 3000, &h, &nh, &e) == 0)
                                for (size_t i = 0; i < nh; i++)
                                        if (h[i].deadline_ms < t.p[0].t_ms || h[i].deadline_ms > t.p[t.n - 1].t_ms) {
                                                fprintf(stderr, "fuzz_proto: a deadline outside its trace\n");
                                                abort();
                                        }
                        free(h);
                        fm_trace_on_path(&t, t.p[t.n / 2].t_ms, "c2");
                }
                json_object *back = fm_trace_json(&t);
                const char *bt = json_object_to_json_string(back);
                fm_trace u;
                if (fm_trace_parse(bt, strlen(bt), FM_TRACE_JSON, NULL, &u, &e) < 0 || u.n != t.n) {
                        fprintf(stderr, "fuzz_proto: a trace read does not read back: %s\n", e.msg);
                        abort();
                }
                fm_trace_free(&u);
                json_object_put(back);
                json_object_put(m);
                fm_coverage_free(&c);
                fm_trace_free(&t);
                break;
        }
        case FZ_SCENARIO: {
                fm_scenario s;
                fm_error e = {0};
                if (fm_scenario_parse((const char *)data, size, NULL, 0, &s, &e) == 0)
                        fm_scenario_free(&s);
                break;
        }
        case FZ_FLEET: {
                fm_fleet f;
                fm_error e = {0};
                if (fm_fleet_parse((const char *)data, size, &f, &e) == 0) {
                        /* what was read writes and reads back */
                        json_object *o = fm_fleet_json(&f);
                        const char *t = json_object_to_json_string(o);
                        fm_fleet g;
                        if (fm_fleet_parse(t, strlen(t), &g, &e) < 0 || memcmp(&f, &g, sizeof(f))) {
                                fprintf(stderr, "fuzz_proto: a fleet read does not read back: %s\n", e.msg);
                                abort();
                        }
                        json_object_put(o);
                }
                break;
        }
        }
        return 0;
}
