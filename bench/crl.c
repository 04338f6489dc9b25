/*
 * Benchmark of CRL generation at provincial scale (issue 5, item 6): a CA
 * whose store holds N revoked certificates, and the time and peak memory of
 * gmca_ca_crl_generate — read the revoked entries, build and sign the CRL,
 * store it and publish it, as `gmca crl generate` does.
 *
 *   bench_crl prepare CADIR N INDEX  make a CA in CADIR with N revoked
 *                                    certificates in its store, and the
 *                                    same entries as an `openssl ca` INDEX
 *   bench_crl generate CADIR         time one CRL of that CA (one process,
 *                                    so that its peak RSS is the CRL's)
 *
 * The stored certificates are not real ones: the rows are inserted
 * directly through the store API, 50,000 a transaction, with unique 16-byte
 * serials and a placeholder DER, since only the serial, revocation time,
 * reason and invalidity date go into a CRL. A quarter of the entries are
 * keyCompromise with an invalidityDate, a quarter unspecified (no
 * reasonCode), the rest superseded or cessationOfOperation.
 *
 * Figures are printed as "key: value" lines for bench/crl.sh. Not a test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "store.h"
#include "util.h"

#define BATCH 50000

static const char *const bench_names[5] = {"bench-a", "bench-b", "bench-c", "bench-d", "bench-e"};
static const char *const bench_pins[5] = {"Kq1pinWx7A", "Kq2pinWx7A", "Kq3pinWx7A", "Kq4pinWx7A",
                                          "Kq5pinWx7A"};

/* The five custodians of the bench CA; shares under <cadir>.shares/. */
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

static double maxrss_mib(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* openssl ca's index time: YYMMDDHHMMSSZ (UTCTime, entries before 2050). */
static void utc_time(char out[16], time_t t)
{
        struct tm tm;
        char full[20];

        gmtime_r(&t, &tm);
        strftime(full, sizeof(full), "%Y%m%d%H%M%SZ", &tm);
        memcpy(out, full + 2, 14); /* the century dropped */
}

/* ... and the compromise time argument: YYYYMMDDHHMMSSZ. */
static void gen_time(char out[16], time_t t)
{
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, 16, "%Y%m%d%H%M%SZ", &tm);
}

static const int reasons[4] = {CRL_REASON_UNSPECIFIED, CRL_REASON_KEY_COMPROMISE,
                               CRL_REASON_SUPERSEDED, CRL_REASON_CESSATION_OF_OPERATION};
static const char *const reason_names[4] = {"unspecified", "keyCompromise", "superseded",
                                            "cessationOfOperation"};

