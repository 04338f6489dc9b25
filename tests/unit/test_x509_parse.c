/*
 * Tests of the x509 intake: gmca_csr_parse and gmca_cert_parse over the
 * sample files in tests/data/csr (made by tests/data/csr/make.sh) and over
 * requests built here, gmca_dn_parse / gmca_dn_format, and
 * gmca_subject_info_parse. Every case names the expected code and a piece
 * of the expected cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "util.h"
#include "x509.h"

static uint8_t *load(const char *name, size_t *len)
{
        const char *dir = getenv("GMCA_TESTDATA");
        char path[4096];
        uint8_t *buf = NULL;
        struct gmca_error e;

        gmca_error_clear(&e);
        assert_non_null(dir);
        snprintf(path, sizeof(path), "%s/csr/%s", dir, name);
        if (gmca_read_file(path, 1u << 20, &buf, len, &e) != 0)
                fail_msg("%s: %s", path, e.msg);
        return buf;
}

static const struct csr_case {
        const char *file;
        const char *id;
        int rc;
        const char *msg;
} csr_cases[] = {
    {"good_sm2.der", NULL, 0, NULL},
    {"good_sm2.pem", NULL, 0, NULL},
    {"good_sm2.pem", GMCA_SM2_DEFAULT_ID, 0, NULL},
    {"good_sm2_cn.pem", NULL, 0, NULL},
    {"good_sm2_new_header.pem", NULL, 0, NULL},
    {"good_sm2_ext.pem", NULL, 0, NULL},
    {"good_sm2_null_params.der", NULL, 0, NULL},
    {"good_sm2_trailing_ws.pem", NULL, 0, NULL},
    {"good_sm2_alice.pem", "ALICE123@YAHOO.COM", 0, NULL},
    {"good_sm2_alice.pem", NULL, GMCA_ERR_VERIFY,
     "CSR: GM/T 0009: SM2 signature does not verify with ID 1234567812345678"},
    {"good_sm2.der", "ALICE123@YAHOO.COM", GMCA_ERR_VERIFY,
     "does not verify with ID ALICE123@YAHOO.COM"},
    {"bad_sm2_empty_id.pem", NULL, GMCA_ERR_VERIFY,
     "CSR: GM/T 0009: SM2 signature does not verify with ID 1234567812345678"},
    {"bad_flipped_sig.der", NULL, GMCA_ERR_VERIFY, "does not verify"},
    {"bad_rsa.pem", NULL, GMCA_ERR_INVALID, "sha256WithRSAEncryption"},
    {"bad_p256.pem", NULL, GMCA_ERR_INVALID, "ecdsa-with-SHA256"},
    {"bad_sig_alg_ecdsa.der", NULL, GMCA_ERR_INVALID, "ecdsa-with-SHA256 (1.2.840.10045.4.3.2)"},
    {"bad_sig_params.der", NULL, GMCA_ERR_INVALID, "parameters must be absent or NULL"},
    {"bad_rsa_key.der", NULL, GMCA_ERR_INVALID, "requires SM2, got RSA"},
    {"bad_p256_key.der", NULL, GMCA_ERR_INVALID, "SM2 curve"},
    {"bad_dup_attr.der", NULL, GMCA_ERR_INVALID, "attribute 1.2.840.113549.1.9.14 appears twice"},
    {"bad_version.der", NULL, GMCA_ERR_INVALID, "version must be v1"},
    {"bad_sm2_empty_subject.pem", NULL, GMCA_ERR_INVALID, "subject is empty"},
    {"bad_ber_length.der", NULL, GMCA_ERR_INVALID, "not DER"},
    {"bad_ber_name.der", NULL, GMCA_ERR_INVALID, "subject is not DER"},
    {"bad_garbage.bin", NULL, GMCA_ERR_INVALID, "CSR: PKCS#10: malformed"},
    {"bad_garbage.txt", NULL, GMCA_ERR_INVALID, "CSR: PKCS#10: malformed"},
    {"bad_empty.bin", NULL, GMCA_ERR_INVALID, "empty input"},
    {"bad_huge.bin", NULL, GMCA_ERR_LIMIT, "larger than 16384 bytes"},
    {"bad_truncated.der", NULL, GMCA_ERR_INVALID, "malformed or truncated"},
    {"bad_trailing.der", NULL, GMCA_ERR_INVALID, "CSR: PKCS#10: trailing bytes after DER"},
    {"bad_pem_junk.pem", NULL, GMCA_ERR_INVALID, "trailing data after the PEM block"},
    {"bad_two_pem.pem", NULL, GMCA_ERR_INVALID, "more than one PEM block"},
    {"cert_good_sm2.pem", NULL, GMCA_ERR_INVALID, "PEM label"},
    {"cert_good_sm2.der", NULL, GMCA_ERR_INVALID, "CSR: PKCS#10"},
};

static void test_csr_files(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(csr_cases) / sizeof(csr_cases[0]); i++) {
                const struct csr_case *c = &csr_cases[i];
                struct gmca_error e;
                size_t len = 0;
                uint8_t *buf = load(c->file, &len);
                X509_REQ *req;

                gmca_error_clear(&e);
                req = gmca_csr_parse(buf, len, c->id, &e);
                expect(req != NULL ? 0 : e.code, &e, c->rc, c->msg, c->file);
                if (req != NULL)
                        assert_true(X509_NAME_entry_count(X509_REQ_get_subject_name(req)) > 0);
                X509_REQ_free(req);
                free(buf);
        }
}

/* A missing error struct must not crash; NULL input is refused. */
static void test_csr_null(void **state)
{
        size_t len = 0;
        uint8_t *buf = load("bad_trailing.der", &len);

        (void)state;
        assert_null(gmca_csr_parse(NULL, 0, NULL, NULL));
        assert_null(gmca_csr_parse(buf, len, NULL, NULL));
        assert_null(gmca_cert_parse(buf, 0, NULL));
        free(buf);
}

