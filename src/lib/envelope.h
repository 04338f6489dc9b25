/*
 * envelope: handing an SM2 key pair to the holder of another SM2 key, in
 * the two forms of the dual-certificate system (GMT-REFERENCE §3.2, §4.2):
 *
 *   SM2EnvelopedKey (GM/T 0009 §7.4) ::= SEQUENCE {
 *     symAlgID               AlgorithmIdentifier,  -- sm4-ecb 1.2.156.10197.1.104.1
 *     symEncryptedKey        SM2Cipher,            -- SM4 key, to the recipient
 *     sm2PublicKey           BIT STRING,           -- 04||X||Y of the pair delivered
 *     sm2EncryptedPrivateKey BIT STRING }          -- d (32 bytes) under SM4-ECB
 *
 *   ENVELOPEDKEYBLOB (GM/T 0016 SKF, what a USB key imports with
 *   SKF_ImportECCKeyPair), every ULONG 4 bytes little-endian:
 *     Version (1) | ulSymmAlgID (SGD_SM4_ECB 0x00000401) | ulBits (256) |
 *     cbEncryptedPriKey[64] (0^32 || d, SM4-ECB, no padding) |
 *     ECCPUBLICKEYBLOB { BitLen (256), X[64], Y[64] } (right-aligned) |
 *     ECCCIPHERBLOB { X[64], Y[64], HASH[32], CipherLen (16), Cipher[16] }
 *
 * The KM (km.h) seals each subscriber's escrowed encryption key pair to the
 * public key of the subscriber's *signature* certificate, whose private key
 * never leaves the subscriber's token: neither the CA nor anyone on the way
 * can open it. Both forms of one delivery share one random SM4 key.
 *
 * Opening checks everything a token would: the SM2Cipher's C3 (so a wrong
 * recipient or a tampered key is GMCA_ERR_VERIFY), d in [1, n-2], and that
 * d·G is the public key carried (GMCA_ERR_VERIFY otherwise). For what other
 * implementations write, opening accepts symAlgID parameters absent or
 * NULL and a PKCS#7-padded private key (48 bytes); sealing writes the
 * parameters absent and d unpadded (32 bytes).
 */
#ifndef GMCA_ENVELOPE_H
#define GMCA_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "err.h"

#define GMCA_ENVELOPE_MAX 1024 /* bytes of an SM2EnvelopedKey we parse */
/* bytes of an ENVELOPEDKEYBLOB with the 16-byte SM4 key as Cipher: 12 + 64 + 132 + 180 */
#define GMCA_ENVELOPE_BLOB_LEN 388
#define GMCA_SGD_SM4_ECB 0x00000401u

/*
 * Seal the key pair `pair` (an SM2 private key) to `recipient` (an SM2
 * public key): a fresh SM4 key, d encrypted with it, the SM4 key
 * SM2-encrypted to recipient. *der (SM2EnvelopedKey) and, when blob is not
 * NULL, *blob (ENVELOPEDKEYBLOB, GMCA_ENVELOPE_BLOB_LEN bytes) are
 * OPENSSL_malloc'd; the caller frees them. The SM4 key and d are wiped.
 */
int gmca_envelope_seal(EVP_PKEY *pair, EVP_PKEY *recipient, uint8_t **der, size_t *der_len,
                       uint8_t **blob, size_t *blob_len, struct gmca_error *e) GMCA_WUR;

/*
 * Open an SM2EnvelopedKey (strict DER, exactly len bytes) with the
 * recipient's private key: the delivered key pair (EVP_PKEY_free), or
 * NULL with e set: GMCA_ERR_INVALID (malformed, unknown symmetric
 * algorithm), GMCA_ERR_VERIFY (not for this key, tampered, or a private
 * key that is not the public key's).
 */
EVP_PKEY *gmca_envelope_open(const uint8_t *der, size_t len, EVP_PKEY *recipient,
                             struct gmca_error *e);

/* The same for an ENVELOPEDKEYBLOB. */
EVP_PKEY *gmca_envelope_blob_open(const uint8_t *blob, size_t len, EVP_PKEY *recipient,
                                  struct gmca_error *e);

/*
 * The public key an SM2EnvelopedKey delivers, read without opening it (to
 * match it with an encryption certificate). NULL with e set if malformed.
 */
EVP_PKEY *gmca_envelope_pubkey(const uint8_t *der, size_t len, struct gmca_error *e);

#endif
