/* The known-path planner: from a user's trace and the coverage map, each
 * handover between edge hosts (the moment the user leaves the old host's
 * cell: the deadline) and when to start its migration so that it ends
 * before (the deadline less the estimated migration time). Pure; the
 * rules are in docs/MOBILITY.md. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mobility/coverage.h"
#include "mobility/trace.h"

#define FM_PLAN_FIXED_MS 2000      /* from a migration's start to the target running it, beside its bytes (a blank
                                    * memory-mig: about 1 s on the idle testbed; twice that for a loaded host) */
#define FM_PLAN_MARGIN 1.5         /* the estimate is this times the larger of model and history */
#define FM_PLAN_HISTORY 5          /* earlier migrations of the service the estimate looks at */
#define FM_PLAN_ONPATH_MS 3000     /* a user is on its path while in a cell the trace has within this of now */
#define FM_PLAN_SWITCH_MS 500      /* from the freeze to the service answering at the target, without history */
#define FM_PLAN_SWITCH_GUARD_MS 50 /* the least margin over the switch expected */
#define FM_PLAN_LOAD_BUSY 1.0      /* a host's load per CPU over which the model is doubled and more */

typedef struct fm_estimate_in {
        uint64_t mem_bytes;        /* the container's memory */
        uint64_t disk_bytes;       /* the disk a migration moves (a clone's upper layer; a rootfs) */
        double link_mbit;          /* the hosts' link (0: unknown, only history counts) */
        const double *history_ms;  /* this service's latest migrations' total times, newest first (or,
                                    * without any, the fleet's) */
        size_t nhistory;
} fm_estimate_in;

/* How long a migration is expected to take, in ms; how says from what
 * ("model 1.9 s (48 MiB at 1000 Mbit/s + 1.5 s), history max 2.7 s of 3,
 * x1.5"). */
int64_t fm_plan_estimate_ms(const fm_estimate_in *in, char *how, size_t len);

/* What a known path's freeze moment is reckoned from. */
typedef struct fm_switch_in {
        const double *downtimes_ms; /* the latest switches, n of them (see below) */
        size_t n;
        bool fleet;                 /* they are other services' */
        uint64_t mem_bytes;         /* the service's memory */
        double link_mbit;           /* the hosts' link (0: unknown) */
        double load_per_cpu;        /* the source host's 1-min load average per CPU (0: unknown) */
} fm_switch_in;

/* How long before its deadline a known path's migration freezes the
 * service (its planned moment: all else done before, the migration
 * holding): the longest of the latest times from such a moment to the
 * target running it (or, for a migration that did not hold, its downtime),
 * the service's own, or, when they are other services', if longer than the
 * model. The model: FM_PLAN_SWITCH_MS plus its memory once over the link,
 * times twice the host's load per CPU when that is over 0.5 (at most 8
 * times); on a busy host (load per CPU over FM_PLAN_LOAD_BUSY) it is the
 * least. Plus a quarter,
 * or the spread of the service's own times (longest - shortest) if more,
 * at least FM_PLAN_SWITCH_GUARD_MS. */
int64_t fm_plan_switch_ms(const fm_switch_in *in, char *how, size_t len);

/* How long placing an image of bytes takes over the link (ms). */
int64_t fm_plan_transfer_ms(uint64_t bytes, double link_mbit);

typedef struct fm_handover_plan {
        size_t at;                           /* the trace's first point past the crossing */
        char from_cell[FM_CELL_ID_MAX + 1], to_cell[FM_CELL_ID_MAX + 1];
        char from_host[FM_NAME_MAX + 1], to_host[FM_NAME_MAX + 1];
        int64_t deadline_ms;                 /* trace time the user leaves from_cell for to_cell */
        int64_t start_ms;                    /* trace time to start the migration */
        bool tight;                          /* start + estimate passes the deadline */
} fm_handover_plan;

/* The handovers of a resolved trace (fm_trace_resolve), in order: only
 * where the serving host changes. A start never comes before the trace's
 * first point nor before the previous handover's start + estimate. *out
 * is NULL when there are none. */
int fm_plan_handovers(const fm_trace *t, const fm_coverage *c, int64_t estimate_ms, fm_handover_plan **out, size_t *n,
                      fm_error *e);

/* The cell the trace has the user in at trace time t_ms (the last point at
 * or before it; the first point before the trace starts). */
const char *fm_trace_cell_at(const fm_trace *t, int64_t t_ms);
/* Whether a user seen in cell at trace time t_ms is on the trace's path:
 * a point within FM_PLAN_ONPATH_MS of t_ms (or the cell in force then) is
 * in that cell. */
bool fm_trace_on_path(const fm_trace *t, int64_t t_ms, const char *cell);
