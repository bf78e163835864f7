/* The host agent: serves requests from fastmig and from other agents. */
#pragma once
#include <pthread.h>

#include "image/digest.h"
#include "migrate/migrate.h"

typedef struct fm_agent {
        fm_host_paths paths;
        char addr[16];
        uint16_t port;
        uint16_t rsync_port;
        char seqecho_path[512];
        int listen_fd;
        /* digests of images being staged, computed as they arrive */
        pthread_mutex_t follow_lock;
        struct {
                char digest[FM_DIGEST_HEX];
                fm_digest_follower *f;
        } follow[8];
        unsigned follow_next;
} fm_agent;

/* Handles one connection to its end (one request, or a stream request). */
void fm_agent_serve(fm_agent *a, int fd);
/* Accept loop: one thread per connection. Returns only on error. */
int fm_agent_run(fm_agent *a, fm_error *e);
