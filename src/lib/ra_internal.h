/*
 * ra_internal: what the RA's files share (ra.c common helpers, ra_json.c
 * strict request bodies, ra_applicant.c, ra_application.c, ra_revoke.c,
 * ra_check.c the CA engine's re-check). Not a public header; the fuzz
 * target of the body parsers and the CA engine's issuance (ca_ra_issue.c)
 * include it too.
 */
#ifndef GMCA_RA_INTERNAL_H
#define GMCA_RA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "auth.h"
#include "err.h"
#include "ra.h"
#include "store.h"

/* Caps on what a body may hold (bytes of UTF-8, items of a list). */
#define RA_NAME_CAP 128 /* names, references, identifiers */
#define RA_TEXT_CAP                                                                                \
        1024           /* free text: notes, reasons, addresses, list items                         \
                        */
#define RA_LIST_CAP 32 /* items of a list */
#define RA_CSR_TEXT_CAP ((GMCA_CSR_MAX / 3 + 1) * 4 + 256) /* a CSR as PEM or base64 */
#define RA_INFO_CAP 65536                                  /* subject_info as compact JSON */
#define RA_ID_MIN_CHARS 6 /* an identity number, so that the mask hides something */

/* Application states (ra.h). */
#define RA_ST_SUBMITTED "submitted"
#define RA_ST_VETTED "vetted"
#define RA_ST_APPROVED "approved"
#define RA_ST_ISSUED "issued"
#define RA_ST_REJECTED "rejected"

/* Revocation request states. */
#define RA_REV_PENDING "pending"
#define RA_REV_COMPLETED "completed"

/* ---- strict bodies (ra_json.c) ---- */

enum ra_kind { RA_INDIVIDUAL = 0, RA_ORGANIZATION, RA_STAFF, RA_DEVICE, RA_KIND_COUNT };
const char *ra_kind_name(int kind);
int ra_kind_from_name(const char *s); /* -1 if unknown */

/* The fields of an applicant, in the order of the table in ra_json.c. */
enum ra_afield {
        AF_NAME = 0,
        AF_ID_TYPE,
        AF_ID_NUMBER,
        AF_CONTACT,
        AF_USCC,
        AF_ADDRESS,
        AF_ORG_NAME,
        AF_DEPARTMENT,
        AF_AUTH_LETTER,
        AF_DOMAIN,
        AF_IP,
        AF_OWNER_ORG,
        AF_COUNT
};
const char *ra_afield_name(enum ra_afield f);
/* 1 if field f belongs to kind (required or optional). */
int ra_afield_applies(enum ra_afield f, int kind);
int ra_afield_required(enum ra_afield f, int kind);
/* 1 if f may be cleared (JSON null) by a correction. */
int ra_afield_clearable(enum ra_afield f);

/*
 * An applicant body. Values point into root (kept alive by it); NULL when
 * absent. cleared: bit (1 << f) for a field given as null (correct only).
 */
struct ra_applicant_body {
        json_t *root;
        int kind; /* -1 in a correction (kind may not be given) */
        const char *f[AF_COUNT];
        unsigned cleared;
};
/*
 * create = 1: POST /api/v1/applicants; every field of the kind checked
 * (required present, foreign absent, values valid). create = 0: PATCH, any
 * subset but kind; the kind is checked later against the stored one.
 */
int ra_applicant_parse(const uint8_t *body, size_t len, int create, struct ra_applicant_body *out,
                       struct gmca_error *e) GMCA_WUR;
/* Check one field's value (identity number by its type, USCC, domain, IP). */
int ra_afield_check(enum ra_afield f, const char *v, const char *id_type,
                    struct gmca_error *e) GMCA_WUR;
void ra_applicant_body_clear(struct ra_applicant_body *b);

struct ra_application_body {
        json_t *root;
        int64_t applicant; /* 0: absent */
        const char *profile, *ca, *csr, *carrier;
        int days;             /* 0: absent */
        json_t *subject_info; /* borrowed from root; NULL: absent */
        json_t *materials;    /* borrowed array; NULL: absent */
        int affiliation_confirmed;
        int no_publish; /* "publish_directory": false (CPS §3.4.2, ldap_pub.h) */
};
int ra_application_parse(const uint8_t *body, size_t len, enum gmca_app_type type,
                         struct ra_application_body *out, struct gmca_error *e) GMCA_WUR;
void ra_application_body_clear(struct ra_application_body *b);

struct ra_vet_body {
        json_t *root;
        const char *method, *result, *note;
        const char *submission; /* RA_SUBMISSION_HEX lower-case hex (ra_submission_digest) */
        json_t *documents;      /* borrowed array of 1..RA_LIST_CAP strings */
};
int ra_vet_parse(const uint8_t *body, size_t len, struct ra_vet_body *out,
                 struct gmca_error *e) GMCA_WUR;
