/* fastmig scenario: users moving through the testbed's cells, their
 * services followed by the orchestrator (docs/SCENARIOS.md). `check'
 * reads a scenario and shows what a known path plans; `run' replays it in
 * real time on the testbed (built for it when none is up) and reports each
 * handover and, per user, what a probe saw over the trip. */
#include <getopt.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mobility/planner.h"
#include "orch/client.h"
#include "plane/plane.h"
#include "probe/probe.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "scenario/scenario.h"
#include "util/job.h"
#include "util/spawn.h"
#include "workload/workload.h"
#include "workload/stream.h"

static const char USAGE[] =
        "fastmig scenario run FILE [--path known|unknown] [--speedup X] [--json] [--keep]\n"
        "           replays it on the testbed through the orchestrator (builds a testbed when none is up;\n"
        "           --speedup: the users move X times faster, migrations run as they do;\n"
        "           --keep leaves the services and that testbed up)\n"
        "       fastmig scenario check FILE [--json]   (reads it; the handovers a known path plans)";

#define TICK_MS 50
#define SETTLE_MS 120000   /* after the trip, how long handovers under way may take to end */
#define LEAD_MS 3000       /* from the services' registration to the trip's start */

static void sleep_ms(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* ---- where a user is ---- */

/* The position at trace time t (linear between points; the ends held). */
static void position_at(const fm_trace *t, int64_t ms, double *x, double *y)
{
        size_t i = 0;
        while (i + 1 < t->n && t->p[i + 1].t_ms <= ms)
                i++;
        const fm_trace_point *a = &t->p[i];
        if (i + 1 >= t->n || ms <= a->t_ms) {
                *x = a->x;
                *y = a->y;
                return;
        }
        const fm_trace_point *b = &t->p[i + 1];
        double f = (double)(ms - a->t_ms) / (double)(b->t_ms - a->t_ms);
        *x = a->x + (b->x - a->x) * f;
        *y = a->y + (b->y - a->y) * f;
}

/* The cell serving the user at trace time ms, given the one before (a
 * user keeps its cell while in it). */
static const fm_cell *cell_at(const fm_coverage *c, const fm_trace *t, int64_t ms, const fm_cell *cur)
{
        if (t->n && !t->p[0].has_xy)
                return fm_coverage_cell(c, fm_trace_cell_at(t, ms));
        double x, y;
        position_at(t, ms, &x, &y);
        const fm_cell *n = fm_coverage_locate(c, x, y, cur);
        return n ? n : cur;
}

/* Where the user's heading takes it lead ms from now (its present speed
 * and direction): the cell an RNIS would prepare a handover to. */
static const fm_cell *cell_ahead(const fm_coverage *c, const fm_trace *t, int64_t ms, int lead, const fm_cell *cur)
{
        if (t->n && !t->p[0].has_xy)
                return fm_coverage_cell(c, fm_trace_cell_at(t, ms + lead));
        double x0, y0, x1, y1;
        position_at(t, ms, &x0, &y0);
        position_at(t, ms + 100, &x1, &y1);
        double k = lead / 100.0;
        const fm_cell *n = fm_coverage_locate(c, x0 + (x1 - x0) * k, y0 + (y1 - y0) * k, cur);
        return n ? n : cur;
}

/* ---- check ---- */

static json_object *plan_json(const fm_scenario *s)
{
        json_object *out = json_object_new_array();
        fm_estimate_in in = {.link_mbit = s->link_mbit};
        int64_t est = fm_plan_estimate_ms(&in, NULL, 0);
        for (size_t i = 0; i < s->n; i++) {
                const fm_scn_user *u = &s->users[i];
                const fm_trace *t = u->has_announced ? &u->announced.t : &u->trace.t;
                fm_handover_plan *h = NULL;
                size_t nh = 0;
                fm_error e = {0};
                if (fm_plan_handovers(t, &s->cov, est, &h, &nh, &e) < 0)
                        continue;
                for (size_t k = 0; k < nh; k++) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "user", json_object_new_string(u->name));
                        json_object_object_add(o, "from", json_object_new_string(h[k].from_host));
                        json_object_object_add(o, "to", json_object_new_string(h[k].to_host));
                        json_object_object_add(o, "from_cell", json_object_new_string(h[k].from_cell));
                        json_object_object_add(o, "to_cell", json_object_new_string(h[k].to_cell));
                        json_object_object_add(o, "planned_start", json_object_new_int64(h[k].start_ms + (int64_t)(u->start_s * 1000)));
                        json_object_object_add(o, "deadline", json_object_new_int64(h[k].deadline_ms + (int64_t)(u->start_s * 1000)));
                        json_object_object_add(o, "tight", json_object_new_boolean(h[k].tight));
                        json_object_array_add(out, o);
                }
                free(h);
        }
        return out;
}

