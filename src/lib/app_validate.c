/*
 * The public validation interface of include/gmca/validate.h over the
 * internal validator (validate.c): it keeps strict-parsed copies of the
 * anchors, intermediates and CRLs the application hands in, and turns the
 * internal result into standard C types.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "gmca/gmca.h"
#include "gmca/validate.h"

#include "app_internal.h"
#include "crl.h"
#include "util.h"
#include "validate.h"
#include "x509.h"

#define CRL_FILE_MAX (16u << 20)
#define SM2_ID_MAX 64
#define TIMEOUT_MAX 300

/* The public and internal enumerations are the same numbers. */
_Static_assert((int)GMCA_VALIDATION_OCSP_INVALID == (int)GMCA_VFY_OCSP_INVALID,
               "reason codes differ");
_Static_assert((int)GMCA_REVOCATION_SOFT_FAIL == (int)GMCA_VFY_REV_SOFT_FAIL,
               "revocation policies differ");
_Static_assert((int)GMCA_USE_ENCRYPTION == (int)GMCA_VFY_USE_ENCRYPTION, "uses differ");
_Static_assert(GMCA_VALIDATION_DEPTH_MAX == GMCA_VFY_DEPTH_MAX, "depths differ");
_Static_assert(GMCA_VALIDATION_NAME_MAX == GMCA_DN_MAX, "name sizes differ");
_Static_assert(GMCA_VALIDATION_INPUTS_MAX + 4 == GMCA_VFY_CANDIDATES_MAX, "caps differ");

struct gmca_validator {
        X509 *anchors[GMCA_VALIDATION_INPUTS_MAX];
        size_t nanchors;
        X509 *inter[GMCA_VALIDATION_INPUTS_MAX];
        size_t ninter;
        X509_CRL *crls[GMCA_VALIDATION_CRLS_MAX];
        size_t ncrls;
        char *cache_dir, *ocsp_url, *sm2_id, *chain_dir;
        struct gmca_vfy_opts o;
};

static int status_set(struct gmca_status *st, int code, const char *msg)
{
        if (st != NULL) {
                st->code = code;
                gmca_strlcpy(st->message, msg, sizeof(st->message));
        }
        return code;
}

const char *gmca_validation_reason_name(int reason)
{
        return gmca_vfy_reason_name(reason);
}

struct gmca_validator *gmca_validator_new(struct gmca_status *st)
{
        struct gmca_validator *v = calloc(1, sizeof(*v));

        if (v == NULL) {
                status_set(st, GMCA_RC_NOMEM, "validator: out of memory");
                return NULL;
        }
        v->o.revocation = GMCA_VFY_REV_PREFER_OCSP;
        v->o.network = 1;
        status_set(st, 0, "");
        return v;
}

void gmca_validator_free(struct gmca_validator *v)
{
        if (v == NULL)
                return;
        for (size_t i = 0; i < v->nanchors; i++)
                X509_free(v->anchors[i]);
        for (size_t i = 0; i < v->ninter; i++)
                X509_free(v->inter[i]);
        for (size_t i = 0; i < v->ncrls; i++)
                X509_CRL_free(v->crls[i]);
        free(v->cache_dir);
        free(v->chain_dir);
        free(v->ocsp_url);
        free(v->sm2_id);
        free(v);
}

/* Parse a certificate as strictly as gmca_certificate_parse, into an X509. */
static X509 *cert_in(const void *data, size_t len, struct gmca_status *st)
{
        struct gmca_certificate *pc;
        const uint8_t *der;
        struct gmca_error e;
        size_t derlen;
        X509 *x;

        if ((pc = gmca_certificate_parse(data, len, st)) == NULL)
                return NULL;
        der = gmca_certificate_der(pc, &derlen);
        gmca_error_clear(&e);
        if ((x = gmca_cert_parse(der, derlen, &e)) == NULL)
                app_status(st, &e);
        gmca_certificate_free(pc);
        return x;
}

static int add_cert(X509 **arr, size_t *n, struct gmca_validator *v, const void *data, size_t len,
                    struct gmca_status *st)
{
        X509 *x;

