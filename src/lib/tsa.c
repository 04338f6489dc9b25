/*
 * RFC 3161 time-stamping with SM2 (see tsa.h). The token is an RFC 5652
 * ContentInfo id-signedData, SignedData version 3 over an id-ct-TSTInfo
 * eContent, with one SignerInfo (issuerAndSerialNumber, SM3,
 * SM2-with-SM3) whose signed attributes are contentType, messageDigest,
 * signingCertificateV2 (RFC 5816, SM3 certHash) and optionally
 * signingTime; the SM2 signature is over Z || DER(SET OF signedAttrs) with
 * the GM/T 0009 ID. Every parser here takes the exact buffer, refuses
 * trailing bytes and anything whose DER re-encoding differs from the input,
 * and caps sizes and counts.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "cms_asn1.h"
#include "crypto.h"
#include "tsa.h"
#include "util.h"
#include "x509.h"

#define OID_SM2_1 "1.2.156.10197.1.301.1" /* GM/T 0010's SM2 signature OID, accepted */
#define OID_TEXT_MAX 80
#define DIGEST_ALGS_MAX 4

/* EncapsulatedContentInfo ::= SEQUENCE { eContentType, eContent [0] EXPLICIT OCTET STRING
   OPTIONAL } */
typedef struct {
        ASN1_OBJECT *type;
        ASN1_OCTET_STRING *content;
} TSA_ECI;

ASN1_SEQUENCE(TSA_ECI) =
    {
        ASN1_SIMPLE(TSA_ECI, type, ASN1_OBJECT),
        ASN1_EXP_OPT(TSA_ECI, content, ASN1_OCTET_STRING, 0),
} static_ASN1_SEQUENCE_END(TSA_ECI)

    /* SignedData (RFC 5652 §5.1) */
    typedef struct {
        ASN1_INTEGER *version;
        STACK_OF(X509_ALGOR) * digest_algs;
        TSA_ECI *eci;
        STACK_OF(X509) * certs;
        STACK_OF(X509_CRL) * crls;
        STACK_OF(GMCA_SIGNER) * signers;
} TSA_SD;

ASN1_SEQUENCE(TSA_SD) =
    {
        ASN1_SIMPLE(TSA_SD, version, ASN1_INTEGER),
        ASN1_SET_OF(TSA_SD, digest_algs, X509_ALGOR),
        ASN1_SIMPLE(TSA_SD, eci, TSA_ECI),
        ASN1_IMP_SET_OF_OPT(TSA_SD, certs, X509, 0),
        ASN1_IMP_SET_OF_OPT(TSA_SD, crls, X509_CRL, 1),
        ASN1_SET_OF(TSA_SD, signers, GMCA_SIGNER),
} static_ASN1_SEQUENCE_END(TSA_SD)

    /* TimeStampToken ::= ContentInfo { id-signedData, [0] EXPLICIT SignedData } */
    typedef struct {
        ASN1_OBJECT *type;
        TSA_SD *sd;
} TSA_TOKEN;

ASN1_SEQUENCE(TSA_TOKEN) =
    {
        ASN1_SIMPLE(TSA_TOKEN, type, ASN1_OBJECT),
        ASN1_EXP(TSA_TOKEN, sd, TSA_SD, 0),
} static_ASN1_SEQUENCE_END(TSA_TOKEN)

    /* PKIStatusInfo (RFC 3161 §2.4.2) */
    typedef struct {
        ASN1_INTEGER *status;
        STACK_OF(ASN1_UTF8STRING) * text;
        ASN1_BIT_STRING *fail;
} TSA_STATUS;

