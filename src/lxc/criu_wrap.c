/* fm-criu-wrap: stands in for `criu` on the PATH of lxc-checkpoint runs.
 * For a dump it freezes the container's cgroup itself (the v1 freezer,
 * polled every 100 us) and then execs the real CRIU with the same arguments.
 * Why: lxc-checkpoint spends 20-45 ms starting up (config, `criu --version`)
 * before it runs `criu dump`; freezing here, and not before lxc-checkpoint
 * starts, keeps that out of the service's downtime, and CRIU itself would
 * poll the freezer only every 100 ms. CRIU leaves a cgroup that was frozen
 * before it started frozen after the dump (--leave-running). A known path's
 * dump starts ahead of its planned moment (FASTMIG_FREEZE_AT): the freeze
 * waits for it.
 * For a restore started early (FASTMIG_WAIT_COMPLETE set) it waits until the
 * images are complete, so LXC's start-up overlaps the dump and the transfer.
 * For a lazy restore (FASTMIG_LAZY_STATUS set) it starts CRIU's lazy-pages
 * daemon on the local images and adds --lazy-pages: the service resumes
 * before its anonymous memory is filled, and the daemon fills it from the
 * images (on fault, and all of it in the background). A keeper process waits
 * for the daemon and writes "DAEMON_PID EXIT_STATUS" to FASTMIG_LAZY_STATUS
 * ("DAEMON_PID -SIGNAL" if it was killed); the agent commits only after that
 * says 0.
 * With FASTMIG_PAGE_SERVER (a lazy final dump) the dump leaves the pages in
 * the frozen tasks and serves them to the source's agent on that socket,
 * and the target's lazy-pages daemon takes them from the target's agent on
 * its socket (src/memory/pagerelay.h).
 * For a container that is an overlay clone of an image (FASTMIG_OVERLAY set
 * to the mount options) it mounts the overlay on CRIU's --root just before
 * the restore: LXC's restore only bind-mounts a directory rootfs, and the
 * upper layer is final only once the images are complete. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "lxc/container.h"
#include "lxc/ctnet.h"
#include "storage/shared.h"

/* Where say() keeps what it says: lxc-checkpoint gives its tools no
 * stdio, so the agent reads DIR/wrap.log when a run fails. */
static char log_path[4200];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        char line[8400];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        fputs(line, stderr);
        int fd = log_path[0] ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
        if (fd >= 0) {
                ssize_t w = write(fd, line, len);
                (void)w;
                close(fd);
        }
}

/* The moment the freeze was asked for (CLOCK_MONOTONIC ns), and how long
 * it waited for its planned moment first (ns), for the agent: its own wait
 * for the freeze polls and, on a busy machine, can see it after CRIU has
 * already started. A dot file: the image stream does not ship it. */
static void freeze_mark(const char *dir, const struct timespec *t, uint64_t waited_ns)
{
        if (!dir)
                return;
        char path[4096], line[48];
        snprintf(path, sizeof(path), "%s/" FM_FREEZE_MARK, dir);
        int n = snprintf(line, sizeof(line), "%llu %llu\n",
                         (unsigned long long)t->tv_sec * 1000000000ull + (unsigned long long)t->tv_nsec,
                         (unsigned long long)waited_ns);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
        close(fd);
}

/* FASTMIG_FREEZE_AT (wall clock ms): a known path's planned freeze. The
 * agent starts the dump ahead of it by as long as lxc-checkpoint's start-up
 * may take on this host; the service runs on until the moment itself. Past,
 * unset or malformed: no wait; never more than FM_FREEZE_WAIT_MAX_MS.
 * Returns how long it waited (ns). */
#define FM_FREEZE_WAIT_MAX_MS 10000
static uint64_t freeze_wait(void)
{
        const char *v = getenv("FASTMIG_FREEZE_AT");
        if (!v || !*v)
                return 0;
        char *end = NULL;
        errno = 0;
        long long at = strtoll(v, &end, 10);
        if (errno || end == v || *end || at <= 0)
                return 0;
        struct timespec now, t0, t1;
        clock_gettime(CLOCK_REALTIME, &now);
        long long left = at - ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0)
                return 0;
        if (left > FM_FREEZE_WAIT_MAX_MS)
                left = FM_FREEZE_WAIT_MAX_MS;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct timespec d = {.tv_sec = (time_t)(left / 1000), .tv_nsec = (long)(left % 1000) * 1000000};
        while (nanosleep(&d, &d) < 0 && errno == EINTR)
                ;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
}

