/* The programs this process's descendants start, from the kernel's
 * process-event connector (src/util/execwatch.h): a child's and a
 * grandchild's execs are listed inside their window, none outside it, an
 * orphaned grandchild's too. Needs root in the initial namespaces (the
 * suite runs so). */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "util/execwatch.h"
#include "util/spawn.h"

/* by pid: a program that ends at once may be gone before the reader could
 * read its name (it is then listed as "?") */
static bool listed_pid(json_object *a, pid_t pid)
{
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                json_object *p = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(a, i), "pid", &p) && json_object_get_int(p) == pid)
                        return true;
        }
        return false;
}

static void on_started(pid_t pid, void *data) { *(pid_t *)data = pid; }

static bool listed(json_object *a, const char *program)
{
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                json_object *p = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(a, i), "program", &p) &&
                    !strcmp(json_object_get_string(p), program))
                        return true;
        }
        return false;
}

int main(void)
{
        fm_error e = {0};
        fm_execwatch *w = fm_execwatch_open(&e);
        ok(w != NULL, "the connector opens (%s)", e.msg);
        if (!w)
                return tap_done();
        ok(fm_execwatch_start(w, &e) == 0, "the reader starts (%s)", e.msg);

        uint64_t t0 = fm_now_ns();
        char *child[] = {"true", NULL};
        pid_t child_pid = 0;
        fm_spawn_opts o = {.detach_stdio = true, .timeout_ms = 10000, .started = on_started, .started_data = &child_pid};
        ok(fm_spawn(child, &o) == 0, "a child ran");
        /* long enough to be named */
        char *grand[] = {"sh", "-c", "sleep 0.2; exit 0", NULL};
        fm_spawn_opts og = {.detach_stdio = true, .timeout_ms = 10000};
        ok(fm_spawn(grand, &og) == 0, "a child that starts a grandchild ran");
        uint64_t t1 = fm_now_ns();
        uint64_t lost = 1;
        json_object *a = fm_execwatch_between(w, t0, t1, &lost);
        ok(listed_pid(a, child_pid), "the child's exec is listed: %s", a ? json_object_to_json_string(a) : "null");
        ok(listed(a, "sh") && listed(a, "sleep"), "the grandchild's exec is listed too");
        ok(lost == 0, "no event lost");
        json_object_put(a);

        /* a window that closed before they ran lists none of them */
        a = fm_execwatch_between(w, t0 - 1000000000ull, t0 - 1, NULL);
        ok(a && !listed_pid(a, child_pid) && !listed(a, "sleep"), "an earlier window lists none of them");
        json_object_put(a);

        /* forks are followed, not parents: a grandchild orphaned before it
         * execs is still ours; and every entry is one of ours (whatever else
         * this machine runs meanwhile is not listed) */
        uint64_t t2 = fm_now_ns();
        pid_t p = fork();
        if (p == 0) {
                if (fork() == 0) { /* orphaned grandchild */
                        usleep(50000);
                        execlp("sleep", "sleep", "0.2", (char *)NULL);
                        _exit(127);
                }
                _exit(0);
        }
        waitpid(p, NULL, 0);
        usleep(400000);
        a = fm_execwatch_between(w, t2, fm_now_ns(), NULL);
        ok(listed(a, "sleep"), "an orphaned grandchild's exec is still ours: %s", a ? json_object_to_json_string(a) : "null");
        bool only_ours = true;
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                json_object *q = NULL;
                json_object_object_get_ex(json_object_array_get_idx(a, i), "program", &q);
                only_ours = only_ours && !strcmp(json_object_get_string(q), "sleep");
        }
        ok(only_ours, "nothing of the rest of the machine is listed: %s", a ? json_object_to_json_string(a) : "null");
        json_object_put(a);
        ok(fm_execwatch_between(NULL, t0, t1, NULL) == NULL, "no watch: not known (NULL)");
        fm_execwatch_close(w);
        return tap_done();
}
