#include "memory/pagerelay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/proto.h"

#include <xxhash.h>

void fm_lazy_req_build(uint8_t out[FM_LAZY_REQ_LEN], const fm_lazy_req *q)
{
        fm_put_be64(out, q->id);
        fm_put_be64(out + 8, q->vaddr);
        fm_put_be64(out + 16, q->nr);
}

static void req_get(const uint8_t *buf, fm_lazy_req *q)
{
        q->id = fm_get_be64(buf);
        q->vaddr = fm_get_be64(buf + 8);
        q->nr = fm_get_be64(buf + 16);
}

int fm_lazy_req_parse(const uint8_t *buf, size_t len, fm_lazy_req *q, fm_error *e)
{
        if (len != FM_LAZY_REQ_LEN)
                return fm_err(e, EPROTO, "a lazy-pages request is %d bytes, not %zu", FM_LAZY_REQ_LEN, len);
        req_get(buf, q);
        if (q->vaddr % FM_PAGE_SIZE)
                return fm_err(e, EPROTO, "lazy-pages request for an unaligned address %#llx",
                              (unsigned long long)q->vaddr);
        if (q->nr == 0 || q->nr > FM_LAZY_MAX_PAGES)
                return fm_err(e, EPROTO, "lazy-pages request for %llu pages (1..%u)", (unsigned long long)q->nr,
                              FM_LAZY_MAX_PAGES);
        if (q->vaddr > UINT64_MAX - q->nr * FM_PAGE_SIZE)
                return fm_err(e, EPROTO, "lazy-pages request beyond the address space");
        return 0;
}

int fm_lazy_answer_parse(const uint8_t *buf, size_t len, const fm_lazy_req *q, fm_lazy_req *a, uint64_t *xxh64,
                         size_t *records, fm_error *e)
{
        if (len < FM_LAZY_ANSWER_LEN)
                return fm_err(e, EPROTO, "lazy pages: an answer of %zu bytes", len);
        req_get(buf, a);
        if (a->id != q->id || a->vaddr != q->vaddr || a->nr == 0 || a->nr > q->nr)
                return fm_err(e, EPROTO, "lazy pages: an answer to another request");
        *xxh64 = fm_get_be64(buf + FM_LAZY_REQ_LEN);
        *records = FM_LAZY_ANSWER_LEN;
        return 0;
}

int fm_lazy_records_size(const uint8_t *buf, size_t len, uint64_t left, uint64_t *size, fm_error *e)
{
        if (fm_pagestream_decoded_size(buf, len, size, e) < 0)
                return fm_err_wrap(e, "lazy pages");
        if (*size == 0 || *size % FM_PAGE_SIZE || *size > left) /* every frame brings whole pages */
                return fm_err(e, EPROTO, "lazy pages: %llu bytes where %llu were due", (unsigned long long)*size,
                              (unsigned long long)left);
        return 0;
}

/* ---- CRIU's pagemap images: what its page server holds lazily ---- */

#define CRIU_IMG_COMMON_MAGIC 0x54564319u
#define CRIU_PAGEMAP_MAGIC 0x56084025u
#define CRIU_PE_LAZY (1u << 1)
#define LAZY_MAP_MAX_RANGES (1u << 22)

static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
        uint64_t x = 0;
        for (int shift = 0; shift < 64; shift += 7) {
                if (*i >= n)
                        return -1;
                uint8_t b = p[(*i)++];
                x |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *v = x;
                        return 0;
                }
        }
        return -1;
}

/* One pagemap_entry (images/pagemap.proto): vaddr = 1, compat_nr_pages =
 * 2, flags = 4, nr_pages = 5 (which wins when present); others skipped. */
