/*
 * validate: certificate path validation for relying parties (see
 * validate.h). OpenSSL parses and supplies the building blocks; every
 * signature (certificates, CRLs, OCSP responses) is checked here over the
 * encoded TBS with the SM2 distinguishing ID, because OpenSSL 3.0's own
 * verifiers cannot take one (GMT-REFERENCE §3.3, §8).
 *
 * The path builder is a bounded depth-first search from the target towards
 * the trust anchors: an issuer candidate must carry the child's issuer name
 * as its subject and, when both key identifiers are present, the child's
 * authorityKeyIdentifier as its subjectKeyIdentifier, so that the two
 * same-DN roots of a key rollover and their link certificates (OldWithNew,
 * NewWithOld) are told apart. Each complete path is checked in full; the
 * first that passes wins, otherwise the reason from the first complete path
 * (or, failing any, the missing issuer) is reported.
 */
#include "validate.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "crypto.h"
#include "util.h"

#define FETCHED_MAX 4                    /* caIssuers certificates fetched per validation */
#define URL_MAX 2048                     /* bytes of a CDP, OCSP or caIssuers URL */
#define OCSP_NONCE_LEN 16                /* bytes of the request nonce */
#define OCSP_NO_NEXT_MAX_AGE (24 * 3600) /* a response without nextUpdate may be this old */
#define DEFAULT_TIMEOUT 10
#define POOL_MAX (GMCA_VFY_CANDIDATES_MAX + GMCA_VFY_DIR_MAX)
#define DIR_NAME_MAX 255 /* bytes of a file name in the chain directory */
#define DIR_PATH_MAX 4096

/* The one-line reason of a failure, cut to fit: reasons name URLs and DNs of any length. */
static void why_set(char *why, size_t wl, const char *fmt, ...) GMCA_PRINTF(3, 4);
static void why_set(char *why, size_t wl, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, wl, fmt, ap);
        va_end(ap);
}

static const char *const reason_names[GMCA_VFY_REASON_COUNT] = {
    [GMCA_VFY_OK] = "ok",
    [GMCA_VFY_NO_ISSUER] = "no-issuer",
    [GMCA_VFY_BAD_SIGNATURE] = "bad-signature",
    [GMCA_VFY_NOT_YET_VALID] = "not-yet-valid",
    [GMCA_VFY_EXPIRED] = "expired",
    [GMCA_VFY_NOT_CA] = "not-ca",
    [GMCA_VFY_PATH_LEN] = "path-length",
    [GMCA_VFY_ISSUER_KEY_USAGE] = "issuer-key-usage",
    [GMCA_VFY_WRONG_USE] = "wrong-use",
    [GMCA_VFY_CRITICAL_EXTENSION] = "critical-extension",
    [GMCA_VFY_MALFORMED] = "malformed",
    [GMCA_VFY_REVOKED] = "revoked",
    [GMCA_VFY_REVOCATION_UNAVAILABLE] = "revocation-unavailable",
    [GMCA_VFY_CRL_INVALID] = "crl-invalid",
    [GMCA_VFY_OCSP_INVALID] = "ocsp-invalid",
};

const char *gmca_vfy_reason_name(int reason)
{
        if (reason < 0 || reason >= GMCA_VFY_REASON_COUNT)
                return "unknown";
        return reason_names[reason];
}

/* Revocation status of one certificate from one source. */
enum rs { RS_GOOD, RS_REVOKED, RS_UNAVAIL, RS_INVALID };

struct ctx {
        const struct gmca_vfy_opts *o;
        time_t at;  /* validation time: validity, revocation dates, nextUpdate of CRL/OCSP */
        time_t now; /* wall clock: no thisUpdate after it; the OCSP responder's validity */
        long timeout;
        X509 *pool[POOL_MAX];
        int trusted[POOL_MAX];
        size_t npool;
        X509 *dir[GMCA_VFY_DIR_MAX]; /* owned: read from opts->chain_dir */
        size_t ndir;
        X509 *fetched[FETCHED_MAX]; /* owned */
        size_t nfetched;
        X509 *path[GMCA_VFY_DEPTH_MAX];
        size_t plen;
        size_t paths;
        int have; /* res holds a failure from a complete path */
        struct gmca_vfy_result *res;
};

/* Copy the subjects of the current path into res. */
static void snapshot(struct ctx *c)
{
        c->res->chain_len = c->plen;
        for (size_t i = 0; i < c->plen; i++)
                if (gmca_dn_format(X509_get_subject_name(c->path[i]), c->res->chain[i],
                                   sizeof(c->res->chain[i]), NULL) != 0)
                        gmca_strlcpy(c->res->chain[i], "(unprintable)", sizeof(c->res->chain[i]));
}

/*
 * Record a failure of the current path unless one from a complete path is
 * already there (NO_ISSUER yields to anything else). Returns 0.
 */
static int fail(struct ctx *c, enum gmca_vfy_reason r, int depth, const char *fmt, ...)
    GMCA_PRINTF(4, 5);
static int fail(struct ctx *c, enum gmca_vfy_reason r, int depth, const char *fmt, ...)
{
        va_list ap;

        if (c->have || (r == GMCA_VFY_NO_ISSUER && c->res->reason != GMCA_VFY_OK))
                return 0;
        c->have = r != GMCA_VFY_NO_ISSUER;
        c->res->reason = r;
        c->res->depth = depth;
        va_start(ap, fmt);
        vsnprintf(c->res->msg, sizeof(c->res->msg), fmt, ap);
        va_end(ap);
        snapshot(c);
        return 0;
}

static const char *subj(X509 *x, char *buf, size_t len)
{
        if (gmca_dn_format(X509_get_subject_name(x), buf, len, NULL) != 0)
                gmca_strlcpy(buf, "(unprintable)", len);
        return buf;
}

static int key_id_eq(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
        return ASN1_STRING_length(a) == ASN1_STRING_length(b) &&
               memcmp(ASN1_STRING_get0_data(a), ASN1_STRING_get0_data(b),
                      (size_t)ASN1_STRING_length(a)) == 0;
}

/* May cand have issued x: names, and key identifiers when both are there. */
static int issuer_matches(X509 *x, X509 *cand)
{
        const ASN1_OCTET_STRING *aki, *ski;

        if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(cand)) != 0)
                return 0;
        aki = X509_get0_authority_key_id(x);
        ski = X509_get0_subject_key_id(cand);
        return aki == NULL || ski == NULL || key_id_eq(aki, ski);
}

