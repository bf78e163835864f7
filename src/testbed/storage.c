#include "storage.h"

#include <dirent.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "util/spawn.h"

#define VOLFILE FM_STORAGE_DIR "/glusterd.vol"
#define BRICK FM_STORAGE_DIR "/brick"
#define SOCKET FM_STORAGE_DIR "/run/glusterd.socket"
#define LOGDIR FM_STORAGE_DIR "/log"

/* glusterd's own configuration: its state under FM_STORAGE_DIR, and its
 * command socket there too (glusterd's -S is not the CLI's socket: only this
 * option moves it). */
static int write_volfile(fm_error *e)
{
        static const char text[] = "volume management\n"
                                   "    type mgmt/glusterd\n"
                                   "    option working-directory " FM_STORAGE_DIR "/glusterd\n"
                                   "    option glusterd-sockfile " SOCKET "\n"
                                   "    option transport-type socket\n"
                                   "    option transport.socket.listen-port 24007\n"
                                   "    option ping-timeout 0\n"
                                   "    option event-threads 1\n"
                                   "end-volume\n";
        int r = fm_write_file(VOLFILE, text, sizeof(text) - 1, 0644);
        return r < 0 ? fm_err(e, -r, "writing %s: %s", VOLFILE, strerror(-r)) : 0;
}

/* One gluster CLI command against our glusterd; retried while glusterd
 * starts up (it forks before it listens). */
static int gluster(fm_error *e, const char *args)
{
        int r = 0;
        for (int tries = 0; tries < 50; tries++) {
                fm_err_clear(e);
                r = fm_testbed_run(e, "gluster --mode=script --glusterd-sock=" SOCKET " --log-file=" LOGDIR "/cli.log %s",
                                   args);
                if (r == 0 || !strstr(e->msg, "onnect"))
                        break;
                usleep(100000);
        }
        return r;
}

static int mount_on(const fm_host *h, fm_error *e)
{
        int r = fm_mkdir_p(h->shared, 0755);
        if (r < 0)
                return fm_err(e, -r, "creating %s: %s", h->shared, strerror(-r));
        char netns[128], opts[300];
        snprintf(netns, sizeof(netns), "--net=/run/netns/%s", h->netns);
        snprintf(opts, sizeof(opts), "log-file=" LOGDIR "/client-%s.log", h->name);
        /* in the host's network namespace (its traffic crosses the host's
         * link), in the root mount namespace (the agents copy the mount) */
        char *argv[] = {"nsenter", netns, "mount", "-t", "glusterfs", "-o", opts,
                        FM_STORAGE_ADDR ":/" FM_STORAGE_VOLUME, (char *)h->shared, NULL};
        fm_spawn_opts o = {.timeout_ms = 30000};
        r = fm_spawn_check(argv, &o, e);
        free(o.output);
        return r < 0 ? fm_err_wrap(e, "mounting the shared volume on %s", h->name) : 0;
}

