/*
 * ocsp: RFC 6960 responses from the store, signed by a delegated
 * responder with SM2 and the distinguishing ID. The request comes from
 * anyone on the network, so it is parsed strictly and under caps; the
 * response is encoded here field by field (ResponseData, then the
 * BasicOCSPResponse around its signature) because OpenSSL 3.0 signs OCSP
 * responses only with an EVP_PKEY it holds and without the ID. The result
 * is parsed back with libcrypto before it leaves, so a slip in the
 * encoding is an internalError, not a malformed answer.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "ocsp.h"
#include "store_internal.h"
#include "util.h"
#include "x509.h"

#define SERIAL_BYTES_MAX 20 /* RFC 5280 §4.1.2.2 */
#define CACHE_KEY_MAX 192   /* bytes of a request kept as a cache key (SM3 CertID: ~110) */

/* What a SingleResponse says of a certificate, as read from the store. */
struct cstate {
        int status; /* V_OCSP_CERTSTATUS_* */
        int64_t revoked_at;
        int reason;
};

/* ---- responders ---------------------------------------------------------- */

struct find_ca {
        X509 *cert;
        int64_t ca_id;
        X509 *ca;
};

static int find_issuer(const struct gmca_ca_rec *rec, void *arg)
{
        struct find_ca *f = arg;
        const uint8_t *p = rec->cert_der;
        struct gmca_error ignore;
        X509 *ca;

        if (rec->cert_der == NULL || f->ca != NULL)
                return 0;
        if ((ca = d2i_X509(NULL, &p, (long)rec->cert_len)) == NULL) {
                gmca_ossl_clear();
                return 0;
        }
        gmca_error_clear(&ignore);
        if (X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(f->cert)) == 0 &&
            gmca_cert_verify_signed_by(f->cert, X509_get0_pubkey(ca), rec->sm2_id, &ignore) == 0) {
                f->ca = ca;
                f->ca_id = rec->id;
                return 0;
        }
        X509_free(ca);
        gmca_ossl_clear();
        return 0;
}

static int digests(X509 *x, const EVP_MD *md, uint8_t *name, uint8_t *key, unsigned want,
                   struct gmca_error *e)
{
        unsigned nl = 0, kl = 0;

        if (X509_NAME_digest(X509_get_subject_name(x), md, name, &nl) != 1 ||
            X509_pubkey_digest(x, md, key, &kl) != 1 || nl != want || kl != want)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "OCSP: cannot hash the CA's name/key");
        return 0;
}

int gmca_ocsp_responder_init(struct gmca_ocsp_responder *r, struct gmca_store *s, X509 *cert,
                             const struct gmca_signer *signer, int64_t now, struct gmca_error *e)
{
        struct find_ca f = {.cert = cert};
        uint8_t unused[GMCA_SM3_LEN];
        unsigned idlen = 0;
        time_t t = (time_t)now;
        int rc;

        memset(r, 0, sizeof(*r));
        if (cert == NULL || signer == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "OCSP: responder certificate and key "
                                      "required");
        if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
            !(X509_get_extended_key_usage(cert) & XKU_OCSP_SIGN))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "OCSP responder certificate: RFC 6960 §4.2.2.2: no "
                                      "extKeyUsage OCSPSigning (profile ocsp)");
        if (X509_get_ext_by_NID(cert, NID_id_pkix_OCSP_noCheck, -1) < 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "OCSP responder certificate: RFC 6960 §4.2.2.2.1: no "
                                      "id-pkix-ocsp-nocheck (profile ocsp)");
        if (X509_cmp_time(X509_get0_notBefore(cert), &t) > 0 ||
            X509_cmp_time(X509_get0_notAfter(cert), &t) <= 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "OCSP responder certificate: not valid now");
        if ((rc = gmca_store_ca_list(s, find_issuer, &f, e)) != 0)
                goto fail;
        if (f.ca == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                    "OCSP responder certificate: not issued by a CA of this "
                                    "store");
                goto fail;
        }
        r->ca_id = f.ca_id;
        r->ca = f.ca;
        f.ca = NULL;
        r->cert = cert;
        r->signer = signer;
        if ((rc = digests(r->ca, EVP_sha1(), r->name_sha1, r->key_sha1, 20, e)) != 0 ||
            (rc = digests(r->ca, EVP_sm3(), r->name_sm3, r->key_sm3, GMCA_SM3_LEN, e)) != 0)
                goto fail;
        if (X509_pubkey_digest(cert, EVP_sha1(), unused, &idlen) != 1 || idlen != 20) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "OCSP: cannot hash the responder key");
                goto fail;
        }
        memcpy(r->respid, unused, 20);
        return 0;
fail:
        X509_free(f.ca);
        gmca_ocsp_responder_clear(r);
        return rc;
}

/* For gmca_ocsp_responder_init_ca: the store CA named name. */
struct find_named {
        const char *name;
        int64_t ca_id;
        X509 *ca;
};

