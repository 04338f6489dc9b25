/*
 * envelope: SM2EnvelopedKey (GM/T 0009 §7.4) and the SKF ENVELOPEDKEYBLOB
 * (GM/T 0016), the two wrappings in which the KM's encryption key pair
 * reaches the subscriber's token (envelope.h). The DER form is read and
 * written with libcrypto ASN.1 templates and decoded strictly (exact
 * length, re-encoding equal to the input); the blob is a fixed layout of
 * little-endian ULONGs and right-aligned 64-byte coordinates. SM2 and SM4
 * are crypto.h's; only the layouts and the checks a token makes are here.
 * Every buffer that held the SM4 key or d is wiped before it is freed.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "cms_asn1.h"
#include "crypto.h"
#include "envelope.h"
#include "gmt0010.h"

#define OID_SM4_ECB "1.2.156.10197.1.104.1"
#define D_LEN 32 /* bytes of an SM2 private key */
#define D_PADDED (D_LEN + GMCA_SM4_BLOCK)
#define POINT_LEN 65  /* 04 || X || Y */
#define BLOB_COORD 64 /* SKF coordinates: 64 bytes, value right-aligned */
#define BLOB_HDR 12   /* Version, ulSymmAlgID, ulBits */
#define BLOB_PRIV 64  /* cbEncryptedPriKey */
#define BLOB_PUB (4 + 2 * BLOB_COORD)
#define BLOB_CIPHER (2 * BLOB_COORD + GMCA_SM3_LEN + 4 + GMCA_SM4_KEY_LEN)
/* The SM2 curve order n minus 1: GM/T 0003.1 §6.1 wants d in [1, n-2], i.e. d <
 * n-1. */
static const uint8_t sm2_n_minus_1[D_LEN] = {
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x72, 0x03, 0xDF, 0x6B, 0x21, 0xC6, 0x05, 0x2B, 0x53, 0xBB, 0xF4, 0x09, 0x39, 0xD5, 0x41, 0x22,
};

/* GM/T 0009 §7.2 SM2Cipher, C1C3C2 order (as OpenSSL's SM2 encryption writes
 * it). */
typedef struct {
        ASN1_INTEGER *x;
        ASN1_INTEGER *y;
        ASN1_OCTET_STRING *hash;
        ASN1_OCTET_STRING *ct;
} ENV_SM2CIPHER;

