/*
 * store_sqlite: the SQLite 3 backend of store_db.h, the embedded default.
 * It owns the durability settings: the file is created 0600 before SQLite
 * sees it (SQLite gives its -wal and -shm files the same mode), WAL
 * journal, synchronous=FULL so that a committed issuance survives power
 * loss, foreign keys enforced, deleted content overwritten, a 10 s busy
 * timeout so that concurrent gmca processes queue instead of failing, and
 * the defensive flag so that SQL cannot corrupt the file format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <time.h>

#include "store_db.h"

#define BUSY_TIMEOUT_MS 10000

struct gmca_db {
        sqlite3 *h;
};

struct gmca_db_stmt {
        sqlite3_stmt *h;
};

static int rc_map(int rc)
{
        if (rc == SQLITE_OK)
                return 0;
        return (rc & 0xff) == SQLITE_NOMEM ? GMCA_ERR_NOMEM : GMCA_ERR_DB;
}

/* Run a PRAGMA that answers with one row and return that answer's text in buf. */
static int pragma(sqlite3 *h, const char *sql, char *buf, size_t len)
{
        sqlite3_stmt *st = NULL;
        const unsigned char *t;
        int rc;

        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
                return GMCA_ERR_DB;
        rc = sqlite3_step(st);
        buf[0] = '\0';
        if (rc == SQLITE_ROW && (t = sqlite3_column_text(st, 0)) != NULL) {
                size_t n = strlen((const char *)t);

                if (n >= len)
                        n = len - 1;
                memcpy(buf, t, n);
                buf[n] = '\0';
        }
        rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : GMCA_ERR_DB;
        sqlite3_finalize(st);
        return rc;
}

static const struct {
        const char *set;    /* the setting */
        const char *check;  /* a query that reads it back */
        const char *expect; /* the answer that proves it took */
} settings[] = {
    {"PRAGMA journal_mode=WAL", "PRAGMA journal_mode", "wal"},
    {"PRAGMA synchronous=FULL", "PRAGMA synchronous", "2"},
    {"PRAGMA foreign_keys=ON", "PRAGMA foreign_keys", "1"},
    {"PRAGMA secure_delete=ON", "PRAGMA secure_delete", "1"},
    /* PostgreSQL's LIKE is case-sensitive; make SQLite's the same. */
    {"PRAGMA case_sensitive_like=ON", NULL, NULL},
};

/*
 * Waiting for another process's write lock. SQLite's own busy timeout
 * sleeps 1, 2, 5, 10 ... 100 ms between tries, while a CA transaction
 * holds the lock for a few milliseconds: two issuing processes would spend
 * a fifth of their time asleep. Poll every 250 us instead, up to the same
 * BUSY_TIMEOUT_MS in all.
 */
static int sq_busy(void *arg, int count)
{
        struct timespec ts = {0, 250000};

        (void)arg;
        if ((int64_t)count * 250 >= (int64_t)BUSY_TIMEOUT_MS * 1000)
                return 0;
        nanosleep(&ts, NULL);
        return 1;
}

static int sq_open(const char *path, struct gmca_db **out, struct gmca_error *e)
{
        struct gmca_db *db = NULL;
        struct stat sb;
        char got[32];
        int fd, rc = GMCA_ERR_DB;

        /*
         * Create the file ourselves so that its mode is 0600 from the start,
         * but only if it is not there: closing a descriptor of a database
         * that this process already has open through SQLite would drop that
         * connection's POSIX locks (they belong to the process, not to the
         * descriptor), and another process closing its own connection would
         * then take the WAL for unused, checkpoint and delete it under us.
         */
        if (lstat(path, &sb) != 0) {
                if (errno != ENOENT)
                        return gmca_error_set(e, GMCA_ERR_IO, "store: %s: %s", path,
                                              strerror(errno));
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0 && errno != EEXIST)
                        return gmca_error_set(e, GMCA_ERR_IO, "store: %s: %s", path,
                                              strerror(errno));
                if (fd >= 0)
                        close(fd);
                if (lstat(path, &sb) != 0)
                        return gmca_error_set(e, GMCA_ERR_IO, "store: %s: %s", path,
                                              strerror(errno));
        }
        if (!S_ISREG(sb.st_mode))
                return gmca_error_set(e, GMCA_ERR_IO, "store: %s: not a regular file", path);

        if ((db = calloc(1, sizeof(*db))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "store: out of memory");
        if (sqlite3_open_v2(path, &db->h,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                            NULL) != SQLITE_OK) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: %s: %s", path,
                                    db->h ? sqlite3_errmsg(db->h) : "cannot open");
                goto out;
        }
        sqlite3_extended_result_codes(db->h, 1);
        if (sqlite3_busy_handler(db->h, sq_busy, NULL) != SQLITE_OK ||
            sqlite3_db_config(db->h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
            sqlite3_db_config(db->h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: %s: %s", path, sqlite3_errmsg(db->h));
                goto out;
        }
        for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
                if (pragma(db->h, settings[i].set, got, sizeof(got)) != 0 ||
                    (settings[i].check != NULL &&
                     pragma(db->h, settings[i].check, got, sizeof(got)) != 0)) {
                        rc = gmca_error_set(e, GMCA_ERR_DB, "store: %s: %s: %s", path,
                                            settings[i].set, sqlite3_errmsg(db->h));
                        goto out;
                }
                if (settings[i].check != NULL && strcmp(got, settings[i].expect) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_DB, "store: %s: %s did not take (%s)", path,
                                            settings[i].set, got);
                        goto out;
                }
        }
        *out = db;
        db = NULL;
        rc = 0;
