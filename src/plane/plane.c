#include "plane.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "workload/stream.h"
#include "probe/probe.h"
#include "util/spawn.h"
#include "proto/proto.h"
#include "steer/steer.h"
#include "workload/workload.h"

int fm_plane_call(const fm_host *h, json_object *req, json_object **reply, int timeout_ms, fm_error *e)
{
        json_object *rep = NULL;
        int r = fm_call(h->addr, h->port, req, &rep, timeout_ms, e);
        if (r < 0)
                return fm_err_wrap(e, "%s", h->name);
        if ((r = fm_reply_check(rep, e)) < 0) {
                json_object_put(rep);
                return fm_err_wrap(e, "%s", h->name);
        }
        if (reply)
                *reply = rep;
        else
                json_object_put(rep);
        return 0;
}

static json_object *req_name(const char *op, const char *name)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "op", json_object_new_string(op));
        if (name)
                json_object_object_add(o, "name", json_object_new_string(name));
        return o;
}

int fm_plane_locate(const fm_fleet *f, const char *name, const fm_host **host, char ip[16], fm_error *e)
{
        json_object *req = req_name("info", name);
        int r = fm_err(e, ENOENT, "no host runs a container named %s", name);
        for (int i = 0; i < f->hosts; i++) {
                json_object *rep = NULL;
                fm_error ce = {0};
                if (fm_plane_call(&f->host[i], req, &rep, 5000, &ce) < 0)
                        continue;
                json_object *ct = NULL;
                const char *st = NULL, *addr = NULL;
                if (json_object_object_get_ex(rep, "container", &ct)) {
                        fm_json_str(ct, "state", false, 32, &st, NULL);
                        fm_json_str(ct, "ipv4", false, 15, &addr, NULL);
                }
                bool running = st && (!strcmp(st, "RUNNING") || !strcmp(st, "FROZEN"));
                struct in_addr in;
                if (addr && addr[0] && inet_pton(AF_INET, addr, &in) != 1)
                        addr = NULL; /* an agent's word, checked before it reaches a route or a hook */
                if (running) {
                        *host = &f->host[i];
                        snprintf(ip, 16, "%s", addr ? addr : "");
                        fm_err_clear(e);
                        r = 0;
                }
                json_object_put(rep);
                if (r == 0)
                        break;
        }
        json_object_put(req);
        return r;
}

int fm_plane_route(const fm_fleet *f, const char *phase, const char *ip, const fm_host *h, fm_error *e)
{
        fm_steer st;
        int r = fm_steer_open(&st, &f->steer, e);
        if (r == 0)
                r = fm_steer_set(&st, phase, ip, NULL, h, e);
        fm_steer_close(&st);
        return r;
}

/* "no host `x' in fleet testbed (it has mec1, mec2)" */
static int no_host(const fm_fleet *f, const char *name, fm_error *e)
{
        char names[400];
        fm_fleet_names(f, names, sizeof(names));
        return fm_err(e, ENOENT, "no host `%s' in fleet %s (it has %s)", name, f->name, names);
}

int fm_plane_info(const fm_host *h, const char *name, bool sizes, int timeout_ms, json_object **reply, fm_error *e)
{
        json_object *req = req_name("info", name);
        if (sizes)
                json_object_object_add(req, "sizes", json_object_new_boolean(true));
        int r = fm_plane_call(h, req, reply, timeout_ms, e);
        json_object_put(req);
        return r;
}

