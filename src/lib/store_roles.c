/*
 * store_roles: the front's database role on PostgreSQL (store_roles.h).
 *
 * The owner's connection (the CA's "database", used by the CA engine and
 * every CLI ceremony) owns every table. The front role gets, per table,
 * exactly the rights of the list below; a table not listed gets none. Two
 * rights are narrower than a table:
 *  - meta: the front appends audit records, and the audit chain's head
 *    lives in meta (audit.c); a row policy lets it write those two keys
 *    and no other (the RA certificates the engine trusts, the custody
 *    record and the default CA are meta keys too);
 *  - certificates: the front only reads them. RA revocations and the
 *    revocation of a disabled operator's certificate are carried out by the
 *    CA engine after it checked the signed requests (ca_ra_revoke.c,
 *    ca_op_disable.c). The trigger that refuses, for every role but the
 *    owner, any update that is not a revocation of a certificate not yet
 *    revoked stays, as defence in depth against a grant made by hand.
 * Role names are SQL identifiers that cannot be bound as parameters: the
 * name comes from the database itself (current_user of the front's
 * connection), is checked against a strict pattern and quoted.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store_db.h"
#include "store_internal.h"
#include "store_roles.h"

struct table_rights {
        const char *table;
        const char *front; /* GRANT list for the front role; "" none */
        const char *why;   /* who writes the table, and why the front may or may not */
};

static const struct table_rights rights[] = {
    {"schema_version", "SELECT", "migrations run by the owner only"},
    {"meta", "SELECT, INSERT, UPDATE",
     "the front appends audit records, whose chain head is kept here: a row policy limits it to "
     "the audit.head.* keys; RA certificates, custody, default CA are the ceremonies'"},
    {"cas", "SELECT", "CA records: init, rollover, compromise ceremonies"},
    {"certificates", "SELECT",
     "issued and revoked by the CA engine only, RA revocations too (it checks the signed request "
     "and completion, ca_ra_revoke.c); a trigger lets no one but the owner undo or rewrite a "
     "revocation"},
    {"requests", "SELECT", "certification requests: the CA engine's issuance"},
    {"crls", "SELECT",
     "made and stored by the CA engine only (op C, engine.h): the front's schedule and API ask "
     "for a CRL, the engine builds it from its own records"},
    {"audit", "SELECT, INSERT", "every zone appends; no one but the owner updates or deletes"},
    {"reissues", "SELECT", "re-issuance after a compromise: a ceremony"},
    {"operators", "SELECT, UPDATE (status, status_time)",
     "enrolled by the custodians with a tag the engine checks (auth.h); a super admin disables "
     "one through the API; status is outside the tag, its certificate's revocation is what counts"},
    {"nonces", "SELECT, INSERT, DELETE", "replay protection of the RA API: the front's own"},
    {"applicants", "SELECT, INSERT, UPDATE", "RA records (CPS §3.2): the front's"},
    {"applications", "SELECT, INSERT, UPDATE",
     "RA workflow (submit, vet, decide): the front's; the engine re-checks the signed steps"},
    {"notifications", "SELECT, INSERT", "notices to applicants: the front's"},
    {"revocation_requests", "SELECT, INSERT, UPDATE",
     "RA revocation workflow (CPS §3.9); the engine carries it out after re-checking"},
    {"km_keys", "", "the KM's tables (its own database): nobody in the service zone"},
    {"km_tasks", "", "the KM's tables (its own database): nobody in the service zone"},
    {"dual_keys", "SELECT", "written by the CA engine when it issues a dual certificate"},
    {"key_recoveries", "SELECT, INSERT, UPDATE",
     "RA key recovery workflow (CPS §3.10); the engine carries it out after re-checking"},
    {"events", "SELECT, INSERT",
     "the change feed; crl.issue is the CA engine's now (op C): INSERT stays until no front "
     "action writes events"},
    {"publish_state", "SELECT, INSERT, UPDATE", "publishing cursors of the front's publishers"},
};
#define NRIGHTS (sizeof(rights) / sizeof(rights[0]))

/* The audit chain head's keys in meta (audit.c HEAD_SEQ, HEAD_HASH). */
#define META_FRONT_KEYS "('audit.head.seq', 'audit.head.hash')"

const char *gmca_store_front_rights(const char *table)
{
        for (size_t i = 0; i < NRIGHTS; i++)
                if (strcmp(rights[i].table, table) == 0)
                        return rights[i].front;
        return NULL;
}

/* A role name we are willing to write into SQL: [a-z_][a-z0-9_]*, under 64 bytes. */
static int role_ok(const char *r)
{
        size_t n = strlen(r);

        if (n == 0 || n >= GMCA_STORE_ROLE_MAX || (r[0] >= '0' && r[0] <= '9'))
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '_'))
                        return 0;
        return 1;
}

