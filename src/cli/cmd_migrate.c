#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/plane.h"

static const char USAGE[] = "fastmig migrate NAME --to HOST [--from HOST] [--json] [--no-probe] [--probe-interval-ms MS]";

static void progress(const char *phase, double ms, void *data)
{
        (void)data;
        fprintf(stderr, "  %-10s %8.1f ms\n", phase, ms);
}

int cmd_migrate(int argc, char **argv)
{
        fm_migrate_opts o = {.probe = true, .probe_interval_us = 1000};
        bool json = false;
        double ivl = 1;
        static const struct option lo[] = {
                {"to", required_argument, 0, 't'},    {"from", required_argument, 0, 'f'},
                {"json", no_argument, 0, 'j'},        {"no-probe", no_argument, 0, 'P'},
                {"probe-interval-ms", required_argument, 0, 'i'},
                /* test-only: make a phase fail (the agents must run with --test-hooks) */
                {"inject-failure", required_argument, 0, 'X'},
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
                case 'X': o.inject = optarg; break;
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
        o.name = argv[optind];
        if (!json) {
                o.progress = progress;
                fprintf(stderr, "migrating %s to %s\n", o.name, o.to);
        }
        fm_testbed tb;
        if (cli_load_testbed(&tb))
                return 1;
        json_object *rep = NULL;
        fm_error e = {0};
        int r = fm_plane_migrate(&tb, &o, &rep, &e);
        if (rep) {
                if (json) {
                        cli_print_json(rep);
                } else {
                        cli_print_migration_header();
                        cli_print_migration_row(rep);
                }
                json_object_put(rep);
        }
        if (r < 0)
                return cli_fail("migration of %s failed: %s", o.name, e.msg);
        return 0;
}
