/*
 * The public certificate search (certsearch.h, CPS §1.6.1): one bounded SQL
 * scan over the certificates, newest first, that narrows the candidates;
 * an exact check of each on its parsed subject; the page's records read
 * whole afterwards. Nothing here reads requests or applicants, where the
 * private data lives, and the subject handed out loses its serialNumber.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "certsearch.h"
#include "store_internal.h"
#include "util.h"

#define PATTERN_MAX (2 * GMCA_SEARCH_TEXT_MAX + 3)

/* Characters gmca_dn_format may put a backslash before (x509_name.c emit_value). */
static const char dn_special[] = ",+\"\\<>;=# ";

static const char *const status_names[] = {NULL, "valid", "revoked", "expired"};

const char *gmca_search_status_name(enum gmca_search_status st)
{
        return (unsigned)st < sizeof(status_names) / sizeof(status_names[0]) ? status_names[st]
                                                                             : NULL;
}

int gmca_search_status_from(const char *name)
{
        for (size_t i = 1; i < sizeof(status_names) / sizeof(status_names[0]); i++)
                if (strcmp(name, status_names[i]) == 0)
                        return (int)i;
        return -1;
}

/* ---- the DN as gmca_dn_format writes it: KEY=value, ", " between RDNs, "+" within ---- */

struct dn_attr {
        const char *key, *val, *start;
        size_t klen, vlen, rawlen;
        char sep; /* what ended it: ',' '+' or '\0' */
};

/* The next attribute at *p, which moves past it and its separator; 0 at the end. */
static int dn_next(const char **p, struct dn_attr *a)
{
        const char *s = *p;

        if (*s == '\0')
                return 0;
        a->start = a->key = s;
        while (*s != '\0' && *s != '=' && *s != ',' && *s != '+')
                s++;
        a->klen = (size_t)(s - a->key);
        if (*s == '=')
                s++;
        a->val = s;
        while (*s != '\0' && *s != ',' && *s != '+') {
                if (*s == '\\' && s[1] != '\0')
                        s++;
                s++;
        }
        a->vlen = (size_t)(s - a->val);
        a->rawlen = (size_t)(s - a->start);
        a->sep = *s;
        if (*s == ',')
                for (s++; *s == ' '; s++)
                        ;
        else if (*s == '+')
                s++;
        *p = s;
        return 1;
}

static int key_is(const struct dn_attr *a, const char *key)
{
        return strlen(key) == a->klen && strncasecmp(a->key, key, a->klen) == 0;
}

