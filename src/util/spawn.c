#include "spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void child_exec(char *const argv[], const char *const *env_add, int out_fd)
{
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0)
                dup2(devnull, 0);
        dup2(out_fd >= 0 ? out_fd : devnull, 1);
        dup2(out_fd >= 0 ? out_fd : devnull, 2);
        for (const char *const *e = env_add; e && *e; e++)
                putenv((char *)*e);
        /* Our descriptors are all O_CLOEXEC; signals back to defaults. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
}

int fm_spawn(char *const argv[], fm_spawn_opts *o)
{
        fm_spawn_opts def = {0};
        if (!o)
                o = &def;
        int pipefd[2] = {-1, -1};
        bool capture = !o->detach_stdio;
        if (capture && pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int err = -errno;
                fm_close(pipefd[0]);
                fm_close(pipefd[1]);
                return err;
        }
        if (pid == 0)
                child_exec(argv, o->env_add, capture ? pipefd[1] : -1);
        fm_close(pipefd[1]);

        size_t max = o->output_max ? o->output_max : 64 * 1024;
        char *buf = NULL;
        size_t len = 0;
        if (capture) {
                buf = malloc(max + 1);
                uint64_t deadline = o->timeout_ms ? fm_now_ns() + (uint64_t)o->timeout_ms * 1000000ull : 0;
                for (;;) {
                        int wait_ms = -1;
                        if (deadline) {
                                uint64_t now = fm_now_ns();
                                if (now >= deadline) {
                                        kill(pid, SIGKILL);
                                        break;
                                }
                                wait_ms = (int)((deadline - now) / 1000000ull) + 1;
                        }
                        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
                        int pr = poll(&p, 1, wait_ms);
                        if (pr < 0 && errno == EINTR)
                                continue;
                        if (pr <= 0)
                                continue;
                        char tmp[4096];
                        ssize_t r = read(pipefd[0], tmp, sizeof(tmp));
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r <= 0)
                                break;
                        size_t take = (size_t)r;
                        if (buf && len < max) {
                                if (take > max - len)
                                        take = max - len;
                                memcpy(buf + len, tmp, take);
                                len += take;
                        }
                }
                fm_close(pipefd[0]);
        }
        int status = 0;
        for (;;) {
                if (!capture && o->timeout_ms) {
                        /* sleep until the child ends (its pidfd turns
                         * readable) or the deadline; not a 1 ms poll: rsync
                         * runs for seconds beside a frozen dump */
                        uint64_t deadline = fm_now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
                        _cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
                        pid_t w;
                        while ((w = waitpid(pid, &status, WNOHANG)) == 0 && fm_now_ns() < deadline) {
                                struct pollfd p = {.fd = pfd, .events = POLLIN};
                                int left = (int)((deadline - fm_now_ns()) / 1000000ull) + 1;
                                if (pfd < 0 || poll(&p, 1, left) < 0)
                                        usleep(1000);
                        }
                        if (w == 0) {
                                kill(pid, SIGKILL);
                                waitpid(pid, &status, 0);
                        }
                        break;
                }
                if (waitpid(pid, &status, 0) >= 0 || errno != EINTR)
                        break;
        }
        if (buf) {
                buf[len] = '\0';
                if (o->output)
                        free(o->output);
                o->output = buf;
        }
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -EIO;
}

static const char *last_line(const char *s, char *buf, size_t n)
{
        if (!s)
                return "";
        size_t len = strlen(s);
        while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
                len--;
        size_t start = len;
        while (start && s[start - 1] != '\n')
                start--;
        size_t m = len - start < n - 1 ? len - start : n - 1;
        memcpy(buf, s + start, m);
        buf[m] = '\0';
        return buf;
}

int fm_spawn_check(char *const argv[], fm_spawn_opts *o, fm_error *e)
{
        fm_spawn_opts def = {0};
        bool own = !o;
        if (!o)
                o = &def;
        int r = fm_spawn(argv, o);
        if (r > 0 && r == o->also_ok)
                r = 0;
        if (r != 0) {
                char line[400];
                char cmd[256] = "";
                size_t off = 0;
                for (int i = 0; argv[i] && off < sizeof(cmd) - 1 && i < 4; i++)
                        off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, "%s%s", i ? " " : "", argv[i]);
                if (r < 0)
                        fm_err(e, -r, "cannot run `%s': %s", cmd, strerror(-r));
                else
                        fm_err(e, EIO, "`%s' failed (status %d): %s", cmd, r,
                               last_line(o->output, line, sizeof(line)));
                r = r < 0 ? r : -EIO;
        }
        if (own)
                free(def.output);
        return r;
}