static int ddl(struct gmca_store *s, struct gmca_error *e, const char *fmt, ...) GMCA_PRINTF(3, 4);
static int ddl(struct gmca_store *s, struct gmca_error *e, const char *fmt, ...)
{
        char text[1024];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(text))
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "front role: statement too long");
        return gmca_store_exec(s, text, e);
}

static const char SQL_TABLES[] =
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename";

/* Every table of the schema: the listed rights, or none. */
static int grant_tables(struct gmca_store *s, const char *role, struct gmca_error *e)
{
        char names[128][64];
        size_t n = 0;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_TABLES, &q, e)) != 0)
                return rc;
        while ((rc = gmca_q_step(&q, e, "tables")) == GMCA_DB_ROW) {
                if (n == sizeof(names) / sizeof(names[0])) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "front role: too many tables");
                        break;
                }
                if ((rc = gmca_q_col_str(&q, 0, names[n], sizeof(names[n]), "table", e)) != 0)
                        break;
                n++;
        }
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        for (size_t i = 0; i < n; i++) {
                const char *r = gmca_store_front_rights(names[i]);

                if (!role_ok(names[i]))
                        return gmca_error_set(e, GMCA_ERR_STATE,
                                              "front role: unexpected table name in the schema");
                if ((rc = ddl(s, e, "REVOKE ALL ON TABLE %s FROM \"%s\"", names[i], role)) != 0)
                        return rc;
                if (r != NULL && r[0] != '\0' &&
                    (rc = ddl(s, e, "GRANT %s ON TABLE %s TO \"%s\"", r, names[i], role)) != 0)
                        return rc;
        }
        return 0;
}

/* The meta row policy and the certificates trigger (see the top of the file). */
static int guards(struct gmca_store *s, const char *role, struct gmca_error *e)
{
        int rc;

        if ((rc = gmca_store_exec(s, "ALTER TABLE meta ENABLE ROW LEVEL SECURITY", e)) != 0 ||
            (rc = gmca_store_exec(s,
                                  "DROP POLICY IF EXISTS gmca_front_read ON meta;"
                                  "DROP POLICY IF EXISTS gmca_front_add ON meta;"
                                  "DROP POLICY IF EXISTS gmca_front_set ON meta",
                                  e)) != 0 ||
            (rc = ddl(s, e,
                      "CREATE POLICY gmca_front_read ON meta FOR SELECT TO \"%s\" USING (true)",
                      role)) != 0 ||
            (rc = ddl(s, e,
                      "CREATE POLICY gmca_front_add ON meta FOR INSERT TO \"%s\""
                      " WITH CHECK (key IN " META_FRONT_KEYS ")",
                      role)) != 0 ||
            (rc = ddl(s, e,
                      "CREATE POLICY gmca_front_set ON meta FOR UPDATE TO \"%s\""
                      " USING (key IN " META_FRONT_KEYS ") WITH CHECK (key IN " META_FRONT_KEYS ")",
                      role)) != 0)
                return rc;
        return gmca_store_exec(
            s,
            "CREATE OR REPLACE FUNCTION gmca_revocation_final() RETURNS trigger"
            " LANGUAGE plpgsql AS $body$ BEGIN"
            " IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class"
            "  WHERE oid = TG_RELID), 'MEMBER') AND (OLD.status <> 0 OR NEW.status <> 1"
            "  OR NEW.serial <> OLD.serial OR NEW.der <> OLD.der) THEN"
            " RAISE EXCEPTION 'permission denied: only the CA''s owner role changes a certificate"
            " other than by revoking it' USING ERRCODE = 'insufficient_privilege';"
            " END IF; RETURN NEW; END $body$;"
            "DROP TRIGGER IF EXISTS gmca_revocation_final ON certificates;"
            "CREATE TRIGGER gmca_revocation_final BEFORE UPDATE ON certificates"
            " FOR EACH ROW EXECUTE FUNCTION gmca_revocation_final()",
            e);
}

static int apply(struct gmca_store *s, const char *role, struct gmca_error *e)
{
        int rc;

        if (!role_ok(role))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "front role \"%s\": want a plain lower-case role name", role);
        if ((rc = grant_tables(s, role, e)) != 0 || (rc = guards(s, role, e)) != 0)
                return rc;
        /* Identity columns draw from sequences without USAGE; nothing else to grant. */
        return 0;
}

/* current_user and current_database() of the front's own connection. */
static int front_whoami(const char *uri, char *role, char *db, size_t len, struct gmca_error *e)
{
        const struct gmca_db_ops *ops = gmca_db_postgresql();
        struct gmca_db *conn = NULL;
        struct gmca_db_stmt *st = NULL;
        const char *r, *d;
        int rc;

        if ((rc = ops->open(uri, &conn, e)) != 0)
                return rc;
        if (ops->prepare(conn, "SELECT current_user, current_database()", &st) != 0 ||
            ops->step(st) != GMCA_DB_ROW) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "front database: %s", ops->errmsg(conn));
                goto out;
        }
        r = ops->column_text(st, 0);
        d = ops->column_text(st, 1);
        if (r == NULL || d == NULL || strlen(r) >= len || strlen(d) >= len) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "front database: no role or database name");
                goto out;
        }
        memcpy(role, r, strlen(r) + 1);
        memcpy(db, d, strlen(d) + 1);
        rc = 0;
