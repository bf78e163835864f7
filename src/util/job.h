/* A job: one function run on a thread of its own beside the caller, joined
 * once, with its result, its error and when it ended; cancel (may be NULL)
 * makes the function return soon, from another thread. The migration's
 * background work (src/migrate/source.c) is all jobs. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "util/util.h"

typedef struct fm_job {
        const char *what; /* for the error when the thread cannot start */
        int (*fn)(void *arg, fm_error *e);
        void (*cancel)(void *arg);
        void *arg;
        pthread_t thread;
        bool started;   /* ... and not joined yet */
        atomic_bool done; /* fn has returned */
        int r;
        double done_at; /* fm_now_ms() when fn returned */
        fm_error err;
        struct fm_cancel *group; /* the starter's cancel group (util/cancel.h), the thread's too */
} fm_job;

/* Starts fn(arg) (what: for the error). e: why it could not start. */
int fm_job_start(fm_job *j, const char *what, int (*fn)(void *, fm_error *), void (*cancel)(void *), void *arg,
                 fm_error *e);
bool fm_job_running(const fm_job *j); /* started, not joined */
bool fm_job_done(fm_job *j);          /* started and fn has returned */
/* Waits for fn; its result (0 when it never started or was joined before). */
int fm_job_join(fm_job *j);
/* Asks fn to return soon (its cancel), then joins it (without a cancel,
 * only joins: as long as fn takes). */
int fm_job_cancel(fm_job *j);
