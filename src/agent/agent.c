#include "agent.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/hostcheck.h"
#include "fleet/fleet.h"
#include "image/push.h"
#include "lxc/container.h"
#include "lxc/ctnet.h"
#include "memory/pagestore.h"
#include "migrate/journal.h"
#include "migrate/lease.h"
#include "migrate/recover.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "transfer/files.h"
#include "transfer/tree.h"
#include "workload/workload.h"

/* Containers with a migration under way on this agent (source or target). */
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static char busy[64][64];

static bool busy_take(const char *name)
{
        pthread_mutex_lock(&busy_lock);
        int free_slot = -1;
        bool taken = false;
        for (int i = 0; i < 64; i++) {
                if (!strcmp(busy[i], name))
                        taken = true;
                else if (!busy[i][0] && free_slot < 0)
                        free_slot = i;
        }
        bool ok = !taken && free_slot >= 0;
        if (ok)
                snprintf(busy[free_slot], sizeof(busy[0]), "%s", name);
        pthread_mutex_unlock(&busy_lock);
        return ok;
}

static void busy_release(const char *name)
{
        pthread_mutex_lock(&busy_lock);
        for (int i = 0; i < 64; i++)
                if (!strcmp(busy[i], name))
                        busy[i][0] = '\0';
        pthread_mutex_unlock(&busy_lock);
}

typedef struct req_ctx {
        fm_agent *a;
        int fd;
        fm_tls_peer_id peer; /* who sent the request: its certificate's name and role */
        json_object *req;
        json_object *reply; /* handlers add fields to it on success */
        bool replied;       /* the handler sent it (a stream followed) */
        fm_error err;
} req_ctx;

static int need_name(req_ctx *c, const char **name)
{
        int r = fm_json_str(c->req, "name", true, 63, name, &c->err);
        if (r == 0 && !fm_name_is_valid(*name))
                r = fm_err(&c->err, EINVAL, "bad container name `%s'", *name);
        return r;
}

/* name, and the optional test-hook "inject" */
static int need_name_inject(req_ctx *c, const char **name, const char **inject)
{
        *inject = NULL;
        int r = need_name(c, name);
        return r < 0 ? r : fm_json_str(c->req, "inject", false, 31, inject, &c->err);
}

/* The name of a container this peer's migration is bringing here, and,
 * when inject is not NULL, the optional test hook. */
static int need_incoming(req_ctx *c, const char **name, const char **inject)
{
        int r = inject ? need_name_inject(c, name, inject) : need_name(c, name);
        return r < 0 ? r : fm_target_check_owner(&c->a->paths, *name, c->peer.name, &c->err);
}

static json_object *info_json(const fm_agent *a, const char *name, const fm_ct_info *i)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "host", json_object_new_string(a->paths.host));
        json_object_object_add(o, "state", json_object_new_string(i->state));
        json_object_object_add(o, "ipv4", json_object_new_string(i->ipv4));
        return o;
}

static int op_ping(req_ctx *c)
{
        json_object_object_add(c->reply, "host", json_object_new_string(c->a->paths.host));
        json_object_object_add(c->reply, "lxcpath", json_object_new_string(c->a->paths.lxcpath));
        return 0;
}

static int op_list(req_ctx *c)
{
        json_object *arr = json_object_new_array();
        DIR *d = opendir(c->a->paths.lxcpath);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        fm_ct_info i;
                        if (de->d_name[0] == '.' || !fm_name_is_valid(de->d_name))
                                continue;
                        if (fm_ct_info_get(c->a->paths.lxcpath, de->d_name, &i, NULL) == 0 && i.defined)
                                json_object_array_add(arr, info_json(c->a, de->d_name, &i));
                }
                closedir(d);
        }
        json_object_object_add(c->reply, "containers", arr);
        /* migrations this host's agent still owns (running, or left to
         * its recovery): an orchestrator waits for them to end */
        char names[64][FM_NAME_MAX + 1];
        int n = fm_journal_list(c->a->paths.state, names, 64, NULL);
        json_object *mig = json_object_new_array();
        for (int i = 0; i < n; i++)
                json_object_array_add(mig, json_object_new_string(names[i]));
        json_object_object_add(c->reply, "migrating", mig);
        return 0;
}

static int op_info(req_ctx *c)
{
        const char *name;
        fm_ct_info i;
        int r = need_name(c, &name);
        if (r == 0)
                r = fm_ct_info_get(c->a->paths.lxcpath, name, &i, &c->err);
        if (r < 0)
                return r;
        if (!i.defined)
                return fm_err(&c->err, ENOENT, "no container %s on %s", name, c->a->paths.host);
        json_object_object_add(c->reply, "container", info_json(c->a, name, &i));
        fm_error ce = {0};
        bool ok = fm_ct_check_migratable(c->a->paths.lxcpath, name, &ce) == 0;
        json_object_object_add(c->reply, "migratable", json_object_new_boolean(ok));
        if (!ok)
                json_object_object_add(c->reply, "why_not", json_object_new_string(ce.msg));
        /* how busy this host is: its run queue (1-min load average) per CPU */
        double load = 0;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (getloadavg(&load, 1) == 1 && cpus > 0)
                json_object_object_add(c->reply, "load_per_cpu", json_object_new_double(load / (double)cpus));
        /* asked ("sizes": true): what a migration of it moves, memory, its
         * own tree, its images (an orchestrator's estimate and placement) */
        if (!fm_json_bool(c->req, "sizes", false))
                return 0;
        uint64_t mem = 0, own = 0;
        if (i.running && fm_ct_memory_bytes(c->a->paths.lxcpath, name, &mem, NULL) == 0)
                json_object_object_add(c->reply, "memory_bytes", json_object_new_int64((int64_t)mem));
        fm_clone cl;
        bool clone = fm_clone_read(c->a->paths.lxcpath, name, &cl, NULL) == 0;
        char own_dir[600];
        snprintf(own_dir, sizeof(own_dir), "%s/%s/%s", c->a->paths.lxcpath, name, clone ? "upper" : "rootfs");
        if (fm_tree_size(clone ? own_dir : i.rootfs, &own, NULL) == 0)
                json_object_object_add(c->reply, "own_bytes", json_object_new_int64((int64_t)own));
        if (clone)
                json_object_object_add(c->reply, "clone", fm_clone_json(&cl));
        return 0;
}

static double json_num(json_object *o, const char *key)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return -1;
        return json_object_get_double(v);
}

/* A workload's network from the request: its address, prefix and the
 * services' gateway; the bridge is this host's (--bridge) or the request's. */
static int need_net(req_ctx *c, fm_ct_net *net)
{
        const char *bridge = NULL;
        int64_t prefix = 24;
        int r = fm_json_str(c->req, "ipv4", true, 15, &net->ip, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "gateway", true, 15, &net->gateway, &c->err);
        if (r == 0)
                r = fm_json_int(c->req, "prefix", false, 8, 30, &prefix, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "bridge", false, 15, &bridge, &c->err);
        if (r < 0)
                return r;
        struct in_addr a;
        if (inet_pton(AF_INET, net->ip, &a) != 1 || inet_pton(AF_INET, net->gateway, &a) != 1)
                return fm_err(&c->err, EINVAL, "bad address `%s' or gateway `%s'", net->ip, net->gateway);
        net->prefix = (int)prefix;
        net->plain_lxc = fm_json_bool(c->req, "plain_lxc", false);
        net->bridge = c->a->paths.bridge[0] ? c->a->paths.bridge : bridge;
        if (!net->bridge || !fm_name_is_valid(net->bridge))
                return fm_err(&c->err, EINVAL, "no bridge for the workload's veth (fastmigd --bridge, or `bridge')");
        return 0;
}

