#include "build.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/spawn.h"

void fm_video_fill(uint64_t seed, uint64_t offset, uint8_t *buf, size_t len)
{
        size_t i = 0;
        while (i < len) {
                uint64_t at = offset + i, word_at = at & ~7ull;
                uint64_t w = XXH64(&word_at, sizeof(word_at), seed);
                uint8_t b[8];
                memcpy(b, &w, 8);
                for (size_t k = at - word_at; k < 8 && i < len; k++)
                        buf[i++] = b[k];
        }
}

static void say(const fm_build_opts *o, const char *what)
{
        if (o->progress)
                o->progress(what, o->pdata);
}

/* The Debian mirror of this machine's own apt sources. */
static void debian_mirror(char *buf, size_t n)
{
        snprintf(buf, n, "http://deb.debian.org/debian");
        static const char *const files[] = {"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"};
        for (size_t f = 0; f < FM_ARRAY_SIZE(files); f++) {
                FILE *fp = fopen(files[f], "re");
                char line[512], uri[400];
                while (fp && fgets(line, sizeof(line), fp)) {
                        if ((sscanf(line, "URIs: %399s", uri) == 1 || sscanf(line, "deb %399s bookworm", uri) == 1) &&
                            !strstr(uri, "security")) {
                                snprintf(buf, n, "%s", uri);
                                fclose(fp);
                                return;
                        }
                }
                if (fp)
                        fclose(fp);
        }
}

/* STORE/.build-XXXXXX with tree/ (and work/, merged/ for overlay builds) */
static int build_dir(const char *store, char *buf, size_t n, fm_error *e)
{
        int r = fm_mkdir_p(store, 0755);
        if (r < 0)
                return fm_err(e, -r, "creating the image store %s: %s", store, strerror(-r));
        snprintf(buf, n, "%s/.build-XXXXXX", store);
        if (!mkdtemp(buf))
                return fm_err(e, errno, "creating a build directory in %s: %s", store, strerror(errno));
        static const char *const sub[] = {"tree", "work", "merged", "file"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(sub); i++) {
                _cleanup_free_ char *p = fm_strdupf("%s/%s", buf, sub[i]);
                if (!p || mkdir(p, 0755) < 0)
                        return fm_err(e, errno, "creating %s: %s", p ? p : "?", strerror(errno));
        }
        return 0;
}

static _Thread_local uint64_t counted, counted_bytes;

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)path;
        (void)flag;
        counted += ftw->level > 0;
        if (S_ISREG(st->st_mode))
                counted_bytes += (uint64_t)st->st_size;
        return 0;
}

/* The built tree into one squashfs file (its digest names the image), then
 * into the store like any received image. zstd at level 3: about as fast to
 * make as lz4 here and a third smaller on an OS tree; the video, random
 * bytes, stays as it is. */
static int build_finish(const char *store, const char *bdir, fm_image *im, fm_build_progress say_fn, void *pdata,
                        fm_error *e)
{
        char tree[600], file[700], staging[600];
        snprintf(tree, sizeof(tree), "%s/tree", bdir);
        snprintf(file, sizeof(file), "%s/" FM_IMAGE_FILE, bdir);
        counted = counted_bytes = 0;
        nftw(tree, count_entry, 64, FTW_PHYS);
        im->files = counted;
        im->tree_bytes = counted_bytes;
        if (say_fn)
                say_fn("mksquashfs (zstd)", pdata);
        char *argv[] = {"mksquashfs", tree, file, "-noappend", "-quiet", "-no-progress", "-xattrs", "-comp", "zstd",
                        "-Xcompression-level", "3", NULL};
        fm_spawn_opts so = {.timeout_ms = 1800 * 1000};
        int r = fm_spawn_check(argv, &so, e);
        free(so.output);
        if (r < 0)
                return fm_err_wrap(e, "making the image file of %s (is squashfs-tools installed? `make setup`)", im->name);
        if ((r = fm_file_digest(file, im->base[0] ? im->base : NULL, im->digest, &im->bytes, e)) < 0)
                return r;
        _cleanup_free_ char *work = fm_strdupf("%s/work", bdir), *merged = fm_strdupf("%s/merged", bdir);
        _cleanup_free_ char *basemnt = fm_strdupf("%s/base", bdir);
        fm_rm_rf(work);
        fm_rm_rf(merged);
        rmdir(basemnt);
        fm_rm_rf(tree); /* in the file now; tree/ becomes its mount point */
        fm_image_staging(store, im->digest, staging, sizeof(staging));
        fm_rm_rf(staging);
        if (rename(bdir, staging) < 0)
                return fm_err(e, errno, "moving %s to %s: %s", bdir, staging, strerror(errno));
        return fm_image_commit(store, im, NULL, e);
}

