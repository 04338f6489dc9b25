/*
 * Unit tests of the key management centre (km.h): a KM made by the real
 * ceremony (gmca_km_init, gmca_km_trust, gmca_km_open with 3 of 5
 * custodians) under a throwaway CA, driven with CARequests built and signed
 * with kmproto, its answers checked with kmproto and the envelopes opened
 * with envelope.h. One KM for the whole group: opening it runs PBKDF2.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "audit.h"
#include "crypto.h"
#include "envelope.h"
#include "km.h"
#include "kmproto.h"
#include "util.h"

#define NCUST 5

static const char *const names[NCUST] = {"张三", "李四", "王五", "赵六", "钱七"};
static const char *const pins[NCUST] = {"Km1pinAbcd", "Km2pinBcde", "Km3pinCdef", "Km4pinDefg",
                                        "Km5pinEfgh"};

struct fx {
        char top[64], dir[128], shares[NCUST][160];
        struct gmca_custodian cust[NCUST];
        EVP_PKEY *ca_key, *comm_key, *other_key, *sig_key, *sig2_key;
        X509 *ca, *km_cert, *comm, *other_comm;
        struct gmca_pkey_signer comm_signer, other_signer;
        struct gmca_km *k;
        uint64_t task;
};

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial)
{
        struct gmca_error e = {0};
        X509 *x = X509_new();
        X509_NAME *n = X509_NAME_new();
        EVP_MD_CTX *mctx;

        assert_non_null(x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
        X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1, -1, 0);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
        X509_set_subject_name(x, n);
        X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
        X509_set_pubkey(x, pub);
        mctx = gmca_sm2_sign_ctx(issuer_key, NULL, &e);
        assert_non_null(mctx);
        assert_true(X509_sign_ctx(x, mctx) > 0);
        EVP_MD_CTX_free(mctx);
        X509_NAME_free(n);
        return x;
}

static EVP_PKEY *keygen(void)
{
        struct gmca_error e = {0};
        EVP_PKEY *k = gmca_sm2_keygen(&e);

        assert_non_null(k);
        return k;
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct gmca_km_init_params p = {0};
        struct gmca_error e = {0};
        uint8_t *csr = NULL;
        const uint8_t *cp;
        size_t csr_len = 0;
        X509_REQ *req;
        EVP_PKEY *km_pub;

        assert_non_null(f);
        snprintf(f->top, sizeof(f->top), "/tmp/gmca-test-km.XXXXXX");
        assert_non_null(mkdtemp(f->top));
        snprintf(f->dir, sizeof(f->dir), "%s/km", f->top);
        for (int i = 0; i < NCUST; i++) {
                snprintf(f->shares[i], sizeof(f->shares[i]), "%s/share-%d.json", f->top, i + 1);
                f->cust[i] =
                    (struct gmca_custodian){names[i], pins[i], strlen(pins[i]), f->shares[i]};
        }
        p.subject = "C=CN, O=单元测试, CN=密钥管理中心";
        p.custodians = f->cust;
        p.ncustodians = NCUST;
        p.actor = "unit";
        if (gmca_km_init(f->dir, &p, &csr, &csr_len, &e) != 0)
                fail_msg("km init: %s", e.msg);
        cp = csr;
        req = d2i_X509_REQ(NULL, &cp, (long)csr_len);
        assert_non_null(req);
        km_pub = X509_REQ_get_pubkey(req);
        f->ca_key = keygen();
        f->comm_key = keygen();
        f->other_key = keygen();
        f->sig_key = keygen();
        f->sig2_key = keygen();
        f->ca = make_cert("测试 CA", f->ca_key, NULL, f->ca_key, 1);
        f->km_cert = make_cert("密钥管理中心", km_pub, f->ca, f->ca_key, 2);
        f->comm = make_cert("CA KM 通信", f->comm_key, f->ca, f->ca_key, 3);
        /* Same subject and serial, another key, self-signed: an impostor CA. */
        f->other_comm = make_cert("CA KM 通信", f->other_key, NULL, f->other_key, 3);
        EVP_PKEY_free(km_pub);
        X509_REQ_free(req);
        OPENSSL_free(csr);
        /* Not trusted yet: open refuses. */
        assert_null(gmca_km_open(f->dir, f->cust, 3, &e));
        assert_int_equal(e.code, GMCA_ERR_STATE);
        gmca_error_clear(&e);
        if (gmca_km_trust(f->dir, f->cust + 1, 3, f->km_cert, f->ca, f->comm, "unit", &e) != 0)
                fail_msg("km trust: %s", e.msg);
        gmca_error_clear(&e);
        /* Two custodians are not enough. */
        assert_null(gmca_km_open(f->dir, f->cust, 2, &e));
        assert_int_equal(e.code, GMCA_ERR_AUTH);
        gmca_error_clear(&e);
        if ((f->k = gmca_km_open(f->dir, f->cust + 2, 3, &e)) == NULL)
                fail_msg("km open: %s", e.msg);
        assert_int_equal(gmca_pkey_signer_init(&f->comm_signer, f->comm_key, NULL, &e), 0);
        assert_int_equal(gmca_pkey_signer_init(&f->other_signer, f->other_key, NULL, &e), 0);
        f->task = 1000;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char cmd[128];

        gmca_km_close(f->k);
        X509_free(f->ca);
        X509_free(f->km_cert);
        X509_free(f->comm);
        X509_free(f->other_comm);
        EVP_PKEY_free(f->ca_key);
        EVP_PKEY_free(f->comm_key);
        EVP_PKEY_free(f->other_key);
        EVP_PKEY_free(f->sig_key);
        EVP_PKEY_free(f->sig2_key);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* One-item request m for serial no (one byte), kind, recipient. */
