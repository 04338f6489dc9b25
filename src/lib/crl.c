/*
 * CRLs of CPS §3.9.10: built and signed here with the CA's SM2 key and
 * distinguishing ID, checked over the re-encoded TBS (OpenSSL 3.0's
 * X509_CRL_verify cannot take an SM2 ID, GMT-REFERENCE §3.3), and read back
 * strictly: one DER object or one PEM "X509 CRL" block, no trailing bytes,
 * DER only, with a size cap.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "crypto.h"

/* RFC 5280 §5.3.1 CRLReason; 7 is not used. */
static const struct {
        int code;
        const char *name;
} reasons[] = {
    {CRL_REASON_UNSPECIFIED, "unspecified"},
    {CRL_REASON_KEY_COMPROMISE, "keyCompromise"},
    {CRL_REASON_CA_COMPROMISE, "cACompromise"},
    {CRL_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {CRL_REASON_SUPERSEDED, "superseded"},
    {CRL_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {CRL_REASON_CERTIFICATE_HOLD, "certificateHold"},
    {CRL_REASON_REMOVE_FROM_CRL, "removeFromCRL"},
    {CRL_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
    {CRL_REASON_AA_COMPROMISE, "aACompromise"},
};

int gmca_crl_reason_from_name(const char *name)
{
        if (name == NULL)
                return -1;
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
                if (strcasecmp(name, reasons[i].name) == 0)
                        return reasons[i].code;
        return -1;
}

const char *gmca_crl_reason_name(int reason)
{
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
                if (reasons[i].code == reason)
                        return reasons[i].name;
        return NULL;
}

/* ---- building ---- */

/* A serial without its leading zero bytes, for comparing values. */
struct serial_ref {
        const uint8_t *b;
        size_t len;
        size_t index;
};

static int cmp_serial(const void *a, const void *b)
{
        const struct serial_ref *x = a, *y = b;

        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        return memcmp(x->b, y->b, x->len);
}

/* Every serial well formed and no value twice (RFC 5280 §5.1.2.6). */
static int check_entries(const struct gmca_crl_params *p, struct gmca_error *e)
{
        struct serial_ref *refs = NULL;
        int rc = GMCA_ERR_INVALID;

        if (p->nentries == 0)
                return 0;
        if (p->entries == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "crl: entries missing");
        if ((refs = calloc(p->nentries, sizeof(*refs))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "crl: out of memory");
        for (size_t i = 0; i < p->nentries; i++) {
                const struct gmca_crl_entry *en = &p->entries[i];
                size_t skip = 0;

                if (en->serial_len == 0 || en->serial_len > sizeof(en->serial)) {
                        gmca_error_set(e, rc,
                                       "crl: entry %zu: RFC 5280 §4.1.2.2: serial must be 1..20 "
                                       "bytes",
                                       i);
                        goto out;
                }
                while (skip < en->serial_len && en->serial[skip] == 0)
                        skip++;
                if (skip == en->serial_len) {
                        gmca_error_set(
                            e, rc, "crl: entry %zu: RFC 5280 §4.1.2.2: serial must be positive", i);
                        goto out;
                }
                if (en->reason < -1 ||
                    (en->reason >= 0 && gmca_crl_reason_name(en->reason) == NULL)) {
                        gmca_error_set(e, rc,
                                       "crl: entry %zu: RFC 5280 §5.3.1: %d is not a CRLReason", i,
                                       en->reason);
                        goto out;
                }
                refs[i] = (struct serial_ref){en->serial + skip, en->serial_len - skip, i};
        }
        qsort(refs, p->nentries, sizeof(*refs), cmp_serial);
        for (size_t i = 1; i < p->nentries; i++) {
                if (cmp_serial(&refs[i - 1], &refs[i]) == 0) {
                        size_t a = refs[i - 1].index, b = refs[i].index;

                        gmca_error_set(e, rc,
                                       "crl: entries %zu and %zu: duplicate serial (RFC 5280 "
                                       "§5.1.2.6)",
                                       a < b ? a : b, a < b ? b : a);
                        goto out;
                }
        }
        rc = 0;
out:
        free(refs);
        return rc;
}

/*
 * One revokedCertificates entry. reasonCode is left out for unspecified (0):
 * RFC 5280 §5.3.1 says the extension SHOULD be absent rather than carry
 * unspecified.
 */
static X509_REVOKED *make_entry(const struct gmca_crl_entry *en, size_t i, struct gmca_error *e)
{
        X509_REVOKED *r = NULL, *ret = NULL;
        BIGNUM *bn = NULL;
        ASN1_INTEGER *serial = NULL;
        ASN1_TIME *when = NULL;
        ASN1_ENUMERATED *reason = NULL;
        ASN1_GENERALIZEDTIME *inv = NULL;

        if ((r = X509_REVOKED_new()) == NULL ||
            (bn = BN_bin2bn(en->serial, (int)en->serial_len, NULL)) == NULL ||
            (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
            X509_REVOKED_set_serialNumber(r, serial) != 1) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "crl: entry %zu: serial", i);
                goto out;
        }
        if ((when = ASN1_TIME_set(NULL, en->revoked_at)) == NULL ||
            X509_REVOKED_set_revocationDate(r, when) != 1) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "crl: entry %zu: revocationDate", i);
                goto out;
        }
        if (en->reason > CRL_REASON_UNSPECIFIED) {
                if ((reason = ASN1_ENUMERATED_new()) == NULL ||
                    ASN1_ENUMERATED_set(reason, en->reason) != 1 ||
                    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, X509V3_ADD_DEFAULT) !=
                        1) {
                        gmca_error_ossl(e, GMCA_ERR_INTERNAL, "crl: entry %zu: reasonCode", i);
                        goto out;
                }
        }
        if (en->invalidity != 0) {
                /* RFC 5280 §5.3.2: invalidityDate is always GeneralizedTime. */
                if ((inv = ASN1_GENERALIZEDTIME_set(NULL, en->invalidity)) == NULL ||
                    X509_REVOKED_add1_ext_i2d(r, NID_invalidity_date, inv, 0, X509V3_ADD_DEFAULT) !=
                        1) {
                        gmca_error_ossl(e, GMCA_ERR_INVALID, "crl: entry %zu: invalidityDate", i);
                        goto out;
                }
        }
        ret = r;
        r = NULL;
out:
        X509_REVOKED_free(r);
        BN_free(bn);
        ASN1_INTEGER_free(serial);
        ASN1_TIME_free(when);
        ASN1_ENUMERATED_free(reason);
        ASN1_GENERALIZEDTIME_free(inv);
        return ret;
}

