#include "files.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "proto/proto.h"
#include "proto/tls.h"
#include "util/spawn.h"

static bool is_pages_file(const char *name)
{
        size_t n = strlen(name);
        return !strncmp(name, "pages-", 6) && n > 10 && !strcmp(name + n - 4, ".img");
}

/* One file on its way: page records (codec) or raw bytes, and the running
 * checksum of the file's own bytes. */
typedef struct file_tx {
        int fd;
        const char *name;
        fm_page_codec *codec; /* NULL: raw bytes */
        XXH64_state_t *xs;
        uint8_t *out; /* records waiting for a frame (codec only) */
        size_t used;
        uint8_t *in;
        uint64_t done; /* bytes of the file consumed */
        uint64_t *bytes;
        fm_error *e;
} file_tx;

enum { TX_IN = 256 * FM_PAGE_SIZE }; /* a multiple of the page, at most a frame */

static int tx_flush(file_tx *t)
{
        if (!t->used)
                return 0;
        int r = fm_frame_send(t->fd, FM_FRAME_DATA, t->out, (uint32_t)t->used);
        if (r < 0)
                return fm_err(t->e, -r, "sending %s: %s", t->name, strerror(-r));
        *t->bytes += t->used;
        t->used = 0;
        return 0;
}

/* n bytes of the file: raw, or whole pages as records (a partial page only
 * as the file's last bytes). */
static int tx_put(file_tx *t, const uint8_t *in, size_t n)
{
        XXH64_update(t->xs, in, n);
        t->done += n;
        if (!t->codec) {
                int r = fm_frame_send(t->fd, FM_FRAME_DATA, in, (uint32_t)n);
                if (r < 0)
                        return fm_err(t->e, -r, "sending %s: %s", t->name, strerror(-r));
                *t->bytes += n;
                return 0;
        }
        for (size_t off = 0; off < n; off += FM_PAGE_SIZE) {
                size_t want = n - off < FM_PAGE_SIZE ? n - off : FM_PAGE_SIZE;
                if (t->used + FM_PAGEREC_MAX + 3 > FM_DATA_MAX && tx_flush(t) < 0)
                        return -t->e->code;
                int r = want == FM_PAGE_SIZE
                                ? fm_pagestream_put_page(in + off, t->codec->key, t->codec->held, t->codec->compress,
                                                         t->out + t->used, &t->codec->st)
                                : fm_pagestream_put_tail(in + off, want, t->out + t->used, &t->codec->st);
                if (r < 0)
                        return fm_err(t->e, -r, "encoding %s: %s", t->name, strerror(-r));
                if (t->codec->corrupt_one && t->out[t->used] == 'L') {
                        t->out[t->used + 1 + 100] ^= 0xff;
                        t->codec->corrupt_one = false;
                }
                t->used += (size_t)r;
        }
        return 0;
}

/* The next n bytes of f. */
static int tx_span(file_tx *t, int f, uint64_t n)
{
        while (n > 0) {
                size_t chunk = n < TX_IN ? (size_t)n : TX_IN;
                int r = fm_read_all(f, t->in, chunk);
                if (r < 0)
                        return fm_err(t->e, -r, "reading %s: %s", t->name, r == -EPIPE ? "file shrank" : strerror(-r));
                if ((r = tx_put(t, t->in, chunk)) < 0)
                        return r;
                n -= chunk;
        }
        return 0;
}

static int tx_header(file_tx *t, const struct stat *st, bool growing)
{
        json_object *h = json_object_new_object();
        json_object_object_add(h, "path", json_object_new_string(t->name));
        if (growing)
                json_object_object_add(h, "growing", json_object_new_boolean(1));
        else
                json_object_object_add(h, "size", json_object_new_int64(st->st_size));
        json_object_object_add(h, "mode", json_object_new_int((int)(st->st_mode & 07777)));
        if (t->codec)
                json_object_object_add(h, "encoding", json_object_new_string("pages"));
        int r = fm_msg_send(t->fd, FM_FRAME_FILE, h);
        json_object_put(h);
        return r < 0 ? fm_err(t->e, -r, "sending header of %s: %s", t->name, strerror(-r)) : 0;
}

static void put_be64(unsigned char *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (unsigned char)v;
}

static int tx_end(file_tx *t, bool growing)
{
        int r = tx_flush(t);
        if (r < 0)
                return r;
        unsigned char end[16];
        put_be64(end, XXH64_digest(t->xs));
        put_be64(end + 8, t->done);
        r = fm_frame_send(t->fd, FM_FRAME_FILE_END, end, growing ? 16 : 8);
        return r < 0 ? fm_err(t->e, -r, "sending %s: %s", t->name, strerror(-r)) : 0;
}

