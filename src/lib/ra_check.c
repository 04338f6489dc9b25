/*
 * The CA engine's re-check before it signs for an application
 * (DESIGN.md: a compromise of the front must not let anyone sign). The
 * front wrote the application row, so the row is not trusted on its own:
 * each of the three steps (submit, vet, approve) must carry the signed
 * request of the operator who did it (auth.h proofs), the signature must
 * still check against an operator certificate of this CA that is not
 * revoked, the request must be the one the step needs (method, target
 * naming this application or the old certificate), what the submitter
 * signed (CSR, profile, CA, validity, subject information, carrier,
 * affiliation) must be what the row asks the CA to issue, and the vetter's
 * and approver's requests must name that very submission (its digest), so
 * that a submission written into the row after they signed is refused. A
 * certificate already made from the same CSR means the approvals are spent
 * (the front could set an issued row back to approved). The operators'
 * names and roles come from the operators table, which the front can write
 * too: each row must carry the custodians' tag under K_op (auth.h) before
 * its name or roles count, so the front can neither enrol a certificate
 * whose key it holds nor raise an operator's role. The CPS's two-person
 * rule (§3.1.3) is checked on the operators the proofs name. The lifecycle
 * rule of a renew, rekey, reissue or change is checked again against the
 * old certificate as it is now. Also here: reading an application row and
 * the lifecycle rules, which the front checks with the same code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"
#include "x509.h"

static const char SQL_APP_GET[] = "SELECT " RA_APP_COLS " FROM applications WHERE id = ?";
static const char SQL_OTHERS[] =
    "SELECT id, state, type FROM applications WHERE old_serial = ? AND id <> ?"
    " AND state IN ('submitted', 'vetted', 'approved', 'issued') ORDER BY id "
    "LIMIT 1";
static const char SQL_OLD_INFO[] = "SELECT r.info_json FROM certificates c JOIN requests r"
                                   " ON r.id = c.request_id WHERE c.serial = ?";
/* A certificate made from exactly these CSR bytes (requests_csr index). */
static const char SQL_CSR_USED[] = "SELECT serial FROM requests WHERE csr_der = ?"
                                   " AND serial IS NOT NULL LIMIT 1";

void ra_app_clear(struct ra_app *a)
{
        if (a == NULL)
                return;
        OPENSSL_free(a->csr);
        free(a->info_json);
        free(a->materials);
        OPENSSL_free(a->submit_auth);
        free(a->vet_documents);
        OPENSSL_free(a->vet_auth);
        free(a->decision_reason);
        OPENSSL_free(a->decide_auth);
        memset(a, 0, sizeof(*a));
}

