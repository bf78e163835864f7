#include "pki.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CA_DAYS 3653   /* ten years and their leap days */
#define BACKDATE_S 300 /* notBefore 5 min back: a peer whose clock lags a little still accepts a fresh cert */

#define PKI_CLEANUP(type, fn) \
        static inline void fn##_p(type **p) { fn(*p); }
PKI_CLEANUP(X509, X509_free)
PKI_CLEANUP(EVP_PKEY, EVP_PKEY_free)
PKI_CLEANUP(BIO, BIO_free_all)
PKI_CLEANUP(BIGNUM, BN_free)
PKI_CLEANUP(X509_STORE, X509_STORE_free)
PKI_CLEANUP(X509_STORE_CTX, X509_STORE_CTX_free)
PKI_CLEANUP(SSL_CTX, SSL_CTX_free)
#define _cleanup_(f) __attribute__((cleanup(f)))

/* ---- names and errors ---- */

bool fm_pki_name_is_valid(const char *s)
{
        if (!s || !*s || strlen(s) > FM_PKI_NAME_MAX - 1 || strstr(s, ".."))
                return false;
        for (const char *p = s; *p; p++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (p != s && (c == '.' || c == '-'))))
                        return false;
        }
        return true;
}

bool fm_pki_role_is_valid(const char *s)
{
        return s && (!strcmp(s, "host") || !strcmp(s, "operator"));
}

/* OpenSSL's queued errors in buf (the root cause and, when another, the
 * last word); empties the queue. */
static const char *ossl_why(char *buf, size_t n)
{
        unsigned long first = ERR_get_error(), last = first, x;
        while ((x = ERR_get_error()) != 0)
                last = x;
        if (!first) {
                snprintf(buf, n, "no reason given by OpenSSL");
                return buf;
        }
        ERR_error_string_n(first, buf, n);
        size_t l = strlen(buf);
        if (last != first && l + 3 < n) {
                memcpy(buf + l, "; ", 2);
                ERR_error_string_n(last, buf + l + 2, n - l - 2);
        }
        return buf;
}

static int ossl_fail(fm_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ossl_fail(fm_error *e, int code, const char *fmt, ...)
{
        char what[512], why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return fm_err(e, code, "%s: %s", what, ossl_why(why, sizeof(why)));
}

static int path_in(char *buf, size_t n, const char *dir, const char *file, fm_error *e)
{
        if ((size_t)snprintf(buf, n, "%s/%s", dir, file) >= n)
                return fm_err(e, ENAMETOOLONG, "path too long: %s/%s", dir, file);
        return 0;
}

/* ---- files ---- */

/* path (st) is a directory (dir) or a regular file, and grants none of bits. */
static int stat_check(const char *path, const struct stat *st, bool dir, mode_t bits, const char *what, fm_error *e)
{
        if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
                return fm_err(e, dir ? ENOTDIR : EINVAL, "%s is not a %s", path, dir ? "directory" : "regular file");
        if (st->st_mode & bits)
                return fm_err(e, EPERM, "%s is %s (mode %04o)", path, what, (unsigned)(st->st_mode & 07777));
        return 0;
}

/* A directory for the CA's files that no one else can write into. */
static int dir_prepare(const char *dir, bool create, fm_error *e)
{
        if (create) {
                int r = fm_mkdir_p(dir, 0700);
                if (r < 0)
                        return fm_err(e, r, "creating %s: %s", dir, strerror(-r));
        }
        struct stat st;
        if (stat(dir, &st) < 0)
                return fm_err(e, errno, "%s: %s", dir, strerror(errno));
        return stat_check(dir, &st, true, 022, "writable by others: not a place for keys", e);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
        (void)buf, (void)size, (void)rwflag, (void)u;
        return -1; /* our keys have none; never prompt on a terminal */
}

/* A private key from a file only its owner can read. */
static int key_load(const char *path, EVP_PKEY **out, fm_error *e)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fm_err(e, errno, "opening %s: %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return fm_err(e, errno, "%s: %s", path, strerror(errno));
        int r = stat_check(path, &st, false, 077, "open to others: a private key must be 0600", e);
        if (r < 0)
                return r;
        _cleanup_(BIO_free_all_p) BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
        if (!k)
                return ossl_fail(e, EINVAL, "reading the key in %s", path);
        *out = k;
        return 0;
}

static int cert_load(const char *path, X509 **out, fm_error *e)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fm_err(e, errno, "opening %s: %s", path, strerror(errno));
        _cleanup_(BIO_free_all_p) BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        if (!x)
                return ossl_fail(e, EINVAL, "reading the certificate in %s", path);
        *out = x;
        return 0;
}

