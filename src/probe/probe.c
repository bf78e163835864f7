#include "probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/netns.h"

static int udp_socket(const char *netns, const char *ip, uint16_t port, fm_error *e)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
                return fm_err(e, EINVAL, "bad IPv4 address `%s'", ip);
        int fd = netns ? fm_netns_socket(netns, AF_INET, SOCK_DGRAM, 0, e) : socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return netns ? fd : fm_err(e, errno, "socket: %s", strerror(errno));
        /* connect() so that ICMP errors and stray datagrams are filtered out */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int err = errno;
                fm_close(fd);
                return fm_err(e, err, "connect %s:%u: %s", ip, port, strerror(err));
        }
        return fd;
}

void fm_probe_account(fm_probe *p, double now, uint64_t counter, uint64_t boot)
{
        pthread_mutex_lock(&p->lock);
        fm_probe_result *r = &p->res;
        if (r->received == 0) {
                r->first_counter = counter;
                p->boot = boot;
        } else {
                double gap = now - p->last_reply;
                if (gap > atomic_load(&p->window_gap))
                        atomic_store(&p->window_gap, gap);
                if (gap > r->max_gap_ms) {
                        r->max_gap_ms = gap;
                        r->max_gap_start_ms = p->last_reply;
                }
                if (boot != p->boot)
                        r->boot_changed = true;
                /* Replies may be reordered in the network (a datagram the
                 * service sent just before the freeze can come out late), so
                 * only a counter answered twice, or far below the highest
                 * seen, means the service's state went back. */
                if (counter + FM_PROBE_WINDOW <= r->max_counter ||
                    p->seen[counter % FM_PROBE_WINDOW] == counter)
                        r->counter_regressed = true;
                else if (counter < r->max_counter)
                        r->reordered++;
        }
        if (r->end_marked) {
                r->answered_after++;
                if (counter > r->after_counter)
                        r->after_counter = counter;
        }
        r->last_counter = counter;
        if (counter > r->max_counter)
                r->max_counter = counter;
        p->seen[counter % FM_PROBE_WINDOW] = counter;
        p->last_reply = now;
        r->received++;
        atomic_store(&p->received, r->received);
        pthread_mutex_unlock(&p->lock);
}

static void handle_reply(fm_probe *p, const unsigned char *b, ssize_t n)
{
        if (n < 28 || memcmp(b, "FMR1", 4))
                return;
        fm_probe_account(p, fm_now_ms() - p->t0, fm_get_be64(b + 12), fm_get_be64(b + 20));
}

void fm_probe_mark_freeze(fm_probe *p)
{
        pthread_mutex_lock(&p->lock);
        p->res.freeze_marked = true;
        p->res.freeze_counter = p->res.max_counter;
        pthread_mutex_unlock(&p->lock);
}

void fm_probe_mark_end(fm_probe *p)
{
        pthread_mutex_lock(&p->lock);
        p->res.end_marked = true;
        p->res.answered_after = 0;
        p->res.after_counter = 0;
        pthread_mutex_unlock(&p->lock);
}

bool fm_probe_kept(const fm_probe_result *r, const char **why)
{
        const char *w = NULL;
        if (r->received == 0)
                w = "the service never answered";
        else if (r->end_marked && r->answered_after == 0)
                w = "the service did not answer after the migration";
        else if (r->boot_changed)
                w = "the service restarted (its boot id changed)";
        else if (r->counter_regressed)
                w = "the service's counter went back (an older state answered)";
        else if (r->freeze_marked && r->end_marked && r->after_counter <= r->freeze_counter)
                w = "the service's counter did not go on from where it stood at the freeze";
        if (why)
                *why = w;
        return w == NULL;
}

static void *probe_thread(void *arg)
{
        fm_probe *p = arg;
        unsigned char req[12], buf[64];
        memcpy(req, "FMQ1", 4);
        uint64_t next = fm_now_ns();
        while (!atomic_load(&p->stop)) {
                uint64_t now = fm_now_ns();
                if (now >= next) {
                        fm_put_be64(req + 4, p->res.sent);
                        if (send(p->fd, req, sizeof(req), MSG_DONTWAIT) >= 0 || errno != EINTR)
                                p->res.sent++;
                        next += (uint64_t)p->interval_us * 1000ull;
                        if (next < now) /* we fell behind (e.g. descheduled): do not burst */
                                next = now + (uint64_t)p->interval_us * 1000ull;
                        continue;
                }
                uint64_t wait = next - now;
                struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull), .tv_nsec = (long)(wait % 1000000000ull)};
                struct pollfd pf = {.fd = p->fd, .events = POLLIN};
                if (ppoll(&pf, 1, &ts, NULL) > 0) {
                        ssize_t n;
                        while ((n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0 || (n < 0 && errno == ECONNREFUSED))
                                if (n > 0)
                                        handle_reply(p, buf, n);
                }
        }
        return NULL;
}

