#include "workload.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "util/spawn.h"
#include "lxc/container.h"
#include "lxc/ctnet.h"
#include "storage/shared.h"

static int copy_file(const char *from, const char *to, int mode, fm_error *e)
{
        _cleanup_free_ char *buf = NULL;
        int n = fm_read_file(from, &buf, 64 << 20);
        if (n < 0)
                return fm_err(e, -n, "reading %s: %s", from, strerror(-n));
        int r = fm_write_file(to, buf, (size_t)n, mode);
        if (r < 0)
                return fm_err(e, -r, "writing %s: %s", to, strerror(-r));
        return 0;
}

int fm_workload_check(const fm_workload_spec *w, fm_error *e)
{
        static const char *const kinds[] = {"busybox", "memory", "blank", "video"};
        bool known = false;
        for (size_t i = 0; w->kind && i < FM_ARRAY_SIZE(kinds); i++)
                known = known || !strcmp(w->kind, kinds[i]);
        if (!known)
                return fm_err(e, EINVAL, "unknown workload `%s' (there are: busybox, memory, blank, video)",
                              w->kind ? w->kind : "");
        if (!strcmp(w->kind, "memory")) {
                if (!(w->mem_mib >= 1 && w->mem_mib <= 65536))
                        return fm_err(e, EINVAL, "memory workload size must be 1 to 65536 MiB, not %g", w->mem_mib);
                if (!(w->dirty_mib_s >= 0 && w->dirty_mib_s <= 65536))
                        return fm_err(e, EINVAL, "dirty rate must be 0 to 65536 MiB/s, not %g", w->dirty_mib_s);
                if (w->fill && strcmp(w->fill, "random") && strcmp(w->fill, "half"))
                        return fm_err(e, EINVAL, "unknown fill `%s' (random, half)", w->fill);
        }
        return 0;
}

bool fm_workload_is_clone(const char *kind)
{
        return kind && (!strcmp(kind, "blank") || !strcmp(kind, "video"));
}

/* The LXC config of a workload; extra: more lines (may be ""). */
static int write_config(const char *lxcpath, const char *kind, const char *name, const char *rootfs, const char *init,
                        const fm_ct_net *net, bool own_dev, const char *extra, fm_error *e)
{
        /* A locally administered MAC derived from the IP: stays with the container. */
        unsigned a = 0, b = 0, c = 0, d = 0;
        sscanf(net->ip, "%u.%u.%u.%u", &a, &b, &c, &d);
        fm_ctnet own = {.prefix = net->prefix};
        snprintf(own.ip, sizeof(own.ip), "%s", net->ip);
        snprintf(own.gateway, sizeof(own.gateway), "%s", net->gateway);
        snprintf(own.mac, sizeof(own.mac), "02:fa:%02x:%02x:%02x:%02x", a & 0xff, b & 0xff, c & 0xff, d & 0xff);
        snprintf(own.bridge, sizeof(own.bridge), "%s", net->bridge);
        char nspath[128];
        fm_ctnet_path(name, nspath, sizeof(nspath));
        _cleanup_free_ char *netconf = net->plain_lxc
                ? fm_strdupf("lxc.net.0.type = veth\n"
                             "lxc.net.0.link = %s\n"
                             "lxc.net.0.flags = up\n"
                             "lxc.net.0.hwaddr = %s\n"
                             "lxc.net.0.ipv4.address = %s/%d\n"
                             "lxc.net.0.ipv4.gateway = %s\n",
                             net->bridge, own.mac, net->ip, net->prefix, net->gateway)
                : fm_strdupf("lxc.namespace.share.net = %s\n", nspath);
        if (!netconf)
                return fm_err(e, ENOMEM, "out of memory");
        if (!net->plain_lxc && fm_ctnet_write(lxcpath, name, &own, e) < 0)
                return -e->code;
        _cleanup_free_ char *conf = fm_strdupf(
                "# fastmig %s workload\n"
                "lxc.uts.name = %s\n"
                "lxc.rootfs.path = dir:%s\n"
                "lxc.init.cmd = %s\n"
                "%s"
                "lxc.tty.max = 0\n"
                "lxc.console.path = none\n"
                "lxc.pty.max = 16\n"
                "lxc.autodev = %d\n"
                "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed\n"
                "lxc.cap.drop = sys_module mac_admin mac_override sys_time\n%s",
                kind, name, rootfs, init, netconf, own_dev ? 0 : 1, extra);
        char path[700];
        snprintf(path, sizeof(path), "%s/%s/config", lxcpath, name);
        int r = conf ? fm_write_file(path, conf, strlen(conf), 0644) : -ENOMEM;
        return r < 0 ? fm_err(e, -r, "writing %s: %s", path, strerror(-r)) : 0;
}