ASN1_SEQUENCE(TSA_STATUS) =
    {
        ASN1_SIMPLE(TSA_STATUS, status, ASN1_INTEGER),
        ASN1_SEQUENCE_OF_OPT(TSA_STATUS, text, ASN1_UTF8STRING),
        ASN1_OPT(TSA_STATUS, fail, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(TSA_STATUS)

    /* TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken OPTIONAL } */
    typedef struct {
        TSA_STATUS *status;
        TSA_TOKEN *token;
} TSA_RESP;

ASN1_SEQUENCE(TSA_RESP) =
    {
        ASN1_SIMPLE(TSA_RESP, status, TSA_STATUS),
        ASN1_OPT(TSA_RESP, token, TSA_TOKEN),
} static_ASN1_SEQUENCE_END(TSA_RESP)

    /* IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber INTEGER } (RFC 5035) */
    typedef struct {
        STACK_OF(GENERAL_NAME) * issuer;
        ASN1_INTEGER *serial;
} TSA_ISSUER_SERIAL;

ASN1_SEQUENCE(TSA_ISSUER_SERIAL) =
    {
        ASN1_SEQUENCE_OF(TSA_ISSUER_SERIAL, issuer, GENERAL_NAME),
        ASN1_SIMPLE(TSA_ISSUER_SERIAL, serial, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(TSA_ISSUER_SERIAL)

    /* ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash, issuerSerial OPTIONAL } */
    typedef struct {
        X509_ALGOR *alg;
        ASN1_OCTET_STRING *hash;
        TSA_ISSUER_SERIAL *is;
} TSA_CERTID;

ASN1_SEQUENCE(TSA_CERTID) =
    {
        ASN1_OPT(TSA_CERTID, alg, X509_ALGOR),
        ASN1_SIMPLE(TSA_CERTID, hash, ASN1_OCTET_STRING),
        ASN1_OPT(TSA_CERTID, is, TSA_ISSUER_SERIAL),
} static_ASN1_SEQUENCE_END(TSA_CERTID)

        DEFINE_STACK_OF(TSA_CERTID)

    /* SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies OPTIONAL } */
    typedef struct {
        STACK_OF(TSA_CERTID) * certs;
        STACK_OF(POLICYINFO) * policies;
} TSA_SCV2;

ASN1_SEQUENCE(TSA_SCV2) =
    {
        ASN1_SEQUENCE_OF(TSA_SCV2, certs, TSA_CERTID),
        ASN1_SEQUENCE_OF_OPT(TSA_SCV2, policies, POLICYINFO),
} static_ASN1_SEQUENCE_END(TSA_SCV2)

#define NEW(T) ((T *)ASN1_item_new(ASN1_ITEM_rptr(T)))
#define FREE(T, v) ASN1_item_free((ASN1_VALUE *)(v), ASN1_ITEM_rptr(T))
#define I2D(T, v, out) ASN1_item_i2d((const ASN1_VALUE *)(v), (out), ASN1_ITEM_rptr(T))

    /* 1 if a is algorithm nid with absent or NULL parameters. */
    static int alg_is(const X509_ALGOR *a, int nid)
{
        const ASN1_OBJECT *obj;
        int ptype;

        X509_ALGOR_get0(&obj, &ptype, NULL, a);
        return OBJ_obj2nid(obj) == nid && (ptype == V_ASN1_UNDEF || ptype == V_ASN1_NULL);
}

static const EVP_MD *hash_md(int nid)
{
        return nid == NID_sm3 ? EVP_sm3() : nid == NID_sha256 ? EVP_sha256() : NULL;
}

static const char *hash_name(int nid)
{
        return nid == NID_sm3 ? "sm3" : nid == NID_sha256 ? "sha256" : "?";
}

/* X509_ALGOR for a hash: SM3 without parameters (GM/T usage), SHA-256 with NULL. */
static X509_ALGOR *hash_alg(int nid)
{
        X509_ALGOR *a = X509_ALGOR_new();

        if (a != NULL && X509_ALGOR_set0(a, OBJ_nid2obj(nid),
                                         nid == NID_sm3 ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) != 1) {
                X509_ALGOR_free(a);
                return NULL;
        }
        return a;
}

/* Positive INTEGER i as a canonical big-endian magnitude (0 is one zero byte). */
static int int_bytes(const ASN1_INTEGER *i, uint8_t *out, size_t cap, size_t *len)
{
        BIGNUM *bn = ASN1_INTEGER_to_BN(i, NULL);
        int n, rc = -1;

        if (bn == NULL || BN_is_negative(bn))
                goto out;
        n = BN_num_bytes(bn);
        if (n == 0) {
                out[0] = 0;
                *len = 1;
                rc = 0;
        } else if ((size_t)n <= cap && BN_bn2bin(bn, out) == n) {
                *len = (size_t)n;
                rc = 0;
        }
out:
        gmca_ossl_clear();
        BN_free(bn);
        return rc;
}

static ASN1_INTEGER *int_from_bytes(const uint8_t *b, size_t len)
{
        BIGNUM *bn = BN_bin2bn(b, (int)len, NULL);
        ASN1_INTEGER *i = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;

        BN_free(bn);
        return i;
}

/* ---- TimeStampReq ---- */

/* Strict decode of a TimeStampReq into *q and r; fail gets the failInfo bit. */
static int req_decode(const uint8_t *der, size_t len, TS_REQ **q, struct gmca_tsa_req *r, int *fail,
                      struct gmca_error *e)
{
        const unsigned char *p = der;
        unsigned char *enc = NULL;
        const ASN1_OBJECT *obj;
        const ASN1_INTEGER *nonce;
        TS_MSG_IMPRINT *mi;
        ASN1_OCTET_STRING *msg;
        int n, ptype, nid;
        TS_REQ *t = NULL;

        memset(r, 0, sizeof(*r));
        *fail = GMCA_TSA_FAIL_BAD_DATA_FORMAT;
        if (len > GMCA_TSA_REQ_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "TimeStampReq: over %d bytes",
                                      GMCA_TSA_REQ_MAX);
        if (len == 0 || (t = d2i_TS_REQ(NULL, &p, (long)len)) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "TimeStampReq: not a DER TimeStampReq (RFC 3161 §2.4.1)");
        }
        if (p != der + len) {
                gmca_error_set(e, GMCA_ERR_INVALID, "TimeStampReq: trailing bytes");
                goto fail;
        }
        if ((n = i2d_TS_REQ(t, &enc)) < 0 || (size_t)n != len || memcmp(enc, der, len) != 0) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID, "TimeStampReq: not DER (re-encoding differs)");
                goto fail;
        }
        *fail = GMCA_TSA_FAIL_BAD_REQUEST;
        if (TS_REQ_get_version(t) != 1) {
                gmca_error_set(e, GMCA_ERR_INVALID, "TimeStampReq: version is not 1");
                goto fail;
        }
        if (TS_REQ_get_exts(t) != NULL) {
                *fail = GMCA_TSA_FAIL_UNACCEPTED_EXTENSION;
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "TimeStampReq: extensions are not supported (RFC 3161 §2.4.1)");
                goto fail;
        }
        mi = TS_REQ_get_msg_imprint(t);
        X509_ALGOR_get0(&obj, &ptype, NULL, TS_MSG_IMPRINT_get_algo(mi));
        nid = OBJ_obj2nid(obj);
        if ((nid != NID_sm3 && nid != NID_sha256) ||
            (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)) {
                char buf[OID_TEXT_MAX];

                if (OBJ_obj2txt(buf, sizeof(buf), obj, 1) <= 0)
                        gmca_strlcpy(buf, "?", sizeof(buf));
                *fail = GMCA_TSA_FAIL_BAD_ALG;
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "TimeStampReq: messageImprint hash %s not accepted (SM3 "
                               "1.2.156.10197.1.401 or SHA-256, no parameters)",
                               buf);
                goto fail;
        }
        msg = TS_MSG_IMPRINT_get_msg(mi);
        if (ASN1_STRING_length(msg) != 32) {
                *fail = GMCA_TSA_FAIL_BAD_DATA_FORMAT;
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "TimeStampReq: hashedMessage is %d bytes, %s gives 32",
                               ASN1_STRING_length(msg), hash_name(nid));
                goto fail;
        }
        r->hash_nid = nid;
        r->digest_len = 32;
        memcpy(r->digest, ASN1_STRING_get0_data(msg), 32);
        if ((obj = TS_REQ_get_policy_id(t)) != NULL) {
                n = OBJ_obj2txt(r->policy, sizeof(r->policy), obj, 1);
                if (n <= 0 || (size_t)n >= sizeof(r->policy)) {
                        gmca_ossl_clear();
                        *fail = GMCA_TSA_FAIL_UNACCEPTED_POLICY;
                        gmca_error_set(e, GMCA_ERR_INVALID, "TimeStampReq: reqPolicy too long");
                        goto fail;
                }
        }
        if ((nonce = TS_REQ_get_nonce(t)) != NULL &&
            int_bytes(nonce, r->nonce, sizeof(r->nonce), &r->nonce_len) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "TimeStampReq: nonce negative or over %d bytes",
                               GMCA_TSA_NONCE_MAX);
                goto fail;
        }
        r->cert_req = TS_REQ_get_cert_req(t) ? 1 : 0;
        OPENSSL_free(enc);
        if (q != NULL)
                *q = t;
        else
                TS_REQ_free(t);
        return 0;
fail:
        OPENSSL_free(enc);
        TS_REQ_free(t);
        memset(r, 0, sizeof(*r));
        return e != NULL && e->code != 0 ? e->code : GMCA_ERR_INVALID;
}

int gmca_tsa_req_parse(const uint8_t *der, size_t len, struct gmca_tsa_req *r, int *fail,
                       struct gmca_error *e)
{
        int f = 0, rc = req_decode(der, len, NULL, r, &f, e);

        if (rc != 0 && fail != NULL)
                *fail = f;
        return rc;
}

int gmca_tsa_req_init(struct gmca_tsa_req *r, int hash_nid, const uint8_t *digest, size_t len,
                      int no_nonce, int cert_req, struct gmca_error *e)
{
        int rc;

        memset(r, 0, sizeof(*r));
        if (hash_md(hash_nid) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "time-stamp request: hash is not SM3 "
                                      "or SHA-256");
        if (len != 32)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "time-stamp request: a %s digest is 32 bytes, not %zu",
                                      hash_name(hash_nid), len);
        r->hash_nid = hash_nid;
        memcpy(r->digest, digest, len);
        r->digest_len = len;
        r->cert_req = cert_req ? 1 : 0;
        if (!no_nonce) {
                if ((rc = gmca_rand_bytes(r->nonce, 8, e)) != 0)
                        return rc;
                if (r->nonce[0] == 0)
                        r->nonce[0] = 1; /* canonical magnitude: no leading zero byte */
                r->nonce_len = 8;
        }
        return 0;
}

int gmca_tsa_req_build(const struct gmca_tsa_req *r, uint8_t **der, size_t *len,
                       struct gmca_error *e)
{
        TS_REQ *q = TS_REQ_new();
        TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
        X509_ALGOR *alg = hash_alg(r->hash_nid);
        ASN1_OBJECT *pol = NULL;
        ASN1_INTEGER *nonce = NULL;
        unsigned char *out = NULL;
        int n, rc = GMCA_ERR_INTERNAL;

