/* Migrations the orchestrator runs: a scheduler thread starts each queued
 * migration on a thread of its own when both its hosts are under the
 * per-host limit; the thread drives it through the management plane
 * (fm_plane_migrate: the source agent owns the outcome, docs/RECOVERY.md)
 * and writes its phase and bytes as they come. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "orch/orch.h"
#include "plane/options.h"
#include "plane/plane.h"
#include "proto/proto.h"

typedef struct run {
        fm_orch *o;
        int64_t id;
        int64_t bytes;
} run;

json_object *fm_orch_migration_json(fm_orch *o, json_object *row)
{
        json_object *m = json_object_new_object(), *v = NULL;
        int64_t id = fm_json_get_int(row, "id");
        char ids[24], href[256];
        snprintf(ids, sizeof(ids), "%lld", (long long)id);
        json_object_object_add(m, "id", json_object_new_string(ids));
        static const char *const keys[] = {"service", "container", "status", "phase", "error", "client"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(keys); i++)
                json_object_object_add(m, keys[i], fm_json_get_str(row, keys[i]) ? json_object_new_string(fm_json_get_str(row, keys[i])) : NULL);
        json_object_object_add(m, "from", json_object_new_string(fm_json_get_str(row, "src") ? fm_json_get_str(row, "src") : ""));
        json_object_object_add(m, "to", json_object_new_string(fm_json_get_str(row, "dst") ? fm_json_get_str(row, "dst") : ""));
        json_object_object_add(m, "bytes", json_object_new_int64(fm_json_get_int(row, "bytes")));
        static const char *const times[] = {"requested", "started", "ended"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(times); i++) {
                json_object_object_get_ex(row, times[i], &v);
                json_object_object_add(m, times[i], v ? json_object_new_int64(json_object_get_int64(v)) : NULL);
                v = NULL;
        }
        json_object_object_get_ex(row, "options", &v);
        json_object_object_add(m, "options", v ? json_object_get(v) : json_object_new_object());
        v = NULL;
        json_object_object_get_ex(row, "report", &v);
        json_object_object_add(m, "report", v ? json_object_get(v) : NULL);
        snprintf(href, sizeof(href), "%s/fastmig/v1/migrations/%s", o->base_url, ids);
        json_object *links = json_object_new_object(), *self = json_object_new_object();
        json_object_object_add(self, "href", json_object_new_string(href));
        json_object_object_add(links, "self", self);
        json_object_object_add(m, "_links", links);
        return m;
}

/* Whether a service's registration forbids its application to move. */
static bool mobility_forbidden(json_object *svc)
{
        json_object *dev = fm_json_get(fm_json_get(svc, "body"), "deviceInformation");
        for (size_t i = 0; json_object_is_type(dev, json_type_array) && i < json_object_array_length(dev); i++) {
                const char *l = fm_json_get_str(json_object_array_get_idx(dev, i), "appMobilityServiceLevel");
                if (l && !strcmp(l, "APP_MOBILITY_NOT_ALLOWED"))
                        return true;
        }
        return false;
}

int64_t fm_orch_migration_queue(fm_orch *o, json_object *svc, const char *ct, const char *src, const char *dst,
                                json_object *opts, const char *client, int64_t *busy_id, fm_error *e)
{
        if (svc && mobility_forbidden(svc))
                return fm_err(e, EPERM, "service %s does not allow its application to move "
                                        "(appMobilityServiceLevel APP_MOBILITY_NOT_ALLOWED)", fm_json_get_str(svc, "id"));
        json_object *o2 = opts ? json_object_get(opts) : json_object_new_object();
        json_object *lat = fm_json_get(fm_json_get(fm_json_get(svc, "body"), "fastmig"), "storageLatencyMs");
        if (lat && !fm_json_get(o2, "storage_latency_ms")) /* the service's tolerance, unless the request gives one */
                json_object_object_add(o2, "storage_latency_ms", json_object_new_double(json_object_get_double(lat)));
        int64_t id = -EIO;
        fm_store_lock(o->store);
        json_object *busy = fm_store_rows(o->store, e, "SELECT id FROM migrations WHERE container = ? AND "
                                                        "status IN ('queued', 'running')", "s", ct);
        if (busy && json_object_array_length(busy)) {
                int64_t b = json_object_get_int64(fm_json_get(json_object_array_get_idx(busy, 0), "id"));
                if (busy_id)
                        *busy_id = b;
                id = fm_err(e, EBUSY, "%s is migrating already (migration %lld)", ct, (long long)b);
        } else if (busy && fm_store_run(o->store, e,
                                        "INSERT INTO migrations (service, container, src, dst, status, options, client, "
                                        "requested) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                                        "ssssssi", svc ? fm_json_get_str(svc, "id") : NULL, ct, src, dst,
                                        json_object_to_json_string_ext(o2, JSON_C_TO_STRING_PLAIN |
                                                                                   JSON_C_TO_STRING_NOSLASHESCAPE),
                                        client, fm_orch_now_ms()) >= 0) {
                id = fm_store_last_id(o->store);
        }
        fm_store_unlock(o->store);
        json_object_put(busy);
        json_object_put(o2);
        return id;
}

