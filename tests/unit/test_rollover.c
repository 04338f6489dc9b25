/*
 * Unit tests of the CA key rollover (CPS §6.8) through the library: the
 * three certificates of a root rollover checked with
 * gmca_cert_verify_signed_by and by OpenSSL's own path validation (every
 * certificate carrying the GM/T 0009 ID) for a relying party that trusts
 * only the old root and one that trusts only the new; the operational CA's
 * rollover under the new root; and refusals — before the ceremony and after
 * the new key exists — that are audited and leave store, device and
 * published files as they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "audit.h"
#include "ca.h"
#include "crypto.h"
#include "util.h"
#include "testcsr.h"
#include "testutil.h"

static const char *const names[5] = {"张三", "李四", "王五", "赵六", "钱七"};
static const char *const pins[5] = {"Roll1pinAA", "Roll2pinBB", "Roll3pinCC", "Roll4pinDD",
                                    "Roll5pinEE"};
#define SM2_ID "1234567812345678"
#define INFO "{\"identity_card_number\": \"11010519491231002X\"}"

struct fixture {
        char top[256];
        char dir[300];
        char shares[5][320];
        struct gmca_custodian cust[5];
        struct gmca_ctx *c;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        const char *src = getenv("GMCA_SRC");
        char profiles[1024], d[300];

        if (f == NULL)
                return -1;
        snprintf(f->top, sizeof(f->top), "/tmp/gmca-test-rollover.XXXXXX");
        if (mkdtemp(f->top) == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/ca", f->top);
        snprintf(d, sizeof(d), "%s/shares", f->top);
        mkdir(d, 0700);
        for (int i = 0; i < 5; i++) {
                snprintf(f->shares[i], sizeof(f->shares[i]), "%s/share-%d.json", d, i + 1);
                f->cust[i] =
                    (struct gmca_custodian){names[i], pins[i], strlen(pins[i]), f->shares[i]};
        }
        snprintf(profiles, sizeof(profiles), "%s/conf/profiles", src != NULL ? src : ".");
        p.root_dn = "C=CN, O=更替单元测试, CN=更替单元测试根 CA";
        p.sub_dn = "C=CN, O=更替单元测试, CN=更替单元测试运营 CA";
        p.profiles_src = profiles;
        p.actor = "unit";
        p.custodians = f->cust;
        p.ncustodians = 5;
        if (gmca_ca_init(f->dir, &p, &e) != 0) {
                fprintf(stderr, "init: %s\n", e.msg);
                return -1;
        }
        if ((f->c = gmca_ctx_open(f->dir, "unit-operator", &e)) == NULL) {
                fprintf(stderr, "open: %s\n", e.msg);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[600];

        gmca_ctx_close(f->c);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static X509 *cert_by_serial(struct fixture *f, const char *serial);

static X509 *issue(struct fixture *f, const char *cn)
{
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        size_t len;
        uint8_t *csr = test_csr(cn, &len);
        struct gmca_issue_req r = {.ca = NULL,
                                   .profile = "personal-sign",
                                   .csr = csr,
                                   .csr_len = len,
                                   .info_json = INFO,
                                   .info_len = strlen(INFO),
                                   .days = 0,
                                   .not_after = 0};
        X509 *cert = NULL;

        if (gmca_ca_issue(f->c, &r, serial, &cert, &e) != 0)
                fail_msg("issue %s: %s", cn, e.msg);
        OPENSSL_free(csr);
        X509_free(cert);
        return cert_by_serial(f, serial); /* as a relying party gets it: parsed from DER */
}

static void activate(struct fixture *f, size_t first)
{
        struct gmca_error e = {0};

        if (gmca_ctx_activate(f->c, f->cust + first, 3, &e) != 0)
                fail_msg("activate: %s", e.msg);
}

static X509 *der_cert(const uint8_t *der, size_t len)
{
        const uint8_t *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);

        assert_non_null(x);
        assert_ptr_equal(p, der + len);
        return x;
}

static X509 *ca_cert(struct fixture *f, const char *name)
{
        struct gmca_ca_rec r;
        struct gmca_error e = {0};
        X509 *x;

        memset(&r, 0, sizeof(r));
        if (gmca_store_ca_get(gmca_ctx_store(f->c), name, &r, &e) != 0)
                fail_msg("CA %s: %s", name, e.msg);
        x = der_cert(r.cert_der, r.cert_len);
        gmca_ca_rec_clear(&r);
        return x;
}

