#include "testbed.h"

#include <arpa/inet.h>
#include "pki/pki.h"
#include "proto/tls.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lxc/container.h"
#include "workload/stream.h"
#include "util/netns.h"
#include "proto/proto.h"
#include "util/spawn.h"
#include "testbed/storage.h"

void fm_testbed_layout(fm_testbed *tb, int hosts, int link_mbit, bool shared)
{
        memset(tb, 0, sizeof(*tb));
        tb->hosts = hosts;
        tb->link_mbit = link_mbit;
        tb->shared = shared;
        for (int i = 0; i < hosts && i < FM_TESTBED_MAX_HOSTS; i++) {
                fm_host *h = &tb->host[i];
                snprintf(h->name, sizeof(h->name), "mec%d", i + 1);
                snprintf(h->netns, sizeof(h->netns), "fm-mec%d", i + 1);
                snprintf(h->addr, sizeof(h->addr), "10.77.%d.2", i + 1);
                h->port = FM_DEFAULT_PORT;
                snprintf(h->lxcpath, sizeof(h->lxcpath), FM_TESTBED_ROOT "/mec%d/lxc", i + 1);
                snprintf(h->images, sizeof(h->images), FM_TESTBED_ROOT "/mec%d/images", i + 1);
                snprintf(h->store, sizeof(h->store), FM_TESTBED_ROOT "/mec%d/store", i + 1);
                snprintf(h->state, sizeof(h->state), FM_TESTBED_ROOT "/mec%d/state", i + 1);
                if (shared)
                        snprintf(h->shared, sizeof(h->shared), FM_TESTBED_ROOT "/mec%d/shared", i + 1);
                snprintf(h->route_via, sizeof(h->route_via), "%s", h->addr);
                snprintf(h->bridge, sizeof(h->bridge), FM_TESTBED_BRIDGE);
        }
}

void fm_testbed_fleet(const fm_testbed *tb, fm_fleet *f)
{
        memset(f, 0, sizeof(*f));
        snprintf(f->name, sizeof(f->name), "testbed");
        snprintf(f->pki, sizeof(f->pki), FM_TESTBED_PKI);
        snprintf(f->cert, sizeof(f->cert), "operator");
        snprintf(f->agents_netns, sizeof(f->agents_netns), FM_TESTBED_CORE_NS);
        snprintf(f->users_netns, sizeof(f->users_netns), FM_TESTBED_UE_NS);
        struct in_addr a;
        inet_pton(AF_INET, FM_TESTBED_SUBNET_PREFIX "0", &a);
        f->subnet = ntohl(a.s_addr);
        f->prefix = 24;
        snprintf(f->gateway, sizeof(f->gateway), FM_TESTBED_GATEWAY);
        f->steer.kind = FM_STEER_ROUTE;
        f->steer.timeout_ms = FM_STEER_TIMEOUT_MS;
        snprintf(f->steer.netns, sizeof(f->steer.netns), FM_TESTBED_CORE_NS);
        f->hosts = tb->hosts;
        for (int i = 0; i < tb->hosts && i < FM_FLEET_MAX_HOSTS; i++)
                f->host[i] = tb->host[i];
}

int fm_testbed_run(fm_error *e, const char *fmt, ...)
{
        char line[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fm_strv argv = {0};
        char *save = NULL;
        for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
                fm_strv_push(&argv, tok);
        fm_spawn_opts o = {.timeout_ms = 20000};
        int r = fm_spawn_check(argv.v, &o, e);
        free(o.output);
        fm_strv_free(&argv);
        return r;
}

static bool netns_exists(const char *ns)
{
        char p[128];
        snprintf(p, sizeof(p), "/run/netns/%s", ns);
        return fm_path_exists(p);
}

static int list_fm_netns(fm_strv *out)
{
        DIR *d = opendir("/run/netns");
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!strncmp(de->d_name, "fm-", 3))
                        fm_strv_push(out, de->d_name);
        closedir(d);
        return 0;
}

bool fm_testbed_is_mountpoint(const char *path)
{
        _cleanup_free_ char *mi = NULL;
        if (fm_read_file("/proc/self/mountinfo", &mi, 16 << 20) < 0)
                return false;
        char needle[300];
        snprintf(needle, sizeof(needle), " %s ", path);
        return strstr(mi, needle) != NULL;
}

