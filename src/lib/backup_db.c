/*
 * backup_db: the database half of backup.h. The snapshot is SQLite's
 * online backup API, so it is consistent while the CA keeps writing (pages
 * are copied under a read transaction, restarted if a writer changes them).
 * For incrementals the rows of each table are grouped in blocks of 256
 * rowids and each block is known by the SM3 of its encoded rows: a block
 * of an append-only table changes only while it fills, a mutable row
 * (a certificate revoked, an application approved) changes its block,
 * a deleted row (nonces) too. Carrying changed blocks whole needs no
 * knowledge of any module's tables, so tables added later are covered.
 *
 * Identifiers cannot be bound as SQL parameters: table names are taken
 * only from the database's own schema and checked to be [A-Za-z0-9_], and
 * column names are quoted with their quotes doubled.
 *
 * Encodings (integers big-endian):
 *   row   := u64 rowid, u16 ncols, ncols x value
 *   value := 0 (NULL) | 1 i64 | 2 f64 bits (u64) | 3 u32 len text | 4 u32 len
 * blob delta := "GMCADLT1" then blocks: u8 tlen, table, i64 no, u32 nrows, rows
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "backup.h"
#include "backup_internal.h"
#include "util.h"

#define DELTA_MAGIC "GMCADLT1"
#define COLS_MAX 256
#define SQL_MAX 8192

int bk_put(struct bk_buf *b, const void *data, size_t n)
{
        if (n > GMCA_BACKUP_MAX - b->len)
                return GMCA_ERR_LIMIT;
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                uint8_t *p;
                while (cap < b->len + n)
                        cap *= 2;
                if ((p = OPENSSL_realloc(b->p, cap)) == NULL)
                        return GMCA_ERR_NOMEM;
                b->p = p;
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->p + b->len, data, n);
        b->len += n;
        return 0;
}

int bk_put_u8(struct bk_buf *b, unsigned v)
{
        uint8_t c = (uint8_t)v;
        return bk_put(b, &c, 1);
}

int bk_put_u16(struct bk_buf *b, unsigned v)
{
        uint8_t c[2] = {(uint8_t)(v >> 8), (uint8_t)v};
        return bk_put(b, c, 2);
}

int bk_put_u32(struct bk_buf *b, uint32_t v)
{
        uint8_t c[4];
        gmca_put_be32(c, v);
        return bk_put(b, c, 4);
}

int bk_put_u64(struct bk_buf *b, uint64_t v)
{
        uint8_t c[8];
        gmca_put_be64(c, v);
        return bk_put(b, c, 8);
}

void bk_buf_free(struct bk_buf *b)
{
        OPENSSL_free(b->p);
        memset(b, 0, sizeof(*b));
}

void bk_blocks_free(struct bk_blocks *b)
{
        free(b->v); /* gmca_grow's realloc */
        memset(b, 0, sizeof(*b));
}

static int db_fail(sqlite3 *db, struct gmca_error *e, const char *what)
{
        return gmca_error_set(e, GMCA_ERR_DB, "backup: %s: %s", what,
                              db ? sqlite3_errmsg(db) : "no database");
}

