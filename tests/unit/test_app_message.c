/*
 * The public interface of include/gmca/message.h: SignedData (attached,
 * detached, without certificate), EnvelopedData, SignedAndEnvelopedData and
 * the raw SM2 forms, round trips and refusals, with keys and certificates
 * handed over as PEM and DER bytes. The fixture (keys, certificates) is made
 * with the library's builders; every call under test goes through the
 * public header.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gmca/message.h"

#include "crypto.h"
#include "x509.h"

#define SIGNING_TIME 1704164645

struct party {
        char *cert_pem, *key_pem;
        size_t cert_len, key_len;
        uint8_t *cert_der;
        size_t cert_der_len;
};

static struct party CA_, SIG, ENC, OTHER;
static EVP_PKEY *ca_key;
static X509 *ca;

static char *bio_text(BIO *b, size_t *len)
{
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        char *out = malloc((size_t)n + 1);

        assert_non_null(out);
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
        return out;
}

static time_t t0;

static X509 *make(struct party *p, const char *cn, unsigned ku, uint8_t serial)
{
        struct gmca_cert_template t;
        X509_NAME *name = X509_NAME_new();
        EVP_PKEY *key = gmca_sm2_keygen(NULL);
        BIO *b;
        X509 *x;
        int n;

        assert_non_null(name);
        assert_non_null(key);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = key;
        t.issuer = ca;
        t.issuer_key = ca != NULL ? ca_key : key;
        memset(t.serial, serial, sizeof(t.serial));
        t.serial[0] &= 0x7f;
        /* One clock reading for all: a leaf made a second later must not outlive its CA. */
        if (t0 == 0)
                t0 = time(NULL);
        t.not_before = t0 - 60;
        t.not_after = t0 + 86400;
        t.ca = ca == NULL;
        t.path_len = -1;
        t.key_usage = ku;
        struct gmca_error e = {0};
        if ((x = gmca_cert_build(&t, &e)) == NULL)
                fail_msg("certificate %s: %s", cn, e.msg);
        assert_non_null(b = BIO_new(BIO_s_mem()));
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        p->cert_pem = bio_text(b, &p->cert_len);
        BIO_free(b);
        assert_non_null(b = BIO_new(BIO_s_mem()));
        assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
        p->key_pem = bio_text(b, &p->key_len);
        BIO_free(b);
        p->cert_der = NULL;
        assert_true((n = i2d_X509(x, &p->cert_der)) > 0);
        p->cert_der_len = (size_t)n;
        X509_NAME_free(name);
        if (ca == NULL)
                ca_key = key;
        else
                EVP_PKEY_free(key);
        return x;
}

static void party_free(struct party *p)
{
        free(p->cert_pem);
        free(p->key_pem);
        OPENSSL_free(p->cert_der);
}

static int setup(void **state)
{
        (void)state;
        ca = make(&CA_, "CA", X509v3_KU_KEY_CERT_SIGN, 0x11);
        X509_free(make(&SIG, "签名", X509v3_KU_DIGITAL_SIGNATURE, 0x22));
        X509_free(make(&ENC, "加密", X509v3_KU_KEY_ENCIPHERMENT, 0x33));
        X509_free(
            make(&OTHER, "其他", X509v3_KU_KEY_ENCIPHERMENT | X509v3_KU_DIGITAL_SIGNATURE, 0x44));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        party_free(&CA_);
        party_free(&SIG);
        party_free(&ENC);
        party_free(&OTHER);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        return 0;
}

static struct gmca_credential cred(const struct party *p, int der_cert)
{
        struct gmca_credential c = {0};

        c.certificate = der_cert ? (const void *)p->cert_der : p->cert_pem;
        c.certificate_len = der_cert ? p->cert_der_len : p->cert_len;
        c.private_key = p->key_pem;
        c.private_key_len = p->key_len;
        return c;
}

static const char DATA[] = "GM/T 0010 应用接口 测试";
#define DLEN (sizeof(DATA) - 1)

static void expect_rc(int rc, const struct gmca_status *st, int want, const char *what)
{
        if (rc != want)
                fail_msg("%s: rc %d (want %d): %s", what, rc, want, st->message);
        if (want != 0)
                assert_true(st->message[0] != '\0');
}

