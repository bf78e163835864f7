/* Sends malformed and invalid requests to a running agent and checks that each
 * gets a clear error reply (or a closed connection for broken framing) and
 * that the agent keeps serving. Usage: agent_requests ADDR:PORT */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/proto.h"
#include "proto/tls.h"
#include "../unit/tap.h"

static char addr[16];
static uint16_t port;

/* Sends raw bytes, returns the reply (or NULL when the agent closed). */
static json_object *raw(const void *buf, size_t len, fm_error *e)
{
        int fd = fm_tcp_connect(addr, port, 5000, e);
        if (fd < 0)
                return NULL;
        fm_write_all(fd, buf, len);
        shutdown(fd, SHUT_WR);
        uint8_t t = 0;
        json_object *o = NULL;
        if (fm_msg_recv(fd, &t, &o, e) < 0 || t != FM_FRAME_REPLY) {
                json_object_put(o);
                o = NULL;
        }
        fm_close(fd);
        return o;
}

static json_object *req(const char *json, fm_error *e)
{
        uint8_t h[8];
        size_t n = strlen(json);
        char buf[8 + 4096];
        fm_frame_header_build(h, FM_FRAME_REQUEST, (uint32_t)n);
        memcpy(buf, h, 8);
        memcpy(buf + 8, json, n);
        return raw(buf, 8 + n, e);
}

static bool is_error(json_object *o, const char *needle)
{
        fm_error e = {0};
        bool r = o && fm_reply_check(o, &e) < 0 && strstr(e.msg, needle);
        if (o)
                printf("# reply: %s\n", json_object_to_json_string(o));
        json_object_put(o);
        return r;
}