/* Chinese subject from the openssl CLI (-utf8) arrives as UTF8String. */
static void test_csr_chinese(void **state)
{
        size_t len = 0;
        uint8_t *buf = load("good_sm2_cn.pem", &len);
        struct gmca_error e;
        X509_REQ *req;
        char out[512];

        (void)state;
        gmca_error_clear(&e);
        assert_non_null(req = gmca_csr_parse(buf, len, NULL, &e));
        assert_int_equal(gmca_dn_format(X509_REQ_get_subject_name(req), out, sizeof(out), &e), 0);
        assert_string_equal(out, "C=CN, ST=北京市, O=北京市政务服务中心, CN=张三");
        X509_REQ_free(req);
        free(buf);
}

/*
 * Requests built here for what the CLI cannot make: many attributes,
 * duplicate extensions, a critical flag encoded as FALSE. (OpenSSL 3
 * refuses to add an attribute twice: make.sh makes bad_dup_attr.der.)
 */
enum build_kind { B_GOOD, B_ATTRS33, B_ATTRS32, B_DUP_EXT, B_EXT_FALSE };

static uint8_t *build_csr(enum build_kind kind, size_t *len)
{
        EVP_PKEY *key = gmca_sm2_keygen(NULL);
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = NULL;
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext;
        EVP_MD_CTX *ctx = NULL;
        uint8_t *der = NULL;
        int n;

        assert_non_null(key);
        assert_non_null(req);
        assert_non_null(exts);
        assert_non_null(name = gmca_dn_parse("C=CN, O=Org, CN=Built", NULL));
        assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        if (kind == B_ATTRS33 || kind == B_ATTRS32) {
                int count = kind == B_ATTRS33 ? 33 : 32;

                for (int i = 0; i < count; i++) {
                        char oid[64];

                        snprintf(oid, sizeof(oid), "1.3.6.1.4.1.99999.%d", i);
                        assert_int_equal(X509_REQ_add1_attr_by_txt(req, oid, V_ASN1_UTF8STRING,
                                                                   (const unsigned char *)"x", 1),
                                         1);
                }
        }
        if (kind == B_DUP_EXT || kind == B_GOOD) {
                for (int i = 0; i < (kind == B_DUP_EXT ? 2 : 1); i++) {
                        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
                                                  "DNS:www.example.gov.cn");
                        assert_non_null(ext);
                        assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
                }
                assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        }
        if (kind == B_EXT_FALSE) {
                /*
                 * SEQUENCE { SEQUENCE { basicConstraints, BOOLEAN FALSE, OCTET STRING {30 00} } }:
                 * DER leaves a DEFAULT FALSE out (X.690 §11.5).
                 */
                static const unsigned char raw[] = {0x30, 0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d,
                                                    0x13, 0x01, 0x01, 0x00, 0x04, 0x02, 0x30, 0x00};

                assert_int_equal(X509_REQ_add1_attr_by_NID(req, NID_ext_req, V_ASN1_SEQUENCE, raw,
                                                           (int)sizeof(raw)),
                                 1);
        }
        assert_non_null(ctx = gmca_sm2_sign_ctx(key, NULL, NULL));
        assert_true(X509_REQ_sign_ctx(req, ctx) > 0);
        assert_true((n = i2d_X509_REQ(req, &der)) > 0);
        *len = (size_t)n;
        EVP_MD_CTX_free(ctx);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_NAME_free(name);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
        return der;
}

static const struct built_case {
        enum build_kind kind;
        int rc;
        const char *msg;
} built_cases[] = {
    {B_GOOD, 0, NULL},
    {B_ATTRS32, 0, NULL},
    {B_ATTRS33, GMCA_ERR_LIMIT, "more than 32 attributes"},
    {B_DUP_EXT, GMCA_ERR_INVALID, "extension 2.5.29.17 appears twice"},
    {B_EXT_FALSE, GMCA_ERR_INVALID,
     "extensionRequest: X.690 §11.5: extension 2.5.29.19 is not DER"},
};

static void test_csr_built(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(built_cases) / sizeof(built_cases[0]); i++) {
                const struct built_case *c = &built_cases[i];
                struct gmca_error e;
                size_t len = 0;
                uint8_t *der = build_csr(c->kind, &len);
                X509_REQ *req;
                char what[32];

                snprintf(what, sizeof(what), "built case %zu", i);
                gmca_error_clear(&e);
                req = gmca_csr_parse(der, len, NULL, &e);
                expect(req != NULL ? 0 : e.code, &e, c->rc, c->msg, what);
                X509_REQ_free(req);
                OPENSSL_free(der);
        }
}

