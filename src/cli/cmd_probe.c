#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "probe/probe.h"
#include "proto/proto.h"
#include "workload/workload.h"

static const char USAGE[] = "fastmig probe ADDR[:PORT] [--interval-ms MS] [--duration-s S] [--netns NS] [--json]";

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

int cmd_probe(int argc, char **argv)
{
        double ivl = 1, dur = 10;
        bool json = false;
        const char *netns = NULL;
        static const struct option lo[] = {{"interval-ms", required_argument, 0, 'i'},
                                           {"duration-s", required_argument, 0, 'd'},
                                           {"netns", required_argument, 0, 'n'},
                                           {"json", no_argument, 0, 'j'},
                                           {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'i' && (fm_parse_double(optarg, &ivl) < 0 || ivl < 0.1 || ivl > 1000))
                        return cli_fail("--interval-ms takes 0.1 to 1000, not `%s'", optarg);
                if (ch == 'd' && (fm_parse_double(optarg, &dur) < 0 || dur <= 0 || dur > 86400))
                        return cli_fail("--duration-s takes a positive number of seconds, not `%s'", optarg);
                if (ch == 'n')
                        netns = optarg;
                if (ch == 'j')
                        json = true;
                if (ch == '?')
                        return cli_usage(USAGE);
        }
        if (optind != argc - 1)
                return cli_usage(USAGE);
        char addr[16];
        uint16_t port = 0;
        fm_error e = {0};
        if (fm_parse_endpoint(argv[optind], addr, sizeof(addr), &port, &e) < 0)
                return cli_fail("%s", e.msg);
        if (!strchr(argv[optind], ':'))
                port = FM_SEQECHO_PORT;
        /* on the testbed, probe from the user's namespace by default */
        if (!netns && geteuid() == 0 && fm_path_exists("/run/netns/" FM_TESTBED_UE_NS))
                netns = FM_TESTBED_UE_NS;
        fm_probe p;
        if (fm_probe_start(&p, netns, addr, port, (int)(ivl * 1000), &e) < 0)
                return cli_fail("%s", e.msg);
        signal(SIGINT, on_sig);
        signal(SIGTERM, on_sig);
        uint64_t end = fm_now_ns() + (uint64_t)(dur * 1e9);
        while (!stop && fm_now_ns() < end)
                usleep(10000);
        fm_probe_result r;
        fm_probe_stop(&p, &r);
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "target", json_object_new_string(argv[optind]));
                json_object_object_add(o, "sent", json_object_new_int64((int64_t)r.sent));
                json_object_object_add(o, "received", json_object_new_int64((int64_t)r.received));
                json_object_object_add(o, "duration_ms", json_object_new_double(r.duration_ms));
                json_object_object_add(o, "max_gap_ms", json_object_new_double(r.max_gap_ms));
                json_object_object_add(o, "max_gap_at_ms", json_object_new_double(r.max_gap_start_ms));
                json_object_object_add(o, "first_counter", json_object_new_int64((int64_t)r.first_counter));
                json_object_object_add(o, "last_counter", json_object_new_int64((int64_t)r.last_counter));
                json_object_object_add(o, "state_continuous",
                                       json_object_new_boolean(fm_probe_kept(&r, NULL)));
                cli_print_json(o);
                json_object_put(o);
        } else {
                printf("%s: %llu sent, %llu answered in %.1f s; longest gap %.1f ms (at %.1f s); counter %llu..%llu%s\n",
                       argv[optind], (unsigned long long)r.sent, (unsigned long long)r.received, r.duration_ms / 1000,
                       r.max_gap_ms, r.max_gap_start_ms / 1000, (unsigned long long)r.first_counter,
                       (unsigned long long)r.last_counter, r.boot_changed ? " (service restarted)" : "");
        }
        return r.received ? 0 : 1;
}
