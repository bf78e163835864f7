/* Images on the fleet's hosts, for the management plane and the CLI:
 * build (once, into the machine's build cache FM_IMAGE_CACHE) and install
 * into the store of a host on this machine (the testbed's, or a fleet's
 * whose file names the store); the agents list, push and remove. */
#pragma once
#include "image/build.h"
#include "fleet/fleet.h"

#define FM_IMAGE_CACHE "/var/cache/fastmig/images"

/* Makes image kind (debian12, blank, video) present in host h's store, with
 * its base: from the cache, built there first when missing. Options other
 * than the defaults (o->video_bytes, o->video_seed) or a name of one's own
 * build straight into the host's store, uncached. */
int fm_plane_image_install(const fm_host *h, const char *kind, const char *name, const fm_build_opts *o,
                           fm_image *out, fm_error *e);
