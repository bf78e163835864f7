#include "netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* A name in /run/netns, or (absolute) a namespace file: /proc/PID/ns/net. */
static int open_netns(const char *netns, fm_error *e)
{
        char path[256];
        if (netns && netns[0] == '/')
                snprintf(path, sizeof(path), "%s", netns);
        else if (!fm_name_is_valid(netns))
                return fm_err(e, EINVAL, "bad network namespace name `%s'", netns);
        else
                snprintf(path, sizeof(path), "/run/netns/%s", netns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fm_err(e, errno, "opening network namespace %s: %s", path, strerror(errno));
        return fd;
}

int fm_netns_enter_net(const char *netns, fm_error *e)
{
        _cleanup_close_ int fd = open_netns(netns, e);
        if (fd < 0)
                return fd;
        if (setns(fd, CLONE_NEWNET) < 0)
                return fm_err(e, errno, "entering network namespace %s: %s", netns, strerror(errno));
        return 0;
}

/* A mount namespace of the caller's own, a slave of the one it was in:
 * mounts made there later still reach us (the images tmpfs), ours never
 * leak out. */
static int own_mount_ns(fm_error *e)
{
        if (unshare(CLONE_NEWNS) < 0)
                return fm_err(e, errno, "unshare(CLONE_NEWNS): %s", strerror(errno));
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return fm_err(e, errno, "making / a slave mount: %s", strerror(errno));
        return 0;
}

int fm_netns_enter_host(const char *netns, fm_error *e)
{
        int r = own_mount_ns(e);
        if (r < 0)
                return r;
        r = fm_netns_enter_net(netns, e);
        if (r < 0)
                return r;
        char aside[] = "/tmp/fastmig-cgroup.XXXXXX";
        if (!mkdtemp(aside))
                return fm_err(e, errno, "mkdtemp: %s", strerror(errno));
        r = 0;
        if (mount("/sys/fs/cgroup", aside, NULL, MS_BIND | MS_REC, NULL) < 0)
                r = fm_err(e, errno, "binding /sys/fs/cgroup aside: %s", strerror(errno));
        else if (umount2("/sys", MNT_DETACH) < 0)
                r = fm_err(e, errno, "detaching /sys: %s", strerror(errno));
        else if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                r = fm_err(e, errno, "mounting sysfs for %s: %s", netns, strerror(errno));
        else if (mount(aside, "/sys/fs/cgroup", NULL, MS_MOVE, NULL) < 0)
                r = fm_err(e, errno, "moving cgroup mounts back: %s", strerror(errno));
        rmdir(aside);
        return r;
}

int fm_netns_socket(const char *netns, int domain, int type, int proto, fm_error *e)
{
        if (!netns || !*netns) { /* this one */
                int fd = socket(domain, type | SOCK_CLOEXEC, proto);
                return fd < 0 ? fm_err(e, errno, "socket: %s", strerror(errno)) : fd;
        }
        _cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return fm_err(e, errno, "opening own network namespace: %s", strerror(errno));
        int r = fm_netns_enter_net(netns, e);
        if (r < 0)
                return r;
        int fd = socket(domain, type | SOCK_CLOEXEC, proto);
        int err = errno;
        if (setns(self, CLONE_NEWNET) < 0)
                abort(); /* cannot continue in the wrong namespace */
        if (fd < 0)
                return fm_err(e, err, "socket in %s: %s", netns, strerror(err));
        return fd;
}

int fm_netns_private_run(fm_error *e)
{
        /* whatever it was started in: on a real host that is the host's,
         * whose /run must stay as it is (in the testbed the agent already
         * has one of its own; a copy of it changes nothing) */
        int r = own_mount_ns(e);
        if (r < 0)
                return r;
        char aside[] = "/tmp/fastmig-run.XXXXXX";
        if (!mkdtemp(aside))
                return fm_err(e, errno, "mkdtemp: %s", strerror(errno));
        if (mount("/run", aside, NULL, MS_BIND | MS_REC, NULL) < 0) {
                r = fm_err(e, errno, "binding /run aside: %s", strerror(errno));
                goto out;
        }
        if (mount("fastmig-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m") < 0) {
                r = fm_err(e, errno, "mounting a tmpfs on /run: %s", strerror(errno));
                umount2(aside, MNT_DETACH);
                goto out;
        }
        DIR *d = opendir(aside);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strncmp(de->d_name, "criu.kdat", 9))
                        continue;
                char from[512], to[512];
                snprintf(from, sizeof(from), "%s/%s", aside, de->d_name);
                snprintf(to, sizeof(to), "/run/%s", de->d_name);
                struct stat st;
                if (lstat(from, &st) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        char target[512];
                        ssize_t n = readlink(from, target, sizeof(target) - 1);
                        if (n > 0) {
                                target[n] = '\0';
                                if (symlink(target, to) < 0) {}
                        }
                        continue;
                }
                if (S_ISDIR(st.st_mode))
                        mkdir(to, st.st_mode & 07777);
                else
                        close(open(to, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
                if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) < 0 && r == 0)
                        r = fm_err(e, errno, "binding %s back: %s", to, strerror(errno));
        }
        if (d)
                closedir(d);
        umount2(aside, MNT_DETACH);
out:
        rmdir(aside);
        return r;
}
