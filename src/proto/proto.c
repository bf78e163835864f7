#include "proto.h"
#include "tls.h"
#include "util/cancel.h"
#include "util/netns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static uint32_t type_limit(uint8_t type)
{
        switch (type) {
        case FM_FRAME_REQUEST:
        case FM_FRAME_REPLY:
        case FM_FRAME_EVENT:
        case FM_FRAME_FILE:
                return FM_JSON_MAX;
        case FM_FRAME_DATA:
                return FM_DATA_MAX;
        case FM_FRAME_FILE_END:
                return 16;
        case FM_FRAME_END:
                return 0;
        default:
                return 0;
        }
}

int fm_frame_header_parse(const uint8_t hdr[FM_FRAME_HEADER_LEN], uint8_t *type, uint32_t *len,
                          fm_error *e)
{
        if (hdr[0] != FM_PROTO_MAGIC0 || hdr[1] != FM_PROTO_MAGIC1)
                return fm_err(e, EPROTO, "bad frame magic 0x%02x%02x", hdr[0], hdr[1]);
        if (hdr[2] != FM_PROTO_VERSION)
                return fm_err(e, EPROTO, "unsupported protocol version %u (want %u)", hdr[2],
                              FM_PROTO_VERSION);
        uint8_t t = hdr[3];
        if (t < FM_FRAME_REQUEST || t > FM_FRAME_END)
                return fm_err(e, EPROTO, "unknown frame type %u", t);
        uint32_t l = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
        uint32_t lim = type_limit(t);
        if (l > lim)
                return fm_err(e, EMSGSIZE, "frame of type %u has %u bytes, limit is %u", t, l, lim);
        if (t == FM_FRAME_FILE_END && l != 8 && l != 16)
                return fm_err(e, EPROTO, "file-end frame must carry 8 or 16 bytes, has %u", l);
        *type = t;
        *len = l;
        return 0;
}

void fm_frame_header_build(uint8_t hdr[FM_FRAME_HEADER_LEN], uint8_t type, uint32_t len)
{
        hdr[0] = FM_PROTO_MAGIC0;
        hdr[1] = FM_PROTO_MAGIC1;
        hdr[2] = FM_PROTO_VERSION;
        hdr[3] = type;
        hdr[4] = (uint8_t)(len >> 24);
        hdr[5] = (uint8_t)(len >> 16);
        hdr[6] = (uint8_t)(len >> 8);
        hdr[7] = (uint8_t)len;
}

int fm_frame_send(int fd, uint8_t type, const void *payload, uint32_t len)
{
        if (len > type_limit(type))
                return -EMSGSIZE;
        uint8_t hdr[FM_FRAME_HEADER_LEN];
        fm_frame_header_build(hdr, type, len);
        struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, len}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
        size_t total = sizeof(hdr) + len;
        while (total > 0) {
                ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                total -= (size_t)w;
                /* advance the iovecs past what was written */
                while (w > 0 && mh.msg_iovlen > 0) {
                        if ((size_t)w >= mh.msg_iov[0].iov_len) {
                                w -= (ssize_t)mh.msg_iov[0].iov_len;
                                mh.msg_iov++;
                                mh.msg_iovlen--;
                        } else {
                                mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + w;
                                mh.msg_iov[0].iov_len -= (size_t)w;
                                w = 0;
                        }
                }
        }
        return 0;
}

int fm_frame_recv(int fd, uint8_t *type, char **payload, uint32_t *len, fm_error *e)
{
        uint8_t hdr[FM_FRAME_HEADER_LEN];
        int r = fm_read_all(fd, hdr, sizeof(hdr));
        if (r == -EAGAIN || r == -EWOULDBLOCK)
                return fm_err(e, ETIMEDOUT, "timed out waiting for the peer");
        if (r < 0)
                return fm_err(e, -r, r == -EPIPE ? "connection closed by peer" : "receiving: %s",
                              strerror(-r));
        uint8_t t;
        uint32_t l;
        r = fm_frame_header_parse(hdr, &t, &l, e);
        if (r < 0)
                return r;
        char *buf = malloc((size_t)l + 1);
        if (!buf)
                return fm_err(e, ENOMEM, "out of memory");
        r = fm_read_all(fd, buf, l);
        if (r < 0) {
                free(buf);
                return fm_err(e, -r, "frame truncated: %s", strerror(-r));
        }
        buf[l] = '\0';
        *type = t;
        *payload = buf;
        *len = l;
        return 0;
}

