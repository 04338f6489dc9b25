/*
 * ca: the CA engine's business operations over one state directory —
 * creating the root and operational CA, activating a CA key, issuing,
 * revoking, generating CRLs. It ties the modules together and owns the rule
 * that each operation is one store transaction with its audit record, and
 * that every rejection is audited too.
 *
 * State directory layout (everything under one --dir):
 *   gmca.json             configuration (written at init)
 *   gmca.db               the store (SQLite), unless gmca.json names a PostgreSQL
 *                         "database" (gmca init --db postgresql://...)
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
        /* NULL: gmca.db in the state directory; else a postgresql:// URI without a
         * password (gmca_store_uri_check) of an existing database holding no CA yet. */
        const char *database;
        /* NULL: the front uses database too; else a postgresql:// URI of the same database
         * as a restricted role (store_roles.h), granted its rights here. Needs database. */
        const char *front_database;
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

/*
 * The store of the CA state directory dir, as gmca_store_open takes it:
 * gmca.json's "database" when set, else the path of <dir>/gmca.db. Every
 * process that opens a CA's store (the CLI, the CA engine, the front's
 * workers, OCSP and publishers) asks here. out holds len bytes (PATH_MAX is
 * enough). GMCA_ERR_NOTFOUND if dir is not a state directory.
 */
int gmca_ca_store_uri(const char *dir, char *out, size_t len, struct gmca_error *e) GMCA_WUR;

/*
 * The store of the service zone (the front, `gmca serve`): gmca.json's
 * "front_database" when set (PostgreSQL, a role that cannot change what the
 * CA engine signs; store_roles.h), else as gmca_ca_store_uri. The CA engine,
 * the KM link and every CLI ceremony use gmca_ca_store_uri.
 */
int gmca_ca_front_store_uri(const char *dir, char *out, size_t len, struct gmca_error *e) GMCA_WUR;

/* Open an existing state directory. actor is recorded on every audit record. */
struct gmca_ctx *gmca_ctx_open(const char *dir, const char *actor, struct gmca_error *e);
/* The same for the front's own uses (its CRL schedule): through gmca_ca_front_store_uri. */
struct gmca_ctx *gmca_ctx_open_front(const char *dir, const char *actor, struct gmca_error *e);
/*
 * Name the front's database role of a CA on PostgreSQL (store_roles.h):
 * checks front_uri, grants the role its rights and records it, audited (a
 * refusal too), then writes "front_database" into gmca.json. c must be
 * opened with gmca_ctx_open (the owner's connection).
 */
int gmca_ca_front_role(struct gmca_ctx *c, const char *front_uri, struct gmca_error *e) GMCA_WUR;
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

/*
 * Before gmca_ctx_activate: the CA engine this context serves will sign a
 * TBSCertificate for any local peer (gmca activate --direct-issue: the
 * custodians present allow CLI issuance for this run); the key.activate
 * record says "direct_issue": true. Off by default: then the engine signs
 * certificates only for approved applications (RA) or with the
 * custodians' authorisation (gmca_ctx_authorise).
 */
void gmca_ctx_set_direct_issue(struct gmca_ctx *c, int on);

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

/*
 * Custodian authorisation without a key ceremony (issue 4): the threshold of
 * custodians' shares and PINs (cust[i].name unused) open the master key,
 * from which the engine's authorisation key is derived. If the CA engine
 * runs, this context then signs through it (gmca_ctx_use_engine) and each
 * certificate it asks for carries that authorisation, which the engine
 * checks before signing a TBSCertificate it would otherwise refuse (an
 * engine not started with --direct-issue signs certificates only for
 * approved applications). If no engine runs, the keys are activated in this
 * process (gmca_ctx_activate). For operator certificates, RA communication
 * certificates and other certificates the custodians issue themselves.
 * Audited like an activation (key.activate, with the custodians' names, or
 * its refusal).
 */
int gmca_ctx_authorise(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                       struct gmca_error *e) GMCA_WUR;

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
        int days;          /* 0: profile default */
        int64_t not_after; /* 0: now + days; else exactly this end (a reissue, CPS §3.7) */
        /*
         * Only inside the CA (ca_issue_in_tx; gmca_ca_issue refuses them): the
         * encryption certificate of a dual pair is issued for the key the KM made
         * (km_pubkey) instead of the CSR's, for the CSR's subject, with the serial
         * and notBefore agreed with the KM beforehand.
         */
        EVP_PKEY *km_pubkey;
        const uint8_t *serial; /* GMCA_SERIAL_LEN bytes; NULL: random */
        int64_t not_before;    /* 0: now */
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

