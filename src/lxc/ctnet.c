#include "ctnet.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"
#include "util/spawn.h"

static void record_path(const char *lxcpath, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s/fastmig-net", lxcpath, name);
}

void fm_ctnet_path(const char *name, char *buf, size_t n) { snprintf(buf, n, "/run/netns/fm-ct-%s", name); }

void fm_ctnet_veth(const char *name, char *buf, size_t n)
{
        uint32_t h = 2166136261u; /* FNV-1a: stable across hosts and runs */
        for (const char *p = name; *p; p++)
                h = (h ^ (uint8_t)*p) * 16777619u;
        snprintf(buf, n, "fmv%08x", h);
}

bool fm_ctnet_exists(const char *name)
{
        char path[128];
        fm_ctnet_path(name, path, sizeof(path));
        return fm_path_exists(path);
}

static bool mac_ok(const char *s)
{
        unsigned v[6];
        char end;
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 17; i++) /* hex pairs and colons only: sscanf alone takes signs and spaces */
                if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
                        return false;
        if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
                return false;
        /* unicast, not all zero */
        return !(v[0] & 1) && (v[0] | v[1] | v[2] | v[3] | v[4] | v[5]);
}

static bool ipv4_ok(const char *s)
{
        struct in_addr a;
        return s && inet_pton(AF_INET, s, &a) == 1;
}

json_object *fm_ctnet_json(const fm_ctnet *n)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ipv4", json_object_new_string(n->ip));
        json_object_object_add(o, "prefix", json_object_new_int(n->prefix));
        json_object_object_add(o, "gateway", json_object_new_string(n->gateway));
        json_object_object_add(o, "mac", json_object_new_string(n->mac));
        json_object_object_add(o, "bridge", json_object_new_string(n->bridge));
        return o;
}

int fm_ctnet_from_json(json_object *o, fm_ctnet *out, fm_error *e)
{
        fm_ctnet n = {0};
        const char *ip = NULL, *gw = NULL, *mac = NULL, *br = NULL;
        int64_t prefix = 0;
        if (!o || !json_object_is_type(o, json_type_object))
                return fm_err(e, EINVAL, "the network description is not an object");
        int r = fm_json_str(o, "ipv4", true, sizeof(n.ip) - 1, &ip, e);
        if (r == 0)
                r = fm_json_int(o, "prefix", true, 8, 30, &prefix, e);
        if (r == 0)
                r = fm_json_str(o, "gateway", true, sizeof(n.gateway) - 1, &gw, e);
        if (r == 0)
                r = fm_json_str(o, "mac", true, sizeof(n.mac) - 1, &mac, e);
        if (r == 0)
                r = fm_json_str(o, "bridge", true, sizeof(n.bridge) - 1, &br, e);
        if (r < 0)
                return r;
        if (!ipv4_ok(ip))
                return fm_err(e, EINVAL, "network: bad ipv4 `%s'", ip);
        if (*gw && !ipv4_ok(gw))
                return fm_err(e, EINVAL, "network: bad gateway `%s'", gw);
        if (!mac_ok(mac))
                return fm_err(e, EINVAL, "network: bad mac `%s' (unicast aa:bb:cc:dd:ee:ff)", mac);
        if (!fm_name_is_valid(br))
                return fm_err(e, EINVAL, "network: bad bridge name `%s'", br);
        snprintf(n.ip, sizeof(n.ip), "%s", ip);
        snprintf(n.gateway, sizeof(n.gateway), "%s", gw);
        snprintf(n.mac, sizeof(n.mac), "%s", mac);
        snprintf(n.bridge, sizeof(n.bridge), "%s", br);
        n.prefix = (int)prefix;
        *out = n;
        return 0;
}

