/*
 * Unit tests for envelope: SM2EnvelopedKey and ENVELOPEDKEYBLOB round
 * trips, a wrong recipient, every byte of both forms flipped, strict DER
 * (truncated, trailing bytes), a public key that is not d's, d out of
 * range, and the variants other implementations write (NULL parameters, a
 * PKCS#7-padded private key), which the test assembles itself from the
 * GM/T 0009 §7.4 layout so that it does not lean on the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "envelope.h"
#include "err.h"
#include "testutil.h"

static EVP_PKEY *pair, *recip, *other;

static int setup(void **state)
{
        (void)state;
        pair = gmca_sm2_keygen(NULL);
        recip = gmca_sm2_keygen(NULL);
        other = gmca_sm2_keygen(NULL);
        return pair == NULL || recip == NULL || other == NULL;
}

static int teardown(void **state)
{
        (void)state;
        EVP_PKEY_free(pair);
        EVP_PKEY_free(recip);
        EVP_PKEY_free(other);
        return 0;
}

/* d of key, 32 bytes big-endian. */
static void get_d(EVP_PKEY *key, uint8_t d[32])
{
        BIGNUM *bn = NULL;

        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn), 1);
        assert_int_equal(BN_bn2binpad(bn, d, 32), 32);
        BN_clear_free(bn);
}

/* got must be pair itself: same public key and same d. */
static void same_pair(EVP_PKEY *got)
{
        uint8_t a[32], b[32];

        assert_non_null(got);
        assert_int_equal(EVP_PKEY_eq(got, pair), 1);
        get_d(got, a);
        get_d(pair, b);
        assert_memory_equal(a, b, 32);
}

static void seal(uint8_t **der, size_t *derlen, uint8_t **blob, size_t *bloblen)
{
        struct gmca_error e = {0};

        expect(gmca_envelope_seal(pair, recip, der, derlen, blob, bloblen, &e), &e, 0, NULL,
               "seal");
}

static void test_round_trip(void **state)
{
        struct gmca_error e = {0};
        uint8_t *der = NULL, *blob = NULL;
        size_t derlen = 0, bloblen = 0;
        EVP_PKEY *got, *pub;

        (void)state;
        seal(&der, &derlen, &blob, &bloblen);
        assert_int_equal(bloblen, GMCA_ENVELOPE_BLOB_LEN);
        assert_true(derlen > 100 && derlen < 300);
        /* Header ULONGs, little-endian: Version 1, SGD_SM4_ECB, 256 bits. */
        assert_memory_equal(blob, "\x01\0\0\0\x01\x04\0\0\0\x01\0\0", 12);
        got = gmca_envelope_open(der, derlen, recip, &e);
        expect(got == NULL ? e.code : 0, &e, 0, NULL, "open DER");
        same_pair(got);
        EVP_PKEY_free(got);
        got = gmca_envelope_blob_open(blob, bloblen, recip, &e);
        expect(got == NULL ? e.code : 0, &e, 0, NULL, "open blob");
        same_pair(got);
        EVP_PKEY_free(got);
        pub = gmca_envelope_pubkey(der, derlen, &e);
        assert_non_null(pub);
        assert_int_equal(EVP_PKEY_eq(pub, pair), 1);
        EVP_PKEY_free(pub);
        /* Without a blob requested, only the DER form. */
        OPENSSL_free(der);
        der = NULL;
        expect(gmca_envelope_seal(pair, recip, &der, &derlen, NULL, NULL, &e), &e, 0, NULL,
               "seal DER only");
        OPENSSL_free(der);
        OPENSSL_free(blob);
}

static void test_wrong_recipient(void **state)
{
        struct gmca_error e = {0};
        uint8_t *der = NULL, *blob = NULL;
        size_t derlen = 0, bloblen = 0;

        (void)state;
        seal(&der, &derlen, &blob, &bloblen);
        assert_null(gmca_envelope_open(der, derlen, other, &e));
        assert_int_equal(e.code, GMCA_ERR_VERIFY);
        gmca_error_clear(&e);
        assert_null(gmca_envelope_blob_open(blob, bloblen, other, &e));
        assert_int_equal(e.code, GMCA_ERR_VERIFY);
        gmca_error_clear(&e);
        /* The public key alone is no recipient. */
        assert_null(gmca_envelope_open(der, derlen, NULL, &e));
        OPENSSL_free(der);
        OPENSSL_free(blob);
}

