/* A scenario (docs/SCENARIOS.md): the testbed's hosts and cells, the
 * users with their traces, and the service each uses. Pure but for the
 * trace files it reads beside the scenario (fuzzed without them). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include "mobility/coverage.h"
#include "mobility/trace.h"
#include "util/util.h"

#define FM_SCN_USERS_MAX 8
#define FM_SCN_FILE_MAX (1 << 20)
#define FM_SCN_DEFAULT_POSITION_MS 500   /* a user's position is posted this often */
#define FM_SCN_DEFAULT_RNIS_LEAD_MS 1000 /* IN_PREPARATION this long before the crossing */

typedef struct fm_scn_trace {
        fm_trace t;               /* times scaled by the speed-up, resolved */
        char *text;               /* as read (a file's or inline points as JSON) */
        fm_trace_format format;
        char vehicle[129];
} fm_scn_trace;

typedef struct fm_scn_user {
        char name[17];            /* the user, and its service's container */
        char associate[16];       /* its UE_IPv4_ADDRESS associate id (10.99.0.N: a name for the orchestrator) */
        fm_scn_trace trace;       /* how it moves */
        fm_scn_trace announced;   /* the path it announces, when not its trace (has_announced) */
        bool has_announced;
        double start_s;           /* its trace's time 0, from the scenario's start */
        bool rnis;                /* its moves are told as RNIS cell changes (else as positions) */
        char workload[8];         /* blank, video, memory */
        double size_mib;          /* memory */
        bool shared;              /* its rootfs on the shared volume */
        double storage_latency_ms;/* its tolerance (0: fastmig's default) */
} fm_scn_user;

typedef struct fm_scenario {
        char name[65];
        int hosts, link_mbit;
        double speedup;
        int position_ms, rnis_lead_ms;
        bool shared_storage;      /* a user's service is on shared storage */
        json_object *coverage_doc;
        fm_coverage cov;
        fm_scn_user *users;
        size_t n;
        double duration_s;        /* until the last user's trace ends */
} fm_scenario;

/* Reads a scenario; trace files are named relative to dir and stay in it
 * (dir NULL: none may be named); speedup > 0 replaces the scenario's. On
 * failure nothing is kept and *e names the field or the trace's line. */
int fm_scenario_parse(const char *text, size_t len, const char *dir, double speedup, fm_scenario *out, fm_error *e);
int fm_scenario_load(const char *path, double speedup, fm_scenario *out, fm_error *e);
void fm_scenario_free(fm_scenario *s);