typedef int (*pem_put)(BIO *b, void *obj);
static int put_key(BIO *b, void *k) { return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL); }
static int put_cert(BIO *b, void *x) { return PEM_write_bio_X509(b, x); }

/* Writes obj into a new hidden file beside dir/file (tmp): created with its
 * final mode, so a key is never readable by others, even for a moment, and
 * never through a link someone left there. */
static int tmp_write(const char *dir, const char *file, int mode, pem_put put, void *obj, char *tmp, size_t tlen,
                     fm_error *e)
{
        unsigned char rnd[6];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return ossl_fail(e, EIO, "random bytes");
        if ((size_t)snprintf(tmp, tlen, "%s/.%s.%02x%02x%02x%02x%02x%02x", dir, file, rnd[0], rnd[1], rnd[2], rnd[3],
                             rnd[4], rnd[5]) >= tlen)
                return fm_err(e, ENAMETOOLONG, "path too long: %s/%s", dir, file);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return fm_err(e, errno, "creating %s: %s", tmp, strerror(errno));
        int r = 0;
        BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
        if (fchmod(fd, (mode_t)mode) < 0) /* the umask took bits off a certificate's 0644 */
                r = fm_err(e, errno, "chmod %s: %s", tmp, strerror(errno));
        else if (!b || !put(b, obj) || BIO_flush(b) != 1)
                r = ossl_fail(e, EIO, "writing %s", tmp);
        else if (fsync(fd) < 0)
                r = fm_err(e, errno, "writing %s: %s", tmp, strerror(errno));
        BIO_free_all(b);
        fm_close(fd);
        if (r < 0)
                unlink(tmp);
        return r;
}

/* Puts <base>.key and <base>.crt in place, each whole: both temporary files
 * are written before either is moved in. replace false: the key is linked
 * in, which fails (-EEXIST) if another one got there first. */
static int pair_install(const char *dir, const char *base, EVP_PKEY *key, X509 *x, bool replace, fm_error *e)
{
        char kfile[FM_PKI_NAME_MAX + 8], cfile[FM_PKI_NAME_MAX + 8];
        char kpath[PATH_MAX], cpath[PATH_MAX], ktmp[PATH_MAX], ctmp[PATH_MAX];
        snprintf(kfile, sizeof(kfile), "%s.key", base);
        snprintf(cfile, sizeof(cfile), "%s.crt", base);
        int r = path_in(kpath, sizeof(kpath), dir, kfile, e);
        if (r == 0)
                r = path_in(cpath, sizeof(cpath), dir, cfile, e);
        if (r == 0)
                r = tmp_write(dir, kfile, 0600, put_key, key, ktmp, sizeof(ktmp), e);
        if (r < 0)
                return r;
        r = tmp_write(dir, cfile, 0644, put_cert, x, ctmp, sizeof(ctmp), e);
        if (r < 0) {
                unlink(ktmp);
                return r;
        }
        bool key_in = false;
        if ((replace ? rename(ktmp, kpath) : link(ktmp, kpath)) < 0)
                r = errno == EEXIST ? fm_err(e, EEXIST, "%s exists", kpath)
                                    : fm_err(e, errno, "putting %s in place: %s", kpath, strerror(errno));
        else
                key_in = true;
        if (r == 0 && rename(ctmp, cpath) < 0) {
                r = fm_err(e, errno, "putting %s in place: %s", cpath, strerror(errno));
                if (!replace)
                        unlink(kpath); /* ours, just linked: a retry must not find it */
        }
        if (!replace || !key_in)
                unlink(ktmp);
        if (r < 0)
                unlink(ctmp);
        return r;
}

