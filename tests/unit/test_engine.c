/*
 * Tests of the engine module. A child process runs gmca_engine_serve with
 * two CA keys (in-process SM2 signers): "ca1", which signs everything that
 * names it as issuer, and "old", a superseded key that signs CRLs only. The
 * parent is the client: it lists, has a certificate and a CRL signed and
 * verifies them with ID 1234567812345678, and is refused for a wrong
 * issuer, a wrong algorithm, a certificate from the CRL-only key, an
 * unknown CA and non-DER. Raw sockets send bad frames and interleave
 * partial requests; other engines test the life cycle (run directory and
 * socket modes, a live socket, a stale one, deactivation, SIGTERM). The
 * TBS checker and the request parser are also driven directly from tables.
 *
 * The shared engine runs with a test policy: direct issuance allowed, an
 * authorisation key (K_authz), a PII key, an RA whose certificate the
 * ra_cert hook knows (and an older one it calls replaced), an ra_issue hook
 * that issues application 7 only, and an audit hook that appends to a
 * file. A second engine without direct issuance shows that 'S' certificates
 * are refused while CRLs are signed, and what 'T' (custodians) and 'R'
 * (RA-signed) requests need.
 */
#include <errno.h>
#include <fcntl.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "audit.h"
#include "crl.h"
#include "crypto.h"
#include "engine.h"
#include "store_internal.h"
#include "testca.h"
#include "testcsr.h"
#include "ra.h"
#include "signer.h"
#include "util.h"
#include "x509.h"

#define T0 1735689600 /* 2025-01-01T00:00:00Z */

struct fixture {
        char dir[64];   /* mkdtemp */
        char sock[128]; /* the shared engine's socket */
        pid_t pid;      /* the shared engine */
        EVP_PKEY *key, *old_key, *leaf;
        X509 *ca, *old_ca;
        uint8_t *subj, *old_subj, *spki;
        size_t subj_len, old_subj_len, spki_len;
        struct gmca_pkey_signer signer, old_signer;
        struct gmca_engine_key keys[2];
        /* The RA side. */
        EVP_PKEY *ra_key, *old_ra_key, *stranger;
        X509 *ra_cert, *old_ra_cert;
        uint8_t authz[GMCA_ENGINE_AUTHZ_LEN], pii[GMCA_ENGINE_PII_KEY_LEN];
        char audit_path[128];
        struct gmca_engine_policy policy;
        const struct gmca_engine_policy *pol; /* what start_engine serves with */
};

#define RA_SERIAL "0A01"
#define OLD_RA_SERIAL "0A02"
#define ISSUED_SERIAL "C0FFEE"

static X509_NAME *name(const char *cn)
{
        X509_NAME *n = X509_NAME_new();

        assert_non_null(n);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8,
                                                    (const unsigned char *)"CN", -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                                    (const unsigned char *)"测试电子政务认证中心",
                                                    -1, -1, 0),
                         1);
        assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
        return n;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, long sn);

/* A self-signed CA certificate, plain OpenSSL. */
static X509 *make_ca(EVP_PKEY *key, const char *cn)
{
        return make_cert(key, cn, 0x1234);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, long sn)
{
        X509 *x = X509_new();
        X509_NAME *n = name(cn);
        EVP_MD_CTX *mctx;
        struct gmca_error e;

        assert_non_null(x);
        assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), sn), 1);
        assert_int_equal(X509_set_subject_name(x, n), 1);
        assert_int_equal(X509_set_issuer_name(x, n), 1);
        X509_NAME_free(n);
        assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T0 - 86400));
        assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T0 + 3650 * 86400L));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        gmca_error_clear(&e);
        mctx = gmca_sm2_sign_ctx(key, NULL, &e);
        assert_non_null(mctx);
        assert_true(X509_sign_ctx(x, mctx) > 0);
        EVP_MD_CTX_free(mctx);
        return x;
}

static uint8_t *subject_der(X509 *ca, size_t *len)
{
        unsigned char *der = NULL;
        int n = i2d_X509_NAME(X509_get_subject_name(ca), &der);

        assert_true(n > 0);
        *len = (size_t)n;
        return der;
}

/* ---- the test policy's hooks (they run in the engine's process) ---- */

static int t_ra_cert(void *arg, const char *sn, X509 **cert, struct gmca_error *e)
{
        struct fixture *f = arg;

        if (strcmp(sn, RA_SERIAL) == 0) {
                X509_up_ref(f->ra_cert);
                *cert = f->ra_cert;
                return 0;
        }
        if (strcmp(sn, OLD_RA_SERIAL) == 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "RA certificate %s of RA test has been replaced by %s", sn,
                                      RA_SERIAL);
        return gmca_error_set(e, GMCA_ERR_AUTH, "RA certificate %s: not issued by this CA", sn);
}

static int t_ra_issue(void *arg, int64_t app_id, char sn[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        (void)arg;
        if (app_id != 7)
                return gmca_error_set(e, GMCA_ERR_POLICY, "application %lld is not approved",
                                      (long long)app_id);
        gmca_strlcpy(sn, ISSUED_SERIAL, GMCA_SERIAL_HEX_MAX);
        return 0;
}

/* One line per record: event|actor|outcome|object|detail */
static int t_audit(void *arg, const struct gmca_engine_audit *r, size_t n, struct gmca_error *e)
{
        struct fixture *f = arg;
        FILE *fp = fopen(f->audit_path, "a");

        if (fp == NULL)
                return gmca_error_set(e, GMCA_ERR_IO, "audit file");
        for (size_t i = 0; i < n; i++)
                fprintf(fp, "%s|%s|%s|%s|%s\n", r[i].event, r[i].actor,
                        r[i].success ? "success" : "failure", r[i].object,
                        r[i].detail ? r[i].detail : "");
        fclose(fp);
        return 0;
}

/* Wait (up to 10 s) until the audit file has a line with each of the needles. */
static void expect_audit(const struct fixture *f, const char *a, const char *b, const char *what)
{
        for (int i = 0; i < 1000; i++) {
                char line[2048];
                FILE *fp = fopen(f->audit_path, "r");

                while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
                        if (strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL)) {
                                fclose(fp);
                                return;
                        }
                if (fp != NULL)
                        fclose(fp);
                usleep(10000);
        }
        fail_msg("%s: no audit record with \"%s\" and \"%s\"", what, a, b ? b : "");
}

/* ---- engines in child processes ---- */

/*
 * Fork an engine on path with the fixture's keys and wait until it
 * listens. Returns its pid, or -1 if it exited first; then *code is its
 * exit status (the negated gmca_err).
 */
static pid_t start_engine(struct fixture *f, const char *path, int *code)
{
        int p[2], status = 0;
        pid_t pid;
        uint8_t b;
        ssize_t r;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct gmca_error e;
                int rc;

                close(p[0]);
                alarm(120); /* never outlive a broken test run */
                gmca_error_clear(&e);
                rc = gmca_engine_serve(path, f->keys, 2, f->pol, p[1], &e);
                _exit(rc == 0 ? 0 : -rc);
        }
        close(p[1]);
        do
                r = read(p[0], &b, 1);
        while (r < 0 && errno == EINTR);
        close(p[0]);
        if (r == 1)
                return pid;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (code != NULL)
                *code = WEXITSTATUS(status);
        return -1;
}