/* authorityKeyIdentifier (RFC 5280 §5.2.1): keyIdentifier = the issuer's SKI. */
static int add_aki(X509_CRL *crl, const X509 *issuer, struct gmca_error *e)
{
        ASN1_OCTET_STRING *ski = NULL;
        AUTHORITY_KEYID *akid = NULL;
        int crit = 0, rc = GMCA_ERR_INVALID;

        ski = X509_get_ext_d2i(issuer, NID_subject_key_identifier, &crit, NULL);
        if (ski == NULL) {
                if (crit == -2)
                        gmca_error_set(e, rc, "crl: issuer has more than one subjectKeyIdentifier");
                else
                        gmca_error_ossl(e, rc,
                                        "crl: RFC 5280 §5.2.1: the issuer certificate has no "
                                        "subjectKeyIdentifier for authorityKeyIdentifier");
                goto out;
        }
        if ((akid = AUTHORITY_KEYID_new()) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "crl: authorityKeyIdentifier");
                goto out;
        }
        /* AUTHORITY_KEYID has no setters; its fields are the public API. */
        akid->keyid = ski;
        ski = NULL;
        if (X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) !=
            1) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "crl: authorityKeyIdentifier");
                goto out;
        }
        rc = 0;
out:
        ASN1_OCTET_STRING_free(ski);
        AUTHORITY_KEYID_free(akid);
        return rc;
}

/* The issuer must be allowed to sign CRLs: cRLSign when keyUsage is present. */
static int check_issuer(const X509 *issuer, struct gmca_error *e)
{
        ASN1_BIT_STRING *ku;
        int crit = 0, ok;

        ku = X509_get_ext_d2i(issuer, NID_key_usage, &crit, NULL);
        if (ku == NULL && crit == -1)
                return 0;
        ok = ku != NULL && ASN1_BIT_STRING_get_bit(ku, 6) == 1;
        ASN1_BIT_STRING_free(ku);
        if (!ok)
                return gmca_error_ossl(e, GMCA_ERR_INVALID,
                                       "crl: RFC 5280 §4.2.1.3: the issuer's keyUsage lacks "
                                       "cRLSign");
        return 0;
}

