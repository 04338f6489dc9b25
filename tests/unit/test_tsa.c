/*
 * Tests of tsa: RFC 3161 requests, replies and verification with SM2, and
 * the tsa profile's critical extKeyUsage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/objects.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "gmca/timestamp.h"
#include "profile.h"
#include "testutil.h"
#include "tsa.h"
#include "util.h"
#include "x509.h"

#define YEAR (365 * 24 * 3600)
#define TOKEN_OFFSET 9 /* 30 82 LL LL, then PKIStatusInfo 30 03 02 01 00 */

struct pki {
        EVP_PKEY *ca_key, *tsa_key, *other_key;
        X509 *ca, *tsa, *noncrit, *extra, *other_ca;
};

static struct pki P;

static const int eku_ts[] = {NID_time_stamp};
static const int eku_ts_client[] = {NID_time_stamp, NID_client_auth};

/* A certificate built by gmca_cert_build and read back as a relying party would. */
static time_t t0;

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       const int *eku, size_t neku, int eku_critical, uint8_t serial_byte)
{
        struct gmca_cert_template t;
        struct gmca_error e = {0};
        X509_NAME *name = X509_NAME_new();
        X509 *built, *parsed;
        uint8_t *der = NULL;
        int len;

        assert_non_null(name);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                                                    (const unsigned char *)"CN", -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = key;
        t.issuer = issuer;
        t.issuer_key = issuer != NULL ? issuer_key : key;
        memset(t.serial, serial_byte, sizeof(t.serial));
        t.serial[0] &= 0x7f;
        /* One clock reading for all: a leaf made a second later must not outlive its CA. */
        if (t0 == 0)
                t0 = time(NULL);
        t.not_before = t0 - 60;
        t.not_after = t0 + YEAR;
        t.ca = issuer == NULL;
        t.path_len = -1;
        t.key_usage = issuer == NULL ? (KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE)
                                     : (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
        t.eku = eku;
        t.neku = neku;
        t.eku_critical = eku_critical;
        if ((built = gmca_cert_build(&t, &e)) == NULL)
                fail_msg("gmca_cert_build: %s", e.msg);
        len = i2d_X509(built, &der);
        assert_true(len > 0);
        if ((parsed = gmca_cert_parse(der, (size_t)len, &e)) == NULL)
                fail_msg("gmca_cert_parse: %s", e.msg);
        OPENSSL_free(der);
        X509_free(built);
        X509_NAME_free(name);
        return parsed;
}

static int setup(void **state)
{
        EVP_PKEY *other_ca_key;

        (void)state;
        P.ca_key = gmca_sm2_keygen(NULL);
        P.tsa_key = gmca_sm2_keygen(NULL);
        P.other_key = gmca_sm2_keygen(NULL);
        other_ca_key = gmca_sm2_keygen(NULL);
        if (P.ca_key == NULL || P.tsa_key == NULL || P.other_key == NULL || other_ca_key == NULL)
                return -1;
        P.ca = make_cert("Test Root", P.ca_key, NULL, NULL, NULL, 0, 0, 1);
        P.other_ca = make_cert("Test Root", other_ca_key, NULL, NULL, NULL, 0, 0, 1);
        P.tsa = make_cert("Test TSA", P.tsa_key, P.ca, P.ca_key, eku_ts, 1, 1, 2);
        P.noncrit = make_cert("Test TSA", P.tsa_key, P.ca, P.ca_key, eku_ts, 1, 0, 3);
        P.extra = make_cert("Test TSA", P.tsa_key, P.ca, P.ca_key, eku_ts_client, 2, 1, 4);
        EVP_PKEY_free(other_ca_key);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        X509_free(P.ca);
        X509_free(P.other_ca);
        X509_free(P.tsa);
        X509_free(P.noncrit);
        X509_free(P.extra);
        EVP_PKEY_free(P.ca_key);
        EVP_PKEY_free(P.tsa_key);
        EVP_PKEY_free(P.other_key);
        return 0;
}

static const uint8_t DATA[] = "the document to time-stamp";

/* A request for DATA (SM3), with a nonce and certReq as asked. */
static void make_req(struct gmca_tsa_req *r, int nonce, int cert_req, uint8_t **der, size_t *len)
{
        struct gmca_error e = {0};
        uint8_t md[GMCA_SM3_LEN];

        assert_int_equal(gmca_sm3(DATA, sizeof(DATA), md), 0);
        expect(gmca_tsa_req_init(r, NID_sm3, md, sizeof(md), !nonce, cert_req, &e), &e, 0, NULL,
               "req init");
        expect(gmca_tsa_req_build(r, der, len, &e), &e, 0, NULL, "req build");
}

static void reply(X509 *cert, EVP_PKEY *key, const struct gmca_tsa_opts *o, const uint8_t *req,
                  size_t reqlen, uint8_t **resp, size_t *resplen, int want_status)
{
        struct gmca_error e = {0};
        int status = -1;

        expect(gmca_tsa_reply(cert, key, o, req, reqlen, resp, resplen, &status, &e), &e, 0, NULL,
               "reply");
        assert_int_equal(status, want_status);
}

static void test_profile(void **state)
{
        static const char nocrit_eku[] =
            "{\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
            "\"extended_key_usage_critical\": true, \"validity_days\": 1, "
            "\"max_validity_days\": 1, \"subject\": {\"C\": \"required\"}}";
        static const char notbool[] =
            "{\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
            "\"extended_key_usage\": [\"timeStamping\"], \"extended_key_usage_critical\": 1, "
            "\"validity_days\": 1, \"max_validity_days\": 1, \"subject\": {\"C\": \"required\"}}";
        struct gmca_error e = {0};
        struct gmca_profile *p;
        const char *src = getenv("GMCA_SRC");
        char path[1024];
        int idx;

        (void)state;
        assert_non_null(src);
        snprintf(path, sizeof(path), "%s/conf/profiles/tsa.json", src);
        if ((p = gmca_profile_load(path, &e)) == NULL)
                fail_msg("tsa.json: %s", e.msg);
        assert_true(p->eku_critical);
        assert_int_equal(p->neku, 1);
        assert_int_equal(p->eku[0], NID_time_stamp);
        gmca_profile_free(p);
        assert_null(gmca_profile_parse(nocrit_eku, strlen(nocrit_eku), "x", &e));
        assert_non_null(strstr(e.msg, "extended_key_usage_critical: needs extended_key_usage"));
        gmca_error_clear(&e);
        assert_null(gmca_profile_parse(notbool, strlen(notbool), "x", &e));
        assert_non_null(strstr(e.msg, "must be true or false"));
        /* The builder marks the extension critical only when asked. */
        idx = X509_get_ext_by_NID(P.tsa, NID_ext_key_usage, -1);
        assert_true(idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(P.tsa, idx)));
        idx = X509_get_ext_by_NID(P.noncrit, NID_ext_key_usage, -1);
        assert_true(idx >= 0 && !X509_EXTENSION_get_critical(X509_get_ext(P.noncrit, idx)));
}

