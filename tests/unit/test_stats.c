/*
 * Unit tests of stats.c: a store with known certificates, applications and
 * revocation requests at known times (UTC+8 days, a weekend in between),
 * and every figure of the report checked by business type, profile,
 * region, month and day — the even-count median, the nearest-rank p90,
 * working days over a weekend, the 24-hour revocation limit, the dual
 * pair's encryption certificate taking its signature certificate's type,
 * the bounds of the period — then an empty period, bad periods and
 * groupings, the CSV's quoting, and who may read the statistics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "stats.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

#define DAY 86400
/* 2026-03-02T00:00:00+08:00, a Monday. */
#define T0 ((int64_t)1772380800)
#define FROM "2026-03-02"
#define TO "2026-05-01" /* 60 days later */

static const uint8_t fake_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};

struct fx {
        char dir[64];
        char path[128];
        struct gmca_store *s;
        int64_t ca, applicant;
};

static void must(int rc, const struct gmca_error *e)
{
        if (rc != 0)
                fail_msg("rc %d: %s", rc, e->msg);
}

static void add_cert(struct fx *f, const char *serial, const char *subject, const char *profile,
                     int64_t issued_at)
{
        struct gmca_error e = {0};
        struct gmca_cert_rec r;

        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.serial, serial, sizeof(r.serial));
        r.ca_id = f->ca;
        gmca_strlcpy(r.subject, subject, sizeof(r.subject));
        gmca_strlcpy(r.profile, profile, sizeof(r.profile));
        r.not_before = issued_at;
        r.not_after = issued_at + 365 * DAY;
        r.issued_at = issued_at;
        r.reason = -1;
        gmca_strlcpy(r.fingerprint, "ab12", sizeof(r.fingerprint));
        r.der = (uint8_t *)fake_der;
        r.der_len = sizeof(fake_der);
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
}

static const char SQL_APPLICANT[] = "INSERT INTO applicants (kind, name, created_by, created_at,"
                                    " updated_at) VALUES ('individual', '张三', 't', 1, 1)"
                                    " RETURNING id";
static const char SQL_APP[] =
    "INSERT INTO applications (applicant_id, type, state, ca, profile, days, csr, submitted_by,"
    " submitted_at, submit_auth, issued_serial, issued_at) VALUES (?, ?, ?, 'sub', ?, 365, ?,"
    " 'opA', ?, ?, ?, ?)";
static const char SQL_REVREQ[] =
    "INSERT INTO revocation_requests (serial, reason, reason_code, requester, state,"
    " requested_by, requested_at, deadline, request_auth, completed_at) VALUES (?, 'A', 1,"
    " 'subscriber', ?, 'opA', ?, ?, ?, ?)";
static const char SQL_DUAL[] = "INSERT INTO dual_keys (enc_serial, sig_serial, envelope, created)"
                               " VALUES (?, ?, ?, 1)";

static void exec_q(struct gmca_q *q, struct gmca_error *e)
{
        int rc = gmca_q_step(q, e, "test insert");

        gmca_q_close(q);
        if (rc < 0)
                fail_msg("insert: %s", e->msg);
}

/* An application of type, submitted at sub; issued as serial at iss (serial NULL: pending). */
static void add_app(struct fx *f, const char *type, const char *profile, int64_t sub,
                    const char *serial, int64_t iss)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        must(gmca_q_open(f->s, SQL_APP, &q, &e), &e);
        gmca_q_int(&q, f->applicant);
        gmca_q_text(&q, type);
        gmca_q_text(&q, serial != NULL ? "issued" : "submitted");
        gmca_q_text(&q, profile);
        gmca_q_blob(&q, fake_der, sizeof(fake_der));
        gmca_q_int(&q, sub);
        gmca_q_blob(&q, fake_der, sizeof(fake_der));
        gmca_q_text(&q, serial);
        if (serial != NULL)
                gmca_q_int(&q, iss);
        else
                gmca_q_text(&q, NULL);
        exec_q(&q, &e);
}

