/*
 * kmproto (the CA-KM messages) and ca_km (the CA's side of the link):
 * every message kind round-trips; every strictness rule refuses DER
 * rebuilt from a good message with one field changed; a signature by
 * another key or under another EntName does not verify; and the link,
 * talking to a fake KM on a Unix socket, refuses each kind of bad answer
 * with the code km.h promises.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <setjmp.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "crypto.h"
#include "envelope.h"
#include "km.h"
#include "store.h"
#include "kmproto.h"
#include "signer.h"
#include "testca.h"
#include "testutil.h"
#include "util.h"

/* ---- keys and certificates ---- */

static X509 *self_cert(EVP_PKEY *key, const char *cn, long serial)
{
        struct gmca_error e = {0};
        X509 *x = X509_new();
        X509_NAME *nm = X509_NAME_new();
        EVP_MD_CTX *md;

        assert_non_null(x);
        X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1, -1, 0);
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
        assert_int_equal(X509_set_version(x, 2), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
        X509_set_subject_name(x, nm);
        X509_set_issuer_name(x, nm);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        md = gmca_sm2_sign_ctx(key, NULL, &e);
        assert_non_null(md);
        assert_true(X509_sign_ctx(x, md) > 0);
        EVP_MD_CTX_free(md);
        X509_NAME_free(nm);
        return x;
}

struct fix {
        EVP_PKEY *ca_key, *km_key, *other_key, *user_key, *pair;
        X509 *ca_cert, *km_cert, *twin_cert; /* twin: ca_key under another name */
        struct gmca_pkey_signer ca_signer, km_signer, other_signer;
        uint8_t *env, *blob;
        size_t env_len, blob_len;
};

static struct fix F;

