/*
 * km_store: the key management centre's records that need no custodian —
 * listing the escrowed keys (never a secret: the ciphertext is not even
 * read) and moving keys past their certificate's notAfter to "expired",
 * which starts nothing by itself: an expired key is still restorable and
 * is destroyed only after its retention date, by three custodians (km.c).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "km.h"
#include "store_internal.h"
#include "util.h"

static const char SQL_LIST[] =
    "SELECT serial, ca, subject, state, not_before, not_after, retain_until, "
    "created,"
    " state_time, task_no, enc_priv IS NOT NULL FROM km_keys ORDER BY serial";
static const char SQL_LIST_STATE[] =
    "SELECT serial, ca, subject, state, not_before, not_after, retain_until, "
    "created,"
    " state_time, task_no, enc_priv IS NOT NULL FROM km_keys WHERE state = ? "
    "ORDER BY serial";
static const char SQL_EXPIRE[] =
    "UPDATE km_keys SET state = 'expired', state_time = ? WHERE state = "
    "'active' AND not_after < ?";

struct gmca_store *gmca_km_store_open(const char *dir, struct gmca_error *e)
{
        char path[PATH_MAX];

        if ((size_t)snprintf(path, sizeof(path), "%s/km.json", dir) >= sizeof(path)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "km: directory path too long");
                return NULL;
        }
        /* km.json marks a KM directory: do not create a database anywhere else. */
        if (access(path, R_OK) != 0) {
                gmca_error_set(e, GMCA_ERR_NOTFOUND, "km: %s: no KM here (gmca km init)", dir);
                return NULL;
        }
        if (gmca_km_store_uri(dir, path, sizeof(path), e) != 0)
                return NULL;
        return gmca_store_open(path, e);
}

static int state_ok(const char *s)
{
        static const char *const states[] = {"active", "revoked", "expired", "destroyed"};

        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
                if (strcmp(s, states[i]) == 0)
                        return 1;
        return 0;
}

static int row_read(struct gmca_q *q, struct gmca_km_key_info *ki, struct gmca_error *e)
{
        int rc;

        memset(ki, 0, sizeof(*ki));
        if ((rc = gmca_q_col_str(q, 0, ki->serial, sizeof(ki->serial), "serial", e)) != 0 ||
            (rc = gmca_q_col_str(q, 1, ki->ca, sizeof(ki->ca), "ca", e)) != 0 ||
            (rc = gmca_q_col_str(q, 2, ki->subject, sizeof(ki->subject), "subject", e)) != 0 ||
            (rc = gmca_q_col_str(q, 3, ki->state, sizeof(ki->state), "state", e)) != 0 ||
            (rc = gmca_q_col_str(q, 9, ki->task_no, sizeof(ki->task_no), "task_no", e)) != 0)
                return rc;
        ki->not_before = gmca_q_col_int(q, 4);
        ki->not_after = gmca_q_col_int(q, 5);
        ki->retain_until = gmca_q_col_int(q, 6);
        ki->created = gmca_q_col_int(q, 7);
        ki->state_time = gmca_q_col_int(q, 8);
        ki->escrowed = gmca_q_col_int(q, 10) != 0;
        return 0;
}

int gmca_km_list(struct gmca_store *s, const char *state,
                 int (*cb)(const struct gmca_km_key_info *, void *), void *arg,
                 struct gmca_error *e)
{
        struct gmca_km_key_info ki;
        struct gmca_q q;
        int rc;

        if (state != NULL && !state_ok(state))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km: state must be active, revoked, expired or destroyed");
        if ((rc = gmca_q_open(s, state != NULL ? SQL_LIST_STATE : SQL_LIST, &q, e)) != 0)
                return rc;
        gmca_q_stream(&q);
        if (state != NULL)
                gmca_q_text(&q, state);
        while ((rc = gmca_q_step(&q, e, "km: list keys")) == GMCA_DB_ROW) {
                if ((rc = row_read(&q, &ki, e)) != 0 || (rc = cb(&ki, arg)) != 0)
                        break;
        }
        gmca_q_close(&q);
        return rc == GMCA_DB_DONE ? 0 : rc;
}

int gmca_km_expire(struct gmca_store *s, int64_t now, const char *actor, int64_t *count,
                   struct gmca_error *e)
{
        struct gmca_audit_event ev = {GMCA_EV_KM_EXPIRE, actor, 1, "km", NULL};
        char detail[64];
        struct gmca_q q;
        int64_t n = 0;
        int rc;

        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = gmca_q_open(s, SQL_EXPIRE, &q, e)) == 0) {
                gmca_q_int(&q, now);
                gmca_q_int(&q, now);
                rc = gmca_q_step(&q, e, "km: expire keys");
                n = gmca_q_changes(&q);
                gmca_q_close(&q);
                rc = rc == GMCA_DB_DONE ? 0 : rc;
        }
        if (rc == 0 && n > 0) {
                snprintf(detail, sizeof(detail), "{\"expired\":%lld}", (long long)n);
                ev.detail = detail;
                rc = gmca_audit_append(s, &ev, e);
        }
        if (rc == 0)
                rc = gmca_store_commit(s, e);
        if (rc != 0) {
                gmca_store_rollback(s);
                return rc;
        }
        *count = n;
        return 0;
}
