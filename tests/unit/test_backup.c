/*
 * Unit tests for the backup container and its database deltas: package
 * round trips, refused names, every byte of a package flipped and every
 * truncation, the outer archive framing and its SM4-GCM body under a known
 * data key, the block lists and delta parsers on good and bad input, and
 * an incremental computed between two states of a real SQLite database,
 * applied to a copy of the first state, that must give the second exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "backup.h"
#include "backup_internal.h"
#include "crypto.h"
#include "store.h"
#include "util.h"
#include "testutil.h"

static int seal_fixed(void *arg, const uint8_t *m, size_t len, uint8_t seal[GMCA_PKG_SEAL_MAX],
                      size_t *seallen, struct gmca_error *e)
{
        (void)arg;
        (void)e;
        if (gmca_sm3(m, len, seal) != 0)
                return GMCA_ERR_CRYPTO;
        *seallen = GMCA_SM3_LEN;
        return 0;
}

/* Three entries, given out of order. */
static int pack3(uint8_t **out, size_t *len)
{
        struct gmca_pkg_entry v[] = {
            {"files/gmca.json", (const uint8_t *)"{}", 2},
            {"db/blocks", (const uint8_t *)"schema x\n", 9},
            {"files/crl/sub/1.crl", (const uint8_t *)"", 0},
        };
        struct gmca_error e = {0};

        return gmca_pkg_pack(v, 3, seal_fixed, NULL, out, len, &e);
}

static void test_pkg_round_trip(void **state)
{
        struct gmca_error e = {0};
        struct gmca_pkg p;
        uint8_t *buf = NULL, want[GMCA_SM3_LEN];
        size_t len = 0;

        (void)state;
        assert_int_equal(pack3(&buf, &len), 0);
        expect(gmca_pkg_parse(buf, len, &p, &e), &e, 0, NULL, "parse");
        assert_int_equal(p.n, 3);
        assert_string_equal(p.v[0].name, "db/blocks");
        assert_string_equal(p.v[1].name, "files/crl/sub/1.crl");
        assert_string_equal(p.v[2].name, "files/gmca.json");
        assert_int_equal(p.v[1].len, 0);
        assert_memory_equal(p.v[2].data, "{}", 2);
        assert_non_null(gmca_pkg_find(&p, "files/gmca.json"));
        assert_null(gmca_pkg_find(&p, "files/none"));
        assert_int_equal(gmca_sm3(p.manifest, p.manifest_len, want), 0);
        assert_int_equal(p.seal_len, GMCA_SM3_LEN);
        assert_memory_equal(p.seal, want, GMCA_SM3_LEN);
        gmca_pkg_clear(&p);
        OPENSSL_free(buf);
}

static void test_pkg_bad_names(void **state)
{
        static const char *const bad[] = {"",     "/abs",      "a/../b", "..",   "a/..",
                                          "./a",  "a//b",      "a/",     "a b",  "MANIFEST",
                                          "a\\b", "tab\there", "dir/.",  "\x7f", NULL};
        struct gmca_error e = {0};
        uint8_t *out = NULL;
        size_t len = 0, i;

        (void)state;
        for (i = 0; bad[i] != NULL; i++) {
                struct gmca_pkg_entry v[] = {{bad[i], (const uint8_t *)"x", 1}};
                gmca_error_clear(&e);
                if (gmca_pkg_pack(v, 1, seal_fixed, NULL, &out, &len, &e) != GMCA_ERR_INVALID)
                        fail_msg("name \"%s\" accepted", bad[i]);
        }
        {
                struct gmca_pkg_entry dup[] = {{"a", (const uint8_t *)"x", 1},
                                               {"a", (const uint8_t *)"y", 1}};
                gmca_error_clear(&e);
                expect(gmca_pkg_pack(dup, 2, seal_fixed, NULL, &out, &len, &e), &e,
                       GMCA_ERR_INVALID, "duplicate", "duplicate names");
        }
        {
                struct gmca_pkg_entry good[] = {{"a/.b/c..d", (const uint8_t *)"x", 1}};
                gmca_error_clear(&e);
                expect(gmca_pkg_pack(good, 1, seal_fixed, NULL, &out, &len, &e), &e, 0, NULL,
                       "dots inside names");
                OPENSSL_free(out);
        }
}