static int prepare(const char *cadir, long n, const char *index)
{
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        struct gmca_custodian cust[5];
        struct gmca_ca_rec ca;
        struct gmca_cert_rec r;
        struct gmca_store *s;
        struct gmca_ctx *c;
        char paths[5][4200], exp[16], rev[16], inv[16];
        static const uint8_t der[2] = {0x30, 0x00};
        time_t now = time(NULL);
        double t0 = now_s();
        FILE *f;

        bench_custodians(cadir, paths, cust);
        p.root_dn = "C=CN, O=基准测试, CN=基准测试根 CA";
        p.sub_dn = "C=CN, O=基准测试, CN=基准测试运营 CA";
        p.profiles_src = getenv("GMCA_PROFILES");
        p.actor = "bench";
        p.custodians = cust;
        p.ncustodians = 5;
        if (gmca_ca_init(cadir, &p, &e) != 0)
                die("init", &e);
        if ((c = gmca_ctx_open(cadir, "bench", &e)) == NULL)
                die("open CA", &e);
        s = gmca_ctx_store(c);
        memset(&ca, 0, sizeof(ca));
        if (gmca_store_ca_get(s, "sub", &ca, &e) != 0)
                die("CA sub", &e);
        if ((f = fopen(index, "w")) == NULL)
                die(index, NULL);
        memset(&r, 0, sizeof(r));
        r.ca_id = ca.id;
        snprintf(r.subject, sizeof(r.subject), "CN=x");
        snprintf(r.profile, sizeof(r.profile), "personal-sign");
        memset(r.fingerprint, '0', 64);
        r.status = GMCA_CERT_REVOKED;
        r.der = (uint8_t *)der;
        r.der_len = sizeof(der);
        utc_time(exp, now + 365 * 86400);
        for (long i = 0; i < n; i++) {
                int k = (int)(i % 4);

                if (i % BATCH == 0 && gmca_store_begin(s, &e) != 0)
                        die("begin", &e);
                /* Unique: the low half is i; the high half scatters the values. */
                snprintf(r.serial, sizeof(r.serial), "%016llX%016llX",
                         (unsigned long long)((0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)) >> 2 |
                                              0x1000000000000000ull),
                         (unsigned long long)i);
                r.not_before = now - 86400;
                r.not_after = now + 365 * 86400;
                r.issued_at = r.not_before;
                r.revoked_at = now - n + i;
                r.reason = reasons[k];
                r.invalidity_date = k == 1 ? r.revoked_at - 86400 : 0;
                if (gmca_store_cert_insert(s, &r, &e) != 0)
                        die("insert", &e);
                utc_time(rev, (time_t)r.revoked_at);
                if (k == 1) {
                        gen_time(inv, (time_t)r.invalidity_date);
                        fprintf(f, "R\t%s\t%s,%s,%s\t%s\tunknown\t/CN=x\n", exp, rev,
                                reason_names[k], inv, r.serial);
                } else {
                        fprintf(f, "R\t%s\t%s,%s\t%s\tunknown\t/CN=x\n", exp, rev, reason_names[k],
                                r.serial);
                }
                if ((i + 1) % BATCH == 0 || i + 1 == n)
                        if (gmca_store_commit(s, &e) != 0)
                                die("commit", &e);
        }
        if (fclose(f) != 0)
                die(index, NULL);
        gmca_ca_rec_clear(&ca);
        gmca_ctx_close(c);
        printf("prepared: %ld revoked certificates in %.1f s\n", n, now_s() - t0);
        return 0;
}

static int generate(const char *cadir)
{
        struct gmca_error e = {0};
        struct gmca_custodian cust[5];
        struct stat st;
        struct gmca_ctx *c;
        char paths[5][4200], path[4200];
        double t0, t, base;

        bench_custodians(cadir, paths, cust);
        if ((c = gmca_ctx_open(cadir, "bench", &e)) == NULL ||
            gmca_ctx_activate(c, cust, 3, &e) != 0)
                die("open CA", &e);
        gmca_ctx_forget_secrets(c);
        base = maxrss_mib();
        t0 = now_s();
        if (gmca_ca_crl_generate(c, "sub", 24, NULL, &e) != 0)
                die("crl generate", &e);
        t = now_s() - t0;
        printf("gmca_seconds: %.3f\n", t);
        printf("gmca_peak_mib: %.1f\n", maxrss_mib());
        printf("gmca_base_mib: %.1f\n", base);
        /* The published file (out = NULL above: a copy would count in the peak). */
        snprintf(path, sizeof(path), "%s/crl/sub.crl", cadir);
        if (stat(path, &st) != 0)
                die(path, NULL);
        printf("crl_bytes: %lld\n", (long long)st.st_size);
        gmca_ctx_close(c);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 5 && strcmp(argv[1], "prepare") == 0) {
                char *end = NULL;
                long n = strtol(argv[3], &end, 10);

                if (end == argv[3] || *end != '\0' || n < 1 || n > 10000000) {
                        fprintf(stderr, "bench_crl: N must be 1..10000000\n");
                        return 2;
                }
                return prepare(argv[2], n, argv[4]);
        }
        if (argc == 3 && strcmp(argv[1], "generate") == 0)
                return generate(argv[2]);
        fprintf(stderr, "usage: bench_crl prepare CADIR N INDEX | generate CADIR\n");
        return 2;
}