static void test_signed(void **state)
{
        struct gmca_credential s = cred(&SIG, 0);
        struct gmca_sign_options o = {.signing_time = SIGNING_TIME};
        struct gmca_bytes extra = {SIG.cert_der, SIG.cert_der_len};
        const struct gmca_message_info *info;
        struct gmca_message *m = NULL;
        struct gmca_status st;
        uint8_t *msg = NULL;
        size_t len = 0;

        (void)state;
        expect_rc(gmca_message_sign(&s, &o, DATA, DLEN, &msg, &len, &st), &st, 0, "sign");
        expect_rc(gmca_message_verify(msg, len, NULL, 0, NULL, 0, NULL, &m, &st), &st, 0, "verify");
        info = gmca_message_info(m);
        assert_int_equal(info->content_len, DLEN);
        assert_memory_equal(info->content, DATA, DLEN);
        assert_non_null(info->signer);
        assert_string_equal(gmca_certificate_subject_attribute(info->signer, "CN"), "签名");
        assert_true(info->has_signing_time);
        assert_int_equal(info->signing_time, SIGNING_TIME);
        assert_int_equal(info->signer_count, 1);
        assert_false(info->detached);
        gmca_message_free(m);
        m = NULL;
        expect_rc(gmca_message_verify(msg, len, NULL, 0, NULL, 0, "other-id", &m, &st), &st,
                  GMCA_RC_VERIFY, "other ID");
        assert_null(m);
        gmca_buffer_free(msg, len);

        /* Detached, no certificate: needs the content and the certificate. */
        o.flags = GMCA_SIGN_DETACHED | GMCA_SIGN_NO_CERTIFICATE;
        s = cred(&SIG, 1);
        expect_rc(gmca_message_sign(&s, &o, DATA, DLEN, &msg, &len, &st), &st, 0, "detached");
        expect_rc(gmca_message_verify(msg, len, DATA, DLEN, NULL, 0, NULL, &m, &st), &st,
                  GMCA_RC_NOTFOUND, "no certificate");
        expect_rc(gmca_message_verify(msg, len, DATA, DLEN - 1, &extra, 1, NULL, &m, &st), &st,
                  GMCA_RC_VERIFY, "other content");
        expect_rc(gmca_message_verify(msg, len, DATA, DLEN, &extra, 1, NULL, &m, &st), &st, 0,
                  "detached verify");
        assert_true(gmca_message_info(m)->detached);
        gmca_message_free(m);
        gmca_buffer_free(msg, len);

        /* The key of another certificate; an encryption-only certificate. */
        s.private_key = OTHER.key_pem;
        s.private_key_len = OTHER.key_len;
        expect_rc(gmca_message_sign(&s, NULL, DATA, DLEN, &msg, &len, &st), &st, GMCA_RC_INVALID,
                  "foreign key");
        s = cred(&ENC, 0);
        assert_true(gmca_message_sign(&s, NULL, DATA, DLEN, &msg, &len, &st) < 0);
        s = cred(&SIG, 0);
        s.private_key_len = 40;
        expect_rc(gmca_message_sign(&s, NULL, DATA, DLEN, &msg, &len, &st), &st, GMCA_RC_INVALID,
                  "truncated key");
}

static void test_enveloped(void **state)
{
        struct gmca_bytes to[2] = {{ENC.cert_pem, ENC.cert_len},
                                   {OTHER.cert_der, OTHER.cert_der_len}};
        struct gmca_credential r = cred(&ENC, 0), o = cred(&OTHER, 1), s = cred(&SIG, 0);
        struct gmca_message *m = NULL;
        struct gmca_status st;
        uint8_t *msg = NULL;
        size_t len = 0;

        (void)state;
        expect_rc(gmca_message_encrypt(to, 2, DATA, DLEN, &msg, &len, &st), &st, 0, "encrypt");
        expect_rc(gmca_message_decrypt(&r, msg, len, &m, &st), &st, 0, "decrypt");
        assert_memory_equal(gmca_message_info(m)->content, DATA, DLEN);
        assert_null(gmca_message_info(m)->signer);
        gmca_message_free(m);
        expect_rc(gmca_message_decrypt(&o, msg, len, &m, &st), &st, 0, "second recipient");
        gmca_message_free(m);
        m = NULL;
        expect_rc(gmca_message_decrypt(&s, msg, len, &m, &st), &st, GMCA_RC_NOTFOUND,
                  "non-recipient");
        expect_rc(gmca_message_decrypt_verify(&r, msg, len, NULL, 0, NULL, &m, &st), &st,
                  GMCA_RC_INVALID, "not signed");
        assert_null(m);
        gmca_buffer_free(msg, len);
        expect_rc(gmca_message_encrypt(to, 0, DATA, DLEN, &msg, &len, &st), &st, GMCA_RC_INVALID,
                  "no recipient");
}

