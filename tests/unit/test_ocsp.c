/*
 * Tests of the ocsp module: a store with two CAs made here with plain
 * OpenSSL, a delegated responder for each, certificates good, revoked and
 * of the other CA; requests built with libcrypto (SHA-1 and SM3 CertIDs,
 * with and without a nonce) are answered and every answer is read back:
 * status per CertID, revocation time and reason, nonce echo, responderID,
 * the included certificate, and the SM2 signature over ResponseData with
 * the responder key and ID (and not with another ID). Malformed, oversized
 * and over-counted requests and foreign issuers get the RFC 6960 §2.3
 * statuses with no responseBytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "ocsp.h"
#include "store.h"
#include "util.h"
#include "validate.h"

#define T0 1735689600 /* 2025-01-01T00:00:00Z */
#define REVOKED_AT (T0 - 3600)

static const char GOOD_A[] = "3F01020304050607";
static const char REVOKED_A[] = "3F11121314151617";
static const char HOLD_A[] = "3F21222324252627";
static const char GOOD_B[] = "4E01020304050607";
static const char NEVER[] = "5D01020304050607";

struct ca {
        EVP_PKEY *key, *rkey;
        X509 *cert, *rcert;
        struct gmca_pkey_signer signer;
        int64_t id;
};

struct fixture {
        char dir[64], path[96];
        struct gmca_store *s;
        struct ca a, b, c; /* c: a CA not in the store's responders */
        struct gmca_ocsp_responder r[2];
};

static void add_ext(X509 *x, X509 *iss, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        X509V3_set_ctx(&ctx, iss, x, NULL, NULL, 0);
        ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
}

static X509_NAME *name(const char *cn)
{
        X509_NAME *n = X509_NAME_new();

        assert_non_null(n);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8,
                                                    (const unsigned char *)"CN", -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        return n;
}

