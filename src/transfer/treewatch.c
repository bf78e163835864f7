#include "treewatch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_MASK                                                                                                \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_ONLYDIR | \
         IN_DONT_FOLLOW | IN_EXCL_UNLINK)
/* distinct changed paths kept at most; beyond, the caller walks instead */
#define MAX_CHANGED (1u << 20)

struct fm_tree_watch {
        int fd;
        int stop[2];
        char root[PATH_MAX];
        char **dirs; /* by watch descriptor: the directory, relative to root ("" for root) */
        size_t ndirs;
        fm_strv changed; /* relative paths, "" for root; duplicates until compacted */
        size_t unique;   /* changed.n after the last compaction */
        fm_strv fresh;   /* directories created while watched: listed whole at the end */
        bool lost;
        char why[160];
        pthread_t thread;
        bool running;
};

static void lose(fm_tree_watch *w, const char *why)
{
        if (!w->lost)
                snprintf(w->why, sizeof(w->why), "%s", why);
        w->lost = true;
}

/* root/rel, or root for "" */
static void full_path(const fm_tree_watch *w, const char *rel, char *buf, size_t n)
{
        snprintf(buf, n, "%s%s%s", w->root, *rel ? "/" : "", rel);
}

static char *join(const char *dir, const char *name)
{
        return *dir ? fm_strdupf("%s/%s", dir, name) : strdup(name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorts the changed paths and drops the duplicates. */
static void compact(fm_tree_watch *w)
{
        if (w->changed.n < 2)
                return;
        qsort(w->changed.v, w->changed.n, sizeof(char *), cmp_str);
        size_t k = 1;
        for (size_t i = 1; i < w->changed.n; i++) {
                if (strcmp(w->changed.v[i], w->changed.v[k - 1]) == 0)
                        free(w->changed.v[i]);
                else
                        w->changed.v[k++] = w->changed.v[i];
        }
        w->changed.n = k;
        w->changed.v[k] = NULL;
        w->unique = k;
}

static void mark(fm_tree_watch *w, const char *rel)
{
        if (w->lost)
                return;
        if (fm_strv_push(&w->changed, rel) < 0) {
                lose(w, "out of memory");
                return;
        }
        /* a service rewriting a few files over and over must not grow this */
        if (w->changed.n > 2 * w->unique + 4096) {
                compact(w);
                if (w->unique > MAX_CHANGED)
                        lose(w, "too many changed entries");
        }
}

static int add_watch(fm_tree_watch *w, const char *rel)
{
        char path[PATH_MAX + 256];
        full_path(w, rel, path, sizeof(path));
        int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
        if (wd < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno; /* gone meanwhile: its parent saw it */
        if ((size_t)wd >= w->ndirs) {
                size_t n = (size_t)wd * 2 + 64;
                char **d = realloc(w->dirs, n * sizeof(*d));
                if (!d)
                        return -ENOMEM;
                memset(d + w->ndirs, 0, (n - w->ndirs) * sizeof(*d));
                w->dirs = d;
                w->ndirs = n;
        }
        free(w->dirs[wd]);
        w->dirs[wd] = strdup(rel);
        return w->dirs[wd] ? 0 : -ENOMEM;
}

/* Walks the directories below rel (rel included): adds a watch to each
 * (watch) and/or marks every entry as changed (list). */
static int walk(fm_tree_watch *w, const char *rel, bool watch, bool list)
{
        fm_strv pending = {0}; /* directories still to visit (a stack) */
        int r = fm_strv_push(&pending, rel);
        while (r == 0 && pending.n > 0) {
                char *cur = pending.v[--pending.n];
                pending.v[pending.n] = NULL;
                if (watch)
                        r = add_watch(w, cur);
                if (list && r == 0)
                        mark(w, cur);
                char path[PATH_MAX + 256];
                full_path(w, cur, path, sizeof(path));
                DIR *d = r == 0 ? opendir(path) : NULL;
                struct dirent *de;
                while (d && r == 0 && (de = readdir(d))) {
                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        bool is_dir = de->d_type == DT_DIR;
                        if (de->d_type == DT_UNKNOWN) {
                                struct stat st;
                                is_dir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                         S_ISDIR(st.st_mode);
                        }
                        _cleanup_free_ char *sub = join(cur, de->d_name);
                        if (!sub)
                                r = -ENOMEM;
                        else if (is_dir)
                                r = fm_strv_push(&pending, sub);
                        else if (list)
                                mark(w, sub);
                }
                if (d)
                        closedir(d);
                free(cur);
        }
        fm_strv_free(&pending);
        return r;
}

static void handle(fm_tree_watch *w, const struct inotify_event *ev)
{
        if (ev->mask & IN_Q_OVERFLOW) {
                lose(w, "the kernel's inotify queue overflowed");
                return;
        }
        if (ev->mask & IN_IGNORED || ev->wd < 0 || (size_t)ev->wd >= w->ndirs || !w->dirs[ev->wd])
                return; /* a watch that ended (its directory went: the parent saw that) */
        /* every watch below a renamed directory would name the old path */
        if ((ev->mask & (IN_MOVED_FROM | IN_MOVED_TO)) && (ev->mask & IN_ISDIR)) {
                lose(w, "a directory was renamed");
                return;
        }
        const char *dir = w->dirs[ev->wd];
        if (!ev->len) { /* the directory itself */
                mark(w, dir);
                return;
        }
        _cleanup_free_ char *path = join(dir, ev->name);
        if (!path) {
                lose(w, "out of memory");
                return;
        }
        mark(w, path);
        if (ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))
                mark(w, dir);
        if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR)) {
                int r = walk(w, path, true, false);
                if (r == -ENOSPC)
                        lose(w, "no inotify watch left for a new directory (fs.inotify.max_user_watches)");
                else if (r < 0)
                        lose(w, "watching a new directory failed");
                else if (fm_strv_push(&w->fresh, path) < 0)
                        lose(w, "out of memory");
        }
}

