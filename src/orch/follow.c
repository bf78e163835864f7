/* Following users (docs/MOBILITY.md): the coverage map, the users'
 * trajectories (a known path, planned with src/mobility/planner.h), their
 * positions and cell changes (an unknown path, or a known one left), and
 * the follower thread that places app images ahead and starts each
 * handover's migration at its time. Every handover is a row of the
 * handovers table; only the follower starts their migrations, through the
 * scheduler (orch/runner.c), which marks them done or failed with the
 * migration's outcome. */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <string.h>

#include "mobility/planner.h"
#include "mobility/trace.h"
#include "orch/orch.h"
#include "orch/schema.h"
#include "plane/images.h"
#include "plane/plane.h"
#include "proto/proto.h"

#define HORIZON 2              /* upcoming handovers of a trajectory whose images are placed ahead */
#define PLACING_MAX 2          /* image placements at once */
#define PLACE_SLACK_MS 1000    /* beside the transfer, what a placement costs */
#define TICK_MS 200            /* the follower looks at least this often */
#define TAKE_BACK_MS 120000    /* a cancelled announcement takes back a handover this recent at most */
#define PLACE_WAIT_MS 2000     /* a handover waits this long past its start for its image being placed */

struct fm_orch_map {
        fm_coverage cov;
        int refs;
};

const fm_coverage *fm_orch_map_coverage(const fm_orch_map *m) { return &m->cov; }

fm_orch_map *fm_orch_map_get(fm_orch *o)
{
        pthread_mutex_lock(&o->map_lock);
        fm_orch_map *m = o->map;
        if (m)
                m->refs++;
        pthread_mutex_unlock(&o->map_lock);
        return m;
}

void fm_orch_map_put(fm_orch *o, fm_orch_map *m)
{
        if (!m)
                return;
        pthread_mutex_lock(&o->map_lock);
        bool last = --m->refs == 0;
        pthread_mutex_unlock(&o->map_lock);
        if (last) {
                fm_coverage_free(&m->cov);
                free(m);
        }
}

static const char *plain(json_object *o)
{
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* The first row of rows, referenced; NULL when none. rows is put. */
static json_object *first(json_object *rows)
{
        json_object *r = rows && json_object_array_length(rows) ? json_object_get(json_object_array_get_idx(rows, 0)) : NULL;
        json_object_put(rows);
        return r;
}

static int64_t count(fm_orch *o, fm_error *e, const char *sql, const char *types, const char *a, const char *b)
{
        json_object *r = first(fm_store_rows(o->store, e, sql, types, a, b));
        int64_t n = r ? fm_json_get_int(r, "n") : -1;
        json_object_put(r);
        return n;
}

int fm_orch_coverage_set(fm_orch *o, json_object *doc, fm_error *e)
{
        fm_orch_map *m = calloc(1, sizeof(*m));
        if (!m)
                return fm_err(e, ENOMEM, "out of memory");
        int r = fm_coverage_parse(doc, &o->fleet, &m->cov, e);
        if (r < 0) {
                free(m);
                return r;
        }
        m->refs = 1;
        json_object *canon = fm_coverage_json(&m->cov);
        r = fm_store_begin(o->store, e);
        if (r == 0) {
                json_object *now = first(fm_store_rows(o->store, e, "SELECT body FROM coverage WHERE id = 1", ""));
                bool same = now && !strcmp(fm_json_get_str(now, "body"), plain(canon));
                json_object_put(now);
                int64_t n = count(o, e, "SELECT count(*) AS n FROM trajectories WHERE state IN ('following', 'off_path')",
                                  "", NULL, NULL);
                if (n < 0)
                        r = -EIO;
                else if (n > 0 && !same)
                        r = fm_err(e, EBUSY, "%lld trajectories follow the present map: cancel them first", (long long)n);
                else
                        r = fm_store_run(o->store, e, "INSERT OR REPLACE INTO coverage (id, body, updated) VALUES (1, ?, ?)",
                                         "si", plain(canon), fm_orch_now_ms());
                if (fm_store_end(o->store, r >= 0, e) < 0 && r >= 0)
                        r = -EIO;
        }
        json_object_put(canon);
        if (r < 0) {
                fm_orch_map_put(o, m);
                return r;
        }
        pthread_mutex_lock(&o->map_lock);
        fm_orch_map *old = o->map;
        o->map = m;
        pthread_mutex_unlock(&o->map_lock);
        fm_orch_map_put(o, old);
        fm_orch_log(o, "info", NULL, "coverage map: %zu cells", m->cov.n);
        return 0;
}

int fm_orch_follow_open(fm_orch *o, const char *file, fm_error *e)
{
        if (file) { /* checked as the API checks a map, stored in its own form */
                fm_coverage cov;
                int r = fm_coverage_load(file, &o->fleet, &cov, e);
                if (r < 0)
                        return r;
                json_object *doc = fm_coverage_json(&cov);
                fm_coverage_free(&cov);
                r = fm_orch_coverage_set(o, doc, e);
                json_object_put(doc);
                return r < 0 ? fm_err_wrap(e, "coverage map %s", file) : 0;
        }
        json_object *row = first(fm_store_rows(o->store, e, "SELECT body AS j_body FROM coverage WHERE id = 1", ""));
        if (!row)
                return e->code ? -e->code : 0;
        fm_orch_map *m = calloc(1, sizeof(*m));
        int r = m ? fm_coverage_parse(fm_json_get(row, "body"), &o->fleet, &m->cov, e) : fm_err(e, ENOMEM, "out of memory");
        json_object_put(row);
        if (r < 0) {
                free(m);
                return fm_err_wrap(e, "the stored coverage map");
        }
        m->refs = 1;
        o->map = m;
        return 0;
}

void fm_orch_follow_close(fm_orch *o)
{
        fm_orch_map_put(o, o->map);
        o->map = NULL;
}

/* ---- services and users ---- */

#define SERVICE_COLS "id, host, container, body AS j_body"

json_object *fm_orch_service_row(fm_orch *o, const char *id, fm_error *e)
{
        return first(fm_store_rows(o->store, e,
                                   "SELECT " SERVICE_COLS " FROM services WHERE id = ? AND (expires = 0 OR expires > ?)",
                                   "si", id, fm_orch_now_ms()));
}

json_object *fm_orch_services_of(fm_orch *o, const char *type, const char *value, fm_error *e)
{
        return fm_store_rows(o->store, e,
                             "SELECT DISTINCT s.id, s.host, s.container, s.body AS j_body FROM services s, "
                             "json_each(s.body, '$.deviceInformation') d "
                             "WHERE json_extract(d.value, '$.associateId.type') = ? AND "
                             "json_extract(d.value, '$.associateId.value') = ? AND (s.expires = 0 OR s.expires > ?) "
                             "ORDER BY s.id",
                             "ssi", type, value, fm_orch_now_ms());
}

json_object *fm_orch_service_ids(fm_orch *o, const char *type, const char *value, fm_error *e)
{
        json_object *rows = fm_orch_services_of(o, type, value, e);
        if (!rows)
                return NULL;
        json_object *ids = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                json_object_array_add(ids, json_object_new_string(fm_json_get_str(json_object_array_get_idx(rows, i), "id")));
        json_object_put(rows);
        return ids;
}

/* The service's device: the one named (must be one of its), else its only one. */
static int service_device(json_object *svc, json_object *want, const char **type, const char **value, fm_error *e)
{
        json_object *dev = fm_json_get(fm_json_get(svc, "body"), "deviceInformation");
        size_t n = json_object_is_type(dev, json_type_array) ? json_object_array_length(dev) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *id = fm_json_get(json_object_array_get_idx(dev, i), "associateId");
                const char *t = fm_json_get_str(id, "type"), *v = fm_json_get_str(id, "value");
                if (!want ? n == 1 : !strcmp(t, fm_json_get_str(want, "type")) && !strcmp(v, fm_json_get_str(want, "value"))) {
                        *type = t;
                        *value = v;
                        return 0;
                }
        }
        if (want)
                return fm_err(e, ENOENT, "service %s has no device %s %.64s", fm_json_get_str(svc, "id"),
                              fm_json_get_str(want, "type"), fm_json_get_str(want, "value"));
        return fm_err(e, ENOENT, "service %s has %zu devices: name the user (`associateId')", fm_json_get_str(svc, "id"), n);
}

/* Where the service is going: the destination of its latest handover under
 * way or due, else of its migration under way, else where it runs (""
 * when not known). */
static void heading(fm_orch *o, json_object *svc, char out[FM_NAME_MAX + 1])
{
        const char *sid = fm_json_get_str(svc, "id");
        json_object *r = first(fm_store_rows(o->store, NULL,
                                             "SELECT dst FROM handovers WHERE service = ? AND (status = 'started' OR "
                                             "(status = 'planned' AND planned_start <= ?)) ORDER BY id DESC LIMIT 1",
                                             "si", sid, fm_orch_now_ms()));
        if (!r)
                r = first(fm_store_rows(o->store, NULL,
                                        "SELECT dst FROM migrations WHERE container = ? AND status IN ('queued', 'running') "
                                        "ORDER BY id DESC LIMIT 1",
                                        "s", fm_json_get_str(svc, "container")));
        const char *h = r ? fm_json_get_str(r, "dst") : fm_json_get_str(svc, "host");
        snprintf(out, FM_NAME_MAX + 1, "%s", h ? h : "");
        json_object_put(r);
}

/* ---- handovers ---- */

typedef struct handover {
        const char *service, *type, *value, *trajectory, *path, *trigger, *from_cell, *to_cell, *src, *dst, *why;
        int64_t planned_start, deadline;
} handover;

