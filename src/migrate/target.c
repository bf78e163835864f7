#include <string.h>
#include <sys/statvfs.h>

#include "lxc/container.h"
#include "migrate.h"
#include "transfer/files.h"

static void images_dir(const fm_host_paths *p, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", p->images, name);
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
        char img[600];
        images_dir(p, name, img, sizeof(img));
        fm_rm_rf(img);
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
        return 0;
}

int fm_target_restore(const fm_host_paths *p, const char *name, const char *inject, fm_error *e)
{
        char img[600];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        if (p->test_hooks && inject && !strcmp(inject, "restore"))
                return fm_err(e, EIO, "restore failed on %s (injected by the test hook)", p->host);
        if (!fm_path_exists(img))
                return fm_err(e, ENOENT, "no images of %s on %s", name, p->host);
        const char *env[] = {p->criu_path_env[0] ? p->criu_path_env : NULL, p->criu_real_env, NULL};
        return fm_ct_restore(p->lxcpath, name, img, p->criu_restore_conf, env[0] ? env : NULL, e);
}

int fm_target_abort(const fm_host_paths *p, const char *name, fm_error *e)
{
        char img[600];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        fm_rm_rf(img);
        return fm_ct_destroy(p->lxcpath, name, e);
}

int fm_target_finish(const fm_host_paths *p, const char *name, fm_error *e)
{
        char img[600];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        fm_rm_rf(img);
        return 0;
}
