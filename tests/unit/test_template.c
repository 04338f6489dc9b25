/*
 * Unit tests of the template admin's work on profiles (template.h) against
 * a real store and a profiles directory copied from conf/profiles: the
 * list and the parsed view, a replacement with the old version kept in
 * history and its config.change record, creation, every refusal (wrong
 * role, CA profile, internal profile, name mismatch, bad JSON, unknown key,
 * missing name, a bad path name, an over-long body, a CA profile in force)
 * leaving the file as it was and a failed config.change behind, the old
 * file put back when the audit record cannot be written, and the
 * enable/disable flag with its refusals; and the system admin's status
 * (system.h) over a store with applications and revocation requests past
 * their CPS deadlines.
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
#include <jansson.h>

#include "audit.h"
#include "auth.h"
#include "crypto.h"
#include "profile.h"
#include "store.h"
#include "store_internal.h"
#include "system.h"
#include "template.h"
#include "testutil.h"
#include "util.h"

#define NOW 1767225600 /* 2026-01-01 */

struct fixture {
        char dir[256];
        char pdir[300];
        struct gmca_store *s;
        struct gmca_auth_result tadmin, badmin, bop, sysadm;
};

static void who(struct gmca_auth_result *r, const char *name, unsigned roles)
{
        memset(r, 0, sizeof(*r));
        gmca_strlcpy(r->op.name, name, sizeof(r->op.name));
        r->op.roles = roles;
        gmca_strlcpy(r->op.status, GMCA_OP_ACTIVE, sizeof(r->op.status));
}

static void copy_profile(struct fixture *f, const char *name)
{
        const char *src = getenv("GMCA_SRC");
        char from[4096], to[4096];
        struct gmca_error e = {0};
        uint8_t *buf = NULL;
        size_t len;

        snprintf(from, sizeof(from), "%s/conf/profiles/%s.json", src != NULL ? src : ".", name);
        snprintf(to, sizeof(to), "%s/%s.json", f->pdir, name);
        expect(gmca_read_file(from, GMCA_PROFILE_FILE_MAX, &buf, &len, &e), &e, 0, NULL, from);
        expect(gmca_write_file_excl(to, buf, len, 0644, &e), &e, 0, NULL, to);
        free(buf);
}

static int setup(void **state)
{
        static const char *const shipped[] = {"personal-sign", "device-ssl", "root-ca", "operator"};
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};
        char db[400];

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "%s/gmca-tpl-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->pdir, sizeof(f->pdir), "%s/profiles", f->dir);
        assert_int_equal(mkdir(f->pdir, 0755), 0);
        for (size_t i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++)
                copy_profile(f, shipped[i]);
        snprintf(db, sizeof(db), "%s/gmca.db", f->dir);
        f->s = gmca_store_open(db, &e);
        assert_non_null(f->s);
        who(&f->tadmin, "模板管理员甲", GMCA_ROLE_TEMPLATE_ADMIN);
        who(&f->badmin, "业务管理员乙", GMCA_ROLE_BUSINESS_ADMIN);
        who(&f->bop, "制证员丙", GMCA_ROLE_BUSINESS_OPERATOR);
        who(&f->sysadm, "系统管理员丁", GMCA_ROLE_SYSTEM_ADMIN);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[512];

        gmca_store_close(f->s);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", f->dir);
        free(f);
        return 0;
}

/* ---- helpers ---- */

static char *file_text(struct fixture *f, const char *name, size_t *len)
{
        char path[512];
        struct gmca_error e = {0};
        uint8_t *buf = NULL;

        snprintf(path, sizeof(path), "%s/%s.json", f->pdir, name);
        if (gmca_read_file(path, GMCA_PROFILE_FILE_MAX * 2, &buf, len, &e) != 0)
                return NULL;
        return (char *)buf;
}

/* The shipped profile's JSON with one key set (value NULL: removed), as compact
 * text. */
static char *variant(struct fixture *f, const char *name, const char *key, json_t *value)
{
        size_t len;
        char *text = file_text(f, name, &len), *out;
        json_t *root;

        assert_non_null(text);
        root = json_loadb(text, len, 0, NULL);
        assert_non_null(root);
        free(text);
        if (value != NULL)
                json_object_set_new(root, key, value);
        else
                json_object_del(root, key);
        out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        assert_non_null(out);
        return out;
}

