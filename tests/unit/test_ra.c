/*
 * Unit tests of the RA operations (ra.h) against a real CA activated in
 * this process, with operators holding real certificates and every request
 * signed and verified (auth.h), so that the proofs the CA engine checks
 * again are real ones: strict bodies, applicants with sealed identity
 * numbers, the two-person workflow, the lifecycle rules at their
 * boundaries, revocation, and gmca_ra_check_approvals against a tampered
 * store, operator records the front wrote or changed included. Each refusal must leave its audit
 * record and nothing else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
#include "util.h"
#include "testca.h"
#include "testutil.h"

#define ID_OK "11010519491231002X"
#define USCC_OK "91350100M000100Y43"
#define DAY 86400

struct op {
        EVP_PKEY *key;
        X509 *cert;
        char serial[GMCA_SERIAL_HEX_MAX];
        const char *name;
};

struct fixture {
        struct test_ca ca; /* the CA, its directory and its custodians */
        struct gmca_ctx *c;
        struct gmca_store *s;
        uint8_t pii_key[GMCA_SM4_KEY_LEN];
        uint8_t k_op[GMCA_OP_KEY_LEN]; /* the activated context's: the engine's own */
        struct gmca_pii_sealer sealer;
        struct gmca_ra_env env;
        int64_t now;       /* the time requests are signed and checked at */
        struct op entry;   /* business_operator: enters applications */
        struct op vetter;  /* business_operator: vets */
        struct op admin;   /* business_admin */
        struct op admin2;  /* business_admin */
        struct op auditor; /* audit_admin */
};

/* ---- the sealer: SM4-GCM under a test key; IV || ciphertext || tag ---- */

static int t_seal(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                  size_t *outlen, struct gmca_error *e)
{
        struct fixture *f = arg;
        uint8_t *b = malloc(n + GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN);
        int rc;

        if (b == NULL)
                return GMCA_ERR_NOMEM;
        if ((rc = gmca_rand_bytes(b, GMCA_SM4_GCM_IV_LEN, e)) != 0 ||
            (rc = gmca_sm4_gcm_encrypt(f->pii_key, b, (const uint8_t *)aad, strlen(aad), in, n,
                                       b + GMCA_SM4_GCM_IV_LEN, b + GMCA_SM4_GCM_IV_LEN + n, e)) !=
                0) {
                free(b);
                return rc;
        }
        *out = b;
        *outlen = n + GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN;
        return 0;
}

static int t_unseal(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                    size_t *outlen, struct gmca_error *e)
{
        struct fixture *f = arg;
        size_t m;
        uint8_t *b;
        int rc;

        if (n < GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN)
                return gmca_error_set(e, GMCA_ERR_VERIFY, "sealed value too short");
        m = n - GMCA_SM4_GCM_IV_LEN - GMCA_SM4_GCM_TAG_LEN;
        if ((b = malloc(m + 1)) == NULL)
                return GMCA_ERR_NOMEM;
        if ((rc = gmca_sm4_gcm_decrypt(f->pii_key, in, (const uint8_t *)aad, strlen(aad),
                                       in + GMCA_SM4_GCM_IV_LEN, m, in + GMCA_SM4_GCM_IV_LEN + m, b,
                                       e)) != 0) {
                free(b);
                return rc;
        }
        *out = b;
        *outlen = m;
        return 0;
}

/* ---- the CA engine's part, in-process: re-check, issue, record ---- */

/* The CA engine's own issuance (ca_ra_issue.c), at the test's clock. */
static int t_issue(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                   struct gmca_error *e)
{
        struct fixture *f = arg;

        return gmca_ra_issue_approved(f->c, app_id, f->now, serial, e);
}

/* The CA engine's revocation (ca_ra_revoke.c), at the test's clock. */
static int t_revoke(void *arg, int64_t id, struct gmca_error *e)
{
        struct fixture *f = arg;

        return gmca_ra_revoke_approved(f->c, id, f->now, e);
}

/* ---- keys, CSRs, operators, requests ---- */

/* DER CSR for "C=CN[, O=o][, OU=ou], CN=cn" signed with key. */
static uint8_t *csr_der(EVP_PKEY *key, const char *o, const char *ou, const char *cn, size_t *len)
{
        return test_csr_key(key, o, ou, cn, len);
}

/* The CSR as the API takes it: base64 of its DER (malloc'd). */
static char *csr_b64(EVP_PKEY *key, const char *o, const char *ou, const char *cn)
{
        size_t len;
        uint8_t *der = csr_der(key, o, ou, cn, &len);
        char *b = malloc(len * 2 + 8);

        assert_non_null(b);
        EVP_EncodeBlock((unsigned char *)b, der, (int)len);
        OPENSSL_free(der);
        return b;
}

static void new_operator(struct fixture *f, struct op *k, const char *name, unsigned roles)
{
        struct gmca_issue_req r;
        struct gmca_cert_rec rec;
        struct gmca_operator op;
        struct gmca_error e = {0};
        const unsigned char *p;
        uint8_t *csr, *der = NULL;
        size_t len;
        int n;

        memset(k, 0, sizeof(*k));
        memset(&rec, 0, sizeof(rec));
        k->name = name;
        assert_non_null(k->key = gmca_sm2_keygen(&e));
        csr = csr_der(k->key, "单元测试认证中心", NULL, name, &len);
        memset(&r, 0, sizeof(r));
        r.profile = GMCA_OPERATOR_PROFILE;
        r.csr = csr;
        r.csr_len = len;
        if (gmca_ca_issue(f->c, &r, k->serial, NULL, &e) != 0)
                fail_msg("operator %s: %s", name, e.msg);
        OPENSSL_free(csr);
        assert_int_equal(gmca_store_cert_get(f->s, k->serial, &rec, &e), 0);
        p = rec.der;
        assert_non_null(k->cert = d2i_X509(NULL, &p, (long)rec.der_len));
        gmca_cert_rec_clear(&rec);
        memset(&op, 0, sizeof(op));
        gmca_strlcpy(op.name, name, sizeof(op.name));
        op.roles = roles;
        gmca_strlcpy(op.cert_serial, k->serial, sizeof(op.cert_serial));
        assert_true((n = i2d_X509(k->cert, &der)) > 0);
        gmca_auth_fingerprint(der, (size_t)n, op.fingerprint);
        OPENSSL_free(der);
        op.created_at = (int64_t)gmca_now();
        gmca_strlcpy(op.created_by, "unit", sizeof(op.created_by));
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        if (gmca_operator_insert(f->s, &op, f->k_op, &e) != 0)
                fail_msg("operator %s: %s", name, e.msg);
        assert_int_equal(gmca_store_commit(f->s, &e), 0);
}

/* A request signed by k and accepted by the server side at f->now. */
static void signed_by(struct fixture *f, const struct op *k, const char *method, const char *target,
                      const char *body, struct gmca_auth_result *who)
{
        struct gmca_auth_headers h;
        struct gmca_error e = {0};
        size_t len = body != NULL ? strlen(body) : 0;

        memset(who, 0, sizeof(*who));
        if (gmca_auth_sign(k->key, k->cert, method, target, (const uint8_t *)body, len, f->now, &h,
                           &e) != 0 ||
            gmca_auth_verify(f->s, &h, method, target, (const uint8_t *)body, len, f->now, who,
                             &e) != 0)
                fail_msg("%s %s by %s: %s", method, target, k->name, e.msg);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};

        if (f == NULL || test_ca_make(&f->ca, "ra") != 0)
                return -1;
        if ((f->c = gmca_ctx_open(f->ca.dir, "unit-engine", &e)) == NULL ||
            gmca_ctx_activate(f->c, f->ca.cust, 3, &e) != 0 ||
            gmca_operator_key(f->c, f->k_op, &e) != 0 ||
            gmca_rand_bytes(f->pii_key, sizeof(f->pii_key), &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        f->s = gmca_ctx_store(f->c);
        f->sealer = (struct gmca_pii_sealer){t_seal, t_unseal, f};
        f->env =
            (struct gmca_ra_env){f->s, f->ca.dir, &f->sealer, t_issue, f, NULL, t_revoke, NULL};
        *state = f;
        new_operator(f, &f->entry, "entry", GMCA_ROLE_BUSINESS_OPERATOR);
        new_operator(f, &f->vetter, "vetter", GMCA_ROLE_BUSINESS_OPERATOR);
        new_operator(f, &f->admin, "admin", GMCA_ROLE_BUSINESS_ADMIN);
        new_operator(f, &f->admin2, "admin2", GMCA_ROLE_BUSINESS_ADMIN);
        new_operator(f, &f->auditor, "auditor", GMCA_ROLE_AUDIT_ADMIN);
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
        op_free(&f->vetter);
        op_free(&f->admin);
        op_free(&f->admin2);
        op_free(&f->auditor);
        gmca_ctx_close(f->c);
        test_ca_remove(&f->ca);
        OPENSSL_cleanse(f->pii_key, sizeof(f->pii_key));
        OPENSSL_cleanse(f->k_op, sizeof(f->k_op));
        free(f);
        return 0;
}

/* ---- audit and table counts ---- */

struct audit_count {
        const char *event;
        int success;
        int64_t n;
        char last_detail[1024];
        char last_actor[64];
};

static int count_cb(const struct gmca_audit_rec *r, void *arg)
{
        struct audit_count *c = arg;

        if (strcmp(r->event, c->event) == 0 && r->success == c->success) {
                c->n++;
                gmca_strlcpy(c->last_detail, r->detail != NULL ? r->detail : "",
                             sizeof(c->last_detail));
                gmca_strlcpy(c->last_actor, r->actor, sizeof(c->last_actor));
        }
        return 0;
}

static int64_t audits(struct fixture *f, const char *event, int success, struct audit_count *out)
{
        struct audit_count c = {event, success, 0, "", ""};
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(f->s, NULL, count_cb, &c, &e), 0);
        if (out != NULL)
                *out = c;
        return c.n;
}

