#include "journal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "proto/proto.h"

static const char *const step_names[] = {"planned", "frozen", "committed", "rolledback"};

const char *fm_journal_step_name(fm_journal_step s)
{
        return (unsigned)s < FM_ARRAY_SIZE(step_names) ? step_names[s] : "?";
}

void fm_journal_path(const char *state, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/" FM_JOURNAL_DIR "/%s.json", state, name);
}

void fm_journal_new_id(char id[33])
{
        uint8_t b[16];
        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) { /* never short for 16 bytes; still */
                uint64_t t = fm_now_ns() ^ (uint64_t)getpid() << 32;
                memcpy(b, &t, sizeof(t));
                memcpy(b + 8, &t, sizeof(t));
        }
        for (int i = 0; i < 16; i++)
                snprintf(id + 2 * i, 3, "%02x", b[i]);
}

static int fsync_dir(const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int fm_journal_write(const char *state, const fm_journal_rec *r, fm_error *e)
{
        char dir[512], path[600], tmp[620];
        snprintf(dir, sizeof(dir), "%s/" FM_JOURNAL_DIR, state);
        bool fresh = !fm_path_exists(dir);
        int q = fm_mkdir_p(dir, 0700);
        if (q < 0)
                return fm_err(e, -q, "creating %s: %s", dir, strerror(-q));
        if (fresh && (q = fsync_dir(state)) < 0)
                return fm_err(e, -q, "syncing %s: %s", state, strerror(-q));
        fm_journal_path(state, r->name, path, sizeof(path));
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "step", json_object_new_string(fm_journal_step_name(r->step)));
        json_object_object_add(o, "name", json_object_new_string(r->name));
        json_object_object_add(o, "id", json_object_new_string(r->id));
        json_object_object_add(o, "to_host", json_object_new_string(r->to_host));
        json_object_object_add(o, "to_addr", json_object_new_string(r->to_addr));
        json_object_object_add(o, "to_port", json_object_new_int(r->to_port));
        json_object_object_add(o, "service_ip", json_object_new_string(r->service_ip));
        json_object_object_add(o, "moving_tree", json_object_new_boolean(r->moving_tree));
        json_object_object_add(o, "leases", json_object_new_boolean(r->leases));
        json_object_object_add(o, "shared_rel", json_object_new_string(r->shared_rel));
        json_object_object_add(o, "started", json_object_new_int64(r->started));
        json_object_object_add(o, "since", json_object_new_int64(r->since));
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        size_t len = strlen(s);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int err = fd < 0 ? errno : 0;
        if (fd >= 0) {
                if ((q = fm_write_all(fd, s, len)) < 0)
                        err = -q;
                else if (write(fd, "\n", 1) != 1)
                        err = EIO;
                else if (fsync(fd) < 0)
                        err = errno;
                close(fd);
        }
        json_object_put(o);
        if (!err && rename(tmp, path) < 0)
                err = errno;
        if (err) {
                unlink(tmp);
                return fm_err(e, err, "writing the journal %s: %s", path, strerror(err));
        }
        /* renamed: the record is what a restart reads, whatever the
         * directory's sync says (a caller that took a failure here for
         * "not recorded" could undo a step the record says was taken) */
        if ((q = fsync_dir(dir)) < 0)
                fprintf(stderr, "fastmig: syncing %s: %s\n", dir, strerror(-q));
        return 0;
}

static int ipv4(json_object *o, const char *key, bool required, char *out, size_t n, fm_error *e)
{
        const char *s = NULL;
        int r = fm_json_str(o, key, required, 15, &s, e);
        if (r < 0)
                return r;
        struct in_addr a;
        if (s && s[0] && inet_pton(AF_INET, s, &a) != 1)
                return fm_err(e, EINVAL, "`%s' is not an IPv4 address", key);
        snprintf(out, n, "%s", s ? s : "");
        return 0;
}