static int do_check(const fm_scenario *s, bool json)
{
        json_object *plan = plan_json(s);
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "scenario", json_object_new_string(s->name));
                json_object_object_add(o, "hosts", json_object_new_int(s->hosts));
                json_object_object_add(o, "cells", json_object_new_int((int)s->cov.n));
                json_object_object_add(o, "users", json_object_new_int((int)s->n));
                json_object_object_add(o, "duration_s", json_object_new_double(s->duration_s));
                json_object_object_add(o, "speedup", json_object_new_double(s->speedup));
                json_object_object_add(o, "planned", plan);
                cli_print_json(o);
                json_object_put(o);
                return 0;
        }
        printf("scenario %s: %d hosts, %zu cells, %zu users, %.1f s (speed-up %gx)\n", s->name, s->hosts, s->cov.n, s->n,
               s->duration_s, s->speedup);
        printf("a known path plans (default estimate, no history):\n");
        for (size_t i = 0; i < json_object_array_length(plan); i++) {
                json_object *h = json_object_array_get_idx(plan, i);
                printf("  %-8s %s -> %s (%s -> %s): start %.1f s, deadline %.1f s%s\n", fm_json_get_str(h, "user"),
                       fm_json_get_str(h, "from"), fm_json_get_str(h, "to"), fm_json_get_str(h, "from_cell"),
                       fm_json_get_str(h, "to_cell"), (double)fm_json_get_int(h, "planned_start") / 1000,
                       (double)fm_json_get_int(h, "deadline") / 1000,
                       fm_json_bool(h, "tight", false) ? " (tight)" : "");
        }
        json_object_put(plan);
        return 0;
}

/* ---- run ---- */

typedef struct runner {
        const fm_scenario *s;
        fm_api_client api;
        fm_fleet fleet;
        bool known;
        int64_t t0;      /* the scenario's time 0 (wall, ms) */
} runner;

typedef struct user_run {
        const fm_scn_user *u;
        char sid[80], tid[80], ip[16], host0[FM_NAME_MAX + 1];
        const fm_cell *cell;        /* where the runner has the user now */
        const fm_cell *announced;   /* the cell an IN_PREPARATION was sent for */
        int64_t last_post;
        bool started, done, probing, placed;
        fm_probe probe;
        fm_probe_result pr;
        json_object *stream;        /* video: the stream's report */
        int posts_failed;
} user_run;

static int call(runner *r, const char *method, const char *path, json_object *body, json_object **reply, fm_error *e)
{
        long st = 0;
        json_object *rep = NULL;
        int x = fm_api_call(&r->api, method, path, body, &st, &rep, e);
        if (reply)
                *reply = rep;
        else
                json_object_put(rep);
        return x;
}

static json_object *associate(const fm_scn_user *u)
{
        json_object *id = json_object_new_object();
        json_object_object_add(id, "type", json_object_new_string("UE_IPv4_ADDRESS"));
        json_object_object_add(id, "value", json_object_new_string(u->associate));
        return id;
}

static json_object *stamp(int64_t ms)
{
        json_object *t = json_object_new_object();
        json_object_object_add(t, "seconds", json_object_new_int64(ms / 1000));
        json_object_object_add(t, "nanoSeconds", json_object_new_int64((ms % 1000) * 1000000));
        return t;
}

static json_object *ecgi(const char *cell)
{
        json_object *o = json_object_new_object(), *plmn = json_object_new_object();
        json_object_object_add(plmn, "mcc", json_object_new_string("001"));
        json_object_object_add(plmn, "mnc", json_object_new_string("01"));
        json_object_object_add(o, "plmn", plmn);
        json_object_object_add(o, "cellId", json_object_new_string(cell));
        return o;
}

