/*
 * Unit tests for sync.c (CPS §4.6.1, §4.6.2): the payload built for each
 * event of the change feed (its fields, the business type, no identity
 * number), the sync signer check, and gmca_sync_verify on good bodies and
 * on a tampered body, a wrong anchor and a signer of the wrong key usage;
 * the payload check on malformed payloads; receiver specs; a receiver that
 * cannot be reached leaves the event for a retry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "testcsr.h"
#include "gmca/message.h"

#include "ca.h"
#include "crypto.h"
#include "gmt0010.h"
#include "publish.h"
#include "sync.h"
#include "testca.h"
#include "util.h"
#include "validate.h"
#include "x509.h"

#define ID_NUMBER "11010519491231002X"
#define INFO "{\"identity_card_number\": \"" ID_NUMBER "\"}"

struct fixture {
        struct test_ca t;
        struct gmca_ctx *c;
        X509 *root, *sub, *sync, *person;
        EVP_PKEY *sync_key, *person_key;
        char person_serial[GMCA_SERIAL_HEX_MAX];
};

/* A DER CSR for C=CN, O=o, CN=cn with a new key (*key; caller frees both). */
static uint8_t *csr_with_key(const char *o, const char *cn, EVP_PKEY **key, size_t *len)
{
        struct gmca_error e = {0};
        EVP_PKEY *fresh;
        char *pem = NULL;
        size_t pemlen = 0;

        /* Through the encrypted PEM, as the sync key comes from its file (gmca serve). */
        assert_non_null(fresh = gmca_sm2_keygen(&e));
        assert_int_equal(gmca_key_to_pem(fresh, "sync-pass", 9, &pem, &pemlen, &e), 0);
        assert_non_null(*key = gmca_key_from_pem(pem, pemlen, "sync-pass", 9, &e));
        OPENSSL_free(pem);
        EVP_PKEY_free(fresh);
        return test_csr_key(*key, o, NULL, cn, len);
}

static X509 *issue(struct fixture *f, const char *profile, const char *o, const char *cn,
                   const char *info, EVP_PKEY **key, char serial[GMCA_SERIAL_HEX_MAX])
{
        struct gmca_error e = {0};
        size_t len;
        uint8_t *csr = csr_with_key(o, cn, key, &len);
        struct gmca_issue_req r = {.profile = profile,
                                   .csr = csr,
                                   .csr_len = len,
                                   .info_json = info,
                                   .info_len = info != NULL ? strlen(info) : 0};
        X509 *cert = NULL;

        uint8_t *der = NULL;
        X509 *parsed;
        int n;

        if (gmca_ca_issue(f->c, &r, serial, &cert, &e) != 0)
                fail_msg("issue %s: %s", profile, e.msg);
        /* From its DER, as a receiver or gmca serve reads it (the issued object has no
           decoded public key: x509.c, set_pubkey). */
        assert_true((n = i2d_X509(cert, &der)) > 0);
        assert_non_null(parsed = gmca_cert_parse(der, (size_t)n, &e));
        OPENSSL_free(der);
        X509_free(cert);
        OPENSSL_free(csr);
        return parsed;
}

static X509 *ca_cert(struct fixture *f, const char *name)
{
        struct gmca_ca_rec r;
        struct gmca_error e = {0};
        X509 *x;

        memset(&r, 0, sizeof(r));
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(f->c), name, &r, &e), 0);
        assert_non_null(x = gmca_cert_parse(r.cert_der, r.cert_len, &e));
        gmca_ca_rec_clear(&r);
        return x;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];

        if (f == NULL || test_ca_make(&f->t, "sync") != 0 ||
            (f->c = gmca_ctx_open(f->t.dir, "unit", &e)) == NULL ||
            gmca_ctx_activate(f->c, f->t.cust, 3, &e) != 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        f->root = ca_cert(f, "root");
        f->sub = ca_cert(f, "sub");
        f->sync = issue(f, "sync", "单元测试认证中心", "证书同步", NULL, &f->sync_key, serial);
        f->person = issue(f, "personal-sign", NULL, "张三", INFO, &f->person_key, f->person_serial);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        gmca_ctx_close(f->c);
        X509_free(f->root);
        X509_free(f->sub);
        X509_free(f->sync);
        X509_free(f->person);
        EVP_PKEY_free(f->sync_key);
        EVP_PKEY_free(f->person_key);
        test_ca_remove(&f->t);
        free(f);
        return 0;
}