/* 1-based line of a byte offset */
static int line_of(const char *text, size_t off)
{
        int line = 1;
        for (size_t i = 0; i < off && text[i]; i++)
                line += text[i] == '\n';
        return line;
}

int fm_json_parse_text(const char *text, size_t len, json_object **out, fm_error *e)
{
        *out = NULL;
        if (memchr(text, '\0', len))
                return fm_err(e, EINVAL, "a NUL byte in the text");
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return fm_err(e, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        if (!o && je == json_tokener_continue)
                je = json_tokener_error_parse_eof;
        size_t off = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || je != json_tokener_success) {
                json_object_put(o);
                return fm_err(e, EINVAL, "line %d: %s", line_of(text, off), json_tokener_error_desc(je));
        }
        for (size_t i = off; i < len; i++)
                if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r') {
                        json_object_put(o);
                        return fm_err(e, EINVAL, "line %d: text after the end of the JSON value", line_of(text, i));
                }
        *out = o;
        return 0;
}

int fm_msg_parse(const char *buf, size_t len, json_object **out, fm_error *e)
{
        if (len > FM_JSON_MAX)
                return fm_err(e, EMSGSIZE, "message of %zu bytes exceeds %u", len, FM_JSON_MAX);
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return fm_err(e, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = tok->char_offset;
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return fm_err(e, EPROTO, "malformed JSON: %s", json_tokener_error_desc(jerr));
        }
        while (used < len && (buf[used] == ' ' || buf[used] == '\n' || buf[used] == '\r' ||
                              buf[used] == '\t'))
                used++;
        if (used != len) {
                json_object_put(o);
                return fm_err(e, EPROTO, "trailing bytes after JSON message");
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return fm_err(e, EPROTO, "message is not a JSON object");
        }
        *out = o;
        return 0;
}

int fm_msg_send(int fd, uint8_t type, json_object *msg)
{
        size_t len = 0;
        const char *s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
        if (!s)
                return -ENOMEM;
        if (len > FM_JSON_MAX)
                return -EMSGSIZE;
        return fm_frame_send(fd, type, s, (uint32_t)len);
}

int fm_msg_recv(int fd, uint8_t *type, json_object **out, fm_error *e)
{
        char *buf = NULL;
        uint32_t len = 0;
        uint8_t t = 0;
        int r = fm_frame_recv(fd, &t, &buf, &len, e);
        if (r < 0)
                return r;
        if (t != FM_FRAME_REQUEST && t != FM_FRAME_REPLY && t != FM_FRAME_EVENT && t != FM_FRAME_FILE) {
                free(buf);
                return fm_err(e, EPROTO, "expected a JSON frame, got type %u", t);
        }
        r = fm_msg_parse(buf, len, out, e);
        free(buf);
        if (r == 0)
                *type = t;
        return r;
}

int fm_json_str(json_object *o, const char *key, bool required, size_t max, const char **out,
                fm_error *e)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return fm_err(e, EINVAL, "missing field `%s'", key);
                *out = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return fm_err(e, EINVAL, "field `%s' must be a string", key);
        const char *s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s))
                return fm_err(e, EINVAL, "field `%s' contains a NUL byte", key);
        if (strlen(s) > max)
                return fm_err(e, EINVAL, "field `%s' is longer than %zu bytes", key, max);
        *out = s;
        return 0;
}

