/*
 * The CA engine's issuance of an approved RA application (ra.h,
 * gmca_ra_issue_approved). The front asks for an application by its id
 * only; what is signed comes from the store, and the approvals behind it
 * (three signed operator requests, two people at least, by operators whose
 * records carry the custodians' tag, checked under the K_op this activated
 * context holds) are checked again inside the transaction that issues
 * (gmca_ra_check_approvals), so that a compromised front cannot make the
 * engine sign what the records do not support (DESIGN.md, CPS §3.3.1:
 * "RA 发往 CA 的证书签发请求信息有 RA 的身份鉴别"), nor an encryption
 * certificate outside a dual pair.
 *
 * One transaction: the check, the certificate with its cert.issue record,
 * for a profile with a dual pair the encryption certificate for a key pair
 * from the KM (ca_dual.c), the revocation of the certificate it replaces
 * (cert.revoke; its encryption pair goes with it), the
 * application marked issued, the applicant's notification (§3.2.4, §3.3.2)
 * and ra.application.issue. A refusal rolls all of it back and is audited
 * in a transaction of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca_internal.h"
#include "crl.h"
#include "ra.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"

static const char SQL_APPLICANT[] = "SELECT applicant_id FROM applications WHERE id = ?";
static const char SQL_ISSUED[] = "UPDATE applications SET state = 'issued', issued_serial = ?, "
                                 "issued_at = ? WHERE id = ? AND state = 'approved'";

/* *reason: the RFC 5280 reason the old certificate is revoked with; -1: it stays. */
static int old_reason(const struct gmca_ra_approved *a, int *reason, struct gmca_error *e)
{
        *reason = -1;
        switch (a->type) {
        case GMCA_APP_NEW:
        case GMCA_APP_RENEW: /* §3.6.2: the old one runs out by itself */
                return 0;
        case GMCA_APP_REKEY:  /* §3.6.1 */
        case GMCA_APP_CHANGE: /* §3.8 */
                *reason = CRL_REASON_SUPERSEDED;
                return 0;
        case GMCA_APP_REISSUE: /* §3.7: a lost carrier may be in other hands */
                if (strcmp(a->carrier, "lost") == 0)
                        *reason = CRL_REASON_KEY_COMPROMISE;
                else if (strcmp(a->carrier, "damaged") == 0)
                        *reason = CRL_REASON_SUPERSEDED;
                else
                        return gmca_error_set(
                            e, GMCA_ERR_POLICY,
                            "application %lld: reissue with carrier \"%s\" (lost or "
                            "damaged, CPS §3.7)",
                            (long long)a->app_id, a->carrier);
                return 0;
        }
        return gmca_error_set(e, GMCA_ERR_INTERNAL, "application %lld: unknown type",
                              (long long)a->app_id);
}

/*
 * An encryption certificate is issued only beside its signature
 * certificate, for a key pair the KM made and escrowed (ca_dual.c, CPS
 * §7.1.1 item 3): an application for an "encrypt" profile itself would
 * certify the subscriber's own key, escrowed nowhere.
 */
static int profile_ok(struct gmca_ctx *c, const struct gmca_ra_approved *a, struct gmca_error *e)
{
        const struct gmca_profile *p = gmca_ctx_profile(c, a->profile, e);

        if (p == NULL)
                return e->code != 0 ? e->code : GMCA_ERR_NOTFOUND;
        if (p->purpose == GMCA_PURPOSE_ENCRYPT)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "application %lld: profile %s is an encryption profile; its "
                                      "certificates come only paired with a signature "
                                      "certificate, for a key the KM escrows (CPS §7.1.1)",
                                      (long long)a->app_id, a->profile);
        return 0;
}

/* Inside the transaction: revoke the replaced certificate, with its cert.revoke record. */
static int revoke_old(struct gmca_ctx *c, const struct gmca_ra_approved *a, int reason,
                      const char *new_serial, int64_t now, struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        struct gmca_ca_rec carec;
        struct gmca_audit_event ev;
        char *detail = NULL;
        int rc;

        memset(&rec, 0, sizeof(rec));
        memset(&carec, 0, sizeof(carec));
        if ((rc = gmca_store_cert_get(c->store, a->old_serial, &rec, e)) != 0 ||
            (rc = gmca_store_ca_get_by_id(c->store, rec.ca_id, &carec, e)) != 0 ||
            (rc = gmca_store_cert_revoke(c->store, a->old_serial, now, reason, 0, e)) != 0)
                goto out;
        detail = ca_detail_json(json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "ca", carec.name,
                                          "reason", gmca_crl_reason_name(reason), "subject",
                                          rec.subject, "application", (json_int_t)a->app_id, "type",
                                          gmca_app_type_name(a->type), "replaced_by", new_serial));
        if (detail == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        ev = (struct gmca_audit_event){GMCA_EV_CERT_REVOKE, c->actor, 1, a->old_serial, detail};
        rc = gmca_audit_append(c->store, &ev, e);
out:
        free(detail);
        gmca_cert_rec_clear(&rec);
        gmca_ca_rec_clear(&carec);
        return rc;
}

