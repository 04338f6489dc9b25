/*
 * Unit tests of the CA compromise procedure (CPS §6.10.3) in-process:
 * every certificate of the compromised CA revoked with cACompromise and
 * replaced under the new CA by a copy with the same subject, key,
 * extensions and end date; refusals audited and changing nothing; and
 * gmca_cert_reissue's own refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca.h"
#include "crypto.h"
#include "util.h"
#include "testutil.h"

static const char *const names[5] = {"张三", "李四", "王五", "赵六", "钱七"};
static const char *const pins[5] = {"Unit1pinAA", "Unit2pinBB", "Unit3pinCC", "Unit4pinDD",
                                    "Unit5pinEE"};
#define INFO "{\"identity_card_number\": \"11010519491231002X\"}"
#define NCERTS 12

struct fixture {
        char top[256];
        char dir[300];
        char shares[5][320];
        struct gmca_custodian cust[5];
        struct gmca_ctx *c;
        char serials[NCERTS][GMCA_SERIAL_HEX_MAX];
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        char d[300], profiles[1024];
        const char *src = getenv("GMCA_SRC");

        snprintf(f->top, sizeof(f->top), "/tmp/gmca-test-compromise.XXXXXX");
        if (mkdtemp(f->top) == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/ca", f->top);
        snprintf(d, sizeof(d), "%s/shares", f->top);
        mkdir(d, 0700);
        for (int i = 0; i < 5; i++) {
                snprintf(f->shares[i], sizeof(f->shares[i]), "%s/share-%d.json", d, i + 1);
                f->cust[i] =
                    (struct gmca_custodian){names[i], pins[i], strlen(pins[i]), f->shares[i]};
        }
        snprintf(profiles, sizeof(profiles), "%s/conf/profiles", src != NULL ? src : ".");
        p.root_dn = "C=CN, O=单元测试认证中心, CN=单元测试根 CA";
        p.sub_dn = "C=CN, O=单元测试认证中心, CN=单元测试运营 CA";
        p.profiles_src = profiles;
        p.actor = "unit";
        p.custodians = f->cust;
        p.ncustodians = 5;
        if (gmca_ca_init(f->dir, &p, &e) != 0 ||
            (f->c = gmca_ctx_open(f->dir, "unit-operator", &e)) == NULL ||
            gmca_ctx_activate(f->c, f->cust, 3, &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        for (int i = 0; i < NCERTS; i++) {
                EVP_PKEY *key = gmca_sm2_keygen(&e);
                X509_REQ *req = X509_REQ_new();
                X509_NAME *name = X509_NAME_new();
                EVP_MD_CTX *mctx;
                unsigned char *der = NULL;
                char cn[32];
                int n;

                snprintf(cn, sizeof(cn), "用户 %d", i);
                X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1,
                                           -1, 0);
                X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                           -1, 0);
                X509_REQ_set_subject_name(req, name);
                X509_REQ_set_pubkey(req, key);
                mctx = gmca_sm2_sign_ctx(key, NULL, &e);
                if (mctx == NULL || X509_REQ_sign_ctx(req, mctx) <= 0 ||
                    (n = i2d_X509_REQ(req, &der)) <= 0)
                        return -1;
                struct gmca_issue_req r = {.ca = NULL,
                                           .profile = "personal-sign",
                                           .csr = der,
                                           .csr_len = (size_t)n,
                                           .info_json = INFO,
                                           .info_len = strlen(INFO),
                                           .days = 0,
                                           .not_after = 0};
                if (gmca_ca_issue(f->c, &r, f->serials[i], NULL, &e) != 0) {
                        fprintf(stderr, "issue: %s\n", e.msg);
                        return -1;
                }
                OPENSSL_free(der);
                EVP_MD_CTX_free(mctx);
                X509_NAME_free(name);
                X509_REQ_free(req);
                EVP_PKEY_free(key);
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[600];

        gmca_ctx_close(f->c);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static X509 *load_cert(struct fixture *f, const char *serial)
{
        struct gmca_cert_rec r;
        struct gmca_error e = {0};
        X509 *x;

        memset(&r, 0, sizeof(r));
        expect(gmca_store_cert_get(gmca_ctx_store(f->c), serial, &r, &e), &e, 0, NULL, serial);
        x = gmca_cert_parse(r.der, r.der_len, &e);
        assert_non_null(x);
        gmca_cert_rec_clear(&r);
        return x;
}

static X509 *ca_cert(struct fixture *f, const char *name)
{
        struct gmca_ca_rec r;
        struct gmca_error e = {0};
        X509 *x;

        memset(&r, 0, sizeof(r));
        expect(gmca_store_ca_get(gmca_ctx_store(f->c), name, &r, &e), &e, 0, NULL, name);
        x = gmca_cert_parse(r.cert_der, r.cert_len, &e);
        assert_non_null(x);
        gmca_ca_rec_clear(&r);
        return x;
}

static time_t cert_end(const X509 *x)
{
        struct tm tm;

        assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm), 1);
        return timegm(&tm);
}

static int64_t count_certs(struct fixture *f)
{
        int64_t n = 0;
        struct gmca_error e = {0};

        expect(gmca_store_cert_count(gmca_ctx_store(f->c), &n, &e), &e, 0, NULL, "count");
        return n;
}

struct pairs {
        char old[NCERTS + 1][GMCA_SERIAL_HEX_MAX];
        char nw[NCERTS + 1][GMCA_SERIAL_HEX_MAX];
        size_t n;
};

static int collect_pair(const char *o, const char *n, int64_t t, void *arg)
{
        struct pairs *p = arg;

        (void)t;
        if (p->n == NCERTS + 1)
                return 1;
        gmca_strlcpy(p->old[p->n], o, GMCA_SERIAL_HEX_MAX);
        gmca_strlcpy(p->nw[p->n++], n, GMCA_SERIAL_HEX_MAX);
        return 0;
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
        uint64_t *last = arg;

        assert_true(done <= total);
        assert_true(done >= *last);
        *last = done;
}

static int ext_text(X509 *x, int nid, char *buf, size_t len)
{
        BIO *b = BIO_new(BIO_s_mem());
        int i = X509_get_ext_by_NID(x, nid, -1), n;

        if (i < 0 || X509V3_EXT_print(b, X509_get_ext(x, i), 0, 0) != 1) {
                BIO_free(b);
                return -1;
        }
        n = BIO_read(b, buf, (int)len - 1);
        buf[n > 0 ? n : 0] = '\0';
        BIO_free(b);
        return 0;
}

static void test_compromise_sub(void **state)
{
        struct fixture *f = *state;
        struct gmca_compromise_params p = {0};
        struct gmca_compromise_result res;
        struct gmca_error e = {0};
        struct pairs pr = {0};
        uint64_t last = 0;
        int64_t count, bad = 0;
        X509 *nca, *oca;

        /* One revoked before: it keeps its reason and gets no replacement. */
        expect(gmca_ca_revoke(f->c, f->serials[3], 1, 0, &e), &e, 0, NULL, "revoke");
        p.batch = 5;
        p.progress = progress;
        p.progress_arg = &last;
        expect(gmca_ca_compromise(f->c, f->cust + 2, 3, &p, &res, &e), &e, 0, NULL, "compromise");
        assert_string_equal(res.job, "sub-g2");
        assert_string_equal(res.new_ca, "sub-g2");
        assert_int_equal(res.reissued, NCERTS - 1);
        assert_int_equal(res.revoked, NCERTS - 1);
        assert_int_equal(last, NCERTS - 1);
        assert_true(res.crl_number >= 1);
        assert_string_equal(gmca_ctx_default_ca(f->c), "sub-g2");
        expect(gmca_store_reissue_list(gmca_ctx_store(f->c), "sub-g2", collect_pair, &pr, &e), &e,
               0, NULL, "list");
        assert_int_equal(pr.n, NCERTS - 1);
        nca = ca_cert(f, "sub-g2");
        oca = ca_cert(f, "sub");
        assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(nca), X509_get0_pubkey(oca)), 1);
        for (size_t i = 0; i < pr.n; i++) {
                X509 *o = load_cert(f, pr.old[i]), *n = load_cert(f, pr.nw[i]);
                struct gmca_cert_rec r;
                char a[512], b[512];

                assert_string_not_equal(pr.old[i], f->serials[3]);
                assert_int_equal(X509_NAME_cmp(X509_get_subject_name(o), X509_get_subject_name(n)),
                                 0);
                assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(n), X509_get_subject_name(nca)),
                                 0);
                assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(o), X509_get0_pubkey(n)), 1);
                assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(o), X509_get0_notAfter(n)),
                                 0);
                assert_int_equal(X509_get_ext_count(o), X509_get_ext_count(n));
                expect(gmca_cert_verify_signed_by(n, X509_get0_pubkey(nca), NULL, &e), &e, 0, NULL,
                       "signed by the new CA");
                assert_int_equal(gmca_cert_verify_signed_by(n, X509_get0_pubkey(oca), NULL, &e),
                                 GMCA_ERR_VERIFY);
                gmca_error_clear(&e);
                assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(n),
                                                       X509_get0_subject_key_id(nca)),
                                 0);
                assert_int_equal(
                    ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(n), X509_get0_subject_key_id(o)),
                    0);
                assert_int_equal(ext_text(n, NID_crl_distribution_points, a, sizeof(a)), 0);
                assert_non_null(strstr(a, "/crl/sub-g2.crl"));
                assert_int_equal(ext_text(n, NID_info_access, a, sizeof(a)), 0);
                assert_non_null(strstr(a, "/ca/sub-g2.crt"));
                assert_int_equal(ext_text(o, NID_key_usage, a, sizeof(a)), 0);
                assert_int_equal(ext_text(n, NID_key_usage, b, sizeof(b)), 0);
                assert_string_equal(a, b);
                memset(&r, 0, sizeof(r));
                expect(gmca_store_cert_get(gmca_ctx_store(f->c), pr.old[i], &r, &e), &e, 0, NULL,
                       "old");
                assert_int_equal(r.status, GMCA_CERT_REVOKED);
                assert_int_equal(r.reason, 2);
                gmca_cert_rec_clear(&r);
                X509_free(o);
                X509_free(n);
        }
        /* The one revoked before keeps keyCompromise. */
        {
                struct gmca_cert_rec r;

                memset(&r, 0, sizeof(r));
                expect(gmca_store_cert_get(gmca_ctx_store(f->c), f->serials[3], &r, &e), &e, 0,
                       NULL, "kc");
                assert_int_equal(r.reason, 1);
                gmca_cert_rec_clear(&r);
        }
        X509_free(nca);
        X509_free(oca);
        expect(gmca_audit_verify(gmca_ctx_store(f->c), &count, &bad, &e), &e, 0, NULL, "audit");

        /* The compromised CA is not compromised twice, and issues nothing. */
        count = count_certs(f);
        p.ca = "sub";
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 3, &p, &res, &e), GMCA_ERR_STATE);
        assert_non_null(strstr(e.msg, "compromised"));
        assert_int_equal(count_certs(f), count);
}

