/* The API's request bodies: their tables and the rules beyond them. Pure
 * (no I/O), so the fuzzer links this alone (tests/fuzz). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "orch/schema.h"
#include "mobility/trace.h"
#include "plane/options.h"
#include "proto/proto.h"

/* ---- request tables ---- */

static const char *const associate_types[] = {"UE_IPv4_ADDRESS", "UE_IPV6_ADDRESS", "NATED_IP_ADDRESS", "GTP_TEID", NULL};
static const fm_vfield associate_id[] = {
        {"type", FM_V_STR, true, .oneof = associate_types},
        {"value", FM_V_STR, true, .max = 64},
        {NULL},
};
static const char *const service_levels[] = {"APP_MOBILITY_NOT_ALLOWED", "APP_MOBILITY_WITH_CONFIRMATION",
                                             "APP_MOBILITY_WITHOUT_CONFIRMATION", NULL};
static const char *const transfer_states[] = {"NOT_TRANSFERRED", "USER_CONTEXT_TRANSFER_COMPLETED", NULL};
static const fm_vfield device_information[] = {
        {"associateId", FM_V_OBJ, true, .sub = associate_id},
        {"appMobilityServiceLevel", FM_V_STR, true, .oneof = service_levels},
        {"contextTransferState", FM_V_STR, .oneof = transfer_states},
        {NULL},
};
static const fm_vfield device_item[] = {{"", FM_V_OBJ, .sub = device_information}, {NULL}};
static const fm_vfield consumer_id[] = {
        {"appInstanceId", FM_V_STR, .max = FM_API_ID_MAX, .id = true},
        {"mepId", FM_V_STR, .max = FM_API_ID_MAX, .id = true},
        {NULL},
};
/* fastmig's extension of RegistrationInfo: the container and its tolerances */
static const fm_vfield service_ext[] = {
        {"container", FM_V_STR, true, .max = FM_NAME_MAX},
        {"downtimeBudgetMs", FM_V_NUM, .lo = 1, .hi = 600000},
        {"storageLatencyMs", FM_V_NUM, .lo = 0.001, .hi = 60000},
        {"host", FM_V_STR, .max = FM_NAME_MAX}, /* read-only: where it runs, ignored in a request */
        {NULL},
};
const fm_vfield fm_api_registration[] = {
        {"appMobilityServiceId", FM_V_STR, .max = FM_API_ID_MAX, .id = true},
        {"serviceConsumerId", FM_V_OBJ, true, .sub = consumer_id},
        {"deviceInformation", FM_V_ARR, .max = 16, .sub = device_item},
        {"expiryTime", FM_V_INT, .lo = 0, .hi = 4294967295.0},
        {"fastmig", FM_V_OBJ, true, .sub = service_ext},
        {NULL},
};

static const char *const mobility_statuses[] = {"INTERHOST_MOVEOUT_TRIGGERED", "INTERHOST_MOVEOUT_COMPLETED",
                                                "INTERHOST_MOVEOUT_FAILED", NULL};
static const fm_vfield status_item[] = {{"", FM_V_STR, .oneof = mobility_statuses}, {NULL}};
static const fm_vfield associate_item[] = {{"", FM_V_OBJ, .sub = associate_id}, {NULL}};
static const fm_vfield filter_criteria[] = {
        {"appInstanceId", FM_V_STR, .max = FM_API_ID_MAX, .id = true},
        {"associateId", FM_V_ARR, .max = 16, .sub = associate_item},
        {"mobilityStatus", FM_V_ARR, .max = 3, .sub = status_item},
        {NULL},
};
static const fm_vfield time_stamp[] = {
        {"seconds", FM_V_INT, true, .lo = 0, .hi = 4294967295.0},
        {"nanoSeconds", FM_V_INT, true, .lo = 0, .hi = 999999999},
        {NULL},
};
static const char *const subscription_types[] = {"MobilityProcedureSubscription", NULL};
const fm_vfield fm_api_subscription[] = {
        {"subscriptionType", FM_V_STR, true, .oneof = subscription_types},
        {"callbackReference", FM_V_STR, true, .max = 1024},
        {"requestTestNotification", FM_V_BOOL},
        {"websockNotifConfig", FM_V_OBJ},
        {"filterCriteria", FM_V_OBJ, true, .sub = filter_criteria},
        {"expiryDeadline", FM_V_OBJ, .sub = time_stamp},
        {"_links", FM_V_OBJ},
        {NULL},
};

