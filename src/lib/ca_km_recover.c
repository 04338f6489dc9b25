/*
 * The CA engine's side of a key recovery (CPS §3.10; ra.h
 * gmca_ra_recover_approved). The front asks for a recovery by its id
 * only, and it wrote the row, so the row is believed only as far as the
 * two signed requests behind it say (DESIGN.md: a compromise of the front
 * must not recover anyone's key): the request must be a signed POST to
 * /api/v1/recoveries by the operator the row names, whose body is exactly
 * what the row asks (kind, encryption certificate, recipient, authority,
 * document, reason); the approval a signed POST to this recovery's
 * approve by a business admin who is not the requester, naming that very
 * request (its submission digest); both operators' records carrying the
 * custodians' tag under K_op before their names and roles count. Then the
 * recipient rule of the kind is checked again against the certificates as
 * the CA signed them — chaining to a CA key this engine holds, since the
 * front writes the CA rows too — the KM is asked to seal the key to the recipient
 * with who asked and why as restoreInfo, and what it delivered is stored
 * only if it is the encryption certificate's own key pair. One
 * transaction holds the check, the delivery and km.recover; a refusal is
 * audited and changes nothing.
 * The KM link is the one the context keeps (ca_km, ca_dual.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "ca_internal.h"
#include "envelope.h"
#include "km.h"
#include "ra.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"

static const char SQL_DELIVERED[] =
    "UPDATE key_recoveries SET state = 'delivered', envelope = ?, blob = ?, "
    "delivered_at = ?"
    " WHERE id = ? AND state = 'approved'";

/* ---- the re-check ---- */

struct checked {
        struct ra_recovery r;
        struct gmca_operator req_op, app_op;
        X509 *enc, *recipient; /* recipient: subscriber only */
};

static void checked_clear(struct checked *k)
{
        ra_recovery_clear(&k->r);
        X509_free(k->enc);
        X509_free(k->recipient);
        memset(k, 0, sizeof(*k));
}

/* One step's signed request: by the operator the row names, tagged, a POST to
 * want, allowed. */
static int step(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                const struct ra_recovery *r, const char *name, const uint8_t *proof, size_t len,
                const char *who, enum gmca_action act, const char *want, int64_t now,
                struct gmca_auth_proof *p, struct gmca_operator *op, struct gmca_error *e)
{
        char what[40];

        snprintf(what, sizeof(what), "recovery %lld", (long long)r->id);
        return gmca_auth_step_check(s, k_op, what, name, proof, len, who, act, want, now, p, op, e);
}

static int same(const char *x, const char *y)
{
        return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* What the requester signed is what the row asks for. */
static int request_body_ok(const struct ra_recovery *r, const struct gmca_auth_proof *p,
                           struct gmca_error *e)
{
        struct ra_recovery_body b;
        struct gmca_error in = {0};
        const char *what = NULL;

        if (ra_recovery_parse(p->body, p->body_len, &b, &in) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "recovery %lld: the signed request does not parse: %s",
                                      (long long)r->id, in.msg);
        if (strcmp(b.kind, r->kind) != 0)
                what = "kind";
        else if (strcmp(b.enc_serial, r->enc_serial) != 0)
                what = "encryption_serial";
        else if (strcmp(b.recipient_serial, r->recipient_serial) != 0)
                what = "recipient_serial";
        else if (b.recipient_key_len != r->recipient_key_len ||
                 (b.recipient_key_len > 0 &&
                  CRYPTO_memcmp(b.recipient_key, r->recipient_key, b.recipient_key_len) != 0))
                what = "recipient_public_key";
        else if (!same(b.authority, r->authority))
                what = "authority";
        else if (!same(b.document, r->document))
                what = "document";
        else if (!same(b.reason, r->reason))
                what = "reason";
        ra_recovery_body_clear(&b);
        if (what != NULL)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "recovery %lld: the record's %s is not what %s signed",
                                      (long long)r->id, what, r->requested_by);
        return 0;
}

/* The signed approval names the request on record. */
static int approval_body_ok(const struct ra_recovery *r, const struct gmca_auth_proof *p,
                            struct gmca_error *e)
{
        char sub[RA_SUBMISSION_HEX + 1];
        struct ra_decide_body b;
        struct gmca_error in = {0};
        int rc;

        if (ra_decide_parse(p->body, p->body_len, 1, &b, &in) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "recovery %lld: the signed approval does not parse: %s",
                                      (long long)r->id, in.msg);
        rc = ra_submission_digest(r->request_auth, r->request_auth_len, sub, e);
        if (rc == 0 && strcmp(sub, b.submission) != 0)
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "recovery %lld: the signed approval is about request %.16s..., "
                                    "the record's is %.16s...",
                                    (long long)r->id, b.submission, sub);
        ra_decide_body_clear(&b);
        return rc;
}

