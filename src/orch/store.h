/* The orchestrator's state in SQLite (WAL, synchronous FULL): clients and
 * their hashed tokens, services, subscriptions, migrations and the
 * notifications still to deliver. The schema carries its version
 * (PRAGMA user_version) and is brought up to date on open, in one
 * transaction (the users' last known cells too). One connection, one recursive lock: a caller that needs
 * several statements to be one step takes the lock and runs BEGIN/COMMIT.
 * docs/ORCHESTRATOR.md has the tables. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include "util/util.h"

typedef struct fm_store fm_store;

#define FM_STORE_SCHEMA 2

/* Opens (creating it and its schema when new) the database at path. A
 * database of a newer schema than this program knows is refused. */
int fm_store_open(const char *path, fm_store **out, fm_error *e);
/* The same, the schema brought to version at most (tests: a database an
 * older program wrote). */
int fm_store_open_at(const char *path, int version, fm_store **out, fm_error *e);
void fm_store_close(fm_store *s);

void fm_store_lock(fm_store *s);
void fm_store_unlock(fm_store *s);
/* A transaction: the lock, then BEGIN IMMEDIATE (the lock is released when
 * that fails); fm_store_end commits (or rolls back when commit is false, or
 * when the commit fails) and releases the lock. */
int fm_store_begin(fm_store *s, fm_error *e);
int fm_store_end(fm_store *s, bool commit, fm_error *e);

/* Runs one statement with its parameters, given by types: 's' a string
 * (NULL binds NULL), 'i' an int64_t, 'd' a double. Returns the rows it
 * changed, or -errno with SQLite's message in *e (-EEXIST for a unique
 * constraint). */
int fm_store_run(fm_store *s, fm_error *e, const char *sql, const char *types, ...);

/* Runs a query: a new array of objects, one per row, keyed by the result's
 * column names; a column named j_NAME holds JSON and comes back parsed as
 * NAME. NULL on failure, with *e set. */
json_object *fm_store_rows(fm_store *s, fm_error *e, const char *sql, const char *types, ...);

/* The rowid of the last insert on this connection (under the lock). */
int64_t fm_store_last_id(fm_store *s);
