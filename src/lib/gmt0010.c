/*
 * GM/T 0010 SignedData, EnvelopedData and SignedAndEnvelopedData, and the
 * GM/T 0009 SM2Cipher in its C1C3C2 octet form. The structures are PKCS#7 v1.5
 * (RFC 2315) under the GM/T content-type OIDs, declared below as libcrypto
 * ASN.1 templates. Parsing is strict: the exact buffer, no trailing bytes,
 * and a re-encoding that must equal the input (so BER, unsorted SETs and
 * long-form lengths are refused), with caps on every count. OIDs OpenSSL
 * does not know are made with OBJ_txt2obj and compared as dotted text, so
 * nothing is registered in OpenSSL's global table.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cms_asn1.h"
#include "crypto.h"
#include "gmt0010.h"
#include "util.h"
#include "x509.h"

#define OID_SM2_WITH_SM3 "1.2.156.10197.1.501"
#define OID_SM2_2 "1.2.156.10197.1.301.2" /* GmSSL 3's "sm2encrypt" */
#define OID_SM3 "1.2.156.10197.1.401"
#define OID_SM4 "1.2.156.10197.1.104" /* bare SM4, CFCA's SM4-CBC */
#define OID_SM4_CBC "1.2.156.10197.1.104.2"
#define OID_TEXT_MAX 80

/* ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY OPTIONAL } */
typedef struct {
        ASN1_OBJECT *type;
        ASN1_TYPE *content;
} GMCA_CI;

ASN1_SEQUENCE(GMCA_CI) =
    {
        ASN1_SIMPLE(GMCA_CI, type, ASN1_OBJECT),
        ASN1_EXP_OPT(GMCA_CI, content, ASN1_ANY, 0),
} static_ASN1_SEQUENCE_END(GMCA_CI)

    /* SignedData (GM/T 0010 §7.1) */
    typedef struct {
        ASN1_INTEGER *version;
        STACK_OF(X509_ALGOR) * digest_algs;
        GMCA_CI *content;
        STACK_OF(X509) * certs;
        STACK_OF(X509_CRL) * crls;
        STACK_OF(GMCA_SIGNER) * signers;
} GMCA_SD;

ASN1_SEQUENCE(GMCA_SD) =
    {
        ASN1_SIMPLE(GMCA_SD, version, ASN1_INTEGER),
        ASN1_SET_OF(GMCA_SD, digest_algs, X509_ALGOR),
        ASN1_SIMPLE(GMCA_SD, content, GMCA_CI),
        ASN1_IMP_SET_OF_OPT(GMCA_SD, certs, X509, 0),
        ASN1_IMP_SET_OF_OPT(GMCA_SD, crls, X509_CRL, 1),
        ASN1_SET_OF(GMCA_SD, signers, GMCA_SIGNER),
} static_ASN1_SEQUENCE_END(GMCA_SD)

    /* RecipientInfo (GM/T 0010 §8.2) */
    typedef struct {
        ASN1_INTEGER *version;
        GMCA_IAS *ias;
        X509_ALGOR *key_alg;
        ASN1_OCTET_STRING *key;
} GMCA_RECIP;

