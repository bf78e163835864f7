/* Images on the fleet's hosts, for the management plane and the CLI:
 * build (once, into the machine's build cache FM_IMAGE_CACHE) and install
 * into the store of a host on this machine (the testbed's, or a fleet's
 * whose file names the store); the agents list, push and remove. */
#pragma once
#include "image/build.h"
#include "fleet/fleet.h"
#include <json-c/json.h>
#include <stdbool.h>

#define FM_IMAGE_CACHE "/var/cache/fastmig/images"

/* Makes image kind (debian12, blank, video) present in host h's store, with
 * its base: from the cache, built there first when missing. Options other
 * than the defaults (o->video_bytes, o->video_seed) or a name of one's own
 * build straight into the host's store, uncached. */
int fm_plane_image_install(const fm_host *h, const char *kind, const char *name, const fm_build_opts *o,
                           fm_image *out, fm_error *e);

/* An agent's image request: op image_list (image NULL), image_rm, ... */
int fm_plane_image_call(const fm_host *h, const char *op, const char *image, json_object **rep, int timeout_ms,
                        fm_error *e);
/* The image ref (a name or a digest) in an agent's image_list reply, or
 * NULL; borrowed from the reply. */
json_object *fm_plane_image_in(json_object *list_reply, const char *ref);
/* Whether host h holds image ref (false too when its agent does not answer). */
bool fm_plane_image_held(const fm_host *h, const char *ref);
/* Has from send image ref (with its base when to lacks it) to to; the
 * agent's reply (image, bytes, bytes_base) in *rep. force: even when to
 * has it. */
int fm_plane_image_push(const fm_host *from, const fm_host *to, const char *ref, bool force, json_object **rep,
                        fm_error *e);
