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
 *
 * Pre-signed responses (the RFC 5019 profile: one CertID, no nonce) come
 * from a struct gmca_ocsp_cache shared by the threads of a responder. An
 * entry is keyed by the exact bytes of a request that was answered
 * "successful" (the same bytes always parse to the same CertID, so a hit
 * skips parsing and signing) and holds the signed response, its
 * thisUpdate/nextUpdate, its SM3 (the HTTP ETag), the certificate's
 * serial and CA, and the store state it was signed from (status,
 * revocation time, reason). It is filled by the first request and served
 * until nextUpdate - margin (or the responder certificate's notAfter if
 * sooner); gmca_ocsp_cache_refresh re-signs entries ahead of that from a
 * background thread, and failing that the first request after it does.
 *
 * Freshness: every request, cached or not, reads the certificate's row
 * from the store (one indexed SELECT of status, revoked_at, reason by
 * serial through a cached statement, microseconds) and serves the cached
 * response only if that state is the one it was signed from; otherwise it
 * signs anew and replaces the entry. So a revocation or issuance committed
 * by any process on the same store — the CLI, another front — is answered
 * from the next request on, with no notification and no polling delay.
 * This was chosen over a polled change counter: the check costs one
 * SELECT per request, and a revoked certificate is never answered "good"
 * by a request that began after the revocation committed.
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
        int64_t ca_id; /* the CA's id in the store */
        X509 *ca;      /* owned: the CA certificate */
        X509 *cert;    /* borrowed: the responder certificate; NULL: CA-signed (init_ca) */
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
 * A CA-signed responder (RFC 6960 §4.2.2.2, first case): store CA ca
 * answers for itself. signer signs with the CA key (in the front: the CA
 * engine's op 'O', which checks each ResponseData against the store);
 * ResponderID byKey of the CA key; no certificate in the response; r->cert
 * stays NULL and the CA certificate's validity bounds the answers. Free
 * with gmca_ocsp_responder_clear. GMCA_ERR_NOTFOUND if no such CA.
 */
int gmca_ocsp_responder_init_ca(struct gmca_ocsp_responder *r, struct gmca_store *s, const char *ca,
                                const struct gmca_signer *signer, struct gmca_error *e) GMCA_WUR;

/*
 * Strictly parse a DER OCSPRequest: exactly len bytes, DER (re-encodes to
 * the same bytes), version v1, 1..GMCA_OCSP_CERTIDS_MAX Requests, no
 * unknown critical extension, at most one nonce of 1..32 octets. Returns
 * the request (free with OCSP_REQUEST_free) or NULL with e set:
 * GMCA_ERR_LIMIT over a cap, GMCA_ERR_INVALID otherwise.
 */
OCSP_REQUEST *gmca_ocsp_request_parse(const uint8_t *buf, size_t len, struct gmca_error *e);

#define GMCA_OCSP_CACHE_SLOTS_DEFAULT 16384
#define GMCA_OCSP_CACHE_SLOTS_MAX (1 << 22)

struct gmca_ocsp_cache;

/*
 * A cache of nslots entries (0: the default), direct-mapped: a CertID
 * whose slot is taken replaces the entry there, so memory stays bounded
 * whatever CertIDs are asked. Thread-safe (one mutex, held to look up or
 * copy, never while signing). NULL when out of memory. Free with
 * gmca_ocsp_cache_free (NULL is fine).
 */
struct gmca_ocsp_cache *gmca_ocsp_cache_new(size_t nslots);
void gmca_ocsp_cache_free(struct gmca_ocsp_cache *c);

struct gmca_ocsp_cache_stats {
        uint64_t hits;    /* answered from the cache */
        uint64_t misses;  /* no entry for the CertID: signed and stored */
        uint64_t stale;   /* entry past nextUpdate - margin: re-signed */
        uint64_t changed; /* the store state differs from the entry's: re-signed */
        uint64_t entries; /* slots in use */
};
void gmca_ocsp_cache_stats(struct gmca_ocsp_cache *c, struct gmca_ocsp_cache_stats *st);

struct gmca_ocsp_opts {
        int64_t now;      /* thisUpdate and producedAt; 0: the clock */
        int64_t validity; /* nextUpdate - thisUpdate in seconds; 0: the default */
        /* borrowed; NULL: every request is signed on demand */
        struct gmca_ocsp_cache *cache;
        /* an entry is re-signed from nextUpdate - margin on; 0: validity / 4 */
        int64_t margin;
};

/* What gmca_ocsp_respond answered, for the HTTP layer and the log. */
struct gmca_ocsp_answer {
        int status;    /* OCSP_RESPONSE_STATUS_* */
        int has_nonce; /* the response echoes a nonce: not cacheable */
        int cached;    /* served from the cache of pre-signed responses */
        /* SM3 of the response (an ETag), set for cacheable answers (one CertID, no nonce) */
        int has_digest;
        uint8_t digest[GMCA_SM3_LEN];
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

/*
 * Re-sign, ahead of time, the entries of c that will reach nextUpdate -
 * margin within the next ahead seconds, so that requests keep hitting the
 * cache (for a background thread with its own store connection). Returns
 * the number re-signed (>= 0) or a negative code, e set.
 */
int gmca_ocsp_cache_refresh(struct gmca_ocsp_cache *c, struct gmca_store *s,
                            const struct gmca_ocsp_responder *rs, size_t n,
                            const struct gmca_ocsp_opts *o, int64_t ahead,
                            struct gmca_error *e) GMCA_WUR;

#endif
