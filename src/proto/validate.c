#include "proto/validate.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define DEFAULT_MAX_ITEMS 64

static const char *type_name(fm_vtype t)
{
        switch (t) {
        case FM_V_STR: return "a string";
        case FM_V_INT: return "an integer";
        case FM_V_NUM: return "a number";
        case FM_V_BOOL: return "true or false";
        case FM_V_OBJ: return "an object";
        case FM_V_ARR: return "an array";
        }
        return "?";
}

static int check_object(json_object *o, const fm_vfield *t, const char *path, fm_error *e);

static int check_value(json_object *v, const fm_vfield *f, const char *path, fm_error *e)
{
        json_type jt = json_object_get_type(v);
        switch (f->type) {
        case FM_V_STR: {
                if (jt != json_type_string)
                        break;
                const char *s = json_object_get_string(v);
                size_t len = (size_t)json_object_get_string_len(v);
                if (strlen(s) != len)
                        return fm_err(e, EINVAL, "`%s' holds a NUL byte", path);
                if (f->max && len > f->max)
                        return fm_err(e, EINVAL, "`%s' is longer than %zu characters", path, f->max);
                if (f->id && (!len || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len))
                        return fm_err(e, EINVAL, "`%s' is an id of [A-Za-z0-9_.-], not `%.64s'", path, s);
                if (f->oneof) {
                        char list[512] = "";
                        for (const char *const *p = f->oneof; *p; p++) {
                                if (!strcmp(*p, s))
                                        return 0;
                                size_t n = strlen(list);
                                snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", *p);
                        }
                        return fm_err(e, EINVAL, "`%s' is one of %s, not `%.64s'", path, list, s);
                }
                return 0;
        }
        case FM_V_INT: {
                if (jt != json_type_int)
                        break;
                errno = 0;
                int64_t x = json_object_get_int64(v);
                /* json-c clamps what does not fit in int64 and says so in errno */
                if (errno == ERANGE || (x == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX))
                        return fm_err(e, EINVAL, "`%s' is out of range", path);
                if ((f->lo || f->hi) && ((double)x < f->lo || (double)x > f->hi))
                        return fm_err(e, EINVAL, "`%s' takes %.0f to %.0f, not %lld", path, f->lo, f->hi, (long long)x);
                return 0;
        }
        case FM_V_NUM: {
                if (jt != json_type_int && jt != json_type_double)
                        break;
                double x = json_object_get_double(v);
                if (!isfinite(x))
                        return fm_err(e, EINVAL, "`%s' is not a finite number", path);
                if ((f->lo || f->hi) && (x < f->lo || x > f->hi))
                        return fm_err(e, EINVAL, "`%s' takes %g to %g, not %g", path, f->lo, f->hi, x);
                return 0;
        }
        case FM_V_BOOL:
                if (jt != json_type_boolean)
                        break;
                return 0;
        case FM_V_OBJ:
                if (jt != json_type_object)
                        break;
                return f->sub ? check_object(v, f->sub, path, e) : 0;
        case FM_V_ARR: {
                if (jt != json_type_array)
                        break;
                size_t n = json_object_array_length(v), max = f->max ? f->max : DEFAULT_MAX_ITEMS;
                if (n > max)
                        return fm_err(e, EINVAL, "`%s' has %zu items, at most %zu are taken", path, n, max);
                for (size_t i = 0; f->sub && i < n; i++) {
                        char p[256];
                        snprintf(p, sizeof(p), "%s[%zu]", path, i);
                        json_object *it = json_object_array_get_idx(v, i);
                        if (!it)
                                return fm_err(e, EINVAL, "`%s' is null", p);
                        int r = check_value(it, f->sub, p, e);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        }
        return fm_err(e, EINVAL, "`%s' must be %s, not %s", path, type_name(f->type), json_type_to_name(jt));
}

static int check_object(json_object *o, const fm_vfield *t, const char *path, fm_error *e)
{
        json_object_object_foreach(o, key, val) {
                const fm_vfield *f = t;
                while (f->key && strcmp(f->key, key))
                        f++;
                char p[256];
                snprintf(p, sizeof(p), "%s%s%.64s", path, *path ? "." : "", key);
                if (!f->key)
                        return fm_err(e, EINVAL, "`%s' is not a known field", p);
                if (!val)
                        return fm_err(e, EINVAL, "`%s' is null", p);
                int r = check_value(val, f, p, e);
                if (r < 0)
                        return r;
        }
        for (const fm_vfield *f = t; f->key; f++)
                if (f->required && !json_object_object_get_ex(o, f->key, NULL))
                        return fm_err(e, EINVAL, "`%s%s%s' is missing", path, *path ? "." : "", f->key);
        return 0;
}

int fm_validate(json_object *o, const fm_vfield *table, fm_error *e)
{
        if (!json_object_is_type(o, json_type_object))
                return fm_err(e, EINVAL, "the body must be a JSON object");
        return check_object(o, table, "", e);
}
