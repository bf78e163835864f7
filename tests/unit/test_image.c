/* The image store's pure parts on scratch directories: digests (what
 * changes them), commit (a claimed digest is checked), lookup by name and
 * digest prefix, removal refused while in use. Image files here are plain
 * bytes: nothing is mounted. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/store.h"
#include "tap.h"

static void put(const char *path, const char *text)
{
        fm_write_file(path, text, strlen(text), 0644);
}

static void digest(const char *path, const char *seed, char out[FM_DIGEST_HEX])
{
        fm_error e = {0};
        if (fm_file_digest(path, seed, out, NULL, &e) < 0)
                snprintf(out, FM_DIGEST_HEX, "error %d", e.code);
}

/* stages the file at src as image im in store */
static int stage(const char *store, fm_image *im, const char *src)
{
        char staging[600], cmd[1400];
        fm_image_staging(store, im->digest, staging, sizeof(staging));
        snprintf(cmd, sizeof(cmd), "mkdir -p %s/file && cp %s %s/" FM_IMAGE_FILE, staging, src, staging);
        return system(cmd);
}

/* A follower that watches a file written in pieces (with pauses, from
 * before it exists) gives the digest of the whole file; one whose file
 * shrank behind it gives none. */
static void test_follower(const char *root)
{
        char path[400], want[FM_DIGEST_HEX] = "", got[FM_DIGEST_HEX] = "";
        snprintf(path, sizeof(path), "%s/growing", root);
        fm_digest_follower *f = fm_digest_follow(path, "seed");
        ok(f != NULL, "a follower starts before its file exists");
        usleep(5000);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        static uint8_t block[3 << 20];
        for (size_t i = 0; i < sizeof(block); i++)
                block[i] = (uint8_t)(i * 2654435761u >> 13);
        for (size_t off = 0; off < sizeof(block); off += 700001) { /* odd sizes across its 1 MiB reads */
                size_t n = sizeof(block) - off < 700001 ? sizeof(block) - off : 700001;
                ok(pwrite(fd, block + off, n, (off_t)off) == (ssize_t)n, "write at %zu", off);
                usleep(3000);
        }
        close(fd);
        uint64_t bytes = 0;
        ok(f && fm_digest_follow_end(f, got, &bytes) == 0, "the follower gives a digest");
        digest(path, "seed", want);
        ok(!strcmp(got, want) && bytes == sizeof(block), "it is the digest of the whole file (%s, %s)", got, want);

        f = fm_digest_follow(path, "seed");
        usleep(20000); /* it has read the 3 MiB */
        ok(truncate(path, 1000) == 0, "truncate");
        ok(f && fm_digest_follow_end(f, got, NULL) == -EAGAIN, "a file that shrank: no digest, hash it anew");
        fm_digest_follow_cancel(fm_digest_follow(path, NULL)); /* cancel without an end */
}

/* What a peer could plant where an image file goes: a symlink (to a
 * secret, or to /dev/zero that never ends), a FIFO (open would block).
 * Neither is read: refused at once. */
static void test_not_regular(const char *root)
{
        char good[600], sym[600], fifo[600], hex[FM_DIGEST_HEX];
        snprintf(good, sizeof(good), "%s/good", root);
        snprintf(sym, sizeof(sym), "%s/link", root);
        snprintf(fifo, sizeof(fifo), "%s/fifo", root);
        put(good, "content");
        symlink("/dev/zero", sym);
        mkfifo(fifo, 0600);
        fm_error e = {0};
        double t0 = fm_now_ms();
        ok(fm_file_digest(sym, "", hex, NULL, &e) < 0, "a symlink to /dev/zero is not followed: %s", e.msg);
        ok(fm_file_digest(fifo, "", hex, NULL, &e) == -EINVAL, "a FIFO is refused: %s", e.msg);
        ok(fm_now_ms() - t0 < 1000, "at once (%.0f ms)", fm_now_ms() - t0);
        ok(fm_file_digest(good, "", hex, NULL, &e) == 0, "a regular file is read");

        /* rsync without --inplace renames a new file over the one a
         * follower hashed: its digest is not the file's any more */
        char other[600];
        snprintf(other, sizeof(other), "%s/other", root);
        put(good, "the real image");
        fm_digest_follower *f = fm_digest_follow(good, "");
        usleep(50000);
        put(other, "the fake image"); /* the same size */
        ok(rename(other, good) == 0, "another file renamed over it");
        uint64_t n = 0;
        ok(f && fm_digest_follow_end(f, hex, &n) == -EAGAIN, "the follower gives no digest (hash it anew)");
}

