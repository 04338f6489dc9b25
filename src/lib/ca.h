/*
 * ca: the CA engine's business operations over one state directory —
 * creating the root and operational CA, activating a CA key, issuing,
 * revoking, generating CRLs. It ties the modules together and owns the rule
 * that each operation is one store transaction with its audit record, and
 * that every rejection is audited too.
 *
 * State directory layout (everything under one --dir):
 *   gmca.json             configuration (written at init)
 *   gmca.db               the store (SQLite)
 *   keys/device/          the software crypto device's key store (sealed keys)
 *   run/engine.sock       the CA engine's socket while activated
 *   certs/<ca>.pem        CA certificates
 *   crl/<ca>.crl          latest CRL (DER); crl/<ca>/<number>.crl every CRL
 *   profiles/NAME.json     certificate profiles in force
 */
#ifndef GMCA_CA_H
#define GMCA_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "custody.h"
#include "err.h"
#include "profile.h"
#include "store.h"

#define GMCA_CONFIG_FILE "gmca.json"
#define GMCA_DB_FILE "gmca.db"
#define GMCA_ACTOR_MAX 256

struct gmca_ctx;

struct gmca_init_params {
        const char *root_name;    /* default "root" */
        const char *root_dn;      /* required */
        int root_days;            /* 0: the root-ca profile's default */
        const char *sub_name;     /* default "sub" */
        const char *sub_dn;       /* required */
        int sub_days;             /* 0: the sub-ca profile's default */
        const char *base_url;     /* for CRL DP, AIA; default http://127.0.0.1:8080 */
        const char *policy_oid;   /* default anyPolicy 2.5.29.32.0 */
        const char *cps_uri;      /* default <base_url>/cps */
        const char *profiles_src; /* directory to copy profiles from */
        const char *actor;        /* who runs the ceremony */
        /* The key ceremony (CPS §7.1, §7.2.1.1): custodians receive the shares. */
        const struct gmca_custodian *custodians; /* names, PINs, share file paths */
        size_t ncustodians;                      /* 5 by default; 2..GMCA_CUSTODY_MAX */
        unsigned threshold;                      /* 0: 3 */
        const char *device_library;              /* NULL: the built-in software device */
        const char *device_config;               /* NULL: keys/device in the state directory */
};

/*
 * The key ceremony that creates a CA state directory: the device generates
 * the root and operational CA key pairs, a master key is generated and split
 * among the custodians (threshold of n, each share sealed under its
 * custodian's PIN, PINs checked against CPS §7.4.1 first), and the
 * certificates are made and recorded with audit records naming the
 * custodians. The CA keys are protected in the device by a random key PIN
 * that only the master key unwraps. Everything is built in a temporary
 * directory beside dir and renamed into place at the end, so an interrupted
 * init leaves nothing behind (share files written are removed again).
 * dir must not exist (or be empty).
 */
int gmca_ca_init(const char *dir, const struct gmca_init_params *p, struct gmca_error *e) GMCA_WUR;

/* Open an existing state directory. actor is recorded on every audit record. */
struct gmca_ctx *gmca_ctx_open(const char *dir, const char *actor, struct gmca_error *e);
/* Wipes any activated key. NULL is fine. */
void gmca_ctx_close(struct gmca_ctx *c);

struct gmca_store *gmca_ctx_store(struct gmca_ctx *c);
const char *gmca_ctx_dir(const struct gmca_ctx *c);
/* Name of the CA that issues by default (the operational CA). */
const char *gmca_ctx_default_ca(const struct gmca_ctx *c);

/*
 * Activate in this process with custodians' share files and PINs (any
 * threshold of them; cust[i].name is not used). The master key unwraps the
 * key PIN, which unlocks every CA key that may still sign; each is checked
 * against its certificate. The master key and key PIN stay in locked memory
 * of this context (ceremonies need them) until gmca_ctx_forget_secrets or
 * close. Audited (key.activate with the custodians' names, or the refusal):
 * too few shares, a wrong PIN, a share of another CA are GMCA_ERR_AUTH.
 */
int gmca_ctx_activate(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                      struct gmca_error *e) GMCA_WUR;