/* ---- the certificates, as the engine's own keys vouch for them ---- */

#define CHAIN_MAX 4 /* CA certificates between a certificate and a key the engine holds */

/* cert is signed by a CA key this activated engine holds. */
static int held_key_signed(struct gmca_ctx *c, X509 *cert)
{
        struct gmca_error ignored = {0};

        for (size_t i = 0; i < c->ncas; i++) {
                const struct ca_slot *ca = &c->cas[i];

                if (ca->signer != NULL && ca->cert != NULL &&
                    X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca->cert)) ==
                        0 &&
                    gmca_cert_verify_signed_by(
                        cert, X509_get0_pubkey(ca->cert),
                        ca->rec.sm2_id[0] ? ca->rec.sm2_id : GMCA_SM2_DEFAULT_ID, &ignored) == 0)
                        return 1;
        }
        gmca_ossl_clear();
        return 0;
}

/* The key of the stored CA row r, whose certificate is x, is in this engine's device. */
static int in_device(struct gmca_ctx *c, const struct gmca_ca_rec *r, X509 *x)
{
        struct gmca_error ignored = {0};
        unsigned index = ca_key_index(r);
        EVP_PKEY *pub;
        int eq;

        if (c->dev == NULL || index == 0 ||
            (pub = gmca_device_public_key(c->dev, index, &ignored)) == NULL)
                return 0;
        eq = EVP_PKEY_eq(pub, X509_get0_pubkey(x)) == 1;
        EVP_PKEY_free(pub);
        return eq;
}

struct issuer_find {
        struct gmca_ctx *c;
        X509 *cert;  /* borrowed: the certificate whose issuer is sought */
        X509 *found; /* owned: a stored CA certificate that signed it */
        int held;    /* found's key is in the device */
};

static int issuer_cb(const struct gmca_ca_rec *r, void *arg)
{
        struct issuer_find *f = arg;
        struct gmca_error ignored = {0};
        const unsigned char *p = r->cert_der;
        X509 *x;

        if (f->held || p == NULL || (x = d2i_X509(NULL, &p, (long)r->cert_len)) == NULL) {
                gmca_ossl_clear();
                return 0;
        }
        if (X509_cmp(x, f->cert) != 0 &&
            X509_NAME_cmp(X509_get_issuer_name(f->cert), X509_get_subject_name(x)) == 0 &&
            gmca_cert_verify_signed_by(f->cert, X509_get0_pubkey(x),
                                       r->sm2_id[0] ? r->sm2_id : GMCA_SM2_DEFAULT_ID,
                                       &ignored) == 0) {
                f->held = in_device(f->c, r, x);
                X509_free(f->found);
                f->found = x;
        } else
                X509_free(x);
        gmca_ossl_clear();
        return 0;
}

/*
 * The stored CA rows are the front's to write as much as the certificate
 * rows (ra_recovery.c signed_cert believes them), and a front that put in a
 * CA of its own and a certificate under the recipient's serial would have
 * the key sealed to itself. So cert must be signed by a key this engine
 * holds: an unlocked CA's (its certificate checked against the device at
 * activation, ca_keys.c unlock_slot), or one in the device still (an
 * archived CA's, for an old encryption key); else through the stored CA
 * certificates up to one (a CA whose key was destroyed).
 */
static int engine_vouches(struct gmca_ctx *c, const struct checked *k, X509 *cert, const char *what,
                          const char *serial, struct gmca_error *e)
{
        struct issuer_find f = {c, cert, NULL, 0};
        X509 *owned = NULL;
        int ok = 0, rc;

        for (int depth = 0; depth < CHAIN_MAX && !ok; depth++) {
                if ((ok = held_key_signed(c, f.cert)) != 0)
                        break;
                f.found = NULL;
                if ((rc = gmca_store_ca_list(c->store, issuer_cb, &f, e)) != 0) {
                        X509_free(f.found);
                        X509_free(owned);
                        return rc;
                }
                ok = f.held;
                if (f.found == NULL)
                        break;
                X509_free(owned);
                owned = f.cert = f.found;
        }
        X509_free(owned);
        if (!ok)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "recovery %lld: %s %s is not signed by a CA key this "
                                      "engine holds (a stored certificate or CA was altered)",
                                      (long long)k->r.id, what, serial);
        return 0;
}

/*
 * One approval, one delivery: the row's state is the front's to write, so a
 * front that set a delivered recovery back to approved would have the key
 * sealed again. The engine's own km.recover record of a delivery (audit rows
 * are appended, never changed: a deleted one breaks the chain) says it was.
 */