static void test_request(void **state)
{
        struct gmca_tsa_req r, back;
        struct gmca_error e = {0};
        uint8_t *der = NULL, *bad;
        size_t len = 0;
        int fail = -1;

        (void)state;
        make_req(&r, 1, 1, &der, &len);
        gmca_strlcpy(r.policy, "1.2.3.4", sizeof(r.policy));
        OPENSSL_free(der);
        expect(gmca_tsa_req_build(&r, &der, &len, &e), &e, 0, NULL, "build with policy");
        expect(gmca_tsa_req_parse(der, len, &back, &fail, &e), &e, 0, NULL, "parse");
        assert_int_equal(back.hash_nid, NID_sm3);
        assert_memory_equal(back.digest, r.digest, 32);
        assert_int_equal(back.nonce_len, r.nonce_len);
        assert_memory_equal(back.nonce, r.nonce, r.nonce_len);
        assert_string_equal(back.policy, "1.2.3.4");
        assert_int_equal(back.cert_req, 1);
        /* Trailing byte; truncation; over the cap. */
        assert_non_null(bad = malloc(len + 1));
        memcpy(bad, der, len);
        bad[len] = 0;
        expect(gmca_tsa_req_parse(bad, len + 1, &back, &fail, &e), &e, GMCA_ERR_INVALID, "trailing",
               "trailing byte");
        assert_int_equal(fail, GMCA_TSA_FAIL_BAD_DATA_FORMAT);
        gmca_error_clear(&e);
        expect(gmca_tsa_req_parse(der, len - 1, &back, &fail, &e), &e, GMCA_ERR_INVALID, NULL,
               "truncated");
        gmca_error_clear(&e);
        expect(gmca_tsa_req_parse(der, GMCA_TSA_REQ_MAX + 1, &back, &fail, &e), &e, GMCA_ERR_LIMIT,
               NULL, "over the cap");
        gmca_error_clear(&e);
        free(bad);
        OPENSSL_free(der);
        /* certReq FALSE written out (DEFAULT FALSE must be absent in DER). */
        make_req(&r, 0, 0, &der, &len);
        assert_true(len < 125 && der[1] == len - 2);
        assert_non_null(bad = malloc(len + 3));
        memcpy(bad, der, len);
        memcpy(bad + len, "\x01\x01\x00", 3);
        bad[1] += 3;
        expect(gmca_tsa_req_parse(bad, len + 3, &back, &fail, &e), &e, GMCA_ERR_INVALID, "not DER",
               "explicit certReq FALSE");
        free(bad);
        OPENSSL_free(der);
}

