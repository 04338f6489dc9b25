/*
 * store: the CA's database. One interface over SQLite (embedded default,
 * WAL mode) that a PostgreSQL backend will implement too: portable SQL,
 * prepared statements only, versioned migrations shared by backends. Owns
 * the tables of CAs, certificates, requests, CRLs, audit records and
 * key/value metadata. A business operation is one transaction
 * (gmca_store_begin .. commit) that includes its audit record. A store
 * handle serves one thread at a time; processes share the file safely.
 */
#ifndef GMCA_STORE_H
#define GMCA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "x509.h"

struct gmca_store;

#define GMCA_SERIAL_HEX_MAX 41 /* 20 bytes of serial in hex, plus NUL */
#define GMCA_NAME_MAX 64
#define GMCA_META_VALUE_MAX 4096 /* bytes of a metadata value, with its NUL */

/*
 * Records returned by the store own their buffers (der, cert_der, detail),
 * allocated with OPENSSL_malloc; the *_rec_clear functions free them with
 * OPENSSL_free and zero the record. They accept a zeroed or filled record.
 * Text inputs are bounded: serials are 1..40 upper-case hex digits, names
 * (CA, profile, metadata key, event) 1..GMCA_NAME_MAX-1 bytes without control
 * characters; anything else is GMCA_ERR_INVALID.
 */

/*
 * Open (creating if needed, mode 0600) and migrate a store. uri: a file
 * path or "sqlite:PATH" (SQLite), or a libpq connection URI
 * "postgresql://..." / "postgres://..." (PostgreSQL, store_pg.c; the
 * database must exist, the schema is created in it). Caller closes with gmca_store_close (NULL is
 * fine), which rolls back a transaction left open. GMCA_ERR_STATE (in e) if the database's schema
 * is newer than this program's.
 */
struct gmca_store *gmca_store_open(const char *uri, struct gmca_error *e);
void gmca_store_close(struct gmca_store *s);
/* 1 if uri names a PostgreSQL database (postgresql:// or postgres://). */
int gmca_store_uri_is_pg(const char *uri);
/*
 * A database URI fit for a configuration file (gmca.json, km.json): a
 * postgresql:// URI of 1..GMCA_STORE_URI_MAX-1 printable bytes that carries
 * no password (user:secret@ or password=): libpq finds one in PGPASSFILE,
 * or a unix socket with peer authentication needs none. GMCA_ERR_INVALID.
 */
#define GMCA_STORE_URI_MAX 1024
int gmca_store_uri_check(const char *uri, struct gmca_error *e) GMCA_WUR;

/* Current schema version after migration. */
int gmca_store_schema_version(struct gmca_store *s);
/* The schema version this program migrates to (its number of migrations). */
int gmca_store_schema_latest(void);

/*
 * Transactions. begin takes the write lock at once (SQLite BEGIN
 * IMMEDIATE), so read-then-write sequences inside are serialised between
 * processes. Nested begin is GMCA_ERR_STATE. A failed commit rolls back
 * and closes the transaction. rollback is safe without a transaction.
 */
int gmca_store_begin(struct gmca_store *s, struct gmca_error *e) GMCA_WUR;
int gmca_store_commit(struct gmca_store *s, struct gmca_error *e) GMCA_WUR;
void gmca_store_rollback(struct gmca_store *s);
/* 1 while a transaction begun with gmca_store_begin is open, else 0. */
int gmca_store_in_transaction(const struct gmca_store *s);

/* ---- CAs ---- */
struct gmca_ca_rec {
        int64_t id;
        char name[GMCA_NAME_MAX];
        int64_t parent_id; /* 0 for a root */
        char subject[GMCA_DN_MAX];
        char key_file[256]; /* relative to the state directory */
        char sm2_id[GMCA_SM2_ID_BUF];
        int64_t created;
        uint8_t *cert_der; /* owned; freed by gmca_ca_rec_clear */
        size_t cert_len;
        char key_state[16]; /* GMCA_KEY_*; "" on insert means active */
        int64_t state_time; /* when key_state last changed */
};
void gmca_ca_rec_clear(struct gmca_ca_rec *r);