static void request(struct fx *f, struct gmca_km_msg *m, int kind, uint8_t no, EVP_PKEY *to)
{
        struct gmca_km_item *it = &m->items[0];

        memset(m, 0, sizeof(*m));
        m->time = gmca_now();
        m->task_no = ++f->task;
        m->n = 1;
        it->kind = kind;
        it->cert_no[0] = no;
        it->cert_no_len = 1;
        if (kind == GMCA_KM_REVOKE)
                return;
        assert_int_equal(EVP_PKEY_up_ref(to), 1);
        it->user_pub = to;
        if (kind == GMCA_KM_APPLY) {
                it->not_before = gmca_now();
                it->not_after = it->not_before + 86400 * 365;
                it->user_name = strdup("CN=订户");
        } else
                it->info = strdup("{\"kind\":\"subscriber\",\"application\":7}");
}

static int sign_with(const struct gmca_km_msg *m, X509 *cert, struct gmca_pkey_signer *s,
                     uint8_t **der, size_t *len)
{
        struct gmca_error e = {0};
        int rc = gmca_km_msg_sign(m, cert, &s->base, der, len, &e);

        if (rc != 0)
                fail_msg("sign: %s", e.msg);
        return rc;
}

/* Send m signed by the CA; the parsed, verified answer into r. */
static void round_trip(struct fx *f, struct gmca_km_msg *m, struct gmca_km_msg *r)
{
        struct gmca_error e = {0};
        uint8_t *der = NULL, *resp = NULL;
        size_t len = 0, resp_len = 0;

        assert_int_equal(sign_with(m, f->comm, &f->comm_signer, &der, &len), 0);
        if (gmca_km_handle(f->k, der, len, &resp, &resp_len, &e) != 0)
                fail_msg("handle: %s", e.msg);
        assert_int_equal(gmca_km_msg_parse(resp, resp_len, 1, r, &e), 0);
        assert_int_equal(gmca_km_msg_verify(r, f->km_cert, &e), 0);
        assert_true(r->task_no == m->task_no);
        assert_int_equal(r->n, 1);
        OPENSSL_free(der);
        OPENSSL_free(resp);
}