static int text_dup(struct gmca_q *q, int col, char **out, struct gmca_error *e)
{
        const char *t = gmca_q_col_text(q, col);

        *out = NULL;
        if (t != NULL && (*out = strdup(t)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return 0;
}

static int app_row(struct gmca_q *q, struct ra_app *a, struct gmca_error *e)
{
        int rc;

        a->id = gmca_q_col_int(q, 0);
        a->applicant_id = gmca_q_col_int(q, 1);
        a->days = (int)gmca_q_col_int(q, 6);
        a->affiliation_confirmed = gmca_q_col_int(q, 12) != 0;
        a->submitted_at = gmca_q_col_int(q, 14);
        a->vetted_at = gmca_q_col_int(q, 17);
        a->decided_at = gmca_q_col_int(q, 23);
        a->issued_at = gmca_q_col_int(q, 27);
        if ((rc = gmca_q_col_str(q, 2, a->type, sizeof(a->type), "type", e)) != 0 ||
            (rc = gmca_q_col_str(q, 3, a->state, sizeof(a->state), "state", e)) != 0 ||
            (rc = gmca_q_col_str(q, 4, a->ca, sizeof(a->ca), "ca", e)) != 0 ||
            (rc = gmca_q_col_str(q, 5, a->profile, sizeof(a->profile), "profile", e)) != 0 ||
            (rc = gmca_q_col_dup(q, 7, &a->csr, &a->csr_len, e)) != 0 ||
            (rc = text_dup(q, 8, &a->info_json, e)) != 0 ||
            (rc = text_dup(q, 9, &a->materials, e)) != 0 ||
            (rc = gmca_q_col_str(q, 10, a->old_serial, sizeof(a->old_serial), "old_serial", e)) !=
                0 ||
            (rc = gmca_q_col_str(q, 11, a->carrier, sizeof(a->carrier), "carrier", e)) != 0 ||
            (rc = gmca_q_col_str(q, 13, a->submitted_by, sizeof(a->submitted_by), "submitted_by",
                                 e)) != 0 ||
            (rc = gmca_q_col_dup(q, 15, &a->submit_auth, &a->submit_auth_len, e)) != 0 ||
            (rc = gmca_q_col_str(q, 16, a->vetted_by, sizeof(a->vetted_by), "vetted_by", e)) != 0 ||
            (rc = gmca_q_col_str(q, 18, a->vet_method, sizeof(a->vet_method), "vet_method", e)) !=
                0 ||
            (rc = text_dup(q, 19, &a->vet_documents, e)) != 0 ||
            (rc = gmca_q_col_str(q, 20, a->vet_result, sizeof(a->vet_result), "vet_result", e)) !=
                0 ||
            (rc = gmca_q_col_dup(q, 21, &a->vet_auth, &a->vet_auth_len, e)) != 0 ||
            (rc = gmca_q_col_str(q, 22, a->decided_by, sizeof(a->decided_by), "decided_by", e)) !=
                0 ||
            (rc = text_dup(q, 24, &a->decision_reason, e)) != 0 ||
            (rc = gmca_q_col_dup(q, 25, &a->decide_auth, &a->decide_auth_len, e)) != 0 ||
            (rc = gmca_q_col_str(q, 26, a->issued_serial, sizeof(a->issued_serial), "issued_serial",
                                 e)) != 0)
                return rc;
        return 0;
}

int ra_app_load(struct gmca_store *s, int64_t id, struct ra_app *out, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(out, 0, sizeof(*out));
        if ((rc = gmca_q_open(s, SQL_APP_GET, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "application %lld", (long long)id);
        if (rc == GMCA_DB_ROW)
                rc = app_row(&q, out, e);
        else if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "application %lld: no such application",
                                    (long long)id);
        gmca_q_close(&q);
        if (rc != 0)
                ra_app_clear(out);
        return rc;
}

int ra_app_from_row(struct gmca_q *q, struct ra_app *out, struct gmca_error *e)
{
        int rc;

        memset(out, 0, sizeof(*out));
        if ((rc = app_row(q, out, e)) != 0)
                ra_app_clear(out);
        return rc;
}

int ra_submission_digest(const uint8_t *proof, size_t len, char out[RA_SUBMISSION_HEX + 1],
                         struct gmca_error *e)
{
        struct gmca_auth_proof p;
        uint8_t md[GMCA_SM3_LEN];
        int rc;

        if (proof == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "no signed submission");
        if ((rc = gmca_auth_proof_decode(proof, len, &p, e)) != 0)
                return rc;
        if (gmca_sm3(p.base, strlen(p.base), md) != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "submission: SM3 failed");
        gmca_hex(md, sizeof(md), out);
        return 0;
}

int ra_old_info(struct gmca_store *s, const char *serial, char **info, struct gmca_error *e)
{
        json_error_t je;
        json_t *j = NULL;
        struct gmca_q q;
        int rc;

        *info = NULL;
        if ((rc = gmca_q_open(s, SQL_OLD_INFO, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "subject information of %s", serial);
        if (rc == GMCA_DB_ROW && !gmca_q_col_null(&q, 0)) {
                const char *t = gmca_q_col_text(&q, 0);

                /* Written by gmca cert issue --info too: canonical form, as the RA's. */
                if (t == NULL || (j = json_loads(t, JSON_REJECT_DUPLICATES, &je)) == NULL ||
                    !json_is_object(j))
                        rc = gmca_error_set(e, GMCA_ERR_DB,
                                            "certificate %s: its recorded subject information "
                                            "is not a JSON object",
                                            serial);
        }
        /* No issuance request on record (GMCA_DB_DONE): no information to carry. */
        gmca_q_close(&q);
        if (rc >= 0 && j != NULL)
                rc = ra_info_text(j, info, e);
        json_decref(j);
        return rc < 0 ? rc : 0;
}

/* GMCA_ERR_STATE if a certificate was made from these very CSR bytes already. */
static int csr_unused(struct gmca_store *s, int64_t app_id, const uint8_t *csr, size_t len,
                      struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX] = "";
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_CSR_USED, &q, e)) != 0)
                return rc;
        gmca_q_blob(&q, csr, len);
        rc = gmca_q_step(&q, e, "application %lld: CSR used", (long long)app_id);
        if (rc == GMCA_DB_ROW)
                rc = gmca_q_col_str(&q, 0, serial, sizeof(serial), "serial", e);
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        if (serial[0] != '\0')
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "application %lld: certificate %s was issued from this "
                                      "CSR already; an approval is spent once",
                                      (long long)app_id, serial);
        return 0;
}

