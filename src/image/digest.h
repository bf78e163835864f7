/* The content digest of an image file: XXH3-128 over a version tag, the
 * base's digest (app images) and the file. Computed whole (a file at
 * rest), or while the file arrives (a follower): an image staged by rsync
 * into an empty directory is written front to back, so its digest can be
 * ready moments after its last byte instead of one more pass later. */
#pragma once
#include <stdint.h>
#include "util/util.h"

#define FM_DIGEST_HEX 33 /* 32 hex digits of XXH3-128 and a NUL */

/* Digest of an image file (seed: NULL, or the base's digest for an app
 * layer); *bytes: its size. */
int fm_file_digest(const char *path, const char *seed, char hex[FM_DIGEST_HEX], uint64_t *bytes, fm_error *e);

typedef struct fm_digest_follower fm_digest_follower;
/* Starts hashing path (which may not exist yet) as it grows, in a thread;
 * NULL when out of memory or threads. */
fm_digest_follower *fm_digest_follow(const char *path, const char *seed);
/* The writer is done: hashes what is left and gives the digest of the whole
 * file. -EAGAIN if following did not work out (the file shrank or went,
 * a read failed, it gave up after a long idle time): hash it anew. Frees f. */
int fm_digest_follow_end(fm_digest_follower *f, char hex[FM_DIGEST_HEX], uint64_t *bytes);
/* Stops and frees f without a digest. */
void fm_digest_follow_cancel(fm_digest_follower *f);
