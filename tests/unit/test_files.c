/* Image streams whose pages files are still being written: the sender
 * follows a writer thread that appends in uneven pieces (and creates more
 * files as it goes), the receiver rebuilds every file byte for byte; with page
 * encoding as well; a writer that fails ends the stream unfinished and the
 * receiver keeps nothing. Hostile streams: zero-page records that would
 * rebuild far more than the receiver allows are refused before a byte is
 * written; a spare file replaced by a symlink is not followed. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "proto/proto.h"
#include "transfer/files.h"

typedef struct writer {
        const char *dir;
        fm_files_live *live;
        bool fail;
} writer;

/* deterministic content: byte i of file f */
static uint8_t content(int f, size_t i)
{
        /* some pages repeat (page index mod 7) so that encoding has references */
        size_t page = i / 4096 % 7;
        return (uint8_t)(f * 31 + page * 17 + (i % 4096) * 3);
}

static void write_piece(int fd, int f, size_t from, size_t n)
{
        uint8_t *b = malloc(n);
        for (size_t i = 0; i < n; i++)
                b[i] = content(f, from + i);
        if (write(fd, b, n) != (ssize_t)n)
                abort();
        free(b);
}

static void *writer_thread(void *arg)
{
        writer *w = arg;
        char path[600];
        /* pages-1: 3 MiB + 100 bytes in uneven pieces, then closed; pages-2
         * after it; a core file at the end */
        const size_t sizes[] = {3 * 1024 * 1024 + 100, 200 * 1024};
        for (int f = 1; f <= 2; f++) {
                snprintf(path, sizeof(path), "%s/pages-%d.img", w->dir, f);
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                for (size_t off = 0, step = 1000; off < sizes[f - 1]; off += step, step = step * 3 % 70001 + 1) {
                        size_t n = off + step > sizes[f - 1] ? sizes[f - 1] - off : step;
                        write_piece(fd, f, off, n);
                        if (off % 7 == 0)
                                usleep(200);
                }
                close(fd);
        }
        snprintf(path, sizeof(path), "%s/core-1.img", w->dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        write_piece(fd, 9, 0, 5000);
        close(fd);
        fm_files_live_end(w->live, !w->fail);
        return NULL;
}

typedef struct receiver {
        int fd;
        const char *dir;
        fm_page_decoder *dec;
        int r;
        fm_error e;
} receiver;

static void *receiver_thread(void *arg)
{
        receiver *rc = arg;
        rc->r = fm_files_recv(rc->fd, rc->dir, 1ull << 30, rc->dec, NULL, &rc->e);
        return NULL;
}

static bool same_file(const char *a, const char *b)
{
        _cleanup_free_ char *x = NULL, *y = NULL;
        if (fm_read_file(a, &x, 64 << 20) < 0 || fm_read_file(b, &y, 64 << 20) < 0)
                return false;
        struct stat sa, sb;
        stat(a, &sa);
        stat(b, &sb);
        return sa.st_size == sb.st_size && !memcmp(x, y, (size_t)sa.st_size);
}

/* files in dst that are not whole copies of their source */
static int partial_files(const char *src, const char *dst)
{
        DIR *d = opendir(dst);
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char a[700], b[700];
                if (de->d_name[0] == '.')
                        continue;
                snprintf(a, sizeof(a), "%s/%s", src, de->d_name);
                snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
                n += !same_file(a, b);
        }
        if (d)
                closedir(d);
        return n;
}

static void run(bool encode, bool fail)
{
        char src[] = "/tmp/fm-files-src.XXXXXX", dst[] = "/tmp/fm-files-dst.XXXXXX";
        if (!mkdtemp(src) || !mkdtemp(dst))
                abort();
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        uint8_t key[FM_HASH_KEY_SIZE];
        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t)(i * 7 + 1);
        fm_hashset held = {0};
        fm_hashset_init(&held, 1024);
        fm_pagestore store;
        char storepath[600];
        snprintf(storepath, sizeof(storepath), "%s.store", dst);
        fm_error e = {0};
        fm_pagestore_open(&store, storepath, 4096, &e);
        fm_page_codec codec = {.key = key, .held = &held};
        fm_page_decoder dec = {.key = key, .store = &store};

        fm_files_live live = {.inotify_fd = -1, .wake_fd = -1};
        ok(fm_files_live_watch(&live, src, &e) == 0, "watching %s", src);
        receiver rc = {.fd = sv[1], .dir = dst, .dec = encode ? &dec : NULL};
        writer w = {.dir = src, .live = &live, .fail = fail};
        pthread_t wt, rt;
        pthread_create(&rt, NULL, receiver_thread, &rc);
        pthread_create(&wt, NULL, writer_thread, &w);
        uint64_t bytes = 0;
        int r = fm_files_send(sv[0], src, encode ? &codec : NULL, &live, &bytes, &e);
        pthread_join(wt, NULL);
        if (r < 0)
                shutdown(sv[0], SHUT_RDWR); /* as the agent's connection closing */
        pthread_join(rt, NULL);
        fm_files_live_close(&live);
        const char *what = encode ? "page-encoded" : "raw";
        if (!fail) {
                ok(r == 0, "%s live stream sent (%s)", what, e.msg);
                ok(rc.r == 0, "%s live stream received (%s)", what, rc.e.msg);
                const char *names[] = {"pages-1.img", "pages-2.img", "core-1.img"};
                for (int i = 0; i < 3; i++) {
                        char a[700], b[700];
                        snprintf(a, sizeof(a), "%s/%s", src, names[i]);
                        snprintf(b, sizeof(b), "%s/%s", dst, names[i]);
                        ok(same_file(a, b), "%s: %s rebuilt byte for byte", what, names[i]);
                }
                if (encode)
                        ok(codec.st.ref > 0 && codec.st.literal > 0 && codec.st.tail_bytes == 100,
                           "repeated pages travelled as references (%llu literal, %llu ref, tail %llu)",
                           (unsigned long long)codec.st.literal, (unsigned long long)codec.st.ref,
                           (unsigned long long)codec.st.tail_bytes);
                else
                        ok(bytes == 3 * 1024 * 1024 + 100 + 200 * 1024 + 5000, "raw: every byte once (%llu)",
                           (unsigned long long)bytes);
        } else {
                ok(r == -ECANCELED, "%s: a failed writer ends the stream unfinished (%s)", what, e.msg);
                ok(rc.r < 0, "%s: the receiver fails too", what);
                ok(partial_files(src, dst) == 0, "%s: the receiver keeps no partial file", what);
        }
        close(sv[0]);
        close(sv[1]);
        fm_pagestore_close(&store);
        unlink(storepath);
        fm_hashset_free(&held);
        fm_rm_rf(src);
        fm_rm_rf(dst);
}


