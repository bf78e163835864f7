#include "files.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "proto/proto.h"
#include "util/spawn.h"

static bool is_pages_file(const char *name)
{
        size_t n = strlen(name);
        return !strncmp(name, "pages-", 6) && n > 10 && !strcmp(name + n - 4, ".img");
}

/* Sends a file of pages as records; whole records per frame. */
static int send_pages(int fd, int f, const char *name, uint64_t size, fm_page_codec *c, XXH64_state_t *xs,
                      uint64_t *bytes, fm_error *e)
{
        enum { IN = 256 * FM_PAGE_SIZE };
        _cleanup_free_ uint8_t *out = malloc(FM_DATA_MAX);
        _cleanup_free_ uint8_t *in = malloc(IN);
        size_t used = 0;
        uint64_t left = size;
        if (!out || !in)
                return fm_err(e, ENOMEM, "out of memory");
        while (left > 0) {
                size_t chunk = left < IN ? (size_t)left : IN;
                int r = fm_read_all(f, in, chunk);
                if (r < 0)
                        return fm_err(e, -r, "reading %s: %s", name, strerror(-r));
                XXH64_update(xs, in, chunk);
                for (size_t off = 0; off < chunk; off += FM_PAGE_SIZE) {
                        size_t want = chunk - off < FM_PAGE_SIZE ? chunk - off : FM_PAGE_SIZE;
                        if (used + FM_PAGEREC_MAX + 3 > FM_DATA_MAX) {
                                if ((r = fm_frame_send(fd, FM_FRAME_DATA, out, (uint32_t)used)) < 0)
                                        return fm_err(e, -r, "sending %s: %s", name, strerror(-r));
                                *bytes += used;
                                used = 0;
                        }
                        r = want == FM_PAGE_SIZE ? fm_pagestream_put_page(in + off, c->key, c->held, out + used, &c->st)
                                                 : fm_pagestream_put_tail(in + off, want, out + used, &c->st);
                        if (r < 0)
                                return fm_err(e, -r, "encoding %s: %s", name, strerror(-r));
                        if (c->corrupt_one && out[used] == 'L') {
                                out[used + 1 + 100] ^= 0xff;
                                c->corrupt_one = false;
                        }
                        used += (size_t)r;
                }
                left -= chunk;
        }
        if (used) {
                int r = fm_frame_send(fd, FM_FRAME_DATA, out, (uint32_t)used);
                if (r < 0)
                        return fm_err(e, -r, "sending %s: %s", name, strerror(-r));
                *bytes += used;
        }
        return 0;
}

static int send_one(int fd, int dfd, const char *name, fm_page_codec *codec, uint64_t *bytes, fm_error *e)
{
        _cleanup_close_ int f = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (f < 0 || fstat(f, &st) < 0)
                return fm_err(e, errno, "opening %s: %s", name, strerror(errno));
        json_object *h = json_object_new_object();
        json_object_object_add(h, "path", json_object_new_string(name));
        json_object_object_add(h, "size", json_object_new_int64(st.st_size));
        json_object_object_add(h, "mode", json_object_new_int((int)(st.st_mode & 07777)));
        bool paged = codec && is_pages_file(name);
        if (paged)
                json_object_object_add(h, "encoding", json_object_new_string("pages"));
        int r = fm_msg_send(fd, FM_FRAME_FILE, h);
        json_object_put(h);
        if (r < 0)
                return fm_err(e, -r, "sending header of %s: %s", name, strerror(-r));
        XXH64_state_t *xs = XXH64_createState();
        XXH64_reset(xs, 0);
        static __thread char buf[FM_DATA_MAX];
        uint64_t left = paged ? 0 : (uint64_t)st.st_size;
        if (paged && (r = send_pages(fd, f, name, (uint64_t)st.st_size, codec, xs, bytes, e)) < 0) {
                XXH64_freeState(xs);
                return r;
        }
        while (left > 0) {
                ssize_t n = read(f, buf, left < sizeof(buf) ? left : sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        XXH64_freeState(xs);
                        return fm_err(e, n < 0 ? errno : EIO, "reading %s: %s", name, n < 0 ? strerror(errno) : "file shrank");
                }
                XXH64_update(xs, buf, (size_t)n);
                if ((r = fm_frame_send(fd, FM_FRAME_DATA, buf, (uint32_t)n)) < 0) {
                        XXH64_freeState(xs);
                        return fm_err(e, -r, "sending %s: %s", name, strerror(-r));
                }
                left -= (uint64_t)n;
                *bytes += (uint64_t)n;
        }
        uint64_t hv = XXH64_digest(xs);
        XXH64_freeState(xs);
        unsigned char hb[8];
        for (int i = 7; i >= 0; i--, hv >>= 8)
                hb[i] = (unsigned char)hv;
        r = fm_frame_send(fd, FM_FRAME_FILE_END, hb, 8);
        return r < 0 ? fm_err(e, -r, "sending %s: %s", name, strerror(-r)) : 0;
}