const fm_vfield fm_api_migration[] = {
        {"appMobilityServiceId", FM_V_STR, .max = FM_API_ID_MAX, .id = true},
        {"container", FM_V_STR, .max = FM_NAME_MAX},
        {"to", FM_V_STR, true, .max = FM_NAME_MAX},
        {"from", FM_V_STR, .max = FM_NAME_MAX},
        {"options", FM_V_OBJ, .sub = fm_migrate_opts_fields},
        {NULL},
};

/* A RegistrationInfo's rules beyond its table. */
int fm_api_registration_check(json_object *b, fm_error *e)
{
        json_object *c = fm_json_get(b, "serviceConsumerId");
        if (!!fm_json_get(c, "appInstanceId") == !!fm_json_get(c, "mepId"))
                return fm_err(e, EINVAL, "`serviceConsumerId' holds exactly one of appInstanceId and mepId");
        json_object *d = fm_json_get(b, "deviceInformation");
        for (size_t i = 0; d && i < json_object_array_length(d); i++) {
                json_object *id = fm_json_get(json_object_array_get_idx(d, i), "associateId");
                const char *t = fm_json_get_str(id, "type"), *v = fm_json_get_str(id, "value");
                struct in_addr a4;
                struct in6_addr a6;
                if (!strcmp(t, "UE_IPv4_ADDRESS") && inet_pton(AF_INET, v, &a4) != 1)
                        return fm_err(e, EINVAL, "`deviceInformation[%zu].associateId.value' is not an IPv4 address: `%s'", i, v);
                if (!strcmp(t, "UE_IPV6_ADDRESS") && inet_pton(AF_INET6, v, &a6) != 1)
                        return fm_err(e, EINVAL, "`deviceInformation[%zu].associateId.value' is not an IPv6 address: `%s'", i, v);
                if (!strcmp(t, "NATED_IP_ADDRESS") && inet_pton(AF_INET, v, &a4) != 1 && inet_pton(AF_INET6, v, &a6) != 1)
                        return fm_err(e, EINVAL, "`deviceInformation[%zu].associateId.value' is not an IP address: `%s'", i, v);
        }
        const char *ct = fm_json_get_str(fm_json_get(b, "fastmig"), "container");
        if (!fm_name_is_valid(ct))
                return fm_err(e, EINVAL, "`fastmig.container' is not a container name: `%s'", ct);
        return 0;
}

int64_t fm_api_time_ms(json_object *ts, int64_t dflt)
{
        if (!ts)
                return dflt;
        return json_object_get_int64(fm_json_get(ts, "seconds")) * 1000 + json_object_get_int64(fm_json_get(ts, "nanoSeconds")) / 1000000;
}

int64_t fm_api_deadline_ms(json_object *b) { return fm_api_time_ms(fm_json_get(b, "expiryDeadline"), 0); }

