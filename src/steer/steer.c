#include "steer.h"

#include <string.h>

#include "util/spawn.h"

int fm_steer_open(fm_steer *s, const fm_steer_cfg *cfg, fm_error *e)
{
        s->cfg = *cfg;
        s->rt.fd = -1;
        pthread_mutex_init(&s->lock, NULL);
        if (cfg->kind == FM_STEER_ROUTE)
                return fm_router_open(&s->rt, cfg->netns, e);
        return 0;
}

void fm_steer_close(fm_steer *s)
{
        if (s)
                fm_router_close(&s->rt);
}

static int run_command(const fm_steer *s, const char *phase, const char *ip, const fm_host *from, const fm_host *to,
                       fm_error *e)
{
        _cleanup_free_ char *old_addr = fm_strdupf("FASTMIG_OLD_ADDR=%s", from ? from->addr : "");
        _cleanup_free_ char *new_addr = fm_strdupf("FASTMIG_NEW_ADDR=%s", to->addr);
        _cleanup_free_ char *via = fm_strdupf("FASTMIG_NEW_ROUTE_VIA=%s", to->route_via);
        if (!old_addr || !new_addr || !via)
                return fm_err(e, ENOMEM, "out of memory");
        const char *env[] = {old_addr, new_addr, via, NULL};
        char *argv[] = {(char *)s->cfg.command, (char *)phase, (char *)ip, (char *)(from ? from->name : "-"),
                        (char *)to->name, NULL};
        /* its own process group: a call that times out ends with all it
         * started (an ssh to a router must not act after a rollback) */
        fm_spawn_opts o = {.env_add = env, .timeout_ms = s->cfg.timeout_ms ? s->cfg.timeout_ms : FM_STEER_TIMEOUT_MS,
                           .own_group = true};
        int r = fm_spawn_check(argv, &o, e);
        free(o.output);
        return r < 0 ? fm_err_wrap(e, "steering hook (%s %s to %s)", phase, ip, to->name) : 0;
}

int fm_steer_set(fm_steer *s, const char *phase, const char *ip, const fm_host *from, const fm_host *to, fm_error *e)
{
        int r;
        pthread_mutex_lock(&s->lock);
        switch (s->cfg.kind) {
        case FM_STEER_ROUTE: r = fm_router_set(&s->rt, ip, to->route_via, e); break;
        case FM_STEER_COMMAND: r = run_command(s, phase, ip, from, to, e); break;
        case FM_STEER_GARP: r = 0; break;
        default: r = fm_err(e, EINVAL, "unknown steering"); break;
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}