static int op_create_workload(req_ctx *c)
{
        const char *name, *kind;
        fm_ct_net net;
        int r = need_name(c, &name);
        if (r == 0)
                r = need_net(c, &net);
        if (r == 0)
                r = fm_json_str(c->req, "kind", true, 16, &kind, &c->err);
        if (r < 0)
                return r;
        fm_workload_spec w = {.kind = kind, .mem_mib = json_num(c->req, "mem_mib"),
                              .dirty_mib_s = json_num(c->req, "dirty_mib_s")};
        if ((r = fm_json_str(c->req, "fill", false, 16, &w.fill, &c->err)) < 0)
                return r;
        if (fm_workload_is_clone(kind)) {
                fm_image app;
                const char *ref = kind;
                if ((r = fm_json_str(c->req, "image", false, FM_DIGEST_HEX - 1, &ref, &c->err)) < 0)
                        return r;
                if ((r = fm_image_find(c->a->paths.store, ref ? ref : kind, &app, &c->err)) < 0)
                        return fm_err_wrap(&c->err, "build it first: fastmig image build %s --host %s", kind,
                                           c->a->paths.host);
                bool shared = fm_json_bool(c->req, "shared", false);
                if (shared && !c->a->paths.shared.path[0])
                        return fm_err(&c->err, ENOENT, "%s mounts no shared volume (fastmigd --shared DIR)",
                                      c->a->paths.host);
                r = fm_workload_create_clone(c->a->paths.lxcpath, c->a->paths.store, name, &net, &app,
                                             fm_json_bool(c->req, "flat", false),
                                             shared ? c->a->paths.shared.path : NULL, &c->err);
        } else {
                r = fm_workload_create(c->a->paths.lxcpath, name, &net, c->a->seqecho_path, &w, &c->err);
        }
        if (r < 0)
                return r;
        if ((r = fm_ct_start(c->a->paths.lxcpath, name, &c->err)) < 0) {
                fm_workload_destroy(c->a->paths.lxcpath, c->a->paths.shared.path, name, NULL);
                return r;
        }
        return 0;
}

static int op_start(req_ctx *c)
{
        const char *name;
        int r = need_name(c, &name);
        return r < 0 ? r : fm_ct_start(c->a->paths.lxcpath, name, &c->err);
}

static int op_destroy(req_ctx *c)
{
        const char *name;
        int r = need_name(c, &name);
        if (r < 0)
                return r;
        if (!busy_take(name))
                return fm_err(&c->err, EBUSY, "container %s is being migrated", name);
        r = fm_workload_destroy(c->a->paths.lxcpath, c->a->paths.shared.path, name, &c->err);
        busy_release(name);
        return r;
}

/* The shared volume this host mounts, and the latency test on it. */
static json_object *latency_json(const fm_latency *l)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "p50_ms", json_object_new_double(l->p50_ms));
        json_object_object_add(o, "p99_ms", json_object_new_double(l->p99_ms));
        json_object_object_add(o, "max_ms", json_object_new_double(l->max_ms));
        json_object_object_add(o, "ops", json_object_new_int(l->ops));
        json_object_object_add(o, "ms", json_object_new_double(l->total_ms));
        return o;
}

static int op_storage(req_ctx *c)
{
        const fm_shared_volume *v = &c->a->paths.shared;
        if (!v->path[0])
                return fm_err(&c->err, ENOENT, "%s mounts no shared volume (fastmigd --shared DIR)", c->a->paths.host);
        json_object_object_add(c->reply, "path", json_object_new_string(v->path));
        json_object_object_add(c->reply, "fstype", json_object_new_string(v->fstype));
        json_object_object_add(c->reply, "volume", json_object_new_string(v->id));
        if (!fm_json_bool(c->req, "probe", false))
                return 0;
        fm_latency l;
        int r = fm_shared_latency(v->path, FM_SHARED_PROBE_OPS, FM_SHARED_PROBE_DEADLINE_MS, &l, &c->err);
        json_object_object_add(c->reply, "latency_test", latency_json(&l));
        return r;
}

/* ---- source side of a migration ---- */

typedef struct mig_link {
        req_ctx *c;
        bool broken;
        pthread_mutex_t lock; /* events come from the pipeline's threads too */
} mig_link;

static void mig_event(void *data, json_object *ev)
{
        mig_link *l = data;
        pthread_mutex_lock(&l->lock);
        if (!l->broken && fm_msg_send(l->c->fd, FM_FRAME_EVENT, ev) < 0)
                l->broken = true;
        pthread_mutex_unlock(&l->lock);
}

/* The orchestrator's fleet and this agent's must steer alike: the agent
 * steers the migration's traffic (docs/RECOVERY.md). A request that names
 * neither is an older client's, taken as it is. */
static int steering_agrees(req_ctx *c)
{
        const char *kind = NULL, *fleet = NULL;
        int r = fm_json_str(c->req, "steering", false, 16, &kind, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "fleet", false, 63, &fleet, &c->err);
        if (r < 0 || !kind)
                return r;
        const fm_fleet *f = c->a->paths.fleet;
        const char *mine = f ? fm_steer_kind_name(f->steer.kind) : "garp";
        if (strcmp(kind, mine))
                return fm_err(&c->err, EINVAL, "the agent of %s steers by %s (%s), the orchestrator's fleet by %s: "
                              "start the agent with the fleet's file (fastmigd --fleet FILE)", c->a->paths.host, mine,
                              f ? f->name : "it has no --fleet", kind);
        if (f && fleet && strcmp(fleet, f->name))
                return fm_err(&c->err, EINVAL, "the agent of %s serves the fleet %s, not %s", c->a->paths.host,
                              f->name, fleet);
        return 0;
}

static int to_host_known(req_ctx *c, const char *host)
{
        const fm_fleet *f = c->a->paths.fleet;
        if (f && !fm_fleet_host(f, host)) {
                char names[256];
                fm_fleet_names(f, names, sizeof(names));
                return fm_err(&c->err, ENOENT, "%s is not a host of the fleet %s (%s)", host, f->name, names);
        }
        return 0;
}

/* ---- recovery: one thread per migration the journal holds ---- */

typedef struct recover_arg {
        fm_agent *a;
        char name[FM_NAME_MAX + 1];
} recover_arg;