/* ---- a directory still being written (CRIU dumping into it) ---- */

enum { LIVE_MAX_NAMES = 4096 };

typedef struct live_names {
        char **name;
        bool *closed;
        size_t n;
} live_names;

static ssize_t names_find(const live_names *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++)
                if (!strcmp(l->name[i], name))
                        return (ssize_t)i;
        return -1;
}

static int names_add(live_names *l, const char *name)
{
        if (names_find(l, name) >= 0)
                return 0;
        if (l->n == LIVE_MAX_NAMES)
                return -E2BIG;
        if (!l->name && (!(l->name = calloc(LIVE_MAX_NAMES, sizeof(*l->name))) ||
                         !(l->closed = calloc(LIVE_MAX_NAMES, sizeof(*l->closed)))))
                return -ENOMEM;
        if (!(l->name[l->n] = strdup(name)))
                return -ENOMEM;
        l->closed[l->n++] = false;
        return 0;
}

static void names_free(live_names *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->name[i]);
        free(l->name);
        free(l->closed);
}

/* Reads the inotify events that are there (waits up to wait_ms for one):
 * pages files in order of creation, and which of them the writer closed. */
static int live_events(fm_files_live *live, live_names *l, int wait_ms, fm_error *e)
{
        /* the wake fd stays readable once written: every later wait returns
         * at once, and the caller looks at writer first */
        struct pollfd p[2] = {{.fd = live->inotify_fd, .events = POLLIN}, {.fd = live->wake_fd, .events = POLLIN}};
        if (poll(p, live->wake_fd >= 0 ? 2 : 1, wait_ms) <= 0 || !p[0].revents)
                return 0;
        _Alignas(struct inotify_event) char buf[16384];
        for (;;) {
                ssize_t n = read(live->inotify_fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0; /* EAGAIN: all read */
                for (char *q = buf; q < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)q;
                        q += sizeof(*ev) + ev->len;
                        if (!ev->len || !is_pages_file(ev->name))
                                continue;
                        int r = names_add(l, ev->name);
                        if (r < 0)
                                return fm_err(e, -r, "following the dump: %s", strerror(-r));
                        if (ev->mask & IN_CLOSE_WRITE)
                                l->closed[names_find(l, ev->name)] = true;
                }
        }
}

static int writer_state(const fm_files_live *live)
{
        return atomic_load(&live->writer);
}

/* Sends a pages file while the writer still appends to it: page-aligned spans
 * as they appear, the rest once the writer closed it or ended. */
