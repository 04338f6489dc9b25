/*
 * backup_internal: the database side of backups (backup_db.c) for
 * backup.c — the online snapshot, the per-table blocks of rows and their
 * digests, and the deltas of an incremental archive. They work on a SQLite
 * file (file-level work the store's portable statement API does not cover);
 * a PostgreSQL store becomes such a file first (backup_pg.c).
 */
#ifndef GMCA_BACKUP_INTERNAL_H
#define GMCA_BACKUP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "backup.h"
#include "crypto.h"
#include "err.h"

#define BK_BLOCK_SHIFT 8 /* 256 rowids per block */
#define BK_TABLE_MAX 64

/* A growable byte buffer (OPENSSL_malloc), capped at GMCA_BACKUP_MAX. */
struct bk_buf {
        uint8_t *p;
        size_t len, cap;
};
int bk_put(struct bk_buf *b, const void *data, size_t n);
int bk_put_u8(struct bk_buf *b, unsigned v);
int bk_put_u16(struct bk_buf *b, unsigned v);
int bk_put_u32(struct bk_buf *b, uint32_t v);
int bk_put_u64(struct bk_buf *b, uint64_t v);
void bk_buf_free(struct bk_buf *b);

struct bk_block {
        char table[BK_TABLE_MAX];
        int64_t no; /* rowid >> BK_BLOCK_SHIFT */
        int64_t rows;
        uint8_t d[GMCA_SM3_LEN];
};
/* Every non-empty block of every table, sorted by table then number. */
struct bk_blocks {
        uint8_t schema[GMCA_SM3_LEN]; /* SM3 of the schema's SQL */
        struct bk_block *v;
        size_t n, cap;
};
void bk_blocks_free(struct bk_blocks *b);

/* Copy the live database src into dst (created 0600, must not exist). */
int bk_snapshot(const char *src, const char *dst, struct gmca_error *e) GMCA_WUR;
int bk_db_blocks(sqlite3 *db, struct bk_blocks *out, struct gmca_error *e) GMCA_WUR;
/* Text form: "schema HEX\n" then "TABLE NO HEX ROWS\n" per block. */
int bk_blocks_text(const struct bk_blocks *b, struct bk_buf *out, struct gmca_error *e) GMCA_WUR;
int bk_blocks_parse(const uint8_t *p, size_t len, struct bk_blocks *out,
                    struct gmca_error *e) GMCA_WUR;
/* GMCA_ERR_TAMPER naming the first difference. */
int bk_blocks_same(const struct bk_blocks *a, const struct bk_blocks *b,
                   struct gmca_error *e) GMCA_WUR;
/* The rows of each block of cur that is new or different in base, and an
 * empty record for each block of base gone from cur. */
int bk_delta_make(sqlite3 *db, const struct bk_blocks *base, const struct bk_blocks *cur,
                  struct bk_buf *out, size_t *nblocks, struct gmca_error *e) GMCA_WUR;
/* Apply a delta in one transaction. */
int bk_delta_apply(sqlite3 *db, const uint8_t *p, size_t len, struct gmca_error *e) GMCA_WUR;
/* Parse a delta without a database (verify, fuzzing): *nblocks records. */
int bk_delta_check(const uint8_t *p, size_t len, size_t *nblocks, struct gmca_error *e) GMCA_WUR;

/* ---- PostgreSQL stores (backup_pg.c) ---- */
/* Snapshot the store of the state directory dir, either backend, into a new
 * SQLite file dst of gmca's schema. */
int bk_snapshot_dir(const char *dir, const char *dst, struct gmca_error *e) GMCA_WUR;
/* Copy the PostgreSQL database uri, in one REPEATABLE READ transaction, into
 * a new SQLite file dst made by the store's migrations. (uri may name a
 * SQLite store too: the unit tests run the copy so.) */
int bk_pg_snapshot(const char *uri, const char *dst, struct gmca_error *e) GMCA_WUR;
/* Names of the tables gmca's migrations make (bk_names_free). */
struct bk_names {
        char (*v)[BK_TABLE_MAX];
        size_t n;
};
void bk_names_free(struct bk_names *t);
/* Load the SQLite file src into the empty PostgreSQL database uri (a scratch
 * file src".schema" comes and goes). Unlike other out-parameters, *made is
 * set on failure too: from the moment the database was found empty, it names
 * the tables this load may have created, which the caller drops with
 * bk_pg_unload if the load or anything after it fails; it stays empty when
 * the database was not empty or could not be reached. */
int bk_pg_load(const char *src, const char *uri, struct bk_names *made,
               struct gmca_error *e) GMCA_WUR;
/* Undo a failed restore into uri, whose cause e holds: drop the tables made
 * (those that exist; nothing else) in one transaction. When that fails too,
 * e's message says the database still holds the partial restore. */
void bk_pg_unload(const char *uri, const struct bk_names *made, struct gmca_error *e);
/* gmca.json "database" of dir into uri ("" for none) when uri is not NULL;
 * then, when set is not NULL, set it to set ("" removes it). */
int bk_config_db(const char *dir, char *uri, size_t len, const char *set,
                 struct gmca_error *e) GMCA_WUR;

/* ---- files (backup_files.c) ---- */
struct bk_file {
        char rel[GMCA_PKG_NAME_MAX + 1]; /* "files/" + path relative to the state directory */
        uint8_t d[GMCA_SM3_LEN];
        size_t size;
        unsigned mode;
        uint8_t *data; /* OPENSSL_malloc; NULL when not carried */
};
struct bk_files {
        struct bk_file *v;
        size_t n, cap;
};

void bk_files_free(struct bk_files *f);
/* Every regular file under root (but the database, run/, backups/), unsorted. */
int bk_walk(const char *root, const char *rel, int depth, struct bk_files *f,
            struct gmca_error *e) GMCA_WUR;
int bk_cmp_file(const void *a, const void *b); /* by name, for qsort */
/* Text form (files.list): "HEX SIZE MODE files/PATH\n" per file, sorted. */
int bk_files_text(const struct bk_files *f, struct bk_buf *out, struct gmca_error *e) GMCA_WUR;
int bk_files_parse(const uint8_t *p, size_t len, struct bk_files *out,
                   struct gmca_error *e) GMCA_WUR;
/* The file called rel ("files/..."), or NULL; f sorted. */
const struct bk_file *bk_files_find(const struct bk_files *f, const char *rel);

/* ---- sealing (backup.c) ---- */
/* SM3 of an SM2 key's public point, hex: names the backup key in a header. */
int bk_key_id(EVP_PKEY *k, char hex[65], struct gmca_error *e) GMCA_WUR;
/* The package seal: HMAC-SM3 under K_mac derived from the data key (arg). */
int bk_mac_seal(void *arg, const uint8_t *m, size_t len, uint8_t seal[GMCA_PKG_SEAL_MAX],
                size_t *seallen, struct gmca_error *e);

/* Decrypt o's package with data key dk, parse it, check its MAC (backup_restore.c).
 * *plain: the package (OPENSSL_clear_free), pkg points into it. */
int bk_decrypt(const uint8_t *buf, const struct gmca_backup_outer *o,
               const uint8_t dk[GMCA_SM4_KEY_LEN], uint8_t **plain, size_t *plain_len,
               struct gmca_pkg *pkg, struct gmca_error *e) GMCA_WUR;

#endif