/* A revocation request of serial made at req, completed at done (0: pending). */
static void add_revreq(struct fx *f, const char *serial, int64_t req, int64_t done)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        must(gmca_q_open(f->s, SQL_REVREQ, &q, &e), &e);
        gmca_q_text(&q, serial);
        gmca_q_text(&q, done > 0 ? "completed" : "pending");
        gmca_q_int(&q, req);
        gmca_q_int(&q, req + DAY);
        gmca_q_blob(&q, fake_der, sizeof(fake_der));
        if (done > 0)
                gmca_q_int(&q, done);
        else
                gmca_q_text(&q, NULL);
        exec_q(&q, &e);
        if (done > 0)
                must(gmca_store_cert_revoke(f->s, serial, done, 1, 0, &e), &e);
}

static void add_dual(struct fx *f, const char *enc, const char *sig)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        must(gmca_q_open(f->s, SQL_DUAL, &q, &e), &e);
        gmca_q_text(&q, enc);
        gmca_q_text(&q, sig);
        gmca_q_blob(&q, fake_der, sizeof(fake_der));
        exec_q(&q, &e);
}

#define BJ "C=CN, ST=北京, CN=张三"
#define BJ_ORG "C=CN, ST=北京, O=某局\\, 办公室, CN=王五"
#define GD "C=CN, ST=广东, L=深圳, CN=李四"

/*
 * The facts (T0 is Monday 2026-03-02 00:00 UTC+8):
 *   01  new, personal-sign, 北京: submitted T0, issued T0+1h; revocation asked
 *       Monday 23:00, done Tuesday 00:00 (1 h)
 *   02  renew, personal-sign, 广东: submitted Friday 00:00, issued Saturday
 *       02:00 (26 h, one working day); revocation asked Sunday, done Tuesday
 *       (48 h: over 24; one working day)
 *   03  new, org-sign, 北京 (an escaped comma in O): submitted Wed 1 April,
 *       issued a day later (one working day)
 *   04  the encryption certificate of 03 (org-enc): type new through its pair
 *   05  operator, no ST, issued by the command line at T0+10 s
 *   06, 07  just outside the period (T0-1 s, and the period's end)
 *   08  an application submitted but not issued; 05 a pending revocation
 */
static int setup(void **state)
{
        struct gmca_error e = {0};
        struct fx *f = calloc(1, sizeof(*f));
        struct gmca_ca_rec ca;
        struct gmca_q q;

        assert_non_null(f);
        gmca_strlcpy(f->dir, "/tmp/gmca-stats-XXXXXX", sizeof(f->dir));
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/gmca.db", f->dir);
        if ((f->s = gmca_store_open(f->path, &e)) == NULL)
                fail_msg("open: %s", e.msg);
        memset(&ca, 0, sizeof(ca));
        gmca_strlcpy(ca.name, "sub", sizeof(ca.name));
        gmca_strlcpy(ca.subject, "CN=sub", sizeof(ca.subject));
        gmca_strlcpy(ca.key_file, "keys/sub.key", sizeof(ca.key_file));
        gmca_strlcpy(ca.sm2_id, "1234567812345678", sizeof(ca.sm2_id));
        ca.cert_der = (uint8_t *)fake_der;
        ca.cert_len = sizeof(fake_der);
        must(gmca_store_ca_insert(f->s, &ca, &e), &e);
        f->ca = ca.id;
        must(gmca_q_open(f->s, SQL_APPLICANT, &q, &e), &e);
        assert_int_equal(gmca_q_step(&q, &e, "applicant"), GMCA_DB_ROW);
        f->applicant = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);

        add_cert(f, "01", BJ, "personal-sign", T0 + 3600);
        add_app(f, "new", "personal-sign", T0, "01", T0 + 3600);
        add_revreq(f, "01", T0 + DAY - 3600, T0 + DAY);
        add_cert(f, "02", GD, "personal-sign", T0 + 5 * DAY + 7200);
        add_app(f, "renew", "personal-sign", T0 + 4 * DAY, "02", T0 + 5 * DAY + 7200);
        add_revreq(f, "02", T0 + 6 * DAY, T0 + 8 * DAY);
        add_cert(f, "03", BJ_ORG, "org-sign", T0 + 31 * DAY);
        add_cert(f, "04", BJ_ORG, "org-enc", T0 + 31 * DAY);
        add_dual(f, "04", "03");
        add_app(f, "new", "org-sign", T0 + 30 * DAY, "03", T0 + 31 * DAY);
        add_cert(f, "05", "C=CN, O=x, CN=op", "operator", T0 + 10);
        add_revreq(f, "05", T0 + 10 * DAY, 0);
        add_cert(f, "06", BJ, "personal-sign", T0 - 1);
        add_app(f, "change", "personal-sign", T0 - 2, "06", T0 - 1);
        add_cert(f, "07", GD, "personal-sign", T0 + 60 * DAY);
        add_app(f, "rekey", "personal-sign", T0 + 59 * DAY, "07", T0 + 60 * DAY);
        add_app(f, "reissue", "personal-sign", T0 + 2 * DAY, NULL, 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char cmd[128];

        gmca_store_close(f->s);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", f->dir);
        free(f);
        return 0;
}

