/*
 * Unit tests of the crypto module against the standards' own vectors:
 * SM3 (GB/T 32905), SM4 (GB/T 32907 A.1, A.2), SM2 signature, Z and
 * encryption on the recommended curve (GM/T 0003.5, GMT-REFERENCE.md §6),
 * SM4-GCM (RFC 8998 Appendix A), GCM itself checked with AES against the
 * GCM specification and OpenSSL's AES-GCM, HMAC-SM3 against the openssl
 * command, and the encrypted key file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "util.h"

#define HEXBUF 512

/* Decode a hex constant of the tests ("" is empty); returns its length. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
        size_t n = 0;

        if (hex[0] == '\0')
                return 0;
        assert_int_equal(gmca_unhex(hex, out, cap, &n), 0);
        return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
        uint8_t w[HEXBUF];
        size_t n = unhex(want, w, sizeof(w));

        assert_int_equal(len, n);
        assert_memory_equal(got, w, n);
}

/* GM/T 0003.5 recommended-curve example key (GMT-REFERENCE.md §6). */
static const char std_d[] = "3945208F7B2144B13F36E38AC6D39F9588939369"
                            "2860B51A42FB81EF4DF7C5B8";
static const char std_pub[] = "04"
                              "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
                              "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";

/*
 * An SM2 key from the private scalar d (hex, NULL for a public key only)
 * and the uncompressed point pub, imported as OpenSSL key type `type`
 * ("SM2", or "EC" to get a generic EC key on the SM2 curve).
 */
static EVP_PKEY *make_key(const char *type, const char *dhex, const char *pubhex)
{
        uint8_t d[32], pub[65];
        OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *key = NULL;
        BIGNUM *bn = NULL;

        assert_non_null(b);
        assert_int_equal(unhex(pubhex, pub, sizeof(pub)), 65);
        assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0),
                         1);
        assert_int_equal(OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 65), 1);
        if (dhex != NULL) {
                assert_int_equal(unhex(dhex, d, sizeof(d)), 32);
                assert_non_null(bn = BN_bin2bn(d, 32, NULL));
                assert_int_equal(OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn), 1);
        }
        assert_non_null(params = OSSL_PARAM_BLD_to_param(b));
        assert_non_null(ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL));
        assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
        assert_int_equal(EVP_PKEY_fromdata(ctx, &key,
                                           dhex != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                                           params),
                         1);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(b);
        BN_clear_free(bn);
        return key;
}

/* ---- SM3 ---- */

static const struct {
        const char *msg;
        const char *digest;
} sm3_vectors[] = {
    {"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
    {"abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",
     "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
};

static void test_sm3_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(sm3_vectors) / sizeof(sm3_vectors[0]); i++) {
                const char *m = sm3_vectors[i].msg;
                uint8_t d[GMCA_SM3_LEN], d2[GMCA_SM3_LEN];
                char hex[2 * GMCA_SM3_LEN + 1];
                EVP_MD_CTX *c;

                assert_int_equal(gmca_sm3(m, strlen(m), d), 0);
                gmca_hex(d, sizeof(d), hex);
                assert_string_equal(hex, sm3_vectors[i].digest);

                /* The same digest fed one byte, then the rest. */
                assert_non_null(c = gmca_sm3_new());
                assert_int_equal(gmca_sm3_update(c, m, 1), 0);
                assert_int_equal(gmca_sm3_update(c, m + 1, strlen(m) - 1), 0);
                assert_int_equal(gmca_sm3_final(c, d2), 0);
                assert_memory_equal(d, d2, sizeof(d));
        }
}

/* ---- SM4 ---- */

static const char sm4_std[] = "0123456789abcdeffedcba9876543210";

static void test_sm4_ecb_single(void **state)
{
        uint8_t key[16], pt[16], ct[16], back[16];

        (void)state;
        unhex(sm4_std, key, sizeof(key));
        unhex(sm4_std, pt, sizeof(pt));
        assert_int_equal(gmca_sm4_ecb(1, key, pt, 16, ct, NULL), 0);
        assert_hex(ct, 16, "681edf34d206965e86b3e94f536e4246");
        assert_int_equal(gmca_sm4_ecb(0, key, ct, 16, back, NULL), 0);
        assert_memory_equal(back, pt, 16);
}

static void test_sm4_ecb_million(void **state)
{
        uint8_t key[16], b[16];

        (void)state;
        unhex(sm4_std, key, sizeof(key));
        unhex(sm4_std, b, sizeof(b));
        for (int i = 0; i < 1000000; i++)
                assert_int_equal(gmca_sm4_ecb(1, key, b, 16, b, NULL), 0);
        assert_hex(b, 16, "595298c7c6fd271f0402f804c33d3f66");
}

static void test_sm4_ecb_bad_length(void **state)
{
        uint8_t key[16] = {0}, b[32] = {0};
        struct gmca_error e;

        (void)state;
        gmca_error_clear(&e);
        assert_int_equal(gmca_sm4_ecb(1, key, b, 17, b, &e), GMCA_ERR_INVALID);
        assert_non_null(strstr(e.msg, "SM4-ECB"));
        assert_int_equal(gmca_sm4_ecb(1, key, b, 0, b, NULL), 0);
}

/*
 * CBC with a zero IV: the first block is the A.1 vector; the padding block
 * was obtained with `openssl enc -sm4-cbc -K 0123456789abcdeffedcba9876543210
 * -iv 0` over the 16 plaintext bytes.
 */
static void test_sm4_cbc_kat(void **state)
{
        uint8_t key[16], iv[16] = {0}, pt[16];
        uint8_t *ct = NULL, *back = NULL;
        size_t ctlen = 0, backlen = 0;

        (void)state;
        unhex(sm4_std, key, sizeof(key));
        unhex(sm4_std, pt, sizeof(pt));
        assert_int_equal(gmca_sm4_cbc_encrypt(key, iv, pt, 16, &ct, &ctlen, NULL), 0);
        assert_hex(ct, ctlen, "681edf34d206965e86b3e94f536e4246677d307e844d7aa24579d556490dc7aa");
        assert_int_equal(gmca_sm4_cbc_decrypt(key, iv, ct, ctlen, &back, &backlen, NULL), 0);
        assert_int_equal(backlen, 16);
        assert_memory_equal(back, pt, 16);
        OPENSSL_free(ct);
        OPENSSL_clear_free(back, backlen);
}

