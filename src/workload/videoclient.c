/* fm-videoclient: the user of the video workload. Plays a video file from
 * nginx at a constant bitrate over one HTTP connection, checks every byte
 * (the file's content is known: fm_video_fill) and keeps a status file.
 *
 *   fm-videoclient --netns NS --addr IP --status FILE [--path /movie.bin]
 *                  [--rate-mbit 8] [--seed N]
 *
 * Playing: the player consumes rate bytes per second from t0 on; it wakes
 * every 5 ms, takes what it is owed, and sleeps again. Its socket buffer is
 * small (16 KiB asked, the kernel doubles it: about 32 ms at 8 Mbit/s), so
 * the server is paced by TCP and a frozen server shows as the player finding
 * fewer bytes than it wants. A stall runs from the moment the player ran dry
 * (when its demand passed what had arrived: t0 + bytes / rate, or the end of
 * the stall before if later) to the next byte, which it waits for in ppoll:
 * neither end depends on the 5 ms tick (bytes that were buffered when the
 * tick read them arrived before the player needed them). The longest stall since the
 * start and since the last SIGUSR1 (a measurement window) go in the status
 * file, rewritten every 100 ms whatever the stream does, and at once on every
 * change of phase or window, as one JSON object:
 *   {"pid","phase","window","connected","error","size","bytes",
 *    "bytes_verified","bad_bytes","first_bad_offset","longest_stall_ms",
 *    "window_stall_ms","window_bytes","rate_mbit","done"}
 * phase: connecting, requesting (connected, waiting for the response head),
 * streaming (head read: 200 with a length), ended (done, failed or stopped).
 * "connected" stays true while the one connection lives; the client never
 * reconnects (a new connection would be a failure of the migration).
 * Signals are blocked except inside ppoll, so none is lost between a check
 * and the wait. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "image/build.h"
#include "util/netns.h"

#define TICK_MS 5.0
#define STATUS_MS 100.0
#define CONNECT_MS 10000.0
#define HEAD_MS 10000.0

static volatile sig_atomic_t stop, window_reset;

static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; window_reset = 1; }

typedef struct state {
        const char *status_path;
        const char *phase;
        unsigned window_id;
        bool connected, done;
        char error[200];
        uint64_t size, bytes, verified, bad, first_bad, window_bytes;
        double longest, window, rate_mbit;
        double last_status;
} state;

static double now_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void write_status(state *s)
{
        char tmp[600], buf[1300];
        snprintf(tmp, sizeof(tmp), "%s.tmp", s->status_path);
        int n = snprintf(buf, sizeof(buf),
                         "{\"pid\":%d,\"phase\":\"%s\",\"window\":%u,\"connected\":%s,\"error\":%s%s%s,\"size\":%llu,"
                         "\"bytes\":%llu,\"bytes_verified\":%llu,\"bad_bytes\":%llu,\"first_bad_offset\":%lld,"
                         "\"longest_stall_ms\":%.1f,\"window_stall_ms\":%.1f,\"window_bytes\":%llu,"
                         "\"rate_mbit\":%g,\"done\":%s}\n",
                         (int)getpid(), s->phase, s->window_id, s->connected ? "true" : "false",
                         s->error[0] ? "\"" : "", s->error[0] ? s->error : "null", s->error[0] ? "\"" : "",
                         (unsigned long long)s->size, (unsigned long long)s->bytes, (unsigned long long)s->verified,
                         (unsigned long long)s->bad, s->bad ? (long long)s->first_bad : -1LL, s->longest, s->window,
                         (unsigned long long)s->window_bytes, s->rate_mbit, s->done ? "true" : "false");
        s->last_status = now_ms();
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        bool whole = n > 0 && write(fd, buf, (size_t)n) == n;
        close(fd);
        if (whole)
                rename(tmp, s->status_path);
}

static void set_phase(state *s, const char *phase)
{
        s->phase = phase;
        write_status(s);
}

__attribute__((format(printf, 2, 3))) static void fail(state *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof(s->error), fmt, ap);
        va_end(ap);
        for (char *c = s->error; *c; c++) /* it goes into a JSON string as it is */
                if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
                        *c = '\'';
        s->connected = false;
        set_phase(s, "ended");
}

/* Waits until fd is ready for events, or deadline (ms, monotonic), or a
 * signal; keeps the status file on schedule meanwhile. 1 ready, 0 timed out
 * or interrupted (the caller looks at stop/window_reset), -1 error. */
