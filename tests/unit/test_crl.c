/*
 * Tests of the crl module. The CA certificate is made here with plain
 * OpenSSL calls (not gmca_cert_build), so that these tests depend only on
 * crypto and crl. CRLs with 0, 1 and 3 entries are built and every field is
 * read back; verification must fail with another key, another ID, and a
 * changed byte; the parser takes DER and PEM and refuses trailing bytes,
 * truncation, garbage and BER; build refusals and the reason names are
 * tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "crypto.h"
#include "util.h"

#define T0 1735689600 /* 2025-01-01T00:00:00Z */

struct fixture {
        EVP_PKEY *key;   /* the CA key */
        EVP_PKEY *other; /* an unrelated SM2 key */
        X509 *ca;        /* self-signed, with SKI and keyUsage cRLSign */
        X509 *ca_noski;  /* the same key, no SKI */
        X509 *ca_noku;   /* the same key, keyUsage without cRLSign */
};

static void add_ext(X509 *x, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
}

/* A self-signed SM2 CA certificate; ski: add SM3-based keyIdentifier; ku: keyUsage text. */
static X509 *make_ca(EVP_PKEY *key, int ski, const char *ku)
{
        X509 *x = X509_new();
        X509_NAME *n = X509_NAME_new();
        EVP_MD_CTX *mctx;
        struct gmca_error e;

        assert_non_null(x);
        assert_non_null(n);
        assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234), 1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8,
                                                    (const unsigned char *)"CN", -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                                    (const unsigned char *)"测试电子政务认证中心",
                                                    -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)"Test SM2 CA", -1, -1,
                                                    0),
                         1);
        assert_int_equal(X509_set_subject_name(x, n), 1);
        assert_int_equal(X509_set_issuer_name(x, n), 1);
        X509_NAME_free(n);
        assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T0 - 86400));
        assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T0 + 3650 * 86400L));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, NID_key_usage, ku);
        if (ski) {
                /* keyIdentifier: leftmost 160 bits of SM3 over the public key bits. */
                uint8_t md[GMCA_SM3_LEN];
                const ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(x);
                ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

                assert_non_null(pk);
                assert_non_null(os);
                assert_int_equal(
                    gmca_sm3(ASN1_STRING_get0_data(pk), (size_t)ASN1_STRING_length(pk), md), 0);
                assert_int_equal(ASN1_OCTET_STRING_set(os, md, 20), 1);
                assert_int_equal(X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, 0), 1);
                ASN1_OCTET_STRING_free(os);
        }
        gmca_error_clear(&e);
        mctx = gmca_sm2_sign_ctx(key, NULL, &e);
        assert_non_null(mctx);
        assert_true(X509_sign_ctx(x, mctx) > 0);
        EVP_MD_CTX_free(mctx);
        return x;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e;

        gmca_error_clear(&e);
        if (f == NULL || (f->key = gmca_sm2_keygen(&e)) == NULL ||
            (f->other = gmca_sm2_keygen(&e)) == NULL)
                return -1;
        f->ca = make_ca(f->key, 1, "critical,keyCertSign,cRLSign,digitalSignature");
        f->ca_noski = make_ca(f->key, 0, "critical,keyCertSign,cRLSign");
        f->ca_noku = make_ca(f->key, 1, "critical,keyCertSign,digitalSignature");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        EVP_PKEY_free(f->key);
        EVP_PKEY_free(f->other);
        X509_free(f->ca);
        X509_free(f->ca_noski);
        X509_free(f->ca_noku);
        free(f);
        return 0;
}

static struct gmca_crl_params params(const struct fixture *f, const struct gmca_crl_entry *v,
                                     size_t n)
{
        struct gmca_crl_params p;

        memset(&p, 0, sizeof(p));
        p.issuer = f->ca;
        p.key = f->key;
        p.number = 7;
        p.this_update = T0;
        p.next_update = T0 + 86400;
        p.entries = v;
        p.nentries = n;
        return p;
}

static uint8_t *crl_der(X509_CRL *crl, size_t *len)
{
        unsigned char *der = NULL;
        int n = i2d_X509_CRL(crl, &der);

        assert_true(n > 0);
        *len = (size_t)n;
        return der;
}

/* ---- build and read back ---- */

#define ENTRIES_MAX 3

static const struct build_case {
        const char *what;
        size_t n;
        struct gmca_crl_entry v[ENTRIES_MAX];
        int64_t number;
} build_cases[] = {
    {"empty CRL", 0, {{{0}, 0, 0, 0, 0}}, 1},
    {"one entry, keyCompromise with invalidityDate",
     1,
     {{{0x3A, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE,
        0xFF},
       16,
       T0 - 3600,
       CRL_REASON_KEY_COMPROMISE,
       T0 - 86400 * 3}},
     42},
    {"three entries: no reason, unspecified (left out), certificateHold",
     3,
     {{{0x01}, 1, T0 - 100, -1, 0},
      {{0x7F, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19},
       20,
       T0 - 200,
       CRL_REASON_UNSPECIFIED,
       T0 - 300},
      {{0x00, 0x80, 0x01}, 3, T0 - 50, CRL_REASON_CERTIFICATE_HOLD, 0}},
     INT64_C(9223372036854775807)},
};

static void check_serial(const X509_REVOKED *r, const struct gmca_crl_entry *en)
{
        BIGNUM *got = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
        BIGNUM *want = BN_bin2bn(en->serial, (int)en->serial_len, NULL);

        assert_non_null(got);
        assert_non_null(want);
        assert_int_equal(BN_is_negative(got), 0);
        assert_int_equal(BN_cmp(got, want), 0);
        BN_free(got);
        BN_free(want);
}

