#include "rounds.h"

enum fm_stop_rule fm_rounds_next(const fm_rounds_cfg *c, int round, uint64_t sent, uint64_t prev)
{
        if (sent <= c->dirty_threshold)
                return FM_STOP_THRESHOLD;
        if (round >= c->max_rounds)
                return FM_STOP_MAX_ROUNDS;
        /* round 1 sends the whole memory; shrinking is judged from round 3 on
         * (round 2 against round 1 compares dirty pages with all pages) */
        if (round >= 3 && (double)sent >= (double)prev * c->min_shrink)
                return FM_STOP_NO_PROGRESS;
        return FM_ROUNDS_GO_ON;
}

const char *fm_stop_rule_name(enum fm_stop_rule r)
{
        switch (r) {
        case FM_STOP_THRESHOLD: return "dirty_threshold";
        case FM_STOP_MAX_ROUNDS: return "max_rounds";
        case FM_STOP_NO_PROGRESS: return "no_progress";
        default: return "go_on";
        }
}
