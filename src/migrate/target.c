#include <string.h>
#include <sys/statvfs.h>

#include "lxc/container.h"
#include "migrate.h"
#include "transfer/files.h"

static void images_dir(const fm_host_paths *p, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", p->images, name);
}

/* Markers beside the images directory (which is replaced as images arrive):
 * .NAME.complete (all images verified), .NAME.abort (give up), .NAME.restoring
 * (an early restore is waiting or running). */
static void marker(const fm_host_paths *p, const char *name, const char *what, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.%s.%s", p->images, name, what);
}

static void touch(const char *path)
{
        fm_write_file(path, "", 0, 0600);
}

static void drop_images(const fm_host_paths *p, const char *name)
{
        char path[700];
        static const char *const kinds[] = {"complete", "abort"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(kinds); i++) {
                marker(p, name, kinds[i], path, sizeof(path));
                unlink(path);
        }
        images_dir(p, name, path, sizeof(path));
        fm_rm_rf(path);
}

int fm_target_prepare(const fm_host_paths *p, const char *name, const char *config, const char *src_lxcpath,
                      fm_error *e)
{
        char dir[600], path[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        snprintf(dir, sizeof(dir), "%s/%s", p->lxcpath, name);
        fm_ct_info i;
        if (fm_ct_info_get(p->lxcpath, name, &i, e) < 0)
                return -e->code;
        if (i.running)
                return fm_err(e, EEXIST, "a container named %s already runs on %s", name, p->host);
        /* A stale copy from an earlier failed run is replaced; the rootfs, if
         * present, is kept so the live rsync has less to send. */
        _cleanup_free_ char *conf = fm_ct_config_relocate(config, src_lxcpath, p->lxcpath);
        if (!conf)
                return fm_err(e, ENOMEM, "out of memory");
        snprintf(path, sizeof(path), "%s/rootfs", dir);
        int r = fm_mkdir_p(path, 0755);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", path, strerror(-r));
        snprintf(path, sizeof(path), "%s/config", dir);
        if ((r = fm_write_file(path, conf, strlen(conf), 0644)) < 0)
                return fm_err(e, -r, "writing %s: %s", path, strerror(-r));
        drop_images(p, name); /* a new migration: no stale markers */
        return 0;
}

int fm_target_receive_images(const fm_host_paths *p, const char *name, int fd, uint64_t *bytes, fm_error *e)
{
        char img[600];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        fm_rm_rf(img);
        struct statvfs sv;
        uint64_t room = 1ull << 40;
        if (statvfs(p->images, &sv) == 0)
                room = (uint64_t)sv.f_bavail * sv.f_frsize;
        int r = fm_files_recv(fd, img, room, bytes, e);
        if (r < 0) {
                fm_rm_rf(img);
                return fm_err_wrap(e, "receiving images of %s", name);
        }
        char done[700];
        marker(p, name, "complete", done, sizeof(done));
        touch(done); /* releases an early restore waiting in fm-criu-wrap */
        return 0;
}

int fm_target_restore(const fm_host_paths *p, const char *name, const char *inject, bool early, fm_error *e)
{
        char img[600], done[700], abort_m[700], busy[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        marker(p, name, "complete", done, sizeof(done));
        marker(p, name, "abort", abort_m, sizeof(abort_m));
        marker(p, name, "restoring", busy, sizeof(busy));
        if (p->test_hooks && inject && !strcmp(inject, "restore"))
                return fm_err(e, EIO, "restore failed on %s (injected by the test hook)", p->host);
        if (early && !p->criu_path_env[0])
                return fm_err(e, EOPNOTSUPP, "early restore needs fm-criu-wrap on %s", p->host);
        if (!early && !fm_path_exists(img))
                return fm_err(e, ENOENT, "no images of %s on %s", name, p->host);
        char wait_done[760], wait_abort[760];
        snprintf(wait_done, sizeof(wait_done), "FASTMIG_WAIT_COMPLETE=%s", done);
        snprintf(wait_abort, sizeof(wait_abort), "FASTMIG_WAIT_ABORT=%s", abort_m);
        const char *env[] = {p->criu_path_env, p->criu_real_env, early ? wait_done : NULL, wait_abort, NULL};
        if (early) {
                /* LXC starts up while the images are still on their way;
                 * fm-criu-wrap holds `criu restore' until they are complete.
                 * "restoring" is marked before "abort" is looked at, and abort
                 * does the reverse: one of the two always sees the other. */
                touch(busy);
                char conf[700];
                snprintf(conf, sizeof(conf), "%s/%s/config", p->lxcpath, name);
                if (fm_path_exists(abort_m) || !fm_path_exists(conf)) {
                        unlink(busy);
                        return fm_err(e, ECANCELED, "the migration of %s was aborted", name);
                }
                fm_mkdir_p(img, 0700);
        }
        int r = fm_ct_restore(p->lxcpath, name, img, p->criu_restore_conf, p->criu_path_env[0] ? env : NULL, e);
        if (early)
                unlink(busy);
        return r;
}

int fm_target_abort(const fm_host_paths *p, const char *name, fm_error *e)
{
        char img[600], abort_m[700], busy[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        marker(p, name, "abort", abort_m, sizeof(abort_m));
        marker(p, name, "restoring", busy, sizeof(busy));
        /* release an early restore that waits for images (or keep a late one
         * from starting), and let it end before the container goes */
        touch(abort_m);
        for (int i = 0; i < 3000 && fm_path_exists(busy); i++)
                usleep(10000);
        int r = fm_ct_destroy(p->lxcpath, name, e);
        drop_images(p, name); /* a restore asked for after this finds no container */
        return r;
}

int fm_target_finish(const fm_host_paths *p, const char *name, fm_error *e)
{
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        drop_images(p, name);
        return 0;
}
