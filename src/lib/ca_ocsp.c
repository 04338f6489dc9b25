/*
 * The CA engine's OCSP duties (ca_ocsp.h): issuing delegated responder
 * certificates to the front within a bound, and checking a ResponseData
 * against the store before a CA key signs it. Both read the engine's own
 * store connection; neither trusts a byte of what the front sends.
 *
 * Choices:
 * - A responder certificate's subject must carry CN "<CA name> OCSP
 *   Responder" (C and O as profile ocsp asks, taken from the CSR): a front
 *   cannot have the engine issue an ocsp certificate that looks like
 *   something else.
 * - The rotation bound counts unexpired, unrevoked ocsp certificates of
 *   the CA. A revoked responder (its key lost) does not block its
 *   replacement. "A quarter of its lifetime" is of the newest
 *   certificate's own validity, which is at most the profile's; with the
 *   front's default (rotate in the last third) the bound never bites in
 *   normal operation.
 * - A ResponseData whose CertID uses another hash than SHA-1 or SM3, or
 *   names another CA, is refused whole: the CA signs only what it can
 *   check.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "ca_internal.h"
#include "ca_ocsp.h"
#include "crypto.h"
#include "ocsp.h"
#include "store_internal.h"
#include "util.h"

#define OCSP_PROFILE "ocsp"

/* ---- responder certificates ---- */

static const char SQL_RESPONDERS[] =
    "SELECT COUNT(*), COALESCE(MAX(issued_at), 0) FROM certificates"
    " WHERE ca_id = ? AND profile = ? AND status = ? AND not_after > ?";
static const char SQL_NEWEST[] = "SELECT not_before, not_after FROM certificates"
                                 " WHERE ca_id = ? AND profile = ? AND status = ? AND not_after > ?"
                                 " ORDER BY issued_at DESC LIMIT 1";

/* Inside the transaction: GMCA_ERR_POLICY if the CA may not have another responder now. */
static int responder_bound(struct gmca_ctx *c, const struct ca_slot *ca, int64_t now,
                           struct gmca_error *e)
{
        struct gmca_q q;
        int64_t count = 0, newest = 0, nb = 0, na = 0;
        int rc;

