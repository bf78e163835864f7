/* The built-in workloads (docs/IMAGES.md):
 *   busybox  the host's static busybox and fm-seqecho in a directory rootfs;
 *   memory   busybox plus S MiB that fm-seqecho rewrites at R MiB/s;
 *   blank    an overlay clone of the "blank" app image (Debian 12 minbase,
 *            fm-seqecho as init), like the paper's blank container;
 *   video    an overlay clone of the "video" app image (blank's base plus
 *            nginx serving a video file), the paper's video container. */
#pragma once
#include "image/store.h"
#include "util/util.h"

#define FM_SEQECHO_PORT 7000

typedef struct fm_workload_spec {
        const char *kind;   /* busybox, memory, blank, video */
        double mem_mib;     /* memory: size */
        double dirty_mib_s; /* memory: rewrite rate */
        const char *fill;   /* memory: "random" (default, incompressible) or "half"
                             * (the second half of every page repeats one word) */
        const char *image;  /* blank, video: the app image's digest (NULL: the newest of the kind's name) */
        bool flat;          /* blank, video: a plain rootfs with the image's content, not a clone */
        bool shared;        /* blank, video: that plain rootfs on the shared volume (storage/shared.h) */
        bool plain_lxc;     /* an ordinary LXC container, as a user's own: LXC makes its network (lxc.net)
                             * and its /dev (a tmpfs), and CRIU dumps both; default: fastmig keeps the
                             * network namespace outside CRIU's images (lxc/ctnet.h) and /dev is the
                             * rootfs's, so that nothing but CRIU runs while it is frozen */
} fm_workload_spec;

/* Checks a spec: known kind, sizes in range (quoted in the error). */
int fm_workload_check(const fm_workload_spec *w, fm_error *e);

/* True for the kinds that are clones of an app image (blank, video). */
bool fm_workload_is_clone(const char *kind);

/* A workload's network: its veth on bridge, its static address ip/prefix,
 * the services' gateway (the same on every host: docs/FLEET.md). */
typedef struct fm_ct_net {
        const char *bridge;
        const char *ip;
        int prefix;
        const char *gateway;
        bool plain_lxc; /* as fm_workload_spec's */
} fm_ct_net;

/* Creates LXCPATH/NAME (rootfs from the host's static busybox plus the
 * fm-seqecho binary at seqecho_path, and an LXC config that meets the
 * checkpoint constraints) on the network net. */
int fm_workload_create(const char *lxcpath, const char *name, const fm_ct_net *net, const char *seqecho_path,
                       const fm_workload_spec *w, fm_error *e);

/* Creates LXCPATH/NAME as an overlay clone of the app image app of store
 * (LXC mounts the overlay through a pre-mount hook); flat: a plain directory
 * rootfs holding the same merged tree instead (what users without images
 * have, and what the benchmark's baseline moves); shared (a volume's mount
 * point, or NULL): that plain rootfs at VOLUME/fastmig/containers/NAME/rootfs. */
int fm_workload_create_clone(const char *lxcpath, const char *store, const char *name, const fm_ct_net *net,
                             const fm_image *app, bool flat, const char *shared, fm_error *e);
/* Removes a container and, when its rootfs is on the shared volume (mounted
 * at shared, may be NULL), that tree too. */
int fm_workload_destroy(const char *lxcpath, const char *shared, const char *name, fm_error *e);
