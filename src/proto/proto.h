/* The wire protocol between fastmig, the agents and each other.
 * Byte layout and limits: docs/PROTOCOL.md. */
#pragma once
#include <json-c/json.h>
#include "util/util.h"

#define FM_PROTO_MAGIC0 'F'
#define FM_PROTO_MAGIC1 'M'
#define FM_PROTO_VERSION 1
#define FM_FRAME_HEADER_LEN 8
#define FM_JSON_MAX (64u * 1024u)        /* request, reply, event, file header */
#define FM_DATA_MAX (1024u * 1024u)      /* one data frame */
#define FM_FILE_MAX (64ull << 30)        /* one file of a stream */
#define FM_DEFAULT_PORT 7070

enum fm_frame_type {
        FM_FRAME_REQUEST = 1,  /* JSON {"op": ...} */
        FM_FRAME_REPLY = 2,    /* JSON {"ok": bool, "error": str?, ...} */
        FM_FRAME_EVENT = 3,    /* JSON progress report inside a long request */
        FM_FRAME_FILE = 4,     /* JSON {"path","size"|"growing","mode"}: a file of a stream starts */
        FM_FRAME_DATA = 5,     /* raw bytes of the current file */
        FM_FRAME_FILE_END = 6, /* XXH64 of the file (8 bytes, big-endian), then its size (8) if growing */
        FM_FRAME_END = 7,      /* empty: the stream is complete */
};

/* Validates a frame header: magic, version, known type, length within the
 * type's limit. Pure: used by the receiver and by the fuzzer. */
int fm_frame_header_parse(const uint8_t hdr[FM_FRAME_HEADER_LEN], uint8_t *type, uint32_t *len,
                          fm_error *e);
void fm_frame_header_build(uint8_t hdr[FM_FRAME_HEADER_LEN], uint8_t type, uint32_t len);

int fm_frame_send(int fd, uint8_t type, const void *payload, uint32_t len);
/* Receives one frame; *payload is malloc'd (NUL-terminated for convenience). */
int fm_frame_recv(int fd, uint8_t *type, char **payload, uint32_t *len, fm_error *e);

/* JSON messages. fm_msg_parse is pure (fuzzed); the object must be a JSON object. */
int fm_msg_parse(const char *buf, size_t len, json_object **out, fm_error *e);
/* A file's JSON text (len bytes, no NUL, nothing after the value, nesting
 * at most 32): its value in *out, or -EINVAL with the line in *e. */
int fm_json_parse_text(const char *text, size_t len, json_object **out, fm_error *e);
int fm_msg_send(int fd, uint8_t type, json_object *msg);
int fm_msg_recv(int fd, uint8_t *type, json_object **out, fm_error *e);

/* Field access with validation; each quotes the field in its error. */
int fm_json_str(json_object *o, const char *key, bool required, size_t max, const char **out,
                fm_error *e);
int fm_json_int(json_object *o, const char *key, bool required, int64_t lo, int64_t hi,
                int64_t *out, fm_error *e);
/* A number (integer or not) in [lo, hi]. */
int fm_json_num(json_object *o, const char *key, bool required, double lo, double hi, double *out, fm_error *e);
bool fm_json_bool(json_object *o, const char *key, bool dflt);
/* Readers for objects already checked (proto/validate.h) or of our own
 * making: the member at key (NULL when o or it is missing), its string
 * (NULL when not a string), its integer (0 when missing). */
json_object *fm_json_get(json_object *o, const char *key);
const char *fm_json_get_str(json_object *o, const char *key);
int64_t fm_json_get_int(json_object *o, const char *key);

/* Replies. */
json_object *fm_reply_ok(void);
json_object *fm_reply_error(const fm_error *e);
/* Turns an error reply into a fm_error; returns 0 when the reply says ok. */
int fm_reply_check(json_object *reply, fm_error *e);

/* TCP helpers (all descriptors CLOEXEC). Outgoing connections are made from
 * the network namespace named here (NULL or "": the caller's own); the CLI
 * sets the fleet's agents_netns (the testbed's core router). Set it once at
 * start-up, before any thread runs. */
void fm_tcp_client_netns(const char *netns);
/* Every connection, both ends: a peer whose host dies or whose link is cut
 * is noticed within FM_TCP_DEAD_MS, whether the connection is idle
 * (keepalive probes from 5 s of silence on, every 2 s) or has data
 * unacknowledged (TCP_USER_TIMEOUT, which also ends the probing); blocked
 * reads and writes then fail. A live peer that is merely slow to answer is
 * not affected (its kernel answers the probes); one that leaves its receive
 * window shut that long while data waits is taken for dead. */
#define FM_TCP_KEEPIDLE_S 5
#define FM_TCP_KEEPINTVL_S 2
#define FM_TCP_KEEPCNT 3
#define FM_TCP_DEAD_MS 30000
void fm_tcp_keepalive(int fd);
int fm_tcp_listen(const char *addr, uint16_t port, fm_error *e);
/* A unix stream socket listening at path (made afresh; the caller keeps
 * its directory private). */
int fm_unix_listen(const char *path, fm_error *e);
int fm_tcp_connect(const char *addr, uint16_t port, int timeout_ms, fm_error *e);
/* Only its first half: a TCP connection (non-blocking, no TLS) from the
 * same namespace, within timeout_ms; is the agent reachable at all? */
int fm_tcp_dial(const char *addr, uint16_t port, int timeout_ms, fm_error *e);
int fm_sock_set_timeout(int fd, int ms);
/* "a.b.c.d:port" or "a.b.c.d" (default port) */
int fm_parse_endpoint(const char *s, char *addr, size_t addrlen, uint16_t *port, fm_error *e);

/* One request/reply round trip on a fresh connection. */
int fm_call(const char *addr, uint16_t port, json_object *req, json_object **reply, int timeout_ms,
            fm_error *e);
/* The same, with a bound of its own on the connection (an unreachable
 * peer is known soon while a reachable one may take timeout_ms). */
int fm_call_bounded(const char *addr, uint16_t port, json_object *req, json_object **reply, int connect_ms,
                    int timeout_ms, fm_error *e);
