#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lxc/container.h"
#include "fleet/fleet.h"
#include "migrate.h"
#include "migrate/journal.h"
#include "migrate/lease.h"
#include "util/cancel.h"
#include "steer/steer.h"
#include "util/execwatch.h"
#include "util/job.h"
#include "proto/proto.h"
#include "transfer/files.h"
#include "transfer/tree.h"
#include "transfer/treewatch.h"
#include "image/push.h"
#include "memory/memscan.h"
#include "memory/pagerelay.h"
#include "memory/pagestream.h"
#include "memory/rounds.h"
#include "util/spawn.h"
#include <sys/random.h>

static const char *const phase_names[FM_PHASE_COUNT] = {
        [FM_PHASE_PLAN] = "plan",       [FM_PHASE_DISK_LIVE] = "disk_live", [FM_PHASE_PRECOPY] = "precopy",
        [FM_PHASE_FREEZE] = "freeze",
        [FM_PHASE_DUMP] = "dump",       [FM_PHASE_TRANSFER] = "transfer",   [FM_PHASE_DISK_FINAL] = "disk_final",
        [FM_PHASE_RESTORE] = "restore", [FM_PHASE_STEER] = "steer",         [FM_PHASE_SETTLE] = "settle",
        [FM_PHASE_CLEANUP] = "cleanup",
};

const char *fm_phase_name(enum fm_phase p) { return p < FM_PHASE_COUNT ? phase_names[p] : "?"; }

static bool injected(const fm_migration *m, enum fm_phase p)
{
        return m->src->test_hooks && !strcmp(m->inject, fm_phase_name(p));
}

static int target_call(fm_migration *m, json_object *req, json_object **reply_out, int timeout_ms)
{
        json_object *reply = NULL;
        int r = fm_call(m->to_addr, m->to_port, req, &reply, timeout_ms, &m->err);
        json_object_put(req);
        if (r < 0)
                return r;
        r = fm_reply_check(reply, &m->err);
        if (r < 0 || !reply_out)
                json_object_put(reply);
        else
                *reply_out = reply;
        return r;
}

static json_object *req_new(const char *op, const char *name)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "op", json_object_new_string(op));
        json_object_object_add(o, "name", json_object_new_string(name));
        return o;
}

static void emit(fm_migration *m, const fm_mig_hooks *h, enum fm_phase p)
{
        if (!h || !h->event)
                return;
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "event", json_object_new_string("phase"));
        json_object_object_add(ev, "phase", json_object_new_string(fm_phase_name(p)));
        json_object_object_add(ev, "ms", json_object_new_double(m->phase_ms[p]));
        h->event(h->data, ev);
        json_object_put(ev);
}

/* An event without fields: {"event": what}. */
static void emit_simple(const fm_mig_hooks *h, const char *what)
{
        if (!h || !h->event)
                return;
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "event", json_object_new_string(what));
        h->event(h->data, ev);
        json_object_put(ev);
}

int fm_mig_steer(const fm_host_paths *p, const char *phase, const char *ip, const char *from_host, const char *to_host,
                 fm_error *e)
{
        if (!p->fleet || !p->steer || !ip || !ip[0])
                return 0;
        const fm_host *from = from_host ? fm_fleet_host(p->fleet, from_host) : NULL;
        const fm_host *to = fm_fleet_host(p->fleet, to_host);
        if (!to)
                return fm_err(e, ENOENT, "%s is not a host of the fleet %s", to_host, p->fleet->name);
        return fm_steer_set(p->steer, phase, ip, from, to, e);
}

/* Test hook "pause_AT": the pipeline stops FM_TEST_PAUSE_MS at AT (planned:
 * the target prepared, an early restore asked for, nothing frozen; disk: in
 * the disk sync, before the rootfs's rsync; rounds: after the first pre-copy
 * round reached the target; frozen:
 * dumped and steered, before the restore is awaited; restored: the target
 * runs it, before the commit's steering; committed: recorded, before the
 * source copy goes), saying so in the agent's log, so that a test can kill
 * or cut something exactly there. */
#define FM_TEST_PAUSE_MS 4000
static void pause_at(const fm_migration *m, const char *at)
{
        if (!m->src->test_hooks || strncmp(m->inject, "pause_", 6) || strcmp(m->inject + 6, at))
                return;
        fprintf(stderr, "fastmigd[%s]: test hook: %s paused at %s\n", m->src->host, m->name, at);
        usleep(FM_TEST_PAUSE_MS * 1000);
}

int fm_target_call_abort(const char *name, const char *addr, uint16_t port, fm_error *e)
{
        /* a target that cannot be reached is known soon (the caller asks
         * again); one that answers may take a while (it lets a restore
         * under way end first) */
        json_object *req = req_new("abort", name), *reply = NULL;
        int r = fm_call_bounded(addr, port, req, &reply, FM_ABORT_CONNECT_MS, 60000, e);
        json_object_put(req);
        if (r == 0) {
                /* only its yes counts: any refusal (not ours, a marker it
                 * could not read) leaves a copy possibly running there */
                r = fm_reply_check(reply, e);
                json_object_put(reply);
        }
        return r;
}

/* The journal's record of where this migration is, written before the step
 * it names (journal.h). */
static int journal(fm_migration *m, fm_journal_step step)
{
        if (!m->src->state)
                return 0;
        fm_journal_rec r = {.step = step, .to_port = m->to_port, .moving_tree = m->moving_tree, .leases = m->target_leases,
                            .started = m->started_wall, .since = (int64_t)time(NULL)};
        snprintf(r.name, sizeof(r.name), "%s", m->name);
        snprintf(r.id, sizeof(r.id), "%s", m->id);
        snprintf(r.to_host, sizeof(r.to_host), "%s", m->to_host);
        snprintf(r.to_addr, sizeof(r.to_addr), "%s", m->to_addr);
        snprintf(r.service_ip, sizeof(r.service_ip), "%s", m->service_ip);
        snprintf(r.shared_rel, sizeof(r.shared_rel), "%s", m->moving_tree ? m->shared_rel : "");
        return fm_journal_write(m->src->state, &r, &m->err);
}

static void src_images(const fm_migration *m, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", m->src->images, m->name);
}

static uint64_t dir_bytes(const char *dir)
{
        uint64_t total = 0;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        struct stat st;
        while ((de = readdir(d)))
                if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
                        total += (uint64_t)st.st_size;
        closedir(d);
        return total;
}

/* A lazy restore costs the start of CRIU's lazy-pages daemon and pays back
 * once there is memory to fill: measured (docs/PRECOPY.md), a 0.3 MiB
 * service came back 10 ms sooner eagerly, a 16 MiB one 18 ms sooner lazily. */
#define FM_LAZY_MIN_BYTES (16ull << 20)
/* The early restore is asked for before the live phases when the container
 * is at most this large (its pre-copy then ends well within the target's
 * wait for the images, FM_EARLY_WAIT_S in fm-criu-wrap, on links down to
 * 100 Mbit/s); larger ones ask as the dump starts. */
#define FM_EARLY_RESTORE_MAX_BYTES (1ull << 30)
/* The final sync's rsync is started before pre-copy for a container at most
 * this large: its pre-copy then ends well within the 60 s the target's
 * rsync waits for the list, even on a 100 Mbit/s link. */
#define FM_FINAL_SYNC_EARLY_MAX_BYTES (64ull << 20)

/* Resident memory of the container's processes (smaps_rollup), 0 if unknown. */
static uint64_t container_rss(fm_migration *m)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        fm_error ignore = {0};
        uint64_t total = 0;
        if (fm_ct_pids(m->src->lxcpath, m->name, &pids, &n, &ignore) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char path[64], line[256];
                snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pids[i]);
                FILE *f = fopen(path, "re");
                unsigned long kb = 0;
                while (f && fgets(line, sizeof(line), f))
                        if (sscanf(line, "Rss: %lu kB", &kb) == 1)
                                total += (uint64_t)kb * 1024;
                if (f)
                        fclose(f);
        }
        return total;
}

/* ---- phases: each returns 0 or a negative errno with m->err set ---- */

/* What of the container's own file system travels: a clone's upper layer,
 * else the whole rootfs (the same part of it at the target). */
static void own_dir(const fm_migration *m, char *buf, size_t n)
{
        if (m->moving_tree) /* a shared tree that leaves the volume */
                snprintf(buf, n, "%s/%s", m->src->shared.path, m->shared_rel);
        else
                snprintf(buf, n, "%s/%s/%s", m->src->lxcpath, m->name, m->is_clone ? "upper" : "rootfs");
}

/* A clone and its images in this host's store. */
static int plan_clone(fm_migration *m)
{
        int r = fm_clone_read(m->src->lxcpath, m->name, &m->clone, &m->err);
        if (r == -ENOENT) {
                m->is_clone = false;
                return 0;
        }
        if (r < 0)
                return r;
        m->is_clone = true;
        if (fm_image_get(m->src->store, m->clone.app, &m->app_im) < 0 ||
            fm_image_get(m->src->store, m->clone.base, &m->base_im) < 0)
                return fm_err(&m->err, ENOENT, "%s is a clone of %s over %s, but this host's store lacks them", m->name,
                              m->clone.app_name, m->clone.base_name);
        return 0;
}

/* A rootfs on the shared volume: the config names a tree below its mount. */
static void plan_shared(fm_migration *m, const char *config)
{
        const fm_shared_volume *v = &m->src->shared;
        char key[300];
        snprintf(key, sizeof(key), "lxc.rootfs.path = dir:%s/", v->path);
        const char *at = v->path[0] ? strstr(config, key) : NULL;
        if (!at)
                return;
        at += strlen(key);
        size_t n = strcspn(at, "\n");
        if (n == 0 || n >= sizeof(m->shared_rel))
                return;
        memcpy(m->shared_rel, at, n);
        m->shared_rel[n] = '\0';
        m->shared = true;
}

/* The latency test's figures in the target's prepare reply (also when it
 * refused). */
static void plan_latency(fm_migration *m, json_object *reply)
{
        json_object *lt = NULL;
        if (!reply || !json_object_object_get_ex(reply, "latency_test", &lt) || !lt)
                return;
        m->have_latency = true;
        fm_json_num(lt, "p50_ms", false, 0, 1e9, &m->latency.p50_ms, NULL);
        fm_json_num(lt, "p99_ms", false, 0, 1e9, &m->latency.p99_ms, NULL);
        fm_json_num(lt, "max_ms", false, 0, 1e9, &m->latency.max_ms, NULL);
        fm_json_num(lt, "ms", false, 0, 1e9, &m->latency.total_ms, NULL);
        int64_t ops = 0;
        fm_json_int(lt, "ops", false, 0, 1 << 30, &ops, NULL);
        m->latency.ops = (int)ops;
}

/* The prepare request and the target's answer; *reply is kept (also on a
 * refusal, whose figures and fallback the caller reads). */
static int prepare_call(fm_migration *m, const char *config, uint64_t own_bytes, json_object **reply)
{
        const fm_host_paths *s = m->src;
        json_object *req = req_new("prepare", m->name);
        json_object_object_add(req, "config", json_object_new_string(config));
        json_object_object_add(req, "strategy", json_object_new_string(fm_strategy_name(m->want_strategy)));
        json_object_object_add(req, "own_bytes", json_object_new_int64((int64_t)own_bytes));
        if (m->is_clone) {
                json_object_object_add(req, "clone", fm_clone_json(&m->clone));
                json_object_object_add(req, "app_bytes", json_object_new_int64((int64_t)m->app_im.bytes));
                json_object_object_add(req, "base_bytes", json_object_new_int64((int64_t)m->base_im.bytes));
        }
        if (m->own_net)
                json_object_object_add(req, "net", fm_ctnet_json(&m->net));
        if (m->shared) {
                json_object_object_add(req, "shared_volume", json_object_new_string(s->shared.id));
                json_object_object_add(req, "src_shared", json_object_new_string(s->shared.path));
        }
        if (m->moving_tree)
                json_object_object_add(req, "move_tree", json_object_new_boolean(true));
        if (m->latency_tolerance_ms > 0)
                json_object_object_add(req, "storage_latency_ms", json_object_new_double(m->latency_tolerance_ms));
        if (m->inject[0])
                json_object_object_add(req, "inject", json_object_new_string(m->inject));
        *reply = NULL;
        int r = fm_call(m->to_addr, m->to_port, req, reply, 30000, &m->err);
        json_object_put(req);
        if (r == 0) {
                plan_latency(m, *reply);
                r = fm_reply_check(*reply, &m->err);
        }
        return r;
}

/* prepare_call with the size of what of the container's tree travels (a
 * shared tree that stays does not, and walking it costs round trips). */