static int setup(void **state)
{
        struct gmca_error e = {0};

        (void)state;
        F.ca_key = gmca_sm2_keygen(&e);
        F.km_key = gmca_sm2_keygen(&e);
        F.other_key = gmca_sm2_keygen(&e);
        F.user_key = gmca_sm2_keygen(&e);
        F.pair = gmca_sm2_keygen(&e);
        if (!F.ca_key || !F.km_key || !F.other_key || !F.user_key || !F.pair)
                return -1;
        F.ca_cert = self_cert(F.ca_key, "CA KM link", 0x1234);
        F.km_cert = self_cert(F.km_key, "KM", 0x7f01);
        F.twin_cert = self_cert(F.ca_key, "CA KM link 2", 0x1234);
        if (gmca_pkey_signer_init(&F.ca_signer, F.ca_key, NULL, &e) != 0 ||
            gmca_pkey_signer_init(&F.km_signer, F.km_key, NULL, &e) != 0 ||
            gmca_pkey_signer_init(&F.other_signer, F.other_key, NULL, &e) != 0 ||
            gmca_envelope_seal(F.pair, F.user_key, &F.env, &F.env_len, &F.blob, &F.blob_len, &e) !=
                0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        EVP_PKEY_free(F.ca_key);
        EVP_PKEY_free(F.km_key);
        EVP_PKEY_free(F.other_key);
        EVP_PKEY_free(F.user_key);
        EVP_PKEY_free(F.pair);
        X509_free(F.ca_cert);
        X509_free(F.km_cert);
        X509_free(F.twin_cert);
        OPENSSL_free(F.env);
        OPENSSL_free(F.blob);
        return 0;
}

static const uint8_t SN1[] = {0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                              0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t SN2[] = {0x80, 0x00, 0x01}; /* top bit set: 4 octets in DER */

static void set_sn(struct gmca_km_item *it, const uint8_t *sn, size_t len)
{
        memcpy(it->cert_no, sn, len);
        it->cert_no_len = len;
}

static void up(EVP_PKEY *k)
{
        assert_int_equal(EVP_PKEY_up_ref(k), 1);
}

/* A request with one item of each kind. */
static void make_request(struct gmca_km_msg *m)
{
        memset(m, 0, sizeof(*m));
        m->time = (int64_t)time(NULL);
        m->task_no = UINT64_C(0x7fffffffffff1234);
        m->n = 3;
        m->items[0].kind = GMCA_KM_APPLY;
        set_sn(&m->items[0], SN1, sizeof(SN1));
        up(F.user_key);
        m->items[0].user_pub = F.user_key;
        m->items[0].not_before = 1700000000;
        m->items[0].not_after = 1800000000;
        m->items[0].user_name = strdup("C=CN, CN=张三");
        m->items[1].kind = GMCA_KM_RESTORE;
        set_sn(&m->items[1], SN2, sizeof(SN2));
        up(F.user_key);
        m->items[1].user_pub = F.user_key;
        m->items[1].info = strdup("{\"kind\":\"judicial\",\"reason\":\"案件\"}");
        m->items[2].kind = GMCA_KM_REVOKE;
        set_sn(&m->items[2], SN1, sizeof(SN1));
}

/* A response with one item of each kind. */
static void make_response(struct gmca_km_msg *m)
{
        memset(m, 0, sizeof(*m));
        m->response = 1;
        m->time = (int64_t)time(NULL);
        m->task_no = 42;
        m->n = 4;
        for (int i = 0; i < 2; i++) {
                m->items[i].kind = i == 0 ? GMCA_KM_APPLY : GMCA_KM_RESTORE;
                set_sn(&m->items[i], SN1, sizeof(SN1));
                up(F.pair);
                m->items[i].ret_pub = F.pair;
                m->items[i].envelope = OPENSSL_memdup(F.env, F.env_len);
                m->items[i].envelope_len = F.env_len;
        }
        m->items[0].blob = OPENSSL_memdup(F.blob, F.blob_len);
        m->items[0].blob_len = F.blob_len;
        m->items[2].kind = GMCA_KM_REVOKE;
        set_sn(&m->items[2], SN2, sizeof(SN2));
        m->items[3].kind = GMCA_KM_ERROR;
        m->items[3].err_no = GMCA_KM_E_NOTFOUND;
        m->items[3].err_desc = strdup("no key for that serial");
}

static void sign_ok(const struct gmca_km_msg *m, X509 *cert, const struct gmca_signer *s,
                    uint8_t **der, size_t *len)
{
        struct gmca_error e = {0};

        expect(gmca_km_msg_sign(m, cert, s, der, len, &e), &e, 0, NULL, "sign");
}

static void test_request_roundtrip(void **state)
{
        struct gmca_km_msg m, p;
        struct gmca_error e = {0};
        uint8_t *der = NULL;
        size_t len = 0;

        (void)state;
        make_request(&m);
        sign_ok(&m, F.ca_cert, &F.ca_signer.base, &der, &len);
        expect(gmca_km_msg_parse(der, len, 0, &p, &e), &e, 0, NULL, "parse");
        expect(gmca_km_msg_verify(&p, F.ca_cert, &e), &e, 0, NULL, "verify");
        assert_int_equal(p.response, 0);
        assert_int_equal(p.n, 3);
        assert_true(p.task_no == m.task_no);
        assert_int_equal(p.time, m.time);
        assert_int_equal(p.items[0].kind, GMCA_KM_APPLY);
        assert_memory_equal(p.items[0].cert_no, SN1, sizeof(SN1));
        assert_int_equal(p.items[0].cert_no_len, sizeof(SN1));
        assert_int_equal(EVP_PKEY_eq(p.items[0].user_pub, F.user_key), 1);
        assert_int_equal(p.items[0].not_before, 1700000000);
        assert_int_equal(p.items[0].not_after, 1800000000);
        assert_string_equal(p.items[0].user_name, m.items[0].user_name);
        assert_int_equal(p.items[1].kind, GMCA_KM_RESTORE);
        assert_int_equal(p.items[1].cert_no_len, sizeof(SN2));
        assert_memory_equal(p.items[1].cert_no, SN2, sizeof(SN2));
        assert_string_equal(p.items[1].info, m.items[1].info);
        assert_null(p.items[1].user_name);
        assert_int_equal(p.items[2].kind, GMCA_KM_REVOKE);
        assert_null(p.items[2].user_pub);
        /* the EntName is the signer certificate's */
        {
                struct gmca_km_ent ent;

                expect(gmca_km_ent_from_cert(F.ca_cert, &ent, &e), &e, 0, NULL, "ent");
                assert_int_equal(ent.name_len, p.ent.name_len);
                assert_memory_equal(ent.name_der, p.ent.name_der, ent.name_len);
                assert_memory_equal(ent.key_hash, p.ent.key_hash, 32);
                assert_int_equal(ent.serial_len, 2);
                gmca_km_ent_clear(&ent);
        }
        gmca_km_msg_clear(&p);
        gmca_km_msg_clear(&m);
        OPENSSL_free(der);
}

static void test_response_roundtrip(void **state)
{
        struct gmca_km_msg m, p;
        struct gmca_error e = {0};
        uint8_t *der = NULL;
        size_t len = 0;

        (void)state;
        make_response(&m);
        sign_ok(&m, F.km_cert, &F.km_signer.base, &der, &len);
        expect(gmca_km_msg_parse(der, len, 1, &p, &e), &e, 0, NULL, "parse");
        expect(gmca_km_msg_verify(&p, F.km_cert, &e), &e, 0, NULL, "verify");
        assert_int_equal(p.n, 4);
        assert_true(p.task_no == 42);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(p.items[i].kind, i);
                assert_int_equal(EVP_PKEY_eq(p.items[i].ret_pub, F.pair), 1);
                assert_int_equal(p.items[i].envelope_len, F.env_len);
                assert_memory_equal(p.items[i].envelope, F.env, F.env_len);
        }
        assert_int_equal(p.items[0].blob_len, F.blob_len);
        assert_memory_equal(p.items[0].blob, F.blob, F.blob_len);
        assert_null(p.items[1].blob);
        assert_int_equal(p.items[2].kind, GMCA_KM_REVOKE);
        assert_null(p.items[2].ret_pub);
        assert_int_equal(p.items[3].kind, GMCA_KM_ERROR);
        assert_int_equal(p.items[3].err_no, GMCA_KM_E_NOTFOUND);
        assert_string_equal(p.items[3].err_desc, "no key for that serial");
        /* a response is not a request, and the reverse */
        gmca_km_msg_clear(&p);
        expect(gmca_km_msg_parse(der, len, 0, &p, &e), &e, GMCA_ERR_INVALID, NULL, "as request");
        gmca_km_msg_clear(&m);
        OPENSSL_free(der);
}

/* Items that do not fit their kind, and counts and sizes out of bounds, are not
 * signed. */
static void test_sign_refuses(void **state)
{
        struct {
                const char *what;
                int response, kind, field, want;
        } cases[] = {
            {"request without items", 0, -1, 0, GMCA_ERR_INVALID},
            {"17 items", 0, -2, 0, GMCA_ERR_LIMIT},
            {"error item in a request", 0, GMCA_KM_ERROR, 0, GMCA_ERR_INVALID},
            {"revoke answer carrying keys", 1, GMCA_KM_REVOKE, 1, GMCA_ERR_INVALID},
            {"apply request without a key", 0, GMCA_KM_APPLY, 2, GMCA_ERR_INVALID},
            {"zero serial", 0, GMCA_KM_REVOKE, 3, GMCA_ERR_INVALID},
            {"21-octet serial", 0, GMCA_KM_REVOKE, 4, GMCA_ERR_INVALID},
            {"userName over the cap", 0, GMCA_KM_APPLY, 5, GMCA_ERR_LIMIT},
            {"non-SM2 user key", 0, GMCA_KM_APPLY, 6, GMCA_ERR_INVALID},
        };
        EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

        (void)state;
        assert_non_null(p256);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_km_msg m = {0};
                struct gmca_km_item *it = &m.items[0];
                struct gmca_error e = {0};
                uint8_t *der = NULL;
                size_t len = 0;
                char big[GMCA_KM_INFO_MAX + 2];

                m.response = cases[i].response;
                m.time = 1700000000;
                m.n = cases[i].kind == -1 ? 0 : cases[i].kind == -2 ? 17 : 1;
                for (size_t k = 0; k < GMCA_KM_ITEMS_MAX; k++) {
                        m.items[k].kind = GMCA_KM_REVOKE;
                        set_sn(&m.items[k], SN1, sizeof(SN1));
                }
                if (cases[i].kind >= 0)
                        it->kind = cases[i].kind;
                if (cases[i].kind == GMCA_KM_APPLY) {
                        up(F.user_key);
                        it->user_pub = F.user_key;
                        it->not_before = 1;
                        it->not_after = 2;
                }
                if (cases[i].kind == GMCA_KM_ERROR)
                        it->err_no = 1;
                switch (cases[i].field) {
                case 1:
                        up(F.pair);
                        it->ret_pub = F.pair;
                        it->envelope = OPENSSL_memdup(F.env, F.env_len);
                        it->envelope_len = F.env_len;
                        break;
                case 2:
                        EVP_PKEY_free(it->user_pub);
                        it->user_pub = NULL;
                        break;
                case 3:
                        memset(it->cert_no, 0, 1);
                        it->cert_no_len = 1;
                        break;
                case 4:
                        memset(it->cert_no, 1, 20);
                        it->cert_no[0] = 0x80;
                        it->cert_no_len = 20;
                        break;
                case 5:
                        memset(big, 'a', sizeof(big) - 1);
                        big[sizeof(big) - 1] = '\0';
                        it->user_name = strdup(big);
                        break;
                case 6:
                        EVP_PKEY_free(it->user_pub);
                        up(p256);
                        it->user_pub = p256;
                        break;
                }
                expect(gmca_km_msg_sign(&m, F.ca_cert, &F.ca_signer.base, &der, &len, &e), &e,
                       cases[i].want, NULL, cases[i].what);
                assert_null(der);
                m.n = GMCA_KM_ITEMS_MAX;
                gmca_km_msg_clear(&m);
        }
        EVP_PKEY_free(p256);
}

