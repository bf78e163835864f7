/* The page stream: how a file of pages (CRIU's pages-*.img, or a pre-copy
 * round) travels when the target may already hold some of its pages.
 * Records, concatenated; a data frame carries whole records only:
 *
 *   'L' page[4096]       a literal page; the receiver stores it under its hash
 *   'R' hi:u64 lo:u64    a page the receiver holds (big-endian keyed hash)
 *   'Z'                  a page of zeros
 *   'T' len:u16 bytes    the file's last, partial page (len < 4096)
 *   'C' len:u16 lz4[len] a literal page compressed with LZ4 (len <= 3840: sent
 *                        only when it saves at least 256 bytes)
 *
 * The receiver rebuilds the exact file; a reference it cannot resolve, an
 * unknown tag or a cut record is an error. Byte layout: docs/PROTOCOL.md. */
#pragma once
#include "memory/pagestore.h"

#define FM_PAGEREC_MAX (1 + FM_PAGE_SIZE)

/* A set of page hashes (what the sender knows the receiver holds). */
typedef struct fm_hashset {
        fm_page_hash *slots;
        uint64_t n, nslots;
} fm_hashset;
int fm_hashset_init(fm_hashset *s, uint64_t expect);
void fm_hashset_free(fm_hashset *s);
bool fm_hashset_has(const fm_hashset *s, fm_page_hash h);
int fm_hashset_add(fm_hashset *s, fm_page_hash h); /* grows as needed */

typedef struct fm_pagestream_stats {
        uint64_t literal, ref, zero, tail_bytes;
        uint64_t compressed; /* literals that travelled as 'C' */
        uint64_t bytes;      /* encoder: record bytes produced */
} fm_pagestream_stats;

#define FM_PAGE_LZ4_MAX (FM_PAGE_SIZE - 256)

/* Encodes one full page into out (FM_PAGEREC_MAX bytes of room); held: the
 * pages the receiver has, updated with every literal sent; compress: try LZ4
 * on literals. Returns the record's length, or -ENOMEM. */
int fm_pagestream_put_page(const uint8_t *page, const uint8_t *key, fm_hashset *held, bool compress, uint8_t *out,
                           fm_pagestream_stats *st);
/* Encodes a partial last page (len < 4096). */
int fm_pagestream_put_tail(const uint8_t *bytes, size_t len, uint8_t *out, fm_pagestream_stats *st);

/* How many bytes a buffer of whole records rebuilds (a 1-byte zero record
 * is a page): pure, checked before anything is written. */
int fm_pagestream_decoded_size(const uint8_t *buf, size_t len, uint64_t *size, fm_error *e);
/* Decodes a buffer of whole records, appending the rebuilt bytes to out_fd
 * and storing literal pages in store. xxh64 (an XXH64_state_t *, may be
 * NULL) is updated with the rebuilt bytes. */
int fm_pagestream_decode(const uint8_t *buf, size_t len, const uint8_t *key, fm_pagestore *store, int out_fd,
                         void *xxh64, fm_pagestream_stats *st, fm_error *e);