/* A certificate for key named cn, signed by iss (NULL: self) with isskey and
 * the ID. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *iss, EVP_PKEY *isskey, int ca,
                       long serial)
{
        X509 *x = X509_new();
        X509_NAME *n = name(cn);
        EVP_MD_CTX *mctx;
        struct gmca_error e;

        assert_non_null(x);
        assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
        assert_int_equal(X509_set_subject_name(x, n), 1);
        assert_int_equal(X509_set_issuer_name(x, iss != NULL ? X509_get_subject_name(iss) : n), 1);
        X509_NAME_free(n);
        assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T0 - 86400));
        assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T0 + 30 * 86400L));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        if (ca) {
                add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
                add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
        } else {
                add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
                add_ext(x, iss, NID_ext_key_usage, "OCSPSigning");
                add_ext(x, iss, NID_id_pkix_OCSP_noCheck, "ignored");
        }
        gmca_error_clear(&e);
        mctx = gmca_sm2_sign_ctx(isskey != NULL ? isskey : key, NULL, &e);
        assert_non_null(mctx);
        assert_true(X509_sign_ctx(x, mctx) > 0);
        EVP_MD_CTX_free(mctx);
        return x;
}

static void make_ca(struct ca *c, const char *cn, long serial)
{
        struct gmca_error e = {0};
        char rcn[64];

        assert_non_null(c->key = gmca_sm2_keygen(&e));
        assert_non_null(c->rkey = gmca_sm2_keygen(&e));
        c->cert = make_cert(c->key, cn, NULL, NULL, 1, serial);
        snprintf(rcn, sizeof(rcn), "%s OCSP", cn);
        c->rcert = make_cert(c->rkey, rcn, c->cert, c->key, 0, serial + 1);
        assert_int_equal(gmca_pkey_signer_init(&c->signer, c->rkey, NULL, &e), 0);
}

static void store_ca(struct gmca_store *s, struct ca *c, const char *nm)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec r;
        unsigned char *der = NULL;
        int l = i2d_X509(c->cert, &der);

        assert_true(l > 0);
        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.name, nm, sizeof(r.name));
        snprintf(r.subject, sizeof(r.subject), "CN=%s", nm);
        snprintf(r.key_file, sizeof(r.key_file), "keys/%s.key", nm);
        gmca_strlcpy(r.sm2_id, GMCA_SM2_DEFAULT_ID, sizeof(r.sm2_id));
        r.created = T0;
        r.cert_der = der;
        r.cert_len = (size_t)l;
        expect(gmca_store_ca_insert(s, &r, &e), &e, 0, NULL, "ca insert");
        c->id = r.id;
        OPENSSL_free(der);
}

static void store_cert(struct gmca_store *s, const char *serial, int64_t ca_id)
{
        static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
        struct gmca_error e = {0};
        struct gmca_cert_rec r;

        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.serial, serial, sizeof(r.serial));
        r.ca_id = ca_id;
        gmca_strlcpy(r.subject, "CN=leaf", sizeof(r.subject));
        gmca_strlcpy(r.profile, "personal-sign", sizeof(r.profile));
        r.not_before = T0 - 1000;
        r.not_after = T0 + 86400;
        r.issued_at = T0 - 1000;
        r.status = GMCA_CERT_VALID;
        r.reason = -1;
        gmca_strlcpy(r.fingerprint, "ab12", sizeof(r.fingerprint));
        r.der = (uint8_t *)der;
        r.der_len = sizeof(der);
        expect(gmca_store_cert_insert(s, &r, &e), &e, 0, NULL, serial);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};

        assert_non_null(f);
        gmca_strlcpy(f->dir, "/tmp/gmca-test-ocsp.XXXXXX", sizeof(f->dir));
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/gmca.db", f->dir);
        assert_non_null(f->s = gmca_store_open(f->path, &e));
        make_ca(&f->a, "CA A", 0x100);
        make_ca(&f->b, "CA B", 0x200);
        make_ca(&f->c, "CA C", 0x300);
        store_ca(f->s, &f->a, "a");
        store_ca(f->s, &f->b, "b");
        store_cert(f->s, GOOD_A, f->a.id);
        store_cert(f->s, REVOKED_A, f->a.id);
        store_cert(f->s, HOLD_A, f->a.id);
        store_cert(f->s, GOOD_B, f->b.id);
        expect(gmca_store_cert_revoke(f->s, REVOKED_A, REVOKED_AT, 1, 0, &e), &e, 0, NULL,
               "revoke");
        expect(gmca_store_cert_revoke(f->s, HOLD_A, REVOKED_AT + 60, 6, 0, &e), &e, 0, NULL,
               "hold");
        expect(gmca_ocsp_responder_init(&f->r[0], f->s, f->a.rcert, &f->a.signer.base, T0, &e), &e,
               0, NULL, "responder a");
        expect(gmca_ocsp_responder_init(&f->r[1], f->s, f->b.rcert, &f->b.signer.base, T0, &e), &e,
               0, NULL, "responder b");
        assert_int_equal(f->r[0].ca_id, f->a.id);
        assert_int_equal(f->r[1].ca_id, f->b.id);
        *state = f;
        return 0;
}

static void free_ca(struct ca *c)
{
        EVP_PKEY_free(c->key);
        EVP_PKEY_free(c->rkey);
        X509_free(c->cert);
        X509_free(c->rcert);
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[128];

        gmca_ocsp_responder_clear(&f->r[0]);
        gmca_ocsp_responder_clear(&f->r[1]);
        gmca_store_close(f->s);
        free_ca(&f->a);
        free_ca(&f->b);
        free_ca(&f->c);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static OCSP_CERTID *cid(const EVP_MD *md, X509 *ca, const char *serial)
{
        BIGNUM *bn = NULL;
        ASN1_INTEGER *sn;
        OCSP_CERTID *id;

        assert_true(BN_hex2bn(&bn, serial) > 0);
        assert_non_null(sn = BN_to_ASN1_INTEGER(bn, NULL));
        id = OCSP_cert_id_new(md, X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), sn);
        assert_non_null(id);
        ASN1_INTEGER_free(sn);
        BN_free(bn);
        return id;
}

/* DER of req; frees nothing. */
static uint8_t *req_der(OCSP_REQUEST *req, size_t *len)
{
        unsigned char *der = NULL;
        int l = i2d_OCSP_REQUEST(req, &der);

        assert_true(l > 0);
        *len = (size_t)l;
        return der;
}

static void add(OCSP_REQUEST *req, OCSP_CERTID *id)
{
        assert_non_null(OCSP_request_add0_id(req, id));
}

/* Answer req; returns the response (caller frees), its status checked against
 * want. */
static OCSP_RESPONSE *answer(struct fixture *f, OCSP_REQUEST *req, int want,
                             struct gmca_ocsp_answer *a)
{
        struct gmca_ocsp_opts o = {.now = T0, .validity = 0};
        struct gmca_error e = {0};
        uint8_t *der, *out = NULL;
        const unsigned char *p;
        size_t len, outlen = 0;
        OCSP_RESPONSE *resp;

