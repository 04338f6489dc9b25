/*
 * Key recovery (CPS §3.10), the front's side: an operator records a
 * request to recover the escrowed private key of an encryption certificate
 * (a subscriber's lost or broken token, §3.10.1, or a judicial or other
 * authorised body's demand, §3.10.2), a business admin who is not the
 * requester approves or rejects it naming the request he read (the
 * "submission", like the applications' vet and approve), and the approval
 * is handed to the CA engine (env->recover), which checks all of it again
 * from the records and the signed requests (ca_km_recover.c) before it asks
 * the KM. The key leaves the KM sealed to the recipient only (envelope.h):
 * the subscriber's current signature key, or the judicial carrier's public
 * key. Nothing here ever holds a private key; the envelopes shown are
 * readable by their recipient alone. Every step is audited, refusals too.
 *
 * Also here, for the engine's re-check: the request body's parser, the
 * row reader and the recipient rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca.h"
#include "crypto.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"
#include "x509.h"

#define OBJ_MAX 48

#define REC_COLS                                                                                   \
        "id, kind, enc_serial, recipient_serial, recipient_key, authority, "                       \
        "document_ref, reason, "                                                                   \
        "state, requested_by, requested_at, request_auth, decided_by, decided_at, "                \
        "decide_auth, "                                                                            \
        "envelope, blob, delivered_at"

static const char SQL_GET[] = "SELECT " REC_COLS " FROM key_recoveries WHERE id = ?";
static const char SQL_LIST[] = "SELECT " REC_COLS " FROM key_recoveries"
                               " WHERE (? = '' OR state = ?) ORDER BY id LIMIT ?";
static const char SQL_INSERT[] =
    "INSERT INTO key_recoveries (kind, enc_serial, recipient_serial, "
    "recipient_key, authority,"
    " document_ref, reason, state, requested_by, requested_at, request_auth)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?, ?) RETURNING id";
static const char SQL_DECIDE[] =
    "UPDATE key_recoveries SET state = ?, decided_by = ?, decided_at = ?, "
    "decide_auth = ?"
    " WHERE id = ? AND state = 'requested'";
static const char SQL_DUAL[] = "SELECT sig_serial FROM dual_keys WHERE enc_serial = ?";

/* ---- the body ---- */

void ra_recovery_body_clear(struct ra_recovery_body *b)
{
        if (b == NULL)
                return;
        json_decref(b->root);
        OPENSSL_free(b->recipient_key);
        memset(b, 0, sizeof(*b));
}

/* A string member of at most cap bytes without control characters; NULL if
 * absent. */
static int member(json_t *root, const char *key, size_t cap, int lines, const char **out,
                  struct gmca_error *e)
{
        json_t *v = json_object_get(root, key);
        const char *s;
        size_t n;

        *out = NULL;
        if (v == NULL)
                return 0;
        if (!json_is_string(v))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: a string", key);
        s = json_string_value(v);
        n = json_string_length(v);
        if (n == 0 || n > cap || strlen(s) != n)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: 1..%zu bytes", key, cap);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 && !(lines && s[i] == '\n'))
                        return gmca_error_set(e, GMCA_ERR_INVALID, "%s: a control character", key);
        *out = s;
        return 0;
}

/* An SM2 public key in PEM, as SubjectPublicKeyInfo DER. */
static int sm2_spki(const char *pem, uint8_t **der, size_t *len, struct gmca_error *e)
{
        BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
        EVP_PKEY *k = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        unsigned char *p = NULL;
        int n = -1;

        BIO_free(bio);
        if (k != NULL && gmca_sm2_is_sm2(k, e) == 0)
                n = i2d_PUBKEY(k, &p);
        EVP_PKEY_free(k);
        gmca_ossl_clear();
        if (n <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "recipient_public_key: not an SM2 public key in PEM "
                                      "(-----BEGIN PUBLIC KEY-----)");
        *der = p;
        *len = (size_t)n;
        return 0;
}

