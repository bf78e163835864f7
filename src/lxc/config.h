/* An LXC config that comes from a peer (a migration's source) is never
 * stored as sent: it is rebuilt from the keys a migration needs, each value
 * checked, and anything that would act on the target host itself (hooks,
 * includes, host paths, devices, host namespaces, security profiles) is
 * refused with the key named. The allow-list is in docs/SECURITY.md. */
#pragma once
#include "util/util.h"

typedef struct fm_ct_config_policy {
        const char *name;   /* the container's name: lxc.uts.name must match */
        const char *rootfs; /* the target's own lxc.rootfs.path value */
        const char *bridge; /* the target's bridge for lxc.net.N.link; NULL: keep the peer's */
        bool clone;         /* the target writes the clone's overlay hook: the peer's is dropped */
        /* the target's own namespace for a container whose network fastmig
         * keeps (lxc/ctnet.h): the peer's lxc.namespace.share.net is replaced
         * by it and lxc.net lines are refused; NULL: the reverse */
        const char *netns;
        /* host directories a peer's config may bind-mount, read-only only;
         * NULL-terminated, NULL: fm_ct_bind_allow_default */
        const char *const *bind_allow;
} fm_ct_config_policy;

/* LXC's own templates bind the host's system libraries read-only. */
extern const char *const fm_ct_bind_allow_default[];

/* The rebuilt config (malloc'd) in *out; -EPERM naming the line for a key
 * or value the target refuses, -EINVAL for a malformed line. */
int fm_ct_config_rebuild(const char *peer, const fm_ct_config_policy *pol, char **out, fm_error *e);

/* The value of key's last line in config text (quotes stripped), malloc'd;
 * NULL if absent. */
char *fm_ct_config_value(const char *config, const char *key);
