#include "util/job.h"

#include "util/cancel.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

static void *job_main(void *p)
{
        fm_job *j = p;
        fm_cancel_bind(j->group);
        j->r = j->fn(j->arg, &j->err);
        j->done_at = fm_now_ms();
        atomic_store(&j->done, true);
        return NULL;
}

int fm_job_start(fm_job *j, const char *what, int (*fn)(void *, fm_error *), void (*cancel)(void *), void *arg,
                 fm_error *e)
{
        assert(!j->started); /* a job runs once */
        memset(j, 0, sizeof(*j));
        j->what = what;
        j->fn = fn;
        j->cancel = cancel;
        j->arg = arg;
        j->group = fm_cancel_bound();
        atomic_store(&j->done, false);
        if (pthread_create(&j->thread, NULL, job_main, j) != 0)
                return fm_err(e, EAGAIN, "cannot start %s", what);
        j->started = true;
        return 0;
}

bool fm_job_running(const fm_job *j) { return j->started; }

bool fm_job_done(fm_job *j) { return j->started && atomic_load(&j->done); }

int fm_job_join(fm_job *j)
{
        if (!j->started)
                return 0;
        pthread_join(j->thread, NULL);
        j->started = false;
        return j->r;
}

int fm_job_cancel(fm_job *j)
{
        if (!j->started)
                return 0;
        if (j->cancel && !atomic_load(&j->done))
                j->cancel(j->arg);
        return fm_job_join(j);
}