static int serial_member(json_t *root, const char *key, char out[GMCA_SERIAL_HEX_MAX],
                         struct gmca_error *e)
{
        const char *s;
        int rc;

        out[0] = '\0';
        if ((rc = member(root, key, 64, 0, &s, e)) != 0)
                return rc;
        if (s != NULL && gmca_serial_normalize(s, out) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: 1..40 hex digits", key);
        return 0;
}

static int parse_fields(struct ra_recovery_body *b, struct gmca_error *e)
{
        static const char *const known[] = {"kind",
                                            "encryption_serial",
                                            "recipient_serial",
                                            "recipient_public_key",
                                            "authority",
                                            "document",
                                            "reason"};
        const char *key, *pem = NULL;
        json_t *v;
        int rc, judicial;

        json_object_foreach(b->root, key, v)
        {
                size_t i = 0;

                while (i < sizeof(known) / sizeof(known[0]) && strcmp(key, known[i]) != 0)
                        i++;
                if (i == sizeof(known) / sizeof(known[0])) {
                        char shown[64];

                        ra_show(shown, sizeof(shown), key);
                        return gmca_error_set(e, GMCA_ERR_INVALID, "%s: unknown field", shown);
                }
        }
        if ((rc = member(b->root, "kind", 16, 0, &b->kind, e)) != 0 ||
            (rc = serial_member(b->root, "encryption_serial", b->enc_serial, e)) != 0 ||
            (rc = serial_member(b->root, "recipient_serial", b->recipient_serial, e)) != 0 ||
            (rc = member(b->root, "recipient_public_key", RA_REC_PEM_CAP, 1, &pem, e)) != 0 ||
            (rc = member(b->root, "authority", RA_NAME_CAP, 0, &b->authority, e)) != 0 ||
            (rc = member(b->root, "document", RA_NAME_CAP, 0, &b->document, e)) != 0 ||
            (rc = member(b->root, "reason", RA_TEXT_CAP, 1, &b->reason, e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if (b->kind == NULL ||
            (strcmp(b->kind, "subscriber") != 0 && strcmp(b->kind, "judicial") != 0))
                return gmca_error_set(e, rc, "kind: required, subscriber or judicial (CPS §3.10)");
        if (b->enc_serial[0] == '\0')
                return gmca_error_set(e, rc, "encryption_serial: required");
        if (b->reason == NULL)
                return gmca_error_set(e, rc, "reason: required (CPS §3.10)");
        judicial = strcmp(b->kind, "judicial") == 0;
        if (judicial) {
                if (b->authority == NULL || b->document == NULL)
                        return gmca_error_set(e, rc,
                                              "%s: required for a judicial recovery (CPS §3.10.2)",
                                              b->authority == NULL ? "authority" : "document");
                if (pem == NULL || b->recipient_serial[0] != '\0')
                        return gmca_error_set(e, rc,
                                              "recipient_public_key: required for a judicial "
                                              "recovery, and recipient_serial not given");
                return sm2_spki(pem, &b->recipient_key, &b->recipient_key_len, e);
        }
        if (b->recipient_serial[0] == '\0' || pem != NULL)
                return gmca_error_set(e, rc,
                                      "recipient_serial: required for a subscriber recovery (the "
                                      "subscriber's current signature certificate), and "
                                      "recipient_public_key not given");
        if (b->authority != NULL || b->document != NULL)
                return gmca_error_set(e, rc, "authority, document: for a judicial recovery only");
        return 0;
}

int ra_recovery_parse(const uint8_t *body, size_t len, struct ra_recovery_body *out,
                      struct gmca_error *e)
{
        json_error_t je;
        int rc;

        memset(out, 0, sizeof(*out));
        if (body == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "a JSON object body is required");
        if (len > 16384)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "body of %zu bytes (16384 at most)", len);
        out->root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
        if (out->root == NULL || !json_is_object(out->root)) {
                ra_recovery_body_clear(out);
                return gmca_error_set(e, GMCA_ERR_INVALID, "body: not a JSON object");
        }
        if ((rc = parse_fields(out, e)) != 0)
                ra_recovery_body_clear(out);
        return rc;
}

/* ---- the row ---- */

void ra_recovery_clear(struct ra_recovery *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->recipient_key);
        free(r->authority);
        free(r->document);
        free(r->reason);
        OPENSSL_free(r->request_auth);
        OPENSSL_free(r->decide_auth);
        OPENSSL_free(r->envelope);
        OPENSSL_free(r->blob);
        memset(r, 0, sizeof(*r));
}

static int text_dup(struct gmca_q *q, int col, char **out, struct gmca_error *e)
{
        const char *t = gmca_q_col_text(q, col);

        *out = NULL;
        if (t != NULL && (*out = strdup(t)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return 0;
}

static int rec_row(struct gmca_q *q, struct ra_recovery *r, struct gmca_error *e)
{
        int rc;

        memset(r, 0, sizeof(*r));
        r->id = gmca_q_col_int(q, 0);
        r->requested_at = gmca_q_col_int(q, 10);
        r->decided_at = gmca_q_col_int(q, 13);
        r->delivered_at = gmca_q_col_int(q, 17);
        if ((rc = gmca_q_col_str(q, 1, r->kind, sizeof(r->kind), "kind", e)) != 0 ||
            (rc = gmca_q_col_str(q, 2, r->enc_serial, sizeof(r->enc_serial), "enc_serial", e)) !=
                0 ||
            (rc = gmca_q_col_str(q, 3, r->recipient_serial, sizeof(r->recipient_serial),
                                 "recipient_serial", e)) != 0 ||
            (rc = gmca_q_col_dup(q, 4, &r->recipient_key, &r->recipient_key_len, e)) != 0 ||
            (rc = text_dup(q, 5, &r->authority, e)) != 0 ||
            (rc = text_dup(q, 6, &r->document, e)) != 0 ||
            (rc = text_dup(q, 7, &r->reason, e)) != 0 ||
            (rc = gmca_q_col_str(q, 8, r->state, sizeof(r->state), "state", e)) != 0 ||
            (rc = gmca_q_col_str(q, 9, r->requested_by, sizeof(r->requested_by), "requested_by",
                                 e)) != 0 ||
            (rc = gmca_q_col_dup(q, 11, &r->request_auth, &r->request_auth_len, e)) != 0 ||
            (rc = gmca_q_col_str(q, 12, r->decided_by, sizeof(r->decided_by), "decided_by", e)) !=
                0 ||
            (rc = gmca_q_col_dup(q, 14, &r->decide_auth, &r->decide_auth_len, e)) != 0 ||
            (rc = gmca_q_col_dup(q, 15, &r->envelope, &r->envelope_len, e)) != 0 ||
            (rc = gmca_q_col_dup(q, 16, &r->blob, &r->blob_len, e)) != 0)
                ra_recovery_clear(r);
        return rc;
}

int ra_recovery_load(struct gmca_store *s, int64_t id, struct ra_recovery *out,
                     struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(out, 0, sizeof(*out));
        if ((rc = gmca_q_open(s, SQL_GET, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "recovery %lld", (long long)id);
        if (rc == GMCA_DB_ROW)
                rc = rec_row(&q, out, e);
        else if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "recovery %lld: no such recovery",
                                    (long long)id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* ---- the rules ---- */

/*
 * The certificate of serial as its CA signed it: the stored row is the
 * front's to write, its DER is the CA's signature. *status: the row's.
 */
static X509 *signed_cert(struct gmca_store *s, const char *serial, const char *what, int *revoked,
                         struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        struct gmca_ca_rec ca;
        X509 *cert = NULL, *cacert = NULL;
        char got[GMCA_SERIAL_HEX_MAX];
        int rc, ok = 0;

        memset(&rec, 0, sizeof(rec));
        memset(&ca, 0, sizeof(ca));
        rc = gmca_store_cert_get(s, serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                gmca_error_set(e, rc, "%s %s: not a certificate of this CA", what, serial);
                goto out;
        }
        if (rc != 0 || gmca_store_ca_get_by_id(s, rec.ca_id, &ca, e) != 0)
                goto out;
        if ((cert = gmca_cert_parse(rec.der, rec.der_len, e)) != NULL &&
            (cacert = gmca_cert_parse(ca.cert_der, ca.cert_len, e)) != NULL &&
            gmca_serial_hex(cert, got, sizeof(got)) == 0 && strcmp(got, serial) == 0 &&
            gmca_cert_verify_signed_by(cert, X509_get0_pubkey(cacert),
                                       ca.sm2_id[0] ? ca.sm2_id : GMCA_SM2_DEFAULT_ID, e) == 0)
                ok = 1;
        if (!ok) {
                gmca_error_clear(e);
                gmca_error_set(e, GMCA_ERR_DB,
                               "%s %s: the stored certificate is not the one CA %s signed", what,
                               serial, ca.name);
        }
        *revoked = rec.status == GMCA_CERT_REVOKED;
out:
        if (!ok) {
                X509_free(cert);
                cert = NULL;
        }
        X509_free(cacert);
        gmca_cert_rec_clear(&rec);
        gmca_ca_rec_clear(&ca);
        gmca_ossl_clear();
        return cert;
}

/* enc_serial is in dual_keys: an encryption certificate made for a KM key pair.
 */
static int dual(struct gmca_store *s, const char *enc_serial, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_DUAL, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, enc_serial);
        rc = gmca_q_step(&q, e, "dual key %s", enc_serial);
        gmca_q_close(&q);
        if (rc == GMCA_DB_DONE)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "encryption_serial %s: not an encryption certificate whose "
                                      "key the KM made and escrowed (CPS §3.10)",
                                      enc_serial);
        return rc < 0 ? rc : 0;
}

/*
 * The same subscriber, not a namesake: a DN such as C=CN, CN=王小明 is
 * shared by many people, so every identity extension the encryption
 * certificate carries (GM/T 0015 private extensions: identity card,
 * organisation code, ...) must be on the recipient with the same value.
 */
static int same_identity(X509 *enc, X509 *r, const char *serial, struct gmca_error *e)
{
        struct gmca_error in = {0};
        int rc = 0;

        for (int p = 0; p < GMCA_PEXT_COUNT && rc == 0; p++) {
                char *want = NULL, *got = NULL;
                int wrc = gmca_cert_get_pext(enc, (enum gmca_pext)p, &want, &in);

                gmca_error_clear(&in);
                if (wrc == GMCA_ERR_NOTFOUND)
                        continue;
                if (wrc != 0 || gmca_cert_get_pext(r, (enum gmca_pext)p, &got, &in) != 0 ||
                    strcmp(want, got) != 0)
                        rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                            "recipient_serial %s: its %s is not the encryption "
                                            "certificate's (CPS §3.10.1: the subscriber's own)",
                                            serial, gmca_pext_name((enum gmca_pext)p));
                OPENSSL_free(want);
                OPENSSL_free(got);
        }
        gmca_ossl_clear();
        return rc;
}

/* The subscriber's current signature certificate (CPS §3.10.1). */
static int recipient_ok(X509 *enc, X509 *r, const char *serial, int revoked, int64_t now,
                        struct gmca_error *e)
{
        uint32_t ku = X509_get_key_usage(r);

        if (revoked)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "recipient_serial %s is revoked: the key goes to the "
                                      "subscriber's current signature certificate",
                                      serial);
        if (X509_cmp_time(X509_get0_notAfter(r), &(time_t){(time_t)now}) <= 0 ||
            X509_cmp_time(X509_get0_notBefore(r), &(time_t){(time_t)now}) > 0)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "recipient_serial %s is not valid now (expired or not yet "
                                      "valid)",
                                      serial);
        if (X509_NAME_cmp(X509_get_subject_name(enc), X509_get_subject_name(r)) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "recipient_serial %s: another subject than the encryption "
                                      "certificate's (CPS §3.10.1: the subscriber's own)",
                                      serial);
        if (ku == UINT32_MAX || !(ku & KU_DIGITAL_SIGNATURE) || X509_cmp(enc, r) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "recipient_serial %s: not a signature certificate "
                                      "(digitalSignature key usage)",
                                      serial);
        return same_identity(enc, r, serial, e);
}

int ra_recovery_rules(struct gmca_store *s, const char *kind, const char *enc_serial,
                      const char *recipient_serial, int64_t now, X509 **enc, X509 **recipient,
                      struct gmca_error *e)
{
        X509 *ec = NULL, *rc_cert = NULL;
        int rc, revoked = 0;

        if ((rc = dual(s, enc_serial, e)) != 0)
                return rc;
        if ((ec = signed_cert(s, enc_serial, "encryption_serial", &revoked, e)) == NULL)
                return e->code != 0 ? e->code : GMCA_ERR_DB;
        if (strcmp(kind, "subscriber") == 0) {
                if ((rc_cert = signed_cert(s, recipient_serial, "recipient_serial", &revoked, e)) ==
                    NULL) {
                        rc = e->code != 0 ? e->code : GMCA_ERR_DB;
                        goto out;
                }
                if ((rc = recipient_ok(ec, rc_cert, recipient_serial, revoked, now, e)) != 0)
                        goto out;
        } else if (strcmp(kind, "judicial") != 0) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "recovery: unknown kind %s", kind);
                goto out;
        }
        if (enc != NULL) {
                *enc = ec;
                ec = NULL;
        }
        if (recipient != NULL) {
                *recipient = rc_cert;
                rc_cert = NULL;
        }
        rc = 0;
out:
        X509_free(ec);
        X509_free(rc_cert);
        return rc;
}