int bk_snapshot(const char *src, const char *dst, struct gmca_error *e)
{
        sqlite3 *s = NULL, *d = NULL;
        sqlite3_backup *b = NULL;
        int fd, rc = GMCA_ERR_DB, src_rc, tries = 0;
        struct timespec nap = {0, 50 * 1000 * 1000};

        if ((fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "backup: cannot create %s", dst);
        close(fd);
        if (sqlite3_open_v2(src, &s, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                db_fail(s, e, "open the store");
                goto out;
        }
        sqlite3_busy_timeout(s, 5000);
        if (sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
                db_fail(d, e, "open the snapshot");
                goto out;
        }
        if ((b = sqlite3_backup_init(d, "main", s, "main")) == NULL) {
                db_fail(d, e, "start the online backup");
                goto out;
        }
        /* One step copies every page; BUSY/LOCKED (a writer holds the lock) retry. */
        while ((src_rc = sqlite3_backup_step(b, -1)) != SQLITE_DONE) {
                if ((src_rc != SQLITE_BUSY && src_rc != SQLITE_LOCKED) || ++tries > 600) {
                        gmca_error_set(e, GMCA_ERR_DB, "backup: online backup: %s",
                                       sqlite3_errstr(src_rc));
                        goto out;
                }
                nanosleep(&nap, NULL);
        }
        rc = 0;
out:
        if (b != NULL && sqlite3_backup_finish(b) != SQLITE_OK && rc == 0)
                rc = db_fail(d, e, "finish the online backup");
        sqlite3_close(d);
        sqlite3_close(s);
        if (rc != 0)
                unlink(dst);
        return rc;
}

static int ident_ok(const char *s)
{
        size_t i, n = strlen(s);

        if (n == 0 || n >= BK_TABLE_MAX)
                return 0;
        for (i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return 0;
        return 1;
}

/* Encode the current row of st (columns first.. are the values, column 0 the
 * rowid). */
static int enc_row(sqlite3_stmt *st, struct bk_buf *b)
{
        int n = sqlite3_column_count(st), i, rc;

        if ((rc = bk_put_u64(b, (uint64_t)sqlite3_column_int64(st, 0))) != 0 ||
            (rc = bk_put_u16(b, (unsigned)(n - 1))) != 0)
                return rc;
        for (i = 1; i < n && rc == 0; i++) {
                int t = sqlite3_column_type(st, i);
                double dv;
                uint64_t bits;
                if (t == SQLITE_NULL) {
                        rc = bk_put_u8(b, 0);
                } else if (t == SQLITE_INTEGER) {
                        if ((rc = bk_put_u8(b, 1)) == 0)
                                rc = bk_put_u64(b, (uint64_t)sqlite3_column_int64(st, i));
                } else if (t == SQLITE_FLOAT) {
                        dv = sqlite3_column_double(st, i);
                        memcpy(&bits, &dv, sizeof(bits));
                        if ((rc = bk_put_u8(b, 2)) == 0)
                                rc = bk_put_u64(b, bits);
                } else {
                        const void *p = t == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, i)
                                                         : sqlite3_column_blob(st, i);
                        size_t len = (size_t)sqlite3_column_bytes(st, i);
                        if ((rc = bk_put_u8(b, t == SQLITE_TEXT ? 3 : 4)) == 0 &&
                            (rc = bk_put_u32(b, (uint32_t)len)) == 0)
                                rc = bk_put(b, p, len);
                }
        }
        return rc;
}

/* Names of the tables gmca keeps (not SQLite's own), sorted. */
static int table_names(sqlite3 *db, char (**names)[BK_TABLE_MAX], size_t *n, struct gmca_error *e)
{
        static const char sql[] = "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                                  "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
        sqlite3_stmt *st = NULL;
        char(*v)[BK_TABLE_MAX] = NULL;
        size_t cap = 0, k = 0;
        int rc = 0, s;

        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_fail(db, e, "list tables");
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                const char *t = (const char *)sqlite3_column_text(st, 0);
                if (t == NULL || !ident_ok(t)) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID, "backup: unexpected table name");
                        break;
                }
                if ((rc = gmca_grow((void **)&v, &cap, k, sizeof(*v), 32, 4096)) != 0) {
                        gmca_error_set(e, rc, "backup: too many tables");
                        break;
                }
                gmca_strlcpy(v[k++], t, BK_TABLE_MAX);
        }
        if (rc == 0 && s != SQLITE_DONE)
                rc = db_fail(db, e, "list tables");
        sqlite3_finalize(st);
        if (rc != 0) {
                free(v);
                return rc;
        }
        *names = v;
        *n = k;
        return 0;
}