int fm_json_int(json_object *o, const char *key, bool required, int64_t lo, int64_t hi,
                int64_t *out, fm_error *e)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return fm_err(e, EINVAL, "missing field `%s'", key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return fm_err(e, EINVAL, "field `%s' must be an integer", key);
        int64_t x = json_object_get_int64(v);
        if (x < lo || x > hi)
                return fm_err(e, EINVAL, "field `%s' = %lld is out of range [%lld, %lld]", key,
                              (long long)x, (long long)lo, (long long)hi);
        *out = x;
        return 0;
}

int fm_json_num(json_object *o, const char *key, bool required, double lo, double hi, double *out, fm_error *e)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return fm_err(e, EINVAL, "missing field `%s'", key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return fm_err(e, EINVAL, "field `%s' must be a number", key);
        double x = json_object_get_double(v);
        if (!(x >= lo && x <= hi))
                return fm_err(e, EINVAL, "field `%s' = %g is out of range [%g, %g]", key, x, lo, hi);
        *out = x;
        return 0;
}

json_object *fm_json_get(json_object *o, const char *key)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *fm_json_get_str(json_object *o, const char *key)
{
        json_object *v = fm_json_get(o, key);
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int64_t fm_json_get_int(json_object *o, const char *key)
{
        json_object *v = fm_json_get(o, key);
        return v ? json_object_get_int64(v) : 0;
}

bool fm_json_bool(json_object *o, const char *key, bool dflt)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
                return dflt;
        return json_object_get_boolean(v);
}

json_object *fm_reply_ok(void)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        return o;
}

json_object *fm_reply_error(const fm_error *e)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "error", json_object_new_string(e && e->msg[0] ? e->msg : "unknown error"));
        json_object_object_add(o, "errno", json_object_new_int(e ? e->code : EIO));
        return o;
}

int fm_reply_check(json_object *reply, fm_error *e)
{
        if (fm_json_bool(reply, "ok", false))
                return 0;
        const char *msg = NULL;
        int64_t code = EIO;
        fm_json_str(reply, "error", false, FM_JSON_MAX, &msg, NULL);
        fm_json_int(reply, "errno", false, 1, 4095, &code, NULL);
        return fm_err(e, (int)code, "%s", msg ? msg : "peer reported an error without a message");
}

int fm_sock_set_timeout(int fd, int ms)
{
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        return 0;
}

int fm_tcp_listen(const char *addr, uint16_t port, fm_error *e)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return fm_err(e, EINVAL, "bad IPv4 address `%s'", addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fm_err(e, errno, "socket: %s", strerror(errno));
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
                int err = errno;
                fm_close(fd);
                return fm_err(e, err, "listening on %s:%u: %s", addr, port, strerror(err));
        }
        return fd;
}

int fm_unix_listen(const char *path, fm_error *e)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return fm_err(e, ENAMETOOLONG, "%s is too long for a socket", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fm_err(e, errno, "socket: %s", strerror(errno));
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
                int err = errno;
                fm_close(fd);
                return fm_err(e, err, "listening on %s: %s", path, strerror(err));
        }
        return fd;
}

static const char *client_netns;

void fm_tcp_client_netns(const char *netns) { client_netns = netns; }

void fm_tcp_keepalive(int fd)
{
        int one = 1, idle = FM_TCP_KEEPIDLE_S, intvl = FM_TCP_KEEPINTVL_S, cnt = FM_TCP_KEEPCNT;
        unsigned int ut = FM_TCP_DEAD_MS;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

int fm_tcp_dial(const char *addr, uint16_t port, int timeout_ms, fm_error *e)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return fm_err(e, EINVAL, "bad IPv4 address `%s'", addr);
        int fd = fm_netns_socket(client_netns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0, e);
        if (fd < 0)
                return fd;
        /* a cancel group's from now (util/cancel.h): its firing ends the
         * dial, and the TLS handshake after it, at once */
        if (fm_cancel_track_fd(fd) < 0) {
                fm_close(fd);
                return fm_err(e, ECANCELED, "connecting to %s:%u: given up (the peer fell silent)", addr, port);
        }
        int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        if (r < 0 && errno != EINPROGRESS) {
                int err = errno;
                fm_close(fd);
                return fm_err(e, err, "connecting to %s:%u: %s", addr, port, strerror(err));
        }
        if (r < 0) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int pr;
                do
                        pr = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
                while (pr < 0 && errno == EINTR);
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (pr == 0)
                        soerr = ETIMEDOUT;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                        soerr = errno;
                else if (!soerr && fm_cancel_fired(fm_cancel_bound()))
                        soerr = ECANCELED; /* shut down while dialling */
                if (soerr) {
                        fm_close(fd);
                        return fm_err(e, soerr, "connecting to %s:%u: %s", addr, port, strerror(soerr));
                }
        }
        fm_tcp_keepalive(fd);
        return fd;
}