/* ---- the record as shown ---- */

static void rec_object(char out[OBJ_MAX], int64_t id)
{
        snprintf(out, OBJ_MAX, "recovery:%lld", (long long)id);
}

static json_t *str_or_null(const char *s)
{
        return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *spki_pem(const uint8_t *der, size_t n)
{
        const unsigned char *p = der;
        EVP_PKEY *k = der != NULL ? d2i_PUBKEY(NULL, &p, (long)n) : NULL;
        BIO *bio = k != NULL ? BIO_new(BIO_s_mem()) : NULL;
        json_t *j = json_null();
        char *text;
        long len;

        if (bio != NULL && PEM_write_bio_PUBKEY(bio, k) == 1 &&
            (len = BIO_get_mem_data(bio, &text)) > 0)
                j = json_stringn(text, (size_t)len);
        BIO_free(bio);
        EVP_PKEY_free(k);
        gmca_ossl_clear();
        return j != NULL ? j : json_null();
}

static json_t *rec_json(const struct ra_recovery *r)
{
        char sub[RA_SUBMISSION_HEX + 1];
        struct gmca_error ignored = {0};
        json_t *o =
            json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}", "id", (json_int_t)r->id, "kind", r->kind,
                      "encryption_serial", r->enc_serial, "state", r->state, "requested_by",
                      r->requested_by, "requested_at", (json_int_t)r->requested_at);

        if (o == NULL)
                return NULL;
        json_object_set_new(o, "recipient_serial", str_or_null(r->recipient_serial));
        json_object_set_new(o, "recipient_public_key",
                            spki_pem(r->recipient_key, r->recipient_key_len));
        json_object_set_new(o, "authority", str_or_null(r->authority));
        json_object_set_new(o, "document", str_or_null(r->document));
        json_object_set_new(o, "reason", str_or_null(r->reason));
        json_object_set_new(
            o, "submission",
            ra_submission_digest(r->request_auth, r->request_auth_len, sub, &ignored) == 0
                ? json_string(sub)
                : json_null());
        json_object_set_new(o, "decided_by", str_or_null(r->decided_by));
        json_object_set_new(o, "decided_at",
                            r->decided_at > 0 ? json_integer(r->decided_at) : json_null());
        json_object_set_new(o, "delivered_at",
                            r->delivered_at > 0 ? json_integer(r->delivered_at) : json_null());
        /* Sealed to the recipient (envelope.h): only its private key opens them. */
        json_object_set_new(o, "enveloped_key", ra_b64_json(r->envelope, r->envelope_len));
        json_object_set_new(o, "enveloped_key_blob", ra_b64_json(r->blob, r->blob_len));
        return o;
}

