/* A minimal TAP producer for unit tests: exit 0 when all pass, 1 otherwise. */
#pragma once
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;
#define ok(cond, ...)                                                                    \
        do {                                                                             \
                int tap_c_ = !!(cond);                                                   \
                tap_n++;                                                                 \
                if (tap_c_) {                                                              \
                        printf("ok %d - ", tap_n);                                       \
                } else {                                                                 \
                        tap_failed++;                                                    \
                        printf("not ok %d - ", tap_n);                                   \
                }                                                                        \
                printf(__VA_ARGS__);                                                     \
                printf("\n");                                                            \
                if (!tap_c_)                                                             \
                        printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
        } while (0)
#define near(a, b, eps) ((a) - (b) < (eps) && (b) - (a) < (eps))
static inline int tap_done(void)
{
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}