/* ---- DER surgery: rebuild a good message with one element changed ---- */

struct buf {
        uint8_t *p;
        size_t n;
};

/* Tag and content of the TLV at d (short tags; lengths up to 4 bytes). */
static size_t tlv(const uint8_t *d, size_t len, const uint8_t **content, size_t *clen)
{
        size_t h = 2, l;

        assert_true(len >= 2);
        l = d[1];
        if (l & 0x80) {
                size_t k = l & 0x7f;

                assert_true(k >= 1 && k <= 4 && len >= 2 + k);
                l = 0;
                for (size_t i = 0; i < k; i++)
                        l = l << 8 | d[2 + i];
                h += k;
        }
        assert_true(h + l <= len);
        *content = d + h;
        *clen = l;
        return h + l;
}

/* Split the content of a constructed TLV into its children (at most 32). */
static size_t children(const uint8_t *d, size_t len, struct buf out[32])
{
        const uint8_t *c, *cc;
        size_t clen, cclen, n = 0, off = 0;

        tlv(d, len, &c, &clen);
        while (off < clen) {
                size_t k = tlv(c + off, clen - off, &cc, &cclen);

                assert_true(n < 32);
                out[n].p = (uint8_t *)(c + off);
                out[n++].n = k;
                off += k;
        }
        return n;
}

