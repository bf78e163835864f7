/* fm-rsync-tunnel: rsync's "remote shell" for fastmig (rsync -e). It opens
 * a TLS connection to the target agent with this host's certificate, asks
 * it (request "rsync") for one directory: a container's tree this host's
 * migration prepared there, or an image this host staged there; once the
 * agent agrees, it carries rsync's daemon protocol both ways between its
 * stdin/stdout and the connection. The agent runs the rsync server,
 * confined to that directory (src/transfer/files.c, fm_rsync_serve).
 *
 *   fm-rsync-tunnel ADDR:PORT container NAME rootfs|upper [rsync's args]
 *   fm-rsync-tunnel ADDR:PORT image DIGEST [rsync's args]
 *
 * rsync appends the host and the remote command, which are not used. The
 * certificate: FASTMIG_PKI (directory) and FASTMIG_CERT (name). */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/proto.h"
#include "proto/tls.h"

#define CONNECT_TIMEOUT_MS 10000

/* Copies from one descriptor to another until EOF or an error. */
static int copy(int from, int to)
{
        char buf[65536];
        for (;;) {
                ssize_t n = read(from, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;
                int r = fm_write_all(to, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
}

static int conn_fd;

/* rsync -> agent; at rsync's EOF the connection's sending half closes */
static void *upstream(void *arg)
{
        (void)arg;
        copy(0, conn_fd);
        shutdown(conn_fd, SHUT_WR);
        return NULL;
}

static json_object *request(int argc, char **argv, fm_error *e)
{
        json_object *req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("rsync"));
        if (argc >= 5 && !strcmp(argv[2], "container")) {
                json_object_object_add(req, "name", json_object_new_string(argv[3]));
                json_object_object_add(req, "part", json_object_new_string(argv[4]));
        } else if (argc >= 4 && !strcmp(argv[2], "image")) {
                json_object_object_add(req, "image", json_object_new_string(argv[3]));
        } else {
                json_object_put(req);
                fm_err(e, EINVAL, "usage: fm-rsync-tunnel ADDR:PORT container NAME rootfs|upper | image DIGEST");
                return NULL;
        }
        return req;
}

static int run(int argc, char **argv, fm_error *e)
{
        const char *pki = getenv("FASTMIG_PKI"), *cert = getenv("FASTMIG_CERT");
        char addr[64];
        uint16_t port = 0;
        if (argc < 2 || fm_parse_endpoint(argv[1], addr, sizeof(addr), &port, e) < 0)
                return argc < 2 ? fm_err(e, EINVAL, "usage: fm-rsync-tunnel ADDR:PORT ...") : -e->code;
        json_object *req = request(argc, argv, e);
        if (!req)
                return -e->code;
        if (!pki || !cert) {
                json_object_put(req);
                return fm_err(e, EINVAL, "FASTMIG_PKI and FASTMIG_CERT must name this host's certificate");
        }
        int r = fm_tls_setup(pki, cert, e);
        if (r == 0)
                r = conn_fd = fm_tcp_connect(addr, port, CONNECT_TIMEOUT_MS, e);
        if (r >= 0 && (r = fm_msg_send(conn_fd, FM_FRAME_REQUEST, req)) < 0)
                fm_err(e, -r, "sending the request: %s", strerror(-r));
        json_object_put(req);
        json_object *rep = NULL;
        uint8_t t = 0;
        if (r >= 0 && (r = fm_msg_recv(conn_fd, &t, &rep, e)) == 0) {
                if (t != FM_FRAME_REPLY)
                        r = fm_err(e, EPROTO, "expected a reply, got frame type %u", t);
                else
                        r = fm_reply_check(rep, e);
        }
        json_object_put(rep);
        if (r < 0)
                return fm_err_wrap(e, "agent %s", argv[1]);
        /* from here on the stream is rsync's, no timeout but its own */
        fm_sock_set_timeout(conn_fd, 0);
        /* the agent serves the tree: say so to whoever started rsync ahead
         * of its file list (FASTMIG_READY_FD, files.h) */
        const char *ready = getenv("FASTMIG_READY_FD");
        int rfd = ready ? atoi(ready) : -1;
        if (rfd > 2) {
                ssize_t w = write(rfd, "1", 1);
                (void)w;
                close(rfd);
        }
        pthread_t up;
        if ((r = pthread_create(&up, NULL, upstream, NULL)) != 0)
                return fm_err(e, r, "thread: %s", strerror(r));
        r = copy(conn_fd, 1);
        /* the agent's rsync has ended: whatever rsync here still sends has
         * no reader. Close both halves; exiting ends the other thread. */
        close(1);
        shutdown(conn_fd, SHUT_WR);
        pthread_detach(up);
        fm_tls_drain(2000);
        return r < 0 ? fm_err(e, -r, "relaying to rsync: %s", strerror(-r)) : 0;
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        fm_error e = {0};
        if (run(argc, argv, &e) < 0) {
                fprintf(stderr, "fm-rsync-tunnel: %s\n", e.msg);
                return 1;
        }
        return 0;
}