ASN1_SEQUENCE(GMCA_RECIP) =
    {
        ASN1_SIMPLE(GMCA_RECIP, version, ASN1_INTEGER),
        ASN1_SIMPLE(GMCA_RECIP, ias, GMCA_IAS),
        ASN1_SIMPLE(GMCA_RECIP, key_alg, X509_ALGOR),
        ASN1_SIMPLE(GMCA_RECIP, key, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(GMCA_RECIP)

        DEFINE_STACK_OF(GMCA_RECIP)

    /* EncryptedContentInfo, with GM/T 0010's sharedInfo1/2 (read, never written) */
    typedef struct {
        ASN1_OBJECT *type;
        X509_ALGOR *alg;
        ASN1_OCTET_STRING *data;
        ASN1_OCTET_STRING *shared1;
        ASN1_OCTET_STRING *shared2;
} GMCA_ECI;

ASN1_SEQUENCE(GMCA_ECI) =
    {
        ASN1_SIMPLE(GMCA_ECI, type, ASN1_OBJECT),
        ASN1_SIMPLE(GMCA_ECI, alg, X509_ALGOR),
        ASN1_IMP_OPT(GMCA_ECI, data, ASN1_OCTET_STRING, 0),
        ASN1_IMP_OPT(GMCA_ECI, shared1, ASN1_OCTET_STRING, 1),
        ASN1_IMP_OPT(GMCA_ECI, shared2, ASN1_OCTET_STRING, 2),
} static_ASN1_SEQUENCE_END(GMCA_ECI)

    /* EnvelopedData (GM/T 0010 §8.1) */
    typedef struct {
        ASN1_INTEGER *version;
        STACK_OF(GMCA_RECIP) * recips;
        GMCA_ECI *enc;
} GMCA_ED;

ASN1_SEQUENCE(GMCA_ED) =
    {
        ASN1_SIMPLE(GMCA_ED, version, ASN1_INTEGER),
        ASN1_SET_OF(GMCA_ED, recips, GMCA_RECIP),
        ASN1_SIMPLE(GMCA_ED, enc, GMCA_ECI),
} static_ASN1_SEQUENCE_END(GMCA_ED)

    /* SignedAndEnvelopedData (GM/T 0010 §9, RFC 2315 §11) */
    typedef struct {
        ASN1_INTEGER *version;
        STACK_OF(GMCA_RECIP) * recips;
        STACK_OF(X509_ALGOR) * digest_algs;
        GMCA_ECI *enc;
        STACK_OF(X509) * certs;
        STACK_OF(X509_CRL) * crls;
        STACK_OF(GMCA_SIGNER) * signers;
} GMCA_SED;

ASN1_SEQUENCE(GMCA_SED) =
    {
        ASN1_SIMPLE(GMCA_SED, version, ASN1_INTEGER),
        ASN1_SET_OF(GMCA_SED, recips, GMCA_RECIP),
        ASN1_SET_OF(GMCA_SED, digest_algs, X509_ALGOR),
        ASN1_SIMPLE(GMCA_SED, enc, GMCA_ECI),
        ASN1_IMP_SET_OF_OPT(GMCA_SED, certs, X509, 0),
        ASN1_IMP_SET_OF_OPT(GMCA_SED, crls, X509_CRL, 1),
        ASN1_SET_OF(GMCA_SED, signers, GMCA_SIGNER),
} static_ASN1_SEQUENCE_END(GMCA_SED)

    /* SM2Cipher (GM/T 0009 §7.2), to convert to and from the C1C3C2 octets */
    typedef struct {
        ASN1_INTEGER *x;
        ASN1_INTEGER *y;
        ASN1_OCTET_STRING *hash;
        ASN1_OCTET_STRING *ct;
} GMCA_SM2CIPHER;

ASN1_SEQUENCE(GMCA_SM2CIPHER) =
    {
        ASN1_SIMPLE(GMCA_SM2CIPHER, x, ASN1_INTEGER),
        ASN1_SIMPLE(GMCA_SM2CIPHER, y, ASN1_INTEGER),
        ASN1_SIMPLE(GMCA_SM2CIPHER, hash, ASN1_OCTET_STRING),
        ASN1_SIMPLE(GMCA_SM2CIPHER, ct, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(GMCA_SM2CIPHER)

#define NEW(T) ((T *)ASN1_item_new(ASN1_ITEM_rptr(T)))
#define FREE(T, v) ASN1_item_free((ASN1_VALUE *)(v), ASN1_ITEM_rptr(T))

        static const char *const msg_labels[] = {"PKCS7", "CMS", NULL};

/* 1 if o is the OID written as dotted text txt. */
/* Parameters absent or NULL, as GM/T algorithm identifiers come both ways. */
static int params_empty(const X509_ALGOR *a)
{
        int ptype;

        X509_ALGOR_get0(NULL, &ptype, NULL, a);
        return ptype == V_ASN1_UNDEF || ptype == V_ASN1_NULL;
}

static int alg_is(const X509_ALGOR *a, const char *txt)
{
        const ASN1_OBJECT *o;

        X509_ALGOR_get0(&o, NULL, NULL, a);
        return gmca_oid_is(o, txt);
}

/* Set a to the algorithm txt with absent parameters. */
static int alg_set(X509_ALGOR *a, const char *txt)
{
        ASN1_OBJECT *o = OBJ_txt2obj(txt, 1);

        if (o == NULL || !X509_ALGOR_set0(a, o, V_ASN1_UNDEF, NULL)) {
                ASN1_OBJECT_free(o);
                return -1;
        }
        return 0;
}

static int set_int(ASN1_INTEGER *i, long v)
{
        return ASN1_INTEGER_set(i, v) == 1 ? 0 : -1;
}

/* 1 if i is one of the small values lo..hi. */
static int int_in(const ASN1_INTEGER *i, long lo, long hi)
{
        int64_t v;

        return ASN1_INTEGER_get_int64(&v, i) == 1 && v >= lo && v <= hi;
}

static int ias_set(GMCA_IAS *ias, X509 *cert)
{
        X509_NAME *n = X509_NAME_dup(X509_get_issuer_name(cert));
        ASN1_INTEGER *s = ASN1_INTEGER_dup(X509_get0_serialNumber(cert));

        if (n == NULL || s == NULL) {
                X509_NAME_free(n);
                ASN1_INTEGER_free(s);
                return -1;
        }
        X509_NAME_free(ias->issuer);
        ASN1_INTEGER_free(ias->serial);
        ias->issuer = n;
        ias->serial = s;
        return 0;
}

static int ias_match(const GMCA_IAS *ias, X509 *cert)
{
        return X509_NAME_cmp(ias->issuer, X509_get_issuer_name(cert)) == 0 &&
               ASN1_INTEGER_cmp(ias->serial, X509_get0_serialNumber(cert)) == 0;
}

/*
 * The outer ContentInfo of a message of content type want (NULL: any), and
 * the DER of its [0] content (*inner, which the caller frees).
 */
static int open_ci(const uint8_t *msg, size_t len, const char *want, const char *what, GMCA_CI **ci,
                   uint8_t **inner, size_t *innerlen, struct gmca_error *e)
{
        uint8_t *owned = NULL, *der = NULL;
        const uint8_t *in = NULL;
        size_t inlen = 0;
        GMCA_CI *c = NULL;
        int n, rc;

        if ((rc = gmca_der_input(msg, len, GMCA_GMT0010_MAX, what, msg_labels, &owned, &in, &inlen,
                                 e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if ((c = (GMCA_CI *)gmca_der_decode(ASN1_ITEM_rptr(GMCA_CI), in, inlen, what, e)) == NULL)
                goto out;
        if (want != NULL && !gmca_oid_is(c->type, want)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: GM/T 0010 §6: contentType is not %s", what,
                               want);
                goto out;
        }
        if (c->content == NULL || ASN1_TYPE_get(c->content) != V_ASN1_SEQUENCE) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: GM/T 0010 §6: content is not a SEQUENCE",
                               what);
                goto out;
        }
        if ((n = i2d_ASN1_TYPE(c->content, &der)) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: cannot re-encode the content", what);
                goto out;
        }
        *ci = c;
        *inner = der;
        *innerlen = (size_t)n;
        c = NULL;
        der = NULL;
        rc = 0;
out:
        OPENSSL_free(der);
        FREE(GMCA_CI, c);
        OPENSSL_free(owned);
        return rc;
}

/* Wrap the DER of a SignedData or EnvelopedData in the outer ContentInfo. */
static int wrap_ci(const char *type, const uint8_t *der, int len, uint8_t **out, size_t *outlen,
                   struct gmca_error *e)
{
        GMCA_CI *ci = NEW(GMCA_CI);
        ASN1_STRING *s = ASN1_STRING_new();
        uint8_t *buf = NULL;
        int n, rc = GMCA_ERR_NOMEM;

        if (ci == NULL || s == NULL || (ci->content = ASN1_TYPE_new()) == NULL ||
            !ASN1_STRING_set(s, der, len))
                goto out;
        ASN1_OBJECT_free(ci->type);
        if ((ci->type = OBJ_txt2obj(type, 1)) == NULL)
                goto out;
        ASN1_TYPE_set(ci->content, V_ASN1_SEQUENCE, s);
        s = NULL;
        if ((n = ASN1_item_i2d((ASN1_VALUE *)ci, &buf, ASN1_ITEM_rptr(GMCA_CI))) <= 0)
                goto out;
        *out = buf;
        *outlen = (size_t)n;
        rc = 0;
out:
        if (rc != 0)
                gmca_error_ossl(e, rc, "GM/T 0010: cannot encode the ContentInfo");
        ASN1_STRING_free(s);
        FREE(GMCA_CI, ci);
        return rc;
}

/* ---------------------------------------------------------------- SignedData */

/* The authenticatedAttributes of GM/T 0010 §7.2: contentType, signingTime, messageDigest. */
static int make_attrs(STACK_OF(X509_ATTRIBUTE) * *attrs, time_t when,
                      const uint8_t md[GMCA_SM3_LEN])
{
        ASN1_OBJECT *data = OBJ_txt2obj(GMCA_OID_GMT0010_DATA, 1);
        ASN1_TIME *t = ASN1_TIME_set(NULL, when);
        int ok;

        ok = data != NULL && t != NULL &&
             X509at_add1_attr_by_NID(attrs, NID_pkcs9_contentType, V_ASN1_OBJECT,
                                     (const unsigned char *)data, -1) != NULL &&
             X509at_add1_attr_by_NID(attrs, NID_pkcs9_signingTime, ASN1_STRING_type(t),
                                     (const unsigned char *)t, -1) != NULL &&
             X509at_add1_attr_by_NID(attrs, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, md,
                                     GMCA_SM3_LEN) != NULL;
        ASN1_OBJECT_free(data);
        ASN1_TIME_free(t);
        return ok ? 0 : -1;
}

/* SM2 with o->id over tbs by key or by o->signer; *sig as gmca_sm2_sign's. */
static int sign_tbs(EVP_PKEY *key, const struct gmca_gmt0010_sign_opts *o, const uint8_t *tbs,
                    size_t len, uint8_t **sig, size_t *siglen, struct gmca_error *e)
{
        uint8_t buf[GMCA_SM2_SIG_MAX];
        size_t n = 0;
        int rc;

        if (o->signer == NULL)
                return gmca_sm2_sign(key, o->id, tbs, len, sig, siglen, e);
        if ((rc = o->signer->sign(o->signer->arg, tbs, len, buf, &n, e)) != 0)
                return rc;
        if (n == 0 || n > sizeof(buf))
                return gmca_error_set(e, GMCA_ERR_CRYPTO,
                                      "GM/T 0010 sign: signer returned %zu bytes", n);
        if ((*sig = OPENSSL_memdup(buf, n)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        *siglen = n;
        return 0;
}

/*
 * One SignerInfo by cert/key (or o->signer) over data (GM/T 0010 §7.2):
 * SM3, and SM2 with the ID over the DER authenticatedAttributes or over the
 * content itself. Shared by SignedData and SignedAndEnvelopedData.
 */
static int make_signer(X509 *cert, EVP_PKEY *key, const struct gmca_gmt0010_sign_opts *o,
                       const uint8_t *data, size_t len, GMCA_SIGNER **out, struct gmca_error *e)
{
        GMCA_SIGNER *si = NULL;
        uint8_t md[GMCA_SM3_LEN];
        uint8_t *tbs = NULL, *sig = NULL;
        size_t siglen = 0;
        int tbslen, rc = GMCA_ERR_NOMEM;
        uint32_t ku;

        if (cert == NULL || (key == NULL) == (o->signer == NULL) || (data == NULL && len > 0))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "GM/T 0010 sign: missing input (or both key and signer)");
        if (len > GMCA_GMT0010_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "GM/T 0010 sign: content over %u bytes",
                                      GMCA_GMT0010_MAX);
        if (key != NULL &&
            (X509_get0_pubkey(cert) == NULL || EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1)) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "GM/T 0010 sign: the private key does not belong to the "
                                      "signer certificate");
        }
        ku = X509_get_key_usage(cert);
        if (ku != UINT32_MAX && (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "GM/T 0010 sign: RFC 5280 §4.2.1.3: the certificate's "
                                      "keyUsage allows no signature");
        if (gmca_sm3(data, len, md) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "GM/T 0010 sign: SM3 failed");

        if ((si = NEW(GMCA_SIGNER)) == NULL || set_int(si->version, 1) != 0 ||
            ias_set(si->ias, cert) != 0 || alg_set(si->digest_alg, OID_SM3) != 0 ||
            alg_set(si->sig_alg, o->sm2_with_sm3 ? OID_SM2_WITH_SM3 : GMCA_OID_SM2_1) != 0)
                goto out;
        if (!o->no_attrs) {
                if (make_attrs(&si->auth, o->signing_time != 0 ? o->signing_time : gmca_now(),
                               md) != 0 ||
                    (tbslen = ASN1_item_i2d((ASN1_VALUE *)si->auth, &tbs,
                                            ASN1_ITEM_rptr(GMCA_ATTRS))) <= 0)
                        goto out;
                rc = sign_tbs(key, o, tbs, (size_t)tbslen, &sig, &siglen, e);
        } else {
                rc = sign_tbs(key, o, data, len, &sig, &siglen, e);
        }
        if (rc != 0)
                goto out;
        rc = GMCA_ERR_NOMEM;
        if (siglen > INT_MAX || !ASN1_OCTET_STRING_set(si->sig, sig, (int)siglen))
                goto out;
        *out = si;
        si = NULL;
        rc = 0;
out:
        if (rc == GMCA_ERR_NOMEM)
                gmca_error_ossl(e, rc, "GM/T 0010 sign: cannot build the SignerInfo");
        OPENSSL_free(sig);
        OPENSSL_free(tbs);
        FREE(GMCA_SIGNER, si);
        return rc;
}

/*
 * The signed parts SignedData and SignedAndEnvelopedData share: the SM3
 * digestAlgorithms entry, the signer certificate unless no_cert, and si
 * (taken over, even on failure). 0 or -1 (out of memory).
 */
static int add_signed(STACK_OF(X509_ALGOR) * digest_algs, STACK_OF(X509) * *certs,
                      STACK_OF(GMCA_SIGNER) * signers, X509 *cert,
                      const struct gmca_gmt0010_sign_opts *o, GMCA_SIGNER *si)
{
        X509_ALGOR *dalg = NULL;

        if (!sk_GMCA_SIGNER_push(signers, si)) {
                FREE(GMCA_SIGNER, si);
                return -1;
        }
        if ((dalg = X509_ALGOR_new()) == NULL || alg_set(dalg, OID_SM3) != 0 ||
            !sk_X509_ALGOR_push(digest_algs, dalg)) {
                X509_ALGOR_free(dalg);
                return -1;
        }
        if (!o->no_cert) {
                if ((*certs = sk_X509_new_null()) == NULL || !X509_up_ref(cert))
                        return -1;
                if (!sk_X509_push(*certs, cert)) {
                        X509_free(cert);
                        return -1;
                }
        }
        return 0;
}

int gmca_gmt0010_sign(X509 *cert, EVP_PKEY *key, const struct gmca_gmt0010_sign_opts *opts,
                      const uint8_t *data, size_t len, uint8_t **out, size_t *outlen,
                      struct gmca_error *e)
{
        static const struct gmca_gmt0010_sign_opts defaults;
        const struct gmca_gmt0010_sign_opts *o = opts != NULL ? opts : &defaults;
        GMCA_SD *sd = NULL;
        GMCA_SIGNER *si = NULL;
        ASN1_OCTET_STRING *oct = NULL;
        uint8_t *der = NULL;
        int n, rc;

        if ((rc = make_signer(cert, key, o, data, len, &si, e)) != 0)
                return rc;
        rc = GMCA_ERR_NOMEM;
        if ((sd = NEW(GMCA_SD)) == NULL || set_int(sd->version, 1) != 0) {
                FREE(GMCA_SIGNER, si);
                goto out;
        }
        if (add_signed(sd->digest_algs, &sd->certs, sd->signers, cert, o, si) != 0)
                goto out;
        ASN1_OBJECT_free(sd->content->type);
        if ((sd->content->type = OBJ_txt2obj(GMCA_OID_GMT0010_DATA, 1)) == NULL)
                goto out;
        if (!o->detached) {
                if ((oct = ASN1_OCTET_STRING_new()) == NULL || len > INT_MAX ||
                    !ASN1_OCTET_STRING_set(oct, data, (int)len) ||
                    (sd->content->content = ASN1_TYPE_new()) == NULL)
                        goto out;
                ASN1_TYPE_set(sd->content->content, V_ASN1_OCTET_STRING, oct);
                oct = NULL;
        }
        if ((n = ASN1_item_i2d((ASN1_VALUE *)sd, &der, ASN1_ITEM_rptr(GMCA_SD))) <= 0)
                goto out;
        rc = wrap_ci(GMCA_OID_GMT0010_SIGNED, der, n, out, outlen, e);
out:
        if (rc == GMCA_ERR_NOMEM)
                gmca_error_ossl(e, rc, "GM/T 0010 sign: cannot build the SignedData");
        OPENSSL_free(der);
        ASN1_OCTET_STRING_free(oct);
        FREE(GMCA_SD, sd);
        return rc;
}

void gmca_gmt0010_signer_clear(struct gmca_gmt0010_signer *s)
{
        if (s == NULL)
                return;
        X509_free(s->cert);
        memset(s, 0, sizeof(*s));
}

/* The single value of attribute a, which must have exactly one. */
static const ASN1_TYPE *attr_value(X509_ATTRIBUTE *a, const char *name, struct gmca_error *e)
{
        if (X509_ATTRIBUTE_count(a) != 1) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "SignedData: RFC 2315 §9.2: attribute %s must have one value", name);
                return NULL;
        }
        return X509_ATTRIBUTE_get0_type(a, 0);
}

/*
 * Check a signer's authenticatedAttributes against the content: the
 * contentType is the inner one, the messageDigest is SM3 of the content;
 * read the signingTime. Unknown attributes are allowed once each.
 */
static int check_attrs(STACK_OF(X509_ATTRIBUTE) * attrs, const ASN1_OBJECT *ctype,
                       const uint8_t md[GMCA_SM3_LEN], struct gmca_gmt0010_signer *out,
                       struct gmca_error *e)
{
        int i, j, n = sk_X509_ATTRIBUTE_num(attrs), seen_type = 0, seen_md = 0;
        const ASN1_TYPE *v;
        struct tm tm;

        if (n <= 0 || n > GMCA_GMT0010_ATTRS_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignedData: authenticatedAttributes: %d attributes "
                                      "(1 to %d allowed)",
                                      n, GMCA_GMT0010_ATTRS_MAX);
        for (i = 0; i < n; i++) {
                X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(attrs, i);
                const ASN1_OBJECT *o = X509_ATTRIBUTE_get0_object(a);

                for (j = 0; j < i; j++)
                        if (OBJ_cmp(o, X509_ATTRIBUTE_get0_object(
                                           sk_X509_ATTRIBUTE_value(attrs, j))) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "SignedData: authenticatedAttributes: "
                                                      "an attribute type appears twice");
                switch (OBJ_obj2nid(o)) {
                case NID_pkcs9_contentType:
                        if ((v = attr_value(a, "contentType", e)) == NULL)
                                return GMCA_ERR_INVALID;
                        if (ASN1_TYPE_get(v) != V_ASN1_OBJECT ||
                            OBJ_cmp(v->value.object, ctype) != 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "SignedData: contentType attribute differs "
                                                      "from the content's type");
                        seen_type = 1;
                        break;
                case NID_pkcs9_messageDigest:
                        if ((v = attr_value(a, "messageDigest", e)) == NULL)
                                return GMCA_ERR_INVALID;
                        if (ASN1_TYPE_get(v) != V_ASN1_OCTET_STRING ||
                            ASN1_STRING_length(v->value.octet_string) != GMCA_SM3_LEN)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "SignedData: messageDigest is not a "
                                                      "32-byte SM3 value");
                        if (CRYPTO_memcmp(ASN1_STRING_get0_data(v->value.octet_string), md,
                                          GMCA_SM3_LEN) != 0)
                                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                                      "SignedData: messageDigest does not match "
                                                      "SM3 of the content");
                        seen_md = 1;
                        break;
                case NID_pkcs9_signingTime:
                        if ((v = attr_value(a, "signingTime", e)) == NULL)
                                return GMCA_ERR_INVALID;
                        if ((ASN1_TYPE_get(v) != V_ASN1_UTCTIME &&
                             ASN1_TYPE_get(v) != V_ASN1_GENERALIZEDTIME) ||
                            !ASN1_TIME_to_tm((const ASN1_TIME *)v->value.utctime, &tm))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "SignedData: signingTime is not a valid "
                                                      "UTCTime or GeneralizedTime");
                        out->has_time = 1;
                        out->signing_time = timegm(&tm);
                        break;
                default:
                        break;
                }
        }
        if (!seen_type || !seen_md)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignedData: RFC 2315 §9.2: authenticatedAttributes lack "
                                      "%s",
                                      seen_type ? "messageDigest" : "contentType");
        return 0;
}

