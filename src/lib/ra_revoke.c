/*
 * Revocation requests (CPS §3.9): the case of §3.9.1 (A–I, mapped to an
 * RFC 5280 reason), the requester of §3.9.2 (the subscriber, an
 * organisation's authorised representative for organisation, staff and
 * device certificates, the CA itself, a judicial authority with its
 * document reference recorded and no re-vetting), and the deadline of
 * §3.9.6: done within 24 hours of the request. A business admin's request
 * is carried out at once; a business operator's waits for a business admin
 * other than the requester.
 *
 * The front only records: the request with its signed request
 * (request_auth), the completion with the completing admin's
 * (complete_auth). Carrying it out is the CA engine's (env->revoke,
 * ca_ra_revoke.c), which checks both signed requests again before it
 * revokes, so a compromised front cannot revoke a certificate nobody asked
 * for or skip the second person (DESIGN.md trust zones). When the engine
 * refuses or cannot be reached the request stays pending, the answer says
 * why ("revoke_error"), and asking again (the same admin's request, or a
 * completion) retries. The CRL that publishes a revocation is the next
 * scheduled one (CRL generation is the CA engine's, on its own schedule);
 * the result says so.
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
static const char SQL_GET[] = "SELECT " REV_COLS ", request_auth, complete_auth"
                              " FROM revocation_requests WHERE id = ?";
static const char SQL_COMPLETE_AUTH[] =
    "UPDATE revocation_requests SET complete_auth = ? WHERE id = ? AND state = 'pending'";
static const char SQL_LIST[] = "SELECT " REV_COLS " FROM revocation_requests"
                               " WHERE (? = '' OR state = ?) ORDER BY id DESC LIMIT ?";

static int rev_row(struct gmca_q *q, struct ra_revocation *r, struct gmca_error *e)
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

void ra_revocation_clear(struct ra_revocation *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->request_auth);
        OPENSSL_free(r->complete_auth);
        memset(r, 0, sizeof(*r));
}

int ra_revocation_load(struct gmca_store *s, int64_t id, struct ra_revocation *out,
                       struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(out, 0, sizeof(*out));
        if ((rc = gmca_q_open(s, SQL_GET, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "revocation request %lld", (long long)id);
        if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                    "revocation request %lld: no such request", (long long)id);
        else if (rc == GMCA_DB_ROW &&
                 ((rc = rev_row(&q, out, e)) != 0 ||
                  (rc = gmca_q_col_dup(&q, 14, &out->request_auth, &out->request_auth_len, e)) !=
                      0 ||
                  (rc = gmca_q_col_dup(&q, 15, &out->complete_auth, &out->complete_auth_len, e)) !=
                      0))
                ra_revocation_clear(out);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

static json_t *opt(const char *s)
{
        return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *rev_json(const struct ra_revocation *r, int64_t now)
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

int ra_revocation_target(struct gmca_store *s, const char *serial, const char *requester,
                         struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        int ca, rc;

        memset(&rec, 0, sizeof(rec));
        rc = gmca_store_cert_get(s, serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "certificate %s: not issued by this CA",
                                      serial);
        }
        if (rc != 0)
                return rc;
        ca = der_is_ca(&rec);
        if (rec.status == GMCA_CERT_REVOKED)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "certificate %s is already revoked", serial);
        else if (ra_internal_profile(rec.profile) || ca)
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "certificate %s is a %s certificate: the custodians revoke "
                                    "it, not the RA",
                                    serial, ca ? "CA" : rec.profile);
        /* §3.9.2: an organisation's representative, for what was issued to organisations. */
        else if (strcmp(requester, "org_representative") == 0 &&
                 !ra_affiliated_profile(rec.profile) && strncmp(rec.profile, "device-", 7) != 0)
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "CPS §3.9.2: an organisation's representative may ask to "
                                    "revoke organisation, staff and device certificates only, "
                                    "not %s",
                                    rec.profile);
        gmca_cert_rec_clear(&rec);
        return rc;
}

