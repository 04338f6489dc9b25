/*
 * POST /ocsp and GET /ocsp/{base64}: the RFC 6960 responder over HTTP
 * (RFC 6960 Appendix A, RFC 5019 §5) in the front. Anyone may ask; the
 * answer comes from the store through gmca_ocsp_respond, signed by the
 * delegated responder key of the CA asked about, which DESIGN.md lets live
 * in the front (loaded at start, shared read-only by the worker threads
 * like the TSA key: each signature has its own EVP_MD_CTX).
 *
 * An OCSP error (malformedRequest, unauthorized, tryLater, internalError)
 * is an OCSPResponse with status 200, as RFC 6960 Appendix A.1 wants;
 * HTTP errors are for what is not an OCSP request at all: 404 (no
 * responder configured), 405, 413 (body over GMCA_OCSP_REQ_MAX), 415
 * (POST without Content-Type application/ocsp-request), 500 and 503.
 *
 * Caching (RFC 5019 §6.2): a successful GET answer without a nonce gets
 * Cache-Control max-age up to nextUpdate, public, no-transform,
 * must-revalidate, with Last-Modified (thisUpdate), Expires (nextUpdate)
 * and ETag (SM3 of the response). POST answers, answers with a nonce and
 * error statuses are not to be cached (no-store).
 *
 * Fast path (ocsp.h): the workers share one struct gmca_ocsp_cache of
 * pre-signed responses (one mutex held only to look up or copy ~1 KB;
 * signing is outside it), and a refresh thread re-signs entries ahead of
 * nextUpdate - margin so that a busy certificate never waits for a
 * signature. Freshness after a revocation does not depend on this thread:
 * every request checks the store (ocsp.h).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "ca.h"
#include "crypto.h"
#include "ocsp.h"
#include "serve_internal.h"
#include "util.h"

static const char OCSP_REQ_TYPE[] = "application/ocsp-request";
static const char OCSP_RESP_TYPE[] = "application/ocsp-response";

/* IMF-fixdate (RFC 9110 §5.6.7). */
static void imf_date(int64_t t, char *buf, size_t len)
{
        static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        time_t tt = (time_t)t;
        struct tm tm;

        if (gmtime_r(&tt, &tm) == NULL) {
                buf[0] = '\0';
                return;
        }
        snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday,
                 mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int pct_hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int b64_char(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/*
 * The DER request of a GET path: percent-decoding (RFC 3986 §2.1), then
 * base64 (RFC 4648 §4, padded). Into out (at most cap bytes); -1 if the
 * path is not that.
 */
static int ocsp_get_der(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
        char b64[SERVE_TARGET_MAX + 1];
        size_t n = 0, pad = 0;
        int l;

        for (; *s != '\0'; s++) {
                char c = *s;

                if (c == '%') {
                        int hi = pct_hexval(s[1]), lo = hi < 0 ? -1 : pct_hexval(s[2]);

                        if (lo < 0)
                                return -1;
                        c = (char)(hi * 16 + lo);
                        s += 2;
                }
                if (n >= sizeof(b64) - 1)
                        return -1;
                b64[n++] = c;
        }
        b64[n] = '\0';
        if (n == 0 || n % 4 != 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (b64[i] == '=' && i >= n - 2 && (i == n - 1 || b64[n - 1] == '='))
                        pad++;
                else if (!b64_char((unsigned char)b64[i]))
                        return -1;
        }
        if (n / 4 * 3 > cap || (l = EVP_DecodeBlock(out, (unsigned char *)b64, (int)n)) < 0 ||
            (size_t)l < pad)
                return -1;
        *outlen = (size_t)l - pad;
        return 0;
}

/* RFC 5019 §6.2 headers for a cacheable answer; the ETag is the SM3 of the response. */
static void ocsp_cache_headers(struct serve_reply *out, const struct gmca_ocsp_answer *a)
{
        char hex[2 * GMCA_SM3_LEN + 1];
        int64_t now = (int64_t)gmca_now(), age = a->next_update - now;

        if (!a->has_digest)
                return; /* no validator: leave it uncacheable */
        if (age < 0)
                age = 0;
        gmca_hex(a->digest, sizeof(a->digest), hex);
        snprintf(out->cache, sizeof(out->cache),
                 "max-age=%lld, public, no-transform, must-revalidate", (long long)age);
        imf_date(a->this_update, out->last_modified, sizeof(out->last_modified));
        imf_date(a->next_update, out->expires, sizeof(out->expires));
        snprintf(out->etag, sizeof(out->etag), "\"%s\"", hex);
}

void serve_ocsp(struct serve_worker *w, const struct serve_request *rq, const char *path,
                struct serve_reply *out)
{
        const struct gmca_serve_config *cfg = w != NULL ? w->cfg : NULL;
        struct gmca_ocsp_opts o = {0};
        struct gmca_ocsp_answer a;
        struct gmca_error e = {0};
        static const uint8_t none[1] = {0};
        uint8_t getbuf[SERVE_TARGET_MAX], *resp = NULL;
        const uint8_t *req;
        size_t reqlen = 0, resplen = 0;
        int is_get = strcmp(rq->method, "GET") == 0;
        int bare_path = strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0;

        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                return;
        }
        if (cfg == NULL || cfg->nocsp == 0) {
                serve_reply_error(out, 404, "not_found",
                                  "no OCSP responder here (gmca serve --ocsp-cert)");
                return;
        }
        if (bare_path ? strcmp(rq->method, "POST") != 0 : !is_get) {
                gmca_strlcpy(out->allow, bare_path ? "POST" : "GET", sizeof(out->allow));
                serve_reply_error(out, 405, "method_not_allowed",
                                  "%s is not allowed here (allowed: %s)", rq->method, out->allow);
                return;
        }
        if (is_get) {
                /* A path that is not base64 is still an OCSP request gone wrong. */
                if (ocsp_get_der(path + strlen("/ocsp/"), getbuf, sizeof(getbuf), &reqlen) != 0)
                        reqlen = 0;
                req = reqlen > 0 ? getbuf : none;
        } else {
                if (rq->ctype_bad || !serve_media_type_is(rq->ctype, OCSP_REQ_TYPE)) {
                        serve_reply_error(out, 415, "unsupported_media_type",
                                          "Content-Type must be %s (RFC 6960 Appendix A.1)",
                                          OCSP_REQ_TYPE);
                        return;
                }
                if (rq->len > GMCA_OCSP_REQ_MAX) {
                        serve_reply_error(out, 413, "too_large", "OCSP request over %d bytes",
                                          GMCA_OCSP_REQ_MAX);
                        return;
                }
                req = rq->body != NULL ? rq->body : none;
                reqlen = rq->len;
        }
        o.validity = cfg->ocsp_validity;
        o.cache = w->ocsp_cache;
        if (gmca_ocsp_respond(w->store, cfg->ocsp, cfg->nocsp, &o, req, reqlen, &resp, &resplen, &a,
                              &e) != 0) {
                serve_reply_error(out, 500, "internal", "OCSP: %s", e.msg);
                return;
        }
        serve_reply_bytes(out, 200, OCSP_RESP_TYPE, resp, resplen);
        if (is_get && out->status == 200 && a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL &&
            !a.has_nonce)
                ocsp_cache_headers(out, &a);
        OPENSSL_free(resp);
}

/* ---- the fast path: cache and refresh thread ----------------------------- */

#define REFRESH_PERIOD_MAX 60 /* seconds between refresh passes, at most */

struct serve_ocsp_fast {
        const struct gmca_serve_config *cfg;
        struct gmca_ocsp_cache *cache;
        pthread_t thread;
        int running;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        int stop;
        char db[PATH_MAX];
};

static void *refresh_run(void *arg)
{
        struct serve_ocsp_fast *f = arg;
        const struct gmca_serve_config *cfg = f->cfg;
        struct gmca_ocsp_opts o = {.validity = cfg->ocsp_validity};
        int64_t validity = o.validity > 0 ? o.validity : GMCA_OCSP_VALIDITY_DEFAULT;
        int64_t period = validity / 16;
        struct gmca_store *store = NULL;

        if (period < 1)
                period = 1;
        if (period > REFRESH_PERIOD_MAX)
                period = REFRESH_PERIOD_MAX;
        pthread_mutex_lock(&f->lock);
        while (!f->stop) {
                struct gmca_error e = {0};
                struct timespec ts;
                int rc;

                pthread_mutex_unlock(&f->lock);
                if (store == NULL && (store = gmca_store_open(f->db, &e)) == NULL)
                        fprintf(stderr, "gmca serve: OCSP refresh: %s\n", e.msg);
                /* Two periods ahead: an entry is re-signed before any request finds it stale. */
                if (store != NULL &&
                    (rc = gmca_ocsp_cache_refresh(f->cache, store, cfg->ocsp, cfg->nocsp, &o,
                                                  2 * period, &e)) < 0) {
                        fprintf(stderr, "gmca serve: OCSP refresh: %s\n", e.msg);
                        gmca_store_close(store);
                        store = NULL;
                }
                pthread_mutex_lock(&f->lock);
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)period;
                while (!f->stop && pthread_cond_timedwait(&f->wake, &f->lock, &ts) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&f->lock);
        gmca_store_close(store);
        return NULL;
}

struct serve_ocsp_fast *serve_ocsp_fast_start(const struct gmca_serve_config *cfg,
                                              struct gmca_error *e)
{
        struct serve_ocsp_fast *f;
        int n;

        if (cfg->nocsp == 0)
                return NULL;
        if ((f = calloc(1, sizeof(*f))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        f->cfg = cfg;
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->wake, NULL);
        n = snprintf(f->db, sizeof(f->db), "%s/%s", cfg->dir, GMCA_DB_FILE);
        if (n < 0 || (size_t)n >= sizeof(f->db)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", cfg->dir);
                goto fail;
        }
        if ((f->cache = gmca_ocsp_cache_new(0)) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "OCSP: out of memory for the cache");
                goto fail;
        }
        if (pthread_create(&f->thread, NULL, refresh_run, f) != 0) {
                gmca_error_set(e, GMCA_ERR_INTERNAL, "cannot start the OCSP refresh thread");
                goto fail;
        }
        f->running = 1;
        return f;
fail:
        serve_ocsp_fast_stop(f);
        return NULL;
}

struct gmca_ocsp_cache *serve_ocsp_fast_cache(struct serve_ocsp_fast *f)
{
        return f != NULL ? f->cache : NULL;
}

void serve_ocsp_fast_stop(struct serve_ocsp_fast *f)
{
        if (f == NULL)
                return;
        if (f->running) {
                pthread_mutex_lock(&f->lock);
                f->stop = 1;
                pthread_cond_signal(&f->wake);
                pthread_mutex_unlock(&f->lock);
                pthread_join(f->thread, NULL);
        }
        gmca_ocsp_cache_free(f->cache);
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->lock);
        free(f);
}