static int64_t rows(struct fixture *f, const char *table)
{
        static const char q1[] = "SELECT COUNT(*) FROM applications";
        static const char q2[] = "SELECT COUNT(*) FROM applicants";
        static const char q3[] = "SELECT COUNT(*) FROM notifications";
        static const char q4[] = "SELECT COUNT(*) FROM revocation_requests";
        const char *sql = strcmp(table, "applications") == 0    ? q1
                          : strcmp(table, "applicants") == 0    ? q2
                          : strcmp(table, "notifications") == 0 ? q3
                                                                : q4;
        struct gmca_error e = {0};
        struct gmca_q q;
        int64_t n;

        assert_int_equal(gmca_q_open(f->s, sql, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "count"), GMCA_DB_ROW);
        n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

/* ---- helpers driving the operations ---- */

static int64_t new_applicant(struct fixture *f, const char *body)
{
        struct gmca_auth_result who;
        struct gmca_error e = {0};
        json_t *out = NULL;
        int64_t id;

        signed_by(f, &f->entry, "POST", "/api/v1/applicants", body, &who);
        if (gmca_ra_applicant_create(&f->env, &who, (const uint8_t *)body, strlen(body), f->now,
                                     &out, &e) != 0)
                fail_msg("applicant: %s", e.msg);
        id = json_integer_value(json_object_get(out, "id"));
        assert_true(id > 0);
        json_decref(out);
        gmca_auth_result_clear(&who);
        return id;
}

static int64_t person(struct fixture *f, const char *contact)
{
        char body[512];

        snprintf(body, sizeof(body),
                 "{\"kind\":\"individual\",\"name\":\"王小明\",\"id_type\":\"resident_id\","
                 "\"id_number\":\"" ID_OK "\"%s%s%s}",
                 contact[0] ? ",\"contact\":\"" : "", contact, contact[0] ? "\"" : "");
        return new_applicant(f, body);
}

/* Submit: new when old is NULL, else type on old. *app the id; returns the rc. */
static int submit(struct fixture *f, const struct op *k, enum gmca_app_type type, const char *old,
                  const char *body, int64_t *app, struct gmca_error *e)
{
        struct gmca_auth_result who;
        char target[160];
        json_t *out = NULL;
        int rc;

        if (type == GMCA_APP_NEW)
                snprintf(target, sizeof(target), "/api/v1/applications");
        else
                snprintf(target, sizeof(target), "/api/v1/certificates/%s/%s", old,
                         gmca_app_type_name(type));
        signed_by(f, k, "POST", target, body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_application_submit(&f->env, &who, type, old, (const uint8_t *)body,
                                        strlen(body), f->now, &out, e);
        if (rc == 0) {
                *app = json_integer_value(json_object_get(out, "id"));
                assert_string_equal(json_string_value(json_object_get(out, "state")), "submitted");
        }
        json_decref(out);
        gmca_auth_result_clear(&who);
        return rc;
}

/* The application's "submission" as the API shows it ("" if it has none). */
static void submission_of(struct fixture *f, int64_t app, char out[RA_SUBMISSION_HEX + 1])
{
        struct gmca_error e = {0};
        struct ra_app a;

        out[0] = '\0';
        if (ra_app_load(f->s, app, &a, &e) != 0)
                return;
        if (ra_submission_digest(a.submit_auth, a.submit_auth_len, out, &e) != 0)
                out[0] = '\0';
        ra_app_clear(&a);
}

static int vet(struct fixture *f, const struct op *k, int64_t app, const char *result,
               struct gmca_error *e)
{
        struct gmca_auth_result who;
        char target[96], body[512], sub[RA_SUBMISSION_HEX + 1];
        json_t *out = NULL;
        int rc;

        submission_of(f, app, sub);
        snprintf(target, sizeof(target), "/api/v1/applications/%lld/vet", (long long)app);
        snprintf(body, sizeof(body),
                 "{\"method\":\"in_person\",\"documents\":[\"居民身份证原件\",\"申请表\"],"
                 "\"result\":\"%s\",\"note\":\"证件照片与本人不符\",\"submission\":\"%s\"}",
                 result, sub);
        signed_by(f, k, "POST", target, body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_application_vet(&f->env, &who, app, (const uint8_t *)body, strlen(body),
                                     f->now, &out, e);
        json_decref(out);
        gmca_auth_result_clear(&who);
        return rc;
}

/*
 * Approve or reject; *out (may be NULL) gets the result. An approval's body
 * (NULL: {}) gets the application's "submission" unless it names one.
 */
static int decide(struct fixture *f, const struct op *k, int64_t app, int approve,
                  const char *body_in, json_t **out, struct gmca_error *e)
{
        struct gmca_auth_result who;
        char target[96], sub[RA_SUBMISSION_HEX + 1];
        char *body = body_in != NULL ? strdup(body_in) : NULL;
        json_t *o = NULL;
        int rc;

        if (approve) {
                json_t *j = body != NULL ? json_loads(body, 0, NULL) : json_object();

                submission_of(f, app, sub);
                if (j != NULL && json_object_get(j, "submission") == NULL && sub[0] != '\0')
                        json_object_set_new(j, "submission", json_string(sub));
                if (j != NULL) {
                        free(body);
                        body = json_dumps(j, JSON_COMPACT);
                }
                json_decref(j);
        }

        snprintf(target, sizeof(target), "/api/v1/applications/%lld/%s", (long long)app,
                 approve ? "approve" : "reject");
        signed_by(f, k, "POST", target, body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_application_decide(&f->env, &who, app, approve, (const uint8_t *)body,
                                        body != NULL ? strlen(body) : 0, f->now, &o, e);
        if (out != NULL)
                *out = o;
        else
                json_decref(o);
        gmca_auth_result_clear(&who);
        free(body);
        return rc;
}

static char *personal_body(int64_t applicant, EVP_PKEY *key, const char *cn, int days)
{
        char *csr = csr_b64(key, NULL, NULL, cn);
        json_t *b = json_pack("{s:I, s:s, s:s, s:{s:s}, s:[s]}", "applicant", (json_int_t)applicant,
                              "profile", "personal-sign", "csr", csr, "subject_info",
                              "identity_card_number", ID_OK, "materials", "申请表一份");
        char *text;

        if (days > 0)
                json_object_set_new(b, "days", json_integer(days));
        text = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        free(csr);
        return text;
}

/* A personal certificate through the whole workflow; serial out, its key kept in *key. */
static int64_t issue_personal(struct fixture *f, int64_t applicant, EVP_PKEY **key, int days,
                              char serial[GMCA_SERIAL_HEX_MAX])
{
        struct gmca_error e = {0};
        json_t *out = NULL;
        int64_t app = 0;
        char *body;

        assert_non_null(*key = gmca_sm2_keygen(&e));
        body = personal_body(applicant, *key, "王小明", days);
        expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), &e, 0, NULL, "submit");
        free(body);
        expect(vet(f, &f->vetter, app, "pass", &e), &e, 0, NULL, "vet");
        expect(decide(f, &f->admin, app, 1, NULL, &out, &e), &e, 0, NULL, "approve");
        if (strcmp(json_string_value(json_object_get(out, "state")), "issued") != 0)
                fail_msg("not issued: %s", json_string_value(json_object_get(out, "issue_error")));
        gmca_strlcpy(serial, json_string_value(json_object_get(out, "serial")),
                     GMCA_SERIAL_HEX_MAX);
        assert_non_null(strstr(json_string_value(json_object_get(out, "certificate")),
                               "-----BEGIN CERTIFICATE-----"));
        json_decref(out);
        return app;
}

/* Clear e, make the call, compare (testutil.h expect). */
#define CHECK(call, want, msg, what)                                                               \
        do {                                                                                       \
                gmca_error_clear(&e);                                                              \
                expect((call), &e, (want), (msg), (what));                                         \
        } while (0)

/* ---- tests ---- */

static void test_bodies(void **state)
{
        static const struct {
                int which; /* 0 applicant, 1 application(new), 2 vet, 3 revocation, 4 reject,
                              5 application(reissue), 6 applicant correction, 7 approve */
                const char *body;
                int rc;
                const char *msg;
        } cases[] = {
            {0,
             "{\"kind\":\"individual\",\"name\":\"a\",\"id_type\":\"passport\",\"id_number\":"
             "\"E1234567\"}",
             0, NULL},
            {0, "", GMCA_ERR_INVALID, "JSON object is required"},
            {0, "[1]", GMCA_ERR_INVALID, "must be a JSON object"},
            {0, "{\"kind\":\"device\",\"kind\":\"device\"}", GMCA_ERR_INVALID, "not JSON"},
            {0, "{\"kind\":\"individual\",\"nmae\":\"x\"}", GMCA_ERR_INVALID,
             "unknown key \"nmae\""},
            {0, "{\"kind\":\"individual\",\"name\":1}", GMCA_ERR_INVALID, "name: must be a string"},
            {0, "{\"kind\":\"individual\",\"name\":\"a\\u0000b\"}", GMCA_ERR_INVALID, "not JSON"},
            {0, "{\"kind\":\"individual\",\"name\":\"\xff\"}", GMCA_ERR_INVALID, "not JSON"},
            {0, "{\"kind\":\"individual\",\"name\":\"a\\u0007\"}", GMCA_ERR_INVALID, "control"},
            {0, "{\"kind\":\"alien\",\"name\":\"a\"}", GMCA_ERR_INVALID, "kind: required"},
            {0,
             "{\"kind\":\"individual\",\"name\":\"a\",\"id_type\":\"resident_id\",\"id_number\":"
             "\"110105194912310021\"}",
             GMCA_ERR_INVALID, "id_number: "},
            {0,
             "{\"kind\":\"individual\",\"name\":\"a\",\"id_type\":\"passport\",\"id_number\":"
             "\"E1\"}",
             GMCA_ERR_INVALID, "at least 6"},
            {0,
             "{\"kind\":\"individual\",\"name\":\"a\",\"id_type\":\"passport\",\"id_number\":"
             "\"E1234567\",\"uscc\":\"" USCC_OK "\"}",
             GMCA_ERR_INVALID, "uscc: does not apply to kind individual"},
            {0, "{\"kind\":\"organization\",\"name\":\"a\",\"uscc\":\"" USCC_OK "\"}",
             GMCA_ERR_INVALID, "address: required"},
            {0,
             "{\"kind\":\"organization\",\"name\":\"a\",\"uscc\":\"91350100M000100Y44\","
             "\"address\":\"x\"}",
             GMCA_ERR_INVALID, "uscc: "},
            {0, "{\"kind\":\"device\",\"name\":\"a\",\"owner_org\":\"o\"}", GMCA_ERR_INVALID,
             "one at least"},
            {0, "{\"kind\":\"device\",\"name\":\"a\",\"owner_org\":\"o\",\"ip\":\"999.1.1.1\"}",
             GMCA_ERR_INVALID, "ip: "},
            {0,
             "{\"kind\":\"device\",\"name\":\"a\",\"owner_org\":\"o\",\"domain\":\"www.example."
             "cn\"}",
             0, NULL},
            {1, "{\"profile\":\"personal-sign\",\"csr\":\"AAAA\"}", GMCA_ERR_INVALID,
             "applicant: required"},
            {1, "{\"applicant\":1,\"csr\":\"AAAA\"}", GMCA_ERR_INVALID, "profile: required"},
            {1, "{\"applicant\":0,\"profile\":\"p\",\"csr\":\"AAAA\"}", GMCA_ERR_INVALID,
             "applicant: must be 1.."},
            {1, "{\"applicant\":1,\"profile\":\"p\",\"csr\":\"AAAA\",\"days\":\"9\"}",
             GMCA_ERR_INVALID, "days: must be an integer"},
            {1, "{\"applicant\":1,\"profile\":\"p\",\"csr\":\"AAAA\",\"carrier\":\"lost\"}",
             GMCA_ERR_INVALID, "carrier: only for a reissue"},
            {1, "{\"applicant\":1,\"profile\":\"p\",\"csr\":\"AAAA\",\"materials\":[1]}",
             GMCA_ERR_INVALID, "materials[0]: must be a string"},
            {1, "{\"applicant\":1,\"profile\":\"p\",\"csr\":\"AAAA\",\"subject_info\":[]}",
             GMCA_ERR_INVALID, "subject_info: must be an object"},
            {1, "{\"applicant\":1,\"profile\":\"p\",\"csr\":\"AAAA\"}", 0, NULL},
            {5, "{\"csr\":\"AAAA\"}", GMCA_ERR_INVALID, "carrier: required"},
            {5, "{\"csr\":\"AAAA\",\"carrier\":\"stolen\"}", GMCA_ERR_INVALID, "carrier"},
            {5, "{\"csr\":\"AAAA\",\"carrier\":\"lost\",\"days\":10}", GMCA_ERR_INVALID,
             "CPS §3.7"},
            {5, "{\"csr\":\"AAAA\",\"carrier\":\"damaged\"}", 0, NULL},
            {2, "{\"method\":\"in_person\",\"result\":\"pass\"}", GMCA_ERR_INVALID,
             "documents: required"},
            {2, "{\"method\":\"in_person\",\"result\":\"pass\",\"documents\":[]}", GMCA_ERR_INVALID,
             "one document at least"},
            {2, "{\"method\":\"telepathy\",\"result\":\"pass\",\"documents\":[\"x\"]}",
             GMCA_ERR_INVALID, "method"},
            {2, "{\"method\":\"video\",\"result\":\"maybe\",\"documents\":[\"x\"]}",
             GMCA_ERR_INVALID, "result"},
            {2, "{\"method\":\"video\",\"result\":\"fail\",\"documents\":[\"x\"]}",
             GMCA_ERR_INVALID, "submission: required"},
            {2,
             "{\"method\":\"video\",\"result\":\"fail\",\"documents\":[\"x\"],\"submission\":"
             "\"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\"}",
             GMCA_ERR_INVALID, "submission: required"},
            {2,
             "{\"method\":\"video\",\"result\":\"fail\",\"documents\":[\"x\"],"
             "\"submission\":\"abababababababababababababababababababababababababababababababab\"}",
             0, NULL},
            {7, "", GMCA_ERR_INVALID, "submission: required"},
            {7, "{\"reason\":\"ok\"}", GMCA_ERR_INVALID, "submission: required"},
            {7, "{\"submission\":\"abab\"}", GMCA_ERR_INVALID, "submission"},
            {7,
             "{\"submission\":"
             "\"abababababababababababababababababababababababababababababababab\"}",
             0, NULL},
            {4, "{\"reason\":\"x\",\"submission\":\"zz\"}", GMCA_ERR_INVALID, "submission"},
            {4, "", GMCA_ERR_INVALID, "reason: required"},
            {4, "{}", GMCA_ERR_INVALID, "reason: required"},
            {4, "{\"reason\":\"材料不全\"}", 0, NULL},
            {3, "{\"serial\":\"zz\",\"reason\":\"H\",\"requester\":\"subscriber\"}",
             GMCA_ERR_INVALID, "serial"},
            {3, "{\"serial\":\"0a\",\"reason\":\"J\",\"requester\":\"subscriber\"}",
             GMCA_ERR_INVALID, "reason"},
            {3, "{\"serial\":\"0a\",\"reason\":\"H\",\"requester\":\"ca\"}", GMCA_ERR_POLICY,
             "a ca may not"},
            {3, "{\"serial\":\"0a\",\"reason\":\"E\",\"requester\":\"judicial\"}", GMCA_ERR_POLICY,
             "judicial may not"},
            {3, "{\"serial\":\"0a\",\"reason\":\"B\",\"requester\":\"judicial\"}", GMCA_ERR_INVALID,
             "document_ref"},
            {3,
             "{\"serial\":\"0a\",\"reason\":\"B\",\"requester\":\"judicial\",\"authority\":"
             "\"某法院\","
             "\"document_ref\":\"(2024)京01刑初1号\"}",
             0, NULL},
            {3,
             "{\"serial\":\"0a\",\"reason\":\"H\",\"requester\":\"subscriber\",\"authority\":"
             "\"x\"}",
             GMCA_ERR_INVALID, "only for a judicial"},
            {6, "{}", GMCA_ERR_INVALID, "nothing to correct"},
            {6, "{\"kind\":\"device\"}", GMCA_ERR_INVALID, "kind: cannot be changed"},
            {6, "{\"contact\":null}", 0, NULL},
            {6, "{\"name\":null}", GMCA_ERR_INVALID, "name: must be a string"},
            {6, "{\"id_type\":\"passport\"}", GMCA_ERR_INVALID, "give id_number"},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                const uint8_t *b = (const uint8_t *)cases[i].body;
                size_t n = strlen(cases[i].body);
                char what[32];
                int rc;

                snprintf(what, sizeof(what), "case %zu", i);
                switch (cases[i].which) {
                case 0:
                case 6: {
                        struct ra_applicant_body x;

                        rc = ra_applicant_parse(b, n, cases[i].which == 0, &x, &e);
                        ra_applicant_body_clear(&x);
                        break;
                }
                case 1:
                case 5: {
                        struct ra_application_body x;

                        rc = ra_application_parse(
                            b, n, cases[i].which == 1 ? GMCA_APP_NEW : GMCA_APP_REISSUE, &x, &e);
                        ra_application_body_clear(&x);
                        break;
                }
                case 2: {
                        struct ra_vet_body x;

                        rc = ra_vet_parse(b, n, &x, &e);
                        ra_vet_body_clear(&x);
                        break;
                }
                case 3: {
                        struct ra_revocation_body x;

                        rc = ra_revocation_parse(b, n, &x, &e);
                        ra_revocation_body_clear(&x);
                        break;
                }
                default: {
                        struct ra_decide_body x;

                        rc = ra_decide_parse(b, n, cases[i].which == 7, &x, &e);
                        ra_decide_body_clear(&x);
                        break;
                }
                }
                expect(rc, &e, cases[i].rc, cases[i].msg, what);
        }
}

static void test_caps(void **state)
{
        struct ra_applicant_body a;
        struct ra_vet_body v;
        struct gmca_error e = {0};
        char body[4096], big[200];
        size_t n;

        (void)state;
        memset(big, 'x', 129);
        big[129] = '\0';
        snprintf(body, sizeof(body), "{\"kind\":\"individual\",\"name\":\"%s\"}", big);
        CHECK(ra_applicant_parse((uint8_t *)body, strlen(body), 1, &a, &e), GMCA_ERR_INVALID,
              "name: longer than 128", "name cap");
        big[128] = '\0';
        snprintf(body, sizeof(body),
                 "{\"kind\":\"individual\",\"name\":\"%s\",\"id_type\":\"other\",\"id_number\":"
                 "\"军字第123456号\"}",
                 big);
        gmca_error_clear(&e);
        CHECK(ra_applicant_parse((uint8_t *)body, strlen(body), 1, &a, &e), 0, NULL, "name at cap");
        ra_applicant_body_clear(&a);
        n = (size_t)snprintf(body, sizeof(body),
                             "{\"method\":\"video\",\"result\":\"pass\",\"documents\":[");
        for (int i = 0; i < 33; i++)
                n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"d%d\"", i ? "," : "", i);
        snprintf(body + n, sizeof(body) - n, "]}");
        gmca_error_clear(&e);
        CHECK(ra_vet_parse((uint8_t *)body, strlen(body), &v, &e), GMCA_ERR_INVALID,
              "more than 32 items", "list cap");
        gmca_error_clear(&e);
        CHECK(ra_vet_parse((uint8_t *)body, GMCA_AUTH_BODY_MAX + 1, &v, &e), GMCA_ERR_LIMIT, NULL,
              "body cap");
}

static void test_working_time(void **state)
{
        /* 2024-01-01 00:00 China Standard Time was a Monday. */
        const int64_t mon = 1704038400;
        static const struct {
                int64_t from, to, want;
        } cases[] = {
            {0, 0, 0},
            {0, DAY, DAY},                               /* Monday */
            {0, 7 * DAY, 5 * DAY},                       /* a week */
            {5 * DAY, 7 * DAY, 0},                       /* the weekend */
            {4 * DAY + DAY / 2, 7 * DAY + DAY / 2, DAY}, /* Friday noon to Monday noon */
            {2 * DAY, DAY, 0},                           /* backwards */
            {-7 * DAY, 14 * DAY, 15 * DAY},              /* three weeks */
            {5 * DAY + 3600, 5 * DAY + 7200, 0},         /* Saturday */
            {-DAY / 3, DAY / 3, DAY / 3},                /* Sunday 16:00 to Monday 08:00 */
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (gmca_ra_working_seconds(mon + cases[i].from, mon + cases[i].to) !=
                    cases[i].want)
                        fail_msg("case %zu: %lld, want %lld", i,
                                 (long long)gmca_ra_working_seconds(mon + cases[i].from,
                                                                    mon + cases[i].to),
                                 (long long)cases[i].want);
        /* Friday 16:00 to 17:00 CST counts; Saturday 00:00 to 01:00 does not. */
        assert_int_equal(
            gmca_ra_working_seconds(mon + 4 * DAY + 16 * 3600, mon + 4 * DAY + 17 * 3600), 3600);
        assert_int_equal(gmca_ra_working_seconds(mon + 5 * DAY, mon + 5 * DAY + 3600), 0);
}

static void test_reason_codes(void **state)
{
        static const int want[9] = {3, 9, 9, 9, 1, 1, 5, 0, 0};

        (void)state;
        for (int i = 0; i < 9; i++)
                assert_int_equal(gmca_ra_reason_code((char)('A' + i)), want[i]);
        assert_int_equal(gmca_ra_reason_code('J'), -1);
        assert_int_equal(gmca_ra_reason_code('a'), -1);
        assert_int_equal(gmca_ra_reason_code('\0'), -1);
        assert_string_equal(ra_channel("a@b.cn"), "email");
        assert_string_equal(ra_channel("+86 138-0000-0000"), "sms");
        assert_string_equal(ra_channel("北京市某街道"), "counter");
        assert_string_equal(ra_channel(NULL), "counter");
}

static int contains(const uint8_t *hay, size_t n, const char *needle)
{
        size_t m = strlen(needle);

        for (size_t i = 0; i + m <= n; i++)
                if (memcmp(hay + i, needle, m) == 0)
                        return 1;
        return 0;
}

static const char SQL_SEALED[] = "SELECT id_sealed FROM applicants WHERE id = ?";
static const char SQL_SET_SEALED[] = "UPDATE applicants SET id_sealed = ? WHERE id = ?";

static void test_applicants(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_result who;
        struct gmca_error e = {0};
        struct audit_count ac;
        json_t *out = NULL;
        const char *patch = "{\"contact\":\"wang@example.cn\",\"name\":\"王晓明\"}";
        int64_t id, other, reads, n;
        struct gmca_q q;
        uint8_t *sealed = NULL;
        size_t len;

        f->now = (int64_t)gmca_now();
        id = person(f, "13800000000");
        other = person(f, "");
        /* Sealed at rest: the number is nowhere in the stored value. */
        assert_int_equal(gmca_q_open(f->s, SQL_SEALED, &q, &e), 0);
        gmca_q_int(&q, id);
        assert_int_equal(gmca_q_step(&q, &e, "sealed"), GMCA_DB_ROW);
        assert_int_equal(gmca_q_col_dup(&q, 0, &sealed, &len, &e), 0);
        gmca_q_close(&q);
        assert_true(len > strlen(ID_OK));
        assert_false(contains(sealed, len, ID_OK));

        /* Masked read, by a business operator. */
        signed_by(f, &f->entry, "GET", "/api/v1/applicants/1", NULL, &who);
        CHECK(gmca_ra_applicant_get(&f->env, &who, id, 0, f->now, &out, &e), 0, NULL, "get");
        assert_string_equal(json_string_value(json_object_get(out, "id_masked")),
                            "110*************2X");
        assert_null(json_object_get(out, "id_number"));
        json_decref(out);
        /* A full read is refused to the business operator, and that is audited. */
        n = audits(f, GMCA_EV_APPLICANT_READ, 0, NULL);
        CHECK(gmca_ra_applicant_get(&f->env, &who, id, 1, f->now, &out, &e), GMCA_ERR_FORBIDDEN,
              NULL, "full read by an operator");
        assert_int_equal(audits(f, GMCA_EV_APPLICANT_READ, 0, NULL), n + 1);
        gmca_auth_result_clear(&who);

        /* The business admin's full read shows the number and leaves a record. */
        reads = audits(f, GMCA_EV_APPLICANT_READ, 1, NULL);
        signed_by(f, &f->admin, "GET", "/api/v1/applicants/1?full=1", NULL, &who);
        gmca_error_clear(&e);
        CHECK(gmca_ra_applicant_get(&f->env, &who, id, 1, f->now, &out, &e), 0, NULL, "full read");
        assert_string_equal(json_string_value(json_object_get(out, "id_number")), ID_OK);
        json_decref(out);
        assert_int_equal(audits(f, GMCA_EV_APPLICANT_READ, 1, &ac), reads + 1);
        assert_string_equal(ac.last_actor, "admin");
        assert_null(strstr(ac.last_detail, ID_OK));

        /* Moved to another applicant's row, the sealed value does not open. */
        assert_int_equal(gmca_q_open(f->s, SQL_SET_SEALED, &q, &e), 0);
        gmca_q_blob(&q, sealed, len);
        gmca_q_int(&q, other);
        assert_int_equal(gmca_q_step(&q, &e, "move"), GMCA_DB_DONE);
        gmca_q_close(&q);
        gmca_error_clear(&e);
        CHECK(gmca_ra_applicant_get(&f->env, &who, other, 1, f->now, &out, &e), GMCA_ERR_VERIFY,
              NULL, "moved sealed value");
        gmca_auth_result_clear(&who);
        OPENSSL_free(sealed);

        /* Correction: the record names the fields, not the values. */
        signed_by(f, &f->entry, "PATCH", "/api/v1/applicants/1", patch, &who);
        gmca_error_clear(&e);
        CHECK(gmca_ra_applicant_correct(&f->env, &who, id, (const uint8_t *)patch, strlen(patch),
                                        f->now, &out, &e),
              0, NULL, "correct");
        assert_string_equal(json_string_value(json_object_get(out, "contact")), "wang@example.cn");
        json_decref(out);
        audits(f, GMCA_EV_APPLICANT_CORRECT, 1, &ac);
        assert_non_null(strstr(ac.last_detail, "contact"));
        assert_non_null(strstr(ac.last_detail, "name"));
        assert_null(strstr(ac.last_detail, "wang@"));
        gmca_auth_result_clear(&who);
        /* A field of another kind, and a bad new number, change nothing. */
        {
                const char *bad[] = {"{\"uscc\":\"" USCC_OK "\"}",
                                     "{\"id_number\":\"110105194912310021\"}"};

                for (int i = 0; i < 2; i++) {
                        n = audits(f, GMCA_EV_APPLICANT_CORRECT, 0, NULL);
                        signed_by(f, &f->entry, "PATCH", "/api/v1/applicants/1", bad[i], &who);
                        gmca_error_clear(&e);
                        CHECK(gmca_ra_applicant_correct(&f->env, &who, id, (const uint8_t *)bad[i],
                                                        strlen(bad[i]), f->now, &out, &e),
                              GMCA_ERR_INVALID, NULL, "bad correction");
                        assert_int_equal(audits(f, GMCA_EV_APPLICANT_CORRECT, 0, NULL), n + 1);
                        gmca_auth_result_clear(&who);
                }
        }
        /* A new number is sealed again and read back in full. */
        {
                const char *nb = "{\"id_type\":\"passport\",\"id_number\":\"E98765432\"}";

                signed_by(f, &f->entry, "PATCH", "/api/v1/applicants/1", nb, &who);
                gmca_error_clear(&e);
                CHECK(gmca_ra_applicant_correct(&f->env, &who, id, (const uint8_t *)nb, strlen(nb),
                                                f->now, &out, &e),
                      0, NULL, "new number");
                assert_string_equal(json_string_value(json_object_get(out, "id_masked")),
                                    "E98****32");
                json_decref(out);
                gmca_auth_result_clear(&who);
                signed_by(f, &f->admin, "GET", "/api/v1/applicants/1?full=1", NULL, &who);
                CHECK(gmca_ra_applicant_get(&f->env, &who, id, 1, f->now, &out, &e), 0, NULL,
                      "full read of the new number");
                assert_string_equal(json_string_value(json_object_get(out, "id_number")),
                                    "E98765432");
                json_decref(out);
                gmca_auth_result_clear(&who);
        }
        /* Listing: masked, filtered. */
        signed_by(f, &f->vetter, "GET", "/api/v1/applicants?name=晓明", NULL, &who);
        CHECK(gmca_ra_applicant_list(&f->env, &who, "individual", "晓明", 0, 0, &out, &e), 0, NULL,
              "list");
        assert_true(json_integer_value(json_object_get(out, "total")) >= 1);
        {
                char *text = json_dumps(out, 0);

                assert_null(strstr(text, "E98765432"));
                assert_null(strstr(text, ID_OK));
                free(text);
        }
        json_decref(out);
        CHECK(gmca_ra_applicant_list(&f->env, &who, "alien", NULL, 0, 0, &out, &e),
              GMCA_ERR_INVALID, "kind", "list bad kind");
        gmca_auth_result_clear(&who);
        /* The audit admin reads no applicants. */
        signed_by(f, &f->auditor, "GET", "/api/v1/applicants", NULL, &who);
        gmca_error_clear(&e);
        CHECK(gmca_ra_applicant_list(&f->env, &who, NULL, NULL, 0, 0, &out, &e), GMCA_ERR_FORBIDDEN,
              NULL, "auditor lists applicants");
        gmca_auth_result_clear(&who);
}

static void test_workflow(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_result who;
        struct gmca_error e = {0};
        json_t *out = NULL;
        EVP_PKEY *key;
        int64_t applicant, app = 0, before, fails, notes;
        char *body;

        f->now = (int64_t)gmca_now();
        f->env.issue = t_issue;
        applicant = person(f, "wang@example.cn");
        assert_non_null(key = gmca_sm2_keygen(&e));
        body = personal_body(applicant, key, "王小明", 0);

        /* Bad submissions leave nothing but their audit record. */
        {
                char *wrong_profile = strdup(body), *p = strstr(wrong_profile, "personal-sign");
                const char *internal =
                    "{\"applicant\":1,\"profile\":\"operator\",\"csr\":\"AAAA\"}";

                memcpy(p, "operator-sign", 13);
                before = rows(f, "applications");
                fails = audits(f, GMCA_EV_APP_SUBMIT, 0, NULL);
                expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, wrong_profile, &app, &e), &e,
                       GMCA_ERR_NOTFOUND, NULL, "unknown profile");
                expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, internal, &app, &e), &e,
                       GMCA_ERR_POLICY, "custodians", "internal profile");
                free(wrong_profile);
                assert_int_equal(rows(f, "applications"), before);
                assert_int_equal(audits(f, GMCA_EV_APP_SUBMIT, 0, NULL), fails + 2);
        }
        /* The auditor may not submit. */
        expect(submit(f, &f->auditor, GMCA_APP_NEW, NULL, body, &app, &e), &e, GMCA_ERR_FORBIDDEN,
               NULL, "auditor submits");

        expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), &e, 0, NULL, "submit");
        /* Not vetted yet: no approval. */
        expect(decide(f, &f->admin, app, 1, NULL, NULL, &e), &e, GMCA_ERR_STATE, "vetted",
               "approve unvetted");
        /* The one who entered it may not vet it (§3.1.3). */
        fails = audits(f, GMCA_EV_APP_VET, 0, NULL);
        expect(vet(f, &f->entry, app, "pass", &e), &e, GMCA_ERR_POLICY,
               "CPS §3.1.3: the operator who vets must not be the one who entered", "self-vet");
        assert_int_equal(audits(f, GMCA_EV_APP_VET, 0, NULL), fails + 1);
        expect(vet(f, &f->vetter, app, "pass", &e), &e, 0, NULL, "vet");
        expect(vet(f, &f->vetter, app, "pass", &e), &e, GMCA_ERR_STATE, NULL, "vet twice");
        /* An operator or an auditor may not approve. */
        expect(decide(f, &f->vetter, app, 1, NULL, NULL, &e), &e, GMCA_ERR_FORBIDDEN, NULL,
               "operator approves");
        fails = audits(f, GMCA_EV_APP_APPROVE, 0, NULL);
        expect(decide(f, &f->auditor, app, 1, NULL, NULL, &e), &e, GMCA_ERR_FORBIDDEN, NULL,
               "auditor approves");
        assert_int_equal(audits(f, GMCA_EV_APP_APPROVE, 0, NULL), fails + 1);

        notes = rows(f, "notifications");
        expect(decide(f, &f->admin, app, 1, "{\"reason\":\"材料齐全\"}", &out, &e), &e, 0, NULL,
               "approve");
        assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
        assert_string_equal(json_string_value(json_object_get(out, "vetted_by")), "vetter");
        assert_string_equal(json_string_value(json_object_get(out, "decided_by")), "admin");
        assert_true(json_is_real(json_object_get(out, "working_days")));
        assert_true(json_is_false(json_object_get(out, "overdue")));
        json_decref(out);
        expect(decide(f, &f->admin, app, 0, "{\"reason\":\"x\"}", NULL, &e), &e, GMCA_ERR_STATE,
               NULL, "reject issued");

        /* Overdue after two working days (§3.2.3). */
        signed_by(f, &f->auditor, "GET", "/api/v1/applications/1", NULL, &who);
        {
                int64_t id2 = 0;

                free(body);
                body = personal_body(applicant, key, "王小明", 0);
                expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &id2, &e), &e, 0, NULL,
                       "second");
                CHECK(gmca_ra_application_get(&f->env, &who, id2, f->now + 5 * DAY, &out, &e), 0,
                      NULL, "get later");
                assert_true(json_is_true(json_object_get(out, "overdue")));
                assert_true(json_integer_value(json_object_get(out, "elapsed_seconds")) == 5 * DAY);
                json_decref(out);
                /* A failed vetting rejects it and tells the applicant. */
                notes = rows(f, "notifications");
                expect(vet(f, &f->vetter, id2, "fail", &e), &e, 0, NULL, "vet fail");
                assert_int_equal(rows(f, "notifications"), notes + 1);
                expect(decide(f, &f->admin, id2, 1, NULL, NULL, &e), &e, GMCA_ERR_STATE, NULL,
                       "approve rejected");
                gmca_auth_result_clear(&who);
                signed_by(f, &f->vetter, "GET", "/api/v1/notifications?application=2", NULL, &who);
                CHECK(gmca_ra_notifications(&f->env, &who, id2, &out, &e), 0, NULL, "notes");
                {
                        json_t *n0 = json_array_get(json_object_get(out, "items"), 0);

                        assert_string_equal(json_string_value(json_object_get(n0, "channel")),
                                            "email");
                        assert_non_null(strstr(json_string_value(json_object_get(n0, "text")),
                                               "证件照片与本人不符"));
                }
                json_decref(out);
        }
        gmca_auth_result_clear(&who);

        /* A business admin who entered an application may not approve it. */
        {
                int64_t id3 = 0;

                expect(submit(f, &f->admin, GMCA_APP_NEW, NULL, body, &id3, &e), &e, 0, NULL,
                       "admin submits");
                expect(vet(f, &f->vetter, id3, "pass", &e), &e, 0, NULL, "vet");
                expect(decide(f, &f->admin, id3, 1, NULL, NULL, &e), &e, GMCA_ERR_POLICY,
                       "CPS §3.1.3", "approve own");
                notes = rows(f, "notifications");
                expect(decide(f, &f->admin2, id3, 0, NULL, NULL, &e), &e, GMCA_ERR_INVALID,
                       "reason", "reject without reason");
                expect(decide(f, &f->admin2, id3, 0, "{\"reason\":\"申请表未签字\"}", NULL, &e), &e,
                       0, NULL, "reject");
                assert_int_equal(rows(f, "notifications"), notes + 1);
        }
        /* Lists. */
        signed_by(f, &f->auditor, "GET", "/api/v1/applications?state=rejected", NULL, &who);
        CHECK(
            gmca_ra_application_list(&f->env, &who, "rejected", applicant, 0, 0, f->now, &out, &e),
            0, NULL, "list");
        assert_int_equal(json_integer_value(json_object_get(out, "total")), 2);
        json_decref(out);
        CHECK(gmca_ra_application_list(&f->env, &who, "limbo", 0, 0, 0, f->now, &out, &e),
              GMCA_ERR_INVALID, NULL, "list bad state");
        gmca_auth_result_clear(&who);
        free(body);
        EVP_PKEY_free(key);
}

