/*
 * validate: certificate path validation for relying parties (CPS §3.5.2
 * steps 1-4, RFC 5280 §6 in the parts GM/T 0015 certificates use). Builds
 * the chain from a target certificate to a configured trust anchor through
 * the given intermediates (and, when the network is allowed, the issuers'
 * caIssuers URLs), matching issuers by name AND key identifier so that
 * same-DN roots after a key rollover are told apart; checks every SM2
 * signature with the distinguishing ID itself (OpenSSL 3.0 cannot,
 * GMT-REFERENCE §3.3), validity at the validation time, basicConstraints,
 * pathLen, keyUsage against the intended use and critical extensions; and
 * revocation by CRL (local, cached, or fetched from the CDP; a delta CRL
 * given or fetched from freshestCRL is combined with the complete CRL,
 * RFC 5280 §5.2.4, and a delta that cannot be had leaves the complete
 * CRL's answer, current until its nextUpdate) or OCSP
 * (RFC 6960 with an SM3 CertID and a nonce) under a policy. A failure
 * names a reason code, the certificate (depth 0 = target) and a one-line
 * cause.
 */
#ifndef GMCA_LIB_VALIDATE_H
#define GMCA_LIB_VALIDATE_H

#include <stddef.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "err.h"
#include "x509.h"

#define GMCA_VFY_DEPTH_MAX 8           /* certificates in a path, anchor included */
#define GMCA_VFY_CANDIDATES_MAX 64     /* anchors + intermediates + fetched issuers */
#define GMCA_VFY_PATHS_MAX 32          /* complete candidate paths tried */
#define GMCA_VFY_FETCH_MAX (16u << 20) /* bytes of one CRL download */
#define GMCA_VFY_OCSP_MAX 65536        /* bytes of one OCSP response */
#define GMCA_VFY_SKEW 300              /* seconds of clock skew allowed for CRL/OCSP times */
#define GMCA_VFY_DIR_MAX 32            /* candidate files taken from a chain directory */

enum gmca_vfy_use {
        GMCA_VFY_USE_ANY = 0,
        GMCA_VFY_USE_SIGNATURE,  /* digitalSignature or nonRepudiation */
        GMCA_VFY_USE_ENCRYPTION, /* keyEncipherment, dataEncipherment or keyAgreement */
};

/*
 * Revocation policy. "Unavailable" means no status could be had (no CDP or
 * OCSP URL, network refused or failed, a stale CRL, OCSP "unknown"); a CRL
 * or response that is present but wrong (signature, issuer, nonce) is a
 * failure under every policy except NONE.
 */
enum gmca_vfy_revocation {
        GMCA_VFY_REV_NONE = 0,    /* no revocation check */
        GMCA_VFY_REV_CRL,         /* CRL only; unavailable fails */
        GMCA_VFY_REV_OCSP,        /* OCSP only; unavailable fails */
        GMCA_VFY_REV_PREFER_OCSP, /* OCSP, then CRL; both unavailable fails */
        GMCA_VFY_REV_SOFT_FAIL,   /* OCSP, then CRL; both unavailable passes */
};

enum gmca_vfy_reason {
        GMCA_VFY_OK = 0,
        GMCA_VFY_NO_ISSUER,          /* no path to a trust anchor */
        GMCA_VFY_BAD_SIGNATURE,      /* an SM2 signature in the path does not verify */
        GMCA_VFY_NOT_YET_VALID,      /* notBefore after the validation time */
        GMCA_VFY_EXPIRED,            /* notAfter before the validation time */
        GMCA_VFY_NOT_CA,             /* an issuer without basicConstraints cA */
        GMCA_VFY_PATH_LEN,           /* pathLenConstraint exceeded */
        GMCA_VFY_ISSUER_KEY_USAGE,   /* an issuer without keyCertSign */
        GMCA_VFY_WRONG_USE,          /* target's keyUsage does not allow the intended use */
        GMCA_VFY_CRITICAL_EXTENSION, /* an unknown critical extension */
        GMCA_VFY_MALFORMED,          /* a certificate extension that does not parse */
        GMCA_VFY_REVOKED,
        GMCA_VFY_REVOCATION_UNAVAILABLE, /* no status, and the policy requires one */
        GMCA_VFY_CRL_INVALID,            /* CRL signature, issuer or extensions wrong */
        GMCA_VFY_OCSP_INVALID,           /* OCSP response signature, signer, nonce wrong */
        GMCA_VFY_REASON_COUNT
};

