/*
 * Unit tests of the audit chain: the canonical encoding checked byte for
 * byte, the hash's dependence on every field, truncation that keeps UTF-8
 * whole, appends inside and outside transactions, filters over the log, and
 * tampering with the SQLite file behind the store's back (changed, removed,
 * inserted, reordered records, a cut tail, a moved head), each found with
 * the exact first bad record.
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

#include <sqlite3.h>

#include "audit.h"
#include "util.h"

#define NREC 10

struct fx {
        char dir[64];
        char path[128];
        struct gmca_store *s;
};

static void must(int rc, const struct gmca_error *e)
{
        if (rc != 0)
                fail_msg("rc %d: %s", rc, e->msg);
}

/* The log every tamper case starts from; record 3 has an empty detail, 8 none. */
static const struct gmca_audit_event events[NREC] = {
    {GMCA_EV_CA_INIT, "admin", 1, "sub", "{\"root\":\"root\"}"},
    {GMCA_EV_KEY_GENERATE, "admin", 1, "root", NULL},
    {GMCA_EV_CERT_REQUEST, "op1", 0, NULL, ""},
    {GMCA_EV_CERT_ISSUE, "op1", 1, "0A", "{\"subject\":\"CN=\xe5\xbc\xa0\xe4\xb8\x89\"}"},
    {GMCA_EV_CERT_ISSUE, "op1", 1, "0B", "{}"},
    {GMCA_EV_CERT_REVOKE, "op2", 1, "0A", "{\"reason\":1}"},
    {GMCA_EV_CRL_GENERATE, "op2", 1, "sub#1", "{\"entries\":1}"},
    {GMCA_EV_CERT_REQUEST, "op1", 0, NULL, NULL},
    {GMCA_EV_CONFIG_CHANGE, "operator2", 1, "profiles", "{}"},
    {GMCA_EV_AUDIT_VERIFY, "auditor", 1, NULL, "ok"},
};

static void fx_open(struct fx *f)
{
        struct gmca_error e = {0};

        f->s = gmca_store_open(f->path, &e);
        if (f->s == NULL)
                fail_msg("open: %s", e.msg);
}

/* A fresh store; with fill, the NREC records above, in three ways of appending. */
static void fx_new(struct fx *f, int fill)
{
        struct gmca_error e = {0};

        memset(f, 0, sizeof(*f));
        gmca_strlcpy(f->dir, "/tmp/gmca-audit-XXXXXX", sizeof(f->dir));
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/gmca.db", f->dir);
        fx_open(f);
        if (!fill)
                return;
        for (int i = 0; i < NREC; i++) {
                if (i == 4) {
                        /* Two records in one business transaction. */
                        must(gmca_store_begin(f->s, &e), &e);
                        must(gmca_audit_append(f->s, &events[i], &e), &e);
                        must(gmca_audit_append(f->s, &events[i + 1], &e), &e);
                        must(gmca_store_commit(f->s, &e), &e);
                        i++;
                } else {
                        must(gmca_audit_record(f->s, &events[i], &e), &e);
                }
        }
}

static void fx_free(struct fx *f)
{
        char p[160];

        gmca_store_close(f->s);
        f->s = NULL;
        unlink(f->path);
        snprintf(p, sizeof(p), "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", f->path);
        unlink(p);
        rmdir(f->dir);
}

static void test_empty_log(void **state)
{
        struct gmca_error e = {0};
        int64_t count = -1, bad = -1;
        struct fx f;

        (void)state;
        fx_new(&f, 0);
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(count, 0);
        assert_int_equal(bad, -1); /* untouched on success */
        fx_free(&f);
}