/* Tamper with the row behind the CA engine's back: each must be caught. */
static const char SQL_T_DAYS[] = "UPDATE applications SET days = 999 WHERE id = ?";
static const char SQL_T_VETTER[] = "UPDATE applications SET vetted_by = submitted_by WHERE id = ?";
static const char SQL_T_VETAUTH[] =
    "UPDATE applications SET vet_auth = (SELECT submit_auth FROM applications WHERE id = ?)"
    " WHERE id = ?";
static const char SQL_T_PROFILE[] =
    "UPDATE applications SET profile = 'gov-staff-sign' WHERE id = ?";
static const char SQL_T_STATE[] = "UPDATE applications SET state = 'approved' WHERE id = ?";

static void run_sql(struct fixture *f, const char *sql, int64_t id, int twice)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(f->s, sql, &q, &e), 0);
        gmca_q_int(&q, id);
        if (twice)
                gmca_q_int(&q, id);
        assert_int_equal(gmca_q_step(&q, &e, "tamper"), GMCA_DB_DONE);
        gmca_q_close(&q);
}

static void test_check_approvals(void **state)
{
        struct fixture *f = *state;
        struct gmca_ra_approved a;
        struct gmca_error e = {0};
        int64_t applicant, app = 0;
        EVP_PKEY *key;
        char *body;
        static const struct {
                const char *sql;
                int twice;
                int rc;
                const char *msg;
        } tampers[] = {
            {SQL_T_DAYS, 0, GMCA_ERR_AUTH, "days is not what entry signed"},
            {SQL_T_PROFILE, 0, GMCA_ERR_AUTH, "profile is not what entry signed"},
            {SQL_T_VETTER, 0, GMCA_ERR_AUTH, "signed by vetter, the record says entry"},
            {SQL_T_VETAUTH, 1, GMCA_ERR_AUTH, "signed by entry, the record says vetter"},
        };

        f->now = (int64_t)gmca_now();
        f->env.issue = NULL; /* approvals stay approved: the check runs on its own */
        applicant = person(f, "");
        assert_non_null(key = gmca_sm2_keygen(&e));
        for (size_t i = 0; i < sizeof(tampers) / sizeof(tampers[0]) + 1; i++) {
                json_t *out = NULL;
                char what[32];

                snprintf(what, sizeof(what), "tamper %zu", i);
                body = personal_body(applicant, key, "王小明", 30);
                expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), &e, 0, NULL,
                       "submit");
                free(body);
                expect(vet(f, &f->vetter, app, "pass", &e), &e, 0, NULL, "vet");
                expect(decide(f, &f->admin, app, 1, NULL, &out, &e), &e, 0, NULL, "approve");
                assert_string_equal(json_string_value(json_object_get(out, "state")), "approved");
                json_decref(out);
                if (i == sizeof(tampers) / sizeof(tampers[0])) {
                        /* Untouched: it passes, naming the three people. */
                        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), 0, NULL,
                              "clean");
                        assert_string_equal(a.submitted_by, "entry");
                        assert_string_equal(a.vetted_by, "vetter");
                        assert_string_equal(a.approved_by, "admin");
                        assert_string_equal(a.profile, "personal-sign");
                        assert_int_equal(a.days, 30);
                        assert_non_null(a.info_json);
                        gmca_ra_approved_clear(&a);
                        break;
                }
                run_sql(f, tampers[i].sql, app, tampers[i].twice);
                CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), tampers[i].rc,
                      tampers[i].msg, what);
                gmca_error_clear(&e);
        }
        /* Forged with real proofs of the wrong people: the two-person rule holds. */
        {
                static const char set_vet[] = "UPDATE applications SET vetted_by = ?, vet_auth = ?"
                                              " WHERE id = ?";
                static const char set_dec[] = "UPDATE applications SET decided_by = ?,"
                                              " decide_auth = ? WHERE id = ?";
                char vb[256], ab[128], sub[RA_SUBMISSION_HEX + 1];
                struct gmca_auth_result who;
                char target[96];
                struct gmca_q q;
                json_t *out = NULL;

                for (int k = 0; k < 2; k++) {
                        const struct op *who_op = k == 0 ? &f->entry : &f->admin;

                        body = personal_body(applicant, key, "王小明", 0);
                        CHECK(submit(f, who_op, GMCA_APP_NEW, NULL, body, &app, &e), 0, NULL,
                              "submit");
                        free(body);
                        CHECK(vet(f, &f->vetter, app, "pass", &e), 0, NULL, "vet");
                        CHECK(decide(f, &f->admin2, app, 1, NULL, &out, &e), 0, NULL, "approve");
                        json_decref(out);
                        snprintf(target, sizeof(target), "/api/v1/applications/%lld/%s",
                                 (long long)app, k == 0 ? "vet" : "approve");
                        /* The forger names the right submission: the two-person rule
                         * is what stops it. */
                        submission_of(f, app, sub);
                        snprintf(vb, sizeof(vb),
                                 "{\"method\":\"video\",\"documents\":[\"x\"],"
                                 "\"result\":\"pass\",\"submission\":\"%s\"}",
                                 sub);
                        snprintf(ab, sizeof(ab), "{\"submission\":\"%s\"}", sub);
                        signed_by(f, who_op, "POST", target, k == 0 ? vb : ab, &who);
                        assert_int_equal(gmca_q_open(f->s, k == 0 ? set_vet : set_dec, &q, &e), 0);
                        gmca_q_text(&q, who_op->name);
                        gmca_q_blob(&q, who.proof, who.proof_len);
                        gmca_q_int(&q, app);
                        assert_int_equal(gmca_q_step(&q, &e, "forge"), GMCA_DB_DONE);
                        gmca_q_close(&q);
                        gmca_auth_result_clear(&who);
                        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e),
                              GMCA_ERR_POLICY,
                              k == 0 ? "vetted by entry, who entered it"
                                     : "approved by admin, who entered it",
                              "same person twice");
                }
        }
        /* A submitted application, made to look approved. */
        body = personal_body(applicant, key, "王小明", 0);
        expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), &e, 0, NULL, "submit");
        free(body);
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_STATE,
              "not approved", "submitted");
        gmca_error_clear(&e);
        run_sql(f, SQL_T_STATE, app, 0);
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_AUTH,
              "no signed vet request", "forged state");
        gmca_error_clear(&e);
        /* The issue step refuses an application that is not approved. */
        {
                struct gmca_auth_result who;
                json_t *out = NULL;

                signed_by(f, &f->admin, "POST", "/api/v1/applications/1/issue", NULL, &who);
                CHECK(gmca_ra_application_issue(&f->env, &who, 1, f->now, &out, &e), GMCA_ERR_STATE,
                      NULL, "issue issued");
                gmca_auth_result_clear(&who);
        }
        EVP_PKEY_free(key);
        f->env.issue = t_issue;
}