static void *recover_thread(void *arg)
{
        recover_arg *ra = arg;
        const fm_host_paths *p = &ra->a->paths;
        char path[600];
        fm_journal_path(p->state, ra->name, path, sizeof(path));
        for (int delay_ms = 500;; delay_ms = delay_ms < FM_RECOVER_RETRY_MAX_MS / 2 ? delay_ms * 2 : FM_RECOVER_RETRY_MAX_MS) {
                fm_journal_rec r;
                fm_error e = {0};
                if (fm_journal_read(path, &r, &e) < 0) {
                        /* unreadable: nobody can tell which copy is the
                         * service; the container stays as it is, refused
                         * to migrations, until an operator decides */
                        if (e.code != ENOENT)
                                fprintf(stderr, "fastmigd[%s]: recovery of %s: %s; left for an operator\n", p->host,
                                        ra->name, e.msg);
                        else
                                busy_release(ra->name);
                        break;
                }
                if (strcmp(r.name, ra->name)) {
                        fprintf(stderr, "fastmigd[%s]: recovery: %s holds a record of %s; left for an operator\n",
                                p->host, path, r.name);
                        break;
                }
                int q = fm_recover_one(p, &r, &e);
                if (q != -EAGAIN) {
                        if (q == 0) /* else the record stays, and so does the mark, for an operator */
                                busy_release(ra->name);
                        break;
                }
                usleep((useconds_t)delay_ms * 1000);
        }
        free(ra);
        return NULL;
}

/* name must be busy (busy_take) already; the thread releases it. */
void fm_agent_recover(fm_agent *a, const char *name)
{
        recover_arg *ra = calloc(1, sizeof(*ra));
        pthread_t t;
        pthread_attr_t at;
        if (ra) {
                ra->a = a;
                snprintf(ra->name, sizeof(ra->name), "%s", name);
        }
        if (!ra || pthread_attr_init(&at) != 0) {
                free(ra);
                fprintf(stderr, "fastmigd[%s]: cannot start the recovery of %s (restart the agent)\n", a->paths.host, name);
                return;
        }
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, recover_thread, ra) != 0) {
                free(ra);
                fprintf(stderr, "fastmigd[%s]: cannot start the recovery of %s (restart the agent)\n", a->paths.host, name);
        }
        pthread_attr_destroy(&at);
}

/* ---- upkeep: what abandoned migrations leave lapses (fm_target_expire) ---- */

static bool busy_has(const char *name)
{
        pthread_mutex_lock(&busy_lock);
        bool has = false;
        for (int i = 0; i < 64 && !has; i++)
                has = !strcmp(busy[i], name);
        pthread_mutex_unlock(&busy_lock);
        return has;
}

/* a migration of it runs here, or an rsync writes into its directory */
static bool container_in_use(void *data, const char *name)
{
        fm_agent *a = data;
        if (busy_has(name))
                return true;
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/%s", a->paths.lxcpath, name);
        bool used = false;
        pthread_mutex_lock(&a->sessions_lock);
        for (int i = 0; i < FM_AGENT_MAX_CONNS && !used; i++) {
                const char *d = a->sessions[i].dir;
                used = a->sessions[i].pgid && fm_path_under(d, dir);
        }
        pthread_mutex_unlock(&a->sessions_lock);
        return used;
}

static void *upkeep_thread(void *arg)
{
        fm_agent *a = arg;
        for (;;) {
                sleep(FM_EXPIRE_EVERY_S);
                fm_target_expire(&a->paths, a->paths.stale_s, container_in_use, a);
                if (a->paths.shared.path[0])
                        fm_shared_sweep_probes(a->paths.shared.path, a->paths.stale_s);
        }
        return NULL;
}

/* the leases this host holds for copies migrations brought (lease.h) */
static void *lease_thread(void *arg)
{
        fm_agent *a = arg;
        for (;;) {
                usleep(FM_LEASE_RENEW_MS * 1000);
                fm_lease_renew_all(&a->paths);
        }
        return NULL;
}

void fm_agent_upkeep_start(fm_agent *a)
{
        pthread_t t;
        pthread_attr_t at;
        if (pthread_attr_init(&at) != 0)
                return;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, upkeep_thread, a) != 0)
                fprintf(stderr, "fastmigd[%s]: no upkeep thread: abandoned migrations will not lapse\n", a->paths.host);
        if (pthread_create(&t, &at, lease_thread, a) != 0)
                fprintf(stderr, "fastmigd[%s]: no lease thread: restored copies will be fenced\n", a->paths.host);
        pthread_attr_destroy(&at);
}

int fm_agent_recover_all(fm_agent *a, fm_error *e)
{
        char names[64][FM_NAME_MAX + 1];
        if (!a->paths.state)
                return 0;
        /* the images tmpfs first: nothing there is a live migration's now */
        int n = fm_journal_list(a->paths.state, names, 64, e);
        if (n < 0)
                return n;
        int swept = fm_recover_sweep_images(&a->paths, names, n);
        if (swept > 0)
                fprintf(stderr, "fastmigd[%s]: removed %d entr%s a dead agent left in %s\n", a->paths.host, swept,
                        swept == 1 ? "y" : "ies", a->paths.images);
        for (int i = 0; i < n; i++) {
                if (!busy_take(names[i]))
                        continue;
                fprintf(stderr, "fastmigd[%s]: an interrupted migration of %s: recovering it\n", a->paths.host, names[i]);
                fm_agent_recover(a, names[i]);
        }
        return n;
}

