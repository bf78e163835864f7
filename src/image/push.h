/* Placing images on another host: rsync of the tree into the target's
 * staging directory (through the agent: fm_rsync_push), then the target's
 * agent checks the digest and takes it in (request image_commit). */
#pragma once
#include "image/store.h"

typedef struct fm_peer {
        char addr[16];
        uint16_t port; /* its agent */
} fm_peer;

/* Does the peer hold digest? 1 yes, 0 no, negative on error. */
int fm_image_peer_has(const fm_peer *to, const char *digest, fm_error *e);

/* Sends im (whose tree is in store) to the peer; nice: rsync's niceness;
 * bytes: what rsync sent. A peer that holds it already gets nothing unless
 * force (the tree then travels whole into an empty staging directory). */
int fm_image_push(const char *store, const fm_image *im, const fm_peer *to, bool force, int nice, uint64_t *bytes,
                  fm_error *e);
/* The two halves of a push: the tree into the peer's staging directory
 * (fresh: emptied first), then the peer checks and takes it in (an app
 * image after its base). Trees can travel side by side. */
int fm_image_send(const char *store, const fm_image *im, const fm_peer *to, bool fresh, int nice, uint64_t *bytes,
                  fm_error *e);
/* The same, unless the target has it committed by the time it is staged
 * (-EEXIST, checked in the same step as the claim): after awaiting another
 * host's staging of it. */
int fm_image_send_unless_there(const char *store, const fm_image *im, const fm_peer *to, int nice, uint64_t *bytes,
                               fm_error *e);
int fm_image_commit_at(const fm_peer *to, const fm_image *im, fm_error *e);
/* How much of im has reached the peer's staging directory so far (all of
 * it once committed there). */
int fm_image_progress_at(const fm_peer *to, const fm_image *im, uint64_t *bytes, fm_error *e);
