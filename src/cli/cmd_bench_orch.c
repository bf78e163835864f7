/* fastmig bench-orch: migrations through the orchestrator, N services at
 * once (1, 3, 6) against the same N one at a time, in one invocation, on a
 * 3-host testbed of its own: per-migration downtime and total time, the
 * wall time of the batch, and the API's own share (from the request to the
 * migration's start) beside them. The services are blank workloads, two
 * per host, each moving to the next host; a first round trip places the
 * app image on every host, so that every measured migration is a
 * memory-mig. The orchestrator runs with --per-host equal to the largest
 * N, so a batch is never held back by the limit it is measuring; then
 * again with its default limit, which queues what would exceed it
 * ("at once, limited"). */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli/bench.h"
#include "orch/client.h"
#include "orch/orch.h"
#include "plane/images.h"
#include "plane/plane.h"
#include "proto/proto.h"
#include "stats/stats.h"

static const char USAGE[] = "fastmig bench-orch [--counts 1,3,6] [--link-mbit M (1000)] [--json]";

#define SERVICES 6
#define HOSTS 3

typedef struct one {
        double downtime_ms, total_ms, api_ms, frozen_ms;
        bool ok;
} one;

typedef struct batch {
        one m[SERVICES];
        int n;
        double wall_ms;
} batch;

static fm_api_client api;

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double num(json_object *o, const char *k)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, k, &v) && v ? json_object_get_double(v) : -1;
}

/* service i (b1..b6): b1, b3, b5 start on mec1, mec2, mec3, then b2, b4, b6 */
static void service(int i, char name[8], int *home)
{
        static const int order[SERVICES] = {1, 3, 5, 2, 4, 6};
        snprintf(name, 8, "b%d", order[i]);
        *home = (order[i] - 1) / 2; /* b1, b2 on mec1 ... */
}

/* Asks for the migrations of services 0..n-1 to the host after (forward)
 * or back to their home; together (at once) or each after the one before;
 * fills b when it is given. */
static int move(const fm_fleet *f, int n, bool forward, bool at_once, batch *b, fm_error *e)
{
        char ids[SERVICES][24] = {{0}};
        int64_t asked[SERVICES];
        double t0 = fm_now_ms();
        for (int i = 0; i < n; i++) {
                char name[8];
                int home;
                service(i, name, &home);
                json_object *req = json_object_new_object(), *opts = json_object_new_object(), *rep = NULL, *id = NULL;
                json_object_object_add(req, "container", json_object_new_string(name));
                json_object_object_add(req, "to", json_object_new_string(f->host[forward ? (home + 1) % HOSTS : home].name));
                json_object_object_add(req, "options", opts);
                long st = 0;
                asked[i] = wall_ms();
                int r = fm_api_call(&api, "POST", "/fastmig/v1/migrations", req, &st, &rep, e);
                json_object_put(req);
                if (r == 0 && json_object_object_get_ex(rep, "id", &id))
                        snprintf(ids[i], sizeof(ids[i]), "%s", json_object_get_string(id));
                json_object_put(rep);
                if (r < 0)
                        return fm_err_wrap(e, "asking for the migration of %s", name);
                if (!ids[i][0])
                        return fm_err(e, EPROTO, "the orchestrator's answer for %s has no migration id", name);
                if (at_once && i < n - 1)
                        continue;
                /* wait for what was asked: this one, or the whole batch */
                for (int k = at_once ? 0 : i; k <= i; k++) {
                        char path[96];
                        snprintf(path, sizeof(path), "/fastmig/v1/migrations/%s", ids[k]);
                        for (;;) {
                                json_object *m = NULL, *v = NULL;
                                if (fm_api_call(&api, "GET", path, NULL, &st, &m, e) < 0)
                                        return fm_err_wrap(e, "following migration %s", ids[k]);
                                const char *status = json_object_object_get_ex(m, "status", &v) ? json_object_get_string(v) : "";
                                if (strcmp(status, "queued") && strcmp(status, "running")) {
                                        if (b) {
                                                json_object *rp = NULL;
                                                json_object_object_get_ex(m, "report", &rp);
                                                one *o = &b->m[k];
                                                o->ok = !strcmp(status, "succeeded") && rp &&
                                                        fm_json_bool(rp, "state_continuous", false);
                                                o->downtime_ms = num(rp, "downtime_ms");
                                                o->frozen_ms = num(rp, "frozen_ms");
                                                o->total_ms = num(rp, "total_ms");
                                                o->api_ms = num(m, "started") - (double)asked[k];
                                        }
                                        json_object_put(m);
                                        if (strcmp(status, "succeeded"))
                                                return fm_err(e, EIO, "migration %s: %s", ids[k], status);
                                        break;
                                }
                                json_object_put(m);
                                struct timespec ts = {0, 50 * 1000000L};
                                nanosleep(&ts, NULL);
                        }
                }
        }
        if (b) {
                b->n = n;
                b->wall_ms = fm_now_ms() - t0;
        }
        return 0;
}