static int find_named(const struct gmca_ca_rec *rec, void *arg)
{
        struct find_named *f = arg;
        const uint8_t *p = rec->cert_der;

        if (rec->cert_der == NULL || f->ca != NULL || strcmp(rec->name, f->name) != 0)
                return 0;
        if ((f->ca = d2i_X509(NULL, &p, (long)rec->cert_len)) == NULL ||
            p != rec->cert_der + rec->cert_len) {
                X509_free(f->ca);
                f->ca = NULL;
                gmca_ossl_clear();
                return 0;
        }
        f->ca_id = rec->id;
        return 0;
}

int gmca_ocsp_responder_init_ca(struct gmca_ocsp_responder *r, struct gmca_store *s, const char *ca,
                                const struct gmca_signer *signer, struct gmca_error *e)
{
        struct find_named f = {.name = ca};
        unsigned idlen = 0;
        int rc;

        memset(r, 0, sizeof(*r));
        if (ca == NULL || signer == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "OCSP: CA name and signer required");
        if ((rc = gmca_store_ca_list(s, find_named, &f, e)) != 0)
                return rc;
        if (f.ca == NULL)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "OCSP: no CA %s in the store", ca);
        r->ca_id = f.ca_id;
        r->ca = f.ca;
        r->signer = signer;
        if ((rc = digests(r->ca, EVP_sha1(), r->name_sha1, r->key_sha1, 20, e)) != 0 ||
            (rc = digests(r->ca, EVP_sm3(), r->name_sm3, r->key_sm3, GMCA_SM3_LEN, e)) != 0)
                goto fail;
        if (X509_pubkey_digest(r->ca, EVP_sha1(), r->respid, &idlen) != 1 || idlen != 20) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "OCSP: cannot hash the CA key");
                goto fail;
        }
        return 0;
fail:
        gmca_ocsp_responder_clear(r);
        return rc;
}

void gmca_ocsp_responder_clear(struct gmca_ocsp_responder *r)
{
        if (r == NULL)
                return;
        X509_free(r->ca);
        memset(r, 0, sizeof(*r));
}

/* ---- request ------------------------------------------------------------- */

/*
 * The nonce extension (RFC 8954 §2.1): its extnValue is the DER of an
 * OCTET STRING of 1..32 octets. 0 if fine.
 */
static int nonce_ok(X509_EXTENSION *ext, struct gmca_error *e)
{
        const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
        const uint8_t *p = ASN1_STRING_get0_data(v);
        ASN1_OCTET_STRING *n;
        int len = ASN1_STRING_length(v), nl;

        if ((n = d2i_ASN1_OCTET_STRING(NULL, &p, len)) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "OCSP request: RFC 8954 §2.1: nonce is not an OCTET STRING");
        }
        nl = ASN1_STRING_length(n);
        ASN1_OCTET_STRING_free(n);
        if (p != ASN1_STRING_get0_data(v) + len)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "OCSP request: nonce: trailing bytes after the OCTET STRING");
        if (nl < 1 || nl > GMCA_OCSP_NONCE_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "OCSP request: RFC 8954 §2.1: nonce of %d octets "
                                      "(1..%d)",
                                      nl, GMCA_OCSP_NONCE_MAX);
        return 0;
}

/* TBSRequest.version is DEFAULT v1: in DER it is absent, and no other version exists. */
static int version_absent(const uint8_t *buf, size_t len)
{
        const unsigned char *p = buf;
        long l;
        int tag, xclass, i;

        i = ASN1_get_object(&p, &l, &tag, &xclass, (long)len); /* OCSPRequest */
        if ((i & 0x80) || !(i & V_ASN1_CONSTRUCTED))
                return 0;
        i = ASN1_get_object(&p, &l, &tag, &xclass, (long)(len - (size_t)(p - buf)));
        if ((i & 0x80) || !(i & V_ASN1_CONSTRUCTED) || l < 2)
                return 0;
        return !(p[0] == 0xa0);
}

OCSP_REQUEST *gmca_ocsp_request_parse(const uint8_t *buf, size_t len, struct gmca_error *e)
{
        const unsigned char *p = buf;
        OCSP_REQUEST *req = NULL;
        unsigned char *der = NULL;
        int n, derlen, nonces = 0;

        if (buf == NULL || len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP request: empty");
                return NULL;
        }
        if (len > GMCA_OCSP_REQ_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "OCSP request: over %d bytes", GMCA_OCSP_REQ_MAX);
                return NULL;
        }
        if ((req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_INVALID, "OCSP request: RFC 6960 §4.1.1: not DER");
                goto bad;
        }
        if (p != buf + len) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP request: trailing bytes after DER");
                goto bad;
        }
        if ((derlen = i2d_OCSP_REQUEST(req, &der)) <= 0 || (size_t)derlen != len ||
            memcmp(der, buf, len) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP request: not DER (X.690 §10)");
                goto bad;
        }
        if (!version_absent(buf, len)) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "OCSP request: RFC 6960 §4.1.1: version present (only v1, the "
                               "default, exists)");
                goto bad;
        }
        n = OCSP_request_onereq_count(req);
        if (n < 1) {
                gmca_error_set(e, GMCA_ERR_INVALID, "OCSP request: requestList is empty");
                goto bad;
        }
        if (n > GMCA_OCSP_CERTIDS_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "OCSP request: %d CertIDs (at most %d)", n,
                               GMCA_OCSP_CERTIDS_MAX);
                goto bad;
        }
        for (int i = 0; i < OCSP_REQUEST_get_ext_count(req); i++) {
                X509_EXTENSION *x = OCSP_REQUEST_get_ext(req, i);
                int nid = OBJ_obj2nid(X509_EXTENSION_get_object(x));

                if (nid == NID_id_pkix_OCSP_Nonce) {
                        if (nonces++ > 0) {
                                gmca_error_set(e, GMCA_ERR_INVALID,
                                               "OCSP request: nonce extension repeated");
                                goto bad;
                        }
                        if (nonce_ok(x, e) != 0)
                                goto bad;
                } else if (X509_EXTENSION_get_critical(x)) {
                        gmca_error_set(e, GMCA_ERR_INVALID,
                                       "OCSP request: unknown critical requestExtension");
                        goto bad;
                }
        }
        for (int i = 0; i < n; i++) {
                OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, i);

                for (int j = 0; j < OCSP_ONEREQ_get_ext_count(one); j++)
                        if (X509_EXTENSION_get_critical(OCSP_ONEREQ_get_ext(one, j))) {
                                gmca_error_set(e, GMCA_ERR_INVALID,
                                               "OCSP request: unknown critical "
                                               "singleRequestExtension");
                                goto bad;
                        }
        }
        OPENSSL_free(der);
        return req;
