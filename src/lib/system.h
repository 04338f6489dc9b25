/*
 * system: the state of the CA system at a glance, for the system admin
 * (系统管理员, CPS §6.2.3) and the audit admin, who read it and change
 * nothing: each CA with its key state, validity and latest CRL; whether
 * the CA engine answers and for which CAs it signs; the RA's work in hand
 * — applications by state and those past the two working days of CPS
 * §3.2.3, revocation requests pending and those past the 24 hours of
 * §3.9.6 — and the store's schema version and audit record count. Owns
 * no state of its own.
 */
#ifndef GMCA_SYSTEM_H
#define GMCA_SYSTEM_H

#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "err.h"
#include "store.h"

#define GMCA_SYSTEM_IDS_MAX 100 /* ids of overdue items listed (all are counted) */

/* What the caller learnt from the CA engine (gmca_engine_list), borrowed for
 * the call. */
struct gmca_system_engine {
        int up;            /* 1: it answered */
        const char *cas;   /* up: the CA names it signs for, '\n'-separated */
        const char *error; /* not up: why (the connection's error) */
};

/*
 * GET /api/v1/system at time now -> {time, schema_version, audit_records,
 * certificates, engine {up, cas | error}, cas [{name, subject, key_state,
 * not_after, engine_signs, crl {number, this_update, next_update, entries,
 * overdue} | null}], applications {by_state {state: n}, open, overdue,
 * overdue_ids}, revocations {pending, overdue, overdue_ids}}. Open
 * applications are those not yet issued or rejected; one is overdue when
 * more than GMCA_RA_WORKING_DAYS working days have passed since it was
 * submitted. A pending revocation request is overdue past its deadline.
 * GMCA_ERR_FORBIDDEN (audited as auth.request) for a role without
 * GMCA_ACT_SYSTEM_READ. *out: caller decrefs.
 */
int gmca_system_status(struct gmca_store *s, const struct gmca_auth_result *who,
                       const struct gmca_system_engine *engine, int64_t now, json_t **out,
                       struct gmca_error *e) GMCA_WUR;

#endif