struct last {
        struct gmca_audit_rec r;
        int64_t n;
};

static int keep_last(const struct gmca_audit_rec *r, void *arg)
{
        struct last *l = arg;

        gmca_audit_rec_clear(&l->r);
        l->r = *r;
        l->r.detail = r->detail != NULL ? strdup(r->detail) : NULL;
        l->n++;
        return 0;
}

/* The last audit record must be event/success/actor/object (and count records
 * in *n). */
static void last_audit(struct fixture *f, const char *event, int success, const char *actor,
                       const char *object, const char *detail_has, int64_t *n)
{
        struct last l;
        struct gmca_error e = {0};

        memset(&l, 0, sizeof(l));
        expect(gmca_store_audit_iter(f->s, NULL, keep_last, &l, &e), &e, 0, NULL, "audit iter");
        assert_true(l.n > 0);
        assert_string_equal(l.r.event, event);
        assert_int_equal(l.r.success, success);
        assert_string_equal(l.r.actor, actor);
        if (object != NULL)
                assert_string_equal(l.r.object, object);
        if (detail_has != NULL) {
                assert_non_null(l.r.detail);
                if (strstr(l.r.detail, detail_has) == NULL)
                        fail_msg("audit detail \"%s\" lacks \"%s\"", l.r.detail, detail_has);
        }
        if (n != NULL)
                *n = l.n;
        free(l.r.detail);
}

static int64_t audit_n(struct fixture *f)
{
        struct last l;
        struct gmca_error e = {0};

        memset(&l, 0, sizeof(l));
        expect(gmca_store_audit_iter(f->s, NULL, keep_last, &l, &e), &e, 0, NULL, "audit iter");
        free(l.r.detail);
        return l.n;
}

static int history_count(struct fixture *f, const char *name)
{
        char hist[400];
        struct dirent *de;
        size_t k = strlen(name);
        DIR *d;
        int n = 0;

        snprintf(hist, sizeof(hist), "%s/history", f->pdir);
        if ((d = opendir(hist)) == NULL)
                return 0;
        while ((de = readdir(d)) != NULL)
                if (strncmp(de->d_name, name, k) == 0 && de->d_name[k] == '.')
                        n++;
        closedir(d);
        return n;
}

static void sm3_of(const void *p, size_t n, char out[2 * GMCA_SM3_LEN + 1])
{
        uint8_t d[GMCA_SM3_LEN];

        assert_int_equal(gmca_sm3(p, n, d), 0);
        gmca_hex(d, sizeof(d), out);
}

/* ---- reading ---- */

static void test_list(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        json_t *out = NULL, *it;
        size_t i;
        int seen = 0;
        char bad[512];
        FILE *fp;

        /* A broken file is listed with its cause, the rest as usual. */
        snprintf(bad, sizeof(bad), "%s/broken.json", f->pdir);
        assert_non_null(fp = fopen(bad, "w"));
        fputs("{\"name\": \"broken\", \"purpose\": 1}", fp);
        fclose(fp);
        expect(gmca_template_list(f->s, f->dir, &f->bop, &out, &e), &e, 0, NULL, "list");
        assert_int_equal(json_array_size(json_object_get(out, "items")), 5);
        json_array_foreach(json_object_get(out, "items"), i, it)
        {
                const char *name = json_string_value(json_object_get(it, "name"));

                if (strcmp(name, "broken") == 0) {
                        assert_non_null(
                            strstr(json_string_value(json_object_get(it, "error")), "purpose"));
                        seen |= 1;
                } else if (strcmp(name, "personal-sign") == 0) {
                        assert_true(json_is_true(json_object_get(it, "enabled")));
                        assert_string_equal(json_string_value(json_object_get(it, "managed_by")),
                                            "template_admin");
                        assert_int_equal(json_integer_value(json_object_get(it, "validity_days")),
                                         365);
                        seen |= 2;
                } else if (strcmp(name, "root-ca") == 0 || strcmp(name, "operator") == 0) {
                        assert_string_equal(json_string_value(json_object_get(it, "managed_by")),
                                            "custodians");
                        seen |= 4;
                }
        }
        assert_int_equal(seen, 7);
        json_decref(out);

        /* Neither a system admin nor nobody reads them; the refusal is audited. */
        out = NULL;
        expect(gmca_template_list(f->s, f->dir, &f->sysadm, &out, &e), &e, GMCA_ERR_FORBIDDEN,
               "profile.read", "system admin lists");
        assert_null(out);
        last_audit(f, GMCA_EV_AUTH_REQUEST, 0, f->sysadm.op.name, "profiles", NULL, NULL);
}

