/* A peer's LXC config is rebuilt from the allow-list (src/lxc/config.h):
 * what a migration needs is kept, what would act on the target host is
 * refused with its key named. */
#include <stdlib.h>

#include "lxc/config.h"
#include "lxc/ctnet.h"
#include "tap.h"

static const fm_ct_config_policy plain = {.name = "web", .rootfs = "dir:/var/lib/lxc/web/rootfs"};

/* as fastmig's workloads write it */
static const char *ours = "lxc.uts.name = web\n"
                          "lxc.rootfs.path = dir:/elsewhere/web/rootfs\n"
                          "lxc.init.cmd = /fm-seqecho --port 7000\n"
                          "lxc.net.0.type = veth\n"
                          "lxc.net.0.link = fmbr0\n"
                          "lxc.net.0.flags = up\n"
                          "lxc.net.0.hwaddr = 02:fa:0a:4e:00:0a\n"
                          "lxc.net.0.ipv4.address = 10.78.0.10/24\n"
                          "lxc.net.0.ipv4.gateway = 10.78.0.1\n"
                          "lxc.net.0.veth.pair = vethXYZ\n"
                          "lxc.tty.max = 0\n"
                          "lxc.console.path = none\n"
                          "lxc.pty.max = 16\n"
                          "lxc.autodev = 1\n"
                          "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed\n"
                          "lxc.cap.drop = sys_module mac_admin mac_override sys_time\n";

/* LXC's busybox template, its AppArmor lines removed as docs/USAGE says */
static const char *busybox = "# Template used to create this container\n"
                             "lxc.net.0.type = veth\n"
                             "lxc.net.0.link = lxcbr0\n"
                             "lxc.net.0.flags = up\n"
                             "lxc.rootfs.path = dir:/tmp/lxcp/web/rootfs\n"
                             "lxc.signal.halt = SIGUSR1\n"
                             "lxc.signal.reboot = SIGTERM\n"
                             "lxc.uts.name = \"web\"\n"
                             "lxc.autodev = 1\n"
                             "lxc.tty.max = 0\n"
                             "lxc.pty.max = 1\n"
                             "lxc.mount.auto = cgroup:mixed proc:mixed sys:ro\n"
                             "lxc.mount.entry = shm dev/shm tmpfs defaults,create=dir 0 0\n"
                             "lxc.mount.entry = mqueue dev/mqueue mqueue defaults,optional,create=dir 0 0\n"
                             "lxc.mount.entry = /lib lib none ro,bind 0 0\n"
                             "lxc.mount.entry = /usr/lib usr/lib none ro,bind 0 0\n"
                             "lxc.mount.entry = /sys/kernel/security sys/kernel/security none ro,bind,optional 0 0\n";

static int rebuild(const char *peer, const fm_ct_config_policy *pol, char **out, fm_error *e)
{
        memset(e, 0, sizeof(*e));
        return fm_ct_config_rebuild(peer, pol, out, e);
}

/* one line added to ours: refused, and the error names what */
static void refused(const char *line, const char *needle, const char *what)
{
        char peer[4096];
        snprintf(peer, sizeof(peer), "%s%s\n", ours, line);
        char *out = NULL;
        fm_error e;
        int r = rebuild(peer, &plain, &out, &e);
        ok(r < 0 && !out && strstr(e.msg, needle), "%s refused (%s)", what, e.msg);
        free(out);
}