static int send_growing(file_tx *t, int dfd, fm_files_live *live, live_names *l, size_t idx)
{
        _cleanup_close_ int f = openat(dfd, t->name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (f < 0 || fstat(f, &st) < 0)
                return fm_err(t->e, errno, "opening %s: %s", t->name, strerror(errno));
        int r = tx_header(t, &st, true);
        for (; r == 0;) {
                int w = writer_state(live);
                if (w < 0)
                        return fm_err(t->e, ECANCELED, "the dump failed while %s was on its way", t->name);
                /* look at "closed" before the size: a size read after it is final */
                bool final = w > 0 || l->closed[idx];
                if (fstat(f, &st) < 0)
                        return fm_err(t->e, errno, "reading %s: %s", t->name, strerror(errno));
                uint64_t avail = (uint64_t)st.st_size > t->done ? (uint64_t)st.st_size - t->done : 0;
                if (!final)
                        avail -= avail % FM_PAGE_SIZE;
                if (avail && (r = tx_span(t, f, avail)) < 0)
                        return r;
                if (final)
                        break;
                if (!avail)
                        r = live_events(live, l, 1, t->e);
        }
        return r < 0 ? r : tx_end(t, true);
}

void fm_files_live_end(fm_files_live *live, bool ok)
{
        atomic_store(&live->writer, ok ? 1 : -1);
        uint64_t one = 1;
        if (live->wake_fd >= 0 && write(live->wake_fd, &one, sizeof(one)) < 0) {
                /* the sender still sees writer at its next poll */
        }
}

int fm_files_live_watch(fm_files_live *live, const char *dir, fm_error *e)
{
        atomic_store(&live->writer, 0);
        live->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        live->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (live->inotify_fd < 0 ||
            inotify_add_watch(live->inotify_fd, dir, IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
                int err = errno;
                fm_files_live_close(live);
                return fm_err(e, err, "watching %s: %s", dir, strerror(err));
        }
        return 0;
}

void fm_files_live_close(fm_files_live *live)
{
        if (live->inotify_fd >= 0)
                live->inotify_fd = fm_close(live->inotify_fd);
        if (live->wake_fd >= 0)
                live->wake_fd = fm_close(live->wake_fd);
}

/* ---- the stream ---- */

static int send_static(file_tx *t, int dfd)
{
        _cleanup_close_ int f = openat(dfd, t->name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (f < 0 || fstat(f, &st) < 0)
                return fm_err(t->e, errno, "opening %s: %s", t->name, strerror(errno));
        int r = tx_header(t, &st, false);
        if (r == 0)
                r = tx_span(t, f, (uint64_t)st.st_size);
        return r < 0 ? r : tx_end(t, false);
}

/* One file of the stream; t holds the stream's socket, buffers and codec. */
static int send_file(file_tx *t, fm_page_codec *codec, int dfd, const char *name, fm_files_live *live,
                     live_names *l, ssize_t live_idx)
{
        t->name = name;
        t->codec = codec && is_pages_file(name) ? codec : NULL;
        t->used = 0;
        t->done = 0;
        XXH64_reset(t->xs, 0);
        return live_idx >= 0 ? send_growing(t, dfd, live, l, (size_t)live_idx) : send_static(t, dfd);
}

int fm_files_send(int fd, const char *dir, fm_page_codec *codec, fm_files_live *live, uint64_t *bytes, fm_error *e)
{
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return fm_err(e, errno, "opening %s: %s", dir, strerror(errno));
        uint64_t total = 0;
        live_names sent = {0}, seen = {0};
        file_tx t = {.fd = fd, .xs = XXH64_createState(), .out = malloc(FM_DATA_MAX), .in = malloc(TX_IN),
                     .bytes = &total, .e = e};
        int r = !t.xs || !t.out || !t.in ? fm_err(e, ENOMEM, "out of memory") : 0;
        if (live && r == 0) { /* pages files created before the watch began */
                DIR *d0 = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3));
                struct dirent *de0;
                if (d0)
                        rewinddir(d0);
                while (d0 && r == 0 && (de0 = readdir(d0)))
                        if (is_pages_file(de0->d_name) && names_add(&seen, de0->d_name) < 0)
                                r = fm_err(e, ENOMEM, "out of memory");
                if (d0)
                        closedir(d0);
        }
        /* while the writer runs: its pages files, each as it grows, in the
         * order they were created */
        for (size_t next = 0; live && r == 0 && writer_state(live) == 0;) {
                if (next < seen.n) {
                        if ((r = send_file(&t, codec, dfd, seen.name[next], live, &seen, (ssize_t)next)) == 0)
                                r = names_add(&sent, seen.name[next]) < 0 ? fm_err(e, ENOMEM, "out of memory") : 0;
                        next++;
                } else {
                        r = live_events(live, &seen, 5, e);
                }
        }
        if (live && r == 0 && writer_state(live) < 0)
                r = fm_err(e, ECANCELED, "the dump failed");
        /* then every file, but those already sent, as it is now */
        DIR *d = r == 0 ? fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3)) : NULL;
        if (r == 0 && !d)
                r = fm_err(e, errno, "opening %s: %s", dir, strerror(errno));
        if (d) /* the dup shares its offset with the first scan */
                rewinddir(d);
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || names_find(&sent, de->d_name) >= 0)
                        continue;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                r = send_file(&t, codec, dfd, de->d_name, NULL, NULL, -1);
        }
        if (d)
                closedir(d);
        names_free(&sent);
        names_free(&seen);
        if (t.xs)
                XXH64_freeState(t.xs);
        free(t.out);
        free(t.in);
        if (r == 0 && (r = fm_frame_send(fd, FM_FRAME_END, NULL, 0)) < 0)
                r = fm_err(e, -r, "sending end of stream: %s", strerror(-r));
        if (bytes)
                *bytes = total;
        return r;
}