int fm_storage_up(const fm_testbed *tb, fm_error *e)
{
        static const char *const dirs[] = {BRICK, FM_STORAGE_DIR "/glusterd", LOGDIR, FM_STORAGE_DIR "/run"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(dirs); i++) {
                int r = fm_mkdir_p(dirs[i], 0755);
                if (r < 0)
                        return fm_err(e, -r, "creating %s: %s", dirs[i], strerror(-r));
        }
        int r;
        if ((r = write_volfile(e)) < 0 || (r = fm_testbed_run(e, "ip netns add " FM_STORAGE_NS)) < 0 ||
            (r = fm_testbed_run(e, "ip -n " FM_STORAGE_NS " link set lo up")) < 0 ||
            (r = fm_testbed_veth(FM_STORAGE_NS, "eth0", FM_TESTBED_CORE_NS, "store", e)) < 0 ||
            (r = fm_testbed_run(e, "ip -n " FM_STORAGE_NS " addr add " FM_STORAGE_ADDR "/24 dev eth0")) < 0 ||
            (r = fm_testbed_run(e, "ip -n " FM_TESTBED_CORE_NS " addr add " FM_STORAGE_CORE_ADDR "/24 dev store")) < 0 ||
            (r = fm_testbed_run(e, "ip -n " FM_STORAGE_NS " link set eth0 up")) < 0 ||
            (r = fm_testbed_run(e, "ip -n " FM_TESTBED_CORE_NS " link set store up")) < 0 ||
            (r = fm_testbed_run(e, "ip -n " FM_STORAGE_NS " route add default via " FM_STORAGE_CORE_ADDR)) < 0 ||
            (r = fm_testbed_shape(FM_STORAGE_NS, "eth0", tb->link_mbit, e)) < 0 ||
            (r = fm_testbed_shape(FM_TESTBED_CORE_NS, "store", tb->link_mbit, e)) < 0)
                return fm_err_wrap(e, "the storage host");
        if ((r = fm_testbed_run(e, "ip netns exec " FM_STORAGE_NS " glusterd -f " VOLFILE " -p " FM_STORAGE_DIR
                                   "/run/glusterd.pid -l " LOGDIR "/glusterd.log")) < 0)
                return fm_err_wrap(e, "starting glusterd on the storage host");
        /* flush-behind off: a close returns once the file's writes are on the
         * brick, so that after the freeze only files the service holds open
         * can have writes under way (the migration fsyncs those); the
         * metadata-cache group (GlusterFS's own set for small-file work:
         * clients cache stat results, the bricks tell them when a file
         * changes): CRIU's dump and restore look up every file the service
         * maps or holds open, a round trip each without it (docs/SHARED.md) */
        if ((r = gluster(e, "volume create " FM_STORAGE_VOLUME " " FM_STORAGE_ADDR ":" BRICK " force")) < 0 ||
            (r = gluster(e, "volume set " FM_STORAGE_VOLUME " performance.flush-behind off")) < 0 ||
            (r = gluster(e, "volume set " FM_STORAGE_VOLUME " group metadata-cache")) < 0 ||
            (r = gluster(e, "volume start " FM_STORAGE_VOLUME)) < 0)
                return fm_err_wrap(e, "creating the shared volume");
        for (int i = 0; i < tb->hosts; i++)
                if ((r = mount_on(&tb->host[i], e)) < 0)
                        return r;
        return 0;
}

/* The brick process's files outside FM_STORAGE_DIR (glusterd puts them in
 * the system's gluster directories whatever its vol file says). */
static void note_brick_files(fm_strv *files)
{
        fm_spawn_opts o = {.timeout_ms = 5000};
        char *argv[] = {"ip", "netns", "pids", FM_STORAGE_NS, NULL};
        if (fm_spawn(argv, &o) != 0 || !o.output) {
                free(o.output);
                return;
        }
        char *save = NULL;
        for (char *t = strtok_r(o.output, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%s/cmdline", t);
                _cleanup_free_ char *cmd = NULL;
                int n = fm_read_file(path, &cmd, 1 << 16);
                /* NUL-separated arguments: the value after -S, -p and -l */
                for (char *a = cmd; n > 0 && a < cmd + n; a += strlen(a) + 1) {
                        char *next = a + strlen(a) + 1;
                        if (next < cmd + n && (!strcmp(a, "-S") || !strcmp(a, "-p") || !strcmp(a, "-l")) &&
                            strncmp(next, FM_STORAGE_DIR, strlen(FM_STORAGE_DIR)))
                                fm_strv_push(files, next);
                }
        }
        free(o.output);
}

void fm_storage_down(const fm_testbed *tb)
{
        for (int i = 0; i < tb->hosts; i++) {
                char path[300];
                snprintf(path, sizeof(path), FM_TESTBED_ROOT "/mec%d/shared", i + 1);
                /* lazily: the client may be gone or the storage cut */
                if (fm_testbed_is_mountpoint(path))
                        umount2(path, MNT_DETACH);
        }
        fm_strv files = {0};
        note_brick_files(&files);
        /* the FUSE clients live in the hosts' namespaces: ended with them */
        fm_testbed_kill_netns(FM_STORAGE_NS);
        for (size_t i = 0; i < files.n; i++)
                unlink(files.v[i]);
        fm_strv_free(&files);
        fm_rm_rf("/run/gluster/vols/" FM_STORAGE_VOLUME);
}

int fm_storage_link(bool up, fm_error *e)
{
        return fm_testbed_run(e, "ip -n " FM_TESTBED_CORE_NS " link set store %s", up ? "up" : "down");
}

int fm_storage_reach(const fm_host *h, bool up, fm_error *e)
{
        return fm_testbed_run(e, "ip -n %s route %s blackhole " FM_STORAGE_ADDR "/32", h->netns, up ? "del" : "add");
}