/* Every flipped byte is refused (or, in the seal, left to the caller's check). */
static void test_pkg_tamper_every_byte(void **state)
{
        struct gmca_error e = {0};
        struct gmca_pkg p;
        uint8_t *buf = NULL;
        size_t len = 0, i;

        (void)state;
        assert_int_equal(pack3(&buf, &len), 0);
        for (i = 0; i < len; i++) {
                int rc;
                buf[i] ^= 0x20;
                gmca_error_clear(&e);
                rc = gmca_pkg_parse(buf, len, &p, &e);
                if (rc == 0) {
                        /* only the seal bytes are not checked by the parser */
                        if (i < len - p.seal_len)
                                fail_msg("flipped byte %zu accepted", i);
                        gmca_pkg_clear(&p);
                } else if (e.msg[0] == '\0') {
                        fail_msg("byte %zu: refused without a cause", i);
                }
                buf[i] ^= 0x20;
        }
        OPENSSL_free(buf);
}

static void test_pkg_truncated_and_trailing(void **state)
{
        struct gmca_error e = {0};
        struct gmca_pkg p;
        uint8_t *buf = NULL, *big;
        size_t len = 0, i;

        (void)state;
        assert_int_equal(pack3(&buf, &len), 0);
        for (i = 0; i < len; i++) {
                gmca_error_clear(&e);
                if (gmca_pkg_parse(buf, i, &p, &e) == 0)
                        fail_msg("truncated to %zu accepted", i);
        }
        big = malloc(len + 1);
        assert_non_null(big);
        memcpy(big, buf, len);
        big[len] = 0;
        gmca_error_clear(&e);
        expect(gmca_pkg_parse(big, len + 1, &p, &e), &e, GMCA_ERR_INVALID, "after it",
               "a byte after the seal");
        free(big);
        OPENSSL_free(buf);
}

/* An archive built here from backup_restore.c's layout, under data key dk. */
static uint8_t *make_archive(const uint8_t dk[16], size_t *outlen)
{
        static const char hdr[] = "{\"base\":\"\",\"created\":1,\"format\":1,\"key_id\":\"00\","
                                  "\"kind\":\"full\",\"seq\":1}";
        uint8_t iv[GMCA_SM4_GCM_IV_LEN] = {1, 2, 3}, *pkg = NULL, *a;
        size_t pkglen = 0, off = 0, aad;
        struct gmca_error e = {0};

        if (gmca_pkg_pack((struct gmca_pkg_entry[]){{"db/blocks", (const uint8_t *)"x", 1}}, 1,
                          bk_mac_seal, (void *)dk, &pkg, &pkglen, &e) != 0)
                return NULL;
        a = malloc(8 + 4 + sizeof(hdr) + 2 + 4 + sizeof(iv) + 8 + pkglen + 16);
        memcpy(a, GMCA_BACKUP_MAGIC, 8);
        off = 8;
        gmca_put_be32(a + off, (uint32_t)strlen(hdr));
        memcpy(a + off + 4, hdr, strlen(hdr));
        off += 4 + strlen(hdr);
        a[off] = 0;
        a[off + 1] = 4;
        memcpy(a + off + 2, "KKKK", 4);
        off += 6;
        memcpy(a + off, iv, sizeof(iv));
        off += sizeof(iv);
        aad = off;
        gmca_put_be64(a + off, pkglen);
        off += 8;
        if (gmca_sm4_gcm_encrypt(dk, iv, a, aad, pkg, pkglen, a + off, a + off + pkglen, &e) != 0)
                return NULL;
        OPENSSL_free(pkg);
        *outlen = off + pkglen + 16;
        return a;
}

