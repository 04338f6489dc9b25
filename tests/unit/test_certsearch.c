/*
 * certsearch's reading of DNs as gmca_dn_format writes them: what the
 * public sees of a subject (no serialNumber), and the CN/O matching the
 * search does, escapes included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "certsearch.h"

static void test_public(void **state)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
            {"C=CN, O=Org, CN=Name", "C=CN, O=Org, CN=Name"},
            {"C=CN, O=Org, CN=Name, serialNumber=110105194912310021", "C=CN, O=Org, CN=Name"},
            {"serialNumber=110105194912310021, C=CN, CN=A", "C=CN, CN=A"},
            {"C=CN, CN=A+serialNumber=1101, O=B", "C=CN, CN=A, O=B"},
            {"C=CN, CN=A+OU=x, O=B", "C=CN, CN=A+OU=x, O=B"},
            {"C=CN, 2.5.4.5=1101, CN=A\\, serialNumber=9", "C=CN, CN=A\\, serialNumber=9"},
            {"SERIALNUMBER=1", ""},
            {"", ""},
        };
        char out[256];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(gmca_dn_public(cases[i].in, out, sizeof(out)), 0);
                assert_string_equal(out, cases[i].out);
        }
        assert_int_equal(gmca_dn_public("C=CN, CN=Long name", out, 8), -1);
        assert_string_equal(out, "");
}

static void test_value(void **state)
{
        static const struct {
                const char *dn, *key, *want;
                int rc;
        } cases[] = {
            {"C=CN, O=Org, CN=张三", "CN", "张三", 1},
            {"C=CN, O=Org, CN=张三", "cn", "张三", 1},
            {"C=CN, O=A\\, B, CN=x", "O", "A, B", 1},
            {"C=CN, CN=a\\+b\\=c\\\\d", "CN", "a+b=c\\d", 1},
            {"C=CN, CN=\\ lead\\0Aend\\ ", "CN", " lead\nend ", 1},
            {"C=CN, CN=\\4", "CN", "4", 1},
            {"C=CN, O=Org", "CN", "", 0},
            {"C=CN, OU=x", "O", "", 0},
            {"C=CN, CN=a\\", "CN", "a\\", 1},
        };
        char out[64];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(gmca_dn_value(cases[i].dn, cases[i].key, out, sizeof(out)),
                                 cases[i].rc);
                assert_string_equal(out, cases[i].want);
        }
        assert_int_equal(gmca_dn_value("CN=abcdefgh", "CN", out, 4), -1);
}

static void test_contains(void **state)
{
        static const struct {
                const char *dn, *key, *needle;
                int want;
        } cases[] = {
            {"C=CN, O=北京市测试局, CN=张三", "CN", "张", 1},
            {"C=CN, O=北京市测试局, CN=张三", "CN", "北京", 0}, /* in O, not CN */
            {"C=CN, O=北京市测试局, CN=张三", "O", "北京", 1},
            {"C=CN, CN=RA 系统", "CN", "ra 系", 1},           /* ASCII case folds */
            {"C=CN, CN=李四\\, 王五之友", "CN", "四, 王", 1}, /* escaped comma */
            {"C=CN, CN=李四\\, 王五之友", "CN", "王五之友, ", 0},
            {"C=CN, CN=A, O=B", "CN", "A, O", 0}, /* never across attributes */
            {"C=CN, CN=x, CN=needle", "CN", "needle", 1},
            {"C=CN, OU=CN=x", "CN", "x", 0},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_int_equal(gmca_dn_value_contains(cases[i].dn, cases[i].key, cases[i].needle),
                                 cases[i].want);
}

static void test_status_names(void **state)
{
        (void)state;
        assert_int_equal(gmca_search_status_from("valid"), GMCA_SEARCH_VALID);
        assert_int_equal(gmca_search_status_from("revoked"), GMCA_SEARCH_REVOKED);
        assert_int_equal(gmca_search_status_from("expired"), GMCA_SEARCH_EXPIRED);
        assert_int_equal(gmca_search_status_from("Valid"), -1);
        assert_int_equal(gmca_search_status_from(""), -1);
        assert_null(gmca_search_status_name(GMCA_SEARCH_ANY));
        assert_string_equal(gmca_search_status_name(GMCA_SEARCH_EXPIRED), "expired");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_public),
            cmocka_unit_test(test_value),
            cmocka_unit_test(test_contains),
            cmocka_unit_test(test_status_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
