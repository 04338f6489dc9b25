/*
 * Unit tests of the CRL downloads of the front (src/serve/files.c): the
 * numbered path /crl/{ca}/{n}.crl, the If-None-Match list, IMF-fixdate
 * parsing and the caching headers and 304 of a CRL reply, table-driven.
 * files.c is compiled in (the front is not in gmcacore); the two reply
 * helpers it uses from routes.c are small stand-ins here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/serve/files.c"

void serve_reply_bytes(struct serve_reply *r, unsigned status, const char *ctype, const uint8_t *p,
                       size_t n)
{
        free(r->data);
        r->data = NULL;
        r->len = 0;
        if (n > 0) {
                r->data = malloc(n);
                assert_non_null(r->data);
                memcpy(r->data, p, n);
        }
        r->len = n;
        r->status = status;
        r->ctype = ctype;
}

void serve_reply_error(struct serve_reply *r, unsigned status, const char *code, const char *fmt,
                       ...)
{
        (void)code;
        (void)fmt;
        serve_reply_bytes(r, status, "application/json", NULL, 0);
}

static void test_numbered_path(void **state)
{
        static const struct {
                const char *path;
                int ok;
                const char *name;
                int64_t number;
        } cases[] = {
            {"/crl/sub/1.crl", 1, "sub", 1},
            {"/crl/sub/12345.crl", 1, "sub", 12345},
            {"/crl/a-b_c.d/9007199254740992.crl", 1, "a-b_c.d", (int64_t)1 << 53},
            {"/crl/sub/9007199254740993.crl", 0, NULL, 0},
            {"/crl/sub/99999999999999999999.crl", 0, NULL, 0},
            {"/crl/sub/0.crl", 0, NULL, 0},
            {"/crl/sub/01.crl", 0, NULL, 0},
            {"/crl/sub/.crl", 0, NULL, 0},
            {"/crl/sub/1a.crl", 0, NULL, 0},
            {"/crl/sub/-1.crl", 0, NULL, 0},
            {"/crl/sub/1.crt", 0, NULL, 0},
            {"/crl/sub/1/2.crl", 0, NULL, 0},
            {"/crl//1.crl", 0, NULL, 0},
            {"/crl/../1.crl", 0, NULL, 0},
            {"/crl/s%2fb/1.crl", 0, NULL, 0},
            {"/crl/sub.crl", 0, NULL, 0},
            {"/ca/sub/1.crl", 0, NULL, 0},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char name[GMCA_NAME_MAX] = "";
                int64_t n = -1;
                int got = numbered_crl(cases[i].path, name, &n);

                if (got != cases[i].ok)
                        fail_msg("%s: got %d, want %d", cases[i].path, got, cases[i].ok);
                if (got) {
                        assert_string_equal(name, cases[i].name);
                        assert_int_equal(n, cases[i].number);
                }
        }
}

static void test_etag_match(void **state)
{
        static const struct {
                const char *list;
                int match;
        } cases[] = {
            {"\"AB12\"", 1},
            {"W/\"AB12\"", 1},
            {"\"00\", \"AB12\"", 1},
            {"\"00\",W/\"AB12\"", 1},
            {"*", 1},
            {"\"AB1\"", 0},
            {"\"AB123\"", 0},
            {"AB12", 0},
            {"\"ab12\"", 0},
            {"", 0},
            {",,,", 0},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (etag_match(cases[i].list, "\"AB12\"") != cases[i].match)
                        fail_msg("If-None-Match: %s", cases[i].list);
}

static void test_http_date(void **state)
{
        static const struct {
                const char *s;
                int ok;
                time_t t;
        } cases[] = {
            {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777},
            {"Thu, 01 Jan 2026 00:00:00 GMT", 0, 1767225600},
            {"Sunday, 06-Nov-94 08:49:37 GMT", -1, 0},
            {"Sun Nov  6 08:49:37 1994", -1, 0},
            {"Sun, 06 Nov 1994 08:49:37 UTC", -1, 0},
            {"Sun, 06 Xyz 1994 08:49:37 GMT", -1, 0},
            {"Sun, 06 Nov 1994 25:49:37 GMT", -1, 0},
            {"Sun, 06 Nov 1994 08:49:37 GMTx", -1, 0},
            {"", -1, 0},
        };
        char buf[32];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                time_t t = 0;

                if (http_date_parse(cases[i].s, &t) != cases[i].ok)
                        fail_msg("date: %s", cases[i].s);
                if (cases[i].ok == 0) {
                        assert_int_equal(t, cases[i].t);
                        http_date(t, buf, sizeof(buf));
                        assert_string_equal(buf, cases[i].s);
                }
        }
}

static time_t fixed_now;
static time_t fixed_clock(void)
{
        return fixed_now;
}

static void test_crl_reply(void **state)
{
        static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x07};
        struct gmca_crl_rec crl = {.ca_id = 1,
                                   .number = 7,
                                   .this_update = 1767225600,
                                   .next_update = 1767225600 + 3600,
                                   .der = (uint8_t *)der,
                                   .der_len = sizeof(der)};
        uint8_t md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1], etag[80];
        static const struct {
                const char *inm, *ims;
                time_t now;
                unsigned status;
                const char *cache;
        } cases[] = {
            {"", "", 1767225600 + 600, 200, "public, max-age=3000"},
            {"", "", 1767225600 + 7200, 200, "public, max-age=0"},
            {"ETAG", "", 1767225600, 304, "public, max-age=3600"},
            {"\"00\"", "", 1767225600, 200, NULL},
            {"\x01", "", 1767225600, 200, NULL},
            {"", "Thu, 01 Jan 2026 00:00:00 GMT", 1767225600, 304, NULL},
            {"", "Thu, 01 Jan 2026 01:00:00 GMT", 1767225600, 304, NULL},
            {"", "Wed, 31 Dec 2025 23:59:59 GMT", 1767225600, 200, NULL},
            {"", "garbage", 1767225600, 200, NULL},
            {"\"00\"", "Thu, 01 Jan 2026 00:00:00 GMT", 1767225600, 200, NULL},
        };

        (void)state;
        assert_int_equal(gmca_sm3(der, sizeof(der), md), 0);
        gmca_hex_upper(md, sizeof(md), hex);
        snprintf(etag, sizeof(etag), "\"%s\"", hex);
        gmca_set_clock(fixed_clock);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct serve_request rq;
                struct serve_reply out;

                memset(&rq, 0, sizeof(rq));
                memset(&out, 0, sizeof(out));
                snprintf(rq.method, sizeof(rq.method), "GET");
                snprintf(rq.if_none_match, sizeof(rq.if_none_match), "%s",
                         strcmp(cases[i].inm, "ETAG") == 0 ? etag : cases[i].inm);
                snprintf(rq.if_modified_since, sizeof(rq.if_modified_since), "%s", cases[i].ims);
                fixed_now = cases[i].now;
                crl_reply(&rq, &crl, &out);
                if (out.status != cases[i].status)
                        fail_msg("case %zu: status %u, want %u", i, out.status, cases[i].status);
                assert_int_equal(out.len, out.status == 200 ? sizeof(der) : 0);
                if (out.status == 200)
                        assert_memory_equal(out.data, der, sizeof(der));
                assert_string_equal(out.etag, etag);
                assert_string_equal(out.last_modified, "Thu, 01 Jan 2026 00:00:00 GMT");
                assert_string_equal(out.expires, "Thu, 01 Jan 2026 01:00:00 GMT");
                if (cases[i].cache != NULL)
                        assert_string_equal(out.cache, cases[i].cache);
                free(out.data);
        }
        gmca_set_clock(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_numbered_path),
            cmocka_unit_test(test_etag_match),
            cmocka_unit_test(test_http_date),
            cmocka_unit_test(test_crl_reply),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