/* Open the envelope of a key answer with `with`; returns the pair. */
static EVP_PKEY *open_item(const struct gmca_km_item *it, EVP_PKEY *with)
{
        struct gmca_error e = {0};
        EVP_PKEY *pair, *pair2;

        assert_int_not_equal(it->kind, GMCA_KM_ERROR);
        pair = gmca_envelope_open(it->envelope, it->envelope_len, with, &e);
        if (pair == NULL)
                fail_msg("envelope: %s", e.msg);
        assert_int_equal(EVP_PKEY_eq(pair, it->ret_pub), 1);
        assert_non_null(it->blob);
        pair2 = gmca_envelope_blob_open(it->blob, it->blob_len, with, &e);
        assert_non_null(pair2);
        assert_int_equal(EVP_PKEY_eq(pair2, it->ret_pub), 1);
        EVP_PKEY_free(pair2);
        return pair;
}

static int file_has(const char *path, const uint8_t *needle, size_t n)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        struct gmca_error e = {0};
        int found;

        if (gmca_read_file(path, 256u << 20, &buf, &len, &e) != 0)
                return 0; /* absent (no WAL) */
        found = memmem(buf, len, needle, n) != NULL;
        free(buf);
        return found;
}

static void apply_ok(struct fx *f, uint8_t no, EVP_PKEY **pair)
{
        struct gmca_km_msg m, r;

        request(f, &m, GMCA_KM_APPLY, no, f->sig_key);
        round_trip(f, &m, &r);
        *pair = open_item(&r.items[0], f->sig_key);
        /* Nobody else can open it. */
        {
                struct gmca_error e = {0};
                EVP_PKEY *no_pair = gmca_envelope_open(r.items[0].envelope, r.items[0].envelope_len,
                                                       f->sig2_key, &e);
                assert_null(no_pair);
                assert_int_equal(e.code, GMCA_ERR_VERIFY);
        }
        gmca_km_msg_clear(&m);
        gmca_km_msg_clear(&r);
}

static void test_apply_escrows_no_clear_key(void **state)
{
        struct fx *f = *state;
        EVP_PKEY *pair;
        BIGNUM *bn = NULL;
        uint8_t d[32];
        char path[256];

        apply_ok(f, 0x11, &pair);
        assert_int_equal(EVP_PKEY_get_bn_param(pair, OSSL_PKEY_PARAM_PRIV_KEY, &bn), 1);
        assert_int_equal(BN_bn2binpad(bn, d, sizeof(d)), 32);
        snprintf(path, sizeof(path), "%s/km.db", f->dir);
        assert_false(file_has(path, d, sizeof(d)));
        snprintf(path, sizeof(path), "%s/km.db-wal", f->dir);
        assert_false(file_has(path, d, sizeof(d)));
        /* The search itself works: the public key is in the database. */
        {
                uint8_t *pub = NULL;
                int n = i2d_PUBKEY(pair, &pub);
                int in_db, in_wal;

                assert_true(n > 0);
                snprintf(path, sizeof(path), "%s/km.db", f->dir);
                in_db = file_has(path, pub, (size_t)n);
                snprintf(path, sizeof(path), "%s/km.db-wal", f->dir);
                in_wal = file_has(path, pub, (size_t)n);
                assert_true(in_db || in_wal);
                OPENSSL_free(pub);
        }
        BN_clear_free(bn);
        EVP_PKEY_free(pair);
}

static int64_t item_errno(struct fx *f, struct gmca_km_msg *m)
{
        struct gmca_km_msg r;
        int64_t n;

        round_trip(f, m, &r);
        assert_int_equal(r.items[0].kind, GMCA_KM_ERROR);
        n = r.items[0].err_no;
        gmca_km_msg_clear(&r);
        gmca_km_msg_clear(m);
        return n;
}

