/*
 * kmproto: the messages between the CA and the key management centre (KM,
 * 密钥管理中心), GM/T 0014 / GM/T 0034 as GMT-REFERENCE §5 pieces them
 * together, in DER built with libcrypto's ASN.1:
 *
 *   CARequest ::= SEQUENCE { ksRequest KSRequest,
 *                            signatureAlgorithm AlgorithmIdentifier,  -- SM2-with-SM3
 *                            signatureValue OCTET STRING }           -- DER SM2Signature
 *   KSRequest ::= SEQUENCE { version INTEGER (1), caName EntName,
 *                            requestList SEQUENCE OF Request,
 *                            requestTime GeneralizedTime, taskNO INTEGER }
 *   EntName   ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier,       -- SM3
 *                            entName GeneralName,                     -- directoryName
 *                            entPubKeyHash OCTET STRING,              -- SM3(subjectPublicKey bits)
 *                            serialNumber INTEGER }                   -- the signer's certificate
 *   Request   ::= CHOICE { applyKeyReq [0] ApplyKeyReq, restoreKeyReq [1] RestoreKeyReq,
 *                          revokeKeyReq [2] RevokeKeyReq }            -- EXPLICIT tags
 *   ApplyKeyReq ::= SEQUENCE { appKeyType AlgorithmIdentifier,      -- SM2 (1.2.156.10197.1.301)
 *                              appKeyLen INTEGER (256),
 *                              retAsymAlg AlgorithmIdentifier,      -- SM2 encryption (…301.3)
 *                              retSymAlg AlgorithmIdentifier,       -- SM4-ECB
 *                              retHashAlg AlgorithmIdentifier,      -- SM3
 *                              appUserInfo AppUserInfo }
 *   AppUserInfo ::= SEQUENCE { userCertNo INTEGER,                  -- the encryption certificate
 *                              userPubKey SubjectPublicKeyInfo,     -- the *signature* public key
 *                              notBefore GeneralizedTime, notAfter GeneralizedTime,
 *                              userName [0] IMPLICIT UTF8String OPTIONAL }
 *   RestoreKeyReq ::= SEQUENCE { retAsymAlg, retSymAlg, retHashAlg AlgorithmIdentifier,
 *                                userCertNo INTEGER, userPubKey SubjectPublicKeyInfo,
 *                                restoreInfo [0] IMPLICIT UTF8String OPTIONAL }
 *   RevokeKeyReq  ::= SEQUENCE { userCertNo INTEGER }
 *
 *   KMRespond ::= SEQUENCE { ksRespond KSRespond, signatureAlgorithm, signatureValue }
 *   KSRespond ::= SEQUENCE { version INTEGER (1), kmName EntName,
 *                            respondList SEQUENCE OF Respond,
 *                            respondTime GeneralizedTime, taskNO INTEGER }  -- taskNO echoed
 *   Respond   ::= CHOICE { retKeyRespond [0] RetKeyRespond, retRestoreKeyRespond [1] RetKeyRespond,
 *                          revokeKeyRespond [2] RevokeKeyRespond, errorPkgRespond [3]
 * ErrorPkgRespond } RetKeyRespond ::= SEQUENCE { userCertNo INTEGER, retPubKey
 * SubjectPublicKeyInfo, retPriKey SM2EnvelopedKey,                 -- envelope.h envelopedKeyBlob
 * [0] IMPLICIT OCTET STRING OPTIONAL } RevokeKeyRespond ::= SEQUENCE { userCertNo INTEGER }
 *   ErrorPkgRespond  ::= SEQUENCE { errNo INTEGER, errDesc UTF8String OPTIONAL }
 *
 * Choices where the public implementations differ (GMT-REFERENCE §5.4),
 * made here and written nowhere else: EXPLICIT CHOICE tags; version 1;
 * signatureValue an OCTET STRING holding the DER SM2Signature over the DER
 * of KSRequest/KSRespond with the ID 1234567812345678; retPriKey is the
 * GM/T 0009 SM2EnvelopedKey itself rather than a GM/T 0010
 * SignedAndEnvelopedData (the whole KMRespond is signed by the KM already,
 * and SM2EnvelopedKey is what a token imports), with the SKF
 * ENVELOPEDKEYBLOB of the same sealing alongside; restoreInfo records who
 * asked for a recovery and why, for the KM's audit (JSON: kind
 * "subscriber" or "judicial", application, authority, document, reason).
 *
 * Parsing is strict (DER that re-encodes to the same bytes, exactly len
 * bytes, version 1, 1..GMCA_KM_ITEMS_MAX items, serials 1..20 octets and
 * positive, SM2 public keys only) and does not check the signature; the
 * receiver checks it with gmca_km_msg_verify against the one certificate
 * it trusts for the other side, then the time and task number.
 */
#ifndef GMCA_KMPROTO_H
#define GMCA_KMPROTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "signer.h"

#define GMCA_KM_MSG_MAX (256u << 10) /* bytes of one message */
#define GMCA_KM_ITEMS_MAX 16         /* Requests / Responds in one message */
#define GMCA_KM_INFO_MAX 2048        /* bytes of userName / restoreInfo / errDesc */
#define GMCA_KM_SKEW 300             /* seconds a message's time may be off */