        if ((rc = gmca_q_open(c->store, SQL_RESPONDERS, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, ca->rec.id);
        gmca_q_text(&q, OCSP_PROFILE);
        gmca_q_int(&q, GMCA_CERT_VALID);
        gmca_q_int(&q, now);
        if ((rc = gmca_q_step(&q, e, "OCSP responders of CA %s", ca->rec.name)) == GMCA_DB_ROW) {
                count = gmca_q_col_int(&q, 0);
                newest = gmca_q_col_int(&q, 1);
        }
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        if (count >= GMCA_OCSP_RESPONDERS_MAX)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "CA %s has %lld unexpired OCSP responder certificates "
                                      "already (at most %d: one to rotate to)",
                                      ca->rec.name, (long long)count, GMCA_OCSP_RESPONDERS_MAX);
        if (count == 0)
                return 0;
        if ((rc = gmca_q_open(c->store, SQL_NEWEST, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, ca->rec.id);
        gmca_q_text(&q, OCSP_PROFILE);
        gmca_q_int(&q, GMCA_CERT_VALID);
        gmca_q_int(&q, now);
        if ((rc = gmca_q_step(&q, e, "OCSP responders of CA %s", ca->rec.name)) == GMCA_DB_ROW) {
                nb = gmca_q_col_int(&q, 0);
                na = gmca_q_col_int(&q, 1);
        }
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        if (now - newest < (na - nb) / 4)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "CA %s: the newest OCSP responder certificate is %lld s "
                                      "old, under a quarter of its %lld s",
                                      ca->rec.name, (long long)(now - newest),
                                      (long long)(na - nb));
        return 0;
}

/* The CSR's subject must end in CN "<ca> OCSP Responder". */
static int responder_cn_ok(const uint8_t *csr, size_t len, const char *ca, struct gmca_error *e)
{
        char want[GMCA_NAME_MAX + sizeof(GMCA_OCSP_RESPONDER_CN_SUFFIX)];
        X509_REQ *req;
        X509_NAME *nm;
        unsigned char *cn = NULL;
        int i, n = -1, rc;

        if ((req = gmca_csr_parse(csr, len, GMCA_SM2_DEFAULT_ID, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_INVALID;
        snprintf(want, sizeof(want), "%s%s", ca, GMCA_OCSP_RESPONDER_CN_SUFFIX);
        nm = X509_REQ_get_subject_name(req);
        i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
        if (i >= 0 && X509_NAME_get_index_by_NID(nm, NID_commonName, i) < 0)
                n = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));
        if (n < 0 || (size_t)n != strlen(want) || memcmp(cn, want, (size_t)n) != 0)
                rc =
                    gmca_error_set(e, GMCA_ERR_POLICY,
                                   "OCSP responder CSR: the subject's one CN must be \"%s\"", want);
        else
                rc = 0;
        OPENSSL_free(cn);
        X509_REQ_free(req);
        gmca_ossl_clear();
        return rc;
}

int gmca_ca_ocsp_issue(struct gmca_ctx *c, const char *ca, const uint8_t *csr, size_t len,
                       int64_t seconds, const char *actor, uint8_t **der, size_t *derlen,
                       char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        char saved[GMCA_ACTOR_MAX];
        struct gmca_issue_req r = {.ca = ca, .profile = OCSP_PROFILE, .csr = csr, .csr_len = len};
        struct gmca_profile *prof;
        struct ca_slot *slot;
        int64_t now = (int64_t)gmca_now(), max;
        X509 *cert = NULL;
        uint8_t *out = NULL;
        size_t outlen = 0;
        int rc;

        if (ca == NULL || csr == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "OCSP responder: CA and CSR required");
        if ((slot = ca_find(c, ca, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if ((prof = gmca_ctx_profile(c, OCSP_PROFILE, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        max = (int64_t)prof->validity_days * 86400;
        if (seconds != 0 && (seconds < GMCA_OCSP_CERT_SECONDS_MIN || seconds > max))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "OCSP responder: validity of %lld s (%d..%lld allowed by "
                                      "profile ocsp)",
                                      (long long)seconds, GMCA_OCSP_CERT_SECONDS_MIN,
                                      (long long)max);
        if ((rc = responder_cn_ok(csr, len, slot->rec.name, e)) != 0)
                return rc;
        if (seconds > 0)
                r.not_after = now + seconds;
        gmca_strlcpy(saved, c->actor, sizeof(saved));
        if (actor != NULL)
                gmca_strlcpy(c->actor, actor, sizeof(c->actor));
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                goto out;
        if ((rc = responder_bound(c, slot, now, e)) != 0 ||
            (rc = ca_issue_in_tx(c, &r, serial, &cert, e)) != 0 ||
            (rc = ca_cert_der(cert, &out, &outlen, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                goto out;
        }
        *der = out;
        *derlen = outlen;
        out = NULL;
out:
        gmca_strlcpy(c->actor, saved, sizeof(c->actor));
        OPENSSL_free(out);
        X509_free(cert);
        return rc;
}

/* ---- checking a ResponseData before the CA signs it ---- */

/* AlgorithmIdentifier SM2-with-SM3 and an empty BIT STRING: the scratch signature. */
static const uint8_t scratch_tail[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf,
                                       0x55, 0x01, 0x83, 0x75, 0x03, 0x01, 0x00};

/* DER length octets of n into p (at most 5); their count. */
static size_t der_len(size_t n, uint8_t *p)
{
        size_t k = 0;

        if (n < 0x80) {
                p[0] = (uint8_t)n;
                return 1;
        }
        for (size_t v = n; v > 0; v >>= 8)
                k++;
        p[0] = (uint8_t)(0x80 | k);
        for (size_t i = 0; i < k; i++)
                p[1 + i] = (uint8_t)(n >> (8 * (k - 1 - i)));
        return 1 + k;
}

OCSP_BASICRESP *gmca_ocsp_respdata_parse(const uint8_t *rd, size_t len, struct gmca_error *e)
{
        OCSP_BASICRESP *bs = NULL;
        uint8_t *buf = NULL, *re = NULL, hdr[6];
        const unsigned char *p;
        size_t body, hl, total;
        int l;

        if (rd == NULL || len < 2 || len > GMCA_OCSP_REQ_MAX * 2) {
                gmca_error_set(e, GMCA_ERR_INVALID, "ResponseData: empty or over %d bytes",
                               GMCA_OCSP_REQ_MAX * 2);
                return NULL;
        }
        /* RFC 6960 §4.2.1: version [0] DEFAULT v1, so DER leaves it out. */
        if (rd[0] != 0x30 || (len > 2 && ((rd[1] < 0x80 && rd[2] == 0xa0) ||
                                          (rd[1] > 0x80 && (size_t)(rd[1] & 0x7f) + 2 < len &&
                                           rd[2 + (rd[1] & 0x7f)] == 0xa0)))) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "ResponseData: not a SEQUENCE, or a version present (RFC 6960 "
                               "§4.2.1: v1 is absent in DER)");
                return NULL;
        }
        body = len + sizeof(scratch_tail);
        hl = 1 + der_len(body, hdr + 1);
        hdr[0] = 0x30;
        total = hl + body;
        if ((buf = OPENSSL_malloc(total)) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        memcpy(buf, hdr, hl);
        memcpy(buf + hl, rd, len);
        memcpy(buf + hl + len, scratch_tail, sizeof(scratch_tail));
        p = buf;
        /* Exactly the bytes given, and DER: the re-encoding is byte for byte the input. */
        if ((bs = d2i_OCSP_BASICRESP(NULL, &p, (long)total)) == NULL || p != buf + total ||
            (l = i2d_OCSP_BASICRESP(bs, &re)) <= 0 || (size_t)l != total ||
            memcmp(re, buf, total) != 0) {
                OCSP_BASICRESP_free(bs);
                bs = NULL;
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "ResponseData: not exactly one DER ResponseData (RFC 6960 "
                               "§4.2.1)");
        }
        OPENSSL_free(buf);
        OPENSSL_free(re);
        gmca_ossl_clear();
        return bs;
}

/* Seconds since the epoch of a GeneralizedTime, or -1. */
static int64_t gtime(const ASN1_GENERALIZEDTIME *t)
{
        struct tm tm;

        if (t == NULL || ASN1_STRING_type(t) != V_ASN1_GENERALIZEDTIME ||
            ASN1_TIME_to_tm(t, &tm) != 1)
                return -1;
        return (int64_t)timegm(&tm);
}

/* The CA's hashes (SHA-1 and SM3 of its name and key) and its key's SHA-1 for byKey. */
struct ca_hashes {
        uint8_t name1[20], key1[20], name3[GMCA_SM3_LEN], key3[GMCA_SM3_LEN];
};

static int hashes_of(X509 *ca, struct ca_hashes *h, struct gmca_error *e)
{
        unsigned a = 0, b = 0, c = 0, d = 0;

        if (X509_NAME_digest(X509_get_subject_name(ca), EVP_sha1(), h->name1, &a) != 1 ||
            X509_pubkey_digest(ca, EVP_sha1(), h->key1, &b) != 1 ||
            X509_NAME_digest(X509_get_subject_name(ca), EVP_sm3(), h->name3, &c) != 1 ||
            X509_pubkey_digest(ca, EVP_sm3(), h->key3, &d) != 1 || a != 20 || b != 20 ||
            c != GMCA_SM3_LEN || d != GMCA_SM3_LEN)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "OCSP: cannot hash the CA");
        return 0;
}

static int octets_are(const ASN1_OCTET_STRING *s, const uint8_t *want, size_t n)
{
        return s != NULL && (size_t)ASN1_STRING_length(s) == n &&
               memcmp(ASN1_STRING_get0_data(s), want, n) == 0;
}

/* 0 if the CertID names this CA with SHA-1 or SM3; its serial (store hex) into hex. */
static int certid_ok(OCSP_CERTID *id, const struct ca_hashes *h, char hex[GMCA_SERIAL_HEX_MAX])
{
        ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
        ASN1_OBJECT *md = NULL;
        ASN1_INTEGER *sn = NULL;
        int nid, n;

        if (OCSP_id_get0_info(&nh, &md, &kh, &sn, id) != 1)
                return -1;
        nid = OBJ_obj2nid(md);
        if (!(nid == NID_sha1 && octets_are(nh, h->name1, 20) && octets_are(kh, h->key1, 20)) &&
            !(nid == NID_sm3 && octets_are(nh, h->name3, GMCA_SM3_LEN) &&
              octets_are(kh, h->key3, GMCA_SM3_LEN)))
                return -1;
        n = ASN1_STRING_length(sn);
        if (ASN1_STRING_type(sn) != V_ASN1_INTEGER || n < 1 || n > 20)
                return -1;
        gmca_hex_upper(ASN1_STRING_get0_data(sn), (size_t)n, hex);
        return 0;
}

static const char SQL_STATE[] =
    "SELECT ca_id, status, revoked_at, reason FROM certificates WHERE serial = ?";

/* 0 if the status claimed for serial is the store's. */
static int status_ok(struct gmca_store *s, int64_t ca_id, const char *hex, OCSP_SINGLERESP *one,
                     struct gmca_error *e)
{
        ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
        int reason = -1, st = OCSP_single_get0_status(one, &reason, &rev, &tu, &nu);
        int want = V_OCSP_CERTSTATUS_UNKNOWN, want_reason = OCSP_REVOKED_STATUS_NOSTATUS;
        int64_t want_time = 0;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_STATE, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, hex);
        rc = gmca_q_step(&q, e, "OCSP: certificate %s", hex);
        if (rc == GMCA_DB_ROW && gmca_q_col_int(&q, 0) == ca_id) {
                if (gmca_q_col_int(&q, 1) == GMCA_CERT_REVOKED) {
                        int r = (int)gmca_q_col_int(&q, 3);

                        want = V_OCSP_CERTSTATUS_REVOKED;
                        want_time = gmca_q_col_int(&q, 2);
                        /* As ocsp.c writes it: unspecified (0) left out (RFC 5280 §5.3.1). */
                        if (r > 0 && r <= 10 && r != 7)
                                want_reason = r;
                } else {
                        want = V_OCSP_CERTSTATUS_GOOD;
                }
        }
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        if (st != want)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "certificate %s is %s in the store; the ResponseData says "
                                      "%s",
                                      hex, OCSP_cert_status_str(want), OCSP_cert_status_str(st));
        if (st == V_OCSP_CERTSTATUS_REVOKED && (gtime(rev) != want_time || reason != want_reason))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "certificate %s: revocation time or reason is not the "
                                      "store's",
                                      hex);
        return 0;
}

/* The times of one SingleResponse: thisUpdate near now, nextUpdate after it and bounded. */
static int times_ok(OCSP_SINGLERESP *one, int64_t now, const char *hex, struct gmca_error *e)
{
        ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
        int reason = -1;
        int64_t t, n;

        (void)OCSP_single_get0_status(one, &reason, &rev, &tu, &nu);
        t = gtime(tu);
        n = gtime(nu);
        if (t < 0 || t > now + GMCA_OCSP_CLOCK_SKEW || t < now - GMCA_OCSP_CLOCK_SKEW)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "certificate %s: thisUpdate not within %d s of now", hex,
                                      GMCA_OCSP_CLOCK_SKEW);
        if (n < 0 || n <= t || n > now + GMCA_OCSP_VALIDITY_MAX)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "certificate %s: nextUpdate absent, before thisUpdate or "
                                      "past now + %d s",
                                      hex, GMCA_OCSP_VALIDITY_MAX);
        return 0;
}

/* responderID byKey of the CA, producedAt near now, no extension but a nonce. */
static int header_ok(OCSP_BASICRESP *bs, const struct ca_hashes *h, int64_t now,
                     struct gmca_error *e)
{
        const ASN1_OCTET_STRING *kid = NULL;
        const X509_NAME *byname = NULL;
        int64_t p;

        if (OCSP_resp_get0_id(bs, &kid, &byname) != 1 || byname != NULL ||
            !octets_are(kid, h->key1, 20))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "ResponseData: responderID is not byKey of this CA's key "
                                      "(RFC 6960 §4.2.2.3)");
        p = gtime(OCSP_resp_get0_produced_at(bs));
        if (p < 0 || p > now + GMCA_OCSP_CLOCK_SKEW || p < now - GMCA_OCSP_CLOCK_SKEW)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "ResponseData: producedAt not within %d s of now",
                                      GMCA_OCSP_CLOCK_SKEW);
        for (int i = 0; i < OCSP_BASICRESP_get_ext_count(bs); i++) {
                X509_EXTENSION *x = OCSP_BASICRESP_get_ext(bs, i);

                if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) != NID_id_pkix_OCSP_Nonce ||
                    X509_EXTENSION_get_critical(x) || i > 0)
                        return gmca_error_set(e, GMCA_ERR_POLICY,
                                              "ResponseData: an extension other than one "
                                              "non-critical nonce");
        }
        if (OCSP_resp_count(bs) < 1 || OCSP_resp_count(bs) > GMCA_OCSP_CERTIDS_MAX)
                return gmca_error_set(e, GMCA_ERR_POLICY, "ResponseData: %d responses (1..%d)",
                                      OCSP_resp_count(bs), GMCA_OCSP_CERTIDS_MAX);
        return 0;
}