static int schema_digest(sqlite3 *db, uint8_t out[GMCA_SM3_LEN], struct gmca_error *e)
{
        static const char sql[] = "SELECT type, name, sql FROM sqlite_schema ORDER BY type, name";
        sqlite3_stmt *st = NULL;
        EVP_MD_CTX *h = gmca_sm3_new();
        int rc = 0, s, i;

        if (h == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "backup: SM3");
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                EVP_MD_CTX_free(h);
                return db_fail(db, e, "read the schema");
        }
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW)
                for (i = 0; i < 3 && rc == 0; i++) {
                        const unsigned char *t = sqlite3_column_text(st, i);
                        rc = gmca_sm3_update(h, t ? (const char *)t : "",
                                             t ? strlen((const char *)t) + 1 : 1);
                }
        sqlite3_finalize(st);
        if (rc != 0) {
                EVP_MD_CTX_free(h);
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3 of the schema");
        }
        if (gmca_sm3_final(h, out) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3 of the schema");
        return 0;
}

static int blocks_add(struct bk_blocks *b, const char *table, int64_t no, int64_t rows,
                      EVP_MD_CTX *h, struct gmca_error *e)
{
        int rc;

        if ((rc = gmca_grow((void **)&b->v, &b->cap, b->n, sizeof(*b->v), 64, SIZE_MAX / 256)) !=
            0) {
                EVP_MD_CTX_free(h);
                return gmca_error_set(e, rc, "backup: out of memory");
        }
        memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
        gmca_strlcpy(b->v[b->n].table, table, BK_TABLE_MAX);
        b->v[b->n].no = no;
        b->v[b->n].rows = rows;
        if (gmca_sm3_final(h, b->v[b->n].d) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3 of a block");
        b->n++;
        return 0;
}

static int table_blocks(sqlite3 *db, const char *table, struct bk_blocks *out, struct gmca_error *e)
{
        char sql[256];
        sqlite3_stmt *st = NULL;
        EVP_MD_CTX *h = NULL;
        struct bk_buf row = {0};
        int64_t cur = 0, rows = 0;
        int rc = 0, s;

        snprintf(sql, sizeof(sql), "SELECT rowid, * FROM \"%s\" ORDER BY rowid", table);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_fail(db, e, table);
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t no = sqlite3_column_int64(st, 0) >> BK_BLOCK_SHIFT;
                if (h != NULL && no != cur) {
                        rc = blocks_add(out, table, cur, rows, h, e);
                        h = NULL;
                }
                if (rc == 0 && h == NULL) {
                        if ((h = gmca_sm3_new()) == NULL) {
                                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "backup: SM3");
                                break;
                        }
                        cur = no;
                        rows = 0;
                }
                row.len = 0;
                if (rc == 0 && ((rc = enc_row(st, &row)) != 0 ||
                                (rc = gmca_sm3_update(h, row.p, row.len)) != 0))
                        rc = gmca_error_set(e, rc < 0 ? rc : GMCA_ERR_CRYPTO,
                                            "backup: encode a row of %s", table);
                rows++;
        }
        if (rc == 0 && s != SQLITE_DONE)
                rc = db_fail(db, e, table);
        if (rc == 0 && h != NULL) {
                rc = blocks_add(out, table, cur, rows, h, e);
                h = NULL;
        }
        EVP_MD_CTX_free(h);
        sqlite3_finalize(st);
        bk_buf_free(&row);
        return rc;
}

int bk_db_blocks(sqlite3 *db, struct bk_blocks *out, struct gmca_error *e)
{
        char(*names)[BK_TABLE_MAX] = NULL;
        struct bk_blocks b;
        size_t n = 0, i;
        int rc;

        memset(&b, 0, sizeof(b));
        if ((rc = schema_digest(db, b.schema, e)) != 0 ||
            (rc = table_names(db, &names, &n, e)) != 0)
                return rc;
        for (i = 0; i < n && rc == 0; i++)
                rc = table_blocks(db, names[i], &b, e);
        free(names);
        if (rc != 0) {
                bk_blocks_free(&b);
                return rc;
        }
        *out = b;
        return 0;
}