int fm_journal_parse(const char *text, size_t len, fm_journal_rec *r, fm_error *e)
{
        memset(r, 0, sizeof(*r));
        json_object *o = NULL;
        int q = fm_msg_parse(text, len, &o, e);
        if (q < 0)
                return q;
        const char *step = NULL, *name = NULL, *id = NULL, *host = NULL, *rel = NULL;
        int64_t port = 0, started = 0, since = 0;
        q = fm_json_str(o, "step", true, 16, &step, e);
        if (q == 0)
                q = fm_json_str(o, "name", true, FM_NAME_MAX, &name, e);
        if (q == 0)
                q = fm_json_str(o, "id", true, 32, &id, e);
        if (q == 0)
                q = fm_json_str(o, "to_host", true, sizeof(r->to_host) - 1, &host, e);
        if (q == 0)
                q = ipv4(o, "to_addr", true, r->to_addr, sizeof(r->to_addr), e);
        if (q == 0 && !r->to_addr[0])
                q = fm_err(e, EINVAL, "empty `to_addr'");
        if (q == 0)
                q = fm_json_int(o, "to_port", true, 1, 65535, &port, e);
        if (q == 0)
                q = ipv4(o, "service_ip", false, r->service_ip, sizeof(r->service_ip), e);
        if (q == 0)
                q = fm_json_str(o, "shared_rel", false, sizeof(r->shared_rel) - 1, &rel, e);
        if (q == 0)
                q = fm_json_int(o, "started", false, 0, INT64_MAX, &started, e);
        if (q == 0)
                q = fm_json_int(o, "since", false, 0, INT64_MAX, &since, e);
        if (q == 0) {
                int k = -1;
                for (size_t i = 0; i < FM_ARRAY_SIZE(step_names); i++)
                        if (!strcmp(step, step_names[i]))
                                k = (int)i;
                if (k < 0)
                        q = fm_err(e, EINVAL, "unknown step `%s'", step);
                else if (!fm_name_is_valid(name) || !fm_name_is_valid(host))
                        q = fm_err(e, EINVAL, "bad container or host name");
                else if (strspn(id, "0123456789abcdef") != strlen(id) || strlen(id) != 32)
                        q = fm_err(e, EINVAL, "bad migration id");
                else if (rel && rel[0] && !fm_path_is_safe_relative(rel))
                        q = fm_err(e, EINVAL, "bad shared_rel `%s'", rel);
                else {
                        r->step = (fm_journal_step)k;
                        snprintf(r->name, sizeof(r->name), "%s", name);
                        snprintf(r->id, sizeof(r->id), "%s", id);
                        snprintf(r->to_host, sizeof(r->to_host), "%s", host);
                        r->to_port = (uint16_t)port;
                        r->moving_tree = fm_json_bool(o, "moving_tree", false);
                        r->leases = fm_json_bool(o, "leases", false);
                        snprintf(r->shared_rel, sizeof(r->shared_rel), "%s", rel ? rel : "");
                        r->started = started;
                        r->since = since;
                }
        }
        json_object_put(o);
        return q;
}

int fm_journal_read(const char *path, fm_journal_rec *r, fm_error *e)
{
        _cleanup_free_ char *text = NULL;
        int n = fm_read_file(path, &text, FM_JOURNAL_MAX_BYTES);
        if (n < 0)
                return fm_err(e, -n, "reading %s: %s", path, strerror(-n));
        if (fm_journal_parse(text, (size_t)n, r, e) < 0)
                return fm_err_wrap(e, "%s", path);
        return 0;
}

int fm_journal_remove(const char *state, const char *name)
{
        char path[600], dir[512];
        fm_journal_path(state, name, path, sizeof(path));
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        snprintf(dir, sizeof(dir), "%s/" FM_JOURNAL_DIR, state);
        fsync_dir(dir);
        return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

int fm_journal_list(const char *state, char (*names)[FM_NAME_MAX + 1], int max, fm_error *e)
{
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/" FM_JOURNAL_DIR, state);
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : fm_err(e, errno, "reading %s: %s", dir, strerror(errno));
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)) && n < max) {
                size_t l = strlen(de->d_name);
                if (l <= 5 || strcmp(de->d_name + l - 5, ".json") || l - 5 > FM_NAME_MAX)
                        continue; /* ".", "..", a half-written NAME.json.new */
                memcpy(names[n], de->d_name, l - 5);
                names[n][l - 5] = '\0';
                if (fm_name_is_valid(names[n]))
                        n++;
        }
        closedir(d);
        qsort(names, (size_t)n, sizeof(names[0]), cmp_names);
        return n;
}
