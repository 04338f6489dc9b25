/*
 * Intake of outside X.509 objects: PKCS#10 certificate requests from
 * subscribers and certificates (for import and checks). Everything here is
 * hostile input, so the parsing follows rpki-client: a size cap, DER or
 * exactly one PEM block, d2i over the exact buffer with no trailing bytes,
 * a re-encoding that must reproduce the input (no BER), one listed
 * algorithm (SM2-with-SM3 over an SM2 key, GM/T 0015), bounded and
 * duplicate-free attributes and extensions, and for requests the proof of
 * possession of CPS §2.2.1: the self-signature checked with an explicit
 * SM2 distinguishing ID.
 */
#include <limits.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "util.h"
#include "x509.h"

#define CSR_ATTR_MAX 32 /* attributes in a request */
#define CSR_EXT_MAX 32  /* extensions in an extensionRequest */
#define CERT_EXT_MAX 64 /* extensions in a certificate */
#define SERIAL_MAX 20   /* RFC 5280 §4.1.2.2: at most 20 octets */

static int is_ws(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_b64(uint8_t c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/* If buf[*i..len) starts with s, move *i past it. */
static int eat(const uint8_t *buf, size_t len, size_t *i, const char *s)
{
        size_t n = strlen(s);

        if (len - *i < n || memcmp(buf + *i, s, n) != 0)
                return 0;
        *i += n;
        return 1;
}

/* A line end (LF or CRLF) at *i, or the end of the input. */
static int eat_eol(const uint8_t *buf, size_t len, size_t *i)
{
        if (*i == len)
                return 1;
        return eat(buf, len, i, "\n") || eat(buf, len, i, "\r\n");
}

/*
 * Strict RFC 7468 reading of exactly one PEM block with one of the labels:
 * optional leading white space, no explanatory headers, base64 with padding
 * only at the end, after the END line only white space. *der is allocated
 * with OPENSSL_malloc; caller frees with OPENSSL_free.
 */
static int unpem(const uint8_t *buf, size_t len, const char *what, const char *const *labels,
                 uint8_t **der, size_t *derlen, struct gmca_error *e)
{
        uint8_t *b64 = NULL, *out = NULL;
        size_t i = 0, n = 0, pad = 0;
        const char *label = NULL;
        int dl, rc = GMCA_ERR_INVALID;

        while (i < len && is_ws(buf[i]))
                i++;
        if (!eat(buf, len, &i, "-----BEGIN ")) {
                gmca_error_set(e, rc, "%s: not DER and no PEM BEGIN line", what);
                goto out;
        }
        for (size_t l = 0; labels[l] != NULL && label == NULL; l++) {
                size_t j = i;

                if (eat(buf, len, &j, labels[l]) && eat(buf, len, &j, "-----") &&
                    eat_eol(buf, len, &j)) {
                        label = labels[l];
                        i = j;
                }
        }
        if (label == NULL) {
                gmca_error_set(e, rc, "%s: RFC 7468: PEM label is not \"%s\"", what, labels[0]);
                goto out;
        }
        if ((b64 = OPENSSL_malloc(len - i + 1)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "%s: out of memory", what);
                goto out;
        }
        /* Body lines up to a line that starts with the END marker. */
        while (i < len && !(len - i >= 5 && memcmp(buf + i, "-----", 5) == 0)) {
                size_t eol = i;

                while (eol < len && buf[eol] != '\n')
                        eol++;
                if (memchr(buf + i, ':', eol - i) != NULL) {
                        gmca_error_set(e, rc,
                                       "%s: RFC 7468: header line in the PEM body (no headers "
                                       "allowed)",
                                       what);
                        goto out;
                }
                for (; i < eol; i++) {
                        uint8_t c = buf[i];

                        if (c == '\r' && i + 1 == eol)
                                continue;
                        if (c == '=' && n > 0 && pad < 2) {
                                pad++;
                        } else if (!is_b64(c) || pad > 0) {
                                gmca_error_set(e, rc,
                                               "%s: RFC 7468: non-base64 character in the PEM "
                                               "body",
                                               what);
                                goto out;
                        }
                        b64[n++] = c;
                }
                if (i < len)
                        i++; /* the LF */
        }
        if (n == 0 || n % 4 != 0 || pad > 2) {
                gmca_error_set(e, rc, "%s: RFC 7468: PEM body is not padded base64", what);
                goto out;
        }
        if (!eat(buf, len, &i, "-----END ") || !eat(buf, len, &i, label) ||
            !eat(buf, len, &i, "-----") || !eat_eol(buf, len, &i)) {
                gmca_error_set(e, rc, "%s: RFC 7468: missing or mismatched PEM END line", what);
                goto out;
        }
        while (i < len && is_ws(buf[i]))
                i++;
        if (i < len) {
                size_t j = i;

                if (eat(buf, len, &j, "-----BEGIN"))
                        gmca_error_set(e, rc, "%s: more than one PEM block", what);
                else
                        gmca_error_set(e, rc, "%s: trailing data after the PEM block", what);
                goto out;
        }
        if ((out = OPENSSL_malloc(n / 4 * 3)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "%s: out of memory", what);
                goto out;
        }
        /* EVP_DecodeBlock counts the padding as zero bytes; they are removed below. */
        if ((dl = EVP_DecodeBlock(out, b64, (int)n)) < 0 || (size_t)dl != n / 4 * 3 ||
            (size_t)dl <= pad) {
                gmca_error_ossl(e, rc, "%s: RFC 7468: bad base64 in the PEM body", what);
                goto out;
        }
        *der = out;
        *derlen = (size_t)dl - pad;
        out = NULL;
        rc = 0;
out:
        OPENSSL_free(b64);
        OPENSSL_free(out);
        return rc;
}

/*
 * The DER bytes of the input: buf itself, or the decoded PEM block into
 * *owned (caller frees with OPENSSL_free).
 */
int gmca_der_input(const uint8_t *buf, size_t len, size_t max, const char *what,
                   const char *const *labels, uint8_t **owned, const uint8_t **der, size_t *derlen,
                   struct gmca_error *e)
{
        size_t i = 0;

        *owned = NULL;
        if (buf == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: empty input", what);
        if (len > max)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: input larger than %zu bytes", what,
                                      max);
        while (i < len && is_ws(buf[i]))
                i++;
        if (buf[0] == 0x30 || i == len || buf[i] != '-') {
                *der = buf;
                *derlen = len;
                return 0;
        }
        if (unpem(buf, len, what, labels, owned, derlen, e) != 0)
                return GMCA_ERR_INVALID;
        *der = *owned;
        return 0;
}

/*
 * After d2i: compare a fresh encoding with the input. tbs is the encoding
 * of the signed part made with i2d_re_* (which bypasses OpenSSL's cache of
 * the received bytes); full is i2d of the whole object.
 */
static int same_der(const uint8_t *der, size_t derlen, const uint8_t *full, int fulllen,
                    const char *what, struct gmca_error *e)
{
        if (fulllen <= 0 || (size_t)fulllen != derlen || memcmp(full, der, derlen) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: X.690 §10: not DER (re-encoding differs from the input)",
                                      what);
        return 0;
}

/*
 * OpenSSL keeps the received bytes of an X509_NAME and writes them back
 * unchanged, so a BER name survives a re-encoding of the whole object.
 * Rebuild the name entry by entry and compare the encodings.
 */
int gmca_name_is_der(const X509_NAME *name, const char *what, const char *field,
                     struct gmca_error *e)
{
        X509_NAME *copy = NULL;
        unsigned char *a = NULL, *b = NULL;
        int alen, blen, n, rc = GMCA_ERR_INVALID;

        if ((copy = X509_NAME_new()) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "%s: out of memory", what);
                goto out;
        }
        n = X509_NAME_entry_count(name);
        for (int i = 0; i < n; i++) {
                const X509_NAME_ENTRY *ent = X509_NAME_get_entry(name, i);
                int set = 0;

                if (i > 0 && X509_NAME_ENTRY_set(ent) ==
                                 X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i - 1)))
                        set = -1;
                if (X509_NAME_add_entry(copy, ent, -1, set) != 1) {
                        rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: %s: cannot copy", what, field);
                        goto out;
                }
        }
        alen = i2d_X509_NAME(name, &a);
        blen = i2d_X509_NAME(copy, &b);
        if (alen <= 0 || alen != blen || memcmp(a, b, (size_t)alen) != 0) {
                gmca_error_ossl(e, rc, "%s: X.690 §10: %s is not DER", what, field);
                goto out;
        }
        rc = 0;
