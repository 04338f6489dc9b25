/*
 * Re-issuance of a certificate under another CA (CPS §6.10.3): after a CA
 * key is compromised, each subscriber keeps the certificate it was given —
 * subject, public key, extensions, end date — but under the new CA: a new
 * serial, the new issuer name, validity from now, the new CA's key
 * identifier, and the CRL and AIA locations of the new CA. Nothing of the
 * old certificate is trusted beyond being our own earlier output: it comes
 * from the store and is parsed strictly all the same.
 */
#include <string.h>

#include <openssl/x509v3.h>

#include "x509.h"

/* The one extension with nid in x, or -1 if absent; GMCA_ERR_INVALID if repeated. */
static int ext_index(const X509 *x, int nid, int *idx, const char *what, struct gmca_error *e)
{
        *idx = X509_get_ext_by_NID(x, nid, -1);
        if (*idx >= 0 && X509_get_ext_by_NID(x, nid, *idx) >= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "re-issue: RFC 5280 §4.2: %s appears twice in the old "
                                      "certificate",
                                      what);
        return 0;
}

/*
 * Put value (of extension type nid) at position idx of x, replacing what
 * was there with the same criticality, or append it non-critical when idx
 * is -1. The order of extensions is kept so that the copy reads like the
 * original.
 */
static int put_ext(X509 *x, int nid, int idx, void *value, const char *what, struct gmca_error *e)
{
        X509_EXTENSION *ext, *old = NULL;
        int crit = 0;

        if (idx >= 0) {
                crit = X509_EXTENSION_get_critical(X509_get_ext(x, idx));
                old = X509_delete_ext(x, idx);
        }
        if ((ext = X509V3_EXT_i2d(nid, crit, value)) == NULL || X509_add_ext(x, ext, idx) != 1) {
                X509_EXTENSION_free(ext);
                X509_EXTENSION_free(old);
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "re-issue: %s: cannot set", what);
        }
        X509_EXTENSION_free(ext);
        X509_EXTENSION_free(old);
        return 0;
}

static GENERAL_NAME *uri_name(const char *uri)
{
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

        if (gn == NULL || ia5 == NULL || ASN1_STRING_set(ia5, uri, (int)strlen(uri)) != 1) {
                GENERAL_NAME_free(gn);
                ASN1_IA5STRING_free(ia5);
                return NULL;
        }
        GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
        return gn;
}

/* authorityKeyIdentifier: keyIdentifier only, the new issuer's subjectKeyIdentifier. */
static int set_aki(X509 *x, const X509 *issuer, struct gmca_error *e)
{
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id((X509 *)issuer);
        AUTHORITY_KEYID *aki = NULL;
        int idx, rc;

        if (ski == NULL || ASN1_STRING_length(ski) <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "re-issue: issuer: RFC 5280 §4.2.1.2: no "
                                      "subjectKeyIdentifier");
        if ((rc = ext_index(x, NID_authority_key_identifier, &idx, "authorityKeyIdentifier", e)) !=
            0)
                return rc;
        if ((aki = AUTHORITY_KEYID_new()) == NULL ||
            (aki->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL) {
                AUTHORITY_KEYID_free(aki);
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "re-issue: out of memory");
        }
        rc = put_ext(x, NID_authority_key_identifier, idx, aki, "authorityKeyIdentifier", e);
        AUTHORITY_KEYID_free(aki);
        return rc;
}

