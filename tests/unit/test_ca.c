/*
 * Unit tests of the CA engine operations: init, activation, issuance,
 * revocation and CRLs, with the rule that every operation and every
 * rejection leaves exactly one audit record and nothing else.
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
#include <sqlite3.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca.h"
#include "crl.h"
#include "crypto.h"
#include "util.h"
#include "testcsr.h"

static const char *const names[5] = {"张三", "李四", "王五", "赵六", "钱七"};
static const char *const pins[5] = {"Unit1pinAA", "Unit2pinBB", "Unit3pinCC", "Unit4pinDD",
                                    "Unit5pinEE"};
#define INFO "{\"identity_card_number\": \"11010519491231002X\"}"

struct fixture {
        char top[256];
        char dir[300];
        char shares[5][320];
        struct gmca_custodian cust[5];
        struct gmca_ctx *c;
};

/* The five custodians with share files under top/sharesN/ (tag keeps sets apart). */
static void custodians(struct fixture *f, const char *tag)
{
        char d[300];

        snprintf(d, sizeof(d), "%s/shares%s", f->top, tag);
        mkdir(d, 0700);
        for (int i = 0; i < 5; i++) {
                snprintf(f->shares[i], sizeof(f->shares[i]), "%s/share-%d.json", d, i + 1);
                f->cust[i] =
                    (struct gmca_custodian){names[i], pins[i], strlen(pins[i]), f->shares[i]};
        }
}

static const char *profiles_dir(void)
{
        static char path[1024];
        const char *src = getenv("GMCA_SRC");

        snprintf(path, sizeof(path), "%s/conf/profiles", src != NULL ? src : ".");
        return path;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};

        snprintf(f->top, sizeof(f->top), "/tmp/gmca-test-ca.XXXXXX");
        if (mkdtemp(f->top) == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/ca", f->top);
        p.root_dn = "C=CN, O=单元测试认证中心, CN=单元测试根 CA";
        p.sub_dn = "C=CN, O=单元测试认证中心, CN=单元测试运营 CA";
        p.profiles_src = profiles_dir();
        p.actor = "unit";
        custodians(f, "");
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
        gmca_set_clock(NULL);
        return 0;
}

static int64_t certs(struct fixture *f)
{
        int64_t n = -1;
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_cert_count(gmca_ctx_store(f->c), &n, &e), 0);
        return n;
}

static int count_audit(const struct gmca_audit_rec *r, void *arg)
{
        int64_t *n = arg;

        (void)r;
        (*n)++;
        return 0;
}

static int64_t audits(struct fixture *f)
{
        int64_t n = 0;
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(f->c), NULL, count_audit, &n, &e), 0);
        return n;
}

static int last_success(const struct gmca_audit_rec *r, void *arg)
{
        *(int *)arg = r->success;
        return 0;
}

static int last_outcome(struct fixture *f)
{
        int s = -1;
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(f->c), NULL, last_success, &s, &e),
                         0);
        return s;
}

static void chain_ok(struct fixture *f)
{
        int64_t count = 0, bad = 0;
        struct gmca_error e = {0};

        assert_int_equal(gmca_audit_verify(gmca_ctx_store(f->c), &count, &bad, &e), 0);
}

static void activate(struct fixture *f)
{
        struct gmca_error e = {0};

        if (gmca_ctx_activate(f->c, f->cust + 1, 3, &e) != 0)
                fail_msg("activate: %s", e.msg);
}