        if (hash_md(r->hash_nid) == NULL || r->digest_len != 32 ||
            r->nonce_len > GMCA_TSA_NONCE_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "TimeStampReq: bad hash, digest or nonce");
                goto out;
        }
        if (q == NULL || mi == NULL || alg == NULL || TS_REQ_set_version(q, 1) != 1 ||
            TS_MSG_IMPRINT_set_algo(mi, alg) != 1 ||
            TS_MSG_IMPRINT_set_msg(mi, (unsigned char *)r->digest, (int)r->digest_len) != 1 ||
            TS_REQ_set_msg_imprint(q, mi) != 1) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "TimeStampReq: cannot build");
                goto out;
        }
        if (r->policy[0] != '\0' &&
            ((pol = OBJ_txt2obj(r->policy, 1)) == NULL || TS_REQ_set_policy_id(q, pol) != 1)) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID, "TimeStampReq: bad policy OID \"%s\"",
                                     r->policy);
                goto out;
        }
        if (r->nonce_len > 0 && ((nonce = int_from_bytes(r->nonce, r->nonce_len)) == NULL ||
                                 TS_REQ_set_nonce(q, nonce) != 1)) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "TimeStampReq: cannot set the nonce");
                goto out;
        }
        if (TS_REQ_set_cert_req(q, r->cert_req) != 1 || (n = i2d_TS_REQ(q, &out)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "TimeStampReq: cannot encode");
                goto out;
        }
        *der = out;
        *len = (size_t)n;
        out = NULL;
        rc = 0;
out:
        OPENSSL_free(out);
        ASN1_INTEGER_free(nonce);
        ASN1_OBJECT_free(pol);
        X509_ALGOR_free(alg);
        TS_MSG_IMPRINT_free(mi);
        TS_REQ_free(q);
        return rc;
}

/* ---- the TSA certificate ---- */

int gmca_tsa_cert_check(X509 *cert, struct gmca_error *e)
{
        EXTENDED_KEY_USAGE *eku = NULL;
        uint32_t ku;
        int idx, crit = 0, rc = GMCA_ERR_POLICY;

        if (X509_get0_pubkey(cert) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "TSA certificate: unreadable public key");
        }
        if (gmca_sm2_is_sm2(X509_get0_pubkey(cert), e) != 0)
                return e->code;
        if ((idx = X509_get_ext_by_NID(cert, NID_ext_key_usage, -1)) < 0)
                return gmca_error_set(e, rc,
                                      "TSA certificate: no extKeyUsage (RFC 3161 §2.3: "
                                      "timeStamping only, critical)");
        if (X509_get_ext_by_NID(cert, NID_ext_key_usage, idx) >= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "TSA certificate: two extKeyUsage");
        if (!X509_EXTENSION_get_critical(X509_get_ext(cert, idx)))
                return gmca_error_set(
                    e, rc, "TSA certificate: extKeyUsage is not critical (RFC 3161 §2.3)");
        if ((eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL)) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID, "TSA certificate: bad extKeyUsage");
        }
        if (sk_ASN1_OBJECT_num(eku) != 1 ||
            OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) != NID_time_stamp) {
                gmca_error_set(e, rc,
                               "TSA certificate: extKeyUsage must be timeStamping only "
                               "(RFC 3161 §2.3)");
                goto out;
        }
        ku = X509_get_key_usage(cert);
        if (ku != UINT32_MAX && (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0) {
                gmca_error_set(e, rc, "TSA certificate: keyUsage allows no signatures");
                goto out;
        }
        rc = 0;
out:
        EXTENDED_KEY_USAGE_free(eku);
        return rc;
}

/* ---- the token ---- */

/* GeneralizedTime text of us (microseconds), with milliseconds when non-zero. */
static ASN1_GENERALIZEDTIME *gen_time(int64_t us, struct gmca_error *e)
{
        ASN1_GENERALIZEDTIME *t = NULL;
        time_t sec = (time_t)(us / 1000000);
        int ms = (int)(us % 1000000 / 1000);
        char buf[64], frac[8] = "";
        struct tm tm;

        if (us < 0 || gmtime_r(&sec, &tm) == NULL || tm.tm_year + 1900 > 9999) {
                gmca_error_set(e, GMCA_ERR_INTERNAL, "TSTInfo: clock out of range");
                return NULL;
        }
        if (ms > 0) {
                /* X.690 §11.7: no trailing zeros in the fraction. */
                snprintf(frac, sizeof(frac), ".%03d", ms);
                for (size_t n = strlen(frac); frac[n - 1] == '0'; n--)
                        frac[n - 1] = '\0';
        }
        snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        if ((t = ASN1_GENERALIZEDTIME_new()) == NULL ||
            ASN1_GENERALIZEDTIME_set_string(t, buf) != 1) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "TSTInfo: cannot set genTime");
                ASN1_GENERALIZEDTIME_free(t);
                return NULL;
        }
        return t;
}

/* DER TSTInfo answering q. *der: OPENSSL_free. */
static int tst_info(X509 *cert, const struct gmca_tsa_opts *o, const char *policy, TS_REQ *q,
                    uint8_t **der, size_t *len, struct gmca_error *e)
{
        TS_TST_INFO *ti = TS_TST_INFO_new();
        ASN1_OBJECT *pol = OBJ_txt2obj(policy, 1);
        ASN1_INTEGER *serial = NULL, *ms = NULL;
        ASN1_GENERALIZEDTIME *gt = NULL;
        TS_ACCURACY *acc = NULL;
        GENERAL_NAME *gn = NULL;
        uint8_t sbytes[GMCA_SERIAL_LEN];
        unsigned char *out = NULL;
        int n, rc;

        if ((rc = gmca_serial_random(sbytes, e)) != 0)
                goto out;
        rc = GMCA_ERR_NOMEM;
        if ((gt = gen_time(o->now_us != 0 ? o->now_us : gmca_now_us(), e)) == NULL) {
                rc = e->code;
                goto out;
        }
        if (ti == NULL || pol == NULL ||
            (serial = int_from_bytes(sbytes, sizeof(sbytes))) == NULL ||
            TS_TST_INFO_set_version(ti, 1) != 1 || TS_TST_INFO_set_policy_id(ti, pol) != 1 ||
            TS_TST_INFO_set_msg_imprint(ti, TS_REQ_get_msg_imprint(q)) != 1 ||
            TS_TST_INFO_set_serial(ti, serial) != 1 || TS_TST_INFO_set_time(ti, gt) != 1 ||
            (TS_REQ_get_nonce(q) != NULL && TS_TST_INFO_set_nonce(ti, TS_REQ_get_nonce(q)) != 1)) {
                gmca_error_ossl(e, rc, "TSTInfo: cannot build");
                goto out;
        }
        if (o->accuracy_ms > 0 &&
            ((acc = TS_ACCURACY_new()) == NULL || (ms = ASN1_INTEGER_new()) == NULL ||
             ASN1_INTEGER_set(ms, o->accuracy_ms) != 1 || TS_ACCURACY_set_millis(acc, ms) != 1 ||
             TS_TST_INFO_set_accuracy(ti, acc) != 1)) {
                gmca_error_ossl(e, rc, "TSTInfo: cannot set accuracy");
                goto out;
        }
        if (o->include_tsa) {
                X509_NAME *name = X509_NAME_dup(X509_get_subject_name(cert));

                if (name == NULL || (gn = GENERAL_NAME_new()) == NULL) {
                        X509_NAME_free(name);
                        gmca_error_ossl(e, rc, "TSTInfo: cannot set tsa");
                        goto out;
                }
                GENERAL_NAME_set0_value(gn, GEN_DIRNAME, name);
                if (TS_TST_INFO_set_tsa(ti, gn) != 1) {
                        gmca_error_ossl(e, rc, "TSTInfo: cannot set tsa");
                        goto out;
                }
        }
        if ((n = i2d_TS_TST_INFO(ti, &out)) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "TSTInfo: cannot encode");
                goto out;
        }
        *der = out;
        *len = (size_t)n;
        rc = 0;
