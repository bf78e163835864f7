/* fm-criu-wrap: stands in for `criu` on the PATH of lxc-checkpoint runs.
 * For a dump it freezes the container's cgroup itself (the v1 freezer,
 * polled every 100 us) and then execs the real CRIU with the same arguments.
 * Why: lxc-checkpoint spends 20-45 ms starting up (config, `criu --version`)
 * before it runs `criu dump`; freezing here, and not before lxc-checkpoint
 * starts, keeps that out of the service's downtime, and CRIU itself would
 * poll the freezer only every 100 ms. CRIU leaves a cgroup that was frozen
 * before it started frozen after the dump (--leave-running).
 * For a restore started early (FASTMIG_WAIT_COMPLETE set) it waits until the
 * images are complete, so LXC's start-up overlaps the dump and the transfer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int freeze(const char *cg)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/freezer.state", cg);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned i = 0;; i++) {
                if (i % 1000 == 0 && pwrite(fd, "FROZEN", 6, 0) < 0) {
                        int err = -errno;
                        close(fd);
                        return err;
                }
                char cur[16] = "";
                if (pread(fd, cur, sizeof(cur) - 1, 0) > 0 && !strncmp(cur, "FROZEN", 6))
                        break;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec > 10) {
                        close(fd);
                        return -ETIMEDOUT;
                }
                usleep(100);
        }
        close(fd);
        return 0;
}

/* An early restore: lxc-checkpoint -r started while the images were still
 * travelling; hold `criu restore' until the agent marks them complete. */
static int wait_images(void)
{
        const char *done = getenv("FASTMIG_WAIT_COMPLETE"), *abort_m = getenv("FASTMIG_WAIT_ABORT");
        if (!done)
                return 0;
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                if (access(done, F_OK) == 0)
                        return 0;
                if (abort_m && access(abort_m, F_OK) == 0) {
                        fprintf(stderr, "fm-criu-wrap: restore aborted before the images were complete\n");
                        return -ECANCELED;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec > 120) {
                        fprintf(stderr, "fm-criu-wrap: images not complete after 120 s\n");
                        return -ETIMEDOUT;
                }
                usleep(100);
        }
}

int main(int argc, char **argv)
{
        const char *real = getenv("FASTMIG_REAL_CRIU");
        if (!real || !*real) {
                fprintf(stderr, "fm-criu-wrap: FASTMIG_REAL_CRIU is not set\n");
                return 127;
        }
        if (argc > 1 && !strcmp(argv[1], "dump"))
                for (int i = 2; i + 1 < argc; i++)
                        if (!strcmp(argv[i], "--freeze-cgroup")) {
                                int r = freeze(argv[i + 1]);
                                if (r < 0) /* CRIU will freeze it, slower */
                                        fprintf(stderr, "fm-criu-wrap: freezing %s: %s\n", argv[i + 1], strerror(-r));
                                break;
                        }
        if (argc > 1 && !strcmp(argv[1], "restore") && wait_images() < 0)
                return 1;
        argv[0] = (char *)real;
        execv(real, argv);
        fprintf(stderr, "fm-criu-wrap: exec %s: %s\n", real, strerror(errno));
        return 127;
}
