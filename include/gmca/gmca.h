/*
 * libgmca: the application interface of the gmca certificate authority for
 * relying parties (CPS §3.5.2, §4.2). E-government applications read
 * SM2 certificates (GM/T 0015) into plain C structures, hash with SM3,
 * encrypt with SM4 and draw random numbers without knowing OpenSSL: this
 * header uses only standard C types, and every object is an opaque handle
 * with a _free function that accepts NULL.
 *
 * Errors: a function that can fail returns 0 or a negative GMCA_RC_* code
 * (constructors return NULL), and fills the struct gmca_status the caller
 * passes (which may be NULL) with the code and a one-line cause naming the
 * standard and field ("certificate: X.509: trailing bytes after DER").
 * Functions are thread-safe when their handles are not shared.
 *
 * Link with `pkg-config --cflags --libs gmca`.
 */
#ifndef GMCA_GMCA_H
#define GMCA_GMCA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GMCA_EXPORT __attribute__((visibility("default")))
#define GMCA_API_WUR __attribute__((warn_unused_result))
#else
#define GMCA_EXPORT
#define GMCA_API_WUR
#endif

/* Result codes (the same numbers as the gmca command's library uses). */
enum gmca_rc {
        GMCA_RC_OK = 0,
        GMCA_RC_INTERNAL = -1, /* a bug or an unexpected library failure */
        GMCA_RC_NOMEM = -2,
        GMCA_RC_INVALID = -3,  /* malformed or unacceptable input */
        GMCA_RC_CRYPTO = -4,   /* a cryptographic operation failed */
        GMCA_RC_VERIFY = -5,   /* a signature or authentication tag did not verify */
        GMCA_RC_NOTFOUND = -6, /* no such file, key, recipient or signer certificate */
        GMCA_RC_POLICY = -8,   /* refused by a rule (a certificate's keyUsage) */
        GMCA_RC_IO = -9,       /* reading a file or loading a library failed */
        GMCA_RC_AUTH = -11,    /* wrong PIN or passphrase */
        GMCA_RC_STATE = -12,   /* not possible now or with this device */
        GMCA_RC_LIMIT = -14,   /* input over a size or count cap */
};

#define GMCA_STATUS_MESSAGE_MAX 512

/* What went wrong: code is a GMCA_RC_* value, message a NUL-terminated line. */
struct gmca_status {
        int code;
        char message[GMCA_STATUS_MESSAGE_MAX];
};

/* A short description of a code ("invalid input", "verification failed"); never NULL. */
GMCA_EXPORT const char *gmca_rc_name(int rc);

/* The library version, "MAJOR.MINOR.PATCH". */
GMCA_EXPORT const char *gmca_library_version(void);

/* ---- Certificates (GM/T 0015 SM2 certificates, RFC 5280) ---------------- */

/* Input caps: certificate bytes (DER or PEM) accepted, and counts reported. */
#define GMCA_CERTIFICATE_MAX 65536
#define GMCA_NAME_ATTRIBUTES_MAX 16
#define GMCA_EKU_MAX 16
#define GMCA_SAN_ENTRIES_MAX 48

/* keyUsage bits (RFC 5280 §4.2.1.3), as in key_usage below. */
#define GMCA_KU_DIGITAL_SIGNATURE 0x0080u
#define GMCA_KU_NON_REPUDIATION 0x0040u /* contentCommitment */
#define GMCA_KU_KEY_ENCIPHERMENT 0x0020u
#define GMCA_KU_DATA_ENCIPHERMENT 0x0010u
#define GMCA_KU_KEY_AGREEMENT 0x0008u
#define GMCA_KU_KEY_CERT_SIGN 0x0004u
#define GMCA_KU_CRL_SIGN 0x0002u
#define GMCA_KU_ENCIPHER_ONLY 0x0001u
#define GMCA_KU_DECIPHER_ONLY 0x8000u

/* One attribute of a distinguished name, in the order of the certificate. */
struct gmca_name_attribute {
        const char *type;  /* short name: "C", "ST", "L", "O", "OU", "CN", "emailAddress",
                              "serialNumber", ...; the dotted OID when there is none */
        const char *oid;   /* dotted OID, "2.5.4.3" */
        const char *value; /* UTF-8 */
};

/* A distinguished name: its attributes and a one-line UTF-8 text form. */
struct gmca_name_info {
        const struct gmca_name_attribute *attributes;
        size_t count;
        const char *text; /* "C=CN, O=..., CN=...": certificate order, RFC 4514 escapes */
};