int fm_plane_list(const fm_host *h, fm_ct_entry **out, size_t *n, fm_error *e)
{
        json_object *req = req_name("list", NULL), *rep = NULL, *arr = NULL;
        int r = fm_plane_call(h, req, &rep, 5000, e);
        json_object_put(req);
        if (r < 0)
                return r;
        size_t len = json_object_object_get_ex(rep, "containers", &arr) ? json_object_array_length(arr) : 0;
        fm_ct_entry *v = calloc(len ? len : 1, sizeof(*v));
        if (!v) {
                json_object_put(rep);
                return fm_err(e, ENOMEM, "out of memory");
        }
        for (size_t k = 0; k < len; k++) {
                json_object *c = json_object_array_get_idx(arr, k);
                const char *name = NULL, *st = NULL, *ip = NULL;
                fm_json_str(c, "name", false, 63, &name, NULL);
                fm_json_str(c, "state", false, 15, &st, NULL);
                fm_json_str(c, "ipv4", false, 15, &ip, NULL);
                snprintf(v[k].name, sizeof(v[k].name), "%s", name ? name : "?");
                snprintf(v[k].state, sizeof(v[k].state), "%s", st ? st : "?");
                snprintf(v[k].ipv4, sizeof(v[k].ipv4), "%s", ip ? ip : "");
        }
        json_object_put(rep);
        *out = v;
        *n = len;
        return 0;
}

/* The addresses the fleet's containers have (malloc'd, *n of them); fails
 * when a host cannot say (its containers' addresses are unknown). */
static int used_addrs(const fm_fleet *f, char (**out)[16], size_t *n, fm_error *e)
{
        *out = NULL;
        *n = 0;
        for (int i = 0; i < f->hosts; i++) {
                fm_ct_entry *v = NULL;
                size_t k = 0;
                if (fm_plane_list(&f->host[i], &v, &k, e) < 0) {
                        free(*out);
                        *out = NULL;
                        return fm_err_wrap(e, "the addresses in use are unknown");
                }
                char(*grown)[16] = realloc(*out, (*n + k + 1) * sizeof(**out));
                if (!grown) {
                        free(v);
                        free(*out);
                        *out = NULL;
                        return fm_err(e, ENOMEM, "out of memory");
                }
                *out = grown;
                for (size_t x = 0; x < k; x++)
                        snprintf((*out)[(*n)++], 16, "%s", v[x].ipv4);
                free(v);
        }
        return 0;
}

int fm_plane_start_workload(const fm_fleet *f, const char *host, const char *name, const fm_workload_spec *w,
                            char ip_out[16], fm_error *e)
{
        const fm_host *h = fm_fleet_host(f, host);
        if (!h)
                return no_host(f, host, e);
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        int r = fm_workload_check(w, e);
        if (r < 0)
                return r;
        const fm_host *where = NULL;
        char other[16];
        if (fm_plane_locate(f, name, &where, other, NULL) == 0)
                return fm_err(e, EEXIST, "a container named %s already runs on %s", name, where->name);
        char ip[16] = "", (*used)[16] = NULL;
        size_t nused = 0;
        if ((r = used_addrs(f, &used, &nused, e)) < 0)
                return r;
        bool free_ip = false;
        for (int x = 0; !free_ip; x++) {
                fm_fleet_service_addr(f, x, ip);
                if (!ip[0])
                        break;
                free_ip = true;
                for (size_t k = 0; k < nused && free_ip; k++)
                        free_ip = strcmp(used[k], ip) != 0;
        }
        free(used);
        if (!free_ip)
                return fm_err(e, ENOSPC, "no free service address left in fleet %s's services network", f->name);
        json_object *req = req_name("create_workload", name);
        json_object_object_add(req, "ipv4", json_object_new_string(ip));
        json_object_object_add(req, "prefix", json_object_new_int(f->prefix));
        json_object_object_add(req, "gateway", json_object_new_string(f->gateway));
        if (h->bridge[0])
                json_object_object_add(req, "bridge", json_object_new_string(h->bridge));
        json_object_object_add(req, "kind", json_object_new_string(w->kind));
        if (w->image)
                json_object_object_add(req, "image", json_object_new_string(w->image));
        if (w->flat)
                json_object_object_add(req, "flat", json_object_new_boolean(1));
        if (w->shared)
                json_object_object_add(req, "shared", json_object_new_boolean(1));
        if (w->plain_lxc)
                json_object_object_add(req, "plain_lxc", json_object_new_boolean(1));
        if (!strcmp(w->kind, "memory")) {
                json_object_object_add(req, "mem_mib", json_object_new_double(w->mem_mib));
                json_object_object_add(req, "dirty_mib_s", json_object_new_double(w->dirty_mib_s));
                if (w->fill)
                        json_object_object_add(req, "fill", json_object_new_string(w->fill));
        }
        r = fm_plane_call(h, req, NULL, w->shared ? 600000 : 120000, e);
        json_object_put(req);
        if (r < 0)
                return r;
        if ((r = fm_plane_route(f, FM_STEER_PLACE, ip, h, e)) < 0)
                return r;
        /* ready when it answers (a large memory workload fills its pages first) */
        uint64_t boot;
        for (int i = 0; i < 300; i++)
                if (fm_probe_once(f->users_netns, ip, FM_SEQECHO_PORT, &boot, NULL) >= 0) {
                        snprintf(ip_out, 16, "%s", ip);
                        return 0;
                }
        return fm_err(e, ETIMEDOUT, "container %s started on %s but its service at %s does not answer", name,
                      h->name, ip);
}

