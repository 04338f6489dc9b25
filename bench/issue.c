/*
 * Benchmark of certificate issuance through the library, as in production:
 * for each certificate the CSR is parsed and its SM2 proof of possession
 * checked, the profile applied, the certificate signed, and the certificate
 * plus its audit record committed to the store in one transaction.
 *
 *   bench_issue prepare DIR N      make N SM2 keys + CSRs (DER) in DIR/csr/
 *   bench_issue ceiling DIR N [P]  one SM2 verify + one SM2 sign per item, one core
 *                                  (or P processes at once)
 *   bench_issue issue DIR N P CADIR [B]  issue N certificates with P processes
 *                                  into a new CA created in CADIR, B requests
 *                                  a transaction (group commit; default 1)
 *
 * Figures are printed as "<what>: <count> in <seconds> s = <rate>/s" so that
 * bench/issue.sh can put them side by side with `openssl ca` measured in the
 * same run. Not a test: nothing here asserts a speed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <openssl/x509v3.h>

#include "ca.h"
#include "crypto.h"
#include "util.h"

static const char *const bench_names[5] = {"bench-a", "bench-b", "bench-c", "bench-d", "bench-e"};
static const char *const bench_pins[5] = {"Kq1pinWx7A", "Kq2pinWx7A", "Kq3pinWx7A", "Kq4pinWx7A",
                                          "Kq5pinWx7A"};

/* The five custodians of a bench CA; shares under <cadir>.shares/. */
static void bench_custodians(const char *cadir, char paths[5][4200], struct gmca_custodian *cust)
{
        char d[4100];

        snprintf(d, sizeof(d), "%s.shares", cadir);
        mkdir(d, 0700);
        for (int i = 0; i < 5; i++) {
                snprintf(paths[i], 4200, "%s/share-%d.json", d, i + 1);
                cust[i] = (struct gmca_custodian){bench_names[i], bench_pins[i],
                                                  strlen(bench_pins[i]), paths[i]};
        }
}
#define INFO "{\"identity_card_number\": \"11010519491231002X\"}"

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct gmca_error *e)
{
        fprintf(stderr, "bench: %s: %s\n", what, e != NULL ? e->msg : strerror(errno));
        exit(1);
}

static void csr_path(char *buf, size_t len, const char *dir, int i, const char *ext)
{
        snprintf(buf, len, "%s/csr/%06d.%s", dir, i, ext);
}

static int prepare(const char *dir, int n)
{
        char path[4096];
        struct gmca_error e = {0};

        snprintf(path, sizeof(path), "%s/csr", dir);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
                die(path, NULL);
        for (int i = 0; i < n; i++) {
                EVP_PKEY *key = gmca_sm2_keygen(&e);
                X509_REQ *req = X509_REQ_new();
                X509_NAME *name = X509_NAME_new();
                EVP_MD_CTX *mctx;
                char cn[64];
                FILE *f;

                if (key == NULL || req == NULL || name == NULL)
                        die("keygen", &e);
                snprintf(cn, sizeof(cn), "测试用户 %06d", i);
                X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1,
                                           -1, 0);
                X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                           (const unsigned char *)"基准测试单位", -1, -1, 0);
                X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                           -1, 0);
                X509_REQ_set_subject_name(req, name);
                X509_REQ_set_pubkey(req, key);
                if ((mctx = gmca_sm2_sign_ctx(key, NULL, &e)) == NULL ||
                    X509_REQ_sign_ctx(req, mctx) <= 0)
                        die("CSR signing", &e);
                csr_path(path, sizeof(path), dir, i, "der");
                if ((f = fopen(path, "wb")) == NULL || i2d_X509_REQ_fp(f, req) != 1 ||
                    fclose(f) != 0)
                        die(path, NULL);
                csr_path(path, sizeof(path), dir, i, "pem");
                if ((f = fopen(path, "w")) == NULL || PEM_write_X509_REQ(f, req) != 1 ||
                    fclose(f) != 0)
                        die(path, NULL);
                EVP_MD_CTX_free(mctx);
                X509_NAME_free(name);
                X509_REQ_free(req);
                EVP_PKEY_free(key);
        }
        printf("prepared %d CSRs in %s/csr\n", n, dir);
        return 0;
}

