/*
 * audit: the hash-chained audit log of CPS §6.4–6.6. Every state-changing
 * operation appends its record inside the same store transaction as the
 * change; rejected requests are recorded too. Each record commits to the
 * previous one: hash = SM3(canonical encoding of the record || prev hash),
 * and the chain head (seq and hash) is kept in the store metadata, so that a
 * changed, deleted, inserted or reordered record, or a cut tail, is found by
 * gmca_audit_verify.
 */
#ifndef GMCA_AUDIT_H
#define GMCA_AUDIT_H

#include <stdint.h>

#include "err.h"
#include "store.h"

/* Event types (CPS §6.5). */
#define GMCA_EV_CA_INIT "ca.init"
#define GMCA_EV_KEY_GENERATE "key.generate"
#define GMCA_EV_KEY_ACTIVATE "key.activate"
#define GMCA_EV_KEY_DEACTIVATE "key.deactivate"
#define GMCA_EV_KEY_CEREMONY "key.ceremony" /* shares made for custodians */
#define GMCA_EV_KEY_RESPLIT "key.resplit"   /* custodians changed */
#define GMCA_EV_KEY_BACKUP "key.backup"
#define GMCA_EV_KEY_RESTORE "key.restore"
#define GMCA_EV_KEY_ROLLOVER "key.rollover"
#define GMCA_EV_KEY_ARCHIVE "key.archive"
#define GMCA_EV_KEY_DESTROY "key.destroy"
#define GMCA_EV_CA_COMPROMISE "ca.compromise"
#define GMCA_EV_RA_CERT "ra.cert"
#define GMCA_EV_CERT_REQUEST "cert.request"
#define GMCA_EV_CERT_ISSUE "cert.issue"
#define GMCA_EV_CERT_REVOKE "cert.revoke"
#define GMCA_EV_CERT_REISSUE "cert.reissue" /* under a new CA after a compromise */
#define GMCA_EV_CRL_GENERATE "crl.generate"
#define GMCA_EV_CONFIG_CHANGE "config.change"
#define GMCA_EV_AUDIT_VERIFY "audit.verify"
/* The RA (issue 4): operators, signed requests, applicants, applications. */
#define GMCA_EV_OPERATOR_ADD "operator.add"
#define GMCA_EV_OPERATOR_DISABLE "operator.disable"
#define GMCA_EV_AUTH_REQUEST "auth.request"     /* refused API requests (401/403) */
#define GMCA_EV_ENGINE_REQUEST "engine.request" /* refused CA engine requests */
#define GMCA_EV_ENGINE_SIGN "engine.sign"       /* what the CA engine signed */
#define GMCA_EV_APPLICANT_CREATE "ra.applicant.create"
#define GMCA_EV_APPLICANT_READ "ra.applicant.read" /* a full (unmasked) read, §8.4 */
#define GMCA_EV_APPLICANT_CORRECT "ra.applicant.correct"
#define GMCA_EV_APP_SUBMIT "ra.application.submit"
#define GMCA_EV_APP_VET "ra.application.vet"
#define GMCA_EV_APP_APPROVE "ra.application.approve"
#define GMCA_EV_APP_REJECT "ra.application.reject"
#define GMCA_EV_APP_ISSUE "ra.application.issue"
#define GMCA_EV_REVOKE_REQUEST "ra.revocation.request"
#define GMCA_EV_REVOKE_COMPLETE "ra.revocation.complete"
#define GMCA_EV_RECOVERY_REQUEST "ra.recovery.request" /* CPS §3.10 key recovery */
#define GMCA_EV_RECOVERY_APPROVE "ra.recovery.approve"
#define GMCA_EV_RECOVERY_REJECT "ra.recovery.reject"
#define GMCA_EV_RECOVERY_DELIVER "ra.recovery.deliver"
#define GMCA_EV_KM_RECOVER "km.recover" /* on the CA's chain: the engine's recovery */
/* The key management centre (issue 6), on the KM's own chain (km.h). */
#define GMCA_EV_KM_INIT "km.init"
#define GMCA_EV_KM_TRUST "km.trust"
#define GMCA_EV_KM_ACTIVATE "km.activate"
#define GMCA_EV_KM_REQUEST "km.request" /* refused requests: malformed, unsigned, replayed */
#define GMCA_EV_KM_APPLY "km.apply"
#define GMCA_EV_KM_RESTORE "km.restore"
#define GMCA_EV_KM_REVOKE "km.revoke"
#define GMCA_EV_KM_EXPIRE "km.expire"
#define GMCA_EV_KM_DESTROY "km.destroy"
#define GMCA_EV_PUBLISH_SKIP "publish.skip"
/* Backups and CA termination (issue 9; CPS §6.9.1, §6.8, §6.11). */
#define GMCA_EV_BACKUP_CREATE "backup.create"
#define GMCA_EV_BACKUP_VERIFY "backup.verify"
#define GMCA_EV_BACKUP_RESTORE "backup.restore" /* in the restored CA's chain */
#define GMCA_EV_CA_EXPORT "ca.export"
#define GMCA_EV_CA_IMPORT "ca.import"
#define GMCA_EV_PUBLISH_RESET "publish.reset" /* gmca publish reset */
#define GMCA_EV_DB_FRONT_ROLE "db.front_role" /* the front's database role (store_roles.h) */

#define GMCA_AUDIT_DETAIL_MAX 4096

struct gmca_audit_event {
        const char *type;   /* one of GMCA_EV_* */
        const char *actor;  /* operator identity (CPS §6.6 item 6) */
        int success;        /* 1 success, 0 failure */
        const char *object; /* serial, CA name, CRL number; NULL: none */
        const char *detail; /* text, truncated to GMCA_AUDIT_DETAIL_MAX; NULL: none */
};

/* Append one record. The caller holds a store transaction. */
int gmca_audit_append(struct gmca_store *s, const struct gmca_audit_event *ev,
                      struct gmca_error *e) GMCA_WUR;

/* Append one record in a transaction of its own (for rejections). */
int gmca_audit_record(struct gmca_store *s, const struct gmca_audit_event *ev,
                      struct gmca_error *e) GMCA_WUR;

/* The record hash as stored: SM3 over the canonical encoding and prev. */
int gmca_audit_hash(const struct gmca_audit_rec *r, uint8_t out[GMCA_SM3_LEN]) GMCA_WUR;

/*
 * Walk the whole chain. 0 if intact, with *count records. Otherwise
 * GMCA_ERR_TAMPER, *bad_seq the first bad record (or the seq where one is
 * missing) and e saying what is wrong with it.
 */
int gmca_audit_verify(struct gmca_store *s, int64_t *count, int64_t *bad_seq,
                      struct gmca_error *e) GMCA_WUR;

#endif