static void test_sm4_cbc_roundtrip(void **state)
{
        static const size_t lens[] = {0, 1, 15, 16, 17, 31, 32, 100, 4096};
        uint8_t key[16], iv[16], msg[4096];

        (void)state;
        for (size_t i = 0; i < sizeof(msg); i++)
                msg[i] = (uint8_t)(i * 7 + 3);
        assert_int_equal(gmca_rand_bytes(key, sizeof(key), NULL), 0);
        assert_int_equal(gmca_rand_bytes(iv, sizeof(iv), NULL), 0);
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                uint8_t *ct = NULL, *back = NULL;
                size_t ctlen = 0, backlen = 0;

                assert_int_equal(gmca_sm4_cbc_encrypt(key, iv, msg, lens[i], &ct, &ctlen, NULL), 0);
                assert_int_equal(ctlen, (lens[i] / 16 + 1) * 16);
                assert_int_equal(gmca_sm4_cbc_decrypt(key, iv, ct, ctlen, &back, &backlen, NULL),
                                 0);
                assert_int_equal(backlen, lens[i]);
                if (lens[i] > 0)
                        assert_memory_equal(back, msg, lens[i]);
                OPENSSL_free(ct);
                OPENSSL_clear_free(back, backlen);
        }
}

/*
 * Final plaintext blocks with bad PKCS#7 padding, encrypted with ECB so
 * that CBC decryption with a zero IV yields exactly them.
 */
static void test_sm4_cbc_bad_padding(void **state)
{
        static const char *const bad[] = {
            "00000000000000000000000000000000", /* pad byte 0 */
            "00000000000000000000000000000011", /* pad byte 17 > block */
            "000000000000000000000000000003ff", /* 0xff */
            "00000000000000000000000000000302", /* 02 after 03: inconsistent */
            "01010101010101010101010101010110", /* 16 but not all 16 */
        };
        uint8_t key[16], iv[16] = {0}, pt[16], ct[16];

        (void)state;
        unhex(sm4_std, key, sizeof(key));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t *out = NULL;
                size_t outlen = 0;
                struct gmca_error e;

                gmca_error_clear(&e);
                unhex(bad[i], pt, sizeof(pt));
                assert_int_equal(gmca_sm4_ecb(1, key, pt, 16, ct, NULL), 0);
                assert_int_equal(gmca_sm4_cbc_decrypt(key, iv, ct, 16, &out, &outlen, &e),
                                 GMCA_ERR_VERIFY);
                assert_null(out);
                assert_non_null(strstr(e.msg, "padding"));
        }
        /* Not whole blocks. */
        assert_int_equal(
            gmca_sm4_cbc_decrypt(key, iv, ct, 15, &(uint8_t *){NULL}, &(size_t){0}, NULL),
            GMCA_ERR_INVALID);
        assert_int_equal(
            gmca_sm4_cbc_decrypt(key, iv, ct, 0, &(uint8_t *){NULL}, &(size_t){0}, NULL),
            GMCA_ERR_INVALID);
}

/* ---- SM2 ---- */

static const char std_msg[] = "message digest";
/* DER SM2Signature of r, s from GM/T 0003.5 (both need a 00 byte). */
static const char std_sig[] =
    "3046"
    "022100F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "022100B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

static void test_sm2_std_signature(void **state)
{
        EVP_PKEY *pub = make_key("SM2", NULL, std_pub);
        EVP_PKEY *pair = make_key("SM2", std_d, std_pub);
        uint8_t sig[80];
        size_t siglen = unhex(std_sig, sig, sizeof(sig));
        const uint8_t *m = (const uint8_t *)std_msg;
        size_t mlen = strlen(std_msg);
        struct gmca_error e;

        (void)state;
        assert_int_equal(gmca_sm2_verify(pub, "1234567812345678", m, mlen, sig, siglen, NULL), 0);
        assert_int_equal(gmca_sm2_verify(pub, NULL, m, mlen, sig, siglen, NULL), 0);
        assert_int_equal(gmca_sm2_verify(pair, NULL, m, mlen, sig, siglen, NULL), 0);

        /* OpenSSL 3.0's empty default ID, and another ID, must not verify. */
        gmca_error_clear(&e);
        assert_int_equal(gmca_sm2_verify(pub, "ALICE123@YAHOO.COM", m, mlen, sig, siglen, &e),
                         GMCA_ERR_VERIFY);
        assert_non_null(strstr(e.msg, "ALICE123@YAHOO.COM"));
        assert_int_equal(gmca_sm2_verify(pub, "", m, mlen, sig, siglen, NULL), GMCA_ERR_INVALID);

        /* One bit off in s, and in the message. */
        sig[siglen - 1] ^= 0x01;
        assert_int_equal(gmca_sm2_verify(pub, NULL, m, mlen, sig, siglen, NULL), GMCA_ERR_VERIFY);
        sig[siglen - 1] ^= 0x01;
        assert_int_equal(gmca_sm2_verify(pub, NULL, m, mlen - 1, sig, siglen, NULL),
                         GMCA_ERR_VERIFY);
        /* A trailing byte makes it non-DER. */
        sig[siglen] = 0;
        assert_int_equal(gmca_sm2_verify(pub, NULL, m, mlen, sig, siglen + 1, NULL),
                         GMCA_ERR_VERIFY);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(pair);
}

