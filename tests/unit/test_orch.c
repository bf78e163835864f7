/* The orchestrator's pure parts and its database: request bodies checked
 * against their tables (the first problem named by its path), a
 * migration's options through JSON and back, the store's schema, WAL mode
 * and constraints, tokens stored only as their hash. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orch/http.h"
#include "orch/schema.h"
#include "orch/store.h"
#include "plane/options.h"
#include "proto/proto.h"
#include "tap.h"

/* the problem with body text against table t, NULL when accepted */
static const char *problem(const fm_vfield *t, const char *text)
{
        static fm_error e;
        memset(&e, 0, sizeof(e));
        json_object *o = NULL;
        int r = fm_msg_parse(text, strlen(text), &o, &e);
        if (r == 0)
                r = fm_validate(o, t, &e);
        if (r == 0 && t == fm_api_registration)
                r = fm_api_registration_check(o, &e);
        if (r == 0 && t == fm_api_subscription)
                r = fm_api_subscription_check(o, 1800000000000, &e);
        json_object_put(o);
        printf("# %s\n", r < 0 ? e.msg : "(accepted)");
        return r < 0 ? e.msg : NULL;
}

#define REG_HEAD "{\"serviceConsumerId\":{\"appInstanceId\":\"a1\"},"
#define DEV(type, value, level) \
        "\"deviceInformation\":[{\"associateId\":{\"type\":\"" type "\",\"value\":\"" value "\"},\"appMobilityServiceLevel\":\"" level "\"}],"
#define EXT(x) "\"fastmig\":{\"container\":\"svc\"" x "}}"
#define SUB(cb, x) "{\"subscriptionType\":\"MobilityProcedureSubscription\",\"callbackReference\":\"" cb "\",\"filterCriteria\":{}" x "}"