static int entry_parse(const uint8_t *p, size_t n, uint64_t *vaddr, uint64_t *nr, uint32_t *flags)
{
        bool has_vaddr = false, has_nr = false, has_big = false;
        uint64_t compat = 0, big = 0;
        *flags = 0;
        for (size_t i = 0; i < n;) {
                uint64_t tag = 0, v = 0;
                if (varint(p, n, &i, &tag) < 0)
                        return -1;
                switch (tag & 7) {
                case 0:
                        if (varint(p, n, &i, &v) < 0)
                                return -1;
                        break;
                case 1:
                        if (n - i < 8)
                                return -1;
                        i += 8;
                        continue;
                case 5:
                        if (n - i < 4)
                                return -1;
                        i += 4;
                        continue;
                case 2:
                        if (varint(p, n, &i, &v) < 0 || v > n - i)
                                return -1;
                        i += v;
                        continue;
                default:
                        return -1;
                }
                switch (tag >> 3) {
                case 1: *vaddr = v, has_vaddr = true; break;
                case 2: compat = v, has_nr = true; break;
                case 4: *flags = (uint32_t)v; break;
                case 5: big = v, has_big = true; break;
                default: break;
                }
        }
        if (!has_vaddr || (!has_nr && !has_big))
                return -1;
        *nr = has_big ? big : compat;
        return 0;
}

static int range_cmp(const void *a, const void *b)
{
        const fm_lazy_range *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

void fm_lazy_map_free(fm_lazy_map *m)
{
        free(m->r);
        m->r = NULL;
        m->n = 0;
}

int fm_lazy_map_parse(const uint8_t *buf, size_t len, fm_lazy_map *m, fm_error *e)
{
        m->r = NULL;
        m->n = 0;
        if (len < 8 || fm_get_le32(buf) != CRIU_IMG_COMMON_MAGIC || fm_get_le32(buf + 4) != CRIU_PAGEMAP_MAGIC)
                return fm_err(e, EPROTO, "not a CRIU pagemap image");
        size_t cap = 0;
        bool head = true;
        for (size_t i = 8; i < len;) {
                if (len - i < 4 || fm_get_le32(buf + i) > len - i - 4)
                        goto bad;
                uint32_t n = fm_get_le32(buf + i);
                i += 4;
                uint64_t va = 0, nr = 0;
                uint32_t fl = 0;
                if (head) { /* pagemap_head: the pages image's id */
                        head = false;
                        i += n;
                        continue;
                }
                if (entry_parse(buf + i, n, &va, &nr, &fl) < 0)
                        goto bad;
                i += n;
                if (!(fl & CRIU_PE_LAZY) || nr == 0)
                        continue;
                if (va % FM_PAGE_SIZE || nr > (UINT64_MAX - va) / FM_PAGE_SIZE)
                        goto bad;
                if (m->n == cap) {
                        if (cap >= LAZY_MAP_MAX_RANGES)
                                goto bad;
                        cap = cap ? cap * 2 : 64;
                        fm_lazy_range *r = realloc(m->r, cap * sizeof(*r));
                        if (!r) {
                                fm_lazy_map_free(m);
                                return fm_err(e, ENOMEM, "out of memory");
                        }
                        m->r = r;
                }
                m->r[m->n++] = (fm_lazy_range){va, va + nr * FM_PAGE_SIZE};
        }
        /* sorted, touching and overlapping ranges merged */
        if (m->n)
                qsort(m->r, m->n, sizeof(*m->r), range_cmp);
        size_t k = 0;
        for (size_t i = 0; i < m->n; i++) {
                if (k && m->r[i].start <= m->r[k - 1].end) {
                        if (m->r[i].end > m->r[k - 1].end)
                                m->r[k - 1].end = m->r[i].end;
                } else {
                        m->r[k++] = m->r[i];
                }
        }
        m->n = k;
        return 0;
bad:
        fm_lazy_map_free(m);
        return fm_err(e, EPROTO, "a malformed CRIU pagemap image");
}

bool fm_lazy_map_covers(const fm_lazy_map *m, uint64_t vaddr, uint64_t nr)
{
        if (nr == 0 || nr > (UINT64_MAX - vaddr) / FM_PAGE_SIZE)
                return false;
        uint64_t end = vaddr + nr * FM_PAGE_SIZE;
        size_t lo = 0, hi = m->n; /* the last range starting at or below vaddr */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (m->r[mid].start <= vaddr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo > 0 && end <= m->r[lo - 1].end;
}

/* ---- source: the peer's requests, answered from CRIU's page server ---- */

#define LAZY_MAX_TASKS 256

typedef struct task_maps {
        const char *images;
        fm_lazy_map m[LAZY_MAX_TASKS];
        size_t n;
} task_maps;

/* The lazy ranges of task id, read from its pagemap image the first time. */
static const fm_lazy_map *task_map(task_maps *t, uint64_t id, fm_error *e)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->m[i].id == id)
                        return &t->m[i];
        if (id == 0 || id > INT32_MAX)
                return fm_err(e, EPROTO, "lazy pages: no task %llu", (unsigned long long)id), NULL;
        if (t->n == LAZY_MAX_TASKS)
                return fm_err(e, EPROTO, "lazy pages: more than %d tasks", LAZY_MAX_TASKS), NULL;
        char path[700];
        snprintf(path, sizeof(path), "%s/pagemap-%llu.img", t->images, (unsigned long long)id);
        _cleanup_free_ char *buf = NULL;
        int n = fm_read_file(path, &buf, 64u << 20);
        if (n < 0)
                return fm_err(e, EPROTO, "lazy pages: no task %llu in the dump", (unsigned long long)id), NULL;
        fm_lazy_map *m = &t->m[t->n];
        if (fm_lazy_map_parse((const uint8_t *)buf, (size_t)n, m, e) < 0)
                return fm_err_wrap(e, "%s", path), NULL;
        m->id = id;
        t->n++;
        return m;
}