static void test_sm2_z(void **state)
{
        EVP_PKEY *pub = make_key("SM2", NULL, std_pub);
        uint8_t z[GMCA_SM3_LEN], z2[GMCA_SM3_LEN], ze[GMCA_SM3_LEN + sizeof(std_msg)];
        uint8_t digest[GMCA_SM3_LEN];

        (void)state;
        assert_int_equal(gmca_sm2_z(pub, NULL, z, NULL), 0);
        assert_hex(z, sizeof(z),
                   "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3");
        /* e = SM3(ZA || M) of the same example. */
        memcpy(ze, z, sizeof(z));
        memcpy(ze + sizeof(z), std_msg, strlen(std_msg));
        assert_int_equal(gmca_sm3(ze, sizeof(z) + strlen(std_msg), digest), 0);
        assert_hex(digest, sizeof(digest),
                   "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640");
        /* The explicit default ID gives the same; another ID changes Z. */
        assert_int_equal(gmca_sm2_z(pub, "1234567812345678", z2, NULL), 0);
        assert_memory_equal(z, z2, sizeof(z));
        assert_int_equal(gmca_sm2_z(pub, "ALICE123@YAHOO.COM", z2, NULL), 0);
        assert_memory_not_equal(z, z2, sizeof(z));
        EVP_PKEY_free(pub);
}

/* GM/T 0003.5 encryption example as GM/T 0009 DER (GMT-REFERENCE.md §6). */
static const char std_cipher[] =
    "307C"
    "022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "022100E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "042059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "041321886CA989CA9C7D58087307CA93092D651EFA";

static size_t std_cipher_der(uint8_t *out, size_t cap)
{
        return unhex(std_cipher, out, cap);
}

static void test_sm2_std_decrypt(void **state)
{
        EVP_PKEY *pair = make_key("SM2", std_d, std_pub);
        uint8_t c[200];
        size_t clen = std_cipher_der(c, sizeof(c));
        uint8_t *m = NULL;
        size_t mlen = 0;

        (void)state;
        assert_int_equal(clen, 0x7E);
        assert_int_equal(gmca_sm2_decrypt(pair, c, clen, &m, &mlen, NULL), 0);
        assert_int_equal(mlen, strlen("encryption standard"));
        assert_memory_equal(m, "encryption standard", mlen);
        OPENSSL_clear_free(m, mlen);
        EVP_PKEY_free(pair);
}

static void test_sm2_decrypt_rejects(void **state)
{
        EVP_PKEY *pair = make_key("SM2", std_d, std_pub);
        uint8_t c[200], bad[210];
        size_t clen = std_cipher_der(c, sizeof(c));
        uint8_t *m = NULL;
        size_t mlen = 0;

        (void)state;
        /* Trailing byte. */
        memcpy(bad, c, clen);
        bad[clen] = 0;
        assert_int_equal(gmca_sm2_decrypt(pair, bad, clen + 1, &m, &mlen, NULL), GMCA_ERR_INVALID);
        /* BER long-form length (81 7C) is not DER. */
        bad[0] = 0x30;
        bad[1] = 0x81;
        memcpy(bad + 2, c + 1, clen - 1);
        assert_int_equal(gmca_sm2_decrypt(pair, bad, clen + 1, &m, &mlen, NULL), GMCA_ERR_INVALID);
        /* C3 one bit off: well formed, does not decrypt. */
        memcpy(bad, c, clen);
        bad[2 + 34 + 35 + 2] ^= 0x80;
        assert_int_equal(gmca_sm2_decrypt(pair, bad, clen, &m, &mlen, NULL), GMCA_ERR_VERIFY);
        /* C2 one bit off. */
        memcpy(bad, c, clen);
        bad[clen - 1] ^= 0x01;
        assert_int_equal(gmca_sm2_decrypt(pair, bad, clen, &m, &mlen, NULL), GMCA_ERR_VERIFY);
        /* Truncated. */
        assert_int_equal(gmca_sm2_decrypt(pair, c, clen - 1, &m, &mlen, NULL), GMCA_ERR_INVALID);
        assert_null(m);
        EVP_PKEY_free(pair);
}

static void test_sm2_encrypt_roundtrip(void **state)
{
        static const size_t lens[] = {1, 16, 32, 1000};
        EVP_PKEY *k = gmca_sm2_keygen(NULL);
        EVP_PKEY *other = make_key("SM2", std_d, std_pub);
        uint8_t msg[1000];

        (void)state;
        assert_non_null(k);
        assert_int_equal(gmca_rand_bytes(msg, sizeof(msg), NULL), 0);
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                uint8_t *c = NULL, *m = NULL;
                size_t clen = 0, mlen = 0;

                assert_int_equal(gmca_sm2_encrypt(k, msg, lens[i], &c, &clen, NULL), 0);
                assert_true(clen > lens[i] + 96);
                assert_int_equal(gmca_sm2_decrypt(k, c, clen, &m, &mlen, NULL), 0);
                assert_int_equal(mlen, lens[i]);
                assert_memory_equal(m, msg, mlen);
                OPENSSL_clear_free(m, mlen);
                m = NULL;
                assert_int_equal(gmca_sm2_decrypt(other, c, clen, &m, &mlen, NULL),
                                 GMCA_ERR_VERIFY);
                OPENSSL_free(c);
        }
        assert_int_equal(gmca_sm2_encrypt(k, msg, 0, &(uint8_t *){NULL}, &(size_t){0}, NULL),
                         GMCA_ERR_INVALID);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
}

static void test_sm2_sign_roundtrip(void **state)
{
        EVP_PKEY *k = gmca_sm2_keygen(NULL);
        EVP_PKEY *other = make_key("SM2", NULL, std_pub);
        static const uint8_t msg[] = "to be signed";
        uint8_t *sig = NULL;
        size_t siglen = 0;

        (void)state;
        assert_non_null(k);
        assert_int_equal(gmca_sm2_is_sm2(k, NULL), 0);
        assert_int_equal(gmca_sm2_sign(k, "operator-7", msg, sizeof(msg), &sig, &siglen, NULL), 0);
        assert_int_equal(gmca_sm2_verify(k, "operator-7", msg, sizeof(msg), sig, siglen, NULL), 0);
        assert_int_equal(gmca_sm2_verify(k, NULL, msg, sizeof(msg), sig, siglen, NULL),
                         GMCA_ERR_VERIFY);
        assert_int_equal(gmca_sm2_verify(other, "operator-7", msg, sizeof(msg), sig, siglen, NULL),
                         GMCA_ERR_VERIFY);
        OPENSSL_free(sig);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
}

