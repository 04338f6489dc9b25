/*
 * tsa: RFC 3161 time-stamping with SM2. Owns TimeStampReq (build and strict
 * parse), the answer of a time-stamping authority (TSTInfo inside an RFC
 * 5652 SignedData signed with SM2-with-SM3 and the GM/T 0009 ID, with the
 * RFC 5816 signingCertificateV2 attribute, wrapped in a TimeStampResp), and
 * the verification of such a response. OpenSSL 3.0's TS module cannot sign
 * with SM2, so the token is assembled here from libcrypto ASN.1 templates;
 * TimeStampReq and TSTInfo use libcrypto's own TS encoders. The
 * `POST /tsa` endpoint is gmca_tsa_reply on the request body.
 */
#ifndef GMCA_TSA_H
#define GMCA_TSA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define GMCA_TSA_REQ_MAX 16384       /* bytes of a TimeStampReq */
#define GMCA_TSA_RESP_MAX (1u << 20) /* bytes of a TimeStampResp */
#define GMCA_TSA_NONCE_MAX 32        /* bytes of a nonce (positive INTEGER) */
#define GMCA_TSA_DIGEST_MAX 64       /* bytes of a message imprint */
#define GMCA_TSA_OID_MAX 128         /* dotted text of a policy OID */
#define GMCA_TSA_CERTS_MAX 16        /* certificates carried in a token */
#define GMCA_TSA_ATTRS_MAX 16        /* signed attributes of the SignerInfo */
/* TSA policy when none is configured: anyPolicy is meaningless here, so an
 * OID under the gmca arc; a deployment sets its CPS's own policy. */
#define GMCA_TSA_POLICY_DEFAULT "1.2.156.10260.4.1.100.1"

/* PKIFailureInfo bits (RFC 3161 §2.4.2) */
enum gmca_tsa_fail {
        GMCA_TSA_FAIL_BAD_ALG = 0,
        GMCA_TSA_FAIL_BAD_REQUEST = 2,
        GMCA_TSA_FAIL_BAD_DATA_FORMAT = 5,
        GMCA_TSA_FAIL_TIME_NOT_AVAILABLE = 14,
        GMCA_TSA_FAIL_UNACCEPTED_POLICY = 15,
        GMCA_TSA_FAIL_UNACCEPTED_EXTENSION = 16,
        GMCA_TSA_FAIL_SYSTEM_FAILURE = 25,
};

/* A TimeStampReq, decoded. hash_nid is NID_sm3 or NID_sha256. */
struct gmca_tsa_req {
        int hash_nid;
        uint8_t digest[GMCA_TSA_DIGEST_MAX];
        size_t digest_len;
        char policy[GMCA_TSA_OID_MAX]; /* "" when absent */
        uint8_t nonce[GMCA_TSA_NONCE_MAX];
        size_t nonce_len; /* 0: no nonce; else big-endian magnitude, no leading zero */
        int cert_req;
};

/*
 * DER TimeStampReq of r (version 1). *der allocated with OPENSSL_malloc,
 * caller frees with OPENSSL_free.
 */
int gmca_tsa_req_build(const struct gmca_tsa_req *r, uint8_t **der, size_t *len,
                       struct gmca_error *e) GMCA_WUR;

/*
 * Fill r with a fresh request for digest (of the algorithm hash_nid): a
 * random 64-bit nonce unless no_nonce.
 */
int gmca_tsa_req_init(struct gmca_tsa_req *r, int hash_nid, const uint8_t *digest, size_t len,
                      int no_nonce, int cert_req, struct gmca_error *e) GMCA_WUR;

/*
 * Parse a DER TimeStampReq strictly (exact buffer, DER re-encoding, caps).
 * On refusal returns GMCA_ERR_INVALID (GMCA_ERR_LIMIT over the cap) and,
 * when fail is not NULL, the PKIFailureInfo bit a TSA answers with.
 */
int gmca_tsa_req_parse(const uint8_t *der, size_t len, struct gmca_tsa_req *r, int *fail,
                       struct gmca_error *e) GMCA_WUR;

/* How the TSA answers. */
struct gmca_tsa_opts {
        const char *policy; /* TSA policy OID; NULL: GMCA_TSA_POLICY_DEFAULT */
        const char *sm2_id; /* NULL: 1234567812345678 */
        int accuracy_ms;    /* 0: no accuracy field; else 1..999 */
        int include_tsa;    /* tsa [0] GeneralName (directoryName of the certificate) */
        int64_t now_us;     /* 0: the clock (gmca_now_us) */
        int signing_time;   /* add the signingTime attribute */
};

/*
 * The TimeStampResp for the request req (DER, any bytes from outside):
 * granted with a token signed by key under cert, or a rejection with the
 * failInfo of gmca_tsa_req_parse. *status is the PKIStatus sent (0 or 2).
 * Returns an error only when no response can be made (the TSA certificate
 * or key is unusable, out of memory); *resp allocated with OPENSSL_malloc.
 */
int gmca_tsa_reply(X509 *cert, EVP_PKEY *key, const struct gmca_tsa_opts *o, const uint8_t *req,
                   size_t reqlen, uint8_t **resp, size_t *resplen, int *status,
                   struct gmca_error *e) GMCA_WUR;

/*
 * 0 if cert may sign time-stamps: SM2 key, extKeyUsage present, critical and
 * timeStamping only (RFC 3161 §2.3), keyUsage (if present) digitalSignature
 * or nonRepudiation.
 */
int gmca_tsa_cert_check(X509 *cert, struct gmca_error *e) GMCA_WUR;

/* What a response must match. Every pointer is optional. */
struct gmca_tsa_expect {
        const uint8_t *data; /* the time-stamped data, hashed with the imprint's algorithm */
        size_t data_len;
        int has_data;
        const uint8_t *digest; /* or its digest */
        size_t digest_len;
        const struct gmca_tsa_req *req; /* the request: imprint, nonce, policy, certReq */
        const uint8_t *nonce;           /* or only the nonce sent (big-endian magnitude) */
        size_t nonce_len;
        X509 *tsa_cert;     /* trust this TSA certificate */
        X509 *ca_cert;      /* or trust a TSA certificate issued by this CA */
        const char *sm2_id; /* NULL: 1234567812345678 */
};

struct gmca_tsa_info {
        time_t gen_time;
        char gen_time_text[40]; /* ISO 8601, with the fraction sent */
        char serial[2 * GMCA_TSA_NONCE_MAX + 1];
        char policy[GMCA_TSA_OID_MAX];
        char tsa_subject[1024];
        char hash[16]; /* "sm3" or "sha256" */
        char digest[2 * GMCA_TSA_DIGEST_MAX + 1];
        char nonce[2 * GMCA_TSA_NONCE_MAX + 1]; /* "" when none */
        int accuracy_ms;                        /* -1 when absent */
};

/*
 * Verify a DER TimeStampResp: granted status, strict token, the SM2
 * signature over the signed attributes with the ID under the TSA
 * certificate (x->tsa_cert, or the one the token carries issued by
 * x->ca_cert; one of the two is required), contentType, messageDigest and
 * ESSCertIDv2 matching, the imprint matching the data or digest, the
 * request's nonce and policy. info may be NULL.
 */
int gmca_tsa_verify(const uint8_t *resp, size_t len, const struct gmca_tsa_expect *x,
                    struct gmca_tsa_info *info, struct gmca_error *e) GMCA_WUR;

#endif
