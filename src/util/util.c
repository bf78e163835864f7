#include "util.h"
#include "cancel.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

int fm_err(fm_error *e, int code, const char *fmt, ...)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
                va_end(ap);
                e->code = code;
        }
        return -code;
}

int fm_err_wrap(fm_error *e, const char *fmt, ...)
{
        if (!e)
                return -EIO;
        char prefix[512];
        char old[sizeof(e->msg)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof(old));
        size_t pl = strlen(prefix);
        if (pl > sizeof(e->msg) - 3)
                pl = sizeof(e->msg) - 3;
        memcpy(e->msg, prefix, pl);
        memcpy(e->msg + pl, ": ", 2);
        size_t room = sizeof(e->msg) - pl - 3, ol = strlen(old);
        if (ol > room)
                ol = room;
        memcpy(e->msg + pl + 2, old, ol);
        e->msg[pl + 2 + ol] = '\0';
        if (e->code == 0)
                e->code = EIO;
        return -e->code;
}

void fm_err_clear(fm_error *e)
{
        if (e) {
                e->code = 0;
                e->msg[0] = '\0';
        }
}

int fm_close(int fd)
{
        if (fd >= 0) {
                fm_cancel_untrack_fd(fd);
                (void)close(fd); /* never retried: the fd is gone either way */
        }
        return -1;
}

void fm_closep(int *fd) { fm_close(*fd); }

void fm_fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

uint64_t fm_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int fm_strv_push(fm_strv *s, const char *str)
{
        if (s->n + 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                char **v = realloc(s->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        char *d = strdup(str);
        if (!d)
                return -ENOMEM;
        s->v[s->n++] = d;
        s->v[s->n] = NULL;
        return 0;
}

int fm_strv_pushf(fm_strv *s, const char *fmt, ...)
{
        char *str = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&str, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = fm_strv_push(s, str);
        free(str);
        return r;
}

void fm_strv_free(fm_strv *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        s->v = NULL;
        s->n = s->cap = 0;
}

char *fm_strdupf(const char *fmt, ...)
{
        char *str = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&str, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : str;
}

int fm_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t w = write(fd, p, len);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

int fm_read_all(int fd, void *buf, size_t len)
{
        char *p = buf;
        while (len > 0) {
                ssize_t r = read(fd, p, len);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -EPIPE;
                p += r;
                len -= (size_t)r;
        }
        return 0;
}

int fm_write_file(const char *path, const void *data, size_t len, int mode)
{
        _cleanup_free_ char *tmp = fm_strdupf("%s.tmpXXXXXX", path);
        if (!tmp)
                return -ENOMEM;
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fm_write_all(fd, data, len);
        if (r == 0 && fchmod(fd, (mode_t)mode) < 0)
                r = -errno;
        fm_close(fd);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

int fm_read_file(const char *path, char **out, size_t max)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap >= max) {
                                free(buf);
                                return -EFBIG;
                        }
                        cap *= 2;
                        char *nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = nb;
                }
                ssize_t r = read(fd, buf + len, cap - len - 1);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        int err = -errno;
                        free(buf);
                        return err;
                }
                if (r == 0)
                        break;
                len += (size_t)r;
        }
        buf[len] = '\0';
        *out = buf;
        return (int)len;
}

int fm_mkdir_p(const char *path, int mode)
{
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_rf_at(int dfd, const char *name)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                int err = -errno;
                fm_close(fd);
                return err;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                int q = rm_rf_at(dirfd(d), de->d_name);
                if (q < 0 && r == 0)
                        r = q;
        }
        closedir(d);
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int fm_rm_rf(const char *path) { return rm_rf_at(AT_FDCWD, path); }

bool fm_path_exists(const char *path) { return access(path, F_OK) == 0; }

static char self_dir[PATH_MAX];

static void find_self_dir(void)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                snprintf(self_dir, sizeof(self_dir), "%s", dirname(self));
        }
}

const char *fm_self_dir(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, find_self_dir);
        return self_dir[0] ? self_dir : ".";
}

uint64_t fm_free_bytes(const char *dir, uint64_t unknown)
{
        struct statvfs sv;
        return statvfs(dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : unknown;
}

bool fm_path_is_safe_relative(const char *p)
{
        if (!p || !*p || *p == '/' || strlen(p) > 1024)
                return false;
        const char *s = p;
        while (*s) {
                const char *e = strchr(s, '/');
                size_t n = e ? (size_t)(e - s) : strlen(s);
                if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                if (!e)
                        break;
                s = e + 1;
                if (!*s)
                        return false;
        }
        for (s = p; *s; s++)
                if ((unsigned char)*s < 0x20)
                        return false;
        return true;
}

int fm_parse_u32(const char *s, uint32_t *out)
{
        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > UINT32_MAX)
                return -EINVAL;
        *out = (uint32_t)v;
        return 0;
}

int fm_parse_double(const char *s, double *out)
{
        if (!s || !*s)
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || *end)
                return -EINVAL;
        *out = v;
        return 0;
}

bool fm_name_is_valid(const char *s)
{
        if (!s || !*s || strlen(s) > FM_NAME_MAX)
                return false;
        for (const char *p = s; *p; p++) {
                char c = *p;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          (p != s && (c == '_' || c == '-' || c == '.'));
                if (!ok)
                        return false;
        }
        return true;
}

int fm_dir_watch(const char *dir)
{
        int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ino >= 0 && inotify_add_watch(ino, dir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
                ino = fm_close(ino);
        return ino;
}

void fm_dir_watch_wait(int watch, int ms)
{
        struct pollfd p = {.fd = watch, .events = POLLIN};
        if (watch < 0) {
                usleep((useconds_t)ms * 1000);
        } else if (poll(&p, 1, ms) > 0) {
                char buf[4096];
                while (read(watch, buf, sizeof(buf)) > 0)
                        ;
        }
}

int fm_wait_path(const char *path, int timeout_ms)
{
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        _cleanup_close_ int watch = fm_dir_watch(slash ? dir : ".");
        uint64_t deadline = fm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
        for (;;) {
                if (access(path, F_OK) == 0)
                        return 0;
                uint64_t now = fm_now_ns();
                if (now >= deadline)
                        return -ETIMEDOUT;
                int wait = (int)((deadline - now) / 1000000ull) + 1;
                fm_dir_watch_wait(watch, wait < 100 ? wait : 100);
        }
}

bool fm_path_under(const char *path, const char *dir)
{
        size_t n = strlen(dir);
        return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

char *fm_trim(char *s)
{
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

int64_t fm_wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
