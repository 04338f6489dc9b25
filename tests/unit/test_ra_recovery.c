/*
 * Unit tests of key recovery (CPS §3.10; ra.h "key recovery"): the front's
 * request, decision and reading against a real CA activated in this
 * process, with operators holding real certificates and every request
 * signed and verified (auth.h), and the CA engine's re-check
 * (gmca_ra_recover_approved) against a store the front tampered with. The
 * CA here has no KM, so a recovery that passes every check stops at the KM
 * ("this CA has no KM"); the delivery itself is tested end to end with a
 * running KM. Each refusal must leave its audit record and change nothing.
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
#include <openssl/pem.h>
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

#define ID_OK "11010519491231002X"
#define INFO "{\"identity_card_number\":\"" ID_OK "\"}"
#define DAY 86400
#define NO_KM "has no KM" /* where a recovery that passed every check stops here */

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
        struct op entry, entry2, admin, admin2, auditor;
        char enc[GMCA_SERIAL_HEX_MAX];   /* 王小明's encryption certificate, in
                                            dual_keys */
        char sig[GMCA_SERIAL_HEX_MAX];   /* his signature certificate */
        char sig2[GMCA_SERIAL_HEX_MAX];  /* his second signature certificate */
        char other[GMCA_SERIAL_HEX_MAX]; /* 李大华's signature certificate */
        char lone[GMCA_SERIAL_HEX_MAX];  /* an encryption certificate not in dual_keys
                                          */
        char *carrier_pem;               /* a judicial carrier's SM2 public key */
        int recover_calls;
};

/* The CA engine's part, in-process. */
static int t_recover(void *arg, int64_t id, struct gmca_error *e)
{
        struct fixture *f = arg;

        f->recover_calls++;
        return gmca_ra_recover_approved(f->c, id, f->now, e);
}

/* ---- certificates and operators ---- */

static uint8_t *csr_der(EVP_PKEY *key, const char *o, const char *cn, size_t *len)
{
        return test_csr_key(key, o, NULL, cn, len);
}

/* A certificate of profile for a fresh key; *key (may be NULL) keeps the key.
 */
static void issue(struct fixture *f, const char *profile, const char *o, const char *cn,
                  const char *info, int days, char serial[GMCA_SERIAL_HEX_MAX], EVP_PKEY **key,
                  X509 **cert)
{
        struct gmca_issue_req r;
        struct gmca_error e = {0};
        EVP_PKEY *k;
        uint8_t *csr;
        size_t len;

        assert_non_null(k = gmca_sm2_keygen(&e));
        csr = csr_der(k, o, cn, &len);
        memset(&r, 0, sizeof(r));
        r.profile = profile;
        r.csr = csr;
        r.csr_len = len;
        r.info_json = info;
        r.info_len = info != NULL ? strlen(info) : 0;
        r.days = days;
        if (gmca_ca_issue(f->c, &r, serial, cert, &e) != 0)
                fail_msg("issue %s %s: %s", profile, cn, e.msg);
        OPENSSL_free(csr);
        if (key != NULL)
                *key = k;
        else
                EVP_PKEY_free(k);
}

static void new_operator(struct fixture *f, struct op *k, const char *name, unsigned roles)
{
        memset(k, 0, sizeof(*k));
        k->name = name;
        issue(f, GMCA_OPERATOR_PROFILE, "单元测试认证中心", name, NULL, 0, k->serial, &k->key,
              &k->cert);
        test_operator_enrol(f->s, f->k_op, name, roles, k->cert, k->serial);
}

static void sql(struct fixture *f, const char *stmt, const char *a, const char *b, int64_t id)
{
        test_sql(f->s, stmt, a, b, id);
}

static const char SQL_T_DUAL[] = "INSERT INTO dual_keys (enc_serial, sig_serial, envelope, created)"
                                 " VALUES (?, ?, X'00', 1)";

