/*
 * Unit tests for gmt0010: GM/T 0010 SignedData and EnvelopedData round
 * trips for every variant, tampering (content, signature, attributes,
 * ciphertext, wrapped key), wrong recipients and keys, strict DER, and the
 * byte layout of the OIDs that other implementations look for.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "err.h"
#include "gmt0010.h"
#include "x509.h"
#include "testutil.h"

#define YEAR (365L * 86400)
#define SIGNING_TIME 1704164645 /* 2024-01-02T03:04:05Z: UTCTime "240102030405Z" */

static const uint8_t OID_SIGNED[] = {0x06, 0x0A, 0x2A, 0x81, 0x1C, 0xCF,
                                     0x55, 0x06, 0x01, 0x04, 0x02, 0x02};
static const uint8_t OID_ENVELOPED[] = {0x06, 0x0A, 0x2A, 0x81, 0x1C, 0xCF,
                                        0x55, 0x06, 0x01, 0x04, 0x02, 0x03};
static const uint8_t OID_DATA[] = {0x06, 0x0A, 0x2A, 0x81, 0x1C, 0xCF,
                                   0x55, 0x06, 0x01, 0x04, 0x02, 0x01};
static const uint8_t OID_SM2_1[] = {0x06, 0x09, 0x2A, 0x81, 0x1C, 0xCF,
                                    0x55, 0x01, 0x82, 0x2D, 0x01};
static const uint8_t OID_SM2_3[] = {0x06, 0x09, 0x2A, 0x81, 0x1C, 0xCF,
                                    0x55, 0x01, 0x82, 0x2D, 0x03};
static const uint8_t OID_SM2SM3[] = {0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x83, 0x75};
static const uint8_t OID_SM3[] = {0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x83, 0x11};
static const uint8_t OID_SM4CBC_IV[] = {0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF,
                                        0x55, 0x01, 0x68, 0x02, 0x04, 0x10};

struct pki {
        EVP_PKEY *ca_key, *sig_key, *enc_key, *other_key;
        X509 *ca, *sig, *enc, *other;
};

static struct pki P;

/* A certificate built by gmca_cert_build and read back as a relying party would. */
static time_t t0;

static X509 *make_cert(const char *cn, EVP_PKEY *key, unsigned ku, uint8_t serial_byte)
{
        struct gmca_cert_template t;
        struct gmca_error e = {0};
        X509_NAME *name = X509_NAME_new();
        X509 *built, *parsed;
        uint8_t *der = NULL;
        int len;

        assert_non_null(name);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                                                    (const unsigned char *)"CN", -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = key;
        t.issuer = P.ca;
        t.issuer_key = P.ca != NULL ? P.ca_key : key;
        memset(t.serial, serial_byte, sizeof(t.serial));
        t.serial[0] &= 0x7f;
        /* One clock reading for all: a leaf made a second later must not outlive its CA. */
        if (t0 == 0)
                t0 = time(NULL);
        t.not_before = t0 - 60;
        t.not_after = t0 + YEAR;
        t.ca = P.ca == NULL;
        t.path_len = -1;
        t.key_usage = ku;
        if ((built = gmca_cert_build(&t, &e)) == NULL)
                fail_msg("gmca_cert_build: %s", e.msg);
        len = i2d_X509(built, &der);
        assert_true(len > 0);
        if ((parsed = gmca_cert_parse(der, (size_t)len, &e)) == NULL)
                fail_msg("gmca_cert_parse: %s", e.msg);
        OPENSSL_free(der);
        X509_free(built);
        X509_NAME_free(name);
        return parsed;
}

