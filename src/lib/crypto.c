/*
 * SM2, SM3, SM4 and randomness over OpenSSL 3 EVP, and private keys at rest.
 * Every SM2 context made here carries an explicit distinguishing ID, because
 * OpenSSL 3.0 defaults to an empty one (GMT-REFERENCE.md §3.3). SM4-GCM is
 * missing from OpenSSL 3.0, so GCM (NIST SP 800-38D) is built here over
 * libcrypto's SM4 block function; it is the only mode written by hand.
 */
#include "crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "util.h"

/* Caps on lengths that reach EVP calls taking int. */
#define SM2_PLAIN_MAX (1u << 20)
#define SM2_CIPHER_MAX (SM2_PLAIN_MAX + 256u)
#define SM4_DATA_MAX (1u << 30)

int gmca_rand_bytes(uint8_t *buf, size_t len, struct gmca_error *e)
{
        if (len > INT_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "random: %zu bytes is over %d", len,
                                      INT_MAX);
        if (RAND_priv_bytes(buf, (int)len) != 1)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "random: CSPRNG failed");
        return 0;
}

EVP_PKEY *gmca_sm2_keygen(struct gmca_error *e)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
        EVP_PKEY *key = NULL;

        if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: key generation failed");
                key = NULL;
        }
        EVP_PKEY_CTX_free(ctx);
        return key;
}

int gmca_sm2_is_sm2(const EVP_PKEY *key, struct gmca_error *e)
{
        char group[64];
        size_t glen = 0;

        if (key == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "key: missing");
        /*
         * An SM2 key may come back from the decoder as type "SM2" or as a
         * generic EC key on the SM2 curve; both are accepted, nothing else.
         */
        if (!EVP_PKEY_is_a(key, "SM2") && !EVP_PKEY_is_a(key, "EC"))
                return gmca_error_set(e, GMCA_ERR_INVALID, "key: GM/T 0015 requires SM2, got %s",
                                      EVP_PKEY_get0_type_name(key));
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1 ||
            strcmp(group, "SM2") != 0) {
                gmca_ossl_clear();
                return gmca_error_set(
                    e, GMCA_ERR_INVALID,
                    "key: GM/T 0015 requires the SM2 curve (1.2.156.10197.1.301)");
        }
        return 0;
}

static const char *id_or_default(const char *id)
{
        return id != NULL ? id : GMCA_SM2_DEFAULT_ID;
}

/*
 * A reference to key as an OpenSSL "SM2" key. A key on the SM2 curve that
 * came in as type "EC" would otherwise be used for ECDSA-with-SM3 by the
 * signing context and refused by the SM2 cipher, so it is re-imported as
 * "SM2". Caller frees with EVP_PKEY_free. NULL on failure.
 */
static EVP_PKEY *sm2_ref(EVP_PKEY *key, struct gmca_error *e)
{
        EVP_PKEY_CTX *ctx = NULL;
        OSSL_PARAM *params = NULL;
        EVP_PKEY *out = NULL;
        BIGNUM *d = NULL;
        int sel = EVP_PKEY_PUBLIC_KEY;

        if (gmca_sm2_is_sm2(key, e) != 0)
                return NULL;
        if (EVP_PKEY_is_a(key, "SM2")) {
                if (EVP_PKEY_up_ref(key) != 1) {
                        gmca_error_ossl(e, GMCA_ERR_INTERNAL, "SM2: cannot reference key");
                        return NULL;
                }
                return key;
        }
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1)
                sel = EVP_PKEY_KEYPAIR;
        BN_clear_free(d);
        gmca_ossl_clear();
        if (EVP_PKEY_todata(key, sel, &params) != 1 ||
            (ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL)) == NULL ||
            EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &out, sel, params) != 1) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO,
                                "SM2: cannot use EC key on the SM2 curve as SM2");
                out = NULL;
        }
        /* params may hold the private scalar; 3.0 has no OSSL_PARAM_clear_free. */
        for (OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++)
                if (p->data != NULL)
                        OPENSSL_cleanse(p->data, p->data_size);
        OSSL_PARAM_free(params);
        EVP_PKEY_CTX_free(ctx);
        return out;
}

static int sm2_md_ctx(EVP_PKEY *key, const char *id, int sign, EVP_MD_CTX **out,
                      struct gmca_error *e)
{
        EVP_MD_CTX *mctx = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        EVP_PKEY *k = NULL;
        size_t idlen;
        int ok, rc = GMCA_ERR_CRYPTO;

        id = id_or_default(id);
        idlen = strlen(id);
        if (idlen == 0 || idlen > GMCA_SM2_ID_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2: ID must be 1..%d bytes",
                                      GMCA_SM2_ID_MAX);
        if ((rc = gmca_sm2_is_sm2(key, e)) != 0)
                return rc;
        rc = GMCA_ERR_CRYPTO;
        if ((k = sm2_ref(key, e)) == NULL)
                goto out;
        /*
         * OpenSSL 3.0 accepts the ID only after the digest-sign init (the
         * provider refuses it before it knows Z is to be computed), and
         * before any data: set it on the context the init returns, which
         * mctx owns (and which holds its own reference to the key).
         */
        if ((mctx = EVP_MD_CTX_new()) == NULL)
                goto fail;
        if (sign)
                ok = EVP_DigestSignInit_ex(mctx, &pctx, "SM3", NULL, NULL, k, NULL);
        else
                ok = EVP_DigestVerifyInit_ex(mctx, &pctx, "SM3", NULL, NULL, k, NULL);
        if (ok != 1 || pctx == NULL || EVP_PKEY_CTX_set1_id(pctx, id, idlen) != 1)
                goto fail;
        *out = mctx;
        mctx = NULL;
        rc = 0;
        goto out;
fail:
        gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: cannot set up %s context",
                        sign ? "signing" : "verifying");
out:
        EVP_MD_CTX_free(mctx);
        EVP_PKEY_free(k);
        return rc;
}

EVP_MD_CTX *gmca_sm2_sign_ctx(EVP_PKEY *key, const char *id, struct gmca_error *e)
{
        EVP_MD_CTX *mctx = NULL;

        return sm2_md_ctx(key, id, 1, &mctx, e) == 0 ? mctx : NULL;
}

