/*
 * kmproto: the CA-KM messages of kmproto.h (GM/T 0014 / GM/T 0034 as
 * GMT-REFERENCE §5 pieces them together) as libcrypto ASN.1 templates, and
 * the conversion between them and struct gmca_km_msg.
 *
 * Both sides of the link are gmca, but each treats the other's bytes as
 * hostile: a KM answer reaches the CA engine, a CA request reaches the
 * KM's escrow. So a message is decoded from exactly its buffer, must
 * re-encode to the same bytes (X.690 DER), and every field is checked
 * against the one form this module writes: version 1, the fixed GM
 * algorithm identifiers, serials of 1..20 positive octets, SM2 public keys
 * only, GeneralizedTime without fractions, bounded UTF-8 strings, and
 * 1..GMCA_KM_ITEMS_MAX items. KSRequest and KSRespond share one C layout
 * (only their lists differ), as do CARequest and KMRespond.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cms_asn1.h"
#include "crypto.h"
#include "envelope.h"
#include "kmproto.h"

#define OID_SM2 "1.2.156.10197.1.301"
#define OID_SM2_ENC "1.2.156.10197.1.301.3"
#define OID_SM2_WITH_SM3 "1.2.156.10197.1.501"
#define OID_SM3 "1.2.156.10197.1.401"
#define OID_SM4_ECB "1.2.156.10197.1.104.1"
#define KM_VERSION 1
#define KM_KEY_BITS 256
#define SERIAL_MAX 20
#define NAME_DER_MAX 4096
#define TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* EntName ::= SEQUENCE { hashAlgorithm, entName GeneralName, entPubKeyHash,
 * serialNumber } */
typedef struct {
        X509_ALGOR *hash_alg;
        GENERAL_NAME *name;
        ASN1_OCTET_STRING *key_hash;
        ASN1_INTEGER *serial;
} KM_ENT;

