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
} fm_orch;

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

/* The migration resource for API answers (id as a string, links). */
json_object *fm_orch_migration_json(fm_orch *o, json_object *row);

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
