/*
 * x509: strict PKCS#10 intake, GM/T 0015 certificate building, subject DN
 * parsing and the GM/T 0015 private extensions (identity number, IC
 * registration number, organisation code, taxation number, unified social
 * credit code). All SM2 signatures made or checked here carry an explicit
 * distinguishing ID.
 */
#ifndef GMCA_X509_H
#define GMCA_X509_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "err.h"
#include "signer.h"

#define GMCA_CSR_MAX 16384  /* bytes of DER or PEM accepted for a CSR */
#define GMCA_CERT_MAX 65536 /* bytes of DER or PEM accepted for a certificate */
#define GMCA_DN_MAX 1024    /* bytes of a textual subject DN */
#define GMCA_DN_RDN_MAX 16  /* attributes in a DN */
#define GMCA_ATTR_MAX 256   /* bytes of one DN attribute value */
#define GMCA_SERIAL_LEN 16  /* 128-bit serial numbers */
#define GMCA_SAN_MAX 16     /* entries of each subjectAltName kind */

/*
 * GM/T 0015 private extensions (GMT-REFERENCE.md §1.2). The 2012 OIDs are
 * what deployed relying parties read; the USCC also has the 2023 OID.
 */
enum gmca_pext {
        GMCA_PEXT_IDENTITY_CARD = 0, /* 1.2.156.10260.4.1.1 IdentifyCode [0] EXPLICIT */
        GMCA_PEXT_INSURANCE,         /* 1.2.156.10260.4.1.2 */
        GMCA_PEXT_IC_REGISTRATION,   /* 1.2.156.10260.4.1.3 */
        GMCA_PEXT_ORG_CODE,          /* 1.2.156.10260.4.1.4 */
        GMCA_PEXT_TAXATION,          /* 1.2.156.10260.4.1.5 */
        GMCA_PEXT_USCC,              /* 1.2.156.10260.4.4 (GM/T 0015-2023) */
        GMCA_PEXT_COUNT
};

/* Name used in JSON and profiles ("identity_card_number", ...), and OID. */
const char *gmca_pext_name(enum gmca_pext p);
const char *gmca_pext_oid(enum gmca_pext p);
/* -1 if name is not a known private extension. */
int gmca_pext_from_name(const char *name);

/*
 * Subscriber details that do not come from the CSR: private extension
 * values and subjectAltName entries. Owned strings; free with
 * gmca_subject_info_free.
 */
struct gmca_subject_info {
        char *pext[GMCA_PEXT_COUNT];
        char *dns[GMCA_SAN_MAX];
        size_t ndns;
        char *ip[GMCA_SAN_MAX];
        size_t nip;
        char *email[GMCA_SAN_MAX];
        size_t nemail;
};

/*
 * Parse the subject-info JSON ({"identity_card_number": "...",
 * "san": {"dns": [...], "ip": [...], "email": [...]}}), at most
 * GMCA_CERT_MAX bytes, depth and counts capped. Unknown keys are an error.
 * Values are checked: identity card numbers (GB 11643 check digit), unified
 * social credit codes (GB 32100 check character), organisation codes
 * (GB 11714 check character), DNS names, IP addresses, e-mail addresses.
 * NULL on failure.
 */
struct gmca_subject_info *gmca_subject_info_parse(const char *json, size_t len,
                                                  struct gmca_error *e);
void gmca_subject_info_free(struct gmca_subject_info *si);

/*
 * Parse a textual DN, either "C=CN, O=Org, CN=Name" (RFC 4514 order as
 * written, with \\, escapes) or "/C=CN/O=Org/CN=Name". Attributes: C, ST (or S),
 * L, O, OU, CN, E (emailAddress), serialNumber. C must be two letters and
 * is PrintableString; all others are UTF8String (Chinese text allowed).
 * Values must be valid UTF-8 without control characters. NULL on failure.
 */
X509_NAME *gmca_dn_parse(const char *text, struct gmca_error *e);

/* RFC 2253-style UTF-8 one-line DN into buf; returns 0 or an error. */
int gmca_dn_format(const X509_NAME *name, char *buf, size_t len, struct gmca_error *e) GMCA_WUR;

/*
 * Parse a PKCS#10 request strictly: DER, or exactly one PEM
 * "CERTIFICATE REQUEST" block; at most GMCA_CSR_MAX bytes; no trailing
 * bytes after the DER; version 1 (value 0); signature algorithm
 * SM2-with-SM3 (1.2.156.10197.1.501), parameters absent or NULL; an SM2
 * public key on the SM2 curve; the proof of possession (CPS §2.2.1) verified
 * with the ID sm2_id (NULL: default). Caller frees with X509_REQ_free.
 */
X509_REQ *gmca_csr_parse(const uint8_t *buf, size_t len, const char *sm2_id, struct gmca_error *e);

/*
 * The DER bytes of an input that is DER or exactly one strict RFC 7468 PEM
 * block with one of labels (NULL-terminated): *der points into buf, or into
 * *owned, which the caller frees with OPENSSL_free. Empty input and input
 * over max bytes are refused; what names the object in messages.
 */
int gmca_der_input(const uint8_t *buf, size_t len, size_t max, const char *what,
                   const char *const *labels, uint8_t **owned, const uint8_t **der, size_t *derlen,
                   struct gmca_error *e) GMCA_WUR;

/*
 * 0 if name is DER. OpenSSL writes a parsed X509_NAME back from the bytes it
 * received, so re-encoding the whole object cannot tell; this rebuilds the
 * name entry by entry and compares.
 */
int gmca_name_is_der(const X509_NAME *name, const char *what, const char *field,
                     struct gmca_error *e) GMCA_WUR;

/* Parse one certificate (DER or one PEM block), strict as above, no signature check. */
X509 *gmca_cert_parse(const uint8_t *buf, size_t len, struct gmca_error *e);

