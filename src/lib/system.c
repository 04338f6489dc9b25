/*
 * The system's status (system.h): read-only queries over the store, put
 * together with what the caller learnt from the CA engine. Nothing here
 * changes anything, so nothing but a refusal is audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "audit.h"
#include "ca_internal.h"
#include "ra.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "system.h"
#include "util.h"

#define CAS_MAX 64 /* CAs shown */

static const char SQL_AUDIT_COUNT[] = "SELECT COUNT(*) FROM audit";
static const char SQL_CRL_LATEST[] = "SELECT number, this_update, next_update, entries FROM crls"
                                     " WHERE ca_id = ? ORDER BY number DESC LIMIT 1";
static const char SQL_APP_STATES[] =
    "SELECT state, COUNT(*) FROM applications GROUP BY state ORDER BY state";
static const char SQL_APP_OPEN[] = "SELECT id, submitted_at FROM applications"
                                   " WHERE state <> 'issued' AND state <> 'rejected' ORDER BY id";
static const char SQL_REV_PENDING[] =
    "SELECT id, deadline FROM revocation_requests WHERE state = ? ORDER BY id";

struct ca_row {
        int64_t id;
        char name[GMCA_NAME_MAX];
        char subject[GMCA_DN_MAX];
        char key_state[16];
        int64_t not_after;
};

struct ca_rows {
        struct ca_row v[CAS_MAX];
        size_t n;
        int more; /* CAs past CAS_MAX, not shown */
};

static int add_ca(const struct gmca_ca_rec *r, void *arg)
{
        struct ca_rows *rows = arg;
        struct ca_row *w;
        const unsigned char *p = r->cert_der;
        X509 *cert;

        if (rows->n == CAS_MAX) {
                rows->more = 1;
                return 0;
        }
        w = &rows->v[rows->n++];
        w->id = r->id;
        gmca_strlcpy(w->name, r->name, sizeof(w->name));
        gmca_strlcpy(w->subject, r->subject, sizeof(w->subject));
        gmca_strlcpy(w->key_state, r->key_state, sizeof(w->key_state));
        w->not_after = 0;
        if (p != NULL && (cert = d2i_X509(NULL, &p, (long)r->cert_len)) != NULL) {
                w->not_after = (int64_t)ca_cert_not_after(cert);
                X509_free(cert);
        }
        return 0;
}

/* 1 if name is one of the '\n'-separated names in list. */
static int listed(const char *list, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = list; p != NULL && *p != '\0';) {
                const char *end = strchr(p, '\n');
                size_t m = end != NULL ? (size_t)(end - p) : strlen(p);

                if (m == n && memcmp(p, name, n) == 0)
                        return 1;
                p = end != NULL ? end + 1 : NULL;
        }
        return 0;
}

static json_t *engine_json(const struct gmca_system_engine *en)
{
        json_t *cas;

        if (en == NULL || !en->up)
                return json_pack("{s:b, s:s}", "up", 0, "error",
                                 en != NULL && en->error != NULL ? en->error : "not asked");
        if ((cas = json_array()) == NULL)
                return NULL;
        for (const char *p = en->cas; p != NULL && *p != '\0';) {
                const char *end = strchr(p, '\n');
                size_t m = end != NULL ? (size_t)(end - p) : strlen(p);

                if (m > 0 && json_array_append_new(cas, json_stringn(p, m)) != 0)
                        return json_decref(cas), NULL;
                p = end != NULL ? end + 1 : NULL;
        }
        return json_pack("{s:b, s:o}", "up", 1, "cas", cas);
}

static int crl_json(struct gmca_store *s, int64_t ca_id, int64_t now, json_t **out,
                    struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_CRL_LATEST, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, ca_id);
        rc = gmca_q_step(&q, e, "latest CRL of CA %lld", (long long)ca_id);
        if (rc == GMCA_DB_ROW) {
                int64_t next = gmca_q_col_int(&q, 2);

                *out =
                    json_pack("{s:I, s:I, s:I, s:I, s:b}", "number",
                              (json_int_t)gmca_q_col_int(&q, 0), "this_update",
                              (json_int_t)gmca_q_col_int(&q, 1), "next_update", (json_int_t)next,
                              "entries", (json_int_t)gmca_q_col_int(&q, 3), "overdue", now > next);
        } else if (rc == GMCA_DB_DONE) {
                *out = json_null();
        }
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

static int cas_json(struct gmca_store *s, const struct gmca_system_engine *en, int64_t now,
                    json_t **out, struct gmca_error *e)
{
        struct ca_rows *rows = calloc(1, sizeof(*rows));
        json_t *a = json_array();
        int rc;

        if (rows == NULL || a == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = gmca_store_ca_list(s, add_ca, rows, e)) != 0)
                goto out;
        for (size_t i = 0; i < rows->n; i++) {
                const struct ca_row *r = &rows->v[i];
                json_t *crl = NULL, *o;

                if ((rc = crl_json(s, r->id, now, &crl, e)) != 0)
                        goto out;
                o = json_pack("{s:s, s:s, s:s, s:I, s:b, s:o}", "name", r->name, "subject",
                              r->subject, "key_state", r->key_state, "not_after",
                              (json_int_t)r->not_after, "engine_signs",
                              en != NULL && en->up && listed(en->cas, r->name), "crl",
                              crl != NULL ? crl : json_null());
                if (json_array_append_new(a, o) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        goto out;
                }
        }
        *out = a;
        a = NULL;
        rc = 0;