void ra_vet_body_clear(struct ra_vet_body *b);

/* approve: submission required; reject: reason required, submission optional. */
struct ra_decide_body {
        json_t *root;
        const char *reason;
        const char *submission; /* NULL: absent (reject only) */
};
int ra_decide_parse(const uint8_t *body, size_t len, int approve, struct ra_decide_body *out,
                    struct gmca_error *e) GMCA_WUR;
void ra_decide_body_clear(struct ra_decide_body *b);

struct ra_revocation_body {
        json_t *root;
        char serial[GMCA_SERIAL_HEX_MAX]; /* normalised */
        char reason;                      /* 'A'..'I' */
        int reason_code;                  /* RFC 5280 */
        const char *requester, *authority, *document_ref, *note;
};
int ra_revocation_parse(const uint8_t *body, size_t len, struct ra_revocation_body *out,
                        struct gmca_error *e) GMCA_WUR;
void ra_revocation_body_clear(struct ra_revocation_body *b);

/*
 * The CSR of a body (PEM, or base64 of DER) as DER: *der OPENSSL_malloc'd.
 * Only the encoding is checked here.
 */
int ra_csr_der(const char *text, uint8_t **der, size_t *len, struct gmca_error *e) GMCA_WUR;
/* subject_info as the compact, key-sorted JSON text handed to the CA; NULL for
 * none. */
int ra_info_text(json_t *info, char **out, struct gmca_error *e) GMCA_WUR;

/*
 * What a vetting or an approval is about (CPS §3.1.3, §3.2.1): the SM3, as
 * lower-case hex, of the signature base of the submitter's signed request
 * (its proof), which names the body (so the CSR, profile, CA and subject
 * information), the target, the time, the nonce and the submitter. The vet
 * and approve bodies carry it ("submission"), so that the vetter's and the
 * approver's signatures cover the submission they saw and cannot be moved
 * to another one written into the row afterwards.
 */
#define RA_SUBMISSION_HEX 64
int ra_submission_digest(const uint8_t *proof, size_t len, char out[RA_SUBMISSION_HEX + 1],
                         struct gmca_error *e) GMCA_WUR;
/*
 * The subject information of the certificate serial as it was issued (its
 * request's info_json, certificates.request_id), as ra_info_text writes it;
 * *info NULL if it had none. A renewal, rekey or reissue carries it over
 * (CPS §3.6.2: the same certificate, later). *info malloc'd.
 */
int ra_old_info(struct gmca_store *s, const char *serial, char **info,
                struct gmca_error *e) GMCA_WUR;

/* ---- common (ra.c) ---- */

/*
 * Refuse an operation: roll back a transaction still open, record the
 * refusal (event, actor, object, cause from e or rc) in a transaction of
 * its own, and return rc. If even the audit record fails, e says so.
 */
int ra_refuse(struct gmca_store *s, const char *actor, const char *event, const char *object,
              int rc, struct gmca_error *e);
/* Inside the caller's transaction: a success record; detail (consumed) may be
 * NULL. */
int ra_audit(struct gmca_store *s, const char *event, const char *actor, const char *object,
             json_t *detail, struct gmca_error *e) GMCA_WUR;
/* Role check: GMCA_ERR_FORBIDDEN audited as event (failure) on object. */
int ra_allowed(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
               enum gmca_action act, const char *event, const char *object,
               struct gmca_error *e) GMCA_WUR;
/* "email" (contact has '@'), "sms" (digits, '+', '-', spaces), else "counter".
 */
const char *ra_channel(const char *contact);
/*
 * Inside the caller's transaction: a notification to the applicant
 * (applicant_id 0: none known, the counter) about application app_id or
 * revocation request rev_id (0: none).
 */
int ra_notify(struct gmca_store *s, int64_t applicant_id, int64_t app_id, int64_t rev_id,
              const char *text, int64_t now, struct gmca_error *e) GMCA_WUR;
/* A certificate DER as PEM text (malloc'd). */
char *ra_cert_pem(const uint8_t *der, size_t len);
/* base64 of len bytes as a JSON string (JSON null for none; NULL when out of memory). */
json_t *ra_b64_json(const uint8_t *p, size_t len);
/*
 * A listing's rows: step q (bound, open) to its end, each row made into an
 * item by row, then close q; *out = {"items": [...]} with "total" when
 * total >= 0. A row's failure stops the listing with its code.
 */
struct gmca_q;
int ra_list_collect(struct gmca_q *q, const char *what,
                    int (*row)(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e),
                    void *arg, int64_t total, json_t **out, struct gmca_error *e) GMCA_WUR;
