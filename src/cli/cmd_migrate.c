#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "orch/client.h"
#include "plane/options.h"
#include "plane/plane.h"

static const char USAGE[] = "fastmig migrate NAME --to HOST [--from HOST] [--json] [--no-probe] [--probe-interval-ms MS]\n"
                            "       [--mode precopy|stopcopy] [--tracker hash|none] [--max-rounds N] [--dirty-threshold PAGES]\n"
                            "       [--min-shrink F] [--restore auto|lazy|eager] [--dump auto|lazy|full] [--compress lz4|none]\n"
                            "       [--strategy auto|memory|partial|full|shared] [--images-lead MS] [--storage-latency-ms MS]\n"
                            "       [--stay-shared]";

static void progress(const char *phase, double ms, void *data)
{
        (void)data;
        fprintf(stderr, "  %-10s %8.1f ms\n", phase, ms);
}

static void round_progress(json_object *ev, double stall_ms, void *data)
{
        (void)data;
        json_object *v = NULL;
        int64_t round = 0, scanned = 0, sent = 0;
        double ms = 0;
        if (json_object_object_get_ex(ev, "round", &v))
                round = json_object_get_int64(v);
        if (json_object_object_get_ex(ev, "pages_scanned", &v))
                scanned = json_object_get_int64(v);
        if (json_object_object_get_ex(ev, "pages_sent", &v))
                sent = json_object_get_int64(v);
        if (json_object_object_get_ex(ev, "ms", &v))
                ms = json_object_get_double(v);
        fprintf(stderr, "  round %-4lld scanned %8lld pages, sent %8lld (%.1f MiB) in %7.1f ms, stall %.1f ms\n",
                (long long)round, (long long)scanned, (long long)sent, sent / 256.0, ms, stall_ms);
}

/* CRIU's own account of the frozen window, beside the phases (stderr,
 * with the progress lines). */
static void print_criu(json_object *rep)
{
        json_object *c = NULL, *d = NULL, *r = NULL, *v = NULL;
        if (!json_object_object_get_ex(rep, "criu", &c) || !c)
                return;
        json_object_object_get_ex(c, "dump", &d);
        json_object_object_get_ex(c, "restore", &r);
#define F(o, k) (o && json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0)
        json_object *dm = NULL, *lp = NULL;
        if (json_object_object_get_ex(rep, "dump", &dm) && dm && !strcmp(json_object_get_string(dm), "lazy")) {
                json_object_object_get_ex(rep, "lazy_pages", &lp);
                fprintf(stderr, "  lazy dump: memory left in the frozen tasks, %lld pages asked for by the target\n",
                        lp ? (long long)json_object_get_int64(lp) : 0);
                d = NULL; /* CRIU's dump figures mean nothing then */
        }
        if (d)
                fprintf(stderr, "  criu dump: freezing %.1f ms, frozen %.1f ms (memory dump %.1f, write %.1f), %.0f pages written\n",
                        F(d, "freezing_ms"), F(d, "frozen_ms"), F(d, "memdump_ms"), F(d, "memwrite_ms"), F(d, "pages_written"));
        if (r)
                fprintf(stderr, "  criu restore: %.1f ms (forking %.1f ms), %.0f pages restored\n", F(r, "restore_ms"),
                        F(r, "forking_ms"), F(r, "pages_restored"));
#undef F
        json_object *net = NULL, *fp = NULL;
        if (json_object_object_get_ex(rep, "netns", &net) && net)
                fprintf(stderr, "  network namespace: %s\n",
                        strcmp(json_object_get_string(net), "fastmig") ? "LXC's, dumped and restored by CRIU"
                                                                       : "kept by fastmig, outside CRIU's images");
        if (!json_object_object_get_ex(rep, "frozen_programs", &fp) || !fp)
                return;
        static const char *const sides[] = {"source", "target"};
        for (size_t s = 0; s < 2; s++) {
                json_object *a = NULL;
                if (!json_object_object_get_ex(fp, sides[s], &a) || !a) {
                        fprintf(stderr, "  programs started while frozen (%s): not known\n", sides[s]);
                        continue;
                }
                fprintf(stderr, "  programs started while frozen (%s): %zu", sides[s], json_object_array_length(a));
                for (size_t i = 0; i < json_object_array_length(a) && i < 12; i++) {
                        json_object *o = json_object_array_get_idx(a, i), *p = NULL;
                        json_object_object_get_ex(o, "program", &p);
                        fprintf(stderr, "%s%s", i ? " " : " (", p ? json_object_get_string(p) : "?");
                }
                fprintf(stderr, "%s\n", json_object_array_length(a) > 12 ? " ...)" : json_object_array_length(a) ? ")" : "");
        }
}

