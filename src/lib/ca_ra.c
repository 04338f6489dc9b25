/*
 * The RA communication certificate (CPS §7.1.1 item 2): the CA issues the
 * RA system the certificate with which it signs what it sends the CA
 * engine, and keeps a record of which certificate is each RA's current
 * one, so that the engine can accept requests signed by that certificate
 * alone.
 *
 * Records (store metadata, written with the audit record ra.cert):
 *   ra.cert.<ra>        the serial of the RA's current certificate
 *   ra.serial.<serial>  the RA a certificate was issued to
 * A newer certificate for the same RA replaces the older one, which is then
 * no longer accepted (it is not revoked: it was never compromised).
 *
 * The certificate, its cert.issue record, the RA records and ra.cert are
 * one transaction (ca_issue_in_tx): either the RA has its new certificate
 * or nothing happened. When the CA engine signs, it needs the custodians'
 * authorisation (gmca_ctx_authorise) unless it was started with
 * --direct-issue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "ca_internal.h"
#include "util.h"

#define RA_PROFILE "ra-comm"
#define META_RA_CERT "ra.cert."
#define META_RA_SERIAL "ra.serial."
/* Metadata keys are at most GMCA_NAME_MAX - 1 bytes. */
#define RA_NAME_MAX (GMCA_NAME_MAX - 1 - (int)(sizeof(META_RA_CERT) - 1))

static int ra_valid_name(const char *s)
{
        return s != NULL && strlen(s) <= (size_t)RA_NAME_MAX && ca_valid_name(s);
}

static void meta_key(char *out, size_t len, const char *prefix, const char *v)
{
        snprintf(out, len, "%s%s", prefix, v);
}

/* *found = 0 and buf "" when the key is absent. */
static int meta_opt(struct gmca_store *s, const char *key, char *buf, size_t len, int *found,
                    struct gmca_error *e)
{
        int rc = gmca_store_meta_get(s, key, buf, len, e);

        *found = rc == 0;
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                buf[0] = '\0';
                return 0;
        }
        return rc;
}

/* Inside a transaction: ra's current certificate is now serial; audited. */
static int ra_record(struct gmca_ctx *c, const char *ra, const char *serial, X509 *cert,
                     struct gmca_error *e)
{
        char key[GMCA_NAME_MAX + 16], old[GMCA_SERIAL_HEX_MAX], subject[GMCA_DN_MAX], fp[65],
            until[32];
        struct gmca_audit_event ev;
        char *detail;
        int rc, found;

        meta_key(key, sizeof(key), META_RA_CERT, ra);
        if ((rc = meta_opt(c->store, key, old, sizeof(old), &found, e)) != 0 ||
            (rc = gmca_store_meta_set(c->store, key, serial, e)) != 0)
                return rc;
        meta_key(key, sizeof(key), META_RA_SERIAL, serial);
        if ((rc = gmca_store_meta_set(c->store, key, ra, e)) != 0 ||
            (rc = gmca_dn_format(X509_get_subject_name(cert), subject, sizeof(subject), e)) != 0 ||
            (rc = gmca_cert_fingerprint(cert, fp, e)) != 0)
                return rc;
        gmca_time_iso(ca_cert_not_after(cert), until, sizeof(until));
        detail = ca_detail_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "ra", ra,
                                          "serial", serial, "ca", gmca_ctx_default_ca(c), "profile",
                                          RA_PROFILE, "subject", subject, "fingerprint", fp,
                                          "not_after", until, "replaces", found ? old : NULL));
        if (detail == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        ev = (struct gmca_audit_event){GMCA_EV_RA_CERT, c->actor, 1, serial, detail};
        rc = gmca_audit_append(c->store, &ev, e);
        free(detail);
        return rc;
}

