#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "transfer/tree.h"
#include "transfer/treewatch.h"
#include "tap.h"

/* The NUL-separated list as one string with entries joined by '|', sorted
 * (the watch writes them sorted). */
static void read_list(const char *path, char *out, size_t n)
{
        char *buf = NULL;
        int len = fm_read_file(path, &buf, 1 << 20);
        out[0] = '\0';
        for (int i = 0; buf && i < len; i++)
                if (strlen(out) + 2 < n) {
                        size_t k = strlen(out);
                        out[k] = buf[i] ? buf[i] : '|';
                        out[k + 1] = '\0';
                }
        free(buf);
}

static void put(const char *dir, const char *rel, const char *text)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, rel);
        fm_write_file(p, text, strlen(text), 0644);
}

static void test_watch(void)
{
        char dir[] = "/tmp/fm-watch.XXXXXX", p[512], list[600], got[2048];
        mkdtemp(dir);
        snprintf(list, sizeof(list), "%s.list", dir);
        snprintf(p, sizeof(p), "%s/etc", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/var", dir);
        mkdir(p, 0755);
        put(dir, "etc/keep", "k");
        put(dir, "etc/old", "o");
        put(dir, "var/log", "1");
        fm_tree_watch *w = NULL;
        fm_error e = {0};
        ok(fm_tree_watch_start(dir, &w, &e) == 0 && w, "watch starts: %s", e.msg);
        size_t n = 99;
        ok(fm_tree_watch_list(w, list, &n, &e) == 0 && n == 0, "nothing done, nothing listed (%zu)", n);
        fm_tree_watch_free(w);

        ok(fm_tree_watch_start(dir, &w, &e) == 0, "watch starts again");
        put(dir, "var/log", "12");                  /* modified */
        snprintf(p, sizeof(p), "%s/etc/old", dir);  /* deleted: only its directory */
        unlink(p);
        snprintf(p, sizeof(p), "%s/new", dir);      /* a directory made while watched ... */
        mkdir(p, 0755);
        put(dir, "new/a", "a");                     /* ... with what it holds */
        snprintf(p, sizeof(p), "%s/new/deep", dir);
        mkdir(p, 0755);
        put(dir, "new/deep/b", "b");
        snprintf(p, sizeof(p), "%s/var", dir);      /* a mode change */
        chmod(p, 0700);
        ok(fm_tree_watch_list(w, list, &n, &e) == 0, "listed: %s", e.msg);
        read_list(list, got, sizeof(got));
        ok(!strcmp(got, ".|etc/|new/|new/a|new/deep/|new/deep/b|var/|var/log|"),
           "changed entries, their directories, a new directory whole: %s", got);
        ok(n == 8, "count %zu", n);
        fm_tree_watch_free(w);

        /* a renamed directory: every watch below it names the old path */
        ok(fm_tree_watch_start(dir, &w, &e) == 0, "watch starts a third time");
        char from[512], to[512];
        snprintf(from, sizeof(from), "%s/new", dir);
        snprintf(to, sizeof(to), "%s/renamed", dir);
        rename(from, to);
        put(dir, "renamed/deep/c", "c");
        ok(fm_tree_watch_list(w, list, &n, &e) < 0 && e.code == EOVERFLOW, "a renamed directory: the caller walks (%s)",
           e.msg);
        fm_tree_watch_free(w);
        fm_tree_watch_free(NULL);
        w = (fm_tree_watch *)1;
        ok(fm_tree_watch_start("/nonexistent/fm", &w, &e) < 0 && !w, "a missing tree is an error: %s", e.msg);
        unlink(list);
        fm_rm_rf(dir);
}

static struct timespec now_plus_ms(int ms)
{
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += (long)ms * 1000000L;
        while (t.tv_nsec >= 1000000000L) {
                t.tv_nsec -= 1000000000L;
                t.tv_sec++;
        }
        return t;
}

int main(void)
{
        char dir[] = "/tmp/fm-tree.XXXXXX";
        char path[256], sub[256];
        mkdtemp(dir);
        snprintf(sub, sizeof(sub), "%s/sub", dir);
        mkdir(sub, 0755);
        snprintf(path, sizeof(path), "%s/sub/file", dir);
        fm_write_file(path, "a", 1, 0644);
        usleep(20000);
        /* the kernel stamps ctime with a coarse clock: compare against a time
         * safely after the writes above */
        struct timespec since = now_plus_ms(10);
        usleep(30000);
        bool changed = true;
        fm_error e = {0};
        ok(fm_tree_changed_since(dir, since, &changed, &e) == 0 && !changed, "untouched tree: no change");

        int fd = open(path, O_WRONLY | O_APPEND);
        write(fd, "b", 1);
        close(fd);
        ok(fm_tree_changed_since(dir, since, &changed, &e) == 0 && changed, "appending to a file is a change");

        since = now_plus_ms(10);
        usleep(30000);
        ok(fm_tree_changed_since(dir, since, &changed, &e) == 0 && !changed, "quiet again");
        unlink(path);
        ok(fm_tree_changed_since(dir, since, &changed, &e) == 0 && changed, "a deletion is a change");

        since = now_plus_ms(10);
        usleep(30000);
        chmod(sub, 0700);
        ok(fm_tree_changed_since(dir, since, &changed, &e) == 0 && changed, "a mode change is a change");

        ok(fm_tree_changed_since("/nonexistent/fm", since, &changed, &e) < 0, "missing tree is an error");

        /* the list for rsync: changed entries, directories with their slash */
        since = now_plus_ms(10);
        usleep(30000);
        snprintf(path, sizeof(path), "%s/made", dir);
        mkdir(path, 0755);
        put(dir, "made/f", "f");
        char list[300], got[1024];
        snprintf(list, sizeof(list), "%s.list", dir);
        size_t count = 0;
        fm_err_clear(&e);
        ok(fm_tree_changes_since(dir, since, list, &count, &e) == 0, "changes listed: %s", e.msg);
        read_list(list, got, sizeof(got));
        ok(count == 3 && strstr(got, ".|") && strstr(got, "made/|") && strstr(got, "made/f|") && !strstr(got, "sub"),
           "the root, a new directory with its slash, its file: %s", got);
        unlink(list);
        fm_rm_rf(dir);
        test_watch();
        return tap_done();
}
