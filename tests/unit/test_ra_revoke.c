/*
 * Unit tests of RA revocation (CPS §3.9; ra.h "revocation") as the CA
 * engine carries it out (gmca_ra_revoke_approved, ca_ra_revoke.c): the
 * front records the request and the completion with their signed requests
 * and hands the id over; the engine believes the row only as far as those
 * say. Against a real CA activated in this process, with operators holding
 * real certificates and every request signed and verified (auth.h), the
 * store is tampered with as a compromised front could (a proof removed, a
 * request renamed or changed, a completion missing, the requester's own,
 * another request's, an auditor's, the requester's role raised to skip the
 * second person, a completed request set back to pending, a CA certificate
 * named): each is refused, on the record, and revokes nothing. And the
 * engine's disable of an operator through the API (ca_op_disable.c): only on
 * a super admin's fresh signed request for that operator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testcsr.h"
#include "audit.h"
#include "auth.h"
#include "ca.h"
#include "crypto.h"
#include "ra.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "testca.h"
#include "testops.h"
#include "testutil.h"
#include "util.h"

#define ENGINE "unit-engine" /* the activated context's actor */
#define INFO "{\"identity_card_number\":\"11010519491231002X\"}"

struct op {
        EVP_PKEY *key;
        X509 *cert;
        char serial[GMCA_SERIAL_HEX_MAX];
        const char *name;
};

struct fixture {
        struct test_ca ca;
        struct gmca_ctx *c;
        struct gmca_store *s;
        uint8_t k_op[GMCA_OP_KEY_LEN];
        struct gmca_ra_env env;
        int64_t now;
        struct op entry, entry2, admin, admin2, auditor, super;
        int engine_calls;
};

/* The CA engine's part, in-process. */
static int t_revoke(void *arg, int64_t id, struct gmca_error *e)
{
        struct fixture *f = arg;

        f->engine_calls++;
        return gmca_ra_revoke_approved(f->c, id, f->now, e);
}

/* ---- certificates, operators, rows ---- */

static void issue(struct fixture *f, const char *profile, const char *cn,
                  char serial[GMCA_SERIAL_HEX_MAX], EVP_PKEY **key, X509 **cert)
{
        struct gmca_issue_req r;
        struct gmca_error e = {0};
        EVP_PKEY *k;
        uint8_t *csr;
        size_t len;

        assert_non_null(k = gmca_sm2_keygen(&e));
        csr = test_csr_key(k, "单元测试认证中心", NULL, cn, &len);
        memset(&r, 0, sizeof(r));
        r.profile = profile;
        r.csr = csr;
        r.csr_len = len;
        if (strcmp(profile, GMCA_OPERATOR_PROFILE) != 0) {
                r.info_json = INFO;
                r.info_len = strlen(INFO);
        }
        if (gmca_ca_issue(f->c, &r, serial, cert, &e) != 0)
                fail_msg("issue %s %s: %s", profile, cn, e.msg);
        OPENSSL_free(csr);
        if (key != NULL)
                *key = k;
        else
                EVP_PKEY_free(k);
}

/* A subscriber's certificate to revoke. */
static void subscriber(struct fixture *f, const char *cn, char serial[GMCA_SERIAL_HEX_MAX])
{
        issue(f, "personal-sign", cn, serial, NULL, NULL);
}

static void new_operator(struct fixture *f, struct op *k, const char *name, unsigned roles)
{
        memset(k, 0, sizeof(*k));
        k->name = name;
        issue(f, GMCA_OPERATOR_PROFILE, name, k->serial, &k->key, &k->cert);
        test_operator_enrol(f->s, f->k_op, name, roles, k->cert, k->serial);
}

/* One statement of the front's, text arguments a and b (NULL: none), then id (0: none). */
static void sql(struct fixture *f, const char *stmt, const char *a, const char *b, int64_t id)
{
        test_sql(f->s, stmt, a, b, id);
}

/* Copy column col (request_auth or complete_auth) of request from into column to of id. */
static void move_proof(struct fixture *f, const char *stmt, int64_t from, int64_t id)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(f->s, stmt, &q, &e), 0);
        gmca_q_int(&q, from);
        gmca_q_int(&q, id);
        assert_true(gmca_q_step(&q, &e, "move proof") >= 0);
        gmca_q_close(&q);
}

struct audit_count {
        const char *event, *actor; /* actor NULL: any */
        int success;
        int64_t n;
};

