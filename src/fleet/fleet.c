#include "fleet.h"

#include <arpa/inet.h>
#include <string.h>

#include "proto/proto.h"

static const char *const steer_names[] = {[FM_STEER_ROUTE] = "route", [FM_STEER_COMMAND] = "command",
                                          [FM_STEER_GARP] = "garp"};

const char *fm_steer_kind_name(fm_steer_kind k) { return steer_names[k]; }

/* ---- reading: each field checked, named by its path in the file ---- */

typedef struct reader {
        fm_error *e;
        char where[64]; /* "hosts[2]" or "" */
} reader;

static int bad(reader *rd, const char *key, const char *why, const char *val)
{
        return fm_err(rd->e, EINVAL, "%s%s%s: %s%s%s%s", rd->where, rd->where[0] ? "." : "", key, why, val ? " `" : "",
                      val ? val : "", val ? "'" : "");
}

/* Refuses keys not in allowed (NULL-terminated). */
static int only_keys(reader *rd, json_object *o, const char *const *allowed)
{
        json_object_object_foreach(o, k, v)
        {
                (void)v;
                bool known = false;
                for (const char *const *a = allowed; *a && !known; a++)
                        known = !strcmp(*a, k);
                if (!known)
                        return bad(rd, k, "unknown key (docs/FLEET.md lists them)", NULL);
        }
        return 0;
}

/* A string of at most n-1 bytes into out ("" when absent and not required). */
static int str(reader *rd, json_object *o, const char *key, bool required, char *out, size_t n)
{
        json_object *v = NULL;
        out[0] = '\0';
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return required ? bad(rd, key, "missing", NULL) : 0;
        if (!json_object_is_type(v, json_type_string))
                return bad(rd, key, "must be a string", NULL);
        const char *s = json_object_get_string(v);
        if (strlen(s) >= n)
                return bad(rd, key, "too long", s);
        if (required && !*s) /* absent and empty read the same once written */
                return bad(rd, key, "empty", NULL);
        snprintf(out, n, "%s", s);
        return 0;
}

static int path(reader *rd, json_object *o, const char *key, char *out, size_t n)
{
        int r = str(rd, o, key, false, out, n);
        size_t n_ = strlen(out);
        bool dots = strstr(out, "/../") || strstr(out, "/./") || (n_ >= 3 && !strcmp(out + n_ - 3, "/..")) ||
                    (n_ >= 2 && !strcmp(out + n_ - 2, "/."));
        if (r == 0 && out[0] && (out[0] != '/' || dots))
                return bad(rd, key, "must be an absolute path without . or ..", out);
        return r;
}

static int ifname(reader *rd, json_object *o, const char *key, char *out, size_t n)
{
        int r = str(rd, o, key, false, out, n);
        if (r == 0 && out[0] && !fm_name_is_valid(out))
                return bad(rd, key, "bad name", out);
        return r;
}

static int ipv4(reader *rd, json_object *o, const char *key, bool required, char out[16])
{
        int r = str(rd, o, key, required, out, 16);
        struct in_addr a;
        if (r == 0 && out[0] && inet_pton(AF_INET, out, &a) != 1)
                return bad(rd, key, "not an IPv4 address", out);
        return r;
}

static int subnet(reader *rd, json_object *o, fm_fleet *f)
{
        char s[24], addr[16];
        int r = str(rd, o, "subnet", true, s, sizeof(s));
        if (r < 0)
                return r;
        const char *slash = strchr(s, '/');
        uint32_t len = 0;
        struct in_addr a;
        if (!slash || (size_t)(slash - s) >= sizeof(addr) || fm_parse_u32(slash + 1, &len) < 0 || len < 8 || len > 27)
                return bad(rd, "subnet", "must be A.B.C.D/N with N from 8 to 27", s);
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        if (inet_pton(AF_INET, addr, &a) != 1)
                return bad(rd, "subnet", "not an IPv4 network", s);
        uint32_t mask = len ? ~0u << (32 - len) : 0;
        if (ntohl(a.s_addr) & ~mask)
                return bad(rd, "subnet", "has host bits set", s);
        f->subnet = ntohl(a.s_addr);
        f->prefix = (int)len;
        if ((r = ipv4(rd, o, "gateway", true, f->gateway)) < 0)
                return r;
        inet_pton(AF_INET, f->gateway, &a);
        if ((ntohl(a.s_addr) & mask) != f->subnet)
                return bad(rd, "gateway", "is not in the subnet", f->gateway);
        return 0;
}

