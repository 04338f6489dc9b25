/*
 * crypto: SM2, SM3, SM4 and random numbers through OpenSSL 3 EVP, plus
 * private keys at rest (encrypted PKCS#8). Owns the SM2 distinguishing ID
 * rule: every SM2 signature made or checked here uses an explicit ID
 * (GM/T 0009 default "1234567812345678"), never OpenSSL 3.0's empty default.
 */
#ifndef GMCA_CRYPTO_H
#define GMCA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "err.h"

#define GMCA_SM2_DEFAULT_ID "1234567812345678"
#define GMCA_SM2_ID_MAX 64 /* bytes of an SM2 distinguishing ID */
#define GMCA_SM2_ID_BUF (GMCA_SM2_ID_MAX + 1)
#define GMCA_SM3_LEN 32
#define GMCA_SM4_KEY_LEN 16
#define GMCA_SM4_BLOCK 16
#define GMCA_SM4_GCM_IV_LEN 12
#define GMCA_SM4_GCM_TAG_LEN 16

/* Fill buf with len bytes from the CSPRNG. */
int gmca_rand_bytes(uint8_t *buf, size_t len, struct gmca_error *e) GMCA_WUR;

/* New SM2 key pair; caller frees with EVP_PKEY_free. NULL on failure. */
EVP_PKEY *gmca_sm2_keygen(struct gmca_error *e);

/* 0 if key is an SM2 key (public or private) on the SM2 curve. */
int gmca_sm2_is_sm2(const EVP_PKEY *key, struct gmca_error *e) GMCA_WUR;

/*
 * A digest-sign context for SM2-with-SM3 with the given ID (NULL means the
 * default ID), ready for EVP_DigestSign*, X509_sign_ctx, X509_REQ_sign_ctx,
 * X509_CRL_sign_ctx or OCSP_basic_sign_ctx. Caller frees with
 * EVP_MD_CTX_free. NULL on failure.
 */
EVP_MD_CTX *gmca_sm2_sign_ctx(EVP_PKEY *key, const char *id, struct gmca_error *e);

/* The verify counterpart of gmca_sm2_sign_ctx. */
EVP_MD_CTX *gmca_sm2_verify_ctx(EVP_PKEY *key, const char *id, struct gmca_error *e);

/*
 * SM2 signature (DER SM2Signature) of msg with ID id (NULL: default).
 * *sig is allocated with OPENSSL_malloc; caller frees with OPENSSL_free.
 */
int gmca_sm2_sign(EVP_PKEY *key, const char *id, const uint8_t *msg, size_t len, uint8_t **sig,
                  size_t *siglen, struct gmca_error *e) GMCA_WUR;

/* 0 when sig is a valid SM2 signature of msg under id; GMCA_ERR_VERIFY if not. */
int gmca_sm2_verify(EVP_PKEY *key, const char *id, const uint8_t *msg, size_t len,
                    const uint8_t *sig, size_t siglen, struct gmca_error *e) GMCA_WUR;

/* The public point of an SM2 key: 32-byte big-endian x, then y. */
int gmca_sm2_pub_xy(const EVP_PKEY *key, uint8_t xy[64], struct gmca_error *e) GMCA_WUR;

/* Z value of GM/T 0003 for key and id (NULL: default): out[32]. */
int gmca_sm2_z(EVP_PKEY *key, const char *id, uint8_t out[GMCA_SM3_LEN],
               struct gmca_error *e) GMCA_WUR;

/*
 * SM2 public-key encryption; output is the GM/T 0009 SM2Cipher DER
 * (C1, C3, C2). *out allocated with OPENSSL_malloc.
 */
int gmca_sm2_encrypt(EVP_PKEY *pub, const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                     struct gmca_error *e) GMCA_WUR;

/* Inverse of gmca_sm2_encrypt. *out allocated with OPENSSL_secure_malloc-compatible
 * OPENSSL_malloc; caller frees with OPENSSL_clear_free(*out, *outlen).
 * GMCA_ERR_INVALID if in is not exactly one DER SM2Cipher; GMCA_ERR_VERIFY
 * if it does not decrypt (C3 mismatch, wrong key). Plaintexts are capped
 * at 1 MiB on both sides (GMCA_ERR_LIMIT). */
int gmca_sm2_decrypt(EVP_PKEY *key, const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                     struct gmca_error *e) GMCA_WUR;

/* SM3 digest of data. */
int gmca_sm3(const void *data, size_t len, uint8_t out[GMCA_SM3_LEN]) GMCA_WUR;

/* Incremental SM3: new returns NULL on failure; final frees the context. */
EVP_MD_CTX *gmca_sm3_new(void);
int gmca_sm3_update(EVP_MD_CTX *c, const void *data, size_t len) GMCA_WUR;
int gmca_sm3_final(EVP_MD_CTX *c, uint8_t out[GMCA_SM3_LEN]) GMCA_WUR;

/* HMAC-SM3 of data under key. */
int gmca_hmac_sm3(const uint8_t *key, size_t keylen, const void *data, size_t len,
                  uint8_t out[GMCA_SM3_LEN], struct gmca_error *e) GMCA_WUR;

