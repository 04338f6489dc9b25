/*
 * engine: the CA engine process of DESIGN.md's CA core zone. After
 * activation it is the only process that holds an unlocked CA key (in its
 * device session); other gmca processes send it the DER TBS of what they
 * want signed over a local Unix socket and get the SM2 signature back.
 *
 * The engine signs only what names its CA as issuer: a TBSCertificate
 * (or an OCSP ResponseData it checked, op 'O') whose signature algorithm is
 * SM2-with-SM3 and whose issuer Name is byte-for-byte the CA's subject. A
 * key kept only for CRLs (superseded at rollover, CPS §6.8 rule 2) signs no
 * certificate. It computes Z and the digest itself, so no caller can have
 * it sign an arbitrary digest. CRLs it makes itself (op 'C'): a caller
 * chooses when, never what — the revoked set, cRLNumber, thisUpdate and
 * nextUpdate are the engine's — so a compromised front cannot have a CRL
 * signed that leaves out a revocation.
 *
 * Socket: <dir>/run/engine.sock, directory 0700, socket 0600, and each
 * peer's uid is checked (SO_PEERCRED) against the engine's own.
 *
 * Wire format (both directions): 4-byte big-endian length, then payload,
 * at most GMCA_ENGINE_FRAME_MAX bytes.
 *   request  := op(1) body
 *     'S' sign:       u16 namelen, name, tbs (rest of the frame)
 *     'T' sign with the custodians' authorisation:
 *                     u16 namelen, name, mac(32), tbs (rest of the frame);
 *                     mac = HMAC-SM3(K_authz, tbs)
 *     'O' sign an OCSP ResponseData with the CA key itself (CA-signed OCSP):
 *                     u16 namelen, name, DER ResponseData (rest of the frame);
 *                     signed only if every claim in it is the store's
 *                     (ca_ocsp.h gmca_ca_ocsp_check), else refused and audited
 *     'C' make CRLs: u16 namelen, name, kind(1), flags(1), u32 arg,
 *                     u16 actorlen, actor (printable ASCII, who asks: recorded
 *                     in the audit detail as requested_by, never trusted);
 *                     the engine builds them from its own store with its own
 *                     clock and configuration (ca.c):
 *                     kind 'F' the next complete CRL of CA name (and a fresh
 *                       delta beside it when delta CRLs are configured); arg:
 *                       hours of validity, 0 the configured crl_hours, else
 *                       1..744 (CPS §3.9.10); flags 0
 *                     kind 'D' the next delta CRL of CA name; arg 0, flags 0
 *                     kind 'P' one pass of the CRL schedule over every CA
 *                       (name "*"); arg: the interval in seconds, 0 the
 *                       configured one, bounded by the engine to crl_hours
 *                       and GMCA_CRL_INTERVAL_MAX; flags bit 0: force
 *                     At most one CRL of each kind per CA per second: a
 *                     request in the same second as the last waits for the
 *                     next (the engine's clock), so no caller burns cRLNumbers
 *                     faster. Sent with 'S' or 'T', a TBSCertList is refused.
 *     'R' RA request: u32 paylen, payload, signature (rest of the frame):
 *                     DER SM2 signature (ID 1234567812345678) over payload
 *                     by the RA communication key; payload below
 *     'L' list:       (empty)        -> names of the CAs it signs for
 *     'D' deactivate: (empty)        -> wipes keys and exits after answering
 *   response := status(1) body
 *     0 ok:    sign: DER SM2Signature; list: names separated by '\n';
 *              CRL 'F'/'D': number, base_number, this_update, next_update,
 *              entries (5 x i64, big-endian); 'P': made, next_due (2 x i64),
 *              then i32 gmca_err of the first CA that failed (0: none) and
 *              its message (rest of the frame);
 *              RA issue: the serial (hex); RA seal/unseal: the output bytes
 *     1 error: i32 gmca_err (big-endian), message (UTF-8, rest of frame)
 *
 * RA payload (all ASCII up to the arguments, lines ended by '\n'):
 *   gmca-ra-v1
 *   SERIAL      the RA certificate's serial, upper-case hex
 *   TIME        Unix seconds, decimal
 *   NONCE       32 lower-case hex digits, never reused
 *   SUBOP       issue | seal | unseal | ocsp | recover | revoke | disable
 *   ARGS        issue: the application id (decimal, no final '\n');
 *               recover: the key recovery id, the same way (ra.h
 *               gmca_ra_recover_approved); the reply is empty;
 *               revoke: the revocation request id, the same way (ra.h
 *               gmca_ra_revoke_approved); the reply is empty;
 *               disable: operator name '\n' the super admin's signed request
 *               (auth.h proof, the rest): the operator disabled and its
 *               certificate revoked (gmca_operator_disable_signed); the
 *               reply is empty;
 *               ocsp: CA name '\n' seconds '\n' CSR DER (the rest): a
 *               delegated OCSP responder certificate (ca_ocsp.h); seconds
 *               0 for the profile's validity, else 30..the profile's (a
 *               test front asks for short ones); the reply is its DER;
 *               seal/unseal: aad '\n' value (the rest, any bytes)
 * seal output (unseal input): IV(12) || SM4-GCM ciphertext || tag(16), aad bound.
 *
 * Keys (derived at activation, kept in secure memory, wiped at exit):
 *   K_authz = HMAC-SM3(master key, "gmca engine authorisation v1")
 *   K_pii   = first 16 bytes of HMAC-SM3(key PIN, "gmca pii key v1")
 *   K_op    = HMAC-SM3(key PIN, "gmca operator record v1"): the operator
 *             records' tags (auth.h), checked before an RA issue
 * The key PIN survives custodian changes, so sealed values stay readable
 * and operator records stay valid.
 */