static int self_issued(X509 *x)
{
        return X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) == 0;
}

/* -1 before t, 1 at or after t (strictly "later" for notBefore), 0 on a bad time. */
static int time_vs(const ASN1_TIME *a, time_t t)
{
        return X509_cmp_time(a, &t);
}

/* ---- HTTP (libcurl) ------------------------------------------------------ */

struct sink {
        uint8_t *p;
        size_t len, max;
        int over;
};

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
        struct sink *s = ud;
        size_t n = size * nmemb;
        uint8_t *np;

        if (n > s->max - s->len) {
                s->over = 1;
                return 0;
        }
        if ((np = OPENSSL_realloc(s->p, s->len + n + 1)) == NULL)
                return 0;
        s->p = np;
        memcpy(s->p + s->len, ptr, n);
        s->len += n;
        return n;
}

static int http_url_ok(const char *url)
{
        return strlen(url) < URL_MAX &&
               (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0);
}

/*
 * GET url (post == NULL) or POST post with content type ctype; at most max
 * bytes back, no redirects. 0 with *out (OPENSSL_free) or -1 with why set.
 */
static int http_fetch(struct ctx *c, const char *url, const uint8_t *post, size_t postlen,
                      const char *ctype, size_t max, uint8_t **out, size_t *outlen, char *why,
                      size_t whylen)
{
        struct sink s = {NULL, 0, max, 0};
        struct curl_slist *hdr = NULL;
        char hbuf[128];
        CURL *h = NULL;
        CURLcode cc;
        int rc = -1;

        if (!http_url_ok(url)) {
                snprintf(why, whylen, "%s: only http and https URLs are fetched", url);
                return -1;
        }
        if ((h = curl_easy_init()) == NULL) {
                snprintf(why, whylen, "%s: cannot start HTTP", url);
                return -1;
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout);
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
        if (post != NULL) {
                snprintf(hbuf, sizeof(hbuf), "Content-Type: %s", ctype);
                if ((hdr = curl_slist_append(NULL, hbuf)) == NULL) {
                        snprintf(why, whylen, "%s: out of memory", url);
                        goto out;
                }
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)post);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)postlen);
        }
        if ((cc = curl_easy_perform(h)) != CURLE_OK) {
                snprintf(why, whylen, "%s: %s", url,
                         s.over ? "response over the size cap" : curl_easy_strerror(cc));
                goto out;
        }
        if (s.len == 0) {
                snprintf(why, whylen, "%s: empty response", url);
                goto out;
        }
        *out = s.p;
        *outlen = s.len;
        s.p = NULL;
        rc = 0;
out:
        OPENSSL_free(s.p);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        return rc;
}

/* The first http(s) URI among names; NULL if none. Points into names. */
static const char *first_uri(GENERAL_NAMES *names)
{
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
                const char *u;

                if (g->type != GEN_URI)
                        continue;
                u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
                if (strlen(u) == (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) &&
                    http_url_ok(u))
                        return u;
        }
        return NULL;
}

/* The first http(s) fullName of dps (consumed), copied into url; -1 if none. */
static int dp_url(STACK_OF(DIST_POINT) * dps, char *url, size_t len)
{
        int rc = -1;

        for (int i = 0; rc != 0 && i < sk_DIST_POINT_num(dps); i++) {
                DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
                const char *u;

                if (dp->distpoint == NULL || dp->distpoint->type != 0 || dp->reasons != NULL)
                        continue;
                if ((u = first_uri(dp->distpoint->name.fullname)) != NULL &&
                    gmca_strlcpy(url, u, len) < len)
                        rc = 0;
        }
        sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
        return rc;
}

/* x's first http(s) CDP fullName, copied into url; -1 if none. */
static int cdp_url(X509 *x, char *url, size_t len)
{
        return dp_url(X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL), url, len);
}

/* The delta CRL's URL: freshestCRL of the complete CRL, else of x (RFC 5280 §5.2.6, §4.2.1.15). */
static int freshest_url(X509_CRL *crl, X509 *x, char *url, size_t len)
{
        if (dp_url(X509_CRL_get_ext_d2i(crl, NID_freshest_crl, NULL, NULL), url, len) == 0)
                return 0;
        return dp_url(X509_get_ext_d2i(x, NID_freshest_crl, NULL, NULL), url, len);
}

/* x's first http(s) AIA location of method nid (OCSP, caIssuers); -1 if none. */
static int aia_url(X509 *x, int nid, char *url, size_t len)
{
        AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
        int rc = -1;

        for (int i = 0; rc != 0 && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
                ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
                GENERAL_NAMES *one;
                const char *u;

                if (OBJ_obj2nid(ad->method) != nid || ad->location->type != GEN_URI)
                        continue;
                if ((one = sk_GENERAL_NAME_new_null()) == NULL)
                        break;
                if (sk_GENERAL_NAME_push(one, ad->location) > 0 && (u = first_uri(one)) != NULL &&
                    gmca_strlcpy(url, u, len) < len)
                        rc = 0;
                sk_GENERAL_NAME_free(one);
        }
        AUTHORITY_INFO_ACCESS_free(aia);
        return rc;
}

/* ---- CRL ------------------------------------------------------------------ */

static int is_delta(X509_CRL *crl)
{
        return X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0;
}

/*
 * Check crl for x issued by iss: a complete CRL, or with delta set a delta
 * CRL (RFC 5280 §5.2.4, its critical deltaCRLIndicator understood). why
 * gets the cause for anything but RS_GOOD.
 */