int bk_blocks_text(const struct bk_blocks *b, struct bk_buf *out, struct gmca_error *e)
{
        char line[BK_TABLE_MAX + 128], hex[65];
        size_t i;
        int rc;

        gmca_hex(b->schema, GMCA_SM3_LEN, hex);
        snprintf(line, sizeof(line), "schema %s\n", hex);
        rc = bk_put(out, line, strlen(line));
        for (i = 0; i < b->n && rc == 0; i++) {
                gmca_hex(b->v[i].d, GMCA_SM3_LEN, hex);
                snprintf(line, sizeof(line), "%s %lld %s %lld\n", b->v[i].table,
                         (long long)b->v[i].no, hex, (long long)b->v[i].rows);
                rc = bk_put(out, line, strlen(line));
        }
        return rc ? gmca_error_set(e, rc, "backup: block list too large") : 0;
}

static int cmp_block(const struct bk_block *a, const struct bk_block *b)
{
        int c = strcmp(a->table, b->table);
        return c != 0 ? c : (a->no < b->no ? -1 : a->no > b->no);
}

/* One "TABLE NO HEX ROWS" line (NUL-terminated copy in line). */
static int parse_block_line(char *line, struct bk_block *bl)
{
        char *t = strtok(line, " "), *no = strtok(NULL, " "), *hex = strtok(NULL, " "),
             *rows = strtok(NULL, " "), *end;
        size_t dl;

        if (t == NULL || no == NULL || hex == NULL || rows == NULL || strtok(NULL, " ") != NULL ||
            !ident_ok(t) || strlen(hex) != 64)
                return -1;
        gmca_strlcpy(bl->table, t, sizeof(bl->table));
        bl->no = strtoll(no, &end, 10);
        if (*end != '\0' || end == no)
                return -1;
        bl->rows = strtoll(rows, &end, 10);
        if (*end != '\0' || end == rows || bl->rows <= 0 || bl->rows > (1 << BK_BLOCK_SHIFT))
                return -1;
        return gmca_unhex(hex, bl->d, sizeof(bl->d), &dl) != 0 || dl != GMCA_SM3_LEN ? -1 : 0;
}

int bk_blocks_parse(const uint8_t *p, size_t len, struct bk_blocks *out, struct gmca_error *e)
{
        struct bk_blocks b;
        char line[BK_TABLE_MAX + 160];
        size_t off = 0, dl;
        int first = 1, rc = 0;

        memset(&b, 0, sizeof(b));
        while (off < len && rc == 0) {
                const uint8_t *nl = memchr(p + off, '\n', len - off);
                size_t ll = nl ? (size_t)(nl - (p + off)) : 0;
                if (nl == NULL || ll == 0 || ll >= sizeof(line) || memchr(p + off, 0, ll)) {
                        rc = GMCA_ERR_INVALID;
                        break;
                }
                memcpy(line, p + off, ll);
                line[ll] = '\0';
                off += ll + 1;
                if (first) {
                        first = 0;
                        if (strncmp(line, "schema ", 7) != 0 || strlen(line + 7) != 64 ||
                            gmca_unhex(line + 7, b.schema, sizeof(b.schema), &dl) != 0)
                                rc = GMCA_ERR_INVALID;
                        continue;
                }
                if ((rc = gmca_grow((void **)&b.v, &b.cap, b.n, sizeof(*b.v), 64,
                                    SIZE_MAX / 256)) != 0)
                        break;
                memset(&b.v[b.n], 0, sizeof(b.v[b.n]));
                if (parse_block_line(line, &b.v[b.n]) != 0 ||
                    (b.n > 0 && cmp_block(&b.v[b.n - 1], &b.v[b.n]) >= 0))
                        rc = GMCA_ERR_INVALID;
                b.n++;
        }
        if (rc == 0 && first)
                rc = GMCA_ERR_INVALID;
        if (rc != 0) {
                bk_blocks_free(&b);
                return gmca_error_set(e, rc, "backup: malformed block list (db/blocks)");
        }
        *out = b;
        return 0;
}