#ifndef GMCA_ENGINE_H
#define GMCA_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "signer.h"
#include "store.h"

#define GMCA_ENGINE_SOCKET "run/engine.sock" /* relative to the state directory */
#define GMCA_ENGINE_FRAME_MAX ((64u << 20) + 1024)
#define GMCA_ENGINE_NAME_MAX 64

/* What the engine signs with, one entry per CA. Borrowed for the serve call. */
struct gmca_engine_key {
        const char *name; /* CA name */
        const struct gmca_signer *signer;
        const uint8_t *subject_der; /* the CA certificate's subject Name, DER */
        size_t subject_len;
        int crl_only; /* 1: sign CRLs only (superseded key) */
};

#define GMCA_ENGINE_AUTHZ_LEN 32   /* K_authz, and the MAC of a 'T' request */
#define GMCA_ENGINE_PII_KEY_LEN 16 /* K_pii, an SM4 key */
#define GMCA_ENGINE_RA_MAGIC "gmca-ra-v1"
#define GMCA_ENGINE_NONCE_HEX 32                        /* hex digits of an RA request's nonce */
#define GMCA_ENGINE_AAD_MAX 255                         /* bytes of a seal's aad: printable ASCII */
#define GMCA_ENGINE_SEAL_MAX 4096                       /* bytes of a value to seal */
#define GMCA_ENGINE_RA_MAX (GMCA_ENGINE_SEAL_MAX + 512) /* bytes of an RA payload */
#define GMCA_ENGINE_ACTOR_MAX 256     /* bytes of the actor of a 'C' request, with its NUL */
#define GMCA_ENGINE_CRL_ALL "*"       /* the name of a 'C' 'P' request: every CA */
#define GMCA_ENGINE_CRL_HOURS_MAX 744 /* hours of a 'C' 'F' request (CPS §3.9.10) */

/* Op 'C': what CRLs to make (wire format above). */
enum gmca_engine_crl_kind {
        GMCA_ENGINE_CRL_FULL = 'F',
        GMCA_ENGINE_CRL_DELTA = 'D',
        GMCA_ENGINE_CRL_PASS = 'P'
};
struct gmca_engine_crl_req {
        char kind;                         /* enum gmca_engine_crl_kind */
        int force;                         /* 'P': every CA now, due or not */
        uint32_t arg;                      /* 'F': hours, 'P': seconds; 0 the configured value */
        char actor[GMCA_ENGINE_ACTOR_MAX]; /* who asks, for the audit detail */
};
/* What op 'C' made. */
struct gmca_engine_crl_res {
        int64_t number, base_number, this_update, next_update, entries; /* 'F' (complete), 'D' */
        int64_t made, next_due; /* 'P': CRLs made; when one falls due again */
};

/* One audit record the engine wants written (strings borrowed for the call). */
struct gmca_engine_audit {
        const char *event; /* engine.request, engine.sign */
        const char *actor; /* "engine", or "ra:<serial>" */
        int success;
        const char *object;
        const char *detail; /* compact JSON */
};

