#include "util/util.h"
#include "util/spawn.h"
#include "tap.h"

#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
        ok(fm_path_is_safe_relative("a/b.img"), "plain relative path");
        ok(!fm_path_is_safe_relative("/etc/passwd"), "absolute rejected");
        ok(!fm_path_is_safe_relative("a/../b"), "dot-dot rejected");
        ok(!fm_path_is_safe_relative(".."), "bare dot-dot rejected");
        ok(!fm_path_is_safe_relative("a//b"), "empty component rejected");
        ok(!fm_path_is_safe_relative("a/"), "trailing slash rejected");
        ok(!fm_path_is_safe_relative("a\nb"), "control character rejected");
        ok(!fm_path_is_safe_relative(""), "empty rejected");

        ok(fm_name_is_valid("blank1"), "name ok");
        ok(!fm_name_is_valid("-x"), "leading dash rejected");
        ok(!fm_name_is_valid("a b"), "space rejected");
        ok(!fm_name_is_valid("a/b"), "slash rejected");

        uint32_t u = 0;
        ok(fm_parse_u32("1000", &u) == 0 && u == 1000, "u32 parses");
        ok(fm_parse_u32("10x", &u) < 0, "u32 junk rejected");
        ok(fm_parse_u32("-1", &u) < 0, "u32 negative rejected");
        ok(fm_parse_u32("4294967296", &u) < 0, "u32 overflow rejected");

        fm_strv v = {0};
        for (int i = 0; i < 100; i++)
                fm_strv_pushf(&v, "arg%d", i);
        ok(v.n == 100 && v.v[100] == NULL && !strcmp(v.v[99], "arg99"), "strv grows and stays NULL-terminated");
        fm_strv_free(&v);

        fm_error e = {0};
        fm_err(&e, ENOENT, "opening `%s'", "x");
        fm_err_wrap(&e, "loading config");
        ok(e.code == ENOENT && !strcmp(e.msg, "loading config: opening `x'"), "error wraps with context");

        fm_spawn_opts o = {0};
        char *argv[] = {"sh", "-c", "echo hello; echo err >&2; exit 3", NULL};
        int r = fm_spawn(argv, &o);
        ok(r == 3 && o.output && strstr(o.output, "hello") && strstr(o.output, "err"), "spawn captures output and status");
        free(o.output);

        /* an exit status declared harmless (rsync's 24) passes, others fail */
        fm_spawn_opts ok24 = {.also_ok = 24};
        char *argv24[] = {"sh", "-c", "exit 24", NULL}, *argv23[] = {"sh", "-c", "exit 23", NULL};
        fm_error e24 = {0};
        ok(fm_spawn_check(argv24, &ok24, &e24) == 0, "also_ok status counts as success");
        free(ok24.output);
        ok24.output = NULL;
        ok(fm_spawn_check(argv23, &ok24, &e24) < 0 && strstr(e24.msg, "status 23"), "any other status fails");
        free(ok24.output);

        /* a child that writes more than a pipe holds must not deadlock */
        fm_spawn_opts big = {.output_max = 1024};
        char *argv2[] = {"sh", "-c", "yes | head -c 1000000", NULL};
        ok(fm_spawn(argv2, &big) == 0 && strlen(big.output) == 1024, "large output is drained and capped");
        free(big.output);

        fm_spawn_opts to = {.timeout_ms = 100};
        char *argv3[] = {"sleep", "5", NULL};
        uint64_t t0 = fm_now_ns();
        r = fm_spawn(argv3, &to);
        ok(r == 128 + 9 && fm_now_ns() - t0 < 2000000000ull, "timeout kills the child");
        free(to.output);
        fm_spawn_opts quick = {.timeout_ms = 10000};
        char *argv4[] = {"true", NULL};
        t0 = fm_now_ns();
        ok(fm_spawn(argv4, &quick) == 0 && fm_now_ns() - t0 < 5000000000ull, "a child within its timeout is waited for");
        free(quick.output);

        /* fm_wait_path: woken when the file appears (made by a child), or times out */
        char dir[] = "/tmp/fm-wait.XXXXXX";
        ok(mkdtemp(dir) != NULL, "temporary directory");
        char path[64], cmd[256];
        snprintf(path, sizeof(path), "%s/marker", dir);
        snprintf(cmd, sizeof(cmd), "sleep 0.2; echo x > %s.tmp && mv %s.tmp %s", path, path, path);
        char *argv5[] = {"sh", "-c", cmd, NULL};
        pid_t pid = fork();
        if (pid == 0) {
                execvp("sh", argv5);
                _exit(127);
        }
        ok(fm_wait_path(path, 10000) == 0 && fm_path_exists(path), "fm_wait_path sees the file appear");
        waitpid(pid, NULL, 0);
        unlink(path);
        ok(fm_wait_path(path, 50) == -ETIMEDOUT, "fm_wait_path times out on a file that never comes");
        rmdir(dir);
        return tap_done();
}