out:
        if (db != NULL) {
                sqlite3_close_v2(db->h);
                free(db);
        }
        return rc;
}

static void sq_close(struct gmca_db *db)
{
        if (db == NULL)
                return;
        sqlite3_close_v2(db->h);
        free(db);
}

static int sq_exec(struct gmca_db *db, const char *sql)
{
        return rc_map(sqlite3_exec(db->h, sql, NULL, NULL, NULL));
}

static int sq_prepare(struct gmca_db *db, const char *sql, struct gmca_db_stmt **out)
{
        struct gmca_db_stmt *st;
        int rc;

        if ((st = calloc(1, sizeof(*st))) == NULL)
                return GMCA_ERR_NOMEM;
        rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->h, NULL);
        if (rc != SQLITE_OK || st->h == NULL) {
                sqlite3_finalize(st->h);
                free(st);
                return rc == SQLITE_OK ? GMCA_ERR_DB : rc_map(rc);
        }
        *out = st;
        return 0;
}

static int sq_bind_int64(struct gmca_db_stmt *st, int idx, int64_t v)
{
        return rc_map(sqlite3_bind_int64(st->h, idx, (sqlite3_int64)v));
}

static int sq_bind_text(struct gmca_db_stmt *st, int idx, const char *v)
{
        if (v == NULL)
                return rc_map(sqlite3_bind_null(st->h, idx));
        return rc_map(sqlite3_bind_text(st->h, idx, v, -1, SQLITE_TRANSIENT));
}

static int sq_bind_blob(struct gmca_db_stmt *st, int idx, const void *p, size_t n)
{
        if (p == NULL)
                return rc_map(sqlite3_bind_null(st->h, idx));
        /*
         * Blobs over 1 MiB are not copied. Only CRLs are that large, and
         * gmca_store_crl_insert keeps the bytes until it has stepped and reset
         * the statement (sq_reset clears the bindings). A CRL of a million
         * entries is 50 MB; a copy would be a third of its peak memory.
         */
        return rc_map(sqlite3_bind_blob64(st->h, idx, p, (sqlite3_uint64)n,
                                          n > (1u << 20) ? SQLITE_STATIC : SQLITE_TRANSIENT));
}

static int sq_bind_null(struct gmca_db_stmt *st, int idx)
{
        return rc_map(sqlite3_bind_null(st->h, idx));
}

static int sq_step(struct gmca_db_stmt *st)
{
        int rc = sqlite3_step(st->h);

        if (rc == SQLITE_ROW)
                return GMCA_DB_ROW;
        if (rc == SQLITE_DONE)
                return GMCA_DB_DONE;
        return rc_map(rc);
}

static int64_t sq_column_int64(struct gmca_db_stmt *st, int col)
{
        return (int64_t)sqlite3_column_int64(st->h, col);
}

static const char *sq_column_text(struct gmca_db_stmt *st, int col)
{
        return (const char *)sqlite3_column_text(st->h, col);
}

static const void *sq_column_blob(struct gmca_db_stmt *st, int col)
{
        return sqlite3_column_blob(st->h, col);
}

static size_t sq_column_bytes(struct gmca_db_stmt *st, int col)
{
        int n = sqlite3_column_bytes(st->h, col);

        return n > 0 ? (size_t)n : 0;
}

static int sq_column_is_null(struct gmca_db_stmt *st, int col)
{
        return sqlite3_column_type(st->h, col) == SQLITE_NULL;
}

static void sq_reset(struct gmca_db_stmt *st)
{
        sqlite3_reset(st->h);
        sqlite3_clear_bindings(st->h);
}

static void sq_finalize(struct gmca_db_stmt *st)
{
        if (st == NULL)
                return;
        sqlite3_finalize(st->h);
        free(st);
}

static int64_t sq_changes(struct gmca_db *db)
{
        return (int64_t)sqlite3_changes64(db->h);
}

static const char *sq_errmsg(struct gmca_db *db)
{
        const char *m = sqlite3_errmsg(db->h);

        return m != NULL ? m : "unknown SQLite error";
}

static int sq_constraint(struct gmca_db *db)
{
        switch (sqlite3_extended_errcode(db->h)) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_ROWID:
                return GMCA_DB_C_UNIQUE;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
                return GMCA_DB_C_FOREIGN;
        case SQLITE_CONSTRAINT_NOTNULL:
                return GMCA_DB_C_NOTNULL;
        case SQLITE_CONSTRAINT_CHECK:
                return GMCA_DB_C_CHECK;
        default:
                return sqlite3_errcode(db->h) == SQLITE_CONSTRAINT ? GMCA_DB_C_OTHER
                                                                   : GMCA_DB_C_NONE;
        }
}

static const struct gmca_db_ops sqlite_ops = {
    .name = "sqlite",
    .begin_sql = "BEGIN IMMEDIATE",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .bind_int64 = sq_bind_int64,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .column_int64 = sq_column_int64,
    .column_text = sq_column_text,
    .column_blob = sq_column_blob,
    .column_bytes = sq_column_bytes,
    .column_is_null = sq_column_is_null,
    .reset = sq_reset,
    .finalize = sq_finalize,
    .changes = sq_changes,
    .errmsg = sq_errmsg,
    .constraint = sq_constraint,
};

const struct gmca_db_ops *gmca_db_sqlite(void)
{
        return &sqlite_ops;
}