static int respond(struct gmca_store *s, int64_t id, json_t **out, struct gmca_error *e)
{
        struct ra_recovery r;
        int rc;

        if ((rc = ra_recovery_load(s, id, &r, e)) != 0)
                return rc;
        *out = rec_json(&r);
        ra_recovery_clear(&r);
        return *out != NULL ? 0 : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
}

/* ---- request ---- */

static int insert(struct gmca_store *s, const struct gmca_auth_result *who,
                  const struct ra_recovery_body *b, int64_t now, int64_t *id, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_INSERT, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, b->kind);
        gmca_q_text(&q, b->enc_serial);
        gmca_q_text(&q, b->recipient_serial[0] != '\0' ? b->recipient_serial : NULL);
        gmca_q_blob(&q, b->recipient_key, b->recipient_key_len);
        gmca_q_text(&q, b->authority);
        gmca_q_text(&q, b->document);
        gmca_q_text(&q, b->reason);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_blob(&q, who->proof, who->proof_len);
        rc = gmca_q_step(&q, e, "new recovery");
        if (rc == GMCA_DB_ROW)
                *id = gmca_q_col_int(&q, 0);
        else if (rc >= 0)
                rc = gmca_error_set(e, GMCA_ERR_DB, "new recovery: no id returned");
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_ra_recovery_request(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             const uint8_t *body, size_t len, int64_t now, json_t **out,
                             struct gmca_error *e)
{
        struct ra_recovery_body b;
        char object[OBJ_MAX] = "recovery";
        int64_t id = 0;
        int rc;