static struct gmca_stats *report(struct fx *f, enum gmca_stats_by by)
{
        struct gmca_error e = {0};
        struct gmca_stats *st = NULL;
        int64_t from, to;

        must(gmca_stats_period(FROM, TO, 0, &from, &to, &e), &e);
        assert_int_equal(from, T0);
        assert_int_equal(to, T0 + 60 * DAY);
        must(gmca_stats_compute(f->s, from, to, by, &st, &e), &e);
        assert_non_null(st);
        return st;
}

static const struct gmca_stats_row *row(const struct gmca_stats *st, const char *key)
{
        for (size_t i = 0; i < st->nrows; i++)
                if (strcmp(st->rows[i].key, key) == 0)
                        return &st->rows[i];
        fail_msg("no row %s", key);
        return NULL;
}

#define NEAR(a, b) assert_true((a) > (b)-1e-9 && (a) < (b) + 1e-9)

/* count, mean, median, p90, max in seconds, then in working days. */
static void times_are(const struct gmca_stats_times *t, int64_t count, const double s[4],
                      const double wd[4])
{
        assert_int_equal(t->count, count);
        NEAR(t->mean_s, s[0]);
        NEAR(t->median_s, s[1]);
        NEAR(t->p90_s, s[2]);
        NEAR(t->max_s, s[3]);
        NEAR(t->mean_wd, wd[0]);
        NEAR(t->median_wd, wd[1]);
        NEAR(t->p90_wd, wd[2]);
        NEAR(t->max_wd, wd[3]);
}

static const double Z[4] = {0, 0, 0, 0};

static void test_by_type(void **state)
{
        struct gmca_stats *st = report(*state, GMCA_STATS_BY_TYPE);
        const struct gmca_stats_row *r;
        static const char *const order[] = {"new", "renew", "rekey", "reissue", "change", "cli"};

        assert_int_equal(st->nrows, 6);
        for (size_t i = 0; i < 6; i++)
                assert_string_equal(st->rows[i].key, order[i]);
        r = row(st, "new");
        assert_int_equal(r->issued, 3); /* 01, 03 and its encryption certificate 04 */
        assert_int_equal(r->by_type[0], 3);
        assert_int_equal(r->revoked, 1);
        /* Two applications: the even median is the mean of both; p90 the second. */
        times_are(&r->issue_time, 2, (const double[]){45000, 45000, 86400, 86400},
                  (const double[]){0.521, 0.521, 1, 1});
        times_are(&r->revoke_time, 1, (const double[]){3600, 3600, 3600, 3600},
                  (const double[]){0.042, 0.042, 0.042, 0.042});
        assert_int_equal(r->revoke_time.over_limit, 0);
        r = row(st, "renew");
        assert_int_equal(r->issued, 1);
        assert_int_equal(r->by_type[1], 1);
        assert_int_equal(r->revoked, 1);
        /* 26 hours over a Friday and a Saturday: one working day. */
        times_are(&r->issue_time, 1, (const double[]){93600, 93600, 93600, 93600},
                  (const double[]){1, 1, 1, 1});
        /* 48 hours from Sunday to Tuesday: over the 24 hours, one working day. */
        times_are(&r->revoke_time, 1, (const double[]){172800, 172800, 172800, 172800},
                  (const double[]){1, 1, 1, 1});
        assert_int_equal(r->revoke_time.over_limit, 1);
        r = row(st, "cli");
        assert_int_equal(r->issued, 1);
        assert_int_equal(r->by_type[GMCA_STATS_TYPE_CLI], 1);
        assert_int_equal(r->revoked, 0); /* 05's revocation is pending */
        times_are(&r->issue_time, 0, Z, Z);
        for (size_t i = 2; i <= 4; i++) { /* rekey, reissue, change: 06, 07 are outside the
                                              period, 08 is not issued */
                r = &st->rows[i];
                assert_int_equal(r->issued + r->revoked + r->issue_time.count, 0);
        }
        /* The total: odd count, median the middle one, p90 the third of three. */
        r = &st->total;
        assert_string_equal(r->key, "total");
        assert_int_equal(r->issued, 5);
        assert_int_equal(r->revoked, 2);
        times_are(&r->issue_time, 3, (const double[]){61200, 86400, 93600, 93600},
                  (const double[]){0.681, 1, 1, 1});
        times_are(&r->revoke_time, 2, (const double[]){88200, 88200, 172800, 172800},
                  (const double[]){0.521, 0.521, 1, 1});
        assert_int_equal(r->revoke_time.over_limit, 1);
        gmca_stats_free(st);
}

