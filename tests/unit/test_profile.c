/*
 * Tests of the profile module: every shipped profile in conf/profiles loads;
 * a table of broken profile texts, each refused with the key and rule
 * named; the bad sample files in tests/data/profiles; name checks of
 * gmca_profile_find (no path traversal); gmca_profile_list; and a table of
 * requests (subject DN, subject info, validity) against shipped profiles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "profile.h"
#include "util.h"

static const char *profiles_dir(char *buf, size_t len)
{
        const char *src = getenv("GMCA_SRC");

        if (src == NULL)
                src = ".";
        snprintf(buf, len, "%s/conf/profiles", src);
        return buf;
}

static const char *testdata_dir(char *buf, size_t len)
{
        const char *d = getenv("GMCA_TESTDATA");

        if (d != NULL)
                snprintf(buf, len, "%s/profiles", d);
        else
                snprintf(buf, len, "tests/data/profiles");
        return buf;
}

/* ---- shipped profiles ---- */

static void test_shipped_all_load(void **state)
{
        static const char *const must[] = {"root-ca",  "sub-ca",  "personal-sign", "personal-enc",
                                           "org-sign", "org-enc", "device-ssl",    "code-sign",
                                           "email",    "account", "ocsp"};
        char dir[4096];
        char **names = NULL;
        size_t n = 0;
        struct gmca_error e;

        (void)state;
        gmca_error_clear(&e);
        profiles_dir(dir, sizeof(dir));
        expect(gmca_profile_list(dir, &names, &n, &e), &e, 0, NULL, "list conf/profiles");
        assert_true(n >= sizeof(must) / sizeof(must[0]));
        for (size_t i = 0; i < n; i++) {
                struct gmca_profile *p = gmca_profile_find(dir, names[i], &e);

                if (p == NULL)
                        fail_msg("%s: %s", names[i], e.msg);
                assert_string_equal(p->name, names[i]);
                assert_true(p->validity_days > 0 && p->validity_days <= p->max_validity_days);
                assert_int_equal(p->dn[GMCA_DN_C], GMCA_RULE_REQUIRED);
                assert_string_equal(p->sm2_id, GMCA_SM2_DEFAULT_ID);
                assert_true(p->description[0] != '\0');
                if (i > 0)
                        assert_true(strcmp(names[i - 1], names[i]) < 0);
                gmca_profile_free(p);
        }
        for (size_t m = 0; m < sizeof(must) / sizeof(must[0]); m++) {
                size_t i;

                for (i = 0; i < n && strcmp(names[i], must[m]) != 0; i++)
                        ;
                if (i == n)
                        fail_msg("profile %s is not shipped", must[m]);
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* Contents of a few shipped profiles that other modules rely on. */
static void test_shipped_contents(void **state)
{
        char dir[4096];
        struct gmca_error e;
        struct gmca_profile *p;

        (void)state;
        gmca_error_clear(&e);
        profiles_dir(dir, sizeof(dir));

        assert_non_null(p = gmca_profile_find(dir, "root-ca", &e));
        assert_int_equal(p->purpose, GMCA_PURPOSE_CA);
        assert_true(p->ca);
        assert_int_equal(p->validity_days, 7300);
        assert_true(p->key_usage & X509v3_KU_KEY_CERT_SIGN);
        assert_true(p->key_usage & X509v3_KU_CRL_SIGN);
        gmca_profile_free(p);

        assert_non_null(p = gmca_profile_find(dir, "sub-ca", &e));
        assert_true(p->ca);
        assert_int_equal(p->path_len, 0);
        assert_int_equal(p->validity_days, 3650);
        gmca_profile_free(p);

        assert_non_null(p = gmca_profile_find(dir, "personal-sign", &e));
        assert_int_equal(p->purpose, GMCA_PURPOSE_SIGN);
        assert_false(p->ca);
        assert_int_equal(p->path_len, -1);
        assert_int_equal(p->key_usage, X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_NON_REPUDIATION);
        assert_int_equal(p->pext[GMCA_PEXT_IDENTITY_CARD], GMCA_RULE_REQUIRED);
        assert_int_equal(p->pext[GMCA_PEXT_USCC], GMCA_RULE_FORBIDDEN);
        assert_int_equal(p->dn[GMCA_DN_CN], GMCA_RULE_REQUIRED);
        assert_int_equal(p->dn[GMCA_DN_SERIAL], GMCA_RULE_FORBIDDEN);
        gmca_profile_free(p);

        assert_non_null(p = gmca_profile_find(dir, "personal-enc", &e));
        assert_int_equal(p->purpose, GMCA_PURPOSE_ENCRYPT);
        assert_int_equal(p->key_usage, X509v3_KU_KEY_ENCIPHERMENT | X509v3_KU_DATA_ENCIPHERMENT |
                                           X509v3_KU_KEY_AGREEMENT);
        assert_int_equal(p->pext[GMCA_PEXT_IDENTITY_CARD], GMCA_RULE_REQUIRED);
        gmca_profile_free(p);

        assert_non_null(p = gmca_profile_find(dir, "org-sign", &e));
        assert_int_equal(p->pext[GMCA_PEXT_USCC], GMCA_RULE_REQUIRED);
        assert_int_equal(p->pext[GMCA_PEXT_ORG_CODE], GMCA_RULE_OPTIONAL);
        assert_int_equal(p->pext[GMCA_PEXT_TAXATION], GMCA_RULE_OPTIONAL);
        assert_int_equal(p->pext[GMCA_PEXT_IC_REGISTRATION], GMCA_RULE_OPTIONAL);
        gmca_profile_free(p);

        assert_non_null(p = gmca_profile_find(dir, "device-ssl", &e));
        assert_int_equal(p->neku, 2);
        assert_int_equal(p->eku[0], NID_server_auth);
        assert_int_equal(p->san[GMCA_SAN_DNS], GMCA_RULE_OPTIONAL);
        assert_int_equal(p->san[GMCA_SAN_IP], GMCA_RULE_OPTIONAL);
        assert_int_equal(p->san[GMCA_SAN_EMAIL], GMCA_RULE_FORBIDDEN);
        gmca_profile_free(p);

        assert_non_null(p = gmca_profile_find(dir, "ocsp", &e));
        assert_true(p->ocsp_nocheck);
        assert_int_equal(p->neku, 1);
        assert_int_equal(p->eku[0], NID_OCSP_sign);
        assert_int_equal(p->validity_days, 30);
        assert_int_equal(p->max_validity_days, 90);
        gmca_profile_free(p);
        assert_string_equal(e.msg, "");
}

/* ---- broken profile texts ---- */

#define HEAD "{\"name\": \"t\", "
#define SUBJ "\"subject\": {\"C\": \"required\", \"CN\": \"required\"}"
#define VAL "\"validity_days\": 365, \"max_validity_days\": 730, "
/* A valid profile with one key replaced: P(purpose, key usages, extra keys). */
#define P(purpose, ku, extra)                                                                      \
        HEAD "\"purpose\": \"" purpose "\", \"key_usage\": [" ku "], " VAL extra SUBJ "}"
#define SIGN(extra) P("sign", "\"digitalSignature\"", extra)

static const struct bad_case {
        const char *json;
        int rc;
        const char *msg;
} bad_cases[] = {
    /* a good one first, so that the macros are known to make valid text */
    {SIGN(""), 0, NULL},
    {SIGN("\"ca\": false, \"path_len\": -1, \"sm2_id\": \"ALICE123@YAHOO.COM\", "
          "\"description\": \"d\", \"extended_key_usage\": [\"clientAuth\"], "
          "\"extensions\": {\"identity_card_number\": \"optional\"}, "
          "\"san\": {\"email\": \"optional\"}, \"ocsp_nocheck\": false, "),
     0, NULL},
    {"", GMCA_ERR_INVALID, "empty input"},
    {"[]", GMCA_ERR_INVALID, "top level must be an object"},
    {"{", GMCA_ERR_INVALID, "JSON line"},
    {"{\"name\": \"t\"} x", GMCA_ERR_INVALID, "JSON line"},
    {SIGN("\"purpose\": \"sign\", "), GMCA_ERR_INVALID, "duplicate"},
    {SIGN("\"colour\": \"red\", "), GMCA_ERR_INVALID, "profile t: schema: unknown key \"colour\""},
    {"{\"name\": \"Bad Name\"}", GMCA_ERR_INVALID, "must match [a-z0-9_-]{1,63}"},
    {"{\"name\": \"a/b\"}", GMCA_ERR_INVALID, "must match"},
    {"{\"name\": \"\"}", GMCA_ERR_INVALID, "must match"},
    {"{\"name\": \"0123456789012345678901234567890123456789012345678901234567890123\"}",
     GMCA_ERR_INVALID, "must match"},
    {"{\"name\": 7}", GMCA_ERR_INVALID, "name: must be a string"},
    {"{\"purpose\": \"sign\"}", GMCA_ERR_INVALID, "name: missing"},
    {P("signing", "\"digitalSignature\"", ""), GMCA_ERR_INVALID,
     "purpose: must be \"sign\", \"encrypt\" or \"ca\""},
    {SIGN("\"ca\": \"no\", "), GMCA_ERR_INVALID, "ca: must be true or false"},
    {SIGN("\"ocsp_nocheck\": 0, "), GMCA_ERR_INVALID, "ocsp_nocheck: must be true or false"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": \"digitalSignature\", " VAL SUBJ "}",
     GMCA_ERR_INVALID, "key_usage: must be an array"},
    {P("sign", "", ""), GMCA_ERR_INVALID, "key_usage: must not be empty"},
    {P("sign", "\"digitalsignature\"", ""), GMCA_ERR_INVALID,
     "key_usage: unknown key usage \"digitalsignature\""},
    {P("sign", "\"digitalSignature\", \"digitalSignature\"", ""), GMCA_ERR_INVALID,
     "\"digitalSignature\" listed twice"},
    {P("sign", "1", ""), GMCA_ERR_INVALID, "key_usage: entries must be strings"},
    {SIGN("\"extended_key_usage\": [\"anyPurpose\"], "), GMCA_ERR_INVALID,
     "extended_key_usage: unknown purpose \"anyPurpose\""},
    {SIGN("\"extended_key_usage\": [\"clientAuth\", \"clientAuth\"], "), GMCA_ERR_INVALID,
     "\"clientAuth\" listed twice"},
    {SIGN("\"extended_key_usage\": {}, "), GMCA_ERR_INVALID,
     "extended_key_usage: must be an array"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], \"validity_days\": 0, "
          "\"max_validity_days\": 730, " SUBJ "}",
     GMCA_ERR_INVALID, "validity_days: must be in 1..36500"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], \"validity_days\": -5, "
          "\"max_validity_days\": 730, " SUBJ "}",
     GMCA_ERR_INVALID, "validity_days: must be in 1..36500"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"validity_days\": \"365\", \"max_validity_days\": 730, " SUBJ "}",
     GMCA_ERR_INVALID, "validity_days: must be an integer"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"validity_days\": 365.0, \"max_validity_days\": 730, " SUBJ "}",
     GMCA_ERR_INVALID, "validity_days: must be an integer"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"validity_days\": 731, \"max_validity_days\": 730, " SUBJ "}",
     GMCA_ERR_INVALID, "validity_days: exceeds max_validity_days"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"validity_days\": 365, \"max_validity_days\": 36501, " SUBJ "}",
     GMCA_ERR_INVALID, "max_validity_days: must be in 1..36500"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"validity_days\": 365, \"max_validity_days\": 99999999999999999999, " SUBJ "}",
     GMCA_ERR_INVALID, "JSON line"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"max_validity_days\": 730, " SUBJ "}",
     GMCA_ERR_INVALID, "validity_days: missing"},
    {HEAD "\"key_usage\": [\"digitalSignature\"], " VAL SUBJ "}", GMCA_ERR_INVALID,
     "purpose: missing"},
    {HEAD "\"purpose\": \"sign\", " VAL SUBJ "}", GMCA_ERR_INVALID, "key_usage: missing"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
          "\"validity_days\": 365, \"max_validity_days\": 730}",
     GMCA_ERR_INVALID, "subject: missing"},
    /* key usage rules */
    {P("ca", "\"cRLSign\"", "\"ca\": true, "), GMCA_ERR_INVALID,
     "key_usage: a CA profile needs keyCertSign"},
    {P("sign", "\"digitalSignature\", \"keyCertSign\"", ""), GMCA_ERR_INVALID,
     "keyCertSign only in CA profiles"},
    {P("ca", "\"keyCertSign\"", ""), GMCA_ERR_INVALID, "keyCertSign only in CA profiles"},
    {P("sign", "\"keyCertSign\"", "\"ca\": true, "), GMCA_ERR_INVALID,
     "ca: a CA profile must have purpose \"ca\""},
    {P("ca", "\"keyCertSign\", \"cRLSign\"", "\"ca\": true, \"path_len\": 0, "), 0, NULL},
    {P("ca", "\"keyCertSign\"", "\"ca\": true, \"path_len\": 17, "), GMCA_ERR_INVALID,
     "path_len: must be in -1..16"},
    {SIGN("\"path_len\": 1, "), GMCA_ERR_INVALID, "path_len: only CA profiles"},
    {P("encrypt", "\"keyEncipherment\", \"digitalSignature\"", ""), GMCA_ERR_INVALID,
     "an encryption certificate carries only keyEncipherment"},
    {P("encrypt", "\"keyEncipherment\", \"nonRepudiation\"", ""), GMCA_ERR_INVALID,
     "GM/T 0015 dual certificates"},
    {P("encrypt", "\"keyEncipherment\", \"dataEncipherment\", \"keyAgreement\"", ""), 0, NULL},
    {P("sign", "\"digitalSignature\", \"keyEncipherment\"", ""), GMCA_ERR_INVALID,
     "a signature certificate may not carry keyEncipherment"},
    {P("sign", "\"nonRepudiation\", \"dataEncipherment\"", ""), GMCA_ERR_INVALID,
     "a signature certificate may not carry"},
    {SIGN("\"ocsp_nocheck\": true, "), GMCA_ERR_INVALID, "ocsp_nocheck: only for OCSP"},
    {SIGN("\"ocsp_nocheck\": true, \"extended_key_usage\": [\"OCSPSigning\"], "), 0, NULL},
    /* sm2_id */
    {SIGN("\"sm2_id\": \"\", "), GMCA_ERR_INVALID, "sm2_id: must not be empty"},
    {SIGN("\"sm2_id\": \"12345678901234567890123456789012345678901234567890123456789012345\", "),
     GMCA_ERR_INVALID, "sm2_id: longer than 64 bytes"},
    {SIGN("\"sm2_id\": \"1234567890123456789012345678901234567890123456789012345678901234\", "), 0,
     NULL},
    {SIGN("\"sm2_id\": 1234567812345678, "), GMCA_ERR_INVALID, "sm2_id: must be a string"},
    {SIGN("\"sm2_id\": \"a\\tb\", "), GMCA_ERR_INVALID, "sm2_id: must be printable"},
    {SIGN("\"sm2_id\": \"a\\u0000b\", "), GMCA_ERR_INVALID, "JSON line"},
    /* subject, extensions, san */
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": {\"C\": \"optional\", \"CN\": \"required\"}}",
     GMCA_ERR_INVALID, "subject.C: must be required (CPS §2.1.2"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": {\"CN\": \"required\"}}",
     GMCA_ERR_INVALID, "subject.C: must be required"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": {\"C\": \"required\", \"title\": \"optional\"}}",
     GMCA_ERR_INVALID, "subject: unknown DN attribute \"title\""},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": {\"C\": \"required\", \"CN\": \"mandatory\"}}",
     GMCA_ERR_INVALID, "subject.CN: must be \"required\", \"optional\" or \"forbidden\""},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": {\"C\": \"required\", \"CN\": true}}",
     GMCA_ERR_INVALID, "subject.CN: must be"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": {\"C\": \"required\", \"ST\": \"optional\", \"S\": \"optional\"}}",
     GMCA_ERR_INVALID, "ST and S are the same attribute"},
    {HEAD "\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], " VAL
          "\"subject\": [\"C\"]}",
     GMCA_ERR_INVALID, "subject: must be an object"},
    {SIGN("\"extensions\": {\"passport_number\": \"required\"}, "), GMCA_ERR_INVALID,
     "extensions: unknown private extension \"passport_number\""},
    {SIGN("\"extensions\": {\"identity_card_number\": \"yes\"}, "), GMCA_ERR_INVALID,
     "extensions.identity_card_number: must be"},
    {SIGN("\"san\": {\"uri\": \"optional\"}, "), GMCA_ERR_INVALID,
     "san: unknown subjectAltName kind \"uri\""},
    {SIGN("\"san\": {\"dns\": null}, "), GMCA_ERR_INVALID, "san.dns: must be"},
    {SIGN("\"description\": 5, "), GMCA_ERR_INVALID, "description: must be a string"},
    /* caps */
    {"{\"name\": \"t\", \"subject\": {\"C\": [[\"required\"]]}}", GMCA_ERR_LIMIT,
     "nested deeper than 3"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", GMCA_ERR_LIMIT,
     "nested deeper"},
    {"{\"name\": \"t\", \"description\": \"[[[[[[[[\\\"[[[[\"}", GMCA_ERR_INVALID,
     "purpose: missing"},
};