bool fm_testbed_any_left(char *what, size_t len)
{
        fm_strv ns = {0};
        list_fm_netns(&ns);
        bool left = false;
        if (ns.n) {
                snprintf(what, len, "network namespace %s", ns.v[0]);
                left = true;
        } else if (fm_path_exists(FM_TESTBED_STATE)) {
                snprintf(what, len, "state file %s", FM_TESTBED_STATE);
                left = true;
        } else {
                _cleanup_free_ char *mi = NULL;
                if (fm_read_file("/proc/self/mountinfo", &mi, 16 << 20) >= 0 && strstr(mi, " " FM_TESTBED_ROOT "/")) {
                        snprintf(what, len, "a mount below %s", FM_TESTBED_ROOT);
                        left = true;
                }
        }
        fm_strv_free(&ns);
        return left;
}

static int save_state(const fm_testbed *tb, const pid_t *agents, bool test_hooks, int expiry_s, fm_error *e)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "test_hooks", json_object_new_boolean(test_hooks));
        json_object_object_add(o, "agent_expiry_s", json_object_new_int(expiry_s));
        json_object_object_add(o, "hosts", json_object_new_int(tb->hosts));
        json_object_object_add(o, "link_mbit", json_object_new_int(tb->link_mbit));
        json_object_object_add(o, "shared_storage", json_object_new_boolean(tb->shared));
        json_object *pids = json_object_new_array();
        for (int i = 0; i < tb->hosts; i++)
                json_object_array_add(pids, json_object_new_int(agents ? agents[i] : 0));
        json_object_object_add(o, "agent_pids", pids);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
        fm_mkdir_p("/run/fastmig", 0755);
        int r = fm_write_file(FM_TESTBED_STATE, s, strlen(s), 0644);
        json_object_put(o);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", FM_TESTBED_STATE, strerror(-r)) : 0;
}

static int load_raw(int *hosts, int *link, bool *shared, pid_t *pids, bool *hooks, int *expiry_s, fm_error *e)
{
        _cleanup_free_ char *s = NULL;
        int r = fm_read_file(FM_TESTBED_STATE, &s, 1 << 20);
        if (r < 0)
                return fm_err(e, -r, r == -ENOENT ? "no testbed is up (run `fastmig testbed up')" : "reading %s: %s",
                              FM_TESTBED_STATE, strerror(-r));
        json_object *o = NULL;
        if (fm_msg_parse(s, (size_t)r, &o, e) < 0)
                return fm_err_wrap(e, "%s", FM_TESTBED_STATE);
        int64_t h = 0, l = 0;
        r = fm_json_int(o, "hosts", true, 1, FM_TESTBED_MAX_HOSTS, &h, e);
        if (r == 0)
                r = fm_json_int(o, "link_mbit", true, 1, 1000000, &l, e);
        json_object *arr = NULL;
        if (r == 0 && pids && json_object_object_get_ex(o, "agent_pids", &arr))
                for (size_t i = 0; i < json_object_array_length(arr) && i < FM_TESTBED_MAX_HOSTS; i++)
                        pids[i] = json_object_get_int(json_object_array_get_idx(arr, i));
        if (r < 0) {
                json_object_put(o);
                return fm_err_wrap(e, "%s", FM_TESTBED_STATE);
        }
        *hosts = (int)h;
        *link = (int)l;
        *shared = fm_json_bool(o, "shared_storage", false);
        if (hooks)
                *hooks = fm_json_bool(o, "test_hooks", false);
        int64_t ex = 0;
        fm_json_int(o, "agent_expiry_s", false, 0, 86400, &ex, NULL);
        if (expiry_s)
                *expiry_s = (int)ex;
        json_object_put(o);
        return 0;
}

int fm_testbed_load(fm_testbed *tb, fm_error *e)
{
        int hosts = 0, link = 0;
        bool shared = false;
        int r = load_raw(&hosts, &link, &shared, NULL, NULL, NULL, e);
        if (r < 0)
                return r;
        fm_testbed_layout(tb, hosts, link, shared);
        return 0;
}

const fm_host *fm_testbed_host(const fm_testbed *tb, const char *name)
{
        for (int i = 0; i < tb->hosts; i++)
                if (!strcmp(tb->host[i].name, name))
                        return &tb->host[i];
        return NULL;
}