static void test_apply_refusals(void **state)
{
        struct fx *f = *state;
        struct gmca_km_msg m;
        EVP_PKEY *pair;

        apply_ok(f, 0x12, &pair);
        EVP_PKEY_free(pair);
        request(f, &m, GMCA_KM_APPLY, 0x12, f->sig_key);
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_EXISTS);
        request(f, &m, GMCA_KM_APPLY, 0x13, f->sig_key);
        m.items[0].not_after = m.items[0].not_before - 1;
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_INVALID);
        request(f, &m, GMCA_KM_APPLY, 0x14, f->sig_key);
        m.items[0].not_before = gmca_now() - 86400 * 400;
        m.items[0].not_after = gmca_now() - 86400;
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_INVALID);
        request(f, &m, GMCA_KM_RESTORE, 0x15, f->sig_key);
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_NOTFOUND);
}

static void test_restore_revoke_destroy(void **state)
{
        struct fx *f = *state;
        struct gmca_km_msg m, r;
        struct gmca_error e = {0};
        EVP_PKEY *pair, *again;

        apply_ok(f, 0x21, &pair);
        /* Restore to another (the subscriber's new) signature key: the same pair. */
        request(f, &m, GMCA_KM_RESTORE, 0x21, f->sig2_key);
        round_trip(f, &m, &r);
        again = open_item(&r.items[0], f->sig2_key);
        assert_int_equal(EVP_PKEY_eq(again, pair), 1);
        EVP_PKEY_free(again);
        gmca_km_msg_clear(&m);
        gmca_km_msg_clear(&r);
        /* Revoke, twice (idempotent); a revoked key is still restorable (§7.3.2). */
        for (int i = 0; i < 2; i++) {
                request(f, &m, GMCA_KM_REVOKE, 0x21, NULL);
                round_trip(f, &m, &r);
                assert_int_equal(r.items[0].kind, GMCA_KM_REVOKE);
                gmca_km_msg_clear(&m);
                gmca_km_msg_clear(&r);
        }
        request(f, &m, GMCA_KM_RESTORE, 0x21, f->sig_key);
        round_trip(f, &m, &r);
        again = open_item(&r.items[0], f->sig_key);
        assert_int_equal(EVP_PKEY_eq(again, pair), 1);
        EVP_PKEY_free(again);
        gmca_km_msg_clear(&m);
        gmca_km_msg_clear(&r);
        /* Destroy: refused before the retention date, then done, then refused again. */
        assert_int_equal(gmca_km_destroy(f->k, "21", gmca_now(), "unit", &e), GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        assert_int_equal(gmca_km_destroy(f->k, "21", gmca_now() + 86400LL * 365 * 12, "unit", &e),
                         0);
        assert_int_equal(gmca_km_destroy(f->k, "21", gmca_now() + 86400LL * 365 * 12, "unit", &e),
                         GMCA_ERR_STATE);
        gmca_error_clear(&e);
        request(f, &m, GMCA_KM_RESTORE, 0x21, f->sig_key);
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_STATE);
        request(f, &m, GMCA_KM_REVOKE, 0x21, NULL);
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_STATE);
        EVP_PKEY_free(pair);
}

static int count_refusals(const struct gmca_audit_rec *r, void *arg)
{
        if (!r->success)
                (*(int *)arg)++;
        return 0;
}

static int refusals(struct fx *f)
{
        struct gmca_audit_filter flt = {0};
        struct gmca_error e = {0};
        int n = 0;

        flt.event = GMCA_EV_KM_REQUEST;
        assert_int_equal(gmca_store_audit_iter(gmca_km_store(f->k), &flt, count_refusals, &n, &e),
                         0);
        return n;
}

