#include "stream.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/proto.h"

void fm_stream_status_path(const char *name, char *buf, size_t n)
{
        snprintf(buf, n, FM_STREAM_DIR "/stream-%s.json", name);
}

json_object *fm_stream_status(const char *name)
{
        char path[400];
        fm_stream_status_path(name, path, sizeof(path));
        _cleanup_free_ char *text = NULL;
        int n = fm_read_file(path, &text, 1 << 16);
        json_object *o = NULL;
        if (n <= 0 || fm_msg_parse(text, (size_t)n, &o, NULL) < 0)
                return NULL;
        return o;
}

static int64_t geti(json_object *o, const char *k)
{
        json_object *v = NULL;
        return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static double getd(json_object *o, const char *k)
{
        json_object *v = NULL;
        return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : -1;
}

static pid_t client_pid(const char *name)
{
        json_object *st = fm_stream_status(name);
        pid_t pid = st ? (pid_t)geti(st, "pid") : -1;
        json_object_put(st);
        return pid > 0 && kill(pid, 0) == 0 ? pid : -1;
}

/* The steps the client goes through, each with its own limit; the error
 * names the one that did not happen. */
int fm_stream_start(const char *name, const char *netns, const char *ip, const char *client_path, double rate_mbit,
                    fm_error *e)
{
        char path[400], rate[32];
        fm_stream_status_path(name, path, sizeof(path));
        _cleanup_free_ char *dir = fm_strdupf(FM_STREAM_DIR);
        fm_mkdir_p(dir, 0755);
        unlink(path);
        snprintf(rate, sizeof(rate), "%g", rate_mbit);
        _cleanup_close_ int watch = fm_dir_watch(dir); /* the client renames its status in */
        pid_t pid = fork();
        if (pid < 0)
                return fm_err(e, errno, "fork: %s", strerror(errno));
        if (pid == 0) {
                /* detached twice: the client outlives this command */
                setsid();
                if (fork() != 0)
                        _exit(0);
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
                if (netns && *netns)
                        execl(client_path, "fm-videoclient", "--netns", netns, "--addr", ip, "--status", path,
                              "--rate-mbit", rate, (char *)NULL);
                else
                        execl(client_path, "fm-videoclient", "--addr", ip, "--status", path, "--rate-mbit", rate,
                              (char *)NULL);
                _exit(127);
        }
        waitpid(pid, NULL, 0);
        static const struct {
                const char *what;
                int limit_ms;
        } steps[] = {
                {"start (no status file)", 5000},
                {"connect", 12000},
                {"get an HTTP 200 response head", 12000},
                {"receive the first bytes of the body", 10000},
        };
        size_t step = 0;
        double since = fm_now_ms();
        for (;;) {
                json_object *st = fm_stream_status(name);
                const char *phase = NULL, *err = NULL;
                int64_t bytes = st ? geti(st, "bytes") : 0;
                pid_t cpid = st ? (pid_t)geti(st, "pid") : -1;
                if (st) {
                        fm_json_str(st, "phase", false, 32, &phase, NULL);
                        fm_json_str(st, "error", false, 200, &err, NULL);
                }
                int r = 0;
                if (err)
                        r = fm_err(e, EIO, "the video client of %s (%s): %s", name, ip, err);
                else if (st && (cpid <= 0 || kill(cpid, 0) < 0))
                        r = fm_err(e, ESRCH, "the video client of %s ended without a word in phase %s", name,
                                   phase ? phase : "?");
                /* how many steps the client's phase has passed */
                size_t passed = !phase                                 ? 0
                                : !strcmp(phase, "connecting")         ? 1
                                : !strcmp(phase, "requesting")         ? 2
                                : bytes > 0                            ? 4
                                                                       : 3;
                if (passed > step) {
                        step = passed;
                        since = fm_now_ms();
                }
                json_object_put(st);
                if (r < 0)
                        return r;
                if (step == FM_ARRAY_SIZE(steps))
                        return 0;
                if (fm_now_ms() - since > steps[step].limit_ms)
                        return fm_err(e, ETIMEDOUT, "the video client of %s did not %s in %d s (%s, %s)", name,
                                      steps[step].what, steps[step].limit_ms / 1000, ip, client_path);
                fm_dir_watch_wait(watch, 200);
        }
}

void fm_stream_window(const char *name)
{
        json_object *st = fm_stream_status(name);
        pid_t pid = st ? (pid_t)geti(st, "pid") : -1;
        int64_t window = st ? geti(st, "window") : -1;
        json_object_put(st);
        if (pid <= 0 || kill(pid, SIGUSR1) < 0)
                return;
        /* the client rewrites its status at once with the next window's
         * number: wait for that, so that the window starts now */
        _cleanup_free_ char *dir = fm_strdupf(FM_STREAM_DIR);
        _cleanup_close_ int watch = fm_dir_watch(dir);
        for (double t0 = fm_now_ms(); fm_now_ms() - t0 < 1000;) {
                st = fm_stream_status(name);
                bool moved = st && geti(st, "window") > window;
                json_object_put(st);
                if (moved)
                        return;
                fm_dir_watch_wait(watch, 20);
        }
}

json_object *fm_stream_report(const char *name)
{
        json_object *st = fm_stream_status(name);
        if (!st)
                return NULL;
        /* the stream flows again: 0.3 s of steady bytes after now */
        int64_t b0 = geti(st, "bytes");
        double rate = getd(st, "rate_mbit") * 1e6 / 8;
        for (int i = 0; i < 100; i++) {
                json_object_put(st);
                usleep(50000);
                st = fm_stream_status(name);
                if (!st)
                        return NULL;
                if (!fm_json_bool(st, "connected", false) || geti(st, "bytes") - b0 >= (int64_t)(0.3 * rate) ||
                    fm_json_bool(st, "done", false))
                        break;
        }
        json_object *o = json_object_new_object();
        /* a client that played the whole file has ended, connection intact */
        bool kept = fm_json_bool(st, "connected", false) && (client_pid(name) > 0 || fm_json_bool(st, "done", false));
        json_object_object_add(o, "connection_kept", json_object_new_boolean(kept));
        json_object_object_add(o, "bytes_verified", json_object_new_int64(geti(st, "bytes_verified")));
        json_object_object_add(o, "bad_bytes", json_object_new_int64(geti(st, "bad_bytes")));
        json_object_object_add(o, "longest_stall_ms", json_object_new_double(getd(st, "window_stall_ms")));
        json_object_object_add(o, "bytes", json_object_new_int64(geti(st, "bytes")));
        json_object_object_add(o, "size", json_object_new_int64(geti(st, "size")));
        json_object *er = NULL;
        if (json_object_object_get_ex(st, "error", &er) && er)
                json_object_object_add(o, "error", json_object_get(er));
        json_object_put(st);
        return o;
}

void fm_stream_stop(const char *name)
{
        pid_t pid = client_pid(name);
        if (pid > 0)
                kill(pid, SIGTERM);
        char path[400];
        fm_stream_status_path(name, path, sizeof(path));
        unlink(path); /* a later container of that name has no client of its own */
}

void fm_stream_sweep(void)
{
        DIR *d = opendir(FM_STREAM_DIR);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (strncmp(de->d_name, "stream-", 7) || n < 13 || strcmp(de->d_name + n - 5, ".json"))
                        continue;
                char name[256];
                snprintf(name, sizeof(name), "%.*s", (int)(n - 12), de->d_name + 7);
                if (client_pid(name) < 0) {
                        char path[400];
                        fm_stream_status_path(name, path, sizeof(path));
                        unlink(path);
                }
        }
        if (d)
                closedir(d);
}
