/* Entering an edge host's network namespace in a way LXC and CRIU accept. */
#pragma once
#include "util/util.h"

/* Moves the calling process (it must be single-threaded) into a private mount
 * namespace and the named network namespace (/run/netns/NAME), with a fresh
 * sysfs that still has the cgroup mounts under /sys/fs/cgroup.
 * Why: `ip netns exec` remounts /sys and hides the cgroup tree (LXC then starts
 * containers without cgroups and checkpoint fails with "Failed getting freezer
 * path"); plain setns keeps the old sysfs (LXC cannot find the bridge). */
int fm_netns_enter_host(const char *netns, fm_error *e);

/* Only the network namespace (enough for sockets, routes, the probe). */
int fm_netns_enter_net(const char *netns, fm_error *e);

/* Opens a socket of the given kind inside a network namespace without moving
 * the calling thread for longer than the call; NULL or "": this one. Here
 * and in fm_netns_enter_net a namespace is a name in /run/netns or, if it
 * starts with '/', a namespace file (/proc/PID/ns/net). */
int fm_netns_socket(const char *netns, int domain, int type, int proto, fm_error *e);

/* Moves the calling process (single-threaded) into a mount namespace of its
 * own, a slave of the one it was in, and gives it there a tmpfs on /run that
 * still shows everything the host's /run holds (each entry bound back); the
 * host's own /run is left alone. Why: CRIU keeps its kernel-feature cache
 * (/run/criu.kdat) only on a tmpfs /run; without it every CRIU run
 * re-detects features (20-40 ms). */
int fm_netns_private_run(fm_error *e);
