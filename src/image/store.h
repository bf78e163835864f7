/* The image store of an edge host (docs/IMAGES.md).
 *
 * A base image is an OS tree; an app image is a layer over one base (what
 * the application adds and changes, in overlayfs' upper-layer format: a
 * whiteout is a 0/0 character device). Each is one squashfs file,
 * STORE/<digest>/file/image.sqfs, with STORE/<digest>/meta.json; it is
 * mounted (loop, read-only) on STORE/<digest>/tree when a container uses it.
 * The digest is a hash of that file (and, for an app image, of its base's
 * digest), so two hosts holding the same digest hold the same tree; one file
 * travels at the link's speed where thousands of small ones would not.
 * Service containers are overlay clones: lower layers from the store, their
 * own changes in LXCPATH/NAME/upper. */
#pragma once
#include <stdint.h>
#include <json-c/json.h>
#include "image/digest.h"
#include "util/util.h"
#define FM_IMAGE_FILE "file/image.sqfs" /* under STORE/<digest>/ and a staging directory */

typedef struct fm_image {
        char name[64];
        char kind[8];                /* "base" or "app" */
        char digest[FM_DIGEST_HEX];
        char base[FM_DIGEST_HEX];    /* app: its base's digest; base: "" */
        char base_name[64];
        uint64_t bytes;              /* of the image file */
        uint64_t files;              /* entries in its tree (as built) */
        uint64_t tree_bytes;         /* apparent size of its tree's files (as built) */
        int64_t created;             /* unix time */
        char init[64];               /* app: what LXC runs as the container's init */
        /* app: its init puts its stdio on the container's /dev/null, so a
         * container may use the rootfs's /dev instead of a tmpfs (which CRIU
         * dumps with tar while frozen); false for images built before */
        bool init_own_stdio;
} fm_image;

/* Which image a container is a clone of (LXCPATH/NAME/fastmig-image). */
typedef struct fm_clone {
        char app[FM_DIGEST_HEX], base[FM_DIGEST_HEX];
        char app_name[64], base_name[64];
} fm_clone;

void fm_image_dir(const char *store, const char *digest, char *buf, size_t n);
void fm_image_tree(const char *store, const char *digest, char *buf, size_t n);
void fm_image_file(const char *store, const char *digest, char *buf, size_t n);
/* Mounts the image on its tree/ unless it is (in this mount namespace). */
int fm_image_mount(const char *store, const char *digest, fm_error *e);
void fm_image_unmount(const char *store, const char *digest);
/* Makes the store a shared mount (a bind mount onto itself) in this mount
 * namespace, so that images mounted later also appear in namespaces copied
 * from it earlier: LXC's restore makes its own before an image that is
 * still arriving has been mounted. */
int fm_image_store_share(const char *store, fm_error *e);

/* All images of the store, newest first. */
int fm_image_list(const char *store, fm_image **out, size_t *n, fm_error *e);
/* By digest (or a unique prefix of at least 8 digits) or by name (the newest
 * of that name); -ENOENT / -EINVAL (ambiguous) with e set. */
int fm_image_find(const char *store, const char *ref, fm_image *out, fm_error *e);
/* 0 if STORE/<digest> is a complete image (meta.json read), -ENOENT if not. */
int fm_image_get(const char *store, const char *digest, fm_image *out);

/* A digest as the store names images: lower-case hex of the right length. */
bool fm_image_digest_is_valid(const char *d);

/* A staging directory STORE/.incoming-<digest>/ whose FM_IMAGE_FILE
 * receives an image. */
void fm_image_staging(const char *store, const char *digest, char *buf, size_t n);
/* ... and its FM_IMAGE_FILE */
void fm_image_staging_file(const char *store, const char *digest, char *buf, size_t n);
/* A follower of im's staging file, for fm_image_commit (NULL if none could
 * start: the commit then hashes the file whole). */
fm_digest_follower *fm_image_follow_staging(const char *store, const fm_image *im);
/* Bytes of im in staging so far; all of them once it is in the store. */
uint64_t fm_image_arrived(const char *store, const fm_image *im);
/* Checks the staged file against want (its digest, recomputed, or taken
 * from follower, which followed the file as it arrived and is freed; an
 * app's base must be in the store), writes meta.json and moves it into
 * place. */
int fm_image_commit(const char *store, const fm_image *want, fm_digest_follower *follower, fm_error *e);
/* Removes an image; refused while a container in lxcpath or an app image
 * in the store uses it. */
int fm_image_rm(const char *store, const char *lxcpath, const char *ref, fm_image *removed, fm_error *e);

json_object *fm_image_json(const fm_image *im);
int fm_image_from_json(json_object *o, fm_image *im, fm_error *e);

/* The clone link of a container; -ENOENT when it is no clone. */
int fm_clone_read(const char *lxcpath, const char *name, fm_clone *c, fm_error *e);
int fm_clone_write(const char *lxcpath, const char *name, const fm_clone *c, fm_error *e);
/* The same description as JSON {app, app_name, base, base_name} (the link
 * file's content, and what prepare carries); digests are checked. */
json_object *fm_clone_json(const fm_clone *c);
int fm_clone_from_json(json_object *o, fm_clone *c, fm_error *e);
/* The overlay mount options of a clone on this host (its images mounted
 * first, in this mount namespace):
 * lowerdir=APP:BASE,upperdir=LXCPATH/NAME/upper,workdir=LXCPATH/NAME/work
 * may_wait: an image not (yet) in the store is no error (a restore that
 * waits for its images: fm-criu-wrap mounts what it finds unmounted). */
int fm_clone_overlay_opts(const char *store, const char *lxcpath, const char *name, const fm_clone *c, bool may_wait,
                          char *buf, size_t n, fm_error *e);
/* The LXC config lines that mount a clone's overlay on LXCPATH/NAME/rootfs
 * when it starts (a pre-mount hook); malloc'd, NULL when out of memory. */
char *fm_clone_hook(const char *store, const char *lxcpath, const char *name, const fm_clone *c);
/* Creates LXCPATH/NAME/{upper,work,rootfs} and the link (nothing mounted). */
int fm_clone_prepare_dirs(const char *lxcpath, const char *name, fm_error *e);