static int steering(reader *rd, json_object *o, fm_steer_cfg *s)
{
        static const char *const keys[] = {"kind", "netns", "command", "timeout_ms", NULL};
        char kind[16];
        int r;
        if (!json_object_is_type(o, json_type_object))
                return bad(rd, "steering", "must be an object", NULL);
        snprintf(rd->where, sizeof(rd->where), "steering");
        if ((r = only_keys(rd, o, keys)) < 0 || (r = str(rd, o, "kind", true, kind, sizeof(kind))) < 0)
                return r;
        size_t k;
        for (k = 0; k < FM_ARRAY_SIZE(steer_names); k++)
                if (!strcmp(kind, steer_names[k]))
                        break;
        if (k == FM_ARRAY_SIZE(steer_names))
                return bad(rd, "kind", "must be route, command or garp", kind);
        s->kind = (fm_steer_kind)k;
        if ((r = ifname(rd, o, "netns", s->netns, sizeof(s->netns))) < 0 ||
            (r = path(rd, o, "command", s->command, sizeof(s->command))) < 0)
                return r;
        int64_t t = FM_STEER_TIMEOUT_MS;
        if (json_object_object_get_ex(o, "timeout_ms", NULL) &&
            fm_json_int(o, "timeout_ms", true, 100, 600000, &t, rd->e) < 0)
                return fm_err_wrap(rd->e, "steering");
        s->timeout_ms = (int)t;
        if (s->kind == FM_STEER_COMMAND && !s->command[0])
                return bad(rd, "command", "missing (kind command)", NULL);
        if (s->kind != FM_STEER_COMMAND && s->command[0])
                return bad(rd, "command", "only for kind command", NULL);
        if (s->kind != FM_STEER_ROUTE && s->netns[0])
                return bad(rd, "netns", "only for kind route", NULL);
        rd->where[0] = '\0';
        return 0;
}

static int host(reader *rd, json_object *o, int i, fm_host *h)
{
        static const char *const keys[] = {"name",  "agent",  "route_via", "bridge", "lxcpath", "images",
                                           "store", "shared", "netns",     "state",  NULL};
        snprintf(rd->where, sizeof(rd->where), "hosts[%d]", i);
        if (!json_object_is_type(o, json_type_object))
                return bad(rd, "", "must be an object", NULL);
        char ep[40];
        int r;
        if ((r = only_keys(rd, o, keys)) < 0 || (r = str(rd, o, "name", true, h->name, sizeof(h->name))) < 0 ||
            (r = str(rd, o, "agent", true, ep, sizeof(ep))) < 0)
                return r;
        if (!fm_name_is_valid(h->name))
                return bad(rd, "name", "bad host name", h->name);
        fm_error pe = {0};
        if (fm_parse_endpoint(ep, h->addr, sizeof(h->addr), &h->port, &pe) < 0)
                return bad(rd, "agent", pe.msg, NULL);
        if ((r = ipv4(rd, o, "route_via", false, h->route_via)) < 0 ||
            (r = ifname(rd, o, "bridge", h->bridge, sizeof(h->bridge))) < 0 ||
            (r = path(rd, o, "lxcpath", h->lxcpath, sizeof(h->lxcpath))) < 0 ||
            (r = path(rd, o, "images", h->images, sizeof(h->images))) < 0 ||
            (r = path(rd, o, "store", h->store, sizeof(h->store))) < 0 ||
            (r = path(rd, o, "shared", h->shared, sizeof(h->shared))) < 0 ||
            (r = ifname(rd, o, "netns", h->netns, sizeof(h->netns))) < 0 ||
            (r = path(rd, o, "state", h->state, sizeof(h->state))) < 0)
                return r;
        if (!h->route_via[0])
                snprintf(h->route_via, sizeof(h->route_via), "%s", h->addr);
        return 0;
}