static void iso(int64_t t, char out[32])
{
        gmca_time_iso((time_t)t, out, 32);
}

/*
 * The stored record of the old certificate is the front's to write; its
 * DER is the CA's signature. Check that the DER is the certificate of that
 * serial, signed by its CA, and take its validity from the DER, so that a
 * rewritten not_after neither opens a renewal early nor lengthens a reissue.
 */
static int signed_record(struct gmca_store *s, const char *serial, struct gmca_cert_rec *rec,
                         struct gmca_error *e)
{
        struct gmca_ca_rec ca;
        X509 *cert = NULL, *cacert = NULL;
        char got[GMCA_SERIAL_HEX_MAX];
        struct tm tm;
        int rc;

        memset(&ca, 0, sizeof(ca));
        if ((rc = gmca_store_ca_get_by_id(s, rec->ca_id, &ca, e)) != 0)
                return rc;
        rc = GMCA_ERR_DB;
        if ((cert = gmca_cert_parse(rec->der, rec->der_len, e)) == NULL ||
            (cacert = gmca_cert_parse(ca.cert_der, ca.cert_len, e)) == NULL ||
            gmca_serial_hex(cert, got, sizeof(got)) != 0 || strcmp(got, serial) != 0 ||
            gmca_cert_verify_signed_by(cert, X509_get0_pubkey(cacert),
                                       ca.sm2_id[0] ? ca.sm2_id : GMCA_SM2_DEFAULT_ID, e) != 0) {
                gmca_error_clear(e);
                gmca_error_set(e, rc,
                               "certificate %s: the stored certificate is not the one CA %s "
                               "signed under that serial",
                               serial, ca.name);
                goto out;
        }
        if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) != 1)
                goto bad_time;
        rec->not_before = (int64_t)timegm(&tm);
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
                goto bad_time;
        rec->not_after = (int64_t)timegm(&tm);
        rc = 0;
        goto out;
bad_time:
        rc = gmca_error_ossl(e, GMCA_ERR_DB, "certificate %s: unreadable validity", serial);
out:
        X509_free(cert);
        X509_free(cacert);
        gmca_ca_rec_clear(&ca);
        return rc;
}

