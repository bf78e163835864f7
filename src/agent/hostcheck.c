#include "hostcheck.h"

#include <limits.h>
#include <linux/magic.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>

#include "util/spawn.h"

/* Why this host cannot take part, and what it does differently. */
typedef struct verdict {
        json_object *why_not, *notes;
} verdict;

__attribute__((format(printf, 2, 3))) static void add_line(json_object *arr, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        json_object_array_add(arr, json_object_new_string(buf));
}

static json_object *error_obj(const char *msg)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(msg));
        return o;
}

/* ---- CRIU ---- */

/* The features a migration here depends on, by the names `criu --help'
 * lists under `check --feature' (CRIU 4.2.1 has no `--feature list': it
 * answers "Unknown feature list"). */
static const char *const criu_features[] = {
        "uffd",                  /* userfaultfd at all */
        "uffd-noncoop",          /* ... for processes CRIU did not create: the lazy restore (fastmigd asks the same) */
        "mem_dirty_track",       /* soft-dirty bits, CRIU's own pre-dump; fastmig's pre-copy compares content instead */
        "network_lock_nftables", /* the agent's CRIU configs say `network-lock nftables' */
};

typedef struct criu_ctx {
        char bin[PATH_MAX];
        uint64_t deadline_ns; /* no run starts after this */
} criu_ctx;

/* Where the criu that migrations run is: the agent's FASTMIG_REAL_CRIU
 * (fm-criu-wrap hands over to it), else criu on PATH. */
static int criu_find(const fm_host_paths *p, char *out, size_t n, char *err, size_t en)
{
        const char *real = strchr(p->criu_real_env, '=');
        if (real && real[1]) {
                snprintf(out, n, "%s", real + 1);
                if (access(out, X_OK) == 0)
                        return 0;
                snprintf(err, en, "the agent's criu %.400s: %s", out, strerror(errno));
                return -errno;
        }
        if (fm_find_program("criu", out, n))
                return 0;
        const char *path = getenv("PATH");
        snprintf(err, en, "criu is not on PATH (%s)", path ? path : "unset");
        return -ENOENT;
}

/* Runs criu with args (NULL-terminated): its exit status, 128+signal, a
 * negative errno when it could not run, -ETIMEDOUT when it was killed at its
 * timeout, -ETIME when the budget was spent before it started. Its output
 * (stdout and stderr) in *output, to be freed. */
static int criu_run(const criu_ctx *c, const char *const *args, char **output)
{
        *output = NULL;
        uint64_t now = fm_now_ns();
        if (now >= c->deadline_ns)
                return -ETIME;
        int timeout = (int)((c->deadline_ns - now) / 1000000ull) + 1;
        if (timeout > FM_HOSTCHECK_CRIU_TIMEOUT_MS)
                timeout = FM_HOSTCHECK_CRIU_TIMEOUT_MS;
        fm_strv argv = {0};
        int r = fm_strv_push(&argv, c->bin);
        for (size_t i = 0; r == 0 && args[i]; i++)
                r = fm_strv_push(&argv, args[i]);
        if (r < 0) {
                fm_strv_free(&argv);
                return r;
        }
        /* the host's /etc/criu/default.conf must not change the answers */
        static const char *const env[] = {"CRIU_CONFIG_FILE=/dev/null", NULL};
        fm_spawn_opts o = {.env_add = env, .timeout_ms = timeout, .output_max = 16 * 1024};
        r = fm_spawn(argv.v, &o);
        fm_strv_free(&argv);
        *output = o.output;
        if (r == 128 + SIGKILL && fm_now_ns() - now >= (uint64_t)timeout * 1000000ull)
                r = -ETIMEDOUT;
        return r;
}

