#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <string.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "lxc/config.h"
#include "lxc/container.h"
#include "memory/pagerelay.h"
#include "memory/pagestream.h"
#include "proto/proto.h"
#include "migrate.h"
#include "migrate/lease.h"
#include "migrate/recover.h"
#include "util/execwatch.h"
#include "transfer/files.h"

static void images_dir(const fm_host_paths *p, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", p->images, name);
}

/* Markers beside the images directory (which is replaced as images arrive):
 * .NAME.complete (all images verified), .NAME.abort (give up), .NAME.restoring
 * (an early restore is waiting or running), .NAME.lazy (how the lazy-pages
 * daemon of a lazy restore ended, written by fm-criu-wrap's keeper). */
static void marker(const fm_host_paths *p, const char *name, const char *what, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.%s.%s", p->images, name, what);
}

static void touch(const char *path)
{
        fm_write_file(path, "", 0, 0600);
}

/* ---- pre-copy page stores, one per container being migrated here ---- */

#define PRECOPY_MAX 16

typedef struct precopy_slot {
        char name[64];
        uint8_t key[FM_HASH_KEY_SIZE];
        fm_pagestore store;
        bool used;
        bool busy; /* a round or the final images are using it ... */
        int user_fd; /* ... read from this connection (-1: none or ended) */
        bool no_spare; /* a lazy final dump follows: no page files to make room for */
} precopy_slot;

struct fm_precopy_registry {
        pthread_mutex_t lock;
        precopy_slot slot[PRECOPY_MAX];
};

struct fm_precopy_registry *fm_precopy_registry_new(void)
{
        struct fm_precopy_registry *r = calloc(1, sizeof(*r));
        if (r)
                pthread_mutex_init(&r->lock, NULL);
        return r;
}

void fm_precopy_registry_free(struct fm_precopy_registry *r)
{
        if (!r)
                return;
        for (int i = 0; i < PRECOPY_MAX; i++)
                if (r->slot[i].used)
                        fm_pagestore_close(&r->slot[i].store);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

/* Takes the slot of name for exclusive use (NULL when none or busy), for
 * a reader of the connection fd, which slot_drop may end. */
static precopy_slot *slot_take(const fm_host_paths *p, const char *name, int fd)
{
        if (!p->precopy)
                return NULL;
        precopy_slot *found = NULL;
        pthread_mutex_lock(&p->precopy->lock);
        for (int i = 0; i < PRECOPY_MAX; i++) {
                precopy_slot *s = &p->precopy->slot[i];
                if (s->used && !s->busy && !strcmp(s->name, name)) {
                        s->busy = true;
                        s->user_fd = fd;
                        found = s;
                        break;
                }
        }
        pthread_mutex_unlock(&p->precopy->lock);
        return found;
}

static void slot_give(const fm_host_paths *p, precopy_slot *s)
{
        pthread_mutex_lock(&p->precopy->lock);
        s->busy = false;
        s->user_fd = -1;
        pthread_mutex_unlock(&p->precopy->lock);
}

static void store_path(const fm_host_paths *p, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.%.*s.pagestore", p->images, FM_NAME_MAX, name);
}

/* The page images of the final dump will be about as large as the store;
 * the space for them is allocated now, while the service runs, and not while
 * it is frozen (fresh memory costs more than writing into allocated memory:
 * 4x on this project's VMs). */
static void spare_path(const fm_host_paths *p, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/.%s.spare", p->images, name);
}

static void spare_grow(const fm_host_paths *p, const char *name, uint64_t bytes)
{
        char path[700];
        spare_path(p, name, path, sizeof(path));
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size < bytes &&
            fallocate(fd, 0, 0, (off_t)bytes) < 0)
                ftruncate(fd, st.st_size); /* no room: keep what it had */
}

