#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

const char *const fm_ct_bind_allow_default[] = {"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/sys/kernel/security",
                                                NULL};

#define LINE_MAX_LEN 4096

/* What the target does with a key. */
enum rule {
        KEEP,     /* kept, the value checked by its check */
        DROP,     /* the target writes its own (or none) */
        REPLACE,  /* rewritten from the policy */
};

typedef struct key_rule {
        const char *key; /* exact key, or a prefix when it ends with '.' */
        enum rule rule;
        bool (*check)(const char *v, const fm_ct_config_policy *pol, const char **why);
} key_rule;

static bool printable(const char *v)
{
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static bool any(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "control characters";
        return printable(v);
}

static bool number(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not a number";
        if (!*v)
                return false;
        for (const char *p = v; *p; p++)
                if (!isdigit((unsigned char)*p) && !(p == v && *p == '-'))
                        return false;
        return strlen(v) < 20;
}

/* space-separated words of letters, digits, '_', '-', ':' and '.' */
static bool words(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "only words of letters, digits and _-:. are allowed";
        for (const char *p = v; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("_-:. ", *p))
                        return false;
        return true;
}

static bool exact_name(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        *why = "is not the container's name";
        return !strcmp(v, pol->name);
}

static bool console_none(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "a console on a host path is not migrated (must be `none')";
        return !strcmp(v, "none");
}

static bool veth(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "only veth interfaces migrate";
        return !strcmp(v, "veth");
}

static bool ifname(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not an interface name";
        size_t n = strlen(v);
        if (n == 0 || n > 15 || !strcmp(v, ".") || !strcmp(v, ".."))
                return false;
        for (const char *p = v; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("_-.", *p))
                        return false;
        return true;
}

static bool mac(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not a MAC address";
        unsigned b[6];
        char end;
        return strlen(v) == 17 && sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) == 6;
}

/* an address with an optional /prefix (and, for IPv4, an optional broadcast) */
static bool addr_of(const char *v, int af, bool prefix)
{
        char buf[64];
        if (strlen(v) >= sizeof(buf))
                return false;
        snprintf(buf, sizeof(buf), "%s", v);
        char *sp = strchr(buf, ' ');
        if (sp) {
                struct in_addr bc;
                if (af != AF_INET || inet_pton(AF_INET, sp + 1, &bc) != 1)
                        return false;
                *sp = '\0';
        }
        char *slash = strchr(buf, '/');
        if (slash) {
                char *end;
                long n = strtol(slash + 1, &end, 10);
                if (!prefix || *end || end == slash + 1 || n < 0 || n > (af == AF_INET ? 32 : 128))
                        return false;
                *slash = '\0';
        }
        unsigned char a[16];
        return inet_pton(af, buf, a) == 1;
}

static bool ipv4(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not an IPv4 address";
        return addr_of(v, AF_INET, true);
}

static bool ipv4_gw(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not an IPv4 gateway";
        return !strcmp(v, "auto") || !strcmp(v, "dev") || addr_of(v, AF_INET, false);
}

static bool ipv6(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not an IPv6 address";
        return addr_of(v, AF_INET6, true);
}

static bool ipv6_gw(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not an IPv6 gateway";
        return !strcmp(v, "auto") || !strcmp(v, "dev") || addr_of(v, AF_INET6, false);
}

static bool flags_up(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "only `up'";
        return !strcmp(v, "up");
}

static bool mount_auto(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        static const char *const ok[] = {"proc", "proc:mixed", "proc:rw", "sys", "sys:ro", "sys:mixed", "sys:rw",
                                         "cgroup", "cgroup:mixed", "cgroup:ro", "cgroup:rw", "cgroup:mixed:force",
                                         "cgroup:ro:force", "cgroup:rw:force", "cgroup-full", "cgroup-full:mixed",
                                         "cgroup-full:ro", "cgroup-full:rw", NULL};
        *why = "a mount.auto word outside proc/sys/cgroup (shmounts names a host path)";
        char buf[LINE_MAX_LEN];
        snprintf(buf, sizeof(buf), "%s", v);
        char *save = NULL;
        for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                bool found = false;
                for (size_t i = 0; ok[i] && !found; i++)
                        found = !strcmp(w, ok[i]);
                if (!found)
                        return false;
        }
        return true;
}

