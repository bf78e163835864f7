/* The probe's verdict on a migration ("kept" or not), from its accounting
 * alone and then from a real probe thread against a service on loopback
 * that goes silent, restarts or goes back to an older state. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe/probe.h"
#include "tap.h"

static void fresh(fm_probe *p)
{
        memset(p, 0, sizeof(*p));
        pthread_mutex_init(&p->lock, NULL);
}

/* replies counters from..to (inclusive), 1 ms apart from *t */
static void answer(fm_probe *p, double *t, uint64_t from, uint64_t to, uint64_t boot)
{
        for (uint64_t c = from; c <= to; c++, *t += 1)
                fm_probe_account(p, *t, c, boot);
}

static bool verdict(fm_probe *p, const char **why)
{
        return fm_probe_kept(&p->res, why);
}

static void accounting(void)
{
        fm_probe p;
        const char *why = NULL;
        double t = 0;

        fresh(&p);
        answer(&p, &t, 1, 100, 7);
        fm_probe_mark_freeze(&p);
        t += 250; /* the freeze */
        answer(&p, &t, 101, 140, 7);
        fm_probe_mark_end(&p);
        answer(&p, &t, 141, 150, 7);
        ok(verdict(&p, &why), "a migration that went on: kept (%s)", why ? why : "-");
        ok(near(p.res.max_gap_ms, 251, 1e-9), "the gap is the freeze (%.1f ms)", p.res.max_gap_ms);
        ok(p.res.freeze_counter == 100 && p.res.answered_after == 10 && p.res.after_counter == 150,
           "marks: freeze at 100, 10 answers after the end, up to 150");

        fresh(&p);
        t = 0;
        answer(&p, &t, 1, 100, 7);
        fm_probe_mark_freeze(&p);
        fm_probe_mark_end(&p);
        ok(!verdict(&p, &why) && why && strstr(why, "did not answer after"),
           "a service that never answers again is not kept (%s)", why ? why : "-");

        fresh(&p);
        t = 0;
        answer(&p, &t, 1, 100, 7);
        fm_probe_mark_freeze(&p);
        t += 2000;
        fm_probe_mark_end(&p);
        answer(&p, &t, 1, 20, 8);
        ok(!verdict(&p, &why) && why && strstr(why, "restarted"), "a restarted service is not kept (%s)",
           why ? why : "-");

        fresh(&p);
        t = 0;
        answer(&p, &t, 1, 100, 7);
        fm_probe_mark_freeze(&p);
        fm_probe_mark_end(&p);
        answer(&p, &t, 60, 80, 7); /* same boot, older state: counters answered twice */
        ok(!verdict(&p, &why) && why && strstr(why, "went back"), "an older state is not kept (%s)",
           why ? why : "-");

        fresh(&p);
        t = 0;
        answer(&p, &t, 1, 10000, 7);
        fm_probe_mark_freeze(&p);
        fm_probe_mark_end(&p);
        answer(&p, &t, 3, 5, 7); /* far below the highest: beyond the window of counters kept */
        ok(!verdict(&p, &why) && p.res.counter_regressed, "a counter far below the highest went back");

        /* a reply delivered late is reordering, not a lost state */
        fresh(&p);
        t = 0;
        answer(&p, &t, 1, 97, 7);
        answer(&p, &t, 99, 100, 7);
        fm_probe_mark_freeze(&p);
        fm_probe_mark_end(&p);
        answer(&p, &t, 98, 98, 7);
        answer(&p, &t, 101, 105, 7);
        ok(verdict(&p, &why) && p.res.reordered == 1, "one late reply: reordered, kept (%s)", why ? why : "-");

        /* answered after the end, but only with what the service had
         * already counted before the freeze: it did not go on */
        fresh(&p);
        t = 0;
        answer(&p, &t, 1, 94, 7);
        answer(&p, &t, 100, 100, 7);
        fm_probe_mark_freeze(&p);
        fm_probe_mark_end(&p);
        answer(&p, &t, 96, 96, 7);
        ok(!verdict(&p, &why) && why && strstr(why, "did not go on"), "no counter past the freeze: not kept (%s)",
           why ? why : "-");

        /* no marks (a plain probe run): answers and no restart suffice */
        fresh(&p);
        t = 0;
        answer(&p, &t, 5, 50, 9);
        ok(verdict(&p, NULL), "without marks: kept when it answered and never restarted");
        fresh(&p);
        ok(!verdict(&p, &why) && why && strstr(why, "never answered"), "no answer at all: not kept");
}