/* The payloads of every event of the feed, in order, as a JSON array. */
static json_t *payloads(struct fixture *f)
{
        struct gmca_store *s = gmca_ctx_store(f->c);
        struct gmca_error e = {0};
        struct gmca_event ev;
        json_t *all = json_array();
        int rc;

        assert_int_equal(gmca_publish_reset(s, "unit", 0, &e), 0);
        for (int i = 0; i < 100; i++) {
                char *json = NULL;

                rc = gmca_publish_next(s, "unit", (int64_t)gmca_now(), &ev, &e);
                if (rc == GMCA_ERR_NOTFOUND)
                        break;
                assert_int_equal(rc, 0);
                if (gmca_sync_payload(s, &ev, &json, &e) != 0)
                        fail_msg("payload of event %lld: %s", (long long)ev.id, e.msg);
                assert_null(strstr(json, ID_NUMBER));
                assert_int_equal(gmca_sync_payload_check(json, strlen(json), NULL, &e), 0);
                json_array_append_new(all, json_loads(json, 0, NULL));
                free(json);
                assert_int_equal(gmca_publish_done(s, "unit", ev.id, (int64_t)gmca_now(), &e), 0);
        }
        return all;
}

/* The payload of the first event of type about serial (NULL: any CRL). */
static json_t *find(json_t *all, const char *type, const char *serial)
{
        size_t i;
        json_t *p;

        json_array_foreach(all, i, p)
        {
                const char *s =
                    json_string_value(json_object_get(json_object_get(p, "certificate"), "serial"));

                if (strcmp(json_string_value(json_object_get(p, "type")), type) == 0 &&
                    (serial == NULL || (s != NULL && strcmp(s, serial) == 0)))
                        return p;
        }
        fail_msg("no %s event for %s", type, serial != NULL ? serial : "a CRL");
        return NULL;
}

static const char *field(json_t *o, const char *a, const char *b)
{
        return json_string_value(
            json_object_get(b != NULL ? json_object_get(o, a) : o, b != NULL ? b : a));
}

static void test_payloads(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        json_t *all, *p, *subj;

        assert_int_equal(gmca_ca_revoke(f->c, f->person_serial, 1, 0, &e), 0);
        assert_int_equal(gmca_ca_crl_generate(f->c, NULL, 0, NULL, &e), 0);
        all = payloads(f);

        p = find(all, "cert.issue", f->person_serial);
        assert_int_equal(json_integer_value(json_object_get(p, "version")), 1);
        assert_true(json_integer_value(json_object_get(p, "event_id")) > 0);
        assert_string_equal(field(p, "business_type", NULL), "cli");
        assert_string_equal(field(p, "ca", "name"), "sub");
        assert_non_null(strstr(field(p, "ca", "subject"), "单元测试运营 CA"));
        assert_string_equal(field(p, "certificate", "profile"), "personal-sign");
        assert_non_null(strstr(field(p, "certificate", "pem"), "BEGIN CERTIFICATE"));
        assert_true(json_is_null(json_object_get(json_object_get(p, "subscriber"), "kind")));
        subj = json_object_get(json_object_get(p, "subscriber"), "subject");
        assert_int_equal(json_array_size(subj), 2);
        assert_string_equal(field(json_array_get(subj, 1), "CN", NULL), "张三");

        p = find(all, "cert.revoke", f->person_serial);
        assert_string_equal(field(p, "business_type", NULL), "cli");
        assert_string_equal(field(p, "certificate", "status"), "revoked");
        assert_string_equal(field(p, "certificate", "reason"), "keyCompromise");
        assert_non_null(field(p, "certificate", "revoked_at"));
        assert_true(json_integer_value(json_object_get(p, "event_id")) >
                    json_integer_value(
                        json_object_get(find(all, "cert.issue", f->person_serial), "event_id")));

        p = find(all, "crl.issue", NULL);
        assert_string_equal(field(p, "business_type", NULL), "crl");
        assert_true(json_integer_value(json_object_get(json_object_get(p, "crl"), "number")) > 0);
        assert_true(strlen(field(p, "crl", "der_base64")) > 100);
        assert_non_null(field(p, "crl", "next_update"));
        json_decref(all);
}