EVP_MD_CTX *gmca_sm2_verify_ctx(EVP_PKEY *key, const char *id, struct gmca_error *e)
{
        EVP_MD_CTX *mctx = NULL;

        return sm2_md_ctx(key, id, 0, &mctx, e) == 0 ? mctx : NULL;
}

int gmca_sm2_sign(EVP_PKEY *key, const char *id, const uint8_t *msg, size_t len, uint8_t **sig,
                  size_t *siglen, struct gmca_error *e)
{
        EVP_MD_CTX *mctx = NULL;
        uint8_t *s = NULL;
        size_t slen = 0;
        int rc;

        if ((rc = sm2_md_ctx(key, id, 1, &mctx, e)) != 0)
                return rc;
        rc = GMCA_ERR_CRYPTO;
        if (EVP_DigestSign(mctx, NULL, &slen, msg, len) != 1 ||
            (s = OPENSSL_malloc(slen)) == NULL || EVP_DigestSign(mctx, s, &slen, msg, len) != 1) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: signing failed");
                goto out;
        }
        *sig = s;
        *siglen = slen;
        s = NULL;
        rc = 0;
out:
        OPENSSL_free(s);
        EVP_MD_CTX_free(mctx);
        return rc;
}

int gmca_sm2_verify(EVP_PKEY *key, const char *id, const uint8_t *msg, size_t len,
                    const uint8_t *sig, size_t siglen, struct gmca_error *e)
{
        EVP_MD_CTX *mctx = NULL;
        int r;

        if ((r = sm2_md_ctx(key, id, 0, &mctx, e)) != 0)
                return r;
        r = EVP_DigestVerify(mctx, sig, siglen, msg, len);
        EVP_MD_CTX_free(mctx);
        gmca_ossl_clear();
        if (r != 1)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "GM/T 0009: SM2 signature does not verify with ID %s",
                                      id_or_default(id));
        return 0;
}

int gmca_sm3(const void *data, size_t len, uint8_t out[GMCA_SM3_LEN])
{
        unsigned int n = 0;

        if (EVP_Digest(data, len, out, &n, EVP_sm3(), NULL) != 1 || n != GMCA_SM3_LEN)
                return GMCA_ERR_CRYPTO;
        return 0;
}

EVP_MD_CTX *gmca_sm3_new(void)
{
        EVP_MD_CTX *c = EVP_MD_CTX_new();

        if (c != NULL && EVP_DigestInit_ex(c, EVP_sm3(), NULL) != 1) {
                EVP_MD_CTX_free(c);
                c = NULL;
        }
        return c;
}

int gmca_sm3_update(EVP_MD_CTX *c, const void *data, size_t len)
{
        return EVP_DigestUpdate(c, data, len) == 1 ? 0 : GMCA_ERR_CRYPTO;
}

int gmca_sm3_final(EVP_MD_CTX *c, uint8_t out[GMCA_SM3_LEN])
{
        unsigned int n = 0;
        int ok = EVP_DigestFinal_ex(c, out, &n) == 1 && n == GMCA_SM3_LEN;

        EVP_MD_CTX_free(c);
        return ok ? 0 : GMCA_ERR_CRYPTO;
}

void gmca_hex(const uint8_t *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * len] = '\0';
}

void gmca_secret_free(void *p, size_t len)
{
        if (p != NULL)
                OPENSSL_clear_free(p, len);
}

/* SM2 recommended curve a, b, xG, yG (GM/T 0003.5, GMT-REFERENCE.md §7). */
static const uint8_t sm2_curve_abg[128] = {
    /* a */
    0xFF,
    0xFF,
    0xFF,
    0xFE,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0x00,
    0x00,
    0x00,
    0x00,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFF,
    0xFC,
    /* b */
    0x28,
    0xE9,
    0xFA,
    0x9E,
    0x9D,
    0x9F,
    0x5E,
    0x34,
    0x4D,
    0x5A,
    0x9E,
    0x4B,
    0xCF,
    0x65,
    0x09,
    0xA7,
    0xF3,
    0x97,
    0x89,
    0xF5,
    0x15,
    0xAB,
    0x8F,
    0x92,
    0xDD,
    0xBC,
    0xBD,
    0x41,
    0x4D,
    0x94,
    0x0E,
    0x93,
    /* xG */
    0x32,
    0xC4,
    0xAE,
    0x2C,
    0x1F,
    0x19,
    0x81,
    0x19,
    0x5F,
    0x99,
    0x04,
    0x46,
    0x6A,
    0x39,
    0xC9,
    0x94,
    0x8F,
    0xE3,
    0x0B,
    0xBF,
    0xF2,
    0x66,
    0x0B,
    0xE1,
    0x71,
    0x5A,
    0x45,
    0x89,
    0x33,
    0x4C,
    0x74,
    0xC7,
    /* yG */
    0xBC,
    0x37,
    0x36,
    0xA2,
    0xF4,
    0xF6,
    0x77,
    0x9C,
    0x59,
    0xBD,
    0xCE,
    0xE3,
    0x6B,
    0x69,
    0x21,
    0x53,
    0xD0,
    0xA9,
    0x87,
    0x7C,
    0xC6,
    0x2A,
    0x47,
    0x40,
    0x02,
    0xDF,
    0x32,
    0xE5,
    0x21,
    0x39,
    0xF0,
    0xA0,
};

/*
 * The public point of an SM2 key as 32-byte big-endian x and y. The
 * octet-string form is used when it is uncompressed; a key imported with a
 * compressed point falls back to the separate coordinates.
 */
int gmca_sm2_pub_xy(const EVP_PKEY *key, uint8_t xy[64], struct gmca_error *e)
{
        uint8_t pt[65];
        size_t n = 0;
        BIGNUM *x = NULL, *y = NULL;
        int rc = GMCA_ERR_CRYPTO;

        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n) ==
                1 &&
            n == sizeof(pt) && pt[0] == 0x04) {
                memcpy(xy, pt + 1, 64);
                return 0;
        }
        gmca_ossl_clear();
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
            BN_bn2binpad(x, xy, 32) != 32 || BN_bn2binpad(y, xy + 32, 32) != 32) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: key has no usable public point");
                goto out;
        }
        rc = 0;
out:
        BN_free(x);
        BN_free(y);
        return rc;
}