out:
        GENERAL_NAME_free(gn);
        ASN1_INTEGER_free(ms);
        TS_ACCURACY_free(acc);
        ASN1_GENERALIZEDTIME_free(gt);
        ASN1_INTEGER_free(serial);
        ASN1_OBJECT_free(pol);
        TS_TST_INFO_free(ti);
        return rc;
}

/* DER SigningCertificateV2 naming cert by its SM3 hash and issuer/serial. */
static int scv2_der(X509 *cert, uint8_t **der, size_t *len, struct gmca_error *e)
{
        TSA_SCV2 *s = NEW(TSA_SCV2);
        TSA_CERTID *id = NEW(TSA_CERTID);
        GENERAL_NAME *gn = GENERAL_NAME_new();
        unsigned char *cder = NULL, *out = NULL;
        uint8_t h[GMCA_SM3_LEN];
        int n, clen, rc = GMCA_ERR_NOMEM;

        if (s == NULL || id == NULL || gn == NULL)
                goto fail;
        if ((clen = i2d_X509(cert, &cder)) <= 0 || gmca_sm3(cder, (size_t)clen, h) != 0) {
                rc = GMCA_ERR_INTERNAL;
                goto fail;
        }
        if ((id->alg = hash_alg(NID_sm3)) == NULL ||
            ASN1_OCTET_STRING_set(id->hash, h, sizeof(h)) != 1 ||
            (id->is = NEW(TSA_ISSUER_SERIAL)) == NULL)
                goto fail;
        gn->type = GEN_DIRNAME;
        if ((gn->d.directoryName = X509_NAME_dup(X509_get_issuer_name(cert))) == NULL ||
            sk_GENERAL_NAME_push(id->is->issuer, gn) <= 0)
                goto fail;
        gn = NULL;
        ASN1_INTEGER_free(id->is->serial);
        if ((id->is->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(cert))) == NULL ||
            sk_TSA_CERTID_push(s->certs, id) <= 0)
                goto fail;
        id = NULL;
        if ((n = I2D(TSA_SCV2, s, &out)) <= 0) {
                rc = GMCA_ERR_INTERNAL;
                goto fail;
        }
        *der = out;
        *len = (size_t)n;
        OPENSSL_free(cder);
        FREE(TSA_SCV2, s);
        return 0;
fail:
        OPENSSL_free(cder);
        GENERAL_NAME_free(gn);
        FREE(TSA_CERTID, id);
        FREE(TSA_SCV2, s);
        return gmca_error_ossl(e, rc, "signingCertificateV2: cannot build");
}

/* Append attribute nid with one value of ASN.1 type (ownership of value moves). */
static int attr_add(STACK_OF(X509_ATTRIBUTE) * sk, int nid, int type, void *value)
{
        X509_ATTRIBUTE *a = X509_ATTRIBUTE_create(nid, type, value);

        if (a == NULL)
                return -1;
        if (sk_X509_ATTRIBUTE_push(sk, a) <= 0) {
                X509_ATTRIBUTE_free(a);
                return -1;
        }
        return 0;
}