static int prepare_sized(fm_migration *m, const char *config, json_object **reply)
{
        char own[600];
        uint64_t own_bytes = 0;
        own_dir(m, own, sizeof(own));
        *reply = NULL;
        if ((!m->shared || m->moving_tree) && fm_tree_size(own, &own_bytes, &m->err) < 0)
                return -m->err.code;
        return prepare_call(m, config, own_bytes, reply);
}

static int phase_plan(fm_migration *m)
{
        const fm_host_paths *s = m->src;
        int r = fm_ct_check_migratable(s->lxcpath, m->name, &m->err);
        if (r < 0)
                return r;
        if ((r = plan_clone(m)) < 0)
                return r;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s/config", s->lxcpath, m->name);
        _cleanup_free_ char *config = NULL;
        if ((r = fm_read_file(path, &config, FM_JSON_MAX / 2)) < 0)
                return fm_err(&m->err, -r, "reading %s: %s", path, strerror(-r));
        plan_shared(m, config);
        /* a local-disk strategy asked for a shared tree: the tree moves */
        m->moving_tree = m->shared && m->want_strategy != FM_STRATEGY_AUTO && m->want_strategy != FM_STRATEGY_SHARED;
        fm_ct_info info;
        if ((r = fm_ct_info_get(s->lxcpath, m->name, &info, &m->err)) < 0)
                return r;
        snprintf(m->service_ip, sizeof(m->service_ip), "%s", info.ipv4);
        r = fm_ctnet_read(s->lxcpath, m->name, &m->net, &m->err);
        if (r < 0 && r != -ENOENT)
                return r;
        m->own_net = r == 0;
        if (m->own_net && !s->criu_path_env[0])
                return fm_err(&m->err, EOPNOTSUPP, "%s's network namespace is kept outside CRIU's images, which "
                                                   "needs fm-criu-wrap on %s", m->name, s->host);
        json_object *reply = NULL;
        r = prepare_sized(m, config, &reply);
        /* check 0 refused under auto: the local-disk checks, with the tree
         * moving off the volume, if the service allows */
        if (r < 0 && !m->moving_tree && m->may_move_tree && fm_json_bool(reply, "local_fallback", false)) {
                snprintf(m->fallback, sizeof(m->fallback), "%s", m->err.msg);
                fm_err_clear(&m->err);
                json_object_put(reply);
                m->moving_tree = true;
                r = prepare_sized(m, config, &reply);
        }
        if (r < 0) {
                json_object_put(reply);
                return fm_err_wrap(&m->err, "preparing %s", m->to_host);
        }
        m->target_early_restore = fm_json_bool(reply, "early_restore", false);
        m->target_leases = fm_json_bool(reply, "lease", false);
        m->target_lazy = fm_json_bool(reply, "lazy_restore", false);
        m->target_lazy_dump = fm_json_bool(reply, "lazy_dump", false);
        const char *st = NULL;
        int64_t by = 3;
        fm_json_str(reply, "strategy", false, 16, &st, NULL);
        fm_json_int(reply, "decided_by", false, 0, 3, &by, NULL);
        if (!st || fm_strategy_parse(st, &m->strategy) < 0 || m->strategy == FM_STRATEGY_AUTO)
                m->strategy = FM_STRATEGY_FULL; /* an older target: the whole tree */
        m->decided_by = (int)by;
        json_object_put(reply);
        m->prepared = true;
        return 0;
}

/* rsync of the container's own tree (upper layer or rootfs) to the same
 * place on the target. */
static int own_push(const fm_migration *m, int nice, const char *files_from, uint64_t *bytes, fm_error *e)
{
        char src[600];
        own_dir(m, src, sizeof(src));
        fm_rsync_dest to = {.addr = m->to_addr, .port = m->to_port, .name = m->name, .part = m->is_clone ? "upper" : "rootfs"};
        return fm_rsync_push(src, &to, nice, false, files_from, bytes, e);
}

/* The final sync of the container's own tree, started before the freeze:
 * rsync connects (fm-rsync-tunnel says when) and waits for its list of what
 * changed, which it gets once the container is frozen. Nothing is started
 * while frozen. */
typedef struct final_sync {
        fm_migration *m;
        fm_job job;
        int list[2], ready[2]; /* pipes: the list (rsync's stdin), the tunnel's "connected" */
        uint64_t bytes;
} final_sync;

static int final_sync_run(void *arg, fm_error *e)
{
        final_sync *f = arg;
        char src[600];
        own_dir(f->m, src, sizeof(src));
        fm_rsync_dest to = {.addr = f->m->to_addr, .port = f->m->to_port, .name = f->m->name,
                            .part = f->m->is_clone ? "upper" : "rootfs", .list_fd = f->list[0], .ready_fd = f->ready[1]};
        return fm_rsync_push(src, &to, 10, false, NULL, &f->bytes, e);
}

/* Starts rsync; final_sync_connected waits for its connection. */
static int final_sync_start(fm_migration *m, final_sync *f)
{
        memset(f, 0, sizeof(*f));
        f->m = m;
        f->list[0] = f->list[1] = f->ready[0] = f->ready[1] = -1;
        int r = 0;
        if (pipe2(f->list, O_CLOEXEC) < 0 || pipe2(f->ready, O_CLOEXEC) < 0)
                r = fm_err(&m->err, errno, "pipe: %s", strerror(errno));
        else
                r = fm_job_start(&f->job, "the final rootfs sync", final_sync_run, NULL, f, &m->err);
        if (r < 0) {
                for (int i = 0; i < 2; i++) {
                        fm_close(f->list[i]);
                        fm_close(f->ready[i]);
                }
                return r;
        }
        return 0;
}

/* Waits (at most 5 s) until the started rsync is connected; later than that
 * it connects while frozen, which costs time but is not an error. An rsync
 * that has already ended (before its list) failed: the migration fails
 * before the freeze. */
#define FM_FINAL_SYNC_CONNECT_MS 5000
static int final_sync_connected(fm_migration *m, final_sync *f)
{
        for (int waited = 0; fm_job_running(&f->job) && waited < FM_FINAL_SYNC_CONNECT_MS && !fm_job_done(&f->job);
             waited += 10) {
                struct pollfd p = {.fd = f->ready[0], .events = POLLIN};
                if (poll(&p, 1, 10) == 1)
                        break;
        }
        if (fm_job_done(&f->job)) {
                m->err = f->job.err;
                if (!m->err.code)
                        fm_err(&m->err, EPIPE, "the final rootfs sync ended before its list");
                return fm_err_wrap(&m->err, "the final rootfs sync to %s", m->to_host);
        }
        return 0;
}

/* Gives rsync its list (the NUL-separated file at list_path, or nothing);
 * final_sync_finish waits for it to end. */
static void final_sync_send(final_sync *f, const char *list_path)
{
        if (!fm_job_running(&f->job) || f->list[1] < 0)
                return;
        /* Written without blocking: the agent holds a read end too, so a
         * write to an rsync that has ended would wait for good (with the
         * container frozen). Stops when rsync ends, or after 30 s. */
        if (list_path && !fm_job_done(&f->job)) {
                _cleanup_close_ int in = open(list_path, O_RDONLY | O_CLOEXEC);
                fcntl(f->list[1], F_SETFL, fcntl(f->list[1], F_GETFL) | O_NONBLOCK);
                uint64_t deadline = fm_now_ns() + 30000000000ull;
                char buf[65536];
                ssize_t n;
                bool gone = false;
                while (!gone && in >= 0 && (n = read(in, buf, sizeof(buf))) > 0) {
                        for (ssize_t off = 0; off < n && !gone;) {
                                ssize_t w = write(f->list[1], buf + off, (size_t)(n - off));
                                if (w > 0) {
                                        off += w;
                                } else if (w < 0 && errno == EAGAIN) {
                                        struct pollfd p = {.fd = f->list[1], .events = POLLOUT};
                                        poll(&p, 1, 50);
                                        gone = fm_job_done(&f->job) || fm_now_ns() > deadline;
                                } else if (!(w < 0 && errno == EINTR)) {
                                        gone = true; /* rsync has gone: its status says why */
                                }
                        }
                }
        }
        fm_close(f->list[1]);
        f->list[1] = -1;
}

static int final_sync_finish(final_sync *f, const char *list_path)
{
        if (!fm_job_running(&f->job))
                return 0;
        final_sync_send(f, list_path);
        int r = fm_job_join(&f->job);
        for (int i = 0; i < 2; i++) {
                fm_close(f->list[i]);
                fm_close(f->ready[i]);
                f->list[i] = f->ready[i] = -1;
        }
        return r;
}

/* While the service runs: the images the strategy sends (whole, into empty
 * staging directories: full sends base and app, partial the app layer),
 * then the container's own tree. */
typedef struct send_job {
        const char *store;
        const fm_image *im;
        const fm_peer *peer;
        uint64_t *bytes;
        fm_job job;
} send_job;

/* How long a migration waits for an image another host is staging on the
 * same target (two containers of one image moving there at once). */
#define FM_IMAGE_AWAIT_MS 120000

/* An image to the target: staged, sent whole and committed (0), or, when
 * another host is staging it there right now, awaited (1: it is not sent
 * twice). commit: commit it once sent (the app layer is committed after
 * its base, by the caller). */
static int image_to(const char *store, const fm_image *im, const fm_peer *peer, bool commit, uint64_t *bytes,
                    fm_error *e)
{
        uint64_t deadline = fm_now_ns() + FM_IMAGE_AWAIT_MS * 1000000ull;
        for (bool waited = false;; waited = true) {
                /* another host's staging of it, awaited, is committed:
                 * nothing to send or commit (only then: a forced full-mig
                 * sends an image the target has) */
                fm_error ignore = {0};
                if (waited && fm_image_peer_has(peer, im->digest, &ignore) == 1) {
                        fm_err_clear(e);
                        *bytes = 0;
                        return 1;
                }
                /* after a wait, sent only if it is not there by the
                 * time it is claimed (the other host may commit it
                 * between the look above and the claim) */
                int r = waited ? fm_image_send_unless_there(store, im, peer, 0, bytes, e)
                               : fm_image_send(store, im, peer, true, 0, bytes, e);
                if (r == -EEXIST) {
                        fm_err_clear(e);
                        *bytes = 0;
                        return 1;
                }
                if (r == 0)
                        return commit ? fm_image_commit_at(peer, im, e) : 0;
                if (r != -EBUSY)
                        return r;
                if (fm_now_ns() > deadline)
                        return fm_err_wrap(e, "waited %d s", FM_IMAGE_AWAIT_MS / 1000);
                usleep(100000);
        }
}

static int send_base(void *arg, fm_error *e)
{
        send_job *j = arg;
        int r = image_to(j->store, j->im, j->peer, true, j->bytes, e); /* taken in while the app layer still travels */
        return r < 0 ? r : 0;
}

/* full: base and app travel side by side (the link stays busy while the
 * other's rsync starts and ends); the target checks and takes in each as
 * it arrives, the app after its base. */
static int send_images(fm_migration *m, const fm_peer *peer, fm_error *e)
{
        send_job j = {.store = m->src->store, .im = &m->base_im, .peer = peer, .bytes = &m->bytes_base};
        fm_error ignore = {0};
        if (m->strategy == FM_STRATEGY_FULL &&
            fm_job_start(&j.job, "sending the base image", send_base, NULL, &j, &ignore) < 0) {
                int rb = send_base(&j, e); /* no thread: one after the other */
                if (rb < 0)
                        return rb;
        }
        int r = image_to(m->src->store, &m->app_im, peer, false, &m->bytes_app, e);
        if (fm_job_join(&j.job) < 0) {
                *e = j.job.err;
                return j.job.r;
        }
        if (r != 0) /* failed, or another host's staging brought it */
                return r < 0 ? r : 0;
        return fm_image_commit_at(peer, &m->app_im, e);
}

/* With an early restore the images' tail need not hold the freeze back:
 * fm-criu-wrap on the target waits for them (and mounts them) before CRIU
 * restores. The freeze starts once what is left of them should take the
 * link m->images_lead_ms (FM_IMAGES_LEAD_MS in migrate.h by default), so
 * their tail overlaps the dump instead of adding to the total. */
typedef struct images_job {
        fm_migration *m;
        fm_peer peer;
        fm_job job;
        atomic_bool freezing; /* the freeze has begun (for the test hook) */
} images_job;

static int images_run(void *arg, fm_error *e)
{
        images_job *j = arg;
        int r = send_images(j->m, &j->peer, e);
        if (r == 0 && j->m->src->test_hooks && !strcmp(j->m->inject, "images_tail")) {
                /* fail the images only once the service is frozen */
                while (!atomic_load(&j->freezing))
                        usleep(1000);
                r = fm_err(e, EIO, "images failed after the freeze began (injected by the test hook)");
        }
        return r;
}