/* Random positive 128-bit serial (top bit clear, first byte non-zero). */
int gmca_serial_random(uint8_t serial[GMCA_SERIAL_LEN], struct gmca_error *e) GMCA_WUR;

/* Upper-case hex of a certificate's serial into buf (>= 2*20+1 bytes). */
int gmca_serial_hex(const X509 *cert, char *buf, size_t len) GMCA_WUR;

/* What a certificate should contain. Pointers are borrowed. */
struct gmca_cert_template {
        const X509_NAME *subject;
        EVP_PKEY *pubkey;     /* the subject's SM2 public key */
        const X509 *issuer;   /* NULL: self-signed (root) */
        EVP_PKEY *issuer_key; /* signing key (the subject's own key when self-signed); with a
                                 signer, the issuer's public key is enough */
        const struct gmca_signer *signer; /* NULL: sign with issuer_key in this process */
        const char *sm2_id;               /* NULL: default ID */
        uint8_t serial[GMCA_SERIAL_LEN];
        time_t not_before;
        time_t not_after;
        int ca;             /* basicConstraints cA */
        int path_len;       /* -1: no pathLenConstraint */
        unsigned key_usage; /* X509v3_KU_* bits; 0: no extension */
        const int *eku;     /* NIDs for extKeyUsage */
        size_t neku;
        const char *crl_url;                  /* cRLDistributionPoints */
        const char *freshest_url;             /* freshestCRL: the delta CRL (RFC 5280 §4.2.1.15) */
        const char *ocsp_url;                 /* authorityInfoAccess OCSP */
        const char *ca_issuers_url;           /* authorityInfoAccess caIssuers */
        const char *policy_oid;               /* certificatePolicies */
        const char *cps_uri;                  /* CPS qualifier of the policy */
        const struct gmca_subject_info *info; /* SAN and private extensions, may be NULL */
        int ocsp_nocheck;                     /* id-pkix-ocsp-nocheck (OCSP responder certs) */
        int eku_critical;                     /* extKeyUsage critical (a TSA, RFC 3161 §2.3) */
        int skip_self_check;                  /* do not verify the fresh signature (see below) */
};

/*
 * Build and sign an X.509 v3 certificate following GM/T 0015:
 * SM2-with-SM3, basicConstraints (critical), keyUsage (critical), extKeyUsage,
 * SKI (SM3-free SHA-1 method of RFC 5280 §4.2.1.2 is replaced by the
 * leftmost 160 bits of SM3 over the public key), AKI (issuer's SKI),
 * CRL DP, AIA, certificatePolicies with CPS URI, subjectAltName and the
 * private extensions present in t->info. Unless t->skip_self_check is set,
 * the fresh signature is verified with the issuer's public key before the
 * certificate is returned, so that a signing fault never leaves the CA; the
 * check costs one SM2 verification, and a CA whose key sits in a device
 * that checks its own signatures may skip it. For end-entity certificates
 * the returned object carries the encoded key only (X509_get0_pubkey gives
 * NULL; use t->pubkey, or parse the DER). Caller frees with X509_free.
 */
X509 *gmca_cert_build(const struct gmca_cert_template *t, struct gmca_error *e);

/* 0 if cert's signature verifies under issuer's key with id (NULL: default). */
int gmca_cert_verify_signed_by(X509 *cert, EVP_PKEY *issuer_key, const char *id,
                               struct gmca_error *e) GMCA_WUR;

/*
 * Read a private extension value back from a certificate into a newly
 * allocated string (caller frees with OPENSSL_free). Accepts EXPLICIT or
 * IMPLICIT tagging and PrintableString or UTF8String. GMCA_ERR_NOTFOUND
 * when absent.
 */
int gmca_cert_get_pext(const X509 *cert, enum gmca_pext p, char **value,
                       struct gmca_error *e) GMCA_WUR;

/* SM3 fingerprint of the DER certificate, lower-case hex (65 bytes). */
int gmca_cert_fingerprint(const X509 *cert, char out[65], struct gmca_error *e) GMCA_WUR;

/*
 * Re-issuance under another CA after a compromise (CPS §6.10.3;
 * x509_reissue.c): what changes. Pointers are borrowed.
 */
struct gmca_reissue_template {
        const X509 *issuer;               /* the new CA's certificate */
        EVP_PKEY *issuer_key;             /* its public key */
        const struct gmca_signer *signer; /* its key */
        const char *sm2_id;               /* the ID it signs with (NULL: default) */
        uint8_t serial[GMCA_SERIAL_LEN];
        time_t not_before;
        time_t not_after;           /* at most the issuer's notAfter */
        const char *crl_url;        /* NULL: drop the old cRLDistributionPoints */
        const char *ocsp_url;       /* NULL: drop the old OCSP access */
        const char *ca_issuers_url; /* NULL: drop the old caIssuers access */
        int skip_self_check;        /* as in gmca_cert_template */
};

/*
 * A copy of the certificate old_der (DER, parsed strictly) — subject,
 * public key and every extension kept, in order and criticality — with a
 * new serial, t->issuer's subject as issuer name, validity not_before ..
 * not_after, authorityKeyIdentifier = the issuer's subjectKeyIdentifier,
 * and the cRLDistributionPoints and authorityInfoAccess locations (where
 * old has them) replaced by t's; signed by t->signer and, unless
 * skip_self_check, verified with t->issuer_key. Refused if the issuer is
 * not a CA that may sign it or would end first. Caller frees with X509_free;
 * NULL with e set on failure.
 */
X509 *gmca_cert_reissue(const uint8_t *old_der, size_t old_len,
                        const struct gmca_reissue_template *t, struct gmca_error *e);

#endif
