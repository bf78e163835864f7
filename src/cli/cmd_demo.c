#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/images.h"
#include "plane/plane.h"
#include "workload/stream.h"
#include "proto/proto.h"

static int64_t json_int(json_object *o, const char *k)
{
        json_object *v = NULL;
        return json_object_object_get_ex(o, k, &v) && v ? json_object_get_int64(v) : 0;
}

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
        snprintf(agent, sizeof(agent), "%s/fastmigd", fm_self_dir());
        if (!json)
                printf("fastmig demo: a service follows its user from edge host to edge host.\n\n"
                       "1. A testbed: edge hosts mec1 and mec2, a core router and the user (ue), each a network\n"
                       "   namespace; the links are shaped to 1 Gbit/s like the paper's.\n");
        fflush(stdout);
        fm_testbed_opts o = {.hosts = 2, .link_mbit = 1000, .agent_path = agent};
        if (fm_testbed_up(&o, json ? NULL : progress, NULL, &e) < 0)
                return cli_fail("%s", e.msg);
        fm_testbed_load(&tb, NULL);
        fm_fleet fleet;
        fm_testbed_fleet(&tb, &fleet);
        int rc = 0;
        char ip[16];
        if (!json)
                printf("2. The paper's video workload on mec1: a Debian 12 container (an overlay clone of the\n"
                       "   image `video': nginx and a 240 MB video over the base image `debian12') whose nginx\n"
                       "   streams the video at 8 Mbit/s over one HTTP connection to a player in ue that checks\n"
                       "   every byte; beside it, a service that answers every UDP request with a counter kept\n"
                       "   in memory. The images are built once per machine (debootstrap, apt: about a minute).\n");
        fflush(stdout);
        _cleanup_free_ char *seqecho = fm_strdupf("%s/fm-seqecho", fm_self_dir());
        _cleanup_free_ char *client = fm_strdupf("%s/fm-videoclient", fm_self_dir());
        fm_build_opts bo = {.seqecho_path = seqecho, .progress = json ? NULL : progress};
        fm_image app;
        if (fm_plane_image_install(fm_testbed_host(&tb, "mec1"), "video", NULL, &bo, &app, &e) < 0 ||
            fm_plane_start_workload(&fleet, "mec1", "demo", &(fm_workload_spec){.kind = "video", .image = app.digest}, ip,
                                    &e) < 0 ||
            fm_stream_start("demo", fleet.users_netns, ip, client, 8, &e) < 0) {
                rc = cli_fail("%s", e.msg);
                goto out;
        }
        if (!json) {
                printf("   service %s runs on mec1; mec2 holds no image yet\n\n", ip);
                printf("3. Live migrations while the user's probe asks every 1 ms and the video plays. The target's\n"
                       "   checks pick the disk strategy: it holds the app image: memory-mig (only the container's\n"
                       "   own changes travel); the base only: partial-mig (the app layer too); neither: full-mig.\n"
                       "   downtime = longest time the user got no answer; frozen = source frozen until the\n"
                       "   target runs; state kept = it answered after the move with the same boot id and its\n"
                       "   in-memory counter went on from the freeze (a restart would reset it).\n\n");
                cli_print_migration_header();
        }
        static const struct {
                const char *to, *before;
        } hops[] = {{"mec2", NULL}, {"mec1", NULL}, {"mec2", "video"}};
        for (size_t i = 0; i < FM_ARRAY_SIZE(hops); i++) {
                if (hops[i].before) { /* mec2 keeps the base only: partial-mig */
                        json_object *req = json_object_new_object();
                        json_object_object_add(req, "op", json_object_new_string("image_rm"));
                        json_object_object_add(req, "image", json_object_new_string(hops[i].before));
                        fm_plane_call(fm_testbed_host(&tb, hops[i].to), req, NULL, 60000, NULL);
                        json_object_put(req);
                        if (!json)
                                printf("   (image video removed from %s, its base kept)\n", hops[i].to);
                }
                fm_migrate_opts o = {.name = "demo", .to = hops[i].to, .probe = true, .probe_interval_us = 1000};
                json_object *rep = NULL;
                int r = fm_plane_migrate(&fleet, &o, &rep, &e);
                if (rep) {
                        if (json) {
                                cli_print_json(rep);
                        } else {
                                cli_print_migration_row(rep);
                                json_object *st = NULL, *bd = NULL, *v = NULL;
                                json_object_object_get_ex(rep, "stream", &st);
                                json_object_object_get_ex(rep, "bytes_disk", &bd);
                                int64_t dby = 0;
                                if (bd && json_object_object_get_ex(bd, "total", &v))
                                        dby = json_object_get_int64(v);
                                int64_t by = 0;
                                double stall = 0;
                                if (st && json_object_object_get_ex(st, "bytes_verified", &v))
                                        by = json_object_get_int64(v);
                                if (st && json_object_object_get_ex(st, "longest_stall_ms", &v))
                                        stall = json_object_get_double(v);
                                printf("           decided by check %d; disk %.1f MB; video: connection %s, %.1f MB "
                                       "verified so far, longest stall %.0f ms\n",
                                       (int)json_int(rep, "decided_by"), (double)dby / 1e6,
                                       st && fm_json_bool(st, "connection_kept", false) ? "kept" : "BROKEN",
                                       (double)by / 1e6, stall);
                        }
                        json_object_put(rep);
                }
                if (r < 0) {
                        rc = cli_fail("%s", e.msg);
                        break;
                }
        }
        fm_stream_stop("demo");
        if (!json && rc == 0)
                printf("\nThe paper's best downtime was 1.1 s and its memory-mig took 9 s in all. `make bench-disk'\n"
                       "repeats each strategy beside the plain lxc-checkpoint + rsync way; see README.md.\n");
out:
        if (fm_testbed_down(NULL, NULL, &e) < 0)
                rc = cli_fail("%s", e.msg);
        else if (!json)
                printf("4. Testbed removed.\n");
        return rc;
}
