/* Shared storage (the paper's unknown-path case): a network file system
 * mounted on every edge host, which holds the rootfs of shared containers so
 * that a migration moves only memory. Here: the volume's identity, the
 * latency test (the paper's check 0), the flush before the target restores,
 * and where a shared container's tree lives on the volume. */
#pragma once
#include <sys/types.h>

#include "util/util.h"

#define FM_SHARED_ID_FILE ".fastmig-volume"
#define FM_SHARED_ID_LEN 32

typedef struct fm_shared_volume {
        char path[256];   /* mount point on this host */
        char fstype[64];  /* as /proc/self/mountinfo says: fuse.glusterfs, nfs4, ceph... */
        char id[FM_SHARED_ID_LEN + 1]; /* the same on every host that mounts this volume */
} fm_shared_volume;

/* Checks that path is the mount point of a network file system and reads
 * the volume's id (FM_SHARED_ID_FILE at its root; the first host to look
 * creates it). */
int fm_shared_open(const char *path, fm_shared_volume *v, fm_error *e);
/* True for the mountinfo type names of network and cluster file systems. */
bool fm_shared_fstype_ok(const char *fstype);

/* The latency test: n times (4 KiB write + fdatasync) and n times
 * (create, close, unlink) in a scratch directory on the volume; p50 and p99
 * over all 2n operations, in ms. Runs in a child process that is killed at
 * deadline_ms (a storage that does not answer blocks its callers). */
typedef struct fm_latency {
        double p50_ms, p99_ms, max_ms, total_ms;
        int ops;
} fm_latency;
int fm_shared_latency(const char *volume, int n, int deadline_ms, fm_latency *out, fm_error *e);
/* Default tolerance of a service (p99 of one small synchronous operation),
 * and the test's size and deadline; docs/SHARED.md says why. */
#define FM_SHARED_TOLERANCE_MS 20.0
#define FM_SHARED_PROBE_OPS 50
#define FM_SHARED_PROBE_DEADLINE_MS 2000

/* The flush: the file-system syncs of the volume and an fsync of every
 * file on it that the (frozen) processes hold open for writing, in a child process
 * killed at deadline_ms. CRIU does not flush, and a network file system's
 * client may still hold writes of the source when the target restores. */
int fm_shared_flush(const char *volume, const pid_t *pids, size_t n, int deadline_ms, int *files, fm_error *e);

/* The server of the file system mounted at path (the part of its mount
 * source before ':', e.g. 10.77.200.2 of 10.77.200.2:/fmshared). */
int fm_shared_server(const char *path, char *buf, size_t n);

/* A shared container's directory on the volume, VOLUME/fastmig/containers/NAME,
 * and its tree, .../rootfs; rel: the part below the volume. */
void fm_shared_ct_rel(const char *name, char *buf, size_t n);
void fm_shared_rootfs_rel(const char *name, char *buf, size_t n);

/* A tree that left the volume (moved to a host's own disk): renamed at
 * once into VOLUME/fastmig/trash, then removed by a detached thread (a
 * file system tree over the network takes seconds to remove). rel is below
 * the volume; a container directory of fastmig's own layout that is left
 * empty goes too. */
int fm_shared_discard(const char *volume, const char *rel, fm_error *e);
/* Removes the latency tests' directories (.fastmig-probe-*) older than
 * stale_s from the volume's top, in a child given
 * FM_SHARED_SWEEP_DEADLINE_MS (the volume may hang). How many went, or a
 * negative errno. */
int fm_shared_sweep_probes(const char *volume, int stale_s);
#define FM_SHARED_SWEEP_DEADLINE_MS 10000
