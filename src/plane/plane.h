/* The management plane (the paper's NFVO module): finds containers, starts
 * workloads, orders a migration from the source agent, steers the service
 * route when the target runs it, and measures what the user saw. */
#pragma once
#include <json-c/json.h>
#include <stdint.h>
#include "fleet/fleet.h"
#include "workload/workload.h"

typedef struct fm_migrate_opts {
        const char *name;
        const char *to;          /* host name */
        const char *from;        /* host name, NULL: find it */
        bool probe;              /* run the probe from where the fleet's users are (default true) */
        int probe_interval_us;   /* default 1000 */
        const char *inject;      /* test hook: phase that must fail */
        const char *mode;        /* "precopy" (default) or "stopcopy" */
        int max_rounds;          /* precopy: 0 = the agent's default (8) */
        const char *restore;     /* "auto" (default: lazy from 16 MiB of memory, where the target can), "lazy", "eager" */
        const char *dump;        /* "auto" (default: lazy with pre-copy and a lazy restore), "lazy", "full" */
        const char *compress;    /* "lz4" or "none"; NULL: the agent's default */
        int64_t dirty_threshold; /* precopy: pages; 0 = the agent's default (1024) */
        double min_shrink;       /* precopy: no-progress share; 0 = the agent's default (0.9) */
        const char *strategy;    /* disk: auto (default), memory, partial, full, shared */
        double storage_latency_ms; /* shared: the p99 the service tolerates; 0: the agent's default */
        bool stay_shared;        /* shared: refuse rather than move the tree to the target's disk (auto's fallback) */
        int images_lead_ms;      /* full/partial: freeze when the images' rest needs this long (ms); 0: the agent's default, -1: once they are complete */
        int64_t freeze_at_ms;    /* wall clock (ms since the epoch): the service runs at the source until then, all
                                  * else ready (a known path's handover at its moment); 0: at once */
        /* progress lines, may be NULL */
        void (*progress)(const char *phase, double ms, void *data);
        /* a pre-copy round ended: the agent's event and the probe's stall */
        void (*round_progress)(json_object *round, double stall_ms, void *data);
        void *pdata;
} fm_migrate_opts;

/* Runs one migration. Returns 0 when it succeeded; on failure the report (if
 * any) says what failed and whether it was rolled back. The report holds:
 * container, from, to, strategy, mode, ok, rolled_back, error, downtime_ms,
 * frozen_ms, total_ms, phases, bytes_disk, bytes_memory, state_continuous,
 * memory_verified (the memory workload's own check after the migration, null
 * for other services), probe {sent, received, interval_ms, ...}. */
int fm_plane_migrate(const fm_fleet *f, const fm_migrate_opts *o, json_object **report, fm_error *e);

/* Finds the host that runs (or holds) a container; -ENOENT if none. */
int fm_plane_locate(const fm_fleet *f, const char *name, const fm_host **host, char ip[16], fm_error *e);

/* Starts a built-in workload on a host with a free address of the fleet's
 * services and steers its traffic there. */
int fm_plane_start_workload(const fm_fleet *f, const char *host, const char *name, const fm_workload_spec *w,
                            char ip_out[16], fm_error *e);

/* Steers the service IP's traffic to host h (phase: steer/steer.h). */
int fm_plane_route(const fm_fleet *f, const char *phase, const char *ip, const fm_host *h, fm_error *e);

/* The containers one agent holds. *out is malloc'd (free it), *n entries. */
typedef struct fm_ct_entry {
        char name[64];
        char state[16];
        char ipv4[16];
} fm_ct_entry;
int fm_plane_list(const fm_host *h, fm_ct_entry **out, size_t *n, fm_error *e);

/* Calls one agent. */
int fm_plane_call(const fm_host *h, json_object *req, json_object **reply, int timeout_ms, fm_error *e);

/* The agent's `info` on container name (sizes: what a migration of it
 * moves, docs/PROTOCOL.md); *reply its answer. */
int fm_plane_info(const fm_host *h, const char *name, bool sizes, int timeout_ms, json_object **reply, fm_error *e);

/* Runs the plain-way baseline script (bench/baseline.sh) for one migration,
 * measured by the same probe. The report has the same keys as a migration's
 * where they apply (downtime_ms, frozen_ms, total_ms, state_continuous). */
int fm_plane_baseline(const fm_fleet *f, const char *script, const char *fastmig, const char *name,
                      const char *to, json_object **report, fm_error *e);
