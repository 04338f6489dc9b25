/*
 * Applicants (CPS §2.2.2–§2.2.4, §3.1.1): the people, organisations and
 * devices certificates are made for. The identity document number is
 * private information (§4.5, §8.4): it is sealed by the CA engine's key
 * (env->sealer, bound to "applicant:<id>:id_number") before it is stored,
 * listings and normal reads show only id_masked (first 3 and last 2
 * characters), and a full read is for business admins only and leaves an
 * audit record each time. A correction (§4.5 item 5) is audited with the
 * names of the fields it changed, never their values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "ra_internal.h"
#include "store_internal.h"

#define OBJ_MAX 48

/* A stored applicant; v[f] malloc'd text or NULL (v[AF_ID_NUMBER] is the mask).
 */
struct applicant {
        int64_t id;
        int kind;
        char *v[AF_COUNT];
        uint8_t *sealed;
        size_t sealed_len;
        char created_by[GMCA_NAME_MAX];
        int64_t created_at;
        int64_t updated_at;
};

#define APPLICANT_COLS                                                                             \
        "id, kind, name, id_type, id_masked, contact, uscc, address, org_name, "                   \
        "department, "                                                                             \
        "auth_letter, domain, ip, owner_org, id_sealed, created_by, created_at, "                  \
        "updated_at"
/* Column of field f: the table's columns follow enum ra_afield from the third
 * on. */
#define COL(f) (2 + (int)(f))

static const char SQL_GET[] = "SELECT " APPLICANT_COLS " FROM applicants WHERE id = ?";
static const char SQL_INSERT[] =
    "INSERT INTO applicants (kind, name, id_type, id_masked, contact, uscc, "
    "address, org_name, "
    "department, auth_letter, domain, ip, owner_org, created_by, created_at, "
    "updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id";
static const char SQL_SEAL[] = "UPDATE applicants SET id_sealed = ? WHERE id = ?";
static const char SQL_UPDATE[] = "UPDATE applicants SET name = ?, id_type = ?, "
                                 "id_masked = ?, contact = ?, uscc = ?, "
                                 "address = ?, org_name = ?, department = ?, "
                                 "auth_letter = ?, domain = ?, ip = ?, "
                                 "owner_org = ?, updated_at = ? WHERE id = ?";
static const char SQL_LIST[] = "SELECT " APPLICANT_COLS " FROM applicants"
                               " WHERE (? = '' OR kind = ?) AND (? = '' OR name LIKE ? ESCAPE '!')"
                               " ORDER BY id LIMIT ? OFFSET ?";
static const char SQL_COUNT[] =
    "SELECT COUNT(*) FROM applicants"
    " WHERE (? = '' OR kind = ?) AND (? = '' OR name LIKE ? ESCAPE '!')";

static void applicant_clear(struct applicant *a)
{
        for (int i = 0; i < AF_COUNT; i++)
                free(a->v[i]);
        OPENSSL_free(a->sealed);
        memset(a, 0, sizeof(*a));
}

static void object_name(char out[OBJ_MAX], int64_t id)
{
        snprintf(out, OBJ_MAX, "applicant:%lld", (long long)id);
}