static const struct cert_case {
        const char *file;
        int rc;
        const char *msg;
} cert_cases[] = {
    {"cert_good_sm2.pem", 0, NULL},
    {"cert_good_sm2.der", 0, NULL},
    {"cert_bad_trailing.der", GMCA_ERR_INVALID, "certificate: X.509: trailing bytes after DER"},
    {"cert_bad_rsa.pem", GMCA_ERR_INVALID, "sha256WithRSAEncryption"},
    {"good_sm2.pem", GMCA_ERR_INVALID, "PEM label is not \"CERTIFICATE\""},
    {"good_sm2.der", GMCA_ERR_INVALID, "malformed"},
    {"bad_empty.bin", GMCA_ERR_INVALID, "empty input"},
    {"bad_garbage.bin", GMCA_ERR_INVALID, "malformed"},
};

static void test_cert_files(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(cert_cases) / sizeof(cert_cases[0]); i++) {
                const struct cert_case *c = &cert_cases[i];
                struct gmca_error e;
                size_t len = 0;
                uint8_t *buf = load(c->file, &len);
                X509 *cert;

                gmca_error_clear(&e);
                cert = gmca_cert_parse(buf, len, &e);
                expect(cert != NULL ? 0 : e.code, &e, c->rc, c->msg, c->file);
                X509_free(cert);
                free(buf);
        }
}

/* Text edits of good_sm2.pem: what a strict RFC 7468 reader must take or refuse. */
static char *edit(const char *pem, const char *from, const char *to, int all)
{
        size_t fl = strlen(from), tl = strlen(to), cap = strlen(pem) * 2 + 256, n = 0;
        char *out = malloc(cap);
        const char *p = pem, *q;

        assert_non_null(out);
        while ((q = strstr(p, from)) != NULL) {
                memcpy(out + n, p, (size_t)(q - p));
                n += (size_t)(q - p);
                memcpy(out + n, to, tl);
                n += tl;
                p = q + fl;
                if (!all)
                        break;
        }
        assert_true(n + strlen(p) + 1 <= cap);
        memcpy(out + n, p, strlen(p) + 1);
        return out;
}

static const struct pem_case {
        const char *from, *to;
        int all;
        int rc;
        const char *msg;
} pem_cases[] = {
    {"-----BEGIN", "\n  \t-----BEGIN", 0, 0, NULL},
    {"\n", "\r\n", 1, 0, NULL},
    {"-----END CERTIFICATE REQUEST", "-----END NEW CERTIFICATE REQUEST", 0, GMCA_ERR_INVALID,
     "END line"},
    {"REQUEST-----\n", "REQUEST-----\nProc-Type: 4,ENCRYPTED\n\n", 0, GMCA_ERR_INVALID,
     "header line"},
    {"BEGIN CERTIFICATE REQUEST", "BEGIN X509 CRL", 0, GMCA_ERR_INVALID, "PEM label"},
    {"-----BEGIN CERTIFICATE REQUEST-----\n", "-----BEGIN CERTIFICATE REQUEST-----\n=", 0,
     GMCA_ERR_INVALID, "non-base64"},
    {"-----BEGIN CERTIFICATE REQUEST-----\n", "-----BEGIN CERTIFICATE REQUEST-----\nA", 0,
     GMCA_ERR_INVALID, "padded base64"},
    {"-----BEGIN CERTIFICATE REQUEST-----\n", "-----BEGIN CERTIFICATE REQUEST-----\n ", 0,
     GMCA_ERR_INVALID, "non-base64"},
    {"-----END CERTIFICATE REQUEST-----\n", "-----END CERTIFICATE REQUEST-----", 0, 0, NULL},
    {"-----END CERTIFICATE REQUEST-----\n", "-----END CERTIFICATE REQUEST-----x", 0,
     GMCA_ERR_INVALID, "END line"},
    {"-----END CERTIFICATE REQUEST-----\n", "", 0, GMCA_ERR_INVALID, "END line"},
};

static void test_pem_variants(void **state)
{
        size_t len = 0;
        uint8_t *raw = load("good_sm2.pem", &len);

        (void)state;
        for (size_t i = 0; i < sizeof(pem_cases) / sizeof(pem_cases[0]); i++) {
                const struct pem_case *c = &pem_cases[i];
                char *pem = edit((const char *)raw, c->from, c->to, c->all);
                struct gmca_error e;
                X509_REQ *req;

                gmca_error_clear(&e);
                req = gmca_csr_parse((const uint8_t *)pem, strlen(pem), NULL, &e);
                expect(req != NULL ? 0 : e.code, &e, c->rc, c->msg, c->to);
                X509_REQ_free(req);
                free(pem);
        }
        free(raw);
}

/* Certificates built here for the checks the CLI will not break. */
enum cert_kind { C_GOOD, C_V1, C_SERIAL0, C_SERIAL_NEG, C_SERIAL21, C_DUP_EXT, C_EMPTY_SUBJECT };

