/*
 * Sync push to downstream e-government systems (sync.h, CPS §4.6.1,
 * §4.6.2): building each event's JSON payload from the store, signing it
 * into a GM/T 0010 SignedData with the CA's sync key, POSTing it with
 * libcurl, and the receiver's check of such a body. The delivery loop,
 * cursor and backoff are publish.c's; this file only says, per event,
 * delivered (2xx), refused for good (4xx but 408 and 429: GMCA_ERR_POLICY,
 * which the pump audits and skips) or try again (anything else).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gmca/message.h"

#include "app_internal.h"
#include "crl.h"
#include "gmt0010.h"
#include "store_internal.h"
#include "sync.h"
#include "util.h"
#include "x509.h"

#define REPLY_MAX 65536 /* bytes of a receiver's answer read (and dropped) */

/* The application that produced a certificate, and its applicant. */
static const char SQL_APP[] = "SELECT a.type, p.kind, p.org_name FROM applications a"
                              " JOIN applicants p ON p.id = a.applicant_id"
                              " WHERE a.issued_serial = ? ORDER BY a.id DESC LIMIT 1";
/* The signature certificate an encryption certificate pairs with, and back. */
static const char SQL_PAIR_SIG[] = "SELECT sig_serial FROM dual_keys WHERE enc_serial = ?";
static const char SQL_PAIR_ENC[] =
    "SELECT enc_serial FROM dual_keys WHERE sig_serial = ? ORDER BY created DESC LIMIT 1";
/* An application that replaced the certificate (a reissue revokes the one it replaces). */
static const char SQL_REPLACED_BY[] = "SELECT type FROM applications WHERE old_serial = ?"
                                      " AND issued_serial IS NOT NULL ORDER BY id DESC LIMIT 1";
static const char SQL_REVOKED_BY_RA[] =
    "SELECT COUNT(*) FROM revocation_requests WHERE serial = ? AND state = 'completed'";

/* ---- setting up ------------------------------------------------------------- */

static int name_ok(const char *n, size_t len)
{
        if (len == 0 || len >= GMCA_SYNC_NAME_MAX)
                return 0;
        for (size_t i = 0; i < len; i++)
                if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-",
                           n[i]) == NULL)
                        return 0;
        return 1;
}

/* The sync profile's key usage, and no extKeyUsage (sync.h). */
static int signer_usage_ok(X509 *cert, struct gmca_error *e)
{
        const uint32_t want = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
        const uint32_t never = KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT | KU_KEY_AGREEMENT |
                               KU_KEY_CERT_SIGN | KU_CRL_SIGN;
        uint32_t ku;

        if (X509_check_purpose(cert, -1, 0) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_POLICY, "sync signer: extensions do not parse");
        }
        ku = X509_get_key_usage(cert);
        if (ku == UINT32_MAX || (ku & want) != want || (ku & never) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "sync signer: keyUsage must be digitalSignature and "
                                      "nonRepudiation only (profile " GMCA_SYNC_PROFILE ")");
        if (X509_get_ext_by_NID(cert, NID_ext_key_usage, -1) >= 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "sync signer: has extKeyUsage, so it is not a certificate "
                                      "of profile " GMCA_SYNC_PROFILE);
        return 0;
}

int gmca_sync_check_signer(X509 *cert, EVP_PKEY *key, struct gmca_error *e)
{
        time_t now = gmca_now();
        int rc;

        if (X509_check_private_key(cert, key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_TAMPER, "sync: the key is not the certificate's");
        }
        if ((rc = signer_usage_ok(cert, e)) != 0)
                return rc;
        if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0 ||
            X509_cmp_time(X509_get0_notAfter(cert), &now) < 0) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_POLICY, "sync signer: not valid now");
        }
        return 0;
}

static int deliver(void *arg, struct gmca_store *s, const struct gmca_event *ev,
                   struct gmca_error *e);

