/* fastmig: live migration of LXC containers between edge hosts. */
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "cli.h"
#include "proto/tls.h"
#include "proto/proto.h"

/* What a verb works on: a fleet (--fleet FILE, FASTMIG_FLEET, or the
 * testbed's while it is up), a testbed it builds or runs, or neither. */
enum { ON_FLEET = 1, ON_TESTBED = 2 };

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
        int on;
} verbs[] = {
        {"fleet", cmd_fleet, "check: every host of the fleet, and why one cannot migrate", ON_FLEET},
        {"workload", cmd_workload, "start|write|state|verify|destroy: built-in workloads", ON_FLEET},
        {"migrate", cmd_migrate, "NAME --to HOST: live-migrate a container", ON_FLEET},
        {"list", cmd_list, "containers on every host", ON_FLEET},
        {"image", cmd_image, "build|list|push|rm: base and app images in the hosts' stores", ON_FLEET},
        {"pki", cmd_pki, "init|issue|show: the fleet's certificate authority", 0},
        {"orch", cmd_orch, "token|register|services|hosts|migrations|watch: the orchestrator and its API", 0},
        {"probe", cmd_probe, "ADDR: measure a service's availability from the user's side", 0},
        {"testbed", cmd_testbed, "up|down|status|env|exec: the local multi-host testbed", ON_TESTBED},
        {"bench", cmd_bench, "fastmig against the plain lxc-checkpoint + rsync way", ON_TESTBED},
        {"bench-disk", cmd_bench_disk, "the disk strategies and the baseline on blank and video (Tables I, II)", ON_TESTBED},
        {"bench-shared", cmd_bench_shared, "shared storage against memory-mig on blank and video (Tables I, II)", ON_TESTBED},
        {"bench-orch", cmd_bench_orch, "N services migrating at once through the orchestrator, against one at a time", ON_TESTBED},
        {"scenario", cmd_scenario, "run|check FILE: users moving through the cells, their services followed", ON_TESTBED},
        {"bench-memory", cmd_bench_memory, "pre-copy against stop-and-copy on the memory workload", ON_TESTBED},
        {"demo", cmd_demo, "the guided tour on a fresh testbed", ON_TESTBED},
};

static fm_fleet fleet;
static bool have_fleet;
static const char *fleet_from; /* where it came from, for messages */

int cli_fail(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("fastmig: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return 1;
}

int cli_usage(const char *usage)
{
        fprintf(stderr, "usage: %s\n", usage);
        return 2;
}

int cli_load_fleet(fm_fleet *f)
{
        if (!have_fleet)
                return cli_fail("no fleet: give --fleet FILE (or FASTMIG_FLEET), or start the testbed (`fastmig testbed up')");
        *f = fleet;
        return 0;
}

int cli_no_host(const fm_fleet *f, const char *name)
{
        char names[400];
        fm_fleet_names(f, names, sizeof(names));
        return cli_fail("no host `%s' in fleet %s (%s; it has %s)", name, f->name, fleet_from, names);
}

void cli_print_json(json_object *o)
{
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
}

static double jd(json_object *o, const char *k)
{
        json_object *v = NULL;
        return json_object_object_get_ex(o, k, &v) && v ? json_object_get_double(v) : -1;
}

void cli_print_migration_header(void)
{
        printf("%-10s %-5s %-5s %-8s %-4s %11s %10s %10s %9s %10s %10s  %s\n", "container", "from", "to", "strategy", "ok",
               "downtime_ms", "frozen_ms", "total_ms", "state", "disk_kB", "memory_kB", "note");
}

void cli_print_migration_row(json_object *rep)
{
        const char *c = NULL, *f = NULL, *t = NULL, *err = NULL, *st = NULL;
        fm_json_str(rep, "strategy", false, 16, &st, NULL);
        json_object *bd = NULL;
        json_object_object_get_ex(rep, "bytes_disk", &bd);
        fm_json_str(rep, "container", false, 64, &c, NULL);
        fm_json_str(rep, "from", false, 32, &f, NULL);
        fm_json_str(rep, "to", false, 32, &t, NULL);
        fm_json_str(rep, "error", false, 1024, &err, NULL);
        json_object *sc = NULL;
        json_object_object_get_ex(rep, "state_continuous", &sc);
        const char *state = !sc ? "-" : json_object_get_boolean(sc) ? "kept" : "LOST";
        bool ok = fm_json_bool(rep, "ok", false), rb = fm_json_bool(rep, "rolled_back", false);
        char dt[32] = "-";
        if (jd(rep, "downtime_ms") >= 0)
                snprintf(dt, sizeof(dt), "%.1f", jd(rep, "downtime_ms"));
        printf("%-10s %-5s %-5s %-8s %-4s %11s %10.1f %10.1f %9s %10.1f %10.1f  %s%s\n", c ? c : "?", f ? f : "?",
               t ? t : "?", st ? st : "-", ok ? "yes" : "NO", dt, jd(rep, "frozen_ms"), jd(rep, "total_ms"), state,
               bd && json_object_is_type(bd, json_type_object) ? jd(bd, "total") / 1000.0 : jd(rep, "bytes_disk") / 1000.0, jd(rep, "bytes_memory") / 1000.0, rb ? "rolled back: " : "",
               err && !ok ? err : "");
        const char *fb = NULL; /* auto left check 0: the shared tree moved to the target's disk */
        if (fm_json_str(rep, "fallback", false, 1024, &fb, NULL) == 0 && fb)
                printf("%-10s the tree left the shared volume for %s's disk, because %s\n", "", t ? t : "?", fb);
        fflush(stdout);
}

static void usage_all(FILE *f)
{
        fprintf(f, "usage: fastmig [--fleet FILE] VERB [ARGS]\n\nverbs:\n");
        for (size_t i = 0; i < FM_ARRAY_SIZE(verbs); i++)
                fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].help);
        fprintf(f, "\n--fleet FILE (or FASTMIG_FLEET): the hosts the first five verbs work on (docs/FLEET.md);\n"
                   "without it, the testbed's while it is up. fastmig VERB --help shows each verb's options.\n"
                   "Runs as root.\n");
}