static void test_compromise_refusals(void **state)
{
        struct fixture *f = *state;
        struct gmca_compromise_params p = {0};
        struct gmca_compromise_result res;
        struct gmca_error e = {0};
        struct gmca_ca_rec r;
        int64_t before = count_certs(f), n0 = 0, n1 = 0, bad;

        expect(gmca_audit_verify(gmca_ctx_store(f->c), &n0, &bad, &e), &e, 0, NULL, "audit");
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 2, &p, &res, &e), GMCA_ERR_AUTH);
        gmca_error_clear(&e);
        p.ca = "nosuch";
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 3, &p, &res, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        p.ca = NULL;
        p.batch = 10001;
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 3, &p, &res, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        p.batch = 0;
        p.new_name = "Bad Name";
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 3, &p, &res, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        p.new_name = "root";
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 3, &p, &res, &e), GMCA_ERR_EXISTS);
        gmca_error_clear(&e);
        p.new_name = NULL;
        p.dn = "not a DN";
        assert_int_equal(gmca_ca_compromise(f->c, f->cust, 3, &p, &res, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        /* Each refusal is one audit record; nothing else changed. */
        expect(gmca_audit_verify(gmca_ctx_store(f->c), &n1, &bad, &e), &e, 0, NULL, "audit");
        assert_int_equal(n1, n0 + 6);
        assert_int_equal(count_certs(f), before);
        memset(&r, 0, sizeof(r));
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(f->c), "sub-g2", &r, &e),
                         GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        expect(gmca_store_ca_get(gmca_ctx_store(f->c), "sub", &r, &e), &e, 0, NULL, "sub");
        assert_string_equal(r.key_state, GMCA_KEY_ACTIVE);
        gmca_ca_rec_clear(&r);
}