static void on_phase(const char *phase, double ms, void *data)
{
        run *r = data;
        fm_store_run(r->o->store, NULL, "UPDATE migrations SET phase = ? WHERE id = ?", "si", phase, r->id);
        fm_orch_log(r->o, "info", NULL, "migration %lld: %s done in %.1f ms", (long long)r->id, phase, ms);
}

static void on_round(json_object *ev, double stall_ms, void *data)
{
        (void)stall_ms;
        run *r = data;
        json_object *v = NULL;
        if (json_object_object_get_ex(ev, "pages_sent", &v))
                r->bytes += json_object_get_int64(v) * 4096;
        char phase[32];
        snprintf(phase, sizeof(phase), "round %lld", (long long)fm_json_get_int(ev, "round"));
        fm_store_run(r->o->store, NULL, "UPDATE migrations SET phase = ?, bytes = ? WHERE id = ?", "sii", phase,
                     r->bytes, r->id);
}

/* What ends a migration: its row, the service's new host (when it moved),
 * and the subscribers' notice, in one transaction. */
typedef struct outcome {
        int64_t id;
        const char *status, *report, *error, *service, *new_host, *notice, *target;
        int64_t bytes;   /* < 0: keep the row's */
} outcome;

static int outcome_write(fm_orch *o, const outcome *x, fm_error *e)
{
        int r = fm_store_run(o->store, e,
                             "UPDATE migrations SET status = ?, report = ?, error = ?, bytes = CASE WHEN ? < 0 THEN bytes "
                             "ELSE ? END, ended = ? WHERE id = ?",
                             "sssiiii", x->status, x->report, x->error, x->bytes, x->bytes, fm_orch_now_ms(), x->id);
        if (r >= 0 && x->new_host && x->service)
                r = fm_store_run(o->store, e, "UPDATE services SET host = ? WHERE id = ?", "ss", x->new_host, x->service);
        if (r >= 0 && x->service && x->notice)
                r = fm_orch_notify_mobility(o, x->service, x->notice, x->target, e);
        /* the handover it made (docs/MOBILITY.md) */
        if (r >= 0)
                r = fm_store_run(o->store, e,
                                 "UPDATE handovers SET status = CASE WHEN ? = 'succeeded' THEN 'done' ELSE 'failed' END, "
                                 "ended = ? WHERE migration = ? AND status = 'started'",
                                 "sii", x->status, fm_orch_now_ms(), x->id);
        return r;
}

/* Records x, asking again while the database refuses (the row must not
 * stay running: its container would be refused, its hosts' slots held),
 * until it commits or the orchestrator stops (then the next start's
 * reconciliation decides it). */
static int outcome_record(fm_orch *o, const outcome *x)
{
        for (int attempt = 0;; attempt++) {
                fm_error e = {0};
                int r = fm_store_begin(o->store, &e);
                if (r == 0) {
                        r = outcome_write(o, x, &e);
                        int c = fm_store_end(o->store, r >= 0, &e);
                        if (r >= 0 && c == 0)
                                return 0;
                }
                pthread_mutex_lock(&o->lock);
                bool stopping = o->stopping;
                pthread_mutex_unlock(&o->lock);
                fm_orch_log(o, "error", NULL, "migration %lld: its outcome (%s) not recorded%s: %s", (long long)x->id,
                            x->status, stopping ? "; left to the next start" : ", asking again", e.msg);
                if (stopping)
                        return -EIO;
                sleep(attempt < 10 ? 1 : 10);
        }
}

/* ---- what the agents say (the outcome of a migration whose report was
 * lost, and reconciliation) ---- */

