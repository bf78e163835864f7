/* Summary statistics for repeated measurements (the paper's tables). */
#pragma once
#include <stddef.h>

typedef struct fm_summary {
        size_t n;
        double mean, median, sd, ci95, cv, min, max;
} fm_summary;

/* Sample standard deviation (n-1), 95% CI half-width with Student's t for
 * n-1 degrees of freedom, coefficient of variation sd/mean. n == 0 gives all
 * zeros; n == 1 gives sd = ci95 = cv = 0. The input is not modified. */
void fm_summarize(const double *x, size_t n, fm_summary *out);
/* Two-sided 95% Student t quantile for df degrees of freedom. */
double fm_t95(size_t df);