static uint8_t *build_cert(enum cert_kind kind, size_t *len)
{
        EVP_PKEY *key = gmca_sm2_keygen(NULL);
        X509 *x = X509_new();
        X509_NAME *name = NULL, *empty = X509_NAME_new();
        ASN1_INTEGER *serial = ASN1_INTEGER_new();
        EVP_MD_CTX *ctx = NULL;
        uint8_t *der = NULL;
        long sv = kind == C_SERIAL0 ? 0 : kind == C_SERIAL_NEG ? -5 : 4660;
        int n;

        assert_non_null(key);
        assert_non_null(x);
        assert_non_null(serial);
        assert_non_null(empty);
        assert_non_null(name = gmca_dn_parse("C=CN, O=Org, CN=Built CA", NULL));
        assert_int_equal(X509_set_version(x, kind == C_V1 ? X509_VERSION_1 : X509_VERSION_3), 1);
        if (kind == C_SERIAL21) {
                BIGNUM *bn = BN_new();

                assert_non_null(bn);
                assert_int_equal(BN_set_bit(bn, 20 * 8 + 3), 1);
                assert_non_null(BN_to_ASN1_INTEGER(bn, serial));
                BN_free(bn);
        } else {
                assert_int_equal(ASN1_INTEGER_set(serial, sv), 1);
        }
        assert_int_equal(X509_set_serialNumber(x, serial), 1);
        assert_int_equal(X509_set_issuer_name(x, name), 1);
        assert_int_equal(X509_set_subject_name(x, kind == C_EMPTY_SUBJECT ? empty : name), 1);
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        for (int i = 0; i < (kind == C_DUP_EXT ? 2 : kind == C_V1 ? 0 : 1); i++) {
                X509_EXTENSION *ext =
                    X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");

                assert_non_null(ext);
                assert_int_equal(X509_add_ext(x, ext, -1), 1);
                X509_EXTENSION_free(ext);
        }
        assert_non_null(ctx = gmca_sm2_sign_ctx(key, NULL, NULL));
        assert_true(X509_sign_ctx(x, ctx) > 0);
        assert_true((n = i2d_X509(x, &der)) > 0);
        *len = (size_t)n;
        EVP_MD_CTX_free(ctx);
        ASN1_INTEGER_free(serial);
        X509_NAME_free(empty);
        X509_NAME_free(name);
        X509_free(x);
        EVP_PKEY_free(key);
        return der;
}

static const struct built_cert_case {
        enum cert_kind kind;
        int rc;
        const char *msg;
} built_cert_cases[] = {
    {C_GOOD, 0, NULL},
    {C_V1, GMCA_ERR_INVALID, "version must be v3"},
    {C_SERIAL0, GMCA_ERR_INVALID, "serial number must be positive"},
    {C_SERIAL_NEG, GMCA_ERR_INVALID, "serial number must be positive"},
    {C_SERIAL21, GMCA_ERR_INVALID, "longer than 20 octets"},
    {C_DUP_EXT, GMCA_ERR_INVALID, "extension 2.5.29.19 appears twice"},
    {C_EMPTY_SUBJECT, GMCA_ERR_INVALID, "subject is empty"},
};

static void test_cert_built(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(built_cert_cases) / sizeof(built_cert_cases[0]); i++) {
                const struct built_cert_case *c = &built_cert_cases[i];
                struct gmca_error e;
                size_t len = 0;
                uint8_t *der = build_cert(c->kind, &len);
                X509 *cert;
                char what[32];

                snprintf(what, sizeof(what), "built cert %zu", i);
                gmca_error_clear(&e);
                cert = gmca_cert_parse(der, len, &e);
                expect(cert != NULL ? 0 : e.code, &e, c->rc, c->msg, what);
                X509_free(cert);
                OPENSSL_free(der);
        }
}