static void bodies(void)
{
        const fm_vfield *R = fm_api_registration, *S = fm_api_subscription, *M = fm_api_migration;
        ok(!problem(R, REG_HEAD DEV("UE_IPv4_ADDRESS", "10.0.0.1", "APP_MOBILITY_NOT_ALLOWED") EXT(",\"downtimeBudgetMs\":5")),
           "a full registration is accepted");
        ok(!problem(R, "{\"serviceConsumerId\":{\"mepId\":\"m\"}," EXT("")), "a registration without devices is accepted");
        const char *p;
        ok((p = problem(R, REG_HEAD EXT(",\"colour\":1"))) && strstr(p, "`fastmig.colour' is not a known field"),
           "an unknown nested field is named by its path");
        ok((p = problem(R, REG_HEAD DEV("UE_IPv4", "10.0.0.1", "APP_MOBILITY_NOT_ALLOWED") EXT(""))) &&
                   strstr(p, "`deviceInformation[0].associateId.type' is one of UE_IPv4_ADDRESS"),
           "a value outside the spec's set is named with the set");
        ok((p = problem(R, REG_HEAD DEV("UE_IPv4_ADDRESS", "10.0.0.300", "APP_MOBILITY_NOT_ALLOWED") EXT(""))) &&
                   strstr(p, "not an IPv4 address"),
           "a UE_IPv4_ADDRESS that is no address is refused");
        ok((p = problem(R, REG_HEAD EXT(",\"downtimeBudgetMs\":\"1\""))) && strstr(p, "must be a number"),
           "a string for a number is refused");
        ok((p = problem(R, REG_HEAD EXT(",\"downtimeBudgetMs\":0"))) && strstr(p, "takes 1 to 600000"),
           "a number out of range is refused with the range");
        ok((p = problem(R, REG_HEAD "\"expiryTime\":99999999999999999999," EXT(""))) != NULL,
           "an integer past int64 is refused");
        ok((p = problem(R, REG_HEAD "\"expiryTime\":1.5," EXT(""))) && strstr(p, "must be an integer"),
           "a fraction for an integer is refused");
        ok((p = problem(R, "{\"fastmig\":{\"container\":\"svc\"}}")) && strstr(p, "`serviceConsumerId' is missing"),
           "a missing required field is named");
        ok((p = problem(R, "{\"serviceConsumerId\":{}," EXT(""))) && strstr(p, "exactly one of"),
           "serviceConsumerId without an id is refused");
        ok((p = problem(R, "{\"serviceConsumerId\":{\"appInstanceId\":\"\"}," EXT(""))) && strstr(p, "is an id of"),
           "an empty appInstanceId is refused");
        ok((p = problem(R, "{\"serviceConsumerId\":{\"appInstanceId\":\"a/b\"}," EXT(""))) && strstr(p, "not `a/b'"),
           "an appInstanceId with a slash is refused, quoted");
        ok((p = problem(R, REG_HEAD DEV("NATED_IP_ADDRESS", "host", "APP_MOBILITY_NOT_ALLOWED") EXT(""))) &&
                   strstr(p, "not an IP address"),
           "a NATED_IP_ADDRESS that is no address is refused");
        ok((p = problem(R, REG_HEAD "\"fastmig\":{\"container\":\"../etc\"}}")) && strstr(p, "not a container name"),
           "a container name with a path in it is refused");
        ok((p = problem(R, REG_HEAD "\"fastmig\":{\"container\":\"a\\u0000b\"}}")) && strstr(p, "NUL"),
           "a string with a NUL byte is refused");
        ok((p = problem(R, REG_HEAD "\"deviceInformation\":[null]," EXT(""))) && strstr(p, "is null"), "a null item is refused");
        char many[4096] = REG_HEAD "\"deviceInformation\":[";
        for (int i = 0; i < 17; i++)
                strcat(many, "{\"associateId\":{\"type\":\"GTP_TEID\",\"value\":\"1\"},\"appMobilityServiceLevel\":"
                             "\"APP_MOBILITY_NOT_ALLOWED\"},");
        strcpy(many + strlen(many) - 1, "]," EXT(""));
        ok((p = problem(R, many)) && strstr(p, "has 17 items, at most 16"), "too many items are refused");
        ok(problem(R, "[1]") != NULL, "a body that is not an object is refused");

        ok(!problem(S, SUB("https://h.example:8443/cb?x=1", "")), "a subscription is accepted");
        ok((p = problem(S, SUB("file:///etc/passwd", ""))) && strstr(p, "http:// or https://"), "a file: callback is refused");
        ok((p = problem(S, SUB("http://a b", ""))) && strstr(p, "characters a URI does not"), "a space in the callback is refused");
        ok((p = problem(S, SUB("http://h/cb", ",\"expiryDeadline\":{\"seconds\":1000,\"nanoSeconds\":0}"))) &&
                   strstr(p, "has passed"),
           "an expiry deadline in the past is refused");
        ok((p = problem(S, SUB("http://h/cb", ",\"websockNotifConfig\":{}"))) && strstr(p, "no websockets"),
           "websocket notifications are refused with the reason");

        ok(!problem(M, "{\"container\":\"svc\",\"to\":\"mec2\",\"options\":{\"mode\":\"stopcopy\",\"max_rounds\":3}}"),
           "a migration request is accepted");
        ok((p = problem(M, "{\"container\":\"svc\",\"to\":\"mec2\",\"options\":{\"restore\":\"later\"}}")) &&
                   strstr(p, "`options.restore' is one of auto, lazy, eager"),
           "an option outside its set is named");
        ok((p = problem(M, "{\"container\":\"svc\"}")) && strstr(p, "`to' is missing"), "a migration without a target is refused");

        /* following users */
        const fm_vfield *P = fm_api_position, *TR = fm_api_trajectory, *RN = fm_api_cell_change_notification;
#define USER "\"associateId\":{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.0.0.1\"}"
        ok(!problem(P, "{" USER ",\"x\":1.5,\"y\":-2}"), "a position is accepted");
        ok((p = problem(P, "{" USER ",\"x\":1.5}")) && strstr(p, "`y' is missing"), "a position without y is refused");
        ok((p = problem(P, "{" USER ",\"x\":1e12,\"y\":0}")) && strstr(p, "`x'"), "a position far beyond the map is refused");
        ok(!problem(TR, "{\"appMobilityServiceId\":\"s1\",\"format\":\"fcd\",\"vehicle\":\"car0\",\"text\":\"<fcd-export/>\"}"),
           "a trajectory as an fcd text is accepted by its table");
        ok((p = problem(TR, "{\"appMobilityServiceId\":\"s1\",\"points\":[{\"t\":0,\"z\":1}]}")) && strstr(p, "points[0].z"),
           "a trajectory's point is checked field by field");
        ok((p = problem(TR, "{\"appMobilityServiceId\":\"s1\",\"format\":\"gpx\",\"text\":\"\"}")) && strstr(p, "format"),
           "a trace format not known");
#define RNIS(st) "{\"notificationType\":\"CellChangeNotification\",\"associateId\":[{\"type\":\"UE_IPv4_ADDRESS\",\"value\":\"10.0.0.1\"}]," \
                 "\"srcEcgi\":{\"cellId\":\"c1\",\"plmn\":{\"mcc\":\"001\",\"mnc\":\"01\"}},\"trgEcgi\":[{\"cellId\":\"c2\"}],\"hoStatus\":" st "}"
        ok(!problem(RN, RNIS("1")), "a CellChangeNotification (MEC 012) is accepted");
        ok((p = problem(RN, RNIS("6"))) && strstr(p, "hoStatus"), "a hoStatus beyond 5 is refused");
        ok((p = problem(RN, RNIS("\"IN_PREPARATION\""))) && strstr(p, "hoStatus"), "a hoStatus name, not normalized, is refused");
        json_object *n = json_tokener_parse(RNIS("\"CANCELLED\""));
        fm_api_ho_status_normalize(n);
        fm_error ne = {0};
        ok(fm_validate(n, RN, &ne) == 0 && json_object_get_int(json_object_object_get(n, "hoStatus")) == 5,
           "... and becomes its number once normalized (%s)", ne.msg);
        json_object_put(n);
}

