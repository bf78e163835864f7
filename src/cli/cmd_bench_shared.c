/* fastmig bench-shared: the paper's unknown-path rows of Tables I and II on
 * this testbed. For the blank and the video workload, two copies run side
 * by side on mec1: an overlay clone whose app image both hosts hold
 * (memory-mig, the known-path best case) and a plain rootfs on the shared
 * GlusterFS volume (shared). Their migrations alternate, N of each, in one
 * invocation; prints mean, median, sd, 95% CI, CV beside the paper's rows
 * and checks the goals of issue 5 (docs/SHARED.md). */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "cli/bench.h"
#include "plane/images.h"
#include "plane/plane.h"
#include "workload/stream.h"
#include "proto/proto.h"

static const char USAGE[] = "fastmig bench-shared [--runs N] [--workloads blank,video] [--json]";

static const char *const metrics[] = {"downtime_ms", "total_ms", "bytes_memory", "stream.longest_stall_ms",
                                      "latency_test.ms", "latency_test.p99_ms", "phases.dump", "phases.restore"};
#define NMETRICS 8
#define NSTRAT 2
static const char *const strat_names[NSTRAT] = {"memory", "shared"};

/* The paper's Table I (downtime) and II (total), seconds: mean, sd, ci95,
 * cv; by workload (blank, video), strategy (memory-mig, shared). */
static const double paper[2][NSTRAT][2][4] = {
        {{{1.17, 0.077, 0.058, 0.066}, {8.990, 0.271, 0.204, 0.03}},
         {{1.825, 0.123, 0.092, 0.067}, {2.831, 0.269, 0.203, 0.095}}},
        {{{1.238, 0.218, 0.165, 0.176}, {9.855, 1.617, 1.219, 0.164}},
         {{2.454, 0.073, 0.055, 0.030}, {3.678, 0.206, 0.156, 0.056}}},
};

typedef struct wl_result {
        const char *kind;
        series s[NSTRAT];
        int stream_broken[NSTRAT];
} wl_result;

static int start(const fm_fleet *tb, const char *kind, const char *name, const fm_image *app, bool shared,
                 fm_error *e)
{
        fm_workload_spec w = {.kind = kind, .image = app->digest, .shared = shared};
        char ip[16];
        bench_destroy(tb, name);
        int r = fm_plane_start_workload(tb, tb->host[0].name, name, &w, ip, e);
        if (r == 0 && !strcmp(kind, "video")) {
                _cleanup_free_ char *client = fm_strdupf("%s/fm-videoclient", fm_self_dir());
                r = fm_stream_start(name, tb->users_netns, ip, client, 8, e);
        }
        return r;
}

static int run_workload(const fm_fleet *tb, wl_result *w, uint32_t runs)
{
        fm_error e = {0};
        _cleanup_free_ char *seqecho = fm_strdupf("%s/fm-seqecho", fm_self_dir());
        fm_build_opts bo = {.seqecho_path = seqecho, .progress = cli_image_progress};
        fm_image app, app2;
        /* memory-mig: both hosts hold the app image */
        if (fm_plane_image_install(&tb->host[0], w->kind, NULL, &bo, &app, &e) < 0 ||
            fm_plane_image_install(&tb->host[1], w->kind, NULL, &bo, &app2, &e) < 0)
                return cli_fail("%s", e.msg);
        char names[NSTRAT][32];
        snprintf(names[0], sizeof(names[0]), "bs-%s", w->kind);
        snprintf(names[1], sizeof(names[1]), "bs-%s-sh", w->kind);
        fprintf(stderr, "bench-shared: %s: starting a clone and a copy on the shared volume on %s\n", w->kind,
                tb->host[0].name);
        for (int s = 0; s < NSTRAT; s++) {
                w->s[s].metrics = metrics;
                w->s[s].nmetrics = NMETRICS;
                if (start(tb, w->kind, names[s], &app, s == 1, &e) < 0)
                        return cli_fail("%s", e.msg);
        }
        for (uint32_t i = 0; i < runs; i++)
                for (int s = 0; s < NSTRAT; s++) { /* alternating: both see the same machine */
                        const char *here, *there;
                        if (locate(tb, names[s], &here, &there) < 0)
                                return cli_fail("lost %s", names[s]);
                        fm_migrate_opts o = {.name = names[s], .to = there, .probe = true, .probe_interval_us = 1000,
                                             .strategy = strat_names[s]};
                        json_object *rep = NULL;
                        fm_error me = {0};
                        int r = fm_plane_migrate(tb, &o, &rep, &me);
                        double d = record(&w->s[s], strat_names[s], i + 1, r, rep, &me);
                        json_object *st = NULL;
                        if (rep && json_object_object_get_ex(rep, "stream", &st) && st &&
                            !fm_json_bool(st, "connection_kept", false))
                                w->stream_broken[s]++;
                        fprintf(stderr, "bench-shared: %s %s %u/%u: downtime %.1f ms, total %.1f ms", w->kind,
                                strat_names[s], i + 1, runs, d, rep ? bench_metric(rep, "total_ms") : -1);
                        if (st)
                                fprintf(stderr, ", stream stall %.1f ms", bench_metric(st, "longest_stall_ms"));
                        fprintf(stderr, "\n");
                        json_object_put(rep);
                }
        for (int s = 0; s < NSTRAT; s++) {
                fm_stream_stop(names[s]);
                bench_destroy(tb, names[s]);
        }
        return 0;
}

