/*
 * Keys in a crypto device through the public interface (include/gmca/
 * message.h, gmca_token_*): a key generated in the software device gets a
 * certificate; SignedData, SignedAndEnvelopedData and raw SM2 signatures
 * made through a token credential verify with gmca_message_verify and
 * gmca_sm2_raw_verify. Refused: a wrong PIN, an empty or out-of-range
 * index, an index opened twice, a certificate of another key, a key file
 * and a token key together, decryption with a token key. Every case runs on
 * the built-in device and on libgmca-softsdf.so through dlopen
 * (GMCA_SOFTSDF_LIB).
 */
#define _GNU_SOURCE /* nftw */
#include <ftw.h>
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

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gmca/message.h"

#include "crypto.h"
#include "device.h"
#include "x509.h"

#define PIN "token key pin 1"
#define PIN2 "token key pin 2"
#define TOKEN_INDEX 3
#define OTHER_INDEX 7
#define EMPTY_INDEX 9

struct backend {
        const char *name;
        int shared;
};

static const struct backend builtin = {"built-in", 0};
static const struct backend shared = {"libgmca-softsdf.so", 1};

/* A certificate as PEM and DER, and a key file for the parties that have one.
 */
struct party {
        char *cert_pem, *key_pem;
        size_t cert_len, key_len;
        uint8_t *cert_der;
        size_t cert_der_len;
};

struct fx {
        const struct backend *b;
        char base[64];
        char dir[128];
        EVP_PKEY *ca_key;
        X509 *ca;
        struct party tok;   /* the certificate of the key at TOKEN_INDEX */
        struct party other; /* the certificate of the key at OTHER_INDEX */
        struct party enc;   /* a recipient with a key file */
        struct gmca_token *t;
        time_t now; /* one clock reading: a leaf made a second later must not outlive its CA */
};

static const char DATA[] = "令牌签名 GM/T 0018 SDF";
#define DLEN (sizeof(DATA) - 1)

static char *bio_text(BIO *b, size_t *len)
{
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        char *out = malloc((size_t)n + 1);

        assert_non_null(out);
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
        return out;
}

/* A certificate for key (keyfile: also its PEM key) issued by f->ca, or
 * self-signed. */
static X509 *make(struct fx *f, struct party *p, const char *cn, EVP_PKEY *key, unsigned ku,
                  uint8_t serial, int keyfile)
{
        struct gmca_cert_template t;
        struct gmca_error e = {0};
        X509_NAME *name = X509_NAME_new();
        BIO *b;
        X509 *x;
        int n;

        assert_non_null(name);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = key;
        t.issuer = f->ca;
        t.issuer_key = f->ca_key;
        memset(t.serial, serial, sizeof(t.serial));
        t.serial[0] &= 0x7f;
        t.not_before = f->now - 60;
        t.not_after = f->now + 86400;
        t.ca = f->ca == NULL;
        t.path_len = -1;
        t.key_usage = ku;
        if ((x = gmca_cert_build(&t, &e)) == NULL)
                fail_msg("certificate %s: %s", cn, e.msg);
        X509_NAME_free(name);
        if (p == NULL)
                return x;
        assert_non_null(b = BIO_new(BIO_s_mem()));
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        p->cert_pem = bio_text(b, &p->cert_len);
        BIO_free(b);
        if (keyfile) {
                assert_non_null(b = BIO_new(BIO_s_mem()));
                assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
                p->key_pem = bio_text(b, &p->key_len);
                BIO_free(b);
        }
        assert_true((n = i2d_X509(x, &p->cert_der)) > 0);
        p->cert_der_len = (size_t)n;
        return x;
}

static void party_free(struct party *p)
{
        free(p->cert_pem);
        free(p->key_pem);
        OPENSSL_free(p->cert_der);
}

/* Keys at TOKEN_INDEX and OTHER_INDEX made with the device layer, and their
 * certificates. */