/* Wipe the master key and key PIN (the keys stay unlocked in the device). */
void gmca_ctx_forget_secrets(struct gmca_ctx *c);

/*
 * Sign through the running CA engine (engine.h) instead: GMCA_ERR_STATE
 * "CA not activated" when no engine listens on this state directory.
 */
int gmca_ctx_use_engine(struct gmca_ctx *c, struct gmca_error *e) GMCA_WUR;

/*
 * Be the CA engine: after gmca_ctx_activate, serve signatures on
 * <dir>/run/engine.sock until deactivated or signalled (see engine.h). The
 * keys are released before it returns. ready_fd: see gmca_engine_serve.
 */
int gmca_ctx_serve_engine(struct gmca_ctx *c, int ready_fd, struct gmca_error *e) GMCA_WUR;

/* Path of the engine socket of this state directory. */
int gmca_ctx_engine_path(const struct gmca_ctx *c, char *buf, size_t len,
                         struct gmca_error *e) GMCA_WUR;

/* Ask the running engine to wipe its keys and exit; audited (key.deactivate). */
int gmca_ctx_deactivate_engine(struct gmca_ctx *c, struct gmca_error *e) GMCA_WUR;

struct gmca_issue_req {
        const char *ca;      /* NULL: default CA */
        const char *profile; /* required */
        const uint8_t *csr;  /* DER or PEM */
        size_t csr_len;
        const char *info_json; /* subject info (private extensions, SAN); NULL: none */
        size_t info_len;
        int days; /* 0: profile default */
};

/*
 * Issue a certificate. The CA must be activated. On success *serial holds
 * the new serial and, if out is not NULL, *out the certificate (caller
 * frees). Rejections are audited and leave no other trace.
 */
int gmca_ca_issue(struct gmca_ctx *c, const struct gmca_issue_req *r,
                  char serial[GMCA_SERIAL_HEX_MAX], X509 **out, struct gmca_error *e) GMCA_WUR;

#define GMCA_ISSUE_BATCH_MAX 1024

struct gmca_issue_result {
        int rc;                           /* 0 issued, or why not */
        char serial[GMCA_SERIAL_HEX_MAX]; /* when issued */
        X509 *cert;                       /* when issued; caller frees */
        struct gmca_error err;            /* when not */
};

/*
 * Issue up to GMCA_ISSUE_BATCH_MAX requests with one store transaction
 * (group commit): each is checked and signed on its own, and each issued
 * certificate and each refusal still gets its own audit record. The result
 * of request i is in res[i]. Returns 0 once every request has its result;
 * nothing is reported issued that is not committed.
 */
int gmca_ca_issue_batch(struct gmca_ctx *c, const struct gmca_issue_req *r, size_t n,
                        struct gmca_issue_result *res, struct gmca_error *e) GMCA_WUR;

/*
 * Revoke by serial with an RFC 5280 reason (not removeFromCRL or
 * certificateHold: revocation here is permanent). invalidity: 0 for none.
 */
int gmca_ca_revoke(struct gmca_ctx *c, const char *serial, int reason, int64_t invalidity,
                   struct gmca_error *e) GMCA_WUR;

/*
 * Generate, store and publish the next CRL of CA `ca` (NULL: default).
 * next_hours: 0 means the configured interval (24 h by default). The CA
 * must be activated. out (may be NULL) receives the stored record.
 */
int gmca_ca_crl_generate(struct gmca_ctx *c, const char *ca, int next_hours,
                         struct gmca_crl_rec *out, struct gmca_error *e) GMCA_WUR;

/* Normalise a serial typed by a person ("0x", colons, lower case) to the
 * store's upper-case hex. -1 if it is not 1..40 hex digits. */
int gmca_serial_normalize(const char *in, char out[GMCA_SERIAL_HEX_MAX]);

/* Load a profile by name from the state directory's profiles. */
struct gmca_profile *gmca_ctx_profile(struct gmca_ctx *c, const char *name, struct gmca_error *e);

/* Record an audited failure that happened before the library was reached
 * (bad arguments at the command line are not audited; bad input is). */
int gmca_ctx_audit_failure(struct gmca_ctx *c, const char *event, const char *object,
                           const char *cause, struct gmca_error *e) GMCA_WUR;

#endif
