/*
 * The CA engine's OCSP duties (ca_ocsp.h): the bound on delegated
 * responder certificates a front may obtain, and the check that keeps a
 * CA key from signing an untrue OCSP ResponseData. ResponseData are made
 * by the library's own responder (ocsp.h, CA-signed) through a signer that
 * records what it is asked to sign; lies are made from true ones by
 * changing the store afterwards or a few bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "testcsr.h"
#include "ca.h"
#include "ca_ocsp.h"
#include "crypto.h"
#include "ocsp.h"
#include "store.h"
#include "util.h"

#include "testca.h"

struct fixture {
        struct test_ca ca;
        struct gmca_ctx *c;
        struct gmca_store *s;
        X509 *sub, *root;
        char good[GMCA_SERIAL_HEX_MAX], revoked[GMCA_SERIAL_HEX_MAX];
        uint8_t tbs[8192]; /* what the capturing signer was last asked to sign */
        size_t tbs_len;
};

/* A DER CSR for key with C, O and CN. */
static uint8_t *csr_for(EVP_PKEY *key, const char *cn, size_t *len)
{
        return test_csr_key(key, "单元测试认证中心", NULL, cn, len);
}

static void issue(struct fixture *f, const char *profile, const char *cn, char *serial)
{
        struct gmca_issue_req r = {0};
        struct gmca_error e = {0};
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        size_t len;
        uint8_t *csr;

        assert_non_null(key);
        csr = csr_for(key, cn, &len);
        r.profile = profile;
        r.csr = csr;
        r.csr_len = len;
        if (gmca_ca_issue(f->c, &r, serial, NULL, &e) != 0)
                fail_msg("issue %s: %s", cn, e.msg);
        OPENSSL_free(csr);
        EVP_PKEY_free(key);
}