static void test_bad_texts(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
                const struct bad_case *c = &bad_cases[i];
                struct gmca_error e;
                struct gmca_profile *p;
                char what[64];

                gmca_error_clear(&e);
                snprintf(what, sizeof(what), "bad_cases[%zu]", i);
                p = gmca_profile_parse(c->json, strlen(c->json), NULL, &e);
                expect(p != NULL ? 0 : e.code, &e, c->rc, c->msg, what);
                if (c->rc == 0)
                        assert_string_equal(p->name, "t");
                gmca_profile_free(p);
        }
}

static void test_parse_name_and_size(void **state)
{
        static const char body[] = "{\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
                                   "\"validity_days\": 1, \"max_validity_days\": 1, " SUBJ "}";
        struct gmca_error e;
        struct gmca_profile *p;
        char *big;

        (void)state;
        /* No name in the text: the name given is used. */
        gmca_error_clear(&e);
        assert_non_null(p = gmca_profile_parse(body, strlen(body), "given", &e));
        assert_string_equal(p->name, "given");
        gmca_profile_free(p);
        /* A name in the text must equal the one given. */
        gmca_error_clear(&e);
        p = gmca_profile_parse(SIGN(""), strlen(SIGN("")), "other", &e);
        assert_null(p);
        expect(e.code, &e, GMCA_ERR_INVALID, "name: does not match the file name \"other\"",
               "name mismatch");
        gmca_error_clear(&e);
        assert_non_null(p = gmca_profile_parse(SIGN(""), strlen(SIGN("")), "t", &e));
        gmca_profile_free(p);
        /* A bad given name is refused like a bad name in the text. */
        gmca_error_clear(&e);
        assert_null(gmca_profile_parse(body, strlen(body), "../x", &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "must match", "bad given name");
        /* Over the size cap: refused before parsing. */
        big = malloc(GMCA_PROFILE_FILE_MAX + 2);
        assert_non_null(big);
        memset(big, ' ', GMCA_PROFILE_FILE_MAX + 1);
        memcpy(big, SIGN(""), strlen(SIGN("")));
        big[GMCA_PROFILE_FILE_MAX + 1] = '\0';
        gmca_error_clear(&e);
        assert_null(gmca_profile_parse(big, GMCA_PROFILE_FILE_MAX + 1, NULL, &e));
        expect(e.code, &e, GMCA_ERR_LIMIT, "larger than 65536 bytes", "oversized");
        /* Exactly at the cap: parsed. */
        gmca_error_clear(&e);
        assert_non_null(p = gmca_profile_parse(big, GMCA_PROFILE_FILE_MAX, NULL, &e));
        gmca_profile_free(p);
        free(big);
        gmca_error_clear(&e);
        assert_null(gmca_profile_parse(NULL, 0, NULL, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "empty input", "NULL");
}

/* ---- sample files, find, list ---- */

static const struct file_case {
        const char *file;
        int rc;
        const char *msg;
} file_cases[] = {
    {"mismatch", GMCA_ERR_INVALID,
     "profile other: name: does not match the file name \"mismatch\""},
    {"enc-with-sign", GMCA_ERR_INVALID, "an encryption certificate carries only"},
    {"ca-without-certsign", GMCA_ERR_INVALID, "a CA profile needs keyCertSign"},
    {"c-optional", GMCA_ERR_INVALID, "subject.C: must be required"},
    {"validity-over-max", GMCA_ERR_INVALID, "exceeds max_validity_days"},
    {"unknown-key", GMCA_ERR_INVALID, "unknown key \"key_usages\""},
    {"duplicate-key", GMCA_ERR_INVALID, "duplicate"},
    {"no-such-profile", GMCA_ERR_NOTFOUND, "profile 'no-such-profile' not found in "},
};

static void test_bad_files(void **state)
{
        char dir[4096];

        (void)state;
        testdata_dir(dir, sizeof(dir));
        for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
                const struct file_case *c = &file_cases[i];
                struct gmca_error e;
                struct gmca_profile *p;

                gmca_error_clear(&e);
                p = gmca_profile_find(dir, c->file, &e);
                assert_null(p);
                expect(e.code, &e, c->rc, c->msg, c->file);
                assert_non_null(strstr(e.msg, c->rc == GMCA_ERR_NOTFOUND ? dir : c->msg));
        }
}

/* gmca_profile_load: the file name stands in for a missing "name" only. */
static void test_load(void **state)
{
        char dir[4096], path[4200];
        struct gmca_error e;
        struct gmca_profile *p;

        (void)state;
        testdata_dir(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/mismatch.json", dir);
        gmca_error_clear(&e);
        assert_non_null(p = gmca_profile_load(path, &e));
        assert_string_equal(p->name, "other");
        gmca_profile_free(p);

        snprintf(path, sizeof(path), "%s/enc-with-sign.json", dir);
        gmca_error_clear(&e);
        assert_null(gmca_profile_load(path, &e));
        expect(e.code, &e, GMCA_ERR_INVALID, "profile enc-with-sign: key_usage:", "load bad");

        snprintf(path, sizeof(path), "%s/missing.json", dir);
        gmca_error_clear(&e);
        assert_null(gmca_profile_load(path, &e));
        expect(e.code, &e, GMCA_ERR_NOTFOUND, "missing.json", "load missing");

        {
                char tmpl[] = "/tmp/gmca-profile-XXXXXX";
                static const char body[] =
                    "{\"purpose\": \"sign\", \"key_usage\": [\"digitalSignature\"], "
                    "\"validity_days\": 1, \"max_validity_days\": 1, " SUBJ "}";

                assert_non_null(mkdtemp(tmpl));
                snprintf(path, sizeof(path), "%s/from-file.json", tmpl);
                gmca_error_clear(&e);
                expect(gmca_write_file_excl(path, body, strlen(body), 0644, &e), &e, 0, NULL,
                       "write");
                assert_non_null(p = gmca_profile_load(path, &e));
                assert_string_equal(p->name, "from-file");
                gmca_profile_free(p);
                assert_int_equal(unlink(path), 0);
                assert_int_equal(rmdir(tmpl), 0);
        }
}

static void test_find_names(void **state)
{
        static const char *const names[] = {
            "../x",
            "a/b",
            "",
            "..",
            ".",
            "root-ca.json",
            "Root-CA",
            "root ca",
            "/etc/passwd",
            "x\\y",
            "a\nb",
            "0123456789012345678901234567890123456789012345678901234567890123"};
        char dir[4096];

        (void)state;
        profiles_dir(dir, sizeof(dir));
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct gmca_error e;

                gmca_error_clear(&e);
                assert_null(gmca_profile_find(dir, names[i], &e));
                expect(e.code, &e, GMCA_ERR_INVALID, "must match [a-z0-9_-]{1,63}", names[i]);
        }
        {
                struct gmca_error e;
                struct gmca_profile *p;

                gmca_error_clear(&e);
                assert_null(gmca_profile_find(dir, NULL, &e));
                expect(e.code, &e, GMCA_ERR_INVALID, "must match", "NULL name");
                /* 63 characters is the longest valid name: not found, not refused. */
                gmca_error_clear(&e);
                assert_null(gmca_profile_find(
                    dir, "012345678901234567890123456789012345678901234567890123456789012", &e));
                expect(e.code, &e, GMCA_ERR_NOTFOUND, "not found", "63 characters");
                gmca_error_clear(&e);
                assert_non_null(p = gmca_profile_find(dir, "personal-sign", &e));
                gmca_profile_free(p);
                gmca_error_clear(&e);
                assert_null(gmca_profile_find("/nonexistent-gmca-dir", "personal-sign", &e));
                expect(e.code, &e, GMCA_ERR_NOTFOUND,
                       "profile 'personal-sign' not found in /nonexistent-gmca-dir", "no dir");
        }
}

static void test_list(void **state)
{
        static const char *const files[] = {"b.json",     "a.json", "Bad.json",  "x.txt",
                                            "c.json.bak", ".json",  "a_1-2.json"};
        char tmpl[] = "/tmp/gmca-profiles-XXXXXX", path[4200];
        char **names = NULL;
        size_t n = 99;
        struct gmca_error e;

        (void)state;
        assert_non_null(mkdtemp(tmpl));
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", tmpl, files[i]);
                gmca_error_clear(&e);
                expect(gmca_write_file_excl(path, "{}", 2, 0644, &e), &e, 0, NULL, files[i]);
        }
        gmca_error_clear(&e);
        expect(gmca_profile_list(tmpl, &names, &n, &e), &e, 0, NULL, "list");
        assert_int_equal(n, 3);
        assert_string_equal(names[0], "a");
        assert_string_equal(names[1], "a_1-2");
        assert_string_equal(names[2], "b");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", tmpl, files[i]);
                assert_int_equal(unlink(path), 0);
        }
        /* An empty directory gives no names. */
        names = NULL;
        n = 99;
        gmca_error_clear(&e);
        expect(gmca_profile_list(tmpl, &names, &n, &e), &e, 0, NULL, "empty");
        assert_int_equal(n, 0);
        free(names);
        assert_int_equal(rmdir(tmpl), 0);
        /* A missing directory: not found, out-parameters untouched. */
        names = NULL;
        n = 99;
        gmca_error_clear(&e);
        expect(gmca_profile_list(tmpl, &names, &n, &e), &e, GMCA_ERR_NOTFOUND, tmpl, "missing");
        assert_null(names);
        assert_int_equal(n, 99);
}