static void print_workload(const wl_result *w, const fm_testbed *tb, fm_summary sum[NSTRAT][NMETRICS])
{
        bool video = !strcmp(w->kind, "video");
        printf("\n%s container, %d Mbit/s links, runs: memory-mig %zu, shared %zu (alternating)\n", w->kind,
               tb->link_mbit, w->s[0].n, w->s[1].n);
        printf("(the paper's figures in seconds, ours in ms; its shared storage was NFS, ours GlusterFS)\n");
        printf("%-8s %-19s %9s %9s %8s %8s %6s %9s %9s   %s\n", "strategy", "metric", "mean", "median", "sd", "ci95",
               "cv", "min", "max", "paper mean (sd, ci95, cv)");
        for (int s = 0; s < NSTRAT; s++)
                for (int m = 0; m < NMETRICS; m++) {
                        if ((m == 3 && !video) || ((m == 4 || m == 5) && s == 0))
                                continue; /* no stream; memory-mig runs no latency test */
                        const fm_summary *x = &sum[s][m];
                        double scale = m == 2 ? 1e6 : 1;
                        char pap[80] = "";
                        if (m < 2) {
                                const double *p = paper[video][s][m];
                                snprintf(pap, sizeof(pap), "%.3f s (%.3f, %.3f, %.3f)", p[0], p[1], p[2], p[3]);
                        }
                        static const char *const label[NMETRICS] = {"downtime_ms",     "total_ms",
                                                                    "bytes_memory_MB", "stream_stall_ms",
                                                                    "latency_test_ms", "latency_p99_ms",
                                                                    "dump_ms",         "restore_ms"};
                        printf("%-8s %-19s %9.1f %9.1f %8.1f %8.1f %6.3f %9.1f %9.1f   %s\n", strat_names[s], label[m],
                               x->mean / scale, x->median / scale, x->sd / scale, x->ci95 / scale, x->cv,
                               x->min / scale, x->max / scale, pap);
                }
        double down = sum[1][0].mean / sum[0][0].mean, total = sum[1][1].mean / sum[0][1].mean;
        double pdown = paper[video][1][0][0] / paper[video][0][0][0];
        double ptotal = paper[video][1][1][0] / paper[video][0][1][0];
        printf("shared/memory-mig: downtime %.2f x (paper %.2f x), total %.2f x (paper %.2f x)\n", down, pdown, total,
               ptotal);
        printf("shared/paper: downtime %.3f, total %.3f\n", sum[1][0].mean / (paper[video][1][0][0] * 1000),
               sum[1][1].mean / (paper[video][1][1][0] * 1000));
        printf("goal shared downtime <= 1.2 x memory-mig's: %.2f x  %s\n", down, down <= 1.2 ? "met" : "NOT met");
        printf("goal shared total <= the paper's ratio to memory-mig (%.2f x): %.2f x  %s\n", ptotal, total,
               total <= ptotal ? "met" : "NOT met");
        if (video)
                printf("video stream broken in: memory-mig %d, shared %d runs\n", w->stream_broken[0],
                       w->stream_broken[1]);
        for (int s = 0; s < NSTRAT; s++)
                if (w->s[s].failed)
                        printf("failed runs of %s: %d\n", strat_names[s], w->s[s].failed);
}

int cmd_bench_shared(int argc, char **argv)
{
        uint32_t runs;
        bool json, want[2];
        int rc = bench_workload_opts(argc, argv, USAGE, &runs, want, &json);
        if (rc != 0)
                return rc;
        wl_result w[2] = {{.kind = "blank"}, {.kind = "video"}};
        fm_testbed tb;
        fm_fleet fleet;
        fm_error e = {0};
        bool own = false;
        if (bench_testbed(&tb, 1000, "bench-shared", true, &own, &e) < 0)
                return cli_fail("%s", e.msg);
        fm_testbed_fleet(&tb, &fleet);
        json_object *out = json_object_new_object();
        for (int k = 0; k < 2 && rc == 0; k++) {
                if (!want[k])
                        continue;
                if ((rc = run_workload(&fleet, &w[k], runs)) != 0)
                        break;
                fm_summary sum[NSTRAT][NMETRICS];
                json_object *jw = json_object_new_object();
                for (int s = 0; s < NSTRAT; s++)
                        json_object_object_add(jw, strat_names[s],
                                               bench_summarize(&w[k].s[s], w[k].stream_broken[s], sum[s]));
                json_object_object_add(out, w[k].kind, jw);
                if (!json)
                        print_workload(&w[k], &tb, sum);
                for (int s = 0; s < NSTRAT; s++) {
                        if (w[k].s[s].failed || w[k].stream_broken[s])
                                rc = 1;
                        series_free(&w[k].s[s]);
                }
        }
        if (json)
                cli_print_json(out);
        json_object_put(out);
        if (own && fm_testbed_down(NULL, NULL, &e) < 0)
                fprintf(stderr, "fastmig: %s\n", e.msg);
        return rc;
}
