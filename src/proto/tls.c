#include "tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pki/pki.h"
#include "proto.h"

static SSL_CTX *client_ctx, *server_ctx;
static atomic_int relays_live; /* relay threads not yet ended */
static char self_name[64];
static char pki_dir[512];

int fm_tls_setup(const char *dir, const char *name, fm_error *e)
{
        if (!fm_pki_name_is_valid(name))
                return fm_err(e, EINVAL, "bad certificate name `%s'", name);
        char ca[600], crt[600], key[600];
        snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
        snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", dir, name);
        SSL_CTX *c = fm_tls_ctx_new(ca, crt, key, false, e);
        SSL_CTX *s = c ? fm_tls_ctx_new(ca, crt, key, true, e) : NULL;
        if (!s) {
                SSL_CTX_free(c);
                return -e->code;
        }
#ifdef FM_BENCH_CLEARTEXT
        SSL_CTX_set_num_tickets(s, 0);
        static bool warned;
        if (!warned)
                fprintf(stderr, "fastmig: THIS IS A BENCHMARK BUILD (bench_cleartext): data travels unencrypted\n");
        warned = true;
#endif
        SSL_CTX_free(client_ctx);
        SSL_CTX_free(server_ctx);
        client_ctx = c;
        server_ctx = s;
        snprintf(self_name, sizeof(self_name), "%s", name);
        snprintf(pki_dir, sizeof(pki_dir), "%s", dir);
        return 0;
}

bool fm_tls_enabled(void) { return client_ctx != NULL; }
const char *fm_tls_self(void) { return self_name; }
const char *fm_tls_dir(void) { return pki_dir; }

static const char *ssl_reason(void)
{
        static __thread char buf[256];
        unsigned long err = ERR_get_error();
        if (!err)
                return "connection closed";
        ERR_error_string_n(err, buf, sizeof(buf));
        ERR_clear_error();
        return buf;
}

/* ---- the relay ---- */

#define RELAY_BUF (64 * 1024)

typedef struct relay {
        SSL *ssl;
        int net;  /* the TCP socket, non-blocking */
        int app;  /* our end of the socketpair, non-blocking */
        uint8_t a2n[RELAY_BUF], n2a[RELAY_BUF];
        size_t a2n_len, a2n_off, n2a_len, n2a_off;
        bool app_eof;  /* the application closed its writing side */
        bool net_eof;  /* the peer closed its side (close_notify or EOF) */
        bool shut_sent;
} relay;

/* One pass of work; returns true if anything moved. want_* say what to
 * poll for when nothing did. */