static void check_entry(const X509_REVOKED *r, const struct gmca_crl_entry *en)
{
        ASN1_ENUMERATED *reason;
        ASN1_GENERALIZEDTIME *inv;
        int crit = 0;

        check_serial(r, en);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(r), en->revoked_at),
                         0);
        reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
        if (en->reason > CRL_REASON_UNSPECIFIED) {
                assert_non_null(reason);
                assert_int_equal(crit, 0);
                assert_int_equal(ASN1_ENUMERATED_get(reason), en->reason);
        } else {
                /* RFC 5280 §5.3.1: unspecified is expressed by leaving reasonCode out. */
                assert_null(reason);
                assert_int_equal(crit, -1);
        }
        ASN1_ENUMERATED_free(reason);
        inv = X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, &crit, NULL);
        if (en->invalidity != 0) {
                assert_non_null(inv);
                assert_int_equal(ASN1_STRING_type(inv), V_ASN1_GENERALIZEDTIME);
                assert_int_equal(ASN1_TIME_cmp_time_t(inv, en->invalidity), 0);
        } else {
                assert_null(inv);
        }
        ASN1_GENERALIZEDTIME_free(inv);
        assert_int_equal(X509_REVOKED_get_ext_count(r), (en->reason > 0) + (en->invalidity != 0));
}

static void check_crl(const struct fixture *f, X509_CRL *crl, const struct build_case *c)
{
        STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
        ASN1_INTEGER *num;
        AUTHORITY_KEYID *akid;
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(f->ca);
        int crit = 0;
        int64_t n64 = 0;

        assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(f->ca)), 0);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), T0), 0);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), T0 + 86400), 0);
        /* RFC 5280 §5.1.2.4: UTCTime through 2049. */
        assert_int_equal(ASN1_STRING_type(X509_CRL_get0_lastUpdate(crl)), V_ASN1_UTCTIME);
        assert_int_equal(X509_CRL_get_signature_nid(crl), NID_SM2_with_SM3);
        assert_int_equal(sk_X509_REVOKED_num(revs) < 0 ? 0 : sk_X509_REVOKED_num(revs), (int)c->n);
        for (size_t i = 0; i < c->n; i++)
                check_entry(sk_X509_REVOKED_value(revs, (int)i), &c->v[i]);

        assert_int_equal(X509_CRL_get_ext_count(crl), 2);
        num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
        assert_non_null(num);
        assert_int_equal(crit, 0);
        assert_int_equal(ASN1_INTEGER_get_int64(&n64, num), 1);
        assert_true(n64 == c->number);
        ASN1_INTEGER_free(num);

        akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
        assert_non_null(akid);
        assert_int_equal(crit, 0);
        assert_non_null(ski);
        assert_non_null(akid->keyid);
        assert_null(akid->issuer);
        assert_null(akid->serial);
        assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, ski), 0);
        AUTHORITY_KEYID_free(akid);
}

static void test_build(void **state)
{
        struct fixture *f = *state;

        for (size_t i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
                const struct build_case *c = &build_cases[i];
                struct gmca_crl_params p = params(f, c->v, c->n);
                struct gmca_error e;
                X509_CRL *crl, *back;
                uint8_t *der;
                size_t len;

                p.number = c->number;
                gmca_error_clear(&e);
                if ((crl = gmca_crl_build(&p, &e)) == NULL)
                        fail_msg("%s: %s", c->what, e.msg);
                check_crl(f, crl, c);
                expect(gmca_crl_verify(crl, f->key, NULL, &e), &e, 0, NULL, c->what);
                expect(gmca_crl_verify(crl, X509_get0_pubkey(f->ca), GMCA_SM2_DEFAULT_ID, &e), &e,
                       0, NULL, c->what);

                /* The DER read back is the same CRL and still verifies. */
                der = crl_der(crl, &len);
                if ((back = gmca_crl_parse(der, len, &e)) == NULL)
                        fail_msg("%s: parse: %s", c->what, e.msg);
                check_crl(f, back, c);
                expect(gmca_crl_verify(back, f->key, NULL, &e), &e, 0, NULL, c->what);
                X509_CRL_free(back);
                OPENSSL_free(der);
                X509_CRL_free(crl);
        }
}

/* A CRL signed with a non-default ID verifies only with that ID. */
static void test_build_with_id(void **state)
{
        struct fixture *f = *state;
        struct gmca_crl_params p = params(f, NULL, 0);
        struct gmca_error e;
        X509_CRL *crl;

        p.sm2_id = "ALICE123@YAHOO.COM";
        gmca_error_clear(&e);
        assert_non_null(crl = gmca_crl_build(&p, &e));
        expect(gmca_crl_verify(crl, f->key, "ALICE123@YAHOO.COM", &e), &e, 0, NULL, "same ID");
        expect(gmca_crl_verify(crl, f->key, NULL, &e), &e, GMCA_ERR_VERIFY,
               "does not verify with ID 1234567812345678", "default ID");
        X509_CRL_free(crl);
}

