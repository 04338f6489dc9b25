/*
 * SM2, SM3, SM4 and randomness over OpenSSL 3 EVP. Every SM2 context made
 * here carries an explicit distinguishing ID, because OpenSSL 3.0 defaults
 * to an empty one (GMT-REFERENCE.md §3.3).
 */
#include "crypto.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int gmca_rand_bytes(uint8_t *buf, size_t len, struct gmca_error *e)
{
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

static EVP_MD_CTX *sm2_md_ctx(EVP_PKEY *key, const char *id, int sign, struct gmca_error *e)
{
        EVP_MD_CTX *mctx = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        size_t idlen;
        int ok;

        id = id_or_default(id);
        idlen = strlen(id);
        if (idlen == 0 || idlen > GMCA_SM2_ID_MAX) {
                gmca_error_set(e, GMCA_ERR_INVALID, "SM2: ID must be 1..%d bytes", GMCA_SM2_ID_MAX);
                return NULL;
        }
        if (gmca_sm2_is_sm2(key, e) != 0)
                return NULL;
        /*
         * OpenSSL 3.0 accepts the ID only after the digest-sign init (the
         * provider refuses it before it knows Z is to be computed), and
         * before any data: set it on the context the init returns, which
         * mctx owns.
         */
        if ((mctx = EVP_MD_CTX_new()) == NULL)
                goto fail;
        if (sign)
                ok = EVP_DigestSignInit_ex(mctx, &pctx, "SM3", NULL, NULL, key, NULL);
        else
                ok = EVP_DigestVerifyInit_ex(mctx, &pctx, "SM3", NULL, NULL, key, NULL);
        if (ok != 1 || pctx == NULL || EVP_PKEY_CTX_set1_id(pctx, id, idlen) != 1)
                goto fail;
        return mctx;
fail:
        gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SM2: cannot set up %s context",
                        sign ? "signing" : "verifying");
        EVP_MD_CTX_free(mctx);
        return NULL;
}

EVP_MD_CTX *gmca_sm2_sign_ctx(EVP_PKEY *key, const char *id, struct gmca_error *e)
{
        return sm2_md_ctx(key, id, 1, e);
}

EVP_MD_CTX *gmca_sm2_verify_ctx(EVP_PKEY *key, const char *id, struct gmca_error *e)
{
        return sm2_md_ctx(key, id, 0, e);
}

int gmca_sm2_sign(EVP_PKEY *key, const char *id, const uint8_t *msg, size_t len, uint8_t **sig,
                  size_t *siglen, struct gmca_error *e)
{
        EVP_MD_CTX *mctx;
        uint8_t *s = NULL;
        size_t slen = 0;
        int rc = GMCA_ERR_CRYPTO;

        if ((mctx = gmca_sm2_sign_ctx(key, id, e)) == NULL)
                return GMCA_ERR_CRYPTO;
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
        EVP_MD_CTX *mctx;
        int r;

        if ((mctx = gmca_sm2_verify_ctx(key, id, e)) == NULL)
                return GMCA_ERR_CRYPTO;
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
