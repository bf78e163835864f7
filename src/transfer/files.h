/* Moving checkpoint images and file trees between hosts. */
#pragma once
#include <sys/types.h>
#include <stdatomic.h>

#include "util/util.h"

#include "memory/pagestream.h"

/* Page encoding of CRIU's pages-*.img files (pre-copy): the sender's key and
 * the set of pages the receiver holds; counters of what was sent. */
typedef struct fm_page_codec {
        const uint8_t *key;
        fm_hashset *held;
        bool compress;    /* LZ4 on literal pages */
        bool corrupt_one; /* test hook: flip a byte of the first literal page sent */
        fm_pagestream_stats st;
} fm_page_codec;

/* The receiver's side: its page store (pages from the rounds) and the key. */
typedef struct fm_page_decoder {
        const uint8_t *key;
        fm_pagestore *store;
        /* a file allocated ahead (before the freeze) that the first
         * page-encoded file takes over, so that rebuilding it writes into
         * memory the file system already holds; NULL: none */
        const char *spare;
        fm_pagestream_stats st;
} fm_page_decoder;

/* A directory another process is still writing into (CRIU dumping): its
 * pages files can travel while they grow. writer: 0 while the writer runs, 1
 * once it ended well, -1 if it failed (set by fm_files_live_end). */
typedef struct fm_files_live {
        atomic_int writer;
        int inotify_fd;
        int wake_fd; /* an eventfd: the writer's end wakes the sender at once */
} fm_files_live;
/* Starts watching dir; call it before the writer starts. */
int fm_files_live_watch(fm_files_live *live, const char *dir, fm_error *e);
/* The writer has ended (ok: its files are complete): the sender goes on
 * now, not at its next poll. */
void fm_files_live_end(fm_files_live *live, bool ok);
void fm_files_live_close(fm_files_live *live);

/* Sends every regular file directly in dir as FILE/DATA/FILE_END frames,
 * then END. *bytes gets the payload bytes sent. With a codec, pages-*.img
 * files travel as page records ("encoding": "pages"). With live, the pages
 * files travel while the writer appends to them (in the order they were
 * created, each as "growing" until the writer closed it), the other files
 * once the writer has ended; a writer that failed ends the stream unfinished. */
int fm_files_send(int fd, const char *dir, fm_page_codec *codec, fm_files_live *live, uint64_t *bytes, fm_error *e);

/* Receives a stream written by fm_files_send into dir (created if needed).
 * Rejects unsafe names, files larger than declared, more than max_total bytes
 * in all, and any file whose XXH64 does not match (for page-encoded files,
 * the rebuilt file's). Partial files are removed. dec may be NULL (then a
 * page-encoded file is refused). */
int fm_files_recv(int fd, const char *dir, uint64_t max_total, fm_page_decoder *dec, uint64_t *bytes, fm_error *e);

/* Where an rsync goes: one directory that the target agent opens to this
 * host for it (request "rsync", docs/PROTOCOL.md), either a container's
 * tree that this host's migration prepared there or the staging directory
 * of an image this host staged there. */
typedef struct fm_rsync_dest {
        const char *addr; /* the target agent */
        uint16_t port;
        const char *name;  /* a container ... */
        const char *part;  /* ... and its "rootfs" or "upper" */
        const char *image; /* or an image's digest */
        /* > 2 (or 0 for none): the list of what travels (as files_from),
         * read from this descriptor once rsync is connected: rsync can be
         * started ahead and given its list later */
        int list_fd;
        /* > 2 (or 0): fm-rsync-tunnel writes one byte to it once it is
         * connected and the target agent serves the tree */
        int ready_fd;
} fm_rsync_dest;

/* rsync of a directory tree into to's directory, deleting extraneous
 * files; *bytes = bytes rsync sent. The stream is rsync's daemon protocol
 * through fm-rsync-tunnel: a TLS connection to the agent with this host's
 * certificate, so it is authenticated, encrypted, and confined by the
 * target to that one directory. nice: the client's niceness (a sync beside
 * the dump must not slow it). inplace: write files in place (into a fresh
 * directory nobody reads yet: one rename less per file). files_from: NULL,
 * or a list from fm_tree_changes_since: only those entries travel
 * (directories without recursion, their deletions too). */
int fm_rsync_push(const char *src_dir, const fm_rsync_dest *to, int nice, bool inplace, const char *files_from,
                  uint64_t *bytes, fm_error *e);

/* The target's side: runs rsync's server in daemon mode on fd (the
 * connection, once the request is answered) with one module, "ct", whose
 * root is dir (chrooted, numeric ids, written as root; one_file: an
 * image's staging directory, into which links, devices and special files
 * are refused); its config is a file in conf_dir while it runs. rsync leads
 * a process group of its own, whose id started (may be NULL) gets: killing
 * that group ends the session. Returns when it ends: 0, or an error with
 * its exit status. */
int fm_rsync_serve(int fd, const char *dir, bool one_file, const char *conf_dir, void (*started)(pid_t, void *),
                   void *data, fm_error *e);

/* Bound on one rsync run, either side: a stream silent this long ends it. */
#define FM_RSYNC_IO_TIMEOUT_S 60