int gmca_sm2_z(EVP_PKEY *key, const char *id, uint8_t out[GMCA_SM3_LEN], struct gmca_error *e)
{
        EVP_MD_CTX *c = NULL;
        uint8_t xy[64], entl[2];
        size_t idlen;
        int rc;

        id = id_or_default(id);
        idlen = strlen(id);
        if (idlen == 0 || idlen > GMCA_SM2_ID_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2: ID must be 1..%d bytes",
                                      GMCA_SM2_ID_MAX);
        if ((rc = gmca_sm2_is_sm2(key, e)) != 0 || (rc = gmca_sm2_pub_xy(key, xy, e)) != 0)
                return rc;
        /* ENTL: the ID length in bits, two bytes big-endian (GM/T 0003.2 §5.5). */
        entl[0] = (uint8_t)((idlen * 8) >> 8);
        entl[1] = (uint8_t)(idlen * 8);
        if ((c = gmca_sm3_new()) == NULL || gmca_sm3_update(c, entl, sizeof(entl)) != 0 ||
            gmca_sm3_update(c, id, idlen) != 0 ||
            gmca_sm3_update(c, sm2_curve_abg, sizeof(sm2_curve_abg)) != 0 ||
            gmca_sm3_update(c, xy, sizeof(xy)) != 0) {
                EVP_MD_CTX_free(c);
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: SM3 failed computing Z");
        }
        /* gmca_sm3_final frees c whatever it returns. */
        if (gmca_sm3_final(c, out) != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: SM3 failed computing Z");
        return 0;
}

int gmca_sm2_encrypt(EVP_PKEY *pub, const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                     struct gmca_error *e)
{
        EVP_PKEY *k = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        uint8_t *buf = NULL;
        size_t n = 0;
        int rc;

        if (in == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2: nothing to encrypt");
        if (len > SM2_PLAIN_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM2: %zu bytes is over the %u cap", len,
                                      SM2_PLAIN_MAX);
        if ((rc = gmca_sm2_is_sm2(pub, e)) != 0)
                return rc;
        rc = GMCA_ERR_CRYPTO;
        if ((k = sm2_ref(pub, e)) == NULL)
                goto out;
        if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL ||
            EVP_PKEY_encrypt_init(ctx) != 1 || EVP_PKEY_encrypt(ctx, NULL, &n, in, len) != 1 ||
            (buf = OPENSSL_malloc(n)) == NULL || EVP_PKEY_encrypt(ctx, buf, &n, in, len) != 1) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: encryption failed");
                goto out;
        }
        *out = buf;
        *outlen = n;
        buf = NULL;
        rc = 0;
out:
        OPENSSL_free(buf);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(k);
        return rc;
}

/*
 * in must be exactly one DER SM2Cipher (GM/T 0009 §7.2): INTEGER x,
 * INTEGER y, OCTET STRING C3 of 32 bytes, OCTET STRING C2, nothing after.
 * OpenSSL's decoder ignores trailing bytes and accepts BER, hence the
 * re-encoding comparison.
 */
static int sm2cipher_check(const uint8_t *in, size_t len, struct gmca_error *e)
{
        static const int types[4] = {V_ASN1_INTEGER, V_ASN1_INTEGER, V_ASN1_OCTET_STRING,
                                     V_ASN1_OCTET_STRING};
        const unsigned char *p = in;
        ASN1_SEQUENCE_ANY *seq = NULL;
        unsigned char *der = NULL;
        int derlen, rc = GMCA_ERR_INVALID;

        if (len > SM2_CIPHER_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM2: ciphertext over %u bytes",
                                      SM2_CIPHER_MAX);
        seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
        if (seq == NULL || p != in + len || sk_ASN1_TYPE_num(seq) != 4) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID,
                                     "SM2: GM/T 0009 SM2Cipher: not a SEQUENCE of 4 fields");
                goto out;
        }
        for (int i = 0; i < 4; i++) {
                ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);

                if (ASN1_TYPE_get(t) != types[i]) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "SM2: GM/T 0009 SM2Cipher: field %d has the wrong type",
                                            i + 1);
                        goto out;
                }
        }
        if (ASN1_STRING_length(sk_ASN1_TYPE_value(seq, 2)->value.octet_string) != GMCA_SM3_LEN) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "SM2: GM/T 0009 SM2Cipher: HASH is not 32 bytes");
                goto out;
        }
        derlen = i2d_ASN1_SEQUENCE_ANY(seq, &der);
        if (derlen < 0 || (size_t)derlen != len || memcmp(der, in, len) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "SM2: GM/T 0009 SM2Cipher: not DER");
                goto out;
        }
        rc = 0;
out:
        OPENSSL_free(der);
        sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
        return rc;
}

int gmca_sm2_decrypt(EVP_PKEY *key, const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                     struct gmca_error *e)
{
        EVP_PKEY *k = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        uint8_t *buf = NULL;
        size_t cap = 0, n = 0;
        int rc;

        if (in == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2: nothing to decrypt");
        if ((rc = sm2cipher_check(in, len, e)) != 0 || (rc = gmca_sm2_is_sm2(key, e)) != 0)
                return rc;
        rc = GMCA_ERR_CRYPTO;
        if ((k = sm2_ref(key, e)) == NULL)
                goto out;
        if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL ||
            EVP_PKEY_decrypt_init(ctx) != 1 || EVP_PKEY_decrypt(ctx, NULL, &cap, in, len) != 1 ||
            (buf = OPENSSL_malloc(cap)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: cannot set up decryption");
                goto out;
        }
        n = cap;
        if (EVP_PKEY_decrypt(ctx, buf, &n, in, len) != 1) {
                /* C3 mismatch, C1 not on the curve, or not our key. */
                rc = gmca_error_ossl(e, GMCA_ERR_VERIFY,
                                     "SM2: decryption failed (wrong key or corrupted ciphertext)");
                goto out;
        }
        *out = buf;
        *outlen = n;
        buf = NULL;
        rc = 0;
out:
        if (buf != NULL)
                OPENSSL_clear_free(buf, cap);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(k);
        return rc;
}

int gmca_hmac_sm3(const uint8_t *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[GMCA_SM3_LEN], struct gmca_error *e)
{
        static const uint8_t nokey[1];
        char digest[] = "SM3";
        OSSL_PARAM params[2];
        EVP_MAC *mac = NULL;
        EVP_MAC_CTX *ctx = NULL;
        size_t n = 0;
        int rc = GMCA_ERR_CRYPTO;

        if ((key == NULL && keylen != 0) || (data == NULL && len != 0))
                return gmca_error_set(e, GMCA_ERR_INVALID, "HMAC-SM3: missing input");
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        /* HMAC's init treats a NULL key as "keep the old one": pass a real empty key. */
        if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
            (ctx = EVP_MAC_CTX_new(mac)) == NULL ||
            EVP_MAC_init(ctx, keylen != 0 ? key : nokey, keylen, params) != 1 ||
            EVP_MAC_update(ctx, data != NULL ? data : (const void *)nokey, len) != 1 ||
            EVP_MAC_final(ctx, out, &n, GMCA_SM3_LEN) != 1 || n != GMCA_SM3_LEN) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "HMAC-SM3 failed");
                goto out;
        }
        rc = 0;
