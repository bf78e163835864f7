/* Every connection between fastmig, its agents and each other is TLS 1.3,
 * both sides authenticated by the fleet's CA (src/pki, docs/SECURITY.md).
 *
 * The rest of the code keeps reading and writing plain descriptors: a
 * connection is handed to it as one end of a socketpair, and a relay thread
 * that alone owns the TLS session moves bytes between the other end and the
 * network, both directions at once. So timeouts on the descriptor, half
 * closes, and a program given the descriptor as its stdin and stdout (rsync
 * --server) all work as on a socket, and an rsync stream travels encrypted
 * and authenticated like the requests. */
#pragma once
#include <openssl/ssl.h>
#include "util/util.h"

typedef struct fm_tls_peer_id {
        char name[64]; /* the certificate's CN: a host of the fleet, or an operator */
        char role[16]; /* "host" or "operator" */
} fm_tls_peer_id;

/* Loads dir/ca.crt and dir/NAME.{crt,key} for both directions. Call once
 * at start-up, before any thread. */
int fm_tls_setup(const char *dir, const char *name, fm_error *e);
bool fm_tls_enabled(void);
/* This side's own name (its certificate's), "" without TLS. */
const char *fm_tls_self(void);
/* The directory it was loaded from, "" without TLS. */
const char *fm_tls_dir(void);

/* Client side of a connected TCP socket (consumed, also on failure): the
 * handshake within timeout_ms; the server must be a fleet host whose
 * certificate names addr (an IP in its subjectAltName). Returns the
 * descriptor to use. */
int fm_tls_client(int tcp_fd, const char *addr, int timeout_ms, fm_tls_peer_id *peer, fm_error *e);
/* Server side of an accepted socket (consumed): the handshake within
 * timeout_ms, the client's certificate verified; returns the descriptor. */
int fm_tls_server(int tcp_fd, int timeout_ms, fm_tls_peer_id *peer, fm_error *e);

/* Waits up to timeout_ms for every relay to end (each closes its session
 * with the peer: a few ms once both sides closed); true when none is left.
 * Before a process exits, so that no session is cut or left behind. */
bool fm_tls_drain(int timeout_ms);
