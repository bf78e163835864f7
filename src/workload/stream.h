/* The video workload's client (fm-videoclient), where the fleet's users
 * are (its users_netns): started with the workload, read around each
 * migration. */
#pragma once
#include <json-c/json.h>
#include "util/util.h"

#define FM_STREAM_DIR "/run/fastmig/streams" /* the clients' status files */

/* Where the client of container name keeps its status. */
void fm_stream_status_path(const char *name, char *buf, size_t n);
/* Starts the client (detached) in network namespace netns ("": this one)
 * and waits for its first bytes. */
int fm_stream_start(const char *name, const char *netns, const char *ip, const char *client_path, double rate_mbit,
                    fm_error *e);
/* The client's status (NULL when the container has no client). */
json_object *fm_stream_status(const char *name);
/* Starts a measurement window (the client's window_stall_ms restarts). */
void fm_stream_window(const char *name);
/* After a migration: waits until the stream flows again (or 5 s), then
 * {connection_kept, bytes_verified, bad_bytes, longest_stall_ms, bytes}
 * for the window; NULL when the container has no client. */
json_object *fm_stream_report(const char *name);
/* Stops the client of name, if any, and forgets its status. */
void fm_stream_stop(const char *name);
/* Forgets the status of every client that has ended. */
void fm_stream_sweep(void);