static void options(void)
{
        fm_migrate_opts o = {.mode = "stopcopy", .restore = "eager", .compress = "none", .max_rounds = 5,
                             .dirty_threshold = 77, .min_shrink = 0.5, .images_lead_ms = -1, .storage_latency_ms = 2.5,
                             .stay_shared = true, .probe = false, .probe_interval_us = 500};
        json_object *j = fm_migrate_opts_to_json(&o);
        const char *t = json_object_to_json_string(j);
        printf("# %s\n", t);
        fm_migrate_opts b = {0};
        fm_error e = {0};
        ok(fm_migrate_opts_from_json(j, &b, &e) == 0, "options read back (%s)", e.msg);
        ok(!strcmp(b.mode, "stopcopy") && !strcmp(b.restore, "eager") && !strcmp(b.compress, "none") && !b.dump &&
                   b.max_rounds == 5 && b.dirty_threshold == 77 && b.min_shrink == 0.5 && b.images_lead_ms == -1 &&
                   b.storage_latency_ms == 2.5 && b.stay_shared && !b.probe && b.probe_interval_us == 500,
           "every option is what was written");
        json_object_put(j);
        fm_migrate_opts d = {.probe = true};
        j = fm_migrate_opts_to_json(&d);
        ok(json_object_object_length(j) == 0, "the defaults write nothing");
        json_object_put(j);
}

