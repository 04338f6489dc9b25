/*
 * ca_internal: what ca.c (issuance, revocation, CRLs) and ca_keys.c (key
 * ceremonies, activation, custody, rollover, compromise, archive) share.
 * Not a public header.
 */
#ifndef GMCA_CA_INTERNAL_H
#define GMCA_CA_INTERNAL_H

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "ca.h"
#include "custody.h"
#include "device.h"
#include "engine.h"
#include "profile.h"
#include "store.h"
#include "x509.h"

#define MAX_CAS 16
#define MAX_PROFILES 32
#define CONFIG_MAX 65536
#define URL_MAX 512
#define DEFAULT_BASE_URL "http://127.0.0.1:8080"
#define ANY_POLICY "2.5.29.32.0"
#define SERIAL_TRIES 8
#define KEY_REF_PREFIX "device:"
#define META_CUSTODY "custody"
#define META_DEFAULT_CA "ca.default"
/* + decimal CA id: the name of the CA that replaced it (rollover, compromise). */
#define META_SUCCESSOR "ca.successor."

struct ca_slot {
        struct gmca_ca_rec rec;
        X509 *cert;
        unsigned key_index;                /* in the device; 0 if none */
        const struct gmca_signer *signer;  /* set while activated; NULL otherwise */
        struct gmca_device_signer dsigner; /* when the key is unlocked in this process */
        struct gmca_engine_signer esigner; /* when the CA engine signs */
};

struct ca_config {
        char default_ca[GMCA_NAME_MAX];
        char base_url[URL_MAX];
        char policy_oid[128];
        char cps_uri[URL_MAX];
        int crl_hours;
        int delta_crl_minutes; /* 0: no delta CRLs; else their interval (RFC 5280 §5.2.4) */
        int verify_after_sign; /* check each fresh signature (one SM2 verify) */
        char device_library[PATH_MAX];           /* "" : the built-in software device */
        char device_config[PATH_MAX];            /* "" : keys/device under the state directory */
        char database[GMCA_STORE_URI_MAX];       /* "": gmca.db in the state directory (SQLite) */
        char front_database[GMCA_STORE_URI_MAX]; /* "": the front uses database too */
};

struct gmca_ctx {
        char dir[PATH_MAX];
        char actor[GMCA_ACTOR_MAX];
        struct ca_config cfg;
        struct gmca_store *store;
        struct ca_slot cas[MAX_CAS];
        size_t ncas;
        struct gmca_profile *profiles[MAX_PROFILES];
        struct stat profile_stat[MAX_PROFILES]; /* of the file each was loaded from */
        size_t nprofiles;
        struct gmca_device *dev;           /* open while activated in this process */
        struct gmca_engine_client *engine; /* connected to the CA engine */
        struct gmca_km_link *km;    /* the KM link (ca_km), opened while the key PIN is held */
        struct gmca_error km_error; /* why it could not be opened then */
        uint8_t *secrets;           /* secure heap: master key, then key PIN */
        char custodians[GMCA_CUSTODY_MAX * GMCA_CUSTODIAN_NAME_MAX]; /* who activated */
        int ceremony_lock; /* fd + 1 of the engine lock held during a key ceremony; 0: none */
        /* Keys of the CA engine (engine.h), derived from the secrets when custodians act:
         * secure heap, K_authz, K_pii (only at activation), then K_op (auth.h: the key of
         * the operator records' tags, from the key PIN, so that it outlives a resplit);
         * wiped with the keys. */
        uint8_t *engine_keys;
        int engine_pii;   /* 1: engine_keys holds K_pii too */
        int direct_issue; /* gmca_ctx_set_direct_issue */
        /* While the CA engine makes CRLs on request (op 'C', ca_engine_crl): who asked,
         * for the audit detail; CRLs are then paced to one of a kind per CA a second. */
        const char *crl_requester;
};
#define CTX_AUTHZ(c) ((c)->engine_keys)
#define CTX_PII(c) ((c)->engine_keys + GMCA_ENGINE_AUTHZ_LEN)
#define CTX_OPKEY(c) ((c)->engine_keys + GMCA_ENGINE_AUTHZ_LEN + GMCA_ENGINE_PII_KEY_LEN)
#define CTX_MASTER(c) ((c)->secrets)
#define CTX_KEYPIN(c) ((c)->secrets + GMCA_MASTER_LEN)
#define KEYPIN_LEN 32

struct tmpl_urls {
        char crl[URL_MAX];
        char delta[URL_MAX];
        char ocsp[URL_MAX];
        char ca_issuers[URL_MAX];
};