/* What every agent answered to `list' in one round (NULL: it did not). */
typedef struct fleet_view {
        json_object *reply[FM_FLEET_MAX_HOSTS];
} fleet_view;

/* Where a container stands in a view: the hosts that run it, whether an
 * agent still owns a migration of it, whether its source answered. */
typedef struct where {
        int running;
        const fm_host *host; /* the last one found running it */
        bool migrating, src_answered;
        char unreachable[256];
} where;

static void look(fm_orch *o, fleet_view *v);
static void view_free(fm_orch *o, fleet_view *v);
static void find(fm_orch *o, const fleet_view *v, const char *name, const char *src, where *w);
static bool settled(const where *w);

#define RECONCILE_WAIT_MS 180000 /* an agent's recovery ends a migration well within this (docs/RECOVERY.md) */

/* Waits (up to RECONCILE_WAIT_MS) until the agents have ended the
 * migration of name from src; w says where it stands then. */
static void await_agents(fm_orch *o, const char *name, const char *src, where *w)
{
        for (double t0 = fm_now_ms();;) {
                fleet_view v;
                look(o, &v);
                find(o, &v, name, src, w);
                view_free(o, &v);
                if (settled(w) || fm_now_ms() - t0 > RECONCILE_WAIT_MS)
                        return;
                struct timespec ts = {0, 500 * 1000000L};
                nanosleep(&ts, NULL);
        }
}

static void *migration_thread(void *arg)
{
        run *r = arg;
        fm_orch *o = r->o;
        fm_error e = {0};
        json_object *rows = fm_store_rows(o->store, &e, "SELECT * , options AS j_options FROM migrations WHERE id = ?",
                                          "i", r->id);
        json_object *row = rows ? json_object_array_get_idx(rows, 0) : NULL, *opts = NULL;
        json_object *report = NULL;
        const char *service = fm_json_get_str(row, "service");
        int rc = -EIO;
        if (row && json_object_object_get_ex(row, "options", &opts)) {
                fm_migrate_opts mo = {.probe = true, .probe_interval_us = 1000};
                rc = fm_migrate_opts_from_json(opts, &mo, &e);
                mo.name = fm_json_get_str(row, "container");
                mo.from = fm_json_get_str(row, "src");
                mo.to = fm_json_get_str(row, "dst");
                mo.progress = on_phase;
                mo.round_progress = on_round;
                mo.pdata = r;
                fm_orch_log(o, "info", NULL, "migration %lld: %s from %s to %s starts", (long long)r->id, mo.name,
                            mo.from, mo.to);
                if (rc == 0)
                        rc = fm_plane_migrate(&o->fleet, &mo, &report, &e);
        }
        const char *src = fm_json_get_str(row, "src"), *dst = fm_json_get_str(row, "dst");
        bool ok = rc == 0 && report && fm_json_bool(report, "ok", false);
        bool rolled_back = !ok && report && fm_json_bool(report, "rolled_back", false);
        const char *status = ok ? "succeeded" : rolled_back ? "rolled_back" : "failed";
        char why[1400] = "";
        snprintf(why, sizeof(why), "%s", e.msg[0] ? e.msg : fm_json_get_str(report, "error") ? fm_json_get_str(report, "error") : "");
        if (!report && row) {
                /* no report: the connection to the source failed (or the request
                 * never left); the source agent owns the outcome, ask it */
                where w;
                await_agents(o, fm_json_get_str(row, "container"), src, &w);
                if (settled(&w) && w.running == 1 && !strcmp(w.host->name, dst)) {
                        ok = true;
                        status = "succeeded";
                        report = json_object_new_object();
                        json_object_object_add(report, "ok", json_object_new_boolean(true));
                        json_object_object_add(report, "from_agents", json_object_new_boolean(true));
                        json_object_object_add(report, "lost", json_object_new_string(why));
                } else if (!(settled(&w) && w.running == 1 && !strcmp(w.host->name, src))) {
                        size_t n = strlen(why);
                        snprintf(why + n, sizeof(why) - n, "; outcome unknown: the container runs on %d host(s)%s%s",
                                 w.running, w.unreachable[0] ? ", unreachable: " : "", w.unreachable);
                }
        }
        const char *err = ok ? NULL : why;
        json_object *bd = NULL;
        json_object_object_get_ex(report, "bytes_disk", &bd);
        int64_t bytes = report ? (json_object_is_type(bd, json_type_object) ? fm_json_get_int(bd, "total") : fm_json_get_int(report, "bytes_disk")) +
                                         fm_json_get_int(report, "bytes_memory")
                               : r->bytes;
        outcome x = {.id = r->id, .status = status, .error = err, .service = service, .new_host = ok ? dst : NULL,
                     .notice = ok ? "INTERHOST_MOVEOUT_COMPLETED" : "INTERHOST_MOVEOUT_FAILED", .target = dst,
                     .bytes = bytes,
                     .report = report ? json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL};
        outcome_record(o, &x);
        fm_orch_log(o, ok ? "info" : "warning", NULL, "migration %lld: %s%s%s", (long long)r->id, status,
                    err ? ": " : "", err ? err : "");
        json_object_put(report);
        json_object_put(rows);
        free(r);
        pthread_mutex_lock(&o->lock);
        o->running--;
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
        return NULL;
}

