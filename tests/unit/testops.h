/*
 * testops: what the RA unit tests (test_ra_recovery, test_ra_revoke) share
 * to play the front: enrol an operator record for a certificate issued by
 * the test CA, tagged with the custodians' K_op as an enrolment ceremony
 * does, and run one of the front's own statements against the store.
 */
#ifndef GMCA_TESTOPS_H
#define GMCA_TESTOPS_H

#include <openssl/x509.h>

#include "auth.h"
#include "store_internal.h"
#include "util.h"

/* The operator record of name with roles for cert (serial), tagged under k_op. */
static void test_operator_enrol(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                                const char *name, unsigned roles, X509 *cert, const char *serial)
{
        struct gmca_operator op;
        struct gmca_error e = {0};
        uint8_t *der = NULL;
        int n;

        memset(&op, 0, sizeof(op));
        gmca_strlcpy(op.name, name, sizeof(op.name));
        op.roles = roles;
        gmca_strlcpy(op.cert_serial, serial, sizeof(op.cert_serial));
        assert_true((n = i2d_X509(cert, &der)) > 0);
        gmca_auth_fingerprint(der, (size_t)n, op.fingerprint);
        OPENSSL_free(der);
        op.created_at = (int64_t)gmca_now();
        gmca_strlcpy(op.created_by, "unit", sizeof(op.created_by));
        assert_int_equal(gmca_store_begin(s, &e), 0);
        if (gmca_operator_insert(s, &op, k_op, &e) != 0)
                fail_msg("operator %s: %s", name, e.msg);
        assert_int_equal(gmca_store_commit(s, &e), 0);
}

/* One statement of the front's: text arguments a and b (NULL: none), then id (0: none). */
static void test_sql(struct gmca_store *s, const char *stmt, const char *a, const char *b,
                     int64_t id)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        assert_int_equal(gmca_q_open(s, stmt, &q, &e), 0);
        if (a != NULL)
                gmca_q_text(&q, a);
        if (b != NULL)
                gmca_q_text(&q, b);
        if (id != 0)
                gmca_q_int(&q, id);
        if (gmca_q_step(&q, &e, "test sql") < 0)
                fail_msg("%s: %s", stmt, e.msg);
        gmca_q_close(&q);
}

/* who for a signed POST to target with body (NULL: none) by key and cert at now, as the front
 * verifies it (the operator's name for messages). */
static void test_signed_post(struct gmca_store *s, EVP_PKEY *key, X509 *cert, const char *name,
                             const char *target, const char *body, int64_t now,
                             struct gmca_auth_result *who)
{
        struct gmca_auth_headers h;
        struct gmca_error e = {0};
        size_t len = body != NULL ? strlen(body) : 0;

        memset(who, 0, sizeof(*who));
        if (gmca_auth_sign(key, cert, "POST", target, (const uint8_t *)body, len, now, &h, &e) !=
                0 ||
            gmca_auth_verify(s, &h, "POST", target, (const uint8_t *)body, len, now, who, &e) != 0)
                fail_msg("POST %s by %s: %s", target, name, e.msg);
}

#endif
