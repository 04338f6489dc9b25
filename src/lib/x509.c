/*
 * Certificate building (GM/T 0015, RFC 5280 profile with SM2-with-SM3),
 * certificate signature checks with an explicit SM2 distinguishing ID,
 * reading the GM/T 0015 private extensions back, serial numbers and SM3
 * fingerprints. Everything is checked before it is signed: a template that
 * would give a certificate GM/T 0015 or RFC 5280 forbids is refused, and a
 * signed certificate is verified once more under the issuer's public key
 * before it is handed out, so that a signing fault never leaves this file.
 */
#include "x509.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "util.h"

#define SKI_LEN 20            /* RFC 7093 §2 method 1: leftmost 160 bits */
#define EKU_MAX 16            /* extKeyUsage purposes in one template */
#define URI_MAX 1024          /* bytes of a CRL, OCSP, caIssuers or CPS URI */
#define DNS_MAX 253           /* bytes of a DNS name (RFC 1035 §2.3.4) */
#define EMAIL_MAX 254         /* bytes of an rfc822Name (RFC 5321 §4.5.3.1.3) */
#define PEXT_VALUE_MAX 64     /* bytes of a private extension value we write */
#define PEXT_READ_MAX 256     /* bytes of a private extension value we read */
#define PEXT_EXT_MAX 512      /* bytes of a private extension's extnValue */
#define SERIAL_REDRAW_MAX 256 /* redraws for a non-zero first byte (1/128 each) */

/* PrintableString alphabet (X.680 §41.4): letters, digits, " '()+,-./:=?". */
static int printable_ok(const uint8_t *s, size_t n)
{
        static const char extra[] = " '()+,-./:=?";

        for (size_t i = 0; i < n; i++) {
                uint8_t c = s[i];

                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                        continue;
                if (c == '\0' || strchr(extra, c) == NULL)
                        return 0;
        }
        return 1;
}

/* Well-formed UTF-8 (RFC 3629, no overlongs or surrogates), no C0/C1 controls. */
static int utf8_ok(const uint8_t *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                uint32_t c = s[i];
                size_t k;

                if (c < 0x80) {
                        if (c < 0x20 || c == 0x7f)
                                return 0;
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        k = 1;
                        c &= 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        k = 2;
                        c &= 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        k = 3;
                        c &= 0x07;
                } else {
                        return 0;
                }
                if (n - i - 1 < k)
                        return 0;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return 0;
                        c = (c << 6) | (s[i + j] & 0x3f);
                }
                if ((k == 2 && c < 0x800) || (k == 3 && (c < 0x10000 || c > 0x10ffff)) ||
                    (c >= 0xd800 && c <= 0xdfff) || (c >= 0x80 && c < 0xa0))
                        return 0;
                i += k + 1;
        }
        return 1;
}

/* Visible ASCII without spaces: what we put in IA5String URIs and names. */
static int ia5_visible_ok(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                        return 0;
        return 1;
}

static int uri_ok(const char *s)
{
        static const char *const schemes[] = {"http://", "https://", "ldap://"};
        size_t n = strnlen(s, URI_MAX + 1);

        if (n == 0 || n > URI_MAX || !ia5_visible_ok(s, n))
                return 0;
        for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
                size_t sl = strlen(schemes[i]);

                if (n > sl && strncmp(s, schemes[i], sl) == 0)
                        return 1;
        }
        return 0;
}

/* A host name of LDH labels, optionally with one leading "*." wildcard. */
static int dns_ok(const char *s)
{
        size_t n = strnlen(s, DNS_MAX + 1), label = 0;

        if (n == 0 || n > DNS_MAX)
                return 0;
        if (n > 2 && s[0] == '*' && s[1] == '.') {
                s += 2;
                n -= 2;
        }
        for (size_t i = 0; i <= n; i++) {
                char c = i < n ? s[i] : '.';

                if (c == '.') {
                        if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                                return 0;
                        label = 0;
                } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-') {
                        label++;
                } else {
                        return 0;
                }
        }
        return 1;
}

static int email_ok(const char *s)
{
        size_t n = strnlen(s, EMAIL_MAX + 1);
        const char *at = memchr(s, '@', n);

        return n > 0 && n <= EMAIL_MAX && ia5_visible_ok(s, n) && at != NULL && at != s &&
               at != s + n - 1 && memchr(at + 1, '@', n - (size_t)(at - s) - 1) == NULL;
}

int gmca_serial_random(uint8_t serial[GMCA_SERIAL_LEN], struct gmca_error *e)
{
        uint8_t s[GMCA_SERIAL_LEN];

        /*
         * Clearing the top bit keeps the INTEGER positive; redrawing a zero
         * first byte keeps every serial exactly 16 content octets, so that
         * all serials have the same length in DER and in hex.
         */
        for (int i = 0; i < SERIAL_REDRAW_MAX; i++) {
                if (gmca_rand_bytes(s, sizeof(s), e) != 0)
                        return GMCA_ERR_CRYPTO;
                s[0] &= 0x7f;
                if (s[0] != 0) {
                        memcpy(serial, s, sizeof(s));
                        return 0;
                }
        }
        return gmca_error_set(e, GMCA_ERR_CRYPTO, "serial: CSPRNG keeps returning zero bytes");
}

