/* A container's network namespace kept by fastmig rather than by LXC.
 * Why: CRIU dumps and restores a namespace it owns by running `ip ... save',
 * `iptables-save' and their restores while the container is frozen (about
 * 300 ms of a 450 ms dump on a busy 2-core host). A namespace made and kept
 * here (one veth whose host end joins the bridge, the address, the default
 * route) is external to CRIU: the source names it in the dump
 * (`--external net[INODE]:KEY'), the target makes its own copy while the
 * service still runs and hands it to CRIU (`--inherit-fd'), and nothing but
 * CRIU runs in the frozen window. The container's config says
 * `lxc.namespace.share.net = PATH' and has no lxc.net lines: LXC starts,
 * stops, attaches and checkpoints it as usual.
 *
 * What the namespace holds is written beside the container's config
 * (LXCPATH/NAME/fastmig-net, JSON); a container without that file is
 * an ordinary LXC one whose namespace CRIU dumps (lxc.net lines). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>

#include "util/util.h"

#define FM_CTNET_KEY "fm-net" /* CRIU's name for the external namespace, both sides */

typedef struct fm_ctnet {
        char ip[16];      /* the service address, dotted */
        int prefix;       /* 8..30 */
        char gateway[16]; /* the default route, "" for none */
        char mac[18];     /* the container's interface, aa:bb:cc:dd:ee:ff */
        char bridge[16];  /* the host's bridge its veth joins */
} fm_ctnet;

/* The container's record: 0, -ENOENT when it has none (LXC's network), or
 * another error for a file that does not read back. */
int fm_ctnet_read(const char *lxcpath, const char *name, fm_ctnet *out, fm_error *e);
int fm_ctnet_write(const char *lxcpath, const char *name, const fm_ctnet *n, fm_error *e);

/* As sent in a migration's prepare; from_json checks every field (a peer's). */
json_object *fm_ctnet_json(const fm_ctnet *n);
int fm_ctnet_from_json(json_object *o, fm_ctnet *out, fm_error *e);

/* The namespace's file (/run/netns/fm-ct-NAME, in the agent's own /run)
 * and the host end of the veth (fmv + 8 hex digits of the name). */
void fm_ctnet_path(const char *name, char *buf, size_t n);
void fm_ctnet_veth(const char *name, char *buf, size_t n);
bool fm_ctnet_exists(const char *name);

/* Makes the namespace with its interface, address and route, and the host
 * end of its veth, up; on the bridge when attach (a container about to
 * start), off it otherwise (a migration's target before its restore: a
 * service address that answers before the service is there resets the
 * peers' connections). A stale namespace of that name is replaced. */
int fm_ctnet_create(const char *name, const fm_ctnet *n, bool attach, fm_error *e);
/* Removes the veth and the namespace's file (the namespace goes with its
 * last process); missing parts are not an error. */
void fm_ctnet_destroy(const char *name);
