/*
 * The CA engine's side of an RA revocation (CPS §3.9; ra.h
 * gmca_ra_revoke_approved). The front records a revocation request and its
 * completion and asks the engine by the request's id only; it wrote the
 * row, so the row is believed only as far as the signed requests behind it
 * say (DESIGN.md: a compromise of the front must not revoke what nobody
 * asked to revoke, nor skip the second person). The request must be a
 * signed POST to /api/v1/revocations by the operator the row names, with a
 * role that may ask, whose body is exactly the row's (serial, case,
 * requester, authority, document, note). If that role may also complete
 * (a business admin, §3.9.6) it is carried out at once; otherwise the
 * completion must be a signed POST to this request's complete by another
 * operator whose role may complete, signed after the request was. Both
 * operators' records must carry the custodians' tag under K_op before
 * their names and roles count. The certificate must still be one the RA
 * may revoke (ra_revocation_target), and the request must not have been
 * completed before: the row's state is the front's to write, the engine's
 * own ra.revocation.complete record is not (audit rows are appended, never
 * changed), so a row set back to pending, or a completion moved to a row
 * re-numbered to its id, is refused.
 *
 * One transaction: the certificate revoked (its encryption pair with it,
 * gmca_store_cert_revoke), cert.revoke with the engine as its actor and
 * who asked and who completed in the detail, the request completed, the
 * subscriber's notification, and ra.revocation.complete, whose actor is the
 * completing operator (for a business admin's own request, the requester):
 * their signature is what the engine acted on. The change feed and the
 * OCSP cache learn of it from the same store write as any revocation. A
 * refusal is audited and changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "ca_internal.h"
#include "crl.h"
#include "ra.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"

#define OBJ_MAX 40

static const char SQL_COMPLETE[] =
    "UPDATE revocation_requests SET state = 'completed', completed_by = ?, completed_at = ?"
    " WHERE id = ? AND state = 'pending'";
static const char SQL_APPLICANT_OF[] =
    "SELECT applicant_id FROM applications WHERE issued_serial = ? ORDER BY id LIMIT 1";
static const char SQL_COMPLETED_BEFORE[] =
    "SELECT seq FROM audit WHERE event = '" GMCA_EV_REVOKE_COMPLETE
    "' AND object = ? AND success = 1 LIMIT 1";

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

/* What the engine acts on, as the signed requests say. */
struct checked {
        struct ra_revocation r;
        struct gmca_operator req_op, done_op; /* done_op: the completer (req_op if at once) */
        int at_once;
};

/* ---- the re-check ---- */

/* One step's signed request: tagged, a POST to want, by an operator allowed act. */
static int step(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN], int64_t id,
                const char *name, const uint8_t *proof, size_t len, enum gmca_action act,
                const char *want, int64_t now, struct gmca_auth_proof *p, struct gmca_operator *op,
                struct gmca_error *e)
{
        char what[48];

        snprintf(what, sizeof(what), "revocation request %lld", (long long)id);
        return gmca_auth_step_check(s, k_op, what, name, proof, len, NULL, act, want, now, p, op,
                                    e);
}

static int same_text(const char *signed_text, const char *row)
{
        return strcmp(signed_text != NULL ? signed_text : "", row) == 0;
}

/* The requester signed what the row asks for, and is the operator the row names. */
static int request_ok(struct checked *k, const struct gmca_auth_proof *p, struct gmca_error *e)
{
        const struct ra_revocation *r = &k->r;
        struct ra_revocation_body b;
        struct gmca_error in = {0};
        const char *what = NULL;

        if (strcmp(k->req_op.name, r->requested_by) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "revocation request %lld: the request was signed by %s, the "
                                      "record says %s",
                                      (long long)r->id, k->req_op.name, r->requested_by);
        if (ra_revocation_parse(p->body, p->body_len, &b, &in) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "revocation request %lld: the signed request does not "
                                      "parse: %s",
                                      (long long)r->id, in.msg);
        if (strcmp(b.serial, r->serial) != 0)
                what = "serial";
        else if (r->reason[0] != b.reason || r->reason[1] != '\0' ||
                 r->reason_code != b.reason_code)
                what = "reason";
        else if (!same_text(b.requester, r->requester))
                what = "requester";
        else if (!same_text(b.authority, r->authority))
                what = "authority";
        else if (!same_text(b.document_ref, r->document_ref))
                what = "document_ref";
        else if (!same_text(b.note, r->note))
                what = "note";
        ra_revocation_body_clear(&b);
        if (what != NULL)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "revocation request %lld: the record's %s is not what %s "
                                      "signed",
                                      (long long)r->id, what, r->requested_by);
        return 0;
}