bad:
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
        gmca_ossl_clear();
        return NULL;
}

/* ---- DER building -------------------------------------------------------- */

struct buf {
        uint8_t *p;
        size_t len, cap;
};

static int put(struct buf *b, const void *data, size_t n)
{
        if (n > b->cap - b->len) {
                size_t cap = b->cap ? b->cap : 256;
                uint8_t *q;

                while (cap - b->len < n)
                        cap *= 2;
                if ((q = OPENSSL_realloc(b->p, cap)) == NULL)
                        return GMCA_ERR_NOMEM;
                b->p = q;
                b->cap = cap;
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
        return 0;
}

/* Append tag, length and the n bytes of content (constructed unless a primitive type). */
static int tlv(struct buf *b, int constructed, int tag, int xclass, const uint8_t *content,
               size_t n)
{
        unsigned char hdr[8], *h = hdr;
        int total;

        if (n > INT32_MAX / 2 || (total = ASN1_object_size(constructed, (int)n, tag)) < 0 ||
            (size_t)total - n > 8)
                return GMCA_ERR_INTERNAL;
        ASN1_put_object(&h, constructed, (int)n, tag, xclass);
        if (put(b, hdr, (size_t)(h - hdr)) != 0 || put(b, content, n) != 0)
                return GMCA_ERR_NOMEM;
        return 0;
}

/* Append the DER of an object through its i2d. */
#define PUT_I2D(b, i2d, obj)                                                                       \
        ({                                                                                         \
                unsigned char *_d = NULL;                                                          \
                int _l = i2d(obj, &_d), _rc = _l > 0 ? put(b, _d, (size_t)_l) : GMCA_ERR_INTERNAL; \
                OPENSSL_free(_d);                                                                  \
                _rc;                                                                               \
        })

/* ---- response ------------------------------------------------------------ */

enum idstatus { ID_UNKNOWN_HASH = 0, ID_MATCH, ID_OTHER_CA };

/* Does cid name r's CA? */
static enum idstatus cid_match(OCSP_CERTID *cid, const struct gmca_ocsp_responder *r)
{
        ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
        ASN1_OBJECT *md = NULL;
        const uint8_t *name, *key;
        size_t want;

        if (OCSP_id_get0_info(&nh, &md, &kh, NULL, cid) != 1)
                return ID_UNKNOWN_HASH;
        switch (OBJ_obj2nid(md)) {
        case NID_sha1:
                name = r->name_sha1, key = r->key_sha1, want = 20;
                break;
        case NID_sm3:
                name = r->name_sm3, key = r->key_sm3, want = GMCA_SM3_LEN;
                break;
        default:
                return ID_UNKNOWN_HASH;
        }
        if ((size_t)ASN1_STRING_length(nh) == want && (size_t)ASN1_STRING_length(kh) == want &&
            memcmp(ASN1_STRING_get0_data(nh), name, want) == 0 &&
            memcmp(ASN1_STRING_get0_data(kh), key, want) == 0)
                return ID_MATCH;
        return ID_OTHER_CA;
}

/* Upper-case hex of a positive serial of at most 20 bytes, as the store keeps it; -1 if not. */
static int serial_hex(const ASN1_INTEGER *sn, char out[GMCA_SERIAL_HEX_MAX])
{
        int n = ASN1_STRING_length(sn);

        if (ASN1_STRING_type(sn) != V_ASN1_INTEGER || n < 1 || n > SERIAL_BYTES_MAX)
                return -1;
        gmca_hex(ASN1_STRING_get0_data(sn), (size_t)n, out);
        for (char *c = out; *c != '\0'; c++)
                if (*c >= 'a' && *c <= 'f')
                        *c = (char)(*c - 'a' + 'A');
        return 0;
}

/* An OCSPResponse with status and nothing else. */
static int bare(int status, uint8_t **out, size_t *outlen, struct gmca_ocsp_answer *a,
                struct gmca_error *e)
{
        OCSP_RESPONSE *resp = OCSP_response_create(status, NULL);
        unsigned char *der = NULL;
        int l;

        if (resp == NULL || (l = i2d_OCSP_RESPONSE(resp, &der)) <= 0) {
                OCSP_RESPONSE_free(resp);
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "OCSP: cannot encode a response");
        }
        OCSP_RESPONSE_free(resp);
        *out = der;
        *outlen = (size_t)l;
        a->status = status;
        return 0;
}

