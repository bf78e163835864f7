#include <sys/socket.h>

#include "proto/proto.h"
#include "tap.h"

int main(void)
{
        uint8_t h[8], t = 0;
        uint32_t l = 0;
        fm_error e = {0};

        fm_frame_header_build(h, FM_FRAME_REQUEST, 300);
        ok(fm_frame_header_parse(h, &t, &l, &e) == 0 && t == FM_FRAME_REQUEST && l == 300, "header round trip");
        ok(h[0] == 'F' && h[1] == 'M' && h[2] == 1 && h[3] == 1 && h[4] == 0 && h[5] == 0 && h[6] == 1 && h[7] == 44,
           "header byte layout is magic, version, type, big-endian length");

        fm_frame_header_build(h, FM_FRAME_REQUEST, FM_JSON_MAX + 1);
        ok(fm_frame_header_parse(h, &t, &l, &e) == -EMSGSIZE, "oversized JSON frame rejected: %s", e.msg);
        fm_frame_header_build(h, FM_FRAME_DATA, FM_DATA_MAX);
        ok(fm_frame_header_parse(h, &t, &l, &e) == 0, "data frame at the limit accepted");
        fm_frame_header_build(h, FM_FRAME_DATA, FM_DATA_MAX + 1);
        ok(fm_frame_header_parse(h, &t, &l, &e) < 0, "data frame over the limit rejected");
        fm_frame_header_build(h, FM_FRAME_FILE_END, 4);
        ok(fm_frame_header_parse(h, &t, &l, &e) < 0, "file-end of wrong size rejected");
        fm_frame_header_build(h, FM_FRAME_END, 1);
        ok(fm_frame_header_parse(h, &t, &l, &e) < 0, "end frame with payload rejected");
        fm_frame_header_build(h, 99, 0);
        ok(fm_frame_header_parse(h, &t, &l, &e) == -EPROTO, "unknown type rejected: %s", e.msg);
        fm_frame_header_build(h, FM_FRAME_REPLY, 0);
        h[0] = 'G';
        ok(fm_frame_header_parse(h, &t, &l, &e) == -EPROTO, "bad magic rejected");
        fm_frame_header_build(h, FM_FRAME_REPLY, 0);
        h[2] = 2;
        ok(fm_frame_header_parse(h, &t, &l, &e) == -EPROTO && strstr(e.msg, "version"), "other version rejected");

        json_object *o = NULL;
        const char *good = "{\"op\":\"ping\",\"n\":3}";
        ok(fm_msg_parse(good, strlen(good), &o, &e) == 0, "valid request parses");
        const char *s = NULL;
        int64_t n = 0;
        ok(fm_json_str(o, "op", true, 16, &s, &e) == 0 && !strcmp(s, "ping"), "string field");
        ok(fm_json_int(o, "n", true, 0, 10, &n, &e) == 0 && n == 3, "int field");
        ok(fm_json_int(o, "n", true, 5, 10, &n, &e) == -EINVAL && strstr(e.msg, "`n'"), "range checked, field quoted");
        double x = 0;
        ok(fm_json_num(o, "n", true, 0, 10, &x, &e) == 0 && x == 3, "number field (an integer is a number)");
        ok(fm_json_num(o, "n", true, 0, 1, &x, &e) == -EINVAL && strstr(e.msg, "`n'"), "number range checked");
        ok(fm_json_num(o, "op", true, 0, 1, &x, &e) == -EINVAL && strstr(e.msg, "must be a number"), "non-number refused");
        x = 0.9;
        ok(fm_json_num(o, "absent", false, 0, 1, &x, &e) == 0 && x == 0.9, "optional number absent: default kept");
        ok(fm_json_str(o, "missing", true, 16, &s, &e) == -EINVAL && strstr(e.msg, "missing"), "missing field reported");
        ok(fm_json_str(o, "n", true, 16, &s, &e) == -EINVAL, "wrong type reported");
        json_object_put(o);

        const char *bad[] = {"{\"op\":", "[1,2]", "{} trailing", "\"str\"", "{\"a\":1}{}", ""};
        for (size_t i = 0; i < FM_ARRAY_SIZE(bad); i++) {
                o = NULL;
                int r = fm_msg_parse(bad[i], strlen(bad[i]), &o, &e);
                ok(r == -EPROTO && o == NULL, "malformed message `%s' rejected", bad[i]);
        }

        /* a frame over a socket pair, and a truncated one */
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("status"));
        ok(fm_msg_send(sv[0], FM_FRAME_REQUEST, req) == 0, "send");
        json_object_put(req);
        ok(fm_msg_recv(sv[1], &t, &o, &e) == 0 && t == FM_FRAME_REQUEST, "receive");
        json_object_put(o);
        fm_frame_header_build(h, FM_FRAME_REQUEST, 100);
        write(sv[0], h, 8);
        write(sv[0], "{\"op\"", 5);
        close(sv[0]);
        ok(fm_msg_recv(sv[1], &t, &o, &e) < 0 && strstr(e.msg, "truncated"), "truncated frame detected: %s", e.msg);
        close(sv[1]);

        char addr[64];
        uint16_t port = 0;
        ok(fm_parse_endpoint("10.77.1.2:7071", addr, sizeof(addr), &port, &e) == 0 && port == 7071 &&
               !strcmp(addr, "10.77.1.2"), "endpoint with port");
        ok(fm_parse_endpoint("10.77.1.2", addr, sizeof(addr), &port, &e) == 0 && port == FM_DEFAULT_PORT, "default port");
        ok(fm_parse_endpoint("host:99999", addr, sizeof(addr), &port, &e) < 0, "bad endpoint rejected");

        fm_error er = {0};
        fm_err(&er, ENOSPC, "no room");
        json_object *rep = fm_reply_error(&er);
        fm_error back = {0};
        ok(fm_reply_check(rep, &back) == -ENOSPC && !strcmp(back.msg, "no room"), "error reply carries code and message");
        json_object_put(rep);
        return tap_done();
}