static X509 *cert_by_serial(struct fixture *f, const char *serial)
{
        struct gmca_cert_rec r;
        struct gmca_error e = {0};
        X509 *x;

        memset(&r, 0, sizeof(r));
        if (gmca_store_cert_get(gmca_ctx_store(f->c), serial, &r, &e) != 0)
                fail_msg("cert %s: %s", serial, e.msg);
        x = der_cert(r.der, r.der_len);
        gmca_cert_rec_clear(&r);
        return x;
}

/* The CA's key state, "absent" if there is no such CA; valid until the next call. */
static const char *key_state(struct fixture *f, const char *name)
{
        static char state[32];
        struct gmca_ca_rec r;
        struct gmca_error e = {0};

        memset(&r, 0, sizeof(r));
        if (gmca_store_ca_get(gmca_ctx_store(f->c), name, &r, &e) != 0)
                snprintf(state, sizeof(state), "absent");
        else
                snprintf(state, sizeof(state), "%s", r.key_state);
        gmca_ca_rec_clear(&r);
        return state;
}

static int signed_by(X509 *cert, X509 *issuer)
{
        struct gmca_error e = {0};

        return gmca_cert_verify_signed_by(cert, X509_get0_pubkey(issuer), SM2_ID, &e) == 0;
}

static void set_id(X509 *x)
{
        ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();

        assert_non_null(id);
        assert_int_equal(ASN1_OCTET_STRING_set(id, (const unsigned char *)SM2_ID, 16), 1);
        X509_set0_distinguishing_id(x, id);
}

/*
 * OpenSSL's path validation for a relying party that trusts only anchor,
 * given leaf and the untrusted pool: 1 if it builds a valid path, and then
 * the path is as long as want_len (0: any).
 */
static int path_ok(X509 *anchor, X509 *leaf, X509 **pool, size_t npool, int want_len)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        int ok;

        assert_non_null(store);
        assert_non_null(ctx);
        assert_non_null(untrusted);
        set_id(anchor);
        set_id(leaf);
        assert_int_equal(X509_STORE_add_cert(store, anchor), 1);
        for (size_t i = 0; i < npool; i++) {
                set_id(pool[i]);
                assert_true(sk_X509_push(untrusted, pool[i]) > 0);
        }
        assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
        ok = X509_verify_cert(ctx) == 1;
        if (ok && want_len > 0)
                assert_int_equal(sk_X509_num(X509_STORE_CTX_get0_chain(ctx)), want_len);
        X509_STORE_CTX_free(ctx);
        sk_X509_free(untrusted);
        X509_STORE_free(store);
        ERR_clear_error();
        return ok;
}

static void roll(struct fixture *f, size_t first, const struct gmca_rollover_params *p,
                 struct gmca_rollover_result *out)
{
        struct gmca_error e = {0};

        expect(gmca_ca_rollover(f->c, f->cust + first, 3, p, out, &e), &e, 0, NULL, "rollover");
}

