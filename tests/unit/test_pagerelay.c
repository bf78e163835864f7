/* The lazy final dump's relay (src/memory/pagerelay.c): its pure checks, and
 * both relays end to end over socket pairs, between a stand-in for CRIU's
 * page server (it serves a buffer of pages, fewer than asked at times, as
 * CRIU may) and a stand-in for the lazy-pages daemon. The real thing runs in
 * tests/integration/test_precopy.sh. */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <signal.h>

#include "memory/pagerelay.h"
#include "proto/proto.h"
#include "tap.h"

#define NPAGES 64
#define BASE 0x7f1200000000ull
#define TASK 7ull /* CRIU's dst_id of a GET: the task's pid in the images */

static uint8_t key[FM_HASH_KEY_SIZE];
static char images[] = "/tmp/fastmig-test-relay-img-XXXXXX";
static uint8_t mem[NPAGES][FM_PAGE_SIZE];

/* CRIU's page server: answers GETs from mem (at most 5 pages at a time),
 * FORCE_CLOSE with status 0; bad_at: a request for this address gets no
 * pages (CRIU ends then). */
typedef struct criu_fake {
        int fd;
        uint64_t bad_at;
        int served;
} criu_fake;

static void *criu_thread(void *arg)
{
        criu_fake *c = arg;
        for (;;) {
                fm_criu_iov iov;
                if (fm_read_all(c->fd, &iov, sizeof(iov)) < 0)
                        break;
                if (iov.cmd == FM_CRIU_PS_IOV_FORCE_CLOSE) {
                        int32_t s = 0;
                        fm_write_all(c->fd, &s, sizeof(s));
                        break;
                }
                uint64_t first = (iov.vaddr - BASE) / FM_PAGE_SIZE;
                if (iov.cmd != FM_CRIU_PS_IOV_GET || iov.dst_id != TASK || iov.vaddr == c->bad_at ||
                    first + iov.nr_pages > NPAGES)
                        break; /* CRIU fails the dump: its socket closes */
                uint64_t n = iov.nr_pages > 5 ? 5 : iov.nr_pages;
                iov.cmd = (FM_CRIU_PE_PRESENT << 16) | FM_CRIU_PS_IOV_ADD_F;
                iov.nr_pages = n;
                fm_write_all(c->fd, &iov, sizeof(iov));
                fm_write_all(c->fd, mem[first], n * FM_PAGE_SIZE);
                c->served++;
        }
        close(c->fd);
        return NULL;
}

typedef struct relay {
        int peer, other; /* source: criu fd; target: daemon fd */
        fm_hashset *held;
        fm_pagestore *store;
        bool corrupt;
        fm_pagerelay_stats st;
        fm_error e;
        int r;
} relay;

static void *source_thread(void *arg)
{
        relay *x = arg;
        /* the damaged run sends its literals raw: the hook flips a byte of one */
        x->r = fm_pagerelay_source(x->peer, x->other, images, key, x->held, !x->corrupt, x->corrupt, &x->st, &x->e);
        close(x->peer);
        return NULL;
}

static void *target_thread(void *arg)
{
        relay *x = arg;
        x->r = fm_pagerelay_target(x->other, x->peer, key, x->store, &x->st, &x->e);
        close(x->peer);
        close(x->other);
        return NULL;
}

/* The daemon asks for nr pages at page first; 0 when what came is mem's. */
static int daemon_get(int fd, uint64_t first, uint64_t nr, uint64_t *got)
{
        fm_criu_iov iov = {.cmd = FM_CRIU_PS_IOV_GET, .nr_pages = nr, .vaddr = BASE + first * FM_PAGE_SIZE,
                           .dst_id = TASK};
        static uint8_t buf[NPAGES][FM_PAGE_SIZE];
        if (fm_write_all(fd, &iov, sizeof(iov)) < 0 || fm_read_all(fd, &iov, sizeof(iov)) < 0)
                return -1;
        if ((iov.cmd & 0xffff) != FM_CRIU_PS_IOV_ADD_F || iov.vaddr != BASE + first * FM_PAGE_SIZE ||
            iov.nr_pages == 0 || iov.nr_pages > nr)
                return -1;
        if (fm_read_all(fd, buf, iov.nr_pages * FM_PAGE_SIZE) < 0)
                return -1;
        *got = iov.nr_pages;
        return memcmp(buf, mem[first], iov.nr_pages * FM_PAGE_SIZE) ? -1 : 0;
}

/* A whole exchange; bad_at as criu_fake's. Returns what the daemon saw:
 * 0 all pages right and the close answered 0. */