/* Wait for an engine and return its exit status (-1 if killed by a signal). */
static int wait_engine(pid_t pid)
{
        int status = 0;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e;
        unsigned char *spki = NULL;
        int n;

        if (f == NULL)
                return -1;
        gmca_strlcpy(f->dir, "/tmp/gmca-engine-XXXXXX", sizeof(f->dir));
        if (mkdtemp(f->dir) == NULL)
                return -1;
        snprintf(f->sock, sizeof(f->sock), "%s/run/engine.sock", f->dir);
        gmca_error_clear(&e);
        if ((f->key = gmca_sm2_keygen(&e)) == NULL || (f->old_key = gmca_sm2_keygen(&e)) == NULL ||
            (f->leaf = gmca_sm2_keygen(&e)) == NULL)
                return -1;
        f->ca = make_ca(f->key, "Test SM2 CA");
        f->old_ca = make_ca(f->old_key, "Old SM2 CA");
        f->subj = subject_der(f->ca, &f->subj_len);
        f->old_subj = subject_der(f->old_ca, &f->old_subj_len);
        if ((n = i2d_PUBKEY(f->leaf, &spki)) <= 0)
                return -1;
        f->spki = spki;
        f->spki_len = (size_t)n;
        if (gmca_pkey_signer_init(&f->signer, f->key, NULL, &e) != 0 ||
            gmca_pkey_signer_init(&f->old_signer, f->old_key, NULL, &e) != 0)
                return -1;
        f->keys[0] = (struct gmca_engine_key){"ca1", &f->signer.base, f->subj, f->subj_len, 0};
        f->keys[1] =
            (struct gmca_engine_key){"old", &f->old_signer.base, f->old_subj, f->old_subj_len, 1};
        if ((f->ra_key = gmca_sm2_keygen(&e)) == NULL ||
            (f->old_ra_key = gmca_sm2_keygen(&e)) == NULL ||
            (f->stranger = gmca_sm2_keygen(&e)) == NULL)
                return -1;
        f->ra_cert = make_cert(f->ra_key, "RA", 0x0a01);
        f->old_ra_cert = make_cert(f->old_ra_key, "RA", 0x0a02);
        if (gmca_rand_bytes(f->authz, sizeof(f->authz), &e) != 0 ||
            gmca_rand_bytes(f->pii, sizeof(f->pii), &e) != 0)
                return -1;
        snprintf(f->audit_path, sizeof(f->audit_path), "%s/audit.log", f->dir);
        f->policy = (struct gmca_engine_policy){.direct_issue = 1,
                                                .authz_key = f->authz,
                                                .pii_key = f->pii,
                                                .ra_cert = t_ra_cert,
                                                .ra_issue = t_ra_issue,
                                                .audit = t_audit,
                                                .arg = f};
        f->pol = &f->policy;
        if ((f->pid = start_engine(f, f->sock, NULL)) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[128];

        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        EVP_PKEY_free(f->key);
        EVP_PKEY_free(f->old_key);
        EVP_PKEY_free(f->leaf);
        EVP_PKEY_free(f->ra_key);
        EVP_PKEY_free(f->old_ra_key);
        EVP_PKEY_free(f->stranger);
        X509_free(f->ra_cert);
        X509_free(f->old_ra_cert);
        X509_free(f->ca);
        X509_free(f->old_ca);
        OPENSSL_free(f->subj);
        OPENSSL_free(f->old_subj);
        OPENSSL_free(f->spki);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                fprintf(stderr, "teardown: could not remove %s\n", f->dir);
        free(f);
        return 0;
}

/* ---- DER pieces for hand-made TBS ---- */

struct der {
        uint8_t b[4096];
        size_t n;
};

static void add(struct der *d, const void *p, size_t n)
{
        assert_true(d->n + n <= sizeof(d->b));
        memcpy(d->b + d->n, p, n);
        d->n += n;
}

/* Wrap what d holds into one TLV with tag. */
static void wrap(struct der *d, uint8_t tag)
{
        uint8_t hdr[4] = {tag};
        size_t h = 2;

        assert_true(d->n < 0x10000 && d->n + 4 <= sizeof(d->b));
        if (d->n < 0x80) {
                hdr[1] = (uint8_t)d->n;
        } else if (d->n < 0x100) {
                hdr[1] = 0x81;
                hdr[2] = (uint8_t)d->n;
                h = 3;
        } else {
                hdr[1] = 0x82;
                hdr[2] = (uint8_t)(d->n >> 8);
                hdr[3] = (uint8_t)d->n;
                h = 4;
        }
        memmove(d->b + h, d->b, d->n);
        memcpy(d->b, hdr, h);
        d->n += h;
}

static const uint8_t ver3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
static const uint8_t ver1[] = {0xa0, 0x03, 0x02, 0x01, 0x00};
static const uint8_t ver_nonint[] = {0xa0, 0x02, 0x05, 0x00};
static const uint8_t serial[] = {0x02, 0x08, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const uint8_t serial_bad[] = {0x02, 0x02, 0x00, 0x01}; /* not minimal */
static const uint8_t alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81,
                              0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75};
static const uint8_t alg_null[] = {0x30, 0x0c, 0x06, 0x08, 0x2a, 0x81, 0x1c,
                                   0xcf, 0x55, 0x01, 0x83, 0x75, 0x05, 0x00};
static const uint8_t alg_ecdsa[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                    0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t alg_rsa[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                  0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
static const uint8_t validity[] = {0x30, 0x1e, 0x17, 0x0d, '2', '5', '0',  '1',  '0', '1', '0',
                                   '0',  '0',  '0',  '0',  '0', 'Z', 0x17, 0x0d, '3', '5', '0',
                                   '1',  '0',  '1',  '0',  '0', '0', '0',  '0',  '0', 'Z'};
static const uint8_t exts[] = {0xa3, 0x10, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55,
                               0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00};
static const uint8_t this_update[] = {0x17, 0x0d, '2', '5', '0', '1', '0', '1',
                                      '0',  '0',  '0', '0', '0', '0', 'Z'};
static const uint8_t next_update[] = {0x18, 0x0f, '2', '0', '2', '5', '0', '1', '0',
                                      '2',  '0',  '0', '0', '0', '0', '0', 'Z'};
static const uint8_t crl_v2[] = {0x02, 0x01, 0x01};
static const uint8_t crl_v1[] = {0x02, 0x01, 0x00};
static const uint8_t revoked[] = {0x30, 0x14, 0x30, 0x12, 0x02, 0x01, 0x05, 0x17, 0x0d, 0x32, 0x34,
                                  0x31, 0x32, 0x33, 0x31, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x5a};
static const uint8_t crl_exts[] = {0xa0, 0x0e, 0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03,
                                   0x55, 0x1d, 0x14, 0x04, 0x03, 0x02, 0x01, 0x07};
static const uint8_t null_field[] = {0x05, 0x00};

enum part {
        P_END = 0,
        P_VER3,
        P_VER1,
        P_VER_NONINT,
        P_SERIAL,
        P_SERIAL_BAD,
        P_ALG,
        P_ALG_NULL,
        P_ALG_ECDSA,
        P_ALG_RSA,
        P_ISS,     /* ca1's subject */
        P_OLD_ISS, /* old's subject */
        P_VALIDITY,
        P_SUBJ,
        P_SPKI,
        P_EXTS,
        P_THIS,
        P_NEXT,
        P_CRL_V2,
        P_CRL_V1,
        P_REVOKED,
        P_CRL_EXTS,
        P_NULL,
};

#define PARTS_MAX 10

static void add_part(const struct fixture *f, struct der *d, enum part p)
{
        static const struct {
                const uint8_t *b;
                size_t n;
        } fixed[] = {
            [P_VER3] = {ver3, sizeof(ver3)},
            [P_VER1] = {ver1, sizeof(ver1)},
            [P_VER_NONINT] = {ver_nonint, sizeof(ver_nonint)},
            [P_SERIAL] = {serial, sizeof(serial)},
            [P_SERIAL_BAD] = {serial_bad, sizeof(serial_bad)},
            [P_ALG] = {alg, sizeof(alg)},
            [P_ALG_NULL] = {alg_null, sizeof(alg_null)},
            [P_ALG_ECDSA] = {alg_ecdsa, sizeof(alg_ecdsa)},
            [P_ALG_RSA] = {alg_rsa, sizeof(alg_rsa)},
            [P_VALIDITY] = {validity, sizeof(validity)},
            [P_EXTS] = {exts, sizeof(exts)},
            [P_THIS] = {this_update, sizeof(this_update)},
            [P_NEXT] = {next_update, sizeof(next_update)},
            [P_CRL_V2] = {crl_v2, sizeof(crl_v2)},
            [P_CRL_V1] = {crl_v1, sizeof(crl_v1)},
            [P_REVOKED] = {revoked, sizeof(revoked)},
            [P_CRL_EXTS] = {crl_exts, sizeof(crl_exts)},
            [P_NULL] = {null_field, sizeof(null_field)},
        };

        switch (p) {
        case P_ISS:
        case P_SUBJ:
                add(d, f->subj, f->subj_len);
                break;
        case P_OLD_ISS:
                add(d, f->old_subj, f->old_subj_len);
                break;
        case P_SPKI:
                add(d, f->spki, f->spki_len);
                break;
        default:
                assert_non_null(fixed[p].b);
                add(d, fixed[p].b, fixed[p].n);
        }
}

/* A TBS: SEQUENCE of the parts (up to P_END). */
static void build_tbs(const struct fixture *f, const enum part *parts, struct der *d)
{
        d->n = 0;
        for (size_t i = 0; i < PARTS_MAX && parts[i] != P_END; i++)
                add_part(f, d, parts[i]);
        wrap(d, 0x30);
}

#define CERT_OK P_VER3, P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI, P_EXTS

static const struct tbs_case {
        const char *what;
        enum part parts[PARTS_MAX];
        int rc;
        const char *msg;
        int is_cert;
} tbs_cases[] = {
    {"certificate", {CERT_OK}, 0, NULL, 1},
    {"certificate without extensions",
     {P_VER3, P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     0,
     NULL,
     1},
    {"CRL v2 with everything",
     {P_CRL_V2, P_ALG, P_ISS, P_THIS, P_NEXT, P_REVOKED, P_CRL_EXTS},
     0,
     NULL,
     0},
    {"CRL v1, thisUpdate only", {P_ALG, P_ISS, P_THIS}, 0, NULL, 0},
    {"CRL without nextUpdate", {P_CRL_V2, P_ALG, P_ISS, P_THIS, P_REVOKED}, 0, NULL, 0},
    {"certificate by another issuer",
     {P_VER3, P_SERIAL, P_ALG, P_OLD_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_POLICY,
     "names issuer \"C=CN, O=测试电子政务认证中心, CN=Old SM2 CA\", not the CA's subject",
     0},
    {"certificate, SM2-with-SM3 with NULL parameters",
     {P_VER3, P_SERIAL, P_ALG_NULL, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_POLICY,
     "parameters absent (GM/T 0015)",
     0},
    {"certificate, ecdsa-with-SHA256",
     {P_VER3, P_SERIAL, P_ALG_ECDSA, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_POLICY,
     "not SM2-with-SM3",
     0},
    {"certificate, sha256WithRSAEncryption",
     {P_VER3, P_SERIAL, P_ALG_RSA, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_POLICY,
     "not SM2-with-SM3",
     0},
    {"certificate v1",
     {P_VER1, P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_POLICY,
     "not v3",
     0},
    {"certificate, version not an INTEGER",
     {P_VER_NONINT, P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_INVALID,
     "version",
     0},
    {"certificate without the [0] version",
     {P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_INVALID,
     "neither",
     0},
    {"certificate, serial not minimal",
     {P_VER3, P_SERIAL_BAD, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_INVALID,
     "serialNumber",
     0},
    {"certificate without the public key",
     {P_VER3, P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ},
     GMCA_ERR_INVALID,
     "missing",
     0},
    {"certificate with a field after the extensions",
     {CERT_OK, P_NULL},
     GMCA_ERR_INVALID,
     "unexpected field",
     0},
    {"certificate with extensions before the key",
     {P_VER3, P_SERIAL, P_ALG, P_ISS, P_VALIDITY, P_SUBJ, P_EXTS, P_SPKI},
     GMCA_ERR_INVALID,
     "missing",
     0},
    {"certificate with no algorithm",
     {P_VER3, P_SERIAL, P_NULL, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
     GMCA_ERR_INVALID,
     "AlgorithmIdentifier",
     0},
    {"CRL by another issuer",
     {P_CRL_V2, P_ALG, P_OLD_ISS, P_THIS},
     GMCA_ERR_POLICY,
     "TBSCertList names issuer",
     0},
    {"CRL with NULL parameters",
     {P_CRL_V2, P_ALG_NULL, P_ISS, P_THIS},
     GMCA_ERR_POLICY,
     "parameters absent",
     0},
    {"CRL with version 0 written out", {P_CRL_V1, P_ALG, P_ISS, P_THIS}, GMCA_ERR_INVALID, NULL, 0},
    {"CRL without thisUpdate",
     {P_CRL_V2, P_ALG, P_ISS, P_REVOKED},
     GMCA_ERR_INVALID,
     "thisUpdate",
     0},
    {"CRL with a field after the extensions",
     {P_CRL_V2, P_ALG, P_ISS, P_THIS, P_CRL_EXTS, P_NULL},
     GMCA_ERR_INVALID,
     "unexpected field",
     0},
    {"CRL without an issuer", {P_CRL_V2, P_ALG}, GMCA_ERR_INVALID, "issuer", 0},
};

/* Byte-level damage to a good certificate TBS. */
static const struct raw_case {
        const char *what;
        const uint8_t *b;
        size_t n;
        const char *msg;
} raw_cases[] = {
    {"garbage", (const uint8_t *)"hello, engine", 13, "not a DER SEQUENCE"},
    {"one byte", (const uint8_t *)"\x30", 1, "not a DER SEQUENCE"},
    {"indefinite length", (const uint8_t *)"\x30\x80\x02\x01\x01\x00\x00", 7, "not a DER"},
    {"long form for a short length", (const uint8_t *)"\x30\x81\x03\x02\x01\x01", 6, "not a DER"},
    {"length with a leading zero", (const uint8_t *)"\x30\x82\x00\x03\x02\x01\x01", 7, "not a DER"},
    {"length past the end", (const uint8_t *)"\x30\x05\x02\x01\x01", 5, "not a DER"},
    {"inner length past the end", (const uint8_t *)"\x30\x03\x02\x05\x01", 5, "not DER"},
    {"high tag number", (const uint8_t *)"\x30\x04\x1f\x81\x01\x00", 6, "not DER"},
    {"constructed OCTET STRING", (const uint8_t *)"\x30\x06\x24\x04\x04\x02\x00\x00", 8, "not DER"},
    {"end-of-contents inside", (const uint8_t *)"\x30\x02\x00\x00", 4, "not DER"},
    {"not a SEQUENCE", (const uint8_t *)"\x31\x03\x02\x01\x01", 5, "not a DER SEQUENCE"},
};

static void test_check_tbs(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e;
        struct der d;
        uint8_t deep[2 * 40];
        int is_cert;

        for (size_t i = 0; i < sizeof(tbs_cases) / sizeof(tbs_cases[0]); i++) {
                const struct tbs_case *c = &tbs_cases[i];

                build_tbs(f, c->parts, &d);
                gmca_error_clear(&e);
                is_cert = -1;
                expect(gmca_engine_check_tbs(d.b, d.n, f->subj, f->subj_len, &is_cert, &e), &e,
                       c->rc, c->msg, c->what);
                if (c->rc == 0)
                        assert_int_equal(is_cert, c->is_cert);
                else {
                        assert_int_equal(is_cert, -1);
                        assert_non_null(strstr(e.msg, "engine: "));
                }
        }
        for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
                const struct raw_case *c = &raw_cases[i];

                gmca_error_clear(&e);
                expect(gmca_engine_check_tbs(c->b, c->n, f->subj, f->subj_len, &is_cert, &e), &e,
                       GMCA_ERR_INVALID, c->msg, c->what);
        }

        /* Trailing bytes and truncation of a good TBS. */
        {
                const enum part good[PARTS_MAX] = {CERT_OK};

                build_tbs(f, good, &d);
                add(&d, "\x00", 1);
                gmca_error_clear(&e);
                expect(gmca_engine_check_tbs(d.b, d.n, f->subj, f->subj_len, &is_cert, &e), &e,
                       GMCA_ERR_INVALID, "1 trailing bytes", "trailing byte");
                gmca_error_clear(&e);
                expect(gmca_engine_check_tbs(d.b, d.n - 2, f->subj, f->subj_len, &is_cert, &e), &e,
                       GMCA_ERR_INVALID, "not a DER SEQUENCE", "truncated");
        }

        /* Nesting past the cap. */
        for (size_t i = 0; i < sizeof(deep) / 2; i++) {
                deep[2 * i] = 0x30;
                deep[2 * i + 1] = (uint8_t)(sizeof(deep) - 2 * i - 2);
        }
        gmca_error_clear(&e);
        expect(gmca_engine_check_tbs(deep, sizeof(deep), f->subj, f->subj_len, &is_cert, &e), &e,
               GMCA_ERR_INVALID, "nested", "deep nesting");

        gmca_error_clear(&e);
        expect(gmca_engine_check_tbs(NULL, 0, f->subj, f->subj_len, &is_cert, &e), &e,
               GMCA_ERR_INVALID, "empty", "empty TBS");
}

/* ---- request parsing ---- */

static const struct req_case {
        const char *what;
        const char *b;
        size_t n;
        int rc;
        char op;
        const char *name;
        size_t tbs_len;
} req_cases[] = {
    {"list", "L", 1, 0, 'L', "", 0},
    {"deactivate", "D", 1, 0, 'D', "", 0},
    {"sign",
     "S\x00\x03"
     "ca1\x30\x00",
     8, 0, 'S', "ca1", 2},
    {"sign, 63-byte name",
     "S\x00\x3f"
     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk\x30",
     3 + 63 + 1, 0, 'S', "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk", 1},
    {"empty", "", 0, GMCA_ERR_INVALID, 0, NULL, 0},
    {"unknown op", "X", 1, GMCA_ERR_INVALID, 0, NULL, 0},
    {"lower-case op",
     "s\x00\x01"
     "a\x30",
     5, GMCA_ERR_INVALID, 0, NULL, 0},
    {"list with a body", "Lx", 2, GMCA_ERR_INVALID, 0, NULL, 0},
    {"deactivate with a body", "D\x00", 2, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, no length", "S", 1, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, half a length", "S\x00", 2, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, empty name", "S\x00\x00\x30\x00", 5, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, 64-byte name",
     "S\x00\x40"
     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl\x30",
     3 + 64 + 1, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, huge name length",
     "S\xff\xff"
     "ca1\x30",
     7, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, name past the end",
     "S\x00\x05"
     "ca1",
     6, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, no TBS",
     "S\x00\x03"
     "ca1",
     6, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, '/' in the name",
     "S\x00\x04"
     "../a\x30",
     8, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, space in the name",
     "S\x00\x03"
     "a b\x30",
     7, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, NUL in the name",
     "S\x00\x03"
     "a\x00"
     "b\x30",
     7, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, newline in the name",
     "S\x00\x03"
     "a\nb\x30",
     7, GMCA_ERR_INVALID, 0, NULL, 0},
    {"sign, UTF-8 in the name",
     "S\x00\x03"
     "\xe4\xb8\xad\x30",
     7, GMCA_ERR_INVALID, 0, NULL, 0},
};

static void test_parse_request(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
                const struct req_case *c = &req_cases[i];
                struct gmca_engine_request r;
                struct gmca_error e;

                memset(&r, 0x5a, sizeof(r));
                gmca_error_clear(&e);
                expect(gmca_engine_parse_request((const uint8_t *)c->b, c->n, &r, &e), &e, c->rc,
                       NULL, c->what);
                if (c->rc != 0)
                        continue;
                assert_int_equal(r.op, c->op);
                assert_string_equal(r.name, c->name);
                assert_int_equal(r.tbs_len, c->tbs_len);
                if (c->tbs_len > 0)
                        assert_ptr_equal(r.tbs, (const uint8_t *)c->b + c->n - c->tbs_len);
                else
                        assert_null(r.tbs);
        }
}

/* ---- the client against the shared engine ---- */

static struct gmca_engine_client *client(const struct fixture *f)
{
        struct gmca_error e;
        struct gmca_engine_client *c;

        gmca_error_clear(&e);
        c = gmca_engine_connect(f->sock, &e);
        if (c == NULL)
                fail_msg("connect: %s", e.msg);
        return c;
}

static void test_list(void **state)
{
        struct fixture *f = *state;
        struct gmca_engine_client *c = client(f);
        struct gmca_error e;
        char buf[128], tiny[4];

        gmca_error_clear(&e);
        expect(gmca_engine_list(c, buf, sizeof(buf), &e), &e, 0, NULL, "list");
        assert_string_equal(buf, "ca1\nold");
        gmca_error_clear(&e);
        expect(gmca_engine_list(c, tiny, sizeof(tiny), &e), &e, GMCA_ERR_LIMIT, NULL,
               "list into a small buffer");
        gmca_engine_disconnect(c);
        gmca_engine_disconnect(NULL);
}

/* A leaf certificate named as issued by ca (not yet signed). */
static X509 *leaf_cert(const struct fixture *f, X509 *ca)
{
        X509 *x = X509_new();
        X509_NAME *n = name("leaf");

        assert_non_null(x);
        assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x4242), 1);
        assert_int_equal(X509_set_subject_name(x, n), 1);
        assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
        X509_NAME_free(n);
        assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T0));
        assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T0 + 365 * 86400L));
        assert_int_equal(X509_set_pubkey(x, f->leaf), 1);
        return x;
}

/* A v2 CRL with one entry named as issued by ca (not yet signed). */
static X509_CRL *crl_of(X509 *ca)
{
        X509_CRL *crl = X509_CRL_new();
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_TIME *t = ASN1_TIME_set(NULL, T0);
        ASN1_INTEGER *sn = ASN1_INTEGER_new();

        assert_non_null(crl);
        assert_non_null(r);
        assert_non_null(t);
        assert_non_null(sn);
        assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
        assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
        assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
        assert_non_null(ASN1_TIME_set(t, T0 + 86400));
        assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
        assert_int_equal(ASN1_INTEGER_set(sn, 0x77), 1);
        assert_int_equal(X509_REVOKED_set_serialNumber(r, sn), 1);
        assert_non_null(ASN1_TIME_set(t, T0 - 60));
        assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
        ASN1_TIME_free(t);
        ASN1_INTEGER_free(sn);
        return crl;
}

static void test_sign_cert(void **state)
{
        struct fixture *f = *state;
        struct gmca_engine_client *c = client(f);
        struct gmca_engine_signer s;
        struct gmca_error e;
        X509 *x = leaf_cert(f, f->ca);
        unsigned char *tbs = NULL;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        int n, is_cert = -1;

        gmca_engine_signer_init(&s, c, "ca1");
        gmca_error_clear(&e);
        expect(gmca_x509_sign(x, &s.base, &e), &e, 0, NULL, "sign a certificate");
        expect(gmca_cert_verify_signed_by(x, f->key, GMCA_SM2_DEFAULT_ID, &e), &e, 0, NULL,
               "verify the certificate");
        expect(gmca_cert_verify_signed_by(x, f->old_key, GMCA_SM2_DEFAULT_ID, &e), &e,
               GMCA_ERR_VERIFY, NULL, "verify with another key");
        gmca_error_clear(&e);

        /* The TBS OpenSSL encodes passes the checker; the bare signature verifies. */
        assert_true((n = i2d_re_X509_tbs(x, &tbs)) > 0);
        expect(gmca_engine_check_tbs(tbs, (size_t)n, f->subj, f->subj_len, &is_cert, &e), &e, 0,
               NULL, "check OpenSSL's TBS");
        assert_int_equal(is_cert, 1);
        expect(gmca_engine_sign(c, "ca1", tbs, (size_t)n, sig, &siglen, &e), &e, 0, NULL,
               "sign the TBS");
        expect(gmca_sm2_verify(f->key, GMCA_SM2_DEFAULT_ID, tbs, (size_t)n, sig, siglen, &e), &e, 0,
               NULL, "verify the signature with ID 1234567812345678");
        OPENSSL_free(tbs);
        X509_free(x);
        gmca_engine_disconnect(c);
}

/*
 * A TBSCertList is never signed as sent: not with 'S', not with the
 * custodians' 'T', not for the CRL-only key. CRLs are the engine's to make
 * (op 'C'); a caller that could have one signed could leave a revocation
 * out. Each refusal is audited.
 */
static void test_crl_tbs_refused(void **state)
{
        struct fixture *f = *state;
        struct gmca_engine_client *c = client(f);
        struct gmca_engine_signer s, old;
        struct gmca_error e;
        X509_CRL *crl = crl_of(f->ca), *old_crl = crl_of(f->old_ca);
        unsigned char *tbs = NULL;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        int n;

        gmca_engine_signer_init(&s, c, "ca1");
        gmca_engine_signer_init(&old, c, "old");
        gmca_error_clear(&e);
        expect(gmca_x509_crl_sign(crl, &s.base, &e), &e, GMCA_ERR_POLICY,
               "CRLs are made by the engine: op C", "sign a CRL through the signer");
        expect(gmca_x509_crl_sign(old_crl, &old.base, &e), &e, GMCA_ERR_POLICY,
               "CRLs are made by the engine", "old key signs a CRL");
        assert_true((n = i2d_re_X509_CRL_tbs(crl, &tbs)) > 0);
        expect(gmca_engine_sign(c, "ca1", tbs, (size_t)n, sig, &siglen, &e), &e, GMCA_ERR_POLICY,
               "engine: CRLs are made by the engine: op C", "S: a TBSCertList");
        expect(gmca_engine_sign_authorised(c, "ca1", f->authz, tbs, (size_t)n, sig, &siglen, &e),
               &e, GMCA_ERR_POLICY, "op C", "T: a TBSCertList with the custodians' MAC");
        expect_audit(f, "engine.request|engine|failure|ca1|", "op C", "the refusal audited");
        /* The connection still signs a certificate. */
        {
                const enum part good[PARTS_MAX] = {CERT_OK};
                struct der d;

                build_tbs(f, good, &d);
                gmca_error_clear(&e);
                expect(gmca_engine_sign(c, "ca1", d.b, d.n, sig, &siglen, &e), &e, 0, NULL,
                       "a certificate after the refusals");
        }
        OPENSSL_free(tbs);
        X509_CRL_free(crl);
        X509_CRL_free(old_crl);
        gmca_engine_disconnect(c);
}

static void test_refusals(void **state)
{
        struct fixture *f = *state;
        struct gmca_engine_client *c = client(f);
        struct gmca_engine_signer old;
        struct gmca_error e;
        struct der d;
        uint8_t sig[GMCA_SM2_SIG_MAX], big[16];
        size_t siglen = 0;
        X509 *x;
        static const struct {
                const char *what;
                const char *ca;
                enum part parts[PARTS_MAX];
                int rc;
                const char *msg;
        } cases[] = {
            {"certificate by another issuer",
             "ca1",
             {P_VER3, P_SERIAL, P_ALG, P_OLD_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
             GMCA_ERR_POLICY,
             "engine: TBSCertificate names issuer \"C=CN, O=测试电子政务认证中心, CN=Old SM2 CA\", "
             "not CA ca1"},
            {"CRL by another issuer",
             "old",
             {P_CRL_V2, P_ALG, P_ISS, P_THIS},
             GMCA_ERR_POLICY,
             "not CA old"},
            {"ecdsa-with-SHA256",
             "ca1",
             {P_VER3, P_SERIAL, P_ALG_ECDSA, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
             GMCA_ERR_POLICY,
             "engine: TBSCertificate: signature algorithm is not SM2-with-SM3"},
            {"NULL parameters",
             "ca1",
             {P_VER3, P_SERIAL, P_ALG_NULL, P_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
             GMCA_ERR_POLICY,
             "parameters absent"},
            {"certificate from the CRL-only key",
             "old",
             {P_VER3, P_SERIAL, P_ALG, P_OLD_ISS, P_VALIDITY, P_SUBJ, P_SPKI},
             GMCA_ERR_POLICY,
             "engine: CA old: superseded key signs CRLs only (CPS §6.8)"},
            {"unknown CA", "nosuch", {CERT_OK}, GMCA_ERR_NOTFOUND, "engine: no CA nosuch"},
            {"certificate with a trailing field",
             "ca1",
             {CERT_OK, P_NULL},
             GMCA_ERR_INVALID,
             "unexpected field"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                build_tbs(f, cases[i].parts, &d);
                gmca_error_clear(&e);
                expect(gmca_engine_sign(c, cases[i].ca, d.b, d.n, sig, &siglen, &e), &e,
                       cases[i].rc, cases[i].msg, cases[i].what);
        }
        gmca_error_clear(&e);
        expect(gmca_engine_sign(c, "ca1", (const uint8_t *)"garbage", 7, sig, &siglen, &e), &e,
               GMCA_ERR_INVALID, "engine: TBS is not a DER SEQUENCE", "garbage");
        {
                const enum part good[PARTS_MAX] = {CERT_OK};

                build_tbs(f, good, &d);
                add(&d, "\x05\x00", 2);
                gmca_error_clear(&e);
                expect(gmca_engine_sign(c, "ca1", d.b, d.n, sig, &siglen, &e), &e, GMCA_ERR_INVALID,
                       "engine: TBS has 2 trailing bytes", "trailing bytes");
        }

        /* The client refuses what it cannot send. */
        memset(big, 0x30, sizeof(big));
        gmca_error_clear(&e);
        expect(gmca_engine_sign(c, "a/b", big, sizeof(big), sig, &siglen, &e), &e, GMCA_ERR_INVALID,
               "bad CA name", "client: bad name");
        gmca_error_clear(&e);
        expect(gmca_engine_sign(c, "ca1", big, 0, sig, &siglen, &e), &e, GMCA_ERR_INVALID, NULL,
               "client: empty TBS");

        /* A whole certificate through the signer: the refusal reaches gmca_x509_sign. */
        x = leaf_cert(f, f->old_ca);
        gmca_engine_signer_init(&old, c, "old");
        gmca_error_clear(&e);
        expect(gmca_x509_sign(x, &old.base, &e), &e, GMCA_ERR_POLICY, "signs CRLs only",
               "old key signs a certificate");
        X509_free(x);

        /* After all that, the same connection still signs. */
        {
                const enum part good[PARTS_MAX] = {CERT_OK};

                build_tbs(f, good, &d);
                gmca_error_clear(&e);
                expect(gmca_engine_sign(c, "ca1", d.b, d.n, sig, &siglen, &e), &e, 0, NULL,
                       "sign after refusals");
                expect(gmca_sm2_verify(f->key, GMCA_SM2_DEFAULT_ID, d.b, d.n, sig, siglen, &e), &e,
                       0, NULL, "verify after refusals");
        }
        gmca_engine_disconnect(c);
}

/* ---- raw frames ---- */

static int raw_connect(const char *path)
{
        struct sockaddr_un a;
        struct timeval tv = {.tv_sec = 20};
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        memset(&a, 0, sizeof(a));
        a.sun_family = AF_UNIX;
        gmca_strlcpy(a.sun_path, path, sizeof(a.sun_path));
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
        assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void raw_frame(int fd, const void *p, size_t n)
{
        uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};

        raw_send(fd, h, 4);
        raw_send(fd, p, n);
}

static void raw_read(int fd, uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t r = recv(fd, p, n, 0);

                assert_true(r > 0);
                p += r;
                n -= (size_t)r;
        }
}

/* Read one reply: status, body into buf (NUL-terminated), its length. */
static size_t raw_reply(int fd, uint8_t *status, uint8_t *buf, size_t cap)
{
        uint8_t h[4];
        size_t n;

        raw_read(fd, h, 4);
        n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        assert_true(n >= 1 && n < cap);
        raw_read(fd, status, 1);
        raw_read(fd, buf, n - 1);
        buf[n - 1] = 0;
        return n - 1;
}

static void expect_error_reply(int fd, int code, const char *msg, const char *what)
{
        uint8_t st, buf[600];
        size_t n = raw_reply(fd, &st, buf, sizeof(buf));
        int32_t got;

        if (st != 1 || n < 4)
                fail_msg("%s: status %u, %zu bytes", what, st, n);
        got = (int32_t)((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
                        buf[3]);
        if (got != code)
                fail_msg("%s: code %d, want %d (%s)", what, got, code, (char *)buf + 4);
        if (msg != NULL && strstr((char *)buf + 4, msg) == NULL)
                fail_msg("%s: message \"%s\" lacks \"%s\"", what, (char *)buf + 4, msg);
}

/* The engine hung up: end of file (or a reset, if it left bytes unread). */
static void expect_closed(int fd, const char *what)
{
        uint8_t b;
        ssize_t r = recv(fd, &b, 1, 0);

        if (!(r == 0 || (r < 0 && errno == ECONNRESET)))
                fail_msg("%s: connection still open (recv %zd)", what, r);
}

static void test_frames(void **state)
{
        struct fixture *f = *state;
        static const struct {
                const char *what;
                const char *b;
                size_t n;
        } bad[] = {
            {"unknown op", "X", 1},
            {"list with a body", "L\n", 2},
            {"sign without a TBS",
             "S\x00\x03"
             "ca1",
             6},
            {"sign with a name past the end",
             "S\x00\x09"
             "ca1",
             6},
            {"name with '/'",
             "S\x00\x02"
             "/a\x30\x00",
             7},
        };
        uint8_t st, buf[256];
        int fd;

        /* Length 0 and over the cap: an error reply, then the engine hangs up. */
        fd = raw_connect(f->sock);
        raw_send(fd, "\0\0\0\0", 4);
        expect_error_reply(fd, GMCA_ERR_INVALID, "frame length 0", "length 0");
        expect_closed(fd, "length 0");
        close(fd);
        fd = raw_connect(f->sock);
        raw_send(fd, "\xff\xff\xff\xff", 4);
        expect_error_reply(fd, GMCA_ERR_LIMIT, "frame length 4294967295", "length 2^32-1");
        expect_closed(fd, "length 2^32-1");
        close(fd);
        fd = raw_connect(f->sock);
        {
                uint32_t over = GMCA_ENGINE_FRAME_MAX + 1;
                uint8_t h[4] = {(uint8_t)(over >> 24), (uint8_t)(over >> 16), (uint8_t)(over >> 8),
                                (uint8_t)over};

                raw_send(fd, h, 4);
        }
        expect_error_reply(fd, GMCA_ERR_LIMIT, NULL, "length cap + 1");
        expect_closed(fd, "length cap + 1");
        close(fd);

        /* Malformed requests in good frames: an error each, the connection stays. */
        fd = raw_connect(f->sock);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                raw_frame(fd, bad[i].b, bad[i].n);
                expect_error_reply(fd, GMCA_ERR_INVALID, NULL, bad[i].what);
        }
        raw_frame(fd, "L", 1);
        raw_reply(fd, &st, buf, sizeof(buf));
        assert_int_equal(st, 0);
        assert_string_equal((char *)buf, "ca1\nold");

        /* Two requests in one write are answered in order. */
        raw_send(fd, "\0\0\0\1L\0\0\0\1X", 10);
        raw_reply(fd, &st, buf, sizeof(buf));
        assert_int_equal(st, 0);
        expect_error_reply(fd, GMCA_ERR_INVALID, "unknown request 0x58", "pipelined");
        close(fd);
}

/* Two connections: one stalls half-way through a frame while the other is served. */
static void test_interleave(void **state)
{
        struct fixture *f = *state;
        const enum part good[PARTS_MAX] = {CERT_OK};
        struct der d;
        uint8_t frame[4096], st, buf[256];
        size_t n, half;
        int a, b;
        struct gmca_error e;

        build_tbs(f, good, &d);
        n = 0;
        frame[n++] = 'S';
        frame[n++] = 0;
        frame[n++] = 3;
        memcpy(frame + n, "ca1", 3);
        n += 3;
        memcpy(frame + n, d.b, d.n);
        n += d.n;
        half = n / 2;

        a = raw_connect(f->sock);
        b = raw_connect(f->sock);
        {
                uint8_t h[4] = {0, 0, (uint8_t)(n >> 8), (uint8_t)n};

                raw_send(a, h, 4);
        }
        raw_send(a, frame, half);
        raw_frame(b, "L", 1);
        raw_reply(b, &st, buf, sizeof(buf));
        assert_int_equal(st, 0);
        assert_string_equal((char *)buf, "ca1\nold");
        raw_send(a, frame + half, n - half);
        n = raw_reply(a, &st, buf, sizeof(buf));
        assert_int_equal(st, 0);
        gmca_error_clear(&e);
        expect(gmca_sm2_verify(f->key, GMCA_SM2_DEFAULT_ID, d.b, d.n, buf, n, &e), &e, 0, NULL,
               "the stalled request's signature");
        close(a);
        close(b);
}

/* Four clients at once: round-robin in this process, then four processes in parallel. */
static void test_many_clients(void **state)
{
        struct fixture *f = *state;
        const enum part cert[PARTS_MAX] = {CERT_OK};
        const enum part crl[PARTS_MAX] = {P_CRL_V2, P_ALG, P_OLD_ISS, P_THIS, P_NEXT};
        struct gmca_engine_client *c[4];
        struct der dc, dl;
        struct gmca_error e;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        pid_t kids[4];

        build_tbs(f, cert, &dc);
        build_tbs(f, crl, &dl);
        for (int i = 0; i < 4; i++)
                c[i] = client(f);
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < 4; i++) {
                        int cr = (round + i) % 2;

                        gmca_error_clear(&e);
                        if (cr) { /* a refusal between signatures leaves every client usable */
                                expect(gmca_engine_sign(c[i], "old", dl.b, dl.n, sig, &siglen, &e),
                                       &e, GMCA_ERR_POLICY, "op C", "round-robin CRL refused");
                                continue;
                        }
                        expect(gmca_engine_sign(c[i], "ca1", dc.b, dc.n, sig, &siglen, &e), &e, 0,
                               NULL, "round-robin sign");
                        expect(gmca_sm2_verify(f->key, GMCA_SM2_DEFAULT_ID, dc.b, dc.n, sig, siglen,
                                               &e),
                               &e, 0, NULL, "round-robin verify");
                }
        for (int i = 0; i < 4; i++)
                gmca_engine_disconnect(c[i]);

        for (int i = 0; i < 4; i++) {
                kids[i] = fork();
                assert_true(kids[i] >= 0);
                if (kids[i] == 0) {
                        struct gmca_engine_client *k;
                        int bad = 0;

                        alarm(60);
                        gmca_error_clear(&e);
                        if ((k = gmca_engine_connect(f->sock, &e)) == NULL)
                                _exit(2);
                        for (int j = 0; j < 10 && !bad; j++) {
                                char list[64];

                                gmca_error_clear(&e);
                                bad =
                                    gmca_engine_sign(k, "ca1", dc.b, dc.n, sig, &siglen, &e) != 0 ||
                                    gmca_sm2_verify(f->key, GMCA_SM2_DEFAULT_ID, dc.b, dc.n, sig,
                                                    siglen, &e) != 0 ||
                                    gmca_engine_list(k, list, sizeof(list), &e) != 0 ||
                                    strcmp(list, "ca1\nold") != 0;
                        }
                        gmca_engine_disconnect(k);
                        _exit(bad);
                }
        }
        for (int i = 0; i < 4; i++)
                assert_int_equal(wait_engine(kids[i]), 0);
}

/* ---- life cycle ---- */

#define PATH_LEN 160

/* <tmp>/sub (made 0755), its run directory and the socket in it (not made). */
static void path_in(const struct fixture *f, const char *sub, char dir[PATH_LEN],
                    char sock[PATH_LEN])
{
        char base[96];

        assert_true(strlen(f->dir) + 1 + strlen(sub) < sizeof(base));
        snprintf(base, sizeof(base), "%s/%s", f->dir, sub);
        if (mkdir(base, 0755) != 0 && errno != EEXIST)
                fail_msg("mkdir %s: %s", base, strerror(errno));
        snprintf(dir, PATH_LEN, "%s/run", base);
        snprintf(sock, PATH_LEN, "%s/run/engine.sock", base);
}

static void test_lifecycle(void **state)
{
        struct fixture *f = *state;
        char dir[PATH_LEN], sock[PATH_LEN];
        struct stat st;
        struct gmca_engine_client *c;
        struct gmca_error e;
        pid_t pid;
        int code = 0;

        path_in(f, "life", dir, sock);
        pid = start_engine(f, sock, NULL);
        assert_true(pid > 0);
        assert_int_equal(lstat(dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(lstat(sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        /* A second engine on a live socket is refused, and the first goes on. */
        assert_int_equal(start_engine(f, sock, &code), -1);
        assert_int_equal(code, -GMCA_ERR_EXISTS);
        gmca_error_clear(&e);
        assert_int_equal(gmca_engine_serve(sock, f->keys, 2, NULL, -1, &e), GMCA_ERR_EXISTS);
        assert_non_null(strstr(e.msg, "already activated"));

        /* Deactivate: the answer, then a clean exit and no socket. */
        c = gmca_engine_connect(sock, &e);
        assert_non_null(c);
        gmca_error_clear(&e);
        expect(gmca_engine_deactivate(c, &e), &e, 0, NULL, "deactivate");
        assert_int_equal(wait_engine(pid), 0);
        assert_int_equal(lstat(sock, &st), -1);
        assert_int_equal(errno, ENOENT);
        gmca_engine_disconnect(c);
        c = gmca_engine_connect(sock, &e);
        assert_null(c);
        expect(GMCA_ERR_STATE, &e, GMCA_ERR_STATE, "CA not activated: no CA engine at ",
               "connect after deactivation");
        assert_non_null(strstr(e.msg, "(run gmca activate)"));

        /* Started again in the existing 0700 directory; SIGTERM ends it cleanly too. */
        pid = start_engine(f, sock, NULL);
        assert_true(pid > 0);
        assert_int_equal(kill(pid, SIGTERM), 0);
        assert_int_equal(wait_engine(pid), 0);
        assert_int_equal(lstat(sock, &st), -1);
        pid = start_engine(f, sock, NULL);
        assert_true(pid > 0);
        assert_int_equal(kill(pid, SIGINT), 0);
        assert_int_equal(wait_engine(pid), 0);
        assert_int_equal(lstat(sock, &st), -1);
}

static void test_stale_socket(void **state)
{
        struct fixture *f = *state;
        char dir[PATH_LEN], sock[PATH_LEN], list[64];
        struct sockaddr_un a;
        struct gmca_engine_client *c;
        struct gmca_error e;
        struct stat st;
        pid_t pid;
        int fd;

        path_in(f, "stale", dir, sock);
        assert_int_equal(mkdir(dir, 0700), 0);
        /* A socket left behind by an engine that died. */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        memset(&a, 0, sizeof(a));
        a.sun_family = AF_UNIX;
        gmca_strlcpy(a.sun_path, sock, sizeof(a.sun_path));
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        close(fd);
        assert_int_equal(lstat(sock, &st), 0);

        gmca_error_clear(&e);
        assert_null(gmca_engine_connect(sock, &e));
        assert_int_equal(e.code, GMCA_ERR_STATE);
        assert_non_null(strstr(e.msg, "CA not activated"));

        pid = start_engine(f, sock, NULL);
        assert_true(pid > 0);
        gmca_error_clear(&e);
        c = gmca_engine_connect(sock, &e);
        assert_non_null(c);
        expect(gmca_engine_list(c, list, sizeof(list), &e), &e, 0, NULL, "list after stale");
        assert_string_equal(list, "ca1\nold");

        /* The engine restarts under a connected client: it reconnects once. */
        {
                struct gmca_engine_client *d = gmca_engine_connect(sock, &e);

                assert_non_null(d);
                expect(gmca_engine_deactivate(d, &e), &e, 0, NULL, "deactivate");
                gmca_engine_disconnect(d);
                assert_int_equal(wait_engine(pid), 0);
        }
        pid = start_engine(f, sock, NULL);
        assert_true(pid > 0);
        expect(gmca_engine_list(c, list, sizeof(list), &e), &e, 0, NULL, "list after restart");
        assert_string_equal(list, "ca1\nold");
        gmca_engine_disconnect(c);
        assert_int_equal(kill(pid, SIGTERM), 0);
        assert_int_equal(wait_engine(pid), 0);

        /* A regular file where the socket goes is not replaced. */
        fd = open(sock, O_CREAT | O_WRONLY | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        {
                int code = 0;

                assert_int_equal(start_engine(f, sock, &code), -1);
                assert_int_equal(code, -GMCA_ERR_EXISTS);
        }
        assert_int_equal(unlink(sock), 0);
}

static void test_run_dir(void **state)
{
        struct fixture *f = *state;
        char dir[PATH_LEN], sock[PATH_LEN];
        struct gmca_error e;
        int code = 0;
        static const struct gmca_engine_key dup[2] = {{"a", NULL, NULL, 0, 0},
                                                      {"a", NULL, NULL, 0, 0}};

        /* Group or other access to the run directory: refused. */
        path_in(f, "loose", dir, sock);
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(chmod(dir, 0750), 0);
        assert_int_equal(start_engine(f, sock, &code), -1);
        assert_int_equal(code, -GMCA_ERR_POLICY);
        gmca_error_clear(&e);
        assert_int_equal(gmca_engine_serve(sock, f->keys, 2, NULL, -1, &e), GMCA_ERR_POLICY);
        assert_non_null(strstr(e.msg, "mode 0750"));

        /* Not a directory. */
        path_in(f, "file", dir, sock);
        code = open(dir, O_CREAT | O_WRONLY | O_EXCL, 0600);
        assert_true(code >= 0);
        close(code);
        gmca_error_clear(&e);
        assert_int_equal(gmca_engine_serve(sock, f->keys, 2, NULL, -1, &e), GMCA_ERR_POLICY);

        /* Bad arguments. */
        gmca_error_clear(&e);
        assert_int_equal(gmca_engine_serve(sock, dup, 2, NULL, -1, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_engine_serve("", f->keys, 2, NULL, -1, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_null(gmca_engine_connect("/nonexistent/gmca/run/engine.sock", &e));
        assert_int_equal(e.code, GMCA_ERR_STATE);
}

/* ---- RA requests and the custodians' authorisation ---- */

#define NONCE_A "0123456789abcdef0123456789abcdef"

static const struct ra_case {
        const char *what;
        const char *p;
        size_t n; /* 0: strlen */
        int rc;
        const char *msg;
} ra_cases[] = {
    {"issue", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nissue\n7", 0, 0, NULL},
    {"seal", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nseal\napplicant:1:id_number\nX", 0, 0,
     NULL},
    {"seal, value with a newline and NUL",
     "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nseal\na\n\n\0b", 52 + 32 + 7, 0, NULL},
    {"empty", "", 0, GMCA_ERR_INVALID, "empty"},
    {"wrong magic", "gmca-ra-v2\n0A01\n1735689600\n" NONCE_A "\nissue\n7", 0, GMCA_ERR_INVALID,
     "does not begin"},
    {"lower-case serial", "gmca-ra-v1\n0a01\n1735689600\n" NONCE_A "\nissue\n7", 0,
     GMCA_ERR_INVALID, "line 2"},
    {"empty serial", "gmca-ra-v1\n\n1735689600\n" NONCE_A "\nissue\n7", 0, GMCA_ERR_INVALID,
     "line 2"},
    {"41-digit serial",
     "gmca-ra-v1\n0A0102030405060708090A0B0C0D0E0F101112131\n1735689600\n" NONCE_A "\nissue\n7", 0,
     GMCA_ERR_INVALID, "line 2"},
    {"signed time", "gmca-ra-v1\n0A01\n-1735689600\n" NONCE_A "\nissue\n7", 0, GMCA_ERR_INVALID,
     "line 3"},
    {"time with a leading zero", "gmca-ra-v1\n0A01\n01735689600\n" NONCE_A "\nissue\n7", 0,
     GMCA_ERR_INVALID, "line 3"},
    {"13-digit time", "gmca-ra-v1\n0A01\n1735689600000\n" NONCE_A "\nissue\n7", 0, GMCA_ERR_INVALID,
     "line 3"},
    {"short nonce", "gmca-ra-v1\n0A01\n1735689600\n0123456789abcdef\nissue\n7", 0, GMCA_ERR_INVALID,
     "line 4"},
    {"upper-case nonce", "gmca-ra-v1\n0A01\n1735689600\n0123456789ABCDEF0123456789abcdef\nissue\n7",
     0, GMCA_ERR_INVALID, "line 4"},
    {"unknown operation", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nsign\n7", 0, GMCA_ERR_INVALID,
     "unknown operation"},
    {"no operation", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nissue", 0, GMCA_ERR_INVALID,
     "line 5"},
    {"issue without an id", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nissue\n", 0,
     GMCA_ERR_INVALID, "application id"},
    {"issue id 0", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nissue\n0", 0, GMCA_ERR_INVALID,
     "application id"},
    {"issue id with a newline", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nissue\n7\n", 0,
     GMCA_ERR_INVALID, "application id"},
    {"issue id of 19 digits",
     "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nissue\n1234567890123456789", 0, GMCA_ERR_INVALID,
     "application id"},
    {"seal without aad", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nseal\n\nX", 0,
     GMCA_ERR_INVALID, "aad"},
    {"seal without a value", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nseal\naad\n", 0,
     GMCA_ERR_INVALID, "value to seal"},
    {"aad with a control byte", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nseal\na\tb\nX", 0,
     GMCA_ERR_INVALID, "printable"},
    {"unseal shorter than IV and tag",
     "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nunseal\naad\n0123456789abcdef0123456789ab", 0,
     GMCA_ERR_INVALID, "IV, ciphertext and tag"},
    {"revoke", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nrevoke\n12", 0, 0, NULL},
    {"revoke without an id", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\nrevoke\n", 0,
     GMCA_ERR_INVALID, "a revocation request id"},
    {"disable", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\ndisable\nopZ\nPROOF", 0, 0, NULL},
    {"disable without the signed request",
     "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\ndisable\nopZ\n", 0, GMCA_ERR_INVALID,
     "without the signed request"},
    {"disable a name with a slash", "gmca-ra-v1\n0A01\n1735689600\n" NONCE_A "\ndisable\na/b\nP", 0,
     GMCA_ERR_INVALID, "operator name"},
};

static void test_parse_ra(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(ra_cases) / sizeof(ra_cases[0]); i++) {
                const struct ra_case *c = &ra_cases[i];
                struct gmca_engine_ra_req r;
                struct gmca_error e;
                size_t n = c->n ? c->n : strlen(c->p);

                gmca_error_clear(&e);
                expect(gmca_engine_parse_ra((const uint8_t *)c->p, n, &r, &e), &e, c->rc, c->msg,
                       c->what);
        }
        {
                static const char p[] =
                    "gmca-ra-v1\nABCDEF\n1735689600\n" NONCE_A "\nunseal\napplicant:9:id_number\n"
                    "0123456789abcdef0123456789abc";
                struct gmca_engine_ra_req r;
                struct gmca_error e;

                gmca_error_clear(&e);
                expect(gmca_engine_parse_ra((const uint8_t *)p, sizeof(p) - 1, &r, &e), &e, 0, NULL,
                       "unseal");
                assert_string_equal(r.serial, "ABCDEF");
                assert_int_equal(r.time, 1735689600);
                assert_string_equal(r.nonce, NONCE_A);
                assert_int_equal(r.subop, GMCA_RA_OP_UNSEAL);
                assert_string_equal(r.aad, "applicant:9:id_number");
                assert_int_equal(r.value_len, 29);
                assert_memory_equal(r.value, "0123456789abcdef0123456789abc", 29);
        }
        {
                uint8_t big[GMCA_ENGINE_RA_MAX + 1];
                struct gmca_engine_ra_req r;
                struct gmca_error e;

                memset(big, 'a', sizeof(big));
                gmca_error_clear(&e);
                expect(gmca_engine_parse_ra(big, sizeof(big), &r, &e), &e, GMCA_ERR_LIMIT, NULL,
                       "payload over the cap");
        }
}

static void test_parse_request_tr(void **state)
{
        uint8_t b[200];
        struct gmca_engine_request r;
        struct gmca_error e;
        size_t n;

        (void)state;
        /* 'T': name, MAC, TBS. */
        n = 0;
        b[n++] = 'T';
        b[n++] = 0;
        b[n++] = 3;
        memcpy(b + n, "ca1", 3);
        n += 3;
        memset(b + n, 0xaa, GMCA_ENGINE_AUTHZ_LEN);
        n += GMCA_ENGINE_AUTHZ_LEN;
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n, &r, &e), &e, GMCA_ERR_INVALID, "without a TBS",
               "T without a TBS");
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n - 1, &r, &e), &e, GMCA_ERR_INVALID, "without its MAC",
               "T with a short MAC");
        b[n++] = 0x30;
        b[n++] = 0x00;
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n, &r, &e), &e, 0, NULL, "T");
        assert_int_equal(r.op, 'T');
        assert_string_equal(r.name, "ca1");
        assert_ptr_equal(r.mac, b + 6);
        assert_ptr_equal(r.tbs, b + 6 + GMCA_ENGINE_AUTHZ_LEN);
        assert_int_equal(r.tbs_len, 2);

        /* 'R': u32 payload length, payload, signature. */
        n = 0;
        b[n++] = 'R';
        gmca_put_be32(b + n, 10);
        n += 4;
        memset(b + n, 'p', 10 + 70);
        n += 10 + 70;
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n, &r, &e), &e, 0, NULL, "R");
        assert_int_equal(r.op, 'R');
        assert_ptr_equal(r.payload, b + 5);
        assert_int_equal(r.payload_len, 10);
        assert_ptr_equal(r.sig, b + 15);
        assert_int_equal(r.sig_len, 70);
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, 5 + 10 + 7, &r, &e), &e, GMCA_ERR_INVALID,
               "signature of 7 bytes", "R with a short signature");
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, 5 + 10 + GMCA_SM2_SIG_MAX + 1, &r, &e), &e,
               GMCA_ERR_INVALID, "signature of 81 bytes", "R with a long signature");
        gmca_put_be32(b + 1, 200);
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n, &r, &e), &e, GMCA_ERR_INVALID, "runs past",
               "R payload past the end");
        gmca_put_be32(b + 1, 0);
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n, &r, &e), &e, GMCA_ERR_INVALID, "0 bytes",
               "R empty payload");
        gmca_put_be32(b + 1, GMCA_ENGINE_RA_MAX + 1);
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, n, &r, &e), &e, GMCA_ERR_LIMIT, NULL,
               "R payload over the cap");
        gmca_error_clear(&e);
        expect(gmca_engine_parse_request(b, 4, &r, &e), &e, GMCA_ERR_INVALID, "payload length",
               "R without a length");
}

