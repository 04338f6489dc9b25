/*
 * store_internal: for library modules that keep tables of their own in the
 * store (the RA's, auth's): run SQL written once for SQLite and PostgreSQL
 * (the rules of store_db.h) through the same backend and statement cache
 * as store.c. A statement is named by the address of its static SQL text
 * and prepared once per store. Not part of any public interface.
 *
 *     static const char SQL_GET[] = "SELECT name FROM operators WHERE id = ?";
 *     struct gmca_q q;
 *     if ((rc = gmca_q_open(s, SQL_GET, &q, e)) != 0) return rc;
 *     gmca_q_int(&q, id);
 *     rc = gmca_q_step(&q, e, "get operator %lld", (long long)id);
 *     if (rc == GMCA_DB_ROW) ... gmca_q_col_str(&q, 0, buf, sizeof(buf), "name", e) ...
 *     gmca_q_close(&q);
 *
 * Tables live in store.c's migrations (one ordered list for the database).
 */
#ifndef GMCA_STORE_INTERNAL_H
#define GMCA_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"
#include "store_db.h"

struct gmca_q {
        struct gmca_store *s;
        struct gmca_db_stmt *st;
        int slot; /* cache slot, -1 when owned */
        int idx;  /* last bound parameter */
        int rc;   /* first bind failure */
};

/* sql must be a string with static storage (its address is the cache key). */
int gmca_q_open(struct gmca_store *s, const char *sql, struct gmca_q *q,
                struct gmca_error *e) GMCA_WUR;
void gmca_q_close(struct gmca_q *q); /* safe to call twice */

/* Before the first step: a SELECT whose rows may be too many to hold at once
 * (store_db.h stream); its rows are then fetched in batches. */
void gmca_q_stream(struct gmca_q *q);

/* Bind the next parameter (numbered in call order from 1). */
void gmca_q_int(struct gmca_q *q, int64_t v);
void gmca_q_text(struct gmca_q *q, const char *v);           /* NULL binds NULL */
void gmca_q_blob(struct gmca_q *q, const void *p, size_t n); /* NULL binds NULL */

/*
 * GMCA_DB_ROW or GMCA_DB_DONE, or a negative error worded after fmt: a
 * duplicate key is GMCA_ERR_EXISTS, a missing referenced row
 * GMCA_ERR_NOTFOUND, another constraint GMCA_ERR_INVALID, else GMCA_ERR_DB.
 */
int gmca_q_step(struct gmca_q *q, struct gmca_error *e, const char *fmt, ...) GMCA_PRINTF(3, 4);

int64_t gmca_q_col_int(struct gmca_q *q, int col);
int gmca_q_col_null(struct gmca_q *q, int col);
/* Valid until the next step or close; NULL for SQL NULL. */
const char *gmca_q_col_text(struct gmca_q *q, int col);
const void *gmca_q_col_blob(struct gmca_q *q, int col, size_t *len);
/* Copy text into buf ("" for NULL); GMCA_ERR_DB if it does not fit. */
int gmca_q_col_str(struct gmca_q *q, int col, char *buf, size_t len, const char *name,
                   struct gmca_error *e) GMCA_WUR;
/* Copy a blob into a new OPENSSL_malloc buffer (NULL, 0 for SQL NULL). */
int gmca_q_col_dup(struct gmca_q *q, int col, uint8_t **p, size_t *len,
                   struct gmca_error *e) GMCA_WUR;
/* Rows changed by the last INSERT, UPDATE or DELETE of this store. */
int64_t gmca_q_changes(struct gmca_q *q);

/* 1 if s is on PostgreSQL. */
int gmca_store_is_pg(struct gmca_store *s);
/* Run statements without parameters or rows (DDL: store_roles.c's grants). */
int gmca_store_exec(struct gmca_store *s, const char *text, struct gmca_error *e) GMCA_WUR;

#endif
