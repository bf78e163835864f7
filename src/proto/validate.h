/* Checking a request body against a field table before anything reads it:
 * every field known, of its type, inside its range or value set; the first
 * problem is named by its path ("deviceInformation[0].associateId.type").
 * Pure (no I/O), fuzzed with the orchestrator API's tables (tests/fuzz). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include "util/util.h"

typedef enum { FM_V_STR, FM_V_INT, FM_V_NUM, FM_V_BOOL, FM_V_OBJ, FM_V_ARR } fm_vtype;

typedef struct fm_vfield {
        const char *key;              /* NULL ends a table */
        fm_vtype type;
        bool required;
        size_t max;                   /* FM_V_STR: longest length; FM_V_ARR: most items (0: 64) */
        double lo, hi;                /* FM_V_INT, FM_V_NUM: the range (both 0: any) */
        const char *const *oneof;     /* FM_V_STR: the values allowed, NULL-terminated */
        bool id;                      /* FM_V_STR: an id, 1 to max of [A-Za-z0-9_.-] */
        const struct fm_vfield *sub;  /* FM_V_OBJ: its fields; FM_V_ARR: one entry (key ignored) for the items */
} fm_vfield;

/* 0 when object o matches the table; otherwise -EINVAL with the field's
 * path and the problem in *e. */
int fm_validate(json_object *o, const fm_vfield *table, fm_error *e);
