/* A live migration, as a pipeline of phases with undo (docs/ARCHITECTURE.md).
 * The source agent runs fm_migrate_run(); the target agent serves the
 * fm_target_* steps it calls remotely. All state of one migration is in one
 * struct, so an agent can run several at once. */
#pragma once
#include <stdatomic.h>
#include "storage/shared.h"
#include <json-c/json.h>
#include <time.h>
#include "image/store.h"
#include "lxc/container.h"
#include "lxc/ctnet.h"
#include "lxc/criu_stats.h"
#include "util/util.h"

struct fm_precopy_registry; /* target side: page stores of migrations under way */
struct fm_fleet;
struct fm_steer;

/* The disk strategies (docs/IMAGES.md, docs/SHARED.md). */
enum fm_strategy { FM_STRATEGY_AUTO, FM_STRATEGY_MEMORY, FM_STRATEGY_PARTIAL, FM_STRATEGY_FULL, FM_STRATEGY_SHARED };
#define FM_STRATEGY_NAMES "auto, memory, partial, full, shared"
const char *fm_strategy_name(enum fm_strategy s);
int fm_strategy_parse(const char *s, enum fm_strategy *out); /* -EINVAL if unknown */

/* Where a host keeps things. */
typedef struct fm_host_paths {
        char host[32];
        char lxcpath[256];
        char images[256];          /* tmpfs */
        char store[256];           /* the image store (src/image/store.h) */
        char criu_dump_conf[300];  /* CRIU_CONFIG_FILE for dumps */
        char criu_restore_conf[300];
        /* Environment of lxc-checkpoint runs: "PATH=<dir with fm-criu-wrap as
         * criu>:..." and "FASTMIG_REAL_CRIU=<path>"; empty: plain criu, and
         * the agent freezes the container before it starts lxc-checkpoint. */
        char criu_path_env[1400];
        char criu_real_env[320];
        struct fm_precopy_registry *precopy; /* NULL: this host takes no pre-copy */
        bool lazy_restore;         /* CRIU can restore lazily here (userfaultfd, fm-criu-wrap) */
        bool test_hooks;           /* honour "inject" in requests (tests only) */
        fm_shared_volume shared;   /* the shared volume mounted here; shared.path "" if none */
        char bridge[16];           /* the bridge a migrated container's veth joins; "" keeps its config's */
        const char *const *bind_allow; /* host dirs a migrated config may bind read-only; NULL: the default */
        struct fm_execwatch *execwatch; /* programs the agent's children start (util/execwatch.h); NULL: not known */
        const char *state;              /* the agent's state directory, for the journal (journal.h); NULL: none */
        /* the fleet the agent serves (fastmigd --fleet): the source steers
         * its service's traffic by the fleet's steering to the fleet's
         * hosts; NULL: nothing is steered (one L2 segment, GARP) */
        const struct fm_fleet *fleet;
        struct fm_steer *steer;         /* ... open while the agent runs */
        char fence_prog[512];           /* fm-fence (lease.h); "": leases are not kept here */
        int stale_s;                    /* a migration's source silent this long has abandoned it (fastmigd
                                         * --expiry, default FM_INCOMING_STALE_S) */
} fm_host_paths;

enum fm_phase {
        FM_PHASE_PLAN,       /* constraints, target prepared */
        FM_PHASE_DISK_LIVE,  /* rootfs rsync while the service runs */
        FM_PHASE_PRECOPY,    /* memory rounds while the service runs */
        FM_PHASE_FREEZE,     /* cgroup freezer */
        FM_PHASE_DUMP,       /* CRIU dump into the source's tmpfs */
        FM_PHASE_TRANSFER,   /* images to the target's tmpfs */
        FM_PHASE_DISK_FINAL, /* rootfs rsync of what changed, while frozen */
        FM_PHASE_RESTORE,    /* CRIU restore through LXC at the target */
        FM_PHASE_STEER,      /* the service route moves to the target */
        FM_PHASE_SETTLE,     /* lazy restore: the target's memory is complete */
        FM_PHASE_CLEANUP,    /* the source copy is destroyed */
        FM_PHASE_COUNT
};
const char *fm_phase_name(enum fm_phase p);

typedef struct fm_mig_hooks {
        void *data;
        /* progress events, may be NULL; called from the pipeline's threads
         * too (serialize). {"event":"frozen"}: the source is frozen and
         * its traffic is being sent to the target (what the restored TCP
         * sockets send first must be answered there); {"event":"restored"}:
         * the target runs it. */
        void (*event)(void *data, json_object *ev);
} fm_mig_hooks;

