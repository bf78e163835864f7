/* Moving checkpoint images and file trees between hosts. */
#pragma once
#include "util/util.h"

/* Sends every regular file directly in dir as FILE/DATA/FILE_END frames,
 * then END. *bytes gets the payload bytes sent. */
int fm_files_send(int fd, const char *dir, uint64_t *bytes, fm_error *e);

/* Receives a stream written by fm_files_send into dir (created if needed).
 * Rejects unsafe names, files larger than declared, more than max_total bytes
 * in all, and any file whose XXH64 does not match. Partial files are removed. */
int fm_files_recv(int fd, const char *dir, uint64_t max_total, uint64_t *bytes, fm_error *e);

/* rsync of a directory tree to an agent's rsync daemon (module "lxc", the
 * host's LXC path), deleting extraneous files; *bytes = bytes rsync sent.
 * nice: the client's niceness (a sync beside the dump must not slow it). */
int fm_rsync_push(const char *src_dir, const char *addr, uint16_t port, const char *dest_rel, int nice,
                  uint64_t *bytes, fm_error *e);

/* Writes the config of a host's rsync daemon: module "lxc" is the LXC path,
 * module "images" the checkpoint tmpfs (used by the plain-way baseline). */
int fm_rsyncd_config(const char *conf_path, const char *lxcpath, const char *images, const char *addr, uint16_t port,
                     fm_error *e);
