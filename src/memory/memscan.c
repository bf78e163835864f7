#include "memscan.h"

#include <fcntl.h>
#include <string.h>
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

static int scan_range(pid_t pid, int pagemap, uint64_t lo, uint64_t hi, uint8_t *buf, fm_page_fn fn, void *ctx,
                      uint64_t *scanned, fm_error *e)
{
        uint64_t pm[CHUNK_PAGES];
        for (uint64_t a = lo; a < hi; a += (uint64_t)CHUNK_PAGES * FM_PAGE_SIZE) {
                uint64_t n = (hi - a) / FM_PAGE_SIZE;
                if (n > CHUNK_PAGES)
                        n = CHUNK_PAGES;
                ssize_t got = pread(pagemap, pm, n * 8, (off_t)(a / FM_PAGE_SIZE * 8));
                if (got < 0)
                        return 0; /* the process went away */
                n = (uint64_t)got / 8;
                /* one iovec per run of present pages */
                struct iovec local[CHUNK_PAGES], remote[CHUNK_PAGES];
                uint64_t addr[CHUNK_PAGES];
                int nv = 0;
                size_t off = 0;
                for (uint64_t i = 0; i < n; i++) {
                        if (!(pm[i] >> 63 & 1)) /* not present (swap is rare on edge hosts; CRIU gets it) */
                                continue;
                        addr[off / FM_PAGE_SIZE] = a + i * FM_PAGE_SIZE;
                        if (nv && (char *)remote[nv - 1].iov_base + remote[nv - 1].iov_len == (char *)(uintptr_t)(a + i * FM_PAGE_SIZE)) {
                                remote[nv - 1].iov_len += FM_PAGE_SIZE;
                                local[nv - 1].iov_len += FM_PAGE_SIZE;
                        } else {
                                remote[nv] = (struct iovec){(void *)(uintptr_t)(a + i * FM_PAGE_SIZE), FM_PAGE_SIZE};
                                local[nv] = (struct iovec){buf + off, FM_PAGE_SIZE};
                                nv++;
                        }
                        off += FM_PAGE_SIZE;
                }
                if (!nv)
                        continue;
                ssize_t r = process_vm_readv(pid, local, (unsigned long)nv, remote, (unsigned long)nv, 0);
                if (r < 0) {
                        if (errno == ESRCH || errno == EFAULT)
                                continue; /* gone or unmapped meanwhile */
                        return fm_err(e, errno, "reading memory of pid %d: %s", pid, strerror(errno));
                }
                for (size_t p = 0; p + FM_PAGE_SIZE <= (size_t)r; p += FM_PAGE_SIZE) {
                        int q = fn(ctx, pid, addr[p / FM_PAGE_SIZE], buf + p);
                        if (q < 0)
                                return q;
                        (*scanned)++;
                }
        }
        return 0;
}

int fm_memscan_process(pid_t pid, fm_page_fn fn, void *ctx, uint64_t *scanned, fm_error *e)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/maps", pid);
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
        while (fgets(line, sizeof(line), maps)) {
                unsigned long long lo, hi;
                char perms[8] = "", name[512] = "";
                if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %511[^\n]", &lo, &hi, perms, name) < 3)
                        continue;
                if (!wanted(perms, name))
                        continue;
                int r = scan_range(pid, pagemap, lo, hi, buf, fn, ctx, scanned, e);
                if (r < 0)
                        return r;
        }
        return 0;
}
