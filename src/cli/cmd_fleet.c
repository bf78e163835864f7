/* fastmig fleet check | show: what each host of the fleet offers a
 * migration, asked of its agent (request "check", src/agent/hostcheck.h). */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "plane/plane.h"
#include "proto/proto.h"

static const char USAGE[] = "fastmig [--fleet FILE] fleet check [--json]   (every host: reachable, authenticated,\n"
                            "           CRIU and its features, LXC, memory, disk, tmpfs, shared volume, clock)\n"
                            "       fastmig [--fleet FILE] fleet show           (the fleet as fastmig read it)";

/* A TCP connection to the agent's port, without TLS: is it reachable at all? */
static bool reachable(const fm_host *h, fm_error *e)
{
        int fd = fm_tcp_dial(h->addr, h->port, 3000, e);
        fm_close(fd);
        return fd >= 0;
}

static int64_t realtime_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static json_object *get(json_object *o, const char *k)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

__attribute__((format(printf, 2, 0))) static void add_why(json_object *why, const char *fmt, const char *a,
                                                         const char *b)
{
        _cleanup_free_ char *buf = fm_strdupf(fmt, a, b);
        if (buf)
                json_object_array_add(why, json_object_new_string(buf));
}

/* What the fleet file says of the host against what its agent reports. */
static void compare(const fm_host *h, json_object *c, json_object *why)
{
        const struct {
                const char *what, *want, *key;
        } paths[] = {{"lxcpath", h->lxcpath, "disk"}, {"images", h->images, "tmpfs"}, {"store", h->store, "store"},
                     {"shared", h->shared, "shared"}};
        for (size_t i = 0; i < FM_ARRAY_SIZE(paths); i++) {
                const char *got = json_object_get_string(get(get(c, paths[i].key), "path"));
                if (paths[i].want[0] && (!got || strcmp(got, paths[i].want)))
                        add_why(why, "the fleet file says %s, the agent has %s", paths[i].want, got ? got : "none");
        }
}

/* One host: {host, agent, reachable, authenticated, check {...},
 * clock_offset_ms, can_migrate, why_not [...]} */
static json_object *check_host(const fm_host *h)
{
        json_object *o = json_object_new_object(), *why = json_object_new_array();
        char ep[40];
        snprintf(ep, sizeof(ep), "%s:%u", h->addr, h->port);
        json_object_object_add(o, "host", json_object_new_string(h->name));
        json_object_object_add(o, "agent", json_object_new_string(ep));
        fm_error e = {0};
        bool up = reachable(h, &e);
        json_object_object_add(o, "reachable", json_object_new_boolean(up));
        json_object *rep = NULL;
        bool authed = false;
        if (!up) {
                add_why(why, "its agent %s does not answer: %s", ep, e.msg);
        } else {
                json_object *req = json_object_new_object();
                json_object_object_add(req, "op", json_object_new_string("check"));
                int64_t t0 = realtime_ns();
                int r = fm_call(h->addr, h->port, req, &rep, 30000, &e);
                int64_t t1 = realtime_ns();
                json_object_put(req);
                authed = r == 0;
                if (r < 0) {
                        add_why(why, "no authenticated request: %s%s", e.msg, "");
                } else if (fm_reply_check(rep, &e) < 0) {
                        add_why(why, "its agent refused the check: %s%s", e.msg, "");
                } else {
                        json_object *c = get(rep, "check");
                        json_object_object_add(o, "check", json_object_get(c));
                        int64_t remote = json_object_get_int64(get(get(c, "clock"), "realtime_ns"));
                        /* the agent reads its clock last, just before it
                         * replies: against ours when the reply is here (off
                         * by the reply's transit, under a ms on a LAN; the
                         * round trip holds the handshake and CRIU's checks) */
                        if (remote > 0)
                                json_object_object_add(o, "clock_offset_ms",
                                                       json_object_new_double((double)(remote - t1) / 1e6));
                        json_object_object_add(o, "check_ms", json_object_new_double((double)(t1 - t0) / 1e6));
                        json_object *w = get(c, "why_not");
                        for (size_t i = 0; w && i < json_object_array_length(w); i++)
                                json_object_array_add(why, json_object_get(json_object_array_get_idx(w, i)));
                        const char *name = json_object_get_string(get(rep, "host"));
                        if (name && strcmp(name, h->name))
                                add_why(why, "its agent calls itself %s%s", name, "");
                        compare(h, c, why);
                }
        }
        json_object_put(rep);
        json_object_object_add(o, "authenticated", json_object_new_boolean(authed));
        json_object_object_add(o, "can_migrate", json_object_new_boolean(json_object_array_length(why) == 0));
        json_object_object_add(o, "why_not", why);
        return o;
}

static const char *yes(json_object *v) { return !v ? "-" : json_object_get_boolean(v) ? "yes" : "no"; }