static void test_get(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        json_t *out = NULL, *ku;
        char sm3[2 * GMCA_SM3_LEN + 1], *text;
        size_t len;

        expect(gmca_template_get(f->s, f->dir, &f->tadmin, "personal-sign", &out, &e), &e, 0, NULL,
               "get");
        assert_string_equal(json_string_value(json_object_get(out, "purpose")), "sign");
        ku = json_object_get(out, "key_usage");
        assert_int_equal(json_array_size(ku), 2);
        assert_string_equal(json_string_value(json_array_get(ku, 0)), "digitalSignature");
        assert_string_equal(json_string_value(json_array_get(ku, 1)), "nonRepudiation");
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(out, "extended_key_usage"), 0)),
            "clientAuth");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(out, "subject"), "C")), "required");
        /* Absent in the file: forbidden in the view. */
        assert_string_equal(json_string_value(json_object_get(json_object_get(out, "san"), "dns")),
                            "forbidden");
        assert_string_equal(json_string_value(json_object_get(json_object_get(out, "extensions"),
                                                              "identity_card_number")),
                            "required");
        assert_int_equal(json_integer_value(json_object_get(out, "max_validity_days")), 1095);
        assert_true(json_is_true(json_object_get(out, "enabled")));
        assert_true(json_is_object(json_object_get(out, "source")));
        assert_int_equal(json_array_size(json_object_get(out, "history")), 0);
        text = file_text(f, "personal-sign", &len);
        sm3_of(text, len, sm3);
        free(text);
        assert_string_equal(json_string_value(json_object_get(out, "sm3")), sm3);
        json_decref(out);

        out = NULL;
        expect(gmca_template_get(f->s, f->dir, &f->bop, "no-such", &out, &e), &e, GMCA_ERR_NOTFOUND,
               "not found", "missing");
        gmca_error_clear(&e);
        expect(gmca_template_get(f->s, f->dir, &f->bop, "../gmca", &out, &e), &e, GMCA_ERR_INVALID,
               "must match", "path name");
        gmca_error_clear(&e);
        expect(gmca_template_get(f->s, f->dir, &f->sysadm, "personal-sign", &out, &e), &e,
               GMCA_ERR_FORBIDDEN, NULL, "system admin reads");
        assert_null(out);
}

/* ---- replacing ---- */

static void test_put_replace(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char *body = variant(f, "personal-sign", "validity_days", json_integer(200)), *text, *old;
        char old_sm3[2 * GMCA_SM3_LEN + 1], new_sm3[2 * GMCA_SM3_LEN + 1], hist[600];
        struct gmca_profile *p;
        json_t *out = NULL;
        size_t len, old_len;
        uint8_t *kept = NULL;
        size_t kept_len;

        old = file_text(f, "personal-sign", &old_len);
        sm3_of(old, old_len, old_sm3);
        sm3_of(body, strlen(body), new_sm3);
        expect(gmca_template_put(f->s, f->dir, &f->tadmin, "personal-sign", (const uint8_t *)body,
                                 strlen(body), NOW, &out, &e),
               &e, 0, NULL, "replace");
        assert_true(json_is_false(json_object_get(out, "created")));
        assert_string_equal(json_string_value(json_object_get(out, "old_sm3")), old_sm3);
        assert_string_equal(json_string_value(json_object_get(out, "sm3")), new_sm3);
        assert_int_equal(json_integer_value(json_object_get(out, "validity_days")), 200);
        assert_int_equal(json_array_size(json_object_get(out, "history")), 1);
        json_decref(out);
        /* The file is the body, byte for byte, and loads with the new validity. */
        text = file_text(f, "personal-sign", &len);
        assert_int_equal(len, strlen(body));
        assert_memory_equal(text, body, len);
        free(text);
        assert_non_null(p = gmca_profile_find(f->pdir, "personal-sign", &e));
        assert_int_equal(p->validity_days, 200);
        gmca_profile_free(p);
        /* The old version is kept, byte for byte. */
        snprintf(hist, sizeof(hist), "%s/history/personal-sign.%d.json", f->pdir, NOW);
        expect(gmca_read_file(hist, GMCA_PROFILE_FILE_MAX, &kept, &kept_len, &e), &e, 0, NULL,
               "history file");
        assert_int_equal(kept_len, old_len);
        assert_memory_equal(kept, old, old_len);
        free(kept);
        free(old);
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 1, f->tadmin.op.name, "personal-sign", new_sm3, NULL);
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 1, f->tadmin.op.name, "personal-sign", old_sm3, NULL);
        free(body);

        /* A second change in the same second keeps the first version under another
         * name. */
        body = variant(f, "personal-sign", "validity_days", json_integer(100));
        out = NULL;
        expect(gmca_template_put(f->s, f->dir, &f->tadmin, "personal-sign", (const uint8_t *)body,
                                 strlen(body), NOW, &out, &e),
               &e, 0, NULL, "replace again");
        assert_int_equal(json_array_size(json_object_get(out, "history")), 2);
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(out, "history"), 0), "file")),
                            "personal-sign.1767225600.1.json");
        json_decref(out);
        assert_int_equal(history_count(f, "personal-sign"), 2);
        free(body);
}