int gmca_sync_receiver_init(struct gmca_sync_receiver *r, const char *spec, X509 *cert,
                            EVP_PKEY *key, const char *ca_file, struct gmca_error *e)
{
        const char *eq = spec != NULL ? strchr(spec, '=') : NULL;
        const char *url = eq != NULL ? eq + 1 : NULL;

        memset(r, 0, sizeof(*r));
        if (eq == NULL || !name_ok(spec, (size_t)(eq - spec)))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--sync: NAME=URL with a NAME of 1..%d of [A-Za-z0-9_.-]",
                                      GMCA_SYNC_NAME_MAX - 1);
        if (strlen(url) >= GMCA_SYNC_URL_MAX ||
            (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
            strpbrk(url, " \t\r\n") != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--sync %.*s: an http:// or https:// URL under %d bytes",
                                      (int)(eq - spec), spec, GMCA_SYNC_URL_MAX);
        memcpy(r->name, spec, (size_t)(eq - spec));
        gmca_strlcpy(r->url, url, sizeof(r->url));
        snprintf(r->pub.channel, sizeof(r->pub.channel), "sync:%s", r->name);
        r->pub.deliver = deliver;
        r->pub.arg = r;
        r->ca_file = ca_file;
        r->cert = cert;
        r->key = key;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "sync: libcurl does not start");
        return 0;
}

/* ---- the payload -------------------------------------------------------------- */

static json_t *iso(int64_t t)
{
        char buf[32];

        if (t <= 0)
                return json_null();
        gmca_time_iso((time_t)t, buf, sizeof(buf));
        return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
        return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

/*
 * The subject DN as [{"C": "CN"}, {"O": ...}, ...] in certificate order,
 * serialNumber left out: some profiles allow it and it may hold a personal
 * number (CPS §8.4.4).
 */
static json_t *dn_json(const X509_NAME *name)
{
        json_t *a = json_array();
        int n = X509_NAME_entry_count(name);

        for (int i = 0; a != NULL && i < n && i < GMCA_DN_RDN_MAX; i++) {
                const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, i);
                int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne));
                const char *key = nid == NID_pkcs9_emailAddress ? "E" : OBJ_nid2sn(nid);
                unsigned char *utf8 = NULL;
                int len;

                if (nid == NID_serialNumber || nid == NID_undef)
                        continue;
                if ((len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne))) < 0) {
                        gmca_ossl_clear();
                        continue;
                }
                if (json_array_append_new(a, json_pack("{s:s%}", key, (char *)utf8, (size_t)len)) !=
                    0) {
                        json_decref(a);
                        a = NULL;
                }
                OPENSSL_free(utf8);
        }
        return a;
}

