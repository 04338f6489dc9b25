/*
 * store: the CA's tables, written once in SQL that SQLite and PostgreSQL
 * both accept, run through the backend interface of store_db.h. Every
 * statement is prepared once per store and cached (an array indexed by
 * enum stmt), so that bulk issuance pays for parsing SQL once. Migrations
 * are an ordered array of scripts, each applied in its own transaction and
 * recorded in schema_version. Nothing issued is ever deleted: no statement
 * here deletes, and no foreign key cascades.
 *
 * Owned buffers in records returned (der, cert_der, detail) are allocated
 * with OPENSSL_malloc and freed by the *_rec_clear functions with
 * OPENSSL_free, so that callers may also hand over buffers from i2d_*.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "store.h"
#include "store_db.h"
#include "store_internal.h"
#include "store_roles.h"
#include "util.h"

#define DER_MAX (1024 * 1024)          /* a certificate or a CSR */
#define CRL_DER_MAX (64 * 1024 * 1024) /* a CRL of a few hundred thousand entries */
#define INFO_JSON_MAX (64 * 1024)
#define AUDIT_DETAIL_STORE_MAX (64 * 1024)

/* FIELD_OK: a fixed-size char array in a caller's struct is NUL-terminated. */
#define FIELD_OK(f) (strnlen((f), sizeof(f)) < sizeof(f))

/*
 * Schema migrations, applied in order, never edited once released: a change
 * is a new script at the end. `INTEGER PRIMARY KEY` (an id the database
 * assigns unless given) and `BLOB` are the two spellings the PostgreSQL
 * backend maps (see store_db.h). Times are seconds since the epoch, except
 * audit.time, which is microseconds.
 */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE meta ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL);"
    "CREATE TABLE cas ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " parent_id BIGINT REFERENCES cas (id),"
    " subject TEXT NOT NULL,"
    " key_file TEXT NOT NULL,"
    " sm2_id TEXT NOT NULL,"
    " created BIGINT NOT NULL,"
    " cert_der BLOB);"
    "CREATE TABLE certificates ("
    " serial TEXT PRIMARY KEY,"
    " ca_id BIGINT NOT NULL REFERENCES cas (id),"
    " subject TEXT NOT NULL,"
    " profile TEXT NOT NULL,"
    " not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " issued_at BIGINT NOT NULL,"
    " status INTEGER NOT NULL CHECK (status IN (0, 1)),"
    " revoked_at BIGINT NOT NULL,"
    " reason INTEGER NOT NULL,"
    " invalidity_date BIGINT NOT NULL,"
    " fingerprint TEXT NOT NULL,"
    " request_id BIGINT NOT NULL,"
    " der BLOB NOT NULL);"
    "CREATE INDEX certificates_ca_status ON certificates (ca_id, status);"
    "CREATE INDEX certificates_subject ON certificates (subject);"
    "CREATE INDEX certificates_not_after ON certificates (not_after);"
    "CREATE INDEX certificates_issued ON certificates (issued_at, serial);"
    "CREATE TABLE requests ("
    " id INTEGER PRIMARY KEY,"
    " created BIGINT NOT NULL,"
    " ca_id BIGINT NOT NULL REFERENCES cas (id),"
    " profile TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " status INTEGER NOT NULL CHECK (status IN (0, 1, 2)),"
    " serial TEXT,"
    " csr_der BLOB NOT NULL,"
    " info_json TEXT);"
    "CREATE TABLE crls ("
    " ca_id BIGINT NOT NULL REFERENCES cas (id),"
    " number BIGINT NOT NULL,"
    " this_update BIGINT NOT NULL,"
    " next_update BIGINT NOT NULL,"
    " entries BIGINT NOT NULL,"
    " der BLOB NOT NULL,"
    " PRIMARY KEY (ca_id, number));"
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " time BIGINT NOT NULL,"
    " event TEXT NOT NULL,"
    " actor TEXT NOT NULL,"
    " success INTEGER NOT NULL,"
    " object TEXT NOT NULL,"
    " detail TEXT,"
    " prev BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE INDEX audit_time ON audit (time);",
    /* 2: CA key lifecycle (CPS §6.8, §7.2.1.4) and re-issuance after a compromise. */
    "ALTER TABLE cas ADD COLUMN key_state TEXT NOT NULL DEFAULT 'active';"
    "ALTER TABLE cas ADD COLUMN state_time BIGINT NOT NULL DEFAULT 0;"
    "CREATE TABLE reissues ("
    " job TEXT NOT NULL,"
    " old_serial TEXT NOT NULL,"
    " new_serial TEXT NOT NULL,"
    " time BIGINT NOT NULL,"
    " PRIMARY KEY (job, old_serial));",
    /*
     * 3: the RA (CPS §2.2, §3.1–§3.9, §6.2): operators and their roles, the
     * nonces of signed API requests, applicants (identity numbers sealed by
     * the CA engine, shown masked), applications and their two-person
     * workflow, notifications to applicants, revocation requests. Each
     * *_auth column holds the operator's signed request that did the step
     * (auth.h, gmca_auth_proof), so the CA engine can check it again; an
     * operator's tag is the custodians' MAC over the row (auth.h, K_op).
     */
    "CREATE TABLE operators ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " roles TEXT NOT NULL,"
    " cert_serial TEXT NOT NULL UNIQUE,"
    " fingerprint TEXT NOT NULL UNIQUE,"
    " status TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " created_by TEXT NOT NULL,"
    " status_time BIGINT NOT NULL DEFAULT 0,"
    " tag BLOB NOT NULL);"
    "CREATE TABLE nonces ("
    " fingerprint TEXT NOT NULL,"
    " nonce TEXT NOT NULL,"
    " time BIGINT NOT NULL,"
    " PRIMARY KEY (fingerprint, nonce));"
    "CREATE INDEX nonces_time ON nonces (time);"
    "CREATE TABLE applicants ("
    " id INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " id_type TEXT,"
    " id_sealed BLOB,"
    " id_masked TEXT,"
    " org_name TEXT,"
    " uscc TEXT,"
    " address TEXT,"
    " department TEXT,"
    " auth_letter TEXT,"
    " domain TEXT,"
    " ip TEXT,"
    " owner_org TEXT,"
    " contact TEXT,"
    " created_by TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE TABLE applications ("
    " id INTEGER PRIMARY KEY,"
    " applicant_id BIGINT NOT NULL REFERENCES applicants (id),"
    " type TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " ca TEXT NOT NULL,"
    " profile TEXT NOT NULL,"
    " days INTEGER NOT NULL,"
    " csr BLOB NOT NULL,"
    " info_json TEXT,"
    " materials TEXT,"
    " old_serial TEXT,"
    " carrier TEXT,"
    " affiliation_confirmed INTEGER NOT NULL DEFAULT 0,"
    " submitted_by TEXT NOT NULL,"
    " submitted_at BIGINT NOT NULL,"
    " submit_auth BLOB NOT NULL,"
    " vetted_by TEXT,"
    " vetted_at BIGINT,"
    " vet_method TEXT,"
    " vet_documents TEXT,"
    " vet_result TEXT,"
    " vet_auth BLOB,"
    " decided_by TEXT,"
    " decided_at BIGINT,"
    " decision_reason TEXT,"
    " decide_auth BLOB,"
    " issued_serial TEXT,"
    " issued_at BIGINT);"
    "CREATE INDEX applications_state ON applications (state);"
    "CREATE INDEX applications_applicant ON applications (applicant_id);"
    "CREATE TABLE notifications ("
    " id INTEGER PRIMARY KEY,"
    " application_id BIGINT,"
    " revocation_id BIGINT,"
    " channel TEXT NOT NULL,"
    " recipient TEXT,"
    " text TEXT NOT NULL,"
    " time BIGINT NOT NULL);"
    "CREATE TABLE revocation_requests ("
    " id INTEGER PRIMARY KEY,"
    " serial TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " reason_code INTEGER NOT NULL,"
    " requester TEXT NOT NULL,"
    " authority TEXT,"
    " document_ref TEXT,"
    " note TEXT,"
    " state TEXT NOT NULL,"
    " requested_by TEXT NOT NULL,"
    " requested_at BIGINT NOT NULL,"
    " deadline BIGINT NOT NULL,"
    " request_auth BLOB NOT NULL,"
    " completed_by TEXT,"
    " completed_at BIGINT);"
    "CREATE INDEX revocation_requests_state ON revocation_requests (state);"
    /* The CA engine refuses a second certificate from one CSR (ra_check.c). */
    "CREATE INDEX requests_csr ON requests (csr_der);"
    /* A CRL reads the revoked certificates of a CA in revocation order (ST_REVOKED_LIST):
     * without this index SQLite sorts a million full rows, a third of a large CRL's time. */
    "CREATE INDEX certificates_revoked ON certificates (ca_id, revoked_at, serial)"
    " WHERE status = 1;",
    /* 4: delta CRLs (RFC 5280 §5.2.4) share the cRLNumber sequence of their CA with the
     * complete CRLs; base_number is the complete CRL a delta is relative to, NULL for a
     * complete CRL. */
    "ALTER TABLE crls ADD COLUMN base_number BIGINT;",
    /*
     * 5: the key management centre (km.h), in the KM's own database (created empty in a
     * CA's too): escrowed encryption keys, private key only as IV || SM4-GCM || tag under
     * K_escrow (NULL once destroyed), and the task numbers seen, against replay.
     */
    "CREATE TABLE km_keys ("
    " serial TEXT PRIMARY KEY,"
    " ca TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " pub BLOB NOT NULL,"
    " enc_priv BLOB,"
    " not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " state TEXT NOT NULL,"
    " retain_until BIGINT NOT NULL,"
    " task_no TEXT NOT NULL,"
    " created BIGINT NOT NULL,"
    " state_time BIGINT NOT NULL);"
    "CREATE INDEX km_keys_state ON km_keys (state, not_after);"
    "CREATE TABLE km_tasks ("
    " requester TEXT NOT NULL,"
    " task_no TEXT NOT NULL,"
    " time BIGINT NOT NULL,"
    " PRIMARY KEY (requester, task_no));",
    /*
     * 6: the CA's side of dual certificates (km.h). dual_keys: each encryption certificate
     * issued for a KM key pair, the signature certificate it pairs with, and the key pair
     * sealed to that signature key (SM2EnvelopedKey and ENVELOPEDKEYBLOB: nobody but the
     * subscriber can open them). key_recoveries: CPS §3.10 recoveries, requested by one
     * operator and approved by another (the signed requests kept as proofs for the CA
     * engine), and what the KM delivered.
     */
    "CREATE TABLE dual_keys ("
    " enc_serial TEXT PRIMARY KEY REFERENCES certificates (serial),"
    " sig_serial TEXT NOT NULL REFERENCES certificates (serial),"
    " envelope BLOB NOT NULL,"
    " blob BLOB,"
    " created BIGINT NOT NULL);"
    "CREATE INDEX dual_keys_sig ON dual_keys (sig_serial);"
    "CREATE TABLE key_recoveries ("
    " id INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK (kind IN ('subscriber', 'judicial')),"
    " enc_serial TEXT NOT NULL REFERENCES certificates (serial),"
    " recipient_serial TEXT,"
    " recipient_key BLOB,"
    " authority TEXT,"
    " document_ref TEXT,"
    " reason TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " requested_by TEXT NOT NULL,"
    " requested_at BIGINT NOT NULL,"
    " request_auth BLOB NOT NULL,"
    " decided_by TEXT,"
    " decided_at BIGINT,"
    " decide_auth BLOB,"
    " envelope BLOB,"
    " blob BLOB,"
    " delivered_at BIGINT);"
    "CREATE INDEX key_recoveries_state ON key_recoveries (state);",
    /*
     * 7: the change feed of what relying parties must learn (publish.h): every certificate
     * issued or revoked and every CRL, appended in the transaction of the change itself, in
     * commit order of id; and how far each delivery channel (the LDAP directory, each sync
     * receiver) has got through it.
     */
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " time BIGINT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('cert.issue', 'cert.revoke', 'crl.issue')),"
    " serial TEXT,"
    " ca_id BIGINT NOT NULL,"
    " number BIGINT NOT NULL);"
    "CREATE TABLE publish_state ("
    " channel TEXT PRIMARY KEY,"
    " last_event BIGINT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " next_at BIGINT NOT NULL,"
    " last_error TEXT,"
    " updated BIGINT NOT NULL);",
    /*
     * 8: the subscriber agreement's word on the directory (CPS §3.4.2, ldap_pub.h): an
     * application submitted with "publish_directory": false keeps its certificate out of it;
     * NULL (every older application) follows the profile.
     */
    "ALTER TABLE applications ADD COLUMN publish_directory INTEGER;",
    /*
     * 9: statistics (stats.h) find the application of each certificate issued, and the
     * applications issued in a period, without scanning the applications.
     */
    "CREATE INDEX applications_issued_serial ON applications (issued_serial);"
    "CREATE INDEX applications_issued_at ON applications (issued_at);",
    /*
     * 10: the index of migration 3 on whole CSRs again, for PostgreSQL, whose btree refuses
     * keys over 2,704 bytes (a CSR with a long extension list): store_pg.c makes an index on
     * a DER column a hash index there. SQLite rebuilds the same index once.
     */
    "DROP INDEX requests_csr;"
    "CREATE INDEX requests_csr ON requests (csr_der);",
    /*
     * 11: the completing business admin's signed request (auth.h proof) of a revocation
     * request, beside the requester's (request_auth): the CA engine checks both before it
     * revokes (ca_ra_revoke.c), so a front cannot revoke on its own word.
     */
    "ALTER TABLE revocation_requests ADD COLUMN complete_auth BLOB;",
    /*
     * 12: the engine looks for its own record of a completed revocation or a delivered
     * recovery by object before acting (ca_ra_revoke.c, ca_km_recover.c), once per request:
     * without an index that is a scan of the whole audit log. Auditors search by object too.
     */
    "CREATE INDEX audit_object ON audit (object);",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define STORE_EXT_MAX 96 /* statements of other modules (store_internal.h) */