static int exchange(uint64_t bad_at, uint64_t fault_page, relay *src, relay *tgt, int *criu_served)
{
        int criu[2], peer[2], dmn[2];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, criu);
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, peer);
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dmn);
        criu_fake c = {.fd = criu[1], .bad_at = bad_at};
        src->peer = peer[0];
        src->other = criu[0];
        tgt->peer = peer[1];
        tgt->other = dmn[1];
        pthread_t tc, ts, tt;
        pthread_create(&tc, NULL, criu_thread, &c);
        pthread_create(&ts, NULL, source_thread, src);
        pthread_create(&tt, NULL, target_thread, tgt);
        int bad = 0;
        /* a fault's page, then the rest in growing requests (as the daemon) */
        uint64_t got = 0;
        bad |= daemon_get(dmn[0], fault_page, 1, &got) < 0 || got != 1;
        for (uint64_t at = 0, ask = 1; !bad && at < NPAGES; at += got, ask *= 2) {
                uint64_t nr = ask > NPAGES - at ? NPAGES - at : ask;
                bad |= daemon_get(dmn[0], at, nr, &got) < 0;
        }
        int32_t status = -1;
        fm_criu_iov close_iov = {.cmd = FM_CRIU_PS_IOV_FORCE_CLOSE};
        if (!bad && (fm_write_all(dmn[0], &close_iov, sizeof(close_iov)) < 0 ||
                     fm_read_all(dmn[0], &status, sizeof(status)) < 0 || status != 0))
                bad = 1;
        close(dmn[0]); /* the daemon is gone: a relay still waiting ends */
        pthread_join(tt, NULL);
        pthread_join(ts, NULL);
        close(criu[0]);
        pthread_join(tc, NULL);
        *criu_served = c.served;
        return bad ? -1 : 0;
}