/* sign json with cert/key and verify it under anchor (+ sub): the code. */
static int sign_verify(struct fixture *f, X509 *cert, EVP_PKEY *key, const char *json, X509 *anchor,
                       int tamper, struct gmca_error *e)
{
        uint8_t *body = NULL;
        size_t len = 0, plen = 0;
        char *payload = NULL;
        struct gmca_sync_verified vi;
        X509 *inter[1] = {f->sub};
        struct gmca_vfy_opts vo = {
            .anchors = &anchor, .nanchors = 1, .intermediates = inter, .nintermediates = 1};
        int rc;

        assert_int_equal(
            gmca_gmt0010_sign(cert, key, NULL, (const uint8_t *)json, strlen(json), &body, &len, e),
            0);
        if (tamper) {
                size_t i = 0;

                while (i + 10 <= len && memcmp(body + i, "\"event_id\"", 10) != 0)
                        i++;
                assert_true(i + 10 <= len);
                body[i + 1] ^= 0x20; /* "Event_id": the signed content changed */
        }
        rc = gmca_sync_verify(body, len, &vo, &payload, &plen, &vi, e);
        if (rc == 0) {
                assert_int_equal(plen, strlen(json));
                assert_memory_equal(payload, json, plen);
                assert_int_equal(vi.event_id, 7);
                assert_non_null(strstr(vi.signer, "证书同步"));
        }
        OPENSSL_free(payload);
        OPENSSL_free(body);
        return rc;
}

static const char GOOD[] = "{\"version\":1,\"event_id\":7,\"type\":\"crl."
                           "issue\",\"business_type\":\"crl\","
                           "\"ca\":{\"name\":\"sub\",\"subject\":\"x\"},"
                           "\"crl\":{\"number\":3,\"der_base64\":\"AA==\"}}";

static void test_verify(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};

        assert_int_equal(sign_verify(f, f->sync, f->sync_key, GOOD, f->root, 0, &e), 0);
        gmca_error_clear(&e);
        assert_int_not_equal(sign_verify(f, f->sync, f->sync_key, GOOD, f->root, 1, &e), 0);
        gmca_error_clear(&e);
        /* an anchor the signer does not chain to */
        assert_int_equal(sign_verify(f, f->sync, f->sync_key, GOOD, f->person, 0, &e),
                         GMCA_ERR_VERIFY);
        gmca_error_clear(&e);
        /* a subscriber's signing certificate: chains, but is no sync signer */
        assert_int_equal(sign_verify(f, f->person, f->person_key, GOOD, f->root, 0, &e),
                         GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "profile sync"));
        gmca_error_clear(&e);
        /* signed well, but not a payload */
        assert_int_equal(sign_verify(f, f->sync, f->sync_key, "{\"version\":1}", f->root, 0, &e),
                         GMCA_ERR_INVALID);
}

/* libgmca's gmca_sync_body_verify: the same check from certificate bytes. */
static void test_public_verify(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        struct gmca_status st;
        uint8_t *body = NULL, *rder = NULL, *sder = NULL;
        size_t len = 0, plen = 0;
        char *payload = NULL;
        int rn = i2d_X509(f->root, &rder), sn = i2d_X509(f->sub, &sder);
        struct gmca_bytes root = {rder, (size_t)rn}, sub = {sder, (size_t)sn};

        assert_true(rn > 0 && sn > 0);
        assert_int_equal(gmca_gmt0010_sign(f->sync, f->sync_key, NULL, (const uint8_t *)GOOD,
                                           strlen(GOOD), &body, &len, &e),
                         0);
        assert_int_equal(gmca_sync_body_verify(body, len, &root, 1, &sub, 1, &payload, &plen, &st),
                         0);
        assert_int_equal(plen, strlen(GOOD));
        assert_string_equal(payload, GOOD);
        gmca_buffer_free(payload, plen);
        payload = NULL;
        assert_int_equal(gmca_sync_body_verify(body, len, &root, 1, NULL, 0, &payload, &plen, &st),
                         GMCA_RC_VERIFY);
        assert_null(payload);
        assert_int_equal(gmca_sync_body_verify(body, len, NULL, 0, &sub, 1, &payload, &plen, &st),
                         GMCA_RC_INVALID);
        OPENSSL_free(body);
        OPENSSL_free(rder);
        OPENSSL_free(sder);
}

