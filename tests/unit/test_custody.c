/*
 * Tests of the custody module. A 3-of-5 split is made in a temporary
 * directory and every subset of 3, 4 and 5 shares must give the master key
 * back; fewer shares, a wrong PIN, a share of another CA or of an earlier
 * set, a share given twice, a share that opens but lies on another
 * polynomial, and edited, truncated, oversized or foreign files are refused
 * with the code and the words the header promises. The PIN rules of
 * CPS §7.4.1 are a table; split refusals must leave no file behind.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "crypto.h"
#include "custody.h"
#include "util.h"

#define T0 1735689600 /* 2025-01-01T00:00:00Z */
#define N 5

static const char *const names[N] = {"张三", "李四", "王五", "zhangsan", "赵六"};
static const char *const pins[N] = {"Tq8#vLm2", "风9火k山2林x", "pX4wRt7n", "Mb6&yq3Z", "k9Jw2Hx5"};

struct fx {
        char dir[64];
        char path[N][128];
        struct gmca_custody_set set;
        struct gmca_custodian cust[N];
        uint8_t master[GMCA_MASTER_LEN];
};

static time_t fixed_clock(void)
{
        return T0;
}

static void fill_set(struct gmca_custody_set *set, uint8_t inst, uint8_t id)
{
        memset(set->installation, inst, sizeof(set->installation));
        memset(set->set_id, id, sizeof(set->set_id));
        set->threshold = 3;
        set->count = N;
}

/* Custodians writing to dir/<prefix>-<i>.json. */
static void fill_cust(struct fx *f, const char *prefix)
{
        for (int i = 0; i < N; i++) {
                snprintf(f->path[i], sizeof(f->path[i]), "%s/%s-%d.json", f->dir, prefix, i + 1);
                f->cust[i].name = names[i];
                f->cust[i].pin = pins[i];
                f->cust[i].pinlen = strlen(pins[i]);
                f->cust[i].path = f->path[i];
        }
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        if (f == NULL)
                return -1;
        gmca_strlcpy(f->dir, "/tmp/gmca-custody-XXXXXX", sizeof(f->dir));
        if (mkdtemp(f->dir) == NULL)
                return -1;
        fill_set(&f->set, 0x11, 0x22);
        fill_cust(f, "share");
        for (int i = 0; i < GMCA_MASTER_LEN; i++)
                f->master[i] = (uint8_t)(0xa0 + i);
        gmca_set_clock(fixed_clock);
        *state = f;
        return 0;
}

/* Files in dir (not counting subdirectories' contents). */
static int count_files(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)) != NULL)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        struct dirent *de;
        DIR *d = opendir(f->dir);

        while (d != NULL && (de = readdir(d)) != NULL) {
                char p[512];

                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
                if (unlink(p) != 0)
                        rmdir(p);
        }
        if (d != NULL)
                closedir(d);
        rmdir(f->dir);
        gmca_set_clock(NULL);
        free(f);
        return 0;
}

static void split(struct fx *f, const uint8_t *master, const struct gmca_custody_set *set)
{
        struct gmca_error e;

        gmca_error_clear(&e);
        expect(gmca_custody_split(master, set, f->cust, N, &e), &e, 0, NULL, "split");
}

/* Combine the shares at idx[0..k) of cust; returns the code, e filled. */
static int combine(const struct gmca_custody_set *expect_set, const struct gmca_custodian *cust,
                   const int *idx, size_t k, uint8_t master[GMCA_MASTER_LEN], char *who,
                   size_t wholen, struct gmca_error *e)
{
        struct gmca_custodian pick[8];

        assert_true(k <= 8);
        for (size_t i = 0; i < k; i++)
                pick[i] = cust[idx[i]];
        gmca_error_clear(e);
        return gmca_custody_combine(expect_set, pick, k, master, who, wholen, e);
}