/* Whether host h takes one more migration. */
static bool host_free(fm_orch *o, const char *h)
{
        json_object *c = fm_store_rows(o->store, NULL,
                                       "SELECT count(*) AS n FROM migrations WHERE status = 'running' AND (src = ? OR dst = ?)",
                                       "ss", h, h);
        int64_t n = c ? fm_json_get_int(json_object_array_get_idx(c, 0), "n") : 1 << 30;
        json_object_put(c);
        return n < o->per_host;
}

static void start_queued(fm_orch *o)
{
        json_object *q = fm_store_rows(o->store, NULL,
                                       "SELECT id, service, src, dst FROM migrations WHERE status = 'queued' ORDER BY id", "");
        for (size_t i = 0; q && i < json_object_array_length(q); i++) {
                json_object *m = json_object_array_get_idx(q, i);
                if (!host_free(o, fm_json_get_str(m, "src")) || !host_free(o, fm_json_get_str(m, "dst")))
                        continue;
                run *r = calloc(1, sizeof(*r));
                if (!r)
                        break;
                r->o = o;
                r->id = fm_json_get_int(m, "id");
                /* running and the subscribers' TRIGGERED notice are one step;
                 * only a row still queued starts */
                fm_error e = {0};
                int n = fm_store_begin(o->store, &e);
                if (n == 0) {
                        n = fm_store_run(o->store, &e,
                                         "UPDATE migrations SET status = 'running', started = ? WHERE id = ? AND status = 'queued'",
                                         "ii", fm_orch_now_ms(), r->id);
                        if (n == 1 && fm_json_get_str(m, "service") &&
                            fm_orch_notify_mobility(o, fm_json_get_str(m, "service"), "INTERHOST_MOVEOUT_TRIGGERED",
                                                    fm_json_get_str(m, "dst"), &e) < 0)
                                n = -EIO;
                        if (fm_store_end(o->store, n == 1, &e) < 0)
                                n = -EIO;
                }
                if (n != 1) {
                        if (n < 0)
                                fm_orch_log(o, "error", NULL, "migration %lld not started: %s", (long long)r->id, e.msg);
                        free(r);
                        continue;
                }
                pthread_t t;
                pthread_attr_t a;
                pthread_attr_init(&a);
                pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
                pthread_mutex_lock(&o->lock);
                o->running++;
                pthread_mutex_unlock(&o->lock);
                if (pthread_create(&t, &a, migration_thread, r) != 0) {
                        outcome x = {.id = r->id, .status = "failed", .error = "no thread to run it (nothing was done)",
                                     .service = fm_json_get_str(m, "service"), .notice = "INTERHOST_MOVEOUT_FAILED",
                                     .target = fm_json_get_str(m, "dst"), .bytes = -1};
                        outcome_record(o, &x);
                        pthread_mutex_lock(&o->lock);
                        o->running--;
                        pthread_mutex_unlock(&o->lock);
                        free(r);
                }
                pthread_attr_destroy(&a);
        }
        json_object_put(q);
}

static void *scheduler(void *arg)
{
        fm_orch *o = arg;
        pthread_mutex_lock(&o->lock);
        while (!o->stopping) {
                pthread_mutex_unlock(&o->lock);
                start_queued(o);
                pthread_mutex_lock(&o->lock);
                if (o->stopping)
                        break;
                fm_orch_wait(o, 1000);
        }
        pthread_mutex_unlock(&o->lock);
        return NULL;
}

int fm_orch_runner_start(fm_orch *o, fm_error *e)
{
        int r = pthread_create(&o->scheduler, NULL, scheduler, o);
        return r ? fm_err(e, r, "starting the scheduler: %s", strerror(r)) : 0;
}