/* GMCA_ERR_AUTH unless who carries the operator's signed request (a step's proof). */
int ra_need_proof(const struct gmca_auth_result *who, struct gmca_error *e) GMCA_WUR;
/*
 * The encryption half of a dual pair issued with signature certificate
 * sig_serial, added to o: "encryption_serial", "encryption_certificate"
 * (PEM), "enveloped_key" (base64 SM2EnvelopedKey, sealed to the signature
 * key: only the subscriber opens it) and "enveloped_key_blob" (base64
 * ENVELOPEDKEYBLOB). Nothing added when there is no pair.
 */
int ra_dual_json(struct gmca_store *s, const char *sig_serial, json_t *o,
                 struct gmca_error *e) GMCA_WUR;
/*
 * The CA that issues by default: the store's record (after a rollover),
 * else <dir>/gmca.json's default_ca (dir NULL: skip), else "".
 */
int ra_default_ca(struct gmca_store *s, const char *dir, char out[GMCA_NAME_MAX],
                  struct gmca_error *e) GMCA_WUR;
/* 1 if profile names a certificate the custodians issue, not the RA. */
int ra_internal_profile(const char *profile);
/* 1 for organisation and staff profiles (org-*, gov-staff-*): renewal
 * re-confirms affiliation. */
int ra_affiliated_profile(const char *profile);
/* printable, bounded copy of outside text for a message */
void ra_show(char *out, size_t cap, const char *s);

/* ---- key recovery (ra_recovery.c; the engine's side ca_km_recover.c) ---- */

#define RA_REC_REQUESTED "requested"
#define RA_REC_APPROVED "approved"
#define RA_REC_REJECTED "rejected"
#define RA_REC_DELIVERED "delivered"
#define RA_REC_PEM_CAP 4096 /* recipient_public_key as PEM */

/* A recovery request body (POST /api/v1/recoveries); strings point into root. */
struct ra_recovery_body {
        json_t *root;
        const char *kind; /* "subscriber" or "judicial" */
        char enc_serial[GMCA_SERIAL_HEX_MAX];
        char recipient_serial[GMCA_SERIAL_HEX_MAX]; /* subscriber; "" otherwise */
        uint8_t *recipient_key; /* judicial: SPKI DER (OPENSSL_malloc); NULL otherwise */
        size_t recipient_key_len;
        const char *authority, *document, *reason; /* NULL: absent */
};
/* Strict (unknown keys, types, caps; the fields of the kind required, the others absent). */
int ra_recovery_parse(const uint8_t *body, size_t len, struct ra_recovery_body *out,
                      struct gmca_error *e) GMCA_WUR;
void ra_recovery_body_clear(struct ra_recovery_body *b);

struct ra_recovery {
        int64_t id;
        char kind[16];
        char enc_serial[GMCA_SERIAL_HEX_MAX];
        char recipient_serial[GMCA_SERIAL_HEX_MAX];
        uint8_t *recipient_key; /* SPKI DER; NULL for subscriber */
        size_t recipient_key_len;
        char *authority, *document, *reason; /* malloc'd; NULL: none */
        char state[16];
        char requested_by[GMCA_NAME_MAX];
        int64_t requested_at;
        uint8_t *request_auth;
        size_t request_auth_len;
        char decided_by[GMCA_NAME_MAX];
        int64_t decided_at;
        uint8_t *decide_auth;
        size_t decide_auth_len;
        uint8_t *envelope, *blob; /* what the KM delivered; NULL before */
        size_t envelope_len, blob_len;
        int64_t delivered_at;
};
/* GMCA_ERR_NOTFOUND "recovery N: no such recovery". */
int ra_recovery_load(struct gmca_store *s, int64_t id, struct ra_recovery *out,
                     struct gmca_error *e) GMCA_WUR;
void ra_recovery_clear(struct ra_recovery *r);

/*
 * The rules of a recovery that the store can answer, checked at request,
 * at approval and by the CA engine: enc_serial is an encryption
 * certificate this CA signed for a KM key pair (dual_keys); for a
 * subscriber recovery, recipient_serial is a certificate this CA signed,
 * not revoked, valid at now, with the encryption certificate's subject and
 * a signature key usage. *enc and *recipient (may be NULL; X509_free)
 * receive the two certificates as parsed from their signed DER.
 */
int ra_recovery_rules(struct gmca_store *s, const char *kind, const char *enc_serial,
                      const char *recipient_serial, int64_t now, X509 **enc, X509 **recipient,
                      struct gmca_error *e) GMCA_WUR;

/* ---- revocation requests (ra_revoke.c; the engine's side ca_ra_revoke.c) ---- */