enum stmt {
        ST_VERSION_GET,
        ST_VERSION_ADD,
        ST_CA_INSERT,
        ST_CA_GET,
        ST_CA_GET_ID,
        ST_CA_LIST,
        ST_CA_SET_STATE,
        ST_CA_SET_CERT,
        ST_REISSUE_INSERT,
        ST_REISSUE_LIST,
        ST_CERT_INSERT,
        ST_CERT_STATUS,
        ST_CERT_GET,
        ST_CERT_REVOKE,
        ST_CERT_REVOKE_PAIR,
        ST_EVENT_ADD,
        ST_EVENT_PAIR_REVOKE,
        ST_CERT_LIST,
        ST_REVOKED_LIST,
        ST_CERT_COUNT,
        ST_REQ_INSERT,
        ST_REQ_STATUS,
        ST_REQ_GET,
        ST_CRL_MAX,
        ST_CRL_EXISTS,
        ST_CRL_INSERT,
        ST_CRL_LATEST,
        ST_CRL_LATEST_DELTA,
        ST_CRL_GET,
        ST_CRL_LIST,
        ST_AUDIT_LAST,
        ST_AUDIT_INSERT,
        ST_AUDIT_ITER,
        ST_META_GET,
        ST_META_SET,
        ST_COUNT
};

#define CA_COLS                                                                                    \
        "id, name, parent_id, subject, key_file, sm2_id, created, cert_der, key_state, state_time"
#define CRL_COLS "ca_id, number, this_update, next_update, entries, COALESCE(base_number, 0)"
#define CERT_COLS                                                                                  \
        "serial, ca_id, subject, profile, not_before, not_after, issued_at, status, revoked_at, "  \
        "reason, invalidity_date, fingerprint, request_id"
#define AUDIT_COLS "seq, time, event, actor, success, object, detail, prev, hash"

