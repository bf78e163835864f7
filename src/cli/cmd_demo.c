#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/plane.h"
#include "proto/proto.h"

static void progress(const char *what, void *data)
{
        (void)data;
        fprintf(stderr, "  %s\n", what);
}

int cmd_demo(int argc, char **argv)
{
        bool json = argc > 1 && !strcmp(argv[1], "--json");
        if (argc > 2 || (argc == 2 && !json))
                return cli_usage("fastmig demo [--json]");
        fm_error e = {0};
        fm_testbed tb;
        if (fm_testbed_load(&tb, NULL) == 0)
                return cli_fail("a testbed is already up; run `fastmig testbed down' first (the demo builds its own)");
        char agent[4200];
        snprintf(agent, sizeof(agent), "%s/fastmigd", cli_self_dir());
        if (!json)
                printf("fastmig demo: a service follows its user from edge host to edge host.\n\n"
                       "1. A testbed: edge hosts mec1 and mec2, a core router and the user (ue), each a network\n"
                       "   namespace; the links are shaped to 1 Gbit/s like the paper's.\n");
        fflush(stdout);
        if (fm_testbed_up(2, 1000, agent, false, json ? NULL : progress, NULL, &e) < 0)
                return cli_fail("%s", e.msg);
        fm_testbed_load(&tb, NULL);
        int rc = 0;
        char ip[16];
        if (!json)
                printf("2. The busybox workload on mec1: an LXC container whose service answers every\n"
                       "   UDP request with a counter kept in its memory.\n");
        if (fm_plane_start_workload(&tb, "mec1", "demo", &(fm_workload_spec){.kind = "busybox"}, ip, &e) < 0) {
                rc = cli_fail("%s", e.msg);
                goto out;
        }
        if (!json) {
                printf("   service %s:7000 runs on mec1\n\n", ip);
                printf("3. Live migrations mec1 -> mec2 -> mec1 while the user's probe asks every 1 ms.\n"
                       "   downtime = longest time the user got no answer; frozen = source frozen until the\n"
                       "   target runs; state kept = the counter went on (a restart would reset it).\n\n");
                cli_print_migration_header();
        }
        const char *hops[] = {"mec2", "mec1"};
        for (int i = 0; i < 2; i++) {
                fm_migrate_opts o = {.name = "demo", .to = hops[i], .probe = true, .probe_interval_us = 1000};
                json_object *rep = NULL;
                int r = fm_plane_migrate(&tb, &o, &rep, &e);
                if (rep) {
                        if (json)
                                cli_print_json(rep);
                        else
                                cli_print_migration_row(rep);
                        json_object_put(rep);
                }
                if (r < 0) {
                        rc = cli_fail("%s", e.msg);
                        break;
                }
        }
        if (!json && rc == 0)
                printf("\nThe paper's best downtime was 1.1 s. `make bench' measures fastmig against the plain\n"
                       "lxc-checkpoint + rsync way in one run; see README.md.\n");
out:
        if (fm_testbed_down(NULL, NULL, &e) < 0)
                rc = cli_fail("%s", e.msg);
        else if (!json)
                printf("4. Testbed removed.\n");
        return rc;
}
