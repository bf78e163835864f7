/* The image store's pure parts on scratch directories: digests (what
 * changes them and what does not), commit (a claimed digest is checked),
 * lookup by name and digest prefix, removal refused while in use. */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/store.h"
#include "tap.h"

static void put(const char *root, const char *rel, const char *text)
{
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        fm_write_file(path, text, strlen(text), 0644);
}

static void digest(const char *dir, const char *seed, char out[FM_DIGEST_HEX])
{
        fm_error e = {0};
        if (fm_tree_digest(dir, seed, out, NULL, NULL, &e) < 0)
                snprintf(out, FM_DIGEST_HEX, "error %d", e.code);
}

/* stages the tree at src as image im in store (a copy: the staging dir is
 * moved into place) */
static int stage(const char *store, fm_image *im, const char *src)
{
        char staging[600], cmd[1400];
        fm_image_staging(store, im->digest, staging, sizeof(staging));
        snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp -a %s %s/tree", staging, src, staging);
        return system(cmd);
}

int main(void)
{
        char root[] = "/tmp/fm-image.XXXXXX";
        mkdtemp(root);
        char tree[300], store[300], lxc[300], path[700];
        snprintf(tree, sizeof(tree), "%s/tree", root);
        snprintf(store, sizeof(store), "%s/store", root);
        snprintf(lxc, sizeof(lxc), "%s/lxc", root);
        snprintf(path, sizeof(path), "%s/etc", tree);
        fm_mkdir_p(path, 0755);
        fm_mkdir_p(store, 0755);
        fm_mkdir_p(lxc, 0755);
        put(tree, "etc/hostname", "edge\n");
        put(tree, "etc/motd", "hello\n");
        snprintf(path, sizeof(path), "%s/etc/link", tree);
        symlink("/etc/hostname", path);

        char d0[FM_DIGEST_HEX], d1[FM_DIGEST_HEX];
        digest(tree, NULL, d0);
        ok(strlen(d0) == 32, "a digest is 32 hex digits (%s)", d0);
        digest(tree, NULL, d1);
        ok(!strcmp(d0, d1), "the same tree, the same digest");

        snprintf(path, sizeof(path), "%s/etc/motd", tree);
        struct timeval tv[2] = {{1000, 0}, {1000, 0}};
        utimes(path, tv);
        digest(tree, NULL, d1);
        ok(!strcmp(d0, d1), "times do not count");

        put(tree, "etc/motd", "hellO\n");
        digest(tree, NULL, d1);
        ok(strcmp(d0, d1), "one byte of content changes it");
        put(tree, "etc/motd", "hello\n");
        digest(tree, NULL, d1);
        ok(!strcmp(d0, d1), "and back");

        chmod(path, 0600);
        digest(tree, NULL, d1);
        ok(strcmp(d0, d1), "a mode changes it");
        chmod(path, 0644);

        snprintf(path, sizeof(path), "%s/etc/link", tree);
        unlink(path);
        symlink("/etc/motd", path);
        digest(tree, NULL, d1);
        ok(strcmp(d0, d1), "a link target changes it");
        unlink(path);
        symlink("/etc/hostname", path);

        snprintf(path, sizeof(path), "%s/etc", tree);
        if (setxattr(path, "trusted.overlay.opaque", "y", 1, 0) == 0) {
                digest(tree, NULL, d1);
                ok(strcmp(d0, d1), "an overlay opaque mark changes it");
                removexattr(path, "trusted.overlay.opaque");
        } else {
                ok(1, "# skip: no trusted xattrs here");
        }
        digest(tree, "0123456789abcdef0123456789abcdef", d1);
        ok(strcmp(d0, d1), "the seed (an app layer's base) changes it");

        /* commit: the claim is checked */
        fm_image base = {.name = "base0", .kind = "base"};
        snprintf(base.digest, sizeof(base.digest), "%s", d0);
        fm_error e = {0};
        ok(stage(store, &base, tree) == 0 && fm_image_commit(store, &base, &e) == 0, "commit of a true claim: %s", e.msg);
        ok(fm_image_get(store, d0, NULL) == 0, "then it is in the store");

        fm_image liar = {.name = "base0", .kind = "base"};
        snprintf(liar.digest, sizeof(liar.digest), "%s", "ffffffffffffffffffffffffffffffff");
        fm_err_clear(&e);
        ok(stage(store, &liar, tree) == 0 && fm_image_commit(store, &liar, &e) == -EBADMSG,
           "a tree that does not match its claimed digest is refused (%s)", e.msg);
        ok(fm_image_get(store, liar.digest, NULL) == -ENOENT, "and not stored");

        fm_image orphan = {.name = "app0", .kind = "app"};
        snprintf(orphan.digest, sizeof(orphan.digest), "%s", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
        snprintf(orphan.base, sizeof(orphan.base), "%s", "dddddddddddddddddddddddddddddddd");
        fm_err_clear(&e);
        ok(fm_image_commit(store, &orphan, &e) == -ENOENT, "an app image without its base is refused");

        /* an app image over base0, and lookups */
        char layer[300];
        snprintf(layer, sizeof(layer), "%s/layer", root);
        fm_mkdir_p(layer, 0755);
        put(layer, "app.conf", "x=1\n");
        fm_image app = {.name = "app0", .kind = "app", .created = 2000000000};
        snprintf(app.base, sizeof(app.base), "%s", d0);
        snprintf(app.base_name, sizeof(app.base_name), "base0");
        digest(layer, d0, app.digest);
        fm_err_clear(&e);
        ok(stage(store, &app, layer) == 0 && fm_image_commit(store, &app, &e) == 0, "app commit: %s", e.msg);
        fm_image got;
        ok(fm_image_find(store, "app0", &got, &e) == 0 && !strcmp(got.digest, app.digest), "find by name");
        char prefix[9];
        snprintf(prefix, sizeof(prefix), "%.8s", d0);
        ok(fm_image_find(store, prefix, &got, &e) == 0 && !strcmp(got.name, "base0"), "find by digest prefix");
        ok(fm_image_find(store, "nothing", &got, &e) == -ENOENT, "unknown name");
        _cleanup_free_ fm_image *v = NULL;
        size_t n = 0;
        ok(fm_image_list(store, &v, &n, &e) == 0 && n == 2 && !strcmp(v[0].name, "app0"), "list: 2, newest first");

        /* removal refused while used */
        fm_err_clear(&e);
        ok(fm_image_rm(store, lxc, "base0", NULL, &e) == -EBUSY, "a base with an app image on it stays (%s)", e.msg);
        fm_clone c = {0};
        snprintf(c.app, sizeof(c.app), "%s", app.digest);
        snprintf(c.base, sizeof(c.base), "%s", d0);
        snprintf(path, sizeof(path), "%s/ct1", lxc);
        fm_mkdir_p(path, 0755);
        ok(fm_clone_write(lxc, "ct1", &c, &e) == 0, "clone link written");
        fm_clone back;
        ok(fm_clone_read(lxc, "ct1", &back, &e) == 0 && !strcmp(back.app, app.digest), "clone link read back");
        fm_err_clear(&e);
        ok(fm_image_rm(store, lxc, "app0", NULL, &e) == -EBUSY, "an app image a container uses stays (%s)", e.msg);
        char opts[1500];
        ok(fm_clone_overlay_opts(store, lxc, "ct1", &c, opts, sizeof(opts), &e) == 0 && strstr(opts, "lowerdir=") &&
                   strstr(opts, "/upper,workdir="),
           "overlay options: %s", opts);
        fm_rm_rf(path);
        ok(fm_image_rm(store, lxc, "app0", NULL, &e) == 0, "unused: removed");
        ok(fm_image_rm(store, lxc, "base0", NULL, &e) == 0, "then its base too");
        fm_rm_rf(root);
        return tap_done();
}
