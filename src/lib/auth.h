/*
 * auth: the CA's operators (CPS §6.2), their roles, what each role may do,
 * and the signed API requests by which they act.
 *
 * Roles (§6.2.3). Duties are separated: one person holds one role, except
 * that a template admin may also be a business admin, and a system admin a
 * template admin (gmca_auth_roles_conflict says which pairs are refused;
 * audit admin goes with no other role, super admin with no business role).
 *
 * Operators are created in a ceremony with the custodians (gmca operator
 * add): the CA issues the operator's SM2 certificate (profile "operator")
 * from their own CSR, so tokens are never shared (§6.2.2), and records
 * name, roles, certificate serial and SM3 fingerprint. A super admin can
 * disable an operator through the API; that revokes the operator's
 * certificate (privilegeWithdrawn) in the same transaction.
 *
 * The front can write the operators table, so a row alone proves nothing.
 * Each row carries a tag, HMAC-SM3 under K_op over its name, roles,
 * certificate serial and fingerprint (gmca_operator_tag); K_op is held by
 * the custodians (after gmca_ctx_authorise) and by the CA engine only,
 * which checks the tag of every operator whose approval it acts on
 * (gmca_ra_check_approvals). So the front can neither make an operator of
 * a certificate whose key it holds nor give an operator another role. The
 * status is not in the tag: a super admin disables through the API, without
 * K_op, and the revocation that goes with it is what the engine refuses.
 *
 * Signed requests (in the spirit of RFC 9421). The client sends
 *     X-Gmca-Operator:  SM3 fingerprint of the operator certificate DER, 64 hex (lower case)
 *     X-Gmca-Timestamp: Unix time in seconds, decimal
 *     X-Gmca-Nonce:     16..64 characters of [A-Za-z0-9_-], never reused
 *     X-Gmca-Signature: base64 of the DER SM2 signature (ID 1234567812345678)
 * over the signature base, these seven lines joined by '\n' (no final '\n'):
 *     gmca-request-v1
 *     METHOD                  upper case, as sent
 *     TARGET                  path and query exactly as sent ("/api/v1/x?y=1")
 *     TIMESTAMP               the header's value
 *     NONCE                   the header's value
 *     BODY-SM3                64 lower-case hex of SM3 over the body (empty body too)
 *     FINGERPRINT             the header's value
 * The server refuses (and audits as auth.request failure): a missing or
 * malformed header (401), an unknown fingerprint (401), a timestamp more
 * than GMCA_AUTH_SKEW seconds from its clock (401 "stale"), a nonce the
 * operator used before (401 "replayed"), a bad signature (401), a disabled
 * operator or a revoked or expired operator certificate (401), a role that
 * may not do the action (403).
 *
 * A proof (gmca_auth_proof) is the signature base, the signature and the
 * body of one accepted request. The RA keeps the proof of every workflow
 * step with the step, so that the CA engine can check again, before it
 * signs, that each step was done by whom the record says (ra.h).
 */
#ifndef GMCA_AUTH_H
#define GMCA_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "store.h"

#define GMCA_AUTH_SKEW 300   /* seconds a request's timestamp may be off */
#define GMCA_AUTH_FPR_LEN 64 /* hex SM3 fingerprint */
#define GMCA_AUTH_NONCE_MIN 16
#define GMCA_AUTH_NONCE_MAX 64
#define GMCA_AUTH_BODY_MAX (1u << 20) /* bytes of a request body */
#define GMCA_OPERATOR_PROFILE "operator"
#define GMCA_OP_KEY_LEN 32 /* K_op */
#define GMCA_OP_TAG_LEN 32 /* HMAC-SM3 */