/* The certificate named by ias among the carried ones, then extra. */
static X509 *find_cert(const GMCA_IAS *ias, STACK_OF(X509) * carried, STACK_OF(X509) * extra)
{
        int i;

        for (i = 0; i < sk_X509_num(carried); i++)
                if (ias_match(ias, sk_X509_value(carried, i)))
                        return sk_X509_value(carried, i);
        for (i = 0; i < sk_X509_num(extra) && i < GMCA_GMT0010_CERTS_MAX * 16; i++)
                if (ias_match(ias, sk_X509_value(extra, i)))
                        return sk_X509_value(extra, i);
        return NULL;
}

/* Check one SignerInfo; the first one's certificate and time go to out. */
static int verify_signer(GMCA_SIGNER *si, int first, const ASN1_OBJECT *ctype,
                         const uint8_t *content, size_t clen, const uint8_t md[GMCA_SM3_LEN],
                         STACK_OF(X509) * carried, STACK_OF(X509) * extra, const char *id,
                         struct gmca_gmt0010_signer *out, struct gmca_error *e)
{
        struct gmca_gmt0010_signer found = {0};
        uint8_t *tbs = NULL;
        int tbslen, rc;
        X509 *cert;
        EVP_PKEY *pub;

        if (!int_in(si->version, 1, 1))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignerInfo: GM/T 0010 §7.2: version must be 1");
        if (gmca_name_is_der(si->ias->issuer, "SignerInfo", "issuer", e) != 0)
                return GMCA_ERR_INVALID;
        if (!alg_is(si->digest_alg, OID_SM3) || !params_empty(si->digest_alg))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignerInfo: digestAlgorithm must be SM3 (%s)", OID_SM3);
        if ((!alg_is(si->sig_alg, GMCA_OID_SM2_1) && !alg_is(si->sig_alg, OID_SM2_WITH_SM3)) ||
            !params_empty(si->sig_alg))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignerInfo: digestEncryptionAlgorithm must be SM2-1 (%s) "
                                      "or SM2-with-SM3 (%s)",
                                      GMCA_OID_SM2_1, OID_SM2_WITH_SM3);
        if (sk_X509_ATTRIBUTE_num(si->unauth) > GMCA_GMT0010_ATTRS_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "SignerInfo: more than %d unauthenticatedAttributes",
                                      GMCA_GMT0010_ATTRS_MAX);
        if ((cert = find_cert(si->ias, carried, extra)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "SignerInfo: the signer certificate (issuerAndSerialNumber) "
                                      "is neither in the message nor given");
        if ((pub = X509_get0_pubkey(cert)) == NULL || gmca_sm2_is_sm2(pub, e) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignerInfo: the signer certificate has no SM2 key");
        if (si->auth != NULL) {
                if ((rc = check_attrs(si->auth, ctype, md, &found, e)) != 0)
                        return rc;
                if ((tbslen = ASN1_item_i2d((ASN1_VALUE *)si->auth, &tbs,
                                            ASN1_ITEM_rptr(GMCA_ATTRS))) <= 0)
                        return gmca_error_ossl(e, GMCA_ERR_INTERNAL,
                                               "SignerInfo: cannot encode the attributes");
                rc = gmca_sm2_verify(pub, id, tbs, (size_t)tbslen, ASN1_STRING_get0_data(si->sig),
                                     (size_t)ASN1_STRING_length(si->sig), e);
                OPENSSL_free(tbs);
        } else {
                rc = gmca_sm2_verify(pub, id, content, clen, ASN1_STRING_get0_data(si->sig),
                                     (size_t)ASN1_STRING_length(si->sig), e);
        }
        if (rc != 0)
                return rc;
        if (first) {
                if (!X509_up_ref(cert))
                        return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "SignerInfo: X509_up_ref");
                out->cert = cert;
                out->has_time = found.has_time;
                out->signing_time = found.signing_time;
        }
        return 0;
}