static int wait_fd(state *s, int fd, short events, double deadline, const sigset_t *open_mask)
{
        double t = now_ms();
        if (window_reset) {
                window_reset = 0;
                s->window = 0;
                s->window_bytes = 0;
                s->window_id++;
                write_status(s);
        }
        if (t - s->last_status >= STATUS_MS)
                write_status(s);
        double until = s->last_status + STATUS_MS;
        if (deadline < until)
                until = deadline;
        double wait = until - now_ms();
        if (wait < 0)
                wait = 0;
        long long ns = (long long)(wait * 1e6);
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000LL), .tv_nsec = (long)(ns % 1000000000LL)};
        struct pollfd p = {.fd = fd, .events = events};
        int r = ppoll(&p, fd >= 0 ? 1 : 0, &ts, open_mask);
        if (r < 0)
                return errno == EINTR ? 0 : -1;
        return r > 0 ? 1 : 0;
}

/* Connects without blocking past CONNECT_MS (a SYN to a dead address would
 * otherwise wait for the kernel's two minutes). */
static int connect_to(state *s, int fd, const struct sockaddr_in *sa, const char *addr, const sigset_t *open_mask)
{
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
                fail(s, "connecting to %s: %s", addr, strerror(errno));
                return -1;
        }
        double deadline = now_ms() + CONNECT_MS;
        for (;;) {
                if (stop)
                        return -1;
                int r = wait_fd(s, fd, POLLOUT, deadline, open_mask);
                if (r > 0)
                        break;
                if (r < 0 || now_ms() >= deadline) {
                        fail(s, "connecting to %s: %s", addr, r < 0 ? strerror(errno) : "no answer in 10 s");
                        return -1;
                }
        }
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
                fail(s, "connecting to %s: %s", addr, strerror(err));
                return -1;
        }
        return 0;
}

/* Reads the response head, exactly: it peeks, then takes up to the blank
 * line, so nothing of the body is consumed here. */
static int read_head(state *s, int fd, const sigset_t *open_mask)
{
        char head[4096];
        double deadline = now_ms() + HEAD_MS;
        size_t used = 0;
        for (;;) {
                if (stop)
                        return -1;
                ssize_t r = recv(fd, head, sizeof(head) - 1, MSG_PEEK | MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                        fail(s, "reading the response head: %s", r == 0 ? "connection closed by the server" : strerror(errno));
                        return -1;
                }
                if (r > 0) {
                        head[r] = '\0';
                        char *end = strstr(head, "\r\n\r\n");
                        if (end) {
                                used = (size_t)(end - head) + 4;
                                break;
                        }
                        if ((size_t)r == sizeof(head) - 1) {
                                fail(s, "reading the response head: longer than 4 KiB");
                                return -1;
                        }
                }
                int w = wait_fd(s, fd, POLLIN, deadline, open_mask);
                if (w < 0 || (w == 0 && now_ms() >= deadline)) {
                        fail(s, "reading the response head: %s", w < 0 ? strerror(errno) : "none in 10 s");
                        return -1;
                }
                /* a partial head: wait for more than what is there */
                if (r > 0)
                        usleep(1000);
        }
        if (recv(fd, head, used, 0) != (ssize_t)used) {
                fail(s, "reading the response head: %s", strerror(errno));
                return -1;
        }
        head[used] = '\0';
        int code = 0;
        if (sscanf(head, "HTTP/1.%*d %d", &code) != 1 || code != 200) {
                fail(s, "HTTP status %d (200 expected)", code);
                return -1;
        }
        const char *cl = strcasestr(head, "\r\nContent-Length:");
        unsigned long long len = 0;
        if (!cl || sscanf(cl + 17, " %llu", &len) != 1 || len == 0) {
                fail(s, "the response has no Content-Length");
                return -1;
        }
        s->size = len;
        return 0;
}

static void note_stall(state *s, double gap)
{
        if (gap > s->longest)
                s->longest = gap;
        if (gap > s->window)
                s->window = gap;
}

