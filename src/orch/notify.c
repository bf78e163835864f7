/* Notifications to subscribers: each goes into the outbox (the store) first,
 * so a restart loses none; one thread delivers them with libcurl, in order
 * per subscription, retrying with a doubling backoff (1 s to 60 s) until
 * delivered, the subscription ends, or OUTBOX_GIVE_UP_MS pass. An expired
 * subscription gets an ExpiryNotification and is removed. */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "orch/orch.h"
#include "proto/proto.h"

#define OUTBOX_GIVE_UP_MS (15 * 60 * 1000)
#define POST_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 2000

static json_object *timestamp(int64_t ms)
{
        json_object *t = json_object_new_object();
        json_object_object_add(t, "seconds", json_object_new_int64(ms / 1000));
        json_object_object_add(t, "nanoSeconds", json_object_new_int64((ms % 1000) * 1000000));
        return t;
}

static json_object *href(const char *url)
{
        json_object *h = json_object_new_object();
        json_object_object_add(h, "href", json_object_new_string(url));
        return h;
}

/* kind: mobility and test go to their subscription's callback as it is
 * when sent; an expiry notice to callback (its subscription is gone) */
static int enqueue(fm_orch *o, const char *sub, const char *kind, const char *callback, json_object *body,
                   int64_t expires, fm_error *e)
{
        int64_t now = fm_orch_now_ms();
        int r = fm_store_run(o->store, e,
                             "INSERT INTO outbox (subscription, kind, callback, body, created, next_at, expires) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             "ssssiii", sub, kind, callback,
                             json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                             now, now, expires);
        if (r < 0)
                return fm_err_wrap(e, "queueing a notification for subscription %s", sub);
        pthread_mutex_lock(&o->lock);
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
        return 0;
}

/* Whether associate id a (an AssociateId) is in array list. */
static bool has_associate(json_object *list, json_object *a)
{
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *x = json_object_array_get_idx(list, i);
                const char *t1 = fm_json_get_str(x, "type"), *v1 = fm_json_get_str(x, "value"), *t2 = fm_json_get_str(a, "type"), *v2 = fm_json_get_str(a, "value");
                if (t1 && t2 && v1 && v2 && !strcmp(t1, t2) && !strcmp(v1, v2))
                        return true;
        }
        return false;
}

int fm_orch_notify_mobility(fm_orch *o, const char *service_id, const char *status, const char *target_host,
                            fm_error *e)
{
        json_object *svc = fm_store_rows(o->store, e, "SELECT body AS j_body FROM services WHERE id = ?", "s", service_id);
        if (!svc)
                return -EIO;
        json_object *row = json_object_array_get_idx(svc, 0), *body = NULL;
        if (!row || !json_object_object_get_ex(row, "body", &body) || !body) { /* deregistered: no one to tell */
                json_object_put(svc);
                return 0;
        }
        json_object *consumer = NULL, *devices = NULL;
        json_object_object_get_ex(body, "serviceConsumerId", &consumer);
        json_object_object_get_ex(body, "deviceInformation", &devices);
        const char *app = fm_json_get_str(consumer, "appInstanceId");
        json_object *assoc = json_object_new_array();
        for (size_t i = 0; devices && i < json_object_array_length(devices); i++) {
                json_object *a = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(devices, i), "associateId", &a))
                        json_object_array_add(assoc, json_object_get(a));
        }
        int64_t now = fm_orch_now_ms();
        json_object *subs = fm_store_rows(o->store, e, "SELECT id, expiry, body AS j_body FROM subscriptions", "");
        int r = subs ? 0 : -EIO;
        for (size_t i = 0; r == 0 && subs && i < json_object_array_length(subs); i++) {
                json_object *s = json_object_array_get_idx(subs, i), *sb = NULL, *fc = NULL, *x = NULL, *exp = NULL;
                json_object_object_get_ex(s, "body", &sb);
                json_object_object_get_ex(s, "expiry", &exp);
                int64_t expiry = exp ? json_object_get_int64(exp) : 0;
                if (!sb || (expiry && expiry <= now))
                        continue;
                json_object_object_get_ex(sb, "filterCriteria", &fc);
                const char *fapp = fm_json_get_str(fc, "appInstanceId");
                if (fapp && (!app || strcmp(fapp, app)))
                        continue;
                bool match = true;
                if (fc && json_object_object_get_ex(fc, "associateId", &x) && json_object_array_length(x)) {
                        match = false;
                        for (size_t k = 0; k < json_object_array_length(assoc) && !match; k++)
                                match = has_associate(x, json_object_array_get_idx(assoc, k));
                }
                if (match && fc && json_object_object_get_ex(fc, "mobilityStatus", &x) && json_object_array_length(x)) {
                        match = false;
                        for (size_t k = 0; k < json_object_array_length(x) && !match; k++)
                                match = !strcmp(json_object_get_string(json_object_array_get_idx(x, k)), status);
                } else if (match && strcmp(status, "INTERHOST_MOVEOUT_TRIGGERED")) {
                        match = false; /* without mobilityStatus, MEC 021 means TRIGGERED only */
                }
                if (!match)
                        continue;
                char url[512];
                json_object *n = json_object_new_object(), *target = json_object_new_object(), *links = json_object_new_object();
                json_object_object_add(n, "notificationType", json_object_new_string("MobilityProcedureNotification"));
                json_object_object_add(n, "timeStamp", timestamp(now));
                json_object_object_add(n, "associateId", json_object_get(assoc));
                json_object_object_add(n, "mobilityStatus", json_object_new_string(status));
                json_object_object_add(target, "appInstanceId", json_object_new_string(app ? app : service_id));
                if (target_host) {
                        json_object *ci = json_object_new_object(), *ips = json_object_new_array(), *ip = json_object_new_object();
                        const fm_host *h = fm_fleet_host(&o->fleet, target_host);
                        json_object_object_add(ip, "host", json_object_new_string(h ? h->addr : target_host));
                        json_object_object_add(ip, "port", json_object_new_int(h ? h->port : 0));
                        json_object_array_add(ips, ip);
                        json_object_object_add(ci, "ipAddresses", ips);
                        json_object_object_add(target, "commInterface", ci);
                }
                json_object_object_add(n, "targetAppInfo", target);
                snprintf(url, sizeof(url), "%s/amsi/v1/subscriptions/%s", o->base_url, fm_json_get_str(s, "id"));
                json_object_object_add(links, "subscription", href(url));
                json_object_object_add(n, "_links", links);
                r = enqueue(o, fm_json_get_str(s, "id"), "mobility", NULL, n, expiry, e);
                json_object_put(n);
        }
        json_object_put(subs);
        json_object_put(assoc);
        json_object_put(svc);
        return r;
}