/* One text column of a one-row query on serial, "" when there is no row. */
static int lookup(struct gmca_store *s, const char *sql, const char *serial, char *out, size_t len,
                  struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        out[0] = '\0';
        if ((rc = gmca_q_open(s, sql, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "sync: lookup for %s", serial);
        if (rc == GMCA_DB_ROW)
                rc = gmca_q_col_str(&q, 0, out, len, "serial", e);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

struct origin {
        char type[16];     /* the application's type; "" for none */
        char kind[32];     /* the applicant's */
        char org[512];     /* the applicant's organisation */
        char replaced[16]; /* the type of the application that replaced it; "" for none */
        int ra_revoked;    /* revoked on a completed RA revocation request */
};

/* Where a certificate came from: its application (that of the signature certificate of
 * its dual pair for an encryption certificate) and its revocation request. */
static int origin_get(struct gmca_store *s, const char *serial, struct origin *o,
                      struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(o, 0, sizeof(*o));
        if ((rc = gmca_q_open(s, SQL_APP, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "sync: application of %s", serial);
        if (rc == GMCA_DB_ROW &&
            (rc = gmca_q_col_str(&q, 0, o->type, sizeof(o->type), "type", e)) == 0 &&
            (rc = gmca_q_col_str(&q, 1, o->kind, sizeof(o->kind), "kind", e)) == 0)
                rc = gmca_q_col_str(&q, 2, o->org, sizeof(o->org), "org_name", e);
        gmca_q_close(&q);
        if (rc < 0 ||
            (rc = lookup(s, SQL_REPLACED_BY, serial, o->replaced, sizeof(o->replaced), e)) != 0)
                return rc;
        if ((rc = gmca_q_open(s, SQL_REVOKED_BY_RA, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "sync: revocation requests of %s", serial);
        if (rc == GMCA_DB_ROW)
                o->ra_revoked = gmca_q_col_int(&q, 0) > 0;
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

static char *der_pem(const uint8_t *der, size_t len)
{
        const uint8_t *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL, *data;
        long n;

        if (x != NULL && b != NULL && PEM_write_bio_X509(b, x) == 1 &&
            (n = BIO_get_mem_data(b, &data)) > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
                memcpy(pem, data, (size_t)n);
                pem[n] = '\0';
        }
        gmca_ossl_clear();
        X509_free(x);
        BIO_free(b);
        return pem;
}

static json_t *b64(const uint8_t *p, size_t len)
{
        size_t n = 4 * ((len + 2) / 3) + 1;
        unsigned char *buf;
        json_t *v;

        if (len > GMCA_SYNC_BODY_MAX || (buf = malloc(n)) == NULL)
                return NULL;
        EVP_EncodeBlock(buf, p, (int)len);
        v = json_string((char *)buf);
        free(buf);
        return v;
}

/* "subscriber" and "certificate" of a cert.* event, and its business type. */
static int cert_part(struct gmca_store *s, const struct gmca_event *ev, json_t *o,
                     struct gmca_error *e)
{
        struct gmca_cert_rec c;
        struct origin org;
        char pair[GMCA_SERIAL_HEX_MAX], sig[GMCA_SERIAL_HEX_MAX], *pem = NULL;
        const uint8_t *p;
        X509 *x = NULL;
        json_t *subj = NULL;
        const char *btype;
        int rc, is_enc;

        memset(&c, 0, sizeof(c));
        if ((rc = gmca_store_cert_get(s, ev->serial, &c, e)) != 0)
                return rc;
        if ((rc = lookup(s, SQL_PAIR_SIG, c.serial, sig, sizeof(sig), e)) != 0)
                goto out;
        is_enc = sig[0] != '\0';
        if (!is_enc && (rc = lookup(s, SQL_PAIR_ENC, c.serial, pair, sizeof(pair), e)) != 0)
                goto out;
        if ((rc = origin_get(s, is_enc ? sig : c.serial, &org, e)) != 0)
                goto out;
        if (ev->kind == GMCA_EVENT_CERT_REVOKE)
                btype = org.ra_revoked ? "revoke" : org.replaced[0] != '\0' ? org.replaced : "cli";
        else
                btype = org.type[0] != '\0' ? org.type : "cli";
        p = c.der;
        if ((x = d2i_X509(NULL, &p, (long)c.der_len)) == NULL ||
            (subj = dn_json(X509_get_subject_name(x))) == NULL ||
            (pem = der_pem(c.der, c.der_len)) == NULL) {
                gmca_ossl_clear();
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "sync: certificate %s", c.serial);
                goto out;
        }
        if (json_object_set_new(o, "business_type", json_string(btype)) != 0 ||
            json_object_set_new(o, "subscriber",
                                json_pack("{s:O, s:o, s:o}", "subject", subj, "kind",
                                          str_or_null(org.kind), "organisation",
                                          str_or_null(org.org))) != 0 ||
            json_object_set_new(
                o, "certificate",
                json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:s}", "serial", c.serial,
                          "profile", c.profile, "not_before", iso(c.not_before), "not_after",
                          iso(c.not_after), "status", c.status == 1 ? "revoked" : "valid",
                          "revoked_at", c.status == 1 ? iso(c.revoked_at) : json_null(), "reason",
                          c.status == 1 && c.reason >= 0
                              ? json_string(gmca_crl_reason_name(c.reason))
                              : json_null(),
                          "pair_serial", str_or_null(is_enc ? sig : pair), "pem", pem)) != 0)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
out:
        json_decref(subj);
        free(pem);
        X509_free(x);
        gmca_cert_rec_clear(&c);
        return rc;
}

/*
 * A CRL whose payload would pass the receivers' limit (GMCA_SYNC_BODY_MAX,
 * less room for the JSON around it and the signature) is refused for good:
 * retrying it would never succeed, and receivers fetch it from the CRL
 * distribution point instead. The pump audits the skip.
 */
#define SYNC_WRAP_ROOM (16u << 10)

static int crl_part(struct gmca_store *s, const struct gmca_event *ev, json_t *o,
                    struct gmca_error *e)
{
        struct gmca_crl_rec r;
        int rc;

        memset(&r, 0, sizeof(r));
        if ((rc = gmca_store_crl_get(s, ev->ca_id, ev->number, &r, e)) != 0)
                return rc;
        if (r.der_len > (GMCA_SYNC_BODY_MAX - SYNC_WRAP_ROOM) / 4 * 3) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "CRL %lld of %zu bytes is too large for a sync payload (at "
                                    "most %u bytes signed); receivers fetch it from the CRL "
                                    "distribution point",
                                    (long long)r.number, r.der_len, GMCA_SYNC_BODY_MAX);
                gmca_crl_rec_clear(&r);
                return rc;
        }
        if (json_object_set_new(o, "business_type", json_string("crl")) != 0 ||
            json_object_set_new(
                o, "crl",
                json_pack("{s:I, s:o, s:o, s:o, s:o}", "number", (json_int_t)r.number,
                          "this_update", iso(r.this_update), "next_update", iso(r.next_update),
                          "delta_base",
                          r.base_number > 0 ? json_integer(r.base_number) : json_null(),
                          "der_base64", b64(r.der, r.der_len))) != 0)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        gmca_crl_rec_clear(&r);
        return rc;
}

int gmca_sync_payload(struct gmca_store *s, const struct gmca_event *ev, char **json,
                      struct gmca_error *e)
{
        struct gmca_ca_rec ca;
        json_t *o = NULL;
        char *out = NULL;
        int64_t ca_id = ev->ca_id;
        int rc;

        memset(&ca, 0, sizeof(ca));
        if (ev->kind != GMCA_EVENT_CRL_ISSUE) {
                struct gmca_cert_rec c;

                memset(&c, 0, sizeof(c));
                if ((rc = gmca_store_cert_get(s, ev->serial, &c, e)) != 0)
                        return rc;
                ca_id = c.ca_id; /* a pair's revocation event carries the CA too, but be sure */
                gmca_cert_rec_clear(&c);
        }
        if ((rc = gmca_store_ca_get_by_id(s, ca_id, &ca, e)) != 0)
                return rc;
        o = json_pack("{s:i, s:I, s:s, s:o, s:{s:s, s:s}}", "version", GMCA_SYNC_PAYLOAD_VERSION,
                      "event_id", (json_int_t)ev->id, "type", gmca_event_kind_name(ev->kind),
                      "time", iso(ev->time), "ca", "name", ca.name, "subject", ca.subject);
        gmca_ca_rec_clear(&ca);
        if (o == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        rc = ev->kind == GMCA_EVENT_CRL_ISSUE ? crl_part(s, ev, o, e) : cert_part(s, ev, o, e);
        if (rc == 0 && (out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        json_decref(o);
        if (rc == 0)
                *json = out;
        return rc;
}

/* ---- delivery ----------------------------------------------------------------- */

static size_t reply_drop(char *ptr, size_t size, size_t nmemb, void *ud)
{
        size_t *seen = ud, n = size * nmemb;

        (void)ptr;
        if (n > REPLY_MAX - *seen)
                return 0; /* a receiver that talks on is cut off: the status is in */
        *seen += n;
        return n;
}

/* POST body to r: 0 on 2xx, GMCA_ERR_POLICY on a final refusal, GMCA_ERR_IO otherwise. */
static int post(const struct gmca_sync_receiver *r, const uint8_t *body, size_t len, int64_t id,
                struct gmca_error *e)
{
        struct curl_slist *hdr = NULL, *h2;
        char idh[64];
        size_t seen = 0;
        long status = 0;
        CURLcode cc;
        CURL *h;
        int rc;

        if ((h = curl_easy_init()) == NULL)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: cannot start HTTP", r->url);
        snprintf(idh, sizeof(idh), "X-Gmca-Event-Id: %lld", (long long)id);
        if ((hdr = curl_slist_append(NULL, "Content-Type: application/pkcs7-mime")) == NULL ||
            (h2 = curl_slist_append(hdr, idh)) == NULL) {
                curl_slist_free_all(hdr);
                curl_easy_cleanup(h);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        hdr = h2;
        curl_easy_setopt(h, CURLOPT_URL, r->url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, r->timeout > 0 ? r->timeout : GMCA_SYNC_TIMEOUT);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                         r->timeout > 0 ? r->timeout : GMCA_SYNC_TIMEOUT);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (r->ca_file != NULL)
                curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reply_drop);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &seen);
        cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && status >= 200))
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: %s", r->url, curl_easy_strerror(cc));
        else if (status >= 200 && status < 300)
                rc = 0;
        else if (status >= 400 && status < 500 && status != 408 && status != 429)
                rc =
                    gmca_error_set(e, GMCA_ERR_POLICY, "%s: refused with HTTP %ld", r->url, status);
        else
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: HTTP %ld", r->url, status);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        return rc;
}

static int deliver(void *arg, struct gmca_store *s, const struct gmca_event *ev,
                   struct gmca_error *e)
{
        const struct gmca_sync_receiver *r = arg;
        char *json = NULL;
        uint8_t *body = NULL;
        size_t len = 0;
        int rc;

        rc = gmca_sync_payload(s, ev, &json, e);
        if (rc == GMCA_ERR_NOTFOUND) /* the object of a committed event is gone: never sendable */
                rc = e->code = GMCA_ERR_POLICY;
        if (rc == 0)
                rc = gmca_gmt0010_sign(r->cert, r->key, NULL, (const uint8_t *)json, strlen(json),
                                       &body, &len, e);
        if (rc == 0 && len > GMCA_SYNC_BODY_MAX) /* refused by every receiver: never sendable */
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "event %lld: signed body of %zu bytes, over the %u receivers "
                                    "accept",
                                    (long long)ev->id, len, GMCA_SYNC_BODY_MAX);
        if (rc == 0)
                rc = post(r, body, len, ev->id, e);
        free(json);
        OPENSSL_free(body);
        return rc;
}

/* ---- the receiver's side ------------------------------------------------------- */

static int bad(struct gmca_error *e, const char *field)
{
        return gmca_error_set(e, GMCA_ERR_INVALID, "sync payload: %s missing or of the wrong type",
                              field);
}

int gmca_sync_payload_check(const char *json, size_t len, int64_t *event_id, struct gmca_error *e)
{
        json_error_t je;
        json_t *o, *v;
        const char *type;
        int rc = 0;

        if (len > GMCA_SYNC_BODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "sync payload: over %u bytes",
                                      GMCA_SYNC_BODY_MAX);
        if ((o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "sync payload: not JSON: %s", je.text);
        type = json_string_value(json_object_get(o, "type"));
        v = json_object_get(o, "event_id");
        if (!json_is_object(o))
                rc = bad(e, "the object");
        else if (json_integer_value(json_object_get(o, "version")) != GMCA_SYNC_PAYLOAD_VERSION)
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "sync payload: version is not %d",
                                    GMCA_SYNC_PAYLOAD_VERSION);
        else if (!json_is_integer(v) || json_integer_value(v) <= 0)
                rc = bad(e, "event_id");
        else if (type == NULL)
                rc = bad(e, "type");
        else if (!json_is_string(json_object_get(o, "business_type")))
                rc = bad(e, "business_type");
        else if (!json_is_string(json_object_get(json_object_get(o, "ca"), "name")))
                rc = bad(e, "ca.name");
        else if (strcmp(type, "crl.issue") == 0) {
                if (!json_is_integer(json_object_get(json_object_get(o, "crl"), "number")) ||
                    !json_is_string(json_object_get(json_object_get(o, "crl"), "der_base64")))
                        rc = bad(e, "crl");
        } else if (strcmp(type, "cert.issue") == 0 || strcmp(type, "cert.revoke") == 0) {
                if (!json_is_string(json_object_get(json_object_get(o, "certificate"), "serial")) ||
                    !json_is_string(json_object_get(json_object_get(o, "certificate"), "pem")) ||
                    !json_is_object(json_object_get(o, "subscriber")))
                        rc = bad(e, "certificate or subscriber");
        } else {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "sync payload: unknown type");
        }
        if (rc == 0 && event_id != NULL)
                *event_id = json_integer_value(v);
        json_decref(o);
        return rc;
}