static int setup(void **state)
{
        (void)state;
        P.ca_key = gmca_sm2_keygen(NULL);
        P.sig_key = gmca_sm2_keygen(NULL);
        P.enc_key = gmca_sm2_keygen(NULL);
        P.other_key = gmca_sm2_keygen(NULL);
        if (P.ca_key == NULL || P.sig_key == NULL || P.enc_key == NULL || P.other_key == NULL)
                return -1;
        P.ca = make_cert("测试 CA", P.ca_key, X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN, 0x11);
        P.sig = make_cert("张三 签名", P.sig_key, X509v3_KU_DIGITAL_SIGNATURE, 0x22);
        P.enc = make_cert("张三 加密", P.enc_key,
                          X509v3_KU_KEY_ENCIPHERMENT | X509v3_KU_DATA_ENCIPHERMENT, 0x33);
        P.other = make_cert("李四 加密", P.other_key, X509v3_KU_KEY_ENCIPHERMENT, 0x44);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        X509_free(P.ca);
        X509_free(P.sig);
        X509_free(P.enc);
        X509_free(P.other);
        EVP_PKEY_free(P.ca_key);
        EVP_PKEY_free(P.sig_key);
        EVP_PKEY_free(P.enc_key);
        EVP_PKEY_free(P.other_key);
        return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t hlen, const void *needle, size_t nlen)
{
        size_t i;

        for (i = 0; i + nlen <= hlen; i++)
                if (memcmp(hay + i, needle, nlen) == 0)
                        return hay + i;
        return NULL;
}

static size_t count(const uint8_t *hay, size_t hlen, const void *needle, size_t nlen)
{
        size_t i, n = 0;

        for (i = 0; i + nlen <= hlen; i++)
                n += memcmp(hay + i, needle, nlen) == 0;
        return n;
}

static const uint8_t CONTENT[] = "GM/T 0010 测试消息: 政务数据 0123456789";
#define CLEN (sizeof(CONTENT) - 1)

static void sign_ok(const struct gmca_gmt0010_sign_opts *o, uint8_t **out, size_t *len)
{
        struct gmca_error e = {0};

        expect(gmca_gmt0010_sign(P.sig, P.sig_key, o, CONTENT, CLEN, out, len, &e), &e, 0, NULL,
               "sign");
}

/* Verify msg (with the content when detached) and expect want. */
static int verify(const uint8_t *msg, size_t len, int detached, STACK_OF(X509) * extra,
                  const char *id, struct gmca_gmt0010_signer *s, struct gmca_error *e)
{
        uint8_t *content = NULL;
        size_t clen = 0;
        int rc;

        rc = gmca_gmt0010_verify(msg, len, detached ? CONTENT : NULL, detached ? CLEN : 0, extra,
                                 id, &content, &clen, s, e);
        if (rc == 0) {
                assert_int_equal(clen, CLEN);
                assert_memory_equal(content, CONTENT, CLEN);
        }
        OPENSSL_free(content);
        return rc;
}