struct blob {
        uint8_t *p;
        size_t n;
};

static struct blob *load_csrs(const char *dir, int from, int n)
{
        struct blob *b = calloc((size_t)n, sizeof(*b));
        struct gmca_error e = {0};
        char path[4096];

        if (b == NULL)
                die("calloc", NULL);
        for (int i = 0; i < n; i++) {
                csr_path(path, sizeof(path), dir, from + i, "der");
                if (gmca_read_file(path, GMCA_CSR_MAX, &b[i].p, &b[i].n, &e) != 0)
                        die(path, &e);
        }
        return b;
}

static void free_csrs(struct blob *b, int n)
{
        for (int i = 0; i < n; i++)
                free(b[i].p);
        free(b);
}

/* One SM2 verify (a CSR's signature over its TBS) and one SM2 sign per item. */
static int ceiling(const char *dir, int n)
{
        struct blob *b = load_csrs(dir, 0, n);
        struct gmca_error e = {0};
        EVP_PKEY *ca = gmca_sm2_keygen(&e);
        double t0, t;

        if (ca == NULL)
                die("keygen", &e);
        t0 = now_s();
        for (int i = 0; i < n; i++) {
                const uint8_t *p = b[i].p;
                X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)b[i].n);
                const ASN1_BIT_STRING *sig;
                unsigned char *tbs = NULL;
                uint8_t *out = NULL;
                size_t outlen;
                int tbslen;

                if (req == NULL)
                        die("d2i", NULL);
                X509_REQ_get0_signature(req, &sig, NULL);
                tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
                if (gmca_sm2_verify(X509_REQ_get0_pubkey(req), NULL, tbs, (size_t)tbslen,
                                    ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig),
                                    &e) != 0)
                        die("verify", &e);
                /* A certificate TBS is about twice a CSR's: sign that much. */
                if (gmca_sm2_sign(ca, NULL, b[(i + 1) % n].p, b[(i + 1) % n].n, &out, &outlen,
                                  &e) != 0)
                        die("sign", &e);
                OPENSSL_free(out);
                OPENSSL_free(tbs);
                X509_REQ_free(req);
        }
        t = now_s() - t0;
        printf("crypto ceiling (1 verify + 1 sign, one core): %d in %.3f s = %.0f/s\n", n, t,
               n / t);
        EVP_PKEY_free(ca);
        free_csrs(b, n);
        return 0;
}

/*
 * Open the CA and activate its key (once, as a daemon does at start), tell
 * the parent through `ready`, wait until `go` closes, then issue n
 * certificates. Only the issuing is timed.
 */
static void issue_range(const char *dir, const char *cadir, int from, int n, int batch, int ready,
                        int go)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        struct blob *b = load_csrs(dir, from, n);
        char serial[GMCA_SERIAL_HEX_MAX], byte = 1, paths[5][4200];
        struct gmca_custodian cust[5];

        bench_custodians(cadir, paths, cust);
        if ((c = gmca_ctx_open(cadir, "bench", &e)) == NULL ||
            gmca_ctx_activate(c, cust, 3, &e) != 0)
                die("open CA", &e);
        gmca_ctx_forget_secrets(c);
        if (write(ready, &byte, 1) != 1 || read(go, &byte, 1) != 0)
                die("barrier", NULL);
        for (int i = 0; i < n && batch == 1; i++) {
                struct gmca_issue_req r = {.profile = "personal-sign",
                                           .csr = b[i].p,
                                           .csr_len = b[i].n,
                                           .info_json = INFO,
                                           .info_len = strlen(INFO)};

                if (gmca_ca_issue(c, &r, serial, NULL, &e) != 0)
                        die("issue", &e);
        }
        for (int i = 0; i < n && batch > 1; i += batch) {
                struct gmca_issue_req r[GMCA_ISSUE_BATCH_MAX];
                struct gmca_issue_result res[GMCA_ISSUE_BATCH_MAX];
                int k = n - i < batch ? n - i : batch;

                for (int j = 0; j < k; j++)
                        r[j] = (struct gmca_issue_req){.profile = "personal-sign",
                                                       .csr = b[i + j].p,
                                                       .csr_len = b[i + j].n,
                                                       .info_json = INFO,
                                                       .info_len = strlen(INFO)};
                if (gmca_ca_issue_batch(c, r, (size_t)k, res, &e) != 0)
                        die("issue batch", &e);
                for (int j = 0; j < k; j++) {
                        if (res[j].rc != 0)
                                die("issue", &res[j].err);
                        X509_free(res[j].cert);
                }
        }
        gmca_ctx_close(c);
        free_csrs(b, n);
}