static bool rel_path_ok(const char *p)
{
        return *p && *p != '/' && fm_path_is_safe_relative(p);
}

static bool under_allowed(const char *src, const fm_ct_config_policy *pol)
{
        const char *const *allow = pol->bind_allow ? pol->bind_allow : fm_ct_bind_allow_default;
        if (strstr(src, "/../") || strstr(src, "/./") || strstr(src, "//"))
                return false;
        size_t sl = strlen(src);
        if (sl >= 3 && !strcmp(src + sl - 3, "/.."))
                return false;
        for (size_t i = 0; allow[i]; i++) {
                size_t n = strlen(allow[i]);
                if (!strncmp(src, allow[i], n) && (src[n] == '\0' || src[n] == '/'))
                        return true;
        }
        return false;
}

/* "SRC DST FSTYPE OPTIONS [DUMP PASS]": kernel file systems anywhere in
 * the container, a host directory only read-only and when the policy lists
 * it, never a destination outside the rootfs. */
static bool mount_entry(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        static const char *const virt[] = {"tmpfs", "proc", "sysfs", "mqueue", "devpts", "cgroup", "cgroup2", NULL};
        char buf[LINE_MAX_LEN];
        snprintf(buf, sizeof(buf), "%s", v);
        char *save = NULL;
        char *src = strtok_r(buf, " \t", &save), *dst = strtok_r(NULL, " \t", &save);
        char *type = strtok_r(NULL, " \t", &save), *opts = strtok_r(NULL, " \t", &save);
        *why = "malformed (SRC DST FSTYPE OPTIONS)";
        if (!src || !dst || !type || !opts)
                return false;
        *why = "the destination must be a path inside the rootfs (relative, no `..')";
        if (!rel_path_ok(dst))
                return false;
        bool bind = false, ro = false;
        char ob[LINE_MAX_LEN];
        snprintf(ob, sizeof(ob), "%s", opts);
        char *s2 = NULL;
        for (char *o = strtok_r(ob, ",", &s2); o; o = strtok_r(NULL, ",", &s2)) {
                if (!strcmp(o, "bind") || !strcmp(o, "rbind"))
                        bind = true;
                else if (!strcmp(o, "ro"))
                        ro = true;
                else if (!strncmp(o, "create=", 7) || !strcmp(o, "optional") || !strcmp(o, "defaults") ||
                         !strcmp(o, "nosuid") || !strcmp(o, "nodev") || !strcmp(o, "noexec") || !strcmp(o, "rw") ||
                         !strncmp(o, "size=", 5) || !strncmp(o, "mode=", 5) || !strcmp(o, "relatime") ||
                         !strcmp(o, "noatime"))
                        continue;
                else {
                        *why = "a mount option outside the allow-list";
                        return false;
                }
        }
        if (!bind) {
                for (size_t i = 0; virt[i]; i++)
                        if (!strcmp(type, virt[i]) && src[0] != '/')
                                return true;
                *why = "only kernel file systems (tmpfs, proc, sysfs, mqueue, devpts, cgroup) or read-only binds";
                return false;
        }
        *why = "binds a host path not on this host's allow-list (fastmigd --bind-allow), or not read-only";
        return ro && src[0] == '/' && under_allowed(src, pol);
}

static bool idmap(const char *v, const fm_ct_config_policy *pol, const char **why)
{
        (void)pol;
        *why = "not `u|g NSID HOSTID RANGE'";
        char t;
        unsigned long a, b, c;
        char end;
        return sscanf(v, "%c %lu %lu %lu%c", &t, &a, &b, &c, &end) == 4 && (t == 'u' || t == 'g') && c > 0;
}