/* A TimeStampReq made with libcrypto's TS API, to reach what ours never writes. */
static void odd_req(int hash_nid, int digest_len, int version, int with_ext, const char *policy,
                    uint8_t **der, size_t *len)
{
        TS_REQ *q = TS_REQ_new();
        TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
        X509_ALGOR *alg = X509_ALGOR_new();
        uint8_t digest[64] = {1};
        unsigned char *out = NULL;
        int n;

        assert_true(q != NULL && mi != NULL && alg != NULL);
        assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(hash_nid), V_ASN1_NULL, NULL), 1);
        assert_int_equal(TS_MSG_IMPRINT_set_algo(mi, alg), 1);
        assert_int_equal(TS_MSG_IMPRINT_set_msg(mi, digest, digest_len), 1);
        assert_int_equal(TS_REQ_set_version(q, version), 1);
        assert_int_equal(TS_REQ_set_msg_imprint(q, mi), 1);
        if (policy != NULL) {
                ASN1_OBJECT *o = OBJ_txt2obj(policy, 1);

                assert_int_equal(TS_REQ_set_policy_id(q, o), 1);
                ASN1_OBJECT_free(o);
        }
        if (with_ext) {
                X509_EXTENSION *x =
                    X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "CA:FALSE");

                assert_non_null(x);
                assert_int_equal(TS_REQ_add_ext(q, x, -1), 1);
                X509_EXTENSION_free(x);
        }
        assert_true((n = i2d_TS_REQ(q, &out)) > 0);
        *der = out;
        *len = (size_t)n;
        X509_ALGOR_free(alg);
        TS_MSG_IMPRINT_free(mi);
        TS_REQ_free(q);
}

