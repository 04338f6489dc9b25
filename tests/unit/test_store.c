/*
 * Unit tests of the store on a SQLite file in a fresh temporary directory
 * per test: file mode and journal, idempotent migrations, each table's
 * functions with their refusals (duplicate, unknown, already revoked,
 * malformed input), list filters, transactions and statement re-use from
 * inside list callbacks.
 *
 * With GMCA_TEST_DB set to a postgresql:// URI (tests/pg.bash run), the
 * same tests run on that PostgreSQL database instead, its schema emptied
 * before each test; the SQLite-only checks (file mode, journal) are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "store_internal.h"
#include "util.h"

#define NOW 1700000000

struct fx {
        char dir[64];
        char path[1024]; /* a file, or the PostgreSQL URI */
        struct gmca_store *s;
        int64_t ca1, ca2;
};

static const uint8_t fake_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};

static void must(int rc, const struct gmca_error *e)
{
        if (rc != 0)
                fail_msg("rc %d: %s", rc, e->msg);
}

static int64_t add_ca(struct gmca_store *s, const char *name, int64_t parent)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec r;

        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.name, name, sizeof(r.name));
        r.parent_id = parent;
        snprintf(r.subject, sizeof(r.subject), "CN=%s", name);
        snprintf(r.key_file, sizeof(r.key_file), "keys/%s.key", name);
        gmca_strlcpy(r.sm2_id, "1234567812345678", sizeof(r.sm2_id));
        r.created = NOW;
        r.cert_der = (uint8_t *)fake_der;
        r.cert_len = sizeof(fake_der);
        must(gmca_store_ca_insert(s, &r, &e), &e);
        assert_true(r.id > 0);
        return r.id;
}

/* The PostgreSQL database under test, or NULL for SQLite files. */
static const char *pg_uri(void)
{
        const char *u = getenv("GMCA_TEST_DB");

        return u != NULL && gmca_store_uri_is_pg(u) ? u : NULL;
}

static void no_notice(void *arg, const PGresult *r)
{
        (void)arg;
        (void)r;
}

/* Run SQL on the PostgreSQL database from outside the store; first column of the first row. */
static void pg_outside(const char *uri, const char *q, char *out, size_t len)
{
        PGconn *c = PQconnectdb(uri);
        PGresult *r;

        if (PQstatus(c) != CONNECTION_OK)
                fail_msg("psql: %s", PQerrorMessage(c));
        PQsetNoticeReceiver(c, no_notice, NULL);
        r = PQexec(c, q);
        if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
                fail_msg("%s: %s", q, PQresultErrorMessage(r));
        if (out != NULL) {
                out[0] = '\0';
                if (PQntuples(r) > 0 && PQnfields(r) > 0)
                        gmca_strlcpy(out, PQgetvalue(r, 0, 0), len);
        }
        PQclear(r);
        PQfinish(c);
}

static int setup(void **state)
{
        struct gmca_error e = {0};
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        gmca_strlcpy(f->dir, "/tmp/gmca-store-XXXXXX", sizeof(f->dir));
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/gmca.db", f->dir);
        if (pg_uri() != NULL) {
                gmca_strlcpy(f->path, pg_uri(), sizeof(f->path));
                pg_outside(f->path,
                           "SET client_min_messages = warning;"
                           " DROP SCHEMA public CASCADE; CREATE SCHEMA public",
                           NULL, 0);
        }
        f->s = gmca_store_open(f->path, &e);
        if (f->s == NULL)
                fail_msg("open: %s", e.msg);
        f->ca1 = add_ca(f->s, "root", 0);
        f->ca2 = add_ca(f->s, "sub", f->ca1);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char p[1100];

        gmca_store_close(f->s);
        if (pg_uri() == NULL) {
                unlink(f->path);
                snprintf(p, sizeof(p), "%s-wal", f->path);
                unlink(p);
                snprintf(p, sizeof(p), "%s-shm", f->path);
                unlink(p);
        }
        rmdir(f->dir);
        free(f);
        return 0;
}

/* A certificate record with borrowed fake DER. */
static struct gmca_cert_rec cert(const char *serial, int64_t ca_id, const char *subject,
                                 const char *profile, int64_t not_after, int64_t issued_at)
{
        struct gmca_cert_rec r;

        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.serial, serial, sizeof(r.serial));
        r.ca_id = ca_id;
        gmca_strlcpy(r.subject, subject, sizeof(r.subject));
        gmca_strlcpy(r.profile, profile, sizeof(r.profile));
        r.not_before = NOW - 1000;
        r.not_after = not_after;
        r.issued_at = issued_at;
        r.status = GMCA_CERT_VALID;
        r.reason = -1;
        gmca_strlcpy(r.fingerprint, "ab12", sizeof(r.fingerprint));
        r.der = (uint8_t *)fake_der;
        r.der_len = sizeof(fake_der);
        return r;
}

