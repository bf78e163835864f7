/* Cheap change detection on a directory tree, to skip a sync that would find
 * nothing to do. */
#pragma once
#include <time.h>
#include "util/util.h"

/* Sets *changed when any entry below dir (directories included, so creations,
 * deletions and renames count) has a ctime at or after `since` (wall clock).
 * The kernel sets ctime on every data, metadata or name change and user space
 * cannot set it back, so "no such entry" means the tree is as it was then.
 * Does not cross mount points. */
int fm_tree_changed_since(const char *dir, struct timespec since, bool *changed, fm_error *e);

/* Writes to list_path the entries below dir (paths relative to it, each
 * ended by a NUL; "." for dir itself, "sub/" for a directory) whose ctime
 * is at or after `since`, and their number to *count: with rsync --dirs
 * --delete --files-from only they travel, and the changed directories,
 * named with their slash, carry creations and deletions.
 * Does not cross mount points. */
int fm_tree_changes_since(const char *dir, struct timespec since, const char *list_path, size_t *count, fm_error *e);

/* The disk space the tree at dir takes (allocated blocks). */
int fm_tree_size(const char *dir, uint64_t *bytes, fm_error *e);