int main(int argc, char **argv)
{
        fm_error e = {0};
        if (argc != 2 || fm_parse_endpoint(argv[1], addr, sizeof(addr), &port, &e) < 0) {
                fprintf(stderr, "usage: agent_requests ADDR:PORT\n");
                return 2;
        }
        /* the operator's certificate (FASTMIG_PKI, else the testbed's) */
        const char *pki = getenv("FASTMIG_PKI") ? getenv("FASTMIG_PKI") : "/var/lib/fastmig/testbed/pki";
        if (fm_tls_setup(pki, "operator", &e) < 0) {
                fprintf(stderr, "agent_requests: %s\n", e.msg);
                return 2;
        }
        ok(is_error(raw("GET / HTTP/1.0\r\n\r\n", 18, &e), "magic"), "HTTP request: bad magic reported");
        uint8_t h[8];
        fm_frame_header_build(h, 42, 0);
        ok(is_error(raw(h, 8, &e), "unknown frame type"), "unknown frame type reported");
        fm_frame_header_build(h, FM_FRAME_REQUEST, 0x7fffffff);
        ok(is_error(raw(h, 8, &e), "limit"), "2 GiB request refused before reading it");
        fm_frame_header_build(h, FM_FRAME_REQUEST, 100);
        json_object *trunc = raw(h, 8, &e);
        ok(is_error(trunc, "truncated"), "truncated request reported");
        ok(is_error(req("{\"op\": ", &e), "malformed JSON"), "malformed JSON reported");
        ok(is_error(req("[1,2,3]", &e), "not a JSON object"), "non-object reported");
        ok(is_error(req("{\"op\":\"launch-missiles\"}", &e), "unknown request `launch-missiles'"), "unknown op named");
        ok(is_error(req("{\"nope\":1}", &e), "missing field `op'"), "missing op reported");
        ok(is_error(req("{\"op\":\"info\"}", &e), "missing field `name'"), "missing name reported");
        ok(is_error(req("{\"op\":\"info\",\"name\":\"../../etc\"}", &e), "bad container name"), "path in name refused");
        ok(is_error(req("{\"op\":\"info\",\"name\":7}", &e), "must be a string"), "wrong type reported");
        fm_tls_setup(pki, "mec2", &e);
        ok(is_error(req("{\"op\":\"restore\",\"name\":\"ghost\"}", &e), "not a container a migration is bringing"),
           "restore of a container no migration brings refused");
        fm_tls_setup(pki, "operator", &e);
        ok(is_error(req("{\"op\":\"migrate\",\"name\":\"ghost\",\"to\":\"not-an-address\"}", &e), "bad IPv4"),
           "bad target address reported");
        ok(is_error(req("{\"op\":\"migrate\",\"name\":\"ghost\",\"to\":\"10.0.0.1:1\",\"min_shrink\":\"x\"}", &e),
                    "`min_shrink' must be a number"),
           "non-number min_shrink refused");
        ok(is_error(req("{\"op\":\"migrate\",\"name\":\"ghost\",\"to\":\"10.0.0.1:1\",\"min_shrink\":0}", &e),
                    "out of range"),
           "min_shrink 0 refused");
        /* image requests */
        fm_tls_setup(pki, "mec2", &e); /* what an image's sender asks */
        ok(is_error(req("{\"op\":\"image_stage\"}", &e), "missing field `image'"), "image_stage without image refused");
        ok(is_error(req("{\"op\":\"image_stage\",\"image\":{\"name\":\"x\",\"kind\":\"base\","
                        "\"digest\":\"../../../../etc/passwd0000000000\"}}", &e),
                    "bad image digest"),
           "a digest that is a path is refused");
        ok(is_error(req("{\"op\":\"image_stage\",\"image\":{\"name\":\"x\",\"kind\":\"app\","
                        "\"digest\":\"0123456789abcdef0123456789abcdef\"}}", &e),
                    "names its base"),
           "an app image without a base refused");
        ok(is_error(req("{\"op\":\"image_commit\",\"image\":{\"name\":\"x\",\"kind\":\"base\","
                        "\"digest\":\"0123456789abcdef0123456789abcdef\"}}", &e),
                    "not being staged"),
           "commit of an image never staged refused");
        fm_tls_setup(pki, "operator", &e);
        ok(is_error(req("{\"op\":\"image_rm\",\"image\":\"no-such-image\"}", &e), "no image"),
           "removing an unknown image named");
        ok(is_error(req("{\"op\":\"image_push\",\"image\":\"no-such-image\",\"to\":\"10.0.0.1:1\"}", &e),
                    "no image"),
           "pushing an unknown image named");
        json_object *has = req("{\"op\":\"image_has\",\"digest\":\"0123456789abcdef0123456789abcdef\"}", &e);
        ok(has && fm_json_bool(has, "ok", false) && !fm_json_bool(has, "has", true), "image_has: not here");
        json_object_put(has);
        fm_tls_setup(pki, "mec2", &e); /* what a migration's source asks */
        ok(is_error(req("{\"op\":\"prepare\",\"name\":\"ghost\",\"config\":\"\","
                        "\"strategy\":\"teleport\"}", &e),
                    "unknown strategy"),
           "unknown strategy named");
        ok(is_error(req("{\"op\":\"prepare\",\"name\":\"ghost\",\"config\":\"\","
                        "\"clone\":{\"app\":\"zz\",\"base\":\"zz\"}}", &e),
                    "bad image digest"),
           "bad clone digests refused");
        ok(is_error(req("{\"op\":\"prepare\",\"name\":\"ghost\",\"config\":\"\","
                        "\"strategy\":\"memory\"}", &e),
                    "clone of an image"),
           "memory-mig of a plain rootfs refused");
        /* a file stream with an unsafe name is refused and leaves nothing
         * (into a container this client prepared: nobody else's takes one) */
        {
                /* as the host a migration comes from */
                fm_tls_setup(pki, "mec2", &e);
                json_object *pr = req("{\"op\":\"prepare\",\"name\":\"evil\",\"config\":"
                                      "\"lxc.uts.name = evil\\nlxc.net.0.type = veth\\n\"}", &e);
                ok(pr && fm_json_bool(pr, "ok", false), "prepared a container to send images to");
                json_object_put(pr);
                int fd = fm_tcp_connect(addr, port, 5000, &e);
                json_object *r = json_object_new_object();
                json_object_object_add(r, "op", json_object_new_string("put_images"));
                json_object_object_add(r, "name", json_object_new_string("evil"));
                fm_msg_send(fd, FM_FRAME_REQUEST, r);
                json_object_put(r);
                json_object *f = json_object_new_object();
                json_object_object_add(f, "path", json_object_new_string("../../escape"));
                json_object_object_add(f, "size", json_object_new_int(4));
                fm_msg_send(fd, FM_FRAME_FILE, f);
                json_object_put(f);
                uint8_t t = 0;
                json_object *o = NULL;
                fm_msg_recv(fd, &t, &o, &e);
                ok(is_error(o, "unsafe file name"), "unsafe file name in an image stream refused");
                fm_close(fd);
                json_object *ab = req("{\"op\":\"abort\",\"name\":\"evil\"}", &e);
                ok(ab && fm_json_bool(ab, "ok", false), "aborted by the client that prepared it");
                json_object_put(ab);
                fm_tls_setup(pki, "operator", &e);
        }
        json_object *p = req("{\"op\":\"ping\"}", &e);
        ok(p && fm_json_bool(p, "ok", false), "the agent still serves a ping afterwards");
        json_object_put(p);
        fm_tls_drain(2000);
        return tap_done();
}