int main(void)
{
        char root[] = "/tmp/fm-image.XXXXXX";
        mkdtemp(root);
        char tree[300], store[300], lxc[300], path[700];
        snprintf(tree, sizeof(tree), "%s/base.img", root);
        snprintf(store, sizeof(store), "%s/store", root);
        snprintf(lxc, sizeof(lxc), "%s/lxc", root);
        fm_mkdir_p(store, 0755);
        fm_mkdir_p(lxc, 0755);
        put(tree, "an image file\n");

        char d0[FM_DIGEST_HEX], d1[FM_DIGEST_HEX];
        digest(tree, NULL, d0);
        ok(strlen(d0) == 32, "a digest is 32 hex digits (%s)", d0);
        digest(tree, NULL, d1);
        ok(!strcmp(d0, d1), "the same file, the same digest");
        put(tree, "an image filE\n");
        digest(tree, NULL, d1);
        ok(strcmp(d0, d1), "one byte changes it");
        put(tree, "an image file\n");
        digest(tree, "0123456789abcdef0123456789abcdef", d1);
        ok(strcmp(d0, d1), "the seed (an app layer's base) changes it");
        digest("/nonexistent/file", NULL, d1);
        ok(!strncmp(d1, "error", 5), "a missing file is an error");

        /* commit: the claim is checked */
        fm_image base = {.name = "base0", .kind = "base"};
        snprintf(base.digest, sizeof(base.digest), "%s", d0);
        fm_error e = {0};
        ok(stage(store, &base, tree) == 0 && fm_image_commit(store, &base, NULL, &e) == 0, "commit of a true claim: %s", e.msg);
        ok(fm_image_get(store, d0, NULL) == 0, "then it is in the store");

        fm_image liar = {.name = "base0", .kind = "base"};
        snprintf(liar.digest, sizeof(liar.digest), "%s", "ffffffffffffffffffffffffffffffff");
        fm_err_clear(&e);
        ok(stage(store, &liar, tree) == 0 && fm_image_commit(store, &liar, NULL, &e) == -EBADMSG,
           "a tree that does not match its claimed digest is refused (%s)", e.msg);
        ok(fm_image_get(store, liar.digest, NULL) == -ENOENT, "and not stored");

        fm_image orphan = {.name = "app0", .kind = "app"};
        snprintf(orphan.digest, sizeof(orphan.digest), "%s", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
        snprintf(orphan.base, sizeof(orphan.base), "%s", "dddddddddddddddddddddddddddddddd");
        fm_err_clear(&e);
        ok(fm_image_commit(store, &orphan, NULL, &e) == -ENOENT, "an app image without its base is refused");

        /* an app image over base0, and lookups */
        char layer[300];
        snprintf(layer, sizeof(layer), "%s/app.img", root);
        put(layer, "an app layer\n");
        fm_image app = {.name = "app0", .kind = "app", .created = 2000000000};
        snprintf(app.base, sizeof(app.base), "%s", d0);
        snprintf(app.base_name, sizeof(app.base_name), "base0");
        digest(layer, d0, app.digest);
        fm_err_clear(&e);
        ok(stage(store, &app, layer) == 0 && fm_image_commit(store, &app, NULL, &e) == 0, "app commit: %s", e.msg);
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
        _cleanup_free_ char *hook = fm_clone_hook(store, lxc, "ct1", &c);
        ok(hook && strstr(hook, "lxc.hook.pre-mount = mount -t overlay") && strstr(hook, "/upper,workdir=") &&
                   strstr(hook, app.digest),
           "the clone's LXC hook stacks its layers: %s", hook ? hook : "(null)");
        fm_rm_rf(path);
        ok(fm_image_rm(store, lxc, "app0", NULL, &e) == 0, "unused: removed");
        ok(fm_image_rm(store, lxc, "base0", NULL, &e) == 0, "then its base too");
        test_follower(root);
        test_not_regular(root);
        fm_rm_rf(root);
        return tap_done();
}
