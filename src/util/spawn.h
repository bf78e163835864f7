/* Running helper programs (LXC tools, rsync, ip) without a shell. */
#pragma once
#include <sys/types.h>
#include "util.h"

typedef struct fm_spawn_opts {
        const char *const *env_add; /* extra "K=V" entries, NULL-terminated, may be NULL */
        char *output;               /* out: captured stdout+stderr (malloc'd), may be NULL */
        size_t output_max;          /* cap on captured bytes (default 64 KiB) */
        int timeout_ms;             /* 0 = none; the child is killed when it expires */
        bool detach_stdio;          /* child gets /dev/null for all of stdio, nothing captured */
        int also_ok;                /* fm_spawn_check: an exit status that counts as success too (0: none) */
        int stdio_fd;               /* > 2: the child's stdin and stdout (a connection), stderr as above */
        int stdin_fd;               /* > 2: the child's stdin only (stdout and stderr as above) */
        int keep_fd;                /* > 2: stays open in the child under its number */
        bool own_group;             /* the child leads a process group: a timeout kills the whole group,
                                     * and whatever of it is left when the child ends */
        bool outlive_parent;        /* keep running when the thread that started it dies: only for what
                                     * must not be killed half-way (a CRIU dump holds the tasks with its
                                     * parasite inside them); every other child gets SIGKILL then */
        void (*started)(pid_t pid, void *data); /* called once it runs, may be NULL */
        void *started_data;
} fm_spawn_opts;

/* Runs argv[0] (looked up in PATH) and waits. Returns the exit status (0..255),
 * 128+signal when killed, or a negative errno when it could not run at all.
 * The child's output is drained before waiting, so a chatty child cannot block. */
int fm_spawn(char *const argv[], fm_spawn_opts *o);

/* Same, failing with a message that quotes the command and its last output line
 * when the exit status is not 0. */
int fm_spawn_check(char *const argv[], fm_spawn_opts *o, fm_error *e);

/* Starts argv[0] (a full path) in a session of its own, outside this
 * process's children (no parent-death signal, nothing to reap): for what
 * must go on when the agent dies. Its stdin is /dev/null, its stdout and
 * stderr this process's. Does not wait. */
int fm_spawn_daemon(char *const argv[], fm_error *e);

/* The last non-empty line of s (program output) into buf: for messages. */
const char *fm_last_line(const char *s, char *buf, size_t n);
/* The first executable NAME on PATH, into out; false when there is none. */
bool fm_find_program(const char *name, char *out, size_t n);
