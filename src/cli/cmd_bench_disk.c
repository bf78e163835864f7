/* fastmig bench-disk: the paper's Tables I and II on this testbed. For the
 * blank and the video workload, each disk strategy N times (full first, so
 * that both hosts then hold the images; then partial, then memory), and the
 * plain way (bench/baseline.sh: lxc-checkpoint + rsync of the whole tree) N
 * times on a plain-rootfs copy of the same container, in the same
 * invocation. Prints mean, median, sd, 95% CI, CV per metric beside the
 * paper's rows, and checks the goals of the disk work (docs/IMAGES.md). */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "cli/bench.h"
#include "plane/images.h"
#include "plane/plane.h"
#include "workload/stream.h"
#include "proto/proto.h"

static const char USAGE[] = "fastmig bench-disk [--runs N] [--workloads blank,video] [--json]";

static const char *const metrics[] = {"downtime_ms", "total_ms", "bytes_disk.total", "bytes_memory",
                                      "stream.longest_stall_ms"};
#define NMETRICS 5
#define NSTRAT 4 /* memory, partial, full, baseline */
static const char *const strat_names[NSTRAT] = {"memory", "partial", "full", "baseline"};

/* Tables I (downtime) and II (total time) of the paper, seconds:
 * mean, sd, ci95, cv; by workload (blank, video) and strategy. */
static const double paper[2][3][2][4] = {
        {/* blank */
         {{1.17, 0.077, 0.058, 0.066}, {8.990, 0.271, 0.204, 0.03}},
         {{1.111, 0.0645, 0.049, 0.058}, {16.885, 2.605, 1.964, 0.154}},
         {{1.125, 0.0640, 0.048, 0.057}, {19.518, 0.379, 0.286, 0.019}}},
        {/* video */
         {{1.238, 0.218, 0.165, 0.176}, {9.855, 1.617, 1.219, 0.164}},
         {{1.382, 0.166, 0.126, 0.120}, {38.918, 2.67, 2.013, 0.069}},
         {{1.327, 0.177, 0.134, 0.134}, {31.609, 1.394, 1.051, 0.044}}},
};

typedef struct wl_result {
        const char *kind;
        series s[NSTRAT];
        int stream_broken[NSTRAT];
        fm_image app, base;
} wl_result;

static int start(const fm_fleet *tb, const char *kind, const char *name, const fm_image *app, bool flat,
                 fm_error *e)
{
        /* the flat one is the plain way's: an ordinary LXC container */
        fm_workload_spec w = {.kind = kind, .image = app->digest, .flat = flat, .plain_lxc = flat};
        char ip[16];
        bench_destroy(tb, name);
        int r = fm_plane_start_workload(tb, tb->host[0].name, name, &w, ip, e);
        if (r == 0 && !strcmp(kind, "video") && !flat) {
                _cleanup_free_ char *client = fm_strdupf("%s/fm-videoclient", fm_self_dir());
                r = fm_stream_start(name, tb->users_netns, ip, client, 8, e);
        }
        return r;
}