static char *pub_pem(EVP_PKEY *k)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *p, *out;
        long n;

        assert_true(PEM_write_bio_PUBKEY(b, k) == 1);
        n = BIO_get_mem_data(b, &p);
        assert_true(n > 0);
        assert_non_null(out = malloc((size_t)n + 1));
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
        BIO_free(b);
        return out;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};
        EVP_PKEY *carrier;

        if (f == NULL || test_ca_make(&f->ca, "recovery") != 0)
                return -1;
        if ((f->c = gmca_ctx_open(f->ca.dir, "unit-engine", &e)) == NULL ||
            gmca_ctx_activate(f->c, f->ca.cust, 3, &e) != 0 ||
            gmca_operator_key(f->c, f->k_op, &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        f->s = gmca_ctx_store(f->c);
        f->env = (struct gmca_ra_env){f->s, f->ca.dir, NULL, NULL, f, t_recover, NULL, NULL};
        *state = f;
        new_operator(f, &f->entry, "entry", GMCA_ROLE_BUSINESS_OPERATOR);
        new_operator(f, &f->entry2, "entry2", GMCA_ROLE_BUSINESS_OPERATOR);
        new_operator(f, &f->admin, "admin", GMCA_ROLE_BUSINESS_ADMIN);
        new_operator(f, &f->admin2, "admin2", GMCA_ROLE_BUSINESS_ADMIN);
        new_operator(f, &f->auditor, "auditor", GMCA_ROLE_AUDIT_ADMIN);
        issue(f, "personal-enc", NULL, "王小明", INFO, 0, f->enc, NULL, NULL);
        issue(f, "personal-sign", NULL, "王小明", INFO, 0, f->sig, NULL, NULL);
        issue(f, "personal-sign", NULL, "王小明", INFO, 0, f->sig2, NULL, NULL);
        issue(f, "personal-sign", NULL, "李大华", INFO, 0, f->other, NULL, NULL);
        issue(f, "personal-enc", NULL, "王小明", INFO, 0, f->lone, NULL, NULL);
        sql(f, SQL_T_DUAL, f->enc, f->sig, 0);
        assert_non_null(carrier = gmca_sm2_keygen(&e));
        f->carrier_pem = pub_pem(carrier);
        EVP_PKEY_free(carrier);
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
        free(f->carrier_pem);
        gmca_ctx_close(f->c);
        test_ca_remove(&f->ca);
        OPENSSL_cleanse(f->k_op, sizeof(f->k_op));
        free(f);
        return 0;
}

/* ---- audit and rows ---- */

struct audit_count {
        const char *event;
        int success;
        int64_t n;
};

static int count_cb(const struct gmca_audit_rec *r, void *arg)
{
        struct audit_count *c = arg;

        if (strcmp(r->event, c->event) == 0 && r->success == c->success)
                c->n++;
        return 0;
}

static int64_t audits(struct fixture *f, const char *event, int success)
{
        struct audit_count c = {event, success, 0};
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(f->s, NULL, count_cb, &c, &e), 0);
        return c.n;
}