/* Only what the answer needs: no DER, so the per-request check stays cheap. */
static const char SQL_STATUS[] =
    "SELECT ca_id, status, revoked_at, reason FROM certificates WHERE serial = ?";

static void state_unknown(struct cstate *st)
{
        st->status = V_OCSP_CERTSTATUS_UNKNOWN;
        st->revoked_at = 0;
        st->reason = -1;
}

/* The store's state of certificate serial (upper-case hex) of CA ca_id; 0 or an error code. */
static int state_of(struct gmca_store *s, int64_t ca_id, const char *serial, struct cstate *st,
                    struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        state_unknown(st);
        if ((rc = gmca_q_open(s, SQL_STATUS, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "OCSP: certificate %s", serial);
        if (rc == GMCA_DB_ROW && gmca_q_col_int(&q, 0) == ca_id) {
                int64_t status = gmca_q_col_int(&q, 1);

                if (status == GMCA_CERT_REVOKED) {
                        st->status = V_OCSP_CERTSTATUS_REVOKED;
                        st->revoked_at = gmca_q_col_int(&q, 2);
                        st->reason = (int)gmca_q_col_int(&q, 3);
                } else if (status == GMCA_CERT_VALID) {
                        st->status = V_OCSP_CERTSTATUS_GOOD;
                }
        }
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/*
 * The status of one certificate into *st, and its serial into hex ("" when
 * the CertID is not r's, then unknown without asking the store); 0, or the
 * store's error code.
 */
static int lookup(struct gmca_store *s, const struct gmca_ocsp_responder *r, OCSP_CERTID *cid,
                  struct cstate *st, char hex[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        ASN1_INTEGER *sn = NULL;

        hex[0] = '\0';
        state_unknown(st);
        if (cid_match(cid, r) != ID_MATCH || OCSP_id_get0_info(NULL, NULL, NULL, &sn, cid) != 1 ||
            serial_hex(sn, hex) != 0) {
                hex[0] = '\0';
                return 0;
        }
        return state_of(s, r->ca_id, hex, st, e);
}

/*
 * The SingleResponses, each encoded through libcrypto's own type (built
 * on a scratch BasicOCSPResponse that is never signed). Returns 0, or the
 * store's error code.
 */
static int singles(struct gmca_store *s, const struct gmca_ocsp_responder *r, OCSP_REQUEST *req,
                   ASN1_GENERALIZEDTIME *thisupd, ASN1_GENERALIZEDTIME *nextupd, struct buf *out,
                   struct cstate *first, char first_hex[GMCA_SERIAL_HEX_MAX],
                   struct gmca_ocsp_answer *a, struct gmca_error *e)
{
        OCSP_BASICRESP *tmp = OCSP_BASICRESP_new();
        ASN1_TIME *rt = NULL;
        int rc = GMCA_ERR_NOMEM;

        if (tmp == NULL)
                goto out;
        for (int i = 0; i < OCSP_request_onereq_count(req); i++) {
                OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
                struct cstate cs;
                char hex[GMCA_SERIAL_HEX_MAX];
                OCSP_SINGLERESP *one;
                int st, reason = OCSP_REVOKED_STATUS_NOSTATUS;

                if ((rc = lookup(s, r, cid, &cs, hex, e)) != 0)
                        goto out;
                rc = GMCA_ERR_NOMEM;
                if (i == 0) {
                        *first = cs;
                        memcpy(first_hex, hex, GMCA_SERIAL_HEX_MAX);
                }
                st = cs.status;
                if (st == V_OCSP_CERTSTATUS_REVOKED) {
                        /* reasonCode unspecified (0) is left out (RFC 5280 §5.3.1). */
                        if (cs.reason > 0 && cs.reason <= 10 && cs.reason != 7)
                                reason = cs.reason;
                        ASN1_TIME_free(rt);
                        if ((rt = ASN1_GENERALIZEDTIME_set(NULL, (time_t)cs.revoked_at)) == NULL)
                                goto out;
                }
                one = OCSP_basic_add1_status(tmp, cid, st, reason,
                                             st == V_OCSP_CERTSTATUS_REVOKED ? rt : NULL, thisupd,
                                             nextupd);
                if (one == NULL || (rc = PUT_I2D(out, i2d_OCSP_SINGLERESP, one)) != 0) {
                        rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "OCSP: SingleResponse not made");
                        goto out;
                }
                if (st == V_OCSP_CERTSTATUS_GOOD)
                        a->good++;
                else if (st == V_OCSP_CERTSTATUS_REVOKED)
                        a->revoked++;
                else
                        a->unknown++;
        }
        rc = 0;
out:
        ASN1_TIME_free(rt);
        OCSP_BASICRESP_free(tmp);
        return rc;
}

/* The nonce to echo (RFC 8954 §2.1), non-critical, or NULL if the request has none. */
static X509_EXTENSION *nonce_echo(OCSP_REQUEST *req, int *bad)
{
        int i = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
        X509_EXTENSION *x;

        *bad = 0;
        if (i < 0)
                return NULL;
        x = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_Nonce, 0,
                                         X509_EXTENSION_get_data(OCSP_REQUEST_get_ext(req, i)));
        *bad = x == NULL;
        return x;
}

/*
 * The signed BasicOCSPResponse (RFC 6960 §4.2.1) around the SingleResponses
 * in sr, as an OCSPResponse with status successful, DER in *out.
 */
static int sign_response(const struct gmca_ocsp_responder *r, const struct buf *sr,
                         ASN1_GENERALIZEDTIME *produced, X509_EXTENSION *nonce, uint8_t **out,
                         size_t *outlen, struct gmca_error *e)
{
        struct buf rd = {0}, tbs = {0}, tmp = {0}, bas = {0}, outer = {0};
        uint8_t sig[GMCA_SM2_SIG_MAX + 1];
        size_t siglen = 0;
        X509_ALGOR *alg = X509_ALGOR_new();
        OCSP_BASICRESP *bs = NULL;
        OCSP_RESPONSE *resp = NULL;
        const unsigned char *p;
        unsigned char *der = NULL;
        int l, rc = GMCA_ERR_NOMEM;

        /* ResponseData: version absent (v1), responderID byKey [2], producedAt, responses. */
        if (tlv(&tmp, 0, V_ASN1_OCTET_STRING, V_ASN1_UNIVERSAL, r->respid, sizeof(r->respid)) ||
            tlv(&rd, 1, 2, V_ASN1_CONTEXT_SPECIFIC, tmp.p, tmp.len) ||
            PUT_I2D(&rd, i2d_ASN1_GENERALIZEDTIME, produced) ||
            tlv(&rd, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, sr->p, sr->len))
                goto out;
        if (nonce != NULL) {
                tmp.len = 0;
                if (PUT_I2D(&tmp, i2d_X509_EXTENSION, nonce) != 0)
                        goto out;
                {
                        struct buf seq = {0};

                        rc = tlv(&seq, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, tmp.p, tmp.len);
                        if (rc == 0)
                                rc = tlv(&rd, 1, 1, V_ASN1_CONTEXT_SPECIFIC, seq.p, seq.len);
                        OPENSSL_free(seq.p);
                        if (rc != 0)
                                goto out;
                        rc = GMCA_ERR_NOMEM;
                }
        }
        if (tlv(&tbs, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, rd.p, rd.len))
                goto out;
        if ((rc = r->signer->sign(r->signer->arg, tbs.p, tbs.len, sig, &siglen, e)) != 0)
                goto out;
        rc = GMCA_ERR_NOMEM;
        if (siglen == 0 || siglen > GMCA_SM2_SIG_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_CRYPTO, "OCSP: signer returned %zu bytes", siglen);
                goto out;
        }
        /* BIT STRING with no unused bits: a leading 0 octet. */
        memmove(sig + 1, sig, siglen);
        sig[0] = 0;
        if (alg == NULL ||
            X509_ALGOR_set0(alg, OBJ_nid2obj(NID_SM2_with_SM3), V_ASN1_UNDEF, NULL) != 1)
                goto out;
        bas = tbs;
        tbs.p = NULL;
        tmp.len = 0;
        if (PUT_I2D(&bas, i2d_X509_ALGOR, alg) ||
            tlv(&bas, 0, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL, sig, siglen + 1))
                goto out;
        /* A CA-signed response carries no certificate: the client has the CA's. */
        if (r->cert != NULL) {
                struct buf seq = {0};

                if ((rc = PUT_I2D(&tmp, i2d_X509, r->cert)) == 0)
                        rc = tlv(&seq, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, tmp.p, tmp.len);
                if (rc == 0)
                        rc = tlv(&bas, 1, 0, V_ASN1_CONTEXT_SPECIFIC, seq.p, seq.len);
                OPENSSL_free(seq.p);
                if (rc != 0)
                        goto out;
                rc = GMCA_ERR_NOMEM;
        }
        if (tlv(&outer, 1, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, bas.p, bas.len))
                goto out;
        /* Back through libcrypto: the DER must be a BasicOCSPResponse, exactly. */
        p = outer.p;
        if ((bs = d2i_OCSP_BASICRESP(NULL, &p, (long)outer.len)) == NULL ||
            p != outer.p + outer.len ||
            (resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) == NULL ||
            (l = i2d_OCSP_RESPONSE(resp, &der)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "OCSP: response does not re-parse");
                goto out;
        }
        *out = der;
        *outlen = (size_t)l;
        rc = 0;
out:
        OPENSSL_cleanse(sig, sizeof(sig));
        OPENSSL_free(rd.p);
        OPENSSL_free(tbs.p);
        OPENSSL_free(tmp.p);
        OPENSSL_free(bas.p);
        OPENSSL_free(outer.p);
        X509_ALGOR_free(alg);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        return rc;
}

/* ---- the cache of pre-signed responses ------------------------------------ */

/*
 * An entry is keyed by the exact bytes of a request that parsed and was
 * answered "successful" with one CertID and no nonce: the same bytes
 * always parse to the same CertID, so a hit skips the parsing, the
 * responder choice and the signature, and keeps only the store check.
 */
struct slot {
        size_t keylen; /* 0: free */
        uint8_t key[CACHE_KEY_MAX];
        char serial[GMCA_SERIAL_HEX_MAX]; /* "": a CertID not matched (unknown, no store row) */
        int64_t ca_id;
        struct cstate st; /* what the response says */
        int64_t this_update, next_update;
        int64_t valid_until; /* nextUpdate - margin, or the responder's notAfter if sooner */
        uint8_t digest[GMCA_SM3_LEN]; /* SM3 of der */
        uint8_t *der;                 /* OPENSSL_malloc'd */
        size_t len;
};

struct gmca_ocsp_cache {
        pthread_mutex_t lock;
        size_t n;
        struct slot *slots;
        struct gmca_ocsp_cache_stats stats;
};

struct gmca_ocsp_cache *gmca_ocsp_cache_new(size_t nslots)
{
        struct gmca_ocsp_cache *c;

        if (nslots == 0)
                nslots = GMCA_OCSP_CACHE_SLOTS_DEFAULT;
        if (nslots > GMCA_OCSP_CACHE_SLOTS_MAX)
                nslots = GMCA_OCSP_CACHE_SLOTS_MAX;
        if ((c = OPENSSL_zalloc(sizeof(*c))) == NULL)
                return NULL;
        if ((c->slots = OPENSSL_zalloc(nslots * sizeof(*c->slots))) == NULL ||
            pthread_mutex_init(&c->lock, NULL) != 0) {
                OPENSSL_free(c->slots);
                OPENSSL_free(c);
                return NULL;
        }
        c->n = nslots;
        return c;
}

void gmca_ocsp_cache_free(struct gmca_ocsp_cache *c)
{
        if (c == NULL)
                return;
        for (size_t i = 0; i < c->n; i++)
                OPENSSL_free(c->slots[i].der);
        OPENSSL_free(c->slots);
        pthread_mutex_destroy(&c->lock);
        OPENSSL_free(c);
}

void gmca_ocsp_cache_stats(struct gmca_ocsp_cache *c, struct gmca_ocsp_cache_stats *st)
{
        memset(st, 0, sizeof(*st));
        if (c == NULL)
                return;
        pthread_mutex_lock(&c->lock);
        *st = c->stats;
        pthread_mutex_unlock(&c->lock);
}

/* FNV-1a over the request: it only spreads requests over the slots. */
static struct slot *slot_of(struct gmca_ocsp_cache *c, const uint8_t *key, size_t len)
{
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < len; i++)
                h = (h ^ key[i]) * 1099511628211ULL;
        return &c->slots[h % c->n];
}