static void test_init_layout(void **state)
{
        struct fixture *f = *state;
        char path[512];
        struct stat st;

        for (int i = 0; i < 5; i++) {
                assert_int_equal(stat(f->shares[i], &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        snprintf(path, sizeof(path), "%s/keys", f->dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        /* root + sub certificates are in the store, and the init is audited */
        assert_int_equal(certs(f), 2);
        assert_true(audits(f) >= 5);
        chain_ok(f);
        assert_string_equal(gmca_ctx_default_ca(f->c), "sub");
}

static void test_init_refuses_existing(void **state)
{
        struct fixture *f = *state;
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};

        p.root_dn = "C=CN, O=X, CN=Y";
        p.sub_dn = "C=CN, O=X, CN=Z";
        p.profiles_src = profiles_dir();
        custodians(f, "-again");
        p.custodians = f->cust;
        p.ncustodians = 5;
        assert_int_equal(gmca_ca_init(f->dir, &p, &e), GMCA_ERR_EXISTS);
}

static void test_init_failure_leaves_nothing(void **state)
{
        struct fixture *f = *state;
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        char dir[512], cmd[1100];

        snprintf(dir, sizeof(dir), "%s/other", f->top);
        p.root_dn = "C=CN, O=X, CN=Y";
        p.sub_dn = "C=CN, O=X, XX=Z"; /* unknown attribute: fails after the root is built */
        p.profiles_src = profiles_dir();
        custodians(f, "-failed");
        p.custodians = f->cust;
        p.ncustodians = 5;
        assert_int_equal(gmca_ca_init(dir, &p, &e), GMCA_ERR_INVALID);
        assert_int_not_equal(access(dir, F_OK), 0);
        /* no temporary directory is left beside it, and no share went out */
        snprintf(cmd, sizeof(cmd), "ls -d '%s'/other* '%s'/shares-failed/* >/dev/null 2>&1", f->top,
                 f->top);
        assert_int_not_equal(system(cmd), 0);
        /* A weak PIN is refused before anything is made (CPS §7.4.1). */
        p.sub_dn = "C=CN, O=X, CN=Z";
        f->cust[2].pin = "abcdefghij"; /* no digit */
        f->cust[2].pinlen = 10;
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_init(dir, &p, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "7.4.1"));
        assert_int_not_equal(system(cmd), 0);
        /* Too few custodians. */
        f->cust[2].pin = pins[2];
        f->cust[2].pinlen = strlen(pins[2]);
        p.ncustodians = 1;
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_init(dir, &p, &e), GMCA_ERR_INVALID);
}

static void test_activate_wrong_passphrase(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        struct gmca_custodian bad[3];
        int64_t a0 = audits(f);

        /* A wrong PIN: refused, audited. */
        memcpy(bad, f->cust, sizeof(bad));
        bad[1].pin = "Wrong9pinXX";
        bad[1].pinlen = strlen(bad[1].pin);
        assert_int_equal(gmca_ctx_activate(f->c, bad, 3, &e), GMCA_ERR_AUTH);
        assert_int_equal(audits(f), a0 + 1);
        assert_int_equal(last_outcome(f), 0);
        /* Two custodians are not enough. */
        gmca_error_clear(&e);
        assert_int_equal(gmca_ctx_activate(f->c, f->cust, 2, &e), GMCA_ERR_AUTH);
        assert_int_equal(audits(f), a0 + 2);
        activate(f);
        assert_int_equal(last_outcome(f), 1);
        chain_ok(f);
}

static void test_issue_and_revoke(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX], serial2[GMCA_SERIAL_HEX_MAX];
        struct gmca_cert_rec rec;
        size_t len;
        uint8_t *csr = test_csr("张三", &len);
        struct gmca_issue_req r = {.ca = NULL,
                                   .profile = "personal-sign",
                                   .csr = csr,
                                   .csr_len = len,
                                   .info_json = INFO,
                                   .info_len = strlen(INFO),
                                   .days = 0,
                                   .not_after = 0};
        X509 *cert = NULL;
        char *value = NULL;
        int64_t c0;

        activate(f);
        c0 = certs(f);
        assert_int_equal(gmca_ca_issue(f->c, &r, serial, &cert, &e), 0);
        assert_non_null(cert);
        assert_int_equal(strlen(serial), 32);
        assert_int_equal(certs(f), c0 + 1);
        assert_int_equal(gmca_cert_get_pext(cert, GMCA_PEXT_IDENTITY_CARD, &value, &e), 0);
        assert_string_equal(value, "11010519491231002X");
        OPENSSL_free(value);
        memset(&rec, 0, sizeof(rec));
        assert_int_equal(gmca_store_cert_get(gmca_ctx_store(f->c), serial, &rec, &e), 0);
        assert_string_equal(rec.profile, "personal-sign");
        assert_int_equal(rec.status, GMCA_CERT_VALID);
        assert_non_null(strstr(rec.subject, "张三"));
        gmca_cert_rec_clear(&rec);

        /* a second certificate from the same CSR gets another serial */
        assert_int_equal(gmca_ca_issue(f->c, &r, serial2, NULL, &e), 0);
        assert_string_not_equal(serial, serial2);

        assert_int_equal(gmca_ca_revoke(f->c, serial, CRL_REASON_KEY_COMPROMISE, 0, &e), 0);
        assert_int_equal(gmca_ca_revoke(f->c, serial, CRL_REASON_SUPERSEDED, 0, &e),
                         GMCA_ERR_STATE);
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_revoke(f->c, "00DEADBEEF", CRL_REASON_SUPERSEDED, 0, &e),
                         GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_revoke(f->c, serial2, CRL_REASON_REMOVE_FROM_CRL, 0, &e),
                         GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(
            gmca_ca_revoke(f->c, serial2, CRL_REASON_SUPERSEDED, (int64_t)gmca_now() + 86400, &e),
            GMCA_ERR_INVALID);
        chain_ok(f);
        X509_free(cert);
        OPENSSL_free(csr);
}

