/* The testbed's storage host: a GlusterFS server in its own network
 * namespace (fm-store, 10.77.200.2, linked to the core like an edge host),
 * one volume with one brick, and a FUSE client mount of it on every edge
 * host at FM_TESTBED_ROOT/mecN/shared. Each client runs in its host's
 * network namespace, so its traffic crosses that host's shaped link; the
 * mounts are made in the root mount namespace before the agents start
 * (their namespaces copy them). */
#pragma once
#include "testbed/testbed.h"

#define FM_STORAGE_NS "fm-store"
#define FM_STORAGE_ADDR "10.77.200.2"
#define FM_STORAGE_CORE_ADDR "10.77.200.1"
#define FM_STORAGE_VOLUME "fmshared"
#define FM_STORAGE_DIR FM_TESTBED_ROOT "/storage"

/* Builds the storage host and mounts the volume on every host of tb
 * (tb->host[i].shared). */
int fm_storage_up(const fm_testbed *tb, fm_error *e);
/* Unmounts the volume everywhere and ends every daemon and client process
 * of it; safe on a half-built or absent storage host. */
void fm_storage_down(const fm_testbed *tb);
/* Cuts (up = false) or restores the storage host's link to the core: the
 * clients' connections stay open, their requests wait (an outage). */
int fm_storage_link(bool up, fm_error *e);
/* Makes the storage unreachable from one host (up = false: a blackhole
 * route on that host) or reachable again. */
int fm_storage_reach(const fm_host *h, bool up, fm_error *e);