static enum rs crl_check(struct ctx *c, X509_CRL *crl, int delta, X509 *x, X509 *iss,
                         const char *src, char *why, size_t wl)
{
        AUTHORITY_KEYID *akid = NULL;
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(iss);
        const STACK_OF(X509_EXTENSION) *exts = X509_CRL_get0_extensions(crl);
        STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        X509_REVOKED *rev = NULL;
        struct gmca_error e;
        char dn[GMCA_DN_MAX];
        int crit = 0, found;
        enum rs r = RS_INVALID;

        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(iss)) != 0) {
                why_set(why, wl, "CRL %s: issued by another CA, not %s", src,
                        subj(iss, dn, sizeof(dn)));
                return RS_INVALID;
        }
        akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
        if (akid == NULL && crit != -1) {
                why_set(why, wl, "CRL %s: RFC 5280 §5.2.1: malformed authorityKeyIdentifier", src);
                return RS_INVALID;
        }
        if (akid != NULL && akid->keyid != NULL && ski != NULL && !key_id_eq(akid->keyid, ski)) {
                why_set(why, wl, "CRL %s: authorityKeyIdentifier is not the issuer's key", src);
                goto out;
        }
        if ((X509_get_extension_flags(iss) & EXFLAG_KUSAGE) &&
            !(X509_get_key_usage(iss) & KU_CRL_SIGN)) {
                why_set(why, wl, "CRL %s: issuer's keyUsage lacks cRLSign", src);
                goto out;
        }
        if (is_delta(crl) != delta) {
                why_set(why, wl, "CRL %s: %s", src,
                        delta ? "not a delta CRL" : "a delta CRL where a complete CRL is needed");
                goto out;
        }
        /* Partitioned and indirect CRLs are not understood: refuse them. */
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
                if (X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(exts, i)) &&
                    !(delta && OBJ_obj2nid(X509_EXTENSION_get_object(
                                   sk_X509_EXTENSION_value(exts, i))) == NID_delta_crl)) {
                        why_set(why, wl, "CRL %s: RFC 5280 §5.2: unsupported critical extension",
                                src);
                        goto out;
                }
        for (int i = 0; i < sk_X509_REVOKED_num(revs); i++) {
                const STACK_OF(X509_EXTENSION) *ee =
                    X509_REVOKED_get0_extensions(sk_X509_REVOKED_value(revs, i));

                for (int j = 0; j < sk_X509_EXTENSION_num(ee); j++)
                        if (X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(ee, j))) {
                                why_set(why, wl,
                                        "CRL %s: RFC 5280 §5.3: unsupported critical entry "
                                        "extension",
                                        src);
                                goto out;
                        }
        }
        gmca_error_clear(&e);
        if (gmca_crl_verify(crl, X509_get0_pubkey(iss), c->o->sm2_id, &e) != 0) {
                why_set(why, wl, "CRL %s: SM2 signature does not verify with the issuer's key: %s",
                        src, e.msg);
                goto out;
        }
        if (time_vs(X509_CRL_get0_lastUpdate(crl), c->now + GMCA_VFY_SKEW) != -1) {
                why_set(why, wl, "CRL %s: thisUpdate is in the future", src);
                goto out;
        }
        if (next == NULL) {
                why_set(why, wl, "CRL %s: RFC 5280 §5.1.2.5: no nextUpdate", src);
                goto out;
        }
        /* Freshness at the validation time (validate.h, opts.at). */
        if (time_vs(next, c->at - GMCA_VFY_SKEW) != 1) {
                why_set(why, wl, "CRL %s: stale (nextUpdate before the validation time)", src);
                r = RS_UNAVAIL;
                goto out;
        }
        found = X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(x));
        if (found == 1 && time_vs(X509_REVOKED_get0_revocationDate(rev), c->at) == -1) {
                ASN1_ENUMERATED *re = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
                long code = re != NULL ? ASN1_ENUMERATED_get(re) : -1;
                const char *name = code >= 0 ? gmca_crl_reason_name((int)code) : NULL;

                ASN1_ENUMERATED_free(re);
                /* removeFromCRL in a delta: the entry is gone from the complete CRL. */
                if (code == CRL_REASON_REMOVE_FROM_CRL) {
                        r = RS_GOOD;
                        goto out;
                }
                why_set(why, wl, "revoked (%s), listed in CRL %s",
                        name != NULL ? name : "no reason", src);
                r = RS_REVOKED;
                goto out;
        }
        r = RS_GOOD;
out:
        AUTHORITY_KEYID_free(akid);
        return r;
}

/* cRLNumber and (for a delta CRL, base not NULL) BaseCRLNumber; -1 if absent or unreadable. */
static int crl_numbers(X509_CRL *crl, int64_t *number, int64_t *base)
{
        ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
        ASN1_INTEGER *b =
            base != NULL ? X509_CRL_get_ext_d2i(crl, NID_delta_crl, NULL, NULL) : NULL;
        int rc = n != NULL && ASN1_INTEGER_get_int64(number, n) == 1 &&
                         (base == NULL || (b != NULL && ASN1_INTEGER_get_int64(base, b) == 1))
                     ? 0
                     : -1;

        ASN1_INTEGER_free(n);
        ASN1_INTEGER_free(b);
        return rc;
}

/*
 * One delta CRL d against the complete CRL numbered full: RS_REVOKED if it
 * lists x (an authentic listing, whatever its base), RS_GOOD if it may be
 * combined with the complete CRL (newer than it, base not newer: RFC 5280
 * §5.2.4) and does not list x, RS_UNAVAIL if it is stale or cannot be
 * combined, RS_INVALID if it is not the issuer's.
 */
static enum rs delta_one(struct ctx *c, X509_CRL *d, int64_t full, X509 *x, X509 *iss,
                         const char *src, char *why, size_t wl)
{
        int64_t number = 0, base = 0;
        enum rs r = crl_check(c, d, 1, x, iss, src, why, wl);

        if (r != RS_GOOD)
                return r;
        if (crl_numbers(d, &number, &base) != 0) {
                why_set(why, wl, "delta CRL %s: malformed cRLNumber or deltaCRLIndicator", src);
                return RS_INVALID;
        }
        return number > full && base <= full ? RS_GOOD : RS_UNAVAIL;
}

/*
 * After the complete CRL full said good: a delta CRL may know better. The
 * caller's delta CRLs for the issuer first, then the freshestCRL URL
 * fetched (when the network is allowed). A delta that is missing, stale or
 * cannot be combined leaves the complete CRL's answer, which stands until
 * its nextUpdate; a delta that is forged or malformed is an invalid
 * answer, like a bad complete CRL.
 */
static enum rs delta_status(struct ctx *c, X509_CRL *full, X509 *x, X509 *iss, char *why, size_t wl)
{
        char url[URL_MAX];
        uint8_t *body = NULL;
        size_t blen = 0;
        X509_CRL *d;
        struct gmca_error e;
        int64_t number;
        enum rs r;