int gmca_serial_hex(const X509 *cert, char *buf, size_t len)
{
        const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
        const uint8_t *p;
        int n;

        if (sn == NULL || buf == NULL || ASN1_STRING_type(sn) != V_ASN1_INTEGER)
                return GMCA_ERR_INVALID; /* absent or negative */
        /* ASN1_INTEGER holds the magnitude, minimal, so this is BN_bn2hex without the BIGNUM. */
        p = ASN1_STRING_get0_data(sn);
        n = ASN1_STRING_length(sn);
        if (n == 0) {
                if (len < 3)
                        return GMCA_ERR_LIMIT;
                gmca_strlcpy(buf, "00", len);
                return 0;
        }
        if (n < 0 || len == 0 || (size_t)n > (len - 1) / 2)
                return GMCA_ERR_LIMIT;
        gmca_hex_upper(p, (size_t)n, buf);
        return 0;
}

/* Append a DER extension value under obj; refuses an extension already there. */
static int add_ext_der(X509 *x, const ASN1_OBJECT *obj, int crit, const uint8_t *der, size_t len,
                       const char *what, struct gmca_error *e)
{
        ASN1_OCTET_STRING *os = NULL;
        X509_EXTENSION *ext = NULL;
        int rc = GMCA_ERR_NOMEM;

        if (X509_get_ext_by_OBJ(x, obj, -1) >= 0)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "%s: extension added twice", what);
        if ((os = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(os, der, (int)len) != 1 ||
            (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, crit, os)) == NULL ||
            X509_add_ext(x, ext, -1) != 1) {
                gmca_error_ossl(e, rc, "%s: cannot add extension", what);
                goto out;
        }
        rc = 0;
out:
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        return rc;
}

/* X509_add1_ext_i2d with X509V3_ADD_DEFAULT, which fails if nid is already present. */
static int add_ext_i2d(X509 *x, int nid, void *value, int crit, const char *what,
                       struct gmca_error *e)
{
        if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) != 1)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: cannot add extension", what);
        return 0;
}

/* A GENERAL_NAME of an IA5String kind (GEN_URI, GEN_DNS, GEN_EMAIL); NULL on failure. */
static GENERAL_NAME *ia5_name(int type, const char *s)
{
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

        if (gn == NULL || ia5 == NULL || ASN1_STRING_set(ia5, s, (int)strlen(s)) != 1) {
                GENERAL_NAME_free(gn);
                ASN1_IA5STRING_free(ia5);
                return NULL;
        }
        GENERAL_NAME_set0_value(gn, type, ia5);
        return gn;
}

/* Push gn onto names; gn is consumed either way. */
static int push_name(GENERAL_NAMES *names, GENERAL_NAME *gn)
{
        if (gn == NULL)
                return -1;
        if (sk_GENERAL_NAME_push(names, gn) <= 0) {
                GENERAL_NAME_free(gn);
                return -1;
        }
        return 0;
}

static const struct {
        unsigned flag;
        int bit; /* KeyUsage BIT STRING position, RFC 5280 §4.2.1.3 */
} ku_bits[] = {
    {X509v3_KU_DIGITAL_SIGNATURE, 0}, {X509v3_KU_NON_REPUDIATION, 1},
    {X509v3_KU_KEY_ENCIPHERMENT, 2},  {X509v3_KU_DATA_ENCIPHERMENT, 3},
    {X509v3_KU_KEY_AGREEMENT, 4},     {X509v3_KU_KEY_CERT_SIGN, 5},
    {X509v3_KU_CRL_SIGN, 6},          {X509v3_KU_ENCIPHER_ONLY, 7},
    {X509v3_KU_DECIPHER_ONLY, 8},
};

static unsigned ku_all(void)
{
        unsigned all = 0;

        for (size_t i = 0; i < sizeof(ku_bits) / sizeof(ku_bits[0]); i++)
                all |= ku_bits[i].flag;
        return all;
}

/* The checks that need only the template itself. */
static int check_template(const struct gmca_cert_template *t, struct gmca_error *e)
{
        struct gmca_error ke = {0};

        if (t == NULL || t->subject == NULL || t->pubkey == NULL || t->issuer_key == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "certificate: template lacks subject, key or issuer key");
        if (X509_NAME_entry_count(t->subject) <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject: GM/T 0015: the subject DN may not be empty");
        if (gmca_sm2_is_sm2(t->pubkey, &ke) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "subject public key: %s", ke.msg);
        if (gmca_sm2_is_sm2(t->issuer_key, &ke) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "issuer key: %s", ke.msg);
        if (t->serial[0] == 0 || (t->serial[0] & 0x80) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "serial: RFC 5280 §4.1.2.2: must be a positive 128-bit "
                                      "integer (first byte 01..7F)");
        if (t->not_after <= t->not_before)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "validity: RFC 5280 §4.1.2.5: notAfter must be later than "
                                      "notBefore");
        if (t->ca && (t->key_usage & X509v3_KU_KEY_CERT_SIGN) == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "keyUsage: RFC 5280 §4.2.1.3: a CA certificate needs "
                                      "keyCertSign");
        if (!t->ca && (t->key_usage & X509v3_KU_KEY_CERT_SIGN) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "keyUsage: RFC 5280 §4.2.1.9: keyCertSign requires cA TRUE");
        if (!t->ca && t->path_len != -1)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "basicConstraints: RFC 5280 §4.2.1.9: pathLenConstraint "
                                      "only for CAs (use path_len -1)");
        if (t->path_len < -1)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "basicConstraints: pathLenConstraint may not be negative");
        if ((t->key_usage & ~ku_all()) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "keyUsage: unknown bits 0x%x",
                                      t->key_usage & ~ku_all());
        if ((t->key_usage & (X509v3_KU_ENCIPHER_ONLY | X509v3_KU_DECIPHER_ONLY)) != 0 &&
            (t->key_usage & X509v3_KU_KEY_AGREEMENT) == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "keyUsage: RFC 5280 §4.2.1.3: encipherOnly/decipherOnly "
                                      "need keyAgreement");
        if (t->neku > EKU_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "extKeyUsage: at most %d purposes",
                                      EKU_MAX);
        if (t->neku > 0 && t->eku == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "extKeyUsage: purposes missing");
        if (t->cps_uri != NULL && t->policy_oid == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "certificatePolicies: a CPS URI needs a policy OID");
        if (t->ocsp_nocheck) {
                size_t i;

                for (i = 0; i < t->neku && t->eku[i] != NID_OCSP_sign; i++)
                        ;
                if (i == t->neku)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "ocspNoCheck: RFC 6960 §4.2.2.2.1: only for OCSP "
                                              "responders (extKeyUsage OCSPSigning)");
        }
        return 0;
}

