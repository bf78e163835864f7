/* Which programs this process's descendants start, and when: the kernel's
 * process-event connector (fork, exec, exit of every process), read by a
 * thread. The migration report lists the programs started while a
 * container was frozen; the goal is that none but CRIU itself is.
 * The connector answers only in the machine's initial network namespace:
 * open the watch before entering a host's (fastmigd --netns). */
#pragma once
#include <json-c/json.h>
#include <stdint.h>

#include "util/util.h"

typedef struct fm_execwatch fm_execwatch;

/* Opens the connector; NULL (and why in e) when the kernel has none or
 * this is not the initial network namespace. Nothing is read before
 * fm_execwatch_start, which starts the reader thread (separate: a process
 * with threads can no longer unshare its mount namespace). */
fm_execwatch *fm_execwatch_open(fm_error *e);
int fm_execwatch_start(fm_execwatch *w, fm_error *e);
void fm_execwatch_close(fm_execwatch *w);

/* The programs this process's descendants exec'd between t0 and t1
 * (fm_now_ns), as a JSON array of {"program", "pid", "at_ms" (from t0)},
 * oldest first; waits until the reader has caught up with t1. NULL for a
 * NULL watch. *lost (may be NULL): events the kernel dropped in that time
 * (a full socket buffer): the list may then miss some. */
json_object *fm_execwatch_between(fm_execwatch *w, uint64_t t0, uint64_t t1, uint64_t *lost);
