/* The ASN.1 that GM/T 0010 messages and RFC 3161 tokens share (cms_asn1.h). */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include "cms_asn1.h"

#define OID_TEXT_MAX 80

ASN1_SEQUENCE(GMCA_IAS) =
    {
        ASN1_SIMPLE(GMCA_IAS, issuer, X509_NAME),
        ASN1_SIMPLE(GMCA_IAS, serial, ASN1_INTEGER),
} ASN1_SEQUENCE_END(GMCA_IAS)

        ASN1_SEQUENCE(GMCA_SIGNER) =
            {
                ASN1_SIMPLE(GMCA_SIGNER, version, ASN1_INTEGER),
                ASN1_SIMPLE(GMCA_SIGNER, ias, GMCA_IAS),
                ASN1_SIMPLE(GMCA_SIGNER, digest_alg, X509_ALGOR),
                ASN1_IMP_SET_OF_OPT(GMCA_SIGNER, auth, X509_ATTRIBUTE, 0),
                ASN1_SIMPLE(GMCA_SIGNER, sig_alg, X509_ALGOR),
                ASN1_SIMPLE(GMCA_SIGNER, sig, ASN1_OCTET_STRING),
                ASN1_IMP_SET_OF_OPT(GMCA_SIGNER, unauth, X509_ATTRIBUTE, 1),
} ASN1_SEQUENCE_END(GMCA_SIGNER)

                ASN1_ITEM_TEMPLATE(GMCA_ATTRS) =
                    ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SET_OF, 0, attrs, X509_ATTRIBUTE)
                        ASN1_ITEM_TEMPLATE_END(GMCA_ATTRS)

                            ASN1_VALUE
                    * gmca_der_decode(const ASN1_ITEM *it, const uint8_t *der, size_t len,
                                      const char *what, struct gmca_error *e)
{
        const uint8_t *p = der;
        ASN1_VALUE *v = NULL;
        uint8_t *re = NULL;
        int relen;

        if (len == 0 || len > LONG_MAX || (v = ASN1_item_d2i(NULL, &p, (long)len, it)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: malformed or truncated DER", what);
                return NULL;
        }
        if (p != der + len) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: trailing bytes after DER", what);
                goto fail;
        }
        relen = ASN1_item_i2d(v, &re, it);
        if (relen <= 0 || (size_t)relen != len || memcmp(re, der, len) != 0) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "%s: X.690 §10: not DER (re-encoding differs from the input)", what);
                goto fail;
        }
        OPENSSL_free(re);
        return v;
fail:
        OPENSSL_free(re);
        ASN1_item_free(v, it);
        return NULL;
}

int gmca_oid_is(const ASN1_OBJECT *o, const char *txt)
{
        char buf[OID_TEXT_MAX];
        int n = OBJ_obj2txt(buf, sizeof(buf), o, 1);

        return n > 0 && (size_t)n < sizeof(buf) && strcmp(buf, txt) == 0;
}
