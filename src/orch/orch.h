/* The orchestrator (the paper's NFVO module as a service): the fleet, the
 * services registered with it, the migrations it runs, the subscriptions
 * it notifies; its state in the store, its API in orch/api.c, its
 * notifications in orch/notify.c. docs/ORCHESTRATOR.md. */
#pragma once
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include "fleet/fleet.h"
#include "mobility/coverage.h"
#include "orch/store.h"

#define FM_ORCH_DEFAULT_PORT 7443
#define FM_ORCH_DEFAULT_PER_HOST 2 /* migrations at once that touch one host (docs/ORCHESTRATOR.md) */

typedef struct fm_orch {
        fm_fleet fleet;
        fm_store *store;
        char base_url[128];       /* https://ADDR:PORT, for links */
        int per_host;             /* migrations at once per host, as source or target */
        FILE *log;                /* JSON lines */
        pthread_mutex_t log_lock;
        pthread_mutex_t lock;     /* the fields below */
        pthread_cond_t changed;
        bool stopping;            /* the scheduler takes no more */
        bool notifier_stopping;   /* after the migrations' last notifications are queued */
        int running;              /* migration threads alive */
        pthread_t scheduler, notifier;
        /* following users (orch/follow.c) */
        pthread_mutex_t map_lock; /* the map pointer and its references */
        struct fm_orch_map *map;  /* the coverage map, NULL until one is given */
        double link_mbit;         /* the hosts' link, for a migration's estimate */
        int deadline_ms;          /* an announced handover's deadline when the event gives none */
        bool follower_stopping;
        int placing;              /* image placements under way (under lock) */
        pthread_t follower;
} fm_orch;

#define FM_ORCH_DEFAULT_LINK_MBIT 1000
#define FM_ORCH_DEFAULT_DEADLINE_MS 3000
#define FM_ORCH_HANDOVERS_MAX 500 /* handovers a trajectory may plan */

/* Logs one JSON line: {"ts": ..., "level": level, "msg": ...} plus the
 * fields of extra (taken; may be NULL). */
void fm_orch_log(fm_orch *o, const char *level, json_object *extra, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Wall-clock milliseconds (what the API shows). */
int64_t fm_orch_now_ms(void);

/* With o->lock held: waits until o->changed is signalled or ms pass. */
void fm_orch_wait(fm_orch *o, int ms);

/* A fresh random id: 16 hex digits. */
void fm_orch_new_id(char id[17]);

/* ---- migrations (orch/runner.c) ---- */

/* Finishes what a previous run left: queued migrations fail (nothing was
 * done), running ones wait for the agents to end them and are reported by
 * where the container runs now; every service's host is found again. */
int fm_orch_reconcile(fm_orch *o, fm_error *e);

/* Starts the scheduler, which runs queued migrations as the per-host
 * limit allows. */
int fm_orch_runner_start(fm_orch *o, fm_error *e);
/* Wakes the scheduler (a migration was queued). */
void fm_orch_runner_kick(fm_orch *o);
/* Stops taking queued migrations and waits for the running ones. */
void fm_orch_runner_stop(fm_orch *o);

/* Queues a migration of container ct (of service svc, a row with id and
 * body, or NULL) from src to dst with options opts (borrowed; the
 * service's storage tolerance is added unless given), one migration of a
 * container at a time. Its id, or -EBUSY (it migrates already: *busy_id),
 * -EPERM (the service may not move), -EIO; the caller may hold the
 * store's lock to make it one step with its own writes. */
int64_t fm_orch_migration_queue(fm_orch *o, json_object *svc, const char *ct, const char *src, const char *dst,
                                json_object *opts, const char *client, int64_t *busy_id, fm_error *e);

/* The migration resource for API answers (id as a string, links). */
json_object *fm_orch_migration_json(fm_orch *o, json_object *row);

/* ---- services and their users (orch/follow.c) ---- */

/* The registered service with id (columns id, host, container, body
 * parsed), or NULL: e->code says whether the database failed. */
json_object *fm_orch_service_row(fm_orch *o, const char *id, fm_error *e);
/* The registered services with the device (type, value), rows as above;
 * NULL when the database failed. */
json_object *fm_orch_services_of(fm_orch *o, const char *type, const char *value, fm_error *e);
/* Their ids only. */
json_object *fm_orch_service_ids(fm_orch *o, const char *type, const char *value, fm_error *e);

/* ---- following users (orch/follow.c, docs/MOBILITY.md) ---- */

/* The coverage map, held while used (fm_orch_map_get/put). */
typedef struct fm_orch_map fm_orch_map;
const fm_coverage *fm_orch_map_coverage(const fm_orch_map *m);
fm_orch_map *fm_orch_map_get(fm_orch *o); /* NULL when the fleet has none */
void fm_orch_map_put(fm_orch *o, fm_orch_map *m);
/* Replaces the map (checked against the fleet, stored); -EBUSY while a
 * trajectory follows the present one. */
int fm_orch_coverage_set(fm_orch *o, json_object *doc, fm_error *e);
/* At start: the map from file (stored; NULL: the stored one, if any). */
int fm_orch_follow_open(fm_orch *o, const char *file, fm_error *e);
void fm_orch_follow_close(fm_orch *o);

/* The API's mobility requests, their bodies checked against their tables
 * already. Each returns 0 with *out, or -errno with *e: EINVAL (400),
 * ENOENT, EDOM (422: an unknown service, user, cell; outside every cell),
 * ENODATA (409: no coverage map), EBUSY, EALREADY (409), EIO (500). */
int fm_orch_trajectory_add(fm_orch *o, json_object *body, const char *client, json_object **out, fm_error *e);
json_object *fm_orch_trajectory_get(fm_orch *o, const char *id, fm_error *e); /* NULL, e->code 0: none */
json_object *fm_orch_trajectories_list(fm_orch *o, fm_error *e);
int fm_orch_trajectory_cancel(fm_orch *o, const char *id, fm_error *e);
int fm_orch_user_position(fm_orch *o, json_object *body, json_object **out, fm_error *e);
/* A user entered cell at since (ms): recorded, and followed (trigger names
 * what told: "cell_change", "rnis:COMPLETED"). *out: the handover ids made. */
int fm_orch_user_cell(fm_orch *o, const char *type, const char *value, const char *cell, int64_t since,
                      const char *trigger, json_object **out, fm_error *e);
int fm_orch_rnis_cell_change(fm_orch *o, json_object *body, json_object **out, fm_error *e);
/* Handovers, newest last; filters may be NULL. */
json_object *fm_orch_handovers_list(fm_orch *o, const char *service, const char *trajectory, const char *status,
                                    fm_error *e);
json_object *fm_orch_handover_get(fm_orch *o, int64_t id, fm_error *e);
int fm_orch_follower_start(fm_orch *o, fm_error *e);
void fm_orch_follower_stop(fm_orch *o);

/* ---- notifications (orch/notify.c) ---- */

/* Queues a MobilityProcedureNotification for every subscription that
 * matches the service (by appInstanceId, associateId, mobilityStatus).
 * Called inside the transaction that records what it tells. */
int fm_orch_notify_mobility(fm_orch *o, const char *service_id, const char *status, const char *target_host,
                            fm_error *e);
/* Queues a TestNotification to a new subscription's callback. */
void fm_orch_notify_test(fm_orch *o, const char *sub_id);
/* Removes the registrations past their expiryTime (not while migrating). */
void fm_orch_expire_services(fm_orch *o);
int fm_orch_notifier_start(fm_orch *o, fm_error *e);
void fm_orch_notifier_stop(fm_orch *o);