/* Traffic for ip goes to host to_host from now on (from_host: where it
 * went), by the fleet's steering (fm_host_paths.fleet; none: nothing to
 * do). phase: FM_STEER_* (steer/steer.h). */
int fm_mig_steer(const fm_host_paths *p, const char *phase, const char *ip, const char *from_host, const char *to_host,
                 fm_error *e);

/* Asks the target at addr:port to drop the copy of name this host's
 * migration brings. 0 only when the target answered that it holds none
 * (any more: it removed it, or there is no container of that name); an
 * error when it could not be asked, refused or failed. */
int fm_target_call_abort(const char *name, const char *addr, uint16_t port, fm_error *e);
#define FM_ABORT_CONNECT_MS 10000

#define FM_MAX_ROUNDS 64
/* full- and partial-mig: the source freezes once what is left of the
 * images should take the link this long (their tail then overlaps the
 * freeze and the dump; docs/IMAGES.md has the measurements). */
#define FM_IMAGES_LEAD_MS 100
/* The longest a migration holds its freeze for its planned moment (the
 * target's rsync waits FM_RSYNC_IO_TIMEOUT_S for its list meanwhile). */
#define FM_HOLD_MAX_MS 30000

typedef struct fm_round {
        uint64_t pages_scanned, pages_sent, bytes;
        double ms;
} fm_round;

typedef struct fm_migration {
        /* inputs */
        const fm_host_paths *src;
        char name[64];
        char to_host[32];
        char to_addr[16];
        uint16_t to_port;
        char inject[32];     /* test hook: a phase name that must fail */
        bool precopy;        /* memory rounds before the final dump */
        bool compress;       /* LZ4 on the pages that travel whole */
        int max_rounds;
        double images_lead_ms; /* full/partial: see FM_IMAGES_LEAD_MS; 0: images complete before the freeze */
        int64_t freeze_at_ms;  /* wall clock: hold the freeze until then, all else ready (0: none) */
        double held_ms;        /* how long it held (the agent, then fm-criu-wrap) */
        int64_t freeze_pin_ms;  /* wall clock: fm-criu-wrap freezes then (0: as soon as it runs) */
        int64_t freeze_lead_ms; /* how far ahead of it the dump starts */
        double ready_ms;        /* fm_now_ms() as the hold ended (or had nothing to hold for) */
        int64_t restored_at_ms; /* wall clock: the target runs it (its traffic goes there) */
        uint64_t dirty_threshold;
        double min_shrink;
        struct timespec disk_live_start; /* wall clock, for change detection */
        bool target_early_restore; /* the target can hold CRIU until images are complete */
        bool target_leases;        /* the target runs its copy only on our lease (lease.h) */
        bool early_restore;        /* ... and we use it */
        int want_lazy;             /* lazy restore: 1 asked for, 0 not, -1 auto (by memory size) */
        bool target_lazy;          /* the target can restore lazily */
        int want_lazy_dump;        /* lazy final dump: 1 asked for, 0 not, -1 auto (with pre-copy and a lazy restore) */
        bool target_lazy_dump;     /* the target can take one (its agent serves its lazy-pages daemon) */
        bool lazy_dump;            /* ... and we do: the frozen dump writes no anonymous memory */
        enum fm_strategy want_strategy; /* asked for (auto: the target's checks decide) */
        enum fm_strategy strategy;      /* decided in plan */
        int decided_by;                 /* the check that decided (0..3) */
        bool shared;                    /* the rootfs is on the shared volume (at shared_rel below it) */
        char shared_rel[200];
        bool may_move_tree;             /* shared: auto may fall back to moving the tree to the target's disk */
        bool moving_tree;               /* shared: the tree travels (full-mig) and leaves the volume */
        char fallback[1024];            /* why auto left check 0 for the local-disk checks ("" if it did not) */
        struct fm_tree_watch *tree_watch; /* moving tree: its changes since the live sync began (NULL: walk it) */
        const char *tree_changes_by;    /* moving tree: how the final sync found what changed ("inotify", "walk") */
        double latency_tolerance_ms;    /* shared: the service's tolerance for the latency test */
        bool have_latency;              /* the target ran the latency test ... */
        fm_latency latency;             /* ... with these figures */
        int flushed_files;              /* shared: files fsync'd after the freeze */
        bool is_clone;                  /* an overlay clone of an image (else a plain rootfs) */
        /* the programs each host started while the container was frozen:
         * {"source": [...], "target": [...]} (util/execwatch.h), NULL if not known */
        json_object *frozen_programs;
        bool own_net;                   /* its network namespace is kept by fastmig, outside CRIU's images ... */
        fm_ctnet net;                   /* ... and holds this (lxc/ctnet.h) */
        fm_clone clone;
        fm_image app_im, base_im;       /* clone: its images in the source's store */
        bool lazy;                 /* ... and we do */
        char id[33];     /* this migration's id (its journal record) */
        int64_t started_wall; /* when it began, wall clock s */
        /* progress, for undo */
        bool prepared, frozen, restored, committed;
        bool steered;    /* traffic was sent to the target */
        bool stranded;   /* the journal keeps the migration for recovery (recover.h): a rollback could not
                          * learn that the target stopped its copy (the source copy stays frozen), or one
                          * of the two below */
        bool abort_pending; /* rolled back once the target's lease had lapsed: its fenced copy still to go */
        bool thaw_failed;   /* the rollback's local steps (port, thaw, steering) did not all succeed */
        struct fm_cancel *cancel; /* this migration's connections and children (util/cancel.h) */
        atomic_bool target_silent; /* the target stopped asking for its lease while frozen: given up */
        _Atomic uint64_t restore_asked; /* fm_lease_now_ns when the restore was asked for: its lease follows */
        bool finish_pending; /* committed, the target not yet told */
        bool detached; /* the source's veth is off its bridge */
        fm_ct_port port; /* ... that veth (when have_port) */
        bool have_port;
        /* results */
        double phase_ms[FM_PHASE_COUNT];
        double frozen_ms, total_ms;
        double disk_tail_ms; /* images still travelling after the freeze began */
        double disk_wait_ms; /* ... and after the checkpoint images were complete */
        uint64_t bytes_base, bytes_app, bytes_own; /* disk bytes sent: images, upper layer or rootfs */
        uint64_t bytes_memory;
        fm_criu_stats criu; /* CRIU's own figures: its dump here, its restore at the target */
        bool ok, rolled_back;
        char service_ip[16];
        fm_round rounds[FM_MAX_ROUNDS];
        int nrounds;
        const char *stop_rule;
        uint64_t final_pages, final_bytes; /* pages sent whole in the final stream, its bytes */
        uint64_t lazy_pages;               /* a lazy final dump: pages the target asked for */
        uint8_t key[192];                  /* FM_HASH_KEY_SIZE, fresh per migration */
        fm_error err;
} fm_migration;