static int issue(const char *dir, int n, int procs, const char *cadir, int batch)
{
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        int ready[2], go[2], failed = 0, per;
        double t0, t;
        char byte;

        p.root_dn = "C=CN, O=基准测试, CN=基准测试根 CA";
        p.sub_dn = "C=CN, O=基准测试, CN=基准测试运营 CA";
        p.profiles_src = getenv("GMCA_PROFILES");
        p.actor = "bench";
        if (procs < 1 || procs > 64)
                procs = 1;
        if (batch < 1 || batch > GMCA_ISSUE_BATCH_MAX)
                batch = 1;
        per = n / procs;
        char paths[5][4200];
        struct gmca_custodian cust[5];

        bench_custodians(cadir, paths, cust);
        p.custodians = cust;
        p.ncustodians = 5;
        if (gmca_ca_init(cadir, &p, &e) != 0)
                die("init", &e);
        if (pipe(ready) != 0 || pipe(go) != 0)
                die("pipe", NULL);
        for (int k = 0; k < procs; k++) {
                pid_t pid = fork();

                if (pid == 0) {
                        close(go[1]);
                        close(ready[0]);
                        issue_range(dir, cadir, k * per, per, batch, ready[1], go[0]);
                        _exit(0);
                }
                if (pid < 0)
                        die("fork", NULL);
        }
        close(go[0]);
        close(ready[1]);
        for (int k = 0; k < procs; k++)
                if (read(ready[0], &byte, 1) != 1)
                        die("a worker did not start", NULL);
        t0 = now_s();
        close(go[1]); /* start */
        for (int k = 0; k < procs; k++) {
                int st;

                if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        failed = 1;
        }
        t = now_s() - t0;
        close(ready[0]);
        if (failed) {
                fprintf(stderr, "bench: a worker failed\n");
                return 1;
        }
        n = per * procs;
        printf("gmca library issuance (%d process%s, %s): %d in %.3f s = %.0f/s\n", procs,
               procs == 1 ? "" : "es",
               batch > 1 ? "group commit" : "one transaction per certificate", n, t, n / t);
        return 0;
}

/*
 * The crypto ceiling on P cores: P processes each run the ceiling loop over
 * N/P items at once; tells how far this machine itself scales.
 */
static int ceiling_procs(const char *dir, int n, int procs)
{
        double t0 = now_s(), t;
        int failed = 0;

        for (int k = 0; k < procs; k++) {
                pid_t pid = fork();

                if (pid == 0) {
                        if (freopen("/dev/null", "w", stdout) == NULL)
                                _exit(1);
                        _exit(ceiling(dir, n / procs));
                }
                if (pid < 0)
                        die("fork", NULL);
        }
        for (int k = 0; k < procs; k++) {
                int st;

                if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        failed = 1;
        }
        t = now_s() - t0;
        if (failed)
                return 1;
        n = (n / procs) * procs;
        printf("crypto ceiling (%d processes): %d in %.3f s = %.0f/s\n", procs, n, t, n / t);
        return 0;
}

/*
 * The issuing work without the store: strict CSR intake, subject info,
 * profile check, certificate building and signing, DER and fingerprint.
 * Tells how much of the gap to the ceiling the store takes.
 */