/*
 * The signed part of a SignedData or SignedAndEnvelopedData over the
 * content c/clen of type ctype: SM3 digestAlgorithms, caps on certificates
 * and CRLs, and every SignerInfo verified (what names the structure).
 */
static int check_signed(STACK_OF(X509_ALGOR) * digest_algs, STACK_OF(X509) * certs,
                        STACK_OF(X509_CRL) * crls, STACK_OF(GMCA_SIGNER) * signers,
                        const ASN1_OBJECT *ctype, const uint8_t *c, size_t clen,
                        STACK_OF(X509) * extra, const char *id, struct gmca_gmt0010_signer *res,
                        const char *what, struct gmca_error *e)
{
        uint8_t md[GMCA_SM3_LEN];
        int i, n, rc;

        n = sk_X509_ALGOR_num(digest_algs);
        if (n < 1 || n > GMCA_GMT0010_SIGNERS_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: %d digestAlgorithms (1 to %d allowed)", what, n,
                                      GMCA_GMT0010_SIGNERS_MAX);
        for (i = 0; i < n; i++)
                if (!alg_is(sk_X509_ALGOR_value(digest_algs, i), OID_SM3))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "%s: digestAlgorithms: only SM3 (%s)", what, OID_SM3);
        if (sk_X509_num(certs) > GMCA_GMT0010_CERTS_MAX ||
            sk_X509_CRL_num(crls) > GMCA_GMT0010_CERTS_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: more than %d certificates or CRLs",
                                      what, GMCA_GMT0010_CERTS_MAX);
        n = sk_GMCA_SIGNER_num(signers);
        if (n < 1 || n > GMCA_GMT0010_SIGNERS_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: %d signerInfos (1 to %d allowed)",
                                      what, n, GMCA_GMT0010_SIGNERS_MAX);
        if (gmca_sm3(c, clen, md) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "%s: SM3 failed", what);
        for (i = 0; i < n; i++)
                if ((rc = verify_signer(sk_GMCA_SIGNER_value(signers, i), i == 0, ctype, c, clen,
                                        md, certs, extra, id, res, e)) != 0)
                        return rc;
        res->nsigners = n;
        return 0;
}