int fm_migrate_run(fm_migration *m, const fm_mig_hooks *hooks);
/* {"container","from","to","ok","rolled_back","error","frozen_ms","total_ms",
 *  "phases":{name:ms},"bytes_disk","bytes_memory"} */
json_object *fm_migration_report(const fm_migration *m);
/* Frees what the run allocated in m (not m itself). */
void fm_migration_release(fm_migration *m);


/* What the source asks of the target in prepare. */
typedef struct fm_prepare_req {
        const char *config;
        const char *peer;                /* who asks: the only one that may go on with it (incoming marker) */
        const fm_clone *clone;           /* NULL: a plain directory rootfs */
        const fm_ctnet *net;             /* NULL: LXC's network (lxc.net lines); else the namespace to make (ctnet.h) */
        enum fm_strategy want;
        uint64_t base_bytes, app_bytes;  /* clone: sizes of its images */
        uint64_t own_bytes;              /* upper layer (clone) or whole rootfs (plain) */
        const char *inject;              /* test hook: "room" (no disk space) */
        const char *shared_volume;       /* the rootfs is on this volume (its id) ... */
        const char *src_shared;          /* ... mounted there on the source */
        double latency_tolerance_ms;     /* shared: p99 the service tolerates */
        bool move_tree;                  /* shared: the tree moves to this host's disk instead */
} fm_prepare_req;

typedef struct fm_prepare_out {
        enum fm_strategy strategy;
        int decided_by; /* the check that decided: 0 shared storage, 1 app image here, 2 base image here, 3 neither */
        bool have_latency; /* the latency test ran (shared) ... */
        fm_latency latency;
        bool latency_passed;
        bool can_move; /* shared refused, but the local-disk checks could take the tree (auto) */
} fm_prepare_out;

/* Target side, one call per request. prepare runs the checks: a rootfs on
 * a shared volume this host mounts too, and the latency test on it passes
 * -> shared (check 0); the app image (same digest) here -> memory, else its
 * base here -> partial, else full; a wanted strategy the checks do not
 * allow, a failed latency test, or a disk without room for what would
 * travel, is refused (before the source is touched). A shared tree asked
 * to move (move_tree) goes through checks 1-3 as a plain rootfs; when
 * check 0 refuses under auto, out->can_move says the source may ask that. */
