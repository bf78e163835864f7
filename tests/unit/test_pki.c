/* The fleet PKI on scratch directories: a CA, a host and an operator
 * certificate (files, modes, extensions), refusals of bad input, and real
 * TLS 1.3 handshakes over a socketpair between two threads: the fleet's
 * own peers talk and learn each other's name and role; a client with a
 * certificate from another CA, a client with none, and a client that
 * trusts another CA get nothing through. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki/pki.h"
#include "tap.h"

static char root[] = "/tmp/fm-pki.XXXXXX";
static char dir[200], dir2[200];

static const char *at(const char *d, const char *file)
{
        static char buf[4][300];
        static int i;
        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", d, file);
        return buf[i];
}

static int mode_of(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static X509 *load(const char *path)
{
        FILE *f = fopen(path, "re");
        X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f)
                fclose(f);
        return x;
}

/* the queued OpenSSL errors, joined */
static void errs(char *buf, size_t n)
{
        unsigned long x;
        size_t l = strlen(buf);
        while ((x = ERR_get_error()) != 0 && l + 3 < n) {
                if (l)
                        buf[l++] = ';', buf[l++] = ' ';
                ERR_error_string_n(x, buf + l, n - l);
                l = strlen(buf);
        }
}

/* ---- one side of a TLS connection, in a thread ---- */

typedef struct side {
        SSL_CTX *ctx;
        int fd;
        bool server;
        bool hs_ok;      /* SSL_accept or SSL_connect returned 1 */
        int version;
        bool resumable;  /* the session could be resumed (a ticket came) */
        int peer_r;      /* fm_tls_peer */
        char name[FM_PKI_NAME_MAX], role[FM_PKI_ROLE_MAX], peer_err[1024];
        char got[16];    /* what it read from the other side */
        char err[1024];  /* OpenSSL's errors */
} side;

static bool read5(SSL *ssl, char *buf)
{
        int n = 0;
        while (n < 5) {
                int r = SSL_read(ssl, buf + n, 5 - n);
                if (r <= 0)
                        return false;
                n += r;
        }
        buf[5] = '\0';
        return true;
}

/* The server speaks first ("pong!"), then reads; the client reads, then
 * writes "ping!". A refused client thus learns of it at its first read. */
static void *side_run(void *arg)
{
        side *s = arg;
        s->peer_r = -1;
        SSL *ssl = SSL_new(s->ctx);
        char buf[16] = "";
        if (ssl && SSL_set_fd(ssl, s->fd) == 1) {
                s->hs_ok = (s->server ? SSL_accept(ssl) : SSL_connect(ssl)) == 1;
                if (s->hs_ok) {
                        s->version = SSL_version(ssl);
                        fm_error e = {0};
                        s->peer_r = fm_tls_peer(ssl, s->name, sizeof(s->name), s->role, sizeof(s->role), &e);
                        snprintf(s->peer_err, sizeof(s->peer_err), "%s", e.msg);
                        bool done = s->server ? SSL_write(ssl, "pong!", 5) == 5 && read5(ssl, buf)
                                              : read5(ssl, buf) && SSL_write(ssl, "ping!", 5) == 5;
                        if (done)
                                snprintf(s->got, sizeof(s->got), "%s", buf);
                        /* a server sends its tickets right after the handshake, before "pong!" */
                        s->resumable = SSL_SESSION_is_resumable(SSL_get0_session(ssl)) == 1;
                        if (done)
                                SSL_shutdown(ssl);
                }
        }
        errs(s->err, sizeof(s->err));
        SSL_free(ssl);
        close(s->fd);
        return NULL;
}