/*
 * What the engine may do beyond signing CRLs, and how it reaches the CA's
 * records. Borrowed for the serve call. NULL policy: CRLs only.
 */
struct gmca_engine_policy {
        int direct_issue;         /* 1: sign a TBSCertificate sent with 'S' (custodians allowed
                                     it at activation) */
        const uint8_t *authz_key; /* GMCA_ENGINE_AUTHZ_LEN bytes; NULL: 'T' refused */
        const uint8_t *pii_key;   /* GMCA_ENGINE_PII_KEY_LEN bytes; NULL: seal refused */
        /* The certificate of serial if it is an RA's current one (gmca_ra_cert_check);
         * *cert: caller frees. NULL: 'R' refused. */
        int (*ra_cert)(void *arg, const char *serial, X509 **cert, struct gmca_error *e);
        /* Issue approved application app_id (gmca_ra_issue_approved). NULL: refused. */
        int (*ra_issue)(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                        struct gmca_error *e);
        /* Carry out approved key recovery id (gmca_ra_recover_approved). NULL: refused. */
        int (*ra_recover)(void *arg, int64_t id, struct gmca_error *e);
        /* Carry out RA revocation request id (gmca_ra_revoke_approved). NULL: refused. */
        int (*ra_revoke)(void *arg, int64_t id, struct gmca_error *e);
        /* Disable operator name on a super admin's signed request proof (auth.h
         * gmca_operator_disable_signed). NULL: refused. */
        int (*op_disable)(void *arg, const char *name, const uint8_t *proof, size_t len,
                          struct gmca_error *e);
        /* RA SUBOP ocsp: issue a delegated responder certificate of CA ca
         * (gmca_ca_ocsp_issue); *der caller frees (OPENSSL_free). NULL: refused. */
        int (*ocsp_issue)(void *arg, const char *ca, const uint8_t *csr, size_t len,
                          int64_t seconds, const char *actor, uint8_t **der, size_t *derlen,
                          struct gmca_error *e);
        /* Op 'O': 0 if CA ca may sign ResponseData rd (gmca_ca_ocsp_check). NULL: refused. */
        int (*ocsp_check)(void *arg, const char *ca, const uint8_t *rd, size_t len,
                          struct gmca_error *e);
        /* Op 'C': make the CRLs of q for CA ca (GMCA_ENGINE_CRL_ALL for a pass)
         * from the store, with the engine's clock and configuration (ca.c
         * ca_engine_crl); for a pass *res is filled even when one CA failed
         * (the error is the first failure). NULL: refused. */
        int (*crl)(void *arg, const char *ca, const struct gmca_engine_crl_req *q,
                   struct gmca_engine_crl_res *res, struct gmca_error *e);
        /* Write n records in one transaction. Called only after the reply that
         * caused them is sent (the client may hold the store's write lock
         * until it has its signature); records that fail stay queued and
         * are tried again. NULL: not audited (tests). */
        int (*audit)(void *arg, const struct gmca_engine_audit *recs, size_t n,
                     struct gmca_error *e);
        /* Called about once a second while serving, between requests (background
         * work of the engine's own, e.g. telling the KM of revocations). NULL: none. */
        void (*idle)(void *arg);
        void *arg;
};

/*
 * Serve on sock_path until a deactivate request, SIGTERM or SIGINT. Writes
 * one byte to ready_fd (if >= 0) once listening, then closes it. Removes the
 * socket on return. A stale socket with nobody listening is replaced; a live
 * one is GMCA_ERR_EXISTS ("already activated"). Connections are served one
 * request at a time; one that makes no progress for a while is closed.
 */
int gmca_engine_serve(const char *sock_path, const struct gmca_engine_key *keys, size_t n,
                      const struct gmca_engine_policy *policy, int ready_fd,
                      struct gmca_error *e) GMCA_WUR;