static char *lifecycle_body(EVP_PKEY *key, const char *extra)
{
        char *csr = csr_b64(key, NULL, NULL, "王小明");
        size_t n = strlen(csr) + strlen(extra) + 512;
        char *text = malloc(n);

        assert_non_null(text);
        snprintf(text, n,
                 "{\"csr\":\"%s\",\"subject_info\":{\"identity_card_number\":\"" ID_OK "\"}%s%s}",
                 csr, extra[0] ? "," : "", extra);
        free(csr);
        return text;
}

/* vet + approve of a submitted lifecycle application; returns the result's state. */
static json_t *vet_approve(struct fixture *f, int64_t app)
{
        struct gmca_error e = {0};
        json_t *out = NULL;

        expect(vet(f, &f->vetter, app, "pass", &e), &e, 0, NULL, "vet");
        expect(decide(f, &f->admin, app, 1, NULL, &out, &e), &e, 0, NULL, "approve");
        return out;
}

static void test_renewal(void **state)
{
        struct fixture *f = *state;
        struct gmca_cert_rec old, neu;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        EVP_PKEY *key, *other;
        int64_t applicant, app = 0, t0;
        json_t *out;
        char *body;

        memset(&old, 0, sizeof(old));
        memset(&neu, 0, sizeof(neu));
        t0 = f->now = (int64_t)gmca_now();
        f->env.issue = t_issue;
        applicant = person(f, "13800000000");
        issue_personal(f, applicant, &key, 40, serial);
        assert_int_equal(gmca_store_cert_get(f->s, serial, &old, &e), 0);
        assert_non_null(other = gmca_sm2_keygen(&e));

        body = lifecycle_body(key, "");
        /* Day 31 before expiry: refused; day 30: accepted (§3.6.2). */
        f->now = old.not_after - 31 * DAY;
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, body, &app, &e), &e, GMCA_ERR_POLICY,
               "CPS §3.6.2", "day 31");
        f->now = old.not_after - 30 * DAY - 1;
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, body, &app, &e), &e, GMCA_ERR_POLICY,
               "CPS §3.6.2", "a second early");
        f->now = old.not_after;
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, body, &app, &e), &e, GMCA_ERR_STATE,
               "expired", "expired");
        f->now = old.not_after - 30 * DAY;
        {
                char *k2 = lifecycle_body(other, "");

                expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, k2, &app, &e), &e,
                       GMCA_ERR_POLICY, "keeps the key", "new key");
                free(k2);
        }
        expect(submit(f, &f->entry, GMCA_APP_RENEW, "ABCDEF0123", body, &app, &e), &e,
               GMCA_ERR_NOTFOUND, NULL, "unknown serial");
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, body, &app, &e), &e, 0, NULL, "day 30");
        /* One application at a time per certificate. */
        {
                char *k2 = lifecycle_body(other, "");

                expect(submit(f, &f->entry, GMCA_APP_REKEY, serial, k2, &app, &e), &e,
                       GMCA_ERR_EXISTS, "open application", "second while open");
                free(k2);
        }
        out = vet_approve(f, app);
        assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
        assert_int_equal(
            gmca_store_cert_get(f->s, json_string_value(json_object_get(out, "serial")), &neu, &e),
            0);
        json_decref(out);
        /* Renewal keeps the key and leaves the old certificate to run out. */
        gmca_cert_rec_clear(&old);
        assert_int_equal(gmca_store_cert_get(f->s, serial, &old, &e), 0);
        assert_int_equal(old.status, GMCA_CERT_VALID);
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, body, &app, &e), &e, GMCA_ERR_STATE,
               "already replaced", "renew twice");
        free(body);

        /* Rekey of the renewed one: same key refused, a new key accepted; old superseded. */
        {
                char *same = lifecycle_body(key, ""), *fresh = lifecycle_body(other, "");

                f->now = t0 + 60;
                expect(submit(f, &f->entry, GMCA_APP_REKEY, neu.serial, same, &app, &e), &e,
                       GMCA_ERR_POLICY, "new key pair", "rekey same key");
                expect(submit(f, &f->entry, GMCA_APP_REKEY, neu.serial, fresh, &app, &e), &e, 0,
                       NULL, "rekey");
                out = vet_approve(f, app);
                assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
                gmca_strlcpy(serial, json_string_value(json_object_get(out, "serial")),
                             sizeof(serial));
                json_decref(out);
                gmca_cert_rec_clear(&old);
                assert_int_equal(gmca_store_cert_get(f->s, neu.serial, &old, &e), 0);
                assert_int_equal(old.status, GMCA_CERT_REVOKED);
                /* A revoked certificate is not renewed. */
                expect(submit(f, &f->entry, GMCA_APP_RENEW, neu.serial, same, &app, &e), &e,
                       GMCA_ERR_STATE, "revoked", "renew revoked");
                free(same);
                free(fresh);
        }
        /* Reissue of the rekeyed one (§3.7): carrier lost; ends when the old one does. */
        {
                char *lost = lifecycle_body(other, "\"carrier\":\"lost\""),
                     *none = lifecycle_body(other, "");
                struct gmca_cert_rec r2;

                memset(&r2, 0, sizeof(r2));
                expect(submit(f, &f->entry, GMCA_APP_REISSUE, serial, none, &app, &e), &e,
                       GMCA_ERR_INVALID, "carrier", "reissue without carrier");
                expect(submit(f, &f->entry, GMCA_APP_REISSUE, serial, lost, &app, &e), &e, 0, NULL,
                       "reissue");
                out = vet_approve(f, app);
                assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
                assert_string_equal(json_string_value(json_object_get(out, "carrier")), "lost");
                assert_int_equal(
                    gmca_store_cert_get(f->s, json_string_value(json_object_get(out, "serial")),
                                        &r2, &e),
                    0);
                gmca_cert_rec_clear(&old);
                assert_int_equal(gmca_store_cert_get(f->s, serial, &old, &e), 0);
                assert_int_equal(r2.not_after, old.not_after);
                assert_int_equal(old.status, GMCA_CERT_REVOKED);
                assert_int_equal(old.reason, 1);
                json_decref(out);
                gmca_cert_rec_clear(&r2);
                free(lost);
                free(none);
        }
        gmca_cert_rec_clear(&old);
        gmca_cert_rec_clear(&neu);
        EVP_PKEY_free(key);
        EVP_PKEY_free(other);
        f->now = (int64_t)gmca_now();
}

