/* The orchestrator's API (docs/ORCHESTRATOR.md, docs/openapi.json): MEC 021
 * Application Mobility Service resources under /amsi/v1 with the spec's
 * names, and fastmig's own under /fastmig/v1. Every body is checked against
 * its table (orch/schema.c) before anything reads it. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "orch/api.h"
#include "orch/schema.h"
#include "orch/http.h"
#include "plane/images.h"
#include "plane/options.h"
#include "plane/plane.h"
#include "proto/proto.h"

#define LIST_MAX 1000
#define SUBSCRIPTIONS_PER_CLIENT 64
#define CLOCK_SKEW_MS 60000 /* how far ahead of ours a time stamp may be */

/* ---- helpers ---- */

static void db_problem(fm_http_resp *rs, const fm_error *e)
{
        fm_http_problem(rs, 500, "the orchestrator's database failed: %s", e->msg);
}

static json_object *links_self(const char *url)
{
        json_object *l = json_object_new_object(), *s = json_object_new_object();
        json_object_object_add(s, "href", json_object_new_string(url));
        json_object_object_add(l, "self", s);
        return l;
}

/* The stored service row as the API shows it: its RegistrationInfo with
 * the id and where it runs. */
static json_object *service_json(json_object *row)
{
        json_object *b = json_object_get(fm_json_get(row, "body"));
        if (!b)
                b = json_object_new_object();
        json_object_object_add(b, "appMobilityServiceId", json_object_new_string(fm_json_get_str(row, "id") ? fm_json_get_str(row, "id") : ""));
        json_object *ext = fm_json_get(b, "fastmig");
        if (ext)
                json_object_object_add(ext, "host", fm_json_get_str(row, "host") ? json_object_new_string(fm_json_get_str(row, "host")) : NULL);
        return b;
}

static bool id_is_valid(const char *s)
{
        size_t n = strlen(s);
        return n > 0 && n <= FM_API_ID_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* ---- app_mobility_services ---- */

static void services_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        (void)rq;
        fm_error e = {0};
        json_object *rows = fm_store_rows(a->o->store, &e,
                                          "SELECT id, host, body AS j_body FROM services WHERE expires = 0 OR expires > ? "
                                          "ORDER BY created, id",
                                          "i", fm_orch_now_ms());
        if (!rows)
                return db_problem(rs, &e);
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                json_object_array_add(out, service_json(json_object_array_get_idx(rows, i)));
        json_object_put(rows);
        rs->status = 200;
        rs->body = out;
}

static void services_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_registration, &e) < 0 || fm_api_registration_check(rq->body, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        if (fm_json_get(rq->body, "appMobilityServiceId"))
                return fm_http_problem(rs, 400, "`appMobilityServiceId' is given by the orchestrator, not in a POST");
        json_object *ext = fm_json_get(rq->body, "fastmig");
        const char *ct = fm_json_get_str(ext, "container");
        fm_orch_expire_services(a->o); /* a lapsed registration of ct is gone first */
        const fm_host *h = NULL;
        char ip[16];
        if (fm_plane_locate(&a->o->fleet, ct, &h, ip, &e) < 0)
                return fm_http_problem(rs, 422, "container %s: %s", ct, e.msg);
        char id[17];
        fm_orch_new_id(id);
        json_object_object_del(ext, "host");
        json_object *et = fm_json_get(rq->body, "expiryTime");
        int64_t expiry = et ? json_object_get_int64(et) : 0, now = fm_orch_now_ms();
        int r = fm_store_run(a->o->store, &e,
                             "INSERT INTO services (id, container, host, body, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                             "ssssii", id, ct, h->name, json_object_to_json_string_ext(rq->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                             now, expiry ? now + expiry * 1000 : 0);
        if (r == -EEXIST) {
                json_object *x = fm_store_rows(a->o->store, NULL, "SELECT id FROM services WHERE container = ?", "s", ct);
                const char *other = x && json_object_array_length(x) ? fm_json_get_str(json_object_array_get_idx(x, 0), "id") : "?";
                fm_http_problem(rs, 409, "container %s is registered already, as service %s", ct, other);
                json_object_put(x);
                return;
        }
        if (r < 0)
                return db_problem(rs, &e);
        json_object *row = fm_orch_service_row(a->o, id, &e);
        if (!row)
                return db_problem(rs, &e);
        rs->status = 201;
        rs->body = service_json(row);
        json_object_put(row);
        snprintf(rs->location, sizeof(rs->location), "%s/amsi/v1/app_mobility_services/%s", a->o->base_url, id);
        fm_orch_log(a->o, "info", NULL, "service %s registered by %s: container %s on %s", id, rq->client, ct, h->name);
}

static void service_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const char *id = ids[0];
        (void)rq;
        fm_error e = {0};
        json_object *row = fm_orch_service_row(a->o, id, &e);
        if (!row)
                return e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no service %s", id);
        rs->status = 200;
        rs->body = service_json(row);
        json_object_put(row);
}

static bool service_busy(fm_api *a, const char *id, int64_t *mig)
{
        json_object *x = fm_store_rows(a->o->store, NULL,
                                       "SELECT id FROM migrations WHERE service = ? AND status IN ('queued', 'running')",
                                       "s", id);
        bool busy = x && json_object_array_length(x);
        if (busy) {
                json_object *v = fm_json_get(json_object_array_get_idx(x, 0), "id");
                *mig = v ? json_object_get_int64(v) : 0;
        }
        json_object_put(x);
        return busy;
}