/*
 * The life of a CA key (CPS §6.8, §7.2.1.4, §7.2.1.9): active (issues and
 * signs CRLs); superseded after a rollover and compromised after a
 * compromise (signs CRLs for what it issued, nothing else); archived (kept,
 * signs nothing); destroyed (erased from the device).
 */
#define GMCA_KEY_ACTIVE "active"
#define GMCA_KEY_SUPERSEDED "superseded"
#define GMCA_KEY_COMPROMISED "compromised"
#define GMCA_KEY_ARCHIVED "archived"
#define GMCA_KEY_DESTROYED "destroyed"
/* 1 if s is one of the GMCA_KEY_* states. */
int gmca_key_state_valid(const char *s);
/* Set a CA's key state. GMCA_ERR_NOTFOUND if no such CA. */
int gmca_store_ca_set_state(struct gmca_store *s, int64_t ca_id, const char *state, int64_t when,
                            struct gmca_error *e) GMCA_WUR;
/* Insert; sets r->id. GMCA_ERR_EXISTS if the name is taken. */
/* Replace a CA's certificate and parent (0: none), as when its issuer is re-keyed. */
int gmca_store_ca_set_cert(struct gmca_store *s, int64_t ca_id, const uint8_t *der, size_t len,
                           int64_t parent_id, struct gmca_error *e) GMCA_WUR;
int gmca_store_ca_insert(struct gmca_store *s, struct gmca_ca_rec *r,
                         struct gmca_error *e) GMCA_WUR;
/* GMCA_ERR_NOTFOUND if absent. out is filled and owns its buffers. */
int gmca_store_ca_get(struct gmca_store *s, const char *name, struct gmca_ca_rec *out,
                      struct gmca_error *e) GMCA_WUR;
int gmca_store_ca_get_by_id(struct gmca_store *s, int64_t id, struct gmca_ca_rec *out,
                            struct gmca_error *e) GMCA_WUR;
/* Calls cb for each CA in id order; a non-zero return from cb stops and is returned. */
int gmca_store_ca_list(struct gmca_store *s, int (*cb)(const struct gmca_ca_rec *, void *),
                       void *arg, struct gmca_error *e) GMCA_WUR;

/* ---- certificates ---- */
enum gmca_cert_status { GMCA_CERT_VALID = 0, GMCA_CERT_REVOKED = 1 };

struct gmca_cert_rec {
        char serial[GMCA_SERIAL_HEX_MAX]; /* upper-case hex, unique across the store */
        int64_t ca_id;
        char subject[GMCA_DN_MAX];
        char profile[GMCA_NAME_MAX];
        int64_t not_before;
        int64_t not_after;
        int64_t issued_at;
        int status;              /* enum gmca_cert_status */
        int64_t revoked_at;      /* 0 unless revoked */
        int reason;              /* CRL reason code, -1 none */
        int64_t invalidity_date; /* 0: none */
        char fingerprint[65];    /* SM3 of the DER, hex */
        int64_t request_id;      /* 0: none */
        uint8_t *der;            /* owned; freed by gmca_cert_rec_clear */
        size_t der_len;
};
void gmca_cert_rec_clear(struct gmca_cert_rec *r);

/* GMCA_ERR_EXISTS on a duplicate serial. */
int gmca_store_cert_insert(struct gmca_store *s, const struct gmca_cert_rec *r,
                           struct gmca_error *e) GMCA_WUR;
/* *exists = 1 if a certificate (or a reserved serial) uses serial. */
int gmca_store_serial_exists(struct gmca_store *s, const char *serial, int *exists,
                             struct gmca_error *e) GMCA_WUR;
int gmca_store_cert_get(struct gmca_store *s, const char *serial, struct gmca_cert_rec *out,
                        struct gmca_error *e) GMCA_WUR;
/*
 * Mark a valid certificate revoked, and with it the encryption certificate
 * of its dual pair if it has one (dual_keys), with the same time and
 * reason. GMCA_ERR_NOTFOUND for an unknown serial, GMCA_ERR_STATE if
 * already revoked.
 */
int gmca_store_cert_revoke(struct gmca_store *s, const char *serial, int64_t revoked_at, int reason,
                           int64_t invalidity_date, struct gmca_error *e) GMCA_WUR;

#define GMCA_STATUS_ANY -1
#define GMCA_STATUS_EXPIRED 2 /* filter only: valid but past not_after at `now` */

