#include "mobility/trace.h"

#include <expat.h>
#include <math.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/validate.h"

int fm_trace_format_parse(const char *s, fm_trace_format *out)
{
        static const char *const names[] = {"csv", "json", "fcd"};
        for (size_t i = 0; s && i < FM_ARRAY_SIZE(names); i++)
                if (!strcmp(s, names[i])) {
                        *out = (fm_trace_format)i;
                        return 0;
                }
        return -EINVAL;
}

void fm_trace_free(fm_trace *t)
{
        free(t->p);
        memset(t, 0, sizeof(*t));
}

void fm_trace_where(const fm_trace *t, size_t i, char *buf, size_t len)
{
        if (i < t->n && t->p[i].line > 0)
                snprintf(buf, len, "line %d", t->p[i].line);
        else
                snprintf(buf, len, "points[%zu]", i);
}

/* ---- building a trace point by point ---- */

typedef struct builder {
        fm_trace t;
        size_t cap;
        fm_error *e;
} builder;

/* Adds a point: t in seconds. Checks the time, the coordinates, the count
 * and that the trace does not mix positions and cells. */
static int add(builder *b, double t, bool has_xy, double x, double y, const char *cell, int line, fm_error *e)
{
        char at[32];
        if (line > 0)
                snprintf(at, sizeof(at), "line %d", line);
        else
                snprintf(at, sizeof(at), "points[%zu]", b->t.n);
        if (b->t.n >= FM_TRACE_POINTS_MAX)
                return fm_err(e, E2BIG, "%s: a trace has at most %d points", at, FM_TRACE_POINTS_MAX);
        if (!isfinite(t) || t < 0 || t > FM_TRACE_TIME_MAX_S)
                return fm_err(e, EINVAL, "%s: the time %g is not in [0, %d] seconds", at, t, FM_TRACE_TIME_MAX_S);
        if (has_xy && !(isfinite(x) && isfinite(y) && fabs(x) <= FM_COORD_MAX && fabs(y) <= FM_COORD_MAX))
                return fm_err(e, EINVAL, "%s: the position (%g, %g) is beyond %g m of the origin", at, x, y, FM_COORD_MAX);
        if (!has_xy) {
                size_t n = strlen(cell);
                if (n == 0 || n > FM_CELL_ID_MAX ||
                    strspn(cell, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
                        return fm_err(e, EINVAL, "%s: `%.64s' is not a cell id", at, cell);
        }
        int64_t ms = llround(t * 1000);
        if (b->t.n) {
                const fm_trace_point *last = &b->t.p[b->t.n - 1];
                if (ms <= last->t_ms)
                        return fm_err(e, EINVAL, "%s: the time %.3f s is not after the previous point's %.3f s", at,
                                      (double)ms / 1000, (double)last->t_ms / 1000);
                if (last->has_xy != has_xy)
                        return fm_err(e, EINVAL, "%s: a trace gives positions or cells, not both", at);
        }
        if (b->t.n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 64;
                fm_trace_point *p = realloc(b->t.p, cap * sizeof(*p));
                if (!p)
                        return fm_err(e, ENOMEM, "out of memory");
                b->t.p = p;
                b->cap = cap;
        }
        fm_trace_point *p = &b->t.p[b->t.n++];
        memset(p, 0, sizeof(*p));
        p->t_ms = ms;
        p->has_xy = has_xy;
        p->x = has_xy ? x : 0;
        p->y = has_xy ? y : 0;
        if (!has_xy)
                snprintf(p->cell, sizeof(p->cell), "%s", cell);
        p->line = line;
        return 0;
}

/* A whole field as a finite number. */
static bool number(const char *s, double *out)
{
        char *end;
        if (!s || !*s)
                return false;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || *end || !isfinite(v))
                return false;
        *out = v;
        return true;
}

/* ---- CSV: a header "time,x,y" or "time,cell", then a point a line ---- */

/* Splits line into at most max fields at commas; returns the count, or
 * max + 1 when there are more. */
static size_t split(char *line, char **f, size_t max)
{
        size_t n = 0;
        for (char *s = line;;) {
                if (n == max)
                        return max + 1;
                char *c = strchr(s, ',');
                if (c)
                        *c = '\0';
                f[n++] = fm_trim(s);
                if (!c)
                        return n;
                s = c + 1;
        }
}

static int parse_csv(const char *text, size_t len, builder *b, fm_error *e)
{
        enum { NONE, XY, CELL } kind = NONE;
        int line = 0;
        for (size_t off = 0; off < len;) {
                const char *nl = memchr(text + off, '\n', len - off);
                size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
                line++;
                if (n > FM_TRACE_LINE_MAX)
                        return fm_err(e, EINVAL, "line %d: longer than %d characters", line, FM_TRACE_LINE_MAX);
                char buf[FM_TRACE_LINE_MAX + 1];
                memcpy(buf, text + off, n);
                buf[n] = '\0';
                off += n + 1;
                char *s = fm_trim(buf);
                if (!*s || *s == '#')
                        continue;
                char *f[4];
                size_t nf = split(s, f, 3);
                if (kind == NONE) {
                        if (nf == 3 && !strcmp(f[0], "time") && !strcmp(f[1], "x") && !strcmp(f[2], "y"))
                                kind = XY;
                        else if (nf == 2 && !strcmp(f[0], "time") && !strcmp(f[1], "cell"))
                                kind = CELL;
                        else
                                return fm_err(e, EINVAL, "line %d: the header is `time,x,y' or `time,cell'", line);
                        continue;
                }
                size_t want = kind == XY ? 3 : 2;
                if (nf != want)
                        return fm_err(e, EINVAL, "line %d: %zu fields where the header has %zu", line, nf > 3 ? (size_t)4 : nf,
                                      want);
                double t, x = 0, y = 0;
                if (!number(f[0], &t))
                        return fm_err(e, EINVAL, "line %d: the time `%.32s' is not a number", line, f[0]);
                if (kind == XY && (!number(f[1], &x) || !number(f[2], &y)))
                        return fm_err(e, EINVAL, "line %d: the position `%.32s,%.32s' is not two numbers", line, f[1], f[2]);
                int r = add(b, t, kind == XY, x, y, kind == CELL ? f[1] : NULL, line, e);
                if (r < 0)
                        return r;
        }
        if (kind == NONE)
                return fm_err(e, EINVAL, "no header `time,x,y' or `time,cell'");
        return 0;
}

/* ---- JSON: {"points": [{"t": s, "x": m, "y": m} or {"t": s, "cell": id}]} ---- */

static const fm_vfield point_fields[] = {
        {"t", FM_V_NUM, true, .lo = 0, .hi = FM_TRACE_TIME_MAX_S},
        {"x", FM_V_NUM, .lo = -FM_COORD_MAX, .hi = FM_COORD_MAX},
        {"y", FM_V_NUM, .lo = -FM_COORD_MAX, .hi = FM_COORD_MAX},
        {"cell", FM_V_STR, .max = FM_CELL_ID_MAX, .id = true},
        {NULL},
};
const fm_vfield fm_trace_point_item[] = {{"", FM_V_OBJ, .sub = point_fields}, {NULL}};
static const fm_vfield points_field[] = {
        {"points", FM_V_ARR, true, .max = FM_TRACE_POINTS_MAX, .sub = fm_trace_point_item},
        {NULL},
};

static int parse_points(json_object *doc, builder *b, fm_error *e)
{
        if (!json_object_is_type(doc, json_type_object))
                return fm_err(e, EINVAL, "a JSON trace is an object {\"points\": [...]}");
        int r = fm_validate(doc, points_field, e);
        if (r < 0)
                return r;
        json_object *pts = fm_json_get(doc, "points");
        for (size_t i = 0; i < json_object_array_length(pts); i++) {
                json_object *p = json_object_array_get_idx(pts, i);
                json_object *x = fm_json_get(p, "x"), *y = fm_json_get(p, "y"), *cell = fm_json_get(p, "cell");
                if (!!x != !!y || (!x && !cell))
                        return fm_err(e, EINVAL, "points[%zu]: a point has `x' and `y', or `cell'", i);
                r = add(b, json_object_get_double(fm_json_get(p, "t")), x != NULL, json_object_get_double(x),
                        json_object_get_double(y), json_object_get_string(cell), 0, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_json(const char *text, size_t len, builder *b, fm_error *e)
{
        json_object *doc = NULL;
        int r = fm_json_parse_text(text, len, &doc, e);
        if (r == 0)
                r = parse_points(doc, b, e);
        json_object_put(doc);
        return r;
}

/* ---- SUMO fcd-export: <fcd-export><timestep time="s"><vehicle id x y .../>... ---- */

#define FCD_DEPTH_MAX 8
#define FCD_IDS_MAX 64 /* vehicles named in an error */

typedef struct fcd {
        XML_Parser xp;
        builder *b;
        fm_error *e;
        const char *want;       /* the vehicle, or NULL: the only one */
        char first[128];        /* the first vehicle seen */
        bool several;           /* more than one vehicle id seen */
        int depth;
        bool in_timestep, have_time, root_ok;
        double time;
        int err;
} fcd;

static void fcd_fail(fcd *f, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fcd_fail(fcd *f, int code, const char *fmt, ...)
{
        if (f->err)
                return;
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        f->err = -fm_err(f->e, code, "line %lu: %s", (unsigned long)XML_GetCurrentLineNumber(f->xp), msg);
        XML_StopParser(f->xp, XML_FALSE);
}

static const char *attr(const XML_Char **a, const char *name)
{
        for (size_t i = 0; a[i]; i += 2)
                if (!strcmp(a[i], name))
                        return a[i + 1];
        return NULL;
}

static void fcd_start(void *ud, const XML_Char *name, const XML_Char **a)
{
        fcd *f = ud;
        if (f->err)
                return;
        if (++f->depth > FCD_DEPTH_MAX)
                return fcd_fail(f, EINVAL, "elements nested deeper than %d", FCD_DEPTH_MAX);
        if (f->depth == 1) {
                if (strcmp(name, "fcd-export"))
                        return fcd_fail(f, EINVAL, "the root element is <%.32s>, not <fcd-export>", name);
                f->root_ok = true;
                return;
        }
        if (f->depth == 2 && !strcmp(name, "timestep")) {
                if (!number(attr(a, "time"), &f->time))
                        return fcd_fail(f, EINVAL, "a <timestep> without a numeric time");
                f->in_timestep = true;
                return;
        }
        if (f->depth != 3 || !f->in_timestep || strcmp(name, "vehicle"))
                return; /* persons, containers and anything else: not ours */
        const char *id = attr(a, "id");
        if (!id || !*id)
                return fcd_fail(f, EINVAL, "a <vehicle> without an id");
        if (!f->first[0])
                snprintf(f->first, sizeof(f->first), "%s", id);
        else if (strcmp(f->first, id))
                f->several = true;
        if (f->want ? strcmp(f->want, id) : strcmp(f->first, id))
                return;
        double x, y;
        if (!number(attr(a, "x"), &x) || !number(attr(a, "y"), &y))
                return fcd_fail(f, EINVAL, "vehicle %.64s: x and y are not numbers", id);
        fm_error sub = {0};
        if (add(f->b, f->time, true, x, y, NULL, (int)XML_GetCurrentLineNumber(f->xp), &sub) < 0) {
                f->err = -fm_err(f->e, sub.code, "%s", sub.msg);
                XML_StopParser(f->xp, XML_FALSE);
        }
}

static void fcd_end(void *ud, const XML_Char *name)
{
        fcd *f = ud;
        if (f->depth == 2 && !strcmp(name, "timestep"))
                f->in_timestep = false;
        f->depth--;
}

/* No DTD entities: a trace has no need of them, and they are how XML
 * files grow without bound. */
static void fcd_entity(void *ud, const XML_Char *name, int pe, const XML_Char *v, int vlen, const XML_Char *base,
                       const XML_Char *sys, const XML_Char *pub, const XML_Char *notation)
{
        (void)name, (void)pe, (void)v, (void)vlen, (void)base, (void)sys, (void)pub, (void)notation;
        fcd_fail(ud, EINVAL, "an entity declaration (not taken)");
}

static int parse_fcd(const char *text, size_t len, const char *vehicle, builder *b, fm_error *e)
{
        fcd f = {.b = b, .e = e, .want = vehicle};
        f.xp = XML_ParserCreate("UTF-8");
        if (!f.xp)
                return fm_err(e, ENOMEM, "out of memory");
        XML_SetUserData(f.xp, &f);
        XML_SetElementHandler(f.xp, fcd_start, fcd_end);
        XML_SetEntityDeclHandler(f.xp, fcd_entity);
        enum XML_Status st = XML_Parse(f.xp, text, (int)len, XML_TRUE);
        if (st == XML_STATUS_ERROR && !f.err)
                f.err = -fm_err(e, EINVAL, "line %lu: %s", (unsigned long)XML_GetCurrentLineNumber(f.xp),
                                XML_ErrorString(XML_GetErrorCode(f.xp)));
        XML_ParserFree(f.xp);
        if (f.err)
                return -f.err;
        if (!f.root_ok)
                return fm_err(e, EINVAL, "not an <fcd-export> file");
        if (!vehicle && f.several)
                return fm_err(e, EINVAL, "the file holds more than one vehicle (%.64s, ...): name one", f.first);
        if (b->t.n == 0)
                return vehicle ? fm_err(e, ENOENT, "no vehicle %.64s in the file", vehicle)
                               : fm_err(e, ENOENT, "no vehicle in the file");
        return 0;
}

int fm_trace_parse(const char *text, size_t len, fm_trace_format fmt, const char *vehicle, fm_trace *out, fm_error *e)
{
        memset(out, 0, sizeof(*out));
        if (len > FM_TRACE_TEXT_MAX)
                return fm_err(e, EFBIG, "a trace is at most %d bytes, this one %zu", FM_TRACE_TEXT_MAX, len);
        if (memchr(text, '\0', len))
                return fm_err(e, EINVAL, "a NUL byte in the text");
        builder b = {.e = e};
        int r = fmt == FM_TRACE_CSV    ? parse_csv(text, len, &b, e)
                : fmt == FM_TRACE_JSON ? parse_json(text, len, &b, e)
                                       : parse_fcd(text, len, vehicle, &b, e);
        if (r == 0 && b.t.n == 0)
                r = fm_err(e, EINVAL, "no points");
        if (r < 0) {
                fm_trace_free(&b.t);
                return r;
        }
        *out = b.t;
        return 0;
}

int fm_trace_resolve(fm_trace *t, const fm_coverage *c, fm_error *e)
{
        const fm_cell *cur = NULL;
        char at[32];
        for (size_t i = 0; i < t->n; i++) {
                fm_trace_point *p = &t->p[i];
                if (p->has_xy) {
                        cur = fm_coverage_locate(c, p->x, p->y, cur);
                        if (!cur) {
                                fm_trace_where(t, i, at, sizeof(at));
                                return fm_err(e, EDOM, "%s: the position (%g, %g) is outside every cell", at, p->x, p->y);
                        }
                        snprintf(p->cell, sizeof(p->cell), "%s", cur->id);
                } else if (!fm_coverage_cell(c, p->cell)) {
                        fm_trace_where(t, i, at, sizeof(at));
                        return fm_err(e, ENOENT, "%s: no cell %s on the coverage map", at, p->cell);
                }
        }
        return 0;
}

json_object *fm_trace_json(const fm_trace *t)
{
        json_object *pts = json_object_new_array_ext((int)t->n);
        for (size_t i = 0; i < t->n; i++) {
                const fm_trace_point *p = &t->p[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "t", json_object_new_double((double)p->t_ms / 1000));
                if (p->has_xy) {
                        json_object_object_add(o, "x", json_object_new_double(p->x));
                        json_object_object_add(o, "y", json_object_new_double(p->y));
                }
                if (p->cell[0])
                        json_object_object_add(o, "cell", json_object_new_string(p->cell));
                json_object_array_add(pts, o);
        }
        json_object *doc = json_object_new_object();
        json_object_object_add(doc, "points", pts);
        return doc;
}