static void test_append_verify(void **state)
{
        struct gmca_error e = {0};
        int64_t count = -1, bad = -1, seq = -1;
        uint8_t hash[GMCA_SM3_LEN];
        char head[80];
        struct fx f;

        (void)state;
        fx_new(&f, 1);
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(count, NREC);
        /* The head in the metadata names the last record. */
        must(gmca_store_audit_last(f.s, &seq, hash, &e), &e);
        assert_int_equal(seq, NREC);
        must(gmca_store_meta_get(f.s, "audit.head.seq", head, sizeof(head), &e), &e);
        assert_string_equal(head, "10");
        must(gmca_store_meta_get(f.s, "audit.head.hash", head, sizeof(head), &e), &e);
        {
                char hex[65];

                gmca_hex(hash, sizeof(hash), hex);
                assert_string_equal(head, hex);
        }
        /* Verification inside a caller's transaction works too and leaves it open. */
        must(gmca_store_begin(f.s, &e), &e);
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(gmca_store_in_transaction(f.s), 1);
        gmca_store_rollback(f.s);
        fx_free(&f);
}

static void test_append_refused(void **state)
{
        struct gmca_error e = {0};
        int64_t count = -1, bad = 0;
        struct fx f;
        static const struct {
                struct gmca_audit_event ev;
                int in_tx;
                int rc;
        } cases[] = {
            {{GMCA_EV_CERT_ISSUE, "op", 1, "01", NULL}, 0, GMCA_ERR_STATE},
            {{GMCA_EV_CERT_ISSUE, NULL, 1, "01", NULL}, 1, GMCA_ERR_INVALID},
            {{GMCA_EV_CERT_ISSUE, "", 1, "01", NULL}, 1, GMCA_ERR_INVALID},
            {{NULL, "op", 1, "01", NULL}, 1, GMCA_ERR_INVALID},
            {{"", "op", 1, "01", NULL}, 1, GMCA_ERR_INVALID},
            {{"an.event.type.that.is.longer.than.sixty.three.bytes.which.is.too.long", "op", 1,
              NULL, NULL},
             1,
             GMCA_ERR_INVALID},
        };

        (void)state;
        fx_new(&f, 0);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                gmca_error_clear(&e);
                if (cases[i].in_tx)
                        must(gmca_store_begin(f.s, &e), &e);
                assert_int_equal(gmca_audit_append(f.s, &cases[i].ev, &e), cases[i].rc);
                assert_true(e.msg[0] != '\0');
                gmca_store_rollback(f.s);
        }
        /* gmca_audit_record opens its own transaction, so not inside another. */
        gmca_error_clear(&e);
        must(gmca_store_begin(f.s, &e), &e);
        assert_int_equal(gmca_audit_record(f.s, &events[0], &e), GMCA_ERR_STATE);
        gmca_store_rollback(f.s);

        /* A rolled-back append leaves neither record nor head behind. */
        gmca_error_clear(&e);
        must(gmca_store_begin(f.s, &e), &e);
        must(gmca_audit_append(f.s, &events[0], &e), &e);
        gmca_store_rollback(f.s);
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(count, 0);
        must(gmca_audit_record(f.s, &events[1], &e), &e);
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(count, 1);
        fx_free(&f);
}

/* ---- tampering with the file ---- */

static void sql(sqlite3 *db, const char *q)
{
        char *err = NULL;

        if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK)
                fail_msg("%s: %s", q, err ? err : "?");
}

static void read_hash(sqlite3 *db, int64_t seq, uint8_t out[GMCA_SM3_LEN])
{
        sqlite3_stmt *st = NULL;

        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT hash FROM audit WHERE seq = ?", -1, &st, NULL),
            SQLITE_OK);
        sqlite3_bind_int64(st, 1, seq);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_bytes(st, 0), GMCA_SM3_LEN);
        memcpy(out, sqlite3_column_blob(st, 0), GMCA_SM3_LEN);
        sqlite3_finalize(st);
}