int fm_tcp_connect(const char *addr, uint16_t port, int timeout_ms, fm_error *e)
{
        int fd = fm_tcp_dial(addr, port, timeout_ms, e);
        if (fd < 0)
                return fd;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* every agent speaks TLS only (src/proto/tls.h): what the caller
         * gets is the relay's end, blocking, with the caller's timeouts */
        if ((fd = fm_tls_client(fd, addr, timeout_ms, NULL, e)) < 0)
                return fm_err_wrap(e, "connecting to %s:%u", addr, port);
        /* the relay's end too (the raw socket stays tracked: its shutdown
         * ends the relay) */
        if (fm_cancel_track_fd(fd) < 0) {
                fm_close(fd);
                return fm_err(e, ECANCELED, "connecting to %s:%u: given up (the peer fell silent)", addr, port);
        }
        if (timeout_ms > 0)
                fm_sock_set_timeout(fd, timeout_ms);
        return fd;
}

int fm_parse_endpoint(const char *s, char *addr, size_t addrlen, uint16_t *port, fm_error *e)
{
        const char *colon = s ? strchr(s, ':') : NULL;
        size_t n = colon ? (size_t)(colon - s) : (s ? strlen(s) : 0);
        struct in_addr tmp;
        if (!s || n == 0 || n >= addrlen)
                return fm_err(e, EINVAL, "bad endpoint `%s'", s ? s : "");
        memcpy(addr, s, n);
        addr[n] = '\0';
        if (inet_pton(AF_INET, addr, &tmp) != 1)
                return fm_err(e, EINVAL, "bad IPv4 address in endpoint `%s'", s);
        *port = FM_DEFAULT_PORT;
        if (colon) {
                uint32_t p = 0;
                if (fm_parse_u32(colon + 1, &p) < 0 || p == 0 || p > 65535)
                        return fm_err(e, EINVAL, "bad port in endpoint `%s'", s);
                *port = (uint16_t)p;
        }
        return 0;
}

int fm_call(const char *addr, uint16_t port, json_object *req, json_object **reply, int timeout_ms,
            fm_error *e)
{
        return fm_call_bounded(addr, port, req, reply, timeout_ms, timeout_ms, e);
}

int fm_call_bounded(const char *addr, uint16_t port, json_object *req, json_object **reply, int connect_ms,
                    int timeout_ms, fm_error *e)
{
        _cleanup_close_ int fd = fm_tcp_connect(addr, port, connect_ms, e);
        if (fd < 0)
                return fd;
        if (timeout_ms != connect_ms)
                fm_sock_set_timeout(fd, timeout_ms);
        int r = fm_msg_send(fd, FM_FRAME_REQUEST, req);
        if (r < 0)
                return fm_err(e, -r, "sending request to %s:%u: %s", addr, port, strerror(-r));
        for (;;) {
                uint8_t t = 0;
                json_object *m = NULL;
                r = fm_msg_recv(fd, &t, &m, e);
                if (r < 0)
                        return fm_err_wrap(e, "agent %s:%u", addr, port);
                if (t == FM_FRAME_EVENT) {
                        json_object_put(m);
                        continue;
                }
                if (t != FM_FRAME_REPLY) {
                        json_object_put(m);
                        return fm_err(e, EPROTO, "agent %s:%u sent frame type %u instead of a reply", addr, port, t);
                }
                *reply = m;
                return 0;
        }
}
