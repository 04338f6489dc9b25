/*
 * Revocation requests (CPS §3.9): the case of §3.9.1 (A–I, mapped to an
 * RFC 5280 reason), the requester of §3.9.2 (the subscriber, an
 * organisation's authorised representative for organisation, staff and
 * device certificates, the CA itself, a judicial authority with its
 * document reference recorded and no re-vetting), and the deadline of
 * §3.9.6: done within 24 hours of the request. A business admin's request
 * is carried out at once; a business operator's waits for a business admin
 * other than the requester. Carrying it out is one transaction: the
 * certificate revoked, cert.revoke, the request completed with
 * ra.revocation.complete, the subscriber notified. The CRL that publishes
 * it is the next scheduled one (CRL generation is the CA engine's, on its
 * own schedule); the result says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "crl.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"

#define OBJ_MAX 64
#define CRL_NOTE "next scheduled CRL"

#define REV_COLS                                                                                   \
        "id, serial, reason, reason_code, requester, authority, document_ref, "                    \
        "note, state, "                                                                            \
        "requested_by, requested_at, deadline, completed_by, completed_at"

static const char SQL_INSERT[] =
    "INSERT INTO revocation_requests (serial, reason, reason_code, requester, "
    "authority, "
    "document_ref, note, state, requested_by, requested_at, deadline, "
    "request_auth) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) RETURNING id";
static const char SQL_PENDING_FOR[] =
    "SELECT id FROM revocation_requests WHERE serial = ? AND state = 'pending' "
    "LIMIT 1";
static const char SQL_GET[] = "SELECT " REV_COLS " FROM revocation_requests WHERE id = ?";
static const char SQL_COMPLETE[] =
    "UPDATE revocation_requests SET state = 'completed', completed_by = ?, "
    "completed_at = ? "
    "WHERE id = ? AND state = 'pending'";
static const char SQL_LIST[] = "SELECT " REV_COLS " FROM revocation_requests"
                               " WHERE (? = '' OR state = ?) ORDER BY id DESC LIMIT ?";
static const char SQL_APPLICANT_OF[] =
    "SELECT applicant_id FROM applications WHERE issued_serial = ? ORDER BY id "
    "LIMIT 1";

/* §3.9.1 in the CPS's words, for the notification. */
/* clang-format off: one entry a line (breaking a literal here would join two entries) */
static const char *const case_text[9] = {
    "政务机构的证书持有者不从事原岗位工作",
    "司法机构要求撤销证书持有者证书",
    "证书持有者提供的信息不真实",
    "证书持有者没有或无法履行有关规定和义务",
    "有理由相信或强烈怀疑证书持有者的私钥安全已经受到损害",
    "政务机构有理由相信或强烈怀疑其下属机构证书、人员证书或设备证书的私钥安全已经受到损害",
    "与证书持有者达成的证书持有者协议已经终止",
    "证书持有者请求撤销其证书",
    "法律、行政法规规定的其他情形",
};
/* clang-format on */

struct revreq {
        int64_t id;
        char serial[GMCA_SERIAL_HEX_MAX];
        char reason[4];
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
};

static int rev_row(struct gmca_q *q, struct revreq *r, struct gmca_error *e)
{
        int rc;

        memset(r, 0, sizeof(*r));
        r->id = gmca_q_col_int(q, 0);
        r->reason_code = (int)gmca_q_col_int(q, 3);
        r->requested_at = gmca_q_col_int(q, 10);
        r->deadline = gmca_q_col_int(q, 11);
        r->completed_at = gmca_q_col_int(q, 13);
        if ((rc = gmca_q_col_str(q, 1, r->serial, sizeof(r->serial), "serial", e)) != 0 ||
            (rc = gmca_q_col_str(q, 2, r->reason, sizeof(r->reason), "reason", e)) != 0 ||
            (rc = gmca_q_col_str(q, 4, r->requester, sizeof(r->requester), "requester", e)) != 0 ||
            (rc = gmca_q_col_str(q, 5, r->authority, sizeof(r->authority), "authority", e)) != 0 ||
            (rc = gmca_q_col_str(q, 6, r->document_ref, sizeof(r->document_ref), "document_ref",
                                 e)) != 0 ||
            (rc = gmca_q_col_str(q, 7, r->note, sizeof(r->note), "note", e)) != 0 ||
            (rc = gmca_q_col_str(q, 8, r->state, sizeof(r->state), "state", e)) != 0 ||
            (rc = gmca_q_col_str(q, 9, r->requested_by, sizeof(r->requested_by), "requested_by",
                                 e)) != 0 ||
            (rc = gmca_q_col_str(q, 12, r->completed_by, sizeof(r->completed_by), "completed_by",
                                 e)) != 0)
                return rc;
        return 0;
}

