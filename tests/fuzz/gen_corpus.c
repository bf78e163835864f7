/* Writes the seed corpus of fuzz_proto.c (tests/fuzz/corpus/), each input a
 * selector byte (fuzz_common.h) and bytes made by the project's own
 * encoders: fm_files_send (raw, growing, page-encoded), fm_pagestream_put_page
 * (a pre-copy round), fm_clone_json/fm_image_json in the requests source.c
 * and push.c send. Every stream is decoded back with fm_files_recv and
 * compared with the files it came from before it is written.
 *
 * Regenerate (from the repository's root):
 *   bash tests/fuzz/gen_corpus.sh
 * Scratch files: /dev/shm/fastmig-fuzz-gen-PID, removed at the end. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "fuzz_common.h"
#include "fleet/fleet.h"
#include "image/store.h"
#include "memory/pagerelay.h"
#include "memory/pagestream.h"
#include "proto/proto.h"
#include "transfer/files.h"

static char work[200], corpus[600];
static uint8_t key[FM_HASH_KEY_SIZE];

#define DIE(...)                                                                                                       \
        do {                                                                                                           \
                fprintf(stderr, "gen_corpus: " __VA_ARGS__);                                                           \
                fputc('\n', stderr);                                                                                   \
                fm_rm_rf(work);                                                                                        \
                exit(1);                                                                                               \
        } while (0)

/* ---- a growable byte buffer ---- */

typedef struct buf {
        uint8_t *p;
        size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
        if (b->n + n > b->cap) {
                b->cap = (b->n + n) * 2 + 4096;
                if (!(b->p = realloc(b->p, b->cap)))
                        DIE("out of memory");
        }
        memcpy(b->p + b->n, d, n);
        b->n += n;
}

static void put_json(buf *b, json_object *o)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        put(b, s, strlen(s));
        json_object_put(o);
}

static void seed(const char *name, uint8_t mode, const buf *b)
{
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", corpus, name);
        buf out = {0};
        put(&out, &mode, 1);
        put(&out, b->p, b->n);
        if (out.n > 70000)
                DIE("%s: %zu bytes, more than a seed may have", name, out.n);
        if (fm_write_file(path, (const char *)out.p, out.n, 0644) < 0)
                DIE("writing %s: %s", path, strerror(errno));
        printf("%-28s %6zu bytes\n", name, out.n);
        free(out.p);
}

/* ---- file contents ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

enum pg { PG_ZERO, PG_RANDOM, PG_TEXT };
static void page(uint8_t *p, enum pg kind)
{
        for (size_t i = 0; i < FM_PAGE_SIZE; i++)
                p[i] = kind == PG_ZERO ? 0 : kind == PG_RANDOM ? (uint8_t)next() : (uint8_t)("fastmig page "[i % 13]);
        if (kind == PG_TEXT) /* compressible, yet not the same page each time */
                memcpy(p, &(uint64_t){next()}, 8);
}

static void write_file(const char *dir, const char *name, const uint8_t *d, size_t n)
{
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (fm_write_file(path, (const char *)d, n, 0600) < 0)
                DIE("writing %s: %s", path, strerror(errno));
}

static void fresh_dir(char *dir, size_t n, const char *name)
{
        snprintf(dir, n, "%s/%s", work, name);
        fm_rm_rf(dir);
        if (fm_mkdir_p(dir, 0700) < 0)
                DIE("creating %s: %s", dir, strerror(errno));
}

/* ---- streams: fm_files_send into a socket, collected by a thread ---- */

typedef struct reader {
        int fd;
        buf b;
} reader;

static void *read_all(void *arg)
{
        reader *r = arg;
        uint8_t tmp[65536];
        ssize_t n;
        while ((n = read(r->fd, tmp, sizeof(tmp))) > 0)
                put(&r->b, tmp, (size_t)n);
        return NULL;
}

typedef struct ender {
        fm_files_live *live;
} ender;