        if (crl_numbers(full, &number, NULL) != 0)
                return RS_GOOD; /* no cRLNumber: no delta can be relative to it */
        for (size_t i = 0; i < c->o->ncrls; i++) {
                if (X509_NAME_cmp(X509_CRL_get_issuer(c->o->crls[i]), X509_get_subject_name(iss)) !=
                        0 ||
                    !is_delta(c->o->crls[i]))
                        continue;
                if ((r = delta_one(c, c->o->crls[i], number, x, iss, "(given)", why, wl)) !=
                    RS_UNAVAIL)
                        return r;
        }
        if (!c->o->network || freshest_url(full, x, url, sizeof(url)) != 0 ||
            http_fetch(c, url, NULL, 0, NULL, GMCA_VFY_FETCH_MAX, &body, &blen, why, wl) != 0)
                return RS_GOOD;
        gmca_error_clear(&e);
        if ((d = gmca_crl_parse(body, blen, &e)) == NULL) {
                why_set(why, wl, "delta CRL %s: %s", url, e.msg);
                r = RS_INVALID;
        } else {
                r = delta_one(c, d, number, x, iss, url, why, wl);
        }
        X509_CRL_free(d);
        OPENSSL_free(body);
        return r == RS_UNAVAIL ? RS_GOOD : r;
}

/* Path of the cache file for url: DIR/<SM3(url) hex>.crl. */
static int cache_path(struct ctx *c, const char *url, char *path, size_t len)
{
        uint8_t md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1];

        if (gmca_sm3(url, strlen(url), md) != 0)
                return -1;
        gmca_hex(md, sizeof(md), hex);
        return snprintf(path, len, "%s/%s.crl", c->o->cache_dir, hex) < (int)len ? 0 : -1;
}

/*
 * Status of x (issued by iss) by CRL: the caller's CRLs for that issuer,
 * then the cache for x's CDP URL, then the URL itself (the fetched CRL
 * goes to the cache when it checks out).
 */
static enum rs crl_status(struct ctx *c, X509 *x, X509 *iss, char *why, size_t wl)
{
        char url[URL_MAX], path[4096], dn[GMCA_DN_MAX];
        uint8_t *fbuf = NULL, *body = NULL;
        size_t flen = 0, blen = 0;
        X509_CRL *crl = NULL;
        struct gmca_error e;
        enum rs r;
        int have_path = 0;

        why_set(why, wl, "no CRL for %s", subj(x, dn, sizeof(dn)));
        /* The caller's CRLs first: any that names this issuer. */
        for (size_t i = 0; i < c->o->ncrls; i++) {
                if (X509_NAME_cmp(X509_CRL_get_issuer(c->o->crls[i]), X509_get_subject_name(iss)) !=
                        0 ||
                    is_delta(c->o->crls[i]))
                        continue;
                /* Good, revoked, or a forgery in the issuer's name: that settles it. */
                if ((r = crl_check(c, c->o->crls[i], 0, x, iss, "(given)", why, wl)) != RS_UNAVAIL)
                        return r == RS_GOOD ? delta_status(c, c->o->crls[i], x, iss, why, wl) : r;
        }
        if (cdp_url(x, url, sizeof(url)) != 0) {
                why_set(why, wl, "%s: no usable CRL given and no http cRLDistributionPoints",
                        subj(x, dn, sizeof(dn)));
                return RS_UNAVAIL;
        }
        if (c->o->cache_dir != NULL && cache_path(c, url, path, sizeof(path)) == 0) {
                have_path = 1;
                /* A cached CRL that is not good (stale, damaged) is fetched again. */
                gmca_error_clear(&e);
                if (gmca_read_file(path, GMCA_VFY_FETCH_MAX, &fbuf, &flen, &e) == 0 &&
                    (crl = gmca_crl_parse(fbuf, flen, &e)) != NULL) {
                        r = crl_check(c, crl, 0, x, iss, url, why, wl);
                        if (r == RS_GOOD)
                                r = delta_status(c, crl, x, iss, why, wl);
                        if (r == RS_GOOD || r == RS_REVOKED)
                                goto out;
                }
                X509_CRL_free(crl);
                crl = NULL;
        }
        if (!c->o->network) {
                why_set(why, wl, "CRL %s: not fetched (network not allowed)", url);
                r = RS_UNAVAIL;
                goto out;
        }
        if (http_fetch(c, url, NULL, 0, NULL, GMCA_VFY_FETCH_MAX, &body, &blen, why, wl) != 0) {
                r = RS_UNAVAIL;
                goto out;
        }
        gmca_error_clear(&e);
        if ((crl = gmca_crl_parse(body, blen, &e)) == NULL) {
                why_set(why, wl, "CRL %s: %s", url, e.msg);
                r = RS_INVALID;
                goto out;
        }
        r = crl_check(c, crl, 0, x, iss, url, why, wl);
        if ((r == RS_GOOD || r == RS_REVOKED) && have_path) {
                gmca_error_clear(&e);
                /* A cache that cannot be written only costs a fetch next time. */
                if (mkdir(c->o->cache_dir, 0755) == 0 || errno == EEXIST)
                        (void)!gmca_write_file_atomic(path, body, blen, 0644, &e);
        }
        if (r == RS_GOOD)
                r = delta_status(c, crl, x, iss, why, wl);
out:
        free(fbuf);
        OPENSSL_free(body);
        X509_CRL_free(crl);
        return r;
}

/* ---- OCSP ----------------------------------------------------------------- */

OCSP_RESPONSE *gmca_ocsp_response_parse(const uint8_t *buf, size_t len, struct gmca_error *e)
{
        const uint8_t *p = buf;
        OCSP_RESPONSE *resp = NULL, *again = NULL;
        OCSP_BASICRESP *bs = NULL;
        uint8_t *der = NULL;
        int derlen;

        if (buf == NULL || len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP response: empty");
                return NULL;
        }
        if (len > GMCA_VFY_OCSP_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "OCSP response: over %u bytes",
                               (unsigned)GMCA_VFY_OCSP_MAX);
                return NULL;
        }
        if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "OCSP response: RFC 6960 §4.2.1: not DER");
                return NULL;
        }
        if (p != buf + len) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP response: trailing bytes after DER");
                goto bad;
        }
        /*
         * DER throughout: re-create the response from its decoded parts
         * (the BasicOCSPResponse included, whose own trailing bytes d2i
         * would not see) and compare with what was received.
         */
        if (OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
                if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
                        gmca_error_ossl(e, GMCA_ERR_INVALID,
                                        "OCSP response: RFC 6960 §4.2.1: not a "
                                        "BasicOCSPResponse");
                        goto bad;
                }
                again = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
        } else {
                again = OCSP_response_create(OCSP_response_status(resp), NULL);
        }
        if (again == NULL || (derlen = i2d_OCSP_RESPONSE(again, &der)) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "OCSP response: cannot re-encode");
                goto bad;
        }
        if ((size_t)derlen != len || memcmp(der, buf, len) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP response: not DER (X.690 §10)");
                goto bad;
        }
        OPENSSL_free(der);
        OCSP_RESPONSE_free(again);
        OCSP_BASICRESP_free(bs);
        return resp;