static int hexdig(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* "\XX" is a byte in hex (control characters), "\c" the character c. */
static int dn_unescape(const char *v, size_t n, char *out, size_t len)
{
        size_t j = 0;

        for (size_t i = 0; i < n; i++) {
                int c = (unsigned char)v[i];

                if (c == '\\' && i + 1 < n) {
                        if (i + 2 < n && hexdig(v[i + 1]) >= 0 && hexdig(v[i + 2]) >= 0) {
                                c = hexdig(v[i + 1]) << 4 | hexdig(v[i + 2]);
                                i += 2;
                        } else {
                                c = (unsigned char)v[++i];
                        }
                }
                if (j + 1 >= len)
                        return -1;
                out[j++] = (char)c;
        }
        out[j] = '\0';
        return 0;
}

static int lower_ascii(int c)
{
        return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int contains_ci(const char *hay, const char *needle)
{
        size_t n = strlen(needle), h = strlen(hay);

        for (size_t i = 0; n <= h && i <= h - n; i++) {
                size_t k = 0;

                while (k < n && lower_ascii((unsigned char)hay[i + k]) ==
                                    lower_ascii((unsigned char)needle[k]))
                        k++;
                if (k == n)
                        return 1;
        }
        return 0;
}

static int is_private_attr(const struct dn_attr *a)
{
        return key_is(a, "serialNumber") || key_is(a, "2.5.4.5");
}

int gmca_dn_public(const char *dn, char *out, size_t len)
{
        struct dn_attr a;
        size_t j = 0;
        char sep = '\0';

        if (len == 0)
                return -1;
        out[0] = '\0';
        for (const char *p = dn; dn_next(&p, &a); sep = a.sep) {
                const char *join = j == 0 ? "" : sep == '+' ? "+" : ", ";
                size_t jl = strlen(join);

                if (is_private_attr(&a))
                        continue;
                if (j + jl + a.rawlen >= len) {
                        out[0] = '\0';
                        return -1;
                }
                memcpy(out + j, join, jl);
                memcpy(out + j + jl, a.start, a.rawlen);
                j += jl + a.rawlen;
                out[j] = '\0';
        }
        return 0;
}

int gmca_dn_value(const char *dn, const char *key, char *out, size_t len)
{
        struct dn_attr a;

        if (len > 0)
                out[0] = '\0';
        for (const char *p = dn; dn_next(&p, &a);)
                if (key_is(&a, key))
                        return dn_unescape(a.val, a.vlen, out, len) == 0 ? 1 : -1;
        return 0;
}

int gmca_dn_value_contains(const char *dn, const char *key, const char *needle)
{
        char v[GMCA_DN_MAX];
        struct dn_attr a;

        for (const char *p = dn; dn_next(&p, &a);)
                if (key_is(&a, key) && dn_unescape(a.val, a.vlen, v, sizeof(v)) == 0 &&
                    contains_ci(v, needle))
                        return 1;
        return 0;
}

/* ---- the search ---- */

/*
 * The LIKE pattern (ESCAPE '!') that every stored subject whose value holds
 * needle matches: lower-case ASCII, LIKE's own characters escaped, and room
 * for the backslash gmca_dn_format may have put before a special character.
 * "" for no needle.
 */
static void like_pattern(const char *needle, char out[PATTERN_MAX])
{
        size_t j = 0;

        out[0] = '\0';
        if (needle == NULL || needle[0] == '\0')
                return;
        out[j++] = '%';
        for (const char *p = needle; *p != '\0'; p++) {
                int c = lower_ascii((unsigned char)*p);

                if (c == '%' || c == '_' || c == '!')
                        out[j++] = '!';
                else if (strchr(dn_special, c) != NULL)
                        out[j++] = '%';
                out[j++] = (char)c;
        }
        out[j++] = '%';
        out[j] = '\0';
}

static enum gmca_search_status status_at(int status, int64_t not_after, int64_t now)
{
        if (status == GMCA_CERT_REVOKED)
                return GMCA_SEARCH_REVOKED;
        return not_after < now ? GMCA_SEARCH_EXPIRED : GMCA_SEARCH_VALID;
}

static int set(const char *s)
{
        return s != NULL && s[0] != '\0';
}

/* The exact test, on a candidate's columns. */
static int matches(const struct gmca_search_query *q, const char *subject, const char *profile,
                   int status, int64_t not_after)
{
        return (!set(q->profile) || strcmp(profile, q->profile) == 0) &&
               (q->status == GMCA_SEARCH_ANY ||
                q->status == status_at(status, not_after, q->now)) &&
               (!set(q->cn) || gmca_dn_value_contains(subject, "CN", q->cn)) &&
               (!set(q->o) || gmca_dn_value_contains(subject, "O", q->o));
}

static int query_check(const struct gmca_search_query *q, struct gmca_error *e)
{
        if (q->limit < 1 || q->limit > GMCA_SEARCH_LIMIT_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "search: limit must be 1..%d",
                                      GMCA_SEARCH_LIMIT_MAX);
        if (q->offset > GMCA_SEARCH_SCAN_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "search: offset must be 0..%d",
                                      GMCA_SEARCH_SCAN_MAX);
        if ((unsigned)q->status > GMCA_SEARCH_EXPIRED)
                return gmca_error_set(e, GMCA_ERR_INVALID, "search: unknown status");
        if ((q->cn != NULL && strlen(q->cn) > GMCA_SEARCH_TEXT_MAX) ||
            (q->o != NULL && strlen(q->o) > GMCA_SEARCH_TEXT_MAX) ||
            (q->profile != NULL && strlen(q->profile) > GMCA_SEARCH_TEXT_MAX))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "search: a cn, o or type of at most %d bytes",
                                      GMCA_SEARCH_TEXT_MAX);
        return 0;
}

static const char SQL_SCAN[] =
    "SELECT serial, subject, profile, status, not_after FROM certificates"
    " WHERE (? = '' OR profile = ?)"
    " AND (? = '' OR lower(subject) LIKE ? ESCAPE '!')"
    " AND (? = '' OR lower(subject) LIKE ? ESCAPE '!')"
    " AND (? = 0 OR (? = 1 AND status = 0 AND not_after >= ?) OR (? = 2 AND status = 1)"
    " OR (? = 3 AND status = 0 AND not_after < ?))"
    " ORDER BY issued_at DESC, serial DESC LIMIT ?";

/* The serials of the page into page[0..*n), the matches into *total. */
static int scan(struct gmca_store *s, const struct gmca_search_query *q,
                char (*page)[GMCA_SERIAL_HEX_MAX], size_t *n, size_t *total, int *capped,
                struct gmca_error *e)
{
        char cn[PATTERN_MAX], o[PATTERN_MAX];
        const char *prof = set(q->profile) ? q->profile : "";
        struct gmca_q st;
        size_t rows = 0;
        int rc;

        like_pattern(q->cn, cn);
        like_pattern(q->o, o);
        if ((rc = gmca_q_open(s, SQL_SCAN, &st, e)) != 0)
                return rc;
        gmca_q_text(&st, prof);
        gmca_q_text(&st, prof);
        gmca_q_text(&st, cn);
        gmca_q_text(&st, cn);
        gmca_q_text(&st, o);
        gmca_q_text(&st, o);
        for (int i = 0; i < 2; i++) {
                gmca_q_int(&st, q->status);
                gmca_q_int(&st, q->status);
                gmca_q_int(&st, q->now);
        }
        gmca_q_int(&st, GMCA_SEARCH_SCAN_MAX + 1);
        while ((rc = gmca_q_step(&st, e, "search certificates")) == GMCA_DB_ROW) {
                const char *serial = gmca_q_col_text(&st, 0), *subject = gmca_q_col_text(&st, 1),
                           *profile = gmca_q_col_text(&st, 2);

                if (++rows > GMCA_SEARCH_SCAN_MAX) {
                        *capped = 1;
                        break;
                }
                if (serial == NULL || subject == NULL || profile == NULL ||
                    !matches(q, subject, profile, (int)gmca_q_col_int(&st, 3),
                             gmca_q_col_int(&st, 4)))
                        continue;
                if (*total >= q->offset && *n < q->limit)
                        gmca_strlcpy(page[(*n)++], serial, GMCA_SERIAL_HEX_MAX);
                (*total)++;
        }
        gmca_q_close(&st);
        return rc < 0 ? rc : 0;
}

/* Read one certificate whole and hand it to cb as the public may see it. */
static int hand_out(struct gmca_store *s, const struct gmca_search_query *q, const char *serial,
                    int (*cb)(const struct gmca_search_hit *, void *), void *arg,
                    struct gmca_error *e)
{
        char subject[GMCA_DN_MAX], cn[GMCA_DN_MAX], o[GMCA_DN_MAX];
        struct gmca_cert_rec rec;
        struct gmca_search_hit h;
        int rc;

        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_cert_get(s, serial, &rec, e)) != 0)
                return rc;
        if (gmca_dn_public(rec.subject, subject, sizeof(subject)) != 0 ||
            gmca_dn_value(subject, "CN", cn, sizeof(cn)) < 0 ||
            gmca_dn_value(subject, "O", o, sizeof(o)) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "search: subject of %s", serial);
                goto out;
        }
        h = (struct gmca_search_hit){&rec, subject, cn, o,
                                     status_at(rec.status, rec.not_after, q->now)};
        rc = cb(&h, arg);