/* The merged tree of app over its base, copied into a plain directory. */
static int flatten(const char *store, const fm_image *app, const char *dir, const char *rootfs, fm_error *e)
{
        char appf[600], basef[600];
        fm_image_file(store, app->digest, appf, sizeof(appf));
        fm_image_file(store, app->base, basef, sizeof(basef));
        _cleanup_free_ char *mnt = fm_strdupf("%s/.merged", dir);
        _cleanup_free_ char *script = fm_strdupf(
                "set -e; M=%s; mkdir -p $M/a $M/b $M/m %s; mount --make-rprivate /; "
                "mount -t squashfs -o loop,ro %s $M/a; mount -t squashfs -o loop,ro %s $M/b; "
                "mount -t overlay overlay -o ro,lowerdir=$M/a:$M/b $M/m; cp -a $M/m/. %s/",
                mnt, rootfs, appf, basef, rootfs);
        if (!mnt || !script)
                return fm_err(e, ENOMEM, "out of memory");
        char *argv[] = {"unshare", "--mount", "sh", "-c", script, NULL};
        fm_spawn_opts so = {.timeout_ms = 600000};
        int r = fm_spawn_check(argv, &so, e);
        free(so.output);
        fm_rm_rf(mnt); /* mount points only: the mounts ended with the namespace */
        return r < 0 ? fm_err_wrap(e, "copying image %s into a plain rootfs", app->name) : 0;
}

int fm_workload_create_clone(const char *lxcpath, const char *store, const char *name, const fm_ct_net *net,
                             const fm_image *app, bool flat, const char *shared, fm_error *e)
{
        char dir[512], rootfs[600], init[64], rel[200], ctrel[200], ctdir[600] = "";
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        fm_image base;
        if (strcmp(app->kind, "app") || fm_image_get(store, app->base, &base) < 0)
                return fm_err(e, ENOENT, "image %s is not an app image whose base is on this host", app->name);
        snprintf(dir, sizeof(dir), "%s/%s", lxcpath, name);
        if (fm_path_exists(dir))
                return fm_err(e, EEXIST, "container %s already exists on this host", name);
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
        if (shared) {
                flat = true;
                fm_shared_rootfs_rel(name, rel, sizeof(rel));
                snprintf(rootfs, sizeof(rootfs), "%s/%s", shared, rel);
                fm_shared_ct_rel(name, ctrel, sizeof(ctrel));
                snprintf(ctdir, sizeof(ctdir), "%s/%s", shared, ctrel);
                if (fm_path_exists(ctdir))
                        return fm_err(e, EEXIST, "the shared volume already holds a container %s (%s)", name, ctdir);
        }
        int r = fm_mkdir_p(dir, 0755);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", dir, strerror(-r));
        r = flat ? flatten(store, app, dir, rootfs, e) : fm_clone_prepare_dirs(lxcpath, name, e);
        fm_clone cl = {0};
        snprintf(cl.app, sizeof(cl.app), "%s", app->digest);
        snprintf(cl.base, sizeof(cl.base), "%s", base.digest);
        snprintf(cl.app_name, sizeof(cl.app_name), "%s", app->name);
        snprintf(cl.base_name, sizeof(cl.base_name), "%s", base.name);
        if (r == 0 && !flat)
                r = fm_clone_write(lxcpath, name, &cl, e);
        _cleanup_free_ char *hook = r == 0 ? (flat ? strdup("") : fm_clone_hook(store, lxcpath, name, &cl)) : NULL;
        if (r == 0 && !hook)
                r = fm_err(e, ENOMEM, "out of memory");
        /* the app image says what runs as init (video: a script that starts
         * nginx, then fm-seqecho); the clone's layers must be mounted here
         * for LXC's hook to stack them */
        snprintf(init, sizeof(init), "%s", app->init[0] ? app->init : "/sbin/fm-seqecho");
        if (r == 0 && !flat && (fm_image_mount(store, app->digest, e) < 0 || fm_image_mount(store, base.digest, e) < 0))
                r = -e->code;
        if (r == 0)
                /* the rootfs's /dev (no tmpfs for CRIU to tar) needs an init
                 * that leaves the host's /dev/null LXC may give it */
                r = write_config(lxcpath, app->name, name, rootfs, init, net, !net->plain_lxc && app->init_own_stdio,
                                 hook, e);
        if (r < 0) {
                fm_rm_rf(dir);
                if (ctdir[0])
                        fm_rm_rf(ctdir);
        }
        return r;
}