static void service_put(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const char *id = ids[0];
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_registration, &e) < 0 || fm_api_registration_check(rq->body, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        const char *bid = fm_json_get_str(rq->body, "appMobilityServiceId");
        if (bid && strcmp(bid, id))
                return fm_http_problem(rs, 400, "`appMobilityServiceId' is %s, the path names %s", bid, id);
        fm_store_lock(a->o->store);
        json_object *row = fm_orch_service_row(a->o, id, &e);
        const char *ct = fm_json_get_str(fm_json_get(rq->body, "fastmig"), "container");
        if (!row) {
                e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no service %s", id);
        } else if (strcmp(fm_json_get_str(row, "container"), ct)) {
                fm_http_problem(rs, 422, "service %s is container %s; another container is another service", id,
                                fm_json_get_str(row, "container"));
        } else {
                json_object_object_del(rq->body, "appMobilityServiceId");
                json_object_object_del(fm_json_get(rq->body, "fastmig"), "host");
                json_object *et = fm_json_get(rq->body, "expiryTime");
                int64_t expiry = et ? json_object_get_int64(et) : 0;
                if (fm_store_run(a->o->store, &e, "UPDATE services SET body = ?, expires = ? WHERE id = ?", "sis",
                                 json_object_to_json_string_ext(rq->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                                 expiry ? fm_orch_now_ms() + expiry * 1000 : 0, id) < 0) {
                        db_problem(rs, &e);
                } else {
                        json_object_put(row);
                        row = fm_orch_service_row(a->o, id, &e);
                        if (row) {
                                rs->status = 200;
                                rs->body = service_json(row);
                        } else {
                                fm_http_problem(rs, 404, "no service %s", id);
                        }
                }
        }
        fm_store_unlock(a->o->store);
        json_object_put(row);
}

static void service_delete(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const char *id = ids[0];
        fm_error e = {0};
        int64_t mig = 0;
        fm_store_lock(a->o->store);
        json_object *row = fm_orch_service_row(a->o, id, &e);
        if (!row)
                e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no service %s", id);
        else if (service_busy(a, id, &mig))
                fm_http_problem(rs, 409, "service %s is migrating (migration %lld)", id, (long long)mig);
        else if (fm_store_run(a->o->store, &e, "DELETE FROM services WHERE id = ?", "s", id) < 0)
                db_problem(rs, &e);
        else
                rs->status = 204;
        fm_store_unlock(a->o->store);
        json_object_put(row);
        if (rs->status == 204)
                fm_orch_log(a->o, "info", NULL, "service %s deregistered by %s", id, rq->client);
}

/* ---- subscriptions ---- */

static json_object *subscription_json(fm_api *a, json_object *row)
{
        json_object *b = json_object_get(fm_json_get(row, "body"));
        char url[512];
        snprintf(url, sizeof(url), "%s/amsi/v1/subscriptions/%s", a->o->base_url, fm_json_get_str(row, "id"));
        json_object_object_add(b, "_links", links_self(url));
        json_object *fc = fm_json_get(b, "filterCriteria");
        if (fc && !fm_json_get(fc, "mobilityStatus")) { /* MEC 021: the default is included in the answer */
                json_object *st = json_object_new_array();
                json_object_array_add(st, json_object_new_string("INTERHOST_MOVEOUT_TRIGGERED"));
                json_object_object_add(fc, "mobilityStatus", st);
        }
        return b;
}

static void subscriptions_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        const char *type = fm_http_query(rq, "subscriptionType");
        if (type && strcmp(type, "mobility_proc") && strcmp(type, "adj_app_info") && strcmp(type, "MobilityProcedureSubscription"))
                return fm_http_problem(rs, 400, "subscriptionType is mobility_proc or adj_app_info, not `%.64s'", type);
        fm_error e = {0};
        json_object *rows = fm_store_rows(a->o->store, &e, "SELECT id FROM subscriptions WHERE client = ? ORDER BY rowid",
                                          "s", rq->client);
        if (!rows)
                return db_problem(rs, &e);
        char url[512];
        snprintf(url, sizeof(url), "%s/amsi/v1/subscriptions", a->o->base_url);
        json_object *out = json_object_new_object(), *list = json_object_new_array();
        json_object_object_add(out, "_links", links_self(url));
        /* only MobilityProcedureSubscription is offered: adj_app_info lists none */
        for (size_t i = 0; (!type || strcmp(type, "adj_app_info")) && i < json_object_array_length(rows); i++) {
                json_object *s = json_object_new_object();
                snprintf(url, sizeof(url), "%s/amsi/v1/subscriptions/%s", a->o->base_url,
                         fm_json_get_str(json_object_array_get_idx(rows, i), "id"));
                json_object_object_add(s, "href", json_object_new_string(url));
                json_object_object_add(s, "subscriptionType", json_object_new_string("MobilityProcedureSubscription"));
                json_object_array_add(list, s);
        }
        json_object_object_add(out, "subscription", list);
        json_object_put(rows);
        rs->status = 200;
        rs->body = out;
}

/* A subscription is its client's: another client's answers 404. */
static json_object *subscription_row(fm_api *a, const char *id, const char *client, fm_error *e)
{
        json_object *rows = fm_store_rows(a->o->store, e,
                                          "SELECT id, body AS j_body FROM subscriptions WHERE id = ? AND client = ?", "ss",
                                          id, client);
        json_object *row = rows && json_object_array_length(rows) ? json_object_get(json_object_array_get_idx(rows, 0)) : NULL;
        json_object_put(rows);
        return row;
}