/* An engine on <dir>/<sub>/run/engine.sock serving with pol; *sock receives its path. */
static pid_t engine_with(struct fixture *f, const char *sub, const struct gmca_engine_policy *pol,
                         char sock[PATH_LEN])
{
        char dir[96];
        pid_t pid;

        snprintf(dir, sizeof(dir), "%s/%s", f->dir, sub);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(sock, PATH_LEN, "%s/run/engine.sock", dir);
        f->pol = pol;
        pid = start_engine(f, sock, NULL);
        f->pol = &f->policy;
        assert_true(pid > 0);
        return pid;
}

static struct gmca_engine_client *client_at(const char *sock)
{
        struct gmca_error e;
        struct gmca_engine_client *c;

        gmca_error_clear(&e);
        if ((c = gmca_engine_connect(sock, &e)) == NULL)
                fail_msg("connect %s: %s", sock, e.msg);
        return c;
}

/* Without --direct-issue: certificates only with the custodians' MAC; CRL bodies for no one. */
static void test_authorisation(void **state)
{
        struct fixture *f = *state;
        const enum part cert[PARTS_MAX] = {CERT_OK};
        const enum part crl[PARTS_MAX] = {P_CRL_V2, P_ALG, P_ISS, P_THIS, P_NEXT};
        struct gmca_engine_policy strict = f->policy;
        struct gmca_engine_client *c, *bare;
        struct gmca_engine_signer es;
        struct gmca_error e;
        struct der dc, dl;
        uint8_t sig[GMCA_SM2_SIG_MAX], wrong[GMCA_ENGINE_AUTHZ_LEN];
        size_t siglen = 0;
        char sock[PATH_LEN], sock2[PATH_LEN];
        pid_t pid, pid2;
        X509 *x;

        strict.direct_issue = 0;
        pid = engine_with(f, "strict", &strict, sock);
        pid2 = engine_with(f, "bare", NULL, sock2);
        c = client_at(sock);
        bare = client_at(sock2);
        build_tbs(f, cert, &dc);
        build_tbs(f, crl, &dl);

        gmca_error_clear(&e);
        expect(gmca_engine_sign(c, "ca1", dc.b, dc.n, sig, &siglen, &e), &e, GMCA_ERR_POLICY,
               "engine: certificates are issued for approved applications only (RA); or with the "
               "custodians' authorisation",
               "S certificate without direct issue");
        expect_audit(f, "engine.request|engine|failure|0123456789ABCDEF|", "\"op\":\"S\"",
                     "S refusal audited");
        gmca_error_clear(&e);
        expect(gmca_engine_sign(c, "ca1", dl.b, dl.n, sig, &siglen, &e), &e, GMCA_ERR_POLICY,
               "op C", "S CRL without direct issue");

        /* The custodians' MAC opens certificates, and the signature is audited. */
        gmca_error_clear(&e);
        expect(gmca_engine_sign_authorised(c, "ca1", f->authz, dc.b, dc.n, sig, &siglen, &e), &e, 0,
               NULL, "T with the right key");
        expect(gmca_sm2_verify(f->key, GMCA_SM2_DEFAULT_ID, dc.b, dc.n, sig, siglen, &e), &e, 0,
               NULL, "verify the authorised signature");
        expect_audit(f, "engine.sign|engine|success|0123456789ABCDEF|",
                     "\"authorisation\":\"custodians\"", "T signature audited");
        /* A whole certificate through an authorised signer. */
        x = leaf_cert(f, f->ca);
        gmca_engine_signer_init(&es, c, "ca1");
        es.authz = f->authz;
        expect(gmca_x509_sign(x, &es.base, &e), &e, 0, NULL, "authorised signer");
        expect(gmca_cert_verify_signed_by(x, f->key, GMCA_SM2_DEFAULT_ID, &e), &e, 0, NULL,
               "verify the certificate");
        X509_free(x);

        memcpy(wrong, f->authz, sizeof(wrong));
        wrong[0] ^= 1;
        gmca_error_clear(&e);
        expect(gmca_engine_sign_authorised(c, "ca1", wrong, dc.b, dc.n, sig, &siglen, &e), &e,
               GMCA_ERR_AUTH, "authorisation does not verify", "T with a wrong key");
        expect_audit(f, "engine.request|engine|failure|ca1|", "\"op\":\"T\"", "T refusal audited");
        gmca_error_clear(&e);
        expect(gmca_engine_sign_authorised(bare, "ca1", f->authz, dc.b, dc.n, sig, &siglen, &e), &e,
               GMCA_ERR_AUTH, "holds no custodians' authorisation key",
               "T to an engine without the key");
        gmca_error_clear(&e);
        expect(gmca_engine_sign(bare, "ca1", dc.b, dc.n, sig, &siglen, &e), &e, GMCA_ERR_POLICY,
               "approved applications only", "S certificate to an engine without policy");
        gmca_error_clear(&e);
        expect(gmca_engine_sign(bare, "ca1", dl.b, dl.n, sig, &siglen, &e), &e, GMCA_ERR_POLICY,
               "op C", "S CRL to an engine without policy");
        {
                struct gmca_engine_crl_req q = {.kind = GMCA_ENGINE_CRL_FULL, .actor = "unit"};
                struct gmca_engine_crl_res res;

                gmca_error_clear(&e);
                expect(gmca_engine_crl(bare, "ca1", &q, &res, &e), &e, GMCA_ERR_STATE,
                       "makes no CRLs", "C to an engine without policy");
        }
        gmca_error_clear(&e);
        expect(gmca_engine_sign_authorised(c, "ca1", NULL, dc.b, dc.n, sig, &siglen, &e), &e,
               GMCA_ERR_INVALID, NULL, "client: no key");

        /* The shared engine (direct issue) audits what it signs as "direct". */
        gmca_engine_disconnect(c);
        c = client(f);
        gmca_error_clear(&e);
        expect(gmca_engine_sign(c, "ca1", dc.b, dc.n, sig, &siglen, &e), &e, 0, NULL,
               "S certificate with direct issue");
        expect_audit(f, "engine.sign|engine|success|0123456789ABCDEF|",
                     "\"authorisation\":\"direct\"", "S signature audited");
        gmca_engine_disconnect(c);
        gmca_engine_disconnect(bare);
        kill(pid, SIGTERM);
        kill(pid2, SIGTERM);
        assert_int_equal(wait_engine(pid), 0);
        assert_int_equal(wait_engine(pid2), 0);
}