static void add_probe_result(json_object *out, const fm_probe_result *pr, int interval_us)
{
        json_object_object_add(out, "downtime_ms", json_object_new_double(pr->max_gap_ms));
        const char *why = NULL;
        bool cont = fm_probe_kept(pr, &why);
        json_object_object_add(out, "state_continuous", json_object_new_boolean(cont));
        json_object *pj = json_object_new_object();
        json_object_object_add(pj, "sent", json_object_new_int64((int64_t)pr->sent));
        json_object_object_add(pj, "received", json_object_new_int64((int64_t)pr->received));
        json_object_object_add(pj, "interval_ms", json_object_new_double(interval_us / 1000.0));
        json_object_object_add(pj, "first_counter", json_object_new_int64((int64_t)pr->first_counter));
        json_object_object_add(pj, "last_counter", json_object_new_int64((int64_t)pr->last_counter));
        json_object_object_add(pj, "restarted", json_object_new_boolean(pr->boot_changed));
        json_object_object_add(pj, "counter_went_back", json_object_new_boolean(pr->counter_regressed));
        json_object_object_add(pj, "reordered", json_object_new_int64((int64_t)pr->reordered));
        json_object_object_add(pj, "freeze_counter", json_object_new_int64((int64_t)pr->freeze_counter));
        json_object_object_add(pj, "answered_after", json_object_new_int64((int64_t)pr->answered_after));
        json_object_object_add(pj, "after_counter", json_object_new_int64((int64_t)pr->after_counter));
        json_object_object_add(pj, "not_kept", why ? json_object_new_string(why) : NULL);
        json_object_object_add(out, "probe", pj);
}

/* The memory workload checks its own pages after the migration (wherever it
 * runs now); other services: null. */
static void add_memory_check(json_object *out, const char *netns, const char *ip)
{
        uint64_t pages = 0, bad = 0, sum = 0;
        fm_error e = {0};
        json_object *v = NULL;
        if (fm_probe_verify(netns, ip, FM_SEQECHO_PORT, &pages, &bad, &sum, &e) == 0 && pages > 0) {
                v = json_object_new_boolean(bad == 0);
                json_object_object_add(out, "memory_pages", json_object_new_int64((int64_t)pages));
                json_object_object_add(out, "memory_bad_pages", json_object_new_int64((int64_t)bad));
        }
        json_object_object_add(out, "memory_verified", v);
}

/* Starts the probe and waits for the service to answer. */
static int probe_begin(fm_probe *p, const char *netns, const char *ip, int interval_us, const char *name,
                       fm_error *e)
{
        int r = fm_probe_start(p, netns, ip, FM_SEQECHO_PORT, interval_us, e);
        if (r < 0)
                return r;
        if (fm_probe_wait_reply(p, 0, 2000) < 0) {
                fm_probe_result pr;
                fm_probe_stop(p, &pr);
                return fm_err(e, EHOSTUNREACH,
                              "the probe gets no answer from %s:%d (is %s a fm-seqecho service? use --no-probe "
                              "for other containers)",
                              ip, FM_SEQECHO_PORT, name);
        }
        return 0;
}

