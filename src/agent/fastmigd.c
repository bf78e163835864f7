/* fastmigd: the host agent. One per edge host, inside that host's namespaces.
 *   fastmigd --host NAME --listen ADDR[:PORT] --lxcpath DIR --images DIR --state DIR
 *            [--store DIR] [--shared DIR] [--test-hooks] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <string.h>

#include "agent/agent.h"
#include "fleet/fleet.h"
#include "migrate/lease.h"
#include "steer/steer.h"
#include "util/execwatch.h"
#include "proto/proto.h"
#include "util/netns.h"
#include "util/spawn.h"

/* Static: connection threads still running when main returns (after
 * fm_agent_run's grace) use it until the process is gone. */
static fm_agent agent = {.listen_fd = -1, .follow_lock = PTHREAD_MUTEX_INITIALIZER,
                         .sessions_lock = PTHREAD_MUTEX_INITIALIZER};
/* The first SIGTERM or SIGINT asks the accept loop to stop (a byte on this
 * pipe), so that main returns and LeakSanitizer runs in the sanitized build;
 * a second one ends the agent at once. */
static int stop_pipe[2] = {-1, -1};
/* --fleet: its steering is the agent's for the life of the process */
static fm_fleet fleet;
static fm_steer steer = {.rt = {.fd = -1}};
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
        if (!stopping) {
                stopping = 1;
                int saved = errno;
                ssize_t n = write(stop_pipe[1], "", 1);
                (void)n; /* full: a stop is already pending */
                errno = saved;
                return;
        }
        signal(sig, SIG_DFL);
        raise(sig);
}