static int64_t handover_insert(fm_orch *o, const handover *h, fm_error *e)
{
        int r = fm_store_run(o->store, e,
                             "INSERT INTO handovers (service, type, value, trajectory, path, trigger, from_cell, to_cell, "
                             "src, dst, planned_start, deadline, status, why, created) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?)",
                             "ssssssssssiisi", h->service, h->type, h->value, h->trajectory, h->path, h->trigger,
                             h->from_cell, h->to_cell, h->src ? h->src : "", h->dst, h->planned_start, h->deadline, h->why,
                             fm_orch_now_ms());
        return r < 0 ? r : fm_store_last_id(o->store);
}

/* Drops the service's planned handovers (those of trajectory traj only,
 * when given), saying why. */
static int drop_planned(fm_orch *o, const char *sid, const char *traj, const char *why, fm_error *e)
{
        return traj ? fm_store_run(o->store, e,
                                   "UPDATE handovers SET status = 'dropped', why = ?, ended = ? WHERE service = ? AND "
                                   "trajectory = ? AND status = 'planned'",
                                   "siss", why, fm_orch_now_ms(), sid, traj)
                    : fm_store_run(o->store, e,
                                   "UPDATE handovers SET status = 'dropped', why = ?, ended = ? WHERE service = ? AND "
                                   "status = 'planned'",
                                   "sis", why, fm_orch_now_ms(), sid);
}

/* ---- trajectories ---- */

/* A trajectory's columns for the API: its points counted, not parsed */
#define TRAJ_COLS                                                                                                   \
        "id, service, type, value, start, format, estimate_ms, estimate, state, why, client, created, "            \
        "json_array_length(points, '$.points') AS n_points, json_extract(points, '$.points[#-1].t') AS duration_s"

/* Resolved traces of the latest trajectories looked at (a position is
 * checked against its user's path without parsing it again). */