static const char *const sql[ST_COUNT] = {
    [ST_VERSION_GET] = "SELECT COALESCE(MAX(version), 0) FROM schema_version",
    [ST_VERSION_ADD] = "INSERT INTO schema_version (version, applied) VALUES (?, ?)",
    [ST_CA_INSERT] = "INSERT INTO cas (name, parent_id, subject, key_file, sm2_id, created, "
                     "cert_der, key_state, state_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                     " RETURNING id",
    [ST_CA_GET] = "SELECT " CA_COLS " FROM cas WHERE name = ?",
    [ST_CA_GET_ID] = "SELECT " CA_COLS " FROM cas WHERE id = ?",
    [ST_CA_LIST] = "SELECT " CA_COLS " FROM cas ORDER BY id",
    [ST_CA_SET_STATE] = "UPDATE cas SET key_state = ?, state_time = ? WHERE id = ?",
    [ST_CA_SET_CERT] = "UPDATE cas SET cert_der = ?, parent_id = ? WHERE id = ?",
    [ST_REISSUE_INSERT] = "INSERT INTO reissues (job, old_serial, new_serial, time)"
                          " VALUES (?, ?, ?, ?)",
    [ST_REISSUE_LIST] = "SELECT old_serial, new_serial, time FROM reissues WHERE job = ?"
                        " ORDER BY time, old_serial",
    [ST_CERT_INSERT] = "INSERT INTO certificates (" CERT_COLS ", der) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_CERT_STATUS] = "SELECT status FROM certificates WHERE serial = ?",
    [ST_CERT_GET] = "SELECT " CERT_COLS ", der FROM certificates WHERE serial = ?",
    [ST_CERT_REVOKE] = "UPDATE certificates SET status = 1, revoked_at = ?, reason = ?, "
                       "invalidity_date = ? WHERE serial = ? AND status = 0",
    [ST_EVENT_ADD] = "INSERT INTO events (time, kind, serial, ca_id, number)"
                     " VALUES (?, ?, ?, ?, ?)",
    [ST_EVENT_PAIR_REVOKE] = "INSERT INTO events (time, kind, serial, ca_id, number)"
                             " SELECT ?, 'cert.revoke', c.serial, c.ca_id, 0"
                             " FROM dual_keys d JOIN certificates c ON c.serial = d.enc_serial"
                             " WHERE d.sig_serial = ? AND c.status = 0",
    [ST_CERT_REVOKE_PAIR] = "UPDATE certificates SET status = 1, revoked_at = ?, reason = ?, "
                            "invalidity_date = ? WHERE status = 0 AND serial IN "
                            "(SELECT enc_serial FROM dual_keys WHERE sig_serial = ?)",
    /*
     * Optional filters are flag parameters (? = 0 OR ...) rather than
     * `? IS NULL`, whose type PostgreSQL cannot infer.
     */
    [ST_CERT_LIST] = "SELECT " CERT_COLS " FROM certificates"
                     " WHERE (? = 0 OR ca_id = ?)"
                     " AND (? = 0 OR subject LIKE ? ESCAPE '\\')"
                     " AND (? = 0 OR profile = ?)"
                     " AND (? = -1"
                     "  OR (? = 0 AND status = 0 AND not_after >= ?)"
                     "  OR (? = 1 AND status = 1)"
                     "  OR (? = 2 AND status = 0 AND not_after < ?))"
                     " ORDER BY issued_at, serial LIMIT ? OFFSET ?",
    [ST_REVOKED_LIST] = "SELECT " CERT_COLS " FROM certificates WHERE ca_id = ? AND status = 1"
                        " AND revoked_at >= ? ORDER BY revoked_at, serial",
    [ST_CERT_COUNT] = "SELECT COUNT(*) FROM certificates",
    [ST_REQ_INSERT] = "INSERT INTO requests (created, ca_id, profile, subject, status, serial, "
                      "csr_der, info_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    [ST_REQ_STATUS] = "UPDATE requests SET status = ?, serial = ? WHERE id = ?",
    [ST_REQ_GET] = "SELECT id, created, ca_id, profile, subject, status, serial FROM requests"
                   " WHERE id = ?",
    [ST_CRL_MAX] = "SELECT COALESCE(MAX(number), 0) FROM crls WHERE ca_id = ?",
    [ST_CRL_EXISTS] = "SELECT 1 FROM crls WHERE ca_id = ? AND number = ?",
    [ST_CRL_INSERT] = "INSERT INTO crls (ca_id, number, this_update, next_update, entries, der,"
                      " base_number) VALUES (?, ?, ?, ?, ?, ?, NULLIF(?, 0))",
    [ST_CRL_LATEST] = "SELECT " CRL_COLS ", der FROM crls"
                      " WHERE ca_id = ? AND base_number IS NULL ORDER BY number DESC LIMIT 1",
    [ST_CRL_LATEST_DELTA] = "SELECT " CRL_COLS ", der FROM crls"
                            " WHERE ca_id = ? AND base_number IS NOT NULL"
                            " ORDER BY number DESC LIMIT 1",
    [ST_CRL_GET] = "SELECT " CRL_COLS ", der FROM crls WHERE ca_id = ? AND number = ?",
    [ST_CRL_LIST] = "SELECT " CRL_COLS " FROM crls WHERE ca_id = ? ORDER BY number",
    [ST_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (" AUDIT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [ST_AUDIT_ITER] = "SELECT " AUDIT_COLS " FROM audit"
                      " WHERE (? = 0 OR time >= ?)"
                      " AND (? = 0 OR time <= ?)"
                      " AND (? = 0 OR (? = 1 AND event = ?)"
                      "  OR (? = 2 AND substr(event, 1, CAST(? AS INTEGER)) = ?))"
                      " AND (? = 0 OR actor = ?)"
                      " ORDER BY seq LIMIT ?",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
};

struct gmca_store {
        const struct gmca_db_ops *ops;
        struct gmca_db *db;
        int in_tx;
        int version;
        struct {
                struct gmca_db_stmt *st;
                int busy; /* in use by a caller further up the stack (a list callback) */
        } cache[ST_COUNT];
        struct {
                const char *sql; /* the caller's static SQL text, compared by address */
                struct gmca_db_stmt *st;
                int busy;
        } ext[STORE_EXT_MAX];
};

/*
 * One use of a statement: binds are numbered in call order, the first bind
 * failure is kept for q_step to report. q_close returns a cached statement
 * to the cache, reset, or finalizes a one-off one.
 */
struct q {
        struct gmca_store *s;
        struct gmca_db_stmt *st;
        enum stmt id;
        int owned;
        int idx;
        int rc;
};

static int q_open(struct gmca_store *s, enum stmt id, struct q *q, struct gmca_error *e)
{
        int rc;

        memset(q, 0, sizeof(*q));
        q->s = s;
        q->id = id;
        if (s->cache[id].busy) {
                /* Re-entered from a callback: use a statement of our own. */
                if ((rc = s->ops->prepare(s->db, sql[id], &q->st)) != 0)
                        goto fail;
                q->owned = 1;
                return 0;
        }
        if (s->cache[id].st == NULL &&
            (rc = s->ops->prepare(s->db, sql[id], &s->cache[id].st)) != 0)
                goto fail;
        q->st = s->cache[id].st;
        s->cache[id].busy = 1;
        return 0;
fail:
        q->st = NULL;
        return gmca_error_set(e, rc, "store: cannot prepare statement %d: %s", (int)id,
                              s->ops->errmsg(s->db));
}

static void q_close(struct q *q)
{
        if (q->st == NULL)
                return;
        if (q->owned) {
                q->s->ops->finalize(q->st);
        } else {
                q->s->ops->reset(q->st);
                q->s->cache[q->id].busy = 0;
        }
        q->st = NULL;
}

/* A SELECT whose rows may be too many to hold at once (store_db.h stream). */
static void q_stream(struct q *q)
{
        if (q->s->ops->stream != NULL)
                q->s->ops->stream(q->st);
}

static void q_int(struct q *q, int64_t v)
{
        q->idx++;
        if (q->rc == 0)
                q->rc = q->s->ops->bind_int64(q->st, q->idx, v);
}

static void q_text(struct q *q, const char *v)
{
        q->idx++;
        if (q->rc == 0)
                q->rc = q->s->ops->bind_text(q->st, q->idx, v);
}

static void q_blob(struct q *q, const void *p, size_t n)
{
        q->idx++;
        if (q->rc == 0)
                q->rc = p != NULL ? q->s->ops->bind_blob(q->st, q->idx, p, n)
                                  : q->s->ops->bind_null(q->st, q->idx);
}

/*
 * Run one step. GMCA_DB_ROW or GMCA_DB_DONE, or an error classified and
 * worded for what the statement was doing (fmt): a duplicate key is
 * GMCA_ERR_EXISTS, a reference to a missing row GMCA_ERR_NOTFOUND, another
 * violated constraint GMCA_ERR_INVALID, the rest GMCA_ERR_DB.
 */
static int q_step(struct q *q, struct gmca_error *e, const char *fmt, ...) GMCA_PRINTF(3, 4);
static int q_step(struct q *q, struct gmca_error *e, const char *fmt, ...)
{
        const struct gmca_db_ops *ops = q->s->ops;
        char what[256];
        va_list ap;
        int rc = GMCA_ERR_DB;

        if (q->rc == 0 && (rc = ops->step(q->st)) >= 0)
                return rc;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (q->rc != 0)
                return gmca_error_set(e, q->rc, "store: %s: cannot bind parameter %d", what,
                                      q->idx);
        switch (ops->constraint(q->s->db)) {
        case GMCA_DB_C_UNIQUE:
                return gmca_error_set(e, GMCA_ERR_EXISTS, "store: %s: already exists", what);
        case GMCA_DB_C_FOREIGN:
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "store: %s: refers to a CA or record that does not exist",
                                      what);
        case GMCA_DB_C_NONE:
                return gmca_error_set(e, rc, "store: %s: %s", what, ops->errmsg(q->s->db));
        default:
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: %s: %s", what,
                                      ops->errmsg(q->s->db));
        }
}

/* Copy a text column into buf; GMCA_ERR_DB if it does not fit (a corrupt row). */
static int col_str(struct q *q, int col, char *buf, size_t len, const char *name,
                   struct gmca_error *e)
{
        const char *t = q->s->ops->column_text(q->st, col);
        size_t n = t != NULL ? q->s->ops->column_bytes(q->st, col) : 0;

        if (n >= len)
                return gmca_error_set(e, GMCA_ERR_DB,
                                      "store: %s: stored value of %zu bytes, over %zu", name, n,
                                      len - 1);
        if (n > 0)
                memcpy(buf, t, n);
        buf[n] = '\0';
        return 0;
}

/* Copy a blob column into a new OPENSSL_malloc buffer (NULL for SQL NULL). */
static int col_dup(struct q *q, int col, uint8_t **p, size_t *len, struct gmca_error *e)
{
        const void *b = q->s->ops->column_blob(q->st, col);
        size_t n = q->s->ops->column_bytes(q->st, col);

        *p = NULL;
        *len = 0;
        if (q->s->ops->column_is_null(q->st, col))
                return 0;
        if ((*p = OPENSSL_malloc(n > 0 ? n : 1)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "store: out of memory");
        if (n > 0)
                memcpy(*p, b, n);
        *len = n;
        return 0;
}

/* ---- statements of other modules (store_internal.h) ---- */

int gmca_q_open(struct gmca_store *s, const char *text, struct gmca_q *q, struct gmca_error *e)
{
        int i, free_slot = -1, rc;

        memset(q, 0, sizeof(*q));
        q->s = s;
        q->slot = -1;
        for (i = 0; i < STORE_EXT_MAX; i++) {
                if (s->ext[i].sql == text)
                        break;
                if (s->ext[i].sql == NULL && free_slot < 0)
                        free_slot = i;
        }
        if (i == STORE_EXT_MAX)
                i = free_slot;
        if (i < 0 || s->ext[i].busy) {
                /* No room in the cache, or re-entered from a callback. */
                if ((rc = s->ops->prepare(s->db, text, &q->st)) != 0)
                        goto fail;
                return 0;
        }
        if (s->ext[i].sql == NULL) {
                if ((rc = s->ops->prepare(s->db, text, &s->ext[i].st)) != 0)
                        goto fail;
                s->ext[i].sql = text;
        }
        q->st = s->ext[i].st;
        q->slot = i;
        s->ext[i].busy = 1;
        return 0;
fail:
        q->st = NULL;
        return gmca_error_set(e, rc, "store: cannot prepare statement: %s", s->ops->errmsg(s->db));
}

void gmca_q_close(struct gmca_q *q)
{
        if (q->st == NULL)
                return;
        if (q->slot < 0) {
                q->s->ops->finalize(q->st);
        } else {
                q->s->ops->reset(q->st);
                q->s->ext[q->slot].busy = 0;
        }
        q->st = NULL;
}

/* The store's own struct q, borrowed for the shared bind and step code. */
static struct q as_q(struct gmca_q *g)
{
        struct q q = {
            .s = g->s, .st = g->st, .id = ST_COUNT, .owned = 1, .idx = g->idx, .rc = g->rc};
        return q;
}

void gmca_q_stream(struct gmca_q *g)
{
        struct q q = as_q(g);

        q_stream(&q);
}

void gmca_q_int(struct gmca_q *g, int64_t v)
{
        struct q q = as_q(g);

        q_int(&q, v);
        g->idx = q.idx;
        g->rc = q.rc;
}

void gmca_q_text(struct gmca_q *g, const char *v)
{
        struct q q = as_q(g);

        q_text(&q, v);
        g->idx = q.idx;
        g->rc = q.rc;
}

void gmca_q_blob(struct gmca_q *g, const void *p, size_t n)
{
        struct q q = as_q(g);

        q_blob(&q, p, n);
        g->idx = q.idx;
        g->rc = q.rc;
}

int gmca_q_step(struct gmca_q *g, struct gmca_error *e, const char *fmt, ...)
{
        struct q q = as_q(g);
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return q_step(&q, e, "%s", what);
}

int64_t gmca_q_col_int(struct gmca_q *g, int col)
{
        return g->s->ops->column_int64(g->st, col);
}

int gmca_q_col_null(struct gmca_q *g, int col)
{
        return g->s->ops->column_is_null(g->st, col);
}

const char *gmca_q_col_text(struct gmca_q *g, int col)
{
        return g->s->ops->column_text(g->st, col);
}

const void *gmca_q_col_blob(struct gmca_q *g, int col, size_t *len)
{
        const void *p = g->s->ops->column_blob(g->st, col);

        *len = g->s->ops->column_bytes(g->st, col);
        return p;
}

int gmca_q_col_str(struct gmca_q *g, int col, char *buf, size_t len, const char *name,
                   struct gmca_error *e)
{
        struct q q = as_q(g);

        return col_str(&q, col, buf, len, name, e);
}

int gmca_q_col_dup(struct gmca_q *g, int col, uint8_t **p, size_t *len, struct gmca_error *e)
{
        struct q q = as_q(g);

        return col_dup(&q, col, p, len, e);
}

int64_t gmca_q_changes(struct gmca_q *g)
{
        return g->s->ops->changes(g->s->db);
}

/* ---- input checks ---- */

static int valid_serial(const char *serial)
{
        size_t n;

        if (serial == NULL)
                return 0;
        n = strnlen(serial, GMCA_SERIAL_HEX_MAX);
        if (n == 0 || n >= GMCA_SERIAL_HEX_MAX)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!((serial[i] >= '0' && serial[i] <= '9') ||
                      (serial[i] >= 'A' && serial[i] <= 'F')))
                        return 0;
        return 1;
}