        der = req_der(req, &len);
        assert_int_equal(gmca_ocsp_respond(f->s, f->r, 2, &o, der, len, &out, &outlen, a, &e), 0);
        OPENSSL_free(der);
        if (a->status != want)
                fail_msg("status %d, want %d (%s)", a->status, want, e.msg);
        /* The relying party's strict parser (validate.h) takes it. */
        resp = gmca_ocsp_response_parse(out, outlen, &e);
        if (resp == NULL)
                fail_msg("gmca_ocsp_response_parse: %s", e.msg);
        OCSP_RESPONSE_free(resp);
        p = out;
        assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)outlen));
        assert_ptr_equal(p, out + outlen);
        assert_int_equal(OCSP_response_status(resp), want);
        OPENSSL_free(out);
        return resp;
}

/* The basic response of resp, its signature checked with rkey and the ID. */
static OCSP_BASICRESP *checked_basic(OCSP_RESPONSE *resp, const struct ca *c)
{
        OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
        const ASN1_OCTET_STRING *sig, *pid = NULL;
        const X509_NAME *pname = NULL;
        const X509_ALGOR *alg;
        const ASN1_OBJECT *obj = NULL;
        struct gmca_error e = {0};
        unsigned char *tbs = NULL;
        uint8_t kh[20];
        unsigned khl = 0;
        int tbslen;

        assert_non_null(bs);
        alg = OCSP_resp_get0_tbs_sigalg(bs);
        X509_ALGOR_get0(&obj, NULL, NULL, alg);
        assert_int_equal(OBJ_obj2nid(obj), NID_SM2_with_SM3);
        sig = OCSP_resp_get0_signature(bs);
        tbslen = i2d_OCSP_RESPDATA((OCSP_RESPDATA *)OCSP_resp_get0_respdata(bs), &tbs);
        assert_true(tbslen > 0);
        expect(gmca_sm2_verify(X509_get0_pubkey(c->rcert), GMCA_SM2_DEFAULT_ID, tbs, (size_t)tbslen,
                               ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), &e),
               &e, 0, NULL, "signature with the responder key and ID");
        /* Not with the empty ID, nor with the CA key. */
        assert_int_not_equal(gmca_sm2_verify(X509_get0_pubkey(c->rcert), "", tbs, (size_t)tbslen,
                                             ASN1_STRING_get0_data(sig),
                                             (size_t)ASN1_STRING_length(sig), &e),
                             0);
        assert_int_not_equal(gmca_sm2_verify(c->key, NULL, tbs, (size_t)tbslen,
                                             ASN1_STRING_get0_data(sig),
                                             (size_t)ASN1_STRING_length(sig), &e),
                             0);
        gmca_error_clear(&e);
        OPENSSL_free(tbs);
        /* responderID byKey, and the responder certificate included. */
        assert_int_equal(OCSP_resp_get0_id(bs, &pid, &pname), 1);
        assert_non_null(pid);
        assert_null(pname);
        assert_int_equal(X509_pubkey_digest(c->rcert, EVP_sha1(), kh, &khl), 1);
        assert_int_equal(ASN1_STRING_length(pid), 20);
        assert_memory_equal(ASN1_STRING_get0_data(pid), kh, 20);
        assert_int_equal(sk_X509_num(OCSP_resp_get0_certs(bs)), 1);
        assert_int_equal(X509_cmp(sk_X509_value(OCSP_resp_get0_certs(bs), 0), c->rcert), 0);
        return bs;
}

static void status_is(OCSP_BASICRESP *bs, OCSP_CERTID *id, int want, int want_reason,
                      time_t want_rev)
{
        ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
        int st = -9, reason = -9;
        time_t t0 = T0, t1 = T0 + GMCA_OCSP_VALIDITY_DEFAULT;

        assert_int_equal(OCSP_resp_find_status(bs, id, &st, &reason, &rev, &thisupd, &nextupd), 1);
        assert_int_equal(st, want);
        assert_non_null(thisupd);
        assert_non_null(nextupd);
        assert_int_equal(ASN1_TIME_cmp_time_t(thisupd, t0), 0);
        assert_int_equal(ASN1_TIME_cmp_time_t(nextupd, t1), 0);
        if (want == V_OCSP_CERTSTATUS_REVOKED) {
                assert_non_null(rev);
                assert_int_equal(ASN1_TIME_cmp_time_t(rev, want_rev), 0);
                assert_int_equal(reason, want_reason);
        } else {
                assert_null(rev);
        }
}

/* Good, revoked (keyCompromise, certificateHold), unknown serial, B's serial
 * under A. */