void fm_orch_runner_kick(fm_orch *o)
{
        pthread_mutex_lock(&o->lock);
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
}

void fm_orch_runner_stop(fm_orch *o)
{
        pthread_mutex_lock(&o->lock);
        o->stopping = true;
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->scheduler, NULL);
        pthread_mutex_lock(&o->lock);
        while (o->running > 0)
                pthread_cond_wait(&o->changed, &o->lock);
        pthread_mutex_unlock(&o->lock);
}

/* ---- reconciliation ---- */

static void look(fm_orch *o, fleet_view *v)
{
        for (int i = 0; i < o->fleet.hosts; i++) {
                json_object *req = json_object_new_object();
                json_object_object_add(req, "op", json_object_new_string("list"));
                v->reply[i] = NULL;
                if (fm_plane_call(&o->fleet.host[i], req, &v->reply[i], 5000, NULL) < 0)
                        v->reply[i] = NULL;
                json_object_put(req);
        }
}

static void view_free(fm_orch *o, fleet_view *v)
{
        for (int i = 0; i < o->fleet.hosts; i++)
                json_object_put(v->reply[i]);
}

static bool array_has(json_object *a, const char *s)
{
        for (size_t k = 0; json_object_is_type(a, json_type_array) && k < json_object_array_length(a); k++) {
                json_object *x = json_object_array_get_idx(a, k);
                if (json_object_is_type(x, json_type_string) && !strcmp(json_object_get_string(x), s))
                        return true;
        }
        return false;
}

static void find(fm_orch *o, const fleet_view *v, const char *name, const char *src, where *w)
{
        memset(w, 0, sizeof(*w));
        for (int i = 0; i < o->fleet.hosts; i++) {
                const fm_host *h = &o->fleet.host[i];
                json_object *a = NULL;
                if (!v->reply[i]) {
                        size_t n = strlen(w->unreachable);
                        snprintf(w->unreachable + n, sizeof(w->unreachable) - n, "%s%s", n ? ", " : "", h->name);
                        continue;
                }
                if (src && !strcmp(src, h->name))
                        w->src_answered = true;
                json_object_object_get_ex(v->reply[i], "containers", &a);
                for (size_t k = 0; json_object_is_type(a, json_type_array) && k < json_object_array_length(a); k++) {
                        json_object *c = json_object_array_get_idx(a, k);
                        const char *cn = fm_json_get_str(c, "name"), *st = fm_json_get_str(c, "state");
                        if (cn && st && !strcmp(cn, name) && !strcmp(st, "RUNNING")) {
                                w->running++;
                                w->host = h;
                        }
                }
                a = NULL;
                json_object_object_get_ex(v->reply[i], "migrating", &a);
                if (array_has(a, name))
                        w->migrating = true;
        }
}

/* Over: the source agent answered and owns the migration no more, and one
 * host runs the container (an unreachable target's copy is fenced: the
 * source's rule, docs/RECOVERY.md), or every host answered and none runs it. */
static bool settled(const where *w)
{
        return w->src_answered && !w->migrating && (w->running == 1 || (!w->running && !w->unreachable[0]));
}