out:
        /* The context holds the padded key. */
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        return rc;
}

/*
 * One SM4 pass with EVP: name is "SM4-CBC" or "SM4-ECB", pad selects
 * PKCS#7. out must hold len + 16 bytes when padding on encryption, len
 * otherwise; *outlen gets what was written. A decryption that fails at
 * the final block (bad padding) returns GMCA_ERR_VERIFY.
 */
static int sm4_run(const char *name, int enc, int pad, const uint8_t *key, const uint8_t *iv,
                   const uint8_t *in, size_t len, uint8_t *out, size_t *outlen,
                   struct gmca_error *e)
{
        EVP_CIPHER *cipher = NULL;
        EVP_CIPHER_CTX *ctx = NULL;
        int n1 = 0, n2 = 0, rc = GMCA_ERR_CRYPTO;

        if ((cipher = EVP_CIPHER_fetch(NULL, name, NULL)) == NULL ||
            (ctx = EVP_CIPHER_CTX_new()) == NULL ||
            EVP_CipherInit_ex2(ctx, cipher, key, iv, enc, NULL) != 1 ||
            EVP_CIPHER_CTX_set_padding(ctx, pad) != 1 ||
            EVP_CipherUpdate(ctx, out, &n1, in, (int)len) != 1) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "%s: cipher failed", name);
                goto out;
        }
        if (EVP_CipherFinal_ex(ctx, out + n1, &n2) != 1) {
                rc = enc ? gmca_error_ossl(e, GMCA_ERR_CRYPTO, "%s: cipher failed", name)
                         : gmca_error_ossl(e, GMCA_ERR_VERIFY,
                                           "%s: bad PKCS#7 padding (wrong key or corrupted data)",
                                           name);
                goto out;
        }
        *outlen = (size_t)n1 + (size_t)n2;
        rc = 0;
out:
        EVP_CIPHER_CTX_free(ctx);
        EVP_CIPHER_free(cipher);
        return rc;
}

int gmca_sm4_cbc_encrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_BLOCK],
                         const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                         struct gmca_error *e)
{
        static const uint8_t none[1];
        uint8_t *buf = NULL;
        size_t cap, n = 0;
        int rc;

        if (in == NULL && len != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM4-CBC: missing input");
        if (len > SM4_DATA_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM4-CBC: %zu bytes is over the %u cap",
                                      len, SM4_DATA_MAX);
        cap = len + GMCA_SM4_BLOCK - len % GMCA_SM4_BLOCK;
        if ((buf = OPENSSL_malloc(cap)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "SM4-CBC: out of memory");
        rc = sm4_run("SM4-CBC", 1, 1, key, iv, in != NULL ? in : none, len, buf, &n, e);
        if (rc == 0 && n != cap)
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "SM4-CBC: unexpected output length");
        if (rc != 0) {
                OPENSSL_free(buf);
                return rc;
        }
        *out = buf;
        *outlen = n;
        return 0;
}

int gmca_sm4_cbc_decrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_BLOCK],
                         const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                         struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t n = 0;
        int rc;

        if (in == NULL || len == 0 || len % GMCA_SM4_BLOCK != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SM4-CBC: ciphertext of %zu bytes is not whole blocks", len);
        if (len > SM4_DATA_MAX + GMCA_SM4_BLOCK)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM4-CBC: %zu bytes is over the cap", len);
        /* EVP may write up to a block more than it returns while padding is on. */
        if ((buf = OPENSSL_malloc(len + GMCA_SM4_BLOCK)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "SM4-CBC: out of memory");
        if ((rc = sm4_run("SM4-CBC", 0, 1, key, iv, in, len, buf, &n, e)) != 0) {
                OPENSSL_clear_free(buf, len + GMCA_SM4_BLOCK);
                return rc;
        }
        *out = buf;
        *outlen = n;
        return 0;
}

int gmca_sm4_ecb(int encrypt, const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t *in, size_t len,
                 uint8_t *out, struct gmca_error *e)
{
        size_t n = 0;
        int rc;

        if (len % GMCA_SM4_BLOCK != 0 || (len != 0 && (in == NULL || out == NULL)))
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM4-ECB: %zu bytes is not whole blocks",
                                      len);
        if (len > SM4_DATA_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM4-ECB: %zu bytes is over the %u cap",
                                      len, SM4_DATA_MAX);
        if (len == 0)
                return 0;
        rc = sm4_run("SM4-ECB", encrypt != 0, 0, key, NULL, in, len, out, &n, e);
        if (rc == 0 && n != len)
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "SM4-ECB: unexpected output length");
        return rc;
}

/*
 * GCM, NIST SP 800-38D, over any 128-bit block cipher. Blocks are held as
 * two big-endian 64-bit halves: hi is bytes 0..7 (bit 0 of the spec is the
 * top bit of hi).
 */
#define GCM_BLOCK 16
/* SP 800-38D §5.2.1.1: len(P) <= 2^39 - 256 bits, len(A) <= 2^64 - 1 bits. */
#define GCM_TEXT_MAX ((UINT64_C(1) << 36) - 32)
#define GCM_AAD_MAX ((UINT64_C(1) << 61) - 1)

struct gcm {
        EVP_CIPHER_CTX *ecb; /* the block function E_K */
        uint64_t h[2];       /* H = E_K(0^128) */
        uint64_t y[2];       /* running GHASH value */
};

static uint64_t load64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = (v << 8) | p[i];
        return v;
}

static void store64(uint8_t *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--) {
                p[i] = (uint8_t)v;
                v >>= 8;
        }
}