/* Bytes of the images on the target so far, and in all. */
static int images_progress(fm_migration *m, const fm_peer *peer, uint64_t *got, uint64_t *all)
{
        fm_error ignore = {0};
        uint64_t b = 0, a = 0;
        *got = *all = 0;
        if (m->strategy == FM_STRATEGY_FULL) {
                if (fm_image_progress_at(peer, &m->base_im, &b, &ignore) < 0)
                        return -1;
                *all += m->base_im.bytes;
        }
        if (fm_image_progress_at(peer, &m->app_im, &a, &ignore) < 0)
                return -1;
        *all += m->app_im.bytes;
        *got = a + b;
        return 0;
}

/* Returns when the images are done, or once what is left of them should
 * take about m->images_lead_ms at the rate seen since the oldest of the
 * last 16 samples (taken every 10 ms), once that is 100 ms old. */
static void images_wait_lead(fm_migration *m, images_job *j)
{
        enum { N = 16 };
        double ts[N];
        uint64_t bs[N];
        for (int n = 0; !fm_job_done(&j->job); n++) {
                uint64_t got, all;
                if (images_progress(m, &j->peer, &got, &all) < 0) {
                        /* a target that cannot tell: wait for the end */
                        while (!fm_job_done(&j->job))
                                usleep(2000);
                        return;
                }
                double now = fm_now_ms();
                int old = n < N ? 0 : n % N; /* the slot about to be overwritten */
                if (n > 0 && now - ts[old] >= 100 && got > bs[old]) {
                        double rate = (double)(got - bs[old]) / (now - ts[old]); /* bytes per ms */
                        if ((double)(all - got) / rate <= m->images_lead_ms)
                                return;
                }
                ts[n % N] = now;
                bs[n % N] = got;
                usleep(10000);
        }
}

static int images_start(fm_migration *m, images_job *j)
{
        memset(j, 0, sizeof(*j));
        j->m = m;
        j->peer.port = m->to_port;
        snprintf(j->peer.addr, sizeof(j->peer.addr), "%s", m->to_addr);
        return fm_job_start(&j->job, "sending the images", images_run, NULL, j, &m->err);
}

static int images_join(fm_migration *m, images_job *j)
{
        if (fm_job_join(&j->job) < 0) {
                m->err = j->job.err;
                return fm_err_wrap(&m->err, "%s-mig", fm_strategy_name(m->strategy));
        }
        return 0;
}

/* While the service runs: the images the strategy needs and the
 * container's own tree. Images still travelling when it returns are
 * joined before the restore can run (fm_migrate_run). */
static int disk_live(fm_migration *m, images_job *ij)
{
        if (m->strategy == FM_STRATEGY_SHARED) /* the tree stays where it is */
                return 0;
        bool images = m->is_clone && m->strategy != FM_STRATEGY_MEMORY;
        int r = images ? images_start(m, ij) : 0;
        if (r < 0)
                return r;
        /* a tree leaving the volume: watch it before the first sync reads it,
         * so that the final one, with the service frozen, need not walk it
         * over the network (without a watch it does) */
        if (m->moving_tree) {
                char src[600];
                fm_error we = {0};
                own_dir(m, src, sizeof(src));
                if (fm_tree_watch_start(src, &m->tree_watch, &we) < 0)
                        fprintf(stderr, "fastmigd: %s: no watch of the tree, the final sync walks it: %s\n", m->name,
                                we.msg);
        }
        uint64_t bytes = 0;
        pause_at(m, "disk");
        r = own_push(m, 0, NULL, &bytes, &m->err);
        m->bytes_own += bytes;
        if (!images)
                return r;
        /* the images' rest may overlap the freeze only when the target's
         * restore waits for it; otherwise (or on failure) they end here */
        bool overlap = r == 0 && m->early_restore && m->images_lead_ms > 0;
        if (overlap)
                images_wait_lead(m, ij);
        if (!overlap || (fm_job_done(&ij->job) && ij->job.r < 0)) {
                int ri = images_join(m, ij);
                return ri < 0 ? ri : r;
        }
        return 0;
}

/* ---- pre-copy rounds ---- */

typedef struct round_ctx {
        fm_migration *m;
        fm_hashset *held;
        int fd;
        uint8_t *buf;
        size_t used;
        fm_round *rd;
} round_ctx;

static int round_flush(round_ctx *c)
{
        if (!c->used)
                return 0;
        int r = fm_frame_send(c->fd, FM_FRAME_DATA, c->buf, (uint32_t)c->used);
        if (r < 0)
                return fm_err(&c->m->err, -r, "sending a pre-copy round: %s", strerror(-r));
        c->rd->bytes += c->used;
        c->used = 0;
        return 0;
}

static int round_page(void *ctx, pid_t pid, uint64_t addr, const uint8_t *page)
{
        (void)pid;
        (void)addr;
        round_ctx *c = ctx;
        /* zero pages travel as a tag in the final stream anyway */
        if (fm_page_is_zero(page))
                return 0;
        fm_page_hash h = fm_page_hash_of(page, c->m->key);
        if (fm_hashset_has(c->held, h))
                return 0;
        if (c->used + FM_PAGEREC_MAX > FM_DATA_MAX && round_flush(c) < 0)
                return -c->m->err.code;
        fm_pagestream_stats st = {0};
        int r = fm_pagestream_put_page(page, c->m->key, c->held, c->m->compress, c->buf + c->used, &st);
        if (r < 0)
                return fm_err(&c->m->err, -r, "out of memory for the page index");
        c->used += (size_t)r;
        c->rd->pages_sent++;
        return 0;
}

static int precopy_round(fm_migration *m, fm_hashset *held, fm_round *rd)
{
        double t0 = fm_now_ms();
        _cleanup_close_ int fd = fm_tcp_connect(m->to_addr, m->to_port, 30000, &m->err);
        if (fd < 0)
                return fd;
        json_object *req = req_new("precopy_round", m->name);
        int r = fm_msg_send(fd, FM_FRAME_REQUEST, req);
        json_object_put(req);
        if (r < 0)
                return fm_err(&m->err, -r, "starting a pre-copy round: %s", strerror(-r));
        _cleanup_free_ pid_t *pids = NULL;
        size_t npids = 0;
        if ((r = fm_ct_pids(m->src->lxcpath, m->name, &pids, &npids, &m->err)) < 0)
                return r;
        _cleanup_free_ uint8_t *buf = malloc(FM_DATA_MAX);
        if (!buf)
                return fm_err(&m->err, ENOMEM, "out of memory");
        round_ctx c = {.m = m, .held = held, .fd = fd, .buf = buf, .rd = rd};
        for (size_t i = 0; i < npids && r == 0; i++)
                r = fm_memscan_process(pids[i], round_page, &c, &rd->pages_scanned, &m->err);
        if (r == 0)
                r = round_flush(&c);
        if (r == 0 && (r = fm_frame_send(fd, FM_FRAME_END, NULL, 0)) < 0)
                r = fm_err(&m->err, -r, "ending a pre-copy round: %s", strerror(-r));
        uint8_t t = 0;
        json_object *reply = NULL;
        if (r == 0 && (r = fm_msg_recv(fd, &t, &reply, &m->err)) == 0) {
                r = fm_reply_check(reply, &m->err);
                json_object_put(reply);
        }
        rd->ms = fm_now_ms() - t0;
        return r;
}

static void emit_round(fm_migration *m, const fm_mig_hooks *h, int i)
{
        if (!h || !h->event)
                return;
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "event", json_object_new_string("round"));
        json_object_object_add(ev, "round", json_object_new_int(i + 1));
        json_object_object_add(ev, "pages_scanned", json_object_new_int64((int64_t)m->rounds[i].pages_scanned));
        json_object_object_add(ev, "pages_sent", json_object_new_int64((int64_t)m->rounds[i].pages_sent));
        json_object_object_add(ev, "bytes", json_object_new_int64((int64_t)m->rounds[i].bytes));
        json_object_object_add(ev, "ms", json_object_new_double(m->rounds[i].ms));
        h->event(h->data, ev);
        json_object_put(ev);
}

static int phase_precopy(fm_migration *m, fm_hashset *held, const fm_mig_hooks *h)
{
        if (getrandom(m->key, sizeof(m->key), 0) != (ssize_t)sizeof(m->key))
                return fm_err(&m->err, errno, "no random key: %s", strerror(errno));
        char hex[2 * sizeof(m->key) + 1];
        for (size_t i = 0; i < sizeof(m->key); i++)
                snprintf(hex + 2 * i, 3, "%02x", m->key[i]);
        json_object *req = req_new("precopy_begin", m->name);
        json_object_object_add(req, "key", json_object_new_string(hex));
        /* a lazy dump writes no page files there: no room to keep for them */
        json_object_object_add(req, "spare", json_object_new_boolean(!m->lazy_dump));
        int r = target_call(m, req, NULL, 30000);
        if (r < 0)
                return fm_err_wrap(&m->err, "starting pre-copy on %s", m->to_host);
        if (!m->precopy)
                return 0; /* stop-and-copy with compression: the final stream only */
        fm_rounds_cfg cfg = {.max_rounds = m->max_rounds, .dirty_threshold = m->dirty_threshold,
                             .min_shrink = m->min_shrink};
        enum fm_stop_rule rule = FM_ROUNDS_GO_ON;
        for (int i = 0; i < FM_MAX_ROUNDS && rule == FM_ROUNDS_GO_ON; i++) {
                if ((r = precopy_round(m, held, &m->rounds[i])) < 0)
                        return r;
                m->nrounds = i + 1;
                emit_round(m, h, i);
                if (i == 0)
                        pause_at(m, "rounds");
                rule = fm_rounds_next(&cfg, i + 1, m->rounds[i].pages_sent, i ? m->rounds[i - 1].pages_sent : 0);
        }
        m->stop_rule = fm_stop_rule_name(rule == FM_ROUNDS_GO_ON ? FM_STOP_MAX_ROUNDS : rule);
        return 0;
}

/* A known path's dump starts ahead of its planned freeze by as long as its
 * start-up (lxc-checkpoint, its config, `criu --version`) may take here;
 * fm-criu-wrap then waits for the moment itself (FASTMIG_FREEZE_AT). The
 * start-up seen on this host, the longest lately (each migration lowers
 * the last by a quarter): twice that, within the bounds below, or
 * FM_STARTUP_FIRST_MS before any was seen. */
#define FM_STARTUP_MIN_MS 300
#define FM_STARTUP_MAX_MS 3000
#define FM_STARTUP_FIRST_MS 600
static atomic_int startup_seen_ms = -1;

static int64_t startup_lead_ms(void)
{
        int seen = atomic_load(&startup_seen_ms);
        if (seen < 0)
                return FM_STARTUP_FIRST_MS;
        int64_t lead = 2 * (int64_t)seen;
        return lead < FM_STARTUP_MIN_MS ? FM_STARTUP_MIN_MS : lead > FM_STARTUP_MAX_MS ? FM_STARTUP_MAX_MS : lead;
}

static void startup_note(double ms)
{
        if (!(ms >= 0) || ms > 60000)
                return;
        int old = atomic_load(&startup_seen_ms), now;
        do {
                int decayed = old < 0 ? 0 : old - old / 4;
                now = (int)ms > decayed ? (int)ms : decayed;
        } while (!atomic_compare_exchange_weak(&startup_seen_ms, &old, now));
}

/* Until end, in fm_now_ms() terms (or the migration is cancelled); how
 * long it waited. */
static double wait_until(fm_migration *m, double end)
{
        double t0 = fm_now_ms();
        for (double left = end - t0; left > 0 && !fm_cancel_fired(m->cancel); left = end - fm_now_ms()) {
                struct timespec d = {.tv_sec = 0, .tv_nsec = (long)((left < 50 ? left : 50) * 1e6)};
                nanosleep(&d, NULL);
        }
        return fm_now_ms() - t0;
}

/* A known path's handover (docs/MOBILITY.md): all is ready, the service
 * runs on here until its planned moment (at most FM_HOLD_MAX_MS away):
 * one more pre-copy round takes what it wrote meanwhile, and the dump
 * starts its start-up's lead ahead (with fm-criu-wrap, which freezes at
 * the moment; without it, the agent freezes as the hold ends). The
 * moment is on the wall clock (the orchestrator's), the waits on the
 * monotonic one: a clock step does not stretch them. */