static int freeze(const char *cg, const char *dir)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/freezer.state", cg);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        uint64_t waited = freeze_wait();
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned i = 0;; i++) {
                if (i % 1000 == 0 && pwrite(fd, "FROZEN", 6, 0) < 0) {
                        int err = -errno;
                        close(fd);
                        return err;
                }
                char cur[16] = "";
                if (pread(fd, cur, sizeof(cur) - 1, 0) > 0 && !strncmp(cur, "FROZEN", 6)) {
                        freeze_mark(dir, &t0, waited);
                        break;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec > 10) {
                        close(fd);
                        return -ETIMEDOUT;
                }
                usleep(100);
        }
        close(fd);
        return 0;
}

/* A rootfs on a shared volume (FASTMIG_SHARED_FLUSH, its mount point):
 * once frozen, the files the service holds open there are fsync'd before
 * CRIU runs; if the storage does not answer, CRIU does not run at all (it
 * would hang on the same storage with the service frozen). Writes
 * "FILES MS" to FASTMIG_FLUSH_REPORT. */
#define FLUSH_DEADLINE_MS 5000
static int flush_shared(const char *cg)
{
        const char *vol = getenv("FASTMIG_SHARED_FLUSH"), *report = getenv("FASTMIG_FLUSH_REPORT");
        if (!vol || !*vol)
                return 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char path[4200];
        snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
        _cleanup_free_ char *list = NULL;
        int n = fm_read_file(path, &list, 1 << 20);
        if (n < 0) {
                say("fm-criu-wrap: reading %s: %s\n", path, strerror(-n));
                return n;
        }
        pid_t pids[4096];
        size_t np = 0;
        char *save = NULL;
        for (char *t = strtok_r(list, "\n", &save); t && np < FM_ARRAY_SIZE(pids); t = strtok_r(NULL, "\n", &save))
                pids[np++] = (pid_t)atoi(t);
        int files = 0;
        fm_error e = {0};
        if (fm_shared_flush(vol, pids, np, FLUSH_DEADLINE_MS, &files, &e) < 0) {
                say("fm-criu-wrap: %s\n", e.msg);
                return -e.code;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (report && *report) {
                char line[64];
                int len = snprintf(line, sizeof(line), "%d %.3f\n", files, ms);
                fm_write_file(report, line, (size_t)len, 0600);
        }
        return 0;
}

/* Every image directory of FASTMIG_IMAGES (colon-separated) committed?
 * meta.json is written last, before the directory is renamed into place. */
static bool images_ready(const char *list)
{
        char buf[4200];
        snprintf(buf, sizeof(buf), "%s", list ? list : "");
        char *save = NULL;
        for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char meta[4300];
                snprintf(meta, sizeof(meta), "%s/meta.json", d);
                if (access(meta, F_OK) != 0)
                        return false;
        }
        return true;
}

static bool is_mounted(const char *dir, const char *tree)
{
        struct stat a, b;
        return stat(tree, &a) == 0 && stat(dir, &b) == 0 && a.st_dev != b.st_dev;
}

/* Mounts DIR/tree from DIR/file/image.sqfs unless it is mounted in this
 * (LXC's restore) mount namespace. The agent mounts each image right after
 * committing it, in its store, a shared mount, so that mount reaches this
 * namespace too; when the two race, the loser's mount fails: a failed mount
 * is success once the tree shows mounted (within a second). */
static int mount_images(const char *list)
{
        char buf[4200];
        snprintf(buf, sizeof(buf), "%s", list ? list : "");
        char *save = NULL;
        for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char tree[4200], file[4200];
                snprintf(tree, sizeof(tree), "%s/tree", d);
                snprintf(file, sizeof(file), "%s/file/image.sqfs", d);
                if (is_mounted(d, tree))
                        continue;
                pid_t pid = fork();
                if (pid == 0) {
                        int nul = open("/dev/null", O_RDWR);
                        if (nul >= 0) {
                                dup2(nul, 1);
                                dup2(nul, 2);
                        }
                        execlp("mount", "mount", "-t", "squashfs", "-o", "loop,ro", file, tree, (char *)NULL);
                        _exit(127);
                }
                int st = 0;
                while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
                        ;
                bool ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
                for (int i = 0; !ok && i < 1000 && !(ok = is_mounted(d, tree)); i++)
                        usleep(1000); /* the agent's mount may still be under way */
                if (!ok) {
                        say("fm-criu-wrap: mounting image %s on %s failed\n", file, tree);
                        return -EIO;
                }
        }
        return 0;
}

/* An early restore: lxc-checkpoint -r started while the images were still
 * travelling; hold `criu restore' until the agent marks the checkpoint
 * images complete (FASTMIG_WAIT_COMPLETE) and, for a clone whose file-system
 * images travel too, until those are committed (FASTMIG_IMAGES). */