/*
 * x = x * h in GF(2^128) with the GCM bit order (SP 800-38D §6.3,
 * Algorithm 1). Masks instead of branches, so that the time does not depend
 * on H or on the data.
 */
static void gf128_mul(uint64_t x[2], const uint64_t h[2])
{
        uint64_t zh = 0, zl = 0, vh = h[0], vl = h[1];

        for (int i = 0; i < 128; i++) {
                uint64_t xbit = i < 64 ? x[0] >> (63 - i) : x[1] >> (127 - i);
                uint64_t m = (uint64_t)0 - (xbit & 1);
                uint64_t lsb = (uint64_t)0 - (vl & 1);

                zh ^= vh & m;
                zl ^= vl & m;
                vl = (vl >> 1) | (vh << 63);
                vh = (vh >> 1) ^ (UINT64_C(0xE100000000000000) & lsb);
        }
        x[0] = zh;
        x[1] = zl;
}

/* GHASH over p, the last partial block padded with zeros (§6.4, §7.1 step 5). */
static void ghash(struct gcm *g, const uint8_t *p, size_t len)
{
        uint8_t last[GCM_BLOCK];

        for (; len >= GCM_BLOCK; p += GCM_BLOCK, len -= GCM_BLOCK) {
                g->y[0] ^= load64(p);
                g->y[1] ^= load64(p + 8);
                gf128_mul(g->y, g->h);
        }
        if (len > 0) {
                memset(last, 0, sizeof(last));
                memcpy(last, p, len);
                g->y[0] ^= load64(last);
                g->y[1] ^= load64(last + 8);
                gf128_mul(g->y, g->h);
                OPENSSL_cleanse(last, sizeof(last));
        }
}

static int gcm_block(struct gcm *g, const uint8_t in[GCM_BLOCK], uint8_t out[GCM_BLOCK])
{
        int n = 0;

        return EVP_EncryptUpdate(g->ecb, out, &n, in, GCM_BLOCK) == 1 && n == GCM_BLOCK ? 0 : -1;
}

/* inc32 (§6.2): only the low 32 bits of the counter block count, mod 2^32. */
static void inc32(uint8_t cb[GCM_BLOCK])
{
        for (int i = GCM_BLOCK - 1; i >= GCM_BLOCK - 4; i--)
                if (++cb[i] != 0)
                        break;
}

/* GCTR (§6.5) from counter block cb (advanced as it goes); in and out may be the same. */
static int gctr(struct gcm *g, uint8_t cb[GCM_BLOCK], const uint8_t *in, size_t len, uint8_t *out)
{
        uint8_t ks[GCM_BLOCK];
        int rc = 0;

        while (len > 0) {
                size_t n = len < GCM_BLOCK ? len : GCM_BLOCK;

                if (gcm_block(g, cb, ks) != 0) {
                        rc = -1;
                        break;
                }
                for (size_t i = 0; i < n; i++)
                        out[i] = in[i] ^ ks[i];
                inc32(cb);
                in += n;
                out += n;
                len -= n;
        }
        OPENSSL_cleanse(ks, sizeof(ks));
        return rc;
}

/*
 * The whole of GCM-AE (enc) or GCM-AD (!enc) with a 96-bit IV and a 128-bit
 * tag. Decryption checks the tag over the ciphertext before producing any
 * plaintext; on a mismatch out is zeroed.
 */
static int gcm_run(const char *ecb_name, int enc, const uint8_t *key, size_t keylen,
                   const uint8_t iv[GMCA_SM4_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[GMCA_SM4_GCM_TAG_LEN],
                   struct gmca_error *e)
{
        static const uint8_t zero[GCM_BLOCK];
        struct gcm g;
        EVP_CIPHER *cipher = NULL;
        uint8_t buf[GCM_BLOCK], j0[GCM_BLOCK], cb[GCM_BLOCK], t[GCM_BLOCK];
        int rc = GMCA_ERR_CRYPTO;

        memset(&g, 0, sizeof(g));
        if ((uint64_t)len > GCM_TEXT_MAX || (uint64_t)aadlen > GCM_AAD_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "GCM: SP 800-38D §5.2.1.1: text or AAD too long");
        if (key == NULL || iv == NULL || tag == NULL || (aad == NULL && aadlen != 0) ||
            ((in == NULL || out == NULL) && len != 0))
                return gmca_error_set(e, GMCA_ERR_INVALID, "GCM: missing input");
        if ((cipher = EVP_CIPHER_fetch(NULL, ecb_name, NULL)) == NULL ||
            EVP_CIPHER_get_block_size(cipher) != GCM_BLOCK ||
            EVP_CIPHER_get_mode(cipher) != EVP_CIPH_ECB_MODE ||
            (size_t)EVP_CIPHER_get_key_length(cipher) != keylen) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID,
                                     "GCM: %s is not a 128-bit block cipher in ECB mode with a "
                                     "%zu-byte key",
                                     ecb_name, keylen);
                goto out;
        }
        if ((g.ecb = EVP_CIPHER_CTX_new()) == NULL ||
            EVP_EncryptInit_ex2(g.ecb, cipher, key, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_set_padding(g.ecb, 0) != 1 || gcm_block(&g, zero, buf) != 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "GCM: %s failed", ecb_name);
                goto out;
        }
        g.h[0] = load64(buf);
        g.h[1] = load64(buf + 8);
        /* J0 = IV || 0^31 || 1 for a 96-bit IV (§7.1 step 2). */
        memcpy(j0, iv, GMCA_SM4_GCM_IV_LEN);
        memset(j0 + GMCA_SM4_GCM_IV_LEN, 0, 3);
        j0[GCM_BLOCK - 1] = 1;
        memcpy(cb, j0, sizeof(cb));
        inc32(cb);

        ghash(&g, aad, aadlen);
        if (enc) {
                if (gctr(&g, cb, in, len, out) != 0)
                        goto fail;
                ghash(&g, out, len);
        } else {
                ghash(&g, in, len);
        }
        store64(buf, (uint64_t)aadlen * 8);
        store64(buf + 8, (uint64_t)len * 8);
        ghash(&g, buf, sizeof(buf));
        /* T = MSB_128(GCTR(J0, S)) = E_K(J0) xor S. */
        if (gcm_block(&g, j0, t) != 0)
                goto fail;
        store64(buf, g.y[0]);
        store64(buf + 8, g.y[1]);
        for (int i = 0; i < GCM_BLOCK; i++)
                t[i] ^= buf[i];
        if (enc) {
                memcpy(tag, t, GCM_BLOCK);
        } else {
                if (CRYPTO_memcmp(t, tag, GCM_BLOCK) != 0) {
                        if (len > 0)
                                memset(out, 0, len);
                        rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                            "GCM: SP 800-38D: authentication tag does not match");
                        goto out;
                }
                if (gctr(&g, cb, in, len, out) != 0)
                        goto fail;
        }
        rc = 0;
        goto out;