/*
 * The checks against the issuing CA certificate: the issuer key matches it,
 * it is a CA allowed to sign certificates, its path length allows a CA
 * below it, the new certificate does not outlive it. On success *ski is the
 * issuer's subjectKeyIdentifier (caller frees with ASN1_OCTET_STRING_free).
 */
/*
 * 1 if key is the public key of cert. A certificate built here for an end
 * entity has no decoded key (see set_pubkey), so compare encodings then.
 */
static int cert_has_key(const X509 *cert, EVP_PKEY *key)
{
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        unsigned char *a = NULL, *b = NULL;
        int alen, blen, same;

        gmca_ossl_clear();
        if (pub != NULL)
                return EVP_PKEY_eq(pub, key) == 1;
        alen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &a);
        blen = i2d_PUBKEY(key, &b);
        same = alen > 0 && alen == blen && memcmp(a, b, (size_t)alen) == 0;
        OPENSSL_free(a);
        OPENSSL_free(b);
        return same;
}

static int check_issuer(const struct gmca_cert_template *t, ASN1_OCTET_STRING **ski,
                        struct gmca_error *e)
{
        BASIC_CONSTRAINTS *bc = NULL;
        ASN1_BIT_STRING *ku = NULL;
        ASN1_OCTET_STRING *id = NULL;
        int crit = -1, c;
        int rc = GMCA_ERR_POLICY;

        if (!cert_has_key(t->issuer, t->issuer_key)) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "issuer key: does not match the issuer certificate");
        }
        bc = X509_get_ext_d2i(t->issuer, NID_basic_constraints, &crit, NULL);
        if (bc == NULL || !bc->ca) {
                gmca_ossl_clear();
                gmca_error_set(e, rc, "issuer: RFC 5280 §4.2.1.9: issuer is not a CA");
                goto out;
        }
        if (t->ca && bc->pathlen != NULL) {
                long max = ASN1_INTEGER_get(bc->pathlen);

                if (max <= 0 || t->path_len < 0 || t->path_len >= max) {
                        gmca_error_set(e, rc,
                                       "basicConstraints: RFC 5280 §4.2.1.9: issuer "
                                       "pathLenConstraint %ld leaves no room for a CA with "
                                       "pathLen %d",
                                       max, t->path_len);
                        goto out;
                }
        }
        crit = -1;
        ku = X509_get_ext_d2i(t->issuer, NID_key_usage, &crit, NULL);
        if (crit != -1 && (ku == NULL || !ASN1_BIT_STRING_get_bit(ku, 5))) {
                gmca_ossl_clear();
                gmca_error_set(e, rc, "issuer: RFC 5280 §4.2.1.3: keyUsage lacks keyCertSign");
                goto out;
        }
        c = ASN1_TIME_cmp_time_t(X509_get0_notAfter(t->issuer), t->not_after);
        if (c == -2) {
                gmca_error_set(e, GMCA_ERR_INVALID, "issuer: unreadable notAfter");
                goto out;
        }
        if (c < 0) {
                gmca_error_set(e, rc,
                               "validity: GM/T 0015: certificate may not outlive its issuer");
                goto out;
        }
        crit = -1;
        id = X509_get_ext_d2i(t->issuer, NID_subject_key_identifier, &crit, NULL);
        if (id == NULL || ASN1_STRING_length(id) <= 0) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "issuer: RFC 5280 §4.2.1.2: subjectKeyIdentifier %s",
                               crit == -1   ? "absent"
                               : crit == -2 ? "duplicated"
                                            : "malformed");
                goto out;
        }
        *ski = id;
        id = NULL;
        rc = 0;
out:
        ASN1_OCTET_STRING_free(id);
        ASN1_BIT_STRING_free(ku);
        BASIC_CONSTRAINTS_free(bc);
        return rc;
}

/*
 * Put the subject's key into the certificate as id-ecPublicKey with the SM2
 * named curve and the uncompressed point. Setting the encoding directly
 * spares X509_set_pubkey's encode-then-decode round trip through the
 * provider encoders and decoders, which costs a third of an SM2 signature
 * per end-entity certificate. The price: OpenSSL keeps no decoded copy, so
 * X509_get0_pubkey() on the returned object gives NULL. CA certificates,
 * which sign others, take the slow path and keep it.
 */
static int set_pubkey(X509 *x, EVP_PKEY *key)
{
        unsigned char *pt = NULL;
        size_t len = 0;

        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0,
                                            &len) != 1 ||
            len != 65 || (pt = OPENSSL_malloc(len)) == NULL ||
            EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, len,
                                            &len) != 1 ||
            len != 65 || pt[0] != 0x04 ||
            X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                   V_ASN1_OBJECT, OBJ_nid2obj(NID_sm2), pt, (int)len) != 1) {
                OPENSSL_free(pt);
                return 0;
        }
        return 1;
}