/* Insert a record whose hash is right for its content and prev, as a forger would. */
static void forge(sqlite3 *db, int64_t seq, const uint8_t prev[GMCA_SM3_LEN])
{
        struct gmca_audit_rec r;
        sqlite3_stmt *st = NULL;

        memset(&r, 0, sizeof(r));
        r.seq = seq;
        r.time = gmca_now_us();
        gmca_strlcpy(r.event, GMCA_EV_CERT_ISSUE, sizeof(r.event));
        gmca_strlcpy(r.actor, "mallory", sizeof(r.actor));
        r.success = 1;
        gmca_strlcpy(r.object, "FORGED", sizeof(r.object));
        memcpy(r.prev, prev, GMCA_SM3_LEN);
        assert_int_equal(gmca_audit_hash(&r, r.hash), 0);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "INSERT INTO audit (seq, time, event, actor, success, "
                                            "object, detail, prev, hash) VALUES (?, ?, ?, ?, ?, "
                                            "?, NULL, ?, ?)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(st, 1, r.seq);
        sqlite3_bind_int64(st, 2, r.time);
        sqlite3_bind_text(st, 3, r.event, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, r.actor, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 5, r.success);
        sqlite3_bind_text(st, 6, r.object, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 7, r.prev, GMCA_SM3_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 8, r.hash, GMCA_SM3_LEN, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
}

/* Shift records 5.. up by one and slip a well-formed forged record in at 5. */
static void insert_between(sqlite3 *db)
{
        uint8_t prev[GMCA_SM3_LEN];

        sql(db, "UPDATE audit SET seq = seq + 1000 WHERE seq >= 5;"
                "UPDATE audit SET seq = seq - 999 WHERE seq >= 1005;"
                "UPDATE meta SET value = '11' WHERE key = 'audit.head.seq'");
        read_hash(db, 4, prev);
        forge(db, 5, prev);
}

/* Add a well-formed record 11 without moving the head. */
static void append_behind(sqlite3 *db)
{
        uint8_t prev[GMCA_SM3_LEN];

        read_hash(db, NREC, prev);
        forge(db, NREC + 1, prev);
}

static const struct {
        const char *name;
        const char *sql;
        void (*fn)(sqlite3 *db);
        int64_t bad;
        const char *says;
} tampers[] = {
    {"detail changed", "UPDATE audit SET detail = 'forged' WHERE seq = 4", NULL, 4,
     "hash mismatch (record altered)"},
    {"event changed", "UPDATE audit SET event = 'cert.revoke' WHERE seq = 7", NULL, 7,
     "hash mismatch"},
    {"empty detail made NULL", "UPDATE audit SET detail = NULL WHERE seq = 3", NULL, 3,
     "hash mismatch"},
    {"NULL detail made empty", "UPDATE audit SET detail = '' WHERE seq = 8", NULL, 8,
     "hash mismatch"},
    {"actor changed", "UPDATE audit SET actor = 'admin' WHERE seq = 9", NULL, 9, "hash mismatch"},
    {"object changed", "UPDATE audit SET object = '0C' WHERE seq = 6", NULL, 6, "hash mismatch"},
    {"failure made success", "UPDATE audit SET success = 1 WHERE seq = 3", NULL, 3,
     "hash mismatch"},
    {"success out of range", "UPDATE audit SET success = 2 WHERE seq = 2", NULL, 2, "success flag"},
    {"time changed", "UPDATE audit SET time = time + 1 WHERE seq = 9", NULL, 9, "hash mismatch"},
    {"middle record deleted", "DELETE FROM audit WHERE seq = 5", NULL, 5, "missing"},
    {"first record deleted", "DELETE FROM audit WHERE seq = 1", NULL, 1, "missing"},
    {"last record deleted", "DELETE FROM audit WHERE seq = 10", NULL, 10, "cut from the end"},
    {"all records deleted", "DELETE FROM audit", NULL, 1, "cut from the end"},
    {"forged record inserted", NULL, insert_between, 6, "prev does not match"},
    {"record appended behind the head", NULL, append_behind, 11, "beyond the chain head"},
    {"records swapped",
     "UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 6;"
     "UPDATE audit SET seq = 6 WHERE seq = -1",
     NULL, 3, "prev does not match"},
    {"neighbours swapped",
     "UPDATE audit SET seq = -1 WHERE seq = 8; UPDATE audit SET seq = 8 WHERE seq = 9;"
     "UPDATE audit SET seq = 9 WHERE seq = -1",
     NULL, 8, "prev does not match"},
    {"prev changed", "UPDATE audit SET prev = zeroblob(32) WHERE seq = 2", NULL, 2,
     "prev does not match"},
    {"first prev changed", "UPDATE audit SET prev = randomblob(32) WHERE seq = 1", NULL, 1,
     "zero hash"},
    {"hash shortened", "UPDATE audit SET hash = zeroblob(31) WHERE seq = 8", NULL, 8, "wrong size"},
    {"hash replaced", "UPDATE audit SET hash = randomblob(32) WHERE seq = 10", NULL, 10,
     "hash mismatch"},
    {"head past the end", "UPDATE meta SET value = '12' WHERE key = 'audit.head.seq'", NULL, 11,
     "cut from the end"},
    {"head behind the end", "UPDATE meta SET value = '9' WHERE key = 'audit.head.seq'", NULL, 10,
     "beyond the chain head"},
    {"head hash changed",
     "UPDATE meta SET value = '" /* 64 zeros */
     "0000000000000000000000000000000000000000000000000000000000000000'"
     " WHERE key = 'audit.head.hash'",
     NULL, 10, "differs from the chain head"},
    {"head removed", "DELETE FROM meta WHERE key LIKE 'audit.head.%'", NULL, 10, "head is missing"},
    {"head half removed", "DELETE FROM meta WHERE key = 'audit.head.hash'", NULL, 10, "incomplete"},
    {"head seq garbled", "UPDATE meta SET value = '10x' WHERE key = 'audit.head.seq'", NULL, 10,
     "malformed"},
};

static void test_tamper(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(tampers) / sizeof(tampers[0]); i++) {
                struct gmca_error e = {0};
                int64_t count = -1, bad = -1;
                sqlite3 *db = NULL;
                struct fx f;
                int rc;

                fx_new(&f, 1);
                gmca_store_close(f.s);
                f.s = NULL;
                assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
                if (tampers[i].sql != NULL)
                        sql(db, tampers[i].sql);
                else
                        tampers[i].fn(db);
                sqlite3_close(db);
                fx_open(&f);
                rc = gmca_audit_verify(f.s, &count, &bad, &e);
                if (rc != GMCA_ERR_TAMPER || bad != tampers[i].bad ||
                    strstr(e.msg, tampers[i].says) == NULL)
                        fail_msg("%s: rc %d, bad %lld (want %lld): %s", tampers[i].name, rc,
                                 (long long)bad, (long long)tampers[i].bad, e.msg);
                assert_int_equal(count, -1);
                fx_free(&f);
        }
}

