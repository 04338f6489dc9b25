/*
 * backup_pg: the database of a backup or export when the CA keeps its store
 * in PostgreSQL (issue 9), and a restore into PostgreSQL.
 *
 * An archive holds the database as a SQLite file of gmca's schema (backup.h)
 * and the rest of backups and exports works on that file. So a PostgreSQL
 * store is first copied into a fresh SQLite file made by the same
 * migrations: every table read in one REPEATABLE READ, READ ONLY
 * transaction (one consistent snapshot of the whole database while the CA
 * keeps working), each value taken by the column's declared type. Rows go
 * in primary-key order, so two snapshots of the same state are the same
 * bytes: an INTEGER PRIMARY KEY is the rowid, other tables number their rows
 * in key order. (For those, a row inserted in the middle of the key order
 * moves the blocks after it: an incremental of a PostgreSQL store carries
 * more than one of a SQLite store, never less than it must.)
 *
 * The other way, a verified SQLite file of a restore is loaded into an
 * empty PostgreSQL database: the migrations make the schema, then every
 * table is emptied and filled in one transaction (tables in creation order,
 * so that a row's references come first), and each identity column's
 * sequence is moved past the largest key. A restore can thus move a CA
 * between the backends either way. The copy goes through the store's own
 * backends (store_db.h), so PostgreSQL sees the statements store.c sends.
 *
 * A restore an operator runs in an emergency must be one they can simply
 * run again: whatever fails after the database was found empty (the
 * schema, the fill, the check that reads it back, the renaming of the
 * directory), the tables the restore made are dropped again. The
 * migrations commit on a connection of their own (store.c), so the schema
 * and the fill cannot share one transaction; the drop names exactly the
 * tables gmca's migrations make — taken from a scratch SQLite file made by
 * the same migrations, so that an archive of an older schema does not leave
 * the newer tables behind — and nothing else in the database.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "backup_internal.h"
#include "ca.h"
#include "store.h"
#include "store_db.h"
#include "util.h"

#define COLS 64
#define NAME_MAX_ 64
#define SQL_LEN 8192
#define CONFIG_MAX (256 * 1024)

/* One side of a copy: a backend and its connection. */
struct side {
        const struct gmca_db_ops *ops;
        struct gmca_db *db;
};

struct table {
        char name[BK_TABLE_MAX];
        unsigned n;
        char col[COLS][NAME_MAX_];
        char kind[COLS]; /* 'i' integer, 'b' blob, 't' text */
        int pk[COLS];    /* position in the primary key, 0 if not part of it */
};

static int side_fail(const struct side *s, struct gmca_error *e, const char *what)
{
        return gmca_error_set(e, GMCA_ERR_DB, "backup: %s: %s", what, s->ops->errmsg(s->db));
}

static int ident_ok(const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return 0;
        return i > 0 && i < NAME_MAX_;
}

static char kind_of(const char *decl)
{
        if (decl == NULL)
                return 't';
        if (strstr(decl, "INT") != NULL || strstr(decl, "int") != NULL)
                return 'i';
        if (strstr(decl, "BLOB") != NULL || strstr(decl, "blob") != NULL)
                return 'b';
        return 't';
}

/* The columns of t->name in the SQLite file s, from its schema. */
static int table_cols(const struct side *s, struct table *t, struct gmca_error *e)
{
        char sql[128];
        struct gmca_db_stmt *st = NULL;
        int rc;

        snprintf(sql, sizeof(sql), "PRAGMA table_info(\"%s\")", t->name);
        if (s->ops->prepare(s->db, sql, &st) != 0)
                return side_fail(s, e, t->name);
        t->n = 0;
        while ((rc = s->ops->step(st)) == GMCA_DB_ROW) {
                const char *c = s->ops->column_text(st, 1);
                if (t->n == COLS || c == NULL || !ident_ok(c)) {
                        s->ops->finalize(st);
                        return gmca_error_set(e, GMCA_ERR_INVALID, "backup: table %s unusable",
                                              t->name);
                }
                gmca_strlcpy(t->col[t->n], c, NAME_MAX_);
                t->kind[t->n] = kind_of(s->ops->column_text(st, 2));
                t->pk[t->n] = (int)s->ops->column_int64(st, 5);
                t->n++;
        }
        s->ops->finalize(st);
        if (rc < 0 || t->n == 0)
                return gmca_error_set(e, GMCA_ERR_DB, "backup: columns of %s", t->name);
        return 0;
}