static const struct dn_case {
        const char *in;
        int rc;
        const char *msg; /* error substring, or the gmca_dn_format output when rc == 0 */
} dn_cases[] = {
    {"C=CN, O=Org, CN=Name", 0, "C=CN, O=Org, CN=Name"},
    {"/C=CN/O=Org/CN=Name", 0, "C=CN, O=Org, CN=Name"},
    {"  C = CN ,O=  Org  ,   CN=Name   ", 0, "C=CN, O=Org, CN=Name"},
    {"CN=张三, O=北京市政务服务中心, C=CN", 0, "CN=张三, O=北京市政务服务中心, C=CN"},
    {"C=CN, ST=北京, S=上海, L=海淀, O=O, OU=U1, OU=U2, CN=x, E=a@b.cn, serialNumber=123", 0,
     "C=CN, ST=北京, ST=上海, L=海淀, O=O, OU=U1, OU=U2, CN=x, E=a@b.cn, serialNumber=123"},
    {"emailAddress=a@b.cn, cn=lower", 0, "E=a@b.cn, CN=lower"},
    {"O=A\\, B\\\\C\\=D\\+E, CN=x", 0, "O=A\\, B\\\\C\\=D\\+E, CN=x"},
    {"/O=A, B/CN=x\\/y", 0, "O=A\\, B, CN=x/y"},
    {"O=\\ lead and trail\\ , CN=\\#hash", 0, "O=\\ lead and trail\\ , CN=\\#hash"},
    {"O=q\\\"u\\<o\\>t\\;e", 0, "O=q\\\"u\\<o\\>t\\;e"},
    {"CN=a+OU=b, C=CN", 0, "CN=a+OU=b, C=CN"},
    {"CN=\\E5\\BC\\A0", 0, "CN=张"},
    {"", GMCA_ERR_INVALID, "DN: empty"},
    {"   ", GMCA_ERR_INVALID, "DN: empty"},
    {"C=CN, X=foo", GMCA_ERR_INVALID, "unknown attribute \"X\""},
    {"C=CN, DC=example", GMCA_ERR_INVALID, "unknown attribute \"DC\""},
    {"C=China", GMCA_ERR_INVALID, "two upper-case letters"},
    {"C=cn", GMCA_ERR_INVALID, "two upper-case letters"},
    {"C=C", GMCA_ERR_INVALID, "two upper-case letters"},
    {"CN=\xff\xfe", GMCA_ERR_INVALID, "invalid UTF-8"},
    {"CN=\xc0\xaf", GMCA_ERR_INVALID, "invalid UTF-8"},         /* overlong '/' */
    {"CN=\xe0\x80\xaf", GMCA_ERR_INVALID, "invalid UTF-8"},     /* overlong '/' */
    {"CN=\xed\xa0\x80", GMCA_ERR_INVALID, "invalid UTF-8"},     /* surrogate */
    {"CN=\xf4\x90\x80\x80", GMCA_ERR_INVALID, "invalid UTF-8"}, /* > U+10FFFF */
    {"CN=\xe5\xbc", GMCA_ERR_INVALID, "invalid UTF-8"},         /* truncated */
    {"CN=a\tb", GMCA_ERR_INVALID, "control character"},
    {"CN=a\x7f", GMCA_ERR_INVALID, "control character"},
    {"CN=a\\0Ab", GMCA_ERR_INVALID, "control character"},
    {"CN=", GMCA_ERR_INVALID, "CN: empty value"},
    {"CN=   ", GMCA_ERR_INVALID, "CN: empty value"},
    {"C=CN,, CN=x", GMCA_ERR_INVALID, "stray separator"},
    {"C=CN, CN", GMCA_ERR_INVALID, "has no '='"},
    {"=CN", GMCA_ERR_INVALID, "attribute name missing"},
    {"CN=a=b", GMCA_ERR_INVALID, "unescaped '='"},
    {"CN=a\\q", GMCA_ERR_INVALID, "bad escape"},
    {"CN=a\\", GMCA_ERR_INVALID, "bad escape"},
    {"E=张@b.cn", GMCA_ERR_INVALID, "IA5String"},
    {"serialNumber=a_b", GMCA_ERR_INVALID, "PrintableString"},
    {"C-N=x", GMCA_ERR_INVALID, "not allowed in an attribute name"},
};

static void dn_roundtrip(const char *in, const char *want)
{
        struct gmca_error e;
        X509_NAME *name, *again;
        char out[GMCA_DN_MAX * 2];

        gmca_error_clear(&e);
        if ((name = gmca_dn_parse(in, &e)) == NULL)
                fail_msg("\"%s\": %s", in, e.msg);
        assert_int_equal(gmca_dn_format(name, out, sizeof(out), &e), 0);
        if (want != NULL && strcmp(out, want) != 0)
                fail_msg("\"%s\" formats as \"%s\", want \"%s\"", in, out, want);
        if ((again = gmca_dn_parse(out, &e)) == NULL)
                fail_msg("\"%s\" does not parse again: %s", out, e.msg);
        assert_int_equal(X509_NAME_cmp(name, again), 0);
        X509_NAME_free(again);
        X509_NAME_free(name);
}

static void test_dn_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(dn_cases) / sizeof(dn_cases[0]); i++) {
                const struct dn_case *c = &dn_cases[i];
                struct gmca_error e;
                X509_NAME *name;

                if (c->rc == 0) {
                        dn_roundtrip(c->in, c->msg);
                        continue;
                }
                gmca_error_clear(&e);
                name = gmca_dn_parse(c->in, &e);
                expect(name != NULL ? 0 : e.code, &e, c->rc, c->msg, c->in);
                X509_NAME_free(name);
        }
}