/* The row under q's cursor. */
static int applicant_row(struct gmca_q *q, struct applicant *a, struct gmca_error *e)
{
        const char *t;
        int rc;

        memset(a, 0, sizeof(*a));
        a->id = gmca_q_col_int(q, 0);
        if ((a->kind = ra_kind_from_name(gmca_q_col_text(q, 1))) < 0)
                return gmca_error_set(e, GMCA_ERR_DB, "applicant %lld: unknown kind in the store",
                                      (long long)a->id);
        for (int f = 0; f < AF_COUNT; f++) {
                if ((t = gmca_q_col_text(q, COL(f))) == NULL)
                        continue;
                if ((a->v[f] = strdup(t)) == NULL)
                        return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        if ((rc = gmca_q_col_dup(q, 14, &a->sealed, &a->sealed_len, e)) != 0 ||
            (rc = gmca_q_col_str(q, 15, a->created_by, sizeof(a->created_by), "created_by", e)) !=
                0)
                return rc;
        a->created_at = gmca_q_col_int(q, 16);
        a->updated_at = gmca_q_col_int(q, 17);
        return 0;
}

static int applicant_load(struct gmca_store *s, int64_t id, struct applicant *a,
                          struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(a, 0, sizeof(*a));
        if ((rc = gmca_q_open(s, SQL_GET, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "applicant %lld", (long long)id);
        if (rc == GMCA_DB_ROW)
                rc = applicant_row(&q, a, e);
        else if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "applicant %lld: no such applicant",
                                    (long long)id);
        gmca_q_close(&q);
        if (rc != 0)
                applicant_clear(a);
        return rc;
}

/* First 3 and last 2 characters (UTF-8), one '*' for each in between. */
static char *mask(const char *v)
{
        size_t n = strlen(v), chars = 0, i, k = 0, c = 0;
        char *out = malloc(n + 1);

        if (out == NULL)
                return NULL;
        for (i = 0; i < n; i++)
                chars += ((unsigned char)v[i] & 0xc0) != 0x80;
        for (i = 0; i < n; i++) {
                int start = ((unsigned char)v[i] & 0xc0) != 0x80;

                if (start)
                        c++;
                if (c <= 3 || c + 2 > chars)
                        out[k++] = v[i];
                else if (start)
                        out[k++] = '*';
        }
        out[k] = '\0';
        return out;
}

/* The record as the API shows it; id_number (clear) only for a full read. */
static json_t *applicant_json(const struct applicant *a, const char *id_number)
{
        json_t *o = json_pack("{s:I, s:s}", "id", (json_int_t)a->id, "kind", ra_kind_name(a->kind));

        if (o == NULL)
                return NULL;
        for (int f = 0; f < AF_COUNT; f++)
                if (a->v[f] != NULL)
                        json_object_set_new(o, f == AF_ID_NUMBER ? "id_masked" : ra_afield_name(f),
                                            json_string(a->v[f]));
        if (id_number != NULL)
                json_object_set_new(o, "id_number", json_string(id_number));
        json_object_set_new(o, "created_by", json_string(a->created_by));
        json_object_set_new(o, "created_at", json_integer(a->created_at));
        json_object_set_new(o, "updated_at", json_integer(a->updated_at));
        return o;
}

static int seal_id(const struct gmca_ra_env *env, int64_t id, const char *number,
                   struct gmca_error *e)
{
        char aad[OBJ_MAX + 16];
        uint8_t *sealed = NULL;
        size_t n = 0;
        struct gmca_q q;
        int rc;

        if (env->sealer == NULL || env->sealer->seal == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "no sealing key: identity numbers are stored only sealed "
                                      "(CPS §8.4); is the CA engine activated?");
        snprintf(aad, sizeof(aad), "applicant:%lld:id_number", (long long)id);
        if ((rc = env->sealer->seal(env->sealer->arg, aad, (const uint8_t *)number, strlen(number),
                                    &sealed, &n, e)) != 0)
                return rc;
        if ((rc = gmca_q_open(env->store, SQL_SEAL, &q, e)) == 0) {
                gmca_q_blob(&q, sealed, n);
                gmca_q_int(&q, id);
                rc = gmca_q_step(&q, e, "applicant %lld", (long long)id);
                gmca_q_close(&q);
        }
        free(sealed);
        return rc < 0 ? rc : 0;
}

/* Bind field values in table order (name .. owner_org); the ID number as its
 * mask. */
static int bind_fields(struct gmca_q *q, const char *const *v, struct gmca_error *e)
{
        for (int f = 0; f < AF_COUNT; f++) {
                if (f == AF_ID_NUMBER && v[f] != NULL) {
                        char *m = mask(v[f]);

                        if (m == NULL)
                                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        gmca_q_text(q, m);
                        free(m);
                } else {
                        gmca_q_text(q, v[f]);
                }
        }
        return 0;
}

static int respond(struct gmca_store *s, int64_t id, json_t **out, struct gmca_error *e)
{
        struct applicant a;
        int rc;

        if ((rc = applicant_load(s, id, &a, e)) != 0)
                return rc;
        *out = applicant_json(&a, NULL);
        applicant_clear(&a);
        return *out != NULL ? 0 : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
}

/* Fields present in a body, by name, for the audit record (never their values).
 */
static json_t *field_names(const struct ra_applicant_body *b, const unsigned changed)
{
        json_t *list = json_array();

        for (int f = 0; list != NULL && f < AF_COUNT; f++)
                if (changed & (1u << f))
                        json_array_append_new(list, json_string(ra_afield_name(f)));
        return list;
}

int gmca_ra_applicant_create(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             const uint8_t *body, size_t len, int64_t now, json_t **out,
                             struct gmca_error *e)
{
        struct ra_applicant_body b;
        struct gmca_q q;
        char object[OBJ_MAX] = "applicant";
        unsigned given = 0;
        int64_t id = 0;
        int rc;

        memset(&b, 0, sizeof(b));
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICANT_CREATE, GMCA_EV_APPLICANT_CREATE, object,
                             e)) != 0)
                return rc;
        if ((rc = ra_applicant_parse(body, len, 1, &b, e)) != 0)
                goto fail;
        if ((rc = gmca_store_begin(env->store, e)) != 0)
                goto fail;
        if ((rc = gmca_q_open(env->store, SQL_INSERT, &q, e)) != 0)
                goto fail;
        gmca_q_text(&q, ra_kind_name(b.kind));
        if ((rc = bind_fields(&q, b.f, e)) == 0) {
                gmca_q_text(&q, who->op.name);
                gmca_q_int(&q, now);
                gmca_q_int(&q, now);
                rc = gmca_q_step(&q, e, "new applicant");
                if (rc == GMCA_DB_ROW)
                        id = gmca_q_col_int(&q, 0);
                else if (rc >= 0)
                        rc = gmca_error_set(e, GMCA_ERR_DB, "new applicant: no id returned");
        }
        gmca_q_close(&q);
        if (rc < 0)
                goto fail;
        object_name(object, id);
        if (b.f[AF_ID_NUMBER] != NULL && (rc = seal_id(env, id, b.f[AF_ID_NUMBER], e)) != 0)
                goto fail;
        for (int f = 0; f < AF_COUNT; f++)
                if (b.f[f] != NULL)
                        given |= 1u << f;
        if ((rc = ra_audit(env->store, GMCA_EV_APPLICANT_CREATE, who->op.name, object,
                           json_pack("{s:s, s:o}", "kind", ra_kind_name(b.kind), "fields",
                                     field_names(&b, given)),
                           e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        ra_applicant_body_clear(&b);
        return respond(env->store, id, out, e);
fail:
        ra_applicant_body_clear(&b);
        return ra_refuse(env->store, who->op.name, GMCA_EV_APPLICANT_CREATE, object, rc, e);
}

int gmca_ra_applicant_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                          int64_t id, int full, int64_t now, json_t **out, struct gmca_error *e)
{
        struct applicant a;
        char object[OBJ_MAX], aad[OBJ_MAX + 16];
        uint8_t *clear = NULL;
        char *number = NULL;
        size_t n = 0;
        struct gmca_audit_event ev;
        int rc;

        (void)now;
        memset(&a, 0, sizeof(a));
        object_name(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICANT_READ, GMCA_EV_APPLICANT_READ, object,
                             e)) != 0)
                return rc;
        if (!full)
                return respond(env->store, id, out, e);
        /* A full read (§8.4): business admins only, each one audited. */
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICANT_READ_FULL, GMCA_EV_APPLICANT_READ, object,
                             e)) != 0)
                return rc;
        if ((rc = applicant_load(env->store, id, &a, e)) != 0)
                goto fail;
        if (a.sealed != NULL) {
                if (env->sealer == NULL || env->sealer->unseal == NULL) {
                        rc = gmca_error_set(e, GMCA_ERR_STATE,
                                            "no sealing key: is the CA engine activated?");
                        goto fail;
                }
                snprintf(aad, sizeof(aad), "%s:id_number", object);
                if ((rc = env->sealer->unseal(env->sealer->arg, aad, a.sealed, a.sealed_len, &clear,
                                              &n, e)) != 0)
                        goto fail;
                if ((number = malloc(n + 1)) == NULL) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        goto fail;
                }
                memcpy(number, clear, n);
                number[n] = '\0';
        }
        /* The record first: no full read leaves without its trace. */
        ev = (struct gmca_audit_event){GMCA_EV_APPLICANT_READ, who->op.name, 1, object,
                                       "{\"fields\":[\"id_number\"]}"};
        if ((rc = gmca_audit_record(env->store, &ev, e)) != 0)
                goto fail;
        if ((*out = applicant_json(&a, number)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        goto out;
fail:
        ra_refuse(env->store, who->op.name, GMCA_EV_APPLICANT_READ, object, rc, e);
out:
        if (clear != NULL)
                OPENSSL_clear_free(clear, n); /* sealer output: malloc'd (ra.h) */
        if (number != NULL)
                OPENSSL_cleanse(number, n);
        free(number);
        applicant_clear(&a);
        return rc;
}

/* LIKE pattern for a substring, '!' escaping. */
static char *like_pattern(const char *s)
{
        size_t n = strlen(s), k = 0;
        char *p = malloc(2 * n + 3);

        if (p == NULL)
                return NULL;
        p[k++] = '%';
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '!' || s[i] == '%' || s[i] == '_')
                        p[k++] = '!';
                p[k++] = s[i];
        }
        p[k++] = '%';
        p[k] = '\0';
        return p;
}