static const key_rule rules[] = {
        {"lxc.uts.name", KEEP, exact_name},
        {"lxc.arch", KEEP, words},
        {"lxc.rootfs.path", REPLACE, NULL},
        {"lxc.hook.version", DROP, NULL}, /* clones only: see rule_for */
        {"lxc.hook.pre-mount", DROP, NULL},
        {"lxc.init.cmd", KEEP, any},
        {"lxc.init.cwd", KEEP, any},
        {"lxc.init.uid", KEEP, number},
        {"lxc.init.gid", KEEP, number},
        {"lxc.execute.cmd", KEEP, any},
        {"lxc.environment", KEEP, any},
        {"lxc.tty.max", KEEP, number},
        {"lxc.pty.max", KEEP, number},
        {"lxc.console.path", KEEP, console_none},
        {"lxc.autodev", KEEP, number},
        {"lxc.signal.halt", KEEP, words},
        {"lxc.signal.reboot", KEEP, words},
        {"lxc.signal.stop", KEEP, words},
        {"lxc.start.auto", KEEP, number},
        {"lxc.start.delay", KEEP, number},
        {"lxc.start.order", KEEP, number},
        {"lxc.mount.auto", KEEP, mount_auto},
        {"lxc.mount.entry", KEEP, mount_entry},
        {"lxc.cap.drop", KEEP, words},
        {"lxc.cap.keep", KEEP, words},
        {"lxc.idmap", KEEP, idmap},
        {"lxc.log.level", KEEP, words},
        {"lxc.no_new_privs", KEEP, number},
        {"lxc.keyring.session", KEEP, number},
        {"lxc.ephemeral", KEEP, number},
        {"lxc.prlimit.", KEEP, words},
        {"lxc.proc.", KEEP, words},
        {"lxc.sysctl.net.", KEEP, any},
        {"lxc.cgroup2.memory.", KEEP, any},
        {"lxc.cgroup2.cpu.", KEEP, any},
        {"lxc.cgroup2.cpuset.", KEEP, any},
        {"lxc.cgroup2.io.", KEEP, any},
        {"lxc.cgroup2.pids.", KEEP, any},
        {"lxc.cgroup.memory.", KEEP, any},
        {"lxc.cgroup.cpu.", KEEP, any},
        {"lxc.cgroup.cpuset.", KEEP, any},
        {"lxc.cgroup.pids.", KEEP, any},
};

/* lxc.net.N.SUB, N in 0..9 */
static const key_rule net_rules[] = {
        {"type", KEEP, veth},         {"link", REPLACE, ifname},   {"flags", KEEP, flags_up},
        {"hwaddr", KEEP, mac},        {"name", KEEP, ifname},      {"mtu", KEEP, number},
        {"ipv4.address", KEEP, ipv4}, {"ipv4.gateway", KEEP, ipv4_gw},
        {"ipv6.address", KEEP, ipv6}, {"ipv6.gateway", KEEP, ipv6_gw},
        {"veth.pair", DROP, NULL}, /* a host interface name: the target's LXC picks one */
};

/* A namespace fastmig keeps (lxc/ctnet.h): the target names its own copy */
static const key_rule share_net = {"lxc.namespace.share.net", DROP, NULL};

static const key_rule *rule_for(const char *key, const fm_ct_config_policy *pol)
{
        if (!strcmp(key, share_net.key))
                return pol->netns ? &share_net : NULL;
        if (pol->netns && !strncmp(key, "lxc.net.", 8))
                return NULL; /* its network is the namespace's, not LXC's */
        if (!strncmp(key, "lxc.net.", 8) && isdigit((unsigned char)key[8]) && key[9] == '.') {
                for (size_t i = 0; i < FM_ARRAY_SIZE(net_rules); i++)
                        if (!strcmp(key + 10, net_rules[i].key))
                                return &net_rules[i];
                return NULL;
        }
        for (size_t i = 0; i < FM_ARRAY_SIZE(rules); i++) {
                size_t n = strlen(rules[i].key);
                bool prefix = rules[i].key[n - 1] == '.';
                if (prefix ? !strncmp(key, rules[i].key, n) && key[n] : !strcmp(key, rules[i].key)) {
                        if (!strncmp(key, "lxc.hook.", 9) && !pol->clone)
                                return NULL;
                        return &rules[i];
                }
        }
        return NULL;
}