        memset(&b, 0, sizeof(b));
        if ((rc = ra_allowed(env, who, GMCA_ACT_RECOVERY_REQUEST, GMCA_EV_RECOVERY_REQUEST, object,
                             e)) != 0)
                return rc;
        if ((rc = ra_need_proof(who, e)) != 0 || (rc = ra_recovery_parse(body, len, &b, e)) != 0)
                goto fail;
        gmca_strlcpy(object, b.enc_serial, sizeof(object));
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = ra_recovery_rules(env->store, b.kind, b.enc_serial, b.recipient_serial, now, NULL,
                                    NULL, e)) != 0 ||
            (rc = insert(env->store, who, &b, now, &id, e)) != 0)
                goto fail;
        rec_object(object, id);
        if ((rc = ra_audit(env->store, GMCA_EV_RECOVERY_REQUEST, who->op.name, object,
                           json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s}", "kind", b.kind,
                                     "encryption_serial", b.enc_serial, "recipient_serial",
                                     b.recipient_serial[0] ? b.recipient_serial : NULL, "authority",
                                     b.authority, "document", b.document, "reason", b.reason),
                           e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        ra_recovery_body_clear(&b);
        return respond(env->store, id, out, e);
fail:
        ra_recovery_body_clear(&b);
        return ra_refuse(env->store, who->op.name, GMCA_EV_RECOVERY_REQUEST, object, rc, e);
}

