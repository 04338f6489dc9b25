/*
 * stats: the decision-support report (stats.h). Four read-only queries —
 * certificates issued, certificates revoked, applications issued,
 * revocation requests completed, each bounded to the period and by a LIMIT
 * one past its cap — stream facts (a time, a business type, a profile, a
 * subject, and for the last two a start time) into groups; the durations
 * are kept per group and sorted at the end for the median and p90. The
 * business type of a certificate is found through applications.issued_serial
 * (indexed by migration 8), so a report costs one index look-up per
 * certificate, not a scan of the applications. The region is the first ST
 * attribute of the subject as gmca_dn_format wrote it, unescaped.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ra.h"
#include "stats.h"
#include "store_internal.h"
#include "util.h"

#define UNKNOWN "unknown"

/* The business type of certificate c: its application's, its dual pair's, or
 * "cli". */
#define TYPE_OF_C                                                                                  \
        "COALESCE((SELECT a.type FROM applications a WHERE a.issued_serial = "                     \
        "c.serial"                                                                                 \
        " ORDER BY a.id LIMIT 1),"                                                                 \
        " (SELECT a.type FROM dual_keys d JOIN applications a ON a.issued_serial = "               \
        "d.sig_serial"                                                                             \
        " WHERE d.enc_serial = c.serial ORDER BY a.id LIMIT 1), 'cli')"

/* Columns: time, type, profile, subject[, start]. Parameters: from, to, limit.
 */
static const char SQL_ISSUED[] = "SELECT c.issued_at, " TYPE_OF_C ", c.profile, c.subject"
                                 " FROM certificates c"
                                 " WHERE c.issued_at >= ? AND c.issued_at < ? LIMIT ?";
static const char SQL_REVOKED[] = "SELECT c.revoked_at, " TYPE_OF_C ", c.profile, c.subject"
                                  " FROM certificates c WHERE c.status = 1"
                                  " AND c.revoked_at >= ? AND c.revoked_at < ? LIMIT ?";
static const char SQL_APPS[] = "SELECT a.issued_at, a.type, a.profile, "
                               "COALESCE(c.subject, ''), a.submitted_at"
                               " FROM applications a LEFT JOIN certificates c "
                               "ON c.serial = a.issued_serial"
                               " WHERE a.issued_serial IS NOT NULL AND "
                               "a.issued_at >= ? AND a.issued_at < ? LIMIT ?";
static const char SQL_REVREQ[] =
    "SELECT r.completed_at, " TYPE_OF_C ", COALESCE(c.profile, ''), COALESCE(c.subject, ''),"
    " r.requested_at FROM revocation_requests r LEFT JOIN certificates c ON "
    "c.serial = r.serial"
    " WHERE r.state = 'completed' AND r.completed_at >= ? AND r.completed_at < "
    "? LIMIT ?";

static const char *const by_names[] = {"type", "profile", "region", "month", "day"};
static const char *const type_names[GMCA_STATS_TYPES] = {"new",     "renew",  "rekey",
                                                         "reissue", "change", "cli"};

int gmca_stats_by_parse(const char *s)
{
        for (size_t i = 0; s != NULL && i < sizeof(by_names) / sizeof(by_names[0]); i++)
                if (strcmp(s, by_names[i]) == 0)
                        return (int)i;
        return -1;
}

const char *gmca_stats_by_name(enum gmca_stats_by by)
{
        return (unsigned)by < sizeof(by_names) / sizeof(by_names[0]) ? by_names[by] : "?";
}

const char *gmca_stats_type_name(int i)
{
        return i >= 0 && i < GMCA_STATS_TYPES ? type_names[i] : NULL;
}

/* ---- the period ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* A date is midnight in China; a full timestamp is the instant it names. */
static int parse_when(const char *text, const char *what, int64_t *out, struct gmca_error *e)
{
        time_t t;

        if (gmca_time_parse(text, &t) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "stats: %s: YYYY-MM-DD (UTC+8) or YYYY-MM-DDTHH:MM:SSZ",
                                      what);
        *out = (int64_t)t - (strlen(text) == 10 ? GMCA_STATS_TZ_OFFSET : 0);
        return 0;
}