static void test_check_signer(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};

        assert_int_equal(gmca_sync_check_signer(f->sync, f->sync_key, &e), 0);
        assert_int_equal(gmca_sync_check_signer(f->person, f->person_key, &e), GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        assert_int_equal(gmca_sync_check_signer(f->sync, f->person_key, &e), GMCA_ERR_TAMPER);
}

static void test_payload_check(void **state)
{
        static const char *const bad[] = {
            "",
            "[]",
            "{\"version\":1}",
            "{\"version\":2,\"event_id\":7,\"type\":\"crl.issue\"}",
            "{\"version\":1,\"event_id\":0,\"type\":\"crl.issue\",\"business_type\":"
            "\"crl\","
            "\"ca\":{\"name\":\"s\"},\"crl\":{\"number\":3,\"der_base64\":\"\"}}",
            "{\"version\":1,\"event_id\":7,\"type\":\"cert.burn\",\"business_type\":"
            "\"x\","
            "\"ca\":{\"name\":\"s\"}}",
            "{\"version\":1,\"event_id\":7,\"type\":\"cert.issue\",\"business_type\":"
            "\"new\","
            "\"ca\":{\"name\":\"s\"},\"certificate\":{\"serial\":\"01\"}}",
            "{\"version\":1,\"event_id\":7,\"event_id\":8,\"type\":\"crl.issue\"}",
            "{\"version\":1,\"event_id\":7,\"type\":\"crl.issue\",\"business_type\":"
            "\"crl\","
            "\"ca\":{\"name\":\"s\"},\"crl\":{\"number\":\"3\",\"der_base64\":\"\"}}",
        };
        struct gmca_error e = {0};
        int64_t id = 0;

        (void)state;
        assert_int_equal(gmca_sync_payload_check(GOOD, strlen(GOOD), &id, &e), 0);
        assert_int_equal(id, 7);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                gmca_error_clear(&e);
                if (gmca_sync_payload_check(bad[i], strlen(bad[i]), NULL, &e) != GMCA_ERR_INVALID)
                        fail_msg("accepted: %s", bad[i]);
        }
}

static void test_receiver_spec(void **state)
{
        static const char *const bad[] = {
            "noequals",        "=http://x/",    "a b=http://x/",
            "r1=ftp://x/",     "r1=http://a b", "r1=",
            "r1=file:///etc/", "r1=https//x",   "toolongnametoolongnametoolongname1=http://x/",
        };
        struct fixture *f = *state;
        struct gmca_sync_receiver r;
        struct gmca_error e = {0};

        assert_int_equal(gmca_sync_receiver_init(&r, "gov.tax-1=https://127.0.0.1:8443/sync",
                                                 f->sync, f->sync_key, NULL, &e),
                         0);
        assert_string_equal(r.pub.channel, "sync:gov.tax-1");
        assert_string_equal(r.url, "https://127.0.0.1:8443/sync");
        assert_ptr_equal(r.pub.arg, &r);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                gmca_error_clear(&e);
                if (gmca_sync_receiver_init(&r, bad[i], f->sync, f->sync_key, NULL, &e) !=
                    GMCA_ERR_INVALID)
                        fail_msg("accepted: %s", bad[i]);
        }
}

/* A receiver nobody listens on: nothing delivered, the attempt failed, the
 * cursor stays. */
