/*
 * signer: how a certificate, CRL or OCSP response gets its SM2 signature
 * when the private key is not an EVP_PKEY in this process — it sits in a
 * crypto device (device.h) or in the CA engine process (engine.h). The
 * caller hands over the DER TBS bytes; the signer returns the DER
 * SM2Signature (ECDSA-Sig-Value) over them, computed with the key's SM2
 * distinguishing ID (Z prepended, GM/T 0009 §5.3). x509.c and crl.c put
 * the signature in place.
 */
#ifndef GMCA_SIGNER_H
#define GMCA_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define GMCA_SM2_SIG_MAX 80 /* DER SEQUENCE of two INTEGERs of up to 33 bytes */

struct gmca_signer {
        /* Sign tbs (DER). On success *siglen bytes of DER SM2Signature in sig. */
        int (*sign)(void *arg, const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX],
                    size_t *siglen, struct gmca_error *e);
        void *arg;
};

/* A signer over an in-process EVP_PKEY (tests, operator keys). */
struct gmca_pkey_signer {
        struct gmca_signer base;
        EVP_PKEY *key;
        char id[65];
};
int gmca_pkey_signer_init(struct gmca_pkey_signer *s, EVP_PKEY *key, const char *id,
                          struct gmca_error *e) GMCA_WUR;

/*
 * Set the signature algorithm (SM2-with-SM3, parameters absent, in the TBS
 * and outside it), encode the TBS, have s sign it and put the signature in
 * place. The object is then complete; i2d gives the signed DER.
 */
int gmca_x509_sign(X509 *x, const struct gmca_signer *s, struct gmca_error *e) GMCA_WUR;
int gmca_x509_crl_sign(X509_CRL *crl, const struct gmca_signer *s, struct gmca_error *e) GMCA_WUR;

#endif
