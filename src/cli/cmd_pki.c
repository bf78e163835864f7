#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pki/pki.h"

static const char USAGE[] =
        "fastmig pki init [--dir DIR] [--fleet NAME] [--force]\n"
        "       fastmig pki issue NAME [--role host|operator] [--ip ADDR]... [--days N] [--dir DIR]\n"
        "       fastmig pki show [--dir DIR]\n"
        "DIR: $FASTMIG_PKI, else " FM_PKI_DEFAULT_DIR "; the fleet: fleet; the role: host; N: 365 days.\n"
        "--force replaces the CA: every certificate it issued stops verifying.";

static int do_show(const char *dir)
{
        fm_pki_cert *v = NULL;
        size_t n = 0;
        fm_error e = {0};
        if (fm_pki_list(dir, &v, &n, &e) < 0)
                return cli_fail("%s", e.msg);
        printf("%-20s %-9s %-10s %-8s %s\n", "name", "role", "expires", "verifies", "alt names");
        for (size_t i = 0; i < n; i++) {
                char exp[16] = "-";
                struct tm tm;
                if (v[i].not_after && gmtime_r(&v[i].not_after, &tm))
                        strftime(exp, sizeof(exp), "%Y-%m-%d", &tm);
                printf("%-20s %-9s %-10s %-8s %s\n", v[i].name, v[i].role, exp, v[i].verified ? "yes" : "NO",
                       v[i].sans);
                if (!v[i].verified)
                        printf("  %s: %s\n", v[i].file, v[i].why);
        }
        free(v);
        return 0;
}

int cmd_pki(int argc, char **argv)
{
        if (argc < 2)
                return cli_usage(USAGE);
        const char *verb = argv[1], *dir = getenv("FASTMIG_PKI"), *fleet = "fleet", *role = "host";
        if (!dir || !*dir)
                dir = FM_PKI_DEFAULT_DIR;
        const char *ips[FM_PKI_MAX_ADDRS];
        size_t nips = 0;
        uint32_t days = 365;
        bool force = false, init_opts = false, issue_opts = false;
        static const struct option lo[] = {
                {"dir", required_argument, 0, 'd'},  {"fleet", required_argument, 0, 'f'},
                {"force", no_argument, 0, 'F'},      {"role", required_argument, 0, 'r'},
                {"ip", required_argument, 0, 'i'},   {"days", required_argument, 0, 'D'},
                {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'd': dir = optarg; break;
                case 'f': fleet = optarg, init_opts = true; break;
                case 'F': force = true, init_opts = true; break;
                case 'r': role = optarg, issue_opts = true; break;
                case 'i':
                        if (nips == FM_PKI_MAX_ADDRS)
                                return cli_fail("at most %d --ip", FM_PKI_MAX_ADDRS);
                        ips[nips++] = optarg, issue_opts = true;
                        break;
                case 'D':
                        if (fm_parse_u32(optarg, &days) < 0 || days < 1 || days > FM_PKI_MAX_DAYS)
                                return cli_fail("--days takes 1 to %d, not `%s'", FM_PKI_MAX_DAYS, optarg);
                        issue_opts = true;
                        break;
                default: return cli_usage(USAGE);
                }
        }
        int nargs = argc - 1 - optind; /* after the verb */
        fm_error e = {0};
        if (!strcmp(verb, "init") && nargs == 0 && !issue_opts) {
                if (fm_pki_init(dir, fleet, force, &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("fleet %s: CA %s/ca.crt, its key %s/ca.key (keep it here, 0600)\n", fleet, dir, dir);
                return 0;
        }
        if (!strcmp(verb, "issue") && nargs == 1 && !init_opts) {
                const char *name = argv[1 + optind];
                if (fm_pki_issue(dir, name, role, ips, nips, (int)days, &e) < 0)
                        return cli_fail("%s", e.msg);
                printf("%s (%s): %s/%s.crt, its key %s/%s.key, for %u days\n", name, role, dir, name, dir, name,
                       days);
                return 0;
        }
        if (!strcmp(verb, "show") && nargs == 0 && !init_opts && !issue_opts)
                return do_show(dir);
        return cli_usage(USAGE);
}