/*
 * Hand request id to the CA engine (env->revoke) and answer with the record
 * as it is then: completed, or still pending with "revoke_error" (the
 * engine's refusal, which it audited itself, or why it could not be asked),
 * the operator's step then audited here as refused too.
 */
static int carry_out(const struct gmca_ra_env *env, const struct gmca_auth_result *who, int64_t id,
                     int64_t now, json_t **out, struct gmca_error *e)
{
        struct gmca_error ee = {0};
        struct ra_revocation r;
        char object[OBJ_MAX];
        json_t *o;
        int erc, rc;

        snprintf(object, sizeof(object), "revocation:%lld", (long long)id);
        if (env->revoke == NULL)
                erc = gmca_error_set(&ee, GMCA_ERR_STATE, "no CA engine to carry it out");
        else
                erc = env->revoke(env->issue_arg, id, &ee);
        if ((rc = ra_revocation_load(env->store, id, &r, e)) != 0)
                return rc;
        /* An answer lost after the engine committed: the record says it is done. */
        if (erc != 0 && strcmp(r.state, RA_REV_PENDING) != 0)
                erc = 0;
        o = rev_json(&r, now);
        ra_revocation_clear(&r);
        if (o == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (erc != 0) {
                if (ee.msg[0] == '\0')
                        gmca_error_set(&ee, erc, "%s", gmca_err_name(erc));
                json_object_set_new(o, "revoke_error", json_string(ee.msg));
                ra_refuse(env->store, who->op.name, GMCA_EV_REVOKE_COMPLETE, object, erc, &ee);
        }
        *out = o;
        return 0;
}

static int same_text(const char *body, const char *row)
{
        return strcmp(body != NULL ? body : "", row) == 0;
}

/*
 * A pending request for b's serial: GMCA_ERR_EXISTS, unless it is retry_by's
 * own request with the very same body (a business admin asking again for a
 * request the engine could not carry out at once), whose id goes to *id.
 */
static int pending_for(struct gmca_store *s, const struct ra_revocation_body *b,
                       const char *retry_by, int64_t *id, struct gmca_error *e)
{
        struct ra_revocation r;
        struct gmca_q q;
        int64_t found = 0;
        int rc;

        *id = 0;
        if ((rc = gmca_q_open(s, SQL_PENDING_FOR, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, b->serial);
        rc = gmca_q_step(&q, e, "requests for %s", b->serial);
        if (rc == GMCA_DB_ROW)
                found = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        if (rc < 0 || found == 0)
                return rc < 0 ? rc : 0;
        if ((rc = ra_revocation_load(s, found, &r, e)) != 0)
                return rc;
        if (retry_by != NULL && strcmp(r.requested_by, retry_by) == 0 && r.reason[0] == b->reason &&
            r.reason[1] == '\0' && same_text(b->requester, r.requester) &&
            same_text(b->authority, r.authority) && same_text(b->document_ref, r.document_ref) &&
            same_text(b->note, r.note))
                *id = found;
        else
                rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                    "certificate %s: revocation request %lld is pending already",
                                    b->serial, (long long)found);
        ra_revocation_clear(&r);
        return rc;
}

/* Inside the transaction: the new request, with its signed request and ra.revocation.request. */
static int record(struct gmca_store *s, const struct gmca_auth_result *who,
                  const struct ra_revocation_body *b, int64_t now, int64_t *id,
                  struct gmca_error *e)
{
        char reason[2] = {b->reason, '\0'}, object[OBJ_MAX];
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_INSERT, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, b->serial);
        gmca_q_text(&q, reason);
        gmca_q_int(&q, b->reason_code);
        gmca_q_text(&q, b->requester);
        gmca_q_text(&q, b->authority);
        gmca_q_text(&q, b->document_ref);
        gmca_q_text(&q, b->note);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_int(&q, now + GMCA_RA_REVOKE_DEADLINE);
        gmca_q_blob(&q, who->proof, who->proof_len);
        rc = gmca_q_step(&q, e, "new revocation request");
        if (rc == GMCA_DB_ROW)
                *id = gmca_q_col_int(&q, 0);
        else if (rc >= 0)
                rc = gmca_error_set(e, GMCA_ERR_DB, "new revocation request: no id returned");
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        snprintf(object, sizeof(object), "revocation:%lld", (long long)*id);
        return ra_audit(s, GMCA_EV_REVOKE_REQUEST, who->op.name, object,
                        json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "serial", b->serial, "reason",
                                  reason, "requester", b->requester, "authority", b->authority,
                                  "document_ref", b->document_ref),
                        e);
}