static void test_dn_limits(void **state)
{
        char big[GMCA_DN_MAX + 64], val[GMCA_ATTR_MAX + 2];
        struct gmca_error e;
        X509_NAME *name;
        size_t n = 0;

        (void)state;
        /* 16 attributes pass, 17 do not. */
        for (int i = 0; i < GMCA_DN_RDN_MAX; i++)
                n += (size_t)snprintf(big + n, sizeof(big) - n, "%sOU=u%d", i ? ", " : "", i);
        dn_roundtrip(big, NULL);
        snprintf(big + n, sizeof(big) - n, ", CN=x");
        gmca_error_clear(&e);
        name = gmca_dn_parse(big, &e);
        expect(name ? 0 : e.code, &e, GMCA_ERR_LIMIT, "more than 16 attributes", "17 RDNs");
        X509_NAME_free(name);

        /* A value of exactly GMCA_ATTR_MAX bytes passes, one more does not. */
        memset(val, 'a', GMCA_ATTR_MAX);
        val[GMCA_ATTR_MAX] = '\0';
        snprintf(big, sizeof(big), "CN=%s", val);
        dn_roundtrip(big, big);
        snprintf(big, sizeof(big), "CN=%sa", val);
        gmca_error_clear(&e);
        name = gmca_dn_parse(big, &e);
        expect(name ? 0 : e.code, &e, GMCA_ERR_LIMIT, "longer than 256 bytes", "long value");
        X509_NAME_free(name);

        /* The whole text is capped. */
        memset(big, ' ', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memcpy(big, "CN=x", 4);
        gmca_error_clear(&e);
        name = gmca_dn_parse(big, &e);
        expect(name ? 0 : e.code, &e, GMCA_ERR_LIMIT, "longer than 1024 bytes", "long text");
        X509_NAME_free(name);

        assert_null(gmca_dn_parse(NULL, NULL));
}

/* Chinese text ends up as UTF8String, C as PrintableString, E as IA5String. */
static void test_dn_types(void **state)
{
        static const struct {
                int nid;
                int type;
                const char *value;
        } want[] = {
            {NID_countryName, V_ASN1_PRINTABLESTRING, "CN"},
            {NID_organizationName, V_ASN1_UTF8STRING, "北京市政务服务中心"},
            {NID_commonName, V_ASN1_UTF8STRING, "张三"},
            {NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "zhangsan@example.gov.cn"},
        };
        struct gmca_error e;
        X509_NAME *name;
        unsigned char *der = NULL;
        const unsigned char *p;
        X509_NAME *back;
        char out[256];
        int len;

        (void)state;
        gmca_error_clear(&e);
        name = gmca_dn_parse("C=CN, O=北京市政务服务中心, CN=张三, E=zhangsan@example.gov.cn", &e);
        assert_non_null(name);
        /* Through DER and back, so the types are those on the wire. */
        assert_true((len = i2d_X509_NAME(name, &der)) > 0);
        p = der;
        assert_non_null(back = d2i_X509_NAME(NULL, &p, len));
        assert_int_equal(X509_NAME_entry_count(back), 4);
        for (int i = 0; i < 4; i++) {
                const X509_NAME_ENTRY *ent = X509_NAME_get_entry(back, i);
                const ASN1_STRING *s = X509_NAME_ENTRY_get_data(ent);

                assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(ent)), want[i].nid);
                assert_int_equal(ASN1_STRING_type(s), want[i].type);
                assert_int_equal(ASN1_STRING_length(s), (int)strlen(want[i].value));
                assert_memory_equal(ASN1_STRING_get0_data(s), want[i].value, strlen(want[i].value));
        }
        assert_int_equal(gmca_dn_format(back, out, sizeof(out), &e), 0);
        assert_string_equal(out, "C=CN, O=北京市政务服务中心, CN=张三, E=zhangsan@example.gov.cn");
        /* Too small a buffer is an error with an empty string. */
        assert_int_equal(gmca_dn_format(back, out, 10, &e), GMCA_ERR_LIMIT);
        assert_string_equal(out, "");
        OPENSSL_free(der);
        X509_NAME_free(back);
        X509_NAME_free(name);
}