int fm_testbed_shape(const char *ns, const char *dev, int mbit, fm_error *e)
{
        /* 256 kB burst and 10 ms latency: the same tbf the measurements in
         * docs/PLATFORM-NOTES.md used; carries ~957 Mbit/s of TCP at 1 Gbit. */
        return fm_testbed_run(e, "ip netns exec %s tc qdisc replace dev %s root tbf rate %dmbit burst 256kb latency 10ms",
                   ns, dev, mbit);
}

int fm_testbed_veth(const char *ns_a, const char *dev_a, const char *ns_b, const char *dev_b, fm_error *e)
{
        return fm_testbed_run(e, "ip link add %s netns %s type veth peer name %s netns %s", dev_a, ns_a, dev_b, ns_b);
}

/* The testbed is a fleet of its own: a CA made afresh at every up, a
 * certificate per host naming its agent's address, one for the operator
 * (this CLI), all in FM_TESTBED_PKI. */
static int testbed_pki(const fm_testbed *tb, fm_error *e)
{
        int r = fm_pki_init(FM_TESTBED_PKI, "testbed", true, e);
        for (int i = 0; r == 0 && i < tb->hosts; i++) {
                const char *addr[] = {tb->host[i].addr};
                r = fm_pki_issue(FM_TESTBED_PKI, tb->host[i].name, "host", addr, 1, 30, e);
        }
        if (r == 0)
                r = fm_pki_issue(FM_TESTBED_PKI, "operator", "operator", NULL, 0, 30, e);
        if (r == 0)
                r = fm_tls_setup(FM_TESTBED_PKI, "operator", e);
        return r < 0 ? fm_err_wrap(e, "the testbed's certificates") : 0;
}

static int start_agent(const fm_testbed *tb, int i, const char *agent_path, bool test_hooks, int expiry_s, pid_t *pid_out,
                       fm_error *e)
{
        const fm_host *h = &tb->host[i];
        char log[300];
        snprintf(log, sizeof(log), "%s/agent.log", h->state);
        int errpipe[2];
        if (pipe2(errpipe, O_CLOEXEC) < 0)
                return fm_err(e, errno, "pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
                return fm_err(e, errno, "fork: %s", strerror(errno));
        if (pid == 0) {
                fm_close(errpipe[0]);
                setsid();
                /* the agent enters its host's namespaces itself (--netns),
                 * after opening what only the initial one offers */
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || nul < 0)
                        _exit(1);
                dup2(nul, 0);
                dup2(fd, 1);
                dup2(fd, 2);
                char listen[40];
                snprintf(listen, sizeof(listen), "%s:%u", h->addr, h->port);
                char *argv[28] = {(char *)agent_path, "--host",   (char *)h->name, "--listen", listen,
                                  "--lxcpath",        (char *)h->lxcpath, "--images", (char *)h->images,
                                  "--state",          (char *)h->state,   "--store",  (char *)h->store,
                                  "--pki",            FM_TESTBED_PKI,     "--netns",  (char *)h->netns,
                                  "--fleet",          FM_TESTBED_FLEET};
                int k = 19;
                if (test_hooks)
                        argv[k++] = "--test-hooks";
                char expiry[16];
                if (expiry_s > 0) {
                        snprintf(expiry, sizeof(expiry), "%d", expiry_s);
                        argv[k++] = "--expiry";
                        argv[k++] = expiry;
                }
                if (h->shared[0]) {
                        argv[k++] = "--shared";
                        argv[k++] = (char *)h->shared;
                }
                execv(agent_path, argv);
                dprintf(errpipe[1], "exec %s: %s", agent_path, strerror(errno));
                _exit(127);
        }
        fm_close(errpipe[1]);
        char msg[512] = "";
        ssize_t n = read(errpipe[0], msg, sizeof(msg) - 1);
        fm_close(errpipe[0]);
        if (n > 0) {
                msg[n] = '\0';
                waitpid(pid, NULL, 0);
                return fm_err(e, EIO, "starting the agent of %s: %s", h->name, msg);
        }
        /* Wait until it answers. */
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("ping"));
        int r = -ETIMEDOUT;
        for (int tries = 0; tries < 500; tries++) {
                json_object *rep = NULL;
                if (fm_call(h->addr, h->port, req, &rep, 1000, NULL) == 0) {
                        json_object_put(rep);
                        r = 0;
                        break;
                }
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        r = -ECHILD;
                        break;
                }
                usleep(10000);
        }
        json_object_put(req);
        if (r < 0) {
                _cleanup_free_ char *text = NULL;
                int n = fm_read_file(log, &text, 1 << 20);
                const char *last = "";
                if (n > 0) {
                        while (n > 0 && text[n - 1] == '\n')
                                text[--n] = '\0';
                        last = strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text;
                }
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return fm_err(e, -r, "the agent of %s did not come up: %s", h->name, last[0] ? last : "no output");
        }
        *pid_out = pid;
        return 0;
}