/* Asks CRIU for q's pages into pages; *got: how many it gave (it may give
 * fewer than asked, from the start of the range). */
static int criu_get(int criu_fd, const fm_lazy_req *q, uint8_t *pages, uint64_t *got, fm_error *e)
{
        fm_criu_iov iov = {.cmd = FM_CRIU_PS_IOV_GET, .nr_pages = q->nr, .vaddr = q->vaddr, .dst_id = q->id};
        int r = fm_write_all(criu_fd, &iov, sizeof(iov));
        if (r == 0)
                r = fm_read_all(criu_fd, &iov, sizeof(iov));
        if (r < 0)
                return fm_err(e, -r, "CRIU's page server %s: %s", r == -EPIPE ? "ended" : "failed", strerror(-r));
        if ((iov.cmd & 0xffff) != FM_CRIU_PS_IOV_ADD_F || iov.vaddr != q->vaddr || iov.dst_id != q->id ||
            iov.nr_pages == 0 || iov.nr_pages > q->nr)
                return fm_err(e, EPROTO, "CRIU's page server answered %#x for %llu pages at %#llx (asked %llu)",
                              iov.cmd, (unsigned long long)iov.nr_pages, (unsigned long long)iov.vaddr,
                              (unsigned long long)q->nr);
        if ((r = fm_read_all(criu_fd, pages, iov.nr_pages * FM_PAGE_SIZE)) < 0)
                return fm_err(e, -r, "reading pages from CRIU's page server: %s", strerror(-r));
        *got = iov.nr_pages;
        return 0;
}

/* The answer: a frame that starts with the request as answered (its count
 * the pages that follow), then records; frames hold whole records. */
static int answer(int peer_fd, const fm_lazy_req *q, uint64_t got, const uint8_t *pages, const uint8_t *key,
                  fm_hashset *held, bool compress, bool *corrupt_one, uint8_t *out, fm_pagerelay_stats *st,
                  fm_error *e)
{
        fm_lazy_req a = {.id = q->id, .vaddr = q->vaddr, .nr = got};
        fm_lazy_req_build(out, &a);
        fm_put_be64(out + FM_LAZY_REQ_LEN, XXH64(pages, got * FM_PAGE_SIZE, 0));
        size_t used = FM_LAZY_ANSWER_LEN;
        for (uint64_t i = 0; i < got; i++) {
                if (used + FM_PAGEREC_MAX > FM_DATA_MAX) {
                        int r = fm_frame_send(peer_fd, FM_FRAME_DATA, out, (uint32_t)used);
                        if (r < 0)
                                return fm_err(e, -r, "sending pages: %s", strerror(-r));
                        used = 0;
                }
                int n = fm_pagestream_put_page(pages + i * FM_PAGE_SIZE, key, held, compress, out + used, &st->st);
                if (n < 0)
                        return fm_err(e, -n, "encoding pages: %s", strerror(-n));
                if (*corrupt_one && out[used] == 'L') {
                        out[used + 1 + FM_PAGE_SIZE / 2] ^= 0x40;
                        *corrupt_one = false;
                }
                used += (size_t)n;
        }
        int r = fm_frame_send(peer_fd, FM_FRAME_DATA, out, (uint32_t)used);
        if (r < 0)
                return fm_err(e, -r, "sending pages: %s", strerror(-r));
        st->requests++;
        st->pages += got;
        return 0;
}