out:
        OPENSSL_free(a);
        OPENSSL_free(b);
        X509_NAME_free(copy);
        return rc;
}

/* SM2-with-SM3 (1.2.156.10197.1.501), parameters absent or NULL (GMT-REFERENCE §1.1). */
static int check_sigalg(const X509_ALGOR *alg, const char *what, struct gmca_error *e)
{
        const ASN1_OBJECT *obj = NULL;
        int ptype = V_ASN1_UNDEF;
        char name[128], oid[128];

        X509_ALGOR_get0(&obj, &ptype, NULL, alg);
        if (obj == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: signature algorithm missing", what);
        if (OBJ_obj2nid(obj) != NID_SM2_with_SM3) {
                if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
                        gmca_strlcpy(oid, "?", sizeof(oid));
                if (OBJ_obj2txt(name, sizeof(name), obj, 0) <= 0)
                        gmca_strlcpy(name, oid, sizeof(name));
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: GM/T 0015: signature algorithm %s (%s) refused, only "
                                      "SM2-with-SM3 (1.2.156.10197.1.501)",
                                      what, name, oid);
        }
        if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: GM/T 0015: SM2-with-SM3 parameters must be absent or "
                                      "NULL",
                                      what);
        return 0;
}

/*
 * The subject public key: SM2 (id-ecPublicKey with the named curve
 * 1.2.156.10197.1.301, GM/T 0015), a valid point.
 */
