#include <getopt.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "plane/plane.h"
#include "proto/proto.h"

/* rep's value at a dotted path ("stream.longest_stall_ms"), NULL if none */
static json_object *at_path(json_object *rep, const char *path, size_t n)
{
        json_object *x = rep;
        while (x && n) {
                const char *dot = memchr(path, '.', n);
                size_t k = dot ? (size_t)(dot - path) : n;
                char key[64];
                snprintf(key, sizeof(key), "%.*s", (int)k, path);
                if (!json_object_is_type(x, json_type_object) || !json_object_object_get_ex(x, key, &x))
                        return NULL;
                path += k + (dot ? 1 : 0);
                n -= k + (dot ? 1 : 0);
        }
        return x;
}

double bench_metric(json_object *rep, const char *spec)
{
        const char *alt = strchr(spec, '|');
        json_object *x = at_path(rep, spec, alt ? (size_t)(alt - spec) : strlen(spec));
        if (!x && alt)
                x = at_path(rep, alt + 1, strlen(alt + 1));
        return x ? json_object_get_double(x) : 0;
}

void series_add(series *s, json_object *rep)
{
        for (int m = 0; m < s->nmetrics; m++) {
                double *nv = realloc(s->v[m], (s->n + 1) * sizeof(double));
                if (!nv)
                        return;
                s->v[m] = nv;
                s->v[m][s->n] = bench_metric(rep, s->metrics[m]);
        }
        s->n++;
}

void series_free(series *s)
{
        for (int m = 0; m < s->nmetrics; m++) {
                free(s->v[m]);
                s->v[m] = NULL;
        }
        s->n = 0;
}

json_object *summary_json(const fm_summary *s)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "mean", json_object_new_double(s->mean));
        json_object_object_add(o, "median", json_object_new_double(s->median));
        json_object_object_add(o, "sd", json_object_new_double(s->sd));
        json_object_object_add(o, "ci95", json_object_new_double(s->ci95));
        json_object_object_add(o, "cv", json_object_new_double(s->cv));
        json_object_object_add(o, "min", json_object_new_double(s->min));
        json_object_object_add(o, "max", json_object_new_double(s->max));
        json_object_object_add(o, "n", json_object_new_int((int)s->n));
        return o;
}

double record(series *s, const char *who, unsigned run, int r, json_object *rep, const fm_error *e)
{
        /* a run counts only when it worked and the service kept its state */
        if (r == 0 && fm_json_bool(rep, "ok", false) && fm_json_bool(rep, "state_continuous", false)) {
                series_add(s, rep);
                return s->v[0][s->n - 1];
        }
        s->failed++;
        const char *why = NULL;
        json_object *probe = NULL;
        if (rep && json_object_object_get_ex(rep, "probe", &probe))
                fm_json_str(probe, "not_kept", false, 200, &why, NULL);
        fprintf(stderr, "bench: %s run %u failed: %s\n", who, run,
                r < 0 ? e->msg : why ? why : "the service's state was not kept");
        return -1;
}

int locate(const fm_fleet *tb, const char *name, const char **here, const char **there)
{
        const fm_host *h = NULL;
        char ip[16];
        if (fm_plane_locate(tb, name, &h, ip, NULL) < 0)
                return -ENOENT;
        *here = h->name;
        *there = h == &tb->host[0] ? tb->host[1].name : tb->host[0].name;
        return 0;
}

int bench_testbed(fm_testbed *tb, uint32_t link_mbit, const char *who, bool shared, bool *own, fm_error *e)
{
        *own = false;
        if (fm_testbed_load(tb, NULL) == 0)
                return shared && !tb->shared ? fm_err(e, EINVAL, "%s needs shared storage and the testbed that is up "
                                                      "has none (`fastmig testbed down', then let %s build its own)",
                                                      who, who)
                                             : 0;
        char agent[4200];
        snprintf(agent, sizeof(agent), "%s/fastmigd", fm_self_dir());
        fprintf(stderr, "%s: building a 2-host testbed (%u Mbit/s links%s)\n", who, link_mbit,
                shared ? ", a GlusterFS storage host" : "");
        fm_testbed_opts o = {.hosts = 2, .link_mbit = (int)link_mbit, .agent_path = agent, .shared_storage = shared};
        int r = fm_testbed_up(&o, NULL, NULL, e);
        if (r < 0)
                return r;
        *own = true;
        return fm_testbed_load(tb, e);
}

void bench_destroy(const fm_fleet *tb, const char *name)
{
        const char *here, *there;
        if (locate(tb, name, &here, &there) < 0)
                return;
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("destroy"));
        json_object_object_add(req, "name", json_object_new_string(name));
        fm_plane_call(fm_fleet_host(tb, here), req, NULL, 60000, NULL);
        json_object_put(req);
}

int bench_workload_opts(int argc, char **argv, const char *usage, uint32_t *runs, bool want[2], bool *json)
{
        const char *workloads = "blank,video";
        static const struct option lo[] = {{"runs", required_argument, 0, 'r'},
                                           {"workloads", required_argument, 0, 'w'},
                                           {"json", no_argument, 0, 'j'},
                                           {0, 0, 0, 0}};
        int ch;
        *runs = 10;
        *json = false;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'r' && (fm_parse_u32(optarg, runs) < 0 || *runs < 2 || *runs > 1000))
                        return cli_fail("--runs takes 2 to 1000, not `%s'", optarg);
                else if (ch == 'w')
                        workloads = optarg;
                else if (ch == 'j')
                        *json = true;
                else if (ch == '?')
                        return cli_usage(usage);
        }
        if (optind != argc)
                return cli_usage(usage);
        want[0] = strstr(workloads, "blank") != NULL;
        want[1] = strstr(workloads, "video") != NULL;
        if (!want[0] && !want[1])
                return cli_fail("--workloads takes blank, video or both, not `%s'", workloads);
        return 0;
}

json_object *bench_summarize(const series *s, int stream_broken, fm_summary *sum)
{
        json_object *js = json_object_new_object();
        for (int m = 0; m < s->nmetrics; m++) {
                fm_summarize(s->v[m], s->n, &sum[m]);
                json_object_object_add(js, s->metrics[m], summary_json(&sum[m]));
        }
        json_object_object_add(js, "failed", json_object_new_int(s->failed));
        json_object_object_add(js, "stream_broken", json_object_new_int(stream_broken));
        return js;
}