void fm_orch_notify_test(fm_orch *o, const char *sub_id)
{
        char url[512];
        snprintf(url, sizeof(url), "%s/amsi/v1/subscriptions/%s", o->base_url, sub_id);
        json_object *n = json_object_new_object(), *links = json_object_new_object();
        json_object_object_add(n, "notificationType", json_object_new_string("TestNotification"));
        json_object_object_add(links, "subscription", href(url));
        json_object_object_add(n, "_links", links);
        fm_error e = {0};
        if (enqueue(o, sub_id, "test", NULL, n, 0, &e) < 0)
                fm_orch_log(o, "error", NULL, "%s", e.msg);
        json_object_put(n);
}

static size_t discard(char *p, size_t s, size_t n, void *d)
{
        (void)p;
        (void)d;
        return s * n;
}

/* POSTs body to url: 0 on a 2xx answer, else -1 with the reason in why. */
static int post(const char *url, const char *body, char *why, size_t wn)
{
        CURL *c = curl_easy_init();
        if (!c) {
                snprintf(why, wn, "no curl handle");
                return -1;
        }
        struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)POST_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(c);
        if (rc != CURLE_OK) {
                snprintf(why, wn, "%s", curl_easy_strerror(rc));
                return -1;
        }
        if (status < 200 || status > 299) {
                snprintf(why, wn, "HTTP %ld", status);
                return -1;
        }
        return 0;
}

/* Subscriptions past their expiryDeadline: each is removed and its
 * ExpiryNotification queued in one step (a PUT that moved the deadline
 * first keeps it). */
static void expire(fm_orch *o)
{
        int64_t now = fm_orch_now_ms();
        json_object *subs = fm_store_rows(o->store, NULL,
                                          "SELECT id, expiry, body AS j_body FROM subscriptions WHERE expiry > 0 AND expiry <= ?",
                                          "i", now);
        for (size_t i = 0; subs && i < json_object_array_length(subs); i++) {
                json_object *s = json_object_array_get_idx(subs, i), *sb = NULL, *exp = NULL;
                json_object_object_get_ex(s, "body", &sb);
                json_object_object_get_ex(s, "expiry", &exp);
                const char *id = fm_json_get_str(s, "id");
                char url[512];
                snprintf(url, sizeof(url), "%s/amsi/v1/subscriptions/%s", o->base_url, id);
                json_object *n = json_object_new_object(), *links = json_object_new_object();
                json_object_object_add(n, "notificationType", json_object_new_string("ExpiryNotification"));
                json_object_object_add(n, "timeStamp", timestamp(now));
                json_object_object_add(links, "subscription", href(url));
                json_object_object_add(n, "_links", links);
                json_object_object_add(n, "expiryDeadline", timestamp(json_object_get_int64(exp)));
                fm_error e = {0};
                if (fm_store_begin(o->store, &e) == 0) {
                        int gone = fm_store_run(o->store, &e,
                                                "DELETE FROM subscriptions WHERE id = ? AND expiry > 0 AND expiry <= ?",
                                                "si", id, now);
                        if (gone == 1 && fm_store_run(o->store, &e, "DELETE FROM outbox WHERE subscription = ?", "s", id) < 0)
                                gone = -EIO;
                        if (gone == 1 && enqueue(o, id, "expiry", fm_json_get_str(sb, "callbackReference"), n,
                                                 now + OUTBOX_GIVE_UP_MS, &e) < 0)
                                gone = -EIO;
                        if (fm_store_end(o->store, gone >= 0, &e) == 0 && gone == 1)
                                fm_orch_log(o, "info", NULL, "subscription %s expired", id);
                        else if (gone < 0)
                                fm_orch_log(o, "error", NULL, "subscription %s not expired yet: %s", id, e.msg);
                }
                json_object_put(n);
        }
        json_object_put(subs);
}