static void test_statuses(void **state)
{
        static const struct {
                const char *serial;
                int status, reason;
                time_t rev;
        } cases[] = {
            {GOOD_A, V_OCSP_CERTSTATUS_GOOD, -1, 0},
            {REVOKED_A, V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_KEYCOMPROMISE, REVOKED_AT},
            {HOLD_A, V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_CERTIFICATEHOLD,
             REVOKED_AT + 60},
            {NEVER, V_OCSP_CERTSTATUS_UNKNOWN, -1, 0},
            {GOOD_B, V_OCSP_CERTSTATUS_UNKNOWN, -1, 0},
        };
        const EVP_MD *mds[] = {EVP_sha1(), EVP_sm3()};
        struct fixture *f = *state;

        for (size_t m = 0; m < 2; m++) {
                OCSP_REQUEST *req = OCSP_REQUEST_new();
                struct gmca_ocsp_answer a;
                OCSP_RESPONSE *resp;
                OCSP_BASICRESP *bs;

                assert_non_null(req);
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                        add(req, cid(mds[m], f->a.cert, cases[i].serial));
                resp = answer(f, req, OCSP_RESPONSE_STATUS_SUCCESSFUL, &a);
                assert_int_equal(a.good, 1);
                assert_int_equal(a.revoked, 2);
                assert_int_equal(a.unknown, 2);
                assert_int_equal(a.has_nonce, 0);
                bs = checked_basic(resp, &f->a);
                assert_int_equal(OCSP_resp_count(bs), 5);
                assert_int_equal(OCSP_check_nonce(req, bs), 2); /* neither has one */
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        OCSP_CERTID *id = cid(mds[m], f->a.cert, cases[i].serial);

                        status_is(bs, id, cases[i].status, cases[i].reason, cases[i].rev);
                        OCSP_CERTID_free(id);
                }
                OCSP_BASICRESP_free(bs);
                OCSP_RESPONSE_free(resp);
                OCSP_REQUEST_free(req);
        }
}

/* CA B's certificates are answered by B's responder. */
static void test_second_ca(void **state)
{
        struct fixture *f = *state;
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        struct gmca_ocsp_answer a;
        OCSP_RESPONSE *resp;
        OCSP_BASICRESP *bs;
        OCSP_CERTID *id;

        add(req, cid(EVP_sm3(), f->b.cert, GOOD_B));
        resp = answer(f, req, OCSP_RESPONSE_STATUS_SUCCESSFUL, &a);
        bs = checked_basic(resp, &f->b);
        id = cid(EVP_sm3(), f->b.cert, GOOD_B);
        status_is(bs, id, V_OCSP_CERTSTATUS_GOOD, -1, 0);
        OCSP_CERTID_free(id);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);
}

static void test_nonce(void **state)
{
        static const size_t lens[] = {1, 16, 32};
        struct fixture *f = *state;

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                OCSP_REQUEST *req = OCSP_REQUEST_new();
                struct gmca_ocsp_answer a;
                OCSP_RESPONSE *resp;
                OCSP_BASICRESP *bs;

                add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
                assert_int_equal(OCSP_request_add1_nonce(req, NULL, (int)lens[i]), 1);
                resp = answer(f, req, OCSP_RESPONSE_STATUS_SUCCESSFUL, &a);
                assert_int_equal(a.has_nonce, 1);
                bs = checked_basic(resp, &f->a);
                assert_int_equal(OCSP_check_nonce(req, bs), 1);
                OCSP_BASICRESP_free(bs);
                OCSP_RESPONSE_free(resp);
                OCSP_REQUEST_free(req);
        }
}

/* Issuers not served: a CA outside the responders, or two CAs in one request.
 */
static void test_unauthorized(void **state)
{
        struct fixture *f = *state;
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        struct gmca_ocsp_answer a;
        OCSP_RESPONSE *resp;

        add(req, cid(EVP_sha1(), f->c.cert, GOOD_A));
        resp = answer(f, req, OCSP_RESPONSE_STATUS_UNAUTHORIZED, &a);
        assert_null(OCSP_response_get1_basic(resp));
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);

        req = OCSP_REQUEST_new();
        add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
        add(req, cid(EVP_sha1(), f->b.cert, GOOD_B));
        resp = answer(f, req, OCSP_RESPONSE_STATUS_UNAUTHORIZED, &a);
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);
        gmca_ossl_clear();
}