/*
 * After the tail is cut or the head removed, appending must not paper over
 * it by moving the head: the append is refused and verify still names it.
 */
static void test_append_after_cut(void **state)
{
        static const struct {
                const char *sql;
                int64_t bad;
        } cases[] = {
            {"DELETE FROM audit WHERE seq >= 9", 9},
            {"DELETE FROM meta WHERE key LIKE 'audit.head.%'", 10},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                int64_t count = -1, bad = -1;
                sqlite3 *db = NULL;
                struct fx f;

                fx_new(&f, 1);
                gmca_store_close(f.s);
                f.s = NULL;
                assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
                sql(db, cases[i].sql);
                sqlite3_close(db);
                fx_open(&f);
                assert_int_equal(gmca_audit_record(f.s, &events[0], &e), GMCA_ERR_TAMPER);
                gmca_error_clear(&e);
                assert_int_equal(gmca_audit_verify(f.s, &count, &bad, &e), GMCA_ERR_TAMPER);
                assert_int_equal(bad, cases[i].bad);
                fx_free(&f);
        }
}

/*
 * The documented limit: whoever can rewrite the database can recompute the
 * chain and the head, and the log verifies. Anchoring the head (a
 * signature) is a later step; this test shows why it is needed.
 */
static void test_full_rewrite_undetected(void **state)
{
        struct gmca_error e = {0};
        uint8_t prev[GMCA_SM3_LEN];
        char hex[65], q[200];
        int64_t count = -1, bad = -1;
        sqlite3 *db = NULL;
        struct fx f;

        (void)state;
        fx_new(&f, 1);
        gmca_store_close(f.s);
        f.s = NULL;
        assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
        sql(db, "DELETE FROM audit WHERE seq = 10");
        read_hash(db, 9, prev);
        forge(db, 10, prev);
        read_hash(db, 10, prev);
        gmca_hex(prev, sizeof(prev), hex);
        snprintf(q, sizeof(q), "UPDATE meta SET value = '%s' WHERE key = 'audit.head.hash'", hex);
        sql(db, q);
        sqlite3_close(db);
        fx_open(&f);
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(count, NREC);
        fx_free(&f);
}