/*
 * A delta CRL (RFC 5280 §5.2.4) of CA `ca` against its latest complete CRL:
 * what was revoked since, valid for delta_crl_minutes and a quarter more,
 * published at crl/<ca>/delta.crl. GMCA_ERR_STATE when delta CRLs are not
 * configured (ca.json delta_crl_minutes) or the CA has no complete CRL. With
 * delta CRLs configured, every complete CRL names the delta's URL in
 * freshestCRL (and so do certificates, §4.2.1.15), and each complete CRL is
 * followed at once by a fresh delta against it.
 */
int gmca_ca_crl_generate_delta(struct gmca_ctx *c, const char *ca, struct gmca_crl_rec *out,
                               struct gmca_error *e) GMCA_WUR;

/* The longest CRL schedule interval, in seconds (CPS §3.9.10 caps nextUpdate at a month). */
#define GMCA_CRL_INTERVAL_MAX ((int64_t)744 * 3600)

/*
 * One pass of the CRL schedule (CPS §3.9.10, §4.4.2). For every CA whose
 * key may still sign CRLs (active, and superseded or compromised CAs for
 * what they issued), a CRL is generated when force is set, when the CA has
 * none yet, or when its latest CRL's nextUpdate is within interval/4 of now
 * or past. Each new CRL is valid for interval + interval/4 seconds, so it is
 * replaced every `interval` and a relying party never holds one past its
 * nextUpdate while the next is being published. interval: seconds,
 * 1..GMCA_CRL_INTERVAL_MAX; 0 means the configured crl_hours. Every
 * generation is audited (crl.generate, actor of c), and so is every
 * failure; a failure for one CA does not stop the others.
 * next_due (may be NULL): the earliest time a CRL falls due again (of the
 * CAs that did not fail; INT64_MAX if none). made (may be NULL): CRLs
 * generated. Returns 0, or the first failure's code with e filled.
 */
int gmca_ca_crl_refresh(struct gmca_ctx *c, int64_t interval, int force, int64_t *next_due,
                        size_t *made, struct gmca_error *e) GMCA_WUR;

/* Normalise a serial typed by a person ("0x", colons, lower case) to the
 * store's upper-case hex. -1 if it is not 1..40 hex digits. */
int gmca_serial_normalize(const char *in, char out[GMCA_SERIAL_HEX_MAX]);

/* Load a profile by name from the state directory's profiles. */
struct gmca_profile *gmca_ctx_profile(struct gmca_ctx *c, const char *name, struct gmca_error *e);

/* Record an audited failure that happened before the library was reached
 * (bad arguments at the command line are not audited; bad input is). */
int gmca_ctx_audit_failure(struct gmca_ctx *c, const char *event, const char *object,
                           const char *cause, struct gmca_error *e) GMCA_WUR;

/*
 * ---- key ceremonies with custodians present (CPS §6.8, §6.10.3, §7.2) ----
 *
 * Each takes `threshold` of the current custodians' shares and PINs (cust,
 * n; cust[i].name unused), runs in this process and is refused
 * (GMCA_ERR_STATE) while the CA engine runs on the state directory: keys are
 * changed offline, then the custodians activate again. Each is one store
 * transaction with its audit record naming the custodians present; a
 * refusal is audited too and leaves nothing changed.
 */

/*
 * Custodian change (§6.3.4, §7.2.1.1): a new master key re-wraps the key PIN
 * and is split among next[0..nnext) (names, PINs checked against §7.4.1,
 * share file paths that must not exist) with threshold (0: 3). The old
 * shares no longer open anything. Share files are written before the
 * commit and removed again if it fails. New PINs, names and share paths are
 * checked before any custodian is asked. Backups made earlier still open
 * with the shares of their time (make a new one, retire the old).
 */
int gmca_key_resplit(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                     const struct gmca_custodian *next, size_t nnext, unsigned threshold,
                     struct gmca_error *e) GMCA_WUR;

