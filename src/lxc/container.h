/* Driving LXC: state, constraints that CRIU needs, checkpoint and restore.
 * All calls must run inside the host's namespaces (the agent does). */
#pragma once
#include <sys/types.h>
#include "util/util.h"

typedef struct fm_ct_info {
        bool defined, running, frozen;
        char state[16];
        char ipv4[16];        /* service IP without prefix, "" if none */
        char rootfs[512];     /* rootfs directory ("dir:" stripped) */
} fm_ct_info;

int fm_ct_info_get(const char *lxcpath, const char *name, fm_ct_info *out, fm_error *e);
/* The memory a running container's cgroup charges (what a migration's
 * memory copy is sized by). */
int fm_ct_memory_bytes(const char *lxcpath, const char *name, uint64_t *out, fm_error *e);

/* Checks the constraints under which LXC + CRIU can checkpoint and restore a
 * container on this platform; the error names the first one violated and how
 * to fix it. */
int fm_ct_check_migratable(const char *lxcpath, const char *name, fm_error *e);

int fm_ct_freeze(const char *lxcpath, const char *name, fm_error *e);
int fm_ct_unfreeze(const char *lxcpath, const char *name, fm_error *e);
int fm_ct_start(const char *lxcpath, const char *name, fm_error *e);
/* Kills and removes the container (config, rootfs); missing is not an error. */
int fm_ct_destroy(const char *lxcpath, const char *name, fm_error *e);

/* Dumps a (frozen or running) container into dir, leaving its processes in
 * place (they stay frozen when they were). criu_conf: CRIU_CONFIG_FILE;
 * env: more "K=V" for lxc-checkpoint (NULL-terminated, may be NULL);
 * timeout_ms: 0 for the default (120 s). */
int fm_ct_checkpoint(const char *lxcpath, const char *name, const char *dir, const char *criu_conf,
                     const char *const *env, int timeout_ms, fm_error *e);
/* What runs between CRIU's restore (the container comes back frozen) and
 * its thaw; every member may be NULL. thaw, when set, thaws it instead of
 * fm_ct_unfreeze (the target's lease decides: src/migrate/lease.h). */
typedef struct fm_ct_thaw_hooks {
        void (*before_thaw)(void *data);
        int (*thaw)(void *data, fm_error *e);
        void *data;
} fm_ct_thaw_hooks;

/* Restores from dir; the container is running (thawed) on success. */
int fm_ct_restore(const char *lxcpath, const char *name, const char *dir, const char *criu_conf,
                  const char *const *env, const fm_ct_thaw_hooks *h, fm_error *e);

/* fm-criu-wrap's record, in the images directory, of when it asked the
 * freezer (CLOCK_MONOTONIC ns: the window's true start) and how long it
 * waited for FASTMIG_FREEZE_AT before (ns): one line, two decimals. */
#define FM_FREEZE_MARK ".freeze-at"

/* Waits until the container's freezer says FROZEN, or *stop becomes true,
 * or timeout_ms passes. 0 when frozen. Only reads the freezer. */
int fm_ct_wait_frozen(const char *lxcpath, const char *name, const volatile bool *stop, int timeout_ms,
                      fm_error *e);

/* Removes the empty cgroups LXC and CRIU left for a container of that name
 * (lxc.payload.NAME[-N], lxc.monitor.NAME[-N]) in every hierarchy. Call it
 * only when no container of that name runs anywhere on the machine. */
void fm_ct_cgroup_sweep(const char *name);

/* The pids of every process of a running container (from its freezer
 * cgroup, nested cgroups included). *pids is malloc'd. */
int fm_ct_pids(const char *lxcpath, const char *name, pid_t **pids, size_t *n, fm_error *e);

/* Sends a gratuitous ARP for the container's IPv4 from its own interface. */
/* Takes the host end of the container's veth off its bridge (attach false)
 * or puts it back: a frozen source whose dump ends lets its TCP sockets out
 * of repair mode, and the kernel then sends a window probe whose newer
 * timestamp makes the client drop the restored target's first segments
 * (PAWS) for seconds; and a source copy being destroyed would reset its
 * peers' connections. Off the bridge, nothing it sends gets out. */
int fm_ct_bridge_port(const char *lxcpath, const char *name, bool attach, fm_error *e);
/* The same in two steps: the interfaces looked up ahead (liblxc, ms), then
 * one rtnetlink message (tens of us) where timing matters. */
typedef struct fm_ct_port {
        unsigned veth, bridge; /* interface indexes in the host's namespace */
} fm_ct_port;
int fm_ct_port_get(const char *lxcpath, const char *name, fm_ct_port *p, fm_error *e);
int fm_ct_port_set(const fm_ct_port *p, bool attach, fm_error *e);
int fm_ct_announce(const char *lxcpath, const char *name, fm_error *e);

