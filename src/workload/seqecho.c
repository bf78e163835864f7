/* fm-seqecho: the service inside the blank workload (built static, runs as
 * the container's init). It answers each UDP request with a counter kept in
 * its memory, so a client can tell a migrated service (the counter goes on)
 * from a restarted one (it starts again at 1, with another boot id).
 *
 * Request  (12 bytes):      "FMQ1" tag:u64
 * Write    (12 + n bytes):  "FMW1" tag:u64 name[n]   -> writes /data/<name>
 * Reply    (28 bytes):      "FMR1" tag:u64 counter:u64 boot:u64   (big-endian)
 * The write request makes the service itself write a file (counter inside,
 * fsync'd) so tests can check that files written before the freeze survive. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT 7000

static void put64(unsigned char *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (unsigned char)v;
}

static void on_term(int sig)
{
        (void)sig;
        _exit(0);
}

static void reap(int sig)
{
        (void)sig;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

int main(void)
{
        /* PID 1 ignores signals it has no handler for; lxc-stop sends SIGPWR. */
        signal(SIGTERM, on_term);
        signal(SIGPWR, on_term);
        signal(SIGINT, on_term);
        signal(SIGCHLD, reap);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t boot = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        uint64_t counter = 0;
        mkdir("/data", 0755);

        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(PORT)};
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("fm-seqecho: bind");
                return 1;
        }
        for (;;) {
                unsigned char buf[256];
                struct sockaddr_in peer;
                socklen_t pl = sizeof(peer);
                ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&peer, &pl);
                if (n < 12)
                        continue;
                int is_write = !memcmp(buf, "FMW1", 4);
                if (memcmp(buf, "FMQ1", 4) && !is_write)
                        continue;
                counter++;
                if (is_write && n > 12) {
                        char name[160], path[200];
                        size_t nl = (size_t)n - 12;
                        memcpy(name, buf + 12, nl);
                        name[nl] = '\0';
                        if (!strchr(name, '/') && name[0] != '.') {
                                snprintf(path, sizeof(path), "/data/%s", name);
                                int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                                if (f >= 0) {
                                        char line[64];
                                        int ll = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)counter);
                                        if (write(f, line, (size_t)ll) == ll)
                                                fsync(f);
                                        close(f);
                                }
                        }
                }
                unsigned char rep[28];
                memcpy(rep, "FMR1", 4);
                memcpy(rep + 4, buf + 4, 8);
                put64(rep + 12, counter);
                put64(rep + 20, boot);
                sendto(fd, rep, sizeof(rep), 0, (struct sockaddr *)&peer, pl);
        }
}