static void test_put_create(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        char *body = variant(f, "personal-sign", "name", json_string("personal-short"));
        json_t *out = NULL;
        struct gmca_profile *p;

        expect(gmca_template_put(f->s, f->dir, &f->tadmin, "personal-short", (const uint8_t *)body,
                                 strlen(body), NOW, &out, &e),
               &e, 0, NULL, "create");
        assert_true(json_is_true(json_object_get(out, "created")));
        assert_true(json_is_null(json_object_get(out, "old_sm3")));
        json_decref(out);
        assert_non_null(p = gmca_profile_find(f->pdir, "personal-short", &e));
        gmca_profile_free(p);
        assert_int_equal(history_count(f, "personal-short"), 0);
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 1, f->tadmin.op.name, "personal-short",
                   "\"created\":true", NULL);
        free(body);
}

static void test_put_refused(void **state)
{
        struct fixture *f = *state;
        char *ca_body = variant(f, "root-ca", "name", json_string("my-ca"));
        char *op_body = variant(f, "personal-sign", "name", json_string("operator"));
        char *other = variant(f, "personal-sign", "name", json_string("device-ssl"));
        char *unknown = variant(f, "personal-sign", "colour", json_string("red"));
        char *noname = variant(f, "personal-sign", "name", NULL);
        char *bad_days = variant(f, "personal-sign", "validity_days", json_integer(5000));
        char *big = malloc(GMCA_PROFILE_FILE_MAX + 2);
        const struct {
                const char *what;
                const struct gmca_auth_result *who;
                const char *path;
                const char *body;
                int rc;
                const char *msg;
        } cases[] = {
            {"a business admin", &f->badmin, "personal-sign", other, GMCA_ERR_FORBIDDEN,
             "profile.write"},
            {"a business operator", &f->bop, "personal-sign", other, GMCA_ERR_FORBIDDEN,
             "profile.write"},
            {"a CA profile", &f->tadmin, "my-ca", ca_body, GMCA_ERR_POLICY, "CA profile"},
            {"an internal profile", &f->tadmin, "operator", op_body, GMCA_ERR_POLICY,
             "internal profile"},
            {"another name in the body", &f->tadmin, "personal-sign", other, GMCA_ERR_INVALID,
             "another profile than the path"},
            {"bad JSON", &f->tadmin, "personal-sign", "{\"name\": ", GMCA_ERR_INVALID, "JSON"},
            {"an unknown key", &f->tadmin, "personal-sign", unknown, GMCA_ERR_INVALID,
             "unknown key \"colour\""},
            {"no name", &f->tadmin, "personal-sign", noname, GMCA_ERR_INVALID, "name: missing"},
            {"validity over the maximum", &f->tadmin, "personal-sign", bad_days, GMCA_ERR_INVALID,
             "exceeds max_validity_days"},
            {"a path name that walks", &f->tadmin, "../gmca", other, GMCA_ERR_INVALID,
             "must match"},
            {"an empty body", &f->tadmin, "personal-sign", "", GMCA_ERR_INVALID, "empty"},
            {"an over-long body", &f->tadmin, "personal-sign", big, GMCA_ERR_LIMIT, "larger than"},
        };
        char *before;
        size_t before_len;

        assert_non_null(big);
        memset(big, ' ', GMCA_PROFILE_FILE_MAX + 1);
        big[0] = '{';
        big[GMCA_PROFILE_FILE_MAX] = '}';
        big[GMCA_PROFILE_FILE_MAX + 1] = '\0';
        before = file_text(f, "personal-sign", &before_len);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_error e = {0};
                json_t *out = NULL;
                int64_t n0 = audit_n(f), n1;
                char *now_text;
                size_t now_len;

                expect(gmca_template_put(f->s, f->dir, cases[i].who, cases[i].path,
                                         (const uint8_t *)cases[i].body, strlen(cases[i].body), NOW,
                                         &out, &e),
                       &e, cases[i].rc, cases[i].msg, cases[i].what);
                assert_null(out);
                last_audit(f, GMCA_EV_CONFIG_CHANGE, 0, cases[i].who->op.name, NULL, NULL, &n1);
                assert_int_equal(n1, n0 + 1);
                now_text = file_text(f, "personal-sign", &now_len);
                assert_int_equal(now_len, before_len);
                assert_memory_equal(now_text, before, now_len);
                free(now_text);
        }
        /* Nothing was created or kept. */
        assert_null(file_text(f, "my-ca", &before_len));
        assert_int_equal(history_count(f, "personal-sign"), 0);
        assert_int_equal(history_count(f, "operator"), 0);
        free(before);
        free(ca_body);
        free(op_body);
        free(other);
        free(unknown);
        free(noname);
        free(bad_days);
        free(big);
}