/* Whether needle occurs in hay (memmem is a GNU extension). */
static int has(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
        for (size_t i = 0; i + nlen <= hlen; i++)
                if (memcmp((const uint8_t *)hay + i, needle, nlen) == 0)
                        return 1;
        return 0;
}

static char *slurp(const char *path, size_t *len)
{
        struct gmca_error e;
        uint8_t *buf = NULL;

        gmca_error_clear(&e);
        expect(gmca_read_file(path, 1 << 20, &buf, len, &e), &e, 0, NULL, path);
        return (char *)buf;
}

/* Write text to path (0600), replacing an existing file. */
static void put(const char *path, const char *text, size_t len)
{
        struct gmca_error e;

        unlink(path);
        gmca_error_clear(&e);
        expect(gmca_write_file_excl(path, text, len, 0600, &e), &e, 0, NULL, path);
}

/* Copy src to dst with the first old replaced by new (which must be there). */
static void edit(const char *src, const char *dst, const char *old, const char *new)
{
        size_t len, lo = strlen(old), ln = strlen(new);
        char *text = slurp(src, &len), *at = strstr(text, old), *out;

        if (at == NULL)
                fail_msg("%s: no \"%s\" to replace", src, old);
        assert_non_null(out = malloc(len - lo + ln + 1));
        memcpy(out, text, (size_t)(at - text));
        memcpy(out + (at - text), new, ln);
        memcpy(out + (at - text) + ln, at + lo, len - (size_t)(at - text) - lo);
        put(dst, out, len - lo + ln);
        free(out);
        free(text);
}

static void test_all_subsets(void **state)
{
        struct fx *f = *state;
        uint8_t got[GMCA_MASTER_LEN];
        struct gmca_error e;
        char who[256];
        int subsets = 0;

        split(f, f->master, &f->set);
        for (unsigned mask = 0; mask < 1u << N; mask++) {
                int idx[N], k = 0;

                for (int i = 0; i < N; i++)
                        if (mask & 1u << i)
                                idx[k++] = i;
                if (k < 3)
                        continue;
                memset(got, 0, sizeof(got));
                expect(combine(&f->set, f->cust, idx, (size_t)k, got, who, sizeof(who), &e), &e, 0,
                       NULL, "combine");
                assert_memory_equal(got, f->master, GMCA_MASTER_LEN);
                subsets++;
        }
        assert_int_equal(subsets, 16); /* 10 of 3, 5 of 4, 1 of 5 */

        /* Any order; who names them in the order given. */
        {
                const int idx[3] = {4, 0, 2};

                memset(got, 0, sizeof(got));
                expect(combine(&f->set, f->cust, idx, 3, got, who, sizeof(who), &e), &e, 0, NULL,
                       "combine reordered");
                assert_memory_equal(got, f->master, GMCA_MASTER_LEN);
                assert_string_equal(who, "赵六, 张三, 王五");
                /* who is cut at a character boundary, never mid-UTF-8. */
                expect(combine(&f->set, f->cust, idx, 3, got, who, 5, &e), &e, 0, NULL,
                       "combine short who");
                assert_string_equal(who, "赵");
                expect(combine(&f->set, f->cust, idx, 3, got, NULL, 0, &e), &e, 0, NULL,
                       "combine no who");
        }
}