/* A whole 'R' frame: payload (header + args) signed by key. */
static size_t ra_frame(EVP_PKEY *key, const char *sn, long long t, const char *nonce,
                       const char *subop, const void *args, size_t alen, uint8_t *out, size_t cap)
{
        uint8_t *sig = NULL;
        size_t siglen = 0, n;
        struct gmca_error e;
        int h;

        h = snprintf((char *)out + 5, cap - 5, "gmca-ra-v1\n%s\n%lld\n%s\n%s\n", sn, t, nonce,
                     subop);
        assert_true(h > 0 && (size_t)h + alen + 5 + GMCA_SM2_SIG_MAX < cap);
        memcpy(out + 5 + h, args, alen);
        n = (size_t)h + alen;
        gmca_error_clear(&e);
        expect(gmca_sm2_sign(key, GMCA_SM2_DEFAULT_ID, out + 5, n, &sig, &siglen, &e), &e, 0, NULL,
               "sign the RA payload");
        out[0] = 'R';
        gmca_put_be32(out + 1, (uint32_t)n);
        memcpy(out + 5 + n, sig, siglen);
        OPENSSL_free(sig);
        return 5 + n + siglen;
}

static void fresh_nonce(char nonce[GMCA_ENGINE_NONCE_HEX + 1])
{
        uint8_t r[GMCA_ENGINE_NONCE_HEX / 2];
        struct gmca_error e;

        gmca_error_clear(&e);
        assert_int_equal(gmca_rand_bytes(r, sizeof(r), &e), 0);
        gmca_hex(r, sizeof(r), nonce);
}