/* The migration is over: the service must answer from wherever it runs now
 * (3 s at most), then a little more of the user's view. */
static void probe_end(fm_probe *p, fm_probe_result *pr)
{
        fm_probe_mark_end(p);
        uint64_t seen = atomic_load(&p->received);
        fm_probe_wait_reply(p, seen, 3000);
        usleep(50000);
        fm_probe_stop(p, pr);
}

/* ---- one migration ---- */

int fm_plane_migrate(const fm_fleet *f, const fm_migrate_opts *o, json_object **report, fm_error *e)
{
        const fm_host *to = fm_fleet_host(f, o->to);
        const fm_host *from = NULL;
        char ip[16] = "";
        int r;
        if (!to)
                return no_host(f, o->to, e);
        if (o->from) {
                from = fm_fleet_host(f, o->from);
                if (!from)
                        return no_host(f, o->from, e);
                json_object *req = req_name("info", o->name), *rep = NULL, *ct = NULL;
                r = fm_plane_call(from, req, &rep, 5000, e);
                json_object_put(req);
                if (r < 0)
                        return r;
                const char *a = NULL;
                struct in_addr in;
                if (json_object_object_get_ex(rep, "container", &ct))
                        fm_json_str(ct, "ipv4", false, 15, &a, NULL);
                snprintf(ip, sizeof(ip), "%s", a && inet_pton(AF_INET, a, &in) == 1 ? a : "");
                json_object_put(rep);
        } else if ((r = fm_plane_locate(f, o->name, &from, ip, e)) < 0) {
                return r;
        }
        if (from == to)
                return fm_err(e, EINVAL, "%s already runs on %s", o->name, to->name);
        if (!ip[0])
                return fm_err(e, EINVAL, "container %s has no static IPv4 address in its LXC config", o->name);

        /* The source agent steers the service's traffic (the migration's
         * outcome is its to decide, docs/RECOVERY.md): by this fleet's
         * steering, which its own fleet file must name too. */

        fm_probe probe;
        bool probing = false;
        int interval_us = o->probe_interval_us ? o->probe_interval_us : 1000;
        if (o->probe) {
                if ((r = probe_begin(&probe, f->users_netns, ip, interval_us, o->name, e)) < 0)
                        return r;
                probing = true;
        }

        double t0 = fm_now_ms();
        json_object *req = req_name("migrate", o->name);
        char to_ep[40];
        snprintf(to_ep, sizeof(to_ep), "%s:%u", to->addr, to->port);
        json_object_object_add(req, "to", json_object_new_string(to_ep));
        json_object_object_add(req, "to_host", json_object_new_string(to->name));
        json_object_object_add(req, "steering", json_object_new_string(fm_steer_kind_name(f->steer.kind)));
        json_object_object_add(req, "fleet", json_object_new_string(f->name));
        if (o->inject)
                json_object_object_add(req, "inject", json_object_new_string(o->inject));
        if (o->mode)
                json_object_object_add(req, "mode", json_object_new_string(o->mode));
        if (o->restore)
                json_object_object_add(req, "restore", json_object_new_string(o->restore));
        if (o->dump)
                json_object_object_add(req, "dump", json_object_new_string(o->dump));
        if (o->compress)
                json_object_object_add(req, "compress", json_object_new_string(o->compress));
        if (o->strategy)
                json_object_object_add(req, "strategy", json_object_new_string(o->strategy));
        if (o->max_rounds > 0)
                json_object_object_add(req, "max_rounds", json_object_new_int(o->max_rounds));
        if (o->storage_latency_ms > 0)
                json_object_object_add(req, "storage_latency_ms", json_object_new_double(o->storage_latency_ms));
        if (o->stay_shared)
                json_object_object_add(req, "stay_shared", json_object_new_boolean(true));
        if (o->images_lead_ms)
                json_object_object_add(req, "images_lead_ms", json_object_new_int(o->images_lead_ms < 0 ? 0 : o->images_lead_ms));
        if (o->freeze_at_ms > 0)
                json_object_object_add(req, "freeze_at", json_object_new_int64(o->freeze_at_ms));
        if (o->min_shrink > 0)
                json_object_object_add(req, "min_shrink", json_object_new_double(o->min_shrink));
        if (o->dirty_threshold > 0)
                json_object_object_add(req, "dirty_threshold", json_object_new_int64(o->dirty_threshold));
        json_object *stalls = json_object_new_array();
        if (probing) {
                fm_probe_window_gap(&probe);
                fm_probe_mark_freeze(&probe); /* again at "frozen", if it comes */
        }
        fm_stream_window(o->name);
        _cleanup_close_ int fd = fm_tcp_connect(from->addr, from->port, 10000, e);
        json_object *rep = NULL;
        if (fd < 0) {
                r = fd;
        } else {
                fm_sock_set_timeout(fd, 600000);
                r = fm_msg_send(fd, FM_FRAME_REQUEST, req);
                if (r < 0)
                        r = fm_err(e, -r, "sending the migration request to %s: %s", from->name, strerror(-r));
        }
        json_object_put(req);
        while (r == 0) {
                uint8_t t = 0;
                json_object *m = NULL;
                if ((r = fm_msg_recv(fd, &t, &m, e)) < 0) {
                        fm_err_wrap(e, "agent of %s", from->name);
                        break;
                }
                if (t == FM_FRAME_REPLY) {
                        rep = m;
                        break;
                }
                const char *ev = NULL, *ph = NULL;
                fm_json_str(m, "event", false, 32, &ev, NULL);
                if (ev && !strcmp(ev, "round")) {
                        /* the user's view while this round ran */
                        double stall = probing ? fm_probe_window_gap(&probe) : 0;
                        json_object_array_add(stalls, probing ? json_object_new_double(stall) : NULL);
                        if (o->round_progress)
                                o->round_progress(m, stall, o->pdata);
                } else if (ev && !strcmp(ev, "phase") && probing) {
                        fm_probe_window_gap(&probe);
                }
                if (ev && !strcmp(ev, "phase")) {
                        fm_json_str(m, "phase", false, 32, &ph, NULL);
                        json_object *ms = NULL;
                        json_object_object_get_ex(m, "ms", &ms);
                        if (o->progress && ph)
                                o->progress(ph, json_object_get_double(ms), o->pdata);
                } else if (ev && !strcmp(ev, "frozen") && probing) {
                        /* the source is frozen (and its agent sends the
                         * traffic to the target) */
                        fm_probe_mark_freeze(&probe);
                }
                json_object_put(m);
        }
        double total = fm_now_ms() - t0;

        json_object *inner = NULL;
        bool ok = false;
        if (rep) {
                ok = fm_json_bool(rep, "ok", false);
                if (json_object_object_get_ex(rep, "report", &inner))
                        json_object_get(inner);
                if (!ok && r == 0) {
                        fm_reply_check(rep, e);
                        r = -e->code;
                }
        }
        fm_probe_result pr = {0};
        if (probing)
                probe_end(&probe, &pr);
        json_object *out = inner ? inner : json_object_new_object();
        json_object_object_add(out, "container", json_object_new_string(o->name));
        json_object_object_add(out, "from", json_object_new_string(from->name));
        json_object_object_add(out, "to", json_object_new_string(to->name));
        if (!json_object_object_get_ex(out, "mode", NULL))
                json_object_object_add(out, "mode", json_object_new_string(o->mode ? o->mode : "precopy"));
        json_object *rounds = NULL;
        if (json_object_object_get_ex(out, "rounds", &rounds))
                for (size_t i = 0; i < json_object_array_length(rounds) && i < json_object_array_length(stalls); i++)
                        json_object_object_add(json_object_array_get_idx(rounds, i), "stall_ms",
                                               json_object_get(json_object_array_get_idx(stalls, i)));
        json_object_object_add(out, "ok", json_object_new_boolean(ok));
        if (!ok)
                json_object_object_add(out, "error", json_object_new_string(e->msg[0] ? e->msg : "failed"));
        if (!json_object_object_get_ex(out, "rolled_back", NULL))
                json_object_object_add(out, "rolled_back", json_object_new_boolean(false));
        json_object_object_add(out, "total_ms", json_object_new_double(total));
        json_object *stream = fm_stream_report(o->name);
        json_object_object_add(out, "stream", stream);
        int64_t bad = 0;
        if (stream)
                fm_json_int(stream, "bad_bytes", false, 0, INT64_MAX, &bad, NULL);
        if (r == 0 && stream && (!fm_json_bool(stream, "connection_kept", false) || bad != 0)) {
                r = fm_err(e, EIO, "%s moved to %s, but its video stream %s", o->name, to->name,
                           fm_json_bool(stream, "connection_kept", false) ? "delivered wrong bytes" : "broke");
                json_object_object_add(out, "ok", json_object_new_boolean(false));
                json_object_object_add(out, "error", json_object_new_string(e->msg));
        }
        if (probing) {
                add_probe_result(out, &pr, interval_us);
                if (pr.answered_after > 0) /* a silent service would keep the check waiting */
                        add_memory_check(out, f->users_netns, ip);
                else
                        json_object_object_add(out, "memory_verified", NULL);
                /* the agents may call it done, the user's view decides */
                const char *why = NULL;
                if (r == 0 && !fm_probe_kept(&pr, &why)) {
                        r = fm_err(e, EIO, "%s moved to %s, but %s", o->name, to->name, why);
                        json_object_object_add(out, "ok", json_object_new_boolean(false));
                        json_object_object_add(out, "error", json_object_new_string(e->msg));
                }
        } else {
                json_object_object_add(out, "downtime_ms", NULL);
                json_object_object_add(out, "state_continuous", NULL);
                json_object_object_add(out, "memory_verified", NULL);
        }
        *report = out;
        json_object_put(rep);
        json_object_put(stalls);
        return r;
}

