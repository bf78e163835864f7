#include "scenario/scenario.h"

#include <libgen.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/validate.h"

static const char *const formats[] = {"csv", "json", "fcd", NULL};
static const fm_vfield trace_fields[] = {
        {"file", FM_V_STR, .max = 255},
        {"format", FM_V_STR, .oneof = formats},
        {"vehicle", FM_V_STR, .max = 128},
        {"points", FM_V_ARR, .max = FM_TRACE_POINTS_MAX, .sub = fm_trace_point_item},
        {NULL},
};
static const char *const workloads[] = {"blank", "video", "memory", NULL};
static const char *const storages[] = {"local", "shared", NULL};
static const fm_vfield service_fields[] = {
        {"workload", FM_V_STR, true, .oneof = workloads},
        {"size_mib", FM_V_NUM, .lo = 1, .hi = 4096},
        {"storage", FM_V_STR, .oneof = storages},
        {"storage_latency_ms", FM_V_NUM, .lo = 0.001, .hi = 60000},
        {NULL},
};
static const char *const events[] = {"positions", "rnis", NULL};
static const fm_vfield user_fields[] = {
        {"name", FM_V_STR, true, .max = 16, .id = true},
        {"trace", FM_V_OBJ, true, .sub = trace_fields},
        {"announced", FM_V_OBJ, .sub = trace_fields},
        {"start_s", FM_V_NUM, .lo = 0, .hi = 86400},
        {"events", FM_V_STR, .oneof = events},
        {"service", FM_V_OBJ, true, .sub = service_fields},
        {NULL},
};
static const fm_vfield user_item[] = {{"", FM_V_OBJ, .sub = user_fields}, {NULL}};
static const fm_vfield scenario_fields[] = {
        {"scenario", FM_V_STR, true, .max = 64, .id = true},
        {"description", FM_V_STR, .max = 2000},
        {"hosts", FM_V_INT, true, .lo = 2, .hi = 8},
        {"link_mbit", FM_V_INT, .lo = 1, .hi = 10000},
        {"speedup", FM_V_NUM, .lo = 0.1, .hi = 100},
        {"position_interval_ms", FM_V_INT, .lo = 50, .hi = 60000},
        {"rnis_lead_ms", FM_V_INT, .lo = 0, .hi = 60000},
        {"coverage", FM_V_OBJ, true},
        {"users", FM_V_ARR, true, .max = FM_SCN_USERS_MAX, .sub = user_item},
        {NULL},
};

static void trace_free(fm_scn_trace *t)
{
        fm_trace_free(&t->t);
        free(t->text);
        memset(t, 0, sizeof(*t));
}

void fm_scenario_free(fm_scenario *s)
{
        for (size_t i = 0; s->users && i < s->n; i++) {
                trace_free(&s->users[i].trace);
                trace_free(&s->users[i].announced);
        }
        free(s->users);
        fm_coverage_free(&s->cov);
        json_object_put(s->coverage_doc);
        memset(s, 0, sizeof(*s));
}

