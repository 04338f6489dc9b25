/*
 * Unit tests of store_roles (the front's PostgreSQL role): every table the
 * migrations create is in the one list of rights (a new table must be
 * decided on, not left to chance), the tables only the CA engine and the
 * ceremonies write give the front no write at all, the audit log is
 * append-only for it, and a SQLite store refuses a front role. The grants
 * themselves are exercised on PostgreSQL by tests/e2e/pg_roles.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_internal.h"
#include "store_roles.h"

struct fx {
        char dir[64];
        char path[128];
        struct gmca_store *s;
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};

        if (f == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_store_roles.XXXXXX");
        if (mkdtemp(f->dir) == NULL)
                return -1;
        snprintf(f->path, sizeof(f->path), "%s/gmca.db", f->dir);
        if ((f->s = gmca_store_open(f->path, &e)) == NULL) {
                fprintf(stderr, "%s\n", e.msg);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char wal[160];

        gmca_store_close(f->s);
        unlink(f->path);
        snprintf(wal, sizeof(wal), "%s-wal", f->path);
        unlink(wal);
        snprintf(wal, sizeof(wal), "%s-shm", f->path);
        unlink(wal);
        rmdir(f->dir);
        free(f);
        return 0;
}

static const char SQL_TABLES[] = "SELECT name FROM sqlite_master WHERE type = 'table'"
                                 " AND name NOT LIKE 'sqlite_%' ORDER BY name";

static void test_every_table_listed(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_q q;
        int rc, n = 0;

        assert_int_equal(gmca_q_open(f->s, SQL_TABLES, &q, &e), 0);
        while ((rc = gmca_q_step(&q, &e, "tables")) == GMCA_DB_ROW) {
                const char *name = gmca_q_col_text(&q, 0);

                if (gmca_store_front_rights(name) == NULL)
                        fail_msg("table %s is not in store_roles.c's list: decide who writes it",
                                 name);
                n++;
        }
        gmca_q_close(&q);
        assert_int_equal(rc, GMCA_DB_DONE);
        assert_true(n >= 20);
        assert_null(gmca_store_front_rights("no_such_table"));
}

/* What the front may never do to a table, whatever the list says elsewhere. */
static const struct {
        const char *table;
        int insert, update, del; /* 1: must not appear */
} never[] = {
    {"schema_version", 1, 1, 1}, {"cas", 1, 1, 1},       {"requests", 1, 1, 1},
    {"reissues", 1, 1, 1},       {"operators", 1, 0, 1}, {"dual_keys", 1, 1, 1},
    {"km_keys", 1, 1, 1},        {"km_tasks", 1, 1, 1},  {"certificates", 1, 1, 1},
    {"audit", 0, 1, 1},          {"crls", 1, 1, 1},      {"events", 0, 1, 1},
    {"meta", 0, 0, 1},
};

static void test_engine_tables_not_writable(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
                const char *r = gmca_store_front_rights(never[i].table);

                assert_non_null(r);
                if (never[i].insert && strstr(r, "INSERT") != NULL)
                        fail_msg("%s: the front may not INSERT", never[i].table);
                if (never[i].update && strstr(r, "UPDATE") != NULL)
                        fail_msg("%s: the front may not UPDATE", never[i].table);
                if (never[i].del && strstr(r, "DELETE") != NULL)
                        fail_msg("%s: the front may not DELETE", never[i].table);
        }
        /* certificates: read only; the CA engine revokes (ca_ra_revoke.c). */
        assert_string_equal(gmca_store_front_rights("certificates"), "SELECT");
        assert_non_null(
            strstr(gmca_store_front_rights("operators"), "UPDATE (status, status_time)"));
}

static void test_sqlite_refused(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        char role[GMCA_STORE_ROLE_MAX] = "";

        assert_int_equal(gmca_store_front_role_set(f->s, "postgresql:///x?host=/tmp", role, &e),
                         GMCA_ERR_INVALID);
        assert_non_null(strstr(e.msg, "PostgreSQL"));
        assert_string_equal(role, "");
        /* Nothing recorded, and nothing to apply again on SQLite. */
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_front_role_reapply(f->s, &e), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_every_table_listed, setup, teardown),
            cmocka_unit_test(test_engine_tables_not_writable),
            cmocka_unit_test_setup_teardown(test_sqlite_refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