/* ---- the hash ---- */

static void put32(uint8_t **p, uint32_t v)
{
        for (int i = 3; i >= 0; i--)
                *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t **p, uint64_t v)
{
        for (int i = 7; i >= 0; i--)
                *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void putstr(uint8_t **p, const char *s)
{
        put32(p, (uint32_t)strlen(s));
        memcpy(*p, s, strlen(s));
        *p += strlen(s);
}

static struct gmca_audit_rec sample(void)
{
        struct gmca_audit_rec r;

        memset(&r, 0, sizeof(r));
        r.seq = 17;
        r.time = 1700000000123456;
        gmca_strlcpy(r.event, "cert.issue", sizeof(r.event));
        gmca_strlcpy(r.actor, "op1", sizeof(r.actor));
        r.success = 1;
        gmca_strlcpy(r.object, "0A1B", sizeof(r.object));
        r.detail = (char *)"{}";
        for (int i = 0; i < GMCA_SM3_LEN; i++)
                r.prev[i] = (uint8_t)i;
        return r;
}

/* The encoding as the design states it, built by hand. */
static void test_hash_encoding(void **state)
{
        struct gmca_audit_rec r = sample();
        uint8_t buf[512], *p, want[GMCA_SM3_LEN], got[GMCA_SM3_LEN];
        const int with_detail[] = {1, 0};

        (void)state;
        for (size_t k = 0; k < 2; k++) {
                r.detail = with_detail[k] ? (char *)"{}" : NULL;
                p = buf;
                memcpy(p, "gmca-audit-v1", 13);
                p += 13;
                put64(&p, 17);
                put64(&p, 1700000000123456);
                putstr(&p, "cert.issue");
                putstr(&p, "op1");
                putstr(&p, "0A1B");
                if (r.detail != NULL)
                        putstr(&p, "{}");
                else
                        put32(&p, 0xFFFFFFFFu);
                *p++ = 1;
                memcpy(p, r.prev, GMCA_SM3_LEN);
                p += GMCA_SM3_LEN;
                assert_int_equal(gmca_sm3(buf, (size_t)(p - buf), want), 0);
                assert_int_equal(gmca_audit_hash(&r, got), 0);
                assert_memory_equal(got, want, GMCA_SM3_LEN);
        }
}

static void test_hash_fields(void **state)
{
        uint8_t base[GMCA_SM3_LEN], h[GMCA_SM3_LEN];
        struct gmca_audit_rec r = sample();
        static const char *const what[] = {
            "seq",
            "time",
            "event",
            "actor",
            "success",
            "object",
            "detail",
            "detail NULL vs empty",
            "prev byte",
            "prev last bit",
            "event/actor split",
            "object empty",
        };

        (void)state;
        assert_int_equal(gmca_audit_hash(&r, base), 0);
        assert_int_equal(gmca_audit_hash(&r, h), 0);
        assert_memory_equal(h, base, GMCA_SM3_LEN); /* deterministic */
        for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
                r = sample();
                switch (i) {
                case 0:
                        r.seq++;
                        break;
                case 1:
                        r.time++;
                        break;
                case 2:
                        r.event[0] = 'C';
                        break;
                case 3:
                        gmca_strlcpy(r.actor, "op2", sizeof(r.actor));
                        break;
                case 4:
                        r.success = 0;
                        break;
                case 5:
                        gmca_strlcpy(r.object, "0A1C", sizeof(r.object));
                        break;
                case 6:
                        r.detail = (char *)"{ }";
                        break;
                case 7: {
                        uint8_t empty[GMCA_SM3_LEN];

                        r.detail = (char *)"";
                        assert_int_equal(gmca_audit_hash(&r, empty), 0);
                        r.detail = NULL;
                        assert_int_equal(gmca_audit_hash(&r, h), 0);
                        assert_memory_not_equal(h, empty, GMCA_SM3_LEN);
                        break;
                }
                case 8:
                        r.prev[0] ^= 0x80;
                        break;
                case 9:
                        r.prev[GMCA_SM3_LEN - 1] ^= 1;
                        break;
                case 10:
                        /* "cert.issue"+"op1" vs "cert.issueo"+"p1": lengths keep them apart. */
                        gmca_strlcpy(r.event, "cert.issueo", sizeof(r.event));
                        gmca_strlcpy(r.actor, "p1", sizeof(r.actor));
                        break;
                case 11:
                        r.object[0] = '\0';
                        break;
                }
                if (i != 7)
                        assert_int_equal(gmca_audit_hash(&r, h), 0);
                if (memcmp(h, base, GMCA_SM3_LEN) == 0)
                        fail_msg("changing %s does not change the hash", what[i]);
        }
        r = sample();
        r.success = 2;
        assert_int_equal(gmca_audit_hash(&r, h), GMCA_ERR_INVALID);
}

