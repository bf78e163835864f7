#include "mobility/planner.h"

#include <math.h>
#include <string.h>

int64_t fm_plan_transfer_ms(uint64_t bytes, double link_mbit)
{
        if (link_mbit <= 0)
                return 0;
        return (int64_t)ceil((double)bytes * 8 / (link_mbit * 1e6) * 1000);
}

int64_t fm_plan_estimate_ms(const fm_estimate_in *in, char *how, size_t len)
{
        double model = FM_PLAN_FIXED_MS + (double)fm_plan_transfer_ms(in->mem_bytes + in->disk_bytes, in->link_mbit);
        double hist = 0;
        size_t nh = in->nhistory < FM_PLAN_HISTORY ? in->nhistory : FM_PLAN_HISTORY;
        for (size_t i = 0; i < nh; i++)
                if (isfinite(in->history_ms[i]) && in->history_ms[i] > hist)
                        hist = in->history_ms[i];
        double est = (model > hist ? model : hist) * FM_PLAN_MARGIN;
        if (how) {
                int n = snprintf(how, len, "model %.1f s (%.1f MiB at %.0f Mbit/s + %.1f s)", model / 1000,
                                 (double)(in->mem_bytes + in->disk_bytes) / (1 << 20), in->link_mbit,
                                 FM_PLAN_FIXED_MS / 1000.0);
                if (n >= 0 && (size_t)n < len && nh)
                        snprintf(how + n, len - (size_t)n, ", history max %.1f s of %zu, x%.1f", hist / 1000, nh,
                                 FM_PLAN_MARGIN);
                else if (n >= 0 && (size_t)n < len)
                        snprintf(how + n, len - (size_t)n, ", no history, x%.1f", FM_PLAN_MARGIN);
        }
        return (int64_t)ceil(est);
}

int64_t fm_plan_switch_ms(const fm_switch_in *in, char *how, size_t len)
{
        double worst = 0, best = INFINITY;
        size_t k = in->n < FM_PLAN_HISTORY ? in->n : FM_PLAN_HISTORY;
        for (size_t i = 0; i < k; i++) {
                if (!isfinite(in->downtimes_ms[i]) || in->downtimes_ms[i] <= 0)
                        continue;
                worst = in->downtimes_ms[i] > worst ? in->downtimes_ms[i] : worst;
                best = in->downtimes_ms[i] < best ? in->downtimes_ms[i] : best;
        }
        /* a busy host's CRIU runs slower, more than its share of a CPU
         * says: measured on 2 cores, one kept busy (load 1.2-1.35 per CPU
         * against 0.6-0.9 with the testbed alone), a blank container's
         * switch went from 150-230 ms to 248-950 ms, varying threefold
         * between migrations of one run: more than a few of them bound, so
         * there the model is the least */
        double busy = isfinite(in->load_per_cpu) && 2 * in->load_per_cpu > 1 ? 2 * in->load_per_cpu : 1;
        busy = busy > 8 ? 8 : busy; /* a wrong figure does not make it absurd */
        double model = (FM_PLAN_SWITCH_MS + (double)fm_plan_transfer_ms(in->mem_bytes, in->link_mbit)) * busy;
        /* its own, unless the host is busy; else only if they are longer */
        bool use_hist = worst > 0 && ((!in->fleet && !(in->load_per_cpu > FM_PLAN_LOAD_BUSY)) || worst > model);
        /* a quarter more, or as much as its own switches differ if more */
        double base = use_hist ? worst : model, guard = base / 4;
        if (use_hist && !in->fleet && worst - best > guard)
                guard = worst - best;
        if (guard < FM_PLAN_SWITCH_GUARD_MS)
                guard = FM_PLAN_SWITCH_GUARD_MS;
        if (how && use_hist)
                snprintf(how, len, "the longest of %zu %sswitches, %.0f ms, + %.0f ms", k, in->fleet ? "of the fleet's " : "",
                         worst, guard);
        else if (how)
                snprintf(how, len, "%s: %d ms + its %.1f MiB of memory over the link, x%.1f for the host's load, + %.0f ms",
                         worst > 0 ? (in->load_per_cpu > FM_PLAN_LOAD_BUSY ? "the host is busy" : "the fleet's are shorter") : "none known",
                         FM_PLAN_SWITCH_MS, (double)in->mem_bytes / (1 << 20), busy, guard);
        return (int64_t)ceil(base + guard);
}