int gmca_gmt0010_verify(const uint8_t *msg, size_t len, const uint8_t *detached, size_t dlen,
                        STACK_OF(X509) * extra, const char *id, uint8_t **content,
                        size_t *contentlen, struct gmca_gmt0010_signer *signer,
                        struct gmca_error *e)
{
        struct gmca_gmt0010_signer res = {0};
        GMCA_CI *ci = NULL;
        GMCA_SD *sd = NULL;
        uint8_t *inner = NULL, *copy = NULL;
        size_t innerlen = 0, clen = 0;
        const uint8_t *c = NULL;
        int rc;

        if ((rc = open_ci(msg, len, GMCA_OID_GMT0010_SIGNED, "SignedData", &ci, &inner, &innerlen,
                          e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if ((sd = (GMCA_SD *)gmca_der_decode(ASN1_ITEM_rptr(GMCA_SD), inner, innerlen, "SignedData",
                                             e)) == NULL)
                goto out;
        if (!int_in(sd->version, 1, 1)) {
                gmca_error_set(e, rc, "SignedData: GM/T 0010 §7.1: version must be 1");
                goto out;
        }
        if (!gmca_oid_is(sd->content->type, GMCA_OID_GMT0010_DATA)) {
                gmca_error_set(e, rc, "SignedData: contentInfo type is not GM/T 0010 data (%s)",
                               GMCA_OID_GMT0010_DATA);
                goto out;
        }
        if (sd->content->content != NULL) {
                if (ASN1_TYPE_get(sd->content->content) != V_ASN1_OCTET_STRING) {
                        gmca_error_set(e, rc, "SignedData: data content is not an OCTET STRING");
                        goto out;
                }
                if (detached != NULL) {
                        gmca_error_set(e, rc,
                                       "SignedData: the message carries its content; "
                                       "refusing a detached content as well");
                        goto out;
                }
                c = ASN1_STRING_get0_data(sd->content->content->value.octet_string);
                clen = (size_t)ASN1_STRING_length(sd->content->content->value.octet_string);
        } else {
                if (detached == NULL) {
                        gmca_error_set(e, rc,
                                       "SignedData: detached signature: the content must "
                                       "be given");
                        goto out;
                }
                if (dlen > GMCA_GMT0010_MAX) {
                        gmca_error_set(e, GMCA_ERR_LIMIT, "SignedData: content over %u bytes",
                                       GMCA_GMT0010_MAX);
                        goto out;
                }
                c = detached;
                clen = dlen;
                res.detached = 1;
        }
        if ((rc = check_signed(sd->digest_algs, sd->certs, sd->crls, sd->signers, sd->content->type,
                               c, clen, extra, id, &res, "SignedData", e)) != 0)
                goto out;
        rc = GMCA_ERR_NOMEM;
        if (content != NULL && (copy = OPENSSL_malloc(clen > 0 ? clen : 1)) == NULL)
                goto out;
        if (copy != NULL && clen > 0)
                memcpy(copy, c, clen);
        if (content != NULL) {
                *content = copy;
                *contentlen = clen;
                copy = NULL;
        }
        *signer = res;
        memset(&res, 0, sizeof(res));
        rc = 0;
out:
        gmca_gmt0010_signer_clear(&res);
        OPENSSL_free(copy);
        FREE(GMCA_SD, sd);
        OPENSSL_free(inner);
        FREE(GMCA_CI, ci);
        return rc;
}

/* ---------------------------------------------------------------- EnvelopedData */

static int add_recip(STACK_OF(GMCA_RECIP) * recips, X509 *cert, const uint8_t key[GMCA_SM4_KEY_LEN],
                     struct gmca_error *e)
{
        GMCA_RECIP *ri = NULL;
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        uint8_t *ek = NULL;
        size_t eklen = 0;
        uint32_t ku;
        int rc;

        if (cert == NULL || pub == NULL || gmca_sm2_is_sm2(pub, e) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "EnvelopedData: a recipient certificate has no SM2 key");
        ku = X509_get_key_usage(cert);
        if (ku != UINT32_MAX && (ku & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT)) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "EnvelopedData: RFC 5280 §4.2.1.3: a recipient "
                                      "certificate's keyUsage allows no encipherment (use the "
                                      "encryption certificate)");
        if ((rc = gmca_sm2_encrypt(pub, key, GMCA_SM4_KEY_LEN, &ek, &eklen, e)) != 0)
                return rc;
        rc = GMCA_ERR_NOMEM;
        if ((ri = NEW(GMCA_RECIP)) == NULL || set_int(ri->version, 1) != 0 ||
            ias_set(ri->ias, cert) != 0 || alg_set(ri->key_alg, GMCA_OID_SM2_3) != 0 ||
            eklen > INT_MAX || !ASN1_OCTET_STRING_set(ri->key, ek, (int)eklen) ||
            !sk_GMCA_RECIP_push(recips, ri)) {
                gmca_error_ossl(e, rc, "EnvelopedData: cannot build a RecipientInfo");
                goto out;
        }
        ri = NULL;
        rc = 0;
out:
        OPENSSL_free(ek);
        FREE(GMCA_RECIP, ri);
        return rc;
}

/*
 * The enveloped part EnvelopedData and SignedAndEnvelopedData share: data
 * under a fresh SM4-CBC key and IV into eci, the key SM2-encrypted to each
 * of the n recipients into recips.
 */
static int seal(STACK_OF(GMCA_RECIP) * recips, GMCA_ECI *eci, X509 *const *certs, size_t n,
                const uint8_t *data, size_t len, struct gmca_error *e)
{
        uint8_t key[GMCA_SM4_KEY_LEN], iv[GMCA_SM4_BLOCK];
        uint8_t *ct = NULL;
        size_t ctlen = 0, i;
        ASN1_OCTET_STRING *ivs = NULL;
        ASN1_OBJECT *alg = NULL;
        int rc;

        if (certs == NULL || n == 0 || (data == NULL && len > 0))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "EnvelopedData: no recipient or no content");
        if (n > GMCA_GMT0010_RECIPS_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "EnvelopedData: more than %d recipients",
                                      GMCA_GMT0010_RECIPS_MAX);
        if (len > GMCA_GMT0010_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "EnvelopedData: content over %u bytes",
                                      GMCA_GMT0010_MAX);
        if ((rc = gmca_rand_bytes(key, sizeof(key), e)) != 0 ||
            (rc = gmca_rand_bytes(iv, sizeof(iv), e)) != 0 ||
            (rc = gmca_sm4_cbc_encrypt(key, iv, data, len, &ct, &ctlen, e)) != 0)
                goto out;
        for (i = 0; i < n; i++)
                if ((rc = add_recip(recips, certs[i], key, e)) != 0)
                        goto out;
        rc = GMCA_ERR_NOMEM;
        ASN1_OBJECT_free(eci->type);
        if ((eci->type = OBJ_txt2obj(GMCA_OID_GMT0010_DATA, 1)) == NULL ||
            (alg = OBJ_txt2obj(OID_SM4_CBC, 1)) == NULL ||
            (ivs = ASN1_OCTET_STRING_new()) == NULL ||
            !ASN1_OCTET_STRING_set(ivs, iv, sizeof(iv)) ||
            !X509_ALGOR_set0(eci->alg, alg, V_ASN1_OCTET_STRING, ivs)) {
                gmca_error_ossl(e, rc, "EnvelopedData: cannot build the EncryptedContentInfo");
                goto out;
        }
        alg = NULL;
        ivs = NULL;
        if ((eci->data = ASN1_OCTET_STRING_new()) == NULL || ctlen > INT_MAX ||
            !ASN1_OCTET_STRING_set(eci->data, ct, (int)ctlen)) {
                gmca_error_ossl(e, rc, "EnvelopedData: cannot encode");
                goto out;
        }
        rc = 0;
out:
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_free(ct);
        ASN1_OBJECT_free(alg);
        ASN1_OCTET_STRING_free(ivs);
        return rc;
}

int gmca_gmt0010_encrypt(X509 *const *recips, size_t n, const uint8_t *data, size_t len,
                         uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        uint8_t *der = NULL;
        GMCA_ED *ed = NULL;
        int derlen, rc;

        if ((ed = NEW(GMCA_ED)) == NULL || set_int(ed->version, 1) != 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "EnvelopedData: cannot build");
                goto out;
        }
        if ((rc = seal(ed->recips, ed->enc, recips, n, data, len, e)) != 0)
                goto out;
        if ((derlen = ASN1_item_i2d((ASN1_VALUE *)ed, &der, ASN1_ITEM_rptr(GMCA_ED))) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "EnvelopedData: cannot encode");
                goto out;
        }
        rc = wrap_ci(GMCA_OID_GMT0010_ENVELOPED, der, derlen, out, outlen, e);
