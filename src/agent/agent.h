/* The host agent: serves requests from fastmig and from other agents. */
#pragma once
#include "migrate/migrate.h"

typedef struct fm_agent {
        fm_host_paths paths;
        char addr[16];
        uint16_t port;
        uint16_t rsync_port;
        char seqecho_path[512];
        int listen_fd;
} fm_agent;

/* Handles one connection to its end (one request, or a stream request). */
void fm_agent_serve(fm_agent *a, int fd);
/* Accept loop: one thread per connection. Returns only on error. */
int fm_agent_run(fm_agent *a, fm_error *e);