bad:
        OPENSSL_free(der);
        OCSP_RESPONSE_free(again);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        gmca_ossl_clear();
        return NULL;
}

/* Check bs's signature: by iss itself, or by a responder iss delegated to. */
static int ocsp_sig_ok(struct ctx *c, OCSP_BASICRESP *bs, X509 *iss, char *why, size_t wl)
{
        STACK_OF(X509) *extra = sk_X509_new_null();
        const X509_ALGOR *alg = OCSP_resp_get0_tbs_sigalg(bs);
        const ASN1_OCTET_STRING *sig = OCSP_resp_get0_signature(bs);
        const ASN1_OBJECT *obj = NULL;
        EVP_PKEY *key = NULL;
        struct gmca_error e;
        X509 *signer = NULL;
        uint8_t *tbs = NULL;
        int tbslen, rc = -1;

        X509_ALGOR_get0(&obj, NULL, NULL, alg);
        if (OBJ_obj2nid(obj) != NID_SM2_with_SM3) {
                why_set(why, wl, "OCSP response: signature algorithm is not SM2-with-SM3");
                goto out;
        }
        if (extra == NULL || !sk_X509_push(extra, iss)) {
                why_set(why, wl, "OCSP response: out of memory");
                goto out;
        }
        if (OCSP_resp_get0_signer(bs, &signer, extra) != 1 || signer == NULL) {
                why_set(why, wl,
                        "OCSP response: responder is neither the CA nor a certificate "
                        "it included");
                goto out;
        }
        gmca_error_clear(&e);
        if (EVP_PKEY_eq(X509_get0_pubkey(signer), X509_get0_pubkey(iss)) == 1) {
                key = X509_get0_pubkey(iss);
        } else {
                /* RFC 6960 §4.2.2.2: a delegated responder, certified by the CA itself. */
                if (!issuer_matches(signer, iss) ||
                    gmca_cert_verify_signed_by(signer, X509_get0_pubkey(iss), c->o->sm2_id, &e) !=
                        0) {
                        why_set(why, wl,
                                "OCSP response: responder certificate not issued by the "
                                "certificate's CA");
                        goto out;
                }
                if (!(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) ||
                    !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN)) {
                        why_set(why, wl,
                                "OCSP response: RFC 6960 §4.2.2.2: responder lacks "
                                "extKeyUsage OCSPSigning");
                        goto out;
                }
                if (time_vs(X509_get0_notBefore(signer), c->now) != -1 ||
                    time_vs(X509_get0_notAfter(signer), c->now) != 1) {
                        why_set(why, wl, "OCSP response: responder certificate not valid now");
                        goto out;
                }
                key = X509_get0_pubkey(signer);
        }
        if (key == NULL ||
            (tbslen = i2d_OCSP_RESPDATA((OCSP_RESPDATA *)OCSP_resp_get0_respdata(bs), &tbs)) <= 0) {
                why_set(why, wl, "OCSP response: cannot encode ResponseData");
                goto out;
        }
        if (gmca_sm2_verify(key, c->o->sm2_id, tbs, (size_t)tbslen, ASN1_STRING_get0_data(sig),
                            (size_t)ASN1_STRING_length(sig), &e) != 0) {
                why_set(why, wl, "OCSP response: SM2 signature does not verify with the ID");
                goto out;
        }
        rc = 0;
out:
        OPENSSL_free(tbs);
        sk_X509_free(extra);
        gmca_ossl_clear();
        return rc;
}

static enum rs ocsp_status(struct ctx *c, size_t depth, X509 *x, X509 *iss, char *why, size_t wl)
{
        char url[URL_MAX], dn[GMCA_DN_MAX];
        OCSP_REQUEST *req = NULL;
        OCSP_CERTID *id = NULL, *id2 = NULL;
        OCSP_RESPONSE *resp = NULL;
        OCSP_BASICRESP *bs = NULL;
        ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
        uint8_t *der = NULL, *body = NULL;
        size_t bodylen = 0;
        struct gmca_error e;
        int derlen, status, reason, nonce;
        enum rs r = RS_INVALID;