static void test_org_renewal(void **state)
{
        struct fixture *f = *state;
        struct gmca_cert_rec old;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX], *csr, *text;
        EVP_PKEY *key;
        int64_t org, app = 0;
        json_t *b, *out;

        memset(&old, 0, sizeof(old));
        f->now = (int64_t)gmca_now();
        f->env.issue = t_issue;
        org = new_applicant(
            f, "{\"kind\":\"organization\",\"name\":\"某某市数据局\",\"uscc\":\"" USCC_OK
               "\",\"address\":\"某某市某某路 1 号\",\"contact\":\"0591-1234567\"}");
        assert_non_null(key = gmca_sm2_keygen(&e));
        csr = csr_b64(key, "某某市数据局", NULL, "某某市数据局");
        b = json_pack("{s:I, s:s, s:s, s:i, s:{s:s}}", "applicant", (json_int_t)org, "profile",
                      "org-sign", "csr", csr, "days", 40, "subject_info",
                      "unified_social_credit_code", USCC_OK);
        text = json_dumps(b, JSON_COMPACT);
        expect(submit(f, &f->entry, GMCA_APP_NEW, NULL, text, &app, &e), &e, 0, NULL, "org");
        free(text);
        out = vet_approve(f, app);
        gmca_strlcpy(serial, json_string_value(json_object_get(out, "serial")), sizeof(serial));
        json_decref(out);
        assert_int_equal(gmca_store_cert_get(f->s, serial, &old, &e), 0);
        f->now = old.not_after - 10 * DAY;
        json_object_del(b, "applicant");
        json_object_del(b, "days");
        text = json_dumps(b, JSON_COMPACT);
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, text, &app, &e), &e, GMCA_ERR_POLICY,
               "affiliation", "org renewal without affiliation");
        free(text);
        json_object_set_new(b, "affiliation_confirmed", json_true());
        text = json_dumps(b, JSON_COMPACT);
        expect(submit(f, &f->entry, GMCA_APP_RENEW, serial, text, &app, &e), &e, 0, NULL,
               "org renewal");
        free(text);
        /* Another applicant may not take over the certificate. */
        json_decref(b);
        gmca_cert_rec_clear(&old);
        free(csr);
        EVP_PKEY_free(key);
        f->now = (int64_t)gmca_now();
}