static int rev_load(struct gmca_store *s, int64_t id, struct revreq *r, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_GET, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "revocation request %lld", (long long)id);
        if (rc == GMCA_DB_ROW)
                rc = rev_row(&q, r, e);
        else if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                    "revocation request %lld: no such request", (long long)id);
        gmca_q_close(&q);
        return rc;
}

static json_t *opt(const char *s)
{
        return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *rev_json(const struct revreq *r, int64_t now)
{
        json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:I}", "id",
                              (json_int_t)r->id, "serial", r->serial, "reason", r->reason,
                              "reason_code", r->reason_code, "requester", r->requester, "state",
                              r->state, "requested_by", r->requested_by, "requested_at",
                              (json_int_t)r->requested_at, "deadline", (json_int_t)r->deadline);

        if (o == NULL)
                return NULL;
        json_object_set_new(o, "reason_name", json_string(gmca_crl_reason_name(r->reason_code)));
        json_object_set_new(o, "authority", opt(r->authority));
        json_object_set_new(o, "document_ref", opt(r->document_ref));
        json_object_set_new(o, "note", opt(r->note));
        json_object_set_new(o, "completed_by", opt(r->completed_by));
        json_object_set_new(o, "completed_at",
                            r->completed_at > 0 ? json_integer(r->completed_at) : json_null());
        /* §3.9.6: a request still pending past its deadline is overdue. */
        json_object_set_new(
            o, "overdue", json_boolean(strcmp(r->state, RA_REV_PENDING) == 0 && now > r->deadline));
        if (strcmp(r->state, RA_REV_COMPLETED) == 0)
                json_object_set_new(o, "crl", json_string(CRL_NOTE));
        return o;
}

/*
 * Inside the transaction: revoke the certificate, complete the request,
 * notify the subscriber, with the cert.revoke and ra.revocation.complete
 * records.
 */