/* The user's move told to the orchestrator as its events say. */
static void tell(runner *r, user_run *x, int64_t now, double px, double py, const fm_cell *from, const fm_cell *to,
                 int ho_status)
{
        json_object *b = json_object_new_object();
        const char *path;
        if (ho_status) {
                path = "/fastmig/v1/rnis/notifications";
                json_object *ids = json_object_new_array(), *trg = json_object_new_array();
                json_object_array_add(ids, associate(x->u));
                json_object_array_add(trg, ecgi(to->id));
                json_object_object_add(b, "notificationType", json_object_new_string("CellChangeNotification"));
                json_object_object_add(b, "timeStamp", stamp(now));
                json_object_object_add(b, "associateId", ids);
                json_object_object_add(b, "srcEcgi", ecgi(from ? from->id : to->id));
                json_object_object_add(b, "trgEcgi", trg);
                json_object_object_add(b, "hoStatus", json_object_new_int(ho_status));
        } else if (x->u->trace.t.p[0].has_xy) {
                path = "/fastmig/v1/users/positions";
                json_object_object_add(b, "associateId", associate(x->u));
                json_object_object_add(b, "x", json_object_new_double(px));
                json_object_object_add(b, "y", json_object_new_double(py));
                json_object_object_add(b, "timeStamp", stamp(now));
        } else {
                path = "/fastmig/v1/users/cell_changes";
                json_object_object_add(b, "associateId", associate(x->u));
                json_object_object_add(b, "cell", json_object_new_string(to->id));
                json_object_object_add(b, "timeStamp", stamp(now));
        }
        fm_error e = {0};
        if (call(r, "POST", path, b, NULL, &e) < 0 && x->posts_failed++ < 5)
                fprintf(stderr, "scenario: %s: %s: %s\n", x->u->name, path, e.msg);
        json_object_put(b);
}

/* One tick of a user's trip. */
static void step(runner *r, user_run *x, int64_t now)
{
        const fm_scn_user *u = x->u;
        const fm_trace *t = &u->trace.t;
        int64_t ms = now - r->t0 - (int64_t)(u->start_s * 1000);
        if (x->done || ms < t->p[0].t_ms)
                return;
        if (ms > t->p[t->n - 1].t_ms) {
                x->done = true;
                return;
        }
        double px = 0, py = 0;
        if (t->p[0].has_xy)
                position_at(t, ms, &px, &py);
        const fm_cell *c = cell_at(&r->s->cov, t, ms, x->cell);
        bool changed = c != x->cell;
        const fm_cell *from = x->cell;
        x->cell = c;
        if (u->rnis) {
                /* the early warning ahead of a crossing, the completion at it */
                const fm_cell *ahead = cell_ahead(&r->s->cov, t, ms, r->s->rnis_lead_ms, c);
                if (!changed && x->announced && ahead == c) { /* it turned back before the crossing */
                        tell(r, x, now, px, py, c, x->announced, 5);
                        x->announced = NULL;
                }
                if (ahead != c && ahead != x->announced) {
                        if (x->announced) /* another cell than the one announced */
                                tell(r, x, now, px, py, c, x->announced, 5);
                        x->announced = ahead;
                        tell(r, x, now, px, py, c, ahead, 1);
                }
                if (changed && from) {
                        if (x->announced != c)
                                tell(r, x, now, px, py, from, c, 1);
                        tell(r, x, now, px, py, from, c, 3);
                        x->announced = NULL;
                }
                return;
        }
        if (changed || now - x->last_post >= r->s->position_ms) {
                x->last_post = now;
                tell(r, x, now, px, py, from, c, 0);
        }
}

/* fastmig's own CLI for what a user would run by hand. */
static int self(fm_error *e, const char *const *args)
{
        char exe[4200];
        snprintf(exe, sizeof(exe), "%s/fastmig", fm_self_dir());
        char *argv[24] = {exe};
        size_t n = 1;
        for (; args[n - 1] && n < 23; n++)
                argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        fm_spawn_opts o = {.timeout_ms = 600000};
        int r = fm_spawn_check(argv, &o, e);
        free(o.output);
        return r;
}

/* A user's service started, or destroyed, by fastmig's own CLI. */
static int service_cmd(const fm_scn_user *u, const char *host, bool destroy, fm_error *e)
{
        char size[32];
        snprintf(size, sizeof(size), "%g", u->size_mib);
        const char *start[] = {"workload", "start", u->workload, "--host", host, "--name", u->name,
                               u->shared ? "--shared" : !strcmp(u->workload, "memory") ? "--size-mib" : NULL,
                               !strcmp(u->workload, "memory") ? size : NULL, NULL};
        const char *gone[] = {"workload", "destroy", u->name, NULL};
        return self(e, destroy ? gone : start);
}

/* The users' services, one after the other: a start picks a free service
 * address, two at once could pick the same. */