int fm_ctnet_read(const char *lxcpath, const char *name, fm_ctnet *out, fm_error *e)
{
        char path[700];
        record_path(lxcpath, name, path, sizeof(path));
        _cleanup_free_ char *text = NULL;
        int r = fm_read_file(path, &text, 4096);
        if (r == -ENOENT)
                return -ENOENT;
        if (r < 0)
                return fm_err(e, -r, "reading %s: %s", path, strerror(-r));
        json_object *o = json_tokener_parse(text);
        r = o ? fm_ctnet_from_json(o, out, e) : fm_err(e, EINVAL, "%s is not JSON", path);
        json_object_put(o);
        return r < 0 ? fm_err_wrap(e, "%s", path) : 0;
}

int fm_ctnet_write(const char *lxcpath, const char *name, const fm_ctnet *n, fm_error *e)
{
        char path[700];
        record_path(lxcpath, name, path, sizeof(path));
        json_object *o = fm_ctnet_json(n);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
        int r = fm_write_file(path, s, strlen(s), 0644);
        json_object_put(o);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", path, strerror(-r)) : 0;
}

static int ip_run(fm_error *e, const char *const *args)
{
        char *argv[16] = {"ip"};
        size_t i = 0;
        for (; args[i] && i + 2 < FM_ARRAY_SIZE(argv); i++)
                argv[i + 1] = (char *)args[i];
        argv[i + 1] = NULL;
        fm_spawn_opts o = {.timeout_ms = 10000};
        int r = fm_spawn_check(argv, &o, e);
        free(o.output);
        return r;
}
#define IP(e, ...) ip_run(e, (const char *const[]){__VA_ARGS__, NULL})

void fm_ctnet_destroy(const char *name)
{
        char veth[16], ns[128];
        fm_ctnet_veth(name, veth, sizeof(veth));
        snprintf(ns, sizeof(ns), "fm-ct-%s", name);
        fm_error ignore = {0};
        if (if_nametoindex(veth))
                IP(&ignore, "link", "del", veth);
        if (fm_ctnet_exists(name))
                IP(&ignore, "netns", "del", ns);
}

int fm_ctnet_create(const char *name, const fm_ctnet *n, bool attach, fm_error *e)
{
        char veth[16], ns[128], addr[32];
        fm_error ignore = {0};
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name ? name : "");
        fm_ctnet_veth(name, veth, sizeof(veth));
        snprintf(ns, sizeof(ns), "fm-ct-%s", name);
        snprintf(addr, sizeof(addr), "%s/%d", n->ip, n->prefix);
        if (if_nametoindex(veth) && !fm_ctnet_exists(name))
                return fm_err(e, EEXIST, "interface %s exists but belongs to no namespace of %s (a name whose hash "
                                         "collides with another container's: rename one)", veth, name);
        fm_ctnet_destroy(name); /* a stale one: the caller knows the container does not run */
        int r = IP(e, "netns", "add", ns);
        if (r == 0)
                r = IP(e, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
        if (r == 0)
                r = IP(e, "-n", ns, "link", "set", "lo", "up");
        if (r == 0)
                r = IP(e, "-n", ns, "link", "set", "eth0", "address", n->mac, "up");
        if (r == 0)
                r = IP(e, "-n", ns, "addr", "add", addr, "dev", "eth0");
        if (r == 0 && n->gateway[0])
                r = IP(e, "-n", ns, "route", "add", "default", "via", n->gateway);
        if (r == 0 && attach)
                r = IP(e, "link", "set", veth, "master", n->bridge, "up");
        else if (r == 0)
                r = IP(e, "link", "set", veth, "up");
        /* Off the bridge (a migration's target): this host must not know
         * where the address is until the restored container says so (its
         * gratuitous ARP). An entry left from an earlier stay here (the MAC
         * goes with the container) would send the peers' packets of the
         * frozen window to a port that is not there, and they would be
         * lost: a client's window update among them leaves the restored
         * sender waiting for its retransmission timer (1-3 s, seen in 8 of
         * 12 video migrations). Without it they wait in this host's
         * neighbour queue and go out at the gratuitous ARP. */
        if (r == 0 && !attach)
                IP(&ignore, "neigh", "flush", "to", n->ip);
        if (r < 0) {
                fm_ctnet_destroy(name);
                return fm_err_wrap(e, "the network namespace of %s", name);
        }
        return 0;
}