ASN1_SEQUENCE(ENV_SM2CIPHER) =
    {
        ASN1_SIMPLE(ENV_SM2CIPHER, x, ASN1_INTEGER),
        ASN1_SIMPLE(ENV_SM2CIPHER, y, ASN1_INTEGER),
        ASN1_SIMPLE(ENV_SM2CIPHER, hash, ASN1_OCTET_STRING),
        ASN1_SIMPLE(ENV_SM2CIPHER, ct, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(ENV_SM2CIPHER)

    /* GM/T 0009 §7.4 SM2EnvelopedKey. */
    typedef struct {
        X509_ALGOR *sym;
        ENV_SM2CIPHER *key;
        ASN1_BIT_STRING *pub;
        ASN1_BIT_STRING *priv;
} ENV_KEY;

ASN1_SEQUENCE(ENV_KEY) =
    {
        ASN1_SIMPLE(ENV_KEY, sym, X509_ALGOR),
        ASN1_SIMPLE(ENV_KEY, key, ENV_SM2CIPHER),
        ASN1_SIMPLE(ENV_KEY, pub, ASN1_BIT_STRING),
        ASN1_SIMPLE(ENV_KEY, priv, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(ENV_KEY)

#define ENV_KEY_free(v) ASN1_item_free((ASN1_VALUE *)(v), ASN1_ITEM_rptr(ENV_KEY))

        static void put_le32(uint8_t * p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int all_zero(const uint8_t *p, size_t len)
{
        uint8_t acc = 0;

        for (size_t i = 0; i < len; i++)
                acc |= p[i];
        return acc == 0;
}

/*
 * A BIT STRING of exactly these bytes, no unused bits. OpenSSL drops
 * trailing zero octets of a BIT STRING unless told the unused-bit count is
 * set; 3.0 has no accessor for that flag, so it is set here as signer.c does.
 */
static ASN1_BIT_STRING *bits_new(const uint8_t *p, size_t len)
{
        ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();

        if (bs == NULL || ASN1_BIT_STRING_set(bs, (unsigned char *)p, (int)len) != 1) {
                ASN1_BIT_STRING_free(bs);
                return NULL;
        }
        bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
        bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        return bs;
}

/* 0 if bs holds whole octets (no unused bits) and is one of two lengths. */
static int bits_check(const ASN1_BIT_STRING *bs, size_t len1, size_t len2, const char *field,
                      struct gmca_error *e)
{
        size_t n = (size_t)ASN1_STRING_length(bs);

        if ((bs->flags & 0x07) != 0 || (n != len1 && n != len2))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SM2EnvelopedKey: GM/T 0009 §7.4: %s is %zu bytes (with "
                                      "unused bits %ld), not %zu",
                                      field, n, bs->flags & 0x07, len1);
        return 0;
}

/* An SM2 public key from 04||X||Y, checked to be on the curve. */
static EVP_PKEY *pub_from_point(const uint8_t pt[POINT_LEN], const char *what, struct gmca_error *e)
{
        OSSL_PARAM params[3];
        EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
        EVP_PKEY *key = NULL;

        if (pt[0] != 0x04) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: public key is not an uncompressed point",
                               what);
                return NULL;
        }
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0);
        params[1] =
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, POINT_LEN);
        params[2] = OSSL_PARAM_construct_end();
        if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL)) == NULL ||
            EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
            (chk = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
            EVP_PKEY_public_check(chk) != 1) {
                gmca_error_ossl(e, GMCA_ERR_INVALID,
                                "%s: public key is not a point of the SM2 curve", what);
                EVP_PKEY_free(key);
                key = NULL;
        }
        EVP_PKEY_CTX_free(chk);
        EVP_PKEY_CTX_free(ctx);
        return key;
}

/*
 * The key pair (d, pt): d must be in [1, n-2] and d·G must be pt, else
 * GMCA_ERR_VERIFY (a tampered or foreign private key).
 */
static EVP_PKEY *pair_from(const uint8_t d[D_LEN], const uint8_t pt[POINT_LEN], const char *what,
                           struct gmca_error *e)
{
        OSSL_PARAM_BLD *b = NULL;
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
        EVP_PKEY *key = NULL;
        BIGNUM *bn = NULL;

        if (all_zero(d, D_LEN) || memcmp(d, sm2_n_minus_1, D_LEN) >= 0) {
                gmca_error_set(e, GMCA_ERR_VERIFY,
                               "%s: GM/T 0003.1 §6.1: private key out of [1, n-2] (tampered, or "
                               "not for this recipient)",
                               what);
                return NULL;
        }
        /* A secure BIGNUM makes OSSL_PARAM_BLD keep the scalar on the secure heap. */
        if ((b = OSSL_PARAM_BLD_new()) == NULL || (bn = BN_secure_new()) == NULL ||
            BN_bin2bn(d, D_LEN, bn) == NULL ||
            OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, POINT_LEN) != 1 ||
            OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn) != 1 ||
            (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
            (ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL)) == NULL ||
            EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "%s: cannot make the SM2 key pair", what);
                goto out;
        }
        if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
            EVP_PKEY_pairwise_check(chk) != 1) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_VERIFY,
                               "%s: the private key is not the public key's (tampered, or not for "
                               "this recipient)",
                               what);
                EVP_PKEY_free(key);
                key = NULL;
        }
out:
        EVP_PKEY_CTX_free(chk);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params); /* the scalar in it is on the secure heap, cleared on free */
        OSSL_PARAM_BLD_free(b);
        BN_clear_free(bn);
        return key;
}

/* d (32 bytes big-endian) and 04||X||Y of an SM2 key pair. */
static int pair_export(EVP_PKEY *pair, uint8_t d[D_LEN], uint8_t pt[POINT_LEN],
                       struct gmca_error *e)
{
        BIGNUM *bn = NULL;
        int rc;