static struct buf mk(uint8_t tag, const struct buf *parts, size_t nparts)
{
        struct buf b;
        size_t len = 0, h;

        for (size_t i = 0; i < nparts; i++)
                len += parts[i].n;
        h = len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : 5;
        b.n = h + len;
        b.p = malloc(b.n);
        assert_non_null(b.p);
        b.p[0] = tag;
        if (h == 2)
                b.p[1] = (uint8_t)len;
        else {
                b.p[1] = (uint8_t)(0x80 | (h - 2));
                for (size_t i = 0; i < h - 2; i++)
                        b.p[2 + i] = (uint8_t)(len >> (8 * (h - 3 - i)));
        }
        len = h;
        for (size_t i = 0; i < nparts; i++) {
                memcpy(b.p + len, parts[i].p, parts[i].n);
                len += parts[i].n;
        }
        return b;
}

static struct buf raw(const void *p, size_t n)
{
        struct buf b = {malloc(n), n};

        assert_non_null(b.p);
        memcpy(b.p, p, n);
        return b;
}

/* Message = SEQ(SEQ(version, ent, SEQ(items), time, task), alg, sig); rebuilt
 * with changes. */
struct parts {
        struct buf top[32], tbs[32], items[32];
        size_t ntop, ntbs, nitems;
};

static void split(const uint8_t *der, size_t len, struct parts *p)
{
        p->ntop = children(der, len, p->top);
        assert_int_equal(p->ntop, 3);
        p->ntbs = children(p->top[0].p, p->top[0].n, p->tbs);
        assert_int_equal(p->ntbs, 5);
        p->nitems = children(p->tbs[2].p, p->tbs[2].n, p->items);
}

static struct buf rebuild(const struct parts *p)
{
        struct buf list = mk(0x30, p->items, p->nitems), tbs[5], top[3], tb, msg;

        memcpy(tbs, p->tbs, sizeof(tbs));
        tbs[2] = list;
        tb = mk(0x30, tbs, 5);
        top[0] = tb;
        top[1] = p->top[1];
        top[2] = p->top[2];
        msg = mk(0x30, top, 3);
        free(list.p);
        free(tb.p);
        return msg;
}

static void parse_want(struct buf b, int response, int want, const char *what)
{
        struct gmca_km_msg m;
        struct gmca_error e = {0};

        expect(gmca_km_msg_parse(b.p, b.n, response, &m, &e), &e, want, NULL, what);
        if (want != 0)
                assert_int_equal(m.n, 0);
        gmca_km_msg_clear(&m);
}

static struct buf revoke_item(uint8_t tag, const uint8_t *serial_tlv, size_t n)
{
        struct buf s = raw(serial_tlv, n), seq = mk(0x30, &s, 1), it = mk(tag, &seq, 1);

        free(s.p);
        free(seq.p);
        return it;
}