/* Run one SQL query on the file from outside the store; its first column as text. */
static void outside(const char *path, const char *q, char *out, size_t len)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;

        if (pg_uri() != NULL) {
                pg_outside(path, q, out, len);
                return;
        }
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
        out[0] = '\0';
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
                gmca_strlcpy(out, (const char *)sqlite3_column_text(st, 0), len);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void test_open_mode_wal_migrate(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_store *s2;
        struct stat sb;
        char got[64];

        if (pg_uri() == NULL) {
                assert_int_equal(stat(f->path, &sb), 0);
                assert_int_equal(sb.st_mode & 0777, 0600);
                outside(f->path, "PRAGMA journal_mode", got, sizeof(got));
                assert_string_equal(got, "wal");
        }
        assert_true(gmca_store_schema_latest() >= 7);
        assert_int_equal(gmca_store_schema_version(f->s), gmca_store_schema_latest());
        /* Opening again (here while the first is open) migrates nothing. */
        s2 = gmca_store_open(f->path, &e);
        if (s2 == NULL)
                fail_msg("reopen: %s", e.msg);
        assert_int_equal(gmca_store_schema_version(s2), gmca_store_schema_latest());
        gmca_store_close(s2);
        s2 = gmca_store_open(f->path, &e);
        assert_non_null(s2);
        gmca_store_close(s2);
        outside(f->path, "SELECT COUNT(*) FROM schema_version", got, sizeof(got));
        assert_int_equal(strtol(got, NULL, 10), gmca_store_schema_latest());
        /* Nothing issued may vanish: no cascading deletes anywhere. */
        outside(f->path,
                pg_uri() != NULL ? "SELECT COUNT(*) FROM information_schema.referential_constraints"
                                   " WHERE delete_rule <> 'NO ACTION' OR update_rule <> 'NO ACTION'"
                                 : "SELECT COUNT(*) FROM sqlite_master WHERE sql LIKE '%CASCADE%'",
                got, sizeof(got));
        assert_string_equal(got, "0");
        if (pg_uri() != NULL) {
                /* The migrations' types were mapped: ids are identities, blobs bytea. */
                outside(f->path,
                        "SELECT COUNT(*) FROM information_schema.columns WHERE table_name ="
                        " 'audit' AND ((column_name = 'seq' AND is_identity = 'YES' AND"
                        " data_type = 'bigint') OR (column_name = 'hash' AND data_type ="
                        " 'bytea'))",
                        got, sizeof(got));
                assert_string_equal(got, "2");
                return;
        }
        /* The file mode did not loosen with use. */
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_open_uris(void **state)
{
        struct fx *f = *state;
        char uri[1100];
        static const struct {
                const char *uri;
                int ok;
        } cases[] = {
            {NULL, 0},
            {"", 0},
            {"sqlite:", 0},
            {"postgres://127.0.0.1:1/gmca?connect_timeout=2", 0}, /* nobody listens */
            {"mysql://localhost/gmca", 0},
            {"/nonexistent-dir-gmca/x.db", 0},
        };

        if (pg_uri() != NULL)
                gmca_strlcpy(uri, f->path, sizeof(uri));
        else
                snprintf(uri, sizeof(uri), "sqlite:%s", f->path);
        {
                struct gmca_error e = {0};
                struct gmca_store *s = gmca_store_open(uri, &e);

                assert_non_null(s);
                gmca_store_close(s);
        }
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                struct gmca_store *s = gmca_store_open(cases[i].uri, &e);

                assert_null(s);
                assert_true(e.code < 0);
                assert_true(e.msg[0] != '\0');
        }
}

static void test_newer_schema_refused(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        sqlite3 *db = NULL;

        if (pg_uri() != NULL) {
                pg_outside(f->path, "INSERT INTO schema_version VALUES (99, 0)", NULL, 0);
        } else {
                assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
                assert_int_equal(
                    sqlite3_exec(db, "INSERT INTO schema_version VALUES (99, 0)", NULL, NULL, NULL),
                    SQLITE_OK);
                sqlite3_close(db);
        }
        assert_null(gmca_store_open(f->path, &e));
        assert_int_equal(e.code, GMCA_ERR_STATE);
}

static int collect_ca(const struct gmca_ca_rec *r, void *arg)
{
        char *out = arg;
        size_t n = strlen(out);

        snprintf(out + n, 256 - n, "%s%s", n ? "," : "", r->name);
        return 0;
}