static int op_migrate(req_ctx *c)
{
        const char *name, *to, *to_host = NULL, *inject = NULL;
        int r = need_name(c, &name);
        if (r == 0)
                r = fm_json_str(c->req, "to", true, 64, &to, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "to_host", false, 31, &to_host, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "inject", false, 31, &inject, &c->err);
        if (r < 0)
                return r;
        fm_migration *m = calloc(1, sizeof(*m));
        if (!m)
                return fm_err(&c->err, ENOMEM, "out of memory");
        m->src = &c->a->paths;
        snprintf(m->name, sizeof(m->name), "%s", name);
        snprintf(m->to_host, sizeof(m->to_host), "%s", to_host ? to_host : to);
        snprintf(m->inject, sizeof(m->inject), "%s", inject ? inject : "");
        const char *mode = NULL, *restore = NULL, *compress = NULL, *strategy = NULL, *dump = NULL;
        int64_t max_rounds = 8, threshold = 1024; /* docs/PRECOPY.md: why */
        int64_t lead = FM_IMAGES_LEAD_MS;
        if ((r = fm_json_str(c->req, "compress", false, 16, &compress, &c->err)) < 0 ||
            (r = fm_json_str(c->req, "restore", false, 16, &restore, &c->err)) < 0 ||
            (r = fm_json_str(c->req, "dump", false, 16, &dump, &c->err)) < 0 ||
            (r = fm_json_str(c->req, "mode", false, 16, &mode, &c->err)) < 0 ||
            (r = fm_json_str(c->req, "strategy", false, 16, &strategy, &c->err)) < 0 ||
            (r = fm_json_int(c->req, "max_rounds", false, 1, FM_MAX_ROUNDS, &max_rounds, &c->err)) < 0 ||
            (r = fm_json_int(c->req, "images_lead_ms", false, 0, 10000, &lead, &c->err)) < 0 ||
            (r = fm_json_int(c->req, "freeze_at", false, 0, 4102444800000ll, &m->freeze_at_ms, &c->err)) < 0 ||
            (r = fm_json_int(c->req, "dirty_threshold", false, 0, 1ll << 40, &threshold, &c->err)) < 0)
                goto out;
        if (mode && strcmp(mode, "precopy") && strcmp(mode, "stopcopy")) {
                r = fm_err(&c->err, EINVAL, "unknown mode `%s' (stopcopy, precopy)", mode);
                goto out;
        }
        if (strategy && fm_strategy_parse(strategy, &m->want_strategy) < 0) {
                r = fm_err(&c->err, EINVAL, "unknown strategy `%s' (" FM_STRATEGY_NAMES ")", strategy);
                goto out;
        }
        if (restore && strcmp(restore, "lazy") && strcmp(restore, "eager") && strcmp(restore, "auto")) {
                r = fm_err(&c->err, EINVAL, "unknown restore `%s' (auto, lazy, eager)", restore);
                goto out;
        }
        m->want_lazy = !restore || !strcmp(restore, "auto") ? -1 : !strcmp(restore, "lazy");
        if (dump && strcmp(dump, "lazy") && strcmp(dump, "full") && strcmp(dump, "auto")) {
                r = fm_err(&c->err, EINVAL, "unknown dump `%s' (auto, lazy, full)", dump);
                goto out;
        }
        m->want_lazy_dump = !dump || !strcmp(dump, "auto") ? -1 : !strcmp(dump, "lazy");
        if (compress && strcmp(compress, "lz4") && strcmp(compress, "none")) {
                r = fm_err(&c->err, EINVAL, "unknown compress `%s' (lz4, none)", compress);
                goto out;
        }
        m->compress = !compress || !strcmp(compress, "lz4"); /* default: docs/PRECOPY.md */
        m->precopy = !mode || !strcmp(mode, "precopy");
        m->max_rounds = (int)max_rounds;
        m->images_lead_ms = (double)lead;
        m->dirty_threshold = (uint64_t)threshold;
        m->min_shrink = 0.9; /* docs/PRECOPY.md: why */
        m->may_move_tree = !fm_json_bool(c->req, "stay_shared", false);
        if ((r = fm_json_num(c->req, "min_shrink", false, 0.01, 1, &m->min_shrink, &c->err)) < 0)
                goto out;
        if ((r = fm_json_num(c->req, "storage_latency_ms", false, 0.001, 60000, &m->latency_tolerance_ms, &c->err)) < 0)
                goto out;
        if ((r = fm_parse_endpoint(to, m->to_addr, sizeof(m->to_addr), &m->to_port, &c->err)) < 0)
                goto out;
        if (!strcmp(m->to_addr, c->a->addr) && m->to_port == c->a->port) {
                r = fm_err(&c->err, EINVAL, "the target is this host (%s)", c->a->paths.host);
                goto out;
        }
        if (!fm_name_is_valid(m->to_host)) { /* the journal names the target by it */
                r = fm_err(&c->err, EINVAL, "bad or missing to_host `%s'", m->to_host);
                goto out;
        }
        if ((r = steering_agrees(c)) < 0 || (r = to_host_known(c, m->to_host)) < 0)
                goto out;
        char jpath[600];
        fm_journal_path(c->a->paths.state, name, jpath, sizeof(jpath));
        if (fm_path_exists(jpath)) {
                r = fm_err(&c->err, EBUSY, "an interrupted migration of %s is being recovered on %s (docs/RECOVERY.md)",
                           name, c->a->paths.host);
                goto out;
        }
        if (!busy_take(name)) {
                r = fm_err(&c->err, EBUSY, "container %s is already being migrated", name);
                goto out;
        }
        mig_link link = {.c = c, .lock = PTHREAD_MUTEX_INITIALIZER};
        fm_mig_hooks hooks = {.data = &link, .event = mig_event};
        r = fm_migrate_run(m, &hooks);
        if (m->stranded) /* recovery holds it (and the busy mark) from here */
                fm_agent_recover(c->a, name);
        else
                busy_release(name);
        json_object *rep = fm_migration_report(m);
        json_object_object_add(c->reply, "report", rep);
        if (r < 0)
                c->err = m->err;
        fm_migration_release(m);
out:
        free(m);
        return r;
}

/* ---- target side ---- */

static int op_prepare(req_ctx *c)
{
        const char *name, *want = NULL;
        fm_prepare_req q = {.peer = c->peer.name};
        int64_t base_b = 0, app_b = 0, own_b = 0;
        int r = need_name_inject(c, &name, &q.inject);
        if (r == 0)
                r = fm_json_str(c->req, "config", true, FM_JSON_MAX, &q.config, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "strategy", false, 16, &want, &c->err);
        if (r == 0 && want && fm_strategy_parse(want, &q.want) < 0)
                r = fm_err(&c->err, EINVAL, "unknown strategy `%s' (" FM_STRATEGY_NAMES ")", want);
        if (r == 0)
                r = fm_json_int(c->req, "base_bytes", false, 0, INT64_MAX, &base_b, &c->err);
        if (r == 0)
                r = fm_json_int(c->req, "app_bytes", false, 0, INT64_MAX, &app_b, &c->err);
        if (r == 0)
                r = fm_json_int(c->req, "own_bytes", false, 0, INT64_MAX, &own_b, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "shared_volume", false, FM_SHARED_ID_LEN, &q.shared_volume, &c->err);
        if (r == 0 && q.shared_volume)
                r = fm_json_str(c->req, "src_shared", true, 255, &q.src_shared, &c->err);
        q.move_tree = q.shared_volume && fm_json_bool(c->req, "move_tree", false);
        q.latency_tolerance_ms = FM_SHARED_TOLERANCE_MS;
        if (r == 0)
                r = fm_json_num(c->req, "storage_latency_ms", false, 0.001, 60000, &q.latency_tolerance_ms, &c->err);
        fm_clone cl;
        json_object *co = NULL;
        if (r == 0 && json_object_object_get_ex(c->req, "clone", &co) && co &&
            (r = fm_clone_from_json(co, &cl, &c->err)) == 0)
                q.clone = &cl;
        fm_ctnet net;
        json_object *no = NULL;
        if (r == 0 && json_object_object_get_ex(c->req, "net", &no) && no &&
            (r = fm_ctnet_from_json(no, &net, &c->err)) == 0)
                q.net = &net;
        if (r < 0)
                return r;
        q.base_bytes = (uint64_t)base_b;
        q.app_bytes = (uint64_t)app_b;
        q.own_bytes = (uint64_t)own_b;
        fm_prepare_out out = {0};
        r = fm_target_prepare(&c->a->paths, name, &q, &out, &c->err);
        if (out.have_latency) { /* also when it refuses: the figures say why */
                json_object *lt = latency_json(&out.latency);
                json_object_object_add(lt, "tolerance_ms", json_object_new_double(q.latency_tolerance_ms));
                json_object_object_add(lt, "passed", json_object_new_boolean(out.latency_passed));
                json_object_object_add(c->reply, "latency_test", lt);
        }
        if (r < 0 && out.can_move) /* auto: the source may move the tree instead */
                json_object_object_add(c->reply, "local_fallback", json_object_new_boolean(true));
        if (r < 0)
                return r;
        json_object_object_add(c->reply, "strategy", json_object_new_string(fm_strategy_name(out.strategy)));
        json_object_object_add(c->reply, "decided_by", json_object_new_int(out.decided_by));
        json_object_object_add(c->reply, "early_restore", json_object_new_boolean(c->a->paths.criu_path_env[0] != 0));
        json_object_object_add(c->reply, "lazy_restore", json_object_new_boolean(c->a->paths.lazy_restore));
        json_object_object_add(c->reply, "lazy_dump", json_object_new_boolean(fm_target_can_lazy_dump(&c->a->paths)));
        /* its copy runs only on the source's lease, fenced when it lapses */
        json_object_object_add(c->reply, "lease", json_object_new_boolean(fm_lease_enabled(&c->a->paths)));
        return 0;
}

