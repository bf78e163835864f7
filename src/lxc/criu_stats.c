#include "criu_stats.h"

#include <string.h>

#include "criu_stats.pb-c.h"

/* CRIU's image header of its service files, then the stats file's own */
#define SERVICE_MAGIC 0x55105940u
#define STATS_MAGIC 0x57093306u

int fm_criu_stats_parse(const uint8_t *buf, size_t len, fm_criu_stats *st, fm_error *e)
{
        if (len < 12 || fm_get_le32(buf) != SERVICE_MAGIC || fm_get_le32(buf + 4) != STATS_MAGIC)
                return fm_err(e, EINVAL, "not a CRIU stats file");
        uint32_t n = fm_get_le32(buf + 8);
        if (n > len - 12)
                return fm_err(e, EINVAL, "CRIU stats entry of %u bytes in %zu", n, len - 12);
        FmCriuStatsFile *f = fm_criu_stats_file__unpack(NULL, n, buf + 12);
        if (!f)
                return fm_err(e, EINVAL, "CRIU stats entry does not decode");
        if (f->dump) {
                st->has_dump = true;
                st->freezing_ms = f->dump->freezing_us / 1000.0;
                st->frozen_ms = f->dump->frozen_us / 1000.0;
                st->memdump_ms = f->dump->memdump_us / 1000.0;
                st->memwrite_ms = f->dump->memwrite_us / 1000.0;
                st->pages_scanned = f->dump->pages_scanned;
                st->pages_written = f->dump->pages_written;
                st->pages_lazy = f->dump->pages_lazy;
        }
        if (f->restore) {
                st->has_restore = true;
                st->forking_ms = f->restore->forking_us / 1000.0;
                st->restore_ms = f->restore->restore_us / 1000.0;
                st->pages_restored = f->restore->pages_restored;
        }
        fm_criu_stats_file__free_unpacked(f, NULL);
        return 0;
}

int fm_criu_stats_read(const char *dir, const char *which, fm_criu_stats *st, fm_error *e)
{
        char path[700];
        snprintf(path, sizeof(path), "%s/stats-%s", dir, which);
        _cleanup_free_ char *buf = NULL;
        int n = fm_read_file(path, &buf, FM_CRIU_STATS_MAX);
        if (n < 0)
                return fm_err(e, -n, "reading %s: %s", path, strerror(-n));
        return fm_criu_stats_parse((const uint8_t *)buf, (size_t)n, st, e);
}

json_object *fm_criu_stats_json(const fm_criu_stats *st)
{
        json_object *o = json_object_new_object(), *d = NULL, *r = NULL;
        if (st->has_dump) {
                d = json_object_new_object();
                json_object_object_add(d, "freezing_ms", json_object_new_double(st->freezing_ms));
                json_object_object_add(d, "frozen_ms", json_object_new_double(st->frozen_ms));
                json_object_object_add(d, "memdump_ms", json_object_new_double(st->memdump_ms));
                json_object_object_add(d, "memwrite_ms", json_object_new_double(st->memwrite_ms));
                json_object_object_add(d, "pages_scanned", json_object_new_int64((int64_t)st->pages_scanned));
                json_object_object_add(d, "pages_written", json_object_new_int64((int64_t)st->pages_written));
                json_object_object_add(d, "pages_lazy", json_object_new_int64((int64_t)st->pages_lazy));
        }
        if (st->has_restore) {
                r = json_object_new_object();
                json_object_object_add(r, "forking_ms", json_object_new_double(st->forking_ms));
                json_object_object_add(r, "restore_ms", json_object_new_double(st->restore_ms));
                json_object_object_add(r, "pages_restored", json_object_new_int64((int64_t)st->pages_restored));
        }
        json_object_object_add(o, "dump", d);
        json_object_object_add(o, "restore", r);
        return o;
}

static double num(json_object *o, const char *k)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, k, &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return 0;
        double x = json_object_get_double(v);
        return x >= 0 && x < 1e12 ? x : 0;
}

void fm_criu_stats_restore_from_json(json_object *o, fm_criu_stats *st)
{
        if (!o || !json_object_is_type(o, json_type_object))
                return;
        st->has_restore = true;
        st->forking_ms = num(o, "forking_ms");
        st->restore_ms = num(o, "restore_ms");
        st->pages_restored = (uint64_t)num(o, "pages_restored");
}
