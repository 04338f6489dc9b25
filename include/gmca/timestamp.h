/*
 * libgmca time-stamps: RFC 3161 requests and the verification of a
 * time-stamping authority's response for relying parties (issue 8 item 4).
 * A request names the SM3 (or SHA-256) digest of the data, with a random
 * nonce and certReq unless told otherwise; a response is checked strictly:
 * granted status, the token's SM2 signature (ID 1234567812345678 unless
 * given) under the TSA certificate, whose extKeyUsage must be timeStamping
 * only and critical (RFC 3161 §2.3), the messageDigest and RFC 5816
 * ESSCertIDv2 attributes, the imprint against the data or digest, and the
 * request's nonce and policy. Conventions as in gmca.h: 0 or a negative
 * GMCA_RC_* with st filled; buffers are freed with gmca_buffer_free.
 */
#ifndef GMCA_TIMESTAMP_H
#define GMCA_TIMESTAMP_H

#include "gmca.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GMCA_TIMESTAMP_REQUEST_MAX 16384       /* bytes of a TimeStampReq */
#define GMCA_TIMESTAMP_RESPONSE_MAX (1u << 20) /* bytes of a TimeStampResp */
#define GMCA_TIMESTAMP_DIGEST_SIZE 32          /* SM3 and SHA-256 */

/* gmca_timestamp_request_options.flags */
#define GMCA_TIMESTAMP_NO_NONCE 0x1u /* leave the nonce out (replays become undetectable) */
#define GMCA_TIMESTAMP_CERT_REQ 0x2u /* ask the TSA to carry its certificate */
#define GMCA_TIMESTAMP_SHA256 0x4u   /* imprint with SHA-256 instead of SM3 */

struct gmca_timestamp_request_options {
        unsigned flags;     /* GMCA_TIMESTAMP_* */
        const char *policy; /* reqPolicy as a dotted OID; NULL: none */
};

/*
 * A DER TimeStampReq for data (len bytes). opts may be NULL (SM3, nonce,
 * no certReq). *out: free with gmca_buffer_free. Keep the request: its
 * nonce is what gmca_timestamp_verify checks the response against.
 */
GMCA_EXPORT int gmca_timestamp_request(const void *data, size_t len,
                                       const struct gmca_timestamp_request_options *opts,
                                       uint8_t **out, size_t *outlen,
                                       struct gmca_status *st) GMCA_API_WUR;

/* The same for a digest already computed (32 bytes, SM3 or with
 * GMCA_TIMESTAMP_SHA256 SHA-256). */
GMCA_EXPORT int gmca_timestamp_request_digest(const uint8_t digest[GMCA_TIMESTAMP_DIGEST_SIZE],
                                              const struct gmca_timestamp_request_options *opts,
                                              uint8_t **out, size_t *outlen,
                                              struct gmca_status *st) GMCA_API_WUR;

/* What to trust and to expect. Give the TSA certificate, or the CA that
 * issued it (then the token must carry it), or both. */
struct gmca_timestamp_verify_options {
        const void *tsa_certificate; /* PEM or DER; NULL: the one in the token */
        size_t tsa_certificate_len;
        const void *ca_certificate; /* PEM or DER issuer of the TSA certificate; may be NULL */
        size_t ca_certificate_len;
        const void *request; /* the DER TimeStampReq sent: imprint, nonce, policy; may be NULL */
        size_t request_len;
        const void *nonce; /* or only the nonce sent (big-endian, positive); may be NULL */
        size_t nonce_len;
        const char *id; /* SM2 ID; NULL: 1234567812345678 */
};

struct gmca_timestamp_info {
        int64_t gen_time;       /* seconds since 1970 UTC */
        char gen_time_text[40]; /* ISO 8601 with the fraction the TSA sent, "...Z" */
        char serial[65];        /* hex */
        char policy[128];       /* dotted OID */
        char tsa[1024];         /* subject DN of the TSA certificate */
        char hash[16];          /* "sm3" or "sha256" */
        char nonce[65];         /* hex; "" when none */
        int accuracy_ms;        /* -1 when absent */
};

/*
 * Verify the DER TimeStampResp resp as a time-stamp of data (len bytes).
 * On success fills info (which may be NULL). A refusal by the TSA, a
 * signature or certificate that does not hold, or a mismatch is
 * GMCA_RC_VERIFY with the cause in st; a malformed response GMCA_RC_INVALID.
 */
GMCA_EXPORT int gmca_timestamp_verify(const void *resp, size_t resplen, const void *data,
                                      size_t len, const struct gmca_timestamp_verify_options *opts,
                                      struct gmca_timestamp_info *info,
                                      struct gmca_status *st) GMCA_API_WUR;

/* The same against a digest (32 bytes, of the algorithm the token names). */
GMCA_EXPORT int gmca_timestamp_verify_digest(const void *resp, size_t resplen,
                                             const uint8_t digest[GMCA_TIMESTAMP_DIGEST_SIZE],
                                             const struct gmca_timestamp_verify_options *opts,
                                             struct gmca_timestamp_info *info,
                                             struct gmca_status *st) GMCA_API_WUR;

#ifdef __cplusplus
}
#endif

#endif