static const char SQL_DELIVERED_BEFORE[] =
    "SELECT seq FROM audit WHERE event = '" GMCA_EV_KM_RECOVER
    "' AND object = ? AND success = 1 LIMIT 1";

static int delivered_before(struct gmca_store *s, int64_t id, struct gmca_error *e)
{
        char object[32];
        struct gmca_q q;
        int rc;

        snprintf(object, sizeof(object), "recovery:%lld", (long long)id);
        if ((rc = gmca_q_open(s, SQL_DELIVERED_BEFORE, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, object);
        rc = gmca_q_step(&q, e, "deliveries of recovery %lld", (long long)id);
        if (rc == GMCA_DB_ROW)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "recovery %lld was delivered already (audit record %lld): an "
                                    "approval delivers once",
                                    (long long)id, (long long)gmca_q_col_int(&q, 0));
        gmca_q_close(&q);
        return rc == GMCA_DB_DONE ? 0 : rc;
}

static int check(struct gmca_ctx *c, const uint8_t k_op[GMCA_OP_KEY_LEN], int64_t id, int64_t now,
                 struct checked *k, struct gmca_error *e)
{
        struct gmca_store *s = c->store;
        struct gmca_auth_proof pr, pa;
        char want[80];
        int rc;

        if ((rc = ra_recovery_load(s, id, &k->r, e)) != 0)
                return rc;
        if (strcmp(k->r.state, RA_REC_APPROVED) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE, "recovery %lld is %s, not approved",
                                      (long long)id, k->r.state);
        if ((rc = delivered_before(s, id, e)) != 0)
                return rc;
        if ((rc = step(s, k_op, &k->r, "request", k->r.request_auth, k->r.request_auth_len,
                       k->r.requested_by, GMCA_ACT_RECOVERY_REQUEST, "/api/v1/recoveries", now, &pr,
                       &k->req_op, e)) != 0 ||
            (rc = request_body_ok(&k->r, &pr, e)) != 0)
                return rc;
        snprintf(want, sizeof(want), "/api/v1/recoveries/%lld/approve", (long long)id);
        if ((rc = step(s, k_op, &k->r, "approval", k->r.decide_auth, k->r.decide_auth_len,
                       k->r.decided_by, GMCA_ACT_RECOVERY_APPROVE, want, now, &pa, &k->app_op,
                       e)) != 0 ||
            (rc = approval_body_ok(&k->r, &pa, e)) != 0)
                return rc;
        /* Two people (CPS §3.10), on the operators the proofs name. */
        if (k->app_op.id == k->req_op.id || strcmp(k->app_op.name, k->req_op.name) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "CPS §3.10: recovery %lld was approved by %s, who requested "
                                      "it; the approver must be another",
                                      (long long)id, k->app_op.name);
        if ((rc = ra_recovery_rules(s, k->r.kind, k->r.enc_serial, k->r.recipient_serial, now,
                                    &k->enc, &k->recipient, e)) != 0 ||
            (rc = engine_vouches(c, k, k->enc, "encryption_serial", k->r.enc_serial, e)) != 0)
                return rc;
        return k->recipient == NULL ? 0
                                    : engine_vouches(c, k, k->recipient, "recipient_serial",
                                                     k->r.recipient_serial, e);
}

/* ---- the KM ---- */

/* The key the envelope goes to: the signature certificate's, or the carrier's.
 */
static EVP_PKEY *recipient_key(const struct checked *k, struct gmca_error *e)
{
        const unsigned char *p = k->r.recipient_key;
        EVP_PKEY *key;

        if (k->recipient != NULL) {
                key = X509_get0_pubkey(k->recipient);
                if (key != NULL && EVP_PKEY_up_ref(key) == 1)
                        return key;
        } else if (p != NULL &&
                   (key = d2i_PUBKEY(NULL, &p, (long)k->r.recipient_key_len)) != NULL) {
                if (p == k->r.recipient_key + k->r.recipient_key_len &&
                    gmca_sm2_is_sm2(key, e) == 0)
                        return key;
                EVP_PKEY_free(key);
        }
        gmca_ossl_clear();
        gmca_error_set(e, GMCA_ERR_DB, "recovery %lld: the recipient's key is unreadable",
                       (long long)k->r.id);
        return NULL;
}

static char *restore_info(const struct checked *k)
{
        char rec[24];

        snprintf(rec, sizeof(rec), "%lld", (long long)k->r.id);
        return ca_detail_json(json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s}", "kind", k->r.kind,
                                        "recovery", rec, "authority", k->r.authority, "document",
                                        k->r.document, "reason", k->r.reason, "requested_by",
                                        k->req_op.name, "approved_by", k->app_op.name));
}

/* What the KM sent is the encryption certificate's key pair, sealed
 * (envelope.h). */