int gmca_stats_period(const char *from_text, const char *to_text, int64_t now, int64_t *from,
                      int64_t *to, struct gmca_error *e)
{
        int64_t f = 0, t = 0;
        int rc;

        if (to_text != NULL) {
                if ((rc = parse_when(to_text, "to", &t, e)) != 0)
                        return rc;
        } else {
                t = (floor_div(now + GMCA_STATS_TZ_OFFSET, 86400) + 1) * 86400 -
                    GMCA_STATS_TZ_OFFSET;
        }
        if (from_text != NULL) {
                if ((rc = parse_when(from_text, "from", &f, e)) != 0)
                        return rc;
        } else {
                f = t - (int64_t)GMCA_STATS_DEFAULT_DAYS * 86400;
        }
        if (f >= t)
                return gmca_error_set(e, GMCA_ERR_INVALID, "stats: from must be before to");
        if (t - f > GMCA_STATS_SPAN_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "stats: a period of at most 100 years");
        *from = f;
        *to = t;
        return 0;
}

/* ---- groups ---- */

struct samples {
        int64_t *secs, *work;
        size_t n, cap;
};

struct group {
        struct gmca_stats_row row;
        struct samples issue, revoke;
};

struct acc {
        struct gmca_stats *st;
        struct group *g;
        size_t n, cap;
        struct group total;
        int64_t first; /* by day or month: the day or month number of from */
        size_t last;   /* by profile or region: the group found last, tried first */
};

static void samples_free(struct samples *s)
{
        free(s->secs);
        free(s->work);
        memset(s, 0, sizeof(*s));
}

static int samples_add(struct samples *s, int64_t secs, int64_t work)
{
        if (s->n == s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 16;
                int64_t *a, *b;

                if (ncap > GMCA_STATS_SAMPLES_MAX)
                        ncap = GMCA_STATS_SAMPLES_MAX;
                if (ncap <= s->n)
                        return GMCA_ERR_LIMIT;
                if ((a = realloc(s->secs, ncap * sizeof(*a))) == NULL)
                        return GMCA_ERR_NOMEM;
                s->secs = a;
                if ((b = realloc(s->work, ncap * sizeof(*b))) == NULL)
                        return GMCA_ERR_NOMEM;
                s->work = b;
                s->cap = ncap;
        }
        s->secs[s->n] = secs;
        s->work[s->n] = work;
        s->n++;
        return 0;
}

/* Days since the epoch in China, and months since year 0. */
static int64_t local_day(int64_t t)
{
        return floor_div(t + GMCA_STATS_TZ_OFFSET, 86400);
}

