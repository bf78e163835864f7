#include "orch/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

struct fm_store {
        sqlite3 *db;
        pthread_mutex_t lock;
};

/* Each step brings the schema from version i to i + 1. */
static const char *const schema_steps[] = {
        "CREATE TABLE clients (name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);"
        "CREATE TABLE services (id TEXT PRIMARY KEY, container TEXT NOT NULL UNIQUE, host TEXT,"
        "  body TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE subscriptions (id TEXT PRIMARY KEY, body TEXT NOT NULL, expiry INTEGER NOT NULL DEFAULT 0,"
        "  client TEXT);"
        "CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT, container TEXT NOT NULL,"
        "  src TEXT NOT NULL, dst TEXT NOT NULL, status TEXT NOT NULL, phase TEXT, bytes INTEGER NOT NULL DEFAULT 0,"
        "  options TEXT NOT NULL, report TEXT, error TEXT, client TEXT, requested INTEGER NOT NULL,"
        "  started INTEGER, ended INTEGER);"
        "CREATE INDEX migrations_status ON migrations (status);"
        /* the users' last known cells: a device of a registered service, by its associate id */
        "CREATE TABLE users (type TEXT NOT NULL, value TEXT NOT NULL, cell TEXT NOT NULL, since INTEGER NOT NULL,"
        "  PRIMARY KEY (type, value));"
        /* kind: mobility, test or expiry; callback: where an expiry notice goes
         * (its subscription is gone), the others go to their subscription's */
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, kind TEXT NOT NULL,"
        "  callback TEXT, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
        "  next_at INTEGER NOT NULL, expires INTEGER NOT NULL);"
        "CREATE INDEX outbox_subscription ON outbox (subscription, id);",
        /* 2: following users (docs/MOBILITY.md): the coverage map, the users'
         * positions, their known paths and the handovers made for them */
        "CREATE TABLE coverage (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL, updated INTEGER NOT NULL);"
        "ALTER TABLE users ADD COLUMN x REAL;"
        "ALTER TABLE users ADD COLUMN y REAL;"
        /* state: following, off_path (the user left it: handovers as for an
         * unknown path until it is back on it), ended, cancelled */
        "CREATE TABLE trajectories (id TEXT PRIMARY KEY, service TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,"
        "  start INTEGER NOT NULL, points TEXT NOT NULL, format TEXT NOT NULL, estimate_ms INTEGER NOT NULL,"
        "  estimate TEXT NOT NULL, state TEXT NOT NULL, why TEXT, client TEXT, created INTEGER NOT NULL);"
        "CREATE UNIQUE INDEX trajectories_active ON trajectories (service) WHERE state IN ('following', 'off_path');"
        /* status: planned, started, done, failed, skipped, dropped, cancelled;
         * image: what was done about the app image on dst ahead of time */
        "CREATE TABLE handovers (id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, type TEXT NOT NULL,"
        "  value TEXT NOT NULL, trajectory TEXT, path TEXT NOT NULL, trigger TEXT NOT NULL, from_cell TEXT,"
        "  to_cell TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, planned_start INTEGER, deadline INTEGER NOT NULL,"
        "  status TEXT NOT NULL, why TEXT, image TEXT, image_note TEXT, migration INTEGER, created INTEGER NOT NULL,"
        "  started INTEGER, ended INTEGER);"
        "CREATE INDEX handovers_status ON handovers (status, planned_start);"
        "CREATE INDEX handovers_migration ON handovers (migration);",
};

void fm_store_lock(fm_store *s) { pthread_mutex_lock(&s->lock); }
void fm_store_unlock(fm_store *s) { pthread_mutex_unlock(&s->lock); }

static int exec(fm_store *s, const char *sql, fm_error *e);

int fm_store_begin(fm_store *s, fm_error *e)
{
        pthread_mutex_lock(&s->lock);
        int r = exec(s, "BEGIN IMMEDIATE", e);
        if (r < 0)
                pthread_mutex_unlock(&s->lock);
        return r;
}

