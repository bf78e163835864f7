/* Traffic steering: after a service moves, its traffic must reach its new
 * host. One interface, three backends, chosen by the fleet (docs/FLEET.md):
 *   route    a host route per service in a router's namespace (route.h),
 *            next hop the host's route_via: the testbed's core;
 *   command  the operator's program, called as
 *              COMMAND PHASE SERVICE_IP OLD_HOST NEW_HOST
 *            with FASTMIG_OLD_ADDR, FASTMIG_NEW_ADDR (the hosts' agents) and
 *            FASTMIG_NEW_ROUTE_VIA in its environment; exit status 0 when
 *            traffic now goes to NEW_HOST (routers, SDN controllers, a 5G
 *            core's traffic rules);
 *   garp     hosts on one L2 segment: the restored container announces
 *            itself (gratuitous ARP, src/lxc/container.c); nothing to do here. */
#pragma once
#include <pthread.h>
#include "fleet/fleet.h"
#include "steer/route.h"

/* Why traffic moves, passed to a command as PHASE */
#define FM_STEER_PLACE "place"       /* a new service runs on new */
#define FM_STEER_SOURCE "source"     /* before a migration: traffic at the source */
#define FM_STEER_FROZEN "frozen"     /* the source is frozen: to the target early */
#define FM_STEER_COMMIT "commit"     /* the target runs it: the migration commits on success */
#define FM_STEER_ROLLBACK "rollback" /* the migration failed: back to the source */

typedef struct fm_steer {
        fm_steer_cfg cfg;
        fm_router rt; /* route: open while the steer is */
        pthread_mutex_t lock; /* one call at a time (an agent's migrations share it) */
} fm_steer;

int fm_steer_open(fm_steer *s, const fm_steer_cfg *cfg, fm_error *e);
void fm_steer_close(fm_steer *s);
/* Traffic for ip goes to host to from now on (from: where it went, may be
 * NULL). */
int fm_steer_set(fm_steer *s, const char *phase, const char *ip, const fm_host *from, const fm_host *to, fm_error *e);
