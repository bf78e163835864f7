/* What a host offers a migration: the agent's answer to request "check"
 * (fastmig fleet check, src/cli/cmd_fleet.c). Everything is measured on the
 * host when asked, nothing is taken from configuration but the paths. */
#pragma once
#include <json-c/json.h>

#include "migrate/migrate.h"

/* Less free space than this in the images tmpfs refuses migrations here: a
 * dump of the smallest workload does not fit. */
#define FM_HOSTCHECK_MIN_TMPFS_BYTES (64ull << 20)
/* Each CRIU run is killed after this ... */
#define FM_HOSTCHECK_CRIU_TIMEOUT_MS 10000
/* ... and all of them together stop being started after this, so that the
 * reply comes well within fastmig's 30 s wait for it. */
#define FM_HOSTCHECK_CRIU_BUDGET_MS 20000

/* What this host offers a migration, and why it cannot take part when it
 * cannot. Adds fields to out (a JSON object). Never fails as a whole:
 * each probe that fails says so in its own field.
 *
 * Fields: "criu" {"path", "version", "check", "features" {NAME: bool, or
 * null when CRIU gave no answer}, "feature_errors" {NAME: why}} or
 * {"error"}; "lxc" {"version"}; "memory" {"total_bytes",
 * "available_bytes"}; "disk" (p->lxcpath), "store" (p->store): {"path",
 * "free_bytes"}; "tmpfs" (p->images) {"path", "fstype", "is_tmpfs",
 * "free_bytes"}; each path probe {"path", "error"} when it fails; "shared"
 * null or {"path", "fstype", "id"} as the agent opened the volume (the
 * volume itself is not touched: a network file system that does not answer
 * would block the request); "kernel" (uname release); "can_migrate",
 * "why_not" [...], "notes" [...]; last, "clock" {"realtime_ns"}, taken just
 * before returning: the caller sets it against its own clock and the round
 * trip.
 *
 * Runs criu (p->criu_real_env's if set, else criu on PATH) with
 * CRIU_CONFIG_FILE=/dev/null; as root, since `criu check' needs it. */
void fm_host_check(const fm_host_paths *p, json_object *out);