int ca_valid_name(const char *s);
int ca_pathf(char *out, size_t len, struct gmca_error *e, const char *fmt, ...) GMCA_PRINTF(4, 5);
int ca_path_join(char *out, size_t len, const char *a, const char *b, struct gmca_error *e);
int ca_write_pem_cert(const char *path, X509 *cert, struct gmca_error *e);
void ca_rm_tree(const char *path);
/* dir does not exist (1), exists and is empty (2), or neither (0). */
int ca_dir_free(const char *dir);
int ca_fill_template(struct gmca_cert_template *t, struct tmpl_urls *u, const struct ca_config *cfg,
                     const struct gmca_profile *p, const char *issuer_name, struct gmca_error *e);
int ca_cert_der(X509 *cert, uint8_t **der, size_t *len, struct gmca_error *e);
int ca_cert_record(X509 *cert, int64_t ca_id, const char *profile, int64_t request_id,
                   struct gmca_cert_rec *r, struct gmca_error *e);
/* The first key of obj that is not one of known[0..n), or NULL. */
const char *ca_json_unknown_key(json_t *obj, const char *const *known, size_t n);
/* Compact JSON of obj (consumed), malloc'd; NULL on failure. */
char *ca_detail_json(json_t *obj);
struct ca_slot *ca_find(struct gmca_ctx *c, const char *name, struct gmca_error *e);
int ca_audit_failure(struct gmca_ctx *c, const char *event, const char *object,
                     const struct gmca_error *cause);
/* The same for a caller without a context (the RA): a refusal in a transaction of its own. */
int ca_audit_failure_at(struct gmca_store *s, const char *actor, const char *event,
                        const char *object, const struct gmca_error *cause);
int ca_reject(struct gmca_ctx *c, const char *event, const char *object, int rc,
              struct gmca_error *e);
time_t ca_cert_not_after(const X509 *cert);
/*
 * Inside the caller's open transaction: check, sign and record one
 * certificate (its request row, certificate row and cert.issue audit
 * record). Refusals are not audited here: the caller rolls back and audits.
 */
int ca_issue_in_tx(struct gmca_ctx *c, const struct gmca_issue_req *r,
                   char serial[GMCA_SERIAL_HEX_MAX], X509 **out, struct gmca_error *e) GMCA_WUR;

/* GMCA_ERR_POLICY (CPS §6.8 rule 1) if not_after is past issuer_end, the issuing CA's. */
int ca_within_issuer(const char *issuer, time_t issuer_end, time_t not_after, struct gmca_error *e);
int ca_publish_crl(struct gmca_ctx *c, const char *ca, int64_t number, int delta,
                   const uint8_t *der, size_t len, struct gmca_error *e);
/*
 * The CA engine's op 'C' (engine.h policy hook crl; arg: the engine's
 * context, which holds the keys): the CRLs q asks for, built here from the
 * store with this process's clock and configuration, audited with actor
 * "engine" and q->actor as requested_by. A pass's interval is bounded by
 * crl_hours and GMCA_CRL_INTERVAL_MAX.
 */
int ca_engine_crl(void *arg, const char *ca, const struct gmca_engine_crl_req *q,
                  struct gmca_engine_crl_res *res, struct gmca_error *e);
/* Wipe the master key and key PIN (gmca_ctx_forget_secrets without opening the KM link). */
void ca_forget_secrets(struct gmca_ctx *c);

/* ---- dual certificates (ca_dual.c, km.h) ---- */
struct ca_pair {
        uint8_t serial[GMCA_SERIAL_LEN];      /* the encryption certificate's */
        char enc_serial[GMCA_SERIAL_HEX_MAX]; /* "" when no pair was issued */
        int asked;                            /* the KM holds a key for serial */
};
/* The CA's KM link, kept open in c; NULL with GMCA_ERR_NOTFOUND when the CA has no KM. */
struct gmca_km_link *ca_km(struct gmca_ctx *c, struct gmca_error *e);
/*
 * Inside the transaction that issued sig (serial sig_serial) from r: when
 * r's profile names an encryption pair and the CA has a KM, the encryption
 * certificate for a key pair the KM made, and the sealed pair kept
 * (dual_keys). p->enc_serial is "" when none was due. After a failure and
 * the rollback, ca_pair_abandon tells the KM to revoke what it made.
 */
int ca_issue_pair(struct gmca_ctx *c, const struct gmca_issue_req *r, X509 *sig,
                  const char *sig_serial, struct ca_pair *p, struct gmca_error *e);
void ca_pair_abandon(struct gmca_ctx *c, struct ca_pair *p);
/*
 * In the CA engine, between requests: tell the KM of every encryption
 * certificate revoked (the "km" channel of the change feed, publish.h),
 * however it was revoked — the RA, the CLI, a lifecycle replacement — so
 * the KM's key states follow; retried with backoff while the KM is down.
 */
void ca_km_notices(struct gmca_ctx *c);

/* Inside a transaction: a new CA with its certificate and audit records. */
int ca_record_new(struct gmca_store *s, const char *name, X509 *cert, const char *profile,
                  const char *sm2_id, unsigned index, int64_t parent_id, const char *actor,
                  const char *device, int64_t *id, struct gmca_error *e);
