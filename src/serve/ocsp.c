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
 *
 * Responders change while serving (issue 5 item 2): --ocsp-auto
 * responders are renewed through the CA engine by the same thread
 * (ocsp_rotate.c), and CA-signed ones sign through the engine's op 'O'.
 * The workers answer from a refcounted responder set: a request takes a
 * reference for its whole answer, a rotation builds a new set and swaps
 * the pointer under a mutex, and the old set is freed by whoever drops its
 * last reference — so no request sees a half-replaced responder and none
 * waits for a rotation. Cached responses signed under the old certificate
 * stay valid until its notAfter (the cache caps them at it).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
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
#include "ocsp_rotate.h"
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

/* ---- the responder set, swapped whole when a responder rotates ---------- */

#define SET_MAX (3 * SERVE_OCSP_CAS_MAX) /* static, auto and CA-signed responders */

/*
 * What the workers answer with: the responders and what they own (the
 * auto responders' certificates, keys and signers, by reference). A
 * request takes a reference for its whole answer; a rotation builds a new
 * set and swaps the pointer; the old set is freed by whoever drops its
 * last reference. So no request ever sees a responder half replaced.
 */
struct ocsp_set {
        unsigned refs; /* under serve_ocsp_fast.set_lock */
        size_t n;
        struct gmca_ocsp_responder r[SET_MAX];
        X509 *cert[SET_MAX];
        EVP_PKEY *key[SET_MAX];
        struct gmca_pkey_signer ps[SET_MAX];
};

struct serve_ocsp_fast {
        const struct gmca_serve_config *cfg;
        struct gmca_ocsp_cache *cache;
        pthread_t thread;
        int running;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        int stop;
        char db[PATH_MAX];
        struct gmca_store *store; /* the thread's (and the start's, before the thread) */
        pthread_mutex_t set_lock;
        struct ocsp_set *set;
        /* Owned by the thread once it runs. */
        struct serve_ocsp_auto autos[SERVE_OCSP_CAS_MAX];
        size_t nautos;
        struct gmca_engine_ra ra; /* the RA client that asks for responder certificates */
        char sock[PATH_MAX];
        /* CA-signed: fixed for the life of the front. */
        struct serve_ocsp_engine_signer esign[SERVE_OCSP_CAS_MAX];
        struct gmca_ocsp_responder ca_r[SERVE_OCSP_CAS_MAX];
        size_t nca;
};

static void set_free(struct ocsp_set *s)
{
        if (s == NULL)
                return;
        for (size_t i = 0; i < s->n; i++) {
                gmca_ocsp_responder_clear(&s->r[i]);
                X509_free(s->cert[i]);
                EVP_PKEY_free(s->key[i]);
        }
        OPENSSL_cleanse(s, sizeof(*s));
        free(s);
}

/* Add a copy of r (signer: signer) to s, taking references on what it uses. */
static void set_add(struct ocsp_set *s, const struct gmca_ocsp_responder *r, X509 *cert,
                    EVP_PKEY *key)
{
        struct gmca_error ignored = {0};
        size_t i = s->n++;

        s->r[i] = *r;
        X509_up_ref(r->ca);
        if (cert == NULL || key == NULL)
                return;
        /* The key was checked as SM2 when it was adopted; should that fail, leave it out. */
        if (gmca_pkey_signer_init(&s->ps[i], key, NULL, &ignored) != 0) {
                gmca_ocsp_responder_clear(&s->r[i]);
                s->n--;
                return;
        }
        X509_up_ref(cert);
        EVP_PKEY_up_ref(key);
        s->cert[i] = cert;
        s->key[i] = key;
        s->r[i].cert = cert;
        s->r[i].signer = &s->ps[i].base;
}

/* A set of every responder the front has now; NULL when out of memory. */
static struct ocsp_set *set_build(struct serve_ocsp_fast *f)
{
        const struct gmca_serve_config *cfg = f->cfg;
        struct ocsp_set *s = calloc(1, sizeof(*s));

        if (s == NULL)
                return NULL;
        s->refs = 1;
        for (size_t i = 0; i < cfg->nocsp && s->n < SET_MAX; i++)
                set_add(s, &cfg->ocsp[i], NULL, NULL);
        for (size_t i = 0; i < f->nautos && s->n < SET_MAX; i++)
                if (f->autos[i].cert != NULL)
                        set_add(s, &f->autos[i].r, f->autos[i].cert, f->autos[i].key);
        for (size_t i = 0; i < f->nca && s->n < SET_MAX; i++)
                set_add(s, &f->ca_r[i], NULL, NULL);
        return s;
}

