/*
 * libgmca messages: GM/T 0010 (GB/T 35275) SM2 cryptographic messages
 * (SignedData attached or detached, EnvelopedData, SignedAndEnvelopedData)
 * and the bare GM/T 0009 forms (an SM2 signature over data with an ID, SM2
 * encryption as DER SM2Cipher or C1C3C2 octets) for applications that
 * neither know nor link OpenSSL. Keys and certificates go in as PEM or DER
 * bytes; every SM2 signature and verification uses the distinguishing ID
 * 1234567812345678 unless an id is given. Conventions as in gmca.h: 0 or a
 * negative GMCA_RC_* with st filled; buffers this header returns are freed
 * with gmca_buffer_free, result handles with gmca_message_free.
 */
#ifndef GMCA_MESSAGE_H
#define GMCA_MESSAGE_H

#include "gmca.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GMCA_MESSAGE_MAX (64u << 20)     /* bytes of a message or its content */
#define GMCA_MESSAGE_RECIPIENTS_MAX 64   /* recipients of one message */
#define GMCA_MESSAGE_CERTIFICATES_MAX 16 /* extra certificates given to verify */
#define GMCA_SM2_RAW_MAX (1u << 20)      /* bytes gmca_sm2_raw_encrypt takes */
#define GMCA_KEY_MAX 65536               /* bytes of a private key file */

/* An SM2 key and its certificate, as the bytes of their files. */
struct gmca_credential {
        const void *certificate; /* PEM or DER X.509; may be NULL where a function says */
        size_t certificate_len;
        const void *private_key; /* PEM or DER PKCS#8 (plain or encrypted) or SEC1 SM2 key */
        size_t private_key_len;
        const char *passphrase; /* of an encrypted key; NULL for a plain one */
        size_t passphrase_len;
};

/* Some bytes: a certificate (PEM or DER) in a list of recipients or signers. */
struct gmca_bytes {
        const void *data;
        size_t len;
};

/* gmca_sign_options.flags */
#define GMCA_SIGN_DETACHED 0x1u       /* leave the content out of the SignedData */
#define GMCA_SIGN_NO_ATTRIBUTES 0x2u  /* no signingTime etc.: sign the content itself */
#define GMCA_SIGN_NO_CERTIFICATE 0x4u /* do not carry the signer certificate */
#define GMCA_SIGN_SM2_WITH_SM3 0x8u   /* algorithm 1.2.156.10197.1.501 instead of SM2-1 */

struct gmca_sign_options {
        unsigned flags;       /* GMCA_SIGN_* */
        const char *id;       /* SM2 distinguishing ID; NULL: 1234567812345678 */
        int64_t signing_time; /* seconds since 1970 UTC; 0: now */
};

/*
 * A DER GM/T 0010 SignedData of data (len bytes) by signer (certificate and
 * key both required; the key must be the certificate's, whose keyUsage must
 * allow signatures). opts may be NULL: attached, with signingTime, the
 * certificate carried. *out: free with gmca_buffer_free.
 */
GMCA_EXPORT int gmca_message_sign(const struct gmca_credential *signer,
                                  const struct gmca_sign_options *opts, const void *data,
                                  size_t len, uint8_t **out, size_t *outlen,
                                  struct gmca_status *st) GMCA_API_WUR;

/*
 * A DER GM/T 0010 EnvelopedData: data under a random SM4-CBC key, the key
 * SM2-encrypted to each of the n recipients' encryption certificates.
 */
GMCA_EXPORT int gmca_message_encrypt(const struct gmca_bytes *recipients, size_t n,
                                     const void *data, size_t len, uint8_t **out, size_t *outlen,
                                     struct gmca_status *st) GMCA_API_WUR;

/*
 * A DER GM/T 0010 SignedAndEnvelopedData: signed as gmca_message_sign
 * (GMCA_SIGN_DETACHED refused) and encrypted as gmca_message_encrypt.
 */
GMCA_EXPORT int gmca_message_sign_encrypt(const struct gmca_credential *signer,
                                          const struct gmca_sign_options *opts,
                                          const struct gmca_bytes *recipients, size_t n,
                                          const void *data, size_t len, uint8_t **out,
                                          size_t *outlen, struct gmca_status *st) GMCA_API_WUR;

