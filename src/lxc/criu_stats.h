/* CRIU's own account of a dump or a restore (its stats-dump and
 * stats-restore files), reported beside fastmig's phases. */
#pragma once
#include <json-c/json.h>
#include <stdint.h>
#include "util/util.h"

typedef struct fm_criu_stats {
        bool has_dump, has_restore;
        double freezing_ms, frozen_ms, memdump_ms, memwrite_ms; /* dump */
        uint64_t pages_scanned, pages_written, pages_lazy;
        double forking_ms, restore_ms; /* restore */
        uint64_t pages_restored;
} fm_criu_stats;

/* Parses the bytes of a stats file (pure: CRIU's two magic numbers, one
 * length-prefixed entry). */
int fm_criu_stats_parse(const uint8_t *buf, size_t len, fm_criu_stats *st, fm_error *e);
/* Reads DIR/stats-WHICH ("dump" or "restore") into st (its other half
 * kept as it was). */
int fm_criu_stats_read(const char *dir, const char *which, fm_criu_stats *st, fm_error *e);
/* {"dump": {...}|null, "restore": {...}|null} in ms and pages. */
json_object *fm_criu_stats_json(const fm_criu_stats *st);
/* The restore half from a peer's JSON (fm_criu_stats_json's "restore"). */
void fm_criu_stats_restore_from_json(json_object *o, fm_criu_stats *st);

#define FM_CRIU_STATS_MAX 4096 /* a stats file is about 50 bytes */