/* Every table of the SQLite file s in creation order (*v: caller frees). */
static int tables(const struct side *s, struct table **v, size_t *n, struct gmca_error *e)
{
        struct gmca_db_stmt *st = NULL;
        size_t cap = 0;
        int rc;

        *v = NULL;
        *n = 0;
        if (s->ops->prepare(s->db,
                            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                            "'sqlite_%' ORDER BY rowid",
                            &st) != 0)
                return side_fail(s, e, "tables");
        while ((rc = s->ops->step(st)) == GMCA_DB_ROW) {
                const char *name = s->ops->column_text(st, 0);
                if (name == NULL || !ident_ok(name) || strlen(name) >= BK_TABLE_MAX) {
                        rc =
                            gmca_error_set(e, GMCA_ERR_INVALID, "backup: a table name is unusable");
                        break;
                }
                if (gmca_grow((void **)v, &cap, *n, sizeof(**v), 32, 1024) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "backup: out of memory");
                        break;
                }
                memset(&(*v)[*n], 0, sizeof(**v));
                gmca_strlcpy((*v)[(*n)++].name, name, BK_TABLE_MAX);
        }
        s->ops->finalize(st);
        if (rc < 0) {
                free(*v);
                *v = NULL;
                return rc == GMCA_ERR_DB ? side_fail(s, e, "tables") : rc;
        }
        for (size_t i = 0; i < *n; i++)
                if ((rc = table_cols(s, &(*v)[i], e)) != 0) {
                        free(*v);
                        *v = NULL;
                        return rc;
                }
        return 0;
}

/* Append ", "c1", "c2"..." (the column list) to sql at *off. */
static void put_cols(const struct table *t, char *sql, size_t *off)
{
        for (unsigned i = 0; i < t->n; i++)
                *off += (size_t)snprintf(sql + *off, SQL_LEN - *off, "%s\"%s\"", i ? ", " : "",
                                         t->col[i]);
}

/* SELECT cols FROM t ORDER BY the primary key (every column without one). */
static void select_sql(const struct table *t, char *sql)
{
        size_t off = (size_t)snprintf(sql, SQL_LEN, "SELECT ");
        int any = 0;

        put_cols(t, sql, &off);
        off += (size_t)snprintf(sql + off, SQL_LEN - off, " FROM \"%s\" ORDER BY ", t->name);
        for (int k = 1; k <= COLS; k++)
                for (unsigned i = 0; i < t->n; i++)
                        if (t->pk[i] == k)
                                off += (size_t)snprintf(sql + off, SQL_LEN - off, "%s\"%s\"",
                                                        any++ ? ", " : "", t->col[i]);
        for (unsigned i = 0; any == 0 && i < t->n; i++)
                off += (size_t)snprintf(sql + off, SQL_LEN - off, "%s%u", i ? ", " : "", i + 1);
}

static void insert_sql(const struct table *t, char *sql)
{
        size_t off = (size_t)snprintf(sql, SQL_LEN, "INSERT INTO \"%s\" (", t->name);

        put_cols(t, sql, &off);
        off += (size_t)snprintf(sql + off, SQL_LEN - off, ") VALUES (");
        for (unsigned i = 0; i < t->n; i++)
                off += (size_t)snprintf(sql + off, SQL_LEN - off, "%s?", i ? ", " : "");
        snprintf(sql + off, SQL_LEN - off, ")");
}

/* Bind column i of the current row of src into parameter i + 1 of ins. */
static int bind_value(const struct side *s, struct gmca_db_stmt *row, const struct side *d,
                      struct gmca_db_stmt *ins, const struct table *t, unsigned i)
{
        int c = (int)i;

        if (s->ops->column_is_null(row, c))
                return d->ops->bind_null(ins, c + 1);
        if (t->kind[i] == 'i')
                return d->ops->bind_int64(ins, c + 1, s->ops->column_int64(row, c));
        if (t->kind[i] == 'b') {
                const void *p = s->ops->column_blob(row, c);
                size_t n = s->ops->column_bytes(row, c);
                return d->ops->bind_blob(ins, c + 1, p != NULL ? p : "", n);
        }
        return d->ops->bind_text(ins, c + 1, s->ops->column_text(row, c));
}

/* Copy every row of t from s to d (inside their transactions). */
static int copy_table(const struct side *s, const struct side *d, const struct table *t,
                      struct gmca_error *e)
{
        char sql[SQL_LEN];
        struct gmca_db_stmt *row = NULL, *ins = NULL;
        unsigned i;
        int rc;