static struct ocsp_set *set_get(struct serve_ocsp_fast *f)
{
        struct ocsp_set *s;

        if (f == NULL)
                return NULL;
        pthread_mutex_lock(&f->set_lock);
        if ((s = f->set) != NULL)
                s->refs++;
        pthread_mutex_unlock(&f->set_lock);
        return s;
}

static void set_put(struct serve_ocsp_fast *f, struct ocsp_set *s)
{
        int last;

        if (f == NULL || s == NULL)
                return;
        pthread_mutex_lock(&f->set_lock);
        last = --s->refs == 0;
        pthread_mutex_unlock(&f->set_lock);
        if (last)
                set_free(s);
}

/* Make s the set the next requests use; the old one goes when its last request ends. */
static void set_swap(struct serve_ocsp_fast *f, struct ocsp_set *s)
{
        struct ocsp_set *old;

        pthread_mutex_lock(&f->set_lock);
        old = f->set;
        f->set = s;
        pthread_mutex_unlock(&f->set_lock);
        set_put(f, old);
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
        struct ocsp_set *set;
        int rc, is_get = strcmp(rq->method, "GET") == 0;
        int bare_path = strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0;

        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                return;
        }
        if (cfg == NULL || w->ocsp == NULL) {
                serve_reply_error(out, 404, "not_found",
                                  "no OCSP responder here (gmca serve --ocsp-cert, --ocsp-auto, "
                                  "--ocsp-ca-signed)");
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
        set = set_get(w->ocsp);
        rc = gmca_ocsp_respond(w->store, set != NULL ? set->r : NULL, set != NULL ? set->n : 0, &o,
                               req, reqlen, &resp, &resplen, &a, &e);
        set_put(w->ocsp, set);
        if (rc != 0) {
                serve_reply_error(out, 500, "internal", "OCSP: %s", e.msg);
                return;
        }
        serve_reply_bytes(out, 200, OCSP_RESP_TYPE, resp, resplen);
        if (is_get && out->status == 200 && a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL &&
            !a.has_nonce)
                ocsp_cache_headers(out, &a);
        OPENSSL_free(resp);
}

/* ---- the fast path: cache, refresh and rotation thread ------------------- */

#define REFRESH_PERIOD_MAX 60 /* seconds between refresh passes, at most */
#define RETRY_MIN 2           /* seconds before a failed renewal is tried again, at least */
#define RETRY_MAX 300

/* The RA client of the rotation, connected on first use. */
static struct gmca_engine_ra *ra_client(struct serve_ocsp_fast *f, struct gmca_error *e)
{
        if (f->ra.client == NULL && (f->ra.client = gmca_engine_connect(f->sock, e)) == NULL)
                return NULL;
        return &f->ra;
}

/* Renew a's responder; on failure it is tried again after a back-off. 1 if renewed. */
static int renew_one(struct serve_ocsp_fast *f, struct serve_ocsp_auto *a, int64_t now)
{
        struct gmca_error e = {0};
        struct gmca_engine_ra *ra;
        int64_t life = a->cert != NULL ? a->not_after - a->not_before : 0, back = life / 10;
        int rc;

        if ((ra = ra_client(f, &e)) == NULL)
                rc = e.code ? e.code : GMCA_ERR_STATE;
        else
                rc = serve_ocsp_auto_renew(f->cfg, ra, f->store, a, &e);
        if (rc == 0) {
                fprintf(stderr,
                        "gmca serve: OCSP responder of %s: new certificate, valid until "
                        "%lld\n",
                        a->ca, (long long)a->not_after);
                a->retry_at = 0;
                return 1;
        }
        fprintf(stderr, "gmca serve: OCSP responder of %s not renewed: %s\n", a->ca, e.msg);
        if (rc == GMCA_ERR_IO || rc == GMCA_ERR_STATE) {
                gmca_engine_disconnect(f->ra.client);
                f->ra.client = NULL;
        }
        if (back < RETRY_MIN)
                back = RETRY_MIN;
        if (back > RETRY_MAX)
                back = RETRY_MAX;
        a->retry_at = now + back;
        return 0;
}

/* Renew what is due, drop what expired, swap in a new set if anything changed; the next due time.
 */
