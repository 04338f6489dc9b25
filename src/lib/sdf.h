/*
 * sdf: the part of GM/T 0018-2012 (SDF, the server crypto device interface)
 * that gmca uses, written from GMT-REFERENCE.md §4.1 in the 2012 GmSSL
 * style: handles are void *, every function returns int, 0 is SDR_OK. The
 * structure layouts are the ABI a vendor library is called with, so they
 * keep the standard's typedef names (an exception to gmca's no-typedef
 * rule: vendor code and documentation use these names). 256-bit values sit
 * right-aligned in the 64-byte arrays (32 zero bytes, then big-endian) with
 * bits = 256.
 *
 * Below the standard part: gmca's optional vendor extensions (SDFX_*), the
 * function table device.c calls either implementation through, and the
 * entry points of the built-in software device (softsdf.c).
 */
#ifndef GMCA_SDF_H
#define GMCA_SDF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "err.h"

/* ---- GM/T 0018-2012 ---- */

#define SDR_OK 0x0
#define SDR_BASE 0x01000000
#define SDR_UNKNOWERR (SDR_BASE + 0x00000001)
#define SDR_NOTSUPPORT (SDR_BASE + 0x00000002)
#define SDR_COMMFAIL (SDR_BASE + 0x00000003)
#define SDR_HARDFAIL (SDR_BASE + 0x00000004)
#define SDR_OPENDEVICE (SDR_BASE + 0x00000005)
#define SDR_OPENSESSION (SDR_BASE + 0x00000006)
#define SDR_PARDENY (SDR_BASE + 0x00000007) /* no access right to the private key */
#define SDR_KEYNOTEXIST (SDR_BASE + 0x00000008)
#define SDR_ALGNOTSUPPORT (SDR_BASE + 0x00000009)
#define SDR_ALGMODNOTSUPPORT (SDR_BASE + 0x0000000A)
#define SDR_PKOPERR (SDR_BASE + 0x0000000B)
#define SDR_SKOPERR (SDR_BASE + 0x0000000C)
#define SDR_SIGNERR (SDR_BASE + 0x0000000D)
#define SDR_VERIFYERR (SDR_BASE + 0x0000000E)
#define SDR_SYMOPERR (SDR_BASE + 0x0000000F)
#define SDR_STEPERR (SDR_BASE + 0x00000010)
#define SDR_FILESIZEERR (SDR_BASE + 0x00000011)
#define SDR_FILENOEXIST (SDR_BASE + 0x00000012)
#define SDR_FILEOFSERR (SDR_BASE + 0x00000013)
#define SDR_KEYTYPEERR (SDR_BASE + 0x00000014)
#define SDR_KEYERR (SDR_BASE + 0x00000015)
#define SDR_ENCDATAERR (SDR_BASE + 0x00000016)
#define SDR_RANDERR (SDR_BASE + 0x00000017)
#define SDR_PRKRERR (SDR_BASE + 0x00000018)
#define SDR_MACERR (SDR_BASE + 0x00000019)
#define SDR_FILEEXSITS (SDR_BASE + 0x0000001A) /* sic, the standard's spelling */
#define SDR_FILEWERR (SDR_BASE + 0x0000001B)
#define SDR_NOBUFFER (SDR_BASE + 0x0000001C)
#define SDR_INARGERR (SDR_BASE + 0x0000001D)
#define SDR_OUTARGERR (SDR_BASE + 0x0000001E)
#define SDR_USERIDERR (SDR_BASE + 0x0000001F) /* GM/T 0018-2023 */

/* GM/T 0006 algorithm identifiers. */
#define SGD_SM3 0x00000001
#define SGD_SM4_ECB 0x00000401
#define SGD_SM4_CBC 0x00000402
#define SGD_SM2 0x00020100
#define SGD_SM2_1 0x00020200 /* signature */
#define SGD_SM3_SM2 0x00020201

#define ECCref_MAX_BITS 512
#define ECCref_MAX_LEN ((ECCref_MAX_BITS + 7) / 8)

typedef struct DeviceInfo_st {
        unsigned char IssuerName[40];
        unsigned char DeviceName[16];
        unsigned char DeviceSerial[16];
        unsigned int DeviceVersion;
        unsigned int StandardVersion;
        unsigned int AsymAlgAbility[2];
        unsigned int SymAlgAbility;
        unsigned int HashAlgAbility;
        unsigned int BufferSize;
} DEVICEINFO;

typedef struct ECCrefPublicKey_st {
        unsigned int bits;
        unsigned char x[ECCref_MAX_LEN];
        unsigned char y[ECCref_MAX_LEN];
} ECCrefPublicKey;