/* The completion: another person, who signed it after the request. */
static int completion_ok(const struct checked *k, const struct gmca_auth_proof *pr,
                         const struct gmca_auth_proof *pc, struct gmca_error *e)
{
        if (k->done_op.id == k->req_op.id || strcmp(k->done_op.name, k->req_op.name) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "CPS §3.9.6: revocation request %lld of %s was completed by "
                                      "%s, who asked for it; the completion must be another's",
                                      (long long)k->r.id, k->req_op.name, k->done_op.name);
        if (pc->timestamp + GMCA_AUTH_SKEW < pr->timestamp)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "revocation request %lld: the completion was signed at %lld, "
                                      "before the request (%lld)",
                                      (long long)k->r.id, (long long)pc->timestamp,
                                      (long long)pr->timestamp);
        return 0;
}

static int completed_before(struct gmca_store *s, int64_t id, struct gmca_error *e)
{
        char object[OBJ_MAX];
        struct gmca_q q;
        int rc;

        snprintf(object, sizeof(object), "revocation:%lld", (long long)id);
        if ((rc = gmca_q_open(s, SQL_COMPLETED_BEFORE, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, object);
        rc = gmca_q_step(&q, e, "completions of revocation request %lld", (long long)id);
        if (rc == GMCA_DB_ROW)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "revocation request %lld was completed already (audit record "
                                    "%lld)",
                                    (long long)id, (long long)gmca_q_col_int(&q, 0));
        gmca_q_close(&q);
        return rc == GMCA_DB_DONE ? 0 : rc;
}

static int check(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN], int64_t id, int64_t now,
                 struct checked *k, struct gmca_error *e)
{
        struct gmca_auth_proof pr, pc;
        char want[80];
        int rc;

        if ((rc = ra_revocation_load(s, id, &k->r, e)) != 0)
                return rc;
        if (strcmp(k->r.state, RA_REV_PENDING) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE, "revocation request %lld is %s, not %s",
                                      (long long)id, k->r.state, RA_REV_PENDING);
        if ((rc = completed_before(s, id, e)) != 0 ||
            (rc = step(s, k_op, id, "request", k->r.request_auth, k->r.request_auth_len,
                       GMCA_ACT_REVOCATION_REQUEST, "/api/v1/revocations", now, &pr, &k->req_op,
                       e)) != 0 ||
            (rc = request_ok(k, &pr, e)) != 0)
                return rc;
        k->at_once = gmca_auth_allowed(k->req_op.roles, GMCA_ACT_REVOCATION_COMPLETE, NULL) == 0;
        if (k->at_once) {
                k->done_op = k->req_op;
        } else {
                snprintf(want, sizeof(want), "/api/v1/revocations/%lld/complete", (long long)id);
                if ((rc =
                         step(s, k_op, id, "completion", k->r.complete_auth, k->r.complete_auth_len,
                              GMCA_ACT_REVOCATION_COMPLETE, want, now, &pc, &k->done_op, e)) != 0 ||
                    (rc = completion_ok(k, &pr, &pc, e)) != 0)
                        return rc;
        }
        return ra_revocation_target(s, k->r.serial, k->r.requester, e);
}

/* ---- carrying it out ---- */