static int copy_file(const char *from, const char *to, int mode, fm_error *e)
{
        char *argv[] = {"cp", "--", (char *)from, (char *)to, NULL};
        fm_spawn_opts so = {.timeout_ms = 60000};
        int r = fm_spawn_check(argv, &so, e);
        free(so.output);
        if (r == 0 && chmod(to, (mode_t)mode) < 0)
                r = fm_err(e, errno, "chmod %s: %s", to, strerror(errno));
        return r;
}

static int write_at(const char *root, const char *rel, const char *text, int mode, fm_error *e)
{
        _cleanup_free_ char *path = fm_strdupf("%s%s", root, rel);
        _cleanup_free_ char *dir = path ? strdup(path) : NULL;
        if (!dir)
                return fm_err(e, ENOMEM, "out of memory");
        *strrchr(dir, '/') = '\0';
        int r = fm_mkdir_p(dir, 0755);
        if (r == 0)
                r = fm_write_file(path, text, strlen(text), mode);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", path, strerror(-r)) : 0;
}

static int build_base(const char *store, const char *name, const fm_build_opts *o, fm_image *im, fm_error *e)
{
        char bdir[600], tree[700], mirror[400];
        int r = build_dir(store, bdir, sizeof(bdir), e);
        if (r < 0)
                return r;
        snprintf(tree, sizeof(tree), "%s/tree", bdir);
        debian_mirror(mirror, sizeof(mirror));
        fm_mkdir_p(FM_DEB_CACHE, 0755);
        say(o, "debootstrap --variant=minbase bookworm (about 30 s; packages cached in " FM_DEB_CACHE ")");
        char *argv[] = {"debootstrap", "--variant=minbase", "--cache-dir=" FM_DEB_CACHE, "bookworm", tree, mirror, NULL};
        fm_spawn_opts so = {.timeout_ms = 1800 * 1000, .output_max = 1 << 20};
        r = fm_spawn_check(argv, &so, e);
        free(so.output);
        if (r < 0) {
                fm_rm_rf(bdir);
                return fm_err_wrap(e, "building base image %s (is debootstrap installed? `make setup`)", name);
        }
        /* what apt can make again: downloaded packages, its binary caches */
        _cleanup_free_ char *clean = fm_strdupf("rm -rf %s/var/cache/apt/archives/*.deb %s/var/cache/apt/*.bin", tree, tree);
        char *sh[] = {"sh", "-c", clean, NULL};
        fm_spawn_opts co = {.timeout_ms = 60000};
        fm_spawn(sh, &co);
        free(co.output);
        memset(im, 0, sizeof(*im));
        snprintf(im->name, sizeof(im->name), "%s", name);
        snprintf(im->kind, sizeof(im->kind), "base");
        if ((r = build_finish(store, bdir, im, o->progress, o->pdata, e)) < 0)
                fm_rm_rf(bdir);
        return r;
}