/* ---- certificates ---- */

typedef struct ext {
        int nid;
        const char *value; /* as in openssl.cnf */
} ext;

/* A v3 certificate for key: O=fastmig, OU=ou, CN=cn, a random 128-bit
 * serial, valid from BACKDATE_S ago for days, with exts; signed by
 * issuer/issuer_key, or by key itself when issuer is NULL. */
static int cert_make(EVP_PKEY *key, const char *ou, const char *cn, int days, X509 *issuer, EVP_PKEY *issuer_key,
                     const ext *exts, size_t nexts, X509 **out, fm_error *e)
{
        _cleanup_(X509_free_p) X509 *x = X509_new();
        _cleanup_(BN_free_p) BIGNUM *serial = BN_new();
        if (!x || !serial)
                return ossl_fail(e, ENOMEM, "certificate for %s", cn);
        X509_NAME *subj = X509_get_subject_name(x);
        if (!X509_set_version(x, X509_VERSION_3) || !BN_rand(serial, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
            !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
            !X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8, (const unsigned char *)"fastmig", -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(subj, "OU", MBSTRING_UTF8, (const unsigned char *)ou, -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
            !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_S) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) || !X509_set_pubkey(x, key))
                return ossl_fail(e, EIO, "certificate for %s", cn);
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
        for (size_t i = 0; i < nexts; i++) {
                X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
                int added = ex && X509_add_ext(x, ex, -1);
                X509_EXTENSION_free(ex);
                if (!added)
                        return ossl_fail(e, EIO, "certificate for %s: extension %s `%s'", cn, OBJ_nid2sn(exts[i].nid),
                                         exts[i].value);
        }
        if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
                return ossl_fail(e, EIO, "signing the certificate for %s", cn);
        *out = x;
        x = NULL;
        return 0;
}