/* Why a run gave no answer (r from criu_run, not 0 or 1). */
static const char *criu_no_answer(int r, const char *output, char *buf, size_t n)
{
        char line[400];
        if (r == -ETIME)
                snprintf(buf, n, "not run: the check's %d s for CRIU were spent", FM_HOSTCHECK_CRIU_BUDGET_MS / 1000);
        else if (r == -ETIMEDOUT)
                snprintf(buf, n, "no answer within %d s", FM_HOSTCHECK_CRIU_TIMEOUT_MS / 1000);
        else if (r < 0)
                snprintf(buf, n, "cannot run: %s", strerror(-r));
        else if (r > 128)
                snprintf(buf, n, "killed by signal %d", r - 128);
        else
                snprintf(buf, n, "status %d: %s", r, fm_last_line(output, line, sizeof(line)));
        return buf;
}

/* "Version: 4.2.1" (and GitID lines on builds from git) */
static int criu_version(const criu_ctx *c, char *ver, size_t n, char *err, size_t en)
{
        static const char *const args[] = {"--version", NULL};
        _cleanup_free_ char *out = NULL;
        int r = criu_run(c, args, &out);
        if (r != 0) {
                criu_no_answer(r, out, err, en);
                return -EIO;
        }
        const char *v = out ? strstr(out, "Version:") : NULL;
        if (v) {
                v += strlen("Version:");
                v += strspn(v, " \t");
        }
        size_t len = v ? strcspn(v, " \t\r\n") : 0;
        if (!len || len >= n || v[0] < '0' || v[0] > '9') {
                char line[400];
                snprintf(err, en, "`criu --version' printed no version: %s", fm_last_line(out, line, sizeof(line)));
                return -EINVAL;
        }
        snprintf(ver, n, "%.*s", (int)len, v);
        return 0;
}

/* `criu check': the kernel features a dump and a restore cannot do
 * without (TCP repair among them). */
static void criu_check_basic(const criu_ctx *c, json_object *o, verdict *v)
{
        static const char *const args[] = {"check", NULL};
        _cleanup_free_ char *out = NULL;
        char buf[512];
        int r = criu_run(c, args, &out);
        json_object_object_add(o, "check", json_object_new_boolean(r == 0));
        if (r == 0)
                return;
        const char *why = r == 1 ? fm_last_line(out, buf, sizeof(buf)) : criu_no_answer(r, out, buf, sizeof(buf));
        json_object_object_add(o, "check_error", json_object_new_string(why));
        add_line(v->why_not, "CRIU check failed: %s", why);
}

/* `criu check --feature NAME' for each of criu_features: true (exit 0),
 * false (1: CRIU says the kernel lacks it), null (no answer, the reason in
 * "feature_errors"). */
static void criu_check_features(const criu_ctx *c, json_object *o, verdict *v)
{
        json_object *feat = json_object_new_object(), *errs = json_object_new_object();
        for (size_t i = 0; i < FM_ARRAY_SIZE(criu_features); i++) {
                const char *args[] = {"check", "--feature", criu_features[i], NULL};
                _cleanup_free_ char *out = NULL;
                char buf[512];
                int r = criu_run(c, args, &out);
                if (r == 0 || r == 1) {
                        json_object_object_add(feat, criu_features[i], json_object_new_boolean(r == 0));
                } else {
                        json_object_object_add(feat, criu_features[i], NULL);
                        json_object_object_add(errs, criu_features[i],
                                               json_object_new_string(criu_no_answer(r, out, buf, sizeof(buf))));
                }
        }
        json_object *x = NULL;
        if (json_object_object_get_ex(feat, "uffd-noncoop", &x) && x && !json_object_get_boolean(x))
                add_line(v->notes, "no userfaultfd: restores are eager");
        if (json_object_object_get_ex(feat, "network_lock_nftables", &x) && x && !json_object_get_boolean(x))
                add_line(v->why_not, "CRIU cannot lock the network with nftables, which the agent's CRIU configs ask "
                                     "for (network-lock nftables)");
        json_object_object_add(o, "features", feat);
        if (json_object_object_length(errs))
                json_object_object_add(o, "feature_errors", errs);
        else
                json_object_put(errs);
}

