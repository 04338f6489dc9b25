/*
 * ocsp: the responder side of RFC 6960 (CPS §3.9.13-§3.9.14). It owns the
 * strict parsing of an OCSPRequest from the network, the lookup of each
 * CertID's status in the store, and the BasicOCSPResponse, signed with SM2
 * and the distinguishing ID by a delegated responder (a certificate under
 * profile ocsp, issued by the CA it answers for) through a struct
 * gmca_signer. OpenSSL 3.0 cannot sign an OCSP response with the ID
 * through a key it does not hold (GMT-REFERENCE §3.3), so the
 * ResponseData is encoded here and the signature put around it.
 *
 * Choices where RFC 6960 leaves room:
 * - CertID hashes SHA-1 and SM3 are matched; a CertID with any other
 *   hash algorithm cannot be matched to an issuer and is answered
 *   "unknown" (§2.2), never "good".
 * - All CertIDs that can be matched must name the same served CA (one
 *   responder signs the response). A CertID whose issuer is not served,
 *   or is another CA than the first, makes the whole answer
 *   "unauthorized" (§2.3); so does a request with no CertID matched.
 * - A certificate the CA did not issue is "unknown"; an expired
 *   certificate keeps its status (good or revoked).
 * - The request signature, if any, is not checked (anyone may ask).
 */
#ifndef GMCA_OCSP_H
#define GMCA_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "err.h"
#include "signer.h"
#include "store.h"

#define GMCA_OCSP_REQ_MAX 65536         /* bytes of an OCSPRequest */
#define GMCA_OCSP_CERTIDS_MAX 256       /* Requests in one OCSPRequest */
#define GMCA_OCSP_NONCE_MAX 32          /* octets of a nonce (RFC 8954 §2.1) */
#define GMCA_OCSP_VALIDITY_DEFAULT 3600 /* seconds from thisUpdate to nextUpdate */
#define GMCA_OCSP_VALIDITY_MAX (7 * 24 * 3600)

/* One CA served, with the certificate and signer that answer for it. */
struct gmca_ocsp_responder {
        int64_t ca_id;                    /* the CA's id in the store */
        X509 *ca;                         /* owned: the CA certificate */
        X509 *cert;                       /* borrowed: the responder certificate */
        const struct gmca_signer *signer; /* borrowed: signs with cert's key */
        uint8_t name_sha1[20], key_sha1[20];
        uint8_t name_sm3[GMCA_SM3_LEN], key_sm3[GMCA_SM3_LEN];
        uint8_t respid[20]; /* ResponderID byKey: SHA-1 of cert's public key */
};

/*
 * Find the store CA that issued cert (subject = issuer name, signature
 * verifies with the CA key and ID) and fill r for it. cert must carry EKU
 * OCSPSigning and id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2, §4.2.2.2.1)
 * and be valid at now. cert and signer are borrowed for r's life; free r
 * with gmca_ocsp_responder_clear. GMCA_ERR_NOTFOUND if no CA issued it,
 * GMCA_ERR_POLICY for a certificate that may not answer.
 */
int gmca_ocsp_responder_init(struct gmca_ocsp_responder *r, struct gmca_store *s, X509 *cert,
                             const struct gmca_signer *signer, int64_t now,
                             struct gmca_error *e) GMCA_WUR;
void gmca_ocsp_responder_clear(struct gmca_ocsp_responder *r);

/*
 * Strictly parse a DER OCSPRequest: exactly len bytes, DER (re-encodes to
 * the same bytes), version v1, 1..GMCA_OCSP_CERTIDS_MAX Requests, no
 * unknown critical extension, at most one nonce of 1..32 octets. Returns
 * the request (free with OCSP_REQUEST_free) or NULL with e set:
 * GMCA_ERR_LIMIT over a cap, GMCA_ERR_INVALID otherwise.
 */
OCSP_REQUEST *gmca_ocsp_request_parse(const uint8_t *buf, size_t len, struct gmca_error *e);

struct gmca_ocsp_opts {
        int64_t now;      /* thisUpdate and producedAt; 0: the clock */
        int64_t validity; /* nextUpdate - thisUpdate in seconds; 0: the default */
};

/* What gmca_ocsp_respond answered, for the HTTP layer and the log. */
struct gmca_ocsp_answer {
        int status;    /* OCSP_RESPONSE_STATUS_* */
        int has_nonce; /* the response echoes a nonce: not cacheable */
        int64_t this_update, next_update;
        size_t good, revoked, unknown; /* SingleResponses of each status */
};

/*
 * Answer the DER request req with the responders rs[0..n): a DER
 * OCSPResponse in *out (OPENSSL_malloc'd, caller frees) whose status is
 * also in a->status — successful with a signed BasicOCSPResponse, or
 * malformedRequest, unauthorized, tryLater (the store is busy) or
 * internalError with no responseBytes (RFC 6960 §2.3). Returns 0 whenever
 * *out was made (an error status included); a negative code only when no
 * response at all could be made (out of memory), e set.
 */
int gmca_ocsp_respond(struct gmca_store *s, const struct gmca_ocsp_responder *rs, size_t n,
                      const struct gmca_ocsp_opts *o, const uint8_t *req, size_t len, uint8_t **out,
                      size_t *outlen, struct gmca_ocsp_answer *a, struct gmca_error *e) GMCA_WUR;

#endif
