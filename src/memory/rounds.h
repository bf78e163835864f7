/* When to stop pre-copy rounds (the paper's control "number 4"). */
#pragma once
#include <stdint.h>

typedef struct fm_rounds_cfg {
        int max_rounds;           /* the paper's fixed iteration number */
        uint64_t dirty_threshold; /* pages: at or below, the final dump starts */
        double min_shrink;        /* a round must send less than this share of the one before */
} fm_rounds_cfg;

enum fm_stop_rule {
        FM_ROUNDS_GO_ON = 0,
        FM_STOP_THRESHOLD,   /* dirty set small enough */
        FM_STOP_MAX_ROUNDS,  /* fixed number of rounds reached */
        FM_STOP_NO_PROGRESS, /* dirty set stopped shrinking: pages change faster than the link carries */
};

/* Decides after round `round` (1-based) sent `sent` pages; `prev` is what
 * round-1 sent (ignored for round 1, which sends everything). */
enum fm_stop_rule fm_rounds_next(const fm_rounds_cfg *c, int round, uint64_t sent, uint64_t prev);
const char *fm_stop_rule_name(enum fm_stop_rule r);
