#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/images.h"
#include "plane/plane.h"
#include "workload/stream.h"
#include "probe/probe.h"
#include "workload/workload.h"

static const char USAGE[] = "fastmig workload start blank|busybox --host HOST --name NAME\n"
                            "       fastmig workload start video --host HOST --name NAME [--rate-mbit R]\n"
                            "           (and its streaming client in ue, R Mbit/s, default 8)\n"
                            "       fastmig workload start blank|video --flat ...  (a plain rootfs with the image's content)\n"
                            "       fastmig workload start blank|video --shared ...  (that plain rootfs on the shared volume)\n"
                            "       fastmig workload start memory --host HOST --name NAME --size-mib S [--dirty-mib-s R]\n"
                            "                                     [--fill random|half]\n"
                            "       fastmig workload start KIND --plain-lxc ...  (an ordinary LXC container, as one of your own:\n"
                            "           LXC makes its network and /dev, CRIU dumps both; default: fastmig keeps the network\n"
                            "           outside CRIU's images and /dev is the rootfs's)\n"
                            "       fastmig workload write NAME FILE   (the service writes /data/FILE)\n"
                            "       fastmig workload verify NAME       (the memory workload checks its pages)\n"
                            "       fastmig workload state NAME        (its counter and boot id: COUNTER BOOT)\n"
                            "       fastmig workload destroy NAME      (stops and removes it)";

