#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "plane/plane.h"
#include "proto/proto.h"
#include "testbed/storage.h"

static const char USAGE[] = "fastmig testbed up [--hosts N] [--link-mbit M] [--shared-storage] [--test-hooks] [--agent-expiry S]\n"
                            "                  [--orchestrator]\n"
                            "       fastmig testbed down | status | env HOST|orch | exec HOST [--private-run] -- CMD [ARGS]\n"
                            "       fastmig testbed orch kill|start|stop\n"
                            "       fastmig testbed storage cut|restore [--host H]\n"
                            "       fastmig testbed agent HOST kill|start\n"
                            "       fastmig testbed link HOST cut|restore";

static void progress(const char *what, void *data)
{
        fprintf(stderr, "fastmig: %s %s\n", (const char *)data, what);
}

static int orch_start(void)
{
        char orchd[4200];
        snprintf(orchd, sizeof(orchd), "%s/fastmig-orchd", fm_self_dir());
        fm_error e = {0};
        return fm_testbed_orch_start(orchd, 0, &e) < 0 ? cli_fail("%s", e.msg) : 0;
}

static int up(int argc, char **argv)
{
        uint32_t hosts = 2, mbit = 1000, expiry = 0;
        bool hooks = false, shared = false, orch = false;
        static const struct option lo[] = {{"hosts", required_argument, 0, 'n'},
                                           {"link-mbit", required_argument, 0, 'm'},
                                           {"test-hooks", no_argument, 0, 'T'},
                                           {"shared-storage", no_argument, 0, 's'},
                                           {"agent-expiry", required_argument, 0, 'E'},
                                           {"orchestrator", no_argument, 0, 'O'},
                                           {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'n' && fm_parse_u32(optarg, &hosts) < 0)
                        return cli_fail("--hosts takes a number, not `%s'", optarg);
                if (ch == 'm' && fm_parse_u32(optarg, &mbit) < 0)
                        return cli_fail("--link-mbit takes a number, not `%s'", optarg);
                if (ch == 'T')
                        hooks = true;
                if (ch == 'E' && (fm_parse_u32(optarg, &expiry) < 0 || expiry < 5 || expiry > 86400))
                        return cli_fail("--agent-expiry takes seconds, 5 to 86400, not `%s'", optarg);
                if (ch == 's')
                        shared = true;
                if (ch == 'O')
                        orch = true;
                if (ch == '?')
                        return cli_usage(USAGE);
        }
        if (optind != argc)
                return cli_usage(USAGE);
        char agent[4200];
        snprintf(agent, sizeof(agent), "%s/fastmigd", fm_self_dir());
        fm_error e = {0};
        fm_testbed_opts o = {.hosts = (int)hosts, .link_mbit = (int)mbit, .agent_path = agent, .test_hooks = hooks,
                             .shared_storage = shared, .agent_expiry_s = (int)expiry};
        if (fm_testbed_up(&o, progress, "up:", &e) < 0)
                return cli_fail("%s", e.msg);
        printf("testbed up: %u edge hosts (mec1..mec%u), core, ue%s; links %u Mbit/s\n", hosts, hosts,
               shared ? ", storage (GlusterFS volume " FM_STORAGE_VOLUME " on " FM_STORAGE_ADDR ")" : "", mbit);
        if (orch) {
                if (orch_start() != 0)
                        return 1;
                printf("orchestrator: https://%s:%d (fastmig testbed env orch)\n", FM_TESTBED_ORCH_ADDR,
                       FM_TESTBED_ORCH_PORT);
        }
        return 0;
}

static int load_testbed(fm_testbed *tb)
{
        fm_error e = {0};
        return fm_testbed_load(tb, &e) < 0 ? cli_fail("%s", e.msg) : 0;
}

static int status(void)
{
        fm_testbed tb;
        if (load_testbed(&tb))
                return 1;
        printf("testbed: %d edge hosts, links %d Mbit/s\n", tb.hosts, tb.link_mbit);
        int bad = 0;
        for (int i = 0; i < tb.hosts; i++) {
                const fm_host *h = &tb.host[i];
                fm_ct_entry *v = NULL;
                size_t n = 0;
                fm_error e = {0};
                int r = fm_plane_list(h, &v, &n, &e);
                printf("  %-6s %s:%u  agent %s", h->name, h->addr, h->port, r == 0 ? "up" : "DOWN");
                if (r < 0) {
                        bad++;
                } else {
                        printf("  containers:%s", n ? "" : " none");
                        for (size_t k = 0; k < n; k++)
                                printf(" %s(%s %s)", v[k].name, v[k].state, v[k].ipv4);
                }
                printf("\n");
                free(v);
        }
        return bad ? 1 : 0;
}

/* An outage of the storage host (cut: its link to the core goes down; the
 * clients' requests wait), or, with --host, of one host's path to it. */
