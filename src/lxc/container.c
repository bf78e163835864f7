#include "container.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <lxc/lxccontainer.h>
#include <string.h>

#include "ctnet.h"
#include "util/netns.h"
#include "util/spawn.h"

static struct lxc_container *ct_open(const char *lxcpath, const char *name, fm_error *e)
{
        if (!fm_name_is_valid(name)) {
                fm_err(e, EINVAL, "bad container name `%s'", name ? name : "");
                return NULL;
        }
        struct lxc_container *c = lxc_container_new(name, lxcpath);
        if (!c)
                fm_err(e, ENOMEM, "liblxc could not open container %s in %s", name, lxcpath);
        return c;
}

static char *config_item(struct lxc_container *c, const char *key)
{
        int len = c->get_config_item(c, key, NULL, 0);
        if (len <= 0)
                return NULL;
        char *v = calloc(1, (size_t)len + 1);
        if (v && c->get_config_item(c, key, v, len + 1) < 0) {
                free(v);
                return NULL;
        }
        return v;
}

int fm_ct_memory_bytes(const char *lxcpath, const char *name, uint64_t *out, fm_error *e)
{
        struct lxc_container *c = ct_open(lxcpath, name, e);
        if (!c)
                return -e->code;
        char buf[64] = "";
        /* cgroup v1's memory controller, else v2's */
        int n = c->is_running(c) ? c->get_cgroup_item(c, "memory.usage_in_bytes", buf, sizeof(buf) - 1) : -1;
        if (n <= 0 && c->is_running(c))
                n = c->get_cgroup_item(c, "memory.current", buf, sizeof(buf) - 1);
        lxc_container_put(c);
        if (n <= 0)
                return fm_err(e, ENOENT, "%s: no memory use to read (not running?)", name);
        buf[n] = '\0';
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (end == buf)
                return fm_err(e, EIO, "%s: memory use `%.20s' is not a number", name, buf);
        *out = v;
        return 0;
}

int fm_ct_info_get(const char *lxcpath, const char *name, fm_ct_info *out, fm_error *e)
{
        struct lxc_container *c = ct_open(lxcpath, name, e);
        if (!c)
                return -e->code;
        fm_ct_info i = {0};
        i.defined = c->is_defined(c);
        if (i.defined) {
                const char *st = c->state(c);
                snprintf(i.state, sizeof(i.state), "%s", st ? st : "UNKNOWN");
                i.running = c->is_running(c);
                i.frozen = !strcmp(i.state, "FROZEN");
                _cleanup_free_ char *ip = config_item(c, "lxc.net.0.ipv4.address");
                if (ip) {
                        char *sl = strchr(ip, '/');
                        if (sl)
                                *sl = '\0';
                        char *nl = strchr(ip, '\n');
                        if (nl)
                                *nl = '\0';
                        snprintf(i.ipv4, sizeof(i.ipv4), "%s", ip);
                }
                fm_ctnet net;
                fm_error ignore = {0};
                if (!i.ipv4[0] && fm_ctnet_read(lxcpath, name, &net, &ignore) == 0)
                        snprintf(i.ipv4, sizeof(i.ipv4), "%s", net.ip);
                _cleanup_free_ char *rootfs = config_item(c, "lxc.rootfs.path");
                if (rootfs) {
                        const char *p = strncmp(rootfs, "dir:", 4) ? rootfs : rootfs + 4;
                        snprintf(i.rootfs, sizeof(i.rootfs), "%s", p);
                }
        } else {
                snprintf(i.state, sizeof(i.state), "UNDEFINED");
        }
        lxc_container_put(c);
        *out = i;
        return 0;
}