static int same_state(const struct cstate *a, const struct cstate *b)
{
        return a->status == b->status && a->revoked_at == b->revoked_at && a->reason == b->reason;
}

/*
 * The pre-signed answer to the request bytes req, if there is one fresh at
 * now and the store still says what it says: 0 with a copy in *out (caller
 * frees) and a filled; 1 if the request must take the full path; a
 * negative code if the store cannot be read (e set).
 */
static int cache_get(struct gmca_ocsp_cache *c, struct gmca_store *s, const uint8_t *req,
                     size_t len, int64_t now, uint8_t **out, size_t *outlen,
                     struct gmca_ocsp_answer *a, struct gmca_error *e)
{
        struct slot *sl = slot_of(c, req, len);
        char serial[GMCA_SERIAL_HEX_MAX];
        struct cstate was, is;
        int64_t ca_id = 0, tu = 0, nu = 0;
        uint8_t *copy = NULL;
        size_t n = 0;
        int rc;

        pthread_mutex_lock(&c->lock);
        if (sl->keylen != len || memcmp(sl->key, req, len) != 0) {
                c->stats.misses++;
        } else if (now < sl->this_update || now >= sl->valid_until) {
                c->stats.stale++;
        } else if ((copy = OPENSSL_memdup(sl->der, sl->len)) != NULL) {
                /* Counted a hit now; taken back below if the store disagrees. */
                c->stats.hits++;
                n = sl->len;
                memcpy(serial, sl->serial, sizeof(serial));
                ca_id = sl->ca_id;
                was = sl->st;
                tu = sl->this_update;
                nu = sl->next_update;
                memcpy(a->digest, sl->digest, sizeof(a->digest));
        }
        pthread_mutex_unlock(&c->lock);
        if (copy == NULL)
                return 1;
        state_unknown(&is);
        if (serial[0] != '\0' && (rc = state_of(s, ca_id, serial, &is, e)) != 0) {
                OPENSSL_free(copy);
                return rc;
        }
        if (!same_state(&was, &is)) {
                pthread_mutex_lock(&c->lock);
                c->stats.hits--;
                c->stats.changed++;
                pthread_mutex_unlock(&c->lock);
                OPENSSL_free(copy);
                return 1;
        }
        *out = copy;
        *outlen = n;
        a->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
        a->cached = 1;
        a->has_digest = 1;
        a->this_update = tu;
        a->next_update = nu;
        a->good = is.status == V_OCSP_CERTSTATUS_GOOD;
        a->revoked = is.status == V_OCSP_CERTSTATUS_REVOKED;
        a->unknown = is.status == V_OCSP_CERTSTATUS_UNKNOWN;
        return 0;
}

