/* fastmig-orchd: the orchestrator daemon (docs/ORCHESTRATOR.md). A
 * foreground program for systemd: it reconciles with the agents, then
 * serves its API; SIGTERM or SIGINT stops it once the migrations under way
 * have ended. */
#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "orch/api.h"
#include "orch/http.h"
#include "orch/orch.h"
#include "proto/proto.h"
#include "pki/pki.h"
#include "proto/tls.h"

static const char USAGE[] =
        "usage: fastmig-orchd --fleet FILE --db FILE [--listen ADDR:PORT] [--url URL] [--pki DIR] [--cert NAME]\n"
        "                     [--log FILE] [--per-host N] [--coverage FILE] [--link-mbit N] [--deadline-ms N]\n"
        "  --listen: where the API is served (default 127.0.0.1:7443); --url: how clients reach it (links);\n"
        "  --pki/--cert: the fleet's PKI directory and the certificate (role operator) it serves with and\n"
        "  presents to the agents (default: the fleet's pki, name orch); --log: JSON lines (default stderr);\n"
        "  --per-host: migrations at once that touch one host (default 2).\n"
        "  --coverage: the fleet's coverage map (docs/MOBILITY.md), stored; without it, the stored one;\n"
        "  --link-mbit: the link between hosts, for a migration's estimate (default 1000);\n"
        "  --deadline-ms: an announced handover's deadline when the event gives none (default 3000).\n"
        "  FASTMIG_READY_FD: a descriptor that gets one byte once the API answers.\n";

static void http_log(void *data, const char *msg)
{
        fm_api *a = data;
        fm_orch_log(a->o, "warning", NULL, "https: %s", msg);
}

static int fail(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "fastmig-orchd: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        return 1;
}

