/* The image store of an edge host (docs/IMAGES.md).
 *
 * A base image is an OS tree; an app image is a layer over one base (what
 * the application adds and changes, in overlayfs' upper-layer format: a
 * whiteout is a 0/0 character device). Each lives in STORE/<digest>/ as
 * tree/ and meta.json; the digest is a hash of the content (and, for an app
 * image, of its base's digest), so two hosts holding the same digest hold
 * the same tree. Service containers are overlay clones: lower layers from
 * the store, their own changes in LXCPATH/NAME/upper. */
#pragma once
#include <stdint.h>
#include <json-c/json.h>
#include "util/util.h"

#define FM_DIGEST_HEX 33 /* 32 hex digits of XXH3-128 and a NUL */

typedef struct fm_image {
        char name[64];
        char kind[8];                /* "base" or "app" */
        char digest[FM_DIGEST_HEX];
        char base[FM_DIGEST_HEX];    /* app: its base's digest; base: "" */
        char base_name[64];
        uint64_t bytes, files;       /* of tree/ (apparent sizes of regular files) */
        int64_t created;             /* unix time */
} fm_image;

/* Which image a container is a clone of (LXCPATH/NAME/fastmig-image). */
typedef struct fm_clone {
        char app[FM_DIGEST_HEX], base[FM_DIGEST_HEX];
        char app_name[64], base_name[64];
} fm_clone;

/* Digest of the tree at dir (seed: "" or the base's digest for an app
 * layer): names, types, modes, owners, contents, link targets, device
 * numbers and overlayfs' opaque/whiteout marks; not times. */
int fm_tree_digest(const char *dir, const char *seed, char hex[FM_DIGEST_HEX], uint64_t *bytes, uint64_t *files,
                   fm_error *e);

void fm_image_dir(const char *store, const char *digest, char *buf, size_t n);
void fm_image_tree(const char *store, const char *digest, char *buf, size_t n);

/* All images of the store, newest first. */
int fm_image_list(const char *store, fm_image **out, size_t *n, fm_error *e);
/* By digest (or a unique prefix of at least 8 digits) or by name (the newest
 * of that name); -ENOENT / -EINVAL (ambiguous) with e set. */
int fm_image_find(const char *store, const char *ref, fm_image *out, fm_error *e);
/* 0 if STORE/<digest> is a complete image (meta.json read), -ENOENT if not. */
int fm_image_get(const char *store, const char *digest, fm_image *out);

/* A staging directory STORE/.incoming-<digest>/ whose tree/ receives an image. */
void fm_image_staging(const char *store, const char *digest, char *buf, size_t n);
/* Checks the staged tree against want (its digest, recomputed; an app's base
 * must be in the store), writes meta.json and moves it into place. */
int fm_image_commit(const char *store, const fm_image *want, fm_error *e);
/* Removes an image; refused while a container in lxcpath or an app image
 * in the store uses it. */
int fm_image_rm(const char *store, const char *lxcpath, const char *ref, fm_image *removed, fm_error *e);

json_object *fm_image_json(const fm_image *im);
int fm_image_from_json(json_object *o, fm_image *im, fm_error *e);

/* The clone link of a container; -ENOENT when it is no clone. */
int fm_clone_read(const char *lxcpath, const char *name, fm_clone *c, fm_error *e);
int fm_clone_write(const char *lxcpath, const char *name, const fm_clone *c, fm_error *e);
/* The overlay mount options of a clone on this host:
 * lowerdir=APP:BASE,upperdir=LXCPATH/NAME/upper,workdir=LXCPATH/NAME/work */
int fm_clone_overlay_opts(const char *store, const char *lxcpath, const char *name, const fm_clone *c, char *buf,
                          size_t n, fm_error *e);
/* The LXC config lines that mount a clone's overlay on LXCPATH/NAME/rootfs
 * when it starts (a pre-mount hook); malloc'd, NULL when out of memory. */
char *fm_clone_hook(const char *store, const char *lxcpath, const char *name, const fm_clone *c);
/* Creates LXCPATH/NAME/{upper,work,rootfs} and the link (nothing mounted). */
int fm_clone_prepare_dirs(const char *lxcpath, const char *name, fm_error *e);
