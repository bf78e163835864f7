/* The orchestrator's HTTPS front: libmicrohttpd with GnuTLS (TLS 1.3 only,
 * the fleet's certificate), every request authenticated by a bearer token
 * whose SHA-256 the store holds, bodies limited to FM_HTTP_BODY_MAX and
 * parsed as one JSON object, errors as RFC 9457 problem details. What a
 * request means is the handler's (orch/api.c). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include "orch/store.h"

#define FM_HTTP_BODY_MAX (64 * 1024) /* more: 413 (by its Content-Length), or the connection ends (chunked) */
#define FM_HTTP_TRACE_BODY_MAX (6 << 20) /* POST /fastmig/v1/trajectories: a trace of up to 4 MiB, escaped */
#define FM_HTTP_TOKEN_BYTES 32 /* random bytes in a token; it travels as 64 hex digits */

typedef struct fm_http_req {
        const char *method;
        const char *path;
        json_object *body;  /* NULL without one */
        const char *client; /* the token's owner */
        void *conn;         /* for fm_http_query */
} fm_http_req;

typedef struct fm_http_resp {
        int status;
        json_object *body;  /* owned; NULL: no body */
        bool problem;       /* body is problem details */
        char location[512]; /* a Location header, when set */
        char allow[64];     /* an Allow header (405) */
        bool bad_token;     /* 401 for a token sent but not valid (RFC 6750's invalid_token) */
} fm_http_resp;

typedef void (*fm_http_handler)(void *data, const fm_http_req *rq, fm_http_resp *rs);
/* the server library's own messages (a failed handshake, a connection limit) */
typedef void (*fm_http_logger)(void *data, const char *msg);

#define FM_HTTP_CONNECTIONS_MAX 256  /* connections at once (a thread each) */
#define FM_HTTP_CONNECTIONS_PER_IP 32

typedef struct fm_http fm_http;

/* Serves on the listening socket fd (taken) with the certificate and key
 * in PEM files; handler runs on the server's threads, a thread per
 * connection; log (may be NULL) gets the server library's messages. */
int fm_http_start(int fd, const char *crt, const char *key, fm_store *store, fm_http_handler handler,
                  fm_http_logger log, void *data, fm_http **out, fm_error *e);
void fm_http_stop(fm_http *h);

/* Sets rs to a problem (RFC 9457): type about:blank, the status's title,
 * detail as given. */
void fm_http_problem(fm_http_resp *rs, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A query parameter of the request, NULL when absent. */
const char *fm_http_query(const fm_http_req *rq, const char *key);

/* A new token for client name: its SHA-256 goes into the store, the token
 * (hex) into out. -EEXIST when the name has one (unless replace). */
int fm_http_token_create(fm_store *s, const char *name, bool replace, char out[2 * FM_HTTP_TOKEN_BYTES + 1],
                         fm_error *e);
