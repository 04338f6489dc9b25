/*
 * Unit tests of auth: the permission and conflict tables, the signature
 * base, operators in the store and their records' tags, signed requests checked against a real
 * store whose CA issued real operator certificates (every refusal of
 * gmca_auth_verify), and proofs (round trip, every truncation, tampering).
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
#include "store_internal.h"
#include "util.h"
#include "testca.h"
#include "testutil.h"

/* The operator records' key for rows made here (nothing here checks them against the CA's). */
static const uint8_t test_kop[GMCA_OP_KEY_LEN] = {
    0x6b, 0x2d, 0x6f, 0x70, 0x20, 0x66, 0x6f, 0x72, 0x20, 0x74, 0x65, 0x73, 0x74, 0x73, 0x20, 0x31,
    0x9e, 0x41, 0x07, 0xc3, 0x58, 0x22, 0xd0, 0x6a, 0x15, 0xb4, 0x7f, 0x90, 0x3e, 0x0c, 0xa1, 0x5d};

struct op_key {
        EVP_PKEY *key;
        X509 *cert;
        char serial[GMCA_SERIAL_HEX_MAX];
};

struct fixture {
        struct test_ca ca; /* the CA, its directory and its custodians */
        struct gmca_ctx *c;
        struct gmca_store *s;
        int64_t now;
        struct op_key alice; /* business_operator */
        struct op_key bob;   /* business_admin,template_admin */
};

static void op_key_free(struct op_key *k)
{
        EVP_PKEY_free(k->key);
        X509_free(k->cert);
        memset(k, 0, sizeof(*k));
}

/* A DER CSR for C=CN, O=..., CN=cn signed with key (default SM2 ID). */
static uint8_t *csr_for(EVP_PKEY *key, const char *cn, size_t *len)
{
        return test_csr_key(key, "单元测试局", NULL, cn, len);
}

/* Issue a certificate under profile for a fresh key (the certificate re-parsed from DER). */
static void issue(struct fixture *f, const char *profile, const char *cn, int days,
                  struct op_key *k)
{
        struct gmca_issue_req r;
        struct gmca_cert_rec rec;
        struct gmca_error e = {0};
        const unsigned char *p;
        uint8_t *csr;
        size_t len;

        memset(k, 0, sizeof(*k));
        memset(&rec, 0, sizeof(rec));
        k->key = gmca_sm2_keygen(&e);
        assert_non_null(k->key);
        csr = csr_for(k->key, cn, &len);
        memset(&r, 0, sizeof(r));
        r.profile = profile;
        r.csr = csr;
        r.csr_len = len;
        r.days = days;
        if (gmca_ca_issue(f->c, &r, k->serial, NULL, &e) != 0)
                fail_msg("issue %s: %s", cn, e.msg);
        OPENSSL_free(csr);
        /* The certificate is valid from the second it was issued: "now" is that or later. */
        f->now = (int64_t)gmca_now();
        assert_int_equal(gmca_store_cert_get(f->s, k->serial, &rec, &e), 0);
        p = rec.der;
        k->cert = d2i_X509(NULL, &p, (long)rec.der_len);
        assert_non_null(k->cert);
        gmca_cert_rec_clear(&rec);
}

/* Record k as operator name with roles (in a transaction of its own). */
static int add_operator(struct fixture *f, const char *name, unsigned roles, const struct op_key *k,
                        struct gmca_error *e)
{
        struct gmca_operator op;
        uint8_t *der = NULL;
        int len, rc;

        memset(&op, 0, sizeof(op));
        gmca_strlcpy(op.name, name, sizeof(op.name));
        op.roles = roles;
        gmca_strlcpy(op.cert_serial, k->serial, sizeof(op.cert_serial));
        len = i2d_X509(k->cert, &der);
        assert_true(len > 0);
        gmca_auth_fingerprint(der, (size_t)len, op.fingerprint);
        OPENSSL_free(der);
        op.created_at = f->now;
        gmca_strlcpy(op.created_by, "unit", sizeof(op.created_by));
        assert_int_equal(gmca_store_begin(f->s, e), 0);
        if ((rc = gmca_operator_insert(f->s, &op, test_kop, e)) != 0) {
                gmca_store_rollback(f->s);
                return rc;
        }
        assert_true(op.id > 0);
        return gmca_store_commit(f->s, e);
}

static void new_operator(struct fixture *f, const char *name, unsigned roles, int days,
                         struct op_key *k)
{
        struct gmca_error e = {0};

        issue(f, GMCA_OPERATOR_PROFILE, name, days, k);
        if (add_operator(f, name, roles, k, &e) != 0)
                fail_msg("operator %s: %s", name, e.msg);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};

        if (f == NULL || test_ca_make(&f->ca, "auth") != 0)
                return -1;
        if ((f->c = gmca_ctx_open(f->ca.dir, "unit-operator", &e)) == NULL ||
            gmca_ctx_activate(f->c, f->ca.cust, 3, &e) != 0) {
                fprintf(stderr, "open: %s\n", e.msg);
                return -1;
        }
        f->s = gmca_ctx_store(f->c);
        f->now = (int64_t)gmca_now();
        *state = f;
        new_operator(f, "alice", GMCA_ROLE_BUSINESS_OPERATOR, 0, &f->alice);
        new_operator(f, "bob", GMCA_ROLE_BUSINESS_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN, 0, &f->bob);
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        op_key_free(&f->alice);
        op_key_free(&f->bob);
        gmca_ctx_close(f->c);
        test_ca_remove(&f->ca);
        free(f);
        return 0;
}

/* ---- tables ---- */