static int storage(int argc, char **argv)
{
        if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--host")))
                return cli_usage(USAGE);
        bool up = !strcmp(argv[1], "restore");
        if (!up && strcmp(argv[1], "cut"))
                return cli_usage(USAGE);
        fm_testbed tb;
        if (load_testbed(&tb))
                return 1;
        if (!tb.shared)
                return cli_fail("this testbed has no storage host (`fastmig testbed up --shared-storage')");
        fm_error e = {0};
        const fm_host *h = argc == 4 ? fm_testbed_host(&tb, argv[3]) : NULL;
        if (argc == 4 && !h)
                return cli_fail("no host `%s' in the testbed (it has mec1..mec%d)", argv[3], tb.hosts);
        if ((h ? fm_storage_reach(h, up, &e) : fm_storage_link(up, &e)) < 0)
                return cli_fail("%s", e.msg);
        printf("storage %s%s%s\n", up ? "reachable again" : "cut off", h ? " from " : "", h ? h->name : "");
        return 0;
}

int cmd_testbed(int argc, char **argv)
{
        if (argc < 2)
                return cli_usage(USAGE);
        const char *sub = argv[1];
        if (!strcmp(sub, "up"))
                return up(argc - 1, argv + 1);
        if (!strcmp(sub, "down")) {
                fm_error e = {0};
                if (fm_testbed_down(progress, "down:", &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("testbed down: nothing left behind\n");
                return 0;
        }
        if (!strcmp(sub, "status"))
                return status();
        if (!strcmp(sub, "storage"))
                return storage(argc - 1, argv + 1);
        if (!strcmp(sub, "link")) {
                if (argc != 4 || (strcmp(argv[3], "cut") && strcmp(argv[3], "restore")))
                        return cli_usage(USAGE);
                fm_error e = {0};
                bool cut = !strcmp(argv[3], "cut");
                if (fm_testbed_link(argv[2], cut, &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("link of %s %s\n", argv[2], cut ? "cut" : "restored");
                return 0;
        }
        if (!strcmp(sub, "agent")) {
                if (argc != 4 || (strcmp(argv[3], "kill") && strcmp(argv[3], "start")))
                        return cli_usage(USAGE);
                char agent[4200];
                snprintf(agent, sizeof(agent), "%s/fastmigd", fm_self_dir());
                fm_error e = {0};
                bool start = !strcmp(argv[3], "start");
                if (fm_testbed_agent(argv[2], start, agent, &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("agent of %s %s\n", argv[2], start ? "started" : "killed");
                return 0;
        }
        if (!strcmp(sub, "env") && argc == 3 && !strcmp(argv[2], "orch")) {
                char buf[512];
                fm_error e = {0};
                if (fm_testbed_orch_env(buf, sizeof(buf), &e) < 0)
                        return cli_fail("%s", e.msg);
                fputs(buf, stdout);
                return 0;
        }
        if (!strcmp(sub, "orch")) {
                if (argc != 3)
                        return cli_usage(USAGE);
                fm_error e = {0};
                if (!strcmp(argv[2], "start")) {
                        if (orch_start() != 0)
                                return 1;
                } else if (!strcmp(argv[2], "kill") || !strcmp(argv[2], "stop")) {
                        if (fm_testbed_orch_stop(!strcmp(argv[2], "kill"), &e) < 0)
                                return cli_fail("%s", e.msg);
                } else {
                        return cli_usage(USAGE);
                }
                printf("orchestrator %s\n", !strcmp(argv[2], "start") ? "started" : !strcmp(argv[2], "kill") ? "killed" : "stopped");
                return 0;
        }
        if (!strcmp(sub, "env") || !strcmp(sub, "exec")) {
                if (argc < 3)
                        return cli_usage(USAGE);
                fm_testbed tb;
                if (load_testbed(&tb))
                        return 1;
                const fm_host *h = fm_testbed_host(&tb, argv[2]);
                if (!h)
                        return cli_fail("no host `%s' in the testbed (it has mec1..mec%d)", argv[2], tb.hosts);
                if (!strcmp(sub, "env")) {
                        printf("FASTMIG_HOST=%s\nFASTMIG_NETNS=%s\nLXC_PATH=%s\nFASTMIG_AGENT=%s:%u\n"
                               "FASTMIG_BRIDGE=%s\nFASTMIG_GATEWAY=%s\nFASTMIG_SUBNET=" FM_TESTBED_SUBNET_PREFIX "0/24\n",
                               h->name, h->netns, h->lxcpath, h->addr, h->port, FM_TESTBED_BRIDGE, FM_TESTBED_GATEWAY);
                        if (h->shared[0])
                                printf("FASTMIG_SHARED=%s\n", h->shared);
                        return 0;
                }
                int first = 3, flags = 0;
                if (first < argc && !strcmp(argv[first], "--private-run")) {
                        flags |= FM_EXEC_PRIVATE_RUN;
                        first++;
                }
                if (first < argc && !strcmp(argv[first], "--"))
                        first++;
                if (first >= argc)
                        return cli_usage(USAGE);
                fm_error e = {0};
                int r = fm_testbed_exec(h, argv + first, flags, &e);
                if (r < 0)
                        return cli_fail("%s", e.msg);
                return r;
        }
        return cli_usage(USAGE);
}
