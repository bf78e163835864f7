/* The TLS relay (src/proto/tls.c): a real TLS 1.3 handshake between two
 * threads over a socketpair standing for the network, then both directions
 * at once with more data than any buffer holds (a relay that blocked on one
 * direction would deadlock here), a half close each way, a server that
 * names another address refused, and no descriptor left behind. */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pki/pki.h"
#include "proto/tls.h"
#include "tap.h"

#define BULK (8u << 20)

typedef struct side {
        int net, app;
        const char *addr; /* client: the address it expects; NULL: server */
        fm_tls_peer_id peer;
        fm_error e;
        uint64_t got, sum_in;
} side;

static void *hs_thread(void *arg)
{
        side *s = arg;
        s->app = s->addr ? fm_tls_client(s->net, s->addr, 5000, &s->peer, &s->e)
                         : fm_tls_server(s->net, 5000, &s->peer, &s->e);
        return NULL;
}

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 2654435761u >> 13); }

typedef struct pump {
        int fd;
        uint64_t n;
        bool half_close; /* shutdown(SHUT_WR) after the last byte */
} pump;

static void *writer(void *arg)
{
        pump *p = arg;
        uint8_t buf[65536];
        for (uint64_t off = 0; off < p->n;) {
                size_t k = p->n - off < sizeof(buf) ? (size_t)(p->n - off) : sizeof(buf);
                for (size_t i = 0; i < k; i++)
                        buf[i] = pattern(off + i);
                if (fm_write_all(p->fd, buf, k) < 0)
                        break;
                off += k;
        }
        if (p->half_close)
                shutdown(p->fd, SHUT_WR);
        return NULL;
}

/* reads to EOF; returns bytes, *bad counts pattern mismatches */
static uint64_t drain(int fd, uint64_t *bad)
{
        uint8_t buf[65536];
        uint64_t n = 0;
        ssize_t r;
        while ((r = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < r; i++)
                        *bad += buf[i] != pattern(n + (uint64_t)i);
                n += (uint64_t)r;
        }
        return n;
}

static int fds_open(void)
{
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        while (d && readdir(d))
                n++;
        if (d)
                closedir(d);
        return n;
}

static bool pair(side *c, side *s, const char *addr)
{
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        *c = (side){.net = sv[0], .addr = addr, .app = -1};
        *s = (side){.net = sv[1], .app = -1};
        pthread_t tc, ts;
        pthread_create(&ts, NULL, hs_thread, s);
        pthread_create(&tc, NULL, hs_thread, c);
        pthread_join(tc, NULL);
        pthread_join(ts, NULL);
        return c->app >= 0 && s->app >= 0;
}

int main(void)
{
        char dir[] = "/tmp/fm-tls-test.XXXXXX";
        if (!mkdtemp(dir))
                return 1;
        fm_error e = {0};
        const char *ip[] = {"127.0.0.1"};
        ok(fm_pki_init(dir, "t", false, &e) == 0 && fm_pki_issue(dir, "h1", "host", ip, 1, 1, &e) == 0,
           "a CA and a host certificate (%s)", e.msg);
        ok(fm_tls_setup(dir, "h1", &e) == 0 && fm_tls_enabled(), "TLS set up (%s)", e.msg);
        int fds0 = fds_open();

        side c, s;
        ok(pair(&c, &s, "127.0.0.1"), "handshake (%s / %s)", c.e.msg, s.e.msg);
        ok(!strcmp(c.peer.name, "h1") && !strcmp(c.peer.role, "host") && !strcmp(s.peer.name, "h1"),
           "each side knows the other's certificate name and role");
        /* both directions at once, 8 MiB each, then a half close each way */
        pump pc = {.fd = c.app, .n = BULK, .half_close = true}, ps = {.fd = s.app, .n = BULK, .half_close = true};
        pthread_t wc, ws;
        pthread_create(&wc, NULL, writer, &pc);
        pthread_create(&ws, NULL, writer, &ps);
        uint64_t bad_s = 0, bad_c = 0;
        uint64_t at_s = drain(s.app, &bad_s);
        uint64_t at_c = drain(c.app, &bad_c);
        pthread_join(wc, NULL);
        pthread_join(ws, NULL);
        ok(at_s == BULK && bad_s == 0, "client -> server: %llu bytes, %llu wrong", (unsigned long long)at_s,
           (unsigned long long)bad_s);
        ok(at_c == BULK && bad_c == 0, "server -> client at the same time: %llu bytes, %llu wrong",
           (unsigned long long)at_c, (unsigned long long)bad_c);
        close(c.app);
        close(s.app);

        /* a request, the client's half close, the reply after it */
        ok(pair(&c, &s, "127.0.0.1"), "second handshake");
        fm_write_all(c.app, "ping", 4);
        shutdown(c.app, SHUT_WR);
        char buf[16] = "";
        ssize_t n = read(s.app, buf, sizeof(buf));
        ssize_t eof = read(s.app, buf + 4, sizeof(buf) - 4);
        ok(n == 4 && !memcmp(buf, "ping", 4) && eof == 0, "the server reads the request, then the end");
        ok(fm_write_all(s.app, "pong", 4) == 0, "and can still answer");
        close(s.app);
        memset(buf, 0, sizeof(buf));
        n = read(c.app, buf, sizeof(buf));
        ok(n == 4 && !memcmp(buf, "pong", 4) && read(c.app, buf, 1) == 0, "the client gets the answer, then the end");
        close(c.app);

        /* the server answers after reading only part of the request and
         * closes with the rest unread: the answer still arrives (a closed
         * socketpair end with bytes unread is an error on the relay's end,
         * and a TCP socket closed so would send a reset) */
        ok(pair(&c, &s, "127.0.0.1"), "third handshake");
        fm_write_all(c.app, "GET / HTTP/1.0\r\n\r\n", 18);
        shutdown(c.app, SHUT_WR);
        n = read(s.app, buf, 8);
        usleep(20000); /* the rest reaches the server's end */
        fm_write_all(s.app, "bad magic", 9);
        close(s.app);
        memset(buf, 0, sizeof(buf));
        n = read(c.app, buf, sizeof(buf));
        ok(n == 9 && !memcmp(buf, "bad magic", 9), "an answer sent before closing with bytes unread arrives (%zd)", n);
        close(c.app);

        /* a server whose certificate names another address */
        ok(!pair(&c, &s, "127.0.0.2") && c.app < 0, "a server that is not the host asked for is refused (%s)",
           c.e.msg);
        if (s.app >= 0)
                close(s.app);

        /* every relay ended: their descriptors are closed */
        int fds1 = 0;
        for (int i = 0; i < 100 && (fds1 = fds_open()) != fds0; i++)
                usleep(20000);
        ok(fds1 == fds0, "no descriptor left (%d before, %d after)", fds0, fds1);
        fm_rm_rf(dir);
        return tap_done();
}