int bk_blocks_same(const struct bk_blocks *a, const struct bk_blocks *b, struct gmca_error *e)
{
        size_t i;

        if (memcmp(a->schema, b->schema, GMCA_SM3_LEN) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "backup: the database schema differs");
        for (i = 0; i < a->n && i < b->n; i++)
                if (cmp_block(&a->v[i], &b->v[i]) != 0 || a->v[i].rows != b->v[i].rows ||
                    memcmp(a->v[i].d, b->v[i].d, GMCA_SM3_LEN) != 0)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "backup: table %s, rows from %lld differ from the "
                                              "archive's digests",
                                              a->v[i].table,
                                              (long long)(a->v[i].no << BK_BLOCK_SHIFT));
        if (a->n != b->n)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "backup: %zu blocks of rows where the archive lists %zu",
                                      a->n, b->n);
        return 0;
}

static int delta_block(sqlite3 *db, const char *table, int64_t no, struct bk_buf *out,
                       struct gmca_error *e)
{
        char sql[256];
        sqlite3_stmt *st = NULL;
        size_t at;
        uint32_t nrows = 0;
        int rc, s;

        if ((rc = bk_put_u8(out, (unsigned)strlen(table))) != 0 ||
            (rc = bk_put(out, table, strlen(table))) != 0 ||
            (rc = bk_put_u64(out, (uint64_t)no)) != 0)
                return gmca_error_set(e, rc, "backup: delta too large");
        at = out->len;
        if ((rc = bk_put_u32(out, 0)) != 0)
                return gmca_error_set(e, rc, "backup: delta too large");
        snprintf(sql, sizeof(sql),
                 "SELECT rowid, * FROM \"%s\" WHERE rowid >= ? AND rowid < ? ORDER "
                 "BY rowid",
                 table);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_fail(db, e, table);
        sqlite3_bind_int64(st, 1, no * (1 << BK_BLOCK_SHIFT));
        sqlite3_bind_int64(st, 2, (no + 1) * (1 << BK_BLOCK_SHIFT));
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
                if ((rc = enc_row(st, out)) != 0)
                        gmca_error_set(e, rc, "backup: delta too large");
                nrows++;
        }
        if (rc == 0 && s != SQLITE_DONE)
                rc = db_fail(db, e, table);
        sqlite3_finalize(st);
        if (rc == 0)
                gmca_put_be32(out->p + at, nrows);
        return rc;
}

int bk_delta_make(sqlite3 *db, const struct bk_blocks *base, const struct bk_blocks *cur,
                  struct bk_buf *out, size_t *nblocks, struct gmca_error *e)
{
        size_t i = 0, j = 0, k = 0;
        int rc;

        if (memcmp(base->schema, cur->schema, GMCA_SM3_LEN) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "backup: the database schema changed since the last "
                                      "backup (a migration): take a full backup");
        if ((rc = bk_put(out, DELTA_MAGIC, 8)) != 0)
                return gmca_error_set(e, rc, "backup: out of memory");
        /* Merge the two sorted lists. */
        while (i < base->n || j < cur->n) {
                int c = i == base->n ? 1 : j == cur->n ? -1 : cmp_block(&base->v[i], &cur->v[j]);
                const struct bk_block *bl = c < 0 ? &base->v[i] : &cur->v[j];
                int changed = c != 0 || memcmp(base->v[i].d, cur->v[j].d, GMCA_SM3_LEN) != 0;
                if (changed) {
                        if ((rc = delta_block(db, bl->table, bl->no, out, e)) != 0)
                                return rc;
                        k++;
                }
                if (c <= 0)
                        i++;
                if (c >= 0)
                        j++;
        }
        *nblocks = k;
        return 0;
}

/* ---- reading a delta ---- */

struct dcur {
        const uint8_t *p;
        size_t len, off;
};

static int need(struct dcur *c, size_t n)
{
        return c->len - c->off >= n ? 0 : -1;
}

/* Skip (or bind into st from parameter 1) one encoded row; *rowid and *ncols
 * out. */