static void subscriptions_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_subscription, &e) < 0 || fm_api_subscription_check(rq->body, fm_orch_now_ms(), &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        json_object_object_del(rq->body, "_links");
        char id[17];
        fm_orch_new_id(id);
        /* a client's subscriptions are bounded: each may cost the notifier a
         * timeout per notification */
        fm_store_lock(a->o->store);
        json_object *n = fm_store_rows(a->o->store, &e, "SELECT count(*) AS n FROM subscriptions WHERE client = ?", "s",
                                       rq->client);
        int64_t have = n ? json_object_get_int64(fm_json_get(json_object_array_get_idx(n, 0), "n")) : -1;
        json_object_put(n);
        int r = have < 0 ? -EIO : have >= SUBSCRIPTIONS_PER_CLIENT ? -EDQUOT
                : fm_store_run(a->o->store, &e, "INSERT INTO subscriptions (id, body, expiry, client) VALUES (?, ?, ?, ?)",
                               "ssis", id, json_object_to_json_string_ext(rq->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                               fm_api_deadline_ms(rq->body), rq->client);
        fm_store_unlock(a->o->store);
        if (r == -EDQUOT)
                return fm_http_problem(rs, 409, "client %s has %d subscriptions, the most one may have", rq->client,
                                       SUBSCRIPTIONS_PER_CLIENT);
        if (r < 0)
                return db_problem(rs, &e);
        json_object *row = subscription_row(a, id, rq->client, &e);
        if (!row)
                return db_problem(rs, &e);
        rs->status = 201;
        rs->body = subscription_json(a, row);
        json_object_put(row);
        snprintf(rs->location, sizeof(rs->location), "%s/amsi/v1/subscriptions/%s", a->o->base_url, id);
        if (fm_json_bool(rq->body, "requestTestNotification", false))
                fm_orch_notify_test(a->o, id);
        fm_orch_log(a->o, "info", NULL, "subscription %s by %s: %s", id, rq->client, fm_json_get_str(rq->body, "callbackReference"));
}

static void subscription_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const char *id = ids[0];
        (void)rq;
        fm_error e = {0};
        json_object *row = subscription_row(a, id, rq->client, &e);
        if (!row)
                return e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no subscription %s", id);
        rs->status = 200;
        rs->body = subscription_json(a, row);
        json_object_put(row);
}

static void subscription_put(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const char *id = ids[0];
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_subscription, &e) < 0 || fm_api_subscription_check(rq->body, fm_orch_now_ms(), &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        json_object_object_del(rq->body, "_links");
        int r = fm_store_run(a->o->store, &e, "UPDATE subscriptions SET body = ?, expiry = ? WHERE id = ? AND client = ?",
                             "siss", json_object_to_json_string_ext(rq->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                             fm_api_deadline_ms(rq->body), id, rq->client);
        if (r < 0)
                return db_problem(rs, &e);
        if (r == 0)
                return fm_http_problem(rs, 404, "no subscription %s", id);
        subscription_get(a, rq, rs, ids);
}

static void subscription_delete(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const char *id = ids[0];
        (void)rq;
        fm_error e = {0};
        int r = fm_store_run(a->o->store, &e, "DELETE FROM subscriptions WHERE id = ? AND client = ?", "ss", id,
                             rq->client);
        if (r < 0)
                return db_problem(rs, &e);
        if (r == 0)
                return fm_http_problem(rs, 404, "no subscription %s", id);
        fm_store_run(a->o->store, NULL, "DELETE FROM outbox WHERE subscription = ?", "s", id);
        rs->status = 204;
}

/* ---- queries ---- */

/* For the service an application instance registered, the fleet's other
 * hosts: where this instance can move (docs/ORCHESTRATOR.md). */
static void adjacent(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        const char *app = fm_http_query(rq, "appInstanceId");
        if (!app || !id_is_valid(app))
                return fm_http_problem(rs, 400, "the query needs appInstanceId (1 to %d of [A-Za-z0-9_.-]), not `%.80s'",
                                       FM_API_ID_MAX, app ? app : "");
        fm_error e = {0};
        json_object *rows = fm_store_rows(a->o->store, &e,
                                          "SELECT id, host, container FROM services WHERE "
                                          "json_extract(body, '$.serviceConsumerId.appInstanceId') = ?",
                                          "s", app);
        if (!rows)
                return db_problem(rs, &e);
        if (!json_object_array_length(rows)) {
                json_object_put(rows);
                return fm_http_problem(rs, 404, "no service registered by application instance %s", app);
        }
        json_object *row = json_object_array_get_idx(rows, 0), *out = json_object_new_array();
        const char *here = fm_json_get_str(row, "host");
        for (size_t i = 0; i < (size_t)a->o->fleet.hosts; i++) {
                const fm_host *h = &a->o->fleet.host[i];
                if (here && !strcmp(here, h->name))
                        continue;
                json_object *x = json_object_new_object(), *link = json_object_new_array(), *ci = json_object_new_object(),
                            *ips = json_object_new_array(), *ip = json_object_new_object(), *mh = json_object_new_object();
                json_object_object_add(x, "appDId", json_object_new_string(fm_json_get_str(row, "container")));
                json_object_object_add(x, "appInstanceId", json_object_new_string(app));
                json_object_object_add(ip, "host", json_object_new_string(h->addr));
                json_object_object_add(ip, "port", json_object_new_int(h->port));
                json_object_array_add(ips, ip);
                json_object_object_add(ci, "ipAddresses", ips);
                json_object_array_add(link, ci);
                json_object_object_add(x, "appInstanceCommLink", link);
                json_object_object_add(mh, "hostId", json_object_new_string(h->name));
                json_object_object_add(mh, "hostName", json_object_new_string(h->name));
                json_object_object_add(x, "mecHostInformation", mh);
                json_object_object_add(x, "registeredInstanceId", json_object_new_string(fm_json_get_str(row, "id")));
                json_object_array_add(out, x);
        }
        json_object_put(rows);
        rs->status = 200;
        rs->body = out;
}

/* ---- hosts ---- */

static void hosts_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        (void)rq;
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < (size_t)a->o->fleet.hosts; i++) {
                const fm_host *h = &a->o->fleet.host[i];
                json_object *x = json_object_new_object(), *req = json_object_new_object(), *rep = NULL;
                char ep[64];
                snprintf(ep, sizeof(ep), "%s:%u", h->addr, h->port);
                json_object_object_add(x, "name", json_object_new_string(h->name));
                json_object_object_add(x, "agent", json_object_new_string(ep));
                json_object_object_add(req, "op", json_object_new_string("list"));
                fm_error e = {0};
                int r = fm_plane_call(h, req, &rep, 3000, &e);
                json_object_put(req);
                json_object_object_add(x, "reachable", json_object_new_boolean(r == 0));
                if (r == 0) {
                        json_object_object_add(x, "containers", json_object_get(fm_json_get(rep, "containers")));
                        json_object_object_add(x, "migrating", json_object_get(fm_json_get(rep, "migrating")));
                } else {
                        json_object_object_add(x, "error", json_object_new_string(e.msg));
                }
                json_object_put(rep);
                json_object_array_add(out, x);
        }
        rs->status = 200;
        rs->body = out;
}

