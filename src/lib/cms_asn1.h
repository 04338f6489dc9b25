/*
 * cms_asn1: the ASN.1 that GM/T 0010 messages (PKCS#7 syntax, gmt0010.c)
 * and RFC 3161 time-stamp tokens (RFC 5652 CMS, tsa.c) share —
 * IssuerAndSerialNumber, SignerInfo and the SET OF attributes a signature
 * covers — and the strict DER decoder every parser of outside bytes here
 * uses. Internal; OpenSSL types.
 */
#ifndef GMCA_CMS_ASN1_H
#define GMCA_CMS_ASN1_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1t.h>
#include <openssl/x509.h>

#include "err.h"

/* IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER } */
typedef struct {
        X509_NAME *issuer;
        ASN1_INTEGER *serial;
} GMCA_IAS;
DECLARE_ASN1_ITEM(GMCA_IAS)

/*
 * SignerInfo (GM/T 0010 §7.2 = RFC 2315 §9.2; RFC 5652 §5.3 with an
 * issuerAndSerialNumber sid): the same fields in both.
 */
typedef struct {
        ASN1_INTEGER *version;
        GMCA_IAS *ias;
        X509_ALGOR *digest_alg;
        STACK_OF(X509_ATTRIBUTE) * auth; /* authenticated / signed attributes [0] */
        X509_ALGOR *sig_alg;
        ASN1_OCTET_STRING *sig;
        STACK_OF(X509_ATTRIBUTE) * unauth; /* [1] */
} GMCA_SIGNER;
DECLARE_ASN1_ITEM(GMCA_SIGNER)
DEFINE_STACK_OF(GMCA_SIGNER)

/* The attributes re-tagged as the SET OF that is signed (RFC 2315 §9.3, RFC 5652 §5.4). */
DECLARE_ASN1_ITEM(GMCA_ATTRS)

/*
 * Decode exactly der/len as it: no trailing bytes, and the re-encoding must
 * be the input (X.690 §10 DER: no BER lengths, sorted SETs). what names the
 * input in errors. NULL with e set on failure; free with ASN1_item_free.
 */
ASN1_VALUE *gmca_der_decode(const ASN1_ITEM *it, const uint8_t *der, size_t len, const char *what,
                            struct gmca_error *e);

/* 1 if o is the OID in dotted text txt. */
int gmca_oid_is(const ASN1_OBJECT *o, const char *txt);

#endif
