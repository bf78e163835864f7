/* Steering a service IP to the host that runs it (the paper's SDN step): one
 * host route in the core router, replaced with a single rtnetlink message. */
#pragma once
#include "util/util.h"

typedef struct fm_router {
        int fd;           /* NETLINK_ROUTE socket bound in the router's namespace */
        uint32_t seq;
} fm_router;

int fm_router_open(fm_router *r, const char *netns, fm_error *e);
void fm_router_close(fm_router *r);
/* ip route replace DST/32 via GW; both dotted IPv4. */
int fm_router_set(fm_router *r, const char *dst, const char *gw, fm_error *e);
int fm_router_del(fm_router *r, const char *dst, fm_error *e);
/* Looks up the gateway of DST/32; -ENOENT when there is none. */
int fm_router_get(fm_router *r, const char *dst, char *gw, size_t gwlen, fm_error *e);