static int hold(fm_migration *m, fm_hashset *held, const fm_mig_hooks *h)
{
        int64_t now = fm_wall_ms();
        int r = 0;
        if (m->freeze_at_ms > now) {
                int64_t left = m->freeze_at_ms - now > FM_HOLD_MAX_MS ? FM_HOLD_MAX_MS : m->freeze_at_ms - now;
                double end = fm_now_ms() + (double)left;
                if (m->src->criu_path_env[0]) {
                        m->freeze_pin_ms = now + left;
                        m->freeze_lead_ms = startup_lead_ms();
                }
                bool round = m->precopy && m->nrounds > 0 && m->nrounds < FM_MAX_ROUNDS;
                /* the last round's time again for the catch-up, twice over */
                double round_lead = round ? 2 * m->rounds[m->nrounds - 1].ms + 1 : 0;
                m->held_ms = wait_until(m, end - (double)m->freeze_lead_ms - round_lead);
                if (round && !fm_cancel_fired(m->cancel) && (r = precopy_round(m, held, &m->rounds[m->nrounds])) == 0)
                        emit_round(m, h, m->nrounds++);
                if (r == 0)
                        m->held_ms += wait_until(m, end - (double)m->freeze_lead_ms);
        }
        /* the dump's start-up (its lead) counts from here */
        m->ready_ms = fm_now_ms();
        return r;
}

static int phase_freeze(fm_migration *m)
{
        int r = fm_ct_freeze(m->src->lxcpath, m->name, &m->err);
        if (r == 0)
                m->frozen = true;
        return r;
}

static int images_fresh(fm_migration *m)
{
        char img[600];
        src_images(m, img, sizeof(img));
        fm_rm_rf(img);
        int r = fm_mkdir_p(img, 0700);
        return r < 0 ? fm_err(&m->err, -r, "creating %s: %s", img, strerror(-r)) : 0;
}

/* Where fm-criu-wrap says how the flush of a shared rootfs went. */
static void flush_report(const fm_migration *m, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.%s.flush", m->src->images, m->name);
}

/* What a dump found, kept apart from m while a lazy dump runs beside the
 * pipeline (dump_apply puts it into m once the dump has ended). */
typedef struct dump_out {
        uint64_t bytes_memory;
        bool have_flush;
        int flushed_files;
        double flush_ms;
} dump_out;

static void dump_apply(fm_migration *m, const dump_out *o)
{
        m->bytes_memory += o->bytes_memory;
        if (o->have_flush) {
                m->flushed_files = o->flushed_files;
                m->phase_ms[FM_PHASE_DISK_FINAL] = o->flush_ms;
        }
}

/* ps: a lazy final dump's page-server socket (NULL: a full dump); e, out:
 * its own error and figures (it runs beside the pipeline then). */
static int phase_dump(fm_migration *m, const char *ps, fm_error *e, dump_out *out)
{
        char img[600];
        src_images(m, img, sizeof(img));
        if (injected(m, FM_PHASE_DUMP))
                return fm_err(e, EIO, "dump failed (injected by the test hook)");
        /* shared: fm-criu-wrap flushes the volume's files once frozen */
        char flush[300], report[700];
        flush_report(m, report, sizeof(report));
        snprintf(flush, sizeof(flush), "FASTMIG_SHARED_FLUSH=%s", m->strategy == FM_STRATEGY_SHARED ? m->src->shared.path : "");
        _cleanup_free_ char *rep_env = fm_strdupf("FASTMIG_FLUSH_REPORT=%s", report);
        _cleanup_free_ char *ps_env = fm_strdupf("FASTMIG_PAGE_SERVER=%s", ps ? ps : "");
        _cleanup_free_ char *at_env = fm_strdupf("FASTMIG_FREEZE_AT=%lld", (long long)m->freeze_pin_ms);
        const char *env[] = {m->src->criu_path_env[0] ? m->src->criu_path_env : NULL, m->src->criu_real_env, flush,
                             rep_env, ps_env, at_env, NULL};
        unlink(report);
        /* a lazy dump ends when all pages are at the target: as long as the
         * target's settle may take */
        int r = fm_ct_checkpoint(m->src->lxcpath, m->name, img, m->src->criu_dump_conf, env[0] ? env : NULL,
                                 ps ? 660000 : 0, e);
        out->bytes_memory = dir_bytes(img);
        fm_error ignore = {0};
        if (r == 0 && !ps) /* CRIU's own account, beside ours (a lazy dump's is not meaningful) */
                fm_criu_stats_read(img, "dump", &m->criu, &ignore);
        _cleanup_free_ char *line = NULL;
        out->have_flush = m->strategy == FM_STRATEGY_SHARED && fm_read_file(report, &line, 256) > 0 &&
                          sscanf(line, "%d %lf", &out->flushed_files, &out->flush_ms) == 2;
        unlink(report);
        return r;
}

/* ---- the lazy final dump (memory/pagerelay.h) ----
 * CRIU dumps everything but the anonymous memory, which stays in the frozen
 * tasks; its page server (on a socket this agent listens on) hands pages
 * out until it is closed, and only then does the dump end. The target's
 * lazy-pages daemon asks its agent, which asks here over a connection made
 * before the freeze; the answers are page records, so a page the target
 * holds since pre-copy travels as a reference. */
typedef struct lazy_job {
        fm_migration *m;
        fm_hashset *held;
        char dir[600], path[700];
        int lfd, peer, ps, st;  /* listener; the target; CRIU's page server; its status */
        fm_job relay, dump;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool ready, go, cancel, relay_ended, dump_ended; /* under lock */
        dump_out dump_out;
        fm_pagerelay_stats stats;
        bool opened; /* lazy_open ran: lazy_close has something to do */
} lazy_job;

static void lazy_set(lazy_job *j, bool *flag)
{
        pthread_mutex_lock(&j->lock);
        *flag = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
}

static bool lazy_get(lazy_job *j, const bool *flag)
{
        pthread_mutex_lock(&j->lock);
        bool v = *flag;
        pthread_mutex_unlock(&j->lock);
        return v;
}

/* fm-criu-wrap's two connections: 'P' CRIU's page server, 'S' its status */
static int lazy_accept(lazy_job *j, fm_error *e)
{
        while (j->ps < 0 || j->st < 0) {
                if (lazy_get(j, &j->cancel) || lazy_get(j, &j->dump_ended))
                        return fm_err(e, ECANCELED, "the dump ended before its page server started");
                struct pollfd p = {.fd = j->lfd, .events = POLLIN};
                if (poll(&p, 1, 50) <= 0)
                        continue;
                int fd = accept4(j->lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                char tag = 0;
                fm_sock_set_timeout(fd, 2000);
                bool got = read(fd, &tag, 1) == 1;
                pthread_mutex_lock(&j->lock); /* lazy_close shuts it down from another thread */
                if (got && tag == 'P' && j->ps < 0)
                        j->ps = fd, fd = -1;
                else if (got && tag == 'S' && j->st < 0)
                        j->st = fd, fd = -1;
                pthread_mutex_unlock(&j->lock);
                fm_close(fd);
        }
        fm_sock_set_timeout(j->ps, 0);
        /* CRIU writes one byte on its status fd once the images are written
         * and its page server is up; it closes it unwritten when it fails */
        for (;;) {
                if (lazy_get(j, &j->cancel))
                        return fm_err(e, ECANCELED, "cancelled");
                struct pollfd p = {.fd = j->st, .events = POLLIN};
                if (poll(&p, 1, 50) <= 0)
                        continue;
                char b;
                if (read(j->st, &b, 1) == 1)
                        return 0;
                return fm_err(e, EIO, "CRIU's lazy dump failed before its page server started");
        }
}

static int lazy_relay_run(void *arg, fm_error *e)
{
        lazy_job *j = arg;
        fm_migration *m = j->m;
        int r = lazy_accept(j, e);
        if (r == 0) {
                lazy_set(j, &j->ready);
                /* the images' stream uses held until it has ended */
                pthread_mutex_lock(&j->lock);
                while (!j->go && !j->cancel)
                        pthread_cond_wait(&j->cond, &j->lock);
                bool go = !j->cancel;
                pthread_mutex_unlock(&j->lock);
                bool corrupt = m->src->test_hooks && !strcmp(m->inject, "corrupt_pages");
                char img[600];
                src_images(m, img, sizeof(img));
                r = go ? fm_pagerelay_source(j->peer, j->ps, img, m->key, j->held, m->compress, corrupt, &j->stats, e)
                       : fm_err(e, ECANCELED, "cancelled");
        }
        lazy_set(j, &j->relay_ended);
        return r;
}

/* Ends the relay soon: its sockets are shut down (CRIU then ends its
 * dump, the tasks still frozen by their cgroup). */
static void lazy_relay_cancel(void *arg)
{
        lazy_job *j = arg;
        pthread_mutex_lock(&j->lock);
        j->cancel = true;
        pthread_cond_broadcast(&j->cond);
        if (j->peer >= 0)
                shutdown(j->peer, SHUT_RDWR);
        if (j->ps >= 0)
                shutdown(j->ps, SHUT_RDWR);
        pthread_mutex_unlock(&j->lock);
}

/* Once the relay has ended: CRIU's page server finds its sockets shut, or
 * never accepted (the listener goes), and the dump ends. */
static void lazy_stop_criu(lazy_job *j)
{
        fm_job_join(&j->relay);
        lazy_relay_cancel(j);
        j->lfd = fm_close(j->lfd);
}

static int lazy_dump_run(void *arg, fm_error *e)
{
        lazy_job *j = arg;
        int r = phase_dump(j->m, j->path, e, &j->dump_out);
        lazy_set(j, &j->dump_ended);
        return r;
}

/* Before the freeze: the socket CRIU will serve on, and the target's
 * agent ready to serve its daemon. */
static int lazy_open(fm_migration *m, fm_hashset *held, lazy_job *j)
{
        memset(j, 0, sizeof(*j));
        j->m = m;
        j->held = held;
        j->lfd = j->peer = j->ps = j->st = -1;
        pthread_mutex_init(&j->lock, NULL);
        pthread_cond_init(&j->cond, NULL);
        j->opened = true;
        fm_page_server_path(m->src->images, m->name, j->dir, sizeof(j->dir), j->path, sizeof(j->path));
        if ((j->lfd = fm_page_server_listen(m->src->images, m->name, j->dir, sizeof(j->dir), &m->err)) < 0)
                return j->lfd;
        if ((j->peer = fm_tcp_connect(m->to_addr, m->to_port, 30000, &m->err)) < 0)
                return fm_err_wrap(&m->err, "lazy pages: %s", m->to_host);
        json_object *req = req_new("lazy_pages", m->name), *reply = NULL;
        int r = fm_msg_send(j->peer, FM_FRAME_REQUEST, req);
        json_object_put(req);
        uint8_t t = 0;
        if (r < 0)
                return fm_err(&m->err, -r, "lazy pages: %s: %s", m->to_host, strerror(-r));
        if ((r = fm_msg_recv(j->peer, &t, &reply, &m->err)) == 0)
                r = t == FM_FRAME_REPLY ? fm_reply_check(reply, &m->err) : fm_err(&m->err, EPROTO, "no reply");
        json_object_put(reply);
        if (r < 0)
                return fm_err_wrap(&m->err, "lazy pages: %s", m->to_host);
        fm_sock_set_timeout(j->peer, 0); /* requests come when the target's daemon asks */
        return fm_job_start(&j->relay, "the page relay", lazy_relay_run, lazy_relay_cancel, j, &m->err);
}

/* The dump, until its images are complete (its page server then serves on). */
static int lazy_dump(fm_migration *m, lazy_job *j)
{
        int r = fm_job_start(&j->dump, "the dump", lazy_dump_run, NULL, j, &m->err);
        if (r < 0)
                return r;
        /* as long as a full dump may take (fm_ct_checkpoint's default) */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 120;
        int w = 0;
        pthread_mutex_lock(&j->lock);
        while (!j->ready && !j->dump_ended && !j->relay_ended && w != ETIMEDOUT)
                w = pthread_cond_timedwait(&j->cond, &j->lock, &until);
        bool ready = j->ready, ended = j->dump_ended || j->relay_ended;
        pthread_mutex_unlock(&j->lock);
        if (ready)
                return 0;
        if (!ended) /* lazy_close ends it (CRIU finds its page server's socket shut) */
                return fm_err(&m->err, ETIMEDOUT, "the lazy dump's images were not complete after 120 s");
        /* a relay that ended first leaves CRIU nobody to serve: its sockets go */
        bool relay_first = !lazy_get(j, &j->dump_ended);
        if (relay_first)
                lazy_stop_criu(j);
        /* the dump's own error says more than the relay's */
        int rd = fm_job_join(&j->dump);
        dump_apply(m, &j->dump_out);
        fm_err_clear(&m->err);
        if (rd < 0)
                m->err = j->dump.err;
        else if (lazy_get(j, &j->relay_ended)) /* it wrote its error before it said so */
                m->err = j->relay.err;
        if (!m->err.code)
                fm_err(&m->err, EIO, "the lazy dump ended before its page server started");
        return -m->err.code;
}

/* Ends everything it started and removes its socket: on failure, and
 * (ok) once the target's daemon has all memory. CRIU ends when its page
 * server's socket closes; the tasks stay frozen (their cgroup was frozen
 * before CRIU ran) until the rollback thaws them or the cleanup destroys
 * them. */
static int lazy_close(fm_migration *m, lazy_job *j, bool ok)
{
        if (!j->opened)
                return 0;
        int rr = ok ? fm_job_join(&j->relay) : fm_job_cancel(&j->relay);
        if (!ok) /* also a socket the relay took after its cancel, or never took */
                lazy_stop_criu(j);
        bool dumping = fm_job_running(&j->dump);
        int rd = fm_job_join(&j->dump);
        if (dumping)
                dump_apply(m, &j->dump_out);
        /* ok: the target's daemon has every page and ended well, the
         * service runs there: what went wrong here after that is logged */
        if (ok && rr < 0)
                fprintf(stderr, "fastmigd[%s]: the page relay of %s ended badly after its last page: %s\n",
                        m->src->host, m->name, j->relay.err.msg);
        if (ok && rd < 0)
                fprintf(stderr, "fastmigd[%s]: the lazy dump of %s ended badly after its pages: %s\n", m->src->host,
                        m->name, j->dump.err.msg);
        m->final_pages += j->stats.st.literal;
        m->final_bytes += j->stats.st.bytes;
        m->bytes_memory += j->stats.pages * FM_PAGE_SIZE;
        m->lazy_pages = j->stats.pages;
        fm_close(j->lfd);
        fm_close(j->peer);
        fm_close(j->ps);
        fm_close(j->st);
        j->lfd = j->peer = j->ps = j->st = -1;
        fm_rm_rf(j->dir);
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->cond);
        j->opened = false;
        return 0;
}