static int op_put_images(req_ctx *c)
{
        const char *name, *inject;
        uint64_t bytes = 0;
        int r = need_incoming(c, &name, &inject);
        if (r == 0)
                r = fm_target_receive_images(&c->a->paths, name, inject, c->fd, &bytes, &c->err);
        if (r == 0)
                json_object_object_add(c->reply, "bytes", json_object_new_int64((int64_t)bytes));
        return r;
}

static int op_restore(req_ctx *c)
{
        const char *name, *inject;
        int r = need_incoming(c, &name, &inject);
        if (r < 0)
                return r;
        /* a source that counts on this host's fence to thaw without its word */
        if (fm_json_bool(c->req, "lease", false) && !fm_lease_enabled(&c->a->paths))
                return fm_err(&c->err, EOPNOTSUPP, "%s keeps no leases now (started without --fleet or fm-fence)",
                              c->a->paths.host);
        double t = fm_now_ms();
        fm_criu_stats st = {0};
        json_object *programs = NULL;
        r = fm_target_restore(&c->a->paths, name, inject, fm_json_bool(c->req, "early", false),
                              fm_json_bool(c->req, "lazy", false), fm_json_bool(c->req, "lazy_dump", false), &st,
                              &programs, &c->err);
        json_object_object_add(c->reply, "restore_ms", json_object_new_double(fm_now_ms() - t));
        if (programs) /* what this host started while the container was frozen */
                json_object_object_add(c->reply, "frozen_programs", programs);
        if (st.has_restore) {
                json_object *o = fm_criu_stats_json(&st), *rs = NULL;
                json_object_object_get_ex(o, "restore", &rs);
                json_object_object_add(c->reply, "criu_restore", json_object_get(rs));
                json_object_put(o);
        }
        return r;
}

static int op_settle(req_ctx *c)
{
        const char *name, *inject;
        int r = need_incoming(c, &name, &inject);
        if (r < 0)
                return r;
        double t = fm_now_ms();
        r = fm_target_settle(&c->a->paths, name, inject, &c->err);
        json_object_object_add(c->reply, "settle_ms", json_object_new_double(fm_now_ms() - t));
        return r;
}

/* The lazy final dump's pages: this agent is the page server of its
 * lazy-pages daemon and asks the source for each request. The reply comes
 * first (the socket is ready); the connection then carries the pages. */
static int op_lazy_pages(req_ctx *c)
{
        const char *name;
        int r = need_incoming(c, &name, NULL);
        if (r < 0)
                return r;
        int lfd = fm_target_page_server_open(&c->a->paths, name, &c->err);
        if (lfd < 0)
                return lfd;
        json_object *ok = fm_reply_ok();
        fm_msg_send(c->fd, FM_FRAME_REPLY, ok); /* if the source is gone, the run sees it */
        json_object_put(ok);
        c->replied = true;
        if (fm_target_page_server_run(&c->a->paths, name, lfd, c->fd, &c->err) < 0) /* its daemon, left without pages, fails the settle */
                fprintf(stderr, "fastmigd[%s]: lazy pages of %s: %s\n", c->a->paths.host, name, c->err.msg);
        return 0;
}

static int op_precopy_begin(req_ctx *c)
{
        const char *name, *key;
        int r = need_incoming(c, &name, NULL);
        if (r == 0)
                r = fm_json_str(c->req, "key", true, 2 * FM_HASH_KEY_SIZE, &key, &c->err);
        return r < 0 ? r
                     : fm_target_precopy_begin(&c->a->paths, name, key, fm_json_bool(c->req, "spare", true), &c->err);
}

static int op_precopy_round(req_ctx *c)
{
        const char *name;
        uint64_t stored = 0;
        int r = need_incoming(c, &name, NULL);
        if (r == 0)
                r = fm_target_precopy_round(&c->a->paths, name, c->fd, &stored, &c->err);
        json_object_object_add(c->reply, "stored_pages", json_object_new_int64((int64_t)stored));
        return r;
}

/* ---- rsync sessions (op rsync) ---- */

typedef struct session_ref {
        fm_agent *a;
        const char *dir;
        int slot;
} session_ref;

static void session_started(pid_t pid, void *data)
{
        session_ref *ref = data;
        fm_agent *a = ref->a;
        pthread_mutex_lock(&a->sessions_lock);
        for (size_t i = 0; i < FM_ARRAY_SIZE(a->sessions) && ref->slot < 0; i++)
                if (!a->sessions[i].pgid) {
                        snprintf(a->sessions[i].dir, sizeof(a->sessions[i].dir), "%s", ref->dir);
                        a->sessions[i].pgid = pid;
                        ref->slot = (int)i;
                }
        pthread_mutex_unlock(&a->sessions_lock);
}

static void session_ended(session_ref *ref)
{
        if (ref->slot < 0)
                return;
        pthread_mutex_lock(&ref->a->sessions_lock);
        ref->a->sessions[ref->slot].pgid = 0;
        pthread_mutex_unlock(&ref->a->sessions_lock);
}

/* Ends the rsync sessions writing at or under dir, and waits (3 s at most)
 * until they are gone: nothing writes there any more once this returns. */
static void sessions_end(fm_agent *a, const char *dir)
{
        for (int round = 0; round < 300; round++) {
                bool any = false;
                pthread_mutex_lock(&a->sessions_lock);
                for (size_t i = 0; i < FM_ARRAY_SIZE(a->sessions); i++) {
                        const char *d = a->sessions[i].dir;
                        if (a->sessions[i].pgid && fm_path_under(d, dir)) {
                                kill(-a->sessions[i].pgid, SIGKILL);
                                any = true;
                        }
                }
                pthread_mutex_unlock(&a->sessions_lock);
                if (!any)
                        return;
                usleep(10000);
        }
}

/* The container's directory, when this peer's migration brings it: its
 * rsync sessions end before the migration does. */
static void end_container_sessions(req_ctx *c, const char *name)
{
        fm_error ignore = {0};
        if (fm_target_check_owner(&c->a->paths, name, c->peer.name, &ignore) < 0)
                return;
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/%s", c->a->paths.lxcpath, name);
        sessions_end(c->a, dir);
}

static int op_abort(req_ctx *c)
{
        const char *name;
        int r = need_name(c, &name);
        if (r == 0)
                end_container_sessions(c, name);
        return r < 0 ? r : fm_target_abort(&c->a->paths, name, c->peer.name, &c->err);
}

/* A target asks whether the copy it restored may run on (lease.h). */
static int op_lease(req_ctx *c)
{
        const char *name;
        int r = need_name(c, &name);
        if (r == 0)
                json_object_object_add(c->reply, "lease",
                                       json_object_new_string(fm_lease_answer(&c->a->paths, name, c->peer.name)));
        return r;
}

static int op_finish(req_ctx *c)
{
        const char *name;
        int r = need_name(c, &name);
        if (r == 0)
                end_container_sessions(c, name);
        return r < 0 ? r : fm_target_finish(&c->a->paths, name, c->peer.name, &c->err);
}

/* ---- images ---- */

