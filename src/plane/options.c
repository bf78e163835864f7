#include "plane/options.h"

#include <string.h>

#include "proto/proto.h"

static const char *const modes[] = {"precopy", "stopcopy", NULL};
static const char *const restores[] = {"auto", "lazy", "eager", NULL};
static const char *const dumps[] = {"auto", "lazy", "full", NULL};
static const char *const compressions[] = {"lz4", "none", NULL};
static const char *const strategies[] = {"auto", "memory", "partial", "full", "shared", NULL};

/* the same ranges as fastmig migrate's flags */
const fm_vfield fm_migrate_opts_fields[] = {
        {"mode", FM_V_STR, .oneof = modes},
        {"restore", FM_V_STR, .oneof = restores},
        {"dump", FM_V_STR, .oneof = dumps},
        {"compress", FM_V_STR, .oneof = compressions},
        {"strategy", FM_V_STR, .oneof = strategies},
        {"max_rounds", FM_V_INT, .lo = 1, .hi = 64},
        {"dirty_threshold", FM_V_INT, .lo = 1, .hi = 4294967295.0},
        {"min_shrink", FM_V_NUM, .lo = 0.01, .hi = 1},
        {"images_lead_ms", FM_V_INT, .lo = 0, .hi = 10000},
        {"storage_latency_ms", FM_V_NUM, .lo = 0.001, .hi = 60000},
        {"stay_shared", FM_V_BOOL},
        {"probe", FM_V_BOOL},
        {"probe_interval_ms", FM_V_NUM, .lo = 0.1, .hi = 1000},
        /* hold the freeze until then (ms since the epoch; the agent takes at most FM_HOLD_MAX_MS from its start) */
        {"freeze_at", FM_V_INT, .lo = 0, .hi = 4102444800000.0},
        /* test hook: the agents must run with --test-hooks */
        {"inject_failure", FM_V_STR, .max = 32},
        {NULL},
};

static const char *str(json_object *j, const char *k)
{
        json_object *v = NULL;
        return json_object_object_get_ex(j, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                               : NULL;
}

int fm_migrate_opts_from_json(json_object *j, fm_migrate_opts *o, fm_error *e)
{
        int r = fm_validate(j, fm_migrate_opts_fields, e);
        if (r < 0)
                return r;
        json_object *v = NULL;
        o->mode = str(j, "mode");
        o->restore = str(j, "restore");
        o->dump = str(j, "dump");
        o->compress = str(j, "compress");
        o->strategy = str(j, "strategy");
        o->inject = str(j, "inject_failure");
        if (json_object_object_get_ex(j, "max_rounds", &v))
                o->max_rounds = (int)json_object_get_int64(v);
        if (json_object_object_get_ex(j, "dirty_threshold", &v))
                o->dirty_threshold = json_object_get_int64(v);
        if (json_object_object_get_ex(j, "min_shrink", &v))
                o->min_shrink = json_object_get_double(v);
        if (json_object_object_get_ex(j, "images_lead_ms", &v)) {
                int ms = (int)json_object_get_int64(v);
                o->images_lead_ms = ms ? ms : -1; /* 0: the images complete before the freeze */
        }
        if (json_object_object_get_ex(j, "storage_latency_ms", &v))
                o->storage_latency_ms = json_object_get_double(v);
        o->stay_shared = fm_json_bool(j, "stay_shared", false);
        o->probe = fm_json_bool(j, "probe", true);
        if (json_object_object_get_ex(j, "probe_interval_ms", &v))
                o->probe_interval_us = (int)(json_object_get_double(v) * 1000);
        if (json_object_object_get_ex(j, "freeze_at", &v))
                o->freeze_at_ms = json_object_get_int64(v);
        return 0;
}

json_object *fm_migrate_opts_to_json(const fm_migrate_opts *o)
{
        json_object *j = json_object_new_object();
#define S(k, v)                                                                                                        \
        if (v)                                                                                                         \
                json_object_object_add(j, k, json_object_new_string(v))
        S("mode", o->mode);
        S("restore", o->restore);
        S("dump", o->dump);
        S("compress", o->compress);
        S("strategy", o->strategy);
        S("inject_failure", o->inject);
#undef S
        if (o->max_rounds > 0)
                json_object_object_add(j, "max_rounds", json_object_new_int(o->max_rounds));
        if (o->dirty_threshold > 0)
                json_object_object_add(j, "dirty_threshold", json_object_new_int64(o->dirty_threshold));
        if (o->min_shrink > 0)
                json_object_object_add(j, "min_shrink", json_object_new_double(o->min_shrink));
        if (o->images_lead_ms)
                json_object_object_add(j, "images_lead_ms", json_object_new_int(o->images_lead_ms < 0 ? 0 : o->images_lead_ms));
        if (o->storage_latency_ms > 0)
                json_object_object_add(j, "storage_latency_ms", json_object_new_double(o->storage_latency_ms));
        if (o->stay_shared)
                json_object_object_add(j, "stay_shared", json_object_new_boolean(true));
        if (!o->probe)
                json_object_object_add(j, "probe", json_object_new_boolean(false));
        if (o->freeze_at_ms > 0)
                json_object_object_add(j, "freeze_at", json_object_new_int64(o->freeze_at_ms));
        if (o->probe_interval_us && o->probe_interval_us != 1000)
                json_object_object_add(j, "probe_interval_ms", json_object_new_double(o->probe_interval_us / 1000.0));
        return j;
}
