/* CRIU's stats files (src/lxc/criu_stats.h): a file as CRIU writes it is
 * read with its figures; a damaged one is refused, never half-read. */
#include <stdlib.h>

#include "criu_stats.pb-c.h"
#include "lxc/criu_stats.h"
#include "tap.h"

/* CRIU's layout: two little-endian magic numbers, the entry's length, the entry */
static size_t file_of(const FmCriuStatsFile *f, uint8_t *out, uint32_t magic2)
{
        const uint32_t head[3] = {0x55105940u, magic2, (uint32_t)fm_criu_stats_file__get_packed_size(f)};
        memcpy(out, head, sizeof(head));
        return sizeof(head) + fm_criu_stats_file__pack(f, out + sizeof(head));
}

int main(void)
{
        FmCriuDumpStats d = FM_CRIU_DUMP_STATS__INIT;
        d.has_freezing_us = d.has_frozen_us = d.has_memdump_us = d.has_memwrite_us = 1;
        d.freezing_us = 1500;
        d.frozen_us = 72000;
        d.memdump_us = 3100;
        d.memwrite_us = 2500;
        d.has_pages_scanned = d.has_pages_written = 1;
        d.pages_scanned = 1097;
        d.pages_written = 64;
        FmCriuStatsFile f = FM_CRIU_STATS_FILE__INIT;
        f.dump = &d;
        uint8_t buf[256];
        size_t n = file_of(&f, buf, 0x57093306u);
        fm_criu_stats st = {0};
        fm_error e = {0};
        ok(fm_criu_stats_parse(buf, n, &st, &e) == 0, "a dump's stats file is read (%s)", e.msg);
        ok(st.has_dump && !st.has_restore && near(st.frozen_ms, 72.0, 1e-9) && near(st.freezing_ms, 1.5, 1e-9) &&
                   st.pages_written == 64 && st.pages_scanned == 1097,
           "its figures, in ms: frozen %.1f, freezing %.1f, pages %llu of %llu", st.frozen_ms, st.freezing_ms,
           (unsigned long long)st.pages_written, (unsigned long long)st.pages_scanned);

        FmCriuRestoreStats r = FM_CRIU_RESTORE_STATS__INIT;
        r.has_forking_us = r.has_restore_us = r.has_pages_restored = 1;
        r.forking_us = 2000;
        r.restore_us = 64000;
        r.pages_restored = 1100;
        FmCriuStatsFile g = FM_CRIU_STATS_FILE__INIT;
        g.restore = &r;
        n = file_of(&g, buf, 0x57093306u);
        ok(fm_criu_stats_parse(buf, n, &st, &e) == 0 && st.has_dump && st.has_restore && near(st.restore_ms, 64.0, 1e-9),
           "a restore's stats file adds its half");
        json_object *o = fm_criu_stats_json(&st), *rs = NULL;
        ok(json_object_object_get_ex(o, "restore", &rs) && rs, "as JSON: %s", json_object_to_json_string(o));
        fm_criu_stats back = {0};
        fm_criu_stats_restore_from_json(rs, &back);
        ok(back.has_restore && near(back.restore_ms, 64.0, 1e-9) && back.pages_restored == 1100,
           "the restore half read back from a peer's JSON");
        json_object_put(o);
        json_object *bad = json_object_new_object();
        json_object_object_add(bad, "restore_ms", json_object_new_double(-5));
        json_object_object_add(bad, "forking_ms", json_object_new_string("x"));
        fm_criu_stats_restore_from_json(bad, &back);
        ok(back.restore_ms == 0 && back.forking_ms == 0, "a peer's negative or non-numeric figures read as 0");
        json_object_put(bad);

        fm_criu_stats z = {0};
        n = file_of(&f, buf, 0x12345678u);
        ok(fm_criu_stats_parse(buf, n, &z, &e) < 0 && !z.has_dump, "another image's magic refused: %s", e.msg);
        n = file_of(&f, buf, 0x57093306u);
        ok(fm_criu_stats_parse(buf, n - 3, &z, &e) < 0 && !z.has_dump, "a truncated entry refused: %s", e.msg);
        ok(fm_criu_stats_parse(buf, 7, &z, &e) < 0, "a truncated header refused: %s", e.msg);
        buf[8] = 0xff, buf[9] = 0xff, buf[10] = 0xff, buf[11] = 0xff;
        ok(fm_criu_stats_parse(buf, n, &z, &e) < 0, "a length past the file refused: %s", e.msg);
        n = file_of(&f, buf, 0x57093306u);
        memset(buf + 12, 0xff, n - 12);
        ok(fm_criu_stats_parse(buf, n, &z, &e) < 0 && !z.has_dump, "an entry that does not decode refused: %s", e.msg);
        ok(fm_criu_stats_read("/nonexistent", "dump", &z, &e) < 0, "a missing file: %s", e.msg);
        return tap_done();
}