static void test_permission_table(void **state)
{
        struct gmca_error e = {0};

        (void)state;
        for (int a = 0; a < GMCA_ACT_COUNT; a++) {
                unsigned r = gmca_action_roles((enum gmca_action)a);

                if (r == 0 || (r & ~(unsigned)GMCA_ROLE_ALL) != 0)
                        fail_msg("action %d (%s): roles 0x%x", a,
                                 gmca_action_name((enum gmca_action)a), r);
                for (int b = 0; b < a; b++)
                        assert_string_not_equal(gmca_action_name((enum gmca_action)a),
                                                gmca_action_name((enum gmca_action)b));
        }
        assert_int_equal(gmca_action_roles(GMCA_ACT_COUNT), 0);

        static const struct {
                unsigned roles;
                enum gmca_action a;
                int want;
        } cases[] = {
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_AUDIT_READ, 0},
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_APPLICATION_READ, 0},
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_APPLICATION_DECIDE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_APPLICATION_VET, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_APPLICANT_READ_FULL, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_APPLICATION_DECIDE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_REVOCATION_COMPLETE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_APPLICANT_READ_FULL, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_APPLICATION_SUBMIT, 0},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_APPLICATION_VET, 0},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_AUDIT_READ, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_APPLICATION_DECIDE, 0},
            {GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_APPLICANT_READ_FULL, 0},
            {GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_OPERATOR_DISABLE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_SUPER_ADMIN, GMCA_ACT_OPERATOR_DISABLE, 0},
            {GMCA_ROLE_SUPER_ADMIN, GMCA_ACT_APPLICATION_SUBMIT, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_SYSTEM_ADMIN, GMCA_ACT_CRL_GENERATE, 0},
            {GMCA_ROLE_SYSTEM_ADMIN, GMCA_ACT_APPLICANT_READ, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_TEMPLATE_ADMIN, GMCA_ACT_PROFILE_READ, 0},
            {GMCA_ROLE_TEMPLATE_ADMIN, GMCA_ACT_CERT_READ, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_TEMPLATE_ADMIN, GMCA_ACT_PROFILE_WRITE, 0},
            {GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_PROFILE_READ, 0},
            {GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_PROFILE_WRITE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_PROFILE_READ, 0},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_PROFILE_WRITE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_SYSTEM_ADMIN, GMCA_ACT_PROFILE_WRITE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_SUPER_ADMIN, GMCA_ACT_PROFILE_WRITE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_SYSTEM_ADMIN, GMCA_ACT_SYSTEM_READ, 0},
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_SYSTEM_READ, 0},
            {GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_PROFILE_WRITE, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_SYSTEM_READ, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_SYSTEM_READ, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_TEMPLATE_ADMIN, GMCA_ACT_SYSTEM_READ, GMCA_ERR_FORBIDDEN},
            {GMCA_ROLE_SYSTEM_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN, GMCA_ACT_PROFILE_WRITE, 0},
            {GMCA_ROLE_TEMPLATE_ADMIN | GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_APPLICATION_DECIDE, 0},
            {0, GMCA_ACT_WHOAMI, GMCA_ERR_FORBIDDEN},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char what[64];

                snprintf(what, sizeof(what), "permission case %zu", i);
                gmca_error_clear(&e);
                expect(gmca_auth_allowed(cases[i].roles, cases[i].a, &e), &e, cases[i].want,
                       cases[i].want ? gmca_action_name(cases[i].a) : NULL, what);
        }
        /* Every role may ask who it is. */
        for (unsigned bit = 1; bit <= GMCA_ROLE_AUDIT_ADMIN; bit <<= 1)
                assert_int_equal(gmca_auth_allowed(bit, GMCA_ACT_WHOAMI, &e), 0);
        gmca_error_clear(&e);
        assert_int_equal(
            gmca_auth_allowed(GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_APPLICATION_DECIDE, &e),
            GMCA_ERR_FORBIDDEN);
        assert_string_equal(e.msg, "role business_operator may not application.decide");
}

static void test_roles_text(void **state)
{
        static const struct {
                const char *text;
                int want;
                unsigned bits;
                const char *canon;
        } cases[] = {
            {"business_admin", 0, GMCA_ROLE_BUSINESS_ADMIN, "business_admin"},
            {"audit_admin", 0, GMCA_ROLE_AUDIT_ADMIN, "audit_admin"},
            {"business_admin,template_admin", 0,
             GMCA_ROLE_BUSINESS_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN, "business_admin,template_admin"},
            {"template_admin,business_admin", 0,
             GMCA_ROLE_BUSINESS_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN, "business_admin,template_admin"},
            {"", GMCA_ERR_INVALID, 0, NULL},
            {"admin", GMCA_ERR_INVALID, 0, NULL},
            {"Business_admin", GMCA_ERR_INVALID, 0, NULL},
            {"business_admin,", GMCA_ERR_INVALID, 0, NULL},
            {",business_admin", GMCA_ERR_INVALID, 0, NULL},
            {"business_admin, template_admin", GMCA_ERR_INVALID, 0, NULL},
            {"audit_admin,audit_admin", GMCA_ERR_INVALID, 0, NULL},
        };
        struct gmca_error e = {0};
        char out[GMCA_ROLES_TEXT_MAX];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned bits = 0xdead;

                gmca_error_clear(&e);
                expect(gmca_roles_parse(cases[i].text, &bits, &e), &e, cases[i].want, NULL,
                       cases[i].text);
                if (cases[i].want != 0) {
                        assert_int_equal(bits, 0xdead); /* untouched on failure */
                        continue;
                }
                assert_int_equal(bits, cases[i].bits);
                gmca_roles_format(bits, out);
                assert_string_equal(out, cases[i].canon);
        }
        gmca_roles_format(GMCA_ROLE_ALL, out);
        assert_string_equal(out, "business_admin,template_admin,business_operator,super_admin,"
                                 "system_admin,audit_admin");
        for (unsigned bit = 1; bit <= GMCA_ROLE_AUDIT_ADMIN; bit <<= 1)
                assert_int_equal(gmca_role_from_name(gmca_role_name(bit)), bit);
        assert_null(gmca_role_name(3));
        assert_int_equal(gmca_role_from_name("root"), 0);
}

