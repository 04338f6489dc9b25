/*
 * app: the public application interface of include/gmca/gmca.h (libgmca)
 * over the library's own modules. A certificate goes through the same
 * strict intake as the CA's (gmca_cert_parse: size cap, DER only, SM2 only,
 * no duplicate extensions), then every field a relying party reads is
 * copied into plain C strings owned by the handle, so that no OpenSSL type
 * crosses the interface. Fields whose text could mislead (a NUL inside a
 * name or an alternative name, "a.gov.cn\0.evil") are refused rather than
 * cut short.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gmca/gmca.h"

#include "app_internal.h"
#include "crypto.h"
#include "err.h"
#include "util.h"
#include "x509.h"

/* The public codes are the library's. */
_Static_assert((int)GMCA_RC_INTERNAL == (int)GMCA_ERR_INTERNAL &&
                   (int)GMCA_RC_NOMEM == (int)GMCA_ERR_NOMEM &&
                   (int)GMCA_RC_INVALID == (int)GMCA_ERR_INVALID &&
                   (int)GMCA_RC_CRYPTO == (int)GMCA_ERR_CRYPTO &&
                   (int)GMCA_RC_VERIFY == (int)GMCA_ERR_VERIFY &&
                   (int)GMCA_RC_NOTFOUND == (int)GMCA_ERR_NOTFOUND &&
                   (int)GMCA_RC_IO == (int)GMCA_ERR_IO && (int)GMCA_RC_LIMIT == (int)GMCA_ERR_LIMIT,
               "public result codes differ from enum gmca_err");
_Static_assert(GMCA_STATUS_MESSAGE_MAX == GMCA_ERROR_MSG_MAX, "message sizes differ");
_Static_assert(GMCA_CERTIFICATE_MAX == GMCA_CERT_MAX, "certificate caps differ");
_Static_assert(GMCA_SM3_DIGEST_SIZE == GMCA_SM3_LEN && GMCA_SM4_KEY_SIZE == GMCA_SM4_KEY_LEN &&
                   GMCA_SM4_IV_SIZE == GMCA_SM4_GCM_IV_LEN &&
                   GMCA_SM4_TAG_SIZE == GMCA_SM4_GCM_TAG_LEN,
               "SM3/SM4 sizes differ");
_Static_assert(GMCA_KU_DIGITAL_SIGNATURE == X509v3_KU_DIGITAL_SIGNATURE &&
                   GMCA_KU_NON_REPUDIATION == X509v3_KU_NON_REPUDIATION &&
                   GMCA_KU_KEY_ENCIPHERMENT == X509v3_KU_KEY_ENCIPHERMENT &&
                   GMCA_KU_DATA_ENCIPHERMENT == X509v3_KU_DATA_ENCIPHERMENT &&
                   GMCA_KU_KEY_AGREEMENT == X509v3_KU_KEY_AGREEMENT &&
                   GMCA_KU_KEY_CERT_SIGN == X509v3_KU_KEY_CERT_SIGN &&
                   GMCA_KU_CRL_SIGN == X509v3_KU_CRL_SIGN &&
                   GMCA_KU_ENCIPHER_ONLY == X509v3_KU_ENCIPHER_ONLY &&
                   GMCA_KU_DECIPHER_ONLY == X509v3_KU_DECIPHER_ONLY,
               "keyUsage bits differ");

#define DN_TEXT_MAX 4096
#define STRINGS_MAX                                                                                \
        (4 * GMCA_NAME_ATTRIBUTES_MAX + 2 * GMCA_EKU_MAX + GMCA_PEXT_COUNT +                       \
         GMCA_SAN_ENTRIES_MAX + 16)

struct gmca_certificate {
        struct gmca_certificate_info info;
        uint8_t *der;
        size_t derlen;
        struct gmca_name_attribute subject[GMCA_NAME_ATTRIBUTES_MAX];
        struct gmca_name_attribute issuer[GMCA_NAME_ATTRIBUTES_MAX];
        struct gmca_extended_key_usage eku[GMCA_EKU_MAX];
        struct gmca_private_extension pext[GMCA_PEXT_COUNT];
        struct gmca_alt_name san[GMCA_SAN_ENTRIES_MAX];
        char serial[2 * 20 + 1];
        char not_before[32], not_after[32];
        char sigalg[80];
        char fingerprint[2 * GMCA_SM3_LEN + 1];
        char pk_fingerprint[2 * GMCA_SM3_LEN + 1];
        char public_key[2 * 65 + 1];
        char *strings[STRINGS_MAX]; /* every other string the info points to */
        size_t nstrings;
};