#define TRACE_CACHE 16
static struct {
        pthread_mutex_t lock;
        char id[TRACE_CACHE][17];
        fm_trace t[TRACE_CACHE];
        unsigned next;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int copy_trace(const fm_trace *from, fm_trace *to, fm_error *e)
{
        to->n = from->n;
        to->p = malloc(from->n * sizeof(*to->p));
        if (!to->p)
                return fm_err(e, ENOMEM, "out of memory");
        memcpy(to->p, from->p, from->n * sizeof(*to->p));
        return 0;
}

/* Trajectory id's trace, resolved against the map: a copy in *t. */
static int stored_trace(fm_orch *o, const char *id, const fm_coverage *cov, fm_trace *t, fm_error *e)
{
        pthread_mutex_lock(&cache.lock);
        for (unsigned i = 0; i < TRACE_CACHE; i++)
                if (!strcmp(cache.id[i], id)) {
                        int r = copy_trace(&cache.t[i], t, e);
                        pthread_mutex_unlock(&cache.lock);
                        return r;
                }
        pthread_mutex_unlock(&cache.lock);
        json_object *row = first(fm_store_rows(o->store, e, "SELECT points FROM trajectories WHERE id = ?", "s", id));
        const char *pts = fm_json_get_str(row, "points");
        int r = pts ? fm_trace_parse(pts, strlen(pts), FM_TRACE_JSON, NULL, t, e) : fm_err(e, EIO, "no points stored");
        json_object_put(row);
        if (r == 0 && (r = fm_trace_resolve(t, cov, e)) < 0)
                fm_trace_free(t);
        if (r < 0)
                return r;
        fm_trace keep;
        pthread_mutex_lock(&cache.lock);
        unsigned k = cache.next++ % TRACE_CACHE;
        if (copy_trace(t, &keep, NULL) == 0) {
                fm_trace_free(&cache.t[k]);
                cache.t[k] = keep;
                snprintf(cache.id[k], sizeof(cache.id[k]), "%s", id);
        }
        pthread_mutex_unlock(&cache.lock);
        return 0;
}

/* Inserts the planned handovers of a trace whose deadline is after trace
 * time after_ms (the trip starts at start, epoch ms). src: where the
 * service is before the first. Returns how many, or -errno. */
static int plan_insert(fm_orch *o, const char *traj, const char *sid, const char *type, const char *value,
                       const fm_trace *t, const fm_coverage *cov, int64_t start, int64_t estimate_ms, int64_t after_ms,
                       const char *src, fm_error *e)
{
        fm_handover_plan *h = NULL;
        size_t nh = 0;
        int r = fm_plan_handovers(t, cov, estimate_ms, &h, &nh, e);
        if (r == 0 && nh > FM_ORCH_HANDOVERS_MAX)
                r = fm_err(e, EDOM, "the trace changes host %zu times, a trajectory takes at most %d", nh,
                           FM_ORCH_HANDOVERS_MAX);
        int made = 0;
        const char *prev = src;
        /* where the trace has the user now: the service belongs there first */
        const char *now_cell = fm_trace_cell_at(t, after_ms);
        const fm_cell *nc = now_cell ? fm_coverage_cell(cov, now_cell) : NULL;
        if (r == 0 && nc && src && strcmp(nc->host, src)) {
                handover x = {.service = sid, .type = type, .value = value, .trajectory = traj, .path = "known",
                              .trigger = "plan", .to_cell = nc->id, .src = src, .dst = nc->host,
                              .planned_start = fm_orch_now_ms(), .deadline = fm_orch_now_ms(),
                              .why = "the trace has the user in another host's cell now"};
                r = handover_insert(o, &x, e) < 0 ? -EIO : 0;
                made += r == 0;
                prev = nc->host;
        }
        for (size_t i = 0; r == 0 && i < nh; i++) {
                if (h[i].deadline_ms <= after_ms)
                        continue;
                int64_t ps = start + h[i].start_ms;
                if (ps < fm_orch_now_ms())
                        ps = fm_orch_now_ms();
                handover x = {.service = sid, .type = type, .value = value, .trajectory = traj, .path = "known",
                              .trigger = "plan", .from_cell = h[i].from_cell, .to_cell = h[i].to_cell,
                              .src = prev && strcmp(prev, h[i].from_host) ? prev : h[i].from_host, .dst = h[i].to_host,
                              .planned_start = ps, .deadline = start + h[i].deadline_ms,
                              .why = h[i].tight ? "tight: the previous handover leaves less than the estimate" : NULL};
                if (handover_insert(o, &x, e) < 0)
                        r = -EIO;
                made++;
                prev = h[i].to_host;
        }
        free(h);
        return r < 0 ? r : made;
}

/* A migration's time from its start to the target running it, less any
 * hold (its start on the orchestrator's clock, the restore on the source
 * agent's); a report without that: its whole time less any hold. */
#define LEAD_MS                                                                                                     \
        "CASE WHEN json_extract(report, '$.restored_at') > 0 AND started > 0 THEN json_extract(report, "           \
        "'$.restored_at') - started - coalesce(json_extract(report, '$.held_ms'), 0) ELSE json_extract(report, "   \
        "'$.total_ms') - coalesce(json_extract(report, '$.held_ms'), 0) END AS ms"

/* The latest succeeded migrations of container ct (NULL: the fleet's
 * known-path ones, which held for their moment: an unknown path's full- or
 * partial-migs say little of a known path's memory-mig): their lead times
 * (past, *n) and their switches
 * (downs, *nd): from the planned moment to the target running it, else the
 * downtime seen. */
static void history(fm_orch *o, const char *ct, double past[FM_PLAN_HISTORY], size_t *n, double downs[FM_PLAN_HISTORY],
                    size_t *nd)
{
        json_object *hist = fm_store_rows(
                o->store, NULL,
                "SELECT " LEAD_MS ", CASE WHEN json_extract(report, '$.held_ms') > 0 THEN json_extract(report, "
                "'$.restored_at') - json_extract(report, '$.freeze_at') ELSE json_extract(report, '$.downtime_ms') END "
                "AS down FROM migrations WHERE (container = ?1 OR (?1 IS NULL AND json_extract(report, '$.held_ms') > 0)) "
                "AND status = 'succeeded' AND report IS "
                "NOT NULL ORDER BY ended DESC LIMIT ?2",
                "si", ct, (int64_t)FM_PLAN_HISTORY);
        *n = *nd = 0;
        for (size_t i = 0; hist && i < json_object_array_length(hist) && *n < FM_PLAN_HISTORY; i++) {
                json_object *v = fm_json_get(json_object_array_get_idx(hist, i), "ms");
                json_object *d = fm_json_get(json_object_array_get_idx(hist, i), "down");
                if (v && json_object_get_double(v) > 0)
                        past[(*n)++] = json_object_get_double(v);
                if (d && json_object_get_double(d) > 0)
                        downs[(*nd)++] = json_object_get_double(d);
        }
        json_object_put(hist);
}

/* How long before a known path's deadline its migration freezes the
 * service (fm_plan_switch_ms): from the service's latest switches, or the
 * fleet's when it has none; its memory, the link, its host's load. */
static int64_t switch_of(fm_orch *o, const char *ct, uint64_t mem_bytes, double link_mbit, double load_per_cpu, char *how,
                         size_t len)
{
        double past[FM_PLAN_HISTORY], downs[FM_PLAN_HISTORY];
        size_t n = 0, nd = 0;
        history(o, ct, past, &n, downs, &nd);
        bool fleet = nd == 0;
        if (fleet)
                history(o, NULL, past, &n, downs, &nd);
        fm_switch_in si = {.downtimes_ms = downs, .n = nd, .fleet = fleet, .mem_bytes = mem_bytes,
                           .link_mbit = link_mbit, .load_per_cpu = load_per_cpu};
        return fm_plan_switch_ms(&si, how, len);
}

/* What a migration of the service is expected to take: its memory and own
 * tree (asked of the agent on host), its earlier migrations, the link.
 * est gets the figures and the app image it is a clone of. */
static int64_t estimate(fm_orch *o, json_object *svc, const char *host, json_object *est)
{
        fm_estimate_in in = {.link_mbit = o->link_mbit};
        const fm_host *h = host ? fm_fleet_host(&o->fleet, host) : NULL;
        const char *ct = fm_json_get_str(svc, "container");
        json_object *rep = NULL;
        fm_error e = {0};
        if (h && fm_plane_info(h, ct, true, 10000, &rep, &e) == 0) {
                in.mem_bytes = (uint64_t)fm_json_get_int(rep, "memory_bytes");
                if (fm_json_get(rep, "load_per_cpu"))
                        json_object_object_add(est, "load_per_cpu",
                                               json_object_new_double(json_object_get_double(fm_json_get(rep, "load_per_cpu"))));
                in.disk_bytes = (uint64_t)fm_json_get_int(rep, "own_bytes");
                json_object *cl = fm_json_get(rep, "clone");
                if (fm_json_get_str(cl, "app") && fm_json_get_str(cl, "app_name")) {
                        json_object_object_add(est, "image", json_object_new_string(fm_json_get_str(cl, "app")));
                        json_object_object_add(est, "image_name", json_object_new_string(fm_json_get_str(cl, "app_name")));
                        json_object *list = NULL;
                        if (fm_plane_image_call(h, "image_list", NULL, &list, 10000, NULL) == 0) {
                                json_object *im = fm_plane_image_in(list, fm_json_get_str(cl, "app"));
                                json_object_object_add(est, "image_bytes", json_object_new_int64(fm_json_get_int(im, "bytes")));
                        }
                        json_object_put(list);
                }
        } else {
                json_object_object_add(est, "sizes_unknown", json_object_new_string(h ? e.msg : "where it runs is not known"));
        }
        json_object_put(rep);
        double past[FM_PLAN_HISTORY], downs[FM_PLAN_HISTORY];
        size_t n = 0, nd = 0;
        history(o, ct, past, &n, downs, &nd);
        if (n == 0) { /* none of its own: the fleet's latest (the model counts too) */
                history(o, NULL, past, &n, downs, &nd);
                json_object_object_add(est, "history_of", json_object_new_string(n ? "fleet" : "none"));
        }
        in.history_ms = past;
        in.nhistory = n;
        char how[256];
        int64_t ms = fm_plan_estimate_ms(&in, how, sizeof(how));
        json_object_object_add(est, "ms", json_object_new_int64(ms));
        json_object_object_add(est, "how", json_object_new_string(how));
        json_object_object_add(est, "memory_bytes", json_object_new_int64((int64_t)in.mem_bytes));
        json_object_object_add(est, "disk_bytes", json_object_new_int64((int64_t)in.disk_bytes));
        json_object_object_add(est, "link_mbit", json_object_new_double(in.link_mbit));
        json_object_object_add(est, "history", json_object_new_int((int)n));
        char swhow[200];
        int64_t sw = switch_of(o, ct, in.mem_bytes, in.link_mbit,
                               json_object_get_double(fm_json_get(est, "load_per_cpu")), swhow, sizeof(swhow));
        json_object_object_add(est, "switch_ms", json_object_new_int64(sw));
        json_object_object_add(est, "switch_how", json_object_new_string(swhow));
        return ms;
}

/* The freeze's lead as a migration starts: the history as it is now (the
 * handovers before it count) and its source host's load now (asked of its
 * agent); the plan's estimate gave the memory and the link. */
static int64_t switch_now(fm_orch *o, const char *ct, const char *src, json_object *est, char *how, size_t len)
{
        const fm_host *h = fm_fleet_host(&o->fleet, src);
        json_object *rep = NULL;
        double load = h && fm_plane_info(h, ct, false, 5000, &rep, NULL) == 0
                              ? json_object_get_double(fm_json_get(rep, "load_per_cpu"))
                              : 0;
        json_object_put(rep);
        return switch_of(o, ct, (uint64_t)fm_json_get_int(est, "memory_bytes"),
                         json_object_get_double(fm_json_get(est, "link_mbit")), load, how, len);
}

/* Where the service runs: its row's host, else asked of the agents. */
static int service_host(fm_orch *o, json_object *svc, char out[FM_NAME_MAX + 1], fm_error *e)
{
        const char *h = fm_json_get_str(svc, "host");
        if (h && h[0]) {
                snprintf(out, FM_NAME_MAX + 1, "%s", h);
                return 0;
        }
        const fm_host *at = NULL;
        char ip[16];
        int r = fm_plane_locate(&o->fleet, fm_json_get_str(svc, "container"), &at, ip, e);
        if (r < 0)
                return r;
        snprintf(out, FM_NAME_MAX + 1, "%s", at->name);
        fm_store_run(o->store, NULL, "UPDATE services SET host = ? WHERE id = ?", "ss", at->name, fm_json_get_str(svc, "id"));
        return 0;
}

static json_object *trajectory_json(fm_orch *o, json_object *row, bool plan);

int fm_orch_trajectory_add(fm_orch *o, json_object *body, const char *client, json_object **out, fm_error *e)
{
        *out = NULL;
        fm_orch_map *m = fm_orch_map_get(o);
        if (!m)
                return fm_err(e, ENODATA, "the fleet has no coverage map (PUT /fastmig/v1/coverage)");
        const fm_coverage *cov = &m->cov;
        const char *sid = fm_json_get_str(body, "appMobilityServiceId"), *fmt = fm_json_get_str(body, "format");
        const char *text = fm_json_get_str(body, "text"), *vehicle = fm_json_get_str(body, "vehicle");
        json_object *points = fm_json_get(body, "points"), *svc = NULL, *est = json_object_new_object();
        fm_trace t = {0};
        fm_trace_format f = FM_TRACE_JSON;
        const char *type = NULL, *value = NULL;
        char host[FM_NAME_MAX + 1] = "", id[17];
        int r = 0;
        if (!!text == !!points)
                r = fm_err(e, EINVAL, "a trajectory gives `text' (with `format') or `points'");
        else if (text && (!fmt || fm_trace_format_parse(fmt, &f) < 0))
                r = fm_err(e, EINVAL, "`format' is csv, json or fcd");
        else if (vehicle && f != FM_TRACE_FCD)
                r = fm_err(e, EINVAL, "`vehicle' names a vehicle of an fcd trace");
        if (r == 0) {
                if (text) {
                        r = fm_trace_parse(text, strlen(text), f, vehicle, &t, e);
                } else {
                        json_object *doc = json_object_new_object();
                        json_object_object_add(doc, "points", json_object_get(points));
                        const char *s = plain(doc);
                        r = fm_trace_parse(s, strlen(s), FM_TRACE_JSON, NULL, &t, e);
                        json_object_put(doc);
                }
                if (r < 0) {
                        fm_err_wrap(e, "the trace");
                        r = -(e->code = EINVAL);
                }
        }
        if (r == 0 && (r = fm_trace_resolve(&t, cov, e)) < 0) {
                fm_err_wrap(e, "the trace");
                r = -(e->code = EDOM);
        }
        if (r == 0 && !(svc = fm_orch_service_row(o, sid, e)))
                r = e->code ? -EIO : fm_err(e, ENOENT, "no service `%s'", sid);
        if (r == 0)
                r = service_device(svc, fm_json_get(body, "associateId"), &type, &value, e);
        int64_t start = fm_api_time_ms(fm_json_get(body, "startTime"), fm_orch_now_ms());
        int64_t now = fm_orch_now_ms();
        if (r == 0 && start + t.p[t.n - 1].t_ms <= now)
                r = fm_err(e, EINVAL, "the trace ended %.1f s ago (`startTime' + its last point's time)",
                           (double)(now - start - t.p[t.n - 1].t_ms) / 1000);
        if (r == 0)
                r = service_host(o, svc, host, e);
        if (r < 0)
                goto out;
        int64_t est_ms = estimate(o, svc, host, est);
        fm_orch_new_id(id);
        json_object *stored = fm_trace_json(&t);
        r = fm_store_begin(o->store, e);
        if (r == 0) {
                int64_t n = count(o, e, "SELECT count(*) AS n FROM trajectories WHERE service = ? AND "
                                        "state IN ('following', 'off_path')", "s", sid, NULL);
                if (n != 0)
                        r = n < 0 ? -EIO : fm_err(e, EALREADY, "service %s follows a trajectory already: delete it first", sid);
                if (r == 0)
                        r = fm_store_run(o->store, e,
                                         "INSERT INTO trajectories (id, service, type, value, start, points, format, "
                                         "estimate_ms, estimate, state, client, created) "
                                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'following', ?, ?)",
                                         "ssssississi", id, sid, type, value, start, plain(stored),
                                         text ? fmt : "points", est_ms, plain(est), client, now) < 0 ? -EIO : 0;
                /* a new plan replaces what an unknown path had planned */
                if (r == 0)
                        r = drop_planned(o, sid, NULL, "a trajectory was registered", e) < 0 ? -EIO : 0;
                if (r == 0)
                        r = plan_insert(o, id, sid, type, value, &t, cov, start, est_ms, now - start, host, e);
                if (fm_store_end(o->store, r >= 0, e) < 0 && r >= 0)
                        r = -EIO;
        }
        json_object_put(stored);
        if (r >= 0) {
                json_object *row = first(fm_store_rows(o->store, e, "SELECT " TRAJ_COLS " FROM trajectories WHERE id = ?", "s", id));
                *out = row ? trajectory_json(o, row, true) : NULL;
                json_object_put(row);
                if (!*out) { /* registered, but not read back: the client may GET the list */
                        r = -EIO;
                        goto out;
                }
                fm_orch_log(o, "info", NULL, "trajectory %s of service %s: %zu points, %d handovers planned, estimate %lld ms",
                            id, sid, t.n, r, (long long)est_ms);
                fm_orch_runner_kick(o);
                r = 0;
        }
out:
        fm_trace_free(&t);
        json_object_put(svc);
        json_object_put(est);
        fm_orch_map_put(o, m);
        return r;
}