/* Reads the queued events; false once the queue is empty (or failed). */
static bool drain_once(fm_tree_watch *w)
{
        char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0) {
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        lose(w, "reading inotify events failed");
                return n < 0 && errno == EINTR;
        }
        for (char *p = buf; p < buf + n;) {
                const struct inotify_event *ev = (const struct inotify_event *)p;
                handle(w, ev);
                p += sizeof(*ev) + ev->len;
        }
        return true;
}

static void *collect(void *arg)
{
        fm_tree_watch *w = arg;
        for (;;) {
                struct pollfd pf[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = w->stop[0], .events = POLLIN}};
                if (poll(pf, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pf[0].revents)
                        while (drain_once(w))
                                ;
                if (pf[1].revents)
                        break;
        }
        return NULL;
}

static void stop(fm_tree_watch *w)
{
        if (!w->running)
                return;
        char c = 0;
        if (write(w->stop[1], &c, 1) < 0) {}
        pthread_join(w->thread, NULL);
        w->running = false;
}

void fm_tree_watch_free(fm_tree_watch *w)
{
        if (!w)
                return;
        stop(w);
        if (w->fd >= 0)
                close(w->fd);
        if (w->stop[0] >= 0)
                close(w->stop[0]);
        if (w->stop[1] >= 0)
                close(w->stop[1]);
        for (size_t i = 0; i < w->ndirs; i++)
                free(w->dirs[i]);
        free(w->dirs);
        fm_strv_free(&w->changed);
        fm_strv_free(&w->fresh);
        free(w);
}

int fm_tree_watch_start(const char *dir, fm_tree_watch **out, fm_error *e)
{
        *out = NULL;
        fm_tree_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return fm_err(e, ENOMEM, "out of memory");
        w->fd = w->stop[0] = w->stop[1] = -1;
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
                len--;
        snprintf(w->root, sizeof(w->root), "%.*s", (int)len, dir);
        struct stat st;
        int err = stat(w->root, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (err) {
                int r = fm_err(e, err, "watching %s: %s", w->root, strerror(err));
                fm_tree_watch_free(w);
                return r;
        }
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0 || pipe2(w->stop, O_CLOEXEC) < 0) {
                int r = fm_err(e, errno, "inotify: %s", strerror(errno));
                fm_tree_watch_free(w);
                return r;
        }
        int r = walk(w, "", true, false);
        if (r < 0) {
                r = fm_err(e, -r, "watching the directories below %s: %s%s", w->root, strerror(-r),
                           r == -ENOSPC ? " (fs.inotify.max_user_watches)" : "");
                fm_tree_watch_free(w);
                return r;
        }
        if (pthread_create(&w->thread, NULL, collect, w) != 0) {
                fm_tree_watch_free(w);
                return fm_err(e, EAGAIN, "cannot start the tree watch's thread");
        }
        w->running = true;
        *out = w;
        return 0;
}

int fm_tree_watch_list(fm_tree_watch *w, const char *list_path, size_t *count, fm_error *e)
{
        stop(w);
        while (drain_once(w)) /* what the thread had not read yet */
                ;
        /* a directory created while watched may hold entries made before its
         * watch was added: all of it travels */
        for (size_t i = 0; i < w->fresh.n && !w->lost; i++)
                if (walk(w, w->fresh.v[i], false, true) < 0)
                        lose(w, "listing a new directory failed");
        if (w->lost)
                return fm_err(e, EOVERFLOW, "the watch of %s cannot vouch for its changes: %s", w->root, w->why);
        compact(w);
        FILE *f = fopen(list_path, "we");
        if (!f)
                return fm_err(e, errno, "creating %s: %s", list_path, strerror(errno));
        size_t n = 0;
        int r = 0;
        for (size_t i = 0; i < w->changed.n && r == 0; i++) {
                const char *rel = w->changed.v[i];
                char path[PATH_MAX + 256];
                struct stat st;
                full_path(w, rel, path, sizeof(path));
                if (lstat(path, &st) < 0) /* deleted since: its directory is listed */
                        continue;
                /* "dir/": rsync --dirs --delete then prunes what left it */
                if (fputs(*rel ? rel : ".", f) == EOF || (*rel && S_ISDIR(st.st_mode) && fputc('/', f) == EOF) ||
                    fputc('\0', f) == EOF)
                        r = -1;
                n++;
        }
        int saved = errno;
        if (fclose(f) != 0 && r == 0) {
                r = -1;
                saved = errno;
        }
        if (r < 0)
                return fm_err(e, saved, "writing %s: %s", list_path, strerror(saved));
        *count = n;
        return 0;
}
