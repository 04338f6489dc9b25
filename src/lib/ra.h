/*
 * ra: the registration authority's business (CPS §2.2, §3.1–§3.9, §4.5,
 * §8.4) as the operations behind the signed /api/v1 API. Each operation
 * takes the operator a request was authenticated as (auth.h) and the
 * request's JSON body, checks the body strictly (unknown keys, wrong types,
 * over-long strings are GMCA_ERR_INVALID naming the field), checks the
 * operator's role (GMCA_ERR_FORBIDDEN) and the CPS rule
 * (GMCA_ERR_POLICY or GMCA_ERR_STATE naming it), and does its work in one
 * store transaction with its audit record, whose actor is the operator's
 * name. A refusal is audited and changes nothing else. Results are JSON
 * objects (json_t, caller decrefs) that the front sends as they are; the
 * API document docs/api.md shows every body and result.
 *
 * The workflow of an application (§3.1.3, §3.2, §3.3):
 *   submitted --vet(pass)--> vetted --approve--> approved --CA engine--> issued
 *        \--vet(fail)--> rejected      \--reject--> rejected
 * Two people at least: the operator who vets is not the one who submitted
 * (§3.1.3 c: 审核员和信息录入员分别为两个不同的系统操作人员), and the
 * business admin who approves is not the one who submitted. Each step keeps
 * the operator's signed request (its proof). Approval hands the application
 * to the CA engine (env->issue), which checks everything again from the
 * store, the proofs and the operator records' tags, which only the
 * custodians can make (gmca_ra_check_approvals), before it signs.
 *
 * Lifecycle (§3.6–§3.9) goes through the same workflow as an application of
 * a type naming the certificate it replaces:
 *   renew   (§3.6.2, §3.6.4) same public key, only from 30 days before the
 *           old certificate's notAfter, not once it is expired or revoked;
 *           organisation and staff certificates need affiliation_confirmed.
 *           The old certificate runs out by itself.
 *   rekey   (§3.6.1) a different public key; old revoked superseded.
 *   reissue (§3.7) carrier lost or damaged; new certificate from now to the
 *           old one's notAfter; old revoked (lost: keyCompromise, damaged:
 *           superseded), the carrier recorded.
 *   change  (§3.8) new subject information; old revoked superseded.
 * The old certificate is revoked in the same transaction that issues the
 * new one.
 *
 * Revocation (§3.9): reasons A–I of §3.9.1 (gmca_ra_reason_code), by the
 * requesters of §3.9.2, each request with a 24-hour deadline (§3.9.6). A
 * business admin's request is carried out at once; a business operator's
 * waits for a business admin to complete it. The front records the request
 * and the completion with their proofs; the CA engine carries it out
 * (env->revoke, gmca_ra_revoke_approved) after checking them again.
 */
#ifndef GMCA_RA_H
#define GMCA_RA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "auth.h"
#include "err.h"
#include "store.h"

struct gmca_ctx;

#define GMCA_RA_RENEW_WINDOW (30 * 86400) /* §3.6.2 */
#define GMCA_RA_REVOKE_DEADLINE 86400     /* §3.9.6 */
#define GMCA_RA_WORKING_DAYS 2            /* §3.2.3 */
#define GMCA_RA_LIST_MAX 500              /* rows per page */

/*
 * Sealing of sensitive fields (identity document numbers, §4.5, §8.4): the
 * key is held by the CA engine; the front reaches it over the engine
 * socket, tests use a local key. aad binds the value to its row and field
 * ("applicant:<id>:id_number"). *out is malloc'd; unseal of a tampered or
 * moved value is GMCA_ERR_VERIFY.
 */
struct gmca_pii_sealer {
        int (*seal)(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                    size_t *outlen, struct gmca_error *e);
        int (*unseal)(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                      size_t *outlen, struct gmca_error *e);
        void *arg;
};

