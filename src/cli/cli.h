/* fastmig front end: one function per verb, arguments in, text or JSON out. */
#pragma once
#include <json-c/json.h>
#include "fleet/fleet.h"
#include "testbed/testbed.h"
#include "util/util.h"

int cmd_testbed(int argc, char **argv);
int cmd_workload(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_memory(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_bench_disk(int argc, char **argv);
int cmd_bench_shared(int argc, char **argv);
int cmd_pki(int argc, char **argv);
int cmd_fleet(int argc, char **argv);
int cmd_orch(int argc, char **argv);
int cmd_bench_orch(int argc, char **argv);
int cmd_scenario(int argc, char **argv);
/* Follows a migration of the orchestrator to its end (progress lines on
 * stderr unless quiet); *final gets the migration resource. 0 when it
 * succeeded. */
int cli_orch_watch(const char *id, bool quiet, json_object **final);

/* shared by the verbs */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* prints, returns 1 */
int cli_usage(const char *usage);                                           /* prints, returns 2 */
/* The fleet the verb works on: --fleet FILE, FASTMIG_FLEET, else the
 * testbed's while it is up. */
int cli_load_fleet(fm_fleet *f);
/* "no host `x' in fleet F (it has ...)", returns 1 */
int cli_no_host(const fm_fleet *f, const char *name);
void cli_print_json(json_object *o);
/* progress lines of an image build (stderr) */
void cli_image_progress(const char *what, void *data);
/* the table row printed for one migration report */
void cli_print_migration_header(void);
void cli_print_migration_row(json_object *rep);
