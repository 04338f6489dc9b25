/*
 * engine: the CA engine process of DESIGN.md's CA core zone. After
 * activation it is the only process that holds an unlocked CA key (in its
 * device session); other gmca processes send it the DER TBS of what they
 * want signed over a local Unix socket and get the SM2 signature back.
 *
 * The engine signs only what names its CA as issuer: a TBSCertificate or a
 * TBSCertList (later an OCSP ResponseData) whose signature algorithm is
 * SM2-with-SM3 and whose issuer Name is byte-for-byte the CA's subject. A
 * key kept only for CRLs (superseded at rollover, CPS §6.8 rule 2) signs no
 * certificate. It computes Z and the digest itself, so no caller can have
 * it sign an arbitrary digest.
 *
 * Socket: <dir>/run/engine.sock, directory 0700, socket 0600, and each
 * peer's uid is checked (SO_PEERCRED) against the engine's own.
 *
 * Wire format (both directions): 4-byte big-endian length, then payload,
 * at most GMCA_ENGINE_FRAME_MAX bytes.
 *   request  := op(1) body
 *     'S' sign:       u16 namelen, name, tbs (rest of the frame)
 *     'L' list:       (empty)        -> names of the CAs it signs for
 *     'D' deactivate: (empty)        -> wipes keys and exits after answering
 *   response := status(1) body
 *     0 ok:    sign: DER SM2Signature; list: names separated by '\n'
 *     1 error: i32 gmca_err (big-endian), message (UTF-8, rest of frame)
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

/*
 * Serve on sock_path until a deactivate request, SIGTERM or SIGINT. Writes
 * one byte to ready_fd (if >= 0) once listening, then closes it. Removes the
 * socket on return. A stale socket with nobody listening is replaced; a live
 * one is GMCA_ERR_EXISTS ("already activated").
 */
int gmca_engine_serve(const char *sock_path, const struct gmca_engine_key *keys, size_t n,
                      int ready_fd, struct gmca_error *e) GMCA_WUR;

/* Parsed request (pointers into the frame). Exposed for the fuzz target. */
struct gmca_engine_request {
        char op;
        char name[GMCA_ENGINE_NAME_MAX];
        const uint8_t *tbs;
        size_t tbs_len;
};
int gmca_engine_parse_request(const uint8_t *buf, size_t len, struct gmca_engine_request *r,
                              struct gmca_error *e) GMCA_WUR;

/*
 * Check that tbs is a DER TBSCertificate or TBSCertList with the SM2-with-SM3
 * algorithm and issuer == subject_der. *is_cert tells which. GMCA_ERR_POLICY
 * (wrong issuer, wrong algorithm) or GMCA_ERR_INVALID (not DER) otherwise.
 */
int gmca_engine_check_tbs(const uint8_t *tbs, size_t len, const uint8_t *subject_der,
                          size_t subject_len, int *is_cert, struct gmca_error *e) GMCA_WUR;

struct gmca_engine_client;

/* Connect; no engine listening is GMCA_ERR_STATE ("CA not activated: ..."). */
struct gmca_engine_client *gmca_engine_connect(const char *sock_path, struct gmca_error *e);
void gmca_engine_disconnect(struct gmca_engine_client *c);

int gmca_engine_sign(struct gmca_engine_client *c, const char *ca, const uint8_t *tbs, size_t len,
                     uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e) GMCA_WUR;
/* Names of the CAs the engine signs for, '\n'-separated, NUL-terminated in buf. */
int gmca_engine_list(struct gmca_engine_client *c, char *buf, size_t len,
                     struct gmca_error *e) GMCA_WUR;
int gmca_engine_deactivate(struct gmca_engine_client *c, struct gmca_error *e) GMCA_WUR;

/* A signer that forwards to the engine for CA `ca` (copied). */
struct gmca_engine_signer {
        struct gmca_signer base;
        struct gmca_engine_client *client;
        char ca[GMCA_ENGINE_NAME_MAX];
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
 * CRLs (and, later, OCSP responses) are signed for any local peer.
 */
struct gmca_engine_ra {
        struct gmca_engine_client *client;
        EVP_PKEY *key; /* the RA communication private key (borrowed) */
        X509 *cert;    /* its certificate (borrowed) */
};

/* Issue approved application app_id; *serial receives the new certificate's serial. */
int gmca_engine_ra_issue(struct gmca_engine_ra *ra, int64_t app_id,
                         char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e) GMCA_WUR;
/* Seal or unseal (unseal = 1) n bytes bound to aad; *out malloc'd. */
int gmca_engine_ra_seal(struct gmca_engine_ra *ra, int unseal, const char *aad, const uint8_t *in,
                        size_t n, uint8_t **out, size_t *outlen, struct gmca_error *e) GMCA_WUR;
/* The ra.h callbacks over an engine connection (arg: a struct gmca_engine_ra *). */
struct gmca_pii_sealer;
void gmca_engine_ra_sealer(struct gmca_engine_ra *ra, struct gmca_pii_sealer *out);
int gmca_engine_ra_issue_cb(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                            struct gmca_error *e);

#endif
