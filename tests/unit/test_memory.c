/* Page store, page stream and round controller (pre-copy building blocks). */
#include <fcntl.h>
#include <sys/stat.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "memory/memscan.h"
#include "memory/pagestore.h"
#include "memory/pagestream.h"
#include "memory/rounds.h"
#include "tap.h"

static uint8_t key[FM_HASH_KEY_SIZE];

static void fill(uint8_t *p, unsigned seed)
{
        for (int i = 0; i < FM_PAGE_SIZE; i++)
                p[i] = (uint8_t)(seed * 31 + i * 7 + (seed >> 3));
}

/* Encodes `file` (len bytes) with `held`, decodes into out_path with store. */
static int roundtrip_c(const uint8_t *file, size_t len, fm_hashset *held, bool compress, fm_pagestore *store,
                       const char *out_path, fm_pagestream_stats *enc, fm_pagestream_stats *dec, fm_error *e, size_t *wire)
{
        uint8_t *buf = malloc(len / FM_PAGE_SIZE * FM_PAGEREC_MAX + FM_PAGEREC_MAX + 8);
        size_t n = 0, off = 0;
        for (; off + FM_PAGE_SIZE <= len; off += FM_PAGE_SIZE)
                n += (size_t)fm_pagestream_put_page(file + off, key, held, compress, buf + n, enc);
        if (off < len)
                n += (size_t)fm_pagestream_put_tail(file + off, len - off, buf + n, enc);
        *wire = n;
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int r = fm_pagestream_decode(buf, n, key, store, fd, NULL, dec, e);
        close(fd);
        free(buf);
        return r;
}

static int roundtrip(const uint8_t *file, size_t len, fm_hashset *held, fm_pagestore *store, const char *out_path,
                     fm_pagestream_stats *enc, fm_pagestream_stats *dec, fm_error *e, size_t *wire)
{
        return roundtrip_c(file, len, held, false, store, out_path, enc, dec, e, wire);
}

struct scan_ctx {
        uint64_t pattern_pages, untouched_seen;
        uint64_t untouched_lo, untouched_hi;
};

static int count_page(void *c, pid_t pid, uint64_t addr, const uint8_t *page)
{
        (void)pid;
        struct scan_ctx *x = c;
        if (addr >= x->untouched_lo && addr < x->untouched_hi)
                x->untouched_seen++;
        /* the child's pattern: "FMPG" + page number, repeated */
        if (!memcmp(page, "FMPG", 4) && !memcmp(page + 2048, "FMPG", 4))
                x->pattern_pages++;
        return 0;
}

static void test_memscan(void)
{
        int ready[2];
        pipe(ready);
        uint8_t *untouched = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        pid_t pid = fork();
        if (pid == 0) {
                uint8_t *m = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                for (int i = 0; i < 1024; i++)
                        for (int k = 0; k < FM_PAGE_SIZE; k += 8) {
                                memcpy(m + (size_t)i * FM_PAGE_SIZE + k, "FMPG", 4);
                                memcpy(m + (size_t)i * FM_PAGE_SIZE + k + 4, &i, 4);
                        }
                write(ready[1], "r", 1);
                pause();
                _exit(0);
        }
        char c;
        read(ready[0], &c, 1);
        struct scan_ctx x = {.untouched_lo = (uint64_t)(uintptr_t)untouched,
                             .untouched_hi = (uint64_t)(uintptr_t)untouched + (4 << 20)};
        uint64_t scanned = 0;
        fm_error e = {0};
        int r = fm_memscan_process(pid, count_page, &x, &scanned, &e);
        ok(r == 0, "scan of a running process: %s", e.msg);
        ok(x.pattern_pages == 1024, "every written page of the child was read (%llu)", (unsigned long long)x.pattern_pages);
        ok(x.untouched_seen == 0, "pages never touched are not read (pagemap present bit)");
        ok(scanned >= 1024 && scanned < 1024 + 2048, "scanned %llu pages in all", (unsigned long long)scanned);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        uint64_t none = 0;
        ok(fm_memscan_process(pid, count_page, &x, &none, &e) == 0 && none == 0, "a process that is gone scans as empty");
        munmap(untouched, 4 << 20);
}