static const struct si_case {
        const char *json;
        int rc;
        const char *msg;
} si_cases[] = {
    {"{}", 0, NULL},
    /*
     * 11010519491231002X: sum of digits times 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2 is
     * 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2 -> 'X'.
     */
    {"{\"identity_card_number\": \"11010519491231002X\"}", 0, NULL},
    {"{\"identity_card_number\": \"11010519491231002x\"}", 0, NULL},
    {"{\"identity_card_number\": \"110101200002290018\"}", 0, NULL}, /* 2000-02-29 */
    {"{\"identity_card_number\": \"110101199001010015\"}", 0, NULL},
    {"{\"identity_card_number\": \"110105194912310021\"}", GMCA_ERR_INVALID,
     "subject info: identity_card_number: GB 11643 check digit mismatch"},
    {"{\"identity_card_number\": \"11010519491231002\"}", GMCA_ERR_INVALID, "18 characters"},
    {"{\"identity_card_number\": \"1101051949123100AX\"}", GMCA_ERR_INVALID, "17 digits"},
    {"{\"identity_card_number\": \"11010519491231002Y\"}", GMCA_ERR_INVALID, "digit or X"},
    {"{\"identity_card_number\": \"110101190002290011\"}", GMCA_ERR_INVALID, "birth date"},
    {"{\"identity_card_number\": \"110101199013010011\"}", GMCA_ERR_INVALID, "birth date"},
    {"{\"identity_card_number\": \"110101299001010011\"}", GMCA_ERR_INVALID, "birth date"},
    /* Commonly cited valid code; check char computed by GB 32100 weights. */
    {"{\"unified_social_credit_code\": \"91350100M000100Y43\"}", 0, NULL},
    {"{\"unified_social_credit_code\": \"91110108MA01C1234U\"}", 0, NULL},
    {"{\"unified_social_credit_code\": \"91350100M000100Y44\"}", GMCA_ERR_INVALID,
     "unified_social_credit_code: GB 32100 check character mismatch"},
    {"{\"unified_social_credit_code\": \"91350100M000100I43\"}", GMCA_ERR_INVALID,
     "not in the code set"},
    {"{\"unified_social_credit_code\": \"91350100M000100Y4\"}", GMCA_ERR_INVALID, "18 characters"},
    /* GB 11714's own example: D2143569-X. */
    {"{\"organization_code\": \"D2143569-X\"}", 0, NULL},
    {"{\"organization_code\": \"D2143569X\"}", 0, NULL},
    {"{\"organization_code\": \"000000019\"}", 0, NULL},
    {"{\"organization_code\": \"D2143569-1\"}", GMCA_ERR_INVALID,
     "organization_code: GB 11714 check character mismatch"},
    {"{\"organization_code\": \"d2143569X\"}", GMCA_ERR_INVALID, "[0-9A-Z]"},
    {"{\"organization_code\": \"D214356X\"}", GMCA_ERR_INVALID, "9 characters"},
    {"{\"ic_registration_number\": \"110000012345678\"}", 0, NULL},
    {"{\"ic_registration_number\": \"91350100M000100Y43\"}", 0, NULL},
    {"{\"ic_registration_number\": \"91350100M000100Y40\"}", GMCA_ERR_INVALID, "GB 32100"},
    {"{\"ic_registration_number\": \"11000001234567\"}", GMCA_ERR_INVALID, "15-digit"},
    {"{\"taxation_number\": \"110105123456789\"}", 0, NULL},
    {"{\"taxation_number\": \"91350100M000100Y43\"}", 0, NULL},
    {"{\"taxation_number\": \"11010512345678901234\"}", 0, NULL},
    {"{\"taxation_number\": \"1101051234567890\"}", GMCA_ERR_INVALID, "15, 17, 18 or 20"},
    {"{\"taxation_number\": \"11010512345678-\"}", GMCA_ERR_INVALID, "[0-9A-Z]"},
    {"{\"insurance_number\": \"SI-12345 A\"}", 0, NULL},
    {"{\"insurance_number\": \"\"}", GMCA_ERR_INVALID, "1 to 32"},
    {"{\"insurance_number\": \"123456789012345678901234567890123\"}", GMCA_ERR_INVALID, "1 to 32"},
    {"{\"insurance_number\": \"a_b\"}", GMCA_ERR_INVALID, "PrintableString"},
    {"{\"san\": {\"dns\": [\"www.example.gov.cn\", \"*.example.gov.cn\", \"A-B.CN\"], "
     "\"ip\": [\"192.0.2.1\", \"2001:DB8:0:0::1\"], \"email\": [\"zhang.san@example.gov.cn\"]}}",
     0, NULL},
    {"{\"san\": {\"dns\": [\"localhost\"]}}", GMCA_ERR_INVALID,
     "san.dns[0]: needs at least two labels"},
    {"{\"san\": {\"dns\": [\"a.*.cn\"]}}", GMCA_ERR_INVALID, "wildcard only"},
    {"{\"san\": {\"dns\": [\"*x.example.cn\"]}}", GMCA_ERR_INVALID, "wildcard only"},
    {"{\"san\": {\"dns\": [\"-a.example.cn\"]}}", GMCA_ERR_INVALID, "starts with a hyphen"},
    {"{\"san\": {\"dns\": [\"a-.example.cn\"]}}", GMCA_ERR_INVALID, "ends with a hyphen"},
    {"{\"san\": {\"dns\": [\"a..cn\"]}}", GMCA_ERR_INVALID, "empty label"},
    {"{\"san\": {\"dns\": [\"a.cn.\"]}}", GMCA_ERR_INVALID, "empty label"},
    {"{\"san\": {\"dns\": [\"a_b.cn\"]}}", GMCA_ERR_INVALID, "letters, digits and hyphens"},
    {"{\"san\": {\"dns\": [\"1.2.3.4\"]}}", GMCA_ERR_INVALID, "numeric"},
    {"{\"san\": {\"dns\": "
     "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.cn\"]}}",
     GMCA_ERR_INVALID, "longer than 63"},
    {"{\"san\": {\"dns\": [\"a.cn\", \"A.CN\"]}}", GMCA_ERR_INVALID, "san.dns[1]: duplicate"},
    {"{\"san\": {\"ip\": [\"256.1.1.1\"]}}", GMCA_ERR_INVALID, "san.ip[0]: not an IPv4"},
    {"{\"san\": {\"ip\": [\"fe80::1%eth0\"]}}", GMCA_ERR_INVALID, "not an IPv4"},
    {"{\"san\": {\"ip\": [\"example.cn\"]}}", GMCA_ERR_INVALID, "not an IPv4"},
    {"{\"san\": {\"email\": [\"nobody\"]}}", GMCA_ERR_INVALID, "exactly one '@'"},
    {"{\"san\": {\"email\": [\"a@b@c.cn\"]}}", GMCA_ERR_INVALID, "exactly one '@'"},
    {"{\"san\": {\"email\": [\"a@localhost\"]}}", GMCA_ERR_INVALID, "two labels"},
    {"{\"san\": {\"email\": [\"a..b@c.cn\"]}}", GMCA_ERR_INVALID, "two dots"},
    {"{\"san\": {\"email\": [\"张@c.cn\"]}}", GMCA_ERR_INVALID, "local part"},
    {"{\"san\": {\"email\": [\"@c.cn\"]}}", GMCA_ERR_INVALID, "1 to 64"},
    {"{\"san\": {\"dns\": [\"a1.cn\",\"a2.cn\",\"a3.cn\",\"a4.cn\",\"a5.cn\",\"a6.cn\","
     "\"a7.cn\",\"a8.cn\",\"a9.cn\",\"a10.cn\",\"a11.cn\",\"a12.cn\",\"a13.cn\",\"a14.cn\","
     "\"a15.cn\",\"a16.cn\",\"a17.cn\"]}}",
     GMCA_ERR_LIMIT, "san.dns: more than 16 entries"},
    {"{\"san\": {\"uri\": [\"http://x\"]}}", GMCA_ERR_INVALID, "san: unknown key \"uri\""},
    {"{\"san\": []}", GMCA_ERR_INVALID, "san: must be an object"},
    {"{\"san\": {\"dns\": \"a.cn\"}}", GMCA_ERR_INVALID, "san.dns: must be an array"},
    {"{\"san\": {\"dns\": [[\"a.cn\"]]}}", GMCA_ERR_INVALID, "san.dns[0]: must be a string"},
    {"{\"san\": {\"dns\": [{\"x\": {\"y\": 1}}]}}", GMCA_ERR_INVALID, "must be a string"},
    {"{\"san\": {\"ip\": [1]}}", GMCA_ERR_INVALID, "san.ip[0]: must be a string"},
    {"{\"identity_card_number\": 110105194912310021}", GMCA_ERR_INVALID,
     "identity_card_number: must be a string"},
    {"{\"identity_card_number\": {\"a\": [1, [2]]}}", GMCA_ERR_INVALID, "must be a string"},
    {"{\"identity_card_number\": null}", GMCA_ERR_INVALID, "must be a string"},
    {"{\"nickname\": \"x\"}", GMCA_ERR_INVALID, "subject info: unknown key \"nickname\""},
    {"{\"taxation_number\": \"110105123456789\", \"taxation_number\": \"110105123456789\"}",
     GMCA_ERR_INVALID, "duplicate"},
    {"[]", GMCA_ERR_INVALID, "top level must be an object"},
    {"\"x\"", GMCA_ERR_INVALID, "JSON"},
    {"{", GMCA_ERR_INVALID, "JSON"},
    {"{\"insurance_number\": \"a\\u0000b\"}", GMCA_ERR_INVALID, "JSON"},
    {"{} trailing", GMCA_ERR_INVALID, "JSON"},
    {"", GMCA_ERR_INVALID, "empty input"},
};

