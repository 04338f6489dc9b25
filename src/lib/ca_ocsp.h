/*
 * ca_ocsp: what the CA engine does for OCSP (issue 5 item 2, CPS
 * §3.9.13-§3.9.14) beyond plain signing. Two things, both run in the
 * engine process against its own store connection:
 *
 * - Delegated responder certificates asked for by the front (RA SUBOP
 *   "ocsp", engine.h): the engine checks the CSR, issues under profile
 *   ocsp, and bounds what a compromised front can obtain — at most two
 *   unexpired, unrevoked ocsp certificates per CA, the newer at least a
 *   quarter of its lifetime old before a third is made. That is enough
 *   to rotate (a responder is replaced in its last third) and no more.
 *
 * - CA-signed responses (op 'O'): the engine signs a ResponseData with a
 *   CA key only after checking every claim in it against the store, so
 *   that no process that can reach the socket can have the CA sign a lie.
 */
#ifndef GMCA_CA_OCSP_H
#define GMCA_CA_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>

#include "ca.h"
#include "err.h"

/* CN of a responder certificate the engine issues: "<CA name> OCSP Responder". */
#define GMCA_OCSP_RESPONDER_CN_SUFFIX " OCSP Responder"
#define GMCA_OCSP_RESPONDERS_MAX 2    /* unexpired, unrevoked ocsp certificates per CA */
#define GMCA_OCSP_CERT_SECONDS_MIN 30 /* shortest responder certificate one may ask for */
#define GMCA_OCSP_CLOCK_SKEW 300      /* thisUpdate/producedAt within this of the engine's clock */

/*
 * Issue a delegated OCSP responder certificate of CA ca from csr (DER,
 * SM2, self-signature with ID 1234567812345678, subject CN "<ca> OCSP
 * Responder", the rest as profile ocsp wants). seconds: its validity, 0
 * for the profile's default, else GMCA_OCSP_CERT_SECONDS_MIN up to the
 * profile's validity. actor names the requester on the cert.issue record.
 * Refused with GMCA_ERR_POLICY (and nothing written) when the CA has
 * GMCA_OCSP_RESPONDERS_MAX unexpired unrevoked ocsp certificates, or its
 * newest is younger than a quarter of its own lifetime. The caller audits
 * a refusal. On success *der (OPENSSL_malloc'd, caller frees) is the
 * certificate and serial its serial.
 */
int gmca_ca_ocsp_issue(struct gmca_ctx *c, const char *ca, const uint8_t *csr, size_t len,
                       int64_t seconds, const char *actor, uint8_t **der, size_t *derlen,
                       char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e) GMCA_WUR;

/*
 * Strictly parse a DER ResponseData (RFC 6960 §4.2.1): exactly len bytes,
 * DER, version v1 (absent). Returns it wrapped in a BasicOCSPResponse with
 * an empty signature (free with OCSP_BASICRESP_free) for libcrypto's
 * accessors, or NULL with e set (GMCA_ERR_INVALID). For the fuzz target too.
 */
OCSP_BASICRESP *gmca_ocsp_respdata_parse(const uint8_t *rd, size_t len, struct gmca_error *e);

/*
 * 0 if ResponseData rd may be signed by CA ca at now: responderID byKey
 * of the CA's key; producedAt and every thisUpdate within
 * GMCA_OCSP_CLOCK_SKEW of now; every nextUpdate present, after thisUpdate
 * and at most now + GMCA_OCSP_VALIDITY_MAX; no extension but a
 * non-critical nonce; 1..GMCA_OCSP_CERTIDS_MAX SingleResponses, each with
 * a SHA-1 or SM3 CertID of this CA and the status the store holds ("good"
 * for a certificate of this CA not revoked, "revoked" with its stored time
 * and reason, "unknown" only for a serial this CA did not issue).
 * GMCA_ERR_POLICY naming the first lie, GMCA_ERR_INVALID for bad DER,
 * GMCA_ERR_DB if the store cannot say.
 */
int gmca_ca_ocsp_check(struct gmca_ctx *c, const char *ca, const uint8_t *rd, size_t len,
                       int64_t now, struct gmca_error *e) GMCA_WUR;

#endif
