#include "images.h"

#include <string.h>

#include "plane/plane.h"
#include "proto/proto.h"
#include "util/spawn.h"

/* A copy of an image of the cache in a host's store: a hard link (image
 * files are never written in place), checked on commit. */
static int install_from(const char *from_store, const char *store, const fm_image *im, fm_error *e)
{
        if (fm_image_get(store, im->digest, NULL) == 0)
                return 0;
        char src[600], staging[600];
        fm_image_dir(from_store, im->digest, src, sizeof(src));
        strncat(src, "/file", sizeof(src) - strlen(src) - 1);
        fm_image_staging(store, im->digest, staging, sizeof(staging));
        fm_rm_rf(staging);
        int r = fm_mkdir_p(staging, 0755);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", staging, strerror(-r));
        _cleanup_free_ char *dest = fm_strdupf("%s/file", staging);
        char *argv[] = {"cp", "-a", "-l", src, dest, NULL};
        fm_spawn_opts so = {.timeout_ms = 600000};
        r = fm_spawn_check(argv, &so, e);
        free(so.output);
        if (r == 0)
                r = fm_image_commit(store, im, NULL, e);
        if (r < 0)
                fm_rm_rf(staging);
        return r;
}

int fm_plane_image_install(const fm_host *h, const char *kind, const char *name, const fm_build_opts *o,
                           fm_image *out, fm_error *e)
{
        bool custom = (name && strcmp(name, kind)) || o->video_bytes || o->video_seed;
        bool built = false;
        /* built on this machine, into the host's store on its disk */
        if (!h->store[0] || !fm_path_exists(h->store))
                return fm_err(e, ENOENT, "%s's image store %s is not on this machine: build the image on a host that "
                              "has it, then `fastmig image push' (the fleet file's `store' names it)",
                              h->name, h->store[0] ? h->store : "(not in the fleet file)");
        if (custom)
                return fm_image_build(h->store, kind, name, o, out, &built, e);
        int r = fm_image_build(FM_IMAGE_CACHE, kind, NULL, o, out, &built, e);
        if (r < 0)
                return r;
        if (!strcmp(out->kind, "app")) {
                fm_image base;
                if (fm_image_get(FM_IMAGE_CACHE, out->base, &base) < 0)
                        return fm_err(e, ENOENT, "the cache lost the base of %s", out->name);
                if ((r = install_from(FM_IMAGE_CACHE, h->store, &base, e)) < 0)
                        return r;
        }
        return install_from(FM_IMAGE_CACHE, h->store, out, e);
}

int fm_plane_image_call(const fm_host *h, const char *op, const char *image, json_object **rep, int timeout_ms,
                        fm_error *e)
{
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string(op));
        if (image)
                json_object_object_add(req, "image", json_object_new_string(image));
        int r = fm_plane_call(h, req, rep, timeout_ms, e);
        json_object_put(req);
        return r;
}

json_object *fm_plane_image_in(json_object *list_reply, const char *ref)
{
        json_object *im = fm_json_get(list_reply, "images");
        for (size_t i = 0; json_object_is_type(im, json_type_array) && i < json_object_array_length(im); i++) {
                json_object *x = json_object_array_get_idx(im, i);
                const char *n = fm_json_get_str(x, "name"), *d = fm_json_get_str(x, "digest");
                if ((n && !strcmp(n, ref)) || (d && !strcmp(d, ref)))
                        return x;
        }
        return NULL;
}

bool fm_plane_image_held(const fm_host *h, const char *ref)
{
        json_object *rep = NULL;
        if (fm_plane_image_call(h, "image_list", NULL, &rep, 10000, NULL) < 0)
                return false;
        bool has = fm_plane_image_in(rep, ref) != NULL;
        json_object_put(rep);
        return has;
}

int fm_plane_image_push(const fm_host *from, const fm_host *to, const char *ref, bool force, json_object **rep,
                        fm_error *e)
{
        json_object *req = json_object_new_object();
        char ep[40];
        snprintf(ep, sizeof(ep), "%s:%u", to->addr, to->port);
        json_object_object_add(req, "op", json_object_new_string("image_push"));
        json_object_object_add(req, "image", json_object_new_string(ref));
        json_object_object_add(req, "to", json_object_new_string(ep));
        if (force)
                json_object_object_add(req, "force", json_object_new_boolean(true));
        int r = fm_plane_call(from, req, rep, 3600000, e);
        json_object_put(req);
        return r;
}