static void test_signed_enveloped(void **state)
{
        struct gmca_bytes to[1] = {{ENC.cert_pem, ENC.cert_len}};
        struct gmca_bytes extra = {SIG.cert_pem, SIG.cert_len};
        struct gmca_credential s = cred(&SIG, 0), r = cred(&ENC, 1);
        struct gmca_sign_options o = {.flags = GMCA_SIGN_NO_CERTIFICATE};
        const struct gmca_message_info *info;
        struct gmca_message *m = NULL;
        struct gmca_status st;
        uint8_t *msg = NULL;
        size_t len = 0;

        (void)state;
        expect_rc(gmca_message_sign_encrypt(&s, NULL, to, 1, DATA, DLEN, &msg, &len, &st), &st, 0,
                  "sign and encrypt");
        expect_rc(gmca_message_decrypt_verify(&r, msg, len, NULL, 0, NULL, &m, &st), &st, 0,
                  "decrypt and verify");
        info = gmca_message_info(m);
        assert_memory_equal(info->content, DATA, DLEN);
        assert_string_equal(gmca_certificate_subject_attribute(info->signer, "CN"), "签名");
        assert_true(info->has_signing_time);
        gmca_message_free(m);
        m = NULL;
        expect_rc(gmca_message_decrypt(&r, msg, len, &m, &st), &st, GMCA_RC_INVALID,
                  "not an EnvelopedData");
        expect_rc(gmca_message_verify(msg, len, NULL, 0, NULL, 0, NULL, &m, &st), &st,
                  GMCA_RC_INVALID, "not a SignedData");
        gmca_buffer_free(msg, len);

        expect_rc(gmca_message_sign_encrypt(&s, &o, to, 1, DATA, DLEN, &msg, &len, &st), &st, 0,
                  "without certificate");
        expect_rc(gmca_message_decrypt_verify(&r, msg, len, NULL, 0, NULL, &m, &st), &st,
                  GMCA_RC_NOTFOUND, "signer unknown");
        expect_rc(gmca_message_decrypt_verify(&r, msg, len, &extra, 1, NULL, &m, &st), &st, 0,
                  "signer given");
        gmca_message_free(m);
        msg[len - 5] ^= 0x80;
        m = NULL;
        assert_true(gmca_message_decrypt_verify(&r, msg, len, &extra, 1, NULL, &m, &st) < 0);
        assert_null(m);
        gmca_buffer_free(msg, len);
        o.flags = GMCA_SIGN_DETACHED;
        expect_rc(gmca_message_sign_encrypt(&s, &o, to, 1, DATA, DLEN, &msg, &len, &st), &st,
                  GMCA_RC_INVALID, "detached");
}

static void test_raw(void **state)
{
        struct gmca_credential keyonly = cred(&ENC, 0), s = cred(&SIG, 0);
        struct gmca_status st;
        uint8_t *sig = NULL, *ct = NULL, *pt = NULL;
        size_t siglen = 0, ctlen = 0, ptlen = 0;
        int form;

        (void)state;
        keyonly.certificate = NULL;
        s.certificate = NULL;
        expect_rc(gmca_sm2_raw_sign(&s, NULL, DATA, DLEN, &sig, &siglen, &st), &st, 0, "sign");
        assert_int_equal(sig[0], 0x30);
        expect_rc(
            gmca_sm2_raw_verify(SIG.cert_pem, SIG.cert_len, NULL, DATA, DLEN, sig, siglen, &st),
            &st, 0, "verify");
        expect_rc(gmca_sm2_raw_verify(SIG.cert_der, SIG.cert_der_len, "1234567812345678", DATA,
                                      DLEN, sig, siglen, &st),
                  &st, 0, "verify, explicit ID");
        expect_rc(gmca_sm2_raw_verify(SIG.cert_pem, SIG.cert_len, "ALICE123@YAHOO.COM", DATA, DLEN,
                                      sig, siglen, &st),
                  &st, GMCA_RC_VERIFY, "other ID");
        expect_rc(
            gmca_sm2_raw_verify(OTHER.cert_pem, OTHER.cert_len, NULL, DATA, DLEN, sig, siglen, &st),
            &st, GMCA_RC_VERIFY, "other key");
        gmca_buffer_free(sig, siglen);

        for (form = GMCA_SM2_CIPHER_DER; form <= GMCA_SM2_CIPHER_C1C3C2; form++) {
                expect_rc(gmca_sm2_raw_encrypt(ENC.cert_pem, ENC.cert_len, form, DATA, DLEN, &ct,
                                               &ctlen, &st),
                          &st, 0, "encrypt");
                assert_int_equal(ct[0], form == GMCA_SM2_CIPHER_DER ? 0x30 : 0x04);
                expect_rc(gmca_sm2_raw_decrypt(&keyonly, form, ct, ctlen, &pt, &ptlen, &st), &st, 0,
                          "decrypt");
                assert_int_equal(ptlen, DLEN);
                assert_memory_equal(pt, DATA, DLEN);
                gmca_buffer_free(pt, ptlen);
                expect_rc(gmca_sm2_raw_decrypt(&keyonly, !form, ct, ctlen, &pt, &ptlen, &st), &st,
                          GMCA_RC_INVALID, "other form");
                ct[ctlen - 1] ^= 1;
                expect_rc(gmca_sm2_raw_decrypt(&keyonly, form, ct, ctlen, &pt, &ptlen, &st), &st,
                          GMCA_RC_VERIFY, "altered");
                gmca_buffer_free(ct, ctlen);
        }
        expect_rc(gmca_sm2_raw_encrypt(ENC.cert_pem, ENC.cert_len, 7, DATA, DLEN, &ct, &ctlen, &st),
                  &st, GMCA_RC_INVALID, "unknown form");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_signed),
            cmocka_unit_test(test_enveloped),
            cmocka_unit_test(test_signed_enveloped),
            cmocka_unit_test(test_raw),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
