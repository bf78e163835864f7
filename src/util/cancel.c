#include "util/cancel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define CANCEL_FDS 128 /* a migration holds about a dozen connections, two fds each */
#define CANCEL_PIDS 32

struct fm_cancel {
        pthread_mutex_t lock;
        bool fired;
        struct {
                int fd; /* -1: free */
                ino_t ino; /* what the fd was: a number reused since is not shut down */
        } fds[CANCEL_FDS];
        pid_t pids[CANCEL_PIDS]; /* 0: free */
};

static _Thread_local fm_cancel *bound;

fm_cancel *fm_cancel_new(void)
{
        fm_cancel *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        pthread_mutex_init(&c->lock, NULL);
        for (int i = 0; i < CANCEL_FDS; i++)
                c->fds[i].fd = -1;
        return c;
}

void fm_cancel_free(fm_cancel *c)
{
        if (!c)
                return;
        pthread_mutex_destroy(&c->lock);
        free(c);
}

void fm_cancel_bind(fm_cancel *c) { bound = c; }

fm_cancel *fm_cancel_bound(void) { return bound; }

static bool same_file(int fd, ino_t ino)
{
        struct stat st;
        return fstat(fd, &st) == 0 && st.st_ino == ino;
}

void fm_cancel_fire(fm_cancel *c)
{
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        c->fired = true;
        for (int i = 0; i < CANCEL_FDS; i++)
                if (c->fds[i].fd >= 0 && same_file(c->fds[i].fd, c->fds[i].ino))
                        shutdown(c->fds[i].fd, SHUT_RDWR);
        for (int i = 0; i < CANCEL_PIDS; i++)
                if (c->pids[i])
                        kill(c->pids[i], SIGKILL);
        pthread_mutex_unlock(&c->lock);
}

bool fm_cancel_fired(fm_cancel *c)
{
        if (!c)
                return false;
        pthread_mutex_lock(&c->lock);
        bool f = c->fired;
        pthread_mutex_unlock(&c->lock);
        return f;
}

int fm_cancel_track_fd(int fd)
{
        fm_cancel *c = bound;
        struct stat st;
        if (!c || fstat(fd, &st) < 0)
                return 0;
        pthread_mutex_lock(&c->lock);
        int r = c->fired ? -ECANCELED : 0;
        for (int i = 0; r == 0 && i < CANCEL_FDS; i++) {
                /* a slot is free, or holds an fd closed without untracking */
                if (c->fds[i].fd < 0 || !same_file(c->fds[i].fd, c->fds[i].ino)) {
                        c->fds[i].fd = fd;
                        c->fds[i].ino = st.st_ino;
                        break;
                }
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

void fm_cancel_untrack_fd(int fd)
{
        fm_cancel *c = bound;
        if (!c || fd < 0)
                return;
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < CANCEL_FDS; i++)
                if (c->fds[i].fd == fd)
                        c->fds[i].fd = -1;
        pthread_mutex_unlock(&c->lock);
}

void fm_cancel_track_pid(pid_t target)
{
        fm_cancel *c = bound;
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        if (c->fired)
                kill(target, SIGKILL);
        for (int i = 0; i < CANCEL_PIDS; i++)
                if (!c->pids[i]) {
                        c->pids[i] = target;
                        break;
                }
        pthread_mutex_unlock(&c->lock);
}

void fm_cancel_untrack_pid(pid_t target)
{
        fm_cancel *c = bound;
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < CANCEL_PIDS; i++)
                if (c->pids[i] == target)
                        c->pids[i] = 0;
        pthread_mutex_unlock(&c->lock);
}