static json_object *trajectory_json(fm_orch *o, json_object *row, bool plan)
{
        json_object *t = json_object_new_object(), *id = json_object_new_object();
        const char *tid = fm_json_get_str(row, "id");
        json_object_object_add(t, "id", json_object_new_string(tid));
        json_object_object_add(t, "appMobilityServiceId", json_object_new_string(fm_json_get_str(row, "service")));
        json_object_object_add(id, "type", json_object_new_string(fm_json_get_str(row, "type")));
        json_object_object_add(id, "value", json_object_new_string(fm_json_get_str(row, "value")));
        json_object_object_add(t, "associateId", id);
        json_object_object_add(t, "state", json_object_new_string(fm_json_get_str(row, "state")));
        json_object_object_add(t, "why", fm_json_get_str(row, "why") ? json_object_new_string(fm_json_get_str(row, "why")) : NULL);
        json_object_object_add(t, "start", json_object_new_int64(fm_json_get_int(row, "start")));
        json_object_object_add(t, "format", json_object_new_string(fm_json_get_str(row, "format")));
        json_object *est = NULL, *dur = fm_json_get(row, "duration_s");
        const char *es = fm_json_get_str(row, "estimate");
        json_object_object_add(t, "points", json_object_new_int((int)fm_json_get_int(row, "n_points")));
        json_object_object_add(t, "duration_s", dur ? json_object_new_double(json_object_get_double(dur)) : NULL);
        json_object_object_add(t, "estimate", es && (est = json_tokener_parse(es)) ? est : NULL);
        if (plan)
                json_object_object_add(t, "handovers", fm_orch_handovers_list(o, NULL, tid, NULL, NULL));
        char href[256];
        snprintf(href, sizeof(href), "%s/fastmig/v1/trajectories/%s", o->base_url, tid);
        json_object *links = json_object_new_object(), *self = json_object_new_object();
        json_object_object_add(self, "href", json_object_new_string(href));
        json_object_object_add(links, "self", self);
        json_object_object_add(t, "_links", links);
        return t;
}

json_object *fm_orch_trajectory_get(fm_orch *o, const char *id, fm_error *e)
{
        json_object *row = first(fm_store_rows(o->store, e, "SELECT " TRAJ_COLS " FROM trajectories WHERE id = ?", "s", id));
        json_object *t = row ? trajectory_json(o, row, true) : NULL;
        json_object_put(row);
        return t;
}

json_object *fm_orch_trajectories_list(fm_orch *o, fm_error *e)
{
        json_object *rows = fm_store_rows(o->store, e, "SELECT " TRAJ_COLS " FROM trajectories ORDER BY created DESC LIMIT 1000", "");
        if (!rows)
                return NULL;
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                json_object_array_add(out, trajectory_json(o, json_object_array_get_idx(rows, i), false));
        json_object_put(rows);
        return out;
}

int fm_orch_trajectory_cancel(fm_orch *o, const char *id, fm_error *e)
{
        int r = fm_store_begin(o->store, e);
        if (r < 0)
                return r;
        json_object *row = first(fm_store_rows(o->store, e, "SELECT " TRAJ_COLS " FROM trajectories WHERE id = ?", "s", id));
        if (!row)
                r = e->code ? -EIO : fm_err(e, ENOENT, "no trajectory %s", id);
        else if (strcmp(fm_json_get_str(row, "state"), "following") && strcmp(fm_json_get_str(row, "state"), "off_path"))
                r = fm_err(e, EALREADY, "trajectory %s has %s already", id, fm_json_get_str(row, "state"));
        if (r == 0)
                r = fm_store_run(o->store, e, "UPDATE trajectories SET state = 'cancelled', why = 'deleted' WHERE id = ?",
                                 "s", id) < 0 ? -EIO : 0;
        if (r == 0)
                r = fm_store_run(o->store, e,
                                 "UPDATE handovers SET status = 'cancelled', why = 'its trajectory was deleted', ended = ? "
                                 "WHERE trajectory = ? AND status = 'planned'",
                                 "is", fm_orch_now_ms(), id) < 0 ? -EIO : 0;
        json_object_put(row);
        if (fm_store_end(o->store, r == 0, e) < 0 && r == 0)
                r = -EIO;
        if (r == 0)
                fm_orch_log(o, "info", NULL, "trajectory %s cancelled", id);
        return r;
}

/* ---- users' positions and cell changes (an unknown path, or a known
 * one checked) ---- */

/* The user (type, value) of service svc is in cell (at the event's time
 * since, epoch ms; from_cell: the cell before, or NULL). With a trajectory
 * that follows: nothing while the user is on its path; off it, the plan is
 * dropped and the path is unknown until the user is back on it (then the
 * rest is planned again). An unknown path: a handover to the cell's host
 * when the service is not headed there, due now, its deadline since +
 * deadline_ms. Under a transaction. Appends the handovers made to made. */
static int follow_cell(fm_orch *o, const fm_coverage *cov, json_object *svc, const char *type, const char *value,
                       const char *from_cell, const char *cell, int64_t since, int64_t deadline_ms, const char *trigger,
                       json_object *made, fm_error *e)
{
        const char *sid = fm_json_get_str(svc, "id");
        const fm_cell *c = fm_coverage_cell(cov, cell);
        if (!c)
                return fm_err(e, EDOM, "no cell %s on the coverage map", cell);
        int64_t now = fm_orch_now_ms();
        json_object *tr = first(fm_store_rows(o->store, e,
                                              "SELECT " TRAJ_COLS " FROM trajectories WHERE service = ? AND type = ? AND value = ? AND "
                                              "state IN ('following', 'off_path')",
                                              "sss", sid, type, value));
        if (!tr && e->code)
                return -EIO;
        if (tr) {
                fm_trace t;
                int r = stored_trace(o, fm_json_get_str(tr, "id"), cov, &t, e);
                if (r < 0) {
                        json_object_put(tr);
                        return -EIO;
                }
                const char *tid = fm_json_get_str(tr, "id");
                int64_t at = since - fm_json_get_int(tr, "start");
                bool on = fm_trace_on_path(&t, at, cell);
                bool following = !strcmp(fm_json_get_str(tr, "state"), "following");
                char why[256];
                if (following && !on) {
                        snprintf(why, sizeof(why), "at %.1f s the user was in cell %s, its path has %s", (double)at / 1000,
                                 cell, fm_trace_cell_at(&t, at));
                        if (fm_store_run(o->store, e, "UPDATE trajectories SET state = 'off_path', why = ? WHERE id = ?",
                                         "ss", why, tid) < 0 ||
                            drop_planned(o, sid, tid, "the user left its path", e) < 0)
                                r = -EIO;
                        fm_orch_log(o, "info", NULL, "trajectory %s: off its path (%s)", tid, why);
                } else if (!following && on) {
                        char h[FM_NAME_MAX + 1];
                        if (drop_planned(o, sid, NULL, "the user is back on its path", e) < 0)
                                r = -EIO;
                        heading(o, svc, h);
                        r = fm_store_run(o->store, e, "UPDATE trajectories SET state = 'following', why = ? WHERE id = ?",
                                         "ss", "back on its path", tid) < 0 ? -EIO : 0;
                        if (r == 0)
                                r = plan_insert(o, tid, sid, type, value, &t, cov, fm_json_get_int(tr, "start"),
                                                fm_json_get_int(tr, "estimate_ms"), at, h[0] ? h : NULL, e);
                        fm_orch_log(o, "info", NULL, "trajectory %s: back on its path, %d handovers planned again", tid, r);
                }
                fm_trace_free(&t);
                json_object_put(tr);
                if (r < 0)
                        return r;
                if (on)
                        return 0; /* the plan follows the user */
        }
        char h[FM_NAME_MAX + 1];
        heading(o, svc, h);
        if (!strcmp(h, c->host))
                return 0;
        /* newer news of the user replaces a handover not yet started */
        if (fm_store_run(o->store, e,
                         "UPDATE handovers SET status = 'dropped', why = 'superseded by a later event', ended = ? "
                         "WHERE service = ? AND status = 'planned' AND path = 'unknown'",
                         "is", now, sid) < 0)
                return -EIO;
        handover x = {.service = sid, .type = type, .value = value, .path = "unknown", .trigger = trigger,
                      .from_cell = from_cell, .to_cell = cell, .src = h, .dst = c->host, .planned_start = now,
                      .deadline = since + deadline_ms};
        int64_t id = handover_insert(o, &x, e);
        if (id < 0)
                return -EIO;
        json_object_array_add(made, json_object_new_int64(id));
        return 0;
}

static json_object *user_row(fm_orch *o, const char *type, const char *value, fm_error *e)
{
        return first(fm_store_rows(o->store, e, "SELECT * FROM users WHERE type = ? AND value = ?", "ss", type, value));
}