static void test_parse_strict(void **state)
{
        struct gmca_km_msg m;
        uint8_t *der = NULL;
        size_t len = 0;
        struct parts p;
        struct buf b, saved;

        (void)state;
        make_request(&m);
        sign_ok(&m, F.ca_cert, &F.ca_signer.base, &der, &len);
        gmca_km_msg_clear(&m);
        split(der, len, &p);
        assert_int_equal(p.nitems, 3);

        b = rebuild(&p);
        assert_int_equal(b.n, len);
        assert_memory_equal(b.p, der, len); /* the surgery itself changes nothing */
        parse_want(b, 0, 0, "rebuilt");
        free(b.p);

        b.n = len + 1;
        b.p = malloc(b.n);
        assert_non_null(b.p);
        memcpy(b.p, der, len);
        b.p[len] = 0;
        parse_want(b, 0, GMCA_ERR_INVALID, "trailing byte");
        b.n = len - 1;
        parse_want(b, 0, GMCA_ERR_INVALID, "truncated");
        free(b.p);
        b.n = GMCA_KM_MSG_MAX + 1;
        b.p = calloc(1, b.n);
        parse_want(b, 0, GMCA_ERR_LIMIT, "over the message cap");
        free(b.p);

        /* version 2; version 1 in a long-form length (BER) */
        saved = p.tbs[0];
        p.tbs[0] = (struct buf){(uint8_t *)"\x02\x01\x02", 3};
        b = rebuild(&p);
        parse_want(b, 0, GMCA_ERR_INVALID, "version 2");
        free(b.p);
        p.tbs[0] = (struct buf){(uint8_t *)"\x02\x81\x01\x01", 4};
        b = rebuild(&p);
        parse_want(b, 0, GMCA_ERR_INVALID, "BER length");
        free(b.p);
        p.tbs[0] = saved;

        /* negative task number */
        saved = p.tbs[4];
        p.tbs[4] = (struct buf){(uint8_t *)"\x02\x01\xff", 3};
        b = rebuild(&p);
        parse_want(b, 0, GMCA_ERR_INVALID, "negative taskNO");
        free(b.p);
        p.tbs[4] = saved;

        /* signature algorithm SM3 instead of SM2-with-SM3 */
        saved = p.top[1];
        p.top[1] = (struct buf){(uint8_t *)"\x30\x0a\x06\x08\x2a\x81\x1c\xcf\x55\x01\x83\x11", 12};
        b = rebuild(&p);
        parse_want(b, 0, GMCA_ERR_INVALID, "signature algorithm");
        free(b.p);
        p.top[1] = saved;

        /* empty and oversized lists */
        {
                size_t n = p.nitems;
                struct buf keep[3];

                memcpy(keep, p.items, sizeof(keep));
                p.nitems = 0;
                b = rebuild(&p);
                parse_want(b, 0, GMCA_ERR_INVALID, "empty list");
                free(b.p);
                for (size_t i = 0; i < GMCA_KM_ITEMS_MAX + 1; i++)
                        p.items[i] = keep[2];
                p.nitems = GMCA_KM_ITEMS_MAX;
                b = rebuild(&p);
                parse_want(b, 0, 0, "16 items");
                free(b.p);
                p.nitems = GMCA_KM_ITEMS_MAX + 1;
                b = rebuild(&p);
                parse_want(b, 0, GMCA_ERR_LIMIT, "17 items");
                free(b.p);
                memcpy(p.items, keep, sizeof(keep));
                p.nitems = n;
        }

        /* serials: zero, negative, over 20 octets, a non-minimal INTEGER */
        {
                static const struct {
                        const char *what;
                        const char *tlv;
                        size_t n;
                        int want;
                } sn[] = {
                    {"serial 1", "\x02\x01\x01", 3, 0},
                    {"zero serial", "\x02\x01\x00", 3, GMCA_ERR_INVALID},
                    {"negative serial", "\x02\x01\x80", 3, GMCA_ERR_INVALID},
                    {"non-minimal serial", "\x02\x02\x00\x01", 4, GMCA_ERR_INVALID},
                    {"20-octet serial",
                     "\x02\x14\x7f\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
                     "\x01\x01\x01\x01\x01\x01\x01\x01",
                     22, 0},
                    {"21-octet serial",
                     "\x02\x15\x00\x80\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
                     "\x01"
                     "\x01\x01\x01\x01\x01",
                     23, GMCA_ERR_INVALID},
                };
                saved = p.items[2];
                for (size_t i = 0; i < sizeof(sn) / sizeof(sn[0]); i++) {
                        p.items[2] = revoke_item(0xa2, (const uint8_t *)sn[i].tlv, sn[i].n);
                        b = rebuild(&p);
                        parse_want(b, 0, sn[i].want, sn[i].what);
                        free(b.p);
                        free(p.items[2].p);
                }
                /* an errorPkgRespond tag [3] in a request */
                p.items[2] = revoke_item(0xa3, (const uint8_t *)"\x02\x01\x01", 3);
                b = rebuild(&p);
                parse_want(b, 0, GMCA_ERR_INVALID, "error item in a request");
                free(b.p);
                free(p.items[2].p);
                p.items[2] = saved;
        }

        /* a non-SM2 user key in an apply item, and an over-long userName */
        {
                EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                struct buf a[32], u[32], ex[32], seq, user, item, spki, name;
                size_t na, nu, nex;
                uint8_t *sp = NULL, big[GMCA_KM_INFO_MAX + 1];
                int n = i2d_PUBKEY(p256, &sp);

                assert_true(n > 0);
                saved = p.items[0];
                nex = children(saved.p, saved.n, ex); /* [0] { ApplyKeyReq } */
                assert_int_equal(nex, 1);
                na = children(ex[0].p, ex[0].n, a);
                assert_int_equal(na, 6);
                nu = children(a[5].p, a[5].n, u);
                assert_int_equal(nu, 5);
                spki = u[1];
                u[1] = (struct buf){sp, (size_t)n};
                user = mk(0x30, u, nu);
                a[5] = user;
                seq = mk(0x30, a, na);
                item = mk(0xa0, &seq, 1);
                p.items[0] = item;
                b = rebuild(&p);
                parse_want(b, 0, GMCA_ERR_INVALID, "P-256 user key");
                free(b.p);
                free(item.p);
                free(seq.p);
                free(user.p);
                u[1] = spki;
                memset(big, 'a', sizeof(big));
                name = mk(0x80, &(struct buf){big, sizeof(big)}, 1);
                u[4] = name;
                user = mk(0x30, u, nu);
                a[5] = user;
                seq = mk(0x30, a, na);
                item = mk(0xa0, &seq, 1);
                p.items[0] = item;
                b = rebuild(&p);
                parse_want(b, 0, GMCA_ERR_LIMIT, "userName over the cap");
                free(b.p);
                free(item.p);
                free(seq.p);
                free(user.p);
                free(name.p);
                p.items[0] = saved;
                OPENSSL_free(sp);
                EVP_PKEY_free(p256);
        }
        OPENSSL_free(der);

        /* a revokeKeyRespond [2] holding a RetKeyRespond */
        make_response(&m);
        sign_ok(&m, F.km_cert, &F.km_signer.base, &der, &len);
        gmca_km_msg_clear(&m);
        split(der, len, &p);
        assert_int_equal(p.nitems, 4);
        b = rebuild(&p);
        parse_want(b, 1, 0, "response rebuilt");
        free(b.p);
        saved = p.items[1];
        p.items[1] = raw(saved.p, saved.n);
        p.items[1].p[0] = 0xa2;
        b = rebuild(&p);
        parse_want(b, 1, GMCA_ERR_INVALID, "revoke answer carrying keys");
        free(b.p);
        free(p.items[1].p);
        p.items[1] = saved;
        OPENSSL_free(der);
}