/* ---- migrations ---- */

static json_object *migration_row(fm_api *a, int64_t id, fm_error *e)
{
        json_object *rows = fm_store_rows(a->o->store, e,
                                          "SELECT *, options AS j_options, report AS j_report FROM migrations WHERE id = ?",
                                          "i", id);
        json_object *row = rows && json_object_array_length(rows) ? json_object_get(json_object_array_get_idx(rows, 0)) : NULL;
        json_object_put(rows);
        return row;
}

/* The service a migration of container ct (or of service sid) belongs
 * to, NULL when none; *gone when sid names none. Under the store's lock. */
static json_object *migration_service(fm_api *a, const char *sid, const char *ct, bool *gone, fm_error *e)
{
        json_object *x = sid ? fm_store_rows(a->o->store, e,
                                             "SELECT id, container, body AS j_body FROM services WHERE id = ? AND "
                                             "(expires = 0 OR expires > ?)", "si", sid, fm_orch_now_ms())
                             : fm_store_rows(a->o->store, e,
                                             "SELECT id, container, body AS j_body FROM services WHERE container = ? AND "
                                             "(expires = 0 OR expires > ?)", "si", ct, fm_orch_now_ms());
        json_object *svc = x && json_object_array_length(x) ? json_object_get(json_object_array_get_idx(x, 0)) : NULL;
        *gone = x && sid && !svc;
        json_object_put(x);
        return svc;
}

static void migrations_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_migration, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        const char *sid = fm_json_get_str(rq->body, "appMobilityServiceId"), *to = fm_json_get_str(rq->body, "to"), *from = fm_json_get_str(rq->body, "from");
        char ct[FM_NAME_MAX + 1] = "", src[FM_NAME_MAX + 1] = "";
        snprintf(ct, sizeof(ct), "%s", fm_json_get_str(rq->body, "container") ? fm_json_get_str(rq->body, "container") : "");
        if (!!sid == !!ct[0])
                return fm_http_problem(rs, 400, "a migration names exactly one of appMobilityServiceId and container");
        if (ct[0] && !fm_name_is_valid(ct))
                return fm_http_problem(rs, 400, "`container' is not a container name: `%s'", ct);
        if (!fm_fleet_host(&a->o->fleet, to))
                return fm_http_problem(rs, 422, "`to': no host `%s' in the fleet", to);
        if (from && !fm_fleet_host(&a->o->fleet, from))
                return fm_http_problem(rs, 422, "`from': no host `%s' in the fleet", from);
        bool gone = false;
        if (sid) { /* the container it names (a registration never changes it) */
                json_object *svc = migration_service(a, sid, NULL, &gone, &e);
                if (svc)
                        snprintf(ct, sizeof(ct), "%s", fm_json_get_str(svc, "container"));
                json_object_put(svc);
                if (!svc)
                        return e.code ? db_problem(rs, &e) : fm_http_problem(rs, 422, "no service `%s'", sid);
        }
        /* where it runs: the agents are asked outside the lock */
        if (from) {
                snprintf(src, sizeof(src), "%s", from);
        } else {
                const fm_host *h = NULL;
                char ip[16];
                if (fm_plane_locate(&a->o->fleet, ct, &h, ip, &e) < 0)
                        return fm_http_problem(rs, 422, "container %s: %s", ct, e.msg);
                snprintf(src, sizeof(src), "%s", h->name);
        }
        if (!strcmp(src, to))
                return fm_http_problem(rs, 409, "%s runs on %s already", ct, to);
        json_object *opts = fm_json_get(rq->body, "options");
        opts = opts ? json_object_get(opts) : json_object_new_object();
        /* the service's state, one migration of a container at a time, and
         * the insert: one step */
        int64_t id = -1;
        fm_store_lock(a->o->store);
        json_object *svc = migration_service(a, sid, ct, &gone, &e);
        if (e.code)
                db_problem(rs, &e);
        else if (gone)
                fm_http_problem(rs, 422, "no service `%s'", sid);
        else if ((id = fm_orch_migration_queue(a->o, svc, ct, src, to, opts, rq->client, NULL, &e)) < 0 &&
                 (id == -EPERM || id == -EBUSY))
                fm_http_problem(rs, 409, "%s", e.msg);
        else if (id < 0)
                db_problem(rs, &e);
        fm_store_unlock(a->o->store);
        json_object_put(svc);
        json_object_put(opts);
        if (id < 0)
                return;
        fm_orch_runner_kick(a->o);
        json_object *row = migration_row(a, id, &e);
        rs->status = 201;
        rs->body = row ? fm_orch_migration_json(a->o, row) : NULL;
        json_object_put(row);
        snprintf(rs->location, sizeof(rs->location), "%s/fastmig/v1/migrations/%lld", a->o->base_url, (long long)id);
        fm_orch_log(a->o, "info", NULL, "migration %lld of %s from %s to %s requested by %s", (long long)id, ct, src, to,
                    rq->client);
}