static int check_serial(const char *serial, struct gmca_error *e)
{
        if (!valid_serial(serial))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "store: serial must be 1 to %d upper-case hex digits",
                                      GMCA_SERIAL_HEX_MAX - 1);
        return 0;
}

/* A name (CA, profile, metadata key): 1 to max-1 bytes, no control characters. */
static int check_name(const char *v, size_t max, const char *what, struct gmca_error *e)
{
        size_t n;

        if (v == NULL || (n = strnlen(v, max)) == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: %s is empty", what);
        if (n >= max)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: %s is longer than %zu bytes",
                                      what, max - 1);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "store: %s contains a control character", what);
        return 0;
}

static int check_blob(const void *p, size_t n, size_t max, const char *what, struct gmca_error *e)
{
        if (p == NULL || n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: %s is empty", what);
        if (n > max)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "store: %s is %zu bytes, over %zu", what,
                                      n, max);
        return 0;
}

/* ---- open, migrate, transactions ---- */

static int exec_sql(struct gmca_store *s, const char *text, const char *what, struct gmca_error *e)
{
        int rc = s->ops->exec(s->db, text);

        if (rc != 0)
                return gmca_error_set(e, rc, "store: %s: %s", what, s->ops->errmsg(s->db));
        return 0;
}

static int version_get(struct gmca_store *s, int *version, struct gmca_error *e)
{
        struct q q;
        int64_t v;
        int rc;

        if ((rc = q_open(s, ST_VERSION_GET, &q, e)) != 0)
                return rc;
        if ((rc = q_step(&q, e, "schema version")) == GMCA_DB_ROW) {
                v = s->ops->column_int64(q.st, 0);
                if (v < 0 || v > 1000000)
                        rc = gmca_error_set(e, GMCA_ERR_DB,
                                            "store: schema version %lld is not sane", (long long)v);
                else {
                        *version = (int)v;
                        rc = 0;
                }
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: schema version: no answer");
        }
        q_close(&q);
        return rc;
}

static int migrate(struct gmca_store *s, struct gmca_error *e)
{
        struct q q;
        char what[48];
        int rc, v, from;

        /* Look before creating: the front's PostgreSQL role may not create tables
         * (store_roles.h), not even IF NOT EXISTS. */
        if (version_get(s, &v, NULL) != 0) {
                if ((rc = exec_sql(s,
                                   "CREATE TABLE IF NOT EXISTS schema_version ("
                                   " version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
                                   "schema_version", e)) != 0)
                        return rc;
                if ((rc = version_get(s, &v, e)) != 0)
                        return rc;
        }
        from = v;
        for (int next = v + 1; next <= NMIGRATIONS; next++) {
                if ((rc = gmca_store_begin(s, e)) != 0)
                        return rc;
                /* Another process may have migrated since we looked. */
                if ((rc = version_get(s, &v, e)) != 0)
                        goto fail;
                if (v >= next)
                        goto done;
                snprintf(what, sizeof(what), "migration %d", next);
                if ((rc = exec_sql(s, migrations[next - 1], what, e)) != 0)
                        goto fail;
                if ((rc = q_open(s, ST_VERSION_ADD, &q, e)) != 0)
                        goto fail;
                q_int(&q, next);
                q_int(&q, (int64_t)gmca_now());
                rc = q_step(&q, e, "schema version %d", next);
                q_close(&q);
                if (rc < 0)
                        goto fail;
        done:
                if ((rc = gmca_store_commit(s, e)) != 0)
                        return rc;
        }
        if ((rc = version_get(s, &v, e)) != 0)
                return rc;
        if (v > NMIGRATIONS)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "store: database schema version %d is newer than this "
                                      "gmca's (%d)",
                                      v, NMIGRATIONS);
        s->version = v;
        /* New tables start with no rights for the front's role: grant its list again. */
        if (v > from)
                return gmca_store_front_role_reapply(s, e);
        return 0;
fail:
        gmca_store_rollback(s);
        return rc;
}

int gmca_store_uri_is_pg(const char *uri)
{
        return uri != NULL &&
               (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0);
}

int gmca_store_uri_check(const char *uri, struct gmca_error *e)
{
        size_t n = uri != NULL ? strnlen(uri, GMCA_STORE_URI_MAX) : 0;
        const char *auth, *end, *at;

        if (!gmca_store_uri_is_pg(uri) || n >= GMCA_STORE_URI_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "database: want a postgresql:// URI under %d bytes",
                                      GMCA_STORE_URI_MAX);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)uri[i] <= 0x20 || uri[i] == 0x7f)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "database: the URI contains a space or control "
                                              "character");
        auth = strstr(uri, "://") + 3;
        end = auth + strcspn(auth, "/?");
        at = memchr(auth, '@', (size_t)(end - auth));
        if ((at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL) ||
            strstr(uri, "password=") != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "database: no password in the URI (it would be stored in "
                                      "the configuration): use PGPASSFILE or peer authentication");
        return 0;
}

struct gmca_store *gmca_store_open(const char *uri, struct gmca_error *e)
{
        struct gmca_store *s = NULL, *ret = NULL;
        const char *path;

        if (uri == NULL || uri[0] == '\0') {
                gmca_error_set(e, GMCA_ERR_INVALID, "store: no database given");
                goto out;
        }
        path = strncmp(uri, "sqlite:", 7) == 0 ? uri + 7 : uri;
        if (gmca_store_uri_is_pg(uri)) {
                path = uri; /* libpq's connection URI as given */
        } else if (strstr(uri, "://") != NULL || strncmp(uri, "postgres", 8) == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "store: %s: not a file path or a postgresql:// URI", uri);
                goto out;
        }
        if (path[0] == '\0') {
                gmca_error_set(e, GMCA_ERR_INVALID, "store: %s: empty path", uri);
                goto out;
        }
        if ((s = calloc(1, sizeof(*s))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "store: out of memory");
                goto out;
        }
        s->ops = gmca_store_uri_is_pg(uri) ? gmca_db_postgresql() : gmca_db_sqlite();
        if (s->ops->open(path, &s->db, e) != 0 || migrate(s, e) != 0)
                goto out;
        ret = s;
        s = NULL;
out:
        gmca_store_close(s);
        return ret;
}

void gmca_store_close(struct gmca_store *s)
{
        if (s == NULL)
                return;
        gmca_store_rollback(s);
        for (int i = 0; i < ST_COUNT; i++)
                s->ops->finalize(s->cache[i].st);
        for (int i = 0; i < STORE_EXT_MAX; i++)
                s->ops->finalize(s->ext[i].st);
        s->ops->close(s->db);
        free(s);
}

int gmca_store_schema_latest(void)
{
        return NMIGRATIONS;
}

int gmca_store_schema_version(struct gmca_store *s)
{
        return s->version;
}

int gmca_store_is_pg(struct gmca_store *s)
{
        return s->ops == gmca_db_postgresql();
}

int gmca_store_exec(struct gmca_store *s, const char *text, struct gmca_error *e)
{
        return exec_sql(s, text, "statement", e);
}

int gmca_store_begin(struct gmca_store *s, struct gmca_error *e)
{
        int rc;

        if (s->in_tx)
                return gmca_error_set(e, GMCA_ERR_STATE, "store: a transaction is already open");
        if ((rc = exec_sql(s, s->ops->begin_sql, "begin transaction", e)) != 0)
                return rc;
        s->in_tx = 1;
        return 0;
}

int gmca_store_commit(struct gmca_store *s, struct gmca_error *e)
{
        int rc;

        if (!s->in_tx)
                return gmca_error_set(e, GMCA_ERR_STATE, "store: commit without a transaction");
        if ((rc = exec_sql(s, "COMMIT", "commit", e)) != 0) {
                /* Leave no half-open transaction behind: nothing was written. */
                gmca_store_rollback(s);
                return rc;
        }
        s->in_tx = 0;
        return 0;
}

void gmca_store_rollback(struct gmca_store *s)
{
        if (s == NULL || !s->in_tx)
                return;
        (void)s->ops->exec(s->db, "ROLLBACK");
        s->in_tx = 0;
}

int gmca_store_in_transaction(const struct gmca_store *s)
{
        return s->in_tx;
}

/* ---- CAs ---- */

void gmca_ca_rec_clear(struct gmca_ca_rec *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->cert_der);
        memset(r, 0, sizeof(*r));
}