/* An early restore may be asked for before the live phases (rootfs sync,
 * pre-copy) of a container up to 1 GiB: long enough for those on a
 * 100 Mbit/s link. */
#define FM_EARLY_WAIT_S 600
static int wait_images(void)
{
        const char *done = getenv("FASTMIG_WAIT_COMPLETE"), *abort_m = getenv("FASTMIG_WAIT_ABORT");
        const char *images = getenv("FASTMIG_IMAGES");
        if (!done)
                return 0;
        /* Woken by the markers' and the store's changes (inotify) rather
         * than by polling every 100 us: this wait runs beside the source's
         * dump, which shares this machine's cores. An image directory is
         * renamed into its store whole, meta.json in it; the 10 ms timeout
         * covers what a watch could still miss. */
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s", done);
        _cleanup_close_ int watch = fm_dir_watch(dirname(dir));
        if (watch >= 0 && images) { /* the store each image directory is renamed into */
                char buf[4200];
                snprintf(buf, sizeof(buf), "%s", images);
                char *save = NULL;
                for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save))
                        inotify_add_watch(watch, dirname(d), IN_CREATE | IN_MOVED_TO);
        }
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                if (access(done, F_OK) == 0 && images_ready(images))
                        return images ? mount_images(images) : 0;
                if (abort_m && access(abort_m, F_OK) == 0) {
                        say("fm-criu-wrap: restore aborted before the images were complete\n");
                        return -ECANCELED;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec > FM_EARLY_WAIT_S) {
                        say("fm-criu-wrap: images not complete after %d s\n", FM_EARLY_WAIT_S);
                        return -ETIMEDOUT;
                }
                fm_dir_watch_wait(watch, 10);
        }
}

static const char *arg_of(int argc, char **argv, const char *shortopt, const char *longopt)
{
        size_t ll = strlen(longopt);
        for (int i = 1; i < argc; i++) {
                if ((!strcmp(argv[i], shortopt) || !strcmp(argv[i], longopt)) && i + 1 < argc)
                        return argv[i + 1];
                if (!strncmp(argv[i], longopt, ll) && argv[i][ll] == '=')
                        return argv[i] + ll + 1;
        }
        return NULL;
}

static void write_status(const char *path, pid_t daemon, int status)
{
        char tmp[4200], line[64];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        int n = snprintf(line, sizeof(line), "%d %d\n", (int)daemon, code);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        if (write(fd, line, (size_t)n) == n && close(fd) == 0)
                rename(tmp, path); /* whole or nothing */
        else
                unlink(tmp);
}

/* A connection to the agent's page-server socket (FASTMIG_PAGE_SERVER),
 * which CRIU inherits: no O_CLOEXEC. tag says what it is for ('P' the page
 * server's protocol, 'S' CRIU's status fd); 0: nothing is sent first. The
 * target's agent makes the socket when the source asks for it, before the
 * dump: a short wait covers a late start. */
static int page_server_conn(const char *path, char tag)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(a.sun_path))
                return -ENAMETOOLONG;
        memcpy(a.sun_path, path, strlen(path) + 1);
        for (int waited_ms = 0;; waited_ms++) {
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                if (fd < 0)
                        return -errno;
                if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
                        if (!tag || write(fd, &tag, 1) == 1)
                                return fd;
                }
                int err = errno;
                close(fd);
                if ((err != ENOENT && err != ECONNREFUSED) || waited_ms >= 5000) {
                        say("fm-criu-wrap: connecting to the page server %s: %s\n", path, strerror(err));
                        return -err;
                }
                usleep(1000);
        }
}

/* Starts `criu lazy-pages' for the images of this restore, in its own
 * session under a keeper that reports how it ended; returns once the daemon
 * listens. Neither is left a child of `criu restore', which fails a restore
 * when any child of its own exits. */
