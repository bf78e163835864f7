#include "digest.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define CHUNK (1 << 20)
#define FOLLOW_IDLE_MS (10 * 60 * 1000) /* no growth that long: give up */

static void digest_begin(XXH3_state_t *st, const char *seed)
{
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, "fastmig-image-1", 16);
        XXH3_128bits_update(st, seed ? seed : "", seed ? strlen(seed) + 1 : 1);
}

static void digest_hex(XXH3_state_t *st, char hex[FM_DIGEST_HEX])
{
        XXH128_hash_t h = XXH3_128bits_digest(st);
        snprintf(hex, FM_DIGEST_HEX, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/* A regular file, not followed through a symlink, opened without blocking
 * (a FIFO planted there must not hang the reader). A second name is fine:
 * the store links files it installs, and a peer's rsync can neither link
 * into an image's staging nor reach outside it. */
static int open_regular(const char *path, struct stat *st)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
                close(fd);
                return -EINVAL;
        }
        return fd;
}

int fm_file_digest(const char *path, const char *seed, char hex[FM_DIGEST_HEX], uint64_t *bytes, fm_error *e)
{
        struct stat fst;
        _cleanup_close_ int fd = open_regular(path, &fst);
        if (fd == -EINVAL)
                return fm_err(e, EINVAL, "%s is not a regular file", path);
        if (fd < 0)
                return fm_err(e, -fd, "opening %s: %s", path, strerror(-fd));
        XXH3_state_t *st = XXH3_createState();
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        if (!st || !buf) {
                XXH3_freeState(st);
                return fm_err(e, ENOMEM, "out of memory");
        }
        digest_begin(st, seed);
        uint64_t total = 0;
        ssize_t n;
        while ((n = read(fd, buf, CHUNK)) > 0) {
                XXH3_128bits_update(st, buf, (size_t)n);
                total += (uint64_t)n;
        }
        int err = n < 0 ? errno : 0;
        if (!err)
                digest_hex(st, hex);
        XXH3_freeState(st);
        if (err)
                return fm_err(e, err, "reading %s: %s", path, strerror(err));
        if (bytes)
                *bytes = total;
        return 0;
}

struct fm_digest_follower {
        char path[4096];
        pthread_t thread;
        XXH3_state_t *st;
        uint8_t *buf;
        int fd;
        uint64_t done; /* bytes hashed */
        atomic_int stop; /* 1: the writer is done, 2: cancelled */
        bool failed;
};

/* Hashes what the file has beyond f->done; <0 on a read error. What it
 * hashed is also sent to the disk (without waiting): the loop mount that
 * follows the commit would otherwise first write out the whole file
 * (measured: 116 ms for 248 MB written just before, 3 ms once clean). */
static ssize_t follow_step(struct fm_digest_follower *f)
{
        ssize_t n, got = 0;
        uint64_t from = f->done;
        while ((n = pread(f->fd, f->buf, CHUNK, (off_t)f->done)) > 0) {
                XXH3_128bits_update(f->st, f->buf, (size_t)n);
                f->done += (uint64_t)n;
                got += n;
        }
        if (got > 0)
                sync_file_range(f->fd, (off_t)from, got, SYNC_FILE_RANGE_WRITE);
        return n < 0 ? -1 : got;
}

static void *follow_thread(void *arg)
{
        struct fm_digest_follower *f = arg;
        double idle_since = fm_now_ms();
        for (;;) {
                int stop = atomic_load(&f->stop);
                if (stop == 2)
                        return NULL;
                if (f->fd < 0) {
                        struct stat st;
                        int fd = open_regular(f->path, &st);
                        if (fd == -EINVAL) {
                                f->failed = true;
                                return NULL;
                        }
                        f->fd = fd < 0 ? -1 : fd;
                }
                ssize_t got = f->fd < 0 ? 0 : follow_step(f);
                if (got < 0 || (stop == 1 && f->fd < 0)) {
                        f->failed = true;
                        return NULL;
                }
                if (stop == 1) /* everything up to the end the writer left */
                        return NULL;
                if (got > 0)
                        idle_since = fm_now_ms();
                else if (fm_now_ms() - idle_since > FOLLOW_IDLE_MS) {
                        f->failed = true;
                        return NULL;
                }
                if (got < CHUNK)
                        usleep(2000);
        }
}

fm_digest_follower *fm_digest_follow(const char *path, const char *seed)
{
        struct fm_digest_follower *f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        snprintf(f->path, sizeof(f->path), "%s", path);
        f->fd = -1;
        f->st = XXH3_createState();
        f->buf = malloc(CHUNK);
        if (f->st && f->buf) {
                digest_begin(f->st, seed);
                if (pthread_create(&f->thread, NULL, follow_thread, f) == 0)
                        return f;
        }
        XXH3_freeState(f->st);
        free(f->buf);
        free(f);
        return NULL;
}

static void follow_free(struct fm_digest_follower *f)
{
        if (f->fd >= 0)
                close(f->fd);
        XXH3_freeState(f->st);
        free(f->buf);
        free(f);
}

int fm_digest_follow_end(fm_digest_follower *f, char hex[FM_DIGEST_HEX], uint64_t *bytes)
{
        atomic_store(&f->stop, 1);
        pthread_join(f->thread, NULL);
        struct stat st;
        /* bytes rewritten after we hashed them would give the digest of other
         * content: the claim then fails and the image is refused (and rsync
         * itself checks that what it wrote is the sender's file) */
        bool ok = !f->failed && f->fd >= 0 && fstat(f->fd, &st) == 0 && (uint64_t)st.st_size == f->done;
        /* and the file there now is the one hashed (not one renamed over it) */
        struct stat now;
        ok = ok && lstat(f->path, &now) == 0 && S_ISREG(now.st_mode) && now.st_ino == st.st_ino &&
             now.st_dev == st.st_dev;
        if (ok) {
                digest_hex(f->st, hex);
                if (bytes)
                        *bytes = f->done;
        }
        follow_free(f);
        return ok ? 0 : -EAGAIN;
}

void fm_digest_follow_cancel(fm_digest_follower *f)
{
        if (!f)
                return;
        atomic_store(&f->stop, 2);
        pthread_join(f->thread, NULL);
        follow_free(f);
}