static int criu_close(int criu_fd, int *status, fm_error *e)
{
        fm_criu_iov iov = {.cmd = FM_CRIU_PS_IOV_FORCE_CLOSE};
        int32_t s = -1;
        int r = fm_write_all(criu_fd, &iov, sizeof(iov));
        if (r == 0)
                r = fm_read_all(criu_fd, &s, sizeof(s));
        if (r < 0)
                return fm_err(e, -r, "closing CRIU's page server: %s", strerror(-r));
        *status = s;
        return 0;
}

static int serve(int peer_fd, int criu_fd, task_maps *maps, const uint8_t *key, fm_hashset *held, bool compress,
                 bool corrupt_one, fm_pagerelay_stats *st, fm_error *e)
{
        _cleanup_free_ uint8_t *pages = malloc((size_t)FM_LAZY_MAX_PAGES * FM_PAGE_SIZE);
        _cleanup_free_ uint8_t *out = malloc(FM_DATA_MAX);
        if (!pages || !out)
                return fm_err(e, ENOMEM, "out of memory");
        int r = 0;
        for (;;) {
                uint8_t t = 0;
                char *buf = NULL;
                uint32_t len = 0;
                if ((r = fm_frame_recv(peer_fd, &t, &buf, &len, e)) < 0)
                        return fm_err_wrap(e, "lazy pages: the target");
                if (t == FM_FRAME_END) {
                        free(buf);
                        break;
                }
                fm_lazy_req q;
                r = t == FM_FRAME_DATA ? fm_lazy_req_parse((const uint8_t *)buf, len, &q, e)
                                       : fm_err(e, EPROTO, "unexpected frame type %u among lazy-pages requests", t);
                free(buf);
                uint64_t got = 0;
                const fm_lazy_map *tm = r == 0 ? task_map(maps, q.id, e) : NULL;
                if (r == 0 && !tm)
                        r = -e->code;
                if (r == 0 && !fm_lazy_map_covers(tm, q.vaddr, q.nr))
                        r = fm_err(e, EPROTO, "lazy pages: task %llu has no lazy pages at %#llx (+%llu)",
                                   (unsigned long long)q.id, (unsigned long long)q.vaddr, (unsigned long long)q.nr);
                if (r == 0)
                        r = criu_get(criu_fd, &q, pages, &got, e);
                if (r == 0)
                        r = answer(peer_fd, &q, got, pages, key, held, compress, &corrupt_one, out, st, e);
                if (r < 0) { /* the target learns why; CRIU's dump ends when its socket closes */
                        json_object *rep = fm_reply_error(e);
                        fm_msg_send(peer_fd, FM_FRAME_REPLY, rep);
                        json_object_put(rep);
                        return r;
                }
        }
        /* every page is in place at the target: CRIU's dump may end */
        if ((r = criu_close(criu_fd, &st->criu_status, e)) < 0)
                return r;
        json_object *rep = fm_reply_ok();
        json_object_object_add(rep, "criu_status", json_object_new_int(st->criu_status));
        r = fm_msg_send(peer_fd, FM_FRAME_REPLY, rep);
        json_object_put(rep);
        return r < 0 ? fm_err(e, -r, "lazy pages: replying to the target: %s", strerror(-r)) : 0;
}