static int64_t rotate(struct serve_ocsp_fast *f, int64_t now)
{
        int64_t next = INT64_MAX;
        int changed = 0;

        for (size_t i = 0; i < f->nautos; i++) {
                struct serve_ocsp_auto *a = &f->autos[i];
                int64_t due = serve_ocsp_auto_due(f->cfg, a);

                if (now >= due && now >= a->retry_at)
                        changed |= renew_one(f, a, now);
                if (a->cert != NULL && now >= a->not_after) {
                        serve_ocsp_auto_clear(a); /* nothing may sign under it any more */
                        changed = 1;
                }
                due = serve_ocsp_auto_due(f->cfg, a);
                if (a->retry_at > due)
                        due = a->retry_at;
                if (a->cert != NULL && a->not_after < due)
                        due = a->not_after;
                if (due < next)
                        next = due;
        }
        if (changed) {
                struct ocsp_set *s = set_build(f);

                if (s != NULL)
                        set_swap(f, s);
                else
                        fprintf(stderr, "gmca serve: OCSP: out of memory for the responders\n");
        }
        return next;
}

static void *refresh_run(void *arg)
{
        struct serve_ocsp_fast *f = arg;
        const struct gmca_serve_config *cfg = f->cfg;
        struct gmca_ocsp_opts o = {.validity = cfg->ocsp_validity};
        int64_t validity = o.validity > 0 ? o.validity : GMCA_OCSP_VALIDITY_DEFAULT;
        int64_t period = validity / 16;

        if (period < 1)
                period = 1;
        if (period > REFRESH_PERIOD_MAX)
                period = REFRESH_PERIOD_MAX;
        pthread_mutex_lock(&f->lock);
        while (!f->stop) {
                struct gmca_error e = {0};
                struct ocsp_set *set;
                struct timespec ts;
                int64_t now, next = INT64_MAX, wait = period;
                int rc;

                pthread_mutex_unlock(&f->lock);
                if (f->store == NULL && (f->store = gmca_store_open(f->db, &e)) == NULL)
                        fprintf(stderr, "gmca serve: OCSP refresh: %s\n", e.msg);
                now = (int64_t)gmca_now();
                if (f->store != NULL && f->nautos > 0)
                        next = rotate(f, now);
                set = set_get(f);
                /* Two periods ahead: an entry is re-signed before any request finds it stale. */
                if (f->store != NULL && set != NULL &&
                    (rc = gmca_ocsp_cache_refresh(f->cache, f->store, set->r, set->n, &o,
                                                  2 * period, &e)) < 0) {
                        fprintf(stderr, "gmca serve: OCSP refresh: %s\n", e.msg);
                        gmca_store_close(f->store);
                        f->store = NULL;
                }
                set_put(f, set);
                if (next != INT64_MAX && next - now < wait)
                        wait = next - now < 1 ? 1 : next - now;
                pthread_mutex_lock(&f->lock);
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)wait;
                while (!f->stop && pthread_cond_timedwait(&f->wake, &f->lock, &ts) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

int serve_ocsp_wanted(const struct gmca_serve_config *cfg)
{
        return cfg->nocsp > 0 || cfg->nocsp_auto > 0 || cfg->nocsp_ca_signed > 0;
}

/* The CA-signed responders: each through the engine's op 'O'. */
static int start_ca_signed(struct serve_ocsp_fast *f, struct gmca_error *e)
{
        const struct gmca_serve_config *cfg = f->cfg;
        int rc;

        for (size_t i = 0; i < cfg->nocsp_ca_signed && i < SERVE_OCSP_CAS_MAX; i++) {
                const char *ca = cfg->ocsp_ca_signed[i];

                if ((rc = serve_ocsp_engine_signer_init(&f->esign[i], cfg->dir, ca, e)) != 0)
                        return rc;
                if ((rc = gmca_ocsp_responder_init_ca(&f->ca_r[i], f->store, ca, &f->esign[i].base,
                                                      e)) != 0)
                        return rc;
                f->nca = i + 1;
        }
        return 0;
}

/* The auto responders: the newest on disk, else a first one from the engine now. */
static int start_auto(struct serve_ocsp_fast *f, struct gmca_error *e)
{
        const struct gmca_serve_config *cfg = f->cfg;
        int64_t now = (int64_t)gmca_now();
        int rc;

        f->ra = (struct gmca_engine_ra){NULL, cfg->ra_key, cfg->ra_cert};
        for (size_t i = 0; i < cfg->nocsp_auto && i < SERVE_OCSP_CAS_MAX; i++) {
                struct serve_ocsp_auto *a = &f->autos[i];

                gmca_strlcpy(a->ca, cfg->ocsp_auto[i], sizeof(a->ca));
                f->nautos = i + 1;
                if ((rc = serve_ocsp_auto_load(cfg, f->store, a, now, e)) != 0) {
                        struct gmca_error cause = *e;

                        return gmca_error_set(e, rc, "OCSP responder of %s: %s", a->ca, cause.msg);
                }
                if (a->cert == NULL || now >= serve_ocsp_auto_due(cfg, a))
                        (void)renew_one(f, a, now); /* failing that, the thread retries */
        }
        return 0;
}

/*
 * GMCA_ERR_INVALID if two responders would answer for one CA; checked
 * before any responder certificate is asked for, so a bad command line
 * costs the CA nothing.
 */
static int one_per_ca(struct serve_ocsp_fast *f, struct gmca_error *e)
{
        const struct gmca_serve_config *cfg = f->cfg;
        int64_t ids[3 * SERVE_OCSP_CAS_MAX];
        size_t n = 0;

        for (size_t i = 0; i < cfg->nocsp; i++)
                ids[n++] = cfg->ocsp[i].ca_id;
        for (size_t i = 0; i < f->nca; i++)
                ids[n++] = f->ca_r[i].ca_id;
        for (size_t i = 0; i < cfg->nocsp_auto; i++) {
                struct gmca_ca_rec rec;
                int rc;

                memset(&rec, 0, sizeof(rec));
                rc = gmca_store_ca_get(f->store, cfg->ocsp_auto[i], &rec, e);
                ids[n++] = rec.id;
                gmca_ca_rec_clear(&rec);
                if (rc != 0)
                        return gmca_error_set(e, rc, "--ocsp-auto %s: no such CA",
                                              cfg->ocsp_auto[i]);
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (ids[i] == ids[j])
                                return gmca_error_set(
                                    e, GMCA_ERR_INVALID,
                                    "two OCSP responders for one CA (--ocsp-cert, "
                                    "--ocsp-auto, --ocsp-ca-signed)");
        return 0;
}

struct serve_ocsp_fast *serve_ocsp_fast_start(const struct gmca_serve_config *cfg,
                                              struct gmca_error *e)
{
        struct serve_ocsp_fast *f;
        int n;

        if (!serve_ocsp_wanted(cfg))
                return NULL;
        if (cfg->nocsp_auto > SERVE_OCSP_CAS_MAX || cfg->nocsp_ca_signed > SERVE_OCSP_CAS_MAX ||
            cfg->nocsp > SERVE_OCSP_CAS_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "OCSP: at most %d CAs of each kind",
                               SERVE_OCSP_CAS_MAX);
                return NULL;
        }
        if ((f = calloc(1, sizeof(*f))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        f->cfg = cfg;
        pthread_mutex_init(&f->lock, NULL);
        pthread_mutex_init(&f->set_lock, NULL);
        pthread_cond_init(&f->wake, NULL);
        if (serve_store_uri(cfg, f->db, sizeof(f->db), e) != 0)
                goto fail;
        if ((n = snprintf(f->sock, sizeof(f->sock), "%s/%s", cfg->dir, GMCA_ENGINE_SOCKET)) < 0 ||
            (size_t)n >= sizeof(f->sock)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", cfg->dir);
                goto fail;
        }
        if ((f->cache = gmca_ocsp_cache_new(0)) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "OCSP: out of memory for the cache");
                goto fail;
        }
        if ((f->store = gmca_store_open(f->db, e)) == NULL || start_ca_signed(f, e) != 0 ||
            one_per_ca(f, e) != 0 || start_auto(f, e) != 0)
                goto fail;
        if ((f->set = set_build(f)) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "OCSP: out of memory for the responders");
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
        set_free(f->set); /* the workers are gone: nobody holds a reference */
        for (size_t i = 0; i < SERVE_OCSP_CAS_MAX; i++) {
                serve_ocsp_auto_clear(&f->autos[i]);
                gmca_ocsp_responder_clear(&f->ca_r[i]);
                serve_ocsp_engine_signer_clear(&f->esign[i]);
        }
        gmca_engine_disconnect(f->ra.client);
        gmca_store_close(f->store);
        gmca_ocsp_cache_free(f->cache);
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->set_lock);
        pthread_mutex_destroy(&f->lock);
        free(f);
}