/* Splits "key = value" in place; value's surrounding quotes stripped. */
static bool split_line(char *line, char **key, char **value)
{
        char *eq = strchr(line, '=');
        if (!eq)
                return false;
        *eq = '\0';
        *key = fm_trim(line);
        char *v = fm_trim(eq + 1);
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
                v[n - 1] = '\0';
                v++;
        }
        *value = v;
        for (const char *p = *key; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
                        return false;
        return !strncmp(*key, "lxc.", 4);
}

int fm_ct_config_rebuild(const char *peer, const fm_ct_config_policy *pol, char **out, fm_error *e)
{
        *out = NULL;
        size_t cap = strlen(peer) + strlen(pol->rootfs) + strlen(pol->name) + 256 + (pol->bridge ? 10 * strlen(pol->bridge) : 0) +
                     (pol->netns ? strlen(pol->netns) + 32 : 0);
        size_t used = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return fm_err(e, ENOMEM, "out of memory");
        used += (size_t)snprintf(buf, cap + 1, "lxc.rootfs.path = %s\n", pol->rootfs);
        bool named = false;
        int lineno = 0;
        for (const char *l = peer; *l;) {
                const char *nl = strchr(l, '\n');
                size_t n = nl ? (size_t)(nl - l) : strlen(l);
                lineno++;
                if (n >= LINE_MAX_LEN)
                        return fm_err(e, EINVAL, "config line %d is longer than %d bytes", lineno, LINE_MAX_LEN);
                char line[LINE_MAX_LEN];
                memcpy(line, l, n);
                line[n] = '\0';
                l += n + (nl ? 1 : 0);
                char *t = fm_trim(line);
                if (!*t || *t == '#')
                        continue;
                char *key, *value;
                if (!split_line(t, &key, &value))
                        return fm_err(e, EINVAL, "config line %d is not `lxc.KEY = VALUE'", lineno);
                const key_rule *rule = rule_for(key, pol);
                if (!rule)
                        return fm_err(e, EPERM, "config key `%s' (line %d) is not migrated: it acts on the host "
                                                "or is not on the allow-list (docs/SECURITY.md)",
                                      key, lineno);
                const char *why = "";
                if (rule->check && !rule->check(value, pol, &why))
                        return fm_err(e, EPERM, "config line %d: `%s = %s': %s", lineno, key, value, why);
                if (rule->rule == DROP || !strcmp(key, "lxc.rootfs.path"))
                        continue;
                if (rule->rule == REPLACE && pol->bridge)
                        value = (char *)pol->bridge;
                named |= !strcmp(key, "lxc.uts.name");
                int w = snprintf(buf + used, cap + 1 - used, "%s = %s\n", key, value);
                if (w < 0 || (size_t)w > cap - used)
                        return fm_err(e, E2BIG, "rebuilt config too long");
                used += (size_t)w;
        }
        if (!named) {
                int w = snprintf(buf + used, cap + 1 - used, "lxc.uts.name = %s\n", pol->name);
                if (w < 0 || (size_t)w > cap - used)
                        return fm_err(e, E2BIG, "rebuilt config too long");
                used += (size_t)w;
        }
        if (pol->netns) {
                int w = snprintf(buf + used, cap + 1 - used, "%s = %s\n", share_net.key, pol->netns);
                if (w < 0 || (size_t)w > cap - used)
                        return fm_err(e, E2BIG, "rebuilt config too long");
        }
        *out = buf;
        buf = NULL;
        return 0;
}

char *fm_ct_config_value(const char *config, const char *key)
{
        char *found = NULL;
        for (const char *l = config; *l;) {
                const char *nl = strchr(l, '\n');
                size_t n = nl ? (size_t)(nl - l) : strlen(l);
                if (n < LINE_MAX_LEN) {
                        char line[LINE_MAX_LEN];
                        memcpy(line, l, n);
                        line[n] = '\0';
                        char *k, *v, *t = fm_trim(line);
                        if (*t != '#' && split_line(t, &k, &v) && !strcmp(k, key)) {
                                free(found);
                                found = strdup(v);
                        }
                }
                l += n + (nl ? 1 : 0);
        }
        return found;
}