/* What a verified or decrypted message held; owned by its struct gmca_message. */
struct gmca_message_info {
        const uint8_t *content; /* the signed or decrypted content (never NULL) */
        size_t content_len;
        const struct gmca_certificate *signer; /* first signer; NULL for EnvelopedData */
        int signer_count;                      /* SignerInfos, all verified */
        int has_signing_time;
        int64_t signing_time; /* seconds since 1970 UTC */
        int detached;         /* the content came from the caller */
};

/* An opaque verified or decrypted message. */
struct gmca_message;

/*
 * Verify a GM/T 0010 SignedData (DER or one PEM block): every SignerInfo's
 * SM2 signature with id (NULL: default), the SM3 messageDigest and the
 * contentType. detached/dlen: the content when the message has none (else
 * NULL). certs/ncerts: signer certificates the message may not carry (may
 * be NULL/0). The signer certificate's own signature and chain are NOT
 * checked here (see validate.h). On success *msg_out: free with
 * gmca_message_free. GMCA_RC_VERIFY when a signature or digest is wrong,
 * GMCA_RC_NOTFOUND when no signer certificate is known.
 */
GMCA_EXPORT int gmca_message_verify(const void *msg, size_t len, const void *detached, size_t dlen,
                                    const struct gmca_bytes *certs, size_t ncerts, const char *id,
                                    struct gmca_message **msg_out,
                                    struct gmca_status *st) GMCA_API_WUR;

/*
 * Open a GM/T 0010 EnvelopedData with recipient (certificate and key).
 * GMCA_RC_NOTFOUND when the certificate is not a recipient. A
 * SignedAndEnvelopedData is refused here: use gmca_message_decrypt_verify.
 */
GMCA_EXPORT int gmca_message_decrypt(const struct gmca_credential *recipient, const void *msg,
                                     size_t len, struct gmca_message **msg_out,
                                     struct gmca_status *st) GMCA_API_WUR;

/*
 * Open a GM/T 0010 SignedAndEnvelopedData with recipient, then verify its
 * signers over the content as gmca_message_verify does (certs, id
 * likewise). Nothing is returned unless both succeed.
 */
GMCA_EXPORT int gmca_message_decrypt_verify(const struct gmca_credential *recipient,
                                            const void *msg, size_t len,
                                            const struct gmca_bytes *certs, size_t ncerts,
                                            const char *id, struct gmca_message **msg_out,
                                            struct gmca_status *st) GMCA_API_WUR;

/* The fields of a message; owned by m. */
GMCA_EXPORT const struct gmca_message_info *gmca_message_info(const struct gmca_message *m);

/* Wipe the content and free; NULL is fine. */
GMCA_EXPORT void gmca_message_free(struct gmca_message *m);

/* ---- Raw SM2 (GM/T 0003, GM/T 0009) ------------------------------------ */

/*
 * A DER SM2Signature over data with id (NULL: 1234567812345678) by the
 * key of signer (certificate optional; when given, the key must be its).
 */
GMCA_EXPORT int gmca_sm2_raw_sign(const struct gmca_credential *signer, const char *id,
                                  const void *data, size_t len, uint8_t **sig, size_t *siglen,
                                  struct gmca_status *st) GMCA_API_WUR;

/* Verify a DER SM2Signature over data with id by the key of certificate. */
GMCA_EXPORT int gmca_sm2_raw_verify(const void *certificate, size_t certificate_len, const char *id,
                                    const void *data, size_t len, const void *sig, size_t siglen,
                                    struct gmca_status *st) GMCA_API_WUR;

/* Ciphertext forms. */
#define GMCA_SM2_CIPHER_DER 0    /* GM/T 0009 SM2Cipher SEQUENCE { x, y, C3, C2 } */
#define GMCA_SM2_CIPHER_C1C3C2 1 /* GM/T 0003.4 octets 04||x||y||C3||C2 */

/* SM2-encrypt data (1 to GMCA_SM2_RAW_MAX bytes) to the certificate's key. */
GMCA_EXPORT int gmca_sm2_raw_encrypt(const void *certificate, size_t certificate_len, int form,
                                     const void *data, size_t len, uint8_t **out, size_t *outlen,
                                     struct gmca_status *st) GMCA_API_WUR;

/*
 * Decrypt with the key of recipient (certificate optional, checked when
 * given). GMCA_RC_VERIFY when the key is wrong or the ciphertext altered.
 */
GMCA_EXPORT int gmca_sm2_raw_decrypt(const struct gmca_credential *recipient, int form,
                                     const void *in, size_t len, uint8_t **out, size_t *outlen,
                                     struct gmca_status *st) GMCA_API_WUR;

#ifdef __cplusplus
}
#endif

#endif