X509_CRL *gmca_crl_build(const struct gmca_crl_params *p, struct gmca_error *e)
{
        X509_CRL *crl = NULL, *ret = NULL;
        X509_REVOKED *r = NULL;
        ASN1_TIME *t = NULL;
        ASN1_INTEGER *num = NULL;
        EVP_MD_CTX *mctx = NULL;

        if (p == NULL || p->issuer == NULL || (p->key == NULL && p->signer == NULL)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "crl: issuer certificate and key required");
                goto out;
        }
        if (p->number <= 0) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "crl: RFC 5280 §5.2.3: cRLNumber must be positive");
                goto out;
        }
        if (p->next_update <= p->this_update) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "crl: RFC 5280 §5.1.2.5: nextUpdate must be later than thisUpdate");
                goto out;
        }
        if (check_issuer(p->issuer, e) != 0 || check_entries(p, e) != 0)
                goto out;
        if ((crl = X509_CRL_new()) == NULL || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
            X509_CRL_set_issuer_name(crl, X509_get_subject_name(p->issuer)) != 1) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "crl: cannot start");
                goto out;
        }
        /* ASN1_TIME_set picks UTCTime through 2049 and GeneralizedTime after (§5.1.2.4). */
        if ((t = ASN1_TIME_set(NULL, p->this_update)) == NULL ||
            X509_CRL_set1_lastUpdate(crl, t) != 1) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "crl: thisUpdate");
                goto out;
        }
        ASN1_TIME_free(t);
        if ((t = ASN1_TIME_set(NULL, p->next_update)) == NULL ||
            X509_CRL_set1_nextUpdate(crl, t) != 1) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "crl: nextUpdate");
                goto out;
        }
        /* Entries keep the caller's order; nothing here sorts the stack. */
        for (size_t i = 0; i < p->nentries; i++) {
                if ((r = make_entry(&p->entries[i], i, e)) == NULL)
                        goto out;
                if (X509_CRL_add0_revoked(crl, r) != 1) {
                        gmca_error_ossl(e, GMCA_ERR_NOMEM, "crl: entry %zu", i);
                        goto out;
                }
                r = NULL;
        }
        if (add_aki(crl, p->issuer, e) != 0)
                goto out;
        if ((num = ASN1_INTEGER_new()) == NULL || ASN1_INTEGER_set_int64(num, p->number) != 1 ||
            X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, X509V3_ADD_DEFAULT) != 1) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "crl: cRLNumber");
                goto out;
        }
        if (p->signer != NULL) {
                if (gmca_x509_crl_sign(crl, p->signer, e) != 0)
                        goto out;
        } else if ((mctx = gmca_sm2_sign_ctx(p->key, p->sm2_id, e)) == NULL) {
                goto out;
        } else if (X509_CRL_sign_ctx(crl, mctx) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "crl: SM2 signature failed");
                goto out;
        }
        /* Check against the certificate's key: catches a key that is not the issuer's. */
        if (gmca_crl_verify(crl, X509_get0_pubkey(p->issuer), p->sm2_id, e) != 0) {
                gmca_error_set(e, GMCA_ERR_VERIFY,
                               "crl: the new CRL does not verify under the issuer certificate");
                goto out;
        }
        ret = crl;
        crl = NULL;
out:
        X509_CRL_free(crl);
        X509_REVOKED_free(r);
        ASN1_TIME_free(t);
        ASN1_INTEGER_free(num);
        EVP_MD_CTX_free(mctx);
        return ret;
}

/* ---- verifying ---- */

/*
 * The signature AlgorithmIdentifier inside the encoded TBS: after the
 * SEQUENCE header and the optional version INTEGER. OpenSSL 3.0 has no
 * accessor for it.
 */
static X509_ALGOR *tbs_sigalg(const uint8_t *tbs, long len)
{
        const unsigned char *q = tbs;
        long l = 0;
        int tag = 0, cls = 0;

        if ((ASN1_get_object(&q, &l, &tag, &cls, len) & 0x80) != 0 || tag != V_ASN1_SEQUENCE)
                return NULL;
        {
                const unsigned char *v = q;
                long vl = 0;

                if ((ASN1_get_object(&v, &vl, &tag, &cls, len - (q - tbs)) & 0x80) != 0)
                        return NULL;
                if (tag == V_ASN1_INTEGER && cls == V_ASN1_UNIVERSAL)
                        q = v + vl;
        }
        return d2i_X509_ALGOR(NULL, &q, len - (q - tbs));
}