static void test_verify_refuses(void **state)
{
        struct gmca_km_msg m, p;
        struct gmca_error e = {0};
        uint8_t *der = NULL;
        size_t len = 0;

        (void)state;
        make_request(&m);
        /* signed by another key under the CA's EntName */
        sign_ok(&m, F.ca_cert, &F.other_signer.base, &der, &len);
        expect(gmca_km_msg_parse(der, len, 0, &p, &e), &e, 0, NULL, "parse");
        expect(gmca_km_msg_verify(&p, F.ca_cert, &e), &e, GMCA_ERR_VERIFY, "signature",
               "other key");
        gmca_km_msg_clear(&p);
        OPENSSL_free(der);
        /* the right key, another certificate's name */
        memset(&e, 0, sizeof(e));
        sign_ok(&m, F.twin_cert, &F.ca_signer.base, &der, &len);
        expect(gmca_km_msg_parse(der, len, 0, &p, &e), &e, 0, NULL, "parse");
        expect(gmca_km_msg_verify(&p, F.twin_cert, &e), &e, 0, NULL, "twin verifies as itself");
        expect(gmca_km_msg_verify(&p, F.ca_cert, &e), &e, GMCA_ERR_VERIFY, "EntName",
               "wrong EntName");
        gmca_km_msg_clear(&p);
        OPENSSL_free(der);
        /* one byte of the signed part changed (the task number's last byte) */
        memset(&e, 0, sizeof(e));
        sign_ok(&m, F.ca_cert, &F.ca_signer.base, &der, &len);
        {
                struct parts s;
                struct buf t;

                split(der, len, &s);
                t = raw(s.tbs[4].p, s.tbs[4].n);
                t.p[t.n - 1] ^= 1;
                s.tbs[4] = t;
                struct buf b = rebuild(&s);

                expect(gmca_km_msg_parse(b.p, b.n, 0, &p, &e), &e, 0, NULL, "parse");
                expect(gmca_km_msg_verify(&p, F.ca_cert, &e), &e, GMCA_ERR_VERIFY, NULL,
                       "tampered");
                gmca_km_msg_clear(&p);
                free(b.p);
                free(t.p);
        }
        OPENSSL_free(der);
        gmca_km_msg_clear(&m);
}

/* ---- the link, against a fake KM ---- */

enum scenario {
        S_OK,
        S_OTHER_KEY,
        S_WRONG_TASK,
        S_OLD_TIME,
        S_WRONG_CERT_NO,
        S_WRONG_ENVELOPE,
        S_ERRPKG,
        S_GARBAGE,
        S_HANG_UP,
};

struct fake_km {
        int lfd;
        X509 *comm_cert; /* the requests must verify with it */
        X509 *km_cert;
        struct gmca_pkey_signer *signer;
        volatile int scenario;
        volatile int requests, bad_requests;
};

static int answer(struct fake_km *k, const struct gmca_km_msg *q, uint8_t **der, size_t *len)
{
        struct gmca_km_msg a = {0};
        struct gmca_km_item *it = &a.items[0];
        struct gmca_error e = {0};
        const struct gmca_signer *s = &k->signer->base;
        int sc = k->scenario, rc;

        a.response = 1;
        a.n = 1;
        a.task_no = sc == S_WRONG_TASK ? q->task_no + 1 : q->task_no;
        a.time = (int64_t)time(NULL) - (sc == S_OLD_TIME ? 2 * GMCA_KM_SKEW : 0);
        it->kind = q->items[0].kind;
        memcpy(it->cert_no, q->items[0].cert_no, q->items[0].cert_no_len);
        it->cert_no_len = q->items[0].cert_no_len;
        if (sc == S_WRONG_CERT_NO)
                it->cert_no[it->cert_no_len - 1] ^= 1;
        if (sc == S_OTHER_KEY)
                s = &F.other_signer.base;
        if (sc == S_ERRPKG) {
                it->kind = GMCA_KM_ERROR;
                it->cert_no_len = 0;
                it->err_no = GMCA_KM_E_EXISTS;
                it->err_desc = strdup("a key is escrowed for that serial already");
        } else if (it->kind != GMCA_KM_REVOKE) {
                EVP_PKEY *pair = gmca_sm2_keygen(&e);

                assert_non_null(pair);
                assert_int_equal(gmca_envelope_seal(pair, q->items[0].user_pub, &it->envelope,
                                                    &it->envelope_len, NULL, NULL, &e),
                                 0);
                if (sc == S_WRONG_ENVELOPE) {
                        EVP_PKEY_free(pair);
                        pair = gmca_sm2_keygen(&e);
                }
                it->ret_pub = pair;
        }
        rc = gmca_km_msg_sign(&a, k->km_cert, s, der, len, &e);
        gmca_km_msg_clear(&a);
        return rc;
}