static int services_start(runner *r, user_run *xs, size_t n, fm_error *e)
{
        for (size_t i = 0; i < n; i++) {
                const fm_scn_user *u = xs[i].u;
                const fm_cell *c0 = cell_at(&r->s->cov, &u->trace.t, u->trace.t.p[0].t_ms, NULL);
                snprintf(xs[i].host0, sizeof(xs[i].host0), "%s", c0->host);
                const fm_host *h = NULL;
                char ip[16];
                if (fm_plane_locate(&r->fleet, u->name, &h, ip, NULL) == 0)
                        return fm_err(e, EEXIST, "a container %s runs on %s already: the scenario's services are its own "
                                                 "(`fastmig workload destroy %s')", u->name, h->name, u->name);
                if (service_cmd(u, xs[i].host0, false, e) < 0)
                        return fm_err_wrap(e, "%s's service", u->name);
                xs[i].placed = true;
        }
        return 0;
}

static int destroy_one(void *arg, fm_error *e)
{
        const user_run *x = arg;
        return service_cmd(x->u, NULL, true, e);
}

/* The services the run started, destroyed at once (one on the shared
 * volume takes seconds); what fails is said. */
static void services_destroy(user_run *xs, size_t n)
{
        fm_job *jobs = calloc(n, sizeof(*jobs));
        for (size_t i = 0; i < n; i++) {
                if (!xs[i].placed)
                        continue;
                fm_error e = {0};
                /* no room for a thread: here, before the others */
                if (jobs && fm_job_start(&jobs[i], "destroying a service", destroy_one, NULL, &xs[i], &e) == 0)
                        continue;
                if (destroy_one(&xs[i], &e) < 0)
                        fprintf(stderr, "scenario: %s's service: %s\n", xs[i].u->name, e.msg);
        }
        for (size_t i = 0; jobs && i < n; i++)
                if (fm_job_running(&jobs[i]) && fm_job_join(&jobs[i]) < 0)
                        fprintf(stderr, "scenario: %s's service: %s\n", xs[i].u->name, jobs[i].err.msg);
        free(jobs);
}

static int setup_user(runner *r, user_run *x, fm_error *e)
{
        const fm_scn_user *u = x->u;
        const fm_host *h = NULL;
        int rc;
        if ((rc = fm_plane_locate(&r->fleet, u->name, &h, x->ip, e)) < 0)
                return rc;
        json_object *reg = json_object_new_object(), *cons = json_object_new_object(), *dev = json_object_new_array(),
                    *d = json_object_new_object(), *ext = json_object_new_object(), *rep = NULL;
        char app[64];
        snprintf(app, sizeof(app), "scenario-%s", u->name);
        json_object_object_add(cons, "appInstanceId", json_object_new_string(app));
        json_object_object_add(reg, "serviceConsumerId", cons);
        json_object_object_add(d, "associateId", associate(u));
        json_object_object_add(d, "appMobilityServiceLevel", json_object_new_string("APP_MOBILITY_WITHOUT_CONFIRMATION"));
        json_object_array_add(dev, d);
        json_object_object_add(reg, "deviceInformation", dev);
        json_object_object_add(ext, "container", json_object_new_string(u->name));
        if (u->storage_latency_ms > 0)
                json_object_object_add(ext, "storageLatencyMs", json_object_new_double(u->storage_latency_ms));
        json_object_object_add(reg, "fastmig", ext);
        rc = call(r, "POST", "/amsi/v1/app_mobility_services", reg, &rep, e);
        json_object_put(reg);
        if (rc == 0)
                snprintf(x->sid, sizeof(x->sid), "%s", fm_json_get_str(rep, "appMobilityServiceId"));
        json_object_put(rep);
        return rc < 0 ? fm_err_wrap(e, "registering %s's service", u->name) : 0;
}

static int register_path(runner *r, user_run *x, fm_error *e)
{
        const fm_scn_user *u = x->u;
        const fm_scn_trace *tr = u->has_announced ? &u->announced : &u->trace;
        json_object *b = json_object_new_object(), *rep = NULL;
        static const char *const fmt[] = {"csv", "json", "fcd"};
        json_object_object_add(b, "appMobilityServiceId", json_object_new_string(x->sid));
        json_object_object_add(b, "associateId", associate(u));
        json_object_object_add(b, "startTime", stamp(r->t0 + (int64_t)(u->start_s * 1000)));
        if (r->s->speedup == 1) { /* the trace as it is written, in its own form */
                json_object_object_add(b, "format", json_object_new_string(fmt[tr->format]));
                json_object_object_add(b, "text", json_object_new_string(tr->text));
                if (tr->vehicle[0])
                        json_object_object_add(b, "vehicle", json_object_new_string(tr->vehicle));
        } else { /* sped up: its points with the times the user keeps */
                json_object *doc = fm_trace_json(&tr->t);
                json_object_object_add(b, "points", json_object_get(fm_json_get(doc, "points")));
                json_object_put(doc);
        }
        int rc = call(r, "POST", "/fastmig/v1/trajectories", b, &rep, e);
        if (rc == 0)
                snprintf(x->tid, sizeof(x->tid), "%s", fm_json_get_str(rep, "id"));
        json_object_put(b);
        json_object_put(rep);
        return rc < 0 ? fm_err_wrap(e, "registering %s's trajectory", u->name) : 0;
}