static void test_rejections_audited(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        size_t len;
        uint8_t *csr = test_csr("李四", &len);
        static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
        struct {
                const char *profile;
                const uint8_t *csr;
                size_t len;
                const char *info;
                int days;
                int want;
        } cases[] = {
            {"personal-sign", junk, sizeof(junk), INFO, 0, GMCA_ERR_INVALID},
            {"no-such-profile", csr, len, INFO, 0, GMCA_ERR_NOTFOUND},
            {"../root-ca", csr, len, INFO, 0, GMCA_ERR_INVALID},
            {"personal-sign", csr, len, NULL, 0, GMCA_ERR_POLICY},
            {"personal-sign", csr, len, "{\"identity_card_number\": 5}", 0, GMCA_ERR_INVALID},
            {"personal-sign", csr, len, INFO, 100000, GMCA_ERR_POLICY},
            {"sub-ca", csr, len, INFO, 0, GMCA_ERR_POLICY},
        };
        int64_t c0, a0;

        /* not activated: refused and audited */
        c0 = certs(f);
        a0 = audits(f);
        {
                struct gmca_issue_req r = {.ca = NULL,
                                           .profile = "personal-sign",
                                           .csr = csr,
                                           .csr_len = len,
                                           .info_json = INFO,
                                           .info_len = strlen(INFO),
                                           .days = 0,
                                           .not_after = 0};

                assert_int_equal(gmca_ca_issue(f->c, &r, serial, NULL, &e), GMCA_ERR_STATE);
        }
        assert_int_equal(certs(f), c0);
        assert_int_equal(audits(f), a0 + 1);
        activate(f);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_issue_req r = {.ca = NULL,
                                           .profile = cases[i].profile,
                                           .csr = cases[i].csr,
                                           .csr_len = cases[i].len,
                                           .info_json = cases[i].info,
                                           .info_len = cases[i].info ? strlen(cases[i].info) : 0,
                                           .days = cases[i].days,
                                           .not_after = 0};
                int rc;

                c0 = certs(f);
                a0 = audits(f);
                gmca_error_clear(&e);
                rc = gmca_ca_issue(f->c, &r, serial, NULL, &e);
                if (rc != cases[i].want)
                        fail_msg("case %zu: rc %d want %d: %s", i, rc, cases[i].want, e.msg);
                assert_true(e.msg[0] != '\0');
                assert_int_equal(certs(f), c0);
                assert_int_equal(audits(f), a0 + 1);
                assert_int_equal(last_outcome(f), 0);
        }
        chain_ok(f);
        OPENSSL_free(csr);
}

static time_t late_clock(void)
{
        /* 10 days before the operational CA's end (profile sub-ca: 10 years) */
        return time(NULL) + (time_t)3650 * 86400 - 10 * 86400;
}