/*
 * OpenSSL 3.0 makes a type "EC" key on the SM2 curve when asked for an EC
 * key with group SM2. It must still make SM2 signatures (not ECDSA) with
 * the ID, have the right Z, and decrypt SM2 ciphertexts.
 */
static void test_sm2_ec_typed_key(void **state)
{
        EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "SM2"), *pub;
        uint8_t pt[65], *sig = NULL, *c = NULL, *m = NULL;
        uint8_t z1[GMCA_SM3_LEN], z2[GMCA_SM3_LEN];
        char hex[2 * sizeof(pt) + 1];
        size_t n = 0, siglen = 0, clen = 0, mlen = 0;

        (void)state;
        assert_non_null(ec);
        assert_true(EVP_PKEY_is_a(ec, "EC"));
        assert_int_equal(gmca_sm2_is_sm2(ec, NULL), 0);
        assert_int_equal(
            EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n), 1);
        assert_int_equal(n, sizeof(pt));
        gmca_hex(pt, sizeof(pt), hex);
        pub = make_key("SM2", NULL, hex);

        assert_int_equal(gmca_sm2_sign(ec, NULL, (const uint8_t *)"x", 1, &sig, &siglen, NULL), 0);
        assert_int_equal(gmca_sm2_verify(pub, NULL, (const uint8_t *)"x", 1, sig, siglen, NULL), 0);
        assert_int_equal(gmca_sm2_verify(ec, NULL, (const uint8_t *)"x", 1, sig, siglen, NULL), 0);
        assert_int_equal(gmca_sm2_z(ec, NULL, z1, NULL), 0);
        assert_int_equal(gmca_sm2_z(pub, NULL, z2, NULL), 0);
        assert_memory_equal(z1, z2, sizeof(z1));
        assert_int_equal(gmca_sm2_encrypt(pub, (const uint8_t *)"secret", 6, &c, &clen, NULL), 0);
        assert_int_equal(gmca_sm2_decrypt(ec, c, clen, &m, &mlen, NULL), 0);
        assert_int_equal(mlen, 6);
        assert_memory_equal(m, "secret", 6);
        OPENSSL_clear_free(m, mlen);
        OPENSSL_free(c);
        OPENSSL_free(sig);
        EVP_PKEY_free(ec);
        EVP_PKEY_free(pub);
}

static void test_sm2_rejects_other_keys(void **state)
{
        EVP_PKEY *keys[2];
        uint8_t *sig = NULL;
        size_t siglen = 0;

        (void)state;
        keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        for (size_t i = 0; i < 2; i++) {
                struct gmca_error e;
                uint8_t z[GMCA_SM3_LEN];

                assert_non_null(keys[i]);
                gmca_error_clear(&e);
                assert_int_equal(gmca_sm2_is_sm2(keys[i], &e), GMCA_ERR_INVALID);
                assert_non_null(strstr(e.msg, "SM2"));
                assert_int_equal(
                    gmca_sm2_sign(keys[i], NULL, (const uint8_t *)"x", 1, &sig, &siglen, NULL),
                    GMCA_ERR_INVALID);
                assert_null(sig);
                assert_null(gmca_sm2_sign_ctx(keys[i], NULL, NULL));
                assert_int_equal(gmca_sm2_z(keys[i], NULL, z, NULL), GMCA_ERR_INVALID);
                assert_int_equal(
                    gmca_sm2_encrypt(keys[i], (const uint8_t *)"x", 1, &sig, &siglen, NULL),
                    GMCA_ERR_INVALID);
                EVP_PKEY_free(keys[i]);
        }
        assert_int_equal(gmca_sm2_is_sm2(NULL, NULL), GMCA_ERR_INVALID);
}

/* ---- HMAC-SM3 ---- */

/*
 * Expected values from the openssl command (OpenSSL 3.0.19):
 *   printf abc > m1; openssl mac -digest SM3 -macopt hexkey:000102...1f -in m1 HMAC
 *   (100 × 'a') > m2; openssl mac -digest SM3 -macopt hexkey:aa×80 -in m2 HMAC
 * The second key is longer than SM3's 64-byte block, so it is hashed first.
 */
static void test_hmac_sm3(void **state)
{
        uint8_t key[80], msg[100], mac[GMCA_SM3_LEN];
        size_t klen;

        (void)state;
        klen = unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key,
                     sizeof(key));
        assert_int_equal(gmca_hmac_sm3(key, klen, "abc", 3, mac, NULL), 0);
        assert_hex(mac, sizeof(mac),
                   "A8F95CF26F204957E7CA73C9602A25DDA35F168B28103B51DFC968C810416B63");
        memset(key, 0xaa, sizeof(key));
        memset(msg, 'a', sizeof(msg));
        assert_int_equal(gmca_hmac_sm3(key, sizeof(key), msg, sizeof(msg), mac, NULL), 0);
        assert_hex(mac, sizeof(mac),
                   "1338A687E583C0FCDF755176CD43821BF1DFA2D3AB34288F18C869E78B8F609D");
        /* One key bit off changes everything. */
        key[0] ^= 1;
        assert_int_equal(gmca_hmac_sm3(key, sizeof(key), msg, sizeof(msg), mac, NULL), 0);
        assert_memory_not_equal(mac, "\x13\x38\xA6\x87", 4);
}

/* ---- GCM ---- */

