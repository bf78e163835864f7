#include "spawn.h"
#include "cancel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The child's environment, built before fork: after fork in a threaded
 * process only async-signal-safe calls are allowed (putenv may take
 * malloc's lock that another thread held). env_add replaces same-named
 * entries. */
static char **child_env(const char *const *env_add)
{
        size_t n = 0, m = 0;
        while (environ && environ[n])
                n++;
        while (env_add && env_add[m])
                m++;
        char **env = calloc(n + m + 1, sizeof(*env));
        if (!env)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                size_t klen = strcspn(environ[i], "=");
                bool replaced = false;
                for (size_t j = 0; j < m && !replaced; j++)
                        replaced = !strncmp(env_add[j], environ[i], klen) && env_add[j][klen] == '=';
                if (!replaced)
                        env[k++] = environ[i];
        }
        for (size_t j = 0; j < m; j++)
                env[k++] = (char *)env_add[j];
        return env;
}

/* After fork: async-signal-safe calls only. Every source is first copied
 * above the standard descriptors (close-on-exec), so that none is
 * overwritten before it is placed. */
static void child_exec(char *const argv[], char **env, int out_fd, const fm_spawn_opts *o, pid_t parent)
{
        /* a dead agent leaves no rsync, steering call or probe behind (the
         * signal comes when the starting thread ends; it waits for the
         * child, so that is when the process dies) */
        if (!o->outlive_parent && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
                _exit(127);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (o->own_group)
                setpgid(0, 0);
        int devnull = null >= 0 ? fcntl(null, F_DUPFD_CLOEXEC, 10) : -1;
        int out = out_fd >= 0 ? fcntl(out_fd, F_DUPFD_CLOEXEC, 10) : devnull;
        int io = o->stdio_fd > 2 ? fcntl(o->stdio_fd, F_DUPFD_CLOEXEC, 10) : -1;
        int in = o->stdin_fd > 2 ? fcntl(o->stdin_fd, F_DUPFD_CLOEXEC, 10) : -1;
        dup2(in >= 0 ? in : io >= 0 ? io : devnull, 0);
        dup2(io >= 0 ? io : out, 1);
        dup2(out, 2);
        if (o->keep_fd > 2)
                fcntl(o->keep_fd, F_SETFD, 0);
        /* Our descriptors are all O_CLOEXEC; signals back to defaults. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execvpe(argv[0], argv, env);
        _exit(127);
}

int fm_spawn(char *const argv[], fm_spawn_opts *o)
{
        fm_spawn_opts def = {0};
        if (!o)
                o = &def;
        int pipefd[2] = {-1, -1};
        bool capture = !o->detach_stdio;
        _cleanup_free_ char **env = child_env(o->env_add);
        if (!env)
                return -ENOMEM;
        if (capture && pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid_t self = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int err = -errno;
                fm_close(pipefd[0]);
                fm_close(pipefd[1]);
                return err;
        }
        if (pid == 0)
                child_exec(argv, env, capture ? pipefd[1] : -1, o, self);
        fm_close(pipefd[1]);
        if (o->own_group)
                setpgid(pid, pid); /* also here: no window before a kill of the group */
        pid_t target = o->own_group ? -pid : pid;
        if (!o->outlive_parent) /* a cancel group's (util/cancel.h): killed if it fires */
                fm_cancel_track_pid(target);
        if (o->started)
                o->started(pid, o->started_data);

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
                                        kill(target, SIGKILL);
                                        break;
                                }
                                wait_ms = (int)((deadline - now) / 1000000ull) + 1;
                        }
                        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
                        int pr = poll(&p, 1, wait_ms);
                        if (pr < 0 && errno == EINTR)
                                continue;
                        if (pr < 0)
                                break;
                        if (pr == 0)
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
        /* the child is waited for without being reaped until it is
         * untracked: its pid cannot be reused while a cancel group may
         * still kill it */
        siginfo_t si;
        bool gone = false; /* not our child any more (reaped elsewhere): never signalled */
        if (!capture && o->timeout_ms) {
                /* sleep until the child ends (its pidfd turns readable) or
                 * the deadline; not a 1 ms poll: rsync runs for seconds
                 * beside a frozen dump */
                uint64_t deadline = fm_now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
                _cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
                for (;;) {
                        memset(&si, 0, sizeof(si));
                        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR) {
                                gone = true;
                                break;
                        }
                        uint64_t now = fm_now_ns();
                        if (si.si_pid == pid || now >= deadline)
                                break;
                        struct pollfd p = {.fd = pfd, .events = POLLIN};
                        int left = (int)((deadline - now) / 1000000ull) + 1;
                        if (pfd < 0 || poll(&p, 1, left) < 0)
                                usleep(1000);
                }
                if (!gone && si.si_pid != pid)
                        kill(target, SIGKILL);
        }
        while (!gone && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
                gone = errno != EINTR;
        if (!o->outlive_parent)
                fm_cancel_untrack_pid(target);
        /* before the reaping: the zombie leader keeps the group's id ours */
        if (o->own_group && !gone) /* nothing of it outlives it (rsync's receiver, a hook's ssh) */
                kill(-pid, SIGKILL);
        int status = 0, wr;
        while ((wr = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
                ;
        if (wr < 0) {
                free(buf);
                return -ECHILD;
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

const char *fm_last_line(const char *s, char *buf, size_t n)
{
        size_t len = s ? strlen(s) : 0;
        while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\r'))
                len--;
        size_t start = len;
        while (start && s[start - 1] != '\n')
                start--;
        size_t m = len - start < n - 1 ? len - start : n - 1;
        if (m)
                memcpy(buf, s + start, m);
        buf[m] = '\0';
        return buf;
}

bool fm_find_program(const char *name, char *out, size_t n)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        char *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
                snprintf(out, n, "%s/%s", d, name);
                if (access(out, X_OK) == 0)
                        return true;
        }
        return false;
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
                               fm_last_line(o->output, line, sizeof(line)));
                r = r < 0 ? r : -EIO;
        }
        if (own)
                free(def.output);
        return r;
}

int fm_spawn_daemon(char *const argv[], fm_error *e)
{
        pid_t pid = fork();
        if (pid < 0)
                return fm_err(e, errno, "fork: %s", strerror(errno));
        if (pid == 0) {
                /* the middle process ends at once: the program is nobody's
                 * child here, gets no parent-death signal and leaves no
                 * zombie (_Fork: no atfork handlers in a threaded child) */
                pid_t g = _Fork();
                if (g != 0)
                        _exit(g < 0 ? 1 : 0);
                setsid();
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                int null = open("/dev/null", O_RDWR);
                for (int fd = 0; null >= 0 && fd <= 2; fd++)
                        if (fd == 0 || fcntl(fd, F_GETFD) < 0)
                                dup2(null, fd);
                syscall(SYS_close_range, 3, ~0U, 0);
                execv(argv[0], argv);
                _exit(127);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return fm_err(e, EAGAIN, "starting %s: fork failed", argv[0]);
        return 0;
}