fail:
        if (len > 0 && out != NULL)
                memset(out, 0, len);
        rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "GCM: %s failed", ecb_name);
out:
        EVP_CIPHER_CTX_free(g.ecb);
        EVP_CIPHER_free(cipher);
        OPENSSL_cleanse(&g, sizeof(g));
        OPENSSL_cleanse(buf, sizeof(buf));
        OPENSSL_cleanse(j0, sizeof(j0));
        OPENSSL_cleanse(cb, sizeof(cb));
        OPENSSL_cleanse(t, sizeof(t));
        return rc;
}

int gmca_gcm_encrypt(const char *ecb, const uint8_t *key, size_t keylen,
                     const uint8_t iv[GMCA_SM4_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                     const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[GMCA_SM4_GCM_TAG_LEN],
                     struct gmca_error *e)
{
        return gcm_run(ecb, 1, key, keylen, iv, aad, aadlen, in, len, out, tag, e);
}

int gmca_gcm_decrypt(const char *ecb, const uint8_t *key, size_t keylen,
                     const uint8_t iv[GMCA_SM4_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                     const uint8_t *in, size_t len, const uint8_t tag[GMCA_SM4_GCM_TAG_LEN],
                     uint8_t *out, struct gmca_error *e)
{
        uint8_t t[GMCA_SM4_GCM_TAG_LEN];
        int rc;

        if (tag == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "GCM: missing tag");
        memcpy(t, tag, sizeof(t));
        rc = gcm_run(ecb, 0, key, keylen, iv, aad, aadlen, in, len, out, t, e);
        OPENSSL_cleanse(t, sizeof(t));
        return rc;
}

/* OpenSSL's own SM4-GCM (3.2 and later), or NULL: 3.0 has none. */
static EVP_CIPHER *sm4_gcm_native(void)
{
        EVP_CIPHER *c;

        ERR_set_mark();
        c = EVP_CIPHER_fetch(NULL, "SM4-GCM", NULL);
        ERR_pop_to_mark();
        return c;
}

/* SM4-GCM through EVP; chunks keep each call within EVP's int lengths. */
static int sm4_gcm_evp(EVP_CIPHER *cipher, int enc, const uint8_t *key, const uint8_t *iv,
                       const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t len,
                       uint8_t *out, uint8_t *tag, struct gmca_error *e)
{
        EVP_CIPHER_CTX *ctx = NULL;
        uint8_t fin[GCM_BLOCK];
        int n = 0, rc = GMCA_ERR_CRYPTO;

        if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
            EVP_CipherInit_ex2(ctx, cipher, key, iv, enc, NULL) != 1)
                goto fail;
        for (size_t off = 0; off < aadlen; off += (size_t)n) {
                size_t c = aadlen - off < SM4_DATA_MAX ? aadlen - off : SM4_DATA_MAX;

                if (EVP_CipherUpdate(ctx, NULL, &n, aad + off, (int)c) != 1 || n <= 0)
                        goto fail;
        }
        for (size_t off = 0; off < len; off += (size_t)n) {
                size_t c = len - off < SM4_DATA_MAX ? len - off : SM4_DATA_MAX;

                if (EVP_CipherUpdate(ctx, out + off, &n, in + off, (int)c) != 1 || n != (int)c)
                        goto fail;
        }
        if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GMCA_SM4_GCM_TAG_LEN, tag) != 1)
                goto fail;
        if (EVP_CipherFinal_ex(ctx, fin, &n) != 1) {
                if (enc)
                        goto fail;
                if (len > 0)
                        memset(out, 0, len);
                rc = gmca_error_ossl(e, GMCA_ERR_VERIFY,
                                     "SM4-GCM: authentication tag does not match");
                goto out;
        }
        if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, GMCA_SM4_GCM_TAG_LEN, tag) != 1)
                goto fail;
        rc = 0;
        goto out;
fail:
        if (len > 0)
                memset(out, 0, len);
        rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM4-GCM failed");
out:
        EVP_CIPHER_CTX_free(ctx);
        return rc;
}

static int sm4_gcm(int enc, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
                   size_t aadlen, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag,
                   struct gmca_error *e)
{
        EVP_CIPHER *native;
        int rc;

        if ((uint64_t)len > GCM_TEXT_MAX || (uint64_t)aadlen > GCM_AAD_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "SM4-GCM: SP 800-38D §5.2.1.1: text or AAD too long");
        if (key == NULL || iv == NULL || tag == NULL || (aad == NULL && aadlen != 0) ||
            ((in == NULL || out == NULL) && len != 0))
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM4-GCM: missing input");
        if ((native = sm4_gcm_native()) == NULL)
                return gcm_run("SM4-ECB", enc, key, GMCA_SM4_KEY_LEN, iv, aad, aadlen, in, len, out,
                               tag, e);
        rc = sm4_gcm_evp(native, enc, key, iv, aad, aadlen, in, len, out, tag, e);
        EVP_CIPHER_free(native);
        return rc;
}

int gmca_sm4_gcm_encrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_GCM_IV_LEN],
                         const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t len,
                         uint8_t *out, uint8_t tag[GMCA_SM4_GCM_TAG_LEN], struct gmca_error *e)
{
        return sm4_gcm(1, key, iv, aad, aadlen, in, len, out, tag, e);
}

int gmca_sm4_gcm_decrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_GCM_IV_LEN],
                         const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t len,
                         const uint8_t tag[GMCA_SM4_GCM_TAG_LEN], uint8_t *out,
                         struct gmca_error *e)
{
        uint8_t t[GMCA_SM4_GCM_TAG_LEN];
        int rc;