static void print_report(json_object *rep, bool json)
{
        if (json) {
                cli_print_json(rep);
                return;
        }
        print_criu(rep);
        cli_print_migration_header();
        cli_print_migration_row(rep);
}

/* With FASTMIG_API_URL set, the orchestrator runs the migration: the same
 * options as a request, its progress followed, its report printed alike. */
static int migrate_via_orch(const fm_api_client *c, const fm_migrate_opts *o, bool json)
{
        json_object *b = json_object_new_object();
        json_object_object_add(b, "container", json_object_new_string(o->name));
        json_object_object_add(b, "to", json_object_new_string(o->to));
        if (o->from)
                json_object_object_add(b, "from", json_object_new_string(o->from));
        json_object_object_add(b, "options", fm_migrate_opts_to_json(o));
        long st = 0;
        json_object *m = NULL, *id = NULL;
        fm_error e = {0};
        int r = fm_api_call(c, "POST", "/fastmig/v1/migrations", b, &st, &m, &e);
        json_object_put(b);
        if (r < 0)
                return cli_fail("the orchestrator refused the migration of %s: %s", o->name, e.msg);
        if (!json_object_object_get_ex(m, "id", &id)) {
                json_object_put(m);
                return cli_fail("the orchestrator's answer has no migration id");
        }
        char ids[32];
        snprintf(ids, sizeof(ids), "%s", json_object_get_string(id));
        json_object_put(m);
        if (!json)
                fprintf(stderr, "migrating %s to %s through the orchestrator (migration %s)\n", o->name, o->to, ids);
        m = NULL;
        r = cli_orch_watch(ids, json, &m);
        json_object *rep = NULL, *err = NULL;
        if (m && json_object_object_get_ex(m, "report", &rep) && rep)
                print_report(rep, json);
        if (m && r != 0) {
                json_object_object_get_ex(m, "error", &err);
                r = cli_fail("migration of %s failed: %s", o->name, err ? json_object_get_string(err) : "see its report");
        }
        json_object_put(m);
        return r;
}

