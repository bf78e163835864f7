/* fm-codec-speed: how fast the page encoder turns pages into records, with
 * and without LZ4, on incompressible pages and on pages half of which repeat
 * one word (the memory workload's two fills), against what a link carries.
 * One core, the real encoder (fm_pagestream_put_page), every page a literal.
 *   fm-codec-speed [MIB]        (default 256) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "memory/pagestream.h"

static double now_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void fill(uint64_t *w, size_t words, bool half)
{
        uint64_t x = 88172645463325252ull;
        for (size_t i = 0; i < words; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                size_t k = i % (FM_PAGE_SIZE / 8);
                w[i] = half && k >= FM_PAGE_SIZE / 16 ? w[i - k] : x;
        }
}

int main(int argc, char **argv)
{
        size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
        if (mib < 1 || mib > 65536) {
                fprintf(stderr, "usage: fm-codec-speed [MIB]\n");
                return 2;
        }
        size_t len = mib << 20, pages = len / FM_PAGE_SIZE;
        uint64_t *mem = malloc(len);
        uint8_t *out = malloc(FM_PAGEREC_MAX);
        uint8_t key[FM_HASH_KEY_SIZE];
        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (uint8_t)(i * 29 + 3);
        if (!mem || !out)
                return 1;
        printf("page encoder, %zu MiB of pages, one core; a 1 Gbit/s link carries 125 MB/s\n", mib);
        printf("%-7s %-4s %10s %12s\n", "fill", "lz4", "MB/s", "bytes/page");
        for (int half = 0; half < 2; half++) {
                fill(mem, len / 8, half);
                /* lz = -1: an untimed pass, so that no timed one pays for
                 * memory touched for the first time */
                for (int lz = -1; lz < 2; lz++) {
                        fm_hashset held;
                        if (fm_hashset_init(&held, pages) < 0)
                                return 1;
                        fm_pagestream_stats st = {0};
                        double t = now_ms();
                        for (size_t p = 0; p < pages; p++)
                                if (fm_pagestream_put_page((const uint8_t *)mem + p * FM_PAGE_SIZE, key, &held, lz > 0,
                                                           out, &st) < 0)
                                        return 1;
                        double ms = now_ms() - t;
                        if (lz >= 0)
                                printf("%-7s %-4s %10.0f %12.0f\n", half ? "half" : "random", lz ? "yes" : "no",
                               (double)len / 1e3 / ms, (double)st.bytes / (double)pages);
                        fm_hashset_free(&held);
                }
        }
        free(mem);
        free(out);
        return 0;
}
