#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/plane.h"
#include "probe/probe.h"
#include "workload/blank.h"

static const char USAGE[] = "fastmig workload start blank --host HOST --name NAME\n"
                            "       fastmig workload write NAME FILE   (the service writes /data/FILE)";

int cmd_workload(int argc, char **argv)
{
        if (argc < 2)
                return cli_usage(USAGE);
        fm_testbed tb;
        if (!strcmp(argv[1], "write")) {
                if (argc != 4)
                        return cli_usage(USAGE);
                if (cli_load_testbed(&tb))
                        return 1;
                const fm_host *h = NULL;
                char ip[16];
                fm_error e = {0};
                if (fm_plane_locate(&tb, argv[2], &h, ip, &e) < 0)
                        return cli_fail("%s", e.msg);
                int64_t c = fm_probe_write(FM_TESTBED_UE_NS, ip, FM_SEQECHO_PORT, argv[3], &e);
                if (c < 0)
                        return cli_fail("%s", e.msg);
                printf("%lld\n", (long long)c);
                return 0;
        }
        if (strcmp(argv[1], "start") || argc < 3)
                return cli_usage(USAGE);
        const char *kind = argv[2], *host = NULL, *name = NULL;
        static const struct option lo[] = {{"host", required_argument, 0, 'h'}, {"name", required_argument, 0, 'n'}, {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc - 2, argv + 2, "", lo, NULL)) != -1) {
                if (ch == 'h')
                        host = optarg;
                else if (ch == 'n')
                        name = optarg;
                else
                        return cli_usage(USAGE);
        }
        if (!host || !name || optind != argc - 2)
                return cli_usage(USAGE);
        if (strcmp(kind, "blank"))
                return cli_fail("unknown workload `%s' (this version has: blank)", kind);
        if (cli_load_testbed(&tb))
                return 1;
        char ip[16];
        fm_error e = {0};
        if (fm_plane_start_blank(&tb, host, name, ip, &e) < 0)
                return cli_fail("%s", e.msg);
        printf("%s runs on %s, service %s udp/%d\n", name, host, ip, FM_SEQECHO_PORT);
        return 0;
}