int fm_pki_init(const char *dir, const char *fleet, bool force, fm_error *e)
{
        ERR_clear_error();
        if (!fm_pki_name_is_valid(fleet))
                return fm_err(e, EINVAL, "bad fleet name `%s': it takes [a-z0-9][a-z0-9.-]{0,62}, no \"..\"",
                              fleet ? fleet : "");
        int r = dir_prepare(dir, true, e);
        char key_path[PATH_MAX];
        if (r == 0)
                r = path_in(key_path, sizeof(key_path), dir, "ca.key", e);
        if (r < 0)
                return r;
        struct stat st;
        if (!force && lstat(key_path, &st) == 0)
                return fm_err(e, EEXIST, "%s exists: this directory has a CA already", key_path);
        _cleanup_(EVP_PKEY_free_p) EVP_PKEY *k = EVP_EC_gen("P-256");
        if (!k)
                return ossl_fail(e, EIO, "making the CA key");
        static const ext exts[] = {
                {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                {NID_subject_key_identifier, "hash"},
        };
        _cleanup_(X509_free_p) X509 *x = NULL;
        r = cert_make(k, "fleet CA", fleet, CA_DAYS, NULL, NULL, exts, FM_ARRAY_SIZE(exts), &x, e);
        if (r == 0)
                r = pair_install(dir, "ca", k, x, force, e);
        return r;
}

int fm_pki_issue(const char *dir, const char *name, const char *role, const char *const *addrs, size_t naddrs,
                 int days, fm_error *e)
{
        ERR_clear_error();
        if (!fm_pki_name_is_valid(name))
                return fm_err(e, EINVAL, "bad certificate name `%s': it takes [a-z0-9][a-z0-9.-]{0,62}, no \"..\"",
                              name ? name : "");
        if (!strcmp(name, "ca"))
                return fm_err(e, EINVAL, "bad certificate name `ca': it is the fleet CA's");
        if (!fm_pki_role_is_valid(role))
                return fm_err(e, EINVAL, "bad role `%s': host or operator", role ? role : "");
        if (days < 1 || days > FM_PKI_MAX_DAYS)
                return fm_err(e, EINVAL, "bad validity `%d' days: 1 to %d", days, FM_PKI_MAX_DAYS);
        if (naddrs > FM_PKI_MAX_ADDRS)
                return fm_err(e, E2BIG, "%zu addresses for %s: at most %d", naddrs, name, FM_PKI_MAX_ADDRS);
        char san[64 + FM_PKI_NAME_MAX + FM_PKI_MAX_ADDRS * (INET6_ADDRSTRLEN + 4)];
        size_t at = (size_t)snprintf(san, sizeof(san), "DNS:%s", name);
        for (size_t i = 0; i < naddrs; i++) {
                unsigned char bin[16];
                const char *a = addrs[i];
                if (!a || (inet_pton(AF_INET, a, bin) != 1 && inet_pton(AF_INET6, a, bin) != 1))
                        return fm_err(e, EINVAL, "bad IP address `%s': an IPv4 or IPv6 literal", a ? a : "");
                at += (size_t)snprintf(san + at, sizeof(san) - at, ",IP:%s", a); /* a is at most 45 characters */
        }

        char ca_crt[PATH_MAX], ca_key[PATH_MAX];
        int r = dir_prepare(dir, false, e);
        if (r == 0)
                r = path_in(ca_crt, sizeof(ca_crt), dir, "ca.crt", e);
        if (r == 0)
                r = path_in(ca_key, sizeof(ca_key), dir, "ca.key", e);
        _cleanup_(X509_free_p) X509 *ca = NULL;
        _cleanup_(EVP_PKEY_free_p) EVP_PKEY *ca_k = NULL;
        if (r == 0)
                r = cert_load(ca_crt, &ca, e);
        if (r == 0)
                r = key_load(ca_key, &ca_k, e);
        if (r < 0)
                return fm_err_wrap(e, "issuing %s", name);
        if (X509_check_private_key(ca, ca_k) != 1)
                return ossl_fail(e, EINVAL, "issuing %s: %s does not belong to %s", name, ca_key, ca_crt);

        _cleanup_(EVP_PKEY_free_p) EVP_PKEY *k = EVP_EC_gen("P-256");
        if (!k)
                return ossl_fail(e, EIO, "making the key of %s", name);
        const ext exts[] = {
                {NID_basic_constraints, "critical,CA:FALSE"},
                {NID_key_usage, "critical,digitalSignature"},
                {NID_ext_key_usage, "serverAuth,clientAuth"},
                {NID_subject_key_identifier, "hash"},
                {NID_authority_key_identifier, "keyid:always"},
                {NID_subject_alt_name, san},
        };
        _cleanup_(X509_free_p) X509 *x = NULL;
        r = cert_make(k, role, name, days, ca, ca_k, exts, FM_ARRAY_SIZE(exts), &x, e);
        if (r == 0)
                r = pair_install(dir, name, k, x, true, e);
        return r;
}

/* ---- reading certificates ---- */

/* The subject's single entry nid as text, printable ASCII only. */
static int name_field(const X509 *x, int nid, char *buf, size_t len)
{
        const X509_NAME *n = X509_get_subject_name(x);
        int i = X509_NAME_get_index_by_NID(n, nid, -1);
        if (i < 0 || X509_NAME_get_index_by_NID(n, nid, i) >= 0)
                return -ENOENT; /* none, or two */
        unsigned char *u = NULL;
        int l = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
        if (l < 0)
                return -EINVAL;
        int r = (size_t)l < len ? 0 : -ERANGE;
        for (int k = 0; r == 0 && k < l; k++)
                if (u[k] < 0x20 || u[k] > 0x7e)
                        r = -EINVAL;
        if (r == 0) {
                memcpy(buf, u, (size_t)l);
                buf[l] = '\0';
        }
        OPENSSL_free(u);
        return r;
}

static void sans_format(const X509 *x, char *buf, size_t len)
{
        GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        size_t at = 0;
        buf[0] = '\0';
        for (int i = 0; i < sk_GENERAL_NAME_num(g) && at < len; i++) {
                const GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, i);
                char one[300] = "other:?";
                if (gn->type == GEN_DNS) {
                        int l = ASN1_STRING_length(gn->d.dNSName);
                        const unsigned char *d = ASN1_STRING_get0_data(gn->d.dNSName);
                        size_t o = (size_t)snprintf(one, sizeof(one), "DNS:");
                        for (int k = 0; k < l && o + 1 < sizeof(one); k++)
                                one[o++] = d[k] >= 0x20 && d[k] <= 0x7e ? (char)d[k] : '?';
                        one[o] = '\0';
                } else if (gn->type == GEN_IPADD) {
                        int l = ASN1_STRING_length(gn->d.iPAddress);
                        char a[INET6_ADDRSTRLEN] = "?";
                        if (l == 4 || l == 16)
                                inet_ntop(l == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), a,
                                          sizeof(a));
                        snprintf(one, sizeof(one), "IP:%s", a);
                }
                at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", one);
        }
        GENERAL_NAMES_free(g);
}