static int handle_stop_signals(void)
{
        if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        /* SA_RESTART: the handler returns now, and the signal may land in a
         * connection thread blocked in a system call */
        struct sigaction sa = {.sa_handler = on_term, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -errno;
        return 0;
}

static void setup_criu_wrapper(fm_agent *a, const char *state, const char *self_dir)
{
        char real[280], wrap[PATH_MAX], bindir[600], link[700];
        snprintf(wrap, sizeof(wrap), "%s/fm-criu-wrap", self_dir);
        if (!fm_find_program("criu", real, sizeof(real)) || access(wrap, X_OK) < 0) {
                fprintf(stderr, "fastmigd[%s]: no fm-criu-wrap or criu; freezing before lxc-checkpoint\n", a->paths.host);
                return;
        }
        snprintf(bindir, sizeof(bindir), "%s/bin", state);
        snprintf(link, sizeof(link), "%s/criu", bindir);
        fm_mkdir_p(bindir, 0755);
        unlink(link);
        if (symlink(wrap, link) < 0) {
                fprintf(stderr, "fastmigd[%s]: symlink %s: %s\n", a->paths.host, link, strerror(errno));
                return;
        }
        const char *path = getenv("PATH");
        snprintf(a->paths.criu_path_env, sizeof(a->paths.criu_path_env), "PATH=%s:%s", bindir,
                 path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        snprintf(a->paths.criu_real_env, sizeof(a->paths.criu_real_env), "FASTMIG_REAL_CRIU=%s", real);
        /* lazy restore: CRIU's lazy-pages daemon needs userfaultfd for
         * processes it did not create */
        char *check[] = {real, "check", "--feature", "uffd-noncoop", NULL};
        const char *noconf[] = {"CRIU_CONFIG_FILE=/dev/null", NULL};
        fm_spawn_opts o = {.env_add = noconf, .timeout_ms = 10000};
        a->paths.lazy_restore = fm_spawn(check, &o) == 0;
        free(o.output);
        if (!a->paths.lazy_restore)
                fprintf(stderr, "fastmigd[%s]: CRIU has no userfaultfd here; restores are eager\n", a->paths.host);
}

/* A directory option: absolute, short enough not to be cut, and nothing
 * rsync's config would read otherwise (% expands there, spaces at the ends
 * are trimmed) or that breaks a line. */
static bool dir_arg_ok(const char *v, size_t max)
{
        bool ok = v[0] == '/' && strlen(v) < max && !strchr(v, '%') && v[strlen(v) - 1] != ' ';
        for (const char *c = v; ok && *c; c++)
                ok = (unsigned char)*c >= 0x20 && *c != 0x7f;
        if (!ok)
                fprintf(stderr, "fastmigd: bad directory `%s' (absolute, under %zu bytes, no %%, control characters or "
                                "trailing space)\n", v, max);
        return ok;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: fastmigd --host NAME --listen ADDR[:PORT] --lxcpath DIR --images DIR --state DIR --pki DIR "
                   "[--fleet FILE] [--store DIR] [--shared DIR] [--bridge NAME] [--bind-allow DIR]... [--netns NAME] "
                   "[--expiry S] [--test-hooks]\n"
                   "  --fleet: the fleet file (docs/FLEET.md); this agent steers its migrations' traffic by its\n"
                   "           steering and journals them in --state (docs/RECOVERY.md). Without it nothing is\n"
                   "           steered (hosts on one L2 segment: the containers' gratuitous ARP)\n"
                   "  --expiry: a migration whose source has been silent this long is abandoned: what it\n"
                   "            left here lapses (default 600 s; docs/RECOVERY.md)\n"
                   "  --pki: the fleet's ca.crt and this host's NAME.crt, NAME.key (docs/PKI.md); every\n"
                   "         connection is TLS 1.3 with a certificate of the fleet on both sides\n"
                   "  --bridge: the bridge a migrated container's veth joins here (default: its config's)\n"
                   "  --netns: serve a host that is network namespace NAME of this machine (/run/netns/NAME),\n"
                   "           entered as LXC and CRIU need it (its own sysfs, the cgroup mounts kept)\n"
                   "  --bind-allow: a host directory a migrated container's config may bind read-only\n"
                   "                (repeat; default /lib /lib64 /usr/lib /usr/lib64 /sys/kernel/security)\n");
}

int main(int argc, char **argv)
{
        fm_agent *a = &agent;
        const char *listen = NULL, *state = NULL, *shared = NULL, *pki = NULL, *netns = NULL, *fleet_path = NULL;
        static const struct option lo[] = {
                {"host", required_argument, 0, 'h'},    {"listen", required_argument, 0, 'l'},
                {"lxcpath", required_argument, 0, 'P'}, {"images", required_argument, 0, 'i'},
                {"state", required_argument, 0, 's'},
                {"store", required_argument, 0, 'S'},   {"test-hooks", no_argument, 0, 'T'},    {"help", no_argument, 0, 'H'},
                {"shared", required_argument, 0, 'V'},  {"bridge", required_argument, 0, 'B'},
                {"bind-allow", required_argument, 0, 'A'}, {"pki", required_argument, 0, 'K'},
                {"netns", required_argument, 0, 'N'},   {"fleet", required_argument, 0, 'F'},
                {"expiry", required_argument, 0, 'E'},
                {0, 0, 0, 0},
        };
        static const char *bind_allow[17];
        size_t nbind = 0;
        int ch;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'h': snprintf(a->paths.host, sizeof(a->paths.host), "%s", optarg); break;
                case 'l': listen = optarg; break;
                case 'P':
                case 'i':
                case 'S': {
                        char *dst = ch == 'P' ? a->paths.lxcpath : ch == 'i' ? a->paths.images : a->paths.store;
                        if (!dir_arg_ok(optarg, sizeof(a->paths.lxcpath)))
                                return 2;
                        snprintf(dst, sizeof(a->paths.lxcpath), "%s", optarg);
                        break;
                }
                case 's':
                        if (!dir_arg_ok(optarg, 200))
                                return 2;
                        state = optarg;
                        break;
                case 'T': a->paths.test_hooks = true; break;
                case 'V': shared = optarg; break;
                case 'K': pki = optarg; break;
                case 'N': netns = optarg; break;
                case 'F': fleet_path = optarg; break;
                case 'E': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v < 5 || v > 86400) {
                                fprintf(stderr, "fastmigd: --expiry takes seconds, 5 to 86400, not `%s'\n", optarg);
                                return 2;
                        }
                        a->paths.stale_s = (int)v;
                        break;
                }
                case 'B':
                        if (strlen(optarg) >= sizeof(a->paths.bridge) || !fm_name_is_valid(optarg)) {
                                fprintf(stderr, "fastmigd: bad --bridge `%s'\n", optarg);
                                return 2;
                        }
                        snprintf(a->paths.bridge, sizeof(a->paths.bridge), "%s", optarg);
                        break;
                case 'A':
                        if (optarg[0] != '/' || strstr(optarg, "..") || nbind + 1 >= FM_ARRAY_SIZE(bind_allow)) {
                                fprintf(stderr, "fastmigd: bad --bind-allow `%s' (an absolute path, at most %zu)\n",
                                        optarg, FM_ARRAY_SIZE(bind_allow) - 1);
                                return 2;
                        }
                        bind_allow[nbind++] = optarg;
                        a->paths.bind_allow = bind_allow;
                        break;
                case 'H': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!a->paths.host[0] || !listen || !a->paths.lxcpath[0] || !a->paths.images[0] || !state || !pki) {
                usage(stderr);
                return 2;
        }
        if (!a->paths.store[0]) /* default: beside the LXC path */
                snprintf(a->paths.store, sizeof(a->paths.store), "%.240s/../store", a->paths.lxcpath);
        fm_error e = {0};
        /* the programs its children start (for the migration report): the
         * kernel's connector answers only in the initial network namespace,
         * so before entering the host's */
        a->paths.execwatch = fm_execwatch_open(&e);
        if (!a->paths.execwatch)
                fprintf(stderr, "fastmigd[%s]: reports will not list the programs run while frozen: %s\n",
                        a->paths.host, e.msg);
        fm_err_clear(&e);
        /* while this process has one thread (and the watch's reader) */
        if (netns && fm_netns_enter_host(netns, &e) < 0) {
                fprintf(stderr, "fastmigd: --netns %s: %s\n", netns, e.msg);
                return 2;
        }
        a->paths.state = state;
        if (fleet_path) {
                /* the router's namespace (route steering) is opened now,
                 * while /run/netns is this machine's */
                if (fm_fleet_load(fleet_path, &fleet, &e) < 0 || fm_steer_open(&steer, &fleet.steer, &e) < 0) {
                        fprintf(stderr, "fastmigd: --fleet %s: %s\n", fleet_path, e.msg);
                        return 2;
                }
                if (!fm_fleet_host(&fleet, a->paths.host)) {
                        fprintf(stderr, "fastmigd: --fleet %s: no host %s in the fleet %s\n", fleet_path, a->paths.host,
                                fleet.name);
                        return 2;
                }
                a->paths.fleet = &fleet;
                a->paths.steer = &steer;
        }
        if (a->paths.execwatch && fm_execwatch_start(a->paths.execwatch, &e) < 0) {
                fprintf(stderr, "fastmigd[%s]: %s\n", a->paths.host, e.msg);
                fm_execwatch_close(a->paths.execwatch);
                a->paths.execwatch = NULL;
        }
        if (fm_parse_endpoint(listen, a->addr, sizeof(a->addr), &a->port, &e) < 0) {
                fprintf(stderr, "fastmigd: %s\n", e.msg);
                return 2;
        }
        /* a volume every host mounts (the unknown-path strategy): refuse to
         * serve with a wrong one rather than fail in a migration */
        if (shared && fm_shared_open(shared, &a->paths.shared, &e) < 0) {
                fprintf(stderr, "fastmigd: --shared: %s\n", e.msg);
                return 2;
        }
        if (fm_tls_setup(pki, a->paths.host, &e) < 0) {
                fprintf(stderr, "fastmigd: --pki %s: %s\n", pki, e.msg);
                return 2;
        }
        /* fm-seqecho lives next to this binary */
        const char *self_dir = fm_self_dir();
        snprintf(a->seqecho_path, sizeof(a->seqecho_path), "%s/fm-seqecho", self_dir);
        /* fm-fence guards the copies migrations bring here (src/migrate/lease.h) */
        snprintf(a->paths.fence_prog, sizeof(a->paths.fence_prog), "%s/fm-fence", self_dir);
        if (access(a->paths.fence_prog, X_OK) < 0) {
                fprintf(stderr, "fastmigd: %s: %s (it is installed beside fastmigd)\n", a->paths.fence_prog,
                        strerror(errno));
                return 1;
        }
        fm_lease_agent_started();
        a->paths.precopy = fm_precopy_registry_new();
        /* fm-criu-wrap as `criu` for lxc-checkpoint (see src/lxc/criu_wrap.c) */
        setup_criu_wrapper(a, state, self_dir);
        /* One CRIU config per direction (CRIU_CONFIG_FILE). Restore of an LXC
         * container needs the old mount engine; dump rejects that option. */
        snprintf(a->paths.criu_dump_conf, sizeof(a->paths.criu_dump_conf), "%s/criu-dump.conf", state);
        snprintf(a->paths.criu_restore_conf, sizeof(a->paths.criu_restore_conf), "%s/criu-restore.conf", state);
        /* The nftables network lock (CRIU links libnftables) costs about half
         * of the default iptables one, which runs iptables-restore twice per
         * dump and per restore: ~50 ms less downtime, measured. */
        static const char dump_conf[] = "# written by fastmigd\nnetwork-lock nftables\n";
        static const char restore_conf[] = "# written by fastmigd\nmntns-compat-mode\nnetwork-lock nftables\n";
        if (fm_mkdir_p(state, 0755) < 0 ||
            fm_write_file(a->paths.criu_dump_conf, dump_conf, sizeof(dump_conf) - 1, 0644) < 0 ||
            fm_write_file(a->paths.criu_restore_conf, restore_conf, sizeof(restore_conf) - 1, 0644) < 0) {
                fprintf(stderr, "fastmigd: cannot write CRIU configs in %s\n", state);
                return 1;
        }
        if (fm_netns_private_run(&e) < 0)
                fprintf(stderr, "fastmigd[%s]: no private /run, CRIU will not cache kernel features: %s\n", a->paths.host, e.msg);
        if (fm_image_store_share(a->paths.store, &e) < 0) /* fm-criu-wrap then mounts images itself */
                fprintf(stderr, "fastmigd[%s]: %s\n", a->paths.host, e.msg);
        /* fill CRIU's kernel-feature cache now rather than in the first freeze */
        char *check[] = {"criu", "check", NULL};
        fm_spawn_opts co = {.detach_stdio = true, .timeout_ms = 30000};
        fm_spawn(check, &co);
        signal(SIGPIPE, SIG_IGN);
        int r = handle_stop_signals();
        if (r < 0) {
                fprintf(stderr, "fastmigd: stop signals: %s\n", strerror(-r));
                return 1;
        }
        a->listen_fd = fm_tcp_listen(a->addr, a->port, &e);
        if (a->listen_fd < 0) {
                fprintf(stderr, "fastmigd: %s\n", e.msg);
                return 1;
        }
        fprintf(stderr, "fastmigd[%s]: serving on %s:%u (lxcpath %s, steering %s)%s\n", a->paths.host, a->addr,
                a->port, a->paths.lxcpath, a->paths.fleet ? fm_steer_kind_name(fleet.steer.kind) : "none",
                a->paths.test_hooks ? " with test hooks" : "");
        /* what a dead agent left half done, before anything new */
        if (fm_agent_recover_all(a, &e) < 0)
                fprintf(stderr, "fastmigd[%s]: %s\n", a->paths.host, e.msg);
        if (!a->paths.stale_s)
                a->paths.stale_s = FM_INCOMING_STALE_S;
        fm_agent_upkeep_start(a);
        int left = fm_agent_run(a, stop_pipe[0], &e);
        if (left < 0)
                fprintf(stderr, "fastmigd: %s\n", e.msg);
        else if (left > 0)
                fprintf(stderr, "fastmigd[%s]: stopping, %d request%s cut\n", a->paths.host, left, left == 1 ? "" : "s");
        /* What connection threads still use stays (reachable from `agent') */
        if (left == 0) {
                fm_tls_drain(2000);
                fm_execwatch_close(a->paths.execwatch);
                a->paths.execwatch = NULL;
                fm_agent_release(a);
                fm_precopy_registry_free(a->paths.precopy);
                a->paths.precopy = NULL;
        }
        if (left >= 0)
                fprintf(stderr, "fastmigd[%s]: stopped\n", a->paths.host);
        return left < 0 ? 1 : 0;
}