int fm_store_end(fm_store *s, bool commit, fm_error *e)
{
        int r = exec(s, commit ? "COMMIT" : "ROLLBACK", e);
        if (r < 0 && commit)
                exec(s, "ROLLBACK", NULL);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int db_fail(fm_store *s, fm_error *e, const char *what)
{
        int rc = sqlite3_extended_errcode(s->db);
        int code = (rc & 0xff) == SQLITE_CONSTRAINT ? EEXIST : (rc & 0xff) == SQLITE_BUSY ? EBUSY
                   : (rc & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
        return fm_err(e, code, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(fm_store *s, const char *sql, fm_error *e)
{
        char *msg = NULL;
        if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                int r = fm_err(e, EIO, "database: %s", msg ? msg : "?");
                sqlite3_free(msg);
                return r;
        }
        return 0;
}

static int upgrade(fm_store *s, int want, fm_error *e)
{
        json_object *v = fm_store_rows(s, e, "PRAGMA user_version", "");
        if (!v)
                return -EIO;
        json_object *row = json_object_array_get_idx(v, 0), *n = NULL;
        int64_t have = row && json_object_object_get_ex(row, "user_version", &n) ? json_object_get_int64(n) : 0;
        json_object_put(v);
        if (have < 0)
                return fm_err(e, EPROTO, "the database has schema %lld, which no program wrote", (long long)have);
        if (have > want)
                return fm_err(e, EPROTO, "the database has schema %lld, newer than this program's %d", (long long)have,
                              want);
        if (have == want)
                return 0;
        int r = exec(s, "BEGIN IMMEDIATE", e);
        for (int64_t i = have; r == 0 && i < want; i++)
                r = exec(s, schema_steps[i], e);
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version = %d", want);
        if (r == 0)
                r = exec(s, set, e);
        if (r == 0)
                return exec(s, "COMMIT", e);
        exec(s, "ROLLBACK", NULL);
        return fm_err_wrap(e, "bringing the schema from %lld to %d", (long long)have, want);
}

int fm_store_open(const char *path, fm_store **out, fm_error *e)
{
        return fm_store_open_at(path, FM_STORE_SCHEMA, out, e);
}

int fm_store_open_at(const char *path, int version, fm_store **out, fm_error *e)
{
        fm_store *s = calloc(1, sizeof(*s));
        if (!s)
                return fm_err(e, ENOMEM, "out of memory");
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->lock, &a);
        pthread_mutexattr_destroy(&a);
        int r;
        if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK) {
                r = fm_err(e, EIO, "opening %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
                fm_store_close(s);
                return r;
        }
        sqlite3_busy_timeout(s->db, 5000);
        /* WAL: readers never wait for the writer; FULL: a commit is on disk
         * before the call returns (a power cut keeps what a client was told) */
        r = exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", e);
        json_object *m = r == 0 ? fm_store_rows(s, e, "PRAGMA journal_mode", "") : NULL;
        json_object *row = m ? json_object_array_get_idx(m, 0) : NULL, *jm = NULL;
        if (r == 0 && !(row && json_object_object_get_ex(row, "journal_mode", &jm) &&
                        !strcmp(json_object_get_string(jm), "wal")))
                r = fm_err(e, EIO, "%s: the database would not go into WAL mode", path);
        json_object_put(m);
        if (r == 0)
                r = upgrade(s, version, e);
        if (r < 0) {
                fm_err_wrap(e, "database %s", path);
                fm_store_close(s);
                return r;
        }
        *out = s;
        return 0;
}

void fm_store_close(fm_store *s)
{
        if (!s)
                return;
        sqlite3_close(s->db);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static sqlite3_stmt *prepare(fm_store *s, fm_error *e, const char *sql, const char *types, va_list ap)
{
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
                db_fail(s, e, "database");
                return NULL;
        }
        for (int i = 0; types[i]; i++) {
                int rc = SQLITE_OK;
                if (types[i] == 's') {
                        const char *v = va_arg(ap, const char *);
                        rc = v ? sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i + 1);
                } else if (types[i] == 'i') {
                        rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
                } else if (types[i] == 'd') {
                        rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
                }
                if (rc != SQLITE_OK) {
                        db_fail(s, e, "database");
                        sqlite3_finalize(st);
                        return NULL;
                }
        }
        return st;
}

int fm_store_run(fm_store *s, fm_error *e, const char *sql, const char *types, ...)
{
        va_list ap;
        va_start(ap, types);
        pthread_mutex_lock(&s->lock);
        sqlite3_stmt *st = prepare(s, e, sql, types, ap);
        va_end(ap);
        int r = -EIO;
        if (st) {
                int rc;
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        ;
                r = rc == SQLITE_DONE ? sqlite3_changes(s->db) : db_fail(s, e, "database");
                sqlite3_finalize(st);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

json_object *fm_store_rows(fm_store *s, fm_error *e, const char *sql, const char *types, ...)
{
        va_list ap;
        va_start(ap, types);
        pthread_mutex_lock(&s->lock);
        sqlite3_stmt *st = prepare(s, e, sql, types, ap);
        va_end(ap);
        json_object *rows = st ? json_object_new_array() : NULL;
        int rc = SQLITE_DONE;
        while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_object *row = json_object_new_object();
                for (int c = 0; c < sqlite3_column_count(st); c++) {
                        const char *name = sqlite3_column_name(st, c);
                        json_object *v = NULL;
                        switch (sqlite3_column_type(st, c)) {
                        case SQLITE_INTEGER: v = json_object_new_int64(sqlite3_column_int64(st, c)); break;
                        case SQLITE_FLOAT: v = json_object_new_double(sqlite3_column_double(st, c)); break;
                        case SQLITE_TEXT: {
                                const char *t = (const char *)sqlite3_column_text(st, c);
                                v = !strncmp(name, "j_", 2) ? json_tokener_parse(t) : json_object_new_string(t);
                                break;
                        }
                        default: break;
                        }
                        json_object_object_add(row, !strncmp(name, "j_", 2) ? name + 2 : name, v);
                }
                json_object_array_add(rows, row);
        }
        if (st && rc != SQLITE_DONE) {
                db_fail(s, e, "database");
                json_object_put(rows);
                rows = NULL;
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return rows;
}

int64_t fm_store_last_id(fm_store *s)
{
        return sqlite3_last_insert_rowid(s->db);
}