out:
        gmca_cert_rec_clear(&rec);
        return rc;
}

/* A serial names one certificate: it is the page if it passes the other filters. */
static int by_serial(struct gmca_store *s, const struct gmca_search_query *q,
                     char (*page)[GMCA_SERIAL_HEX_MAX], size_t *n, size_t *total,
                     struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        int rc;

        memset(&rec, 0, sizeof(rec));
        rc = gmca_store_cert_get(s, q->serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return 0;
        }
        if (rc == 0 && matches(q, rec.subject, rec.profile, rec.status, rec.not_after)) {
                *total = 1;
                if (q->offset == 0)
                        gmca_strlcpy(page[(*n)++], rec.serial, GMCA_SERIAL_HEX_MAX);
        }
        gmca_cert_rec_clear(&rec);
        return rc;
}

int gmca_search_certs(struct gmca_store *s, const struct gmca_search_query *q,
                      int (*cb)(const struct gmca_search_hit *h, void *arg), void *arg,
                      size_t *total, int *capped, struct gmca_error *e)
{
        char(*page)[GMCA_SERIAL_HEX_MAX] = NULL;
        size_t n = 0, found = 0;
        int rc, cap = 0;

        if ((rc = query_check(q, e)) != 0)
                return rc;
        if ((page = calloc(q->limit, sizeof(*page))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "search: out of memory");
        if (set(q->serial))
                rc = by_serial(s, q, page, &n, &found, e);
        else
                rc = scan(s, q, page, &n, &found, &cap, e);
        for (size_t i = 0; rc == 0 && i < n; i++)
                rc = hand_out(s, q, page[i], cb, arg, e);
        free(page);
        if (rc != 0)
                return rc;
        *total = found;
        *capped = cap;
        return 0;
}