static int check_pubkey(X509_PUBKEY *spki, EVP_PKEY *key, const char *what, struct gmca_error *e)
{
        ASN1_OBJECT *alg = NULL;
        const void *pval = NULL;
        X509_ALGOR *algor = NULL;
        const ASN1_OBJECT *curve = NULL;
        struct gmca_error sub;
        EVP_PKEY_CTX *ctx = NULL;
        int ptype = V_ASN1_UNDEF, rc = GMCA_ERR_INVALID;

        gmca_error_clear(&sub);
        if (spki == NULL || key == NULL) {
                gmca_error_ossl(e, rc, "%s: subject public key cannot be decoded", what);
                goto out;
        }
        if (gmca_sm2_is_sm2(key, &sub) != 0) {
                gmca_error_set(e, rc, "%s: %s", what, sub.msg);
                goto out;
        }
        if (X509_PUBKEY_get0_param(&alg, NULL, NULL, &algor, spki) != 1 ||
            OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey) {
                gmca_error_set(e, rc, "%s: GM/T 0015: public key algorithm must be id-ecPublicKey",
                               what);
                goto out;
        }
        X509_ALGOR_get0(NULL, &ptype, &pval, algor);
        curve = pval;
        if (ptype != V_ASN1_OBJECT || OBJ_obj2nid(curve) != NID_sm2) {
                gmca_error_set(e, rc,
                               "%s: GM/T 0015: public key parameters must be the named curve "
                               "SM2 (1.2.156.10197.1.301)",
                               what);
                goto out;
        }
        if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: out of memory", what);
                goto out;
        }
        /*
         * The quick check (on the curve, not at infinity, coordinates in
         * range) is complete for SM2: the curve's cofactor is 1, so every
         * such point has order n and the full check's n*P = O scalar
         * multiplication (as costly as a signature) adds nothing.
         */
        if (EVP_PKEY_public_check_quick(ctx) != 1) {
                gmca_error_ossl(e, rc, "%s: GM/T 0003: public key is not a valid SM2 point", what);
                goto out;
        }
        rc = 0;
out:
        gmca_ossl_clear();
        EVP_PKEY_CTX_free(ctx);
        return rc;
}

/*
 * OpenSSL writes an extension's critical BOOLEAN back as received, so an
 * explicit FALSE (DER leaves the DEFAULT out, X.690 §11.5) or a TRUE other
 * than 0xFF (X.690 §11.1) survives a re-encoding. Rebuild the extension
 * and compare.
 */