/* Every combination of the signing options round-trips. */
static void test_sign_variants(void **state)
{
        STACK_OF(X509) *extra = sk_X509_new_null();
        unsigned v;

        (void)state;
        assert_non_null(extra);
        assert_true(sk_X509_push(extra, P.sig) > 0);
        for (v = 0; v < 16; v++) {
                struct gmca_gmt0010_sign_opts o = {0};
                struct gmca_gmt0010_signer s = {0};
                struct gmca_error e = {0};
                uint8_t *msg = NULL;
                size_t len = 0;
                char what[64];

                o.detached = (v & 1) != 0;
                o.no_attrs = (v & 2) != 0;
                o.no_cert = (v & 4) != 0;
                o.sm2_with_sm3 = (v & 8) != 0;
                o.signing_time = SIGNING_TIME;
                snprintf(what, sizeof(what), "variant %u", v);
                sign_ok(&o, &msg, &len);
                expect(verify(msg, len, o.detached, o.no_cert ? extra : NULL, NULL, &s, &e), &e, 0,
                       NULL, what);
                assert_int_equal(X509_cmp(s.cert, P.sig), 0);
                assert_int_equal(s.detached, o.detached);
                assert_int_equal(s.nsigners, 1);
                assert_int_equal(s.has_time, !o.no_attrs);
                if (!o.no_attrs)
                        assert_int_equal((long)s.signing_time, SIGNING_TIME);
                gmca_gmt0010_signer_clear(&s);
                /* The content is in the message exactly when attached. */
                assert_int_equal(find(msg, len, CONTENT, CLEN) != NULL, !o.detached);
                assert_int_equal(find(msg, len, OID_SM2_1, sizeof(OID_SM2_1)) != NULL,
                                 !o.sm2_with_sm3);
                /* The carried certificate names SM2-with-SM3 twice itself. */
                assert_int_equal(count(msg, len, OID_SM2SM3, sizeof(OID_SM2SM3)),
                                 o.sm2_with_sm3 + (o.no_cert ? 0 : 2));
                /* Without the certificate and without extra, no signer is known. */
                gmca_error_clear(&e);
                if (o.no_cert)
                        expect(verify(msg, len, o.detached, NULL, NULL, &s, &e), &e,
                               GMCA_ERR_NOTFOUND, "signer certificate", what);
                /* Another ID gives another Z, so the signature fails. */
                gmca_error_clear(&e);
                expect(verify(msg, len, o.detached, extra, "ALICE123@YAHOO.COM", &s, &e), &e,
                       GMCA_ERR_VERIFY, "ALICE123", what);
                /* Content given both ways, or not at all, is refused. */
                gmca_error_clear(&e);
                expect(verify(msg, len, !o.detached, extra, NULL, &s, &e), &e, GMCA_ERR_INVALID,
                       "content", what);
                OPENSSL_free(msg);
        }
        sk_X509_free(extra);
}

/* The hand-checked layout: outer ContentInfo, data type, SM3, SM2-1. */
static void test_signed_layout(void **state)
{
        uint8_t *msg = NULL;
        size_t len = 0, hdr;

        (void)state;
        sign_ok(NULL, &msg, &len);
        assert_int_equal(msg[0], 0x30);
        hdr = msg[1] < 0x80 ? 2 : 2 + (msg[1] & 0x7f);
        assert_memory_equal(msg + hdr, OID_SIGNED, sizeof(OID_SIGNED));
        assert_int_equal(msg[hdr + sizeof(OID_SIGNED)], 0xA0);            /* [0] EXPLICIT */
        assert_int_equal(count(msg, len, OID_DATA, sizeof(OID_DATA)), 2); /* inner + attribute */
        assert_int_equal(count(msg, len, OID_SM3, sizeof(OID_SM3)), 2); /* digestAlgorithms + SI */
        assert_int_equal(count(msg, len, OID_SM2_1, sizeof(OID_SM2_1)), 1);
        OPENSSL_free(msg);
}