static int serve_conn(struct fake_km *k, int fd)
{
        for (;;) {
                struct gmca_km_msg q;
                struct gmca_error e = {0};
                uint8_t hdr[4], *req, *resp = NULL;
                size_t n, rlen = 0;

                if (gmca_read_all(fd, hdr, 4) != 0)
                        return 0;
                n = gmca_get_be32(hdr);
                if (n == 0 || n > GMCA_KM_MSG_MAX || (req = malloc(n)) == NULL)
                        return -1;
                if (gmca_read_all(fd, req, n) != 0) {
                        free(req);
                        return -1;
                }
                k->requests++;
                if (gmca_km_msg_parse(req, n, 0, &q, &e) != 0 ||
                    gmca_km_msg_verify(&q, k->comm_cert, &e) != 0) {
                        k->bad_requests++;
                        free(req);
                        return -1;
                }
                free(req);
                if (k->scenario == S_HANG_UP) {
                        gmca_km_msg_clear(&q);
                        return -1;
                }
                if (k->scenario == S_GARBAGE) {
                        resp = OPENSSL_memdup("\x30\x03\x02\x01\x01", 5);
                        rlen = 5;
                } else if (answer(k, &q, &resp, &rlen) != 0) {
                        gmca_km_msg_clear(&q);
                        return -1;
                }
                gmca_km_msg_clear(&q);
                gmca_put_be32(hdr, (uint32_t)rlen);
                if (gmca_write_all(fd, hdr, 4) != 0 || gmca_write_all(fd, resp, rlen) != 0) {
                        OPENSSL_free(resp);
                        return -1;
                }
                OPENSSL_free(resp);
        }
}

static void *fake_km_main(void *arg)
{
        struct fake_km *k = arg;
        int fd;

        while ((fd = accept(k->lfd, NULL, NULL)) >= 0) {
                (void)serve_conn(k, fd);
                close(fd);
        }
        return NULL;
}

/* A DER CSR for key, subject C=CN, O=测试, CN=cn. */
static uint8_t *csr_for(EVP_PKEY *key, const char *cn, size_t *len)
{
        struct gmca_error e = {0};
        X509_REQ *req = X509_REQ_new();
        X509_NAME *nm = X509_NAME_new();
        EVP_MD_CTX *md = gmca_sm2_sign_ctx(key, NULL, &e);
        unsigned char *der = NULL;
        int n;

        X509_NAME_add_entry_by_txt(nm, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1, -1, 0);
        X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"测试", -1, -1,
                                   0);
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
        X509_REQ_set_subject_name(req, nm);
        X509_REQ_set_pubkey(req, key);
        assert_non_null(md);
        assert_true(X509_REQ_sign_ctx(req, md) > 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > 0);
        *len = (size_t)n;
        EVP_MD_CTX_free(md);
        X509_NAME_free(nm);
        X509_REQ_free(req);
        return der;
}

static uint8_t *cert_der(X509 *x, size_t *len)
{
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);

        assert_true(n > 0);
        *len = (size_t)n;
        return der;
}

/* Records of event `what` with outcome `success` on the CA's chain. */
struct audit_count {
        int success, n;
};

static int count_one(const struct gmca_audit_rec *r, void *arg)
{
        struct audit_count *a = arg;

        a->n += r->success == a->success;
        return 0;
}

static int audit_count(struct gmca_ctx *c, const char *what, int success)
{
        struct gmca_audit_filter f = {.event = what};
        struct audit_count a = {success, 0};
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(c), &f, count_one, &a, &e), 0);
        return a.n;
}