static uint64_t spare_size(const fm_host_paths *p, const char *name)
{
        char path[700];
        struct stat st;
        spare_path(p, name, path, sizeof(path));
        return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Drops the page store of name, once its user has given it back. That
 * user reads from the migration's source, which may be waiting for this
 * very drop (its abort) before it closes that connection: with end_reader
 * the connection is ended, and the user (images, a pre-copy round), whose
 * read fails at once, gives the slot back (the lazy-pages relay ends with
 * its daemon, which an abort kills). (The fd is open while the slot is busy: its user gives
 * the slot back before its connection closes.) */
static void slot_drop(const fm_host_paths *p, const char *name, bool end_reader)
{
        if (!p->precopy)
                return;
        for (int tries = 0; tries < 3000; tries++) {
                bool again = false;
                pthread_mutex_lock(&p->precopy->lock);
                for (int i = 0; i < PRECOPY_MAX; i++) {
                        precopy_slot *s = &p->precopy->slot[i];
                        if (!s->used || strcmp(s->name, name))
                                continue;
                        if (s->busy) {
                                if (end_reader && s->user_fd >= 0) {
                                        shutdown(s->user_fd, SHUT_RDWR);
                                        s->user_fd = -1; /* once */
                                }
                                again = true;
                                continue;
                        }
                        fm_pagestore_close(&s->store);
                        memset(s, 0, sizeof(*s));
                }
                pthread_mutex_unlock(&p->precopy->lock);
                if (!again)
                        break;
                usleep(10000);
        }
        char path[700];
        store_path(p, name, path, sizeof(path));
        unlink(path);
        spare_path(p, name, path, sizeof(path));
        unlink(path);
}

static int hex_key(const char *hex, uint8_t *key, fm_error *e)
{
        if (!hex || strlen(hex) != 2 * FM_HASH_KEY_SIZE)
                return fm_err(e, EINVAL, "pre-copy key must be %d hex digits", 2 * FM_HASH_KEY_SIZE);
        for (int i = 0; i < FM_HASH_KEY_SIZE; i++) {
                unsigned v = 0;
                if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return fm_err(e, EINVAL, "pre-copy key is not hex at digit %d", 2 * i);
                key[i] = (uint8_t)v;
        }
        return 0;
}

int fm_target_precopy_begin(const fm_host_paths *p, const char *name, const char *key_hex, bool spare, fm_error *e)
{
        if (!p->precopy)
                return fm_err(e, EOPNOTSUPP, "%s takes no pre-copy", p->host);
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        uint8_t key[FM_HASH_KEY_SIZE];
        int r = hex_key(key_hex, key, e);
        if (r < 0)
                return r;
        slot_drop(p, name, true); /* a new migration */
        uint64_t room = fm_free_bytes(p->images, 0);
        /* half for the store: the final images need as much again */
        uint64_t max_pages = room / 2 / FM_PAGE_SIZE;
        if (max_pages < 256)
                return fm_err(e, ENOSPC, "no room for a page store in %s", p->images);
        pthread_mutex_lock(&p->precopy->lock);
        precopy_slot *s = NULL;
        for (int i = 0; i < PRECOPY_MAX && !s; i++)
                if (!p->precopy->slot[i].used)
                        s = &p->precopy->slot[i];
        if (s) {
                char path[700];
                store_path(p, name, path, sizeof(path));
                r = fm_pagestore_open(&s->store, path, max_pages, e);
                if (r == 0) {
                        snprintf(s->name, sizeof(s->name), "%s", name);
                        memcpy(s->key, key, sizeof(key));
                        s->used = true;
                        s->no_spare = !spare;
                }
        } else {
                r = fm_err(e, EBUSY, "too many pre-copy migrations under way on %s", p->host);
        }
        pthread_mutex_unlock(&p->precopy->lock);
        return r;
}

int fm_target_precopy_round(const fm_host_paths *p, const char *name, int fd, uint64_t *stored, fm_error *e)
{
        precopy_slot *s = slot_take(p, name, fd);
        if (!s)
                return fm_err(e, ENOENT, "no pre-copy of %s under way on %s", name, p->host);
        _cleanup_close_ int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        fm_pagestream_stats st = {0};
        int r = 0;
        fm_error first = {0};
        /* after an error keep reading to the end of the round, so that the
         * sender gets our reply and not a reset connection */
        for (;;) {
                uint8_t t = 0;
                char *buf = NULL;
                uint32_t len = 0;
                if ((r = fm_frame_recv(fd, &t, &buf, &len, e)) < 0)
                        break;
                if (t == FM_FRAME_END) {
                        free(buf);
                        break;
                }
                if (!first.code) {
                        if (t != FM_FRAME_DATA)
                                fm_err(&first, EPROTO, "unexpected frame type %u in a pre-copy round", t);
                        else
                                fm_pagestream_decode((const uint8_t *)buf, len, s->key, &s->store, devnull, NULL, &st,
                                                     &first);
                }
                free(buf);
        }
        if (first.code) {
                *e = first;
                r = -first.code;
        }
        *stored = s->store.npages;
        if (r >= 0) /* its references are read while frozen: mapped now */
                fm_pagestore_map(&s->store, true);
        bool spare = !s->no_spare;
        slot_give(p, s);
        if (r >= 0 && spare)
                spare_grow(p, name, *stored * FM_PAGE_SIZE);
        return r < 0 ? fm_err_wrap(e, "pre-copy round of %s", name) : 0;
}

/* ---- the lazy final dump's pages (memory/pagerelay.h) ---- */

int fm_page_server_path(const char *images, const char *name, char *dir, size_t dn, char *path, size_t pn)
{
        struct sockaddr_un a;
        snprintf(dir, dn, "%s/.%s.ps", images, name);
        int len = snprintf(path, pn, "%s/s", dir);
        return len > 0 && (size_t)len < pn && (size_t)len < sizeof(a.sun_path) ? 0 : -ENAMETOOLONG;
}

bool fm_page_server_fits(const char *images)
{
        char dir[700], path[800], longest[FM_NAME_MAX + 1];
        memset(longest, 'n', FM_NAME_MAX);
        longest[FM_NAME_MAX] = '\0';
        return fm_page_server_path(images, longest, dir, sizeof(dir), path, sizeof(path)) == 0;
}

int fm_page_server_listen(const char *images, const char *name, char *dir, size_t dn, fm_error *e)
{
        char path[800];
        if (fm_page_server_path(images, name, dir, dn, path, sizeof(path)) < 0)
                return fm_err(e, ENAMETOOLONG, "%s is too long for a socket", path);
        fm_rm_rf(dir);
        if (mkdir(dir, 0700) < 0)
                return fm_err(e, errno, "creating %s: %s", dir, strerror(errno));
        return fm_unix_listen(path, e);
}

bool fm_target_can_lazy_dump(const fm_host_paths *p)
{
        return p->lazy_restore && p->precopy && fm_page_server_fits(p->images);
}

int fm_target_page_server_open(const fm_host_paths *p, const char *name, fm_error *e)
{
        char dir[700];
        if (!fm_target_can_lazy_dump(p))
                return fm_err(e, EOPNOTSUPP, "%s cannot take a lazy final dump", p->host);
        return fm_page_server_listen(p->images, name, dir, sizeof(dir), e);
}

/* Waits (as long as an early restore waits for its images) for the daemon
 * to connect, then serves it; ends early when the source goes away or the
 * migration is aborted. */
#define FM_PAGE_SERVER_WAIT_MS (600 * 1000)
int fm_target_page_server_run(const fm_host_paths *p, const char *name, int lfd, int peer_fd, fm_error *e)
{
        char dir[700], path[800], abort_m[700];
        fm_page_server_path(p->images, name, dir, sizeof(dir), path, sizeof(path));
        marker(p, name, "abort", abort_m, sizeof(abort_m));
        int dfd = -1, r = 0;
        for (double t0 = fm_now_ms(); dfd < 0 && r == 0;) {
                struct pollfd pf[2] = {{.fd = lfd, .events = POLLIN}, {.fd = peer_fd, .events = POLLIN}};
                int n = poll(pf, 2, 100);
                if (n < 0 && errno != EINTR)
                        r = fm_err(e, errno, "waiting for the lazy-pages daemon: %s", strerror(errno));
                else if (n > 0 && pf[1].revents) /* it sends nothing before the daemon asks */
                        r = fm_err(e, ECANCELED, "the source of %s gave up its lazy pages", name);
                else if (fm_path_exists(abort_m))
                        r = fm_err(e, ECANCELED, "the migration of %s was aborted", name);
                else if (fm_now_ms() - t0 > FM_PAGE_SERVER_WAIT_MS)
                        r = fm_err(e, ETIMEDOUT, "no lazy-pages daemon for %s", name);
                else if (n > 0 && pf[0].revents && (dfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 &&
                         errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                        r = fm_err(e, errno, "accepting the lazy-pages daemon: %s", strerror(errno));
        }
        close(lfd);
        fm_rm_rf(dir);
        if (r < 0)
                return r;
        precopy_slot *s = slot_take(p, name, peer_fd);
        if (!s) {
                close(dfd);
                return fm_err(e, ENOENT, "no page store of %s on %s", name, p->host);
        }
        fm_pagerelay_stats st = {0};
        r = fm_pagerelay_target(dfd, peer_fd, s->key, &s->store, &st, e);
        if (r < 0) {
                /* the daemon fails once its connection closes, and settle
                 * quotes this: written first (and before the slot goes
                 * back, after which an abort removes the images) */
                char img[600], path[700];
                images_dir(p, name, img, sizeof(img));
                snprintf(path, sizeof(path), "%s/pagerelay.err", img);
                fm_write_file(path, e->msg, strlen(e->msg), 0600);
        }
        slot_give(p, s);
        close(dfd);
        if (r < 0) {
                /* without its daemon the container would read the pages it
                 * lacks as zeros: it stays frozen until the source's abort
                 * (or an operator) removes it */
                fm_error ignore = {0};
                fm_ct_freeze(p->lxcpath, name, &ignore);
        }
        return r;
}

/* end_reader: the migration is over, a transfer still reading is ended */
static void drop_images(const fm_host_paths *p, const char *name, bool end_reader)
{
        slot_drop(p, name, end_reader);
        char path[700];
        static const char *const kinds[] = {"complete", "abort", "lazy"};
        for (size_t i = 0; i < FM_ARRAY_SIZE(kinds); i++) {
                marker(p, name, kinds[i], path, sizeof(path));
                unlink(path);
        }
        images_dir(p, name, path, sizeof(path));
        fm_rm_rf(path);
}

const char *fm_strategy_name(enum fm_strategy s)
{
        static const char *const names[] = {"auto", "memory", "partial", "full", "shared"};
        return (unsigned)s < FM_ARRAY_SIZE(names) ? names[s] : "?";
}

int fm_strategy_parse(const char *s, enum fm_strategy *out)
{
        for (enum fm_strategy k = FM_STRATEGY_AUTO; k <= FM_STRATEGY_SHARED; k++)
                if (s && !strcmp(s, fm_strategy_name(k))) {
                        *out = k;
                        return 0;
                }
        return -EINVAL;
}

/* Check 0: the rootfs is on a volume this host mounts too, and the
 * storage answers this host fast enough for the service. */
static int decide_shared(const fm_host_paths *p, const fm_prepare_req *q, fm_prepare_out *out, fm_error *e)
{
        out->decided_by = 0;
        out->strategy = FM_STRATEGY_SHARED;
        if (q->want != FM_STRATEGY_AUTO && q->want != FM_STRATEGY_SHARED)
                return fm_err(e, EINVAL, "%s-mig of a rootfs on the shared volume: the source must move the tree",
                              fm_strategy_name(q->want));
        /* from here a refusal under auto leaves the local-disk checks open */
        out->can_move = q->want == FM_STRATEGY_AUTO;
        if (!p->shared.path[0])
                return fm_err(e, ENOENT, "shared: %s mounts no shared volume, and this container's rootfs is on one",
                              p->host);
        if (strcmp(p->shared.id, q->shared_volume))
                return fm_err(e, ENOENT, "shared: %s mounts another volume (%.8s) at %s than the source (%.8s)",
                              p->host, p->shared.id, p->shared.path, q->shared_volume);
        out->have_latency = true;
        int r = fm_shared_latency(p->shared.path, FM_SHARED_PROBE_OPS, FM_SHARED_PROBE_DEADLINE_MS, &out->latency, e);
        if (r < 0)
                return fm_err_wrap(e, "shared: latency test on %s", p->host);
        out->latency_passed = out->latency.p99_ms <= q->latency_tolerance_ms;
        if (!out->latency_passed)
                return fm_err(e, ETIMEDOUT, "shared: latency test on %s failed: p50 %.2f ms, p99 %.2f ms, above the "
                              "service's tolerance of %g ms", p->host, out->latency.p50_ms, out->latency.p99_ms,
                              q->latency_tolerance_ms);
        out->can_move = false;
        return 0;
}

/* The paper's checks 1-3, on what this host holds. */
static int decide(const fm_host_paths *p, const fm_prepare_req *q, fm_prepare_out *out, uint64_t *need, fm_error *e)
{
        if (q->shared_volume && !q->move_tree)
                return decide_shared(p, q, out, e);
        if (q->want == FM_STRATEGY_SHARED)
                return fm_err(e, EINVAL, "shared: this container's rootfs is not on a shared volume (start it with "
                              "--shared)");
        bool has_app = q->clone && fm_image_get(p->store, q->clone->app, NULL) == 0;
        bool has_base = q->clone && fm_image_get(p->store, q->clone->base, NULL) == 0;
        out->decided_by = has_app ? 1 : has_base ? 2 : 3;
        if (q->want == FM_STRATEGY_AUTO)
                out->strategy = has_app ? FM_STRATEGY_MEMORY : has_base ? FM_STRATEGY_PARTIAL : FM_STRATEGY_FULL;
        else
                out->strategy = q->want;
        if (!q->clone && out->strategy != FM_STRATEGY_FULL)
                return fm_err(e, EINVAL, "%s-mig needs a container that is a clone of an image; this one has a plain "
                              "rootfs (full-mig only)", fm_strategy_name(out->strategy));
        if (out->strategy == FM_STRATEGY_MEMORY && !has_app)
                return fm_err(e, ENOENT, "memory-mig: %s lacks app image %s (%.12s)%s", p->host, q->clone->app_name,
                              q->clone->app, has_base ? "; its base is here: partial-mig" : "");
        if (out->strategy == FM_STRATEGY_PARTIAL && !has_base)
                return fm_err(e, ENOENT, "partial-mig: %s lacks base image %s (%.12s)", p->host, q->clone->base_name,
                              q->clone->base);
        *need = q->own_bytes;
        if (out->strategy == FM_STRATEGY_FULL)
                *need += q->base_bytes + q->app_bytes;
        if (out->strategy == FM_STRATEGY_PARTIAL)
                *need += q->app_bytes;
        return 0;
}

/* A clone's config names this host's store in its overlay hook. */
static char *clone_config(const fm_host_paths *p, const char *name, const char *config, const fm_clone *c)
{
        _cleanup_free_ char *hook = fm_clone_hook(p->store, p->lxcpath, name, c);
        size_t len = strlen(config);
        char *out = hook ? malloc(len + strlen(hook) + 2) : NULL;
        if (!out)
                return NULL;
        char *w = out;
        for (const char *l = config; *l;) {
                const char *nl = strchr(l, '\n');
                size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
                if (strncmp(l, "lxc.hook.version", 16) && strncmp(l, "lxc.hook.pre-mount", 18)) {
                        memcpy(w, l, n);
                        w += n;
                        if (!nl)
                                *w++ = '\n';
                }
                l += n;
        }
        strcpy(w, hook);
        return out;
}

/* A container being brought here by a migration carries, in its LXC
 * directory and until finish, the name of the peer that prepared it. */
static void incoming_path(const fm_host_paths *p, const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%.*s/" FM_INCOMING_FILE, p->lxcpath, FM_NAME_MAX, name);
}

int fm_target_check_owner(const fm_host_paths *p, const char *name, const char *peer, fm_error *e)
{
        char path[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        incoming_path(p, name, path, sizeof(path));
        _cleanup_free_ char *who = NULL;
        if (fm_read_file(path, &who, 256) < 0)
                return fm_err(e, EPERM, "%s on %s is not a container a migration is bringing", name, p->host);
        if (strcmp(who, peer))
                return fm_err(e, EPERM, "%s on %s is being brought by %s, not by %s", name, p->host, who, peer);
        utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW); /* the owner is alive */
        return 0;
}

/* Disk room promised to migrations prepared here and not yet finished or
 * aborted: a free-space check alone would let two concurrent migrations
 * both pass and then both fail after their freeze. Given back at finish,
 * abort or expiry (fm_target_expire), and in any case after an hour. One
 * agent serves one host: the table is the process's. */
static pthread_mutex_t room_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        char name[FM_NAME_MAX + 1];
        uint64_t bytes;
        time_t at;
} room_held[64];

/* What is promised to others than name; name's own promise, if any, is
 * dropped. Under room_lock. */
static uint64_t room_promised(const char *name)
{
        uint64_t sum = 0;
        time_t now = time(NULL);
        for (size_t i = 0; i < FM_ARRAY_SIZE(room_held); i++) {
                if (!room_held[i].name[0])
                        continue;
                if (!strcmp(room_held[i].name, name) || difftime(now, room_held[i].at) > FM_INCOMING_STALE_S * 6)
                        room_held[i].name[0] = '\0';
                else
                        sum += room_held[i].bytes;
        }
        return sum;
}

/* Promises need to name if need + 64 MB fits beside the others' promises. */
static int room_take(const fm_host_paths *p, const char *name, const char *strategy, uint64_t room, uint64_t need,
                     fm_error *e)
{
        pthread_mutex_lock(&room_lock);
        uint64_t others = room_promised(name);
        int r = 0;
        if (need + (64ull << 20) + others > room) {
                r = fm_err(e, ENOSPC,
                           "%s-mig of %s: %s has %llu MB free, %llu MB of it promised to other migrations under way, "
                           "%llu MB would travel (and 64 MB to spare)",
                           strategy, name, p->host, (unsigned long long)(room / 1000000),
                           (unsigned long long)(others / 1000000), (unsigned long long)(need / 1000000));
        } else {
                for (size_t i = 0; i < FM_ARRAY_SIZE(room_held); i++)
                        if (!room_held[i].name[0]) {
                                snprintf(room_held[i].name, sizeof(room_held[i].name), "%s", name);
                                room_held[i].bytes = need;
                                room_held[i].at = time(NULL);
                                break;
                        }
        }
        pthread_mutex_unlock(&room_lock);
        return r;
}

static void room_give_back(const char *name)
{
        pthread_mutex_lock(&room_lock);
        room_promised(name);
        pthread_mutex_unlock(&room_lock);
}

int fm_target_prepare(const fm_host_paths *p, const char *name, const fm_prepare_req *q, fm_prepare_out *out,
                      fm_error *e)
{
        char dir[600], path[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        snprintf(dir, sizeof(dir), "%s/%s", p->lxcpath, name);
        fm_ct_info i;
        if (fm_ct_info_get(p->lxcpath, name, &i, e) < 0)
                return -e->code;
        if (i.running)
                return fm_err(e, EEXIST, "a container named %s already runs on %s", name, p->host);
        /* a stale copy from an earlier failed run is replaced; any other
         * container of that name is not this migration's to overwrite */
        incoming_path(p, name, path, sizeof(path));
        if (fm_path_exists(dir) && !fm_path_exists(path))
                return fm_err(e, EEXIST, "a container named %s exists on %s (not from an unfinished migration)", name,
                              p->host);
        /* another host's unfinished migration is its own until it has been
         * silent for FM_INCOMING_STALE_S (fastmigd --expiry) */
        struct stat mst;
        if (fm_path_exists(dir) && q->peer && fm_target_check_owner(p, name, q->peer, NULL) < 0 &&
            lstat(path, &mst) == 0 && difftime(time(NULL), mst.st_mtime) < (p->stale_s ? p->stale_s : FM_INCOMING_STALE_S))
                return fm_err(e, EBUSY, "%s on %s is being brought by another host's migration", name, p->host);
        if (q->net && !p->criu_path_env[0])
                return fm_err(e, EOPNOTSUPP, "%s keeps its network namespace outside CRIU's images, which needs "
                                             "fm-criu-wrap on %s", name, p->host);
        uint64_t need = 0;
        int r = decide(p, q, out, &need, e);
        if (r < 0)
                return r;
        uint64_t room = p->test_hooks && q->inject && !strcmp(q->inject, "room") ? 0 : fm_free_bytes(p->lxcpath, 0);
        if ((r = room_take(p, name, fm_strategy_name(out->strategy), room, need, e)) < 0)
                return r;
        /* The peer's config is rebuilt, never stored as sent (src/lxc/config.h).
         * Its rootfs is this host's: the container's directory, or the same
         * tree where this host mounts the shared volume. */
        bool on_volume = q->shared_volume && !q->move_tree;
        _cleanup_free_ char *rootfs = NULL;
        if (on_volume) {
                _cleanup_free_ char *theirs = fm_ct_config_value(q->config, "lxc.rootfs.path");
                size_t sl = strlen(q->src_shared);
                const char *t = theirs && !strncmp(theirs, "dir:", 4) ? theirs + 4 : theirs;
                if (!t || q->src_shared[0] != '/' || strncmp(t, q->src_shared, sl) || t[sl] != '/' ||
                    !fm_path_is_safe_relative(t + sl + 1))
                        return fm_err(e, EPERM, "the rootfs `%s' is not a path under the shared volume's mount %s",
                                      theirs ? theirs : "(none)", q->src_shared);
                rootfs = fm_strdupf("dir:%s/%s", p->shared.path, t + sl + 1);
        } else {
                rootfs = fm_strdupf("dir:%s/rootfs", dir);
        }
        char nspath[128];
        fm_ctnet_path(name, nspath, sizeof(nspath));
        fm_ct_config_policy pol = {.name = name, .rootfs = rootfs, .bridge = p->bridge[0] ? p->bridge : NULL,
                                   .clone = q->clone != NULL, .bind_allow = p->bind_allow,
                                   .netns = q->net ? nspath : NULL};
        _cleanup_free_ char *moved = NULL;
        if (!rootfs)
                return fm_err(e, ENOMEM, "out of memory");
        if ((r = fm_ct_config_rebuild(q->config, &pol, &moved, e)) < 0)
                return fm_err_wrap(e, "the config of %s", name);
        _cleanup_free_ char *conf = q->clone ? clone_config(p, name, moved, q->clone) : NULL;
        if (q->clone && !conf)
                return fm_err(e, ENOMEM, "out of memory");
        if ((r = fm_mkdir_p(dir, 0755)) < 0)
                return fm_err(e, -r, "creating %s: %s", dir, strerror(-r));
        incoming_path(p, name, path, sizeof(path));
        if ((r = fm_write_file(path, q->peer, strlen(q->peer), 0600)) < 0)
                return fm_err(e, -r, "writing %s: %s", path, strerror(-r));
        if (on_volume) {
                /* the rootfs is on the volume: the directory is all */
        } else if (q->clone) {
                if ((r = fm_clone_prepare_dirs(p->lxcpath, name, e)) < 0 || (r = fm_clone_write(p->lxcpath, name, q->clone, e)) < 0)
                        return r;
        } else {
                snprintf(path, sizeof(path), "%s/rootfs", dir);
                if ((r = fm_mkdir_p(path, 0755)) < 0)
                        return fm_err(e, -r, "creating %s: %s", path, strerror(-r));
        }
        snprintf(path, sizeof(path), "%s/config", dir);
        const char *text = conf ? conf : moved;
        if ((r = fm_write_file(path, text, strlen(text), 0644)) < 0)
                return fm_err(e, -r, "writing %s: %s", path, strerror(-r));
        drop_images(p, name, true); /* a new migration: no stale markers */
        if (q->net) {
                /* its namespace, made now while the service runs at the
                 * source: off the bridge until the restore is done */
                fm_ctnet net = *q->net;
                if (p->bridge[0])
                        snprintf(net.bridge, sizeof(net.bridge), "%s", p->bridge);
                if (fm_ctnet_write(p->lxcpath, name, &net, e) < 0 || fm_ctnet_create(name, &net, false, e) < 0)
                        return -e->code;
        }
        return 0;
}

int fm_target_receive_images(const fm_host_paths *p, const char *name, const char *inject, int fd, uint64_t *bytes,
                             fm_error *e)
{
        char img[600];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        fm_rm_rf(img);
        uint64_t room = fm_free_bytes(p->images, 1ull << 40);
        precopy_slot *s = slot_take(p, name, fd);
        if (s && p->test_hooks && inject && !strcmp(inject, "lose_pages")) {
                /* test hook: the target forgets every page of the rounds */
                char path[700];
                store_path(p, name, path, sizeof(path));
                uint64_t max = s->store.max_pages;
                fm_pagestore_close(&s->store);
                fm_pagestore_open(&s->store, path, max, NULL);
        }
        char spare[700];
        spare_path(p, name, spare, sizeof(spare));
        room += spare_size(p, name); /* it becomes part of the images */
        fm_page_decoder dec = {.key = s ? s->key : NULL, .store = s ? &s->store : NULL,
                               .spare = s && fm_path_exists(spare) ? spare : NULL};
        int r = fm_files_recv(fd, img, room, s ? &dec : NULL, bytes, e);
        if (s)
                slot_give(p, s);
        if (r < 0) {
                /* a well-formed stream whose content we refuse (checksum,
                 * unknown page, no room) is read to its end, so that the
                 * sender, still sending while its dump runs, gets our reply
                 * and not a reset connection; a malformed one is not */
                fm_error ignore = {0};
                bool drain = e->code != EPROTO && e->code != EINVAL && e->code != EMSGSIZE;
                for (int i = 0; drain && i < 1 << 24; i++) {
                        uint8_t t = 0;
                        char *buf = NULL;
                        uint32_t len = 0;
                        if (fm_frame_recv(fd, &t, &buf, &len, &ignore) < 0)
                                break;
                        free(buf);
                        if (t == FM_FRAME_END)
                                break;
                }
                fm_rm_rf(img);
                return fm_err_wrap(e, "receiving images of %s", name);
        }
        char done[700], now[32];
        marker(p, name, "complete", done, sizeof(done));
        /* releases an early restore waiting in fm-criu-wrap; when (for the report) */
        int len = snprintf(now, sizeof(now), "%llu\n", (unsigned long long)fm_now_ns());
        fm_write_file(done, now, (size_t)len, 0600);
        return 0;
}

/* The lazy-pages daemon serving the images in img (test hook only). */
static pid_t find_lazy_daemon(const char *img)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        pid_t found = -1;
        while (d && found < 0 && (de = readdir(d))) {
                char path[300], cmd[4096];
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t n = fd < 0 ? -1 : read(fd, cmd, sizeof(cmd) - 1);
                if (n <= 0)
                        continue;
                bool lazy = false, ours = false;
                for (char *a = cmd; a < cmd + n; a += strlen(a) + 1) {
                        cmd[n] = 0;
                        lazy |= !strcmp(a, "lazy-pages");
                        ours |= !strcmp(a, img);
                }
                if (lazy && ours)
                        found = (pid_t)atoi(de->d_name);
        }
        if (d)
                closedir(d);
        return found;
}

/* Test hook, between the restore and the thaw: the daemon stops serving
 * before it has filled the memory (the test kills it later). */
static void stop_lazy_daemon(void *img)
{
        pid_t d = find_lazy_daemon(img);
        if (d > 0)
                kill(d, SIGSTOP);
        fprintf(stderr, "fastmigd: test hook: lazy-pages daemon %d stopped\n", (int)d);
}

typedef struct thaw_ctx {
        const fm_host_paths *p;
        const char *name;
        char *img;
} thaw_ctx;

static void stop_lazy_daemon_hook(void *data) { stop_lazy_daemon(((thaw_ctx *)data)->img); }

static int lease_thaw(void *data, fm_error *e)
{
        thaw_ctx *t = data;
        return fm_lease_thaw(t->p, t->name, e);
}

int fm_target_restore(const fm_host_paths *p, const char *name, const char *inject, bool early, bool lazy,
                      bool lazy_dump, fm_criu_stats *stats, json_object **programs, fm_error *e)
{
        uint64_t t_start = fm_now_ns();
        if (programs)
                *programs = NULL;
        char img[600], done[700], abort_m[700], busy[700], lazy_m[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        marker(p, name, "complete", done, sizeof(done));
        marker(p, name, "abort", abort_m, sizeof(abort_m));
        marker(p, name, "restoring", busy, sizeof(busy));
        if (p->test_hooks && inject && !strcmp(inject, "restore"))
                return fm_err(e, EIO, "restore failed on %s (injected by the test hook)", p->host);
        if (early && !p->criu_path_env[0])
                return fm_err(e, EOPNOTSUPP, "early restore needs fm-criu-wrap on %s", p->host);
        if (lazy && !p->lazy_restore)
                return fm_err(e, EOPNOTSUPP, "%s cannot restore lazily (no userfaultfd or no fm-criu-wrap)", p->host);
        /* a lazy final dump: the daemon asks this agent for the pages */
        char ps[700], ps_env[760] = "";
        char ps_dir[700];
        if (lazy_dump && (!lazy || fm_page_server_path(p->images, name, ps_dir, sizeof(ps_dir), ps, sizeof(ps)) < 0))
                return fm_err(e, EINVAL, "a lazy final dump needs a lazy restore");
        if (lazy_dump)
                snprintf(ps_env, sizeof(ps_env), "FASTMIG_PAGE_SERVER=%s", ps);
        marker(p, name, "lazy", lazy_m, sizeof(lazy_m));
        unlink(lazy_m);
        if (!early && !fm_path_exists(img))
                return fm_err(e, ENOENT, "no images of %s on %s", name, p->host);
        /* a clone: fm-criu-wrap mounts its overlay for CRIU */
        fm_clone cl;
        char opts[1500], ovl_env[1600] = "", images_env[1400] = "";
        int cr = fm_clone_read(p->lxcpath, name, &cl, e);
        if (cr < 0 && cr != -ENOENT)
                return cr;
        if (cr == 0) {
                if (!p->criu_path_env[0])
                        return fm_err(e, EOPNOTSUPP, "restoring a clone needs fm-criu-wrap on %s", p->host);
                if (fm_clone_overlay_opts(p->store, p->lxcpath, name, &cl, early, opts, sizeof(opts), e) < 0)
                        return -e->code;
                snprintf(ovl_env, sizeof(ovl_env), "FASTMIG_OVERLAY=%s", opts);
                /* a full- or partial-mig's images may still be travelling
                 * (their tail overlaps the dump): fm-criu-wrap waits for
                 * them too, and mounts them in its own mount namespace */
                char app[600], base[600];
                fm_image_dir(p->store, cl.app, app, sizeof(app));
                fm_image_dir(p->store, cl.base, base, sizeof(base));
                snprintf(images_env, sizeof(images_env), "FASTMIG_IMAGES=%s:%s", app, base);
        }
        char wait_done[760], wait_abort[760], lazy_env[760];
        snprintf(wait_done, sizeof(wait_done), "FASTMIG_WAIT_COMPLETE=%s", done);
        snprintf(wait_abort, sizeof(wait_abort), "FASTMIG_WAIT_ABORT=%s", abort_m);
        snprintf(lazy_env, sizeof(lazy_env), "FASTMIG_LAZY_STATUS=%s", lazy ? lazy_m : "");
        const char *env[10] = {p->criu_path_env, p->criu_real_env, wait_abort, lazy_env};
        int n = 4;
        if (ovl_env[0])
                env[n++] = ovl_env;
        if (ps_env[0])
                env[n++] = ps_env;
        if (early)
                env[n++] = wait_done;
        if (early && images_env[0])
                env[n++] = images_env;

        if (early) {
                /* LXC starts up while the images are still on their way;
                 * fm-criu-wrap holds `criu restore' until they are complete.
                 * "restoring" is marked before "abort" is looked at, and abort
                 * does the reverse: one of the two always sees the other. */
                touch(busy);
                char conf[700];
                snprintf(conf, sizeof(conf), "%s/%s/config", p->lxcpath, name);
                if (fm_path_exists(abort_m) || !fm_path_exists(conf)) {
                        unlink(busy);
                        return fm_err(e, ECANCELED, "the migration of %s was aborted", name);
                }
                fm_mkdir_p(img, 0700);
        }
        bool stop = p->test_hooks && lazy && inject && !strcmp(inject, "settle");
        /* the copy runs only on its source's lease, and a fence that
         * outlives this agent freezes it once the lease lapses */
        int r = fm_lease_begin(p, name, e);
        if (r < 0) {
                if (early)
                        unlink(busy);
                return r;
        }
        thaw_ctx tc = {.p = p, .name = name, .img = stop ? img : NULL};
        fm_ct_thaw_hooks th = {.before_thaw = stop ? stop_lazy_daemon_hook : NULL, .thaw = lease_thaw, .data = &tc};
        r = fm_ct_restore(p->lxcpath, name, img, p->criu_restore_conf, p->criu_path_env[0] ? env : NULL, &th, e);
        uint64_t t_end = fm_now_ns();
        /* the window: from the images being complete (the time the
         * receiver wrote into the marker) or this call, to the thaw */
        _cleanup_free_ char *at = NULL;
        unsigned long long t_complete = 0;
        if (early && fm_read_file(done, &at, 64) > 0 && sscanf(at, "%llu", &t_complete) == 1 && t_complete > t_start)
                t_start = t_complete;
        if (early)
                unlink(busy);
        if (r == 0 && programs)
                *programs = fm_execwatch_between(p->execwatch, t_start, t_end, NULL);
        if (r == 0 && stats) {
                fm_error ignore = {0};
                fm_criu_stats_read(img, "restore", stats, &ignore);
        }
        return r;
}

int fm_target_settle(const fm_host_paths *p, const char *name, const char *inject, fm_error *e)
{
        char img[600], lazy_m[700];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        images_dir(p, name, img, sizeof(img));
        marker(p, name, "lazy", lazy_m, sizeof(lazy_m));
        if (p->test_hooks && inject && !strcmp(inject, "settle")) {
                pid_t d = find_lazy_daemon(img);
                if (d > 0)
                        kill(d, SIGKILL);
        }
        /* the daemon copies at memory speed; a minute per 10 GiB is generous */
        _cleanup_free_ char *st = NULL;
        if (fm_wait_path(lazy_m, 600000) == 0)
                fm_read_file(lazy_m, &st, 256); /* written whole, by a rename */
        int pid = 0, code = -1;
        if (!st || sscanf(st, "%d %d", &pid, &code) != 2)
                return fm_err(e, ETIMEDOUT, "the lazy restore of %s did not end", name);
        if (code != 0) {
                /* its log goes with the images: quote its last line */
                char logp[700];
                _cleanup_free_ char *log = NULL;
                snprintf(logp, sizeof(logp), "%s/lazy-pages.log", img);
                const char *last = "";
                if (fm_read_file(logp, &log, 1 << 20) > 0) {
                        size_t n = strlen(log);
                        while (n && log[n - 1] == '\n')
                                log[--n] = 0;
                        last = strrchr(log, '\n') ? strrchr(log, '\n') + 1 : log;
                        /* its last error, rather than a warning after it */
                        for (char *l = log; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                                if (!strncmp(l, "Error", 5)) {
                                        last = l;
                                        if (strchr(l, '\n'))
                                                *strchr(l, '\n') = 0;
                                        break; /* the first error says why */
                                }
                }
                char errp[700];
                _cleanup_free_ char *relay = NULL;
                snprintf(errp, sizeof(errp), "%s/pagerelay.err", img);
                fm_read_file(errp, &relay, 1024);
                return fm_err(e, EIO, "the lazy-pages daemon of %s %s %d before all memory was in place%s%s%s%s", name,
                              code < 0 ? "was killed by signal" : "failed with status", code < 0 ? -code : code,
                              relay ? "; its page server: " : "", relay ? relay : "",
                              *last ? "; its log ends: " : "", last);
        }
        return 0;
}

int fm_target_abort(const fm_host_paths *p, const char *name, const char *peer, fm_error *e)
{
        char img[600], abort_m[700], busy[700], dir[600];
        if (!fm_name_is_valid(name))
                return fm_err(e, EINVAL, "bad container name `%s'", name);
        snprintf(dir, sizeof(dir), "%s/%s", p->lxcpath, name);
        if (fm_path_exists(dir) && fm_target_check_owner(p, name, peer, e) < 0)
                return fm_err_wrap(e, "abort refused");
        images_dir(p, name, img, sizeof(img));
        marker(p, name, "abort", abort_m, sizeof(abort_m));
        marker(p, name, "restoring", busy, sizeof(busy));
        /* release an early restore that waits for images (or keep a late one
         * from starting), and let it end before the container goes */
        touch(abort_m);
        for (int i = 0; i < 3000 && fm_path_exists(busy); i++)
                usleep(10000);
        /* a restore whose agent died (its marker swept at the restart) may
         * still run on the images: it ends first, killed if need be (a
         * half-restored copy is of no use) */
        if (fm_recover_reap(img, 5000) > 0)
                fm_recover_kill(img);
        /* lapsed: nothing thaws it now; the fence stays until it is gone
         * (lxc-stop kills a frozen container too) */
        fm_lease_revoke(p, name);
        int fence = fm_lease_fence_hold(p, name);
        int r = fm_ct_destroy(p->lxcpath, name, e);
        if (r == 0)
                fm_lease_fence_wait(fence);
        else if (fence >= 0)
                close(fence);
        drop_images(p, name, true); /* a restore asked for after this finds no container */
        room_give_back(name);
        return r;
}

int fm_target_finish(const fm_host_paths *p, const char *name, const char *peer, fm_error *e)
{
        char path[700];
        if (fm_target_check_owner(p, name, peer, e) < 0)
                return -e->code;
        /* the copy runs for good (a fenced one thawed): the source committed */
        if (fm_lease_end(p, name, e) < 0)
                return -e->code;
        drop_images(p, name, false); /* settled: nothing reads any more */
        room_give_back(name);
        incoming_path(p, name, path, sizeof(path));
        unlink(path);
        return 0;
}

/* One container with an incoming marker: what lapses once its owner has
 * been silent stale_s. 1 when something went. */
static int expire_one(const fm_host_paths *p, const char *name, int stale_s,
                      bool (*in_use)(void *data, const char *name), void *data)
{
        char path[700], img[600];
        struct stat st;
        incoming_path(p, name, path, sizeof(path));
        if (lstat(path, &st) < 0 || difftime(time(NULL), st.st_mtime) < stale_s || (in_use && in_use(data, name)))
                return 0;
        images_dir(p, name, img, sizeof(img));
        fm_error e = {0};
        char restoring[700];
        marker(p, name, "restoring", restoring, sizeof(restoring));
        /* LXC's state request waits as long as a held early restore: the
         * lease and the marker say whether it ever ran, LXC only after */
        int thawed = fm_lease_thawed(p->lxcpath, name);
        bool never_ran = thawed == 0 || (thawed < 0 && fm_path_exists(restoring));
        fm_ct_info info;
        if (!never_ran && thawed < 0) {
                if (fm_ct_info_get(p->lxcpath, name, &info, &e) < 0)
                        return 0;
                never_ran = !info.running;
        }
        if (never_ran) {
                /* prepared (maybe an early restore held: LXC calls that
                 * running), never run: it goes as an abort would take it */
                char abort_m[700];
                marker(p, name, "abort", abort_m, sizeof(abort_m));
                touch(abort_m);
                if (fm_recover_reap(img, 5000) > 0)
                        fm_recover_kill(img);
                fm_lease_revoke(p, name);
                int fence = fm_lease_fence_hold(p, name);
                if (fm_ct_destroy(p->lxcpath, name, &e) < 0) {
                        if (fence >= 0)
                                close(fence);
                        return 0;
                }
                fm_lease_fence_wait(fence);
                drop_images(p, name, true);
                room_give_back(name);
                fprintf(stderr, "fastmigd[%s]: %s: prepared by a migration silent for %d s or more: removed\n", p->host,
                        name, stale_s);
                return 1;
        }
        /* restored and running: it may be the service (the source may have
         * committed); only what the restore needed goes, unless a lazy-pages
         * daemon still fills its memory from there. The marker stays for
         * the source's finish or abort. */
        if (fm_recover_reap(img, 0) > 0)
                return 0;
        char store[700], spare[700];
        store_path(p, name, store, sizeof(store));
        spare_path(p, name, spare, sizeof(spare));
        if (!fm_path_exists(img) && !fm_path_exists(store) && !fm_path_exists(spare))
                return 0;
        drop_images(p, name, true);
        unlink(spare);
        room_give_back(name);
        fprintf(stderr, "fastmigd[%s]: %s: its migration silent for %d s or more: its images and page store dropped, "
                        "the container kept (docs/RECOVERY.md)\n", p->host, name, stale_s);
        return 1;
}

int fm_target_expire(const fm_host_paths *p, int stale_s, bool (*in_use)(void *data, const char *name), void *data)
{
        DIR *d = opendir(p->lxcpath);
        if (!d)
                return 0;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                char name[FM_NAME_MAX + 1];
                if (de->d_name[0] == '.' || !fm_name_is_valid(de->d_name))
                        continue;
                snprintf(name, sizeof(name), "%.*s", FM_NAME_MAX, de->d_name);
                n += expire_one(p, name, stale_s, in_use, data);
        }
        closedir(d);
        /* page stores of migrations whose container is not (or no longer)
         * being brought here */
        if (p->precopy) {
                char names[PRECOPY_MAX][64];
                int k = 0;
                pthread_mutex_lock(&p->precopy->lock);
                for (int i = 0; i < PRECOPY_MAX; i++)
                        if (p->precopy->slot[i].used && !p->precopy->slot[i].busy)
                                snprintf(names[k++], sizeof(names[0]), "%s", p->precopy->slot[i].name);
                pthread_mutex_unlock(&p->precopy->lock);
                for (int i = 0; i < k; i++) {
                        char path[700];
                        struct stat st;
                        incoming_path(p, names[i], path, sizeof(path));
                        if ((lstat(path, &st) == 0 && difftime(time(NULL), st.st_mtime) < stale_s) ||
                            (in_use && in_use(data, names[i])))
                                continue;
                        slot_drop(p, names[i], true);
                        char store[700];
                        store_path(p, names[i], store, sizeof(store));
                        unlink(store);
                        n++;
                }
        }
        return n;
}