int gmca_ra_cert_issue(struct gmca_ctx *c, const char *ra, const uint8_t *csr, size_t csr_len,
                       int days, char serial[GMCA_SERIAL_HEX_MAX], X509 **out, struct gmca_error *e)
{
        struct gmca_issue_req r;
        char sn[GMCA_SERIAL_HEX_MAX];
        X509 *cert = NULL;
        int rc;

        if (!ra_valid_name(ra)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "RA name must be [a-z0-9_-]{1,%d}",
                               RA_NAME_MAX);
                return ca_reject(c, GMCA_EV_RA_CERT, "ra", GMCA_ERR_INVALID, e);
        }
        memset(&r, 0, sizeof(r));
        r.ca = NULL; /* the default CA issues (CPS §7.1.1: "RA 通讯证书由 CA 签发") */
        r.profile = RA_PROFILE;
        r.csr = csr;
        r.csr_len = csr_len;
        r.days = days;
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return ca_reject(c, GMCA_EV_RA_CERT, ra, rc, e);
        if ((rc = ca_issue_in_tx(c, &r, sn, &cert, e)) != 0 ||
            (rc = ra_record(c, ra, sn, cert, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                X509_free(cert);
                return ca_reject(c, GMCA_EV_RA_CERT, ra, rc, e);
        }
        gmca_strlcpy(serial, sn, GMCA_SERIAL_HEX_MAX);
        if (out != NULL)
                *out = cert;
        else
                X509_free(cert);
        return 0;
}

int gmca_ra_cert_check(struct gmca_ctx *c, X509 *cert, struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        char serial[GMCA_SERIAL_HEX_MAX], key[GMCA_NAME_MAX + 16], ra[GMCA_NAME_MAX],
            current[GMCA_SERIAL_HEX_MAX], t1[32], t2[32];
        uint8_t *der = NULL;
        size_t len = 0;
        time_t now = gmca_now();
        int rc, found;

        memset(&rec, 0, sizeof(rec));
        if (cert == NULL || gmca_serial_hex(cert, serial, sizeof(serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "RA certificate: no usable serial number");
        rc = gmca_store_cert_get(c->store, serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_AUTH, "RA certificate %s: not issued by this CA",
                                      serial);
        }
        if (rc != 0)
                return rc;
        if ((rc = ca_cert_der(cert, &der, &len, e)) != 0)
                goto out;
        rc = GMCA_ERR_AUTH;
        if (len != rec.der_len || CRYPTO_memcmp(der, rec.der, len) != 0) {
                gmca_error_set(e, rc,
                               "RA certificate %s: not the certificate issued under that serial",
                               serial);
                goto out;
        }
        if (strcmp(rec.profile, RA_PROFILE) != 0) {
                gmca_error_set(
                    e, rc,
                    "certificate %s is a %s certificate, not an RA communication certificate "
                    "(" RA_PROFILE ")",
                    serial, rec.profile);
                goto out;
        }
        if (rec.status == GMCA_CERT_REVOKED) {
                gmca_error_set(e, rc, "RA certificate %s is revoked", serial);
                goto out;
        }
        if ((int64_t)now < rec.not_before || (int64_t)now > rec.not_after) {
                gmca_time_iso((time_t)rec.not_before, t1, sizeof(t1));
                gmca_time_iso((time_t)rec.not_after, t2, sizeof(t2));
                gmca_error_set(e, GMCA_ERR_AUTH, "RA certificate %s is not valid now (%s to %s)",
                               serial, t1, t2);
                goto out;
        }
        meta_key(key, sizeof(key), META_RA_SERIAL, serial);
        if ((rc = meta_opt(c->store, key, ra, sizeof(ra), &found, e)) != 0)
                goto out;
        rc = GMCA_ERR_AUTH;
        if (!found) {
                gmca_error_set(e, rc, "certificate %s was not issued to an RA (no ra.cert record)",
                               serial);
                goto out;
        }
        meta_key(key, sizeof(key), META_RA_CERT, ra);
        if ((rc = meta_opt(c->store, key, current, sizeof(current), &found, e)) != 0)
                goto out;
        rc = GMCA_ERR_AUTH;
        if (!found || strcmp(current, serial) != 0) {
                gmca_error_set(e, GMCA_ERR_AUTH,
                               "RA certificate %s of RA %s has been replaced by %s", serial, ra,
                               found ? current : "(none)");
                goto out;
        }
        rc = 0;
out:
        OPENSSL_free(der);
        gmca_cert_rec_clear(&rec);
        return rc;
}

int gmca_ra_cert_owner(struct gmca_ctx *c, const char *serial, char ra[GMCA_NAME_MAX], int *current,
                       struct gmca_error *e)
{
        char key[GMCA_NAME_MAX + 48], now[GMCA_SERIAL_HEX_MAX];
        int rc, found;

        *current = 0;
        meta_key(key, sizeof(key), META_RA_SERIAL, serial);
        if ((rc = meta_opt(c->store, key, ra, GMCA_NAME_MAX, &found, e)) != 0 || !found)
                return rc;
        meta_key(key, sizeof(key), META_RA_CERT, ra);
        if ((rc = meta_opt(c->store, key, now, sizeof(now), &found, e)) != 0)
                return rc;
        *current = found && strcmp(now, serial) == 0;
        return 0;
}
