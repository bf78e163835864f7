/* The host agent: serves requests from fastmig and from other agents. */
#pragma once
#include "proto/tls.h"
#include <pthread.h>
#include <stdatomic.h>

#include "image/digest.h"
#include "migrate/migrate.h"

#define FM_AGENT_MAX_CONNS_ 64 /* FM_AGENT_MAX_CONNS, below */

typedef struct fm_agent {
        fm_host_paths paths;
        char addr[16];
        uint16_t port;
        char seqecho_path[512];
        int listen_fd;
        /* digests of images being staged, computed as they arrive */
        pthread_mutex_t follow_lock;
        struct {
                char digest[FM_DIGEST_HEX];
                fm_digest_follower *f;
        } follow[8];
        unsigned follow_next;
        /* rsync sessions being served (op rsync): the directory each writes
         * and its process group, so that whoever ends that directory's
         * migration or commits its image ends them first */
        pthread_mutex_t sessions_lock;
        struct {
                char dir[700];
                pid_t pgid; /* 0: free */
        } sessions[FM_AGENT_MAX_CONNS_];
        atomic_uint conns; /* connections being served */
} fm_agent;

/* How long a stopping agent lets the requests under way finish. */
#define FM_AGENT_STOP_GRACE_MS 5000
/* Connections served at once (a thread each, and a TLS relay thread); one
 * more is closed before its handshake. A migration takes about 4 at a time on each side. */
#define FM_AGENT_MAX_CONNS FM_AGENT_MAX_CONNS_
/* A client that sends no request within this is dropped ... */
#define FM_AGENT_FIRST_FRAME_MS 10000
/* ... and a peer silent (or not reading) this long within a request. */
#define FM_AGENT_IDLE_MS 60000

/* Handles one connection to its end (one request, or a stream request). */
void fm_agent_serve(fm_agent *a, int fd, const fm_tls_peer_id *peer);
/* Accept loop: one thread per connection, until stop_fd (-1: none) becomes
 * readable. Then closes the listening socket and waits up to
 * FM_AGENT_STOP_GRACE_MS for the connections being served; returns how many
 * are still being served (their threads go on: a must stay valid), or a
 * negative errno on an error of the loop itself. */
int fm_agent_run(fm_agent *a, int stop_fd, fm_error *e);
/* Starts recovering every migration the journal holds (src/migrate/recover.h),
 * each on a thread of its own that retries until it can end it; their
 * containers are refused to new migrations meanwhile. Returns how many. */
int fm_agent_recover_all(fm_agent *a, fm_error *e);
/* One of them (name already marked busy), e.g. a rollback the target did
 * not confirm. */
void fm_agent_recover(fm_agent *a, const char *name);
/* Starts the thread that lets what abandoned migrations left lapse, every
 * FM_EXPIRE_EVERY_S (fm_target_expire, and the latency tests' leftovers on
 * the shared volume). */
void fm_agent_upkeep_start(fm_agent *a);
/* Longest pause between two attempts of a recovery. */
#define FM_RECOVER_RETRY_MAX_MS 5000

/* Frees what the agent holds (digests of staged images being followed).
 * Only when no connection is being served. */
void fm_agent_release(fm_agent *a);
