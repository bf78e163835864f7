/* fastmig orch: tokens for the orchestrator's clients, and the verbs that
 * talk to its API like any client (FASTMIG_API_URL, FASTMIG_API_TOKEN,
 * FASTMIG_API_CA: `fastmig testbed env orch'). */
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "orch/client.h"
#include "orch/http.h"
#include "orch/store.h"
#include "proto/proto.h"

#define DEFAULT_DB "/var/lib/fastmig/orch/orch.db"

static const char USAGE[] =
        "fastmig orch token NAME [--db FILE] [--replace|--revoke]   a client's bearer token (printed once, stored hashed)\n"
        "       fastmig orch register CONTAINER --app ID [--ue IPV4]... [--level not-allowed|with-confirmation|without-confirmation]\n"
        "                             [--downtime-budget-ms MS] [--storage-latency-ms MS]\n"
        "       fastmig orch services | hosts | migrations [--status S] | deregister ID\n"
        "       fastmig orch watch MIGRATION   (the phase and bytes until it ends)\n"
        "FILE: $FASTMIG_ORCH_DB, else " DEFAULT_DB "; the API: FASTMIG_API_URL, FASTMIG_API_TOKEN, FASTMIG_API_CA";

static int token(int argc, char **argv)
{
        const char *db = getenv("FASTMIG_ORCH_DB");
        bool replace = false, revoke = false;
        static const struct option lo[] = {{"db", required_argument, 0, 'd'}, {"replace", no_argument, 0, 'r'},
                                           {"revoke", no_argument, 0, 'R'}, {0, 0, 0, 0}};
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                if (ch == 'd')
                        db = optarg;
                else if (ch == 'r')
                        replace = true;
                else if (ch == 'R')
                        revoke = true;
                else
                        return cli_usage(USAGE);
        }
        if (optind != argc - 1 || (replace && revoke))
                return cli_usage(USAGE);
        if (!db || !*db)
                db = DEFAULT_DB;
        fm_error e = {0};
        fm_store *s = NULL;
        if (fm_store_open(db, &s, &e) < 0)
                return cli_fail("%s", e.msg);
        if (revoke) {
                int n = fm_store_run(s, &e, "DELETE FROM clients WHERE name = ?", "s", argv[optind]);
                fm_store_close(s);
                if (n < 0)
                        return cli_fail("%s", e.msg);
                if (n == 0)
                        return cli_fail("no client %s in %s", argv[optind], db);
                printf("the token of %s is revoked\n", argv[optind]);
                return 0;
        }
        char tok[2 * FM_HTTP_TOKEN_BYTES + 1];
        int r = fm_http_token_create(s, argv[optind], replace, tok, &e);
        fm_store_close(s);
        if (r < 0)
                return cli_fail("%s", e.msg);
        printf("%s\n", tok);
        return 0;
}

static int client(fm_api_client *c)
{
        fm_error e = {0};
        if (!fm_api_client_from_env(c, &e))
                return cli_fail("no orchestrator: set FASTMIG_API_URL, FASTMIG_API_TOKEN and FASTMIG_API_CA "
                                "(`eval $(fastmig testbed env orch)')");
        return e.code ? cli_fail("%s", e.msg) : 0;
}

static int call_print(const char *method, const char *path, json_object *body)
{
        fm_api_client c;
        if (client(&c))
                return 1;
        long st = 0;
        json_object *rep = NULL;
        fm_error e = {0};
        int r = fm_api_call(&c, method, path, body, &st, &rep, &e);
        if (r == 0 && rep)
                cli_print_json(rep);
        json_object_put(rep);
        return r < 0 ? cli_fail("%s", e.msg) : 0;
}

