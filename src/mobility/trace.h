/* A user's trajectory: (time, x, y) or (time, cell) points read from a CSV
 * or JSON text or from SUMO's floating-car data (fcd-export XML). Pure,
 * fuzzed (tests/fuzz). The forms and limits are in docs/MOBILITY.md. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mobility/coverage.h"
#include "proto/validate.h"
#include "util/util.h"

#define FM_TRACE_TEXT_MAX (4 << 20)  /* bytes of a trace's text */
#define FM_TRACE_POINTS_MAX 20000
#define FM_TRACE_TIME_MAX_S 604800   /* a week: the latest time a point may have */
#define FM_TRACE_LINE_MAX 256        /* CSV */

typedef enum { FM_TRACE_CSV, FM_TRACE_JSON, FM_TRACE_FCD } fm_trace_format;

typedef struct fm_trace_point {
        int64_t t_ms;                  /* from the trace's time 0 */
        bool has_xy;                   /* a position (else a cell named) */
        double x, y;
        char cell[FM_CELL_ID_MAX + 1]; /* named, or found by fm_trace_resolve */
        int line;                      /* where it was read (0 for JSON: points[i]) */
} fm_trace_point;

typedef struct fm_trace {
        fm_trace_point *p;
        size_t n;
} fm_trace;

/* A point of the JSON form, as a validation table's array item. */
extern const fm_vfield fm_trace_point_item[];

/* "csv", "json", "fcd". */
int fm_trace_format_parse(const char *s, fm_trace_format *out);

/* Reads a trace: times strictly increasing, all points positions or all
 * cells. For FM_TRACE_FCD, vehicle names the vehicle (NULL: the file's only
 * one). On failure nothing is kept and *e names the line or field. */
int fm_trace_parse(const char *text, size_t len, fm_trace_format f, const char *vehicle, fm_trace *out, fm_error *e);
void fm_trace_free(fm_trace *t);

/* Gives every point its cell from the map (positions: the serving cell,
 * kept while the user stays in it; named cells: must be on the map). A
 * point outside every cell fails, naming it. */
int fm_trace_resolve(fm_trace *t, const fm_coverage *c, fm_error *e);

/* "line 12" or "points[11]": where point i came from. */
void fm_trace_where(const fm_trace *t, size_t i, char *buf, size_t len);

/* The points as JSON ({"t": seconds, "x", "y"} or {"t", "cell"}; with the
 * cell too once resolved, which a JSON trace may carry beside x and y and
 * fm_trace_resolve finds again): what the API stores. */
json_object *fm_trace_json(const fm_trace *t);