/*
 * The front writes the database; what the CA engine signs must still be what
 * three people signed, once. Also: a renewal carries the old certificate's
 * subject information over (CPS §3.6.2), and new information is a change.
 */
static const char SQL_T_SWAP[] = "UPDATE applications SET csr = ?, info_json = ?, submit_auth = ?"
                                 " WHERE id = ?";
static const char SQL_T_REPLAY[] = "UPDATE applications SET state = 'approved', issued_serial = "
                                   "NULL, issued_at = NULL WHERE id = ?";
static const char SQL_T_INFO[] = "UPDATE applications SET info_json = ? WHERE id = ?";

static void test_bound_approvals(void **state)
{
        struct fixture *f = *state;
        struct ra_application_body b;
        struct gmca_auth_result who;
        struct gmca_ra_approved a;
        struct gmca_cert_rec old;
        struct gmca_error e = {0};
        struct gmca_q q;
        char serial[GMCA_SERIAL_HEX_MAX], *body, *info = NULL, *old_info = NULL, *new_info = NULL;
        uint8_t *der = NULL;
        size_t der_len = 0;
        EVP_PKEY *key, *key2;
        int64_t applicant, app = 0, app2 = 0;
        json_t *out = NULL;

        memset(&old, 0, sizeof(old));
        f->now = (int64_t)gmca_now();
        f->env.issue = NULL;
        applicant = person(f, "");
        assert_non_null(key = gmca_sm2_keygen(&e));
        assert_non_null(key2 = gmca_sm2_keygen(&e));

        /* 1. Vetted and approved for one submission, then another written in its place
         * (signed by the submitter, who is the attacker): refused. */
        body = personal_body(applicant, key, "王小明", 0);
        CHECK(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), 0, NULL, "submit");
        free(body);
        CHECK(vet(f, &f->vetter, app, "pass", &e), 0, NULL, "vet");
        CHECK(decide(f, &f->admin, app, 1, NULL, NULL, &e), 0, NULL, "approve");
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), 0, NULL, "clean");
        gmca_ra_approved_clear(&a);
        body = personal_body(applicant, key2, "李四", 0);
        assert_int_equal(
            ra_application_parse((const uint8_t *)body, strlen(body), GMCA_APP_NEW, &b, &e), 0);
        assert_int_equal(ra_csr_der(b.csr, &der, &der_len, &e), 0);
        assert_int_equal(ra_info_text(b.subject_info, &info, &e), 0);
        ra_application_body_clear(&b);
        signed_by(f, &f->entry, "POST", "/api/v1/applications", body, &who);
        assert_int_equal(gmca_q_open(f->s, SQL_T_SWAP, &q, &e), 0);
        gmca_q_blob(&q, der, der_len);
        gmca_q_text(&q, info);
        gmca_q_blob(&q, who.proof, who.proof_len);
        gmca_q_int(&q, app);
        assert_int_equal(gmca_q_step(&q, &e, "swap"), GMCA_DB_DONE);
        gmca_q_close(&q);
        gmca_auth_result_clear(&who);
        OPENSSL_free(der);
        free(info);
        free(body);
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_AUTH,
              "the signed vetting is about submission", "swapped submission");

        /* 2. The front refuses a vetting or an approval of another submission. */
        body = personal_body(applicant, key, "王小明", 0);
        CHECK(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app2, &e), 0, NULL, "submit 2");
        free(body);
        {
                char sub[RA_SUBMISSION_HEX + 1], vb[512], target[96];
                int64_t fails = audits(f, GMCA_EV_APP_VET, 0, NULL);

                submission_of(f, app, sub); /* application 1's */
                snprintf(vb, sizeof(vb),
                         "{\"method\":\"video\",\"documents\":[\"x\"],\"result\":\"pass\","
                         "\"submission\":\"%s\"}",
                         sub);
                snprintf(target, sizeof(target), "/api/v1/applications/%lld/vet", (long long)app2);
                signed_by(f, &f->vetter, "POST", target, vb, &who);
                CHECK(gmca_ra_application_vet(&f->env, &who, app2, (const uint8_t *)vb, strlen(vb),
                                              f->now, &out, &e),
                      GMCA_ERR_STATE, "read it again", "vet of another submission");
                gmca_auth_result_clear(&who);
                assert_int_equal(audits(f, GMCA_EV_APP_VET, 0, NULL), fails + 1);
                CHECK(vet(f, &f->vetter, app2, "pass", &e), 0, NULL, "vet 2");
                snprintf(vb, sizeof(vb), "{\"submission\":\"%s\"}", sub);
                CHECK(decide(f, &f->admin, app2, 1, vb, NULL, &e), GMCA_ERR_STATE, "read it again",
                      "approval of another submission");
        }

        /* 3. Issued, then made to look approved again: an approval is spent once. */
        f->env.issue = t_issue;
        CHECK(decide(f, &f->admin, app2, 1, NULL, &out, &e), 0, NULL, "approve 2");
        assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
        gmca_strlcpy(serial, json_string_value(json_object_get(out, "serial")), sizeof(serial));
        json_decref(out);
        run_sql(f, SQL_T_REPLAY, app2, 0);
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app2, f->now, &a, &e), GMCA_ERR_STATE,
              "was issued from this CSR already", "replayed approval");

        /* 4. Renewal without subject_info: the old certificate's, and the engine agrees. */
        EVP_PKEY_free(key2);
        issue_personal(f, applicant, &key2, 40, serial);
        assert_int_equal(gmca_store_cert_get(f->s, serial, &old, &e), 0);
        f->now = old.not_after - 10 * DAY;
        {
                char *csr = csr_b64(key2, NULL, NULL, "王小明");
                size_t n = strlen(csr) + 256;
                char *other = malloc(n);

                assert_non_null(body = malloc(n));
                assert_non_null(other);
                snprintf(body, n, "{\"csr\":\"%s\"}", csr);
                snprintf(other, n,
                         "{\"csr\":\"%s\",\"subject_info\":{\"identity_card_number\":\"" ID_OK
                         "\",\"insurance_number\":\"123456789\"}}",
                         csr);
                CHECK(submit(f, &f->entry, GMCA_APP_RENEW, serial, other, &app, &e),
                      GMCA_ERR_POLICY, "keeps the old certificate's subject information",
                      "renewal with new information");
                free(other);
                free(csr);
        }
        CHECK(submit(f, &f->entry, GMCA_APP_RENEW, serial, body, &app, &e), 0, NULL,
              "renewal without subject_info");
        free(body);
        CHECK(ra_old_info(f->s, serial, &old_info, &e), 0, NULL, "old info");
        assert_non_null(old_info);
        assert_non_null(strstr(old_info, ID_OK));
        CHECK(vet(f, &f->vetter, app, "pass", &e), 0, NULL, "vet renewal");
        f->env.issue = NULL;
        CHECK(decide(f, &f->admin, app, 1, NULL, NULL, &e), 0, NULL, "approve renewal");
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), 0, NULL,
              "renewal checks");
        assert_non_null(a.info_json);
        assert_string_equal(a.info_json, old_info);
        gmca_ra_approved_clear(&a);
        /* The front may not make up the information the submitter left out. */
        assert_int_equal(gmca_q_open(f->s, SQL_T_INFO, &q, &e), 0);
        gmca_q_text(&q, "{\"identity_card_number\":\"11010519491231002X\",\"insurance_number\":"
                        "\"1\"}");
        gmca_q_int(&q, app);
        assert_int_equal(gmca_q_step(&q, &e, "info"), GMCA_DB_DONE);
        gmca_q_close(&q);
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_AUTH,
              "subject_info is not what entry signed", "made-up information");
        assert_int_equal(gmca_q_open(f->s, SQL_T_INFO, &q, &e), 0);
        gmca_q_text(&q, old_info);
        gmca_q_int(&q, app);
        assert_int_equal(gmca_q_step(&q, &e, "info back"), GMCA_DB_DONE);
        gmca_q_close(&q);
        f->env.issue = t_issue;
        {
                struct gmca_auth_result w;
                char target[96];

                snprintf(target, sizeof(target), "/api/v1/applications/%lld/issue", (long long)app);
                signed_by(f, &f->admin, "POST", target, NULL, &w);
                CHECK(gmca_ra_application_issue(&f->env, &w, app, f->now, &out, &e), 0, NULL,
                      "issue renewal");
                gmca_auth_result_clear(&w);
        }
        CHECK(ra_old_info(f->s, json_string_value(json_object_get(out, "serial")), &new_info, &e),
              0, NULL, "new info");
        assert_non_null(new_info);
        assert_string_equal(new_info, old_info);
        json_decref(out);
        /* 5. The record's end rewritten: the CA's signature says when it ends. */
        {
                static const char set_end[] = "UPDATE certificates SET not_after = ? WHERE "
                                              "serial = ?";
                struct gmca_cert_rec neu;
                EVP_PKEY *key3 = NULL;
                char s3[GMCA_SERIAL_HEX_MAX], *lost;
                int64_t real_end;

                memset(&neu, 0, sizeof(neu));
                f->now = (int64_t)gmca_now();
                issue_personal(f, applicant, &key3, 60, s3);
                gmca_cert_rec_clear(&old);
                assert_int_equal(gmca_store_cert_get(f->s, s3, &old, &e), 0);
                real_end = old.not_after;
                assert_int_equal(gmca_q_open(f->s, set_end, &q, &e), 0);
                gmca_q_int(&q, f->now + 10 * DAY); /* looks renewable */
                gmca_q_text(&q, s3);
                assert_int_equal(gmca_q_step(&q, &e, "end"), GMCA_DB_DONE);
                gmca_q_close(&q);
                body = lifecycle_body(key3, "");
                CHECK(submit(f, &f->entry, GMCA_APP_RENEW, s3, body, &app, &e), GMCA_ERR_POLICY,
                      "renewal opens", "renewal of a rewritten end");
                free(body);
                assert_int_equal(gmca_q_open(f->s, set_end, &q, &e), 0);
                gmca_q_int(&q, f->now + 3000 * DAY); /* a reissue would last years */
                gmca_q_text(&q, s3);
                assert_int_equal(gmca_q_step(&q, &e, "end"), GMCA_DB_DONE);
                gmca_q_close(&q);
                lost = lifecycle_body(key3, "\"carrier\":\"damaged\"");
                CHECK(submit(f, &f->entry, GMCA_APP_REISSUE, s3, lost, &app, &e), 0, NULL,
                      "reissue");
                free(lost);
                out = vet_approve(f, app);
                assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
                assert_int_equal(
                    gmca_store_cert_get(f->s, json_string_value(json_object_get(out, "serial")),
                                        &neu, &e),
                    0);
                assert_int_equal(neu.not_after, real_end);
                json_decref(out);
                gmca_cert_rec_clear(&neu);
                EVP_PKEY_free(key3);
        }
        free(old_info);
        free(new_info);
        gmca_cert_rec_clear(&old);
        EVP_PKEY_free(key);
        EVP_PKEY_free(key2);
        f->now = (int64_t)gmca_now();
}