static void test_ra_requests(void **state)
{
        struct fixture *f = *state;
        struct gmca_engine_ra ra = {client(f), f->ra_key, f->ra_cert};
        struct gmca_engine_ra old = {ra.client, f->old_ra_key, f->old_ra_cert};
        struct gmca_engine_ra forged = {ra.client, f->stranger, f->ra_cert};
        struct gmca_error e;
        char sn[GMCA_SERIAL_HEX_MAX], nonce[GMCA_ENGINE_NONCE_HEX + 1];
        uint8_t frame[1024], st, buf[600];
        long long now = (long long)time(NULL);
        size_t n;
        int fd;

        gmca_error_clear(&e);
        expect(gmca_engine_ra_issue(&ra, 7, sn, &e), &e, 0, NULL, "issue an approved application");
        assert_string_equal(sn, ISSUED_SERIAL);
        expect(gmca_engine_ra_issue_cb(&ra, 7, sn, &e), &e, 0, NULL, "issue through the callback");
        gmca_error_clear(&e);
        expect(gmca_engine_ra_issue(&ra, 8, sn, &e), &e, GMCA_ERR_POLICY,
               "engine: application 8 is not approved", "the engine's refusal comes back");
        gmca_error_clear(&e);
        expect(gmca_engine_ra_issue(&forged, 7, sn, &e), &e, GMCA_ERR_AUTH,
               "SM2 signature does not verify with RA certificate 0A01", "signed by another key");
        expect_audit(f, "engine.request|ra:0A01|failure||", "does not verify", "forgery audited");
        gmca_error_clear(&e);
        expect(gmca_engine_ra_issue(&old, 7, sn, &e), &e, GMCA_ERR_AUTH,
               "has been replaced by 0A01", "an RA certificate no longer current");
        expect_audit(f, "engine.request|ra:0A02|failure||", "replaced", "old certificate audited");

        /* Hand-made frames: unknown RA, stale and future times, a replay, garbage. */
        fd = raw_connect(f->sock);
        fresh_nonce(nonce);
        n = ra_frame(f->ra_key, "0A03", now, nonce, "issue", "7", 1, frame, sizeof(frame));
        raw_frame(fd, frame, n);
        expect_error_reply(fd, GMCA_ERR_AUTH, "0A03: not issued by this CA", "unknown RA");
        fresh_nonce(nonce);
        n = ra_frame(f->ra_key, RA_SERIAL, now - GMCA_AUTH_SKEW - 5, nonce, "issue", "7", 1, frame,
                     sizeof(frame));
        raw_frame(fd, frame, n);
        expect_error_reply(fd, GMCA_ERR_AUTH, "stale", "an old request");
        expect_audit(f, "engine.request|ra:0A01|failure||", "stale", "stale audited");
        fresh_nonce(nonce);
        n = ra_frame(f->ra_key, RA_SERIAL, now + GMCA_AUTH_SKEW + 5, nonce, "issue", "7", 1, frame,
                     sizeof(frame));
        raw_frame(fd, frame, n);
        expect_error_reply(fd, GMCA_ERR_AUTH, "stale", "a request from the future");
        fresh_nonce(nonce);
        n = ra_frame(f->ra_key, RA_SERIAL, now, nonce, "issue", "7", 1, frame, sizeof(frame));
        raw_frame(fd, frame, n);
        n = raw_reply(fd, &st, buf, sizeof(buf));
        assert_int_equal(st, 0);
        assert_string_equal((char *)buf, ISSUED_SERIAL);
        n = ra_frame(f->ra_key, RA_SERIAL, now, nonce, "issue", "7", 1, frame, sizeof(frame));
        raw_frame(fd, frame, n);
        expect_error_reply(fd, GMCA_ERR_AUTH, "nonce replayed", "the same nonce again");
        expect_audit(f, "engine.request|ra:0A01|failure||", "replayed", "replay audited");
        /* A signature over other bytes: the payload was changed in transit. */
        fresh_nonce(nonce);
        n = ra_frame(f->ra_key, RA_SERIAL, now, nonce, "issue", "7", 1, frame, sizeof(frame));
        frame[5 + 11] = '1'; /* 0A01 -> 1A01 */
        raw_frame(fd, frame, n);
        expect_error_reply(fd, GMCA_ERR_AUTH, "1A01", "altered payload");
        fresh_nonce(nonce);
        n = ra_frame(f->ra_key, RA_SERIAL, now, nonce, "issue", "7x", 2, frame, sizeof(frame));
        raw_frame(fd, frame, n);
        expect_error_reply(fd, GMCA_ERR_INVALID, "application id", "malformed arguments");
        expect_audit(f, "engine.request|ra|failure||", "application id", "malformed audited");
        close(fd);
        gmca_engine_disconnect(ra.client);
}