out:
        OPENSSL_free(der);
        FREE(GMCA_ED, ed);
        return rc;
}

/* The IV of an SM4-CBC contentEncryptionAlgorithm (GMT-REFERENCE §2.3 item 6). */
static int sm4_cbc_iv(const X509_ALGOR *a, uint8_t iv[GMCA_SM4_BLOCK], struct gmca_error *e)
{
        const void *pval;
        int ptype;

        if (!alg_is(a, OID_SM4_CBC) && !alg_is(a, OID_SM4))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "EnvelopedData: contentEncryptionAlgorithm must be SM4-CBC "
                                      "(%s or %s)",
                                      OID_SM4_CBC, OID_SM4);
        X509_ALGOR_get0(NULL, &ptype, &pval, a);
        if (ptype != V_ASN1_OCTET_STRING || ASN1_STRING_length(pval) != GMCA_SM4_BLOCK)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "EnvelopedData: SM4-CBC parameters must be a 16-byte IV "
                                      "OCTET STRING");
        memcpy(iv, ASN1_STRING_get0_data(pval), GMCA_SM4_BLOCK);
        return 0;
}

static int key_of_cert(X509 *cert, EVP_PKEY *key, const char *what, struct gmca_error *e)
{
        if (cert == NULL || key == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no certificate or key", what);
        if (X509_get0_pubkey(cert) == NULL || EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: the private key does not belong to the certificate",
                                      what);
        }
        return 0;
}

/*
 * Open the enveloped part of an EnvelopedData or SignedAndEnvelopedData
 * with cert/key. *out as for gmca_gmt0010_decrypt.
 */