static int ext_is_der(X509_EXTENSION *ext, const char *what, struct gmca_error *e)
{
        X509_EXTENSION *copy = NULL;
        unsigned char *a = NULL, *b = NULL;
        int alen, blen, rc = GMCA_ERR_INVALID;
        char oid[80];

        copy = X509_EXTENSION_create_by_OBJ(NULL, X509_EXTENSION_get_object(ext),
                                            X509_EXTENSION_get_critical(ext),
                                            X509_EXTENSION_get_data(ext));
        if (copy == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: cannot copy an extension", what);
                goto out;
        }
        alen = i2d_X509_EXTENSION(ext, &a);
        blen = i2d_X509_EXTENSION(copy, &b);
        if (alen <= 0 || alen != blen || memcmp(a, b, (size_t)alen) != 0) {
                if (OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1) <= 0)
                        gmca_strlcpy(oid, "?", sizeof(oid));
                gmca_error_set(e, rc, "%s: X.690 §11.5: extension %s is not DER (critical flag)",
                               what, oid);
                goto out;
        }
        rc = 0;
out:
        gmca_ossl_clear();
        OPENSSL_free(a);
        OPENSSL_free(b);
        X509_EXTENSION_free(copy);
        return rc;
}

/* At most max extensions, each DER, no extension twice (RFC 5280 §4.2). */
static int check_exts(const STACK_OF(X509_EXTENSION) * exts, int max, const char *what,
                      struct gmca_error *e)
{
        int n = sk_X509_EXTENSION_num(exts), rc;
        char oid[80];

        if (n > max)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: more than %d extensions", what, max);
        for (int i = 0; i < n; i++)
                if ((rc = ext_is_der(sk_X509_EXTENSION_value(exts, i), what, e)) != 0)
                        return rc;
        for (int i = 0; i < n; i++) {
                const ASN1_OBJECT *a = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));

                for (int j = i + 1; j < n; j++) {
                        if (OBJ_cmp(a, X509_EXTENSION_get_object(
                                           sk_X509_EXTENSION_value(exts, j))) != 0)
                                continue;
                        if (OBJ_obj2txt(oid, sizeof(oid), a, 1) <= 0)
                                gmca_strlcpy(oid, "?", sizeof(oid));
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "%s: RFC 5280 §4.2: extension %s appears twice", what,
                                              oid);
                }
        }
        return 0;
}

/*
 * The extensionRequest attribute (PKCS#9, RFC 2985 §5.4.2): one value, a
 * DER SEQUENCE OF Extension, bounded, without duplicates. The value is kept
 * by OpenSSL as raw bytes, so it is decoded and re-encoded here.
 */
static int check_ext_req(X509_ATTRIBUTE *attr, struct gmca_error *e)
{
        static const char what[] = "CSR: PKCS#9 extensionRequest";
        STACK_OF(X509_EXTENSION) *exts = NULL;
        const ASN1_TYPE *t;
        const unsigned char *p;
        unsigned char *raw = NULL, *enc = NULL;
        int len, enclen, rc = GMCA_ERR_INVALID;

        if (X509_ATTRIBUTE_count(attr) != 1) {
                gmca_error_set(e, rc, "%s: must have exactly one value", what);
                goto out;
        }
        t = X509_ATTRIBUTE_get0_type(attr, 0);
        if (t == NULL || ASN1_TYPE_get(t) != V_ASN1_SEQUENCE) {
                gmca_error_set(e, rc, "%s: value is not a SEQUENCE OF Extension", what);
                goto out;
        }
        /* A SEQUENCE in an ANY is kept as its received encoding, tag included. */
        if ((len = i2d_ASN1_TYPE(t, &raw)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: cannot encode", what);
                goto out;
        }
        p = raw;
        if ((exts = d2i_X509_EXTENSIONS(NULL, &p, len)) == NULL || p != raw + len) {
                gmca_error_ossl(e, rc, "%s: malformed Extensions", what);
                goto out;
        }
        enclen = i2d_X509_EXTENSIONS(exts, &enc);
        if ((rc = same_der(raw, (size_t)len, enc, enclen, what, e)) != 0)
                goto out;
        if ((rc = check_exts(exts, CSR_EXT_MAX, what, e)) != 0)
                goto out;
        rc = 0;
out:
        OPENSSL_free(raw);
        OPENSSL_free(enc);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        return rc;
}

/* Bounded attributes, each type once, extensionRequest checked. */
static int check_attrs(const X509_REQ *req, struct gmca_error *e)
{
        int n = X509_REQ_get_attr_count(req), rc, extreq = 0;
        char oid[80];

        if (n > CSR_ATTR_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "CSR: PKCS#10: more than %d attributes",
                                      CSR_ATTR_MAX);
        for (int i = 0; i < n; i++) {
                X509_ATTRIBUTE *a = X509_REQ_get_attr(req, i);
                const ASN1_OBJECT *obj = X509_ATTRIBUTE_get0_object(a);
                int nid = OBJ_obj2nid(obj);

                for (int j = i + 1; j < n; j++) {
                        if (OBJ_cmp(obj, X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req, j))) !=
                            0)
                                continue;
                        if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
                                gmca_strlcpy(oid, "?", sizeof(oid));
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "CSR: PKCS#10: attribute %s appears twice", oid);
                }
                if (X509_ATTRIBUTE_count(a) < 1)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "CSR: PKCS#10: attribute without a value");
                if (nid != NID_ext_req && nid != NID_ms_ext_req)
                        continue;
                if (extreq++ > 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "CSR: PKCS#9: more than one extensionRequest");
                if ((rc = check_ext_req(a, e)) != 0)
                        return rc;
        }
        return 0;
}