static int start_lazy_daemon(const char *real, const char *status_path, const char *ps, int argc, char **argv)
{
        const char *dir = arg_of(argc, argv, "-D", "--images-dir");
        const char *work = arg_of(argc, argv, "-W", "--work-dir");
        if (!dir) {
                say("fm-criu-wrap: lazy restore without an images directory\n");
                return -EINVAL;
        }
        unlink(status_path);
        /* a lazy final dump: the pages come from the agent, which asks the source */
        int psfd = ps ? page_server_conn(ps, 0) : -1;
        if (ps && psfd < 0)
                return psfd;
        /* the daemon sends its requests without waiting (one per fault and
         * one per task in the background): room for thousands of them */
        int big = 16 << 20;
        if (psfd >= 0)
                setsockopt(psfd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
        if (psfd >= 0 && psfd < 10) { /* clear of the fds the child sets up */
                int hi = fcntl(psfd, F_DUPFD_CLOEXEC, 10);
                close(psfd);
                if ((psfd = hi) < 0)
                        return -errno;
        }
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        pid_t mid = fork();
        if (mid < 0)
                return -errno;
        if (mid == 0) {
                /* keep nothing of LXC's: stdio on /dev/null, fd 3 the ready pipe */
                setsid();
                int nul = open("/dev/null", O_RDWR);
                if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0 || dup2(ready[1], 3) < 0 ||
                    fcntl(3, F_SETFD, 0) < 0) /* dup2 onto itself keeps O_CLOEXEC */
                        _exit(1);
                if (psfd >= 0 && (dup2(psfd, 4) < 0 || fcntl(4, F_SETFD, 0) < 0)) /* fd 4: the page server */
                        _exit(1);
                close_range(psfd >= 0 ? 5 : 4, ~0U, 0);
                pid_t keeper = fork();
                if (keeper != 0)
                        _exit(keeper < 0);
                pid_t d = fork();
                if (d == 0) {
                        char fdarg[] = "3";
                        /* the restore's own config has restore-only options */
                        setenv("CRIU_CONFIG_FILE", "/dev/null", 1);
                        const char *av[16] = {real, "lazy-pages", "-D", dir, "-o", "lazy-pages.log", "--status-fd", fdarg};
                        int n = 8;
                        if (psfd >= 0) {
                                av[n++] = "--page-server";
                                av[n++] = "--ps-socket";
                                av[n++] = "4";
                        }
                        if (work) {
                                av[n++] = "-W";
                                av[n++] = work;
                        }
                        av[n] = NULL;
                        execv(real, (char **)av);
                        _exit(127);
                }
                close(3);
                close(4); /* the page server's socket is the daemon's alone */
                int st = 0;
                if (d < 0)
                        st = 127 << 8;
                else
                        while (waitpid(d, &st, 0) < 0 && errno == EINTR)
                                ;
                write_status(status_path, d, st);
                _exit(0);
        }
        close(ready[1]);
        if (psfd >= 0)
                close(psfd);
        int st;
        waitpid(mid, &st, 0);
        /* CRIU writes one byte on its status fd once its socket listens */
        struct pollfd p = {.fd = ready[0], .events = POLLIN};
        char b;
        int r = poll(&p, 1, 10000) == 1 && read(ready[0], &b, 1) == 1 ? 0 : -EIO;
        close(ready[0]);
        if (r < 0)
                say("fm-criu-wrap: criu lazy-pages did not start (see lazy-pages.log)\n");
        return r;
}

/* In the restore's own mount namespace (LXC unshared it), on --root. */
static int mount_overlay(const char *opts, int argc, char **argv)
{
        const char *root = NULL;
        for (int i = 2; i + 1 < argc; i++)
                if (!strcmp(argv[i], "--root"))
                        root = argv[i + 1];
        if (!root) {
                say("fm-criu-wrap: overlay restore without --root\n");
                return -1;
        }
        if (mount("overlay", root, "overlay", 0, opts) < 0) {
                say("fm-criu-wrap: mounting the overlay rootfs (%s) on %s: %s\n", opts, root,
                        strerror(errno));
                return -1;
        }
        return 0;
}

/* A network namespace fastmig keeps (src/lxc/ctnet.h) stays out of CRIU's
 * images. Dump (FASTMIG_NET_EXTERNAL=KEY): out = "net[INODE]:KEY" for the
 * namespace of the dumped tree's root (its traffic is cut by taking its
 * veth off the bridge, so CRIU's network lock is not needed either).
 * Restore (FASTMIG_NETNS=PATH): PATH is opened for CRIU to inherit, out =
 * "fd[N]:KEY". "" when neither applies. */
static int external_net(int argc, char **argv, char *out, size_t n)
{
        const char *key = getenv("FASTMIG_NET_EXTERNAL"), *path = getenv("FASTMIG_NETNS");
        out[0] = '\0';
        if (argc < 2)
                return 0;
        if (!strcmp(argv[1], "dump") && key && *key) {
                const char *tree = arg_of(argc, argv, "-t", "--tree");
                char ns[64];
                struct stat st;
                snprintf(ns, sizeof(ns), "/proc/%s/ns/net", tree ? tree : "?");
                if (!tree || stat(ns, &st) < 0) {
                        say("fm-criu-wrap: no network namespace of the dumped tree (%s)\n", ns);
                        return -ENOENT;
                }
                snprintf(out, n, "net[%llu]:%s", (unsigned long long)st.st_ino, key);
        } else if (!strcmp(argv[1], "restore") && path && *path) {
                int fd = open(path, O_RDONLY); /* inherited by CRIU: no O_CLOEXEC */
                if (fd < 0) {
                        say("fm-criu-wrap: opening the network namespace %s: %s\n", path, strerror(errno));
                        return -errno;
                }
                snprintf(out, n, "fd[%d]:%s", fd, FM_CTNET_KEY);
        }
        return 0;
}

