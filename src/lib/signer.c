/*
 * signer: putting a signature made elsewhere (a crypto device, the CA
 * engine) into a certificate or CRL. OpenSSL 3.0 signs X509 objects only
 * through an EVP_PKEY it can use itself, so the algorithm identifiers are
 * set here, the TBS is encoded, and the signature BIT STRING that the
 * object owns is filled in.
 */
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "signer.h"

static int pkey_sign(void *arg, const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX],
                     size_t *siglen, struct gmca_error *e)
{
        struct gmca_pkey_signer *s = arg;
        uint8_t *out = NULL;
        size_t outlen = 0;
        int rc;

        if ((rc = gmca_sm2_sign(s->key, s->id, tbs, len, &out, &outlen, e)) != 0)
                return rc;
        if (outlen > GMCA_SM2_SIG_MAX) {
                OPENSSL_free(out);
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "SM2: signature of %zu bytes", outlen);
        }
        memcpy(sig, out, outlen);
        *siglen = outlen;
        OPENSSL_free(out);
        return 0;
}

int gmca_pkey_signer_init(struct gmca_pkey_signer *s, EVP_PKEY *key, const char *id,
                          struct gmca_error *e)
{
        if (id == NULL)
                id = GMCA_SM2_DEFAULT_ID;
        if (strlen(id) >= sizeof(s->id))
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2 ID over %zu bytes",
                                      sizeof(s->id) - 1);
        if (gmca_sm2_is_sm2(key, e) != 0)
                return GMCA_ERR_INVALID;
        memset(s, 0, sizeof(*s));
        s->base.sign = pkey_sign;
        s->base.arg = s;
        s->key = key;
        memcpy(s->id, id, strlen(id) + 1);
        return 0;
}

/* SM2-with-SM3 with the parameters absent (GM/T 0015 §6.2). */
static int set_sm2_alg(X509_ALGOR *alg, struct gmca_error *e)
{
        ASN1_OBJECT *obj = OBJ_nid2obj(NID_SM2_with_SM3);

        if (alg == NULL || obj == NULL || X509_ALGOR_set0(alg, obj, V_ASN1_UNDEF, NULL) != 1)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "signature algorithm not set");
        return 0;
}

/* Fill the object's own signature BIT STRING (no unused bits). */
static int put_signature(const ASN1_BIT_STRING *cur, const uint8_t *sig, size_t siglen,
                         struct gmca_error *e)
{
        ASN1_BIT_STRING *bs = (ASN1_BIT_STRING *)cur;

        if (bs == NULL || ASN1_BIT_STRING_set(bs, (unsigned char *)sig, (int)siglen) != 1)
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "signature not stored");
        bs->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
        bs->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        return 0;
}

static int sign_tbs(const struct gmca_signer *s, const uint8_t *tbs, int tbslen,
                    uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, const char *what,
                    struct gmca_error *e)
{
        int rc;

        if (tbslen <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: TBS not encoded", what);
        if ((rc = s->sign(s->arg, tbs, (size_t)tbslen, sig, siglen, e)) != 0)
                return rc;
        if (*siglen == 0 || *siglen > GMCA_SM2_SIG_MAX)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "%s: signer returned %zu bytes", what,
                                      *siglen);
        return 0;
}

int gmca_x509_sign(X509 *x, const struct gmca_signer *s, struct gmca_error *e)
{
        const ASN1_BIT_STRING *bs = NULL;
        const X509_ALGOR *outer = NULL;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        unsigned char *tbs = NULL;
        int tbslen, rc;

        X509_get0_signature(&bs, &outer, x);
        if ((rc = set_sm2_alg((X509_ALGOR *)X509_get0_tbs_sigalg(x), e)) != 0 ||
            (rc = set_sm2_alg((X509_ALGOR *)outer, e)) != 0)
                return rc;
        tbslen = i2d_re_X509_tbs(x, &tbs);
        rc = sign_tbs(s, tbs, tbslen, sig, &siglen, "certificate", e);
        OPENSSL_free(tbs);
        if (rc == 0)
                rc = put_signature(bs, sig, siglen, e);
        return rc;
}

/*
 * X509_CRL has no accessor for the algorithm inside its TBS, so the
 * identifiers are set the one way OpenSSL offers: a signature with a
 * throwaway SM2 key, which the real signature then replaces. CRLs are few;
 * the extra key costs far less than the CRL.
 */
int gmca_x509_crl_sign(X509_CRL *crl, const struct gmca_signer *s, struct gmca_error *e)
{
        const ASN1_BIT_STRING *bs = NULL;
        const X509_ALGOR *outer = NULL;
        EVP_PKEY *tmp = NULL;
        EVP_MD_CTX *mctx = NULL;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        unsigned char *tbs = NULL;
        int tbslen, rc = GMCA_ERR_CRYPTO;

        if ((tmp = gmca_sm2_keygen(e)) == NULL || (mctx = gmca_sm2_sign_ctx(tmp, NULL, e)) == NULL)
                goto out;
        if (X509_CRL_sign_ctx(crl, mctx) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "crl: signature algorithm not set");
                goto out;
        }
        tbslen = i2d_re_X509_CRL_tbs(crl, &tbs);
        if ((rc = sign_tbs(s, tbs, tbslen, sig, &siglen, "crl", e)) != 0)
                goto out;
        X509_CRL_get0_signature(crl, &bs, &outer);
        rc = put_signature(bs, sig, siglen, e);
out:
        OPENSSL_free(tbs);
        EVP_MD_CTX_free(mctx);
        EVP_PKEY_free(tmp);
        return rc;
}
