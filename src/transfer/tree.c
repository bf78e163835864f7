#include "tree.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local struct timespec tree_since;
static _Thread_local bool tree_changed;

static bool changed_since(const struct stat *st)
{
        return st->st_ctim.tv_sec > tree_since.tv_sec ||
               (st->st_ctim.tv_sec == tree_since.tv_sec && st->st_ctim.tv_nsec >= tree_since.tv_nsec);
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)path;
        (void)flag;
        (void)ftw;
        if (changed_since(st)) {
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

static _Thread_local FILE *tree_list;
static _Thread_local size_t tree_root_len, tree_count;

static int list_changed(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        if (!changed_since(st))
                return 0;
        const char *rel = ftw->level == 0 ? "." : path + tree_root_len + 1;
        /* "dir/": rsync --dirs --delete then prunes what left it */
        if (fputs(rel, tree_list) == EOF || (ftw->level > 0 && flag == FTW_D && fputc('/', tree_list) == EOF) ||
            fputc('\0', tree_list) == EOF)
                return -1;
        tree_count++;
        return 0;
}

int fm_tree_changes_since(const char *dir, struct timespec since, const char *list_path, size_t *count, fm_error *e)
{
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
                len--;
        FILE *f = fopen(list_path, "we");
        if (!f)
                return fm_err(e, errno, "creating %s: %s", list_path, strerror(errno));
        tree_since = since;
        tree_list = f;
        tree_root_len = len;
        tree_count = 0;
        int r = nftw(dir, list_changed, 64, FTW_PHYS | FTW_MOUNT);
        int saved = errno;
        if (fclose(f) != 0 && r == 0) {
                r = -1;
                saved = errno;
        }
        if (r != 0)
                return fm_err(e, saved ? saved : EIO, "listing changes below %s: %s", dir, strerror(saved ? saved : EIO));
        *count = tree_count;
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