        if (v == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: NULL");
        if (v->nanchors + v->ninter >= GMCA_VALIDATION_INPUTS_MAX)
                return status_set(st, GMCA_RC_LIMIT, "validator: too many certificates");
        if ((x = cert_in(data, len, st)) == NULL)
                return st != NULL && st->code != 0 ? st->code : GMCA_RC_INVALID;
        arr[(*n)++] = x;
        status_set(st, 0, "");
        return 0;
}

static int add_file(struct gmca_validator *v, const char *path, int kind, struct gmca_status *st)
{
        struct gmca_error e;
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc;

        gmca_error_clear(&e);
        if (path == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: no file name");
        if (gmca_read_file(path, kind == 2 ? CRL_FILE_MAX : GMCA_CERT_MAX, &buf, &len, &e) != 0)
                return app_status(st, &e);
        rc = kind == 0   ? gmca_validator_add_anchor(v, buf, len, st)
             : kind == 1 ? gmca_validator_add_intermediate(v, buf, len, st)
                         : gmca_validator_add_crl(v, buf, len, st);
        free(buf);
        if (rc != 0 && st != NULL) {
                char msg[GMCA_STATUS_MESSAGE_MAX];
                int n = snprintf(msg, sizeof(msg), "%s: ", path);

                if (n > 0 && (size_t)n < sizeof(msg)) {
                        gmca_strlcpy(msg + n, st->message, sizeof(msg) - (size_t)n);
                        gmca_strlcpy(st->message, msg, sizeof(st->message));
                }
        }
        return rc;
}

int gmca_validator_add_anchor(struct gmca_validator *v, const void *data, size_t len,
                              struct gmca_status *st)
{
        return add_cert(v != NULL ? v->anchors : NULL, v != NULL ? &v->nanchors : NULL, v, data,
                        len, st);
}

int gmca_validator_add_intermediate(struct gmca_validator *v, const void *data, size_t len,
                                    struct gmca_status *st)
{
        return add_cert(v != NULL ? v->inter : NULL, v != NULL ? &v->ninter : NULL, v, data, len,
                        st);
}

int gmca_validator_add_crl(struct gmca_validator *v, const void *data, size_t len,
                           struct gmca_status *st)
{
        struct gmca_error e;
        X509_CRL *crl;

        if (v == NULL || data == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: NULL");
        if (v->ncrls >= GMCA_VALIDATION_CRLS_MAX)
                return status_set(st, GMCA_RC_LIMIT, "validator: too many CRLs");
        if (len > CRL_FILE_MAX)
                return status_set(st, GMCA_RC_LIMIT, "CRL: over 16 MiB");
        gmca_error_clear(&e);
        if ((crl = gmca_crl_parse(data, len, &e)) == NULL)
                return app_status(st, &e);
        v->crls[v->ncrls++] = crl;
        status_set(st, 0, "");
        return 0;
}

int gmca_validator_add_anchor_file(struct gmca_validator *v, const char *path,
                                   struct gmca_status *st)
{
        return add_file(v, path, 0, st);
}

int gmca_validator_add_intermediate_file(struct gmca_validator *v, const char *path,
                                         struct gmca_status *st)
{
        return add_file(v, path, 1, st);
}

int gmca_validator_add_crl_file(struct gmca_validator *v, const char *path, struct gmca_status *st)
{
        return add_file(v, path, 2, st);
}

int gmca_validator_set_use(struct gmca_validator *v, int use)
{
        if (v == NULL || use < GMCA_USE_ANY || use > GMCA_USE_ENCRYPTION)
                return GMCA_RC_INVALID;
        v->o.use = (enum gmca_vfy_use)use;
        return 0;
}

int gmca_validator_set_revocation(struct gmca_validator *v, int policy)
{
        if (v == NULL || policy < GMCA_REVOCATION_NONE || policy > GMCA_REVOCATION_SOFT_FAIL)
                return GMCA_RC_INVALID;
        v->o.revocation = (enum gmca_vfy_revocation)policy;
        return 0;
}

int gmca_validator_set_time(struct gmca_validator *v, int64_t when)
{
        if (v == NULL || when < 0 || (int64_t)(time_t)when != when)
                return GMCA_RC_INVALID;
        v->o.at = (time_t)when;
        return 0;
}

int gmca_validator_set_network(struct gmca_validator *v, int allowed, long timeout_seconds)
{
        if (v == NULL || timeout_seconds < 1 || timeout_seconds > TIMEOUT_MAX)
                return GMCA_RC_INVALID;
        v->o.network = allowed != 0;
        v->o.timeout = timeout_seconds;
        return 0;
}

/* Replace *slot with a copy of s (NULL clears), at most max bytes. */
static int set_str(char **slot, const char *s, size_t max, const char *what, struct gmca_status *st)
{
        char *copy = NULL, msg[128];

        if (s != NULL) {
                if (s[0] == '\0' || strlen(s) > max) {
                        snprintf(msg, sizeof(msg), "validator: %s: 1..%zu bytes", what, max);
                        return status_set(st, GMCA_RC_INVALID, msg);
                }
                if ((copy = strdup(s)) == NULL)
                        return status_set(st, GMCA_RC_NOMEM, "validator: out of memory");
        }
        free(*slot);
        *slot = copy;
        status_set(st, 0, "");
        return 0;
}

int gmca_validator_set_crl_cache(struct gmca_validator *v, const char *dir, struct gmca_status *st)
{
        if (v == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: NULL");
        return set_str(&v->cache_dir, dir, 4000, "CRL cache directory", st);
}

int gmca_validator_set_chain_dir(struct gmca_validator *v, const char *dir, struct gmca_status *st)
{
        if (v == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: NULL");
        return set_str(&v->chain_dir, dir, 4000, "chain directory", st);
}

int gmca_validator_set_ocsp_url(struct gmca_validator *v, const char *url, struct gmca_status *st)
{
        if (v == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: NULL");
        if (url != NULL && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return status_set(st, GMCA_RC_INVALID, "validator: OCSP URL must be http(s)");
        return set_str(&v->ocsp_url, url, 2000, "OCSP URL", st);
}

int gmca_validator_set_sm2_id(struct gmca_validator *v, const char *id, struct gmca_status *st)
{
        if (v == NULL)
                return status_set(st, GMCA_RC_INVALID, "validator: NULL");
        return set_str(&v->sm2_id, id, SM2_ID_MAX, "SM2 ID", st);
}

int gmca_validate_certificate(struct gmca_validator *v, const struct gmca_certificate *cert,
                              struct gmca_validation_result *res, struct gmca_status *st)
{
        struct gmca_vfy_result *r = NULL;
        struct gmca_error e;
        const uint8_t *der;
        size_t derlen;
        X509 *x = NULL;
        int rc;

        if (res != NULL) {
                memset(res, 0, sizeof(*res));
                res->depth = -1;
        }
        gmca_error_clear(&e);
        if (v == NULL || cert == NULL || res == NULL)
                return status_set(st, GMCA_RC_INVALID, "validate: NULL argument");
        der = gmca_certificate_der(cert, &derlen);
        if ((x = gmca_cert_parse(der, derlen, &e)) == NULL)
                return app_status(st, &e);
        /* The result carries 8 KiB of names: keep it off the stack. */
        if ((r = calloc(1, sizeof(*r))) == NULL) {
                X509_free(x);
                return status_set(st, GMCA_RC_NOMEM, "validate: out of memory");
        }
        v->o.anchors = v->anchors;
        v->o.nanchors = v->nanchors;
        v->o.intermediates = v->inter;
        v->o.nintermediates = v->ninter;
        v->o.crls = v->crls;
        v->o.ncrls = v->ncrls;
        v->o.cache_dir = v->cache_dir;
        v->o.chain_dir = v->chain_dir;
        v->o.ocsp_url = v->ocsp_url;
        v->o.sm2_id = v->sm2_id;
        rc = gmca_validate(x, &v->o, r, &e);
        res->reason = (int)r->reason;
        res->depth = r->depth;
        res->chain_length = r->chain_len;
        for (size_t i = 0; i < r->chain_len && i < GMCA_VALIDATION_DEPTH_MAX; i++)
                gmca_strlcpy(res->chain[i], r->chain[i], sizeof(res->chain[i]));
        gmca_strlcpy(res->revocation, r->revocation, sizeof(res->revocation));
        gmca_strlcpy(res->message, r->msg, sizeof(res->message));
        if (rc != 0)
                app_status(st, &e);
        else
                status_set(st, 0, "");
        free(r);
        X509_free(x);
        return rc;
}