static void cert_describe(const char *dir, const char *file, X509_STORE *store, const char *no_ca, fm_pki_cert *c)
{
        *c = (fm_pki_cert){.name = "?", .role = "?"};
        snprintf(c->file, sizeof(c->file), "%s", file);
        char path[PATH_MAX];
        fm_error e = {0};
        _cleanup_(X509_free_p) X509 *x = NULL;
        if (path_in(path, sizeof(path), dir, file, &e) < 0 || cert_load(path, &x, &e) < 0) {
                snprintf(c->why, sizeof(c->why), "%.511s", e.msg);
                return;
        }
        name_field(x, NID_commonName, c->name, sizeof(c->name));
        name_field(x, NID_organizationalUnitName, c->role, sizeof(c->role));
        sans_format(x, c->sans, sizeof(c->sans));
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
                c->not_after = timegm(&tm);
        if (!store) {
                snprintf(c->why, sizeof(c->why), "%.511s", no_ca);
                return;
        }
        _cleanup_(X509_STORE_CTX_free_p) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        if (!ctx || X509_STORE_CTX_init(ctx, store, x, NULL) != 1) {
                snprintf(c->why, sizeof(c->why), "out of memory");
                return;
        }
        c->verified = X509_verify_cert(ctx) == 1;
        if (!c->verified)
                snprintf(c->why, sizeof(c->why), "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        ERR_clear_error();
}

static int crt_order(const void *a, const void *b)
{
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        bool xca = !strcmp(x, "ca.crt"), yca = !strcmp(y, "ca.crt");
        return xca != yca ? (xca ? -1 : 1) : strcmp(x, y);
}

/* A trust store holding only the fleet CA, checked strictly (RFC 5280
 * profile: key identifiers, critical basicConstraints on the CA). */
static int fleet_store(X509 *ca, X509_STORE **out, fm_error *e)
{
        X509_STORE *s = X509_STORE_new();
        if (!s || X509_STORE_add_cert(s, ca) != 1 || X509_STORE_set_flags(s, X509_V_FLAG_X509_STRICT) != 1) {
                X509_STORE_free(s);
                return ossl_fail(e, ENOMEM, "trust store");
        }
        *out = s;
        return 0;
}

int fm_pki_list(const char *dir, fm_pki_cert **out, size_t *n, fm_error *e)
{
        ERR_clear_error();
        DIR *d = opendir(dir);
        if (!d)
                return fm_err(e, errno, "opening %s: %s", dir, strerror(errno));
        fm_strv files = {0};
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] != '.' && l > 4 && !strcmp(de->d_name + l - 4, ".crt"))
                        r = fm_strv_push(&files, de->d_name);
        }
        closedir(d);
        if (r < 0) {
                fm_strv_free(&files);
                return fm_err(e, r, "listing %s: out of memory", dir);
        }
        if (files.n)
                qsort(files.v, files.n, sizeof(*files.v), crt_order);

        char ca_path[PATH_MAX];
        fm_error ca_e = {0};
        _cleanup_(X509_free_p) X509 *ca = NULL;
        _cleanup_(X509_STORE_free_p) X509_STORE *store = NULL;
        if (path_in(ca_path, sizeof(ca_path), dir, "ca.crt", &ca_e) == 0 && cert_load(ca_path, &ca, &ca_e) == 0)
                fleet_store(ca, &store, &ca_e);
        fm_pki_cert *v = calloc(files.n ? files.n : 1, sizeof(*v));
        if (!v) {
                fm_strv_free(&files);
                return fm_err(e, ENOMEM, "listing %s: out of memory", dir);
        }
        for (size_t i = 0; i < files.n; i++)
                cert_describe(dir, files.v[i], store, ca_e.msg, &v[i]);
        *out = v;
        *n = files.n;
        fm_strv_free(&files);
        return 0;
}