/*
 * CA key backup (§7.2.1.3, §7.1.2.5): one file at out_path (must not exist,
 * mode 0600) holding a consistent snapshot of the store, the configuration,
 * the profiles, the CA certificates and every CA key still in the device as
 * the device's sealed blob, all encrypted with SM4-GCM under a key derived
 * from the master key; its header (the share set's public facts, authenticated)
 * says which custodians can open it. No private key is ever in clear in it.
 * A backup stays openable by the share set current when it was made, and by
 * no other: a later resplit does not reach it. GMCA_ERR_STATE if the device
 * cannot export sealed keys. The format is in keybackup.h.
 */
int gmca_key_backup(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                    const char *out_path, struct gmca_error *e) GMCA_WUR;

struct gmca_restore_params {
        const char *archive; /* from gmca_key_backup */
        const char *dir;     /* new state directory; must not exist or be empty */
        const struct gmca_custodian *custodians; /* threshold of the backup's share set */
        size_t ncustodians;
        const char *device_library; /* NULL: as configured in the backup */
        const char *device_config;  /* NULL: as configured in the backup */
        const char *actor;
};
/*
 * Restore a key backup onto a fresh state directory (and device): every key
 * is imported at its index and checked against its CA certificate before
 * the directory is renamed into place; audited (key.restore) in the
 * restored store. A tampered archive is GMCA_ERR_TAMPER, too few or wrong
 * shares GMCA_ERR_AUTH; nothing is left behind on failure. The whole
 * archive is authenticated before any key reaches the device; a device that
 * already holds a key at one of the indexes is GMCA_ERR_EXISTS.
 */
int gmca_key_restore(const struct gmca_restore_params *p, struct gmca_error *e) GMCA_WUR;

struct gmca_rollover_params {
        const char *ca;       /* NULL: the default CA */
        const char *new_name; /* NULL: <ca>-g2, -g3, ... */
        const char *dn;       /* NULL: the same subject DN */
        int days;             /* 0: the profile's default */
        const char *parent;   /* operational CA only; NULL: the old parent if it still
                                 issues, else the CA that succeeded it in a rollover */
};
struct gmca_rollover_result {
        char name[GMCA_NAME_MAX];               /* the new CA */
        char new_with_new[GMCA_SERIAL_HEX_MAX]; /* its certificate */
        char old_with_new[GMCA_SERIAL_HEX_MAX]; /* link: old key, signed by the new ("" if
                                                   not a root) */
        char new_with_old[GMCA_SERIAL_HEX_MAX]; /* link: new key, signed by the old ("" if
                                                   not a root) */
};
/*
 * CA key changeover (§6.8): a new key pair in the device and a new CA row.
 * A root gets the three certificates of §6.8 (NewWithNew, OldWithNew,
 * NewWithOld); an operational CA gets its new certificate from its parent.
 * The old key becomes superseded (signs CRLs only, until the last
 * certificate it issued expires); if it was the default CA, the new one is.
 * Refused: a CA whose key is not active or whose certificate is revoked
 * (GMCA_ERR_STATE), a root whose certificate has expired or whose successor
 * would end before it (GMCA_ERR_POLICY), a new name that is taken
 * (GMCA_ERR_EXISTS). The certificates are published as certs/<new>.pem and,
 * for a root, certs/<new>.old-with-new.pem and certs/<new>.new-with-old.pem.
 * The custodians activate again afterwards.
 */
int gmca_ca_rollover(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                     const struct gmca_rollover_params *p, struct gmca_rollover_result *out,
                     struct gmca_error *e) GMCA_WUR;
/*
 * What the rollover that made CA `name` produced: *out as gmca_ca_rollover
 * returned it, old the CA it replaced. GMCA_ERR_NOTFOUND if no rollover
 * made it.
 */
int gmca_ca_rollover_info(struct gmca_ctx *c, const char *name, char old[GMCA_NAME_MAX],
                          struct gmca_rollover_result *out, struct gmca_error *e) GMCA_WUR;

