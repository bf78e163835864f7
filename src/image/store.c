#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "proto/proto.h"
#include "util/spawn.h"

/* ---- the store ---- */

bool fm_image_digest_is_valid(const char *d)
{
        size_t n = strlen(d);
        if (n != FM_DIGEST_HEX - 1)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
                        return false;
        return true;
}

void fm_image_dir(const char *store, const char *digest, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", store, digest);
}

void fm_image_tree(const char *store, const char *digest, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s/tree", store, digest);
}

void fm_image_file(const char *store, const char *digest, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s/" FM_IMAGE_FILE, store, digest);
}

static bool is_mountpoint(const char *dir)
{
        struct stat a, b;
        _cleanup_free_ char *parent = fm_strdupf("%s/..", dir);
        return parent && stat(dir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

int fm_image_mount(const char *store, const char *digest, fm_error *e)
{
        char tree[600], file[600];
        fm_image_tree(store, digest, tree, sizeof(tree));
        fm_image_file(store, digest, file, sizeof(file));
        if (is_mountpoint(tree))
                return 0;
        if (fm_image_get(store, digest, NULL) < 0)
                return fm_err(e, ENOENT, "no image %.12s in %s", digest, store);
        fm_mkdir_p(tree, 0755);
        char *argv[] = {"mount", "-t", "squashfs", "-o", "loop,ro", file, tree, NULL};
        fm_spawn_opts o = {.timeout_ms = 30000};
        int r = fm_spawn_check(argv, &o, e);
        free(o.output);
        if (r < 0 && is_mountpoint(tree)) /* another thread was faster */
                r = 0;
        return r < 0 ? fm_err_wrap(e, "mounting image %.12s", digest) : 0;
}

int fm_image_store_share(const char *store, fm_error *e)
{
        int r = fm_mkdir_p(store, 0755);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", store, strerror(-r));
        if (!is_mountpoint(store) && mount(store, store, NULL, MS_BIND, NULL) < 0)
                return fm_err(e, errno, "binding %s onto itself: %s", store, strerror(errno));
        if (mount(NULL, store, NULL, MS_SHARED, NULL) < 0)
                return fm_err(e, errno, "making %s a shared mount: %s", store, strerror(errno));
        return 0;
}

void fm_image_unmount(const char *store, const char *digest)
{
        char tree[600];
        fm_image_tree(store, digest, tree, sizeof(tree));
        while (is_mountpoint(tree) && umount2(tree, MNT_DETACH) == 0)
                ;
}

void fm_image_staging(const char *store, const char *digest, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.incoming-%s", store, digest);
}

void fm_image_staging_file(const char *store, const char *digest, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.incoming-%s/" FM_IMAGE_FILE, store, digest);
}

static const char *digest_seed(const fm_image *im) { return im->base[0] ? im->base : NULL; }

fm_digest_follower *fm_image_follow_staging(const char *store, const fm_image *im)
{
        char file[700];
        fm_image_staging_file(store, im->digest, file, sizeof(file));
        return fm_digest_follow(file, digest_seed(im));
}

uint64_t fm_image_arrived(const char *store, const fm_image *im)
{
        char file[700];
        struct stat st;
        fm_image_staging_file(store, im->digest, file, sizeof(file));
        if (lstat(file, &st) == 0 && S_ISREG(st.st_mode))
                return (uint64_t)st.st_size;
        return fm_image_get(store, im->digest, NULL) == 0 ? im->bytes : 0;
}

json_object *fm_image_json(const fm_image *im)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(im->name));
        json_object_object_add(o, "kind", json_object_new_string(im->kind));
        json_object_object_add(o, "digest", json_object_new_string(im->digest));
        json_object_object_add(o, "base", im->base[0] ? json_object_new_string(im->base) : NULL);
        json_object_object_add(o, "base_name", im->base[0] ? json_object_new_string(im->base_name) : NULL);
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)im->bytes));
        json_object_object_add(o, "files", json_object_new_int64((int64_t)im->files));
        json_object_object_add(o, "tree_bytes", json_object_new_int64((int64_t)im->tree_bytes));
        json_object_object_add(o, "created", json_object_new_int64(im->created));
        json_object_object_add(o, "init", im->init[0] ? json_object_new_string(im->init) : NULL);
        if (im->init_own_stdio)
                json_object_object_add(o, "init_own_stdio", json_object_new_boolean(1));
        return o;
}

