#include "execwatch.h"

#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The last RING execs of descendants are kept; a migration asks for its
 * frozen window's a moment after it ends. */
#define RING 1024

typedef struct exec_rec {
        uint64_t at;   /* the kernel's timestamp (CLOCK_MONOTONIC ns) */
        pid_t pid;
        char comm[16]; /* "?" when the process had gone before it could be read */
} exec_rec;

struct fm_execwatch {
        int fd, stop_pipe[2];
        pthread_t thread;
        bool started;
        bool busy; /* the reader holds a message it has not finished */
        pthread_mutex_t lock;
        pthread_cond_t moved;
        /* descendants of this process, one bit per pid (fork events add,
         * exit events remove): attribution that does not depend on reading
         * /proc before a short-lived program has ended */
        uint8_t *ours;
        size_t pid_max;
        exec_rec ring[RING];
        uint64_t n;         /* execs recorded so far (ring index = n % RING) */
        uint64_t seen_ns;   /* the newest event's timestamp */
        uint64_t lost;      /* ENOBUFS: events the kernel dropped */
        uint64_t lost_at;   /* when the last loss was noticed (fm_now_ns) */
};

static bool bit_get(const fm_execwatch *w, pid_t p)
{
        return p > 0 && (size_t)p < w->pid_max && (w->ours[p >> 3] >> (p & 7) & 1);
}

static void bit_set(fm_execwatch *w, pid_t p, bool on)
{
        if (p <= 0 || (size_t)p >= w->pid_max)
                return;
        if (on)
                w->ours[p >> 3] |= (uint8_t)(1u << (p & 7));
        else
                w->ours[p >> 3] &= (uint8_t)~(1u << (p & 7));
}

static void on_event(fm_execwatch *w, const struct proc_event *ev)
{
        pthread_mutex_lock(&w->lock);
        if (ev->timestamp_ns > w->seen_ns)
                w->seen_ns = ev->timestamp_ns;
        switch (ev->what) {
        case PROC_EVENT_FORK: /* a new process (not a thread) of one of ours */
                if (ev->event_data.fork.child_pid == ev->event_data.fork.child_tgid &&
                    bit_get(w, ev->event_data.fork.parent_tgid))
                        bit_set(w, ev->event_data.fork.child_tgid, true);
                break;
        case PROC_EVENT_EXIT:
                if (ev->event_data.exit.process_pid == ev->event_data.exit.process_tgid &&
                    ev->event_data.exit.process_tgid != getpid())
                        bit_set(w, ev->event_data.exit.process_tgid, false);
                break;
        case PROC_EVENT_EXEC: {
                pid_t pid = ev->event_data.exec.process_tgid;
                if (!bit_get(w, pid))
                        break;
                exec_rec *r = &w->ring[w->n % RING];
                r->at = ev->timestamp_ns;
                r->pid = pid;
                snprintf(r->comm, sizeof(r->comm), "?");
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t k = fd >= 0 ? read(fd, r->comm, sizeof(r->comm) - 1) : -1;
                if (fd >= 0)
                        close(fd);
                if (k > 0) {
                        r->comm[k] = '\0';
                        r->comm[strcspn(r->comm, "\n")] = '\0';
                }
                w->n++;
                break;
        }
        default:
                break;
        }
        pthread_cond_broadcast(&w->moved);
        pthread_mutex_unlock(&w->lock);
}

static void *reader(void *arg)
{
        fm_execwatch *w = arg;
        char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
        for (;;) {
                struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = w->stop_pipe[0], .events = POLLIN}};
                if (poll(p, 2, -1) < 0)
                        continue;
                if (p[1].revents)
                        return NULL;
                pthread_mutex_lock(&w->lock);
                w->busy = true;
                pthread_mutex_unlock(&w->lock);
                ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        int err = errno;
                        pthread_mutex_lock(&w->lock);
                        if (err == ENOBUFS) {
                                w->lost++;
                                w->lost_at = fm_now_ns();
                        }
                        w->busy = false;
                        pthread_mutex_unlock(&w->lock);
                        continue;
                }
                int len = (int)n; /* signed: NLMSG_OK's guard against a short tail */
                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_NOOP)
                                continue;
                        const struct cn_msg *m = NLMSG_DATA(h);
                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->id.idx != CN_IDX_PROC ||
                            m->len < sizeof(struct proc_event) - sizeof(((struct proc_event *)0)->event_data) + 16 ||
                            NLMSG_LENGTH(sizeof(*m) + m->len) > h->nlmsg_len)
                                continue;
                        /* the event follows a 20-byte cn_msg: 4-aligned, and
                         * it holds a u64; copied out whole (its size is
                         * checked above, the union's unused tail zeroed) */
                        struct proc_event ev;
                        memset(&ev, 0, sizeof(ev));
                        memcpy(&ev, m->data, m->len < sizeof(ev) ? m->len : sizeof(ev));
                        on_event(w, &ev);
                }
                pthread_mutex_lock(&w->lock);
                w->busy = false;
                pthread_mutex_unlock(&w->lock);
        }
}