int fm_ct_check_migratable(const char *lxcpath, const char *name, fm_error *e)
{
        struct lxc_container *c = ct_open(lxcpath, name, e);
        if (!c)
                return -e->code;
        int r = 0;
        _cleanup_free_ char *ip = NULL;
        _cleanup_free_ char *tty = NULL;
        _cleanup_free_ char *console = NULL;
        _cleanup_free_ char *aa = NULL;
        _cleanup_free_ char *rootfs = NULL;
        _cleanup_free_ char *nettype = NULL;
        _cleanup_free_ char *share = NULL;
        fm_ctnet net;
        fm_error ignore = {0};
        if (!c->is_defined(c)) {
                r = fm_err(e, ENOENT, "container %s does not exist in %s", name, lxcpath);
                goto out;
        }
        if (!c->is_running(c)) {
                r = fm_err(e, ESRCH, "container %s is not running (state %s)", name, c->state(c));
                goto out;
        }
        ip = config_item(c, "lxc.net.0.ipv4.address");
        nettype = config_item(c, "lxc.net.0.type");
        tty = config_item(c, "lxc.tty.max");
        console = config_item(c, "lxc.console.path");
        aa = config_item(c, "lxc.apparmor.profile");
        rootfs = config_item(c, "lxc.rootfs.path");
        share = config_item(c, "lxc.namespace.share.net");
        bool own_net = fm_ctnet_read(lxcpath, name, &net, &ignore) == 0;
        if (own_net) { /* fastmig keeps its namespace (ctnet.h): no lxc.net lines */
                char want[128];
                fm_ctnet_path(name, want, sizeof(want));
                if (!share || strcmp(share, want) || (nettype && *nettype))
                        r = fm_err(e, EINVAL, "container %s: has a fastmig-net record but its config does not say "
                                              "only lxc.namespace.share.net = %s", name, want);
        } else if (!nettype || strncmp(nettype, "veth", 4))
                r = fm_err(e, EINVAL, "container %s: lxc.net.0.type must be veth (on a bridge) to keep its service IP", name);
        else if (!ip || !*ip)
                r = fm_err(e, EINVAL,
                           "container %s has no static IPv4 (set lxc.net.0.ipv4.address; a DHCP client's packet "
                           "socket cannot be checkpointed)", name);
        if (r < 0)
                goto out;
        if (!tty || strcmp(tty, "0"))
                r = fm_err(e, EINVAL, "container %s: lxc.tty.max must be 0 (is %s); CRIU cannot restore LXC ttys "
                           "(`tty: Unable to find a master')", name, tty ? tty : "unset");
        else if (!console || strcmp(console, "none"))
                r = fm_err(e, EINVAL, "container %s: lxc.console.path must be `none' (is `%s')", name,
                           console ? console : "unset");
        else if (aa && *aa)
                r = fm_err(e, EINVAL, "container %s: remove the lxc.apparmor.profile line (`%s'); restore fails "
                           "on a kernel without AppArmor", name, aa);
        else if (!rootfs || (strncmp(rootfs, "dir:", 4) && rootfs[0] != '/'))
                r = fm_err(e, EINVAL, "container %s: only directory rootfs are supported (lxc.rootfs.path = `%s')",
                           name, rootfs ? rootfs : "unset");
out:
        lxc_container_put(c);
        return r;
}

/* The container's v1 freezer directory, found through its init process.
 * Why not c->freeze()/unfreeze(): on this cgroup layout (v1 controllers plus
 * a v2 tree) liblxc reports a restored, still frozen container as RUNNING and
 * its unfreeze leaves the v1 freezer FROZEN; and CRIU's own freeze polls the
 * freezer every 100 ms. Writing the freezer and polling it finely avoids both. */
static int freezer_dir(const char *lxcpath, const char *name, char *buf, size_t n, fm_error *e)
{
        struct lxc_container *c = ct_open(lxcpath, name, e);
        if (!c)
                return -e->code;
        pid_t pid = c->is_running(c) ? c->init_pid(c) : -1;
        lxc_container_put(c);
        if (pid <= 0)
                return fm_err(e, ESRCH, "container %s is not running", name);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
        _cleanup_free_ char *cg = NULL;
        int r = fm_read_file(path, &cg, 1 << 16);
        if (r < 0)
                return fm_err(e, -r, "reading %s: %s", path, strerror(-r));
        char *line = strstr(cg, ":freezer:");
        if (!line)
                return fm_err(e, ENOENT, "container %s has no v1 freezer cgroup", name);
        line += strlen(":freezer:");
        char *nl = strchr(line, '\n');
        if (nl)
                *nl = '\0';
        snprintf(buf, n, "/sys/fs/cgroup/freezer%s", line);
        return 0;
}