/* Frames a hostile sender writes: one page-encoded file, then the DATA
 * frame given, then the end. */
typedef struct hostile {
        int fd;
        const uint8_t *data;
        uint32_t len;
} hostile;

static void *hostile_thread(void *arg)
{
        hostile *h = arg;
        const char *hdr = "{\"path\":\"pages-1.img\",\"growing\":true,\"encoding\":\"pages\"}";
        fm_frame_send(h->fd, FM_FRAME_FILE, hdr, (uint32_t)strlen(hdr));
        fm_frame_send(h->fd, FM_FRAME_DATA, h->data, h->len);
        fm_frame_send(h->fd, FM_FRAME_END, NULL, 0);
        shutdown(h->fd, SHUT_WR);
        return NULL;
}

static uint64_t tree_bytes(const char *dir)
{
        uint64_t n = 0;
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                struct stat st;
                char p[700];
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                if (de->d_name[0] != '.' && lstat(p, &st) == 0)
                        n += (uint64_t)st.st_blocks * 512;
        }
        if (d)
                closedir(d);
        return n;
}

/* fm_files_recv against a hostile stream; returns its result. */
static int hostile_recv(const uint8_t *data, uint32_t len, const char *dst, uint64_t max_total, const char *spare,
                        fm_error *e)
{
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        uint8_t key[FM_HASH_KEY_SIZE] = {1};
        fm_pagestore store;
        char storepath[600];
        snprintf(storepath, sizeof(storepath), "%s.store", dst);
        fm_pagestore_open(&store, storepath, 64, e);
        fm_page_decoder dec = {.key = key, .store = &store, .spare = spare};
        hostile h = {.fd = sv[0], .data = data, .len = len};
        pthread_t t;
        pthread_create(&t, NULL, hostile_thread, &h);
        int r = fm_files_recv(sv[1], dst, max_total, &dec, NULL, e);
        close(sv[1]); /* a sender blocked on a refused frame sees it closed */
        pthread_join(t, NULL);
        close(sv[0]);
        fm_pagestore_close(&store);
        unlink(storepath);
        return r;
}

static void hostile_streams(void)
{
        char dst[] = "/tmp/fm-files-hostile.XXXXXX";
        if (!mkdtemp(dst))
                abort();
        /* 1 MiB of one-byte zero-page records: 4 GiB once rebuilt */
        const uint32_t n = FM_DATA_MAX;
        uint8_t *zeros = malloc(n);
        memset(zeros, 'Z', n);
        fm_error e = {0};
        int r = hostile_recv(zeros, n, dst, 1 << 20, NULL, &e);
        ok(r == -ENOSPC, "a frame of zero-page records rebuilding 4 GiB is refused (%s)", e.msg);
        ok(tree_bytes(dst) == 0, "nothing of it was written (%llu bytes on disk)", (unsigned long long)tree_bytes(dst));
        free(zeros);

        /* the spare file the page-encoded file takes over is a symlink to a
         * file outside: it must not be written through */
        char victim[700], spare[700];
        snprintf(victim, sizeof(victim), "%s.victim", dst);
        snprintf(spare, sizeof(spare), "%s.spare", dst);
        fm_write_file(victim, "precious\n", 9, 0644);
        symlink(victim, spare);
        uint8_t zero1[1] = {'Z'};
        memset(&e, 0, sizeof(e));
        r = hostile_recv(zero1, 1, dst, 1 << 20, spare, &e);
        _cleanup_free_ char *after = NULL;
        fm_read_file(victim, &after, 100);
        ok(r < 0 && after && !strcmp(after, "precious\n"), "a spare planted as a symlink is not followed (%s)", e.msg);
        unlink(victim);
        unlink(spare);
        fm_rm_rf(dst);
}

int main(void)
{
        hostile_streams();
        run(false, false);
        run(true, false);
        run(true, true);
        return tap_done();
}