static void migrations_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        const char *status = fm_http_query(rq, "status"), *ct = fm_http_query(rq, "container"),
                   *svc = fm_http_query(rq, "appMobilityServiceId"), *lim = fm_http_query(rq, "limit");
        static const char *const statuses[] = {"queued", "running", "succeeded", "rolled_back", "failed"};
        bool known = !status;
        for (size_t i = 0; status && i < FM_ARRAY_SIZE(statuses); i++)
                known = known || !strcmp(status, statuses[i]);
        if (!known)
                return fm_http_problem(rs, 400, "status is queued, running, succeeded, rolled_back or failed, not `%.32s'", status);
        uint32_t limit = 100;
        if (lim && (fm_parse_u32(lim, &limit) < 0 || limit < 1 || limit > LIST_MAX))
                return fm_http_problem(rs, 400, "limit takes 1 to %d, not `%.32s'", LIST_MAX, lim);
        fm_error e = {0};
        json_object *rows = fm_store_rows(a->o->store, &e,
                                          "SELECT *, options AS j_options, report AS j_report FROM migrations WHERE "
                                          "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR container = ?2) AND "
                                          "(?3 IS NULL OR service = ?3) ORDER BY id DESC LIMIT ?4",
                                          "sssi", status, ct, svc, (int64_t)limit);
        if (!rows)
                return db_problem(rs, &e);
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                json_object_array_add(out, fm_orch_migration_json(a->o, json_object_array_get_idx(rows, i)));
        json_object_put(rows);
        rs->status = 200;
        rs->body = out;
}

static void migration_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *path_ids)
{
        const char *ids = path_ids[0];
        (void)rq;
        uint32_t id = 0;
        if (fm_parse_u32(ids, &id) < 0)
                return fm_http_problem(rs, 404, "no migration %s", ids);
        fm_error e = {0};
        json_object *row = migration_row(a, id, &e);
        if (!row)
                return e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no migration %s", ids);
        rs->status = 200;
        rs->body = fm_orch_migration_json(a->o, row);
        json_object_put(row);
}

/* ---- users and their cells ---- */

static json_object *user_json(fm_api *a, json_object *row)
{
        json_object *u = json_object_new_object(), *id = json_object_new_object();
        const char *type = fm_json_get_str(row, "type"), *value = fm_json_get_str(row, "value");
        json_object_object_add(id, "type", json_object_new_string(type));
        json_object_object_add(id, "value", json_object_new_string(value));
        json_object_object_add(u, "associateId", id);
        json_object_object_add(u, "cell", json_object_new_string(fm_json_get_str(row, "cell")));
        json_object_object_add(u, "since", json_object_new_int64(fm_json_get_int(row, "since")));
        json_object *svc = fm_orch_service_ids(a->o, type, value, NULL);
        json_object_object_add(u, "services", svc ? svc : json_object_new_array());
        return u;
}

static void users_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        (void)rq;
        fm_error e = {0};
        json_object *rows = fm_store_rows(a->o->store, &e, "SELECT * FROM users ORDER BY type, value LIMIT ?", "i",
                                          (int64_t)LIST_MAX);
        if (!rows)
                return db_problem(rs, &e);
        json_object *out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(rows); i++)
                json_object_array_add(out, user_json(a, json_object_array_get_idx(rows, i)));
        json_object_put(rows);
        rs->status = 200;
        rs->body = out;
}

/* The API's answer to a mobility request that failed. */
static void mobility_problem(fm_http_resp *rs, int r, const fm_error *e)
{
        switch (-r) {
        case EINVAL: return fm_http_problem(rs, 400, "%s", e->msg);
        case ENOENT:
        case EDOM: return fm_http_problem(rs, 422, "%s", e->msg);
        case ENODATA:
        case EBUSY:
        case EALREADY: return fm_http_problem(rs, 409, "%s", e->msg);
        default: return db_problem(rs, e);
        }
}

static bool stamp_ahead(json_object *body, fm_http_resp *rs)
{
        int64_t t = fm_api_time_ms(fm_json_get(body, "timeStamp"), 0);
        if (t <= fm_orch_now_ms() + CLOCK_SKEW_MS)
                return false;
        fm_http_problem(rs, 400, "`timeStamp' is %lld s ahead of the orchestrator's clock",
                        (long long)((t - fm_orch_now_ms()) / 1000));
        return true;
}

/* A user entered a cell: recorded as its last known one (an older time
 * stamp than the one known is refused), and followed when the fleet has a
 * coverage map (docs/MOBILITY.md). */