/* Roles, as bits; names are the API's and the command's. */
enum gmca_role {
        GMCA_ROLE_BUSINESS_ADMIN = 1 << 0,    /* "business_admin"    业务管理员 */
        GMCA_ROLE_TEMPLATE_ADMIN = 1 << 1,    /* "template_admin"    模板管理员 */
        GMCA_ROLE_BUSINESS_OPERATOR = 1 << 2, /* "business_operator" 业务制证员 */
        GMCA_ROLE_SUPER_ADMIN = 1 << 3,       /* "super_admin"       超级管理员 */
        GMCA_ROLE_SYSTEM_ADMIN = 1 << 4,      /* "system_admin"      系统管理员 */
        GMCA_ROLE_AUDIT_ADMIN = 1 << 5,       /* "audit_admin"       审计管理员 */
};
#define GMCA_ROLE_ALL 0x3f
#define GMCA_ROLES_TEXT_MAX 128

/* Everything an operator can ask for; the permission table maps each to roles. */
enum gmca_action {
        GMCA_ACT_WHOAMI,              /* any active operator */
        GMCA_ACT_OPERATOR_LIST,       /* super_admin, audit_admin */
        GMCA_ACT_OPERATOR_DISABLE,    /* super_admin */
        GMCA_ACT_APPLICANT_CREATE,    /* business_operator, business_admin */
        GMCA_ACT_APPLICANT_READ,      /* business_operator, business_admin (masked) */
        GMCA_ACT_APPLICANT_READ_FULL, /* business_admin (each read audited) */
        GMCA_ACT_APPLICANT_CORRECT,   /* business_operator, business_admin */
        GMCA_ACT_APPLICATION_SUBMIT,  /* business_operator, business_admin: new, renew, rekey,
                                         reissue, change */
        GMCA_ACT_APPLICATION_READ,    /* business_operator, business_admin, audit_admin */
        GMCA_ACT_APPLICATION_VET,     /* business_operator, business_admin */
        GMCA_ACT_APPLICATION_DECIDE,  /* business_admin: approve or reject */
        GMCA_ACT_REVOCATION_REQUEST,  /* business_operator, business_admin */
        GMCA_ACT_REVOCATION_COMPLETE, /* business_admin */
        GMCA_ACT_REVOCATION_READ,     /* business_operator, business_admin, audit_admin */
        GMCA_ACT_CERT_READ,           /* business_operator, business_admin, audit_admin */
        GMCA_ACT_PROFILE_READ,        /* template_admin, business_admin, business_operator */
        GMCA_ACT_CRL_GENERATE,        /* system_admin, business_admin */
        GMCA_ACT_AUDIT_READ,          /* audit_admin */
        GMCA_ACT_PROFILE_WRITE,       /* template_admin: replace, enable, disable a profile */
        GMCA_ACT_SYSTEM_READ,         /* system_admin, audit_admin: the system's status */
        GMCA_ACT_RECOVERY_REQUEST,    /* business_operator, business_admin (CPS §3.10) */
        GMCA_ACT_RECOVERY_APPROVE,    /* business_admin: approve, reject, deliver */
        GMCA_ACT_RECOVERY_READ,       /* business_operator, business_admin, audit_admin */
        GMCA_ACT_STATS_READ,          /* business_admin, system_admin, audit_admin (stats.h) */
        GMCA_ACT_COUNT
};

/* "business_admin" -> bit; 0 if unknown. */
unsigned gmca_role_from_name(const char *name);
const char *gmca_role_name(unsigned role_bit);
/* Parse "a,b" (no spaces) into bits; GMCA_ERR_INVALID naming the bad one. */
int gmca_roles_parse(const char *text, unsigned *roles, struct gmca_error *e) GMCA_WUR;
/* Canonical "a,b" in enum order. */
void gmca_roles_format(unsigned roles, char out[GMCA_ROLES_TEXT_MAX]);
/* GMCA_ERR_POLICY naming the two roles if one person may not hold both; 0 if none. */
int gmca_auth_roles_conflict(unsigned roles, struct gmca_error *e) GMCA_WUR;
const char *gmca_action_name(enum gmca_action a);
/* Roles that may do a (the permission table). */
unsigned gmca_action_roles(enum gmca_action a);
/* 0, or GMCA_ERR_FORBIDDEN "role X may not <action>". */
int gmca_auth_allowed(unsigned roles, enum gmca_action a, struct gmca_error *e) GMCA_WUR;