/* Plays the body: see the top of this file. */
static void play(state *s, int fd, uint64_t seed, const sigset_t *open_mask)
{
        static uint8_t buf[256 * 1024], want[256 * 1024];
        double bytes_per_ms = s->rate_mbit * 1e6 / 8 / 1e3;
        double t0 = now_ms(), last_arrival = t0, starved_since = 0;
        while (!stop && !s->done) {
                double t = now_ms();
                double owed = (t - t0) * bytes_per_ms - (double)s->bytes;
                bool dry = false;
                while (owed >= 1 && !s->done) {
                        size_t take = owed > sizeof(buf) ? sizeof(buf) : (size_t)owed;
                        ssize_t r = recv(fd, buf, take, MSG_DONTWAIT);
                        if (r > 0) {
                                /* a read after a stall follows the wake-up on
                                 * the first byte: its time is the arrival's;
                                 * a tick's read only says the bytes came by now */
                                if (starved_since > 0) {
                                        last_arrival = now_ms();
                                        note_stall(s, last_arrival - starved_since);
                                        starved_since = 0;
                                }
                                fm_video_fill(seed, s->bytes, want, (size_t)r);
                                for (ssize_t i = 0; i < r; i++)
                                        if (buf[i] != want[i] && s->bad++ == 0)
                                                s->first_bad = s->bytes + (uint64_t)i;
                                s->bytes += (uint64_t)r;
                                s->window_bytes += (uint64_t)r;
                                s->verified = s->bytes - s->bad;
                                s->done = s->bytes >= s->size;
                                owed -= (double)r;
                                continue;
                        }
                        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                                fail(s, "connection %s after %llu bytes", r == 0 ? "closed by the server" : strerror(errno),
                                     (unsigned long long)s->bytes);
                                return;
                        }
                        dry = true;
                        break;
                }
                if (s->done)
                        break;
                if (dry && starved_since == 0) {
                        /* the player ran out when its demand passed what had come */
                        double out_at = t0 + (double)s->bytes / bytes_per_ms;
                        starved_since = out_at > last_arrival ? out_at : last_arrival;
                }
                if (starved_since > 0) /* a stall still going on counts too */
                        note_stall(s, now_ms() - starved_since);
                /* starved: wake on the next byte; fed: sleep a tick */
                int w = wait_fd(s, dry ? fd : -1, POLLIN, dry ? now_ms() + STATUS_MS : now_ms() + TICK_MS, open_mask);
                if (w < 0) {
                        fail(s, "waiting for the stream: %s", strerror(errno));
                        return;
                }
        }
}

int main(int argc, char **argv)
{
        const char *netns = NULL, *addr = NULL, *path = FM_VIDEO_URL;
        state s = {.rate_mbit = 8, .phase = "connecting"};
        uint64_t seed = FM_VIDEO_SEED;
        static const struct option lo[] = {{"netns", required_argument, 0, 'n'},  {"addr", required_argument, 0, 'a'},
                                           {"status", required_argument, 0, 's'}, {"path", required_argument, 0, 'p'},
                                           {"rate-mbit", required_argument, 0, 'r'},
                                           {"seed", required_argument, 0, 'S'},   {0, 0, 0, 0}};
        int ch;
        while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (ch) {
                case 'n': netns = optarg; break;
                case 'a': addr = optarg; break;
                case 's': s.status_path = optarg; break;
                case 'p': path = optarg; break;
                case 'r': s.rate_mbit = atof(optarg); break;
                case 'S': seed = strtoull(optarg, NULL, 0); break;
                default: return 2;
                }
        }
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(FM_VIDEO_PORT)};
        if (!addr || !s.status_path || !(s.rate_mbit > 0 && s.rate_mbit <= 10000) || strlen(path) > 200 ||
            inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
                fprintf(stderr, "usage: fm-videoclient --addr IPv4 --status FILE [--netns NS] [--path P] "
                                "[--rate-mbit R (0-10000]] [--seed N]\n");
                return 2;
        }
        sigset_t block, open_mask;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, &open_mask);
        sigdelset(&open_mask, SIGTERM);
        sigdelset(&open_mask, SIGINT);
        sigdelset(&open_mask, SIGUSR1);
        struct sigaction term = {.sa_handler = on_term}, usr1 = {.sa_handler = on_usr1};
        sigaction(SIGTERM, &term, NULL);
        sigaction(SIGINT, &term, NULL);
        sigaction(SIGUSR1, &usr1, NULL);
        signal(SIGPIPE, SIG_IGN);
        write_status(&s);
        fm_error e = {0};
        if (netns && fm_netns_enter_net(netns, &e) < 0) {
                fail(&s, "entering %s: %s", netns, e.msg);
                return 1;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                fail(&s, "socket: %s", strerror(errno));
                return 1;
        }
        int rcv = 16 * 1024;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
        if (connect_to(&s, fd, &sa, addr, &open_mask) < 0) {
                close(fd);
                return 1;
        }
        s.connected = true;
        set_phase(&s, "requesting");
        char req[300];
        int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fm-videoclient\r\n\r\n", path, addr);
        if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) {
                fail(&s, "sending the request to %s: %s", addr, strerror(errno));
                close(fd);
                return 1;
        }
        if (read_head(&s, fd, &open_mask) < 0) {
                close(fd);
                return 1;
        }
        set_phase(&s, "streaming");
        play(&s, fd, seed, &open_mask);
        if (strcmp(s.phase, "ended"))
                set_phase(&s, "ended");
        close(fd);
        return s.bad || !s.connected ? 1 : 0;
}