static int op_image_list(req_ctx *c)
{
        _cleanup_free_ fm_image *v = NULL;
        size_t n = 0;
        int r = fm_image_list(c->a->paths.store, &v, &n, &c->err);
        if (r < 0)
                return r;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(arr, fm_image_json(&v[i]));
        json_object_object_add(c->reply, "images", arr);
        json_object_object_add(c->reply, "host", json_object_new_string(c->a->paths.host));
        json_object_object_add(c->reply, "free_bytes", json_object_new_int64((int64_t)fm_free_bytes(c->a->paths.store, 0)));
        return 0;
}

static int op_image_has(req_ctx *c)
{
        const char *digest;
        int r = fm_json_str(c->req, "digest", true, FM_DIGEST_HEX - 1, &digest, &c->err);
        if (r < 0)
                return r;
        fm_image im;
        bool has = fm_image_get(c->a->paths.store, digest, &im) == 0;
        json_object_object_add(c->reply, "has", json_object_new_boolean(has));
        if (has)
                json_object_object_add(c->reply, "image", fm_image_json(&im));
        return 0;
}

static int need_image(req_ctx *c, fm_image *im)
{
        json_object *o = NULL;
        if (!json_object_object_get_ex(c->req, "image", &o) || !json_object_is_type(o, json_type_object))
                return fm_err(&c->err, EINVAL, "missing field `image' (an object)");
        return fm_image_from_json(o, im, &c->err);
}

/* Puts f (may be NULL) in the place of digest's follower and returns the
 * one that was there, or, when every place is taken, the one f displaces. */
static fm_digest_follower *follow_swap(fm_agent *a, const char *digest, fm_digest_follower *f)
{
        const size_t n = FM_ARRAY_SIZE(a->follow);
        pthread_mutex_lock(&a->follow_lock);
        size_t at = n, empty = n;
        for (size_t i = 0; i < n; i++) {
                if (a->follow[i].f && !strcmp(a->follow[i].digest, digest))
                        at = i;
                else if (!a->follow[i].f && empty == n)
                        empty = i;
        }
        size_t slot = at < n ? at : empty < n ? empty : a->follow_next++ % n;
        fm_digest_follower *out = f || at < n ? a->follow[slot].f : NULL;
        if (f || at < n) {
                a->follow[slot].f = f;
                snprintf(a->follow[slot].digest, sizeof(a->follow[slot].digest), "%s", digest);
        }
        pthread_mutex_unlock(&a->follow_lock);
        return out;
}

/* Who staged an image: a file in its staging directory, beside the image's
 * own directory "file" that rsync fills. */
#define STAGER "stager"
/* ... and how long another host's staging holds the image against a new one */
#define FM_STAGING_STALE_S 600

/* digest's staging directory here and its stager file */
static void staging_paths(req_ctx *c, const char *digest, char staging[600], char stager[700])
{
        fm_image_staging(c->a->paths.store, digest, staging, 600);
        snprintf(stager, 700, "%s/%s", staging, STAGER);
}

/* Who staged digest here: 0 and *mine when a stager is recorded (*mine:
 * it is this peer), -ENOENT when none is; *age_s its age. */
static int stager_of(req_ctx *c, const char *digest, bool *mine, double *age_s)
{
        char staging[600], stager[700];
        staging_paths(c, digest, staging, stager);
        _cleanup_free_ char *who = NULL;
        struct stat st;
        if (lstat(stager, &st) < 0 || !S_ISREG(st.st_mode) || fm_read_file(stager, &who, 256) < 0)
                return -ENOENT;
        *mine = !strcmp(who, c->peer.name);
        *age_s = difftime(time(NULL), st.st_mtime);
        return 0;
}

/* An image (named name, may be NULL) staged here by this peer (commit,
 * progress, rsync). */
static int need_my_staging(req_ctx *c, const char *name, const char *digest)
{
        bool mine = false;
        double age = 0;
        if (!fm_image_digest_is_valid(digest))
                return fm_err(&c->err, EINVAL, "bad image digest `%s'", digest);
        if (stager_of(c, digest, &mine, &age) < 0 || !mine)
                return fm_err(&c->err, EPERM, "image %s%s%.12s%s is not being staged on %s by %s", name ? name : "",
                              name ? " (" : "", digest, name ? ")" : "", c->a->paths.host, c->peer.name);
        return 0;
}

/* The look at an image's stager and the claim are one step (two hosts
 * staging one image at once must not both pass: the second would remove
 * the first's staging), and an image being committed (its stager gone, its
 * staging not yet moved into the store) is not claimed either. */
static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;
static char committing[8][FM_DIGEST_HEX];

static bool committing_has(const char *digest)
{
        for (size_t i = 0; i < FM_ARRAY_SIZE(committing); i++)
                if (!strcmp(committing[i], digest))
                        return true;
        return false;
}

/* An empty (fresh) or kept staging directory for an image about to arrive.
 * Into an empty one rsync writes the file front to back: its digest is
 * computed as it arrives (image_commit then has it at once). */
static int op_image_stage(req_ctx *c)
{
        fm_image im;
        int r = need_image(c, &im);
        if (r < 0)
                return r;
        char staging[600], stager[700], tree[700];
        staging_paths(c, im.digest, staging, stager);
        snprintf(tree, sizeof(tree), "%s/file", staging);
        /* another host's staging of the same image is its own until it has
         * been silent this long */
        bool mine = false;
        double age = 0;
        pthread_mutex_lock(&claim_lock);
        fm_image there;
        if (fm_json_bool(c->req, "unless_there", false) && fm_image_get(c->a->paths.store, im.digest, &there) == 0) {
                pthread_mutex_unlock(&claim_lock);
                return fm_err(&c->err, EEXIST, "image %s (%.12s) is on %s already", im.name, im.digest,
                              c->a->paths.host);
        }
        if (committing_has(im.digest) ||
            (stager_of(c, im.digest, &mine, &age) == 0 && !mine && age < FM_STAGING_STALE_S)) {
                pthread_mutex_unlock(&claim_lock);
                return fm_err(&c->err, EBUSY, "image %s (%.12s) is being staged on %s by another host", im.name,
                              im.digest, c->a->paths.host);
        }
        bool fresh = fm_json_bool(c->req, "fresh", false);
        if (fresh || !mine) {
                sessions_end(c->a, staging);
                fm_rm_rf(staging);
        }
        uint64_t room = fm_free_bytes(c->a->paths.store, 0);
        if (!fm_path_exists(tree) && room < im.bytes + (64ull << 20))
                r = fm_err(&c->err, ENOSPC, "%s has %llu MB free for images, image %s needs %llu MB", c->a->paths.host,
                           (unsigned long long)(room / 1000000), im.name, (unsigned long long)(im.bytes / 1000000));
        else if ((r = fm_mkdir_p(tree, 0755)) < 0)
                r = fm_err(&c->err, -r, "creating %s: %s", tree, strerror(-r));
        /* only this peer may then rsync into it (op_rsync) */
        else if ((r = fm_write_file(stager, c->peer.name, strlen(c->peer.name), 0600)) < 0)
                r = fm_err(&c->err, -r, "writing %s: %s", stager, strerror(-r));
        pthread_mutex_unlock(&claim_lock);
        if (r < 0)
                return r;
        fm_digest_follower *f = fresh ? fm_image_follow_staging(c->a->paths.store, &im) : NULL;
        fm_digest_follow_cancel(follow_swap(c->a, im.digest, f));
        return 0;
}