/* A GM/T 0015 private extension present in the certificate (GMT-REFERENCE §1.2). */
struct gmca_private_extension {
        const char *name;  /* "identity_card_number", "insurance_number",
                              "ic_registration_number", "organization_code",
                              "taxation_number", "unified_social_credit_code" */
        const char *oid;   /* "1.2.156.10260.4.1.1", ... */
        const char *value; /* the number, PrintableString or UTF-8 */
};

/* An extended key usage: dotted OID and OpenSSL-independent short name. */
struct gmca_extended_key_usage {
        const char *oid;  /* "1.3.6.1.5.5.7.3.2" */
        const char *name; /* "clientAuth"; the OID again when unknown */
};

/* A subjectAltName entry of a kind this interface reports. */
struct gmca_alt_name {
        const char *kind;  /* "dns", "ip", "email" or "uri" */
        const char *value; /* the name; IP addresses in text form */
};

/*
 * Everything a relying party reads from a certificate. All pointers are
 * owned by the struct gmca_certificate it came from and stay valid until
 * that is freed. Absent optional fields: has_* = 0, arrays with count 0.
 */
struct gmca_certificate_info {
        int version;        /* 3 */
        const char *serial; /* upper-case hex, no leading zero octet */
        struct gmca_name_info subject;
        struct gmca_name_info issuer;
        int64_t not_before; /* seconds since 1970-01-01 UTC */
        int64_t not_after;
        const char *not_before_text; /* "YYYY-MM-DDTHH:MM:SSZ" */
        const char *not_after_text;
        const char *signature_algorithm; /* "1.2.156.10197.1.501" (SM2-with-SM3) */
        int has_key_usage;
        unsigned key_usage; /* GMCA_KU_* bits */
        int key_usage_critical;
        const struct gmca_extended_key_usage *ext_key_usage;
        size_t ext_key_usage_count;
        int has_basic_constraints;
        int is_ca;
        int path_len; /* -1: no pathLenConstraint */
        const struct gmca_private_extension *private_extensions;
        size_t private_extension_count;
        const struct gmca_alt_name *alt_names;
        size_t alt_name_count;
        const char *fingerprint;            /* SM3 of the DER certificate, 64 lower-case hex */
        const char *public_key_fingerprint; /* SM3 of the DER SubjectPublicKeyInfo, 64 hex */
        const char *public_key;             /* SM2 public point 04||x||y, 130 lower-case hex */
};

/* An opaque parsed certificate. */
struct gmca_certificate;

/*
 * Parse one certificate: DER, or exactly one PEM "CERTIFICATE" block, at
 * most GMCA_CERTIFICATE_MAX bytes. Parsing is strict: DER only (no BER,
 * no trailing bytes), version 3, SM2-with-SM3 signature over an SM2 key,
 * positive serial of at most 20 octets, no duplicate extensions, well-formed
 * GM/T 0015 private extensions. The signature is NOT checked (that needs the
 * issuer; see validation). Returns a handle the caller frees with
 * gmca_certificate_free, or NULL with st filled.
 */
GMCA_EXPORT struct gmca_certificate *gmca_certificate_parse(const void *data, size_t len,
                                                            struct gmca_status *st);

/* gmca_certificate_parse on the contents of the file at path. */
GMCA_EXPORT struct gmca_certificate *gmca_certificate_load(const char *path,
                                                           struct gmca_status *st);

/* Free a certificate and everything its info points to; NULL is fine. */
GMCA_EXPORT void gmca_certificate_free(struct gmca_certificate *cert);

/* The certificate's fields; owned by cert. Never NULL for a parsed cert. */
GMCA_EXPORT const struct gmca_certificate_info *
gmca_certificate_info(const struct gmca_certificate *cert);

/* The DER encoding of the certificate; owned by cert. */
GMCA_EXPORT const uint8_t *gmca_certificate_der(const struct gmca_certificate *cert, size_t *len);

/*
 * The value of the first subject attribute of short name or dotted OID
 * type ("CN", "2.5.4.10"), owned by cert; NULL when absent.
 */
GMCA_EXPORT const char *gmca_certificate_subject_attribute(const struct gmca_certificate *cert,
                                                           const char *type);

/*
 * The value of a GM/T 0015 private extension by name
 * ("identity_card_number", ...) or OID, owned by cert; NULL when absent.
 */