/* ---- operators (store) ---- */

#define GMCA_OP_ACTIVE "active"
#define GMCA_OP_DISABLED "disabled"

struct gmca_operator {
        int64_t id;
        char name[GMCA_NAME_MAX];
        unsigned roles;
        char cert_serial[GMCA_SERIAL_HEX_MAX];
        char fingerprint[GMCA_AUTH_FPR_LEN + 1];
        char status[16];
        int64_t created_at;
        char created_by[GMCA_NAME_MAX * 4];
        int64_t status_time;
        uint8_t tag[GMCA_OP_TAG_LEN]; /* as stored; all zero if the stored one is malformed */
};

/* SM3 of der as 64 lower-case hex. */
void gmca_auth_fingerprint(const uint8_t *der, size_t len, char out[GMCA_AUTH_FPR_LEN + 1]);

struct gmca_ctx;

/*
 * K_op, the key of the operator records' tags, held by c once its
 * custodians authorised it (gmca_ctx_authorise) or activated it (the CA
 * engine): HMAC-SM3(key PIN, "gmca operator record v1"). GMCA_ERR_STATE if
 * they have not. The caller wipes k_op (OPENSSL_cleanse).
 */
int gmca_operator_key(const struct gmca_ctx *c, uint8_t k_op[GMCA_OP_KEY_LEN],
                      struct gmca_error *e) GMCA_WUR;
/*
 * The tag of op under k_op: HMAC-SM3 over name, roles (as gmca_roles_format
 * writes them), cert_serial and fingerprint, each as a 4-byte big-endian
 * length and its bytes. op->tag is not read.
 */
int gmca_operator_tag(const struct gmca_operator *op, const uint8_t k_op[GMCA_OP_KEY_LEN],
                      uint8_t tag[GMCA_OP_TAG_LEN], struct gmca_error *e) GMCA_WUR;
/*
 * 0 if op->tag is op's tag under k_op (compared in constant time);
 * GMCA_ERR_AUTH "operator X: record not made by the custodians (tag)" if
 * not; GMCA_ERR_INTERNAL for a NULL op or k_op.
 */
int gmca_operator_tag_check(const struct gmca_operator *op, const uint8_t k_op[GMCA_OP_KEY_LEN],
                            struct gmca_error *e) GMCA_WUR;

/*
 * Inside the caller's transaction. Name 1..63 UTF-8 bytes without controls.
 * op->tag is computed here under k_op (NULL: GMCA_ERR_INTERNAL) and stored
 * with the row; *op gets it, the id and the status time.
 */
int gmca_operator_insert(struct gmca_store *s, struct gmca_operator *op,
                         const uint8_t k_op[GMCA_OP_KEY_LEN], struct gmca_error *e) GMCA_WUR;
int gmca_operator_get(struct gmca_store *s, const char *name, struct gmca_operator *out,
                      struct gmca_error *e) GMCA_WUR;
int gmca_operator_by_fingerprint(struct gmca_store *s, const char *fpr, struct gmca_operator *out,
                                 struct gmca_error *e) GMCA_WUR;
int gmca_operator_set_status(struct gmca_store *s, const char *name, const char *status,
                             int64_t when, struct gmca_error *e) GMCA_WUR;
int gmca_operator_list(struct gmca_store *s, int (*cb)(const struct gmca_operator *, void *),
                       void *arg, struct gmca_error *e) GMCA_WUR;

