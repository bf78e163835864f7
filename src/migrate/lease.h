/* Leases: the target runs a restored copy only while its source says so.
 *
 * Before its restore the target asks the source agent for a lease
 * (`lease`, noting the moment it asked), and asks again every
 * FM_LEASE_RENEW_MS until the migration ends. Each grant lets the copy run
 * until FM_LEASE_MS after the moment the target *asked*, so a slow answer
 * only shortens it. A fence process (fm-fence, src/migrate/fence.c), started
 * before the restore and outliving the agent, freezes the copy and takes its
 * veth off the bridge once the lease has lapsed. The source stops granting
 * as soon as it decides to roll back; FM_LEASE_MS + FM_LEASE_MARGIN_MS after
 * its last grant no copy can run on the target, and it may thaw its own
 * without the target's word. A committed migration answers "committed": the
 * target's copy then runs for good (a fenced one is thawed). Both clocks are
 * CLOCK_BOOTTIME of their own host (it runs on through a suspend): only
 * durations cross the wire.
 * docs/RECOVERY.md has the rule and the bound it gives. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "migrate/migrate.h"

#define FM_LEASE_MS 10000       /* one grant */
#define FM_LEASE_RENEW_MS 1000  /* the target asks this often */
#define FM_LEASE_MARGIN_MS 2000 /* the fence's poll, the freeze, slack */
#define FM_FENCE_POLL_MS 100
#define FM_LEASE_ASK_CONNECT_MS 1500
#define FM_LEASE_ASK_MS 3000

/* In the container's LXC directory on the target. */
#define FM_LEASE_FILE "fastmig-lease"
#define FM_FENCE_LOCK "fastmig-fence" /* held by the live fence process */

/* CLOCK_BOOTTIME, ns; and a sleep until such a moment (not cut short by signals). */
uint64_t fm_lease_now_ns(void);
void fm_lease_sleep_until(uint64_t ns);

/* ---- the source: grants ---- */

/* Records this agent's start: a predecessor that died granted nothing after it. */
void fm_lease_agent_started(void);
/* When (fm_lease_now_ns) no copy a dead predecessor let run can still run. */
uint64_t fm_lease_restart_safe_ns(void);
/* A migration of name to to_host begins: grants may be given. */
int fm_lease_open(const char *name, const char *to_host);
/* It committed (after the journal says so): the answer becomes "committed". */
void fm_lease_commit(const char *name);
/* It rolls back: no grant from now on. Returns when (fm_now_ns) the last
 * grant's copy is surely fenced (now, when none was granted); fm_lease_now_ns. */
uint64_t fm_lease_refuse(const char *name);
/* When its target last asked (fm_lease_now_ns; 0: never): a target that
 * stops asking has fallen silent (dead, stopped, cut off). */
uint64_t fm_lease_last_ask(const char *name);
/* It ended: the journal answers from now on. */
void fm_lease_close(const char *name);
/* The answer to peer's `lease` for name: "granted", "committed" or "refused". */
const char *fm_lease_answer(const fm_host_paths *p, const char *name, const char *peer);

/* ---- the target: holds ---- */

/* Leases are kept here (a fleet to find the source by, and fm-fence). */
bool fm_lease_enabled(const fm_host_paths *p);
/* Before the restore: the first grant, and the fence running. */
int fm_lease_begin(const fm_host_paths *p, const char *name, fm_error *e);
/* The restore's thaw (fm_ct_thaw_hooks): only while the lease holds. */
int fm_lease_thaw(const fm_host_paths *p, const char *name, fm_error *e);
/* The migration committed: the copy runs for good (thawed and put back on
 * its bridge if it was fenced). Waits for the fence to go, removes the
 * lease. */
int fm_lease_end(const fm_host_paths *p, const char *name, fm_error *e);
/* The copy is about to be removed (abort, expiry): the lease lapses now,
 * so that nothing thaws it and the fence, which stays until the container
 * is gone, fences it if it runs. */
void fm_lease_revoke(const fm_host_paths *p, const char *name);
/* Around a removal: the fence's lock file, opened before the container's
 * directory goes (-1: no fence), then awaited until the fence, which sees
 * the lease gone, has ended (at most 2 s). */
int fm_lease_fence_hold(const fm_host_paths *p, const char *name);
void fm_lease_fence_wait(int fd);
/* One pass of the renewal: every lease held here is asked for again (on a
 * thread of its own), and a fence that died is started again. */
void fm_lease_renew_all(const fm_host_paths *p);
/* 1: the restore thawed the copy (it may run, or be fenced); 0: not
 * (yet); -ENOENT: no lease (none kept here, or the migration ended). Never
 * asks LXC, whose state requests wait while a restore is held. */
int fm_lease_thawed(const char *lxcpath, const char *name);
/* fm-fence's poll: 1 once there is nothing left to watch (the lease ended,
 * was committed, or the copy was fenced), 0 to look again. */
int fm_lease_fence_poll(const char *lxcpath, const char *name);
