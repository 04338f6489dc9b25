/*
 * libgmca certificate validation for relying parties (CPS §3.5.2 steps
 * 1-4): is this certificate, now (or at a given time), good for this use
 * under these trust anchors? The validator builds the chain to a trust
 * anchor (through intermediates the application has, such as those that
 * came with a message or the link certificates of a CA key rollover, and
 * the issuers' caIssuers URLs), checks every SM2 signature with the
 * distinguishing ID, the validity periods, basic constraints, key usage
 * against the intended use, and revocation by CRL (fetched from the
 * certificate's distribution point and cached until its nextUpdate) or by
 * OCSP (signature, freshness and nonce checked) under a policy. A failure
 * comes back as a reason code, the certificate it is about, and one line.
 *
 * Standard C types only; see gmca.h for the conventions.
 */
#ifndef GMCA_VALIDATE_H
#define GMCA_VALIDATE_H

#include "gmca.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the certificate is to be used for (its keyUsage must allow it). */
enum gmca_validation_use {
        GMCA_USE_ANY = 0,
        GMCA_USE_SIGNATURE = 1,  /* digitalSignature or nonRepudiation */
        GMCA_USE_ENCRYPTION = 2, /* keyEncipherment, dataEncipherment or keyAgreement */
};

/*
 * How revocation is checked. "Unavailable" means no status could be had
 * (no URL, network off or failing, a stale CRL, OCSP "unknown"); a CRL or
 * OCSP response that is there but wrong (signature, issuer, nonce) fails
 * under every policy but NONE.
 */
enum gmca_revocation_policy {
        GMCA_REVOCATION_NONE = 0,        /* not checked (say why in your application) */
        GMCA_REVOCATION_CRL = 1,         /* CRL only; unavailable fails */
        GMCA_REVOCATION_OCSP = 2,        /* OCSP only; unavailable fails */
        GMCA_REVOCATION_PREFER_OCSP = 3, /* OCSP, then CRL; both unavailable fails (default) */
        GMCA_REVOCATION_SOFT_FAIL = 4,   /* OCSP, then CRL; both unavailable passes */
};

/* Why a certificate is not valid. */
enum gmca_validation_reason {
        GMCA_VALIDATION_OK = 0,
        GMCA_VALIDATION_NO_ISSUER = 1,     /* no chain to a trust anchor */
        GMCA_VALIDATION_BAD_SIGNATURE = 2, /* an SM2 signature in the chain does not verify */
        GMCA_VALIDATION_NOT_YET_VALID = 3,
        GMCA_VALIDATION_EXPIRED = 4,
        GMCA_VALIDATION_NOT_CA = 5,           /* an issuer is not a CA */
        GMCA_VALIDATION_PATH_LENGTH = 6,      /* pathLenConstraint exceeded */
        GMCA_VALIDATION_ISSUER_KEY_USAGE = 7, /* an issuer may not sign certificates */
        GMCA_VALIDATION_WRONG_USE = 8,        /* keyUsage does not allow the intended use */
        GMCA_VALIDATION_CRITICAL_EXTENSION = 9,
        GMCA_VALIDATION_MALFORMED = 10, /* an extension that does not parse */
        GMCA_VALIDATION_REVOKED = 11,
        GMCA_VALIDATION_REVOCATION_UNAVAILABLE = 12,
        GMCA_VALIDATION_CRL_INVALID = 13,  /* a CRL with a wrong signature, issuer, ... */
        GMCA_VALIDATION_OCSP_INVALID = 14, /* an OCSP response with a wrong signature, nonce, ... */
};

#define GMCA_VALIDATION_DEPTH_MAX 8   /* certificates in a chain, trust anchor included */
#define GMCA_VALIDATION_INPUTS_MAX 60 /* anchors plus intermediates */
#define GMCA_VALIDATION_CRLS_MAX 16
#define GMCA_VALIDATION_NAME_MAX 1024

struct gmca_validation_result {
        int reason; /* enum gmca_validation_reason */
        int depth;  /* the certificate the reason is about (0: the one validated); -1: none */
        size_t chain_length;
        /* Subjects of the chain, the validated certificate first and the anchor last
           (on failure: the chain the reason is about, as far as it got). */
        char chain[GMCA_VALIDATION_DEPTH_MAX][GMCA_VALIDATION_NAME_MAX];
        char revocation[16]; /* how the certificate's status was had: "crl", "ocsp",
                                "none" (policy NONE), "unavailable" (soft-fail) */
        char message[GMCA_STATUS_MESSAGE_MAX]; /* empty when valid */
};

/* A short stable name of a reason ("expired", "revoked", ...); never NULL. */
GMCA_EXPORT const char *gmca_validation_reason_name(int reason);

/* An opaque validator: trust anchors, intermediates, CRLs and settings. */
struct gmca_validator;