/* ---- TLS ---- */

SSL_CTX *fm_tls_ctx_new(const char *ca_crt, const char *crt, const char *key, bool server, fm_error *e)
{
        ERR_clear_error();
        _cleanup_(X509_free_p) X509 *ca = NULL;
        _cleanup_(X509_free_p) X509 *x = NULL;
        _cleanup_(EVP_PKEY_free_p) EVP_PKEY *k = NULL;
        if (cert_load(ca_crt, &ca, e) < 0 || cert_load(crt, &x, e) < 0 || key_load(key, &k, e) < 0)
                return NULL;
        if (X509_check_ca(ca) != 1) {
                fm_err(e, EINVAL, "%s is not a CA certificate", ca_crt);
                return NULL;
        }
        _cleanup_(SSL_CTX_free_p) SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        if (!ctx) {
                ossl_fail(e, ENOMEM, "making a TLS context");
                return NULL;
        }
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
                ossl_fail(e, EPROTONOSUPPORT, "TLS 1.3");
                return NULL;
        }
        if (SSL_CTX_use_certificate(ctx, x) != 1) {
                ossl_fail(e, EINVAL, "using the certificate in %s", crt);
                return NULL;
        }
        if (SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
                ossl_fail(e, EINVAL, "the key in %s does not match the certificate in %s", key, crt);
                return NULL;
        }
        /* the fleet CA is the only trust anchor: no SSL_CTX_set_default_verify_paths */
        if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1 ||
            X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT) != 1 ||
            (server && SSL_CTX_add_client_CA(ctx, ca) != 1)) {
                ossl_fail(e, EINVAL, "trusting the fleet CA in %s", ca_crt);
                return NULL;
        }
        SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
                ossl_fail(e, EINVAL, "turning session tickets off");
                return NULL;
        }
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
        SSL_CTX *ret = ctx;
        ctx = NULL;
        return ret;
}

int fm_tls_peer(SSL *s, char *name, size_t nlen, char *role, size_t rlen, fm_error *e)
{
        if (!s || !SSL_is_init_finished(s))
                return fm_err(e, EPROTO, "the TLS handshake has not completed");
        X509 *x = SSL_get0_peer_certificate(s);
        if (!x)
                return fm_err(e, EACCES, "the peer sent no certificate");
        long v = SSL_get_verify_result(s);
        if (v != X509_V_OK)
                return fm_err(e, EACCES, "the peer's certificate did not verify: %s", X509_verify_cert_error_string(v));
        char n[FM_PKI_NAME_MAX], r[FM_PKI_NAME_MAX];
        if (name_field(x, NID_commonName, n, sizeof(n)) < 0 || !fm_pki_name_is_valid(n))
                return fm_err(e, EACCES, "the peer's certificate has no valid name (CN)");
        if (name_field(x, NID_organizationalUnitName, r, sizeof(r)) < 0 || !fm_pki_role_is_valid(r))
                return fm_err(e, EACCES, "the peer's certificate (CN=%s) has no role (OU host or operator)", n);
        if (strlen(n) >= nlen || strlen(r) >= rlen)
                return fm_err(e, ERANGE, "no room for the peer's name %s and role %s", n, r);
        memcpy(name, n, strlen(n) + 1);
        memcpy(role, r, strlen(r) + 1);
        return 0;
}
