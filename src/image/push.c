#include "push.h"

#include <string.h>

#include "proto/proto.h"
#include "transfer/files.h"

static int peer_call(const fm_peer *to, json_object *req, json_object **reply, fm_error *e)
{
        json_object *rep = NULL;
        int r = fm_call(to->addr, to->port, req, &rep, 600000, e);
        json_object_put(req);
        if (r == 0)
                r = fm_reply_check(rep, e);
        if (r == 0 && reply)
                *reply = rep;
        else
                json_object_put(rep);
        return r;
}

int fm_image_peer_has(const fm_peer *to, const char *digest, fm_error *e)
{
        json_object *req = json_object_new_object(), *rep = NULL;
        json_object_object_add(req, "op", json_object_new_string("image_has"));
        json_object_object_add(req, "digest", json_object_new_string(digest));
        int r = peer_call(to, req, &rep, e);
        if (r < 0)
                return r;
        bool has = fm_json_bool(rep, "has", false);
        json_object_put(rep);
        return has ? 1 : 0;
}

int fm_image_push(const char *store, const fm_image *im, const fm_peer *to, bool force, int nice, uint64_t *bytes,
                  fm_error *e)
{
        *bytes = 0;
        if (!force) {
                int has = fm_image_peer_has(to, im->digest, e);
                if (has < 0)
                        return has;
                if (has)
                        return 0;
        }
        int r = fm_image_send(store, im, to, force, nice, bytes, e);
        return r < 0 ? r : fm_image_commit_at(to, im, e);
}

static int image_send(const char *store, const fm_image *im, const fm_peer *to, bool fresh, bool unless_there,
                      int nice, uint64_t *bytes, fm_error *e)
{
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("image_stage"));
        json_object_object_add(req, "image", fm_image_json(im));
        json_object_object_add(req, "fresh", json_object_new_boolean(fresh));
        if (unless_there)
                json_object_object_add(req, "unless_there", json_object_new_boolean(true));
        json_object *rep = NULL;
        int r = peer_call(to, req, &rep, e);
        if (r < 0)
                return fm_err_wrap(e, "staging image %s", im->name);
        json_object_put(rep);
        char dir[600];
        fm_image_dir(store, im->digest, dir, sizeof(dir));
        strncat(dir, "/file", sizeof(dir) - strlen(dir) - 1);
        fm_rsync_dest dest = {.addr = to->addr, .port = to->port, .image = im->digest};
        if ((r = fm_rsync_push(dir, &dest, nice, true, NULL, bytes, e)) < 0)
                return fm_err_wrap(e, "sending image %s", im->name);
        return 0;
}

int fm_image_send(const char *store, const fm_image *im, const fm_peer *to, bool fresh, int nice, uint64_t *bytes,
                  fm_error *e)
{
        return image_send(store, im, to, fresh, false, nice, bytes, e);
}

int fm_image_send_unless_there(const char *store, const fm_image *im, const fm_peer *to, int nice, uint64_t *bytes,
                               fm_error *e)
{
        return image_send(store, im, to, true, true, nice, bytes, e);
}

int fm_image_commit_at(const fm_peer *to, const fm_image *im, fm_error *e)
{
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("image_commit"));
        json_object_object_add(req, "image", fm_image_json(im));
        int r = peer_call(to, req, NULL, e);
        return r < 0 ? fm_err_wrap(e, "image %s", im->name) : 0;
}

int fm_image_progress_at(const fm_peer *to, const fm_image *im, uint64_t *bytes, fm_error *e)
{
        json_object *req = json_object_new_object(), *rep = NULL;
        json_object_object_add(req, "op", json_object_new_string("image_progress"));
        json_object_object_add(req, "image", fm_image_json(im));
        int r = peer_call(to, req, &rep, e);
        if (r < 0)
                return r;
        int64_t got = 0;
        r = fm_json_int(rep, "bytes", true, 0, INT64_MAX, &got, e);
        json_object_put(rep);
        *bytes = (uint64_t)got;
        return r;
}
