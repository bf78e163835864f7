#include "memscan.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include "memory/pagestore.h"

#define CHUNK_PAGES 256 /* 1 MiB per read */

/* Mappings whose pages CRIU dumps as memory: private and writable; not the
 * kernel's vdso/vvar/vsyscall. */
static bool wanted(const char *perms, const char *name)
{
        if (perms[1] != 'w' || perms[3] != 'p')
                return false;
        return !(strstr(name, "[vdso]") || strstr(name, "[vvar") || strstr(name, "[vsyscall]"));
}

#define PAGEMAP_BATCH 65536 /* pagemap entries per read: 256 MiB of address space */

/* PAGEMAP_SCAN (Linux 6.7): the kernel lists the present ranges itself, so a
 * huge sparse mapping costs nothing. Debian 12's headers predate it. */
#ifndef PAGEMAP_SCAN
struct page_region {
        uint64_t start, end, categories;
};
struct pm_scan_arg {
        uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
        uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#endif

typedef struct batch {
        struct iovec local[CHUNK_PAGES], remote[CHUNK_PAGES];
        uint64_t addr[CHUNK_PAGES];
        int nv;
        size_t npages;
} batch;

static int batch_flush(pid_t pid, batch *bt, uint8_t *buf, fm_page_fn fn, void *ctx, uint64_t *scanned, fm_error *e)
{
        if (!bt->nv)
                return 0;
        ssize_t r = process_vm_readv(pid, bt->local, (unsigned long)bt->nv, bt->remote, (unsigned long)bt->nv, 0);
        int nv = bt->nv;
        bt->nv = 0;
        bt->npages = 0;
        (void)nv;
        if (r < 0) {
                if (errno == ESRCH || errno == EFAULT)
                        return 0; /* gone or unmapped meanwhile */
                return fm_err(e, errno, "reading memory of pid %d: %s", pid, strerror(errno));
        }
        for (size_t p = 0; p + FM_PAGE_SIZE <= (size_t)r; p += FM_PAGE_SIZE) {
                int q = fn(ctx, pid, bt->addr[p / FM_PAGE_SIZE], buf + p);
                if (q < 0)
                        return q;
                (*scanned)++;
        }
        return 0;
}

static int batch_add(pid_t pid, batch *bt, uint64_t pa, uint8_t *buf, fm_page_fn fn, void *ctx, uint64_t *scanned,
                     fm_error *e)
{
        size_t off = bt->npages * FM_PAGE_SIZE;
        if (bt->nv && (uint64_t)(uintptr_t)bt->remote[bt->nv - 1].iov_base + bt->remote[bt->nv - 1].iov_len == pa) {
                bt->remote[bt->nv - 1].iov_len += FM_PAGE_SIZE;
                bt->local[bt->nv - 1].iov_len += FM_PAGE_SIZE;
        } else {
                bt->remote[bt->nv] = (struct iovec){(void *)(uintptr_t)pa, FM_PAGE_SIZE};
                bt->local[bt->nv] = (struct iovec){buf + off, FM_PAGE_SIZE};
                bt->nv++;
        }
        bt->addr[bt->npages++] = pa;
        return bt->npages == CHUNK_PAGES ? batch_flush(pid, bt, buf, fn, ctx, scanned, e) : 0;
}

/* 1: done with PAGEMAP_SCAN, 0: not supported, < 0: error */
static int scan_range_ioctl(pid_t pid, int pagemap, uint64_t lo, uint64_t hi, batch *bt, uint8_t *buf, fm_page_fn fn,
                            void *ctx, uint64_t *scanned, fm_error *e)
{
        struct page_region reg[256];
        uint64_t start = lo;
        while (start < hi) {
                struct pm_scan_arg arg = {.size = sizeof(arg), .start = start, .end = hi,
                                          .vec = (uint64_t)(uintptr_t)reg, .vec_len = 256,
                                          .category_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT};
                int n = ioctl(pagemap, PAGEMAP_SCAN, &arg);
                if (n < 0)
                        return start == lo && (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP) ? 0 : 1;
                for (int i = 0; i < n; i++)
                        for (uint64_t pa = reg[i].start; pa < reg[i].end; pa += FM_PAGE_SIZE) {
                                int r = batch_add(pid, bt, pa, buf, fn, ctx, scanned, e);
                                if (r < 0)
                                        return r;
                        }
                if (arg.walk_end <= start)
                        break;
                start = arg.walk_end;
        }
        int r = batch_flush(pid, bt, buf, fn, ctx, scanned, e);
        return r < 0 ? r : 1;
}

static int scan_range(pid_t pid, int pagemap, uint64_t lo, uint64_t hi, uint8_t *buf, fm_page_fn fn, void *ctx,
                      uint64_t *scanned, fm_error *e)
{
        static _Thread_local uint64_t pm[PAGEMAP_BATCH];
        static _Thread_local batch bt;
        bt.nv = 0;
        bt.npages = 0;
        int q = scan_range_ioctl(pid, pagemap, lo, hi, &bt, buf, fn, ctx, scanned, e);
        if (q != 0)
                return q < 0 ? q : 0;
        for (uint64_t a = lo; a < hi; a += (uint64_t)PAGEMAP_BATCH * FM_PAGE_SIZE) {
                uint64_t n = (hi - a) / FM_PAGE_SIZE;
                if (n > PAGEMAP_BATCH)
                        n = PAGEMAP_BATCH;
                ssize_t got = pread(pagemap, pm, n * 8, (off_t)(a / FM_PAGE_SIZE * 8));
                if (got < 0)
                        return 0; /* the process went away */
                n = (uint64_t)got / 8;
                for (uint64_t i = 0; i < n; i++) {
                        if (!(pm[i] >> 63 & 1)) /* not present (swap is rare on edge hosts; CRIU gets it) */
                                continue;
                        int r = batch_add(pid, &bt, a + i * FM_PAGE_SIZE, buf, fn, ctx, scanned, e);
                        if (r < 0)
                                return r;
                }
        }
        return batch_flush(pid, &bt, buf, fn, ctx, scanned, e);
}

int fm_memscan_process(pid_t pid, fm_page_fn fn, void *ctx, uint64_t *scanned, fm_error *e)
{
        char path[64];
        /* smaps rather than maps: its Rss line lets us skip mappings with no
         * page present without reading their pagemap (a sanitizer's shadow
         * or a big reserved heap is terabytes of nothing) */
        snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
        _cleanup_fclose_ FILE *maps = fopen(path, "re");
        if (!maps)
                return errno == ENOENT ? 0 : fm_err(e, errno, "opening %s: %s", path, strerror(errno));
        snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
        _cleanup_close_ int pagemap = open(path, O_RDONLY | O_CLOEXEC);
        if (pagemap < 0)
                return errno == ENOENT ? 0 : fm_err(e, errno, "opening %s: %s", path, strerror(errno));
        _cleanup_free_ uint8_t *buf = malloc((size_t)CHUNK_PAGES * FM_PAGE_SIZE);
        if (!buf)
                return fm_err(e, ENOMEM, "out of memory");
        char line[1024];
        unsigned long long lo = 0, hi = 0;
        bool want = false;
        while (fgets(line, sizeof(line), maps)) {
                unsigned long long a, b;
                char perms[8] = "", name[512] = "";
                unsigned long rss_kb = 0;
                if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %511[^\n]", &a, &b, perms, name) >= 3) {
                        lo = a;
                        hi = b;
                        want = wanted(perms, name);
                } else if (want && sscanf(line, "Rss: %lu kB", &rss_kb) == 1) {
                        want = false;
                        if (rss_kb == 0)
                                continue;
                        int r = scan_range(pid, pagemap, lo, hi, buf, fn, ctx, scanned, e);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}
