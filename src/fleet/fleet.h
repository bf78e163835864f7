/* A fleet: the edge hosts fastmig drives, where it reaches their agents
 * from, the services' network, and how traffic is steered to a service's
 * host. One JSON file (docs/FLEET.md); `fastmig testbed up` writes the
 * testbed's, an operator writes one for their own hosts. */
#pragma once
#include <json-c/json.h>
#include "util/util.h"

#define FM_FLEET_MAX_HOSTS 16
#define FM_FLEET_MAX_BYTES (64 * 1024)
#define FM_STEER_TIMEOUT_MS 5000 /* default bound on one call of a steering command */

typedef enum fm_steer_kind {
        FM_STEER_ROUTE,   /* a host route per service in a router (rtnetlink) */
        FM_STEER_COMMAND, /* the operator's program, for routers, SDN controllers, a 5G core */
        FM_STEER_GARP,    /* one L2 segment: the restored container's gratuitous ARP does it */
} fm_steer_kind;

typedef struct fm_steer_cfg {
        fm_steer_kind kind;
        char netns[40];     /* route: the router's network namespace ("": this one) */
        char command[256];  /* command: an absolute path */
        int timeout_ms;     /* command: how long one call may take */
} fm_steer_cfg;

typedef struct fm_host {
        char name[32];     /* mec1 */
        char addr[16];     /* its agent */
        uint16_t port;
        char route_via[16]; /* route steering: the next hop for its services (default addr) */
        char bridge[16];   /* where its containers' veths join ("" : not said) */
        /* what the host should have, compared by `fleet check` with what its
         * agent reports ("" : not said) */
        char lxcpath[256];
        char images[256];  /* tmpfs for checkpoint images */
        char store[256];   /* the image store */
        char shared[256];  /* the shared volume's mount point */
        /* the testbed's own: its namespace and state directory */
        char netns[40];
        char state[256];
} fm_host;

typedef struct fm_fleet {
        char name[64];
        char pki[256];          /* the CA and the certificates (FASTMIG_PKI overrides) */
        char cert[64];          /* fastmig's certificate (FASTMIG_CERT overrides), default operator */
        char agents_netns[40];  /* where connections to the agents start ("": here) */
        char users_netns[40];   /* where the probe and the video client run, as a user ("": here) */
        uint32_t subnet;        /* the services' network (host order) ... */
        int prefix;             /* ... and its length */
        char gateway[16];       /* the services' gateway on every host */
        fm_steer_cfg steer;
        int hosts;
        fm_host host[FM_FLEET_MAX_HOSTS];
} fm_fleet;

/* Parses and checks a fleet description; the error names the field (or the
 * line of a syntax error). Unknown keys are refused: a typo must not pass. */
int fm_fleet_parse(const char *text, size_t len, fm_fleet *f, fm_error *e);
int fm_fleet_load(const char *path, fm_fleet *f, fm_error *e);
json_object *fm_fleet_json(const fm_fleet *f);
int fm_fleet_save(const char *path, const fm_fleet *f, fm_error *e);

const fm_host *fm_fleet_host(const fm_fleet *f, const char *name);
/* The host whose agent is addr; NULL if none. */
const fm_host *fm_fleet_host_by_addr(const fm_fleet *f, const char *addr);
/* The i-th address for a service (i from 0): from the 10th of the
 * services' network up, the gateway skipped; "" past its end. */
#define FM_FLEET_FIRST_SERVICE 10
void fm_fleet_service_addr(const fm_fleet *f, int i, char out[16]);
/* "mec1, mec2, mec3": for messages. */
void fm_fleet_names(const fm_fleet *f, char *buf, size_t n);
const char *fm_steer_kind_name(fm_steer_kind k);