/* Signed by a signer (a device, the CA engine): the same TBS, a signature that verifies. */
static void test_build_with_signer(void **state)
{
        struct fixture *f = *state;
        const struct gmca_crl_entry v[] = {
            {{0x01, 0x02}, 2, T0 - 3600, CRL_REASON_KEY_COMPROMISE, T0 - 7200},
        };
        struct gmca_crl_params p = params(f, v, 1);
        struct gmca_pkey_signer ps;
        struct gmca_error e = {0};
        unsigned char *t1 = NULL, *t2 = NULL;
        X509_CRL *a, *b, *back;
        uint8_t *der;
        size_t len;
        const unsigned char *q;
        int n1, n2;

        assert_non_null(a = gmca_crl_build(&p, &e));
        expect(gmca_pkey_signer_init(&ps, f->key, "ALICE123@YAHOO.COM", &e), &e, 0, NULL, "init");
        p.key = NULL;
        p.sm2_id = "ALICE123@YAHOO.COM";
        p.signer = &ps.base;
        assert_non_null(b = gmca_crl_build(&p, &e));
        expect(gmca_crl_verify(b, f->key, "ALICE123@YAHOO.COM", &e), &e, 0, NULL, "signer CRL");
        der = crl_der(b, &len);
        q = der;
        assert_non_null(back = d2i_X509_CRL(NULL, &q, (long)len));
        assert_ptr_equal(q, der + len);
        expect(gmca_crl_verify(back, f->key, "ALICE123@YAHOO.COM", &e), &e, 0, NULL, "reparsed");
        assert_int_equal(X509_CRL_get_signature_nid(back), NID_SM2_with_SM3);
        /* Only the signature differs from the CRL the key signed in-process. */
        n1 = i2d_re_X509_CRL_tbs(a, &t1);
        n2 = i2d_re_X509_CRL_tbs(b, &t2);
        assert_true(n1 > 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(t1, t2, (size_t)n1);
        OPENSSL_free(t1);
        OPENSSL_free(t2);
        OPENSSL_free(der);
        X509_CRL_free(a);
        X509_CRL_free(b);
        X509_CRL_free(back);
}

/* ---- verification failures ---- */

/* Offset of needle in hay, or fail. */
static size_t find(const uint8_t *hay, size_t len, const char *needle)
{
        size_t n = strlen(needle);

        for (size_t i = 0; i + n <= len; i++)
                if (memcmp(hay + i, needle, n) == 0)
                        return i;
        fail_msg("\"%s\" not in the DER", needle);
        return 0;
}

static void test_verify_failures(void **state)
{
        struct fixture *f = *state;
        const struct build_case *c = &build_cases[2];
        struct gmca_crl_params p = params(f, c->v, c->n);
        struct gmca_error e;
        X509_CRL *crl, *bad;
        uint8_t *der;
        size_t len;
        static const struct {
                const char *what;
                long where; /* offset from the end (> 0), or -1: inside the issuer CN */
        } flips[] = {
            {"last byte of the signature", 1},
            {"a byte in the middle of the signature", 20},
            {"a byte of the issuer CN in the TBS", -1},
        };

        gmca_error_clear(&e);
        assert_non_null(crl = gmca_crl_build(&p, &e));
        expect(gmca_crl_verify(crl, f->other, NULL, &e), &e, GMCA_ERR_VERIFY, "crl: GM/T 0009",
               "wrong key");
        gmca_error_clear(&e);
        expect(gmca_crl_verify(crl, f->key, "1234567812345679", &e), &e, GMCA_ERR_VERIFY,
               "with ID 1234567812345679", "wrong ID");
        gmca_error_clear(&e);
        expect(gmca_crl_verify(crl, f->key, "", &e), &e, GMCA_ERR_VERIFY, NULL, "empty ID");
        gmca_error_clear(&e);
        expect(gmca_crl_verify(NULL, f->key, NULL, &e), &e, GMCA_ERR_INVALID, "nothing", "NULL");
        gmca_error_clear(&e);
        expect(gmca_crl_verify(crl, NULL, NULL, &e), &e, GMCA_ERR_INVALID, "nothing", "NULL key");

        der = crl_der(crl, &len);
        for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
                uint8_t *copy = malloc(len);
                size_t at = flips[i].where > 0 ? len - (size_t)flips[i].where
                                               : find(der, len, "Test SM2 CA") + 5;

                assert_non_null(copy);
                memcpy(copy, der, len);
                copy[at] ^= 0x01;
                gmca_error_clear(&e);
                if ((bad = gmca_crl_parse(copy, len, &e)) == NULL)
                        fail_msg("%s: parse: %s", flips[i].what, e.msg);
                expect(gmca_crl_verify(bad, f->key, NULL, &e), &e, GMCA_ERR_VERIFY,
                       "does not verify", flips[i].what);
                X509_CRL_free(bad);
                free(copy);
        }
        /* SM2-with-SM3 (1.2.156.10197.1.501) changed to .502, inside the TBS or outside. */
        {
                static const uint8_t oid[] = {0x06, 0x08, 0x2A, 0x81, 0x1C,
                                              0xCF, 0x55, 0x01, 0x83, 0x75};
                size_t first = len, last = len;

                for (size_t i = 0; i + sizeof(oid) <= len; i++) {
                        if (memcmp(der + i, oid, sizeof(oid)) == 0) {
                                if (first == len)
                                        first = i;
                                last = i;
                        }
                }
                assert_true(first < last && last < len);
                for (int outer = 0; outer < 2; outer++) {
                        uint8_t *copy = malloc(len);

                        assert_non_null(copy);
                        memcpy(copy, der, len);
                        copy[(outer ? last : first) + sizeof(oid) - 1] = 0x76;
                        gmca_error_clear(&e);
                        assert_non_null(bad = gmca_crl_parse(copy, len, &e));
                        expect(gmca_crl_verify(bad, f->key, NULL, &e), &e, GMCA_ERR_VERIFY,
                               outer ? "must be SM2-with-SM3"
                                     : "outer and TBS signature algorithms",
                               outer ? "outer algorithm" : "TBS algorithm");
                        X509_CRL_free(bad);
                        free(copy);
                }
        }
        OPENSSL_free(der);
        X509_CRL_free(crl);
}