int gmca_store_ca_insert(struct gmca_store *s, struct gmca_ca_rec *r, struct gmca_error *e)
{
        struct q q = {0};
        int rc;

        if ((rc = check_name(r->name, sizeof(r->name), "CA name", e)) != 0)
                return rc;
        if (r->parent_id < 0 || !FIELD_OK(r->subject) || !FIELD_OK(r->key_file) ||
            !FIELD_OK(r->sm2_id) ||
            (r->key_state[0] != '\0' && !gmca_key_state_valid(r->key_state)))
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: CA %s: malformed record",
                                      r->name);
        if (r->cert_der != NULL &&
            (rc = check_blob(r->cert_der, r->cert_len, DER_MAX, "CA certificate", e)) != 0)
                return rc;
        if ((rc = q_open(s, ST_CA_INSERT, &q, e)) != 0)
                return rc;
        q_text(&q, r->name);
        if (r->parent_id == 0)
                q_blob(&q, NULL, 0);
        else
                q_int(&q, r->parent_id);
        q_text(&q, r->subject);
        q_text(&q, r->key_file);
        q_text(&q, r->sm2_id);
        q_int(&q, r->created);
        q_blob(&q, r->cert_der, r->cert_len);
        q_text(&q, r->key_state[0] != '\0' ? r->key_state : GMCA_KEY_ACTIVE);
        q_int(&q, r->state_time);
        if ((rc = q_step(&q, e, "CA %s", r->name)) == GMCA_DB_ROW) {
                r->id = s->ops->column_int64(q.st, 0);
                rc = q_step(&q, e, "CA %s", r->name);
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: CA %s: no id returned", r->name);
        }
        q_close(&q);
        return rc < 0 ? rc : 0;
}

static int ca_row(struct q *q, struct gmca_ca_rec *out, struct gmca_error *e)
{
        const struct gmca_db_ops *ops = q->s->ops;
        struct gmca_ca_rec r;
        int rc;

        memset(&r, 0, sizeof(r));
        r.id = ops->column_int64(q->st, 0);
        r.parent_id = ops->column_is_null(q->st, 2) ? 0 : ops->column_int64(q->st, 2);
        r.created = ops->column_int64(q->st, 6);
        if ((rc = col_str(q, 1, r.name, sizeof(r.name), "cas.name", e)) != 0 ||
            (rc = col_str(q, 3, r.subject, sizeof(r.subject), "cas.subject", e)) != 0 ||
            (rc = col_str(q, 4, r.key_file, sizeof(r.key_file), "cas.key_file", e)) != 0 ||
            (rc = col_str(q, 5, r.sm2_id, sizeof(r.sm2_id), "cas.sm2_id", e)) != 0 ||
            (rc = col_str(q, 8, r.key_state, sizeof(r.key_state), "cas.key_state", e)) != 0 ||
            (rc = col_dup(q, 7, &r.cert_der, &r.cert_len, e)) != 0)
                return rc;
        r.state_time = ops->column_int64(q->st, 9);
        *out = r;
        return 0;
}

static int ca_get(struct gmca_store *s, enum stmt id, const char *name, int64_t ca_id,
                  struct gmca_ca_rec *out, struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = q_open(s, id, &q, e)) != 0)
                return rc;
        if (name != NULL)
                q_text(&q, name);
        else
                q_int(&q, ca_id);
        rc = q_step(&q, e, "CA lookup");
        if (rc == GMCA_DB_ROW)
                rc = ca_row(&q, out, e);
        else if (rc == GMCA_DB_DONE && name != NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: CA %s not found", name);
        else if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: CA with id %lld not found",
                                    (long long)ca_id);
        q_close(&q);
        return rc;
}

int gmca_store_ca_get(struct gmca_store *s, const char *name, struct gmca_ca_rec *out,
                      struct gmca_error *e)
{
        int rc;

        if ((rc = check_name(name, GMCA_NAME_MAX, "CA name", e)) != 0)
                return rc;
        return ca_get(s, ST_CA_GET, name, 0, out, e);
}

int gmca_store_ca_get_by_id(struct gmca_store *s, int64_t id, struct gmca_ca_rec *out,
                            struct gmca_error *e)
{
        return ca_get(s, ST_CA_GET_ID, NULL, id, out, e);
}

int gmca_store_ca_list(struct gmca_store *s, int (*cb)(const struct gmca_ca_rec *, void *),
                       void *arg, struct gmca_error *e)
{
        struct gmca_ca_rec r;
        struct q q;
        int rc;

        memset(&r, 0, sizeof(r));
        if ((rc = q_open(s, ST_CA_LIST, &q, e)) != 0)
                return rc;
        while ((rc = q_step(&q, e, "CA list")) == GMCA_DB_ROW) {
                if ((rc = ca_row(&q, &r, e)) != 0)
                        goto out;
                rc = cb(&r, arg);
                gmca_ca_rec_clear(&r);
                if (rc != 0)
                        goto out;
        }
out:
        q_close(&q);
        return rc;
}

int gmca_key_state_valid(const char *st)
{
        static const char *const states[] = {GMCA_KEY_ACTIVE, GMCA_KEY_SUPERSEDED,
                                             GMCA_KEY_COMPROMISED, GMCA_KEY_ARCHIVED,
                                             GMCA_KEY_DESTROYED};

        for (size_t i = 0; st != NULL && i < sizeof(states) / sizeof(states[0]); i++)
                if (strcmp(st, states[i]) == 0)
                        return 1;
        return 0;
}

int gmca_store_ca_set_state(struct gmca_store *s, int64_t ca_id, const char *state, int64_t when,
                            struct gmca_error *e)
{
        struct q q;
        int rc, changed;

        if (!gmca_key_state_valid(state) || when < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: bad CA key state");
        if ((rc = q_open(s, ST_CA_SET_STATE, &q, e)) != 0)
                return rc;
        q_text(&q, state);
        q_int(&q, when);
        q_int(&q, ca_id);
        rc = q_step(&q, e, "CA %lld state", (long long)ca_id);
        changed = s->ops->changes(s->db);
        q_close(&q);
        if (rc < 0)
                return rc;
        if (changed != 1)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: CA with id %lld not found",
                                      (long long)ca_id);
        return 0;
}

int gmca_store_ca_set_cert(struct gmca_store *s, int64_t ca_id, const uint8_t *der, size_t len,
                           int64_t parent_id, struct gmca_error *e)
{
        struct q q;
        int rc, changed;

        if (parent_id < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: bad CA parent");
        if ((rc = check_blob(der, len, DER_MAX, "CA certificate", e)) != 0)
                return rc;
        if ((rc = q_open(s, ST_CA_SET_CERT, &q, e)) != 0)
                return rc;
        q_blob(&q, der, len);
        if (parent_id > 0)
                q_int(&q, parent_id);
        else
                q_blob(&q, NULL, 0); /* NULL */
        q_int(&q, ca_id);
        rc = q_step(&q, e, "CA %lld certificate", (long long)ca_id);
        changed = s->ops->changes(s->db);
        q_close(&q);
        if (rc < 0)
                return rc;
        if (changed != 1)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: CA with id %lld not found",
                                      (long long)ca_id);
        return 0;
}

int gmca_store_snapshot(struct gmca_store *s, const char *path, struct gmca_error *e)
{
        struct gmca_db_stmt *st = NULL;
        int rc;

        if (s->in_tx)
                return gmca_error_set(e, GMCA_ERR_STATE, "store: snapshot inside a transaction");
        if (strcmp(s->ops->name, "sqlite") != 0) /* PostgreSQL: table by table */
                return gmca_db_copy_to_sqlite(s->ops, s->db, path, e);
        if ((rc = s->ops->prepare(s->db, "VACUUM INTO ?", &st)) != 0)
                return gmca_error_set(e, rc, "store: snapshot: %s", s->ops->errmsg(s->db));
        if ((rc = s->ops->bind_text(st, 1, path)) == 0) {
                rc = s->ops->step(st);
                rc = rc == GMCA_DB_DONE ? 0 : rc < 0 ? rc : GMCA_ERR_DB;
        }
        if (rc != 0)
                gmca_error_set(e, rc, "store: snapshot to %s: %s", path, s->ops->errmsg(s->db));
        s->ops->finalize(st);
        return rc;
}

int gmca_store_reissue_insert(struct gmca_store *s, const char *job, const char *old_serial,
                              const char *new_serial, int64_t when, struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = check_name(job, GMCA_NAME_MAX, "re-issue job", e)) != 0)
                return rc;
        if (old_serial == NULL || new_serial == NULL || old_serial[0] == '\0' ||
            new_serial[0] == '\0' || strlen(old_serial) >= GMCA_SERIAL_HEX_MAX ||
            strlen(new_serial) >= GMCA_SERIAL_HEX_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: re-issue: bad serial");
        if ((rc = q_open(s, ST_REISSUE_INSERT, &q, e)) != 0)
                return rc;
        q_text(&q, job);
        q_text(&q, old_serial);
        q_text(&q, new_serial);
        q_int(&q, when);
        rc = q_step(&q, e, "re-issue of %s", old_serial);
        q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_store_reissue_list(struct gmca_store *s, const char *job,
                            int (*cb)(const char *, const char *, int64_t, void *), void *arg,
                            struct gmca_error *e)
{
        char old_serial[GMCA_SERIAL_HEX_MAX], new_serial[GMCA_SERIAL_HEX_MAX];
        struct q q;
        int rc;

        if ((rc = check_name(job, GMCA_NAME_MAX, "re-issue job", e)) != 0)
                return rc;
        if ((rc = q_open(s, ST_REISSUE_LIST, &q, e)) != 0)
                return rc;
        q_text(&q, job);
        while ((rc = q_step(&q, e, "re-issue list")) == GMCA_DB_ROW) {
                if ((rc = col_str(&q, 0, old_serial, sizeof(old_serial), "reissues.old_serial",
                                  e)) != 0 ||
                    (rc = col_str(&q, 1, new_serial, sizeof(new_serial), "reissues.new_serial",
                                  e)) != 0)
                        break;
                if ((rc = cb(old_serial, new_serial, s->ops->column_int64(q.st, 2), arg)) != 0)
                        break;
        }
        q_close(&q);
        return rc;
}

/* ---- certificates ---- */

void gmca_cert_rec_clear(struct gmca_cert_rec *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->der);
        memset(r, 0, sizeof(*r));
}