out:
        json_decref(a);
        free(rows);
        return rc;
}

static int count(struct gmca_store *s, const char *sql, int64_t *n, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, sql, &q, e)) != 0)
                return rc;
        rc = gmca_q_step(&q, e, "count");
        if (rc == GMCA_DB_ROW)
                *n = gmca_q_col_int(&q, 0);
        else if (rc >= 0)
                rc = gmca_error_set(e, GMCA_ERR_DB, "count: no row");
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* Applications by state, and the open ones past CPS §3.2.3's two working days.
 */
static int apps_json(struct gmca_store *s, int64_t now, json_t **out, struct gmca_error *e)
{
        json_t *by = json_object(), *ids = json_array();
        int64_t open = 0, overdue = 0;
        struct gmca_q q;
        int rc;

        if (by == NULL || ids == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = gmca_q_open(s, SQL_APP_STATES, &q, e)) != 0)
                goto out;
        while ((rc = gmca_q_step(&q, e, "applications by state")) == GMCA_DB_ROW) {
                const char *st = gmca_q_col_text(&q, 0);

                if (st != NULL && json_object_set_new(by, st, json_integer(gmca_q_col_int(&q, 1))))
                        break;
        }
        gmca_q_close(&q);
        if (rc < 0 || (rc = gmca_q_open(s, SQL_APP_OPEN, &q, e)) != 0)
                goto out;
        while ((rc = gmca_q_step(&q, e, "open applications")) == GMCA_DB_ROW) {
                int64_t id = gmca_q_col_int(&q, 0), at = gmca_q_col_int(&q, 1);

                open++;
                if (gmca_ra_working_seconds(at, now) <= (int64_t)GMCA_RA_WORKING_DAYS * 86400)
                        continue;
                if (overdue++ < GMCA_SYSTEM_IDS_MAX)
                        json_array_append_new(ids, json_integer(id));
        }
        gmca_q_close(&q);
        if (rc < 0)
                goto out;
        *out = json_pack("{s:O, s:I, s:I, s:O}", "by_state", by, "open", (json_int_t)open,
                         "overdue", (json_int_t)overdue, "overdue_ids", ids);
        rc = *out != NULL ? 0 : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
out:
        json_decref(by);
        json_decref(ids);
        return rc;
}

/* Revocation requests pending, and those past CPS §3.9.6's 24 hours. */
static int revs_json(struct gmca_store *s, int64_t now, json_t **out, struct gmca_error *e)
{
        json_t *ids = json_array();
        int64_t pending = 0, overdue = 0;
        struct gmca_q q;
        int rc;

        if (ids == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if ((rc = gmca_q_open(s, SQL_REV_PENDING, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, RA_REV_PENDING);
        while ((rc = gmca_q_step(&q, e, "pending revocations")) == GMCA_DB_ROW) {
                int64_t id = gmca_q_col_int(&q, 0), deadline = gmca_q_col_int(&q, 1);

                pending++;
                if (now > deadline && overdue++ < GMCA_SYSTEM_IDS_MAX)
                        json_array_append_new(ids, json_integer(id));
        }
        gmca_q_close(&q);
        if (rc < 0)
                goto out;
        *out = json_pack("{s:I, s:I, s:O}", "pending", (json_int_t)pending, "overdue",
                         (json_int_t)overdue, "overdue_ids", ids);
        rc = *out != NULL ? 0 : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
out:
        json_decref(ids);
        return rc;
}

int gmca_system_status(struct gmca_store *s, const struct gmca_auth_result *who,
                       const struct gmca_system_engine *engine, int64_t now, json_t **out,
                       struct gmca_error *e)
{
        json_t *cas = NULL, *apps = NULL, *revs = NULL, *en = NULL, *o;
        int64_t audits = 0, certs = 0;
        int rc;

        if (who == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "system: no operator");
        if ((rc = gmca_auth_allowed(who->op.roles, GMCA_ACT_SYSTEM_READ, e)) != 0)
                return ra_refuse(s, who->op.name, GMCA_EV_AUTH_REQUEST, "system", rc, e);
        /* One read transaction would be nicer; the figures are a glance, not a
         * ledger. */
        if ((rc = count(s, SQL_AUDIT_COUNT, &audits, e)) != 0 ||
            (rc = gmca_store_cert_count(s, &certs, e)) != 0 ||
            (rc = cas_json(s, engine, now, &cas, e)) != 0 ||
            (rc = apps_json(s, now, &apps, e)) != 0 || (rc = revs_json(s, now, &revs, e)) != 0)
                goto out;
        if ((en = engine_json(engine)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        o = json_pack("{s:I, s:i, s:I, s:I, s:o, s:o, s:o, s:o}", "time", (json_int_t)now,
                      "schema_version", gmca_store_schema_version(s), "audit_records",
                      (json_int_t)audits, "certificates", (json_int_t)certs, "engine", en, "cas",
                      cas, "applications", apps, "revocations", revs);
        en = cas = apps = revs = NULL; /* json_pack took them */
        if (o == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        *out = o;
        rc = 0;
out:
        json_decref(en);
        json_decref(cas);
        json_decref(apps);
        json_decref(revs);
        return rc;
}