/* CPS §6.8 rule 1: near its end the CA refuses what would outlive it, audited. */
static void test_validity_within_ca(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        size_t len;
        uint8_t *csr = test_csr("王五", &len);
        struct gmca_issue_req r = {.ca = NULL,
                                   .profile = "personal-sign",
                                   .csr = csr,
                                   .csr_len = len,
                                   .info_json = INFO,
                                   .info_len = strlen(INFO),
                                   .days = 0,
                                   .not_after = 0};
        X509 *cert = NULL, *ca = NULL;
        struct gmca_ca_rec carec;
        const uint8_t *p;
        int64_t before;

        activate(f);
        gmca_set_clock(late_clock);
        before = audits(f);
        assert_int_equal(gmca_ca_issue(f->c, &r, serial, &cert, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "§6.8 rule 1"));
        assert_null(cert);
        assert_int_equal(audits(f), before + 1);
        gmca_error_clear(&e);
        r.days = 9;
        assert_int_equal(gmca_ca_issue(f->c, &r, serial, &cert, &e), 0);
        gmca_set_clock(NULL);
        memset(&carec, 0, sizeof(carec));
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(f->c), "sub", &carec, &e), 0);
        p = carec.cert_der;
        ca = d2i_X509(NULL, &p, (long)carec.cert_len);
        assert_non_null(ca);
        assert_true(ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(ca)) < 0);
        X509_free(ca);
        X509_free(cert);
        gmca_ca_rec_clear(&carec);
        OPENSSL_free(csr);
}

static void test_crl(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        size_t len;
        uint8_t *csr = test_csr("赵六", &len);
        struct gmca_issue_req r = {.ca = NULL,
                                   .profile = "personal-sign",
                                   .csr = csr,
                                   .csr_len = len,
                                   .info_json = INFO,
                                   .info_len = strlen(INFO),
                                   .days = 0,
                                   .not_after = 0};
        struct gmca_crl_rec c1, c2;
        struct gmca_ca_rec carec;
        X509 *ca;
        X509_CRL *crl;
        const uint8_t *p;

        memset(&c1, 0, sizeof(c1));
        memset(&c2, 0, sizeof(c2));
        memset(&carec, 0, sizeof(carec));
        assert_int_equal(gmca_ca_crl_generate(f->c, NULL, 0, &c1, &e), GMCA_ERR_STATE);
        gmca_error_clear(&e);
        activate(f);
        assert_int_equal(gmca_ca_crl_generate(f->c, NULL, 0, &c1, &e), 0);
        assert_int_equal(c1.number, 1);
        assert_int_equal(c1.entries, 0);
        assert_int_equal(c1.next_update - c1.this_update, 24 * 3600);
        assert_int_equal(gmca_ca_issue(f->c, &r, serial, NULL, &e), 0);
        assert_int_equal(gmca_ca_revoke(f->c, serial, CRL_REASON_KEY_COMPROMISE, 0, &e), 0);
        assert_int_equal(gmca_ca_crl_generate(f->c, NULL, 6, &c2, &e), 0);
        assert_int_equal(c2.number, 2);
        assert_int_equal(c2.entries, 1);
        assert_int_equal(c2.next_update - c2.this_update, 6 * 3600);
        /* the CRL verifies under the operational CA's key with the SM2 ID */
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(f->c), "sub", &carec, &e), 0);
        p = carec.cert_der;
        ca = d2i_X509(NULL, &p, (long)carec.cert_len);
        assert_non_null(ca);
        crl = gmca_crl_parse(c2.der, c2.der_len, &e);
        assert_non_null(crl);
        assert_int_equal(gmca_crl_verify(crl, X509_get0_pubkey(ca), NULL, &e), 0);
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
        assert_int_equal(gmca_ca_crl_generate(f->c, NULL, 1000, NULL, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_crl_generate(f->c, "nosuch", 0, NULL, &e), GMCA_ERR_NOTFOUND);
        X509_CRL_free(crl);
        X509_free(ca);
        gmca_ca_rec_clear(&carec);
        gmca_crl_rec_clear(&c1);
        gmca_crl_rec_clear(&c2);
        chain_ok(f);
        OPENSSL_free(csr);
}