/* A trace file's name: relative, no "..", in dir. */
static bool file_name_ok(const char *f)
{
        if (!f[0] || f[0] == '/' || strstr(f, "//"))
                return false;
        for (const char *p = f; *p;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if ((n == 2 && !strncmp(p, "..", 2)) || (n == 1 && p[0] == '.'))
                        return false;
                p += n + (slash ? 1 : 0);
        }
        return strspn(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") == strlen(f);
}

static int read_trace(json_object *o, const char *where, const char *dir, double speedup, const fm_coverage *cov,
                      fm_scn_trace *out, fm_error *e)
{
        const char *file = fm_json_get_str(o, "file"), *fmt = fm_json_get_str(o, "format"),
                   *veh = fm_json_get_str(o, "vehicle");
        json_object *pts = fm_json_get(o, "points");
        if (!!file == !!pts)
                return fm_err(e, EINVAL, "`%s' has a `file' or `points'", where);
        if (veh && (!fmt || strcmp(fmt, "fcd")))
                return fm_err(e, EINVAL, "`%s.vehicle' names a vehicle of an fcd trace", where);
        int r;
        if (file) {
                if (!dir)
                        return fm_err(e, EINVAL, "`%s.file': no trace files here (only `points')", where);
                if (!file_name_ok(file))
                        return fm_err(e, EINVAL, "`%s.file' is a path under the scenario's folder, not `%.64s'", where, file);
                if (!fmt || fm_trace_format_parse(fmt, &out->format) < 0)
                        return fm_err(e, EINVAL, "`%s.format' is csv, json or fcd", where);
                _cleanup_free_ char *path = fm_strdupf("%s/%s", dir, file);
                ssize_t n = fm_read_file(path, &out->text, FM_TRACE_TEXT_MAX + 1);
                if (n < 0)
                        return fm_err(e, (int)-n, "`%s.file' %s: %s", where, path, strerror((int)-n));
                r = fm_trace_parse(out->text, (size_t)n, out->format, veh, &out->t, e);
                if (r < 0)
                        return fm_err_wrap(e, "%s", path);
        } else {
                json_object *doc = json_object_new_object();
                json_object_object_add(doc, "points", json_object_get(pts));
                out->text = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
                json_object_put(doc);
                out->format = FM_TRACE_JSON;
                if (!out->text)
                        return fm_err(e, ENOMEM, "out of memory");
                r = fm_trace_parse(out->text, strlen(out->text), FM_TRACE_JSON, NULL, &out->t, e);
                if (r < 0)
                        return fm_err_wrap(e, "`%s'", where);
        }
        snprintf(out->vehicle, sizeof(out->vehicle), "%s", veh ? veh : "");
        for (size_t i = 0; i < out->t.n; i++)
                out->t.p[i].t_ms = (int64_t)((double)out->t.p[i].t_ms / speedup);
        for (size_t i = 1; i < out->t.n; i++)
                if (out->t.p[i].t_ms <= out->t.p[i - 1].t_ms)
                        return fm_err(e, EINVAL, "`%s': points closer than 1 ms once sped up %gx", where, speedup);
        if ((r = fm_trace_resolve(&out->t, cov, e)) < 0)
                return fm_err_wrap(e, "`%s'", where);
        return 0;
}

int fm_scenario_parse(const char *text, size_t len, const char *dir, double speedup, fm_scenario *out, fm_error *e)
{
        memset(out, 0, sizeof(*out));
        if (len > FM_SCN_FILE_MAX)
                return fm_err(e, EFBIG, "a scenario is at most %d bytes", FM_SCN_FILE_MAX);
        json_object *doc = NULL;
        int r = fm_json_parse_text(text, len, &doc, e);
        if (r < 0)
                return r;
        fm_scenario s = {0};
        if (!json_object_is_type(doc, json_type_object))
                r = fm_err(e, EINVAL, "a scenario is a JSON object");
        if (r == 0)
                r = fm_validate(doc, scenario_fields, e);
        if (r < 0) {
                json_object_put(doc);
                return r;
        }
        snprintf(s.name, sizeof(s.name), "%s", fm_json_get_str(doc, "scenario"));
        s.hosts = (int)fm_json_get_int(doc, "hosts");
        s.link_mbit = fm_json_get(doc, "link_mbit") ? (int)fm_json_get_int(doc, "link_mbit") : 1000;
        s.speedup = speedup > 0 ? speedup : fm_json_get(doc, "speedup") ? json_object_get_double(fm_json_get(doc, "speedup")) : 1;
        s.position_ms = fm_json_get(doc, "position_interval_ms") ? (int)fm_json_get_int(doc, "position_interval_ms")
                                                                 : FM_SCN_DEFAULT_POSITION_MS;
        s.rnis_lead_ms = fm_json_get(doc, "rnis_lead_ms") ? (int)fm_json_get_int(doc, "rnis_lead_ms")
                                                          : FM_SCN_DEFAULT_RNIS_LEAD_MS;
        s.coverage_doc = json_object_get(fm_json_get(doc, "coverage"));
        /* the testbed's hosts are mec1..mecN */
        if ((r = fm_coverage_parse(s.coverage_doc, NULL, &s.cov, e)) < 0)
                r = fm_err_wrap(e, "`coverage'");
        for (size_t i = 0; r == 0 && i < s.cov.n; i++) {
                unsigned k = 0;
                char tail = 0;
                if (sscanf(s.cov.cells[i].host, "mec%u%c", &k, &tail) != 1 || k < 1 || (int)k > s.hosts)
                        r = fm_err(e, EINVAL, "`coverage.cells[%zu].host': the testbed's hosts are mec1 to mec%d, not %s", i,
                                   s.hosts, s.cov.cells[i].host);
        }
        json_object *users = fm_json_get(doc, "users");
        s.n = json_object_array_length(users);
        if (r == 0 && s.n == 0)
                r = fm_err(e, EINVAL, "`users' is empty");
        if (r == 0 && !(s.users = calloc(s.n, sizeof(*s.users))))
                r = fm_err(e, ENOMEM, "out of memory");
        for (size_t i = 0; r == 0 && i < s.n; i++) {
                json_object *u = json_object_array_get_idx(users, i), *svc = fm_json_get(u, "service");
                fm_scn_user *x = &s.users[i];
                char where[64];
                snprintf(x->name, sizeof(x->name), "%s", fm_json_get_str(u, "name"));
                if (!fm_name_is_valid(x->name))
                        r = fm_err(e, EINVAL, "`users[%zu].name' is not a container name: `%s'", i, x->name);
                for (size_t k = 0; r == 0 && k < i; k++)
                        if (!strcmp(s.users[k].name, x->name))
                                r = fm_err(e, EEXIST, "`users[%zu].name': %s is also users[%zu]", i, x->name, k);
                snprintf(x->associate, sizeof(x->associate), "10.99.0.%u", (unsigned)(i + 1) & 0xff);
                x->start_s = fm_json_get(u, "start_s") ? json_object_get_double(fm_json_get(u, "start_s")) : 0;
                x->rnis = fm_json_get_str(u, "events") && !strcmp(fm_json_get_str(u, "events"), "rnis");
                snprintf(x->workload, sizeof(x->workload), "%s", fm_json_get_str(svc, "workload"));
                x->size_mib = fm_json_get(svc, "size_mib") ? json_object_get_double(fm_json_get(svc, "size_mib")) : 0;
                x->shared = fm_json_get_str(svc, "storage") && !strcmp(fm_json_get_str(svc, "storage"), "shared");
                x->storage_latency_ms = fm_json_get(svc, "storage_latency_ms")
                                                ? json_object_get_double(fm_json_get(svc, "storage_latency_ms"))
                                                : 0;
                s.shared_storage |= x->shared;
                if (r == 0 && !strcmp(x->workload, "memory") != (x->size_mib > 0))
                        r = fm_err(e, EINVAL, "`users[%zu].service.size_mib' is given for (and only for) a memory workload", i);
                if (r == 0 && x->shared && !strcmp(x->workload, "memory"))
                        r = fm_err(e, EINVAL, "`users[%zu].service': shared storage is for the blank and video workloads", i);
                snprintf(where, sizeof(where), "users[%zu].trace", i);
                if (r == 0)
                        r = read_trace(fm_json_get(u, "trace"), where, dir, s.speedup, &s.cov, &x->trace, e);
                if (r == 0 && fm_json_get(u, "announced")) {
                        snprintf(where, sizeof(where), "users[%zu].announced", i);
                        x->has_announced = true;
                        r = read_trace(fm_json_get(u, "announced"), where, dir, s.speedup, &s.cov, &x->announced, e);
                }
                if (r == 0) {
                        double end = x->start_s + (double)x->trace.t.p[x->trace.t.n - 1].t_ms / 1000;
                        if (end > s.duration_s)
                                s.duration_s = end;
                }
        }
        json_object_put(doc);
        if (r < 0) {
                fm_scenario_free(&s);
                return r;
        }
        *out = s;
        return 0;
}

int fm_scenario_load(const char *path, double speedup, fm_scenario *out, fm_error *e)
{
        _cleanup_free_ char *text = NULL, *copy = strdup(path);
        memset(out, 0, sizeof(*out));
        if (!copy)
                return fm_err(e, ENOMEM, "out of memory");
        ssize_t n = fm_read_file(path, &text, FM_SCN_FILE_MAX + 1);
        if (n < 0)
                return fm_err(e, (int)-n, "scenario %s: %s", path, strerror((int)-n));
        int r = fm_scenario_parse(text, (size_t)n, dirname(copy), speedup, out, e);
        return r < 0 ? fm_err_wrap(e, "scenario %s", path) : 0;
}
