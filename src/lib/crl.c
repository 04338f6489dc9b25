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
#include "signer.h"

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

/* A serial without its leading zero bytes: the INTEGER value, for comparing. */
static const uint8_t *serial_value(const struct gmca_crl_entry *en, size_t *len)
{
        const uint8_t *b = en->serial;
        size_t n = en->serial_len;

        while (n > 0 && b[0] == 0) {
                b++;
                n--;
        }
        *len = n;
        return b;
}

/* FNV-1a over the value bytes, for the duplicate table. */
static uint64_t serial_hash(const uint8_t *b, size_t n)
{
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * UINT64_C(0x100000001b3);
        return h ^ (h >> 29);
}

/*
 * Every serial well formed and no value twice (RFC 5280 §5.1.2.6). The
 * duplicates are found through an open-addressing table of entry indices
 * (4 bytes a slot, half full at most): linear time, 8 MB for a million.
 */
static int check_entries(const struct gmca_crl_params *p, struct gmca_error *e)
{
        uint32_t *slots = NULL;
        size_t nslots = 16, mask;
        int rc = GMCA_ERR_INVALID;

        if (p->nentries == 0)
                return 0;
        if (p->entries == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "crl: entries missing");
        if (p->nentries > GMCA_CRL_MAX / 16) /* an entry is at least 16 bytes of DER */
                return gmca_error_set(e, GMCA_ERR_LIMIT, "crl: %zu entries, over %u", p->nentries,
                                      GMCA_CRL_MAX / 16);
        while (nslots < 2 * p->nentries)
                nslots *= 2;
        mask = nslots - 1;
        if ((slots = calloc(nslots, sizeof(*slots))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "crl: out of memory");
        for (size_t i = 0; i < p->nentries; i++) {
                const struct gmca_crl_entry *en = &p->entries[i];
                const uint8_t *v;
                size_t len, h;

                if (en->serial_len == 0 || en->serial_len > sizeof(en->serial)) {
                        gmca_error_set(e, rc,
                                       "crl: entry %zu: RFC 5280 §4.1.2.2: serial must be 1..20 "
                                       "bytes",
                                       i);
                        goto out;
                }
                if ((v = serial_value(en, &len)), len == 0) {
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
                for (h = (size_t)serial_hash(v, len) & mask; slots[h] != 0; h = (h + 1) & mask) {
                        size_t j = slots[h] - 1, jlen;
                        const uint8_t *w = serial_value(&p->entries[j], &jlen);

                        if (jlen == len && memcmp(v, w, len) == 0) {
                                gmca_error_set(e, rc,
                                               "crl: entries %zu and %zu: duplicate serial (RFC "
                                               "5280 §5.1.2.6)",
                                               j, i);
                                goto out;
                        }
                }
                slots[h] = (uint32_t)(i + 1);
        }
        rc = 0;
out:
        free(slots);
        return rc;
}

/* ---- DER writing ----
 *
 * The CRL is written directly as DER into one buffer, in two passes (sizes,
 * then bytes): a million entries through OpenSSL's X509_REVOKED objects cost
 * ~500 bytes and several allocations each. gmca_crl_parse reads the result
 * back with OpenSSL and its strict DER check (tests/unit/test_crl.c).
 */

/* Bytes of the length field for n bytes of content (X.690 §8.1.3, §10.1). */
static size_t len_size(size_t n)
{
        size_t k = 1;

        if (n < 0x80)
                return 1;
        for (; n > 0; n >>= 8)
                k++;
        return k;
}

/* Bytes of a TLV with a one-byte tag and n bytes of content. */
static size_t tlv_size(size_t n)
{
        return 1 + len_size(n) + n;
}

static uint8_t *put_hdr(uint8_t *q, uint8_t tag, size_t n)
{
        size_t k = len_size(n) - 1;

        *q++ = tag;
        if (k == 0) {
                *q++ = (uint8_t)n;
                return q;
        }
        *q++ = (uint8_t)(0x80 | k);
        for (size_t i = k; i > 0; i--)
                *q++ = (uint8_t)(n >> (8 * (i - 1)));
        return q;
}

static uint8_t *put(uint8_t *q, const void *p, size_t n)
{
        memcpy(q, p, n);
        return q + n;
}

/* SEQUENCE { OID sm2sign-with-sm3 1.2.156.10197.1.501 }, parameters absent (GM/T 0015 §6.2). */
static const uint8_t sm2_sm3_alg[] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x81,
                                      0x1C, 0xCF, 0x55, 0x01, 0x83, 0x75};
static const uint8_t version_v2[] = {0x02, 0x01, 0x01};
static const uint8_t oid_reason[] = {0x06, 0x03, 0x55, 0x1D, 0x15};     /* id-ce-cRLReasons */
static const uint8_t oid_invalidity[] = {0x06, 0x03, 0x55, 0x1D, 0x18}; /* id-ce-invalidityDate */
static const uint8_t oid_aki[] = {0x06, 0x03, 0x55, 0x1D, 0x23};        /* id-ce-authorityKeyId. */
static const uint8_t oid_number[] = {0x06, 0x03, 0x55, 0x1D, 0x14};     /* id-ce-cRLNumber */
static const uint8_t oid_delta[] = {0x06, 0x03, 0x55, 0x1D, 0x1B};    /* id-ce-deltaCRLIndicator */
static const uint8_t oid_freshest[] = {0x06, 0x03, 0x55, 0x1D, 0x2E}; /* id-ce-freshestCRL */
static const uint8_t critical_true[] = {0x01, 0x01, 0xFF};
#define FRESHEST_URL_MAX 1024

/* SEQUENCE { reasonCode OID, OCTET STRING { ENUMERATED r } }: r is 1..10. */
#define REASON_EXT_SIZE 12
/* SEQUENCE { invalidityDate OID, OCTET STRING { GeneralizedTime (15) } }. */
#define INVALIDITY_EXT_SIZE 26

/* Years 0000..9999: what a GeneralizedTime can hold. */
#define TIME_MIN INT64_C(-62167219200)
#define TIME_END INT64_C(253402300800)
/* RFC 5280 §4.1.2.5: UTCTime for 1950..2049, GeneralizedTime otherwise. */
#define UTC_MIN INT64_C(-631152000)
#define UTC_END INT64_C(2524608000)

static int time_ok(time_t t)
{
        return (int64_t)t >= TIME_MIN && (int64_t)t < TIME_END;
}

static size_t time_tlv_size(time_t t, int generalized)
{
        return !generalized && (int64_t)t >= UTC_MIN && (int64_t)t < UTC_END ? 15 : 17;
}

static char *put_digits(char *s, int v, int n)
{
        for (int i = n - 1; i >= 0; i--, v /= 10)
                s[i] = (char)('0' + v % 10);
        return s + n;
}

/*
 * Days since 1970-01-01 to a proleptic Gregorian date (the era arithmetic
 * of 400-year cycles); gmtime_r takes a lock per call, a million times.
 */
static void civil_from_days(int64_t z, int *year, int *month, int *day)
{
        int64_t era, doe, yoe, doy, mp, y;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *day = (int)(doy - (153 * mp + 2) / 5 + 1);
        *month = (int)(mp < 10 ? mp + 3 : mp - 9);
        *year = (int)(y + (*month <= 2));
}

/* A Time (or always GeneralizedTime) for t, checked with time_ok before. */
static uint8_t *put_time(uint8_t *q, time_t t, int generalized)
{
        int64_t secs = (int64_t)t, days = secs / 86400, rem = secs % 86400;
        char s[15], *d = s;
        int year, month, day;

        if (rem < 0) {
                rem += 86400;
                days--;
        }
        civil_from_days(days, &year, &month, &day);
        if (time_tlv_size(t, generalized) == 15) {
                d = put_digits(d, year % 100, 2);
                q = put_hdr(q, V_ASN1_UTCTIME, 13);
        } else {
                d = put_digits(d, year, 4);
                q = put_hdr(q, V_ASN1_GENERALIZEDTIME, 15);
        }
        d = put_digits(d, month, 2);
        d = put_digits(d, day, 2);
        d = put_digits(d, (int)(rem / 3600), 2);
        d = put_digits(d, (int)(rem / 60 % 60), 2);
        d = put_digits(d, (int)(rem % 60), 2);
        *d++ = 'Z';
        return put(q, s, (size_t)(d - s));
}

/* The content bytes of a positive INTEGER from big-endian bytes (leading zeros dropped). */
static size_t int_content_size(const uint8_t *b, size_t len)
{
        while (len > 1 && b[0] == 0) {
                b++;
                len--;
        }
        return len + ((b[0] & 0x80) != 0);
}

static uint8_t *put_int(uint8_t *q, const uint8_t *b, size_t len)
{
        while (len > 1 && b[0] == 0) {
                b++;
                len--;
        }
        q = put_hdr(q, V_ASN1_INTEGER, len + ((b[0] & 0x80) != 0));
        if ((b[0] & 0x80) != 0)
                *q++ = 0;
        return put(q, b, len);
}

/* crlEntryExtensions content: reasonCode unless unspecified (RFC 5280 §5.3.1: SHOULD be absent),
 * then invalidityDate. */
static size_t entry_ext_size(const struct gmca_crl_entry *en)
{
        return (en->reason > CRL_REASON_UNSPECIFIED ? REASON_EXT_SIZE : 0) +
               (en->invalidity != 0 ? INVALIDITY_EXT_SIZE : 0);
}

static size_t entry_content_size(const struct gmca_crl_entry *en)
{
        size_t x = entry_ext_size(en);

        return tlv_size(int_content_size(en->serial, en->serial_len)) +
               time_tlv_size(en->revoked_at, 0) + (x != 0 ? tlv_size(x) : 0);
}

static uint8_t *put_entry(uint8_t *q, const struct gmca_crl_entry *en)
{
        size_t x = entry_ext_size(en);

        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, entry_content_size(en));
        q = put_int(q, en->serial, en->serial_len);
        q = put_time(q, en->revoked_at, 0);
        if (x == 0)
                return q;
        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, x);
        if (en->reason > CRL_REASON_UNSPECIFIED) {
                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, REASON_EXT_SIZE - 2);
                q = put(q, oid_reason, sizeof(oid_reason));
                q = put_hdr(q, V_ASN1_OCTET_STRING, 3);
                q = put_hdr(q, V_ASN1_ENUMERATED, 1);
                *q++ = (uint8_t)en->reason;
        }
        if (en->invalidity != 0) {
                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, INVALIDITY_EXT_SIZE - 2);
                q = put(q, oid_invalidity, sizeof(oid_invalidity));
                q = put_hdr(q, V_ASN1_OCTET_STRING, 17);
                q = put_time(q, en->invalidity, 1);
        }
        return q;
}