/* RFC 8998 Appendix A.1, SM4-GCM. */
static const char gcm_key[] = "0123456789ABCDEFFEDCBA9876543210";
static const char gcm_iv[] = "00001234567800000000ABCD";
static const char gcm_aad[] = "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2";
static const char gcm_pt[] = "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                             "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA";
static const char gcm_ct[] = "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                             "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D";
static const char gcm_tag[] = "83DE3541E4C2B58177E065A9BF7B62EC";

static void test_sm4_gcm_rfc8998(void **state)
{
        uint8_t key[16], iv[12], aad[20], pt[64], ct[64], tag[16], out[64];
        size_t aadlen = unhex(gcm_aad, aad, sizeof(aad));
        size_t len = unhex(gcm_pt, pt, sizeof(pt));

        (void)state;
        unhex(gcm_key, key, sizeof(key));
        unhex(gcm_iv, iv, sizeof(iv));
        assert_int_equal(gmca_sm4_gcm_encrypt(key, iv, aad, aadlen, pt, len, ct, tag, NULL), 0);
        assert_hex(ct, len, gcm_ct);
        assert_hex(tag, 16, gcm_tag);
        assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, aad, aadlen, ct, len, tag, out, NULL), 0);
        assert_memory_equal(out, pt, len);
        /* The generic GCM with SM4 plugged in gives the same. */
        memset(out, 0, sizeof(out));
        assert_int_equal(
            gmca_gcm_encrypt("SM4-ECB", key, 16, iv, aad, aadlen, pt, len, out, tag, NULL), 0);
        assert_hex(out, len, gcm_ct);
        assert_hex(tag, 16, gcm_tag);
}

/*
 * AES-128 test cases 1, 2 and 4 of McGrew and Viega, "The Galois/Counter
 * Mode of Operation" (the vectors NIST's GCM validation starts from), run
 * through the same GCM code with AES as the block cipher: empty text, empty
 * AAD, a text that is not whole blocks.
 */
static const struct {
        const char *key, *iv, *aad, *pt, *ct, *tag;
} gcm_aes_vectors[] = {
    {"00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"00000000000000000000000000000000", "000000000000000000000000", "",
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
};

static void test_gcm_aes_vectors(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(gcm_aes_vectors) / sizeof(gcm_aes_vectors[0]); i++) {
                uint8_t key[16], iv[12], aad[32], pt[64], ct[64], tag[16], out[64];
                size_t aadlen = unhex(gcm_aes_vectors[i].aad, aad, sizeof(aad));
                size_t len = unhex(gcm_aes_vectors[i].pt, pt, sizeof(pt));

                unhex(gcm_aes_vectors[i].key, key, sizeof(key));
                unhex(gcm_aes_vectors[i].iv, iv, sizeof(iv));
                assert_int_equal(gmca_gcm_encrypt("AES-128-ECB", key, 16, iv, aadlen ? aad : NULL,
                                                  aadlen, pt, len, ct, tag, NULL),
                                 0);
                if (len > 0)
                        assert_hex(ct, len, gcm_aes_vectors[i].ct);
                assert_hex(tag, 16, gcm_aes_vectors[i].tag);
                assert_int_equal(gmca_gcm_decrypt("AES-128-ECB", key, 16, iv, aadlen ? aad : NULL,
                                                  aadlen, ct, len, tag, out, NULL),
                                 0);
                if (len > 0)
                        assert_memory_equal(out, pt, len);
        }
}

/* OpenSSL's AES-128-GCM as the reference for the cross-check. */
static void ossl_aes_gcm(const uint8_t *key, const uint8_t *iv, const uint8_t *aad, size_t aadlen,
                         const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[16])
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        uint8_t fin[16];
        int n = 0;

        assert_non_null(c);
        assert_int_equal(EVP_EncryptInit_ex2(c, EVP_aes_128_gcm(), key, iv, NULL), 1);
        if (aadlen > 0)
                assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen), 1);
        if (len > 0) {
                assert_int_equal(EVP_EncryptUpdate(c, ct, &n, pt, (int)len), 1);
                assert_int_equal(n, (int)len);
        }
        assert_int_equal(EVP_EncryptFinal_ex(c, fin, &n), 1);
        assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag), 1);
        EVP_CIPHER_CTX_free(c);
}

static void test_gcm_aes_cross(void **state)
{
        static const size_t aadlens[] = {0, 1, 16, 20, 33};
        static const size_t lens[] = {0, 1, 15, 16, 17, 64, 100, 1000};
        uint8_t key[16], iv[12], aad[33], pt[1000], ct[1000], ref[1000], tag[16], reftag[16];

        (void)state;
        for (size_t a = 0; a < sizeof(aadlens) / sizeof(aadlens[0]); a++) {
                for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
                        assert_int_equal(gmca_rand_bytes(key, sizeof(key), NULL), 0);
                        assert_int_equal(gmca_rand_bytes(iv, sizeof(iv), NULL), 0);
                        assert_int_equal(gmca_rand_bytes(aad, sizeof(aad), NULL), 0);
                        assert_int_equal(gmca_rand_bytes(pt, sizeof(pt), NULL), 0);
                        ossl_aes_gcm(key, iv, aad, aadlens[a], pt, lens[l], ref, reftag);
                        assert_int_equal(gmca_gcm_encrypt("AES-128-ECB", key, 16, iv, aad,
                                                          aadlens[a], pt, lens[l], ct, tag, NULL),
                                         0);
                        if (lens[l] > 0)
                                assert_memory_equal(ct, ref, lens[l]);
                        assert_memory_equal(tag, reftag, 16);
                }
        }
        /* A stream cipher or a wrong key length is refused. */
        assert_int_equal(
            gmca_gcm_encrypt("AES-128-CTR", key, 16, iv, NULL, 0, pt, 16, ct, tag, NULL),
            GMCA_ERR_INVALID);
        assert_int_equal(
            gmca_gcm_encrypt("AES-256-ECB", key, 16, iv, NULL, 0, pt, 16, ct, tag, NULL),
            GMCA_ERR_INVALID);
}