/* What happens the moment the container is frozen, beside the dump: its
 * traffic is cut and the plane told (frozen_cut), then the rootfs's last
 * changes travel (frozen_sync); both only read what the frozen container
 * cannot change any more. */
typedef struct frozen_job {
        fm_migration *m;
        const fm_mig_hooks *h;
        fm_job job;
        volatile bool dump_done; /* stop waiting for the freeze */
        double frozen_at;        /* fm_now_ms() when the freeze was seen, 0 if never */
        final_sync *fs;          /* the rsync started ahead (not for a tree that stays on the shared volume) */
        double ms;
        uint64_t bytes;
} frozen_job;

/* shared: what the frozen service wrote must be on the storage before the
 * target's CRIU opens the files (CRIU does not flush), and CRIU must not
 * start on a storage that does not answer (it would hang with the service
 * frozen). fm-criu-wrap does this between its freeze and CRIU; without it,
 * this, after the agent's freeze. */
#define FM_SHARED_FLUSH_DEADLINE_MS 5000
static int shared_flush(fm_migration *m)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r = fm_ct_pids(m->src->lxcpath, m->name, &pids, &n, &m->err);
        if (r == 0)
                r = fm_shared_flush(m->src->shared.path, pids, n, FM_SHARED_FLUSH_DEADLINE_MS, &m->flushed_files,
                                    &m->err);
        return r;
}

/* Test hook "storage_cut": this host loses its route to the shared volume's
 * server (named by the mount's source, HOST:/VOLUME) as the freeze nears.
 * `fastmig testbed storage restore --host H' gives it back. */
static void cut_storage(fm_migration *m)
{
        char server[64];
        if (fm_shared_server(m->src->shared.path, server, sizeof(server)) < 0)
                return;
        _cleanup_free_ char *dst = fm_strdupf("%s/32", server);
        char *argv[] = {"ip", "route", "add", "blackhole", dst, NULL};
        fm_spawn_opts o = {.detach_stdio = true, .timeout_ms = 5000};
        fm_spawn(argv, &o);
}

/* Waits for the freeze (by fm-criu-wrap inside the dump, or by us before
 * it), then cuts the frozen copy off its peers and says "frozen". */
static int frozen_cut(frozen_job *j, fm_error *e)
{
        if (fm_ct_wait_frozen(j->m->src->lxcpath, j->m->name, &j->dump_done, 30000, e) < 0)
                return -e->code;
        j->frozen_at = fm_now_ms();
        /* nothing of the frozen copy may reach the service's peers any more
         * (fm_ct_bridge_port says why); on rollback it goes back. One
         * netlink message: the interfaces were looked up in plan. */
        fm_error ignore = {0};
        if (j->m->have_port && fm_ct_port_set(&j->m->port, false, &ignore) == 0)
                j->m->detached = true;
        else if (j->m->own_net) /* its dump has no network lock: the detach is all */
                return fm_err(e, ignore.code ? ignore.code : ENODEV, "cannot take %s's veth off its bridge: %s",
                              j->m->name, ignore.msg);
        /* Nothing answers from here any more: traffic goes to the target
         * already, so that what the restored TCP sockets send first (a
         * window probe as CRIU lets them go) is answered there and not by
         * the frozen copy, however soon the restore is done. A rollback
         * sends it back; the commit sends it again and must succeed. */
        emit_simple(j->h, "frozen");
        fm_error se = {0};
        if (injected(j->m, FM_PHASE_STEER)) /* the steering is broken: it fails here too (and at the commit) */
                return 0;
        j->m->steered = true;
        if (fm_mig_steer(j->m->src, FM_STEER_FROZEN, j->m->service_ip, j->m->src->host, j->m->to_host, &se) < 0)
                fprintf(stderr, "fastmigd[%s]: %s: steering to %s at the freeze: %s\n", j->m->src->host, j->m->name,
                        j->m->to_host, se.msg);
        return 0;
}

/* The rootfs's changes since the live sync began, to the waiting rsync. */
static int frozen_sync(frozen_job *j, fm_error *e)
{
        int r = 0;
        double t = j->frozen_at;
        if (j->m->strategy == FM_STRATEGY_SHARED) /* flushed by fm-criu-wrap, or before the dump */
                return 0;
        char src[600];
        own_dir(j->m, src, sizeof(src));
        /* What changed since (shortly before) the live sync began is all
         * that travels, often nothing. */
        struct timespec since = j->m->disk_live_start;
        since.tv_nsec -= 50000000; /* margin for the kernel's coarse ctime clock */
        if (since.tv_nsec < 0) {
                since.tv_nsec += 1000000000;
                since.tv_sec--;
        }
        /* a tree on a network file system (leaving the volume) is not
         * walked while frozen (seconds of round trips): its watch says */
        char list[700];
        size_t n = 0;
        snprintf(list, sizeof(list), "%s/.%s.changed", j->m->src->images, j->m->name);
        fm_error we = {0};
        if (j->m->moving_tree && j->m->tree_watch && fm_tree_watch_list(j->m->tree_watch, list, &n, &we) == 0) {
                j->m->tree_changes_by = "inotify";
        } else {
                if (j->m->moving_tree && j->m->tree_watch)
                        fprintf(stderr, "fastmigd: %s: %s; walking the tree\n", j->m->name, we.msg);
                if (j->m->moving_tree)
                        j->m->tree_changes_by = "walk";
                r = fm_tree_changes_since(src, since, list, &n, e);
        }
        /* Nothing changed: rsync gets its empty list after the restore, so
         * that its exchange (a few ms of busy processes on both hosts) stays
         * out of the window. Else the images are complete, and the target
         * restores, only once it has ended. */
        if (r != 0 || n > 0) {
                int rs = final_sync_finish(j->fs, r == 0 ? list : NULL);
                if (r == 0 && rs < 0) {
                        r = rs;
                        *e = j->fs->job.err;
                }
                j->bytes = j->fs->bytes;
        }
        unlink(list);
        j->ms = fm_now_ms() - t;
        return r;
}

static int frozen_run(void *arg, fm_error *e)
{
        frozen_job *j = arg;
        int r = frozen_cut(j, e);
        return r < 0 ? r : frozen_sync(j, e);
}

static int frozen_start(fm_migration *m, const fm_mig_hooks *h, final_sync *fs, frozen_job *j)
{
        memset(j, 0, sizeof(*j));
        j->m = m;
        j->h = h;
        j->fs = fs;
        return fm_job_start(&j->job, "the work at the freeze", frozen_run, NULL, j, &m->err);
}

/* Stops its wait for a freeze that will not come (the dump ended), joins. */
static int frozen_join(fm_migration *m, frozen_job *j)
{
        j->dump_done = true;
        int r = fm_job_join(&j->job);
        m->bytes_own += j->bytes;
        if (m->strategy != FM_STRATEGY_SHARED) /* shared: the flush's time, from the dump (phase_dump) */
                m->phase_ms[FM_PHASE_DISK_FINAL] = j->ms;
        if (r < 0 && m->err.code == 0)
                m->err = j->job.err;
        return r;
}

/* The images travel while CRIU writes them: the pages files as they grow,
 * the rest once the dump has ended (fm_files_send's live mode). */
typedef struct transfer_job {
        fm_migration *m;
        fm_hashset *held;
        fm_files_live live;
        fm_job job;
} transfer_job;

static int transfer_images(void *arg, fm_error *e)
{
        transfer_job *j = arg;
        fm_migration *m = j->m;
        char img[600];
        src_images(m, img, sizeof(img));
        if (injected(m, FM_PHASE_TRANSFER))
                return fm_err(e, EPIPE, "image transfer failed (injected by the test hook)");
        _cleanup_close_ int fd = fm_tcp_connect(m->to_addr, m->to_port, 30000, e);
        if (fd < 0)
                return fd;
        json_object *req = req_new("put_images", m->name);
        if (m->inject[0])
                json_object_object_add(req, "inject", json_object_new_string(m->inject));
        int r = fm_msg_send(fd, FM_FRAME_REQUEST, req);
        json_object_put(req);
        if (r < 0)
                return fm_err(e, -r, "sending images to %s: %s", m->to_host, strerror(-r));
        uint64_t bytes = 0;
        fm_page_codec codec = {.key = m->key, .held = j->held, .compress = m->compress,
                               .corrupt_one = m->src->test_hooks && !strcmp(m->inject, "corrupt_pages")};
        bool paged = m->precopy || m->compress;
        if ((r = fm_files_send(fd, img, paged ? &codec : NULL, &j->live, &bytes, e)) < 0)
                return fm_err_wrap(e, "sending images to %s", m->to_host);
        if (paged) {
                m->final_pages = codec.st.literal;
                m->final_bytes = codec.st.bytes;
        }
        uint8_t t = 0;
        json_object *reply = NULL;
        if ((r = fm_msg_recv(fd, &t, &reply, e)) < 0)
                return fm_err_wrap(e, "sending images to %s", m->to_host);
        r = fm_reply_check(reply, e);
        json_object_put(reply);
        return r;
}

/* Call once the images directory exists and before the dump starts. */
static int transfer_start(fm_migration *m, fm_hashset *held, transfer_job *j)
{
        memset(j, 0, sizeof(*j));
        j->m = m;
        j->held = held;
        j->live.inotify_fd = j->live.wake_fd = -1;
        char img[600];
        src_images(m, img, sizeof(img));
        if (fm_files_live_watch(&j->live, img, &m->err) < 0)
                return -m->err.code;
        int r = fm_job_start(&j->job, "the image transfer", transfer_images, NULL, j, &m->err);
        if (r < 0)
                fm_files_live_close(&j->live);
        return r;
}

/* dump_r: how the dump ended (a failed dump ends the stream unfinished). */
static int transfer_join(fm_migration *m, transfer_job *j, int dump_r)
{
        if (!fm_job_running(&j->job))
                return 0;
        fm_files_live_end(&j->live, dump_r >= 0);
        int r = fm_job_join(&j->job);
        fm_files_live_close(&j->live);
        if (r < 0 && dump_r == 0)
                m->err = j->job.err;
        return r;
}

/* The restore is asked for as the dump starts (when the target has
 * fm-criu-wrap): LXC's start-up on the target then overlaps the dump and the
 * transfer, and CRIU starts the moment the images are complete. */
typedef struct restore_job {
        fm_migration *m;
        fm_job job;            /* done: the request has been answered */
        json_object *programs; /* the target's frozen_programs */
} restore_job;

/* A target's list of programs it started while frozen, checked: an array
 * of at most 256 objects with a short "program" (a peer's word) */