struct ra_revocation {
        int64_t id;
        char serial[GMCA_SERIAL_HEX_MAX];
        char reason[4]; /* "A".."I" */
        int reason_code;
        char requester[32];
        char authority[RA_NAME_CAP + 1];
        char document_ref[RA_NAME_CAP + 1];
        char note[RA_TEXT_CAP + 1];
        char state[16];
        char requested_by[GMCA_NAME_MAX];
        int64_t requested_at;
        int64_t deadline;
        char completed_by[GMCA_NAME_MAX];
        int64_t completed_at;
        /* The signed requests (auth.h proofs), OPENSSL_malloc'd: the requester's and the
         * completing business admin's (NULL: none yet, or a business admin's request, which
         * needs none). Read by ra_revocation_load only; NULL in listings. */
        uint8_t *request_auth, *complete_auth;
        size_t request_auth_len, complete_auth_len;
};
/* GMCA_ERR_NOTFOUND "revocation request N: no such request". */
int ra_revocation_load(struct gmca_store *s, int64_t id, struct ra_revocation *out,
                       struct gmca_error *e) GMCA_WUR;
void ra_revocation_clear(struct ra_revocation *r);
/*
 * The rules of §3.9 that the store answers, checked at the request and by
 * the CA engine before it revokes: serial is a certificate of this CA
 * (GMCA_ERR_NOTFOUND), not revoked (GMCA_ERR_STATE), not a CA's nor one the
 * custodians manage (GMCA_ERR_POLICY), and an organisation's representative
 * asks only for organisation, staff and device certificates (§3.9.2).
 */
int ra_revocation_target(struct gmca_store *s, const char *serial, const char *requester,
                         struct gmca_error *e) GMCA_WUR;

/* ---- applications (ra_application.c, ra_check.c) ---- */

struct ra_app {
        int64_t id;
        int64_t applicant_id;
        char type[16];
        char state[16];
        char ca[GMCA_NAME_MAX];
        char profile[GMCA_NAME_MAX];
        int days;
        uint8_t *csr; /* DER */
        size_t csr_len;
        char *info_json; /* NULL: none */
        char *materials; /* JSON array text; NULL: none */
        char old_serial[GMCA_SERIAL_HEX_MAX];
        char carrier[16];
        int affiliation_confirmed;
        char submitted_by[GMCA_NAME_MAX];
        int64_t submitted_at;
        uint8_t *submit_auth;
        size_t submit_auth_len;
        char vetted_by[GMCA_NAME_MAX];
        int64_t vetted_at;
        char vet_method[32];
        char *vet_documents; /* JSON array text */
        char vet_result[8];
        uint8_t *vet_auth;
        size_t vet_auth_len;
        char decided_by[GMCA_NAME_MAX];
        int64_t decided_at;
        char *decision_reason;
        uint8_t *decide_auth;
        size_t decide_auth_len;
        char issued_serial[GMCA_SERIAL_HEX_MAX];
        int64_t issued_at;
};
#define RA_APP_COLS                                                                                \
        "id, applicant_id, type, state, ca, profile, days, csr, info_json, "                       \
        "materials, "                                                                              \
        "old_serial, carrier, affiliation_confirmed, submitted_by, submitted_at, "                 \
        "submit_auth, "                                                                            \
        "vetted_by, vetted_at, vet_method, vet_documents, vet_result, vet_auth, "                  \
        "decided_by, "                                                                             \
        "decided_at, decision_reason, decide_auth, issued_serial, issued_at"

/* GMCA_ERR_NOTFOUND "application N: no such application". */
int ra_app_load(struct gmca_store *s, int64_t id, struct ra_app *out,
                struct gmca_error *e) GMCA_WUR;
void ra_app_clear(struct ra_app *a);
/* The row (RA_APP_COLS) under q's cursor. */
struct gmca_q;
int ra_app_from_row(struct gmca_q *q, struct ra_app *out, struct gmca_error *e) GMCA_WUR;
/* -1 if unknown */
int ra_app_type_from_name(const char *s);

/*
 * The lifecycle rule of type against the old certificate (CPS §3.6.2,
 * §3.6.4, §3.7, §3.8), checked at submission, at approval and by the CA
 * engine before it signs: the certificate exists here (GMCA_ERR_NOTFOUND),
 * is not revoked and not expired (GMCA_ERR_STATE), renewal only from
 * GMCA_RA_RENEW_WINDOW before its end (GMCA_ERR_POLICY), the CSR's key is
 * the old one (renew) or not (rekey), the CSR's subject is the old one for
 * renew/rekey/reissue and so are the profile and the subject information
 * info (ra_info_text form; ra_old_info), the affiliation is re-confirmed
 * for organisation and staff renewals, the carrier is given for a reissue, and
 * no other application for it is open or has renewed it (self_id: this one, 0
 * if none yet). old (may be NULL) receives the old certificate's record.
 */
int ra_lifecycle_check(struct gmca_store *s, enum gmca_app_type type, const char *old_serial,
                       const char *profile, const uint8_t *csr, size_t csr_len, const char *info,
                       const char *carrier, int affiliation, int64_t self_id, int64_t now,
                       struct gmca_cert_rec *old, struct gmca_error *e) GMCA_WUR;

#endif