static json_object *probe_criu(const fm_host_paths *p, verdict *v)
{
        criu_ctx c = {.deadline_ns = fm_now_ns() + FM_HOSTCHECK_CRIU_BUDGET_MS * 1000000ull};
        char err[512];
        if (criu_find(p, c.bin, sizeof(c.bin), err, sizeof(err)) < 0) {
                add_line(v->why_not, "CRIU check failed: %s", err);
                return error_obj(err);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(c.bin));
        char ver[64];
        if (criu_version(&c, ver, sizeof(ver), err, sizeof(err)) == 0)
                json_object_object_add(o, "version", json_object_new_string(ver));
        else
                json_object_object_add(o, "version_error", json_object_new_string(err));
        criu_check_basic(&c, o, v);
        criu_check_features(&c, o, v);
        return o;
}

/* ---- the rest of the host ---- */

static json_object *probe_lxc(void)
{
        const char *ver = lxc_get_version();
        if (!ver || !ver[0])
                return error_obj("liblxc gives no version");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_string(ver));
        return o;
}

/* A line "KEY:   N kB" of /proc/meminfo, in bytes. */
static int meminfo_bytes(const char *mi, const char *key, uint64_t *out)
{
        size_t klen = strlen(key);
        for (const char *l = mi; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                unsigned long long kb;
                if (!strncmp(l, key, klen) && l[klen] == ':' && sscanf(l + klen + 1, " %llu kB", &kb) == 1) {
                        *out = (uint64_t)kb * 1024;
                        return 0;
                }
        }
        return -ENOENT;
}

static json_object *probe_memory(void)
{
        _cleanup_free_ char *mi = NULL;
        char err[256];
        uint64_t total, avail;
        int r = fm_read_file("/proc/meminfo", &mi, 1 << 20);
        if (r < 0) {
                snprintf(err, sizeof(err), "/proc/meminfo: %s", strerror(-r));
                return error_obj(err);
        }
        /* MemAvailable since Linux 3.14: what can be had without swapping */
        if (meminfo_bytes(mi, "MemTotal", &total) < 0 || meminfo_bytes(mi, "MemAvailable", &avail) < 0)
                return error_obj("/proc/meminfo has no MemTotal or MemAvailable");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "total_bytes", json_object_new_int64((int64_t)total));
        json_object_object_add(o, "available_bytes", json_object_new_int64((int64_t)avail));
        return o;
}

/* {"path", "free_bytes"} of a directory, or {"path", "error"}: the error
 * also in err (when not NULL), the directory's stat in *st. */
static json_object *probe_dir(const char *path, struct stat *st, char *err, size_t en)
{
        json_object *o = json_object_new_object();
        char buf[512] = "";
        json_object_object_add(o, "path", json_object_new_string(path));
        if (!path[0])
                snprintf(buf, sizeof(buf), "no directory set");
        else if (stat(path, st) < 0)
                snprintf(buf, sizeof(buf), "%s: %s", path, strerror(errno));
        else if (!S_ISDIR(st->st_mode))
                snprintf(buf, sizeof(buf), "%s is not a directory", path);
        if (!buf[0]) {
                uint64_t free_bytes = fm_free_bytes(path, UINT64_MAX);
                if (free_bytes != UINT64_MAX)
                        json_object_object_add(o, "free_bytes", json_object_new_int64((int64_t)free_bytes));
                else
                        snprintf(buf, sizeof(buf), "%s: statvfs: %s", path, strerror(errno));
        }
        if (buf[0])
                json_object_object_add(o, "error", json_object_new_string(buf));
        if (err)
                snprintf(err, en, "%s", buf);
        return o;
}

/* The type of the file system on device dev, as /proc/self/mountinfo names
 * it ("" when no mount of it is listed: a btrfs subvolume's st_dev is not
 * the mount's). Every mount of one device is the same file system, so the
 * device finds it without parsing (escaped) mount points. */