        if ((rc = gmca_sm2_is_sm2(pair, e)) != 0)
                return rc;
        if (EVP_PKEY_get_bn_param(pair, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
            BN_bn2binpad(bn, d, D_LEN) != D_LEN) {
                BN_clear_free(bn);
                OPENSSL_cleanse(d, D_LEN);
                return gmca_error_ossl(e, GMCA_ERR_INVALID,
                                       "envelope: the key to seal is not an "
                                       "SM2 private key");
        }
        BN_clear_free(bn);
        pt[0] = 0x04;
        if ((rc = gmca_sm2_pub_xy(pair, pt + 1, e)) != 0)
                OPENSSL_cleanse(d, D_LEN);
        return rc;
}

/* The DER SM2EnvelopedKey from its parts; *der as for gmca_envelope_seal. */
static int build_der(const uint8_t *cipher, size_t cipherlen, const uint8_t pt[POINT_LEN],
                     const uint8_t encd[D_LEN], uint8_t **der, size_t *der_len,
                     struct gmca_error *e)
{
        ENV_KEY *k = (ENV_KEY *)ASN1_item_new(ASN1_ITEM_rptr(ENV_KEY));
        ASN1_OBJECT *oid = OBJ_txt2obj(OID_SM4_ECB, 1);
        const uint8_t *p = cipher;
        uint8_t *out = NULL;
        int n, rc = GMCA_ERR_NOMEM;

        if (k == NULL || oid == NULL || X509_ALGOR_set0(k->sym, oid, V_ASN1_UNDEF, NULL) != 1)
                goto out;
        oid = NULL;
        ASN1_item_free((ASN1_VALUE *)k->key, ASN1_ITEM_rptr(ENV_SM2CIPHER));
        k->key = (ENV_SM2CIPHER *)ASN1_item_d2i(NULL, &p, (long)cipherlen,
                                                ASN1_ITEM_rptr(ENV_SM2CIPHER));
        ASN1_BIT_STRING_free(k->pub);
        ASN1_BIT_STRING_free(k->priv);
        k->pub = bits_new(pt, POINT_LEN);
        k->priv = bits_new(encd, D_LEN);
        if (k->key == NULL || p != cipher + cipherlen || k->pub == NULL || k->priv == NULL ||
            (n = ASN1_item_i2d((ASN1_VALUE *)k, &out, ASN1_ITEM_rptr(ENV_KEY))) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "SM2EnvelopedKey: cannot encode");
                goto out;
        }
        *der = out;
        *der_len = (size_t)n;
        rc = 0;
out:
        if (rc == GMCA_ERR_NOMEM)
                gmca_error_set(e, rc, "out of memory");
        ASN1_OBJECT_free(oid);
        ENV_KEY_free(k);
        return rc;
}

/* The ENVELOPEDKEYBLOB from its parts: raw is the SM2 ciphertext as
 * 04||x||y||C3||C2. */
static int build_blob(const uint8_t *raw, size_t rawlen, const uint8_t pt[POINT_LEN],
                      const uint8_t encd64[BLOB_PRIV], uint8_t **blob, size_t *blob_len,
                      struct gmca_error *e)
{
        uint8_t *b, *q;

