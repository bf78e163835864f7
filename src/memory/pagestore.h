/* Content-addressed page store (target side of pre-copy): pages are kept by
 * their keyed 128-bit hash in one file in the target's tmpfs, indexed by an
 * open-addressing table in memory. Docs: docs/PRECOPY.md. */
#pragma once
#include "util/util.h"

#define FM_PAGE_SIZE 4096
#define FM_HASH_KEY_SIZE 192 /* XXH3 secret: a fresh random one per migration */

typedef struct fm_page_hash {
        uint64_t lo, hi;
} fm_page_hash;

/* The keyed hash of one page (key: FM_HASH_KEY_SIZE random bytes). */
fm_page_hash fm_page_hash_of(const void *page, const uint8_t *key);
bool fm_page_is_zero(const void *page);

typedef struct fm_pagestore {
        int fd;              /* backing file, pages in insertion order */
        uint64_t npages, max_pages;
        fm_page_hash *slots; /* open addressing; {0,0} is empty */
        uint64_t *offsets;   /* page index in the file for each slot */
        uint64_t nslots;
        uint8_t *map;        /* read-only view of the file for gets, remapped as it grows */
        size_t map_len;
        uint8_t page[FM_PAGE_SIZE]; /* a page read when the file cannot be mapped */
} fm_pagestore;

/* Creates (truncates) the store at path for at most max_pages pages. */
int fm_pagestore_open(fm_pagestore *s, const char *path, uint64_t max_pages, fm_error *e);
void fm_pagestore_close(fm_pagestore *s);
bool fm_pagestore_has(const fm_pagestore *s, fm_page_hash h);
/* Adds a page under its hash (no-op when present). -ENOSPC when full or the
 * file system is. */
int fm_pagestore_put(fm_pagestore *s, fm_page_hash h, const void *page, fm_error *e);
/* Copies the page with hash h to out; -ENOENT when absent. */
int fm_pagestore_get(fm_pagestore *s, fm_page_hash h, void *out, fm_error *e);
/* The page with hash h in place (valid until the next call), NULL with e set
 * (ENOENT) when absent. */
/* Maps the store as far as it holds pages (grown in place where it can);
 * populate: fault the newly mapped part in now (before a freeze, rather
 * than page by page while frozen). */
int fm_pagestore_map(fm_pagestore *s, bool populate);
const uint8_t *fm_pagestore_ref(fm_pagestore *s, fm_page_hash h, fm_error *e);