static void *end_writer(void *arg)
{
        usleep(200 * 1000); /* the sender has sent the growing file's whole pages by now */
        fm_files_live_end(((ender *)arg)->live, true);
        return NULL;
}

static buf send_dir(const char *dir, fm_page_codec *codec, bool live)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                DIE("socketpair: %s", strerror(errno));
        reader rd = {.fd = sv[1]};
        pthread_t rt, wt;
        pthread_create(&rt, NULL, read_all, &rd);
        fm_files_live lv;
        ender en = {&lv};
        fm_error e = {0};
        if (live) {
                if (fm_files_live_watch(&lv, dir, &e) < 0)
                        DIE("%s", e.msg);
                pthread_create(&wt, NULL, end_writer, &en);
        }
        uint64_t bytes = 0;
        if (fm_files_send(sv[0], dir, codec, live ? &lv : NULL, &bytes, &e) < 0)
                DIE("sending %s: %s", dir, e.msg);
        if (live) {
                pthread_join(wt, NULL);
                fm_files_live_close(&lv);
        }
        shutdown(sv[0], SHUT_WR);
        pthread_join(rt, NULL);
        close(sv[0]);
        close(sv[1]);
        return rd.b;
}

/* Decodes s back (after round, if any, went into a fresh store) and checks
 * that every file of dir came out the same; returns the decoder's counts. */
static fm_pagestream_stats check_stream(const char *dir, const buf *s, const buf *round, bool paged, int expect_err)
{
        char out[600], store_path[600];
        fresh_dir(out, sizeof(out), "check");
        snprintf(store_path, sizeof(store_path), "%s/check-store", work);
        fm_error e = {0};
        fm_pagestore store;
        if (fm_pagestore_open(&store, store_path, FZ_STORE_PAGES, &e) < 0)
                DIE("%s", e.msg);
        fm_pagestream_stats st = {0};
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (round && round->n && fm_pagestream_decode(round->p, round->n, key, &store, devnull, NULL, &st, &e) < 0)
                DIE("round: %s", e.msg);
        close(devnull);
        int p[2];
        if (pipe(p) < 0)
                DIE("pipe: %s", strerror(errno));
        /* the writer: a child (a stream is larger than a pipe holds) */
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                _exit(fm_write_all(p[1], s->p, s->n) < 0);
        }
        close(p[1]);
        fm_page_decoder dec = {.key = key, .store = &store};
        uint64_t bytes = 0;
        int r = fm_files_recv(p[0], out, FZ_ROOM, paged ? &dec : NULL, &bytes, &e);
        close(p[0]);
        waitpid(pid, NULL, 0);
        fm_pagestore_close(&store);
        unlink(store_path);
        if (expect_err) {
                if (r != -expect_err)
                        DIE("the stream of %s: want error %d, got %d (%s)", dir, expect_err, -r, e.msg);
                fm_rm_rf(out);
                return dec.st;
        }
        if (r < 0)
                DIE("decoding the stream of %s: %s", dir, e.msg);
        DIR *d = opendir(dir);
        struct dirent *de;
        int files = 0;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char a[700], b[700];
                snprintf(a, sizeof(a), "%s/%s", dir, de->d_name);
                snprintf(b, sizeof(b), "%s/%s", out, de->d_name);
                char *ta = NULL, *tb = NULL;
                int na = fm_read_file(a, &ta, 1 << 20), nb = fm_read_file(b, &tb, 1 << 20);
                if (na < 0 || na != nb || memcmp(ta, tb, (size_t)na))
                        DIE("%s came out different", b);
                free(ta);
                free(tb);
                files++;
        }
        if (d)
                closedir(d);
        if (files < 2)
                DIE("%s: %d files", dir, files);
        fm_rm_rf(out);
        return dec.st;
}

static bool contains(const buf *b, const char *s)
{
        return memmem(b->p, b->n, s, strlen(s)) != NULL;
}

/* ---- the seeds ---- */