        if (tag == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM4-GCM: missing tag");
        memcpy(t, tag, sizeof(t));
        rc = sm4_gcm(0, key, iv, aad, aadlen, in, len, out, t, e);
        OPENSSL_cleanse(t, sizeof(t));
        return rc;
}

/*
 * Keys at rest. The format is what `openssl pkcs8 -topk8 -v2 sm4-cbc
 * -v2prf hmacWithSHA256` writes: OpenSSL 3.0 knows no hmacWithSM3 OID for
 * PBES2 (GMT-REFERENCE.md §1.1). Reading accepts that format only, and caps
 * the iteration count a file may ask for.
 */
#define KEY_PEM_NAME "ENCRYPTED PRIVATE KEY"
#define KEY_PEM_MAX (64u * 1024u)
#define KEY_SALT_LEN 16
#define KEY_ITER_MAX 10000000

static int pass_check(const char *pass, size_t passlen, struct gmca_error *e)
{
        if (pass == NULL || passlen < GMCA_PASS_MIN || passlen > GMCA_PASS_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "key: passphrase must be %d..%d bytes",
                                      GMCA_PASS_MIN, GMCA_PASS_MAX);
        return 0;
}

static int has_private(const EVP_PKEY *key)
{
        BIGNUM *d = NULL;
        int ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1;

        BN_clear_free(d);
        gmca_ossl_clear();
        return ok;
}

int gmca_key_to_pem(EVP_PKEY *key, const char *pass, size_t passlen, char **pem, size_t *pemlen,
                    struct gmca_error *e)
{
        EVP_CIPHER *cipher = NULL;
        X509_ALGOR *pbe = NULL;
        PKCS8_PRIV_KEY_INFO *p8inf = NULL;
        X509_SIG *sig = NULL;
        BIO *bio = NULL;
        char *data = NULL, *buf = NULL;
        long n;
        int rc;

        if ((rc = pass_check(pass, passlen, e)) != 0 || (rc = gmca_sm2_is_sm2(key, e)) != 0)
                return rc;
        if (!has_private(key))
                return gmca_error_set(e, GMCA_ERR_INVALID, "key: no private key to write");
        rc = GMCA_ERR_CRYPTO;
        /* A NULL salt and IV make OpenSSL draw them from its CSPRNG. */
        if ((cipher = EVP_CIPHER_fetch(NULL, "SM4-CBC", NULL)) == NULL ||
            (pbe = PKCS5_pbe2_set_iv_ex(cipher, GMCA_KEY_PBKDF2_ITER, NULL, KEY_SALT_LEN, NULL,
                                        NID_hmacWithSHA256, NULL)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "key: cannot set up PBES2 SM4-CBC");
                goto out;
        }
        if ((p8inf = EVP_PKEY2PKCS8(key)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "key: cannot encode PKCS#8");
                goto out;
        }
        if ((sig = PKCS8_set0_pbe_ex(pass, (int)passlen, p8inf, pbe, NULL, NULL)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "key: PKCS#8 encryption failed");
                goto out;
        }
        pbe = NULL; /* now owned by sig */
        if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PKCS8(bio, sig) != 1 ||
            (n = BIO_get_mem_data(bio, &data)) <= 0 ||
            (buf = OPENSSL_malloc((size_t)n + 1)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "key: cannot write PEM");
                goto out;
        }
        memcpy(buf, data, (size_t)n);
        buf[n] = '\0';
        *pem = buf;
        *pemlen = (size_t)n;
        rc = 0;
out:
        BIO_free(bio);
        X509_SIG_free(sig);
        /* Clears the private key octets as it frees them. */
        PKCS8_PRIV_KEY_INFO_free(p8inf);
        X509_ALGOR_free(pbe);
        EVP_CIPHER_free(cipher);
        return rc;
}

/*
 * The encryption of a PKCS#8 key must be PBES2 (RFC 8018 §6.2) with PBKDF2,
 * PRF hmacWithSHA256, SM4-CBC, and at most KEY_ITER_MAX iterations, checked
 * before any key derivation so a file cannot make us spin. PBE2PARAM and
 * PBKDF2PARAM have no accessors in OpenSSL 3.0; their public fields are read.
 */
static int pbes2_check(const X509_SIG *sig, struct gmca_error *e)
{
        const X509_ALGOR *alg = NULL;
        const ASN1_OCTET_STRING *digest = NULL;
        const ASN1_OBJECT *obj = NULL;
        const void *pval = NULL;
        PBE2PARAM *pbe2 = NULL;
        PBKDF2PARAM *kdf = NULL;
        int64_t v = 0;
        int ptype = 0, rc = GMCA_ERR_INVALID;

        X509_SIG_get0(sig, &alg, &digest);
        X509_ALGOR_get0(&obj, &ptype, &pval, alg);
        if (OBJ_obj2nid(obj) != NID_pbes2 || ptype != V_ASN1_SEQUENCE ||
            (pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM))) == NULL) {
                gmca_error_ossl(e, rc, "key: PKCS#8 encryption is not PBES2 (RFC 8018 §6.2)");
                goto out;
        }
        X509_ALGOR_get0(&obj, &ptype, &pval, pbe2->keyfunc);
        if (OBJ_obj2nid(obj) != NID_id_pbkdf2 || ptype != V_ASN1_SEQUENCE ||
            (kdf = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBKDF2PARAM))) == NULL) {
                gmca_error_ossl(e, rc, "key: PBES2 key derivation is not PBKDF2 (RFC 8018 §5.2)");
                goto out;
        }
        X509_ALGOR_get0(&obj, NULL, NULL, pbe2->encryption);
        if (OBJ_obj2nid(obj) != NID_sm4_cbc) {
                gmca_error_set(e, rc, "key: PBES2 encryption scheme is not SM4-CBC");
                goto out;
        }
        if (kdf->prf == NULL) {
                gmca_error_set(e, rc,
                               "key: PBKDF2 PRF is the default hmacWithSHA1, not "
                               "hmacWithSHA256");
                goto out;
        }
        X509_ALGOR_get0(&obj, NULL, NULL, kdf->prf);
        if (OBJ_obj2nid(obj) != NID_hmacWithSHA256) {
                gmca_error_set(e, rc, "key: PBKDF2 PRF is not hmacWithSHA256");
                goto out;
        }
        if (kdf->keylength != NULL &&
            (ASN1_INTEGER_get_int64(&v, kdf->keylength) != 1 || v != GMCA_SM4_KEY_LEN)) {
                gmca_error_ossl(e, rc, "key: PBKDF2 keyLength is not %d", GMCA_SM4_KEY_LEN);
                goto out;
        }
        if (ASN1_INTEGER_get_int64(&v, kdf->iter) != 1 || v < 1) {
                gmca_error_ossl(e, rc, "key: PBKDF2 iterationCount is not a positive integer");
                goto out;
        }
        if (v > KEY_ITER_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                    "key: PBKDF2 iterationCount %lld is over the cap of %d",
                                    (long long)v, KEY_ITER_MAX);
                goto out;
        }
        rc = 0;