/* ---- a fm-seqecho stand-in on loopback ---- */

enum { ANSWER, SILENT, RESTARTED, OLDER };

typedef struct service {
        int fd;
        uint16_t port;
        atomic_int mode;
        atomic_bool stop;
        uint64_t counter, boot;
        pthread_t thread;
} service;

static void put64(unsigned char *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                p[i] = (unsigned char)v;
}

static void *serve(void *arg)
{
        service *s = arg;
        int last = ANSWER;
        while (!atomic_load(&s->stop)) {
                struct pollfd pf = {.fd = s->fd, .events = POLLIN};
                if (poll(&pf, 1, 20) <= 0)
                        continue;
                unsigned char req[64], rep[28];
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(s->fd, req, sizeof(req), 0, (struct sockaddr *)&from, &fl);
                int mode = atomic_load(&s->mode);
                if (n < 12 || memcmp(req, "FMQ1", 4) || mode == SILENT)
                        continue;
                if (mode != last && mode == RESTARTED) {
                        s->counter = 0;
                        s->boot++;
                } else if (mode != last && mode == OLDER) {
                        s->counter = s->counter > 30 ? s->counter - 30 : 0;
                }
                last = mode;
                memcpy(rep, "FMR1", 4);
                memcpy(rep + 4, req + 4, 8);
                put64(rep + 12, ++s->counter);
                put64(rep + 20, s->boot);
                sendto(s->fd, rep, sizeof(rep), 0, (struct sockaddr *)&from, fl);
        }
        return NULL;
}

static int service_start(service *s)
{
        memset(s, 0, sizeof(*s));
        s->boot = 1000;
        s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(sa);
        if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(s->fd, (struct sockaddr *)&sa, &l) < 0)
                return -1;
        s->port = ntohs(sa.sin_port);
        return pthread_create(&s->thread, NULL, serve, s) == 0 ? 0 : -1;
}

static void service_stop(service *s)
{
        atomic_store(&s->stop, true);
        pthread_join(s->thread, NULL);
        close(s->fd);
}

/* One probed "migration": answers, the freeze (silent 100 ms), then the
 * service comes back in `after` mode; the verdict once 30 more replies came
 * (or 1 s passed). */
static bool probed(int after, fm_probe_result *res, const char **why)
{
        service s;
        fm_probe p;
        fm_error e = {0};
        if (service_start(&s) < 0 || fm_probe_start(&p, NULL, "127.0.0.1", s.port, 1000, &e) < 0) {
                ok(0, "loopback service and probe: %s", e.msg);
                return false;
        }
        fm_probe_wait_reply(&p, 20, 5000);
        atomic_store(&s.mode, SILENT);
        usleep(5000);
        fm_probe_mark_freeze(&p);
        usleep(100000);
        atomic_store(&s.mode, after);
        fm_probe_mark_end(&p);
        fm_probe_wait_reply(&p, atomic_load(&p.received) + 30, 1000);
        fm_probe_stop(&p, res);
        service_stop(&s);
        return fm_probe_kept(res, why);
}

static void loopback(void)
{
        fm_probe_result r;
        const char *why = NULL;
        ok(probed(ANSWER, &r, &why), "loopback: back after 100 ms, kept (%s)", why ? why : "-");
        ok(r.max_gap_ms >= 100, "loopback: the gap covers the silence (%.1f ms)", r.max_gap_ms);
        ok(r.answered_after > 0 && r.after_counter > r.freeze_counter, "loopback: the counter went on (%llu > %llu)",
           (unsigned long long)r.after_counter, (unsigned long long)r.freeze_counter);
        ok(!probed(SILENT, &r, &why) && why && strstr(why, "did not answer"), "loopback: silent after: %s",
           why ? why : "-");
        ok(r.max_gap_ms >= 100, "loopback: a service that never came back shows the gap to the end (%.1f ms)",
           r.max_gap_ms);
        ok(!probed(RESTARTED, &r, &why) && why && strstr(why, "restarted"), "loopback: restarted: %s", why ? why : "-");
        ok(!probed(OLDER, &r, &why) && why && strstr(why, "went back"), "loopback: older state: %s", why ? why : "-");
}

int main(void)
{
        accounting();
        loopback();
        return tap_done();
}