static void test_conflicts(void **state)
{
        const unsigned ok_pairs[] = {GMCA_ROLE_TEMPLATE_ADMIN | GMCA_ROLE_BUSINESS_ADMIN,
                                     GMCA_ROLE_SYSTEM_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN};
        struct gmca_error e = {0};
        int allowed = 0;

        (void)state;
        for (unsigned a = 1; a <= GMCA_ROLE_AUDIT_ADMIN; a <<= 1) {
                assert_int_equal(gmca_auth_roles_conflict(a, &e), 0);
                for (unsigned b = a << 1; b <= GMCA_ROLE_AUDIT_ADMIN; b <<= 1) {
                        int want_ok = (a | b) == ok_pairs[0] || (a | b) == ok_pairs[1];
                        int rc;

                        gmca_error_clear(&e);
                        rc = gmca_auth_roles_conflict(a | b, &e);
                        if (want_ok) {
                                allowed++;
                                expect(rc, &e, 0, NULL, "allowed pair");
                        } else {
                                expect(rc, &e, GMCA_ERR_POLICY, gmca_role_name(a), "refused pair");
                                assert_non_null(strstr(e.msg, gmca_role_name(b)));
                        }
                }
        }
        assert_int_equal(allowed, 2);
        /* The named conflicts of CPS §6.2.3 as this CA applies them. */
        gmca_error_clear(&e);
        assert_int_equal(
            gmca_auth_roles_conflict(GMCA_ROLE_AUDIT_ADMIN | GMCA_ROLE_BUSINESS_ADMIN, &e),
            GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        assert_int_equal(
            gmca_auth_roles_conflict(GMCA_ROLE_BUSINESS_ADMIN | GMCA_ROLE_BUSINESS_OPERATOR, &e),
            GMCA_ERR_POLICY);
        /* Three roles always hold a refused pair. */
        gmca_error_clear(&e);
        assert_int_equal(
            gmca_auth_roles_conflict(
                GMCA_ROLE_SYSTEM_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN | GMCA_ROLE_BUSINESS_ADMIN, &e),
            GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        assert_int_equal(gmca_auth_roles_conflict(GMCA_ROLE_ALL, &e), GMCA_ERR_POLICY);
}

#define FPR_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_base(void **state)
{
        struct gmca_error e = {0};
        char *base = NULL;

        (void)state;
        assert_int_equal(gmca_auth_base("POST", "/api/v1/applications?x=1", "1700000000",
                                        "abcdefghijklmnop", (const uint8_t *)"abc", 3, FPR_A, &base,
                                        &e),
                         0);
        /* SM3("abc") is the example of GB/T 32905-2016 Appendix A.1. */
        assert_string_equal(
            base, "gmca-request-v1\n"
                  "POST\n"
                  "/api/v1/applications?x=1\n"
                  "1700000000\n"
                  "abcdefghijklmnop\n"
                  "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0\n" FPR_A);
        free(base);
        base = NULL;
        assert_int_equal(
            gmca_auth_base("GET", "/", "0", "0123456789-_ABCD", NULL, 0, FPR_A, &base, &e), 0);
        assert_string_equal(
            base, "gmca-request-v1\nGET\n/\n0\n0123456789-_ABCD\n"
                  "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b\n" FPR_A);
        free(base);

        char long_target[4200], long_nonce[66];
        long_target[0] = '/';
        memset(long_target + 1, 'a', 4095);
        long_target[4096] = '\0';
        memset(long_nonce, 'n', 65);
        long_nonce[65] = '\0';
        static const char *const good[] = {"POST", "/api/v1/x", "1700000000", "abcdefghijklmnop",
                                           FPR_A};
        struct {
                int field;
                const char *value;
        } bad[] = {
            {0, "post"},
            {0, ""},
            {0, "PO ST"},
            {0, "ABCDEFGHIJKLMNOPQ"},
            {1, "api/v1/x"},
            {1, "/api/v1/x\n"},
            {1, "/api\r/v1"},
            {1, "/api\x7f"},
            {1, long_target},
            {2, ""},
            {2, "-1"},
            {2, "01700000000"},
            {2, "+1700000000"},
            {2, "17e8"},
            {2, "99999999999999999999"},
            {3, "abcdefghijklmno"},
            {3, "abcdefghijklmnop!"},
            {3, "abcdefghijklmno="},
            {3, long_nonce},
            {4, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"},
            {4, "0123456789abcdef"},
            {4, FPR_A "0"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *v[5];
                char what[64];

                memcpy(v, good, sizeof(v));
                v[bad[i].field] = bad[i].value;
                base = NULL;
                gmca_error_clear(&e);
                snprintf(what, sizeof(what), "bad base case %zu", i);
                expect(gmca_auth_base(v[0], v[1], v[2], v[3], NULL, 0, v[4], &base, &e), &e,
                       GMCA_ERR_INVALID, NULL, what);
                assert_null(base);
        }
        /* The longest target fits. */
        long_target[4095] = '\0';
        gmca_error_clear(&e);
        assert_int_equal(
            gmca_auth_base("GET", long_target, "1", "abcdefghijklmnop", NULL, 0, FPR_A, &base, &e),
            0);
        free(base);
}

static void test_operator_names(void **state)
{
        struct fixture *f = *state;
        struct gmca_operator op;
        struct gmca_error e = {0};
        char sixty_four[65];

        memset(sixty_four, 'x', 64);
        sixty_four[64] = '\0';
        static const char *const bad[] = {
            "",
            " lead",
            "trail ",
            "ctl\x01",
            "tab\tname",
            "del\x7f",
            "c1\xc2\x85",
            "overlong\xc0\x80",
            "surrogate\xed\xa0\x80",
            "cut\xe5\xbc",
            "big\xf4\x90\x80\x80",
            NULL,
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                memset(&op, 0, sizeof(op));
                gmca_strlcpy(op.name, bad[i] != NULL ? bad[i] : sixty_four, sizeof(op.name));
                if (bad[i] == NULL)
                        memcpy(op.name, sixty_four, sizeof(op.name)); /* no NUL within 64 */
                op.roles = GMCA_ROLE_AUDIT_ADMIN;
                gmca_strlcpy(op.cert_serial, "01AB", sizeof(op.cert_serial));
                gmca_strlcpy(op.fingerprint, FPR_A, sizeof(op.fingerprint));
                gmca_strlcpy(op.created_by, "unit", sizeof(op.created_by));
                gmca_error_clear(&e);
                assert_int_equal(gmca_store_begin(f->s, &e), 0);
                expect(gmca_operator_insert(f->s, &op, test_kop, &e), &e, GMCA_ERR_INVALID,
                       "operator name", bad[i] != NULL ? bad[i] : "64 bytes");
                gmca_store_rollback(f->s);
        }
        /* Conflicting or no roles are refused before the store is touched. */
        memset(&op, 0, sizeof(op));
        gmca_strlcpy(op.name, "审计员 甲", sizeof(op.name));
        op.roles = GMCA_ROLE_AUDIT_ADMIN | GMCA_ROLE_SUPER_ADMIN;
        gmca_strlcpy(op.cert_serial, "01AB", sizeof(op.cert_serial));
        gmca_strlcpy(op.fingerprint, FPR_A, sizeof(op.fingerprint));
        gmca_strlcpy(op.created_by, "unit", sizeof(op.created_by));
        gmca_error_clear(&e);
        expect(gmca_operator_insert(f->s, &op, test_kop, &e), &e, GMCA_ERR_POLICY, "audit_admin",
               "conflict");
        op.roles = 0;
        gmca_error_clear(&e);
        expect(gmca_operator_insert(f->s, &op, test_kop, &e), &e, GMCA_ERR_INVALID, "role",
               "no role");
        /* A good name with a space inside and CJK, and a duplicate. */
        op.roles = GMCA_ROLE_AUDIT_ADMIN;
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        expect(gmca_operator_insert(f->s, &op, test_kop, &e), &e, 0, NULL, "good name");
        gmca_strlcpy(op.cert_serial, "01AC", sizeof(op.cert_serial));
        op.fingerprint[0] = '1';
        expect(gmca_operator_insert(f->s, &op, test_kop, &e), &e, GMCA_ERR_EXISTS, "already",
               "same name");
        gmca_store_rollback(f->s);
        gmca_error_clear(&e);
        expect(gmca_operator_get(f->s, "审计员 甲", &op, &e), &e, GMCA_ERR_NOTFOUND, NULL,
               "rolled back");
}

static int collect(const struct gmca_operator *op, void *arg)
{
        char *seen = arg;
        size_t used = strlen(seen);

        snprintf(seen + used, 512 - used, "%s;", op->name);
        return 0;
}

static void test_operator_store(void **state)
{
        struct fixture *f = *state;
        struct gmca_operator op;
        struct gmca_error e = {0};
        char seen[512] = "";
        uint8_t *der = NULL;
        char fpr[GMCA_AUTH_FPR_LEN + 1];
        int len;

        expect(gmca_operator_get(f->s, "bob", &op, &e), &e, 0, NULL, "get bob");
        assert_int_equal(op.roles, GMCA_ROLE_BUSINESS_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN);
        assert_string_equal(op.status, GMCA_OP_ACTIVE);
        assert_string_equal(op.cert_serial, f->bob.serial);
        assert_string_equal(op.created_by, "unit");
        len = i2d_X509(f->bob.cert, &der);
        gmca_auth_fingerprint(der, (size_t)len, fpr);
        OPENSSL_free(der);
        assert_string_equal(op.fingerprint, fpr);
        memset(&op, 0, sizeof(op));
        expect(gmca_operator_by_fingerprint(f->s, fpr, &op, &e), &e, 0, NULL, "by fingerprint");
        assert_string_equal(op.name, "bob");
        expect(gmca_operator_by_fingerprint(f->s, FPR_A, &op, &e), &e, GMCA_ERR_NOTFOUND, NULL,
               "unknown fingerprint");
        gmca_error_clear(&e);
        expect(gmca_operator_list(f->s, collect, seen, &e), &e, 0, NULL, "list");
        assert_non_null(strstr(seen, "alice;bob;"));
        expect(gmca_operator_set_status(f->s, "nobody", GMCA_OP_DISABLED, f->now, &e), &e,
               GMCA_ERR_NOTFOUND, NULL, "status of nobody");
        gmca_error_clear(&e);
        expect(gmca_operator_set_status(f->s, "bob", "sleeping", f->now, &e), &e, GMCA_ERR_INVALID,
               NULL, "bad status");
}

/* ---- the operator records' tags ---- */

static const char SQL_T_TAG_SET[] = "UPDATE operators SET tag = ? WHERE name = ?";

static void test_operator_tag(void **state)
{
        struct fixture *f = *state;
        struct gmca_operator op, t;
        struct gmca_operator_add_req r;
        struct gmca_error e = {0};
        uint8_t tag[GMCA_OP_TAG_LEN], kop[GMCA_OP_KEY_LEN], other[GMCA_OP_KEY_LEN];
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        struct gmca_q q;
        uint8_t *csr;
        size_t len;

        /* Round trip: the row as stored checks under the key it was made with, only. */
        expect(gmca_operator_get(f->s, "bob", &op, &e), &e, 0, NULL, "get bob");
        expect(gmca_operator_tag_check(&op, test_kop, &e), &e, 0, NULL, "bob's tag");
        expect(gmca_operator_tag(&op, test_kop, tag, &e), &e, 0, NULL, "tag");
        assert_memory_equal(tag, op.tag, sizeof(tag));
        memcpy(other, test_kop, sizeof(other));
        other[31] ^= 1;
        gmca_error_clear(&e);
        expect(gmca_operator_tag_check(&op, other, &e), &e, GMCA_ERR_AUTH,
               "operator bob: record not made by the custodians (tag)", "another key");
        gmca_error_clear(&e);
        expect(gmca_operator_tag_check(&op, NULL, &e), &e, GMCA_ERR_INTERNAL, "K_op", "no key");
        gmca_error_clear(&e);
        expect(gmca_operator_tag_check(NULL, test_kop, &e), &e, GMCA_ERR_INTERNAL, NULL,
               "no record");

        /* Each field under the tag, changed: refused. */
        for (int i = 0; i < 8; i++) {
                static const char *const what[] = {"name",         "name extended", "roles raised",
                                                   "a role added", "cert_serial",   "fingerprint",
                                                   "tag",          "fields shifted"};

                t = op;
                switch (i) {
                case 0:
                        t.name[0] = 'B';
                        break;
                case 1:
                        gmca_strlcpy(t.name, "bob ", sizeof(t.name));
                        break;
                case 2:
                        t.roles = GMCA_ROLE_SUPER_ADMIN;
                        break;
                case 3:
                        t.roles |= GMCA_ROLE_BUSINESS_OPERATOR;
                        break;
                case 4:
                        t.cert_serial[0] = t.cert_serial[0] == '1' ? '2' : '1';
                        break;
                case 5:
                        t.fingerprint[63] = t.fingerprint[63] == 'a' ? 'b' : 'a';
                        break;
                case 6:
                        t.tag[5] ^= 0x40;
                        break;
                case 7: /* the same bytes, split elsewhere between name and serial */
                        snprintf(t.name, sizeof(t.name), "bob%c", t.cert_serial[0]);
                        memmove(t.cert_serial, t.cert_serial + 1, strlen(t.cert_serial));
                        break;
                }
                gmca_error_clear(&e);
                expect(gmca_operator_tag_check(&t, test_kop, &e), &e, GMCA_ERR_AUTH,
                       "record not made by the custodians (tag)", what[i]);
        }
        /* The status is not under it: the API's super admin disables without K_op. */
        t = op;
        gmca_strlcpy(t.status, GMCA_OP_DISABLED, sizeof(t.status));
        t.status_time = 12345;
        t.id = 999;
        gmca_error_clear(&e);
        expect(gmca_operator_tag_check(&t, test_kop, &e), &e, 0, NULL, "status changed");

        /* A stored tag of the wrong length reads as zeros, which never check. */
        assert_int_equal(gmca_q_open(f->s, SQL_T_TAG_SET, &q, &e), 0);
        gmca_q_blob(&q, op.tag, 16);
        gmca_q_text(&q, "bob");
        assert_int_equal(gmca_q_step(&q, &e, "short tag"), GMCA_DB_DONE);
        gmca_q_close(&q);
        expect(gmca_operator_get(f->s, "bob", &t, &e), &e, 0, NULL, "still readable");
        memset(tag, 0, sizeof(tag));
        assert_memory_equal(t.tag, tag, sizeof(tag));
        expect(gmca_operator_tag_check(&t, test_kop, &e), &e, GMCA_ERR_AUTH, "(tag)", "short tag");
        gmca_error_clear(&e);
        assert_int_equal(gmca_q_open(f->s, SQL_T_TAG_SET, &q, &e), 0);
        gmca_q_blob(&q, op.tag, sizeof(op.tag));
        gmca_q_text(&q, "bob");
        assert_int_equal(gmca_q_step(&q, &e, "tag back"), GMCA_DB_DONE);
        gmca_q_close(&q);

        /* No key, no record. */
        memset(&t, 0, sizeof(t));
        gmca_strlcpy(t.name, "untagged", sizeof(t.name));
        t.roles = GMCA_ROLE_AUDIT_ADMIN;
        gmca_strlcpy(t.cert_serial, "01AD", sizeof(t.cert_serial));
        gmca_strlcpy(t.fingerprint, FPR_A, sizeof(t.fingerprint));
        gmca_strlcpy(t.created_by, "unit", sizeof(t.created_by));
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        expect(gmca_operator_insert(f->s, &t, NULL, &e), &e, GMCA_ERR_INTERNAL, "K_op", "no key");
        gmca_store_rollback(f->s);
        gmca_error_clear(&e);

        /* gmca operator add tags under the custodians' K_op. */
        assert_non_null(key);
        csr = csr_for(key, "制证员 周", &len);
        memset(&r, 0, sizeof(r));
        r.name = "制证员 周";
        r.roles = "business_operator";
        r.csr = csr;
        r.csr_len = len;
        expect(gmca_operator_add(f->c, &r, &t, NULL, &e), &e, 0, NULL, "add");
        expect(gmca_operator_key(f->c, kop, &e), &e, 0, NULL, "K_op of the custodians");
        expect(gmca_operator_get(f->s, "制证员 周", &op, &e), &e, 0, NULL, "read back");
        assert_memory_equal(op.tag, t.tag, sizeof(op.tag));
        expect(gmca_operator_tag_check(&op, kop, &e), &e, 0, NULL, "added operator's tag");
        expect(gmca_operator_tag_check(&op, test_kop, &e), &e, GMCA_ERR_AUTH, "(tag)",
               "not under another key");
        OPENSSL_cleanse(kop, sizeof(kop));
        OPENSSL_free(csr);
        EVP_PKEY_free(key);
}

/* ---- signed requests ---- */

static int verify(struct fixture *f, const struct gmca_auth_headers *h, const char *method,
                  const char *target, const char *body, int64_t now, struct gmca_auth_result *res,
                  struct gmca_error *e)
{
        gmca_error_clear(e);
        return gmca_auth_verify(f->s, h, method, target, (const uint8_t *)body,
                                body != NULL ? strlen(body) : 0, now, res, e);
}

static void sign(struct op_key *k, const char *method, const char *target, const char *body,
                 int64_t at, struct gmca_auth_headers *h)
{
        struct gmca_error e = {0};

        if (gmca_auth_sign(k->key, k->cert, method, target, (const uint8_t *)body,
                           body != NULL ? strlen(body) : 0, at, h, &e) != 0)
                fail_msg("sign: %s", e.msg);
}

static int64_t nonce_rows(struct fixture *f)
{
        static const char sql[] = "SELECT COUNT(*) FROM nonces";
        struct gmca_error e = {0};
        struct gmca_q q;
        int64_t n;

        assert_int_equal(gmca_q_open(f->s, sql, &q, &e), 0);
        assert_int_equal(gmca_q_step(&q, &e, "count"), GMCA_DB_ROW);
        n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

static void test_sign_verify(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_headers h, h2;
        struct gmca_auth_result res;
        struct gmca_auth_proof p;
        struct gmca_operator op;
        struct gmca_error e = {0};
        const char *body = "{\"kind\":\"individual\",\"name\":\"张三\"}";

        memset(&res, 0, sizeof(res));
        sign(&f->alice, "POST", "/api/v1/applicants", body, f->now, &h);
        assert_int_equal(strlen(h.operator_fpr), 64);
        assert_true(strlen(h.nonce) >= GMCA_AUTH_NONCE_MIN);
        assert_int_equal(verify(f, &h, "POST", "/api/v1/applicants", body, f->now, &res, &e), 0);
        assert_string_equal(res.op.name, "alice");
        assert_int_equal(res.op.roles, GMCA_ROLE_BUSINESS_OPERATOR);
        assert_non_null(res.proof);
        /* The proof checks again, and holds what was signed. */
        expect(gmca_auth_proof_check(f->s, res.proof, res.proof_len, f->now + 3600, &p, &op, &e),
               &e, 0, NULL, "proof check");
        assert_string_equal(op.name, "alice");
        assert_string_equal(p.method, "POST");
        assert_string_equal(p.target, "/api/v1/applicants");
        assert_int_equal(p.timestamp, f->now);
        assert_string_equal(p.fpr, h.operator_fpr);
        assert_int_equal(p.body_len, strlen(body));
        assert_memory_equal(p.body, body, p.body_len);
        gmca_auth_result_clear(&res);
        assert_null(res.proof);

        /* Two signatures of the same request differ in their nonce. */
        sign(&f->alice, "POST", "/api/v1/applicants", body, f->now, &h2);
        assert_string_not_equal(h.nonce, h2.nonce);

        /* Clock skew: 300 s either way passes, 301 s is stale. */
        for (int d = -1; d <= 1; d += 2) {
                sign(&f->bob, "GET", "/api/v1/whoami", NULL, f->now + d * GMCA_AUTH_SKEW, &h);
                expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, 0, NULL,
                       "skew 300");
                gmca_auth_result_clear(&res);
                sign(&f->bob, "GET", "/api/v1/whoami", NULL, f->now + d * (GMCA_AUTH_SKEW + 1), &h);
                expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e,
                       GMCA_ERR_AUTH, "stale", "skew 301");
                assert_null(res.proof);
        }

        /* Replayed: the same headers twice. */
        sign(&f->bob, "GET", "/api/v1/whoami", "", f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", "", f->now, &res, &e), &e, 0, NULL, "first");
        gmca_auth_result_clear(&res);
        expect(verify(f, &h, "GET", "/api/v1/whoami", "", f->now + 1, &res, &e), &e, GMCA_ERR_AUTH,
               "replayed", "second");

        /* Body, target, method changed after signing. */
        sign(&f->alice, "POST", "/api/v1/applicants", body, f->now, &h);
        expect(
            verify(f, &h, "POST", "/api/v1/applicants", "{\"kind\":\"device\"}", f->now, &res, &e),
            &e, GMCA_ERR_AUTH, "bad signature", "body changed");
        expect(verify(f, &h, "POST", "/api/v1/applicants?x=1", body, f->now, &res, &e), &e,
               GMCA_ERR_AUTH, "bad signature", "target changed");
        expect(verify(f, &h, "PUT", "/api/v1/applicants", body, f->now, &res, &e), &e,
               GMCA_ERR_AUTH, "bad signature", "method changed");
        /* None of those spent the nonce: the request as signed still passes. */
        expect(verify(f, &h, "POST", "/api/v1/applicants", body, f->now, &res, &e), &e, 0, NULL,
               "unchanged");
        gmca_auth_result_clear(&res);

        /* Signed with another key under alice's certificate. */
        {
                struct op_key forged = {.key = f->bob.key, .cert = f->alice.cert};

                sign(&forged, "GET", "/api/v1/whoami", NULL, f->now, &h);
                expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e,
                       GMCA_ERR_AUTH, "bad signature", "wrong key");
        }
        /* A signature that is not base64, or not canonical base64. */
        sign(&f->alice, "GET", "/api/v1/whoami", NULL, f->now, &h);
        h2 = h;
        h2.signature[3] = '*';
        expect(verify(f, &h2, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "X-Gmca-Signature", "bad base64");
        h2 = h;
        h2.signature[0] = h.signature[0] == 'M' ? 'N' : 'M';
        expect(verify(f, &h2, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "bad signature", "flipped signature");

        /* Unknown fingerprint. */
        h2 = h;
        memcpy(h2.operator_fpr, FPR_A, sizeof(h2.operator_fpr));
        expect(verify(f, &h2, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "unknown operator", "unknown");

        /* Each header missing, then malformed. */
        for (int i = 0; i < 4; i++) {
                static const char *const hn[] = {"X-Gmca-Operator", "X-Gmca-Timestamp",
                                                 "X-Gmca-Nonce", "X-Gmca-Signature"};
                char *fld[] = {h2.operator_fpr, h2.timestamp, h2.nonce, h2.signature};

                h2 = h;
                fld[i][0] = '\0';
                expect(verify(f, &h2, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e,
                       GMCA_ERR_AUTH, hn[i], "missing header");
                assert_non_null(strstr(e.msg, "missing"));
                h2 = h;
                fld[i][1] = '!';
                expect(verify(f, &h2, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e,
                       GMCA_ERR_AUTH, hn[i], "malformed header");
        }
        /* Headers not NUL-terminated within their fields. */
        h2 = h;
        memset(h2.nonce, 'a', sizeof(h2.nonce));
        expect(verify(f, &h2, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "malformed", "unterminated");
        /* A bad method or target from the server is a malformed request. */
        expect(verify(f, &h, "get", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "malformed", "lower-case method");

        /* Not inside a transaction. */
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e,
               GMCA_ERR_INTERNAL, "transaction", "in a transaction");
        gmca_store_rollback(f->s);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, 0, NULL,
               "after the transaction");
        gmca_auth_result_clear(&res);
}

static void test_nonce_purge(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_headers h;
        struct gmca_auth_result res;
        struct gmca_error e = {0};
        /* Past every nonce so far, whose timestamps were at most now + GMCA_AUTH_SKEW. */
        int64_t later = f->now + 3 * GMCA_AUTH_SKEW + 1;

        memset(&res, 0, sizeof(res));
        sign(&f->alice, "GET", "/api/v1/whoami", NULL, f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, 0, NULL, "now");
        gmca_auth_result_clear(&res);
        assert_true(nonce_rows(f) >= 1);
        sign(&f->alice, "GET", "/api/v1/whoami", NULL, later, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, later, &res, &e), &e, 0, NULL, "later");
        gmca_auth_result_clear(&res);
        /* Every earlier nonce is past use and gone; only the last one is kept. */
        assert_int_equal(nonce_rows(f), 1);
}

static void test_operator_state(void **state)
{
        struct fixture *f = *state;
        struct op_key carol, dave, erin, frank;
        struct gmca_auth_headers h;
        struct gmca_auth_result res;
        struct gmca_auth_proof p;
        struct gmca_operator op;
        struct gmca_error e = {0};
        uint8_t *proof = NULL;
        size_t proof_len = 0;

        memset(&res, 0, sizeof(res));
        /* Disabled operator (certificate still valid). */
        new_operator(f, "carol", GMCA_ROLE_BUSINESS_OPERATOR, 0, &carol);
        sign(&carol, "GET", "/api/v1/whoami", NULL, f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, 0, NULL,
               "carol");
        proof = res.proof;
        proof_len = res.proof_len;
        res.proof = NULL;
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        assert_int_equal(gmca_operator_set_status(f->s, "carol", GMCA_OP_DISABLED, f->now, &e), 0);
        assert_int_equal(gmca_store_commit(f->s, &e), 0);
        sign(&carol, "GET", "/api/v1/whoami", NULL, f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "operator disabled", "disabled");
        /* Her earlier proof no longer passes either. */
        gmca_error_clear(&e);
        expect(gmca_auth_proof_check(f->s, proof, proof_len, f->now, &p, &op, &e), &e,
               GMCA_ERR_AUTH, "operator disabled", "proof of a disabled operator");
        OPENSSL_free(proof);

        /* Revoked operator certificate. */
        new_operator(f, "dave", GMCA_ROLE_BUSINESS_OPERATOR, 0, &dave);
        assert_int_equal(gmca_store_begin(f->s, &e), 0);
        assert_int_equal(gmca_store_cert_revoke(f->s, dave.serial, f->now, 9, 0, &e), 0);
        assert_int_equal(gmca_store_commit(f->s, &e), 0);
        sign(&dave, "GET", "/api/v1/whoami", NULL, f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "operator certificate revoked", "revoked");

        /* Expired (one day) and not yet valid operator certificates. */
        new_operator(f, "erin", GMCA_ROLE_AUDIT_ADMIN, 1, &erin);
        sign(&erin, "GET", "/api/v1/audit", NULL, f->now + 2 * 86400, &h);
        expect(verify(f, &h, "GET", "/api/v1/audit", NULL, f->now + 2 * 86400, &res, &e), &e,
               GMCA_ERR_AUTH, "expired", "expired");
        sign(&erin, "GET", "/api/v1/audit", NULL, f->now - 86400, &h);
        expect(verify(f, &h, "GET", "/api/v1/audit", NULL, f->now - 86400, &res, &e), &e,
               GMCA_ERR_AUTH, "not yet valid", "not yet valid");

        /* A certificate of another profile recorded as an operator's. */
        issue(f, "ra-comm", "frank", 0, &frank);
        gmca_error_clear(&e);
        expect(add_operator(f, "frank", GMCA_ROLE_SYSTEM_ADMIN, &frank, &e), &e, 0, NULL, "frank");
        sign(&frank, "GET", "/api/v1/whoami", NULL, f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "not an operator certificate", "ra-comm certificate");

        /* Same certificate twice is refused. */
        gmca_error_clear(&e);
        expect(add_operator(f, "frank2", GMCA_ROLE_SYSTEM_ADMIN, &frank, &e), &e, GMCA_ERR_EXISTS,
               NULL, "same certificate");

        op_key_free(&carol);
        op_key_free(&dave);
        op_key_free(&erin);
        op_key_free(&frank);
}

static int count_event(const struct gmca_audit_rec *r, void *arg)
{
        int *n = arg;

        n[r->success ? 0 : 1]++;
        return 0;
}

static void test_operator_disable(void **state)
{
        struct fixture *f = *state;
        struct gmca_audit_filter flt = {.event = GMCA_EV_OPERATOR_DISABLE};
        struct op_key gina;
        struct gmca_auth_headers h;
        struct gmca_auth_result res;
        struct gmca_operator op;
        struct gmca_cert_rec rec;
        struct gmca_error e = {0};
        int64_t count = 0, bad = 0;
        int n[2] = {0, 0};

        memset(&res, 0, sizeof(res));
        memset(&rec, 0, sizeof(rec));
        new_operator(f, "gina", GMCA_ROLE_SUPER_ADMIN, 0, &gina);
        expect(gmca_operator_disable(f->s, "gina", "root-admin", f->now, &e), &e, 0, NULL,
               "disable");
        expect(gmca_operator_get(f->s, "gina", &op, &e), &e, 0, NULL, "get gina");
        assert_string_equal(op.status, GMCA_OP_DISABLED);
        assert_int_equal(op.status_time, f->now);
        assert_int_equal(gmca_store_cert_get(f->s, gina.serial, &rec, &e), 0);
        assert_int_equal(rec.status, GMCA_CERT_REVOKED);
        assert_int_equal(rec.reason, 9); /* privilegeWithdrawn */
        gmca_cert_rec_clear(&rec);
        sign(&gina, "GET", "/api/v1/whoami", NULL, f->now, &h);
        expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, GMCA_ERR_AUTH,
               "revoked", "disabled operator's request");

        /* Again, and an unknown name: refused and audited. */
        gmca_error_clear(&e);
        expect(gmca_operator_disable(f->s, "gina", "root-admin", f->now, &e), &e, GMCA_ERR_STATE,
               "already disabled", "twice");
        gmca_error_clear(&e);
        expect(gmca_operator_disable(f->s, "nobody", "root-admin", f->now, &e), &e,
               GMCA_ERR_NOTFOUND, NULL, "nobody");
        assert_false(gmca_store_in_transaction(f->s));
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_audit_iter(f->s, &flt, count_event, n, &e), 0);
        assert_int_equal(n[0], 1);
        assert_int_equal(n[1], 2);
        assert_int_equal(gmca_audit_verify(f->s, &count, &bad, &e), 0);
        op_key_free(&gina);
}

static int64_t cert_count(struct fixture *f)
{
        struct gmca_error e = {0};
        int64_t n = -1;

        assert_int_equal(gmca_store_cert_count(f->s, &n, &e), 0);
        return n;
}

static int count_ops(const struct gmca_operator *op, void *arg)
{
        (void)op;
        (*(int *)arg)++;
        return 0;
}

static int operators(struct fixture *f)
{
        struct gmca_error e = {0};
        int n = 0;

        assert_int_equal(gmca_operator_list(f->s, count_ops, &n, &e), 0);
        return n;
}

static void test_operator_add(void **state)
{
        struct fixture *f = *state;
        struct gmca_audit_filter flt = {.event = GMCA_EV_OPERATOR_ADD};
        struct gmca_operator_add_req r;
        struct gmca_operator op;
        struct gmca_error e = {0};
        struct op_key k;
        EVP_PKEY *key = gmca_sm2_keygen(&e), *other = gmca_sm2_keygen(&e);
        uint8_t *csr, *csr2, *der = NULL;
        size_t len, len2;
        char fpr[GMCA_AUTH_FPR_LEN + 1];
        int64_t certs0, count = 0, bad = 0;
        int ops0, n[2] = {0, 0}, dlen;
        X509 *cert = NULL;

        csr = csr_for(key, "审核员 李", &len);
        memset(&r, 0, sizeof(r));
        r.name = "审核员 李";
        r.roles = "business_admin,template_admin";
        r.csr = csr;
        r.csr_len = len;
        expect(gmca_operator_add(f->c, &r, &op, &cert, &e), &e, 0, NULL, "add");
        assert_non_null(cert);
        assert_int_equal(op.roles, GMCA_ROLE_BUSINESS_ADMIN | GMCA_ROLE_TEMPLATE_ADMIN);
        dlen = i2d_X509(cert, &der);
        gmca_auth_fingerprint(der, (size_t)dlen, fpr);
        OPENSSL_free(der);
        assert_string_equal(op.fingerprint, fpr);
        assert_string_equal(op.created_by, "unit-operator");
        /* The new operator can sign requests at once. */
        {
                struct gmca_auth_headers h;
                struct gmca_auth_result res;

                memset(&res, 0, sizeof(res));
                k.key = key;
                k.cert = cert;
                f->now = (int64_t)gmca_now();
                sign(&k, "GET", "/api/v1/whoami", NULL, f->now, &h);
                expect(verify(f, &h, "GET", "/api/v1/whoami", NULL, f->now, &res, &e), &e, 0, NULL,
                       "new operator signs");
                assert_string_equal(res.op.name, "审核员 李");
                gmca_auth_result_clear(&res);
        }

        /* Refusals: each audited, none leaves a certificate or an operator. */
        certs0 = cert_count(f);
        ops0 = operators(f);
        csr2 = csr_for(other, "someone", &len2);
        static const struct {
                const char *name, *roles;
                int same_key, bad_csr, want;
                const char *msg;
        } cases[] = {
            {"审核员 李", "business_operator", 0, 0, GMCA_ERR_EXISTS, "exists"},
            {"another", "business_operator", 1, 0, GMCA_ERR_EXISTS, "already operator"},
            {"auditor", "audit_admin,business_admin", 0, 0, GMCA_ERR_POLICY, "CPS §6.2.3"},
            {"auditor", "auditor", 0, 0, GMCA_ERR_INVALID, "unknown role"},
            {"", "audit_admin", 0, 0, GMCA_ERR_INVALID, "operator name"},
            {"bad\ncsr", "audit_admin", 0, 0, GMCA_ERR_INVALID, "control"},
            {"badcsr", "audit_admin", 0, 1, GMCA_ERR_INVALID, NULL},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint8_t junk[64];

                memset(junk, 0x30, sizeof(junk));
                r.name = cases[i].name;
                r.roles = cases[i].roles;
                r.csr = cases[i].bad_csr ? junk : cases[i].same_key ? csr : csr2;
                r.csr_len = cases[i].bad_csr ? sizeof(junk) : cases[i].same_key ? len : len2;
                gmca_error_clear(&e);
                expect(gmca_operator_add(f->c, &r, NULL, NULL, &e), &e, cases[i].want, cases[i].msg,
                       cases[i].name);
                assert_int_equal(cert_count(f), certs0);
                assert_int_equal(operators(f), ops0);
                assert_false(gmca_store_in_transaction(f->s));
        }
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_audit_iter(f->s, &flt, count_event, n, &e), 0);
        assert_int_equal(n[0], 1);
        assert_int_equal(n[1], (int)(sizeof(cases) / sizeof(cases[0])));
        assert_int_equal(gmca_audit_verify(f->s, &count, &bad, &e), 0);
        OPENSSL_free(csr);
        OPENSSL_free(csr2);
        X509_free(cert);
        EVP_PKEY_free(key);
        EVP_PKEY_free(other);
}

/* ---- proofs ---- */

static void test_proof(void **state)
{
        struct fixture *f = *state;
        struct gmca_auth_headers h;
        struct gmca_auth_result res;
        struct gmca_auth_proof p;
        struct gmca_operator op;
        struct gmca_error e = {0};
        const char *body = "{\"decision\":\"approve\"}";
        uint8_t *buf, *re = NULL;
        size_t len, relen = 0;

        memset(&res, 0, sizeof(res));
        sign(&f->bob, "POST", "/api/v1/applications/7/decide", body, f->now, &h);
        expect(verify(f, &h, "POST", "/api/v1/applications/7/decide", body, f->now, &res, &e), &e,
               0, NULL, "bob");
        buf = res.proof;
        len = res.proof_len;

        /* decode, encode again: the same bytes. */
        expect(gmca_auth_proof_decode(buf, len, &p, &e), &e, 0, NULL, "decode");
        expect(
            gmca_auth_proof_encode(p.base, p.sig, p.sig_len, p.body, p.body_len, &re, &relen, &e),
            &e, 0, NULL, "encode");
        assert_int_equal(relen, len);
        assert_memory_equal(re, buf, len);
        OPENSSL_free(re);

        /* Every truncation, and a byte more, are malformed. */
        for (size_t n = 0; n < len; n++) {
                gmca_error_clear(&e);
                assert_int_equal(gmca_auth_proof_decode(buf, n, &p, &e), GMCA_ERR_INVALID);
        }
        {
                uint8_t *more = malloc(len + 1);

                memcpy(more, buf, len);
                more[len] = 0;
                gmca_error_clear(&e);
                assert_int_equal(gmca_auth_proof_decode(more, len + 1, &p, &e), GMCA_ERR_INVALID);
                free(more);
        }

        /* Flip each byte of the proof: it never checks. */
        for (size_t i = 0; i < len; i++) {
                uint8_t *t = malloc(len);
                int rc;

                memcpy(t, buf, len);
                t[i] ^= 0x01;
                gmca_error_clear(&e);
                rc = gmca_auth_proof_check(f->s, t, len, f->now, &p, &op, &e);
                if (rc != GMCA_ERR_AUTH)
                        fail_msg("byte %zu flipped: rc %d (%s)", i, rc, e.msg);
                free(t);
        }

        /* Hand-made proofs: interior NUL, no NUL, bad magic, extra line, empty signature. */
        {
                static const struct {
                        const char *base;
                        size_t blen;
                        const char *why;
                } bad[] = {
                    {"gmca-request-v1\0x", 18, "NUL"},
                    {"gmca-request-v1", 15, "NUL"},
                    {"gmca-request-v2\nGET\n/\n1\nabcdefghijklmnop\n" FPR_A "\n" FPR_A, 0,
                     "gmca-request-v1"},
                    {"gmca-request-v1\nGET\n/\n1\nabcdefghijklmnop\n" FPR_A "\n" FPR_A "\n", 0,
                     "lines"},
                    {"gmca-request-v1\nGET\n/\n01\nabcdefghijklmnop\n" FPR_A "\n" FPR_A, 0,
                     "malformed"},
                };
                const uint8_t sig[8] = {1, 2, 3, 4, 5, 6, 7, 8};

                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        size_t bl = bad[i].blen ? bad[i].blen : strlen(bad[i].base) + 1;
                        size_t tl = 12 + bl + sizeof(sig);
                        uint8_t *t = calloc(1, tl);

                        gmca_put_be32(t, (uint32_t)bl);
                        memcpy(t + 4, bad[i].base, bl);
                        gmca_put_be32(t + 4 + bl, sizeof(sig));
                        memcpy(t + 8 + bl, sig, sizeof(sig));
                        gmca_put_be32(t + 8 + bl + sizeof(sig), 0);
                        gmca_error_clear(&e);
                        expect(gmca_auth_proof_decode(t, tl, &p, &e), &e, GMCA_ERR_INVALID,
                               bad[i].why, bad[i].why);
                        free(t);
                }
                gmca_error_clear(&e);
                assert_int_equal(gmca_auth_proof_encode("x", sig, 0, NULL, 0, &re, &relen, &e),
                                 GMCA_ERR_INVALID);
                gmca_error_clear(&e);
                assert_int_equal(gmca_auth_proof_encode("x", sig, 81, NULL, 0, &re, &relen, &e),
                                 GMCA_ERR_LIMIT);
        }

        /* A proof signed in the future (past the skew) is refused. */
        gmca_error_clear(&e);
        expect(gmca_auth_proof_check(f->s, buf, len, f->now - GMCA_AUTH_SKEW - 1, &p, &op, &e), &e,
               GMCA_ERR_AUTH, "future", "future proof");
        gmca_auth_result_clear(&res);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_permission_table), cmocka_unit_test(test_roles_text),
            cmocka_unit_test(test_conflicts),        cmocka_unit_test(test_base),
            cmocka_unit_test(test_operator_names),   cmocka_unit_test(test_operator_store),
            cmocka_unit_test(test_sign_verify),      cmocka_unit_test(test_nonce_purge),
            cmocka_unit_test(test_operator_state),   cmocka_unit_test(test_operator_disable),
            cmocka_unit_test(test_operator_add),     cmocka_unit_test(test_proof),
            cmocka_unit_test(test_operator_tag),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