/* A CertID hashed with SHA-256 cannot be matched: unknown, never good. */
static void test_other_hash(void **state)
{
        struct fixture *f = *state;
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        struct gmca_ocsp_answer a;
        OCSP_RESPONSE *resp;
        OCSP_BASICRESP *bs;
        OCSP_CERTID *id;

        add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
        add(req, cid(EVP_sha256(), f->a.cert, GOOD_A));
        resp = answer(f, req, OCSP_RESPONSE_STATUS_SUCCESSFUL, &a);
        assert_int_equal(a.good, 1);
        assert_int_equal(a.unknown, 1);
        bs = checked_basic(resp, &f->a);
        id = cid(EVP_sha256(), f->a.cert, GOOD_A);
        status_is(bs, id, V_OCSP_CERTSTATUS_UNKNOWN, -1, 0);
        OCSP_CERTID_free(id);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);

        /* Only unmatchable CertIDs: no responder can be chosen. */
        req = OCSP_REQUEST_new();
        add(req, cid(EVP_sha256(), f->a.cert, GOOD_A));
        resp = answer(f, req, OCSP_RESPONSE_STATUS_UNAUTHORIZED, &a);
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);
}

static void respond_raw(struct fixture *f, const uint8_t *der, size_t len, int want,
                        const char *what)
{
        struct gmca_ocsp_opts o = {.now = T0};
        struct gmca_error e = {0};
        struct gmca_ocsp_answer a;
        uint8_t *out = NULL;
        size_t outlen = 0;
        const unsigned char *p;
        OCSP_RESPONSE *resp;

        assert_int_equal(gmca_ocsp_respond(f->s, f->r, 2, &o, der, len, &out, &outlen, &a, &e), 0);
        if (a.status != want)
                fail_msg("%s: status %d, want %d", what, a.status, want);
        p = out;
        assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)outlen));
        assert_int_equal(OCSP_response_status(resp), want);
        if (want != OCSP_RESPONSE_STATUS_SUCCESSFUL)
                assert_null(OCSP_response_get1_basic(resp)); /* no responseBytes */
        OCSP_RESPONSE_free(resp);
        OPENSSL_free(out);
        gmca_ossl_clear();
}

static void test_malformed(void **state)
{
        struct fixture *f = *state;
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        uint8_t *der, *buf;
        size_t len;

        add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
        der = req_der(req, &len);
        respond_raw(f, der, len, OCSP_RESPONSE_STATUS_SUCCESSFUL, "the good request");
        assert_non_null(buf = malloc(len + 1));
        memcpy(buf, der, len);
        buf[len] = 0;
        respond_raw(f, buf, len + 1, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "trailing byte");
        respond_raw(f, buf, len - 1, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "truncated");
        respond_raw(f, buf, 0, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "empty");
        respond_raw(f, (const uint8_t *)"garbage", 7, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                    "garbage");
        /* BER: a long-form length where the short form fits. */
        {
                uint8_t ber[600];

                assert_true(len + 1 < sizeof(ber) && der[1] < 0x80);
                ber[0] = 0x30;
                ber[1] = 0x81;
                ber[2] = der[1];
                memcpy(ber + 3, der + 2, len - 2);
                respond_raw(f, ber, len + 1, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "BER length");
        }
        free(buf);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);

        /* No CertID at all. */
        req = OCSP_REQUEST_new();
        der = req_der(req, &len);
        respond_raw(f, der, len, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "no CertID");
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);

        /* A nonce of 33 octets, and one of 0. */
        for (int n = 0; n < 2; n++) {
                req = OCSP_REQUEST_new();
                add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
                if (n == 0) {
                        assert_int_equal(OCSP_request_add1_nonce(req, NULL, 33), 1);
                } else {
                        /* extnValue: the DER of an empty OCTET STRING. */
                        static const uint8_t empty[] = {0x04, 0x00};
                        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
                        X509_EXTENSION *x;

                        assert_int_equal(ASN1_OCTET_STRING_set(os, empty, sizeof(empty)), 1);
                        x = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_Nonce, 0, os);
                        assert_non_null(x);
                        assert_int_equal(OCSP_REQUEST_add_ext(req, x, -1), 1);
                        X509_EXTENSION_free(x);
                        ASN1_OCTET_STRING_free(os);
                }
                der = req_der(req, &len);
                respond_raw(f, der, len, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "nonce size");
                OPENSSL_free(der);
                OCSP_REQUEST_free(req);
        }
}

static void test_limits(void **state)
{
        struct fixture *f = *state;
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        uint8_t *der, *big;
        size_t len;

        for (int i = 0; i < GMCA_OCSP_CERTIDS_MAX; i++)
                add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
        der = req_der(req, &len);
        respond_raw(f, der, len, OCSP_RESPONSE_STATUS_SUCCESSFUL, "256 CertIDs");
        OPENSSL_free(der);
        add(req, cid(EVP_sha1(), f->a.cert, GOOD_A));
        der = req_der(req, &len);
        respond_raw(f, der, len, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, "257 CertIDs");
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);

        assert_non_null(big = calloc(1, GMCA_OCSP_REQ_MAX + 1));
        big[0] = 0x30;
        respond_raw(f, big, GMCA_OCSP_REQ_MAX + 1, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST,
                    "over 64 KiB");
        free(big);
}