/* Records the user in cell (at x, y when has_xy) at since and, with a map
 * (cov), follows it with each of its services; one transaction. */
static int user_moved(fm_orch *o, const fm_coverage *cov, const char *type, const char *value, const char *cell,
                      bool has_xy, double x, double y, int64_t since, int64_t deadline_ms, const char *trigger,
                      bool record, json_object *made, fm_error *e)
{
        int r = fm_store_begin(o->store, e);
        if (r < 0)
                return r;
        json_object *svcs = fm_orch_services_of(o, type, value, e), *u = NULL;
        if (!svcs)
                r = -EIO;
        else if (!json_object_array_length(svcs))
                r = fm_err(e, ENOENT, "no registered service has the device %s %.64s", type, value);
        if (r == 0 && !(u = user_row(o, type, value, e)) && e->code)
                r = -EIO;
        if (r == 0 && record && u && fm_json_get_int(u, "since") > since)
                r = fm_err(e, EALREADY, "the user's cell is known from a later time stamp");
        const char *from = u ? fm_json_get_str(u, "cell") : NULL;
        char prev[FM_CELL_ID_MAX + 1] = "";
        snprintf(prev, sizeof(prev), "%s", from ? from : "");
        static const char *const upsert =
                "INSERT INTO users (type, value, cell, since, x, y) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (type, value) DO UPDATE SET cell = excluded.cell, since = excluded.since, "
                "x = excluded.x, y = excluded.y";
        if (r == 0 && record &&
            (has_xy ? fm_store_run(o->store, e, upsert, "sssidd", type, value, cell, since, x, y)
                    : fm_store_run(o->store, e, upsert, "sssiss", type, value, cell, since, NULL, NULL)) < 0)
                r = -EIO;
        for (size_t i = 0; r == 0 && cov && svcs && i < json_object_array_length(svcs); i++)
                r = follow_cell(o, cov, json_object_array_get_idx(svcs, i), type, value, prev[0] ? prev : NULL, cell,
                                since, deadline_ms, trigger, made, e);
        json_object_put(svcs);
        json_object_put(u);
        if (fm_store_end(o->store, r == 0, e) < 0 && r == 0)
                r = -EIO;
        if (r == 0 && json_object_array_length(made))
                fm_orch_runner_kick(o);
        return r;
}

static int64_t stamp(json_object *body) { return fm_api_time_ms(fm_json_get(body, "timeStamp"), fm_orch_now_ms()); }

static json_object *user_out(fm_orch *o, const char *type, const char *value, json_object *made)
{
        json_object *u = user_row(o, type, value, NULL), *out = json_object_new_object(), *id = json_object_new_object();
        json_object_object_add(id, "type", json_object_new_string(type));
        json_object_object_add(id, "value", json_object_new_string(value));
        json_object_object_add(out, "associateId", id);
        json_object_object_add(out, "cell", u && fm_json_get_str(u, "cell") ? json_object_new_string(fm_json_get_str(u, "cell")) : NULL);
        json_object_object_add(out, "since", u ? json_object_new_int64(fm_json_get_int(u, "since")) : NULL);
        json_object *ids = fm_orch_service_ids(o, type, value, NULL);
        json_object_object_add(out, "services", ids ? ids : json_object_new_array());
        json_object_object_add(out, "handovers", json_object_get(made));
        json_object_put(u);
        return out;
}

int fm_orch_user_position(fm_orch *o, json_object *body, json_object **out, fm_error *e)
{
        *out = NULL;
        fm_orch_map *m = fm_orch_map_get(o);
        if (!m)
                return fm_err(e, ENODATA, "the fleet has no coverage map (PUT /fastmig/v1/coverage)");
        json_object *id = fm_json_get(body, "associateId");
        const char *type = fm_json_get_str(id, "type"), *value = fm_json_get_str(id, "value");
        double x = json_object_get_double(fm_json_get(body, "x")), y = json_object_get_double(fm_json_get(body, "y"));
        json_object *u = user_row(o, type, value, NULL);
        const fm_cell *cur = u ? fm_coverage_cell(&m->cov, fm_json_get_str(u, "cell")) : NULL;
        json_object_put(u);
        const fm_cell *c = fm_coverage_locate(&m->cov, x, y, cur);
        int r = 0;
        json_object *made = json_object_new_array();
        if (!c)
                r = fm_err(e, EDOM, "the position (%g, %g) is outside every cell", x, y);
        else
                r = user_moved(o, &m->cov, type, value, c->id, true, x, y, stamp(body), o->deadline_ms, "position", true,
                               made, e);
        if (r == 0)
                *out = user_out(o, type, value, made);
        json_object_put(made);
        fm_orch_map_put(o, m);
        return r;
}

int fm_orch_user_cell(fm_orch *o, const char *type, const char *value, const char *cell, int64_t since,
                      const char *trigger, json_object **out, fm_error *e)
{
        *out = NULL;
        fm_orch_map *m = fm_orch_map_get(o);
        json_object *made = json_object_new_array();
        int r = 0;
        if (m && !fm_coverage_cell(&m->cov, cell))
                r = fm_err(e, EDOM, "no cell %s on the coverage map", cell);
        else /* without a map the cell is recorded, nothing follows */
                r = user_moved(o, m ? &m->cov : NULL, type, value, cell, false, 0, 0, since, o->deadline_ms, trigger,
                               true, made, e);
        if (r == 0)
                *out = user_out(o, type, value, made);
        json_object_put(made);
        fm_orch_map_put(o, m);
        return r;
}

/* ---- RNIS: a CellChangeNotification (ETSI MEC 012) posted to our
 * callback ---- */

static const char *const ho_names[] = {"", "IN_PREPARATION", "IN_EXECUTION", "COMPLETED", "REJECTED", "CANCELLED"};

/* The handover this user's announcement into cell started, to take back:
 * cancelled while not started (or its migration still queued); else a
 * handover back to where the service was (it waits for the migration
 * under way to end; nothing to do when that was rolled back). */
static int take_back(fm_orch *o, json_object *svc, const char *type, const char *value, const char *cell,
                     const char *what, json_object *made, fm_error *e)
{
        const char *sid = fm_json_get_str(svc, "id");
        json_object *h = first(fm_store_rows(o->store, e,
                                             "SELECT h.*, m.status AS m_status FROM handovers h LEFT JOIN migrations m "
                                             "ON m.id = h.migration WHERE h.service = ? AND h.to_cell = ? AND h.trigger IN "
                                             "('rnis:IN_PREPARATION', 'rnis:IN_EXECUTION') AND h.status IN ('planned', "
                                             "'started', 'done') AND h.created >= ? AND NOT EXISTS (SELECT 1 FROM handovers "
                                             "x WHERE x.service = h.service AND x.id > h.id) ORDER BY h.id DESC LIMIT 1",
                                             "ssi", sid, cell, fm_orch_now_ms() - TAKE_BACK_MS));
        if (!h)
                return e->code ? -EIO : 0; /* nothing started for it */
        int64_t hid = fm_json_get_int(h, "id"), now = fm_orch_now_ms(), mig = fm_json_get_int(h, "migration");
        char why[160];
        snprintf(why, sizeof(why), "the RNIS reported the handover %s", what);
        int r = 0;
        const char *st = fm_json_get_str(h, "status"), *ms = fm_json_get_str(h, "m_status");
        bool queued = !strcmp(st, "started") && ms && !strcmp(ms, "queued");
        if (queued) /* not begun: it never will */
                queued = fm_store_run(o->store, e,
                                      "UPDATE migrations SET status = 'failed', error = ?, ended = ? WHERE id = ? AND "
                                      "status = 'queued'",
                                      "sii", why, now, mig) == 1;
        if (!strcmp(st, "planned") || queued) {
                r = fm_store_run(o->store, e, "UPDATE handovers SET status = 'cancelled', why = ?, ended = ? WHERE id = ?",
                                 "sii", why, now, hid) < 0 ? -EIO : 0;
        } else {
                char note[200];
                snprintf(note, sizeof(note), "%s: the service goes back to %s", why, fm_json_get_str(h, "src"));
                handover back = {.service = sid, .type = type, .value = value, .path = "unknown", .trigger = "rnis:back",
                                 .from_cell = cell, .to_cell = fm_json_get_str(h, "from_cell") ? fm_json_get_str(h, "from_cell") : cell,
                                 .src = fm_json_get_str(h, "dst"), .dst = fm_json_get_str(h, "src"), .planned_start = now,
                                 .deadline = now + o->deadline_ms, .why = note};
                int64_t id = fm_store_run(o->store, e, "UPDATE handovers SET why = ? WHERE id = ?", "si", note, hid) < 0
                                     ? -EIO
                                     : handover_insert(o, &back, e);
                if (id < 0)
                        r = -EIO;
                else
                        json_object_array_add(made, json_object_new_int64(id));
        }
        json_object_put(h);
        return r;
}