static int valid_reason(int reason)
{
        /* RFC 5280 §5.3.1 CRLReason; 7 is unused; -1 means no reasonCode. */
        return reason >= -1 && reason <= 10 && reason != 7;
}

/* One entry of the change feed (migration 7, publish.h), in the caller's transaction. */
static int event_add(struct gmca_store *s, const char *kind, const char *serial, int64_t ca_id,
                     int64_t number, struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_EVENT_ADD, &q, e)) != 0)
                return rc;
        q_int(&q, (int64_t)time(NULL));
        q_text(&q, kind);
        q_text(&q, serial);
        q_int(&q, ca_id);
        q_int(&q, number);
        rc = q_step(&q, e, "event %s", kind);
        q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_store_cert_insert(struct gmca_store *s, const struct gmca_cert_rec *r,
                           struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = check_serial(r->serial, e)) != 0 ||
            (rc = check_name(r->profile, sizeof(r->profile), "profile name", e)) != 0)
                return rc;
        if (r->ca_id <= 0 || !FIELD_OK(r->subject) || !FIELD_OK(r->fingerprint) ||
            (r->status != GMCA_CERT_VALID && r->status != GMCA_CERT_REVOKED) ||
            !valid_reason(r->reason) || r->request_id < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "store: certificate %s: malformed record", r->serial);
        if ((rc = check_blob(r->der, r->der_len, DER_MAX, "certificate DER", e)) != 0)
                return rc;
        if ((rc = q_open(s, ST_CERT_INSERT, &q, e)) != 0)
                return rc;
        q_text(&q, r->serial);
        q_int(&q, r->ca_id);
        q_text(&q, r->subject);
        q_text(&q, r->profile);
        q_int(&q, r->not_before);
        q_int(&q, r->not_after);
        q_int(&q, r->issued_at);
        q_int(&q, r->status);
        q_int(&q, r->revoked_at);
        q_int(&q, r->reason);
        q_int(&q, r->invalidity_date);
        q_text(&q, r->fingerprint);
        q_int(&q, r->request_id);
        q_blob(&q, r->der, r->der_len);
        rc = q_step(&q, e, "certificate %s", r->serial);
        q_close(&q);
        if (rc < 0)
                return rc;
        return event_add(s, "cert.issue", r->serial, r->ca_id, 0, e);
}

/* *status = the certificate's status, or -1 if no certificate has serial. */
static int cert_status(struct gmca_store *s, const char *serial, int *status, struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_CERT_STATUS, &q, e)) != 0)
                return rc;
        q_text(&q, serial);
        rc = q_step(&q, e, "certificate %s", serial);
        if (rc >= 0) {
                *status = rc == GMCA_DB_ROW ? (int)s->ops->column_int64(q.st, 0) : -1;
                rc = 0;
        }
        q_close(&q);
        return rc;
}

int gmca_store_serial_exists(struct gmca_store *s, const char *serial, int *exists,
                             struct gmca_error *e)
{
        int rc, status = -1;

        if ((rc = check_serial(serial, e)) != 0 || (rc = cert_status(s, serial, &status, e)) != 0)
                return rc;
        *exists = status != -1;
        return 0;
}

static int cert_row(struct q *q, int with_der, struct gmca_cert_rec *out, struct gmca_error *e)
{
        const struct gmca_db_ops *ops = q->s->ops;
        struct gmca_cert_rec r;
        int rc;

        memset(&r, 0, sizeof(r));
        r.ca_id = ops->column_int64(q->st, 1);
        r.not_before = ops->column_int64(q->st, 4);
        r.not_after = ops->column_int64(q->st, 5);
        r.issued_at = ops->column_int64(q->st, 6);
        r.status = (int)ops->column_int64(q->st, 7);
        r.revoked_at = ops->column_int64(q->st, 8);
        r.reason = (int)ops->column_int64(q->st, 9);
        r.invalidity_date = ops->column_int64(q->st, 10);
        r.request_id = ops->column_int64(q->st, 12);
        if ((rc = col_str(q, 0, r.serial, sizeof(r.serial), "certificates.serial", e)) != 0 ||
            (rc = col_str(q, 2, r.subject, sizeof(r.subject), "certificates.subject", e)) != 0 ||
            (rc = col_str(q, 3, r.profile, sizeof(r.profile), "certificates.profile", e)) != 0 ||
            (rc = col_str(q, 11, r.fingerprint, sizeof(r.fingerprint), "certificates.fingerprint",
                          e)) != 0)
                return rc;
        if (with_der && (rc = col_dup(q, 13, &r.der, &r.der_len, e)) != 0)
                return rc;
        *out = r;
        return 0;
}

int gmca_store_cert_get(struct gmca_store *s, const char *serial, struct gmca_cert_rec *out,
                        struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = check_serial(serial, e)) != 0 || (rc = q_open(s, ST_CERT_GET, &q, e)) != 0)
                return rc;
        q_text(&q, serial);
        rc = q_step(&q, e, "certificate %s", serial);
        if (rc == GMCA_DB_ROW)
                rc = cert_row(&q, 1, out, e);
        else if (rc == GMCA_DB_DONE)
                rc =
                    gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: certificate %s not found", serial);
        q_close(&q);
        return rc;
}

int gmca_store_cert_revoke(struct gmca_store *s, const char *serial, int64_t revoked_at, int reason,
                           int64_t invalidity_date, struct gmca_error *e)
{
        struct q q;
        int64_t changed;
        int rc, status = -1;

        if ((rc = check_serial(serial, e)) != 0)
                return rc;
        if (revoked_at <= 0 || invalidity_date < 0 || !valid_reason(reason))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "store: revoke %s: bad time or reason code %d", serial,
                                      reason);
        if ((rc = q_open(s, ST_CERT_REVOKE, &q, e)) != 0)
                return rc;
        q_int(&q, revoked_at);
        q_int(&q, reason);
        q_int(&q, invalidity_date);
        q_text(&q, serial);
        rc = q_step(&q, e, "revoke %s", serial);
        changed = s->ops->changes(s->db);
        q_close(&q);
        if (rc < 0)
                return rc;
        if (changed == 1) {
                if ((rc = event_add(s, "cert.revoke", serial, 0, 0, e)) != 0)
                        return rc;
                /* The encryption certificate of a dual pair goes with its signature certificate. */
                if ((rc = q_open(s, ST_EVENT_PAIR_REVOKE, &q, e)) != 0)
                        return rc;
                q_int(&q, (int64_t)time(NULL));
                q_text(&q, serial);
                rc = q_step(&q, e, "revocation events of the pair of %s", serial);
                q_close(&q);
                if (rc < 0)
                        return rc;
                if ((rc = q_open(s, ST_CERT_REVOKE_PAIR, &q, e)) != 0)
                        return rc;
                q_int(&q, revoked_at);
                q_int(&q, reason);
                q_int(&q, invalidity_date);
                q_text(&q, serial);
                rc = q_step(&q, e, "revoke the encryption pair of %s", serial);
                q_close(&q);
                return rc < 0 ? rc : 0;
        }
        /* Nothing changed: tell an unknown serial from a revoked one. */
        if ((rc = cert_status(s, serial, &status, e)) != 0)
                return rc;
        if (status == -1)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: certificate %s not found",
                                      serial);
        return gmca_error_set(e, GMCA_ERR_STATE, "store: certificate %s is already revoked",
                              serial);
}

/* Escape LIKE's wildcards so that the filter is a plain substring. */
static void like_pattern(const char *v, char *out, size_t len)
{
        size_t o = 0;

        out[o++] = '%';
        for (; *v != '\0' && o + 3 < len; v++) {
                if (*v == '%' || *v == '_' || *v == '\\')
                        out[o++] = '\\';
                out[o++] = *v;
        }
        out[o++] = '%';
        out[o] = '\0';
}

int gmca_store_cert_list(struct gmca_store *s, const struct gmca_cert_filter *f,
                         int (*cb)(const struct gmca_cert_rec *, void *), void *arg,
                         struct gmca_error *e)
{
        static const struct gmca_cert_filter all = {.status = GMCA_STATUS_ANY};
        char pattern[2 * GMCA_DN_MAX + 3];
        struct gmca_cert_rec r;
        struct q q;
        int rc;

        if (f == NULL)
                f = &all;
        if (f->status < GMCA_STATUS_ANY || f->status > GMCA_STATUS_EXPIRED || f->limit < 0 ||
            f->offset < 0 || f->ca_id < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "store: certificate list: bad status, limit or offset");
        if (f->subject != NULL && strnlen(f->subject, GMCA_DN_MAX) >= GMCA_DN_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "store: certificate list: subject filter over %d bytes",
                                      GMCA_DN_MAX - 1);
        if (f->profile != NULL &&
            (rc = check_name(f->profile, GMCA_NAME_MAX, "profile filter", e)) != 0)
                return rc;
        if (f->subject != NULL)
                like_pattern(f->subject, pattern, sizeof(pattern));
        if ((rc = q_open(s, ST_CERT_LIST, &q, e)) != 0)
                return rc;
        q_stream(&q);
        q_int(&q, f->ca_id);
        q_int(&q, f->ca_id);
        q_int(&q, f->subject != NULL);
        q_text(&q, f->subject != NULL ? pattern : "");
        q_int(&q, f->profile != NULL);
        q_text(&q, f->profile != NULL ? f->profile : "");
        q_int(&q, f->status);
        q_int(&q, f->status);
        q_int(&q, f->now);
        q_int(&q, f->status);
        q_int(&q, f->status);
        q_int(&q, f->now);
        q_int(&q, f->limit > 0 ? f->limit : INT64_MAX);
        q_int(&q, f->offset);
        while ((rc = q_step(&q, e, "certificate list")) == GMCA_DB_ROW) {
                if ((rc = cert_row(&q, 0, &r, e)) != 0)
                        goto out;
                if ((rc = cb(&r, arg)) != 0)
                        goto out;
        }
out:
        q_close(&q);
        return rc;
}