/* A CA profile in force under a name the RA could use is not replaced either.
 */
static void test_put_over_ca_profile(void **state)
{
        struct fixture *f = *state;
        char *ca_body = variant(f, "root-ca", "name", json_string("local-ca"));
        char *body = variant(f, "personal-sign", "name", json_string("local-ca"));
        char path[512];
        struct gmca_error e = {0};
        json_t *out = NULL;
        char *text;
        size_t len;

        snprintf(path, sizeof(path), "%s/local-ca.json", f->pdir);
        expect(gmca_write_file_excl(path, ca_body, strlen(ca_body), 0644, &e), &e, 0, NULL,
               "local CA profile");
        expect(gmca_template_put(f->s, f->dir, &f->tadmin, "local-ca", (const uint8_t *)body,
                                 strlen(body), NOW, &out, &e),
               &e, GMCA_ERR_POLICY, "in force is a CA profile", "over a CA profile");
        text = file_text(f, "local-ca", &len);
        assert_int_equal(len, strlen(ca_body));
        assert_memory_equal(text, ca_body, len);
        assert_int_equal(history_count(f, "local-ca"), 0);
        free(text);
        free(ca_body);
        free(body);
}

/* The audit record of a replacement cannot be written: the old file comes back.
 */
static const char SQL_BLOCK[] = "CREATE TRIGGER block_change BEFORE INSERT ON audit"
                                " WHEN NEW.event = 'config.change' AND NEW.success = 1"
                                " BEGIN SELECT RAISE(ABORT, 'injected failure'); END";

static void test_put_audit_fails(void **state)
{
        struct fixture *f = *state;
        char *body = variant(f, "personal-sign", "validity_days", json_integer(30));
        char *fresh = variant(f, "personal-sign", "name", json_string("fresh"));
        struct gmca_error e = {0};
        struct gmca_q q;
        json_t *out = NULL;
        char *before, *after;
        size_t before_len, after_len;

        expect(gmca_q_open(f->s, SQL_BLOCK, &q, &e), &e, 0, NULL, "trigger");
        assert_int_equal(gmca_q_step(&q, &e, "trigger"), GMCA_DB_DONE);
        gmca_q_close(&q);
        before = file_text(f, "personal-sign", &before_len);
        assert_true(gmca_template_put(f->s, f->dir, &f->tadmin, "personal-sign",
                                      (const uint8_t *)body, strlen(body), NOW, &out, &e) < 0);
        assert_null(out);
        after = file_text(f, "personal-sign", &after_len);
        assert_int_equal(after_len, before_len);
        assert_memory_equal(after, before, after_len);
        /* The refusal itself is on record. */
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 0, f->tadmin.op.name, "personal-sign", "injected",
                   NULL);
        /* A profile created under a failing audit record is gone again. */
        gmca_error_clear(&e);
        assert_true(gmca_template_put(f->s, f->dir, &f->tadmin, "fresh", (const uint8_t *)fresh,
                                      strlen(fresh), NOW, &out, &e) < 0);
        assert_null(file_text(f, "fresh", &after_len));
        free(before);
        free(after);
        free(body);
        free(fresh);
}