int fm_fleet_parse(const char *text, size_t len, fm_fleet *f, fm_error *e)
{
        static const char *const keys[] = {"fleet", "pki", "certificate", "agents_netns", "users_netns",
                                           "services", "steering", "hosts", NULL};
        memset(f, 0, sizeof(*f));
        if (len > FM_FLEET_MAX_BYTES)
                return fm_err(e, EFBIG, "larger than %d bytes", FM_FLEET_MAX_BYTES);
        json_object *o = NULL;
        int pr = fm_json_parse_text(text, len, &o, e);
        if (pr < 0)
                return pr;
        reader rd = {.e = e};
        int r = 0;
        json_object *v = NULL;
        if (!json_object_is_type(o, json_type_object))
                r = fm_err(e, EINVAL, "must be a JSON object");
        if (r == 0)
                r = only_keys(&rd, o, keys);
        if (r == 0 && (r = str(&rd, o, "fleet", true, f->name, sizeof(f->name))) == 0 && !fm_name_is_valid(f->name))
                r = bad(&rd, "fleet", "bad name", f->name);
        if (r == 0)
                r = path(&rd, o, "pki", f->pki, sizeof(f->pki));
        if (r == 0 && (r = str(&rd, o, "certificate", false, f->cert, sizeof(f->cert))) == 0 && f->cert[0] &&
            !fm_name_is_valid(f->cert))
                r = bad(&rd, "certificate", "bad name", f->cert);
        if (r == 0 && !f->cert[0])
                snprintf(f->cert, sizeof(f->cert), "operator");
        if (r == 0)
                r = ifname(&rd, o, "agents_netns", f->agents_netns, sizeof(f->agents_netns));
        if (r == 0)
                r = ifname(&rd, o, "users_netns", f->users_netns, sizeof(f->users_netns));
        if (r == 0) {
                static const char *const skeys[] = {"subnet", "gateway", NULL};
                if (!json_object_object_get_ex(o, "services", &v) || !json_object_is_type(v, json_type_object))
                        r = bad(&rd, "services", "missing (an object: subnet, gateway)", NULL);
                snprintf(rd.where, sizeof(rd.where), "services");
                if (r == 0 && (r = only_keys(&rd, v, skeys)) == 0)
                        r = subnet(&rd, v, f);
                rd.where[0] = '\0';
        }
        if (r == 0) {
                if (!json_object_object_get_ex(o, "steering", &v))
                        r = bad(&rd, "steering", "missing (an object: kind route, command or garp)", NULL);
                else
                        r = steering(&rd, v, &f->steer);
        }
        if (r == 0 && (!json_object_object_get_ex(o, "hosts", &v) || !json_object_is_type(v, json_type_array) ||
                       json_object_array_length(v) < 1 || json_object_array_length(v) > FM_FLEET_MAX_HOSTS))
                r = bad(&rd, "hosts", "must be an array of 1 to 16 hosts", NULL);
        for (size_t i = 0; r == 0 && i < json_object_array_length(v); i++) {
                fm_host *h = &f->host[i];
                if ((r = host(&rd, json_object_array_get_idx(v, i), (int)i, h)) < 0)
                        break;
                for (size_t j = 0; j < i && r == 0; j++) {
                        if (!strcmp(f->host[j].name, h->name))
                                r = bad(&rd, "name", "used twice", h->name);
                        else if (!strcmp(f->host[j].addr, h->addr) && f->host[j].port == h->port)
                                r = bad(&rd, "agent", "the same agent as another host", NULL);
                }
                f->hosts = (int)i + 1;
        }
        json_object_put(o);
        return r;
}

int fm_fleet_load(const char *file, fm_fleet *f, fm_error *e)
{
        _cleanup_free_ char *text = NULL;
        ssize_t n = fm_read_file(file, &text, FM_FLEET_MAX_BYTES + 1);
        if (n < 0)
                return fm_err(e, (int)-n, "fleet %s: %s", file, strerror((int)-n));
        int r = fm_fleet_parse(text, (size_t)n, f, e);
        return r < 0 ? fm_err_wrap(e, "fleet %s", file) : 0;
}

/* ---- writing ---- */

static void put_str(json_object *o, const char *k, const char *v)
{
        if (v && v[0])
                json_object_object_add(o, k, json_object_new_string(v));
}

/* Not inlined: GCC's -Wstringop-overread misjudges the host array's size
 * under -fsanitize=address when strcmp is expanded in the loop below. */