int gmca_ca_ocsp_check(struct gmca_ctx *c, const char *ca, const uint8_t *rd, size_t len,
                       int64_t now, struct gmca_error *e)
{
        struct ca_hashes h;
        struct ca_slot *slot;
        OCSP_BASICRESP *bs;
        int rc;

        if ((slot = ca_find(c, ca, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if ((rc = hashes_of(slot->cert, &h, e)) != 0)
                return rc;
        if ((bs = gmca_ocsp_respdata_parse(rd, len, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_INVALID;
        if ((rc = header_ok(bs, &h, now, e)) != 0)
                goto out;
        for (int i = 0; i < OCSP_resp_count(bs); i++) {
                OCSP_SINGLERESP *one = OCSP_resp_get0(bs, i);
                char hex[GMCA_SERIAL_HEX_MAX];

                if (OCSP_SINGLERESP_get_ext_count(one) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                            "ResponseData: a SingleResponse with extensions");
                        goto out;
                }
                if (certid_ok((OCSP_CERTID *)OCSP_SINGLERESP_get0_id(one), &h, hex) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                            "ResponseData: a CertID that is not CA %s's by "
                                            "SHA-1 or SM3",
                                            slot->rec.name);
                        goto out;
                }
                if ((rc = times_ok(one, now, hex, e)) != 0 ||
                    (rc = status_ok(c->store, slot->rec.id, hex, one, e)) != 0)
                        goto out;
        }
        rc = 0;
out:
        OCSP_BASICRESP_free(bs);
        gmca_ossl_clear();
        return rc;
}