/* Parsed request (pointers into the frame). Exposed for the fuzz target. */
struct gmca_engine_request {
        char op;
        char name[GMCA_ENGINE_NAME_MAX];
        const uint8_t *tbs; /* 'S', 'T' */
        size_t tbs_len;
        const uint8_t *mac;     /* 'T': GMCA_ENGINE_AUTHZ_LEN bytes */
        const uint8_t *payload; /* 'R' */
        size_t payload_len;
        const uint8_t *sig; /* 'R' */
        size_t sig_len;
        struct gmca_engine_crl_req crl; /* 'C' */
};
int gmca_engine_parse_request(const uint8_t *buf, size_t len, struct gmca_engine_request *r,
                              struct gmca_error *e) GMCA_WUR;

enum gmca_engine_subop {
        GMCA_RA_OP_ISSUE = 1,
        GMCA_RA_OP_SEAL,
        GMCA_RA_OP_UNSEAL,
        GMCA_RA_OP_OCSP,
        GMCA_RA_OP_RECOVER,
        GMCA_RA_OP_REVOKE,
        GMCA_RA_OP_DISABLE
};

/* A parsed RA payload (pointers into it). Exposed for the fuzz target. */
struct gmca_engine_ra_req {
        char serial[GMCA_SERIAL_HEX_MAX];
        int64_t time;
        char nonce[GMCA_ENGINE_NONCE_HEX + 1];
        enum gmca_engine_subop subop;
        int64_t app_id; /* issue; recover: the recovery id; revoke: the revocation request id */
        char aad[GMCA_ENGINE_AAD_MAX + 1]; /* seal, unseal */
        const uint8_t *value;              /* seal, unseal; ocsp: the CSR */
        size_t value_len;
        char ca[GMCA_ENGINE_NAME_MAX];      /* ocsp */
        int64_t seconds;                    /* ocsp: 0 the profile's validity */
        char op_name[GMCA_ENGINE_NAME_MAX]; /* disable: the operator; value: the signed request */
};
/* Strict: GMCA_ERR_INVALID naming the line at fault, GMCA_ERR_LIMIT over the caps. */
int gmca_engine_parse_ra(const uint8_t *p, size_t n, struct gmca_engine_ra_req *r,
                         struct gmca_error *e) GMCA_WUR;

/*
 * Check that tbs is a DER TBSCertificate or TBSCertList with the SM2-with-SM3
 * algorithm and issuer == subject_der. *is_cert tells which (the engine
 * signs no TBSCertList it is sent: CRLs are op 'C'). GMCA_ERR_POLICY
 * (wrong issuer, wrong algorithm) or GMCA_ERR_INVALID (not DER) otherwise.
 */
int gmca_engine_check_tbs(const uint8_t *tbs, size_t len, const uint8_t *subject_der,
                          size_t subject_len, int *is_cert, struct gmca_error *e) GMCA_WUR;

struct gmca_engine_client;

/* Connect; no engine listening is GMCA_ERR_STATE ("CA not activated: ..."). */
struct gmca_engine_client *gmca_engine_connect(const char *sock_path, struct gmca_error *e);
void gmca_engine_disconnect(struct gmca_engine_client *c);

/*
 * A client is one connection: not safe to share between threads (give each
 * thread its own). Calls on different clients may run at the same time.
 */
int gmca_engine_sign(struct gmca_engine_client *c, const char *ca, const uint8_t *tbs, size_t len,
                     uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e) GMCA_WUR;
/* 'T': the same with the custodians' authorisation key (K_authz). */
int gmca_engine_sign_authorised(struct gmca_engine_client *c, const char *ca,
                                const uint8_t authz[GMCA_ENGINE_AUTHZ_LEN], const uint8_t *tbs,
                                size_t len, uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen,
                                struct gmca_error *e) GMCA_WUR;
/* Names of the CAs the engine signs for, '\n'-separated, NUL-terminated in buf. */
int gmca_engine_list(struct gmca_engine_client *c, char *buf, size_t len,
                     struct gmca_error *e) GMCA_WUR;
int gmca_engine_deactivate(struct gmca_engine_client *c, struct gmca_error *e) GMCA_WUR;

/* 'O': the SM2 signature of CA ca over ResponseData rd, if the engine finds it true. */
int gmca_engine_sign_ocsp(struct gmca_engine_client *c, const char *ca, const uint8_t *rd,
                          size_t len, uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen,
                          struct gmca_error *e) GMCA_WUR;

/*
 * 'C': have the engine make CRLs of CA ca (GMCA_ENGINE_CRL_ALL for kind
 * 'P'). For 'P' *res is filled also when the engine reports that a CA
 * failed; the return value is then that CA's error.
 */