static int64_t recoveries(struct fixture *f)
{
        static const char q1[] = "SELECT COUNT(*) FROM key_recoveries";
        struct gmca_error e = {0};
        struct gmca_q q;
        int64_t n;

        assert_int_equal(gmca_q_open(f->s, q1, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "count"), GMCA_DB_ROW);
        n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

static void state_is(struct fixture *f, int64_t id, const char *want)
{
        struct gmca_error e = {0};
        struct ra_recovery r;

        assert_int_equal(ra_recovery_load(f->s, id, &r, &e), 0);
        assert_string_equal(r.state, want);
        ra_recovery_clear(&r);
}

/* ---- driving the operations ---- */

static void signed_by(struct fixture *f, const struct op *k, const char *target, const char *body,
                      struct gmca_auth_result *who)
{
        test_signed_post(f->s, k->key, k->cert, k->name, target, body, f->now, who);
}

static int request(struct fixture *f, const struct op *k, const char *body, int64_t *id,
                   struct gmca_error *e)
{
        struct gmca_auth_result who;
        json_t *out = NULL;
        int rc;

        signed_by(f, k, "/api/v1/recoveries", body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_recovery_request(&f->env, &who, (const uint8_t *)body, strlen(body), f->now,
                                      &out, e);
        if (rc == 0) {
                *id = json_integer_value(json_object_get(out, "id"));
                assert_string_equal(json_string_value(json_object_get(out, "state")), "requested");
                assert_non_null(json_string_value(json_object_get(out, "submission")));
        }
        json_decref(out);
        gmca_auth_result_clear(&who);
        return rc;
}

static int subscriber(struct fixture *f, const struct op *k, const char *enc, const char *to,
                      int64_t *id, struct gmca_error *e)
{
        char body[512];

        snprintf(body, sizeof(body),
                 "{\"kind\":\"subscriber\",\"encryption_serial\":\"%s\",\"recipient_"
                 "serial\":\"%s\","
                 "\"reason\":\"USB key 丢失\"}",
                 enc, to);
        return request(f, k, body, id, e);
}

static int judicial(struct fixture *f, const struct op *k, const char *authority,
                    const char *document, const char *pem, int64_t *id, struct gmca_error *e)
{
        json_t *o = json_pack("{s:s, s:s, s:s}", "kind", "judicial", "encryption_serial", f->enc,
                              "reason", "刑事案件侦查需要");
        char *body;
        int rc;

        if (authority != NULL)
                json_object_set_new(o, "authority", json_string(authority));
        if (document != NULL)
                json_object_set_new(o, "document", json_string(document));
        if (pem != NULL)
                json_object_set_new(o, "recipient_public_key", json_string(pem));
        assert_non_null(body = json_dumps(o, JSON_COMPACT));
        rc = request(f, k, body, id, e);
        free(body);
        json_decref(o);
        return rc;
}

static void submission_of(struct fixture *f, int64_t id, char out[RA_SUBMISSION_HEX + 1])
{
        struct gmca_error e = {0};
        struct ra_recovery r;

        assert_int_equal(ra_recovery_load(f->s, id, &r, &e), 0);
        assert_int_equal(ra_submission_digest(r.request_auth, r.request_auth_len, out, &e), 0);
        ra_recovery_clear(&r);
}

/* Approve (1) or reject (0) naming the submission of `of` (0: id's own). *out
 * kept if asked. */
static int decide(struct fixture *f, const struct op *k, int64_t id, int approve, int64_t of,
                  json_t **out, struct gmca_error *e)
{
        struct gmca_auth_result who;
        char target[96], body[256], sub[RA_SUBMISSION_HEX + 1];
        json_t *o = NULL;
        int rc;

        submission_of(f, of != 0 ? of : id, sub);
        snprintf(target, sizeof(target), "/api/v1/recoveries/%lld/%s", (long long)id,
                 approve ? "approve" : "reject");
        snprintf(body, sizeof(body), "{\"submission\":\"%s\",\"reason\":\"核验无误\"}", sub);
        signed_by(f, k, target, body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_recovery_decide(&f->env, &who, id, approve, (const uint8_t *)body,
                                     strlen(body), f->now, &o, e);
        gmca_auth_result_clear(&who);
        if (out != NULL)
                *out = o;
        else
                json_decref(o);
        return rc;
}

/* An approved subscriber recovery; the engine, called on approval, stops at the
 * KM. */
static int64_t approved(struct fixture *f)
{
        struct gmca_error e = {0};
        json_t *out = NULL;
        int64_t id = 0;

        expect(subscriber(f, &f->entry, f->enc, f->sig, &id, &e), &e, 0, NULL, "request");
        expect(decide(f, &f->admin, id, 1, 0, &out, &e), &e, 0, NULL, "approve");
        assert_string_equal(json_string_value(json_object_get(out, "state")), "approved");
        assert_non_null(strstr(json_string_value(json_object_get(out, "recover_error")), NO_KM));
        json_decref(out);
        return id;
}

/* ---- the tests ---- */

static void t_subscriber_flow(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_result who;
        struct gmca_error e = {0};
        json_t *out = NULL;
        int64_t id, req0 = audits(f, GMCA_EV_RECOVERY_REQUEST, 1);
        int64_t km0 = audits(f, GMCA_EV_KM_RECOVER, 0);

        id = approved(f);
        assert_int_equal(audits(f, GMCA_EV_RECOVERY_REQUEST, 1), req0 + 1);
        assert_true(audits(f, GMCA_EV_RECOVERY_APPROVE, 1) >= 1);
        /* Every check passed: the engine's refusal is the KM's absence, audited. */
        assert_int_equal(audits(f, GMCA_EV_KM_RECOVER, 0), km0 + 1);
        assert_int_equal(f->recover_calls, 1);
        state_is(f, id, "approved");
        expect(gmca_ra_recover_approved(f->c, id, f->now, &e), &e, GMCA_ERR_NOTFOUND, NO_KM,
               "engine");
        /* Deliver retries; reading shows no key, only the (empty) envelopes. */
        memset(&who, 0, sizeof(who));
        who.op.roles = GMCA_ROLE_BUSINESS_ADMIN;
        gmca_strlcpy(who.op.name, "admin", sizeof(who.op.name));
        gmca_error_clear(&e);
        expect(gmca_ra_recovery_deliver(&f->env, &who, id, f->now, &out, &e), &e, GMCA_ERR_NOTFOUND,
               NO_KM, "deliver");
        who.op.roles = GMCA_ROLE_AUDIT_ADMIN;
        gmca_error_clear(&e);
        expect(gmca_ra_recovery_get(&f->env, &who, id, &out, &e), &e, 0, NULL, "get");
        assert_true(json_is_null(json_object_get(out, "enveloped_key")));
        assert_string_equal(json_string_value(json_object_get(out, "recipient_serial")), f->sig);
        json_decref(out);
        gmca_error_clear(&e);
        expect(gmca_ra_recovery_list(&f->env, &who, "approved", &out, &e), &e, 0, NULL, "list");
        assert_true(json_array_size(json_object_get(out, "items")) >= 1);
        json_decref(out);
        gmca_error_clear(&e);
        expect(gmca_ra_recovery_list(&f->env, &who, "bogus", &out, &e), &e, GMCA_ERR_INVALID,
               "state", "list state");
        /* Decided once. */
        expect(decide(f, &f->admin2, id, 1, 0, NULL, &e), &e, GMCA_ERR_STATE, "once", "twice");
}

static void t_two_people_and_roles(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        int64_t id = 0, n, refused = audits(f, GMCA_EV_RECOVERY_APPROVE, 0);

        /* A business admin may request, but not approve his own request. */
        expect(subscriber(f, &f->admin, f->enc, f->sig, &id, &e), &e, 0, NULL, "admin requests");
        expect(decide(f, &f->admin, id, 1, 0, NULL, &e), &e, GMCA_ERR_POLICY,
               "must not be the one who requested", "same person");
        state_is(f, id, "requested");
        /* A business operator does not approve. */
        expect(decide(f, &f->entry, id, 1, 0, NULL, &e), &e, GMCA_ERR_FORBIDDEN, NULL,
               "operator approves");
        assert_int_equal(audits(f, GMCA_EV_RECOVERY_APPROVE, 0), refused + 2);
        /* An auditor does not request. */
        n = recoveries(f);
        expect(subscriber(f, &f->auditor, f->enc, f->sig, &id, &e), &e, GMCA_ERR_FORBIDDEN, NULL,
               "auditor requests");
        assert_int_equal(recoveries(f), n);
        /* The approval names the request read: another one's digest is refused. */
        expect(decide(f, &f->admin2, id, 1, 1, NULL, &e), &e, GMCA_ERR_STATE, "submission",
               "another submission");
        /* Rejection by another admin. */
        expect(decide(f, &f->admin2, id, 0, 0, NULL, &e), &e, 0, NULL, "reject");
        state_is(f, id, "rejected");
}

static void t_request_refusals(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        int64_t id = 0, n = recoveries(f), refused = audits(f, GMCA_EV_RECOVERY_REQUEST, 0);
        char revoked[GMCA_SERIAL_HEX_MAX], shortlived[GMCA_SERIAL_HEX_MAX];
        static const struct {
                const char *body, *msg;
        } bad[] = {
            {"{}", "kind"},
            {"{\"kind\":\"other\",\"encryption_serial\":\"01\",\"reason\":\"x\"}", "kind"},
            {"{\"kind\":\"subscriber\",\"encryption_serial\":\"01\",\"reason\":"
             "\"x\"}",
             "recipient_serial"},
            {"{\"kind\":\"subscriber\",\"recipient_serial\":\"01\",\"reason\":\"x\"}",
             "encryption_serial"},
            {"{\"kind\":\"subscriber\",\"encryption_serial\":\"01\",\"recipient_"
             "serial\":\"02\"}",
             "reason"},
            {"{\"kind\":\"subscriber\",\"encryption_serial\":\"01\",\"recipient_"
             "serial\":\"02\","
             "\"reason\":\"x\",\"extra\":1}",
             "unknown"},
            {"{\"kind\":\"subscriber\",\"encryption_serial\":\"zz\",\"recipient_"
             "serial\":\"02\","
             "\"reason\":\"x\"}",
             "hex"},
            {"[1]", "object"},
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                expect(request(f, &f->entry, bad[i].body, &id, &e), &e, GMCA_ERR_INVALID,
                       bad[i].msg, bad[i].body);
        /* Judicial: authority, document and an SM2 key are required. */
        expect(judicial(f, &f->entry, NULL, "(2026)京01刑初1号", f->carrier_pem, &id, &e), &e,
               GMCA_ERR_INVALID, "authority", "no authority");
        expect(judicial(f, &f->entry, "北京市公安局", NULL, f->carrier_pem, &id, &e), &e,
               GMCA_ERR_INVALID, "document", "no document");
        expect(judicial(f, &f->entry, "北京市公安局", "(2026)京01刑初1号", NULL, &id, &e), &e,
               GMCA_ERR_INVALID, "recipient_public_key", "no key");
        expect(judicial(f, &f->entry, "北京市公安局", "(2026)京01刑初1号",
                        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &id, &e),
               &e, GMCA_ERR_INVALID, "SM2", "not a key");
        /* The encryption certificate must be a KM pair's. */
        expect(subscriber(f, &f->entry, f->lone, f->sig, &id, &e), &e, GMCA_ERR_NOTFOUND,
               "escrowed", "not in dual_keys");
        expect(subscriber(f, &f->entry, "0123456789", f->sig, &id, &e), &e, GMCA_ERR_NOTFOUND, NULL,
               "no such certificate");
        /* The recipient: the same subscriber's current signature certificate. */
        expect(subscriber(f, &f->entry, f->enc, f->other, &id, &e), &e, GMCA_ERR_POLICY,
               "another subject", "other subject");
        expect(subscriber(f, &f->entry, f->enc, f->enc, &id, &e), &e, GMCA_ERR_POLICY,
               "signature certificate", "encryption certificate as recipient");
        issue(f, "personal-sign", NULL, "王小明", INFO, 0, revoked, NULL, NULL);
        assert_int_equal(gmca_store_cert_revoke(f->s, revoked, f->now, 1, 0, &e), 0);
        expect(subscriber(f, &f->entry, f->enc, revoked, &id, &e), &e, GMCA_ERR_STATE, "revoked",
               "revoked recipient");
        issue(f, "personal-sign", NULL, "王小明", INFO, 1, shortlived, NULL, NULL);
        f->now += 2 * DAY;
        expect(subscriber(f, &f->entry, f->enc, shortlived, &id, &e), &e, GMCA_ERR_STATE,
               "not valid now", "expired recipient");
        f->now -= 2 * DAY;
        assert_int_equal(recoveries(f), n);
        assert_int_equal(audits(f, GMCA_EV_RECOVERY_REQUEST, 0),
                         refused + (int64_t)(sizeof(bad) / sizeof(bad[0])) + 10);
}

static void t_judicial_flow(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        json_t *out = NULL;
        int64_t id = 0;

        expect(judicial(f, &f->entry, "北京市公安局", "(2026)京01刑初1号", f->carrier_pem, &id, &e),
               &e, 0, NULL, "judicial");
        expect(decide(f, &f->admin2, id, 1, 0, &out, &e), &e, 0, NULL, "approve judicial");
        assert_non_null(strstr(json_string_value(json_object_get(out, "recover_error")), NO_KM));
        assert_non_null(strstr(json_string_value(json_object_get(out, "recipient_public_key")),
                               "BEGIN PUBLIC KEY"));
        assert_string_equal(json_string_value(json_object_get(out, "authority")), "北京市公安局");
        json_decref(out);
}

/* ---- the front tampers; the engine refuses ---- */

static const char SQL_T_RECIPIENT[] = "UPDATE key_recoveries SET recipient_serial = ? WHERE id = ?";
static const char SQL_T_KIND[] =
    "UPDATE key_recoveries SET kind = ?, authority = ?, document_ref = 'x', "
    "recipient_key = "
    "X'00' WHERE id = ?";
static const char SQL_T_FORGE[] = "UPDATE key_recoveries SET state = "
                                  "'approved', decided_by = ?, decided_at = 1,"
                                  " decide_auth = (SELECT request_auth FROM "
                                  "key_recoveries WHERE id = ?) WHERE id = ?";
static const char SQL_T_NOAPPROVAL[] =
    "UPDATE key_recoveries SET state = ?, decided_by = ? WHERE id = ?";
static const char SQL_T_REPLAY[] =
    "UPDATE key_recoveries SET state = 'approved', decided_by = ?,"
    " decide_auth = (SELECT decide_auth FROM key_recoveries WHERE id = ?) "
    "WHERE id = ?";

static void engine_refuses(struct fixture *f, int64_t id, int want, const char *msg,
                           const char *what)
{
        struct gmca_error e = {0};
        int64_t before = audits(f, GMCA_EV_KM_RECOVER, 0);

        expect(gmca_ra_recover_approved(f->c, id, f->now, &e), &e, want, msg, what);
        assert_int_equal(audits(f, GMCA_EV_KM_RECOVER, 0), before + 1);
        state_is(f, id, "approved");
}

static void forge(struct fixture *f, const char *stmt, const char *who, int64_t from, int64_t id)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(f->s, stmt, &q, &e), 0);
        gmca_q_text(&q, who);
        gmca_q_int(&q, from);
        gmca_q_int(&q, id);
        assert_true(gmca_q_step(&q, &e, "forge") >= 0);
        gmca_q_close(&q);
}

static void t_tampered(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        int64_t a, b, c, d;

        /* A changed recipient (another valid certificate of the same subscriber). */
        a = approved(f);
        sql(f, SQL_T_RECIPIENT, f->sig2, NULL, a);
        engine_refuses(f, a, GMCA_ERR_AUTH, "recipient_serial is not what entry signed",
                       "changed recipient");
        sql(f, SQL_T_RECIPIENT, f->sig, NULL, a);
        engine_refuses(f, a, GMCA_ERR_NOTFOUND, NO_KM, "restored");
        /* A changed kind. */
        sql(f, SQL_T_KIND, "judicial", "某机关", a);
        engine_refuses(f, a, GMCA_ERR_AUTH, "kind is not what entry signed", "changed kind");
        /* A requested recovery written as approved, with no approval or a forged one.
         */
        expect(subscriber(f, &f->entry2, f->enc, f->sig, &b, &e), &e, 0, NULL, "request b");
        sql(f, SQL_T_NOAPPROVAL, "approved", "admin", b);
        engine_refuses(f, b, GMCA_ERR_AUTH, "no signed approval", "no approval");
        forge(f, SQL_T_FORGE, "entry2", b, b);
        engine_refuses(f, b, GMCA_ERR_AUTH, "/api/v1/recoveries", "request as approval");
        /* Recorded as another admin's than who signed it. */
        c = approved(f);
        sql(f, SQL_T_NOAPPROVAL, "approved", "admin2", c);
        engine_refuses(f, c, GMCA_ERR_AUTH, "signed by admin", "approver renamed");
        /* An approval replayed onto another recovery. */
        expect(subscriber(f, &f->entry2, f->enc, f->sig, &d, &e), &e, 0, NULL, "request d");
        forge(f, SQL_T_REPLAY, "admin", c, d);
        engine_refuses(f, d, GMCA_ERR_AUTH, "approve", "replayed approval");
        /* A subscriber recovery approved by its requester, as the front might write
         * it. */
        expect(subscriber(f, &f->admin, f->enc, f->sig, &d, &e), &e, 0, NULL, "request by admin");
        {
                struct gmca_auth_result who;
                char target[96], body[256], sub[RA_SUBMISSION_HEX + 1];
                static const char SQL_T_SELF[] =
                    "UPDATE key_recoveries SET state = 'approved', decided_by = 'admin',"
                    " decide_auth = ? WHERE id = ?";
                struct gmca_q q;

                submission_of(f, d, sub);
                snprintf(target, sizeof(target), "/api/v1/recoveries/%lld/approve", (long long)d);
                snprintf(body, sizeof(body), "{\"submission\":\"%s\"}", sub);
                signed_by(f, &f->admin, target, body, &who);
                assert_int_equal(gmca_q_open(f->s, SQL_T_SELF, &q, &e), 0);
                gmca_q_blob(&q, who.proof, who.proof_len);
                gmca_q_int(&q, d);
                assert_true(gmca_q_step(&q, &e, "self") >= 0);
                gmca_q_close(&q);
                gmca_auth_result_clear(&who);
                engine_refuses(f, d, GMCA_ERR_POLICY, "approver must be another", "self approval");
        }
        /* Not approved at all. */
        sql(f, SQL_T_NOAPPROVAL, "requested", "", d);
        expect(gmca_ra_recover_approved(f->c, d, f->now, &e), &e, GMCA_ERR_STATE, "not approved",
               "requested");
}

/* The recipient revoked after approval: the engine checks again. */
static void t_recipient_revoked_later(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char sig3[GMCA_SERIAL_HEX_MAX];
        json_t *out = NULL;
        int64_t id = 0;

        issue(f, "personal-sign", NULL, "王小明", INFO, 0, sig3, NULL, NULL);
        f->now = (int64_t)gmca_now() + 1; /* its notBefore is the clock's, not f->now */
        expect(subscriber(f, &f->entry, f->enc, sig3, &id, &e), &e, 0, NULL, "request");
        expect(decide(f, &f->admin, id, 1, 0, &out, &e), &e, 0, NULL, "approve");
        json_decref(out);
        assert_int_equal(gmca_store_cert_revoke(f->s, sig3, f->now, 1, 0, &e), 0);
        engine_refuses(f, id, GMCA_ERR_STATE, "revoked", "recipient revoked");
}

/* A namesake's signature certificate (same DN, another identity card) is not the subscriber's. */
static void t_namesake(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char namesake[GMCA_SERIAL_HEX_MAX];
        int64_t id = 0, n = recoveries(f);

        issue(f, "personal-sign", NULL, "王小明",
              "{\"identity_card_number\":\"110105198001010016\"}", 0, namesake, NULL, NULL);
        f->now = (int64_t)gmca_now() + 1; /* its notBefore is the clock's, not f->now */
        expect(subscriber(f, &f->entry, f->enc, namesake, &id, &e), &e, GMCA_ERR_POLICY,
               "identity_card_number", "namesake");
        assert_int_equal(recoveries(f), n);
        /* His own second signature certificate is. */
        expect(subscriber(f, &f->entry, f->enc, f->sig2, &id, &e), &e, 0, NULL, "own second");
        assert_int_equal(recoveries(f), n + 1);
}

/* ---- the front forges a CA of its own ---- */

/* src re-signed by key, with pub (NULL: src's) as its key. */
static uint8_t *resign(X509 *src, EVP_PKEY *pub, EVP_PKEY *key, size_t *len)
{
        struct gmca_error e = {0};
        X509 *x = X509_dup(src);
        EVP_MD_CTX *mctx;
        unsigned char *der = NULL;
        int n;

        assert_non_null(x);
        if (pub != NULL)
                assert_int_equal(X509_set_pubkey(x, pub), 1);
        assert_non_null(mctx = gmca_sm2_sign_ctx(key, NULL, &e));
        assert_true(X509_sign_ctx(x, mctx) > 0);
        assert_true((n = i2d_X509(x, &der)) > 0);
        *len = (size_t)n;
        EVP_MD_CTX_free(mctx);
        X509_free(x);
        return der;
}

static const char SQL_T_CA_COPY[] = "CREATE TEMP TABLE evil_ca AS SELECT * FROM cas WHERE id = ?";
static const char SQL_T_CA_EVIL[] =
    "UPDATE evil_ca SET id = id + 1000, name = 'evil', cert_der = ?";
static const char SQL_T_CA_ADD[] = "INSERT INTO cas SELECT * FROM evil_ca";
static const char SQL_T_CA_DROP[] = "DROP TABLE evil_ca";
static const char SQL_T_CA_DEL[] = "DELETE FROM cas WHERE name = 'evil'";
static const char SQL_T_CERT_SET[] = "UPDATE certificates SET der = ?, ca_id = ? WHERE serial = ?";

static void blob_sql(struct fixture *f, const char *stmt, const uint8_t *b, size_t n,
                     const int64_t *id, const char *text)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(f->s, stmt, &q, &e), 0);
        if (b != NULL)
                gmca_q_blob(&q, b, n);
        if (id != NULL)
                gmca_q_int(&q, *id);
        if (text != NULL)
                gmca_q_text(&q, text);
        if (gmca_q_step(&q, &e, "test sql") < 0)
                fail_msg("%s: %s", stmt, e.msg);
        gmca_q_close(&q);
}