int fm_orch_rnis_cell_change(fm_orch *o, json_object *body, json_object **out, fm_error *e)
{
        *out = NULL;
        json_object *hs = fm_json_get(body, "hoStatus");
        int status = 0;
        if (json_object_is_type(hs, json_type_int))
                status = json_object_get_int(hs);
        for (int i = 1; i <= 5 && json_object_is_type(hs, json_type_string); i++)
                if (!strcmp(json_object_get_string(hs), ho_names[i]))
                        status = i;
        if (status < 1 || status > 5)
                return fm_err(e, EINVAL, "`hoStatus' is 1 to 5 (IN_PREPARATION, IN_EXECUTION, COMPLETED, REJECTED, CANCELLED)");
        json_object *trg = fm_json_get(body, "trgEcgi"), *ids = fm_json_get(body, "associateId");
        const char *cell = fm_json_get_str(json_object_array_get_idx(trg, 0), "cellId");
        const char *src_cell = fm_json_get_str(fm_json_get(body, "srcEcgi"), "cellId");
        fm_orch_map *m = fm_orch_map_get(o);
        if (!m)
                return fm_err(e, ENODATA, "the fleet has no coverage map (PUT /fastmig/v1/coverage)");
        int r = 0;
        if (!fm_coverage_cell(&m->cov, cell))
                r = fm_err(e, EDOM, "`trgEcgi[0].cellId': no cell %s on the coverage map", cell);
        else if (src_cell && !fm_coverage_cell(&m->cov, src_cell))
                r = fm_err(e, EDOM, "`srcEcgi.cellId': no cell %s on the coverage map", src_cell);
        json_object *single = NULL;
        if (json_object_is_type(ids, json_type_object)) { /* an older version's single associateId */
                single = json_object_new_array();
                json_object_array_add(single, json_object_get(ids));
                ids = single;
        }
        if (r == 0 && (!json_object_is_type(ids, json_type_array) || !json_object_array_length(ids)))
                r = fm_err(e, EINVAL, "`associateId' names no user: the notification cannot be followed");
        int64_t since = stamp(body);
        char trigger[32];
        snprintf(trigger, sizeof(trigger), "rnis:%s", ho_names[status]);
        json_object *made = json_object_new_array();
        /* every user named must be known, else nothing is done */
        for (size_t i = 0; r == 0 && i < json_object_array_length(ids); i++) {
                json_object *id = json_object_array_get_idx(ids, i);
                json_object *svcs = fm_orch_services_of(o, fm_json_get_str(id, "type"), fm_json_get_str(id, "value"), e);
                if (!svcs)
                        r = -EIO;
                else if (!json_object_array_length(svcs))
                        r = fm_err(e, ENOENT, "`associateId[%zu]': no registered service has the device %s %.64s", i,
                                   fm_json_get_str(id, "type"), fm_json_get_str(id, "value"));
                json_object_put(svcs);
        }
        for (size_t i = 0; r == 0 && i < json_object_array_length(ids); i++) {
                json_object *id = json_object_array_get_idx(ids, i);
                const char *type = fm_json_get_str(id, "type"), *value = fm_json_get_str(id, "value");
                if (status <= 3) {
                        /* preparing or executing: the early warning; completed: the user is there */
                        r = user_moved(o, &m->cov, type, value, cell, false, 0, 0, since, o->deadline_ms, trigger,
                                       status == 3, made, e);
                        if (r == -EALREADY) { /* an older completion: nothing to follow */
                                fm_err_clear(e);
                                r = 0;
                        }
                        continue;
                }
                if ((r = fm_store_begin(o->store, e)) < 0)
                        break;
                json_object *svcs = fm_orch_services_of(o, type, value, e);
                for (size_t k = 0; r == 0 && svcs && k < json_object_array_length(svcs); k++)
                        r = take_back(o, json_object_array_get_idx(svcs, k), type, value, cell, ho_names[status] + 0, made, e);
                if (!svcs)
                        r = -EIO;
                json_object_put(svcs);
                if (fm_store_end(o->store, r == 0, e) < 0 && r == 0)
                        r = -EIO;
        }
        if (r == 0) {
                *out = json_object_new_object();
                json_object_object_add(*out, "hoStatus", json_object_new_string(ho_names[status]));
                json_object_object_add(*out, "cell", json_object_new_string(cell));
                json_object_object_add(*out, "handovers", json_object_get(made));
                fm_orch_runner_kick(o);
                fm_orch_log(o, "info", NULL, "RNIS: %s into cell %s, %zu handovers", ho_names[status], cell,
                            json_object_array_length(made));
        }
        json_object_put(made);
        json_object_put(single);
        fm_orch_map_put(o, m);
        return r;
}

/* ---- handovers as the API and the scenarios show them ---- */

#define HANDOVER_SELECT                                                                                              \
        "SELECT h.*, s.container, m.status AS m_status, m.started AS m_started, m.ended AS m_ended, "               \
        "m.bytes AS m_bytes, "                                                                                       \
        "m.report AS j_report, m.error AS m_error FROM handovers h LEFT JOIN migrations m ON m.id = h.migration "   \
        "LEFT JOIN services s ON s.id = h.service "