/* A responder certificate must be an OCSP signer issued by a CA of the store.
 */
static void test_responder_refusals(void **state)
{
        struct fixture *f = *state;
        struct gmca_ocsp_responder r;
        struct gmca_error e = {0};

        expect(gmca_ocsp_responder_init(&r, f->s, f->c.rcert, &f->c.signer.base, T0, &e), &e,
               GMCA_ERR_NOTFOUND, "not issued by a CA", "foreign responder");
        gmca_error_clear(&e);
        expect(gmca_ocsp_responder_init(&r, f->s, f->a.cert, &f->a.signer.base, T0, &e), &e,
               GMCA_ERR_POLICY, "OCSPSigning", "CA certificate as responder");
        gmca_error_clear(&e);
        expect(
            gmca_ocsp_responder_init(&r, f->s, f->a.rcert, &f->a.signer.base, T0 + 31 * 86400L, &e),
            &e, GMCA_ERR_POLICY, "not valid now", "expired responder");
        gmca_error_clear(&e);
}

/* Once the responder certificate has expired, internalError rather than a
 * signature under it. */
static void test_responder_expired(void **state)
{
        struct fixture *f = *state;
        struct gmca_ocsp_opts o = {.now = T0 + 31 * 86400L};
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        struct gmca_ocsp_answer a;
        struct gmca_error e = {0};
        uint8_t *der, *out = NULL;
        size_t len, outlen = 0;

        add(req, cid(EVP_sm3(), f->a.cert, GOOD_A));
        der = req_der(req, &len);
        assert_int_equal(gmca_ocsp_respond(f->s, f->r, 2, &o, der, len, &out, &outlen, &a, &e), 0);
        assert_int_equal(a.status, OCSP_RESPONSE_STATUS_INTERNALERROR);
        assert_non_null(strstr(e.msg, "not valid now"));
        assert_int_equal(outlen, 5); /* 30 03 0a 01 02: no responseBytes */
        OPENSSL_free(out);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
}

/* ---- the cache of pre-signed responses ---- */

static const char FRESH_A[] = "6A01020304050607"; /* revoked during a test */
static const char LATE_A[] = "6B01020304050607";  /* issued during a test */

/*
 * Ask for one CertID (the caller keeps id) at now through cache; returns
 * the status of the SingleResponse, its thisUpdate in *thisupd, a copy of
 * the DER in *der (caller frees) and the answer in *a.
 */
static int ask(struct fixture *f, struct gmca_ocsp_cache *cache, int64_t now, OCSP_CERTID *id,
               int nonce, struct gmca_ocsp_answer *a, uint8_t **der, size_t *derlen,
               time_t *thisupd)
{
        struct gmca_ocsp_opts o = {.now = now, .cache = cache};
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        struct gmca_error e = {0};
        ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
        const unsigned char *p;
        uint8_t *in, *out = NULL;
        size_t inlen, outlen = 0;
        OCSP_RESPONSE *resp;
        OCSP_BASICRESP *bs;
        struct tm tm;
        int st = -9, reason;

        assert_non_null(req);
        add(req, OCSP_CERTID_dup(id));
        if (nonce)
                assert_int_equal(OCSP_request_add1_nonce(req, NULL, 16), 1);
        in = req_der(req, &inlen);
        expect(gmca_ocsp_respond(f->s, f->r, 2, &o, in, inlen, &out, &outlen, a, &e), &e, 0, NULL,
               "respond");
        OPENSSL_free(in);
        assert_int_equal(a->status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
        p = out;
        assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)outlen));
        bs = checked_basic(resp, &f->a);
        if (nonce)
                assert_int_equal(OCSP_check_nonce(req, bs), 1);
        assert_int_equal(OCSP_resp_find_status(bs, id, &st, &reason, &rev, &tu, &nu), 1);
        assert_int_equal(ASN1_TIME_to_tm(tu, &tm), 1);
        *thisupd = timegm(&tm);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);
        *der = out;
        *derlen = outlen;
        return st;
}

static struct gmca_ocsp_cache_stats stats_of(struct gmca_ocsp_cache *c)
{
        struct gmca_ocsp_cache_stats st;

        gmca_ocsp_cache_stats(c, &st);
        return st;
}