/*
 * One business operation (its own transaction, which the caller must not
 * hold): the operator's status becomes disabled and their certificate is
 * revoked (privilegeWithdrawn; if it was revoked already, it stays so),
 * audited as operator.disable by actor. GMCA_ERR_NOTFOUND for an unknown
 * name, GMCA_ERR_STATE if already disabled; refusals are audited too. Both
 * gmca operator disable (after the custodians) and the API's super admin
 * call it.
 */
int gmca_operator_disable(struct gmca_store *s, const char *name, const char *actor, int64_t now,
                          struct gmca_error *e) GMCA_WUR;

/* ---- ceremonies: the custodians add and disable operators (gmca operator) ---- */

struct gmca_operator_add_req {
        const char *name;
        const char *roles;  /* "a,b" as gmca_roles_parse reads it */
        const uint8_t *csr; /* the operator's own PKCS#10 (DER or PEM), SM2 ID 1234567812345678 */
        size_t csr_len;
        int days;                 /* 0: the profile's default */
        const char *profiles_src; /* a CA made before the operator profile existed takes
                                     operator.json from here (audited config.change); NULL: no */
};

/*
 * After the custodians authorised c (gmca_ctx_authorise): one transaction
 * issues the operator certificate (profile "operator", default CA) and
 * records the operator with its tag under c's K_op (GMCA_ERR_STATE without
 * it), audited as operator.add (name, roles, serial,
 * fingerprint, custodians). A bad name or role, conflicting roles
 * (GMCA_ERR_POLICY), a name taken or a public key that already belongs to
 * an operator (GMCA_ERR_EXISTS: tokens are not shared, CPS §6.2.2), a bad
 * CSR: refused and audited, nothing recorded. *op and *cert (caller frees;
 * NULL: not wanted) are set on success.
 */
int gmca_operator_add(struct gmca_ctx *c, const struct gmca_operator_add_req *r,
                      struct gmca_operator *op, X509 **cert, struct gmca_error *e) GMCA_WUR;

/* gmca_operator_disable by the custodians who authorised c (named in the audit record). */
int gmca_operator_disable_ctx(struct gmca_ctx *c, const char *name, struct gmca_error *e) GMCA_WUR;

/*
 * In the CA engine process (c activated; ca_op_disable.c): gmca_operator_disable
 * of operator name by the super admin whose signed request proof (POST
 * /api/v1/operators/{name}/disable, within GMCA_AUTH_SKEW of now) checks, their
 * record carrying the custodians' tag; audited under their name. GMCA_ERR_AUTH
 * otherwise, audited.
 */
int gmca_operator_disable_signed(struct gmca_ctx *c, const char *name, const uint8_t *proof,
                                 size_t len, int64_t now, struct gmca_error *e) GMCA_WUR;

/* ---- signed requests ---- */

struct gmca_auth_headers {
        char operator_fpr[GMCA_AUTH_FPR_LEN + 1];
        char timestamp[24];
        char nonce[GMCA_AUTH_NONCE_MAX + 1];
        char signature[160]; /* base64 of a DER SM2 signature (<= 72 bytes) */
};

/*
 * The signature base of a request (layout above) into a new malloc'd
 * NUL-terminated string *base. GMCA_ERR_INVALID for a method or target with
 * control characters or over 4095 bytes (gmca_auth_proof.target holds it
 * with its NUL), a method not 1..15 upper-case letters, or malformed
 * header values; GMCA_ERR_LIMIT for a body over GMCA_AUTH_BODY_MAX.
 */
int gmca_auth_base(const char *method, const char *target, const char *timestamp, const char *nonce,
                   const uint8_t *body, size_t body_len, const char *fpr, char **base,
                   struct gmca_error *e) GMCA_WUR;

/*
 * Client side: sign a request with the operator's key and certificate at
 * time now (fresh random nonce), filling h.
 */
int gmca_auth_sign(EVP_PKEY *key, X509 *cert, const char *method, const char *target,
                   const uint8_t *body, size_t body_len, int64_t now, struct gmca_auth_headers *h,
                   struct gmca_error *e) GMCA_WUR;