struct gmca_cert_filter {
        int64_t ca_id;       /* 0: any */
        const char *subject; /* substring of the subject DN, NULL: any */
        const char *profile; /* NULL: any */
        int status;    /* GMCA_STATUS_ANY, GMCA_CERT_VALID (and unexpired), _REVOKED, _EXPIRED */
        int64_t now;   /* reference time for VALID/EXPIRED */
        int64_t limit; /* 0: no limit */
        int64_t offset;
};
/*
 * Calls cb in issued order (then serial); records passed to cb have der ==
 * NULL. f NULL lists all. The subject filter is a case-sensitive substring.
 * A non-zero return from cb stops and is returned.
 */
int gmca_store_cert_list(struct gmca_store *s, const struct gmca_cert_filter *f,
                         int (*cb)(const struct gmca_cert_rec *, void *), void *arg,
                         struct gmca_error *e) GMCA_WUR;
/* Revoked certificates of one CA, in revocation order; der == NULL. */
int gmca_store_revoked_list(struct gmca_store *s, int64_t ca_id,
                            int (*cb)(const struct gmca_cert_rec *, void *), void *arg,
                            struct gmca_error *e) GMCA_WUR;
/* The same, only those with revoked_at >= since (a delta CRL's entries). */
int gmca_store_revoked_since(struct gmca_store *s, int64_t ca_id, int64_t since,
                             int (*cb)(const struct gmca_cert_rec *, void *), void *arg,
                             struct gmca_error *e) GMCA_WUR;
int gmca_store_cert_count(struct gmca_store *s, int64_t *count, struct gmca_error *e) GMCA_WUR;

/*
 * Re-issuance after a CA compromise (CPS §6.10.3): old serial -> new serial
 * per job. GMCA_ERR_EXISTS if old_serial already has its replacement.
 */
int gmca_store_reissue_insert(struct gmca_store *s, const char *job, const char *old_serial,
                              const char *new_serial, int64_t when, struct gmca_error *e) GMCA_WUR;
/* Calls cb(old, new, time, arg) in the order they were done. */
int gmca_store_reissue_list(struct gmca_store *s, const char *job,
                            int (*cb)(const char *, const char *, int64_t, void *), void *arg,
                            struct gmca_error *e) GMCA_WUR;

/* ---- certificate requests ---- */
enum gmca_req_status { GMCA_REQ_PENDING = 0, GMCA_REQ_ISSUED = 1, GMCA_REQ_REJECTED = 2 };

struct gmca_request_rec {
        int64_t id;
        int64_t created;
        int64_t ca_id;
        char profile[GMCA_NAME_MAX];
        char subject[GMCA_DN_MAX];
        int status;
        char serial[GMCA_SERIAL_HEX_MAX]; /* when issued */
        const uint8_t *csr_der;           /* borrowed on insert */
        size_t csr_len;
        const char *info_json; /* borrowed on insert, may be NULL */
};
int gmca_store_request_insert(struct gmca_store *s, struct gmca_request_rec *r,
                              struct gmca_error *e) GMCA_WUR;
/* GMCA_ERR_NOTFOUND for an unknown id. serial may be NULL or "". */
int gmca_store_request_set_status(struct gmca_store *s, int64_t id, int status, const char *serial,
                                  struct gmca_error *e) GMCA_WUR;
/*
 * A request's metadata; csr_der and info_json are set to NULL (the
 * record owns nothing). GMCA_ERR_NOTFOUND for an unknown id.
 */
int gmca_store_request_get(struct gmca_store *s, int64_t id, struct gmca_request_rec *out,
                           struct gmca_error *e) GMCA_WUR;

/* ---- CRLs ---- */
struct gmca_crl_rec {
        int64_t ca_id;
        int64_t number; /* cRLNumber, strictly increasing per CA */
        int64_t this_update;
        int64_t next_update;
        int64_t entries;
        int64_t base_number; /* a delta CRL's base (RFC 5280 §5.2.4); 0: a complete CRL */
        uint8_t *der;        /* owned by records returned from the store */
        size_t der_len;
};
void gmca_crl_rec_clear(struct gmca_crl_rec *r);
/* Next cRLNumber for ca_id (1 for the first). Call inside the transaction that inserts. */
int gmca_store_crl_next_number(struct gmca_store *s, int64_t ca_id, int64_t *number,
                               struct gmca_error *e) GMCA_WUR;