static void test_seal(void **state)
{
        struct fixture *f = *state;
        struct gmca_engine_ra ra = {client(f), f->ra_key, f->ra_cert};
        struct gmca_pii_sealer s;
        struct gmca_error e;
        static const char id[] = "11010519491231002X";
        uint8_t *sealed = NULL, *plain = NULL, *again = NULL, big[GMCA_ENGINE_SEAL_MAX + 1];
        size_t sl = 0, pl = 0, al = 0;
        uint8_t tag[GMCA_SM4_GCM_TAG_LEN];

        gmca_engine_ra_sealer(&ra, &s);
        assert_ptr_equal(s.arg, &ra);
        gmca_error_clear(&e);
        expect(s.seal(s.arg, "applicant:1:id_number", (const uint8_t *)id, strlen(id), &sealed, &sl,
                      &e),
               &e, 0, NULL, "seal");
        assert_int_equal(sl, GMCA_SM4_GCM_IV_LEN + strlen(id) + GMCA_SM4_GCM_TAG_LEN);
        for (size_t i = 0; i + strlen(id) <= sl; i++)
                assert_true(memcmp(sealed + i, id, strlen(id)) != 0); /* no clear text */
        /* Independently: SM4-GCM under the engine's key, aad bound. */
        expect(gmca_sm4_gcm_decrypt(f->pii, sealed, (const uint8_t *)"applicant:1:id_number", 21,
                                    sealed + GMCA_SM4_GCM_IV_LEN, strlen(id),
                                    sealed + sl - GMCA_SM4_GCM_TAG_LEN, big, &e),
               &e, 0, NULL, "decrypt with K_pii");
        assert_memory_equal(big, id, strlen(id));
        expect(s.unseal(s.arg, "applicant:1:id_number", sealed, sl, &plain, &pl, &e), &e, 0, NULL,
               "unseal");
        assert_int_equal(pl, strlen(id));
        assert_memory_equal(plain, id, pl);
        /* Two seals of one value differ (fresh IV). */
        expect(s.seal(s.arg, "applicant:1:id_number", (const uint8_t *)id, strlen(id), &again, &al,
                      &e),
               &e, 0, NULL, "seal again");
        assert_true(al == sl && memcmp(again, sealed, sl) != 0);

        gmca_error_clear(&e);
        expect(s.unseal(s.arg, "applicant:2:id_number", sealed, sl, &plain, &pl, &e), &e,
               GMCA_ERR_VERIFY, "does not authenticate under aad \"applicant:2:id_number\"",
               "moved to another row");
        expect_audit(f, "engine.request|ra:0A01|failure|applicant:2:id_number|",
                     "\"op\":\"unseal\"", "unseal refusal audited");
        sealed[GMCA_SM4_GCM_IV_LEN] ^= 0x01;
        gmca_error_clear(&e);
        expect(s.unseal(s.arg, "applicant:1:id_number", sealed, sl, &plain, &pl, &e), &e,
               GMCA_ERR_VERIFY, "does not authenticate", "tampered ciphertext");
        sealed[GMCA_SM4_GCM_IV_LEN] ^= 0x01;
        memcpy(tag, sealed + sl - sizeof(tag), sizeof(tag));
        sealed[sl - 1] ^= 0x80;
        gmca_error_clear(&e);
        expect(s.unseal(s.arg, "applicant:1:id_number", sealed, sl, &plain, &pl, &e), &e,
               GMCA_ERR_VERIFY, NULL, "tampered tag");
        memcpy(sealed + sl - sizeof(tag), tag, sizeof(tag));
        free(plain);
        plain = NULL;
        gmca_error_clear(&e);
        expect(s.unseal(s.arg, "applicant:1:id_number", sealed, sl, &plain, &pl, &e), &e, 0, NULL,
               "restored");

        /* What the client will not send. */
        memset(big, 'x', sizeof(big));
        gmca_error_clear(&e);
        expect(gmca_engine_ra_seal(&ra, 0, "a", big, sizeof(big), &again, &al, &e), &e,
               GMCA_ERR_INVALID, NULL, "value over the cap");
        gmca_error_clear(&e);
        expect(gmca_engine_ra_seal(&ra, 0, "a\nb", big, 4, &again, &al, &e), &e, GMCA_ERR_INVALID,
               "aad", "aad with a newline");
        gmca_error_clear(&e);
        expect(gmca_engine_ra_seal(&ra, 0, "", big, 4, &again, &al, &e), &e, GMCA_ERR_INVALID,
               "aad", "empty aad");
        free(sealed);
        free(plain);
        free(again);
        gmca_engine_disconnect(ra.client);
}

