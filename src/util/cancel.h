/* A cancel group: the connections and child processes one piece of work
 * opened, ended at once from another thread (a migration whose target fell
 * silent: src/migrate/source.c). A thread joins a group with
 * fm_cancel_bind; fm_job threads join their starter's group. While bound,
 * every connection fm_tcp_connect makes and every child fm_spawn starts
 * (but those that must outlive their parent: a CRIU dump is never killed)
 * is tracked; fm_cancel_fire shuts the connections down (blocked reads and
 * writes fail at once) and kills the children. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

typedef struct fm_cancel fm_cancel;

fm_cancel *fm_cancel_new(void);
void fm_cancel_free(fm_cancel *c);
/* This thread's group from now on (NULL: none). */
void fm_cancel_bind(fm_cancel *c);
fm_cancel *fm_cancel_bound(void);
void fm_cancel_fire(fm_cancel *c);
bool fm_cancel_fired(fm_cancel *c);

/* For proto.c and spawn.c: tracking in the bound group (nothing when none).
 * track_fd fails (-ECANCELED) once the group has fired. */
int fm_cancel_track_fd(int fd);
void fm_cancel_untrack_fd(int fd);
void fm_cancel_track_pid(pid_t target); /* a pid, or -pgid */
void fm_cancel_untrack_pid(pid_t target);