static void test_by_region_profile(void **state)
{
        struct gmca_stats *st = report(*state, GMCA_STATS_BY_REGION);
        const struct gmca_stats_row *r;

        /* Byte order: ASCII before the Chinese names. */
        assert_int_equal(st->nrows, 3);
        assert_string_equal(st->rows[0].key, "unknown");
        assert_string_equal(st->rows[1].key, "北京");
        assert_string_equal(st->rows[2].key, "广东");
        r = row(st, "北京");
        assert_int_equal(r->issued, 3);
        assert_int_equal(r->revoked, 1);
        times_are(&r->issue_time, 2, (const double[]){45000, 45000, 86400, 86400},
                  (const double[]){0.521, 0.521, 1, 1});
        r = row(st, "广东");
        assert_int_equal(r->issued, 1);
        assert_int_equal(r->by_type[1], 1);
        assert_int_equal(r->revoked, 1);
        assert_int_equal(r->revoke_time.over_limit, 1);
        assert_int_equal(row(st, "unknown")->by_type[GMCA_STATS_TYPE_CLI], 1);
        gmca_stats_free(st);

        st = report(*state, GMCA_STATS_BY_PROFILE);
        assert_int_equal(st->nrows, 4);
        assert_string_equal(st->rows[0].key, "operator");
        assert_string_equal(st->rows[1].key, "org-enc");
        assert_string_equal(st->rows[2].key, "org-sign");
        assert_string_equal(st->rows[3].key, "personal-sign");
        assert_int_equal(row(st, "personal-sign")->issued, 2);
        assert_int_equal(row(st, "personal-sign")->revoked, 2);
        assert_int_equal(row(st, "personal-sign")->issue_time.count, 2);
        assert_int_equal(row(st, "org-enc")->by_type[0], 1);
        assert_int_equal(row(st, "org-enc")->issue_time.count, 0);
        assert_int_equal(row(st, "org-sign")->issue_time.count, 1);
        gmca_stats_free(st);
}

static void test_by_period(void **state)
{
        struct gmca_stats *st = report(*state, GMCA_STATS_BY_MONTH);
        const struct gmca_stats_row *r;

        assert_int_equal(st->nrows, 2);
        r = row(st, "2026-03");
        assert_int_equal(r->issued, 3);
        assert_int_equal(r->revoked, 2);
        times_are(&r->issue_time, 2, (const double[]){48600, 48600, 93600, 93600},
                  (const double[]){0.521, 0.521, 1, 1});
        r = row(st, "2026-04");
        assert_int_equal(r->issued, 2);
        assert_int_equal(r->revoked, 0);
        assert_int_equal(r->issue_time.count, 1);
        gmca_stats_free(st);

        st = report(*state, GMCA_STATS_BY_DAY);
        assert_int_equal(st->nrows, 60); /* every day, empty ones too */
        assert_string_equal(st->rows[0].key, "2026-03-02");
        assert_string_equal(st->rows[59].key, "2026-04-30");
        assert_int_equal(st->rows[0].issued, 2); /* 01 and 05 */
        assert_int_equal(st->rows[0].issue_time.count, 1);
        assert_int_equal(row(st, "2026-03-03")->revoked, 1);
        assert_int_equal(row(st, "2026-03-03")->revoke_time.count, 1);
        /* Saturday 02:00 in China is Friday 18:00 UTC: a day is China's. */
        assert_int_equal(row(st, "2026-03-07")->issued, 1);
        assert_int_equal(row(st, "2026-03-06")->issued, 0);
        assert_int_equal(row(st, "2026-04-02")->issued, 2);
        assert_int_equal(row(st, "2026-03-20")->issued + row(st, "2026-03-20")->revoked, 0);
        gmca_stats_free(st);
}