/* The fleet: --fleet, FASTMIG_FLEET, else the testbed's when it is up. */
static int load_fleet(const char *file)
{
        if (!file || !*file)
                file = getenv("FASTMIG_FLEET");
        bool given = file && *file;
        if (!given) {
                if (!fm_path_exists(FM_TESTBED_FLEET))
                        return 0; /* cli_load_fleet says what is missing */
                file = FM_TESTBED_FLEET;
        }
        fm_error e = {0};
        if (fm_fleet_load(file, &fleet, &e) < 0)
                return cli_fail("%s", e.msg);
        have_fleet = true;
        fleet_from = given ? file : "the testbed's";
        return 0;
}

/* The certificate fastmig presents to the agents: FASTMIG_PKI (a
 * directory with ca.crt and NAME.crt/.key) and FASTMIG_CERT (NAME), else
 * the fleet's (its pki and certificate), else the testbed's once it is up;
 * the name defaults to operator. */
static int tls_setup(void)
{
        const char *dir = getenv("FASTMIG_PKI"), *name = getenv("FASTMIG_CERT");
        char crt[600];
        if ((!name || !*name) && have_fleet)
                name = fleet.cert;
        if (!name || !*name)
                name = "operator";
        if ((!dir || !*dir) && have_fleet && fleet.pki[0])
                dir = fleet.pki;
        if (!dir || !*dir) {
                snprintf(crt, sizeof(crt), "%s/%s.crt", FM_TESTBED_PKI, name);
                if (!fm_path_exists(crt))
                        return 0; /* verbs that reach no agent; the others say what is missing */
                dir = FM_TESTBED_PKI;
        }
        fm_error e = {0};
        if (fm_tls_setup(dir, name, &e) < 0)
                return cli_fail("certificate %s in %s: %s", name, dir, e.msg);
        return 0;
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        const char *fleet_file = NULL;
        if (argc >= 2 && !strncmp(argv[1], "--fleet", 7)) {
                if (!strcmp(argv[1], "--fleet") && argc >= 3) {
                        fleet_file = argv[2];
                        argv += 2;
                        argc -= 2;
                } else if (!strncmp(argv[1], "--fleet=", 8)) {
                        fleet_file = argv[1] + 8;
                        argv++;
                        argc--;
                } else {
                        usage_all(stderr);
                        return 2;
                }
                argv[0] = "fastmig";
        }
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
                usage_all(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        for (size_t i = 0; i < FM_ARRAY_SIZE(verbs); i++)
                if (!strcmp(argv[1], verbs[i].name)) {
                        if (geteuid() != 0 && strcmp(argv[1], "probe") && strcmp(argv[1], "pki") && strcmp(argv[1], "orch"))
                                return cli_fail("%s needs root (network namespaces, LXC, CRIU)", argv[1]);
                        if (fleet_file && verbs[i].on != ON_FLEET)
                                return cli_fail("--fleet is for the verbs that work on a fleet, not `%s'", argv[1]);
                        if (verbs[i].on == ON_FLEET && load_fleet(fleet_file) != 0)
                                return 1;
                        /* agents are reached from the fleet's agents_netns;
                         * the testbed's through its core router */
                        fm_tcp_client_netns(have_fleet ? fleet.agents_netns : FM_TESTBED_CORE_NS);
                        if (strcmp(argv[1], "pki") && tls_setup() < 0)
                                return 1;
                        int rc = verbs[i].fn(argc - 1, argv + 1);
                        fm_tls_drain(2000);
                        return rc;
                }
        fprintf(stderr, "fastmig: unknown verb `%s'\n\n", argv[1]);
        usage_all(stderr);
        return 2;
}