static int set_basics(X509 *x, const struct gmca_cert_template *t, struct gmca_error *e)
{
        const X509_NAME *iname = t->issuer != NULL ? X509_get_subject_name(t->issuer) : t->subject;
        ASN1_TIME *nb = ASN1_TIME_adj(NULL, t->not_before, 0, 0);
        ASN1_TIME *na = ASN1_TIME_adj(NULL, t->not_after, 0, 0);
        int rc = GMCA_ERR_INTERNAL;

        /* ASN1_TIME_adj picks UTCTime up to 2049 and GeneralizedTime after (RFC 5280 §4.1.2.5). */
        if (nb == NULL || na == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
            ASN1_STRING_set(X509_get_serialNumber(x), t->serial, GMCA_SERIAL_LEN) != 1 ||
            X509_set_issuer_name(x, iname) != 1 || X509_set_subject_name(x, t->subject) != 1 ||
            X509_set1_notBefore(x, nb) != 1 || X509_set1_notAfter(x, na) != 1 ||
            (t->ca ? X509_set_pubkey(x, t->pubkey) : set_pubkey(x, t->pubkey)) != 1) {
                gmca_error_ossl(e, rc, "certificate: cannot set the TBS fields");
                goto out;
        }
        rc = 0;
out:
        ASN1_TIME_free(nb);
        ASN1_TIME_free(na);
        return rc;
}

/*
 * basicConstraints is critical in every certificate we issue. For an end
 * entity it is the empty SEQUENCE (cA DEFAULT FALSE is not encoded): RFC
 * 5280 lets it be non-critical there, but every X.509 implementation knows
 * it, so marking it critical costs nothing and leaves no relying party free
 * to treat the end entity as a CA.
 */
static int add_basic_constraints(X509 *x, const struct gmca_cert_template *t, struct gmca_error *e)
{
        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        int rc = GMCA_ERR_NOMEM;

        if (bc == NULL)
                return gmca_error_ossl(e, rc, "basicConstraints: out of memory");
        if (t->ca) {
                bc->ca = 0xff;
                if (t->path_len >= 0 && ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
                                         ASN1_INTEGER_set(bc->pathlen, t->path_len) != 1)) {
                        gmca_error_ossl(e, rc, "basicConstraints: out of memory");
                        goto out;
                }
        }
        rc = add_ext_i2d(x, NID_basic_constraints, bc, 1, "basicConstraints", e);
out:
        BASIC_CONSTRAINTS_free(bc);
        return rc;
}

static int add_key_usage(X509 *x, unsigned usage, struct gmca_error *e)
{
        ASN1_BIT_STRING *bs;
        int rc = GMCA_ERR_NOMEM;

        if (usage == 0)
                return 0;
        if ((bs = ASN1_BIT_STRING_new()) == NULL)
                return gmca_error_ossl(e, rc, "keyUsage: out of memory");
        /* i2d drops trailing zero bits and sets the unused-bits count (X.690 §11.2.2). */
        for (size_t i = 0; i < sizeof(ku_bits) / sizeof(ku_bits[0]); i++)
                if ((usage & ku_bits[i].flag) != 0 &&
                    ASN1_BIT_STRING_set_bit(bs, ku_bits[i].bit, 1) != 1) {
                        gmca_error_ossl(e, rc, "keyUsage: out of memory");
                        goto out;
                }
        rc = add_ext_i2d(x, NID_key_usage, bs, 1, "keyUsage", e);
out:
        ASN1_BIT_STRING_free(bs);
        return rc;
}

static int add_eku(X509 *x, const struct gmca_cert_template *t, struct gmca_error *e)
{
        EXTENDED_KEY_USAGE *eku;
        int rc = GMCA_ERR_INVALID;

        if (t->neku == 0)
                return 0;
        if ((eku = sk_ASN1_OBJECT_new_null()) == NULL)
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "extKeyUsage: out of memory");
        for (size_t i = 0; i < t->neku; i++) {
                ASN1_OBJECT *obj = OBJ_nid2obj(t->eku[i]);

                if (obj == NULL || OBJ_length(obj) == 0) {
                        gmca_ossl_clear();
                        gmca_error_set(e, rc, "extKeyUsage: unknown purpose NID %d", t->eku[i]);
                        goto out;
                }
                for (size_t j = 0; j < i; j++)
                        if (t->eku[j] == t->eku[i]) {
                                gmca_error_set(e, rc, "extKeyUsage: %s listed twice",
                                               OBJ_nid2sn(t->eku[i]));
                                goto out;
                        }
                if (sk_ASN1_OBJECT_push(eku, obj) <= 0) {
                        gmca_error_ossl(e, GMCA_ERR_NOMEM, "extKeyUsage: out of memory");
                        goto out;
                }
        }
        rc = add_ext_i2d(x, NID_ext_key_usage, eku, t->eku_critical ? 1 : 0, "extKeyUsage", e);
out:
        /* OBJ_nid2obj objects are static; ASN1_OBJECT_free leaves them alone. */
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        return rc;
}

/* Leftmost 160 bits of SM3 over the subjectPublicKey BIT STRING contents. */
static int key_id(X509 *x, uint8_t out[SKI_LEN], struct gmca_error *e)
{
        const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
        uint8_t md[GMCA_SM3_LEN];

        if (bits == NULL ||
            gmca_sm3(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md) != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "subjectKeyIdentifier: SM3 failed");
        memcpy(out, md, SKI_LEN);
        return 0;
}

