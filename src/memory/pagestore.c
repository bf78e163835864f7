#include "pagestore.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include <xxhash.h>

fm_page_hash fm_page_hash_of(const void *page, const uint8_t *key)
{
        XXH128_hash_t h = XXH3_128bits_withSecret(page, FM_PAGE_SIZE, key, FM_HASH_KEY_SIZE);
        fm_page_hash r = {h.low64, h.high64};
        if (r.lo == 0 && r.hi == 0) /* {0,0} marks an empty slot */
                r.lo = 1;
        return r;
}

bool fm_page_is_zero(const void *page)
{
        const uint64_t *w = page;
        for (size_t i = 0; i < FM_PAGE_SIZE / 8; i++)
                if (w[i])
                        return false;
        return true;
}

int fm_pagestore_open(fm_pagestore *s, const char *path, uint64_t max_pages, fm_error *e)
{
        memset(s, 0, sizeof(*s));
        s->fd = -1;
        if (max_pages == 0 || max_pages > (1ull << 32))
                return fm_err(e, EINVAL, "page store size %llu out of range", (unsigned long long)max_pages);
        s->nslots = 16;
        while (s->nslots < max_pages * 2)
                s->nslots <<= 1;
        s->slots = calloc(s->nslots, sizeof(*s->slots));
        s->offsets = calloc(s->nslots, sizeof(*s->offsets));
        if (!s->slots || !s->offsets) {
                fm_pagestore_close(s);
                return fm_err(e, ENOMEM, "no memory for a page index of %llu pages", (unsigned long long)max_pages);
        }
        s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (s->fd < 0) {
                int err = errno;
                fm_pagestore_close(s);
                return fm_err(e, err, "creating page store %s: %s", path, strerror(err));
        }
        s->max_pages = max_pages;
        return 0;
}

void fm_pagestore_close(fm_pagestore *s)
{
        if (!s)
                return;
        free(s->slots);
        free(s->offsets);
        s->slots = NULL;
        s->offsets = NULL;
        if (s->map)
                munmap(s->map, s->map_len);
        s->map = NULL;
        s->map_len = 0;
        if (s->fd >= 0)
                s->fd = fm_close(s->fd);
}

static uint64_t find_slot(const fm_pagestore *s, fm_page_hash h)
{
        uint64_t mask = s->nslots - 1, i = h.lo & mask;
        while (s->slots[i].lo || s->slots[i].hi) {
                if (s->slots[i].lo == h.lo && s->slots[i].hi == h.hi)
                        return i;
                i = (i + 1) & mask;
        }
        return i; /* the empty slot where h would go */
}

bool fm_pagestore_has(const fm_pagestore *s, fm_page_hash h)
{
        uint64_t i = find_slot(s, h);
        return s->slots[i].lo || s->slots[i].hi;
}

int fm_pagestore_put(fm_pagestore *s, fm_page_hash h, const void *page, fm_error *e)
{
        uint64_t i = find_slot(s, h);
        if (s->slots[i].lo || s->slots[i].hi)
                return 0;
        if (s->npages >= s->max_pages)
                return fm_err(e, ENOSPC, "page store full (%llu pages)", (unsigned long long)s->max_pages);
        off_t off = (off_t)(s->npages * FM_PAGE_SIZE);
        ssize_t w = pwrite(s->fd, page, FM_PAGE_SIZE, off);
        if (w != FM_PAGE_SIZE) {
                int err = w < 0 ? errno : ENOSPC;
                return fm_err(e, err, "writing to the page store: %s", strerror(err));
        }
        s->slots[i] = h;
        s->offsets[i] = s->npages++;
        return 0;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

int fm_pagestore_map(fm_pagestore *s, bool populate)
{
        size_t want = (size_t)(s->npages * FM_PAGE_SIZE), old = s->map ? s->map_len : 0;
        if (want <= old)
                return 0;
        /* grown in place where it can: what is mapped stays populated */
        void *m = s->map ? mremap(s->map, s->map_len, want, MREMAP_MAYMOVE)
                         : mmap(NULL, want, PROT_READ, MAP_SHARED, s->fd, 0);
        if (m == MAP_FAILED)
                return -errno;
        s->map = m;
        s->map_len = want;
        if (populate) /* an older kernel faults them in as they are read */
                (void)madvise(s->map + old, want - old, MADV_POPULATE_READ);
        return 0;
}

const uint8_t *fm_pagestore_ref(fm_pagestore *s, fm_page_hash h, fm_error *e)
{
        uint64_t i = find_slot(s, h);
        if (!s->slots[i].lo && !s->slots[i].hi) {
                fm_err(e, ENOENT, "page %016llx%016llx is not in the store", (unsigned long long)h.hi,
                       (unsigned long long)h.lo);
                return NULL;
        }
        size_t off = (size_t)(s->offsets[i] * FM_PAGE_SIZE);
        /* a mapping instead of a pread per page: the final images of a large
         * container are hundreds of thousands of references. It is made
         * (populated) after each pre-copy round; pages stored since fault
         * in as they are read, rather than all of it again while frozen. */
        if (off + FM_PAGE_SIZE > s->map_len) {
                if (fm_pagestore_map(s, false) < 0) {
                        ssize_t r = pread(s->fd, s->page, FM_PAGE_SIZE, (off_t)off);
                        if (r == FM_PAGE_SIZE)
                                return s->page;
                        fm_err(e, r < 0 ? errno : EIO, "reading the page store");
                        return NULL;
                }
        }
        return s->map + off;
}

int fm_pagestore_get(fm_pagestore *s, fm_page_hash h, void *out, fm_error *e)
{
        const uint8_t *p = fm_pagestore_ref(s, h, e);
        if (!p)
                return -e->code;
        memcpy(out, p, FM_PAGE_SIZE);
        return 0;
}