/* One row of the listing, masked. */
static int applicant_item(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e)
{
        struct applicant a;
        int rc;

        (void)arg;
        if ((rc = applicant_row(q, &a, e)) == 0)
                *o = applicant_json(&a, NULL);
        applicant_clear(&a);
        return rc;
}

int gmca_ra_applicant_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                           const char *kind, const char *name, int64_t limit, int64_t offset,
                           json_t **out, struct gmca_error *e)
{
        struct gmca_q q;
        char *pattern = NULL;
        int64_t total = 0;
        int rc;

        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICANT_READ, GMCA_EV_APPLICANT_READ,
                             "applicants", e)) != 0)
                return rc;
        if (kind == NULL)
                kind = "";
        if (name == NULL)
                name = "";
        if (kind[0] != '\0' && ra_kind_from_name(kind) < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "kind: one of individual, organization, staff, device");
        if (strlen(name) > RA_NAME_CAP)
                return gmca_error_set(e, GMCA_ERR_INVALID, "name: longer than %d bytes",
                                      RA_NAME_CAP);
        if (limit < 0 || limit > GMCA_RA_LIST_MAX || offset < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "limit: 1..%d; offset: 0 or more",
                                      GMCA_RA_LIST_MAX);
        if (limit == 0)
                limit = GMCA_RA_LIST_MAX;
        if ((pattern = like_pattern(name)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = gmca_q_open(env->store, SQL_COUNT, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, kind);
        gmca_q_text(&q, kind);
        gmca_q_text(&q, name);
        gmca_q_text(&q, pattern);
        if ((rc = gmca_q_step(&q, e, "count applicants")) == GMCA_DB_ROW)
                total = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        if (rc < 0 || (rc = gmca_q_open(env->store, SQL_LIST, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, kind);
        gmca_q_text(&q, kind);
        gmca_q_text(&q, name);
        gmca_q_text(&q, pattern);
        gmca_q_int(&q, limit);
        gmca_q_int(&q, offset);
        rc = ra_list_collect(&q, "list applicants", applicant_item, NULL, total, out, e);
out:
        free(pattern);
        return rc;
}

static int same(const char *a, const char *b)
{
        return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int gmca_ra_applicant_correct(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                              int64_t id, const uint8_t *body, size_t len, int64_t now,
                              json_t **out, struct gmca_error *e)
{
        struct ra_applicant_body b;
        struct applicant a;
        const char *v[AF_COUNT];
        char object[OBJ_MAX];
        unsigned changed = 0;
        struct gmca_q q;
        int rc, f;

        memset(&b, 0, sizeof(b));
        memset(&a, 0, sizeof(a));
        object_name(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICANT_CORRECT, GMCA_EV_APPLICANT_CORRECT,
                             object, e)) != 0)
                return rc;
        if ((rc = ra_applicant_parse(body, len, 0, &b, e)) != 0)
                goto fail;
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = applicant_load(env->store, id, &a, e)) != 0)
                goto fail;
        rc = GMCA_ERR_INVALID;
        for (f = 0; f < AF_COUNT; f++) {
                int given = b.f[f] != NULL, cleared = (b.cleared >> f) & 1;

                v[f] = a.v[f];
                if (!given && !cleared)
                        continue;
                if (!ra_afield_applies(f, a.kind)) {
                        gmca_error_set(e, rc, "%s: does not apply to kind %s", ra_afield_name(f),
                                       ra_kind_name(a.kind));
                        goto fail;
                }
                if (f == AF_ID_NUMBER) {
                        changed |= 1u << f; /* sealed: never compared in clear */
                        continue;
                }
                v[f] = b.f[f];
                if (!same(v[f], a.v[f]))
                        changed |= 1u << f;
        }
        if (a.kind == RA_DEVICE && v[AF_DOMAIN] == NULL && v[AF_IP] == NULL) {
                gmca_error_set(e, rc, "domain, ip: a device needs one at least");
                goto fail;
        }
        /* A new number is checked against the type it will have. */
        if (b.f[AF_ID_NUMBER] != NULL) {
                v[AF_ID_NUMBER] = b.f[AF_ID_NUMBER];
                if ((rc = ra_afield_check(AF_ID_NUMBER, b.f[AF_ID_NUMBER], v[AF_ID_TYPE], e)) != 0)
                        goto fail;
        }
        if ((rc = gmca_q_open(env->store, SQL_UPDATE, &q, e)) != 0)
                goto fail;
        if (b.f[AF_ID_NUMBER] != NULL) {
                rc = bind_fields(&q, v, e);
        } else {
                /* Keep the stored mask as it is. */
                for (f = 0; f < AF_COUNT; f++)
                        gmca_q_text(&q, v[f]);
                rc = 0;
        }
        if (rc == 0) {
                gmca_q_int(&q, now);
                gmca_q_int(&q, id);
                rc = gmca_q_step(&q, e, "applicant %lld", (long long)id);
        }
        gmca_q_close(&q);
        if (rc < 0)
                goto fail;
        if (b.f[AF_ID_NUMBER] != NULL && (rc = seal_id(env, id, b.f[AF_ID_NUMBER], e)) != 0)
                goto fail;
        if ((rc = ra_audit(env->store, GMCA_EV_APPLICANT_CORRECT, who->op.name, object,
                           json_pack("{s:o}", "fields", field_names(&b, changed)), e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        applicant_clear(&a);
        ra_applicant_body_clear(&b);
        return respond(env->store, id, out, e);
fail:
        applicant_clear(&a);
        ra_applicant_body_clear(&b);
        return ra_refuse(env->store, who->op.name, GMCA_EV_APPLICANT_CORRECT, object, rc, e);
}
