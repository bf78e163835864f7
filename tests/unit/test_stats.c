#include "stats/stats.h"
#include "tap.h"

int main(void)
{
        fm_summary s;
        /* Known values: 2 4 4 4 5 5 7 9 -> mean 5, sample sd sqrt(32/7) */
        double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
        fm_summarize(x, 8, &s);
        ok(s.n == 8, "n");
        ok(near(s.mean, 5.0, 1e-12), "mean 5 (got %g)", s.mean);
        ok(near(s.median, 4.5, 1e-12), "median of even count 4.5 (got %g)", s.median);
        ok(near(s.sd, 2.138089935, 1e-8), "sample sd 2.138 (got %.9f)", s.sd);
        ok(near(s.ci95, 2.365 * 2.138089935 / 2.828427125, 1e-6), "ci95 uses t(7)=2.365 (got %g)", s.ci95);
        ok(near(s.cv, 2.138089935 / 5, 1e-8), "cv = sd/mean (got %g)", s.cv);
        ok(s.min == 2 && s.max == 9, "min and max");
        ok(x[0] == 2 && x[7] == 9, "input left unsorted");

        double odd[] = {3, 1, 2};
        fm_summarize(odd, 3, &s);
        ok(near(s.median, 2.0, 1e-12), "median of odd count");

        /* The paper's Table I row "Blank Memory-Mig": n=10, sd 0.077 -> CI 0.055 with t(9) */
        ok(near(fm_t95(9) * 0.077 / 3.16227766, 0.0551, 1e-3), "t(9) gives the paper's CI scale");

        double one[] = {42};
        fm_summarize(one, 1, &s);
        ok(s.mean == 42 && s.sd == 0 && s.ci95 == 0 && s.cv == 0, "single value");
        fm_summarize(NULL, 0, &s);
        ok(s.n == 0 && s.mean == 0, "empty input");
        ok(fm_t95(1000) == 1.96, "large df tends to 1.96");
        return tap_done();
}