/* An accepted request: who, and the proof to keep with what it did. */
struct gmca_auth_result {
        struct gmca_operator op;
        uint8_t *proof; /* gmca_auth_proof encoding; free with OPENSSL_free */
        size_t proof_len;
};
void gmca_auth_result_clear(struct gmca_auth_result *r);

/*
 * Server side: check a request as described at the top (everything but the
 * role), at time now, against the store: the operator's certificate must
 * be in the store, issued by one of its CAs (signature checked), valid at
 * now and not revoked; the nonce is recorded (in its own short
 * transaction, so a replay is refused even if the action later fails; old
 * nonces past 2 * GMCA_AUTH_SKEW are purged). Failures are
 * GMCA_ERR_AUTH with a precise cause ("stale", "replayed", "bad
 * signature", "unknown operator", "operator disabled", "operator
 * certificate revoked") and are NOT audited here: the caller audits. h
 * fields may be "" for a missing header.
 */
int gmca_auth_verify(struct gmca_store *s, const struct gmca_auth_headers *h, const char *method,
                     const char *target, const uint8_t *body, size_t body_len, int64_t now,
                     struct gmca_auth_result *out, struct gmca_error *e) GMCA_WUR;

/* ---- proofs ---- */

struct gmca_auth_proof {
        const char *base; /* the signature base (NUL-terminated, inside the encoding) */
        const uint8_t *sig;
        size_t sig_len;
        const uint8_t *body;
        size_t body_len;
        /* Parsed from base: */
        char method[16];
        char target[4096];
        int64_t timestamp;
        char fpr[GMCA_AUTH_FPR_LEN + 1];
};

/* u32 len + base (with NUL), u32 len + sig, u32 len + body; malloc'd *out. */
int gmca_auth_proof_encode(const char *base, const uint8_t *sig, size_t sig_len,
                           const uint8_t *body, size_t body_len, uint8_t **out, size_t *out_len,
                           struct gmca_error *e) GMCA_WUR;
/* Strict; p points into buf. GMCA_ERR_INVALID if malformed. */
int gmca_auth_proof_decode(const uint8_t *buf, size_t len, struct gmca_auth_proof *p,
                           struct gmca_error *e) GMCA_WUR;

/*
 * Check a proof again (the CA engine, before it signs): the SM2 signature
 * over base by the certificate of the operator the fingerprint names, the
 * body's digest against base, that the certificate was issued by one of the
 * store's CAs and is not revoked now, that the operator is active; *op
 * receives the operator (for their name and roles). Does not check the
 * timestamp's freshness or the nonce (they were checked when the request
 * came), nor the operator record's tag: the caller, which holds K_op, does
 * (gmca_operator_tag_check) before it trusts the name or the roles.
 * GMCA_ERR_AUTH with the cause.
 */
int gmca_auth_proof_check(struct gmca_store *s, const uint8_t *proof, size_t len, int64_t now,
                          struct gmca_auth_proof *p, struct gmca_operator *op,
                          struct gmca_error *e) GMCA_WUR;

/*
 * The CA engine's check of one stored step of an RA workflow (a recovery's
 * request or approval, a revocation's request or completion): proof is the
 * signed request (name: "request", "approval", ... for messages), checked
 * with gmca_auth_proof_check, its operator record's tag under k_op before
 * the name and roles count, signed by who when who is not NULL, a POST to
 * target, by a role allowed act. Messages start with what ("recovery 5").
 * GMCA_ERR_AUTH (or the tag check's code) with the cause.
 */
int gmca_auth_step_check(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                         const char *what, const char *name, const uint8_t *proof, size_t len,
                         const char *who, enum gmca_action act, const char *target, int64_t now,
                         struct gmca_auth_proof *p, struct gmca_operator *op,
                         struct gmca_error *e) GMCA_WUR;

#endif