int cmd_migrate(int argc, char **argv)
{
        fm_migrate_opts o = {.probe = true, .probe_interval_us = 1000};
        bool json = false;
        const char *tracker = NULL;
        double ivl = 1;
        static const struct option lo[] = {
                {"to", required_argument, 0, 't'},    {"from", required_argument, 0, 'f'},
                {"json", no_argument, 0, 'j'},        {"no-probe", no_argument, 0, 'P'},
                {"probe-interval-ms", required_argument, 0, 'i'},
                /* test-only: make a phase fail (the agents must run with --test-hooks) */
                {"inject-failure", required_argument, 0, 'X'},
                {"mode", required_argument, 0, 'm'},
                {"tracker", required_argument, 0, 'k'},
                {"max-rounds", required_argument, 0, 'r'},
                {"images-lead", required_argument, 0, 'L'},
                {"dirty-threshold", required_argument, 0, 'd'},
                {"restore", required_argument, 0, 'R'},
                {"dump", required_argument, 0, 'D'},
                {"compress", required_argument, 0, 'C'},
                {"min-shrink", required_argument, 0, 'S'},
                {"strategy", required_argument, 0, 's'},
                {"storage-latency-ms", required_argument, 0, 'Y'},
                {"stay-shared", no_argument, 0, 'H'},
                {0, 0, 0, 0},
        };
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (ch) {
                case 't': o.to = optarg; break;
                case 'f': o.from = optarg; break;
                case 'j': json = true; break;
                case 'P': o.probe = false; break;
                case 'H': o.stay_shared = true; break;
                case 'X': o.inject = optarg; break;
                case 's':
                        if (strcmp(optarg, "auto") && strcmp(optarg, "memory") && strcmp(optarg, "partial") &&
                            strcmp(optarg, "full") && strcmp(optarg, "shared"))
                                return cli_fail("--strategy is auto, memory, partial, full or shared, not `%s'", optarg);
                        o.strategy = optarg;
                        break;
                case 'Y':
                        if (fm_parse_double(optarg, &o.storage_latency_ms) < 0 ||
                            !(o.storage_latency_ms >= 0.001 && o.storage_latency_ms <= 60000))
                                return cli_fail("--storage-latency-ms takes 0.001 to 60000 ms, not `%s'", optarg);
                        break;
                case 'm':
                        if (strcmp(optarg, "stopcopy") && strcmp(optarg, "precopy"))
                                return cli_fail("--mode is stopcopy or precopy, not `%s'", optarg);
                        o.mode = optarg;
                        break;
                case 'S':
                        if (fm_parse_double(optarg, &o.min_shrink) < 0 || !(o.min_shrink >= 0.01 && o.min_shrink <= 1))
                                return cli_fail("--min-shrink takes a share from 0.01 to 1, not `%s'", optarg);
                        break;
                case 'C':
                        if (strcmp(optarg, "lz4") && strcmp(optarg, "none"))
                                return cli_fail("--compress is lz4 or none, not `%s'", optarg);
                        o.compress = optarg;
                        break;
                case 'R':
                        if (strcmp(optarg, "lazy") && strcmp(optarg, "eager") && strcmp(optarg, "auto"))
                                return cli_fail("--restore is auto, lazy or eager, not `%s'", optarg);
                        o.restore = optarg;
                        break;
                case 'D':
                        if (strcmp(optarg, "lazy") && strcmp(optarg, "full") && strcmp(optarg, "auto"))
                                return cli_fail("--dump is auto, lazy or full, not `%s'", optarg);
                        o.dump = optarg;
                        break;
                case 'k':
                        if (strcmp(optarg, "hash") && strcmp(optarg, "none"))
                                return cli_fail("--tracker is hash or none, not `%s' (no soft-dirty tracker on this "
                                                "kernel)", optarg);
                        tracker = optarg;
                        break;
                case 'r': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v < 1 || v > 64)
                                return cli_fail("--max-rounds takes 1 to 64, not `%s'", optarg);
                        o.max_rounds = (int)v;
                        break;
                }
                case 'L': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v > 10000)
                                return cli_fail("--images-lead takes 0 to 10000 ms, not `%s'", optarg);
                        o.images_lead_ms = v ? (int)v : -1; /* 0: images complete before the freeze */
                        break;
                }
                case 'd': {
                        uint32_t v = 0;
                        if (fm_parse_u32(optarg, &v) < 0 || v < 1)
                                return cli_fail("--dirty-threshold takes a number of pages (1 or more), not `%s'", optarg);
                        o.dirty_threshold = v;
                        break;
                }
                case 'i':
                        if (fm_parse_double(optarg, &ivl) < 0 || ivl < 0.1 || ivl > 1000)
                                return cli_fail("--probe-interval-ms takes 0.1 to 1000, not `%s'", optarg);
                        o.probe_interval_us = (int)(ivl * 1000);
                        break;
                default: return cli_usage(USAGE);
                }
        }
        if (optind != argc - 1 || !o.to)
                return cli_usage(USAGE);
        /* mode and tracker go together: precopy (the default) tracks with hashes */
        if (tracker && !strcmp(tracker, "none") && o.mode && !strcmp(o.mode, "precopy"))
                return cli_fail("--mode precopy needs a tracker (--tracker hash)");
        if (tracker && !strcmp(tracker, "hash") && !o.mode)
                o.mode = "precopy";
        if (tracker && !strcmp(tracker, "none") && !o.mode)
                o.mode = "stopcopy";
        o.name = argv[optind];
        { /* the flags against the table the orchestrator checks them with */
                json_object *j = fm_migrate_opts_to_json(&o);
                fm_error ve = {0};
                int v = fm_validate(j, fm_migrate_opts_fields, &ve);
                json_object_put(j);
                if (v < 0)
                        return cli_fail("%s", ve.msg);
        }
        fm_api_client api;
        fm_error e = {0};
        if (fm_api_client_from_env(&api, &e))
                return e.code ? cli_fail("%s", e.msg) : migrate_via_orch(&api, &o, json);
        if (!json) {
                o.progress = progress;
                o.round_progress = round_progress;
                fprintf(stderr, "migrating %s to %s\n", o.name, o.to);
        }
        fm_fleet tb;
        if (cli_load_fleet(&tb))
                return 1;
        json_object *rep = NULL;
        int r = fm_plane_migrate(&tb, &o, &rep, &e);
        if (rep) {
                print_report(rep, json);
                json_object_put(rep);
        }
        if (r < 0)
                return cli_fail("migration of %s failed: %s", o.name, e.msg);
        return 0;
}
