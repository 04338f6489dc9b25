/*
 * The public interface of include/gmca/gmca.h: a certificate issued by a
 * test CA (with an identity card number, SAN entries, key usages) read back
 * field by field and checked against values computed here with OpenSSL
 * directly; SM3 and HMAC-SM3 against GMT-REFERENCE §6 and OpenSSL, one-shot
 * and streamed; SM4-GCM sealing round trips and every kind of tampering;
 * random numbers; and hostile certificate input (garbage, every truncation,
 * trailing bytes, BER, PEM mistakes, over the cap).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gmca/gmca.h"

#include "crypto.h"
#include "x509.h"

#define ID_NUMBER "11010519491231002X"
#define NOT_BEFORE 1700000000L /* 2023-11-14T22:13:20Z */
#define NOT_AFTER 1900000000L  /* 2030-03-17T17:46:40Z */

struct fixture {
        EVP_PKEY *ca_key, *ee_key;
        X509 *ca, *ee;
        uint8_t *der;
        size_t derlen;
        char *pem;
        size_t pemlen;
};

static X509_NAME *name3(const char *c, const char *o, const char *cn)
{
        X509_NAME *n = X509_NAME_new();

        assert_non_null(n);
        assert_int_equal(
            X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8, (const unsigned char *)c, -1, -1, 0),
            1);
        assert_int_equal(
            X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)o, -1, -1, 0),
            1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        return n;
}

static int setup(void **state)
{
        static const int eku[] = {NID_client_auth, NID_email_protect};
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_subject_info info;
        struct gmca_cert_template t;
        X509_NAME *ca_name, *ee_name;
        uint8_t *der = NULL;
        BIO *b;
        char *p;
        long n;
        int len;

        assert_non_null(f);
        f->ca_key = gmca_sm2_keygen(NULL);
        f->ee_key = gmca_sm2_keygen(NULL);
        assert_non_null(f->ca_key);
        assert_non_null(f->ee_key);
        ca_name = name3("CN", "测试政务 CA", "测试 SM2 CA");
        ee_name = name3("CN", "测试单位", "张三");

        memset(&t, 0, sizeof(t));
        t.subject = ca_name;
        t.pubkey = f->ca_key;
        t.issuer_key = f->ca_key;
        memset(t.serial, 0x11, sizeof(t.serial));
        t.not_before = NOT_BEFORE;
        t.not_after = NOT_AFTER + 1000;
        t.ca = 1;
        t.path_len = 0;
        t.key_usage = X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN;
        f->ca = gmca_cert_build(&t, NULL);
        assert_non_null(f->ca);

        memset(&info, 0, sizeof(info));
        info.pext[GMCA_PEXT_IDENTITY_CARD] = (char *)ID_NUMBER;
        info.email[0] = (char *)"zhang@example.gov.cn";
        info.nemail = 1;
        info.dns[0] = (char *)"zhang.example.gov.cn";
        info.ndns = 1;
        info.ip[0] = (char *)"192.0.2.7";
        info.nip = 1;
        memset(&t, 0, sizeof(t));
        t.subject = ee_name;
        t.pubkey = f->ee_key;
        t.issuer = f->ca;
        t.issuer_key = f->ca_key;
        for (int i = 0; i < GMCA_SERIAL_LEN; i++)
                t.serial[i] = (uint8_t)(0x3a + i);
        t.not_before = NOT_BEFORE;
        t.not_after = NOT_AFTER;
        t.path_len = -1;
        t.key_usage = X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_NON_REPUDIATION;
        t.eku = eku;
        t.neku = 2;
        t.info = &info;
        f->ee = gmca_cert_build(&t, NULL);
        assert_non_null(f->ee);
        X509_NAME_free(ca_name);
        X509_NAME_free(ee_name);

        assert_true((len = i2d_X509(f->ee, &der)) > 0);
        f->der = der;
        f->derlen = (size_t)len;
        assert_non_null(b = BIO_new(BIO_s_mem()));
        assert_int_equal(PEM_write_bio_X509(b, f->ee), 1);
        n = BIO_get_mem_data(b, &p);
        assert_non_null(f->pem = malloc((size_t)n));
        memcpy(f->pem, p, (size_t)n);
        f->pemlen = (size_t)n;
        BIO_free(b);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        X509_free(f->ca);
        X509_free(f->ee);
        EVP_PKEY_free(f->ca_key);
        EVP_PKEY_free(f->ee_key);
        OPENSSL_free(f->der);
        free(f->pem);
        free(f);
        return 0;
}