/* ---- enabling and disabling ---- */

static void test_enable_disable(void **state)
{
        struct fixture *f = *state;
        struct gmca_error e = {0};
        json_t *out = NULL;
        int disabled = -1;
        char longname[GMCA_PROFILE_NAME_MAX];

        expect(gmca_template_disabled(f->s, "personal-sign", &disabled, &e), &e, 0, NULL, "flag");
        assert_int_equal(disabled, 0);
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "personal-sign", 0, &out, &e),
               &e, 0, NULL, "disable");
        assert_true(json_is_false(json_object_get(out, "enabled")));
        json_decref(out);
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 1, f->tadmin.op.name, "personal-sign",
                   "\"enabled\":false", NULL);
        expect(gmca_template_disabled(f->s, "personal-sign", &disabled, &e), &e, 0, NULL, "flag");
        assert_int_equal(disabled, 1);
        /* The others are not touched. */
        expect(gmca_template_disabled(f->s, "device-ssl", &disabled, &e), &e, 0, NULL, "other");
        assert_int_equal(disabled, 0);

        out = NULL;
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "personal-sign", 0, &out, &e),
               &e, GMCA_ERR_STATE, "already disabled", "disable twice");
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 0, f->tadmin.op.name, "personal-sign", NULL, NULL);
        gmca_error_clear(&e);
        expect(gmca_template_set_enabled(f->s, f->dir, &f->badmin, "personal-sign", 1, &out, &e),
               &e, GMCA_ERR_FORBIDDEN, NULL, "a business admin enables");
        last_audit(f, GMCA_EV_CONFIG_CHANGE, 0, f->badmin.op.name, "personal-sign", NULL, NULL);
        gmca_error_clear(&e);
        expect(gmca_template_disabled(f->s, "personal-sign", &disabled, &e), &e, 0, NULL, "flag");
        assert_int_equal(disabled, 1);
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "personal-sign", 1, &out, &e),
               &e, 0, NULL, "enable");
        assert_true(json_is_true(json_object_get(out, "enabled")));
        json_decref(out);
        expect(gmca_template_disabled(f->s, "personal-sign", &disabled, &e), &e, 0, NULL, "flag");
        assert_int_equal(disabled, 0);

        out = NULL;
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "personal-sign", 1, &out, &e),
               &e, GMCA_ERR_STATE, "already enabled", "enable twice");
        gmca_error_clear(&e);
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "root-ca", 0, &out, &e), &e,
               GMCA_ERR_POLICY, "custodians", "a CA profile");
        gmca_error_clear(&e);
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "operator", 0, &out, &e), &e,
               GMCA_ERR_POLICY, "custodians", "an internal profile");
        gmca_error_clear(&e);
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, "no-such", 0, &out, &e), &e,
               GMCA_ERR_NOTFOUND, NULL, "no such profile");
        gmca_error_clear(&e);
        memset(longname, 'a', sizeof(longname) - 1);
        longname[GMCA_TEMPLATE_FLAG_NAME_MAX + 1] = '\0';
        expect(gmca_template_set_enabled(f->s, f->dir, &f->tadmin, longname, 0, &out, &e), &e,
               GMCA_ERR_LIMIT, "at most 46 bytes", "a name too long for its flag");
        assert_null(out);
}

/* ---- the system's status (system.h) ---- */

static const char SQL_APPLICANT[] =
    "INSERT INTO applicants (id, kind, name, created_by, created_at, updated_at)"
    " VALUES (1, 'individual', '张三', 'op', 0, 0)";
static const char SQL_APP[] =
    "INSERT INTO applications (id, applicant_id, type, state, ca, profile, days, csr,"
    " submitted_by, submitted_at, submit_auth) VALUES (?, 1, 'new', ?, 'sub', 'personal-sign', 0,"
    " X'00', 'op', ?, X'00')";
static const char SQL_REV[] =
    "INSERT INTO revocation_requests (id, serial, reason, reason_code, requester, state,"
    " requested_by, requested_at, deadline, request_auth) VALUES (?, '01', 'A', 1, 'subscriber',"
    " ?, 'op', 0, ?, X'00')";