static void test_subject_info_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(si_cases) / sizeof(si_cases[0]); i++) {
                const struct si_case *c = &si_cases[i];
                struct gmca_error e;
                struct gmca_subject_info *si;

                gmca_error_clear(&e);
                si = gmca_subject_info_parse(c->json, strlen(c->json), &e);
                expect(si != NULL ? 0 : e.code, &e, c->rc, c->msg, c->json);
                gmca_subject_info_free(si);
        }
        gmca_subject_info_free(NULL);
}

/* Values are stored normalised. */
static void test_subject_info_values(void **state)
{
        static const char json[] =
            "{\"identity_card_number\": \"11010519491231002x\", "
            "\"organization_code\": \"D2143569-X\", "
            "\"san\": {\"dns\": [\"WWW.Example.GOV.cn\"], \"ip\": [\"2001:DB8:0:0:0:0:0:1\", "
            "\"192.0.2.7\"], \"email\": [\"a@b.cn\"]}}";
        struct gmca_error e;
        struct gmca_subject_info *si;
        char big[GMCA_CERT_MAX + 2];

        (void)state;
        gmca_error_clear(&e);
        assert_non_null(si = gmca_subject_info_parse(json, strlen(json), &e));
        assert_string_equal(si->pext[GMCA_PEXT_IDENTITY_CARD], "11010519491231002X");
        assert_string_equal(si->pext[GMCA_PEXT_ORG_CODE], "D2143569X");
        assert_null(si->pext[GMCA_PEXT_USCC]);
        assert_int_equal(si->ndns, 1);
        assert_string_equal(si->dns[0], "www.example.gov.cn");
        assert_int_equal(si->nip, 2);
        assert_string_equal(si->ip[0], "2001:db8::1");
        assert_string_equal(si->ip[1], "192.0.2.7");
        assert_int_equal(si->nemail, 1);
        assert_string_equal(si->email[0], "a@b.cn");
        gmca_subject_info_free(si);

        /* Size cap before parsing. */
        memset(big, ' ', sizeof(big));
        big[0] = '{';
        big[sizeof(big) - 1] = '}';
        gmca_error_clear(&e);
        si = gmca_subject_info_parse(big, sizeof(big), &e);
        expect(si ? 0 : e.code, &e, GMCA_ERR_LIMIT, "larger than 65536", "big json");
        gmca_subject_info_free(si);

        /* Deep nesting is refused (by the schema, long before jansson's own limit). */
        {
                char deep[4096];
                size_t n = 0;

                n += (size_t)snprintf(deep, sizeof(deep), "{\"san\": {\"dns\": ");
                for (int i = 0; i < 1000; i++)
                        deep[n++] = '[';
                for (int i = 0; i < 1000; i++)
                        deep[n++] = ']';
                n += (size_t)snprintf(deep + n, sizeof(deep) - n, "}}");
                gmca_error_clear(&e);
                si = gmca_subject_info_parse(deep, n, &e);
                expect(si ? 0 : e.code, &e, GMCA_ERR_INVALID, "must be a string", "deep json");
                gmca_subject_info_free(si);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_csr_files),          cmocka_unit_test(test_csr_null),
            cmocka_unit_test(test_csr_chinese),        cmocka_unit_test(test_csr_built),
            cmocka_unit_test(test_pem_variants),       cmocka_unit_test(test_cert_files),
            cmocka_unit_test(test_cert_built),         cmocka_unit_test(test_dn_table),
            cmocka_unit_test(test_dn_limits),          cmocka_unit_test(test_dn_types),
            cmocka_unit_test(test_subject_info_table), cmocka_unit_test(test_subject_info_values),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