/* Inside the transaction: approved -> issued, exactly this one row. */
static int mark_issued(struct gmca_store *s, int64_t app_id, const char *serial, int64_t now,
                       struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_ISSUED, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        gmca_q_int(&q, now);
        gmca_q_int(&q, app_id);
        rc = gmca_q_step(&q, e, "application %lld: mark issued", (long long)app_id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "application %lld is no longer approved (issued meanwhile?)",
                                    (long long)app_id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

static int applicant_of(struct gmca_store *s, int64_t app_id, int64_t *applicant,
                        struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_APPLICANT, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, app_id);
        rc = gmca_q_step(&q, e, "application %lld", (long long)app_id);
        if (rc == GMCA_DB_ROW)
                *applicant = gmca_q_col_int(&q, 0);
        else if (rc >= 0)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "application %lld: no such application",
                                    (long long)app_id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_ra_issue_approved(struct gmca_ctx *c, int64_t app_id, int64_t now,
                           char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        struct gmca_ra_approved a;
        struct gmca_issue_req r;
        struct ca_pair pair;
        X509 *sig = NULL;
        struct gmca_cert_rec old;
        struct gmca_audit_event ev;
        char object[24], sn[GMCA_SERIAL_HEX_MAX], text[256];
        char *detail = NULL;
        uint8_t k_op[GMCA_OP_KEY_LEN];
        int64_t applicant = 0;
        int rc, reason = -1;

        memset(&a, 0, sizeof(a));
        memset(&old, 0, sizeof(old));
        memset(&pair, 0, sizeof(pair));
        snprintf(object, sizeof(object), "%lld", (long long)app_id);
        if ((rc = gmca_operator_key(c, k_op, e)) != 0)
                return ca_reject(c, GMCA_EV_APP_ISSUE, object, rc, e);
        if ((rc = gmca_store_begin(c->store, e)) != 0) {
                OPENSSL_cleanse(k_op, sizeof(k_op));
                return ca_reject(c, GMCA_EV_APP_ISSUE, object, rc, e);
        }
        /* The approvals, again, from the records alone (the operators' under K_op). */
        rc = gmca_ra_check_approvals(c->store, k_op, app_id, now, &a, e);
        OPENSSL_cleanse(k_op, sizeof(k_op));
        if (rc != 0)
                goto fail;
        if ((rc = profile_ok(c, &a, e)) != 0 || (rc = old_reason(&a, &reason, e)) != 0)
                goto fail;
        memset(&r, 0, sizeof(r));
        r.ca = a.ca[0] != '\0' ? a.ca : NULL;
        r.profile = a.profile;
        r.csr = a.csr;
        r.csr_len = a.csr_len;
        r.info_json = a.info_json;
        r.info_len = a.info_json != NULL ? strlen(a.info_json) : 0;
        r.days = a.days;
        if (a.type == GMCA_APP_REISSUE) { /* §3.7: until the old one's end, as it was signed */
                X509 *x;

                if ((rc = gmca_store_cert_get(c->store, a.old_serial, &old, e)) != 0)
                        goto fail;
                if ((x = gmca_cert_parse(old.der, old.der_len, e)) == NULL) {
                        rc = e->code != 0 ? e->code : GMCA_ERR_DB;
                        goto fail;
                }
                r.not_after = (int64_t)ca_cert_not_after(x);
                X509_free(x);
        }
        if ((rc = ca_issue_in_tx(c, &r, sn, &sig, e)) != 0 ||
            (rc = ca_issue_pair(c, &r, sig, sn, &pair, e)) != 0)
                goto fail;
        if (reason >= 0 && (rc = revoke_old(c, &a, reason, sn, now, e)) != 0)
                goto fail;
        if ((rc = mark_issued(c->store, app_id, sn, now, e)) != 0 ||
            (rc = applicant_of(c->store, app_id, &applicant, e)) != 0)
                goto fail;
        if (pair.enc_serial[0] != '\0')
                snprintf(text, sizeof(text),
                         "您的证书申请（编号 %lld）已签发，签名证书序列号 %s，加密证书序列号 %s。",
                         (long long)app_id, sn, pair.enc_serial);
        else
                snprintf(text, sizeof(text), "您的证书申请（编号 %lld）已签发，证书序列号 %s。",
                         (long long)app_id, sn);
        if ((rc = ra_notify(c->store, applicant, app_id, 0, text, now, e)) != 0)
                goto fail;
        detail = ca_detail_json(json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?}", "type",
            gmca_app_type_name(a.type), "serial", sn, "profile", a.profile, "submitted_by",
            a.submitted_by, "vetted_by", a.vetted_by, "approved_by", a.approved_by, "ca",
            r.ca != NULL ? r.ca : "", "replaces", a.old_serial[0] ? a.old_serial : NULL,
            "old_revoked", reason >= 0 ? gmca_crl_reason_name(reason) : NULL, "encryption_serial",
            pair.enc_serial[0] ? pair.enc_serial : NULL));
        if (detail == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        ev = (struct gmca_audit_event){GMCA_EV_APP_ISSUE, c->actor, 1, object, detail};
        if ((rc = gmca_audit_append(c->store, &ev, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0)
                goto fail;
        gmca_strlcpy(serial, sn, GMCA_SERIAL_HEX_MAX);
        rc = 0;
        goto out;
fail:
        gmca_store_rollback(c->store);
        ca_pair_abandon(c, &pair);
        rc = ca_reject(c, GMCA_EV_APP_ISSUE, object, rc, e);
out:
        X509_free(sig);
        free(detail);
        gmca_cert_rec_clear(&old);
        gmca_ra_approved_clear(&a);
        return rc;
}