static int add_key_ids(X509 *x, const ASN1_OCTET_STRING *issuer_ski, struct gmca_error *e)
{
        ASN1_OCTET_STRING *ski = NULL;
        AUTHORITY_KEYID *aki = NULL;
        uint8_t id[SKI_LEN];
        int rc;

        if ((rc = key_id(x, id, e)) != 0)
                return rc;
        rc = GMCA_ERR_NOMEM;
        if ((ski = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(ski, id, sizeof(id)) != 1 ||
            (aki = AUTHORITY_KEYID_new()) == NULL ||
            (aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski != NULL ? issuer_ski : ski)) == NULL) {
                gmca_error_ossl(e, rc, "key identifiers: out of memory");
                goto out;
        }
        if ((rc = add_ext_i2d(x, NID_subject_key_identifier, ski, 0, "subjectKeyIdentifier", e)) !=
            0)
                goto out;
        rc = add_ext_i2d(x, NID_authority_key_identifier, aki, 0, "authorityKeyIdentifier", e);
out:
        AUTHORITY_KEYID_free(aki);
        ASN1_OCTET_STRING_free(ski);
        return rc;
}

/* cRLDistributionPoints or freshestCRL (same syntax): one DistributionPoint with one URI. */
static int add_dp(X509 *x, int nid, const char *url, const char *what, struct gmca_error *e)
{
        CRL_DIST_POINTS *dps = NULL;
        DIST_POINT *dp = NULL;
        int rc = GMCA_ERR_NOMEM;

        if (url == NULL)
                return 0;
        if (!uri_ok(url))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: RFC 5280 §4.2.1.13: not an http, https or ldap URI of "
                                      "at most %d visible ASCII bytes",
                                      what, URI_MAX);
        /* OpenSSL has no setters for DIST_POINT: its fields are the public API. */
        if ((dps = sk_DIST_POINT_new_null()) == NULL || (dp = DIST_POINT_new()) == NULL ||
            (dp->distpoint = DIST_POINT_NAME_new()) == NULL ||
            (dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null()) == NULL)
                goto fail;
        dp->distpoint->type = 0; /* fullName */
        if (push_name(dp->distpoint->name.fullname, ia5_name(GEN_URI, url)) != 0 ||
            sk_DIST_POINT_push(dps, dp) <= 0)
                goto fail;
        dp = NULL;
        rc = add_ext_i2d(x, nid, dps, 0, what, e);
        goto out;
fail:
        gmca_error_ossl(e, rc, "%s: out of memory", what);
out:
        DIST_POINT_free(dp);
        CRL_DIST_POINTS_free(dps);
        return rc;
}

/* Push an AccessDescription (method nid, URI) onto aia. */
static int push_access(AUTHORITY_INFO_ACCESS *aia, int nid, const char *uri)
{
        ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
        GENERAL_NAME *gn = ia5_name(GEN_URI, uri);

        if (ad == NULL || gn == NULL) {
                ACCESS_DESCRIPTION_free(ad);
                GENERAL_NAME_free(gn);
                return -1;
        }
        ASN1_OBJECT_free(ad->method);
        ad->method = OBJ_nid2obj(nid);
        GENERAL_NAME_free(ad->location);
        ad->location = gn;
        if (sk_ACCESS_DESCRIPTION_push(aia, ad) <= 0) {
                ACCESS_DESCRIPTION_free(ad);
                return -1;
        }
        return 0;
}

static int add_aia(X509 *x, const struct gmca_cert_template *t, struct gmca_error *e)
{
        AUTHORITY_INFO_ACCESS *aia;
        int rc = GMCA_ERR_NOMEM;

        if (t->ocsp_url == NULL && t->ca_issuers_url == NULL)
                return 0;
        if ((t->ocsp_url != NULL && !uri_ok(t->ocsp_url)) ||
            (t->ca_issuers_url != NULL && !uri_ok(t->ca_issuers_url)))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "authorityInfoAccess: RFC 5280 §4.2.2.1: not an http, "
                                      "https or ldap URI of at most %d visible ASCII bytes",
                                      URI_MAX);
        if ((aia = sk_ACCESS_DESCRIPTION_new_null()) == NULL ||
            (t->ocsp_url != NULL && push_access(aia, NID_ad_OCSP, t->ocsp_url) != 0) ||
            (t->ca_issuers_url != NULL &&
             push_access(aia, NID_ad_ca_issuers, t->ca_issuers_url) != 0)) {
                gmca_error_ossl(e, rc, "authorityInfoAccess: out of memory");
                goto out;
        }
        rc = add_ext_i2d(x, NID_info_access, aia, 0, "authorityInfoAccess", e);
out:
        AUTHORITY_INFO_ACCESS_free(aia);
        return rc;
}