int main(int argc, char **argv)
{
        const char *dir = arg_of(argc, argv, "-D", "--images-dir");
        if (dir)
                snprintf(log_path, sizeof(log_path), "%s/wrap.log", dir);
        const char *real = getenv("FASTMIG_REAL_CRIU");
        if (!real || !*real) {
                say("fm-criu-wrap: FASTMIG_REAL_CRIU is not set\n");
                return 127;
        }
        if (argc > 1 && !strcmp(argv[1], "dump"))
                for (int i = 2; i + 1 < argc; i++)
                        if (!strcmp(argv[i], "--freeze-cgroup")) {
                                int r = freeze(argv[i + 1], dir);
                                const char *lz = getenv("FASTMIG_PAGE_SERVER");
                                if (r < 0) /* CRIU will freeze it, slower */
                                        say("fm-criu-wrap: freezing %s: %s\n", argv[i + 1], strerror(-r));
                                /* a lazy dump must leave the tasks frozen (CRIU thaws what it froze) */
                                if (r < 0 && lz && *lz)
                                        return 1;
                                else if (flush_shared(argv[i + 1]) < 0)
                                        return 1; /* the agent thaws the container */
                                break;
                        }
        if (argc > 1 && !strcmp(argv[1], "restore") && wait_images() < 0)
                return 1;
        const char *ovl = getenv("FASTMIG_OVERLAY");
        if (argc > 1 && !strcmp(argv[1], "restore") && ovl && *ovl && mount_overlay(ovl, argc, argv) < 0)
                return 1;
        const char *lazy = getenv("FASTMIG_LAZY_STATUS");
        char **av = calloc((size_t)argc + 16, sizeof(*av));
        if (!av)
                return 1;
        memcpy(av, argv, (size_t)argc * sizeof(*av));
        int ac = argc;
        /* before the lazy-pages daemon: a failure here leaves none behind */
        static char ext[128];
        if (external_net(argc, argv, ext, sizeof(ext)) < 0)
                return 1;
        const char *ps = getenv("FASTMIG_PAGE_SERVER");
        if (ps && !*ps)
                ps = NULL;
        if (argc > 1 && !strcmp(argv[1], "restore") && lazy && *lazy) {
                if (start_lazy_daemon(real, lazy, ps, argc, argv) < 0)
                        return 1;
                av[ac++] = "--lazy-pages";
        }
        /* a lazy final dump: the pages stay in the frozen tasks, served to
         * the agent on one connection; the other says when the images are
         * complete (CRIU writes its status once its page server is up) */
        static char ps_arg[16], st_arg[16];
        if (argc > 1 && !strcmp(argv[1], "dump") && ps) {
                /* CRIU would thaw what it froze itself when its page server
                 * ends: the source copy must stay frozen until the agent says */
                if (!arg_of(argc, argv, "--freeze-cgroup", "--freeze-cgroup")) {
                        say("fm-criu-wrap: a lazy dump without --freeze-cgroup\n");
                        return 1;
                }
                int p = page_server_conn(ps, 'P'), s = p < 0 ? -1 : page_server_conn(ps, 'S');
                if (p < 0 || s < 0)
                        return 1; /* the agent thaws the container */
                snprintf(ps_arg, sizeof(ps_arg), "%d", p);
                snprintf(st_arg, sizeof(st_arg), "%d", s);
                av[ac++] = "--lazy-pages";
                av[ac++] = "--ps-socket";
                av[ac++] = ps_arg;
                av[ac++] = "--status-fd";
                av[ac++] = st_arg;
        }
        if (ext[0] && !strcmp(argv[1], "dump")) {
                av[ac++] = "--external";
                av[ac++] = ext;
                av[ac++] = "--network-lock";
                av[ac++] = "skip";
        } else if (ext[0]) {
                av[ac++] = "--inherit-fd";
                av[ac++] = ext;
        }
        av[0] = (char *)real;
        execv(real, av);
        say("fm-criu-wrap: exec %s: %s\n", real, strerror(errno));
        return 127;
}