/* The signed token for the decoded request q. */
static int make_token(X509 *cert, EVP_PKEY *key, const struct gmca_tsa_opts *o, const char *policy,
                      TS_REQ *q, int cert_req, TSA_TOKEN **token, struct gmca_error *e)
{
        TSA_TOKEN *t = NEW(TSA_TOKEN);
        GMCA_SIGNER *si = NEW(GMCA_SIGNER);
        uint8_t *tst = NULL, *scv2 = NULL, *sig = NULL;
        unsigned char *attrs = NULL;
        size_t tstlen = 0, scv2len = 0, siglen = 0;
        uint8_t md[GMCA_SM3_LEN];
        ASN1_OCTET_STRING *os = NULL;
        ASN1_STRING *seq = NULL;
        ASN1_UTCTIME *st = NULL;
        X509_ALGOR *alg = NULL;
        int n, rc;

        if (t == NULL || si == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "time-stamp token: out of memory");
                goto out;
        }
        if ((rc = tst_info(cert, o, policy, q, &tst, &tstlen, e)) != 0 ||
            (rc = scv2_der(cert, &scv2, &scv2len, e)) != 0)
                goto out;
        rc = GMCA_ERR_NOMEM;
        if (gmca_sm3(tst, tstlen, md) != 0 || (si->auth = sk_X509_ATTRIBUTE_new_null()) == NULL ||
            attr_add(si->auth, NID_pkcs9_contentType, V_ASN1_OBJECT,
                     OBJ_nid2obj(NID_id_smime_ct_TSTInfo)) != 0 ||
            (os = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(os, md, sizeof(md)) != 1 ||
            attr_add(si->auth, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, os) != 0)
                goto fail;
        os = NULL;
        if ((seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL ||
            ASN1_STRING_set(seq, scv2, (int)scv2len) != 1 ||
            attr_add(si->auth, NID_id_smime_aa_signingCertificateV2, V_ASN1_SEQUENCE, seq) != 0)
                goto fail;
        seq = NULL;
        if (o->signing_time) {
                if ((st = ASN1_UTCTIME_set(
                         NULL, (time_t)((o->now_us != 0 ? o->now_us : gmca_now_us()) / 1000000))) ==
                        NULL ||
                    attr_add(si->auth, NID_pkcs9_signingTime, V_ASN1_UTCTIME, st) != 0)
                        goto fail;
                st = NULL;
        }
        if ((n = I2D(GMCA_ATTRS, si->auth, &attrs)) <= 0) {
                rc = GMCA_ERR_INTERNAL;
                goto fail;
        }
        if ((rc = gmca_sm2_sign(key, o->sm2_id, attrs, (size_t)n, &sig, &siglen, e)) != 0)
                goto out;
        rc = GMCA_ERR_NOMEM;
        X509_NAME_free(si->ias->issuer);
        ASN1_INTEGER_free(si->ias->serial);
        si->ias->serial = NULL;
        if ((si->ias->issuer = X509_NAME_dup(X509_get_issuer_name(cert))) == NULL ||
            (si->ias->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(cert))) == NULL ||
            ASN1_INTEGER_set(si->version, 1) != 1 ||
            X509_ALGOR_set0(si->digest_alg, OBJ_nid2obj(NID_sm3), V_ASN1_UNDEF, NULL) != 1 ||
            X509_ALGOR_set0(si->sig_alg, OBJ_nid2obj(NID_SM2_with_SM3), V_ASN1_UNDEF, NULL) != 1 ||
            ASN1_OCTET_STRING_set(si->sig, sig, (int)siglen) != 1)
                goto fail;
        if (ASN1_INTEGER_set(t->sd->version, 3) != 1 || (alg = hash_alg(NID_sm3)) == NULL ||
            sk_X509_ALGOR_push(t->sd->digest_algs, alg) <= 0)
                goto fail;
        alg = NULL;
        ASN1_OBJECT_free(t->type);
        ASN1_OBJECT_free(t->sd->eci->type);
        t->type = OBJ_nid2obj(NID_pkcs7_signed);
        t->sd->eci->type = OBJ_nid2obj(NID_id_smime_ct_TSTInfo);
        if ((t->sd->eci->content = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(t->sd->eci->content, tst, (int)tstlen) != 1)
                goto fail;
        if (cert_req) {
                if ((t->sd->certs = sk_X509_new_null()) == NULL || X509_up_ref(cert) != 1)
                        goto fail;
                if (sk_X509_push(t->sd->certs, cert) <= 0) {
                        X509_free(cert);
                        goto fail;
                }
        }
        if (sk_GMCA_SIGNER_push(t->sd->signers, si) <= 0)
                goto fail;
        si = NULL;
        *token = t;
        t = NULL;
        rc = 0;
        goto out;
fail:
        rc = gmca_error_ossl(e, rc, "time-stamp token: cannot build");
out:
        X509_ALGOR_free(alg);
        ASN1_UTCTIME_free(st);
        ASN1_STRING_free(seq);
        ASN1_OCTET_STRING_free(os);
        OPENSSL_free(attrs);
        OPENSSL_free(sig);
        OPENSSL_free(scv2);
        OPENSSL_free(tst);
        FREE(GMCA_SIGNER, si);
        FREE(TSA_TOKEN, t);
        return rc;
}

static const struct {
        int bit;
        const char *name;
} fail_names[] = {
    {GMCA_TSA_FAIL_BAD_ALG, "badAlg"},
    {GMCA_TSA_FAIL_BAD_REQUEST, "badRequest"},
    {GMCA_TSA_FAIL_BAD_DATA_FORMAT, "badDataFormat"},
    {GMCA_TSA_FAIL_TIME_NOT_AVAILABLE, "timeNotAvailable"},
    {GMCA_TSA_FAIL_UNACCEPTED_POLICY, "unacceptedPolicy"},
    {GMCA_TSA_FAIL_UNACCEPTED_EXTENSION, "unacceptedExtension"},
    {GMCA_TSA_FAIL_SYSTEM_FAILURE, "systemFailure"},
};

int gmca_tsa_reply(X509 *cert, EVP_PKEY *key, const struct gmca_tsa_opts *o, const uint8_t *req,
                   size_t reqlen, uint8_t **resp, size_t *resplen, int *status,
                   struct gmca_error *e)
{
        static const struct gmca_tsa_opts defaults = {0};
        const char *policy;
        struct gmca_error re = {0};
        struct gmca_tsa_req r;
        TSA_RESP *rs = NEW(TSA_RESP);
        ASN1_OBJECT *pol = NULL;
        ASN1_UTF8STRING *text = NULL;
        unsigned char *out = NULL;
        TS_REQ *q = NULL;
        int n, fail = -1, rc;

        if (o == NULL)
                o = &defaults;
        policy = o->policy != NULL ? o->policy : GMCA_TSA_POLICY_DEFAULT;
        if (rs == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "TimeStampResp: out of memory");
                goto out;
        }
        if ((pol = OBJ_txt2obj(policy, 1)) == NULL || strlen(policy) >= GMCA_TSA_OID_MAX) {
                gmca_ossl_clear();
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "TSA policy: \"%.64s\" is not an OID",
                                    policy);
                goto out;
        }
        if (o->accuracy_ms < 0 || o->accuracy_ms > 999) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "TSA accuracy: 0..999 ms");
                goto out;
        }
        if ((rc = gmca_tsa_cert_check(cert, e)) != 0)
                goto out;
        if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
                gmca_ossl_clear();
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "TSA key: not the TSA certificate's key");
                goto out;
        }
        if (req_decode(req, reqlen, &q, &r, &fail, &re) == 0 && r.policy[0] != '\0' &&
            strcmp(r.policy, policy) != 0) {
                fail = GMCA_TSA_FAIL_UNACCEPTED_POLICY;
                gmca_error_set(&re, GMCA_ERR_INVALID, "TimeStampReq: reqPolicy %s is not offered",
                               r.policy);
        }
        if (re.code == 0) {
                if ((rc = make_token(cert, key, o, policy, q, r.cert_req, &rs->token, e)) != 0)
                        goto out;
                *status = 0;
        } else {
                /* A rejection names the cause in statusString and failInfo. */
                if ((text = ASN1_UTF8STRING_new()) == NULL ||
                    ASN1_STRING_set(text, re.msg, (int)strlen(re.msg)) != 1 ||
                    (rs->status->text = sk_ASN1_UTF8STRING_new_null()) == NULL ||
                    sk_ASN1_UTF8STRING_push(rs->status->text, text) <= 0) {
                        rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "TimeStampResp: out of memory");
                        goto out;
                }
                text = NULL;
                if ((rs->status->fail = ASN1_BIT_STRING_new()) == NULL ||
                    ASN1_BIT_STRING_set_bit(rs->status->fail, fail, 1) != 1) {
                        rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "TimeStampResp: out of memory");
                        goto out;
                }
                *status = 2;
        }
        if (ASN1_INTEGER_set(rs->status->status, *status) != 1 ||
            (n = I2D(TSA_RESP, rs, &out)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "TimeStampResp: cannot encode");
                goto out;
        }
        *resp = out;
        *resplen = (size_t)n;
        rc = 0;
out:
        ASN1_UTF8STRING_free(text);
        ASN1_OBJECT_free(pol);
        TS_REQ_free(q);
        FREE(TSA_RESP, rs);
        return rc;
}

/* ---- verification ---- */

/* 0 if s is a DER GeneralizedTime: YYYYMMDDHHMMSS[.f*]Z, no trailing zero in f. */
static int gentime_der(const ASN1_GENERALIZEDTIME *t)
{
        const unsigned char *s = ASN1_STRING_get0_data(t);
        int n = ASN1_STRING_length(t), i;

        if (n < 15 || s[n - 1] != 'Z')
                return -1;
        for (i = 0; i < 14; i++)
                if (s[i] < '0' || s[i] > '9')
                        return -1;
        if (n == 15)
                return 0;
        if (s[14] != '.' || n < 17 || s[n - 2] == '0')
                return -1;
        for (i = 15; i < n - 1; i++)
                if (s[i] < '0' || s[i] > '9')
                        return -1;
        return 0;
}

static void hex_of(const uint8_t *b, size_t len, char *out, size_t cap)
{
        if (2 * len + 1 > cap)
                len = (cap - 1) / 2;
        gmca_hex_upper(b, len, out);
        out[2 * len] = '\0';
}

/* The certificate of the signer sid among certs, re-read strictly. */
static X509 *find_cert(STACK_OF(X509) * certs, const GMCA_IAS *sid, struct gmca_error *e)
{
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *c = sk_X509_value(certs, i);
                unsigned char *der = NULL;
                X509 *x;
                int n;

                if (X509_NAME_cmp(X509_get_issuer_name(c), sid->issuer) != 0 ||
                    ASN1_INTEGER_cmp(X509_get0_serialNumber(c), sid->serial) != 0)
                        continue;
                if ((n = i2d_X509(c, &der)) <= 0) {
                        gmca_error_ossl(e, GMCA_ERR_INVALID, "token: unreadable certificate");
                        return NULL;
                }
                x = gmca_cert_parse(der, (size_t)n, e);
                OPENSSL_free(der);
                return x;
        }
        gmca_error_set(e, GMCA_ERR_INVALID,
                       "token: the TSA certificate is not in the token (certReq was false); "
                       "give the TSA certificate");
        return NULL;
}