static void sql_row(struct fixture *f, const char *sql, int64_t id, const char *state, int64_t t)
{
        struct gmca_error e = {0};
        struct gmca_q q;

        expect(gmca_q_open(f->s, sql, &q, &e), &e, 0, NULL, "insert");
        if (id > 0) {
                gmca_q_int(&q, id);
                gmca_q_text(&q, state);
                gmca_q_int(&q, t);
        }
        assert_int_equal(gmca_q_step(&q, &e, "insert"), GMCA_DB_DONE);
        gmca_q_close(&q);
}

static void test_system_status(void **state)
{
        struct fixture *f = *state;
        struct gmca_system_engine down = {0, NULL, "connect: no such file"};
        struct gmca_system_engine up = {1, "root\nsub\n", NULL};
        struct gmca_error e = {0};
        json_t *out = NULL, *apps, *revs;

        sql_row(f, SQL_APPLICANT, 0, NULL, 0);
        sql_row(f, SQL_APP, 1, "submitted", NOW - 10 * 86400); /* overdue (§3.2.3) */
        sql_row(f, SQL_APP, 2, "vetted", NOW - 3600);          /* in time */
        sql_row(f, SQL_APP, 3, "issued", NOW - 30 * 86400);    /* done */
        sql_row(f, SQL_APP, 4, "approved", NOW - 5 * 86400);   /* open, overdue */
        sql_row(f, SQL_REV, 1, "pending", NOW - 1);            /* overdue (§3.9.6) */
        sql_row(f, SQL_REV, 2, "pending", NOW + 3600);
        sql_row(f, SQL_REV, 3, "completed", NOW - 86400);

        expect(gmca_system_status(f->s, &f->sysadm, &down, NOW, &out, &e), &e, 0, NULL, "status");
        assert_true(json_is_false(json_object_get(json_object_get(out, "engine"), "up")));
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(out, "engine"), "error")),
            "connect: no such file");
        assert_int_equal(json_array_size(json_object_get(out, "cas")), 0);
        assert_int_equal(json_integer_value(json_object_get(out, "schema_version")),
                         gmca_store_schema_version(f->s));
        assert_int_equal(json_integer_value(json_object_get(out, "audit_records")), audit_n(f));
        apps = json_object_get(out, "applications");
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(apps, "by_state"), "submitted")), 1);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(apps, "by_state"), "issued")), 1);
        assert_int_equal(json_integer_value(json_object_get(apps, "open")), 3);
        assert_int_equal(json_integer_value(json_object_get(apps, "overdue")), 2);
        assert_int_equal(
            json_integer_value(json_array_get(json_object_get(apps, "overdue_ids"), 0)), 1);
        assert_int_equal(
            json_integer_value(json_array_get(json_object_get(apps, "overdue_ids"), 1)), 4);
        revs = json_object_get(out, "revocations");
        assert_int_equal(json_integer_value(json_object_get(revs, "pending")), 2);
        assert_int_equal(json_integer_value(json_object_get(revs, "overdue")), 1);
        assert_int_equal(
            json_integer_value(json_array_get(json_object_get(revs, "overdue_ids"), 0)), 1);
        json_decref(out);

        out = NULL;
        expect(gmca_system_status(f->s, &f->sysadm, &up, NOW, &out, &e), &e, 0, NULL, "engine up");
        assert_true(json_is_true(json_object_get(json_object_get(out, "engine"), "up")));
        assert_int_equal(json_array_size(json_object_get(json_object_get(out, "engine"), "cas")),
                         2);
        json_decref(out);

        out = NULL;
        expect(gmca_system_status(f->s, &f->bop, &up, NOW, &out, &e), &e, GMCA_ERR_FORBIDDEN,
               "system.read", "a business operator");
        assert_null(out);
        last_audit(f, GMCA_EV_AUTH_REQUEST, 0, f->bop.op.name, "system", NULL, NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_get, setup, teardown),
            cmocka_unit_test_setup_teardown(test_put_replace, setup, teardown),
            cmocka_unit_test_setup_teardown(test_put_create, setup, teardown),
            cmocka_unit_test_setup_teardown(test_put_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_put_over_ca_profile, setup, teardown),
            cmocka_unit_test_setup_teardown(test_put_audit_fails, setup, teardown),
            cmocka_unit_test_setup_teardown(test_enable_disable, setup, teardown),
            cmocka_unit_test_setup_teardown(test_system_status, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
