/*
 * POST /tsa: RFC 3161 time-stamping over HTTP (§3.4) in the front, for
 * relying parties (issue 8 item 4). The request is unsigned: anyone may
 * ask for a time-stamp, and the token says nothing about who asked. The
 * body is a DER TimeStampReq (Content-Type application/timestamp-query,
 * at most SERVE_TSA_BODY_MAX bytes); the answer is the TimeStampResp of
 * gmca_tsa_reply (application/timestamp-reply), 200 also when it is a
 * rejection, as §3.4 wants: a malformed request gets status rejection with
 * failInfo badDataFormat, not an HTTP error. HTTP errors are kept for what
 * is not a time-stamp request at all (404 no TSA here, 405, 413, 415) and
 * for a TSA that cannot sign (500, 503).
 *
 * Threads: every worker thread signs with the one TSA key of the
 * configuration. That is safe in OpenSSL 3: an EVP_PKEY is immutable once
 * loaded (its provider key data is only read; the lazily filled caches
 * take the key's own lock), and each signature (gmca_sm2_sign) gets an
 * EVP_MD_CTX and EVP_PKEY_CTX of its own, freed after. The certificate is
 * only read, and its extension cache is filled by gmca_serve_tsa_check
 * before the threads start. Token serial numbers are 127 random bits from
 * the CSPRNG drawn by gmca_tsa_reply for each token (gmca_serial_random),
 * so they are unique across threads and restarts without shared state.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "serve_internal.h"
#include "tsa.h"
#include "util.h"

static const char SELFTEST_DATA[] = "gmca serve: TSA self-test";

static void opts_of(const struct gmca_serve_tsa *t, struct gmca_tsa_opts *o)
{
        memset(o, 0, sizeof(*o));
        o->policy = t->policy;
        o->accuracy_ms = t->accuracy_ms;
}

/* 0 if cert is valid at now (seconds). */
static int valid_now(X509 *cert, time_t now, struct gmca_error *e)
{
        if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0)
                return gmca_error_set(e, GMCA_ERR_POLICY, "TSA certificate: not valid yet");
        if (X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0)
                return gmca_error_set(e, GMCA_ERR_POLICY, "TSA certificate: expired");
        return 0;
}

/* Answer one request made here and verify the answer, as a relying party would. */
static int selftest(const struct gmca_serve_tsa *t, struct gmca_error *e)
{
        struct gmca_tsa_expect x = {0};
        struct gmca_tsa_opts o;
        struct gmca_tsa_req r;
        uint8_t md[GMCA_SM3_LEN], *req = NULL, *resp = NULL;
        size_t reqlen = 0, resplen = 0;
        int status = -1, rc;

        opts_of(t, &o);
        if ((rc = gmca_sm3((const uint8_t *)SELFTEST_DATA, strlen(SELFTEST_DATA), md)) != 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "TSA self-test: SM3 failed");
                goto out;
        }
        if ((rc = gmca_tsa_req_init(&r, NID_sm3, md, sizeof(md), 0, 1, e)) != 0 ||
            (rc = gmca_tsa_req_build(&r, &req, &reqlen, e)) != 0 ||
            (rc = gmca_tsa_reply(t->cert, t->key, &o, req, reqlen, &resp, &resplen, &status, e)) !=
                0)
                goto out;
        x.digest = md;
        x.digest_len = sizeof(md);
        x.req = &r;
        x.tsa_cert = t->cert;
        if (status != 0 || (rc = gmca_tsa_verify(resp, resplen, &x, NULL, e)) != 0) {
                struct gmca_error cause = *e;

                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "TSA self-test: %s",
                                    status != 0 ? "the request was rejected" : cause.msg);
        }
out:
        OPENSSL_free(resp);
        OPENSSL_free(req);
        return rc;
}

int gmca_serve_tsa_check(const struct gmca_serve_tsa *t, struct gmca_error *e)
{
        const char *policy = t->policy != NULL ? t->policy : GMCA_TSA_POLICY_DEFAULT;
        ASN1_OBJECT *oid;
        int rc;

        if (t->cert == NULL || t->key == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "TSA: certificate and key required");
        if (strlen(policy) >= GMCA_TSA_OID_MAX || (oid = OBJ_txt2obj(policy, 1)) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID, "TSA policy: \"%.64s\" is not an OID",
                                      policy);
        }
        ASN1_OBJECT_free(oid);
        if (t->accuracy_ms < 0 || t->accuracy_ms > 999)
                return gmca_error_set(e, GMCA_ERR_INVALID, "TSA accuracy: 0..999 ms");
        if ((rc = gmca_tsa_cert_check(t->cert, e)) != 0 ||
            (rc = valid_now(t->cert, gmca_now(), e)) != 0)
                return rc;
        if (X509_check_private_key(t->cert, t->key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "TSA key: not the key of the TSA certificate");
        }
        return selftest(t, e);
}

void serve_tsa(struct serve_worker *w, const struct serve_request *rq, struct serve_reply *out)
{
        static const char want[] = "application/timestamp-query";
        const struct gmca_serve_tsa *t = w != NULL && w->cfg != NULL ? w->cfg->tsa : NULL;
        struct gmca_error e = {0};
        struct gmca_tsa_opts o;
        uint8_t *resp = NULL;
        size_t resplen = 0;
        int status = -1;

        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                return;
        }
        if (t == NULL) {
                serve_reply_error(out, 404, "not_found",
                                  "no time-stamping authority here (gmca serve --tsa-cert)");
                return;
        }
        if (strcmp(rq->method, "POST") != 0) {
                gmca_strlcpy(out->allow, "POST", sizeof(out->allow));
                serve_reply_error(out, 405, "method_not_allowed",
                                  "%s is not allowed here (allowed: POST)", rq->method);
                return;
        }
        if (rq->ctype_bad || !serve_media_type_is(rq->ctype, want)) {
                serve_reply_error(out, 415, "unsupported_media_type",
                                  "Content-Type must be %s (RFC 3161 §3.4)", want);
                return;
        }
        if (rq->len > SERVE_TSA_BODY_MAX) {
                serve_reply_error(out, 413, "too_large", "TimeStampReq over %d bytes",
                                  SERVE_TSA_BODY_MAX);
                return;
        }
        /* After the self-test at start, only time can make the certificate unusable. */
        if (valid_now(t->cert, gmca_now(), &e) != 0) {
                serve_reply_error(out, 503, "unavailable", "%s", e.msg);
                return;
        }
        opts_of(t, &o);
        if (gmca_tsa_reply(t->cert, t->key, &o, rq->body != NULL ? rq->body : (const uint8_t *)"",
                           rq->len, &resp, &resplen, &status, &e) != 0) {
                serve_reply_error(out, 500, "internal", "time-stamp: %s", e.msg);
                return;
        }
        serve_reply_bytes(out, 200, "application/timestamp-reply", resp, resplen);
        OPENSSL_free(resp);
}
