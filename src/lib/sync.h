/*
 * sync: certificate and CRL synchronisation to downstream e-government
 * systems (CPS §4.6.1, §4.6.2). Each configured receiver is a delivery
 * channel "sync:<name>" of the change feed (publish.h): every certificate
 * issued or revoked and every CRL becomes one JSON event, signed with SM2 by
 * the CA's sync key into a GM/T 0010 SignedData (content and signer
 * certificate attached) and POSTed to the receiver's URL with libcurl. The
 * event id goes with the payload so that a receiver drops a repeat (a
 * crash between delivery and cursor move sends an event again).
 *
 * What leaves the CA is what a relying party may know (CPS §8.3.2,
 * §8.4.4): the CA, the subscriber's DN (without serialNumber, which some
 * profiles allow and which may hold a personal number), the applicant's
 * kind and organisation, the certificate's serial, profile, validity and
 * status, and the certificate itself, as published in the directory. The
 * identity numbers the RA keeps (sealed or in requests.info_json) are never
 * read here.
 *
 * A receiver checks a body with gmca_sync_verify: the SM2 signature with
 * the default ID, a signer certificate of the sync profile (digitalSignature
 * and nonRepudiation, no extKeyUsage: what tells it from a subscriber's
 * signing certificate, which always carries one) that chains to the
 * receiver's trust anchor, and a payload of the shape below.
 */
#ifndef GMCA_SYNC_H
#define GMCA_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "publish.h"
#include "store.h"
#include "validate.h"

#define GMCA_SYNC_NAME_MAX 32         /* bytes of a receiver name, [A-Za-z0-9_.-] */
#define GMCA_SYNC_URL_MAX 1024        /* bytes of a receiver URL */
#define GMCA_SYNC_TIMEOUT 10          /* seconds per POST, connection included */
#define GMCA_SYNC_BODY_MAX (8u << 20) /* bytes of a signed body (a CRL can be large) */
#define GMCA_SYNC_PAYLOAD_VERSION 1
#define GMCA_SYNC_PROFILE "sync"

/*
 * One downstream receiver. pub is what serve_publish_start runs: channel
 * "sync:<name>", deliver posting to url, arg this struct (which must stay
 * put while the publisher runs). cert and key are borrowed; ca_file (NULL:
 * the system's) is the CA bundle for https.
 */
struct gmca_sync_receiver {
        struct gmca_publisher pub;
        char name[GMCA_SYNC_NAME_MAX];
        char url[GMCA_SYNC_URL_MAX];
        const char *ca_file;
        long timeout; /* seconds; 0: GMCA_SYNC_TIMEOUT */
        X509 *cert;
        EVP_PKEY *key;
};

/*
 * Set up r from spec "NAME=URL" (http:// or https:// only) with the sync
 * certificate and key (borrowed; checked with gmca_sync_check_signer
 * first). Also initialises libcurl for the process, so call it before any
 * thread is started. GMCA_ERR_INVALID for a bad spec.
 */
int gmca_sync_receiver_init(struct gmca_sync_receiver *r, const char *spec, X509 *cert,
                            EVP_PKEY *key, const char *ca_file, struct gmca_error *e) GMCA_WUR;

/*
 * 0 if cert can sign sync payloads: key is its private key, its keyUsage
 * is the sync profile's (digitalSignature and nonRepudiation, no
 * encipherment or CA bits, no extKeyUsage) and it is valid now.
 * GMCA_ERR_TAMPER for a key that is not the certificate's, GMCA_ERR_POLICY
 * for a certificate that is not a sync signer.
 */
int gmca_sync_check_signer(X509 *cert, EVP_PKEY *key, struct gmca_error *e) GMCA_WUR;

/*
 * The JSON payload of ev, read from s (no transaction held):
 *
 *   {"version": 1, "event_id": N, "type": "cert.issue"|"cert.revoke"|"crl.issue",
 *    "time": ISO 8601 of the change, "business_type": "new"|"renew"|"rekey"|
 *    "reissue"|"change"|"revoke"|"crl"|"cli",
 *    "ca": {"name", "subject"},
 *    cert.*: "subscriber": {"subject": [{"C": "CN"}, {"O": ...}, ...],
 *                           "kind": applicant kind | null, "organisation": ... | null},
 *            "certificate": {"serial", "profile", "not_before", "not_after",
 *                            "status": "valid"|"revoked", "revoked_at", "reason",
 *                            "pair_serial": the other certificate of a dual pair | null,
 *                            "pem"},
 *    crl.issue: "crl": {"number", "this_update", "next_update",
 *                       "delta_base": base cRLNumber | null, "der_base64"}}
 *
 * Times are ISO 8601 UTC; status and revocation are as of the call.
 * *json is a NUL-terminated string to free with free(). GMCA_ERR_NOTFOUND
 * when the object of the event is gone.
 */
int gmca_sync_payload(struct gmca_store *s, const struct gmca_event *ev, char **json,
                      struct gmca_error *e) GMCA_WUR;

/*
 * Check that json (len bytes, at most GMCA_SYNC_BODY_MAX) is a payload as
 * above: an object with version 1, a positive event_id, a known type and
 * the object of its type. *event_id (may be NULL) gets the id.
 * GMCA_ERR_INVALID with the field named otherwise.
 */
int gmca_sync_payload_check(const char *json, size_t len, int64_t *event_id,
                            struct gmca_error *e) GMCA_WUR;

/* What gmca_sync_verify found. */
struct gmca_sync_verified {
        int64_t event_id;
        time_t signing_time; /* 0: the message had none */
        char signer[GMCA_DN_MAX];
        char signer_serial[GMCA_SERIAL_HEX_MAX];
};

/*
 * Verify a sync body (DER SignedData, or one PEM block): the SM2 signature
 * with the default ID over the attached payload, a signer certificate that
 * passes gmca_sync_check_signer's key usage rule and validates under vopts
 * (anchors, intermediates, CRLs, revocation policy, time; its use is set to
 * signature here), and a payload gmca_sync_payload_check accepts. On
 * success *payload gets the JSON (NUL-terminated, OPENSSL_malloc; caller
 * frees with OPENSSL_free), *plen its length, and *info (may be NULL) the
 * details. GMCA_ERR_VERIFY for a signature or path that does not verify,
 * GMCA_ERR_POLICY for a signer that is not a sync certificate,
 * GMCA_ERR_INVALID for a malformed body or payload.
 */
int gmca_sync_verify(const uint8_t *body, size_t len, const struct gmca_vfy_opts *vopts,
                     char **payload, size_t *plen, struct gmca_sync_verified *info,
                     struct gmca_error *e) GMCA_WUR;

#endif