int fm_pagerelay_source(int peer_fd, int criu_fd, const char *images, const uint8_t *key, fm_hashset *held,
                        bool compress, bool corrupt_one, fm_pagerelay_stats *st, fm_error *e)
{
        task_maps *maps = calloc(1, sizeof(*maps));
        if (!maps)
                return fm_err(e, ENOMEM, "out of memory");
        maps->images = images;
        int r = serve(peer_fd, criu_fd, maps, key, held, compress, corrupt_one, st, e);
        for (size_t i = 0; i < maps->n; i++)
                fm_lazy_map_free(&maps->m[i]);
        free(maps);
        return r;
}

/* ---- target: the daemon's requests, answered from the peer ---- */

/* Reads the answer to q from the peer and writes it to the daemon: CRIU's
 * header, then the rebuilt pages. */
/* Reads the answer to q from the peer, rebuilt into buf_fd from its start:
 * *a the request as answered, *want its XXH64. */
static int relay_frames(int peer_fd, int buf_fd, const fm_lazy_req *q, const uint8_t *key, fm_pagestore *store,
                        fm_lazy_req *a, uint64_t *want, fm_pagerelay_stats *st, fm_error *e)
{
        uint64_t left = 0;
        bool first = true;
        if (lseek(buf_fd, 0, SEEK_SET) < 0)
                return fm_err(e, errno, "lazy pages: %s", strerror(errno));
        do {
                uint8_t t = 0;
                _cleanup_free_ char *buf = NULL;
                uint32_t len = 0;
                int r = fm_frame_recv(peer_fd, &t, &buf, &len, e);
                if (r < 0)
                        return fm_err_wrap(e, "lazy pages: the source");
                if (t == FM_FRAME_REPLY) {
                        json_object *rep = NULL;
                        if (fm_msg_parse(buf, len, &rep, e) == 0) {
                                if (fm_reply_check(rep, e) == 0)
                                        fm_err(e, EPROTO, "an answer that is no answer");
                                json_object_put(rep);
                        }
                        return fm_err_wrap(e, "lazy pages: the source");
                }
                if (t != FM_FRAME_DATA)
                        return fm_err(e, EPROTO, "unexpected frame type %u among lazy pages", t);
                const uint8_t *rec = (const uint8_t *)buf;
                size_t n = len;
                if (first) {
                        size_t off = 0;
                        if (fm_lazy_answer_parse(rec, len, q, a, want, &off, e) < 0)
                                return -e->code;
                        left = a->nr * FM_PAGE_SIZE;
                        rec += off;
                        n -= off;
                        first = false;
                }
                uint64_t size = 0;
                if (fm_lazy_records_size(rec, n, left, &size, e) < 0)
                        return -e->code;
                if (fm_pagestream_decode(rec, n, key, store, buf_fd, NULL, &st->st, e) < 0)
                        return fm_err_wrap(e, "lazy pages");
                left -= size;
        } while (left > 0);
        return 0;
}

/* The answer to q, checked whole, then to the daemon: CRIU's header and
 * the pages. buf_fd/map: room for the largest answer. */
static int relay_answer(int daemon_fd, int peer_fd, int buf_fd, const uint8_t *map, const fm_lazy_req *q,
                        const uint8_t *key, fm_pagestore *store, fm_pagerelay_stats *st, fm_error *e)
{
        fm_lazy_req a = {0};
        uint64_t want = 0;
        int r = relay_frames(peer_fd, buf_fd, q, key, store, &a, &want, st, e);
        if (r < 0)
                return r;
        if (XXH64(map, a.nr * FM_PAGE_SIZE, 0) != want)
                return fm_err(e, EBADMSG, "lazy pages: the pages at %#llx do not match their checksum",
                              (unsigned long long)q->vaddr);
        fm_criu_iov iov = {.cmd = (FM_CRIU_PE_PRESENT << 16) | FM_CRIU_PS_IOV_ADD_F, .nr_pages = a.nr,
                           .vaddr = a.vaddr, .dst_id = a.id};
        if ((r = fm_write_all(daemon_fd, &iov, sizeof(iov))) < 0 ||
            (r = fm_write_all(daemon_fd, map, a.nr * FM_PAGE_SIZE)) < 0)
                return fm_err(e, -r, "lazy pages: writing to the daemon: %s", strerror(-r));
        st->requests++;
        st->pages += a.nr;
        return 0;
}

