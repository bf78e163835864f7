#include "orch/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "orch/orch.h"
#include "proto/proto.h"

struct fm_http {
        struct MHD_Daemon *d;
        fm_store *store;
        fm_http_handler handler;
        fm_http_logger log;
        void *data;
        char *crt, *key;
};

/* what one request collects between the handler's calls */
typedef struct request {
        char *buf;
        size_t len, max;
        char client[64];
} request;

static const char *status_title(int s)
{
        switch (s) {
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 413: return "Content Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Content";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        }
        return "Error";
}

void fm_http_problem(fm_http_resp *rs, int status, const char *fmt, ...)
{
        char detail[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        json_object_put(rs->body);
        rs->body = json_object_new_object();
        json_object_object_add(rs->body, "type", json_object_new_string("about:blank"));
        json_object_object_add(rs->body, "title", json_object_new_string(status_title(status)));
        json_object_object_add(rs->body, "status", json_object_new_int(status));
        json_object_object_add(rs->body, "detail", json_object_new_string(detail));
        rs->status = status;
        rs->problem = true;
}

const char *fm_http_query(const fm_http_req *rq, const char *key)
{
        return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

static void sha256_hex(const char *s, char out[65])
{
        unsigned char md[32];
        unsigned int n = 0;
        EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int fm_http_token_create(fm_store *s, const char *name, bool replace, char out[2 * FM_HTTP_TOKEN_BYTES + 1],
                         fm_error *e)
{
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "client name `%s' is not a valid name ([A-Za-z0-9_.-], 1 to %d)", name,
                              FM_NAME_MAX);
        unsigned char raw[FM_HTTP_TOKEN_BYTES];
        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return fm_err(e, EIO, "no random bytes for a token");
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(out + 2 * i, 3, "%02x", raw[i]);
        OPENSSL_cleanse(raw, sizeof(raw));
        char hash[65];
        sha256_hex(out, hash);
        int r = fm_store_run(s, e,
                             replace ? "INSERT INTO clients (name, token_sha256, created) VALUES (?, ?, ?) "
                                       "ON CONFLICT (name) DO UPDATE SET token_sha256 = excluded.token_sha256, "
                                       "created = excluded.created"
                                     : "INSERT INTO clients (name, token_sha256, created) VALUES (?, ?, ?)",
                             "ssi", name, hash, fm_orch_now_ms());
        if (r == -EEXIST)
                return fm_err(e, EEXIST, "client %s has a token already (replace it with --replace)", name);
        return r < 0 ? r : 0;
}

/* The client a bearer token belongs to, from its hash: a token is 256
 * random bits, so its hash is a key no one can guess; the lookup's time
 * says nothing of a token that is not there. 1: found; 0: no token; -1: a
 * token that is not valid; -2: the database failed. */
static int authenticate(fm_http *h, struct MHD_Connection *c, char client[64])
{
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!a || strncasecmp(a, "Bearer ", 7))
                return 0;
        const char *tok = a + 7;
        if (strlen(tok) != 2 * FM_HTTP_TOKEN_BYTES || strspn(tok, "0123456789abcdef") != 2 * FM_HTTP_TOKEN_BYTES)
                return -1;
        char hash[65];
        sha256_hex(tok, hash);
        json_object *rows = fm_store_rows(h->store, NULL, "SELECT name FROM clients WHERE token_sha256 = ?", "s", hash);
        if (!rows)
                return -2;
        json_object *row = json_object_array_get_idx(rows, 0), *n = NULL;
        bool ok = row && json_object_object_get_ex(row, "name", &n);
        if (ok)
                snprintf(client, 64, "%s", json_object_get_string(n));
        json_object_put(rows);
        return ok ? 1 : -1;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, fm_http_resp *rs)
{
        const char *text = rs->body ? json_object_to_json_string_ext(rs->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "";
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        if (rs->body)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        rs->problem ? "application/problem+json" : "application/json");
        if (rs->location[0])
                MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rs->location);
        if (rs->allow[0])
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rs->allow);
        if (rs->status == 503)
                MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "5");
        if (rs->status == 401) /* RFC 6750 3.1: an error code only when a token was sent */
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                        rs->bad_token ? "Bearer realm=\"fastmig\", error=\"invalid_token\""
                                                      : "Bearer realm=\"fastmig\"");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        enum MHD_Result ok = MHD_queue_response(c, (unsigned)rs->status, r);
        MHD_destroy_response(r);
        json_object_put(rs->body);
        rs->body = NULL;
        return ok;
}

static enum MHD_Result problem_now(struct MHD_Connection *c, int status, const char *detail)
{
        fm_http_resp rs = {0};
        fm_http_problem(&rs, status, "%s", detail);
        return send_resp(c, &rs);
}

