#include "shared.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

bool fm_shared_fstype_ok(const char *t)
{
        static const char *const ok[] = {"nfs", "nfs4", "cifs", "smb3", "ceph", "glusterfs", "lustre", "gpfs",
                                         "beegfs", "ocfs2", "gfs2", "fuse.glusterfs", "fuse.sshfs", "fuse.ceph",
                                         "fuse.ceph-fuse", "fuse.mfs", "fuse.moosefs", "fuse.juicefs",
                                         "fuse.lizardfs", "fuse.beegfs"};
        for (size_t i = 0; t && i < FM_ARRAY_SIZE(ok); i++)
                if (!strcmp(t, ok[i]))
                        return true;
        return false;
}

/* The type and source of the file system mounted exactly at path ("" if
 * none). */
static void mount_of(const char *path, char *type, size_t n, char *source, size_t sn)
{
        _cleanup_free_ char *mi = NULL;
        type[0] = source[0] = '\0';
        if (fm_read_file("/proc/self/mountinfo", &mi, 16 << 20) < 0)
                return;
        char *save = NULL;
        for (char *l = strtok_r(mi, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char mp[PATH_MAX], t[64], src[256];
                const char *dash = strstr(l, " - ");
                /* id parent major:minor root mountpoint ... - type source opts */
                if (!dash || sscanf(l, "%*s %*s %*s %*s %4095s", mp) != 1 ||
                    sscanf(dash + 3, "%63s %255s", t, src) != 2)
                        continue;
                if (!strcmp(mp, path)) { /* the last one is what is visible */
                        snprintf(type, n, "%s", t);
                        snprintf(source, sn, "%s", src);
                }
        }
}

int fm_shared_server(const char *path, char *buf, size_t n)
{
        char type[64], source[256];
        mount_of(path, type, sizeof(type), source, sizeof(source));
        char *colon = strchr(source, ':');
        if (!colon || colon == source)
                return -ENOENT;
        *colon = '\0';
        snprintf(buf, n, "%s", source);
        return 0;
}

static bool is_id(const char *s)
{
        if (strlen(s) != FM_SHARED_ID_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int read_id(const char *file, char *id, fm_error *e)
{
        _cleanup_free_ char *s = NULL;
        int r = fm_read_file(file, &s, 4096);
        if (r < 0)
                return r;
        while (r > 0 && (s[r - 1] == '\n' || s[r - 1] == ' '))
                s[--r] = '\0';
        if (!is_id(s))
                return fm_err(e, EINVAL, "%s does not hold a volume id (32 hex digits); remove it", file);
        snprintf(id, FM_SHARED_ID_LEN + 1, "%s", s);
        return 0;
}

int fm_shared_open(const char *path, fm_shared_volume *v, fm_error *e)
{
        memset(v, 0, sizeof(*v));
        char real[PATH_MAX];
        if (!realpath(path, real))
                return fm_err(e, errno, "shared volume %s: %s", path, strerror(errno));
        if (strlen(real) >= sizeof(v->path))
                return fm_err(e, ENAMETOOLONG, "shared volume path %s is too long", real);
        snprintf(v->path, sizeof(v->path), "%s", real);
        char source[256];
        mount_of(real, v->fstype, sizeof(v->fstype), source, sizeof(source));
        if (!v->fstype[0])
                return fm_err(e, EINVAL, "%s is not a mount point: mount the shared volume (GlusterFS, NFS, CephFS...) there",
                              real);
        if (!fm_shared_fstype_ok(v->fstype))
                return fm_err(e, EINVAL, "%s is a %s mount, not a network file system that other hosts can share",
                              real, v->fstype);
        char file[PATH_MAX + 32];
        snprintf(file, sizeof(file), "%s/" FM_SHARED_ID_FILE, real);
        int r = read_id(file, v->id, e);
        if (r != -ENOENT)
                return r < 0 ? fm_err_wrap(e, "shared volume %s", real) : 0;
        /* the first host here names the volume: written aside, then linked
         * in place (a host that loses the race reads the winner's id) */
        uint8_t raw[FM_SHARED_ID_LEN / 2];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
                return fm_err(e, EIO, "getrandom failed");
        char id[FM_SHARED_ID_LEN + 2], tmp[PATH_MAX + 64];
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(id + 2 * i, 3, "%02x", raw[i]);
        snprintf(tmp, sizeof(tmp), "%s/" FM_SHARED_ID_FILE ".%s", real, id);
        strcat(id, "\n");
        if ((r = fm_write_file(tmp, id, strlen(id), 0644)) < 0)
                return fm_err(e, -r, "writing %s: %s", tmp, strerror(-r));
        if (link(tmp, file) < 0 && errno != EEXIST) {
                r = -errno;
                unlink(tmp);
                return fm_err(e, -r, "creating %s: %s", file, strerror(-r));
        }
        unlink(tmp);
        r = read_id(file, v->id, e);
        return r < 0 ? fm_err(e, -r, "shared volume %s: reading %s: %s", real, file, e->msg[0] ? e->msg : strerror(-r))
                     : 0;
}

void fm_shared_ct_rel(const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "fastmig/containers/%s", name);
}

void fm_shared_rootfs_rel(const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "fastmig/containers/%s/rootfs", name);
}

/* Starts fn(arg) in a thread nobody joins; false if none could start. */
static bool run_detached(void *(*fn)(void *), void *arg)
{
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        bool ok = pthread_create(&th, &at, fn, arg) == 0;
        pthread_attr_destroy(&at);
        return ok;
}

static void *discard_thread(void *arg)
{
        char *path = arg;
        fm_rm_rf(path);
        free(path);
        return NULL;
}

int fm_shared_discard(const char *volume, const char *rel, fm_error *e)
{
        if (!rel[0] || strstr(rel, ".."))
                return fm_err(e, EINVAL, "bad path `%s' on the shared volume", rel);
        _cleanup_free_ char *from = fm_strdupf("%s/%s", volume, rel);
        _cleanup_free_ char *trash = fm_strdupf("%s/fastmig/trash", volume);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char *to = fm_strdupf("%s/%lld.%09ld.%d", trash ? trash : "", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid());
        if (!from || !trash || !to) {
                free(to);
                return fm_err(e, ENOMEM, "out of memory");
        }
        int r = fm_mkdir_p(trash, 0700);
        if (r == 0 && rename(from, to) < 0)
                r = -errno;
        if (r < 0) {
                fm_err(e, -r, "moving %s to %s: %s", from, trash, strerror(-r));
                free(to);
                return -e->code;
        }
        /* a tree of fastmig's own layout (fm_shared_rootfs_rel of the
         * directory's name) leaves its container directory behind */
        char parent[256], mine[300], ct[300];
        snprintf(parent, sizeof(parent), "%s", rel);
        char *slash = strrchr(parent, '/');
        if (slash) {
                *slash = '\0';
                const char *name = strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent;
                fm_shared_rootfs_rel(name, mine, sizeof(mine));
                fm_shared_ct_rel(name, ct, sizeof(ct));
                _cleanup_free_ char *dir = fm_strdupf("%s/%s", volume, ct);
                if (!strcmp(mine, rel) && dir)
                        rmdir(dir); /* only if empty: anything else there is not ours to drop */
        }
        if (!run_detached(discard_thread, to))
                discard_thread(to);
        return 0;
}

/* ---- work in a child that can be killed when the storage hangs ---- */

static double mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *reaper(void *arg)
{
        pid_t pid = (pid_t)(intptr_t)arg;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return NULL;
}



/* Runs fn(arg, out_fd) in a child; reads up to cap bytes it writes to
 * out_fd into buf. Returns the child's exit status, or -ETIMEDOUT (child
 * killed) or a negative errno. */
static int run_child(int (*fn)(void *, int), void *arg, int deadline_ms, void *buf, size_t cap, size_t *got)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                close(p[0]);
                _exit(fn(arg, p[1]));
        }
        close(p[1]);
        double end = mono_ms() + deadline_ms;
        *got = 0;
        int r = 0;
        for (;;) {
                double left = end - mono_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct pollfd pf = {.fd = p[0], .events = POLLIN};
                int n = poll(&pf, 1, (int)left + 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        continue;
                ssize_t k = read(p[0], (char *)buf + *got, cap - *got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break; /* the child closed its end: it ended */
                *got += (size_t)k;
                if (*got == cap)
                        break;
        }
        close(p[0]);
        if (r == -ETIMEDOUT) {
                /* A FUSE request the file system's daemon has taken cannot be
                 * interrupted, not even by SIGKILL: the child ends only once
                 * the storage answers (or its client gives up). Not waited
                 * for here; a thread reaps it. */
                kill(pid, SIGKILL);
                run_detached(reaper, (void *)(intptr_t)pid);
                return r;
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

typedef struct probe_arg {
        char dir[PATH_MAX];
        int n;
} probe_arg;

/* Child: writes one double (ms) per operation to out. */
static int probe_child(void *arg, int out)
{
        probe_arg *a = arg;
        char path[PATH_MAX + 32];
        if (mkdir(a->dir, 0700) < 0 && errno != EEXIST)
                return 10;
        snprintf(path, sizeof(path), "%s/data", a->dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return 11;
        static char page[4096];
        memset(page, 0x5a, sizeof(page));
        int rc = 0;
        for (int i = 0; i < a->n && !rc; i++) {
                double t = mono_ms();
                if (pwrite(fd, page, sizeof(page), (off_t)i * (off_t)sizeof(page)) != (ssize_t)sizeof(page) ||
                    fdatasync(fd) < 0)
                        rc = 12;
                double ms = mono_ms() - t;
                if (!rc && write(out, &ms, sizeof(ms)) != (ssize_t)sizeof(ms))
                        rc = 13;
        }
        close(fd);
        unlink(path);
        for (int i = 0; i < a->n && !rc; i++) {
                snprintf(path, sizeof(path), "%s/f%d", a->dir, i);
                double t = mono_ms();
                int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (f < 0 || close(f) < 0 || unlink(path) < 0)
                        rc = 14;
                double ms = mono_ms() - t;
                if (!rc && write(out, &ms, sizeof(ms)) != (ssize_t)sizeof(ms))
                        rc = 13;
        }
        rmdir(a->dir);
        return rc;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int fm_shared_latency(const char *volume, int n, int deadline_ms, fm_latency *out, fm_error *e)
{
        memset(out, 0, sizeof(*out));
        if (n < 1 || n > 10000)
                return fm_err(e, EINVAL, "latency test size must be 1 to 10000, not %d", n);
        probe_arg a = {.n = n};
        uint32_t rnd = 0;
        getrandom(&rnd, sizeof(rnd), 0);
        snprintf(a.dir, sizeof(a.dir), "%s/.fastmig-probe-%d-%08x", volume, (int)getpid(), rnd);
        size_t cap = (size_t)(2 * n) * sizeof(double), got = 0;
        _cleanup_free_ double *ms = malloc(cap);
        if (!ms)
                return fm_err(e, ENOMEM, "out of memory");
        double t = mono_ms();
        int r = run_child(probe_child, &a, deadline_ms, ms, cap, &got);
        out->total_ms = mono_ms() - t;
        out->ops = (int)(got / sizeof(double));
        if (out->ops) {
                qsort(ms, (size_t)out->ops, sizeof(double), cmp_double);
                out->p50_ms = ms[(out->ops - 1) / 2];
                out->p99_ms = ms[(int)((out->ops - 1) * 0.99 + 0.5)];
                out->max_ms = ms[out->ops - 1];
        }
        if (r == -ETIMEDOUT)
                return fm_err(e, ETIMEDOUT, "the shared volume %s did not answer: the latency test had done %d of %d "
                              "operations after %d ms", volume, out->ops, 2 * n, deadline_ms);
        if (r < 0)
                return fm_err(e, -r, "latency test: %s", strerror(-r));
        if (r != 0) {
                static const char *const what[] = {"create its directory", "create its file", "write or fdatasync",
                                                   "report", "create, close or unlink a file"};
                return fm_err(e, EIO, "latency test on %s: could not %s (status %d)", volume,
                              r >= 10 && r <= 14 ? what[r - 10] : "run", r);
        }
        return 0;
}

typedef struct sweep_arg {
        const char *volume;
        int stale_s;
} sweep_arg;

/* Child: removes the latency tests' directories older than stale_s (a
 * test that timed out on a volume that hung leaves its own); writes how
 * many went (int). */
static int sweep_child(void *arg, int out)
{
        sweep_arg *a = arg;
        int root = open(a->volume, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = root >= 0 ? fdopendir(root) : NULL;
        if (!d)
                return 30;
        int n = 0;
        time_t now = time(NULL);
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (strncmp(de->d_name, ".fastmig-probe-", 15) || fstatat(root, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode) || difftime(now, st.st_mtime) < a->stale_s)
                        continue;
                int fd = openat(root, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *pd = fd >= 0 ? fdopendir(fd) : NULL;
                struct dirent *f;
                while (pd && (f = readdir(pd)))
                        if (f->d_name[0] != '.')
                                unlinkat(fd, f->d_name, 0);
                if (pd)
                        closedir(pd);
                if (unlinkat(root, de->d_name, AT_REMOVEDIR) == 0)
                        n++;
        }
        closedir(d);
        return write(out, &n, sizeof(n)) == (ssize_t)sizeof(n) ? 0 : 31;
}

int fm_shared_sweep_probes(const char *volume, int stale_s)
{
        sweep_arg a = {.volume = volume, .stale_s = stale_s};
        int n = 0;
        size_t got = 0;
        int r = run_child(sweep_child, &a, FM_SHARED_SWEEP_DEADLINE_MS, &n, sizeof(n), &got);
        return r == 0 && got == sizeof(n) ? n : r < 0 ? r : -EIO;
}

typedef struct flush_arg {
        const char *volume;
        const pid_t *pids;
        size_t n;
} flush_arg;

/* Child: fsyncs the volume's files the processes hold open, then syncfs;
 * writes the number of files fsync'd (int) to out. */
static int flush_child(void *arg, int out)
{
        flush_arg *a = arg;
        struct stat vs;
        int root = open(a->volume, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0 || fstat(root, &vs) < 0)
                return 20;
        int files = 0, rc = 0;
        for (size_t i = 0; i < a->n && !rc; i++) {
                char dir[64];
                snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)a->pids[i]);
                DIR *d = opendir(dir);
                if (!d)
                        continue; /* gone */
                struct dirent *de;
                while ((de = readdir(d)) && !rc) {
                        char p[340];
                        struct stat st;
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                        /* only regular files of this volume (a FIFO would block the open) */
                        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != vs.st_dev)
                                continue;
                        /* ... open for writing: a read-only one has nothing to flush (and
                         * each fsync is a round trip to the storage) */
                        char info[340], text[256];
                        snprintf(info, sizeof(info), "/proc/%d/fdinfo/%s", (int)a->pids[i], de->d_name);
                        int ifd = open(info, O_RDONLY | O_CLOEXEC);
                        ssize_t len = ifd >= 0 ? read(ifd, text, sizeof(text) - 1) : -1;
                        if (ifd >= 0)
                                close(ifd);
                        unsigned flags = O_RDWR;
                        const char *fl = len > 0 ? (text[len] = '\0', strstr(text, "flags:")) : NULL;
                        if (fl)
                                sscanf(fl + 6, "%o", &flags);
                        if ((flags & O_ACCMODE) == O_RDONLY)
                                continue;
                        int fd = open(p, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        if (fsync(fd) < 0)
                                rc = 21;
                        close(fd);
                        files++;
                }
                closedir(d);
        }
        if (!rc && syncfs(root) < 0)
                rc = 22;
        close(root);
        if (!rc && write(out, &files, sizeof(files)) != (ssize_t)sizeof(files))
                rc = 23;
        return rc;
}

int fm_shared_flush(const char *volume, const pid_t *pids, size_t n, int deadline_ms, int *files, fm_error *e)
{
        flush_arg a = {.volume = volume, .pids = pids, .n = n};
        size_t got = 0;
        *files = 0;
        int r = run_child(flush_child, &a, deadline_ms, files, sizeof(*files), &got);
        if (r == -ETIMEDOUT)
                return fm_err(e, ETIMEDOUT, "flushing the container's files to the shared volume took over %d ms "
                              "(is the storage reachable?)", deadline_ms);
        if (r < 0)
                return fm_err(e, -r, "flushing to the shared volume: %s", strerror(-r));
        if (r != 0)
                return fm_err(e, EIO, "flushing to the shared volume %s failed (%s, status %d)", volume,
                              r == 21 ? "fsync" : r == 22 ? "syncfs" : "setup", r);
        return 0;
}