struct gmca_sm3_stream {
        EVP_MD_CTX *md;   /* plain SM3 */
        EVP_MAC_CTX *mac; /* HMAC-SM3 */
        int done;
};

int app_status(struct gmca_status *st, const struct gmca_error *e)
{
        if (st != NULL) {
                st->code = e->code;
                gmca_strlcpy(st->message, e->msg, sizeof(st->message));
        }
        return e->code;
}

void app_status_ok(struct gmca_status *st)
{
        if (st != NULL) {
                st->code = 0;
                st->message[0] = '\0';
        }
}

const char *gmca_rc_name(int rc)
{
        return gmca_err_name(rc);
}

const char *gmca_library_version(void)
{
        return "0.1.0";
}

/* Hand s (malloc'ed, may be NULL on allocation failure) to c; NULL when it cannot. */
static const char *keep(struct gmca_certificate *c, char *s, struct gmca_error *e)
{
        if (s == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "certificate: out of memory");
                return NULL;
        }
        if (c->nstrings == STRINGS_MAX) {
                free(s);
                gmca_error_set(e, GMCA_ERR_INTERNAL, "certificate: string table full");
                return NULL;
        }
        c->strings[c->nstrings++] = s;
        return s;
}

static const char *keep_copy(struct gmca_certificate *c, const char *s, size_t len,
                             struct gmca_error *e)
{
        char *d = malloc(len + 1);

        if (d != NULL) {
                memcpy(d, s, len);
                d[len] = '\0';
        }
        return keep(c, d, e);
}

/* Dotted text of an OID into a kept string. */
static const char *keep_oid(struct gmca_certificate *c, const ASN1_OBJECT *obj,
                            struct gmca_error *e)
{
        char oid[80];
        int n = OBJ_obj2txt(oid, sizeof(oid), obj, 1);

        if (n <= 0 || (size_t)n >= sizeof(oid)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "certificate: X.690 §8.19: unreadable OID");
                return NULL;
        }
        return keep_copy(c, oid, (size_t)n, e);
}

static int read_name(struct gmca_certificate *c, const X509_NAME *name, const char *field,
                     struct gmca_name_attribute *attrs, struct gmca_name_info *out,
                     struct gmca_error *e)
{
        char *text = NULL;
        int n = X509_NAME_entry_count(name), rc;

        if (n > GMCA_NAME_ATTRIBUTES_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "certificate: %s has more than %d attributes", field,
                                      GMCA_NAME_ATTRIBUTES_MAX);
        for (int i = 0; i < n; i++) {
                const X509_NAME_ENTRY *ent = X509_NAME_get_entry(name, i);
                const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(ent);
                unsigned char *u = NULL;
                int nid = OBJ_obj2nid(obj), ulen;

                if ((attrs[i].oid = keep_oid(c, obj, e)) == NULL)
                        return e->code;
                attrs[i].type =
                    nid != NID_undef && OBJ_nid2sn(nid) != NULL ? OBJ_nid2sn(nid) : attrs[i].oid;
                ulen = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ent));
                if (ulen < 0)
                        return gmca_error_ossl(
                            e, GMCA_ERR_INVALID,
                            "certificate: %s attribute %s: not a readable string", field,
                            attrs[i].oid);
                if (memchr(u, '\0', (size_t)ulen) != NULL) {
                        OPENSSL_free(u);
                        return gmca_error_set(
                            e, GMCA_ERR_INVALID,
                            "certificate: %s attribute %s contains a NUL character", field,
                            attrs[i].oid);
                }
                attrs[i].value = keep_copy(c, (const char *)u, (size_t)ulen, e);
                OPENSSL_free(u);
                if (attrs[i].value == NULL)
                        return e->code;
        }
        if ((text = malloc(DN_TEXT_MAX)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "certificate: out of memory");
        if ((rc = gmca_dn_format(name, text, DN_TEXT_MAX, e)) != 0) {
                free(text);
                return rc;
        }
        if ((out->text = keep(c, text, e)) == NULL)
                return e->code;
        out->attributes = attrs;
        out->count = (size_t)n;
        return 0;
}