int ra_lifecycle_check(struct gmca_store *s, enum gmca_app_type type, const char *old_serial,
                       const char *profile, const uint8_t *csr, size_t csr_len, const char *info,
                       const char *carrier, int affiliation, int64_t self_id, int64_t now,
                       struct gmca_cert_rec *old, struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        char *old_info = NULL;
        const unsigned char *p;
        X509_REQ *req = NULL;
        X509 *cert = NULL;
        EVP_PKEY *newkey, *oldkey;
        char t1[32], t2[32];
        struct gmca_q q;
        int rc, same_key;

        memset(&rec, 0, sizeof(rec));
        if (type == GMCA_APP_NEW)
                return 0;
        if (old_serial == NULL || old_serial[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: names no old certificate",
                                      gmca_app_type_name(type));
        rc = gmca_store_cert_get(s, old_serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "certificate %s: not issued by this CA (CPS §3.6.4)",
                                      old_serial);
        }
        if (rc != 0)
                return rc;
        if ((rc = signed_record(s, old_serial, &rec, e)) != 0)
                goto out;
        rc = GMCA_ERR_STATE;
        if (rec.status == GMCA_CERT_REVOKED) {
                gmca_error_set(e, rc,
                               "certificate %s is revoked: it cannot be %s; apply anew "
                               "(CPS §3.6.2)",
                               old_serial,
                               type == GMCA_APP_RENEW     ? "renewed"
                               : type == GMCA_APP_REKEY   ? "rekeyed"
                               : type == GMCA_APP_REISSUE ? "reissued"
                                                          : "changed");
                goto out;
        }
        if (now >= rec.not_after) {
                iso(rec.not_after, t1);
                gmca_error_set(e, rc, "certificate %s expired at %s: apply anew (CPS §3.6.2)",
                               old_serial, t1);
                goto out;
        }
        rc = GMCA_ERR_POLICY;
        if (type == GMCA_APP_RENEW && now < rec.not_after - GMCA_RA_RENEW_WINDOW) {
                iso(rec.not_after, t1);
                iso(rec.not_after - GMCA_RA_RENEW_WINDOW, t2);
                gmca_error_set(e, rc,
                               "CPS §3.6.2: a certificate is renewed only from 30 days before it "
                               "expires; %s ends %s, renewal opens %s",
                               old_serial, t1, t2);
                goto out;
        }
        if (type != GMCA_APP_CHANGE && strcmp(profile, rec.profile) != 0) {
                gmca_error_set(e, rc,
                               "profile %s: a %s keeps the old certificate's profile %s; a new "
                               "profile is a change (CPS §3.8)",
                               profile, gmca_app_type_name(type), rec.profile);
                goto out;
        }
        p = csr;
        if ((req = d2i_X509_REQ(NULL, &p, (long)csr_len)) == NULL ||
            (newkey = X509_REQ_get0_pubkey(req)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID, "csr: cannot be read");
                goto out;
        }
        p = rec.der;
        if ((cert = d2i_X509(NULL, &p, (long)rec.der_len)) == NULL ||
            (oldkey = X509_get0_pubkey(cert)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_DB, "certificate %s: stored DER unreadable",
                                     old_serial);
                goto out;
        }
        /* The RA replaces subscribers' certificates only: never an operator's, the
         * RA's, a responder's or a CA's, whatever the record's profile says. */
        if (ra_internal_profile(rec.profile) || X509_check_ca(cert) != 0) {
                gmca_error_set(e, rc,
                               "certificate %s is a %s certificate: the custodians manage it, "
                               "not the RA",
                               old_serial, X509_check_ca(cert) != 0 ? "CA" : rec.profile);
                goto out;
        }
        same_key = EVP_PKEY_eq(newkey, oldkey) == 1;
        gmca_ossl_clear();
        if (type == GMCA_APP_RENEW && !same_key) {
                gmca_error_set(e, rc,
                               "CPS §3.6.4: a renewal keeps the key: the CSR must carry the old "
                               "certificate's public key and be signed by its private key");
                goto out;
        }
        if (type == GMCA_APP_REKEY && same_key) {
                gmca_error_set(e, rc,
                               "CPS §3.6.1: a rekey needs a new key pair; the CSR carries "
                               "the old certificate's public key");
                goto out;
        }
        if (type != GMCA_APP_CHANGE &&
            X509_NAME_cmp(X509_REQ_get_subject_name(req), X509_get_subject_name(cert)) != 0) {
                gmca_error_set(e, rc,
                               "the CSR's subject is not the old certificate's: new subject "
                               "information is a change (CPS §3.8)");
                goto out;
        }
        if (type != GMCA_APP_CHANGE) {
                if ((rc = ra_old_info(s, old_serial, &old_info, e)) != 0)
                        goto out;
                rc = GMCA_ERR_POLICY;
                if ((info == NULL) != (old_info == NULL) ||
                    (info != NULL && strcmp(info, old_info) != 0)) {
                        gmca_error_set(e, rc,
                                       "subject_info: a %s keeps the old certificate's subject "
                                       "information (leave it out to carry it over); new "
                                       "information is a change (CPS §3.6.2, §3.8)",
                                       gmca_app_type_name(type));
                        goto out;
                }
        }
        if (type == GMCA_APP_RENEW && ra_affiliated_profile(rec.profile) && !affiliation) {
                gmca_error_set(e, rc,
                               "CPS §3.6.4: renewing a %s certificate needs the affiliation "
                               "re-confirmed (\"affiliation_confirmed\": true)",
                               rec.profile);
                goto out;
        }
        if (type == GMCA_APP_REISSUE && (carrier == NULL || (strcmp(carrier, "lost") != 0 &&
                                                             strcmp(carrier, "damaged") != 0))) {
                rc =
                    gmca_error_set(e, GMCA_ERR_INVALID,
                                   "carrier: a reissue records \"lost\" or \"damaged\" (CPS §3.7)");
                goto out;
        }
        /* One application at a time per certificate, and one renewal only. */
        if ((rc = gmca_q_open(s, SQL_OTHERS, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, old_serial);
        gmca_q_int(&q, self_id);
        rc = gmca_q_step(&q, e, "applications for %s", old_serial);
        if (rc == GMCA_DB_ROW) {
                const char *st = gmca_q_col_text(&q, 1), *ty = gmca_q_col_text(&q, 2);
                long long other = (long long)gmca_q_col_int(&q, 0);

                if (st != NULL && strcmp(st, RA_ST_ISSUED) == 0)
                        rc = gmca_error_set(e, GMCA_ERR_STATE,
                                            "certificate %s was already replaced (%s, application "
                                            "%lld)",
                                            old_serial, ty != NULL ? ty : "?", other);
                else
                        rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                            "certificate %s already has an open application "
                                            "(%lld, %s)",
                                            old_serial, other, st != NULL ? st : "?");
        }
        gmca_q_close(&q);
        if (rc < 0)
                goto out;
        rc = 0;
        if (old != NULL) {
                *old = rec;
                memset(&rec, 0, sizeof(rec));
        }
out:
        free(old_info);
        X509_REQ_free(req);
        X509_free(cert);
        gmca_cert_rec_clear(&rec);
        return rc;
}

/* ---- the re-check ---- */

void gmca_ra_approved_clear(struct gmca_ra_approved *a)
{
        if (a == NULL)
                return;
        OPENSSL_free(a->csr);
        free(a->info_json);
        memset(a, 0, sizeof(*a));
}

/* A proof that checks, by the operator the row names, with a role allowed the
 * step. */
static int step_proof(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                      const struct ra_app *a, const char *step, const uint8_t *proof, size_t len,
                      const char *who, enum gmca_action act, int64_t now, struct gmca_auth_proof *p,
                      struct gmca_operator *op, struct gmca_error *e)
{
        struct gmca_error inner = {0};
        int rc;

        if (proof == NULL || len == 0 || who[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_AUTH, "application %lld: no signed %s request",
                                      (long long)a->id, step);
        if ((rc = gmca_auth_proof_check(s, proof, len, now, p, op, &inner)) != 0)
                return gmca_error_set(
                    e, rc == GMCA_ERR_AUTH || rc == GMCA_ERR_INVALID ? GMCA_ERR_AUTH : rc,
                    "application %lld: %s request: %s", (long long)a->id, step, inner.msg);
        /* Before the record's name or roles are believed. */
        if ((rc = gmca_operator_tag_check(op, k_op, &inner)) != 0)
                return gmca_error_set(e, rc, "application %lld: %s request: %s", (long long)a->id,
                                      step, inner.msg);
        if (strcmp(op->name, who) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "application %lld: the %s request was signed by %s, the "
                                      "record says %s",
                                      (long long)a->id, step, op->name, who);
        if (strcmp(p->method, "POST") != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "application %lld: the %s request is a %s, not a POST",
                                      (long long)a->id, step, p->method);
        if (gmca_auth_allowed(op->roles, act, &inner) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "application %lld: %s by %s: %s",
                                      (long long)a->id, step, op->name, inner.msg);
        return 0;
}

/* The submit request's target: the applications collection, or the old
 * certificate's step. */
static int submit_target_ok(const struct ra_app *a, const char *target)
{
        static const char pre[] = "/api/v1/certificates/";
        char seg[72], serial[GMCA_SERIAL_HEX_MAX];
        const char *slash;

        if (strcmp(a->type, "new") == 0)
                return strcmp(target, "/api/v1/applications") == 0;
        if (strncmp(target, pre, sizeof(pre) - 1) != 0)
                return 0;
        target += sizeof(pre) - 1;
        if ((slash = strchr(target, '/')) == NULL || (size_t)(slash - target) >= sizeof(seg))
                return 0;
        memcpy(seg, target, (size_t)(slash - target));
        seg[slash - target] = '\0';
        return gmca_serial_normalize(seg, serial) == 0 && strcmp(serial, a->old_serial) == 0 &&
               strcmp(slash + 1, a->type) == 0;
}

static int step_target_ok(const struct ra_app *a, const char *target, const char *verb)
{
        char want[96];

        snprintf(want, sizeof(want), "/api/v1/applications/%lld/%s", (long long)a->id, verb);
        return strcmp(target, want) == 0;
}

static int same_text(const char *x, const char *y)
{
        return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* What the submitter signed is what the row asks for. */
static int submit_body_ok(struct gmca_store *s, const struct ra_app *a, enum gmca_app_type type,
                          const struct gmca_auth_proof *p, struct gmca_error *e)
{
        struct ra_application_body b;
        struct gmca_error inner = {0};
        struct gmca_ca_rec ca;
        uint8_t *der = NULL;
        size_t der_len = 0;
        char *info = NULL, def[GMCA_NAME_MAX];
        const char *what = NULL;
        int rc;

        memset(&ca, 0, sizeof(ca));
        if ((rc = ra_application_parse(p->body, p->body_len, type, &b, &inner)) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "application %lld: the signed submission does not parse: %s",
                                      (long long)a->id, inner.msg);
        if ((rc = ra_csr_der(b.csr, &der, &der_len, &inner)) != 0 ||
            (rc = ra_info_text(b.subject_info, &info, &inner)) != 0) {
                what = "csr or subject_info (unreadable)";
        } else if (info == NULL && type != GMCA_APP_NEW && type != GMCA_APP_CHANGE &&
                   ra_old_info(s, a->old_serial, &info, &inner) != 0) {
                /* Left out of a renew, rekey or reissue: the old certificate's (ra.h). */
                what = "subject_info (the old certificate's unreadable)";
        } else if (der_len != a->csr_len || CRYPTO_memcmp(der, a->csr, der_len) != 0) {
                what = "csr";
        } else if (!same_text(info, a->info_json)) {
                what = "subject_info";
        } else if (b.profile != NULL && strcmp(b.profile, a->profile) != 0) {
                what = "profile";
        } else if (b.days != a->days) {
                what = "days";
        } else if (b.applicant != 0 && b.applicant != a->applicant_id) {
                what = "applicant";
        } else if (!same_text(b.carrier, a->carrier[0] != '\0' ? a->carrier : NULL)) {
                what = "carrier";
        } else if (b.affiliation_confirmed != a->affiliation_confirmed) {
                what = "affiliation_confirmed";
        } else if (b.ca != NULL && strcmp(b.ca, a->ca) != 0) {
                what = "ca";
        } else if (b.ca == NULL) {
                /*
                 * The submitter left the CA to the default: the row must name the
                 * default CA, or where none is recorded in the store, a CA that is
                 * not a root (a root issues CA certificates only).
                 */
                if ((rc = ra_default_ca(s, NULL, def, &inner)) != 0)
                        what = "ca (default unknown)";
                else if (def[0] != '\0' && strcmp(def, a->ca) != 0)
                        what = "ca";
                else if (def[0] == '\0' &&
                         (gmca_store_ca_get(s, a->ca, &ca, &inner) != 0 || ca.parent_id == 0))
                        what = "ca";
        }
        /* A profile left out (renew, rekey, reissue) is the old certificate's: the
         * lifecycle check compares the row's profile with it. */
        OPENSSL_free(der);
        free(info);
        gmca_ca_rec_clear(&ca);
        ra_application_body_clear(&b);
        if (what != NULL)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "application %lld: the record's %s is not what %s signed",
                                      (long long)a->id, what, a->submitted_by);
        return 0;
}

/* The signed vetting or approval names the submission on record. */
static int names_submission(const struct ra_app *a, const char *step, const char *named,
                            const char *submission, struct gmca_error *e)
{
        if (strcmp(named, submission) != 0)
                return gmca_error_set(
                    e, GMCA_ERR_AUTH,
                    "application %lld: the signed %s is about submission %.16s..., "
                    "the record's is %.16s... (CPS §3.1.3)",
                    (long long)a->id, step, named, submission);
        return 0;
}

static int vet_body_ok(const struct ra_app *a, const struct gmca_auth_proof *p,
                       const char *submission, struct gmca_error *e)
{
        struct ra_vet_body b;
        struct gmca_error inner = {0};
        int pass, rc;

        if (ra_vet_parse(p->body, p->body_len, &b, &inner) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "application %lld: the signed vetting does not parse: %s",
                                      (long long)a->id, inner.msg);
        pass = strcmp(b.result, "pass") == 0;
        rc = names_submission(a, "vetting", b.submission, submission, e);
        ra_vet_body_clear(&b);
        if (rc != 0)
                return rc;
        if (!pass || strcmp(a->vet_result, "pass") != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "application %lld: the identity vetting did not pass "
                                      "(CPS §3.2.1)",
                                      (long long)a->id);
        return 0;
}

static int approve_body_ok(const struct ra_app *a, const struct gmca_auth_proof *p,
                           const char *submission, struct gmca_error *e)
{
        struct ra_decide_body b;
        struct gmca_error inner = {0};
        int rc;

        if (ra_decide_parse(p->body, p->body_len, 1, &b, &inner) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "application %lld: the signed approval does not parse: %s",
                                      (long long)a->id, inner.msg);
        rc = names_submission(a, "approval", b.submission, submission, e);
        ra_decide_body_clear(&b);
        return rc;
}

int gmca_ra_check_approvals(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                            int64_t app_id, int64_t now, struct gmca_ra_approved *out,
                            struct gmca_error *e)
{
        struct ra_app a;
        struct gmca_auth_proof ps, pv, pa;
        struct gmca_operator os, ov, oa;
        char submission[RA_SUBMISSION_HEX + 1];
        int type, rc;

        memset(out, 0, sizeof(*out));
        if (k_op == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL,
                                      "application %lld: no K_op to check the operators with",
                                      (long long)app_id);
        if ((rc = ra_app_load(s, app_id, &a, e)) != 0)
                return rc;
        rc = GMCA_ERR_STATE;
        if (strcmp(a.state, RA_ST_APPROVED) != 0) {
                gmca_error_set(e, rc, "application %lld is %s, not approved", (long long)app_id,
                               a.state);
                goto out;
        }
        if ((type = ra_app_type_from_name(a.type)) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "application %lld: unknown type %s",
                                    (long long)app_id, a.type);
                goto out;
        }
        if (ra_internal_profile(a.profile)) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "application %lld: profile %s is issued by the custodians, "
                                    "not through the RA",
                                    (long long)app_id, a.profile);
                goto out;
        }
        /* Each step: its signed request, by whom the record says, allowed to do it.
         */
        if ((rc = step_proof(s, k_op, &a, "submit", a.submit_auth, a.submit_auth_len,
                             a.submitted_by, GMCA_ACT_APPLICATION_SUBMIT, now, &ps, &os, e)) != 0)
                goto out;
        if (!submit_target_ok(&a, ps.target)) {
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "application %lld: the signed submission went to %s, not to "
                                    "this application's %s",
                                    (long long)app_id, ps.target, a.type);
                goto out;
        }
        if ((rc = submit_body_ok(s, &a, type, &ps, e)) != 0 ||
            (rc = ra_submission_digest(a.submit_auth, a.submit_auth_len, submission, e)) != 0)
                goto out;
        if ((rc = step_proof(s, k_op, &a, "vet", a.vet_auth, a.vet_auth_len, a.vetted_by,
                             GMCA_ACT_APPLICATION_VET, now, &pv, &ov, e)) != 0)
                goto out;
        if (!step_target_ok(&a, pv.target, "vet")) {
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "application %lld: the signed vetting is for %s",
                                    (long long)app_id, pv.target);
                goto out;
        }
        if ((rc = vet_body_ok(&a, &pv, submission, e)) != 0)
                goto out;
        if ((rc = step_proof(s, k_op, &a, "approve", a.decide_auth, a.decide_auth_len, a.decided_by,
                             GMCA_ACT_APPLICATION_DECIDE, now, &pa, &oa, e)) != 0)
                goto out;
        if (!step_target_ok(&a, pa.target, "approve")) {
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "application %lld: the signed approval is for %s",
                                    (long long)app_id, pa.target);
                goto out;
        }
        if ((rc = approve_body_ok(&a, &pa, submission, e)) != 0)
                goto out;
        /* Two people at least (CPS §3.1.3 c), on the operators the proofs name: by the
         * tagged name too, as the row id is not under the tag. */
        rc = GMCA_ERR_POLICY;
        if (ov.id == os.id || strcmp(ov.name, os.name) == 0) {
                gmca_error_set(e, rc,
                               "CPS §3.1.3: application %lld was vetted by %s, who entered it; "
                               "the vetting operator must be another",
                               (long long)app_id, ov.name);
                goto out;
        }
        if (oa.id == os.id || strcmp(oa.name, os.name) == 0) {
                gmca_error_set(e, rc,
                               "CPS §3.1.3: application %lld was approved by %s, who entered it; "
                               "the approving operator must be another",
                               (long long)app_id, oa.name);
                goto out;
        }
        if ((rc =
                 ra_lifecycle_check(s, type, a.old_serial, a.profile, a.csr, a.csr_len, a.info_json,
                                    a.carrier, a.affiliation_confirmed, a.id, now, NULL, e)) != 0)
                goto out;
        /* The row's state is the front's to write: an approval spent once stays spent. */
        if ((rc = csr_unused(s, a.id, a.csr, a.csr_len, e)) != 0)
                goto out;

        out->app_id = a.id;
        out->type = type;
        out->days = a.days;
        gmca_strlcpy(out->ca, a.ca, sizeof(out->ca));
        gmca_strlcpy(out->profile, a.profile, sizeof(out->profile));
        gmca_strlcpy(out->old_serial, a.old_serial, sizeof(out->old_serial));
        gmca_strlcpy(out->carrier, a.carrier, sizeof(out->carrier));
        gmca_strlcpy(out->submitted_by, os.name, sizeof(out->submitted_by));
        gmca_strlcpy(out->vetted_by, ov.name, sizeof(out->vetted_by));
        gmca_strlcpy(out->approved_by, oa.name, sizeof(out->approved_by));
        out->csr = a.csr;
        out->csr_len = a.csr_len;
        out->info_json = a.info_json;
        a.csr = NULL;
        a.info_json = NULL;
        rc = 0;
out:
        ra_app_clear(&a);
        return rc;
}