/* ---- truncation and listing ---- */

struct got {
        struct gmca_audit_rec last;
        char seqs[256];
        int n;
};

static int collect(const struct gmca_audit_rec *r, void *arg)
{
        struct got *g = arg;
        size_t n = strlen(g->seqs);

        snprintf(g->seqs + n, sizeof(g->seqs) - n, "%s%lld", n ? "," : "", (long long)r->seq);
        free(g->last.detail);
        g->last = *r;
        g->last.detail = r->detail ? strdup(r->detail) : NULL;
        g->n++;
        return 0;
}

static void got_clear(struct got *g)
{
        free(g->last.detail);
        memset(g, 0, sizeof(*g));
}

static int utf8_whole(const char *s)
{
        /* Every lead byte of a 3-byte character is followed by two continuation bytes. */
        size_t n = strlen(s);

        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;

                if ((c & 0xC0) == 0x80 || i + len > n)
                        return 0;
                for (size_t k = 1; k < len; k++)
                        if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                                return 0;
                i += len;
        }
        return 1;
}

static void test_truncation(void **state)
{
        struct gmca_error e = {0};
        struct gmca_audit_event ev = {GMCA_EV_CERT_ISSUE, NULL, 1, NULL, NULL};
        char *detail = malloc(6003), actor[400], object[300];
        struct got g;
        struct fx f;
        int64_t count = 0, bad = 0;

        (void)state;
        assert_non_null(detail);
        /*
         * "xy" then 3-byte characters: byte 4096 is the last byte of a
         * character, so the cut must back up to 4094.
         */
        memcpy(detail, "xy", 2);
        for (int i = 0; i < 2000; i++)
                memcpy(detail + 2 + 3 * i, "\xe4\xb8\xad", 3);
        detail[6002] = '\0';
        actor[0] = '\0';
        for (int i = 0; i < 130; i++)
                memcpy(actor + 2 * i, "\xc3\xa9", 2); /* é */
        actor[260] = '\0';
        memset(object, 'o', sizeof(object) - 1);
        object[sizeof(object) - 1] = '\0';
        ev.actor = actor;
        ev.object = object;
        ev.detail = detail;

        fx_new(&f, 0);
        must(gmca_audit_record(f.s, &ev, &e), &e);
        memset(&g, 0, sizeof(g));
        must(gmca_store_audit_iter(f.s, NULL, collect, &g, &e), &e);
        assert_int_equal(g.n, 1);
        assert_int_equal(strlen(g.last.detail), GMCA_AUDIT_DETAIL_MAX - 2);
        assert_true(utf8_whole(g.last.detail));
        assert_int_equal(strlen(g.last.actor), 254); /* 255 would split an é */
        assert_true(utf8_whole(g.last.actor));
        assert_int_equal(strlen(g.last.object), 127);
        assert_memory_equal(g.last.detail, detail, strlen(g.last.detail));
        must(gmca_audit_verify(f.s, &count, &bad, &e), &e);
        assert_int_equal(count, 1);
        got_clear(&g);
        free(detail);
        fx_free(&f);
}