        if (rawlen != 1 + 64 + GMCA_SM3_LEN + GMCA_SM4_KEY_LEN)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "ENVELOPEDKEYBLOB: odd ciphertext");
        if ((b = OPENSSL_zalloc(GMCA_ENVELOPE_BLOB_LEN)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        put_le32(b, 1);
        put_le32(b + 4, GMCA_SGD_SM4_ECB);
        put_le32(b + 8, 256);
        memcpy(b + BLOB_HDR, encd64, BLOB_PRIV);
        q = b + BLOB_HDR + BLOB_PRIV;
        put_le32(q, 256);
        memcpy(q + 4 + 32, pt + 1, 32);
        memcpy(q + 4 + BLOB_COORD + 32, pt + 33, 32);
        q += BLOB_PUB;
        memcpy(q + 32, raw + 1, 32);
        memcpy(q + BLOB_COORD + 32, raw + 33, 32);
        memcpy(q + 2 * BLOB_COORD, raw + 65, GMCA_SM3_LEN);
        put_le32(q + 2 * BLOB_COORD + GMCA_SM3_LEN, GMCA_SM4_KEY_LEN);
        memcpy(q + 2 * BLOB_COORD + GMCA_SM3_LEN + 4, raw + 65 + GMCA_SM3_LEN, GMCA_SM4_KEY_LEN);
        *blob = b;
        *blob_len = GMCA_ENVELOPE_BLOB_LEN;
        return 0;
}

int gmca_envelope_seal(EVP_PKEY *pair, EVP_PKEY *recipient, uint8_t **der, size_t *der_len,
                       uint8_t **blob, size_t *blob_len, struct gmca_error *e)
{
        uint8_t d[BLOB_PRIV], encd[BLOB_PRIV], sym[GMCA_SM4_KEY_LEN], pt[POINT_LEN];
        uint8_t *cipher = NULL, *raw = NULL, *outder = NULL;
        size_t cipherlen = 0, rawlen = 0, outlen = 0;
        int rc;

        if (pair == NULL || recipient == NULL || der == NULL || der_len == NULL ||
            (blob != NULL && blob_len == NULL))
                return gmca_error_set(e, GMCA_ERR_INVALID, "envelope: missing argument");
        /* d right-aligned in 64 bytes: the blob encrypts all 64, the DER form the
         * last 32. */
        memset(d, 0, sizeof(d));
        if ((rc = gmca_sm2_is_sm2(recipient, e)) != 0 ||
            (rc = pair_export(pair, d + D_LEN, pt, e)) != 0)
                goto out;
        if ((rc = gmca_rand_bytes(sym, sizeof(sym), e)) != 0 ||
            (rc = gmca_sm4_ecb(1, sym, d, sizeof(d), encd, e)) != 0 ||
            (rc = gmca_sm2_encrypt(recipient, sym, sizeof(sym), &cipher, &cipherlen, e)) != 0 ||
            (rc = build_der(cipher, cipherlen, pt, encd + D_LEN, &outder, &outlen, e)) != 0)
                goto out;
        if (blob != NULL &&
            ((rc = gmca_sm2cipher_to_c1c3c2(cipher, cipherlen, &raw, &rawlen, e)) != 0 ||
             (rc = build_blob(raw, rawlen, pt, encd, blob, blob_len, e)) != 0))
                goto out;
        *der = outder;
        *der_len = outlen;
        outder = NULL;
out:
        OPENSSL_cleanse(d, sizeof(d));
        OPENSSL_cleanse(sym, sizeof(sym));
        OPENSSL_free(outder);
        OPENSSL_free(cipher);
        OPENSSL_free(raw);
        return rc;
}

/* The SM2EnvelopedKey in der, checked but for its secrets, and the public key it carries. */
static ENV_KEY *decode(const uint8_t *der, size_t len, EVP_PKEY **pub, struct gmca_error *e)
{
        ENV_KEY *k;
        const ASN1_OBJECT *oid = NULL;
        int ptype = 0;

        if (der == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "SM2EnvelopedKey: no input");
                return NULL;
        }
        if (len > GMCA_ENVELOPE_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "SM2EnvelopedKey: over %d bytes",
                               GMCA_ENVELOPE_MAX);
                return NULL;
        }
        if ((k = (ENV_KEY *)gmca_der_decode(ASN1_ITEM_rptr(ENV_KEY), der, len, "SM2EnvelopedKey",
                                            e)) == NULL)
                return NULL;
        X509_ALGOR_get0(&oid, &ptype, NULL, k->sym);
        if (!gmca_oid_is(oid, OID_SM4_ECB) || (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "SM2EnvelopedKey: GM/T 0009 §7.4: symAlgID is not sm4-ecb (%s) "
                               "with absent or NULL parameters",
                               OID_SM4_ECB);
                goto fail;
        }
        if (bits_check(k->pub, POINT_LEN, POINT_LEN, "sm2PublicKey", e) != 0 ||
            bits_check(k->priv, D_LEN, D_PADDED, "sm2EncryptedPrivateKey", e) != 0 ||
            (*pub = pub_from_point(ASN1_STRING_get0_data(k->pub), "SM2EnvelopedKey", e)) == NULL)
                goto fail;
        return k;