static int target_serve(int daemon_fd, int peer_fd, int buf_fd, const uint8_t *map, const uint8_t *key,
                        fm_pagestore *store, fm_pagerelay_stats *st, fm_error *e)
{
        int r;
        for (;;) {
                fm_criu_iov iov;
                if ((r = fm_read_all(daemon_fd, &iov, sizeof(iov))) < 0)
                        return fm_err(e, -r, "lazy pages: the lazy-pages daemon %s",
                                      r == -EPIPE ? "went away" : strerror(-r));
                if (iov.cmd == FM_CRIU_PS_IOV_CLOSE || iov.cmd == FM_CRIU_PS_IOV_FORCE_CLOSE)
                        break;
                if (iov.cmd != FM_CRIU_PS_IOV_GET)
                        return fm_err(e, EPROTO, "lazy pages: the daemon sent command %#x", iov.cmd);
                fm_lazy_req q = {.id = iov.dst_id, .vaddr = iov.vaddr, .nr = iov.nr_pages};
                uint8_t req[FM_LAZY_REQ_LEN];
                fm_lazy_req_build(req, &q);
                if (fm_lazy_req_parse(req, sizeof(req), &q, e) < 0)
                        return fm_err_wrap(e, "lazy pages: from the daemon");
                if ((r = fm_frame_send(peer_fd, FM_FRAME_DATA, req, sizeof(req))) < 0)
                        return fm_err(e, -r, "lazy pages: asking the source: %s", strerror(-r));
                if ((r = relay_answer(daemon_fd, peer_fd, buf_fd, map, &q, key, store, st, e)) < 0)
                        return r;
        }
        /* all memory is in place here: the source's dump may end */
        if ((r = fm_frame_send(peer_fd, FM_FRAME_END, NULL, 0)) < 0)
                return fm_err(e, -r, "lazy pages: ending the stream: %s", strerror(-r));
        uint8_t t = 0;
        json_object *rep = NULL;
        if ((r = fm_msg_recv(peer_fd, &t, &rep, e)) < 0)
                return fm_err_wrap(e, "lazy pages: the source's last word");
        int64_t status = -1;
        r = t == FM_FRAME_REPLY ? fm_reply_check(rep, e) : fm_err(e, EPROTO, "lazy pages: no reply at the end");
        if (r == 0)
                r = fm_json_int(rep, "criu_status", true, INT32_MIN, INT32_MAX, &status, e);
        json_object_put(rep);
        if (r < 0)
                return r;
        st->criu_status = (int)status;
        int32_t s = (int32_t)status;
        if ((r = fm_write_all(daemon_fd, &s, sizeof(s))) < 0)
                return fm_err(e, -r, "lazy pages: writing to the daemon: %s", strerror(-r));
        return 0;
}

int fm_pagerelay_target(int daemon_fd, int peer_fd, const uint8_t *key, fm_pagestore *store, fm_pagerelay_stats *st,
                        fm_error *e)
{
        /* each answer is rebuilt here, and checked, before the daemon sees it */
        size_t room = (size_t)FM_LAZY_MAX_PAGES * FM_PAGE_SIZE;
        int buf_fd = memfd_create("fastmig-lazy-answer", MFD_CLOEXEC);
        if (buf_fd < 0 || ftruncate(buf_fd, (off_t)room) < 0) {
                int err = errno;
                fm_close(buf_fd);
                return fm_err(e, err, "lazy pages: %s", strerror(err));
        }
        uint8_t *map = mmap(NULL, room, PROT_READ, MAP_SHARED, buf_fd, 0);
        if (map == MAP_FAILED) {
                int err = errno;
                fm_close(buf_fd);
                return fm_err(e, err, "lazy pages: %s", strerror(err));
        }
        int r = target_serve(daemon_fd, peer_fd, buf_fd, map, key, store, st, e);
        munmap(map, room);
        fm_close(buf_fd);
        return r;
}