int fm_testbed_up(const fm_testbed_opts *o, fm_progress_fn progress, void *pdata, fm_error *e)
{
        int hosts = o->hosts, link_mbit = o->link_mbit;
        if (hosts < 2 || hosts > FM_TESTBED_MAX_HOSTS)
                return fm_err(e, EINVAL, "--hosts must be between 2 and %d, not %d", FM_TESTBED_MAX_HOSTS, hosts);
        if (link_mbit < 1 || link_mbit > 100000)
                return fm_err(e, EINVAL, "--link-mbit must be between 1 and 100000, not %d", link_mbit);
        char what[300];
        if (fm_testbed_any_left(what, sizeof(what)))
                return fm_err(e, EEXIST,
                              "a testbed (or part of one: %s) is already here; run `fastmig testbed down' first",
                              what);
        fm_testbed tb;
        fm_testbed_layout(&tb, hosts, link_mbit, o->shared_storage);
        pid_t agents[FM_TESTBED_MAX_HOSTS] = {0};
        int r;
#define STEP(x)                                                                                 \
        do {                                                                                    \
                if ((r = (x)) < 0)                                                              \
                        goto fail;                                                              \
        } while (0)
        if (progress)
                progress("namespaces and links", pdata);
        STEP(save_state(&tb, agents, o->test_hooks, o->agent_expiry_s, e)); /* so that `down' can clean a half-built testbed */
        STEP(fm_testbed_run(e, "ip netns add %s", FM_TESTBED_CORE_NS));
        STEP(fm_testbed_run(e, "ip netns add %s", FM_TESTBED_UE_NS));
        STEP(fm_testbed_run(e, "ip -n %s link set lo up", FM_TESTBED_CORE_NS));
        STEP(fm_testbed_run(e, "ip -n %s link set lo up", FM_TESTBED_UE_NS));
        STEP(fm_testbed_run(e, "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", FM_TESTBED_CORE_NS));
        STEP(fm_testbed_veth(FM_TESTBED_UE_NS, "eth0", FM_TESTBED_CORE_NS, "ue", e));
        STEP(fm_testbed_run(e, "ip -n %s addr add %s/24 dev eth0", FM_TESTBED_UE_NS, FM_TESTBED_UE_ADDR));
        STEP(fm_testbed_run(e, "ip -n %s addr add 10.77.0.1/24 dev ue", FM_TESTBED_CORE_NS));
        STEP(fm_testbed_run(e, "ip -n %s link set eth0 up", FM_TESTBED_UE_NS));
        STEP(fm_testbed_run(e, "ip -n %s link set ue up", FM_TESTBED_CORE_NS));
        STEP(fm_testbed_run(e, "ip -n %s route add default via 10.77.0.1", FM_TESTBED_UE_NS));
        for (int i = 0; i < hosts; i++) {
                fm_host *h = &tb.host[i];
                STEP(fm_testbed_run(e, "ip netns add %s", h->netns));
                STEP(fm_testbed_run(e, "ip -n %s link set lo up", h->netns));
                STEP(fm_testbed_run(e, "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", h->netns));
                STEP(fm_testbed_veth(h->netns, "eth0", FM_TESTBED_CORE_NS, h->name, e));
                STEP(fm_testbed_run(e, "ip -n %s addr add %s/24 dev eth0", h->netns, h->addr));
                STEP(fm_testbed_run(e, "ip -n %s addr add 10.77.%d.1/24 dev %s", FM_TESTBED_CORE_NS, i + 1, h->name));
                STEP(fm_testbed_run(e, "ip -n %s link set eth0 up", h->netns));
                STEP(fm_testbed_run(e, "ip -n %s link set %s up", FM_TESTBED_CORE_NS, h->name));
                STEP(fm_testbed_run(e, "ip -n %s route add default via 10.77.%d.1", h->netns, i + 1));
                STEP(fm_testbed_shape(h->netns, "eth0", link_mbit, e));
                STEP(fm_testbed_shape(FM_TESTBED_CORE_NS, h->name, link_mbit, e));
                STEP(fm_testbed_run(e, "ip -n %s link add %s address %s type bridge", h->netns, FM_TESTBED_BRIDGE,
                         FM_TESTBED_GATEWAY_MAC));
                STEP(fm_testbed_run(e, "ip -n %s addr add %s/24 dev %s", h->netns, FM_TESTBED_GATEWAY, FM_TESTBED_BRIDGE));
                STEP(fm_testbed_run(e, "ip -n %s link set %s up", h->netns, FM_TESTBED_BRIDGE));
                /* dirs and the image tmpfs */
                if ((r = fm_mkdir_p(h->lxcpath, 0755)) < 0 || (r = fm_mkdir_p(h->images, 0700)) < 0 ||
                    (r = fm_mkdir_p(h->store, 0755)) < 0 ||
                    (r = fm_mkdir_p(h->state, 0755)) < 0) {
                        r = fm_err(e, -r, "creating the directories of %s: %s", h->name, strerror(-r));
                        goto fail;
                }
                if (mount("fastmig-images", h->images, "tmpfs", MS_NOSUID | MS_NODEV, "size=50%,mode=0700") < 0) {
                        r = fm_err(e, errno, "mounting tmpfs on %s: %s", h->images, strerror(errno));
                        goto fail;
                }
        }
        if (tb.shared) {
                /* before the agents: their mount namespaces copy the mounts */
                if (progress)
                        progress("storage host (GlusterFS)", pdata);
                STEP(fm_storage_up(&tb, e));
        }
        STEP(testbed_pki(&tb, e));
        fm_fleet fleet;
        fm_testbed_fleet(&tb, &fleet);
        STEP(fm_fleet_save(FM_TESTBED_FLEET, &fleet, e));
        for (int i = 0; i < hosts; i++) {
                if (progress)
                        progress(tb.host[i].name, pdata);
                STEP(start_agent(&tb, i, o->agent_path, o->test_hooks, o->agent_expiry_s, &agents[i], e));
                STEP(save_state(&tb, agents, o->test_hooks, o->agent_expiry_s, e));
        }
        return 0;
fail:
        fm_err_wrap(e, "testbed up");
        fm_testbed_down(NULL, NULL, NULL);
        return r;
#undef STEP
}