int fm_image_from_json(json_object *o, fm_image *im, fm_error *e)
{
        const char *name = NULL, *kind = NULL, *digest = NULL, *base = NULL, *base_name = NULL, *init = NULL;
        int64_t bytes = 0, files = 0, created = 0, tree_bytes = 0;
        memset(im, 0, sizeof(*im));
        int r = fm_json_str(o, "name", true, sizeof(im->name) - 1, &name, e);
        if (r == 0)
                r = fm_json_str(o, "kind", true, sizeof(im->kind) - 1, &kind, e);
        if (r == 0)
                r = fm_json_str(o, "digest", true, FM_DIGEST_HEX - 1, &digest, e);
        if (r == 0)
                r = fm_json_str(o, "base", false, FM_DIGEST_HEX - 1, &base, e);
        if (r == 0)
                r = fm_json_str(o, "base_name", false, sizeof(im->base_name) - 1, &base_name, e);
        if (r == 0)
                r = fm_json_int(o, "bytes", false, 0, INT64_MAX, &bytes, e);
        if (r == 0)
                r = fm_json_int(o, "files", false, 0, INT64_MAX, &files, e);
        if (r == 0)
                r = fm_json_int(o, "created", false, 0, INT64_MAX, &created, e);
        if (r == 0)
                r = fm_json_int(o, "tree_bytes", false, 0, INT64_MAX, &tree_bytes, e);
        if (r == 0)
                r = fm_json_str(o, "init", false, sizeof(im->init) - 1, &init, e);
        if (r < 0)
                return r;
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad image name `%s'", name);
        if (strcmp(kind, "base") && strcmp(kind, "app"))
                return fm_err(e, EINVAL, "image kind must be base or app, not `%s'", kind);
        if (!fm_image_digest_is_valid(digest) || (base && !fm_image_digest_is_valid(base)))
                return fm_err(e, EINVAL, "bad image digest");
        if (!strcmp(kind, "app") != (base != NULL))
                return fm_err(e, EINVAL, "an app image names its base, a base image none");
        snprintf(im->name, sizeof(im->name), "%s", name);
        snprintf(im->kind, sizeof(im->kind), "%s", kind);
        snprintf(im->digest, sizeof(im->digest), "%s", digest);
        im->init_own_stdio = fm_json_bool(o, "init_own_stdio", false);
        snprintf(im->base, sizeof(im->base), "%s", base ? base : "");
        snprintf(im->base_name, sizeof(im->base_name), "%s", base_name ? base_name : "");
        im->bytes = (uint64_t)bytes;
        im->files = (uint64_t)files;
        im->tree_bytes = (uint64_t)tree_bytes;
        im->created = created;
        snprintf(im->init, sizeof(im->init), "%s", init ? init : "");
        return 0;
}

int fm_image_get(const char *store, const char *digest, fm_image *out)
{
        if (!fm_image_digest_is_valid(digest))
                return -ENOENT;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s/meta.json", store, digest);
        _cleanup_free_ char *text = NULL;
        int n = fm_read_file(path, &text, 1 << 16);
        if (n < 0)
                return -ENOENT;
        json_object *o = NULL;
        fm_error e = {0};
        if (fm_msg_parse(text, (size_t)n, &o, &e) < 0)
                return -ENOENT;
        fm_image im;
        int r = fm_image_from_json(o, &im, &e);
        json_object_put(o);
        if (r < 0 || strcmp(im.digest, digest))
                return -ENOENT;
        char file[600];
        fm_image_file(store, digest, file, sizeof(file));
        if (!fm_path_exists(file)) /* an older store's image, or a broken one */
                return -ENOENT;
        if (out)
                *out = im;
        return 0;
}