static void test_sm4_gcm_roundtrip(void **state)
{
        static const struct {
                size_t aadlen, len;
        } cases[] = {{0, 0}, {0, 1}, {20, 0}, {0, 16}, {13, 15}, {16, 17}, {1, 100}, {64, 257}};
        uint8_t key[16], iv[12], aad[64], pt[257], buf[257], tag[16], tag2[16];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t len = cases[i].len, aadlen = cases[i].aadlen;

                assert_int_equal(gmca_rand_bytes(key, sizeof(key), NULL), 0);
                assert_int_equal(gmca_rand_bytes(iv, sizeof(iv), NULL), 0);
                assert_int_equal(gmca_rand_bytes(aad, sizeof(aad), NULL), 0);
                assert_int_equal(gmca_rand_bytes(pt, sizeof(pt), NULL), 0);
                /* In place: buf is both input and output. */
                memcpy(buf, pt, len);
                assert_int_equal(gmca_sm4_gcm_encrypt(key, iv, aadlen ? aad : NULL, aadlen,
                                                      len ? buf : NULL, len, len ? buf : NULL, tag,
                                                      NULL),
                                 0);
                if (len >= 4)
                        assert_memory_not_equal(buf, pt, len);
                /* The tag authenticates the AAD even without text. */
                assert_int_equal(gmca_sm4_gcm_encrypt(key, iv, NULL, 0, NULL, 0, NULL, tag2, NULL),
                                 0);
                if (aadlen + len > 0)
                        assert_memory_not_equal(tag, tag2, 16);
                assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, aadlen ? aad : NULL, aadlen,
                                                      len ? buf : NULL, len, tag, len ? buf : NULL,
                                                      NULL),
                                 0);
                if (len > 0)
                        assert_memory_equal(buf, pt, len);
        }
}

static void test_sm4_gcm_tamper(void **state)
{
        uint8_t key[16], iv[12], aad[20], pt[64], ct[64], tag[16], out[64], zero[64] = {0};
        size_t aadlen = unhex(gcm_aad, aad, sizeof(aad));
        size_t len = unhex(gcm_pt, pt, sizeof(pt));
        struct gmca_error e;

        (void)state;
        unhex(gcm_key, key, sizeof(key));
        unhex(gcm_iv, iv, sizeof(iv));
        unhex(gcm_ct, ct, sizeof(ct));
        unhex(gcm_tag, tag, sizeof(tag));

        /* Each of tag, ciphertext, AAD, IV one bit off: refused, output zeroed. */
        for (int which = 0; which < 5; which++) {
                uint8_t *p = which == 0   ? tag
                             : which == 1 ? ct
                             : which == 2 ? ct + len - 1
                             : which == 3 ? aad + aadlen - 1
                                          : iv;

                *p ^= 0x01;
                memset(out, 0x5a, sizeof(out));
                gmca_error_clear(&e);
                assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, aad, aadlen, ct, len, tag, out, &e),
                                 GMCA_ERR_VERIFY);
                assert_memory_equal(out, zero, len);
                assert_non_null(strstr(e.msg, "tag"));
                *p ^= 0x01;
        }
        /* Dropping the AAD, or a byte of ciphertext, is refused too. */
        assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, NULL, 0, ct, len, tag, out, NULL),
                         GMCA_ERR_VERIFY);
        assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, aad, aadlen, ct, len - 1, tag, out, NULL),
                         GMCA_ERR_VERIFY);
        assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, aad, aadlen, ct, len, tag, out, NULL), 0);
        assert_memory_equal(out, pt, len);
}

static void test_sm4_gcm_limits(void **state)
{
        uint8_t key[16] = {0}, iv[12] = {0}, b[16] = {0}, tag[16];
        const size_t over = (size_t)((UINT64_C(1) << 36) - 16);

        (void)state;
        /* Refused before any byte is touched: b is far smaller than claimed. */
        assert_int_equal(gmca_sm4_gcm_encrypt(key, iv, NULL, 0, b, over, b, tag, NULL),
                         GMCA_ERR_LIMIT);
        assert_int_equal(gmca_sm4_gcm_decrypt(key, iv, NULL, 0, b, over, tag, b, NULL),
                         GMCA_ERR_LIMIT);
        assert_int_equal(gmca_sm4_gcm_encrypt(key, iv, NULL, 16, b, 16, b, tag, NULL),
                         GMCA_ERR_INVALID);
}

/* ---- key files ---- */

static const char pass[] = "correct horse battery";

struct tmpdir {
        char dir[64];
        char paths[4][128];
};

static char *tmp_path(struct tmpdir *t, int i, const char *name)
{
        snprintf(t->paths[i], sizeof(t->paths[i]), "%s/%s", t->dir, name);
        return t->paths[i];
}

static void tmp_cleanup(struct tmpdir *t)
{
        for (int i = 0; i < 4; i++)
                if (t->paths[i][0] != '\0')
                        unlink(t->paths[i]);
        rmdir(t->dir);
}

static int priv_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
        BIGNUM *da = NULL, *db = NULL;
        int eq;

        assert_int_equal(EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_PRIV_KEY, &da), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(b, OSSL_PKEY_PARAM_PRIV_KEY, &db), 1);
        eq = BN_cmp(da, db) == 0;
        BN_clear_free(da);
        BN_clear_free(db);
        return eq;
}