        select_sql(t, sql);
        if (s->ops->prepare(s->db, sql, &row) != 0)
                return side_fail(s, e, t->name);
        if (s->ops->stream != NULL)
                s->ops->stream(row); /* a table of a million certificates, a batch at a time */
        insert_sql(t, sql);
        if (d->ops->prepare(d->db, sql, &ins) != 0) {
                s->ops->finalize(row);
                return side_fail(d, e, t->name);
        }
        while ((rc = s->ops->step(row)) == GMCA_DB_ROW) {
                for (i = 0; i < t->n; i++)
                        if (bind_value(s, row, d, ins, t, i) != 0)
                                break;
                if (i < t->n || d->ops->step(ins) < 0) {
                        rc = side_fail(d, e, t->name);
                        goto out;
                }
                d->ops->reset(ins);
        }
        if (rc < 0)
                rc = side_fail(s, e, t->name);
out:
        s->ops->finalize(row);
        d->ops->finalize(ins);
        return rc < 0 ? rc : 0;
}

/* Empty d's tables (last made first), then copy every table of list. */
static int copy_all(const struct side *s, const struct side *d, const struct table *v, size_t n,
                    struct gmca_error *e)
{
        char sql[SQL_LEN];
        size_t i;
        int rc;

        for (i = n; i-- > 0;) {
                snprintf(sql, sizeof(sql), "DELETE FROM \"%s\"", v[i].name);
                if (d->ops->exec(d->db, sql) != 0)
                        return side_fail(d, e, v[i].name);
        }
        for (i = 0; i < n; i++)
                if ((rc = copy_table(s, d, &v[i], e)) != 0)
                        return rc;
        return 0;
}

/* A SQLite file at path with gmca's schema (the store's migrations). */
static int make_schema(const char *target, struct gmca_error *e)
{
        struct gmca_store *st = gmca_store_open(target, e);

        if (st == NULL)
                return e->code != 0 ? e->code : GMCA_ERR_DB;
        gmca_store_close(st);
        return 0;
}

static int side_open(struct side *s, const char *target, struct gmca_error *e)
{
        s->ops = gmca_store_uri_is_pg(target) ? gmca_db_postgresql() : gmca_db_sqlite();
        return s->ops->open(target, &s->db, e);
}

static void side_close(struct side *s)
{
        if (s->ops != NULL)
                s->ops->close(s->db);
        s->db = NULL;
}

/* Remove the SQLite file path and its journal files. */
static void unlink_db(const char *path)
{
        char side[PATH_MAX + 8];

        unlink(path);
        snprintf(side, sizeof(side), "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", path);
        unlink(side);
}

int gmca_db_copy_to_sqlite(const struct gmca_db_ops *ops, struct gmca_db *db, const char *dst,
                           struct gmca_error *e)
{
        struct side src = {ops, db}, lite = {0};
        struct table *v = NULL;
        size_t n = 0;
        int rc;

        if (access(dst, F_OK) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS, "backup: %s exists", dst);
        if ((rc = make_schema(dst, e)) != 0 || (rc = side_open(&lite, dst, e)) != 0)
                goto out;
        if (lite.ops->exec(lite.db, "PRAGMA foreign_keys=OFF") != 0 ||
            lite.ops->exec(lite.db, "BEGIN IMMEDIATE") != 0) {
                rc = side_fail(&lite, e, "snapshot");
                goto out;
        }
        /* One snapshot for every table (a SQLite source, in the unit tests: its
         * first read fixes it). */
        if (ops->exec(db, strcmp(ops->name, "sqlite") != 0
                              ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                              : "BEGIN") != 0) {
                rc = side_fail(&src, e, "snapshot of the store");
                goto out;
        }
        if ((rc = tables(&lite, &v, &n, e)) == 0)
                rc = copy_all(&src, &lite, v, n, e);
        (void)ops->exec(db, "ROLLBACK");
        if (rc == 0 && (lite.ops->exec(lite.db, "COMMIT") != 0 ||
                        lite.ops->exec(lite.db, "PRAGMA journal_mode=DELETE") != 0))
                rc = side_fail(&lite, e, "snapshot");
out:
        free(v);
        side_close(&lite);
        if (rc != 0)
                unlink_db(dst);
        return rc;
}

int bk_pg_snapshot(const char *uri, const char *dst, struct gmca_error *e)
{
        struct side pg = {0};
        int rc;

        if (access(dst, F_OK) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS, "backup: %s exists", dst);
        if ((rc = side_open(&pg, uri, e)) != 0)
                return rc;
        rc = gmca_db_copy_to_sqlite(pg.ops, pg.db, dst, e);
        side_close(&pg);
        return rc;
}