int cmd_workload(int argc, char **argv)
{
        if (argc < 2)
                return cli_usage(USAGE);
        fm_fleet tb;
        if ((!strcmp(argv[1], "verify") && argc == 3) || (!strcmp(argv[1], "write") && argc == 4) ||
            (!strcmp(argv[1], "state") && argc == 3) ||
            (!strcmp(argv[1], "destroy") && argc == 3)) {
                if (cli_load_fleet(&tb))
                        return 1;
                const fm_host *h = NULL;
                char ip[16];
                fm_error e = {0};
                if (fm_plane_locate(&tb, argv[2], &h, ip, &e) < 0)
                        return cli_fail("%s", e.msg);
                if (!strcmp(argv[1], "destroy")) {
                        fm_stream_stop(argv[2]);
                        json_object *req = json_object_new_object();
                        json_object_object_add(req, "op", json_object_new_string("destroy"));
                        json_object_object_add(req, "name", json_object_new_string(argv[2]));
                        int r = fm_plane_call(h, req, NULL, 60000, &e);
                        json_object_put(req);
                        if (r < 0)
                                return cli_fail("%s", e.msg);
                        printf("%s destroyed on %s\n", argv[2], h->name);
                        return 0;
                }
                if (!strcmp(argv[1], "write")) {
                        int64_t c = fm_probe_write(tb.users_netns, ip, FM_SEQECHO_PORT, argv[3], &e);
                        if (c < 0)
                                return cli_fail("%s", e.msg);
                        printf("%lld\n", (long long)c);
                        return 0;
                }
                if (!strcmp(argv[1], "state")) {
                        uint64_t boot = 0;
                        int64_t c = fm_probe_once(tb.users_netns, ip, FM_SEQECHO_PORT, &boot, &e);
                        if (c < 0)
                                return cli_fail("%s", e.msg);
                        printf("%lld %016llx\n", (long long)c, (unsigned long long)boot);
                        return 0;
                }
                uint64_t pages = 0, bad = 0, sum = 0;
                if (fm_probe_verify(tb.users_netns, ip, FM_SEQECHO_PORT, &pages, &bad, &sum, &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("%s on %s: %llu pages, %llu bad, checksum %016llx\n", argv[2], h->name,
                       (unsigned long long)pages, (unsigned long long)bad, (unsigned long long)sum);
                return bad ? 1 : 0;
        }
        if (strcmp(argv[1], "start") || argc < 3)
                return cli_usage(USAGE);
        const char *host = NULL, *name = NULL;
        double rate = 8;
        fm_workload_spec w = {.kind = argv[2], .mem_mib = -1, .dirty_mib_s = 0};
        static const struct option lo[] = {{"host", required_argument, 0, 'h'},
                                           {"name", required_argument, 0, 'n'},
                                           {"size-mib", required_argument, 0, 's'},
                                           {"dirty-mib-s", required_argument, 0, 'd'},
                                           {"fill", required_argument, 0, 'f'},
                                           {"rate-mbit", required_argument, 0, 'r'},
                                           {"flat", no_argument, 0, 'F'},
                                           {"shared", no_argument, 0, 'S'},
                                           {"plain-lxc", no_argument, 0, 'L'},
                                           {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc - 2, argv + 2, "", lo, NULL)) != -1) {
                if (ch == 'h')
                        host = optarg;
                else if (ch == 'n')
                        name = optarg;
                else if (ch == 's' && fm_parse_double(optarg, &w.mem_mib) < 0)
                        return cli_fail("--size-mib takes a number, not `%s'", optarg);
                else if (ch == 'd' && fm_parse_double(optarg, &w.dirty_mib_s) < 0)
                        return cli_fail("--dirty-mib-s takes a number, not `%s'", optarg);
                else if (ch == 'f')
                        w.fill = optarg;
                else if (ch == 'F')
                        w.flat = true;
                else if (ch == 'S')
                        w.shared = true;
                else if (ch == 'L')
                        w.plain_lxc = true;
                else if (ch == 'r' && (fm_parse_double(optarg, &rate) < 0 || !(rate > 0 && rate <= 10000)))
                        return cli_fail("--rate-mbit takes 0 to 10000, not `%s'", optarg);
                else if (ch == '?')
                        return cli_usage(USAGE);
        }
        if (!host || !name || optind != argc - 2)
                return cli_usage(USAGE);
        if (strcmp(w.kind, "memory") && (w.mem_mib >= 0 || w.dirty_mib_s != 0 || w.fill))
                return cli_fail("--size-mib, --dirty-mib-s and --fill are for the memory workload");
        if (!strcmp(w.kind, "memory") && w.mem_mib < 0)
                return cli_fail("the memory workload needs --size-mib");
        if ((w.flat || w.shared) && !fm_workload_is_clone(w.kind))
                return cli_fail("--flat and --shared are for the blank and video workloads");
        if (w.flat && w.shared)
                return cli_fail("--flat and --shared exclude each other (a shared rootfs is a plain one)");
        fm_error e = {0};
        if (fm_workload_check(&w, &e) < 0)
                return cli_fail("%s", e.msg);
        if (cli_load_fleet(&tb))
                return 1;
        if (w.shared && !fm_fleet_host(&tb, host)->shared[0])
                return cli_fail("--shared needs a host with a shared volume (on the testbed: `fastmig testbed up "
                                "--shared-storage')");
        fm_image app;
        if (fm_workload_is_clone(w.kind)) {
                const fm_host *h = fm_fleet_host(&tb, host);
                if (!h)
                        return cli_no_host(&tb, host);
                _cleanup_free_ char *seqecho = fm_strdupf("%s/fm-seqecho", fm_self_dir());
                fm_build_opts o = {.seqecho_path = seqecho, .progress = cli_image_progress};
                if (fm_plane_image_install(h, w.kind, NULL, &o, &app, &e) < 0)
                        return cli_fail("%s", e.msg);
                w.image = app.digest;
        }
        char ip[16];
        if (fm_plane_start_workload(&tb, host, name, &w, ip, &e) < 0)
                return cli_fail("%s", e.msg);
        printf("%s (%s) runs on %s, service %s udp/%d\n", name, w.kind, host, ip, FM_SEQECHO_PORT);
        if (!strcmp(w.kind, "video") && !w.flat) {
                _cleanup_free_ char *client = fm_strdupf("%s/fm-videoclient", fm_self_dir());
                if (fm_stream_start(name, tb.users_netns, ip, client, rate, &e) < 0)
                        return cli_fail("%s", e.msg);
                char st[400];
                fm_stream_status_path(name, st, sizeof(st));
                printf("%s streams http://%s" FM_VIDEO_URL " at %g Mbit/s to ue (status: %s)\n", name, ip, rate, st);
        }
        return 0;
}
