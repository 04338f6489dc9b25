/*
 * app_timestamp: include/gmca/timestamp.h over tsa. Certificates come in as
 * bytes through the CA's strict intake (gmca_cert_parse); results are copied
 * into malloc'ed buffers and plain structs, so no OpenSSL type crosses the
 * interface. The TSA's own rules (refusal, certificate use) surface as
 * GMCA_RC_VERIFY: the public codes have no "policy".
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "gmca/timestamp.h"

#include "app_internal.h"
#include "crypto.h"
#include "err.h"
#include "tsa.h"
#include "util.h"
#include "x509.h"

_Static_assert(GMCA_TIMESTAMP_REQUEST_MAX == GMCA_TSA_REQ_MAX &&
                   GMCA_TIMESTAMP_RESPONSE_MAX == GMCA_TSA_RESP_MAX,
               "time-stamp caps differ");

static int report(struct gmca_status *st, struct gmca_error *e)
{
        if (e->code == GMCA_ERR_POLICY)
                e->code = GMCA_ERR_VERIFY;
        return app_status(st, e);
}

static int request(const uint8_t *digest, const struct gmca_timestamp_request_options *o,
                   uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        unsigned flags = o != NULL ? o->flags : 0;
        struct gmca_error e = {0};
        struct gmca_tsa_req r;
        uint8_t *der = NULL, *p;
        size_t len = 0;

        if (out == NULL || outlen == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp request: no output given");
                return report(st, &e);
        }
        if ((flags &
             ~(GMCA_TIMESTAMP_NO_NONCE | GMCA_TIMESTAMP_CERT_REQ | GMCA_TIMESTAMP_SHA256)) != 0) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp request: unknown flags");
                return report(st, &e);
        }
        if (gmca_tsa_req_init(&r, (flags & GMCA_TIMESTAMP_SHA256) ? NID_sha256 : NID_sm3, digest,
                              GMCA_TIMESTAMP_DIGEST_SIZE, (flags & GMCA_TIMESTAMP_NO_NONCE) != 0,
                              (flags & GMCA_TIMESTAMP_CERT_REQ) != 0, &e) != 0)
                return report(st, &e);
        if (o != NULL && o->policy != NULL &&
            gmca_strlcpy(r.policy, o->policy, sizeof(r.policy)) >= sizeof(r.policy)) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp request: policy too long");
                return report(st, &e);
        }
        if (gmca_tsa_req_build(&r, &der, &len, &e) != 0)
                return report(st, &e);
        if ((p = malloc(len)) == NULL) {
                OPENSSL_free(der);
                gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                return report(st, &e);
        }
        memcpy(p, der, len);
        OPENSSL_free(der);
        *out = p;
        *outlen = len;
        app_status_ok(st);
        return 0;
}

int gmca_timestamp_request(const void *data, size_t len,
                           const struct gmca_timestamp_request_options *opts, uint8_t **out,
                           size_t *outlen, struct gmca_status *st)
{
        struct gmca_error e = {0};
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        int sha256 = opts != NULL && (opts->flags & GMCA_TIMESTAMP_SHA256) != 0;

        if (data == NULL && len > 0) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp request: no data given");
                return report(st, &e);
        }
        if (EVP_Digest(data != NULL ? data : "", len, md, &n, sha256 ? EVP_sha256() : EVP_sm3(),
                       NULL) != 1 ||
            n != GMCA_TIMESTAMP_DIGEST_SIZE) {
                gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "time-stamp request: cannot hash the data");
                return report(st, &e);
        }
        return request(md, opts, out, outlen, st);
}

int gmca_timestamp_request_digest(const uint8_t digest[GMCA_TIMESTAMP_DIGEST_SIZE],
                                  const struct gmca_timestamp_request_options *opts, uint8_t **out,
                                  size_t *outlen, struct gmca_status *st)
{
        struct gmca_error e = {0};

        if (digest == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp request: no digest given");
                return report(st, &e);
        }
        return request(digest, opts, out, outlen, st);
}

static X509 *cert_in(const void *data, size_t len, const char *what, struct gmca_error *e)
{
        if (data == NULL)
                return NULL;
        if (len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: empty", what);
                return NULL;
        }
        return gmca_cert_parse(data, len, e);
}

static int verify(const void *resp, size_t resplen, struct gmca_tsa_expect *x,
                  const struct gmca_timestamp_verify_options *o, struct gmca_timestamp_info *info,
                  struct gmca_status *st)
{
        struct gmca_error e = {0};
        struct gmca_tsa_req req;
        struct gmca_tsa_info ti;
        int fail;

        if (resp == NULL || o == NULL) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp: no response or options given");
                return report(st, &e);
        }
        x->sm2_id = o->id;
        if ((x->tsa_cert = cert_in(o->tsa_certificate, o->tsa_certificate_len, "TSA certificate",
                                   &e)) == NULL &&
            e.code != 0)
                goto out;
        if ((x->ca_cert =
                 cert_in(o->ca_certificate, o->ca_certificate_len, "CA certificate", &e)) == NULL &&
            e.code != 0)
                goto out;
        if (o->request != NULL) {
                if (gmca_tsa_req_parse(o->request, o->request_len, &req, &fail, &e) != 0)
                        goto out;
                x->req = &req;
        }
        if (o->nonce != NULL) {
                if (o->nonce_len == 0 || o->nonce_len > GMCA_TSA_NONCE_MAX) {
                        gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp: the nonce is 1..%d bytes",
                                       GMCA_TSA_NONCE_MAX);
                        goto out;
                }
                x->nonce = o->nonce;
                x->nonce_len = o->nonce_len;
        }
        if (gmca_tsa_verify(resp, resplen, x, &ti, &e) != 0)
                goto out;
        if (info != NULL) {
                memset(info, 0, sizeof(*info));
                info->gen_time = (int64_t)ti.gen_time;
                gmca_strlcpy(info->gen_time_text, ti.gen_time_text, sizeof(info->gen_time_text));
                gmca_strlcpy(info->serial, ti.serial, sizeof(info->serial));
                gmca_strlcpy(info->policy, ti.policy, sizeof(info->policy));
                gmca_strlcpy(info->tsa, ti.tsa_subject, sizeof(info->tsa));
                gmca_strlcpy(info->hash, ti.hash, sizeof(info->hash));
                gmca_strlcpy(info->nonce, ti.nonce, sizeof(info->nonce));
                info->accuracy_ms = ti.accuracy_ms;
        }
out:
        X509_free(x->tsa_cert);
        X509_free(x->ca_cert);
        if (e.code != 0)
                return report(st, &e);
        app_status_ok(st);
        return 0;
}

int gmca_timestamp_verify(const void *resp, size_t resplen, const void *data, size_t len,
                          const struct gmca_timestamp_verify_options *opts,
                          struct gmca_timestamp_info *info, struct gmca_status *st)
{
        struct gmca_tsa_expect x = {
            .data = data != NULL ? data : (const uint8_t *)"", .data_len = len, .has_data = 1};

        if (data == NULL && len > 0) {
                struct gmca_error e = {0};

                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp: no data given");
                return report(st, &e);
        }
        return verify(resp, resplen, &x, opts, info, st);
}

int gmca_timestamp_verify_digest(const void *resp, size_t resplen,
                                 const uint8_t digest[GMCA_TIMESTAMP_DIGEST_SIZE],
                                 const struct gmca_timestamp_verify_options *opts,
                                 struct gmca_timestamp_info *info, struct gmca_status *st)
{
        struct gmca_tsa_expect x = {.digest = digest, .digest_len = GMCA_TIMESTAMP_DIGEST_SIZE};

        if (digest == NULL) {
                struct gmca_error e = {0};

                gmca_error_set(&e, GMCA_ERR_INVALID, "time-stamp: no digest given");
                return report(st, &e);
        }
        return verify(resp, resplen, &x, opts, info, st);
}