/* ---- decision and delivery ---- */

/*
 * Ask the CA engine to carry the recovery out, and answer with the record
 * as it is then (delivered with the envelopes, or approved with
 * "recover_error"). *erc: the engine's answer.
 */
static int recover_and_respond(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               int64_t id, json_t **out, int *erc, struct gmca_error *ee,
                               struct gmca_error *e)
{
        char object[OBJ_MAX];
        json_t *o = NULL;
        int rc;

        *erc = 0;
        rec_object(object, id);
        if (env->recover != NULL) {
                *erc = env->recover(env->issue_arg, id, ee);
                if (*erc != 0)
                        ra_refuse(env->store, who->op.name, GMCA_EV_RECOVERY_DELIVER, object, *erc,
                                  ee);
                /* Who had it delivered, beside the engine's km.recover. */
                else if ((rc = gmca_store_begin(env->store, e)) != 0 ||
                         (rc = ra_audit(env->store, GMCA_EV_RECOVERY_DELIVER, who->op.name, object,
                                        NULL, e)) != 0 ||
                         (rc = gmca_store_commit(env->store, e)) != 0) {
                        if (gmca_store_in_transaction(env->store))
                                gmca_store_rollback(env->store);
                        return rc;
                }
        }
        if ((rc = respond(env->store, id, &o, e)) != 0)
                return rc;
        if (*erc != 0)
                json_object_set_new(o, "recover_error", json_string(ee->msg));
        *out = o;
        return 0;
}