static const char *const csr_labels[] = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", NULL};
static const char *const cert_labels[] = {"CERTIFICATE", NULL};

X509_REQ *gmca_csr_parse(const uint8_t *buf, size_t len, const char *sm2_id, struct gmca_error *e)
{
        static const char what[] = "CSR: PKCS#10";
        X509_REQ *req = NULL, *ret = NULL;
        uint8_t *owned = NULL, *tbs = NULL, *full = NULL;
        const uint8_t *der = NULL, *p;
        const ASN1_BIT_STRING *sig = NULL;
        const X509_ALGOR *alg = NULL;
        const X509_NAME *subject;
        struct gmca_error sub;
        size_t derlen = 0;
        int tbslen, fulllen;
        const char *id = sm2_id != NULL ? sm2_id : GMCA_SM2_DEFAULT_ID;

        gmca_error_clear(&sub);
        if (gmca_der_input(buf, len, GMCA_CSR_MAX, what, csr_labels, &owned, &der, &derlen, e) != 0)
                goto out;
        p = der;
        if (derlen > LONG_MAX || (req = d2i_X509_REQ(NULL, &p, (long)derlen)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: malformed or truncated DER", what);
                goto out;
        }
        if (p != der + derlen) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: trailing bytes after DER", what);
                goto out;
        }
        tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
        fulllen = i2d_X509_REQ(req, &full);
        if (tbslen <= 0) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: cannot re-encode", what);
                goto out;
        }
        if (same_der(der, derlen, full, fulllen, what, e) != 0)
                goto out;
        if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: RFC 2986 §4.1: version must be v1 (0)",
                               what);
                goto out;
        }
        X509_REQ_get0_signature(req, &sig, &alg);
        if (check_sigalg(alg, what, e) != 0)
                goto out;
        if (check_pubkey(X509_REQ_get_X509_PUBKEY(req), X509_REQ_get0_pubkey(req), what, e) != 0)
                goto out;
        subject = X509_REQ_get_subject_name(req);
        if (subject == NULL || X509_NAME_entry_count(subject) == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: CPS §2.1: subject is empty", what);
                goto out;
        }
        if (gmca_name_is_der(subject, what, "subject", e) != 0)
                goto out;
        if (check_attrs(req, e) != 0)
                goto out;
        /* Proof of possession, CPS §2.2.1. */
        if (gmca_sm2_verify(X509_REQ_get0_pubkey(req), id, tbs, (size_t)tbslen,
                            ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig),
                            &sub) != 0) {
                if (sub.code == GMCA_ERR_VERIFY)
                        gmca_error_set(e, GMCA_ERR_VERIFY,
                                       "CSR: GM/T 0009: SM2 signature does not verify with ID %s",
                                       id);
                else
                        gmca_error_set(e, sub.code, "CSR: %s", sub.msg);
                goto out;
        }
        ret = req;
        req = NULL;