/* Put what in front of e's cause; returns its code. */
static int wrap(struct gmca_error *e, const char *what)
{
        struct gmca_error cause = *e;

        gmca_error_clear(e);
        return gmca_error_set(e, cause.code, "%s: %s", what, cause.msg);
}

int gmca_sync_verify(const uint8_t *body, size_t len, const struct gmca_vfy_opts *vopts,
                     char **payload, size_t *plen, struct gmca_sync_verified *info,
                     struct gmca_error *e)
{
        struct gmca_gmt0010_signer sg = {0};
        struct gmca_vfy_opts o = *vopts;
        struct gmca_vfy_result res;
        struct gmca_sync_verified vi;
        uint8_t *content = NULL;
        size_t clen = 0;
        char *text = NULL;
        int rc;

        memset(&vi, 0, sizeof(vi));
        if (len > GMCA_SYNC_BODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "sync body: over %u bytes",
                                      GMCA_SYNC_BODY_MAX);
        if ((rc = gmca_gmt0010_verify(body, len, NULL, 0, NULL, NULL, &content, &clen, &sg, e)) !=
            0) {
                rc = wrap(e, "sync body");
                goto out;
        }
        if (sg.detached || sg.nsigners != 1 || clen == 0 || memchr(content, 0, clen) != NULL) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "sync body: one signer over an attached text payload");
                goto out;
        }
        if ((rc = signer_usage_ok(sg.cert, e)) != 0)
                goto out;
        o.use = GMCA_VFY_USE_SIGNATURE;
        if ((rc = gmca_validate(sg.cert, &o, &res, e)) != 0) {
                rc = wrap(e, "sync signer");
                goto out;
        }
        if ((rc = gmca_sync_payload_check((const char *)content, clen, &vi.event_id, e)) != 0)
                goto out;
        if ((text = OPENSSL_malloc(clen + 1)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        memcpy(text, content, clen);
        text[clen] = '\0';
        vi.signing_time = sg.has_time ? sg.signing_time : 0;
        if ((rc = gmca_dn_format(X509_get_subject_name(sg.cert), vi.signer, sizeof(vi.signer),
                                 e)) != 0 ||
            (rc = gmca_serial_hex(sg.cert, vi.signer_serial, sizeof(vi.signer_serial))) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "sync signer: name or serial");
                goto out;
        }
        *payload = text;
        text = NULL;
        *plen = clen;
        if (info != NULL)
                *info = vi;
out:
        OPENSSL_free(text);
        OPENSSL_free(content);
        gmca_gmt0010_signer_clear(&sg);
        return rc;
}