/*
 * A validator with no anchors, revocation GMCA_REVOCATION_PREFER_OCSP,
 * intended use GMCA_USE_ANY, validation at the current time, the default
 * SM2 ID 1234567812345678, network allowed with a 10-second timeout, no
 * CRL cache. Free with gmca_validator_free. NULL on failure.
 */
GMCA_EXPORT struct gmca_validator *gmca_validator_new(struct gmca_status *st);
GMCA_EXPORT void gmca_validator_free(struct gmca_validator *v);

/*
 * Add a trust anchor, an intermediate (untrusted) certificate or a CRL:
 * DER or one PEM block, parsed strictly as gmca_certificate_parse does
 * (CRLs: at most 16 MiB). The _file forms read a file. Copies are kept.
 */
GMCA_EXPORT int gmca_validator_add_anchor(struct gmca_validator *v, const void *data, size_t len,
                                          struct gmca_status *st) GMCA_API_WUR;
GMCA_EXPORT int gmca_validator_add_anchor_file(struct gmca_validator *v, const char *path,
                                               struct gmca_status *st) GMCA_API_WUR;
GMCA_EXPORT int gmca_validator_add_intermediate(struct gmca_validator *v, const void *data,
                                                size_t len, struct gmca_status *st) GMCA_API_WUR;
GMCA_EXPORT int gmca_validator_add_intermediate_file(struct gmca_validator *v, const char *path,
                                                     struct gmca_status *st) GMCA_API_WUR;
GMCA_EXPORT int gmca_validator_add_crl(struct gmca_validator *v, const void *data, size_t len,
                                       struct gmca_status *st) GMCA_API_WUR;
GMCA_EXPORT int gmca_validator_add_crl_file(struct gmca_validator *v, const char *path,
                                            struct gmca_status *st) GMCA_API_WUR;

/*
 * A directory of intermediate (untrusted) certificates, read again at each
 * validation: every regular *.pem, *.crt and *.der file in it, one
 * certificate per file, parsed strictly; at most 32 files, each at most
 * 64 KiB. A file that does not parse, or more files than that, makes
 * gmca_validate_certificate fail with GMCA_RC_INVALID or GMCA_RC_LIMIT
 * (not a verdict). NULL: none.
 */
GMCA_EXPORT int gmca_validator_set_chain_dir(struct gmca_validator *v, const char *dir,
                                             struct gmca_status *st) GMCA_API_WUR;

/* Settings; each returns GMCA_RC_INVALID for a value out of range. */
GMCA_EXPORT int gmca_validator_set_use(struct gmca_validator *v, int use) GMCA_API_WUR;
GMCA_EXPORT int gmca_validator_set_revocation(struct gmca_validator *v, int policy) GMCA_API_WUR;
/*
 * Validation time in seconds since 1970 UTC; 0: the current time. Revocation
 * follows it (RFC 5280 §6.1: the status at the validation time): a CRL or
 * OCSP response must be current at that time (its nextUpdate not before
 * it), so a CRL that was current then still serves for a past time, a
 * future time needs data current then, and a revocation dated after it does
 * not count. Data whose thisUpdate is after the real current time is
 * refused whatever the validation time.
 */
GMCA_EXPORT int gmca_validator_set_time(struct gmca_validator *v, int64_t when) GMCA_API_WUR;
/* Allow HTTP fetches (CDP, OCSP, caIssuers) and their timeout in seconds (1..300). */
GMCA_EXPORT int gmca_validator_set_network(struct gmca_validator *v, int allowed,
                                           long timeout_seconds) GMCA_API_WUR;
/* A directory where fetched CRLs are kept until their nextUpdate; NULL: none. */
GMCA_EXPORT int gmca_validator_set_crl_cache(struct gmca_validator *v, const char *dir,
                                             struct gmca_status *st) GMCA_API_WUR;
/* Ask this OCSP responder instead of the certificates' AIA URLs; NULL: the AIA URLs. */
GMCA_EXPORT int gmca_validator_set_ocsp_url(struct gmca_validator *v, const char *url,
                                            struct gmca_status *st) GMCA_API_WUR;
/* The SM2 distinguishing ID the CA signs with (1..64 bytes); NULL: 1234567812345678. */
GMCA_EXPORT int gmca_validator_set_sm2_id(struct gmca_validator *v, const char *id,
                                          struct gmca_status *st) GMCA_API_WUR;

/*
 * Validate cert. Returns 0 when it is valid; GMCA_RC_VERIFY when it is not
 * (res->reason, res->depth and res->message say why, st gets the message);
 * another negative code when validation could not be done (no anchor,
 * memory). res is always filled.
 */
GMCA_EXPORT int gmca_validate_certificate(struct gmca_validator *v,
                                          const struct gmca_certificate *cert,
                                          struct gmca_validation_result *res,
                                          struct gmca_status *st) GMCA_API_WUR;

#ifdef __cplusplus
}
#endif

#endif
