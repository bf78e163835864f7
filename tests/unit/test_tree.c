#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "transfer/tree.h"
#include "tap.h"

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
        fm_rm_rf(dir);
        return tap_done();
}
