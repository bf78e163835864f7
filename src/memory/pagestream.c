#include "pagestream.h"

#include <string.h>
#include <lz4.h>
#include <xxhash.h>

#define OUTBUF (1 << 20)

int fm_hashset_init(fm_hashset *s, uint64_t expect)
{
        memset(s, 0, sizeof(*s));
        s->nslots = 64;
        while (s->nslots < expect * 2)
                s->nslots <<= 1;
        s->slots = calloc(s->nslots, sizeof(*s->slots));
        return s->slots ? 0 : -ENOMEM;
}

void fm_hashset_free(fm_hashset *s)
{
        free(s->slots);
        memset(s, 0, sizeof(*s));
}

static uint64_t slot_of(const fm_page_hash *slots, uint64_t nslots, fm_page_hash h)
{
        uint64_t mask = nslots - 1, i = h.lo & mask;
        while ((slots[i].lo || slots[i].hi) && (slots[i].lo != h.lo || slots[i].hi != h.hi))
                i = (i + 1) & mask;
        return i;
}

bool fm_hashset_has(const fm_hashset *s, fm_page_hash h)
{
        uint64_t i = slot_of(s->slots, s->nslots, h);
        return s->slots[i].lo || s->slots[i].hi;
}

int fm_hashset_add(fm_hashset *s, fm_page_hash h)
{
        if ((s->n + 1) * 2 > s->nslots) {
                uint64_t nn = s->nslots * 2;
                fm_page_hash *ns = calloc(nn, sizeof(*ns));
                if (!ns)
                        return -ENOMEM;
                for (uint64_t i = 0; i < s->nslots; i++)
                        if (s->slots[i].lo || s->slots[i].hi)
                                ns[slot_of(ns, nn, s->slots[i])] = s->slots[i];
                free(s->slots);
                s->slots = ns;
                s->nslots = nn;
        }
        uint64_t i = slot_of(s->slots, s->nslots, h);
        if (!s->slots[i].lo && !s->slots[i].hi) {
                s->slots[i] = h;
                s->n++;
        }
        return 0;
}

int fm_pagestream_put_page(const uint8_t *page, const uint8_t *key, fm_hashset *held, bool compress, uint8_t *out,
                           fm_pagestream_stats *st)
{
        if (fm_page_is_zero(page)) {
                out[0] = 'Z';
                st->zero++;
                st->bytes += 1;
                return 1;
        }
        fm_page_hash h = fm_page_hash_of(page, key);
        if (fm_hashset_has(held, h)) {
                out[0] = 'R';
                fm_put_be64(out + 1, h.hi);
                fm_put_be64(out + 9, h.lo);
                st->ref++;
                st->bytes += 17;
                return 17;
        }
        if (fm_hashset_add(held, h) < 0)
                return -ENOMEM;
        st->literal++;
        int n = compress ? LZ4_compress_default((const char *)page, (char *)out + 3, FM_PAGE_SIZE, FM_PAGE_LZ4_MAX) : 0;
        if (n > 0) {
                out[0] = 'C';
                out[1] = (uint8_t)(n >> 8);
                out[2] = (uint8_t)n;
                st->compressed++;
                st->bytes += 3 + (uint64_t)n;
                return 3 + n;
        }
        out[0] = 'L';
        memcpy(out + 1, page, FM_PAGE_SIZE);
        st->bytes += 1 + FM_PAGE_SIZE;
        return 1 + FM_PAGE_SIZE;
}

int fm_pagestream_put_tail(const uint8_t *bytes, size_t len, uint8_t *out, fm_pagestream_stats *st)
{
        if (len == 0 || len >= FM_PAGE_SIZE)
                return -EINVAL;
        out[0] = 'T';
        out[1] = (uint8_t)(len >> 8);
        out[2] = (uint8_t)len;
        memcpy(out + 3, bytes, len);
        st->tail_bytes += len;
        st->bytes += 3 + len;
        return (int)(3 + len);
}

static int flush_out(int fd, const uint8_t *out, size_t *used, void *xxh64, fm_error *e)
{
        if (!*used)
                return 0;
        if (xxh64)
                XXH64_update(xxh64, out, *used);
        int r = fm_write_all(fd, out, *used);
        *used = 0;
        return r < 0 ? fm_err(e, -r, "writing rebuilt pages: %s", strerror(-r)) : 0;
}

/* One record at buf[*i]: its tag, its payload (the bytes after the tag and
 * length) and how many bytes it rebuilds. Checks the framing only. */