static void test_link(void **state)
{
        struct test_ca t;
        struct gmca_ctx *c;
        struct gmca_error e = {0};
        struct gmca_km_link *l;
        struct gmca_km_item out = {0};
        struct fake_km k = {0};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char sock[400], comm_path[4096], serial[GMCA_SERIAL_HEX_MAX];
        uint8_t *csr, *der, sn[20];
        size_t csr_len, der_len, sn_len;
        X509 *km = NULL;
        pthread_t th;
        struct gmca_issue_req r = {.profile = "km"};
        const struct {
                enum scenario sc;
                int want;
                const char *msg;
        } cases[] = {
            {S_OTHER_KEY, GMCA_ERR_VERIFY, "signature"},
            {S_WRONG_TASK, GMCA_ERR_VERIFY, "task"},
            {S_OLD_TIME, GMCA_ERR_VERIFY, "clock"},
            {S_WRONG_CERT_NO, GMCA_ERR_VERIFY, "userCertNo"},
            {S_WRONG_ENVELOPE, GMCA_ERR_VERIFY, "envelope"},
            {S_ERRPKG, GMCA_ERR_EXISTS, "escrowed"},
            {S_GARBAGE, GMCA_ERR_INVALID, NULL},
            {S_HANG_UP, GMCA_ERR_IO, "unreachable"},
            {S_OK, 0, NULL},
        };

        (void)state;
        assert_int_equal(test_ca_make(&t, "kmp"), 0);
        c = gmca_ctx_open(t.dir, "unit", &e);
        assert_non_null(c);
        expect(gmca_ctx_authorise(c, t.cust, 3, &e), &e, 0, NULL, "authorise");
        l = gmca_ca_km_link(c, &e);
        assert_null(l);
        assert_int_equal(e.code, GMCA_ERR_NOTFOUND);

        /* the KM's certificate, issued by this CA under profile km */
        csr = csr_for(F.km_key, "密钥管理中心", &csr_len);
        r.csr = csr;
        r.csr_len = csr_len;
        memset(&e, 0, sizeof(e));
        expect(gmca_ca_issue(c, &r, serial, &km, &e), &e, 0, NULL, "issue km");
        OPENSSL_free(csr);
        snprintf(sock, sizeof(sock), "%s/km.sock", t.top);

        /* refused: a certificate not issued here; a relative socket path */
        der = cert_der(F.km_cert, &der_len);
        memset(&e, 0, sizeof(e));
        expect(gmca_ca_km_link_create(c, t.cust, 3, der, der_len, sock, comm_path, &e), &e,
               GMCA_ERR_VERIFY, "not issued by this CA", "stray KM certificate");
        OPENSSL_free(der);
        der = cert_der(km, &der_len);
        memset(&e, 0, sizeof(e));
        expect(gmca_ca_km_link_create(c, t.cust, 3, der, der_len, "km.sock", comm_path, &e), &e,
               GMCA_ERR_INVALID, "absolute", "relative socket");
        memset(&e, 0, sizeof(e));
        expect(gmca_ca_km_link_create(c, t.cust, 3, der, der_len, sock, comm_path, &e), &e, 0, NULL,
               "link");
        memset(&e, 0, sizeof(e));
        expect(gmca_ca_km_link_create(c, t.cust, 3, der, der_len, sock, comm_path, &e), &e,
               GMCA_ERR_EXISTS, NULL, "second link");
        OPENSSL_free(der);

        memset(&e, 0, sizeof(e));
        l = gmca_ca_km_link(c, &e);
        assert_non_null(l);
        /* nobody listens yet */
        expect(gmca_km_revoke(l, SN1, sizeof(SN1), &e), &e, GMCA_ERR_IO, "unreachable", "down");

        k.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        assert_int_equal(bind(k.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(k.lfd, 4), 0);
        {
                uint8_t *pem = NULL;
                size_t plen = 0;

                assert_int_equal(gmca_read_file(comm_path, 65536, &pem, &plen, &e), 0);
                k.comm_cert = gmca_cert_parse(pem, plen, &e);
                free(pem);
                assert_non_null(k.comm_cert);
        }
        k.km_cert = km;
        k.signer = &F.km_signer;
        assert_int_equal(pthread_create(&th, NULL, fake_km_main, &k), 0);

        memcpy(sn, SN1, sizeof(SN1));
        sn_len = sizeof(SN1);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                k.scenario = cases[i].sc;
                for (int kind = 0; kind < 3; kind++) {
                        int rc;

                        memset(&e, 0, sizeof(e));
                        if (kind == GMCA_KM_APPLY)
                                rc = gmca_km_apply(l, sn, sn_len, F.user_key, 1700000000,
                                                   1800000000, "C=CN, CN=张三", &out, &e);
                        else if (kind == GMCA_KM_RESTORE)
                                rc = gmca_km_restore(l, sn, sn_len, F.user_key,
                                                     "{\"kind\":\"subscriber\"}", &out, &e);
                        else if (cases[i].sc == S_WRONG_ENVELOPE)
                                continue; /* a revoke answer has no envelope */
                        else
                                rc = gmca_km_revoke(l, sn, sn_len, &e);
                        if (rc != cases[i].want || (cases[i].msg && !strstr(e.msg, cases[i].msg)))
                                fail_msg("scenario %d kind %d: rc %d (%s), want %d", cases[i].sc,
                                         kind, rc, e.msg, cases[i].want);
                        if (rc == 0 && kind != GMCA_KM_REVOKE) {
                                EVP_PKEY *got = gmca_envelope_open(out.envelope, out.envelope_len,
                                                                   F.user_key, &e);

                                assert_non_null(got);
                                assert_int_equal(EVP_PKEY_eq(got, out.ret_pub), 1);
                                EVP_PKEY_free(got);
                        }
                        gmca_km_item_clear(&out);
                }
        }
        assert_int_equal(k.bad_requests, 0);
        /* every refused answer is on the CA's chain: 4 scenarios x 3 kinds, 2 envelopes, 3 garbage
         */
        assert_int_equal(audit_count(c, "km.response", 0), 17);
        assert_int_equal(audit_count(c, "km.link", 1), 1);
        assert_int_equal(audit_count(c, "km.link", 0), 3);
        assert_true(k.requests >= 20);

        shutdown(k.lfd, SHUT_RDWR);
        close(k.lfd);
        gmca_km_link_close(l);
        pthread_join(th, NULL);
        X509_free(k.comm_cert);
        X509_free(km);
        gmca_ctx_close(c);
        test_ca_remove(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_request_roundtrip), cmocka_unit_test(test_response_roundtrip),
            cmocka_unit_test(test_sign_refuses),      cmocka_unit_test(test_parse_strict),
            cmocka_unit_test(test_verify_refuses),    cmocka_unit_test(test_link),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