static X509 *ca_cert(struct fixture *f, const char *name)
{
        struct gmca_ca_rec rec;
        struct gmca_error e = {0};
        const uint8_t *p;
        X509 *x;

        memset(&rec, 0, sizeof(rec));
        assert_int_equal(gmca_store_ca_get(f->s, name, &rec, &e), 0);
        p = rec.cert_der;
        x = d2i_X509(NULL, &p, (long)rec.cert_len);
        assert_non_null(x);
        gmca_ca_rec_clear(&rec);
        return x;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};

        if (f == NULL || test_ca_make(&f->ca, "ocspeng") != 0)
                return -1;
        if ((f->c = gmca_ctx_open(f->ca.dir, "unit", &e)) == NULL ||
            gmca_ctx_activate(f->c, f->ca.cust, 3, &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        f->s = gmca_ctx_store(f->c);
        f->sub = ca_cert(f, "sub");
        f->root = ca_cert(f, "root");
        issue(f, "operator", "张 好", f->good);
        issue(f, "operator", "李 撤", f->revoked);
        if (gmca_ca_revoke(f->c, f->revoked, 1, 0, &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        X509_free(f->sub);
        X509_free(f->root);
        gmca_ctx_close(f->c);
        test_ca_remove(&f->ca);
        free(f);
        return 0;
}

/* ---- ResponseData from the library's CA-signed responder ---- */

static int capture(void *arg, const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX],
                   size_t *siglen, struct gmca_error *e)
{
        static const uint8_t dummy[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
        struct fixture *f = arg;

        (void)e;
        assert_true(len <= sizeof(f->tbs));
        memcpy(f->tbs, tbs, len);
        f->tbs_len = len;
        memcpy(sig, dummy, sizeof(dummy));
        *siglen = sizeof(dummy);
        return 0;
}

/* The ResponseData CA ca's responder makes at now for serial (hex) under
 * issuer, hash md. */
static void respdata(struct fixture *f, const char *ca, X509 *issuer, const char *serial,
                     const EVP_MD *md, int64_t now, int64_t validity)
{
        struct gmca_signer sg = {capture, f};
        struct gmca_ocsp_responder r;
        struct gmca_ocsp_opts o = {.now = now, .validity = validity};
        struct gmca_ocsp_answer a;
        struct gmca_error e = {0};
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        ASN1_INTEGER *sn = NULL;
        BIGNUM *bn = NULL;
        OCSP_CERTID *id;
        unsigned char *der = NULL;
        uint8_t *out = NULL;
        size_t outlen = 0;
        int n;

        assert_int_equal(gmca_ocsp_responder_init_ca(&r, f->s, ca, &sg, &e), 0);
        assert_true(BN_hex2bn(&bn, serial) > 0);
        sn = BN_to_ASN1_INTEGER(bn, NULL);
        id = OCSP_cert_id_new(md, X509_get_subject_name(issuer), X509_get0_pubkey_bitstr(issuer),
                              sn);
        assert_non_null(id);
        assert_non_null(OCSP_request_add0_id(req, id));
        n = i2d_OCSP_REQUEST(req, &der);
        assert_true(n > 0);
        f->tbs_len = 0;
        assert_int_equal(gmca_ocsp_respond(f->s, &r, 1, &o, der, (size_t)n, &out, &outlen, &a, &e),
                         0);
        if (a.status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
                fail_msg("respond: status %d: %s", a.status, e.msg);
        assert_true(f->tbs_len > 0);
        OPENSSL_free(out);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
        ASN1_INTEGER_free(sn);
        BN_free(bn);
        gmca_ocsp_responder_clear(&r);
}

static int check(struct fixture *f, const char *ca, int64_t now, struct gmca_error *e)
{
        gmca_error_clear(e);
        return gmca_ca_ocsp_check(f->c, ca, f->tbs, f->tbs_len, now, e);
}

/* Replace the first run of old (n bytes) in the captured ResponseData by new.
 */
static void patch(struct fixture *f, const uint8_t *old, const uint8_t *new, size_t n)
{
        for (size_t i = 0; i + n <= f->tbs_len; i++)
                if (memcmp(f->tbs + i, old, n) == 0) {
                        memcpy(f->tbs + i, new, n);
                        return;
                }
        fail_msg("pattern not found in the ResponseData");
}

static void key_sha1(X509 *x, uint8_t out[20])
{
        unsigned n = 0;

        assert_int_equal(X509_pubkey_digest(x, EVP_sha1(), out, &n), 1);
        assert_int_equal(n, 20);
}

static void test_true_statements_pass(void **state)
{
        struct fixture *f = *state;
        int64_t now = (int64_t)gmca_now();
        struct gmca_error e;

        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now, 3600);
        assert_int_equal(check(f, "sub", now, &e), 0);
        respdata(f, "sub", f->sub, f->revoked, EVP_sm3(), now, 3600);
        assert_int_equal(check(f, "sub", now, &e), 0);
        respdata(f, "sub", f->sub, "0123456789ABCDEF", EVP_sha1(), now, 3600);
        assert_int_equal(check(f, "sub", now, &e), 0); /* unknown: never issued */
        respdata(f, "root", f->root, f->good, EVP_sha1(), now, 3600);
        assert_int_equal(check(f, "root", now, &e), 0); /* unknown for the root */
}

static void test_lies_refused(void **state)
{
        static const uint8_t unknown[] = {0x82, 0x00}, good[] = {0x80, 0x00};
        struct fixture *f = *state;
        int64_t now = (int64_t)gmca_now();
        char late[GMCA_SERIAL_HEX_MAX];
        uint8_t k1[20], k2[20];
        struct gmca_error e;

        /* "good" for a revoked certificate: signed before the revocation, asked
         * after. */
        issue(f, "operator", "王 后撤", late);
        respdata(f, "sub", f->sub, late, EVP_sha1(), now, 3600);
        assert_int_equal(check(f, "sub", now, &e), 0);
        assert_int_equal(gmca_ca_revoke(f->c, late, 1, 0, &e), 0);
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "revoked in the store"));

        /* "good" for a serial the CA never issued. */
        respdata(f, "sub", f->sub, "0123456789ABCDEF", EVP_sha1(), now, 3600);
        patch(f, unknown, good, sizeof(good));
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "unknown in the store"));

        /* "unknown" for a certificate it did issue. */
        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now, 3600);
        patch(f, good, unknown, sizeof(good));
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);

        /* A responderID that is not the CA's key. */
        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now, 3600);
        key_sha1(f->sub, k1);
        memcpy(k2, k1, sizeof(k2));
        k2[7] ^= 0x01;
        patch(f, k1, k2, sizeof(k1));
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "responderID"));

        /* Another CA's CertID under this CA's responderID. */
        respdata(f, "root", f->root, f->good, EVP_sha1(), now, 3600);
        key_sha1(f->root, k1);
        key_sha1(f->sub, k2);
        patch(f, k1, k2, sizeof(k1)); /* the responderID comes first */
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "CertID"));
        /* And the unpatched one asked of the wrong CA. */
        respdata(f, "root", f->root, f->good, EVP_sha1(), now, 3600);
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);

        /* nextUpdate too far: made with the longest validity, checked 200 s earlier.
         */
        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now, GMCA_OCSP_VALIDITY_MAX);
        assert_int_equal(check(f, "sub", now, &e), 0);
        assert_int_equal(check(f, "sub", now - 200, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "nextUpdate"));

        /* Stale or future producedAt/thisUpdate (the CA is too young to answer for the past:
         * a stale answer is a fresh one checked later). */
        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now, 3600);
        assert_int_equal(check(f, "sub", now + 600, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "producedAt"));
        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now + 600, 3600);
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_POLICY);
}