int main(void)
{
        char *out = NULL;
        fm_error e;
        ok(rebuild(ours, &plain, &out, &e) == 0, "fastmig's own config rebuilt (%s)", e.msg);
        ok(out && strstr(out, "lxc.rootfs.path = dir:/var/lib/lxc/web/rootfs\n") && !strstr(out, "/elsewhere"),
           "the rootfs is the target's own");
        ok(out && strstr(out, "lxc.net.0.ipv4.address = 10.78.0.10/24\n") &&
                   strstr(out, "lxc.init.cmd = /fm-seqecho --port 7000\n") && strstr(out, "lxc.net.0.link = fmbr0\n"),
           "address, init and bridge kept");
        ok(out && !strstr(out, "veth.pair"), "the host-side veth name is left to the target's LXC");
        free(out);

        fm_ct_config_policy br = plain;
        br.bridge = "br-edge";
        ok(rebuild(ours, &br, &out, &e) == 0 && strstr(out, "lxc.net.0.link = br-edge\n") && !strstr(out, "fmbr0"),
           "the link is the target's bridge when it names one");
        free(out);

        ok(rebuild(busybox, &plain, &out, &e) == 0, "LXC's busybox template rebuilt (%s)", e.msg);
        ok(out && strstr(out, "lxc.uts.name = web\n") && strstr(out, "lxc.mount.entry = /lib lib none ro,bind 0 0\n"),
           "quoted name and read-only library binds kept");
        free(out);

        refused("lxc.hook.start-host = /bin/sh -c 'id > /tmp/owned'", "`lxc.hook.start-host'", "a host hook");
        refused("lxc.hook.pre-mount = /bin/true", "`lxc.hook.pre-mount'", "a hook on a plain container");
        refused("lxc.include = /etc/shadow", "`lxc.include'", "an include");
        refused("lxc.mount.entry = /etc etc none ro,bind 0 0", "allow-list", "a bind of /etc");
        refused("lxc.mount.entry = /lib/../etc x none ro,bind 0 0", "allow-list", "a bind escaping /lib by ..");
        refused("lxc.mount.entry = /lib lib none bind 0 0", "read-only", "a writable bind of /lib");
        refused("lxc.mount.entry = /lib /lib none ro,bind 0 0", "destination", "an absolute destination");
        refused("lxc.mount.entry = shm ../../dev/shm tmpfs defaults 0 0", "destination", "a destination with ..");
        refused("lxc.mount.entry = /dev/sda disk ext4 rw 0 0", "kernel file systems", "a host disk mounted");
        refused("lxc.mount.auto = shmounts:/srv", "mount.auto", "shmounts of a host path");
        refused("lxc.cgroup2.devices.allow = b 8:* rwm", "`lxc.cgroup2.devices.allow'", "device access");
        refused("lxc.namespace.share.net = 1", "`lxc.namespace.share.net'", "the host's network namespace");
        refused("lxc.apparmor.profile = unconfined", "`lxc.apparmor.profile'", "an AppArmor profile");
        refused("lxc.seccomp.profile = /etc/x", "`lxc.seccomp.profile'", "a seccomp profile path");
        refused("lxc.log.file = /etc/passwd", "`lxc.log.file'", "a log file on the host");
        refused("lxc.console.logfile = /root/.bashrc", "`lxc.console.logfile'", "a console log on the host");
        refused("lxc.sysctl.kernel.core_pattern = |/tmp/x", "`lxc.sysctl.kernel.core_pattern'", "a host-wide sysctl");
        refused("lxc.uts.name = other", "not the container's name", "another container's name");
        refused("lxc.net.0.type = phys", "only veth", "a physical interface");
        refused("lxc.net.0.ipv4.address = 10.0.0.1/33", "not an IPv4", "a bad address");
        refused("lxc.net.0.link = ../../x", "interface name", "a bad bridge name");
        refused("lxc.rootfs.options = idmap=container", "`lxc.rootfs.options'", "rootfs options");
        refused("not a line", "not `lxc.KEY = VALUE'", "a malformed line");
        refused("lxc.init.cmd = a\x01 b", "control", "a control character");

        fm_ct_config_policy clone = plain;
        clone.clone = true;
        char peer[4096];
        snprintf(peer, sizeof(peer), "%slxc.hook.version = 1\nlxc.hook.pre-mount = mount -t overlay x\n", ours);
        ok(rebuild(peer, &clone, &out, &e) == 0 && !strstr(out, "lxc.hook"), "a clone's overlay hook is dropped (the target writes its own)");
        free(out);

        /* a namespace fastmig keeps (lxc/ctnet.h): the target names its own */
        static const char *kept = "lxc.uts.name = web\n"
                                  "lxc.rootfs.path = dir:/elsewhere/web/rootfs\n"
                                  "lxc.namespace.share.net = /proc/1/ns/net\n"
                                  "lxc.tty.max = 0\n";
        fm_ct_config_policy own = plain;
        own.netns = "/run/netns/fm-ct-web";
        ok(rebuild(kept, &own, &out, &e) == 0 && strstr(out, "lxc.namespace.share.net = /run/netns/fm-ct-web\n") &&
                   !strstr(out, "/proc/1"),
           "the peer's lxc.namespace.share.net is replaced by the target's own namespace (%s)", e.msg);
        free(out);
        out = NULL;
        ok(rebuild(kept, &plain, &out, &e) < 0 && !out && strstr(e.msg, "lxc.namespace.share.net"),
           "lxc.namespace.share.net without a namespace the target makes is refused (%s)", e.msg);
        ok(rebuild(ours, &own, &out, &e) < 0 && !out && strstr(e.msg, "lxc.net.0"),
           "lxc.net lines in a container whose namespace the target makes are refused (%s)", e.msg);

        /* the namespace's description, as a peer sends it in prepare */
        static const char *const nets[] = {
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\"02:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.300\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\"02:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\"03:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\"02:fa:0a:4e:00:0a\",\"bridge\":\"../x\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":31,\"gateway\":\"10.78.0.1\",\"mac\":\"02:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"mac\":\"02:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\"02:fa:0a:4e:00:0a0\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\"-2:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
                "{\"ipv4\":\"10.78.0.10\",\"prefix\":24,\"gateway\":\"10.78.0.1\",\"mac\":\" 2:fa:0a:4e:00:0a\",\"bridge\":\"fmbr0\"}",
        };
        for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
                json_object *o = json_tokener_parse(nets[i]);
                fm_ctnet n;
                memset(&e, 0, sizeof(e));
                int r = fm_ctnet_from_json(o, &n, &e);
                json_object_put(o);
                if (i == 0)
                        ok(r == 0 && !strcmp(n.ip, "10.78.0.10") && n.prefix == 24 && !strcmp(n.bridge, "fmbr0"),
                           "a namespace description read (%s)", e.msg);
                else
                        ok(r < 0 && e.msg[0], "bad namespace description %zu refused (%s)", i, e.msg);
        }

        _cleanup_free_ char *v = fm_ct_config_value(busybox, "lxc.uts.name");
        ok(v && !strcmp(v, "web"), "a config value read with its quotes stripped");
        return tap_done();
}