/* A flipped byte in the content, the signature or an attribute fails. */
static void test_signed_tamper(void **state)
{
        struct gmca_gmt0010_sign_opts o = {.signing_time = SIGNING_TIME};
        struct gmca_gmt0010_signer s = {0};
        struct gmca_error e = {0};
        uint8_t md[GMCA_SM3_LEN];
        uint8_t *msg = NULL, *p;
        size_t len = 0;

        (void)state;
        assert_int_equal(gmca_sm3(CONTENT, CLEN, md), 0);
        sign_ok(&o, &msg, &len);
        expect(verify(msg, len, 0, NULL, NULL, &s, &e), &e, 0, NULL, "untouched");
        gmca_gmt0010_signer_clear(&s);

        p = (uint8_t *)find(msg, len, CONTENT, CLEN);
        assert_non_null(p);
        p[3] ^= 0x01;
        expect(verify(msg, len, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_VERIFY, "messageDigest",
               "content flipped");
        p[3] ^= 0x01;

        gmca_error_clear(&e);
        p = (uint8_t *)find(msg, len, md, sizeof(md));
        assert_non_null(p);
        p[0] ^= 0x80;
        expect(verify(msg, len, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_VERIFY, "messageDigest",
               "messageDigest flipped");
        p[0] ^= 0x80;

        gmca_error_clear(&e);
        p = (uint8_t *)find(msg, len, "240102030405Z", 13);
        assert_non_null(p);
        p[11] = '6'; /* still a valid time, one second later */
        expect(verify(msg, len, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_VERIFY, "SM2 signature",
               "signingTime changed");
        p[11] = '5';

        /* The signature's s INTEGER ends the message (no unauthenticated attributes). */
        gmca_error_clear(&e);
        msg[len - 1] ^= 0x01;
        expect(verify(msg, len, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_VERIFY, "SM2 signature",
               "signature flipped");
        msg[len - 1] ^= 0x01;
        OPENSSL_free(msg);

        /* Without attributes the signature covers the content itself. */
        o.no_attrs = 1;
        o.detached = 1;
        sign_ok(&o, &msg, &len);
        {
                uint8_t other[CLEN];

                memcpy(other, CONTENT, CLEN);
                other[0] ^= 0x01;
                gmca_error_clear(&e);
                expect(gmca_gmt0010_verify(msg, len, other, CLEN, NULL, NULL, NULL, NULL, &s, &e),
                       &e, GMCA_ERR_VERIFY, "SM2 signature", "detached content flipped");
        }
        OPENSSL_free(msg);
}

/* Strict input: trailing bytes, long-form lengths, truncation, other types. */
static void test_signed_strict(void **state)
{
        struct gmca_gmt0010_signer s = {0};
        struct gmca_error e = {0};
        uint8_t *msg = NULL, *bad;
        size_t len = 0, i;

        (void)state;
        sign_ok(NULL, &msg, &len);
        assert_true(len > 300 && len < 65536 && msg[1] == 0x82);
        bad = malloc(len + 1);
        assert_non_null(bad);
        memcpy(bad, msg, len);
        bad[len] = 0;
        expect(verify(bad, len + 1, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_INVALID, "trailing",
               "trailing byte");
        /* 0x82 hh ll as 0x83 00 hh ll: same value, not DER. */
        bad[1] = 0x83;
        bad[2] = 0x00;
        memcpy(bad + 3, msg + 2, len - 2);
        gmca_error_clear(&e);
        expect(verify(bad, len + 1, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_INVALID, NULL,
               "long-form length");
        for (i = 1; i < len; i += 37) {
                gmca_error_clear(&e);
                expect(verify(msg, i, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_INVALID, NULL,
                       "truncated");
        }
        free(bad);
        /* An EnvelopedData is not a SignedData. */
        {
                X509 *r[1] = {P.enc};
                uint8_t *env = NULL;
                size_t envlen = 0;

                gmca_error_clear(&e);
                expect(gmca_gmt0010_encrypt(r, 1, CONTENT, CLEN, &env, &envlen, &e), &e, 0, NULL,
                       "encrypt");
                expect(verify(env, envlen, 0, NULL, NULL, &s, &e), &e, GMCA_ERR_INVALID,
                       "contentType", "enveloped as signed");
                OPENSSL_free(env);
        }
        OPENSSL_free(msg);
}

/* The signer's key must be the certificate's, and the certificate a signing one. */
static void test_sign_refusals(void **state)
{
        struct gmca_error e = {0};
        uint8_t *msg = NULL;
        size_t len = 0;

        (void)state;
        expect(gmca_gmt0010_sign(P.sig, P.enc_key, NULL, CONTENT, CLEN, &msg, &len, &e), &e,
               GMCA_ERR_INVALID, "does not belong", "wrong key");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_sign(P.enc, P.enc_key, NULL, CONTENT, CLEN, &msg, &len, &e), &e,
               GMCA_ERR_POLICY, "keyUsage", "encryption certificate");
        assert_null(msg);
}

static void decrypt_ok(const uint8_t *msg, size_t len, X509 *cert, EVP_PKEY *key,
                       const uint8_t *want, size_t wantlen, const char *what)
{
        struct gmca_error e = {0};
        uint8_t *out = NULL;
        size_t outlen = 0;

        expect(gmca_gmt0010_decrypt(msg, len, cert, key, &out, &outlen, &e), &e, 0, NULL, what);
        assert_int_equal(outlen, wantlen);
        if (wantlen > 0)
                assert_memory_equal(out, want, wantlen);
        OPENSSL_clear_free(out, outlen);
}

/* Round trips: one and two recipients, empty and block-multiple contents. */
static void test_envelope_round_trip(void **state)
{
        X509 *two[2] = {P.enc, P.other};
        struct gmca_error e = {0};
        uint8_t big[4096];
        uint8_t *msg = NULL;
        size_t len = 0, hdr;

        (void)state;
        memset(big, 0xA5, sizeof(big));
        expect(gmca_gmt0010_encrypt(two, 2, CONTENT, CLEN, &msg, &len, &e), &e, 0, NULL, "two");
        decrypt_ok(msg, len, P.enc, P.enc_key, CONTENT, CLEN, "first recipient");
        decrypt_ok(msg, len, P.other, P.other_key, CONTENT, CLEN, "second recipient");
        /* Layout: envelopedData outer type, two SM2-3 RecipientInfos, SM4-CBC with an IV. */
        hdr = msg[1] < 0x80 ? 2 : 2 + (msg[1] & 0x7f);
        assert_memory_equal(msg + hdr, OID_ENVELOPED, sizeof(OID_ENVELOPED));
        assert_int_equal(count(msg, len, OID_SM2_3, sizeof(OID_SM2_3)), 2);
        assert_int_equal(count(msg, len, OID_SM4CBC_IV, sizeof(OID_SM4CBC_IV)), 1);
        assert_int_equal(count(msg, len, OID_DATA, sizeof(OID_DATA)), 1);
        assert_null(find(msg, len, CONTENT, CLEN));
        OPENSSL_free(msg);

        expect(gmca_gmt0010_encrypt(two, 1, (const uint8_t *)"", 0, &msg, &len, &e), &e, 0, NULL,
               "empty");
        decrypt_ok(msg, len, P.enc, P.enc_key, NULL, 0, "empty content");
        OPENSSL_free(msg);
        expect(gmca_gmt0010_encrypt(two, 1, big, sizeof(big), &msg, &len, &e), &e, 0, NULL, "big");
        decrypt_ok(msg, len, P.enc, P.enc_key, big, sizeof(big), "4096 bytes");
        OPENSSL_free(msg);
}

/* Wrong recipient, wrong key, tampered wrapped key and ciphertext, GmSSL's 301.2. */
static void test_envelope_refusals(void **state)
{
        X509 *one[1] = {P.enc};
        struct gmca_error e = {0};
        uint8_t block[32];
        uint8_t *msg = NULL, *out = NULL, *p;
        size_t len = 0, outlen = 0;

        (void)state;
        memset(block, 'x', sizeof(block)); /* two whole blocks: the padding is a full block */
        expect(gmca_gmt0010_encrypt(one, 1, block, sizeof(block), &msg, &len, &e), &e, 0, NULL,
               "encrypt");
        expect(gmca_gmt0010_decrypt(msg, len, P.other, P.other_key, &out, &outlen, &e), &e,
               GMCA_ERR_NOTFOUND, "no RecipientInfo", "not a recipient");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt(msg, len, P.enc, P.other_key, &out, &outlen, &e), &e,
               GMCA_ERR_INVALID, "does not belong", "key of another certificate");

        /* The last byte of the second-to-last block flips the padding byte 0x10 to 0x11. */
        gmca_error_clear(&e);
        msg[len - 17] ^= 0x01;
        expect(gmca_gmt0010_decrypt(msg, len, P.enc, P.enc_key, &out, &outlen, &e), &e,
               GMCA_ERR_VERIFY, NULL, "ciphertext flipped");
        msg[len - 17] ^= 0x01;

        /* GmSSL 3 writes 1.2.156.10197.1.301.2 for SM2 encryption: accepted. */
        p = (uint8_t *)find(msg, len, OID_SM2_3, sizeof(OID_SM2_3));
        assert_non_null(p);
        p[sizeof(OID_SM2_3) - 1] = 0x02;
        decrypt_ok(msg, len, P.enc, P.enc_key, block, sizeof(block), "SM2-2 OID");
        p[sizeof(OID_SM2_3) - 1] = 0x01; /* SM2-1 is a signature algorithm: refused */
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt(msg, len, P.enc, P.enc_key, &out, &outlen, &e), &e,
               GMCA_ERR_INVALID, "keyEncryptionAlgorithm", "SM2-1 as key encryption");
        p[sizeof(OID_SM2_3) - 1] = 0x03;

        /* encryptedKey OCTET STRING { SEQUENCE { x INTEGER, y INTEGER, C3 OCTET STRING(32), C2 } }
         */
        p += sizeof(OID_SM2_3);
        assert_true(p[0] == 0x04 && p[1] < 0x80 && p[2] == 0x30 && p[3] < 0x80 && p[4] == 0x02);
        p += 4;
        p += 2 + p[1]; /* x */
        assert_int_equal(p[0], 0x02);
        p += 2 + p[1]; /* y */
        assert_true(p[0] == 0x04 && p[1] == 0x20);
        p[5] ^= 0x01;
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt(msg, len, P.enc, P.enc_key, &out, &outlen, &e), &e,
               GMCA_ERR_VERIFY, NULL, "wrapped key flipped");
        assert_null(out);
        OPENSSL_free(msg);

        /* A signing-only certificate is not a recipient. */
        one[0] = P.sig;
        gmca_error_clear(&e);
        expect(gmca_gmt0010_encrypt(one, 1, block, sizeof(block), &msg, &len, &e), &e,
               GMCA_ERR_POLICY, "keyUsage", "signing certificate as recipient");
}

static const uint8_t OID_SIGENV[] = {0x06, 0x0A, 0x2A, 0x81, 0x1C, 0xCF,
                                     0x55, 0x06, 0x01, 0x04, 0x02, 0x04};

/* SignedAndEnvelopedData: round trip, layout, kind, refusals and tampering. */
static void test_signed_enveloped(void **state)
{
        struct gmca_gmt0010_sign_opts o = {.signing_time = SIGNING_TIME};
        struct gmca_gmt0010_signer s = {0};
        STACK_OF(X509) *extra = sk_X509_new_null();
        X509 *two[2] = {P.enc, P.other};
        struct gmca_error e = {0};
        uint8_t *msg = NULL, *out = NULL, *bad;
        size_t len = 0, outlen = 0, hdr, i;

        (void)state;
        assert_non_null(extra);
        assert_int_equal(sk_X509_push(extra, P.sig), 1);
        gmca_error_clear(&e);
        expect(
            gmca_gmt0010_sign_encrypt(P.sig, P.sig_key, &o, two, 2, CONTENT, CLEN, &msg, &len, &e),
            &e, 0, NULL, "sign and encrypt");
        hdr = msg[1] < 0x80 ? 2 : 2 + (msg[1] & 0x7f);
        assert_memory_equal(msg + hdr, OID_SIGENV, sizeof(OID_SIGENV));
        assert_int_equal(count(msg, len, OID_SM2_3, sizeof(OID_SM2_3)), 2);
        assert_int_equal(count(msg, len, OID_SM2_1, sizeof(OID_SM2_1)), 1);
        assert_int_equal(count(msg, len, OID_SM4CBC_IV, sizeof(OID_SM4CBC_IV)), 1);
        assert_null(find(msg, len, CONTENT, CLEN));
        assert_int_equal(gmca_gmt0010_kind(msg, len, &e), GMCA_GMT0010_KIND_SIGNED_ENVELOPED);
        for (i = 0; i < 2; i++) {
                gmca_error_clear(&e);
                expect(gmca_gmt0010_decrypt_verify(msg, len, two[i], i ? P.other_key : P.enc_key,
                                                   NULL, NULL, &out, &outlen, &s, &e),
                       &e, 0, NULL, "decrypt and verify");
                assert_int_equal(outlen, CLEN);
                assert_memory_equal(out, CONTENT, CLEN);
                assert_int_equal(X509_cmp(s.cert, P.sig), 0);
                assert_true(s.has_time);
                assert_int_equal(s.signing_time, SIGNING_TIME);
                assert_int_equal(s.nsigners, 1);
                OPENSSL_clear_free(out, outlen);
                gmca_gmt0010_signer_clear(&s);
        }
        /* Neither the other message functions nor a wrong ID or recipient open it. */
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt(msg, len, P.enc, P.enc_key, &out, &outlen, &e), &e,
               GMCA_ERR_INVALID, "contentType", "as EnvelopedData");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_verify(msg, len, NULL, 0, NULL, NULL, &out, &outlen, &s, &e), &e,
               GMCA_ERR_INVALID, "contentType", "as SignedData");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt_verify(msg, len, P.enc, P.enc_key, NULL, "ALICE123@YAHOO.COM",
                                           &out, &outlen, &s, &e),
               &e, GMCA_ERR_VERIFY, NULL, "other ID");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt_verify(msg, len, P.sig, P.sig_key, NULL, NULL, &out, &outlen,
                                           &s, &e),
               &e, GMCA_ERR_NOTFOUND, "RecipientInfo", "not a recipient");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt_verify(msg, len, P.enc, P.other_key, NULL, NULL, &out, &outlen,
                                           &s, &e),
               &e, GMCA_ERR_INVALID, "does not belong", "key of another certificate");
        OPENSSL_free(msg);

        /* Without the certificate: found only through extra. Detached is refused. */
        o.no_cert = 1;
        o.no_attrs = 1;
        gmca_error_clear(&e);
        expect(
            gmca_gmt0010_sign_encrypt(P.sig, P.sig_key, &o, two, 1, CONTENT, CLEN, &msg, &len, &e),
            &e, 0, NULL, "no cert, no attrs");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt_verify(msg, len, P.enc, P.enc_key, NULL, NULL, &out, &outlen,
                                           &s, &e),
               &e, GMCA_ERR_NOTFOUND, "signer certificate", "no signer certificate");
        gmca_error_clear(&e);
        expect(gmca_gmt0010_decrypt_verify(msg, len, P.enc, P.enc_key, extra, NULL, &out, &outlen,
                                           &s, &e),
               &e, 0, NULL, "signer from extra");
        assert_false(s.has_time);
        OPENSSL_clear_free(out, outlen);
        gmca_gmt0010_signer_clear(&s);
        /*
         * One recipient, no certificate: every byte then matters, and any
         * change is refused with nothing coming out.
         */
        assert_non_null(bad = malloc(len));
        for (i = hdr; i < len; i++) {
                memcpy(bad, msg, len);
                bad[i] ^= 0x80; /* 0x01 would turn RecipientInfo version 1 into 0, accepted */
                out = NULL;
                assert_int_not_equal(gmca_gmt0010_decrypt_verify(bad, len, P.enc, P.enc_key, extra,
                                                                 NULL, &out, &outlen, &s, &e),
                                     0);
                assert_null(out);
                assert_null(s.cert);
        }
        free(bad);
        OPENSSL_free(msg);
        o.detached = 1;
        gmca_error_clear(&e);
        expect(
            gmca_gmt0010_sign_encrypt(P.sig, P.sig_key, &o, two, 1, CONTENT, CLEN, &msg, &len, &e),
            &e, GMCA_ERR_INVALID, "detached", "detached");
        o.detached = 0;
        gmca_error_clear(&e);
        expect(gmca_gmt0010_sign_encrypt(P.sig, P.sig_key, &o, &P.sig, 1, CONTENT, CLEN, &msg, &len,
                                         &e),
               &e, GMCA_ERR_POLICY, "keyUsage", "signing certificate as recipient");
        gmca_error_clear(&e);
        expect(
            gmca_gmt0010_sign_encrypt(P.enc, P.enc_key, &o, two, 1, CONTENT, CLEN, &msg, &len, &e),
            &e, GMCA_ERR_POLICY, "keyUsage", "encryption certificate as signer");
        sk_X509_free(extra);
}