static int add_policies(X509 *x, const struct gmca_cert_template *t, struct gmca_error *e)
{
        CERTIFICATEPOLICIES *pols = NULL;
        POLICYINFO *pi = NULL;
        POLICYQUALINFO *q = NULL;
        ASN1_OBJECT *oid;
        int rc = GMCA_ERR_NOMEM;

        if (t->policy_oid == NULL)
                return 0;
        /* no_name = 1: only dotted numbers, never a short or long name. */
        if ((oid = OBJ_txt2obj(t->policy_oid, 1)) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "certificatePolicies: RFC 5280 §4.2.1.4: policy "
                                      "identifier is not a dotted OID");
        }
        if (t->cps_uri != NULL && !uri_ok(t->cps_uri)) {
                ASN1_OBJECT_free(oid);
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "certificatePolicies: RFC 5280 §4.2.1.4: CPS pointer is "
                                      "not an http, https or ldap URI");
        }
        /* No setters exist for POLICYINFO/POLICYQUALINFO: the fields are the public API. */
        if ((pols = sk_POLICYINFO_new_null()) == NULL || (pi = POLICYINFO_new()) == NULL) {
                ASN1_OBJECT_free(oid);
                goto fail;
        }
        ASN1_OBJECT_free(pi->policyid);
        pi->policyid = oid;
        if (t->cps_uri != NULL) {
                if ((pi->qualifiers = sk_POLICYQUALINFO_new_null()) == NULL ||
                    (q = POLICYQUALINFO_new()) == NULL)
                        goto fail;
                ASN1_OBJECT_free(q->pqualid);
                q->pqualid = OBJ_nid2obj(NID_id_qt_cps);
                if ((q->d.cpsuri = ASN1_IA5STRING_new()) == NULL ||
                    ASN1_STRING_set(q->d.cpsuri, t->cps_uri, (int)strlen(t->cps_uri)) != 1 ||
                    sk_POLICYQUALINFO_push(pi->qualifiers, q) <= 0)
                        goto fail;
                q = NULL;
        }
        if (sk_POLICYINFO_push(pols, pi) <= 0)
                goto fail;
        pi = NULL;
        rc = add_ext_i2d(x, NID_certificate_policies, pols, 0, "certificatePolicies", e);
        goto out;
fail:
        gmca_error_ossl(e, rc, "certificatePolicies: out of memory");
out:
        POLICYQUALINFO_free(q);
        POLICYINFO_free(pi);
        CERTIFICATEPOLICIES_free(pols);
        return rc;
}

/*
 * subjectAltName, non-critical: the subject DN is never empty here
 * (RFC 5280 §4.2.1.6 requires criticality only when it is).
 */
static int add_san(X509 *x, const struct gmca_subject_info *si, struct gmca_error *e)
{
        GENERAL_NAMES *names;
        int rc = GMCA_ERR_INVALID;

        if (si == NULL || si->ndns + si->nip + si->nemail == 0)
                return 0;
        if (si->ndns > GMCA_SAN_MAX || si->nip > GMCA_SAN_MAX || si->nemail > GMCA_SAN_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "subjectAltName: at most %d entries of each kind",
                                      GMCA_SAN_MAX);
        if ((names = sk_GENERAL_NAME_new_null()) == NULL)
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "subjectAltName: out of memory");
        for (size_t i = 0; i < si->ndns; i++) {
                if (si->dns[i] == NULL || !dns_ok(si->dns[i])) {
                        gmca_error_set(e, rc, "subjectAltName: RFC 5280 §4.2.1.6: bad dNSName");
                        goto out;
                }
                if (push_name(names, ia5_name(GEN_DNS, si->dns[i])) != 0)
                        goto nomem;
        }
        for (size_t i = 0; i < si->nip; i++) {
                ASN1_OCTET_STRING *ip = si->ip[i] != NULL ? a2i_IPADDRESS(si->ip[i]) : NULL;
                GENERAL_NAME *gn;

                if (ip == NULL) {
                        gmca_ossl_clear();
                        gmca_error_set(e, rc, "subjectAltName: RFC 5280 §4.2.1.6: bad iPAddress");
                        goto out;
                }
                if ((gn = GENERAL_NAME_new()) == NULL) {
                        ASN1_OCTET_STRING_free(ip);
                        goto nomem;
                }
                GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
                if (push_name(names, gn) != 0)
                        goto nomem;
        }
        for (size_t i = 0; i < si->nemail; i++) {
                if (si->email[i] == NULL || !email_ok(si->email[i])) {
                        gmca_error_set(e, rc, "subjectAltName: RFC 5280 §4.2.1.6: bad rfc822Name");
                        goto out;
                }
                if (push_name(names, ia5_name(GEN_EMAIL, si->email[i])) != 0)
                        goto nomem;
        }
        rc = add_ext_i2d(x, NID_subject_alt_name, names, 0, "subjectAltName", e);
        goto out;
nomem:
        rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "subjectAltName: out of memory");
out:
        GENERAL_NAMES_free(names);
        return rc;
}

/*
 * GM/T 0015 private extensions, non-critical (CPS §2.1.3: relying parties
 * that do not know them may ignore them). IdentifyCode is the CHOICE arm
 * residenterCardNumber [0] EXPLICIT PrintableString, the others a bare
 * PrintableString (GMT-REFERENCE §1.2). Values are capped well under 128
 * bytes, so every length is one octet.
 */
static int add_pexts(X509 *x, const struct gmca_subject_info *si, struct gmca_error *e)
{
        if (si == NULL)
                return 0;
        for (int p = 0; p < GMCA_PEXT_COUNT; p++) {
                const char *v = si->pext[p];
                uint8_t der[4 + PEXT_VALUE_MAX];
                size_t n, off = 0;
                ASN1_OBJECT *obj;
                int rc;

                if (v == NULL)
                        continue;
                n = strnlen(v, PEXT_VALUE_MAX + 1);
                if (n == 0 || n > PEXT_VALUE_MAX || !printable_ok((const uint8_t *)v, n))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "%s: GM/T 0015: value must be 1..%d PrintableString "
                                              "characters",
                                              gmca_pext_name(p), PEXT_VALUE_MAX);
                if (p == GMCA_PEXT_IDENTITY_CARD) {
                        der[off++] = 0xa0; /* [0] EXPLICIT, constructed */
                        der[off++] = (uint8_t)(n + 2);
                }
                der[off++] = V_ASN1_PRINTABLESTRING;
                der[off++] = (uint8_t)n;
                memcpy(der + off, v, n);
                if ((obj = OBJ_txt2obj(gmca_pext_oid(p), 1)) == NULL)
                        return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: bad OID",
                                               gmca_pext_name(p));
                rc = add_ext_der(x, obj, 0, der, off + n, gmca_pext_name(p), e);
                ASN1_OBJECT_free(obj);
                if (rc != 0)
                        return rc;
        }
        return 0;
}