/* A request the KM must refuse without answering, and record. */
static void refused(struct fx *f, const uint8_t *der, size_t len, int code)
{
        struct gmca_error e = {0};
        uint8_t *resp = NULL;
        size_t resp_len = 0;
        int before = refusals(f);

        assert_int_equal(gmca_km_handle(f->k, der, len, &resp, &resp_len, &e), code);
        assert_null(resp);
        assert_int_equal(refusals(f), before + 1);
}

/* Rows of km_tasks where cond holds (from outside the KM, as the store's file);
 * "UPDATE" moves every row's time to 1 instead. */
static int64_t tasks(struct fx *f, const char *cond)
{
        char path[1100], sql[160];
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t n = 0;

        snprintf(path, sizeof(path), "%s/km.db", f->dir);
        if (strcmp(cond, "UPDATE") == 0)
                snprintf(sql, sizeof(sql), "UPDATE km_tasks SET time = 1");
        else
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM km_tasks WHERE %s", cond);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

static void test_request_refusals(void **state)
{
        struct fx *f = *state;
        struct gmca_km_msg m;
        uint8_t *der = NULL, junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
        size_t len = 0;

        /* Signed by an unknown CA (same name and serial, another key). */
        request(f, &m, GMCA_KM_APPLY, 0x31, f->sig_key);
        assert_int_equal(sign_with(&m, f->other_comm, &f->other_signer, &der, &len), 0);
        refused(f, der, len, GMCA_ERR_VERIFY);
        OPENSSL_free(der);
        /* Wrong signature: a bit of the SM2 signature flipped. */
        assert_int_equal(sign_with(&m, f->comm, &f->comm_signer, &der, &len), 0);
        der[len - 3] ^= 0x01;
        refused(f, der, len, GMCA_ERR_VERIFY);
        der[len - 3] ^= 0x01;
        /* The good one goes through; the same bytes again are a replay. */
        {
                struct gmca_error e = {0};
                uint8_t *resp = NULL;
                size_t resp_len = 0;

                assert_int_equal(gmca_km_handle(f->k, der, len, &resp, &resp_len, &e), 0);
                OPENSSL_free(resp);
        }
        refused(f, der, len, GMCA_ERR_EXISTS);
        OPENSSL_free(der);
        gmca_km_msg_clear(&m);
        /* Task numbers too old to pass the time check again are forgotten at the next
         * request; recent ones stay. */
        assert_int_equal(tasks(f, "time < 0"), 0);
        assert_true(tasks(f, "1 = 1") >= 1);
        assert_int_equal(tasks(f, "UPDATE"), 0);
        assert_true(tasks(f, "time < 1000") >= 1);
        {
                struct gmca_error e = {0};
                uint8_t *resp = NULL;
                size_t resp_len = 0;

                request(f, &m, GMCA_KM_APPLY, 0x33, f->sig_key);
                assert_int_equal(sign_with(&m, f->comm, &f->comm_signer, &der, &len), 0);
                assert_int_equal(gmca_km_handle(f->k, der, len, &resp, &resp_len, &e), 0);
                OPENSSL_free(resp);
                OPENSSL_free(der);
                gmca_km_msg_clear(&m);
        }
        assert_int_equal(tasks(f, "time < 1000"), 0);
        assert_int_equal(tasks(f, "1 = 1"), 1);
        /* Old time. */
        request(f, &m, GMCA_KM_APPLY, 0x32, f->sig_key);
        m.time = gmca_now() - GMCA_KM_SKEW - 60;
        assert_int_equal(sign_with(&m, f->comm, &f->comm_signer, &der, &len), 0);
        refused(f, der, len, GMCA_ERR_POLICY);
        OPENSSL_free(der);
        gmca_km_msg_clear(&m);
        /* Malformed DER, and too big. */
        refused(f, junk, sizeof(junk), GMCA_ERR_INVALID);
        der = calloc(1, (size_t)GMCA_KM_MSG_MAX + 1);
        assert_non_null(der);
        refused(f, der, (size_t)GMCA_KM_MSG_MAX + 1, GMCA_ERR_LIMIT);
        free(der);
}

static void test_store_and_audit(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        int64_t count = 0, bad = 0;

        /* Expiry moves nothing that is current; the chain is intact. */
        assert_int_equal(gmca_km_expire(gmca_km_store(f->k), gmca_now(), "unit", &count, &e), 0);
        assert_int_equal(count, 0);
        assert_int_equal(
            gmca_km_expire(gmca_km_store(f->k), gmca_now() + 86400LL * 400, "unit", &count, &e), 0);
        assert_true(count >= 1);
        assert_int_equal(gmca_audit_verify(gmca_km_store(f->k), &count, &bad, &e), 0);
        assert_true(count > 10);
}

/* Edited rows and swapped certificates are found, not served. */
static void test_tamper(void **state)
{
        struct fx *f = *state;
        struct gmca_km_msg m;
        struct gmca_error e = {0};
        char path[256];
        sqlite3 *db = NULL;
        uint8_t *der = NULL;
        int n;

        /* A bit of the escrowed ciphertext of 0x11 flipped outside gmca: GCM refuses it. */
        snprintf(path, sizeof(path), "%s/km.db", f->dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        assert_int_equal(sqlite3_exec(db,
                                      "UPDATE km_keys SET enc_priv = substr(enc_priv, 1, 20) ||"
                                      " x'5A' || substr(enc_priv, 22) WHERE serial = '11'",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_close(db);
        request(f, &m, GMCA_KM_RESTORE, 0x11, f->sig_key);
        assert_int_equal(item_errno(f, &m), GMCA_KM_E_INTERNAL);
        /*
         * Another key's whole escrow (ciphertext and public key) copied onto
         * 0x41: the serial in the AAD refuses it; 0x42 itself still restores.
         */
        {
                EVP_PKEY *p41, *p42, *got;
                struct gmca_km_msg r;

                apply_ok(f, 0x41, &p41);
                apply_ok(f, 0x42, &p42);
                assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
                sqlite3_busy_timeout(db, 5000);
                assert_int_equal(sqlite3_exec(db,
                                              "UPDATE km_keys SET"
                                              " enc_priv = (SELECT enc_priv FROM km_keys"
                                              " WHERE serial = '42'),"
                                              " pub = (SELECT pub FROM km_keys WHERE serial = '42')"
                                              " WHERE serial = '41'",
                                              NULL, NULL, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_changes(db), 1);
                sqlite3_close(db);
                request(f, &m, GMCA_KM_RESTORE, 0x41, f->sig_key);
                assert_int_equal(item_errno(f, &m), GMCA_KM_E_INTERNAL);
                request(f, &m, GMCA_KM_RESTORE, 0x42, f->sig_key);
                round_trip(f, &m, &r);
                got = open_item(&r.items[0], f->sig_key);
                assert_int_equal(EVP_PKEY_eq(got, p42), 1);
                EVP_PKEY_free(got);
                gmca_km_msg_clear(&r);
                gmca_km_msg_clear(&m);
                EVP_PKEY_free(p41);
                EVP_PKEY_free(p42);
        }
        /* The CA-communication certificate swapped for the impostor's: open refuses. */
        snprintf(path, sizeof(path), "%s/certs/ca-comm.crt", f->dir);
        n = i2d_X509(f->other_comm, &der);
        assert_true(n > 0);
        assert_int_equal(gmca_write_file_atomic(path, der, (size_t)n, 0644, &e), 0);
        OPENSSL_free(der);
        assert_null(gmca_km_open(f->dir, f->cust, 3, &e));
        assert_int_equal(e.code, GMCA_ERR_TAMPER);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_apply_escrows_no_clear_key),
            cmocka_unit_test(test_apply_refusals),
            cmocka_unit_test(test_restore_revoke_destroy),
            cmocka_unit_test(test_request_refusals),
            cmocka_unit_test(test_store_and_audit),
            cmocka_unit_test(test_tamper),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
