#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/plane.h"
#include "proto/proto.h"
#include "stats/stats.h"
#include "cli/bench.h"

static const char USAGE[] = "fastmig bench [--runs N] [--link-mbit M] [--json]";
/* frozen_ms (fastmig's source frozen until the target runs) has no like in
 * the plain way: its freeze happens inside CRIU, out of a script's sight.
 * Both are compared on what the same probe sees, and on the total. */
static const char *const metrics[] = {"downtime_ms", "total_ms", "frozen_ms"};
#define NMETRICS 3
#define NBASE 2

/* Finds bench/baseline.sh next to the build directory (or $FASTMIG_BASELINE). */
static const char *baseline_script(void)
{
        static char path[4200];
        const char *env = getenv("FASTMIG_BASELINE");
        if (env)
                return env;
        snprintf(path, sizeof(path), "%s/../bench/baseline.sh", fm_self_dir());
        return path;
}

/* One fastmig migration of name to the other host, recorded in s; -1
 * when the container is nowhere to be found. */
static int migrate_once(const fm_fleet *fleet, const char *name, series *s, const char *who, unsigned run,
                        double *downtime)
{
        const char *here, *there;
        if (locate(fleet, name, &here, &there) < 0)
                return -1;
        fm_error e = {0};
        json_object *rep = NULL;
        fm_migrate_opts o = {.name = name, .to = there, .probe = true, .probe_interval_us = 1000};
        int r = fm_plane_migrate(fleet, &o, &rep, &e);
        *downtime = record(s, who, run, r, rep, &e);
        json_object_put(rep);
        return 0;
}