static void hex_of(const uint8_t *in, size_t len, char *out)
{
        for (size_t i = 0; i < len; i++)
                snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void check_fields(struct fixture *f, const struct gmca_certificate *c)
{
        const struct gmca_certificate_info *i = gmca_certificate_info(c);
        uint8_t md[32], *spki = NULL, pub[65];
        char hex[200];
        const uint8_t *der;
        size_t derlen = 0, publen = 0;
        int spkilen;

        assert_non_null(i);
        assert_int_equal(i->version, 3);
        assert_string_equal(i->serial, "3A3B3C3D3E3F40414243444546474849");
        /* Subject and issuer, attribute by attribute. */
        assert_int_equal(i->subject.count, 3);
        assert_string_equal(i->subject.attributes[0].type, "C");
        assert_string_equal(i->subject.attributes[0].oid, "2.5.4.6");
        assert_string_equal(i->subject.attributes[0].value, "CN");
        assert_string_equal(i->subject.attributes[1].type, "O");
        assert_string_equal(i->subject.attributes[1].value, "测试单位");
        assert_string_equal(i->subject.attributes[2].type, "CN");
        assert_string_equal(i->subject.attributes[2].oid, "2.5.4.3");
        assert_string_equal(i->subject.attributes[2].value, "张三");
        assert_string_equal(i->subject.text, "C=CN, O=测试单位, CN=张三");
        assert_int_equal(i->issuer.count, 3);
        assert_string_equal(i->issuer.attributes[2].value, "测试 SM2 CA");
        assert_string_equal(i->issuer.text, "C=CN, O=测试政务 CA, CN=测试 SM2 CA");
        assert_string_equal(gmca_certificate_subject_attribute(c, "CN"), "张三");
        assert_string_equal(gmca_certificate_subject_attribute(c, "2.5.4.10"), "测试单位");
        assert_null(gmca_certificate_subject_attribute(c, "OU"));
        /* Validity. */
        assert_int_equal(i->not_before, NOT_BEFORE);
        assert_int_equal(i->not_after, NOT_AFTER);
        assert_string_equal(i->not_before_text, "2023-11-14T22:13:20Z");
        assert_string_equal(i->not_after_text, "2030-03-17T17:46:40Z");
        assert_string_equal(i->signature_algorithm, "1.2.156.10197.1.501");
        /* Usages and constraints. */
        assert_true(i->has_key_usage);
        assert_int_equal(i->key_usage, GMCA_KU_DIGITAL_SIGNATURE | GMCA_KU_NON_REPUDIATION);
        assert_true(i->key_usage_critical);
        assert_int_equal(i->ext_key_usage_count, 2);
        assert_string_equal(i->ext_key_usage[0].oid, "1.3.6.1.5.5.7.3.2");
        assert_string_equal(i->ext_key_usage[0].name, "clientAuth");
        assert_string_equal(i->ext_key_usage[1].oid, "1.3.6.1.5.5.7.3.4");
        assert_true(i->has_basic_constraints);
        assert_false(i->is_ca);
        assert_int_equal(i->path_len, -1);
        /* GM/T 0015 private extension and alternative names. */
        assert_int_equal(i->private_extension_count, 1);
        assert_string_equal(i->private_extensions[0].name, "identity_card_number");
        assert_string_equal(i->private_extensions[0].oid, "1.2.156.10260.4.1.1");
        assert_string_equal(i->private_extensions[0].value, ID_NUMBER);
        assert_string_equal(gmca_certificate_private_extension(c, "1.2.156.10260.4.1.1"),
                            ID_NUMBER);
        assert_string_equal(gmca_certificate_private_extension(c, "identity_card_number"),
                            ID_NUMBER);
        assert_null(gmca_certificate_private_extension(c, "taxation_number"));
        assert_int_equal(i->alt_name_count, 3);
        for (size_t k = 0; k < i->alt_name_count; k++) {
                const struct gmca_alt_name *a = &i->alt_names[k];

                if (strcmp(a->kind, "dns") == 0)
                        assert_string_equal(a->value, "zhang.example.gov.cn");
                else if (strcmp(a->kind, "ip") == 0)
                        assert_string_equal(a->value, "192.0.2.7");
                else if (strcmp(a->kind, "email") == 0)
                        assert_string_equal(a->value, "zhang@example.gov.cn");
                else
                        fail_msg("unexpected alt name kind %s", a->kind);
        }
        /* DER, fingerprints and key, computed here without the library. */
        der = gmca_certificate_der(c, &derlen);
        assert_int_equal(derlen, f->derlen);
        assert_memory_equal(der, f->der, derlen);
        assert_int_equal(EVP_Digest(f->der, f->derlen, md, NULL, EVP_sm3(), NULL), 1);
        hex_of(md, 32, hex);
        assert_string_equal(i->fingerprint, hex);
        assert_true((spkilen = i2d_PUBKEY(f->ee_key, &spki)) > 0);
        assert_int_equal(EVP_Digest(spki, (size_t)spkilen, md, NULL, EVP_sm3(), NULL), 1);
        OPENSSL_free(spki);
        hex_of(md, 32, hex);
        assert_string_equal(i->public_key_fingerprint, hex);
        assert_int_equal(EVP_PKEY_get_octet_string_param(f->ee_key, "encoded-pub-key", pub,
                                                         sizeof(pub), &publen),
                         1);
        assert_int_equal(publen, 65);
        hex_of(pub, publen, hex);
        assert_string_equal(i->public_key, hex);
}

static void test_parse_der_and_pem(void **state)
{
        struct fixture *f = *state;
        struct gmca_certificate *c;
        struct gmca_status st;

        c = gmca_certificate_parse(f->der, f->derlen, &st);
        if (c == NULL)
                fail_msg("DER: %s", st.message);
        assert_int_equal(st.code, 0);
        assert_string_equal(st.message, "");
        check_fields(f, c);
        gmca_certificate_free(c);

        c = gmca_certificate_parse(f->pem, f->pemlen, &st);
        if (c == NULL)
                fail_msg("PEM: %s", st.message);
        check_fields(f, c);
        gmca_certificate_free(c);
}

static void test_parse_ca(void **state)
{
        struct fixture *f = *state;
        const struct gmca_certificate_info *i;
        struct gmca_certificate *c;
        uint8_t *der = NULL;
        int len = i2d_X509(f->ca, &der);

        assert_true(len > 0);
        c = gmca_certificate_parse(der, (size_t)len, NULL);
        OPENSSL_free(der);
        assert_non_null(c);
        i = gmca_certificate_info(c);
        assert_true(i->is_ca);
        assert_int_equal(i->path_len, 0);
        assert_int_equal(i->key_usage, GMCA_KU_KEY_CERT_SIGN | GMCA_KU_CRL_SIGN);
        assert_int_equal(i->private_extension_count, 0);
        assert_int_equal(i->alt_name_count, 0);
        assert_int_equal(i->ext_key_usage_count, 0);
        assert_string_equal(i->serial, "11111111111111111111111111111111");
        gmca_certificate_free(c);
        gmca_certificate_free(NULL);
        assert_null(gmca_certificate_info(NULL));
}

/* Must fail with code, and the message must contain what. */
static void refused(const void *buf, size_t len, int code, const char *what)
{
        struct gmca_status st;
        struct gmca_certificate *c = gmca_certificate_parse(buf, len, &st);

        if (c != NULL)
                fail_msg("accepted: %s", what);
        if (st.code != code)
                fail_msg("%s: code %d (%s), want %d", what, st.code, st.message, code);
        if (strstr(st.message, what) == NULL)
                fail_msg("message \"%s\" lacks \"%s\"", st.message, what);
}

static void test_bad_input(void **state)
{
        struct fixture *f = *state;
        uint8_t *buf = malloc(GMCA_CERTIFICATE_MAX + 1);
        static const char garbage[] = "this is not a certificate at all";

        assert_non_null(buf);
        refused(garbage, sizeof(garbage), GMCA_RC_INVALID, "malformed or truncated DER");
        refused("  -x", 4, GMCA_RC_INVALID, "not DER and no PEM BEGIN line");
        refused(NULL, 0, GMCA_RC_INVALID, "empty input");
        refused(NULL, 5, GMCA_RC_INVALID, "no input");
        /* Every truncation of the DER. */
        for (size_t n = 1; n < f->derlen; n++) {
                struct gmca_status st;

                assert_null(gmca_certificate_parse(f->der, n, &st));
                assert_int_equal(st.code, GMCA_RC_INVALID);
        }
        refused(f->der, f->derlen - 1, GMCA_RC_INVALID, "malformed or truncated DER");
        /* Trailing bytes. */
        memcpy(buf, f->der, f->derlen);
        buf[f->derlen] = 0;
        refused(buf, f->derlen + 1, GMCA_RC_INVALID, "trailing bytes after DER");
        /* BER: the outer length in long form where the short or shorter form fits. */
        assert_int_equal(f->der[1], 0x82);
        buf[0] = 0x30;
        buf[1] = 0x83;
        buf[2] = 0;
        memcpy(buf + 3, f->der + 2, f->derlen - 2);
        refused(buf, f->derlen + 1, GMCA_RC_INVALID, "X.509");
        /* PEM: two blocks, and a wrong label. */
        memcpy(buf, f->pem, f->pemlen);
        memcpy(buf + f->pemlen, f->pem, f->pemlen);
        refused(buf, 2 * f->pemlen, GMCA_RC_INVALID, "more than one PEM block");
        memcpy(buf, f->pem, f->pemlen);
        memcpy(buf + 11, "X509 CRL---", 11);
        refused(buf, f->pemlen, GMCA_RC_INVALID, "PEM label");
        /* Over the cap. */
        memset(buf, 0x30, GMCA_CERTIFICATE_MAX + 1);
        refused(buf, GMCA_CERTIFICATE_MAX + 1, GMCA_RC_LIMIT, "larger than");
        /* A missing file. */
        {
                struct gmca_status st;

                assert_null(gmca_certificate_load("/nonexistent/cert.pem", &st));
                assert_int_not_equal(st.code, 0);
                assert_null(gmca_certificate_load(NULL, &st));
                assert_int_equal(st.code, GMCA_RC_INVALID);
        }
        free(buf);
}

static void test_sm3(void **state)
{
        static const char abc_hex[] =
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        static const char abcd16_hex[] =
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732";
        struct gmca_sm3_stream *s;
        struct gmca_status st;
        uint8_t md[GMCA_SM3_DIGEST_SIZE], md2[GMCA_SM3_DIGEST_SIZE], ref[EVP_MAX_MD_SIZE];
        char msg[64], hex[65];
        unsigned reflen = 0;
        static const uint8_t key[] =
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX";

        (void)state;
        assert_int_equal(gmca_sm3_digest("abc", 3, md, &st), 0);
        hex_of(md, sizeof(md), hex);
        assert_string_equal(hex, abc_hex);
        for (int i = 0; i < 16; i++)
                memcpy(msg + 4 * i, "abcd", 4);
        assert_int_equal(gmca_sm3_digest(msg, sizeof(msg), md, &st), 0);
        hex_of(md, sizeof(md), hex);
        assert_string_equal(hex, abcd16_hex);
        /* Streamed in uneven pieces. */
        assert_non_null(s = gmca_sm3_stream_new(NULL, 0, &st));
        assert_int_equal(gmca_sm3_stream_update(s, msg, 3, &st), 0);
        assert_int_equal(gmca_sm3_stream_update(s, msg + 3, 0, &st), 0);
        assert_int_equal(gmca_sm3_stream_update(s, msg + 3, 61, &st), 0);
        assert_int_equal(gmca_sm3_stream_final(s, md2, &st), 0);
        assert_memory_equal(md, md2, sizeof(md));
        assert_int_equal(gmca_sm3_stream_update(s, msg, 1, &st), GMCA_RC_INVALID);
        assert_int_equal(gmca_sm3_stream_final(s, md2, &st), GMCA_RC_INVALID);
        gmca_sm3_stream_free(s);
        /* HMAC-SM3 against OpenSSL's HMAC, with a key longer than the block. */
        assert_non_null(
            HMAC(EVP_sm3(), key, sizeof(key), (const uint8_t *)msg, sizeof(msg), ref, &reflen));
        assert_int_equal(reflen, 32);
        assert_int_equal(gmca_sm3_hmac(key, sizeof(key), msg, sizeof(msg), md, &st), 0);
        assert_memory_equal(md, ref, 32);
        assert_non_null(s = gmca_sm3_stream_new(key, sizeof(key), &st));
        assert_int_equal(gmca_sm3_stream_update(s, msg, 10, &st), 0);
        assert_int_equal(gmca_sm3_stream_update(s, msg + 10, 54, &st), 0);
        assert_int_equal(gmca_sm3_stream_final(s, md2, &st), 0);
        assert_memory_equal(md2, ref, 32);
        gmca_sm3_stream_free(s);
        gmca_sm3_stream_free(NULL);
        /* Missing input. */
        assert_int_equal(gmca_sm3_digest(NULL, 1, md, &st), GMCA_RC_INVALID);
        assert_null(gmca_sm3_stream_new(NULL, 4, &st));
        assert_int_equal(st.code, GMCA_RC_INVALID);
        assert_int_equal(gmca_sm3_digest(NULL, 0, md, NULL), 0);
        assert_int_equal(gmca_sm3_digest("", 0, md2, NULL), 0);
        assert_memory_equal(md, md2, 32);
}

static void test_sm4(void **state)
{
        static const uint8_t key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                        0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
        static const char text[] = "电子政务 SM4-GCM sealed message";
        uint8_t key2[16], *sealed = NULL, *sealed2 = NULL, *opened = NULL;
        size_t slen = 0, slen2 = 0, olen = 0;
        struct gmca_status st;

        (void)state;
        assert_int_equal(gmca_sm4_seal(key, "aad", 3, text, sizeof(text), &sealed, &slen, &st), 0);
        assert_int_equal(slen, sizeof(text) + GMCA_SM4_SEAL_OVERHEAD);
        assert_int_equal(gmca_sm4_open(key, "aad", 3, sealed, slen, &opened, &olen, &st), 0);
        assert_int_equal(olen, sizeof(text));
        assert_memory_equal(opened, text, olen);
        gmca_buffer_free(opened, olen);
        /* A fresh IV each time. */
        assert_int_equal(gmca_sm4_seal(key, "aad", 3, text, sizeof(text), &sealed2, &slen2, &st),
                         0);
        assert_memory_not_equal(sealed, sealed2, GMCA_SM4_IV_SIZE);
        gmca_buffer_free(sealed2, slen2);
        /* Any flipped bit, in IV, ciphertext or tag, is refused and returns nothing. */
        for (size_t i = 0; i < slen; i++) {
                opened = NULL;
                sealed[i] ^= 0x01;
                assert_int_equal(gmca_sm4_open(key, "aad", 3, sealed, slen, &opened, &olen, &st),
                                 GMCA_RC_VERIFY);
                assert_null(opened);
                sealed[i] ^= 0x01;
        }
        assert_non_null(strstr(st.message, "authentication failed"));
        /* Wrong associated data, wrong key, truncation. */
        assert_int_equal(gmca_sm4_open(key, "aaD", 3, sealed, slen, &opened, &olen, &st),
                         GMCA_RC_VERIFY);
        assert_int_equal(gmca_sm4_open(key, NULL, 0, sealed, slen, &opened, &olen, &st),
                         GMCA_RC_VERIFY);
        memcpy(key2, key, 16);
        key2[15] ^= 0x80;
        assert_int_equal(gmca_sm4_open(key2, "aad", 3, sealed, slen, &opened, &olen, &st),
                         GMCA_RC_VERIFY);
        assert_int_equal(gmca_sm4_open(key, "aad", 3, sealed, slen - 1, &opened, &olen, &st),
                         GMCA_RC_VERIFY);
        assert_int_equal(
            gmca_sm4_open(key, "aad", 3, sealed, GMCA_SM4_SEAL_OVERHEAD - 1, &opened, &olen, &st),
            GMCA_RC_INVALID);
        gmca_buffer_free(sealed, slen);
        /* The empty message still carries IV and tag, and is authenticated. */
        assert_int_equal(gmca_sm4_seal(key, NULL, 0, NULL, 0, &sealed, &slen, &st), 0);
        assert_int_equal(slen, GMCA_SM4_SEAL_OVERHEAD);
        assert_int_equal(gmca_sm4_open(key, NULL, 0, sealed, slen, &opened, &olen, &st), 0);
        assert_int_equal(olen, 0);
        gmca_buffer_free(opened, olen);
        sealed[slen - 1] ^= 1;
        assert_int_equal(gmca_sm4_open(key, NULL, 0, sealed, slen, &opened, &olen, &st),
                         GMCA_RC_VERIFY);
        gmca_buffer_free(sealed, slen);
        assert_int_equal(gmca_sm4_seal(NULL, NULL, 0, text, 1, &sealed, &slen, &st),
                         GMCA_RC_INVALID);
        assert_int_equal(
            gmca_sm4_seal(key, NULL, 0, text, GMCA_SM4_SEAL_MAX + 1, &sealed, &slen, &st),
            GMCA_RC_LIMIT);
}

static void test_random(void **state)
{
        uint8_t a[32], b[32], zero[32];
        struct gmca_status st;

        (void)state;
        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        memset(zero, 0, sizeof(zero));
        assert_int_equal(gmca_random_bytes(a, sizeof(a), &st), 0);
        assert_int_equal(gmca_random_bytes(b, sizeof(b), &st), 0);
        assert_memory_not_equal(a, zero, sizeof(a));
        assert_memory_not_equal(a, b, sizeof(a));
        assert_int_equal(gmca_random_bytes(NULL, 0, &st), 0);
        assert_int_equal(gmca_random_bytes(NULL, 1, &st), GMCA_RC_INVALID);
        assert_string_equal(gmca_rc_name(GMCA_RC_VERIFY), "verification failed");
        assert_non_null(gmca_rc_name(12345));
        assert_string_equal(gmca_library_version(), "0.1.0");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_der_and_pem),
            cmocka_unit_test(test_parse_ca),
            cmocka_unit_test(test_bad_input),
            cmocka_unit_test(test_sm3),
            cmocka_unit_test(test_sm4),
            cmocka_unit_test(test_random),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