static int revoke_req(struct fixture *f, const struct op *k, const char *body, json_t **out,
                      struct gmca_error *e)
{
        struct gmca_auth_result who;
        json_t *o = NULL;
        int rc;

        signed_by(f, k, "POST", "/api/v1/revocations", body, &who);
        gmca_error_clear(e);
        rc = gmca_ra_revocation_request(&f->env, &who, (const uint8_t *)body, strlen(body), f->now,
                                        &o, e);
        gmca_auth_result_clear(&who);
        if (out != NULL)
                *out = o;
        else
                json_decref(o);
        return rc;
}

/* Operators', the RA's and CAs' certificates are not the RA's to replace or revoke. */
static const char SQL_T_SUBCA[] = "SELECT serial FROM certificates WHERE profile = 'sub-ca'"
                                  " ORDER BY issued_at LIMIT 1";
static const char SQL_T_RELABEL[] = "UPDATE certificates SET profile = ? WHERE serial = ?";

static void relabel(struct fixture *f, const char *serial, const char *profile)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(f->s, SQL_T_RELABEL, &q, &e), 0);
        gmca_q_text(&q, profile);
        gmca_q_text(&q, serial);
        assert_int_equal(gmca_q_step(&q, &e, "relabel"), GMCA_DB_DONE);
        gmca_q_close(&q);
}

static void test_not_subscribers(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char sub_ca[GMCA_SERIAL_HEX_MAX], body[512];
        EVP_PKEY *key;
        struct gmca_q q;
        int64_t applicant, app = 0, before;
        char *text;

        f->now = (int64_t)gmca_now();
        f->env.issue = NULL;
        applicant = person(f, "");
        assert_non_null(key = gmca_sm2_keygen(&e));
        text = personal_body(applicant, key, "王小明", 0);
        /* A change "of" an operator's certificate would revoke it as superseded. */
        before = rows(f, "applications");
        CHECK(submit(f, &f->entry, GMCA_APP_CHANGE, f->admin.serial, text, &app, &e),
              GMCA_ERR_POLICY, "the custodians manage it", "change of an operator certificate");
        assert_int_equal(rows(f, "applications"), before);
        /* The CA's own certificate, whatever its record says its profile is. */
        assert_int_equal(gmca_q_open(f->s, SQL_T_SUBCA, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "sub-ca"), GMCA_DB_ROW);
        assert_int_equal(gmca_q_col_str(&q, 0, sub_ca, sizeof(sub_ca), "serial", &e), 0);
        gmca_q_close(&q);
        relabel(f, sub_ca, "personal-sign");
        CHECK(submit(f, &f->entry, GMCA_APP_CHANGE, sub_ca, text, &app, &e), GMCA_ERR_POLICY,
              "is a CA certificate", "change of the CA's certificate");
        snprintf(body, sizeof(body), "{\"serial\":\"%s\",\"reason\":\"E\",\"requester\":\"ca\"}",
                 sub_ca);
        CHECK(revoke_req(f, &f->admin, body, NULL, &e), GMCA_ERR_POLICY, "is a CA certificate",
              "revocation of the CA's certificate");
        relabel(f, sub_ca, "sub-ca");
        free(text);
        EVP_PKEY_free(key);
        f->env.issue = t_issue;
}

static void test_revocation(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_result who;
        struct gmca_cert_rec rec;
        struct gmca_error e = {0};
        char s1[GMCA_SERIAL_HEX_MAX], s2[GMCA_SERIAL_HEX_MAX], body[512], target[64];
        EVP_PKEY *k1, *k2;
        int64_t applicant, rid, revokes, notes;
        json_t *out = NULL;

        memset(&rec, 0, sizeof(rec));
        f->now = (int64_t)gmca_now();
        f->env.issue = t_issue;
        applicant = person(f, "wang@example.cn");
        issue_personal(f, applicant, &k1, 0, s1);
        issue_personal(f, applicant, &k2, 0, s2);

        /* Refusals: unknown serial, org representative on a personal certificate, internal. */
        expect(revoke_req(f, &f->entry,
                          "{\"serial\":\"0A0B0C\",\"reason\":\"H\",\"requester\":\"subscriber\"}",
                          NULL, &e),
               &e, GMCA_ERR_NOTFOUND, NULL, "unknown serial");
        snprintf(body, sizeof(body),
                 "{\"serial\":\"%s\",\"reason\":\"A\",\"requester\":\"org_representative\"}", s1);
        expect(revoke_req(f, &f->entry, body, NULL, &e), &e, GMCA_ERR_POLICY, "CPS §3.9.2",
               "org rep on personal");
        snprintf(body, sizeof(body),
                 "{\"serial\":\"%s\",\"reason\":\"H\",\"requester\":\"subscriber\"}",
                 f->admin.serial);
        expect(revoke_req(f, &f->admin, body, NULL, &e), &e, GMCA_ERR_POLICY, "custodians",
               "operator certificate");
        expect(revoke_req(f, &f->auditor, body, NULL, &e), &e, GMCA_ERR_FORBIDDEN, NULL,
               "auditor requests");

        /* A business operator's request waits, with its deadline. */
        snprintf(body, sizeof(body),
                 "{\"serial\":\"%s\",\"reason\":\"E\",\"requester\":\"subscriber\",\"note\":"
                 "\"U盾丢失\"}",
                 s1);
        expect(revoke_req(f, &f->entry, body, &out, &e), &e, 0, NULL, "operator request");
        assert_string_equal(json_string_value(json_object_get(out, "state")), "pending");
        assert_int_equal(json_integer_value(json_object_get(out, "deadline")), f->now + DAY);
        rid = json_integer_value(json_object_get(out, "id"));
        json_decref(out);
        expect(revoke_req(f, &f->entry, body, NULL, &e), &e, GMCA_ERR_EXISTS, "pending", "twice");
        assert_int_equal(gmca_store_cert_get(f->s, s1, &rec, &e), 0);
        assert_int_equal(rec.status, GMCA_CERT_VALID);
        gmca_cert_rec_clear(&rec);
        /* Overdue once the 24 hours have passed (§3.9.6). */
        signed_by(f, &f->auditor, "GET", "/api/v1/revocations?state=pending", NULL, &who);
        CHECK(gmca_ra_revocation_list(&f->env, &who, "pending", f->now + DAY + 1, &out, &e), 0,
              NULL, "list");
        assert_true(json_is_true(
            json_object_get(json_array_get(json_object_get(out, "items"), 0), "overdue")));
        json_decref(out);
        gmca_auth_result_clear(&who);
        /* Completed by a business admin: revoked, recorded, the subscriber told. */
        snprintf(target, sizeof(target), "/api/v1/revocations/%lld/complete", (long long)rid);
        signed_by(f, &f->entry, "POST", target, NULL, &who);
        CHECK(gmca_ra_revocation_complete(&f->env, &who, rid, f->now, &out, &e), GMCA_ERR_FORBIDDEN,
              NULL, "operator completes");
        gmca_auth_result_clear(&who);
        revokes = audits(f, GMCA_EV_CERT_REVOKE, 1, NULL);
        notes = rows(f, "notifications");
        signed_by(f, &f->admin2, "POST", target, NULL, &who);
        gmca_error_clear(&e);
        CHECK(gmca_ra_revocation_complete(&f->env, &who, rid, f->now, &out, &e), 0, NULL,
              "complete");
        assert_string_equal(json_string_value(json_object_get(out, "crl")), "next scheduled CRL");
        json_decref(out);
        CHECK(gmca_ra_revocation_complete(&f->env, &who, rid, f->now, &out, &e), GMCA_ERR_STATE,
              NULL, "complete twice");
        gmca_auth_result_clear(&who);
        assert_int_equal(audits(f, GMCA_EV_CERT_REVOKE, 1, NULL), revokes + 1);
        assert_int_equal(rows(f, "notifications"), notes + 1);
        assert_int_equal(gmca_store_cert_get(f->s, s1, &rec, &e), 0);
        assert_int_equal(rec.status, GMCA_CERT_REVOKED);
        assert_int_equal(rec.reason, 1);
        gmca_cert_rec_clear(&rec);
        expect(revoke_req(f, &f->entry, body, NULL, &e), &e, GMCA_ERR_STATE, "already revoked",
               "revoked again");

        /* A judicial request by a business admin is carried out at once. */
        snprintf(body, sizeof(body),
                 "{\"serial\":\"%s\",\"reason\":\"B\",\"requester\":\"judicial\",\"authority\":"
                 "\"某某市中级人民法院\",\"document_ref\":\"(2024)某01执123号\"}",
                 s2);
        expect(revoke_req(f, &f->admin, body, &out, &e), &e, 0, NULL, "judicial");
        assert_string_equal(json_string_value(json_object_get(out, "state")), "completed");
        assert_string_equal(json_string_value(json_object_get(out, "document_ref")),
                            "(2024)某01执123号");
        json_decref(out);
        assert_int_equal(gmca_store_cert_get(f->s, s2, &rec, &e), 0);
        assert_int_equal(rec.status, GMCA_CERT_REVOKED);
        assert_int_equal(rec.reason, 9);
        gmca_cert_rec_clear(&rec);
        /* The certificate record shows it. */
        signed_by(f, &f->auditor, "GET", "/api/v1/certificates/x", NULL, &who);
        CHECK(gmca_ra_certificate_get(&f->env, &who, s2, f->now, &out, &e), 0, NULL, "certificate");
        assert_string_equal(json_string_value(json_object_get(out, "status")), "revoked");
        assert_true(json_integer_value(json_object_get(out, "application")) > 0);
        json_decref(out);
        gmca_auth_result_clear(&who);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(k2);
}

/* ---- operator records the front cannot forge (auth.h: tags under K_op) ---- */

static const char SQL_T_OP_ADD[] =
    "INSERT INTO operators (name, roles, cert_serial, fingerprint, status, created_at,"
    " created_by, status_time, tag) VALUES (?, 'business_admin', ?, ?, 'active', 0, 'front', 0, ?)";
static const char SQL_T_OP_TAG[] = "UPDATE operators SET tag = ? WHERE name = ?";
static const char SQL_T_OP_ROLES[] = "UPDATE operators SET roles = ? WHERE name = ?";
static const char SQL_T_OP_DEL[] = "DELETE FROM operators WHERE name = ?";
static const char SQL_T_CERTS[] = "SELECT COUNT(*) FROM certificates";

static int64_t certs(struct fixture *f)
{
        struct gmca_error e = {0};
        struct gmca_q q;
        int64_t n;

        assert_int_equal(gmca_q_open(f->s, SQL_T_CERTS, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "count"), GMCA_DB_ROW);
        n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

/* Run sql with two bound values: a blob (or text when len is (size_t)-1), then text. */
static void op_sql(struct fixture *f, const char *sql, const void *v, size_t len, const char *name)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(f->s, sql, &q, &e), 0);
        if (len == (size_t)-1)
                gmca_q_text(&q, v);
        else
                gmca_q_blob(&q, v, len);
        gmca_q_text(&q, name);
        assert_int_equal(gmca_q_step(&q, &e, "operator row"), GMCA_DB_DONE);
        gmca_q_close(&q);
}

