/* The coverage map: the radio cells of a fleet and the edge host that
 * serves each, with where each cell covers (a polygon, a circle, or nothing
 * when only cell events and (time, cell) traces name it). Pure (no I/O but
 * fm_coverage_load), fuzzed (tests/fuzz). The file form is in
 * docs/MOBILITY.md. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include "fleet/fleet.h"
#include "util/util.h"

#define FM_CELLS_MAX 256
#define FM_CELL_VERTICES_MAX 64
#define FM_CELL_ID_MAX 64
#define FM_COORD_MAX 1e7          /* metres from the map's origin */
#define FM_COVERAGE_FILE_MAX (1 << 20)

typedef enum { FM_CELL_NAMED, FM_CELL_CIRCLE, FM_CELL_POLYGON } fm_cell_shape;

typedef struct fm_cell {
        char id[FM_CELL_ID_MAX + 1];
        char host[FM_NAME_MAX + 1];
        fm_cell_shape shape;
        double cx, cy, radius;    /* FM_CELL_CIRCLE */
        double (*v)[2];           /* FM_CELL_POLYGON: its vertices, in order */
        size_t nv;
} fm_cell;

typedef struct fm_coverage {
        fm_cell *cells;
        size_t n;
} fm_coverage;

/* Reads a coverage map from its JSON form. With fleet, every cell's host
 * must be one of the fleet's. On failure nothing is kept and *e names the
 * field ("cells[2].polygon[1]"). */
int fm_coverage_parse(json_object *doc, const fm_fleet *fleet, fm_coverage *out, fm_error *e);
/* fm_coverage_parse of a file (at most FM_COVERAGE_FILE_MAX bytes). */
int fm_coverage_load(const char *path, const fm_fleet *fleet, fm_coverage *out, fm_error *e);
void fm_coverage_free(fm_coverage *c);
/* The map in its JSON form (what fm_coverage_parse reads back). */
json_object *fm_coverage_json(const fm_coverage *c);

const fm_cell *fm_coverage_cell(const fm_coverage *c, const char *id);
bool fm_cell_contains(const fm_cell *cell, double x, double y);
/* The cell serving a user at (x, y): the current one while the point is in
 * it (a user keeps its cell until it leaves it, as a handover's hysteresis
 * does), else the first in the map's order that holds the point; NULL when
 * none does. current may be NULL. */
const fm_cell *fm_coverage_locate(const fm_coverage *c, double x, double y, const fm_cell *current);