static int freezer_set(const char *lxcpath, const char *name, bool freeze, fm_error *e)
{
        char dir[600], state[700];
        int r = freezer_dir(lxcpath, name, dir, sizeof(dir), e);
        if (r < 0)
                return r;
        snprintf(state, sizeof(state), "%s/freezer.state", dir);
        const char *want = freeze ? "FROZEN" : "THAWED";
        _cleanup_close_ int fd = open(state, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return fm_err(e, errno, "opening %s: %s", state, strerror(errno));
        uint64_t deadline = fm_now_ns() + 10000000000ull;
        for (unsigned i = 0;; i++) {
                /* rewrite now and then: a freeze can stall on a task in the kernel */
                if (i % 1000 == 0 && pwrite(fd, want, strlen(want), 0) < 0)
                        return fm_err(e, errno, "writing %s to %s: %s", want, state, strerror(errno));
                char cur[16] = "";
                ssize_t n = pread(fd, cur, sizeof(cur) - 1, 0);
                if (n > 0 && !strncmp(cur, want, strlen(want)))
                        return 0;
                if (fm_now_ns() > deadline)
                        return fm_err(e, ETIMEDOUT, "container %s did not reach %s in 10 s", name, want);
                usleep(50);
        }
}

int fm_ct_freeze(const char *lxcpath, const char *name, fm_error *e) { return freezer_set(lxcpath, name, true, e); }

static int collect_pids(const char *dir, pid_t **v, size_t *n, size_t *cap)
{
        char path[1200];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1) {
                if (*n == *cap) {
                        size_t nc = *cap ? *cap * 2 : 64;
                        pid_t *nv = realloc(*v, nc * sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        *v = nv;
                        *cap = nc;
                }
                (*v)[(*n)++] = (pid_t)pid;
        }
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.') {
                        char sub[1200];
                        snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
                        r = collect_pids(sub, v, n, cap);
                }
        closedir(d);
        return r;
}

int fm_ct_pids(const char *lxcpath, const char *name, pid_t **pids, size_t *n, fm_error *e)
{
        char dir[600];
        int r = freezer_dir(lxcpath, name, dir, sizeof(dir), e);
        if (r < 0)
                return r;
        pid_t *v = NULL;
        size_t cnt = 0, cap = 0;
        if ((r = collect_pids(dir, &v, &cnt, &cap)) < 0) {
                free(v);
                return fm_err(e, -r, "listing the processes of %s: %s", name, strerror(-r));
        }
        *pids = v;
        *n = cnt;
        return 0;
}

int fm_ct_wait_frozen(const char *lxcpath, const char *name, const volatile bool *stop, int timeout_ms,
                      fm_error *e)
{
        char dir[600], state[700];
        int r = freezer_dir(lxcpath, name, dir, sizeof(dir), e);
        if (r < 0)
                return r;
        snprintf(state, sizeof(state), "%s/freezer.state", dir);
        _cleanup_close_ int fd = open(state, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fm_err(e, errno, "opening %s: %s", state, strerror(errno));
        uint64_t deadline = fm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
        for (;;) {
                char cur[16] = "";
                if (pread(fd, cur, sizeof(cur) - 1, 0) > 0 && !strncmp(cur, "FROZEN", 6))
                        return 0;
                if ((stop && *stop) || fm_now_ns() > deadline)
                        return fm_err(e, ETIMEDOUT, "container %s was not frozen", name);
                usleep(100);
        }
}
int fm_ct_unfreeze(const char *lxcpath, const char *name, fm_error *e) { return freezer_set(lxcpath, name, false, e); }

int fm_ct_start(const char *lxcpath, const char *name, fm_error *e)
{
        /* lxc-start rather than c->start(): the monitor must not be a fork of a
         * multi-threaded agent that holds sockets. */
        char *argv[] = {"lxc-start", "-P", (char *)lxcpath, "-n", (char *)name, NULL};
        fm_ct_info i;
        if (fm_ct_info_get(lxcpath, name, &i, e) < 0)
                return -e->code;
        if (i.running)
                return fm_err(e, EEXIST, "container %s already runs", name);
        /* a namespace fastmig keeps is made afresh for each start */
        fm_ctnet net;
        int r = fm_ctnet_read(lxcpath, name, &net, e);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == 0 && fm_ctnet_create(name, &net, true, e) < 0)
                return -e->code;
        fm_spawn_opts o = {.detach_stdio = true, .timeout_ms = 30000};
        bool made = r == 0;
        r = fm_spawn(argv, &o);
        if (r != 0) {
                if (made) /* an address on the bridge with nothing behind it */
                        fm_ctnet_destroy(name);
                return fm_err(e, EIO, "lxc-start of %s failed (status %d)", name, r);
        }
        return 0;
}