static void print_row(json_object *o)
{
        json_object *c = get(o, "check"), *feat = get(get(c, "criu"), "features");
        char mem[24] = "-", disk[24] = "-", tmp[24] = "-", clk[24] = "-";
        if (c) {
                snprintf(mem, sizeof(mem), "%.1f", json_object_get_int64(get(get(c, "memory"), "available_bytes")) / 1e9);
                snprintf(disk, sizeof(disk), "%.1f", json_object_get_int64(get(get(c, "disk"), "free_bytes")) / 1e9);
                snprintf(tmp, sizeof(tmp), "%.1f", json_object_get_int64(get(get(c, "tmpfs"), "free_bytes")) / 1e9);
        }
        if (get(o, "clock_offset_ms"))
                snprintf(clk, sizeof(clk), "%+.1f", json_object_get_double(get(o, "clock_offset_ms")));
        const char *criu = json_object_get_string(get(get(c, "criu"), "version"));
        const char *lxc = json_object_get_string(get(get(c, "lxc"), "version"));
        const char *shared = json_object_get_string(get(get(c, "shared"), "id"));
        printf("%-8s %-21s %-5s %-5s %-7s %-5s %-7s %-5s %8s %8s %8s %-10.10s %8s  %s\n",
               json_object_get_string(get(o, "host")), json_object_get_string(get(o, "agent")),
               yes(get(o, "reachable")), yes(get(o, "authenticated")), criu ? criu : "-", yes(get(feat, "uffd-noncoop")),
               lxc ? lxc : "-", yes(get(c, "leases")), mem, disk, tmp,
               shared ? shared : "-", clk, yes(get(o, "can_migrate")));
        json_object *why = get(o, "why_not");
        for (size_t i = 0; why && i < json_object_array_length(why); i++)
                printf("%8s   cannot migrate: %s\n", "", json_object_get_string(json_object_array_get_idx(why, i)));
        json_object *notes = get(c, "notes");
        for (size_t i = 0; notes && i < json_object_array_length(notes); i++)
                printf("%8s   note: %s\n", "", json_object_get_string(json_object_array_get_idx(notes, i)));
}

int cmd_fleet(int argc, char **argv)
{
        bool json = argc == 3 && !strcmp(argv[2], "--json");
        if (argc < 2 || (strcmp(argv[1], "check") && strcmp(argv[1], "show")) || (argc == 3 && !json) || argc > 3)
                return cli_usage(USAGE);
        fm_fleet f;
        if (cli_load_fleet(&f))
                return 1;
        if (!strcmp(argv[1], "show")) {
                json_object *o = fm_fleet_json(&f);
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                return 0;
        }
        if (!json) {
                printf("fleet %s: %d host%s, steering %s\n", f.name, f.hosts, f.hosts == 1 ? "" : "s",
                       fm_steer_kind_name(f.steer.kind));
                printf("%-8s %-21s %-5s %-5s %-7s %-5s %-7s %-5s %8s %8s %8s %-10s %8s  %s\n", "host", "agent", "up",
                       "TLS", "criu", "uffd", "lxc", "lease", "mem_GB", "disk_GB", "tmpfs_GB", "shared", "clock_ms", "can_migrate");
                fflush(stdout);
        }
        int bad = 0;
        json_object *all = json_object_new_array(), *notes = json_object_new_array();
        char first_criu[32] = "", first_kernel[80] = "", first_host[32] = "";
        for (int i = 0; i < f.hosts; i++) {
                json_object *o = check_host(&f.host[i]);
                bad += !json_object_get_boolean(get(o, "can_migrate"));
                /* a dump is restored by the target's CRIU on the target's
                 * kernel: hosts that differ are worth knowing about */
                const char *cv = json_object_get_string(get(get(get(o, "check"), "criu"), "version"));
                const char *kv = json_object_get_string(get(get(o, "check"), "kernel"));
                if (cv && kv && !first_host[0]) {
                        snprintf(first_criu, sizeof(first_criu), "%s", cv);
                        snprintf(first_kernel, sizeof(first_kernel), "%s", kv);
                        snprintf(first_host, sizeof(first_host), "%s", f.host[i].name);
                } else if (cv && kv) {
                        char note[300];
                        if (strcmp(cv, first_criu)) {
                                snprintf(note, sizeof(note), "%s runs CRIU %s, %s %s: a dump of one may not restore on the other",
                                         f.host[i].name, cv, first_host, first_criu);
                                json_object_array_add(notes, json_object_new_string(note));
                        }
                        if (strcmp(kv, first_kernel)) {
                                snprintf(note, sizeof(note), "%s runs kernel %s, %s %s", f.host[i].name, kv, first_host,
                                         first_kernel);
                                json_object_array_add(notes, json_object_new_string(note));
                        }
                }
                if (json)
                        json_object_array_add(all, o);
                else {
                        print_row(o);
                        fflush(stdout);
                        json_object_put(o);
                }
        }
        if (json) {
                json_object *out = json_object_new_object();
                json_object_object_add(out, "fleet", json_object_new_string(f.name));
                json_object_object_add(out, "hosts", all);
                json_object_object_add(out, "notes", notes);
                cli_print_json(out);
                json_object_put(out);
        } else {
                for (size_t i = 0; i < json_object_array_length(notes); i++)
                        printf("note: %s\n", json_object_get_string(json_object_array_get_idx(notes, i)));
                json_object_put(notes);
                json_object_put(all);
                printf("%d of %d host%s can take part in a migration\n", f.hosts - bad, f.hosts, f.hosts == 1 ? "" : "s");
        }
        return bad ? 1 : 0;
}