/* ---- libgmca (include/gmca/message.h) --------------------------------------------- */

static int certs_parse(const struct gmca_bytes *in, size_t n, X509 **out, const char *what,
                       struct gmca_error *e)
{
        if (n > GMCA_MESSAGE_CERTIFICATES_MAX || (n > 0 && in == NULL))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: 0..%d certificates", what,
                                      GMCA_MESSAGE_CERTIFICATES_MAX);
        for (size_t i = 0; i < n; i++)
                if ((out[i] = gmca_cert_parse(in[i].data, in[i].len, e)) == NULL)
                        return e->code;
        return 0;
}

int gmca_sync_body_verify(const void *body, size_t len, const struct gmca_bytes *anchors,
                          size_t nanchors, const struct gmca_bytes *chain, size_t nchain,
                          char **payload, size_t *payload_len, struct gmca_status *st)
{
        X509 *a[GMCA_MESSAGE_CERTIFICATES_MAX] = {0}, *c[GMCA_MESSAGE_CERTIFICATES_MAX] = {0};
        struct gmca_vfy_opts vo = {0};
        struct gmca_error e;
        char *text = NULL, *out = NULL;
        size_t tlen = 0;
        int rc;

        gmca_error_clear(&e);
        if (body == NULL || payload == NULL || payload_len == NULL || nanchors == 0)
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "sync: missing input, anchor or output");
        else if ((rc = certs_parse(anchors, nanchors, a, "anchors", &e)) == 0 &&
                 (rc = certs_parse(chain, nchain, c, "chain", &e)) == 0) {
                vo = (struct gmca_vfy_opts){.anchors = a,
                                            .nanchors = nanchors,
                                            .intermediates = c,
                                            .nintermediates = nchain};
                rc = gmca_sync_verify(body, len, &vo, &text, &tlen, NULL, &e);
        }
        /* gmca_buffer_free frees with free(): hand over a malloc copy. */
        if (rc == 0 && (out = malloc(tlen + 1)) == NULL)
                rc = gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
        if (rc == 0) {
                memcpy(out, text, tlen + 1);
                *payload = out;
                *payload_len = tlen;
        }
        OPENSSL_free(text);
        for (size_t i = 0; i < GMCA_MESSAGE_CERTIFICATES_MAX; i++) {
                X509_free(a[i]);
                X509_free(c[i]);
        }
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}