/* gmca_cert_reissue refuses an issuer that is no CA, an end past the issuer's, bad input. */
static void test_reissue_refusals(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        struct gmca_reissue_template t;
        struct gmca_pkey_signer ps;
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        X509 *sub = ca_cert(f, "sub"), *ee = load_cert(f, f->serials[0]), *x;
        struct gmca_cert_rec r;
        static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};

        memset(&r, 0, sizeof(r));
        expect(gmca_store_cert_get(gmca_ctx_store(f->c), f->serials[0], &r, &e), &e, 0, NULL, "ee");
        expect(gmca_pkey_signer_init(&ps, key, NULL, &e), &e, 0, NULL, "signer");
        memset(&t, 0, sizeof(t));
        t.issuer = sub;
        t.issuer_key = key; /* not the issuer certificate's key */
        t.signer = &ps.base;
        t.serial[0] = 0x11;
        t.not_before = gmca_now();
        t.not_after = t.not_before + 86400;
        x = gmca_cert_reissue(r.der, r.der_len, &t, &e);
        assert_null(x);
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        /* An end-entity certificate is no issuer. */
        t.issuer = ee;
        t.issuer_key = X509_get0_pubkey(ee);
        assert_null(gmca_cert_reissue(r.der, r.der_len, &t, &e));
        assert_int_equal(e.code, GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        /* Past the issuer's end (CPS §6.8 rule 1), or ending before it begins. */
        t.issuer = sub;
        t.issuer_key = X509_get0_pubkey(sub);
        t.not_after = cert_end(sub) + 86400;
        assert_null(gmca_cert_reissue(r.der, r.der_len, &t, &e));
        assert_int_equal(e.code, GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        t.not_after = t.not_before;
        assert_null(gmca_cert_reissue(r.der, r.der_len, &t, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        /* Not a certificate. */
        t.not_after = t.not_before + 86400;
        assert_null(gmca_cert_reissue(junk, sizeof(junk), &t, &e));
        assert_int_not_equal(e.code, 0);
        gmca_cert_rec_clear(&r);
        X509_free(sub);
        X509_free(ee);
        EVP_PKEY_free(key);
}

/* A root compromise re-homes the operational CA under the new root; it keeps issuing. */
static void test_compromise_root(void **state)
{
        struct fixture *f = *state;
        struct gmca_compromise_params p = {0};
        struct gmca_compromise_result res;
        struct gmca_error e = {0};
        struct gmca_ca_rec sub, root;
        struct pairs pr = {0};
        X509 *nroot, *nsub, *osub = ca_cert(f, "sub"), *ee;
        char serial[GMCA_SERIAL_HEX_MAX];
        struct gmca_issue_req r = {.ca = NULL,
                                   .profile = "personal-sign",
                                   .csr = NULL,
                                   .csr_len = 0,
                                   .info_json = INFO,
                                   .info_len = strlen(INFO),
                                   .days = 0,
                                   .not_after = 0};
        struct gmca_cert_rec old;

        p.ca = "root";
        expect(gmca_ca_compromise(f->c, f->cust + 1, 3, &p, &res, &e), &e, 0, NULL, "compromise");
        assert_string_equal(res.new_ca, "root-g2");
        assert_int_equal(res.reissued, 1); /* the sub CA certificate */
        assert_string_equal(gmca_ctx_default_ca(f->c), "sub");
        memset(&sub, 0, sizeof(sub));
        memset(&root, 0, sizeof(root));
        expect(gmca_store_ca_get(gmca_ctx_store(f->c), "sub", &sub, &e), &e, 0, NULL, "sub");
        expect(gmca_store_ca_get(gmca_ctx_store(f->c), "root-g2", &root, &e), &e, 0, NULL, "root");
        assert_int_equal(sub.parent_id, root.id);
        assert_int_equal(root.parent_id, 0);
        assert_string_equal(sub.key_state, GMCA_KEY_ACTIVE);
        gmca_ca_rec_clear(&sub);
        gmca_ca_rec_clear(&root);
        expect(gmca_store_reissue_list(gmca_ctx_store(f->c), "root-g2", collect_pair, &pr, &e), &e,
               0, NULL, "list");
        assert_int_equal(pr.n, 1);
        nroot = ca_cert(f, "root-g2");
        nsub = ca_cert(f, "sub");
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(nsub), X509_get0_pubkey(osub)), 1);
        expect(gmca_cert_verify_signed_by(nroot, X509_get0_pubkey(nroot), NULL, &e), &e, 0, NULL,
               "self-signed");
        expect(gmca_cert_verify_signed_by(nsub, X509_get0_pubkey(nroot), NULL, &e), &e, 0, NULL,
               "sub under the new root");
        assert_true(X509_check_ca(nsub) >= 1);
        /* The old sub certificate is revoked for cACompromise on the old root's CRL. */
        memset(&old, 0, sizeof(old));
        expect(gmca_store_cert_get(gmca_ctx_store(f->c), pr.old[0], &old, &e), &e, 0, NULL, "old");
        assert_int_equal(old.reason, 2);
        gmca_cert_rec_clear(&old);
        /* The sub CA's own certificates are untouched, and it issues again. */
        expect(gmca_ctx_activate(f->c, f->cust + 2, 3, &e), &e, 0, NULL, "activate");
        {
                EVP_PKEY *key = gmca_sm2_keygen(&e);
                X509_REQ *req = X509_REQ_new();
                X509_NAME *name = X509_NAME_new();
                EVP_MD_CTX *mctx = gmca_sm2_sign_ctx(key, NULL, &e);
                unsigned char *der = NULL;
                int n;

                X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1,
                                           -1, 0);
                X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"新用户", -1, -1, 0);
                X509_REQ_set_subject_name(req, name);
                X509_REQ_set_pubkey(req, key);
                assert_true(X509_REQ_sign_ctx(req, mctx) > 0);
                n = i2d_X509_REQ(req, &der);
                assert_true(n > 0);
                r.csr = der;
                r.csr_len = (size_t)n;
                expect(gmca_ca_issue(f->c, &r, serial, &ee, &e), &e, 0, NULL, "issue");
                OPENSSL_free(der);
                EVP_MD_CTX_free(mctx);
                X509_NAME_free(name);
                X509_REQ_free(req);
                EVP_PKEY_free(key);
        }
        expect(gmca_cert_verify_signed_by(ee, X509_get0_pubkey(nsub), NULL, &e), &e, 0, NULL,
               "issued by the re-homed sub");
        X509_free(ee);
        X509_free(nroot);
        X509_free(nsub);
        X509_free(osub);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_compromise_sub, setup, teardown),
            cmocka_unit_test_setup_teardown(test_compromise_root, setup, teardown),
            cmocka_unit_test_setup_teardown(test_compromise_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reissue_refusals, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