/* Whether any of the services has a handover not yet ended. */
static bool handovers_open(runner *r, user_run *xs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char path[160];
                json_object *rep = NULL;
                for (int k = 0; k < 2; k++) {
                        snprintf(path, sizeof(path), "/fastmig/v1/handovers?service=%s&status=%s", xs[i].sid,
                                 k ? "started" : "planned");
                        bool open = call(r, "GET", path, NULL, &rep, NULL) == 0 && json_object_array_length(rep) > 0;
                        json_object_put(rep);
                        if (open)
                                return true;
                }
        }
        return false;
}

static double rel(json_object *h, const char *k, int64_t t0)
{
        json_object *v = fm_json_get(h, k);
        return v ? (double)(json_object_get_int64(v) - t0) : NAN;
}

static json_object *num_or_null(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

/* The report of one user: its handovers (into all) and what it saw. */
static json_object *user_report(runner *r, user_run *x, json_object *all)
{
        const fm_scn_user *u = x->u;
        char path[160];
        snprintf(path, sizeof(path), "/fastmig/v1/handovers?service=%s", x->sid);
        json_object *hs = NULL;
        fm_error e = {0};
        if (call(r, "GET", path, NULL, &hs, &e) < 0 || !json_object_is_type(hs, json_type_array)) {
                fprintf(stderr, "scenario: %s's handovers: %s\n", u->name, e.msg[0] ? e.msg : "not a list");
                json_object_put(hs);
                hs = json_object_new_array();
        }
        /* the service's host over the trip: where it started, then each
         * handover's target from when it ran there */
        size_t nh = json_object_array_length(hs), made = 0, misses = 0;
        int64_t bytes = 0;
        const char *hosts[256];
        double since[256];
        size_t nt = 0;
        hosts[nt] = x->host0;
        since[nt++] = -1e18;
        for (size_t i = 0; i < nh; i++) {
                json_object *h = json_object_array_get_idx(hs, i);
                const char *st = fm_json_get_str(h, "status");
                if (!strcmp(st, "dropped") || !strcmp(st, "skipped"))
                        continue;
                made++;
                json_object *met = fm_json_get(h, "deadline_met");
                misses += met && !json_object_get_boolean(met);
                bytes += fm_json_get_int(h, "bytes");
                if (!strcmp(st, "done") && nt < 256) {
                        hosts[nt] = fm_json_get_str(h, "to");
                        since[nt++] = rel(h, "switched", r->t0);
                }
                json_object *o = json_object_new_object();
                json_object_object_add(o, "user", json_object_new_string(u->name));
                static const char *const copy[] = {"from", "to", "from_cell", "to_cell", "path", "trigger", "status",
                                                   "strategy", "decision_path", "deadline_met", "ended_by_deadline",
                                                   "downtime_ms", "total_ms", "bytes", "image", "why", "error"};
                for (size_t k = 0; k < FM_ARRAY_SIZE(copy); k++) {
                        json_object *v = fm_json_get(h, copy[k]);
                        json_object_object_add(o, copy[k], v ? json_object_get(v) : NULL);
                }
                json_object_object_add(o, "planned_start", num_or_null(rel(h, "planned_start", r->t0)));
                json_object_object_add(o, "started", num_or_null(rel(h, "started", r->t0)));
                json_object_object_add(o, "ended", num_or_null(rel(h, "ended", r->t0)));
                json_object_object_add(o, "deadline", num_or_null(rel(h, "deadline", r->t0)));
                json_object_object_add(o, "switched", num_or_null(rel(h, "switched", r->t0)));
                json_object_array_add(all, o);
        }
        /* the follow ratio: the share of the trip the service ran on the
         * host of the user's cell, in 10 ms steps of its trace */
        const fm_trace *t = &u->trace.t;
        const fm_cell *c = NULL;
        int64_t off = (int64_t)(u->start_s * 1000);
        size_t on = 0, steps = 0, k = 0;
        for (int64_t ms = t->p[0].t_ms; ms <= t->p[t->n - 1].t_ms; ms += 10, steps++) {
                c = cell_at(&r->s->cov, t, ms, c);
                while (k + 1 < nt && since[k + 1] <= (double)(ms + off))
                        k++;
                on += c && !strcmp(c->host, hosts[k]);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "user", json_object_new_string(u->name));
        json_object_object_add(o, "service", json_object_new_string(u->workload));
        json_object_object_add(o, "availability", json_object_new_double(x->pr.sent ? (double)x->pr.received / (double)x->pr.sent : 0));
        json_object_object_add(o, "follow_ratio", json_object_new_double(steps ? (double)on / (double)steps : 0));
        json_object_object_add(o, "longest_outage_ms", json_object_new_double(x->pr.max_gap_ms));
        json_object_object_add(o, "handovers", json_object_new_int((int)made));
        json_object_object_add(o, "deadline_misses", json_object_new_int((int)misses));
        json_object_object_add(o, "bytes_moved", json_object_new_int64(bytes));
        json_object_object_add(o, "probes_sent", json_object_new_int64((int64_t)x->pr.sent));
        json_object_object_add(o, "probes_answered", json_object_new_int64((int64_t)x->pr.received));
        /* the service's own state over the whole trip: one boot, a counter
         * that only went on */
        bool kept = x->pr.received > 0 && !x->pr.boot_changed && !x->pr.counter_regressed &&
                    x->pr.last_counter > x->pr.first_counter;
        json_object_object_add(o, "state_kept", json_object_new_boolean(kept));
        json_object *sk = NULL;
        if (x->stream)
                sk = json_object_new_boolean(fm_json_bool(x->stream, "connection_kept", false) &&
                                             fm_json_get_int(x->stream, "bad_bytes") == 0);
        json_object_object_add(o, "stream_kept", sk);
        /* a known path: whether it was kept to */
        json_object *tr = NULL;
        if (x->tid[0]) {
                snprintf(path, sizeof(path), "/fastmig/v1/trajectories/%s", x->tid);
                if (call(r, "GET", path, NULL, &tr, NULL) == 0) {
                        json_object *t2 = json_object_new_object();
                        json_object_object_add(t2, "id", json_object_new_string(x->tid));
                        json_object_object_add(t2, "state", json_object_get(fm_json_get(tr, "state")));
                        json_object_object_add(t2, "why", json_object_get(fm_json_get(tr, "why")));
                        json_object_put(tr);
                        tr = t2;
                }
        }
        json_object_object_add(o, "trajectory", tr);
        json_object_put(hs);
        return o;
}

static void print_text(json_object *rep)
{
        printf("scenario %s, %s path: %.1f s\n", fm_json_get_str(rep, "scenario"), fm_json_get_str(rep, "path"),
               json_object_get_double(fm_json_get(rep, "duration_s")));
        json_object *hs = fm_json_get(rep, "handovers");
        printf("%-8s %-5s %-5s %-8s %-22s %-8s %9s %9s %5s %9s %9s\n", "user", "from", "to", "path", "trigger", "strategy",
               "start s", "dead s", "met", "down ms", "total ms");
        for (size_t i = 0; i < json_object_array_length(hs); i++) {
                json_object *h = json_object_array_get_idx(hs, i);
                json_object *met = fm_json_get(h, "deadline_met");
                printf("%-8s %-5s %-5s %-8s %-22s %-8s %9.1f %9.1f %5s %9.0f %9.0f\n", fm_json_get_str(h, "user"),
                       fm_json_get_str(h, "from"), fm_json_get_str(h, "to"), fm_json_get_str(h, "path"),
                       fm_json_get_str(h, "trigger"), fm_json_get_str(h, "strategy") ? fm_json_get_str(h, "strategy") : "-",
                       json_object_get_double(fm_json_get(h, "planned_start")) / 1000,
                       json_object_get_double(fm_json_get(h, "deadline")) / 1000,
                       met ? (json_object_get_boolean(met) ? "yes" : "NO") : "-",
                       json_object_get_double(fm_json_get(h, "downtime_ms")),
                       json_object_get_double(fm_json_get(h, "total_ms")));
        }
        json_object *us = fm_json_get(rep, "users");
        printf("%-8s %-7s %12s %12s %13s %9s %7s %11s %6s\n", "user", "service", "availability", "follow ratio",
               "longest out ms", "handovers", "misses", "MB moved", "state");
        for (size_t i = 0; i < json_object_array_length(us); i++) {
                json_object *u = json_object_array_get_idx(us, i);
                printf("%-8s %-7s %11.4f%% %11.2f%% %13.0f %9d %7d %11.1f %6s\n", fm_json_get_str(u, "user"),
                       fm_json_get_str(u, "service"), 100 * json_object_get_double(fm_json_get(u, "availability")),
                       100 * json_object_get_double(fm_json_get(u, "follow_ratio")),
                       json_object_get_double(fm_json_get(u, "longest_outage_ms")),
                       json_object_get_int(fm_json_get(u, "handovers")),
                       json_object_get_int(fm_json_get(u, "deadline_misses")),
                       (double)fm_json_get_int(u, "bytes_moved") / 1e6,
                       fm_json_bool(u, "state_kept", false) ? "kept" : "LOST");
        }
}

static int use_testbed(const fm_scenario *s, bool *ours, fm_error *e)
{
        fm_testbed tb;
        char env[512];
        *ours = false;
        if (fm_testbed_load(&tb, NULL) == 0) {
                if (tb.hosts < s->hosts)
                        return fm_err(e, EINVAL, "the testbed that is up has %d hosts, scenario %s needs %d", tb.hosts,
                                      s->name, s->hosts);
                if (s->shared_storage && !tb.shared)
                        return fm_err(e, EINVAL, "scenario %s needs shared storage: the testbed that is up has none "
                                                 "(`fastmig testbed up --shared-storage --orchestrator')", s->name);
                if (fm_testbed_orch_env(env, sizeof(env), NULL) < 0)
                        return fm_err(e, EINVAL, "the testbed that is up has no orchestrator (`fastmig testbed orch start')");
        } else {
                char hosts[16], mbit[16];
                snprintf(hosts, sizeof(hosts), "%d", s->hosts);
                snprintf(mbit, sizeof(mbit), "%d", s->link_mbit);
                const char *args[] = {"testbed", "up", "--hosts", hosts, "--link-mbit", mbit, "--orchestrator",
                                      s->shared_storage ? "--shared-storage" : NULL, NULL};
                fprintf(stderr, "scenario: building a %d-host testbed with its orchestrator\n", s->hosts);
                if (self(e, args) < 0)
                        return -e->code;
                *ours = true;
                /* this process started before the testbed's certificates were made */
                if (fm_tls_setup(FM_TESTBED_PKI, "operator", e) < 0)
                        return -e->code;
        }
        return fm_testbed_orch_setenv(e);
}

static int do_run(const fm_scenario *s, bool known, bool json, bool keep)
{
        runner r = {.s = s, .known = known};
        fm_error e = {0};
        bool ours = false;
        user_run *xs = calloc(s->n, sizeof(*xs));
        if (!xs)
                return cli_fail("out of memory");
        int rc = use_testbed(s, &ours, &e);
        if (rc == 0 && (!fm_api_client_from_env(&r.api, &e) || e.code))
                rc = e.code ? fm_err_wrap(&e, "no orchestrator to talk to")
                            : fm_err(&e, EINVAL, "no orchestrator to talk to: FASTMIG_API_URL not set");
        if (rc == 0)
                rc = fm_fleet_load(FM_TESTBED_FLEET, &r.fleet, &e);
        if (rc == 0)
                rc = call(&r, "PUT", "/fastmig/v1/coverage", s->coverage_doc, NULL, &e);
        for (size_t i = 0; i < s->n; i++) {
                xs[i].u = &s->users[i];
                if (rc == 0)
                        fprintf(stderr, "scenario: %s's %s service\n", s->users[i].name, s->users[i].workload);
        }
        if (rc == 0)
                rc = services_start(&r, xs, s->n, &e);
        for (size_t i = 0; rc == 0 && i < s->n; i++)
                rc = setup_user(&r, &xs[i], &e);
        r.t0 = fm_wall_ms() + LEAD_MS;
        for (size_t i = 0; rc == 0 && known && i < s->n; i++)
                rc = register_path(&r, &xs[i], &e);
        for (size_t i = 0; rc == 0 && i < s->n; i++) {
                rc = fm_probe_start(&xs[i].probe, r.fleet.users_netns, xs[i].ip, FM_SEQECHO_PORT, 1000, &e);
                xs[i].probing = rc == 0;
        }
        if (rc == 0) {
                fprintf(stderr, "scenario: %s, %s path, %.1f s from now\n", s->name, known ? "known" : "unknown",
                        s->duration_s + LEAD_MS / 1000.0);
                int64_t last_note = 0;
                for (;;) {
                        int64_t now = fm_wall_ms();
                        if (now < r.t0) {
                                sleep_ms(TICK_MS);
                                continue;
                        }
                        bool all = true;
                        for (size_t i = 0; i < s->n; i++) {
                                step(&r, &xs[i], now);
                                all &= xs[i].done;
                        }
                        if (all)
                                break;
                        if (now - last_note >= 10000) {
                                last_note = now;
                                fprintf(stderr, "scenario: %.0f s of %.0f\n", (double)(now - r.t0) / 1000, s->duration_s);
                        }
                        sleep_ms(TICK_MS);
                }
                int64_t until = fm_wall_ms() + SETTLE_MS;
                while (handovers_open(&r, xs, s->n) && fm_wall_ms() < until)
                        sleep_ms(500);
        }
        for (size_t i = 0; i < s->n; i++)
                if (xs[i].probing) {
                        fm_probe_stop(&xs[i].probe, &xs[i].pr);
                        xs[i].probing = false;
                }
        int out = rc == 0 ? 0 : cli_fail("scenario %s: %s", s->name, e.msg);
        if (rc == 0) {
                json_object *rep = json_object_new_object(), *hs = json_object_new_array(), *us = json_object_new_array();
                json_object_object_add(rep, "scenario", json_object_new_string(s->name));
                json_object_object_add(rep, "path", json_object_new_string(known ? "known" : "unknown"));
                json_object_object_add(rep, "speedup", json_object_new_double(s->speedup));
                json_object_object_add(rep, "duration_s", json_object_new_double(s->duration_s));
                for (size_t i = 0; i < s->n; i++) {
                        if (!strcmp(s->users[i].workload, "video"))
                                xs[i].stream = fm_stream_report(s->users[i].name);
                        json_object_array_add(us, user_report(&r, &xs[i], hs));
                }
                json_object_object_add(rep, "handovers", hs);
                json_object_object_add(rep, "users", us);
                if (json)
                        cli_print_json(rep);
                else
                        print_text(rep);
                json_object_put(rep);
        }
        /* what the run made goes, unless kept */
        for (size_t i = 0; !keep && i < s->n; i++) {
                char path[160];
                if (xs[i].tid[0]) {
                        snprintf(path, sizeof(path), "/fastmig/v1/trajectories/%s", xs[i].tid);
                        call(&r, "DELETE", path, NULL, NULL, NULL);
                }
                if (xs[i].sid[0]) {
                        snprintf(path, sizeof(path), "/amsi/v1/app_mobility_services/%s", xs[i].sid);
                        call(&r, "DELETE", path, NULL, NULL, NULL);
                }
                json_object_put(xs[i].stream);
        }
        if (!keep)
                services_destroy(xs, s->n);
        if (ours && !keep) {
                fm_error de = {0};
                const char *args[] = {"testbed", "down", NULL};
                self(&de, args);
        }
        free(xs);
        return out;
}

int cmd_scenario(int argc, char **argv)
{
        if (argc < 3 || (strcmp(argv[1], "run") && strcmp(argv[1], "check")))
                return cli_usage(USAGE);
        const char *verb = argv[1], *path = NULL;
        bool json = false, keep = false, known = true;
        double speedup = 0;
        static const struct option lo[] = {{"path", required_argument, 0, 'p'},
                                           {"speedup", required_argument, 0, 's'},
                                           {"json", no_argument, 0, 'j'},
                                           {"keep", no_argument, 0, 'k'},
                                           {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
                if (ch == 'p' && !strcmp(optarg, "known"))
                        known = true;
                else if (ch == 'p' && !strcmp(optarg, "unknown"))
                        known = false;
                else if (ch == 'p')
                        return cli_fail("--path is known or unknown, not `%s'", optarg);
                else if (ch == 's' && (fm_parse_double(optarg, &speedup) < 0 || !(speedup >= 0.1 && speedup <= 100)))
                        return cli_fail("--speedup takes 0.1 to 100, not `%s'", optarg);
                else if (ch == 's')
                        continue;
                else if (ch == 'j')
                        json = true;
                else if (ch == 'k')
                        keep = true;
                else
                        return cli_usage(USAGE);
        }
        if (optind != argc - 2)
                return cli_usage(USAGE);
        path = argv[optind + 1];
        fm_scenario s;
        fm_error e = {0};
        if (fm_scenario_load(path, speedup, &s, &e) < 0)
                return cli_fail("%s", e.msg);
        int r = !strcmp(verb, "check") ? do_check(&s, json) : do_run(&s, known, json, keep);
        fm_scenario_free(&s);
        return r;
}
