#include "mobility/coverage.h"

#include <math.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/validate.h"

static const fm_vfield coord[] = {{"", FM_V_NUM, .lo = -FM_COORD_MAX, .hi = FM_COORD_MAX}, {NULL}};
static const fm_vfield vertex[] = {{"", FM_V_ARR, .max = 2, .sub = coord}, {NULL}};
static const fm_vfield cell_fields[] = {
        {"id", FM_V_STR, true, .max = FM_CELL_ID_MAX, .id = true},
        {"host", FM_V_STR, true, .max = FM_NAME_MAX},
        {"polygon", FM_V_ARR, .max = FM_CELL_VERTICES_MAX, .sub = vertex},
        {"center", FM_V_ARR, .max = 2, .sub = coord},
        {"radius", FM_V_NUM, .lo = 0.001, .hi = FM_COORD_MAX},
        {NULL},
};
static const fm_vfield cell_item[] = {{"", FM_V_OBJ, .sub = cell_fields}, {NULL}};
static const fm_vfield coverage_fields[] = {
        {"cells", FM_V_ARR, true, .max = FM_CELLS_MAX, .sub = cell_item},
        {NULL},
};

static double num(json_object *a, size_t i) { return json_object_get_double(json_object_array_get_idx(a, i)); }

static int parse_cell(json_object *o, size_t i, const fm_fleet *fleet, fm_cell *c, fm_error *e)
{
        snprintf(c->id, sizeof(c->id), "%s", fm_json_get_str(o, "id"));
        const char *host = fm_json_get_str(o, "host");
        if (!fm_name_is_valid(host))
                return fm_err(e, EINVAL, "`cells[%zu].host' is not a host name: `%.64s'", i, host);
        if (fleet && !fm_fleet_host(fleet, host))
                return fm_err(e, ENOENT, "`cells[%zu].host': the fleet has no host %s", i, host);
        snprintf(c->host, sizeof(c->host), "%s", host);
        json_object *poly = fm_json_get(o, "polygon"), *center = fm_json_get(o, "center");
        bool has_radius = fm_json_get(o, "radius") != NULL;
        if (poly && (center || has_radius))
                return fm_err(e, EINVAL, "`cells[%zu]' is a polygon or a circle, not both", i);
        if (!!center != has_radius)
                return fm_err(e, EINVAL, "`cells[%zu]': a circle has both `center' and `radius'", i);
        if (center) {
                if (json_object_array_length(center) != 2)
                        return fm_err(e, EINVAL, "`cells[%zu].center' is [x, y]", i);
                c->shape = FM_CELL_CIRCLE;
                c->cx = num(center, 0);
                c->cy = num(center, 1);
                c->radius = json_object_get_double(fm_json_get(o, "radius"));
                return 0;
        }
        if (!poly) {
                c->shape = FM_CELL_NAMED;
                return 0;
        }
        size_t n = json_object_array_length(poly);
        if (n < 3)
                return fm_err(e, EINVAL, "`cells[%zu].polygon' has %zu vertices, at least 3 are needed", i, n);
        c->v = calloc(n, sizeof(*c->v));
        if (!c->v)
                return fm_err(e, ENOMEM, "out of memory");
        c->shape = FM_CELL_POLYGON;
        c->nv = n;
        for (size_t k = 0; k < n; k++) {
                json_object *p = json_object_array_get_idx(poly, k);
                if (json_object_array_length(p) != 2)
                        return fm_err(e, EINVAL, "`cells[%zu].polygon[%zu]' is [x, y]", i, k);
                c->v[k][0] = num(p, 0);
                c->v[k][1] = num(p, 1);
        }
        /* a polygon with no area covers nothing: surely a mistake */
        double area = 0;
        for (size_t k = 0; k < n; k++) {
                const double *a = c->v[k], *b = c->v[(k + 1) % n];
                area += a[0] * b[1] - b[0] * a[1];
        }
        if (fabs(area) < 1e-6)
                return fm_err(e, EINVAL, "`cells[%zu].polygon' encloses no area", i);
        return 0;
}