static void test_archive_outer_and_body(void **state)
{
        uint8_t dk[16], wrong[16], *a, *plain = NULL;
        struct gmca_backup_outer o;
        struct gmca_error e = {0};
        struct gmca_pkg p;
        size_t len = 0, plen = 0, i, koff;

        (void)state;
        memset(dk, 0x5A, sizeof(dk));
        memset(wrong, 0x5B, sizeof(wrong));
        assert_non_null(a = make_archive(dk, &len));
        expect(gmca_backup_parse_outer(a, len, &o, &e), &e, 0, NULL, "outer");
        assert_int_equal(o.sealed_len, 4);
        koff = (size_t)(o.sealed_key - a);
        expect(bk_decrypt(a, &o, dk, &plain, &plen, &p, &e), &e, 0, NULL, "decrypt");
        assert_int_equal(p.n, 1);
        gmca_pkg_clear(&p);
        OPENSSL_clear_free(plain, plen);
        gmca_error_clear(&e);
        expect(bk_decrypt(a, &o, wrong, &plain, &plen, &p, &e), &e, GMCA_ERR_TAMPER, "SM4-GCM",
               "wrong data key");
        /* Any flipped byte: the framing refuses it or the tag does. */
        for (i = 0; i < len; i++) {
                int rc;
                a[i] ^= 1;
                gmca_error_clear(&e);
                rc = gmca_backup_parse_outer(a, len, &o, &e);
                if (rc == 0 && bk_decrypt(a, &o, dk, &plain, &plen, &p, &e) == 0) {
                        /* the sealed key bytes are checked by SM2 decryption, not here */
                        if (i < koff || i >= koff + o.sealed_len)
                                fail_msg("flipped byte %zu of the archive accepted", i);
                        gmca_pkg_clear(&p);
                        OPENSSL_clear_free(plain, plen);
                }
                a[i] ^= 1;
        }
        for (i = 0; i < len; i++) {
                gmca_error_clear(&e);
                if (gmca_backup_parse_outer(a, i, &o, &e) == 0)
                        fail_msg("archive cut to %zu accepted", i);
        }
        free(a);
}

static void test_blocks_parse(void **state)
{
        static const char good[] =
            "schema 0000000000000000000000000000000000000000000000000000000000000000\n"
            "audit 0 1111111111111111111111111111111111111111111111111111111111111111 255\n"
            "audit 1 2222222222222222222222222222222222222222222222222222222222222222 3\n"
            "certificates 0 3333333333333333333333333333333333333333333333333333333333333333 256\n";
        static const char *const bad[] = {
            "",
            "schema 00\n",
            "schema 0000000000000000000000000000000000000000000000000000000000000000",
            "schema 0000000000000000000000000000000000000000000000000000000000000000\n"
            "audit 1 1111111111111111111111111111111111111111111111111111111111111111 1\n"
            "audit 0 1111111111111111111111111111111111111111111111111111111111111111 1\n",
            "schema 0000000000000000000000000000000000000000000000000000000000000000\n"
            "audit 0 1111111111111111111111111111111111111111111111111111111111111111 257\n",
            "schema 0000000000000000000000000000000000000000000000000000000000000000\n"
            "au;dit 0 1111111111111111111111111111111111111111111111111111111111111111 1\n",
            "schema 0000000000000000000000000000000000000000000000000000000000000000\n"
            "audit x 1111111111111111111111111111111111111111111111111111111111111111 1\n",
            "schema 0000000000000000000000000000000000000000000000000000000000000000\n"
            "audit 0 1111111111111111111111111111111111111111111111111111111111111111 1 extra\n",
            NULL};
        struct bk_blocks b;
        struct gmca_error e = {0};
        size_t i;

        (void)state;
        expect(bk_blocks_parse((const uint8_t *)good, strlen(good), &b, &e), &e, 0, NULL, "good");
        assert_int_equal(b.n, 3);
        assert_int_equal(b.v[1].no, 1);
        assert_int_equal(b.v[2].rows, 256);
        bk_blocks_free(&b);
        for (i = 0; bad[i] != NULL; i++) {
                gmca_error_clear(&e);
                if (bk_blocks_parse((const uint8_t *)bad[i], strlen(bad[i]), &b, &e) !=
                    GMCA_ERR_INVALID)
                        fail_msg("bad block list %zu accepted", i);
        }
}