static int count_cb(const struct gmca_audit_rec *r, void *arg)
{
        struct audit_count *c = arg;

        if (strcmp(r->event, c->event) == 0 && r->success == c->success &&
            (c->actor == NULL || strcmp(r->actor, c->actor) == 0))
                c->n++;
        return 0;
}

static int64_t audits(struct fixture *f, const char *event, const char *actor, int success)
{
        struct audit_count c = {event, actor, success, 0};
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(f->s, NULL, count_cb, &c, &e), 0);
        return c.n;
}

static int64_t count(struct fixture *f, const char *stmt)
{
        struct gmca_error e = {0};
        struct gmca_q q;
        int64_t n;

        assert_int_equal(gmca_q_open(f->s, stmt, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "count"), GMCA_DB_ROW);
        n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

static int status_of(struct fixture *f, const char *serial)
{
        struct gmca_cert_rec rec;
        struct gmca_error e = {0};
        int st;

        memset(&rec, 0, sizeof(rec));
        assert_int_equal(gmca_store_cert_get(f->s, serial, &rec, &e), 0);
        st = rec.status;
        gmca_cert_rec_clear(&rec);
        return st;
}

static void state_is(struct fixture *f, int64_t id, const char *want)
{
        struct gmca_error e = {0};
        struct ra_revocation r;

        assert_int_equal(ra_revocation_load(f->s, id, &r, &e), 0);
        assert_string_equal(r.state, want);
        ra_revocation_clear(&r);
}

/* ---- the operations, signed ---- */

static void signed_by(struct fixture *f, const struct op *k, const char *target, const char *body,
                      struct gmca_auth_result *who)
{
        test_signed_post(f->s, k->key, k->cert, k->name, target, body, f->now, who);
}

/* POST /api/v1/revocations; *id the request's, *state its state. */
static int request(struct fixture *f, const struct op *k, const char *serial, const char *reason,
                   int64_t *id, char state[16], json_t **out, struct gmca_error *e)
{
        struct gmca_auth_result who;
        char body[256];
        json_t *o = NULL;
        int rc;

        snprintf(body, sizeof(body),
                 "{\"serial\":\"%s\",\"reason\":\"%s\",\"requester\":\"subscriber\"}", serial,
                 reason);
        signed_by(f, k, "/api/v1/revocations", body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_revocation_request(&f->env, &who, (const uint8_t *)body, strlen(body), f->now,
                                        &o, e);
        gmca_auth_result_clear(&who);
        if (rc == 0) {
                *id = json_integer_value(json_object_get(o, "id"));
                gmca_strlcpy(state, json_string_value(json_object_get(o, "state")), 16);
        }
        if (out != NULL)
                *out = o;
        else
                json_decref(o);
        return rc;
}

/* POST /api/v1/revocations/{id}/complete */
static int complete(struct fixture *f, const struct op *k, int64_t id, json_t **out,
                    struct gmca_error *e)
{
        struct gmca_auth_result who;
        char target[64];
        json_t *o = NULL;
        int rc;

        snprintf(target, sizeof(target), "/api/v1/revocations/%lld/complete", (long long)id);
        signed_by(f, k, target, NULL, &who);
        gmca_error_clear(e);
        rc = gmca_ra_revocation_complete(&f->env, &who, id, f->now, &o, e);
        gmca_auth_result_clear(&who);
        if (out != NULL)
                *out = o;
        else
                json_decref(o);
        return rc;
}

/* A business operator's pending request for a fresh certificate; its serial in serial. */
static int64_t pending(struct fixture *f, const struct op *k, const char *cn,
                       char serial[GMCA_SERIAL_HEX_MAX])
{
        struct gmca_error e = {0};
        char state[16];
        int64_t id = 0;

        subscriber(f, cn, serial);
        expect(request(f, k, serial, "H", &id, state, NULL, &e), &e, 0, NULL, "pending request");
        assert_string_equal(state, RA_REV_PENDING);
        return id;
}

/* Record admin's signed completion of id as the front would, without asking the engine. */
static void record_completion(struct fixture *f, const struct op *k, int64_t target_id, int64_t id)
{
        static const char SQL_T_SET[] =
            "UPDATE revocation_requests SET complete_auth = ? WHERE id = ?";
        struct gmca_auth_result who;
        struct gmca_error e = {0};
        char target[64];
        struct gmca_q q;

        snprintf(target, sizeof(target), "/api/v1/revocations/%lld/complete", (long long)target_id);
        signed_by(f, k, target, NULL, &who);
        assert_int_equal(gmca_q_open(f->s, SQL_T_SET, &q, &e), 0);
        gmca_q_blob(&q, who.proof, who.proof_len);
        gmca_q_int(&q, id);
        assert_true(gmca_q_step(&q, &e, "completion") >= 0);
        gmca_q_close(&q);
        gmca_auth_result_clear(&who);
}

/* The engine refuses request id with want and msg, audits it, and revokes nothing. */
static void engine_refuses(struct fixture *f, int64_t id, const char *serial, int want,
                           const char *msg, const char *what)
{
        static const char SQL_T_NOTES[] = "SELECT COUNT(*) FROM notifications";
        struct gmca_error e = {0};
        int64_t before = audits(f, GMCA_EV_REVOKE_COMPLETE, ENGINE, 0);
        int64_t revokes = audits(f, GMCA_EV_CERT_REVOKE, NULL, 1);
        int64_t notes = count(f, SQL_T_NOTES);

        gmca_error_clear(&e);
        expect(gmca_ra_revoke_approved(f->c, id, f->now, &e), &e, want, msg, what);
        assert_int_equal(audits(f, GMCA_EV_REVOKE_COMPLETE, ENGINE, 0), before + 1);
        assert_int_equal(audits(f, GMCA_EV_CERT_REVOKE, NULL, 1), revokes);
        assert_int_equal(count(f, SQL_T_NOTES), notes);
        assert_int_equal(status_of(f, serial), GMCA_CERT_VALID);
}

/* ---- fixture ---- */

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};

        if (f == NULL || test_ca_make(&f->ca, "revoke") != 0)
                return -1;
        if ((f->c = gmca_ctx_open(f->ca.dir, ENGINE, &e)) == NULL ||
            gmca_ctx_activate(f->c, f->ca.cust, 3, &e) != 0 ||
            gmca_operator_key(f->c, f->k_op, &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        f->s = gmca_ctx_store(f->c);
        f->env = (struct gmca_ra_env){f->s, f->ca.dir, NULL, NULL, f, NULL, t_revoke, NULL};
        *state = f;
        new_operator(f, &f->entry, "entry", GMCA_ROLE_BUSINESS_OPERATOR);
        new_operator(f, &f->entry2, "entry2", GMCA_ROLE_BUSINESS_OPERATOR);
        new_operator(f, &f->admin, "admin", GMCA_ROLE_BUSINESS_ADMIN);
        new_operator(f, &f->admin2, "admin2", GMCA_ROLE_BUSINESS_ADMIN);
        new_operator(f, &f->auditor, "auditor", GMCA_ROLE_AUDIT_ADMIN);
        new_operator(f, &f->super, "super", GMCA_ROLE_SUPER_ADMIN);
        f->now = (int64_t)gmca_now();
        return 0;
}

static void op_free(struct op *k)
{
        EVP_PKEY_free(k->key);
        X509_free(k->cert);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        if (f == NULL)
                return 0;
        op_free(&f->entry);
        op_free(&f->entry2);
        op_free(&f->admin);
        op_free(&f->admin2);
        op_free(&f->auditor);
        op_free(&f->super);
        gmca_ctx_close(f->c);
        test_ca_remove(&f->ca);
        OPENSSL_cleanse(f->k_op, sizeof(f->k_op));
        free(f);
        return 0;
}

/* ---- the tests ---- */

/* A business operator's request waits; another admin's completion has the engine revoke it. */
static void t_two_people(void **state)
{
        static const char SQL_T_NOTES[] = "SELECT COUNT(*) FROM notifications";
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        int64_t id, notes, calls = f->engine_calls;
        json_t *out = NULL;

        id = pending(f, &f->entry, "张一", serial);
        assert_int_equal(f->engine_calls, calls); /* a request alone asks nothing */
        assert_int_equal(status_of(f, serial), GMCA_CERT_VALID);
        notes = count(f, SQL_T_NOTES);
        expect(complete(f, &f->admin, id, &out, &e), &e, 0, NULL, "complete");
        assert_string_equal(json_string_value(json_object_get(out, "state")), RA_REV_COMPLETED);
        assert_string_equal(json_string_value(json_object_get(out, "completed_by")), "admin");
        assert_null(json_object_get(out, "revoke_error"));
        json_decref(out);
        assert_int_equal(status_of(f, serial), GMCA_CERT_REVOKED);
        assert_int_equal(count(f, SQL_T_NOTES), notes + 1);
        /* The engine is the actor of the revocation; the admin of the completion. */
        assert_true(audits(f, GMCA_EV_CERT_REVOKE, ENGINE, 1) >= 1);
        assert_true(audits(f, GMCA_EV_REVOKE_COMPLETE, "admin", 1) >= 1);
        /* Once. */
        expect(complete(f, &f->admin2, id, NULL, &e), &e, GMCA_ERR_STATE, "completed already",
               "complete twice");
        gmca_error_clear(&e);
        expect(gmca_ra_revoke_approved(f->c, id, f->now, &e), &e, GMCA_ERR_STATE, "completed",
               "the engine again");
}

/* A business admin's request is carried out at once; without an engine it stays pending. */
static void t_at_once_and_retry(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX], s2[GMCA_SERIAL_HEX_MAX], st[16];
        int64_t id = 0, id2 = 0, fails;
        json_t *out = NULL;

        subscriber(f, "张二", serial);
        expect(request(f, &f->admin, serial, "E", &id, st, NULL, &e), &e, 0, NULL, "at once");
        assert_string_equal(st, RA_REV_COMPLETED);
        assert_int_equal(status_of(f, serial), GMCA_CERT_REVOKED);

        /* No engine: pending, with why, on the record; nothing revoked. */
        subscriber(f, "张三", s2);
        f->env.revoke = NULL;
        fails = audits(f, GMCA_EV_REVOKE_COMPLETE, "admin", 0);
        expect(request(f, &f->admin, s2, "E", &id, st, &out, &e), &e, 0, NULL, "no engine");
        assert_string_equal(st, RA_REV_PENDING);
        assert_non_null(strstr(json_string_value(json_object_get(out, "revoke_error")), "engine"));
        json_decref(out);
        assert_int_equal(audits(f, GMCA_EV_REVOKE_COMPLETE, "admin", 0), fails + 1);
        assert_int_equal(status_of(f, s2), GMCA_CERT_VALID);
        /* Another request for it, or the same admin's with another reason: pending already. */
        expect(request(f, &f->admin2, s2, "E", &id2, st, NULL, &e), &e, GMCA_ERR_EXISTS,
               "pending already", "another admin");
        expect(request(f, &f->admin, s2, "H", &id2, st, NULL, &e), &e, GMCA_ERR_EXISTS,
               "pending already", "another reason");
        /* The engine back: asking again carries out the same request. */
        f->env.revoke = t_revoke;
        expect(request(f, &f->admin, s2, "E", &id2, st, NULL, &e), &e, 0, NULL, "asked again");
        assert_int_equal(id2, id);
        assert_string_equal(st, RA_REV_COMPLETED);
        assert_int_equal(status_of(f, s2), GMCA_CERT_REVOKED);

        /* Or the requester's completion retries it, with no second signature needed. */
        subscriber(f, "张四", s2);
        f->env.revoke = NULL;
        expect(request(f, &f->admin, s2, "G", &id, st, NULL, &e), &e, 0, NULL, "no engine 2");
        f->env.revoke = t_revoke;
        expect(complete(f, &f->admin, id, &out, &e), &e, 0, NULL, "requester retries");
        assert_string_equal(json_string_value(json_object_get(out, "state")), RA_REV_COMPLETED);
        json_decref(out);
        assert_int_equal(status_of(f, s2), GMCA_CERT_REVOKED);
}

static const char SQL_T_NOREQ[] =
    "UPDATE revocation_requests SET request_auth = X'' WHERE serial = ? AND id = ?";
static const char SQL_T_RENAME[] =
    "UPDATE revocation_requests SET requested_by = ? WHERE serial = ? AND id = ?";
static const char SQL_T_SERIAL[] = "UPDATE revocation_requests SET serial = ? WHERE id = ?";
static const char SQL_T_REASON[] =
    "UPDATE revocation_requests SET reason = ?, reason_code = 1 WHERE serial = ? AND id = ?";
static const char SQL_T_REQ_AS_DONE[] =
    "UPDATE revocation_requests SET complete_auth ="
    " (SELECT request_auth FROM revocation_requests WHERE id = ?) WHERE id = ?";
static const char SQL_T_ROLES[] = "UPDATE operators SET roles = ? WHERE name = ?";
static const char SQL_T_REOPEN[] =
    "UPDATE revocation_requests SET state = 'pending', completed_by = NULL WHERE serial = ? AND "
    "id = ?";

/* What a compromised front could write, refused by the engine. */
static void t_tampered(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char s1[GMCA_SERIAL_HEX_MAX], s2[GMCA_SERIAL_HEX_MAX], s3[GMCA_SERIAL_HEX_MAX];
        int64_t a, b, c;

        a = pending(f, &f->entry, "李一", s1);
        record_completion(f, &f->admin, a, a);
        /* The request's proof removed. */
        sql(f, SQL_T_NOREQ, s1, NULL, a);
        engine_refuses(f, a, s1, GMCA_ERR_AUTH, "no signed request", "no request proof");
        state_is(f, a, RA_REV_PENDING);

        /* Recorded as another operator's request than who signed it. */
        b = pending(f, &f->entry, "李二", s2);
        record_completion(f, &f->admin, b, b);
        sql(f, SQL_T_RENAME, "entry2", s2, b);
        engine_refuses(f, b, s2, GMCA_ERR_AUTH, "signed by entry, the record says entry2",
                       "renamed requester");
        sql(f, SQL_T_RENAME, "entry", s2, b);
        /* The body changed: another certificate, another case. */
        subscriber(f, "李三", s3);
        sql(f, SQL_T_SERIAL, s3, NULL, b);
        engine_refuses(f, b, s3, GMCA_ERR_AUTH, "serial is not what entry signed", "serial");
        sql(f, SQL_T_SERIAL, s2, NULL, b);
        sql(f, SQL_T_REASON, "E", s2, b);
        engine_refuses(f, b, s2, GMCA_ERR_AUTH, "reason is not what entry signed", "reason");
        sql(f,
            "UPDATE revocation_requests SET reason = 'H', reason_code = 0 WHERE serial = ? "
            "AND id = ?",
            s2, NULL, b);

        /* A business operator's request with no completion, or the requester's, or an
         * auditor's, or one made for another request, or the request itself as one. */
        c = pending(f, &f->entry, "李四", s3);
        engine_refuses(f, c, s3, GMCA_ERR_AUTH, "no signed completion", "no completion");
        record_completion(f, &f->entry, c, c);
        engine_refuses(f, c, s3, GMCA_ERR_AUTH, "completion by entry", "by the requester");
        record_completion(f, &f->auditor, c, c);
        engine_refuses(f, c, s3, GMCA_ERR_AUTH, "completion by auditor", "by an auditor");
        record_completion(f, &f->admin, b, c);
        engine_refuses(f, c, s3, GMCA_ERR_AUTH, "not to /api/v1/revocations/", "another's");
        move_proof(f, SQL_T_REQ_AS_DONE, c, c);
        engine_refuses(f, c, s3, GMCA_ERR_AUTH, "/api/v1/revocations, not to", "request as one");
        /* The requester's role raised by the front, to skip the second person: the
         * record's tag no longer holds. */
        sql(f, SQL_T_ROLES, "business_admin", "entry", 0);
        engine_refuses(f, c, s3, GMCA_ERR_AUTH, "not made by the custodians", "raised role");
        sql(f, SQL_T_ROLES, "business_operator", "entry", 0);

        /* A genuine one goes through; set back to pending it is refused. */
        record_completion(f, &f->admin2, c, c);
        gmca_error_clear(&e);
        expect(gmca_ra_revoke_approved(f->c, c, f->now, &e), &e, 0, NULL, "genuine");
        assert_int_equal(status_of(f, s3), GMCA_CERT_REVOKED);
        state_is(f, c, RA_REV_COMPLETED);
        sql(f, SQL_T_REOPEN, s3, NULL, c);
        gmca_error_clear(&e);
        expect(gmca_ra_revoke_approved(f->c, c, f->now, &e), &e, GMCA_ERR_STATE,
               "completed already", "reopened");
        /* The untouched ones still pass once restored. */
        record_completion(f, &f->admin, b, b);
        gmca_error_clear(&e);
        expect(gmca_ra_revoke_approved(f->c, b, f->now, &e), &e, 0, NULL, "restored");
        assert_int_equal(status_of(f, s2), GMCA_CERT_REVOKED);
}

/* A CA's certificate named in a signed request the front should have refused. */
static void t_ca_certificate(void **state)
{
        static const char SQL_T_SUBCA[] = "SELECT serial FROM certificates WHERE profile = "
                                          "'sub-ca' ORDER BY issued_at LIMIT 1";
        static const char SQL_T_POINT[] = "UPDATE revocation_requests SET serial = ? WHERE id = ?";
        struct fixture *f = *state;
        struct gmca_auth_result who;
        struct gmca_error e = {0};
        char sub[GMCA_SERIAL_HEX_MAX], s1[GMCA_SERIAL_HEX_MAX], body[256];
        static const char SQL_T_PROOF[] =
            "UPDATE revocation_requests SET request_auth = ? WHERE id = ?";
        struct gmca_q q;
        int64_t id;

        assert_int_equal(gmca_q_open(f->s, SQL_T_SUBCA, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "sub-ca"), GMCA_DB_ROW);
        assert_int_equal(gmca_q_col_str(&q, 0, sub, sizeof(sub), "serial", &e), 0);
        gmca_q_close(&q);
        /* admin signs a request for it; the front records it in place of another. */
        id = pending(f, &f->entry, "王一", s1);
        snprintf(body, sizeof(body),
                 "{\"serial\":\"%s\",\"reason\":\"H\",\"requester\":"
                 "\"subscriber\"}",
                 sub);
        signed_by(f, &f->admin, "/api/v1/revocations", body, &who);
        assert_int_equal(gmca_q_open(f->s, SQL_T_PROOF, &q, &e), 0);
        gmca_q_blob(&q, who.proof, who.proof_len);
        gmca_q_int(&q, id);
        assert_true(gmca_q_step(&q, &e, "proof") >= 0);
        gmca_q_close(&q);
        gmca_auth_result_clear(&who);
        sql(f, SQL_T_POINT, sub, NULL, id);
        sql(f, SQL_T_RENAME, "admin", sub, id);
        engine_refuses(f, id, sub, GMCA_ERR_POLICY, "the custodians revoke it", "sub-CA");
}

/* A disable through the API: the engine acts on a super admin's fresh signed request only. */
static int disable(struct fixture *f, const struct op *k, const char *target, const char *name,
                   int64_t at, struct gmca_error *e)
{
        struct gmca_auth_result who;
        int rc;

        signed_by(f, k, target, NULL, &who);
        gmca_error_clear(e);
        rc = gmca_operator_disable_signed(f->c, name, who.proof, who.proof_len, at, e);
        gmca_auth_result_clear(&who);
        return rc;
}

static void t_disable(void **state)
{
        static const char T[] = "/api/v1/operators/entry2/disable";
        struct fixture *f = *state;
        struct gmca_operator op;
        struct gmca_error e = {0};
        int64_t fails = audits(f, GMCA_EV_OPERATOR_DISABLE, ENGINE, 0);

        expect(disable(f, &f->admin, T, "entry2", f->now, &e), &e, GMCA_ERR_AUTH, "by admin",
               "a business admin");
        expect(disable(f, &f->super, "/api/v1/operators/auditor/disable", "entry2", f->now, &e), &e,
               GMCA_ERR_AUTH,
               "not to "
               "/api/v1/operators/entry2/disable",
               "another's");
        expect(disable(f, &f->super, T, "entry2", f->now + 2 * GMCA_AUTH_SKEW, &e), &e,
               GMCA_ERR_AUTH, "stale", "stale");
        assert_int_equal(audits(f, GMCA_EV_OPERATOR_DISABLE, ENGINE, 0), fails + 3);
        assert_int_equal(gmca_operator_get(f->s, "entry2", &op, &e), 0);
        assert_string_equal(op.status, GMCA_OP_ACTIVE);
        assert_int_equal(status_of(f, f->entry2.serial), GMCA_CERT_VALID);
        expect(disable(f, &f->super, T, "entry2", f->now, &e), &e, 0, NULL, "the super admin");
        assert_int_equal(gmca_operator_get(f->s, "entry2", &op, &e), 0);
        assert_string_equal(op.status, GMCA_OP_DISABLED);
        assert_int_equal(status_of(f, f->entry2.serial), GMCA_CERT_REVOKED);
        assert_true(audits(f, GMCA_EV_OPERATOR_DISABLE, "super", 1) == 1);
        expect(disable(f, &f->super, T, "entry2", f->now, &e), &e, GMCA_ERR_STATE,
               "already disabled", "twice");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_two_people), cmocka_unit_test(t_at_once_and_retry),
            cmocka_unit_test(t_tampered),   cmocka_unit_test(t_ca_certificate),
            cmocka_unit_test(t_disable),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