static bool cgroup_name_matches(const char *entry, const char *name)
{
        static const char *const prefixes[] = {"lxc.payload.", "lxc.monitor."};
        for (size_t i = 0; i < FM_ARRAY_SIZE(prefixes); i++) {
                size_t pl = strlen(prefixes[i]), nl = strlen(name);
                if (strncmp(entry, prefixes[i], pl) || strncmp(entry + pl, name, nl))
                        continue;
                const char *rest = entry + pl + nl;
                if (!*rest)
                        return true;
                if (*rest++ != '-' || !*rest)
                        continue;
                while (*rest >= '0' && *rest <= '9')
                        rest++;
                if (!*rest)
                        return true;
        }
        return false;
}

/* rmdir of a cgroup tree, children first; the kernel refuses (EBUSY) any
 * cgroup that still has tasks, so only empty ones go. */
static void cgroup_rmdir_tree(const char *path)
{
        DIR *d = opendir(path);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        char sub[1024];
                        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                        cgroup_rmdir_tree(sub);
                }
                closedir(d);
        }
        rmdir(path);
}

void fm_ct_cgroup_sweep(const char *name)
{
        /* Why: a restored container gets a new cgroup name from LXC (NAME-1,
         * NAME-2...) while CRIU puts it back into the v2 path it was dumped
         * from; LXC removes only its own on stop, so empty ones pile up and
         * each restore on the machine picks a longer suffix. Only safe when
         * no container of that name runs on this machine: an empty LXC
         * cgroup may still be the one lxc-attach uses for a restored
         * container (its tasks sit in the path CRIU restored). */
        if (!fm_name_is_valid(name))
                return;
        DIR *root = opendir("/sys/fs/cgroup");
        if (!root)
                return;
        struct dirent *h;
        while ((h = readdir(root))) {
                if (h->d_name[0] == '.')
                        continue;
                char hier[512];
                snprintf(hier, sizeof(hier), "/sys/fs/cgroup/%s", h->d_name);
                DIR *d = opendir(hier);
                if (!d)
                        continue;
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_type == DT_DIR && cgroup_name_matches(de->d_name, name)) {
                                char p[1024];
                                snprintf(p, sizeof(p), "%s/%s", hier, de->d_name);
                                cgroup_rmdir_tree(p);
                        }
                closedir(d);
        }
        closedir(root);
}

int fm_ct_destroy(const char *lxcpath, const char *name, fm_error *e)
{
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name ? name : "");
        fm_ct_info i;
        if (fm_ct_info_get(lxcpath, name, &i, e) < 0)
                return -e->code;
        if (i.running) {
                char *argv[] = {"lxc-stop", "-k", "-P", (char *)lxcpath, "-n", (char *)name, NULL};
                fm_spawn_opts o = {.detach_stdio = true, .timeout_ms = 30000};
                fm_spawn(argv, &o);
                /* its directory goes only once it is stopped: a caller is
                 * told "gone" only when it is */
                if (fm_ct_info_get(lxcpath, name, &i, e) < 0)
                        return -e->code;
                if (i.running)
                        return fm_err(e, EBUSY, "container %s still runs after lxc-stop -k", name);
        }
        fm_ctnet net;
        fm_error ignore = {0};
        if (fm_ctnet_read(lxcpath, name, &net, &ignore) == 0)
                fm_ctnet_destroy(name);
        char dir[600];
        snprintf(dir, sizeof(dir), "%s/%s", lxcpath, name);
        int r = fm_rm_rf(dir);
        if (r < 0)
                return fm_err(e, -r, "removing %s: %s", dir, strerror(-r));
        return 0;
}

/* Where a container's gratuitous ARP goes out: its namespace, address and
 * interface. */
typedef struct announce_at {
        char nspath[128];
        char ip[64];
        char ifname[IFNAMSIZ];
} announce_at;