static int open_env(STACK_OF(GMCA_RECIP) * recips, const GMCA_ECI *eci, X509 *cert, EVP_PKEY *key,
                    uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        GMCA_RECIP *ri = NULL;
        uint8_t *ck = NULL;
        size_t cklen = 0;
        uint8_t iv[GMCA_SM4_BLOCK];
        int i, n, rc = GMCA_ERR_INVALID;

        n = sk_GMCA_RECIP_num(recips);
        if (n < 1 || n > GMCA_GMT0010_RECIPS_MAX)
                return gmca_error_set(e, rc, "EnvelopedData: %d recipientInfos (1 to %d allowed)",
                                      n, GMCA_GMT0010_RECIPS_MAX);
        if (!gmca_oid_is(eci->type, GMCA_OID_GMT0010_DATA))
                return gmca_error_set(e, rc,
                                      "EnvelopedData: content type is not GM/T 0010 data (%s)",
                                      GMCA_OID_GMT0010_DATA);
        if ((rc = sm4_cbc_iv(eci->alg, iv, e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if (eci->data == NULL || ASN1_STRING_length(eci->data) == 0 ||
            ASN1_STRING_length(eci->data) % GMCA_SM4_BLOCK != 0)
                return gmca_error_set(e, rc,
                                      "EnvelopedData: encryptedContent absent or not whole SM4 "
                                      "blocks");
        for (i = 0; i < n; i++) {
                GMCA_RECIP *r = sk_GMCA_RECIP_value(recips, i);

                if (!int_in(r->version, 0, 1) ||
                    (!alg_is(r->key_alg, GMCA_OID_SM2_3) && !alg_is(r->key_alg, OID_SM2_2)) ||
                    !params_empty(r->key_alg))
                        return gmca_error_set(e, rc,
                                              "RecipientInfo: version 0 or 1 and "
                                              "keyEncryptionAlgorithm SM2-3 (%s) required",
                                              GMCA_OID_SM2_3);
                if (gmca_name_is_der(r->ias->issuer, "RecipientInfo", "issuer", e) != 0)
                        return rc;
                if (ri == NULL && ias_match(r->ias, cert))
                        ri = r;
        }
        if (ri == NULL)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "EnvelopedData: no RecipientInfo for this certificate "
                                      "(issuer and serial)");
        if ((rc = gmca_sm2_decrypt(key, ASN1_STRING_get0_data(ri->key),
                                   (size_t)ASN1_STRING_length(ri->key), &ck, &cklen, e)) != 0)
                goto out;
        if (cklen != GMCA_SM4_KEY_LEN) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "RecipientInfo: the content key is %zu bytes, not 16", cklen);
                goto out;
        }
        rc = gmca_sm4_cbc_decrypt(ck, iv, ASN1_STRING_get0_data(eci->data),
                                  (size_t)ASN1_STRING_length(eci->data), out, outlen, e);
out:
        if (ck != NULL)
                OPENSSL_clear_free(ck, cklen);
        return rc;
}

int gmca_gmt0010_decrypt(const uint8_t *msg, size_t len, X509 *cert, EVP_PKEY *key, uint8_t **out,
                         size_t *outlen, struct gmca_error *e)
{
        GMCA_CI *ci = NULL;
        GMCA_ED *ed = NULL;
        uint8_t *inner = NULL;
        size_t innerlen = 0;
        int rc;

        if ((rc = key_of_cert(cert, key, "EnvelopedData", e)) != 0)
                return rc;
        if ((rc = open_ci(msg, len, GMCA_OID_GMT0010_ENVELOPED, "EnvelopedData", &ci, &inner,
                          &innerlen, e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if ((ed = (GMCA_ED *)gmca_der_decode(ASN1_ITEM_rptr(GMCA_ED), inner, innerlen,
                                             "EnvelopedData", e)) == NULL)
                goto out;
        if (!int_in(ed->version, 0, 1)) {
                gmca_error_set(e, rc, "EnvelopedData: GM/T 0010 §8.1: version must be 0 or 1");
                goto out;
        }
        rc = open_env(ed->recips, ed->enc, cert, key, out, outlen, e);
out:
        FREE(GMCA_ED, ed);
        OPENSSL_free(inner);
        FREE(GMCA_CI, ci);
        return rc;
}

/* ---------------------------------------------------------------- SignedAndEnvelopedData */

/*
 * RFC 2315 §11.1 step 3 also encrypts each encryptedDigest under the
 * content key; GM/T 0010 implementations (GmSSL's cms.c among them) leave
 * the SM2 signature as it is, and so do we in both directions: a signer of
 * the content can be checked by anyone who can open the envelope.
 */
int gmca_gmt0010_sign_encrypt(X509 *cert, EVP_PKEY *key, const struct gmca_gmt0010_sign_opts *opts,
                              X509 *const *recips, size_t n, const uint8_t *data, size_t len,
                              uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        static const struct gmca_gmt0010_sign_opts defaults;
        const struct gmca_gmt0010_sign_opts *o = opts != NULL ? opts : &defaults;
        GMCA_SED *sed = NULL;
        GMCA_SIGNER *si = NULL;
        uint8_t *der = NULL;
        int derlen, rc;

        if (o->detached)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignedAndEnvelopedData: the content is always carried "
                                      "(encrypted); detached makes no sense here");
        if ((rc = make_signer(cert, key, o, data, len, &si, e)) != 0)
                return rc;
        if ((sed = NEW(GMCA_SED)) == NULL || set_int(sed->version, 1) != 0) {
                FREE(GMCA_SIGNER, si);
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "SignedAndEnvelopedData: cannot build");
                goto out;
        }
        if (add_signed(sed->digest_algs, &sed->certs, sed->signers, cert, o, si) != 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "SignedAndEnvelopedData: cannot build");
                goto out;
        }
        if ((rc = seal(sed->recips, sed->enc, recips, n, data, len, e)) != 0)
                goto out;
        if ((derlen = ASN1_item_i2d((ASN1_VALUE *)sed, &der, ASN1_ITEM_rptr(GMCA_SED))) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "SignedAndEnvelopedData: cannot encode");
                goto out;
        }
        rc = wrap_ci(GMCA_OID_GMT0010_SIGNED_ENVELOPED, der, derlen, out, outlen, e);
out:
        OPENSSL_free(der);
        FREE(GMCA_SED, sed);
        return rc;
}

int gmca_gmt0010_decrypt_verify(const uint8_t *msg, size_t len, X509 *cert, EVP_PKEY *key,
                                STACK_OF(X509) * extra, const char *id, uint8_t **content,
                                size_t *contentlen, struct gmca_gmt0010_signer *signer,
                                struct gmca_error *e)
{
        static const char what[] = "SignedAndEnvelopedData";
        struct gmca_gmt0010_signer res = {0};
        GMCA_CI *ci = NULL;
        GMCA_SED *sed = NULL;
        uint8_t *inner = NULL, *pt = NULL;
        size_t innerlen = 0, ptlen = 0;
        int rc;