static void test_empty_period(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_stats *st = NULL;
        char *text = NULL;
        size_t len = 0;

        must(gmca_stats_compute(f->s, T0 + 100 * DAY, T0 + 101 * DAY, GMCA_STATS_BY_TYPE, &st, &e),
             &e);
        assert_int_equal(st->nrows, 6);
        for (size_t i = 0; i < 6; i++)
                assert_int_equal(st->rows[i].issued + st->rows[i].revoked, 0);
        times_are(&st->total.issue_time, 0, Z, Z);
        times_are(&st->total.revoke_time, 0, Z, Z);
        must(gmca_stats_json(st, &text, &len, &e), &e);
        assert_non_null(strstr(text, "\"count\":0,\"mean_seconds\":null"));
        assert_int_equal(text[len - 1], '\n');
        free(text);
        gmca_stats_free(st);
        st = NULL;
        must(
            gmca_stats_compute(f->s, T0 + 100 * DAY, T0 + 101 * DAY, GMCA_STATS_BY_REGION, &st, &e),
            &e);
        assert_int_equal(st->nrows, 0);
        must(gmca_stats_csv(st, &text, &len, &e), &e);
        /* The header and the total, nothing else. */
        assert_non_null(strstr(text, "\r\ntotal,,0,0,0,0,0,0,0,0,0,,,,,,,,,0,,,,,,,,,0\r\n"));
        free(text);
        gmca_stats_free(st);
}

static void test_bad_period(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_stats *st = NULL;
        int64_t from = 0, to = 0;
        static const char *const bad[][2] = {
            {"2026-05-01", "2026-05-01"}, /* empty */
            {"2026-05-02", "2026-05-01"}, /* backwards */
            {"2026-13-01", NULL},
            {"yesterday", NULL},
            {NULL, "2026-05-01 "},
            {"1900-01-01", "2026-01-01"}, /* over 100 years */
            {"", NULL},
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                gmca_error_clear(&e);
                assert_int_equal(gmca_stats_period(bad[i][0], bad[i][1], T0, &from, &to, &e),
                                 GMCA_ERR_INVALID);
                assert_non_null(strstr(e.msg, "stats: "));
        }
        /* Defaults: to the end of today in China, from 30 days before. */
        must(gmca_stats_period(NULL, NULL, T0 + 3600, &from, &to, &e), &e);
        assert_int_equal(to, T0 + DAY);
        assert_int_equal(from, T0 + DAY - 30 * DAY);
        must(gmca_stats_period("2026-03-01T16:00:00Z", NULL, T0, &from, &to, &e), &e);
        assert_int_equal(from, T0);
        /* Five years by day is too many groups; four by month are fine. */
        assert_int_equal(
            gmca_stats_compute(f->s, T0, T0 + 5 * 366 * DAY, GMCA_STATS_BY_DAY, &st, &e),
            GMCA_ERR_INVALID);
        assert_null(st);
        must(gmca_stats_compute(f->s, T0, T0 + 4 * 366 * DAY, GMCA_STATS_BY_MONTH, &st, &e), &e);
        assert_int_equal(st->nrows, 49);
        assert_int_equal(st->total.issued, 6); /* 07 too, now */
        gmca_stats_free(st);
        st = NULL;
        assert_int_equal(gmca_stats_compute(f->s, T0, T0, GMCA_STATS_BY_TYPE, &st, &e),
                         GMCA_ERR_INVALID);
        assert_int_equal(gmca_stats_compute(f->s, T0, T0 + 1, (enum gmca_stats_by)9, &st, &e),
                         GMCA_ERR_INVALID);
        assert_null(st);
        assert_int_equal(gmca_stats_by_parse("region"), GMCA_STATS_BY_REGION);
        assert_int_equal(gmca_stats_by_parse("Region"), -1);
        assert_int_equal(gmca_stats_by_parse(NULL), -1);
}