static json_object *programs_of(json_object *reply)
{
        json_object *a = NULL;
        if (!json_object_object_get_ex(reply, "frozen_programs", &a) || !json_object_is_type(a, json_type_array) ||
            json_object_array_length(a) > 256)
                return NULL;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                const char *p = NULL;
                json_object *o = json_object_array_get_idx(a, i);
                if (!json_object_is_type(o, json_type_object) || fm_json_str(o, "program", true, 16, &p, NULL) < 0)
                        return NULL;
        }
        return json_object_get(a);
}

static int restore_run(void *arg, fm_error *e)
{
        restore_job *j = arg;
        json_object *req = req_new("restore", j->m->name);
        json_object_object_add(req, "early", json_object_new_boolean(1));
        json_object_object_add(req, "lazy", json_object_new_boolean(j->m->lazy));
        json_object_object_add(req, "lazy_dump", json_object_new_boolean(j->m->lazy_dump));
        /* the thaw without its word below counts on the target's fence */
        json_object_object_add(req, "lease", json_object_new_boolean(j->m->target_leases));
        if (j->m->inject[0])
                json_object_object_add(req, "inject", json_object_new_string(j->m->inject));
        json_object *reply = NULL;
        atomic_store(&j->m->restore_asked, fm_lease_now_ns());
        int r = fm_call(j->m->to_addr, j->m->to_port, req, &reply, 660000, e); /* the target waits up to 600 s */
        json_object_put(req);
        if (r == 0)
                r = fm_reply_check(reply, e);
        if (r < 0) /* refused: no lease follows, its error is the news */
                atomic_store(&j->m->restore_asked, 0);
        json_object *cs = NULL;
        if (r == 0 && json_object_object_get_ex(reply, "criu_restore", &cs))
                fm_criu_stats_restore_from_json(cs, &j->m->criu);
        if (r == 0)
                j->programs = programs_of(reply);
        json_object_put(reply);
        return r;
}

/* The target's abort releases a restore that waits for its images (or
 * keeps one from starting). Its own error, not the migration's. */
static void restore_cancel(void *arg)
{
        restore_job *j = arg;
        fm_error ignore = {0};
        fm_target_call_abort(j->m->name, j->m->to_addr, j->m->to_port, &ignore);
}

/* Before the freeze: an early restore that has already been answered
 * failed (it cannot succeed before the images): fail now, unfrozen. */
static int restore_alive(fm_migration *m, restore_job *j)
{
        if (!fm_job_done(&j->job))
                return 0;
        fm_job_join(&j->job);
        json_object_put(j->programs);
        j->programs = NULL;
        m->err = j->job.err;
        if (!m->err.code)
                fm_err(&m->err, EIO, "the early restore ended before the images");
        return fm_err_wrap(&m->err, "restore on %s", m->to_host);
}

static int restore_start(fm_migration *m, restore_job *j)
{
        memset(j, 0, sizeof(*j));
        j->m = m;
        m->restored = true; /* from here on the target may hold a container to remove */
        return fm_job_start(&j->job, "the restore request", restore_run, restore_cancel, j, &m->err);
}

/* On failure before the images are complete the target is told to abort
 * first, which releases the waiting restore. */
static int restore_join(fm_migration *m, restore_job *j, bool abort_first)
{
        if (!fm_job_running(&j->job))
                return 0;
        int r = abort_first ? fm_job_cancel(&j->job) : fm_job_join(&j->job);
        if (abort_first) { /* a failed migration reports no window */
                json_object_put(j->programs);
                j->programs = NULL;
                return 0;
        }
        if (r < 0) {
                m->err = j->job.err;
                return fm_err_wrap(&m->err, "restore on %s", m->to_host);
        }
        return 0;
}

static int phase_restore(fm_migration *m, json_object **programs)
{
        json_object *req = req_new("restore", m->name);
        json_object_object_add(req, "lease", json_object_new_boolean(m->target_leases));
        if (m->inject[0])
                json_object_object_add(req, "inject", json_object_new_string(m->inject));
        m->restored = true; /* from here on the target may hold a container to remove */
        json_object *reply = NULL, *cs = NULL;
        atomic_store(&m->restore_asked, fm_lease_now_ns());
        int r = target_call(m, req, &reply, 120000);
        if (r == 0 && json_object_object_get_ex(reply, "criu_restore", &cs))
                fm_criu_stats_restore_from_json(cs, &m->criu);
        if (r == 0)
                *programs = programs_of(reply);
        json_object_put(reply);
        return r < 0 ? fm_err_wrap(&m->err, "restore on %s", m->to_host) : 0;
}

/* The target runs the service: its traffic goes there (the one steering
 * call that must succeed). The CLI hears "restored" first. */
static int phase_steer(fm_migration *m, const fm_mig_hooks *h)
{
        emit_simple(h, "restored");
        m->steered = true;
        int r = injected(m, FM_PHASE_STEER)
                        ? fm_err(&m->err, EIO, "route switch failed (injected by the test hook)")
                        : fm_mig_steer(m->src, FM_STEER_COMMIT, m->service_ip, m->src->host, m->to_host, &m->err);
        return r < 0 ? fm_err_wrap(&m->err, "steering traffic to %s", m->to_host) : 0;
}

/* A lazy restore: the source copy stays until the target's memory is all
 * in place, so a daemon that fails still leaves the service somewhere. */
static int phase_settle(fm_migration *m, lazy_job *lj)
{
        json_object *req = req_new("settle", m->name);
        if (m->inject[0])
                json_object_object_add(req, "inject", json_object_new_string(m->inject));
        int r = target_call(m, req, NULL, 660000);
        if (r < 0)
                return fm_err_wrap(&m->err, "completing the lazy restore on %s", m->to_host);
        /* a lazy dump: every page has left; its CRIU has ended or is ending */
        return lazy_close(m, lj, true);
}

static int finish_run(void *arg, fm_error *e)
{
        fm_migration *m = arg; /* its err is cleared after */
        (void)e;
        int r = target_call(m, req_new("finish", m->name), NULL, 30000);
        /* until the target hears it, its copy runs on the lease the
         * journal's commit grants: recovery tells it */
        if (r < 0)
                m->finish_pending = m->stranded = true;
        return r;
}

static void phase_cleanup(fm_migration *m)
{
        char img[600];
        fm_error ignore = {0};
        /* the target drops its images meanwhile */
        fm_job finish = {0};
        fm_error ignore_start = {0};
        bool threaded = fm_job_start(&finish, "the target's finish", finish_run, NULL, m, &ignore_start) == 0;
        /* the connections now live on the target: this copy must not reset
         * them as its processes die (it left its bridge at the freeze,
         * unless that failed) */
        if (!m->detached && m->have_port)
                fm_ct_port_set(&m->port, false, &ignore);
        fm_ct_destroy(m->src->lxcpath, m->name, &ignore);
        if (m->moving_tree) /* the tree now lives on the target's disk */
                fm_shared_discard(m->src->shared.path, m->shared_rel, &ignore);
        src_images(m, img, sizeof(img));
        fm_rm_rf(img);
        if (threaded)
                fm_job_join(&finish);
        else
                finish_run(m, &ignore_start);
        fm_err_clear(&m->err);
}

/* What each host started while the container was frozen (the report). */
static void frozen_programs(fm_migration *m, double t0_ms, double t1_ms, json_object *target)
{
        json_object *src = fm_execwatch_between(m->src->execwatch, (uint64_t)(t0_ms * 1e6), (uint64_t)(t1_ms * 1e6), NULL);
        json_object_put(m->frozen_programs);
        m->frozen_programs = json_object_new_object();
        json_object_object_add(m->frozen_programs, "source", src);
        json_object_object_add(m->frozen_programs, "target", target);
}

void fm_migration_release(fm_migration *m)
{
        json_object_put(m->frozen_programs);
        m->frozen_programs = NULL;
}

/* While frozen, until the commit: a target that keeps leases asks for its
 * lease every second (lease.h), so one that stops asking for FM_LEASE_MS
 * has fallen silent (dead, stopped, cut off). Then every connection and
 * child of this migration is ended (util/cancel.h): its blocked calls fail
 * at once and the rollback runs, instead of waiting out each call's own
 * timeout (a stopped agent keeps its TCP connections alive). */
typedef struct silence_watch {
        fm_migration *m;
        fm_job job;
        atomic_bool stop;
        uint64_t since; /* fm_lease_now_ns: the watch's start */
} silence_watch;

static int silence_run(void *arg, fm_error *e)
{
        (void)e;
        silence_watch *w = arg;
        while (!atomic_load(&w->stop)) {
                uint64_t now = fm_lease_now_ns(), ask = fm_lease_last_ask(w->m->name);
                uint64_t asked = atomic_load(&w->m->restore_asked);
                uint64_t last = ask > w->since ? ask : w->since;
                last = asked > last ? asked : last;
                /* a target asks as soon as it has the restore request (and
                 * before its restore: target.c); before that request it
                 * holds no lease, its copy cannot run, and the calls end by
                 * their own bounds */
                if ((ask || asked) && now > last && now - last > FM_LEASE_MS * 1000000ull) {
                        fprintf(stderr, "fastmigd[%s]: %s: %s has not asked for its lease for %.1f s%s: giving it up\n",
                                w->m->src->host, w->m->name, w->m->to_host, (double)(now - last) / 1e9,
                                ask ? "" : " since its restore was asked for");
                        atomic_store(&w->m->target_silent, true);
                        fm_cancel_fire(w->m->cancel);
                        break;
                }
                usleep(200000);
        }
        return 0;
}

static void silence_start(fm_migration *m, silence_watch *w)
{
        memset(w, 0, sizeof(*w));
        w->m = m;
        w->since = fm_lease_now_ns();
        fm_error ignore = {0};
        if (m->target_leases && m->cancel)
                fm_job_start(&w->job, "the target's silence watch", silence_run, NULL, w, &ignore);
}

/* 0, or -ECANCELED when the target had fallen silent. */
static int silence_stop(fm_migration *m, silence_watch *w)
{
        atomic_store(&w->stop, true);
        fm_job_join(&w->job);
        if (atomic_load(&m->target_silent))
                return fm_err(&m->err, ECANCELED, "%s fell silent (no lease asked for %d s)", m->to_host,
                              FM_LEASE_MS / 1000);
        return 0;
}

/* ---- the pipeline: three stages and one undo stack ----
 * While the service runs (live), while it is frozen (frozen), once it runs
 * on the target (commit). Every step that leaves something behind (on the
 * target, in a job, on this host) pushes how to take it back; on failure
 * the stack runs in reverse. One rule stands above that order: the source
 * copy is thawed only once no copy can run on the target (undo_freeze stops
 * the target first). */

typedef struct pipeline pipeline;
typedef void (*undo_fn)(pipeline *p);
#define UNDO_MAX 8

struct pipeline {
        fm_migration *m;
        const fm_mig_hooks *h;
        double t0, t_freeze;
        fm_hashset held;                     /* the pages the target holds (pre-copy, the final stream) */
        images_job ij;                       /* full- and partial-mig's images */
        restore_job rj;                      /* the target's restore, asked for early */
        final_sync fs;                       /* the rootfs's last changes, rsync started before the freeze */
        lazy_job lj;                         /* a lazy final dump's page relay and its dump */
        json_object *target_programs;        /* what the target started while frozen */
        silence_watch watch;                 /* from the freeze to the commit */
        bool early, early_now;               /* the restore is asked for early; before the rounds */
        bool final;                          /* a final rootfs sync (not for a tree that stays on the volume) */
        bool target_stopped;                 /* undo_target ran ... */
        bool target_gone;                    /* ... and the target said it holds no copy */
        undo_fn undo[UNDO_MAX];
        int nundo;
};

static void undo_push(pipeline *p, undo_fn fn)
{
        assert(p->nundo < UNDO_MAX); /* the stages push each of theirs once */
        p->undo[p->nundo++] = fn;
}

/* The target prepared (or runs) the container: it goes. */
static void undo_target(pipeline *p)
{
        if (p->target_stopped)
                return;
        p->target_stopped = true;
        fm_error ignore = {0};
        p->target_gone = fm_target_call_abort(p->m->name, p->m->to_addr, p->m->to_port, &ignore) == 0;
}

/* An early restore: released (the target's abort) and its answer awaited. */
static void undo_restore(pipeline *p) { restore_join(p->m, &p->rj, true); }

/* The images still on their way: of no use any more (joined after the
 * thaw: they go to the target's content-addressed store, nowhere else). */
static void undo_images_job(pipeline *p)
{
        atomic_store(&p->ij.freezing, true); /* the images_tail test hook waits for it */
        fm_job_join(&p->ij.job);
}

