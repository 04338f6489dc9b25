/*
 * device: the crypto-device interface, shaped like GM/T 0018 SDF (see
 * GMT-REFERENCE.md §4.1 and sdf.h). The CA's private keys live behind it and
 * never leave it in clear. Two implementations:
 *   - the software device shipped with gmca (softsdf.c): key pairs at
 *     indexes in an encrypted key store directory, each private key sealed
 *     with SM4-GCM under a key derived from the key's access password;
 *   - a vendor device: any shared library exporting the standard SDF
 *     function names, loaded with dlopen. The software device is also built
 *     as such a library (libgmca-softsdf.so) so that path is tested.
 *
 * gmca uses these SDF functions: SDF_OpenDevice, SDF_CloseDevice,
 * SDF_OpenSession, SDF_CloseSession, SDF_GetDeviceInfo, SDF_GenerateRandom,
 * SDF_GetPrivateKeyAccessRight, SDF_ReleasePrivateKeyAccessRight,
 * SDF_ExportSignPublicKey_ECC, SDF_InternalSign_ECC, SDF_ExternalVerify_ECC,
 * SDF_HashInit, SDF_HashUpdate, SDF_HashFinal. Key management that GM/T
 * 0018-2012 leaves to the vendor's own tools is reached through optional
 * extensions (SDFX_*, see sdf.h); a library without them can still sign
 * with keys its vendor tool created, and gmca says which operation needs
 * the vendor's tool.
 *
 * The access password of a key (SDF_GetPrivateKeyAccessRight) is, for CA
 * keys, the master key the custodians' shares recombine to (custody.h).
 */
#ifndef GMCA_DEVICE_H
#define GMCA_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "err.h"
#include "signer.h"

#define GMCA_DEVICE_MAX_INDEX 1024 /* key indexes are 1..GMCA_DEVICE_MAX_INDEX */
#define GMCA_DEVICE_PIN_MAX 256

struct gmca_device;

struct gmca_device_conf {
        const char *library; /* NULL or "": the built-in software device */
        const char *config;  /* passed to SDFX_Configure when the library has it; for
                                the software device: its key store directory */
};

/* SDF_OpenDevice + SDF_OpenSession (+ SDFX_Configure first, if present). */
struct gmca_device *gmca_device_open(const struct gmca_device_conf *conf, struct gmca_error *e);
/* Releases every access right, closes session and device, dlcloses. NULL ok. */
void gmca_device_close(struct gmca_device *d);

/* "issuer device serial" from SDF_GetDeviceInfo, for audit records. */
const char *gmca_device_description(const struct gmca_device *d);

/* 1 if the device can do the optional operation (e.g. "SDFX_GenerateKeyPair_ECC"). */
int gmca_device_has(const struct gmca_device *d, const char *sdfx_function);

/*
 * Generate an SM2 signing key pair inside the device at index, protected by
 * pin (SDFX_GenerateKeyPair_ECC). GMCA_ERR_EXISTS if the index is taken;
 * GMCA_ERR_STATE with "use the vendor's key management tool" if the
 * library lacks the extension.
 */
int gmca_device_generate_key(struct gmca_device *d, unsigned index, const uint8_t *pin,
                             size_t pinlen, struct gmca_error *e) GMCA_WUR;

/* SDF_ExportSignPublicKey_ECC as an EVP_PKEY (caller frees). NULL if none there. */
EVP_PKEY *gmca_device_public_key(struct gmca_device *d, unsigned index, struct gmca_error *e);

/* SDF_GetPrivateKeyAccessRight: wrong pin is GMCA_ERR_AUTH, no key GMCA_ERR_NOTFOUND. */
int gmca_device_unlock(struct gmca_device *d, unsigned index, const uint8_t *pin, size_t pinlen,
                       struct gmca_error *e) GMCA_WUR;
/* SDF_ReleasePrivateKeyAccessRight. */
void gmca_device_lock(struct gmca_device *d, unsigned index);

/*
 * SDF_InternalSign_ECC over the 32-byte e = SM3(Z || M) with the key at
 * index (which must be unlocked: GMCA_ERR_AUTH otherwise). sig receives the
 * DER SM2Signature.
 */
int gmca_device_sign_digest(struct gmca_device *d, unsigned index, const uint8_t dgst[32],
                            uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen,
                            struct gmca_error *e) GMCA_WUR;

/* SDF_ExternalVerify_ECC: 0 if sig (DER) is pub's signature of dgst; GMCA_ERR_VERIFY if not. */
int gmca_device_verify_digest(struct gmca_device *d, EVP_PKEY *pub, const uint8_t dgst[32],
                              const uint8_t *sig, size_t siglen, struct gmca_error *e) GMCA_WUR;

int gmca_device_random(struct gmca_device *d, uint8_t *buf, size_t len,
                       struct gmca_error *e) GMCA_WUR;

/* SDF_HashInit(SGD_SM3, pub, id)/Update/Final: SM3(Z || msg) when pub is given, else SM3(msg). */
int gmca_device_sm3(struct gmca_device *d, EVP_PKEY *pub, const char *id, const uint8_t *msg,
                    size_t len, uint8_t out[32], struct gmca_error *e) GMCA_WUR;

/* SDFX_ChangeKeyPIN: re-protect the key at index under newpin (old pin needed). */
int gmca_device_change_pin(struct gmca_device *d, unsigned index, const uint8_t *oldpin,
                           size_t oldlen, const uint8_t *newpin, size_t newlen,
                           struct gmca_error *e) GMCA_WUR;

/* SDFX_DestroyKeyPair_ECC: erase the key at index; the pin proves authority. */
int gmca_device_destroy_key(struct gmca_device *d, unsigned index, const uint8_t *pin,
                            size_t pinlen, struct gmca_error *e) GMCA_WUR;

/*
 * SDFX_ExportKeyBlob / SDFX_ImportKeyBlob: the key at index as the device's
 * sealed blob (still encrypted under the key's pin; never clear), and back
 * into an empty index, for backup and transfer between devices (§7.1.2.5).
 * *blob is malloc'd; caller frees.
 */
int gmca_device_export_blob(struct gmca_device *d, unsigned index, uint8_t **blob, size_t *len,
                            struct gmca_error *e) GMCA_WUR;
int gmca_device_import_blob(struct gmca_device *d, unsigned index, const uint8_t *blob, size_t len,
                            struct gmca_error *e) GMCA_WUR;

/*
 * A signer for the key at index: computes Z once for (pub, id), then for
 * each TBS e = SM3(Z || tbs) and SDF_InternalSign_ECC. pub and d are
 * borrowed and must outlive the signer.
 */
struct gmca_device_signer {
        struct gmca_signer base;
        struct gmca_device *dev;
        unsigned index;
        uint8_t z[32];
};
int gmca_device_signer_init(struct gmca_device_signer *s, struct gmca_device *d, unsigned index,
                            EVP_PKEY *pub, const char *id, struct gmca_error *e) GMCA_WUR;

#endif
