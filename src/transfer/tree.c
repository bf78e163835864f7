#include "tree.h"

#include <ftw.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local struct timespec tree_since;
static _Thread_local bool tree_changed;

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)path;
        (void)flag;
        (void)ftw;
        if (st->st_ctim.tv_sec > tree_since.tv_sec ||
            (st->st_ctim.tv_sec == tree_since.tv_sec && st->st_ctim.tv_nsec >= tree_since.tv_nsec)) {
                tree_changed = true;
                return 1; /* stop the walk */
        }
        return 0;
}

int fm_tree_changed_since(const char *dir, struct timespec since, bool *changed, fm_error *e)
{
        tree_since = since;
        tree_changed = false;
        int r = nftw(dir, visit, 64, FTW_PHYS | FTW_MOUNT);
        if (r < 0)
                return fm_err(e, errno, "scanning %s: %s", dir, strerror(errno));
        *changed = tree_changed;
        return 0;
}

static _Thread_local uint64_t tree_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)path;
        (void)flag;
        (void)ftw;
        tree_bytes += (uint64_t)st->st_blocks * 512;
        return 0;
}

int fm_tree_size(const char *dir, uint64_t *bytes, fm_error *e)
{
        tree_bytes = 0;
        if (nftw(dir, add_size, 64, FTW_PHYS | FTW_MOUNT) < 0)
                return fm_err(e, errno, "scanning %s: %s", dir, strerror(errno));
        *bytes = tree_bytes;
        return 0;
}