/* A CRIU pagemap image: magics, a pagemap_head, entries (vaddr, pages, flags). */
static void put_varint(uint8_t *b, size_t *n, uint64_t v)
{
        do {
                b[(*n)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
}

static size_t pagemap_image(uint8_t *b, const uint64_t (*ent)[3], size_t n)
{
        size_t len = 0;
        const uint32_t magics[2] = {0x54564319u, 0x56084025u};
        memcpy(b, magics, 8); /* little-endian on the machines CRIU runs on here */
        len = 8;
        uint8_t rec[64];
        size_t rn = 0;
        put_varint(rec, &rn, 1 << 3); /* pages_id */
        put_varint(rec, &rn, 1);
        uint32_t l = (uint32_t)rn;
        memcpy(b + len, &l, 4);
        memcpy(b + len + 4, rec, rn);
        len += 4 + rn;
        for (size_t i = 0; i < n; i++) {
                rn = 0;
                put_varint(rec, &rn, 1 << 3);
                put_varint(rec, &rn, ent[i][0]);
                put_varint(rec, &rn, 2 << 3);
                put_varint(rec, &rn, ent[i][1]);
                put_varint(rec, &rn, 4 << 3);
                put_varint(rec, &rn, ent[i][2]);
                l = (uint32_t)rn;
                memcpy(b + len, &l, 4);
                memcpy(b + len + 4, rec, rn);
                len += 4 + rn;
        }
        return len;
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t)(i * 13 + 5);
        /* half random-ish, a quarter compressible, some zero */
        for (int p = 0; p < NPAGES; p++)
                for (int i = 0; i < FM_PAGE_SIZE; i++)
                        mem[p][i] = p % 8 == 7 ? 0 : p % 4 == 1 ? (uint8_t)(i % 3) : (uint8_t)(p * 131 + i * 7 + (i >> 5) * 29);

        /* ---- pure checks ---- */
        fm_error e = {0};
        /* the dump's pagemap: two lazy entries that touch, one present
         * (not lazy), one lazy elsewhere */
        static uint8_t img[4096];
        const uint64_t ent[4][3] = {{BASE, 40, 6}, {BASE + 40 * FM_PAGE_SIZE, NPAGES - 40, 2},
                                    {BASE + 100 * FM_PAGE_SIZE, 4, 4}, {BASE + 200 * FM_PAGE_SIZE, 8, 2}};
        size_t ilen = pagemap_image(img, ent, 4);
        fm_lazy_map lm;
        ok(fm_lazy_map_parse(img, ilen, &lm, &e) == 0 && lm.n == 2, "a pagemap image parses into 2 lazy ranges");
        ok(fm_lazy_map_covers(&lm, BASE + 30 * FM_PAGE_SIZE, 20), "a range across touching entries is lazy");
        ok(!fm_lazy_map_covers(&lm, BASE + 60 * FM_PAGE_SIZE, 8), "a range past the lazy entries is not");
        ok(!fm_lazy_map_covers(&lm, BASE + 100 * FM_PAGE_SIZE, 1), "a present (not lazy) entry is not");
        ok(!fm_lazy_map_covers(&lm, BASE - FM_PAGE_SIZE, 1), "below the first range is not");
        ok(fm_lazy_map_covers(&lm, BASE + 207 * FM_PAGE_SIZE, 1) && !fm_lazy_map_covers(&lm, BASE + 207 * FM_PAGE_SIZE, 2),
           "the last range, to its last page");
        fm_lazy_map_free(&lm);
        ok(fm_lazy_map_parse(img, ilen - 1, &lm, &e) < 0, "a cut pagemap image is refused");
        img[0] ^= 1;
        ok(fm_lazy_map_parse(img, ilen, &lm, &e) < 0, "a file that is not a pagemap image is refused");
        img[0] ^= 1;
        ok(mkdtemp(images) != NULL, "images directory");
        char path[200];
        snprintf(path, sizeof(path), "%s/pagemap-%llu.img", images, TASK);
        ok(fm_write_file(path, (const char *)img, ilen, 0600) == 0, "the dump's pagemap written");
        fm_lazy_req q = {.id = TASK, .vaddr = BASE, .nr = 16}, r;
        uint8_t b[FM_LAZY_REQ_LEN];
        fm_lazy_req_build(b, &q);
        ok(fm_lazy_req_parse(b, sizeof(b), &r, &e) == 0 && r.id == q.id && r.vaddr == q.vaddr && r.nr == 16,
           "a request builds and parses back");
        ok(fm_lazy_req_parse(b, sizeof(b) - 1, &r, &e) < 0, "a short request is refused");
        q.vaddr = BASE + 1;
        fm_lazy_req_build(b, &q);
        ok(fm_lazy_req_parse(b, sizeof(b), &r, &e) < 0, "an unaligned address is refused");
        q.vaddr = BASE;
        q.nr = 0;
        fm_lazy_req_build(b, &q);
        ok(fm_lazy_req_parse(b, sizeof(b), &r, &e) < 0, "zero pages are refused");
        q.nr = FM_LAZY_MAX_PAGES + 1;
        fm_lazy_req_build(b, &q);
        ok(fm_lazy_req_parse(b, sizeof(b), &r, &e) < 0, "more than 4 MiB is refused");
        q.nr = 2;
        q.vaddr = UINT64_MAX - FM_PAGE_SIZE + 1;
        fm_lazy_req_build(b, &q);
        ok(fm_lazy_req_parse(b, sizeof(b), &r, &e) < 0, "a range past the address space is refused");

        fm_lazy_req want = {.id = TASK, .vaddr = BASE, .nr = 4}, a;
        size_t off = 0;
        fm_lazy_req ans = want;
        ans.nr = 5;
        uint8_t hb[FM_LAZY_ANSWER_LEN] = {0};
        uint64_t xh = 0;
        fm_lazy_req_build(hb, &ans);
        ok(fm_lazy_answer_parse(hb, sizeof(hb), &want, &a, &xh, &off, &e) < 0, "an answer with more pages than asked is refused");
        ans.nr = 2;
        ans.id = TASK + 256;
        fm_lazy_req_build(hb, &ans);
        ok(fm_lazy_answer_parse(hb, sizeof(hb), &want, &a, &xh, &off, &e) < 0, "an answer for another task is refused");
        ans.id = TASK;
        fm_lazy_req_build(hb, &ans);
        hb[FM_LAZY_ANSWER_LEN - 1] = 0x2a;
        ok(fm_lazy_answer_parse(hb, FM_LAZY_REQ_LEN, &want, &a, &xh, &off, &e) < 0, "an answer without its checksum is refused");
        ok(fm_lazy_answer_parse(hb, sizeof(hb), &want, &a, &xh, &off, &e) == 0 && a.nr == 2 && xh == 0x2a &&
           off == FM_LAZY_ANSWER_LEN, "a shorter answer is taken, with its checksum");
        uint8_t recs[3 + 100] = {'T', 0, 100};
        uint64_t size = 0;
        ok(fm_lazy_records_size(recs, sizeof(recs), 4 * FM_PAGE_SIZE, &size, &e) < 0, "a partial page is refused");
        uint8_t zeros[3] = {'Z', 'Z', 'Z'};
        ok(fm_lazy_records_size(zeros, 3, 2 * FM_PAGE_SIZE, &size, &e) < 0, "more pages than due are refused");
        ok(fm_lazy_records_size(zeros, 0, 2 * FM_PAGE_SIZE, &size, &e) < 0, "a frame without pages is refused");
        ok(fm_lazy_records_size(zeros, 2, 2 * FM_PAGE_SIZE, &size, &e) == 0 && size == 2 * FM_PAGE_SIZE,
           "whole pages as due are taken");

        /* ---- end to end: the target holds every other page since pre-copy ---- */
        char spath[] = "/tmp/fastmig-test-relay-XXXXXX";
        int sfd = mkstemp(spath);
        close(sfd);
        fm_pagestore store;
        fm_hashset held;
        fm_hashset_init(&held, 64);
        ok(fm_pagestore_open(&store, spath, 256, &e) == 0, "page store opens");
        for (int p = 0; p < NPAGES; p += 2) {
                fm_page_hash h = fm_page_hash_of(mem[p], key);
                fm_pagestore_put(&store, h, mem[p], &e);
                fm_hashset_add(&held, h);
        }
        relay src = {.held = &held}, tgt = {.store = &store};
        int served = 0;
        ok(exchange(0, 9, &src, &tgt, &served) == 0, "the daemon gets every page it asks for, and the close");
        ok(src.r == 0 && tgt.r == 0, "both relays end well (%s%s)", src.e.msg, tgt.e.msg);
        ok(src.st.criu_status == 0 && tgt.st.criu_status == 0, "CRIU's status reaches the daemon");
        ok(src.st.pages == tgt.st.pages && tgt.st.pages >= NPAGES + 1, "pages counted alike on both sides (%llu)",
           (unsigned long long)tgt.st.pages);
        ok(src.st.st.ref >= NPAGES / 2 - 4 && src.st.st.literal <= NPAGES / 2 + 1,
           "pages the target holds travel as references (%llu refs, %llu literals, %llu zero)",
           (unsigned long long)src.st.st.ref, (unsigned long long)src.st.st.literal,
           (unsigned long long)src.st.st.zero);
        ok(src.st.st.bytes < (uint64_t)NPAGES * FM_PAGE_SIZE / 2, "the wire carried less than half the memory (%llu bytes)",
           (unsigned long long)src.st.st.bytes);
        ok(served > (int)(NPAGES / 5), "CRIU's partial answers were followed (%d answers)", served);

        /* ---- CRIU fails on one request: both relays fail, the daemon sees the end ---- */
        relay src2 = {.held = &held}, tgt2 = {.store = &store};
        ok(exchange(BASE + 12 * FM_PAGE_SIZE, 9, &src2, &tgt2, &served) < 0, "a failed page server fails the daemon");
        ok(src2.r < 0 && tgt2.r < 0, "both relays report it");
        ok(strstr(tgt2.e.msg, "page server") != NULL, "the target learns why: %s", tgt2.e.msg);

        /* ---- a page damaged on its way (test hook): the checksum catches it ---- */
        relay src3 = {.held = &held, .corrupt = true}, tgt3 = {.store = &store};
        for (int p = 0; p < NPAGES; p++) /* new content: literals again */
                mem[p][100] ^= 0x5a;
        ok(exchange(0, 9, &src3, &tgt3, &served) < 0, "a damaged page fails the daemon");
        ok(tgt3.r == -EBADMSG && strstr(tgt3.e.msg, "checksum"), "the target says so: %s", tgt3.e.msg);
        /* the damaged page is in the first answer (the fault's page, new content) */
        ok(tgt3.st.pages == 0, "the daemon got nothing of the damaged answer (%llu pages)",
           (unsigned long long)tgt3.st.pages);
        for (int p = 0; p < NPAGES; p++)
                mem[p][100] ^= 0x5a;

        /* ---- a request for pages CRIU does not hold lazily never reaches it ---- */
        relay src4 = {.held = &held}, tgt4 = {.store = &store};
        ok(exchange(0, 100, &src4, &tgt4, &served) < 0 && served == 0, "a request outside the lazy ranges is refused");
        ok(strstr(tgt4.e.msg, "no lazy pages"), "the target learns why: %s", tgt4.e.msg);

        fm_pagestore_close(&store);
        fm_hashset_free(&held);
        unlink(spath);
        fm_rm_rf(images);
        return tap_done();
}