static int delivery_ok(const struct checked *k, const struct gmca_km_item *it, struct gmca_error *e)
{
        EVP_PKEY *pub;
        int eq;

        if (it->envelope == NULL || it->envelope_len == 0 || it->envelope_len > GMCA_ENVELOPE_MAX ||
            (it->blob != NULL && it->blob_len != GMCA_ENVELOPE_BLOB_LEN))
                return gmca_error_set(e, GMCA_ERR_VERIFY, "km: recovery %lld: no usable envelope",
                                      (long long)k->r.id);
        pub = gmca_envelope_pubkey(it->envelope, it->envelope_len, e);
        eq = pub != NULL && EVP_PKEY_eq(pub, X509_get0_pubkey(k->enc)) == 1;
        EVP_PKEY_free(pub);
        gmca_ossl_clear();
        if (!eq)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km: recovery %lld: the envelope does not hold the key of "
                                      "encryption certificate %s",
                                      (long long)k->r.id, k->r.enc_serial);
        return 0;
}

static int restore(struct gmca_ctx *c, const struct checked *k, struct gmca_km_item *it,
                   struct gmca_error *e)
{
        struct gmca_km_link *l;
        uint8_t sn[20];
        size_t snlen = 0;
        EVP_PKEY *to = NULL;
        char *info = NULL;
        int rc;

        if (gmca_unhex(k->r.enc_serial, sn, sizeof(sn), &snlen) != 0 || snlen == 0)
                return gmca_error_set(e, GMCA_ERR_DB, "recovery %lld: serial %s",
                                      (long long)k->r.id, k->r.enc_serial);
        if ((l = ca_km(c, e)) == NULL)
                return e->code != 0 ? e->code : GMCA_ERR_STATE;
        if ((to = recipient_key(k, e)) == NULL || (info = restore_info(k)) == NULL) {
                rc = e->code != 0 ? e->code : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = gmca_km_restore(l, sn, snlen, to, info, it, e)) == 0)
                rc = delivery_ok(k, it, e);
out:
        EVP_PKEY_free(to);
        free(info);
        return rc;
}

/* Inside the transaction: approved -> delivered, with what the KM sent. */
static int mark_delivered(struct gmca_store *s, int64_t id, const struct gmca_km_item *it,
                          int64_t now, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_DELIVERED, &q, e)) != 0)
                return rc;
        gmca_q_blob(&q, it->envelope, it->envelope_len);
        gmca_q_blob(&q, it->blob, it->blob_len);
        gmca_q_int(&q, now);
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "recovery %lld: mark delivered", (long long)id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "recovery %lld is no longer approved (delivered meanwhile?)",
                                    (long long)id);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_ra_recover_approved(struct gmca_ctx *c, int64_t id, int64_t now, struct gmca_error *e)
{
        struct gmca_km_item it = {0};
        struct checked k;
        struct gmca_audit_event ev;
        uint8_t k_op[GMCA_OP_KEY_LEN];
        char object[32], *detail = NULL;
        int rc;

        memset(&k, 0, sizeof(k));
        snprintf(object, sizeof(object), "recovery:%lld", (long long)id);
        if ((rc = gmca_operator_key(c, k_op, e)) != 0)
                return ca_reject(c, GMCA_EV_KM_RECOVER, object, rc, e);
        if ((rc = gmca_store_begin(c->store, e)) != 0) {
                OPENSSL_cleanse(k_op, sizeof(k_op));
                return ca_reject(c, GMCA_EV_KM_RECOVER, object, rc, e);
        }
        rc = check(c, k_op, id, now, &k, e);
        OPENSSL_cleanse(k_op, sizeof(k_op));
        if (rc != 0 || (rc = restore(c, &k, &it, e)) != 0 ||
            (rc = mark_delivered(c->store, id, &it, now, e)) != 0)
                goto fail;
        detail = ca_detail_json(
            json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s}", "kind", k.r.kind,
                      "encryption_serial", k.r.enc_serial, "recipient_serial",
                      k.r.recipient_serial[0] ? k.r.recipient_serial : NULL, "authority",
                      k.r.authority, "document", k.r.document, "reason", k.r.reason, "requested_by",
                      k.req_op.name, "approved_by", k.app_op.name));
        if (detail == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        ev = (struct gmca_audit_event){GMCA_EV_KM_RECOVER, c->actor, 1, object, detail};
        if ((rc = gmca_audit_append(c->store, &ev, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0)
                goto fail;
        rc = 0;
        goto out;
fail:
        gmca_store_rollback(c->store);
        rc = ca_reject(c, GMCA_EV_KM_RECOVER, object, rc, e);
out:
        free(detail);
        gmca_km_item_clear(&it);
        checked_clear(&k);
        return rc;
}