static int add_extensions(X509 *x, const struct gmca_cert_template *t,
                          const ASN1_OCTET_STRING *issuer_ski, struct gmca_error *e)
{
        static const uint8_t der_null[] = {V_ASN1_NULL, 0x00};
        int rc;

        if ((rc = add_basic_constraints(x, t, e)) != 0 ||
            (rc = add_key_usage(x, t->key_usage, e)) != 0 || (rc = add_eku(x, t, e)) != 0 ||
            (rc = add_key_ids(x, issuer_ski, e)) != 0 ||
            (rc = add_dp(x, NID_crl_distribution_points, t->crl_url, "cRLDistributionPoints", e)) !=
                0 ||
            (rc = add_dp(x, NID_freshest_crl, t->freshest_url, "freshestCRL", e)) != 0 ||
            (rc = add_aia(x, t, e)) != 0 || (rc = add_policies(x, t, e)) != 0 ||
            (rc = add_san(x, t->info, e)) != 0)
                return rc;
        if (t->ocsp_nocheck &&
            (rc = add_ext_der(x, OBJ_nid2obj(NID_id_pkix_OCSP_noCheck), 0, der_null,
                              sizeof(der_null), "ocspNoCheck", e)) != 0)
                return rc;
        return add_pexts(x, t->info, e);
}

X509 *gmca_cert_build(const struct gmca_cert_template *t, struct gmca_error *e)
{
        ASN1_OCTET_STRING *issuer_ski = NULL;
        EVP_MD_CTX *mctx = NULL;
        X509 *x = NULL, *ret = NULL;
        EVP_PKEY *vkey;

        if (check_template(t, e) != 0)
                return NULL;
        if (t->issuer != NULL) {
                if (check_issuer(t, &issuer_ski, e) != 0)
                        return NULL;
                vkey = t->issuer_key; /* shown above to be the issuer certificate's key */
        } else {
                /* Self-signed: the signing key must be the subject's own. */
                if (EVP_PKEY_eq(t->pubkey, t->issuer_key) != 1) {
                        gmca_ossl_clear();
                        gmca_error_set(e, GMCA_ERR_INVALID,
                                       "issuer key: a self-signed certificate must be signed "
                                       "with the subject's own key");
                        return NULL;
                }
                vkey = t->pubkey;
        }
        if ((x = X509_new()) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "certificate: out of memory");
                goto out;
        }
        if (set_basics(x, t, e) != 0 || add_extensions(x, t, issuer_ski, e) != 0)
                goto out;
        if (t->signer != NULL) {
                if (gmca_x509_sign(x, t->signer, e) != 0)
                        goto out;
        } else if ((mctx = gmca_sm2_sign_ctx(t->issuer_key, t->sm2_id, e)) == NULL) {
                goto out;
        } else if (X509_sign_ctx(x, mctx) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "certificate: SM2 signing failed");
                goto out;
        }
        /* A faulty signature must never leave the CA (fault attacks on ECC signing). */
        if (!t->skip_self_check && gmca_cert_verify_signed_by(x, vkey, t->sm2_id, e) != 0) {
                gmca_error_set(e, GMCA_ERR_CRYPTO, "certificate: fresh signature does not verify");
                goto out;
        }
        ret = x;
        x = NULL;
out:
        EVP_MD_CTX_free(mctx);
        X509_free(x);
        ASN1_OCTET_STRING_free(issuer_ski);
        return ret;
}

int gmca_cert_verify_signed_by(X509 *cert, EVP_PKEY *issuer_key, const char *id,
                               struct gmca_error *e)
{
        const ASN1_BIT_STRING *sig = NULL;
        const X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *obj = NULL;
        uint8_t *tbs = NULL;
        int ptype = V_ASN1_UNDEF, tbslen, rc;

        if (cert == NULL || issuer_key == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "certificate: nothing to verify");
        X509_get0_signature(&sig, &alg, cert);
        if (sig == NULL || alg == NULL)
                return gmca_error_set(e, GMCA_ERR_VERIFY, "certificate: no signature");
        X509_ALGOR_get0(&obj, &ptype, NULL, alg);
        /* GMT-REFERENCE §1.1: parameters absent (OpenSSL) or NULL (GmSSL option). */
        if (OBJ_obj2nid(obj) != NID_SM2_with_SM3 || (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL))
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "signatureAlgorithm: GM/T 0015: must be SM2-with-SM3 "
                                      "(1.2.156.10197.1.501)");
        if (X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(cert)) != 0)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "signature: RFC 5280 §4.1.1.2: outer and TBS algorithms "
                                      "differ");
        /*
         * The signature is checked over the TBS as DER-encoded now: a
         * certificate whose original encoding was not DER does not verify,
         * which is what a CA wants from its own inputs.
         */
        if ((tbslen = i2d_re_X509_tbs(cert, &tbs)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "certificate: cannot encode TBS");
        rc = gmca_sm2_verify(issuer_key, id, tbs, (size_t)tbslen, ASN1_STRING_get0_data(sig),
                             (size_t)ASN1_STRING_length(sig), e);
        OPENSSL_free(tbs);
        return rc == 0 ? 0 : GMCA_ERR_VERIFY;
}