static void test_iter_filters(void **state)
{
        struct gmca_error e = {0};
        struct gmca_audit_filter all = {0};
        struct got g;
        struct fx f;
        int64_t t4 = 0;
        struct {
                struct gmca_audit_filter f;
                const char *want;
        } cases[] = {
            {{.event = GMCA_EV_CERT_ISSUE}, "4,5"},
            {{.event = "cert.*"}, "3,4,5,6,8"},
            {{.event = "cert.issu"}, ""},
            {{.event = "*"}, "1,2,3,4,5,6,7,8,9,10"},
            {{.actor = "op2"}, "6,7"},
            {{.actor = "op"}, ""},
            {{.event = "cert.*", .actor = "op1"}, "3,4,5,8"},
            {{.limit = 3}, "1,2,3"},
            {{.event = "cert.*", .limit = 2}, "3,4"},
            {{.since = 1}, "1,2,3,4,5,6,7,8,9,10"},
        };

        (void)state;
        fx_new(&f, 1);
        /* Times: read record 4's and filter around it. */
        memset(&g, 0, sizeof(g));
        all.event = GMCA_EV_CERT_ISSUE;
        all.limit = 1;
        must(gmca_store_audit_iter(f.s, &all, collect, &g, &e), &e);
        t4 = g.last.time;
        got_clear(&g);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memset(&g, 0, sizeof(g));
                must(gmca_store_audit_iter(f.s, &cases[i].f, collect, &g, &e), &e);
                if (strcmp(g.seqs, cases[i].want) != 0)
                        fail_msg("case %zu: got '%s', want '%s'", i, g.seqs, cases[i].want);
                got_clear(&g);
        }
        memset(&all, 0, sizeof(all));
        all.until = t4; /* inclusive */
        memset(&g, 0, sizeof(g));
        must(gmca_store_audit_iter(f.s, &all, collect, &g, &e), &e);
        assert_true(g.n >= 4);
        assert_int_equal(g.last.time <= t4, 1);
        got_clear(&g);
        all.until = 0;
        all.since = t4 + 1000000000; /* in the future */
        memset(&g, 0, sizeof(g));
        must(gmca_store_audit_iter(f.s, &all, collect, &g, &e), &e);
        assert_int_equal(g.n, 0);
        got_clear(&g);
        all.since = 0;
        all.limit = -1;
        assert_int_equal(gmca_store_audit_iter(f.s, &all, collect, &g, &e), GMCA_ERR_INVALID);
        fx_free(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty_log),        cmocka_unit_test(test_append_verify),
            cmocka_unit_test(test_append_refused),   cmocka_unit_test(test_tamper),
            cmocka_unit_test(test_append_after_cut), cmocka_unit_test(test_full_rewrite_undetected),
            cmocka_unit_test(test_hash_encoding),    cmocka_unit_test(test_hash_fields),
            cmocka_unit_test(test_truncation),       cmocka_unit_test(test_iter_filters),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