int gmca_ra_revocation_request(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               const uint8_t *body, size_t len, int64_t now, json_t **out,
                               struct gmca_error *e)
{
        struct ra_revocation_body b;
        struct ra_revocation r;
        char object[OBJ_MAX] = "revocation";
        int64_t id = 0;
        int immediate, rc;

        memset(&b, 0, sizeof(b));
        if ((rc = ra_allowed(env, who, GMCA_ACT_REVOCATION_REQUEST, GMCA_EV_REVOKE_REQUEST, object,
                             e)) != 0)
                return rc;
        /* A business admin's request is carried out at once (§3.9.6). */
        immediate = gmca_auth_allowed(who->op.roles, GMCA_ACT_REVOCATION_COMPLETE, NULL) == 0;
        if ((rc = ra_need_proof(who, e)) != 0 || (rc = ra_revocation_parse(body, len, &b, e)) != 0)
                goto fail;
        gmca_strlcpy(object, b.serial, sizeof(object));
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = ra_revocation_target(env->store, b.serial, b.requester, e)) != 0 ||
            (rc = pending_for(env->store, &b, immediate ? who->op.name : NULL, &id, e)) != 0 ||
            (id == 0 && (rc = record(env->store, who, &b, now, &id, e)) != 0) ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        ra_revocation_body_clear(&b);
        if (immediate)
                return carry_out(env, who, id, now, out, e);
        if ((rc = ra_revocation_load(env->store, id, &r, e)) != 0)
                return rc;
        if ((*out = rev_json(&r, now)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        ra_revocation_clear(&r);
        return rc;
fail:
        ra_revocation_body_clear(&b);
        return ra_refuse(env->store, who->op.name, GMCA_EV_REVOKE_REQUEST, object, rc, e);
}

/* Inside the transaction: the completing admin's signed request, for the engine to check. */
static int store_completion(struct gmca_store *s, int64_t id, const struct gmca_auth_result *who,
                            struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_COMPLETE_AUTH, &q, e)) != 0)
                return rc;
        gmca_q_blob(&q, who->proof, who->proof_len);
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "revocation request %lld", (long long)id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "revocation request %lld changed meanwhile",
                                    (long long)id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_ra_revocation_complete(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                                int64_t id, int64_t now, json_t **out, struct gmca_error *e)
{
        struct ra_revocation r;
        char object[OBJ_MAX];
        int rc;

        memset(&r, 0, sizeof(r));
        snprintf(object, sizeof(object), "revocation:%lld", (long long)id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_REVOCATION_COMPLETE, GMCA_EV_REVOKE_COMPLETE,
                             object, e)) != 0)
                return rc;
        if ((rc = ra_need_proof(who, e)) != 0 || (rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = ra_revocation_load(env->store, id, &r, e)) != 0)
                goto fail;
        if (strcmp(r.state, RA_REV_PENDING) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "revocation request %lld is %s already",
                                    (long long)id, r.state);
                goto fail;
        }
        /*
         * The requester, a business admin, asks again for their own request
         * (the engine could not carry it out at once): it needs no second
         * signature, and the engine checks that its requester may complete.
         * Anyone else's signed request is the completion.
         */
        if ((strcmp(r.requested_by, who->op.name) != 0 &&
             (rc = store_completion(env->store, id, who, e)) != 0) ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        ra_revocation_clear(&r);
        return carry_out(env, who, id, now, out, e);
fail:
        ra_revocation_clear(&r);
        return ra_refuse(env->store, who->op.name, GMCA_EV_REVOKE_COMPLETE, object, rc, e);
}

/* One revocation request; arg: the time now (for its deadline). */
static int rev_item(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e)
{
        struct ra_revocation r;
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