/* ---- build refusals ---- */

static void test_build_refusals(void **state)
{
        struct fixture *f = *state;
        static const struct gmca_crl_entry dup[] = {
            {{0x01, 0x02}, 2, T0, 1, 0}, {{0x05}, 1, T0, 1, 0}, {{0x01, 0x02}, 2, T0, 4, 0}};
        static const struct gmca_crl_entry dup_value[] = {{{0x00, 0x01, 0x02}, 3, T0, -1, 0},
                                                          {{0x01, 0x02}, 2, T0, -1, 0}};
        static const struct gmca_crl_entry zero[] = {{{0x00, 0x00}, 2, T0, -1, 0}};
        static const struct gmca_crl_entry empty[] = {{{0}, 0, T0, -1, 0}};
        static const struct gmca_crl_entry long_serial[] = {{{1}, 21, T0, -1, 0}};
        static const struct gmca_crl_entry reason7[] = {{{1}, 1, T0, 7, 0}};
        static const struct gmca_crl_entry reason11[] = {{{1}, 1, T0, 11, 0}};
        static const struct gmca_crl_entry reason_neg[] = {{{1}, 1, T0, -2, 0}};
        struct {
                const char *what;
                struct gmca_crl_params p;
                int rc;
                const char *msg;
        } cases[] = {
            {"duplicate serial", params(f, dup, 3), GMCA_ERR_INVALID,
             "crl: entries 0 and 2: duplicate serial"},
            {"duplicate serial value", params(f, dup_value, 2), GMCA_ERR_INVALID,
             "duplicate serial"},
            {"zero serial", params(f, zero, 1), GMCA_ERR_INVALID, "serial must be positive"},
            {"empty serial", params(f, empty, 1), GMCA_ERR_INVALID, "serial must be 1..20 bytes"},
            {"21-byte serial", params(f, long_serial, 1), GMCA_ERR_INVALID, "1..20 bytes"},
            {"reason 7", params(f, reason7, 1), GMCA_ERR_INVALID, "7 is not a CRLReason"},
            {"reason 11", params(f, reason11, 1), GMCA_ERR_INVALID, "11 is not a CRLReason"},
            {"reason -2", params(f, reason_neg, 1), GMCA_ERR_INVALID, "not a CRLReason"},
            {"entries NULL", params(f, NULL, 2), GMCA_ERR_INVALID, "entries missing"},
            {"next == this", params(f, NULL, 0), GMCA_ERR_INVALID,
             "nextUpdate must be later than thisUpdate"},
            {"next < this", params(f, NULL, 0), GMCA_ERR_INVALID, "nextUpdate"},
            {"number 0", params(f, NULL, 0), GMCA_ERR_INVALID, "cRLNumber must be positive"},
            {"number -1", params(f, NULL, 0), GMCA_ERR_INVALID, "cRLNumber"},
            {"issuer without SKI", params(f, NULL, 0), GMCA_ERR_INVALID, "no subjectKeyIdentifier"},
            {"issuer without cRLSign", params(f, NULL, 0), GMCA_ERR_INVALID, "lacks cRLSign"},
            {"key not the issuer's", params(f, NULL, 0), GMCA_ERR_VERIFY, "does not verify"},
            {"no key", params(f, NULL, 0), GMCA_ERR_INVALID, "issuer certificate and key"},
            {"no issuer", params(f, NULL, 0), GMCA_ERR_INVALID, "issuer certificate and key"},
        };

        cases[9].p.next_update = cases[9].p.this_update;
        cases[10].p.next_update = cases[10].p.this_update - 1;
        cases[11].p.number = 0;
        cases[12].p.number = -1;
        cases[13].p.issuer = f->ca_noski;
        cases[14].p.issuer = f->ca_noku;
        cases[15].p.key = f->other;
        cases[16].p.key = NULL;
        cases[17].p.issuer = NULL;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e;
                X509_CRL *crl;

                gmca_error_clear(&e);
                crl = gmca_crl_build(&cases[i].p, &e);
                assert_null(crl);
                expect(e.code, &e, cases[i].rc, cases[i].msg, cases[i].what);
        }
        {
                struct gmca_error e;

                gmca_error_clear(&e);
                assert_null(gmca_crl_build(NULL, &e));
                expect(e.code, &e, GMCA_ERR_INVALID, NULL, "NULL params");
        }
}

/* ---- parsing ---- */

static uint8_t *concat(const void *a, size_t alen, const void *b, size_t blen, size_t *len)
{
        uint8_t *out = malloc(alen + blen + 1);

        assert_non_null(out);
        memcpy(out, a, alen);
        if (blen > 0)
                memcpy(out + alen, b, blen);
        *len = alen + blen;
        return out;
}

static char *to_pem(X509_CRL *crl, size_t *len)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL, *out;
        long n;

        assert_non_null(b);
        assert_int_equal(PEM_write_bio_X509_CRL(b, crl), 1);
        n = BIO_get_mem_data(b, &data);
        assert_true(n > 0);
        out = malloc((size_t)n + 1);
        assert_non_null(out);
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
        BIO_free(b);
        return out;
}