int fm_probe_start(fm_probe *p, const char *netns, const char *ip, uint16_t port, int interval_us, fm_error *e)
{
        memset(p, 0, sizeof(*p));
        pthread_mutex_init(&p->lock, NULL);
        if (interval_us < 100)
                return fm_err(e, EINVAL, "probe interval must be at least 0.1 ms");
        p->fd = udp_socket(netns, ip, port, e);
        if (p->fd < 0)
                return p->fd;
        p->interval_us = interval_us;
        p->t0 = fm_now_ms();
        if (pthread_create(&p->thread, NULL, probe_thread, p) != 0) {
                p->fd = fm_close(p->fd);
                return fm_err(e, EAGAIN, "cannot start the probe thread");
        }
        return 0;
}

int fm_probe_wait_reply(fm_probe *p, uint64_t after, int timeout_ms)
{
        uint64_t deadline = fm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
        while (atomic_load(&p->received) <= after) {
                if (fm_now_ns() >= deadline)
                        return -ETIMEDOUT;
                usleep(1000);
        }
        return 0;
}

double fm_probe_window_gap(fm_probe *p)
{
        /* a stall still under way counts up to now */
        pthread_mutex_lock(&p->lock);
        double open = fm_now_ms() - p->t0 - p->last_reply;
        pthread_mutex_unlock(&p->lock);
        double g = atomic_exchange(&p->window_gap, 0.0);
        return open > g ? open : g;
}

void fm_probe_stop(fm_probe *p, fm_probe_result *out)
{
        atomic_store(&p->stop, true);
        pthread_join(p->thread, NULL);
        p->fd = fm_close(p->fd);
        pthread_mutex_destroy(&p->lock);
        p->res.duration_ms = fm_now_ms() - p->t0;
        /* a service that never answered again: the gap runs to the end */
        if (p->res.received > 0 && p->res.duration_ms - p->last_reply > p->res.max_gap_ms) {
                p->res.max_gap_ms = p->res.duration_ms - p->last_reply;
                p->res.max_gap_start_ms = p->last_reply;
        }
        *out = p->res;
}

/* One request with retries; kind "FMQ1", "FMW1" (name) or "FMV1"; the
 * reply (at least 28 bytes) goes to out. Returns its length. */
static int request_raw(const char *netns, const char *ip, uint16_t port, const char *kind, const char *name,
                       unsigned char *out, size_t outlen, int wait_ms, fm_error *e)
{
        _cleanup_close_ int fd = udp_socket(netns, ip, port, e);
        if (fd < 0)
                return fd;
        unsigned char req[12 + 128];
        size_t len = 12;
        memcpy(req, kind, 4);
        fm_put_be64(req + 4, 0xfa57);
        if (name) {
                size_t nl = strlen(name);
                if (nl == 0 || nl > 100 || strchr(name, '/'))
                        return fm_err(e, EINVAL, "bad file name `%s'", name);
                memcpy(req + 12, name, nl);
                len += nl;
        }
        for (int attempt = 0; attempt < 20; attempt++) {
                send(fd, req, len, 0);
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                if (poll(&pf, 1, wait_ms) > 0) {
                        ssize_t n = recv(fd, out, outlen, 0);
                        if (n >= 28 && !memcmp(out, "FMR1", 4))
                                return (int)n;
                }
        }
        return fm_err(e, ETIMEDOUT, "the service at %s:%u does not answer", ip, port);
}

int fm_probe_verify(const char *netns, const char *ip, uint16_t port, uint64_t *pages, uint64_t *bad,
                    uint64_t *checksum, fm_error *e)
{
        unsigned char buf[64];
        /* checking a large memory takes the service a while */
        int n = request_raw(netns, ip, port, "FMV1", NULL, buf, sizeof(buf), 5000, e);
        if (n < 0)
                return n;
        if (n < 52)
                return fm_err(e, EPROTO, "the service at %s does not support memory checks", ip);
        *pages = fm_get_be64(buf + 28);
        *bad = fm_get_be64(buf + 36);
        *checksum = fm_get_be64(buf + 44);
        return 0;
}

static int64_t request(const char *netns, const char *ip, uint16_t port, const char *name, uint64_t *boot,
                       fm_error *e)
{
        unsigned char buf[64];
        int n = request_raw(netns, ip, port, name ? "FMW1" : "FMQ1", name, buf, sizeof(buf), 100, e);
        if (n < 0)
                return n;
        if (boot)
                *boot = fm_get_be64(buf + 20);
        return (int64_t)fm_get_be64(buf + 12);
}

int64_t fm_probe_write(const char *netns, const char *ip, uint16_t port, const char *name, fm_error *e)
{
        return request(netns, ip, port, name, NULL, e);
}

int64_t fm_probe_once(const char *netns, const char *ip, uint16_t port, uint64_t *boot, fm_error *e)
{
        return request(netns, ip, port, NULL, boot, e);
}