#define H64 "0000000000000000000000000000000000000000000000000000000000000000"
static void test_files_parse(void **state)
{
        static const char good[] =
            H64 " 2 600 files/crl/sub/1.crl\n" H64 " 0 644 files/gmca.json\n";
        static const char *const bad[] = {H64 " 1 600 files/../../etc/passwd\n",
                                          H64 " 1 600 files//x\n",
                                          H64 " 1 600 gmca.json\n",
                                          H64 " 1 900 files/x\n",
                                          H64 " x 600 files/x\n",
                                          H64 " 1 600 files/b\n" H64 " 1 600 files/a\n",
                                          H64 " 1 600 files/x",
                                          H64 " 1 600 files/a b\n",
                                          "00 1 600 files/x\n",
                                          NULL};
        struct bk_files f;
        struct gmca_error e = {0};
        size_t i;

        (void)state;
        expect(bk_files_parse((const uint8_t *)good, strlen(good), &f, &e), &e, 0, NULL, "good");
        assert_int_equal(f.n, 2);
        assert_int_equal(f.v[0].size, 2);
        assert_int_equal(f.v[1].mode, 0644);
        assert_non_null(bk_files_find(&f, "files/gmca.json"));
        bk_files_free(&f);
        for (i = 0; bad[i] != NULL; i++) {
                gmca_error_clear(&e);
                if (bk_files_parse((const uint8_t *)bad[i], strlen(bad[i]), &f, &e) !=
                    GMCA_ERR_INVALID)
                        fail_msg("bad file list %zu accepted", i);
        }
}

static sqlite3 *db_at(const char *path)
{
        sqlite3 *db = NULL;

        unlink(path);
        if (sqlite3_open(path, &db) != SQLITE_OK)
                return NULL;
        return db;
}

static void exec(sqlite3 *db, const char *sql)
{
        char *err = NULL;

        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
                fail_msg("%s: %s", sql, err);
}

/* A state, a copy of it, changes (append, update, delete, every value type), the delta. */
static void test_delta_between_states(void **state)
{
        char a[] = "/tmp/gmca-test-bk-a.XXXXXX", bpath[64];
        struct bk_blocks before, after, now;
        struct bk_buf delta = {0};
        struct gmca_error e = {0};
        sqlite3 *db, *copy;
        size_t nb = 0, nb2 = 0;
        int fd, i;

        (void)state;
        assert_true((fd = mkstemp(a)) >= 0);
        close(fd);
        snprintf(bpath, sizeof(bpath), "%s.copy", a);
        assert_non_null(db = db_at(a));
        exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, b BLOB, r REAL, n INTEGER);"
                 "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)");
        exec(db, "BEGIN");
        for (i = 0; i < 600; i++) {
                char sql[160];
                snprintf(sql, sizeof(sql),
                         "INSERT INTO t (s, b, r, n) VALUES ('row %d', x'00ff%02x', %d.5, NULL)", i,
                         i % 256, i);
                exec(db, sql);
        }
        exec(db, "INSERT INTO kv VALUES ('a', '1'), ('b', '2'); COMMIT");
        expect(bk_db_blocks(db, &before, &e), &e, 0, NULL, "blocks before");
        assert_int_equal(before.n, 3 + 1); /* rows 1..600: blocks 0, 1, 2; kv: 1 */
        assert_int_equal(bk_snapshot(a, bpath, &e), 0);
        /* An update in block 0, a delete in block 1, appends into a new block 3 and 4. */
        exec(db, "UPDATE t SET s = 'revoked', n = 7 WHERE id = 5; DELETE FROM t WHERE id = 300;"
                 "UPDATE kv SET v = '3' WHERE k = 'b'");
        exec(db, "BEGIN");
        for (i = 0; i < 500; i++)
                exec(db, "INSERT INTO t (s) VALUES ('later')");
        exec(db, "COMMIT");
        expect(bk_db_blocks(db, &after, &e), &e, 0, NULL, "blocks after");
        expect(bk_delta_make(db, &before, &after, &delta, &nb, &e), &e, 0, NULL, "delta");
        assert_int_equal(nb, 1 + 1 + 1 + 2 + 1); /* block 0, 1, 2 (filled), 3, 4; kv */
        expect(bk_delta_check(delta.p, delta.len, &nb2, &e), &e, 0, NULL, "check");
        assert_int_equal(nb2, nb);
        assert_int_equal(sqlite3_open(bpath, &copy), SQLITE_OK);
        expect(bk_delta_apply(copy, delta.p, delta.len, &e), &e, 0, NULL, "apply");
        expect(bk_db_blocks(copy, &now, &e), &e, 0, NULL, "blocks of the copy");
        expect(bk_blocks_same(&now, &after, &e), &e, 0, NULL, "same");
        gmca_error_clear(&e);
        expect(bk_blocks_same(&now, &before, &e), &e, GMCA_ERR_TAMPER, "differ", "not before");
        bk_blocks_free(&before);
        bk_blocks_free(&after);
        bk_blocks_free(&now);
        bk_buf_free(&delta);
        sqlite3_close(copy);
        sqlite3_close(db);
        unlink(a);
        unlink(bpath);
}