static int by_created_desc(const void *a, const void *b)
{
        const fm_image *x = a, *y = b;
        if (x->created != y->created)
                return x->created < y->created ? 1 : -1;
        return strcmp(x->name, y->name);
}

int fm_image_list(const char *store, fm_image **out, size_t *n, fm_error *e)
{
        *out = NULL;
        *n = 0;
        DIR *d = opendir(store);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                return fm_err(e, errno, "reading the image store %s: %s", store, strerror(errno));
        }
        size_t cap = 0;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                fm_image im;
                if (de->d_name[0] == '.' || fm_image_get(store, de->d_name, &im) < 0)
                        continue;
                if (*n == cap) {
                        cap = cap ? 2 * cap : 8;
                        fm_image *v = realloc(*out, cap * sizeof(**out));
                        if (!v) {
                                r = fm_err(e, ENOMEM, "out of memory");
                                break;
                        }
                        *out = v;
                }
                (*out)[(*n)++] = im;
        }
        closedir(d);
        if (r < 0) {
                free(*out);
                *out = NULL;
                *n = 0;
                return r;
        }
        if (*n)
                qsort(*out, *n, sizeof(**out), by_created_desc);
        return 0;
}

int fm_image_find(const char *store, const char *ref, fm_image *out, fm_error *e)
{
        _cleanup_free_ fm_image *v = NULL;
        size_t n = 0;
        int r = fm_image_list(store, &v, &n, e);
        if (r < 0)
                return r;
        size_t rl = strlen(ref);
        const fm_image *hit = NULL;
        int prefix_hits = 0;
        for (size_t i = 0; i < n; i++)
                if (rl >= 8 && !strncmp(v[i].digest, ref, rl)) {
                        hit = &v[i];
                        prefix_hits++;
                }
        if (prefix_hits > 1)
                return fm_err(e, EINVAL, "digest prefix %s matches %d images: give more digits", ref, prefix_hits);
        for (size_t i = 0; !hit && i < n; i++) /* newest first */
                if (!strcmp(v[i].name, ref))
                        hit = &v[i];
        if (!hit)
                return fm_err(e, ENOENT, "no image `%s' in %s", ref, store);
        *out = *hit;
        return 0;
}

int fm_image_commit(const char *store, const fm_image *want, fm_digest_follower *follower, fm_error *e)
{
        char staging[600], file[700], tree[700], dest[600], meta[700];
        fm_image im = *want;
        if (!fm_image_digest_is_valid(im.digest) || (im.base[0] && !fm_image_digest_is_valid(im.base))) {
                fm_digest_follow_cancel(follower);
                return fm_err(e, EINVAL, "bad image digest");
        }
        fm_image_staging(store, im.digest, staging, sizeof(staging));
        fm_image_staging_file(store, im.digest, file, sizeof(file));
        snprintf(tree, sizeof(tree), "%s/tree", staging);
        fm_image_dir(store, im.digest, dest, sizeof(dest));
        char got[FM_DIGEST_HEX];
        int r = follower ? fm_digest_follow_end(follower, got, &im.bytes) : -EAGAIN;
        if (fm_image_get(store, im.digest, NULL) == 0) {
                fm_rm_rf(staging);
                return 0; /* already here */
        }
        fm_image base;
        if (!strcmp(im.kind, "app") && fm_image_get(store, im.base, &base) < 0)
                return fm_err(e, ENOENT, "app image %s needs base %s (%.12s), which this host lacks", im.name,
                              im.base_name, im.base);
        if (r < 0)
                r = fm_file_digest(file, digest_seed(&im), got, &im.bytes, e);
        if (r < 0)
                return fm_err_wrap(e, "checking image %s", im.name);
        if (strcmp(got, im.digest)) {
                fm_rm_rf(staging);
                return fm_err(e, EBADMSG, "image %s arrived with digest %.12s, not %.12s: refused", im.name, got,
                              im.digest);
        }
        if (!im.created)
                im.created = (int64_t)time(NULL);
        fm_mkdir_p(tree, 0755); /* where it is mounted when used */
        json_object *o = fm_image_json(&im);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
        snprintf(meta, sizeof(meta), "%s/meta.json", staging);
        r = fm_write_file(meta, text, strlen(text), 0644);
        json_object_put(o);
        if (r < 0)
                return fm_err(e, -r, "writing %s: %s", meta, strerror(-r));
        fm_rm_rf(dest); /* an incomplete leftover (no meta.json) */
        if (rename(staging, dest) < 0)
                return fm_err(e, errno, "moving %s into place: %s", staging, strerror(errno));
        return 0;
}