static void mount_type(dev_t dev, char *type, size_t n)
{
        _cleanup_free_ char *mi = NULL;
        char want[32];
        type[0] = '\0';
        if (fm_read_file("/proc/self/mountinfo", &mi, 16 << 20) < 0)
                return;
        snprintf(want, sizeof(want), "%u:%u", major(dev), minor(dev));
        char *save = NULL;
        for (char *l = strtok_r(mi, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char devno[32], t[64];
                const char *dash = strstr(l, " - ");
                /* id parent major:minor root mountpoint ... - type source opts */
                if (!dash || sscanf(l, "%*s %*s %31s", devno) != 1 || strcmp(devno, want) ||
                    sscanf(dash + 3, "%63s", t) != 1)
                        continue;
                snprintf(type, n, "%s", t);
                return;
        }
}

/* The images directory: CRIU dumps into it and the target restores from it,
 * so it must be memory (a disk would put its write speed into the frozen
 * window). */
static json_object *probe_tmpfs(const char *path, verdict *v)
{
        struct stat st;
        char err[512];
        json_object *o = probe_dir(path, &st, err, sizeof(err));
        if (err[0]) {
                add_line(v->why_not, "images directory: %s", err);
                return o;
        }
        struct statfs sf;
        char type[64];
        mount_type(st.st_dev, type, sizeof(type));
        if (statfs(path, &sf) < 0) {
                snprintf(err, sizeof(err), "%s: statfs: %s", path, strerror(errno));
                json_object_object_add(o, "error", json_object_new_string(err));
                add_line(v->why_not, "images directory: %s", err);
                return o;
        }
        if (!type[0])
                snprintf(type, sizeof(type), "magic 0x%lx", (unsigned long)sf.f_type);
        bool is_tmpfs = sf.f_type == TMPFS_MAGIC;
        json_object_object_add(o, "fstype", json_object_new_string(type));
        json_object_object_add(o, "is_tmpfs", json_object_new_boolean(is_tmpfs));
        if (!is_tmpfs)
                add_line(v->why_not, "images directory %s is not a tmpfs (it is on %s)", path, type);
        json_object *fb = NULL;
        if (json_object_object_get_ex(o, "free_bytes", &fb) &&
            (uint64_t)json_object_get_int64(fb) < FM_HOSTCHECK_MIN_TMPFS_BYTES)
                add_line(v->why_not, "images directory %s has %.1f MiB free, less than %llu MiB", path,
                         (double)json_object_get_int64(fb) / (1 << 20), FM_HOSTCHECK_MIN_TMPFS_BYTES >> 20);
        return o;
}

static json_object *probe_shared(const fm_shared_volume *s)
{
        if (!s->path[0])
                return NULL;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(s->path));
        json_object_object_add(o, "fstype", json_object_new_string(s->fstype));
        json_object_object_add(o, "id", json_object_new_string(s->id));
        return o;
}

static json_object *probe_kernel(void)
{
        struct utsname u;
        if (uname(&u) < 0) {
                char err[128];
                snprintf(err, sizeof(err), "uname: %s", strerror(errno));
                return error_obj(err);
        }
        return json_object_new_string(u.release);
}

static json_object *probe_clock(void)
{
        struct timespec ts;
        json_object *o = json_object_new_object();
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
                json_object_object_add(o, "error", json_object_new_string(strerror(errno)));
                return o;
        }
        json_object_object_add(o, "realtime_ns",
                               json_object_new_int64((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec));
        return o;
}

void fm_host_check(const fm_host_paths *p, json_object *out)
{
        verdict v = {.why_not = json_object_new_array(), .notes = json_object_new_array()};
        struct stat st;
        json_object_object_add(out, "criu", probe_criu(p, &v));
        json_object_object_add(out, "lxc", probe_lxc());
        json_object_object_add(out, "memory", probe_memory());
        json_object_object_add(out, "disk", probe_dir(p->lxcpath, &st, NULL, 0));
        json_object_object_add(out, "store", probe_dir(p->store, &st, NULL, 0));
        json_object_object_add(out, "tmpfs", probe_tmpfs(p->images, &v));
        json_object_object_add(out, "shared", probe_shared(&p->shared));
        json_object_object_add(out, "kernel", probe_kernel());
        json_object_object_add(out, "can_migrate", json_object_new_boolean(json_object_array_length(v.why_not) == 0));
        json_object_object_add(out, "why_not", v.why_not);
        json_object_object_add(out, "notes", v.notes);
        /* last: the caller sets it against the middle of its round trip */
        json_object_object_add(out, "clock", probe_clock());
}