out:
        PBKDF2PARAM_free(kdf);
        PBE2PARAM_free(pbe2);
        return rc;
}

/* Only white space may follow the PEM block. */
static int only_space(const char *p, long n)
{
        for (long i = 0; i < n; i++)
                if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
                        return 0;
        return 1;
}

/*
 * Decode the PEM to an X509_SIG: one "ENCRYPTED PRIVATE KEY" block without
 * headers (so OpenSSL never goes looking for a legacy PEM passphrase on the
 * terminal), DER body with nothing after it.
 */
static int key_pem_decode(const char *pem, size_t pemlen, X509_SIG **out, struct gmca_error *e)
{
        BIO *bio = NULL;
        char *name = NULL, *header = NULL, *rest = NULL;
        unsigned char *der = NULL, *der2 = NULL;
        const unsigned char *p;
        long derlen = 0, restlen;
        X509_SIG *sig = NULL;
        int der2len, rc = GMCA_ERR_INVALID;

        if ((bio = BIO_new_mem_buf(pem, (int)pemlen)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "key: out of memory");
                goto out;
        }
        if (PEM_read_bio_ex(bio, &name, &header, &der, &derlen, PEM_FLAG_ONLY_B64) != 1) {
                gmca_error_ossl(e, rc, "key: not a PEM file");
                goto out;
        }
        if (strcmp(name, KEY_PEM_NAME) != 0) {
                gmca_error_set(e, rc, "key: PEM label is \"%.64s\", expected \"" KEY_PEM_NAME "\"",
                               name);
                goto out;
        }
        if (header[0] != '\0') {
                gmca_error_set(e, rc, "key: PEM headers are not allowed");
                goto out;
        }
        restlen = BIO_get_mem_data(bio, &rest);
        if (restlen < 0 || !only_space(rest, restlen)) {
                gmca_error_set(e, rc, "key: data after the PEM block");
                goto out;
        }
        p = der;
        if ((sig = d2i_X509_SIG(NULL, &p, derlen)) == NULL || p != der + derlen) {
                gmca_error_ossl(e, rc, "key: PKCS#8 EncryptedPrivateKeyInfo: bad DER");
                goto out;
        }
        der2len = i2d_X509_SIG(sig, &der2);
        if (der2len != derlen || memcmp(der, der2, (size_t)derlen) != 0) {
                gmca_error_ossl(e, rc, "key: PKCS#8 EncryptedPrivateKeyInfo: not DER");
                goto out;
        }
        *out = sig;
        sig = NULL;
        rc = 0;
out:
        X509_SIG_free(sig);
        OPENSSL_free(der2);
        OPENSSL_free(der);
        OPENSSL_free(header);
        OPENSSL_free(name);
        BIO_free(bio);
        return rc;
}

EVP_PKEY *gmca_key_from_pem(const char *pem, size_t pemlen, const char *pass, size_t passlen,
                            struct gmca_error *e)
{
        X509_SIG *sig = NULL;
        PKCS8_PRIV_KEY_INFO *p8inf = NULL;
        EVP_PKEY *key = NULL, *ret = NULL;

        if (pass_check(pass, passlen, e) != 0)
                return NULL;
        if (pem == NULL || pemlen == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "key: empty");
                return NULL;
        }
        if (pemlen > KEY_PEM_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "key: PEM over %u bytes", KEY_PEM_MAX);
                return NULL;
        }
        if (key_pem_decode(pem, pemlen, &sig, e) != 0 || pbes2_check(sig, e) != 0)
                goto out;
        /*
         * Without a MAC, a wrong passphrase and a corrupted ciphertext look
         * the same: bad padding or a plaintext that is not PKCS#8.
         */
        if ((p8inf = PKCS8_decrypt_ex(sig, pass, (int)passlen, NULL, NULL)) == NULL) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_AUTH,
                               "key: wrong passphrase (or corrupted key file): PKCS#8 "
                               "decryption failed");
                goto out;
        }
        if ((key = EVP_PKCS82PKEY_ex(p8inf, NULL, NULL)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "key: PKCS#8 PrivateKeyInfo is not a key");
                goto out;
        }
        if (gmca_sm2_is_sm2(key, e) != 0)
                goto out;
        if (!has_private(key)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "key: PKCS#8 holds no private key");
                goto out;
        }
        ret = key;
        key = NULL;
out:
        EVP_PKEY_free(key);
        PKCS8_PRIV_KEY_INFO_free(p8inf);
        X509_SIG_free(sig);
        return ret;
}

int gmca_key_write(const char *path, EVP_PKEY *key, const char *pass, size_t passlen,
                   struct gmca_error *e)
{
        char *pem = NULL;
        size_t len = 0;
        struct stat st;
        int rc;

        if (path == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "key: no path");
        /*
         * Fail early rather than after seconds of PBKDF2; the O_EXCL open
         * below is what actually guarantees no overwrite.
         */
        if (lstat(path, &st) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS, "%s: exists, refusing to overwrite",
                                      path);
        if ((rc = gmca_key_to_pem(key, pass, passlen, &pem, &len, e)) != 0)
                return rc;
        rc = gmca_write_file_excl(path, pem, len, 0600, e);
        OPENSSL_free(pem);
        return rc;
}

EVP_PKEY *gmca_key_read(const char *path, const char *pass, size_t passlen, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        EVP_PKEY *key;

        if (path == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "key: no path");
                return NULL;
        }
        if (pass_check(pass, passlen, e) != 0 ||
            gmca_read_file(path, KEY_PEM_MAX, &buf, &len, e) != 0)
                return NULL;
        key = gmca_key_from_pem((const char *)buf, len, pass, passlen, e);
        free(buf);
        return key;
}