static void test_rejections(void **state)
{
        static const struct {
                const char *what;
                int hash, dlen, version, ext;
                const char *policy;
                int fail;
                const char *msg;
        } cases[] = {
            {"SHA-1 imprint", NID_sha1, 20, 1, 0, NULL, GMCA_TSA_FAIL_BAD_ALG, "badAlg"},
            {"MD5 imprint", NID_md5, 16, 1, 0, NULL, GMCA_TSA_FAIL_BAD_ALG, "badAlg"},
            {"short SM3 imprint", NID_sm3, 20, 1, 0, NULL, GMCA_TSA_FAIL_BAD_DATA_FORMAT,
             "badDataFormat"},
            {"extensions", NID_sm3, 32, 1, 1, NULL, GMCA_TSA_FAIL_UNACCEPTED_EXTENSION,
             "unacceptedExtension"},
            {"version 2", NID_sha256, 32, 2, 0, NULL, GMCA_TSA_FAIL_BAD_REQUEST, "badRequest"},
            {"other policy", NID_sm3, 32, 1, 0, "1.2.3.4.5", GMCA_TSA_FAIL_UNACCEPTED_POLICY,
             "unacceptedPolicy"},
        };
        struct gmca_tsa_expect x = {.tsa_cert = P.tsa};
        struct gmca_error e = {0};
        struct gmca_tsa_req r;
        uint8_t *req = NULL, *resp = NULL;
        size_t reqlen = 0, resplen = 0;
        int fail;

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                odd_req(cases[i].hash, cases[i].dlen, cases[i].version, cases[i].ext,
                        cases[i].policy, &req, &reqlen);
                fail = -1;
                if (cases[i].policy == NULL) {
                        assert_int_not_equal(gmca_tsa_req_parse(req, reqlen, &r, &fail, &e), 0);
                        if (fail != cases[i].fail)
                                fail_msg("%s: failInfo %d, want %d", cases[i].what, fail,
                                         cases[i].fail);
                        gmca_error_clear(&e);
                }
                reply(P.tsa, P.tsa_key, NULL, req, reqlen, &resp, &resplen, 2);
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_POLICY,
                       cases[i].msg, cases[i].what);
                gmca_error_clear(&e);
                OPENSSL_free(req);
                OPENSSL_free(resp);
        }
        /* Garbage gets badDataFormat. */
        reply(P.tsa, P.tsa_key, NULL, (const uint8_t *)"\x30\x03\x02\x01", 4, &resp, &resplen, 2);
        expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_POLICY, "badDataFormat",
               "garbage");
        OPENSSL_free(resp);
}

static void test_round_trip(void **state)
{
        struct gmca_tsa_opts o = {.policy = "1.2.156.10260.4.1.100.7",
                                  .accuracy_ms = 500,
                                  .include_tsa = 1,
                                  .signing_time = 1};
        struct gmca_tsa_req r;
        struct gmca_tsa_info info;
        struct gmca_error e = {0};
        uint8_t *req = NULL, *resp = NULL;
        size_t reqlen = 0, resplen = 0;
        uint8_t md[32];

        time_t now = time(NULL);
        struct tm tm;
        char want[40];

        (void)state;
        o.now_us = (int64_t)now * 1000000 + 120000; /* .120: the trailing zero is dropped */
        assert_non_null(gmtime_r(&now, &tm));
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.12Z", &tm);
        make_req(&r, 1, 1, &req, &reqlen);
        reply(P.tsa, P.tsa_key, &o, req, reqlen, &resp, &resplen, 0);
        {
                struct gmca_tsa_expect x = {.data = DATA,
                                            .data_len = sizeof(DATA),
                                            .has_data = 1,
                                            .req = &r,
                                            .tsa_cert = P.tsa};

                expect(gmca_tsa_verify(resp, resplen, &x, &info, &e), &e, 0, NULL, "verify");
        }
        assert_string_equal(info.gen_time_text, want);
        assert_int_equal(info.gen_time, now);
        assert_string_equal(info.policy, o.policy);
        assert_string_equal(info.hash, "sm3");
        assert_int_equal(info.accuracy_ms, 500);
        assert_int_equal(strlen(info.serial), 32);
        assert_non_null(strstr(info.tsa_subject, "CN=Test TSA"));
        assert_int_equal(strlen(info.nonce), 2 * r.nonce_len);
        /* Trust through the CA only (the certificate comes from the token), and by digest. */
        assert_int_equal(gmca_sm3(DATA, sizeof(DATA), md), 0);
        {
                struct gmca_tsa_expect x = {.digest = md, .digest_len = 32, .ca_cert = P.ca};

                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, 0, NULL, "verify by CA");
                x.ca_cert = P.other_ca;
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_VERIFY, NULL,
                       "another CA of the same name");
                gmca_error_clear(&e);
                x.ca_cert = NULL;
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_INVALID,
                       "trust needs", "no trust");
                gmca_error_clear(&e);
        }
        /* Wrong data, wrong digest, wrong nonce, another TSA certificate. */
        {
                struct gmca_tsa_req other = r;
                struct gmca_tsa_expect x = {
                    .data = DATA, .data_len = sizeof(DATA) - 1, .has_data = 1, .tsa_cert = P.tsa};

                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_VERIFY,
                       "not the sm3 of the data", "wrong data");
                gmca_error_clear(&e);
                x.has_data = 0;
                md[0] ^= 1;
                x.digest = md;
                x.digest_len = 32;
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_VERIFY,
                       "given digest", "wrong digest");
                gmca_error_clear(&e);
                x.digest = NULL;
                other.nonce[other.nonce_len - 1] ^= 1;
                x.req = &other;
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_VERIFY, "nonce",
                       "wrong nonce");
                gmca_error_clear(&e);
                x.req = NULL;
                x.tsa_cert = P.noncrit;
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_VERIFY,
                       "another certificate", "other TSA certificate");
                gmca_error_clear(&e);
        }
        OPENSSL_free(resp);
        OPENSSL_free(req);
}