int fm_workload_destroy(const char *lxcpath, const char *shared, const char *name, fm_error *e)
{
        char rel[200], ctrel[200], ctdir[600] = "";
        if (shared && shared[0] && fm_name_is_valid(name)) {
                /* the tree on the volume goes only with a container that uses it */
                char conf[600], want[600];
                _cleanup_free_ char *text = NULL;
                fm_shared_rootfs_rel(name, rel, sizeof(rel));
                snprintf(conf, sizeof(conf), "%s/%s/config", lxcpath, name);
                snprintf(want, sizeof(want), "dir:%s/%s\n", shared, rel);
                fm_shared_ct_rel(name, ctrel, sizeof(ctrel));
                if (fm_read_file(conf, &text, 1 << 20) >= 0 && strstr(text, want))
                        snprintf(ctdir, sizeof(ctdir), "%s/%s", shared, ctrel);
        }
        int r = fm_ct_destroy(lxcpath, name, e);
        if (r == 0 && ctdir[0] && (r = fm_rm_rf(ctdir)) < 0)
                return fm_err(e, -r, "removing %s: %s", ctdir, strerror(-r));
        return r;
}

int fm_workload_create(const char *lxcpath, const char *name, const fm_ct_net *net, const char *seqecho_path,
                       const fm_workload_spec *w, fm_error *e)
{
        char dir[512], rootfs[600], path[700], init[160] = "/sbin/fm-seqecho";
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        int r = fm_workload_check(w, e);
        if (r < 0)
                return r;
        if (!strcmp(w->kind, "memory"))
                snprintf(init, sizeof(init), "/sbin/fm-seqecho --mem-mib %g --dirty-mib-s %g --fill %s", w->mem_mib,
                         w->dirty_mib_s, w->fill ? w->fill : "random");
        snprintf(dir, sizeof(dir), "%s/%s", lxcpath, name);
        if (fm_path_exists(dir))
                return fm_err(e, EEXIST, "container %s already exists on this host", name);
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
        static const char *dirs[] = {"bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "data", "root",
                                     "var/log", "usr/bin", "usr/sbin", "run"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(dirs); i++) {
                snprintf(path, sizeof(path), "%s/%s", rootfs, dirs[i]);
                int r = fm_mkdir_p(path, 0755);
                if (r < 0)
                        return fm_err(e, -r, "creating %s: %s", path, strerror(-r));
        }
        snprintf(path, sizeof(path), "%s/bin/busybox", rootfs);
        r = copy_file("/bin/busybox", path, 0755, e);
        if (r < 0)
                return fm_err_wrap(e, "the blank workload needs Debian's busybox-static");
        snprintf(path, sizeof(path), "%s/sbin/fm-seqecho", rootfs);
        if ((r = copy_file(seqecho_path, path, 0755, e)) < 0)
                return r;
        static const char *applets[] = {"sh", "ls", "cat", "ps", "sleep", "echo", "mount", "ip", "ifconfig",
                                        "sync", "df", "du", "head", "tail"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(applets); i++) {
                snprintf(path, sizeof(path), "%s/bin/%s", rootfs, applets[i]);
                if (symlink("busybox", path) < 0 && errno != EEXIST)
                        return fm_err(e, errno, "symlink %s: %s", path, strerror(errno));
        }
        /* /dev is the rootfs's own unless LXC mounts a tmpfs there
         * (plain_lxc), which CRIU would dump with tar while frozen */
        static const struct {
                const char *name;
                unsigned major, minor;
        } devs[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
        for (size_t i = 0; i < FM_ARRAY_SIZE(devs); i++) {
                snprintf(path, sizeof(path), "%s/dev/%s", rootfs, devs[i].name);
                if (mknod(path, S_IFCHR | 0666, makedev(devs[i].major, devs[i].minor)) < 0 && errno != EEXIST)
                        return fm_err(e, errno, "mknod %s: %s", path, strerror(errno));
                chmod(path, 0666); /* past the umask */
        }
        snprintf(path, sizeof(path), "%s/dev/pts", rootfs);
        fm_mkdir_p(path, 0755);
        snprintf(path, sizeof(path), "%s/dev/ptmx", rootfs);
        if (symlink("pts/ptmx", path) < 0 && errno != EEXIST)
                return fm_err(e, errno, "symlink %s: %s", path, strerror(errno));
        snprintf(path, sizeof(path), "%s/etc/hostname", rootfs);
        fm_write_file(path, name, strlen(name), 0644);
        snprintf(path, sizeof(path), "%s/etc/passwd", rootfs);
        fm_write_file(path, "root:x:0:0:root:/root:/bin/sh\n", 30, 0644);

        return write_config(lxcpath, w->kind, name, rootfs, init, net, !net->plain_lxc, "", e);
}