/* 0 if the PostgreSQL database has no table in its schema yet. */
static int pg_empty(const struct side *pg, const char *uri, struct gmca_error *e)
{
        struct gmca_db_stmt *st = NULL;
        int64_t tables = -1;

        if (pg->ops->prepare(pg->db,
                             "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                             "current_schema()",
                             &st) != 0)
                return side_fail(pg, e, "restore");
        if (pg->ops->step(st) == GMCA_DB_ROW)
                tables = pg->ops->column_int64(st, 0);
        pg->ops->finalize(st);
        if (tables != 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "restore: the database %s is not empty: restore only into "
                                      "an empty database",
                                      uri);
        return 0;
}

/* Move the identity sequence of each INTEGER PRIMARY KEY past its largest key. */
static int pg_sequences(const struct side *pg, const struct table *v, size_t n,
                        struct gmca_error *e)
{
        char sql[SQL_LEN];
        struct gmca_db_stmt *st;

        for (size_t i = 0; i < n; i++) {
                unsigned k, pks = 0, at = 0;
                for (k = 0; k < v[i].n; k++)
                        if (v[i].pk[k] != 0)
                                pks++, at = k;
                if (pks != 1 || v[i].kind[at] != 'i' || strcmp(v[i].name, "schema_version") == 0)
                        continue;
                snprintf(sql, sizeof(sql),
                         "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'), "
                         "(SELECT COALESCE(max(\"%s\"), 0) + 1 FROM \"%s\"), false)",
                         v[i].name, v[i].col[at], v[i].col[at], v[i].name);
                st = NULL;
                if (pg->ops->prepare(pg->db, sql, &st) != 0 || pg->ops->step(st) < 0) {
                        pg->ops->finalize(st);
                        return side_fail(pg, e, v[i].name);
                }
                pg->ops->finalize(st);
        }
        return 0;
}

void bk_names_free(struct bk_names *t)
{
        free(t->v);
        t->v = NULL;
        t->n = 0;
}

/* The tables gmca's migrations make: those of a new SQLite file of the schema
 * at scratch (made and removed here; the backends share the migrations). */
static int schema_names(const char *scratch, struct bk_names *out, struct gmca_error *e)
{
        struct side lite = {0};
        struct table *v = NULL;
        size_t n = 0;
        int rc;

        if (access(scratch, F_OK) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS, "restore: %s exists", scratch);
        if ((rc = make_schema(scratch, e)) == 0 && (rc = side_open(&lite, scratch, e)) == 0 &&
            (rc = tables(&lite, &v, &n, e)) == 0) {
                if (n == 0 || (out->v = calloc(n, sizeof(*out->v))) == NULL)
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "restore: the schema's tables");
                for (out->n = 0; rc == 0 && out->n < n; out->n++)
                        gmca_strlcpy(out->v[out->n], v[out->n].name, BK_TABLE_MAX);
        }
        free(v);
        side_close(&lite);
        unlink_db(scratch);
        return rc;
}

int bk_pg_load(const char *src, const char *uri, struct bk_names *made, struct gmca_error *e)
{
        struct side pg = {0}, lite = {0};
        struct bk_names names = {0};
        struct table *v = NULL;
        char scratch[PATH_MAX + 16];
        size_t n = 0;
        int rc;

        snprintf(scratch, sizeof(scratch), "%s.schema", src);
        if ((rc = schema_names(scratch, &names, e)) != 0 || (rc = side_open(&pg, uri, e)) != 0 ||
            (rc = pg_empty(&pg, uri, e)) != 0)
                goto out;
        /* From here on, a failure leaves tables for the caller to drop. */
        *made = names;
        memset(&names, 0, sizeof(names));
        if ((rc = make_schema(uri, e)) != 0 || (rc = side_open(&lite, src, e)) != 0 ||
            (rc = tables(&lite, &v, &n, e)) != 0)
                goto out;
        if (pg.ops->exec(pg.db, "BEGIN") != 0) {
                rc = side_fail(&pg, e, "restore");
                goto out;
        }
        if ((rc = copy_all(&lite, &pg, v, n, e)) == 0 && (rc = pg_sequences(&pg, v, n, e)) == 0 &&
            pg.ops->exec(pg.db, "COMMIT") != 0)
                rc = side_fail(&pg, e, "restore: commit");
        if (rc != 0)
                (void)pg.ops->exec(pg.db, "ROLLBACK");
out:
        free(v);
        bk_names_free(&names);
        side_close(&lite);
        side_close(&pg);
        return rc;
}

