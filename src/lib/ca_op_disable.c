/*
 * The CA engine's side of a super admin disabling an operator through the
 * API (auth.h gmca_operator_disable_signed). Disabling revokes the
 * operator's certificate, and it is the certificate's revocation that the
 * engine counts when it checks a signed step (gmca_auth_proof_check): the
 * status column is the front's to write. So the front may not revoke, and
 * a front that could would revoke any operator it liked. The front sends
 * the super admin's signed request instead; the engine checks it as it
 * checks every RA step (the signature, the operator record's tag under
 * K_op before the name and roles count, the role, a POST to this
 * operator's disable) and that it is fresh (the front checked its nonce;
 * a replay within the window finds the operator disabled already), then
 * disables in its own transaction, audited as operator.disable by the
 * super admin. A refusal is audited and changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "auth.h"
#include "ca_internal.h"
#include "util.h"

static int check(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN], const char *name,
                 const uint8_t *proof, size_t len, int64_t now, struct gmca_operator *op,
                 struct gmca_error *e)
{
        struct gmca_auth_proof p;
        char want[GMCA_NAME_MAX + 32], what[GMCA_NAME_MAX + 16];
        int rc;

        snprintf(what, sizeof(what), "disable %s", name);
        snprintf(want, sizeof(want), "/api/v1/operators/%s/disable", name);
        if ((rc = gmca_auth_step_check(s, k_op, what, "request", proof, len, NULL,
                                       GMCA_ACT_OPERATOR_DISABLE, want, now, &p, op, e)) != 0)
                return rc;
        if (p.timestamp > now + GMCA_AUTH_SKEW || p.timestamp < now - GMCA_AUTH_SKEW)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "disable %s: the signed request of %lld is stale", name,
                                      (long long)p.timestamp);
        return 0;
}

int gmca_operator_disable_signed(struct gmca_ctx *c, const char *name, const uint8_t *proof,
                                 size_t len, int64_t now, struct gmca_error *e)
{
        struct gmca_operator op;
        uint8_t k_op[GMCA_OP_KEY_LEN];
        int rc;

        memset(&op, 0, sizeof(op));
        if (name == NULL || name[0] == '\0' || strlen(name) >= GMCA_NAME_MAX)
                return ca_reject(c, GMCA_EV_OPERATOR_DISABLE, "operator",
                                 gmca_error_set(e, GMCA_ERR_INVALID, "disable: operator name"), e);
        if ((rc = gmca_operator_key(c, k_op, e)) != 0)
                return ca_reject(c, GMCA_EV_OPERATOR_DISABLE, name, rc, e);
        rc = check(c->store, k_op, name, proof, len, now, &op, e);
        OPENSSL_cleanse(k_op, sizeof(k_op));
        if (rc != 0)
                return ca_reject(c, GMCA_EV_OPERATOR_DISABLE, name, rc, e);
        /* Its own transaction, audited (a refusal too) under the super admin's name. */
        return gmca_operator_disable(c->store, name, op.name, now, e);
}