int main(void)
{
        test_memscan();
        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t)(i * 13 + 5);
        char dir[] = "/tmp/fm-mem.XXXXXX";
        mkdtemp(dir);
        char spath[256], out[256];
        snprintf(spath, sizeof(spath), "%s/store", dir);
        snprintf(out, sizeof(out), "%s/out.img", dir);
        fm_error e = {0};

        /* hashes */
        uint8_t a[FM_PAGE_SIZE], b[FM_PAGE_SIZE], z[FM_PAGE_SIZE] = {0};
        fill(a, 1);
        fill(b, 2);
        fm_page_hash ha = fm_page_hash_of(a, key), hb = fm_page_hash_of(b, key);
        ok(ha.lo != hb.lo || ha.hi != hb.hi, "different pages, different hashes");
        uint8_t key2[FM_HASH_KEY_SIZE];
        memcpy(key2, key, sizeof(key2));
        key2[0] ^= 1;
        fm_page_hash ha2 = fm_page_hash_of(a, key2);
        ok(ha2.lo != ha.lo || ha2.hi != ha.hi, "another key, another hash (keyed)");
        ok(fm_page_is_zero(z) && !fm_page_is_zero(a), "zero page detection");

        /* store */
        fm_pagestore st;
        ok(fm_pagestore_open(&st, spath, 4, &e) == 0, "store opens");
        ok(!fm_pagestore_has(&st, ha), "empty store has nothing");
        ok(fm_pagestore_put(&st, ha, a, &e) == 0 && fm_pagestore_has(&st, ha), "put then has");
        ok(fm_pagestore_put(&st, ha, a, &e) == 0 && st.npages == 1, "second put of the same page stores nothing");
        uint8_t got[FM_PAGE_SIZE];
        ok(fm_pagestore_get(&st, ha, got, &e) == 0 && !memcmp(got, a, FM_PAGE_SIZE), "get returns the page");
        ok(fm_pagestore_get(&st, hb, got, &e) == -ENOENT, "absent page: ENOENT");
        for (unsigned k = 10; k < 13; k++) {
                uint8_t p[FM_PAGE_SIZE];
                fill(p, k);
                fm_pagestore_put(&st, fm_page_hash_of(p, key), p, &e);
        }
        ok(st.npages == 4 && fm_pagestore_put(&st, hb, b, &e) == -ENOSPC, "full store: ENOSPC");
        fm_pagestore_close(&st);

        /* stream: a file of pages a, b, zero, a (dup), b (dup) and a 100-byte tail */
        size_t len = 5 * FM_PAGE_SIZE + 100;
        uint8_t *file = malloc(len);
        memcpy(file, a, FM_PAGE_SIZE);
        memcpy(file + FM_PAGE_SIZE, b, FM_PAGE_SIZE);
        memset(file + 2 * FM_PAGE_SIZE, 0, FM_PAGE_SIZE);
        memcpy(file + 3 * FM_PAGE_SIZE, a, FM_PAGE_SIZE);
        memcpy(file + 4 * FM_PAGE_SIZE, b, FM_PAGE_SIZE);
        memset(file + 5 * FM_PAGE_SIZE, 0x5a, 100);
        fm_hashset held;
        fm_hashset_init(&held, 4);
        fm_pagestore_open(&st, spath, 64, &e);
        fm_pagestream_stats enc = {0}, dec = {0};
        size_t wire = 0;
        fm_err_clear(&e);
        int r = roundtrip(file, len, &held, &st, out, &enc, &dec, &e, &wire);
        ok(r == 0, "stream decodes: %s", e.msg);
        ok(enc.literal == 2 && enc.ref == 2 && enc.zero == 1 && enc.tail_bytes == 100,
           "identical pages in one file travel once, zeros as a tag (L%llu R%llu Z%llu)",
           (unsigned long long)enc.literal, (unsigned long long)enc.ref, (unsigned long long)enc.zero);
        ok(wire == 2 * (1 + FM_PAGE_SIZE) + 2 * 17 + 1 + 103, "wire size as the layout says (%zu)", wire);
        char *back = NULL;
        int n = fm_read_file(out, &back, 1 << 20);
        ok(n == (int)len && !memcmp(back, file, len), "rebuilt file is byte-identical");
        free(back);

        /* a second file whose pages the target already holds: references only */
        fm_pagestream_stats enc2 = {0}, dec2 = {0};
        r = roundtrip(file, 2 * FM_PAGE_SIZE, &held, &st, out, &enc2, &dec2, &e, &wire);
        ok(r == 0 && enc2.literal == 0 && enc2.ref == 2 && wire == 34, "pages held from before travel as references");

        /* LZ4: a page half of whose words repeat travels compressed, a
         * pseudo-random one whole; both rebuild exactly */
        {
                uint8_t *f2 = malloc(2 * FM_PAGE_SIZE);
                fill(f2, 77);
                memset(f2 + FM_PAGE_SIZE / 2, 0x33, FM_PAGE_SIZE / 2);
                uint64_t x = 88172645463325252ull; /* xorshift: incompressible */
                for (size_t i = 0; i < FM_PAGE_SIZE; i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        f2[FM_PAGE_SIZE + i] = (uint8_t)x;
                }
                fm_hashset h2;
                fm_hashset_init(&h2, 4);
                fm_pagestream_stats ce = {0}, cd = {0};
                r = roundtrip_c(f2, 2 * FM_PAGE_SIZE, &h2, true, &st, out, &ce, &cd, &e, &wire);
                char *b2 = NULL;
                int n2 = fm_read_file(out, &b2, 1 << 20);
                ok(r == 0 && n2 == 2 * FM_PAGE_SIZE && !memcmp(b2, f2, 2 * FM_PAGE_SIZE), "compressed stream rebuilds: %s",
                   e.msg);
                ok(ce.compressed == 1 && cd.compressed == 1 && wire < 1 + FM_PAGE_SIZE + 3 + FM_PAGE_SIZE / 2 + 100,
                   "the compressible page travels as 'C', the other as 'L' (%llu compressed, %zu bytes)",
                   (unsigned long long)ce.compressed, wire);
                free(b2);
                /* a compressed record that lies about its page */
                uint8_t bad[3 + 64] = {'C', 0, 64};
                memset(bad + 3, 0x11, 64);
                int fd2 = open(out, O_WRONLY | O_TRUNC);
                fm_pagestream_stats d4 = {0};
                ok(fm_pagestream_decode(bad, sizeof(bad), key, &st, fd2, NULL, &d4, &e) == -EPROTO,
                   "a compressed record that is not a page is refused: %s", e.msg);
                close(fd2);
                fm_hashset_free(&h2);
                free(f2);
        }

        /* a reference the target cannot resolve aborts */
        fm_pagestore empty;
        fm_pagestore_open(&empty, spath, 8, &e);
        uint8_t ref[17] = {'R'};
        for (int i = 0; i < 8; i++) {
                ref[1 + i] = (uint8_t)(ha.hi >> (56 - 8 * i));
                ref[9 + i] = (uint8_t)(ha.lo >> (56 - 8 * i));
        }
        int fd = open(out, O_WRONLY | O_TRUNC);
        fm_pagestream_stats d3 = {0};
        r = fm_pagestream_decode(ref, sizeof(ref), key, &empty, fd, NULL, &d3, &e);
        ok(r == -ENOENT && strstr(e.msg, "lacks"), "unresolvable reference refused: %s", e.msg);
        uint8_t cut[10] = {'L', 1, 2, 3};
        ok(fm_pagestream_decode(cut, sizeof(cut), key, &empty, fd, NULL, &d3, &e) == -EPROTO, "cut literal refused");
        uint8_t junk[1] = {'Q'};
        ok(fm_pagestream_decode(junk, 1, key, &empty, fd, NULL, &d3, &e) == -EPROTO && strstr(e.msg, "0x51"),
           "unknown tag refused and quoted");
        uint8_t badtail[5] = {'T', 0x10, 0x00, 1, 2};
        ok(fm_pagestream_decode(badtail, sizeof(badtail), key, &empty, fd, NULL, &d3, &e) == -EPROTO, "oversized tail refused");
        close(fd);
        fm_pagestore_close(&empty);
        fm_pagestore_close(&st);
        fm_hashset_free(&held);
        free(file);

        /* hash set growth */
        fm_hashset hs;
        fm_hashset_init(&hs, 1);
        for (uint64_t i = 1; i <= 10000; i++)
                fm_hashset_add(&hs, (fm_page_hash){i, i * 3});
        bool all = hs.n == 10000;
        for (uint64_t i = 1; i <= 10000 && all; i++)
                all = fm_hashset_has(&hs, (fm_page_hash){i, i * 3});
        ok(all && !fm_hashset_has(&hs, (fm_page_hash){5, 1}), "hash set grows and keeps every member");
        fm_hashset_free(&hs);

        /* round controller */
        fm_rounds_cfg c = {.max_rounds = 5, .dirty_threshold = 100, .min_shrink = 0.9};
        ok(fm_rounds_next(&c, 1, 16384, 0) == FM_ROUNDS_GO_ON, "round 1 sends all: go on");
        ok(fm_rounds_next(&c, 2, 5000, 16384) == FM_ROUNDS_GO_ON, "shrinking: go on");
        ok(fm_rounds_next(&c, 3, 80, 5000) == FM_STOP_THRESHOLD, "below threshold: stop");
        ok(fm_rounds_next(&c, 3, 4800, 5000) == FM_STOP_NO_PROGRESS, "not shrinking: stop (dirty rate beats the link)");
        ok(fm_rounds_next(&c, 2, 16000, 16384) == FM_ROUNDS_GO_ON, "round 2 is not judged against round 1");
        ok(fm_rounds_next(&c, 5, 1000, 3000) == FM_STOP_MAX_ROUNDS, "fixed number of rounds reached: stop");
        ok(!strcmp(fm_stop_rule_name(FM_STOP_NO_PROGRESS), "no_progress"), "rule names");
        fm_rm_rf(dir);
        return tap_done();
}