/* What the operations need. */
struct gmca_ra_env {
        struct gmca_store *store;
        const char *dir; /* state directory (profiles are read from <dir>/profiles) */
        const struct gmca_pii_sealer *sealer;
        /*
         * Ask the CA engine to issue approved application app_id (it checks
         * again and signs; gmca_ra_issue_approved in the engine process).
         * *serial receives the new certificate's serial. Called after the
         * approval is committed; a failure leaves the application approved
         * (it can be issued later with gmca_ra_application_issue).
         */
        int (*issue)(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                     struct gmca_error *e);
        void *issue_arg;
        /* Ask the CA engine to carry out approved recovery id (gmca_ra_recover_approved);
         * same rules as issue; shares issue_arg. NULL: recoveries stay approved. */
        int (*recover)(void *arg, int64_t id, struct gmca_error *e);
        /* Ask the CA engine to carry out revocation request id (gmca_ra_revoke_approved);
         * shares issue_arg. NULL, or a failure: the request stays pending. */
        int (*revoke)(void *arg, int64_t id, struct gmca_error *e);
        /* Ask the CA engine to disable operator name on the super admin's signed request
         * proof (auth.h gmca_operator_disable_signed; the API's operator disable); shares
         * issue_arg. NULL: refused. */
        int (*disable)(void *arg, const char *name, const uint8_t *proof, size_t len,
                       struct gmca_error *e);
};

/* ---- applicants (§2.2.2–§2.2.4, §3.1.1) ---- */

/* POST /api/v1/applicants -> {"id":N, ...masked record} */
int gmca_ra_applicant_create(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             const uint8_t *body, size_t len, int64_t now, json_t **out,
                             struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/applicants/{id}[?full=1]: full=1 unseals (business admin only; audited). */
int gmca_ra_applicant_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                          int64_t id, int full, int64_t now, json_t **out,
                          struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/applicants?kind=&name=&limit=&offset= -> {"items":[masked...],"total":N} */
int gmca_ra_applicant_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                           const char *kind, const char *name, int64_t limit, int64_t offset,
                           json_t **out, struct gmca_error *e) GMCA_WUR;
/* PATCH /api/v1/applicants/{id}: correct fields (§4.5 item 5); the audit record
 * names the fields changed, not their values. */
int gmca_ra_applicant_correct(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                              int64_t id, const uint8_t *body, size_t len, int64_t now,
                              json_t **out, struct gmca_error *e) GMCA_WUR;

/* ---- applications ---- */

enum gmca_app_type {
        GMCA_APP_NEW,
        GMCA_APP_RENEW,
        GMCA_APP_REKEY,
        GMCA_APP_REISSUE,
        GMCA_APP_CHANGE,
};
const char *gmca_app_type_name(enum gmca_app_type t); /* "new", "renew", ... */

/*
 * POST /api/v1/applications (type new; old_serial NULL) or
 * POST /api/v1/certificates/{old_serial}/{renew|rekey|reissue|change}.
 * The CSR's proof of possession is checked with the profile's SM2 ID, the
 * profile's request rules are checked, and the lifecycle rule of the type
 * against the old certificate. -> the application record.
 */
int gmca_ra_application_submit(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               enum gmca_app_type type, const char *old_serial, const uint8_t *body,
                               size_t len, int64_t now, json_t **out,
                               struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/applications/{id}: with elapsed_seconds, working_days and overdue (§3.2.3). */
int gmca_ra_application_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            int64_t id, int64_t now, json_t **out, struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/applications?state=&applicant=&limit=&offset= */
int gmca_ra_application_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             const char *state, int64_t applicant, int64_t limit, int64_t offset,
                             int64_t now, json_t **out, struct gmca_error *e) GMCA_WUR;
/* POST /api/v1/applications/{id}/vet (§3.2.1) */
int gmca_ra_application_vet(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            int64_t id, const uint8_t *body, size_t len, int64_t now, json_t **out,
                            struct gmca_error *e) GMCA_WUR;
/*
 * POST /api/v1/applications/{id}/approve (approve = 1) or .../reject (0)
 * (§3.2.2, §3.2.4: a notification record either way). Approval then asks
 * env->issue; the result has "state":"issued" and "serial" and
 * "certificate" (PEM), or "state":"approved" and "issue_error" if the CA
 * engine refused or was not reachable.
 */
int gmca_ra_application_decide(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               int64_t id, int approve, const uint8_t *body, size_t len,
                               int64_t now, json_t **out, struct gmca_error *e) GMCA_WUR;
