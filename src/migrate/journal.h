/* The source agent's migration journal: one small JSON file per migration
 * under STATE/journal, written (and fsynced, file and directory) before the
 * step it names is taken, removed once the migration has ended either way.
 * A restarted agent reads it to finish or undo what a dead one left
 * (src/migrate/recover.c; docs/RECOVERY.md has the rule). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "util/util.h"

#define FM_JOURNAL_DIR "journal"
#define FM_JOURNAL_MAX_BYTES 4096

/* The steps, in order: each is recorded before it is taken. */
typedef enum fm_journal_step {
        FM_JOURNAL_PLANNED,   /* the target prepared a copy (it may restore it early, never thaw it) */
        FM_JOURNAL_FROZEN,    /* the source freezes now: the target may run the service from here */
        FM_JOURNAL_COMMITTED, /* the target runs it with all its memory: the source copy goes */
        FM_JOURNAL_ROLLEDBACK, /* the source copy runs again; the target's, fenced by its lapsed lease
                                * (lease.h), is still to be removed */
} fm_journal_step;

typedef struct fm_journal_rec {
        fm_journal_step step;
        char name[FM_NAME_MAX + 1]; /* the container */
        char id[33];                /* this migration (hex) */
        char to_host[32];           /* the target: its fleet name ... */
        char to_addr[16];           /* ... and agent */
        uint16_t to_port;
        char service_ip[16];        /* "" if none (nothing to steer) */
        bool moving_tree;           /* shared: the tree moved to the target's disk ... */
        char shared_rel[200];       /* ... from there, under the volume (discarded on commit) */
        bool leases;                /* the target runs its copy only on a lease from this agent (lease.h) */
        int64_t started;            /* wall clock, s */
        int64_t since;              /* when the step was recorded, wall clock, s */
} fm_journal_rec;

const char *fm_journal_step_name(fm_journal_step s);

/* STATE/journal/NAME.json, atomically replaced and fsynced. */
int fm_journal_write(const char *state, const fm_journal_rec *r, fm_error *e);
/* Reads one record; every field is checked. */
int fm_journal_read(const char *path, fm_journal_rec *r, fm_error *e);
int fm_journal_parse(const char *text, size_t len, fm_journal_rec *r, fm_error *e);
/* Removes NAME's record (missing is not an error); fsyncs the directory. */
int fm_journal_remove(const char *state, const char *name);
/* The names of the records in STATE/journal (at most max), sorted. */
int fm_journal_list(const char *state, char (*names)[FM_NAME_MAX + 1], int max, fm_error *e);
void fm_journal_path(const char *state, const char *name, char *buf, size_t n);
/* A fresh migration id. */
void fm_journal_new_id(char id[33]);
