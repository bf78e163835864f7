/* Small shared helpers: error object, cleanup attributes, time, strings. */
#pragma once
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* An error with a message that carries context; wrapped on the way up. */
typedef struct fm_error {
        int code;       /* positive errno-style value, 0 when no error */
        char msg[1024];
} fm_error;

/* Sets *e (if not NULL) and returns -code (code is made positive first). */
int fm_err(fm_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends context to an existing message, keeps the code, returns -code. */
int fm_err_wrap(fm_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fm_err_clear(fm_error *e);

static inline void fm_freep(void *p) { free(*(void **)p); }
void fm_closep(int *fd);
void fm_fclosep(FILE **f);
#define _cleanup_free_ __attribute__((cleanup(fm_freep)))
#define _cleanup_close_ __attribute__((cleanup(fm_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(fm_fclosep)))

/* close() that never retries on EINTR; returns -1 so callers can reset fds. */
int fm_close(int fd);

/* Monotonic time. */
uint64_t fm_now_ns(void);
/* Wall-clock milliseconds since the epoch (what crosses machines and the API). */
int64_t fm_wall_ms(void);
static inline double fm_now_ms(void) { return (double)fm_now_ns() / 1e6; }

/* u64 big-endian (network order) in byte buffers of the wire formats */
static inline void fm_put_be64(uint8_t *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (uint8_t)v;
}

static inline uint64_t fm_get_be64(const uint8_t *p)
{
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* u32 little-endian: CRIU's image files */
static inline uint32_t fm_get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A growable NULL-terminated string vector (argument vectors, lists). */
typedef struct fm_strv {
        char **v;
        size_t n, cap;
} fm_strv;
int fm_strv_push(fm_strv *s, const char *str);
int fm_strv_pushf(fm_strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fm_strv_free(fm_strv *s);

char *fm_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* s without its leading blanks and tabs and its trailing blanks, tabs and
 * CR (the trailing ones cut off in place). */
char *fm_trim(char *s);

/* Files. */
int fm_write_file(const char *path, const void *data, size_t len, int mode);
int fm_read_file(const char *path, char **out, size_t max);
/* A watch on dir's entries (created, written, renamed in): an inotify fd,
 * or -1 when inotify is not to be had (fm_dir_watch_wait then sleeps). */
int fm_dir_watch(const char *dir);
/* Sleeps until the watched directory changes or ms pass; drains the events. */
void fm_dir_watch_wait(int watch, int ms);
/* Waits until path exists: woken by a watch on its directory (with a look
 * every 100 ms for what a watch can miss), not by polling. 0, or
 * -ETIMEDOUT after timeout_ms. */
int fm_wait_path(const char *path, int timeout_ms);
int fm_mkdir_p(const char *path, int mode);
int fm_rm_rf(const char *path);
bool fm_path_exists(const char *path);
/* The directory of the running program (its helpers live beside it). */
const char *fm_self_dir(void);
/* Bytes an unprivileged writer may still use on dir's file system;
 * `unknown' when it cannot be told. */
uint64_t fm_free_bytes(const char *dir, uint64_t unknown);
/* A relative path with no "..", no empty or absolute component. */
bool fm_path_is_safe_relative(const char *p);
/* path is dir or below it (a prefix that ends at a '/'). */
bool fm_path_under(const char *path, const char *dir);
int fm_write_all(int fd, const void *buf, size_t len);
int fm_read_all(int fd, void *buf, size_t len); /* -EPIPE on early EOF */

/* Parse helpers that reject junk; return 0 or -EINVAL. */
int fm_parse_u32(const char *s, uint32_t *out);
int fm_parse_double(const char *s, double *out);
#define FM_NAME_MAX 63 /* the longest name fm_name_is_valid takes */
/* A valid container or host name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62} */
bool fm_name_is_valid(const char *s);