int fm_api_subscription_check(json_object *b, int64_t now_ms, fm_error *e)
{
        const char *cb = fm_json_get_str(b, "callbackReference");
        if (strncmp(cb, "http://", 7) && strncmp(cb, "https://", 8))
                return fm_err(e, EINVAL, "`callbackReference' is an http:// or https:// URI, not `%.64s'", cb);
        if (strspn(cb, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]@!$&'()*+,;=%") != strlen(cb))
                return fm_err(e, EINVAL, "`callbackReference' holds characters a URI does not: `%.64s'", cb);
        if (fm_json_get(b, "websockNotifConfig"))
                return fm_err(e, EINVAL, "`websockNotifConfig': notifications go to callbackReference only (no websockets)");
        int64_t d = fm_api_deadline_ms(b);
        if (d && d <= now_ms)
                return fm_err(e, EINVAL, "`expiryDeadline' has passed");
        return 0;
}


const fm_vfield fm_api_image_placement[] = {
        {"image", FM_V_STR, true, .max = 64, .id = true},
        {"from", FM_V_STR, .max = FM_NAME_MAX, .id = true},
        {NULL},
};

static const fm_vfield associate_id_only[] = {
        {"type", FM_V_STR, true, .oneof = associate_types},
        {"value", FM_V_STR, true, .max = 64},
        {NULL},
};
const fm_vfield fm_api_cell_change[] = {
        {"associateId", FM_V_OBJ, true, .sub = associate_id_only},
        {"cell", FM_V_STR, true, .max = FM_API_ID_MAX, .id = true},
        {"timeStamp", FM_V_OBJ, .sub = time_stamp},
        {NULL},
};

/* ---- following users (docs/MOBILITY.md) ---- */

static const char *const trace_formats[] = {"csv", "json", "fcd", NULL};
const fm_vfield fm_api_trajectory[] = {
        {"appMobilityServiceId", FM_V_STR, true, .max = FM_API_ID_MAX, .id = true},
        {"associateId", FM_V_OBJ, .sub = associate_id_only},
        {"startTime", FM_V_OBJ, .sub = time_stamp},
        {"format", FM_V_STR, .oneof = trace_formats},
        {"vehicle", FM_V_STR, .max = 128},
        {"text", FM_V_STR, .max = FM_TRACE_TEXT_MAX},
        {"points", FM_V_ARR, .max = FM_TRACE_POINTS_MAX, .sub = fm_trace_point_item},
        {NULL},
};

const fm_vfield fm_api_position[] = {
        {"associateId", FM_V_OBJ, true, .sub = associate_id_only},
        {"x", FM_V_NUM, true, .lo = -FM_COORD_MAX, .hi = FM_COORD_MAX},
        {"y", FM_V_NUM, true, .lo = -FM_COORD_MAX, .hi = FM_COORD_MAX},
        {"timeStamp", FM_V_OBJ, .sub = time_stamp},
        {NULL},
};

static const fm_vfield plmn[] = {
        {"mcc", FM_V_STR, true, .max = 3},
        {"mnc", FM_V_STR, true, .max = 3},
        {NULL},
};
static const fm_vfield ecgi[] = {
        {"cellId", FM_V_STR, true, .max = FM_CELL_ID_MAX, .id = true},
        {"plmn", FM_V_OBJ, .sub = plmn},
        {NULL},
};
static const fm_vfield ecgi_item[] = {{"", FM_V_OBJ, .sub = ecgi}, {NULL}};
static const char *const rnis_notifications[] = {"CellChangeNotification", NULL};
const fm_vfield fm_api_cell_change_notification[] = {
        {"notificationType", FM_V_STR, true, .oneof = rnis_notifications},
        {"timeStamp", FM_V_OBJ, .sub = time_stamp},
        {"associateId", FM_V_ARR, .max = 16, .sub = associate_item},
        {"srcEcgi", FM_V_OBJ, true, .sub = ecgi},
        {"trgEcgi", FM_V_ARR, true, .max = 8, .sub = ecgi_item},
        {"hoStatus", FM_V_INT, true, .lo = 1, .hi = 5},
        {"tempUeId", FM_V_OBJ},
        {"_links", FM_V_OBJ},
        {NULL},
};

void fm_api_ho_status_normalize(json_object *b)
{
        static const char *const names[] = {"IN_PREPARATION", "IN_EXECUTION", "COMPLETED", "REJECTED", "CANCELLED"};
        json_object *h = fm_json_get(b, "hoStatus");
        for (size_t i = 0; json_object_is_type(h, json_type_string) && i < FM_ARRAY_SIZE(names); i++)
                if (!strcmp(json_object_get_string(h), names[i])) {
                        json_object_object_add(b, "hoStatus", json_object_new_int((int)i + 1));
                        return;
                }
}