static bool relay_step(relay *r, short *app_ev, short *net_ev, bool *dead)
{
        bool moved = false;
        *app_ev = 0;
        *net_ev = 0;
        /* application -> network */
        if (r->a2n_len == 0 && !r->app_eof) {
                ssize_t n = read(r->app, r->a2n, sizeof(r->a2n));
                if (n > 0) {
                        r->a2n_len = (size_t)n;
                        r->a2n_off = 0;
                        moved = true;
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                        r->app_eof = true;
                        moved = true;
                } else {
                        *app_ev |= POLLIN;
                }
        }
        if (r->a2n_len > 0) {
                int w = SSL_write(r->ssl, r->a2n + r->a2n_off, (int)(r->a2n_len - r->a2n_off));
                if (w > 0) {
                        r->a2n_off += (size_t)w;
                        if (r->a2n_off == r->a2n_len)
                                r->a2n_len = 0;
                        moved = true;
                } else {
                        int err = SSL_get_error(r->ssl, w);
                        if (err == SSL_ERROR_WANT_WRITE)
                                *net_ev |= POLLOUT;
                        else if (err == SSL_ERROR_WANT_READ)
                                *net_ev |= POLLIN;
                        else {
                                *dead = true;
                                return true;
                        }
                }
        } else if (r->app_eof && !r->shut_sent) {
                /* TLS 1.3 keeps reading after our close_notify: a half close */
                int s = SSL_shutdown(r->ssl);
                if (s >= 0 || SSL_get_error(r->ssl, s) != SSL_ERROR_WANT_WRITE) {
                        r->shut_sent = true;
                        moved = true;
                } else {
                        *net_ev |= POLLOUT;
                }
        }
        /* network -> application */
        if (r->n2a_len == 0 && !r->net_eof) {
                int n = SSL_read(r->ssl, r->n2a, sizeof(r->n2a));
                if (n > 0) {
                        r->n2a_len = (size_t)n;
                        r->n2a_off = 0;
                        moved = true;
                } else {
                        int err = SSL_get_error(r->ssl, n);
                        if (err == SSL_ERROR_WANT_READ)
                                *net_ev |= POLLIN;
                        else if (err == SSL_ERROR_WANT_WRITE)
                                *net_ev |= POLLOUT;
                        else {
                                /* close_notify, EOF, or a broken record: the
                                 * application sees the end of the stream
                                 * (the frames above detect a truncation) */
                                ERR_clear_error();
                                r->net_eof = true;
                                shutdown(r->app, SHUT_WR);
                                moved = true;
                        }
                }
        }
        if (r->n2a_len > 0) {
                ssize_t w = write(r->app, r->n2a + r->n2a_off, r->n2a_len - r->n2a_off);
                if (w > 0) {
                        r->n2a_off += (size_t)w;
                        if (r->n2a_off == r->n2a_len)
                                r->n2a_len = 0;
                        moved = true;
                } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                        *app_ev |= POLLOUT;
                } else {
                        /* the application closed: nothing more to deliver */
                        r->n2a_len = 0;
                        r->net_eof = true;
                        moved = true;
                }
        }
        if (r->net_eof && r->app_eof && r->shut_sent && r->a2n_len == 0 && r->n2a_len == 0)
                *dead = true;
        return moved;
}

static int set_nonblock(int fd, bool on);

static void *relay_thread(void *arg)
{
        relay *r = arg;
        bool app_gone = false; /* its descriptor is closed: nothing can reach it */
        bool net_gone = false; /* the peer closed: what it sent is still read */
        for (;;) {
                short app_ev, net_ev;
                bool dead = false;
                bool moved = relay_step(r, &app_ev, &net_ev, &dead);
                if (dead || (app_gone && r->app_eof && r->a2n_len == 0 && r->shut_sent))
                        break;
                if (moved)
                        continue;
                /* a side that hung up is not polled again (it would wake
                 * us at once, forever); its state is learnt by reading */
                struct pollfd pf[2] = {{.fd = app_gone ? -1 : r->app, .events = app_ev},
                                       {.fd = net_gone ? -1 : r->net, .events = net_ev}};
                if (app_gone && net_gone)
                        break;
                if (poll(pf, 2, -1) < 0 && errno != EINTR)
                        break;
                if ((pf[0].revents & POLLNVAL) || (pf[1].revents & (POLLERR | POLLNVAL)))
                        break;
                /* an application that closed with bytes unread leaves an
                 * error on our end (ECONNRESET), but what it wrote before is
                 * queued: still read and sent */
                if (pf[0].revents & (POLLHUP | POLLERR))
                        app_gone = true;
                if (pf[1].revents & POLLHUP)
                        net_gone = true;
        }
        /* A TCP socket closed with bytes unread sends a reset, and a reset
         * can destroy what we sent last before the peer reads it (seen: a
         * reply lost after the agent closed a request it had not read to
         * its end). So the end is a half close, then what the peer still
         * sends (its close_notify) is read until it closes, for at most 1 s. */
        shutdown(r->net, SHUT_WR);
        set_nonblock(r->net, false);
        fm_sock_set_timeout(r->net, 1000);
        char junk[4096];
        for (int i = 0; i < 1024 && read(r->net, junk, sizeof(junk)) > 0; i++)
                ;
        SSL_free(r->ssl);
        close(r->net);
        close(r->app);
        free(r);
        /* OpenSSL's state of this thread (its error queue) is freed now,
         * not by a thread-exit destructor that may run after a process
         * that drained its relays has exited (LSan saw it as a leak) */
        OPENSSL_thread_stop();
        atomic_fetch_sub(&relays_live, 1);
        return NULL;
}

bool fm_tls_drain(int timeout_ms)
{
        for (int i = 0; atomic_load(&relays_live) > 0 && i < timeout_ms; i++)
                usleep(1000);
        return atomic_load(&relays_live) == 0;
}