static int read_time(const ASN1_TIME *t, const char *field, int64_t *secs, char *text,
                     size_t textlen, struct gmca_error *e)
{
        struct tm tm;
        time_t v;

        memset(&tm, 0, sizeof(tm));
        if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
                return gmca_error_ossl(e, GMCA_ERR_INVALID,
                                       "certificate: RFC 5280 §4.1.2.5: bad %s", field);
        v = timegm(&tm);
        *secs = (int64_t)v;
        gmca_time_iso(v, text, textlen);
        return 0;
}

/* Short names of the key purposes RFC 5280 §4.2.1.12 and GM/T 0015 use. */
static const char *purpose_name(const ASN1_OBJECT *obj)
{
        int nid = OBJ_obj2nid(obj);

        return nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
}

static int read_eku(struct gmca_certificate *c, X509 *x, struct gmca_error *e)
{
        EXTENDED_KEY_USAGE *eku;
        int crit = -1, n, rc = GMCA_ERR_INVALID;

        eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
        if (eku == NULL)
                return crit == -1 ? 0
                                  : gmca_error_ossl(e, rc,
                                                    "certificate: RFC 5280 §4.2.1.12: malformed "
                                                    "extKeyUsage");
        n = sk_ASN1_OBJECT_num(eku);
        if (n > GMCA_EKU_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "certificate: more than %d key purposes",
                                    GMCA_EKU_MAX);
                goto out;
        }
        for (int i = 0; i < n; i++) {
                const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
                const char *name = purpose_name(obj);

                if ((c->eku[i].oid = keep_oid(c, obj, e)) == NULL) {
                        rc = e->code;
                        goto out;
                }
                c->eku[i].name = name != NULL ? name : c->eku[i].oid;
        }
        c->info.ext_key_usage = c->eku;
        c->info.ext_key_usage_count = (size_t)n;
        rc = 0;
out:
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        return rc;
}

static int read_san(struct gmca_certificate *c, X509 *x, struct gmca_error *e)
{
        GENERAL_NAMES *gens;
        size_t count = 0;
        int crit = -1, rc = GMCA_ERR_INVALID;

        gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
        if (gens == NULL)
                return crit == -1 ? 0
                                  : gmca_error_ossl(e, rc,
                                                    "certificate: RFC 5280 §4.2.1.6: malformed "
                                                    "subjectAltName");
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
                const ASN1_STRING *s;
                const char *kind = NULL;
                char ip[INET6_ADDRSTRLEN];
                int type;

                s = GENERAL_NAME_get0_value(gn, &type);
                if (type == GEN_DNS)
                        kind = "dns";
                else if (type == GEN_EMAIL)
                        kind = "email";
                else if (type == GEN_URI)
                        kind = "uri";
                else if (type == GEN_IPADD)
                        kind = "ip";
                else
                        continue;
                if (count == GMCA_SAN_ENTRIES_MAX) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                            "certificate: more than %d subjectAltName entries",
                                            GMCA_SAN_ENTRIES_MAX);
                        goto out;
                }
                c->san[count].kind = kind;
                if (type == GEN_IPADD) {
                        int len = ASN1_STRING_length(s);

                        if ((len != 4 && len != 16) ||
                            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), ip,
                                      sizeof(ip)) == NULL) {
                                gmca_error_set(e, rc,
                                               "certificate: RFC 5280 §4.2.1.6: iPAddress is not 4 "
                                               "or 16 octets");
                                goto out;
                        }
                        c->san[count].value = keep_copy(c, ip, strlen(ip), e);
                } else {
                        int len = ASN1_STRING_length(s);

                        if (len <= 0 ||
                            memchr(ASN1_STRING_get0_data(s), '\0', (size_t)len) != NULL) {
                                gmca_error_set(e, rc,
                                               "certificate: RFC 5280 §4.2.1.6: empty %s name or "
                                               "one with a NUL character",
                                               kind);
                                goto out;
                        }
                        c->san[count].value =
                            keep_copy(c, (const char *)ASN1_STRING_get0_data(s), (size_t)len, e);
                }
                if (c->san[count].value == NULL) {
                        rc = e->code;
                        goto out;
                }
                count++;
        }
        c->info.alt_names = c->san;
        c->info.alt_name_count = count;
        rc = 0;