/* Containers of lxcpath that are clones of digest (names into buf). */
static bool image_in_use(const char *store, const char *lxcpath, const char *digest, char *why, size_t n)
{
        DIR *d = opendir(lxcpath);
        struct dirent *de;
        bool used = false;
        while (d && !used && (de = readdir(d))) {
                fm_clone c;
                if (de->d_name[0] == '.' || !fm_name_is_valid(de->d_name) || fm_clone_read(lxcpath, de->d_name, &c, NULL) < 0)
                        continue;
                if (!strcmp(c.app, digest) || !strcmp(c.base, digest)) {
                        snprintf(why, n, "container %.63s is a clone of it", de->d_name);
                        used = true;
                }
        }
        if (d)
                closedir(d);
        _cleanup_free_ fm_image *v = NULL;
        size_t cnt = 0;
        if (!used && fm_image_list(store, &v, &cnt, NULL) == 0)
                for (size_t i = 0; i < cnt && !used; i++)
                        if (!strcmp(v[i].base, digest)) {
                                snprintf(why, n, "app image %s (%.12s) is built on it", v[i].name, v[i].digest);
                                used = true;
                        }
        return used;
}

int fm_image_rm(const char *store, const char *lxcpath, const char *ref, fm_image *removed, fm_error *e)
{
        fm_image im;
        int r = fm_image_find(store, ref, &im, e);
        if (r < 0)
                return r;
        char why[200];
        if (image_in_use(store, lxcpath, im.digest, why, sizeof(why)))
                return fm_err(e, EBUSY, "image %s (%.12s) is in use: %s", im.name, im.digest, why);
        char dir[600], meta[700];
        fm_image_dir(store, im.digest, dir, sizeof(dir));
        snprintf(meta, sizeof(meta), "%s/meta.json", dir);
        unlink(meta); /* no longer an image, even if the rest fails */
        fm_image_unmount(store, im.digest);
        if ((r = fm_rm_rf(dir)) < 0)
                return fm_err(e, -r, "removing %s: %s", dir, strerror(-r));
        if (removed)
                *removed = im;
        return 0;
}

/* ---- clones ---- */

static void clone_path(const char *lxcpath, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s/fastmig-image", lxcpath, name);
}

int fm_clone_read(const char *lxcpath, const char *name, fm_clone *c, fm_error *e)
{
        char path[600];
        clone_path(lxcpath, name, path, sizeof(path));
        _cleanup_free_ char *text = NULL;
        int n = fm_read_file(path, &text, 4096);
        if (n < 0)
                return n == -ENOENT ? -ENOENT : fm_err(e, -n, "reading %s: %s", path, strerror(-n));
        json_object *o = NULL;
        int r = fm_msg_parse(text, (size_t)n, &o, e);
        if (r == 0)
                r = fm_clone_from_json(o, c, e);
        json_object_put(o);
        return r < 0 ? fm_err_wrap(e, "%s", path) : 0;
}