int gmca_store_revoked_list(struct gmca_store *s, int64_t ca_id,
                            int (*cb)(const struct gmca_cert_rec *, void *), void *arg,
                            struct gmca_error *e)
{
        return gmca_store_revoked_since(s, ca_id, INT64_MIN, cb, arg, e);
}

int gmca_store_revoked_since(struct gmca_store *s, int64_t ca_id, int64_t since,
                             int (*cb)(const struct gmca_cert_rec *, void *), void *arg,
                             struct gmca_error *e)
{
        struct gmca_cert_rec r;
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_REVOKED_LIST, &q, e)) != 0)
                return rc;
        q_stream(&q);
        q_int(&q, ca_id);
        q_int(&q, since);
        while ((rc = q_step(&q, e, "revoked list of CA %lld", (long long)ca_id)) == GMCA_DB_ROW) {
                if ((rc = cert_row(&q, 0, &r, e)) != 0)
                        goto out;
                if ((rc = cb(&r, arg)) != 0)
                        goto out;
        }
out:
        q_close(&q);
        return rc;
}

int gmca_store_cert_count(struct gmca_store *s, int64_t *count, struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_CERT_COUNT, &q, e)) != 0)
                return rc;
        rc = q_step(&q, e, "certificate count");
        if (rc == GMCA_DB_ROW) {
                *count = s->ops->column_int64(q.st, 0);
                rc = 0;
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: certificate count: no answer");
        }
        q_close(&q);
        return rc;
}

/* ---- certificate requests ---- */

static int check_request(int status, const char *serial, struct gmca_error *e)
{
        if (status < GMCA_REQ_PENDING || status > GMCA_REQ_REJECTED)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: request status %d unknown",
                                      status);
        if (serial != NULL && serial[0] != '\0')
                return check_serial(serial, e);
        return 0;
}

int gmca_store_request_insert(struct gmca_store *s, struct gmca_request_rec *r,
                              struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = check_name(r->profile, sizeof(r->profile), "profile name", e)) != 0 ||
            (rc = check_request(r->status, FIELD_OK(r->serial) ? r->serial : "-", e)) != 0 ||
            (rc = check_blob(r->csr_der, r->csr_len, DER_MAX, "CSR DER", e)) != 0)
                return rc;
        if (r->ca_id <= 0 || !FIELD_OK(r->subject))
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: request: malformed record");
        if (r->info_json != NULL && strnlen(r->info_json, INFO_JSON_MAX + 1) > INFO_JSON_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "store: request: info over %d bytes",
                                      INFO_JSON_MAX);
        if ((rc = q_open(s, ST_REQ_INSERT, &q, e)) != 0)
                return rc;
        q_int(&q, r->created);
        q_int(&q, r->ca_id);
        q_text(&q, r->profile);
        q_text(&q, r->subject);
        q_int(&q, r->status);
        q_text(&q, r->serial[0] != '\0' ? r->serial : NULL);
        q_blob(&q, r->csr_der, r->csr_len);
        q_text(&q, r->info_json);
        if ((rc = q_step(&q, e, "request for %s", r->subject)) == GMCA_DB_ROW) {
                r->id = s->ops->column_int64(q.st, 0);
                rc = q_step(&q, e, "request for %s", r->subject);
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: request: no id returned");
        }
        q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_store_request_set_status(struct gmca_store *s, int64_t id, int status, const char *serial,
                                  struct gmca_error *e)
{
        struct q q;
        int64_t changed;
        int rc;

        if ((rc = check_request(status, serial, e)) != 0)
                return rc;
        if ((rc = q_open(s, ST_REQ_STATUS, &q, e)) != 0)
                return rc;
        q_int(&q, status);
        q_text(&q, serial != NULL && serial[0] != '\0' ? serial : NULL);
        q_int(&q, id);
        rc = q_step(&q, e, "request %lld", (long long)id);
        changed = s->ops->changes(s->db);
        q_close(&q);
        if (rc < 0)
                return rc;
        if (changed != 1)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: request %lld not found",
                                      (long long)id);
        return 0;
}

int gmca_store_request_get(struct gmca_store *s, int64_t id, struct gmca_request_rec *out,
                           struct gmca_error *e)
{
        struct gmca_request_rec r;
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_REQ_GET, &q, e)) != 0)
                return rc;
        q_int(&q, id);
        rc = q_step(&q, e, "request %lld", (long long)id);
        if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: request %lld not found",
                                    (long long)id);
        } else if (rc == GMCA_DB_ROW) {
                memset(&r, 0, sizeof(r));
                r.id = s->ops->column_int64(q.st, 0);
                r.created = s->ops->column_int64(q.st, 1);
                r.ca_id = s->ops->column_int64(q.st, 2);
                r.status = (int)s->ops->column_int64(q.st, 5);
                if ((rc = col_str(&q, 3, r.profile, sizeof(r.profile), "requests.profile", e)) ==
                        0 &&
                    (rc = col_str(&q, 4, r.subject, sizeof(r.subject), "requests.subject", e)) ==
                        0 &&
                    (rc = col_str(&q, 6, r.serial, sizeof(r.serial), "requests.serial", e)) == 0)
                        *out = r;
        }
        q_close(&q);
        return rc;
}

/* ---- CRLs ---- */

void gmca_crl_rec_clear(struct gmca_crl_rec *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->der);
        memset(r, 0, sizeof(*r));
}

int gmca_store_crl_next_number(struct gmca_store *s, int64_t ca_id, int64_t *number,
                               struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_CRL_MAX, &q, e)) != 0)
                return rc;
        q_int(&q, ca_id);
        rc = q_step(&q, e, "CRL number of CA %lld", (long long)ca_id);
        if (rc == GMCA_DB_ROW) {
                *number = s->ops->column_int64(q.st, 0) + 1;
                rc = 0;
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "store: CRL number: no answer");
        }
        q_close(&q);
        return rc;
}

int gmca_store_crl_insert(struct gmca_store *s, const struct gmca_crl_rec *r, struct gmca_error *e)
{
        struct q q;
        int64_t next;
        int rc;

        if (r->ca_id <= 0 || r->number <= 0 || r->entries < 0 || r->base_number < 0 ||
            r->base_number >= r->number)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: CRL: malformed record");
        if ((rc = check_blob(r->der, r->der_len, CRL_DER_MAX, "CRL DER", e)) != 0 ||
            (rc = gmca_store_crl_next_number(s, r->ca_id, &next, e)) != 0)
                return rc;
        if (r->number < next) {
                /* cRLNumber must increase (RFC 5280 §5.2.3): a duplicate, or a step back. */
                if ((rc = q_open(s, ST_CRL_EXISTS, &q, e)) != 0)
                        return rc;
                q_int(&q, r->ca_id);
                q_int(&q, r->number);
                rc =
                    q_step(&q, e, "CRL %lld of CA %lld", (long long)r->number, (long long)r->ca_id);
                q_close(&q);
                if (rc < 0)
                        return rc;
                return gmca_error_set(
                    e, rc == GMCA_DB_ROW ? GMCA_ERR_EXISTS : GMCA_ERR_STATE,
                    "store: CRL %lld of CA %lld: %s", (long long)r->number, (long long)r->ca_id,
                    rc == GMCA_DB_ROW ? "already exists" : "cRLNumber below the latest");
        }
        if ((rc = q_open(s, ST_CRL_INSERT, &q, e)) != 0)
                return rc;
        q_int(&q, r->ca_id);
        q_int(&q, r->number);
        q_int(&q, r->this_update);
        q_int(&q, r->next_update);
        q_int(&q, r->entries);
        q_blob(&q, r->der, r->der_len);
        q_int(&q, r->base_number);
        rc = q_step(&q, e, "CRL %lld of CA %lld", (long long)r->number, (long long)r->ca_id);
        q_close(&q);
        if (rc < 0)
                return rc;
        return event_add(s, "crl.issue", NULL, r->ca_id, r->number, e);
}

static void crl_row(struct q *q, struct gmca_crl_rec *r)
{
        const struct gmca_db_ops *ops = q->s->ops;

        memset(r, 0, sizeof(*r));
        r->ca_id = ops->column_int64(q->st, 0);
        r->number = ops->column_int64(q->st, 1);
        r->this_update = ops->column_int64(q->st, 2);
        r->next_update = ops->column_int64(q->st, 3);
        r->entries = ops->column_int64(q->st, 4);
        r->base_number = ops->column_int64(q->st, 5);
}

static int crl_latest(struct gmca_store *s, int64_t ca_id, int delta, struct gmca_crl_rec *out,
                      struct gmca_error *e)
{
        const char *kind = delta ? "delta CRL" : "CRL";
        struct gmca_crl_rec r;
        struct q q;
        int rc;

        if ((rc = q_open(s, delta ? ST_CRL_LATEST_DELTA : ST_CRL_LATEST, &q, e)) != 0)
                return rc;
        q_int(&q, ca_id);
        rc = q_step(&q, e, "latest %s of CA %lld", kind, (long long)ca_id);
        if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: no %s of CA %lld found", kind,
                                    (long long)ca_id);
        } else if (rc == GMCA_DB_ROW) {
                crl_row(&q, &r);
                if ((rc = col_dup(&q, 6, &r.der, &r.der_len, e)) == 0)
                        *out = r;
        }
        q_close(&q);
        return rc;
}

int gmca_store_crl_latest(struct gmca_store *s, int64_t ca_id, struct gmca_crl_rec *out,
                          struct gmca_error *e)
{
        return crl_latest(s, ca_id, 0, out, e);
}

int gmca_store_crl_latest_delta(struct gmca_store *s, int64_t ca_id, struct gmca_crl_rec *out,
                                struct gmca_error *e)
{
        return crl_latest(s, ca_id, 1, out, e);
}

int gmca_store_crl_get(struct gmca_store *s, int64_t ca_id, int64_t number,
                       struct gmca_crl_rec *out, struct gmca_error *e)
{
        struct gmca_crl_rec r;
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_CRL_GET, &q, e)) != 0)
                return rc;
        q_int(&q, ca_id);
        q_int(&q, number);
        rc = q_step(&q, e, "CRL %lld of CA %lld", (long long)number, (long long)ca_id);
        if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: no CRL %lld of CA %lld",
                                    (long long)number, (long long)ca_id);
        } else if (rc == GMCA_DB_ROW) {
                crl_row(&q, &r);
                if ((rc = col_dup(&q, 6, &r.der, &r.der_len, e)) == 0)
                        *out = r;
        }
        q_close(&q);
        return rc;
}