static void test_share_files(void **state)
{
        struct fx *f = *state;
        char lower[2 * GMCA_MASTER_LEN + 1], upper[2 * GMCA_MASTER_LEN + 1];
        struct gmca_share_info info, parsed;
        struct gmca_error e;

        split(f, f->master, &f->set);
        assert_int_equal(count_files(f->dir), N);
        gmca_hex(f->master, GMCA_MASTER_LEN, lower);
        gmca_hex_upper(f->master, GMCA_MASTER_LEN, upper);
        for (int i = 0; i < N; i++) {
                struct stat st;
                size_t len;
                char *text;

                assert_int_equal(stat(f->path[i], &st), 0);
                assert_int_equal(st.st_mode & 07777, 0600);
                text = slurp(f->path[i], &len);
                assert_true(len <= GMCA_SHARE_FILE_MAX);
                assert_false(has(text, len, f->master, GMCA_MASTER_LEN));
                assert_false(has(text, len, lower, strlen(lower)));
                assert_false(has(text, len, upper, strlen(upper)));
                assert_null(strstr(text, pins[i]));
                assert_non_null(strstr(text, "\"format\": \"gmca-share-1\""));

                gmca_error_clear(&e);
                expect(gmca_share_info(f->path[i], &info, &e), &e, 0, NULL, "share info");
                assert_string_equal(info.custodian, names[i]);
                assert_memory_equal(info.installation, f->set.installation, GMCA_CUSTODY_ID_LEN);
                assert_memory_equal(info.set_id, f->set.set_id, GMCA_CUSTODY_ID_LEN);
                assert_int_equal(info.x, i + 1);
                assert_int_equal(info.threshold, 3);
                assert_int_equal(info.count, N);
                assert_int_equal(info.created, T0);

                expect(gmca_share_parse((const uint8_t *)text, len, &parsed, &e), &e, 0, NULL,
                       "share parse");
                assert_memory_equal(&parsed, &info, sizeof(info));
                free(text);
        }
}

