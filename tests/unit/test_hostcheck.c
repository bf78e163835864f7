/* The agent's host check (src/agent/hostcheck.h) on this machine: every
 * field there with a sane value; images in a directory that is not a tmpfs,
 * or missing, or a criu that is not there each refuse migrations with the
 * reason named; images under /dev/shm (a tmpfs) do not, or say why. */
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent/hostcheck.h"
#include "tap.h"

static json_object *get(json_object *o, const char *k)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static bool has_key(json_object *o, const char *k) { return o && json_object_object_get_ex(o, k, NULL); }

static const char *str(json_object *o, const char *k)
{
        json_object *v = get(o, k);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t num(json_object *o, const char *k)
{
        json_object *v = get(o, k);
        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

/* the why_not line that contains needle, or NULL */
static const char *why_with(json_object *c, const char *needle)
{
        json_object *w = get(c, "why_not");
        for (size_t i = 0; w && i < json_object_array_length(w); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(w, i));
                if (s && strstr(s, needle))
                        return s;
        }
        return NULL;
}

static json_object *check(const fm_host_paths *p)
{
        json_object *c = json_object_new_object();
        fm_host_check(p, c);
        return c;
}

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool on_tmpfs(const char *path)
{
        struct statfs sf;
        return statfs(path, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* The fields every check has, whatever the images directory. */
static void common_fields(json_object *c, const fm_host_paths *p, int64_t t0)
{
        json_object *criu = get(c, "criu");
        const char *ver = str(criu, "version"), *cerr = str(criu, "error");
        if (!cerr) {
                ok(ver && ver[0] >= '0' && ver[0] <= '9', "criu version `%s' starts with a digit", ver ? ver : "(none)");
                ok(get(criu, "check") && json_object_is_type(get(criu, "check"), json_type_boolean),
                   "criu check is a boolean (%s)", json_object_get_boolean(get(criu, "check")) ? "passes" : "fails");
                json_object *f = get(criu, "features");
                bool all = f != NULL;
                const char *names[] = {"uffd", "uffd-noncoop", "mem_dirty_track", "network_lock_nftables"};
                for (size_t i = 0; i < FM_ARRAY_SIZE(names); i++)
                        all = all && has_key(f, names[i]) &&
                              (!get(f, names[i]) || json_object_is_type(get(f, names[i]), json_type_boolean));
                ok(all, "criu features uffd, uffd-noncoop, mem_dirty_track, network_lock_nftables reported");
                bool eager = get(f, "uffd-noncoop") && !json_object_get_boolean(get(f, "uffd-noncoop"));
                bool noted = json_object_array_length(get(c, "notes")) > 0 &&
                             strstr(json_object_get_string(json_object_array_get_idx(get(c, "notes"), 0)), "userfaultfd");
                ok(eager == noted, "a note on eager restores exactly when uffd-noncoop is missing");
        } else {
                ok(strstr(cerr, "not on PATH") && why_with(c, "CRIU check failed"),
                   "no criu on this machine: said so (%s)", cerr);
        }
        const char *lxc = str(get(c, "lxc"), "version");
        ok(lxc && lxc[0], "lxc version `%s'", lxc ? lxc : "(none)");
        int64_t total = num(get(c, "memory"), "total_bytes"), avail = num(get(c, "memory"), "available_bytes");
        ok(total > 0 && avail >= 0 && avail <= total, "memory: %lld of %lld bytes available", (long long)avail,
           (long long)total);
        ok(str(get(c, "disk"), "path") && !strcmp(str(get(c, "disk"), "path"), p->lxcpath) &&
                   num(get(c, "disk"), "free_bytes") > 0,
           "disk: %s, %lld bytes free", p->lxcpath, (long long)num(get(c, "disk"), "free_bytes"));
        ok(str(get(c, "store"), "path") && !strcmp(str(get(c, "store"), "path"), p->store) &&
                   num(get(c, "store"), "free_bytes") > 0,
           "store: %s, %lld bytes free", p->store, (long long)num(get(c, "store"), "free_bytes"));
        struct utsname u;
        uname(&u);
        ok(str(c, "kernel") && !strcmp(str(c, "kernel"), u.release), "kernel %s", str(c, "kernel"));
        ok(has_key(c, "shared") && !get(c, "shared"), "shared: null without a volume");
        int64_t t = num(get(c, "clock"), "realtime_ns"), t1 = now_ns();
        ok(t >= t0 && t <= t1, "clock taken within the call (%lld ns before its return)", (long long)(t1 - t));
        const char *last = NULL;
        json_object_object_foreach(c, key, val) {
                (void)val;
                last = key;
        }
        ok(last && !strcmp(last, "clock"), "the clock is the last field, taken as late as possible");
        json_object *why = get(c, "why_not");
        ok(why && json_object_is_type(why, json_type_array) && get(c, "can_migrate") &&
                   json_object_get_boolean(get(c, "can_migrate")) == (json_object_array_length(why) == 0),
           "can_migrate is true exactly when why_not is empty");
}

static void make_dirs(fm_host_paths *p, const char *images_parent)
{
        memset(p, 0, sizeof(*p));
        snprintf(p->host, sizeof(p->host), "unit");
        snprintf(p->lxcpath, sizeof(p->lxcpath), "/tmp/fm-hc-lxc-XXXXXX");
        snprintf(p->store, sizeof(p->store), "/tmp/fm-hc-store-XXXXXX");
        snprintf(p->images, sizeof(p->images), "%s/fm-hc-images-XXXXXX", images_parent);
        if (!mkdtemp(p->lxcpath) || !mkdtemp(p->store) || !mkdtemp(p->images)) {
                perror("mkdtemp");
                exit(1);
        }
}

static void remove_dirs(const fm_host_paths *p)
{
        rmdir(p->lxcpath);
        rmdir(p->store);
        rmdir(p->images);
}

int main(void)
{
        fm_host_paths p;

        /* images on /tmp: a tmpfs or not, the check must say which */
        make_dirs(&p, "/tmp");
        bool tmp_is_tmpfs = on_tmpfs(p.images);
        int64_t t0 = now_ns();
        json_object *c = check(&p);
        printf("# %s\n", json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
        common_fields(c, &p, t0);
        json_object *tmpfs = get(c, "tmpfs");
        ok(str(tmpfs, "path") && !strcmp(str(tmpfs, "path"), p.images) && str(tmpfs, "fstype") &&
                   get(tmpfs, "is_tmpfs") && json_object_get_boolean(get(tmpfs, "is_tmpfs")) == tmp_is_tmpfs,
           "images on /tmp: is_tmpfs %s, fstype %s", tmp_is_tmpfs ? "true" : "false", str(tmpfs, "fstype"));
        if (!tmp_is_tmpfs) {
                const char *w = why_with(c, "is not a tmpfs");
                ok(!json_object_get_boolean(get(c, "can_migrate")) && w && strstr(w, p.images),
                   "cannot migrate: %s", w ? w : "(no reason)");
        } else {
                ok(!why_with(c, "is not a tmpfs"), "/tmp is a tmpfs here: not refused for it");
        }
        json_object_put(c);
        remove_dirs(&p);

        /* images under /dev/shm, a tmpfs */
        make_dirs(&p, "/dev/shm");
        t0 = now_ns();
        c = check(&p);
        printf("# %s\n", json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
        common_fields(c, &p, t0);
        tmpfs = get(c, "tmpfs");
        ok(get(tmpfs, "is_tmpfs") && json_object_get_boolean(get(tmpfs, "is_tmpfs")) && str(tmpfs, "fstype") &&
                   !strcmp(str(tmpfs, "fstype"), "tmpfs") && num(tmpfs, "free_bytes") > 0,
           "images under /dev/shm: a tmpfs, %lld bytes free", (long long)num(tmpfs, "free_bytes"));
        json_object *why = get(c, "why_not");
        bool can = json_object_get_boolean(get(c, "can_migrate"));
        ok(can || (json_object_array_length(why) > 0 && !why_with(c, "images directory")),
           "can migrate, or says why, not for the images: %s",
           can ? "can migrate" : json_object_get_string(json_object_array_get_idx(why, 0)));
        json_object_put(c);

        /* images missing, a criu that is not there, a shared volume */
        char missing[200];
        snprintf(missing, sizeof(missing), "%.180s/gone", p.images);
        fm_host_paths q = p;
        snprintf(q.images, sizeof(q.images), "%s", missing);
        snprintf(q.criu_real_env, sizeof(q.criu_real_env), "FASTMIG_REAL_CRIU=%s/no-criu/criu", p.lxcpath);
        snprintf(q.shared.path, sizeof(q.shared.path), "/mnt/shared");
        snprintf(q.shared.fstype, sizeof(q.shared.fstype), "fuse.glusterfs");
        snprintf(q.shared.id, sizeof(q.shared.id), "0123456789abcdef0123456789abcdef");
        c = check(&q);
        printf("# %s\n", json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
        const char *w = why_with(c, missing);
        ok(!json_object_get_boolean(get(c, "can_migrate")) && str(get(c, "tmpfs"), "error") && w &&
                   strstr(w, "images directory"),
           "missing images directory: %s", w ? w : "(no reason)");
        w = why_with(c, "CRIU check failed");
        ok(str(get(c, "criu"), "error") && w && strstr(w, "no-criu/criu"), "missing criu: %s", w ? w : "(no reason)");
        json_object *sh = get(c, "shared");
        ok(str(sh, "path") && !strcmp(str(sh, "path"), "/mnt/shared") && str(sh, "fstype") &&
                   !strcmp(str(sh, "fstype"), "fuse.glusterfs") && str(sh, "id") &&
                   !strcmp(str(sh, "id"), q.shared.id),
           "shared volume: path, fstype and id as the agent opened it");
        json_object_put(c);
        remove_dirs(&p);
        return tap_done();
}
