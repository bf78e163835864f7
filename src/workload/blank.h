/* The built-in "blank" workload: a busybox container whose init is fm-seqecho. */
#pragma once
#include "util/util.h"

#define FM_SEQECHO_PORT 7000

/* Creates LXCPATH/NAME (rootfs from the host's static busybox plus the
 * fm-seqecho binary at seqecho_path, and an LXC config that meets the
 * checkpoint constraints) with the static service address ip (no prefix). */
int fm_blank_create(const char *lxcpath, const char *name, const char *ip, const char *seqecho_path, fm_error *e);
