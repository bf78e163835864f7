/* The fleet's certificate authority and the TLS contexts made from it
 * (docs/PKI.md): one CA per fleet (EC P-256, self-signed), one key and
 * certificate per host agent and per operator, TLS 1.3 with both sides
 * authenticated by that CA alone. OpenSSL 3 does the cryptography. */
#pragma once
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "util/util.h"

#define FM_PKI_DEFAULT_DIR "/etc/fastmig/pki"
#define FM_PKI_NAME_MAX 64  /* a name or fleet and its NUL */
#define FM_PKI_ROLE_MAX 16
#define FM_PKI_MAX_ADDRS 16 /* IP SANs in one certificate */
#define FM_PKI_MAX_DAYS 3650

/* A certificate name or fleet name: [a-z0-9][a-z0-9.-]{0,62}, no "..". */
bool fm_pki_name_is_valid(const char *s);
/* "host" or "operator". */
bool fm_pki_role_is_valid(const char *s);

/* Creates dir (0700, parents as needed), ca.key (0600) and ca.crt for
 * fleet. -EEXIST if ca.key is there, unless force (which replaces the CA:
 * every certificate it issued stops verifying). */
int fm_pki_init(const char *dir, const char *fleet, bool force, fm_error *e);

/* Issues <dir>/<name>.key (0600) and <dir>/<name>.crt for role, signed by
 * the CA in dir, valid for days (1 to FM_PKI_MAX_DAYS); addrs (IPv4 or IPv6
 * literals, at most FM_PKI_MAX_ADDRS) go into the subjectAltName beside
 * DNS:<name>. An existing pair is replaced, each file by a rename. */
int fm_pki_issue(const char *dir, const char *name, const char *role, const char *const *addrs, size_t naddrs,
                 int days, fm_error *e);

/* One certificate found in a PKI directory. */
typedef struct fm_pki_cert {
        char file[256];              /* its file name in the directory */
        char name[FM_PKI_NAME_MAX];  /* subject CN ("?" when missing or odd) */
        char role[FM_PKI_NAME_MAX];  /* subject OU ("fleet CA" for the CA) */
        char sans[1024];             /* "DNS:mec1, IP:10.77.1.2" */
        time_t not_after;
        bool verified;               /* chains to ca.crt, in its validity period */
        char why[512];               /* why not, when not verified */
} fm_pki_cert;

/* The certificates (*.crt) in dir, ca.crt first, then by file name; *out is
 * malloc'ed (free it), untouched on failure. A certificate that cannot be
 * read is listed, not verified, with the reason. */
int fm_pki_list(const char *dir, fm_pki_cert **out, size_t *n, fm_error *e);

/* A TLS 1.3-only context that authenticates the peer by the CA in ca_crt
 * alone (no system store) and presents crt/key, which must match. server:
 * a peer without a certificate is refused. No session tickets, no session
 * cache. NULL on failure, with the file and OpenSSL's reason in *e. */
SSL_CTX *fm_tls_ctx_new(const char *ca_crt, const char *crt, const char *key, bool server, fm_error *e);

/* After a completed handshake on s: the verified peer's name (CN) and role
 * (OU, host or operator). Fails when the peer sent no certificate, its
 * verification did not succeed, or either field is missing or invalid.
 * name/role are untouched on failure. */
int fm_tls_peer(SSL *s, char *name, size_t nlen, char *role, size_t rlen, fm_error *e);