/* Stops every container on a host (inside its namespaces), so that no LXC
 * monitor or container process outlives the testbed. */
static void stop_containers(const fm_host *h)
{
        DIR *d = opendir(h->lxcpath);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char *argv[] = {"lxc-stop", "-k", "-P", (char *)h->lxcpath, "-n", de->d_name, NULL};
                fm_testbed_exec(h, argv, FM_EXEC_QUIET, NULL);
        }
        closedir(d);
}

/* Empty cgroups left by the containers of a host (their processes are gone). */
static void sweep_cgroups(const fm_host *h)
{
        DIR *d = opendir(h->lxcpath);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        fm_ct_cgroup_sweep(de->d_name);
        closedir(d);
}

void fm_testbed_kill_netns(const char *ns)
{
        fm_spawn_opts o = {.timeout_ms = 5000};
        char *argv[] = {"ip", "netns", "pids", (char *)ns, NULL};
        if (fm_spawn(argv, &o) == 0 && o.output) {
                char *save = NULL;
                for (char *t = strtok_r(o.output, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
                        uint32_t pid = 0;
                        if (fm_parse_u32(t, &pid) == 0 && pid > 1)
                                kill((pid_t)pid, SIGKILL);
                }
        }
        free(o.output);
}

/* An agent's end: SIGTERM, and a pidfd to see it end (agents are not our
 * children: `testbed up' started them). -1 when it is gone already, is no
 * agent (a pid from the state file, reused), or pidfds are missing (then it
 * only gets the SIGTERM). */
static int agent_term(pid_t pid)
{
        int fd = pidfd_open(pid, 0);
        if (fd < 0) {
                if (errno == ENOSYS)
                        kill(pid, SIGTERM);
                return -1;
        }
        char path[64];
        _cleanup_free_ char *comm = NULL;
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        if (fm_read_file(path, &comm, 64) < 0 || strncmp(comm, "fastmigd", 8) ||
            pidfd_send_signal(fd, SIGTERM, NULL, 0) < 0)
                return fm_close(fd);
        return fd;
}

/* Waits for the agents to end, SIGKILLs those that have not after
 * AGENT_STOP_MS, closes the fds. A stopping agent lets the requests under way
 * finish for up to 5 s (FM_AGENT_STOP_GRACE_MS) and the sanitized one then
 * writes its leak report (test_sanitized.sh reads it after down). */
#define AGENT_STOP_MS 10000
static void agents_wait(int *fds, int n)
{
        double until = fm_now_ms() + AGENT_STOP_MS;
        for (int i = 0; i < n; i++) {
                if (fds[i] < 0)
                        continue;
                struct pollfd pf = {.fd = fds[i], .events = POLLIN};
                int r;
                do {
                        double left = until - fm_now_ms();
                        r = poll(&pf, 1, left > 0 ? (int)left : 0);
                } while (r < 0 && errno == EINTR);
                if (r <= 0)
                        pidfd_send_signal(fds[i], SIGKILL, NULL, 0);
                fds[i] = fm_close(fds[i]);
        }
}

int fm_testbed_agent(const char *host, bool start, const char *agent_path, fm_error *e)
{
        int hosts = 0, link = 0;
        bool shared = false, hooks = false;
        int expiry = 0;
        pid_t pids[FM_TESTBED_MAX_HOSTS] = {0};
        int r = load_raw(&hosts, &link, &shared, pids, &hooks, &expiry, e);
        if (r < 0)
                return r;
        fm_testbed tb;
        fm_testbed_layout(&tb, hosts, link, shared);
        int i = 0;
        while (i < hosts && strcmp(tb.host[i].name, host))
                i++;
        if (i == hosts)
                return fm_err(e, ENOENT, "no host `%s' in the testbed (it has mec1..mec%d)", host, hosts);
        /* the agent of record, if it still runs (its pid may be reused) */
        int fd = pids[i] > 0 ? pidfd_open(pids[i], 0) : -1;
        char path[64];
        _cleanup_free_ char *comm = NULL;
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pids[i]);
        if (fd >= 0 && (fm_read_file(path, &comm, 64) < 0 || strncmp(comm, "fastmigd", 8)))
                fd = fm_close(fd);
        if (start) {
                if (fd >= 0) {
                        fm_close(fd);
                        return fm_err(e, EEXIST, "the agent of %s runs already (pid %d)", host, (int)pids[i]);
                }
                pid_t pid = 0;
                if ((r = start_agent(&tb, i, agent_path, hooks, expiry, &pid, e)) < 0)
                        return r;
                pids[i] = pid;
        } else {
                if (fd < 0)
                        return fm_err(e, ESRCH, "the agent of %s does not run", host);
                /* as a crash would: no chance to clean up */
                pidfd_send_signal(fd, SIGKILL, NULL, 0);
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                while (poll(&pf, 1, 10000) < 0 && errno == EINTR)
                        ;
                fm_close(fd);
                pids[i] = 0;
        }
        return save_state(&tb, pids, hooks, expiry, e);
}