/* POST /api/v1/applications/{id}/issue: retry env->issue for an approved one. */
int gmca_ra_application_issue(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                              int64_t id, int64_t now, json_t **out, struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/notifications?application=N */
int gmca_ra_notifications(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                          int64_t application, json_t **out, struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/certificates/{serial} -> record with "certificate" PEM, status, reason. */
int gmca_ra_certificate_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            const char *serial, int64_t now, json_t **out,
                            struct gmca_error *e) GMCA_WUR;

/* Seconds of [from, to) that fall on Monday–Friday in China Standard Time (UTC+8). */
int64_t gmca_ra_working_seconds(int64_t from, int64_t to);

/* ---- revocation (§3.9) ---- */

/* 'A'..'I' -> RFC 5280 CRLReason; -1 for anything else. */
int gmca_ra_reason_code(char reason);

/* POST /api/v1/revocations */
int gmca_ra_revocation_request(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               const uint8_t *body, size_t len, int64_t now, json_t **out,
                               struct gmca_error *e) GMCA_WUR;
/* POST /api/v1/revocations/{id}/complete */
int gmca_ra_revocation_complete(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                                int64_t id, int64_t now, json_t **out,
                                struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/revocations?state= : each with deadline and overdue. */
int gmca_ra_revocation_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            const char *state, int64_t now, json_t **out,
                            struct gmca_error *e) GMCA_WUR;

/*
 * In the CA engine process (c activated): carry out pending revocation
 * request id, checked from the store alone (ca_ra_revoke.c): the
 * requester's signed POST /api/v1/revocations, whose body is the row's,
 * by the operator the row names, with a role that may ask; unless that
 * role may also complete (a business admin: at once, §3.9.6), the signed
 * POST /api/v1/revocations/{id}/complete by another operator whose role
 * may complete; both operators' records carrying the custodians' tag under
 * K_op; the certificate still one the RA may revoke (ra_revocation_target);
 * the request not completed before. Then, in one transaction: the
 * certificate revoked (with its encryption pair), cert.revoke (the engine
 * the actor, who asked and who completed in the detail), the request
 * completed, the subscriber notified, ra.revocation.complete (the
 * completing operator the actor). A refusal is audited and changes nothing.
 */
int gmca_ra_revoke_approved(struct gmca_ctx *c, int64_t id, int64_t now,
                            struct gmca_error *e) GMCA_WUR;

/* ---- key recovery (§3.10; the KM, km.h) ----
 *
 * A recovery of an escrowed encryption key is requested by one operator
 * and approved by another, a business admin (the approver is never the
 * requester), each step a signed request kept as its proof; then the CA
 * engine checks both again from the records alone and asks the KM to seal
 * the key to the recipient:
 *   kind "subscriber" (§3.10.1): the subscriber lost or broke their token;
 *     the recipient is their *current* signature certificate (recipient_serial:
 *     valid, issued by this CA, the same subject as the encryption certificate),
 *     so only the subscriber's new token can open the key.
 *   kind "judicial" (§3.10.2): a law-enforcement, judicial or other authorised
 *     body; authority, document (the legal document's reference) and reason
 *     are required, and the recipient is the public key of the specified
 *     carrier (recipient_public_key, SM2, PEM).
 * The encryption certificate must be one the CA issued for a KM key pair
 * (dual_keys). Every step is audited on the CA's chain (ra.recovery.*,
 * km.recover) and the KM's (with who asked and why).
 */

/* POST /api/v1/recoveries {"kind", "encryption_serial", "recipient_serial" |
 * "recipient_public_key", "authority", "document", "reason"} -> the record (state "requested"). */
int gmca_ra_recovery_request(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             const uint8_t *body, size_t len, int64_t now, json_t **out,
                             struct gmca_error *e) GMCA_WUR;
/*
 * POST /api/v1/recoveries/{id}/approve or .../reject {"submission": SM3 of the request's
 * proof, "reason"?}. Approval then asks env->recover; the result has "state":"delivered"
 * and "enveloped_key" (base64 DER SM2EnvelopedKey) and "enveloped_key_blob" (base64
 * ENVELOPEDKEYBLOB), or "state":"approved" and "recover_error" if the engine or the KM
 * refused or was not reachable (POST .../deliver retries).
 */
int gmca_ra_recovery_decide(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            int64_t id, int approve, const uint8_t *body, size_t len, int64_t now,
                            json_t **out, struct gmca_error *e) GMCA_WUR;
int gmca_ra_recovery_deliver(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             int64_t id, int64_t now, json_t **out, struct gmca_error *e) GMCA_WUR;
/* GET /api/v1/recoveries/{id}, GET /api/v1/recoveries?state= */
int gmca_ra_recovery_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                         int64_t id, json_t **out, struct gmca_error *e) GMCA_WUR;
int gmca_ra_recovery_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                          const char *state, json_t **out, struct gmca_error *e) GMCA_WUR;

