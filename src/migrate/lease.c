#include "lease.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "fleet/fleet.h"
#include "lxc/container.h"
#include "migrate/journal.h"
#include "proto/proto.h"
#include "util/spawn.h"

#define MS_NS 1000000ull

uint64_t fm_lease_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fm_lease_sleep_until(uint64_t ns)
{
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
        while (clock_nanosleep(CLOCK_BOOTTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* ---- the source ---- */

static pthread_mutex_t grants_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        char name[FM_NAME_MAX + 1]; /* "": free */
        char to_host[32];
        uint64_t last_grant; /* fm_lease_now_ns; 0: none yet */
        uint64_t last_ask;   /* the target asked (any answer) */
        bool refusing, committed;
} grants[64];
static uint64_t agent_started;

void fm_lease_agent_started(void) { agent_started = fm_lease_now_ns(); }

uint64_t fm_lease_restart_safe_ns(void) { return agent_started + (FM_LEASE_MS + FM_LEASE_MARGIN_MS) * MS_NS; }

static int grant_find(const char *name)
{
        for (size_t i = 0; i < FM_ARRAY_SIZE(grants); i++)
                if (grants[i].name[0] && !strcmp(grants[i].name, name))
                        return (int)i;
        return -1;
}

int fm_lease_open(const char *name, const char *to_host)
{
        pthread_mutex_lock(&grants_lock);
        int i = grant_find(name);
        for (size_t k = 0; i < 0 && k < FM_ARRAY_SIZE(grants); k++)
                if (!grants[k].name[0])
                        i = (int)k;
        if (i >= 0) {
                memset(&grants[i], 0, sizeof(grants[i]));
                snprintf(grants[i].name, sizeof(grants[i].name), "%s", name);
                snprintf(grants[i].to_host, sizeof(grants[i].to_host), "%s", to_host);
        }
        pthread_mutex_unlock(&grants_lock);
        return i >= 0 ? 0 : -ENOSPC;
}

void fm_lease_commit(const char *name)
{
        pthread_mutex_lock(&grants_lock);
        int i = grant_find(name);
        if (i >= 0)
                grants[i].committed = true;
        pthread_mutex_unlock(&grants_lock);
}

uint64_t fm_lease_refuse(const char *name)
{
        uint64_t now = fm_lease_now_ns(), safe = now;
        pthread_mutex_lock(&grants_lock);
        int i = grant_find(name);
        if (i >= 0) {
                grants[i].refusing = true;
                if (grants[i].last_grant)
                        safe = grants[i].last_grant + (FM_LEASE_MS + FM_LEASE_MARGIN_MS) * MS_NS;
        }
        pthread_mutex_unlock(&grants_lock);
        return safe > now ? safe : now;
}

uint64_t fm_lease_last_ask(const char *name)
{
        pthread_mutex_lock(&grants_lock);
        int i = grant_find(name);
        uint64_t t = i >= 0 ? grants[i].last_ask : 0;
        pthread_mutex_unlock(&grants_lock);
        return t;
}

void fm_lease_close(const char *name)
{
        pthread_mutex_lock(&grants_lock);
        int i = grant_find(name);
        if (i >= 0)
                grants[i].name[0] = '\0';
        pthread_mutex_unlock(&grants_lock);
}

const char *fm_lease_answer(const fm_host_paths *p, const char *name, const char *peer)
{
        const char *answer = NULL;
        pthread_mutex_lock(&grants_lock);
        int i = grant_find(name);
        if (i >= 0) {
                if (!strcmp(grants[i].to_host, peer))
                        grants[i].last_ask = fm_lease_now_ns();
                if (strcmp(grants[i].to_host, peer) || grants[i].refusing)
                        answer = "refused";
                else if (grants[i].committed)
                        answer = "committed";
                else {
                        /* recorded before it is sent: a refusal later counts from here */
                        grants[i].last_grant = fm_lease_now_ns();
                        answer = "granted";
                }
        }
        pthread_mutex_unlock(&grants_lock);
        if (answer)
                return answer;
        /* no migration under way here: only a recorded commit lets it run */
        char path[600];
        fm_journal_rec r;
        fm_error ignore = {0};
        if (!p->state)
                return "refused";
        fm_journal_path(p->state, name, path, sizeof(path));
        if (fm_journal_read(path, &r, &ignore) == 0 && r.step == FM_JOURNAL_COMMITTED && !strcmp(r.to_host, peer))
                return "committed";
        return "refused";
}

/* ---- the target ---- */

/* In the container's directory: FM_LEASE_FILE holds the state, replaced
 * whole (written aside, renamed); LOCK_FILE, flock'ed around every
 * read-modify-write; FM_FENCE_LOCK, an OFD lock the live fence holds. */
#define LOCK_FILE FM_LEASE_FILE ".lock"

/* UNTIL: granted until, not thawed yet (the restore thaws only before
 * until); RUNNING: thawed, granted until (the fence acts after it). */
typedef enum { LEASE_UNTIL, LEASE_RUNNING, LEASE_COMMITTED, LEASE_FENCED } lease_state;

typedef struct lease_val {
        lease_state st;
        uint64_t until; /* UNTIL, RUNNING: fm_lease_now_ns */
} lease_val;

static bool granted(const lease_val *v) { return v->st == LEASE_UNTIL || v->st == LEASE_RUNNING; }

bool fm_lease_enabled(const fm_host_paths *p) { return p->fleet && p->fence_prog[0]; }

static void lease_path(const char *lxcpath, const char *name, const char *file, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%.*s/%s", lxcpath, FM_NAME_MAX, name, file);
}

/* The lease's lock, taken (closing the fd releases it); -errno, -ENOENT
 * when there is no lease (and create is false). */
static int lease_lock_how(const char *lxcpath, const char *name, bool create, int how)
{
        char path[700];
        lease_path(lxcpath, name, LOCK_FILE, path, sizeof(path));
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, how) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int lease_lock(const char *lxcpath, const char *name, bool create)
{
        return lease_lock_how(lxcpath, name, create, LOCK_EX);
}

/* Under the lock. -ENOENT: the lease ended. What cannot be read is a lapsed
 * lease of a copy not thawed: nothing thaws it, nothing asks LXC about it. */
static int lease_read(const char *lxcpath, const char *name, lease_val *v)
{
        char path[700];
        lease_path(lxcpath, name, FM_LEASE_FILE, path, sizeof(path));
        _cleanup_free_ char *buf = NULL;
        int n = fm_read_file(path, &buf, 64);
        if (n == -ENOENT)
                return n;
        unsigned long long t = 0;
        char nl = 0;
        *v = (lease_val){.st = LEASE_UNTIL, .until = 0};
        if (n <= 0)
                return 0;
        if (!strcmp(buf, "committed\n"))
                v->st = LEASE_COMMITTED;
        else if (!strcmp(buf, "fenced\n"))
                v->st = LEASE_FENCED;
        else if (sscanf(buf, "until %llu%c", &t, &nl) == 2 && nl == '\n')
                v->until = t;
        else if (sscanf(buf, "running %llu%c", &t, &nl) == 2 && nl == '\n')
                *v = (lease_val){.st = LEASE_RUNNING, .until = t};
        return 0;
}

/* Under the lock: written aside and renamed, so a reader never sees half. */
static int lease_write(const char *lxcpath, const char *name, const lease_val *v)
{
        char buf[64], path[700], tmp[720];
        int n = v->st == LEASE_COMMITTED ? snprintf(buf, sizeof(buf), "committed\n")
                : v->st == LEASE_FENCED  ? snprintf(buf, sizeof(buf), "fenced\n")
                : v->st == LEASE_RUNNING ? snprintf(buf, sizeof(buf), "running %llu\n", (unsigned long long)v->until)
                                         : snprintf(buf, sizeof(buf), "until %llu\n", (unsigned long long)v->until);
        lease_path(lxcpath, name, FM_LEASE_FILE, path, sizeof(path));
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        int r = fm_write_file(tmp, buf, (size_t)n, 0600);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

static void lease_remove(const char *lxcpath, const char *name)
{
        char path[700];
        lease_path(lxcpath, name, FM_LEASE_FILE, path, sizeof(path));
        unlink(path);
        lease_path(lxcpath, name, LOCK_FILE, path, sizeof(path));
        unlink(path);
}

/* A fenced copy runs for good: back on its bridge, thawed. */
static int unfence(const char *lxcpath, const char *name, fm_error *e)
{
        fm_ct_port port;
        fm_error ignore = {0};
        if (fm_ct_port_get(lxcpath, name, &port, &ignore) == 0 && fm_ct_port_set(&port, true, e) < 0)
                return fm_err_wrap(e, "putting %s back on its bridge", name);
        if (fm_ct_unfreeze(lxcpath, name, e) < 0)
                return fm_err_wrap(e, "thawing %s", name);
        fm_ct_announce(lxcpath, name, &ignore);
        fprintf(stderr, "fastmigd: %s: its migration committed: the fenced copy runs again\n", name);
        return 0;
}

/* Asks the source once (t0: when it asked) and records the answer. */
static int ask(const fm_host_paths *p, const char *name, const char **answer, fm_error *e)
{
        char path[700];
        _cleanup_free_ char *peer = NULL;
        *answer = NULL;
        lease_path(p->lxcpath, name, FM_INCOMING_FILE, path, sizeof(path));
        if (fm_read_file(path, &peer, 64) < 0)
                return fm_err(e, ENOENT, "no migration is bringing %s", name);
        const fm_host *h = fm_fleet_host(p->fleet, peer);
        if (!h)
                return fm_err(e, ENOENT, "%s's source %s is not in the fleet", name, peer);
        json_object *req = json_object_new_object(), *reply = NULL;
        json_object_object_add(req, "op", json_object_new_string("lease"));
        json_object_object_add(req, "name", json_object_new_string(name));
        uint64_t t0 = fm_lease_now_ns();
        int r = fm_call_bounded(h->addr, h->port, req, &reply, FM_LEASE_ASK_CONNECT_MS, FM_LEASE_ASK_MS, e);
        json_object_put(req);
        const char *s = NULL;
        if (r == 0)
                r = fm_reply_check(reply, e);
        if (r == 0)
                r = fm_json_str(reply, "lease", true, 16, &s, e);
        if (r == 0 && strcmp(s, "granted") && strcmp(s, "committed") && strcmp(s, "refused"))
                r = fm_err(e, EPROTO, "unknown lease answer `%s'", s);
        if (r < 0) {
                json_object_put(reply);
                return fm_err_wrap(e, "asking %s for the lease of %s", peer, name);
        }
        *answer = !strcmp(s, "granted") ? "granted" : !strcmp(s, "committed") ? "committed" : "refused";
        json_object_put(reply);
        int fd = lease_lock(p->lxcpath, name, false);
        if (fd < 0) /* it ended meanwhile */
                return fm_err(e, -fd, "the lease of %s ended", name);
        lease_val v;
        r = lease_read(p->lxcpath, name, &v);
        if (r == 0 && granted(&v) && !strcmp(*answer, "granted")) {
                uint64_t until = t0 + FM_LEASE_MS * MS_NS;
                if (until > v.until)
                        v.until = until;
        } else if (r == 0 && granted(&v) && !strcmp(*answer, "refused")) {
                v.until = 0;
        } else if (r == 0 && v.st != LEASE_COMMITTED && !strcmp(*answer, "committed")) {
                if (v.st == LEASE_FENCED && unfence(p->lxcpath, name, e) < 0) {
                        close(fd);
                        return -e->code;
                }
                v.st = LEASE_COMMITTED;
        }
        if (r == 0)
                r = lease_write(p->lxcpath, name, &v);
        close(fd);
        return r < 0 && r != -ENOENT ? fm_err(e, -r, "writing the lease of %s: %s", name, strerror(-r)) : 0;
}

/* The fence holds an OFD write lock on FM_FENCE_LOCK while it runs: looked
 * at here without taking it (a fence starting meanwhile is not disturbed). */
static bool fence_alive(const fm_host_paths *p, const char *name)
{
        char path[700];
        lease_path(p->lxcpath, name, FM_FENCE_LOCK, path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        bool held = fcntl(fd, F_OFD_GETLK, &l) == 0 && l.l_type != F_UNLCK;
        close(fd);
        return held;
}

static int fence_start(const fm_host_paths *p, const char *name, fm_error *e)
{
        char *argv[] = {(char *)p->fence_prog, (char *)p->lxcpath, (char *)name, NULL};
        if (fm_spawn_daemon(argv, e) < 0)
                return -e->code;
        for (int i = 0; i < 400; i++) { /* it holds its lock within ms */
                if (fence_alive(p, name))
                        return 0;
                usleep(5000);
        }
        return fm_err(e, ESRCH, "the fence process of %s (%s) did not start", name, p->fence_prog);
}

/* Once the lease ended: the fence has gone (it looks every FM_FENCE_POLL_MS). */
static void fence_wait_gone(const fm_host_paths *p, const char *name)
{
        for (int i = 0; i < 100 && fence_alive(p, name); i++)
                usleep(20000);
        char path[700];
        lease_path(p->lxcpath, name, FM_FENCE_LOCK, path, sizeof(path));
        unlink(path);
}

int fm_lease_begin(const fm_host_paths *p, const char *name, fm_error *e)
{
        if (!fm_lease_enabled(p))
                return 0;
        int fd = lease_lock(p->lxcpath, name, true);
        if (fd < 0)
                return fm_err(e, -fd, "creating the lease of %s: %s", name, strerror(-fd));
        lease_val v = {.st = LEASE_UNTIL, .until = 0};
        int r = lease_write(p->lxcpath, name, &v);
        close(fd);
        if (r < 0)
                return fm_err(e, -r, "writing the lease of %s: %s", name, strerror(-r));
        const char *answer = NULL;
        if (ask(p, name, &answer, e) < 0)
                return -e->code;
        if (strcmp(answer, "granted"))
                return fm_err(e, EPERM, "the source of %s %s its lease", name,
                              strcmp(answer, "refused") ? "answered `committed' to" : "refused");
        return fence_alive(p, name) ? 0 : fence_start(p, name, e);
}

int fm_lease_end(const fm_host_paths *p, const char *name, fm_error *e)
{
        int fd = lease_lock(p->lxcpath, name, false);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return fm_err(e, -fd, "the lease of %s: %s", name, strerror(-fd));
        lease_val v;
        int r = lease_read(p->lxcpath, name, &v);
        if (r == 0 && v.st == LEASE_FENCED)
                r = unfence(p->lxcpath, name, e);
        else
                r = 0;
        if (r == 0) {
                v.st = LEASE_COMMITTED;
                r = lease_write(p->lxcpath, name, &v);
                if (r < 0)
                        fm_err(e, -r, "writing the lease of %s: %s", name, strerror(-r));
        }
        if (r < 0) {
                close(fd);
                return -e->code;
        }
        fence_wait_gone(p, name);
        lease_remove(p->lxcpath, name);
        close(fd);
        return 0;
}

void fm_lease_revoke(const fm_host_paths *p, const char *name)
{
        int fd = lease_lock(p->lxcpath, name, false);
        if (fd < 0)
                return;
        lease_val v;
        if (lease_read(p->lxcpath, name, &v) == 0 && granted(&v)) {
                v.until = 0; /* never thawed from here; fenced if it runs */
                lease_write(p->lxcpath, name, &v);
        }
        close(fd);
}

/* ---- renewal: one asking thread per lease, so that an unreachable
 * source delays no other lease ---- */

static pthread_mutex_t asking_lock = PTHREAD_MUTEX_INITIALIZER;
static char asking[64][FM_NAME_MAX + 1];

typedef struct ask_arg {
        const fm_host_paths *p;
        char name[FM_NAME_MAX + 1];
        bool fenced;
} ask_arg;

static void asking_give(const char *name)
{
        pthread_mutex_lock(&asking_lock);
        for (size_t i = 0; i < FM_ARRAY_SIZE(asking); i++)
                if (!strcmp(asking[i], name))
                        asking[i][0] = '\0';
        pthread_mutex_unlock(&asking_lock);
}

static void *ask_thread(void *arg)
{
        ask_arg *a = arg;
        const char *answer = NULL;
        fm_error e = {0};
        if (ask(a->p, a->name, &answer, &e) < 0 && e.code != ENOENT)
                fprintf(stderr, "fastmigd[%s]: %s\n", a->p->host, e.msg);
        /* a fence that died (killed, or the host's agents restarted) */
        fm_error fe = {0};
        if (!a->fenced && !fence_alive(a->p, a->name) && fm_lease_thawed(a->p->lxcpath, a->name) >= 0 &&
            fence_start(a->p, a->name, &fe) < 0)
                fprintf(stderr, "fastmigd[%s]: %s\n", a->p->host, fe.msg);
        asking_give(a->name);
        free(a);
        return NULL;
}

/* Marks name as being asked for; false when it is already, or no room. */
static bool asking_take(const char *name)
{
        pthread_mutex_lock(&asking_lock);
        int fr = -1;
        bool busy = false;
        for (size_t i = 0; i < FM_ARRAY_SIZE(asking); i++) {
                if (!strcmp(asking[i], name))
                        busy = true;
                else if (!asking[i][0] && fr < 0)
                        fr = (int)i;
        }
        if (!busy && fr >= 0)
                snprintf(asking[fr], sizeof(asking[fr]), "%.*s", FM_NAME_MAX, name);
        pthread_mutex_unlock(&asking_lock);
        return !busy && fr >= 0;
}

void fm_lease_renew_all(const fm_host_paths *p)
{
        if (!fm_lease_enabled(p))
                return;
        DIR *d = opendir(p->lxcpath);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !fm_name_is_valid(de->d_name))
                        continue;
                /* a lease held long (a fence freezing a copy whose task
                 * waits in the kernel) is looked at next time, and keeps
                 * no other lease from its renewal */
                int fd = lease_lock_how(p->lxcpath, de->d_name, false, LOCK_EX | LOCK_NB);
                if (fd < 0)
                        continue;
                lease_val v;
                int r = lease_read(p->lxcpath, de->d_name, &v);
                close(fd);
                /* a fenced copy is asked about too: a commit thaws it */
                if (r < 0 || v.st == LEASE_COMMITTED || !asking_take(de->d_name))
                        continue;
                ask_arg *a = calloc(1, sizeof(*a));
                pthread_t t;
                pthread_attr_t at;
                if (!a || pthread_attr_init(&at) != 0) {
                        free(a);
                        continue;
                }
                a->p = p;
                a->fenced = v.st == LEASE_FENCED;
                snprintf(a->name, sizeof(a->name), "%.*s", FM_NAME_MAX, de->d_name);
                pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
                if (pthread_create(&t, &at, ask_thread, a) != 0) {
                        asking_give(a->name);
                        free(a);
                }
                pthread_attr_destroy(&at);
        }
        closedir(d);
}

int fm_lease_fence_poll(const char *lxcpath, const char *name)
{
        int fd = lease_lock(lxcpath, name, false);
        if (fd < 0)
                return 1; /* ended (finish, abort) */
        lease_val v;
        int done = 0;
        if (lease_read(lxcpath, name, &v) < 0 || !granted(&v)) {
                done = 1;
        } else if (v.st == LEASE_RUNNING && fm_lease_now_ns() >= v.until) {
                /* (a copy not thawed yet is never asked about: LXC's state
                 * request waits while its restore is held) First off the
                 * bridge (one netlink message), then frozen (which may
                 * wait on a task in the kernel). */
                fm_error e = {0};
                fm_ct_port port;
                if (fm_ct_port_get(lxcpath, name, &port, &e) == 0)
                        fm_ct_port_set(&port, false, &e);
                if (fm_ct_freeze(lxcpath, name, &e) < 0) {
                        fprintf(stderr, "fm-fence: %s: freezing it: %s (trying again)\n", name, e.msg);
                } else {
                        fprintf(stderr, "fm-fence: %s: its source has not renewed its lease (%s): frozen and "
                                        "taken off its bridge until the source commits or aborts\n",
                                name, v.until ? "lapsed" : "refused");
                        v.st = LEASE_FENCED;
                        lease_write(lxcpath, name, &v);
                        done = 1;
                }
        }
        close(fd);
        return done;
}

int fm_lease_thaw(const fm_host_paths *p, const char *name, fm_error *e)
{
        if (!fm_lease_enabled(p))
                return fm_ct_unfreeze(p->lxcpath, name, e);
        int fd = lease_lock(p->lxcpath, name, false);
        if (fd < 0)
                return fm_err(e, -fd, "no lease for %s", name);
        lease_val v;
        int r = lease_read(p->lxcpath, name, &v);
        if (r == 0 && v.st != LEASE_COMMITTED && !(granted(&v) && fm_lease_now_ns() < v.until))
                r = fm_err(e, ETIMEDOUT, "%s's lease from its source lapsed before its restore ended: it stays frozen",
                           name);
        else if (r < 0)
                r = fm_err(e, -r, "no lease for %s", name);
        /* from here the fence watches it: recorded before the thaw, so that
         * no thawed copy goes unwatched */
        if (r == 0 && v.st == LEASE_UNTIL) {
                v.st = LEASE_RUNNING;
                if ((r = lease_write(p->lxcpath, name, &v)) < 0)
                        r = fm_err(e, -r, "writing the lease of %s: %s", name, strerror(-r));
        }
        if (r == 0)
                r = fm_ct_unfreeze(p->lxcpath, name, e);
        close(fd);
        return r;
}

int fm_lease_thawed(const char *lxcpath, const char *name)
{
        int fd = lease_lock(lxcpath, name, false);
        if (fd < 0)
                return fd;
        lease_val v;
        int r = lease_read(lxcpath, name, &v);
        close(fd);
        return r < 0 ? r : v.st != LEASE_UNTIL;
}

int fm_lease_fence_hold(const fm_host_paths *p, const char *name)
{
        char path[700];
        lease_path(p->lxcpath, name, FM_FENCE_LOCK, path, sizeof(path));
        return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

void fm_lease_fence_wait(int fd)
{
        if (fd < 0)
                return;
        for (int i = 0; i < 100; i++) {
                struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
                if (fcntl(fd, F_OFD_GETLK, &l) < 0 || l.l_type == F_UNLCK)
                        break;
                usleep(20000);
        }
        close(fd);
}
