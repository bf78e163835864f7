/* What changed in a directory tree while it was watched (inotify), so that
 * the last sync of a tree on a network file system need not walk it: a
 * walk over FUSE costs a round trip to the storage per directory, most of a
 * second for a small rootfs, and the last sync runs with the service
 * frozen. The watch sees every change made through this host's kernel (the
 * service's own writes); it does not see changes made by other hosts. */
#pragma once
#include <stddef.h>
#include "util/util.h"

typedef struct fm_tree_watch fm_tree_watch;

/* Watches every directory below dir (one inotify watch each, added by a walk
 * of the directories; start it before the first sync of the tree). A thread
 * collects the changes until fm_tree_watch_list. Fails with ENOSPC when the
 * tree has more directories than fs.inotify.max_user_watches allows. */
int fm_tree_watch_start(const char *dir, fm_tree_watch **out, fm_error *e);

/* Once the tree no longer changes (the service is frozen): writes to
 * list_path the entries that changed since the start and still exist
 * (paths relative to dir, each ended by a NUL; "." for dir itself, "sub/"
 * for a directory; a directory that was created is listed with all it
 * holds; the parent of a created, deleted or renamed entry is listed too),
 * their number to *count. The same list as fm_tree_changes_since's, for
 * rsync --dirs --delete --files-from. Fails with EOVERFLOW when the watch cannot vouch for the
 * list (the kernel dropped events, a directory was renamed): the caller
 * then walks the tree. */
int fm_tree_watch_list(fm_tree_watch *w, const char *list_path, size_t *count, fm_error *e);

/* Stops the watch (if still running) and frees it; NULL is fine. */
void fm_tree_watch_free(fm_tree_watch *w);