static void test_key_file(void **state)
{
        struct tmpdir t;
        EVP_PKEY *key = make_key("SM2", std_d, std_pub), *back;
        uint8_t *buf = NULL;
        size_t len = 0;
        struct stat st;
        struct gmca_error e;
        char *p, *trunc;
        FILE *f;

        (void)state;
        memset(&t, 0, sizeof(t));
        gmca_strlcpy(t.dir, "/tmp/gmca-test-crypto-XXXXXX", sizeof(t.dir));
        assert_non_null(mkdtemp(t.dir));
        p = tmp_path(&t, 0, "ca.key");

        assert_int_equal(gmca_key_write(p, key, pass, strlen(pass), NULL), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* Round trip: the same private scalar comes back, as an SM2 key. */
        gmca_error_clear(&e);
        back = gmca_key_read(p, pass, strlen(pass), &e);
        assert_non_null(back);
        assert_int_equal(gmca_sm2_is_sm2(back, NULL), 0);
        assert_true(priv_equal(key, back));
        EVP_PKEY_free(back);

        /* Never overwritten. */
        gmca_error_clear(&e);
        assert_int_equal(gmca_key_write(p, key, pass, strlen(pass), &e), GMCA_ERR_EXISTS);
        assert_non_null(strstr(e.msg, "exists"));

        /* Wrong passphrase. */
        gmca_error_clear(&e);
        assert_null(gmca_key_read(p, "correct horse battery!", strlen(pass) + 1, &e));
        assert_int_equal(e.code, GMCA_ERR_AUTH);
        assert_non_null(strstr(e.msg, "passphrase"));

        /* Passphrase length bounds, on both sides. */
        gmca_error_clear(&e);
        assert_null(gmca_key_read(p, "short", 5, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        assert_int_equal(gmca_key_write(tmp_path(&t, 1, "short.key"), key, "1234567", 7, NULL),
                         GMCA_ERR_INVALID);
        assert_int_equal(access(t.paths[1], F_OK), -1);

        /* Truncated file. */
        assert_int_equal(gmca_read_file(p, 1 << 16, &buf, &len, NULL), 0);
        trunc = tmp_path(&t, 2, "trunc.key");
        assert_non_null(f = fopen(trunc, "wb"));
        assert_int_equal(fwrite(buf, 1, len / 2, f), len / 2);
        fclose(f);
        gmca_error_clear(&e);
        assert_null(gmca_key_read(trunc, pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);

        /* Missing file. */
        gmca_error_clear(&e);
        assert_null(gmca_key_read(tmp_path(&t, 3, "none.key"), pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_NOTFOUND);

        /* A public key alone cannot be written. */
        back = make_key("SM2", NULL, std_pub);
        assert_int_equal(gmca_key_write(t.paths[3], back, pass, strlen(pass), NULL),
                         GMCA_ERR_INVALID);
        EVP_PKEY_free(back);

        free(buf);
        EVP_PKEY_free(key);
        tmp_cleanup(&t);
}

static int has_bytes(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
        for (size_t i = 0; i + m <= n; i++)
                if (memcmp(hay + i, needle, m) == 0)
                        return 1;
        return 0;
}

/* The PEM is an encrypted PKCS#8 with the promised parameters and no plaintext key. */
static void test_key_pem_format(void **state)
{
        /* DER of OID sm4-cbc, OID hmacWithSHA256, INTEGER 600000. */
        static const uint8_t oid_sm4cbc[] = {0x06, 0x08, 0x2A, 0x81, 0x1C,
                                             0xCF, 0x55, 0x01, 0x68, 0x02};
        static const uint8_t oid_sha256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                             0x86, 0xF7, 0x0D, 0x02, 0x09};
        static const uint8_t iter[] = {0x02, 0x03, 0x09, 0x27, 0xC0};
        EVP_PKEY *key = make_key("SM2", std_d, std_pub);
        char *pem = NULL, *pem2 = NULL, *name = NULL, *header = NULL;
        size_t pemlen = 0, pem2len = 0;
        uint8_t d[32], *der = NULL;
        long derlen = 0;
        BIO *bio;

        (void)state;
        unhex(std_d, d, sizeof(d));
        assert_int_equal(gmca_key_to_pem(key, pass, strlen(pass), &pem, &pemlen, NULL), 0);
        assert_int_equal(strlen(pem), pemlen);
        assert_int_equal(strncmp(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38), 0);
        assert_false(has_bytes((const uint8_t *)pem, pemlen, d, sizeof(d)));

        assert_non_null(bio = BIO_new_mem_buf(pem, (int)pemlen));
        assert_int_equal(PEM_read_bio(bio, &name, &header, &der, &derlen), 1);
        assert_string_equal(name, "ENCRYPTED PRIVATE KEY");
        assert_false(has_bytes(der, (size_t)derlen, d, sizeof(d)));
        assert_true(has_bytes(der, (size_t)derlen, oid_sm4cbc, sizeof(oid_sm4cbc)));
        assert_true(has_bytes(der, (size_t)derlen, oid_sha256, sizeof(oid_sha256)));
        assert_true(has_bytes(der, (size_t)derlen, iter, sizeof(iter)));

        /* Fresh salt and IV each time. */
        assert_int_equal(gmca_key_to_pem(key, pass, strlen(pass), &pem2, &pem2len, NULL), 0);
        assert_true(pemlen != pem2len || memcmp(pem, pem2, pemlen) != 0);

        BIO_free(bio);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        OPENSSL_free(pem);
        OPENSSL_free(pem2);
        EVP_PKEY_free(key);
}

/*
 * An encrypted PKCS#8 PEM of key made with chosen PBES2 parameters. The
 * key is encrypted with 1000 iterations; a larger iter is then written into
 * the parameters only, so that making the sample does not run the KDF.
 */
static char *pem_with(EVP_PKEY *key, const char *cipher, int prf, int iter)
{
        EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, cipher, NULL);
        X509_ALGOR *pbe, *alg = NULL;
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
        X509_SIG *sig;
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL, *out;
        long n;

        assert_non_null(c);
        assert_non_null(p8);
        assert_non_null(
            pbe = PKCS5_pbe2_set_iv_ex(c, iter > 1000 ? 1000 : iter, NULL, 16, NULL, prf, NULL));
        assert_non_null(sig = PKCS8_set0_pbe_ex(pass, (int)strlen(pass), p8, pbe, NULL, NULL));
        if (iter > 1000) {
                X509_ALGOR *big = PKCS5_pbe2_set_iv_ex(c, iter, NULL, 16, NULL, prf, NULL);

                assert_non_null(big);
                X509_SIG_getm(sig, &alg, NULL);
                assert_int_equal(X509_ALGOR_copy(alg, big), 1);
                X509_ALGOR_free(big);
        }
        assert_int_equal(PEM_write_bio_PKCS8(bio, sig), 1);
        n = BIO_get_mem_data(bio, &data);
        assert_non_null(out = calloc(1, (size_t)n + 1));
        memcpy(out, data, (size_t)n);
        BIO_free(bio);
        X509_SIG_free(sig);
        PKCS8_PRIV_KEY_INFO_free(p8);
        EVP_CIPHER_free(c);
        return out;
}

/* Only PBES2 / PBKDF2-hmacWithSHA256 / SM4-CBC, with a bounded iteration count. */
static void test_key_pbes2_policy(void **state)
{
        static const struct {
                const char *cipher;
                int prf, iter, want;
        } cases[] = {
            {"SM4-CBC", NID_hmacWithSHA256, 1000, 0},
            {"SM4-CBC", NID_hmacWithSHA256, 10000001, GMCA_ERR_LIMIT},
            {"SM4-CBC", NID_hmacWithSHA256, 0x7fffffff, GMCA_ERR_LIMIT},
            {"SM4-CBC", NID_hmacWithSHA1, 1000, GMCA_ERR_INVALID},
            {"SM4-CBC", NID_hmacWithSHA512, 1000, GMCA_ERR_INVALID},
            {"AES-256-CBC", NID_hmacWithSHA256, 1000, GMCA_ERR_INVALID},
        };
        EVP_PKEY *key = make_key("SM2", std_d, std_pub);

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *pem = pem_with(key, cases[i].cipher, cases[i].prf, cases[i].iter);
                struct gmca_error e;
                EVP_PKEY *back;

                gmca_error_clear(&e);
                back = gmca_key_from_pem(pem, strlen(pem), pass, strlen(pass), &e);
                if (cases[i].want == 0) {
                        assert_non_null(back);
                        assert_true(priv_equal(key, back));
                } else {
                        assert_null(back);
                        assert_int_equal(e.code, cases[i].want);
                }
                EVP_PKEY_free(back);
                free(pem);
        }
        EVP_PKEY_free(key);
}

/* Only one headerless "ENCRYPTED PRIVATE KEY" block, and an SM2 key inside. */
static void test_key_pem_strict(void **state)
{
        EVP_PKEY *key = make_key("SM2", std_d, std_pub);
        EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        char *pem = pem_with(key, "SM4-CBC", NID_hmacWithSHA256, 1000), *other;
        size_t len = strlen(pem);
        char buf[8192];
        struct gmca_error e;
        EVP_PKEY *back;

        (void)state;
        assert_true(len + 64 < sizeof(buf));

        /* Trailing white space is fine, trailing data is not. */
        snprintf(buf, sizeof(buf), "%s\n\n", pem);
        assert_non_null(back = gmca_key_from_pem(buf, strlen(buf), pass, strlen(pass), NULL));
        EVP_PKEY_free(back);
        snprintf(buf, sizeof(buf), "%sjunk\n", pem);
        gmca_error_clear(&e);
        assert_null(gmca_key_from_pem(buf, strlen(buf), pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);

        /* Another label. */
        snprintf(buf, sizeof(buf), "-----BEGIN PRIVATE KEY-----%s",
                 pem + strlen("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        *strstr(buf, "END ENCRYPTED ") = '\0';
        gmca_strlcpy(buf + strlen(buf), "END PRIVATE KEY-----\n", sizeof(buf) - strlen(buf));
        gmca_error_clear(&e);
        assert_null(gmca_key_from_pem(buf, strlen(buf), pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);

        /* Garbage, empty, and a length over the cap. */
        gmca_error_clear(&e);
        assert_null(gmca_key_from_pem("not a key", 9, pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        assert_null(gmca_key_from_pem("", 0, pass, strlen(pass), NULL));
        gmca_error_clear(&e);
        assert_null(gmca_key_from_pem(pem, 65 * 1024, pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_LIMIT);

        /* A P-256 key in the right format is refused: GM/T 0015 wants SM2. */
        assert_non_null(p256);
        other = pem_with(p256, "SM4-CBC", NID_hmacWithSHA256, 1000);
        gmca_error_clear(&e);
        assert_null(gmca_key_from_pem(other, strlen(other), pass, strlen(pass), &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);

        free(other);
        free(pem);
        EVP_PKEY_free(p256);
        EVP_PKEY_free(key);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sm3_vectors),
            cmocka_unit_test(test_sm4_ecb_single),
            cmocka_unit_test(test_sm4_ecb_million),
            cmocka_unit_test(test_sm4_ecb_bad_length),
            cmocka_unit_test(test_sm4_cbc_kat),
            cmocka_unit_test(test_sm4_cbc_roundtrip),
            cmocka_unit_test(test_sm4_cbc_bad_padding),
            cmocka_unit_test(test_sm2_std_signature),
            cmocka_unit_test(test_sm2_z),
            cmocka_unit_test(test_sm2_std_decrypt),
            cmocka_unit_test(test_sm2_decrypt_rejects),
            cmocka_unit_test(test_sm2_encrypt_roundtrip),
            cmocka_unit_test(test_sm2_sign_roundtrip),
            cmocka_unit_test(test_sm2_ec_typed_key),
            cmocka_unit_test(test_sm2_rejects_other_keys),
            cmocka_unit_test(test_hmac_sm3),
            cmocka_unit_test(test_sm4_gcm_rfc8998),
            cmocka_unit_test(test_gcm_aes_vectors),
            cmocka_unit_test(test_gcm_aes_cross),
            cmocka_unit_test(test_sm4_gcm_roundtrip),
            cmocka_unit_test(test_sm4_gcm_tamper),
            cmocka_unit_test(test_sm4_gcm_limits),
            cmocka_unit_test(test_key_file),
            cmocka_unit_test(test_key_pem_format),
            cmocka_unit_test(test_key_pbes2_policy),
            cmocka_unit_test(test_key_pem_strict),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