/* Keep a copy of a freshly signed response; a failed copy just leaves the slot as it was. */
static void cache_put(struct gmca_ocsp_cache *c, const uint8_t *req, size_t len, const char *serial,
                      int64_t ca_id, const struct cstate *st, int64_t this_update,
                      int64_t next_update, int64_t valid_until, const uint8_t digest[GMCA_SM3_LEN],
                      const uint8_t *der, size_t derlen)
{
        struct slot *sl = slot_of(c, req, len);
        uint8_t *copy = OPENSSL_memdup(der, derlen), *old = NULL;

        if (copy == NULL)
                return;
        pthread_mutex_lock(&c->lock);
        /* An older signature finishing late must not replace a newer one. */
        if (sl->keylen == len && memcmp(sl->key, req, len) == 0 && sl->this_update > this_update) {
                old = copy;
        } else {
                if (sl->keylen == 0)
                        c->stats.entries++;
                old = sl->der;
                sl->der = copy;
                sl->len = derlen;
                memcpy(sl->key, req, len);
                sl->keylen = len;
                gmca_strlcpy(sl->serial, serial, sizeof(sl->serial));
                sl->ca_id = ca_id;
                sl->st = *st;
                sl->this_update = this_update;
                sl->next_update = next_update;
                sl->valid_until = valid_until;
                memcpy(sl->digest, digest, GMCA_SM3_LEN);
        }
        pthread_mutex_unlock(&c->lock);
        OPENSSL_free(old);
}

