/* What every part of the orchestrator uses: its clock, ids and log. */
#include <openssl/rand.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "orch/orch.h"

int64_t fm_orch_now_ms(void) { return fm_wall_ms(); }

void fm_orch_new_id(char id[17])
{
        unsigned char b[8];
        if (RAND_bytes(b, sizeof(b)) != 1)
                abort(); /* no randomness: ids could repeat */
        for (int i = 0; i < 8; i++)
                snprintf(id + 2 * i, 3, "%02x", b[i]);
}

void fm_orch_log(fm_orch *o, const char *level, json_object *extra, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_object *l = extra ? extra : json_object_new_object();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char t[80];
        snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        json_object_object_add(l, "ts", json_object_new_string(t));
        json_object_object_add(l, "level", json_object_new_string(level));
        json_object_object_add(l, "msg", json_object_new_string(msg));
        pthread_mutex_lock(&o->log_lock);
        fprintf(o->log, "%s\n", json_object_to_json_string_ext(l, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(o->log);
        pthread_mutex_unlock(&o->log_lock);
        json_object_put(l);
}

void fm_orch_wait(fm_orch *o, int ms)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->changed, &o->lock, &ts);
}
