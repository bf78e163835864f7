/* A migration's options as JSON, one mapping for every front end: the
 * orchestrator's API takes them in a request, `fastmig migrate` sends its
 * flags through it when a daemon drives the migration. Field names are the
 * agent's (docs/PROTOCOL.md) and the CLI's flags with `_' for `-'. */
#pragma once
#include <json-c/json.h>
#include "plane/plane.h"
#include "proto/validate.h"

/* The option fields (for a request's own table: see orch/api.c). */
extern const fm_vfield fm_migrate_opts_fields[];

/* Fills o from j (already checked against fm_migrate_opts_fields: names,
 * ranges, value sets). Strings point into j, which must outlive o. */
int fm_migrate_opts_from_json(json_object *j, fm_migrate_opts *o, fm_error *e);

/* The options set in o (not name/to/from, not the callbacks) as a new object. */
json_object *fm_migrate_opts_to_json(const fm_migrate_opts *o);