/* DROP TABLE IF EXISTS of every name of made, CASCADE (their indexes, keys
 * and identity sequences go with them); 0, or -1 if it does not fit. */
static int drop_sql(const struct bk_names *made, char *sql, size_t len)
{
        size_t off = (size_t)snprintf(sql, len, "DROP TABLE IF EXISTS ");

        for (size_t i = 0; i < made->n && off < len; i++)
                off +=
                    (size_t)snprintf(sql + off, len - off, "%s\"%s\"", i ? ", " : "", made->v[i]);
        if (off < len)
                off += (size_t)snprintf(sql + off, len - off, " CASCADE");
        return off < len ? 0 : -1;
}

/* Append note to e's message whole (it says what the operator must do),
 * cutting the cause before it if both do not fit. */
static void note_append(struct gmca_error *e, const char *note)
{
        size_t cap = sizeof(e->msg), l = strnlen(e->msg, cap), nl = strlen(note);

        if (l + nl >= cap && nl + 3 < cap) {
                l = cap - 1 - nl - 3;
                while (l > 0 && ((unsigned char)e->msg[l] & 0xc0) == 0x80)
                        l--; /* not inside a UTF-8 character */
                memcpy(e->msg + l, "...", 3);
                l += 3;
        }
        snprintf(e->msg + l, cap - l, "%s", note);
}

void bk_pg_unload(const char *uri, const struct bk_names *made, struct gmca_error *e)
{
        struct side pg = {0};
        struct gmca_error oe = {0};
        char sql[SQL_LEN], why[GMCA_ERROR_MSG_MAX], note[GMCA_ERROR_MSG_MAX];
        int ok = 0;

        if (made->n == 0)
                return;
        if (drop_sql(made, sql, sizeof(sql)) != 0)
                gmca_strlcpy(why, "too many tables", sizeof(why));
        else if (side_open(&pg, uri, &oe) != 0)
                gmca_strlcpy(why, oe.msg, sizeof(why));
        else if (pg.ops->exec(pg.db, "BEGIN") != 0 || pg.ops->exec(pg.db, sql) != 0 ||
                 pg.ops->exec(pg.db, "COMMIT") != 0) {
                gmca_strlcpy(why, pg.ops->errmsg(pg.db), sizeof(why));
                (void)pg.ops->exec(pg.db, "ROLLBACK");
        } else
                ok = 1;
        side_close(&pg);
        if (ok || e == NULL)
                return;
        snprintf(note, sizeof(note),
                 "; and the database %s still holds the partial restore: drop its tables before "
                 "retrying (%.120s)",
                 uri, why);
        note_append(e, note);
}

int bk_snapshot_dir(const char *dir, const char *dst, struct gmca_error *e)
{
        char uri[PATH_MAX];
        int rc;

        if ((rc = gmca_ca_store_uri(dir, uri, sizeof(uri), e)) != 0)
                return rc;
        if (gmca_store_uri_is_pg(uri))
                return bk_pg_snapshot(uri, dst, e);
        if (access(uri, F_OK) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE, "%s has no store %s", dir, uri);
        return bk_snapshot(uri, dst, e);
}

static unsigned mode_of(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 0777) : 0600;
}

int bk_config_db(const char *dir, char *uri, size_t len, const char *set, struct gmca_error *e)
{
        char path[PATH_MAX];
        uint8_t *buf = NULL;
        size_t n;
        json_t *root, *v;
        char *txt = NULL;
        int rc;

        snprintf(path, sizeof(path), "%s/%s", dir, GMCA_CONFIG_FILE);
        if ((rc = gmca_read_file(path, CONFIG_MAX, &buf, &n, e)) != 0)
                return rc;
        root = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
        free(buf);
        if (root == NULL || !json_is_object(root)) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a JSON object", path);
        }
        v = json_object_get(root, "database");
        if (uri != NULL)
                gmca_strlcpy(uri, json_is_string(v) ? json_string_value(v) : "", len);
        if (set != NULL && (set[0] != '\0' || v != NULL)) {
                if (set[0] == '\0')
                        json_object_del(root, "database");
                else
                        json_object_set_new(root, "database", json_string(set));
                /* The front's role was granted rights in the database left behind:
                 * gmca db front-role names one again for the new one (docs/db-roles.md). */
                json_object_del(root, "front_database");
                if ((txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "restore: out of memory");
                else
                        rc = gmca_write_file_atomic(path, txt, strlen(txt), mode_of(path), e);
        }
        free(txt);
        json_decref(root);
        return rc;
}