/* ---- requests against profiles ---- */

#define DN_MAX 8

static const struct check_case {
        const char *profile;
        const char *dn[DN_MAX]; /* "type=value" */
        const char *id;         /* identity_card_number */
        const char *uscc;       /* unified_social_credit_code */
        size_t ndns, nip, nemail;
        int days;
        int rc;
        const char *msg;
} check_cases[] = {
    {"personal-sign", {"C=CN", "CN=张三"}, "11010519491231002X", NULL, 0, 0, 0, 0, 0, NULL},
    {"personal-sign",
     {"C=CN", "ST=北京市", "L=北京", "O=某单位", "OU=信息中心", "OU=二处", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     1,
     1095,
     0,
     NULL},
    {"personal-sign",
     {"C=CN", "O=某单位"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "profile personal-sign: subject: CN is required (CPS §2.1.2 table 4)"},
    {"personal-sign",
     {"CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: C is required"},
    {"personal-sign",
     {"C=CN", "CN=张三", "CN=李四"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: more than one CN"},
    {"personal-sign",
     {"C=CN", "C=CN", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: more than one C"},
    {"personal-sign",
     {"C=CN", "O=a", "O=b", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: more than one O"},
    {"personal-sign",
     {"C=US", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: C must be CN"},
    {"personal-sign",
     {"C=cn", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: C must be CN"},
    {"personal-sign",
     {"C=CN", "title=处长", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: attribute title is not allowed"},
    {"personal-sign",
     {"C=CN", "1.2.3.4=x", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: attribute 1.2.3.4 is not allowed"},
    {"personal-sign",
     {"C=CN", "serialNumber=1", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: serialNumber is not allowed in this profile"},
    {"device-ssl",
     {"C=CN", "CN=www.example.gov.cn", "emailAddress=a@example.cn"},
     NULL,
     NULL,
     1,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "profile device-ssl: subject: E is not allowed"},
    {"personal-sign",
     {"C=CN", "CN=张三"},
     NULL,
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "profile personal-sign: extension identity_card_number is required"},
    {"personal-sign",
     {"C=CN", "CN=张三"},
     "11010519491231002X",
     "91350100M000100Y43",
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "extension unified_social_credit_code is not allowed"},
    {"org-sign",
     {"C=CN", "O=某某科技有限公司", "CN=某某科技有限公司"},
     NULL,
     "91350100M000100Y43",
     0,
     0,
     0,
     0,
     0,
     NULL},
    {"org-sign",
     {"C=CN", "O=某某科技有限公司", "CN=某某科技有限公司"},
     NULL,
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "extension unified_social_credit_code is required"},
    {"org-sign",
     {"C=CN", "CN=某某科技有限公司"},
     NULL,
     "91350100M000100Y43",
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: O is required"},
    {"personal-sign",
     {"C=CN", "CN=张三"},
     "11010519491231002X",
     NULL,
     1,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subjectAltName dns is not allowed"},
    {"personal-sign",
     {"C=CN", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     1,
     0,
     0,
     GMCA_ERR_POLICY,
     "subjectAltName ip is not allowed"},
    {"device-ssl",
     {"C=CN", "O=某市人民政府", "CN=www.example.gov.cn"},
     NULL,
     NULL,
     2,
     1,
     0,
     90,
     0,
     NULL},
    {"device-ssl",
     {"C=CN", "CN=www.example.gov.cn"},
     NULL,
     NULL,
     0,
     0,
     1,
     0,
     GMCA_ERR_POLICY,
     "subjectAltName email is not allowed"},
    {"email",
     {"C=CN", "CN=张三"},
     NULL,
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "profile email: subjectAltName email is required"},
    {"email", {"C=CN", "CN=张三"}, NULL, NULL, 0, 0, 1, 0, 0, NULL},
    {"gov-staff-sign",
     {"C=CN", "O=某市政府", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "subject: OU is required"},
    {"root-ca",
     {"C=CN", "CN=Root"},
     NULL,
     NULL,
     0,
     0,
     0,
     0,
     GMCA_ERR_POLICY,
     "profile root-ca: subject: O is required (CPS §2.1.2 table 3)"},
    {"root-ca", {"C=CN", "O=X", "CN=Y"}, NULL, NULL, 0, 0, 0, 7300, 0, NULL},
    /* validity */
    {"personal-sign",
     {"C=CN", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     1096,
     GMCA_ERR_POLICY,
     "profile personal-sign: validity: 1096 days exceeds the maximum of 1095 days"},
    {"personal-sign",
     {"C=CN", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     5000,
     GMCA_ERR_POLICY,
     "exceeds the maximum"},
    {"ocsp",
     {"C=CN", "O=X", "CN=OCSP"},
     NULL,
     NULL,
     0,
     0,
     0,
     91,
     GMCA_ERR_POLICY,
     "maximum of 90 days"},
    {"personal-sign",
     {"C=CN", "CN=张三"},
     "11010519491231002X",
     NULL,
     0,
     0,
     0,
     -1,
     GMCA_ERR_INVALID,
     "not a positive number"},
};

static X509_NAME *make_name(const char *const *dn)
{
        X509_NAME *name = X509_NAME_new();

        assert_non_null(name);
        for (size_t i = 0; i < DN_MAX && dn[i] != NULL; i++) {
                const char *eq = strchr(dn[i], '=');
                char field[64];

                assert_non_null(eq);
                assert_true((size_t)(eq - dn[i]) < sizeof(field));
                memcpy(field, dn[i], (size_t)(eq - dn[i]));
                field[eq - dn[i]] = '\0';
                if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                               (const unsigned char *)eq + 1, -1, -1, 0) != 1)
                        fail_msg("cannot add %s", dn[i]);
        }
        return name;
}

static void fill_list(char **v, size_t *n, size_t count, const char *value)
{
        for (size_t i = 0; i < count; i++) {
                assert_non_null(v[i] = strdup(value));
        }
        *n = count;
}

static void free_info(struct gmca_subject_info *si)
{
        for (size_t i = 0; i < GMCA_PEXT_COUNT; i++)
                free(si->pext[i]);
        for (size_t i = 0; i < si->ndns; i++)
                free(si->dns[i]);
        for (size_t i = 0; i < si->nip; i++)
                free(si->ip[i]);
        for (size_t i = 0; i < si->nemail; i++)
                free(si->email[i]);
}

static void test_check(void **state)
{
        char dir[4096];

        (void)state;
        profiles_dir(dir, sizeof(dir));
        for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
                const struct check_case *c = &check_cases[i];
                struct gmca_subject_info si;
                struct gmca_profile *p;
                struct gmca_error e;
                X509_NAME *name;
                char what[96];
                int use_info = c->id || c->uscc || c->ndns || c->nip || c->nemail;

                snprintf(what, sizeof(what), "check_cases[%zu] (%s)", i, c->profile);
                gmca_error_clear(&e);
                if ((p = gmca_profile_find(dir, c->profile, &e)) == NULL)
                        fail_msg("%s: %s", what, e.msg);
                memset(&si, 0, sizeof(si));
                if (c->id != NULL)
                        assert_non_null(si.pext[GMCA_PEXT_IDENTITY_CARD] = strdup(c->id));
                if (c->uscc != NULL)
                        assert_non_null(si.pext[GMCA_PEXT_USCC] = strdup(c->uscc));
                fill_list(si.dns, &si.ndns, c->ndns, "www.example.gov.cn");
                fill_list(si.ip, &si.nip, c->nip, "192.0.2.10");
                fill_list(si.email, &si.nemail, c->nemail, "zhangsan@example.gov.cn");
                name = make_name(c->dn);
                expect(gmca_profile_check(p, name, use_info ? &si : NULL, c->days, &e), &e, c->rc,
                       c->msg, what);
                X509_NAME_free(name);
                free_info(&si);
                gmca_profile_free(p);
        }
}

/* An empty subject info counts as no info; a NULL subject is refused. */
static void test_check_edges(void **state)
{
        static const char *const dn[DN_MAX] = {"C=CN", "CN=x"};
        char dir[4096];
        struct gmca_subject_info si;
        struct gmca_profile *p;
        struct gmca_error e;
        X509_NAME *name;

        (void)state;
        profiles_dir(dir, sizeof(dir));
        gmca_error_clear(&e);
        assert_non_null(p = gmca_profile_find(dir, "account", &e));
        memset(&si, 0, sizeof(si));
        name = make_name(dn);
        expect(gmca_profile_check(p, name, &si, 0, &e), &e, 0, NULL, "empty info");
        expect(gmca_profile_check(p, name, NULL, 730, &e), &e, 0, NULL, "max days");
        expect(gmca_profile_check(p, NULL, NULL, 0, &e), &e, GMCA_ERR_INVALID,
               "no profile or "
               "subject",
               "NULL subject");
        X509_NAME_free(name);
        gmca_profile_free(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shipped_all_load),
            cmocka_unit_test(test_shipped_contents),
            cmocka_unit_test(test_bad_texts),
            cmocka_unit_test(test_parse_name_and_size),
            cmocka_unit_test(test_bad_files),
            cmocka_unit_test(test_load),
            cmocka_unit_test(test_find_names),
            cmocka_unit_test(test_list),
            cmocka_unit_test(test_check),
            cmocka_unit_test(test_check_edges),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