/* Revocation and invalidity dates a Time can carry; the rest was checked by check_entries. */
static int check_times(const struct gmca_crl_params *p, struct gmca_error *e)
{
        if (!time_ok(p->this_update))
                return gmca_error_set(e, GMCA_ERR_INVALID, "crl: thisUpdate out of range");
        if (!time_ok(p->next_update))
                return gmca_error_set(e, GMCA_ERR_INVALID, "crl: nextUpdate out of range");
        for (size_t i = 0; i < p->nentries; i++) {
                const struct gmca_crl_entry *en = &p->entries[i];

                if (!time_ok(en->revoked_at))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "crl: entry %zu: revocationDate out of range", i);
                if (en->invalidity != 0 && !time_ok(en->invalidity))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "crl: entry %zu: invalidityDate out of range", i);
        }
        return 0;
}

/*
 * The issuer's subjectKeyIdentifier, for authorityKeyIdentifier (RFC 5280
 * §5.2.1) keyIdentifier. Caller frees.
 */
static ASN1_OCTET_STRING *issuer_ski(const X509 *issuer, struct gmca_error *e)
{
        ASN1_OCTET_STRING *ski;
        int crit = 0;

        ski = X509_get_ext_d2i(issuer, NID_subject_key_identifier, &crit, NULL);
        if (ski == NULL) {
                if (crit == -2)
                        gmca_error_set(e, GMCA_ERR_INVALID,
                                       "crl: issuer has more than one subjectKeyIdentifier");
                else
                        gmca_error_ossl(e, GMCA_ERR_INVALID,
                                        "crl: RFC 5280 §5.2.1: the issuer certificate has no "
                                        "subjectKeyIdentifier for authorityKeyIdentifier");
        }
        return ski;
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

/* The CRL's fixed parts and sizes, from the first pass. */
struct layout {
        uint8_t *name; /* issuer Name, DER */
        size_t name_len;
        ASN1_OCTET_STRING *ski;
        uint8_t number[9]; /* cRLNumber, big-endian, positive */
        uint8_t base[9];   /* BaseCRLNumber of a delta CRL */
        size_t url_len;    /* freshestCRL URL */
        size_t entries;    /* revokedCertificates content */
        size_t exts;       /* crlExtensions Extensions content */
        size_t tbs;        /* TBSCertList content */
};

static size_t aki_ext_content(const struct layout *l)
{
        size_t keyid = (size_t)ASN1_STRING_length(l->ski);

        return sizeof(oid_aki) + tlv_size(tlv_size(tlv_size(keyid)));
}

static size_t number_ext_content(const struct layout *l)
{
        return sizeof(oid_number) + tlv_size(tlv_size(int_content_size(l->number, 9)));
}

static size_t delta_ext_content(const struct layout *l)
{
        return sizeof(oid_delta) + sizeof(critical_true) +
               tlv_size(tlv_size(int_content_size(l->base, 9)));
}

/* CRLDistributionPoints { DistributionPoint { [0] { fullName [0] { URI [6] } } } } */
static size_t freshest_value_size(const struct layout *l)
{
        return tlv_size(tlv_size(tlv_size(tlv_size(tlv_size(l->url_len)))));
}

static size_t freshest_ext_content(const struct layout *l)
{
        return sizeof(oid_freshest) + tlv_size(freshest_value_size(l));
}

static size_t exts_size(const struct gmca_crl_params *p, const struct layout *l)
{
        size_t n = tlv_size(aki_ext_content(l)) + tlv_size(number_ext_content(l));

        if (p->base_number > 0)
                n += tlv_size(delta_ext_content(l));
        if (p->freshest_url != NULL)
                n += tlv_size(freshest_ext_content(l));
        return n;
}

static uint8_t *put_delta_exts(uint8_t *q, const struct gmca_crl_params *p, const struct layout *l)
{
        if (p->base_number > 0) {
                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, delta_ext_content(l));
                q = put(q, oid_delta, sizeof(oid_delta));
                q = put(q, critical_true, sizeof(critical_true));
                q = put_hdr(q, V_ASN1_OCTET_STRING, tlv_size(int_content_size(l->base, 9)));
                q = put_int(q, l->base, 9);
        }
        if (p->freshest_url != NULL) {
                size_t u = l->url_len;

                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, freshest_ext_content(l));
                q = put(q, oid_freshest, sizeof(oid_freshest));
                q = put_hdr(q, V_ASN1_OCTET_STRING, freshest_value_size(l));
                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED,
                            tlv_size(tlv_size(tlv_size(tlv_size(u)))));
                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED,
                            tlv_size(tlv_size(tlv_size(u))));
                q = put_hdr(q, 0xA0, tlv_size(tlv_size(u))); /* distributionPoint [0] (CHOICE) */
                q = put_hdr(q, 0xA0, tlv_size(u)); /* fullName [0] IMPLICIT GeneralNames */
                q = put_hdr(q, 0x86, u);           /* uniformResourceIdentifier [6] */
                q = put(q, p->freshest_url, u);
        }
        return q;
}