int fm_target_prepare(const fm_host_paths *p, const char *name, const fm_prepare_req *q, fm_prepare_out *out,
                      fm_error *e);
/* inject (test hook): "lose_pages" empties the page store first. */
int fm_target_receive_images(const fm_host_paths *p, const char *name, const char *inject, int fd, uint64_t *bytes,
                             fm_error *e);
/* early: start LXC's restore now and hold CRIU until the images are complete
 * (or an abort); otherwise the images must be there already. */
/* *programs (may be NULL; NULL when not known): the programs this host
 * started between the images being complete and the thaw (util/execwatch.h). */
/* lazy_dump: the daemon takes the pages from this agent, which asks the source. */
int fm_target_restore(const fm_host_paths *p, const char *name, const char *inject, bool early, bool lazy,
                      bool lazy_dump, fm_criu_stats *stats, json_object **programs, fm_error *e);
/* The lazy final dump (memory/pagerelay.h): whether this host can take one;
 * the socket its lazy-pages daemon will connect to (made before the source
 * dumps); serving the daemon with the pages the source sends on peer_fd. */
bool fm_target_can_lazy_dump(const fm_host_paths *p);
/* Either side's socket for them: IMAGES/.NAME.ps/s, in a directory only
 * root may enter; -ENAMETOOLONG when it does not fit a socket address.
 * fits: it does for every name a container may have. listen: the directory
 * made afresh and the socket listening in it (dir: what to remove after). */
int fm_page_server_path(const char *images, const char *name, char *dir, size_t dn, char *path, size_t pn);
bool fm_page_server_fits(const char *images);
int fm_page_server_listen(const char *images, const char *name, char *dir, size_t dn, fm_error *e);
int fm_target_page_server_open(const fm_host_paths *p, const char *name, fm_error *e);
int fm_target_page_server_run(const fm_host_paths *p, const char *name, int lfd, int peer_fd, fm_error *e);
/* After a lazy restore: waits until CRIU's lazy-pages daemon has filled all
 * memory and ended well (error if it failed). inject (test hook): "settle"
 * kills the daemon first. */
int fm_target_settle(const fm_host_paths *p, const char *name, const char *inject, fm_error *e);
/* The peer that prepared NAME here may go on with it (images, restore,
 * settle, abort, finish) until finish: -EPERM for anyone else, and for a
 * container that no unfinished migration brought. */
int fm_target_check_owner(const fm_host_paths *p, const char *name, const char *peer, fm_error *e);
/* A prepared container whose owner has sent nothing for this long may be
 * prepared again by another host (each checked request renews it). */
#define FM_INCOMING_STALE_S 600
/* In a container's LXC directory on the target, until finish: the name of
 * the host whose migration is bringing it. */
#define FM_INCOMING_FILE "fastmig-incoming"
/* What lapses when a migration's source has been silent stale_s (the
 * agent calls it every FM_EXPIRE_EVERY_S): a prepared container that never
 * ran is removed; a restored one that runs is kept (it may be the service)
 * but its images, page store and spare file go; page stores of containers
 * no migration brings go. in_use (may be NULL): the caller's own word
 * that a container is still being worked on (a migration, an rsync into
 * it): skipped. Returns how many things went. */
int fm_target_expire(const fm_host_paths *p, int stale_s, bool (*in_use)(void *data, const char *name), void *data);
#define FM_EXPIRE_EVERY_S 10
/* Removes what a migration brought; a container that no migration from
 * peer is bringing is refused (fm_target_check_owner). */
int fm_target_abort(const fm_host_paths *p, const char *name, const char *peer, fm_error *e);

/* Pre-copy, target side: a page store for NAME keyed with key (hex of
 * FM_HASH_KEY_SIZE bytes); then rounds of page records into it; the final
 * images of NAME then resolve references against it. spare: keep room for
 * the final page files in tmpfs (not for a lazy final dump, which has none). */
struct fm_precopy_registry *fm_precopy_registry_new(void);
/* Frees the registry and closes its page stores (no migration may use it). */
void fm_precopy_registry_free(struct fm_precopy_registry *r);
int fm_target_precopy_begin(const fm_host_paths *p, const char *name, const char *key_hex, bool spare, fm_error *e);
int fm_target_precopy_round(const fm_host_paths *p, const char *name, int fd, uint64_t *stored, fm_error *e);
/* The container is this host's now: images dropped, the marker removed. */
int fm_target_finish(const fm_host_paths *p, const char *name, const char *peer, fm_error *e);