typedef struct ECCrefPrivateKey_st {
        unsigned int bits;
        unsigned char K[ECCref_MAX_LEN];
} ECCrefPrivateKey;

typedef struct ECCSignature_st {
        unsigned char r[ECCref_MAX_LEN];
        unsigned char s[ECCref_MAX_LEN];
} ECCSignature;

int SDF_OpenDevice(void **phDeviceHandle);
int SDF_CloseDevice(void *hDeviceHandle);
int SDF_OpenSession(void *hDeviceHandle, void **phSessionHandle);
int SDF_CloseSession(void *hSessionHandle);
int SDF_GetDeviceInfo(void *hSessionHandle, DEVICEINFO *pstDeviceInfo);
int SDF_GenerateRandom(void *hSessionHandle, unsigned int uiLength, unsigned char *pucRandom);
int SDF_GetPrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex,
                                 unsigned char *pucPassword, unsigned int uiPwdLength);
int SDF_ReleasePrivateKeyAccessRight(void *hSessionHandle, unsigned int uiKeyIndex);
int SDF_ExportSignPublicKey_ECC(void *hSessionHandle, unsigned int uiKeyIndex,
                                ECCrefPublicKey *pucPublicKey);
/* pucData is the 32-byte e = SM3(Z || M) of GM/T 0009, not the message. */
int SDF_InternalSign_ECC(void *hSessionHandle, unsigned int uiISKIndex, unsigned char *pucData,
                         unsigned int uiDataLength, ECCSignature *pucSignature);
int SDF_ExternalVerify_ECC(void *hSessionHandle, unsigned int uiAlgID,
                           ECCrefPublicKey *pucPublicKey, unsigned char *pucDataInput,
                           unsigned int uiInputLength, ECCSignature *pucSignature);
/* With SGD_SM3, a public key and an ID, the device hashes Z first. */
int SDF_HashInit(void *hSessionHandle, unsigned int uiAlgID, ECCrefPublicKey *pucPublicKey,
                 unsigned char *pucID, unsigned int uiIDLength);
int SDF_HashUpdate(void *hSessionHandle, unsigned char *pucData, unsigned int uiDataLength);
int SDF_HashFinal(void *hSessionHandle, unsigned char *pucHash, unsigned int *puiHashLength);

/*
 * ---- gmca vendor extensions (optional) ----
 *
 * GM/T 0018-2012 leaves the creation and management of internal key pairs
 * to the vendor's tools. A library that exports these names lets gmca do
 * it; without them gmca still signs with keys the vendor tool made.
 *
 * SDFX_Configure: called once before SDF_OpenDevice when exported, with
 *   the device's configuration string (for the software device: its key
 *   store directory).
 * SDFX_GenerateKeyPair_ECC: a new SM2 signing key pair at an empty index,
 *   protected by the password (SDR_FILEEXSITS if the index is taken).
 * SDFX_ChangeKeyPIN: re-protect the key at index under a new password; the
 *   old one must be right (SDR_PARDENY).
 * SDFX_DestroyKeyPair_ECC: erase the key at index; the password proves
 *   authority.
 * SDFX_ExportKeyBlob: the key at index in the device's sealed form (still
 *   encrypted under its password). pucBlob NULL asks for the length in
 *   *puiBlobLength; a buffer shorter than that is SDR_NOBUFFER.
 * SDFX_ImportKeyBlob: a blob from SDFX_ExportKeyBlob into an empty index
 *   (the same index it was exported from).
 */
int SDFX_Configure(const char *config);
int SDFX_GenerateKeyPair_ECC(void *hSession, unsigned int uiKeyIndex, unsigned char *pucPassword,
                             unsigned int uiPwdLength);
int SDFX_ChangeKeyPIN(void *hSession, unsigned int uiKeyIndex, unsigned char *pucOld,
                      unsigned int uiOldLength, unsigned char *pucNew, unsigned int uiNewLength);
int SDFX_DestroyKeyPair_ECC(void *hSession, unsigned int uiKeyIndex, unsigned char *pucPassword,
                            unsigned int uiPwdLength);
int SDFX_ExportKeyBlob(void *hSession, unsigned int uiKeyIndex, unsigned char *pucBlob,
                       unsigned int *puiBlobLength);
int SDFX_ImportKeyBlob(void *hSession, unsigned int uiKeyIndex, const unsigned char *pucBlob,
                       unsigned int uiBlobLength);

/*
 * ---- gmca internals ----
 *
 * The functions of one SDF implementation. The 14 standard ones are
 * always set; an extension the library lacks is NULL.
 */