int fm_plane_baseline(const fm_fleet *f, const char *script, const char *fastmig, const char *name,
                      const char *to, json_object **report, fm_error *e)
{
        const fm_host *from = NULL, *dst = fm_fleet_host(f, to);
        char ip[16];
        if (!dst)
                return no_host(f, to, e);
        int r = fm_plane_locate(f, name, &from, ip, e);
        if (r < 0)
                return r;
        if ((r = fm_plane_route(f, FM_STEER_SOURCE, ip, from, e)) < 0)
                return r;
        fm_probe probe;
        if ((r = probe_begin(&probe, f->users_netns, ip, 1000, name, e)) < 0)
                return r;
        char *argv[] = {"bash", (char *)script, (char *)fastmig, (char *)name, (char *)from->name, (char *)to, NULL};
        fm_spawn_opts so = {.timeout_ms = 300000};
        fm_probe_mark_freeze(&probe); /* the script freezes soon: it must go on from here at least */
        double t0 = fm_now_ms();
        r = fm_spawn_check(argv, &so, e);
        double total = fm_now_ms() - t0;
        fm_probe_result pr;
        probe_end(&probe, &pr);
        json_object *out = NULL;
        if (r == 0) {
                /* the script's last line is its JSON */
                char *last = so.output ? strrchr(so.output, '{') : NULL;
                if (!last || fm_msg_parse(last, strlen(last) - (last[strlen(last) - 1] == '\n'), &out, e) < 0)
                        r = fm_err(e, EPROTO, "baseline script printed no report: %s", so.output ? so.output : "");
        } else {
                fm_err_wrap(e, "baseline");
        }
        free(so.output);
        if (r < 0)
                return r;
        json_object_object_add(out, "container", json_object_new_string(name));
        json_object_object_add(out, "from", json_object_new_string(from->name));
        json_object_object_add(out, "to", json_object_new_string(to));
        json_object_object_add(out, "strategy", json_object_new_string("baseline"));
        json_object_object_add(out, "ok", json_object_new_boolean(1));
        json_object_object_add(out, "total_ms", json_object_new_double(total));
        add_probe_result(out, &pr, 1000);
        *report = out;
        return 0;
}