static void test_root_and_sub_rollover(void **state)
{
        struct fixture *f = *state;
        struct gmca_rollover_params pr = {.ca = "root"}, ps = {0};
        struct gmca_rollover_result rr, rs, info;
        struct gmca_error e = {0};
        char old[GMCA_NAME_MAX], path[512];
        X509 *a, *b, *root, *sub, *nwn, *own, *nwo, *subg2, *pool[3];

        activate(f, 0);
        a = issue(f, "甲");
        /* A root rollover with the same DN: only the keys tell the generations apart. */
        roll(f, 1, &pr, &rr);
        assert_string_equal(rr.name, "root-g2");
        assert_string_equal(key_state(f, "root"), GMCA_KEY_SUPERSEDED);
        assert_string_equal(key_state(f, "root-g2"), GMCA_KEY_ACTIVE);
        assert_string_equal(gmca_ctx_default_ca(f->c), "sub");
        roll(f, 2, &ps, &rs);
        assert_string_equal(rs.name, "sub-g2");
        assert_string_equal(rs.old_with_new, "");
        assert_string_equal(rs.new_with_old, "");
        assert_string_equal(gmca_ctx_default_ca(f->c), "sub-g2");
        assert_string_equal(key_state(f, "sub"), GMCA_KEY_SUPERSEDED);
        activate(f, 2);
        b = issue(f, "乙");

        root = ca_cert(f, "root");
        sub = ca_cert(f, "sub");
        nwn = ca_cert(f, "root-g2");
        subg2 = ca_cert(f, "sub-g2");
        own = cert_by_serial(f, rr.old_with_new);
        nwo = cert_by_serial(f, rr.new_with_old);
        {
                X509 *again = cert_by_serial(f, rr.new_with_new);

                assert_int_equal(X509_cmp(again, nwn), 0);
                X509_free(again);
        }
        snprintf(path, sizeof(path), "%s/certs/root-g2.old-with-new.pem", f->dir);
        assert_int_equal(access(path, F_OK), 0);

        /* Each certificate: who signed it, whose key it carries. */
        assert_true(signed_by(nwn, nwn));
        assert_false(signed_by(nwn, root));
        assert_true(signed_by(own, nwn));
        assert_false(signed_by(own, root));
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(own), X509_get0_pubkey(root)), 1);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(own), X509_get_subject_name(root)), 0);
        assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(own), X509_get0_notAfter(root)), 0);
        assert_true(signed_by(nwo, root));
        assert_false(signed_by(nwo, nwn));
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(nwo), X509_get0_pubkey(nwn)), 1);
        assert_true(ASN1_TIME_compare(X509_get0_notAfter(nwo), X509_get0_notAfter(root)) <= 0);
        assert_true(signed_by(subg2, nwn));
        assert_true(signed_by(b, subg2));
        assert_true(signed_by(a, sub));

        /* The old-root holder: B <- sub-g2 <- NewWithOld <- root. */
        pool[0] = subg2;
        pool[1] = nwo;
        assert_true(path_ok(root, b, pool, 2, 4));
        assert_false(path_ok(root, b, pool, 1, 0)); /* without the link */
        /* The new-root holder: A <- sub <- OldWithNew <- root-g2. */
        pool[0] = sub;
        pool[1] = own;
        assert_true(path_ok(nwn, a, pool, 2, 4));
        assert_false(path_ok(nwn, a, pool, 1, 0));
        /* Each holder still reaches its own generation directly. */
        pool[0] = subg2;
        assert_true(path_ok(nwn, b, pool, 1, 3));
        pool[0] = sub;
        assert_true(path_ok(root, a, pool, 1, 3));
        /* A link the wrong way round is no path. */
        pool[0] = subg2;
        pool[1] = own;
        assert_false(path_ok(root, b, pool, 2, 0));

        expect(gmca_ca_rollover_info(f->c, "root-g2", old, &info, &e), &e, 0, NULL, "info");
        assert_string_equal(old, "root");
        assert_string_equal(info.old_with_new, rr.old_with_new);
        assert_string_equal(info.new_with_old, rr.new_with_old);
        assert_string_equal(info.new_with_new, rr.new_with_new);
        expect(gmca_ca_rollover_info(f->c, "sub-g2", old, &info, &e), &e, 0, NULL, "info sub");
        assert_string_equal(old, "sub");
        assert_string_equal(info.old_with_new, "");
        expect(gmca_ca_rollover_info(f->c, "root", old, &info, &e), &e, GMCA_ERR_NOTFOUND,
               "not made by a key rollover", "info of an initial CA");

        X509 *all[] = {a, b, root, sub, nwn, own, nwo, subg2};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                X509_free(all[i]);
}

static int count_audit(const struct gmca_audit_rec *r, void *arg)
{
        (void)r;
        (*(int64_t *)arg)++;
        return 0;
}

static int64_t audits(struct fixture *f)
{
        int64_t n = 0;
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(f->c), NULL, count_audit, &n, &e), 0);
        return n;
}

static int64_t certs(struct fixture *f)
{
        int64_t n = -1;
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_cert_count(gmca_ctx_store(f->c), &n, &e), 0);
        return n;
}

static int has_key(struct fixture *f, unsigned index)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/keys/device/key-%04u.sdk", f->dir, index);
        return access(path, F_OK) == 0;
}

