/* Shared by the benchmarks: series of measurements and their summaries. */
#pragma once
#include <json-c/json.h>
#include "stats/stats.h"
#include "testbed/testbed.h"

#define SERIES_MAX_METRICS 8

typedef struct series {
        const char *const *metrics; /* report keys; "a|b" takes b when a is null */
        int nmetrics;
        double *v[SERIES_MAX_METRICS];
        size_t n;
        int failed;
} series;

void series_add(series *s, json_object *rep);
/* A report's number at a dotted path ("bytes_disk.total"); "a|b" takes b
 * when a is missing or null; 0 if neither. */
double bench_metric(json_object *rep, const char *spec);
void series_free(series *s);
json_object *summary_json(const fm_summary *s);
/* Adds one run; returns its first metric, or -1 for a failed run (not ok, or
 * the service's state not kept). */
double record(series *s, const char *who, unsigned run, int r, json_object *rep, const fm_error *e);
/* Where the container runs now, and the other host of the first two. */
int locate(const fm_fleet *tb, const char *name, const char **here, const char **there);
/* Uses the testbed that is up, or builds a 2-host one (*own set: the caller
 * takes it down), with a storage host when shared. who names the benchmark
 * in progress lines. */
int bench_testbed(fm_testbed *tb, uint32_t link_mbit, const char *who, bool shared, bool *own, fm_error *e);
/* The options of the workload benchmarks (bench-disk, bench-shared):
 * --runs N (2..1000), --workloads blank,video (want[0] blank, want[1]
 * video), --json. Returns 0, or the exit status after a message. */
int bench_workload_opts(int argc, char **argv, const char *usage, uint32_t *runs, bool want[2], bool *json);
/* Summarizes each metric of s into sum[] (s->nmetrics of them); returns
 * their JSON with the run counts "failed" and "stream_broken". */
json_object *bench_summarize(const series *s, int stream_broken, fm_summary *sum);
/* Removes a container of that name wherever it runs (leftover of a run). */
void bench_destroy(const fm_fleet *tb, const char *name);