/* Lower-case hex of an SM3 digest: out must hold 65 bytes. */
void gmca_hex(const uint8_t *in, size_t len, char *out);

/*
 * SM4-CBC with PKCS#7 padding. *out allocated with OPENSSL_malloc, caller
 * frees (decrypt: with OPENSSL_clear_free). Decrypt returns GMCA_ERR_VERIFY
 * on bad padding.
 */
int gmca_sm4_cbc_encrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_BLOCK],
                         const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                         struct gmca_error *e) GMCA_WUR;
int gmca_sm4_cbc_decrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_BLOCK],
                         const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
                         struct gmca_error *e) GMCA_WUR;

/* SM4-ECB without padding (len a multiple of 16), into out (len bytes). */
int gmca_sm4_ecb(int encrypt, const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t *in, size_t len,
                 uint8_t *out, struct gmca_error *e) GMCA_WUR;

/*
 * SM4-GCM (NIST SP 800-38D with SM4 as the block cipher, as RFC 8998 uses
 * it): 12-byte IV, 16-byte tag. out holds len bytes. Uses OpenSSL's
 * "SM4-GCM" when the library provides it; otherwise GCM over libcrypto's
 * SM4 block function. Decrypt returns GMCA_ERR_VERIFY when the tag does not
 * match, and then out is zeroed.
 */
int gmca_sm4_gcm_encrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_GCM_IV_LEN],
                         const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t len,
                         uint8_t *out, uint8_t tag[GMCA_SM4_GCM_TAG_LEN],
                         struct gmca_error *e) GMCA_WUR;
int gmca_sm4_gcm_decrypt(const uint8_t key[GMCA_SM4_KEY_LEN], const uint8_t iv[GMCA_SM4_GCM_IV_LEN],
                         const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t len,
                         const uint8_t tag[GMCA_SM4_GCM_TAG_LEN], uint8_t *out,
                         struct gmca_error *e) GMCA_WUR;

/*
 * The GCM behind gmca_sm4_gcm_* when OpenSSL has no SM4-GCM, over any
 * 128-bit block cipher that EVP offers in ECB mode (ecb: "SM4-ECB",
 * "AES-128-ECB", ...; keylen must be that cipher's). Exposed so tests can
 * check it against OpenSSL's AES-GCM. Same contract as gmca_sm4_gcm_*;
 * in and out may be the same buffer. GMCA_ERR_LIMIT above 2^36 - 32 bytes
 * of text (SP 800-38D §5.2.1.1).
 */
int gmca_gcm_encrypt(const char *ecb, const uint8_t *key, size_t keylen,
                     const uint8_t iv[GMCA_SM4_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                     const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[GMCA_SM4_GCM_TAG_LEN],
                     struct gmca_error *e) GMCA_WUR;
int gmca_gcm_decrypt(const char *ecb, const uint8_t *key, size_t keylen,
                     const uint8_t iv[GMCA_SM4_GCM_IV_LEN], const uint8_t *aad, size_t aadlen,
                     const uint8_t *in, size_t len, const uint8_t tag[GMCA_SM4_GCM_TAG_LEN],
                     uint8_t *out, struct gmca_error *e) GMCA_WUR;

/*
 * Private keys at rest: PEM "ENCRYPTED PRIVATE KEY" (PKCS#8 PBES2, SM4-CBC,
 * PBKDF2 with a random salt and GMCA_KEY_PBKDF2_ITER iterations). The file
 * is created with O_EXCL and mode 0600: an existing file is refused with
 * GMCA_ERR_EXISTS. The plaintext never reaches the file system.
 */
#define GMCA_KEY_PBKDF2_ITER 600000
#define GMCA_PASS_MIN 8
#define GMCA_PASS_MAX 1024
int gmca_key_write(const char *path, EVP_PKEY *key, const char *pass, size_t passlen,
                   struct gmca_error *e) GMCA_WUR;

/* Read a key written by gmca_key_write. Wrong passphrase: GMCA_ERR_AUTH.
 * Not that format, or not an SM2 private key: GMCA_ERR_INVALID. A PBKDF2
 * iteration count over 10,000,000: GMCA_ERR_LIMIT (checked before deriving).
 * Files over 64 KiB are refused. Caller frees with EVP_PKEY_free. NULL on
 * failure. */
EVP_PKEY *gmca_key_read(const char *path, const char *pass, size_t passlen, struct gmca_error *e);

/* Encrypted PKCS#8 PEM of key in memory (for the same format elsewhere).
 * *pem is NUL-terminated (not counted in *pemlen), allocated with
 * OPENSSL_malloc; caller frees with OPENSSL_free. gmca_key_from_pem has
 * gmca_key_read's contract. */
int gmca_key_to_pem(EVP_PKEY *key, const char *pass, size_t passlen, char **pem, size_t *pemlen,
                    struct gmca_error *e) GMCA_WUR;
EVP_PKEY *gmca_key_from_pem(const char *pem, size_t pemlen, const char *pass, size_t passlen,
                            struct gmca_error *e);

/* Wipe and free a buffer that held secrets; NULL is fine. */
void gmca_secret_free(void *p, size_t len);

#endif
