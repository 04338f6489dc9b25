/*
 * stats: decision-support statistics (CPS §4.4.4, §4.6.4): how many
 * certificates were issued and revoked in a period, by business type,
 * certificate type, region or calendar period, and how efficiently the
 * service ran — time from an application's submission to its certificate
 * (§3.2.3 counts working days) and from a revocation request to its
 * completion (§3.9.6: at most 24 hours). Read-only: four bounded,
 * parameterised queries over the store, aggregated here, for the signed
 * API (GET /api/v1/stats) and the operator's console (gmca stats).
 *
 * What is counted, for the period [from, to):
 *   issued   certificates with issued_at in the period, split by business
 *            type: the type of the RA application that issued them (new,
 *            renew, rekey, reissue, change; the encryption certificate of a
 *            dual pair takes its signature certificate's application), or
 *            "cli" for those issued outside the RA (the command line, CA
 *            re-issuance after a compromise, internal certificates);
 *   revoked  certificates with revoked_at in the period;
 *   issue_time   applications issued in the period: issued_at - submitted_at;
 *   revoke_time  revocation requests completed in the period: completed_at -
 *            requested_at, and how many took over 24 hours.
 * Each fact falls in one group: its business type, its profile, its
 * region (the subject's ST attribute, "unknown" without one) or the day or
 * month of its time (issued_at, revoked_at, issued_at of the application,
 * completed_at of the revocation). Days and months are China Standard
 * Time (UTC+8), as are the dates of a period. Nothing personal is read
 * beyond the subject's province: no identity number, no subject-info JSON.
 */
#ifndef GMCA_STATS_H
#define GMCA_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define GMCA_STATS_TZ_OFFSET (8 * 3600) /* China Standard Time */
#define GMCA_STATS_KEY_MAX 128          /* bytes of a group's name, with its NUL */
#define GMCA_STATS_GROUPS_MAX 1500      /* groups of one report (days, profiles, regions) */
#define GMCA_STATS_SPAN_MAX ((int64_t)100 * 366 * 86400) /* longest period */
#define GMCA_STATS_FACTS_MAX 20000000                    /* certificates read for one report */
#define GMCA_STATS_SAMPLES_MAX 2000000 /* applications or revocations timed for one report */
#define GMCA_STATS_DEFAULT_DAYS 30     /* a period without a start */
#define GMCA_STATS_REVOKE_LIMIT 86400  /* CPS §3.9.6: seconds to complete a revocation */

enum gmca_stats_by {
        GMCA_STATS_BY_TYPE,
        GMCA_STATS_BY_PROFILE,
        GMCA_STATS_BY_REGION,
        GMCA_STATS_BY_MONTH,
        GMCA_STATS_BY_DAY,
};

/* Business types, in the order of gmca_app_type, then certificates issued
 * outside the RA. */
#define GMCA_STATS_TYPES 6
#define GMCA_STATS_TYPE_CLI 5

/*
 * Durations of one kind of work. Figures are seconds and working days
 * (gmca_ra_working_seconds / 86400: Monday to Friday, UTC+8), rounded to
 * three decimals; all zero when count is 0. The median of an even count is
 * the mean of the two middle values; p90 is the nearest-rank percentile
 * (the ceil(0.9 n)-th smallest).
 */
struct gmca_stats_times {
        int64_t count;
        double mean_s, median_s, p90_s, max_s;
        double mean_wd, median_wd, p90_wd, max_wd;
        int64_t over_limit; /* revocations only: longer than GMCA_STATS_REVOKE_LIMIT */
};

struct gmca_stats_row {
        char key[GMCA_STATS_KEY_MAX]; /* the group: a type, profile, region, YYYY-MM
                                         or YYYY-MM-DD */
        int64_t issued;
        int64_t by_type[GMCA_STATS_TYPES]; /* issued, by business type; they sum to
                                              issued */
        int64_t revoked;
        struct gmca_stats_times issue_time;
        struct gmca_stats_times revoke_time;
};

/*
 * A report. rows: every business type in order (by type), every day or
 * month of the period in order, zeros included (by day, month), or the
 * profiles or regions met, in byte order of their names. total: over all.
 */
struct gmca_stats {
        int64_t from, to;
        enum gmca_stats_by by;
        struct gmca_stats_row *rows;
        size_t nrows;
        struct gmca_stats_row total;
};

/* "type", "profile", "region", "month", "day"; -1 from parse for anything else.
 */
int gmca_stats_by_parse(const char *s);
const char *gmca_stats_by_name(enum gmca_stats_by by);
/* "new", "renew", "rekey", "reissue", "change", "cli"; NULL past the end. */
const char *gmca_stats_type_name(int i);

/*
 * The period [from, to) from the user's text: "YYYY-MM-DD" (midnight,
 * UTC+8) or "YYYY-MM-DDTHH:MM:SSZ" (that instant). Without to: the next
 * midnight (UTC+8) after now, so today counts; without from:
 * GMCA_STATS_DEFAULT_DAYS before to. GMCA_ERR_INVALID (naming the bad
 * one) for other text, from >= to, or a span over GMCA_STATS_SPAN_MAX.
 */
int gmca_stats_period(const char *from_text, const char *to_text, int64_t now, int64_t *from,
                      int64_t *to, struct gmca_error *e) GMCA_WUR;

/*
 * Compute the report. GMCA_ERR_INVALID for a bad period or grouping (by
 * day or month: at most GMCA_STATS_GROUPS_MAX of them), GMCA_ERR_LIMIT
 * past the caps above (narrow the period), GMCA_ERR_DB. Run outside a
 * transaction or inside one; writes nothing. On success *out is the
 * caller's, freed with gmca_stats_free (NULL is fine).
 */
int gmca_stats_compute(struct gmca_store *s, int64_t from, int64_t to, enum gmca_stats_by by,
                       struct gmca_stats **out, struct gmca_error *e) GMCA_WUR;
void gmca_stats_free(struct gmca_stats *st);

/*
 * Render a report as JSON (one object: from, to, by, timezone, rows,
 * total; a row's figures as documented in docs/api.md) or as CSV (RFC
 * 4180, UTF-8, CRLF, a header row, one line per group, then the total
 * line; a group name that a spreadsheet would take for a formula is
 * prefixed with '). JSON is one line ending in a newline. *text is
 * NUL-terminated, *len its length; free() it.
 */
int gmca_stats_json(const struct gmca_stats *st, char **text, size_t *len,
                    struct gmca_error *e) GMCA_WUR;
int gmca_stats_csv(const struct gmca_stats *st, char **text, size_t *len,
                   struct gmca_error *e) GMCA_WUR;

#endif