/* The second request for a CertID gets the same bytes without a signature; per
 * hash algorithm. */
static void test_cache_hit(void **state)
{
        struct fixture *f = *state;
        struct gmca_ocsp_cache *c = gmca_ocsp_cache_new(64);
        OCSP_CERTID *sm3 = cid(EVP_sm3(), f->a.cert, GOOD_A),
                    *sha1 = cid(EVP_sha1(), f->a.cert, GOOD_A);
        struct gmca_ocsp_answer a;
        uint8_t *d1, *d2, *d3;
        size_t l1, l2, l3;
        uint8_t md[GMCA_SM3_LEN];
        time_t t1, t2, t3;

        assert_non_null(c);
        assert_int_equal(ask(f, c, T0, sm3, 0, &a, &d1, &l1, &t1), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 0);
        assert_int_equal(ask(f, c, T0 + 10, sm3, 0, &a, &d2, &l2, &t2), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 1);
        assert_int_equal(a.good, 1);
        /* The ETag digest travels with the entry. */
        assert_int_equal(a.has_digest, 1);
        assert_int_equal(gmca_sm3(d1, l1, md), 0);
        assert_memory_equal(a.digest, md, sizeof(md));
        assert_int_equal(a.this_update, T0);
        assert_int_equal(a.next_update, T0 + GMCA_OCSP_VALIDITY_DEFAULT);
        assert_int_equal(t2, T0);
        assert_memory_equal(d1, d2, l1);
        assert_int_equal(l1, l2);
        /* The SHA-1 CertID is another entry: its answer echoes its own CertID. */
        assert_int_equal(ask(f, c, T0 + 10, sha1, 0, &a, &d3, &l3, &t3), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 0);
        assert_int_equal(t3, T0 + 10);
        assert_int_equal(stats_of(c).hits, 1);
        assert_int_equal(stats_of(c).misses, 2);
        assert_int_equal(stats_of(c).entries, 2);
        OPENSSL_free(d1);
        OPENSSL_free(d2);
        OPENSSL_free(d3);
        OCSP_CERTID_free(sm3);
        OCSP_CERTID_free(sha1);
        gmca_ocsp_cache_free(c);
}

/*
 * A revocation written to the store behind the cache's back (as another
 * process would) is answered at the next request; so is an issuance of a
 * serial that was "unknown".
 */