static uint8_t *put_tbs(uint8_t *q, const struct gmca_crl_params *p, const struct layout *l)
{
        size_t keyid = (size_t)ASN1_STRING_length(l->ski);

        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, l->tbs);
        q = put(q, version_v2, sizeof(version_v2));
        q = put(q, sm2_sm3_alg, sizeof(sm2_sm3_alg));
        q = put(q, l->name, l->name_len);
        q = put_time(q, p->this_update, 0);
        q = put_time(q, p->next_update, 0);
        /* RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked. The caller's order. */
        if (p->nentries > 0) {
                q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, l->entries);
                for (size_t i = 0; i < p->nentries; i++)
                        q = put_entry(q, &p->entries[i]);
        }
        q = put_hdr(q, 0xA0, tlv_size(l->exts)); /* [0] EXPLICIT */
        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, l->exts);
        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, aki_ext_content(l));
        q = put(q, oid_aki, sizeof(oid_aki));
        q = put_hdr(q, V_ASN1_OCTET_STRING, tlv_size(tlv_size(keyid)));
        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, tlv_size(keyid));
        q = put_hdr(q, 0x80, keyid); /* [0] IMPLICIT KeyIdentifier */
        q = put(q, ASN1_STRING_get0_data(l->ski), keyid);
        q = put_hdr(q, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, number_ext_content(l));
        q = put(q, oid_number, sizeof(oid_number));
        q = put_hdr(q, V_ASN1_OCTET_STRING, tlv_size(int_content_size(l->number, 9)));
        q = put_int(q, l->number, 9);
        return put_delta_exts(q, p, l);
}