int main(int argc, char **argv)
{
        const char *fleet_file = NULL, *db = NULL, *listen_at = "127.0.0.1:7443", *url = NULL, *pki = NULL,
                   *cert = "orch", *log_file = NULL, *coverage = NULL;
        int per_host = FM_ORCH_DEFAULT_PER_HOST, deadline_ms = FM_ORCH_DEFAULT_DEADLINE_MS;
        double link_mbit = FM_ORCH_DEFAULT_LINK_MBIT;
        static const struct option lo[] = {
                {"fleet", required_argument, 0, 'f'}, {"db", required_argument, 0, 'd'},
                {"listen", required_argument, 0, 'l'}, {"url", required_argument, 0, 'u'},
                {"pki", required_argument, 0, 'p'},   {"cert", required_argument, 0, 'c'},
                {"log", required_argument, 0, 'L'},   {"per-host", required_argument, 0, 'n'},
                {"coverage", required_argument, 0, 'C'}, {"link-mbit", required_argument, 0, 'm'},
                {"deadline-ms", required_argument, 0, 'D'},
                {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
        };
        int ch;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'f': fleet_file = optarg; break;
                case 'd': db = optarg; break;
                case 'l': listen_at = optarg; break;
                case 'u': url = optarg; break;
                case 'p': pki = optarg; break;
                case 'c': cert = optarg; break;
                case 'L': log_file = optarg; break;
                case 'n': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v < 1 || v > 64)
                                return fail("--per-host takes 1 to 64, not `%s'", optarg);
                        per_host = (int)v;
                        break;
                }
                case 'C': coverage = optarg; break;
                case 'm': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v < 1 || v > 1000000)
                                return fail("--link-mbit takes 1 to 1000000, not `%s'", optarg);
                        link_mbit = v;
                        break;
                }
                case 'D': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v > 600000)
                                return fail("--deadline-ms takes 0 to 600000, not `%s'", optarg);
                        deadline_ms = (int)v;
                        break;
                }
                case 'h': fputs(USAGE, stdout); return 0;
                default: fputs(USAGE, stderr); return 2;
                }
        }
        if (optind != argc || !fleet_file || !db) {
                fputs(USAGE, stderr);
                return 2;
        }
        char addr[64];
        uint32_t port = 0;
        const char *colon = strrchr(listen_at, ':');
        if (!colon || (size_t)(colon - listen_at) >= sizeof(addr) || fm_parse_u32(colon + 1, &port) < 0 || !port ||
            port > 65535)
                return fail("--listen takes ADDR:PORT, not `%s'", listen_at);
        snprintf(addr, sizeof(addr), "%.*s", (int)(colon - listen_at), listen_at);

        static fm_orch o;
        o.per_host = per_host;
        o.link_mbit = link_mbit;
        o.deadline_ms = deadline_ms;
        o.log = stderr;
        pthread_mutex_init(&o.map_lock, NULL);
        pthread_mutex_init(&o.log_lock, NULL);
        pthread_mutex_init(&o.lock, NULL);
        pthread_cond_init(&o.changed, NULL);
        umask(077); /* the database and its log are the operator's alone */
        if (log_file) {
                o.log = fopen(log_file, "ae");
                if (!o.log)
                        return fail("log %s: %s", log_file, strerror(errno));
        }
        snprintf(o.base_url, sizeof(o.base_url), "%s", url ? url : "");
        if (!url)
                snprintf(o.base_url, sizeof(o.base_url), "https://%s:%u", addr, port);

        fm_error e = {0};
        if (fm_fleet_load(fleet_file, &o.fleet, &e) < 0)
                return fail("%s", e.msg);
        if (!pki)
                pki = o.fleet.pki[0] ? o.fleet.pki : FM_PKI_DEFAULT_DIR;
        fm_tcp_client_netns(o.fleet.agents_netns);
        if (fm_tls_setup(pki, cert, &e) < 0)
                return fail("certificate %s in %s: %s", cert, pki, e.msg);
        if (fm_store_open(db, &o.store, &e) < 0)
                return fail("%s", e.msg);
        if (fm_orch_follow_open(&o, coverage, &e) < 0)
                return fail("%s", e.msg);

        /* every thread inherits this mask; main waits for the signals */
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop, NULL);
        signal(SIGPIPE, SIG_IGN);

        fm_orch_log(&o, "info", NULL, "starting: fleet %s (%zu hosts), database %s", o.fleet.name, (size_t)o.fleet.hosts, db);
        if (fm_orch_notifier_start(&o, &e) < 0)
                return fail("%s", e.msg);
        if (fm_orch_reconcile(&o, &e) < 0)
                return fail("reconciling: %s", e.msg);
        if (fm_orch_runner_start(&o, &e) < 0)
                return fail("%s", e.msg);
        if (fm_orch_follower_start(&o, &e) < 0)
                return fail("%s", e.msg);
        int fd = fm_tcp_listen(addr, (uint16_t)port, &e);
        if (fd < 0)
                return fail("%s", e.msg);
        char crt[600], key[600];
        snprintf(crt, sizeof(crt), "%s/%s.crt", pki, cert);
        snprintf(key, sizeof(key), "%s/%s.key", pki, cert);
        static fm_api a;
        a.o = &o;
        fm_http *h = NULL;
        if (fm_http_start(fd, crt, key, o.store, fm_api_handle, http_log, &a, &h, &e) < 0)
                return fail("%s", e.msg);
        fm_orch_log(&o, "info", NULL, "serving %s", o.base_url);
        const char *ready = getenv("FASTMIG_READY_FD");
        uint32_t rfd = 0;
        if (ready && fm_parse_u32(ready, &rfd) == 0) {
                fm_write_all((int)rfd, "r", 1);
                close((int)rfd);
        }
        int sig = 0;
        sigwait(&stop, &sig);
        fm_orch_log(&o, "info", NULL, "signal %d: stopping once the migrations under way end", sig);
        fm_http_stop(h);
        fm_orch_follower_stop(&o);
        fm_orch_runner_stop(&o);
        fm_orch_notifier_stop(&o);
        fm_orch_follow_close(&o);
        fm_store_close(o.store);
        fm_orch_log(&o, "info", NULL, "stopped");
        return 0;
}
