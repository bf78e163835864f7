/* Reading a running container's memory without stopping it: every present
 * page of every private writable mapping of its processes. */
#pragma once
#include <sys/types.h>
#include "util/util.h"

/* Called for each page; a negative return stops the scan with that error. */
typedef int (*fm_page_fn)(void *ctx, pid_t pid, uint64_t addr, const uint8_t *page);

/* Scans one process. *scanned counts the pages handed to fn. Pages that
 * vanish meanwhile (the process unmapped them, or exited) are skipped: a
 * round is a best effort, the final dump is the truth. */
int fm_memscan_process(pid_t pid, fm_page_fn fn, void *ctx, uint64_t *scanned, fm_error *e);