int gmca_crl_verify(X509_CRL *crl, EVP_PKEY *issuer_key, const char *id, struct gmca_error *e)
{
        const ASN1_BIT_STRING *sig = NULL;
        const X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *obj = NULL;
        X509_ALGOR *inner = NULL;
        struct gmca_error why;
        uint8_t *tbs = NULL;
        int ptype = V_ASN1_UNDEF, tbslen, rc = GMCA_ERR_VERIFY;

        if (crl == NULL || issuer_key == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "crl: nothing to verify");
        if (gmca_sm2_is_sm2(issuer_key, e) != 0)
                return GMCA_ERR_INVALID;
        X509_CRL_get0_signature(crl, &sig, &alg);
        if (sig == NULL || alg == NULL)
                return gmca_error_set(e, rc, "crl: no signature");
        X509_ALGOR_get0(&obj, &ptype, NULL, alg);
        /* GMT-REFERENCE §1.1: parameters absent (OpenSSL) or NULL (GmSSL option). */
        if (OBJ_obj2nid(obj) != NID_SM2_with_SM3 || (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL))
                return gmca_error_set(e, rc,
                                      "crl: signatureAlgorithm: GM/T 0015: must be SM2-with-SM3 "
                                      "(1.2.156.10197.1.501)");
        /* Over the TBS as DER-encoded now (i2d_re_* ignores the received bytes). */
        if ((tbslen = i2d_re_X509_CRL_tbs(crl, &tbs)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID, "crl: cannot encode TBS");
                goto out;
        }
        if ((inner = tbs_sigalg(tbs, tbslen)) == NULL || X509_ALGOR_cmp(alg, inner) != 0) {
                gmca_ossl_clear();
                gmca_error_set(e, rc,
                               "crl: RFC 5280 §5.1.1.2: outer and TBS signature "
                               "algorithms differ");
                goto out;
        }
        gmca_error_clear(&why);
        if (gmca_sm2_verify(issuer_key, id, tbs, (size_t)tbslen, ASN1_STRING_get0_data(sig),
                            (size_t)ASN1_STRING_length(sig), &why) != 0) {
                gmca_error_set(e, rc, "crl: %s", why.msg);
                goto out;
        }
        rc = 0;
out:
        X509_ALGOR_free(inner);
        OPENSSL_free(tbs);
        return rc;
}

/* ---- parsing ---- */

/*
 * DER check after d2i: the whole object written back equals the input, and
 * the TBS re-encoded from its fields (i2d_re_X509_CRL_tbs, bypassing the
 * cache of received bytes) equals the TBS bytes of the input.
 */
static int crl_is_der(X509_CRL *crl, const uint8_t *der, size_t len, struct gmca_error *e)
{
        unsigned char *full = NULL, *tbs = NULL;
        const unsigned char *q = der, *t;
        long l = 0;
        int tag = 0, cls = 0, fl, tl, rc = GMCA_ERR_INVALID;

        fl = i2d_X509_CRL(crl, &full);
        tl = i2d_re_X509_CRL_tbs(crl, &tbs);
        if (fl <= 0 || tl <= 0 || (size_t)fl != len || memcmp(full, der, len) != 0)
                goto bad;
        /* The input's TBS: the first element of the outer SEQUENCE. */
        if ((ASN1_get_object(&q, &l, &tag, &cls, (long)len) & 0x80) != 0)
                goto bad;
        t = q;
        if ((ASN1_get_object(&q, &l, &tag, &cls, (long)len - (q - der)) & 0x80) != 0)
                goto bad;
        if ((q - t) + l != tl || memcmp(t, tbs, (size_t)tl) != 0)
                goto bad;
        rc = gmca_name_is_der(X509_CRL_get_issuer(crl), "crl", "issuer", e);
        goto out;
bad:
        gmca_ossl_clear();
        gmca_error_set(e, rc, "crl: X.690 §10: not DER (re-encoding differs from the input)");
out:
        OPENSSL_free(full);
        OPENSSL_free(tbs);
        return rc;
}

X509_CRL *gmca_crl_parse(const uint8_t *buf, size_t len, struct gmca_error *e)
{
        uint8_t *owned = NULL;
        const uint8_t *der, *q;
        size_t derlen = 0;
        X509_CRL *crl = NULL, *ret = NULL;

        static const char *const labels[] = {"X509 CRL", NULL};

        if (gmca_der_input(buf, len, GMCA_CRL_MAX, "crl", labels, &owned, &der, &derlen, e) != 0)
                goto out;
        q = der;
        if ((crl = d2i_X509_CRL(NULL, &q, (long)derlen)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "crl: not a DER CertificateList");
                goto out;
        }
        if (q != der + derlen) {
                gmca_error_set(e, GMCA_ERR_INVALID, "crl: %zu trailing bytes after the DER",
                               (size_t)(der + derlen - q));
                goto out;
        }
        if (crl_is_der(crl, der, derlen, e) != 0)
                goto out;
        ret = crl;
        crl = NULL;
out:
        X509_CRL_free(crl);
        OPENSSL_free(owned);
        return ret;
}