static void test_parse(void **state)
{
        struct fixture *f = *state;
        const struct build_case *c = &build_cases[1];
        struct gmca_crl_params p = params(f, c->v, c->n);
        struct gmca_error e;
        X509_CRL *crl, *back;
        uint8_t *der, *ber;
        size_t len, pemlen;
        char *pem;

        gmca_error_clear(&e);
        assert_non_null(crl = gmca_crl_build(&p, &e));
        der = crl_der(crl, &len);
        pem = to_pem(crl, &pemlen);
        assert_true(len > 200 && len < 65536);

        /* Good: DER, PEM, PEM with surrounding white space and CRLF lines. */
        assert_non_null(back = gmca_crl_parse(der, len, &e));
        X509_CRL_free(back);
        assert_non_null(back = gmca_crl_parse((uint8_t *)pem, pemlen, &e));
        expect(gmca_crl_verify(back, f->key, NULL, &e), &e, 0, NULL, "PEM");
        X509_CRL_free(back);
        {
                size_t l;
                uint8_t *ws = concat("\n  ", 3, pem, pemlen, &l), *ws2;

                ws2 = concat(ws, l, "\n\n", 2, &l);
                assert_non_null(back = gmca_crl_parse(ws2, l, &e));
                X509_CRL_free(back);
                free(ws);
                free(ws2);
        }
        expect(0, &e, 0, NULL, "good inputs");

        /* Bad inputs. */
        {
                static const uint8_t garbage[] = "this is not a CRL at all";
                static const uint8_t zero[] = {0x30, 0x00};
                char *label = strdup(pem), *hdr;
                size_t l1, l2, l3, l4, l5;
                uint8_t *trail = concat(der, len, "\0", 1, &l1);
                uint8_t *ptrail = concat(pem, pemlen, "x\n", 2, &l2);
                uint8_t *two = concat(pem, pemlen, pem, pemlen, &l3);
                uint8_t *lead = concat("junk\n", 5, pem, pemlen, &l4);
                uint8_t *derpem = concat(der, len, pem, pemlen, &l5);
                uint8_t *big;
                char *q;

                assert_non_null(label);
                /* "X509 CRL" -> "X509 CRX" in both lines. */
                while ((q = strstr(label, "X509 CRL")) != NULL)
                        q[7] = 'X';
                /* A header line inside the body. */
                hdr = malloc(pemlen + 32);
                assert_non_null(hdr);
                q = strchr(pem, '\n');
                assert_non_null(q);
                memcpy(hdr, pem, (size_t)(q - pem) + 1);
                memcpy(hdr + (q - pem) + 1, "Proc-Type: 4,ENCRYPTED\n\n", 24);
                memcpy(hdr + (q - pem) + 25, q + 1, pemlen - (size_t)(q - pem) - 1);

                struct {
                        const char *what;
                        const uint8_t *buf;
                        size_t len;
                        int rc;
                        const char *msg;
                } cases[] = {
                    {"empty", der, 0, GMCA_ERR_INVALID, "empty input"},
                    {"NULL", NULL, 5, GMCA_ERR_INVALID, "empty input"},
                    {"garbage", garbage, sizeof(garbage) - 1, GMCA_ERR_INVALID,
                     "not a DER CertificateList"},
                    {"empty SEQUENCE", zero, sizeof(zero), GMCA_ERR_INVALID, "CertificateList"},
                    {"trailing byte after DER", trail, l1, GMCA_ERR_INVALID, "1 trailing bytes"},
                    {"DER then PEM", derpem, l5, GMCA_ERR_INVALID, "trailing bytes"},
                    {"truncated by one", der, len - 1, GMCA_ERR_INVALID, "CertificateList"},
                    {"truncated to half", der, len / 2, GMCA_ERR_INVALID, "CertificateList"},
                    {"truncated to the header", der, 4, GMCA_ERR_INVALID, "CertificateList"},
                    {"trailing text after PEM", ptrail, l2, GMCA_ERR_INVALID,
                     "trailing data after the PEM block"},
                    {"two PEM blocks", two, l3, GMCA_ERR_INVALID, "more than one PEM block"},
                    {"junk before PEM", lead, l4, GMCA_ERR_INVALID, "not a DER CertificateList"},
                    {"wrong PEM label", (uint8_t *)label, pemlen, GMCA_ERR_INVALID,
                     "PEM label is not \"X509 CRL\""},
                    {"PEM header line", (uint8_t *)hdr, pemlen + 24, GMCA_ERR_INVALID,
                     "header line in the PEM body"},
                    {"truncated PEM", (uint8_t *)pem, pemlen - 30, GMCA_ERR_INVALID, "RFC 7468"},
                };

                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        gmca_error_clear(&e);
                        back = gmca_crl_parse(cases[i].buf, cases[i].len, &e);
                        assert_null(back);
                        expect(e.code, &e, cases[i].rc, cases[i].msg, cases[i].what);
                }
                /* Over the cap: refused by size before any decoding. */
                big = calloc(1, (size_t)GMCA_CRL_MAX + 1);
                assert_non_null(big);
                memcpy(big, der, len);
                gmca_error_clear(&e);
                assert_null(gmca_crl_parse(big, (size_t)GMCA_CRL_MAX + 1, &e));
                expect(e.code, &e, GMCA_ERR_LIMIT, "larger than", "oversized");
                free(big);
                free(trail);
                free(ptrail);
                free(two);
                free(lead);
                free(derpem);
                free(label);
                free(hdr);
        }

        /* BER: the outer length in a non-minimal long form (X.690 §10.1). */
        assert_true(der[0] == 0x30 && der[1] == 0x82);
        ber = malloc(len + 1);
        assert_non_null(ber);
        ber[0] = 0x30;
        ber[1] = 0x83;
        ber[2] = 0x00;
        memcpy(ber + 3, der + 2, len - 2);
        gmca_error_clear(&e);
        back = gmca_crl_parse(ber, len + 1, &e);
        assert_null(back);
        expect(e.code, &e, GMCA_ERR_INVALID, "not DER", "BER outer length");
        /* BER inside the TBS: its length in a non-minimal long form (30 83 00 hi lo). */
        assert_true(der[4] == 0x30);
        {
                size_t hl = der[5] == 0x82 ? 4 : der[5] == 0x81 ? 3 : 2;
                size_t tl = hl == 4 ? ((size_t)der[6] << 8 | der[7]) : hl == 3 ? der[6] : der[5];
                size_t inner = len - 4 - hl + 5, total = 4 + inner;
                uint8_t *b2 = malloc(total);

                assert_non_null(b2);
                b2[0] = 0x30;
                b2[1] = 0x82;
                b2[2] = (uint8_t)(inner >> 8);
                b2[3] = (uint8_t)(inner & 0xff);
                b2[4] = 0x30;
                b2[5] = 0x83;
                b2[6] = 0x00;
                b2[7] = (uint8_t)(tl >> 8);
                b2[8] = (uint8_t)(tl & 0xff);
                memcpy(b2 + 9, der + 4 + hl, len - 4 - hl);
                gmca_error_clear(&e);
                back = gmca_crl_parse(b2, total, &e);
                assert_null(back);
                expect(e.code, &e, GMCA_ERR_INVALID, "not DER", "BER TBS length");
                free(b2);
        }
        free(ber);
        free(pem);
        OPENSSL_free(der);
        X509_CRL_free(crl);
}