int cmd_bench(int argc, char **argv)
{
        uint32_t runs = 10, mbit = 1000;
        bool json = false;
        static const struct option lo[] = {{"runs", required_argument, 0, 'r'},
                                           {"link-mbit", required_argument, 0, 'm'},
                                           {"json", no_argument, 0, 'j'},
                                           {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'r' && (fm_parse_u32(optarg, &runs) < 0 || runs < 1 || runs > 1000))
                        return cli_fail("--runs takes 1 to 1000, not `%s'", optarg);
                if (ch == 'm' && (fm_parse_u32(optarg, &mbit) < 0 || mbit < 1))
                        return cli_fail("--link-mbit takes a number, not `%s'", optarg);
                if (ch == 'j')
                        json = true;
                if (ch == '?')
                        return cli_usage(USAGE);
        }
        if (optind != argc)
                return cli_usage(USAGE);
        const char *script = baseline_script();
        if (!fm_path_exists(script))
                return cli_fail("baseline script %s not found (set FASTMIG_BASELINE)", script);

        fm_testbed tb;
        fm_fleet fleet;
        fm_error e = {0};
        bool own = false;
        if (bench_testbed(&tb, mbit, "bench", false, &own, &e) < 0)
                return cli_fail("%s", e.msg);
        fm_testbed_fleet(&tb, &fleet);
        /* fastmig's own container keeps its network namespace outside CRIU's
         * images (lxc/ctnet.h) and has no /dev tmpfs; the plain way's is an
         * ordinary LXC one, which fastmig migrates too: the same run shows
         * what those cost */
        const char *name = "benchsvc", *plain = "benchlxc";
        char ip[16];
        int rc = 0;
        bench_destroy(&fleet, name);
        bench_destroy(&fleet, plain);
        if (fm_plane_start_workload(&fleet, fleet.host[0].name, name, &(fm_workload_spec){.kind = "busybox"}, ip, &e) < 0 ||
            fm_plane_start_workload(&fleet, fleet.host[0].name, plain,
                                    &(fm_workload_spec){.kind = "busybox", .plain_lxc = true}, ip, &e) < 0) {
                rc = cli_fail("%s", e.msg);
                goto out;
        }
        fprintf(stderr, "bench: %u runs each of fastmig, fastmig on an ordinary LXC container (LXC makes its network "
                        "and /dev, CRIU dumps them), and the baseline (lxc-checkpoint + rsync) on that one, alternating, busybox containers, "
                        "%d Mbit/s links\n", runs, tb.link_mbit);
        series fm = {.metrics = metrics, .nmetrics = NMETRICS}, fml = {.metrics = metrics, .nmetrics = NMETRICS},
               base = {.metrics = metrics, .nmetrics = NBASE};
        const char *here = fleet.host[0].name, *there = fleet.host[1].name;
        char fastmig_path[4200];
        snprintf(fastmig_path, sizeof(fastmig_path), "%s/fastmig", fm_self_dir());
        for (uint32_t i = 0; i < runs; i++) {
                fm_error me = {0};
                json_object *rep = NULL;
                double d1 = 0, d3 = 0;
                if (migrate_once(&fleet, name, &fm, "fastmig", i + 1, &d1) < 0 ||
                    migrate_once(&fleet, plain, &fml, "fastmig-plainlxc", i + 1, &d3) < 0) {
                        rc = cli_fail("fastmig lost the container; stopping");
                        break;
                }
                if (locate(&fleet, plain, &here, &there) < 0) {
                        rc = cli_fail("fastmig lost the container; stopping");
                        break;
                }
                int r = fm_plane_baseline(&fleet, script, fastmig_path, plain, there, &rep, &me);
                double d2 = record(&base, "baseline", i + 1, r, rep, &me);
                json_object_put(rep);
                fprintf(stderr, "bench: run %u/%u  downtime fastmig %.1f ms, fastmig (plain LXC) %.1f ms, "
                                "baseline %.1f ms\n", i + 1, runs, d1, d3, d2);
                if (locate(&fleet, plain, &here, &there) < 0) {
                        rc = cli_fail("the baseline lost the container; stopping");
                        break;
                }
        }
        fm_summary sf[NMETRICS], sl[NMETRICS], sb[NMETRICS];
        for (int m = 0; m < NMETRICS; m++) {
                fm_summarize(fm.v[m], fm.n, &sf[m]);
                fm_summarize(fml.v[m], fml.n, &sl[m]);
                fm_summarize(m < NBASE ? base.v[m] : NULL, m < NBASE ? base.n : 0, &sb[m]);
        }
        double ratio = sb[0].median > 0 ? sf[0].median / sb[0].median : 0;
        double ratio_lxc = sb[0].median > 0 ? sl[0].median / sb[0].median : 0;
        if (json) {
                json_object *o = json_object_new_object(), *jf = json_object_new_object(), *jb = json_object_new_object(),
                            *jl = json_object_new_object();
                for (int m = 0; m < NMETRICS; m++) {
                        json_object_object_add(jf, metrics[m], summary_json(&sf[m]));
                        json_object_object_add(jl, metrics[m], summary_json(&sl[m]));
                        if (m < NBASE)
                                json_object_object_add(jb, metrics[m], summary_json(&sb[m]));
                }
                json_object_object_add(jf, "failed", json_object_new_int(fm.failed));
                json_object_object_add(jl, "failed", json_object_new_int(fml.failed));
                json_object_object_add(jb, "failed", json_object_new_int(base.failed));
                json_object_object_add(o, "workload", json_object_new_string("busybox"));
                json_object_object_add(o, "link_mbit", json_object_new_int(tb.link_mbit));
                json_object_object_add(o, "runs", json_object_new_int((int)runs));
                json_object_object_add(o, "fastmig", jf);
                json_object_object_add(o, "fastmig_plain_lxc", jl);
                json_object_object_add(o, "baseline", jb);
                json_object_object_add(o, "ratio_downtime_median", json_object_new_double(ratio));
                json_object_object_add(o, "ratio_downtime_median_plain_lxc", json_object_new_double(ratio_lxc));
                json_object_object_add(o, "ratio_total_median",
                                       json_object_new_double(sb[1].median > 0 ? sf[1].median / sb[1].median : 0));
                cli_print_json(o);
                json_object_put(o);
        } else {
                printf("\nbusybox containers, %d Mbit/s link, %zu fastmig, %zu fastmig (plain LXC) and %zu baseline "
                       "runs (ms)\n", tb.link_mbit, fm.n, fml.n, base.n);
                printf("%-15s %-12s %9s %9s %8s %8s %6s %9s %9s\n", "who", "metric", "mean", "median", "sd", "ci95",
                       "cv", "min", "max");
                const char *who[] = {"fastmig", "fastmig-plainlxc", "baseline"};
                const fm_summary *sum[] = {sf, sl, sb};
                for (int w = 0; w < 3; w++)
                        for (int m = 0; m < (w == 2 ? NBASE : NMETRICS); m++) {
                                const fm_summary *x = &sum[w][m];
                                printf("%-15s %-12s %9.1f %9.1f %8.1f %8.1f %6.3f %9.1f %9.1f\n", who[w], metrics[m],
                                       x->mean, x->median, x->sd, x->ci95, x->cv, x->min, x->max);
                        }
                printf("\nmedian ratio fastmig/baseline: downtime %.2f, total %.2f; on plain LXC: downtime %.2f\n",
                       ratio, sb[1].median > 0 ? sf[1].median / sb[1].median : 0, ratio_lxc);
                if (fm.failed || fml.failed || base.failed)
                        printf("failed runs: fastmig %d, fastmig (plain LXC) %d, baseline %d\n", fm.failed,
                               fml.failed, base.failed);
        }
        series_free(&fm);
        series_free(&fml);
        series_free(&base);
        if (fm.failed || fml.failed || base.failed)
                rc = rc ? rc : 1;
out:
        if (own && fm_testbed_down(NULL, NULL, &e) < 0)
                fprintf(stderr, "fastmig: %s\n", e.msg);
        return rc;
}
