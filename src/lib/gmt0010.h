/*
 * gmt0010: GM/T 0010 (GB/T 35275) SM2 cryptographic message syntax, which
 * OpenSSL 3.0 cannot make: SignedData (attached or detached, with or
 * without authenticatedAttributes, signer certificate included or not),
 * EnvelopedData (SM4-CBC content, the content key SM2-encrypted to each
 * recipient's encryption certificate) and SignedAndEnvelopedData (both at
 * once), built and read here with libcrypto's ASN.1 templates under the
 * GM/T 0010 content-type OIDs 1.2.156.10197.6.1.4.2.x; also the GM/T 0009
 * SM2Cipher's conversion to and from the C1C3C2 octets of GM/T 0003.4.
 * Owns the message syntax and its strict parsing; the SM2/SM3/SM4
 * operations are crypto.h's.
 */
#ifndef GMCA_GMT0010_H
#define GMCA_GMT0010_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "signer.h"

#define GMCA_GMT0010_MAX (64u << 20) /* bytes of a message or its content */
#define GMCA_GMT0010_CERTS_MAX 16    /* certificates carried in one SignedData */
#define GMCA_GMT0010_SIGNERS_MAX 8   /* SignerInfos in one SignedData */
#define GMCA_GMT0010_RECIPS_MAX 64   /* RecipientInfos in one EnvelopedData */
#define GMCA_GMT0010_ATTRS_MAX 16    /* authenticatedAttributes of one signer */

/* GM/T 0010 §5 content types (GMT-REFERENCE §2.1). */
#define GMCA_OID_GMT0010_DATA "1.2.156.10197.6.1.4.2.1"
#define GMCA_OID_GMT0010_SIGNED "1.2.156.10197.6.1.4.2.2"
#define GMCA_OID_GMT0010_ENVELOPED "1.2.156.10197.6.1.4.2.3"
#define GMCA_OID_GMT0010_SIGNED_ENVELOPED "1.2.156.10197.6.1.4.2.4"
#define GMCA_OID_SM2_1 "1.2.156.10197.1.301.1" /* SM2 signature (GM/T 0006) */
#define GMCA_OID_SM2_3 "1.2.156.10197.1.301.3" /* SM2 encryption (GM/T 0006) */

struct gmca_gmt0010_sign_opts {
        const char *id;      /* SM2 distinguishing ID; NULL: 1234567812345678 */
        int detached;        /* leave the content out of the message */
        int no_attrs;        /* no authenticatedAttributes: sign the content itself */
        int no_cert;         /* do not carry the signer certificate */
        int sm2_with_sm3;    /* digestEncryptionAlgorithm 1.2.156.10197.1.501, not SM2-1 */
        time_t signing_time; /* 0: now (gmca_now) */
        /* Signs instead of key (which is then NULL): a key outside this process, such
           as one in a crypto device. It must be made for cert's public key and for id
           above; gmt0010 cannot check that before the message is verified. */
        const struct gmca_signer *signer;
};

/*
 * A DER ContentInfo of type signedData: one SignerInfo by cert/key (or
 * cert/opts->signer) over data. opts may be NULL (attached, with attributes, certificate included,
 * SM2-1). *out is allocated with OPENSSL_malloc; caller frees with
 * OPENSSL_free.
 */
int gmca_gmt0010_sign(X509 *cert, EVP_PKEY *key, const struct gmca_gmt0010_sign_opts *opts,
                      const uint8_t *data, size_t len, uint8_t **out, size_t *outlen,
                      struct gmca_error *e) GMCA_WUR;

/* What gmca_gmt0010_verify found; free with gmca_gmt0010_signer_clear. */
struct gmca_gmt0010_signer {
        X509 *cert;          /* the first SignerInfo's certificate (owned) */
        int has_time;        /* a signingTime attribute was present */
        time_t signing_time; /* its value */
        int detached;        /* the message carried no content */
        int nsigners;        /* SignerInfos, all verified */
};
void gmca_gmt0010_signer_clear(struct gmca_gmt0010_signer *s);

/*
 * Verify a DER (or one PEM "PKCS7"/"CMS" block) signedData message: strict
 * DER, every SignerInfo's SM2 signature with id (NULL: default) over
 * DER(authenticatedAttributes as a SET OF) or over the content, the SM3
 * messageDigest and the contentType attribute. Signers are found by
 * issuerAndSerialNumber among the carried certificates and extra (may be
 * NULL). detached/dlen give the content when the message has none (NULL
 * otherwise; both present is refused). On success *content (may be NULL to
 * skip) gets a copy of the content (OPENSSL_malloc; caller frees with
 * OPENSSL_free) and *signer the first signer. GMCA_ERR_VERIFY when a
 * signature or digest does not match, GMCA_ERR_NOTFOUND when no signer
 * certificate is known, GMCA_ERR_INVALID for malformed input.
 */