        if ((rc = key_of_cert(cert, key, what, e)) != 0)
                return rc;
        if ((rc = open_ci(msg, len, GMCA_OID_GMT0010_SIGNED_ENVELOPED, what, &ci, &inner, &innerlen,
                          e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if ((sed = (GMCA_SED *)gmca_der_decode(ASN1_ITEM_rptr(GMCA_SED), inner, innerlen, what,
                                               e)) == NULL)
                goto out;
        if (!int_in(sed->version, 1, 1)) {
                gmca_error_set(e, rc, "%s: GM/T 0010 §9: version must be 1", what);
                goto out;
        }
        if ((rc = open_env(sed->recips, sed->enc, cert, key, &pt, &ptlen, e)) != 0 ||
            (rc = check_signed(sed->digest_algs, sed->certs, sed->crls, sed->signers,
                               sed->enc->type, pt, ptlen, extra, id, &res, what, e)) != 0)
                goto out;
        *content = pt;
        *contentlen = ptlen;
        pt = NULL;
        *signer = res;
        memset(&res, 0, sizeof(res));
        rc = 0;
out:
        if (pt != NULL)
                OPENSSL_clear_free(pt, ptlen);
        gmca_gmt0010_signer_clear(&res);
        FREE(GMCA_SED, sed);
        OPENSSL_free(inner);
        FREE(GMCA_CI, ci);
        return rc;
}

int gmca_gmt0010_kind(const uint8_t *msg, size_t len, struct gmca_error *e)
{
        static const char *const types[] = {GMCA_OID_GMT0010_SIGNED, GMCA_OID_GMT0010_ENVELOPED,
                                            GMCA_OID_GMT0010_SIGNED_ENVELOPED};
        static const int kinds[] = {GMCA_GMT0010_KIND_SIGNED, GMCA_GMT0010_KIND_ENVELOPED,
                                    GMCA_GMT0010_KIND_SIGNED_ENVELOPED};
        GMCA_CI *ci = NULL;
        uint8_t *inner = NULL;
        size_t innerlen = 0, i;
        int rc;

        if ((rc = open_ci(msg, len, NULL, "GM/T 0010 message", &ci, &inner, &innerlen, e)) != 0)
                return rc;
        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                            "GM/T 0010 message: contentType is none of signedData, "
                            "envelopedData, signedAndEnvelopedData");
        for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                if (gmca_oid_is(ci->type, types[i])) {
                        gmca_error_clear(e);
                        rc = kinds[i];
                        break;
                }
        OPENSSL_free(inner);
        FREE(GMCA_CI, ci);
        return rc;
}

/* ---------------------------------------------------------------- GM/T 0009 SM2Cipher forms */

int gmca_sm2cipher_to_c1c3c2(const uint8_t *der, size_t len, uint8_t **out, size_t *outlen,
                             struct gmca_error *e)
{
        GMCA_SM2CIPHER *c = NULL;
        BIGNUM *x = NULL, *y = NULL;
        uint8_t *buf = NULL;
        size_t ctlen, total = 0;
        int rc = GMCA_ERR_INVALID;

        if (der == NULL || len > GMCA_SM2CIPHER_MAX + 256)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM2Cipher: absent or over %u bytes",
                                      GMCA_SM2CIPHER_MAX);
        if ((c = (GMCA_SM2CIPHER *)gmca_der_decode(ASN1_ITEM_rptr(GMCA_SM2CIPHER), der, len,
                                                   "SM2Cipher (GM/T 0009 §7.2)", e)) == NULL)
                return rc;
        if ((x = ASN1_INTEGER_to_BN(c->x, NULL)) == NULL ||
            (y = ASN1_INTEGER_to_BN(c->y, NULL)) == NULL || BN_is_negative(x) ||
            BN_is_negative(y) || BN_num_bytes(x) > 32 || BN_num_bytes(y) > 32) {
                gmca_ossl_clear();
                gmca_error_set(e, rc, "SM2Cipher: C1 coordinates must be 0 to 2^256-1");
                goto out;
        }
        ctlen = (size_t)ASN1_STRING_length(c->ct);
        if (ASN1_STRING_length(c->hash) != GMCA_SM3_LEN || ctlen == 0) {
                gmca_error_set(e, rc, "SM2Cipher: HASH must be 32 bytes and CipherText non-empty");
                goto out;
        }
        total = 1 + 64 + GMCA_SM3_LEN + ctlen;
        if ((buf = OPENSSL_malloc(total)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "SM2Cipher: out of memory");
                goto out;
        }
        buf[0] = 0x04;
        if (BN_bn2binpad(x, buf + 1, 32) != 32 || BN_bn2binpad(y, buf + 33, 32) != 32) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "SM2Cipher: BN_bn2binpad");
                goto out;
        }
        memcpy(buf + 65, ASN1_STRING_get0_data(c->hash), GMCA_SM3_LEN);
        memcpy(buf + 65 + GMCA_SM3_LEN, ASN1_STRING_get0_data(c->ct), ctlen);
        *out = buf;
        *outlen = total;
        buf = NULL;
        rc = 0;
out:
        OPENSSL_free(buf);
        BN_free(x);
        BN_free(y);
        FREE(GMCA_SM2CIPHER, c);
        return rc;
}

int gmca_sm2cipher_from_c1c3c2(const uint8_t *raw, size_t len, uint8_t **out, size_t *outlen,
                               struct gmca_error *e)
{
        GMCA_SM2CIPHER *c = NULL;
        BIGNUM *x = NULL, *y = NULL;
        uint8_t *der = NULL;
        int n, rc = GMCA_ERR_NOMEM;

        if (raw == NULL || len < 1 + 64 + GMCA_SM3_LEN + 1 || raw[0] != 0x04)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SM2 C1C3C2: GM/T 0003.4: must be 04||x||y (65 bytes), "
                                      "C3 (32 bytes) and at least one byte of C2");
        if (len - (1 + 64 + GMCA_SM3_LEN) > GMCA_SM2CIPHER_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "SM2 C1C3C2: C2 over %u bytes",
                                      GMCA_SM2CIPHER_MAX);
        if ((c = NEW(GMCA_SM2CIPHER)) == NULL || (x = BN_bin2bn(raw + 1, 32, NULL)) == NULL ||
            (y = BN_bin2bn(raw + 33, 32, NULL)) == NULL || BN_to_ASN1_INTEGER(x, c->x) == NULL ||
            BN_to_ASN1_INTEGER(y, c->y) == NULL ||
            !ASN1_OCTET_STRING_set(c->hash, raw + 65, GMCA_SM3_LEN) ||
            !ASN1_OCTET_STRING_set(c->ct, raw + 65 + GMCA_SM3_LEN,
                                   (int)(len - 65 - GMCA_SM3_LEN)) ||
            (n = ASN1_item_i2d((ASN1_VALUE *)c, &der, ASN1_ITEM_rptr(GMCA_SM2CIPHER))) <= 0) {
                gmca_error_ossl(e, rc, "SM2 C1C3C2: cannot encode the SM2Cipher");
                goto out;
        }
        *out = der;
        *outlen = (size_t)n;
        der = NULL;
        rc = 0;
out:
        OPENSSL_free(der);
        BN_free(x);
        BN_free(y);
        FREE(GMCA_SM2CIPHER, c);
        return rc;
}