/* Refusals of combine: each names the custodian or the count. */
static void test_combine_refusals(void **state)
{
        struct fx *f = *state;
        static const int first3[3] = {0, 1, 2};
        struct gmca_custodian other[N], newer[N], alt[N], cust[N];
        struct gmca_custody_set other_set, newer_set, bad_shape;
        char other_path[N][128], newer_path[N][128], alt_path[N][128];
        uint8_t got[GMCA_MASTER_LEN], none[GMCA_MASTER_LEN], master2[GMCA_MASTER_LEN];
        struct gmca_error e;
        char who[64] = "untouched";

        split(f, f->master, &f->set);
        memset(got, 0x5a, sizeof(got));
        memset(none, 0x5a, sizeof(none));

        {
                const int two[2] = {0, 3};

                expect(combine(&f->set, f->cust, two, 2, got, who, sizeof(who), &e), &e,
                       GMCA_ERR_AUTH, "3 of 5 custodians needed, 2 given", "two shares");
        }
        {
                const int six[6] = {0, 1, 2, 3, 4, 0};

                expect(combine(&f->set, f->cust, six, 6, got, who, sizeof(who), &e), &e,
                       GMCA_ERR_INVALID, "only 5", "six shares");
        }

        memcpy(cust, f->cust, sizeof(cust));
        cust[1].pin = "Wrong-PIN-1";
        cust[1].pinlen = strlen(cust[1].pin);
        expect(combine(&f->set, cust, first3, 3, got, who, sizeof(who), &e), &e, GMCA_ERR_AUTH,
               "custodian 李四: wrong PIN", "wrong PIN");
        assert_null(strstr(e.msg, "Wrong-PIN-1"));
        cust[1].pinlen = 0;
        expect(combine(&f->set, cust, first3, 3, got, who, sizeof(who), &e), &e, GMCA_ERR_AUTH,
               "李四", "no PIN");

        {
                const int twice[3] = {0, 1, 0};

                expect(combine(&f->set, f->cust, twice, 3, got, who, sizeof(who), &e), &e,
                       GMCA_ERR_INVALID, "hold the same share", "same share twice");
        }

        /* Another CA, same custodians. */
        memcpy(other, f->cust, sizeof(other));
        for (int i = 0; i < N; i++) {
                snprintf(other_path[i], sizeof(other_path[i]), "%s/other-%d.json", f->dir, i + 1);
                other[i].path = other_path[i];
        }
        fill_set(&other_set, 0x99, 0x22);
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &other_set, other, N, &e), &e, 0, NULL, "split other");
        memcpy(cust, f->cust, sizeof(cust));
        cust[2] = other[2];
        expect(combine(&f->set, cust, first3, 3, got, who, sizeof(who), &e), &e, GMCA_ERR_AUTH,
               "belongs to another CA", "another CA");
        assert_non_null(strstr(e.msg, "王五"));
        assert_non_null(strstr(e.msg, other_path[2]));

        /* A re-split: the old shares no longer count. */
        memcpy(newer, f->cust, sizeof(newer));
        for (int i = 0; i < N; i++) {
                snprintf(newer_path[i], sizeof(newer_path[i]), "%s/newer-%d.json", f->dir, i + 1);
                newer[i].path = newer_path[i];
        }
        fill_set(&newer_set, 0x11, 0x33);
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &newer_set, newer, N, &e), &e, 0, NULL, "split newer");
        memcpy(cust, newer, sizeof(cust));
        cust[0] = f->cust[0];
        expect(combine(&newer_set, cust, first3, 3, got, who, sizeof(who), &e), &e, GMCA_ERR_AUTH,
               "is from an earlier share set", "older set");
        assert_non_null(strstr(e.msg, "张三"));
        assert_non_null(strstr(e.msg, "2025-01-01"));
        expect(combine(&newer_set, newer, first3, 3, got, NULL, 0, &e), &e, 0, NULL, "newer set");
        memset(got, 0x5a, sizeof(got));

        /* The set's shape disagrees with the files: one of them was edited. */
        bad_shape = f->set;
        bad_shape.threshold = 2;
        expect(combine(&bad_shape, f->cust, first3, 3, got, who, sizeof(who), &e), &e,
               GMCA_ERR_TAMPER, "says 3 of 5", "shape");

        /* Same custodian under two indexes (only an edited file can say so). */
        {
                char path[160];

                snprintf(path, sizeof(path), "%s/renamed.json", f->dir);
                edit(f->path[1], path, "\"custodian\": \"李四\"", "\"custodian\": \"张三\"");
                memcpy(cust, f->cust, sizeof(cust));
                cust[1].path = path;
                expect(combine(&f->set, cust, first3, 3, got, who, sizeof(who), &e), &e,
                       GMCA_ERR_INVALID, "custodian 张三 given twice", "same custodian twice");
                unlink(path);
        }

        /*
         * A share that opens under its PIN and belongs to the set but lies on
         * another polynomial (the same set split again with another key):
         * with one share more than needed, the disagreement shows.
         */
        memcpy(alt, f->cust, sizeof(alt));
        for (int i = 0; i < N; i++) {
                snprintf(alt_path[i], sizeof(alt_path[i]), "%s/alt-%d.json", f->dir, i + 1);
                alt[i].path = alt_path[i];
        }
        memset(master2, 0x42, sizeof(master2));
        gmca_error_clear(&e);
        expect(gmca_custody_split(master2, &f->set, alt, N, &e), &e, 0, NULL, "split alt");
        memcpy(cust, f->cust, sizeof(cust));
        cust[3] = alt[3];
        {
                const int four[4] = {0, 1, 2, 3};

                expect(combine(&f->set, cust, four, 4, got, who, sizeof(who), &e), &e,
                       GMCA_ERR_TAMPER, "do not agree", "forged share");
        }

        /* Nothing was handed out by any refusal. */
        assert_memory_equal(got, none, sizeof(got));
        assert_string_equal(who, "untouched");
}