static int announce_find(const char *lxcpath, const char *name, announce_at *at, fm_error *e)
{
        fm_ctnet net;
        fm_error ignore = {0};
        snprintf(at->ifname, sizeof(at->ifname), "eth0");
        if (fm_ctnet_read(lxcpath, name, &net, &ignore) == 0 && fm_ctnet_exists(name)) {
                /* a namespace fastmig keeps: no need to ask LXC (ms) */
                fm_ctnet_path(name, at->nspath, sizeof(at->nspath));
                snprintf(at->ip, sizeof(at->ip), "%s", net.ip);
                return 0;
        }
        struct lxc_container *c = ct_open(lxcpath, name, e);
        if (!c)
                return -e->code;
        pid_t pid = c->is_running(c) ? c->init_pid(c) : -1;
        _cleanup_free_ char *ip = config_item(c, "lxc.net.0.ipv4.address");
        _cleanup_free_ char *ifname = config_item(c, "lxc.net.0.name");
        lxc_container_put(c);
        if (pid <= 0 || !ip)
                return fm_err(e, ESRCH, "container %s: no running init or no IPv4 to announce", name);
        snprintf(at->nspath, sizeof(at->nspath), "/proc/%d/ns/net", pid);
        snprintf(at->ip, sizeof(at->ip), "%.*s", (int)strcspn(ip, "/\n"), ip);
        if (ifname && *ifname)
                snprintf(at->ifname, sizeof(at->ifname), "%s", ifname);
        return 0;
}

/* A packet socket in that namespace. Closing one waits for the network's
 * RCU grace period (synchronize_net, ~10 ms here): where that matters, the
 * socket is made ahead and closed off the path (close_later). */
static int announce_socket(const announce_at *at, const char *name, fm_error *e)
{
        int fd = fm_netns_socket(at->nspath, AF_PACKET, SOCK_DGRAM, htons(ETH_P_ARP), e);
        return fd < 0 ? fm_err_wrap(e, "container %s", name) : fd;
}

static void *close_thread(void *arg)
{
        close((int)(intptr_t)arg);
        return NULL;
}

static void close_later(int fd)
{
        pthread_t t;
        pthread_attr_t a;
        if (fd < 0)
                return;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, close_thread, (void *)(intptr_t)fd) != 0)
                close(fd);
        pthread_attr_destroy(&a);
}