/* Registrations past their expiryTime go, unless a migration of theirs
 * is under way (they go after it). */
static void expire_services(fm_orch *o)
{
        int n = fm_store_run(o->store, NULL,
                             "DELETE FROM services WHERE expires > 0 AND expires <= ? AND id NOT IN "
                             "(SELECT service FROM migrations WHERE status IN ('queued', 'running') AND service IS NOT NULL)",
                             "i", fm_orch_now_ms());
        if (n > 0)
                fm_orch_log(o, "info", NULL, "%d registration(s) expired", n);
}

void fm_orch_expire_services(fm_orch *o)
{
        expire_services(o);
}

/* One pass: the first due notification of each subscription, to its
 * subscription's callback as it is now. Returns how many were sent or
 * dropped (0: nothing to do now). */
static int deliver(fm_orch *o)
{
        int64_t now = fm_orch_now_ms();
        json_object *due = fm_store_rows(o->store, NULL,
                                         "SELECT x.id, x.subscription, x.kind, x.body, x.attempts, x.created, x.expires, "
                                         "coalesce(x.callback, json_extract(s.body, '$.callbackReference')) AS url, "
                                         "s.id AS live FROM outbox x LEFT JOIN subscriptions s ON s.id = x.subscription "
                                         "WHERE x.id = (SELECT min(id) FROM outbox WHERE subscription = x.subscription) "
                                         "AND x.next_at <= ? ORDER BY x.id",
                                         "i", now);
        int done = 0;
        for (size_t i = 0; due && i < json_object_array_length(due); i++) {
                json_object *d = json_object_array_get_idx(due, i), *v = NULL;
                int64_t id = 0, attempts = 0, expires = 0, created = now;
                if (json_object_object_get_ex(d, "id", &v))
                        id = json_object_get_int64(v);
                if (json_object_object_get_ex(d, "attempts", &v))
                        attempts = json_object_get_int64(v);
                if (json_object_object_get_ex(d, "expires", &v))
                        expires = json_object_get_int64(v);
                if (json_object_object_get_ex(d, "created", &v))
                        created = json_object_get_int64(v);
                const char *url = fm_json_get_str(d, "url"), *kind = fm_json_get_str(d, "kind");
                /* a notice for a subscription that ended goes with it */
                bool gone = !fm_json_get_str(d, "live") && kind && strcmp(kind, "expiry");
                char why[256] = "";
                if (!gone && url && post(url, fm_json_get_str(d, "body"), why, sizeof(why)) == 0) {
                        fm_store_run(o->store, NULL, "DELETE FROM outbox WHERE id = ?", "i", id);
                        fm_orch_log(o, "info", NULL, "notification %lld (%s) delivered to %s", (long long)id, kind, url);
                        done++;
                        continue;
                }
                int64_t wait = 1000LL << (attempts < 6 ? attempts : 6);
                if (wait > 60000)
                        wait = 60000;
                if (gone || !url || (expires && now + wait > expires) || now + wait - created > OUTBOX_GIVE_UP_MS) {
                        fm_store_run(o->store, NULL, "DELETE FROM outbox WHERE id = ?", "i", id);
                        fm_orch_log(o, "warning", NULL, "notification %lld to %s dropped after %lld attempt(s): %s",
                                    (long long)id, url ? url : "?", (long long)attempts + !gone,
                                    gone ? "its subscription ended" : !url ? "no callback" : why);
                        done++;
                        continue;
                }
                fm_store_run(o->store, NULL, "UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE id = ?", "ii",
                             now + wait, id);
                fm_orch_log(o, "warning", NULL, "notification %lld to %s failed (%s), retried in %lld ms", (long long)id,
                            url, why, (long long)wait);
        }
        json_object_put(due);
        return done;
}

static void *notifier(void *arg)
{
        fm_orch *o = arg;
        pthread_mutex_lock(&o->lock);
        while (!o->notifier_stopping) {
                pthread_mutex_unlock(&o->lock);
                expire(o);
                expire_services(o);
                int n = deliver(o);
                pthread_mutex_lock(&o->lock);
                if (n > 0 || o->notifier_stopping)
                        continue;
                fm_orch_wait(o, 250);
        }
        pthread_mutex_unlock(&o->lock);
        return NULL;
}

int fm_orch_notifier_start(fm_orch *o, fm_error *e)
{
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return fm_err(e, EIO, "libcurl did not initialise");
        int r = pthread_create(&o->notifier, NULL, notifier, o);
        return r ? fm_err(e, r, "starting the notifier: %s", strerror(r)) : 0;
}

void fm_orch_notifier_stop(fm_orch *o)
{
        pthread_mutex_lock(&o->lock);
        o->notifier_stopping = true;
        pthread_cond_broadcast(&o->changed);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->notifier, NULL);
        curl_global_cleanup();
}