static int record_next(const uint8_t *buf, size_t len, size_t *i, uint8_t *tag, const uint8_t **pl, size_t *pn,
                       size_t *out_n, fm_error *e)
{
        size_t at = *i;
        *tag = buf[at++];
        *out_n = FM_PAGE_SIZE;
        *pn = 0;
        switch (*tag) {
        case 'L':
                if (len - at < FM_PAGE_SIZE)
                        return fm_err(e, EPROTO, "page record cut short at byte %zu", *i);
                *pn = FM_PAGE_SIZE;
                break;
        case 'C':
        case 'T':
                if (len - at < 2)
                        return fm_err(e, EPROTO, "%s record cut short at byte %zu", *tag == 'C' ? "compressed" : "tail",
                                      *i);
                *pn = (size_t)buf[at] << 8 | buf[at + 1];
                at += 2;
                if (*tag == 'C' && (*pn == 0 || *pn > FM_PAGE_LZ4_MAX || len - at < *pn))
                        return fm_err(e, EPROTO, "bad compressed record of %zu bytes", *pn);
                if (*tag == 'T' && (*pn == 0 || *pn >= FM_PAGE_SIZE || len - at < *pn))
                        return fm_err(e, EPROTO, "bad tail record of %zu bytes", *pn);
                if (*tag == 'T')
                        *out_n = *pn;
                break;
        case 'R':
                if (len - at < 16)
                        return fm_err(e, EPROTO, "reference record cut short at byte %zu", *i);
                *pn = 16;
                break;
        case 'Z':
                break;
        default:
                return fm_err(e, EPROTO, "unknown page record tag 0x%02x at byte %zu", *tag, *i);
        }
        *pl = buf + at;
        *i = at + *pn;
        return 0;
}

int fm_pagestream_decoded_size(const uint8_t *buf, size_t len, uint64_t *size, fm_error *e)
{
        uint64_t total = 0;
        for (size_t i = 0; i < len;) {
                uint8_t tag;
                const uint8_t *pl;
                size_t pn, n;
                int r = record_next(buf, len, &i, &tag, &pl, &pn, &n, e);
                if (r < 0)
                        return r;
                total += n;
        }
        *size = total;
        return 0;
}

int fm_pagestream_decode(const uint8_t *buf, size_t len, const uint8_t *key, fm_pagestore *store, int out_fd,
                         void *xxh64, fm_pagestream_stats *st, fm_error *e)
{
        static const uint8_t zero[FM_PAGE_SIZE];
        uint8_t page[FM_PAGE_SIZE];
        /* output is flushed whenever the buffer fills: a small input needs a
         * small one (the fuzzer feeds millions of small inputs) */
        size_t cap = len < OUTBUF / 16 ? (len + 1) * 16 : OUTBUF;
        if (cap < FM_PAGE_SIZE)
                cap = FM_PAGE_SIZE;
        _cleanup_free_ uint8_t *out = malloc(cap);
        size_t used = 0;
        if (!out)
                return fm_err(e, ENOMEM, "out of memory");
        for (size_t i = 0; i < len;) {
                uint8_t tag;
                const uint8_t *data = NULL, *pl;
                size_t pn, n;
                int r = record_next(buf, len, &i, &tag, &pl, &pn, &n, e);
                if (r < 0)
                        return r;
                switch (tag) {
                case 'C':
                        if (LZ4_decompress_safe((const char *)pl, (char *)page, (int)pn, FM_PAGE_SIZE) != FM_PAGE_SIZE)
                                return fm_err(e, EPROTO, "compressed page at byte %zu does not decompress to a page",
                                              (size_t)(pl - buf) - 3);
                        st->compressed++;
                        __attribute__((fallthrough)); /* a literal page once decompressed */
                case 'L':
                        data = tag == 'C' ? page : pl;
                        r = fm_pagestore_put(store, fm_page_hash_of(data, key), data, e);
                        st->literal++;
                        break;
                case 'R': {
                        fm_page_hash h = {fm_get_be64(pl + 8), fm_get_be64(pl)};
                        if (!(data = fm_pagestore_ref(store, h, e)))
                                return fm_err_wrap(e, "reference to a page the target lacks");
                        st->ref++;
                        break;
                }
                case 'Z':
                        data = zero;
                        st->zero++;
                        break;
                case 'T':
                        data = pl;
                        st->tail_bytes += n;
                        break;
                }
                if (r < 0)
                        return r;
                if (used + n > cap && (r = flush_out(out_fd, out, &used, xxh64, e)) < 0)
                        return r;
                memcpy(out + used, data, n);
                used += n;
        }
        return flush_out(out_fd, out, &used, xxh64, e);
}