/* Absolute key store directory / device configuration of this state directory. */
int ca_device_conf(const char *dir, const struct ca_config *cfg, char *config, size_t len,
                   struct gmca_device_conf *out, struct gmca_error *e);
/* Index N from "device:N"; 0 if rec has no device key. */
unsigned ca_key_index(const struct gmca_ca_rec *rec);
/* 1 if the key may sign certificates / CRLs in its state. */
int ca_state_issues(const char *state);
int ca_state_signs_crls(const char *state);
/* Make sure the CA has a signer (activation); GMCA_ERR_STATE naming what to do if not. */
int ca_need_signer(struct gmca_ctx *c, struct ca_slot *ca, int for_cert, struct gmca_error *e);

/* The custody record (store metadata "custody"): public facts of the share set. */
struct ca_custody {
        struct gmca_custody_set set;
        uint8_t check[32];                     /* gmca_custody_check_value of the master */
        uint8_t wrapped[12 + KEYPIN_LEN + 16]; /* IV, SM4-GCM(key PIN), tag */
        char names[GMCA_CUSTODY_MAX][GMCA_CUSTODIAN_NAME_MAX];
        int64_t created;
};
int ca_custody_load(struct gmca_ctx *c, struct ca_custody *m, struct gmca_error *e);
int ca_custody_store(struct gmca_store *s, const struct ca_custody *m, struct gmca_error *e);
/* Set m->check and m->wrapped for master and keypin (m->set must be filled). */
int ca_custody_wrap(struct ca_custody *m, const uint8_t master[GMCA_MASTER_LEN],
                    const uint8_t keypin[KEYPIN_LEN], struct gmca_error *e);
int ca_custody_unwrap(const struct ca_custody *m, const uint8_t master[GMCA_MASTER_LEN],
                      uint8_t keypin[KEYPIN_LEN], struct gmca_error *e);
/* Combine the custodians' shares into the context's master key and key PIN (not audited). */
int ca_open_master(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                   struct ca_custody *m, struct gmca_error *e);
int ca_open_device(struct gmca_ctx *c, struct gmca_error *e);
/* Unlock every CA key that may still sign; names appended to unlocked (may be NULL). */
int ca_unlock_all(struct gmca_ctx *c, json_t *unlocked, struct gmca_error *e);
/* Lock and forget every signer; close device and engine connection. */
void ca_release_keys(struct gmca_ctx *c);
/* 1 if custodians activated this context (master key, key PIN and device at hand). */
int ca_have_secrets(const struct gmca_ctx *c);

/* ---- key ceremonies (resplit, backup, rollover, compromise, archive, destroy) ---- */

/*
 * Begin a key ceremony in this process: refused (GMCA_ERR_STATE) while the
 * CA engine runs on this state directory, since it holds keys the ceremony
 * changes; then the custodians' shares open the master key and key PIN (m
 * receives the custody record), the device opens and every CA key that may
 * still sign is unlocked. Not audited here: the ceremony records its outcome
 * (naming c->custodians) or its refusal with ca_reject. On failure nothing
 * stays unlocked.
 */
int ca_ceremony_begin(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                      struct ca_custody *m, struct gmca_error *e);
/* Lock every key, close the device, wipe the secrets. */
void ca_ceremony_end(struct gmca_ctx *c);

/*
 * Inside a ceremony: a new key pair at the first device index above every
 * index a CA row names (skipping indexes the device already holds, such as
 * one left by an interrupted ceremony), protected by the key PIN and
 * unlocked. *pub: its public key (caller frees).
 */
int ca_generate_key(struct gmca_ctx *c, unsigned *index, EVP_PKEY **pub, struct gmca_error *e);

/* Who signs a CA certificate. */
struct ca_issuer {
        const char *name; /* CA name, for the CRL and AIA URLs */
        X509 *cert;       /* NULL: self-signed */
        EVP_PKEY *key;    /* the issuer's public key (the subject's if self) */
        const struct gmca_signer *signer;
        const char *sm2_id; /* the ID the issuer signs with */
};
/* The issuer fields of a CA slot whose key is unlocked (GMCA_ERR_STATE otherwise). */
int ca_slot_issuer(struct ca_slot *ca, struct ca_issuer *out, struct gmca_error *e);
/*
 * A CA certificate under profile (root-ca or sub-ca) for subject and pub,
 * signed by is, valid from now to not_after; refused (GMCA_ERR_POLICY) past
 * the issuer's own end (CPS §6.8 rule 1). NULL with e set on failure.
 */
X509 *ca_make_ca_cert(struct gmca_ctx *c, const char *profile, const X509_NAME *subject,
                      EVP_PKEY *pub, const struct ca_issuer *is, time_t not_after,
                      struct gmca_error *e);
/* Read the slot's row and certificate again after they changed (its signer stays). */
int ca_slot_reload(struct gmca_ctx *c, struct ca_slot *ca, struct gmca_error *e);

#endif
