/* fm-videoclient: the user of the video workload. Plays a video file from
 * nginx at a constant bitrate over one HTTP connection, checks every byte
 * (the file's content is known: fm_video_fill) and keeps a status file.
 *
 *   fm-videoclient --netns NS --addr IP --status FILE [--path /movie.bin]
 *                  [--rate-mbit 8] [--seed N]
 *
 * Playing: every 5 ms the player may take rate x elapsed bytes; its socket
 * buffer is small (16 KiB asked, the kernel doubles it: about 32 ms at 8 Mbit/s), so the server is paced by TCP and a frozen
 * server shows as the player finding nothing when it wants bytes. A stall is
 * the time from the first such miss to the next byte; the longest stall
 * since the start and since the last SIGUSR1 (a measurement window) go in
 * the status file, rewritten every 100 ms as one JSON object:
 *   {"pid","connected","error","size","bytes","bytes_verified","bad_bytes",
 *    "first_bad_offset","longest_stall_ms","window_stall_ms","window_bytes",
 *    "rate_mbit","done"}
 * "connected" stays true while the one connection lives; the client never
 * reconnects (a new connection would be a failure of the migration). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "image/build.h"
#include "util/netns.h"

static volatile sig_atomic_t stop, window_reset;

static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; window_reset = 1; }

typedef struct state {
        bool connected, done;
        char error[200];
        uint64_t size, bytes, verified, bad, first_bad, window_bytes;
        double longest, window, rate_mbit;
} state;

static void write_status(const char *path, const state *s)
{
        char tmp[600], buf[1200];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        int n = snprintf(buf, sizeof(buf),
                         "{\"pid\":%d,\"connected\":%s,\"error\":%s%s%s,\"size\":%llu,\"bytes\":%llu,"
                         "\"bytes_verified\":%llu,\"bad_bytes\":%llu,\"first_bad_offset\":%lld,"
                         "\"longest_stall_ms\":%.1f,\"window_stall_ms\":%.1f,\"window_bytes\":%llu,"
                         "\"rate_mbit\":%g,\"done\":%s}\n",
                         (int)getpid(), s->connected ? "true" : "false", s->error[0] ? "\"" : "",
                         s->error[0] ? s->error : "null", s->error[0] ? "\"" : "", (unsigned long long)s->size,
                         (unsigned long long)s->bytes, (unsigned long long)s->verified, (unsigned long long)s->bad,
                         s->bad ? (long long)s->first_bad : -1LL, s->longest, s->window,
                         (unsigned long long)s->window_bytes, s->rate_mbit, s->done ? "true" : "false");
        FILE *f = fopen(tmp, "we");
        if (!f)
                return;
        fwrite(buf, 1, (size_t)n, f);
        fclose(f);
        rename(tmp, path);
}

static double now_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Reads the response head (byte by byte: nothing of the body is taken). */
static int read_head(int fd, uint64_t *length, char *err, size_t n)
{
        char head[4096];
        size_t used = 0;
        while (used + 1 < sizeof(head)) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 10000) <= 0) {
                        snprintf(err, n, "no response head in 10 s");
                        return -1;
                }
                ssize_t r = recv(fd, head + used, 1, 0);
                if (r <= 0) {
                        snprintf(err, n, "connection closed before the response head");
                        return -1;
                }
                used++;
                head[used] = '\0';
                if (used >= 4 && !memcmp(head + used - 4, "\r\n\r\n", 4))
                        break;
        }
        int code = 0;
        if (sscanf(head, "HTTP/1.%*d %d", &code) != 1 || code != 200) {
                snprintf(err, n, "HTTP status %d", code);
                return -1;
        }
        const char *cl = strcasestr(head, "\r\nContent-Length:");
        if (!cl || sscanf(cl + 17, " %llu", (unsigned long long *)length) != 1) {
                snprintf(err, n, "no Content-Length");
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        const char *netns = NULL, *addr = NULL, *status = NULL, *path = FM_VIDEO_URL;
        state s = {.rate_mbit = 8};
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
                case 's': status = optarg; break;
                case 'p': path = optarg; break;
                case 'r': s.rate_mbit = atof(optarg); break;
                case 'S': seed = strtoull(optarg, NULL, 0); break;
                default: return 2;
                }
        }
        if (!addr || !status || !(s.rate_mbit > 0 && s.rate_mbit <= 10000)) {
                fprintf(stderr, "usage: fm-videoclient --addr IP --status FILE [--netns NS] [--path P] "
                                "[--rate-mbit R] [--seed N]\n");
                return 2;
        }
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        signal(SIGUSR1, on_usr1);
        signal(SIGPIPE, SIG_IGN);
        fm_error e = {0};
        if (netns && fm_netns_enter_net(netns, &e) < 0) {
                snprintf(s.error, sizeof(s.error), "%.190s", e.msg);
                write_status(status, &s);
                return 1;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rcv = 16 * 1024;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(FM_VIDEO_PORT)};
        inet_pton(AF_INET, addr, &sa.sin_addr);
        char req[300];
        int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fm-videoclient\r\n\r\n", path, addr);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(fd, req, (size_t)rl, 0) != rl ||
            read_head(fd, &s.size, s.error, sizeof(s.error)) < 0) {
                if (!s.error[0])
                        snprintf(s.error, sizeof(s.error), "connecting to %s: %s", addr, strerror(errno));
                write_status(status, &s);
                return 1;
        }
        s.connected = true;
        static uint8_t buf[256 * 1024], want[256 * 1024];
        double t0 = now_ms(), last_status = 0, starved_since = 0;
        double bytes_per_ms = s.rate_mbit * 1e6 / 8 / 1e3;
        while (!stop && s.connected && !s.done) {
                double t = now_ms();
                if (window_reset) {
                        window_reset = 0;
                        s.window = 0;
                        s.window_bytes = 0;
                }
                double budget = (t - t0) * bytes_per_ms - (double)s.bytes;
                if (budget >= 1) {
                        size_t take = budget > sizeof(buf) ? sizeof(buf) : (size_t)budget;
                        ssize_t r = recv(fd, buf, take, MSG_DONTWAIT);
                        if (r > 0) {
                                if (starved_since > 0) {
                                        double gap = t - starved_since;
                                        s.longest = gap > s.longest ? gap : s.longest;
                                        s.window = gap > s.window ? gap : s.window;
                                        starved_since = 0;
                                }
                                fm_video_fill(seed, s.bytes, want, (size_t)r);
                                for (ssize_t i = 0; i < r; i++)
                                        if (buf[i] != want[i] && s.bad++ == 0)
                                                s.first_bad = s.bytes + (uint64_t)i;
                                s.bytes += (uint64_t)r;
                                s.window_bytes += (uint64_t)r;
                                s.verified = s.bytes - s.bad;
                                s.done = s.bytes >= s.size;
                                continue;
                        }
                        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                                s.connected = false;
                                snprintf(s.error, sizeof(s.error), "connection %s after %llu bytes",
                                         r == 0 ? "closed by the server" : strerror(errno), (unsigned long long)s.bytes);
                                break;
                        }
                        if (starved_since == 0)
                                starved_since = t;
                }
                if (starved_since > 0) { /* a stall still going on counts too */
                        double gap = t - starved_since;
                        s.longest = gap > s.longest ? gap : s.longest;
                        s.window = gap > s.window ? gap : s.window;
                }
                if (t - last_status >= 100) {
                        write_status(status, &s);
                        last_status = t;
                }
                struct pollfd p = {.fd = fd, .events = POLLIN};
                poll(&p, 1, 5);
                if (budget < 1)
                        usleep(5000);
        }
        write_status(status, &s);
        close(fd);
        return s.bad || !s.connected ? 1 : 0;
}