static int op_image_commit(req_ctx *c)
{
        fm_image im;
        int r = need_image(c, &im);
        int slot = -1;
        pthread_mutex_lock(&claim_lock);
        if (r == 0 && (r = need_my_staging(c, im.name, im.digest)) == 0) {
                /* no rsync into it from now on: the digest is of what stays;
                 * and no other host's staging until it is in the store */
                char staging[600], stager[700];
                staging_paths(c, im.digest, staging, stager);
                unlink(stager);
                for (size_t i = 0; i < FM_ARRAY_SIZE(committing) && slot < 0; i++)
                        if (!committing[i][0])
                                slot = (int)i;
                if (slot >= 0)
                        snprintf(committing[slot], sizeof(committing[slot]), "%s", im.digest);
        }
        pthread_mutex_unlock(&claim_lock);
        if (r == 0) {
                char staging[600], stager[700];
                staging_paths(c, im.digest, staging, stager);
                sessions_end(c->a, staging);
                r = fm_image_commit(c->a->paths.store, &im, follow_swap(c->a, im.digest, NULL), &c->err);
        }
        if (slot >= 0) {
                pthread_mutex_lock(&claim_lock);
                committing[slot][0] = '\0';
                pthread_mutex_unlock(&claim_lock);
        }
        /* mounted now, while the service still runs at the source: not in
         * the restore, which waits for nothing else */
        if (r == 0) {
                fm_error ignore = {0};
                fm_image_mount(c->a->paths.store, im.digest, &ignore);
        }
        return r;
}

/* Bytes of an image in staging so far (rsync writes it in place). */
static int op_image_progress(req_ctx *c)
{
        fm_image im;
        int r = need_image(c, &im);
        if (r == 0 && fm_image_get(c->a->paths.store, im.digest, NULL) < 0)
                r = need_my_staging(c, im.name, im.digest);
        if (r < 0)
                return r;
        json_object_object_add(c->reply, "bytes", json_object_new_int64((int64_t)fm_image_arrived(c->a->paths.store, &im)));
        return 0;
}

static int op_image_rm(req_ctx *c)
{
        const char *ref;
        int r = fm_json_str(c->req, "image", true, 64, &ref, &c->err);
        fm_image im;
        if (r == 0)
                r = fm_image_rm(c->a->paths.store, c->a->paths.lxcpath, ref, &im, &c->err);
        if (r == 0)
                json_object_object_add(c->reply, "removed", fm_image_json(&im));
        return r;
}

/* Places an image (and its base, when the peer lacks it) on another host. */
static int op_image_push(req_ctx *c)
{
        const char *ref, *to;
        fm_peer peer = {0};
        int r = fm_json_str(c->req, "image", true, 64, &ref, &c->err);
        if (r == 0)
                r = fm_json_str(c->req, "to", true, 40, &to, &c->err);
        if (r == 0)
                r = fm_parse_endpoint(to, peer.addr, sizeof(peer.addr), &peer.port, &c->err);
        fm_image im, base;
        if (r == 0)
                r = fm_image_find(c->a->paths.store, ref, &im, &c->err);
        if (r < 0)
                return r;
        bool force = fm_json_bool(c->req, "force", false);
        uint64_t bytes_base = 0, bytes = 0;
        if (!strcmp(im.kind, "app")) {
                if (fm_image_get(c->a->paths.store, im.base, &base) < 0)
                        return fm_err(&c->err, ENOENT, "base %s of %s is missing here", im.base_name, im.name);
                if ((r = fm_image_push(c->a->paths.store, &base, &peer, force, 0, &bytes_base, &c->err)) < 0)
                        return r;
        }
        if ((r = fm_image_push(c->a->paths.store, &im, &peer, force, 0, &bytes, &c->err)) < 0)
                return r;
        json_object_object_add(c->reply, "image", fm_image_json(&im));
        json_object_object_add(c->reply, "bytes_base", json_object_new_int64((int64_t)bytes_base));
        json_object_object_add(c->reply, "bytes", json_object_new_int64((int64_t)bytes));
        return 0;
}

/* What this host offers a migration (fastmig fleet check). */
static int op_check(req_ctx *c)
{
        json_object *o = json_object_new_object();
        fm_host_check(&c->a->paths, o);
        /* its copies run only on a lease, fenced when it lapses (docs/RECOVERY.md) */
        json_object_object_add(o, "leases", json_object_new_boolean(fm_lease_enabled(&c->a->paths)));
        json_object_object_add(c->reply, "host", json_object_new_string(c->a->paths.host));
        json_object_object_add(c->reply, "check", o);
        return 0;
}

/* The one directory an rsync from this peer may write: a container's tree
 * its migration prepared here, or an image it staged here. */
static int rsync_dir(req_ctx *c, char *dir, size_t n)
{
        const char *name, *part, *digest;
        int r;
        if (json_object_object_get_ex(c->req, "image", NULL)) {
                if ((r = fm_json_str(c->req, "image", true, FM_DIGEST_HEX - 1, &digest, &c->err)) < 0 ||
                    (r = need_my_staging(c, NULL, digest)) < 0)
                        return r;
                char staging[600], stager[700];
                staging_paths(c, digest, staging, stager);
                snprintf(dir, n, "%s/file", staging);
                return 0;
        }
        if ((r = need_incoming(c, &name, NULL)) < 0 || (r = fm_json_str(c->req, "part", true, 8, &part, &c->err)) < 0)
                return r;
        if (strcmp(part, "rootfs") && strcmp(part, "upper"))
                return fm_err(&c->err, EINVAL, "bad part `%s' (rootfs or upper)", part);
        snprintf(dir, n, "%s/%s/%s", c->a->paths.lxcpath, name, part);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return fm_err(&c->err, errno, "creating %s: %s", dir, strerror(errno));
        return 0;
}

/* rsync into one directory: the reply, then rsync's daemon protocol on this
 * connection, served by rsync confined to it (fm_rsync_serve). */
static int op_rsync(req_ctx *c)
{
        char dir[700];
        int r = rsync_dir(c, dir, sizeof(dir));
        struct stat st;
        if (r == 0 && (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)))
                r = fm_err(&c->err, ENOTDIR, "%s is not a directory", dir);
        if (r < 0)
                return r;
        if ((r = fm_msg_send(c->fd, FM_FRAME_REPLY, c->reply)) < 0)
                return fm_err(&c->err, -r, "replying: %s", strerror(-r));
        c->replied = true;
        fm_sock_set_timeout(c->fd, 0); /* rsync's own timeout bounds it */
        session_ref ref = {.a = c->a, .dir = dir, .slot = -1};
        bool image = json_object_object_get_ex(c->req, "image", NULL);
        if ((r = fm_rsync_serve(c->fd, dir, image, c->a->paths.images, session_started, &ref, &c->err)) < 0)
                fprintf(stderr, "fastmigd[%s]: rsync from %s: %s\n", c->a->paths.host, c->peer.name, c->err.msg);
        session_ended(&ref);
        return 0;
}

/* Who may ask: an operator anything; another host of the fleet only what
 * a migration's source or an image's sender asks of its target. */
enum { OPERATOR = 1, HOST = 2 };