/* Edited, truncated, foreign and oversized files. */
static void test_bad_files(void **state)
{
        struct fx *f = *state;
        static const int first3[3] = {0, 1, 2};
        static const struct {
                const char *old, *new;
                int code;
                const char *msg;
        } edits[] = {
            {"\"iterations\": 200000", "\"iterations\": 20000000", GMCA_ERR_LIMIT, "over the cap"},
            {"\"iterations\": 200000", "\"iterations\": 999", GMCA_ERR_INVALID, "minimum"},
            {"\"iterations\": 200000", "\"iterations\": 200000.0", GMCA_ERR_INVALID,
             "not an integer"},
            {"\"iterations\": 200000", "\"iterations\": \"200000\"", GMCA_ERR_INVALID,
             "not an integer"},
            {"\"x\": 2", "\"x\": 0", GMCA_ERR_INVALID, "\"x\""},
            {"\"x\": 2", "\"x\": 6", GMCA_ERR_INVALID, "\"x\""},
            {"\"count\": 5", "\"count\": 17", GMCA_ERR_INVALID, "\"count\""},
            {"\"threshold\": 3", "\"threshold\": 1", GMCA_ERR_INVALID, "\"threshold\""},
            {"\"created\": 1735689600", "\"created\": -1", GMCA_ERR_INVALID, "\"created\""},
            {"\"format\": \"gmca-share-1\"", "\"format\": \"gmca-share-2\"", GMCA_ERR_INVALID,
             "not a gmca-share-1 share file"},
            {"\"kdf\": \"pbkdf2-hmac-sha256\"", "\"kdf\": \"pbkdf2-hmac-sha1\"", GMCA_ERR_INVALID,
             "\"kdf\""},
            {"\"format\"", "\"colour\": \"red\", \"format\"", GMCA_ERR_INVALID,
             "unknown field \"colour\""},
            {"\"format\"", "\"x\": 2, \"format\"", GMCA_ERR_INVALID, "duplicate"},
            {"\"salt\": \"", "\"salt\": \"00", GMCA_ERR_INVALID, "\"salt\" must be 32 hex"},
            {"\"tag\": \"", "\"tag\": \"zz", GMCA_ERR_INVALID, "\"tag\""},
            {"\"custodian\": \"李四\"", "\"custodian\": \"\"", GMCA_ERR_INVALID, "\"custodian\""},
            {"\"custodian\": \"李四\"", "\"custodian\": \"李\\u0007四\"", GMCA_ERR_INVALID,
             "\"custodian\""},
            {"\"custodian\": \"李四\"", "\"custodian\": \"李\\u0000四\"", GMCA_ERR_INVALID, "JSON"},
            {"\"installation\": \"11111111111111111111111111111111\"", "\"installation\": 7",
             GMCA_ERR_INVALID, "\"installation\" is not a string"},
        };
        char path[160], *text;
        struct gmca_custodian cust[N];
        struct gmca_share_info info;
        struct gmca_error e;
        uint8_t got[GMCA_MASTER_LEN];
        size_t len;

        split(f, f->master, &f->set);
        snprintf(path, sizeof(path), "%s/bad.json", f->dir);
        memcpy(cust, f->cust, sizeof(cust));
        cust[1].path = path;

        for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
                edit(f->path[1], path, edits[i].old, edits[i].new);
                gmca_error_clear(&e);
                expect(gmca_share_info(path, &info, &e), &e, edits[i].code, edits[i].msg,
                       edits[i].new);
                expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, edits[i].code,
                       edits[i].msg, edits[i].new);
        }

        /*
         * Edits that parse: the tag no longer matches. Told apart from a wrong
         * PIN it cannot be, and the message says so.
         */
        {
                char *at;

                text = slurp(f->path[1], &len);
                at = strstr(text, "\"share\": \"") + strlen("\"share\": \"");
                *at = *at == '0' ? '1' : '0';
                put(path, text, len);
                free(text);
                expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_AUTH,
                       "custodian 李四: wrong PIN (or the share file", "ciphertext flipped");
        }
        edit(f->path[1], path, "\"custodian\": \"李四\"", "\"custodian\": \"李五\"");
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_AUTH,
               "custodian 李五: wrong PIN (or the share file", "name edited");
        edit(f->path[1], path, "\"iterations\": 200000", "\"iterations\": 200001");
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_AUTH,
               "wrong PIN (or", "iterations edited");
        edit(f->path[1], path, "\"created\": 1735689600", "\"created\": 1735689601");
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_AUTH,
               "wrong PIN (or", "created edited");

        /* Truncated, empty, garbage, trailing bytes, not an object. */
        text = slurp(f->path[1], &len);
        put(path, text, len / 2);
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_INVALID,
               "not a share file", "truncated");
        put(path, "", 0);
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_INVALID,
               "not a share file", "empty");
        put(path, "\x89PNG\r\n\x1a\n\0\0\xff", 11);
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_INVALID,
               "not a share file", "garbage");
        {
                char *more = malloc(len + 3);

                assert_non_null(more);
                memcpy(more, text, len);
                memcpy(more + len, "{}", 3);
                put(path, more, len + 2);
                free(more);
                expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_INVALID,
                       "not a share file", "trailing object");
        }
        put(path, "[1, 2, 3]", 9);
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_INVALID,
               "not a JSON object", "array");

        /* Oversized: the same file padded with white space past the cap. */
        {
                size_t big = GMCA_SHARE_FILE_MAX + 1;
                char *pad = malloc(big);

                assert_non_null(pad);
                memset(pad, ' ', big);
                memcpy(pad, text, len);
                put(path, pad, big);
                expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_LIMIT,
                       NULL, "oversized");
                gmca_error_clear(&e);
                expect(gmca_share_parse((const uint8_t *)pad, big, &info, &e), &e, GMCA_ERR_LIMIT,
                       NULL, "oversized parse");
                /* At the cap exactly it is still read. */
                put(path, pad, big - 1);
                expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, 0, NULL,
                       "at the cap");
                free(pad);
        }
        free(text);

        unlink(path);
        expect(combine(&f->set, cust, first3, 3, got, NULL, 0, &e), &e, GMCA_ERR_NOTFOUND, path,
               "missing file");
}

