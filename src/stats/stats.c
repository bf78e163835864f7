#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double fm_t95(size_t df)
{
        static const double t[] = {0,      12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
                                   2.306,  2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                                   2.120,  2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
                                   2.064,  2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
        if (df == 0)
                return 0;
        if (df < sizeof(t) / sizeof(t[0]))
                return t[df];
        if (df <= 40)
                return 2.021;
        if (df <= 60)
                return 2.000;
        if (df <= 120)
                return 1.980;
        return 1.960;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

void fm_summarize(const double *x, size_t n, fm_summary *out)
{
        memset(out, 0, sizeof(*out));
        out->n = n;
        if (n == 0)
                return;
        double sum = 0;
        out->min = out->max = x[0];
        for (size_t i = 0; i < n; i++) {
                sum += x[i];
                if (x[i] < out->min)
                        out->min = x[i];
                if (x[i] > out->max)
                        out->max = x[i];
        }
        out->mean = sum / (double)n;
        double *s = malloc(n * sizeof(*s));
        if (s) {
                memcpy(s, x, n * sizeof(*s));
                qsort(s, n, sizeof(*s), cmp_double);
                out->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
                free(s);
        }
        if (n < 2)
                return;
        double ss = 0;
        for (size_t i = 0; i < n; i++)
                ss += (x[i] - out->mean) * (x[i] - out->mean);
        out->sd = sqrt(ss / (double)(n - 1));
        out->ci95 = fm_t95(n - 1) * out->sd / sqrt((double)n);
        out->cv = out->mean != 0 ? out->sd / fabs(out->mean) : 0;
}