/* Every byte of the token altered: refused (trust through the CA, so the
 * certificate carried in the token is covered too). */
static void test_altered_token(void **state)
{
        struct gmca_tsa_req r;
        struct gmca_error e = {0};
        struct gmca_tsa_expect x = {
            .data = DATA, .data_len = sizeof(DATA), .has_data = 1, .ca_cert = P.ca};
        uint8_t *req = NULL, *resp = NULL;
        size_t reqlen = 0, resplen = 0;

        (void)state;
        make_req(&r, 1, 1, &req, &reqlen);
        x.req = &r;
        reply(P.tsa, P.tsa_key, NULL, req, reqlen, &resp, &resplen, 0);
        expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, 0, NULL, "unaltered");
        assert_true(resplen > 255 && resp[0] == 0x30 && resp[1] == 0x82);
        assert_memory_equal(resp + 4, "\x30\x03\x02\x01\x00", 5);
        for (size_t i = TOKEN_OFFSET; i < resplen; i++) {
                for (int k = 0; k < 2; k++) {
                        uint8_t mask = k == 0 ? 0x01 : 0x80;

                        resp[i] ^= mask;
                        gmca_error_clear(&e);
                        if (gmca_tsa_verify(resp, resplen, &x, NULL, &e) == 0)
                                fail_msg("byte %zu ^ 0x%02x accepted", i, mask);
                        resp[i] ^= mask;
                }
        }
        OPENSSL_free(resp);
        OPENSSL_free(req);
}

static void test_tsa_cert(void **state)
{
        struct gmca_error e = {0};
        uint8_t *req = NULL, *resp = NULL;
        size_t reqlen = 0, resplen = 0;
        struct gmca_tsa_req r;
        int status;

        (void)state;
        expect(gmca_tsa_cert_check(P.tsa, &e), &e, 0, NULL, "tsa");
        expect(gmca_tsa_cert_check(P.noncrit, &e), &e, GMCA_ERR_POLICY, "not critical",
               "non-critical EKU");
        gmca_error_clear(&e);
        expect(gmca_tsa_cert_check(P.extra, &e), &e, GMCA_ERR_POLICY, "timeStamping only",
               "extra EKU");
        gmca_error_clear(&e);
        expect(gmca_tsa_cert_check(P.ca, &e), &e, GMCA_ERR_POLICY, "no extKeyUsage", "CA");
        gmca_error_clear(&e);
        make_req(&r, 1, 0, &req, &reqlen);
        expect(
            gmca_tsa_reply(P.noncrit, P.tsa_key, NULL, req, reqlen, &resp, &resplen, &status, &e),
            &e, GMCA_ERR_POLICY, "not critical", "reply with a non-critical EKU");
        gmca_error_clear(&e);
        expect(gmca_tsa_reply(P.tsa, P.other_key, NULL, req, reqlen, &resp, &resplen, &status, &e),
               &e, GMCA_ERR_INVALID, "not the TSA certificate's key", "reply with another key");
        gmca_error_clear(&e);
        {
                struct gmca_tsa_opts o = {.policy = "not an oid"};

                expect(
                    gmca_tsa_reply(P.tsa, P.tsa_key, &o, req, reqlen, &resp, &resplen, &status, &e),
                    &e, GMCA_ERR_INVALID, "not an OID", "bad policy");
                gmca_error_clear(&e);
        }
        /* No certReq: the token lacks the certificate, so the CA alone cannot verify it. */
        reply(P.tsa, P.tsa_key, NULL, req, reqlen, &resp, &resplen, 0);
        {
                struct gmca_tsa_expect x = {.ca_cert = P.ca};

                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, GMCA_ERR_INVALID,
                       "not in the token", "no certificate in the token");
                gmca_error_clear(&e);
                x.tsa_cert = P.tsa;
                expect(gmca_tsa_verify(resp, resplen, &x, NULL, &e), &e, 0, NULL,
                       "certificate and CA given");
        }
        OPENSSL_free(resp);
        OPENSSL_free(req);
}