/* Gratuitous ARP (a request and a reply) for at->ip out of its interface. */
static int announce_send(int sock, const announce_at *at, const char *name, fm_error *e)
{
        struct in_addr addr;
        if (inet_pton(AF_INET, at->ip, &addr) != 1)
                return fm_err(e, EINVAL, "container %s: bad IPv4 `%s'", name, at->ip);
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", at->ifname);
        if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0)
                return fm_err(e, errno, "container %s has no interface %s", name, ifr.ifr_name);
        int ifindex = ifr.ifr_ifindex;
        if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0)
                return fm_err(e, errno, "reading the MAC of %s in %s: %s", ifr.ifr_name, name, strerror(errno));
        struct __attribute__((packed)) {
                uint16_t htype, ptype;
                uint8_t hlen, plen;
                uint16_t op;
                uint8_t sha[6];
                uint32_t spa;
                uint8_t tha[6];
                uint32_t tpa;
        } arp = {.htype = htons(1), .ptype = htons(ETH_P_IP), .hlen = 6, .plen = 4, .spa = addr.s_addr,
                 .tpa = addr.s_addr};
        memcpy(arp.sha, ifr.ifr_hwaddr.sa_data, 6);
        struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP), .sll_ifindex = ifindex,
                                 .sll_halen = 6};
        memset(to.sll_addr, 0xff, 6);
        /* a request and a reply: neighbours differ in which one they learn from */
        for (uint16_t op = 1; op <= 2; op++) {
                arp.op = htons(op);
                if (sendto(sock, &arp, sizeof(arp), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
                        return fm_err(e, errno, "sending gratuitous ARP for %s: %s", at->ip, strerror(errno));
        }
        return 0;
}

/* Gratuitous ARP from inside the container's network namespace. */
int fm_ct_announce(const char *lxcpath, const char *name, fm_error *e)
{
        announce_at at;
        if (announce_find(lxcpath, name, &at, e) < 0)
                return -e->code;
        _cleanup_close_ int sock = announce_socket(&at, name, e);
        return sock < 0 ? sock : announce_send(sock, &at, name, e);
}

static void log_tail(const char *path, char *buf, size_t n)
{
        _cleanup_free_ char *s = NULL;
        buf[0] = '\0';
        int len = fm_read_file(path, &s, 8 << 20);
        if (len <= 0)
                return;
        /* the last line that says Error, else the last line */
        char *best = NULL;
        for (char *p = s; (p = strstr(p, "Error")); p++)
                best = p;
        if (!best) {
                best = s + len - 1;
                while (best > s && *best == '\n')
                        *best-- = '\0';
                while (best > s && best[-1] != '\n')
                        best--;
        }
        char *nl = strchr(best, '\n');
        if (nl)
                *nl = '\0';
        snprintf(buf, n, "%s", best);
}

static int checkpoint_tool(const char *lxcpath, const char *name, const char *dir, const char *criu_conf,
                           const char *const *extra, bool restore, int timeout_ms, fm_error *e)
{
        char env[600], netenv[200] = "";
        snprintf(env, sizeof(env), "CRIU_CONFIG_FILE=%s", criu_conf ? criu_conf : "/dev/null");
        const char *envv[16] = {env};
        size_t n = 1;
        bool wrapped = false;
        for (size_t i = 0; extra && extra[i] && n + 2 < FM_ARRAY_SIZE(envv); i++) {
                envv[n++] = extra[i];
                wrapped |= !strncmp(extra[i], "FASTMIG_REAL_CRIU=", 18);
        }
        /* a namespace fastmig keeps stays out of CRIU's images: fm-criu-wrap
         * names it external in the dump and hands the target's to the restore */
        fm_ctnet net;
        int r = fm_ctnet_read(lxcpath, name, &net, e);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == 0) {
                char path[128];
                fm_ctnet_path(name, path, sizeof(path));
                if (!wrapped)
                        return fm_err(e, EOPNOTSUPP, "%s's network namespace is kept outside CRIU's images, which "
                                                     "needs fm-criu-wrap", name);
                if (restore && !fm_path_exists(path))
                        return fm_err(e, ENOENT, "no network namespace %s to restore %s into", path, name);
                if (restore)
                        snprintf(netenv, sizeof(netenv), "FASTMIG_NETNS=%s", path);
                else
                        snprintf(netenv, sizeof(netenv), "FASTMIG_NET_EXTERNAL=%s", FM_CTNET_KEY);
                envv[n++] = netenv;
        }
        fm_strv argv = {0};
        fm_strv_push(&argv, "lxc-checkpoint");
        if (restore)
                fm_strv_push(&argv, "-r");
        fm_strv_push(&argv, "-P");
        fm_strv_push(&argv, lxcpath);
        fm_strv_push(&argv, "-n");
        fm_strv_push(&argv, name);
        fm_strv_push(&argv, "-D");
        fm_strv_push(&argv, dir);
        /* lxc-checkpoint -r hands its stdout to the restored container: never capture it */
        /* outlives a dead agent: CRIU must not be killed inside the tasks
         * (the restarted agent waits for it: src/migrate/recover.h) */
        fm_spawn_opts o = {.env_add = envv, .detach_stdio = true, .outlive_parent = true,
                           .timeout_ms = timeout_ms > 0 ? timeout_ms : 120000};
        r = fm_spawn(argv.v, &o);
        fm_strv_free(&argv);
        if (r != 0) {
                /* fm-criu-wrap's own word first (it failed before CRIU ran),
                 * else CRIU's log */
                char logp[700], tail[400];
                snprintf(logp, sizeof(logp), "%s/wrap.log", dir);
                log_tail(logp, tail, sizeof(tail));
                snprintf(logp, sizeof(logp), "%s/%s.log", dir, restore ? "restore" : "dump");
                if (!tail[0])
                        log_tail(logp, tail, sizeof(tail));
                return fm_err(e, EIO, "lxc-checkpoint %s of %s failed (status %d)%s%s", restore ? "restore" : "dump",
                              name, r, tail[0] ? ": " : "", tail);
        }
        return 0;
}

int fm_ct_checkpoint(const char *lxcpath, const char *name, const char *dir, const char *criu_conf,
                     const char *const *env, int timeout_ms, fm_error *e)
{
        return checkpoint_tool(lxcpath, name, dir, criu_conf, env, false, timeout_ms, e);
}

