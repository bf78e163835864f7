/* The local testbed: edge hosts, a core router and the user, each a network
 * namespace, linked by tbf-shaped veth pairs.
 *
 *            ue (10.77.0.2)
 *             |
 *           core (10.77.0.1, 10.77.N.1)  -- routes service /32s to hosts
 *          /    \            (each link shaped to --link-mbit)
 *   mec1 (10.77.1.2)   mec2 (10.77.2.2) ...
 *     fmbr0 10.78.0.1/24   fmbr0 10.78.0.1/24   (same gateway IP and MAC)
 *      |                    |
 *   containers 10.78.0.X (one service IP, wherever the container runs)
 */
#pragma once
#include "fleet/fleet.h"
#include "util/util.h"

#define FM_TESTBED_MAX_HOSTS FM_FLEET_MAX_HOSTS
#define FM_TESTBED_STATE "/run/fastmig/testbed.json"
#define FM_TESTBED_ROOT "/var/lib/fastmig/testbed"
#define FM_TESTBED_PKI FM_TESTBED_ROOT "/pki" /* the testbed fleet's CA and certificates */
#define FM_TESTBED_FLEET FM_TESTBED_ROOT "/fleet.json" /* the testbed as a fleet (docs/FLEET.md) */
#define FM_TESTBED_CORE_NS "fm-core"
#define FM_TESTBED_UE_NS "fm-ue"
#define FM_TESTBED_BRIDGE "fmbr0"
#define FM_TESTBED_GATEWAY "10.78.0.1"
#define FM_TESTBED_GATEWAY_MAC "02:fa:57:00:00:01"
#define FM_TESTBED_SUBNET_PREFIX "10.78.0."
#define FM_TESTBED_UE_ADDR "10.77.0.2"

typedef struct fm_testbed {
        int hosts;
        int link_mbit;
        bool shared; /* a storage host serves a volume mounted on every host */
        fm_host host[FM_TESTBED_MAX_HOSTS];
} fm_testbed;

typedef struct fm_testbed_opts {
        int hosts;
        int link_mbit;
        const char *agent_path;
        bool test_hooks;
        bool shared_storage; /* the storage host of storage.h */
        int agent_expiry_s;  /* the agents' --expiry (0: their default) */
} fm_testbed_opts;

typedef void (*fm_progress_fn)(const char *what, void *data);

/* Fills the host table for N hosts (no side effects). */
void fm_testbed_layout(fm_testbed *tb, int hosts, int link_mbit, bool shared);
int fm_testbed_up(const fm_testbed_opts *o, fm_progress_fn progress, void *pdata, fm_error *e);
int fm_testbed_down(fm_progress_fn progress, void *pdata, fm_error *e);
/* Kills (SIGKILL, as a crash would) or starts the agent of one host, as a
 * supervisor would restart it (with the testbed's options). */
int fm_testbed_agent(const char *host, bool start, const char *agent_path, fm_error *e);
/* Cuts (or restores) what the core forwards to and from one host: its
 * links to the other hosts and to the users go silent, packets dropped;
 * fastmig, on the core, still reaches its agent. */
int fm_testbed_link(const char *host, bool cut, fm_error *e);
/* Loads the state of a running testbed; -ENOENT when none is up. */
int fm_testbed_load(fm_testbed *tb, fm_error *e);
const fm_host *fm_testbed_host(const fm_testbed *tb, const char *name);
/* The testbed as a fleet: agents reached from the core, users in the ue,
 * steering by the core's routes (what `testbed up` writes to FM_TESTBED_FLEET). */
void fm_testbed_fleet(const fm_testbed *tb, fm_fleet *f);
enum {
        FM_EXEC_QUIET = 1,       /* its stdio on /dev/null */
        FM_EXEC_PRIVATE_RUN = 2, /* a tmpfs /run of its own, as a real host has (CRIU caches there) */
};
/* Runs argv inside HOST's namespaces (see netns.h); returns its exit status. */
int fm_testbed_exec(const fm_host *h, char *const argv[], int flags, fm_error *e);
/* A short command line split at spaces (ip, tc, sysctl), run to its end. */
int fm_testbed_run(fm_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A veth pair between two namespaces; the tbf shaping of one end. */
int fm_testbed_veth(const char *ns_a, const char *dev_a, const char *ns_b, const char *dev_b, fm_error *e);
int fm_testbed_shape(const char *ns, const char *dev, int mbit, fm_error *e);
/* Kills every process in the network namespace ns. */
void fm_testbed_kill_netns(const char *ns);
/* True when path is a mount point in this mount namespace. */
bool fm_testbed_is_mountpoint(const char *path);
/* True when anything a testbed creates is present (namespaces, mounts, state). */
bool fm_testbed_any_left(char *what, size_t len);

/* ---- the testbed's orchestrator (testbed/orch.c, in the orchestrator's
 * library; stopping it is here, for testbed down) ---- */
#define FM_TESTBED_ORCH FM_TESTBED_ROOT "/orch" /* its database, log, token, pid */
#define FM_TESTBED_ORCH_ADDR "127.0.0.1"
#define FM_TESTBED_ORCH_PORT 7443
#define FM_TESTBED_ORCH_CLIENT "testbed" /* the token testbed env orch prints */

/* Starts fastmig-orchd (orchd_path) for the testbed's fleet, first making
 * its certificate (orch, role operator, for 127.0.0.1) and a token for
 * client `testbed' when they are missing; returns once it serves. per_host:
 * its --per-host (0: its default). */
int fm_testbed_orch_start(const char *orchd_path, int per_host, fm_error *e);
/* Stops it: SIGTERM (it waits for migrations under way), SIGKILL when kill
 * (as a crash would) or when it has not ended after 30 s. 0 when none ran. */
int fm_testbed_orch_stop(bool kill, fm_error *e);
/* FASTMIG_API_URL, FASTMIG_API_TOKEN and FASTMIG_API_CA as shell
 * assignments into buf. -ENOENT without a started orchestrator. */
int fm_testbed_orch_env(char *buf, size_t n, fm_error *e);
/* The same put into this process's environment (for fm_api_client_from_env). */
int fm_testbed_orch_setenv(fm_error *e);
