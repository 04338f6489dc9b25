/*
 * Dual certificates (双证书, CPS §7.1.1 item 3, §7.1.2; km.h): when a
 * signature profile names its encryption pair and the CA has a KM, the
 * signature certificate an approved application asks for is issued with an
 * encryption certificate for a key pair the KM makes and escrows.
 *
 * Order, inside the transaction that issued the signature certificate: a
 * serial for the encryption certificate is drawn first and sent to the KM
 * with the subscriber's signature public key and the signature
 * certificate's validity; the KM escrows the new pair under that serial
 * and answers with the public key and the pair sealed to the signature key;
 * only then is the encryption certificate signed for that key, and the
 * sealed pair kept beside it (dual_keys) for the subscriber to collect.
 * So no encryption certificate exists without an escrowed key; and if the
 * transaction fails after the KM answered, the KM is told to revoke the key
 * it made for a certificate that never was (ca_pair_abandon).
 *
 * A KM that cannot be reached fails the issuance cleanly (the application
 * stays approved and can be issued again); a CA without a KM issues the
 * signature certificate alone.
 */
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "ca_internal.h"
#include "envelope.h"
#include "km.h"
#include "publish.h"
#include "store_internal.h"
#include "util.h"
#include "x509.h"

static const char SQL_IS_ENC[] = "SELECT 1 FROM dual_keys WHERE enc_serial = ?";
static const char SQL_DUAL_INSERT[] = "INSERT INTO dual_keys (enc_serial, sig_serial, envelope, "
                                      "blob, created) VALUES (?, ?, ?, ?, ?)";

struct gmca_km_link *ca_km(struct gmca_ctx *c, struct gmca_error *e)
{
        if (c->km == NULL && c->km_error.code != 0) {
                if (e != NULL)
                        *e = c->km_error;
                return NULL;
        }
        if (c->km == NULL && (c->km = gmca_ca_km_link(c, e)) == NULL && e != NULL &&
            e->code != GMCA_ERR_NOTFOUND && c->secrets == NULL) {
                char why[sizeof(e->msg)];

                gmca_strlcpy(why, e->msg, sizeof(why));
                gmca_error_clear(e);
                gmca_error_set(e, GMCA_ERR_STATE,
                               "km: the CA engine was activated before its KM link was made "
                               "(gmca deactivate, then activate again): %s",
                               why);
        }
        return c->km;
}

static int asn1_time(const ASN1_TIME *t, int64_t *out, struct gmca_error *e)
{
        struct tm tm;

        if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "dual: unreadable validity");
        *out = (int64_t)timegm(&tm);
        return 0;
}