/* The trace time, between points a and b (b the first in another cell),
 * at which the user leaves a's cell: by bisection on the straight segment
 * between them (positions), or b's time (cells). */
static int64_t crossing(const fm_trace_point *a, const fm_trace_point *b, const fm_coverage *c)
{
        const fm_cell *from = fm_coverage_cell(c, a->cell);
        if (!a->has_xy || !from)
                return b->t_ms;
        double lo = 0, hi = 1; /* in from at lo, out of it at hi */
        for (int i = 0; i < 30 && (hi - lo) * (double)(b->t_ms - a->t_ms) > 1; i++) {
                double mid = (lo + hi) / 2;
                double x = a->x + (b->x - a->x) * mid, y = a->y + (b->y - a->y) * mid;
                if (fm_cell_contains(from, x, y))
                        lo = mid;
                else
                        hi = mid;
        }
        return a->t_ms + (int64_t)ceil(hi * (double)(b->t_ms - a->t_ms));
}

int fm_plan_handovers(const fm_trace *t, const fm_coverage *c, int64_t estimate_ms, fm_handover_plan **out, size_t *n,
                      fm_error *e)
{
        *out = NULL;
        *n = 0;
        if (t->n == 0)
                return 0;
        fm_handover_plan *h = NULL;
        size_t nh = 0, cap = 0;
        const fm_cell *cur = fm_coverage_cell(c, t->p[0].cell);
        if (!cur)
                return fm_err(e, ENOENT, "the trace's first point has no cell on the map (not resolved?)");
        for (size_t i = 1; i < t->n; i++) {
                const fm_cell *next = fm_coverage_cell(c, t->p[i].cell);
                if (!next)
                        return free(h), fm_err(e, ENOENT, "point %zu has no cell on the map", i);
                if (!strcmp(next->host, cur->host)) {
                        cur = next;
                        continue;
                }
                if (nh == cap) {
                        cap = cap ? cap * 2 : 16;
                        fm_handover_plan *g = realloc(h, cap * sizeof(*g));
                        if (!g)
                                return free(h), fm_err(e, ENOMEM, "out of memory");
                        h = g;
                }
                fm_handover_plan *p = &h[nh++];
                memset(p, 0, sizeof(*p));
                p->at = i;
                snprintf(p->from_cell, sizeof(p->from_cell), "%s", cur->id);
                snprintf(p->to_cell, sizeof(p->to_cell), "%s", next->id);
                snprintf(p->from_host, sizeof(p->from_host), "%s", cur->host);
                snprintf(p->to_host, sizeof(p->to_host), "%s", next->host);
                p->deadline_ms = crossing(&t->p[i - 1], &t->p[i], c);
                int64_t earliest = nh > 1 ? h[nh - 2].start_ms + estimate_ms : t->p[0].t_ms;
                p->start_ms = p->deadline_ms - estimate_ms;
                if (p->start_ms < earliest)
                        p->start_ms = earliest;
                p->tight = p->start_ms + estimate_ms > p->deadline_ms;
                cur = next;
        }
        *out = h;
        *n = nh;
        return 0;
}

const char *fm_trace_cell_at(const fm_trace *t, int64_t t_ms)
{
        if (t->n == 0)
                return NULL;
        size_t lo = 0, hi = t->n; /* the last point with t <= t_ms */
        while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (t->p[mid].t_ms <= t_ms)
                        lo = mid;
                else
                        hi = mid;
        }
        return t->p[lo].cell;
}

bool fm_trace_on_path(const fm_trace *t, int64_t t_ms, const char *cell)
{
        const char *then = fm_trace_cell_at(t, t_ms - FM_PLAN_ONPATH_MS);
        if (then && !strcmp(then, cell))
                return true;
        for (size_t i = 0; i < t->n; i++) {
                if (t->p[i].t_ms < t_ms - FM_PLAN_ONPATH_MS)
                        continue;
                if (t->p[i].t_ms > t_ms + FM_PLAN_ONPATH_MS)
                        break;
                if (!strcmp(t->p[i].cell, cell))
                        return true;
        }
        return false;
}