int fm_testbed_link(const char *host, bool cut, fm_error *e)
{
        fm_testbed tb;
        int r = fm_testbed_load(&tb, e);
        if (r < 0)
                return r;
        const fm_host *h = fm_testbed_host(&tb, host);
        if (!h)
                return fm_err(e, ENOENT, "no host `%s' in the testbed (it has mec1..mec%d)", host, tb.hosts);
        /* what the core forwards to and from the host: its peers and the
         * users; the core's own connections to its agent (fastmig's) stay */
        const char *op = cut ? "-I" : "-D";
        r = fm_testbed_run(e, "ip netns exec %s iptables %s FORWARD -i %s -j DROP", FM_TESTBED_CORE_NS, op, h->name);
        if (r == 0)
                r = fm_testbed_run(e, "ip netns exec %s iptables %s FORWARD -o %s -j DROP", FM_TESTBED_CORE_NS, op,
                                   h->name);
        return r < 0 ? fm_err_wrap(e, "%s %s's link", cut ? "cutting" : "restoring", host) : 0;
}

int fm_testbed_down(fm_progress_fn progress, void *pdata, fm_error *e)
{
        int hosts = 0, link = 0;
        bool shared = true; /* unknown: look for everything */
        pid_t pids[FM_TESTBED_MAX_HOSTS] = {0};
        if (load_raw(&hosts, &link, &shared, pids, NULL, NULL, NULL) < 0)
                hosts = FM_TESTBED_MAX_HOSTS;
        int agent_fds[FM_TESTBED_MAX_HOSTS];
        fm_testbed tb;
        fm_testbed_layout(&tb, hosts, link, shared);
        fm_testbed_orch_stop(true, NULL); /* it would only see its agents go */
        for (int i = 0; i < hosts; i++) {
                const fm_host *h = &tb.host[i];
                agent_fds[i] = -1;
                if (!netns_exists(h->netns) && !fm_path_exists(h->lxcpath))
                        continue;
                if (progress)
                        progress(h->name, pdata);
                if (netns_exists(h->netns))
                        stop_containers(h);
                if (pids[i] > 0)
                        agent_fds[i] = agent_term(pids[i]);
        }
        agents_wait(agent_fds, hosts);
        if (tb.shared)
                fm_storage_down(&tb);
        fm_strv ns = {0};
        list_fm_netns(&ns);
        for (size_t i = 0; i < ns.n; i++) {
                fm_testbed_kill_netns(ns.v[i]);
                fm_testbed_run(NULL, "ip netns del %s", ns.v[i]);
        }
        fm_strv_free(&ns);
        fm_stream_sweep(); /* the video clients ended with the ue */
        for (int i = 0; i < hosts; i++) {
                if (fm_testbed_is_mountpoint(tb.host[i].images))
                        umount2(tb.host[i].images, MNT_DETACH);
                sweep_cgroups(&tb.host[i]);
        }
        int r = fm_rm_rf(FM_TESTBED_ROOT);
        unlink(FM_TESTBED_STATE);
        char what[300];
        if (fm_testbed_any_left(what, sizeof(what)))
                return fm_err(e, EBUSY, "testbed down left %s behind", what);
        if (r < 0)
                return fm_err(e, -r, "removing %s: %s", FM_TESTBED_ROOT, strerror(-r));
        return 0;
}

