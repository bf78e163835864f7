#include "stream.h"

#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/proto.h"

void fm_stream_status_path(const char *name, char *buf, size_t n)
{
        snprintf(buf, n, FM_TESTBED_ROOT "/ue/stream-%s.json", name);
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

int fm_stream_start(const char *name, const char *ip, const char *client_path, double rate_mbit, fm_error *e)
{
        char path[400], rate[32];
        fm_stream_status_path(name, path, sizeof(path));
        _cleanup_free_ char *dir = fm_strdupf(FM_TESTBED_ROOT "/ue");
        fm_mkdir_p(dir, 0755);
        unlink(path);
        snprintf(rate, sizeof(rate), "%g", rate_mbit);
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
                execl(client_path, "fm-videoclient", "--netns", FM_TESTBED_UE_NS, "--addr", ip, "--status", path,
                      "--rate-mbit", rate, (char *)NULL);
                _exit(127);
        }
        waitpid(pid, NULL, 0);
        for (int i = 0; i < 100; i++) {
                usleep(50000);
                json_object *st = fm_stream_status(name);
                if (!st)
                        continue;
                int64_t bytes = geti(st, "bytes");
                const char *err = NULL;
                fm_json_str(st, "error", false, 200, &err, NULL);
                int r = err ? fm_err(e, EIO, "video client: %s", err) : bytes > 0 ? 1 : 0;
                json_object_put(st);
                if (r)
                        return r < 0 ? r : 0;
        }
        return fm_err(e, ETIMEDOUT, "the video client of %s got no bytes in 5 s (%s)", name, client_path);
}

void fm_stream_window(const char *name)
{
        pid_t pid = client_pid(name);
        if (pid > 0) {
                kill(pid, SIGUSR1);
                usleep(20000); /* it looks every 5 ms */
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
        bool kept = fm_json_bool(st, "connected", false) && client_pid(name) > 0;
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
}