/* ---- interop with the openssl command ---- */

static void test_openssl_reads(void **state)
{
        struct fixture *f = *state;
        const struct build_case *c = &build_cases[2];
        struct gmca_crl_params p = params(f, c->v, c->n);
        struct gmca_error e;
        char dir[] = "/tmp/gmca-crl-XXXXXX", path[64], cmd[256], line[512];
        X509_CRL *crl;
        uint8_t *der;
        size_t len;
        FILE *pipe;
        int seen_number = 0, seen_hold = 0, seen_alg = 0, seen_aki = 0, status;

        if (system("command -v openssl >/dev/null 2>&1") != 0) {
                skip();
                return;
        }
        p.number = 4242;
        gmca_error_clear(&e);
        assert_non_null(crl = gmca_crl_build(&p, &e));
        der = crl_der(crl, &len);
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/t.crl", dir);
        expect(gmca_write_file_excl(path, der, len, 0644, &e), &e, 0, NULL, "write");
        snprintf(cmd, sizeof(cmd), "openssl crl -inform DER -in %s -text -noout 2>&1", path);
        assert_non_null(pipe = popen(cmd, "r"));
        while (fgets(line, sizeof(line), pipe) != NULL) {
                if (strstr(line, "X509v3 CRL Number") != NULL) {
                        if (fgets(line, sizeof(line), pipe) != NULL && strstr(line, "4242"))
                                seen_number = 1;
                }
                seen_hold |= strstr(line, "Certificate Hold") != NULL;
                seen_alg |= strstr(line, "SM2-with-SM3") != NULL;
                seen_aki |= strstr(line, "X509v3 Authority Key Identifier") != NULL;
        }
        status = pclose(pipe);
        assert_int_equal(status, 0);
        assert_true(seen_number);
        assert_true(seen_hold);
        assert_true(seen_alg);
        assert_true(seen_aki);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        OPENSSL_free(der);
        X509_CRL_free(crl);
}

/* ---- reason names ---- */

static void test_reasons(void **state)
{
        static const struct {
                int code;
                const char *name;
        } table[] = {
            {0, "unspecified"},        {1, "keyCompromise"}, {2, "cACompromise"},
            {3, "affiliationChanged"}, {4, "superseded"},    {5, "cessationOfOperation"},
            {6, "certificateHold"},    {8, "removeFromCRL"}, {9, "privilegeWithdrawn"},
            {10, "aACompromise"},
        };
        static const char *const unknown[] = {"",  "key compromise", "keyCompromise ",
                                              "7", "removeFromCrl2", "hold"};

        (void)state;
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                char upper[64];
                size_t k;

                assert_string_equal(gmca_crl_reason_name(table[i].code), table[i].name);
                assert_int_equal(gmca_crl_reason_from_name(table[i].name), table[i].code);
                for (k = 0; table[i].name[k] != '\0' && k + 1 < sizeof(upper); k++)
                        upper[k] = (char)(table[i].name[k] >= 'a' && table[i].name[k] <= 'z'
                                              ? table[i].name[k] - 32
                                              : table[i].name[k]);
                upper[k] = '\0';
                assert_int_equal(gmca_crl_reason_from_name(upper), table[i].code);
        }
        assert_int_equal(gmca_crl_reason_from_name("KEYCOMPROMISE"), 1);
        assert_int_equal(gmca_crl_reason_from_name("cacompromise"), 2);
        for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
                assert_int_equal(gmca_crl_reason_from_name(unknown[i]), -1);
        assert_int_equal(gmca_crl_reason_from_name(NULL), -1);
        assert_null(gmca_crl_reason_name(7));
        assert_null(gmca_crl_reason_name(-1));
        assert_null(gmca_crl_reason_name(11));
}