struct gmca_compromise_params {
        const char *ca;       /* NULL: the default CA */
        const char *new_name; /* NULL: <ca>-g2, -g3, ... (ignored when resuming) */
        const char *dn;       /* NULL: the same subject DN */
        int days;             /* 0: the profile's default */
        size_t batch;         /* certificates per transaction; 0: 500 */
        void (*progress)(void *arg, uint64_t done, uint64_t total); /* may be NULL */
        void *progress_arg;
};
struct gmca_compromise_result {
        char job[GMCA_NAME_MAX]; /* names the old → new serial list (store reissues) */
        char new_ca[GMCA_NAME_MAX];
        uint64_t revoked;   /* certificates revoked with cACompromise */
        uint64_t reissued;  /* replacements issued under the new CA */
        int64_t crl_number; /* the compromised CA's final CRL */
};
/*
 * CA compromise (§6.10.3): the key becomes compromised; a new key and CA
 * certificate are made; every certificate the old CA issued is revoked
 * (cACompromise) and, if still valid, re-issued under the new CA with the
 * same subject, public key and extensions and the old end date, each
 * revocation in the same transaction as its replacement and its old → new
 * record; then the old CA's final CRL. Restartable: run again after a kill
 * and it carries on from where it stopped, issuing nothing twice.
 */
int gmca_ca_compromise(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                       const struct gmca_compromise_params *p, struct gmca_compromise_result *out,
                       struct gmca_error *e) GMCA_WUR;

/* How long an archived CA key is kept (§7.2.1.4): 10 years after its certificate ends. */
#define GMCA_ARCHIVE_RETENTION_DAYS 3653

/*
 * Archive (§7.2.1.4): a CA key that will sign nothing more (its certificate
 * has expired, or it is superseded or compromised and every certificate it
 * issued has expired) leaves the device for the archive, sealed, and can no
 * longer sign. Destroy (§7.2.1.9): after its retention, with custodians,
 * the archived key is wiped; the audit record stays.
 *
 * The archive is keys/archive/<ca>-<index>.key (0600): the device's sealed
 * blob wrapped again with SM4-GCM under a key derived from the key PIN
 * (which outlives custodian changes), its header naming the CA, index,
 * certificate fingerprint and retention date authenticated with it. ca NULL
 * is the default CA. Archive: GMCA_ERR_STATE with the reason while the key
 * may still sign, or when the device lacks SDFX_ExportKeyBlob or
 * SDFX_DestroyKeyPair_ECC; the file is written and read back before the
 * commit, the device copy erased after it (run again to finish an erase cut
 * short). Destroy: GMCA_ERR_STATE unless archived and past its retention,
 * GMCA_ERR_TAMPER if the archive file does not authenticate as this key's,
 * GMCA_ERR_NOTFOUND if it is missing; the state becomes destroyed, then
 * the file is overwritten (random, then zeros), synced and unlinked. The CA
 * row and its certificate stay.
 */
int gmca_key_archive(struct gmca_ctx *c, const char *ca, const struct gmca_custodian *cust,
                     size_t n, struct gmca_error *e) GMCA_WUR;
int gmca_key_destroy(struct gmca_ctx *c, const char *ca, const struct gmca_custodian *cust,
                     size_t n, struct gmca_error *e) GMCA_WUR;

/*
 * RA communication certificate (§7.1.1 item 2): issued by the default CA
 * under the ra-comm profile to the RA system named ra (CSR in DER or PEM),
 * recorded so that the CA engine can later accept only requests that RA
 * signs; audited (ra.cert). ra: [a-z0-9_-]{1,55}. A newer certificate for
 * the same RA replaces the older (which is not revoked, only no longer
 * accepted). The certificate (cert.issue), the RA records and ra.cert are
 * one transaction; a refusal is audited (ra.cert failure) and leaves
 * nothing. Through a CA engine not started with --direct-issue it needs
 * gmca_ctx_authorise first. gmca_ra_cert_check: 0 if cert is byte for byte a certificate issued
 * here under ra-comm, valid now, not revoked and its RA's current one (GMCA_ERR_AUTH with the
 * reason otherwise; not audited: the caller audits the request it refuses).
 */
int gmca_ra_cert_issue(struct gmca_ctx *c, const char *ra, const uint8_t *csr, size_t csr_len,
                       int days, char serial[GMCA_SERIAL_HEX_MAX], X509 **out,
                       struct gmca_error *e) GMCA_WUR;
/* The RA certificate serial was issued to (ra "" if none) and whether it is its current one. */
int gmca_ra_cert_owner(struct gmca_ctx *c, const char *serial, char ra[GMCA_NAME_MAX], int *current,
                       struct gmca_error *e) GMCA_WUR;
int gmca_ra_cert_check(struct gmca_ctx *c, X509 *cert, struct gmca_error *e) GMCA_WUR;

#endif