static time_t sched_now;
static time_t sched_clock(void)
{
        return sched_now;
}

/* The latest CRL of a CA, its record and parsed form (both to be freed by the caller). */
static X509_CRL *latest_crl(struct fixture *f, const char *ca, struct gmca_crl_rec *out)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec rec;
        X509_CRL *crl;

        memset(&rec, 0, sizeof(rec));
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(f->c), ca, &rec, &e), 0);
        assert_int_equal(gmca_store_crl_latest(gmca_ctx_store(f->c), rec.id, out, &e), 0);
        gmca_ca_rec_clear(&rec);
        crl = gmca_crl_parse(out->der, out->der_len, &e);
        assert_non_null(crl);
        return crl;
}

/*
 * The CRL schedule (CPS §3.9.10): every CA that may sign CRLs gets one when
 * it has none, when the latest is within interval/4 of its nextUpdate, or
 * when forced; a revoked certificate stays on the CRL after it expires.
 */
static void test_crl_refresh(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        struct gmca_crl_rec r1, r, got;
        struct gmca_ca_rec sub;
        char serial[GMCA_SERIAL_HEX_MAX];
        size_t len, made = 99;
        uint8_t *csr = test_csr("孙八", &len);
        struct gmca_issue_req ir = {.ca = NULL,
                                    .profile = "personal-sign",
                                    .csr = csr,
                                    .csr_len = len,
                                    .info_json = INFO,
                                    .info_len = strlen(INFO),
                                    .days = 1,
                                    .not_after = 0};
        int64_t next = 0, t0;
        X509_CRL *crl;
        int64_t n0;

        memset(&r1, 0, sizeof(r1));
        memset(&r, 0, sizeof(r));
        memset(&got, 0, sizeof(got));
        memset(&sub, 0, sizeof(sub));
        sched_now = time(NULL);
        t0 = (int64_t)sched_now;
        gmca_set_clock(sched_clock);
        /* Not activated: each CA's failure is audited, nothing is made. */
        n0 = audits(f);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 0, &next, &made, &e), GMCA_ERR_STATE);
        assert_int_equal(made, 0);
        assert_true(next == INT64_MAX);
        assert_int_equal(audits(f), n0 + 2);
        assert_int_equal(last_outcome(f), 0);
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 0, 0, &next, &made, &e), GMCA_ERR_STATE);
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_crl_refresh(f->c, -1, 0, &next, &made, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_ca_crl_refresh(f->c, GMCA_CRL_INTERVAL_MAX + 1, 0, &next, &made, &e),
                         GMCA_ERR_INVALID);
        gmca_error_clear(&e);

        activate(f);
        /* None yet: one for the root and one for the operational CA. */
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 0, &next, &made, &e), 0);
        assert_int_equal(made, 2);
        assert_int_equal(next, t0 + 3600);
        crl = latest_crl(f, "sub", &r1);
        X509_CRL_free(crl);
        assert_int_equal(r1.number, 1);
        assert_int_equal(r1.this_update, t0);
        assert_int_equal(r1.next_update, t0 + 3600 + 900);
        /* Not due until nextUpdate - interval/4. */
        sched_now = (time_t)(t0 + 3599);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 0, &next, &made, &e), 0);
        assert_int_equal(made, 0);
        assert_int_equal(next, t0 + 3600);
        sched_now = (time_t)(t0 + 3600);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 0, &next, &made, &e), 0);
        assert_int_equal(made, 2);
        assert_int_equal(next, t0 + 7200);
        /* Forced (the emergency CRL): at once, whatever is due. */
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 1, &next, &made, &e), 0);
        assert_int_equal(made, 2);
        crl = latest_crl(f, "sub", &r);
        X509_CRL_free(crl);
        assert_int_equal(r.number, 3);
        gmca_crl_rec_clear(&r);

        /* Every CRL is kept and can be had by its number. */
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(f->c), "sub", &sub, &e), 0);
        assert_int_equal(gmca_store_crl_get(gmca_ctx_store(f->c), sub.id, 1, &got, &e), 0);
        assert_int_equal(got.number, 1);
        assert_int_equal(got.der_len, r1.der_len);
        assert_memory_equal(got.der, r1.der, r1.der_len);
        gmca_crl_rec_clear(&got);
        assert_int_equal(gmca_store_crl_get(gmca_ctx_store(f->c), sub.id, 99, &got, &e),
                         GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);

        /* A one-day certificate revoked, then expired: still on the next CRL. */
        assert_int_equal(gmca_ca_issue(f->c, &ir, serial, NULL, &e), 0);
        assert_int_equal(gmca_ca_revoke(f->c, serial, CRL_REASON_KEY_COMPROMISE, 0, &e), 0);
        sched_now = (time_t)(t0 + 3 * 86400);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 0, &next, &made, &e), 0);
        assert_int_equal(made, 2);
        crl = latest_crl(f, "sub", &r);
        assert_int_equal(r.entries, 1);
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
        X509_CRL_free(crl);
        gmca_crl_rec_clear(&r);

        /* A superseded CA still signs its CRLs (CPS §6.8); an archived one no more. */
        assert_int_equal(
            gmca_store_ca_set_state(gmca_ctx_store(f->c), sub.id, GMCA_KEY_SUPERSEDED, t0, &e), 0);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 1, &next, &made, &e), 0);
        assert_int_equal(made, 2);
        assert_int_equal(
            gmca_store_ca_set_state(gmca_ctx_store(f->c), sub.id, GMCA_KEY_ARCHIVED, t0, &e), 0);
        assert_int_equal(gmca_ca_crl_refresh(f->c, 3600, 1, &next, &made, &e), 0);
        assert_int_equal(made, 1);
        gmca_crl_rec_clear(&r1);
        gmca_ca_rec_clear(&sub);
        chain_ok(f);
        OPENSSL_free(csr);
}

