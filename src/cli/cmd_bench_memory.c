/* fastmig bench-memory: pre-copy against stop-and-copy on the memory
 * workload, for several sizes and dirty rates, in one invocation. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "cli/bench.h"
#include "plane/plane.h"
#include "proto/proto.h"

static const char USAGE[] =
        "fastmig bench-memory [--runs N] [--sizes MIB,...] [--rates MIBS,...] [--fill random|half]\n"
        "                     [--compress none|lz4|none,lz4] [--link-mbit M] [--json]";
static const char *const metrics[] = {"downtime_ms", "frozen_ms", "total_ms", "final_bytes|bytes_memory", "bytes_wire"};
static const char *const metric_names[] = {"downtime_ms", "frozen_ms", "total_ms", "final_bytes", "bytes_wire"};
#define NMETRICS 5
static const char *const modes[2] = {"precopy", "stopcopy"};

static int parse_list(const char *s, double *out, int max)
{
        int n = 0;
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (n == max || fm_parse_double(t, &out[n]) < 0 || out[n] < 0)
                        return -1;
                n++;
        }
        return n;
}

int cmd_bench_memory(int argc, char **argv)
{
        uint32_t runs = 5, mbit = 1000;
        double sizes[8] = {64, 256, 1024}, rates[8] = {0, 1, 10};
        int nsizes = 3, nrates = 3;
        bool json = false;
        const char *fill = "random", *compress[2] = {"lz4"};
        int ncompress = 1;
        static const struct option lo[] = {{"runs", required_argument, 0, 'r'},  {"sizes", required_argument, 0, 's'},
                                           {"rates", required_argument, 0, 'd'}, {"link-mbit", required_argument, 0, 'm'},
                                           {"fill", required_argument, 0, 'f'},  {"compress", required_argument, 0, 'c'},
                                           {"json", no_argument, 0, 'j'},        {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'r' && (fm_parse_u32(optarg, &runs) < 0 || runs < 1 || runs > 100))
                        return cli_fail("--runs takes 1 to 100, not `%s'", optarg);
                if (ch == 's' && (nsizes = parse_list(optarg, sizes, 8)) <= 0)
                        return cli_fail("--sizes takes MiB values separated by commas, not `%s'", optarg);
                if (ch == 'd' && (nrates = parse_list(optarg, rates, 8)) <= 0)
                        return cli_fail("--rates takes MiB/s values separated by commas, not `%s'", optarg);
                if (ch == 'm' && (fm_parse_u32(optarg, &mbit) < 0 || mbit < 1))
                        return cli_fail("--link-mbit takes a number, not `%s'", optarg);
                if (ch == 'f' && strcmp(optarg, "random") && strcmp(optarg, "half"))
                        return cli_fail("--fill is random or half, not `%s'", optarg);
                if (ch == 'f')
                        fill = optarg;
                if (ch == 'c') {
                        if (!strcmp(optarg, "none") || !strcmp(optarg, "lz4")) {
                                compress[0] = optarg;
                                ncompress = 1;
                        } else if (!strcmp(optarg, "none,lz4")) {
                                compress[0] = "none";
                                compress[1] = "lz4";
                                ncompress = 2;
                        } else {
                                return cli_fail("--compress is none, lz4 or none,lz4, not `%s'", optarg);
                        }
                }
                if (ch == 'j')
                        json = true;
                if (ch == '?')
                        return cli_usage(USAGE);
        }
        if (optind != argc)
                return cli_usage(USAGE);
        fm_testbed tb;
        fm_fleet fleet;
        fm_error e = {0};
        bool own = false;
        if (bench_testbed(&tb, mbit, "bench-memory", false, &own, &e) < 0)
                return cli_fail("%s", e.msg);
        fm_testbed_fleet(&tb, &fleet);
        const char *name = "benchmem";
        int rc = 0;
        json_object *cases = json_object_new_array();
        if (!json)
                printf("memory workload (%s fill), %d Mbit/s link, %u runs each, pre-copy (hash tracker) against "
                       "stop-and-copy\n%6s %6s %-9s %-5s %11s %9s %10s %9s %10s %12s %10s\n",
                       fill, tb.link_mbit, runs, "MiB", "MiB/s", "mode", "lz4", "downtime", "sd", "ci95", "frozen", "total",
                       "final_bytes", "wire_MB");
        for (int si = 0; si < nsizes && rc == 0; si++)
                for (int ri = 0; ri < nrates && rc == 0; ri++) {
                        bench_destroy(&fleet, name);
                        fm_workload_spec w = {.kind = "memory", .mem_mib = sizes[si], .dirty_mib_s = rates[ri], .fill = fill};
                        char ip[16];
                        if (fm_plane_start_workload(&fleet, fleet.host[0].name, name, &w, ip, &e) < 0) {
                                rc = cli_fail("%s", e.msg);
                                break;
                        }
                        /* [compress][mode], runs interleaved so drift hits all alike */
                        series sr[2][2];
                        for (int c = 0; c < 2; c++)
                                for (int k = 0; k < 2; k++)
                                        sr[c][k] = (series){.metrics = metrics, .nmetrics = NMETRICS};
                        for (uint32_t i = 0; i < runs && rc == 0; i++)
                                for (int c = 0; c < ncompress && rc == 0; c++)
                                        for (int k = 0; k < 2; k++) {
                                                const char *here, *there;
                                                if (locate(&fleet, name, &here, &there) < 0) {
                                                        rc = cli_fail("the container is gone; stopping");
                                                        break;
                                                }
                                                fm_migrate_opts o = {.name = name, .to = there, .probe = true,
                                                                     .probe_interval_us = 1000, .mode = modes[k],
                                                                     .compress = compress[c]};
                                                json_object *rep = NULL;
                                                fm_error me = {0};
                                                int r = fm_plane_migrate(&fleet, &o, &rep, &me);
                                                if (r == 0 && !fm_json_bool(rep, "memory_verified", false))
                                                        r = fm_err(&me, EIO, "memory not verified after the migration");
                                                double d = record(&sr[c][k], o.mode, i + 1, r, rep, &me);
                                                fprintf(stderr,
                                                        "bench-memory: %g MiB %g MiB/s run %u %s compress %s: downtime %.1f ms\n",
                                                        sizes[si], rates[ri], i + 1, o.mode, compress[c], d);
                                                json_object_put(rep);
                                        }
                        for (int c = 0; c < ncompress; c++) {
                                json_object *jc = json_object_new_object();
                                json_object_object_add(jc, "size_mib", json_object_new_double(sizes[si]));
                                json_object_object_add(jc, "dirty_mib_s", json_object_new_double(rates[ri]));
                                json_object_object_add(jc, "fill", json_object_new_string(fill));
                                json_object_object_add(jc, "compress", json_object_new_string(compress[c]));
                                fm_summary sum[2][NMETRICS];
                                for (int k = 0; k < 2; k++) {
                                        json_object *jm = json_object_new_object();
                                        for (int m = 0; m < NMETRICS; m++) {
                                                fm_summarize(sr[c][k].v[m], sr[c][k].n, &sum[k][m]);
                                                json_object_object_add(jm, metric_names[m], summary_json(&sum[k][m]));
                                        }
                                        json_object_object_add(jm, "failed", json_object_new_int(sr[c][k].failed));
                                        json_object_object_add(jc, modes[k], jm);
                                        if (!json)
                                                printf("%6g %6g %-9s %-5s %11.1f %9.1f %10.1f %9.1f %10.1f %12.0f %10.1f\n",
                                                       sizes[si], rates[ri], modes[k], strcmp(compress[c], "lz4") ? "no" : "yes",
                                                       sum[k][0].median, sum[k][0].sd, sum[k][0].ci95, sum[k][1].median,
                                                       sum[k][2].median, sum[k][3].median, sum[k][4].median / 1e6);
                                        if (sr[c][k].failed)
                                                rc = 1;
                                }
                                double rd = sum[1][0].median > 0 ? sum[0][0].median / sum[1][0].median : 0;
                                double rf = sum[1][3].median > 0 ? sum[0][3].median / sum[1][3].median : 0;
                                json_object_object_add(jc, "ratio_downtime_median", json_object_new_double(rd));
                                json_object_object_add(jc, "ratio_final_bytes_median", json_object_new_double(rf));
                                if (!json)
                                        printf("%6s %6s %-9s %-5s median ratio pre/stop: downtime %.2f, final bytes %.3f\n",
                                               "", "", "", "", rd, rf);
                                fflush(stdout);
                                json_object_array_add(cases, jc);
                        }
                        for (int c = 0; c < 2; c++)
                                for (int k = 0; k < 2; k++)
                                        series_free(&sr[c][k]);
                }
        bench_destroy(&fleet, name);
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "link_mbit", json_object_new_int(tb.link_mbit));
                json_object_object_add(o, "runs", json_object_new_int((int)runs));
                json_object_object_add(o, "cases", json_object_get(cases));
                cli_print_json(o);
                json_object_put(o);
        }
        json_object_put(cases);
        if (own && fm_testbed_down(NULL, NULL, &e) < 0)
                fprintf(stderr, "fastmig: %s\n", e.msg);
        return rc;
}