static void test_ca(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_ca_rec r, bad;
        char names[256] = "";
        static const struct {
                const char *name;
                int64_t parent;
                int rc;
        } refused[] = {
            {"root", 0, GMCA_ERR_EXISTS},
            {"", 0, GMCA_ERR_INVALID},
            {"tab\there", 0, GMCA_ERR_INVALID},
            {"x123456789012345678901234567890123456789012345678901234567890123", 0,
             GMCA_ERR_INVALID},
            {"orphan", 9999, GMCA_ERR_NOTFOUND}, /* foreign key enforced */
            {"negative", -1, GMCA_ERR_INVALID},
        };

        memset(&r, 0, sizeof(r));
        must(gmca_store_ca_get(f->s, "sub", &r, &e), &e);
        assert_int_equal(r.id, f->ca2);
        assert_int_equal(r.parent_id, f->ca1);
        assert_string_equal(r.subject, "CN=sub");
        assert_string_equal(r.key_file, "keys/sub.key");
        assert_string_equal(r.sm2_id, "1234567812345678");
        assert_int_equal(r.created, NOW);
        assert_int_equal(r.cert_len, sizeof(fake_der));
        assert_memory_equal(r.cert_der, fake_der, sizeof(fake_der));
        gmca_ca_rec_clear(&r);
        gmca_ca_rec_clear(&r); /* any state */

        must(gmca_store_ca_get_by_id(f->s, f->ca1, &r, &e), &e);
        assert_string_equal(r.name, "root");
        assert_int_equal(r.parent_id, 0);
        gmca_ca_rec_clear(&r);

        assert_int_equal(gmca_store_ca_get(f->s, "nope", &r, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_ca_get_by_id(f->s, 4242, &r, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);

        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                memset(&bad, 0, sizeof(bad));
                gmca_strlcpy(bad.name, refused[i].name, sizeof(bad.name));
                if (strlen(refused[i].name) >= sizeof(bad.name))
                        memcpy(bad.name, refused[i].name, sizeof(bad.name)); /* unterminated */
                bad.parent_id = refused[i].parent;
                gmca_strlcpy(bad.subject, "CN=x", sizeof(bad.subject));
                gmca_error_clear(&e);
                assert_int_equal(gmca_store_ca_insert(f->s, &bad, &e), refused[i].rc);
                assert_true(e.msg[0] != '\0');
        }
        add_ca(f->s, "third", f->ca1);
        must(gmca_store_ca_list(f->s, collect_ca, names, &e), &e);
        assert_string_equal(names, "root,sub,third");

        /* Key states: active at insert, then changed; unknown states refused. */
        must(gmca_store_ca_get(f->s, "sub", &r, &e), &e);
        assert_string_equal(r.key_state, GMCA_KEY_ACTIVE);
        gmca_ca_rec_clear(&r);
        must(gmca_store_ca_set_state(f->s, f->ca2, GMCA_KEY_SUPERSEDED, NOW + 5, &e), &e);
        must(gmca_store_ca_get(f->s, "sub", &r, &e), &e);
        assert_string_equal(r.key_state, GMCA_KEY_SUPERSEDED);
        assert_int_equal(r.state_time, NOW + 5);
        gmca_ca_rec_clear(&r);
        assert_int_equal(gmca_store_ca_set_state(f->s, f->ca2, "lost", NOW, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_ca_set_state(f->s, 4242, GMCA_KEY_ARCHIVED, NOW, &e),
                         GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        memset(&bad, 0, sizeof(bad));
        gmca_strlcpy(bad.name, "badstate", sizeof(bad.name));
        gmca_strlcpy(bad.subject, "CN=x", sizeof(bad.subject));
        gmca_strlcpy(bad.key_state, "asleep", sizeof(bad.key_state));
        assert_int_equal(gmca_store_ca_insert(f->s, &bad, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
}

static int collect_reissue(const char *old_serial, const char *new_serial, int64_t when, void *arg)
{
        char *buf = arg;
        size_t n = strlen(buf);

        snprintf(buf + n, 256 - n, "%s%s>%s@%lld", n ? "," : "", old_serial, new_serial,
                 (long long)when);
        return 0;
}

static void test_reissue(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        char buf[256] = "";

        must(gmca_store_reissue_insert(f->s, "job1", "0A", "1B", NOW + 1, &e), &e);
        must(gmca_store_reissue_insert(f->s, "job1", "0C", "1D", NOW, &e), &e);
        must(gmca_store_reissue_insert(f->s, "job2", "0A", "2B", NOW, &e), &e);
        /* One replacement per old certificate and job. */
        assert_int_equal(gmca_store_reissue_insert(f->s, "job1", "0A", "3B", NOW, &e),
                         GMCA_ERR_EXISTS);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_reissue_insert(f->s, "job1", "", "3B", NOW, &e),
                         GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        must(gmca_store_reissue_list(f->s, "job1", collect_reissue, buf, &e), &e);
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "|");
        assert_string_equal(buf, "0C>1D@1700000000,0A>1B@1700000001|");
}

/* Records the serials passed to a list callback, comma-separated. */
struct serials {
        char buf[512];
        int stop_after; /* 0: never */
        int n;
};

static int collect_cert(const struct gmca_cert_rec *r, void *arg)
{
        struct serials *sv = arg;
        size_t n = strlen(sv->buf);

        assert_null(r->der);
        snprintf(sv->buf + n, sizeof(sv->buf) - n, "%s%s", n ? "," : "", r->serial);
        sv->n++;
        return sv->stop_after && sv->n >= sv->stop_after ? 7 : 0;
}

static void test_cert_insert_get(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_cert_rec r = cert("0123456789ABCDEF", f->ca2, "CN=a", "server", NOW + 10, NOW),
                             got;
        int64_t count = -1;
        int exists = -1;

        r.request_id = 5;
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        must(gmca_store_cert_get(f->s, r.serial, &got, &e), &e);
        assert_string_equal(got.serial, r.serial);
        assert_int_equal(got.ca_id, f->ca2);
        assert_string_equal(got.subject, "CN=a");
        assert_string_equal(got.profile, "server");
        assert_int_equal(got.not_before, NOW - 1000);
        assert_int_equal(got.not_after, NOW + 10);
        assert_int_equal(got.issued_at, NOW);
        assert_int_equal(got.status, GMCA_CERT_VALID);
        assert_int_equal(got.revoked_at, 0);
        assert_int_equal(got.reason, -1);
        assert_string_equal(got.fingerprint, "ab12");
        assert_int_equal(got.request_id, 5);
        assert_int_equal(got.der_len, sizeof(fake_der));
        assert_memory_equal(got.der, fake_der, sizeof(fake_der));
        gmca_cert_rec_clear(&got);

        assert_int_equal(gmca_store_cert_insert(f->s, &r, &e), GMCA_ERR_EXISTS);
        gmca_error_clear(&e);
        must(gmca_store_serial_exists(f->s, r.serial, &exists, &e), &e);
        assert_int_equal(exists, 1);
        must(gmca_store_serial_exists(f->s, "0123456789ABCDEE", &exists, &e), &e);
        assert_int_equal(exists, 0);
        must(gmca_store_cert_count(f->s, &count, &e), &e);
        assert_int_equal(count, 1);
        assert_int_equal(gmca_store_cert_get(f->s, "0123456789ABCDEE", &got, &e),
                         GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);

        /* Unknown CA: the foreign key holds. */
        r = cert("0F", 777, "CN=a", "server", NOW, NOW);
        assert_int_equal(gmca_store_cert_insert(f->s, &r, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
}

static void test_cert_insert_refused(void **state)
{
        struct fx *f = *state;
        struct gmca_cert_rec r;
        static const struct {
                const char *what;
                int rc;
        } cases[] = {
            {"no der", GMCA_ERR_INVALID},        {"ca 0", GMCA_ERR_INVALID},
            {"status 2", GMCA_ERR_INVALID},      {"reason 7", GMCA_ERR_INVALID},
            {"empty profile", GMCA_ERR_INVALID}, {"huge der", GMCA_ERR_LIMIT},
            {"bad serial", GMCA_ERR_INVALID},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};

                r = cert("AA", f->ca1, "CN=x", "server", NOW, NOW);
                switch (i) {
                case 0:
                        r.der = NULL;
                        break;
                case 1:
                        r.ca_id = 0;
                        break;
                case 2:
                        r.status = 2;
                        break;
                case 3:
                        r.reason = 7;
                        break;
                case 4:
                        r.profile[0] = '\0';
                        break;
                case 5:
                        r.der_len = 2 * 1024 * 1024;
                        break;
                case 6:
                        gmca_strlcpy(r.serial, "aa", sizeof(r.serial));
                        break;
                }
                assert_int_equal(gmca_store_cert_insert(f->s, &r, &e), cases[i].rc);
                assert_true(e.msg[0] != '\0');
        }
}

static void test_serial_invalid(void **state)
{
        struct fx *f = *state;
        struct gmca_cert_rec got;
        static const struct {
                const char *serial;
                int rc; /* of cert_get */
        } cases[] = {
            {"", GMCA_ERR_INVALID},
            {"0a", GMCA_ERR_INVALID}, /* lower case */
            {"0G", GMCA_ERR_INVALID},
            {"12 34", GMCA_ERR_INVALID},
            {"1'; DROP TABLE certificates; --", GMCA_ERR_INVALID},
            {"12345678901234567890123456789012345678901", GMCA_ERR_INVALID}, /* 41 */
            {"1234567890123456789012345678901234567890", GMCA_ERR_NOTFOUND}, /* 40 */
            {"0", GMCA_ERR_NOTFOUND},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                int exists = 0;

                assert_int_equal(gmca_store_cert_get(f->s, cases[i].serial, &got, &e), cases[i].rc);
                gmca_error_clear(&e);
                assert_int_equal(gmca_store_cert_revoke(f->s, cases[i].serial, NOW, 1, 0, &e),
                                 cases[i].rc);
                gmca_error_clear(&e);
                assert_int_equal(gmca_store_serial_exists(f->s, cases[i].serial, &exists, &e),
                                 cases[i].rc == GMCA_ERR_INVALID ? GMCA_ERR_INVALID : 0);
        }
        {
                struct gmca_error e = {0};

                assert_int_equal(gmca_store_cert_get(f->s, NULL, &got, &e), GMCA_ERR_INVALID);
        }
}

static void test_cert_revoke(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_cert_rec r = cert("0B", f->ca1, "CN=b", "server", NOW + 10, NOW), got;

        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        must(gmca_store_cert_revoke(f->s, "0B", NOW + 1, 1, NOW - 5, &e), &e);
        must(gmca_store_cert_get(f->s, "0B", &got, &e), &e);
        assert_int_equal(got.status, GMCA_CERT_REVOKED);
        assert_int_equal(got.revoked_at, NOW + 1);
        assert_int_equal(got.reason, 1);
        assert_int_equal(got.invalidity_date, NOW - 5);
        gmca_cert_rec_clear(&got);

        /* Again: already revoked, and the first revocation stands. */
        assert_int_equal(gmca_store_cert_revoke(f->s, "0B", NOW + 2, 4, 0, &e), GMCA_ERR_STATE);
        assert_non_null(strstr(e.msg, "already revoked"));
        gmca_error_clear(&e);
        must(gmca_store_cert_get(f->s, "0B", &got, &e), &e);
        assert_int_equal(got.revoked_at, NOW + 1);
        assert_int_equal(got.reason, 1);
        gmca_cert_rec_clear(&got);

        assert_int_equal(gmca_store_cert_revoke(f->s, "0C", NOW, 1, 0, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_cert_insert(f->s, &(struct gmca_cert_rec){0}, &e),
                         GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        r = cert("0D", f->ca1, "CN=d", "server", NOW + 10, NOW);
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        assert_int_equal(gmca_store_cert_revoke(f->s, "0D", NOW, 7, 0, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_cert_revoke(f->s, "0D", 0, 1, 0, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        must(gmca_store_cert_revoke(f->s, "0D", NOW, -1, 0, &e), &e); /* no reasonCode */
}

static void test_cert_list_filters(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        const struct {
                const char *serial;
                int64_t ca;
                const char *subject, *profile;
                int64_t not_after;
                int revoke;
        } certs[] = {
            {"A1", f->ca1, "CN=alice,O=Org", "server", NOW + 100, 0},
            {"A2", f->ca1, "CN=bob,O=Org", "client", NOW - 100, 0},
            {"A3", f->ca2, "CN=carol,O=Other", "server", NOW + 100, 1},
            {"A4", f->ca1, "CN=alice2,O=Org", "server", NOW + 1000, 1},
            {"A5", f->ca2, "CN=dave_x%,O=Org", "client", NOW + 500, 0},
            {"A6", f->ca1, "CN=ALICE", "server", NOW + 50, 0},
        };
        const struct {
                struct gmca_cert_filter f;
                const char *want;
        } cases[] = {
            {{.status = GMCA_STATUS_ANY}, "A1,A2,A3,A4,A5,A6"},
            {{.status = GMCA_CERT_VALID, .now = NOW}, "A1,A5,A6"},
            {{.status = GMCA_CERT_REVOKED, .now = NOW}, "A3,A4"},
            {{.status = GMCA_STATUS_EXPIRED, .now = NOW}, "A2"},
            /* At now+100, A1 (not_after == now) is still valid; A6 expired. */
            {{.status = GMCA_CERT_VALID, .now = NOW + 100}, "A1,A5"},
            {{.status = GMCA_STATUS_EXPIRED, .now = NOW + 100}, "A2,A6"},
            {{.status = GMCA_STATUS_ANY, .ca_id = f->ca1}, "A1,A2,A4,A6"},
            {{.status = GMCA_CERT_REVOKED, .ca_id = f->ca2}, "A3"},
            {{.status = GMCA_STATUS_ANY, .subject = "alice"}, "A1,A4"},
            {{.status = GMCA_STATUS_ANY, .subject = "_x%"}, "A5"},
            {{.status = GMCA_STATUS_ANY, .subject = "%"}, "A5"},
            {{.status = GMCA_STATUS_ANY, .subject = "_"}, "A5"},
            {{.status = GMCA_STATUS_ANY, .subject = "O=Org"}, "A1,A2,A4,A5"},
            {{.status = GMCA_STATUS_ANY, .subject = "nobody"}, ""},
            {{.status = GMCA_STATUS_ANY, .profile = "client"}, "A2,A5"},
            {{.status = GMCA_CERT_VALID, .now = NOW, .profile = "server", .ca_id = f->ca1},
             "A1,A6"},
            {{.status = GMCA_STATUS_ANY, .limit = 2}, "A1,A2"},
            {{.status = GMCA_STATUS_ANY, .limit = 2, .offset = 2}, "A3,A4"},
            {{.status = GMCA_STATUS_ANY, .offset = 5}, "A6"},
            {{.status = GMCA_STATUS_ANY, .offset = 6}, ""},
        };
        static const struct gmca_cert_filter bad[] = {
            {.status = 3},
            {.status = -2},
            {.status = GMCA_STATUS_ANY, .limit = -1},
            {.status = GMCA_STATUS_ANY, .offset = -1},
            {.status = GMCA_STATUS_ANY, .profile = ""},
        };
        struct serials sv;

        for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
                struct gmca_cert_rec r =
                    cert(certs[i].serial, certs[i].ca, certs[i].subject, certs[i].profile,
                         certs[i].not_after, NOW + (int64_t)i);

                must(gmca_store_cert_insert(f->s, &r, &e), &e);
                if (certs[i].revoke)
                        must(gmca_store_cert_revoke(f->s, r.serial, NOW, 1, 0, &e), &e);
        }
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memset(&sv, 0, sizeof(sv));
                must(gmca_store_cert_list(f->s, &cases[i].f, collect_cert, &sv, &e), &e);
                if (strcmp(sv.buf, cases[i].want) != 0)
                        fail_msg("case %zu: got '%s', want '%s'", i, sv.buf, cases[i].want);
        }
        memset(&sv, 0, sizeof(sv));
        must(gmca_store_cert_list(f->s, NULL, collect_cert, &sv, &e), &e);
        assert_string_equal(sv.buf, "A1,A2,A3,A4,A5,A6");
        /* A callback's non-zero return stops the walk and is returned. */
        memset(&sv, 0, sizeof(sv));
        sv.stop_after = 2;
        assert_int_equal(gmca_store_cert_list(f->s, NULL, collect_cert, &sv, &e), 7);
        assert_string_equal(sv.buf, "A1,A2");
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                gmca_error_clear(&e);
                memset(&sv, 0, sizeof(sv));
                assert_int_equal(gmca_store_cert_list(f->s, &bad[i], collect_cert, &sv, &e),
                                 GMCA_ERR_INVALID);
                assert_int_equal(sv.n, 0);
        }
}

static void test_revoked_list(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        static const struct {
                const char *serial;
                int64_t revoked_at; /* 0: stays valid */
                int other_ca;
        } certs[] = {
            {"01", NOW + 30, 0}, {"02", 0, 0},        {"03", NOW + 10, 0},
            {"04", NOW + 20, 1}, {"05", NOW + 20, 0},
        };
        struct serials sv;

        for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
                struct gmca_cert_rec r = cert(certs[i].serial, certs[i].other_ca ? f->ca2 : f->ca1,
                                              "CN=x", "server", NOW + 100, NOW);

                must(gmca_store_cert_insert(f->s, &r, &e), &e);
                if (certs[i].revoked_at)
                        must(gmca_store_cert_revoke(f->s, r.serial, certs[i].revoked_at, 0, 0, &e),
                             &e);
        }
        memset(&sv, 0, sizeof(sv));
        must(gmca_store_revoked_list(f->s, f->ca1, collect_cert, &sv, &e), &e);
        assert_string_equal(sv.buf, "03,05,01");
        memset(&sv, 0, sizeof(sv));
        must(gmca_store_revoked_list(f->s, f->ca2, collect_cert, &sv, &e), &e);
        assert_string_equal(sv.buf, "04");
        memset(&sv, 0, sizeof(sv));
        must(gmca_store_revoked_list(f->s, 999, collect_cert, &sv, &e), &e);
        assert_string_equal(sv.buf, "");
}

static void test_requests(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_request_rec r, got;
        static const uint8_t csr[] = {0x30, 0x00};

        memset(&r, 0, sizeof(r));
        r.created = NOW;
        r.ca_id = f->ca2;
        gmca_strlcpy(r.profile, "server", sizeof(r.profile));
        gmca_strlcpy(r.subject, "CN=req", sizeof(r.subject));
        r.status = GMCA_REQ_PENDING;
        r.csr_der = csr;
        r.csr_len = sizeof(csr);
        r.info_json = "{\"a\":1}";
        must(gmca_store_request_insert(f->s, &r, &e), &e);
        assert_true(r.id > 0);
        must(gmca_store_request_get(f->s, r.id, &got, &e), &e);
        assert_int_equal(got.status, GMCA_REQ_PENDING);
        assert_string_equal(got.serial, "");
        assert_string_equal(got.subject, "CN=req");
        assert_int_equal(got.ca_id, f->ca2);
        assert_null(got.csr_der);

        must(gmca_store_request_set_status(f->s, r.id, GMCA_REQ_ISSUED, "ABCD", &e), &e);
        must(gmca_store_request_get(f->s, r.id, &got, &e), &e);
        assert_int_equal(got.status, GMCA_REQ_ISSUED);
        assert_string_equal(got.serial, "ABCD");

        assert_int_equal(
            gmca_store_request_set_status(f->s, r.id + 100, GMCA_REQ_REJECTED, NULL, &e),
            GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_request_get(f->s, r.id + 100, &got, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_request_set_status(f->s, r.id, 3, NULL, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_request_set_status(f->s, r.id, 1, "xyz", &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);

        /* A second request gets another id; an unknown CA and a missing CSR are refused. */
        {
                int64_t first = r.id;

                must(gmca_store_request_insert(f->s, &r, &e), &e);
                assert_true(r.id > first);
        }
        /* A CSR far over a btree key's limit on PostgreSQL, found by its bytes (ra_check.c). */
        {
                static const char SQL_BY_CSR[] = "SELECT id FROM requests WHERE csr_der = ?";
                const size_t big = 64 * 1024;
                uint8_t *der = malloc(big);
                struct gmca_q q;
                char def[256];

                assert_non_null(der);
                for (size_t i = 0; i < big; i++)
                        der[i] = (uint8_t)(i * 131 + i / 251);
                r.csr_der = der;
                r.csr_len = big;
                must(gmca_store_request_insert(f->s, &r, &e), &e);
                must(gmca_q_open(f->s, SQL_BY_CSR, &q, &e), &e);
                gmca_q_blob(&q, der, big);
                assert_int_equal(gmca_q_step(&q, &e, "by CSR"), GMCA_DB_ROW);
                assert_int_equal(gmca_q_col_int(&q, 0), r.id);
                gmca_q_close(&q);
                free(der);
                r.csr_der = csr;
                r.csr_len = sizeof(csr);
                if (pg_uri() != NULL) {
                        outside(f->path,
                                "SELECT indexdef FROM pg_indexes WHERE indexname = 'requests_csr'",
                                def, sizeof(def));
                        assert_non_null(strstr(def, "USING hash (csr_der)"));
                }
        }
        r.ca_id = 555;
        assert_int_equal(gmca_store_request_insert(f->s, &r, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        r.ca_id = f->ca1;
        r.csr_der = NULL;
        assert_int_equal(gmca_store_request_insert(f->s, &r, &e), GMCA_ERR_INVALID);
}

static int collect_crl(const struct gmca_crl_rec *r, void *arg)
{
        char *out = arg;
        size_t n = strlen(out);

        assert_null(r->der);
        snprintf(out + n, 128 - n, "%s%lld", n ? "," : "", (long long)r->number);
        return 0;
}

static void test_crl(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_crl_rec r, latest;
        static const uint8_t der1[] = {1, 2, 3}, der2[] = {4, 5, 6, 7};
        char list[128] = "";
        int64_t n = 0;

        must(gmca_store_crl_next_number(f->s, f->ca1, &n, &e), &e);
        assert_int_equal(n, 1);
        assert_int_equal(gmca_store_crl_latest(f->s, f->ca1, &latest, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);

        memset(&r, 0, sizeof(r));
        r.ca_id = f->ca1;
        r.number = n;
        r.this_update = NOW;
        r.next_update = NOW + 86400;
        r.entries = 0;
        r.der = (uint8_t *)der1;
        r.der_len = sizeof(der1);
        must(gmca_store_crl_insert(f->s, &r, &e), &e);
        must(gmca_store_crl_next_number(f->s, f->ca1, &n, &e), &e);
        assert_int_equal(n, 2);
        /* The other CA counts on its own. */
        must(gmca_store_crl_next_number(f->s, f->ca2, &n, &e), &e);
        assert_int_equal(n, 1);

        assert_int_equal(gmca_store_crl_insert(f->s, &r, &e), GMCA_ERR_EXISTS);
        gmca_error_clear(&e);

        r.number = 2;
        r.entries = 3;
        r.der = (uint8_t *)der2;
        r.der_len = sizeof(der2);
        must(gmca_store_crl_insert(f->s, &r, &e), &e);
        r.number = 5; /* numbers may skip, never go back */
        must(gmca_store_crl_insert(f->s, &r, &e), &e);
        r.number = 4;
        assert_int_equal(gmca_store_crl_insert(f->s, &r, &e), GMCA_ERR_STATE);
        gmca_error_clear(&e);

        must(gmca_store_crl_latest(f->s, f->ca1, &latest, &e), &e);
        assert_int_equal(latest.number, 5);
        assert_int_equal(latest.entries, 3);
        assert_int_equal(latest.der_len, sizeof(der2));
        assert_memory_equal(latest.der, der2, sizeof(der2));
        gmca_crl_rec_clear(&latest);
        gmca_crl_rec_clear(&latest);

        must(gmca_store_crl_list(f->s, f->ca1, collect_crl, list, &e), &e);
        assert_string_equal(list, "1,2,5");

        r.ca_id = 4040;
        r.number = 1;
        assert_int_equal(gmca_store_crl_insert(f->s, &r, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        r.ca_id = f->ca2;
        r.der = NULL;
        assert_int_equal(gmca_store_crl_insert(f->s, &r, &e), GMCA_ERR_INVALID);
}

static void test_meta(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        char buf[16], big[GMCA_META_VALUE_MAX + 1];

        assert_int_equal(gmca_store_meta_get(f->s, "k", buf, sizeof(buf), &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        must(gmca_store_meta_set(f->s, "k", "v1", &e), &e);
        must(gmca_store_meta_get(f->s, "k", buf, sizeof(buf), &e), &e);
        assert_string_equal(buf, "v1");
        must(gmca_store_meta_set(f->s, "k", "", &e), &e);
        must(gmca_store_meta_get(f->s, "k", buf, sizeof(buf), &e), &e);
        assert_string_equal(buf, "");
        must(gmca_store_meta_set(f->s, "k", "0123456789abcdef", &e), &e);
        gmca_strlcpy(buf, "keep", sizeof(buf)); /* not changed on failure */
        assert_int_equal(gmca_store_meta_get(f->s, "k", buf, sizeof(buf), &e), GMCA_ERR_LIMIT);
        assert_string_equal(buf, "keep");
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_meta_set(f->s, "", "v", &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_meta_set(f->s, "k", NULL, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(gmca_store_meta_set(f->s, "k", big, &e), GMCA_ERR_INVALID);
}

static void test_transactions(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_cert_rec r = cert("7777", f->ca1, "CN=t", "server", NOW + 10, NOW), got;
        struct gmca_ca_rec ca;
        char buf[16];
        int64_t count = -1;

        assert_int_equal(gmca_store_in_transaction(f->s), 0);
        assert_int_equal(gmca_store_commit(f->s, &e), GMCA_ERR_STATE);
        gmca_error_clear(&e);
        gmca_store_rollback(f->s); /* harmless without a transaction */

        must(gmca_store_begin(f->s, &e), &e);
        assert_int_equal(gmca_store_in_transaction(f->s), 1);
        assert_int_equal(gmca_store_begin(f->s, &e), GMCA_ERR_STATE);
        gmca_error_clear(&e);
        add_ca(f->s, "temp", 0);
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        must(gmca_store_meta_set(f->s, "t", "1", &e), &e);
        gmca_store_rollback(f->s);
        assert_int_equal(gmca_store_in_transaction(f->s), 0);

        assert_int_equal(gmca_store_ca_get(f->s, "temp", &ca, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_cert_get(f->s, "7777", &got, &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        assert_int_equal(gmca_store_meta_get(f->s, "t", buf, sizeof(buf), &e), GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        must(gmca_store_cert_count(f->s, &count, &e), &e);
        assert_int_equal(count, 0);

        /* Committed work stays, also across a reopen. */
        must(gmca_store_begin(f->s, &e), &e);
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        must(gmca_store_commit(f->s, &e), &e);
        gmca_store_close(f->s);
        f->s = gmca_store_open(f->path, &e);
        assert_non_null(f->s);
        must(gmca_store_cert_get(f->s, "7777", &got, &e), &e);
        gmca_cert_rec_clear(&got);

        /* A transaction left open is rolled back by close. */
        must(gmca_store_begin(f->s, &e), &e);
        must(gmca_store_meta_set(f->s, "t", "2", &e), &e);
        gmca_store_close(f->s);
        f->s = gmca_store_open(f->path, &e);
        assert_non_null(f->s);
        assert_int_equal(gmca_store_meta_get(f->s, "t", buf, sizeof(buf), &e), GMCA_ERR_NOTFOUND);
}

/* A list callback that uses the same statements again (the cache must not be clobbered). */
struct nest {
        struct gmca_store *s;
        char buf[256];
};

static int nested_inner(const struct gmca_ca_rec *r, void *arg)
{
        struct nest *n = arg;
        size_t len = strlen(n->buf);

        snprintf(n->buf + len, sizeof(n->buf) - len, "%s", r->name);
        return 0;
}

static int nested_outer(const struct gmca_ca_rec *r, void *arg)
{
        struct nest *n = arg;
        struct gmca_error e = {0};
        struct gmca_ca_rec again;
        size_t len = strlen(n->buf);

        snprintf(n->buf + len, sizeof(n->buf) - len, "[%s:", r->name);
        must(gmca_store_ca_get_by_id(n->s, r->id, &again, &e), &e);
        assert_string_equal(again.name, r->name);
        gmca_ca_rec_clear(&again);
        must(gmca_store_ca_list(n->s, nested_inner, n, &e), &e);
        len = strlen(n->buf);
        snprintf(n->buf + len, sizeof(n->buf) - len, "]");
        return 0;
}

static void test_reentrant_list(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct nest n = {.s = f->s};

        must(gmca_store_ca_list(f->s, nested_outer, &n, &e), &e);
        assert_string_equal(n.buf, "[root:rootsub][sub:rootsub]");
}

/* Many inserts in one transaction: exercises the statement cache. */
static void test_bulk_insert(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        int64_t count = 0;

        must(gmca_store_begin(f->s, &e), &e);
        for (int i = 0; i < 2000; i++) {
                struct gmca_cert_rec r;

                snprintf(serial, sizeof(serial), "%08X", (unsigned)i);
                r = cert(serial, f->ca2, "CN=bulk", "server", NOW + 10, NOW + i);
                must(gmca_store_cert_insert(f->s, &r, &e), &e);
        }
        must(gmca_store_commit(f->s, &e), &e);
        must(gmca_store_cert_count(f->s, &count, &e), &e);
        assert_int_equal(count, 2000);
}

/*
 * A refused write (a duplicate key) inside a transaction leaves the
 * transaction usable, as callers audit the refusal in it: SQLite does so by
 * itself, the PostgreSQL backend through a savepoint per write.
 */
static void test_refusal_keeps_transaction(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_cert_rec r = cert("5151", f->ca1, "CN=t", "server", NOW + 10, NOW), got;
        char buf[16];

        must(gmca_store_begin(f->s, &e), &e);
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        assert_int_equal(gmca_store_cert_insert(f->s, &r, &e), GMCA_ERR_EXISTS);
        gmca_error_clear(&e);
        must(gmca_store_meta_set(f->s, "after", "refusal", &e), &e);
        must(gmca_store_commit(f->s, &e), &e);
        must(gmca_store_cert_get(f->s, "5151", &got, &e), &e);
        gmca_cert_rec_clear(&got);
        must(gmca_store_meta_get(f->s, "after", buf, sizeof(buf), &e), &e);
        assert_string_equal(buf, "refusal");
}

/* Blobs come back byte for byte: NULs, 0xff, and a CRL over the 1 MiB copy limit. */
static void test_blob_binary(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        static const size_t sizes[] = {1, 3, 256, 3 * 1024 * 1024 + 7};
        struct gmca_crl_rec r, got;
        uint8_t *buf;

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                assert_non_null(buf = malloc(sizes[i]));
                for (size_t j = 0; j < sizes[i]; j++)
                        buf[j] = (uint8_t)(j * 7 + i);
                buf[0] = 0;
                buf[sizes[i] - 1] = 0xff;
                memset(&r, 0, sizeof(r));
                r.ca_id = f->ca1;
                r.number = (int64_t)i + 1;
                r.this_update = NOW;
                r.next_update = NOW + 86400;
                r.der = buf;
                r.der_len = sizes[i];
                must(gmca_store_crl_insert(f->s, &r, &e), &e);
                memset(&got, 0, sizeof(got));
                must(gmca_store_crl_get(f->s, f->ca1, (int64_t)i + 1, &got, &e), &e);
                assert_int_equal(got.der_len, sizes[i]);
                assert_memory_equal(got.der, buf, sizes[i]);
                assert_int_equal(got.next_update, NOW + 86400);
                gmca_crl_rec_clear(&got);
                free(buf);
        }
}

/* Open cursors of the store's own session (pg_cursors is per session); -1 on SQLite. */
static int64_t open_cursors(struct gmca_store *s)
{
        static const char SQL[] = "SELECT count(*) FROM pg_cursors WHERE name LIKE 'gmca_c%'";
        struct gmca_error e = {0};
        struct gmca_q q;
        int64_t n;

        if (pg_uri() == NULL)
                return -1;
        must(gmca_q_open(s, SQL, &q, &e), &e);
        assert_int_equal(gmca_q_step(&q, &e, "cursors"), GMCA_DB_ROW);
        n = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return n;
}

struct walk {
        struct gmca_store *s;
        int64_t rows, last_at, stop_at, cursors;
};

/* In key order, with other statements (a read and a write) run in the middle. */
static int walk_row(const struct gmca_cert_rec *r, void *arg)
{
        struct walk *w = arg;
        struct gmca_error e = {0};
        struct gmca_cert_rec again;
        char buf[32];

        assert_true(r->revoked_at > w->last_at);
        w->last_at = r->revoked_at;
        if (++w->rows % 700 == 1) {
                must(gmca_store_cert_get(w->s, r->serial, &again, &e), &e);
                assert_string_equal(again.serial, r->serial);
                gmca_cert_rec_clear(&again);
                snprintf(buf, sizeof(buf), "%lld", (long long)w->rows);
                must(gmca_store_meta_set(w->s, "walked", buf, &e), &e);
                if (open_cursors(w->s) > w->cursors)
                        w->cursors =
                            open_cursors(w->s); /* the list's own, while it has rows left */
        }
        return w->rows == w->stop_at ? GMCA_ERR_STATE : 0;
}

/*
 * A list of more rows than the PostgreSQL backend fetches at once (a CRL's
 * revoked list) comes whole and in order through its cursor, outside and
 * inside a transaction, while other statements run between its rows; a
 * walk stopped early or finished leaves no cursor open.
 */
static void test_stream_large(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        const int n = 2345;
        char serial[GMCA_SERIAL_HEX_MAX];
        struct walk w;

        must(gmca_store_begin(f->s, &e), &e);
        for (int i = 0; i < n; i++) {
                struct gmca_cert_rec r;

                snprintf(serial, sizeof(serial), "7%07X", (unsigned)i);
                r = cert(serial, f->ca1, "CN=many", "server", NOW + 100, NOW);
                must(gmca_store_cert_insert(f->s, &r, &e), &e);
                must(gmca_store_cert_revoke(f->s, serial, NOW + n - i, 1, 0, &e), &e);
        }
        must(gmca_store_commit(f->s, &e), &e);
        for (int in_tx = 0; in_tx < 2; in_tx++) {
                w = (struct walk){.s = f->s, .cursors = -1};
                if (in_tx)
                        must(gmca_store_begin(f->s, &e), &e);
                must(gmca_store_revoked_list(f->s, f->ca1, walk_row, &w, &e), &e);
                if (in_tx)
                        must(gmca_store_commit(f->s, &e), &e);
                assert_int_equal(w.rows, n);
                assert_int_equal(w.cursors, pg_uri() != NULL ? 1 : -1);
                assert_int_equal(open_cursors(f->s), pg_uri() != NULL ? 0 : -1);
        }
        w = (struct walk){.s = f->s, .stop_at = 1500};
        assert_int_equal(gmca_store_revoked_list(f->s, f->ca1, walk_row, &w, &e), GMCA_ERR_STATE);
        assert_int_equal(w.rows, 1500);
        assert_int_equal(open_cursors(f->s), pg_uri() != NULL ? 0 : -1);
}

/*
 * PostgreSQL: a session lost between transactions (a server restart, here
 * its backend terminated) is opened again; reads and transactions go on.
 */
static void test_pg_session_lost(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        char buf[16];

        if (pg_uri() == NULL)
                skip();
        must(gmca_store_meta_set(f->s, "k", "before", &e), &e);
        pg_outside(f->path,
                   "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                   " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                   NULL, 0);
        must(gmca_store_meta_get(f->s, "k", buf, sizeof(buf), &e), &e);
        assert_string_equal(buf, "before");
        pg_outside(f->path,
                   "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
                   " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                   NULL, 0);
        must(gmca_store_begin(f->s, &e), &e);
        must(gmca_store_meta_set(f->s, "k", "after", &e), &e);
        must(gmca_store_commit(f->s, &e), &e);
        must(gmca_store_meta_get(f->s, "k", buf, sizeof(buf), &e), &e);
        assert_string_equal(buf, "after");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_open_mode_wal_migrate, setup, teardown),
            cmocka_unit_test_setup_teardown(test_open_uris, setup, teardown),
            cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ca, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reissue, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cert_insert_get, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cert_insert_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_serial_invalid, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cert_revoke, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cert_list_filters, setup, teardown),
            cmocka_unit_test_setup_teardown(test_revoked_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crl, setup, teardown),
            cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
            cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reentrant_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bulk_insert, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refusal_keeps_transaction, setup, teardown),
            cmocka_unit_test_setup_teardown(test_blob_binary, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stream_large, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pg_session_lost, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
