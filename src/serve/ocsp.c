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
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

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

/* RFC 5019 §6.2 headers for a cacheable answer. */
static void ocsp_cache_headers(struct serve_reply *out, const struct gmca_ocsp_answer *a,
                               const uint8_t *resp, size_t len)
{
        uint8_t md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1];
        int64_t now = (int64_t)gmca_now(), age = a->next_update - now;

        if (gmca_sm3(resp, len, md) != 0)
                return; /* no validator: leave it uncacheable */
        if (age < 0)
                age = 0;
        gmca_hex(md, sizeof(md), hex);
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
        if (gmca_ocsp_respond(w->store, cfg->ocsp, cfg->nocsp, &o, req, reqlen, &resp, &resplen, &a,
                              &e) != 0) {
                serve_reply_error(out, 500, "internal", "OCSP: %s", e.msg);
                return;
        }
        serve_reply_bytes(out, 200, OCSP_RESP_TYPE, resp, resplen);
        if (is_get && out->status == 200 && a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL &&
            !a.has_nonce)
                ocsp_cache_headers(out, &a, resp, resplen);
        OPENSSL_free(resp);
}