static int decide_check(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                        const struct ra_recovery *r, int approve, const struct ra_decide_body *b,
                        int64_t now, struct gmca_error *e)
{
        char sub[RA_SUBMISSION_HEX + 1];
        int rc;

        if (strcmp(r->state, RA_REC_REQUESTED) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "recovery %lld is %s: only a requested recovery is decided, "
                                      "once",
                                      (long long)r->id, r->state);
        if (b->submission != NULL) {
                if ((rc = ra_submission_digest(r->request_auth, r->request_auth_len, sub, e)) != 0)
                        return rc;
                if (strcmp(sub, b->submission) != 0)
                        return gmca_error_set(e, GMCA_ERR_STATE,
                                              "submission: recovery %lld is submission %s, not "
                                              "the one named; read it again",
                                              (long long)r->id, sub);
        }
        if (!approve)
                return 0;
        if (strcmp(r->requested_by, who->op.name) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "CPS §3.10: the business admin who approves a recovery "
                                      "must not be the one who requested it (%s)",
                                      r->requested_by);
        /* The recipient may have been revoked or expired since the request. */
        return ra_recovery_rules(env->store, r->kind, r->enc_serial, r->recipient_serial, now, NULL,
                                 NULL, e);
}

static int mark_decided(struct gmca_store *s, const struct gmca_auth_result *who, int64_t id,
                        int approve, int64_t now, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_DECIDE, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, approve ? RA_REC_APPROVED : RA_REC_REJECTED);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_blob(&q, who->proof, who->proof_len);
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "recovery %lld", (long long)id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "recovery %lld changed meanwhile",
                                    (long long)id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_ra_recovery_decide(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            int64_t id, int approve, const uint8_t *body, size_t len, int64_t now,
                            json_t **out, struct gmca_error *e)
{
        const char *event = approve ? GMCA_EV_RECOVERY_APPROVE : GMCA_EV_RECOVERY_REJECT;
        struct gmca_error ee = {0};
        struct ra_decide_body b;
        struct ra_recovery r;
        char object[OBJ_MAX];
        int rc, erc;

        memset(&b, 0, sizeof(b));
        memset(&r, 0, sizeof(r));
        rec_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_RECOVERY_APPROVE, event, object, e)) != 0)
                return rc;
        if ((rc = ra_need_proof(who, e)) != 0 ||
            (rc = ra_decide_parse(body, len, approve, &b, e)) != 0)
                goto fail;
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = ra_recovery_load(env->store, id, &r, e)) != 0 ||
            (rc = decide_check(env, who, &r, approve, &b, now, e)) != 0 ||
            (rc = mark_decided(env->store, who, id, approve, now, e)) != 0)
                goto fail;
        if ((rc = ra_audit(env->store, event, who->op.name, object,
                           json_pack("{s:s, s:s, s:s, s:s?}", "kind", r.kind, "encryption_serial",
                                     r.enc_serial, "requested_by", r.requested_by, "reason",
                                     b.reason),
                           e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        ra_recovery_clear(&r);
        ra_decide_body_clear(&b);
        if (!approve)
                return respond(env->store, id, out, e);
        /* Approved and committed: the CA engine checks it all again and asks the KM.
         */
        return recover_and_respond(env, who, id, out, &erc, &ee, e);
fail:
        ra_recovery_clear(&r);
        ra_decide_body_clear(&b);
        return ra_refuse(env->store, who->op.name, event, object, rc, e);
}

int gmca_ra_recovery_deliver(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             int64_t id, int64_t now, json_t **out, struct gmca_error *e)
{
        struct gmca_error ee = {0};
        struct ra_recovery r;
        char object[OBJ_MAX];
        json_t *o = NULL;
        int rc, erc;

        (void)now;
        rec_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_RECOVERY_APPROVE, GMCA_EV_RECOVERY_DELIVER, object,
                             e)) != 0)
                return rc;
        if ((rc = ra_recovery_load(env->store, id, &r, e)) != 0)
                return ra_refuse(env->store, who->op.name, GMCA_EV_RECOVERY_DELIVER, object, rc, e);
        if (strcmp(r.state, RA_REC_APPROVED) != 0)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "recovery %lld is %s: only an approved recovery is delivered",
                                    (long long)id, r.state);
        else if (env->recover == NULL)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "no CA engine to recover with");
        ra_recovery_clear(&r);
        if (rc != 0)
                return ra_refuse(env->store, who->op.name, GMCA_EV_RECOVERY_DELIVER, object, rc, e);
        if ((rc = recover_and_respond(env, who, id, &o, &erc, &ee, e)) != 0)
                return rc;
        if (erc != 0) {
                json_decref(o);
                *e = ee;
                return erc;
        }
        *out = o;
        return 0;
}