static const char video_nginx_conf[] =
        "# fastmig video workload. `user root`: CRIU must read the workers'\n"
        "# resource limits, which needs CAP_SYS_RESOURCE when they run under\n"
        "# another uid (docs/IMAGES.md).\n"
        "user root;\n"
        "worker_processes 1;\n"
        "pid /run/nginx.pid;\n"
        "error_log /var/log/nginx/error.log;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "    access_log off;\n"
        "    sendfile on;\n"
        "    default_type application/octet-stream;\n"
        "    server {\n"
        "        listen 80 default_server;\n"
        "        root /srv/video;\n"
        "    }\n"
        "}\n";

/* nginx daemonizes; fm-seqecho stays PID 1 (the probe's service) */
/* its own /dev/null first: LXC may have given it the host's (a container
 * without a /dev tmpfs), which CRIU cannot dump */
static const char video_init[] = "#!/bin/sh\nexec </dev/null >/dev/null 2>&1\n/usr/sbin/nginx\nexec /sbin/fm-seqecho\n";

static int write_video(const char *tree, const fm_build_opts *o, fm_error *e)
{
        _cleanup_free_ char *dir = fm_strdupf("%s/srv/video", tree);
        _cleanup_free_ char *path = fm_strdupf("%s%s", tree, FM_VIDEO_PATH);
        if (!dir || !path)
                return fm_err(e, ENOMEM, "out of memory");
        fm_mkdir_p(dir, 0755);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return fm_err(e, errno, "creating %s: %s", path, strerror(errno));
        uint64_t size = o->video_bytes ? o->video_bytes : 240000000ull;
        uint64_t seed = o->video_seed ? o->video_seed : FM_VIDEO_SEED;
        _cleanup_free_ uint8_t *buf = malloc(1 << 20);
        if (!buf)
                return fm_err(e, ENOMEM, "out of memory");
        for (uint64_t off = 0; off < size;) {
                size_t n = size - off < (1 << 20) ? (size_t)(size - off) : (1 << 20);
                fm_video_fill(seed, off, buf, n);
                int r = fm_write_all(fd, buf, n);
                if (r < 0)
                        return fm_err(e, -r, "writing %s: %s", path, strerror(-r));
                off += n;
        }
        return 0;
}

/* apt-get install in a chroot on an overlay of the base: what it writes
 * lands in tree/, which becomes the layer. */
static int apt_install(const char *bdir, const char *base_file, const char *pkgs, fm_error *e)
{
        _cleanup_free_ char *script = fm_strdupf(
                "set -e; M=%s/merged; B=%s/base\n"
                "mount --make-rprivate /\n"
                "mkdir -p $B; mount -t squashfs -o loop,ro %s $B\n"
                "mount -t overlay overlay -o lowerdir=$B,upperdir=%s/tree,workdir=%s/work $M\n"
                "mount -t proc proc $M/proc\n"
                "mkdir -p " FM_DEB_CACHE "/partial\n"
                "mount --bind " FM_DEB_CACHE " $M/var/cache/apt/archives\n"
                "mount --bind /etc/resolv.conf $M/etc/resolv.conf\n"
                "printf '#!/bin/sh\\nexit 101\\n' > $M/usr/sbin/policy-rc.d; chmod 755 $M/usr/sbin/policy-rc.d\n"
                "chroot $M env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                "apt-get install -y -q --no-install-recommends %s\n"
                "rm -f $M/usr/sbin/policy-rc.d $M/var/cache/apt/*.bin\n",
                bdir, bdir, base_file, bdir, bdir, pkgs);
        char *argv[] = {"unshare", "--mount", "sh", "-c", script, NULL};
        fm_spawn_opts so = {.timeout_ms = 1800 * 1000, .output_max = 1 << 20};
        int r = fm_spawn_check(argv, &so, e);
        free(so.output);
        return r < 0 ? fm_err_wrap(e, "apt-get install %s", pkgs) : 0;
}

