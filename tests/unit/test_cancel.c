/* Cancel groups (src/util/cancel.h): a connection tracked by a group is
 * shut down when the group fires, so a read blocked on it returns; a job's
 * thread joins its starter's group; a group that fired refuses new
 * connections; a number reused since it was tracked is left alone; the
 * group's children are killed; a connection still in its TLS handshake
 * with a peer that never answers is ended too. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "pki/pki.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "util/cancel.h"
#include "util/job.h"
#include "util/spawn.h"

static int sp[2];

static int blocked_read(void *arg, fm_error *e)
{
        (void)arg;
        (void)e;
        char c;
        if (fm_cancel_track_fd(sp[0]) < 0)
                return -1;
        return (int)read(sp[0], &c, 1); /* 0 once shut down */
}

static uint16_t mute_port;

/* dials a peer that accepts and then says nothing: the TLS handshake waits */
static int dial_mute(void *arg, fm_error *e)
{
        (void)arg;
        int fd = fm_tcp_connect("127.0.0.1", mute_port, 30000, e);
        return fd < 0 ? fd : fm_close(fd) + 1;
}

static int sleeper(void *arg, fm_error *e)
{
        (void)arg;
        char *argv[] = {"sleep", "30", NULL};
        fm_spawn_opts o = {.detach_stdio = true};
        int st = fm_spawn(argv, &o);
        (void)e;
        return st;
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN); /* as the agent and the CLI do */
        fm_cancel *c = fm_cancel_new();
        ok(c != NULL, "a group");
        fm_cancel_bind(c);
        ok(fm_cancel_bound() == c, "bound to this thread");
        ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0, "a connection");
        fm_job j = {0};
        fm_error e = {0};
        ok(fm_job_start(&j, "a blocked read", blocked_read, NULL, NULL, &e) == 0, "a job reading it");
        usleep(100000);
        ok(!fm_job_done(&j), "the read blocks");
        fm_job s = {0};
        ok(fm_job_start(&s, "a child", sleeper, NULL, NULL, &e) == 0, "a job running a child");
        usleep(200000);
        double t0 = fm_now_ms();
        fm_cancel_fire(c);
        ok(fm_job_join(&j) == 0, "the read returned at once when the group fired (its job's thread was in it)");
        int st = fm_job_join(&s);
        ok(st == 128 + SIGKILL && fm_now_ms() - t0 < 5000, "the child was killed (status %d)", st);
        ok(fm_cancel_fired(c), "it says it fired");
        int q[2];
        ok(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0 && fm_cancel_track_fd(q[0]) < 0,
           "a connection made after it fired is refused");
        fm_close(q[0]);
        fm_close(q[1]);
        fm_close(sp[0]);
        fm_close(sp[1]);

        /* a number reused by another connection is not shut down */
        fm_cancel *d = fm_cancel_new();
        fm_cancel_bind(d);
        int a[2], b[2];
        ok(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 && fm_cancel_track_fd(a[0]) == 0, "tracked");
        int num = a[0];
        close(a[0]); /* closed without untracking */
        ok(socketpair(AF_UNIX, SOCK_STREAM, 0, b) == 0, "another connection");
        if (b[0] != num && b[1] == num) {
                int t = b[0];
                b[0] = b[1];
                b[1] = t;
        }
        fm_cancel_bind(NULL);
        fm_cancel_fire(d);
        ok(b[0] == num && write(b[1], "x", 1) == 1, "its number was reused (%d) and it still carries data", b[0]);
        char ch = 0;
        ok(read(b[0], &ch, 1) == 1 && ch == 'x', "and was not shut down");
        fm_close(a[1]);
        fm_close(b[0]);
        fm_close(b[1]);

        /* a connection in its TLS handshake, its peer mute */
        char dir[] = "/tmp/fm-cancel-test.XXXXXX";
        const char *ip[] = {"127.0.0.1"};
        ok(mkdtemp(dir) && fm_pki_init(dir, "t", false, &e) == 0 &&
           fm_pki_issue(dir, "h1", "host", ip, 1, 1, &e) == 0 && fm_tls_setup(dir, "h1", &e) == 0,
           "TLS set up (%s)", e.msg);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        ok(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 4) == 0 &&
           getsockname(l, (struct sockaddr *)&sa, &sl) == 0, "a mute peer listens");
        mute_port = ntohs(sa.sin_port);
        fm_cancel *h = fm_cancel_new();
        fm_cancel_bind(h);
        fm_job hj = {0};
        ok(fm_job_start(&hj, "a handshake", dial_mute, NULL, NULL, &e) == 0, "a job connecting to it");
        fm_cancel_bind(NULL);
        usleep(300000);
        ok(!fm_job_done(&hj), "the handshake waits");
        t0 = fm_now_ms();
        fm_cancel_fire(h);
        int hr = fm_job_join(&hj);
        ok(hr < 0 && fm_now_ms() - t0 < 5000, "ended when the group fired, in %.0f ms (%s)", fm_now_ms() - t0,
           hj.err.msg);
        close(l);
        fm_rm_rf(dir);
        fm_cancel_free(h);
        fm_cancel_free(c);
        fm_cancel_free(d);
        return tap_done();
}