static void test_not_der(void **state)
{
        struct fixture *f = *state;
        int64_t now = (int64_t)gmca_now();
        struct gmca_error e;

        respdata(f, "sub", f->sub, f->good, EVP_sha1(), now, 3600);
        f->tbs[f->tbs_len++] = 0x00; /* a trailing byte */
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_INVALID);
        f->tbs_len--;
        f->tbs[0] = 0x31; /* a SET */
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_INVALID);
        f->tbs_len = 0;
        assert_int_equal(check(f, "sub", now, &e), GMCA_ERR_INVALID);
        assert_int_equal(check(f, "nosuch", now, &e) < 0, 1);
}

/* ---- responder certificates for the front ---- */

static int responder(struct fixture *f, const char *ca, const char *cn, int64_t seconds,
                     struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX];
        EVP_PKEY *key = gmca_sm2_keygen(e);
        uint8_t *csr, *der = NULL;
        size_t len, derlen = 0;
        int rc;

        assert_non_null(key);
        csr = csr_for(key, cn, &len);
        gmca_error_clear(e);
        rc = gmca_ca_ocsp_issue(f->c, ca, csr, len, seconds, "ra:TEST", &der, &derlen, serial, e);
        if (rc == 0) {
                const uint8_t *p = der;
                X509 *x = d2i_X509(NULL, &p, (long)derlen);

                assert_non_null(x);
                assert_true(X509_get_extended_key_usage(x) & XKU_OCSP_SIGN);
                assert_true(X509_get_ext_by_NID(x, NID_id_pkix_OCSP_noCheck, -1) >= 0);
                if (seconds > 0) {
                        int days = 0, secs = 0;

                        assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                                                        X509_get0_notAfter(x)),
                                         1);
                        assert_int_equal((int64_t)days * 86400 + secs, seconds);
                }
                X509_free(x);
        }
        OPENSSL_free(der);
        OPENSSL_free(csr);
        EVP_PKEY_free(key);
        return rc;
}

static time_t fake_now;
static time_t fake_clock(void)
{
        return fake_now;
}

static void test_responder_bound(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e;

        fake_now = time(NULL);
        gmca_set_clock(fake_clock);
        assert_int_equal(responder(f, "sub", "sub OCSP", 3600, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "sub OCSP Responder"));
        assert_int_equal(responder(f, "sub", "sub OCSP Responder", 10, &e), GMCA_ERR_POLICY);
        assert_int_equal(responder(f, "sub", "sub OCSP Responder", 3600, &e), 0);
        /* A second at once: under a quarter of the first's life. */
        assert_int_equal(responder(f, "sub", "sub OCSP Responder", 3600, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "quarter"));
        fake_now += 901;
        assert_int_equal(responder(f, "sub", "sub OCSP Responder", 3600, &e), 0);
        /* A third while both are unexpired, however long one waits for the quarter.
         */
        fake_now += 1800;
        assert_int_equal(responder(f, "sub", "sub OCSP Responder", 3600, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "unexpired"));
        /* Once the first expired, rotation goes on. */
        fake_now += 1000;
        assert_int_equal(responder(f, "sub", "sub OCSP Responder", 3600, &e), 0);
        /* Each CA is bounded on its own; the profile caps the validity. */
        assert_int_equal(responder(f, "root", "root OCSP Responder", 0, &e), 0);
        assert_int_equal(responder(f, "root", "root OCSP Responder", 365 * 86400, &e),
                         GMCA_ERR_POLICY);
        gmca_set_clock(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_true_statements_pass),
            cmocka_unit_test(test_lies_refused),
            cmocka_unit_test(test_not_der),
            cmocka_unit_test(test_responder_bound),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