static int run_workload(const fm_fleet *tb, wl_result *w, uint32_t runs, const char *script)
{
        fm_error e = {0};
        _cleanup_free_ char *seqecho = fm_strdupf("%s/fm-seqecho", fm_self_dir());
        fm_build_opts bo = {.seqecho_path = seqecho, .progress = cli_image_progress};
        if (fm_plane_image_install(&tb->host[0], w->kind, NULL, &bo, &w->app, &e) < 0 ||
            fm_image_get(tb->host[0].store, w->app.base, &w->base) < 0)
                return cli_fail("%s", e.msg[0] ? e.msg : "base image missing");
        char name[32], flat[40];
        snprintf(name, sizeof(name), "bd-%s", w->kind);
        snprintf(flat, sizeof(flat), "bd-%s-flat", w->kind);
        for (int s = 0; s < NSTRAT; s++) {
                w->s[s].metrics = metrics;
                w->s[s].nmetrics = NMETRICS;
        }
        if (start(tb, w->kind, name, &w->app, false, &e) < 0)
                return cli_fail("%s", e.msg);
        static const int order[3] = {2, 1, 0}; /* full, partial, memory */
        for (int k = 0; k < 3; k++) {
                int s = order[k];
                for (uint32_t i = 0; i < runs; i++) {
                        const char *here, *there;
                        if (locate(tb, name, &here, &there) < 0)
                                return cli_fail("lost %s", name);
                        fm_migrate_opts o = {.name = name, .to = there, .probe = true, .probe_interval_us = 1000,
                                             .strategy = strat_names[s]};
                        json_object *rep = NULL;
                        fm_error me = {0};
                        int r = fm_plane_migrate(tb, &o, &rep, &me);
                        double d = record(&w->s[s], strat_names[s], i + 1, r, rep, &me);
                        json_object *st = NULL;
                        if (rep && json_object_object_get_ex(rep, "stream", &st) && st &&
                            !fm_json_bool(st, "connection_kept", false))
                                w->stream_broken[s]++;
                        fprintf(stderr, "bench-disk: %s %s-mig %u/%u: downtime %.1f ms, total %.1f ms%s", w->kind,
                                strat_names[s], i + 1, runs, d, rep ? bench_metric(rep, "total_ms") : -1,
                                st ? "" : "\n");
                        if (st)
                                fprintf(stderr, ", stream stall %.1f ms\n", bench_metric(st, "longest_stall_ms"));
                        json_object_put(rep);
                }
        }
        fm_stream_stop(name);
        bench_destroy(tb, name);
        if (start(tb, w->kind, flat, &w->app, true, &e) < 0)
                return cli_fail("%s", e.msg);
        char fastmig_path[4200];
        snprintf(fastmig_path, sizeof(fastmig_path), "%s/fastmig", fm_self_dir());
        for (uint32_t i = 0; i < runs; i++) {
                const char *here, *there;
                if (locate(tb, flat, &here, &there) < 0)
                        return cli_fail("the baseline lost %s", flat);
                json_object *rep = NULL;
                fm_error me = {0};
                int r = fm_plane_baseline(tb, script, fastmig_path, flat, there, &rep, &me);
                double d = record(&w->s[3], "baseline", i + 1, r, rep, &me);
                fprintf(stderr, "bench-disk: %s baseline %u/%u: downtime %.1f ms, total %.1f ms\n", w->kind, i + 1,
                        runs, d, rep ? bench_metric(rep, "total_ms") : -1);
                json_object_put(rep);
        }
        bench_destroy(tb, flat);
        return 0;
}