/* ---- op 'C': CRLs the engine makes ---- */

/* A 'C' frame: name, kind, flags, arg, actor. */
struct crl_frame {
        uint8_t b[512];
        size_t n;
};

static void crl_frame(struct crl_frame *f, const char *name, char kind, uint8_t flags, uint32_t arg,
                      const char *actor, size_t actorlen)
{
        size_t nl = strlen(name);

        f->b[0] = 'C';
        f->b[1] = (uint8_t)(nl >> 8);
        f->b[2] = (uint8_t)nl;
        memcpy(f->b + 3, name, nl);
        f->n = 3 + nl;
        f->b[f->n++] = (uint8_t)kind;
        f->b[f->n++] = flags;
        gmca_put_be32(f->b + f->n, arg);
        f->n += 4;
        f->b[f->n++] = (uint8_t)(actorlen >> 8);
        f->b[f->n++] = (uint8_t)actorlen;
        memcpy(f->b + f->n, actor, strlen(actor));
        f->n += strlen(actor);
}

static const struct crl_parse_case {
        const char *what;
        const char *name;
        char kind;
        uint8_t flags;
        uint32_t arg;
        const char *actor;
        int actorlen; /* -1: strlen(actor) */
        int cut;      /* bytes taken off the end */
        int rc;
} crl_parse_cases[] = {
    {"complete CRL", "ca1", 'F', 0, 0, "op:张三", -1, 0, 0},
    {"complete CRL, 744 hours", "ca1", 'F', 0, 744, "cli", -1, 0, 0},
    {"delta CRL", "ca1", 'D', 0, 0, "scheduler", -1, 0, 0},
    {"forced pass", "*", 'P', 1, 14400, "scheduler", -1, 0, 0},
    {"pass, any interval (the engine bounds it)", "*", 'P', 0, 0xffffffffu, "x", -1, 0, 0},
    {"complete CRL, 745 hours", "ca1", 'F', 0, 745, "cli", -1, 0, GMCA_ERR_INVALID},
    {"delta with an argument", "ca1", 'D', 0, 1, "cli", -1, 0, GMCA_ERR_INVALID},
    {"complete CRL forced", "ca1", 'F', 1, 0, "cli", -1, 0, GMCA_ERR_INVALID},
    {"pass with other flags", "*", 'P', 3, 0, "cli", -1, 0, GMCA_ERR_INVALID},
    {"unknown kind", "ca1", 'X', 0, 0, "cli", -1, 0, GMCA_ERR_INVALID},
    {"pass naming a CA", "ca1", 'P', 0, 0, "cli", -1, 0, GMCA_ERR_INVALID},
    {"complete CRL of every CA", "*", 'F', 0, 0, "cli", -1, 0, GMCA_ERR_INVALID},
    {"no actor", "ca1", 'F', 0, 0, "", -1, 0, GMCA_ERR_INVALID},
    {"actor with a newline", "ca1", 'F', 0, 0, "a\nb", -1, 0, GMCA_ERR_INVALID},
    {"actor longer than sent", "ca1", 'F', 0, 0, "abc", 2, 0, GMCA_ERR_INVALID},
    {"actor shorter than said", "ca1", 'F', 0, 0, "abc", 4, 0, GMCA_ERR_INVALID},
    {"cut in the fixed fields", "ca1", 'F', 0, 0, "", 0, 3, GMCA_ERR_INVALID},
};

static void test_parse_crl(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(crl_parse_cases) / sizeof(crl_parse_cases[0]); i++) {
                const struct crl_parse_case *c = &crl_parse_cases[i];
                struct gmca_engine_request r;
                struct crl_frame f;
                struct gmca_error e;

                crl_frame(&f, c->name, c->kind, c->flags, c->arg, c->actor,
                          c->actorlen < 0 ? strlen(c->actor) : (size_t)c->actorlen);
                f.n -= (size_t)c->cut;
                memset(&r, 0x5a, sizeof(r));
                gmca_error_clear(&e);
                expect(gmca_engine_parse_request(f.b, f.n, &r, &e), &e, c->rc, NULL, c->what);
                if (c->rc != 0)
                        continue;
                assert_int_equal(r.op, 'C');
                assert_string_equal(r.name, c->name);
                assert_int_equal(r.crl.kind, c->kind);
                assert_int_equal(r.crl.force, c->flags & 1);
                assert_int_equal(r.crl.arg, c->arg);
                assert_string_equal(r.crl.actor, c->actor);
                assert_null(r.tbs);
        }
}

/* The engine of a real test CA (gmca_ctx_serve_engine) in a child; its pid. */
static pid_t ca_engine(const struct test_ca *t)
{
        int p[2];
        pid_t pid;
        uint8_t b;
        ssize_t r;

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct gmca_error e = {0};
                struct gmca_ctx *c;
                int rc = GMCA_ERR_INTERNAL;

                close(p[0]);
                alarm(120);
                if ((c = gmca_ctx_open(t->dir, "unit-engine", &e)) != NULL &&
                    (rc = gmca_ctx_activate(c, t->cust, 3, &e)) == 0)
                        rc = gmca_ctx_serve_engine(c, p[1], &e);
                if (rc != 0)
                        fprintf(stderr, "engine: %s\n", e.msg);
                gmca_ctx_close(c);
                _exit(rc == 0 ? 0 : 1);
        }
        close(p[1]);
        do
                r = read(p[0], &b, 1);
        while (r < 0 && errno == EINTR);
        close(p[0]);
        assert_int_equal(r, 1);
        return pid;
}