int fm_ct_restore(const char *lxcpath, const char *name, const char *dir, const char *criu_conf,
                  const char *const *env, const fm_ct_thaw_hooks *h, fm_error *e)
{
        /* a namespace fastmig keeps exists before the restore: its ARP socket
         * is made now, sent on right after, closed later */
        fm_ctnet net;
        fm_error ignore = {0};
        bool own_net = fm_ctnet_read(lxcpath, name, &net, &ignore) == 0;
        announce_at at;
        int arp = own_net && announce_find(lxcpath, name, &at, &ignore) == 0 ? announce_socket(&at, name, &ignore) : -1;
        int r = checkpoint_tool(lxcpath, name, dir, criu_conf, env, true, 0, e);
        if (r < 0) {
                close_later(arp);
                return r;
        }
        /* a namespace fastmig keeps was made off the bridge (fm_ctnet_create):
         * the restored sockets are there now, it may join */
        if (own_net && fm_ct_bridge_port(lxcpath, name, true, e) < 0) {
                close_later(arp);
                return fm_err_wrap(e, "after restore");
        }
        /* Tell the segment where the service IP is now, at once: a neighbour
         * whose entry went stale or failed during the freeze otherwise waits
         * for its 1 s ARP retry (seen as an occasional 1.3 s downtime). With
         * the namespace at hand this goes out before the thaw. */
        if (arp >= 0)
                announce_send(arp, &at, name, &ignore);
        else if (own_net)
                fm_ct_announce(lxcpath, name, &ignore);
        close_later(arp);
        if (h && h->before_thaw)
                h->before_thaw(h->data);
        fm_ct_info i;
        if (fm_ct_info_get(lxcpath, name, &i, e) < 0)
                return -e->code;
        if (!i.running)
                return fm_err(e, EIO, "container %s is %s right after restore", name, i.state);
        /* A container frozen before its dump comes back frozen. */
        if ((h && h->thaw ? h->thaw(h->data, e) : fm_ct_unfreeze(lxcpath, name, e)) < 0)
                return fm_err_wrap(e, "after restore");
        if (!own_net) /* LXC's namespace: found through the running init */
                fm_ct_announce(lxcpath, name, &ignore);
        return 0;
}

int fm_ct_port_get(const char *lxcpath, const char *name, fm_ct_port *p, fm_error *e)
{
        char pair[IFNAMSIZ] = "", bridge[IFNAMSIZ] = "";
        fm_ctnet net;
        fm_error ignore = {0};
        if (fm_ctnet_read(lxcpath, name, &net, &ignore) == 0) { /* ctnet.h: its names are ours */
                fm_ctnet_veth(name, pair, sizeof(pair));
                snprintf(bridge, sizeof(bridge), "%s", net.bridge);
        } else {
                struct lxc_container *c = ct_open(lxcpath, name, e);
                if (!c)
                        return -e->code;
                _cleanup_free_ char *rp = c->is_running(c) ? c->get_running_config_item(c, "lxc.net.0.veth.pair") : NULL;
                _cleanup_free_ char *rb = config_item(c, "lxc.net.0.link");
                lxc_container_put(c);
                snprintf(pair, sizeof(pair), "%s", rp ? rp : "");
                snprintf(bridge, sizeof(bridge), "%s", rb ? rb : "");
        }
        if (!*pair || !*bridge)
                return fm_err(e, ENODEV, "container %s has no veth on a bridge", name);
        p->veth = if_nametoindex(pair);
        p->bridge = if_nametoindex(bridge);
        if (!p->veth || !p->bridge)
                return fm_err(e, ENODEV, "container %s: no interface %s", name, p->veth ? bridge : pair);
        return 0;
}

int fm_ct_port_set(const fm_ct_port *p, bool attach, fm_error *e)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = 1;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = (int)p->veth;
        mnl_attr_put_u32(nlh, IFLA_MASTER, attach ? p->bridge : 0);
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
                return fm_err(e, errno, "netlink socket: %s", strerror(errno));
        if (send(fd, nlh, nlh->nlmsg_len, 0) < 0)
                return fm_err(e, errno, "netlink send: %s", strerror(errno));
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
                return fm_err(e, errno, "netlink recv: %s", strerror(errno));
        if (mnl_cb_run(buf, (size_t)n, 1, 0, NULL, NULL) == MNL_CB_ERROR)
                return fm_err(e, errno, "%s interface %u %s bridge %u: %s", attach ? "attaching" : "detaching",
                              p->veth, attach ? "to" : "from", p->bridge, strerror(errno));
        return 0;
}

int fm_ct_bridge_port(const char *lxcpath, const char *name, bool attach, fm_error *e)
{
        fm_ct_port p;
        int r = fm_ct_port_get(lxcpath, name, &p, e);
        return r < 0 ? r : fm_ct_port_set(&p, attach, e);
}