/* Check signingCertificateV2 (DER in v) names cert (RFC 5816 §2.2.1). */
static int check_scv2(const ASN1_STRING *v, X509 *cert, struct gmca_error *e)
{
        const uint8_t *der = ASN1_STRING_get0_data(v);
        TSA_SCV2 *s;
        TSA_CERTID *id;
        unsigned char *cder = NULL;
        uint8_t h[EVP_MAX_MD_SIZE];
        unsigned int hl = 0;
        int nid = NID_sha256, clen, rc = GMCA_ERR_VERIFY;

        if ((s = (TSA_SCV2 *)gmca_der_decode(ASN1_ITEM_rptr(TSA_SCV2), der,
                                             (size_t)ASN1_STRING_length(v), "signingCertificateV2",
                                             e)) == NULL)
                return e->code;
        if (sk_TSA_CERTID_num(s->certs) < 1 || sk_TSA_CERTID_num(s->certs) > GMCA_TSA_CERTS_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "signingCertificateV2: no ESSCertIDv2");
                goto out;
        }
        id = sk_TSA_CERTID_value(s->certs, 0);
        if (id->alg != NULL) {
                nid = alg_is(id->alg, NID_sm3)      ? NID_sm3
                      : alg_is(id->alg, NID_sha256) ? NID_sha256
                                                    : 0;
                if (nid == 0) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "ESSCertIDv2: hashAlgorithm is not SM3 or SHA-256");
                        goto out;
                }
        }
        if ((clen = i2d_X509(cert, &cder)) <= 0 ||
            EVP_Digest(cder, (size_t)clen, h, &hl, hash_md(nid), NULL) != 1) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "ESSCertIDv2: cannot hash");
                goto out;
        }
        if ((size_t)ASN1_STRING_length(id->hash) != hl ||
            memcmp(ASN1_STRING_get0_data(id->hash), h, hl) != 0) {
                gmca_error_set(e, rc,
                               "ESSCertIDv2: certHash is not the TSA certificate's "
                               "(RFC 5816 §2.2.1)");
                goto out;
        }
        if (id->is != NULL) {
                const GENERAL_NAME *gn = sk_GENERAL_NAME_num(id->is->issuer) == 1
                                             ? sk_GENERAL_NAME_value(id->is->issuer, 0)
                                             : NULL;

                if (gn == NULL || gn->type != GEN_DIRNAME ||
                    X509_NAME_cmp(gn->d.directoryName, X509_get_issuer_name(cert)) != 0 ||
                    ASN1_INTEGER_cmp(id->is->serial, X509_get0_serialNumber(cert)) != 0) {
                        gmca_error_set(e, rc,
                                       "ESSCertIDv2: issuerSerial is not the TSA "
                                       "certificate's");
                        goto out;
                }
        }
        rc = 0;
out:
        OPENSSL_free(cder);
        FREE(TSA_SCV2, s);
        return rc;
}

/* Check the signed attributes of si against the eContent and cert. */
static int check_attrs(const GMCA_SIGNER *si, const ASN1_OCTET_STRING *content, X509 *cert,
                       struct gmca_error *e)
{
        uint8_t md[GMCA_SM3_LEN];
        unsigned seen = 0;
        int n = sk_X509_ATTRIBUTE_num(si->auth), rc;

        if (n < 1 || n > GMCA_TSA_ATTRS_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SignerInfo: 1 to %d signedAttrs needed (RFC 5652 §5.3)",
                                      GMCA_TSA_ATTRS_MAX);
        if (gmca_sm3(ASN1_STRING_get0_data(content), (size_t)ASN1_STRING_length(content), md) != 0)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "SM3 failed");
        for (int i = 0; i < n; i++) {
                X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(si->auth, i);
                int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a));
                ASN1_TYPE *v = X509_ATTRIBUTE_get0_type(a, 0);
                unsigned bit = nid == NID_pkcs9_contentType                  ? 1u
                               : nid == NID_pkcs9_messageDigest              ? 2u
                               : nid == NID_id_smime_aa_signingCertificateV2 ? 4u
                               : nid == NID_pkcs9_signingTime                ? 8u
                                                                             : 0u;

                if (bit == 0)
                        continue; /* RFC 5652 lets other attributes be present */
                if ((seen & bit) != 0 || X509_ATTRIBUTE_count(a) != 1 || v == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "signedAttrs: %s twice or not one value",
                                              OBJ_nid2sn(nid));
                seen |= bit;
                if (bit == 1u && (v->type != V_ASN1_OBJECT ||
                                  OBJ_obj2nid(v->value.object) != NID_id_smime_ct_TSTInfo))
                        return gmca_error_set(e, GMCA_ERR_VERIFY,
                                              "signedAttrs: contentType is not id-ct-TSTInfo");
                if (bit == 2u &&
                    (v->type != V_ASN1_OCTET_STRING ||
                     ASN1_STRING_length(v->value.octet_string) != GMCA_SM3_LEN ||
                     memcmp(ASN1_STRING_get0_data(v->value.octet_string), md, GMCA_SM3_LEN) != 0))
                        return gmca_error_set(e, GMCA_ERR_VERIFY,
                                              "signedAttrs: messageDigest is not the SM3 of the "
                                              "TSTInfo");
                if (bit == 4u) {
                        if (v->type != V_ASN1_SEQUENCE)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "signedAttrs: signingCertificateV2 is not a "
                                                      "SEQUENCE");
                        if ((rc = check_scv2(v->value.sequence, cert, e)) != 0)
                                return rc;
                }
                if (bit == 8u && v->type != V_ASN1_UTCTIME && v->type != V_ASN1_GENERALIZEDTIME)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "signedAttrs: signingTime is not a Time");
        }
        if ((seen & 7u) != 7u)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "signedAttrs: contentType, messageDigest and "
                                      "signingCertificateV2 are required (RFC 3161 §2.4.2, RFC "
                                      "5816)");
        return 0;
}

/* Strict decode of a DER TSTInfo (libcrypto exports no ASN1_ITEM for it). */
static TS_TST_INFO *tst_decode(const uint8_t *der, size_t len, struct gmca_error *e)
{
        const unsigned char *p = der;
        unsigned char *enc = NULL;
        TS_TST_INFO *ti;
        int n;

        if (len == 0 || len > GMCA_TSA_RESP_MAX ||
            (ti = d2i_TS_TST_INFO(NULL, &p, (long)len)) == NULL) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID, "TSTInfo: not a DER TSTInfo (RFC 3161 §2.4.2)");
                return NULL;
        }
        if (p != der + len || (n = i2d_TS_TST_INFO(ti, &enc)) < 0 || (size_t)n != len ||
            memcmp(enc, der, len) != 0) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID, "TSTInfo: trailing bytes or not DER");
                OPENSSL_free(enc);
                TS_TST_INFO_free(ti);
                return NULL;
        }
        OPENSSL_free(enc);
        return ti;
}