static void json_seeds(void)
{
        /* the prepare request of a clone, as source.c's prepare_call builds it */
        fm_clone cl = {.app = "3f1c5e0a9b7d24c68e1f0a2b3c4d5e6f", .base = "0123456789abcdef0123456789abcdef",
                       .app_name = "video", .base_name = "debian"};
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("prepare"));
        json_object_object_add(req, "name", json_object_new_string("svc1"));
        json_object_object_add(req, "config", json_object_new_string("lxc.uts.name = svc1\nlxc.net.0.type = veth\n"));
        json_object_object_add(req, "src_lxcpath", json_object_new_string("/var/lib/fastmig/mec1/lxc"));
        json_object_object_add(req, "strategy", json_object_new_string("auto"));
        json_object_object_add(req, "own_bytes", json_object_new_int64(123456));
        json_object_object_add(req, "clone", fm_clone_json(&cl));
        json_object_object_add(req, "app_bytes", json_object_new_int64(52428800));
        json_object_object_add(req, "base_bytes", json_object_new_int64(104857600));
        buf b = {0};
        put_json(&b, req);
        seed("json-prepare-clone", FZ_JSON, &b);
        b.n = 0;
        /* the clone link file (fm_clone_write), a bare object */
        put_json(&b, fm_clone_json(&cl));
        seed("json-clone-link", FZ_JSON, &b);
        b.n = 0;

        /* image_stage of an app image, as push.c's fm_image_send builds it */
        fm_image im = {.name = "video", .kind = "app", .digest = "3f1c5e0a9b7d24c68e1f0a2b3c4d5e6f",
                       .base = "0123456789abcdef0123456789abcdef", .base_name = "debian", .bytes = 52428800,
                       .files = 1234, .tree_bytes = 98765432, .created = 1700000000, .init = "/usr/bin/fm-seqecho"};
        req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("image_stage"));
        json_object_object_add(req, "image", fm_image_json(&im));
        json_object_object_add(req, "fresh", json_object_new_boolean(1));
        put_json(&b, req);
        seed("json-image-stage", FZ_JSON, &b);
        b.n = 0;
        /* a base image's meta.json, a bare object */
        fm_image base = {.name = "debian", .kind = "base", .digest = "0123456789abcdef0123456789abcdef",
                         .bytes = 104857600, .files = 20000, .tree_bytes = 300000000, .created = 1700000000};
        put_json(&b, fm_image_json(&base));
        seed("json-image-base", FZ_JSON, &b);
        b.n = 0;

        /* fastmig's migrate request (its "to" goes to fm_parse_endpoint) */
        req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("migrate"));
        json_object_object_add(req, "name", json_object_new_string("svc1"));
        json_object_object_add(req, "to", json_object_new_string("10.77.2.2:7070"));
        json_object_object_add(req, "to_host", json_object_new_string("mec2"));
        put_json(&b, req);
        seed("json-migrate", FZ_JSON, &b);
        b.n = 0;
        put(&b, "{\"op\":\"ping\"}", 13);
        seed("json-ping", FZ_JSON, &b);
        b.n = 0;
        put(&b, "10.77.2.2:7070", 14);
        seed("endpoint", FZ_ENDPOINT, &b);
        b.n = 0;

        /* a fleet file with every optional field, read and written back by
         * fm_fleet so that the seed is what fastmig itself writes */
        static const char fleet_text[] =
                "{\"fleet\":\"edge\",\"pki\":\"/etc/fastmig/pki\",\"certificate\":\"alice\","
                "\"agents_netns\":\"fm-core\",\"users_netns\":\"fm-ue\","
                "\"services\":{\"subnet\":\"10.78.0.0/24\",\"gateway\":\"10.78.0.1\"},"
                "\"steering\":{\"kind\":\"command\",\"command\":\"/usr/local/sbin/fastmig-steer\",\"timeout_ms\":2000},"
                "\"hosts\":[{\"name\":\"mec1\",\"agent\":\"10.77.1.2:7070\",\"bridge\":\"fmbr0\","
                "\"lxcpath\":\"/var/lib/lxc\",\"images\":\"/run/fastmig/images\",\"store\":\"/var/lib/fastmig/store\","
                "\"shared\":\"/mnt/shared\",\"netns\":\"fm-mec1\",\"state\":\"/var/lib/fastmig/state\"},"
                "{\"name\":\"mec2\",\"agent\":\"10.77.2.2\",\"route_via\":\"10.77.2.9\"}]}";
        fm_fleet f;
        fm_error fe = {0};
        if (fm_fleet_parse(fleet_text, strlen(fleet_text), &f, &fe) < 0)
                DIE("the fleet seed: %s", fe.msg);
        put_json(&b, fm_fleet_json(&f));
        seed("fleet", FZ_FLEET, &b);
        /* the orchestrator's request bodies, one of each with every field */
        static const char *const api[][2] = {
                {"api-registration",
                 "{\"serviceConsumerId\":{\"appInstanceId\":\"app-1\"},\"deviceInformation\":[{\"associateId\":"
                 "{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.77.0.2\"},\"appMobilityServiceLevel\":"
                 "\"APP_MOBILITY_WITHOUT_CONFIRMATION\",\"contextTransferState\":\"NOT_TRANSFERRED\"}],\"expiryTime\":60,"
                 "\"fastmig\":{\"container\":\"svc\",\"downtimeBudgetMs\":500,\"storageLatencyMs\":5}}"},
                {"api-subscription",
                 "{\"subscriptionType\":\"MobilityProcedureSubscription\",\"callbackReference\":\"http://127.0.0.1:8/cb\","
                 "\"requestTestNotification\":true,\"filterCriteria\":{\"appInstanceId\":\"app-1\",\"associateId\":"
                 "[{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.77.0.2\"}],\"mobilityStatus\":[\"INTERHOST_MOVEOUT_TRIGGERED\"]},"
                 "\"expiryDeadline\":{\"seconds\":4000000000,\"nanoSeconds\":0}}"},
                {"api-migration",
                 "{\"container\":\"svc\",\"to\":\"mec2\",\"from\":\"mec1\",\"options\":{\"mode\":\"precopy\","
                 "\"restore\":\"lazy\",\"dump\":\"auto\",\"compress\":\"lz4\",\"strategy\":\"auto\",\"max_rounds\":8,"
                 "\"dirty_threshold\":1024,\"min_shrink\":0.9,\"images_lead_ms\":100,\"storage_latency_ms\":5,"
                 "\"stay_shared\":false,\"probe\":true,\"probe_interval_ms\":1}}"},
        };
        for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++) {
                b.n = 0;
                put(&b, api[i][1], strlen(api[i][1]));
                seed(api[i][0], FZ_API, &b);
        }
        /* a coverage map and a trace of each form */
        b.n = 0;
        put(&b, FZ_TRACE_MAP, strlen(FZ_TRACE_MAP));
        seed("coverage", FZ_COVERAGE, &b);
        static const char *const traces[][3] = {
                {"trace-csv", "\x00\x00", "# a car\ntime,x,y\n0,0,0\n10,400,0\n20,800,10\n30,900,-20\n"},
                {"trace-csv-cells", "\x00\x00", "time,cell\n0,c1\n5.5,c2\n9,c3\n"},
                {"trace-json", "\x01\x00", "{\"points\":[{\"t\":0,\"x\":0,\"y\":0},{\"t\":12.5,\"x\":600,\"y\":5}]}"},
                {"trace-fcd", "\x02\x01",
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<fcd-export>\n<timestep time=\"0.00\">"
                 "<vehicle id=\"car0\" x=\"5.10\" y=\"-4.80\" speed=\"0.00\"/><vehicle id=\"car1\" x=\"1\" y=\"1\"/>"
                 "</timestep>\n<timestep time=\"1.00\"><person id=\"p\" x=\"0\" y=\"0\"/>"
                 "<vehicle id=\"car0\" x=\"600.00\" y=\"-4.80\" speed=\"2.60\"/></timestep>\n</fcd-export>\n"},
        };
        for (size_t i = 0; i < sizeof(traces) / sizeof(traces[0]); i++) {
                b.n = 0;
                put(&b, traces[i][1], 2);
                put(&b, traces[i][2], strlen(traces[i][2]));
                seed(traces[i][0], FZ_TRACE, &b);
        }
        static const char *const more[][2] = {
                {"api-position", "{\"associateId\":{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.77.0.2\"},\"x\":12.5,\"y\":-3,"
                                 "\"timeStamp\":{\"seconds\":1700000000,\"nanoSeconds\":0}}"},
                {"api-trajectory", "{\"appMobilityServiceId\":\"s1\",\"associateId\":{\"type\":\"UE_IPv4_ADDRESS\",\"value\":"
                                   "\"10.77.0.2\"},\"startTime\":{\"seconds\":1700000000,\"nanoSeconds\":0},\"format\":\"csv\","
                                   "\"text\":\"time,x,y\\n0,0,0\\n5,100,0\\n\"}"},
                {"api-rnis", "{\"notificationType\":\"CellChangeNotification\",\"timeStamp\":{\"seconds\":1700000000,\"nanoSeconds\":0},"
                             "\"associateId\":[{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.77.0.2\"}],\"srcEcgi\":{\"cellId\":"
                             "\"c1\",\"plmn\":{\"mcc\":\"001\",\"mnc\":\"01\"}},\"trgEcgi\":[{\"cellId\":\"c2\"}],"
                             "\"hoStatus\":\"IN_PREPARATION\"}"},
        };
        for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
                b.n = 0;
                put(&b, more[i][1], strlen(more[i][1]));
                seed(more[i][0], FZ_API, &b);
        }
        static const char scenario[] =
                "{\"scenario\":\"s\",\"hosts\":3,\"speedup\":2,\"position_interval_ms\":250,\"rnis_lead_ms\":500,"
                "\"coverage\":{\"cells\":[{\"id\":\"a\",\"host\":\"mec1\",\"polygon\":[[-50,-100],[325,-100],[325,100],[-50,100]]},"
                "{\"id\":\"b\",\"host\":\"mec2\",\"center\":[500,0],\"radius\":250},{\"id\":\"c\",\"host\":\"mec3\"}]},"
                "\"users\":[{\"name\":\"u\",\"events\":\"rnis\",\"trace\":{\"points\":[{\"t\":0,\"x\":0,\"y\":0},"
                "{\"t\":20,\"x\":600,\"y\":0}]},\"announced\":{\"points\":[{\"t\":0,\"cell\":\"a\"},{\"t\":9,\"cell\":\"c\"}]},"
                "\"service\":{\"workload\":\"memory\",\"size_mib\":64}}]}";
        b.n = 0;
        put(&b, scenario, strlen(scenario));
        seed("scenario", FZ_SCENARIO, &b);
        free(b.p);
}