/* ---- reading ---- */

int gmca_ra_recovery_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                         int64_t id, json_t **out, struct gmca_error *e)
{
        char object[OBJ_MAX];
        int rc;

        rec_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_RECOVERY_READ, GMCA_EV_AUTH_REQUEST, object, e)) !=
            0)
                return rc;
        return respond(env->store, id, out, e);
}

/* One recovery record (envelopes only: they open with the recipient's key alone). */
static int rec_item(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e)
{
        struct ra_recovery r;
        int rc;

        (void)arg;
        if ((rc = rec_row(q, &r, e)) != 0)
                return rc;
        *o = rec_json(&r);
        ra_recovery_clear(&r);
        return 0;
}

int gmca_ra_recovery_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                          const char *state, json_t **out, struct gmca_error *e)
{
        static const char *const states[] = {RA_REC_REQUESTED, RA_REC_APPROVED, RA_REC_REJECTED,
                                             RA_REC_DELIVERED};
        struct gmca_q q;
        size_t i = 0;
        int rc;

        if ((rc = ra_allowed(env, who, GMCA_ACT_RECOVERY_READ, GMCA_EV_AUTH_REQUEST, "recoveries",
                             e)) != 0)
                return rc;
        if (state == NULL)
                state = "";
        while (state[0] != '\0' && i < 4 && strcmp(state, states[i]) != 0)
                i++;
        if (i == 4)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "state: one of requested, approved, rejected, delivered");
        if ((rc = gmca_q_open(env->store, SQL_LIST, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, state);
        gmca_q_text(&q, state);
        gmca_q_int(&q, GMCA_RA_LIST_MAX);
        return ra_list_collect(&q, "list recoveries", rec_item, NULL, -1, out, e);
}
