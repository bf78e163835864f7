/* fm-fence LXCPATH NAME: the target's guard of a restored copy's lease
 * (lease.h). Started by the agent before the restore, in a session of its
 * own, so that it outlives the agent; one per container (it holds an OFD
 * lock on FM_FENCE_LOCK while it runs). Every FM_FENCE_POLL_MS it reads the lease:
 * once lapsed, with the copy running, it freezes the copy and takes its
 * veth off the bridge, records "fenced" and ends. It ends too when the
 * lease is committed or removed (the migration's finish or abort). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate/lease.h"

int main(int argc, char **argv)
{
        if (argc != 3 || argv[1][0] != '/' || !fm_name_is_valid(argv[2])) {
                fprintf(stderr, "usage: fm-fence LXCPATH NAME (started by fastmigd)\n");
                return 2;
        }
        char path[700];
        snprintf(path, sizeof(path), "%s/%s/" FM_FENCE_LOCK, argv[1], argv[2]);
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_CREAT, 0600);
        if (fd < 0) {
                fprintf(stderr, "fm-fence: %s: %s\n", path, strerror(errno));
                return 1;
        }
        /* an OFD lock: the agent looks at it without taking it */
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_OFD_SETLK, &l) < 0)
                return 0; /* another one watches it */
        signal(SIGPIPE, SIG_IGN); /* its stderr may be a pipe whose reader died with the agent */
        while (!fm_lease_fence_poll(argv[1], argv[2]))
                usleep(FM_FENCE_POLL_MS * 1000);
        return 0;
}