/* A row of a table keyed by text that moved to an earlier block (a store
 * copied in key order renumbers its rows): every block's range is emptied
 * before any row goes back, so the key does not meet its old self. */
static void test_delta_moved_row(void **state)
{
        char a[] = "/tmp/gmca-test-bk-m.XXXXXX", bpath[64];
        struct bk_blocks before, after, now;
        struct bk_buf delta = {0};
        struct gmca_error e = {0};
        sqlite3 *db, *copy;
        size_t nb = 0;
        int fd, i;

        (void)state;
        assert_true((fd = mkstemp(a)) >= 0);
        close(fd);
        snprintf(bpath, sizeof(bpath), "%s.copy", a);
        assert_non_null(db = db_at(a));
        exec(db, "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT); BEGIN");
        for (i = 1; i <= 300; i++) {
                char sql[96];
                snprintf(sql, sizeof(sql), "INSERT INTO kv (rowid, k, v) VALUES (%d, 'k%03d', 'v')",
                         i, i);
                exec(db, sql);
        }
        exec(db, "COMMIT");
        expect(bk_db_blocks(db, &before, &e), &e, 0, NULL, "blocks before");
        assert_int_equal(bk_snapshot(a, bpath, &e), 0);
        exec(db, "DELETE FROM kv WHERE k = 'k010'; UPDATE kv SET rowid = 10 WHERE k = 'k300'");
        expect(bk_db_blocks(db, &after, &e), &e, 0, NULL, "blocks after");
        expect(bk_delta_make(db, &before, &after, &delta, &nb, &e), &e, 0, NULL, "delta");
        assert_int_equal(nb, 2);
        assert_int_equal(sqlite3_open(bpath, &copy), SQLITE_OK);
        expect(bk_delta_apply(copy, delta.p, delta.len, &e), &e, 0, NULL, "apply");
        expect(bk_db_blocks(copy, &now, &e), &e, 0, NULL, "blocks of the copy");
        expect(bk_blocks_same(&now, &after, &e), &e, 0, NULL, "same");
        bk_blocks_free(&before);
        bk_blocks_free(&after);
        bk_blocks_free(&now);
        bk_buf_free(&delta);
        sqlite3_close(copy);
        sqlite3_close(db);
        unlink(a);
        unlink(bpath);
}

/* The store copy of backup_pg.c, run from a SQLite store (the same code
 * reads PostgreSQL): every value, NULLs and a text key out of insertion
 * order included, lands in a file of the same schema with the same
 * blocks; a target that exists is refused. */