GMCA_EXPORT const char *gmca_certificate_private_extension(const struct gmca_certificate *cert,
                                                           const char *name_or_oid);

/* ---- Random numbers --------------------------------------------------- */

/* Fill buf with len bytes from the operating system's CSPRNG (via OpenSSL). */
GMCA_EXPORT int gmca_random_bytes(void *buf, size_t len, struct gmca_status *st) GMCA_API_WUR;

/* ---- SM3 (GB/T 32905) ------------------------------------------------- */

#define GMCA_SM3_DIGEST_SIZE 32

/* out = SM3(data). */
GMCA_EXPORT int gmca_sm3_digest(const void *data, size_t len, uint8_t out[GMCA_SM3_DIGEST_SIZE],
                                struct gmca_status *st) GMCA_API_WUR;

/* out = HMAC-SM3(key, data) (RFC 2104 with SM3). keylen may be 0. */
GMCA_EXPORT int gmca_sm3_hmac(const void *key, size_t keylen, const void *data, size_t len,
                              uint8_t out[GMCA_SM3_DIGEST_SIZE],
                              struct gmca_status *st) GMCA_API_WUR;

/* Incremental SM3 (and HMAC-SM3): new, update any number of times, final. */
struct gmca_sm3_stream;

/*
 * Start an SM3 computation; with key != NULL, an HMAC-SM3 under key
 * (keylen bytes; copied). Free with gmca_sm3_stream_free. NULL on failure.
 */
GMCA_EXPORT struct gmca_sm3_stream *gmca_sm3_stream_new(const void *key, size_t keylen,
                                                        struct gmca_status *st);
GMCA_EXPORT int gmca_sm3_stream_update(struct gmca_sm3_stream *s, const void *data, size_t len,
                                       struct gmca_status *st) GMCA_API_WUR;
/* Write the digest; after this only gmca_sm3_stream_free is allowed. */
GMCA_EXPORT int gmca_sm3_stream_final(struct gmca_sm3_stream *s, uint8_t out[GMCA_SM3_DIGEST_SIZE],
                                      struct gmca_status *st) GMCA_API_WUR;
GMCA_EXPORT void gmca_sm3_stream_free(struct gmca_sm3_stream *s);

/* ---- SM4 (GB/T 32907) authenticated encryption ------------------------ */

#define GMCA_SM4_KEY_SIZE 16
#define GMCA_SM4_IV_SIZE 12
#define GMCA_SM4_TAG_SIZE 16
/* Bytes a sealed message adds to the plaintext: IV in front, tag behind. */
#define GMCA_SM4_SEAL_OVERHEAD (GMCA_SM4_IV_SIZE + GMCA_SM4_TAG_SIZE)
/* Largest plaintext gmca_sm4_seal takes (1 GiB). */
#define GMCA_SM4_SEAL_MAX ((size_t)1 << 30)

/*
 * Encrypt and authenticate with SM4-GCM (SP 800-38D with SM4, as RFC 8998):
 * a fresh random 12-byte IV, then the ciphertext, then the 16-byte tag.
 * aad (may be NULL with aadlen 0) is authenticated, not encrypted, and must
 * be given again to open. *out (len + GMCA_SM4_SEAL_OVERHEAD bytes) is
 * allocated; free it with gmca_buffer_free.
 */
GMCA_EXPORT int gmca_sm4_seal(const uint8_t key[GMCA_SM4_KEY_SIZE], const void *aad, size_t aadlen,
                              const void *in, size_t len, uint8_t **out, size_t *outlen,
                              struct gmca_status *st) GMCA_API_WUR;

/*
 * Inverse of gmca_sm4_seal. GMCA_RC_VERIFY when the key, the aad or any
 * byte is wrong (nothing is returned then); GMCA_RC_INVALID when in is
 * shorter than GMCA_SM4_SEAL_OVERHEAD. *out is allocated; free it with
 * gmca_buffer_free (which wipes it).
 */
GMCA_EXPORT int gmca_sm4_open(const uint8_t key[GMCA_SM4_KEY_SIZE], const void *aad, size_t aadlen,
                              const void *in, size_t len, uint8_t **out, size_t *outlen,
                              struct gmca_status *st) GMCA_API_WUR;

/* Wipe len bytes of a buffer this library returned, and free it; NULL is fine. */
GMCA_EXPORT void gmca_buffer_free(void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