static void print_workload(const wl_result *w, const fm_testbed *tb, fm_summary sum[NSTRAT][NMETRICS])
{
        bool video = !strcmp(w->kind, "video");
        printf("\n%s container: file system %.1f MB (%s %.1f MB in %llu files + %s %.1f MB; as image files %.1f + %.1f "
               "MB), %d Mbit/s link, runs per row: %zu/%zu/%zu/%zu\n",
               w->kind, (double)(w->base.tree_bytes + w->app.tree_bytes) / 1e6, w->base.name,
               (double)w->base.tree_bytes / 1e6, (unsigned long long)w->base.files, w->app.name,
               (double)w->app.tree_bytes / 1e6, (double)w->base.bytes / 1e6, (double)w->app.bytes / 1e6, tb->link_mbit,
               w->s[0].n, w->s[1].n, w->s[2].n, w->s[3].n);
        printf("(the paper's containers: blank 350 MB, video 590 MB; its figures in seconds, ours in ms)\n");
        printf("%-9s %-17s %9s %9s %8s %8s %6s %9s %9s   %s\n", "strategy", "metric", "mean", "median", "sd", "ci95",
               "cv", "min", "max", "paper mean (sd, ci95, cv)");
        for (int s = 0; s < NSTRAT; s++)
                for (int m = 0; m < NMETRICS; m++) {
                        if ((m == 4 && (!video || s == 3)) || (s == 3 && (m == 2 || m == 3)))
                                continue; /* no stream; the baseline script counts no bytes */
                        const fm_summary *x = &sum[s][m];
                        double scale = m == 2 || m == 3 ? 1e6 : 1;
                        char pap[80] = "";
                        if (s < 3 && m < 2) {
                                const double *p = paper[video][s][m];
                                snprintf(pap, sizeof(pap), "%.3f s (%.3f, %.3f, %.3f)", p[0], p[1], p[2], p[3]);
                        }
                        printf("%-9s %-17s %9.1f %9.1f %8.1f %8.1f %6.3f %9.1f %9.1f   %s\n", strat_names[s],
                               m == 2 ? "bytes_disk_MB" : m == 3 ? "bytes_memory_MB" : m == 4 ? "stream_stall_ms" : metrics[m],
                               x->mean / scale,
                               x->median / scale, x->sd / scale, x->ci95 / scale, x->cv, x->min / scale, x->max / scale,
                               pap);
                }
        double link_Bps = tb->link_mbit * 1e6 / 8 * 0.957; /* TCP payload on the shaped veth (PLATFORM.md) */
        printf("ratios of means: ");
        for (int s = 0; s < 3; s++)
                printf("%s-mig/paper downtime %.3f total %.3f; ", strat_names[s],
                       sum[s][0].mean / (paper[video][s][0][0] * 1000), sum[s][1].mean / (paper[video][s][1][0] * 1000));
        printf("\n                 ");
        for (int s = 0; s < 3; s++)
                printf("%s-mig/baseline downtime %.3f total %.3f; ", strat_names[s], sum[s][0].mean / sum[3][0].mean,
                       sum[s][1].mean / sum[3][1].mean);
        printf("\n");
        double full_link = (sum[2][2].mean + sum[2][3].mean) / link_Bps * 1000;
        printf("goal memory-mig total < 1000 ms: %.1f ms  %s\n", sum[0][1].mean, sum[0][1].mean < 1000 ? "met" : "NOT met");
        printf("goal full-mig total <= 1.3 x link time of its bytes (%.1f ms): %.1f ms = %.2f x  %s\n", full_link,
               sum[2][1].mean, sum[2][1].mean / full_link, sum[2][1].mean <= 1.3 * full_link ? "met" : "NOT met");
        for (int s = 1; s < 3; s++)
                printf("goal %s-mig downtime within 10%% of memory-mig's: %.1f vs %.1f ms = %+.1f%%  %s\n",
                       strat_names[s], sum[s][0].mean, sum[0][0].mean, (sum[s][0].mean / sum[0][0].mean - 1) * 100,
                       sum[s][0].mean <= 1.1 * sum[0][0].mean ? "met" : "NOT met");
        if (video)
                printf("video stream broken in: memory %d, partial %d, full %d runs\n", w->stream_broken[0],
                       w->stream_broken[1], w->stream_broken[2]);
        for (int s = 0; s < NSTRAT; s++)
                if (w->s[s].failed)
                        printf("failed runs of %s: %d\n", strat_names[s], w->s[s].failed);
}

int cmd_bench_disk(int argc, char **argv)
{
        uint32_t runs;
        bool json, want[2];
        int rc = bench_workload_opts(argc, argv, USAGE, &runs, want, &json);
        if (rc != 0)
                return rc;
        _cleanup_free_ char *script = fm_strdupf("%s/../bench/baseline.sh", fm_self_dir());
        if (!fm_path_exists(script))
                return cli_fail("baseline script %s not found", script);
        wl_result w[2] = {{.kind = "blank"}, {.kind = "video"}};
        fm_testbed tb;
        fm_fleet fleet;
        fm_error e = {0};
        bool own = false;
        if (bench_testbed(&tb, 1000, "bench-disk", false, &own, &e) < 0)
                return cli_fail("%s", e.msg);
        fm_testbed_fleet(&tb, &fleet);
        json_object *out = json_object_new_object();
        for (int k = 0; k < 2 && rc == 0; k++) {
                if (!want[k])
                        continue;
                if ((rc = run_workload(&fleet, &w[k], runs, script)) != 0)
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