/* Every byte of both forms matters: flipping any one never yields a key. */
static void test_tamper_every_byte(void **state)
{
        uint8_t *der = NULL, *blob = NULL;
        size_t derlen = 0, bloblen = 0;

        (void)state;
        seal(&der, &derlen, &blob, &bloblen);
        for (size_t i = 0; i < derlen; i++) {
                struct gmca_error e = {0};
                EVP_PKEY *k;

                der[i] ^= 0x01;
                if ((k = gmca_envelope_open(der, derlen, recip, &e)) != NULL)
                        fail_msg("DER byte %zu flipped: still opens", i);
                if (e.code != GMCA_ERR_INVALID && e.code != GMCA_ERR_VERIFY)
                        fail_msg("DER byte %zu: code %d (%s)", i, e.code, e.msg);
                der[i] ^= 0x01;
        }
        for (size_t i = 0; i < bloblen; i++) {
                struct gmca_error e = {0};
                EVP_PKEY *k;

                blob[i] ^= 0x80;
                if ((k = gmca_envelope_blob_open(blob, bloblen, recip, &e)) != NULL)
                        fail_msg("blob byte %zu flipped: still opens", i);
                if (e.code != GMCA_ERR_INVALID && e.code != GMCA_ERR_VERIFY)
                        fail_msg("blob byte %zu: code %d (%s)", i, e.code, e.msg);
                blob[i] ^= 0x80;
        }
        OPENSSL_free(der);
        OPENSSL_free(blob);
}

/* The regions a token must catch, with the code each gets. */
static void test_tamper_regions(void **state)
{
        struct {
                const char *what;
                size_t from_end; /* byte counted from the end of the DER (the last 35 are
                                    the encrypted d, 03 21 00 ...; the 65 before, 04 X Y) */
                int blob_off;    /* the same region in the blob */
                int want;
        } cases[] = {
            {"encrypted private key", 1, 12 + 63, GMCA_ERR_VERIFY},
            {"encrypted private key, first block", 32, 12 + 32, GMCA_ERR_VERIFY},
            {"public key Y", 36, 12 + 64 + 4 + 127, GMCA_ERR_INVALID},
        };
        uint8_t *der = NULL, *blob = NULL;
        size_t derlen = 0, bloblen = 0;

        (void)state;
        seal(&der, &derlen, &blob, &bloblen);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};

                der[derlen - cases[i].from_end] ^= 0x01;
                assert_null(gmca_envelope_open(der, derlen, recip, &e));
                if (e.code != cases[i].want &&
                    !(cases[i].want == GMCA_ERR_INVALID && e.code == GMCA_ERR_VERIFY))
                        fail_msg("DER %s: %d (%s)", cases[i].what, e.code, e.msg);
                der[derlen - cases[i].from_end] ^= 0x01;
                gmca_error_clear(&e);
                blob[cases[i].blob_off] ^= 0x01;
                assert_null(gmca_envelope_blob_open(blob, bloblen, recip, &e));
                if (e.code != cases[i].want &&
                    !(cases[i].want == GMCA_ERR_INVALID && e.code == GMCA_ERR_VERIFY))
                        fail_msg("blob %s: %d (%s)", cases[i].what, e.code, e.msg);
                blob[cases[i].blob_off] ^= 0x01;
        }
        OPENSSL_free(der);
        OPENSSL_free(blob);
}