out:
        GENERAL_NAMES_free(gens);
        return rc;
}

static int read_constraints(struct gmca_certificate *c, X509 *x, struct gmca_error *e)
{
        uint32_t flags = X509_get_extension_flags(x);
        int idx;

        /* OpenSSL decodes the standard extensions once; a failure there marks the certificate. */
        if ((flags & EXFLAG_INVALID) != 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID,
                                       "certificate: RFC 5280 §4.2: a standard extension "
                                       "(basicConstraints, keyUsage, ...) is malformed");
        if ((flags & EXFLAG_KUSAGE) != 0) {
                c->info.has_key_usage = 1;
                c->info.key_usage = (unsigned)X509_get_key_usage(x);
                idx = X509_get_ext_by_NID(x, NID_key_usage, -1);
                c->info.key_usage_critical =
                    idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 1;
        }
        c->info.path_len = -1;
        if ((flags & EXFLAG_BCONS) != 0) {
                c->info.has_basic_constraints = 1;
                c->info.is_ca = (flags & EXFLAG_CA) != 0;
                if (c->info.is_ca) {
                        long pl = X509_get_pathlen(x);

                        c->info.path_len = pl >= 0 && pl <= INT_MAX ? (int)pl : -1;
                }
        }
        return 0;
}

static int read_pexts(struct gmca_certificate *c, X509 *x, struct gmca_error *e)
{
        size_t n = 0;

        for (int p = 0; p < GMCA_PEXT_COUNT; p++) {
                struct gmca_error sub;
                char *v = NULL;
                int rc;

                gmca_error_clear(&sub);
                rc = gmca_cert_get_pext(x, (enum gmca_pext)p, &v, &sub);
                if (rc == GMCA_ERR_NOTFOUND)
                        continue;
                if (rc != 0) {
                        gmca_error_set(e, rc, "certificate: %s", sub.msg);
                        return rc;
                }
                c->pext[n].name = gmca_pext_name((enum gmca_pext)p);
                c->pext[n].oid = gmca_pext_oid((enum gmca_pext)p);
                c->pext[n].value = keep_copy(c, v, strlen(v), e);
                OPENSSL_free(v);
                if (c->pext[n].value == NULL)
                        return e->code;
                n++;
        }
        c->info.private_extensions = c->pext;
        c->info.private_extension_count = n;
        return 0;
}

static int read_key(struct gmca_certificate *c, X509 *x, struct gmca_error *e)
{
        uint8_t *spki = NULL, md[GMCA_SM3_LEN], xy[64];
        int len, rc;

        if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID,
                                       "certificate: cannot encode the SubjectPublicKeyInfo");
        rc = gmca_sm3(spki, (size_t)len, md);
        OPENSSL_free(spki);
        if (rc != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "certificate: SM3 failed");
        gmca_hex(md, sizeof(md), c->pk_fingerprint);
        if ((rc = gmca_sm2_pub_xy(X509_get0_pubkey(x), xy, e)) != 0)
                return rc;
        memcpy(c->public_key, "04", 2);
        for (size_t i = 0; i < sizeof(xy); i += GMCA_SM3_LEN)
                gmca_hex(xy + i, GMCA_SM3_LEN, c->public_key + 2 + 2 * i);
        return 0;
}

