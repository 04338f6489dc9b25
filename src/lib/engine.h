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

#include "err.h"
#include "signer.h"

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

#endif