/*
 * Many entries (long-form DER lengths), every serial shape (1..20 bytes,
 * leading zeros, high bit set), every reason, invalidity dates, and times in
 * UTCTime and GeneralizedTime ranges from year 0001 to 9999: the DER written
 * by gmca_crl_build_der is strict DER to OpenSSL (gmca_crl_parse re-encodes
 * it) and reads back entry by entry.
 */
#define MANY 5000

static void test_build_many(void **state)
{
        struct fixture *f = *state;
        static const int reasons[] = {-1, 0, 1, 2, 3, 4, 5, 6, 8, 9, 10};
        static const int64_t times[] = {T0,
                                        INT64_C(-631152000) - 1, /* 1949-12-31T23:59:59Z */
                                        INT64_C(-631152000),     /* 1950: UTCTime again */
                                        INT64_C(2524607999),     /* 2049-12-31T23:59:59Z */
                                        INT64_C(2524608000),     /* 2050: GeneralizedTime */
                                        INT64_C(-62135596800),   /* 0001-01-01T00:00:00Z */
                                        INT64_C(253402300799),   /* 9999-12-31T23:59:59Z */
                                        INT64_C(951782400)};     /* 2000-02-29 */
        struct gmca_crl_entry *v = calloc(MANY, sizeof(*v));
        struct gmca_crl_params p;
        struct gmca_error e = {0};
        STACK_OF(X509_REVOKED) * revs;
        uint8_t *der = NULL;
        size_t len = 0;
        X509_CRL *crl;

        assert_non_null(v);
        for (size_t i = 0; i < MANY; i++) {
                size_t n = 1 + i % 20;

                v[i].serial_len = n;
                for (size_t j = 0; j < n; j++)
                        v[i].serial[j] = (uint8_t)(i * 131 + j * 29);
                if (i % 3 == 0)
                        v[i].serial[0] = 0; /* a leading zero: dropped in the INTEGER */
                if (i % 5 == 0)
                        v[i].serial[0] = 0x80; /* the high bit: a zero byte added */
                /* Unique values: the index in the last two bytes, or the only byte. */
                v[i].serial[n - 1] = (uint8_t)(i + 1);
                if (n >= 3) {
                        v[i].serial[n - 2] = (uint8_t)((i + 1) >> 8);
                        v[i].serial[n - 3] |= 0x01;
                }
                v[i].revoked_at = (time_t)(times[i % 8] - (int64_t)(i % 7 == 0 ? 0 : i % 60));
                v[i].reason = reasons[i % 11];
                v[i].invalidity = i % 3 == 1 ? (time_t)(times[(i + 3) % 8] - 1) : 0;
        }
        /* One-byte serials repeat values past 255: keep those unique by making them longer. */
        for (size_t i = 0; i < MANY; i++)
                if (v[i].serial_len < 3) {
                        v[i].serial_len = 3;
                        v[i].serial[0] = 0x40;
                        v[i].serial[1] = (uint8_t)((i + 1) >> 8);
                        v[i].serial[2] = (uint8_t)(i + 1);
                }
        p = params(f, v, MANY);
        p.next_update = (time_t)INT64_C(2524608000) + 86400; /* nextUpdate a GeneralizedTime */
        if (gmca_crl_build_der(&p, &der, &len, &e) != 0)
                fail_msg("build: %s", e.msg);
        assert_true(len > 65536); /* three-byte lengths */
        if ((crl = gmca_crl_parse(der, len, &e)) == NULL)
                fail_msg("parse: %s", e.msg);
        expect(gmca_crl_verify(crl, f->key, NULL, &e), &e, 0, NULL, "many entries");
        assert_int_equal(ASN1_STRING_type(X509_CRL_get0_nextUpdate(crl)), V_ASN1_GENERALIZEDTIME);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), p.next_update), 0);
        revs = X509_CRL_get_REVOKED(crl);
        assert_int_equal(sk_X509_REVOKED_num(revs), MANY);
        for (size_t i = 0; i < MANY; i++) {
                const X509_REVOKED *r = sk_X509_REVOKED_value(revs, (int)i);
                int64_t t = (int64_t)v[i].revoked_at;
                int utc = t >= INT64_C(-631152000) && t < INT64_C(2524608000);

                check_entry(r, &v[i]);
                assert_int_equal(ASN1_STRING_type(X509_REVOKED_get0_revocationDate(r)),
                                 utc ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME);
        }
        X509_CRL_free(crl);
        OPENSSL_free(der);

        /* A duplicate value far from its twin (a leading zero more) is found. */
        v[4321] = v[17];
        memmove(v[4321].serial + 1, v[4321].serial, v[4321].serial_len);
        v[4321].serial[0] = 0;
        v[4321].serial_len++;
        gmca_error_clear(&e);
        assert_int_not_equal(gmca_crl_build_der(&p, &der, &len, &e), 0);
        expect(e.code, &e, GMCA_ERR_INVALID, "entries 17 and 4321: duplicate serial", "dup");
        assert_null(der);
        free(v);
}