static int read_row(struct dcur *c, sqlite3_stmt *st, int64_t *rowid, unsigned *ncols)
{
        unsigned i, n;

        if (need(c, 10) != 0)
                return -1;
        *rowid = (int64_t)gmca_get_be64(c->p + c->off);
        n = (unsigned)c->p[c->off + 8] << 8 | c->p[c->off + 9];
        c->off += 10;
        if (n == 0 || n > COLS_MAX)
                return -1;
        if (st != NULL)
                sqlite3_bind_int64(st, 1, *rowid);
        for (i = 0; i < n; i++) {
                unsigned t;
                uint64_t v;
                uint32_t l;
                double dv;
                if (need(c, 1) != 0)
                        return -1;
                t = c->p[c->off++];
                if (t == 0) {
                        if (st != NULL)
                                sqlite3_bind_null(st, (int)i + 2);
                        continue;
                }
                if (t == 1 || t == 2) {
                        if (need(c, 8) != 0)
                                return -1;
                        v = gmca_get_be64(c->p + c->off);
                        c->off += 8;
                        memcpy(&dv, &v, sizeof(dv));
                        if (st != NULL && t == 1)
                                sqlite3_bind_int64(st, (int)i + 2, (int64_t)v);
                        else if (st != NULL)
                                sqlite3_bind_double(st, (int)i + 2, dv);
                        continue;
                }
                if ((t != 3 && t != 4) || need(c, 4) != 0)
                        return -1;
                l = gmca_get_be32(c->p + c->off);
                c->off += 4;
                if (need(c, l) != 0 || l > INT32_MAX)
                        return -1;
                if (st != NULL && t == 3)
                        sqlite3_bind_text(st, (int)i + 2, (const char *)c->p + c->off, (int)l,
                                          SQLITE_TRANSIENT);
                else if (st != NULL)
                        sqlite3_bind_blob(st, (int)i + 2, c->p + c->off, (int)l, SQLITE_TRANSIENT);
                c->off += l;
        }
        *ncols = n;
        return 0;
}

/* Block header: table name (checked), number, row count. */
static int read_block_head(struct dcur *c, char table[BK_TABLE_MAX], int64_t *no, uint32_t *nrows)
{
        size_t tl;

        if (need(c, 1) != 0)
                return -1;
        tl = c->p[c->off++];
        if (tl == 0 || tl >= BK_TABLE_MAX || need(c, tl + 12) != 0)
                return -1;
        memcpy(table, c->p + c->off, tl);
        table[tl] = '\0';
        c->off += tl;
        *no = (int64_t)gmca_get_be64(c->p + c->off);
        *nrows = gmca_get_be32(c->p + c->off + 8);
        c->off += 12;
        if (!ident_ok(table) || *no < -((int64_t)1 << 50) || *no > ((int64_t)1 << 50) ||
            *nrows > (1u << BK_BLOCK_SHIFT))
                return -1;
        return 0;
}

int bk_delta_check(const uint8_t *p, size_t len, size_t *nblocks, struct gmca_error *e)
{
        struct dcur c = {p, len, 8};
        size_t k = 0;

        if (len < 8 || memcmp(p, DELTA_MAGIC, 8) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: not a delta (magic)");
        while (c.off < c.len) {
                char table[BK_TABLE_MAX];
                int64_t no, rowid, prev = INT64_MIN;
                uint32_t n, i;
                unsigned ncols;
                if (read_block_head(&c, table, &no, &n) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "backup: malformed delta block");
                for (i = 0; i < n; i++)
                        if (read_row(&c, NULL, &rowid, &ncols) != 0 ||
                            (rowid >> BK_BLOCK_SHIFT) != no || rowid <= prev)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "backup: malformed delta row in %s", table);
                        else
                                prev = rowid;
                k++;
        }
        *nblocks = k;
        return 0;
}

/* INSERT INTO "t"(rowid, "c1", ...) VALUES (?, ...) from the table's own
 * columns. */
static int insert_sql(sqlite3 *db, const char *table, char *sql, size_t len, unsigned *ncols,
                      struct gmca_error *e)
{
        char q[128], vals[COLS_MAX * 3 + 8];
        sqlite3_stmt *st = NULL;
        size_t off, voff;
        unsigned n = 0;

