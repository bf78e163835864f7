/* The user's view of the service: a UDP request every interval, the longest
 * gap between replies is the observed downtime. Speaks fm-seqecho's protocol
 * (src/workload/seqecho.c): each reply carries the service's counter and boot
 * id, so the probe also tells whether the state survived. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include "util/util.h"

typedef struct fm_probe_result {
        uint64_t sent, received;
        double duration_ms;
        double max_gap_ms;     /* longest time without a reply (observed downtime) */
        double max_gap_start_ms;
        uint64_t first_counter, last_counter, max_counter;
        uint64_t reordered;     /* replies that arrived after a later one */
        bool counter_regressed; /* a counter answered twice, or far below the highest: state went back */
        bool boot_changed;      /* the service restarted */
        /* Marks set by the caller around a migration (fm_probe_mark_*) */
        bool freeze_marked, end_marked;
        uint64_t freeze_counter; /* highest counter seen when the freeze was marked */
        uint64_t answered_after; /* replies after the end was marked */
        uint64_t after_counter;  /* highest counter among those */
} fm_probe_result;

#define FM_PROBE_WINDOW 4096

typedef struct fm_probe {
        uint64_t seen[FM_PROBE_WINDOW]; /* counter % window -> counter */
        int fd;
        int interval_us;
        pthread_t thread;
        atomic_bool stop;
        atomic_ullong received;
        pthread_mutex_t lock; /* res, boot, last_reply: the thread and the marks */
        fm_probe_result res;
        uint64_t boot;
        double t0, last_reply;
        _Atomic double window_gap; /* longest gap since fm_probe_window_gap() last ran */
} fm_probe;

/* Starts probing ip:port from inside netns (NULL: the current one). */
int fm_probe_start(fm_probe *p, const char *netns, const char *ip, uint16_t port, int interval_us, fm_error *e);
/* Waits up to timeout_ms for the reply count to pass `after`; 0 or -ETIMEDOUT. */
int fm_probe_wait_reply(fm_probe *p, uint64_t after, int timeout_ms);
void fm_probe_stop(fm_probe *p, fm_probe_result *out);
/* The service is frozen now (or, before a migration starts, may be): the
 * counter it stands at is what it must go on from. The latest mark counts. */
void fm_probe_mark_freeze(fm_probe *p);
/* The migration is over: from now on replies show the state it left. */
void fm_probe_mark_end(fm_probe *p);
/* Whether the service kept its state through the marked migration: it
 * answered after the end mark, with the boot id it had before, its counter
 * went on from where it stood at the freeze mark, and no counter was
 * answered twice or went far back. When not, *why (if given) says how. */
bool fm_probe_kept(const fm_probe_result *r, const char **why);
/* One reply (its counter and boot id) arriving at now_ms (since the start):
 * the probe thread's accounting, public so that it can be tested alone. */
void fm_probe_account(fm_probe *p, double now_ms, uint64_t counter, uint64_t boot);
/* The longest gap between replies since the last call (or the start), and
 * starts a new window: the stall one stretch of work caused. */
double fm_probe_window_gap(fm_probe *p);

/* Asks the service to write /data/NAME (inside the container); returns the
 * counter it wrote, or a negative errno. */
int64_t fm_probe_write(const char *netns, const char *ip, uint16_t port, const char *name, fm_error *e);
/* Asks the service to check its memory (memory workload): *pages it holds,
 * *bad pages that do not match their pattern. 0 or a negative errno. */
int fm_probe_verify(const char *netns, const char *ip, uint16_t port, uint64_t *pages, uint64_t *bad,
                    uint64_t *checksum, fm_error *e);
/* One plain request; returns the counter or a negative errno. */
int64_t fm_probe_once(const char *netns, const char *ip, uint16_t port, uint64_t *boot, fm_error *e);