/* GMCA_ERR_EXISTS if (ca_id, number) exists. The record's der is borrowed. */
int gmca_store_crl_insert(struct gmca_store *s, const struct gmca_crl_rec *r,
                          struct gmca_error *e) GMCA_WUR;
/* The latest complete CRL of a CA, or its latest delta CRL; GMCA_ERR_NOTFOUND if none. */
int gmca_store_crl_latest(struct gmca_store *s, int64_t ca_id, struct gmca_crl_rec *out,
                          struct gmca_error *e) GMCA_WUR;
int gmca_store_crl_latest_delta(struct gmca_store *s, int64_t ca_id, struct gmca_crl_rec *out,
                                struct gmca_error *e) GMCA_WUR;
/* CRL `number` of a CA (every CRL is kept, CPS §3.9.12); GMCA_ERR_NOTFOUND if none. */
int gmca_store_crl_get(struct gmca_store *s, int64_t ca_id, int64_t number,
                       struct gmca_crl_rec *out, struct gmca_error *e) GMCA_WUR;
/* All CRLs of a CA in number order; der == NULL in records passed to cb. */
int gmca_store_crl_list(struct gmca_store *s, int64_t ca_id,
                        int (*cb)(const struct gmca_crl_rec *, void *), void *arg,
                        struct gmca_error *e) GMCA_WUR;

/* ---- audit records (the chain logic lives in audit.c) ---- */
struct gmca_audit_rec {
        int64_t seq;  /* 1, 2, 3 ... */
        int64_t time; /* microseconds since the epoch, UTC */
        char event[GMCA_NAME_MAX];
        char actor[256];
        int success; /* 1 success, 0 failure */
        char object[128];
        char *detail; /* owned; NULL allowed */
        uint8_t prev[GMCA_SM3_LEN];
        uint8_t hash[GMCA_SM3_LEN];
        /*
         * Set by the store when a stored column did not fit the record (a
         * hash not 32 bytes, a NULL or over-long text, a NUL inside text):
         * the row was altered outside gmca. Ignored on insert.
         */
        int malformed;
};
void gmca_audit_rec_clear(struct gmca_audit_rec *r);
/* Last record's seq and hash; seq 0 and a zero hash when empty. */
int gmca_store_audit_last(struct gmca_store *s, int64_t *seq, uint8_t hash[GMCA_SM3_LEN],
                          struct gmca_error *e) GMCA_WUR;
int gmca_store_audit_insert(struct gmca_store *s, const struct gmca_audit_rec *r,
                            struct gmca_error *e) GMCA_WUR;

struct gmca_audit_filter {
        int64_t since;     /* microseconds, 0: any */
        int64_t until;     /* microseconds, 0: any */
        const char *event; /* exact or prefix ending in '*', NULL: any */
        const char *actor; /* exact, NULL: any */
        int64_t limit;     /* 0: all */
};
/*
 * Records in seq order (all of them when f is NULL); since and until are
 * inclusive. A non-zero return from cb stops and is returned.
 */
int gmca_store_audit_iter(struct gmca_store *s, const struct gmca_audit_filter *f,
                          int (*cb)(const struct gmca_audit_rec *, void *), void *arg,
                          struct gmca_error *e) GMCA_WUR;

/* ---- metadata ---- */
/* GMCA_ERR_NOTFOUND if absent; value is copied into buf. */
/*
 * A consistent copy of the whole database in a new file at path (which must
 * not exist), taken outside any transaction while others keep writing
 * (SQLite: VACUUM INTO; PostgreSQL: copied into a SQLite file of the same
 * schema, backup_pg.c). For backups of keys and state.
 */
int gmca_store_snapshot(struct gmca_store *s, const char *path, struct gmca_error *e) GMCA_WUR;

int gmca_store_meta_get(struct gmca_store *s, const char *key, char *buf, size_t len,
                        struct gmca_error *e) GMCA_WUR;
int gmca_store_meta_set(struct gmca_store *s, const char *key, const char *value,
                        struct gmca_error *e) GMCA_WUR;

#endif