static int set_nonblock(int fd, bool on)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0 ? -errno : 0;
}

/* After the handshake: the socketpair, the relay thread; returns the
 * application's descriptor. Consumes ssl and net. */
static int relay_start(SSL *ssl, int net, fm_error *e)
{
        int sv[2];
        relay *r = calloc(1, sizeof(*r));
        if (!r || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                int err = r ? errno : ENOMEM;
                free(r);
                SSL_free(ssl);
                close(net);
                return fm_err(e, err, "relay: %s", strerror(err));
        }
        fm_sock_set_timeout(net, 0);
        set_nonblock(net, true);
        set_nonblock(sv[1], true);
        r->ssl = ssl;
        r->net = net;
        r->app = sv[1];
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        atomic_fetch_add(&relays_live, 1);
        int err = pthread_create(&th, &at, relay_thread, r);
        pthread_attr_destroy(&at);
        if (err) {
                atomic_fetch_sub(&relays_live, 1);
                SSL_free(ssl);
                close(net);
                close(sv[0]);
                close(sv[1]);
                free(r);
                return fm_err(e, err, "relay thread: %s", strerror(err));
        }
        return sv[0];
}

static int handshake(int net, const char *addr, int timeout_ms, fm_tls_peer_id *peer, fm_error *e)
{
        bool server = addr == NULL;
        fm_tls_peer_id id = {0};
        SSL *ssl = SSL_new(server ? server_ctx : client_ctx);
        if (!ssl) {
                fm_err(e, ENOMEM, "TLS: %s", ssl_reason());
                goto fail;
        }
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        /* the server must be the host the caller named */
        if (!server && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), addr)) {
                fm_err(e, EINVAL, "TLS: bad address `%s'", addr);
                goto fail;
        }
        set_nonblock(net, false);
        fm_sock_set_timeout(net, timeout_ms > 0 ? timeout_ms : 10000);
        SSL_set_fd(ssl, net);
        int r = server ? SSL_accept(ssl) : SSL_connect(ssl);
        if (r != 1) {
                int err = SSL_get_error(ssl, r);
                const char *why = err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)
                                          ? "timed out"
                                          : ssl_reason();
                long v = SSL_get_verify_result(ssl);
                fm_err(e, EACCES, "TLS handshake %s %s failed: %s%s%s", server ? "from" : "with",
                       server ? "a client" : addr, why, v != X509_V_OK ? ": " : "",
                       v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
                goto fail;
        }
        if (fm_tls_peer(ssl, id.name, sizeof(id.name), id.role, sizeof(id.role), e) < 0)
                goto fail;
        if (!server && strcmp(id.role, "host")) {
                fm_err(e, EACCES, "%s presents an %s certificate (%s), not a host's", addr, id.role, id.name);
                goto fail;
        }
        if (peer)
                *peer = id;
#ifdef FM_BENCH_CLEARTEXT
        /* the benchmark build: authenticated, then the data in clear on the
         * socket itself (no session tickets follow the handshake: see
         * fm_tls_setup), to measure what encryption costs a migration */
        SSL_set_quiet_shutdown(ssl, 1);
        SSL_free(ssl);
        return net;
#endif
        return relay_start(ssl, net, e);
fail:
        SSL_free(ssl);
        close(net);
        return -e->code;
}

int fm_tls_client(int tcp_fd, const char *addr, int timeout_ms, fm_tls_peer_id *peer, fm_error *e)
{
        if (!client_ctx) {
                close(tcp_fd);
                return fm_err(e, EACCES, "no fleet certificate to connect with (fastmig: FASTMIG_PKI, "
                                         "fastmigd: --pki; docs/PKI.md)");
        }
        return handshake(tcp_fd, addr, timeout_ms, peer, e);
}

int fm_tls_server(int tcp_fd, int timeout_ms, fm_tls_peer_id *peer, fm_error *e)
{
        if (!server_ctx) {
                close(tcp_fd);
                return fm_err(e, EINVAL, "TLS is not set up");
        }
        return handshake(tcp_fd, NULL, timeout_ms, peer, e);
}