static void add_str(json_object *o, const char *k, json_object *row, const char *col)
{
        const char *v = fm_json_get_str(row, col);
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_ms(json_object *o, const char *k, json_object *row, const char *col)
{
        json_object *v = fm_json_get(row, col);
        json_object_object_add(o, k, v ? json_object_new_int64(json_object_get_int64(v)) : NULL);
}

static void step(json_object *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(json_object *path, const char *fmt, ...)
{
        char s[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s, sizeof(s), fmt, ap);
        va_end(ap);
        json_object_array_add(path, json_object_new_string(s));
}

/* The handover's way through the flowchart (the paper's checks 0-3), with
 * the figures measured. */
static json_object *decision_path(json_object *row, json_object *rep)
{
        json_object *p = json_object_new_array();
        const char *path = fm_json_get_str(row, "path"), *trig = fm_json_get_str(row, "trigger");
        const char *dst = fm_json_get_str(row, "dst");
        if (!strcmp(path, "known"))
                step(p, "known path: planned from trajectory %s (%s)", fm_json_get_str(row, "trajectory"), trig);
        else
                step(p, "unknown path: announced by %s into cell %s", trig, fm_json_get_str(row, "to_cell"));
        const char *img = fm_json_get_str(row, "image");
        if (img)
                step(p, "image ahead: %s%s%s", img, fm_json_get_str(row, "image_note") ? ": " : "",
                     fm_json_get_str(row, "image_note") ? fm_json_get_str(row, "image_note") : "");
        if (!rep)
                return p;
        json_object *lt = fm_json_get(rep, "latency_test");
        int by = json_object_get_int(fm_json_get(rep, "decided_by"));
        const char *strategy = fm_json_get_str(rep, "strategy");
        if (lt)
                step(p, "check 0: shared storage, latency test p99 %.2f ms against a tolerance of %.2f ms: %s",
                     json_object_get_double(fm_json_get(lt, "p99_ms")), json_object_get_double(fm_json_get(lt, "tolerance_ms")),
                     fm_json_bool(lt, "passed", false) ? "passed, the disk stays on the volume" : "failed");
        else
                step(p, "check 0: not on shared storage");
        if (fm_json_get_str(rep, "fallback"))
                step(p, "fallback: %s", fm_json_get_str(rep, "fallback"));
        if (by == 1)
                step(p, "check 1: the app image is on %s: memory-mig", dst);
        else if (by == 2)
                step(p, "check 1 failed; check 2: the base image is on %s: partial-mig", dst);
        else if (by == 3)
                step(p, "checks 1-2 failed: neither image on %s: full-mig", dst);
        if (fm_json_get(rep, "held_ms"))
                step(p, "ready %.0f ms before its planned moment, %lld ms before the deadline: the service ran on at the "
                        "source until then",
                     json_object_get_double(fm_json_get(rep, "held_ms")),
                     (long long)(fm_json_get_int(row, "deadline") - fm_json_get_int(rep, "freeze_at")));
        step(p, "strategy %s: downtime %.0f ms, total %.0f ms, %lld bytes moved", strategy ? strategy : "?",
             json_object_get_double(fm_json_get(rep, "downtime_ms")), json_object_get_double(fm_json_get(rep, "total_ms")),
             (long long)(fm_json_get_int(fm_json_get(rep, "bytes_disk"), "total") + fm_json_get_int(rep, "bytes_memory")));
        return p;
}

static json_object *handover_json(fm_orch *o, json_object *row)
{
        (void)o;
        json_object *h = json_object_new_object(), *id = json_object_new_object();
        char ids[24];
        snprintf(ids, sizeof(ids), "%lld", (long long)fm_json_get_int(row, "id"));
        json_object_object_add(h, "id", json_object_new_string(ids));
        add_str(h, "service", row, "service");
        add_str(h, "container", row, "container");
        json_object_object_add(id, "type", json_object_new_string(fm_json_get_str(row, "type")));
        json_object_object_add(id, "value", json_object_new_string(fm_json_get_str(row, "value")));
        json_object_object_add(h, "associateId", id);
        add_str(h, "path", row, "path");
        add_str(h, "trigger", row, "trigger");
        add_str(h, "trajectory", row, "trajectory");
        add_str(h, "from", row, "src");
        add_str(h, "to", row, "dst");
        add_str(h, "from_cell", row, "from_cell");
        add_str(h, "to_cell", row, "to_cell");
        add_ms(h, "planned_start", row, "planned_start");
        add_ms(h, "deadline", row, "deadline");
        add_ms(h, "started", row, "started");
        add_str(h, "status", row, "status");
        add_str(h, "why", row, "why");
        json_object *img = NULL;
        if (fm_json_get_str(row, "image")) {
                img = json_object_new_object();
                add_str(img, "action", row, "image");
                add_str(img, "note", row, "image_note");
        }
        json_object_object_add(h, "image", img);
        json_object *mig = fm_json_get(row, "migration");
        char mids[24];
        snprintf(mids, sizeof(mids), "%lld", (long long)json_object_get_int64(mig));
        json_object_object_add(h, "migration", mig ? json_object_new_string(mids) : NULL);
        add_str(h, "migration_status", row, "m_status");
        add_ms(h, "ended", row, "m_ended");
        json_object *rep = fm_json_get(row, "report");
        json_object *v = NULL;
        add_str(h, "strategy", rep, "strategy");
        json_object_object_add(h, "decided_by", (v = fm_json_get(rep, "decided_by")) ? json_object_get(v) : NULL);
        json_object_object_add(h, "downtime_ms", (v = fm_json_get(rep, "downtime_ms")) ? json_object_get(v) : NULL);
        json_object_object_add(h, "frozen_ms", (v = fm_json_get(rep, "frozen_ms")) ? json_object_get(v) : NULL);
        json_object_object_add(h, "total_ms", (v = fm_json_get(rep, "total_ms")) ? json_object_get(v) : NULL);
        json_object_object_add(h, "bytes", mig ? json_object_new_int64(fm_json_get_int(row, "m_bytes")) : NULL);
        /* when the service ran on the target, its traffic there: the source
         * agent's clock at the restore's end */
        const char *st = fm_json_get_str(row, "status");
        json_object *met = NULL, *met_end = NULL, *sw = NULL;
        if (!strcmp(st, "done") && fm_json_get(rep, "restored_at")) {
                int64_t at = fm_json_get_int(rep, "restored_at");
                sw = json_object_new_int64(at);
                met = json_object_new_boolean(at <= fm_json_get_int(row, "deadline"));
                met_end = json_object_new_boolean(fm_json_get_int(row, "m_ended") <= fm_json_get_int(row, "deadline"));
        } else if (!strcmp(st, "failed")) {
                met = json_object_new_boolean(false);
                met_end = json_object_new_boolean(false);
        }
        json_object_object_add(h, "switched", sw);
        json_object_object_add(h, "deadline_met", met);
        json_object_object_add(h, "ended_by_deadline", met_end);
        add_str(h, "error", row, "m_error");
        json_object_object_add(h, "decision_path", decision_path(row, rep));
        return h;
}

static json_object *handovers_json(fm_orch *o, json_object *rows)
{
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                json_object_array_add(out, handover_json(o, json_object_array_get_idx(rows, i)));
        return out;
}

json_object *fm_orch_handovers_list(fm_orch *o, const char *service, const char *trajectory, const char *status,
                                    fm_error *e)
{
        json_object *rows = fm_store_rows(o->store, e,
                                          HANDOVER_SELECT "WHERE (? IS NULL OR h.service = ?) AND (? IS NULL OR "
                                          "h.trajectory = ?) AND (? IS NULL OR h.status = ?) ORDER BY h.id LIMIT 1000",
                                          "ssssss", service, service, trajectory, trajectory, status, status);
        if (!rows)
                return NULL;
        json_object *out = handovers_json(o, rows);
        json_object_put(rows);
        return out;
}

json_object *fm_orch_handover_get(fm_orch *o, int64_t id, fm_error *e)
{
        json_object *row = first(fm_store_rows(o->store, e, HANDOVER_SELECT "WHERE h.id = ?", "i", id));
        json_object *h = row ? handover_json(o, row) : NULL;
        json_object_put(row);
        return h;
}

/* ---- the follower: images ahead, migrations at their time ---- */

typedef struct placement {
        fm_orch *o;
        int64_t hid;
        char image[80], from[FM_NAME_MAX + 1], to[FM_NAME_MAX + 1];
} placement;

static void *place_thread(void *arg)
{
        placement *p = arg;
        fm_orch *o = p->o;
        const fm_host *from = fm_fleet_host(&o->fleet, p->from), *to = fm_fleet_host(&o->fleet, p->to);
        json_object *rep = NULL;
        fm_error e = {0};
        double t0 = fm_now_ms();
        int r = from && to ? fm_plane_image_push(from, to, p->image, false, &rep, &e) : fm_err(&e, ENOENT, "no such host");
        /* another placement stages the same base there: asked again */
        bool again = r == -EBUSY && strstr(e.msg, "being staged");
        char note[1200];
        if (r == 0)
                snprintf(note, sizeof(note), "%.12s placed on %s from %s in %.2f s (%.1f MB, base %.1f MB)", p->image, p->to,
                         p->from, (fm_now_ms() - t0) / 1000, (double)fm_json_get_int(rep, "bytes") / 1e6,
                         (double)fm_json_get_int(rep, "bytes_base") / 1e6);
        else
                snprintf(note, sizeof(note), "placing %.12s on %s from %s failed: %s", p->image, p->to, p->from, e.msg);
        if (again)
                fm_store_run(o->store, NULL, "UPDATE handovers SET image = NULL, image_note = ? WHERE id = ?", "si", note,
                             p->hid);
        else
                fm_store_run(o->store, NULL, "UPDATE handovers SET image = ?, image_note = ? WHERE id = ?", "ssi",
                             r == 0 ? "placed" : "failed", note, p->hid);
        fm_orch_log(o, r == 0 ? "info" : "warning", NULL, "handover %lld: %s", (long long)p->hid, note);
        json_object_put(rep);
        free(p);
        pthread_mutex_lock(&o->lock);
        o->placing--;
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
        return NULL;
}

static void image_note(fm_orch *o, int64_t hid, const char *action, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void image_note(fm_orch *o, int64_t hid, const char *action, const char *fmt, ...)
{
        char note[600];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(note, sizeof(note), fmt, ap);
        va_end(ap);
        fm_store_run(o->store, NULL, "UPDATE handovers SET image = ?, image_note = ? WHERE id = ? AND image IS NULL",
                     "ssi", action, note, hid);
}

/* For each trajectory that follows, the app image on the hosts of its next
 * HORIZON handovers: there already, placed now when there is the time and
 * the room, else why not (the migration's checks 2-3 then decide). */
static void place_ahead(fm_orch *o)
{
        json_object *rows = fm_store_rows(o->store, NULL,
                                          "SELECT h.id, h.dst, h.planned_start, h.trajectory, h.image, s.host AS s_host, "
                                          "t.estimate AS j_estimate FROM handovers h JOIN trajectories t ON t.id = h.trajectory "
                                          "LEFT JOIN services s ON s.id = h.service WHERE h.status = 'planned' AND "
                                          "h.path = 'known' AND t.state = 'following' ORDER BY h.trajectory, h.planned_start, h.id",
                                          "");
        const char *traj = NULL;
        int nth = 0;
        for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
                json_object *h = json_object_array_get_idx(rows, i);
                const char *t = fm_json_get_str(h, "trajectory");
                nth = traj && !strcmp(traj, t) ? nth + 1 : 0;
                traj = t;
                if (nth >= HORIZON || fm_json_get_str(h, "image"))
                        continue;
                int64_t hid = fm_json_get_int(h, "id");
                json_object *est = fm_json_get(h, "estimate");
                const char *image = fm_json_get_str(est, "image"), *dst = fm_json_get_str(h, "dst");
                const fm_host *to = fm_fleet_host(&o->fleet, dst);
                if (!image) {
                        image_note(o, hid, "none", "the container is no clone of an app image: checks 2-3 decide");
                        continue;
                }
                json_object *list = NULL;
                fm_error e = {0};
                if (!to || fm_plane_image_call(to, "image_list", NULL, &list, 5000, &e) < 0) {
                        /* not asked again every tick: the migration's checks decide */
                        image_note(o, hid, "failed", "%s's images could not be listed: %s", dst, e.msg);
                        json_object_put(list);
                        continue;
                }
                bool there = fm_plane_image_in(list, image) != NULL;
                int64_t free_bytes = fm_json_get_int(list, "free_bytes"), bytes = fm_json_get_int(est, "image_bytes");
                json_object_put(list);
                int64_t left = fm_json_get_int(h, "planned_start") - fm_orch_now_ms();
                int64_t need = fm_plan_transfer_ms((uint64_t)bytes, o->link_mbit) + PLACE_SLACK_MS;
                if (there) {
                        image_note(o, hid, "present", "%s is on %s already", fm_json_get_str(est, "image_name"), dst);
                        continue;
                }
                if (bytes > 0 && free_bytes < 2 * bytes) {
                        image_note(o, hid, "no_room", "%s has %.1f MB free, %s takes %.1f MB: checks 2-3 decide", dst,
                                   (double)free_bytes / 1e6, fm_json_get_str(est, "image_name"), (double)bytes / 1e6);
                        continue;
                }
                if (left < need) {
                        image_note(o, hid, "no_time", "placing %s (%.1f MB) takes ~%.1f s, %.1f s are left: checks 2-3 decide",
                                   fm_json_get_str(est, "image_name"), (double)bytes / 1e6, (double)need / 1000,
                                   (double)left / 1000);
                        continue;
                }
                pthread_mutex_lock(&o->lock);
                bool room = o->placing < PLACING_MAX && !o->follower_stopping;
                if (room)
                        o->placing++;
                pthread_mutex_unlock(&o->lock);
                if (!room)
                        continue;
                placement *p = calloc(1, sizeof(*p));
                const char *from = fm_json_get_str(h, "s_host");
                if (p && from && fm_store_run(o->store, NULL, "UPDATE handovers SET image = 'placing' WHERE id = ? AND "
                                                             "image IS NULL", "i", hid) == 1) {
                        p->o = o;
                        p->hid = hid;
                        snprintf(p->image, sizeof(p->image), "%s", image);
                        snprintf(p->from, sizeof(p->from), "%s", from);
                        snprintf(p->to, sizeof(p->to), "%s", dst);
                        pthread_t th;
                        pthread_attr_t a;
                        pthread_attr_init(&a);
                        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
                        int r = pthread_create(&th, &a, place_thread, p);
                        pthread_attr_destroy(&a);
                        if (r == 0)
                                continue;
                        fm_store_run(o->store, NULL, "UPDATE handovers SET image = NULL WHERE id = ?", "i", hid);
                }
                free(p);
                pthread_mutex_lock(&o->lock);
                o->placing--;
                pthread_mutex_unlock(&o->lock);
        }
        json_object_put(rows);
}

static void handover_end(fm_orch *o, int64_t hid, const char *status, const char *why)
{
        fm_store_run(o->store, NULL, "UPDATE handovers SET status = ?, why = ?, ended = ? WHERE id = ? AND status = 'planned'",
                     "ssii", status, why, fm_orch_now_ms(), hid);
}

/* The handovers due: each a migration queued, once the service is not
 * migrating and its image (if being placed) is there. */
static void start_due(fm_orch *o)
{
        json_object *rows = fm_store_rows(o->store, NULL,
                                          "SELECT h.id, h.service, h.dst, h.image, h.path, h.deadline, h.planned_start, "
                                          "t.estimate AS j_estimate "
                                          "FROM handovers h LEFT JOIN trajectories t ON t.id = h.trajectory WHERE "
                                          "h.status = 'planned' AND h.planned_start <= ? ORDER BY h.planned_start, h.id",
                                          "i", fm_orch_now_ms());
        for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
                json_object *h = json_object_array_get_idx(rows, i);
                int64_t hid = fm_json_get_int(h, "id");
                const char *img = fm_json_get_str(h, "image"), *dst = fm_json_get_str(h, "dst");
                if (img && !strcmp(img, "placing") && fm_orch_now_ms() < fm_json_get_int(h, "planned_start") + PLACE_WAIT_MS)
                        continue;
                /* a handover overtaken by a later one of the same service,
                 * due too, with its deadline past: the later one goes */
                json_object *later = fm_orch_now_ms() > fm_json_get_int(h, "deadline")
                                             ? first(fm_store_rows(o->store, NULL,
                                                                   "SELECT id FROM handovers WHERE service = ? AND status = "
                                                                   "'planned' AND id > ? AND planned_start <= ? LIMIT 1",
                                                                   "sii", fm_json_get_str(h, "service"),
                                                                   fm_json_get_int(h, "id"), fm_orch_now_ms()))
                                             : NULL;
                json_object_put(later);
                if (later) {
                        handover_end(o, hid, "skipped", "overtaken by a later handover, its deadline past");
                        continue;
                }
                fm_error e = {0};
                json_object *svc = fm_orch_service_row(o, fm_json_get_str(h, "service"), &e);
                char src[FM_NAME_MAX + 1] = "", why[1200];
                if (!svc) {
                        if (!e.code)
                                handover_end(o, hid, "failed", "its service is no longer registered");
                        continue;
                }
                const char *ct = fm_json_get_str(svc, "container");
                /* a migration under way decides where it runs: wait for it */
                int64_t moving = count(o, &e, "SELECT count(*) AS n FROM migrations WHERE container = ? AND "
                                              "status IN ('queued', 'running')", "s", ct, NULL);
                if (moving != 0) {
                        json_object_put(svc);
                        continue;
                }
                if (service_host(o, svc, src, &e) < 0) {
                        snprintf(why, sizeof(why), "where %s runs is not known: %s", ct, e.msg);
                        handover_end(o, hid, "failed", why);
                        json_object_put(svc);
                        continue;
                }
                if (!strcmp(src, dst)) {
                        snprintf(why, sizeof(why), "%s runs on %s already", ct, dst);
                        handover_end(o, hid, "skipped", why);
                        json_object_put(svc);
                        continue;
                }
                int64_t busy = 0, id = -1;
                json_object *opts = json_object_new_object();
                /* a known path's migration freezes the service at its planned
                 * moment: just before the user crosses */
                char swhow[200] = "";
                int64_t sw = 0;
                if (!strcmp(fm_json_get_str(h, "path"), "known")) {
                        sw = switch_now(o, ct, src, fm_json_get(h, "estimate"), swhow, sizeof(swhow));
                        int64_t at = fm_json_get_int(h, "deadline") - sw;
                        if (at > fm_orch_now_ms())
                                json_object_object_add(opts, "freeze_at", json_object_new_int64(at));
                        else
                                swhow[0] = 0;
                }
                if (fm_store_begin(o->store, &e) == 0) {
                        id = fm_orch_migration_queue(o, svc, ct, src, dst, opts, "follower", &busy, &e);
                        int n = id > 0 ? fm_store_run(o->store, &e,
                                                      "UPDATE handovers SET status = 'started', migration = ?, started = ?, "
                                                      "src = ? WHERE id = ? AND status = 'planned'",
                                                      "iisi", id, fm_orch_now_ms(), src, hid)
                                       : 0;
                        if (fm_store_end(o->store, n == 1, &e) < 0 || n != 1)
                                id = id > 0 ? -EIO : id;
                }
                json_object_put(opts);
                if (id == -EPERM)
                        handover_end(o, hid, "failed", e.msg);
                else if (id > 0) {
                        char frozen[300] = "";
                        if (swhow[0])
                                snprintf(frozen, sizeof(frozen), ", frozen %lld ms before its deadline: %s", (long long)sw,
                                         swhow);
                        fm_orch_log(o, "info", NULL, "handover %lld: migration %lld of %s from %s to %s%s", (long long)hid,
                                    (long long)id, ct, src, dst, frozen);
                }
                /* -EBUSY: it waits for the migration under way */
                json_object_put(svc);
                if (id > 0)
                        fm_orch_runner_kick(o);
        }
        json_object_put(rows);
}

/* The images this follower placed on a host the service has left (or
 * never reached), which no handover to come needs: removed. */
static void clean_images(fm_orch *o)
{
        json_object *rows = fm_store_rows(o->store, NULL,
                                          "SELECT h.id, h.dst, t.estimate AS j_estimate, s.host AS s_host FROM handovers h "
                                          "JOIN trajectories t ON t.id = h.trajectory LEFT JOIN services s ON s.id = h.service "
                                          "WHERE h.image = 'placed' AND h.status NOT IN ('planned', 'started') AND "
                                          "(s.host IS NULL OR s.host != h.dst) AND NOT EXISTS (SELECT 1 FROM handovers x "
                                          "WHERE x.dst = h.dst AND x.status IN ('planned', 'started'))",
                                          "");
        for (size_t i = 0; rows && i < json_object_array_length(rows); i++) {
                json_object *h = json_object_array_get_idx(rows, i);
                const char *dst = fm_json_get_str(h, "dst");
                const char *image = fm_json_get_str(fm_json_get(h, "estimate"), "image");
                const fm_host *host = fm_fleet_host(&o->fleet, dst);
                json_object *rep = NULL;
                fm_error e = {0};
                int r = host && image ? fm_plane_image_call(host, "image_rm", image, &rep, 60000, &e) : -ENOENT;
                json_object_put(rep);
                char note[1200];
                if (r == 0 || r == -ENOENT)
                        snprintf(note, sizeof(note), "removed from %s after the service left", dst);
                else
                        snprintf(note, sizeof(note), "kept on %s: %s", dst, e.msg);
                fm_store_run(o->store, NULL,
                             "UPDATE handovers SET image = ?, image_note = coalesce(image_note, '') || '; ' || ? WHERE id = ?",
                             "ssi", r == 0 || r == -ENOENT ? "removed" : "kept", note, fm_json_get_int(h, "id"));
                fm_orch_log(o, "info", NULL, "handover %lld: image %.12s %s", (long long)fm_json_get_int(h, "id"),
                            image ? image : "?", note);
        }
        json_object_put(rows);
}

static void end_trips(fm_orch *o)
{
        fm_store_run(o->store, NULL,
                     "UPDATE trajectories SET why = CASE WHEN state = 'off_path' THEN 'the trip is over; off its path: ' "
                     "|| coalesce(why, '') ELSE 'the trip is over' END, state = 'ended' WHERE state IN ('following', "
                     "'off_path') AND start + CAST(json_extract(points, '$.points[#-1].t') * 1000 AS INTEGER) < ? AND "
                     "NOT EXISTS (SELECT 1 FROM handovers h WHERE h.trajectory = trajectories.id AND h.status IN "
                     "('planned', 'started'))",
                     "i", fm_orch_now_ms());
}

static void *follower(void *arg)
{
        fm_orch *o = arg;
        pthread_mutex_lock(&o->lock);
        while (!o->follower_stopping) {
                pthread_mutex_unlock(&o->lock);
                place_ahead(o);
                start_due(o);
                clean_images(o);
                end_trips(o);
                pthread_mutex_lock(&o->lock);
                if (o->follower_stopping)
                        break;
                fm_orch_wait(o, TICK_MS);
        }
        pthread_mutex_unlock(&o->lock);
        return NULL;
}

int fm_orch_follower_start(fm_orch *o, fm_error *e)
{
        /* placements a previous run left unfinished: decided again */
        fm_store_run(o->store, NULL, "UPDATE handovers SET image = NULL WHERE image = 'placing'", "");
        int r = pthread_create(&o->follower, NULL, follower, o);
        return r ? fm_err(e, r, "starting the follower: %s", strerror(r)) : 0;
}

void fm_orch_follower_stop(fm_orch *o)
{
        pthread_mutex_lock(&o->lock);
        o->follower_stopping = true;
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->follower, NULL);
        pthread_mutex_lock(&o->lock);
        while (o->placing > 0)
                pthread_cond_wait(&o->changed, &o->lock);
        pthread_mutex_unlock(&o->lock);
}