/* notAfter of x as seconds since the epoch, 0 if it cannot be read. */
static int64_t not_after(X509 *x)
{
        struct tm tm;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
                return 0;
        return (int64_t)timegm(&tm);
}

/* The responder for every matchable CertID of req, or NULL (unauthorized). */
static const struct gmca_ocsp_responder *pick(OCSP_REQUEST *req,
                                              const struct gmca_ocsp_responder *rs, size_t n)
{
        const struct gmca_ocsp_responder *chosen = NULL;

        for (int i = 0; i < OCSP_request_onereq_count(req); i++) {
                OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
                const struct gmca_ocsp_responder *hit = NULL;
                int hashed = 0;

                for (size_t k = 0; k < n && hit == NULL; k++) {
                        enum idstatus m = cid_match(cid, &rs[k]);

                        hashed |= m != ID_UNKNOWN_HASH;
                        if (m == ID_MATCH)
                                hit = &rs[k];
                }
                if (!hashed && n > 0)
                        continue; /* unsupported hash: answered unknown */
                if (hit == NULL || (chosen != NULL && hit != chosen))
                        return NULL;
                chosen = hit;
        }
        return chosen;
}

/*
 * A CA-signed responder (r->cert NULL) signs through the CA engine, which
 * refuses (and audits) a ResponseData with a CertID it cannot check: one
 * with another hash than SHA-1 or SM3 is answered "unauthorized" here
 * instead, so that such requests cannot fill the audit log.
 */
static int ca_signable(OCSP_REQUEST *req, const struct gmca_ocsp_responder *r)
{
        if (r->cert != NULL)
                return 1;
        for (int i = 0; i < OCSP_request_onereq_count(req); i++)
                if (cid_match(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)), r) != ID_MATCH)
                        return 0;
        return 1;
}