static void test_cache_store_change(void **state)
{
        struct fixture *f = *state;
        struct gmca_ocsp_cache *c = gmca_ocsp_cache_new(64);
        OCSP_CERTID *id = cid(EVP_sm3(), f->a.cert, FRESH_A),
                    *late = cid(EVP_sha1(), f->a.cert, LATE_A);
        struct gmca_ocsp_answer a;
        struct gmca_error e = {0};
        uint8_t *d;
        size_t l;
        time_t t;

        assert_non_null(c);
        store_cert(f->s, FRESH_A, f->a.id);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(ask(f, c, T0 + i, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
                assert_int_equal(a.cached, i);
                OPENSSL_free(d);
        }
        expect(gmca_store_cert_revoke(f->s, FRESH_A, T0 + 5, 1, 0, &e), &e, 0, NULL, "revoke");
        assert_int_equal(ask(f, c, T0 + 6, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_REVOKED);
        assert_int_equal(a.cached, 0);
        assert_int_equal(a.revoked, 1);
        assert_int_equal(t, T0 + 6);
        OPENSSL_free(d);
        assert_int_equal(stats_of(c).changed, 1);
        assert_int_equal(ask(f, c, T0 + 7, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_REVOKED);
        assert_int_equal(a.cached, 1);
        OPENSSL_free(d);

        assert_int_equal(ask(f, c, T0, late, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_UNKNOWN);
        OPENSSL_free(d);
        assert_int_equal(ask(f, c, T0 + 1, late, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_UNKNOWN);
        assert_int_equal(a.cached, 1);
        OPENSSL_free(d);
        store_cert(f->s, LATE_A, f->a.id);
        assert_int_equal(ask(f, c, T0 + 2, late, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 0);
        OPENSSL_free(d);
        assert_int_equal(stats_of(c).changed, 2);
        OCSP_CERTID_free(id);
        OCSP_CERTID_free(late);
        gmca_ocsp_cache_free(c);
}

/* Served until nextUpdate - margin, then re-signed; refresh re-signs ahead of
 * that. */
static void test_cache_expiry_refresh(void **state)
{
        struct fixture *f = *state;
        struct gmca_ocsp_cache *c = gmca_ocsp_cache_new(64);
        struct gmca_ocsp_opts o = {.now = T0 + 2000};
        OCSP_CERTID *id = cid(EVP_sm3(), f->a.cert, GOOD_A);
        const int64_t edge = T0 + GMCA_OCSP_VALIDITY_DEFAULT - GMCA_OCSP_VALIDITY_DEFAULT / 4;
        struct gmca_ocsp_answer a;
        struct gmca_error e = {0};
        uint8_t *d;
        size_t l;
        time_t t;

        assert_non_null(c);
        assert_int_equal(ask(f, c, T0, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
        OPENSSL_free(d);
        assert_int_equal(ask(f, c, edge - 1, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 1);
        assert_int_equal(t, T0);
        OPENSSL_free(d);
        assert_int_equal(ask(f, c, edge, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 0);
        assert_int_equal(t, edge);
        OPENSSL_free(d);
        assert_int_equal(stats_of(c).stale, 1);

        /* Entry signed at edge: refreshing at edge + 2000 looking 800 s ahead
         * re-signs it. */
        o.now = edge + 2000;
        assert_int_equal(gmca_ocsp_cache_refresh(c, f->s, f->r, 2, &o, 0, &e), 0);
        assert_int_equal(gmca_ocsp_cache_refresh(c, f->s, f->r, 2, &o, 800, &e), 1);
        assert_int_equal(ask(f, c, edge + 2800, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 1);
        assert_int_equal(t, edge + 2000);
        OPENSSL_free(d);
        /* A clock gone back before thisUpdate is not served from the cache. */
        assert_int_equal(ask(f, c, edge, id, 0, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
        assert_int_equal(a.cached, 0);
        OPENSSL_free(d);
        OCSP_CERTID_free(id);
        gmca_ocsp_cache_free(c);
}

/* Nonces and several CertIDs are signed each time; one slot shared by two
 * CertIDs stays right. */
static void test_cache_not_cached(void **state)
{
        struct fixture *f = *state;
        struct gmca_ocsp_cache *c = gmca_ocsp_cache_new(1);
        struct gmca_ocsp_opts o = {.now = T0, .cache = c};
        OCSP_CERTID *good = cid(EVP_sm3(), f->a.cert, GOOD_A);
        OCSP_CERTID *rev = cid(EVP_sm3(), f->a.cert, REVOKED_A);
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        struct gmca_ocsp_answer a;
        struct gmca_error e = {0};
        uint8_t *d, *in;
        size_t l, inlen;
        time_t t;

        assert_non_null(c);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(ask(f, c, T0, good, 1, &a, &d, &l, &t), V_OCSP_CERTSTATUS_GOOD);
                assert_int_equal(a.cached, 0);
                assert_int_equal(a.has_nonce, 1);
                OPENSSL_free(d);
        }
        add(req, OCSP_CERTID_dup(good));
        add(req, OCSP_CERTID_dup(rev));
        in = req_der(req, &inlen);
        for (int i = 0; i < 2; i++) {
                d = NULL;
                expect(gmca_ocsp_respond(f->s, f->r, 2, &o, in, inlen, &d, &l, &a, &e), &e, 0, NULL,
                       "two CertIDs");
                assert_int_equal(a.cached, 0);
                assert_int_equal(a.good + a.revoked, 2);
                OPENSSL_free(d);
        }
        OPENSSL_free(in);
        OCSP_REQUEST_free(req);
        assert_int_equal(stats_of(c).entries, 0);
        /* Alternating CertIDs in the one slot: each answer is its own certificate's.
         */
        for (int i = 0; i < 4; i++) {
                OCSP_CERTID *id = i % 2 ? rev : good;

                assert_int_equal(ask(f, c, T0 + i, id, 0, &a, &d, &l, &t),
                                 i % 2 ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD);
                assert_int_equal(a.cached, 0);
                OPENSSL_free(d);
        }
        assert_int_equal(stats_of(c).entries, 1);
        assert_int_equal(stats_of(c).hits, 0);
        OCSP_CERTID_free(good);
        OCSP_CERTID_free(rev);
        gmca_ocsp_cache_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_statuses),
            cmocka_unit_test(test_second_ca),
            cmocka_unit_test(test_nonce),
            cmocka_unit_test(test_unauthorized),
            cmocka_unit_test(test_other_hash),
            cmocka_unit_test(test_malformed),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_responder_refusals),
            cmocka_unit_test(test_responder_expired),
            cmocka_unit_test(test_cache_hit),
            cmocka_unit_test(test_cache_store_change),
            cmocka_unit_test(test_cache_expiry_refresh),
            cmocka_unit_test(test_cache_not_cached),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
