/* fm-tls-speed: what the TLS relay (src/proto/tls.c) costs a stream, against
 * the same stream on a plain TCP connection, in one invocation: bytes/s and
 * CPU seconds per GiB of this process (both ends, relays and handshakes
 * included) over loopback TCP, where the network costs least and the
 * encryption's share is the largest. A certificate pair is made in a
 * temporary directory.
 *   fm-tls-speed [MIB] [RUNS]   (default 512 MiB, 3 runs each way) */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pki/pki.h"
#include "proto/tls.h"

static double cpu_s(void)
{
        struct rusage u;
        getrusage(RUSAGE_SELF, &u);
        return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

typedef struct side {
        int lfd;
        bool tls;
        uint64_t bytes;
        int fd;
} side;

/* the receiver: accepts, reads to the end */
static void *server(void *arg)
{
        side *s = arg;
        int fd = accept(s->lfd, NULL, NULL);
        fm_error e = {0};
        if (s->tls)
                fd = fm_tls_server(fd, 10000, NULL, &e);
        static char buf[1 << 16];
        ssize_t n;
        while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
                s->bytes += (uint64_t)n;
        if (fd >= 0)
                close(fd);
        return NULL;
}

static int run(bool tls, uint64_t total, double *secs, double *cpu)
{
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0 ||
            getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
                return -1;
        side s = {.lfd = lfd, .tls = tls};
        pthread_t th;
        double c0 = cpu_s(), t0 = fm_now_ms() / 1e3;
        pthread_create(&th, NULL, server, &s);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -1;
        fm_error e = {0};
        if (tls && (fd = fm_tls_client(fd, "127.0.0.1", 10000, NULL, &e)) < 0) {
                fprintf(stderr, "fm-tls-speed: %s\n", e.msg);
                return -1;
        }
        static char buf[1 << 16];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (char)(i * 131);
        for (uint64_t sent = 0; sent < total; sent += sizeof(buf))
                if (fm_write_all(fd, buf, sizeof(buf)) < 0)
                        return -1;
        close(fd);
        pthread_join(th, NULL);
        fm_tls_drain(5000);
        *secs = fm_now_ms() / 1e3 - t0;
        *cpu = cpu_s() - c0;
        close(lfd);
        return s.bytes == total ? 0 : -1;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
        int runs = argc > 2 ? atoi(argv[2]) : 3;
        if (mib < 1 || mib > 65536 || runs < 1 || runs > 50) {
                fprintf(stderr, "usage: fm-tls-speed [MIB] [RUNS]\n");
                return 2;
        }
        char dir[] = "/tmp/fm-tls-speed.XXXXXX";
        fm_error e = {0};
        const char *ip[] = {"127.0.0.1"};
        if (!mkdtemp(dir) || fm_pki_init(dir, "bench", false, &e) < 0 ||
            fm_pki_issue(dir, "h", "host", ip, 1, 1, &e) < 0 || fm_tls_setup(dir, "h", &e) < 0) {
                fprintf(stderr, "fm-tls-speed: %s\n", e.msg);
                return 1;
        }
        uint64_t total = mib << 20;
        double mbs[2][50], cpg[2][50];
        for (int i = 0; i < runs; i++)
                for (int tls = 0; tls < 2; tls++) { /* interleaved: both see the same machine */
                        double secs, cpu;
                        if (run(tls, total, &secs, &cpu) < 0) {
                                fprintf(stderr, "fm-tls-speed: run failed\n");
                                return 1;
                        }
                        mbs[tls][i] = total / secs / 1e6;
                        cpg[tls][i] = cpu / ((double)total / (1 << 30));
                }
        fm_rm_rf(dir);
        for (int tls = 0; tls < 2; tls++) {
                qsort(mbs[tls], (size_t)runs, sizeof(double), cmp);
                qsort(cpg[tls], (size_t)runs, sizeof(double), cmp);
        }
        printf("%llu MiB over loopback TCP, %d runs each, medians (this process: sender, receiver, relays)\n",
               (unsigned long long)mib, runs);
        printf("%-10s %12s %16s\n", "", "MB/s", "CPU s per GiB");
        printf("%-10s %12.0f %16.3f\n", "plain", mbs[0][runs / 2], cpg[0][runs / 2]);
        printf("%-10s %12.0f %16.3f\n", "TLS 1.3", mbs[1][runs / 2], cpg[1][runs / 2]);
        printf("TLS costs %.3f CPU s more per GiB; at 1 Gbit/s (125 MB/s) that is %.0f%% of one core\n",
               cpg[1][runs / 2] - cpg[0][runs / 2], (cpg[1][runs / 2] - cpg[0][runs / 2]) * 125e6 / (1 << 30) * 100);
        return 0;
}