static int fill(struct gmca_certificate *c, X509 *x, struct gmca_error *e)
{
        const X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *obj = NULL;
        int len, rc;

        if ((len = i2d_X509(x, &c->der)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "certificate: cannot encode DER");
        c->derlen = (size_t)len;
        c->info.version = (int)X509_get_version(x) + 1;
        if (gmca_serial_hex(x, c->serial, sizeof(c->serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "certificate: unreadable serial number");
        c->info.serial = c->serial;
        if ((rc = read_name(c, X509_get_subject_name(x), "subject", c->subject, &c->info.subject,
                            e)) != 0 ||
            (rc = read_name(c, X509_get_issuer_name(x), "issuer", c->issuer, &c->info.issuer, e)) !=
                0)
                return rc;
        if ((rc = read_time(X509_get0_notBefore(x), "notBefore", &c->info.not_before, c->not_before,
                            sizeof(c->not_before), e)) != 0 ||
            (rc = read_time(X509_get0_notAfter(x), "notAfter", &c->info.not_after, c->not_after,
                            sizeof(c->not_after), e)) != 0)
                return rc;
        c->info.not_before_text = c->not_before;
        c->info.not_after_text = c->not_after;
        X509_get0_signature(NULL, &alg, x);
        X509_ALGOR_get0(&obj, NULL, NULL, alg);
        if (obj == NULL || OBJ_obj2txt(c->sigalg, sizeof(c->sigalg), obj, 1) <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "certificate: unreadable signature algorithm");
        c->info.signature_algorithm = c->sigalg;
        if ((rc = read_constraints(c, x, e)) != 0 || (rc = read_eku(c, x, e)) != 0 ||
            (rc = read_san(c, x, e)) != 0 || (rc = read_pexts(c, x, e)) != 0 ||
            (rc = read_key(c, x, e)) != 0)
                return rc;
        if ((rc = gmca_cert_fingerprint(x, c->fingerprint, e)) != 0)
                return rc;
        c->info.fingerprint = c->fingerprint;
        c->info.public_key_fingerprint = c->pk_fingerprint;
        c->info.public_key = c->public_key;
        return 0;
}

struct gmca_certificate *gmca_certificate_parse(const void *data, size_t len,
                                                struct gmca_status *st)
{
        struct gmca_certificate *c = NULL, *ret = NULL;
        struct gmca_error e;
        X509 *x = NULL;

        gmca_error_clear(&e);
        if (data == NULL && len != 0) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "certificate: no input");
                goto out;
        }
        if ((x = gmca_cert_parse(data, len, &e)) == NULL)
                goto out;
        if ((c = calloc(1, sizeof(*c))) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "certificate: out of memory");
                goto out;
        }
        if (fill(c, x, &e) != 0)
                goto out;
        ret = c;
        c = NULL;
out:
        gmca_ossl_clear();
        X509_free(x);
        gmca_certificate_free(c);
        if (ret == NULL)
                app_status(st, &e);
        else
                app_status_ok(st);
        return ret;
}

struct gmca_certificate *gmca_certificate_load(const char *path, struct gmca_status *st)
{
        struct gmca_certificate *c;
        struct gmca_error e;
        uint8_t *buf = NULL;
        size_t len = 0;

        gmca_error_clear(&e);
        if (path == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "certificate: no file name");
                app_status(st, &e);
                return NULL;
        }
        if (gmca_read_file(path, GMCA_CERT_MAX, &buf, &len, &e) != 0) {
                app_status(st, &e);
                return NULL;
        }
        c = gmca_certificate_parse(buf, len, st);
        free(buf);
        return c;
}

void gmca_certificate_free(struct gmca_certificate *cert)
{
        if (cert == NULL)
                return;
        for (size_t i = 0; i < cert->nstrings; i++)
                free(cert->strings[i]);
        OPENSSL_free(cert->der);
        free(cert);
}

const struct gmca_certificate_info *gmca_certificate_info(const struct gmca_certificate *cert)
{
        return cert != NULL ? &cert->info : NULL;
}

const uint8_t *gmca_certificate_der(const struct gmca_certificate *cert, size_t *len)
{
        if (cert == NULL) {
                if (len != NULL)
                        *len = 0;
                return NULL;
        }
        if (len != NULL)
                *len = cert->derlen;
        return cert->der;
}

const char *gmca_certificate_subject_attribute(const struct gmca_certificate *cert,
                                               const char *type)
{
        if (cert == NULL || type == NULL)
                return NULL;
        for (size_t i = 0; i < cert->info.subject.count; i++) {
                const struct gmca_name_attribute *a = &cert->info.subject.attributes[i];

                if (strcmp(a->type, type) == 0 || strcmp(a->oid, type) == 0)
                        return a->value;
        }
        return NULL;
}

const char *gmca_certificate_private_extension(const struct gmca_certificate *cert,
                                               const char *name_or_oid)
{
        if (cert == NULL || name_or_oid == NULL)
                return NULL;
        for (size_t i = 0; i < cert->info.private_extension_count; i++) {
                const struct gmca_private_extension *p = &cert->info.private_extensions[i];

                if (strcmp(p->name, name_or_oid) == 0 || strcmp(p->oid, name_or_oid) == 0)
                        return p->value;
        }
        return NULL;
}