        /* The configured responder answers for the target; CAs keep their AIA URLs. */
        if (c->o->ocsp_url != NULL && depth == 0) {
                if (gmca_strlcpy(url, c->o->ocsp_url, sizeof(url)) >= sizeof(url))
                        url[0] = '\0';
        } else if (aia_url(x, NID_ad_OCSP, url, sizeof(url)) != 0) {
                why_set(why, wl, "%s has no http OCSP URL", subj(x, dn, sizeof(dn)));
                return RS_UNAVAIL;
        }
        if (!c->o->network) {
                why_set(why, wl, "OCSP %s: not asked (network not allowed)", url);
                return RS_UNAVAIL;
        }
        /* RFC 6960 §4.1.1 with an SM3 CertID (GMT-REFERENCE §3.3), and a nonce. */
        if ((id = OCSP_cert_to_id(EVP_sm3(), x, iss)) == NULL ||
            (id2 = OCSP_CERTID_dup(id)) == NULL || (req = OCSP_REQUEST_new()) == NULL ||
            OCSP_request_add0_id(req, id2) == NULL) {
                OCSP_CERTID_free(id2);
                why_set(why, wl, "OCSP: cannot build the request");
                goto out;
        }
        if (OCSP_request_add1_nonce(req, NULL, OCSP_NONCE_LEN) != 1 ||
            (derlen = i2d_OCSP_REQUEST(req, &der)) <= 0) {
                why_set(why, wl, "OCSP: cannot build the request");
                goto out;
        }
        if (http_fetch(c, url, der, (size_t)derlen, "application/ocsp-request", GMCA_VFY_OCSP_MAX,
                       &body, &bodylen, why, wl) != 0) {
                r = RS_UNAVAIL;
                goto out;
        }
        gmca_error_clear(&e);
        if ((resp = gmca_ocsp_response_parse(body, bodylen, &e)) == NULL) {
                why_set(why, wl, "OCSP %s: %s", url, e.msg);
                goto out;
        }
        if ((status = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
                why_set(why, wl, "OCSP %s: responder answered %s", url,
                        OCSP_response_status_str(status));
                r = RS_UNAVAIL;
                goto out;
        }
        if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
                why_set(why, wl, "OCSP %s: no basic response", url);
                goto out;
        }
        if (ocsp_sig_ok(c, bs, iss, why, wl) != 0)
                goto out;
        nonce = OCSP_check_nonce(req, bs);
        if (nonce == 0 || (nonce == -1 && !c->o->ocsp_nonce_optional)) {
                why_set(why, wl, "OCSP %s: RFC 8954: nonce %s", url,
                        nonce == 0 ? "does not match the request" : "not echoed");
                goto out;
        }
        if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1) {
                why_set(why, wl, "OCSP %s: no status for this certificate in the response", url);
                goto out;
        }
        if (time_vs(thisupd, c->now + GMCA_VFY_SKEW) != -1) {
                why_set(why, wl, "OCSP %s: thisUpdate is in the future", url);
                goto out;
        }
        if ((nextupd != NULL && time_vs(nextupd, c->at - GMCA_VFY_SKEW) != 1) ||
            (nextupd == NULL && time_vs(thisupd, c->at - OCSP_NO_NEXT_MAX_AGE) != 1)) {
                why_set(why, wl, "OCSP %s: response is stale at the validation time", url);
                r = RS_UNAVAIL;
                goto out;
        }
        switch (status) {
        case V_OCSP_CERTSTATUS_GOOD:
                r = RS_GOOD;
                break;
        case V_OCSP_CERTSTATUS_REVOKED:
                if (rev != NULL && time_vs(rev, c->at) == 1) {
                        r = RS_GOOD; /* revoked after the validation time */
                        break;
                }
                /* The CRL's names (RFC 5280 §5.3.1), not OpenSSL's table, which lacks some. */
                why_set(why, wl, "revoked (%s), said OCSP %s",
                        reason >= 0 && gmca_crl_reason_name(reason) != NULL
                            ? gmca_crl_reason_name(reason)
                            : "no reason",
                        url);
                r = RS_REVOKED;
                break;
        default:
                why_set(why, wl, "OCSP %s: status unknown", url);
                r = RS_UNAVAIL;
                break;
        }
out:
        OPENSSL_free(der);
        OPENSSL_free(body);
        OCSP_CERTID_free(id);
        OCSP_REQUEST_free(req);
        OCSP_RESPONSE_free(resp);
        OCSP_BASICRESP_free(bs);
        gmca_ossl_clear();
        return r;
}

/* ---- path checks ---------------------------------------------------------- */

/* Extensions this validator understands, or that carry no constraint. */
static int ext_known(int nid)
{
        static const int known[] = {
            NID_basic_constraints,       NID_key_usage,
            NID_ext_key_usage,           NID_subject_alt_name,
            NID_issuer_alt_name,         NID_certificate_policies,
            NID_subject_key_identifier,  NID_authority_key_identifier,
            NID_crl_distribution_points, NID_info_access,
            NID_id_pkix_OCSP_noCheck,
        };

        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (known[i] == nid)
                        return 1;
        return 0;
}

/* Checks on one certificate of the path by itself. 0 if fine. */
static int cert_ok(struct ctx *c, X509 *x, int depth)
{
        char dn[GMCA_DN_MAX];
        int nb, na;

        if (X509_check_purpose(x, -1, 0) != 1 || (X509_get_extension_flags(x) & EXFLAG_INVALID))
                return fail(c, GMCA_VFY_MALFORMED, depth, "%s: malformed extension",
                            subj(x, dn, sizeof(dn))) -
                       1;
        for (int i = 0; i < X509_get_ext_count(x); i++) {
                X509_EXTENSION *ext = X509_get_ext(x, i);
                char oid[80];

                if (!X509_EXTENSION_get_critical(ext) ||
                    ext_known(OBJ_obj2nid(X509_EXTENSION_get_object(ext))))
                        continue;
                OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1);
                return fail(c, GMCA_VFY_CRITICAL_EXTENSION, depth,
                            "%s: RFC 5280 §4.2: unknown critical extension %s",
                            subj(x, dn, sizeof(dn)), oid) -
                       1;
        }
        nb = time_vs(X509_get0_notBefore(x), c->at);
        na = time_vs(X509_get0_notAfter(x), c->at);
        if (nb == 0 || na == 0)
                return fail(c, GMCA_VFY_MALFORMED, depth, "%s: unreadable validity",
                            subj(x, dn, sizeof(dn))) -
                       1;
        if (nb == 1)
                return fail(c, GMCA_VFY_NOT_YET_VALID, depth, "%s: not valid before %s",
                            subj(x, dn, sizeof(dn)), "its notBefore") -
                       1;
        if (na == -1)
                return fail(c, GMCA_VFY_EXPIRED, depth, "%s: expired (notAfter passed)",
                            subj(x, dn, sizeof(dn))) -
                       1;
        return 0;
}

/* Checks on path[j] as the issuer of path[j-1]. 0 if fine. */
static int issuer_ok(struct ctx *c, size_t j)
{
        X509 *iss = c->path[j];
        uint32_t flags = X509_get_extension_flags(iss);
        long pl = X509_get_pathlen(iss);
        char dn[GMCA_DN_MAX];
        long below = 0;

        if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
                return fail(c, GMCA_VFY_NOT_CA, (int)j,
                            "%s: RFC 5280 §4.2.1.9: issuer is not a CA (basicConstraints)",
                            subj(iss, dn, sizeof(dn))) -
                       1;
        if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(iss) & KU_KEY_CERT_SIGN))
                return fail(c, GMCA_VFY_ISSUER_KEY_USAGE, (int)j,
                            "%s: RFC 5280 §4.2.1.3: issuer's keyUsage lacks keyCertSign",
                            subj(iss, dn, sizeof(dn))) -
                       1;
        for (size_t k = 1; k < j; k++)
                below += !self_issued(c->path[k]);
        if (pl >= 0 && below > pl)
                return fail(c, GMCA_VFY_PATH_LEN, (int)j,
                            "%s: pathLenConstraint %ld exceeded (%ld CA certificates below)",
                            subj(iss, dn, sizeof(dn)), pl, below) -
                       1;
        return 0;
}