/* cRLDistributionPoints, where the old certificate has one: one fullName URI. */
static int set_crl_dp(X509 *x, const char *url, struct gmca_error *e)
{
        CRL_DIST_POINTS *dps = NULL;
        DIST_POINT *dp = NULL;
        GENERAL_NAME *gn = NULL;
        int idx, rc;

        if ((rc = ext_index(x, NID_crl_distribution_points, &idx, "cRLDistributionPoints", e)) !=
                0 ||
            idx < 0)
                return rc;
        if (url == NULL) {
                X509_EXTENSION_free(X509_delete_ext(x, idx));
                return 0;
        }
        rc = GMCA_ERR_NOMEM;
        /* OpenSSL has no setters for DIST_POINT: its fields are the public API. */
        if ((dps = sk_DIST_POINT_new_null()) == NULL || (dp = DIST_POINT_new()) == NULL ||
            (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
            (dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null()) == NULL ||
            (gn = uri_name(url)) == NULL ||
            sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn) <= 0)
                goto fail;
        gn = NULL;
        dp->distpoint->type = 0; /* fullName */
        if (sk_DIST_POINT_push(dps, dp) <= 0)
                goto fail;
        dp = NULL;
        rc = put_ext(x, NID_crl_distribution_points, idx, dps, "cRLDistributionPoints", e);
        goto out;
fail:
        gmca_error_ossl(e, rc, "re-issue: cRLDistributionPoints: out of memory");
out:
        GENERAL_NAME_free(gn);
        DIST_POINT_free(dp);
        CRL_DIST_POINTS_free(dps);
        return rc;
}

/*
 * authorityInfoAccess, where the old certificate has one: each OCSP and
 * caIssuers location becomes the new CA's (dropped if it has none); any
 * other access method is kept as it was.
 */
static int set_aia(X509 *x, const char *ocsp, const char *ca_issuers, struct gmca_error *e)
{
        AUTHORITY_INFO_ACCESS *old = NULL, *aia = NULL;
        int idx, rc;

        if ((rc = ext_index(x, NID_info_access, &idx, "authorityInfoAccess", e)) != 0 || idx < 0)
                return rc;
        if ((old = X509V3_EXT_d2i(X509_get_ext(x, idx))) == NULL)
                return gmca_error_ossl(e, GMCA_ERR_INVALID,
                                       "re-issue: authorityInfoAccess does not parse");
        rc = GMCA_ERR_NOMEM;
        if ((aia = sk_ACCESS_DESCRIPTION_new_null()) == NULL)
                goto fail;
        for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(old); i++) {
                const ACCESS_DESCRIPTION *from = sk_ACCESS_DESCRIPTION_value(old, i);
                int method = OBJ_obj2nid(from->method);
                const char *uri = method == NID_ad_OCSP         ? ocsp
                                  : method == NID_ad_ca_issuers ? ca_issuers
                                                                : NULL;
                ACCESS_DESCRIPTION *ad;

                if ((method == NID_ad_OCSP || method == NID_ad_ca_issuers) && uri == NULL)
                        continue;
                if ((ad = ACCESS_DESCRIPTION_new()) == NULL)
                        goto fail;
                ASN1_OBJECT_free(ad->method);
                GENERAL_NAME_free(ad->location);
                ad->method = OBJ_dup(from->method);
                ad->location = uri != NULL ? uri_name(uri) : GENERAL_NAME_dup(from->location);
                if (ad->method == NULL || ad->location == NULL ||
                    sk_ACCESS_DESCRIPTION_push(aia, ad) <= 0) {
                        ACCESS_DESCRIPTION_free(ad);
                        goto fail;
                }
        }
        if (sk_ACCESS_DESCRIPTION_num(aia) == 0) {
                X509_EXTENSION_free(X509_delete_ext(x, idx));
                rc = 0;
        } else {
                rc = put_ext(x, NID_info_access, idx, aia, "authorityInfoAccess", e);
        }
        goto out;
fail:
        gmca_error_ossl(e, rc, "re-issue: authorityInfoAccess: out of memory");
out:
        AUTHORITY_INFO_ACCESS_free(aia);
        AUTHORITY_INFO_ACCESS_free(old);
        return rc;
}