static enum MHD_Result unauthorized(struct MHD_Connection *c, bool token_sent)
{
        fm_http_resp rs = {0};
        fm_http_problem(&rs, 401, token_sent ? "the bearer token is not valid"
                                             : "a valid bearer token is needed (Authorization: Bearer TOKEN)");
        rs.bad_token = token_sent;
        return send_resp(c, &rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
        (void)version;
        fm_http *h = cls;
        request *q = *con_cls;
        if (!q) { /* headers only, so far */
                q = calloc(1, sizeof(*q));
                if (!q)
                        return MHD_NO;
                *con_cls = q;
                int who = authenticate(h, c, q->client);
                if (who == -2)
                        return problem_now(c, 503, "the orchestrator's database does not answer; try again");
                if (who <= 0)
                        return unauthorized(c, who < 0);
                /* a trajectory carries a whole trace */
                q->max = !strcmp(url, "/fastmig/v1/trajectories") ? FM_HTTP_TRACE_BODY_MAX : FM_HTTP_BODY_MAX;
                const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && strtoull(cl, NULL, 10) > q->max) {
                        char d[128];
                        snprintf(d, sizeof(d), "a body takes at most %zu bytes", q->max);
                        return problem_now(c, 413, d);
                }
                return MHD_YES;
        }
        if (*upload_size) {
                if (q->len + *upload_size <= q->max) {
                        char *nb = realloc(q->buf, q->len + *upload_size + 1);
                        if (!nb)
                                return MHD_NO;
                        q->buf = nb;
                        memcpy(q->buf + q->len, upload, *upload_size);
                        q->len += *upload_size;
                } else {
                        /* a body without a length that outgrew the limit: the
                         * answer cannot be queued mid-body (MHD 0.9), so the
                         * connection ends rather than read on */
                        return MHD_NO;
                }
                *upload_size = 0;
                return MHD_YES;
        }
        fm_http_req rq = {.method = method, .path = url, .client = q->client, .conn = c};
        fm_http_resp rs = {.status = 500};
        if (q->len) {
                const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
                if (!ct || strncasecmp(ct, "application/json", 16) || (ct[16] && ct[16] != ';' && ct[16] != ' '))
                        return problem_now(c, 415, "a body is JSON (Content-Type: application/json)");
                fm_error e = {0};
                if (fm_json_parse_text(q->buf, q->len, &rq.body, &e) < 0 ||
                    (!json_object_is_type(rq.body, json_type_object) && fm_err(&e, EINVAL, "another JSON value") < 0)) {
                        json_object_put(rq.body);
                        char d[1100];
                        snprintf(d, sizeof(d), "the body is not a JSON object: %s", e.msg);
                        return problem_now(c, 400, d);
                }
        }
        h->handler(h->data, &rq, &rs);
        json_object_put(rq.body);
        return send_resp(c, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        (void)cls;
        (void)c;
        (void)toe;
        request *q = *con_cls;
        if (q) {
                free(q->buf);
                free(q);
        }
        *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        fm_http *h = cls;
        char msg[512];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        if (h->log)
                h->log(h->data, msg);
}

int fm_http_start(int fd, const char *crt, const char *key, fm_store *store, fm_http_handler handler,
                  fm_http_logger log, void *data, fm_http **out, fm_error *e)
{
        fm_http *h = calloc(1, sizeof(*h));
        if (!h) {
                close(fd);
                return fm_err(e, ENOMEM, "out of memory");
        }
        h->store = store;
        h->handler = handler;
        h->log = log;
        h->data = data;
        int r = fm_read_file(crt, &h->crt, 1 << 20);
        if (r >= 0 && (r = fm_read_file(key, &h->key, 1 << 20)) < 0)
                crt = key;
        if (r < 0) {
                close(fd);
                fm_http_stop(h);
                return fm_err(e, -r, "reading %s: %s", crt, strerror(-r));
        }
        /* a thread per connection: a handler that asks the agents (seconds
         * when one is down) holds up only its own client; the limits bound
         * the threads, per address so that one client cannot take them all */
        h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                                        MHD_USE_TLS | MHD_USE_ERROR_LOG,
                                0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)FM_HTTP_CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                (unsigned)FM_HTTP_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                MHD_OPTION_HTTPS_MEM_CERT, h->crt, MHD_OPTION_HTTPS_MEM_KEY, h->key,
                                MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3", MHD_OPTION_END);
        if (!h->d) {
                close(fd);
                fm_http_stop(h);
                return fm_err(e, EIO, "the HTTPS server did not start (certificate %s, key %s)", crt, key);
        }
        *out = h;
        return 0;
}

void fm_http_stop(fm_http *h)
{
        if (!h)
                return;
        if (h->d)
                MHD_stop_daemon(h->d);
        if (h->key)
                OPENSSL_cleanse(h->key, strlen(h->key));
        free(h->crt);
        free(h->key);
        free(h);
}
