/* The built-in workloads: a busybox container whose init is fm-seqecho.
 * "blank" is the service alone; "memory" adds S MiB that it rewrites at R MiB/s. */
#pragma once
#include "util/util.h"

#define FM_SEQECHO_PORT 7000

typedef struct fm_workload_spec {
        const char *kind;   /* "blank" or "memory" */
        double mem_mib;     /* memory: size */
        double dirty_mib_s; /* memory: rewrite rate */
        const char *fill;   /* memory: "random" (default, incompressible) or "half"
                             * (the second half of every page repeats one word) */
} fm_workload_spec;

/* Checks a spec: known kind, sizes in range (quoted in the error). */
int fm_workload_check(const fm_workload_spec *w, fm_error *e);

/* Creates LXCPATH/NAME (rootfs from the host's static busybox plus the
 * fm-seqecho binary at seqecho_path, and an LXC config that meets the
 * checkpoint constraints) with the static service address ip (no prefix). */
int fm_workload_create(const char *lxcpath, const char *name, const char *ip, const char *seqecho_path,
                       const fm_workload_spec *w, fm_error *e);