fail:
        ENV_KEY_free(k);
        return NULL;
}

/* The SM4 key: SM2-decrypt cipher (DER SM2Cipher) with the recipient's key. */
static int open_sym(const uint8_t *cipher, size_t cipherlen, EVP_PKEY *recipient,
                    uint8_t sym[GMCA_SM4_KEY_LEN], const char *what, struct gmca_error *e)
{
        uint8_t *plain = NULL;
        size_t plainlen = 0;
        int rc;

        if (recipient == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no recipient key", what);
        /* A wrong recipient or a tampered C1/C3/C2 fails C3's check: GMCA_ERR_VERIFY. */
        if ((rc = gmca_sm2_decrypt(recipient, cipher, cipherlen, &plain, &plainlen, e)) != 0)
                return rc;
        if (plainlen != GMCA_SM4_KEY_LEN)
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "%s: symmetric key is %zu bytes, not %d",
                                    what, plainlen, GMCA_SM4_KEY_LEN);
        else
                memcpy(sym, plain, GMCA_SM4_KEY_LEN);
        gmca_secret_free(plain, plainlen);
        return rc;
}

/*
 * d from the encrypted private key: 32 bytes, or 48 with a full block of
 * PKCS#7 padding; with lead zero bytes (the blob's 64-byte field) first.
 */
static int open_d(const uint8_t sym[GMCA_SM4_KEY_LEN], const uint8_t *enc, size_t len, size_t lead,
                  uint8_t d[D_LEN], const char *what, struct gmca_error *e)
{
        static const uint8_t pad[GMCA_SM4_BLOCK] = {16, 16, 16, 16, 16, 16, 16, 16,
                                                    16, 16, 16, 16, 16, 16, 16, 16};
        uint8_t plain[BLOB_PRIV];
        int rc, bad;

        if ((rc = gmca_sm4_ecb(0, sym, enc, len, plain, e)) != 0)
                goto out;
        bad = !all_zero(plain, lead);
        if (len == lead + D_PADDED)
                bad |= CRYPTO_memcmp(plain + lead + D_LEN, pad, GMCA_SM4_BLOCK) != 0;
        if (bad) {
                rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                    "%s: the private key does not decrypt to a 256-bit SM2 key "
                                    "(tampered)",
                                    what);
                goto out;
        }
        memcpy(d, plain + lead, D_LEN);
out:
        OPENSSL_cleanse(plain, sizeof(plain));
        return rc;
}

EVP_PKEY *gmca_envelope_open(const uint8_t *der, size_t len, EVP_PKEY *recipient,
                             struct gmca_error *e)
{
        static const char what[] = "SM2EnvelopedKey";
        EVP_PKEY *pair = NULL, *pub = NULL;
        ENV_KEY *k = decode(der, len, &pub, e);
        uint8_t sym[GMCA_SM4_KEY_LEN], d[D_LEN];
        uint8_t *cipher = NULL;
        int n;

        if (k == NULL)
                return NULL;
        if ((n = ASN1_item_i2d((ASN1_VALUE *)k->key, &cipher, ASN1_ITEM_rptr(ENV_SM2CIPHER))) <=
            0) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: cannot encode symEncryptedKey", what);
                goto out;
        }
        if (open_sym(cipher, (size_t)n, recipient, sym, what, e) != 0)
                goto out;
        if (open_d(sym, ASN1_STRING_get0_data(k->priv), (size_t)ASN1_STRING_length(k->priv), 0, d,
                   what, e) == 0)
                pair = pair_from(d, ASN1_STRING_get0_data(k->pub), what, e);
out:
        OPENSSL_cleanse(sym, sizeof(sym));
        OPENSSL_cleanse(d, sizeof(d));
        OPENSSL_free(cipher);
        EVP_PKEY_free(pub);
        ENV_KEY_free(k);
        return pair;
}