/* CSV quoting (RFC 4180) and formula neutralising, on a report made by hand. */
static void test_csv(void **state)
{
        static const char head[] = "row,group,issued,new,renew,rekey,reissue,change,cli,revoked,"
                                   "issue_count,issue_mean_seconds,";
        struct gmca_error e = {0};
        struct gmca_stats_row rows[3];
        struct gmca_stats st;
        char *text = NULL;
        size_t len = 0;

        (void)state;
        memset(rows, 0, sizeof(rows));
        memset(&st, 0, sizeof(st));
        gmca_strlcpy(rows[0].key, "北京", sizeof(rows[0].key));
        rows[0].issued = 2;
        rows[0].by_type[0] = 2;
        rows[0].issue_time = (struct gmca_stats_times){2, 1.5, 1.5, 2, 2, 0.25, 0.25, 0.5, 0.5, 0};
        gmca_strlcpy(rows[1].key, "a,\"b\"", sizeof(rows[1].key));
        gmca_strlcpy(rows[2].key, "=cmd()", sizeof(rows[2].key));
        st.by = GMCA_STATS_BY_REGION;
        st.rows = rows;
        st.nrows = 3;
        must(gmca_stats_csv(&st, &text, &len, &e), &e);
        assert_int_equal(strlen(text), len);
        assert_true(strncmp(text, head, strlen(head)) == 0);
        assert_non_null(
            strstr(text, "\r\ngroup,北京,2,2,0,0,0,0,0,0,2,1.500,1.500,2.000,2.000,0.250,0.250,"
                         "0.500,0.500,0,,,,,,,,,0\r\n"));
        assert_non_null(strstr(text, "\r\ngroup,\"a,\"\"b\"\"\",0,"));
        assert_non_null(strstr(text, "\r\ngroup,'=cmd(),0,"));
        free(text);
}

/* CPS §4.4.4: those who run the service read the statistics; data entry does not. */
static void test_permission(void **state)
{
        struct gmca_error e = {0};

        (void)state;
        assert_string_equal(gmca_action_name(GMCA_ACT_STATS_READ), "stats.read");
        assert_int_equal(gmca_auth_allowed(GMCA_ROLE_BUSINESS_ADMIN, GMCA_ACT_STATS_READ, &e), 0);
        assert_int_equal(gmca_auth_allowed(GMCA_ROLE_SYSTEM_ADMIN, GMCA_ACT_STATS_READ, &e), 0);
        assert_int_equal(gmca_auth_allowed(GMCA_ROLE_AUDIT_ADMIN, GMCA_ACT_STATS_READ, &e), 0);
        assert_int_equal(gmca_auth_allowed(GMCA_ROLE_BUSINESS_OPERATOR, GMCA_ACT_STATS_READ, &e),
                         GMCA_ERR_FORBIDDEN);
        assert_int_equal(gmca_auth_allowed(GMCA_ROLE_TEMPLATE_ADMIN, GMCA_ACT_STATS_READ, &e),
                         GMCA_ERR_FORBIDDEN);
        assert_int_equal(gmca_auth_allowed(GMCA_ROLE_SUPER_ADMIN, GMCA_ACT_STATS_READ, &e),
                         GMCA_ERR_FORBIDDEN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_by_type, setup, teardown),
            cmocka_unit_test_setup_teardown(test_by_region_profile, setup, teardown),
            cmocka_unit_test_setup_teardown(test_by_period, setup, teardown),
            cmocka_unit_test_setup_teardown(test_empty_period, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_period, setup, teardown),
            cmocka_unit_test(test_csv),
            cmocka_unit_test(test_permission),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