/* The target's keyUsage against the intended use. */
static int use_ok(struct ctx *c, X509 *x)
{
        uint32_t ku = X509_get_key_usage(x), need;
        const char *what;
        char dn[GMCA_DN_MAX];

        switch (c->o->use) {
        case GMCA_VFY_USE_SIGNATURE:
                need = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
                what = "signature (digitalSignature or nonRepudiation)";
                break;
        case GMCA_VFY_USE_ENCRYPTION:
                need = KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT | KU_KEY_AGREEMENT;
                what = "encryption (keyEncipherment, dataEncipherment or keyAgreement)";
                break;
        default:
                return 0;
        }
        if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) && !(ku & need))
                return fail(c, GMCA_VFY_WRONG_USE, 0,
                            "%s: GM/T 0015: keyUsage does not allow %s (a %s certificate)",
                            subj(x, dn, sizeof(dn)), what,
                            c->o->use == GMCA_VFY_USE_SIGNATURE ? "encryption" : "signature") -
                       1;
        return 0;
}

/* Revocation status of path[i] under the policy; 0 if acceptable. */
static int revocation_ok(struct ctx *c, size_t i)
{
        X509 *x = c->path[i], *iss = c->path[i + 1];
        char w1[GMCA_ERROR_MSG_MAX] = "", w2[GMCA_ERROR_MSG_MAX] = "";
        const char *src = "none";
        enum gmca_vfy_reason invalid = GMCA_VFY_CRL_INVALID;
        enum rs r;

        switch (c->o->revocation) {
        case GMCA_VFY_REV_NONE:
                return 0;
        case GMCA_VFY_REV_CRL:
                r = crl_status(c, x, iss, w1, sizeof(w1));
                src = "crl";
                break;
        case GMCA_VFY_REV_OCSP:
                r = ocsp_status(c, i, x, iss, w1, sizeof(w1));
                src = "ocsp";
                invalid = GMCA_VFY_OCSP_INVALID;
                break;
        default:
                r = ocsp_status(c, i, x, iss, w1, sizeof(w1));
                src = "ocsp";
                invalid = GMCA_VFY_OCSP_INVALID;
                if (r == RS_UNAVAIL) {
                        r = crl_status(c, x, iss, w2, sizeof(w2));
                        src = "crl";
                        invalid = GMCA_VFY_CRL_INVALID;
                        if (r == RS_UNAVAIL) {
                                size_t n = strlen(w1);

                                snprintf(w1 + n, sizeof(w1) - n, "; %s", w2);
                        } else {
                                memcpy(w1, w2, sizeof(w1));
                        }
                }
                break;
        }
        switch (r) {
        case RS_GOOD:
                break;
        case RS_REVOKED:
                return fail(c, GMCA_VFY_REVOKED, (int)i, "%s", w1) - 1;
        case RS_INVALID:
                return fail(c, invalid, (int)i, "%s", w1) - 1;
        case RS_UNAVAIL:
                if (c->o->revocation != GMCA_VFY_REV_SOFT_FAIL)
                        return fail(c, GMCA_VFY_REVOCATION_UNAVAILABLE, (int)i,
                                    "revocation status unavailable: %s", w1) -
                               1;
                src = "unavailable";
                break;
        }
        if (i == 0)
                gmca_strlcpy(c->res->revocation, src, sizeof(c->res->revocation));
        return 0;
}

/* Check the complete path (its last element is a trust anchor). 1 valid, 0 not. */
static int check_path(struct ctx *c)
{
        size_t n = c->plen;
        struct gmca_error e;
        char dn[GMCA_DN_MAX];

        c->paths++;
        for (size_t i = n; i-- > 0;) {
                if (cert_ok(c, c->path[i], (int)i) != 0)
                        return 0;
                if (i + 1 == n)
                        continue;
                if (issuer_ok(c, i + 1) != 0)
                        return 0;
                gmca_error_clear(&e);
                if (gmca_cert_verify_signed_by(c->path[i], X509_get0_pubkey(c->path[i + 1]),
                                               c->o->sm2_id, &e) != 0)
                        return fail(c, GMCA_VFY_BAD_SIGNATURE, (int)i,
                                    "%s: SM2 signature does not verify with the issuer's key and "
                                    "ID: %s",
                                    subj(c->path[i], dn, sizeof(dn)), e.msg);
        }
        if (use_ok(c, c->path[0]) != 0)
                return 0;
        gmca_strlcpy(c->res->revocation, "none", sizeof(c->res->revocation));
        /* Top down, so that a revoked CA is reported before its subjects. */
        for (size_t i = n - 1; i-- > 0;)
                if (revocation_ok(c, i) != 0)
                        return 0;
        return 1;
}

/* Fetch x's caIssuers certificate into the pool; 0 if one was added. */
static int fetch_issuer(struct ctx *c, X509 *x)
{
        char url[URL_MAX], why[GMCA_ERROR_MSG_MAX];
        uint8_t *buf = NULL;
        size_t len = 0;
        struct gmca_error e;
        X509 *got;

        if (!c->o->network || c->nfetched >= FETCHED_MAX || c->npool >= POOL_MAX ||
            aia_url(x, NID_ad_ca_issuers, url, sizeof(url)) != 0)
                return -1;
        if (http_fetch(c, url, NULL, 0, NULL, GMCA_CERT_MAX, &buf, &len, why, sizeof(why)) != 0)
                return -1;
        gmca_error_clear(&e);
        got = gmca_cert_parse(buf, len, &e);
        OPENSSL_free(buf);
        if (got == NULL)
                return -1;
        for (size_t i = 0; i < c->npool; i++)
                if (X509_cmp(c->pool[i], got) == 0) {
                        X509_free(got);
                        return -1;
                }
        c->fetched[c->nfetched++] = got;
        c->trusted[c->npool] = 0;
        c->pool[c->npool++] = got;
        return 0;
}

/* ---- chain directory ----------------------------------------------------- */