static void cell_change(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_cell_change, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        json_object *id = fm_json_get(rq->body, "associateId");
        const char *type = fm_json_get_str(id, "type"), *value = fm_json_get_str(id, "value"),
                   *cell = fm_json_get_str(rq->body, "cell");
        int64_t since = fm_api_time_ms(fm_json_get(rq->body, "timeStamp"), fm_orch_now_ms());
        if (stamp_ahead(rq->body, rs)) /* it would hide every later change */
                return;
        json_object *out = NULL;
        int r = fm_orch_user_cell(a->o, type, value, cell, since, "cell_change", &out, &e);
        if (r < 0)
                return mobility_problem(rs, r, &e);
        rs->status = 200;
        rs->body = out;
        fm_orch_log(a->o, "info", NULL, "user %s %s is in cell %s (from %s)", type, value, cell, rq->client);
}

static void position_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_position, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        if (stamp_ahead(rq->body, rs))
                return;
        json_object *out = NULL;
        int r = fm_orch_user_position(a->o, rq->body, &out, &e);
        if (r < 0)
                return mobility_problem(rs, r, &e);
        rs->status = 200;
        rs->body = out;
}

/* The RNIS's notifications, posted to the callback its subscription names. */
static void rnis_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        fm_api_ho_status_normalize(rq->body);
        if (fm_validate(rq->body, fm_api_cell_change_notification, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        if (!json_object_array_length(fm_json_get(rq->body, "trgEcgi")))
                return fm_http_problem(rs, 400, "`trgEcgi' names no target cell");
        if (stamp_ahead(rq->body, rs))
                return;
        json_object *out = NULL;
        int r = fm_orch_rnis_cell_change(a->o, rq->body, &out, &e);
        if (r < 0)
                return mobility_problem(rs, r, &e);
        rs->status = 200;
        rs->body = out;
}

static void coverage_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        (void)rq;
        fm_orch_map *m = fm_orch_map_get(a->o);
        if (!m)
                return fm_http_problem(rs, 404, "the fleet has no coverage map");
        rs->status = 200;
        rs->body = fm_coverage_json(fm_orch_map_coverage(m));
        fm_orch_map_put(a->o, m);
}

static void coverage_put(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        int r = fm_orch_coverage_set(a->o, rq->body, &e);
        if (r == -EBUSY)
                return fm_http_problem(rs, 409, "%s", e.msg);
        if (r == -ENOENT || r == -EINVAL || r == -EEXIST)
                return fm_http_problem(rs, r == -ENOENT ? 422 : 400, "%s", e.msg);
        if (r < 0)
                return db_problem(rs, &e);
        coverage_get(a, rq, rs);
        fm_orch_log(a->o, "info", NULL, "coverage map replaced by %s", rq->client);
}

static void trajectories_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        if (fm_validate(rq->body, fm_api_trajectory, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        json_object *out = NULL;
        int r = fm_orch_trajectory_add(a->o, rq->body, rq->client, &out, &e);
        if (r < 0)
                return mobility_problem(rs, r, &e);
        rs->status = 201;
        rs->body = out;
        snprintf(rs->location, sizeof(rs->location), "%s/fastmig/v1/trajectories/%s", a->o->base_url,
                 fm_json_get_str(out, "id"));
}

static void trajectories_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        (void)rq;
        fm_error e = {0};
        json_object *out = fm_orch_trajectories_list(a->o, &e);
        if (!out)
                return db_problem(rs, &e);
        rs->status = 200;
        rs->body = out;
}

static void trajectory_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        (void)rq;
        fm_error e = {0};
        json_object *t = fm_orch_trajectory_get(a->o, ids[0], &e);
        if (!t)
                return e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no trajectory %s", ids[0]);
        rs->status = 200;
        rs->body = t;
}

static void trajectory_delete(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        fm_error e = {0};
        int r = fm_orch_trajectory_cancel(a->o, ids[0], &e);
        if (r == -ENOENT)
                return fm_http_problem(rs, 404, "%s", e.msg);
        if (r < 0)
                return mobility_problem(rs, r, &e);
        rs->status = 204;
        fm_orch_log(a->o, "info", NULL, "trajectory %s deleted by %s", ids[0], rq->client);
}

static void handovers_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_error e = {0};
        const char *svc = fm_http_query(rq, "service"), *tr = fm_http_query(rq, "trajectory"),
                   *st = fm_http_query(rq, "status");
        static const char *const statuses[] = {"planned", "started", "done", "failed", "skipped", "dropped", "cancelled"};
        bool known = !st;
        for (size_t i = 0; st && i < FM_ARRAY_SIZE(statuses); i++)
                known |= !strcmp(st, statuses[i]);
        if (!known)
                return fm_http_problem(rs, 400, "`status' is planned, started, done, failed, skipped, dropped or cancelled");
        if ((svc && !id_is_valid(svc)) || (tr && !id_is_valid(tr)))
                return fm_http_problem(rs, 400, "`service' and `trajectory' are ids");
        json_object *out = fm_orch_handovers_list(a->o, svc, tr, st, &e);
        if (!out)
                return db_problem(rs, &e);
        rs->status = 200;
        rs->body = out;
}

static void handover_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        (void)rq;
        fm_error e = {0};
        uint32_t id = 0;
        if (fm_parse_u32(ids[0], &id) < 0)
                return fm_http_problem(rs, 404, "no handover %s", ids[0]);
        json_object *h = fm_orch_handover_get(a->o, (int64_t)id, &e);
        if (!h)
                return e.code ? db_problem(rs, &e) : fm_http_problem(rs, 404, "no handover %s", ids[0]);
        rs->status = 200;
        rs->body = h;
}

/* ---- a host's images ---- */