json_object *fm_clone_json(const fm_clone *c)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "app", json_object_new_string(c->app));
        json_object_object_add(o, "app_name", json_object_new_string(c->app_name));
        json_object_object_add(o, "base", json_object_new_string(c->base));
        json_object_object_add(o, "base_name", json_object_new_string(c->base_name));
        return o;
}

int fm_clone_from_json(json_object *o, fm_clone *c, fm_error *e)
{
        const char *app = NULL, *base = NULL, *an = NULL, *bn = NULL;
        int r = fm_json_str(o, "app", true, FM_DIGEST_HEX - 1, &app, e);
        if (r == 0)
                r = fm_json_str(o, "base", true, FM_DIGEST_HEX - 1, &base, e);
        if (r == 0)
                r = fm_json_str(o, "app_name", false, 63, &an, e);
        if (r == 0)
                r = fm_json_str(o, "base_name", false, 63, &bn, e);
        if (r == 0 && (!fm_image_digest_is_valid(app) || !fm_image_digest_is_valid(base)))
                r = fm_err(e, EINVAL, "bad image digest in a clone's description");
        if (r < 0)
                return r;
        snprintf(c->app, sizeof(c->app), "%s", app);
        snprintf(c->base, sizeof(c->base), "%s", base);
        snprintf(c->app_name, sizeof(c->app_name), "%s", an ? an : "");
        snprintf(c->base_name, sizeof(c->base_name), "%s", bn ? bn : "");
        return 0;
}

int fm_clone_write(const char *lxcpath, const char *name, const fm_clone *c, fm_error *e)
{
        char path[600];
        clone_path(lxcpath, name, path, sizeof(path));
        json_object *o = fm_clone_json(c);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
        int r = fm_write_file(path, text, strlen(text), 0644);
        json_object_put(o);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", path, strerror(-r)) : 0;
}

static char *overlay_opts(const char *store, const char *lxcpath, const char *name, const fm_clone *c)
{
        return fm_strdupf("lowerdir=%s/%s/tree:%s/%s/tree,upperdir=%s/%s/upper,workdir=%s/%s/work", store, c->app, store,
                          c->base, lxcpath, name, lxcpath, name);
}

int fm_clone_overlay_opts(const char *store, const char *lxcpath, const char *name, const fm_clone *c, bool may_wait,
                          char *buf, size_t n, fm_error *e)
{
        const char *const digests[] = {c->app, c->base};
        for (size_t i = 0; i < FM_ARRAY_SIZE(digests); i++) {
                if (fm_image_get(store, digests[i], NULL) < 0) {
                        if (may_wait)
                                continue;
                        return fm_err(e, ENOENT,
                                      "container %s is a clone of %s (%.12s) over %s (%.12s), not both on this host", name,
                                      c->app_name, c->app, c->base_name, c->base);
                }
                if (fm_image_mount(store, digests[i], e) < 0)
                        return -e->code;
        }
        _cleanup_free_ char *o = overlay_opts(store, lxcpath, name, c);
        if (!o || strlen(o) >= n)
                return fm_err(e, ENAMETOOLONG, "overlay options too long");
        snprintf(buf, n, "%s", o);
        return 0;
}

char *fm_clone_hook(const char *store, const char *lxcpath, const char *name, const fm_clone *c)
{
        _cleanup_free_ char *o = overlay_opts(store, lxcpath, name, c);
        return o ? fm_strdupf("lxc.hook.version = 1\n"
                              "lxc.hook.pre-mount = mount -t overlay overlay -o %s %s/%s/rootfs\n",
                              o, lxcpath, name)
                 : NULL;
}

int fm_clone_prepare_dirs(const char *lxcpath, const char *name, fm_error *e)
{
        static const char *const sub[] = {"upper", "work", "rootfs"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(sub); i++) {
                char path[600];
                snprintf(path, sizeof(path), "%s/%s/%s", lxcpath, name, sub[i]);
                int r = fm_mkdir_p(path, 0755);
                if (r < 0)
                        return fm_err(e, -r, "creating %s: %s", path, strerror(-r));
        }
        return 0;
}