/*
 * The certificate row of serial re-signed by a CA the front added (same
 * name as the real one, its own key), for key `pub` (NULL: the real
 * certificate's); undone by unforge.
 */
static void forge_under_evil_ca(struct fixture *f, const char *serial, EVP_PKEY *pub,
                                struct gmca_cert_rec *saved)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec ca;
        EVP_PKEY *evil;
        X509 *cacert, *cert;
        uint8_t *der;
        size_t len;
        int64_t evil_id;

        memset(&ca, 0, sizeof(ca));
        assert_int_equal(gmca_store_cert_get(f->s, serial, saved, &e), 0);
        assert_int_equal(gmca_store_ca_get_by_id(f->s, saved->ca_id, &ca, &e), 0);
        assert_non_null(evil = gmca_sm2_keygen(&e));
        assert_non_null(cacert = gmca_cert_parse(ca.cert_der, ca.cert_len, &e));
        assert_non_null(cert = gmca_cert_parse(saved->der, saved->der_len, &e));
        blob_sql(f, SQL_T_CA_COPY, NULL, 0, &saved->ca_id, NULL);
        der = resign(cacert, evil, evil, &len);
        blob_sql(f, SQL_T_CA_EVIL, der, len, NULL, NULL);
        OPENSSL_free(der);
        blob_sql(f, SQL_T_CA_ADD, NULL, 0, NULL, NULL);
        blob_sql(f, SQL_T_CA_DROP, NULL, 0, NULL, NULL);
        evil_id = saved->ca_id + 1000;
        der = resign(cert, pub, evil, &len);
        blob_sql(f, SQL_T_CERT_SET, der, len, &evil_id, serial);
        OPENSSL_free(der);
        X509_free(cert);
        X509_free(cacert);
        EVP_PKEY_free(evil);
        gmca_ca_rec_clear(&ca);
}