static void test_issue_batch(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        size_t l1, l2, l3;
        uint8_t *c1 = test_csr("甲", &l1), *c2 = test_csr("乙", &l2), *c3 = test_csr("丙", &l3);
        static const uint8_t junk[] = {0x30, 0x00};
        struct gmca_issue_req r[4] = {
            {.ca = NULL,
             .profile = "personal-sign",
             .csr = c1,
             .csr_len = l1,
             .info_json = INFO,
             .info_len = strlen(INFO),
             .days = 0,
             .not_after = 0},
            {.ca = NULL,
             .profile = "personal-sign",
             .csr = junk,
             .csr_len = sizeof(junk),
             .info_json = INFO,
             .info_len = strlen(INFO),
             .days = 0,
             .not_after = 0},
            {.ca = NULL,
             .profile = "personal-sign",
             .csr = c2,
             .csr_len = l2,
             .info_json = INFO,
             .info_len = strlen(INFO),
             .days = 0,
             .not_after = 0},
            {.ca = NULL,
             .profile = "personal-sign",
             .csr = c3,
             .csr_len = l3,
             .info_json = NULL,
             .info_len = 0,
             .days = 0,
             .not_after = 0}, /* lacks the identity number */
        };
        struct gmca_issue_result res[4];
        int64_t c0, a0;

        activate(f);
        c0 = certs(f);
        a0 = audits(f);
        assert_int_equal(gmca_ca_issue_batch(f->c, r, 4, res, &e), 0);
        assert_int_equal(res[0].rc, 0);
        assert_int_equal(res[1].rc, GMCA_ERR_INVALID);
        assert_int_equal(res[2].rc, 0);
        assert_int_equal(res[3].rc, GMCA_ERR_POLICY);
        assert_non_null(strstr(res[3].err.msg, "identity_card_number"));
        assert_non_null(res[0].cert);
        assert_null(res[1].cert);
        assert_string_not_equal(res[0].serial, res[2].serial);
        assert_int_equal(certs(f), c0 + 2);
        assert_int_equal(audits(f), a0 + 4); /* two issued, two refusals */
        chain_ok(f);
        for (int i = 0; i < 4; i++)
                X509_free(res[i].cert);
        assert_int_equal(gmca_ca_issue_batch(f->c, r, GMCA_ISSUE_BATCH_MAX + 1, res, &e),
                         GMCA_ERR_LIMIT);
        OPENSSL_free(c1);
        OPENSSL_free(c2);
        OPENSSL_free(c3);
}

