/* Building the images of the built-in workloads (docs/IMAGES.md):
 *   debian12  base: `debootstrap --variant=minbase bookworm` from the mirror of
 *             the machine's own apt sources, packages cached in FM_DEB_CACHE;
 *   blank     app over debian12: fm-seqecho as the container's init;
 *   video     app over debian12: Debian's nginx-light (installed with apt in
 *             a chroot on an overlay of the base), a video file served from
 *             /srv/video, and fm-seqecho as init, which starts nginx. */
#pragma once
#include "image/store.h"

#define FM_DEB_CACHE "/var/cache/fastmig/debs"
#define FM_BASE_IMAGE "debian12"
#define FM_VIDEO_PATH "/srv/video/movie.bin"
#define FM_VIDEO_URL "/movie.bin" /* FM_VIDEO_PATH under nginx's root */
#define FM_VIDEO_PORT 80
#define FM_VIDEO_SEED 0x66617374766964ull /* the content of the video file */

typedef void (*fm_build_progress)(const char *what, void *data);

typedef struct fm_build_opts {
        const char *seqecho_path; /* the static fm-seqecho binary */
        uint64_t video_bytes;     /* video: size of the file (default 240 MB) */
        uint64_t video_seed;      /* content seed (video: of the file; default FM_VIDEO_SEED); when set,
                                   * also written to /etc/fastmig-build-seed of an app layer */
        fm_build_progress progress;
        void *pdata;
} fm_build_opts;

/* Builds kind ("debian12", "blank" or "video") into store under name (NULL:
 * the kind) unless an image of that name is there already (*built false);
 * blank and video build their base first when it is missing. */
int fm_image_build(const char *store, const char *kind, const char *name, const fm_build_opts *o, fm_image *out,
                   bool *built, fm_error *e);

/* The video file's content: every 8-byte word is XXH64 of its offset. */
void fm_video_fill(uint64_t seed, uint64_t offset, uint8_t *buf, size_t len);