/* Issue a certificate of the default CA (in-process keys); its serial. */
static void ca_issue(struct gmca_ctx *c, const char *cn, char sn[GMCA_SERIAL_HEX_MAX])
{
        struct gmca_issue_req r = {0};
        struct gmca_error e = {0};
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        size_t len = 0;
        uint8_t *csr;

        assert_non_null(key);
        csr = test_csr_key(key, "单元测试认证中心", NULL, cn, &len);
        assert_non_null(csr);
        r.profile = "operator";
        r.csr = csr;
        r.csr_len = len;
        if (gmca_ca_issue(c, &r, sn, NULL, &e) != 0)
                fail_msg("issue %s: %s", cn, e.msg);
        OPENSSL_free(csr);
        EVP_PKEY_free(key);
}

/* The CRL of rec parsed and verified with CA sub's key; caller frees. */
static X509_CRL *crl_checked(struct gmca_ctx *c, const struct gmca_crl_rec *rec)
{
        struct gmca_ca_rec ca;
        struct gmca_error e = {0};
        const uint8_t *p;
        X509 *cert;
        X509_CRL *crl;

        memset(&ca, 0, sizeof(ca));
        expect(gmca_store_ca_get(gmca_ctx_store(c), "sub", &ca, &e), &e, 0, NULL, "CA sub");
        p = ca.cert_der;
        assert_non_null(cert = d2i_X509(NULL, &p, (long)ca.cert_len));
        assert_non_null(crl = gmca_crl_parse(rec->der, rec->der_len, &e));
        expect(gmca_crl_verify(crl, X509_get0_pubkey(cert), NULL, &e), &e, 0, NULL,
               "the CRL verifies with the CA's key");
        X509_free(cert);
        gmca_ca_rec_clear(&ca);
        return crl;
}

/* 1 if the CRL lists serial (hex). */
static int crl_lists(X509_CRL *crl, const char *sn)
{
        STACK_OF(X509_REVOKED) *rv = X509_CRL_get_REVOKED(crl);

        for (int i = 0; i < sk_X509_REVOKED_num(rv); i++) {
                BIGNUM *bn = ASN1_INTEGER_to_BN(
                    X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rv, i)), NULL);
                char *hex = BN_bn2hex(bn);
                int same = hex != NULL && strcmp(hex, sn) == 0;

                OPENSSL_free(hex);
                BN_free(bn);
                if (same)
                        return 1;
        }
        return 0;
}

/* How many audit records have event, actor and detail containing needle. */
static int64_t audit_count(struct gmca_ctx *c, const char *event, const char *actor,
                           const char *needle)
{
        static const char sql[] =
            "SELECT COUNT(*) FROM audit WHERE event = ? AND actor = ? AND detail LIKE ?";
        struct gmca_error e = {0};
        char like[256];
        struct gmca_q q;
        int64_t n = -1;

        snprintf(like, sizeof(like), "%%%s%%", needle);
        assert_int_equal(gmca_q_open(gmca_ctx_store(c), sql, &q, &e), 0);
        gmca_q_text(&q, event);
        gmca_q_text(&q, actor);
        gmca_q_text(&q, like);
        if (gmca_q_step(&q, &e, "audit") == GMCA_DB_ROW)
                n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

/*
 * Op 'C' against the engine of a real CA: a context that signs through the
 * engine gets its CRLs made there, from the store (the revocations, the
 * next number, the configured validity), audited as the engine's with the
 * caller named; a hostile interval is bounded; rapid requests are paced;
 * the engine will not sign a CRL body it is sent.
 */
static void test_crl_by_engine(void **state)
{
        struct test_ca t;
        struct gmca_ctx *c;
        struct gmca_engine_client *k;
        struct gmca_error e = {0};
        struct gmca_crl_rec r1, r2, r3;
        char sock[512];
        struct gmca_engine_crl_req q = {0};
        struct gmca_engine_crl_res res[3];
        char s1[GMCA_SERIAL_HEX_MAX], s2[GMCA_SERIAL_HEX_MAX], s3[GMCA_SERIAL_HEX_MAX];
        unsigned char *tbs = NULL;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0, made = 0;
        int64_t due = 0;
        X509_CRL *crl;
        pid_t pid;
        int n;

        (void)state;
        memset(&r1, 0, sizeof(r1));
        memset(&r2, 0, sizeof(r2));
        memset(&r3, 0, sizeof(r3));
        assert_int_equal(test_ca_make(&t, "enginecrl"), 0);
        /* Certificates issued in-process, one revoked; then the engine takes the keys. */
        assert_non_null(c = gmca_ctx_open(t.dir, "unit", &e));
        gmca_error_clear(&e);
        expect(gmca_ctx_activate(c, t.cust, 3, &e), &e, 0, NULL, "activate in-process");
        ca_issue(c, "甲 一", s1);
        ca_issue(c, "乙 二", s2);
        ca_issue(c, "丙 三", s3);
        gmca_error_clear(&e);
        expect(gmca_ca_revoke(c, s1, 1, 0, &e), &e, 0, NULL, "revoke s1");
        gmca_ctx_close(c);
        pid = ca_engine(&t);

        assert_non_null(c = gmca_ctx_open(t.dir, "op:测试员", &e));
        gmca_error_clear(&e);
        expect(gmca_ctx_use_engine(c, &e), &e, 0, NULL, "use the engine");
        gmca_error_clear(&e);
        expect(gmca_ctx_engine_path(c, sock, sizeof(sock), &e), &e, 0, NULL, "socket path");
        assert_non_null(k = gmca_engine_connect(sock, &e));
        gmca_error_clear(&e);
        expect(gmca_ca_crl_generate(c, NULL, 0, &r1, &e), &e, 0, NULL, "CRL through the engine");
        assert_int_equal(r1.number, 1);
        assert_int_equal(r1.entries, 1);
        assert_int_equal(r1.next_update - r1.this_update, 24 * 3600); /* crl_hours */
        crl = crl_checked(c, &r1);
        assert_true(crl_lists(crl, s1));
        assert_false(crl_lists(crl, s2));
        assert_int_equal(
            audit_count(c, GMCA_EV_CRL_GENERATE, "engine", "\"requested_by\":\"op:测试员\""), 1);
        assert_int_equal(audit_count(c, GMCA_EV_CRL_GENERATE, "op:测试员", ""), 0);

        /* The engine signs no CRL body, not even its own. */
        assert_true((n = i2d_re_X509_CRL_tbs(crl, &tbs)) > 0);
        gmca_error_clear(&e);
        expect(gmca_engine_sign(k, "sub", tbs, (size_t)n, sig, &siglen, &e), &e, GMCA_ERR_POLICY,
               "CRLs are made by the engine: op C", "S: the CRL's own TBS");
        OPENSSL_free(tbs);
        X509_CRL_free(crl);

        /* A later revocation is on the next CRL, whose number is the next. */
        gmca_error_clear(&e);
        expect(gmca_ca_revoke(c, s2, 4, 0, &e), &e, 0, NULL, "revoke s2 (no key needed)");
        gmca_error_clear(&e);
        expect(gmca_ca_crl_generate(c, "sub", 6, &r2, &e), &e, 0, NULL, "second CRL, 6 hours");
        assert_int_equal(r2.number, 2);
        assert_int_equal(r2.entries, 2);
        assert_int_equal(r2.next_update - r2.this_update, 6 * 3600);
        assert_true(r2.this_update > r1.this_update); /* paced: one a second */
        crl = crl_checked(c, &r2);
        assert_true(crl_lists(crl, s1) && crl_lists(crl, s2) && !crl_lists(crl, s3));
        X509_CRL_free(crl);
        gmca_error_clear(&e);
        expect(gmca_ca_crl_generate(c, "nosuch", 0, NULL, &e), &e, GMCA_ERR_NOTFOUND, NULL,
               "unknown CA");
        gmca_error_clear(&e);
        expect(gmca_ca_crl_generate_delta(c, NULL, NULL, &e), &e, GMCA_ERR_STATE, "not configured",
               "delta CRLs not configured: the engine says so");

        /* A hostile pass: the longest interval is cut to crl_hours (24 h, plus a quarter). */
        q.kind = GMCA_ENGINE_CRL_PASS;
        q.force = 1;
        q.arg = 0xffffffffu;
        gmca_strlcpy(q.actor, "hostile", sizeof(q.actor));
        gmca_error_clear(&e);
        expect(gmca_engine_crl(k, GMCA_ENGINE_CRL_ALL, &q, &res[0], &e), &e, 0, NULL,
               "forced pass with a huge interval");
        assert_int_equal(res[0].made, 2); /* root and sub */
        {
                struct gmca_ca_rec sub;

                memset(&sub, 0, sizeof(sub));
                gmca_error_clear(&e);
                expect(gmca_store_ca_get(gmca_ctx_store(c), "sub", &sub, &e), &e, 0, NULL, "sub");
                gmca_error_clear(&e);
                expect(gmca_store_crl_latest(gmca_ctx_store(c), sub.id, &r3, &e), &e, 0, NULL,
                       "latest");
                assert_int_equal(r3.number, 3);
                assert_int_equal(r3.next_update - r3.this_update, 24 * 3600 + 6 * 3600);
                assert_true(res[0].next_due <= r3.this_update + 24 * 3600);
                gmca_ca_rec_clear(&sub);
        }
        /* Through the library: the same pass, nothing due now. */
        gmca_error_clear(&e);
        expect(gmca_ca_crl_refresh(c, 0, 0, &due, &made, &e), &e, 0, NULL, "a pass, nothing due");
        assert_int_equal(made, 0);
        assert_true(due > (int64_t)time(NULL));
        gmca_error_clear(&e);
        expect(gmca_ca_crl_refresh(c, GMCA_CRL_INTERVAL_MAX + 1, 0, &due, &made, &e), &e,
               GMCA_ERR_INVALID, NULL, "interval over the CPS cap");

        /* Rapid repeats: each its own second, numbers in order. */
        q.kind = GMCA_ENGINE_CRL_FULL;
        q.force = 0;
        q.arg = 0;
        for (int i = 0; i < 3; i++) {
                gmca_error_clear(&e);
                expect(gmca_engine_crl(k, "sub", &q, &res[i], &e), &e, 0, NULL, "rapid CRL");
        }
        for (int i = 1; i < 3; i++) {
                assert_int_equal(res[i].number, res[i - 1].number + 1);
                assert_true(res[i].this_update > res[i - 1].this_update);
        }
        assert_int_equal(res[0].number, 4);
        assert_int_equal(res[2].next_update - res[2].this_update, 24 * 3600);
        /* The bounds travel: over the CPS cap refused before it leaves. */
        q.arg = 745;
        gmca_error_clear(&e);
        expect(gmca_engine_crl(k, "sub", &q, &res[0], &e), &e, GMCA_ERR_INVALID, "0..744",
               "745 hours");

        gmca_engine_disconnect(k);
        gmca_error_clear(&e);
        expect(gmca_ctx_deactivate_engine(c, &e), &e, 0, NULL, "deactivate");
        assert_int_equal(wait_engine(pid), 0);
        gmca_ctx_close(c);
        gmca_crl_rec_clear(&r1);
        gmca_crl_rec_clear(&r2);
        gmca_crl_rec_clear(&r3);
        test_ca_remove(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_request),
            cmocka_unit_test(test_check_tbs),
            cmocka_unit_test(test_list),
            cmocka_unit_test(test_sign_cert),
            cmocka_unit_test(test_crl_tbs_refused),
            cmocka_unit_test(test_refusals),
            cmocka_unit_test(test_frames),
            cmocka_unit_test(test_interleave),
            cmocka_unit_test(test_many_clients),
            cmocka_unit_test(test_lifecycle),
            cmocka_unit_test(test_stale_socket),
            cmocka_unit_test(test_run_dir),
            cmocka_unit_test(test_parse_ra),
            cmocka_unit_test(test_parse_request_tr),
            cmocka_unit_test(test_authorisation),
            cmocka_unit_test(test_ra_requests),
            cmocka_unit_test(test_seal),
            cmocka_unit_test(test_parse_crl),
            cmocka_unit_test(test_crl_by_engine),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