/* Check the TSTInfo der against x; fill info. */
static int check_tst(const ASN1_OCTET_STRING *content, const struct gmca_tsa_expect *x, X509 *cert,
                     int has_certs, struct gmca_tsa_info *info, struct gmca_error *e)
{
        TS_TST_INFO *ti;
        const ASN1_OBJECT *obj;
        const ASN1_GENERALIZEDTIME *gt;
        const TS_MSG_IMPRINT *mi;
        const ASN1_OCTET_STRING *msg;
        const ASN1_INTEGER *nonce, *serial;
        const TS_ACCURACY *acc;
        uint8_t nb[GMCA_TSA_NONCE_MAX], sb[GMCA_TSA_NONCE_MAX];
        size_t nlen = 0, slen = 0;
        struct tm tm;
        int nid, rc = GMCA_ERR_INVALID;
        char polbuf[GMCA_TSA_OID_MAX];

        ti = tst_decode(ASN1_STRING_get0_data(content), (size_t)ASN1_STRING_length(content), e);
        if (ti == NULL)
                return e->code;
        if (TS_TST_INFO_get_version(ti) != 1) {
                gmca_error_set(e, rc, "TSTInfo: version is not 1");
                goto out;
        }
        obj = TS_TST_INFO_get_policy_id(ti);
        if (OBJ_obj2txt(polbuf, sizeof(polbuf), obj, 1) <= 0 ||
            strlen(polbuf) + 1 >= sizeof(polbuf)) {
                gmca_error_set(e, rc, "TSTInfo: bad policy");
                goto out;
        }
        mi = TS_TST_INFO_get_msg_imprint(ti);
        msg = TS_MSG_IMPRINT_get_msg((TS_MSG_IMPRINT *)mi);
        nid = alg_is(TS_MSG_IMPRINT_get_algo((TS_MSG_IMPRINT *)mi), NID_sm3)      ? NID_sm3
              : alg_is(TS_MSG_IMPRINT_get_algo((TS_MSG_IMPRINT *)mi), NID_sha256) ? NID_sha256
                                                                                  : 0;
        if (nid == 0 || ASN1_STRING_length(msg) != 32) {
                gmca_error_set(e, rc, "TSTInfo: messageImprint is not an SM3 or SHA-256 digest");
                goto out;
        }
        serial = TS_TST_INFO_get_serial(ti);
        if (int_bytes(serial, sb, sizeof(sb), &slen) != 0) {
                gmca_error_set(e, rc, "TSTInfo: serialNumber negative or over %d bytes",
                               GMCA_TSA_NONCE_MAX);
                goto out;
        }
        nonce = TS_TST_INFO_get_nonce(ti);
        if (nonce != NULL && int_bytes(nonce, nb, sizeof(nb), &nlen) != 0) {
                gmca_error_set(e, rc, "TSTInfo: nonce negative or over %d bytes",
                               GMCA_TSA_NONCE_MAX);
                goto out;
        }
        gt = TS_TST_INFO_get_time(ti);
        if (gentime_der(gt) != 0 || ASN1_TIME_to_tm(gt, &tm) != 1) {
                gmca_ossl_clear();
                gmca_error_set(e, rc,
                               "TSTInfo: genTime is not a DER GeneralizedTime "
                               "(RFC 3161 §2.4.2)");
                goto out;
        }
        rc = GMCA_ERR_VERIFY;
        if (x->has_data) {
                uint8_t h[EVP_MAX_MD_SIZE];
                unsigned int hl = 0;

                if (EVP_Digest(x->data, x->data_len, h, &hl, hash_md(nid), NULL) != 1) {
                        rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "cannot hash the data");
                        goto out;
                }
                if (hl != 32 || memcmp(h, ASN1_STRING_get0_data(msg), 32) != 0) {
                        gmca_error_set(e, rc, "TSTInfo: messageImprint is not the %s of the data",
                                       hash_name(nid));
                        goto out;
                }
        }
        if (x->digest != NULL &&
            (x->digest_len != 32 || memcmp(x->digest, ASN1_STRING_get0_data(msg), 32) != 0)) {
                gmca_error_set(e, rc, "TSTInfo: messageImprint is not the given digest");
                goto out;
        }
        if (x->nonce != NULL) {
                size_t skip = 0;

                while (skip + 1 < x->nonce_len && x->nonce[skip] == 0)
                        skip++; /* compare magnitudes */
                if (nonce == NULL || nlen != x->nonce_len - skip ||
                    memcmp(nb, x->nonce + skip, nlen) != 0) {
                        gmca_error_set(e, rc,
                                       "TSTInfo: nonce does not match the one sent "
                                       "(RFC 3161 §2.4.2)");
                        goto out;
                }
        }
        if (x->req != NULL) {
                if (x->req->hash_nid != nid ||
                    memcmp(x->req->digest, ASN1_STRING_get0_data(msg), 32) != 0) {
                        gmca_error_set(e, rc, "TSTInfo: messageImprint differs from the request");
                        goto out;
                }
                if (x->req->nonce_len > 0 &&
                    (nlen != x->req->nonce_len || memcmp(nb, x->req->nonce, nlen) != 0)) {
                        gmca_error_set(e, rc,
                                       "TSTInfo: nonce does not match the request "
                                       "(RFC 3161 §2.4.2)");
                        goto out;
                }
                if (x->req->policy[0] != '\0' && strcmp(x->req->policy, polbuf) != 0) {
                        gmca_error_set(e, rc, "TSTInfo: policy %s, the request asked for %s",
                                       polbuf, x->req->policy);
                        goto out;
                }
                if (x->req->cert_req && !has_certs) {
                        gmca_error_set(e, rc,
                                       "token: certReq was set but the TSA certificate "
                                       "is missing");
                        goto out;
                }
        }
        {
                const unsigned char *s = ASN1_STRING_get0_data(gt);
                int n = ASN1_STRING_length(gt);

                info->gen_time = timegm(&tm);
                snprintf(info->gen_time_text, sizeof(info->gen_time_text),
                         "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s%.*s", s, s + 4, s + 6, s + 8, s + 10,
                         s + 12, n - 14, s + 14);
                hex_of(sb, slen, info->serial, sizeof(info->serial));
                gmca_strlcpy(info->policy, polbuf, sizeof(info->policy));
                gmca_strlcpy(info->hash, hash_name(nid), sizeof(info->hash));
                hex_of(ASN1_STRING_get0_data(msg), 32, info->digest, sizeof(info->digest));
                info->nonce[0] = '\0';
                if (nonce != NULL)
                        hex_of(nb, nlen, info->nonce, sizeof(info->nonce));
                info->accuracy_ms = -1;
                if ((acc = TS_TST_INFO_get_accuracy(ti)) != NULL) {
                        const ASN1_INTEGER *sec = TS_ACCURACY_get_seconds(acc);
                        const ASN1_INTEGER *ms = TS_ACCURACY_get_millis(acc);
                        long sv = sec != NULL ? ASN1_INTEGER_get(sec) : 0;
                        long mv = ms != NULL ? ASN1_INTEGER_get(ms) : 0;

                        if (sv >= 0 && sv < 1000000 && mv >= 0 && mv < 1000)
                                info->accuracy_ms = (int)(sv * 1000 + mv);
                }
        }
        /* RFC 3161 §2.3 / RFC 5280: the TSA certificate must be valid at genTime. */
        {
                time_t g = timegm(&tm);

                if (X509_cmp_time(X509_get0_notBefore(cert), &g) > 0 ||
                    X509_cmp_time(X509_get0_notAfter(cert), &g) < 0) {
                        gmca_error_set(e, rc, "TSA certificate: not valid at genTime");
                        goto out;
                }
        }
        rc = 0;
