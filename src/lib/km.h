/*
 * km: the key management centre (KM, 密钥管理中心) of the dual-certificate
 * system (CPS §3.10, §6.1.1, §7.1.1 item 3, §7.2.1.4, §7.3.2), and the CA's
 * link to it.
 *
 * The KM is its own process with its own directory, database and master key
 * (3-of-5 custodians, custody.h, like the CA's), reachable only by the CA
 * engine over a local socket (DESIGN.md trust zones). For each encryption
 * certificate the CA is about to issue it generates an SM2 key pair,
 * escrows the private key encrypted under its master key, and returns the
 * public key with the pair sealed to the subscriber's *signature* public
 * key (envelope.h): it never returns a private key in clear, never sees a
 * signature private key, and serves only requests signed by the one CA
 * KM-communication certificate it was told to trust (kmproto.h).
 *
 * KM directory (--km-dir, default ./var/gmca-km), everything private 0600:
 *   km.json          name, custody set (custody.h), socket path, state
 *   km.db            its store (store.h: the km_keys and km_tasks tables and
 *                    its own audit chain)
 *   keys/km.key      the KM's signing key, encrypted under
 *                    HMAC-SM3(master, "gmca km signing key v1")
 *   certs/km.crt     the KM's certificate (profile km, issued by the CA)
 *   certs/ca.crt     the CA certificate; certs/ca-comm.crt the CA's
 *                    KM-communication certificate, the only requester
 *   run/km.sock      the socket while serving (directory 0700, socket 0600,
 *                    peer uid checked like the CA engine's)
 * Wire: 4-byte big-endian length, then a DER CARequest; the answer is a
 * DER KMRespond the same way. At most GMCA_KM_MSG_MAX bytes.
 *
 * Escrow (km_keys): per encryption certificate serial: the public key,
 * the private key under SM4-GCM with K_escrow = first 16 bytes of
 * HMAC-SM3(master, "gmca km escrow v1") and the CA name and serial as AAD,
 * the subject, notBefore/notAfter, state (active, revoked, expired,
 * destroyed), the retention date (notAfter + 10 years, §7.2.1.4), and the
 * task that created it. Destroying a key (past its retention, three
 * custodians) removes the ciphertext and keeps the row. Every request,
 * answer and refusal is on the KM's audit chain: apply, restore (with the
 * restoreInfo of who asked and why), revoke, destroy.
 *
 * Replay: a request's taskNO must be new for that CA (km_tasks) and its
 * time within GMCA_KM_SKEW of the KM's clock; the answer echoes taskNO and
 * is signed by the KM, and the CA checks both and the KM's certificate.
 */
#ifndef GMCA_KM_H
#define GMCA_KM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "custody.h"
#include "err.h"
#include "kmproto.h"
#include "store.h"

#define GMCA_KM_RETENTION_YEARS 10 /* escrowed keys kept after expiry, §7.2.1.4 */

/* ---- the KM's side ---- */

struct gmca_km; /* an activated KM: its store, K_escrow, signing key, trusted certificates */

/*
 * Open the KM in dir with `threshold` custodians' shares and PINs (the
 * master key is rebuilt, checked and kept in secure memory; the signing
 * key decrypted). Audited (km.activate), refusals too. GMCA_ERR_STATE if
 * the KM has not been given its certificates yet (gmca km trust).
 */
struct gmca_km *gmca_km_open(const char *dir, const struct gmca_custodian *cust, size_t n,
                             struct gmca_error *e);
void gmca_km_close(struct gmca_km *k); /* wipes every secret */

/*
 * Answer one DER CARequest: *resp is a DER KMRespond (OPENSSL_malloc'd) —
 * keys, or an errorPkgRespond per item the KM refuses — whenever the
 * request is well-formed and signed by the trusted CA; each item is one
 * transaction with its audit record. A request that is malformed, not
 * signed by the trusted CA, replayed or out of time gets no answer: an
 * error return (audited as km.request), the caller closes the connection.
 */
int gmca_km_handle(struct gmca_km *k, const uint8_t *req, size_t len, uint8_t **resp,
                   size_t *resp_len, struct gmca_error *e) GMCA_WUR;

/* Serve the socket until *stop is set (SIGTERM); one connection at a time is enough. */
int gmca_km_serve(struct gmca_km *k, const char *sock_path, volatile sig_atomic_t *stop,
                  struct gmca_error *e) GMCA_WUR;

/*
 * Administration (gmca km): the KM directory's ceremonies and records.
 * Each is audited on the KM's chain, refusals too.
 */
struct gmca_km_init_params {
        const char *subject;                     /* DN of the KM's CSR (x509.h gmca_dn_parse) */
        const struct gmca_custodian *custodians; /* names, PINs, share paths to write */
        size_t ncustodians;                      /* 5 */
        unsigned threshold;                      /* 0: 3 */
        const char *actor;
        /* NULL: km.db in dir; else a postgresql:// URI (no password) of an empty database
         * of the KM's own, kept in km.json. */
        const char *database;
};
/*
 * Create dir (which must not exist or be empty): the master key split to
 * the custodians, km.json, km.db, keys/km.key; *csr (DER PKCS#10 of the
 * KM's signing key, OPENSSL_malloc'd) is for the CA to certify (profile km).
 */
int gmca_km_init(const char *dir, const struct gmca_km_init_params *p, uint8_t **csr,
                 size_t *csr_len, struct gmca_error *e) GMCA_WUR;