static int dir_candidate(const char *name)
{
        static const char *const exts[] = {".pem", ".crt", ".der"};
        size_t n = strlen(name);

        if (name[0] == '.' || n <= 4 || n > DIR_NAME_MAX)
                return 0;
        for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
                if (strcmp(name + n - 4, exts[i]) == 0)
                        return 1;
        return 0;
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read one candidate file of the chain directory into the pool. */
static int dir_load_one(struct ctx *c, const char *dir, const char *name, struct gmca_error *e)
{
        char path[DIR_PATH_MAX];
        struct gmca_error fe;
        struct stat st;
        uint8_t *buf = NULL;
        size_t len = 0;
        X509 *x;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return gmca_error_set(e, GMCA_ERR_LIMIT, "chain directory %s: path too long", dir);
        /* Subdirectories, sockets and the like with a matching name are not candidates. */
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                return 0;
        if (c->ndir >= GMCA_VFY_DIR_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "chain directory %s: more than %d certificate files", dir,
                                      GMCA_VFY_DIR_MAX);
        gmca_error_clear(&fe);
        if (gmca_read_file(path, GMCA_CERT_MAX, &buf, &len, &fe) != 0)
                return gmca_error_set(e, fe.code, "chain directory: %s", fe.msg);
        x = gmca_cert_parse(buf, len, &fe);
        free(buf);
        if (x == NULL)
                return gmca_error_set(e, fe.code, "chain directory: %s: %s", path, fe.msg);
        c->dir[c->ndir++] = x;
        c->trusted[c->npool] = 0;
        c->pool[c->npool++] = x;
        return 0;
}

/*
 * Add the candidates of opts->chain_dir to the pool, in name order so
 * that a validation does not depend on the order readdir happens to give.
 */
static int dir_load(struct ctx *c, const char *dir, struct gmca_error *e)
{
        char *names[GMCA_VFY_DIR_MAX + 1];
        size_t n = 0;
        struct dirent *d;
        DIR *dh;
        int rc = 0;

        if ((dh = opendir(dir)) == NULL)
                return gmca_error_set(e, errno == ENOENT ? GMCA_ERR_NOTFOUND : GMCA_ERR_IO,
                                      "chain directory %s: %s", dir, strerror(errno));
        while (rc == 0 && (d = readdir(dh)) != NULL) {
                if (!dir_candidate(d->d_name))
                        continue;
                if (n > GMCA_VFY_DIR_MAX)
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                            "chain directory %s: more than %d certificate files",
                                            dir, GMCA_VFY_DIR_MAX);
                else if ((names[n] = strdup(d->d_name)) == NULL)
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "chain directory: out of memory");
                else
                        n++;
        }
        closedir(dh);
        qsort(names, n, sizeof(names[0]), name_cmp);
        for (size_t i = 0; rc == 0 && i < n; i++)
                rc = dir_load_one(c, dir, names[i], e);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        return rc;
}

static int in_path(struct ctx *c, X509 *x)
{
        for (size_t i = 0; i < c->plen; i++)
                if (c->path[i] == x || X509_cmp(c->path[i], x) == 0)
                        return 1;
        return 0;
}

/* Depth-first extension of the path; 1 when a valid path was found. */
static int extend(struct ctx *c)
{
        X509 *cur = c->path[c->plen - 1];
        char dn[GMCA_DN_MAX];
        int any = 0;

        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < c->npool && c->paths < GMCA_VFY_PATHS_MAX; i++) {
                        X509 *cand = c->pool[i];

                        if (!issuer_matches(cur, cand) || in_path(c, cand))
                                continue;
                        any = 1;
                        if (c->plen >= GMCA_VFY_DEPTH_MAX)
                                continue;
                        c->path[c->plen++] = cand;
                        if (c->trusted[i] ? check_path(c) : extend(c)) {
                                return 1;
                        }
                        c->plen--;
                }
                if (any || pass == 1 || fetch_issuer(c, cur) != 0)
                        break;
        }
        if (!any)
                fail(c, GMCA_VFY_NO_ISSUER, (int)c->plen - 1,
                     "no issuer of %s among the trust anchors and intermediates",
                     subj(cur, dn, sizeof(dn)));
        else if (c->plen >= GMCA_VFY_DEPTH_MAX)
                fail(c, GMCA_VFY_NO_ISSUER, (int)c->plen - 1, "path longer than %d certificates",
                     GMCA_VFY_DEPTH_MAX);
        return 0;
}

int gmca_validate(X509 *cert, const struct gmca_vfy_opts *opts, struct gmca_vfy_result *res,
                  struct gmca_error *e)
{
        struct ctx c;
        int ok = 0, rc;

        memset(res, 0, sizeof(*res));
        res->depth = -1;
        gmca_strlcpy(res->revocation, "none", sizeof(res->revocation));
        if (cert == NULL || opts == NULL || opts->nanchors == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "validate: a certificate and at least "
                                      "one trust anchor are needed");
        if (opts->nanchors + opts->nintermediates > GMCA_VFY_CANDIDATES_MAX - FETCHED_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "validate: at most %d anchors and intermediates",
                                      GMCA_VFY_CANDIDATES_MAX - FETCHED_MAX);
        if ((unsigned)opts->use > GMCA_VFY_USE_ENCRYPTION ||
            (unsigned)opts->revocation > GMCA_VFY_REV_SOFT_FAIL || opts->timeout < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "validate: bad options");
        memset(&c, 0, sizeof(c));
        c.o = opts;
        c.res = res;
        c.now = gmca_now();
        c.at = opts->at != 0 ? opts->at : c.now;
        c.timeout = opts->timeout != 0 ? opts->timeout : DEFAULT_TIMEOUT;
        for (size_t i = 0; i < opts->nanchors; i++) {
                c.trusted[c.npool] = 1;
                c.pool[c.npool++] = opts->anchors[i];
        }
        for (size_t i = 0; i < opts->nintermediates; i++)
                c.pool[c.npool++] = opts->intermediates[i];
        if (opts->chain_dir != NULL && (rc = dir_load(&c, opts->chain_dir, e)) != 0)
                goto out;
        c.path[c.plen++] = cert;
        /* A trust anchor given as the target stands by itself. */
        for (size_t i = 0; !ok && i < opts->nanchors; i++)
                if (X509_cmp(opts->anchors[i], cert) == 0)
                        ok = check_path(&c);
        if (!ok && res->reason == GMCA_VFY_OK)
                ok = extend(&c);
        if (ok) {
                memset(res->msg, 0, sizeof(res->msg));
                res->reason = GMCA_VFY_OK;
                res->depth = -1;
                snapshot(&c);
                rc = 0;
                goto out;
        }
        if (res->reason == GMCA_VFY_OK) {
                res->reason = GMCA_VFY_NO_ISSUER;
                gmca_strlcpy(res->msg, "no path to a trust anchor", sizeof(res->msg));
        }
        rc = gmca_error_set(e, GMCA_ERR_VERIFY, "%s", res->msg);
out:
        for (size_t i = 0; i < c.nfetched; i++)
                X509_free(c.fetched[i]);
        for (size_t i = 0; i < c.ndir; i++)
                X509_free(c.dir[i]);
        gmca_ossl_clear();
        return rc;
}