static int reg(int argc, char **argv)
{
        const char *app = NULL, *level = "APP_MOBILITY_WITHOUT_CONFIRMATION";
        double budget = 0, lat = 0;
        json_object *dev = json_object_new_array();
        static const struct option lo[] = {{"app", required_argument, 0, 'a'}, {"ue", required_argument, 0, 'u'},
                                           {"level", required_argument, 0, 'l'},
                                           {"downtime-budget-ms", required_argument, 0, 'b'},
                                           {"storage-latency-ms", required_argument, 0, 's'}, {0, 0, 0, 0}};
        const char *ues[16];
        size_t nue = 0;
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'a': app = optarg; break;
                case 'u':
                        if (nue == FM_ARRAY_SIZE(ues))
                                return cli_fail("at most %zu --ue", FM_ARRAY_SIZE(ues));
                        ues[nue++] = optarg;
                        break;
                case 'l':
                        level = !strcmp(optarg, "not-allowed")            ? "APP_MOBILITY_NOT_ALLOWED"
                                : !strcmp(optarg, "with-confirmation")    ? "APP_MOBILITY_WITH_CONFIRMATION"
                                : !strcmp(optarg, "without-confirmation") ? "APP_MOBILITY_WITHOUT_CONFIRMATION"
                                                                          : NULL;
                        if (!level)
                                return cli_fail("--level is not-allowed, with-confirmation or without-confirmation, not `%s'", optarg);
                        break;
                case 'b':
                        if (fm_parse_double(optarg, &budget) < 0 || budget <= 0)
                                return cli_fail("--downtime-budget-ms takes a positive number, not `%s'", optarg);
                        break;
                case 's':
                        if (fm_parse_double(optarg, &lat) < 0 || lat <= 0)
                                return cli_fail("--storage-latency-ms takes a positive number, not `%s'", optarg);
                        break;
                default: return cli_usage(USAGE);
                }
        }
        if (optind != argc - 1 || !app)
                return cli_usage(USAGE);
        if (!nue && strcmp(level, "APP_MOBILITY_WITHOUT_CONFIRMATION"))
                return cli_fail("--level is given per user: name them with --ue");
        for (size_t i = 0; i < nue; i++) {
                json_object *d = json_object_new_object(), *id = json_object_new_object();
                json_object_object_add(id, "type", json_object_new_string("UE_IPv4_ADDRESS"));
                json_object_object_add(id, "value", json_object_new_string(ues[i]));
                json_object_object_add(d, "associateId", id);
                json_object_object_add(d, "appMobilityServiceLevel", json_object_new_string(level));
                json_object_array_add(dev, d);
        }
        json_object *b = json_object_new_object(), *sc = json_object_new_object(), *ext = json_object_new_object();
        json_object_object_add(sc, "appInstanceId", json_object_new_string(app));
        json_object_object_add(b, "serviceConsumerId", sc);
        json_object_object_add(b, "deviceInformation", dev);
        json_object_object_add(ext, "container", json_object_new_string(argv[optind]));
        if (budget > 0)
                json_object_object_add(ext, "downtimeBudgetMs", json_object_new_double(budget));
        if (lat > 0)
                json_object_object_add(ext, "storageLatencyMs", json_object_new_double(lat));
        json_object_object_add(b, "fastmig", ext);
        int r = call_print("POST", "/amsi/v1/app_mobility_services", b);
        json_object_put(b);
        return r;
}

int cli_orch_watch(const char *id, bool quiet, json_object **final)
{
        fm_api_client c;
        if (client(&c))
                return 1;
        char path[128], last[160] = "";
        snprintf(path, sizeof(path), "/fastmig/v1/migrations/%s", id);
        for (;;) {
                long st = 0;
                json_object *m = NULL, *v = NULL;
                fm_error e = {0};
                if (fm_api_call(&c, "GET", path, NULL, &st, &m, &e) < 0)
                        return cli_fail("%s", e.msg);
                const char *status = fm_json_get_str(m, "status"), *phase = fm_json_get_str(m, "phase");
                int64_t bytes = json_object_object_get_ex(m, "bytes", &v) ? json_object_get_int64(v) : 0;
                char line[160];
                snprintf(line, sizeof(line), "migration %s: %s%s%s, %.1f MB", id, status ? status : "?",
                         phase ? ", after " : "", phase ? phase : "", bytes / 1e6);
                if (!quiet && strcmp(line, last))
                        fprintf(stderr, "  %s\n", line);
                snprintf(last, sizeof(last), "%s", line);
                if (status && strcmp(status, "queued") && strcmp(status, "running")) {
                        if (final)
                                *final = m;
                        else
                                json_object_put(m);
                        return !strcmp(status, "succeeded") ? 0 : 1;
                }
                json_object_put(m);
                struct timespec ts = {0, 200 * 1000000L};
                nanosleep(&ts, NULL);
        }
}

int cmd_orch(int argc, char **argv)
{
        if (argc < 2)
                return cli_usage(USAGE);
        const char *v = argv[1];
        if (!strcmp(v, "token"))
                return token(argc - 1, argv + 1);
        if (!strcmp(v, "register"))
                return reg(argc - 1, argv + 1);
        if (!strcmp(v, "services") && argc == 2)
                return call_print("GET", "/amsi/v1/app_mobility_services", NULL);
        if (!strcmp(v, "hosts") && argc == 2)
                return call_print("GET", "/fastmig/v1/hosts", NULL);
        if (!strcmp(v, "deregister") && argc == 3) {
                char p[160];
                snprintf(p, sizeof(p), "/amsi/v1/app_mobility_services/%.64s", argv[2]);
                return call_print("DELETE", p, NULL);
        }
        if (!strcmp(v, "migrations") && (argc == 2 || (argc == 4 && !strcmp(argv[2], "--status")))) {
                char p[160];
                snprintf(p, sizeof(p), "/fastmig/v1/migrations%s%.32s", argc == 4 ? "?status=" : "", argc == 4 ? argv[3] : "");
                return call_print("GET", p, NULL);
        }
        if (!strcmp(v, "watch") && argc == 3) {
                json_object *m = NULL;
                int r = cli_orch_watch(argv[2], false, &m);
                if (m)
                        cli_print_json(m);
                json_object_put(m);
                return r;
        }
        return cli_usage(USAGE);
}