/* A fresh serial no certificate has. */
static int new_serial(struct gmca_ctx *c, uint8_t serial[GMCA_SERIAL_LEN],
                      char hex[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        int exists = 1, rc;

        for (int i = 0; i < 8 && exists; i++) {
                if ((rc = gmca_serial_random(serial, e)) != 0)
                        return rc;
                gmca_hex_upper(serial, GMCA_SERIAL_LEN, hex);
                if ((rc = gmca_store_serial_exists(c->store, hex, &exists, e)) != 0)
                        return rc;
        }
        return exists ? gmca_error_set(e, GMCA_ERR_INTERNAL, "dual: no unique serial") : 0;
}

static int keep_envelope(struct gmca_ctx *c, const char *enc, const char *sig,
                         const struct gmca_km_item *it, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(c->store, SQL_DUAL_INSERT, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, enc);
        gmca_q_text(&q, sig);
        gmca_q_blob(&q, it->envelope, it->envelope_len);
        gmca_q_blob(&q, it->blob, it->blob_len); /* NULL when the KM sent none */
        gmca_q_int(&q, (int64_t)gmca_now());
        rc = gmca_q_step(&q, e, "dual pair %s", enc);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* The KM's answer must deliver the key it names (km.h checks ret_pub against the envelope). */
static int check_answer(const struct gmca_km_item *it, struct gmca_error *e)
{
        EVP_PKEY *pub;
        int ok;

        if (it->ret_pub == NULL || it->envelope == NULL)
                return gmca_error_set(e, GMCA_ERR_VERIFY, "km: an answer without a key");
        if ((pub = gmca_envelope_pubkey(it->envelope, it->envelope_len, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_VERIFY;
        ok = EVP_PKEY_eq(pub, it->ret_pub) == 1;
        EVP_PKEY_free(pub);
        return ok ? 0
                  : gmca_error_set(e, GMCA_ERR_VERIFY,
                                   "km: the sealed key pair is not the public key it names");
}

int ca_issue_pair(struct gmca_ctx *c, const struct gmca_issue_req *r, X509 *sig,
                  const char *sig_serial, struct ca_pair *p, struct gmca_error *e)
{
        struct gmca_profile *prof;
        struct gmca_km_link *km;
        struct gmca_km_item it;
        struct gmca_issue_req er;
        X509_REQ *csr = NULL;
        char subject[GMCA_DN_MAX];
        int64_t nb = 0, na = 0;
        int rc;

        memset(p, 0, sizeof(*p));
        memset(&it, 0, sizeof(it));
        if ((prof = gmca_ctx_profile(c, r->profile, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_NOTFOUND;
        if (prof->encryption_profile[0] == '\0')
                return 0;
        if ((km = ca_km(c, e)) == NULL) {
                if (e == NULL || e->code != GMCA_ERR_NOTFOUND)
                        return e != NULL && e->code != 0 ? e->code : GMCA_ERR_INTERNAL;
                gmca_error_clear(e);
                return 0; /* no KM: the signature certificate alone */
        }
        if ((rc = asn1_time(X509_get0_notBefore(sig), &nb, e)) != 0 ||
            (rc = asn1_time(X509_get0_notAfter(sig), &na, e)) != 0 ||
            (rc = gmca_dn_format(X509_get_subject_name(sig), subject, sizeof(subject), e)) != 0 ||
            (rc = new_serial(c, p->serial, p->enc_serial, e)) != 0)
                goto out;
        /* The signature key, from the request it was certified from (the same key). */
        if ((csr = gmca_csr_parse(r->csr, r->csr_len, prof->sm2_id, e)) == NULL) {
                rc = e != NULL && e->code != 0 ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        rc = gmca_km_apply(km, p->serial, sizeof(p->serial), X509_REQ_get0_pubkey(csr), nb, na,
                           subject, &it, e);
        if (rc != 0)
                goto out;
        p->asked = 1;
        if ((rc = check_answer(&it, e)) != 0)
                goto out;
        er = *r;
        er.profile = prof->encryption_profile;
        er.km_pubkey = it.ret_pub;
        er.serial = p->serial;
        er.not_before = nb;
        er.not_after = na;
        er.days = 0;
        if ((rc = ca_issue_in_tx(c, &er, p->enc_serial, NULL, e)) != 0 ||
            (rc = keep_envelope(c, p->enc_serial, sig_serial, &it, e)) != 0)
                goto out;
out:
        if (rc != 0 && !p->asked)
                p->enc_serial[0] = '\0';
        gmca_km_item_clear(&it);
        X509_REQ_free(csr);
        return rc;
}

void ca_pair_abandon(struct gmca_ctx *c, struct ca_pair *p)
{
        struct gmca_error e;

        if (!p->asked || c->km == NULL)
                return;
        gmca_error_clear(&e);
        /* Best effort: the key stays escrowed, revoked, for a certificate that never was. */
        (void)!gmca_km_revoke(c->km, p->serial, sizeof(p->serial), &e);
        p->asked = 0;
}

/* The KM's revocation notice for one event of the change feed (publish.h). */
static int km_notice(void *arg, struct gmca_store *s, const struct gmca_event *ev,
                     struct gmca_error *e)
{
        struct gmca_ctx *c = arg;
        unsigned char *sn;
        struct gmca_q q;
        long len = 0;
        int rc;

        if (ev->kind != GMCA_EVENT_CERT_REVOKE)
                return 0;
        if ((rc = gmca_q_open(s, SQL_IS_ENC, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, ev->serial);
        rc = gmca_q_step(&q, e, "dual pair of %s", ev->serial);
        gmca_q_close(&q);
        if (rc != GMCA_DB_ROW)
                return rc < 0 ? rc : 0; /* not an encryption certificate of the KM's */
        if ((sn = OPENSSL_hexstr2buf(ev->serial, &len)) == NULL || len < 1 || len > 20) {
                OPENSSL_free(sn);
                return gmca_error_set(e, GMCA_ERR_POLICY, "km: serial %s is not hex", ev->serial);
        }
        rc = gmca_km_revoke(c->km, sn, (size_t)len, e);
        OPENSSL_free(sn);
        /* A key the KM does not have, or has destroyed, is no notice to retry. */
        return rc == GMCA_ERR_NOTFOUND || rc == GMCA_ERR_STATE ? GMCA_ERR_POLICY : rc;
}

void ca_km_notices(struct gmca_ctx *c)
{
        struct gmca_publisher p = {
            .channel = "km", .deliver = km_notice, .arg = c, .kinds = 1u << GMCA_EVENT_CERT_REVOKE};
        struct gmca_error e = {0};

        if (c->km != NULL)
                (void)gmca_publish_pump(c->store, &p, 16, &e);
}