__attribute__((noinline)) static bool same_str(const char *a, const char *b) { return !strcmp(a, b); }

json_object *fm_fleet_json(const fm_fleet *f)
{
        json_object *o = json_object_new_object();
        put_str(o, "fleet", f->name);
        put_str(o, "pki", f->pki);
        put_str(o, "certificate", f->cert);
        put_str(o, "agents_netns", f->agents_netns);
        put_str(o, "users_netns", f->users_netns);
        json_object *s = json_object_new_object();
        char net[24];
        struct in_addr a = {.s_addr = htonl(f->subnet)};
        snprintf(net, sizeof(net), "%s/%d", inet_ntoa(a), f->prefix);
        put_str(s, "subnet", net);
        put_str(s, "gateway", f->gateway);
        json_object_object_add(o, "services", s);
        json_object *st = json_object_new_object();
        put_str(st, "kind", fm_steer_kind_name(f->steer.kind));
        put_str(st, "netns", f->steer.netns);
        put_str(st, "command", f->steer.command);
        if (f->steer.kind == FM_STEER_COMMAND && f->steer.timeout_ms)
                json_object_object_add(st, "timeout_ms", json_object_new_int(f->steer.timeout_ms));
        json_object_object_add(o, "steering", st);
        json_object *arr = json_object_new_array();
        for (int i = 0; i < f->hosts && i < FM_FLEET_MAX_HOSTS; i++) {
                const fm_host *h = &f->host[i];
                json_object *ho = json_object_new_object();
                char ep[40];
                snprintf(ep, sizeof(ep), "%s:%u", h->addr, h->port);
                put_str(ho, "name", h->name);
                put_str(ho, "agent", ep);
                if (!same_str(h->route_via, h->addr))
                        put_str(ho, "route_via", h->route_via);
                put_str(ho, "bridge", h->bridge);
                put_str(ho, "lxcpath", h->lxcpath);
                put_str(ho, "images", h->images);
                put_str(ho, "store", h->store);
                put_str(ho, "shared", h->shared);
                put_str(ho, "netns", h->netns);
                put_str(ho, "state", h->state);
                json_object_array_add(arr, ho);
        }
        json_object_object_add(o, "hosts", arr);
        return o;
}

int fm_fleet_save(const char *file, const fm_fleet *f, fm_error *e)
{
        json_object *o = fm_fleet_json(f);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_free_ char *withnl = fm_strdupf("%s\n", text);
        json_object_put(o);
        int r = withnl ? fm_write_file(file, withnl, strlen(withnl), 0644) : -ENOMEM;
        return r < 0 ? fm_err(e, -r, "writing %s: %s", file, strerror(-r)) : 0;
}

/* ---- lookups ---- */

const fm_host *fm_fleet_host(const fm_fleet *f, const char *name)
{
        for (int i = 0; name && i < f->hosts; i++)
                if (!strcmp(f->host[i].name, name))
                        return &f->host[i];
        return NULL;
}

const fm_host *fm_fleet_host_by_addr(const fm_fleet *f, const char *addr)
{
        for (int i = 0; addr && i < f->hosts; i++)
                if (!strcmp(f->host[i].addr, addr))
                        return &f->host[i];
        return NULL;
}

void fm_fleet_service_addr(const fm_fleet *f, int i, char out[16])
{
        uint32_t size = 1u << (32 - f->prefix);
        out[0] = '\0';
        struct in_addr gw;
        inet_pton(AF_INET, f->gateway, &gw);
        /* from the 10th address up (the first ones are for gateways and
         * routers), the gateway skipped, not the broadcast */
        uint32_t a = f->subnet + FM_FLEET_FIRST_SERVICE + (uint32_t)(i < 0 ? 0 : i);
        if (a >= ntohl(gw.s_addr) && ntohl(gw.s_addr) >= f->subnet + FM_FLEET_FIRST_SERVICE)
                a++;
        if (i < 0 || a - f->subnet >= size - 1)
                return;
        struct in_addr x = {.s_addr = htonl(a)};
        inet_ntop(AF_INET, &x, out, 16);
}

void fm_fleet_names(const fm_fleet *f, char *buf, size_t n)
{
        size_t off = 0;
        buf[0] = '\0';
        for (int i = 0; i < f->hosts && off < n; i++)
                off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", f->host[i].name);
}