/* Each refusal: the code and cause, one audit record, and nothing else changed. */
static void test_refusals(void **state)
{
        struct fixture *f = *state;
        static const struct {
                struct gmca_rollover_params p;
                size_t ncust;
                int rc;
                const char *msg;
        } cases[] = {
            {{.ca = "nosuch"}, 3, GMCA_ERR_NOTFOUND, "nosuch"},
            {{.ca = "root"}, 2, GMCA_ERR_AUTH, "3 of 5"},
            {{.ca = "root", .new_name = "Root G2"}, 3, GMCA_ERR_INVALID, "[a-z0-9_-]"},
            {{.ca = "root", .new_name = "sub"}, 3, GMCA_ERR_EXISTS, "exists"},
            {{.ca = "root", .parent = "sub"}, 3, GMCA_ERR_INVALID, "no parent"},
            {{.ca = "root", .days = 30}, 3, GMCA_ERR_POLICY, "rule 5"},
            {{.ca = "root", .dn = "C=CN, CN=无机构"}, 3, GMCA_ERR_POLICY, "O is required"},
            {{.ca = "sub", .parent = "sub"}, 3, GMCA_ERR_INVALID, "its own new key"},
            {{.ca = "sub", .days = 100000}, 3, GMCA_ERR_POLICY, "sub-ca"},
        };
        struct gmca_rollover_result res;
        int64_t a0 = audits(f), c0 = certs(f);

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                char what[64];

                snprintf(what, sizeof(what), "refusal %zu", i);
                expect(gmca_ca_rollover(f->c, f->cust, cases[i].ncust, &cases[i].p, &res, &e), &e,
                       cases[i].rc, cases[i].msg, what);
                assert_int_equal(audits(f), a0 + (int64_t)i + 1);
        }
        assert_int_equal(certs(f), c0);
        assert_string_equal(key_state(f, "root"), GMCA_KEY_ACTIVE);
        assert_string_equal(key_state(f, "sub"), GMCA_KEY_ACTIVE);
        assert_string_equal(key_state(f, "root-g2"), "absent");
        assert_false(has_key(f, 3));

        /* A superseded key rolls over no more; its successor does. */
        {
                struct gmca_rollover_params p = {.ca = "sub"};
                struct gmca_error e = {0};

                roll(f, 0, &p, &res);
                a0 = audits(f);
                expect(gmca_ca_rollover(f->c, f->cust, 3, &p, &res, &e), &e, GMCA_ERR_STATE,
                       "successor is sub-g2", "superseded");
                assert_int_equal(audits(f), a0 + 1);
        }
}

/*
 * A failure after the new key exists (publishing the last certificate):
 * the transaction rolls back, the new key leaves the device, the files
 * already written are removed.
 */
static void test_failure_after_keygen(void **state)
{
        struct fixture *f = *state;
        struct gmca_rollover_params p = {.ca = "root"};
        struct gmca_rollover_result res;
        struct gmca_error e = {0};
        char blocker[512], path[512];
        int64_t a0 = audits(f), c0 = certs(f);

        snprintf(blocker, sizeof(blocker), "%s/certs/root-g2.new-with-old.pem", f->dir);
        assert_int_equal(mkdir(blocker, 0700), 0);
        expect(gmca_ca_rollover(f->c, f->cust + 2, 3, &p, &res, &e), &e, GMCA_ERR_IO,
               "new-with-old", "publish fails");
        assert_int_equal(audits(f), a0 + 1);
        assert_int_equal(certs(f), c0);
        assert_string_equal(key_state(f, "root"), GMCA_KEY_ACTIVE);
        assert_string_equal(key_state(f, "root-g2"), "absent");
        assert_false(has_key(f, 3));
        snprintf(path, sizeof(path), "%s/certs/root-g2.pem", f->dir);
        assert_int_not_equal(access(path, F_OK), 0);
        snprintf(path, sizeof(path), "%s/certs/root-g2.old-with-new.pem", f->dir);
        assert_int_not_equal(access(path, F_OK), 0);

        /* Once the obstacle is gone the same ceremony succeeds at the same index. */
        assert_int_equal(rmdir(blocker), 0);
        gmca_error_clear(&e);
        roll(f, 2, &p, &res);
        assert_string_equal(res.name, "root-g2");
        assert_true(has_key(f, 3));
        assert_int_equal(certs(f), c0 + 3);
        assert_string_equal(key_state(f, "root"), GMCA_KEY_SUPERSEDED);
        /* Names go on by generation. */
        p.ca = "root-g2";
        roll(f, 0, &p, &res);
        assert_string_equal(res.name, "root-g3");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_root_and_sub_rollover, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_failure_after_keygen, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