int fm_files_recv(int fd, const char *dir, uint64_t max_total, fm_page_decoder *dec, uint64_t *bytes, fm_error *e)
{
        int r = fm_mkdir_p(dir, 0700);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", dir, strerror(-r));
        uint64_t total = 0;
        int out = -1;
        char cur[300] = "";
        char curpath[1024] = "";
        uint64_t declared = 0, got = 0;
        bool paged = false, growing = false, spare = false;
        XXH64_state_t *xs = XXH64_createState();
        for (;;) {
                uint8_t t = 0;
                char *p = NULL;
                uint32_t len = 0;
                if ((r = fm_frame_recv(fd, &t, &p, &len, e)) < 0)
                        break;
                if (t == FM_FRAME_END && out < 0) {
                        free(p);
                        break;
                }
                if (t == FM_FRAME_FILE && out < 0) {
                        json_object *h = NULL;
                        const char *path = NULL, *enc = NULL;
                        int64_t size = 0, mode = 0600;
                        r = fm_msg_parse(p, len, &h, e);
                        growing = r == 0 && fm_json_bool(h, "growing", false);
                        if (r == 0)
                                r = fm_json_str(h, "path", true, 255, &path, e);
                        if (r == 0)
                                r = fm_json_int(h, "size", !growing, 0, (int64_t)FM_FILE_MAX, &size, e);
                        if (r == 0 && growing && json_object_object_get_ex(h, "size", NULL))
                                r = fm_err(e, EPROTO, "a growing file has no size in its header");
                        if (r == 0)
                                r = fm_json_int(h, "mode", false, 0, 07777, &mode, e);
                        if (r == 0)
                                r = fm_json_str(h, "encoding", false, 16, &enc, e);
                        paged = enc && !strcmp(enc, "pages");
                        if (r == 0 && enc && !paged)
                                r = fm_err(e, EPROTO, "unknown file encoding `%s'", enc);
                        if (r == 0 && paged && !dec)
                                r = fm_err(e, EPROTO, "page-encoded file `%s' without a page store", path);
                        if (r == 0 && (!fm_path_is_safe_relative(path) || strchr(path, '/')))
                                r = fm_err(e, EINVAL, "unsafe file name `%s' in stream", path);
                        if (r == 0 && total + (uint64_t)size > max_total)
                                r = fm_err(e, ENOSPC, "stream needs more than the %llu bytes allowed",
                                           (unsigned long long)max_total);
                        if (r == 0) {
                                snprintf(cur, sizeof(cur), "%s", path);
                                snprintf(curpath, sizeof(curpath), "%s/%s", dir, path);
                                spare = paged && dec->spare && rename(dec->spare, curpath) == 0;
                                if (spare) {
                                        dec->spare = NULL;
                                        out = open(curpath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
                                        if (out >= 0)
                                                fchmod(out, (mode_t)mode);
                                } else {
                                        out = open(curpath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                                                   (mode_t)mode);
                                }
                                if (out < 0)
                                        r = fm_err(e, errno, "creating %s: %s", curpath, strerror(errno));
                                declared = growing ? FM_FILE_MAX : (uint64_t)size;
                                got = 0;
                                XXH64_reset(xs, 0);
                        }
                        json_object_put(h);
                } else if (t == FM_FRAME_DATA && out >= 0 && paged) {
                        /* a record of a few bytes rebuilds a page: the size
                         * is known, and checked, before anything is written */
                        uint64_t n = 0;
                        r = fm_pagestream_decoded_size((const uint8_t *)p, len, &n, e);
                        if (r == 0 && got + n > declared)
                                r = fm_err(e, EPROTO, "file %s is longer than its declared %llu bytes", cur,
                                           (unsigned long long)declared);
                        else if (r == 0 && total + n > max_total)
                                r = fm_err(e, ENOSPC, "stream needs more than the %llu bytes allowed",
                                           (unsigned long long)max_total);
                        if (r == 0)
                                r = fm_pagestream_decode((const uint8_t *)p, len, dec->key, dec->store, out, xs,
                                                         &dec->st, e);
                        got += n;
                        total += n;
                        if (r < 0)
                                fm_err_wrap(e, "file %s", cur);
                } else if (t == FM_FRAME_DATA && out >= 0) {
                        if (got + len > declared)
                                r = fm_err(e, EPROTO, "file %s is longer than its declared %llu bytes", cur,
                                           (unsigned long long)declared);
                        else if (growing && total + len > max_total)
                                r = fm_err(e, ENOSPC, "stream needs more than the %llu bytes allowed",
                                           (unsigned long long)max_total);
                        else if ((r = fm_write_all(out, p, len)) < 0)
                                r = fm_err(e, -r, "writing %s: %s", curpath, strerror(-r));
                        got += len;
                        total += len;
                        XXH64_update(xs, p, len);
                } else if (t == FM_FRAME_FILE_END && out >= 0) {
                        uint64_t want = 0, final = 0;
                        for (int i = 0; i < 8; i++)
                                want = want << 8 | (unsigned char)p[i];
                        for (int i = 8; i < 16 && growing && len == 16; i++)
                                final = final << 8 | (unsigned char)p[i];
                        if (growing)
                                declared = final;
                        if (len != (growing ? 16u : 8u))
                                r = fm_err(e, EPROTO, "file-end of %s has %u bytes, want %u", cur, len,
                                           growing ? 16u : 8u);
                        else if (got != declared)
                                r = fm_err(e, EPROTO, "file %s ended after %llu of %llu bytes", cur,
                                           (unsigned long long)got, (unsigned long long)declared);
                        else {
                                uint64_t have = XXH64_digest(xs);
                                if (have != want)
                                        r = fm_err(e, EBADMSG, "file %s does not match its checksum%s", cur,
                                                   paged ? " after rebuilding it" : "");
                        }
                        if (r == 0 && spare && ftruncate(out, (off_t)got) < 0)
                                r = fm_err(e, errno, "truncating %s: %s", curpath, strerror(errno));
                        out = fm_close(out);
                        if (r < 0)
                                unlink(curpath);
                } else {
                        r = fm_err(e, EPROTO, "unexpected frame type %u in a file stream", t);
                }
                free(p);
                if (r < 0)
                        break;
        }
        XXH64_freeState(xs);
        if (out >= 0) {
                fm_close(out);
                unlink(curpath);
        }
        if (bytes)
                *bytes = total;
        return r;
}

/* Total bytes sent, from rsync's --stats */
static uint64_t stats_bytes_sent(const char *out)
{
        const char *p = out ? strstr(out, "Total bytes sent: ") : NULL;
        uint64_t v = 0;
        if (!p)
                return 0;
        for (p += strlen("Total bytes sent: "); *p; p++) {
                if (*p >= '0' && *p <= '9')
                        v = v * 10 + (uint64_t)(*p - '0');
                else if (*p != ',')
                        break;
        }
        return v;
}

int fm_rsync_push(const char *src_dir, const fm_rsync_dest *to, int nice, bool inplace, const char *files_from,
                  uint64_t *bytes, fm_error *e)
{
        if (!fm_tls_enabled())
                return fm_err(e, EPERM, "rsync to %s: this process has no certificate", to->addr);
        /* rsync splits the -e command at spaces, quotes keep them */
        if (strchr(fm_self_dir(), '\''))
                return fm_err(e, EINVAL, "rsync: the program's directory `%s' has a quote", fm_self_dir());
        _cleanup_free_ char *tunnel =
                to->image ? fm_strdupf("'%s/fm-rsync-tunnel' %s:%u image %s", fm_self_dir(), to->addr, to->port, to->image)
                          : fm_strdupf("'%s/fm-rsync-tunnel' %s:%u container %s %s", fm_self_dir(), to->addr, to->port,
                                       to->name, to->part);
        _cleanup_free_ char *src = fm_strdupf("%s/", src_dir);
        if (to->list_fd > 2)
                files_from = "-";
        _cleanup_free_ char *list = files_from ? fm_strdupf("--files-from=%s", files_from) : NULL;
        _cleanup_free_ char *ready = to->ready_fd > 2 ? fm_strdupf("FASTMIG_READY_FD=%d", to->ready_fd) : NULL;
        _cleanup_free_ char *pki = fm_strdupf("FASTMIG_PKI=%s", fm_tls_dir());
        _cleanup_free_ char *cert = fm_strdupf("FASTMIG_CERT=%s", fm_tls_self());
        char niceval[16], timeout[32];
        snprintf(niceval, sizeof(niceval), "%d", nice);
        snprintf(timeout, sizeof(timeout), "--timeout=%d", FM_RSYNC_IO_TIMEOUT_S);
        fm_strv argv = {0};
        const char *const fixed[] = {"nice", "-n", niceval, "rsync", "--delete", "--stats", timeout, "-e",
                                     tunnel ? tunnel : ""};
        for (size_t i = 0; i < FM_ARRAY_SIZE(fixed); i++)
                fm_strv_push(&argv, fixed[i]);
        /* a tree: all of it, as it is; an image: its one regular file (the
         * target refuses links, devices and the like into a staging dir) */
        fm_strv_push(&argv, to->image ? "-rt" : "-aHAX");
        if (!to->image)
                fm_strv_push(&argv, "--numeric-ids");
        if (inplace) { /* whole files (there is no basis to compare with) */
                fm_strv_push(&argv, "--inplace");
                fm_strv_push(&argv, "-W");
        }
        if (files_from) {
                fm_strv_push(&argv, "--dirs");
                fm_strv_push(&argv, "--from0");
                fm_strv_push(&argv, list ? list : "--files-from=/nonexistent");
        }
        fm_strv_push(&argv, src ? src : "/nonexistent/");
        fm_strv_push(&argv, "fastmig::ct/");
        const char *env[] = {pki, cert, ready, NULL};
        /* 24: source files vanished while rsync ran. While the service runs
         * the final sync catches up; while it is frozen only the dump's own
         * temporary files (CRIU's link remaps) can vanish: rsync failed a
         * rollback test that way. */
        fm_spawn_opts o = {.env_add = env, .timeout_ms = 3600 * 1000, .also_ok = 24, .own_group = true,
                           .stdin_fd = to->list_fd > 2 ? to->list_fd : 0, .keep_fd = to->ready_fd > 2 ? to->ready_fd : 0};
        int r = argv.v && tunnel && src && pki && cert ? fm_spawn_check(argv.v, &o, e) : fm_err(e, ENOMEM, "out of memory");
        fm_strv_free(&argv);
        if (r == 0 && bytes)
                *bytes = stats_bytes_sent(o.output);
        if (r < 0 && o.output) {
                /* "see previous errors": the first of them says what failed
                 * (the tunnel's own word when it could not connect) */
                const char *p = strstr(o.output, "fm-rsync-tunnel: ");
                if (!p)
                        p = strstr(o.output, "rsync: ");
                if (p) {
                        size_t len = strcspn(p, "\n");
                        size_t have = strlen(e->msg);
                        snprintf(e->msg + have, sizeof(e->msg) - have, "; first: %.*s", (int)len, p);
                }
        }
        free(o.output);
        if (r < 0)
                return to->image ? fm_err_wrap(e, "rsync of image %.12s to %s", to->image, to->addr)
                                 : fm_err_wrap(e, "rsync of %s/%s to %s", to->name, to->part, to->addr);
        return 0;
}

int fm_rsync_serve(int fd, const char *dir, bool one_file, const char *conf_dir, void (*started)(pid_t, void *),
                   void *data, fm_error *e)
{
        /* The module's config, in a file of its own while rsync runs (rsync
         * resolves the path itself: no /proc/self/fd/N of a memfd). use
         * chroot = yes confines the peer to dir, and without it rsyncd
         * strips the leading "/" of absolute symlink targets (a Debian tree
         * has many); munge symlinks = no keeps targets as they are; numeric
         * ids: the container's own uids. */
        _cleanup_free_ char *conf = fm_strdupf("use chroot = yes\nnumeric ids = yes\nlog file = /dev/null\n"
                                               "transfer logging = no\ntimeout = %d\n\n"
                                               "[ct]\n  path = %s\n  read only = no\n  munge symlinks = no\n"
                                               "  uid = root\n  gid = root\n"
                                               "  refuse options = write-devices copy-devices%s\n",
                                               FM_RSYNC_IO_TIMEOUT_S, dir,
                                               one_file ? " links hard-links devices specials acls xattrs" : "");
        _cleanup_free_ char *path = fm_strdupf("%s/.rsyncd-XXXXXX", conf_dir);
        if (!conf || !path)
                return fm_err(e, ENOMEM, "out of memory");
        int cfd = mkostemp(path, O_CLOEXEC);
        if (cfd < 0)
                return fm_err(e, errno, "creating %s: %s", path, strerror(errno));
        int r = fm_write_all(cfd, conf, strlen(conf));
        fm_close(cfd);
        if (r < 0) {
                unlink(path);
                return fm_err(e, -r, "writing %s: %s", path, strerror(-r));
        }
        _cleanup_free_ char *arg = fm_strdupf("--config=%s", path);
        char *argv[] = {"rsync", "--server", "--daemon", arg ? arg : "--config=/nonexistent", ".", NULL};
        fm_spawn_opts o = {.stdio_fd = fd, .timeout_ms = 3600 * 1000, .own_group = true, .started = started,
                           .started_data = data};
        r = fm_spawn_check(argv, &o, e);
        free(o.output);
        unlink(path);
        return r < 0 ? fm_err_wrap(e, "rsync into %s", dir) : 0;
}