static void reconcile_one(fm_orch *o, json_object *m, const where *w)
{
        const char *name = fm_json_get_str(m, "container"), *src = fm_json_get_str(m, "src"), *dst = fm_json_get_str(m, "dst");
        int64_t id = fm_json_get_int(m, "id");
        const char *status, *why;
        char err[512] = "";
        if (settled(w) && w->running == 1 && !strcmp(w->host->name, dst)) {
                status = "succeeded";
                why = "the orchestrator restarted during it; the source agent committed it";
        } else if (settled(w) && w->running == 1 && !strcmp(w->host->name, src)) {
                status = "rolled_back";
                why = "the orchestrator restarted during it; the container runs on its source";
        } else {
                status = "failed";
                why = "the orchestrator restarted during it";
                snprintf(err, sizeof(err), "%s; outcome unknown: %s%s, the container runs on %d host(s)%s%s", why,
                         w->src_answered ? "" : "its source did not answer", w->src_answered ? (w->migrating ? "its source still owns it" : "its source owns it no more") : "",
                         w->running, w->unreachable[0] ? ", unreachable: " : "", w->unreachable);
        }
        bool ok = !strcmp(status, "succeeded");
        const char *error = ok ? NULL : err[0] ? err : why;
        json_object *rep = json_object_new_object();
        json_object_object_add(rep, "ok", json_object_new_boolean(ok));
        json_object_object_add(rep, "rolled_back", json_object_new_boolean(!strcmp(status, "rolled_back")));
        json_object_object_add(rep, "reconciled", json_object_new_boolean(true));
        json_object_object_add(rep, "container", json_object_new_string(name));
        json_object_object_add(rep, "from", json_object_new_string(src));
        json_object_object_add(rep, "to", json_object_new_string(dst));
        json_object_object_add(rep, "error", error ? json_object_new_string(error) : NULL);
        outcome x = {.id = id, .status = status, .error = error, .service = fm_json_get_str(m, "service"),
                     .new_host = ok ? dst : NULL, .notice = ok ? "INTERHOST_MOVEOUT_COMPLETED" : "INTERHOST_MOVEOUT_FAILED",
                     .target = dst, .bytes = -1,
                     .report = json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)};
        int recorded = outcome_record(o, &x);
        json_object_put(rep);
        fm_orch_log(o, recorded < 0 ? "error" : "warning", NULL, "reconcile: migration %lld of %s: %s (%s)%s", (long long)id,
                    name, status, error ? error : why, recorded < 0 ? "; not recorded" : "");
}

int fm_orch_reconcile(fm_orch *o, fm_error *e)
{
        int n = fm_store_run(o->store, e,
                             "UPDATE migrations SET status = 'failed', ended = ?, error = 'not started: the orchestrator "
                             "stopped before it began (nothing was done)' WHERE status = 'queued'",
                             "i", fm_orch_now_ms());
        if (n < 0)
                return n;
        if (n > 0)
                fm_orch_log(o, "warning", NULL, "reconcile: %d queued migration(s) never started, marked failed", n);
        json_object *left = fm_store_rows(o->store, e, "SELECT id, service, container, src, dst FROM migrations "
                                                       "WHERE status = 'running' ORDER BY id", "");
        if (!left)
                return -EIO;
        size_t nleft = json_object_array_length(left);
        if (nleft)
                fm_orch_log(o, "info", NULL, "reconcile: %zu migration(s) were running; waiting for their agents", nleft);
        /* each round asks every agent once; a migration is decided once its
         * source has ended it, all of them by one deadline */
        bool *done = calloc(nleft ? nleft : 1, sizeof(*done));
        if (!done) {
                json_object_put(left);
                return fm_err(e, ENOMEM, "out of memory");
        }
        double t0 = fm_now_ms();
        size_t todo = nleft;
        while (todo > 0) {
                bool last = fm_now_ms() - t0 > RECONCILE_WAIT_MS;
                fleet_view v;
                look(o, &v);
                for (size_t i = 0; i < nleft; i++) {
                        if (done[i])
                                continue;
                        json_object *m = json_object_array_get_idx(left, i);
                        where w;
                        find(o, &v, fm_json_get_str(m, "container"), fm_json_get_str(m, "src"), &w);
                        if (settled(&w) || last) {
                                reconcile_one(o, m, &w);
                                done[i] = true;
                                todo--;
                        }
                }
                view_free(o, &v);
                if (todo > 0) {
                        struct timespec ts = {0, 500 * 1000000L};
                        nanosleep(&ts, NULL);
                }
        }
        free(done);
        json_object_put(left);
        /* every service's host, as the agents see it now */
        json_object *svc = fm_store_rows(o->store, e, "SELECT id, container FROM services", "");
        fleet_view v;
        look(o, &v);
        for (size_t i = 0; svc && i < json_object_array_length(svc); i++) {
                json_object *s = json_object_array_get_idx(svc, i);
                where w;
                find(o, &v, fm_json_get_str(s, "container"), NULL, &w);
                if (w.running == 1 || !w.unreachable[0])
                        fm_store_run(o->store, NULL, "UPDATE services SET host = ? WHERE id = ?", "ss",
                                     w.running == 1 ? w.host->name : NULL, fm_json_get_str(s, "id"));
                if (w.running != 1)
                        fm_orch_log(o, "warning", NULL, "reconcile: service %s (%s) runs on %d host(s)%s%s", fm_json_get_str(s, "id"),
                                    fm_json_get_str(s, "container"), w.running, w.unreachable[0] ? ", unreachable: " : "", w.unreachable);
        }
        view_free(o, &v);
        json_object_put(svc);
        return 0;
}