static void make_keys(struct fx *f)
{
        struct gmca_device_conf conf = {NULL, f->dir};
        struct gmca_error e = {0};
        struct gmca_device *d;
        EVP_PKEY *pub, *enc;

        if ((d = gmca_device_open(&conf, &e)) == NULL)
                fail_msg("device: %s", e.msg);
        if (gmca_device_generate_key(d, TOKEN_INDEX, (const uint8_t *)PIN, strlen(PIN), &e) != 0 ||
            gmca_device_generate_key(d, OTHER_INDEX, (const uint8_t *)PIN2, strlen(PIN2), &e) != 0)
                fail_msg("generate: %s", e.msg);
        assert_non_null(pub = gmca_device_public_key(d, TOKEN_INDEX, &e));
        X509_free(make(f, &f->tok, "令牌用户", pub, X509v3_KU_DIGITAL_SIGNATURE, 0x22, 0));
        EVP_PKEY_free(pub);
        assert_non_null(pub = gmca_device_public_key(d, OTHER_INDEX, &e));
        X509_free(make(f, &f->other, "其他", pub, X509v3_KU_DIGITAL_SIGNATURE, 0x33, 0));
        EVP_PKEY_free(pub);
        gmca_device_close(d);
        assert_non_null(enc = gmca_sm2_keygen(NULL));
        X509_free(make(f, &f->enc, "加密", enc, X509v3_KU_KEY_ENCIPHERMENT, 0x44, 1));
        EVP_PKEY_free(enc);
}

static const char *library(const struct fx *f)
{
        return f->b->shared ? getenv("GMCA_SOFTSDF_LIB") : NULL;
}

