#include "recover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lxc/container.h"
#include "migrate/lease.h"
#include "proto/proto.h"
#include "steer/steer.h"
#include "storage/shared.h"

/* The pids whose command line has an argument equal to dir (at most max). */
static int procs_on(const char *dir, pid_t *pids, int max)
{
        DIR *d = opendir("/proc");
        if (!d)
                return 0;
        int n = 0;
        struct dirent *de;
        size_t dl = strlen(dir);
        while ((de = readdir(d)) && n < max) {
                char *end = NULL;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 1 || pid == getpid())
                        continue;
                char path[64], buf[4096];
                snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t len = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (len <= 0)
                        continue;
                buf[len] = '\0';
                for (char *a = buf; a < buf + len; a += strlen(a) + 1)
                        if (strlen(a) == dl && !memcmp(a, dir, dl)) {
                                pids[n++] = (pid_t)pid;
                                break;
                        }
        }
        closedir(d);
        return n;
}

int fm_recover_reap(const char *images_dir, int wait_ms)
{
        pid_t pids[32];
        int n = procs_on(images_dir, pids, 32);
        uint64_t deadline = fm_now_ns() + (uint64_t)wait_ms * 1000000ull;
        while (n > 0 && fm_now_ns() < deadline) {
                usleep(50000);
                n = procs_on(images_dir, pids, 32);
        }
        return n;
}

void fm_recover_kill(const char *images_dir)
{
        pid_t pids[32];
        for (int tries = 0; tries < 50; tries++) {
                int n = procs_on(images_dir, pids, 32);
                if (n == 0)
                        return;
                for (int i = 0; i < n; i++)
                        kill(pids[i], SIGKILL);
                usleep(100000);
        }
}

static void say(const fm_host_paths *p, const fm_journal_rec *r, const char *what, const char *why)
{
        fprintf(stderr, "fastmigd[%s]: recovery of %s (to %s, %s): %s%s%s\n", p->host, r->name, r->to_host,
                fm_journal_step_name(r->step), what, why ? ": " : "", why ? why : "");
}

/* The source copy runs again: on its bridge, thawed, its traffic here.
 * Each step is idempotent. */
static int thaw_here(const fm_host_paths *p, const fm_journal_rec *r, fm_error *e)
{
        fm_error ignore = {0};
        fm_ct_port port;
        if (fm_ct_port_get(p->lxcpath, r->name, &port, &ignore) == 0 && fm_ct_port_set(&port, true, e) < 0) {
                say(p, r, "putting its veth back on the bridge failed", e->msg);
                return -EAGAIN;
        }
        if (fm_ct_unfreeze(p->lxcpath, r->name, e) < 0) {
                say(p, r, "thawing failed", e->msg);
                return -EAGAIN;
        }
        fm_ct_announce(p->lxcpath, r->name, &ignore);
        if (fm_mig_steer(p, FM_STEER_ROLLBACK, r->service_ip, r->to_host, p->host, e) < 0) {
                say(p, r, "steering back failed", e->msg);
                return -EAGAIN;
        }
        return 0;
}

/* No commit was recorded: this copy runs again once no copy can run on
 * the target: the target said it dropped its own, or (a target that keeps
 * leases) no lease this agent or a dead predecessor granted can still
 * hold. Only while this copy is still here to run: a source copy that is
 * gone (the host rebooted, someone removed it) leaves the target's, which
 * may be the only one, for an operator. */
static int roll_back(const fm_host_paths *p, const fm_journal_rec *r, fm_error *e)
{
        fm_ct_info info;
        if (fm_ct_info_get(p->lxcpath, r->name, &info, e) < 0) {
                say(p, r, "cannot read the source copy's state", e->msg);
                return -EAGAIN;
        }
        if (!info.defined || !info.running) {
                say(p, r, "the source copy does not run any more; the target's copy, if any, is left as it is for an "
                          "operator (docs/RECOVERY.md)", NULL);
                return fm_err(e, ENOENT, "%s is not running on %s", r->name, p->host);
        }
        if (r->step == FM_JOURNAL_ROLLEDBACK) { /* thawed already (again, harmlessly); the target's copy to go */
                if (thaw_here(p, r, e) < 0)
                        return -EAGAIN;
                if (fm_target_call_abort(r->name, r->to_addr, r->to_port, e) < 0) {
                        say(p, r, "the target has not removed its fenced copy yet", e->msg);
                        return -EAGAIN;
                }
                say(p, r, "the target removed its fenced copy", NULL);
                return 0;
        }
        if (fm_target_call_abort(r->name, r->to_addr, r->to_port, e) == 0) {
                if (thaw_here(p, r, e) < 0)
                        return -EAGAIN;
                say(p, r, "rolled back: the service runs here again", NULL);
                return 0;
        }
        if (!r->leases || fm_lease_now_ns() < fm_lease_restart_safe_ns()) {
                say(p, r, "the target did not confirm it runs no copy; the source copy stays frozen", e->msg);
                return -EAGAIN;
        }
        /* every lease granted before this agent started has lapsed: the
         * target's copy, if any, is fenced */
        fm_journal_rec rb = *r;
        rb.step = FM_JOURNAL_ROLLEDBACK;
        rb.since = (int64_t)time(NULL);
        if (p->state && fm_journal_write(p->state, &rb, e) < 0) {
                say(p, r, "recording the rollback failed", e->msg);
                return -EAGAIN;
        }
        if (thaw_here(p, r, e) < 0)
                return -EAGAIN;
        say(p, r, "rolled back: the service runs here again; the target's copy, fenced by its lapsed lease, is removed "
                  "once the target answers", NULL);
        return -EAGAIN;
}