static int count_failures(const struct gmca_audit_rec *r, void *arg)
{
        *(int64_t *)arg += r->success ? 0 : 1;
        return 0;
}

/*
 * When the batch transaction fails, each request is stored or refused on
 * its own, and each refusal is audited exactly once.
 */
static void test_issue_batch_fallback(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        size_t l1, l2;
        uint8_t *c1 = test_csr("甲", &l1), *c2 = test_csr("乙", &l2);
        struct gmca_issue_req r[3] = {
            {.ca = "nope",
             .profile = "personal-sign",
             .csr = c1,
             .csr_len = l1,
             .info_json = INFO,
             .info_len = strlen(INFO),
             .days = 0,
             .not_after = 0},
            {.ca = NULL,
             .profile = "personal-sign",
             .csr = c1,
             .csr_len = l1,
             .info_json = INFO,
             .info_len = strlen(INFO),
             .days = 0,
             .not_after = 0},
            {.ca = NULL,
             .profile = "personal-sign",
             .csr = c2,
             .csr_len = l2,
             .info_json = INFO,
             .info_len = strlen(INFO),
             .days = 0,
             .not_after = 0},
        };
        struct gmca_issue_result res[3];
        char path[512];
        sqlite3 *db;
        int64_t c0, f0 = 0, f1 = 0;

        activate(f);
        /* A fault only the second certificate meets: its insert aborts. */
        snprintf(path, sizeof(path), "%s/gmca.db", f->dir);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "CREATE TRIGGER fault BEFORE INSERT ON certificates "
                                      "WHEN instr(NEW.subject, '乙') > 0 BEGIN "
                                      "SELECT RAISE(ABORT, 'injected fault'); END",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        c0 = certs(f);
        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(f->c), NULL, count_failures, &f0, &e),
                         0);
        assert_int_equal(gmca_ca_issue_batch(f->c, r, 3, res, &e), 0);
        assert_int_equal(res[0].rc, GMCA_ERR_NOTFOUND);
        if (res[1].rc != 0)
                fail_msg("second request: %s", res[1].err.msg);
        assert_int_not_equal(res[2].rc, 0);
        assert_int_equal(certs(f), c0 + 1);
        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(f->c), NULL, count_failures, &f1, &e),
                         0);
        assert_int_equal(f1, f0 + 2); /* the unknown CA once, the fault once */
        chain_ok(f);
        for (int i = 0; i < 3; i++)
                X509_free(res[i].cert);
        OPENSSL_free(c1);
        OPENSSL_free(c2);
}

static void test_serial_normalize(void **state)
{
        char out[GMCA_SERIAL_HEX_MAX];
        (void)state;

        assert_int_equal(gmca_serial_normalize("0x0a:bc:DE", out), 0);
        assert_string_equal(out, "0ABCDE");
        assert_int_equal(gmca_serial_normalize("", out), -1);
        assert_int_equal(gmca_serial_normalize("12g4", out), -1);
        assert_int_equal(gmca_serial_normalize("0123456789012345678901234567890123456789FF", out),
                         -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_init_layout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_init_refuses_existing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_init_failure_leaves_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_activate_wrong_passphrase, setup, teardown),
            cmocka_unit_test_setup_teardown(test_issue_and_revoke, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rejections_audited, setup, teardown),
            cmocka_unit_test_setup_teardown(test_validity_within_ca, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crl, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crl_refresh, setup, teardown),
            cmocka_unit_test_setup_teardown(test_issue_batch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_issue_batch_fallback, setup, teardown),
            cmocka_unit_test(test_serial_normalize),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