/* CPS §7.4.1, one rule per row. */
static void test_pin_rules(void **state)
{
        static const struct {
                const char *name, *pin;
                size_t len; /* 0: strlen */
                int code;
                const char *msg;
        } rows[] = {
            {"王五", "pX4wRt7n", 0, 0, NULL},
            {"王五", "pX4w7n", 0, GMCA_ERR_POLICY, "at least 8 characters"},
            {"王五", "", 0, GMCA_ERR_POLICY, "at least 8 characters"},
            /* 7 characters in 19 bytes: characters count, not bytes. */
            {"王五", "密码a1好的天", 0, GMCA_ERR_POLICY, "at least 8 characters"},
            {"王五", "密码a1好的天气", 0, 0, NULL},
            {"王五", "pXqwRtzn", 0, GMCA_ERR_POLICY, "must contain a digit"},
            {"王五", "pXqw-Rt七n", 0, GMCA_ERR_POLICY, "must contain a digit"},
            {"王五", "84729163", 0, GMCA_ERR_POLICY, "must contain an ASCII letter"},
            {"王五", "风火山林水土金木1", 0, GMCA_ERR_POLICY, "must contain an ASCII letter"},
            {"王五", "aaaa1aaa", 0, GMCA_ERR_POLICY, "mostly one character"},
            {"王五", "a1a2a3aa", 0, GMCA_ERR_POLICY, "mostly one character"},
            {"王五", "a1A2a3Ab", 0, GMCA_ERR_POLICY, "mostly one character"},
            {"王五", "a1a2a3bc", 0, 0, NULL},
            {"王五", "xyzzzz12ab", 0, GMCA_ERR_POLICY, "4 times in a row"},
            {"王五", "xyZzZz12ab", 0, GMCA_ERR_POLICY, "4 times in a row"},
            {"王五", "xyzzz12abz", 0, 0, NULL},
            {"王五", "x1王王王王yzab", 0, GMCA_ERR_POLICY, "4 times in a row"},
            {"zhangsan1x", "ZhangSan1X", 0, GMCA_ERR_POLICY, "must not be the custodian's name"},
            {"zhangsan", "Zhang123x", 0, GMCA_ERR_POLICY, "4 or more consecutive characters"},
            {"zhangsan", "x9sAnGsq", 0, GMCA_ERR_POLICY, "4 or more consecutive characters"},
            {"zhangsan", "zha9nsan", 0, 0, NULL},
            {"Zhang San", "q7ng SAN", 0, GMCA_ERR_POLICY, "4 or more consecutive characters"},
            {"张三", "pX4张三w7n", 0, GMCA_ERR_POLICY, "must not contain the custodian's name"},
            {"张三", "pX4张w7n三", 0, 0, NULL},
            {"欧阳娜", "x1欧阳娜yzw", 0, GMCA_ERR_POLICY, "must not contain the custodian's name"},
            {"欧阳娜娜", "q1欧阳娜娜zw", 0, GMCA_ERR_POLICY, "4 or more consecutive"},
            {"欧阳娜娜", "q1阳娜娜z欧w", 0, 0, NULL},
            {"王", "王x1y2z3w", 0, 0, NULL},
            {"王五", "pX4w\0Rt7n", 9, GMCA_ERR_POLICY, "control characters"},
            {"王五", "pX4w\tRt7n", 0, GMCA_ERR_POLICY, "control characters"},
            {"王五", "pX4w\xffRt7n", 0, GMCA_ERR_POLICY, "not valid UTF-8"},
            {"王五", "pX4w\xc0\xafRt7n", 0, GMCA_ERR_POLICY, "not valid UTF-8"},
            {"王五", "pX4w\xed\xa0\x80Rt7n", 0, GMCA_ERR_POLICY, "not valid UTF-8"},
            {"王五", "pX4wRt7n\xe5\xbc", 0, GMCA_ERR_POLICY, "not valid UTF-8"},
            {"", "pX4wRt7n", 0, GMCA_ERR_INVALID, "custodian name"},
            {"王\x01五", "pX4wRt7n", 0, GMCA_ERR_INVALID, "custodian name"},
            {"王\xff", "pX4wRt7n", 0, GMCA_ERR_INVALID, "custodian name"},
        };
        char longpin[GMCA_PIN_MAX + 2];
        struct gmca_error e;

        (void)state;
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                size_t len = rows[i].len != 0 ? rows[i].len : strlen(rows[i].pin);

                gmca_error_clear(&e);
                expect(gmca_pin_check(rows[i].pin, len, rows[i].name, &e), &e, rows[i].code,
                       rows[i].msg, rows[i].pin);
                if (rows[i].code == GMCA_ERR_POLICY) {
                        assert_non_null(strstr(e.msg, "CPS §7.4.1: PIN of "));
                        assert_non_null(strstr(e.msg, rows[i].name));
                        if (rows[i].pin[0] != '\0')
                                assert_null(strstr(e.msg, rows[i].pin));
                }
        }
        for (size_t i = 0; i < sizeof(longpin) - 1; i++)
                longpin[i] = "a1b2c3d4e5"[i % 10];
        longpin[sizeof(longpin) - 1] = '\0';
        gmca_error_clear(&e);
        expect(gmca_pin_check(longpin, GMCA_PIN_MAX, "王五", &e), &e, 0, NULL, "longest PIN");
        expect(gmca_pin_check(longpin, GMCA_PIN_MAX + 1, "王五", &e), &e, GMCA_ERR_POLICY,
               "at most 256 bytes", "PIN over the cap");
        gmca_error_clear(&e);
        expect(gmca_pin_check(NULL, 0, "王五", &e), &e, GMCA_ERR_POLICY, "at least 8", "no PIN");
        gmca_error_clear(&e);
        expect(gmca_pin_check("pX4wRt7n", 8, NULL, &e), &e, GMCA_ERR_INVALID, NULL, "no name");
}