static void test_unreachable(void **state)
{
        struct fixture *f = *state;
        struct gmca_store *s = gmca_ctx_store(f->c);
        struct gmca_sync_receiver r;
        struct gmca_publish_state st;
        struct gmca_error e = {0};

        assert_int_equal(
            gmca_sync_receiver_init(&r, "down=http://127.0.0.1:9/", f->sync, f->sync_key, NULL, &e),
            0);
        r.timeout = 2;
        assert_int_equal(gmca_publish_pump(s, &r.pub, 10, &e), 0);
        assert_int_equal(gmca_publish_state(s, r.pub.channel, &st, &e), 0);
        assert_int_equal(st.last_event, 0);
        assert_int_equal(st.attempts, 1);
        assert_true(st.pending > 0);
        assert_non_null(strstr(st.last_error, "127.0.0.1:9"));
}

static const struct gmca_audit_filter skip_filter = {.event = "publish.skip"};

static int count_big_skip(const struct gmca_audit_rec *a, void *arg)
{
        if (a->detail != NULL && strstr(a->detail, "too large for a sync payload") != NULL)
                ++*(int64_t *)arg;
        return 0;
}

/*
 * A CRL too large for any receiver (its payload over GMCA_SYNC_BODY_MAX) is
 * refused for good before sending: the cursor moves past it with an audited
 * publish.skip instead of retrying it for ever.
 */
static void test_oversized_crl(void **state)
{
        struct fixture *f = *state;
        struct gmca_store *s = gmca_ctx_store(f->c);
        struct gmca_sync_receiver r;
        struct gmca_publish_state st;
        struct gmca_ca_rec ca;
        struct gmca_crl_rec crl;
        struct gmca_event ev;
        struct gmca_error e = {0};
        int64_t last = 0, skips = 0, number = 0;
        int kind = -1;
        const size_t big = 7u << 20;
        uint8_t *der;

        memset(&ca, 0, sizeof(ca));
        assert_int_equal(gmca_store_ca_get(s, "sub", &ca, &e), 0);
        assert_non_null(der = calloc(1, big));
        der[0] = 0x30;
        memset(&crl, 0, sizeof(crl));
        crl.ca_id = ca.id;
        assert_int_equal(gmca_store_crl_next_number(s, ca.id, &crl.number, &e), 0);
        crl.this_update = (int64_t)gmca_now();
        crl.next_update = crl.this_update + 86400;
        crl.der = der;
        crl.der_len = big;
        assert_int_equal(gmca_store_begin(s, &e), 0);
        assert_int_equal(gmca_store_crl_insert(s, &crl, &e), 0);
        assert_int_equal(gmca_store_commit(s, &e), 0);
        free(der);
        gmca_ca_rec_clear(&ca);
        /* The newest event is the big CRL's. */
        assert_int_equal(gmca_publish_reset(s, "probe", 0, &e), 0);
        while (gmca_publish_next(s, "probe", (int64_t)gmca_now(), &ev, &e) == 0) {
                last = ev.id;
                kind = ev.kind;
                number = ev.number;
                assert_int_equal(gmca_publish_done(s, "probe", ev.id, (int64_t)gmca_now(), &e), 0);
        }
        assert_int_equal(kind, GMCA_EVENT_CRL_ISSUE);
        assert_int_equal(number, crl.number);

        assert_int_equal(
            gmca_sync_receiver_init(&r, "big=http://127.0.0.1:9/", f->sync, f->sync_key, NULL, &e),
            0);
        r.timeout = 2;
        assert_int_equal(gmca_publish_reset(s, r.pub.channel, last - 1, &e), 0);
        assert_int_equal(gmca_publish_pump(s, &r.pub, 10, &e), 1); /* finished with it */
        assert_int_equal(gmca_publish_state(s, r.pub.channel, &st, &e), 0);
        assert_int_equal(st.last_event, last);
        assert_int_equal(st.pending, 0);
        assert_int_equal(gmca_store_audit_iter(s, &skip_filter, count_big_skip, &skips, &e), 0);
        assert_int_equal(skips, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_payloads),      cmocka_unit_test(test_verify),
            cmocka_unit_test(test_public_verify), cmocka_unit_test(test_check_signer),
            cmocka_unit_test(test_payload_check), cmocka_unit_test(test_receiver_spec),
            cmocka_unit_test(test_unreachable),   cmocka_unit_test(test_oversized_crl),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