ASN1_SEQUENCE(KM_ENT) =
    {
        ASN1_SIMPLE(KM_ENT, hash_alg, X509_ALGOR),
        ASN1_SIMPLE(KM_ENT, name, GENERAL_NAME),
        ASN1_SIMPLE(KM_ENT, key_hash, ASN1_OCTET_STRING),
        ASN1_SIMPLE(KM_ENT, serial, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(KM_ENT)

    /* AppUserInfo */
    typedef struct {
        ASN1_INTEGER *cert_no;
        X509_PUBKEY *user_pub;
        ASN1_GENERALIZEDTIME *not_before;
        ASN1_GENERALIZEDTIME *not_after;
        ASN1_UTF8STRING *user_name;
} KM_USER;

ASN1_SEQUENCE(KM_USER) =
    {
        ASN1_SIMPLE(KM_USER, cert_no, ASN1_INTEGER),
        ASN1_SIMPLE(KM_USER, user_pub, X509_PUBKEY),
        ASN1_SIMPLE(KM_USER, not_before, ASN1_GENERALIZEDTIME),
        ASN1_SIMPLE(KM_USER, not_after, ASN1_GENERALIZEDTIME),
        ASN1_IMP_OPT(KM_USER, user_name, ASN1_UTF8STRING, 0),
} static_ASN1_SEQUENCE_END(KM_USER)

    /* ApplyKeyReq */
    typedef struct {
        X509_ALGOR *key_type;
        ASN1_INTEGER *key_len;
        X509_ALGOR *asym;
        X509_ALGOR *sym;
        X509_ALGOR *hash;
        KM_USER *user;
} KM_APPLY;

ASN1_SEQUENCE(KM_APPLY) =
    {
        ASN1_SIMPLE(KM_APPLY, key_type, X509_ALGOR), ASN1_SIMPLE(KM_APPLY, key_len, ASN1_INTEGER),
        ASN1_SIMPLE(KM_APPLY, asym, X509_ALGOR),     ASN1_SIMPLE(KM_APPLY, sym, X509_ALGOR),
        ASN1_SIMPLE(KM_APPLY, hash, X509_ALGOR),     ASN1_SIMPLE(KM_APPLY, user, KM_USER),
} static_ASN1_SEQUENCE_END(KM_APPLY)

    /* RestoreKeyReq */
    typedef struct {
        X509_ALGOR *asym;
        X509_ALGOR *sym;
        X509_ALGOR *hash;
        ASN1_INTEGER *cert_no;
        X509_PUBKEY *user_pub;
        ASN1_UTF8STRING *info;
} KM_RESTORE;

ASN1_SEQUENCE(KM_RESTORE) =
    {
        ASN1_SIMPLE(KM_RESTORE, asym, X509_ALGOR),
        ASN1_SIMPLE(KM_RESTORE, sym, X509_ALGOR),
        ASN1_SIMPLE(KM_RESTORE, hash, X509_ALGOR),
        ASN1_SIMPLE(KM_RESTORE, cert_no, ASN1_INTEGER),
        ASN1_SIMPLE(KM_RESTORE, user_pub, X509_PUBKEY),
        ASN1_IMP_OPT(KM_RESTORE, info, ASN1_UTF8STRING, 0),
} static_ASN1_SEQUENCE_END(KM_RESTORE)

    /* RevokeKeyReq and RevokeKeyRespond */
    typedef struct {
        ASN1_INTEGER *cert_no;
} KM_REVOKE;

ASN1_SEQUENCE(KM_REVOKE) =
    {
        ASN1_SIMPLE(KM_REVOKE, cert_no, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(KM_REVOKE)

    /* RetKeyRespond; retPriKey is the SM2EnvelopedKey's own DER (a SEQUENCE) */
    typedef struct {
        ASN1_INTEGER *cert_no;
        X509_PUBKEY *ret_pub;
        ASN1_TYPE *envelope;
        ASN1_OCTET_STRING *blob;
} KM_RETKEY;

ASN1_SEQUENCE(KM_RETKEY) =
    {
        ASN1_SIMPLE(KM_RETKEY, cert_no, ASN1_INTEGER),
        ASN1_SIMPLE(KM_RETKEY, ret_pub, X509_PUBKEY),
        ASN1_SIMPLE(KM_RETKEY, envelope, ASN1_ANY),
        ASN1_IMP_OPT(KM_RETKEY, blob, ASN1_OCTET_STRING, 0),
} static_ASN1_SEQUENCE_END(KM_RETKEY)

    /* ErrorPkgRespond */
    typedef struct {
        ASN1_INTEGER *err_no;
        ASN1_UTF8STRING *desc;
} KM_ERRPKG;

ASN1_SEQUENCE(KM_ERRPKG) =
    {
        ASN1_SIMPLE(KM_ERRPKG, err_no, ASN1_INTEGER),
        ASN1_OPT(KM_ERRPKG, desc, ASN1_UTF8STRING),
} static_ASN1_SEQUENCE_END(KM_ERRPKG)

    /* Request and Respond: CHOICEs with EXPLICIT tags, type = the tag = enum
       gmca_km_kind */
    typedef struct {
        int type;
        union {
                KM_APPLY *apply;
                KM_RESTORE *restore;
                KM_REVOKE *revoke;
                KM_RETKEY *key;
                KM_ERRPKG *err;
        } d;
} KM_ITEM;

ASN1_CHOICE(KM_REQ) =
    {
        ASN1_EXP(KM_ITEM, d.apply, KM_APPLY, 0),
        ASN1_EXP(KM_ITEM, d.restore, KM_RESTORE, 1),
        ASN1_EXP(KM_ITEM, d.revoke, KM_REVOKE, 2),
} static_ASN1_CHOICE_END_name(KM_ITEM, KM_REQ)

        ASN1_CHOICE(KM_RESP) =
            {
                ASN1_EXP(KM_ITEM, d.key, KM_RETKEY, 0),
                ASN1_EXP(KM_ITEM, d.key, KM_RETKEY, 1),
                ASN1_EXP(KM_ITEM, d.revoke, KM_REVOKE, 2),
                ASN1_EXP(KM_ITEM, d.err, KM_ERRPKG, 3),
} static_ASN1_CHOICE_END_name(KM_ITEM, KM_RESP)

    /* KSRequest / KSRespond */
    typedef struct {
        ASN1_INTEGER *version;
        KM_ENT *ent;
        OPENSSL_STACK *list; /* of KM_ITEM, as KM_REQ or KM_RESP */
        ASN1_GENERALIZEDTIME *time;
        ASN1_INTEGER *task;
} KM_TBS;

ASN1_SEQUENCE(KM_KSREQ) =
    {
        ASN1_SIMPLE(KM_TBS, version, ASN1_INTEGER), ASN1_SIMPLE(KM_TBS, ent, KM_ENT),
        ASN1_SEQUENCE_OF(KM_TBS, list, KM_REQ),     ASN1_SIMPLE(KM_TBS, time, ASN1_GENERALIZEDTIME),
        ASN1_SIMPLE(KM_TBS, task, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END_name(KM_TBS, KM_KSREQ)

        ASN1_SEQUENCE(KM_KSRESP) =
            {
                ASN1_SIMPLE(KM_TBS, version, ASN1_INTEGER),
                ASN1_SIMPLE(KM_TBS, ent, KM_ENT),
                ASN1_SEQUENCE_OF(KM_TBS, list, KM_RESP),
                ASN1_SIMPLE(KM_TBS, time, ASN1_GENERALIZEDTIME),
                ASN1_SIMPLE(KM_TBS, task, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END_name(KM_TBS, KM_KSRESP)

    /* CARequest / KMRespond */
    typedef struct {
        KM_TBS *tbs;
        X509_ALGOR *alg;
        ASN1_OCTET_STRING *sig;
} KM_SIGNED;

ASN1_SEQUENCE(KM_CAREQ) =
    {
        ASN1_SIMPLE(KM_SIGNED, tbs, KM_KSREQ),
        ASN1_SIMPLE(KM_SIGNED, alg, X509_ALGOR),
        ASN1_SIMPLE(KM_SIGNED, sig, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END_name(KM_SIGNED, KM_CAREQ)

        ASN1_SEQUENCE(KM_KMRESP) =
            {
                ASN1_SIMPLE(KM_SIGNED, tbs, KM_KSRESP),
                ASN1_SIMPLE(KM_SIGNED, alg, X509_ALGOR),
                ASN1_SIMPLE(KM_SIGNED, sig, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END_name(KM_SIGNED, KM_KMRESP)

#define NEW(T) ((void *)ASN1_item_new(ASN1_ITEM_rptr(T)))
#define FREE(T, v) ASN1_item_free((ASN1_VALUE *)(v), ASN1_ITEM_rptr(T))

    /* ---- fields ---- */

    static int alg_set(X509_ALGOR * a, const char *oid)
{
        ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);

        if (o == NULL || X509_ALGOR_set0(a, o, V_ASN1_UNDEF, NULL) != 1) {
                ASN1_OBJECT_free(o);
                return -1;
        }
        return 0;
}

/* The algorithm oid with its parameters absent or NULL (GM/T identifiers come
 * both ways). */
static int alg_check(const X509_ALGOR *a, const char *oid, const char *field, struct gmca_error *e)
{
        const ASN1_OBJECT *o;
        int ptype;

        X509_ALGOR_get0(&o, &ptype, NULL, a);
        if (!gmca_oid_is(o, oid) || (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL))
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: %s is not %s", field, oid);
        return 0;
}

/* A certificate serial as DER writes it in at most 20 octets: positive,
 * minimal. */
static int serial_ok(const uint8_t *b, size_t len)
{
        return len >= 1 && len <= SERIAL_MAX && b[0] != 0 && !(len == SERIAL_MAX && (b[0] & 0x80));
}

static ASN1_INTEGER *serial_enc(const uint8_t *b, size_t len)
{
        BIGNUM *bn;
        ASN1_INTEGER *i;

        if (!serial_ok(b, len) || (bn = BN_bin2bn(b, (int)len, NULL)) == NULL)
                return NULL;
        i = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        return i;
}

static int serial_put(ASN1_INTEGER **slot, const uint8_t *b, size_t len, const char *field,
                      struct gmca_error *e)
{
        ASN1_INTEGER *i = serial_enc(b, len);

        if (i == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: %s: not a serial of 1..20 positive octets",
                                      field);
        ASN1_INTEGER_free(*slot);
        *slot = i;
        return 0;
}

static int serial_dec(const ASN1_INTEGER *i, uint8_t out[SERIAL_MAX], size_t *len,
                      const char *field, struct gmca_error *e)
{
        const uint8_t *p = ASN1_STRING_get0_data(i);
        int n = ASN1_STRING_length(i);

        if (ASN1_STRING_type(i) != V_ASN1_INTEGER)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: %s is negative", field);
        if (n <= 0 || p[0] == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: %s is zero", field);
        if (!serial_ok(p, (size_t)n))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: %s is over 20 octets (RFC 5280 §4.1.2.2)",
                                      field);
        memcpy(out, p, (size_t)n);
        *len = (size_t)n;
        return 0;
}

static int time_put(ASN1_GENERALIZEDTIME **slot, int64_t t, const char *field, struct gmca_error *e)
{
        ASN1_GENERALIZEDTIME *g;

        if (t < 0 || t > TIME_MAX || (g = ASN1_GENERALIZEDTIME_set(NULL, (time_t)t)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: %s out of range", field);
        ASN1_GENERALIZEDTIME_free(*slot);
        *slot = g;
        return 0;
}

/* GeneralizedTime as DER has it: YYYYMMDDHHMMSSZ, no fraction. */
static int time_dec(const ASN1_GENERALIZEDTIME *g, int64_t *out, const char *field,
                    struct gmca_error *e)
{
        const uint8_t *p = ASN1_STRING_get0_data(g);
        struct tm tm;

        if (ASN1_STRING_length(g) != 15 || p[14] != 'Z' || ASN1_TIME_to_tm(g, &tm) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: %s is not a DER GeneralizedTime", field);
        }
        *out = (int64_t)timegm(&tm);
        return 0;
}

static int utf8_put(ASN1_UTF8STRING **slot, const char *s, const char *field, struct gmca_error *e)
{
        size_t len = strlen(s);

        if (len > GMCA_KM_INFO_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km message: %s over %d bytes", field,
                                      GMCA_KM_INFO_MAX);
        if ((*slot = ASN1_UTF8STRING_new()) == NULL || ASN1_STRING_set(*slot, s, (int)len) != 1)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return 0;
}

/* Bounded, valid UTF-8 without NUL, as a C string (malloc'd). */
static int utf8_dec(const ASN1_UTF8STRING *u, char **out, const char *field, struct gmca_error *e)
{
        const uint8_t *p = ASN1_STRING_get0_data(u);
        int n = ASN1_STRING_length(u), k;
        unsigned long c;

        if (n > GMCA_KM_INFO_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km message: %s over %d bytes", field,
                                      GMCA_KM_INFO_MAX);
        for (int i = 0; i < n; i += k)
                if ((k = UTF8_getc(p + i, n - i, &c)) <= 0 || c == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "km message: %s is not UTF-8 text", field);
        if ((*out = malloc((size_t)n + 1)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        memcpy(*out, p, (size_t)n);
        (*out)[n] = '\0';
        return 0;
}

static int pub_put(X509_PUBKEY **slot, EVP_PKEY *k, const char *field, struct gmca_error *e)
{
        X509_PUBKEY *p = NULL;

        if (k == NULL || gmca_sm2_is_sm2(k, NULL) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: %s is not an SM2 key",
                                      field);
        if (X509_PUBKEY_set(&p, k) != 1)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "km message: %s not encoded", field);
        X509_PUBKEY_free(*slot);
        *slot = p;
        return 0;
}

static int pub_dec(X509_PUBKEY *p, EVP_PKEY **out, const char *field, struct gmca_error *e)
{
        EVP_PKEY *k = X509_PUBKEY_get(p);

        if (k == NULL || gmca_sm2_is_sm2(k, NULL) != 0) {
                EVP_PKEY_free(k);
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: %s is not an SM2 key",
                                      field);
        }
        *out = k;
        return 0;
}

/* ---- EntName ---- */

void gmca_km_ent_clear(struct gmca_km_ent *ent)
{
        if (ent == NULL)
                return;
        OPENSSL_free(ent->name_der);
        memset(ent, 0, sizeof(*ent));
}

int gmca_km_ent_from_cert(X509 *cert, struct gmca_km_ent *ent, struct gmca_error *e)
{
        const ASN1_BIT_STRING *bits;
        const ASN1_INTEGER *sn;
        struct gmca_km_ent t = {0};
        int n;

        if (cert == NULL || (bits = X509_get0_pubkey_bitstr(cert)) == NULL ||
            (sn = X509_get0_serialNumber(cert)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: certificate without key or serial");
        if (serial_dec(sn, t.serial, &t.serial_len, "certificate serial", e) != 0)
                return GMCA_ERR_INVALID;
        if (gmca_sm3(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), t.key_hash) !=
            0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "km: SM3 failed");
        if ((n = i2d_X509_NAME(X509_get_subject_name(cert), &t.name_der)) <= 0 ||
            n > NAME_DER_MAX) {
                OPENSSL_free(t.name_der);
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "km: certificate subject unusable");
        }
        t.name_len = (size_t)n;
        *ent = t;
        return 0;
}

static int ent_enc(const struct gmca_km_ent *ent, KM_ENT *x, struct gmca_error *e)
{
        const uint8_t *p = ent->name_der;
        X509_NAME *nm;

        if (alg_set(x->hash_alg, OID_SM3) != 0 ||
            (nm = d2i_X509_NAME(NULL, &p, (long)ent->name_len)) == NULL)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "km message: EntName not encoded");
        GENERAL_NAME_free(x->name);
        if ((x->name = GENERAL_NAME_new()) == NULL) {
                X509_NAME_free(nm);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        GENERAL_NAME_set0_value(x->name, GEN_DIRNAME, nm);
        if (ASN1_OCTET_STRING_set(x->key_hash, ent->key_hash, sizeof(ent->key_hash)) != 1)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return serial_put(&x->serial, ent->serial, ent->serial_len, "EntName serialNumber", e);
}

static int ent_dec(const KM_ENT *x, struct gmca_km_ent *ent, struct gmca_error *e)
{
        int type, n;
        X509_NAME *nm = GENERAL_NAME_get0_value(x->name, &type);

        if (alg_check(x->hash_alg, OID_SM3, "EntName hashAlgorithm", e) != 0)
                return GMCA_ERR_INVALID;
        if (type != GEN_DIRNAME)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: EntName entName is not a directoryName");
        if (ASN1_STRING_length(x->key_hash) != (int)sizeof(ent->key_hash))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: EntName entPubKeyHash is not an SM3 digest");
        memcpy(ent->key_hash, ASN1_STRING_get0_data(x->key_hash), sizeof(ent->key_hash));
        if (serial_dec(x->serial, ent->serial, &ent->serial_len, "EntName serialNumber", e) != 0)
                return GMCA_ERR_INVALID;
        if ((n = i2d_X509_NAME(nm, &ent->name_der)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "km message: EntName name unusable");
        ent->name_len = (size_t)n;
        if (n > NAME_DER_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km message: EntName over %d bytes",
                                      NAME_DER_MAX);
        return 0;
}

/* ---- items ---- */

void gmca_km_item_clear(struct gmca_km_item *it)
{
        if (it == NULL)
                return;
        EVP_PKEY_free(it->user_pub);
        EVP_PKEY_free(it->ret_pub);
        free(it->user_name);
        free(it->info);
        free(it->err_desc);
        OPENSSL_free(it->envelope);
        OPENSSL_free(it->blob);
        memset(it, 0, sizeof(*it));
}

/* 1 if the item sets only what its kind carries, in a request or a response. */
static int item_fits(const struct gmca_km_item *it, int response)
{
        int keys = it->kind == GMCA_KM_APPLY || it->kind == GMCA_KM_RESTORE;
        int req_fields = it->user_pub != NULL || it->user_name != NULL || it->info != NULL ||
                         it->not_before != 0 || it->not_after != 0;
        int resp_fields = it->ret_pub != NULL || it->envelope != NULL || it->blob != NULL ||
                          it->err_no != 0 || it->err_desc != NULL;

        if (it->kind < GMCA_KM_APPLY || it->kind > GMCA_KM_ERROR)
                return 0;
        if (!response) {
                if (it->kind == GMCA_KM_ERROR || resp_fields)
                        return 0;
                if (it->kind == GMCA_KM_REVOKE)
                        return !req_fields;
                if (it->user_pub == NULL)
                        return 0;
                if (it->kind == GMCA_KM_APPLY)
                        return it->info == NULL;
                return it->user_name == NULL && it->not_before == 0 && it->not_after == 0;
        }
        if (req_fields)
                return 0;
        if (it->kind == GMCA_KM_ERROR)
                return it->err_no > 0 && it->ret_pub == NULL && it->envelope == NULL &&
                       it->blob == NULL && it->cert_no_len == 0;
        if (it->err_no != 0 || it->err_desc != NULL)
                return 0;
        if (!keys)
                return it->ret_pub == NULL && it->envelope == NULL && it->blob == NULL;
        return it->ret_pub != NULL && it->envelope != NULL && it->envelope_len > 0 &&
               (it->blob == NULL) == (it->blob_len == 0);
}

static int algs_put(X509_ALGOR *asym, X509_ALGOR *sym, X509_ALGOR *hash, struct gmca_error *e)
{
        if (alg_set(asym, OID_SM2_ENC) != 0 || alg_set(sym, OID_SM4_ECB) != 0 ||
            alg_set(hash, OID_SM3) != 0)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "km message: algorithm not encoded");
        return 0;
}

static int algs_check(const X509_ALGOR *asym, const X509_ALGOR *sym, const X509_ALGOR *hash,
                      struct gmca_error *e)
{
        if (alg_check(asym, OID_SM2_ENC, "retAsymAlg", e) != 0 ||
            alg_check(sym, OID_SM4_ECB, "retSymAlg", e) != 0 ||
            alg_check(hash, OID_SM3, "retHashAlg", e) != 0)
                return GMCA_ERR_INVALID;
        return 0;
}

static int apply_enc(const struct gmca_km_item *it, KM_APPLY *a, struct gmca_error *e)
{
        int rc;

        if (alg_set(a->key_type, OID_SM2) != 0 || ASN1_INTEGER_set(a->key_len, KM_KEY_BITS) != 1)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "km message: appKeyType not encoded");
        if ((rc = algs_put(a->asym, a->sym, a->hash, e)) != 0 ||
            (rc = serial_put(&a->user->cert_no, it->cert_no, it->cert_no_len, "userCertNo", e)) !=
                0 ||
            (rc = pub_put(&a->user->user_pub, it->user_pub, "userPubKey", e)) != 0 ||
            (rc = time_put(&a->user->not_before, it->not_before, "notBefore", e)) != 0 ||
            (rc = time_put(&a->user->not_after, it->not_after, "notAfter", e)) != 0)
                return rc;
        return it->user_name != NULL ? utf8_put(&a->user->user_name, it->user_name, "userName", e)
                                     : 0;
}

static int restore_enc(const struct gmca_km_item *it, KM_RESTORE *r, struct gmca_error *e)
{
        int rc;

        if ((rc = algs_put(r->asym, r->sym, r->hash, e)) != 0 ||
            (rc = serial_put(&r->cert_no, it->cert_no, it->cert_no_len, "userCertNo", e)) != 0 ||
            (rc = pub_put(&r->user_pub, it->user_pub, "userPubKey", e)) != 0)
                return rc;
        return it->info != NULL ? utf8_put(&r->info, it->info, "restoreInfo", e) : 0;
}

static int retkey_enc(const struct gmca_km_item *it, KM_RETKEY *k, struct gmca_error *e)
{
        ASN1_STRING *s;
        int rc;

        if ((rc = serial_put(&k->cert_no, it->cert_no, it->cert_no_len, "userCertNo", e)) != 0 ||
            (rc = pub_put(&k->ret_pub, it->ret_pub, "retPubKey", e)) != 0)
                return rc;
        if (it->envelope_len > GMCA_ENVELOPE_MAX || it->envelope[0] != 0x30)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: retPriKey is not an SM2EnvelopedKey");
        if ((s = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL ||
            ASN1_STRING_set(s, it->envelope, (int)it->envelope_len) != 1) {
                ASN1_STRING_free(s);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        ASN1_TYPE_set(k->envelope, V_ASN1_SEQUENCE, s);
        if (it->blob == NULL)
                return 0;
        if (it->blob_len > GMCA_ENVELOPE_MAX || (k->blob = ASN1_OCTET_STRING_new()) == NULL ||
            ASN1_OCTET_STRING_set(k->blob, it->blob, (int)it->blob_len) != 1)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: envelopedKeyBlob unusable");
        return 0;
}

static int errpkg_enc(const struct gmca_km_item *it, KM_ERRPKG *x, struct gmca_error *e)
{
        if (ASN1_INTEGER_set_int64(x->err_no, it->err_no) != 1)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return it->err_desc != NULL ? utf8_put(&x->desc, it->err_desc, "errDesc", e) : 0;
}

/* One item into a new KM_ITEM of the request or response CHOICE. */
static KM_ITEM *item_enc(const struct gmca_km_item *it, int response, struct gmca_error *e)
{
        KM_ITEM *x = OPENSSL_zalloc(sizeof(*x));
        int rc = GMCA_ERR_NOMEM;

        if (x == NULL)
                goto fail;
        x->type = it->kind;
        switch (response * 4 + it->kind) {
        case GMCA_KM_APPLY:
                if ((x->d.apply = NEW(KM_APPLY)) != NULL)
                        rc = apply_enc(it, x->d.apply, e);
                break;
        case GMCA_KM_RESTORE:
                if ((x->d.restore = NEW(KM_RESTORE)) != NULL)
                        rc = restore_enc(it, x->d.restore, e);
                break;
        case GMCA_KM_REVOKE:
        case 4 + GMCA_KM_REVOKE:
                if ((x->d.revoke = NEW(KM_REVOKE)) != NULL)
                        rc = serial_put(&x->d.revoke->cert_no, it->cert_no, it->cert_no_len,
                                        "userCertNo", e);
                break;
        case 4 + GMCA_KM_APPLY:
        case 4 + GMCA_KM_RESTORE:
                if ((x->d.key = NEW(KM_RETKEY)) != NULL)
                        rc = retkey_enc(it, x->d.key, e);
                break;
        default: /* 4 + GMCA_KM_ERROR; item_fits refused the rest */
                if ((x->d.err = NEW(KM_ERRPKG)) != NULL)
                        rc = errpkg_enc(it, x->d.err, e);
                break;
        }
        if (rc == 0)
                return x;
fail:
        if (rc == GMCA_ERR_NOMEM)
                gmca_error_set(e, rc, "out of memory");
        if (x != NULL)
                ASN1_item_free((ASN1_VALUE *)x,
                               response ? ASN1_ITEM_rptr(KM_RESP) : ASN1_ITEM_rptr(KM_REQ));
        return NULL;
}

static int apply_dec(const KM_APPLY *a, struct gmca_km_item *it, struct gmca_error *e)
{
        int64_t bits;
        int rc;

        if (alg_check(a->key_type, OID_SM2, "appKeyType", e) != 0)
                return GMCA_ERR_INVALID;
        if (ASN1_INTEGER_get_int64(&bits, a->key_len) != 1 || bits != KM_KEY_BITS)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: appKeyLen is not 256");
        if ((rc = algs_check(a->asym, a->sym, a->hash, e)) != 0 ||
            (rc = serial_dec(a->user->cert_no, it->cert_no, &it->cert_no_len, "userCertNo", e)) !=
                0 ||
            (rc = pub_dec(a->user->user_pub, &it->user_pub, "userPubKey", e)) != 0 ||
            (rc = time_dec(a->user->not_before, &it->not_before, "notBefore", e)) != 0 ||
            (rc = time_dec(a->user->not_after, &it->not_after, "notAfter", e)) != 0)
                return rc;
        return a->user->user_name != NULL
                   ? utf8_dec(a->user->user_name, &it->user_name, "userName", e)
                   : 0;
}

static int restore_dec(const KM_RESTORE *r, struct gmca_km_item *it, struct gmca_error *e)
{
        int rc;

        if ((rc = algs_check(r->asym, r->sym, r->hash, e)) != 0 ||
            (rc = serial_dec(r->cert_no, it->cert_no, &it->cert_no_len, "userCertNo", e)) != 0 ||
            (rc = pub_dec(r->user_pub, &it->user_pub, "userPubKey", e)) != 0)
                return rc;
        return r->info != NULL ? utf8_dec(r->info, &it->info, "restoreInfo", e) : 0;
}

static int copy_out(const uint8_t *p, int n, uint8_t **out, size_t *len, struct gmca_error *e)
{
        if ((*out = OPENSSL_memdup(p, (size_t)n)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        *len = (size_t)n;
        return 0;
}

static int retkey_dec(const KM_RETKEY *k, struct gmca_km_item *it, struct gmca_error *e)
{
        const ASN1_STRING *s = k->envelope->value.sequence;
        int rc;

        if ((rc = serial_dec(k->cert_no, it->cert_no, &it->cert_no_len, "userCertNo", e)) != 0 ||
            (rc = pub_dec(k->ret_pub, &it->ret_pub, "retPubKey", e)) != 0)
                return rc;
        if (ASN1_TYPE_get(k->envelope) != V_ASN1_SEQUENCE)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: retPriKey is not an SM2EnvelopedKey");
        if (ASN1_STRING_length(s) > GMCA_ENVELOPE_MAX ||
            (k->blob != NULL && ASN1_STRING_length(k->blob) > GMCA_ENVELOPE_MAX))
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km message: retPriKey over %d bytes",
                                      GMCA_ENVELOPE_MAX);
        if ((rc = copy_out(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), &it->envelope,
                           &it->envelope_len, e)) != 0)
                return rc;
        if (k->blob == NULL)
                return 0;
        if (ASN1_STRING_length(k->blob) == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: empty envelopedKeyBlob");
        return copy_out(ASN1_STRING_get0_data(k->blob), ASN1_STRING_length(k->blob), &it->blob,
                        &it->blob_len, e);
}

static int errpkg_dec(const KM_ERRPKG *x, struct gmca_km_item *it, struct gmca_error *e)
{
        if (ASN1_INTEGER_get_int64(&it->err_no, x->err_no) != 1 || it->err_no <= 0) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: errNo is not positive");
        }
        return x->desc != NULL ? utf8_dec(x->desc, &it->err_desc, "errDesc", e) : 0;
}

static int item_dec(const KM_ITEM *x, int response, struct gmca_km_item *it, struct gmca_error *e)
{
        it->kind = x->type;
        switch (response * 4 + x->type) {
        case GMCA_KM_APPLY:
                return apply_dec(x->d.apply, it, e);
        case GMCA_KM_RESTORE:
                return restore_dec(x->d.restore, it, e);
        case GMCA_KM_REVOKE:
        case 4 + GMCA_KM_REVOKE:
                return serial_dec(x->d.revoke->cert_no, it->cert_no, &it->cert_no_len, "userCertNo",
                                  e);
        case 4 + GMCA_KM_APPLY:
        case 4 + GMCA_KM_RESTORE:
                return retkey_dec(x->d.key, it, e);
        case 4 + GMCA_KM_ERROR:
                return errpkg_dec(x->d.err, it, e);
        default:
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: unknown item kind");
        }
}

/* ---- messages ---- */

void gmca_km_msg_clear(struct gmca_km_msg *m)
{
        if (m == NULL)
                return;
        gmca_km_ent_clear(&m->ent);
        for (size_t i = 0; i < GMCA_KM_ITEMS_MAX; i++)
                gmca_km_item_clear(&m->items[i]);
        OPENSSL_free(m->tbs);
        OPENSSL_free(m->sig);
        memset(m, 0, sizeof(*m));
}

static int tbs_enc(const struct gmca_km_msg *m, const struct gmca_km_ent *ent, KM_TBS *t,
                   struct gmca_error *e)
{
        int rc;

        if (m->n == 0 || m->n > GMCA_KM_ITEMS_MAX)
                return gmca_error_set(e, m->n == 0 ? GMCA_ERR_INVALID : GMCA_ERR_LIMIT,
                                      "km message: 1..%d items, not %zu", GMCA_KM_ITEMS_MAX, m->n);
        if (ASN1_INTEGER_set(t->version, KM_VERSION) != 1 ||
            ASN1_INTEGER_set_uint64(t->task, m->task_no) != 1)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if ((rc = ent_enc(ent, t->ent, e)) != 0 ||
            (rc = time_put(&t->time, m->time, m->response ? "respondTime" : "requestTime", e)) != 0)
                return rc;
        for (size_t i = 0; i < m->n; i++) {
                KM_ITEM *x;

                if (!item_fits(&m->items[i], m->response))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "km message: item %zu does not fit its kind %d", i,
                                              m->items[i].kind);
                if ((x = item_enc(&m->items[i], m->response, e)) == NULL)
                        return e != NULL && e->code != 0 ? e->code : GMCA_ERR_INTERNAL;
                if (OPENSSL_sk_push(t->list, x) <= 0) {
                        ASN1_item_free((ASN1_VALUE *)x, m->response ? ASN1_ITEM_rptr(KM_RESP)
                                                                    : ASN1_ITEM_rptr(KM_REQ));
                        return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                }
        }
        return 0;
}

int gmca_km_msg_sign(const struct gmca_km_msg *m, X509 *cert, const struct gmca_signer *signer,
                     uint8_t **der, size_t *der_len, struct gmca_error *e)
{
        const ASN1_ITEM *it = m->response ? ASN1_ITEM_rptr(KM_KMRESP) : ASN1_ITEM_rptr(KM_CAREQ);
        const ASN1_ITEM *tit = m->response ? ASN1_ITEM_rptr(KM_KSRESP) : ASN1_ITEM_rptr(KM_KSREQ);
        struct gmca_km_ent ent = {0};
        KM_SIGNED *s = NULL;
        uint8_t *tbs = NULL, *out = NULL, sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        int rc, n;

        if ((rc = gmca_km_ent_from_cert(cert, &ent, e)) != 0)
                return rc;
        if ((s = (KM_SIGNED *)ASN1_item_new(it)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = tbs_enc(m, &ent, s->tbs, e)) != 0)
                goto out;
        rc = GMCA_ERR_INTERNAL;
        if ((n = ASN1_item_i2d((ASN1_VALUE *)s->tbs, &tbs, tit)) <= 0) {
                gmca_error_ossl(e, rc, "km message: not encoded");
                goto out;
        }
        if ((rc = signer->sign(signer->arg, tbs, (size_t)n, sig, &siglen, e)) != 0)
                goto out;
        rc = GMCA_ERR_INTERNAL;
        if (alg_set(s->alg, OID_SM2_WITH_SM3) != 0 ||
            ASN1_OCTET_STRING_set(s->sig, sig, (int)siglen) != 1 ||
            (n = ASN1_item_i2d((ASN1_VALUE *)s, &out, it)) <= 0) {
                gmca_error_ossl(e, rc, "km message: not encoded");
                goto out;
        }
        if ((size_t)n > GMCA_KM_MSG_MAX) {
                rc =
                    gmca_error_set(e, GMCA_ERR_LIMIT, "km message: over %u bytes", GMCA_KM_MSG_MAX);
                goto out;
        }
        *der = out;
        *der_len = (size_t)n;
        out = NULL;
        rc = 0;
out:
        OPENSSL_free(out);
        OPENSSL_free(tbs);
        ASN1_item_free((ASN1_VALUE *)s, it);
        gmca_km_ent_clear(&ent);
        return rc;
}

static int tbs_dec(const KM_TBS *t, int response, struct gmca_km_msg *m, struct gmca_error *e)
{
        int64_t v;
        int n = OPENSSL_sk_num(t->list), rc;

        if (ASN1_INTEGER_get_int64(&v, t->version) != 1 || v != KM_VERSION) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: version is not 1");
        }
        if (ASN1_STRING_type(t->task) != V_ASN1_INTEGER ||
            ASN1_INTEGER_get_uint64(&m->task_no, t->task) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km message: taskNO is not a 64-bit unsigned number");
        }
        if (n <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km message: no items");
        if (n > GMCA_KM_ITEMS_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km message: %d items, at most %d", n,
                                      GMCA_KM_ITEMS_MAX);
        if ((rc = ent_dec(t->ent, &m->ent, e)) != 0 ||
            (rc = time_dec(t->time, &m->time, response ? "respondTime" : "requestTime", e)) != 0)
                return rc;
        for (int i = 0; i < n; i++) {
                if ((rc = item_dec(OPENSSL_sk_value(t->list, i), response, &m->items[i], e)) != 0)
                        return rc;
                m->n++;
        }
        return 0;
}

int gmca_km_msg_parse(const uint8_t *der, size_t len, int response, struct gmca_km_msg *m,
                      struct gmca_error *e)
{
        const ASN1_ITEM *it = response ? ASN1_ITEM_rptr(KM_KMRESP) : ASN1_ITEM_rptr(KM_CAREQ);
        const ASN1_ITEM *tit = response ? ASN1_ITEM_rptr(KM_KSRESP) : ASN1_ITEM_rptr(KM_KSREQ);
        const char *what = response ? "KMRespond" : "CARequest";
        KM_SIGNED *s = NULL;
        int rc, n;

        memset(m, 0, sizeof(*m));
        m->response = response != 0;
        if (len > GMCA_KM_MSG_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: over %u bytes", what,
                                      GMCA_KM_MSG_MAX);
        if ((s = (KM_SIGNED *)gmca_der_decode(it, der, len, what, e)) == NULL)
                return GMCA_ERR_INVALID;
        if ((rc = alg_check(s->alg, OID_SM2_WITH_SM3, "signatureAlgorithm", e)) != 0 ||
            (rc = tbs_dec(s->tbs, m->response, m, e)) != 0)
                goto out;
        rc = GMCA_ERR_INVALID;
        if ((n = ASN1_STRING_length(s->sig)) <= 0 || n > GMCA_SM2_SIG_MAX) {
                gmca_error_set(e, rc, "%s: signatureValue is not an SM2Signature", what);
                goto out;
        }
        if ((rc = copy_out(ASN1_STRING_get0_data(s->sig), n, &m->sig, &m->sig_len, e)) != 0)
                goto out;
        if ((n = ASN1_item_i2d((ASN1_VALUE *)s->tbs, &m->tbs, tit)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: not re-encoded", what);
                goto out;
        }
        m->tbs_len = (size_t)n;
        rc = 0;
out:
        ASN1_item_free((ASN1_VALUE *)s, it);
        if (rc != 0) {
                gmca_km_msg_clear(m);
                m->response = 0;
        }
        return rc;
}

int gmca_km_msg_verify(const struct gmca_km_msg *m, X509 *cert, struct gmca_error *e)
{
        struct gmca_km_ent ent = {0};
        EVP_PKEY *key;
        int rc = GMCA_ERR_VERIFY;

        if (m->tbs == NULL || m->sig == NULL || cert == NULL ||
            (key = X509_get0_pubkey(cert)) == NULL)
                return gmca_error_set(e, rc, "km message: nothing to verify");
        if (gmca_km_ent_from_cert(cert, &ent, NULL) != 0)
                return gmca_error_set(e, rc, "km message: signer certificate unusable");
        if (ent.name_len != m->ent.name_len ||
            memcmp(ent.name_der, m->ent.name_der, ent.name_len) != 0 ||
            memcmp(ent.key_hash, m->ent.key_hash, sizeof(ent.key_hash)) != 0 ||
            ent.serial_len != m->ent.serial_len ||
            memcmp(ent.serial, m->ent.serial, ent.serial_len) != 0) {
                gmca_error_set(e, rc, "km message: EntName (%s) is not the trusted certificate's",
                               m->response ? "kmName" : "caName");
                goto out;
        }
        if (gmca_sm2_verify(key, GMCA_SM2_DEFAULT_ID, m->tbs, m->tbs_len, m->sig, m->sig_len, e) !=
            0) {
                gmca_error_set(e, rc, "km message: SM2 signature does not verify with ID %s",
                               GMCA_SM2_DEFAULT_ID);
                goto out;
        }
        rc = 0;
out:
        gmca_km_ent_clear(&ent);
        return rc;
}