int gmca_engine_crl(struct gmca_engine_client *c, const char *ca,
                    const struct gmca_engine_crl_req *q, struct gmca_engine_crl_res *res,
                    struct gmca_error *e) GMCA_WUR;

/* A signer that forwards to the engine for CA `ca` (copied); with authz ('T') if set. */
struct gmca_engine_signer {
        struct gmca_signer base;
        struct gmca_engine_client *client;
        char ca[GMCA_ENGINE_NAME_MAX];
        const uint8_t *authz; /* K_authz (borrowed) or NULL; set after init */
};
void gmca_engine_signer_init(struct gmca_engine_signer *s, struct gmca_engine_client *c,
                             const char *ca);

/*
 * ---- requests from the RA front (issue 4; the CA engine's side of the
 * trust boundary of DESIGN.md) ----
 *
 * The front holds no CA key. What it asks of the engine it signs with the
 * RA communication key (CPS §7.1.1 item 2; ca_ra.c): the engine accepts a
 * request only under the current certificate of an RA (gmca_ra_cert_check),
 * within GMCA_AUTH_SKEW seconds of its clock and with a nonce it has not
 * seen, and audits every refusal (engine.request). Operations:
 *   issue   an approved application: the engine checks the approvals
 *           again from the store (gmca_ra_check_approvals) and issues
 *           (gmca_ra_issue_approved) — never a TBS the front built;
 *   seal / unseal  a sensitive field under the engine's PII key (SM4-GCM,
 *           the key derived at activation; ra.h gmca_pii_sealer).
 * A TBSCertificate sent with the plain 'S' op is signed only when the
 * custodians allowed it: at activation (gmca activate --direct-issue,
 * audited) or per request with the authorisation of gmca_ctx_authorise.
 * CRLs the engine makes itself ('C'), and OCSP ResponseData ('O') it has
 * checked against the store, are made for any local peer; a TBSCertList
 * is never signed as sent, whatever the op.
 */
struct gmca_engine_ra {
        struct gmca_engine_client *client; /* one per thread: a client is not thread-safe */
        EVP_PKEY *key;                     /* the RA communication private key (borrowed) */
        X509 *cert;                        /* its certificate (borrowed) */
};

/* Issue approved application app_id; *serial receives the new certificate's serial. */
int gmca_engine_ra_issue(struct gmca_engine_ra *ra, int64_t app_id,
                         char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e) GMCA_WUR;
/*
 * A delegated OCSP responder certificate of CA ca for csr (DER); seconds 0:
 * the profile's validity. *der: the certificate (malloc'd, caller frees).
 */
int gmca_engine_ra_ocsp(struct gmca_engine_ra *ra, const char *ca, const uint8_t *csr, size_t len,
                        int64_t seconds, uint8_t **der, size_t *derlen,
                        struct gmca_error *e) GMCA_WUR;
/* Seal or unseal (unseal = 1) n bytes bound to aad; *out malloc'd. */
int gmca_engine_ra_seal(struct gmca_engine_ra *ra, int unseal, const char *aad, const uint8_t *in,
                        size_t n, uint8_t **out, size_t *outlen, struct gmca_error *e) GMCA_WUR;
/* The ra.h callbacks over an engine connection (arg: a struct gmca_engine_ra *). */
struct gmca_pii_sealer;
void gmca_engine_ra_sealer(struct gmca_engine_ra *ra, struct gmca_pii_sealer *out);
int gmca_engine_ra_issue_cb(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                            struct gmca_error *e);
/* Carry out approved key recovery id (SUBOP recover); and as ra.h's env->recover. */
int gmca_engine_ra_recover(struct gmca_engine_ra *ra, int64_t id, struct gmca_error *e) GMCA_WUR;
int gmca_engine_ra_recover_cb(void *arg, int64_t id, struct gmca_error *e);
/* Carry out RA revocation request id (SUBOP revoke, gmca_ra_revoke_approved); env->revoke. */
int gmca_engine_ra_revoke(struct gmca_engine_ra *ra, int64_t id, struct gmca_error *e) GMCA_WUR;
/* Disable operator name on the signed request proof (SUBOP disable). */
int gmca_engine_ra_disable(struct gmca_engine_ra *ra, const char *name, const uint8_t *proof,
                           size_t len, struct gmca_error *e) GMCA_WUR;

#endif
