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

static const char *jstr(json_object *o, const char *k)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int64_t jint(json_object *o, const char *k)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

json_object *fm_orch_migration_json(fm_orch *o, json_object *row)
{
        json_object *m = json_object_new_object(), *v = NULL;
        int64_t id = jint(row, "id");
        char ids[24], href[256];
        snprintf(ids, sizeof(ids), "%lld", (long long)id);
        json_object_object_add(m, "id", json_object_new_string(ids));
        static const char *const keys[] = {"service", "container", "status", "phase", "error", "client"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(keys); i++)
                json_object_object_add(m, keys[i], jstr(row, keys[i]) ? json_object_new_string(jstr(row, keys[i])) : NULL);
        json_object_object_add(m, "from", json_object_new_string(jstr(row, "src") ? jstr(row, "src") : ""));
        json_object_object_add(m, "to", json_object_new_string(jstr(row, "dst") ? jstr(row, "dst") : ""));
        json_object_object_add(m, "bytes", json_object_new_int64(jint(row, "bytes")));
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
        snprintf(phase, sizeof(phase), "round %lld", (long long)jint(ev, "round"));
        fm_store_run(r->o->store, NULL, "UPDATE migrations SET phase = ?, bytes = ? WHERE id = ?", "sii", phase,
                     r->bytes, r->id);
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
        const char *service = jstr(row, "service");
        int rc = -EIO;
        if (row && json_object_object_get_ex(row, "options", &opts)) {
                fm_migrate_opts mo = {.probe = true, .probe_interval_us = 1000};
                rc = fm_migrate_opts_from_json(opts, &mo, &e);
                mo.name = jstr(row, "container");
                mo.from = jstr(row, "src");
                mo.to = jstr(row, "dst");
                mo.progress = on_phase;
                mo.round_progress = on_round;
                mo.pdata = r;
                if (service)
                        fm_orch_notify_mobility(o, service, "INTERHOST_MOVEOUT_TRIGGERED", mo.to);
                fm_orch_log(o, "info", NULL, "migration %lld: %s from %s to %s starts", (long long)r->id, mo.name,
                            mo.from, mo.to);
                if (rc == 0)
                        rc = fm_plane_migrate(&o->fleet, &mo, &report, &e);
        }
        bool ok = rc == 0 && report && fm_json_bool(report, "ok", false);
        bool rolled_back = !ok && report && fm_json_bool(report, "rolled_back", false);
        const char *status = ok ? "succeeded" : rolled_back ? "rolled_back" : "failed";
        const char *err = ok ? NULL : e.msg[0] ? e.msg : jstr(report, "error");
        json_object *bd = NULL;
        json_object_object_get_ex(report, "bytes_disk", &bd);
        int64_t bytes = report ? (json_object_is_type(bd, json_type_object) ? jint(bd, "total") : jint(report, "bytes_disk")) +
                                         jint(report, "bytes_memory")
                               : r->bytes;
        fm_store_lock(o->store);
        fm_store_run(o->store, NULL, "BEGIN IMMEDIATE", "");
        fm_store_run(o->store, NULL,
                     "UPDATE migrations SET status = ?, report = ?, error = ?, bytes = ?, ended = ? WHERE id = ?",
                     "sssiii", status, report ? json_object_to_json_string_ext(report, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL,
                     err, bytes, fm_orch_now_ms(), r->id);
        if (ok && service)
                fm_store_run(o->store, NULL, "UPDATE services SET host = ? WHERE id = ?", "ss", jstr(row, "dst"), service);
        fm_store_run(o->store, NULL, "COMMIT", "");
        fm_store_unlock(o->store);
        fm_orch_log(o, ok ? "info" : "warning", NULL, "migration %lld: %s%s%s", (long long)r->id, status,
                    err ? ": " : "", err ? err : "");
        if (service)
                fm_orch_notify_mobility(o, service, ok ? "INTERHOST_MOVEOUT_COMPLETED" : "INTERHOST_MOVEOUT_FAILED",
                                        jstr(row, "dst"));
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
        int64_t n = c ? jint(json_object_array_get_idx(c, 0), "n") : 1 << 30;
        json_object_put(c);
        return n < o->per_host;
}

static void start_queued(fm_orch *o)
{
        json_object *q = fm_store_rows(o->store, NULL,
                                       "SELECT id, src, dst FROM migrations WHERE status = 'queued' ORDER BY id", "");
        for (size_t i = 0; q && i < json_object_array_length(q); i++) {
                json_object *m = json_object_array_get_idx(q, i);
                if (!host_free(o, jstr(m, "src")) || !host_free(o, jstr(m, "dst")))
                        continue;
                run *r = calloc(1, sizeof(*r));
                if (!r)
                        break;
                r->o = o;
                r->id = jint(m, "id");
                fm_store_run(o->store, NULL, "UPDATE migrations SET status = 'running', started = ? WHERE id = ?", "ii",
                             fm_orch_now_ms(), r->id);
                pthread_t t;
                pthread_attr_t a;
                pthread_attr_init(&a);
                pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
                pthread_mutex_lock(&o->lock);
                o->running++;
                pthread_mutex_unlock(&o->lock);
                if (pthread_create(&t, &a, migration_thread, r) != 0) {
                        fm_store_run(o->store, NULL,
                                     "UPDATE migrations SET status = 'failed', error = 'no thread to run it', ended = ? "
                                     "WHERE id = ?", "ii", fm_orch_now_ms(), r->id);
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
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&o->changed, &o->lock, &ts);
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

/* The hosts on which container name runs, and whether any agent still
 * owns a migration of it. */
typedef struct where {
        int running;
        const fm_host *host; /* the last one found running it */
        bool migrating;
        char unreachable[256];
} where;

static void find(fm_orch *o, const char *name, where *w)
{
        memset(w, 0, sizeof(*w));
        for (size_t i = 0; i < (size_t)o->fleet.hosts; i++) {
                const fm_host *h = &o->fleet.host[i];
                json_object *req = json_object_new_object(), *rep = NULL, *a = NULL;
                json_object_object_add(req, "op", json_object_new_string("list"));
                fm_error e = {0};
                int r = fm_plane_call(h, req, &rep, 5000, &e);
                json_object_put(req);
                if (r < 0) {
                        size_t n = strlen(w->unreachable);
                        snprintf(w->unreachable + n, sizeof(w->unreachable) - n, "%s%s", n ? ", " : "", h->name);
                        continue;
                }
                if (json_object_object_get_ex(rep, "containers", &a))
                        for (size_t k = 0; k < json_object_array_length(a); k++) {
                                json_object *c = json_object_array_get_idx(a, k);
                                const char *cn = jstr(c, "name"), *st = jstr(c, "state");
                                if (cn && st && !strcmp(cn, name) && !strcmp(st, "RUNNING")) {
                                        w->running++;
                                        w->host = h;
                                }
                        }
                if (json_object_object_get_ex(rep, "migrating", &a))
                        for (size_t k = 0; k < json_object_array_length(a); k++)
                                if (!strcmp(json_object_get_string(json_object_array_get_idx(a, k)), name))
                                        w->migrating = true;
                json_object_put(rep);
        }
}

#define RECONCILE_WAIT_MS 180000 /* an agent's recovery ends a migration well within this (docs/RECOVERY.md) */

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
        for (size_t i = 0; i < json_object_array_length(left); i++) {
                json_object *m = json_object_array_get_idx(left, i);
                const char *name = jstr(m, "container"), *src = jstr(m, "src"), *dst = jstr(m, "dst");
                int64_t id = jint(m, "id");
                where w;
                double t0 = fm_now_ms();
                for (;;) { /* the source agent (or its recovery) ends it */
                        find(o, name, &w);
                        /* over when no agent owns it any more and one host runs it (an
                         * unreachable target's copy is fenced: the source's rule), or
                         * every host answered and none runs it */
                        if ((!w.migrating && (w.running == 1 || (!w.running && !w.unreachable[0]))) ||
                            fm_now_ms() - t0 > RECONCILE_WAIT_MS)
                                break;
                        struct timespec ts = {0, 500 * 1000000L};
                        nanosleep(&ts, NULL);
                }
                const char *status, *why;
                char err[512] = "";
                if (w.running == 1 && !strcmp(w.host->name, dst)) {
                        status = "succeeded";
                        why = "the orchestrator restarted during it; the source agent committed it";
                } else if (w.running == 1 && !strcmp(w.host->name, src)) {
                        status = "rolled_back";
                        why = "the orchestrator restarted during it; the source agent rolled it back";
                } else {
                        status = "failed";
                        why = "the orchestrator restarted during it";
                        snprintf(err, sizeof(err), "%s; the container runs on %d host(s)%s%s", why, w.running,
                                 w.unreachable[0] ? ", unreachable: " : "", w.unreachable);
                }
                json_object *rep = json_object_new_object();
                json_object_object_add(rep, "ok", json_object_new_boolean(!strcmp(status, "succeeded")));
                json_object_object_add(rep, "rolled_back", json_object_new_boolean(!strcmp(status, "rolled_back")));
                json_object_object_add(rep, "reconciled", json_object_new_boolean(true));
                json_object_object_add(rep, "container", json_object_new_string(name));
                json_object_object_add(rep, "from", json_object_new_string(src));
                json_object_object_add(rep, "to", json_object_new_string(dst));
                json_object_object_add(rep, "error", strcmp(status, "succeeded") ? json_object_new_string(err[0] ? err : why) : NULL);
                fm_store_run(o->store, NULL, "UPDATE migrations SET status = ?, report = ?, error = ?, ended = ? WHERE id = ?",
                             "sssii", status, json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                             strcmp(status, "succeeded") ? (err[0] ? err : why) : NULL, fm_orch_now_ms(), id);
                json_object_put(rep);
                fm_orch_log(o, "warning", NULL, "reconcile: migration %lld of %s: %s (%s)", (long long)id, name, status,
                            err[0] ? err : why);
                const char *service = jstr(m, "service");
                if (service)
                        fm_orch_notify_mobility(o, service, !strcmp(status, "succeeded") ? "INTERHOST_MOVEOUT_COMPLETED"
                                                                                         : "INTERHOST_MOVEOUT_FAILED",
                                                dst);
        }
        json_object_put(left);
        /* every service's host, as the agents see it now */
        json_object *svc = fm_store_rows(o->store, e, "SELECT id, container FROM services", "");
        for (size_t i = 0; svc && i < json_object_array_length(svc); i++) {
                json_object *s = json_object_array_get_idx(svc, i);
                where w;
                find(o, jstr(s, "container"), &w);
                fm_store_run(o->store, NULL, "UPDATE services SET host = ? WHERE id = ?", "ss",
                             w.running == 1 ? w.host->name : NULL, jstr(s, "id"));
                if (w.running != 1)
                        fm_orch_log(o, "warning", NULL, "reconcile: service %s (%s) runs on %d hosts", jstr(s, "id"),
                                    jstr(s, "container"), w.running);
        }
        json_object_put(svc);
        pthread_mutex_lock(&o->lock);
        o->ready = true;
        pthread_mutex_unlock(&o->lock);
        return 0;
}
