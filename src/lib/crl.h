/*
 * crl: building and checking CRLs of CPS §3.9.10 — version 2,
 * SM2-with-SM3 (signed with the SM2 ID), issuer, thisUpdate, nextUpdate,
 * entries with serial and revocation date and the entry extensions
 * reasonCode and invalidityDate, CRL extensions authorityKeyIdentifier and
 * cRLNumber — and delta CRLs (RFC 5280 §5.2.4: deltaCRLIndicator), which
 * share the cRLNumber sequence of the complete CRLs that point to them
 * with freshestCRL (§5.2.6). Verification is done over the TBS bytes with the ID, since
 * OpenSSL 3.0's X509_CRL_verify cannot take one.
 */
#ifndef GMCA_CRL_H
#define GMCA_CRL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "err.h"
#include "x509.h"

#define GMCA_CRL_MAX (64u << 20) /* bytes of a CRL we accept to parse */

struct gmca_crl_entry {
        uint8_t serial[20];
        size_t serial_len;
        time_t revoked_at;
        int reason;        /* CRL_REASON_* (RFC 5280 §5.3.1), -1: omit */
        time_t invalidity; /* 0: omit */
};

struct gmca_crl_params {
        const X509 *issuer;               /* the CA certificate (issuer name and SKI) */
        EVP_PKEY *key;                    /* the CA private key; NULL when signer is set */
        const struct gmca_signer *signer; /* NULL: sign with key in this process */
        const char *sm2_id;               /* NULL: default */
        int64_t number;                   /* cRLNumber */
        /* > 0: a delta CRL (RFC 5280 §5.2.4) against complete CRL base_number, with a
         * critical deltaCRLIndicator; the entries are what was revoked since that CRL. */
        int64_t base_number;
        /* a complete CRL's freshestCRL (RFC 5280 §5.2.6): the delta CRL's URL; NULL: none */
        const char *freshest_url;
        time_t this_update;
        time_t next_update;
        const struct gmca_crl_entry *entries;
        size_t nentries;
};

/*
 * Build and sign a CRL, written directly as DER (a million entries in well
 * under a second, in one buffer the size of the CRL). *der is freed with
 * OPENSSL_free. GMCA_ERR_LIMIT when the CRL would exceed GMCA_CRL_MAX.
 */
int gmca_crl_build_der(const struct gmca_crl_params *p, uint8_t **der, size_t *der_len,
                       struct gmca_error *e) GMCA_WUR;

/* The same, decoded: caller frees with X509_CRL_free. */
X509_CRL *gmca_crl_build(const struct gmca_crl_params *p, struct gmca_error *e);

/* 0 when crl's signature verifies with issuer_key under id (NULL: default). */
int gmca_crl_verify(X509_CRL *crl, EVP_PKEY *issuer_key, const char *id,
                    struct gmca_error *e) GMCA_WUR;

/* Parse DER or one PEM block strictly (no trailing bytes). */
X509_CRL *gmca_crl_parse(const uint8_t *buf, size_t len, struct gmca_error *e);

/* Reason names ("keyCompromise", ...) to codes and back; -1 if unknown. */
int gmca_crl_reason_from_name(const char *name);
const char *gmca_crl_reason_name(int reason);

#endif