/* Inside the transaction: pending -> completed, by the completer. */
static int mark_completed(struct gmca_store *s, const struct checked *k, int64_t now,
                          struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_COMPLETE, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, k->done_op.name);
        gmca_q_int(&q, now);
        gmca_q_int(&q, k->r.id);
        rc = gmca_q_step(&q, e, "revocation request %lld", (long long)k->r.id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "revocation request %lld changed meanwhile",
                                    (long long)k->r.id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* Inside the transaction: the subscriber told, at the counter if no applicant is known. */
static int notify(struct gmca_store *s, const struct ra_revocation *r, int64_t now,
                  struct gmca_error *e)
{
        char text[1024];
        int64_t applicant = 0;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_APPLICANT_OF, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, r->serial);
        if ((rc = gmca_q_step(&q, e, "applicant of %s", r->serial)) == GMCA_DB_ROW)
                applicant = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        snprintf(text, sizeof(text), "您的证书（序列号 %s）已被撤销。原因：%s（%c）。", r->serial,
                 case_text[r->reason[0] - 'A'], r->reason[0]);
        return ra_notify(s, applicant, 0, r->id, text, now, e);
}

static int carry_out(struct gmca_ctx *c, const struct checked *k, int64_t now, struct gmca_error *e)
{
        const struct ra_revocation *r = &k->r;
        struct gmca_cert_rec rec;
        char object[OBJ_MAX];
        int rc;

        memset(&rec, 0, sizeof(rec));
        snprintf(object, sizeof(object), "revocation:%lld", (long long)r->id);
        /* The case was checked A..I when the signed body parsed (request_ok). */
        if ((rc = gmca_store_cert_get(c->store, r->serial, &rec, e)) != 0 ||
            (rc = gmca_store_cert_revoke(c->store, r->serial, now, r->reason_code, 0, e)) != 0 ||
            (rc = ra_audit(c->store, GMCA_EV_CERT_REVOKE, c->actor, r->serial,
                           json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "reason",
                                     gmca_crl_reason_name(r->reason_code), "subject", rec.subject,
                                     "cps_case", r->reason, "request", (json_int_t)r->id,
                                     "requested_by", k->req_op.name, "completed_by",
                                     k->done_op.name),
                           e)) != 0 ||
            (rc = mark_completed(c->store, k, now, e)) != 0 ||
            (rc = notify(c->store, r, now, e)) != 0)
                goto out;
        rc = ra_audit(c->store, GMCA_EV_REVOKE_COMPLETE, k->done_op.name, object,
                      json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:s}", "serial", r->serial,
                                "requested_by", k->req_op.name, "reason", r->reason, "requested_at",
                                (json_int_t)r->requested_at, "deadline", (json_int_t)r->deadline,
                                "at_once", k->at_once, "carried_out_by", c->actor),
                      e);
out:
        gmca_cert_rec_clear(&rec);
        return rc;
}

int gmca_ra_revoke_approved(struct gmca_ctx *c, int64_t id, int64_t now, struct gmca_error *e)
{
        struct checked k;
        uint8_t k_op[GMCA_OP_KEY_LEN];
        char object[OBJ_MAX];
        int rc;

        memset(&k, 0, sizeof(k));
        snprintf(object, sizeof(object), "revocation:%lld", (long long)id);
        if ((rc = gmca_operator_key(c, k_op, e)) != 0)
                return ca_reject(c, GMCA_EV_REVOKE_COMPLETE, object, rc, e);
        if ((rc = gmca_store_begin(c->store, e)) != 0) {
                OPENSSL_cleanse(k_op, sizeof(k_op));
                return ca_reject(c, GMCA_EV_REVOKE_COMPLETE, object, rc, e);
        }
        rc = check(c->store, k_op, id, now, &k, e);
        OPENSSL_cleanse(k_op, sizeof(k_op));
        if (rc != 0 || (rc = carry_out(c, &k, now, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                rc = ca_reject(c, GMCA_EV_REVOKE_COMPLETE, object, rc, e);
        }
        ra_revocation_clear(&k.r);
        return rc;
}
