/* fm-seqecho: the service inside the built-in workloads (built static, runs as
 * the container's init). It answers each UDP request with a counter kept in
 * its memory, so a client can tell a migrated service (the counter goes on)
 * from a restarted one (it starts again at 1, with another boot id).
 *
 *   fm-seqecho [--mem-mib S] [--dirty-mib-s R] [--fill random|half]
 *
 * With --mem-mib it also holds S MiB whose every 4 KiB page is a pattern of
 * (page index, generation), and rewrites R MiB/s of them (the next page's
 * generation goes up by one), so its memory keeps changing like a real
 * service's. A verify request checks every page against the pattern its
 * generation implies: a page lost or mixed up by a migration shows as bad.
 * --fill half makes the second half of every page one repeated word (the
 * pattern's first), so pages compress about 2:1 like much real memory; the
 * default fills all of it and does not compress.
 *
 * Request  (12 bytes):      "FMQ1" tag:u64
 * Write    (12 + n bytes):  "FMW1" tag:u64 name[n]   -> writes /data/<name>
 * Verify   (12 bytes):      "FMV1" tag:u64
 * Reply    (28 bytes):      "FMR1" tag:u64 counter:u64 boot:u64   (big-endian)
 * Verify reply (52 bytes):  the reply + pages:u64 bad_pages:u64 checksum:u64
 * The write request makes the service itself write a file (counter inside,
 * fsync'd) so tests can check that files written before the freeze survive. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT 7000
#define PAGE 4096

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

/* ---- the memory load ---- */

static unsigned char *mem;
static uint32_t *gen; /* generation of each page */
static uint64_t npages, next_dirty;

static uint64_t mix(uint64_t x)
{
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 33;
        return x;
}

static int half_fill; /* --fill half */

static uint64_t word_of(uint64_t seed, int k)
{
        return half_fill && k >= PAGE / 16 ? seed : seed + (uint64_t)k * 0x2545f4914f6cdd1dull;
}

static void fill_page(uint64_t i)
{
        uint64_t *w = (uint64_t *)(mem + i * PAGE);
        uint64_t seed = mix(i * 0x9e3779b97f4a7c15ull + gen[i]);
        for (int k = 0; k < PAGE / 8; k++)
                w[k] = word_of(seed, k);
}

static int page_ok(uint64_t i)
{
        const uint64_t *w = (const uint64_t *)(mem + i * PAGE);
        uint64_t seed = mix(i * 0x9e3779b97f4a7c15ull + gen[i]);
        for (int k = 0; k < PAGE / 8; k++)
                if (w[k] != word_of(seed, k))
                        return 0;
        return 1;
}

static void verify(uint64_t *bad, uint64_t *sum)
{
        uint64_t b = 0, s = 0;
        for (uint64_t i = 0; i < npages; i++) {
                if (!page_ok(i))
                        b++;
                s = mix(s ^ ((const uint64_t *)(mem + i * PAGE))[0] ^ ((uint64_t)gen[i] << 32));
        }
        *bad = b;
        *sum = s;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        /* PID 1 ignores signals it has no handler for; lxc-stop sends SIGPWR. */
        signal(SIGTERM, on_term);
        signal(SIGPWR, on_term);
        signal(SIGINT, on_term);
        signal(SIGCHLD, reap);
        /* As a container's init, its stdio may be the host's /dev/null
         * (LXC opens it before entering a container without a /dev tmpfs):
         * a file of a mount the container does not see, which CRIU cannot
         * dump. Its own /dev/null instead. */
        int nul = getpid() == 1 ? open("/dev/null", O_RDWR | O_CLOEXEC) : -1;
        for (int fd = 0; nul >= 0 && fd <= 2; fd++)
                dup2(nul, fd);
        if (nul > 2)
                close(nul);
        double mem_mib = 0, dirty_mib_s = 0;
        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--mem-mib"))
                        mem_mib = atof(argv[i + 1]);
                else if (!strcmp(argv[i], "--dirty-mib-s"))
                        dirty_mib_s = atof(argv[i + 1]);
                else if (!strcmp(argv[i], "--fill"))
                        half_fill = !strcmp(argv[i + 1], "half");
        }
        if (mem_mib > 0) {
                npages = (uint64_t)(mem_mib * 256);
                mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                gen = calloc(npages, sizeof(*gen));
                if (mem == MAP_FAILED || !gen) {
                        perror("fm-seqecho: memory");
                        return 1;
                }
                for (uint64_t i = 0; i < npages; i++)
                        fill_page(i);
        }
        double dirty_pages_s = dirty_mib_s * 256, owed = 0, last = now_s();

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
                if (npages && dirty_pages_s > 0) {
                        /* rewrite what is owed since the last turn, at most a second's worth */
                        double t = now_s();
                        owed += (t - last) * dirty_pages_s;
                        last = t;
                        if (owed > dirty_pages_s)
                                owed = dirty_pages_s;
                        for (; owed >= 1; owed -= 1) {
                                uint64_t i = next_dirty++ % npages;
                                gen[i]++;
                                fill_page(i);
                        }
                }
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                if (poll(&pf, 1, npages && dirty_pages_s > 0 ? 1 : -1) <= 0)
                        continue;
                unsigned char buf[256];
                struct sockaddr_in peer;
                socklen_t pl = sizeof(peer);
                ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&peer, &pl);
                if (n < 12)
                        continue;
                int is_write = !memcmp(buf, "FMW1", 4), is_verify = !memcmp(buf, "FMV1", 4);
                if (memcmp(buf, "FMQ1", 4) && !is_write && !is_verify)
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
                unsigned char rep[52];
                size_t rl = 28;
                memcpy(rep, "FMR1", 4);
                memcpy(rep + 4, buf + 4, 8);
                put64(rep + 12, counter);
                put64(rep + 20, boot);
                if (is_verify) {
                        uint64_t bad = 0, sum = 0;
                        verify(&bad, &sum);
                        put64(rep + 28, npages);
                        put64(rep + 36, bad);
                        put64(rep + 44, sum);
                        rl = 52;
                }
                sendto(fd, rep, rl, 0, (struct sockaddr *)&peer, pl);
        }
}