static void talk(SSL_CTX *sctx, SSL_CTX *cctx, side *srv, side *cli)
{
        int sv[2] = {-1, -1};
        *srv = (side){.ctx = sctx, .server = true};
        *cli = (side){.ctx = cctx};
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                snprintf(srv->err, sizeof(srv->err), "socketpair: %s", strerror(errno));
                return;
        }
        struct timeval tv = {.tv_sec = 10}; /* a bug must not hang the test */
        for (int i = 0; i < 2; i++) {
                setsockopt(sv[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                setsockopt(sv[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        srv->fd = sv[0];
        cli->fd = sv[1];
        pthread_t a, b;
        pthread_create(&a, NULL, side_run, srv);
        pthread_create(&b, NULL, side_run, cli);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
}

/* ---- tests ---- */

static void test_files(void)
{
        fm_error e = {0};
        ok(fm_pki_init(dir, "test-fleet", false, &e) == 0, "init a CA in a new nested directory: %s", e.msg);
        ok(mode_of(dir) == 0700, "its directory is 0700 (%o)", mode_of(dir));
        ok(mode_of(at(dir, "ca.key")) == 0600, "ca.key is 0600 (%o)", mode_of(at(dir, "ca.key")));
        ok(mode_of(at(dir, "ca.crt")) == 0644, "ca.crt is 0644 (%o)", mode_of(at(dir, "ca.crt")));
        fm_err_clear(&e);
        ok(fm_pki_init(dir, "test-fleet", false, &e) == -EEXIST && strstr(e.msg, "ca.key"),
           "a second init is refused, naming ca.key: %s", e.msg);

        const char *addrs[] = {"10.77.1.2", "fd00::2"};
        fm_err_clear(&e);
        ok(fm_pki_issue(dir, "mec1", "host", addrs, 2, 30, &e) == 0, "issue a host certificate: %s", e.msg);
        fm_err_clear(&e);
        ok(fm_pki_issue(dir, "alice", "operator", NULL, 0, 365, &e) == 0, "issue an operator certificate: %s", e.msg);
        ok(mode_of(at(dir, "mec1.key")) == 0600 && mode_of(at(dir, "alice.key")) == 0600, "their keys are 0600");
        ok(mode_of(at(dir, "mec1.crt")) == 0644, "certificates are 0644");

        X509 *ca = load(at(dir, "ca.crt")), *h = load(at(dir, "mec1.crt"));
        ok(ca && X509_check_ca(ca) == 1 && X509_get_pathlen(ca) == 0, "ca.crt is a CA with pathlen 0");
        ok(ca && X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN), "the CA may sign certificates and CRLs");
        ok(ca && X509_get0_subject_key_id(ca) != NULL, "the CA has a subject key identifier");
        ok(h && X509_check_ca(h) == 0, "the host certificate is no CA");
        ok(h && X509_get_key_usage(h) == KU_DIGITAL_SIGNATURE, "its key usage is digitalSignature");
        ok(h && (X509_get_extended_key_usage(h) & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) == (XKU_SSL_SERVER | XKU_SSL_CLIENT),
           "it serves and it is a client");
        ok(h && X509_check_host(h, "mec1", 0, 0, NULL) == 1 && X509_check_host(h, "mec2", 0, 0, NULL) == 0,
           "DNS:mec1 in its alt names, and no other");
        ok(h && X509_check_ip_asc(h, "10.77.1.2", 0) == 1 && X509_check_ip_asc(h, "fd00::2", 0) == 1 &&
                   X509_check_ip_asc(h, "10.77.1.3", 0) == 0,
           "its IPv4 and IPv6 addresses, and no other");
        ok(h && ca && ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(h), X509_get0_subject_key_id(ca)) == 0,
           "its authority key identifier is the CA's");
        BIGNUM *sn = h ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(h), NULL) : NULL;
        ok(sn && BN_num_bits(sn) == 128, "a 128-bit serial (%d bits)", sn ? BN_num_bits(sn) : -1);
        BN_free(sn);
        time_t now = time(NULL);
        int before = 1, after = 1;
        if (h) {
                time_t nb = now - 240, na = now + 30 * 86400 - 60;
                before = X509_cmp_time(X509_get0_notBefore(h), &nb); /* < 0: earlier than nb */
                after = X509_cmp_time(X509_get0_notAfter(h), &na);
        }
        ok(before < 0 && after > 0, "valid from minutes ago for 30 days");
        char old_serial[64] = "";
        if (h) {
                char *s = i2s_ASN1_INTEGER(NULL, X509_get0_serialNumber(h));
                snprintf(old_serial, sizeof(old_serial), "%s", s ? s : "");
                OPENSSL_free(s);
        }
        X509_free(h);
        X509_free(ca);

        /* issued again: replaced, with a new key and serial, nothing left behind */
        char *k1 = NULL, *k2 = NULL;
        fm_read_file(at(dir, "mec1.key"), &k1, 1 << 16);
        fm_err_clear(&e);
        ok(fm_pki_issue(dir, "mec1", "host", addrs, 1, 30, &e) == 0, "mec1 issued again: %s", e.msg);
        fm_read_file(at(dir, "mec1.key"), &k2, 1 << 16);
        h = load(at(dir, "mec1.crt"));
        char *s = h ? i2s_ASN1_INTEGER(NULL, X509_get0_serialNumber(h)) : NULL;
        ok(k1 && k2 && strcmp(k1, k2) && s && strcmp(s, old_serial), "with a new key and serial");
        ok(mode_of(at(dir, "mec1.key")) == 0600, "the new key is 0600 too");
        OPENSSL_free(s);
        X509_free(h);
        free(k1);
        free(k2);
        DIR *d = opendir(dir);
        int hidden = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                hidden += de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
        if (d)
                closedir(d);
        ok(d && hidden == 0, "no temporary file is left (%d)", hidden);
}

static void test_refusals(void)
{
        static const char *const bad_names[] = {"../x", "", "A B", "a..b", "-x", "x/y", "ca"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(bad_names); i++) {
                fm_error e = {0};
                char quoted[32];
                snprintf(quoted, sizeof(quoted), "`%s'", bad_names[i]);
                ok(fm_pki_issue(dir, bad_names[i], "host", NULL, 0, 30, &e) == -EINVAL && strstr(e.msg, quoted),
                   "name %s refused: %s", quoted, e.msg);
        }
        ok(!fm_path_exists(at(dir, "A B.crt")) && !fm_path_exists(at(dir, "A B.key")), "and no file written");
        fm_error e = {0};
        ok(fm_pki_issue(dir, "mec2", "admin", NULL, 0, 30, &e) == -EINVAL && strstr(e.msg, "`admin'"),
           "role admin refused: %s", e.msg);
        const char *bad_ip[] = {"10.0.0.256"}, *zone[] = {"fe80::1%eth0"};
        fm_err_clear(&e);
        ok(fm_pki_issue(dir, "mec2", "host", bad_ip, 1, 30, &e) == -EINVAL && strstr(e.msg, "`10.0.0.256'"),
           "address 10.0.0.256 refused: %s", e.msg);
        fm_err_clear(&e);
        ok(fm_pki_issue(dir, "mec2", "host", zone, 1, 30, &e) == -EINVAL, "an address with a zone refused: %s", e.msg);
        fm_err_clear(&e);
        ok(fm_pki_issue(dir, "mec2", "host", NULL, 0, 0, &e) == -EINVAL, "0 days refused: %s", e.msg);
        ok(!fm_path_exists(at(dir, "mec2.crt")), "no mec2 certificate after all that");
        fm_err_clear(&e);
        ok(fm_pki_init(dir2, "Other Fleet", false, &e) == -EINVAL && strstr(e.msg, "`Other Fleet'"),
           "a bad fleet name refused: %s", e.msg);
}

static void test_contexts(void)
{
        fm_error e = {0};
        SSL_CTX *c = fm_tls_ctx_new(at(dir, "ca.crt"), at(dir, "mec1.crt"), at(dir, "alice.key"), true, &e);
        ok(!c && strstr(e.msg, "alice.key") && strstr(e.msg, "error:"), "a key that is not the certificate's: %s",
           e.msg);
        SSL_CTX_free(c);
        fm_err_clear(&e);
        c = fm_tls_ctx_new(at(dir, "ca.crt"), at(dir, "nonexistent.crt"), at(dir, "alice.key"), true, &e);
        ok(!c && e.code == ENOENT && strstr(e.msg, "nonexistent.crt"), "a missing file: %s", e.msg);
        SSL_CTX_free(c);
        fm_err_clear(&e);
        c = fm_tls_ctx_new(at(dir, "mec1.crt"), at(dir, "alice.crt"), at(dir, "alice.key"), false, &e);
        ok(!c && strstr(e.msg, "not a CA"), "a trust anchor that is no CA: %s", e.msg);
        SSL_CTX_free(c);
        chmod(at(dir, "alice.key"), 0644);
        fm_err_clear(&e);
        c = fm_tls_ctx_new(at(dir, "ca.crt"), at(dir, "alice.crt"), at(dir, "alice.key"), false, &e);
        ok(!c && e.code == EPERM && strstr(e.msg, "alice.key"), "a key others can read: %s", e.msg);
        SSL_CTX_free(c);
        chmod(at(dir, "alice.key"), 0600);
}

static void test_handshakes(void)
{
        fm_error e = {0};
        SSL_CTX *sctx = fm_tls_ctx_new(at(dir, "ca.crt"), at(dir, "mec1.crt"), at(dir, "mec1.key"), true, &e);
        ok(sctx != NULL, "server context from the host certificate: %s", e.msg);
        SSL_CTX *cctx = fm_tls_ctx_new(at(dir, "ca.crt"), at(dir, "alice.crt"), at(dir, "alice.key"), false, &e);
        ok(cctx != NULL, "client context from the operator certificate: %s", e.msg);
        if (!sctx || !cctx) {
                SSL_CTX_free(sctx);
                SSL_CTX_free(cctx);
                return;
        }
        side srv, cli;
        talk(sctx, cctx, &srv, &cli);
        ok(srv.hs_ok && cli.hs_ok, "handshake on both sides (%s | %s)", srv.err, cli.err);
        ok(srv.version == TLS1_3_VERSION && cli.version == TLS1_3_VERSION, "TLS 1.3 (%x, %x)", srv.version,
           cli.version);
        ok(!strcmp(srv.got, "ping!") && !strcmp(cli.got, "pong!"), "bytes both ways (`%s', `%s')", srv.got, cli.got);
        ok(!cli.resumable, "no session ticket reached the client");
        ok(srv.peer_r == 0 && !strcmp(srv.name, "alice") && !strcmp(srv.role, "operator"),
           "the server sees alice, operator (%s, %s) %s", srv.name, srv.role, srv.peer_err);
        ok(cli.peer_r == 0 && !strcmp(cli.name, "mec1") && !strcmp(cli.role, "host"),
           "the client sees mec1, host (%s, %s) %s", cli.name, cli.role, cli.peer_err);

        SSL *idle = SSL_new(cctx);
        char n[FM_PKI_NAME_MAX] = "", r[FM_PKI_ROLE_MAX] = "";
        fm_err_clear(&e);
        ok(idle && fm_tls_peer(idle, n, sizeof(n), r, sizeof(r), &e) < 0 && !n[0], "no peer before a handshake: %s",
           e.msg);
        SSL_free(idle);

        /* a certificate from another fleet's CA, presented to our server */
        fm_err_clear(&e);
        ok(fm_pki_init(dir2, "other", false, &e) == 0 && fm_pki_issue(dir2, "mallory", "operator", NULL, 0, 30, &e) == 0,
           "another CA and an operator of its own: %s", e.msg);
        SSL_CTX *mctx = fm_tls_ctx_new(at(dir, "ca.crt"), at(dir2, "mallory.crt"), at(dir2, "mallory.key"), false, &e);
        ok(mctx != NULL, "a client context with it: %s", e.msg);
        if (mctx) {
                talk(sctx, mctx, &srv, &cli);
                ok(!srv.hs_ok && strstr(srv.err, "certificate verify failed"), "the server refuses it: %s", srv.err);
                /* TLS 1.3: the client's handshake ends before the server has checked its
                 * certificate; the server's alert comes to its first read */
                ok((!cli.hs_ok || strstr(cli.err, "alert unknown ca")), "the client is told (%s)", cli.err);
                ok(!srv.got[0] && !cli.got[0], "no data passes (`%s', `%s')", srv.got, cli.got);
                SSL_CTX_free(mctx);
        }

        /* a client without a certificate */
        SSL_CTX *nctx = SSL_CTX_new(TLS_client_method());
        X509 *ca = load(at(dir, "ca.crt"));
        if (nctx && ca) {
                SSL_CTX_set_min_proto_version(nctx, TLS1_3_VERSION);
                X509_STORE_add_cert(SSL_CTX_get_cert_store(nctx), ca);
                SSL_CTX_set_verify(nctx, SSL_VERIFY_PEER, NULL);
                talk(sctx, nctx, &srv, &cli);
                ok(!srv.hs_ok && strstr(srv.err, "peer did not return a certificate"), "the server refuses a client "
                   "without a certificate: %s", srv.err);
                ok(!cli.hs_ok || strstr(cli.err, "alert certificate required"), "the client is told (%s)", cli.err);
                ok(!srv.got[0] && !cli.got[0], "no data passes");
        } else {
                ok(false, "a plain client context");
        }
        X509_free(ca);
        SSL_CTX_free(nctx);

        /* a client that trusts only the other CA refuses our server */
        fm_err_clear(&e);
        SSL_CTX *octx = fm_tls_ctx_new(at(dir2, "ca.crt"), at(dir2, "mallory.crt"), at(dir2, "mallory.key"), false, &e);
        ok(octx != NULL, "a client context of the other fleet: %s", e.msg);
        if (octx) {
                talk(sctx, octx, &srv, &cli);
                ok(!cli.hs_ok && strstr(cli.err, "certificate verify failed"), "it refuses our server: %s", cli.err);
                ok(!srv.hs_ok && !srv.got[0] && !cli.got[0], "and nothing passes (%s)", srv.err);
                SSL_CTX_free(octx);
        }
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
}

static void test_list(void)
{
        char *m = NULL;
        int len = fm_read_file(at(dir2, "mallory.crt"), &m, 1 << 16);
        ok(len > 0 && fm_write_file(at(dir, "mallory.crt"), m, (size_t)len, 0644) == 0, "a stranger's certificate "
           "copied in");
        free(m);
        fm_pki_cert *v = NULL;
        size_t n = 0;
        fm_error e = {0};
        ok(fm_pki_list(dir, &v, &n, &e) == 0 && n == 4, "four certificates listed (%zu) %s", n, e.msg);
        if (v && n == 4) {
                ok(!strcmp(v[0].file, "ca.crt") && !strcmp(v[0].name, "test-fleet") && !strcmp(v[0].role, "fleet CA") &&
                           v[0].verified,
                   "the CA first (%s %s %s)", v[0].file, v[0].name, v[0].role);
                ok(!strcmp(v[1].name, "alice") && !strcmp(v[1].role, "operator") && v[1].verified &&
                           !strcmp(v[1].sans, "DNS:alice"),
                   "alice, operator, verifies (%s)", v[1].sans);
                ok(!strcmp(v[2].name, "mallory") && !v[2].verified && v[2].why[0], "mallory does not verify: %s",
                   v[2].why);
                ok(!strcmp(v[3].name, "mec1") && !strcmp(v[3].role, "host") && v[3].verified &&
                           !strcmp(v[3].sans, "DNS:mec1, IP:10.77.1.2") && v[3].not_after > time(NULL) + 29 * 86400,
                   "mec1, host, verifies (%s)", v[3].sans);
        }
        free(v);

        /* a forced init replaces the CA: what the old one issued stops verifying */
        v = NULL;
        fm_err_clear(&e);
        ok(fm_pki_init(dir, "test-fleet", true, &e) == 0 && mode_of(at(dir, "ca.key")) == 0600,
           "init --force replaces the CA: %s", e.msg);
        ok(fm_pki_list(dir, &v, &n, &e) == 0 && n == 4 && v[0].verified && !v[3].verified,
           "mec1 no longer verifies (%s)", v && n == 4 ? v[3].why : e.msg);
        free(v);
        fm_err_clear(&e);
        ok(fm_pki_list(at(root, "nowhere"), &v, &n, &e) == -ENOENT, "listing a missing directory: %s", e.msg);
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        if (!mkdtemp(root)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        snprintf(dir, sizeof(dir), "%s/etc/fastmig/pki", root);
        snprintf(dir2, sizeof(dir2), "%s/other", root);
        test_files();
        test_refusals();
        test_contexts();
        test_handshakes();
        test_list();
        fm_rm_rf(root);
        return tap_done();
}