/* The waiting rsync: given no list, it ends at once. */
static void undo_final_sync(pipeline *p) { final_sync_finish(&p->fs, NULL); }

/* The page relay and, with it, CRIU's lazy dump: CRIU lets the tasks go,
 * still frozen by their cgroup. */
static void undo_lazy(pipeline *p) { lazy_close(p->m, &p->lj, false); }

static void undo_images_dir(pipeline *p)
{
        char img[600];
        src_images(p->m, img, sizeof(img));
        fm_rm_rf(img);
}

/* The service returns to the source copy, once nothing else can run it. */
static void undo_freeze(pipeline *p)
{
        fm_migration *m = p->m;
        fm_error ignore = {0};
        /* no lease from here: the target's copy runs FM_LEASE_MS after the
         * last grant at most */
        uint64_t lapsed = fm_lease_refuse(m->name);
        undo_lazy(p);
        undo_final_sync(p); /* before the target's abort: nothing writes there after it */
        undo_restore(p);
        undo_target(p);
        if (m->restored && !p->target_gone && !m->target_leases) {
                /* the target may run it and did not say it stopped: thawing
                 * here could make two copies. The journal keeps the
                 * migration; recovery thaws once the target answers. */
                m->stranded = true;
                return;
        }
        if (m->restored && !p->target_gone) {
                /* its copy, if any, is fenced once its lease has lapsed:
                 * then this one runs, and recovery removes that one */
                uint64_t now = fm_lease_now_ns();
                if (lapsed > now) {
                        fprintf(stderr, "fastmigd[%s]: %s: %s did not confirm it runs no copy; thawing here when "
                                        "its lease has lapsed, in %.1f s\n",
                                m->src->host, m->name, m->to_host, (double)(lapsed - now) / 1e9);
                        fm_lease_sleep_until(lapsed);
                }
                m->abort_pending = m->stranded = true;
                if (journal(m, FM_JOURNAL_ROLLEDBACK) < 0) /* the frozen record stays: recovery does the same */
                        fprintf(stderr, "fastmigd[%s]: %s: %s\n", m->src->host, m->name, m->err.msg);
        }
        /* local steps from here: not ended by a silent target's cancel */
        fm_cancel *group = fm_cancel_bound();
        fm_cancel_bind(NULL);
        /* what fails from here is left to recovery, which retries the
         * same steps (docs/RECOVERY.md): the journal still says frozen
         * (or rolledback) */
        bool failed = m->detached && fm_ct_port_set(&m->port, true, &ignore) < 0; /* only ever set with have_port */
        m->frozen_ms = fm_now_ms() - p->t_freeze; /* the window, all of it */
        failed = failed || fm_ct_unfreeze(m->src->lxcpath, m->name, &ignore) < 0;
        /* the target may have announced the address already: on one L2
         * segment (garp steering) the switches learn it back here */
        if (!failed && m->restored)
                fm_ct_announce(m->src->lxcpath, m->name, &ignore);
        failed = failed || (m->steered && fm_mig_steer(m->src, FM_STEER_ROLLBACK, m->service_ip, m->to_host,
                                                       m->src->host, &ignore) < 0);
        if (failed) {
                m->stranded = m->thaw_failed = true;
                fprintf(stderr, "fastmigd[%s]: %s: the rollback did not complete (%s); recovery takes it over\n",
                        m->src->host, m->name, ignore.msg);
        }
        fm_cancel_bind(group);
}

/* A phase: timed, reported when it ends well, the stage's end when not. */
#define STEP(p, ph, call)                                                 \
        do {                                                              \
                double t_ = fm_now_ms();                                  \
                int r_ = (call);                                          \
                (p)->m->phase_ms[ph] = fm_now_ms() - t_;                  \
                if (r_ < 0)                                               \
                        return r_;                                        \
                emit((p)->m, (p)->h, ph);                                 \
        } while (0)

/* While the service runs: plan, the early restore, the disk and memory
 * that can travel now, and everything the frozen window will need
 * connected and waiting. */
static int stage_live(pipeline *p)
{
        fm_migration *m = p->m;
        int r;
        /* before the target holds anything: a restarted agent asks it to
         * drop what it may have prepared */
        if ((r = journal(m, FM_JOURNAL_PLANNED)) < 0)
                return r;
        STEP(p, FM_PHASE_PLAN, phase_plan(m));
        undo_push(p, undo_target);
        /* its traffic reaches it here before anything moves (a route left
         * elsewhere by hand or by an older failure) */
        if ((r = fm_mig_steer(m->src, FM_STEER_SOURCE, m->service_ip, NULL, m->src->host, &m->err)) < 0)
                return fm_err_wrap(&m->err, "steering %s's traffic to %s", m->name, m->src->host);
        m->early_restore = m->src->criu_path_env[0] && m->target_early_restore;
        m->lazy = m->early_restore && m->target_lazy &&
                  (m->want_lazy > 0 || (m->want_lazy < 0 && container_rss(m) >= FM_LAZY_MIN_BYTES));
        /* the frozen dump leaves the memory where it is when the target's
         * daemon can take it from there (and pre-copy has sent most of it) */
        m->lazy_dump = m->lazy && m->precopy && m->target_lazy_dump && m->want_lazy_dump != 0 &&
                       fm_page_server_fits(m->src->images);
        fm_error ignore = {0};
        m->have_port = fm_ct_port_get(m->src->lxcpath, m->name, &m->port, &ignore) == 0;
        if (m->own_net && !m->have_port) /* its traffic is cut by the veth's detach, nothing else */
                return fm_err(&m->err, ENODEV, "%s: %s", m->name, ignore.msg);
        /* The target's LXC starts its restore now and waits, in fm-criu-wrap,
         * for the images: its start-up (tens of ms, longer than a small
         * container's dump) then never delays the restore. A container
         * whose pre-copy may outlast the target's wait (FM_EARLY_WAIT_S)
         * asks for it as the dump starts instead. */
        p->early = m->early_restore;
        uint64_t rss = container_rss(m);
        p->early_now = p->early && rss <= FM_EARLY_RESTORE_MAX_BYTES;
        if (p->early_now) {
                if ((r = restore_start(m, &p->rj)) < 0)
                        return r;
                undo_push(p, undo_restore);
        }
        pause_at(m, "planned");
        clock_gettime(CLOCK_REALTIME, &m->disk_live_start);
        undo_push(p, undo_images_job);
        STEP(p, FM_PHASE_DISK_LIVE, disk_live(m, &p->ij));
        /* The final sync's rsync connects while the service runs (a tree
         * that stays on the shared volume has none): beside pre-copy for a
         * container whose pre-copy is short (the target's rsync waits at
         * most FM_RSYNC_IO_TIMEOUT_S for its list), after it for the others. */
        p->final = !(m->strategy == FM_STRATEGY_SHARED && !m->moving_tree);
        bool final_now = p->final && rss <= FM_FINAL_SYNC_EARLY_MAX_BYTES;
        undo_push(p, undo_final_sync);
        if (final_now && (r = final_sync_start(m, &p->fs)) < 0)
                return r;
        if (m->precopy || m->compress) {
                if (fm_hashset_init(&p->held, 1024) < 0)
                        return fm_err(&m->err, ENOMEM, "out of memory");
                STEP(p, FM_PHASE_PRECOPY, phase_precopy(m, &p->held, p->h));
        }
        if (p->final && !final_now && (r = final_sync_start(m, &p->fs)) < 0)
                return r;
        if ((r = final_sync_connected(m, &p->fs)) < 0 || (r = restore_alive(m, &p->rj)) < 0)
                return r;
        if ((r = hold(m, &p->held, p->h)) < 0)
                return r;
        if (m->lazy_dump) {
                undo_push(p, undo_lazy);
                if ((r = lazy_open(m, &p->held, &p->lj)) < 0)
                        return r;
        }
        return 0;
}

/* When fm-criu-wrap asked for the freeze (FM_FREEZE_MARK), in fm_now_ms()
 * terms, and how long it waited for FASTMIG_FREEZE_AT first (*waited_ms,
 * -1 when unknown); seen_ms, our poll's sighting of it, when the mark is
 * missing or outside [dump_ms, seen_ms]. */
static double freeze_asked(fm_migration *m, double dump_ms, double seen_ms, double *waited_ms)
{
        *waited_ms = -1;
        char img[600], path[700];
        src_images(m, img, sizeof(img));
        snprintf(path, sizeof(path), "%s/" FM_FREEZE_MARK, img);
        _cleanup_free_ char *txt = NULL;
        if (fm_read_file(path, &txt, 64) < 0)
                return seen_ms;
        unsigned long long ns = 0, wait_ns = 0;
        char extra;
        int got = sscanf(txt, "%llu %llu %c", &ns, &wait_ns, &extra);
        if (got != 1 && got != 2) /* one field: a wrap that never waits */
                return seen_ms;
        double at = (double)ns / 1e6, waited = (double)wait_ns / 1e6;
        if (at < dump_ms || at > seen_ms || waited > at - dump_ms)
                return seen_ms;
        *waited_ms = waited;
        return at;
}

/* Frozen: the dump, what travels beside it, and the target's restore. */
static int stage_frozen(pipeline *p)
{
        fm_migration *m = p->m;
        const fm_mig_hooks *h = p->h;
        int r;
        /* from here the target may come to run it: a restarted agent thaws
         * this copy only once the target has dropped its own */
        if ((r = journal(m, FM_JOURNAL_FROZEN)) < 0)
                return r;
        silence_start(m, &p->watch);
        p->t_freeze = fm_now_ms();
        atomic_store(&p->ij.freezing, true);
        if (m->strategy == FM_STRATEGY_SHARED && m->src->test_hooks && !strcmp(m->inject, "storage_cut"))
                cut_storage(m);
        /* from here a rollback thaws (harmless if never frozen), and only
         * then removes the dump's images */
        m->frozen = true;
        undo_push(p, undo_images_dir);
        undo_push(p, undo_freeze);
        /* With fm-criu-wrap the freeze happens inside the dump, once
         * lxc-checkpoint has started; without it, here. */
        if (!m->src->criu_path_env[0])
                STEP(p, FM_PHASE_FREEZE, phase_freeze(m));
        if (!m->src->criu_path_env[0] && m->strategy == FM_STRATEGY_SHARED)
                STEP(p, FM_PHASE_DISK_FINAL, shared_flush(m));
        frozen_job fj;
        transfer_job tj = {0};
        if ((r = images_fresh(m)) < 0 || (r = transfer_start(m, &p->held, &tj)) < 0)
                return r;
        if ((r = frozen_start(m, h, &p->fs, &fj)) < 0) {
                transfer_join(m, &tj, r);
                return r;
        }
        if (p->early && !p->early_now && (r = restore_start(m, &p->rj)) < 0) { /* undo_freeze releases it */
                frozen_join(m, &fj);
                transfer_join(m, &tj, r);
                return r;
        }
        double t_dump = fm_now_ms();
        dump_out dout = {0};
        r = m->lazy_dump ? lazy_dump(m, &p->lj) : phase_dump(m, NULL, &m->err, &dout);
        dump_apply(m, &dout);
        double t_dumped = fm_now_ms();
        int rd = frozen_join(m, &fj);
        pause_at(m, "frozen");
        int rt = transfer_join(m, &tj, r < 0 || rd < 0 ? -1 : 0);
        m->phase_ms[FM_PHASE_TRANSFER] = tj.job.done_at > t_dumped ? tj.job.done_at - t_dumped : 0;
        if (m->src->criu_path_env[0] && fj.frozen_at > 0) {
                double waited;
                p->t_freeze = freeze_asked(m, t_dump, fj.frozen_at, &waited);
                /* the freeze phase: the dump's start-up, without its wait for the moment */
                m->phase_ms[FM_PHASE_FREEZE] = fj.frozen_at - t_dump - (waited > 0 ? waited : 0);
                m->phase_ms[FM_PHASE_DUMP] = t_dumped - fj.frozen_at;
                if (waited >= 0) {
                        m->held_ms += waited;
                        startup_note(p->t_freeze - waited - (m->ready_ms > 0 ? m->ready_ms : t_dump));
                }
        } else {
                m->phase_ms[FM_PHASE_DUMP] = t_dumped - t_dump;
        }
        /* the images' tail, if they still travelled at the freeze */
        bool tail = fm_job_running(&p->ij.job);
        int ri = images_join(m, &p->ij);
        if (tail) {
                m->disk_tail_ms = p->ij.job.done_at > p->t_freeze ? p->ij.job.done_at - p->t_freeze : 0;
                m->disk_wait_ms = p->ij.job.done_at > tj.job.done_at ? p->ij.job.done_at - tj.job.done_at : 0;
        }
        if (r < 0 || rd < 0 || rt < 0 || ri < 0)
                return r < 0 ? r : rd < 0 ? rd : rt < 0 ? rt : ri;
        if (m->lazy_dump) /* the images' stream is done with held */
                lazy_set(&p->lj, &p->lj.go);
        emit(m, h, FM_PHASE_FREEZE);
        emit(m, h, FM_PHASE_DUMP);
        emit(m, h, FM_PHASE_DISK_FINAL);
        emit(m, h, FM_PHASE_TRANSFER);
        if (p->early) {
                /* restore = from the images being complete to the target running */
                double t = fm_now_ms();
                r = restore_join(m, &p->rj, false);
                m->phase_ms[FM_PHASE_RESTORE] = (p->rj.job.done_at > t ? p->rj.job.done_at : t) - t;
                p->target_programs = p->rj.programs;
                p->rj.programs = NULL;
                if (r < 0)
                        return r;
                emit(m, h, FM_PHASE_RESTORE);
        } else {
                STEP(p, FM_PHASE_RESTORE, phase_restore(m, &p->target_programs));
        }
        m->frozen_ms = fm_now_ms() - p->t_freeze;
        m->restored_at_ms = fm_wall_ms();
        return 0;
}