out:
        gmca_ossl_clear();
        OPENSSL_free(tbs);
        OPENSSL_free(full);
        OPENSSL_free(owned);
        X509_REQ_free(req);
        return ret;
}

/* RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets. */
static int check_serial(const ASN1_INTEGER *serial, const char *what, struct gmca_error *e)
{
        BIGNUM *bn = NULL;
        int rc = GMCA_ERR_INVALID;

        if (serial == NULL || (bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL) {
                gmca_error_ossl(e, rc, "%s: RFC 5280 §4.1.2.2: bad serial number", what);
                goto out;
        }
        if (BN_is_negative(bn) || BN_is_zero(bn)) {
                gmca_error_set(e, rc, "%s: RFC 5280 §4.1.2.2: serial number must be positive",
                               what);
                goto out;
        }
        if (BN_num_bytes(bn) > SERIAL_MAX) {
                gmca_error_set(e, rc, "%s: RFC 5280 §4.1.2.2: serial number longer than %d octets",
                               what, SERIAL_MAX);
                goto out;
        }
        rc = 0;
out:
        BN_free(bn);
        return rc;
}

X509 *gmca_cert_parse(const uint8_t *buf, size_t len, struct gmca_error *e)
{
        static const char what[] = "certificate: X.509";
        X509 *cert = NULL, *ret = NULL;
        uint8_t *owned = NULL, *tbs = NULL, *full = NULL;
        const uint8_t *der = NULL, *p;
        const ASN1_BIT_STRING *sig = NULL, *iuid = NULL, *suid = NULL;
        const X509_ALGOR *alg = NULL;
        const X509_NAME *issuer, *subject;
        size_t derlen = 0;
        int tbslen, fulllen;

        if (gmca_der_input(buf, len, GMCA_CERT_MAX, what, cert_labels, &owned, &der, &derlen, e) !=
            0)
                goto out;
        p = der;
        if (derlen > LONG_MAX || (cert = d2i_X509(NULL, &p, (long)derlen)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: malformed or truncated DER", what);
                goto out;
        }
        if (p != der + derlen) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: trailing bytes after DER", what);
                goto out;
        }
        tbslen = i2d_re_X509_tbs(cert, &tbs);
        fulllen = i2d_X509(cert, &full);
        if (tbslen <= 0) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: cannot re-encode", what);
                goto out;
        }
        if (same_der(der, derlen, full, fulllen, what, e) != 0)
                goto out;
        if (X509_get_version(cert) != X509_VERSION_3) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: GM/T 0015: version must be v3 (2)", what);
                goto out;
        }
        if (check_serial(X509_get0_serialNumber(cert), what, e) != 0)
                goto out;
        X509_get0_signature(&sig, &alg, cert);
        if (check_sigalg(alg, what, e) != 0)
                goto out;
        if (X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(cert)) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "%s: RFC 5280 §4.1.1.2: signatureAlgorithm differs from the "
                               "TBSCertificate signature field",
                               what);
                goto out;
        }
        if (check_pubkey(X509_get_X509_PUBKEY(cert), X509_get0_pubkey(cert), what, e) != 0)
                goto out;
        issuer = X509_get_issuer_name(cert);
        subject = X509_get_subject_name(cert);
        if (X509_NAME_entry_count(issuer) == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: RFC 5280 §4.1.2.4: issuer is empty", what);
                goto out;
        }
        if (X509_NAME_entry_count(subject) == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: CPS §2.1: subject is empty", what);
                goto out;
        }
        if (gmca_name_is_der(issuer, what, "issuer", e) != 0 ||
            gmca_name_is_der(subject, what, "subject", e) != 0)
                goto out;
        X509_get0_uids(cert, &iuid, &suid);
        if (iuid != NULL || suid != NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "%s: RFC 5280 §4.1.2.8: unique identifiers are not allowed", what);
                goto out;
        }
        if (check_exts(X509_get0_extensions(cert), CERT_EXT_MAX, what, e) != 0)
                goto out;
        ret = cert;
        cert = NULL;
out:
        gmca_ossl_clear();
        OPENSSL_free(tbs);
        OPENSSL_free(full);
        OPENSSL_free(owned);
        X509_free(cert);
        return ret;
}