out:
        TS_TST_INFO_free(ti);
        return rc;
}

static void describe_rejection(const TSA_STATUS *st, long status, struct gmca_error *e)
{
        char why[256] = "", text[256] = "";
        size_t off = 0;

        for (size_t i = 0; st->fail != NULL && i < sizeof(fail_names) / sizeof(fail_names[0]); i++)
                if (ASN1_BIT_STRING_get_bit(st->fail, fail_names[i].bit) == 1 && off < sizeof(why))
                        off += (size_t)snprintf(why + off, sizeof(why) - off, " %s",
                                                fail_names[i].name);
        if (sk_ASN1_UTF8STRING_num(st->text) > 0) {
                const ASN1_UTF8STRING *s = sk_ASN1_UTF8STRING_value(st->text, 0);
                int n = ASN1_STRING_length(s);

                snprintf(text, sizeof(text), ": %.*s", n > 200 ? 200 : n,
                         (const char *)ASN1_STRING_get0_data(s));
                for (char *p = text; *p != '\0'; p++)
                        if ((unsigned char)*p < 0x20)
                                *p = '?';
        }
        gmca_error_set(e, GMCA_ERR_POLICY, "TimeStampResp: the TSA refused (status %ld%s%s)%s",
                       status, why[0] != '\0' ? ", failInfo" : "", why, text);
}

int gmca_tsa_verify(const uint8_t *resp, size_t len, const struct gmca_tsa_expect *x,
                    struct gmca_tsa_info *info, struct gmca_error *e)
{
        TSA_RESP *rs = NULL;
        TSA_SD *sd;
        GMCA_SIGNER *si;
        X509 *cert = NULL;
        unsigned char *attrs = NULL;
        struct gmca_tsa_info tmp;
        long status;
        int n, i, rc = GMCA_ERR_INVALID;

        if (x == NULL || (x->tsa_cert == NULL && x->ca_cert == NULL))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "time-stamp: trust needs the TSA certificate or its CA");
        if (len > GMCA_TSA_RESP_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "TimeStampResp: over %u bytes",
                                      GMCA_TSA_RESP_MAX);
        if ((rs = (TSA_RESP *)gmca_der_decode(ASN1_ITEM_rptr(TSA_RESP), resp, len, "TimeStampResp",
                                              e)) == NULL)
                return e->code;
        status = ASN1_INTEGER_get(rs->status->status);
        if (status != 0 && status != 1) {
                describe_rejection(rs->status, status, e);
                rc = e->code;
                goto out;
        }
        if (rs->token == NULL) {
                gmca_error_set(e, rc, "TimeStampResp: granted without a timeStampToken");
                goto out;
        }
        sd = rs->token->sd;
        if (OBJ_obj2nid(rs->token->type) != NID_pkcs7_signed ||
            ASN1_INTEGER_get(sd->version) != 3) {
                gmca_error_set(e, rc, "token: not a SignedData version 3 (RFC 3161 §2.4.2)");
                goto out;
        }
        n = sk_X509_ALGOR_num(sd->digest_algs);
        for (i = 0; i < n && !alg_is(sk_X509_ALGOR_value(sd->digest_algs, i), NID_sm3); i++)
                ;
        if (n > DIGEST_ALGS_MAX || i == n) {
                gmca_error_set(e, rc, "token: digestAlgorithms lack SM3");
                goto out;
        }
        if (OBJ_obj2nid(sd->eci->type) != NID_id_smime_ct_TSTInfo || sd->eci->content == NULL) {
                gmca_error_set(e, rc, "token: eContent is not an id-ct-TSTInfo");
                goto out;
        }
        if (sk_X509_num(sd->certs) > GMCA_TSA_CERTS_MAX ||
            sk_X509_CRL_num(sd->crls) > GMCA_TSA_CERTS_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "token: over %d certificates or CRLs",
                                    GMCA_TSA_CERTS_MAX);
                goto out;
        }
        if (sk_GMCA_SIGNER_num(sd->signers) != 1) {
                gmca_error_set(e, rc, "token: exactly one SignerInfo needed (RFC 3161 §2.4.2)");
                goto out;
        }
        si = sk_GMCA_SIGNER_value(sd->signers, 0);
        if (ASN1_INTEGER_get(si->version) != 1 || !alg_is(si->digest_alg, NID_sm3) ||
            si->auth == NULL) {
                gmca_error_set(e, rc, "SignerInfo: version 1, SM3 and signedAttrs needed");
                goto out;
        }
        if (!alg_is(si->sig_alg, NID_SM2_with_SM3)) {
                const ASN1_OBJECT *obj;
                int ptype;

                X509_ALGOR_get0(&obj, &ptype, NULL, si->sig_alg);
                if (!gmca_oid_is(obj, OID_SM2_1) ||
                    (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)) {
                        gmca_error_set(e, rc,
                                       "SignerInfo: signatureAlgorithm is not SM2 "
                                       "(1.2.156.10197.1.501 or .301.1)");
                        goto out;
                }
        }
        if (x->tsa_cert != NULL) {
                if (X509_NAME_cmp(X509_get_issuer_name(x->tsa_cert), si->ias->issuer) != 0 ||
                    ASN1_INTEGER_cmp(X509_get0_serialNumber(x->tsa_cert), si->ias->serial) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                            "token: signed by another certificate than the TSA "
                                            "certificate given");
                        goto out;
                }
                if (X509_up_ref(x->tsa_cert) != 1)
                        goto out;
                cert = x->tsa_cert;
        } else if ((cert = find_cert(sd->certs, si->ias, e)) == NULL) {
                rc = e->code;
                goto out;
        }
        if (x->ca_cert != NULL) {
                if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(x->ca_cert)) !=
                        0 ||
                    X509_get0_pubkey(x->ca_cert) == NULL) {
                        gmca_ossl_clear();
                        rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                            "TSA certificate: not issued by the CA given");
                        goto out;
                }
                if ((rc = gmca_cert_verify_signed_by(cert, X509_get0_pubkey(x->ca_cert), x->sm2_id,
                                                     e)) != 0)
                        goto out;
        }
        if ((rc = gmca_tsa_cert_check(cert, e)) != 0 ||
            (rc = check_attrs(si, sd->eci->content, cert, e)) != 0)
                goto out;
        if ((n = I2D(GMCA_ATTRS, si->auth, &attrs)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "SignerInfo: cannot encode signedAttrs");
                goto out;
        }
        if ((rc = gmca_sm2_verify(X509_get0_pubkey(cert), x->sm2_id, attrs, (size_t)n,
                                  ASN1_STRING_get0_data(si->sig),
                                  (size_t)ASN1_STRING_length(si->sig), e)) != 0)
                goto out;
        memset(&tmp, 0, sizeof(tmp));
        if ((rc = check_tst(sd->eci->content, x, cert, sk_X509_num(sd->certs) > 0, &tmp, e)) != 0)
                goto out;
        if ((rc = gmca_dn_format(X509_get_subject_name(cert), tmp.tsa_subject,
                                 sizeof(tmp.tsa_subject), e)) != 0)
                goto out;
        if (info != NULL)
                *info = tmp;
        rc = 0;
out:
        OPENSSL_free(attrs);
        X509_free(cert);
        FREE(TSA_RESP, rs);
        return rc;
}