/* The public API (include/gmca/timestamp.h) over the same library. */
static void test_public_api(void **state)
{
        struct gmca_timestamp_request_options ro = {.flags = GMCA_TIMESTAMP_CERT_REQ};
        struct gmca_timestamp_verify_options vo = {0};
        struct gmca_timestamp_info info;
        struct gmca_status st;
        struct gmca_error e = {0};
        uint8_t *req = NULL, *resp = NULL, *ca = NULL, nonce[GMCA_TSA_NONCE_MAX];
        size_t reqlen = 0, resplen = 0;
        struct gmca_tsa_req r;
        int calen, fail;

        (void)state;
        assert_int_equal(gmca_timestamp_request(DATA, sizeof(DATA), &ro, &req, &reqlen, &st), 0);
        expect(gmca_tsa_req_parse(req, reqlen, &r, &fail, &e), &e, 0, NULL, "public request");
        assert_true(r.cert_req && r.nonce_len == 8 && r.hash_nid == NID_sm3);
        reply(P.tsa, P.tsa_key, NULL, req, reqlen, &resp, &resplen, 0);
        assert_true((calen = i2d_X509(P.ca, &ca)) > 0);
        vo.ca_certificate = ca;
        vo.ca_certificate_len = (size_t)calen;
        vo.request = req;
        vo.request_len = reqlen;
        if (gmca_timestamp_verify(resp, resplen, DATA, sizeof(DATA), &vo, &info, &st) != 0)
                fail_msg("gmca_timestamp_verify: %s", st.message);
        assert_string_equal(info.hash, "sm3");
        assert_non_null(strstr(info.tsa, "Test TSA"));
        assert_int_equal(gmca_timestamp_verify(resp, resplen, DATA, 3, &vo, NULL, &st),
                         GMCA_RC_VERIFY);
        /* Only the nonce: right, then one bit off. */
        vo.request = NULL;
        memcpy(nonce, r.nonce, r.nonce_len);
        vo.nonce = nonce;
        vo.nonce_len = r.nonce_len;
        assert_int_equal(gmca_timestamp_verify(resp, resplen, DATA, sizeof(DATA), &vo, NULL, &st),
                         0);
        nonce[0] ^= 1;
        assert_int_equal(gmca_timestamp_verify(resp, resplen, DATA, sizeof(DATA), &vo, NULL, &st),
                         GMCA_RC_VERIFY);
        assert_non_null(strstr(st.message, "nonce"));
        /* A non-TSA certificate as the trusted one: refused as VERIFY, not POLICY. */
        vo.nonce = NULL;
        vo.ca_certificate = NULL;
        vo.tsa_certificate = ca;
        vo.tsa_certificate_len = (size_t)calen;
        assert_int_equal(gmca_timestamp_verify(resp, resplen, DATA, sizeof(DATA), &vo, NULL, &st),
                         GMCA_RC_VERIFY);
        OPENSSL_free(ca);
        OPENSSL_free(resp);
        gmca_buffer_free(req, reqlen);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_profile),       cmocka_unit_test(test_request),
            cmocka_unit_test(test_rejections),    cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_altered_token), cmocka_unit_test(test_tsa_cert),
            cmocka_unit_test(test_public_api),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