int gmca_random_bytes(void *buf, size_t len, struct gmca_status *st)
{
        struct gmca_error e;

        gmca_error_clear(&e);
        if (buf == NULL && len != 0) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "random: no buffer");
                return app_status(st, &e);
        }
        if (len != 0 && gmca_rand_bytes(buf, len, &e) != 0)
                return app_status(st, &e);
        app_status_ok(st);
        return 0;
}

int gmca_sm3_digest(const void *data, size_t len, uint8_t out[GMCA_SM3_DIGEST_SIZE],
                    struct gmca_status *st)
{
        static const uint8_t none[1];
        struct gmca_error e;

        gmca_error_clear(&e);
        if ((data == NULL && len != 0) || out == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "SM3: missing input or output");
                return app_status(st, &e);
        }
        if (gmca_sm3(data != NULL ? data : none, len, out) != 0) {
                gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "SM3 failed");
                return app_status(st, &e);
        }
        app_status_ok(st);
        return 0;
}

int gmca_sm3_hmac(const void *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[GMCA_SM3_DIGEST_SIZE], struct gmca_status *st)
{
        struct gmca_error e;

        gmca_error_clear(&e);
        if (out == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "HMAC-SM3: no output");
                return app_status(st, &e);
        }
        if (gmca_hmac_sm3(key, keylen, data, len, out, &e) != 0)
                return app_status(st, &e);
        app_status_ok(st);
        return 0;
}

struct gmca_sm3_stream *gmca_sm3_stream_new(const void *key, size_t keylen, struct gmca_status *st)
{
        static const uint8_t nokey[1];
        char digest[] = "SM3";
        OSSL_PARAM params[2];
        struct gmca_sm3_stream *s = NULL;
        EVP_MAC *mac = NULL;
        struct gmca_error e;

        gmca_error_clear(&e);
        if (key == NULL && keylen != 0) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "HMAC-SM3: missing key");
                goto fail;
        }
        if ((s = calloc(1, sizeof(*s))) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "SM3: out of memory");
                goto fail;
        }
        if (key == NULL) {
                if ((s->md = gmca_sm3_new()) == NULL) {
                        gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "SM3: cannot start");
                        goto fail;
                }
                app_status_ok(st);
                return s;
        }
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        /* HMAC's init keeps the previous key when given NULL: pass a real empty key. */
        if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
            (s->mac = EVP_MAC_CTX_new(mac)) == NULL ||
            EVP_MAC_init(s->mac, keylen != 0 ? key : nokey, keylen, params) != 1) {
                gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "HMAC-SM3: cannot start");
                goto fail;
        }
        EVP_MAC_free(mac);
        app_status_ok(st);
        return s;
fail:
        EVP_MAC_free(mac);
        gmca_sm3_stream_free(s);
        app_status(st, &e);
        return NULL;
}

int gmca_sm3_stream_update(struct gmca_sm3_stream *s, const void *data, size_t len,
                           struct gmca_status *st)
{
        struct gmca_error e;
        int ok;

        gmca_error_clear(&e);
        if (s == NULL || s->done || (data == NULL && len != 0)) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "SM3: update after final or without data");
                return app_status(st, &e);
        }
        if (len == 0) {
                app_status_ok(st);
                return 0;
        }
        ok = s->md != NULL ? gmca_sm3_update(s->md, data, len) == 0
                           : EVP_MAC_update(s->mac, data, len) == 1;
        if (!ok) {
                gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "SM3: update failed");
                return app_status(st, &e);
        }
        app_status_ok(st);
        return 0;
}

int gmca_sm3_stream_final(struct gmca_sm3_stream *s, uint8_t out[GMCA_SM3_DIGEST_SIZE],
                          struct gmca_status *st)
{
        struct gmca_error e;
        size_t n = 0;
        int ok;

        gmca_error_clear(&e);
        if (s == NULL || s->done || out == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "SM3: final twice or without output");
                return app_status(st, &e);
        }
        s->done = 1;
        if (s->md != NULL) {
                /* gmca_sm3_final frees the context. */
                ok = gmca_sm3_final(s->md, out) == 0;
                s->md = NULL;
        } else {
                ok = EVP_MAC_final(s->mac, out, &n, GMCA_SM3_DIGEST_SIZE) == 1 &&
                     n == GMCA_SM3_DIGEST_SIZE;
        }
        if (!ok) {
                gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "SM3: final failed");
                return app_status(st, &e);
        }
        app_status_ok(st);
        return 0;
}