EVP_PKEY *gmca_envelope_pubkey(const uint8_t *der, size_t len, struct gmca_error *e)
{
        EVP_PKEY *pub = NULL;
        ENV_KEY *k = decode(der, len, &pub, e);

        ENV_KEY_free(k);
        return pub;
}

/* The blob's fixed fields and right alignment; 0 or GMCA_ERR_INVALID. */
static int blob_check(const uint8_t *b, size_t len, struct gmca_error *e)
{
        const uint8_t *pub = b + BLOB_HDR + BLOB_PRIV, *c = pub + BLOB_PUB;
        const char *bad = NULL;

        if (b == NULL || len != GMCA_ENVELOPE_BLOB_LEN)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "ENVELOPEDKEYBLOB: %zu bytes, not %d (GM/T 0016 with a "
                                      "16-byte SM4 key)",
                                      b == NULL ? 0 : len, GMCA_ENVELOPE_BLOB_LEN);
        if (get_le32(b) != 1)
                bad = "Version is not 1";
        else if (get_le32(b + 4) != GMCA_SGD_SM4_ECB)
                bad = "ulSymmAlgID is not SGD_SM4_ECB";
        else if (get_le32(b + 8) != 256 || get_le32(pub) != 256)
                bad = "key length is not 256 bits";
        else if (!all_zero(pub + 4, 32) || !all_zero(pub + 4 + BLOB_COORD, 32) ||
                 !all_zero(c, 32) || !all_zero(c + BLOB_COORD, 32))
                bad = "a coordinate is over 256 bits";
        else if (get_le32(c + 2 * BLOB_COORD + GMCA_SM3_LEN) != GMCA_SM4_KEY_LEN)
                bad = "ECCCIPHERBLOB CipherLen is not 16";
        if (bad != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "ENVELOPEDKEYBLOB: GM/T 0016: %s", bad);
        return 0;
}

EVP_PKEY *gmca_envelope_blob_open(const uint8_t *blob, size_t len, EVP_PKEY *recipient,
                                  struct gmca_error *e)
{
        static const char what[] = "ENVELOPEDKEYBLOB";
        uint8_t raw[1 + 64 + GMCA_SM3_LEN + GMCA_SM4_KEY_LEN], pt[POINT_LEN];
        uint8_t sym[GMCA_SM4_KEY_LEN], d[D_LEN];
        const uint8_t *pub, *c;
        uint8_t *cipher = NULL;
        size_t cipherlen = 0;
        EVP_PKEY *pair = NULL, *pubkey = NULL;

        if (blob_check(blob, len, e) != 0)
                return NULL;
        pub = blob + BLOB_HDR + BLOB_PRIV;
        c = pub + BLOB_PUB;
        pt[0] = 0x04;
        memcpy(pt + 1, pub + 4 + 32, 32);
        memcpy(pt + 33, pub + 4 + BLOB_COORD + 32, 32);
        raw[0] = 0x04;
        memcpy(raw + 1, c + 32, 32);
        memcpy(raw + 33, c + BLOB_COORD + 32, 32);
        memcpy(raw + 65, c + 2 * BLOB_COORD, GMCA_SM3_LEN);
        memcpy(raw + 65 + GMCA_SM3_LEN, c + 2 * BLOB_COORD + GMCA_SM3_LEN + 4, GMCA_SM4_KEY_LEN);
        if ((pubkey = pub_from_point(pt, what, e)) == NULL ||
            gmca_sm2cipher_from_c1c3c2(raw, sizeof(raw), &cipher, &cipherlen, e) != 0 ||
            open_sym(cipher, cipherlen, recipient, sym, what, e) != 0)
                goto out;
        if (open_d(sym, blob + BLOB_HDR, BLOB_PRIV, BLOB_PRIV - D_LEN, d, what, e) == 0)
                pair = pair_from(d, pt, what, e);
out:
        OPENSSL_cleanse(sym, sizeof(sym));
        OPENSSL_cleanse(d, sizeof(d));
        OPENSSL_free(cipher);
        EVP_PKEY_free(pubkey);
        return pair;
}