static int nostore(const char *dir, int n)
{
        struct blob *b = load_csrs(dir, 0, n);
        struct gmca_error e = {0};
        EVP_PKEY *cakey = gmca_sm2_keygen(&e);
        X509 *ca = X509_new();
        X509_NAME *name = X509_NAME_new();
        struct gmca_cert_template t;
        struct gmca_profile *prof;
        char path[4096];
        double t0, el;

        snprintf(path, sizeof(path), "%s", getenv("GMCA_PROFILES"));
        if ((prof = gmca_profile_find(path, "personal-sign", &e)) == NULL)
                die("profile", &e);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"CA", -1, -1,
                                   0);
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = cakey;
        t.issuer_key = cakey;
        t.ca = 1;
        t.path_len = -1;
        t.key_usage = X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN;
        t.not_before = time(NULL);
        t.not_after = t.not_before + 86400 * 3650;
        t.serial[0] = 1;
        if ((ca = gmca_cert_build(&t, &e)) == NULL)
                die("ca", &e);
        t0 = now_s();
        for (int i = 0; i < n; i++) {
                X509_REQ *req = gmca_csr_parse(b[i].p, b[i].n, NULL, &e);
                struct gmca_subject_info *si = gmca_subject_info_parse(INFO, strlen(INFO), &e);
                struct gmca_cert_template u;
                X509 *x;
                unsigned char *der = NULL;
                char fp[65];

                if (req == NULL || si == NULL ||
                    gmca_profile_check(prof, X509_REQ_get_subject_name(req), si, 0, &e) != 0)
                        die("check", &e);
                memset(&u, 0, sizeof(u));
                u.subject = X509_REQ_get_subject_name(req);
                u.pubkey = X509_REQ_get0_pubkey(req);
                u.issuer = ca;
                u.issuer_key = cakey;
                u.path_len = -1;
                u.key_usage = prof->key_usage;
                u.info = si;
                u.skip_self_check = 1;
                u.not_before = time(NULL);
                u.not_after = u.not_before + 86400 * 365;
                if (gmca_serial_random(u.serial, &e) != 0 ||
                    (x = gmca_cert_build(&u, &e)) == NULL || i2d_X509(x, &der) <= 0 ||
                    gmca_cert_fingerprint(x, fp, &e) != 0)
                        die("build", &e);
                OPENSSL_free(der);
                X509_free(x);
                gmca_subject_info_free(si);
                X509_REQ_free(req);
        }
        el = now_s() - t0;
        printf("issuing work without the store (one core): %d in %.3f s = %.0f/s\n", n, el, n / el);
        gmca_profile_free(prof);
        X509_free(ca);
        X509_NAME_free(name);
        EVP_PKEY_free(cakey);
        free_csrs(b, n);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 4 && strcmp(argv[1], "prepare") == 0)
                return prepare(argv[2], (int)strtol(argv[3], NULL, 10));
        if (argc >= 4 && strcmp(argv[1], "nostore") == 0)
                return nostore(argv[2], (int)strtol(argv[3], NULL, 10));
        if (argc >= 5 && strcmp(argv[1], "ceiling") == 0)
                return ceiling_procs(argv[2], (int)strtol(argv[3], NULL, 10),
                                     (int)strtol(argv[4], NULL, 10));
        if (argc >= 4 && strcmp(argv[1], "ceiling") == 0)
                return ceiling(argv[2], (int)strtol(argv[3], NULL, 10));
        if (argc >= 6 && strcmp(argv[1], "issue") == 0)
                return issue(argv[2], (int)strtol(argv[3], NULL, 10),
                             (int)strtol(argv[4], NULL, 10), argv[5],
                             argc >= 7 ? (int)strtol(argv[6], NULL, 10) : 1);
        fprintf(stderr,
                "usage: bench_issue prepare|ceiling DIR N | issue DIR N PROCS CADIR [BATCH]\n");
        return 2;
}