static void summarize(const batch *b, double (*get)(const one *), fm_summary *s)
{
        double v[SERVICES];
        for (int i = 0; i < b->n; i++)
                v[i] = get(&b->m[i]);
        fm_summarize(v, (size_t)b->n, s);
}

static double g_down(const one *o) { return o->downtime_ms; }
static double g_total(const one *o) { return o->total_ms; }
static double g_api(const one *o) { return o->api_ms; }

static double worst(const batch *b, double (*get)(const one *))
{
        double w = 0;
        for (int i = 0; i < b->n; i++)
                if (get(&b->m[i]) > w)
                        w = get(&b->m[i]);
        return w;
}

static json_object *batch_json(const batch *b)
{
        json_object *o = json_object_new_object(), *a = json_object_new_array();
        fm_summary s;
        int ok = 0;
        for (int i = 0; i < b->n; i++) {
                json_object *m = json_object_new_object();
                json_object_object_add(m, "downtime_ms", json_object_new_double(b->m[i].downtime_ms));
                json_object_object_add(m, "total_ms", json_object_new_double(b->m[i].total_ms));
                json_object_object_add(m, "request_to_start_ms", json_object_new_double(b->m[i].api_ms));
                json_object_object_add(m, "ok", json_object_new_boolean(b->m[i].ok));
                json_object_array_add(a, m);
                ok += b->m[i].ok;
        }
        json_object_object_add(o, "migrations", a);
        json_object_object_add(o, "state_kept", json_object_new_int(ok));
        summarize(b, g_down, &s);
        json_object_object_add(o, "downtime_ms", summary_json(&s));
        summarize(b, g_total, &s);
        json_object_object_add(o, "total_ms", summary_json(&s));
        summarize(b, g_api, &s);
        json_object_object_add(o, "request_to_start_ms", summary_json(&s));
        json_object_object_add(o, "wall_ms", json_object_new_double(b->wall_ms));
        return o;
}

static void print_row(int n, const char *how, const batch *b)
{
        fm_summary d, t, a;
        summarize(b, g_down, &d);
        summarize(b, g_total, &t);
        summarize(b, g_api, &a);
        int ok = 0;
        for (int i = 0; i < b->n; i++)
                ok += b->m[i].ok;
        printf("%2d %-11s %8.1f %8.1f %9.1f %9.1f %9.2f %9.2f %9.1f   %d/%d\n", n, how, d.mean, worst(b, g_down), t.mean,
               worst(b, g_total), a.mean, worst(b, g_api), b->wall_ms, ok, b->n);
}