static const fm_host *path_host(fm_api *a, const char *name, fm_http_resp *rs)
{
        const fm_host *h = fm_fleet_host(&a->o->fleet, name);
        if (!h)
                fm_http_problem(rs, 404, "no host `%s' in the fleet", name);
        return h;
}

/* An agent's failure as a problem: what it did not find is 404, what it is
 * using 409, anything else 502 (the orchestrator's peer failed). */
static void agent_problem(fm_http_resp *rs, const fm_host *h, const fm_error *e)
{
        int st = e->code == ENOENT ? 404 : e->code == EBUSY ? 409 : 502;
        fm_http_problem(rs, st, "%s: %s", h->name, e->msg);
}

static void images_list(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        (void)rq;
        const fm_host *h = path_host(a, ids[0], rs);
        json_object *rep = NULL;
        fm_error e = {0};
        if (!h)
                return;
        if (fm_plane_image_call(h, "image_list", NULL, &rep, 10000, &e) < 0)
                return agent_problem(rs, h, &e);
        json_object *out = json_object_new_object(), *im = fm_json_get(rep, "images");
        json_object_object_add(out, "host", json_object_new_string(h->name));
        json_object_object_add(out, "images", json_object_is_type(im, json_type_array) ? json_object_get(im) : json_object_new_array());
        json_object_object_add(out, "free_bytes", json_object_new_int64(fm_json_get_int(rep, "free_bytes")));
        json_object_put(rep);
        rs->status = 200;
        rs->body = out;
}

static void images_post(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        fm_error e = {0};
        const fm_host *to = path_host(a, ids[0], rs), *from = NULL;
        if (!to)
                return;
        if (fm_validate(rq->body, fm_api_image_placement, &e) < 0)
                return fm_http_problem(rs, 400, "%s", e.msg);
        const char *ref = fm_json_get_str(rq->body, "image"), *fname = fm_json_get_str(rq->body, "from");
        if (fname && !(from = fm_fleet_host(&a->o->fleet, fname)))
                return fm_http_problem(rs, 422, "`from': no host `%s' in the fleet", fname);
        if (from == to)
                return fm_http_problem(rs, 422, "`from' is the host the image is placed on");
        if (fm_plane_image_held(to, ref))
                return fm_http_problem(rs, 409, "%s holds image `%s' already", to->name, ref);
        for (int i = 0; !from && i < a->o->fleet.hosts; i++)
                if (&a->o->fleet.host[i] != to && fm_plane_image_held(&a->o->fleet.host[i], ref))
                        from = &a->o->fleet.host[i];
        if (!from || (fname && !fm_plane_image_held(from, ref)))
                return fm_http_problem(rs, 422, "%s%s holds no image `%s'", fname ? "host " : "no other host",
                                       fname ? fname : "", ref);
        json_object *rep = NULL;
        double t0 = fm_now_ms();
        int r = fm_plane_image_push(from, to, ref, false, &rep, &e);
        if (r < 0)
                return agent_problem(rs, from, &e);
        json_object *out = json_object_new_object(), *im = fm_json_get(rep, "image");
        json_object_object_add(out, "host", json_object_new_string(to->name));
        json_object_object_add(out, "from", json_object_new_string(from->name));
        json_object_object_add(out, "image", im ? json_object_get(im) : NULL);
        json_object_object_add(out, "bytes", json_object_new_int64(fm_json_get_int(rep, "bytes")));
        json_object_object_add(out, "bytes_base", json_object_new_int64(fm_json_get_int(rep, "bytes_base")));
        json_object_object_add(out, "ms", json_object_new_double(fm_now_ms() - t0));
        json_object_put(rep);
        rs->status = 201;
        rs->body = out;
        const char *digest = fm_json_get_str(im, "digest");
        snprintf(rs->location, sizeof(rs->location), "%s/fastmig/v1/hosts/%s/images/%s", a->o->base_url, to->name,
                 digest ? digest : ref);
        fm_orch_log(a->o, "info", NULL, "image %s placed on %s from %s by %s", ref, to->name, from->name, rq->client);
}

static void image_get(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        (void)rq;
        const fm_host *h = path_host(a, ids[0], rs);
        json_object *rep = NULL;
        fm_error e = {0};
        if (!h)
                return;
        if (fm_plane_image_call(h, "image_list", NULL, &rep, 10000, &e) < 0)
                return agent_problem(rs, h, &e);
        json_object *hit = fm_plane_image_in(rep, ids[1]);
        if (hit) {
                rs->status = 200;
                rs->body = json_object_get(hit);
        } else {
                fm_http_problem(rs, 404, "%s holds no image `%s'", h->name, ids[1]);
        }
        json_object_put(rep);
}

static void image_delete(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)
{
        const fm_host *h = path_host(a, ids[0], rs);
        json_object *rep = NULL;
        fm_error e = {0};
        if (!h)
                return;
        if (fm_plane_image_call(h, "image_rm", ids[1], &rep, 60000, &e) < 0)
                return agent_problem(rs, h, &e);
        json_object_put(rep);
        rs->status = 204;
        fm_orch_log(a->o, "info", NULL, "image %s removed from %s by %s", ids[1], h->name, rq->client);
}

/* ---- routing ---- */

typedef void (*handler_fn)(fm_api *, const fm_http_req *, fm_http_resp *, const char *const *ids);

typedef struct route {
        const char *path; /* a segment "{}" takes an id */
        const char *method;
        handler_fn fn;
        bool body;        /* takes a JSON body */
} route;

/* the collection handlers take no ids */
#define COLL(f)                                                                                                   \
        static void f##_(fm_api *a, const fm_http_req *rq, fm_http_resp *rs, const char *const *ids)                \
        {                                                                                                         \
                (void)ids;                                                                                        \
                f(a, rq, rs);                                                                                     \
        }