static void unforge(struct fixture *f, const char *serial, struct gmca_cert_rec *saved)
{
        blob_sql(f, SQL_T_CERT_SET, saved->der, saved->der_len, &saved->ca_id, serial);
        blob_sql(f, SQL_T_CA_DEL, NULL, 0, NULL, NULL);
        gmca_cert_rec_clear(saved);
}

/*
 * A front that writes a CA row of its own and, under the recipient's
 * serial, a certificate for its own key signed by that CA, would have the
 * subscriber's key sealed to itself; under the encryption certificate's
 * serial, one naming whoever it likes. The engine believes only what
 * chains to a CA key it holds.
 */
static void t_forged_ca(void **state)
{
        struct fixture *f = *state;
        struct gmca_cert_rec saved;
        struct gmca_error e = {0};
        EVP_PKEY *mine;
        int64_t id = approved(f);

        assert_non_null(mine = gmca_sm2_keygen(&e));
        memset(&saved, 0, sizeof(saved));
        forge_under_evil_ca(f, f->sig, mine, &saved);
        engine_refuses(f, id, GMCA_ERR_TAMPER, "recipient_serial", "recipient under a forged CA");
        unforge(f, f->sig, &saved);
        forge_under_evil_ca(f, f->enc, NULL, &saved);
        engine_refuses(f, id, GMCA_ERR_TAMPER, "encryption_serial", "encryption under a forged CA");
        unforge(f, f->enc, &saved);
        /* Restored, the recovery passes every check again (and stops at the KM). */
        engine_refuses(f, id, GMCA_ERR_NOTFOUND, NO_KM, "restored");
        EVP_PKEY_free(mine);
        /*
         * An engine activated after its CA was archived holds no signer for
         * it, yet the key is in its device still: old keys stay recoverable.
         */
        {
                static const char SQL_T_ARCHIVE[] = "UPDATE cas SET key_state = ?";
                struct gmca_ctx *c2;

                sql(f, SQL_T_ARCHIVE, "archived", NULL, 0);
                if ((c2 = gmca_ctx_open(f->ca.dir, "unit-engine2", &e)) == NULL ||
                    gmca_ctx_activate(c2, f->ca.cust, 3, &e) != 0)
                        fail_msg("second engine: %s", e.msg);
                gmca_error_clear(&e);
                expect(gmca_ra_recover_approved(c2, id, f->now, &e), &e, GMCA_ERR_NOTFOUND, NO_KM,
                       "archived CA");
                gmca_ctx_close(c2);
                sql(f, SQL_T_ARCHIVE, "active", NULL, 0);
        }
}

/*
 * One approval, one delivery: a recovery the engine has a km.recover record of
 * delivering is refused when a front sets it back to approved (here: the row
 * is approved and the record appended, as after a reset).
 */
static void t_delivered_once(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        struct gmca_audit_event ev;
        char object[32];
        int64_t id = approved(f);

        snprintf(object, sizeof(object), "recovery:%lld", (long long)id);
        ev = (struct gmca_audit_event){GMCA_EV_KM_RECOVER, "engine", 1, object, NULL};
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        assert_int_equal(gmca_audit_append(f->s, &ev, &e), 0);
        assert_int_equal(gmca_store_commit(f->s, &e), 0);
        expect(gmca_ra_recover_approved(f->c, id, f->now, &e), &e, GMCA_ERR_STATE,
               "delivered already", "engine");
        state_is(f, id, "approved");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(t_subscriber_flow),  cmocka_unit_test(t_two_people_and_roles),
            cmocka_unit_test(t_request_refusals), cmocka_unit_test(t_judicial_flow),
            cmocka_unit_test(t_tampered),         cmocka_unit_test(t_recipient_revoked_later),
            cmocka_unit_test(t_forged_ca),        cmocka_unit_test(t_namesake),
            cmocka_unit_test(t_delivered_once),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