int cmd_bench_orch(int argc, char **argv)
{
        const char *counts_arg = "1,3,6";
        uint32_t mbit = 1000;
        bool json = false;
        static const struct option lo[] = {{"counts", required_argument, 0, 'c'},
                                           {"link-mbit", required_argument, 0, 'm'},
                                           {"json", no_argument, 0, 'j'},
                                           {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'c')
                        counts_arg = optarg;
                else if (ch == 'm' && (fm_parse_u32(optarg, &mbit) < 0 || mbit < 1 || mbit > 100000))
                        return cli_fail("--link-mbit takes 1 to 100000, not `%s'", optarg);
                else if (ch == 'j')
                        json = true;
                else if (ch != 'm')
                        return cli_usage(USAGE);
        }
        if (optind != argc)
                return cli_usage(USAGE);
        int counts[SERVICES], ncounts = 0, most = 0;
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", counts_arg);
        for (char *sv = NULL, *t = strtok_r(buf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
                uint32_t v = 0;
                if (fm_parse_u32(t, &v) < 0 || v < 1 || v > SERVICES || ncounts == SERVICES)
                        return cli_fail("--counts takes up to %d numbers from 1 to %d, not `%s'", SERVICES, SERVICES, counts_arg);
                counts[ncounts++] = (int)v;
                if ((int)v > most)
                        most = (int)v;
        }
        fm_testbed tb;
        if (fm_testbed_load(&tb, NULL) == 0)
                return cli_fail("bench-orch builds a 3-host testbed of its own: take the one that is up down first "
                                "(`fastmig testbed down')");
        fm_error e = {0};
        char agent[4200], orchd[4200];
        snprintf(agent, sizeof(agent), "%s/fastmigd", fm_self_dir());
        snprintf(orchd, sizeof(orchd), "%s/fastmig-orchd", fm_self_dir());
        fprintf(stderr, "bench-orch: building a 3-host testbed (%u Mbit/s links) with its orchestrator (--per-host %d)\n",
                mbit, most);
        fm_testbed_opts to = {.hosts = HOSTS, .link_mbit = (int)mbit, .agent_path = agent};
        int r = fm_testbed_up(&to, NULL, NULL, &e);
        fm_fleet f;
        if (r == 0)
                r = fm_testbed_orch_start(orchd, most, &e);
        if (r == 0)
                r = fm_fleet_load(FM_TESTBED_FLEET, &f, &e);
        if (r == 0) /* the testbed's client settings, as `testbed env orch' prints them */
                r = fm_testbed_orch_setenv(&e);
        if (r == 0) {
                if (!fm_api_client_from_env(&api, &e) || e.code)
                        r = e.code ? -e.code : fm_err(&e, EIO, "no orchestrator client settings");
        }
        _cleanup_free_ char *seqecho = fm_strdupf("%s/fm-seqecho", fm_self_dir());
        for (int i = 0; r == 0 && i < SERVICES; i++) {
                char name[8], ip[16];
                int home;
                service(i, name, &home);
                fm_build_opts bo = {.seqecho_path = seqecho, .progress = cli_image_progress};
                fm_image app;
                r = fm_plane_image_install(&f.host[home], "blank", NULL, &bo, &app, &e);
                fm_workload_spec w = {.kind = "blank", .image = app.digest};
                if (r == 0)
                        r = fm_plane_start_workload(&f, f.host[home].name, name, &w, ip, &e);
        }
        if (r == 0) {
                fprintf(stderr, "bench-orch: placing the app image on every host (each service there and back)\n");
                r = move(&f, SERVICES, true, true, NULL, &e);
                if (r == 0)
                        r = move(&f, SERVICES, false, true, NULL, &e);
        }
        batch seq[SERVICES], par[SERVICES], lim[SERVICES];
        for (int c = 0; r == 0 && c < ncounts; c++) {
                int n = counts[c];
                fprintf(stderr, "bench-orch: %d service(s), one at a time\n", n);
                r = move(&f, n, true, false, &seq[c], &e);
                if (r == 0)
                        r = move(&f, n, false, true, NULL, &e);
                fprintf(stderr, "bench-orch: %d service(s) at once\n", n);
                if (r == 0)
                        r = move(&f, n, true, true, &par[c], &e);
                if (r == 0)
                        r = move(&f, n, false, true, NULL, &e);
        }
        if (r == 0) {
                fprintf(stderr, "bench-orch: the orchestrator again, with its default --per-host %d\n",
                        FM_ORCH_DEFAULT_PER_HOST);
                r = fm_testbed_orch_stop(false, &e);
                if (r == 0)
                        r = fm_testbed_orch_start(orchd, FM_ORCH_DEFAULT_PER_HOST, &e);
        }
        for (int c = 0; r == 0 && c < ncounts; c++) {
                fprintf(stderr, "bench-orch: %d service(s) at once, limited\n", counts[c]);
                r = move(&f, counts[c], true, true, &lim[c], &e);
                if (r == 0)
                        r = move(&f, counts[c], false, true, NULL, &e);
        }
        fm_error de = {0};
        fm_testbed_down(NULL, NULL, &de);
        if (r < 0)
                return cli_fail("bench-orch: %s", e.msg);
        if (json) {
                json_object *o = json_object_new_object(), *a = json_object_new_array();
                json_object_object_add(o, "link_mbit", json_object_new_int((int)mbit));
                json_object_object_add(o, "per_host", json_object_new_int(most));
                json_object_object_add(o, "per_host_limited", json_object_new_int(FM_ORCH_DEFAULT_PER_HOST));
                for (int c = 0; c < ncounts; c++) {
                        json_object *x = json_object_new_object();
                        json_object_object_add(x, "services", json_object_new_int(counts[c]));
                        json_object_object_add(x, "one_at_a_time", batch_json(&seq[c]));
                        json_object_object_add(x, "at_once", batch_json(&par[c]));
                        json_object_object_add(x, "at_once_limited", batch_json(&lim[c]));
                        json_object_array_add(a, x);
                }
                json_object_object_add(o, "runs", a);
                cli_print_json(o);
                json_object_put(o);
                return 0;
        }
        printf("migrations through the orchestrator, %u Mbit/s links, blank workloads (memory-mig), --per-host %d;\n"
               "limited: the default --per-host %d (a migration waits while either of its hosts has that many)\n",
               mbit, most, FM_ORCH_DEFAULT_PER_HOST);
        printf(" N how          downtime_ms         total_ms      request->start_ms    wall_ms  state\n");
        printf("                  mean      max      mean       max      mean       max                kept\n");
        for (int c = 0; c < ncounts; c++) {
                print_row(counts[c], "one-by-one", &seq[c]);
                print_row(counts[c], "at once", &par[c]);
                print_row(counts[c], "limited", &lim[c]);
        }
        printf("\nat once against one at a time (same migrations):\n");
        for (int c = 0; c < ncounts; c++) {
                fm_summary ds, dp, ts, tp;
                summarize(&seq[c], g_down, &ds);
                summarize(&par[c], g_down, &dp);
                summarize(&seq[c], g_total, &ts);
                summarize(&par[c], g_total, &tp);
                printf(" N=%d: downtime x%.2f (mean), worst %.1f ms; total x%.2f (mean); the batch ends in x%.2f of the time\n",
                       counts[c], dp.mean / ds.mean, worst(&par[c], g_down), tp.mean / ts.mean,
                       par[c].wall_ms / seq[c].wall_ms);
                summarize(&lim[c], g_down, &dp);
                printf("      limited: downtime x%.2f (mean), worst %.1f ms; the batch ends in x%.2f of the time\n",
                       dp.mean / ds.mean, worst(&lim[c], g_down), lim[c].wall_ms / seq[c].wall_ms);
        }
        return 0;
}