/* Times a Time cannot carry, and more entries than a CRL can hold. */
static void test_build_limits(void **state)
{
        struct fixture *f = *state;
        struct gmca_crl_entry v[1] = {{{0x01}, 1, T0, -1, 0}};
        struct {
                const char *what;
                time_t revoked, invalidity, next;
                size_t n;
                int rc;
                const char *msg;
        } cases[] = {
            {"year 10000", (time_t)INT64_C(253402300800), 0, T0 + 1, 1, GMCA_ERR_INVALID,
             "entry 0: revocationDate out of range"},
            {"before year 0", (time_t)INT64_C(-62167219201), 0, T0 + 1, 1, GMCA_ERR_INVALID,
             "revocationDate out of range"},
            {"invalidity year 10000", T0, (time_t)INT64_C(253402300800), T0 + 1, 1,
             GMCA_ERR_INVALID, "entry 0: invalidityDate out of range"},
            {"nextUpdate year 10000", T0, 0, (time_t)INT64_C(253402300800), 1, GMCA_ERR_INVALID,
             "nextUpdate out of range"},
            {"too many entries", T0, 0, T0 + 1, GMCA_CRL_MAX / 16 + 1, GMCA_ERR_LIMIT,
             "entries, over"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_crl_params p = params(f, v, cases[i].n);
                struct gmca_error e;
                uint8_t *der = (uint8_t *)"x";
                size_t len = 1;

                v[0].revoked_at = cases[i].revoked;
                v[0].invalidity = cases[i].invalidity;
                p.this_update = T0;
                p.next_update = cases[i].next;
                gmca_error_clear(&e);
                assert_int_not_equal(gmca_crl_build_der(&p, &der, &len, &e), 0);
                expect(e.code, &e, cases[i].rc, cases[i].msg, cases[i].what);
                assert_null(der);
                assert_int_equal(len, 0);
        }
}

/* The URI of the single DistributionPoint in dps (consumed); NULL if not that shape. */
static char *only_uri(STACK_OF(DIST_POINT) * dps)
{
        char *uri = NULL;

        if (sk_DIST_POINT_num(dps) == 1) {
                DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);

                if (dp->distpoint != NULL && dp->distpoint->type == 0 &&
                    sk_GENERAL_NAME_num(dp->distpoint->name.fullname) == 1) {
                        GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);

                        if (gn->type == GEN_URI)
                                uri = OPENSSL_strndup(
                                    (const char *)ASN1_STRING_get0_data(
                                        gn->d.uniformResourceIdentifier),
                                    (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier));
                }
        }
        sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
        return uri;
}

/* Delta CRLs (RFC 5280 §5.2.4) and the freshestCRL of complete CRLs (§5.2.6), as OpenSSL reads
 * them. */
static void test_delta(void **state)
{
        static const char url[] = "http://ca.example.gov.cn/crl/sub/delta.crl";
        struct fixture *f = *state;
        struct gmca_crl_entry v[1];
        struct gmca_crl_params p;
        struct gmca_error e;
        ASN1_INTEGER *base;
        X509_CRL *crl;
        char *uri;
        int crit = 0, idx;
        int64_t n = 0;

        memset(v, 0, sizeof(v));
        v[0].serial[0] = 0x42;
        v[0].serial_len = 1;
        v[0].revoked_at = T0 - 60;
        v[0].reason = CRL_REASON_KEY_COMPROMISE;

        /* A complete CRL pointing to its delta. */
        p = params(f, v, 1);
        p.freshest_url = url;
        gmca_error_clear(&e);
        if ((crl = gmca_crl_build(&p, &e)) == NULL)
                fail_msg("complete: %s", e.msg);
        uri = only_uri(X509_CRL_get_ext_d2i(crl, NID_freshest_crl, &crit, NULL));
        assert_non_null(uri);
        assert_string_equal(uri, url);
        assert_int_equal(crit, 0);
        OPENSSL_free(uri);
        assert_int_equal(X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1), -1);
        expect(gmca_crl_verify(crl, f->key, NULL, &e), &e, 0, NULL, "complete verifies");
        X509_CRL_free(crl);

        /* A delta against CRL 7, itself number 9. */
        p = params(f, v, 1);
        p.number = 9;
        p.base_number = 7;
        if ((crl = gmca_crl_build(&p, &e)) == NULL)
                fail_msg("delta: %s", e.msg);
        base = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit, NULL);
        assert_non_null(base);
        assert_int_equal(crit, 1);
        assert_int_equal(ASN1_INTEGER_get_int64(&n, base), 1);
        assert_int_equal(n, 7);
        ASN1_INTEGER_free(base);
        idx = X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1);
        assert_true(idx >= 0);
        assert_int_equal(X509_EXTENSION_get_critical(X509_CRL_get_ext(crl, idx)), 1);
        assert_int_equal(X509_CRL_get_ext_by_NID(crl, NID_freshest_crl, -1), -1);
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
        expect(gmca_crl_verify(crl, f->key, NULL, &e), &e, 0, NULL, "delta verifies");
        X509_CRL_free(crl);

        /* Refusals: a base that is not earlier, a negative one, freshestCRL in a delta, no URL. */
        p = params(f, v, 1);
        p.base_number = 7;
        assert_null(gmca_crl_build(&p, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "earlier CRL", "base == number");
        p.base_number = -1;
        gmca_error_clear(&e);
        assert_null(gmca_crl_build(&p, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "earlier CRL", "negative base");
        p.base_number = 3;
        p.freshest_url = url;
        gmca_error_clear(&e);
        assert_null(gmca_crl_build(&p, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "no freshestCRL in a delta", "delta with freshest");
        p.base_number = 0;
        p.freshest_url = "";
        gmca_error_clear(&e);
        assert_null(gmca_crl_build(&p, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "URL", "empty URL");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_build),
            cmocka_unit_test(test_build_with_id),
            cmocka_unit_test(test_build_with_signer),
            cmocka_unit_test(test_verify_failures),
            cmocka_unit_test(test_build_refusals),
            cmocka_unit_test(test_build_many),
            cmocka_unit_test(test_build_limits),
            cmocka_unit_test(test_parse),
            cmocka_unit_test(test_openssl_reads),
            cmocka_unit_test(test_reasons),
            cmocka_unit_test(test_delta),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