int gmca_store_crl_list(struct gmca_store *s, int64_t ca_id,
                        int (*cb)(const struct gmca_crl_rec *, void *), void *arg,
                        struct gmca_error *e)
{
        struct gmca_crl_rec r;
        struct q q;
        int rc;

        if ((rc = q_open(s, ST_CRL_LIST, &q, e)) != 0)
                return rc;
        q_stream(&q);
        q_int(&q, ca_id);
        while ((rc = q_step(&q, e, "CRL list of CA %lld", (long long)ca_id)) == GMCA_DB_ROW) {
                crl_row(&q, &r);
                if ((rc = cb(&r, arg)) != 0)
                        break;
        }
        q_close(&q);
        return rc;
}

/* ---- audit records ---- */

void gmca_audit_rec_clear(struct gmca_audit_rec *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->detail);
        memset(r, 0, sizeof(*r));
}

int gmca_store_audit_last(struct gmca_store *s, int64_t *seq, uint8_t hash[GMCA_SM3_LEN],
                          struct gmca_error *e)
{
        struct q q;
        int64_t n;
        int rc;

        if ((rc = q_open(s, ST_AUDIT_LAST, &q, e)) != 0)
                return rc;
        rc = q_step(&q, e, "last audit record");
        if (rc == GMCA_DB_DONE) {
                *seq = 0;
                memset(hash, 0, GMCA_SM3_LEN);
                rc = 0;
        } else if (rc == GMCA_DB_ROW) {
                n = s->ops->column_int64(q.st, 0);
                if (s->ops->column_bytes(q.st, 1) != GMCA_SM3_LEN ||
                    s->ops->column_blob(q.st, 1) == NULL) {
                        rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                            "store: audit record %lld: stored hash is not %d bytes",
                                            (long long)n, GMCA_SM3_LEN);
                } else {
                        memcpy(hash, s->ops->column_blob(q.st, 1), GMCA_SM3_LEN);
                        *seq = n;
                        rc = 0;
                }
        }
        q_close(&q);
        return rc;
}

int gmca_store_audit_insert(struct gmca_store *s, const struct gmca_audit_rec *r,
                            struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = check_name(r->event, sizeof(r->event), "audit event", e)) != 0)
                return rc;
        if (r->seq <= 0 || !FIELD_OK(r->actor) || !FIELD_OK(r->object) ||
            (r->success != 0 && r->success != 1))
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: audit record %lld: malformed",
                                      (long long)r->seq);
        if (r->detail != NULL &&
            strnlen(r->detail, AUDIT_DETAIL_STORE_MAX + 1) > AUDIT_DETAIL_STORE_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "store: audit record %lld: detail over %d bytes",
                                      (long long)r->seq, AUDIT_DETAIL_STORE_MAX);
        if ((rc = q_open(s, ST_AUDIT_INSERT, &q, e)) != 0)
                return rc;
        q_int(&q, r->seq);
        q_int(&q, r->time);
        q_text(&q, r->event);
        q_text(&q, r->actor);
        q_int(&q, r->success);
        q_text(&q, r->object);
        q_text(&q, r->detail);
        q_blob(&q, r->prev, GMCA_SM3_LEN);
        q_blob(&q, r->hash, GMCA_SM3_LEN);
        rc = q_step(&q, e, "audit record %lld", (long long)r->seq);
        q_close(&q);
        return rc < 0 ? rc : 0;
}

/*
 * Copy a text column of an audit row. A value that does not fit, or a NULL
 * where text belongs, marks the record malformed instead of failing: the
 * verifier then names the record.
 */
static void audit_str(struct q *q, int col, char *buf, size_t len, int *malformed)
{
        const char *t = q->s->ops->column_text(q->st, col);
        size_t n = t != NULL ? q->s->ops->column_bytes(q->st, col) : 0;

        if (t == NULL || n >= len || strlen(t) != n) {
                *malformed = 1;
                if (n >= len)
                        n = len - 1;
        }
        if (n > 0)
                memcpy(buf, t, n);
        buf[n] = '\0';
}

static void audit_hashcol(struct q *q, int col, uint8_t out[GMCA_SM3_LEN], int *malformed)
{
        const void *b = q->s->ops->column_blob(q->st, col);
        size_t n = q->s->ops->column_bytes(q->st, col);

        memset(out, 0, GMCA_SM3_LEN);
        if (b == NULL || n != GMCA_SM3_LEN) {
                *malformed = 1;
                return;
        }
        memcpy(out, b, GMCA_SM3_LEN);
}

static int audit_row(struct q *q, struct gmca_audit_rec *r, struct gmca_error *e)
{
        const struct gmca_db_ops *ops = q->s->ops;
        const char *d;
        size_t n;

        memset(r, 0, sizeof(*r));
        r->seq = ops->column_int64(q->st, 0);
        r->time = ops->column_int64(q->st, 1);
        audit_str(q, 2, r->event, sizeof(r->event), &r->malformed);
        audit_str(q, 3, r->actor, sizeof(r->actor), &r->malformed);
        r->success = (int)ops->column_int64(q->st, 4);
        audit_str(q, 5, r->object, sizeof(r->object), &r->malformed);
        audit_hashcol(q, 7, r->prev, &r->malformed);
        audit_hashcol(q, 8, r->hash, &r->malformed);
        if ((d = ops->column_text(q->st, 6)) != NULL) {
                n = ops->column_bytes(q->st, 6);
                if (strlen(d) != n)
                        r->malformed = 1;
                if ((r->detail = OPENSSL_malloc(n + 1)) == NULL)
                        return gmca_error_set(e, GMCA_ERR_NOMEM, "store: out of memory");
                memcpy(r->detail, d, n);
                r->detail[n] = '\0';
        }
        return 0;
}

int gmca_store_audit_iter(struct gmca_store *s, const struct gmca_audit_filter *f,
                          int (*cb)(const struct gmca_audit_rec *, void *), void *arg,
                          struct gmca_error *e)
{
        static const struct gmca_audit_filter all = {0};
        char prefix[GMCA_NAME_MAX] = "";
        struct gmca_audit_rec r;
        size_t n = 0;
        int mode = 0, rc;
        struct q q;

        memset(&r, 0, sizeof(r));
        if (f == NULL)
                f = &all;
        if (f->limit < 0 || f->since < 0 || f->until < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: audit filter: negative value");
        if (f->event != NULL) {
                if ((rc = check_name(f->event, GMCA_NAME_MAX, "audit event filter", e)) != 0)
                        return rc;
                n = strlen(f->event);
                mode = 1;
                if (f->event[n - 1] == '*') {
                        mode = 2;
                        n--;
                }
                memcpy(prefix, f->event, n);
                prefix[n] = '\0';
        }
        if (f->actor != NULL && strnlen(f->actor, sizeof(r.actor)) >= sizeof(r.actor))
                return gmca_error_set(e, GMCA_ERR_INVALID, "store: audit filter: actor too long");
        if ((rc = q_open(s, ST_AUDIT_ITER, &q, e)) != 0)
                return rc;
        q_stream(&q);
        q_int(&q, f->since);
        q_int(&q, f->since);
        q_int(&q, f->until);
        q_int(&q, f->until);
        q_int(&q, mode);
        q_int(&q, mode);
        q_text(&q, prefix);
        q_int(&q, mode);
        q_int(&q, (int64_t)n);
        q_text(&q, prefix);
        q_int(&q, f->actor != NULL);
        q_text(&q, f->actor != NULL ? f->actor : "");
        q_int(&q, f->limit > 0 ? f->limit : INT64_MAX);
        while ((rc = q_step(&q, e, "audit records")) == GMCA_DB_ROW) {
                if ((rc = audit_row(&q, &r, e)) != 0)
                        break;
                rc = cb(&r, arg);
                gmca_audit_rec_clear(&r);
                if (rc != 0)
                        break;
        }
        gmca_audit_rec_clear(&r);
        q_close(&q);
        return rc;
}

/* ---- metadata ---- */

int gmca_store_meta_get(struct gmca_store *s, const char *key, char *buf, size_t len,
                        struct gmca_error *e)
{
        const char *v;
        struct q q;
        size_t n;
        int rc;

        if ((rc = check_name(key, GMCA_NAME_MAX, "metadata key", e)) != 0 ||
            (rc = q_open(s, ST_META_GET, &q, e)) != 0)
                return rc;
        q_text(&q, key);
        rc = q_step(&q, e, "metadata %s", key);
        if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "store: metadata %s not found", key);
        } else if (rc == GMCA_DB_ROW) {
                v = s->ops->column_text(q.st, 0);
                n = v != NULL ? strlen(v) : 0;
                if (n >= len) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                            "store: metadata %s: %zu bytes, buffer holds %zu", key,
                                            n, len > 0 ? len - 1 : 0);
                } else {
                        if (n > 0)
                                memcpy(buf, v, n);
                        buf[n] = '\0';
                        rc = 0;
                }
        }
        q_close(&q);
        return rc;
}

int gmca_store_meta_set(struct gmca_store *s, const char *key, const char *value,
                        struct gmca_error *e)
{
        struct q q;
        int rc;

        if ((rc = check_name(key, GMCA_NAME_MAX, "metadata key", e)) != 0)
                return rc;
        if (value == NULL || strnlen(value, GMCA_META_VALUE_MAX) >= GMCA_META_VALUE_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "store: metadata %s: value missing or over %d bytes", key,
                                      GMCA_META_VALUE_MAX - 1);
        if ((rc = q_open(s, ST_META_SET, &q, e)) != 0)
                return rc;
        q_text(&q, key);
        q_text(&q, value);
        rc = q_step(&q, e, "metadata %s", key);
        q_close(&q);
        return rc < 0 ? rc : 0;
}