static void test_truncated_trailing(void **state)
{
        struct gmca_error e = {0};
        uint8_t *der = NULL, *blob = NULL, *longer;
        size_t derlen = 0, bloblen = 0;

        (void)state;
        seal(&der, &derlen, &blob, &bloblen);
        for (size_t n = 0; n < derlen; n += 7) {
                gmca_error_clear(&e);
                assert_null(gmca_envelope_open(der, n, recip, &e));
                assert_int_equal(e.code, GMCA_ERR_INVALID);
        }
        longer = OPENSSL_malloc(bloblen + 1);
        assert_non_null(longer);
        memcpy(longer, der, derlen);
        longer[derlen] = 0;
        gmca_error_clear(&e);
        assert_null(gmca_envelope_open(longer, derlen + 1, recip, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        assert_non_null(strstr(e.msg, "trailing"));
        gmca_error_clear(&e);
        assert_null(gmca_envelope_pubkey(longer, derlen + 1, &e));
        memcpy(longer, blob, bloblen);
        longer[bloblen] = 0;
        gmca_error_clear(&e);
        assert_null(gmca_envelope_blob_open(longer, bloblen + 1, recip, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_null(gmca_envelope_blob_open(blob, bloblen - 1, recip, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        OPENSSL_free(longer);
        OPENSSL_free(der);
        OPENSSL_free(blob);
}

/* ---- an independent assembler of SM2EnvelopedKey (GM/T 0009 §7.4) ---- */

/* Append tag, DER length (under 64 KiB), content. */
static size_t tlv(uint8_t *out, uint8_t tag, const uint8_t *c, size_t n)
{
        size_t h = 0;

        out[h++] = tag;
        if (n >= 256) {
                out[h++] = 0x82;
                out[h++] = (uint8_t)(n >> 8);
        } else if (n >= 128) {
                out[h++] = 0x81;
        }
        out[h++] = (uint8_t)n;
        memmove(out + h, c, n);
        return h + n;
}

enum params { P_ABSENT, P_NULL };

/*
 * SEQUENCE { AlgorithmIdentifier sm4-ecb, SM2Cipher(sym to recip),
 * BIT STRING pt, BIT STRING SM4-ECB(sym, d [|| 16 x 0x10]) }.
 */
static size_t assemble(uint8_t *out, enum params params, const uint8_t d[32], EVP_PKEY *pubkey,
                       int padded)
{
        static const uint8_t oid[] = {0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF,
                                      0x55, 0x01, 0x68, 0x01, 0x05, 0x00};
        uint8_t sym[16], plain[48], enc[49], pt[66], body[600], alg[16];
        uint8_t *cipher = NULL;
        size_t cipherlen = 0, n = 0, algn, dl = padded ? 48 : 32;
        struct gmca_error e = {0};

        assert_int_equal(gmca_rand_bytes(sym, sizeof(sym), &e), 0);
        memcpy(plain, d, 32);
        memset(plain + 32, 16, 16);
        assert_int_equal(gmca_sm4_ecb(1, sym, plain, dl, enc, &e), 0);
        assert_int_equal(gmca_sm2_encrypt(recip, sym, sizeof(sym), &cipher, &cipherlen, &e), 0);
        pt[0] = 0x00; /* unused bits */
        pt[1] = 0x04;
        assert_int_equal(gmca_sm2_pub_xy(pubkey, pt + 2, &e), 0);
        algn = tlv(alg, 0x06, oid + 2, 8);
        if (params == P_NULL) {
                memcpy(alg + algn, oid + 10, 2);
                algn += 2;
        }
        n += tlv(body + n, 0x30, alg, algn);
        memcpy(body + n, cipher, cipherlen);
        n += cipherlen;
        n += tlv(body + n, 0x03, pt, sizeof(pt));
        memmove(enc + 1, enc, dl);
        enc[0] = 0x00;
        n += tlv(body + n, 0x03, enc, dl + 1);
        OPENSSL_free(cipher);
        return tlv(out, 0x30, body, n);
}

static void test_other_writers(void **state)
{
        struct {
                const char *what;
                enum params params;
                int padded;
        } cases[] = {
            {"absent parameters, bare d", P_ABSENT, 0},
            {"NULL parameters (gmsm)", P_NULL, 0},
            {"PKCS#7-padded d", P_ABSENT, 1},
            {"NULL parameters and padded d", P_NULL, 1},
        };
        uint8_t d[32], der[700];

        (void)state;
        get_d(pair, d);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                size_t n = assemble(der, cases[i].params, d, pair, cases[i].padded);
                EVP_PKEY *got = gmca_envelope_open(der, n, recip, &e);

                if (got == NULL)
                        fail_msg("%s: %s", cases[i].what, e.msg);
                same_pair(got);
                EVP_PKEY_free(got);
        }
        OPENSSL_cleanse(d, sizeof(d));
}

static void test_key_mismatch(void **state)
{
        static const uint8_t n_minus_1[32] = {0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF,
                                              0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                              0x72, 0x03, 0xDF, 0x6B, 0x21, 0xC6, 0x05, 0x2B,
                                              0x53, 0xBB, 0xF4, 0x09, 0x39, 0xD5, 0x41, 0x22};
        uint8_t d[32], zero[32] = {0}, der[700];
        struct gmca_error e = {0};
        size_t n;

        (void)state;
        /* d of one pair, public key of another. */
        get_d(pair, d);
        n = assemble(der, P_ABSENT, d, other, 0);
        assert_null(gmca_envelope_open(der, n, recip, &e));
        expect(e.code, &e, GMCA_ERR_VERIFY, "not the public key's", "foreign public key");
        /* d = 0 and d = n-1 are no SM2 private keys (GM/T 0003.1 §6.1). */
        gmca_error_clear(&e);
        n = assemble(der, P_ABSENT, zero, pair, 0);
        assert_null(gmca_envelope_open(der, n, recip, &e));
        expect(e.code, &e, GMCA_ERR_VERIFY, "[1, n-2]", "d = 0");
        gmca_error_clear(&e);
        n = assemble(der, P_ABSENT, n_minus_1, pair, 0);
        assert_null(gmca_envelope_open(der, n, recip, &e));
        expect(e.code, &e, GMCA_ERR_VERIFY, "[1, n-2]", "d = n-1");
        OPENSSL_cleanse(d, sizeof(d));
}

static void test_bad_fields(void **state)
{
        uint8_t d[32], der[700];
        struct gmca_error e = {0};
        size_t n;

        (void)state;
        get_d(pair, d);
        n = assemble(der, P_ABSENT, d, pair, 0);
        /* sm4-ecb 1.2.156.10197.1.104.1 -> .104.2 (SM4-CBC): refused by name. */
        assert_int_equal(der[14], 0x01);
        der[14] = 0x02;
        assert_null(gmca_envelope_open(der, n, recip, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "symAlgID", "SM4-CBC");
        /* An unused-bits count in the public key's BIT STRING. */
        gmca_error_clear(&e);
        n = assemble(der, P_ABSENT, d, pair, 0);
        /* The BIT STRING 03 42 00 04...: unused bits 0 -> 1. */
        for (size_t i = 0; i + 3 < n; i++)
                if (der[i] == 0x03 && der[i + 1] == 0x42 && der[i + 2] == 0x00 &&
                    der[i + 3] == 0x04)
                        der[i + 2] = 0x01;
        assert_null(gmca_envelope_open(der, n, recip, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        /* Not the expected size cap. */
        gmca_error_clear(&e);
        assert_null(gmca_envelope_open(der, GMCA_ENVELOPE_MAX + 1, recip, &e));
        assert_int_equal(e.code, GMCA_ERR_LIMIT);
        OPENSSL_cleanse(d, sizeof(d));
}

static void test_seal_refusals(void **state)
{
        struct gmca_error e = {0};
        uint8_t *der = NULL;
        size_t derlen = 0;
        EVP_PKEY *pubonly;

        (void)state;
        assert_int_equal(gmca_envelope_seal(NULL, recip, &der, &derlen, NULL, NULL, &e),
                         GMCA_ERR_INVALID);
        /* A public key cannot be delivered. */
        gmca_error_clear(&e);
        {
                uint8_t spki[200];
                const uint8_t *p;
                uint8_t *q = NULL;
                int len = i2d_PUBKEY(pair, &q);

                assert_true(len > 0 && (size_t)len <= sizeof(spki));
                memcpy(spki, q, (size_t)len);
                OPENSSL_free(q);
                p = spki;
                pubonly = d2i_PUBKEY(NULL, &p, len);
        }
        assert_non_null(pubonly);
        assert_true(gmca_envelope_seal(pubonly, recip, &der, &derlen, NULL, NULL, &e) != 0);
        assert_null(der);
        EVP_PKEY_free(pubonly);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),         cmocka_unit_test(test_wrong_recipient),
            cmocka_unit_test(test_tamper_every_byte),  cmocka_unit_test(test_tamper_regions),
            cmocka_unit_test(test_truncated_trailing), cmocka_unit_test(test_other_writers),
            cmocka_unit_test(test_key_mismatch),       cmocka_unit_test(test_bad_fields),
            cmocka_unit_test(test_seal_refusals),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