/* SM2Cipher <-> C1C3C2: layout, round trip through decryption, and refusals. */
static void test_sm2cipher_forms(void **state)
{
        struct gmca_error e = {0};
        uint8_t *der = NULL, *raw = NULL, *back = NULL, *pt = NULL;
        size_t derlen = 0, rawlen = 0, backlen = 0, ptlen = 0;

        (void)state;
        gmca_error_clear(&e);
        expect(gmca_sm2_encrypt(X509_get0_pubkey(P.enc), CONTENT, CLEN, &der, &derlen, &e), &e, 0,
               NULL, "encrypt");
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_to_c1c3c2(der, derlen, &raw, &rawlen, &e), &e, 0, NULL, "to");
        assert_int_equal(rawlen, 1 + 64 + 32 + CLEN);
        assert_int_equal(raw[0], 0x04);
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_from_c1c3c2(raw, rawlen, &back, &backlen, &e), &e, 0, NULL, "from");
        assert_int_equal(backlen, derlen);
        assert_memory_equal(back, der, derlen);
        gmca_error_clear(&e);
        expect(gmca_sm2_decrypt(P.enc_key, back, backlen, &pt, &ptlen, &e), &e, 0, NULL, "decrypt");
        assert_int_equal(ptlen, CLEN);
        assert_memory_equal(pt, CONTENT, CLEN);
        OPENSSL_clear_free(pt, ptlen);
        OPENSSL_free(back);

        /* Refusals: no 04, too short, DER with a trailing byte or as raw, raw as DER. */
        raw[0] = 0x02;
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_from_c1c3c2(raw, rawlen, &back, &backlen, &e), &e, GMCA_ERR_INVALID,
               "04", "no 04");
        raw[0] = 0x04;
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_from_c1c3c2(raw, 97, &back, &backlen, &e), &e, GMCA_ERR_INVALID, "C2",
               "no C2");
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_to_c1c3c2(raw, rawlen, &back, &backlen, &e), &e, GMCA_ERR_INVALID,
               NULL, "raw as DER");
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_from_c1c3c2(der, derlen, &back, &backlen, &e), &e, GMCA_ERR_INVALID,
               NULL, "DER as raw");
        der = OPENSSL_realloc(der, derlen + 1);
        assert_non_null(der);
        der[derlen] = 0;
        gmca_error_clear(&e);
        expect(gmca_sm2cipher_to_c1c3c2(der, derlen + 1, &back, &backlen, &e), &e, GMCA_ERR_INVALID,
               "trailing", "trailing byte");
        OPENSSL_free(der);
        OPENSSL_free(raw);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sign_variants),     cmocka_unit_test(test_signed_layout),
            cmocka_unit_test(test_signed_tamper),     cmocka_unit_test(test_signed_strict),
            cmocka_unit_test(test_sign_refusals),     cmocka_unit_test(test_envelope_round_trip),
            cmocka_unit_test(test_envelope_refusals), cmocka_unit_test(test_signed_enveloped),
            cmocka_unit_test(test_sm2cipher_forms),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
