/*
 * A test CA for the cmocka unit tests: the key ceremony (gmca_ca_init) in a
 * fresh temporary directory, with five custodians whose shares stay beside
 * it. Include after <cmocka.h>.
 */
#ifndef GMCA_TESTCA_H
#define GMCA_TESTCA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca.h"

#define TEST_CA_CUSTODIANS 5

struct test_ca {
        char top[256];                        /* the temporary directory */
        char dir[300];                        /* top/ca: the state directory */
        char shares[TEST_CA_CUSTODIANS][320]; /* top/shares/share-N.json */
        struct gmca_custodian cust[TEST_CA_CUSTODIANS];
};

static const char *const test_ca_names[TEST_CA_CUSTODIANS] = {"张三", "李四", "王五", "赵六",
                                                              "钱七"};
/* Letters and digits, not the custodian's name (CPS §7.4.1). */
static const char *const test_ca_pins[TEST_CA_CUSTODIANS] = {
    "Test1pinKx", "Test2pinLw", "Test3pinMv", "Test4pinNu", "Test5pinOt"};

/* The shipped profiles of the source tree (GMCA_SRC). */
static inline const char *test_ca_profiles(void)
{
        static char path[1024];
        const char *src = getenv("GMCA_SRC");

        snprintf(path, sizeof(path), "%s/conf/profiles", src != NULL ? src : ".");
        return path;
}

/* Make the CA under /tmp/gmca-test-TAG.XXXXXX; 0, or -1 with the cause on stderr. */
static inline int test_ca_make(struct test_ca *t, const char *tag)
{
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        char d[300];

        memset(t, 0, sizeof(*t));
        snprintf(t->top, sizeof(t->top), "/tmp/gmca-test-%s.XXXXXX", tag);
        if (mkdtemp(t->top) == NULL)
                return -1;
        snprintf(t->dir, sizeof(t->dir), "%s/ca", t->top);
        snprintf(d, sizeof(d), "%s/shares", t->top);
        if (mkdir(d, 0700) != 0)
                return -1;
        for (int i = 0; i < TEST_CA_CUSTODIANS; i++) {
                snprintf(t->shares[i], sizeof(t->shares[i]), "%s/share-%d.json", d, i + 1);
                t->cust[i] = (struct gmca_custodian){test_ca_names[i], test_ca_pins[i],
                                                     strlen(test_ca_pins[i]), t->shares[i]};
        }
        p.root_dn = "C=CN, O=单元测试认证中心, CN=单元测试根 CA";
        p.sub_dn = "C=CN, O=单元测试认证中心, CN=单元测试运营 CA";
        p.profiles_src = test_ca_profiles();
        p.actor = "unit";
        p.custodians = t->cust;
        p.ncustodians = TEST_CA_CUSTODIANS;
        if (gmca_ca_init(t->dir, &p, &e) != 0) {
                fprintf(stderr, "test CA: %s\n", e.msg);
                return -1;
        }
        return 0;
}

/* Remove the temporary directory and everything in it. */
static inline void test_ca_remove(const struct test_ca *t)
{
        char cmd[600];

        if (t->top[0] == '\0')
                return;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->top);
        if (system(cmd) != 0)
                fprintf(stderr, "test CA: cannot remove %s\n", t->top);
}

#endif