/* Refusals of split; none may leave a file behind. */
static void test_split_refusals(void **state)
{
        struct fx *f = *state;
        struct gmca_custody_set set;
        struct gmca_custodian cust[N];
        struct gmca_error e;
        char missing[160];

        /* A weak PIN, of the third custodian: nothing is written. */
        memcpy(cust, f->cust, sizeof(cust));
        cust[2].pin = "Wang5wu1";
        cust[2].pinlen = strlen(cust[2].pin);
        cust[2].name = "wang5wu";
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, cust, N, &e), &e, GMCA_ERR_POLICY,
               "CPS §7.4.1: PIN of wang5wu must not contain 4 or more", "weak PIN");
        assert_int_equal(count_files(f->dir), 0);

        /* Names must be distinct (ASCII case folded). */
        memcpy(cust, f->cust, sizeof(cust));
        cust[4].name = "张三";
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, cust, N, &e), &e, GMCA_ERR_INVALID,
               "custodian 张三 named twice", "duplicate name");
        cust[4].name = "ZhangSan";
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, cust, N, &e), &e, GMCA_ERR_INVALID,
               "named twice", "duplicate name, case");
        memcpy(cust, f->cust, sizeof(cust));
        cust[4].path = cust[1].path;
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, cust, N, &e), &e, GMCA_ERR_INVALID,
               "given twice", "duplicate path");
        assert_int_equal(count_files(f->dir), 0);

        /* Shapes. */
        set = f->set;
        set.threshold = 1;
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &set, f->cust, N, &e), &e, GMCA_ERR_INVALID,
               "threshold 1 of 5", "threshold 1");
        set.threshold = 6;
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &set, f->cust, N, &e), &e, GMCA_ERR_INVALID,
               "threshold 6 of 5", "threshold over count");
        set.threshold = 3;
        set.count = GMCA_CUSTODY_MAX + 1;
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &set, f->cust, N, &e), &e, GMCA_ERR_LIMIT, NULL,
               "count over cap");
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, f->cust, N - 1, &e), &e, GMCA_ERR_INVALID,
               "4 custodians given for 5 shares", "n != count");
        assert_int_equal(count_files(f->dir), 0);

        /* An existing file: refused before anything is written. */
        put(f->path[2], "keep", 4);
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, f->cust, N, &e), &e, GMCA_ERR_EXISTS,
               f->path[2], "existing file");
        assert_int_equal(count_files(f->dir), 1);
        unlink(f->path[2]);

        /* The fourth file cannot be created: the three before are removed. */
        memcpy(cust, f->cust, sizeof(cust));
        snprintf(missing, sizeof(missing), "%s/no-such-dir/share-4.json", f->dir);
        cust[3].path = missing;
        gmca_error_clear(&e);
        expect(gmca_custody_split(f->master, &f->set, cust, N, &e), &e, GMCA_ERR_IO, missing,
               "midway failure");
        assert_int_equal(count_files(f->dir), 0);

        /* After all that, the real split still works. */
        split(f, f->master, &f->set);
        assert_int_equal(count_files(f->dir), N);
}

static void test_check_value(void **state)
{
        struct fx *f = *state;
        uint8_t a[32], b[32], direct[32], other[GMCA_MASTER_LEN];
        static const char label[] = "gmca custody check v1";
        struct gmca_error e;

        gmca_error_clear(&e);
        expect(gmca_custody_check_value(f->master, a, &e), &e, 0, NULL, "check value");
        expect(gmca_custody_check_value(f->master, b, &e), &e, 0, NULL, "check value again");
        assert_memory_equal(a, b, sizeof(a));
        expect(gmca_hmac_sm3(f->master, GMCA_MASTER_LEN, label, strlen(label), direct, &e), &e, 0,
               NULL, "HMAC-SM3");
        assert_memory_equal(a, direct, sizeof(a));
        memcpy(other, f->master, sizeof(other));
        other[31] ^= 1;
        expect(gmca_custody_check_value(other, b, &e), &e, 0, NULL, "check value other");
        assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pin_rules),
            cmocka_unit_test_setup_teardown(test_all_subsets, setup, teardown),
            cmocka_unit_test_setup_teardown(test_share_files, setup, teardown),
            cmocka_unit_test_setup_teardown(test_combine_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
            cmocka_unit_test_setup_teardown(test_split_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_check_value, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