static void test_store_copy(void **state)
{
        char src[] = "/tmp/gmca-test-bk-s.XXXXXX", dst[64];
        struct bk_blocks a, b;
        struct gmca_error e = {0};
        struct gmca_store *st;
        sqlite3 *db;
        int fd;

        (void)state;
        assert_true((fd = mkstemp(src)) >= 0);
        close(fd);
        unlink(src);
        snprintf(dst, sizeof(dst), "%s.snap", src);
        assert_non_null(st = gmca_store_open(src, &e));
        gmca_store_close(st);
        assert_int_equal(sqlite3_open(src, &db), SQLITE_OK);
        exec(db, "INSERT INTO meta VALUES ('b', 'two'), ('a', 'one');"
                 "INSERT INTO events VALUES (1, 1700000000000000, 'cert.issue', NULL, 1, 5),"
                 " (7, 1700000000000001, 'crl.issue', '0A', 2, -3)");
        expect(bk_pg_snapshot(src, dst, &e), &e, 0, NULL, "copy");
        expect(bk_db_blocks(db, &a, &e), &e, 0, NULL, "blocks of the store");
        sqlite3_close(db);
        assert_int_equal(sqlite3_open(dst, &db), SQLITE_OK);
        expect(bk_db_blocks(db, &b, &e), &e, 0, NULL, "blocks of the copy");
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.schema, b.schema, sizeof(a.schema));
        sqlite3_close(db);
        expect(bk_pg_snapshot(src, dst, &e), &e, GMCA_ERR_EXISTS, "exists", "existing target");
        bk_blocks_free(&a);
        bk_blocks_free(&b);
        unlink(src);
        unlink(dst);
}

static void test_delta_bad(void **state)
{
        struct gmca_error e = {0};
        struct bk_buf d = {0};
        size_t nb;

        (void)state;
        /* A row of block 1 filed under block 0. */
        assert_int_equal(bk_put(&d, "GMCADLT1", 8), 0);
        assert_int_equal(bk_put_u8(&d, 1), 0);
        assert_int_equal(bk_put(&d, "t", 1), 0);
        assert_int_equal(bk_put_u64(&d, 0), 0);
        assert_int_equal(bk_put_u32(&d, 1), 0);
        assert_int_equal(bk_put_u64(&d, 256), 0);
        assert_int_equal(bk_put_u16(&d, 1), 0);
        assert_int_equal(bk_put_u8(&d, 0), 0);
        expect(bk_delta_check(d.p, d.len, &nb, &e), &e, GMCA_ERR_INVALID, "row", "wrong block");
        /* The same row in block 1 passes; a bad value type does not. */
        gmca_put_be64(d.p + 8 + 2, 1);
        gmca_error_clear(&e);
        expect(bk_delta_check(d.p, d.len, &nb, &e), &e, 0, NULL, "right block");
        d.p[d.len - 1] = 9;
        gmca_error_clear(&e);
        expect(bk_delta_check(d.p, d.len, &nb, &e), &e, GMCA_ERR_INVALID, NULL, "value type");
        d.p[0] = 'X';
        gmca_error_clear(&e);
        expect(bk_delta_check(d.p, d.len, &nb, &e), &e, GMCA_ERR_INVALID, "magic", "magic");
        bk_buf_free(&d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pkg_round_trip),
            cmocka_unit_test(test_pkg_bad_names),
            cmocka_unit_test(test_pkg_tamper_every_byte),
            cmocka_unit_test(test_pkg_truncated_and_trailing),
            cmocka_unit_test(test_archive_outer_and_body),
            cmocka_unit_test(test_blocks_parse),
            cmocka_unit_test(test_files_parse),
            cmocka_unit_test(test_delta_between_states),
            cmocka_unit_test(test_delta_bad),
            cmocka_unit_test(test_delta_moved_row),
            cmocka_unit_test(test_store_copy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