int fm_files_send(int fd, const char *dir, fm_page_codec *codec, uint64_t *bytes, fm_error *e)
{
        DIR *d = opendir(dir);
        if (!d)
                return fm_err(e, errno, "opening %s: %s", dir, strerror(errno));
        uint64_t total = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if ((r = send_one(fd, dirfd(d), de->d_name, codec, &total, e)) < 0)
                        break;
        }
        closedir(d);
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
        bool paged = false;
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
                        if (r == 0)
                                r = fm_json_str(h, "path", true, 255, &path, e);
                        if (r == 0)
                                r = fm_json_int(h, "size", true, 0, (int64_t)FM_FILE_MAX, &size, e);
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
                                out = open(curpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
                                if (out < 0)
                                        r = fm_err(e, errno, "creating %s: %s", curpath, strerror(errno));
                                declared = (uint64_t)size;
                                got = 0;
                                XXH64_reset(xs, 0);
                        }
                        json_object_put(h);
                } else if (t == FM_FRAME_DATA && out >= 0 && paged) {
                        off_t before = lseek(out, 0, SEEK_END);
                        r = fm_pagestream_decode((const uint8_t *)p, len, dec->key, dec->store, out, xs, &dec->st, e);
                        off_t after = lseek(out, 0, SEEK_END);
                        if (r == 0 && (uint64_t)after > declared)
                                r = fm_err(e, EPROTO, "file %s is longer than its declared %llu bytes", cur,
                                           (unsigned long long)declared);
                        got = (uint64_t)after;
                        total += (uint64_t)(after - before);
                        if (r == 0 && total > max_total)
                                r = fm_err(e, ENOSPC, "stream needs more than the %llu bytes allowed",
                                           (unsigned long long)max_total);
                        if (r < 0)
                                fm_err_wrap(e, "file %s", cur);
                } else if (t == FM_FRAME_DATA && out >= 0) {
                        if (got + len > declared)
                                r = fm_err(e, EPROTO, "file %s is longer than its declared %llu bytes", cur,
                                           (unsigned long long)declared);
                        else if ((r = fm_write_all(out, p, len)) < 0)
                                r = fm_err(e, -r, "writing %s: %s", curpath, strerror(-r));
                        got += len;
                        total += len;
                        XXH64_update(xs, p, len);
                } else if (t == FM_FRAME_FILE_END && out >= 0) {
                        uint64_t want = 0;
                        for (int i = 0; i < 8; i++)
                                want = want << 8 | (unsigned char)p[i];
                        if (got != declared)
                                r = fm_err(e, EPROTO, "file %s ended after %llu of %llu bytes", cur,
                                           (unsigned long long)got, (unsigned long long)declared);
                        else {
                                uint64_t have = XXH64_digest(xs);
                                if (have != want)
                                        r = fm_err(e, EBADMSG, "file %s does not match its checksum%s", cur,
                                                   paged ? " after rebuilding it" : "");
                        }
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

int fm_rsync_push(const char *src_dir, const char *addr, uint16_t port, const char *dest_rel, int nice,
                  uint64_t *bytes, fm_error *e)
{
        char src[1100], url[1100], portarg[32];
        snprintf(src, sizeof(src), "%s/", src_dir);
        snprintf(url, sizeof(url), "rsync://%s/lxc/%s/", addr, dest_rel);
        snprintf(portarg, sizeof(portarg), "--port=%u", port);
        char niceval[16];
        snprintf(niceval, sizeof(niceval), "%d", nice);
        char *argv[] = {"nice", "-n", niceval, "rsync", "-aHAX", "--numeric-ids", "--delete", "--stats",
                        "--sockopts=TCP_NODELAY", portarg, src, url, NULL};
        fm_spawn_opts o = {.timeout_ms = 3600 * 1000};
        int r = fm_spawn_check(argv, &o, e);
        if (r == 0 && bytes) {
                *bytes = 0;
                const char *p = o.output ? strstr(o.output, "Total bytes sent: ") : NULL;
                if (p) {
                        p += strlen("Total bytes sent: ");
                        uint64_t v = 0;
                        for (; *p; p++) {
                                if (*p >= '0' && *p <= '9')
                                        v = v * 10 + (uint64_t)(*p - '0');
                                else if (*p != ',')
                                        break;
                        }
                        *bytes = v;
                }
        }
        free(o.output);
        return r < 0 ? fm_err_wrap(e, "rsync to %s", url) : 0;
}

int fm_rsyncd_config(const char *conf_path, const char *lxcpath, const char *images, const char *addr, uint16_t port,
                     fm_error *e)
{
        /* reverse lookup = no: otherwise every connection waits ~5 s on DNS in a
         * namespace. munge symlinks = no: without chroot rsyncd rewrites every
         * symlink to /rsyncd-munged/..., which breaks any rootfs. TCP_NODELAY
         * (both ends): rsync's small protocol messages otherwise meet delayed
         * ACKs, two 40 ms stalls per run. */
        _cleanup_free_ char *conf = fm_strdupf("port = %u\naddress = %s\nreverse lookup = no\nuse chroot = no\n"
                                               "socket options = TCP_NODELAY\n"
                                               "numeric ids = yes\n\n[lxc]\n  path = %s\n  read only = no\n  munge symlinks = no\n"
                                               "  uid = root\n  gid = root\n\n"
                                               "[images]\n  path = %s\n  read only = no\n  munge symlinks = no\n"
                                               "  uid = root\n  gid = root\n",
                                               port, addr, lxcpath, images);
        int r = fm_write_file(conf_path, conf, strlen(conf), 0600);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", conf_path, strerror(-r)) : 0;
}