static int64_t local_month(int64_t t)
{
        time_t lt = (time_t)(t + GMCA_STATS_TZ_OFFSET);
        struct tm tm;

        if (gmtime_r(&lt, &tm) == NULL)
                return 0;
        return ((int64_t)tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Dense groups: every day or month of [from, to), named, zeros to start with.
 */
static int dense_groups(struct acc *a, struct gmca_error *e)
{
        const struct gmca_stats *st = a->st;
        int day = st->by == GMCA_STATS_BY_DAY;
        int64_t first = day ? local_day(st->from) : local_month(st->from);
        int64_t last = day ? local_day(st->to - 1) : local_month(st->to - 1);

        if (last - first + 1 > GMCA_STATS_GROUPS_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "stats: by %s: at most %d groups; narrow the period",
                                      gmca_stats_by_name(st->by), GMCA_STATS_GROUPS_MAX);
        a->first = first;
        a->n = a->cap = (size_t)(last - first + 1);
        if ((a->g = calloc(a->n, sizeof(*a->g))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < a->n; i++) {
                char *k = a->g[i].row.key;
                int64_t v = first + (int64_t)i;

                if (day) {
                        time_t t = (time_t)(v * 86400);
                        struct tm tm;

                        gmtime_r(&t, &tm);
                        snprintf(k, GMCA_STATS_KEY_MAX, "%04d-%02d-%02d", tm.tm_year + 1900,
                                 tm.tm_mon + 1, tm.tm_mday);
                } else {
                        snprintf(k, GMCA_STATS_KEY_MAX, "%04lld-%02lld", (long long)(v / 12),
                                 (long long)(v % 12 + 1));
                }
        }
        return 0;
}

/* 1 if s is valid UTF-8 without control characters. */
static int clean_utf8(const unsigned char *s)
{
        while (*s != '\0') {
                size_t n = *s < 0x80                  ? 0
                           : *s >= 0xc2 && *s <= 0xdf ? 1
                           : *s >= 0xe0 && *s <= 0xef ? 2
                           : *s >= 0xf0 && *s <= 0xf4 ? 3
                                                      : 4;

                if (n == 4 || (n == 0 && (*s < 0x20 || *s == 0x7f)))
                        return 0;
                /* overlong forms, surrogates, past U+10FFFF (RFC 3629 §4) */
                if ((*s == 0xe0 && s[1] < 0xa0) || (*s == 0xed && s[1] >= 0xa0) ||
                    (*s == 0xf0 && s[1] < 0x90) || (*s == 0xf4 && s[1] >= 0x90))
                        return 0;
                for (size_t i = 1; i <= n; i++)
                        if ((s[i] & 0xc0) != 0x80)
                                return 0;
                s += n + 1;
        }
        return 1;
}

/*
 * The first ST (or S) value of a one-line DN from gmca_dn_format, unescaped
 * into out; "unknown" without one, or if it is empty, too long or not clean.
 */
static void region_of(const char *dn, char out[GMCA_STATS_KEY_MAX])
{
        const char *p = dn;

        while (*p != '\0') {
                const char *eq = strchr(p, '=');
                size_t klen, n = 0;
                int st, bad = 0;

                if (eq == NULL)
                        break;
                klen = (size_t)(eq - p);
                st = (klen == 2 && memcmp(p, "ST", 2) == 0) || (klen == 1 && *p == 'S');
                for (p = eq + 1; *p != '\0' && *p != ',' && *p != '+'; p++) {
                        char c = *p;

                        if (c == '\\' && p[1] != '\0') {
                                /* \HH is only ever a control character (x509_name.c) */
                                bad |= isxdigit((unsigned char)p[1]) != 0;
                                c = *++p;
                        }
                        if (n + 1 >= GMCA_STATS_KEY_MAX)
                                bad = 1;
                        else
                                out[n++] = c;
                }
                out[n] = '\0';
                if (st) {
                        if (bad || n == 0 || !clean_utf8((const unsigned char *)out))
                                break;
                        return;
                }
                while (*p == ',' || *p == '+' || *p == ' ')
                        p++;
        }
        gmca_strlcpy(out, UNKNOWN, GMCA_STATS_KEY_MAX);
}

/* The group of a profile or region, added if new. */
static int named_group(struct acc *a, const char *key, struct group **out, struct gmca_error *e)
{
        int rc;

        if (a->last < a->n && strcmp(a->g[a->last].row.key, key) == 0) {
                *out = &a->g[a->last];
                return 0;
        }
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->g[i].row.key, key) == 0) {
                        a->last = i;
                        *out = &a->g[i];
                        return 0;
                }
        rc = gmca_grow((void **)&a->g, &a->cap, a->n, sizeof(*a->g), 16, GMCA_STATS_GROUPS_MAX);
        if (rc != 0)
                return gmca_error_set(e, rc, "stats: by %s: over %d groups; narrow the period",
                                      gmca_stats_by_name(a->st->by), GMCA_STATS_GROUPS_MAX);
        memset(&a->g[a->n], 0, sizeof(a->g[a->n]));
        gmca_strlcpy(a->g[a->n].row.key, key, GMCA_STATS_KEY_MAX);
        a->last = a->n;
        *out = &a->g[a->n++];
        return 0;
}

struct fact {
        int64_t time;
        int type;
        const char *profile;
        const char *subject;
};

static int group_of(struct acc *a, const struct fact *f, struct group **out, struct gmca_error *e)
{
        char key[GMCA_STATS_KEY_MAX];
        int64_t i;

        switch (a->st->by) {
        case GMCA_STATS_BY_TYPE:
                *out = &a->g[f->type];
                return 0;
        case GMCA_STATS_BY_DAY:
        case GMCA_STATS_BY_MONTH:
                i = (a->st->by == GMCA_STATS_BY_DAY ? local_day(f->time) : local_month(f->time)) -
                    a->first;
                if (i < 0 || (size_t)i >= a->n)
                        return gmca_error_set(e, GMCA_ERR_INTERNAL, "stats: a time off the period");
                *out = &a->g[i];
                return 0;
        case GMCA_STATS_BY_PROFILE:
                if (f->profile[0] == '\0' || strlen(f->profile) >= sizeof(key) ||
                    !clean_utf8((const unsigned char *)f->profile))
                        return named_group(a, UNKNOWN, out, e);
                return named_group(a, f->profile, out, e);
        case GMCA_STATS_BY_REGION:
                region_of(f->subject, key);
                return named_group(a, key, out, e);
        }
        return gmca_error_set(e, GMCA_ERR_INTERNAL, "stats: no such grouping");
}

static int type_index(const char *s)
{
        for (int i = 0; s != NULL && i < GMCA_STATS_TYPES; i++)
                if (strcmp(s, type_names[i]) == 0)
                        return i;
        return -1;
}

/* ---- the queries ---- */

enum kind { K_ISSUED, K_REVOKED, K_ISSUE_TIME, K_REVOKE_TIME };

static const struct {
        const char *sql;
        const char *what;
        int64_t cap;
} queries[] = {
    [K_ISSUED] = {SQL_ISSUED, "certificates issued", GMCA_STATS_FACTS_MAX},
    [K_REVOKED] = {SQL_REVOKED, "certificates revoked", GMCA_STATS_FACTS_MAX},
    [K_ISSUE_TIME] = {SQL_APPS, "applications issued", GMCA_STATS_SAMPLES_MAX},
    [K_REVOKE_TIME] = {SQL_REVREQ, "revocations completed", GMCA_STATS_SAMPLES_MAX},
};

static int add_duration(struct group *g, struct group *total, enum kind k, int64_t start,
                        int64_t end)
{
        int64_t secs = end > start ? end - start : 0, work = gmca_ra_working_seconds(start, end);
        int rc;

        if (k == K_ISSUE_TIME) {
                if ((rc = samples_add(&g->issue, secs, work)) == 0)
                        rc = samples_add(&total->issue, secs, work);
        } else {
                if ((rc = samples_add(&g->revoke, secs, work)) == 0)
                        rc = samples_add(&total->revoke, secs, work);
        }
        return rc;
}

static int add_fact(struct acc *a, enum kind k, struct gmca_q *q, struct gmca_error *e)
{
        const char *type = gmca_q_col_text(q, 1);
        struct fact f = {gmca_q_col_int(q, 0), type_index(type), gmca_q_col_text(q, 2),
                         gmca_q_col_text(q, 3)};
        struct group *g;
        int rc;

        if (f.type < 0)
                return gmca_error_set(e, GMCA_ERR_DB, "stats: %s: unknown business type \"%.32s\"",
                                      queries[k].what, type != NULL ? type : "");
        f.profile = f.profile != NULL ? f.profile : "";
        f.subject = f.subject != NULL ? f.subject : "";
        if ((rc = group_of(a, &f, &g, e)) != 0)
                return rc;
        switch (k) {
        case K_ISSUED:
                g->row.issued++;
                g->row.by_type[f.type]++;
                a->total.row.issued++;
                a->total.row.by_type[f.type]++;
                return 0;
        case K_REVOKED:
                g->row.revoked++;
                a->total.row.revoked++;
                return 0;
        default:
                rc = add_duration(g, &a->total, k, gmca_q_col_int(q, 4), f.time);
                if (rc != 0)
                        return gmca_error_set(e, rc, "stats: %s: %s", queries[k].what,
                                              rc == GMCA_ERR_LIMIT ? "too many; narrow the period"
                                                                   : "out of memory");
                return 0;
        }
}

static int run_query(struct gmca_store *s, struct acc *a, enum kind k, struct gmca_error *e)
{
        struct gmca_q q;
        int64_t rows = 0;
        int rc;

        if ((rc = gmca_q_open(s, queries[k].sql, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, a->st->from);
        gmca_q_int(&q, a->st->to);
        gmca_q_int(&q, queries[k].cap + 1);
        while ((rc = gmca_q_step(&q, e, "stats: %s", queries[k].what)) == GMCA_DB_ROW) {
                if (++rows > queries[k].cap) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                            "stats: over %lld %s; narrow the period",
                                            (long long)queries[k].cap, queries[k].what);
                        break;
                }
                if ((rc = add_fact(a, k, &q, e)) != 0)
                        break;
        }
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* ---- figures ---- */

static int cmp_i64(const void *x, const void *y)
{
        int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

        return (a > b) - (a < b);
}

/* x >= 0 to three decimals, without libm. */
static double round3(double x)
{
        return (double)(int64_t)(x * 1000.0 + 0.5) / 1000.0;
}

/* Mean, median, p90 and max of v[0..n) (n > 0), sorted here, divided by unit.
 */
static void figures(int64_t *v, size_t n, double unit, double *mean, double *median, double *p90,
                    double *max)
{
        double sum = 0;

        qsort(v, n, sizeof(*v), cmp_i64);
        for (size_t i = 0; i < n; i++)
                sum += (double)v[i];
        *mean = round3(sum / (double)n / unit);
        *median = round3(
            (n % 2 == 1 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0) /
            unit);
        *p90 = round3((double)v[(9 * n + 9) / 10 - 1] / unit);
        *max = round3((double)v[n - 1] / unit);
}

static void times_finish(struct samples *s, struct gmca_stats_times *t)
{
        memset(t, 0, sizeof(*t));
        t->count = (int64_t)s->n;
        if (s->n == 0)
                return;
        for (size_t i = 0; i < s->n; i++)
                t->over_limit += s->secs[i] > GMCA_STATS_REVOKE_LIMIT;
        figures(s->secs, s->n, 1.0, &t->mean_s, &t->median_s, &t->p90_s, &t->max_s);
        figures(s->work, s->n, 86400.0, &t->mean_wd, &t->median_wd, &t->p90_wd, &t->max_wd);
}

static void group_finish(struct group *g)
{
        times_finish(&g->issue, &g->row.issue_time);
        times_finish(&g->revoke, &g->row.revoke_time);
        g->row.issue_time.over_limit = 0; /* a revocation figure only */
        samples_free(&g->issue);
        samples_free(&g->revoke);
}

static int cmp_group(const void *x, const void *y)
{
        return strcmp(((const struct group *)x)->row.key, ((const struct group *)y)->row.key);
}

static void acc_free(struct acc *a)
{
        for (size_t i = 0; a->g != NULL && i < a->n; i++) {
                samples_free(&a->g[i].issue);
                samples_free(&a->g[i].revoke);
        }
        free(a->g);
        samples_free(&a->total.issue);
        samples_free(&a->total.revoke);
}

static int acc_start(struct acc *a, struct gmca_error *e)
{
        if (a->st->by == GMCA_STATS_BY_DAY || a->st->by == GMCA_STATS_BY_MONTH)
                return dense_groups(a, e);
        if (a->st->by != GMCA_STATS_BY_TYPE)
                return 0;
        a->n = a->cap = GMCA_STATS_TYPES;
        if ((a->g = calloc(a->n, sizeof(*a->g))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        for (int i = 0; i < GMCA_STATS_TYPES; i++)
                gmca_strlcpy(a->g[i].row.key, type_names[i], GMCA_STATS_KEY_MAX);
        return 0;
}

int gmca_stats_compute(struct gmca_store *s, int64_t from, int64_t to, enum gmca_stats_by by,
                       struct gmca_stats **out, struct gmca_error *e)
{
        struct gmca_stats *st = NULL;
        struct acc a;
        int rc = GMCA_ERR_NOMEM;

        memset(&a, 0, sizeof(a));
        if (gmca_stats_by_name(by)[0] == '?')
                return gmca_error_set(e, GMCA_ERR_INVALID, "stats: no such grouping");
        if (from >= to || to - from > GMCA_STATS_SPAN_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "stats: a period [from, to) of at "
                                      "most 100 years");
        if ((st = calloc(1, sizeof(*st))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        st->from = from;
        st->to = to;
        st->by = by;
        a.st = st;
        if ((rc = acc_start(&a, e)) != 0)
                goto out;
        for (int k = K_ISSUED; k <= K_REVOKE_TIME; k++)
                if ((rc = run_query(s, &a, (enum kind)k, e)) != 0)
                        goto out;
        if ((by == GMCA_STATS_BY_PROFILE || by == GMCA_STATS_BY_REGION) && a.n > 1)
                qsort(a.g, a.n, sizeof(*a.g), cmp_group);
        if (a.n > 0 && (st->rows = calloc(a.n, sizeof(*st->rows))) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < a.n; i++) {
                group_finish(&a.g[i]);
                st->rows[i] = a.g[i].row;
        }
        st->nrows = a.n;
        gmca_strlcpy(a.total.row.key, "total", GMCA_STATS_KEY_MAX);
        group_finish(&a.total);
        st->total = a.total.row;
        *out = st;
        st = NULL;
        rc = 0;
out:
        acc_free(&a);
        gmca_stats_free(st);
        return rc;
}

void gmca_stats_free(struct gmca_stats *st)
{
        if (st == NULL)
                return;
        free(st->rows);
        free(st);
}

/* ---- JSON ---- */

static json_t *fig(const struct gmca_stats_times *t, double v)
{
        return t->count > 0 ? json_real(v) : json_null();
}

static json_t *times_json(const struct gmca_stats_times *t, int revoke)
{
        json_t *o = json_pack(
            "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "count", (json_int_t)t->count,
            "mean_seconds", fig(t, t->mean_s), "median_seconds", fig(t, t->median_s), "p90_seconds",
            fig(t, t->p90_s), "max_seconds", fig(t, t->max_s), "mean_working_days",
            fig(t, t->mean_wd), "median_working_days", fig(t, t->median_wd), "p90_working_days",
            fig(t, t->p90_wd), "max_working_days", fig(t, t->max_wd));

        if (o != NULL && revoke &&
            json_object_set_new(o, "over_24h", json_integer(t->over_limit)) != 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static json_t *row_json(const struct gmca_stats_row *r, int with_group)
{
        json_t *o = json_object(), *types = json_object();
        int bad = o == NULL || types == NULL;

        for (int i = 0; !bad && i < GMCA_STATS_TYPES; i++)
                bad = json_object_set_new(types, type_names[i], json_integer(r->by_type[i])) != 0;
        if (!bad && with_group)
                bad = json_object_set_new(o, "group", json_string(r->key)) != 0;
        bad = bad || json_object_set_new(o, "issued", json_integer(r->issued)) != 0 ||
              json_object_set(o, "by_type", types) != 0 ||
              json_object_set_new(o, "revoked", json_integer(r->revoked)) != 0 ||
              json_object_set_new(o, "issue_time", times_json(&r->issue_time, 0)) != 0 ||
              json_object_set_new(o, "revoke_time", times_json(&r->revoke_time, 1)) != 0;
        json_decref(types);
        if (bad) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int gmca_stats_json(const struct gmca_stats *st, char **text, size_t *len, struct gmca_error *e)
{
        char f[32], t[32], *s = NULL, *line;
        size_t n;
        json_t *rows = json_array(), *o;

        for (size_t i = 0; rows != NULL && i < st->nrows; i++)
                if (json_array_append_new(rows, row_json(&st->rows[i], 1)) != 0) {
                        json_decref(rows);
                        rows = NULL;
                }
        gmca_time_iso((time_t)st->from, f, sizeof(f));
        gmca_time_iso((time_t)st->to, t, sizeof(t));
        o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:o}", "from", (json_int_t)st->from,
                      "to", (json_int_t)st->to, "from_time", f, "to_time", t, "by",
                      gmca_stats_by_name(st->by), "timezone", "UTC+08:00", "rows", rows, "total",
                      row_json(&st->total, 0));
        if (o != NULL)
                s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
        json_decref(o);
        n = s != NULL ? strlen(s) : 0;
        if (s == NULL || (line = realloc(s, n + 2)) == NULL) {
                free(s);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "stats: out of memory");
        }
        memcpy(line + n, "\n", 2); /* one line, as the API's other answers */
        *len = n + 1;
        *text = line;
        return 0;
}

/* ---- CSV ---- */

struct sbuf {
        char *p;
        size_t len, cap;
        int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) GMCA_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        for (int tries = 0; !b->err && tries < 2; tries++) {
                va_start(ap, fmt);
                n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->err = 1;
                } else if ((size_t)n < b->cap - b->len) {
                        b->len += (size_t)n;
                        return;
                } else {
                        size_t ncap = b->cap * 2 + (size_t)n + 256;
                        char *np = realloc(b->p, ncap);

                        if (np == NULL)
                                b->err = 1;
                        else
                                b->p = np, b->cap = ncap;
                }
        }
}

/*
 * One text field (RFC 4180 §2): quoted if it holds a comma, quote, CR or
 * LF, quotes doubled; a leading = + - @ or tab, which a spreadsheet would
 * run as a formula, gets a ' before it (the name comes from a subject DN).
 */
static void sb_field(struct sbuf *b, const char *s)
{
        int quote = strpbrk(s, ",\"\r\n") != NULL;

        sb_printf(b, "%s%s", quote ? "\"" : "", strchr("=+-@\t", s[0]) && s[0] ? "'" : "");
        for (const char *p = s; *p != '\0' && !b->err; p++)
                sb_printf(b, *p == '"' ? "\"\"" : "%c", *p);
        sb_printf(b, "%s", quote ? "\"" : "");
}

static void sb_times(struct sbuf *b, const struct gmca_stats_times *t, int revoke)
{
        const double v[] = {t->mean_s,  t->median_s,  t->p90_s,  t->max_s,
                            t->mean_wd, t->median_wd, t->p90_wd, t->max_wd};

        sb_printf(b, ",%lld", (long long)t->count);
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                if (t->count > 0)
                        sb_printf(b, ",%.3f", v[i]);
                else
                        sb_printf(b, ",");
        if (revoke)
                sb_printf(b, ",%lld", (long long)t->over_limit);
}

static void sb_row(struct sbuf *b, const struct gmca_stats_row *r, int total)
{
        sb_printf(b, "%s,", total ? "total" : "group");
        sb_field(b, total ? "" : r->key);
        sb_printf(b, ",%lld", (long long)r->issued);
        for (int i = 0; i < GMCA_STATS_TYPES; i++)
                sb_printf(b, ",%lld", (long long)r->by_type[i]);
        sb_printf(b, ",%lld", (long long)r->revoked);
        sb_times(b, &r->issue_time, 0);
        sb_times(b, &r->revoke_time, 1);
        sb_printf(b, "\r\n");
}

int gmca_stats_csv(const struct gmca_stats *st, char **text, size_t *len, struct gmca_error *e)
{
        static const char *const figs[] = {
            "count",           "mean_seconds",      "median_seconds",      "p90_seconds",
            "max_seconds",     "mean_working_days", "median_working_days", "p90_working_days",
            "max_working_days"};
        struct sbuf b = {NULL, 0, 0, 0};

        sb_printf(&b, "row,group,issued");
        for (int i = 0; i < GMCA_STATS_TYPES; i++)
                sb_printf(&b, ",%s", type_names[i]);
        sb_printf(&b, ",revoked");
        for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++)
                        sb_printf(&b, ",%s_%s", k == 0 ? "issue" : "revoke", figs[i]);
        sb_printf(&b, ",revoke_over_24h\r\n");
        for (size_t i = 0; i < st->nrows; i++)
                sb_row(&b, &st->rows[i], 0);
        sb_row(&b, &st->total, 1);
        if (b.err || b.p == NULL) {
                free(b.p);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "stats: out of memory");
        }
        *text = b.p;
        *len = b.len;
        return 0;
}