/*
 * With the custodians present: install the KM's certificate (its key must
 * be the KM's, chaining to ca), the CA certificate and the CA's
 * KM-communication certificate (chaining to ca, the only requester). The
 * three are bound to the master key by a MAC in km.json, checked at open.
 */
int gmca_km_trust(const char *dir, const struct gmca_custodian *cust, size_t n, X509 *km_cert,
                  X509 *ca_cert, X509 *comm_cert, const char *actor, struct gmca_error *e) GMCA_WUR;

/* The KM's store URI: km.json's "database", else the path of <dir>/km.db. */
int gmca_km_store_uri(const char *dir, char *out, size_t len, struct gmca_error *e) GMCA_WUR;

/* The KM's store (km.db) without custodians: for list, expire, audit. */
struct gmca_store *gmca_km_store_open(const char *dir, struct gmca_error *e);

/* One escrowed key as listed: no secret. */
struct gmca_km_key_info {
        char serial[41]; /* upper-case hex */
        char ca[256];
        char subject[256];
        char state[16]; /* active, revoked, expired, destroyed */
        int64_t not_before, not_after, retain_until, created, state_time;
        char task_no[24];
        int escrowed; /* 1 while the encrypted private key is held */
};
/* Keys in serial order, state NULL for all. A non-zero return from cb stops and is returned. */
int gmca_km_list(struct gmca_store *s, const char *state,
                 int (*cb)(const struct gmca_km_key_info *, void *), void *arg,
                 struct gmca_error *e) GMCA_WUR;
/* Mark active keys past notAfter at `now` expired (audited when any changes); *count of them. */
int gmca_km_expire(struct gmca_store *s, int64_t now, const char *actor, int64_t *count,
                   struct gmca_error *e) GMCA_WUR;
/*
 * Destroy an escrowed key (serial hex) of an opened KM: only once `now`
 * is past its retention date (GMCA_ERR_POLICY before), never twice
 * (GMCA_ERR_STATE). The ciphertext is removed; the row stays.
 */
int gmca_km_destroy(struct gmca_km *k, const char *serial, int64_t now, const char *actor,
                    struct gmca_error *e) GMCA_WUR;
/* The store of an opened KM (borrowed). */
struct gmca_store *gmca_km_store(struct gmca_km *k);

/* ---- the CA's side ---- */

/*
 * The CA's link to its KM, in the CA directory (written by `gmca km link`
 * with the CA's custodians present):
 *   km/km.json   {"socket": PATH}
 *   km/km.crt    the KM's certificate, pinned: the only signer of answers
 *   km/comm.crt  the CA's KM-communication certificate (profile km-comm)
 *   km/comm.key  its key, encrypted with the passphrase
 *                hex(HMAC-SM3(key PIN, "gmca km comm key v1")), so only an
 *                activated CA (the engine) can use it
 */
struct gmca_km_link;
struct gmca_ctx;

/*
 * The link of an activated CA context (its key PIN in hand). NULL with
 * GMCA_ERR_NOTFOUND when the CA has no KM, or another error.
 */
struct gmca_km_link *gmca_ca_km_link(struct gmca_ctx *c, struct gmca_error *e);

/*
 * `gmca km link`: with `threshold` of the CA's custodians (cust, n;
 * authorised like gmca_ctx_authorise, through the CA engine if it runs),
 * check that km_cert (PEM or DER) is a certificate this CA issued under
 * profile km, valid and not revoked; generate the CA's KM-communication
 * key, issue its certificate (profile km-comm, from the default CA) and
 * write the four files above (GMCA_ERR_EXISTS if <dir>/km exists).
 * comm_path receives the path of km/comm.crt. Audited (km.link), refusals
 * too; on failure nothing is left (an issued comm certificate is revoked).
 * The engine opens the link (gmca_ca_km_link) while it holds the key PIN,
 * i.e. after activation and before gmca_ctx_forget_secrets.
 */
int gmca_ca_km_link_create(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                           const uint8_t *km_cert, size_t km_cert_len, const char *sock_path,
                           char comm_path[4096], struct gmca_error *e) GMCA_WUR;
void gmca_km_link_close(struct gmca_km_link *l);

/*
 * One round trip each, checked: the answer parses, is signed by the pinned
 * KM certificate, echoes the task number, is within GMCA_KM_SKEW, and
 * answers the cert_no asked; for keys, ret_pub is the envelope's public
 * key. An errorPkgRespond becomes GMCA_ERR_NOTFOUND / GMCA_ERR_STATE /
 * GMCA_ERR_EXISTS / GMCA_ERR_INVALID / GMCA_ERR_INTERNAL with the KM's
 * errDesc. A KM that cannot be reached is GMCA_ERR_IO ("km: unreachable").
 * out (freed by the caller with gmca_km_item_clear, kmproto.h) takes the answer.
 */
int gmca_km_apply(struct gmca_km_link *l, const uint8_t *cert_no, size_t cert_no_len,
                  EVP_PKEY *sig_pub, int64_t not_before, int64_t not_after, const char *user_name,
                  struct gmca_km_item *out, struct gmca_error *e) GMCA_WUR;
int gmca_km_restore(struct gmca_km_link *l, const uint8_t *cert_no, size_t cert_no_len,
                    EVP_PKEY *recipient, const char *info_json, struct gmca_km_item *out,
                    struct gmca_error *e) GMCA_WUR;
int gmca_km_revoke(struct gmca_km_link *l, const uint8_t *cert_no, size_t cert_no_len,
                   struct gmca_error *e) GMCA_WUR;

#endif