struct gmca_sdf_api {
        int (*OpenDevice)(void **phDeviceHandle);
        int (*CloseDevice)(void *hDeviceHandle);
        int (*OpenSession)(void *hDeviceHandle, void **phSessionHandle);
        int (*CloseSession)(void *hSessionHandle);
        int (*GetDeviceInfo)(void *hSessionHandle, DEVICEINFO *pstDeviceInfo);
        int (*GenerateRandom)(void *hSessionHandle, unsigned int uiLength,
                              unsigned char *pucRandom);
        int (*GetPrivateKeyAccessRight)(void *hSessionHandle, unsigned int uiKeyIndex,
                                        unsigned char *pucPassword, unsigned int uiPwdLength);
        int (*ReleasePrivateKeyAccessRight)(void *hSessionHandle, unsigned int uiKeyIndex);
        int (*ExportSignPublicKey_ECC)(void *hSessionHandle, unsigned int uiKeyIndex,
                                       ECCrefPublicKey *pucPublicKey);
        int (*InternalSign_ECC)(void *hSessionHandle, unsigned int uiISKIndex,
                                unsigned char *pucData, unsigned int uiDataLength,
                                ECCSignature *pucSignature);
        int (*ExternalVerify_ECC)(void *hSessionHandle, unsigned int uiAlgID,
                                  ECCrefPublicKey *pucPublicKey, unsigned char *pucDataInput,
                                  unsigned int uiInputLength, ECCSignature *pucSignature);
        int (*HashInit)(void *hSessionHandle, unsigned int uiAlgID, ECCrefPublicKey *pucPublicKey,
                        unsigned char *pucID, unsigned int uiIDLength);
        int (*HashUpdate)(void *hSessionHandle, unsigned char *pucData, unsigned int uiDataLength);
        int (*HashFinal)(void *hSessionHandle, unsigned char *pucHash, unsigned int *puiHashLength);
        /* extensions: NULL when absent */
        int (*X_Configure)(const char *config);
        int (*X_GenerateKeyPair_ECC)(void *hSession, unsigned int uiKeyIndex,
                                     unsigned char *pucPassword, unsigned int uiPwdLength);
        int (*X_ChangeKeyPIN)(void *hSession, unsigned int uiKeyIndex, unsigned char *pucOld,
                              unsigned int uiOldLength, unsigned char *pucNew,
                              unsigned int uiNewLength);
        int (*X_DestroyKeyPair_ECC)(void *hSession, unsigned int uiKeyIndex,
                                    unsigned char *pucPassword, unsigned int uiPwdLength);
        int (*X_ExportKeyBlob)(void *hSession, unsigned int uiKeyIndex, unsigned char *pucBlob,
                               unsigned int *puiBlobLength);
        int (*X_ImportKeyBlob)(void *hSession, unsigned int uiKeyIndex,
                               const unsigned char *pucBlob, unsigned int uiBlobLength);
};

/* The built-in software device (softsdf.c); static table, never NULL. */
const struct gmca_sdf_api *gmca_softsdf_api(void);

/*
 * Conversions between the SDF structures and OpenSSL, shared by softsdf.c
 * and device.c. The public key must be bits 256, right-aligned, and a
 * point on the SM2 curve (GMCA_ERR_INVALID otherwise); the EVP_PKEY is
 * caller-freed. The DER side is the GM/T 0009 SM2Signature.
 */
EVP_PKEY *gmca_sdf_pkey_from_ecc(const ECCrefPublicKey *pub, struct gmca_error *e);
int gmca_sdf_ecc_from_pkey(EVP_PKEY *key, ECCrefPublicKey *out, struct gmca_error *e) GMCA_WUR;
int gmca_sdf_sig_from_der(const uint8_t *der, size_t len, ECCSignature *out,
                          struct gmca_error *e) GMCA_WUR;
/* out holds at least 80 bytes (GMCA_SM2_SIG_MAX). */
int gmca_sdf_sig_to_der(const ECCSignature *sig, uint8_t *out, size_t *outlen,
                        struct gmca_error *e) GMCA_WUR;

/*
 * The structural check of a software-device key blob (the key-store file
 * format, also what SDFX_ExportKeyBlob returns): SDR_OK, or SDR_KEYERR with
 * nothing decrypted. *index receives the blob's key index on SDR_OK.
 * Exposed for the fuzz target.
 */
int gmca_softsdf_blob_check(const unsigned char *blob, size_t len, unsigned int *index) GMCA_WUR;

/*
 * FOR TESTS ONLY: copy the private scalar the session holds for index
 * (after SDF_GetPrivateKeyAccessRight) into out, so a test can look for it
 * in the key store. Built into gmcacore only; libgmca-softsdf.so has no
 * such function.
 */
int gmca_softsdf_debug_scalar(void *hSession, unsigned int index, unsigned char out[32]) GMCA_WUR;

#endif