static int listen_op(int fd, enum proc_cn_mcast_op op)
{
        struct __attribute__((aligned(NLMSG_ALIGNTO))) {
                struct nlmsghdr h;
                struct __attribute__((packed)) {
                        struct cn_msg m;
                        enum proc_cn_mcast_op op;
                } body;
        } req = {0};
        req.h.nlmsg_len = sizeof(req);
        req.h.nlmsg_type = NLMSG_DONE;
        req.h.nlmsg_pid = 0;
        req.body.m.id.idx = CN_IDX_PROC;
        req.body.m.id.val = CN_VAL_PROC;
        req.body.m.len = sizeof(enum proc_cn_mcast_op);
        req.body.op = op;
        return send(fd, &req, sizeof(req), 0) < 0 ? -errno : 0;
}

fm_execwatch *fm_execwatch_open(fm_error *e)
{
        fm_execwatch *w = calloc(1, sizeof(*w));
        if (!w) {
                fm_err(e, ENOMEM, "out of memory");
                return NULL;
        }
        w->fd = w->stop_pipe[0] = w->stop_pipe[1] = -1;
        _cleanup_free_ char *pm = NULL;
        long max = fm_read_file("/proc/sys/kernel/pid_max", &pm, 64) > 0 ? atol(pm) : 4194304;
        w->pid_max = max > 0 && max <= 4194304 ? (size_t)max + 1 : 4194305;
        w->ours = calloc(w->pid_max / 8 + 1, 1);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->moved, NULL);
        int r = 0;
        w->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
        struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0};
        int sz = 8 << 20;
        if (!w->ours)
                r = fm_err(e, ENOMEM, "out of memory");
        else if (w->fd < 0 || bind(w->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                r = fm_err(e, errno, "the process-event connector: %s (only in the initial network namespace)",
                           strerror(errno));
        else if ((setsockopt(w->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)), (r = listen_op(w->fd, PROC_CN_MCAST_LISTEN))) < 0)
                r = fm_err(e, -r, "listening to process events: %s", strerror(-r));
        else if (pipe2(w->stop_pipe, O_CLOEXEC) < 0)
                r = fm_err(e, errno, "pipe: %s", strerror(errno));
        if (r == 0)
                bit_set(w, getpid(), true);
        if (r < 0) {
                fm_close(w->fd);
                fm_close(w->stop_pipe[0]);
                fm_close(w->stop_pipe[1]);
                free(w->ours);
                free(w);
                return NULL;
        }
        return w;
}

int fm_execwatch_start(fm_execwatch *w, fm_error *e)
{
        if (pthread_create(&w->thread, NULL, reader, w) != 0)
                return fm_err(e, EAGAIN, "cannot start the process-event reader");
        w->started = true;
        return 0;
}

void fm_execwatch_close(fm_execwatch *w)
{
        if (!w)
                return;
        ssize_t k = write(w->stop_pipe[1], "x", 1);
        (void)k;
        if (w->started)
                pthread_join(w->thread, NULL);
        listen_op(w->fd, PROC_CN_MCAST_IGNORE);
        fm_close(w->fd);
        fm_close(w->stop_pipe[0]);
        fm_close(w->stop_pipe[1]);
        free(w->ours);
        free(w);
}

json_object *fm_execwatch_between(fm_execwatch *w, uint64_t t0, uint64_t t1, uint64_t *lost)
{
        if (!w)
                return NULL;
        /* Caught up with t1: an event newer than it was read, or the socket
         * holds nothing unread and the reader is between messages (the
         * kernel queues an event as the exec happens, so every one up to now
         * is in). Bounded: 50 ms. */
        pthread_mutex_lock(&w->lock);
        for (int i = 0; i < 50 && w->seen_ns < t1; i++) {
                char peek;
                ssize_t k = w->busy ? 1 : recv(w->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
                if (k < 0 && errno == ENOBUFS) { /* the peek took the kernel's word of a loss */
                        w->lost++;
                        w->lost_at = fm_now_ns();
                }
                if (k < 0 && errno == EAGAIN)
                        break;
                pthread_mutex_unlock(&w->lock);
                usleep(1000);
                pthread_mutex_lock(&w->lock);
        }
        json_object *a = json_object_new_array();
        uint64_t first = w->n > RING ? w->n - RING : 0;
        for (uint64_t i = first; i < w->n; i++) {
                const exec_rec *r = &w->ring[i % RING];
                if (r->at < t0 || r->at > t1)
                        continue;
                json_object *o = json_object_new_object();
                json_object_object_add(o, "program", json_object_new_string(r->comm));
                json_object_object_add(o, "pid", json_object_new_int(r->pid));
                json_object_object_add(o, "at_ms", json_object_new_double((double)(r->at - t0) / 1e6));
                json_object_array_add(a, o);
        }
        if (lost)
                *lost = w->lost_at >= t0 ? w->lost : 0;
        pthread_mutex_unlock(&w->lock);
        return a;
}