/* gmca_ocsp_respond; force: sign even if the cache has a fresh entry (refresh). */
static int respond(struct gmca_store *s, const struct gmca_ocsp_responder *rs, size_t n,
                   const struct gmca_ocsp_opts *o, const uint8_t *req, size_t len, int force,
                   uint8_t **out, size_t *outlen, struct gmca_ocsp_answer *a, struct gmca_error *e)
{
        struct gmca_ocsp_cache *cache = o != NULL ? o->cache : NULL;
        const struct gmca_ocsp_responder *r;
        int64_t now = o != NULL && o->now > 0 ? o->now : (int64_t)gmca_now();
        int64_t validity = o != NULL && o->validity > 0 ? o->validity : GMCA_OCSP_VALIDITY_DEFAULT;
        int64_t margin;
        ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
        X509_EXTENSION *nonce = NULL;
        OCSP_REQUEST *rq;
        struct buf sr = {0};
        struct cstate first = {0};
        char first_hex[GMCA_SERIAL_HEX_MAX] = "";
        int rc, bad = 0;

        memset(a, 0, sizeof(*a));
        if (cache != NULL && !force && len > 0 && len <= CACHE_KEY_MAX) {
                if ((rc = cache_get(cache, s, req, len, now, out, outlen, a, e)) == 0)
                        return 0;
                if (rc < 0)
                        return bare(rc == GMCA_ERR_DB ? OCSP_RESPONSE_STATUS_TRYLATER
                                                      : OCSP_RESPONSE_STATUS_INTERNALERROR,
                                    out, outlen, a, e);
        }
        if ((rq = gmca_ocsp_request_parse(req, len, e)) == NULL)
                return bare(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, out, outlen, a, e);
        if ((r = pick(rq, rs, n)) == NULL || !ca_signable(rq, r)) {
                gmca_error_set(e, GMCA_ERR_FORBIDDEN,
                               "OCSP request: RFC 6960 §2.3: an issuer this responder does not "
                               "serve");
                rc = bare(OCSP_RESPONSE_STATUS_UNAUTHORIZED, out, outlen, a, e);
                goto out;
        }
        if (validity > GMCA_OCSP_VALIDITY_MAX)
                validity = GMCA_OCSP_VALIDITY_MAX;
        margin = o != NULL && o->margin > 0 ? o->margin : validity / 4;
        /* A response under an expired responder certificate would be refused by every client. */
        {
                time_t t = (time_t)now;

                X509 *sc = r->cert != NULL ? r->cert : r->ca;

                if (X509_cmp_time(X509_get0_notAfter(sc), &t) <= 0 ||
                    X509_cmp_time(X509_get0_notBefore(sc), &t) > 0) {
                        gmca_error_set(e, GMCA_ERR_STATE,
                                       "OCSP: the responder certificate is not valid now");
                        rc = bare(OCSP_RESPONSE_STATUS_INTERNALERROR, out, outlen, a, e);
                        goto out;
                }
        }
        nonce = nonce_echo(rq, &bad);
        if (bad || (thisupd = ASN1_GENERALIZEDTIME_set(NULL, (time_t)now)) == NULL ||
            (nextupd = ASN1_GENERALIZEDTIME_set(NULL, (time_t)(now + validity))) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "OCSP: out of memory");
                rc = bare(OCSP_RESPONSE_STATUS_INTERNALERROR, out, outlen, a, e);
                goto out;
        }
        if ((rc = singles(s, r, rq, thisupd, nextupd, &sr, &first, first_hex, a, e)) != 0) {
                /* A busy store may answer in a moment; anything else is ours. */
                rc = bare(rc == GMCA_ERR_DB ? OCSP_RESPONSE_STATUS_TRYLATER
                                            : OCSP_RESPONSE_STATUS_INTERNALERROR,
                          out, outlen, a, e);
                goto out;
        }
        if (sign_response(r, &sr, thisupd, nonce, out, outlen, e) != 0) {
                rc = bare(OCSP_RESPONSE_STATUS_INTERNALERROR, out, outlen, a, e);
                goto out;
        }
        a->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
        a->has_nonce = nonce != NULL;
        a->this_update = now;
        a->next_update = now + validity;
        /* The RFC 5019 profile is kept: one CertID, no nonce. */
        if (nonce == NULL && OCSP_request_onereq_count(rq) == 1 &&
            gmca_sm3(*out, *outlen, a->digest) == 0) {
                int64_t until = now + validity - margin,
                        end = not_after(r->cert != NULL ? r->cert : r->ca);

                a->has_digest = 1;
                if (end < until)
                        until = end;
                if (cache != NULL && len <= CACHE_KEY_MAX)
                        cache_put(cache, req, len, first_hex, r->ca_id, &first, now, now + validity,
                                  until, a->digest, *out, *outlen);
        }
        rc = 0;
out:
        OPENSSL_free(sr.p);
        X509_EXTENSION_free(nonce);
        ASN1_GENERALIZEDTIME_free(thisupd);
        ASN1_GENERALIZEDTIME_free(nextupd);
        OCSP_REQUEST_free(rq);
        gmca_ossl_clear();
        return rc;
}

int gmca_ocsp_respond(struct gmca_store *s, const struct gmca_ocsp_responder *rs, size_t n,
                      const struct gmca_ocsp_opts *o, const uint8_t *req, size_t len, uint8_t **out,
                      size_t *outlen, struct gmca_ocsp_answer *a, struct gmca_error *e)
{
        return respond(s, rs, n, o, req, len, 0, out, outlen, a, e);
}

int gmca_ocsp_cache_refresh(struct gmca_ocsp_cache *c, struct gmca_store *s,
                            const struct gmca_ocsp_responder *rs, size_t n,
                            const struct gmca_ocsp_opts *o, int64_t ahead, struct gmca_error *e)
{
        struct gmca_ocsp_opts ro = {0};
        int done = 0;

        if (c == NULL)
                return 0;
        if (o != NULL)
                ro = *o;
        ro.cache = c;
        if (ro.now <= 0)
                ro.now = (int64_t)gmca_now();
        for (size_t i = 0; i < c->n; i++) {
                uint8_t req[CACHE_KEY_MAX], *resp = NULL;
                size_t len = 0, resplen = 0;
                struct gmca_ocsp_answer a;
                int rc;

                pthread_mutex_lock(&c->lock);
                if (c->slots[i].keylen > 0 && ro.now + ahead >= c->slots[i].valid_until) {
                        len = c->slots[i].keylen;
                        memcpy(req, c->slots[i].key, len);
                }
                pthread_mutex_unlock(&c->lock);
                if (len == 0)
                        continue;
                rc = respond(s, rs, n, &ro, req, len, 1, &resp, &resplen, &a, e);
                OPENSSL_free(resp);
                if (rc != 0)
                        return rc;
                if (a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL)
                        done++;
        }
        return done;
}