static const struct {
        const char *op;
        int (*fn)(req_ctx *c);
        int who;
} ops[] = {
        {"ping", op_ping, OPERATOR | HOST},
        {"list", op_list, OPERATOR},
        {"check", op_check, OPERATOR},
        {"info", op_info, OPERATOR},
        {"create_workload", op_create_workload, OPERATOR},
        {"start", op_start, OPERATOR},
        {"destroy", op_destroy, OPERATOR},
        {"migrate", op_migrate, OPERATOR},
        {"prepare", op_prepare, HOST},
        {"put_images", op_put_images, HOST},
        {"restore", op_restore, HOST},
        {"settle", op_settle, HOST},
        {"lazy_pages", op_lazy_pages, HOST},
        {"abort", op_abort, HOST},
        {"finish", op_finish, HOST},
        {"lease", op_lease, HOST},
        {"precopy_begin", op_precopy_begin, HOST},
        {"precopy_round", op_precopy_round, HOST},
        {"image_list", op_image_list, OPERATOR},
        {"image_has", op_image_has, OPERATOR | HOST},
        {"image_stage", op_image_stage, HOST},
        {"image_commit", op_image_commit, HOST},
        {"image_progress", op_image_progress, HOST},
        {"image_rm", op_image_rm, OPERATOR},
        {"image_push", op_image_push, OPERATOR},
        {"storage", op_storage, OPERATOR | HOST},
        {"rsync", op_rsync, HOST},
};

void fm_agent_serve(fm_agent *a, int fd, const fm_tls_peer_id *peer)
{
        req_ctx c = {.a = a, .fd = fd, .peer = *peer};
        uint8_t t = 0;
        fm_sock_set_timeout(fd, FM_AGENT_FIRST_FRAME_MS);
        int r = fm_msg_recv(fd, &t, &c.req, &c.err);
        fm_sock_set_timeout(fd, FM_AGENT_IDLE_MS);
        if (r == 0 && t != FM_FRAME_REQUEST)
                r = fm_err(&c.err, EPROTO, "expected a request frame, got type %u", t);
        const char *op = NULL;
        if (r == 0)
                r = fm_json_str(c.req, "op", true, 32, &op, &c.err);
        if (r == 0) {
                size_t i;
                for (i = 0; i < FM_ARRAY_SIZE(ops); i++)
                        if (!strcmp(ops[i].op, op))
                                break;
                int who = !strcmp(c.peer.role, "operator") ? OPERATOR : !strcmp(c.peer.role, "host") ? HOST : 0;
                if (i == FM_ARRAY_SIZE(ops)) {
                        r = fm_err(&c.err, EOPNOTSUPP, "unknown request `%s'", op);
                } else if (!(ops[i].who & who)) {
                        r = fm_err(&c.err, EPERM, "`%s' is not for %s %s (a %s)", op, c.peer.role, c.peer.name,
                                   ops[i].who == HOST ? "migration's source or an image's sender" : "fleet's operator");
                } else {
                        c.reply = fm_reply_ok();
                        r = ops[i].fn(&c);
                }
        }
        json_object *reply = c.reply ? c.reply : fm_reply_ok();
        if (r < 0) {
                json_object *er = fm_reply_error(&c.err);
                json_object_object_foreach(reply, k, v)
                {
                        if (strcmp(k, "ok"))
                                json_object_object_add(er, k, json_object_get(v));
                }
                json_object_put(reply);
                reply = er;
                fprintf(stderr, "fastmigd[%s]: %s: %s\n", a->paths.host, op ? op : "request", c.err.msg);
        }
        if (!c.replied)
                fm_msg_send(fd, FM_FRAME_REPLY, reply);
        json_object_put(reply);
        json_object_put(c.req);
}

typedef struct conn {
        fm_agent *a;
        int fd;
} conn;

static void *conn_thread(void *p)
{
        conn *cn = p;
        fm_agent *a = cn->a;
        /* only the fleet's certificates get as far as a request */
        fm_tls_peer_id peer = {0};
        fm_error e = {0};
        int fd = fm_tls_server(cn->fd, FM_AGENT_FIRST_FRAME_MS, &peer, &e);
        if (fd >= 0) {
                fm_agent_serve(a, fd, &peer);
                fm_close(fd);
        } else {
                fprintf(stderr, "fastmigd[%s]: %s\n", a->paths.host, e.msg);
        }
        free(cn);
        atomic_fetch_sub(&a->conns, 1);
        return NULL;
}

static int accept_one(fm_agent *a, fm_error *e)
{
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                        return 0;
                return fm_err(e, errno, "accept: %s", strerror(errno));
        }
        if (atomic_load(&a->conns) >= FM_AGENT_MAX_CONNS) {
                /* no thread for it: closed before its handshake (a caller
                 * sees the connection closed, and its own retry decides) */
                fm_close(fd);
                return 0;
        }
        fm_tcp_keepalive(fd); /* a dead peer ends its request within FM_TCP_DEAD_MS */
        /* small messages (replies, rsync's) go out at once, not after a
         * delayed ACK */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn *cn = malloc(sizeof(*cn));
        if (!cn) {
                fm_close(fd);
                return 0;
        }
        cn->a = a;
        cn->fd = fd;
        atomic_fetch_add(&a->conns, 1);
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, conn_thread, cn) != 0) {
                atomic_fetch_sub(&a->conns, 1);
                fm_close(fd);
                free(cn);
        }
        pthread_attr_destroy(&at);
        return 0;
}

int fm_agent_run(fm_agent *a, int stop_fd, fm_error *e)
{
        /* poll said readable, but the connection may be gone by accept:
         * that must not block the loop (accepted sockets do not inherit it) */
        int fl = fcntl(a->listen_fd, F_GETFL);
        if (fl < 0 || fcntl(a->listen_fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return fm_err(e, errno, "listening socket: %s", strerror(errno));
        struct pollfd pf[2] = {{.fd = a->listen_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        for (;;) {
                if (poll(pf, stop_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return fm_err(e, errno, "poll: %s", strerror(errno));
                }
                if (pf[1].revents)
                        break;
                if (pf[0].revents & (POLLERR | POLLNVAL))
                        return fm_err(e, EIO, "the listening socket failed");
                int r = pf[0].revents & POLLIN ? accept_one(a, e) : 0;
                if (r < 0)
                        return r;
        }
        /* Asked to stop. New connections are refused from now on. Requests
         * under way get a few seconds to send their replies (a ping, a list,
         * a pre-copy round); a migration or an image stream can take minutes,
         * and whoever stops us expects us gone soon (testbed down waits 10 s,
         * then kills). What is still running after the grace is cut when the
         * process ends, as SIGTERM cut everything before there was a grace. */
        a->listen_fd = fm_close(a->listen_fd);
        double until = fm_now_ms() + FM_AGENT_STOP_GRACE_MS;
        unsigned left;
        while ((left = atomic_load(&a->conns)) > 0 && fm_now_ms() < until)
                usleep(10000);
        return (int)left;
}

void fm_agent_release(fm_agent *a)
{
        for (size_t i = 0; i < FM_ARRAY_SIZE(a->follow); i++) {
                fm_digest_follow_cancel(a->follow[i].f);
                a->follow[i].f = NULL;
        }
        a->listen_fd = fm_close(a->listen_fd);
}