static int build_app(const char *store, const char *kind, const char *name, const fm_image *base,
                     const fm_build_opts *o, fm_image *im, fm_error *e)
{
        char bdir[600], tree[700], base_file[600], msg[200];
        int r = build_dir(store, bdir, sizeof(bdir), e);
        if (r < 0)
                return r;
        snprintf(tree, sizeof(tree), "%s/tree", bdir);
        fm_image_file(store, base->digest, base_file, sizeof(base_file));
        bool video = !strcmp(kind, "video");
        if (video) {
                snprintf(msg, sizeof(msg), "apt-get install nginx-light over %s", base->name);
                say(o, msg);
                r = apt_install(bdir, base_file, "nginx-light", e);
                if (r == 0)
                        r = write_at(tree, "/etc/nginx/nginx.conf", video_nginx_conf, 0644, e);
                if (r == 0)
                        r = write_at(tree, "/sbin/fm-init", video_init, 0755, e);
                if (r == 0) {
                        say(o, "writing the video file");
                        r = write_video(tree, o, e);
                }
        }
        _cleanup_free_ char *sbin = fm_strdupf("%s/sbin", tree), *data = fm_strdupf("%s/data", tree);
        _cleanup_free_ char *bin = fm_strdupf("%s/sbin/fm-seqecho", tree);
        if (r == 0 && (fm_mkdir_p(sbin, 0755) < 0 || fm_mkdir_p(data, 0755) < 0))
                r = fm_err(e, EIO, "creating directories in %s", tree);
        if (r == 0)
                r = copy_file(o->seqecho_path, bin, 0755, e);
        if (r == 0 && o->video_seed) {
                /* a build of one's own: its seed marks it (another digest) */
                char seed[32];
                snprintf(seed, sizeof(seed), "%llu\n", (unsigned long long)o->video_seed);
                r = write_at(tree, "/etc/fastmig-build-seed", seed, 0644, e);
        }
        if (r < 0) {
                fm_rm_rf(bdir);
                return fm_err_wrap(e, "building app image %s", name);
        }
        memset(im, 0, sizeof(*im));
        snprintf(im->name, sizeof(im->name), "%s", name);
        snprintf(im->kind, sizeof(im->kind), "app");
        snprintf(im->base, sizeof(im->base), "%s", base->digest);
        snprintf(im->base_name, sizeof(im->base_name), "%s", base->name);
        snprintf(im->init, sizeof(im->init), video ? "/sbin/fm-init" : "/sbin/fm-seqecho");
        im->init_own_stdio = true; /* fm-seqecho as PID 1, and fm-init, reopen theirs */
        if ((r = build_finish(store, bdir, im, o->progress, o->pdata, e)) < 0)
                fm_rm_rf(bdir);
        return r;
}

int fm_image_build(const char *store, const char *kind, const char *name, const fm_build_opts *o, fm_image *out,
                   bool *built, fm_error *e)
{
        bool is_base = !strcmp(kind, FM_BASE_IMAGE);
        if (!is_base && strcmp(kind, "blank") && strcmp(kind, "video"))
                return fm_err(e, EINVAL, "no recipe for image `%s' (there are: " FM_BASE_IMAGE ", blank, video)", kind);
        if (!name)
                name = kind;
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad image name `%s'", name);
        *built = false;
        fm_error ignore = {0};
        if (fm_image_find(store, name, out, &ignore) == 0)
                return 0;
        if (is_base) {
                *built = true;
                return build_base(store, name, o, out, e);
        }
        if (!o->seqecho_path || !fm_path_exists(o->seqecho_path))
                return fm_err(e, ENOENT, "fm-seqecho not found (build first)");
        fm_image base;
        bool base_built = false;
        int r = fm_image_build(store, FM_BASE_IMAGE, NULL, o, &base, &base_built, e);
        if (r < 0)
                return r;
        *built = true;
        return build_app(store, kind, name, &base, o, out, e);
}