out:
        ops->finalize(st);
        ops->close(conn);
        return rc;
}

static const char SQL_OWNER[] = "SELECT current_user, current_database(),"
                                " (SELECT rolsuper FROM pg_roles WHERE rolname = CAST(? AS TEXT)),"
                                " pg_has_role(CAST(? AS TEXT), (SELECT relowner FROM pg_class"
                                "  WHERE oid = CAST('certificates' AS regclass)), 'MEMBER')";

/* The front role must be restricted: not the owner, no member of its role, no superuser. */
static int check_role(struct gmca_store *s, const char *role, const char *db, struct gmca_error *e)
{
        char me[GMCA_STORE_ROLE_MAX * 4], mydb[GMCA_STORE_ROLE_MAX * 4];
        int64_t super = 0, member = 0;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_OWNER, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, role);
        gmca_q_text(&q, role);
        if ((rc = gmca_q_step(&q, e, "owner role")) == GMCA_DB_ROW &&
            (rc = gmca_q_col_str(&q, 0, me, sizeof(me), "role", e)) == 0 &&
            (rc = gmca_q_col_str(&q, 1, mydb, sizeof(mydb), "database", e)) == 0) {
                super = gmca_q_col_int(&q, 2);
                member = gmca_q_col_int(&q, 3);
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_DB, "owner role: no answer");
        }
        gmca_q_close(&q);
        if (rc != 0)
                return rc;
        if (strcmp(db, mydb) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--front-db connects to database \"%s\", the CA's is \"%s\"",
                                      db, mydb);
        if (strcmp(role, me) == 0 || member || super)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "--front-db connects as role \"%s\", which %s: the front "
                                      "needs a role of its own without the owner's rights",
                                      role,
                                      strcmp(role, me) == 0 ? "is the CA's own"
                                      : super               ? "is a superuser"
                                                            : "is a member of the owner's role");
        return 0;
}

int gmca_store_front_role_set(struct gmca_store *s, const char *front_uri,
                              char role[GMCA_STORE_ROLE_MAX], struct gmca_error *e)
{
        char r[GMCA_STORE_ROLE_MAX * 4], db[GMCA_STORE_ROLE_MAX * 4];
        int rc;

        if (!gmca_store_is_pg(s))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--front-db: a separate front role needs the store on "
                                      "PostgreSQL (gmca init --db postgresql://...); a SQLite "
                                      "store is one file that both zones write");
        if ((rc = gmca_store_uri_check(front_uri, e)) != 0)
                return rc;
        if ((rc = front_whoami(front_uri, r, db, sizeof(r), e)) != 0)
                return rc;
        if (!role_ok(r))
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "front role \"%s\": want a plain lower-case role name", r);
        if ((rc = check_role(s, r, db, e)) != 0 || (rc = apply(s, r, e)) != 0 ||
            (rc = gmca_store_meta_set(s, GMCA_META_FRONT_ROLE, r, e)) != 0)
                return rc;
        memcpy(role, r, strlen(r) + 1);
        return 0;
}

static const char SQL_ROLE_EXISTS[] = "SELECT count(*) FROM pg_roles WHERE rolname = ?";

/* 1 if the cluster has role, 0 if not, or a negative error. */
static int role_exists(struct gmca_store *s, const char *role, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_ROLE_EXISTS, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, role);
        if ((rc = gmca_q_step(&q, e, "front role %s", role)) == GMCA_DB_ROW)
                rc = gmca_q_col_int(&q, 0) > 0;
        else if (rc == GMCA_DB_DONE)
                rc = 0;
        gmca_q_close(&q);
        return rc;
}

int gmca_store_front_role_reapply(struct gmca_store *s, struct gmca_error *e)
{
        char role[GMCA_STORE_ROLE_MAX];
        struct gmca_error ignored = {0};
        int rc;

        if (!gmca_store_is_pg(s))
                return 0;
        rc = gmca_store_meta_get(s, GMCA_META_FRONT_ROLE, role, sizeof(role), &ignored);
        if (rc == GMCA_ERR_NOTFOUND)
                return 0;
        if (rc != 0)
                return gmca_error_set(e, rc, "front role: %s", ignored.msg);
        /* A store restored onto another cluster records a role that is not there:
         * nothing to grant until gmca db front-role names one of this cluster. */
        if ((rc = role_exists(s, role, e)) <= 0)
                return rc;
        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = apply(s, role, e)) != 0) {
                gmca_store_rollback(s);
                return rc;
        }
        return gmca_store_commit(s, e);
}