enum gmca_km_kind {
        GMCA_KM_APPLY = 0,   /* applyKeyReq / retKeyRespond */
        GMCA_KM_RESTORE = 1, /* restoreKeyReq / retRestoreKeyRespond */
        GMCA_KM_REVOKE = 2,  /* revokeKeyReq / revokeKeyRespond */
        GMCA_KM_ERROR = 3,   /* errorPkgRespond (responses only) */
};

/* errNo values the KM answers with (errorPkgRespond). */
enum gmca_km_errno {
        GMCA_KM_E_INTERNAL = 1, /* the KM failed; nothing was changed */
        GMCA_KM_E_NOTFOUND = 2, /* no escrowed key for userCertNo */
        GMCA_KM_E_STATE = 3,    /* the key is destroyed (restore, revoke) */
        GMCA_KM_E_EXISTS = 4,   /* apply for a userCertNo that has a key already */
        GMCA_KM_E_INVALID = 5,  /* a request the KM will not serve (bad dates, key type) */
};

/* EntName: who signed the message, read from the signer's certificate. */
struct gmca_km_ent {
        uint8_t *name_der; /* owned: DER Name (the certificate's subject) */
        size_t name_len;
        uint8_t key_hash[32]; /* SM3 of the certificate's subjectPublicKey bits */
        uint8_t serial[20];   /* the certificate's serial, big-endian */
        size_t serial_len;
};

/* One Request or Respond. Every pointer is owned by the item. */
struct gmca_km_item {
        int kind;            /* enum gmca_km_kind */
        uint8_t cert_no[20]; /* userCertNo: the encryption certificate's serial */
        size_t cert_no_len;
        /* requests */
        EVP_PKEY *user_pub;            /* APPLY, RESTORE: the envelope's recipient */
        int64_t not_before, not_after; /* APPLY: the encryption certificate's validity */
        char *user_name;               /* APPLY, optional: the subject, for the KM's records */
        char *info;                    /* RESTORE, optional: restoreInfo (JSON) */
        /* responses */
        EVP_PKEY *ret_pub; /* APPLY, RESTORE: the encryption public key */
        uint8_t *envelope; /* APPLY, RESTORE: SM2EnvelopedKey */
        size_t envelope_len;
        uint8_t *blob; /* APPLY, RESTORE, optional: ENVELOPEDKEYBLOB */
        size_t blob_len;
        int64_t err_no; /* ERROR: enum gmca_km_errno */
        char *err_desc; /* ERROR, optional */
};

struct gmca_km_msg {
        int response;           /* 0: CARequest, 1: KMRespond */
        struct gmca_km_ent ent; /* caName or kmName */
        int64_t time;           /* requestTime / respondTime, Unix seconds */
        uint64_t task_no;       /* unique per request, echoed in the response */
        struct gmca_km_item items[GMCA_KM_ITEMS_MAX];
        size_t n;
        /* set by gmca_km_msg_parse, for gmca_km_msg_verify; owned */
        uint8_t *tbs; /* DER KSRequest / KSRespond */
        size_t tbs_len;
        uint8_t *sig; /* DER SM2Signature */
        size_t sig_len;
};

/* Free everything m / it owns and zero it (a zeroed one is fine). */
void gmca_km_msg_clear(struct gmca_km_msg *m);
void gmca_km_item_clear(struct gmca_km_item *it);

/*
 * Encode m (its ent, tbs and sig are ignored: ent is taken from cert, the
 * certificate of signer's key) and sign it: *der is OPENSSL_malloc'd.
 * GMCA_ERR_INVALID for an item that does not fit its kind.
 */
int gmca_km_msg_sign(const struct gmca_km_msg *m, X509 *cert, const struct gmca_signer *signer,
                     uint8_t **der, size_t *der_len, struct gmca_error *e) GMCA_WUR;

/*
 * Parse a CARequest (response 0) or KMRespond (response 1) strictly into
 * m (cleared first; on failure m is left clear). GMCA_ERR_LIMIT over a
 * cap, GMCA_ERR_INVALID otherwise.
 */
int gmca_km_msg_parse(const uint8_t *der, size_t len, int response, struct gmca_km_msg *m,
                      struct gmca_error *e) GMCA_WUR;

/*
 * 0 if m was signed by cert: its EntName is cert's (subject, key hash,
 * serial) and the signature verifies with cert's key and the ID.
 * GMCA_ERR_VERIFY otherwise. Neither time nor task number is checked here.
 */
int gmca_km_msg_verify(const struct gmca_km_msg *m, X509 *cert, struct gmca_error *e) GMCA_WUR;

/* Fill ent from a certificate (for comparing, and for the KM's records). */
int gmca_km_ent_from_cert(X509 *cert, struct gmca_km_ent *ent, struct gmca_error *e) GMCA_WUR;
void gmca_km_ent_clear(struct gmca_km_ent *ent);

#endif