/* The target runs it: traffic moves, its memory settles, the source copy
 * goes. */
static int stage_commit(pipeline *p)
{
        fm_migration *m = p->m;
        /* nothing changed while it waited: its empty list now, so that its
         * exchange runs beside the commit and cleanup (joined at the end) */
        final_sync_send(&p->fs, NULL);
        pause_at(m, "restored");
        STEP(p, FM_PHASE_STEER, phase_steer(m, p->h));
        if (m->lazy)
                STEP(p, FM_PHASE_SETTLE, phase_settle(m, &p->lj));
        /* The commit: the target runs it, with all its memory, and its
         * traffic goes there. Recorded before the source copy goes; a
         * restarted agent finishes it from here. */
        /* a target that fell silent meanwhile is given up, not committed to */
        int r = silence_stop(m, &p->watch);
        if (r < 0 || (r = journal(m, FM_JOURNAL_COMMITTED)) < 0)
                return r;
        m->committed = true;
        fm_lease_commit(m->name); /* the target's copy runs for good */
        pause_at(m, "committed");
        STEP(p, FM_PHASE_CLEANUP, (phase_cleanup(m), 0));
        p->nundo = 0; /* the source copy is gone: nothing to take back */
        final_sync_finish(&p->fs, NULL);
        /* the window's account, once nothing waits for it */
        frozen_programs(m, p->t_freeze, p->t_freeze + m->frozen_ms, p->target_programs);
        p->target_programs = NULL;
        return 0;
}
#undef STEP

int fm_migrate_run(fm_migration *m, const fm_mig_hooks *h)
{
        pipeline p = {.m = m, .h = h, .t0 = fm_now_ms()};
        if (!m->id[0])
                fm_journal_new_id(m->id);
        m->started_wall = (int64_t)time(NULL);
        /* every connection and child from here is this migration's */
        m->cancel = fm_cancel_new();
        fm_cancel_bind(m->cancel);
        int r = fm_lease_open(m->name, m->to_host) < 0
                        ? fm_err(&m->err, ENOSPC, "too many migrations under way on %s", m->src->host)
                        : stage_live(&p);
        if (r == 0)
                r = stage_frozen(&p);
        if (r == 0)
                r = stage_commit(&p);
        if (r < 0) {
                if (atomic_load(&m->target_silent)) /* what failed first failed because of it */
                        fm_err(&m->err, ETIMEDOUT, "%s fell silent: it asked for no lease in %d s", m->to_host,
                               FM_LEASE_MS / 1000);
                fm_error keep = m->err; /* the undos' own errors are not the migration's */
                /* the undos abort the target, which then stops asking for
                 * its lease: the watch ends here (each abort has its own
                 * bound), unless it fired already */
                atomic_store(&p.watch.stop, true);
                fm_job_join(&p.watch.job);
                if (p.t_freeze > 0)
                        m->frozen_ms = fm_now_ms() - p.t_freeze;
                while (p.nundo > 0)
                        p.undo[--p.nundo](&p);
                /* a refusal before anything was touched is not a rollback */
                bool thawed = !m->thaw_failed && (!m->stranded || m->abort_pending);
                m->rolled_back = thawed && (m->prepared || m->frozen || m->restored);
                m->err = keep;
                if (m->thaw_failed)
                        fm_err_wrap(&m->err, "%s's rollback on %s did not complete (its log says why); the agent "
                                             "keeps retrying it (docs/RECOVERY.md)",
                                    m->name, m->src->host);
                else if (m->abort_pending)
                        fm_err_wrap(&m->err, "%s runs on %s again; %s did not confirm it dropped its copy, which its "
                                             "lapsed lease has fenced (frozen, off its bridge): the agent keeps asking "
                                             "%s to remove it (docs/RECOVERY.md)",
                                    m->name, m->src->host, m->to_host, m->to_host);
                else if (m->stranded)
                        fm_err_wrap(&m->err, "%s stays frozen on %s until %s confirms it runs no copy and the "
                                             "rollback completes (the agent keeps trying; docs/RECOVERY.md)",
                                    m->name, m->src->host, m->to_host);
        }
        fm_lease_close(m->name);
        atomic_store(&p.watch.stop, true); /* (after a failure: still running) */
        fm_job_join(&p.watch.job);
        fm_cancel_bind(NULL);
        fm_cancel_free(m->cancel);
        m->cancel = NULL;
        /* over, either way, unless recovery holds it */
        if (!m->stranded && m->src->state)
                fm_journal_remove(m->src->state, m->name);
        m->ok = r == 0;
        json_object_put(p.target_programs);
        json_object_put(p.rj.programs);
        fm_hashset_free(&p.held);
        fm_tree_watch_free(m->tree_watch);
        m->tree_watch = NULL;
        m->total_ms = fm_now_ms() - p.t0;
        return r;
}

json_object *fm_migration_report(const fm_migration *m)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "container", json_object_new_string(m->name));
        json_object_object_add(o, "from", json_object_new_string(m->src->host));
        json_object_object_add(o, "to", json_object_new_string(m->to_host));
        json_object_object_add(o, "service_ip", json_object_new_string(m->service_ip));
        json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
        json_object_object_add(o, "rolled_back", json_object_new_boolean(m->rolled_back));
        json_object_object_add(o, "error", m->ok ? NULL : json_object_new_string(m->err.msg));
        json_object_object_add(o, "frozen_ms", json_object_new_double(m->frozen_ms));
        json_object_object_add(o, "total_ms", json_object_new_double(m->total_ms));
        json_object *ph = json_object_new_object();
        for (int p = 0; p < FM_PHASE_COUNT; p++)
                json_object_object_add(ph, fm_phase_name(p), json_object_new_double(m->phase_ms[p]));
        json_object_object_add(o, "phases", ph);
        json_object_object_add(o, "strategy", json_object_new_string(fm_strategy_name(m->strategy)));
        json_object_object_add(o, "decided_by", m->prepared ? json_object_new_int(m->decided_by) : NULL);
        json_object *lt = NULL;
        if (m->have_latency) {
                lt = json_object_new_object();
                json_object_object_add(lt, "p50_ms", json_object_new_double(m->latency.p50_ms));
                json_object_object_add(lt, "p99_ms", json_object_new_double(m->latency.p99_ms));
                json_object_object_add(lt, "max_ms", json_object_new_double(m->latency.max_ms));
                json_object_object_add(lt, "ms", json_object_new_double(m->latency.total_ms));
                json_object_object_add(lt, "ops", json_object_new_int(m->latency.ops));
                json_object_object_add(lt, "tolerance_ms", json_object_new_double(m->latency_tolerance_ms > 0
                                                                                          ? m->latency_tolerance_ms
                                                                                          : FM_SHARED_TOLERANCE_MS));
                json_object_object_add(lt, "passed", json_object_new_boolean(m->prepared && m->strategy == FM_STRATEGY_SHARED));
        }
        json_object_object_add(o, "latency_test", lt);
        if (m->shared && !m->moving_tree)
                json_object_object_add(o, "flushed_files", json_object_new_int(m->flushed_files));
        if (m->shared) { /* did the tree leave the volume (or, failed, would it have), and how its last changes were found */
                json_object_object_add(o, "tree_moved", json_object_new_boolean(m->moving_tree));
                json_object_object_add(o, "tree_changes_by", m->tree_changes_by
                                                                     ? json_object_new_string(m->tree_changes_by)
                                                                     : NULL);
        }
        json_object_object_add(o, "fallback", m->fallback[0] ? json_object_new_string(m->fallback) : NULL);
        json_object *bd = json_object_new_object();
        json_object_object_add(bd, "base", json_object_new_int64((int64_t)m->bytes_base));
        json_object_object_add(bd, "app", json_object_new_int64((int64_t)m->bytes_app));
        json_object_object_add(bd, m->is_clone ? "upper" : "rootfs", json_object_new_int64((int64_t)m->bytes_own));
        json_object_object_add(bd, "total", json_object_new_int64((int64_t)(m->bytes_base + m->bytes_app + m->bytes_own)));
        json_object_object_add(o, "bytes_disk", bd);
        json_object_object_add(o, "disk_tail_ms", json_object_new_double(m->disk_tail_ms));
        json_object_object_add(o, "held_ms", m->freeze_at_ms > 0 ? json_object_new_double(m->held_ms) : NULL);
        json_object_object_add(o, "freeze_at", m->freeze_at_ms > 0 ? json_object_new_int64(m->freeze_at_ms) : NULL);
        json_object_object_add(o, "freeze_lead_ms", m->freeze_pin_ms > 0 ? json_object_new_int64(m->freeze_lead_ms) : NULL);
        json_object_object_add(o, "restored_at", m->restored_at_ms ? json_object_new_int64(m->restored_at_ms) : NULL);
        json_object_object_add(o, "disk_wait_ms", json_object_new_double(m->disk_wait_ms));
        json_object_object_add(o, "bytes_memory", json_object_new_int64((int64_t)m->bytes_memory));
        json_object_object_add(o, "criu", fm_criu_stats_json(&m->criu));
        /* who kept the network namespace: fastmig (outside CRIU's images) or LXC (dumped by CRIU) */
        json_object_object_add(o, "netns", json_object_new_string(m->own_net ? "fastmig" : "lxc"));
        json_object_object_add(o, "frozen_programs", json_object_get(m->frozen_programs));
        json_object_object_add(o, "mode", json_object_new_string(m->precopy ? "precopy" : "stopcopy"));
        json_object_object_add(o, "restore", json_object_new_string(m->lazy ? "lazy" : "eager"));
        json_object_object_add(o, "dump", json_object_new_string(m->lazy_dump ? "lazy" : "full"));
        json_object_object_add(o, "lazy_pages", m->lazy_dump ? json_object_new_int64((int64_t)m->lazy_pages) : NULL);
        json_object_object_add(o, "tracker", json_object_new_string(m->precopy ? "hash" : "none"));
        json_object_object_add(o, "stop_rule", m->stop_rule ? json_object_new_string(m->stop_rule) : NULL);
        json_object *rounds = json_object_new_array();
        for (int i = 0; i < m->nrounds; i++) {
                json_object *r = json_object_new_object();
                json_object_object_add(r, "pages_scanned", json_object_new_int64((int64_t)m->rounds[i].pages_scanned));
                json_object_object_add(r, "pages_sent", json_object_new_int64((int64_t)m->rounds[i].pages_sent));
                json_object_object_add(r, "bytes", json_object_new_int64((int64_t)m->rounds[i].bytes));
                json_object_object_add(r, "ms", json_object_new_double(m->rounds[i].ms));
                json_object_array_add(rounds, r);
        }
        json_object_object_add(o, "rounds", rounds);
        bool paged = m->precopy || m->compress;
        uint64_t wire = paged ? m->final_bytes : m->bytes_memory;
        for (int i = 0; i < m->nrounds; i++)
                wire += m->rounds[i].bytes;
        json_object_object_add(o, "bytes_wire", json_object_new_int64((int64_t)wire));
        json_object_object_add(o, "compress", json_object_new_string(m->compress ? "lz4" : "none"));
        json_object_object_add(o, "final_pages", paged ? json_object_new_int64((int64_t)m->final_pages) : NULL);
        json_object_object_add(o, "final_bytes", paged ? json_object_new_int64((int64_t)m->final_bytes) : NULL);
        return o;
}