COLL(services_list)
COLL(services_post)
COLL(subscriptions_list)
COLL(subscriptions_post)
COLL(adjacent)
COLL(hosts_list)
COLL(migrations_list)
COLL(migrations_post)
COLL(users_list)
COLL(cell_change)
COLL(position_post)
COLL(rnis_post)
COLL(coverage_get)
COLL(coverage_put)
COLL(trajectories_post)
COLL(trajectories_list)
COLL(handovers_list)

static const route routes[] = {
        {"/amsi/v1/app_mobility_services", "GET", services_list_, false},
        {"/amsi/v1/app_mobility_services", "POST", services_post_, true},
        {"/amsi/v1/app_mobility_services/{}", "GET", service_get, false},
        {"/amsi/v1/app_mobility_services/{}", "PUT", service_put, true},
        {"/amsi/v1/app_mobility_services/{}", "DELETE", service_delete, false},
        {"/amsi/v1/subscriptions", "GET", subscriptions_list_, false},
        {"/amsi/v1/subscriptions", "POST", subscriptions_post_, true},
        {"/amsi/v1/subscriptions/{}", "GET", subscription_get, false},
        {"/amsi/v1/subscriptions/{}", "PUT", subscription_put, true},
        {"/amsi/v1/subscriptions/{}", "DELETE", subscription_delete, false},
        {"/amsi/v1/queries/adjacent_app_instances", "GET", adjacent_, false},
        {"/fastmig/v1/hosts", "GET", hosts_list_, false},
        {"/fastmig/v1/hosts/{}/images", "GET", images_list, false},
        {"/fastmig/v1/hosts/{}/images", "POST", images_post, true},
        {"/fastmig/v1/hosts/{}/images/{}", "GET", image_get, false},
        {"/fastmig/v1/hosts/{}/images/{}", "DELETE", image_delete, false},
        {"/fastmig/v1/migrations", "GET", migrations_list_, false},
        {"/fastmig/v1/migrations", "POST", migrations_post_, true},
        {"/fastmig/v1/migrations/{}", "GET", migration_get, false},
        {"/fastmig/v1/users", "GET", users_list_, false},
        {"/fastmig/v1/users/cell_changes", "POST", cell_change_, true},
        {"/fastmig/v1/users/positions", "POST", position_post_, true},
        {"/fastmig/v1/rnis/notifications", "POST", rnis_post_, true},
        {"/fastmig/v1/coverage", "GET", coverage_get_, false},
        {"/fastmig/v1/coverage", "PUT", coverage_put_, true},
        {"/fastmig/v1/trajectories", "GET", trajectories_list_, false},
        {"/fastmig/v1/trajectories", "POST", trajectories_post_, true},
        {"/fastmig/v1/trajectories/{}", "GET", trajectory_get, false},
        {"/fastmig/v1/trajectories/{}", "DELETE", trajectory_delete, false},
        {"/fastmig/v1/handovers", "GET", handovers_list_, false},
        {"/fastmig/v1/handovers/{}", "GET", handover_get, false},
};

#define ROUTE_IDS 2

/* path matches pattern segment by segment; a "{}" segment takes a valid id
 * into ids */
static bool match(const char *pattern, const char *path, char ids[ROUTE_IDS][FM_API_ID_MAX + 1])
{
        int n = 0;
        while (*pattern && *path) {
                if (*pattern != '/' || *path != '/')
                        return false;
                pattern++;
                path++;
                size_t pl = strcspn(pattern, "/"), ql = strcspn(path, "/");
                if (pl == 2 && !strncmp(pattern, "{}", 2)) {
                        if (!ql || ql > FM_API_ID_MAX || n == ROUTE_IDS)
                                return false;
                        memcpy(ids[n], path, ql);
                        ids[n][ql] = '\0';
                        if (!id_is_valid(ids[n++]))
                                return false;
                } else if (pl != ql || strncmp(pattern, path, pl)) {
                        return false;
                }
                pattern += pl;
                path += ql;
        }
        return !*pattern && !*path;
}

void fm_api_handle(void *data, const fm_http_req *rq, fm_http_resp *rs)
{
        fm_api *a = data;
        char ids[ROUTE_IDS][FM_API_ID_MAX + 1] = {""}, allow[64] = "";
        const route *hit = NULL;
        for (size_t i = 0; i < FM_ARRAY_SIZE(routes); i++) {
                char x[ROUTE_IDS][FM_API_ID_MAX + 1] = {""};
                if (!match(routes[i].path, rq->path, x))
                        continue;
                size_t n = strlen(allow);
                snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", routes[i].method);
                if (!strcmp(routes[i].method, rq->method)) {
                        hit = &routes[i];
                        memcpy(ids, x, sizeof(ids));
                }
        }
        if (!hit && allow[0]) {
                snprintf(rs->allow, sizeof(rs->allow), "%s", allow);
                return fm_http_problem(rs, 405, "%s takes %s, not %.16s", rq->path, allow, rq->method);
        }
        if (!hit)
                return fm_http_problem(rs, 404, "no resource %.200s", rq->path);
        if (hit->body && !rq->body)
                return fm_http_problem(rs, 400, "%s %s takes a JSON object as its body", rq->method, hit->path);
        if (!hit->body && rq->body)
                return fm_http_problem(rs, 400, "%s %s takes no body", rq->method, hit->path);
        const char *const idv[ROUTE_IDS] = {ids[0], ids[1]};
        hit->fn(a, rq, rs, idv);
}