int gmca_crl_build_der(const struct gmca_crl_params *p, uint8_t **der, size_t *der_len,
                       struct gmca_error *e)
{
        struct gmca_pkey_signer own;
        const struct gmca_signer *signer;
        struct layout l;
        uint8_t *buf = NULL, *q, sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0, tbs_len, max, hdr, content, start;
        struct gmca_error why;
        int n, rc = GMCA_ERR_INVALID;

        memset(&l, 0, sizeof(l));
        if (der == NULL || der_len == NULL || p == NULL || p->issuer == NULL ||
            (p->key == NULL && p->signer == NULL))
                return gmca_error_set(e, rc, "crl: issuer certificate and key required");
        *der = NULL;
        *der_len = 0;
        if (p->number <= 0)
                return gmca_error_set(e, rc, "crl: RFC 5280 §5.2.3: cRLNumber must be positive");
        if (p->base_number < 0 || (p->base_number > 0 && p->base_number >= p->number))
                return gmca_error_set(e, rc,
                                      "crl: RFC 5280 §5.2.4: a delta CRL's base must be an "
                                      "earlier CRL");
        if (p->base_number > 0 && p->freshest_url != NULL)
                return gmca_error_set(e, rc, "crl: RFC 5280 §5.2.6: no freshestCRL in a delta CRL");
        if (p->freshest_url != NULL &&
            ((l.url_len = strlen(p->freshest_url)) == 0 || l.url_len > FRESHEST_URL_MAX))
                return gmca_error_set(e, rc, "crl: the freshestCRL URL must be 1..%d bytes",
                                      FRESHEST_URL_MAX);
        if (p->next_update <= p->this_update)
                return gmca_error_set(
                    e, rc, "crl: RFC 5280 §5.1.2.5: nextUpdate must be later than thisUpdate");
        if ((rc = check_issuer(p->issuer, e)) != 0 || (rc = check_entries(p, e)) != 0 ||
            (rc = check_times(p, e)) != 0)
                return rc;
        signer = p->signer;
        if (signer == NULL) {
                if ((rc = gmca_pkey_signer_init(&own, p->key, p->sm2_id, e)) != 0)
                        return rc;
                signer = &own.base;
        }
        if ((l.ski = issuer_ski(p->issuer, e)) == NULL) {
                rc = GMCA_ERR_INVALID;
                goto out;
        }
        if ((n = i2d_X509_NAME(X509_get_subject_name(p->issuer), &l.name)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "crl: cannot encode the issuer name");
                goto out;
        }
        l.name_len = (size_t)n;
        for (int i = 0; i < 8; i++) {
                l.number[1 + i] = (uint8_t)((uint64_t)p->number >> (8 * (7 - i)));
                l.base[1 + i] = (uint8_t)((uint64_t)p->base_number >> (8 * (7 - i)));
        }
        /* Pass one: sizes. */
        for (size_t i = 0; i < p->nentries; i++)
                l.entries += tlv_size(entry_content_size(&p->entries[i]));
        l.exts = exts_size(p, &l);
        l.tbs = sizeof(version_v2) + sizeof(sm2_sm3_alg) + l.name_len +
                time_tlv_size(p->this_update, 0) + time_tlv_size(p->next_update, 0) +
                (p->nentries > 0 ? tlv_size(l.entries) : 0) + tlv_size(tlv_size(l.exts));
        tbs_len = tlv_size(l.tbs);
        max = tbs_len + sizeof(sm2_sm3_alg) + tlv_size(1 + GMCA_SM2_SIG_MAX);
        if (tlv_size(max) > GMCA_CRL_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                    "crl: %zu entries make a CRL of %zu bytes, over the %u-byte "
                                    "limit",
                                    p->nentries, tlv_size(max), GMCA_CRL_MAX);
                goto out;
        }
        /* Room for the outer header in front; the TBS is signed where it lies. */
        hdr = 1 + len_size(max);
        if ((buf = OPENSSL_malloc(hdr + max)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "crl: out of memory for %zu bytes",
                                    hdr + max);
                goto out;
        }
        /* Pass two: bytes. */
        q = put_tbs(buf + hdr, p, &l);
        if ((size_t)(q - (buf + hdr)) != tbs_len) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "crl: TBS size mismatch");
                goto out;
        }
        if ((rc = signer->sign(signer->arg, buf + hdr, tbs_len, sig, &siglen, e)) != 0)
                goto out;
        if (siglen == 0 || siglen > sizeof(sig)) {
                rc = gmca_error_set(e, GMCA_ERR_CRYPTO, "crl: the signer returned %zu bytes",
                                    siglen);
                goto out;
        }
        /* Check against the certificate's key: catches a key that is not the issuer's. */
        gmca_error_clear(&why);
        if (gmca_sm2_verify(X509_get0_pubkey(p->issuer), p->sm2_id, buf + hdr, tbs_len, sig, siglen,
                            &why) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                    "crl: the new CRL does not verify under the issuer "
                                    "certificate: %s",
                                    why.msg);
                goto out;
        }
        q = put(q, sm2_sm3_alg, sizeof(sm2_sm3_alg));
        q = put_hdr(q, V_ASN1_BIT_STRING, 1 + siglen);
        *q++ = 0; /* no unused bits */
        q = put(q, sig, siglen);
        content = (size_t)(q - (buf + hdr));
        start = hdr - (1 + len_size(content));
        put_hdr(buf + start, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, content);
        if (start > 0)
                memmove(buf, buf + start, hdr - start + content);
        *der = buf;
        *der_len = hdr - start + content;
        buf = NULL;
        rc = 0;
out:
        OPENSSL_cleanse(sig, sizeof(sig));
        OPENSSL_free(buf);
        OPENSSL_free(l.name);
        ASN1_OCTET_STRING_free(l.ski);
        return rc;
}

X509_CRL *gmca_crl_build(const struct gmca_crl_params *p, struct gmca_error *e)
{
        uint8_t *der = NULL;
        const unsigned char *q;
        size_t len = 0;
        X509_CRL *crl;

        if (gmca_crl_build_der(p, &der, &len, e) != 0)
                return NULL;
        q = der;
        if ((crl = d2i_X509_CRL(NULL, &q, (long)len)) == NULL || q != der + len) {
                gmca_error_ossl(e, GMCA_ERR_INTERNAL, "crl: the new CRL does not decode");
                X509_CRL_free(crl);
                crl = NULL;
        }
        OPENSSL_free(der);
        return crl;
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