/* The commit was recorded: the target's copy is the service. */
static int roll_forward(const fm_host_paths *p, const fm_journal_rec *r, fm_error *e)
{
        if (fm_mig_steer(p, FM_STEER_COMMIT, r->service_ip, p->host, r->to_host, e) < 0) {
                say(p, r, "steering to the target failed", e->msg);
                return -EAGAIN;
        }
        fm_error ignore = {0};
        fm_ct_port port;
        /* its connections live on the target: this copy must not reset them */
        if (fm_ct_port_get(p->lxcpath, r->name, &port, &ignore) == 0)
                fm_ct_port_set(&port, false, &ignore);
        if (fm_ct_destroy(p->lxcpath, r->name, e) < 0) {
                say(p, r, "destroying the source copy failed", e->msg);
                return -EAGAIN;
        }
        if (r->moving_tree && r->shared_rel[0] && p->shared.path[0])
                fm_shared_discard(p->shared.path, r->shared_rel, &ignore);
        json_object *req = json_object_new_object(), *reply = NULL;
        json_object_object_add(req, "op", json_object_new_string("finish"));
        json_object_object_add(req, "name", json_object_new_string(r->name));
        int q = fm_call(r->to_addr, r->to_port, req, &reply, 30000, e);
        json_object_put(req);
        if (q < 0) {
                say(p, r, "the target did not answer `finish'", e->msg);
                return -EAGAIN;
        }
        q = fm_reply_check(reply, e);
        json_object_put(reply);
        if (q < 0 && q != -EPERM) { /* EPERM: it has finished already */
                say(p, r, "the target's `finish' failed", e->msg);
                return -EAGAIN; /* its copy may be fenced: asked again */
        }
        say(p, r, "committed: the service runs on the target", NULL);
        return 0;
}

int fm_recover_one(const fm_host_paths *p, const fm_journal_rec *r, fm_error *e)
{
        char img[600];
        snprintf(img, sizeof(img), "%s/%s", p->images, r->name);
        /* a dead agent's dump may still be running on the frozen tasks:
         * never killed (CRIU's parasite may be inside them), awaited */
        if (fm_recover_reap(img, FM_RECOVER_REAP_MS) > 0) {
                say(p, r, "checkpoint programs of the dead agent still run on its images; waiting for them", NULL);
                return -EAGAIN;
        }
        int q = 0;
        fm_error ignore = {0};
        switch (r->step) {
        case FM_JOURNAL_PLANNED:
                /* never dumped: the target cannot run it; one request to
                 * drop what it prepared (its own expiry does it otherwise) */
                if (fm_target_call_abort(r->name, r->to_addr, r->to_port, &ignore) < 0)
                        say(p, r, "the target did not drop its prepared copy", ignore.msg);
                else
                        say(p, r, "ended before the freeze", NULL);
                break;
        case FM_JOURNAL_FROZEN:
        case FM_JOURNAL_ROLLEDBACK: q = roll_back(p, r, e); break;
        case FM_JOURNAL_COMMITTED: q = roll_forward(p, r, e); break;
        }
        if (q < 0) /* the journal stays: later, or an operator */
                return q;
        fm_rm_rf(img);
        snprintf(img, sizeof(img), "%s/.%s.ps", p->images, r->name); /* a lazy dump's page-server socket */
        fm_rm_rf(img);
        if (p->state)
                fm_journal_remove(p->state, r->name);
        return q;
}

/* keep: the entry belongs to a container in keep (NAME, or .NAME.*) */
static bool kept(const char *entry, char (*keep)[FM_NAME_MAX + 1], int nkeep)
{
        const char *n = entry[0] == '.' ? entry + 1 : entry;
        for (int i = 0; i < nkeep; i++) {
                size_t l = strlen(keep[i]);
                if (!strncmp(n, keep[i], l) && (n[l] == '\0' || (entry[0] == '.' && n[l] == '.')))
                        return true;
        }
        return false;
}

int fm_recover_sweep_images(const fm_host_paths *p, char (*keep)[FM_NAME_MAX + 1], int nkeep)
{
        DIR *d = opendir(p->images);
        if (!d)
                return 0;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || kept(de->d_name, keep, nkeep))
                        continue;
                char path[600];
                snprintf(path, sizeof(path), "%s/%s", p->images, de->d_name);
                if (fm_rm_rf(path) == 0)
                        n++;
        }
        closedir(d);
        return n;
}