/* Submitted by entry, vetted by vetter, approved by k through the front; *out the answer. */
static int64_t approved_by(struct fixture *f, const struct op *k, int64_t applicant,
                           const struct op *vetter, json_t **out)
{
        struct gmca_error e = {0};
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        int64_t app = 0;
        char *body;

        assert_non_null(key);
        body = personal_body(applicant, key, "王小明", 0);
        CHECK(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), 0, NULL, "submit");
        free(body);
        CHECK(vet(f, vetter, app, "pass", &e), 0, NULL, "vet");
        CHECK(decide(f, k, app, 1, NULL, out, &e), 0, NULL, "the front lets the approval in");
        EVP_PKEY_free(key);
        return app;
}

/* The approval stayed approved, the engine's answer names the tag, and nothing was signed. */
static void refused_for_tag(struct fixture *f, json_t *out, const char *name, int64_t certs0)
{
        const char *ie = json_string_value(json_object_get(out, "issue_error"));
        char want[128];

        snprintf(want, sizeof(want), "operator %s: record not made by the custodians (tag)", name);
        assert_string_equal(json_string_value(json_object_get(out, "state")), "approved");
        if (ie == NULL || strstr(ie, want) == NULL)
                fail_msg("issue_error \"%s\" does not name the tag of %s", ie ? ie : "(none)",
                         name);
        assert_int_equal(certs(f), certs0);
}

static void test_operator_records(void **state)
{
        struct fixture *f = *state;
        struct gmca_ra_approved a;
        struct gmca_operator good, mal;
        struct gmca_error e = {0};
        struct op mallory;
        struct gmca_cert_rec rec;
        uint8_t *der = NULL, other_key[GMCA_OP_KEY_LEN], tag[GMCA_OP_TAG_LEN], junk[5] = {0};
        const unsigned char *p;
        json_t *out = NULL;
        struct audit_count ac;
        int64_t applicant, app, certs0, fails0;
        int n;

        f->now = (int64_t)gmca_now();
        applicant = person(f, "");

        /*
         * B1: the front holds the key of a subscriber certificate it had issued
         * through the RA, writes an operators row for it (and the certificate's
         * profile, which it can write too), and approves as that "operator".
         */
        memset(&mallory, 0, sizeof(mallory));
        mallory.name = "mallory";
        issue_personal(f, applicant, &mallory.key, 0, mallory.serial);
        f->now = (int64_t)gmca_now(); /* not before the certificate's notBefore */
        memset(&rec, 0, sizeof(rec));
        assert_int_equal(gmca_store_cert_get(f->s, mallory.serial, &rec, &e), 0);
        p = rec.der;
        assert_non_null(mallory.cert = d2i_X509(NULL, &p, (long)rec.der_len));
        gmca_cert_rec_clear(&rec);
        relabel(f, mallory.serial, GMCA_OPERATOR_PROFILE);
        memset(&mal, 0, sizeof(mal));
        gmca_strlcpy(mal.name, "mallory", sizeof(mal.name));
        mal.roles = GMCA_ROLE_BUSINESS_ADMIN;
        gmca_strlcpy(mal.cert_serial, mallory.serial, sizeof(mal.cert_serial));
        assert_true((n = i2d_X509(mallory.cert, &der)) > 0);
        gmca_auth_fingerprint(der, (size_t)n, mal.fingerprint);
        OPENSSL_free(der);
        {
                struct gmca_q q;

                assert_int_equal(gmca_q_open(f->s, SQL_T_OP_ADD, &q, &e), 0);
                gmca_q_text(&q, mal.name);
                gmca_q_text(&q, mal.cert_serial);
                gmca_q_text(&q, mal.fingerprint);
                gmca_q_blob(&q, junk, sizeof(junk));
                assert_int_equal(gmca_q_step(&q, &e, "forge operator"), GMCA_DB_DONE);
                gmca_q_close(&q);
        }
        certs0 = certs(f);
        fails0 = audits(f, GMCA_EV_APP_ISSUE, 0, NULL);
        app = approved_by(f, &mallory, applicant, &f->vetter, &out);
        refused_for_tag(f, out, "mallory", certs0);
        json_decref(out);
        /* Audited by the engine, and by the front that asked it. */
        assert_int_equal(audits(f, GMCA_EV_APP_ISSUE, 0, &ac), fails0 + 2);
        assert_non_null(strstr(ac.last_detail, "not made by the custodians (tag)"));
        /* Whatever tag the front writes: another operator's, random, under another key. */
        assert_int_equal(gmca_operator_get(f->s, "admin", &good, &e), 0);
        assert_int_equal(gmca_rand_bytes(other_key, sizeof(other_key), &e), 0);
        for (int i = 0; i < 4; i++) {
                static const char *const what[] = {"too short", "admin's", "random", "other key"};

                if (i == 0)
                        op_sql(f, SQL_T_OP_TAG, junk, sizeof(junk), "mallory");
                else if (i == 1)
                        op_sql(f, SQL_T_OP_TAG, good.tag, sizeof(good.tag), "mallory");
                else if (i == 2)
                        assert_int_equal(gmca_rand_bytes(tag, sizeof(tag), &e), 0);
                else
                        assert_int_equal(gmca_operator_tag(&mal, other_key, tag, &e), 0);
                if (i >= 2)
                        op_sql(f, SQL_T_OP_TAG, tag, sizeof(tag), "mallory");
                CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_AUTH,
                      "operator mallory: record not made by the custodians (tag)", what[i]);
        }
        /* The same row tagged under K_op, as the custodians would: only the tag stood in the
         * way. */
        assert_int_equal(gmca_operator_tag(&mal, f->k_op, tag, &e), 0);
        op_sql(f, SQL_T_OP_TAG, tag, sizeof(tag), "mallory");
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), 0, NULL,
              "tagged under K_op");
        assert_string_equal(a.approved_by, "mallory");
        gmca_ra_approved_clear(&a);
        CHECK(gmca_ra_check_approvals(f->s, NULL, app, f->now, &a, &e), GMCA_ERR_INTERNAL, "K_op",
              "no K_op");
        {
                struct gmca_q q;

                assert_int_equal(gmca_q_open(f->s, SQL_T_OP_DEL, &q, &e), 0);
                gmca_q_text(&q, "mallory");
                assert_int_equal(gmca_q_step(&q, &e, "drop forged operator"), GMCA_DB_DONE);
                gmca_q_close(&q);
        }
        relabel(f, mallory.serial, "personal-sign");
        op_free(&mallory);

        /* B2: a business operator made a business admin in the table. */
        op_sql(f, SQL_T_OP_ROLES, "business_admin", (size_t)-1, "vetter");
        certs0 = certs(f);
        app = approved_by(f, &f->vetter, applicant, &f->admin2, &out);
        refused_for_tag(f, out, "vetter", certs0);
        json_decref(out);
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_AUTH,
              "operator vetter: record not made by the custodians (tag)", "roles raised");
        /* Put back, the tag checks and the role the custodians gave is what counts. */
        op_sql(f, SQL_T_OP_ROLES, "business_operator", (size_t)-1, "vetter");
        CHECK(gmca_ra_check_approvals(f->s, f->k_op, app, f->now, &a, &e), GMCA_ERR_AUTH, "may not",
              "roles restored: a business operator does not approve");
        /* And a clean approval by the custodians' operators issues. */
        app = approved_by(f, &f->admin, applicant, &f->vetter, &out);
        assert_string_equal(json_string_value(json_object_get(out, "state")), "issued");
        json_decref(out);
        (void)app;
}

/*
 * K_op comes from the key PIN, not the master key: a custodian change draws a
 * new master key, and the operators' records must still check afterwards.
 */
/*
 * An application for an encryption profile itself: the engine signs no
 * encryption certificate outside a dual pair (its key would be the
 * subscriber's own, escrowed nowhere).
 */
static void test_encryption_profile(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        json_t *out = NULL;
        EVP_PKEY *key;
        int64_t app = 0, certs0, refused;
        const char *ie;
        char *body;
        json_t *j;

        f->now = (int64_t)gmca_now();
        f->env.issue = t_issue;
        assert_non_null(key = gmca_sm2_keygen(&e));
        body = personal_body(person(f, ""), key, "王小明", 0);
        assert_non_null(j = json_loads(body, 0, NULL));
        free(body);
        json_object_set_new(j, "profile", json_string("personal-enc"));
        assert_non_null(body = json_dumps(j, JSON_COMPACT));
        json_decref(j);
        CHECK(submit(f, &f->entry, GMCA_APP_NEW, NULL, body, &app, &e), 0, NULL, "submit");
        free(body);
        CHECK(vet(f, &f->vetter, app, "pass", &e), 0, NULL, "vet");
        certs0 = certs(f);
        refused = audits(f, GMCA_EV_APP_ISSUE, 0, NULL);
        CHECK(decide(f, &f->admin, app, 1, NULL, &out, &e), 0, NULL, "approve");
        ie = json_string_value(json_object_get(out, "issue_error"));
        assert_string_equal(json_string_value(json_object_get(out, "state")), "approved");
        if (ie == NULL || strstr(ie, "encryption profile") == NULL)
                fail_msg("issue_error \"%s\"", ie ? ie : "(none)");
        assert_int_equal(certs(f), certs0);
        assert_true(audits(f, GMCA_EV_APP_ISSUE, 0, NULL) > refused);
        json_decref(out);
        EVP_PKEY_free(key);
}

static void test_kop_resplit(void **state)
{
        static const char *const next_names[5] = {"孙一", "周二", "吴三", "郑四", "冯五"};
        static const char *const next_pins[5] = {"Rs1pinQaZw", "Rs2pinWsXe", "Rs3pinEdCr",
                                                 "Rs4pinRfVt", "Rs5pinTgBy"};
        struct fixture *f = *state;
        struct gmca_custodian next[5];
        struct gmca_operator op;
        struct gmca_error e = {0};
        struct gmca_ctx *c2 = NULL;
        uint8_t k2[GMCA_OP_KEY_LEN];
        char paths[5][320];

        for (int i = 0; i < 5; i++) {
                snprintf(paths[i], sizeof(paths[i]), "%s/shares/next-%d.json", f->ca.top, i + 1);
                next[i] = (struct gmca_custodian){next_names[i], next_pins[i], strlen(next_pins[i]),
                                                  paths[i]};
        }
        /* A context the custodians have not authorised has no K_op. */
        assert_non_null(c2 = gmca_ctx_open(f->ca.dir, "unit", &e));
        CHECK(gmca_operator_key(c2, k2, &e), GMCA_ERR_STATE, "not authorised", "no custodians");
        gmca_ctx_close(c2);
        CHECK(gmca_key_resplit(f->c, f->ca.cust, 3, next, 5, 0, &e), 0, NULL, "resplit");
        assert_non_null(c2 = gmca_ctx_open(f->ca.dir, "unit", &e));
        CHECK(gmca_ctx_activate(c2, next, 3, &e), 0, NULL, "activate with the new shares");
        CHECK(gmca_operator_key(c2, k2, &e), 0, NULL, "K_op");
        assert_memory_equal(k2, f->k_op, sizeof(k2));
        assert_int_equal(gmca_operator_get(f->s, "admin", &op, &e), 0);
        CHECK(gmca_operator_tag_check(&op, k2, &e), 0, NULL, "a record from before the resplit");
        OPENSSL_cleanse(k2, sizeof(k2));
        gmca_ctx_close(c2);
        /* f->ca.cust no longer opens the CA: this test runs last. */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bodies),           cmocka_unit_test(test_caps),
            cmocka_unit_test(test_working_time),     cmocka_unit_test(test_reason_codes),
            cmocka_unit_test(test_applicants),       cmocka_unit_test(test_workflow),
            cmocka_unit_test(test_check_approvals),  cmocka_unit_test(test_renewal),
            cmocka_unit_test(test_org_renewal),      cmocka_unit_test(test_revocation),
            cmocka_unit_test(test_bound_approvals),  cmocka_unit_test(test_not_subscribers),
            cmocka_unit_test(test_operator_records), cmocka_unit_test(test_encryption_profile),
            cmocka_unit_test(test_kop_resplit), /* last: the custodians change */
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