int fm_testbed_exec(const fm_host *h, char *const argv[], int flags, fm_error *e)
{
        pid_t pid = fork();
        if (pid < 0)
                return fm_err(e, errno, "fork: %s", strerror(errno));
        if (pid == 0) {
                fm_error ce = {0};
                if (fm_netns_enter_host(h->netns, &ce) < 0 ||
                    ((flags & FM_EXEC_PRIVATE_RUN) && fm_netns_private_run(&ce) < 0)) {
                        fprintf(stderr, "fastmig: %s\n", ce.msg);
                        _exit(125);
                }
                if (flags & FM_EXEC_QUIET) {
                        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                        dup2(nul, 0);
                        dup2(nul, 1);
                        dup2(nul, 2);
                }
                execvp(argv[0], argv);
                fprintf(stderr, "fastmig: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int fm_testbed_orch_stop(bool hard, fm_error *e)
{
        _cleanup_free_ char *text = NULL;
        if (fm_read_file(FM_TESTBED_ORCH "/pid", &text, 64) < 0)
                return 0;
        uint32_t pid = 0;
        text[strcspn(text, "\n")] = '\0';
        if (fm_parse_u32(text, &pid) < 0 || pid < 2) {
                unlink(FM_TESTBED_ORCH "/pid");
                return 0;
        }
        /* only the process that file names, not one that took its pid: the
         * pidfd is taken first, then the name checked */
        int fd = pidfd_open((pid_t)pid, 0);
        char path[64];
        _cleanup_free_ char *comm = NULL;
        snprintf(path, sizeof(path), "/proc/%u/comm", pid);
        if (fd >= 0 && (fm_read_file(path, &comm, 64) < 0 || strncmp(comm, "fastmig-orchd", 13)))
                fd = fm_close(fd);
        if (fd >= 0) {
                pidfd_send_signal(fd, hard ? SIGKILL : SIGTERM, NULL, 0);
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                if (poll(&pf, 1, 30000) == 0) {
                        pidfd_send_signal(fd, SIGKILL, NULL, 0);
                        poll(&pf, 1, 10000);
                }
                fm_close(fd);
                waitpid((pid_t)pid, NULL, WNOHANG);
        }
        unlink(FM_TESTBED_ORCH "/pid");
        (void)e;
        return 0;
}