static int carry_out(struct gmca_store *s, const struct revreq *r, const char *actor, int64_t now,
                     struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        char object[OBJ_MAX], text[1024];
        int64_t applicant = 0;
        struct gmca_q q;
        int rc;

        memset(&rec, 0, sizeof(rec));
        snprintf(object, sizeof(object), "revocation:%lld", (long long)r->id);
        if ((rc = gmca_store_cert_get(s, r->serial, &rec, e)) != 0)
                return rc;
        if ((rc = gmca_store_cert_revoke(s, r->serial, now, r->reason_code, 0, e)) != 0)
                goto out;
        if ((rc = ra_audit(s, GMCA_EV_CERT_REVOKE, actor, r->serial,
                           json_pack("{s:s, s:s, s:s, s:I}", "reason",
                                     gmca_crl_reason_name(r->reason_code), "subject", rec.subject,
                                     "cps_case", r->reason, "request", (json_int_t)r->id),
                           e)) != 0)
                goto out;
        if ((rc = gmca_q_open(s, SQL_COMPLETE, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, actor);
        gmca_q_int(&q, now);
        gmca_q_int(&q, r->id);
        rc = gmca_q_step(&q, e, "revocation request %lld", (long long)r->id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "revocation request %lld changed meanwhile",
                                    (long long)r->id);
        gmca_q_close(&q);
        if (rc < 0)
                goto out;
        if ((rc = gmca_q_open(s, SQL_APPLICANT_OF, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, r->serial);
        if ((rc = gmca_q_step(&q, e, "applicant of %s", r->serial)) == GMCA_DB_ROW)
                applicant = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        if (rc < 0)
                goto out;
        snprintf(text, sizeof(text), "您的证书（序列号 %s）已被撤销。原因：%s（%c）。", r->serial,
                 case_text[r->reason[0] - 'A'], r->reason[0]);
        if ((rc = ra_notify(s, applicant, 0, r->id, text, now, e)) != 0)
                goto out;
        rc = ra_audit(s, GMCA_EV_REVOKE_COMPLETE, actor, object,
                      json_pack("{s:s, s:s, s:s, s:I, s:I}", "serial", r->serial, "requested_by",
                                r->requested_by, "reason", r->reason, "requested_at",
                                (json_int_t)r->requested_at, "deadline", (json_int_t)r->deadline),
                      e);
out:
        gmca_cert_rec_clear(&rec);
        return rc;
}

/* 1 if the stored certificate is a CA's (basicConstraints), whatever its profile says;
 * an unreadable one counts as a CA's. */
static int der_is_ca(const struct gmca_cert_rec *rec)
{
        const unsigned char *p = rec->der;
        X509 *x = d2i_X509(NULL, &p, (long)rec->der_len);
        int ca = x == NULL || X509_check_ca(x) != 0;

        X509_free(x);
        gmca_ossl_clear();
        return ca;
}

int gmca_ra_revocation_request(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               const uint8_t *body, size_t len, int64_t now, json_t **out,
                               struct gmca_error *e)
{
        struct ra_revocation_body b;
        struct gmca_cert_rec rec;
        struct revreq r;
        char object[OBJ_MAX] = "revocation";
        struct gmca_q q;
        int immediate, rc;

        memset(&b, 0, sizeof(b));
        memset(&rec, 0, sizeof(rec));
        memset(&r, 0, sizeof(r));
        if ((rc = ra_allowed(env, who, GMCA_ACT_REVOCATION_REQUEST, GMCA_EV_REVOKE_REQUEST, object,
                             e)) != 0)
                return rc;
        if (who->proof == NULL || who->proof_len == 0) {
                rc = gmca_error_set(e, GMCA_ERR_AUTH, "the request needs its signed request");
                goto fail;
        }
        if ((rc = ra_revocation_parse(body, len, &b, e)) != 0)
                goto fail;
        gmca_strlcpy(object, b.serial, sizeof(object));
        if ((rc = gmca_store_begin(env->store, e)) != 0)
                goto fail;
        rc = gmca_store_cert_get(env->store, b.serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "certificate %s: not issued by this CA",
                                    b.serial);
        }
        if (rc != 0)
                goto fail;
        if (rec.status == GMCA_CERT_REVOKED) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "certificate %s is already revoked",
                                    b.serial);
                goto fail;
        }
        if (ra_internal_profile(rec.profile) || der_is_ca(&rec)) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "certificate %s is a %s certificate: the custodians revoke "
                                    "it, not the RA",
                                    b.serial, der_is_ca(&rec) ? "CA" : rec.profile);
                goto fail;
        }
        /* §3.9.2: an organisation's representative, for what was issued to
         * organisations. */
        if (strcmp(b.requester, "org_representative") == 0 && !ra_affiliated_profile(rec.profile) &&
            strncmp(rec.profile, "device-", 7) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "CPS §3.9.2: an organisation's representative may ask to "
                                    "revoke organisation, staff and device certificates only, "
                                    "not %s",
                                    rec.profile);
                goto fail;
        }
        if ((rc = gmca_q_open(env->store, SQL_PENDING_FOR, &q, e)) != 0)
                goto fail;
        gmca_q_text(&q, b.serial);
        rc = gmca_q_step(&q, e, "requests for %s", b.serial);
        if (rc == GMCA_DB_ROW)
                rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                    "certificate %s: revocation request %lld is pending already",
                                    b.serial, (long long)gmca_q_col_int(&q, 0));
        gmca_q_close(&q);
        if (rc < 0)
                goto fail;
        if ((rc = gmca_q_open(env->store, SQL_INSERT, &q, e)) != 0)
                goto fail;
        r.reason[0] = b.reason;
        gmca_q_text(&q, b.serial);
        gmca_q_text(&q, r.reason);
        gmca_q_int(&q, b.reason_code);
        gmca_q_text(&q, b.requester);
        gmca_q_text(&q, b.authority);
        gmca_q_text(&q, b.document_ref);
        gmca_q_text(&q, b.note);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_int(&q, now + GMCA_RA_REVOKE_DEADLINE);
        gmca_q_blob(&q, who->proof, who->proof_len);
        rc = gmca_q_step(&q, e, "new revocation request");
        if (rc == GMCA_DB_ROW)
                r.id = gmca_q_col_int(&q, 0);
        else if (rc >= 0)
                rc = gmca_error_set(e, GMCA_ERR_DB, "new revocation request: no id returned");
        gmca_q_close(&q);
        if (rc < 0 || (rc = rev_load(env->store, r.id, &r, e)) != 0)
                goto fail;
        snprintf(object, sizeof(object), "revocation:%lld", (long long)r.id);
        if ((rc = ra_audit(env->store, GMCA_EV_REVOKE_REQUEST, who->op.name, object,
                           json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "serial", b.serial, "reason",
                                     r.reason, "requester", b.requester, "authority", b.authority,
                                     "document_ref", b.document_ref),
                           e)) != 0)
                goto fail;
        /* A business admin's request is carried out at once (§3.9.6). */
        immediate = gmca_auth_allowed(who->op.roles, GMCA_ACT_REVOCATION_COMPLETE, NULL) == 0;
        if (immediate && (rc = carry_out(env->store, &r, who->op.name, now, e)) != 0)
                goto fail;
        if ((rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        if ((rc = rev_load(env->store, r.id, &r, e)) != 0)
                goto out;
        if ((*out = rev_json(&r, now)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        goto out;
fail:
        ra_refuse(env->store, who->op.name, GMCA_EV_REVOKE_REQUEST, object, rc, e);
out:
        gmca_cert_rec_clear(&rec);
        ra_revocation_body_clear(&b);
        return rc;
}

int gmca_ra_revocation_complete(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                                int64_t id, int64_t now, json_t **out, struct gmca_error *e)
{
        struct revreq r;
        char object[OBJ_MAX];
        int rc;

        memset(&r, 0, sizeof(r));
        snprintf(object, sizeof(object), "revocation:%lld", (long long)id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_REVOCATION_COMPLETE, GMCA_EV_REVOKE_COMPLETE,
                             object, e)) != 0)
                return rc;
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = rev_load(env->store, id, &r, e)) != 0)
                goto fail;
        if (strcmp(r.state, RA_REV_PENDING) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "revocation request %lld is %s already",
                                    (long long)id, r.state);
                goto fail;
        }
        if (strcmp(r.requested_by, who->op.name) == 0) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "revocation request %lld: the business admin who completes "
                                    "it must not be the one who asked (%s)",
                                    (long long)id, r.requested_by);
                goto fail;
        }
        if ((rc = carry_out(env->store, &r, who->op.name, now, e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        if ((rc = rev_load(env->store, id, &r, e)) != 0)
                return rc;
        if ((*out = rev_json(&r, now)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return 0;
fail:
        return ra_refuse(env->store, who->op.name, GMCA_EV_REVOKE_COMPLETE, object, rc, e);
}

/* One revocation request; arg: the time now (for its deadline). */
static int rev_item(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e)
{
        struct revreq r;
        int rc;

        if ((rc = rev_row(q, &r, e)) == 0)
                *o = rev_json(&r, *(const int64_t *)arg);
        return rc;
}

int gmca_ra_revocation_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            const char *state, int64_t now, json_t **out, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = ra_allowed(env, who, GMCA_ACT_REVOCATION_READ, GMCA_EV_AUTH_REQUEST,
                             "revocations", e)) != 0)
                return rc;
        if (state == NULL)
                state = "";
        if (state[0] != '\0' && strcmp(state, RA_REV_PENDING) != 0 &&
            strcmp(state, RA_REV_COMPLETED) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "state: pending or completed");
        if ((rc = gmca_q_open(env->store, SQL_LIST, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, state);
        gmca_q_text(&q, state);
        gmca_q_int(&q, GMCA_RA_LIST_MAX);
        return ra_list_collect(&q, "revocation requests", rev_item, &now, -1, out, e);
}