static int setup(void **state)
{
        const struct backend *b = *state;
        struct gmca_status st;
        struct fx *f;

        if (b->shared && getenv("GMCA_SOFTSDF_LIB") == NULL) {
                fprintf(stderr, "GMCA_SOFTSDF_LIB not set: run through ctest\n");
                return -1;
        }
        if ((f = calloc(1, sizeof(*f))) == NULL)
                return -1;
        f->b = b;
        f->now = time(NULL);
        snprintf(f->base, sizeof(f->base), "/tmp/gmca-test-token.XXXXXX");
        if (mkdtemp(f->base) == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/store", f->base);
        if ((f->ca_key = gmca_sm2_keygen(NULL)) == NULL)
                return -1;
        f->ca = make(f, NULL, "CA", f->ca_key, X509v3_KU_KEY_CERT_SIGN, 0x11, 0);
        make_keys(f);
        if ((f->t = gmca_token_open(library(f), f->dir, &st)) == NULL) {
                fprintf(stderr, "token: %s\n", st.message);
                return -1;
        }
        *state = f;
        return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(path) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        gmca_token_close(f->t);
        party_free(&f->tok);
        party_free(&f->other);
        party_free(&f->enc);
        X509_free(f->ca);
        EVP_PKEY_free(f->ca_key);
        if (nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
                fprintf(stderr, "could not remove %s\n", f->base);
        free(f);
        return 0;
}

static void expect_rc(int rc, const struct gmca_status *st, int want, const char *msg,
                      const char *what)
{
        if (rc != want)
                fail_msg("%s: rc %d (want %d): %s", what, rc, want, st->message);
        if (want != 0 && st->message[0] == '\0')
                fail_msg("%s: no cause given", what);
        if (msg != NULL && strstr(st->message, msg) == NULL)
                fail_msg("%s: \"%s\" lacks \"%s\"", what, st->message, msg);
}

static struct gmca_token_key *key_open(struct fx *f, unsigned index, const char *pin)
{
        struct gmca_status st;
        struct gmca_token_key *k = gmca_token_key_open(f->t, index, pin, strlen(pin), &st);

        if (k == NULL)
                fail_msg("%s: open key %u: %s", f->b->name, index, st.message);
        assert_int_equal(st.code, 0);
        return k;
}

/* SignedData through the token in three forms, each verified by the public
 * verifier. */
static void test_sign(void **state)
{
        static const struct gmca_sign_options forms[] = {
            {0, NULL, 0},
            {GMCA_SIGN_DETACHED | GMCA_SIGN_NO_ATTRIBUTES, NULL, 0},
            {GMCA_SIGN_SM2_WITH_SM3 | GMCA_SIGN_NO_CERTIFICATE, "ALICE123@YAHOO.COM", 1704164645},
        };
        struct fx *f = *state;
        struct gmca_token_key *k = key_open(f, TOKEN_INDEX, PIN);
        struct gmca_credential c = {
            .certificate = f->tok.cert_pem, .certificate_len = f->tok.cert_len, .token_key = k};
        struct gmca_bytes cert = {f->tok.cert_der, f->tok.cert_der_len};
        struct gmca_certificate *parsed;
        struct gmca_message *m = NULL;
        struct gmca_status st;
        uint8_t *msg = NULL;
        size_t len = 0;

        assert_non_null(parsed = gmca_certificate_parse(f->tok.cert_der, f->tok.cert_der_len, &st));
        assert_string_equal(gmca_token_key_public_key(k),
                            gmca_certificate_info(parsed)->public_key);
        gmca_certificate_free(parsed);
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                const struct gmca_sign_options *o = &forms[i];
                int det = (o->flags & GMCA_SIGN_DETACHED) != 0;

                expect_rc(gmca_message_sign(&c, o, DATA, DLEN, &msg, &len, &st), &st, 0, NULL,
                          "sign");
                expect_rc(gmca_message_verify(msg, len, det ? DATA : NULL, det ? DLEN : 0, &cert, 1,
                                              o->id, &m, &st),
                          &st, 0, NULL, "verify");
                assert_memory_equal(gmca_message_info(m)->content, DATA, DLEN);
                assert_string_equal(
                    gmca_certificate_subject_attribute(gmca_message_info(m)->signer, "CN"),
                    "令牌用户");
                if (o->signing_time != 0)
                        assert_int_equal(gmca_message_info(m)->signing_time, o->signing_time);
                gmca_message_free(m);
                m = NULL;
                /* Under another ID, or over other content, it does not verify. */
                expect_rc(gmca_message_verify(msg, len, det ? DATA : NULL, det ? DLEN : 0, &cert, 1,
                                              o->id != NULL ? NULL : "1234567812345679", &m, &st),
                          &st, GMCA_RC_VERIFY, NULL, "other ID");
                if (det)
                        expect_rc(
                            gmca_message_verify(msg, len, DATA, DLEN - 1, &cert, 1, o->id, &m, &st),
                            &st, GMCA_RC_VERIFY, NULL, "other content");
                assert_null(m);
                gmca_buffer_free(msg, len);
        }
        gmca_token_key_free(k);
}

static void test_sign_encrypt(void **state)
{
        struct fx *f = *state;
        struct gmca_token_key *k = key_open(f, TOKEN_INDEX, PIN);
        struct gmca_credential s = {
            .certificate = f->tok.cert_der, .certificate_len = f->tok.cert_der_len, .token_key = k};
        struct gmca_credential r = {.certificate = f->enc.cert_pem,
                                    .certificate_len = f->enc.cert_len,
                                    .private_key = f->enc.key_pem,
                                    .private_key_len = f->enc.key_len};
        struct gmca_bytes to = {f->enc.cert_pem, f->enc.cert_len};
        struct gmca_message *m = NULL;
        struct gmca_status st;
        uint8_t *msg = NULL;
        size_t len = 0;

        expect_rc(gmca_message_sign_encrypt(&s, NULL, &to, 1, DATA, DLEN, &msg, &len, &st), &st, 0,
                  NULL, "sign and encrypt");
        expect_rc(gmca_message_decrypt_verify(&r, msg, len, NULL, 0, NULL, &m, &st), &st, 0, NULL,
                  "decrypt and verify");
        assert_memory_equal(gmca_message_info(m)->content, DATA, DLEN);
        assert_string_equal(gmca_certificate_subject_attribute(gmca_message_info(m)->signer, "CN"),
                            "令牌用户");
        gmca_message_free(m);
        m = NULL;
        /* A token key does not decrypt: SDF ECC decryption is not in the device
         * layer. */
        r.private_key = NULL;
        r.private_key_len = 0;
        r.token_key = k;
        expect_rc(gmca_message_decrypt_verify(&r, msg, len, NULL, 0, NULL, &m, &st), &st,
                  GMCA_RC_INVALID, "needs a key file", "decrypt with a token key");
        assert_null(m);
        gmca_buffer_free(msg, len);
        gmca_token_key_free(k);
}

static void test_raw(void **state)
{
        struct fx *f = *state;
        struct gmca_token_key *k = key_open(f, TOKEN_INDEX, PIN);
        struct gmca_credential c = {.token_key = k};
        struct gmca_status st;
        uint8_t *sig = NULL, *pt = NULL;
        size_t siglen = 0, ptlen = 0;

        /* Without a certificate (the token's own public key gives Z), then with one.
         */
        for (int with_cert = 0; with_cert < 2; with_cert++) {
                c.certificate = with_cert ? f->tok.cert_pem : NULL;
                c.certificate_len = with_cert ? f->tok.cert_len : 0;
                expect_rc(gmca_sm2_raw_sign(&c, NULL, DATA, DLEN, &sig, &siglen, &st), &st, 0, NULL,
                          "raw sign");
                expect_rc(gmca_sm2_raw_verify(f->tok.cert_der, f->tok.cert_der_len, NULL, DATA,
                                              DLEN, sig, siglen, &st),
                          &st, 0, NULL, "raw verify");
                expect_rc(gmca_sm2_raw_verify(f->other.cert_der, f->other.cert_der_len, NULL, DATA,
                                              DLEN, sig, siglen, &st),
                          &st, GMCA_RC_VERIFY, NULL, "raw verify, another key");
                gmca_buffer_free(sig, siglen);
        }
        expect_rc(gmca_sm2_raw_sign(&c, "ALICE123@YAHOO.COM", DATA, DLEN, &sig, &siglen, &st), &st,
                  0, NULL, "raw sign with an ID");
        expect_rc(gmca_sm2_raw_verify(f->tok.cert_der, f->tok.cert_der_len, "ALICE123@YAHOO.COM",
                                      DATA, DLEN, sig, siglen, &st),
                  &st, 0, NULL, "raw verify with the ID");
        expect_rc(gmca_sm2_raw_verify(f->tok.cert_der, f->tok.cert_der_len, NULL, DATA, DLEN, sig,
                                      siglen, &st),
                  &st, GMCA_RC_VERIFY, NULL, "raw verify, default ID");
        expect_rc(gmca_sm2_raw_decrypt(&c, GMCA_SM2_CIPHER_DER, sig, siglen, &pt, &ptlen, &st), &st,
                  GMCA_RC_INVALID, "needs a key file", "raw decrypt with a token key");
        gmca_buffer_free(sig, siglen);
        gmca_token_key_free(k);
}

/* The key of the token and the certificate of another key do not sign. */
static void test_wrong_certificate(void **state)
{
        struct fx *f = *state;
        struct gmca_token_key *k = key_open(f, TOKEN_INDEX, PIN);
        struct gmca_credential c = {
            .certificate = f->other.cert_pem, .certificate_len = f->other.cert_len, .token_key = k};
        struct gmca_bytes to = {f->enc.cert_pem, f->enc.cert_len};
        struct gmca_status st;
        uint8_t *out = NULL;
        size_t len = 0;

        expect_rc(gmca_message_sign(&c, NULL, DATA, DLEN, &out, &len, &st), &st, GMCA_RC_INVALID,
                  "does not belong to the credential's certificate", "SignedData");
        expect_rc(gmca_message_sign_encrypt(&c, NULL, &to, 1, DATA, DLEN, &out, &len, &st), &st,
                  GMCA_RC_INVALID, "does not belong", "SignedAndEnvelopedData");
        expect_rc(gmca_sm2_raw_sign(&c, NULL, DATA, DLEN, &out, &len, &st), &st, GMCA_RC_INVALID,
                  "does not belong", "raw");
        assert_null(out);
        /* A key file and a token key at once. */
        c.certificate = f->tok.cert_pem;
        c.certificate_len = f->tok.cert_len;
        c.private_key = f->enc.key_pem;
        c.private_key_len = f->enc.key_len;
        expect_rc(gmca_message_sign(&c, NULL, DATA, DLEN, &out, &len, &st), &st, GMCA_RC_INVALID,
                  "both given", "file and token");
        /* A token credential without a certificate makes no SignedData. */
        c.private_key = NULL;
        c.private_key_len = 0;
        c.certificate = NULL;
        c.certificate_len = 0;
        expect_rc(gmca_message_sign(&c, NULL, DATA, DLEN, &out, &len, &st), &st, GMCA_RC_INVALID,
                  "no certificate", "no certificate");
        assert_null(out);
        gmca_token_key_free(k);
}

static void test_key_refusals(void **state)
{
        struct fx *f = *state;
        struct gmca_token_key *k;
        struct gmca_status st;

        k = gmca_token_key_open(f->t, TOKEN_INDEX, PIN2, strlen(PIN2), &st);
        assert_null(k);
        expect_rc(st.code, &st, GMCA_RC_AUTH, "wrong key password", "wrong PIN");
        k = gmca_token_key_open(f->t, TOKEN_INDEX, PIN, 0, &st);
        assert_null(k);
        expect_rc(st.code, &st, GMCA_RC_INVALID, NULL, "empty PIN");
        k = gmca_token_key_open(f->t, EMPTY_INDEX, PIN, strlen(PIN), &st);
        assert_null(k);
        expect_rc(st.code, &st, GMCA_RC_NOTFOUND, "no key at this index", "empty index");
        k = gmca_token_key_open(f->t, GMCA_TOKEN_INDEX_MAX + 1, PIN, strlen(PIN), &st);
        assert_null(k);
        expect_rc(st.code, &st, GMCA_RC_INVALID, "not in 1..", "index out of range");
        k = gmca_token_key_open(f->t, 0, PIN, strlen(PIN), &st);
        assert_null(k);
        expect_rc(st.code, &st, GMCA_RC_INVALID, "not in 1..", "index 0");
        k = key_open(f, TOKEN_INDEX, PIN);
        assert_null(gmca_token_key_open(f->t, TOKEN_INDEX, PIN, strlen(PIN), &st));
        expect_rc(st.code, &st, GMCA_RC_INVALID, "already open", "opened twice");
        gmca_token_key_free(k);
        /* Freed, it opens again; the other key opens with its own PIN. */
        gmca_token_key_free(key_open(f, TOKEN_INDEX, PIN));
        gmca_token_key_free(key_open(f, OTHER_INDEX, PIN2));
        gmca_token_key_free(NULL);
        assert_string_equal(gmca_token_key_public_key(NULL), "");
}

/* A token closed before its key: the key keeps the session until it is freed.
 */
static void test_close_order(void **state)
{
        struct fx *f = *state;
        struct gmca_status st;
        struct gmca_token *t = gmca_token_open(library(f), f->dir, &st);
        struct gmca_token_key *k;
        struct gmca_credential c = {.token_key = NULL};
        uint8_t *sig = NULL;
        size_t siglen = 0;

        if (t == NULL)
                fail_msg("open: %s", st.message);
        assert_non_null(strstr(gmca_token_description(t), "softsdf"));
        if ((k = gmca_token_key_open(t, OTHER_INDEX, PIN2, strlen(PIN2), &st)) == NULL)
                fail_msg("key: %s", st.message);
        gmca_token_close(t);
        c.token_key = k;
        expect_rc(gmca_sm2_raw_sign(&c, NULL, DATA, DLEN, &sig, &siglen, &st), &st, 0, NULL,
                  "sign after close");
        expect_rc(gmca_sm2_raw_verify(f->other.cert_pem, f->other.cert_len, NULL, DATA, DLEN, sig,
                                      siglen, &st),
                  &st, 0, NULL, "verify");
        gmca_buffer_free(sig, siglen);
        gmca_token_key_free(k);
        gmca_token_close(NULL);
}

static void test_open_errors(void **state)
{
        struct fx *f = *state;
        struct gmca_status st;
        char notdir[160];

        assert_null(gmca_token_open(NULL, NULL, &st));
        expect_rc(st.code, &st, GMCA_RC_INVALID, "key store directory", "built-in, no directory");
        assert_null(gmca_token_open("/nonexistent/libvendor-sdf.so", NULL, &st));
        expect_rc(st.code, &st, GMCA_RC_IO, "cannot load SDF library", "no such library");
        /* A shared library that is not an SDF library. */
        assert_null(gmca_token_open("libc.so.6", NULL, &st));
        expect_rc(st.code, &st, GMCA_RC_INVALID, "lacks SDF_OpenDevice", "not an SDF library");
        /* A key store that cannot be made. */
        snprintf(notdir, sizeof(notdir), "%s/file", f->base);
        FILE *fp = fopen(notdir, "w");
        assert_non_null(fp);
        fclose(fp);
        snprintf(notdir, sizeof(notdir), "%s/file/store", f->base);
        assert_null(gmca_token_open(library(f), notdir, &st));
        expect_rc(st.code, &st, GMCA_RC_IO, "SDR_OPENDEVICE", "key store not a directory");
        assert_null(gmca_token_key_open(NULL, TOKEN_INDEX, PIN, strlen(PIN), &st));
        expect_rc(st.code, &st, GMCA_RC_INVALID, "no open token", "no token");
}

#define ONE(fn, b)                                                                                 \
        {                                                                                          \
#fn "/" #b, fn, setup, teardown, (void *)&b                                        \
        }
#define BOTH(fn) ONE(fn, builtin), ONE(fn, shared)

int main(void)
{
        const struct CMUnitTest tests[] = {
            BOTH(test_sign),         BOTH(test_sign_encrypt),
            BOTH(test_raw),          BOTH(test_wrong_certificate),
            BOTH(test_key_refusals), BOTH(test_close_order),
            BOTH(test_open_errors),
        };

        unsetenv("GMCA_SOFTSDF_DIR");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