/* A pre-copy round as source.c's round_page encodes it (zero pages and
 * pages the target holds are skipped), with LZ4; held gets its pages. */
static buf round_of(uint8_t (*pages)[FM_PAGE_SIZE], size_t n, fm_hashset *held)
{
        buf b = {0};
        uint8_t rec[FM_PAGEREC_MAX];
        fm_pagestream_stats st = {0};
        for (size_t i = 0; i < n; i++) {
                if (fm_page_is_zero(pages[i]) || fm_hashset_has(held, fm_page_hash_of(pages[i], key)))
                        continue;
                int r = fm_pagestream_put_page(pages[i], key, held, true, rec, &st);
                if (r < 0)
                        DIE("encoding a page");
                put(&b, rec, (size_t)r);
        }
        return b;
}

int main(int argc, char **argv)
{
        snprintf(corpus, sizeof(corpus), "%s", argc > 1 ? argv[1] : "tests/fuzz/corpus");
        snprintf(work, sizeof(work), "/dev/shm/fastmig-fuzz-gen-%d", (int)getpid());
        fz_key(key);
        if (fm_mkdir_p(corpus, 0755) < 0 || fm_mkdir_p(work, 0700) < 0)
                DIE("creating %s or %s: %s", corpus, work, strerror(errno));
        json_seeds();

        /* memory as a dump finds it: pages the rounds sent (0, 1), zero
         * pages, compressible ones, random ones, one of them twice */
        static uint8_t pg[10][FM_PAGE_SIZE];
        page(pg[0], PG_RANDOM);
        page(pg[1], PG_TEXT);
        page(pg[2], PG_ZERO);
        page(pg[3], PG_TEXT);
        page(pg[4], PG_RANDOM);
        page(pg[5], PG_ZERO);
        memcpy(pg[6], pg[4], FM_PAGE_SIZE);
        page(pg[7], PG_TEXT);
        page(pg[8], PG_RANDOM);
        memcpy(pg[9], pg[0], FM_PAGE_SIZE);
        uint8_t small[3000];
        for (size_t i = 0; i < sizeof(small); i++)
                small[i] = (uint8_t)("core-1 inventory "[i % 17] ^ (i >> 8));
        buf pagesfile = {0};
        for (int i = 0; i < 10; i++)
                put(&pagesfile, pg[i], FM_PAGE_SIZE);
        put(&pagesfile, small, 700); /* a last partial page */

        /* a pre-copy round alone */
        fm_hashset held;
        fm_hashset_init(&held, 64);
        buf round = round_of(pg, 2, &held);
        seed("records-round", FZ_RECORDS, &round);

        /* two files, raw, static */
        char dir[600];
        fresh_dir(dir, sizeof(dir), "raw");
        write_file(dir, "core-1.img", small, sizeof(small));
        write_file(dir, "pages-1.img", pagesfile.p, 4 * FM_PAGE_SIZE + 700);
        buf s = send_dir(dir, NULL, false);
        check_stream(dir, &s, NULL, false, 0);
        seed("stream-raw", FZ_STREAM, &s);
        free(s.p);

        /* a growing pages file (raw: no pre-copy), then a static file */
        fresh_dir(dir, sizeof(dir), "growing");
        write_file(dir, "pages-1.img", pagesfile.p, 3 * FM_PAGE_SIZE + 700);
        write_file(dir, "inventory.img", small, 1000);
        s = send_dir(dir, NULL, true);
        if (!contains(&s, "\"growing\":true"))
                DIE("the growing stream has no growing file");
        check_stream(dir, &s, NULL, false, 0);
        seed("stream-growing", FZ_STREAM, &s);
        free(s.p);

        /* page-encoded, static, after the round above: R for the round's
         * pages and a repeated one, Z, C, L, T */
        fresh_dir(dir, sizeof(dir), "pages");
        write_file(dir, "pages-1.img", pagesfile.p, pagesfile.n);
        write_file(dir, "core-1.img", small, sizeof(small));
        fm_page_codec codec = {.key = key, .held = &held, .compress = true};
        s = send_dir(dir, &codec, false);
        fm_pagestream_stats st = check_stream(dir, &s, &round, true, 0);
        if (!st.ref || !st.zero || !st.compressed || !st.literal || !st.tail_bytes)
                DIE("the page-encoded stream lacks a kind of record (%llu R, %llu Z, %llu C, %llu L, %llu T bytes)",
                    (unsigned long long)st.ref, (unsigned long long)st.zero, (unsigned long long)st.compressed,
                    (unsigned long long)st.literal, (unsigned long long)st.tail_bytes);
        buf in = {0};
        put(&in, (uint8_t[]){(uint8_t)(round.n >> 8), (uint8_t)round.n}, 2);
        put(&in, round.p, round.n);
        put(&in, s.p, s.n);
        seed("stream-pages", FZ_STREAM_PAGES, &in);
        free(s.p);
        in.n = 0;

        /* page-encoded and growing, no round before it (the spare file
         * becomes the pages file) */
        fm_hashset held2;
        fm_hashset_init(&held2, 64);
        fresh_dir(dir, sizeof(dir), "pages-growing");
        write_file(dir, "pages-2.img", pagesfile.p, 6 * FM_PAGE_SIZE + 700);
        write_file(dir, "fdinfo-2.img", small, 500);
        fm_page_codec codec2 = {.key = key, .held = &held2, .compress = true};
        s = send_dir(dir, &codec2, true);
        if (!contains(&s, "\"growing\":true"))
                DIE("the growing page-encoded stream has no growing file");
        check_stream(dir, &s, NULL, true, 0);
        put(&in, (uint8_t[]){0, 0}, 2);
        put(&in, s.p, s.n);
        seed("stream-pages-growing", FZ_STREAM_PAGES, &in);
        free(s.p);
        in.n = 0;

        /* page-encoded, growing, over the cap: 40 zero pages (160 KiB, more
         * than FZ_ROOM) are 40 bytes of records in one DATA frame; the
         * receiver must refuse the frame before it writes a byte */
        fm_hashset held3;
        fm_hashset_init(&held3, 64);
        fresh_dir(dir, sizeof(dir), "pages-over-cap");
        uint8_t *zeros = calloc(40, FM_PAGE_SIZE);
        if (!zeros)
                DIE("out of memory");
        write_file(dir, "pages-3.img", zeros, 40 * FM_PAGE_SIZE);
        write_file(dir, "core-3.img", small, 100);
        free(zeros);
        fm_page_codec codec3 = {.key = key, .held = &held3, .compress = true};
        s = send_dir(dir, &codec3, true);
        check_stream(dir, &s, NULL, true, ENOSPC);
        put(&in, (uint8_t[]){0, 0}, 2);
        put(&in, s.p, s.n);
        seed("stream-pages-over-cap", FZ_STREAM_PAGES, &in);
        fm_hashset_free(&held3);
        free(s.p);
        free(in.p);
        /* a lazy final dump: that round in the store, a request, and the
         * first frame of the answer to FZ_LAZY_Q (a reference, a zero page,
         * a compressible and a random page) */
        {
                buf lz = {0};
                uint8_t n2[2] = {(uint8_t)(round.n >> 8), (uint8_t)round.n};
                put(&lz, n2, 2);
                put(&lz, round.p, round.n);
                uint8_t rq[FM_LAZY_REQ_LEN];
                fm_lazy_req q = {.id = FZ_LAZY_Q_ID, .vaddr = FZ_LAZY_Q_VADDR, .nr = FZ_LAZY_Q_NR};
                fm_lazy_req_build(rq, &q);
                put(&lz, rq, sizeof(rq));
                put(&lz, rq, sizeof(rq)); /* the answer's header: all four pages, their XXH64 */
                static uint8_t raw[4 * FM_PAGE_SIZE];
                const int pick[4] = {0, 2, 3, 4};
                for (int i = 0; i < 4; i++)
                        memcpy(raw + (size_t)i * FM_PAGE_SIZE, pg[pick[i]], FM_PAGE_SIZE);
                uint64_t xh = XXH64(raw, sizeof(raw), 0);
                uint8_t xb[8];
                for (int i = 0; i < 8; i++)
                        xb[i] = (uint8_t)(xh >> (56 - 8 * i));
                put(&lz, xb, 8);
                fm_pagestream_stats st = {0};
                static uint8_t rec[4 * FM_PAGEREC_MAX];
                size_t rn = 0;
                const int which[4] = {0, 2, 3, 4};
                for (int i = 0; i < 4; i++)
                        rn += (size_t)fm_pagestream_put_page(pg[which[i]], key, &held, true, rec + rn, &st);
                put(&lz, rec, rn);
                seed("lazy-answer", FZ_LAZY, &lz);
                free(lz.p);
        }
        free(round.p);
        free(pagesfile.p);
        fm_hashset_free(&held);
        fm_hashset_free(&held2);
        fm_rm_rf(work);
        return 0;
}