/*
 * One DER TLV at *pp within avail bytes, strictly: definite length in its
 * shortest form, low tag numbers in one octet (ASN1_get_object alone
 * accepts BER). Advances *pp past the header.
 */
static int der_tlv(const uint8_t **pp, long avail, int *tag, int *cls, int *cons, long *len)
{
        const unsigned char *p = *pp;
        long l = 0;
        int tg = 0, xc = 0, r;

        r = ASN1_get_object(&p, &l, &tg, &xc, avail);
        if ((r & 0x80) != 0 || (r & 0x01) != 0) {
                gmca_ossl_clear();
                return -1;
        }
        if (p - *pp != ASN1_object_size(0, l, tg) - l)
                return -1;
        *pp = p;
        *tag = tg;
        *cls = xc;
        *cons = (r & V_ASN1_CONSTRUCTED) != 0;
        *len = l;
        return 0;
}

/*
 * The string inside a private extension's extnValue. IdentifyCode is a
 * CHOICE of [0] PrintableString, [1] UTF8String, [2] PrintableString, seen
 * EXPLICIT and IMPLICIT (GMT-REFERENCE §1.2); the others are PrintableString,
 * with UTF8String accepted because deployed CAs write it.
 */
static int pext_string(enum gmca_pext p, const uint8_t *der, long len, const uint8_t **s,
                       long *slen, int *stype)
{
        const uint8_t *q = der, *end = der + len;
        int tag, cls, cons;
        long l;

        if (der_tlv(&q, len, &tag, &cls, &cons, &l) != 0 || q + l != end)
                return -1;
        if (p == GMCA_PEXT_IDENTITY_CARD) {
                if (cls != V_ASN1_CONTEXT_SPECIFIC || tag < 0 || tag > 2)
                        return -1;
                if (!cons) {
                        *stype = tag == 1 ? V_ASN1_UTF8STRING : V_ASN1_PRINTABLESTRING;
                        *s = q;
                        *slen = l;
                        return 0;
                }
                if (der_tlv(&q, l, &tag, &cls, &cons, &l) != 0 || q + l != end)
                        return -1;
        }
        if (cls != V_ASN1_UNIVERSAL || cons ||
            (tag != V_ASN1_PRINTABLESTRING && tag != V_ASN1_UTF8STRING))
                return -1;
        *stype = tag;
        *s = q;
        *slen = l;
        return 0;
}

int gmca_cert_get_pext(const X509 *cert, enum gmca_pext p, char **value, struct gmca_error *e)
{
        const char *oid = gmca_pext_oid(p);
        const ASN1_OCTET_STRING *data;
        const uint8_t *s = NULL;
        ASN1_OBJECT *obj = NULL;
        char *out;
        long slen = 0;
        int idx, stype = 0, rc = GMCA_ERR_INVALID;

        if (cert == NULL || oid == NULL || value == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "private extension: bad arguments");
        if ((obj = OBJ_txt2obj(oid, 1)) == NULL)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: bad OID", gmca_pext_name(p));
        if ((idx = X509_get_ext_by_OBJ(cert, obj, -1)) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "%s: extension %s absent",
                                    gmca_pext_name(p), oid);
                goto out;
        }
        if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0) {
                gmca_error_set(e, rc, "%s: RFC 5280 §4.2: extension %s appears twice",
                               gmca_pext_name(p), oid);
                goto out;
        }
        data = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
        if (data == NULL || ASN1_STRING_length(data) <= 0 ||
            ASN1_STRING_length(data) > PEXT_EXT_MAX ||
            pext_string(p, ASN1_STRING_get0_data(data), ASN1_STRING_length(data), &s, &slen,
                        &stype) != 0) {
                gmca_error_set(e, rc, "%s: GM/T 0015: malformed extension value",
                               gmca_pext_name(p));
                goto out;
        }
        if (slen <= 0 || slen > PEXT_READ_MAX ||
            (stype == V_ASN1_PRINTABLESTRING ? !printable_ok(s, (size_t)slen)
                                             : !utf8_ok(s, (size_t)slen))) {
                gmca_error_set(e, rc, "%s: GM/T 0015: empty, over-long or ill-formed %s",
                               gmca_pext_name(p),
                               stype == V_ASN1_PRINTABLESTRING ? "PrintableString" : "UTF8String");
                goto out;
        }
        if ((out = OPENSSL_malloc((size_t)slen + 1)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: out of memory", gmca_pext_name(p));
                goto out;
        }
        memcpy(out, s, (size_t)slen);
        out[slen] = '\0';
        *value = out;
        rc = 0;
out:
        ASN1_OBJECT_free(obj);
        return rc;
}

int gmca_cert_fingerprint(const X509 *cert, char out[65], struct gmca_error *e)
{
        uint8_t *der = NULL, md[GMCA_SM3_LEN];
        int len, rc = 0;

        if (cert == NULL || (len = i2d_X509(cert, &der)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "certificate: cannot encode DER");
        if (gmca_sm3(der, (size_t)len, md) != 0)
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "fingerprint: SM3 failed");
        else
                gmca_hex(md, sizeof(md), out);
        OPENSSL_free(der);
        return rc;
}