/* Short stable name of a reason ("expired", "revoked", ...). */
const char *gmca_vfy_reason_name(int reason);

/*
 * What to validate against. Every pointer is borrowed for the duration of
 * the call. Certificates and CRLs must already be parsed strictly
 * (gmca_cert_parse, gmca_crl_parse).
 */
struct gmca_vfy_opts {
        X509 *const *anchors; /* trust anchors */
        size_t nanchors;
        X509 *const *intermediates; /* untrusted candidates: link certificates go here too */
        size_t nintermediates;
        /*
         * A directory of more untrusted candidates, read at each validation:
         * every regular *.pem, *.crt and *.der file in it (one certificate
         * each, parsed strictly; one that does not parse fails the call), at
         * most GMCA_VFY_DIR_MAX of them, each at most GMCA_CERT_MAX bytes.
         * NULL: none.
         */
        const char *chain_dir;
        X509_CRL *const *crls; /* CRLs the caller already has; looked at before the CDP */
        size_t ncrls;
        const char *cache_dir; /* CRL cache (files kept until nextUpdate); NULL: none */
        enum gmca_vfy_use use;
        enum gmca_vfy_revocation revocation;
        /*
         * Validation time; 0: now (gmca_now). It also governs revocation
         * (RFC 5280 §6.1: the status at the validation time): a CRL or OCSP
         * response is accepted when its nextUpdate is not before `at` (so a
         * CRL current at a past `at` still serves, and a validation in the
         * future needs data current then), and a revocation dated after
         * `at` does not count. Data signed later than the wall clock is
         * refused whatever `at` says.
         */
        time_t at;
        const char *sm2_id;      /* NULL: default ID */
        int network;             /* allow HTTP: CDP, OCSP, caIssuers */
        long timeout;            /* seconds per HTTP transfer; 0: 10 */
        const char *ocsp_url;    /* NULL: the certificate's AIA OCSP URL */
        int ocsp_nonce_optional; /* accept a response without a nonce (RFC 5019 responders) */
};

struct gmca_vfy_result {
        enum gmca_vfy_reason reason;
        int depth;        /* the certificate the reason is about; -1: none */
        size_t chain_len; /* certificates in the validated path, anchor included */
        char chain[GMCA_VFY_DEPTH_MAX][GMCA_DN_MAX]; /* subjects, target first (on failure:
                                                        the path the reason is about) */
        char revocation[16]; /* how the target's status was established: "crl", "ocsp",
                                "none", "unavailable" (soft-fail) */
        char msg[GMCA_ERROR_MSG_MAX];
};

/*
 * Validate cert under opts. Returns 0 when the path is valid, GMCA_ERR_VERIFY
 * when it is not (res->reason, res->depth, res->msg say why; e gets the same
 * line), or another negative code when validation could not be carried out
 * (bad options, memory). res is always filled.
 */
int gmca_validate(X509 *cert, const struct gmca_vfy_opts *opts, struct gmca_vfy_result *res,
                  struct gmca_error *e) GMCA_WUR;

/*
 * Parse a DER OCSP response strictly: at most GMCA_VFY_OCSP_MAX bytes, no
 * trailing bytes, DER throughout (the BasicOCSPResponse inside included).
 * Caller frees with OCSP_RESPONSE_free; NULL with e set on failure.
 */
OCSP_RESPONSE *gmca_ocsp_response_parse(const uint8_t *buf, size_t len, struct gmca_error *e);

#endif