/*
 * In the CA engine process (c activated): check recovery id from the store
 * alone (both proofs, the operators' tags under K_op and roles, requester
 * != approver, the approval naming the request's submission, the request
 * body matching the record, the recipient rule of its kind), ask the KM to
 * restore the key to the recipient (gmca_km_restore, with the who and why
 * as restoreInfo), and in one transaction store what it delivered, mark the
 * recovery delivered, with the audit record km.recover. A refusal is
 * audited and changes nothing.
 */
int gmca_ra_recover_approved(struct gmca_ctx *c, int64_t id, int64_t now,
                             struct gmca_error *e) GMCA_WUR;

/* ---- the CA engine's side ---- */

/* What an approved application asks the CA to issue, as re-derived from the proofs. */
struct gmca_ra_approved {
        int64_t app_id;
        enum gmca_app_type type;
        char ca[GMCA_NAME_MAX];
        char profile[GMCA_NAME_MAX];
        int days;
        uint8_t *csr; /* DER, OPENSSL_malloc */
        size_t csr_len;
        char *info_json;                      /* NULL: none; malloc */
        char old_serial[GMCA_SERIAL_HEX_MAX]; /* "" for new */
        char carrier[16];                     /* reissue: "lost" or "damaged" */
        char submitted_by[GMCA_NAME_MAX];
        char vetted_by[GMCA_NAME_MAX];
        char approved_by[GMCA_NAME_MAX];
};
void gmca_ra_approved_clear(struct gmca_ra_approved *a);

/*
 * Check from the store alone that application app_id may be issued now:
 * state approved; each of its three proofs (submit, vet, approve) checks
 * (gmca_auth_proof_check) and is the request its step needs (method,
 * target naming this application or the old certificate, body matching the
 * record: the same CSR, profile, CA and subject information, where a renew,
 * rekey or reissue that left subject_info out takes the old certificate's);
 * the vetting and the approval name the submission (the SM3 of the submit
 * proof's signature base, docs/api.md "submission"), so they cannot be moved
 * to another; each operator's record carries the custodians' tag under k_op
 * (gmca_operator_tag_check: the front can write the table, so a record it
 * made, or roles it changed, are refused), and only then are the name and
 * roles read from it; the operators hold roles allowed to do their step;
 * the vetter and the approver are not the submitter; the vet result was
 * pass; the lifecycle rule of its type still holds against the old
 * certificate; and no certificate was made from the same CSR bytes before
 * (the row's state is not trusted to say so). GMCA_ERR_AUTH /
 * GMCA_ERR_POLICY / GMCA_ERR_STATE with the precise cause otherwise;
 * GMCA_ERR_INTERNAL for a NULL k_op (the engine always has K_op).
 */
int gmca_ra_check_approvals(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                            int64_t app_id, int64_t now, struct gmca_ra_approved *out,
                            struct gmca_error *e) GMCA_WUR;

/*
 * In the CA engine process (c activated, signing in-process): in one store
 * transaction, gmca_ra_check_approvals with c's K_op, issue the certificate (for reissue,
 * notAfter = the old one's), revoke the old one where the type says so,
 * mark the application issued, record the notification, with audit
 * records (cert.issue, ra.application.issue naming the three operators).
 * A refusal is audited (ra.application.issue failure) and changes nothing.
 */
int gmca_ra_issue_approved(struct gmca_ctx *c, int64_t app_id, int64_t now,
                           char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e) GMCA_WUR;

#endif
