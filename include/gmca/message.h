/*
 * libgmca messages: GM/T 0010 (GB/T 35275) SM2 cryptographic messages
 * (SignedData attached or detached, EnvelopedData, SignedAndEnvelopedData)
 * and the bare GM/T 0009 forms (an SM2 signature over data with an ID, SM2
 * encryption as DER SM2Cipher or C1C3C2 octets) for applications that
 * neither know nor link OpenSSL. Keys and certificates go in as PEM or DER
 * bytes, and a signing key may instead sit in a crypto device behind the
 * GM/T 0018 SDF interface (gmca_token_*); every SM2 signature and verification uses the
 * distinguishing ID 1234567812345678 unless an id is given. Conventions as in gmca.h: 0 or a
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

/* ---- Keys in a crypto device (GM/T 0018 SDF) --------------------------- */

/*
 * An opened crypto device: a vendor's GM/T 0018 SDF library, or gmca's own
 * software device. Opaque; one session, not to be shared between threads.
 */
struct gmca_token;

/*
 * Open the SDF library at sdf_library (a path for dlopen; every standard
 * SDF function gmca uses must be there) and a session on its device. config,
 * when not NULL, goes to the library's SDFX_Configure if it has one.
 * sdf_library NULL or "": gmca's built-in software device, whose config is
 * its key store directory (required; created if missing). Close with
 * gmca_token_close. NULL on failure: GMCA_RC_IO when the library or device
 * cannot be opened, GMCA_RC_INVALID when the library lacks an SDF function.
 * Not thread-safe: SDFX_Configure sets the library's process-wide
 * configuration, so open tokens from one thread at a time.
 */
GMCA_EXPORT struct gmca_token *gmca_token_open(const char *sdf_library, const char *config,
                                               struct gmca_status *st);

/*
 * Drop the caller's handle. The session stays open while keys opened on it
 * are not yet freed, and closes (every access right released) with the
 * last. NULL is fine.
 */
GMCA_EXPORT void gmca_token_close(struct gmca_token *t);

/* The device as it names itself: "issuer device serial"; owned by t. */
GMCA_EXPORT const char *gmca_token_description(const struct gmca_token *t);

/* An SM2 signing key in a token, unlocked for this session. Opaque. */
struct gmca_token_key;

#define GMCA_TOKEN_INDEX_MAX 1024 /* key indexes are 1..GMCA_TOKEN_INDEX_MAX */
#define GMCA_TOKEN_PIN_MAX 256    /* bytes of a key's access password */

/*
 * The signing key pair at index in t (SDF_ExportSignPublicKey_ECC), unlocked
 * with its access password pin (pin_len bytes, 1..GMCA_TOKEN_PIN_MAX;
 * SDF_GetPrivateKeyAccessRight). The PIN is not kept. One handle per index
 * and token at a time. Free with gmca_token_key_free (t must not be closed
 * before; see gmca_token_close). NULL on failure: GMCA_RC_AUTH for a wrong
 * PIN, GMCA_RC_NOTFOUND when there is no key at index, GMCA_RC_INVALID for
 * an index out of range or already open.
 */
GMCA_EXPORT struct gmca_token_key *gmca_token_key_open(struct gmca_token *t, unsigned index,
                                                       const char *pin, size_t pin_len,
                                                       struct gmca_status *st);

/*
 * The key's public point 04||x||y as 130 lower-case hex digits, the form of
 * gmca_certificate_info's public_key, to find its certificate; owned by k.
 */
GMCA_EXPORT const char *gmca_token_key_public_key(const struct gmca_token_key *k);

/* Release the key's access right and free the handle; NULL is fine. */
GMCA_EXPORT void gmca_token_key_free(struct gmca_token_key *k);

/*
 * An SM2 key and its certificate: the bytes of their files, or a key in a
 * token. Initialise a credential with designated initialisers or {0}: every
 * field not set must be zero (fields may be added at the end in later
 * versions, zero meaning "not used").
 */
struct gmca_credential {
        const void *certificate; /* PEM or DER X.509; may be NULL where a function says */
        size_t certificate_len;
        const void *private_key; /* PEM or DER PKCS#8 (plain or encrypted) or SEC1 SM2 key */
        size_t private_key_len;
        const char *passphrase; /* of an encrypted key; NULL for a plain one */
        size_t passphrase_len;
        /* Instead of private_key (which must then be NULL): a key in a token, for
           signing (gmca_message_sign, gmca_message_sign_encrypt, gmca_sm2_raw_sign).
           Decryption needs a key file: the device interface offers no SM2
           decryption. Borrowed; the handle must outlive the call. */
        struct gmca_token_key *token_key;
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
 * key, a key file or a token key, both required; the key must be the
 * certificate's, else GMCA_RC_INVALID, and the certificate's keyUsage must
 * allow signatures, else GMCA_RC_POLICY). opts may be NULL: attached, with
 * signingTime, the certificate carried. *out: free with gmca_buffer_free.
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
 * Open a GM/T 0010 EnvelopedData with recipient (certificate and key file;
 * a token key is refused with GMCA_RC_INVALID). GMCA_RC_NOTFOUND when the
 * certificate is not a recipient. A
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
 * key of signer, a key file or a token key (certificate optional; when
 * given, the key must be its). *sig: free with gmca_buffer_free.
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
 * Decrypt with the key file of recipient (certificate optional, checked
 * when given; a token key is refused). GMCA_RC_VERIFY when the key is wrong
 * or the ciphertext altered.
 */
GMCA_EXPORT int gmca_sm2_raw_decrypt(const struct gmca_credential *recipient, int form,
                                     const void *in, size_t len, uint8_t **out, size_t *outlen,
                                     struct gmca_status *st) GMCA_API_WUR;

/* ---- Certificate and CRL sync (CPS §4.6.1, §4.6.2) --------------------- */

/*
 * What a downstream e-government system does with each body a gmca CA's
 * sync push POSTs to it: verify the GM/T 0010 SignedData (SM2, default
 * ID), that its signer is a sync certificate (digitalSignature and
 * nonRepudiation, no extKeyUsage) chaining to one of the anchors through
 * the chain certificates (PEM or DER, at most GMCA_MESSAGE_CERTIFICATES_MAX
 * each) and valid now (revocation not checked), and that the content is an
 * event payload (JSON; docs/sync.md). On success *payload is the JSON,
 * NUL-terminated, *payload_len bytes: free with gmca_buffer_free.
 * GMCA_RC_VERIFY for a signature or path that does not verify,
 * GMCA_RC_POLICY for a signer that is no sync certificate, GMCA_RC_INVALID
 * for a malformed body or payload.
 */
GMCA_EXPORT int gmca_sync_body_verify(const void *body, size_t len,
                                      const struct gmca_bytes *anchors, size_t nanchors,
                                      const struct gmca_bytes *chain, size_t nchain, char **payload,
                                      size_t *payload_len, struct gmca_status *st) GMCA_API_WUR;

#ifdef __cplusplus
}
#endif

#endif