static void store(void)
{
        char dir[] = "/tmp/fastmig-test-orch-XXXXXX";
        ok(mkdtemp(dir) != NULL, "a directory for the database");
        char db[128], wal[140];
        snprintf(db, sizeof(db), "%s/orch.db", dir);
        snprintf(wal, sizeof(wal), "%s-wal", db);
        fm_store *s = NULL;
        fm_error e = {0};
        ok(fm_store_open(db, &s, &e) == 0, "a new database opens (%s)", e.msg);
        json_object *v = fm_store_rows(s, &e, "PRAGMA user_version", "");
        ok(v && json_object_get_int(json_object_object_get(json_object_array_get_idx(v, 0), "user_version")) == FM_STORE_SCHEMA,
           "its schema is version %d", FM_STORE_SCHEMA);
        json_object_put(v);
        ok(access(wal, F_OK) == 0, "it is in WAL mode (%s exists)", wal);
        char tok[2 * FM_HTTP_TOKEN_BYTES + 1];
        ok(fm_http_token_create(s, "alice", false, tok, &e) == 0 && strlen(tok) == 64, "a token for alice");
        ok(fm_http_token_create(s, "alice", false, tok, &e) == -EEXIST, "a second one needs --replace (%s)", e.msg);
        ok(fm_http_token_create(s, "../x", false, tok, &e) == -EINVAL, "a client name is checked (%s)", e.msg);
        char tok2[2 * FM_HTTP_TOKEN_BYTES + 1];
        ok(fm_http_token_create(s, "alice", true, tok2, &e) == 0 && strcmp(tok, tok2), "a replaced token is new");
        v = fm_store_rows(s, &e, "SELECT token_sha256 FROM clients WHERE name = 'alice'", "");
        const char *h = json_object_get_string(json_object_object_get(json_object_array_get_idx(v, 0), "token_sha256"));
        unsigned char md[32];
        unsigned int n = 0;
        EVP_Digest(tok2, strlen(tok2), md, &n, EVP_sha256(), NULL);
        char hex[65];
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        ok(h && !strcmp(h, hex) && strcmp(h, tok2), "the database holds the token's SHA-256, not the token");
        json_object_put(v);
        ok(fm_store_run(s, &e, "INSERT INTO services (id, container, body, created) VALUES (?, ?, ?, ?)", "sssi", "s1",
                        "svc", "{\"a\":[1]}", (int64_t)1) == 1,
           "a service is stored");
        ok(fm_store_run(s, &e, "INSERT INTO services (id, container, body, created) VALUES (?, ?, ?, ?)", "sssi", "s2",
                        "svc", "{}", (int64_t)1) == -EEXIST,
           "a container is registered once (%s)", e.msg);
        v = fm_store_rows(s, &e, "SELECT id, body AS j_body FROM services", "");
        json_object *body = json_object_object_get(json_object_array_get_idx(v, 0), "body");
        ok(json_object_is_type(body, json_type_object) && json_object_array_length(json_object_object_get(body, "a")) == 1,
           "a j_ column comes back parsed");
        json_object_put(v);
        ok(fm_store_rows(s, &e, "SELECT nothing FROM nowhere", "") == NULL && e.code, "a bad query says why (%s)", e.msg);
        fm_store_close(s);
        ok(fm_store_open(db, &s, &e) == 0, "it opens again");
        v = fm_store_rows(s, &e, "SELECT count(*) AS n FROM services", "");
        ok(v && json_object_get_int(json_object_object_get(json_object_array_get_idx(v, 0), "n")) == 1, "with what it held");
        json_object_put(v);
        /* a database of schema 1 (before following users), with a service and
         * a user's cell, brought to the present schema */
        char old[140];
        snprintf(old, sizeof(old), "%s/old.db", dir);
        fm_store *o1 = NULL;
        ok(fm_store_open_at(old, 1, &o1, &e) == 0 &&
                   fm_store_run(o1, &e, "INSERT INTO users (type, value, cell, since) VALUES ('UE_IPv4_ADDRESS', '10.0.0.1', 'c1', 5)", "") == 1,
           "a schema 1 database with a user's cell (%s)", e.msg);
        ok(fm_store_rows(o1, &e, "SELECT * FROM handovers", "") == NULL, "... which has no handovers table");
        memset(&e, 0, sizeof(e));
        fm_store_close(o1);
        ok(fm_store_open(old, &o1, &e) == 0, "it opens with this program (%s)", e.msg);
        v = o1 ? fm_store_rows(o1, &e, "SELECT cell, x FROM users", "") : NULL;
        ok(v && json_object_array_length(v) == 1 && !strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(v, 0), "cell")), "c1"),
           "its user's cell kept, a position column added");
        json_object_put(v);
        v = o1 ? fm_store_rows(o1, &e, "SELECT count(*) AS n FROM handovers", "") : NULL;
        ok(v != NULL, "and the handovers table made (%s)", e.msg);
        json_object_put(v);
        if (o1)
                fm_store_close(o1);
        fm_store_run(s, &e, "PRAGMA user_version = 99", "");
        fm_store_close(s);
        memset(&e, 0, sizeof(e));
        ok(fm_store_open(db, &s, &e) < 0 && strstr(e.msg, "newer than this program"), "a newer schema is refused (%s)", e.msg);
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ok(system(cmd) == 0, "cleaned up");
}

int main(void)
{
        bodies();
        options();
        store();
        return tap_done();
}