        snprintf(q, sizeof(q), "PRAGMA table_info(\"%s\")", table);
        if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
                return db_fail(db, e, table);
        off = (size_t)snprintf(sql, len, "INSERT INTO \"%s\"(rowid", table);
        voff = (size_t)snprintf(vals, sizeof(vals), "?");
        while (sqlite3_step(st) == SQLITE_ROW && n < COLS_MAX) {
                const char *c = (const char *)sqlite3_column_text(st, 1);
                size_t i;
                if (c == NULL || off + 2 * strlen(c) + 8 >= len)
                        break;
                sql[off++] = ',';
                sql[off++] = '"';
                for (i = 0; c[i] != '\0'; i++) {
                        if (c[i] == '"')
                                sql[off++] = '"';
                        sql[off++] = c[i];
                }
                sql[off++] = '"';
                voff += (size_t)snprintf(vals + voff, sizeof(vals) - voff, ",?");
                n++;
        }
        sqlite3_finalize(st);
        if (n == 0 || off + voff + 16 >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: table %s unusable", table);
        snprintf(sql + off, len - off, ") VALUES (%s)", vals);
        *ncols = n;
        return 0;
}

/* Phase 0: delete the rows of the block's rowid range (its rows skipped);
 * phase 1: insert its rows. Every range is emptied before any row goes in,
 * so a row whose rowid moved to an earlier block (a store copied in key
 * order, backup_pg.c) does not meet its old self. */
static int apply_block(sqlite3 *db, struct dcur *c, int phase, struct gmca_error *e)
{
        char table[BK_TABLE_MAX], sql[SQL_MAX];
        sqlite3_stmt *del = NULL, *ins = NULL;
        int64_t no, rowid;
        uint32_t n, i;
        unsigned want = 0, ncols;
        int rc;

        if (read_block_head(c, table, &no, &n) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: malformed delta block");
        if ((rc = insert_sql(db, table, sql, sizeof(sql), &want, e)) != 0)
                return rc;
        if (phase == 1 && sqlite3_prepare_v2(db, sql, -1, &ins, NULL) != SQLITE_OK) {
                rc = db_fail(db, e, table);
                goto out;
        }
        snprintf(sql, sizeof(sql), "DELETE FROM \"%s\" WHERE rowid >= ? AND rowid < ?", table);
        if (phase == 0 && sqlite3_prepare_v2(db, sql, -1, &del, NULL) != SQLITE_OK) {
                rc = db_fail(db, e, table);
                goto out;
        }
        if (del != NULL) {
                sqlite3_bind_int64(del, 1, no * (1 << BK_BLOCK_SHIFT));
                sqlite3_bind_int64(del, 2, (no + 1) * (1 << BK_BLOCK_SHIFT));
                if (sqlite3_step(del) != SQLITE_DONE) {
                        rc = db_fail(db, e, table);
                        goto out;
                }
        }
        for (i = 0; i < n; i++) {
                if (read_row(c, ins, &rowid, &ncols) != 0 || ncols != want ||
                    (rowid >> BK_BLOCK_SHIFT) != no) {
                        rc =
                            gmca_error_set(e, GMCA_ERR_INVALID,
                                           "backup: delta row of %s does not fit the table", table);
                        goto out;
                }
                if (ins == NULL)
                        continue;
                if (sqlite3_step(ins) != SQLITE_DONE) {
                        rc = db_fail(db, e, table);
                        goto out;
                }
                sqlite3_reset(ins);
                sqlite3_clear_bindings(ins);
        }
        rc = 0;
out:
        sqlite3_finalize(del);
        sqlite3_finalize(ins);
        return rc;
}

int bk_delta_apply(sqlite3 *db, const uint8_t *p, size_t len, struct gmca_error *e)
{
        struct dcur c = {p, len, 8};
        size_t nb;
        int rc;

        if ((rc = bk_delta_check(p, len, &nb, e)) != 0)
                return rc;
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                return db_fail(db, e, "begin");
        for (int phase = 0; phase < 2; phase++)
                for (c.off = 8; c.off < c.len;)
                        if ((rc = apply_block(db, &c, phase, e)) != 0) {
                                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                                return rc;
                        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                return db_fail(db, e, "commit");
        return 0;
}