int fm_coverage_parse(json_object *doc, const fm_fleet *fleet, fm_coverage *out, fm_error *e)
{
        memset(out, 0, sizeof(*out));
        if (!json_object_is_type(doc, json_type_object))
                return fm_err(e, EINVAL, "a coverage map is a JSON object");
        int r = fm_validate(doc, coverage_fields, e);
        if (r < 0)
                return r;
        json_object *cells = fm_json_get(doc, "cells");
        size_t n = json_object_array_length(cells);
        if (n == 0)
                return fm_err(e, EINVAL, "`cells' is empty");
        fm_coverage c = {.cells = calloc(n, sizeof(fm_cell)), .n = n};
        if (!c.cells)
                return fm_err(e, ENOMEM, "out of memory");
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = parse_cell(json_object_array_get_idx(cells, i), i, fleet, &c.cells[i], e);
                for (size_t k = 0; r == 0 && k < i; k++)
                        if (!strcmp(c.cells[k].id, c.cells[i].id))
                                r = fm_err(e, EEXIST, "`cells[%zu].id': %s is also cells[%zu]", i, c.cells[i].id, k);
        }
        if (r < 0) {
                fm_coverage_free(&c);
                return r;
        }
        *out = c;
        return 0;
}

int fm_coverage_load(const char *path, const fm_fleet *fleet, fm_coverage *out, fm_error *e)
{
        _cleanup_free_ char *text = NULL;
        memset(out, 0, sizeof(*out));
        ssize_t n = fm_read_file(path, &text, FM_COVERAGE_FILE_MAX + 1);
        if (n < 0)
                return fm_err(e, (int)-n, "coverage map %s: %s", path, strerror((int)-n));
        if (n > FM_COVERAGE_FILE_MAX)
                return fm_err(e, EFBIG, "coverage map %s: larger than %d bytes", path, FM_COVERAGE_FILE_MAX);
        json_object *doc = NULL;
        int r = fm_json_parse_text(text, (size_t)n, &doc, e);
        if (r == 0)
                r = fm_coverage_parse(doc, fleet, out, e);
        json_object_put(doc);
        return r < 0 ? fm_err_wrap(e, "coverage map %s", path) : 0;
}

void fm_coverage_free(fm_coverage *c)
{
        for (size_t i = 0; c->cells && i < c->n; i++)
                free(c->cells[i].v);
        free(c->cells);
        memset(c, 0, sizeof(*c));
}

static json_object *pair(double x, double y)
{
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_new_double(x));
        json_object_array_add(a, json_object_new_double(y));
        return a;
}

json_object *fm_coverage_json(const fm_coverage *c)
{
        json_object *cells = json_object_new_array();
        for (size_t i = 0; i < c->n; i++) {
                const fm_cell *cl = &c->cells[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_string(cl->id));
                json_object_object_add(o, "host", json_object_new_string(cl->host));
                if (cl->shape == FM_CELL_CIRCLE) {
                        json_object_object_add(o, "center", pair(cl->cx, cl->cy));
                        json_object_object_add(o, "radius", json_object_new_double(cl->radius));
                } else if (cl->shape == FM_CELL_POLYGON) {
                        json_object *p = json_object_new_array();
                        for (size_t k = 0; k < cl->nv; k++)
                                json_object_array_add(p, pair(cl->v[k][0], cl->v[k][1]));
                        json_object_object_add(o, "polygon", p);
                }
                json_object_array_add(cells, o);
        }
        json_object *doc = json_object_new_object();
        json_object_object_add(doc, "cells", cells);
        return doc;
}

const fm_cell *fm_coverage_cell(const fm_coverage *c, const char *id)
{
        for (size_t i = 0; id && i < c->n; i++)
                if (!strcmp(c->cells[i].id, id))
                        return &c->cells[i];
        return NULL;
}

bool fm_cell_contains(const fm_cell *cl, double x, double y)
{
        if (cl->shape == FM_CELL_CIRCLE)
                return hypot(x - cl->cx, y - cl->cy) <= cl->radius;
        if (cl->shape != FM_CELL_POLYGON)
                return false;
        /* even-odd rule; a point on an edge counts as inside */
        bool in = false;
        for (size_t i = 0, j = cl->nv - 1; i < cl->nv; j = i++) {
                double xi = cl->v[i][0], yi = cl->v[i][1], xj = cl->v[j][0], yj = cl->v[j][1];
                double cross = (xj - xi) * (y - yi) - (yj - yi) * (x - xi);
                if (fabs(cross) < 1e-9 && x >= fmin(xi, xj) && x <= fmax(xi, xj) && y >= fmin(yi, yj) &&
                    y <= fmax(yi, yj))
                        return true;
                if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi)
                        in = !in;
        }
        return in;
}

const fm_cell *fm_coverage_locate(const fm_coverage *c, double x, double y, const fm_cell *current)
{
        if (current && fm_cell_contains(current, x, y))
                return current;
        for (size_t i = 0; i < c->n; i++)
                if (fm_cell_contains(&c->cells[i], x, y))
                        return &c->cells[i];
        return NULL;
}