int gmca_gmt0010_verify(const uint8_t *msg, size_t len, const uint8_t *detached, size_t dlen,
                        STACK_OF(X509) * extra, const char *id, uint8_t **content,
                        size_t *contentlen, struct gmca_gmt0010_signer *signer,
                        struct gmca_error *e) GMCA_WUR;

/*
 * A DER ContentInfo of type envelopedData: data under a fresh random SM4
 * key in CBC mode (16-byte random IV, PKCS#7 padding), the key SM2-encrypted
 * (SM2-3, DER SM2Cipher) to each of the n recipient certificates. *out as
 * for gmca_gmt0010_sign.
 */
int gmca_gmt0010_encrypt(X509 *const *recips, size_t n, const uint8_t *data, size_t len,
                         uint8_t **out, size_t *outlen, struct gmca_error *e) GMCA_WUR;

/*
 * Open an envelopedData message with the private key of cert (the
 * RecipientInfo is chosen by cert's issuer and serial; key must be cert's).
 * Accepts SM2-3 or 1.2.156.10197.1.301.2 as keyEncryptionAlgorithm and
 * SM4-CBC 1.2.156.10197.1.104.2 or the bare 1.2.156.10197.1.104. *out is
 * allocated with OPENSSL_malloc; caller frees with OPENSSL_clear_free.
 * GMCA_ERR_NOTFOUND when cert is not a recipient, GMCA_ERR_VERIFY when the
 * key or the content does not decrypt.
 */
int gmca_gmt0010_decrypt(const uint8_t *msg, size_t len, X509 *cert, EVP_PKEY *key, uint8_t **out,
                         size_t *outlen, struct gmca_error *e) GMCA_WUR;

/*
 * A DER ContentInfo of type signedAndEnvelopedData (GM/T 0010 §9): the
 * content encrypted as for gmca_gmt0010_encrypt to the n recipients, and
 * one SignerInfo by cert/key over the plaintext as for gmca_gmt0010_sign
 * (opts->detached is refused). The encryptedDigest is the plain SM2
 * signature, as GM/T 0010 implementations write it (not RFC 2315 §11.1's
 * second encryption). *out as for gmca_gmt0010_sign.
 */
int gmca_gmt0010_sign_encrypt(X509 *cert, EVP_PKEY *key, const struct gmca_gmt0010_sign_opts *opts,
                              X509 *const *recips, size_t n, const uint8_t *data, size_t len,
                              uint8_t **out, size_t *outlen, struct gmca_error *e) GMCA_WUR;

/*
 * Open a signedAndEnvelopedData with cert/key as gmca_gmt0010_decrypt does,
 * then verify its SignerInfos over the plaintext as gmca_gmt0010_verify
 * does (extra, id likewise). Nothing is returned unless both succeed; then
 * *content (OPENSSL_malloc; caller frees with OPENSSL_clear_free) and
 * *signer (free with gmca_gmt0010_signer_clear).
 */
int gmca_gmt0010_decrypt_verify(const uint8_t *msg, size_t len, X509 *cert, EVP_PKEY *key,
                                STACK_OF(X509) * extra, const char *id, uint8_t **content,
                                size_t *contentlen, struct gmca_gmt0010_signer *signer,
                                struct gmca_error *e) GMCA_WUR;

/* What a message is, by its outer contentType. */
enum gmca_gmt0010_kind {
        GMCA_GMT0010_KIND_SIGNED = 2,
        GMCA_GMT0010_KIND_ENVELOPED = 3,
        GMCA_GMT0010_KIND_SIGNED_ENVELOPED = 4,
};

/*
 * The kind of a DER (or PEM "PKCS7"/"CMS") GM/T 0010 message, read from its
 * outer ContentInfo only (strict DER); a negative GMCA_ERR_* otherwise.
 */
int gmca_gmt0010_kind(const uint8_t *msg, size_t len, struct gmca_error *e) GMCA_WUR;

#define GMCA_SM2CIPHER_MAX (1u << 20) /* bytes of C2, as crypto.c's SM2 cap */

/*
 * GM/T 0009 §7.2 DER SM2Cipher (strict: exact DER, coordinates 0..2^256-1,
 * 32-byte HASH, non-empty CipherText) to GM/T 0003.4's C1C3C2 octets
 * 04||x||y||C3||C2, and back (from: exactly that layout, first byte 04).
 * No key is involved and the point is not checked here (decryption does).
 * *out is allocated with OPENSSL_malloc; caller frees with OPENSSL_free.
 */
int gmca_sm2cipher_to_c1c3c2(const uint8_t *der, size_t len, uint8_t **out, size_t *outlen,
                             struct gmca_error *e) GMCA_WUR;
int gmca_sm2cipher_from_c1c3c2(const uint8_t *raw, size_t len, uint8_t **out, size_t *outlen,
                               struct gmca_error *e) GMCA_WUR;

#endif