/* The new issuer may sign t->old until t->not_after (RFC 5280 §4.2.1.3, §4.2.1.9). */
static int check_reissue(const struct gmca_reissue_template *t, X509 *old, struct gmca_error *e)
{
        X509 *issuer = (X509 *)t->issuer; /* the flag accessors take a non-const X509 */
        long ipath = X509_get_pathlen(issuer), opath = X509_get_pathlen(old);
        int c;

        if (t->signer == NULL || t->issuer_key == NULL || t->issuer == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "re-issue: no issuer or signer");
        if (EVP_PKEY_eq(X509_get0_pubkey(issuer), t->issuer_key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "re-issue: issuer key does not match the issuer certificate");
        }
        if (!(X509_get_extension_flags(issuer) & EXFLAG_CA) ||
            ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) &&
             !(X509_get_key_usage(issuer) & KU_KEY_CERT_SIGN)))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "re-issue: RFC 5280 §4.2.1.9: the issuer is not a CA that "
                                      "signs certificates");
        if ((X509_get_extension_flags(old) & EXFLAG_CA) && ipath >= 0 &&
            (opath < 0 || opath >= ipath))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "re-issue: RFC 5280 §4.2.1.9: issuer pathLenConstraint %ld "
                                      "leaves no room for this CA certificate",
                                      ipath);
        if (t->not_after <= t->not_before)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "re-issue: the certificate would end before it begins");
        c = ASN1_TIME_cmp_time_t(X509_get0_notAfter(issuer), t->not_after);
        if (c == -2)
                return gmca_error_set(e, GMCA_ERR_INVALID, "re-issue: issuer: unreadable notAfter");
        if (c < 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "re-issue: GM/T 0015: certificate may not outlive its "
                                      "issuer");
        return 0;
}

X509 *gmca_cert_reissue(const uint8_t *old_der, size_t old_len,
                        const struct gmca_reissue_template *t, struct gmca_error *e)
{
        X509 *x = NULL, *ret = NULL;
        ASN1_TIME *nb = NULL, *na = NULL;
        unsigned char *der = NULL;
        const unsigned char *p;
        int n;

        if ((x = gmca_cert_parse(old_der, old_len, e)) == NULL)
                return NULL;
        if (check_reissue(t, x, e) != 0)
                goto out;
        if ((nb = ASN1_TIME_adj(NULL, t->not_before, 0, 0)) == NULL ||
            (na = ASN1_TIME_adj(NULL, t->not_after, 0, 0)) == NULL ||
            ASN1_STRING_set(X509_get_serialNumber(x), t->serial, GMCA_SERIAL_LEN) != 1 ||
            X509_set_issuer_name(x, X509_get_subject_name(t->issuer)) != 1 ||
            X509_set1_notBefore(x, nb) != 1 || X509_set1_notAfter(x, na) != 1) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "re-issue: cannot set the TBS fields");
                goto out;
        }
        if (set_aki(x, t->issuer, e) != 0 || set_crl_dp(x, t->crl_url, e) != 0 ||
            set_aia(x, t->ocsp_url, t->ca_issuers_url, e) != 0 ||
            gmca_x509_sign(x, t->signer, e) != 0)
                goto out;
        /*
         * Parse the signed bytes back: the object edited above still caches
         * what OpenSSL read from the old certificate (key identifiers,
         * flags), so the caller gets one that says only what the new DER says.
         */
        if ((n = i2d_X509(x, &der)) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "re-issue: cannot encode");
                goto out;
        }
        p = der;
        if ((ret = d2i_X509(NULL, &p, n)) == NULL || p != der + n) {
                X509_free(ret);
                ret = NULL;
                gmca_error_ossl(e, GMCA_ERR_INTERNAL,
                                "re-issue: the new certificate does not parse");
                goto out;
        }
        /* A faulty signature must never leave the CA (fault attacks on ECC signing). */
        if (!t->skip_self_check &&
            gmca_cert_verify_signed_by(ret, t->issuer_key, t->sm2_id, e) != 0) {
                gmca_error_set(e, GMCA_ERR_CRYPTO, "re-issue: fresh signature does not verify");
                X509_free(ret);
                ret = NULL;
        }
out:
        OPENSSL_free(der);
        ASN1_TIME_free(nb);
        ASN1_TIME_free(na);
        X509_free(x);
        return ret;
}