void gmca_sm3_stream_free(struct gmca_sm3_stream *s)
{
        if (s == NULL)
                return;
        EVP_MD_CTX_free(s->md);
        EVP_MAC_CTX_free(s->mac); /* cleanses the padded key */
        free(s);
}

int gmca_sm4_seal(const uint8_t key[GMCA_SM4_KEY_SIZE], const void *aad, size_t aadlen,
                  const void *in, size_t len, uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        static const uint8_t none[1];
        struct gmca_error e;
        uint8_t *buf = NULL;
        size_t total;

        gmca_error_clear(&e);
        if (key == NULL || out == NULL || outlen == NULL || (in == NULL && len != 0) ||
            (aad == NULL && aadlen != 0)) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "SM4-GCM: missing key, input or output");
                goto out;
        }
        if (len > GMCA_SM4_SEAL_MAX || aadlen > GMCA_SM4_SEAL_MAX) {
                gmca_error_set(&e, GMCA_ERR_LIMIT, "SM4-GCM: input larger than %zu bytes",
                               GMCA_SM4_SEAL_MAX);
                goto out;
        }
        total = len + GMCA_SM4_SEAL_OVERHEAD;
        if ((buf = malloc(total)) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "SM4-GCM: out of memory");
                goto out;
        }
        /* A random 96-bit IV per message: SP 800-38D §8.2.2, at most 2^32 messages per key. */
        if (gmca_rand_bytes(buf, GMCA_SM4_IV_SIZE, &e) != 0 ||
            gmca_sm4_gcm_encrypt(key, buf, aad != NULL ? aad : none, aadlen, in != NULL ? in : none,
                                 len, buf + GMCA_SM4_IV_SIZE, buf + GMCA_SM4_IV_SIZE + len,
                                 &e) != 0)
                goto out;
        *out = buf;
        *outlen = total;
        buf = NULL;
out:
        free(buf);
        return e.code != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

int gmca_sm4_open(const uint8_t key[GMCA_SM4_KEY_SIZE], const void *aad, size_t aadlen,
                  const void *in, size_t len, uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        static const uint8_t none[1];
        const uint8_t *p = in;
        struct gmca_error e;
        uint8_t *buf = NULL;
        size_t n = 0;

        gmca_error_clear(&e);
        if (key == NULL || out == NULL || outlen == NULL || in == NULL ||
            (aad == NULL && aadlen != 0)) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "SM4-GCM: missing key, input or output");
                goto out;
        }
        if (len < GMCA_SM4_SEAL_OVERHEAD) {
                gmca_error_set(&e, GMCA_ERR_INVALID,
                               "SM4-GCM: %zu bytes is shorter than IV and tag (%d bytes)", len,
                               GMCA_SM4_SEAL_OVERHEAD);
                goto out;
        }
        if (len - GMCA_SM4_SEAL_OVERHEAD > GMCA_SM4_SEAL_MAX || aadlen > GMCA_SM4_SEAL_MAX) {
                gmca_error_set(&e, GMCA_ERR_LIMIT, "SM4-GCM: input larger than %zu bytes",
                               GMCA_SM4_SEAL_MAX);
                goto out;
        }
        n = len - GMCA_SM4_SEAL_OVERHEAD;
        /* One byte more so that an empty plaintext still has a buffer to return. */
        if ((buf = malloc(n + 1)) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "SM4-GCM: out of memory");
                goto out;
        }
        if (gmca_sm4_gcm_decrypt(key, p, aad != NULL ? aad : none, aadlen, p + GMCA_SM4_IV_SIZE, n,
                                 p + GMCA_SM4_IV_SIZE + n, buf, &e) != 0) {
                if (e.code == GMCA_ERR_VERIFY) {
                        gmca_error_clear(&e);
                        gmca_error_set(&e, GMCA_ERR_VERIFY,
                                       "SM4-GCM: authentication failed (wrong key, associated "
                                       "data or altered message)");
                }
                goto out;
        }
        *out = buf;
        *outlen = n;
        buf = NULL;
out:
        gmca_buffer_free(buf, n + 1);
        return e.code != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

void gmca_buffer_free(void *buf, size_t len)
{
        if (buf == NULL)
                return;
        OPENSSL_cleanse(buf, len);
        free(buf);
}
