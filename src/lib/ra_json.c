/*
 * The RA API's request bodies, read strictly: one JSON object (duplicate
 * keys refused, UTF-8 only, no NUL), every key known, every value of its
 * type and within its cap, every rule that needs no database checked here
 * (identity numbers by GB 11643, credit codes by GB 32100, domain names and
 * addresses, the fields each kind of applicant has, the fields each type
 * of application may carry). A refusal is GMCA_ERR_INVALID naming the key,
 * GMCA_ERR_LIMIT for a body over GMCA_AUTH_BODY_MAX. These parsers see
 * bytes from the network first; fuzz/fuzz_rabody.c drives them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ca.h"
#include "profile.h"
#include "ra_internal.h"
#include "x509.h"

enum jtype { J_NAME, J_TEXT, J_INT, J_BOOL, J_OBJ, J_LIST };

struct key {
        const char *name;
        enum jtype type;
        size_t cap; /* bytes of a string, items of a list, largest integer */
};

void ra_show(char *out, size_t cap, const char *s)
{
        size_t i, n = 0;

        if (cap == 0)
                return;
        for (i = 0; s != NULL && s[i] != '\0' && n + 4 < cap && i < 48; i++)
                out[n++] = ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) ? s[i] : '?';
        if (s != NULL && s[i] != '\0' && n + 4 <= cap) {
                memcpy(out + n, "...", 3);
                n += 3;
        }
        out[n] = '\0';
}

/* The body as a JSON object; an empty body is refused when required, else *root
 * = NULL. */
static int load(const uint8_t *body, size_t len, int required, json_t **root, struct gmca_error *e)
{
        json_error_t je;
        json_t *j;

        *root = NULL;
        if (len > GMCA_AUTH_BODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "body: more than %u bytes",
                                      GMCA_AUTH_BODY_MAX);
        if (body == NULL || len == 0) {
                if (required)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "body: a JSON object is required");
                return 0;
        }
        /* Without JSON_ALLOW_NUL jansson refuses \u0000; it refuses bad UTF-8 always.
         */
        j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL) {
                char t[64];

                ra_show(t, sizeof(t), je.text);
                return gmca_error_set(e, GMCA_ERR_INVALID, "body: not JSON (line %d: %s)", je.line,
                                      t);
        }
        if (!json_is_object(j)) {
                json_decref(j);
                return gmca_error_set(e, GMCA_ERR_INVALID, "body: must be a JSON object");
        }
        *root = j;
        return 0;
}

/* A string value: no NUL, no control characters (free text may have tab and
 * newlines). */
static int check_string(const char *key, json_t *v, int text, size_t cap, struct gmca_error *e)
{
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        size_t n = json_string_length(v);

        if (n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: must not be empty", key);
        if (n > cap)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: longer than %zu bytes", key, cap);
        if (strlen((const char *)s) != n)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: contains NUL", key);
        for (size_t i = 0; i < n; i++) {
                int ok_ws = text && (s[i] == '\n' || s[i] == '\r' || s[i] == '\t');

                if ((s[i] < 0x20 && !ok_ws) || s[i] == 0x7f ||
                    (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] < 0xa0))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "%s: contains a control character", key);
        }
        return 0;
}

/*
 * Every key of root is in keys[0..n) and of its type. nullable: the keys
 * whose value may be null (bitmask over keys' indexes), for corrections.
 */
static int check_keys(json_t *root, const struct key *keys, size_t n, unsigned nullable,
                      struct gmca_error *e)
{
        const char *k;
        json_t *v;
        int rc;

        json_object_foreach(root, k, v)
        {
                size_t i;
                char shown[64];

                for (i = 0; i < n && strcmp(k, keys[i].name) != 0; i++)
                        ;
                if (i == n) {
                        ra_show(shown, sizeof(shown), k);
                        return gmca_error_set(e, GMCA_ERR_INVALID, "body: unknown key \"%s\"",
                                              shown);
                }
                if (json_is_null(v) && (nullable & (1u << i)))
                        continue;
                switch (keys[i].type) {
                case J_NAME:
                case J_TEXT:
                        if (!json_is_string(v))
                                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: must be a string",
                                                      k);
                        if ((rc = check_string(k, v, keys[i].type == J_TEXT, keys[i].cap, e)) != 0)
                                return rc;
                        break;
                case J_INT:
                        if (!json_is_integer(v))
                                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: must be an integer",
                                                      k);
                        if (json_integer_value(v) < 1 ||
                            (uint64_t)json_integer_value(v) > keys[i].cap)
                                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: must be 1..%zu", k,
                                                      keys[i].cap);
                        break;
                case J_BOOL:
                        if (!json_is_boolean(v))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "%s: must be true or false", k);
                        break;
                case J_OBJ:
                        if (!json_is_object(v))
                                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: must be an object",
                                                      k);
                        break;
                case J_LIST: {
                        size_t j;
                        json_t *item;
                        char what[80];

                        if (!json_is_array(v))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "%s: must be a list of strings", k);
                        if (json_array_size(v) > keys[i].cap)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "%s: more than %zu items", k, keys[i].cap);
                        json_array_foreach(v, j, item)
                        {
                                snprintf(what, sizeof(what), "%s[%zu]", k, j);
                                if (!json_is_string(item))
                                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                                              "%s: must be a string", what);
                                if ((rc = check_string(what, item, 1, RA_TEXT_CAP, e)) != 0)
                                        return rc;
                        }
                        break;
                }
                }
        }
        return 0;
}

static const char *str(json_t *root, const char *key)
{
        json_t *v = json_object_get(root, key);

        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int one_of(const char *v, const char *const *set, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v, set[i]) == 0)
                        return 1;
        return 0;
}

/* ---- applicants ---- */

static const char *const kinds[RA_KIND_COUNT] = {"individual", "organization", "staff", "device"};

const char *ra_kind_name(int kind)
{
        return kind >= 0 && kind < RA_KIND_COUNT ? kinds[kind] : NULL;
}

int ra_kind_from_name(const char *s)
{
        for (int i = 0; s != NULL && i < RA_KIND_COUNT; i++)
                if (strcmp(s, kinds[i]) == 0)
                        return i;
        return -1;
}

#define K(x) (1u << (x))
#define PERSON (K(RA_INDIVIDUAL) | K(RA_STAFF))
#define ALL_KINDS (K(RA_INDIVIDUAL) | K(RA_ORGANIZATION) | K(RA_STAFF) | K(RA_DEVICE))

/*
 * The applicant record per kind (CPS §2.2.2–§2.2.4, §3.1.1):
 *   individual   name, id_type, id_number, contact?
 *   organization name, uscc, address, contact?
 *   staff        name, id_type, id_number, org_name, department, auth_letter,
 * contact? device       name, domain?, ip? (one at least), owner_org, contact?
 */
static const struct {
        struct key k;
        unsigned required; /* kinds that must have it */
        unsigned optional; /* kinds that may have it */
        int clearable;     /* a correction may set it to null */
} afields[AF_COUNT] = {
    [AF_NAME] = {{"name", J_NAME, RA_NAME_CAP}, ALL_KINDS, 0, 0},
    [AF_ID_TYPE] = {{"id_type", J_NAME, 32}, PERSON, 0, 0},
    [AF_ID_NUMBER] = {{"id_number", J_NAME, 64}, PERSON, 0, 0},
    [AF_CONTACT] = {{"contact", J_NAME, RA_NAME_CAP}, 0, ALL_KINDS, 1},
    [AF_USCC] = {{"uscc", J_NAME, 18}, K(RA_ORGANIZATION), 0, 0},
    [AF_ADDRESS] = {{"address", J_TEXT, RA_TEXT_CAP}, K(RA_ORGANIZATION), 0, 0},
    [AF_ORG_NAME] = {{"org_name", J_NAME, RA_NAME_CAP}, K(RA_STAFF), 0, 0},
    [AF_DEPARTMENT] = {{"department", J_NAME, RA_NAME_CAP}, K(RA_STAFF), 0, 0},
    [AF_AUTH_LETTER] = {{"auth_letter", J_NAME, RA_NAME_CAP}, K(RA_STAFF), 0, 0},
    [AF_DOMAIN] = {{"domain", J_NAME, 253}, 0, K(RA_DEVICE), 1},
    [AF_IP] = {{"ip", J_NAME, 45}, 0, K(RA_DEVICE), 1},
    [AF_OWNER_ORG] = {{"owner_org", J_NAME, RA_NAME_CAP}, K(RA_DEVICE), 0, 0},
};

const char *ra_afield_name(enum ra_afield f)
{
        return (unsigned)f < AF_COUNT ? afields[f].k.name : NULL;
}

int ra_afield_applies(enum ra_afield f, int kind)
{
        return (unsigned)f < AF_COUNT && kind >= 0 && kind < RA_KIND_COUNT &&
               ((afields[f].required | afields[f].optional) & K(kind)) != 0;
}

int ra_afield_required(enum ra_afield f, int kind)
{
        return (unsigned)f < AF_COUNT && kind >= 0 && kind < RA_KIND_COUNT &&
               (afields[f].required & K(kind)) != 0;
}

int ra_afield_clearable(enum ra_afield f)
{
        return (unsigned)f < AF_COUNT && afields[f].clearable;
}

static const char *const id_types[] = {"resident_id", "passport", "military_id", "police_id",
                                       "other"};

/* Reuse the subject-info checks of x509_name.c: one value as its JSON. */
static int check_by_subject_info(const char *field, json_t *si, struct gmca_error *e)
{
        struct gmca_error inner = {0};
        struct gmca_subject_info *parsed;
        char *text = json_dumps(si, JSON_COMPACT);

        json_decref(si);
        if (text == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        parsed = gmca_subject_info_parse(text, strlen(text), &inner);
        free(text);
        if (parsed == NULL) {
                const char *m = inner.msg;

                if (strncmp(m, "subject info: ", 14) == 0)
                        m += 14;
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: %s", field, m);
        }
        gmca_subject_info_free(parsed);
        return 0;
}

int ra_afield_check(enum ra_afield f, const char *v, const char *id_type, struct gmca_error *e)
{
        switch (f) {
        case AF_ID_TYPE:
                if (!one_of(v, id_types, sizeof(id_types) / sizeof(id_types[0])))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "id_type: must be resident_id, passport, "
                                              "military_id, police_id or other");
                return 0;
        case AF_ID_NUMBER: {
                size_t chars = 0;

                for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
                        chars += (*p & 0xc0) != 0x80;
                if (chars < RA_ID_MIN_CHARS)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "id_number: at least %d characters", RA_ID_MIN_CHARS);
                if (id_type != NULL && strcmp(id_type, "resident_id") == 0)
                        /* GB 11643-1999: 18 characters with its check digit. */
                        return check_by_subject_info(
                            "id_number", json_pack("{s:s}", "identity_card_number", v), e);
                return 0;
        }
        case AF_USCC:
                return check_by_subject_info(
                    "uscc", json_pack("{s:s}", "unified_social_credit_code", v), e);
        case AF_DOMAIN:
                return check_by_subject_info("domain", json_pack("{s:{s:[s]}}", "san", "dns", v),
                                             e);
        case AF_IP:
                return check_by_subject_info("ip", json_pack("{s:{s:[s]}}", "san", "ip", v), e);
        default:
                return 0;
        }
}

void ra_applicant_body_clear(struct ra_applicant_body *b)
{
        json_t *v;

        if (b == NULL)
                return;
        /* The identity number in clear goes no further than this body (CPS §8.4). */
        if (json_is_string(v = json_object_get(b->root, "id_number")))
                OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
        json_decref(b->root);
        memset(b, 0, sizeof(*b));
        b->kind = -1;
}

/*
 * POST /api/v1/applicants (create = 1):
 *   {"kind": "individual"|"organization"|"staff"|"device",
 *    "name": string <= 128 bytes,
 *    "id_type": "resident_id"|"passport"|"military_id"|"police_id"|"other",
 * (individual, staff) "id_number": string 6..64 (resident_id: GB 11643, 18
 * characters),       (individual, staff) "uscc": string, GB 32100 (18
 * characters),                              (organization) "address": string <=
 * 1024,                                             (organization) "org_name",
 * "department", "auth_letter": strings <= 128,               (staff) "domain":
 * DNS name, "ip": IPv4/IPv6 address (one at least),            (device)
 *    "owner_org": string <= 128, (device) "contact": string <= 128, optional
 * for every kind (e-mail address or phone number for notifications; anything
 * else means notification at the counter)} A key that does not belong to the
 * kind is refused. PATCH /api/v1/applicants/{id} (create = 0): the same keys
 * but "kind", any subset, at least one; "contact", "domain" and "ip" may be
 * null to clear them; "id_type" needs "id_number" beside it.
 */
int ra_applicant_parse(const uint8_t *body, size_t len, int create, struct ra_applicant_body *out,
                       struct gmca_error *e)
{
        struct key keys[AF_COUNT + 1];
        unsigned nullable = 0;
        const char *kind;
        int rc, i;

        memset(out, 0, sizeof(*out));
        out->kind = -1;
        for (i = 0; i < AF_COUNT; i++) {
                keys[i] = afields[i].k;
                if (!create && afields[i].clearable)
                        nullable |= 1u << i;
        }
        keys[AF_COUNT] = (struct key){"kind", J_NAME, 16};
        if ((rc = load(body, len, 1, &out->root, e)) != 0 ||
            (rc = check_keys(out->root, keys, AF_COUNT + 1, nullable, e)) != 0)
                goto fail;
        rc = GMCA_ERR_INVALID;
        if (!create && json_object_get(out->root, "kind") != NULL) {
                gmca_error_set(e, rc, "kind: cannot be changed; register a new applicant");
                goto fail;
        }
        if (!create && json_object_size(out->root) == 0) {
                gmca_error_set(e, rc, "body: nothing to correct");
                goto fail;
        }
        for (i = 0; i < AF_COUNT; i++) {
                json_t *v = json_object_get(out->root, afields[i].k.name);

                if (json_is_null(v))
                        out->cleared |= 1u << i;
                out->f[i] = str(out->root, afields[i].k.name);
        }
        if (create) {
                if ((kind = str(out->root, "kind")) == NULL ||
                    (out->kind = ra_kind_from_name(kind)) < 0) {
                        gmca_error_set(e, rc,
                                       "kind: required, one of individual, organization, staff, "
                                       "device");
                        goto fail;
                }
                for (i = 0; i < AF_COUNT; i++) {
                        if (out->f[i] != NULL && !ra_afield_applies(i, out->kind)) {
                                gmca_error_set(e, rc, "%s: does not apply to kind %s",
                                               afields[i].k.name, kinds[out->kind]);
                                goto fail;
                        }
                        if (out->f[i] == NULL && ra_afield_required(i, out->kind)) {
                                gmca_error_set(e, rc, "%s: required for kind %s", afields[i].k.name,
                                               kinds[out->kind]);
                                goto fail;
                        }
                }
                if (out->kind == RA_DEVICE && out->f[AF_DOMAIN] == NULL && out->f[AF_IP] == NULL) {
                        gmca_error_set(e, rc, "domain, ip: a device needs one at least");
                        goto fail;
                }
        } else if (out->f[AF_ID_TYPE] != NULL && out->f[AF_ID_NUMBER] == NULL) {
                gmca_error_set(e, rc, "id_type: give id_number with it");
                goto fail;
        }
        for (i = 0; i < AF_COUNT; i++)
                if (out->f[i] != NULL &&
                    (rc = ra_afield_check(i, out->f[i], out->f[AF_ID_TYPE], e)) != 0)
                        goto fail;
        return 0;
fail:
        ra_applicant_body_clear(out);
        return rc;
}

/* ---- applications ---- */

void ra_application_body_clear(struct ra_application_body *b)
{
        if (b == NULL)
                return;
        json_decref(b->root);
        memset(b, 0, sizeof(*b));
}

/*
 * POST /api/v1/applications (type new) and
 * POST /api/v1/certificates/{serial}/{renew|rekey|reissue|change}:
 *   {"applicant": integer id (required for new; for the others it defaults to
 *                 the applicant of the application that issued the old
 * certificate), "profile": string (required for new and change; renew, rekey
 * and reissue keep the old certificate's, and may only repeat it), "ca": string
 * (default: the CA that issues by default), "days": integer 1..36500 (default:
 * the profile's; not for reissue, which ends when the old certificate does, CPS
 * §3.7), "csr": PKCS#10 as PEM or as base64 of its DER (required),
 *    "subject_info": object, as `gmca cert issue --info` takes it (optional),
 *    "materials": [string <= 1024] <= 32 items (optional: the documents handed
 * in), "carrier": "lost"|"damaged" (reissue only, required there),
 *    "affiliation_confirmed": true|false (renew only; organisation and staff
 *                             certificates need true, CPS §3.6.4),
 *    "publish_directory": false (the subscriber agreement keeps the
 *                         certificate out of the LDAP directory, §3.4.2)}
 */
int ra_application_parse(const uint8_t *body, size_t len, enum gmca_app_type type,
                         struct ra_application_body *out, struct gmca_error *e)
{
        static const struct key keys[] = {
            {"applicant", J_INT, INT64_MAX / 2},  {"profile", J_NAME, GMCA_NAME_MAX - 1},
            {"ca", J_NAME, GMCA_NAME_MAX - 1},    {"days", J_INT, GMCA_PROFILE_DAYS_MAX},
            {"csr", J_TEXT, RA_CSR_TEXT_CAP},     {"subject_info", J_OBJ, 0},
            {"materials", J_LIST, RA_LIST_CAP},   {"carrier", J_NAME, 16},
            {"affiliation_confirmed", J_BOOL, 0}, {"publish_directory", J_BOOL, 0},
        };
        static const char *const carriers[] = {"lost", "damaged"};
        json_t *v;
        int rc;

        memset(out, 0, sizeof(*out));
        if ((unsigned)type > GMCA_APP_CHANGE)
                return gmca_error_set(e, GMCA_ERR_INVALID, "application: unknown type");
        if ((rc = load(body, len, 1, &out->root, e)) != 0 ||
            (rc = check_keys(out->root, keys, sizeof(keys) / sizeof(keys[0]), 0, e)) != 0)
                goto fail;
        rc = GMCA_ERR_INVALID;
        if ((v = json_object_get(out->root, "applicant")) != NULL)
                out->applicant = json_integer_value(v);
        if ((v = json_object_get(out->root, "days")) != NULL)
                out->days = (int)json_integer_value(v);
        out->profile = str(out->root, "profile");
        out->ca = str(out->root, "ca");
        out->csr = str(out->root, "csr");
        out->carrier = str(out->root, "carrier");
        out->subject_info = json_object_get(out->root, "subject_info");
        out->materials = json_object_get(out->root, "materials");
        out->affiliation_confirmed =
            json_is_true(json_object_get(out->root, "affiliation_confirmed"));
        out->no_publish = json_is_false(json_object_get(out->root, "publish_directory"));
        if (type == GMCA_APP_NEW && out->applicant == 0) {
                gmca_error_set(e, rc, "applicant: required");
                goto fail;
        }
        if ((type == GMCA_APP_NEW || type == GMCA_APP_CHANGE) && out->profile == NULL) {
                gmca_error_set(e, rc, "profile: required");
                goto fail;
        }
        if (out->csr == NULL) {
                gmca_error_set(e, rc, "csr: required");
                goto fail;
        }
        if (type == GMCA_APP_REISSUE) {
                if (out->carrier == NULL || !one_of(out->carrier, carriers, 2)) {
                        gmca_error_set(e, rc,
                                       "carrier: required for a reissue, \"lost\" or \"damaged\" "
                                       "(CPS §3.7)");
                        goto fail;
                }
                if (out->days != 0) {
                        gmca_error_set(e, rc,
                                       "days: a reissued certificate ends when the old one does "
                                       "(CPS §3.7)");
                        goto fail;
                }
        } else if (out->carrier != NULL) {
                gmca_error_set(e, rc, "carrier: only for a reissue");
                goto fail;
        }
        if (type != GMCA_APP_RENEW && json_object_get(out->root, "affiliation_confirmed") != NULL) {
                gmca_error_set(e, rc, "affiliation_confirmed: only for a renewal");
                goto fail;
        }
        return 0;
fail:
        ra_application_body_clear(out);
        return rc;
}

/* Strict base64 (RFC 4648 §4, padded, no whitespace) of at most cap decoded
 * bytes. */
static int unbase64(const char *text, size_t cap, uint8_t **out, size_t *outlen,
                    struct gmca_error *e)
{
        size_t n = strlen(text), pad = 0;
        uint8_t *buf;
        int m;

        if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap + 2)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "csr: neither PEM nor base64 of DER within %zu bytes", cap);
        if (text[n - 1] == '=')
                pad++;
        if (text[n - 2] == '=')
                pad++;
        for (size_t i = 0; i < n - pad; i++)
                if (text[i] == '=')
                        return gmca_error_set(e, GMCA_ERR_INVALID, "csr: bad base64 padding");
        if ((buf = OPENSSL_malloc(n / 4 * 3 + 1)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        m = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
        if (m < 0 || (size_t)m < pad) {
                OPENSSL_free(buf);
                return gmca_error_set(e, GMCA_ERR_INVALID, "csr: not base64");
        }
        *out = buf;
        *outlen = (size_t)m - pad;
        return 0;
}

int ra_csr_der(const char *text, uint8_t **der, size_t *len, struct gmca_error *e)
{
        static const char *const labels[] = {"CERTIFICATE REQUEST", NULL};
        uint8_t *owned = NULL, *copy;
        const uint8_t *d = NULL;
        size_t n = 0;
        int rc;

        if (strncmp(text, "-----BEGIN", 10) != 0) {
                if ((rc = unbase64(text, GMCA_CSR_MAX, &owned, &n, e)) != 0)
                        return rc;
                if (n == 0 || n > GMCA_CSR_MAX) {
                        OPENSSL_free(owned);
                        return gmca_error_set(e, GMCA_ERR_INVALID, "csr: empty or too large");
                }
                *der = owned;
                *len = n;
                return 0;
        }
        if ((rc = gmca_der_input((const uint8_t *)text, strlen(text), GMCA_CSR_MAX, "csr", labels,
                                 &owned, &d, &n, e)) != 0)
                return rc;
        if ((copy = OPENSSL_memdup(d, n)) == NULL) {
                OPENSSL_free(owned);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        OPENSSL_free(owned);
        *der = copy;
        *len = n;
        return 0;
}

int ra_info_text(json_t *info, char **out, struct gmca_error *e)
{
        *out = NULL;
        if (info == NULL)
                return 0;
        if ((*out = json_dumps(info, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (strlen(*out) > RA_INFO_CAP) {
                free(*out);
                *out = NULL;
                return gmca_error_set(e, GMCA_ERR_INVALID, "subject_info: more than %d bytes",
                                      RA_INFO_CAP);
        }
        return 0;
}

/* ---- vetting, decisions ---- */

#define SUBMISSION_NEEDED                                                                          \
        "submission: required, the application's \"submission\" (64 lower-case hex) as read "      \
        "before this step"

static int submission_ok(const char *v)
{
        if (v == NULL || strlen(v) != RA_SUBMISSION_HEX)
                return 0;
        for (const char *p = v; *p != '\0'; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return 0;
        return 1;
}

void ra_vet_body_clear(struct ra_vet_body *b)
{
        if (b == NULL)
                return;
        json_decref(b->root);
        memset(b, 0, sizeof(*b));
}

/*
 * POST /api/v1/applications/{id}/vet (CPS §3.2.1):
 *   {"method": "in_person"|"document"|"video"|"third_party_database"
 * (required), "documents": [string <= 1024], 1..32 items: what was checked
 * (required), "result": "pass"|"fail" (required), "note": string <= 1024
 * (optional; sent to the applicant on fail), "submission": 64 lower-case hex
 * (required: the application's "submission", ra_submission_digest)}
 */
int ra_vet_parse(const uint8_t *body, size_t len, struct ra_vet_body *out, struct gmca_error *e)
{
        static const struct key keys[] = {
            {"method", J_NAME, 32},
            {"documents", J_LIST, RA_LIST_CAP},
            {"result", J_NAME, 8},
            {"note", J_TEXT, RA_TEXT_CAP},
            {"submission", J_NAME, RA_SUBMISSION_HEX},
        };
        static const char *const methods[] = {"in_person", "document", "video",
                                              "third_party_database"};
        static const char *const results[] = {"pass", "fail"};
        int rc;

        memset(out, 0, sizeof(*out));
        if ((rc = load(body, len, 1, &out->root, e)) != 0 ||
            (rc = check_keys(out->root, keys, sizeof(keys) / sizeof(keys[0]), 0, e)) != 0)
                goto fail;
        rc = GMCA_ERR_INVALID;
        out->method = str(out->root, "method");
        out->result = str(out->root, "result");
        out->note = str(out->root, "note");
        out->submission = str(out->root, "submission");
        out->documents = json_object_get(out->root, "documents");
        if (out->method == NULL || !one_of(out->method, methods, 4)) {
                gmca_error_set(e, rc,
                               "method: required, one of in_person, document, video, "
                               "third_party_database");
                goto fail;
        }
        if (out->documents == NULL || json_array_size(out->documents) == 0) {
                gmca_error_set(e, rc, "documents: required, one document at least (CPS §3.2.1)");
                goto fail;
        }
        if (out->result == NULL || !one_of(out->result, results, 2)) {
                gmca_error_set(e, rc, "result: required, \"pass\" or \"fail\"");
                goto fail;
        }
        if (!submission_ok(out->submission)) {
                gmca_error_set(e, rc, SUBMISSION_NEEDED);
                goto fail;
        }
        return 0;
fail:
        ra_vet_body_clear(out);
        return rc;
}

void ra_decide_body_clear(struct ra_decide_body *b)
{
        if (b == NULL)
                return;
        json_decref(b->root);
        memset(b, 0, sizeof(*b));
}

/*
 * POST /api/v1/applications/{id}/approve: {"submission": 64 lower-case hex
 * (required), "reason": string <= 1024 (optional)}.
 * POST /api/v1/applications/{id}/reject:  {"reason": string <= 1024
 * (required; it is sent to the applicant, CPS §3.2.4), "submission"
 * (optional)}.
 */
int ra_decide_parse(const uint8_t *body, size_t len, int approve, struct ra_decide_body *out,
                    struct gmca_error *e)
{
        static const struct key keys[] = {{"reason", J_TEXT, RA_TEXT_CAP},
                                          {"submission", J_NAME, RA_SUBMISSION_HEX}};
        int rc;

        memset(out, 0, sizeof(*out));
        if (!approve && (body == NULL || len == 0))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "reason: required for a rejection (CPS §3.2.4)");
        if (approve && (body == NULL || len == 0))
                return gmca_error_set(e, GMCA_ERR_INVALID, SUBMISSION_NEEDED);
        if ((rc = load(body, len, 1, &out->root, e)) != 0 ||
            (rc = check_keys(out->root, keys, 2, 0, e)) != 0)
                goto fail;
        out->reason = str(out->root, "reason");
        out->submission = str(out->root, "submission");
        if ((approve || out->submission != NULL) && !submission_ok(out->submission)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, SUBMISSION_NEEDED);
                goto fail;
        }
        if (!approve && out->reason == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "reason: required for a rejection (CPS §3.2.4)");
                goto fail;
        }
        return 0;
fail:
        ra_decide_body_clear(out);
        return rc;
}

/* ---- revocation ---- */

int gmca_ra_reason_code(char reason)
{
        /* CPS §3.9.1 A–I -> RFC 5280 §5.3.1 CRLReason. */
        static const int map[9] = {
            3, /* A affiliationChanged: staff left their post */
            9, /* B privilegeWithdrawn: a judicial authority demands it */
            9, /* C privilegeWithdrawn: the subscriber's information was untrue */
            9, /* D privilegeWithdrawn: the subscriber fails their obligations */
            1, /* E keyCompromise */
            1, /* F keyCompromise: an agency suspects a subordinate's key */
            5, /* G cessationOfOperation: the subscriber agreement ended */
            0, /* H unspecified: the subscriber asks */
            0, /* I unspecified: other cases in law */
        };

        if (reason < 'A' || reason > 'I')
                return -1;
        return map[reason - 'A'];
}

void ra_revocation_body_clear(struct ra_revocation_body *b)
{
        if (b == NULL)
                return;
        json_decref(b->root);
        memset(b, 0, sizeof(*b));
}

/*
 * POST /api/v1/revocations (CPS §3.9):
 *   {"serial": hex string (required; "0x", colons and lower case accepted),
 *    "reason": "A".."I", the case of CPS §3.9.1 (required),
 *    "requester": "subscriber"|"org_representative"|"ca"|"judicial" (required,
 * §3.9.2), "authority": string <= 128 (judicial: required, the authority that
 * orders it), "document_ref": string <= 128 (judicial: required, its document's
 * reference), "note": string <= 1024 (optional)} Which requester may give which
 * reason (checked here): subscriber          A, E, G, H, I org_representative
 * A, E, F, G, H, I (certificate kind checked against the store) ca C, D, E, G,
 * I judicial            B, I
 */
int ra_revocation_parse(const uint8_t *body, size_t len, struct ra_revocation_body *out,
                        struct gmca_error *e)
{
        static const struct key keys[] = {
            {"serial", J_NAME, 64},
            {"reason", J_NAME, 1},
            {"requester", J_NAME, 32},
            {"authority", J_NAME, RA_NAME_CAP},
            {"document_ref", J_NAME, RA_NAME_CAP},
            {"note", J_TEXT, RA_TEXT_CAP},
        };
        static const struct {
                const char *name;
                const char *reasons;
        } requesters[] = {
            {"subscriber", "AEGHI"},
            {"org_representative", "AEFGHI"},
            {"ca", "CDEGI"},
            {"judicial", "BI"},
        };
        const char *serial, *reason;
        size_t i;
        int rc;

        memset(out, 0, sizeof(*out));
        if ((rc = load(body, len, 1, &out->root, e)) != 0 ||
            (rc = check_keys(out->root, keys, sizeof(keys) / sizeof(keys[0]), 0, e)) != 0)
                goto fail;
        rc = GMCA_ERR_INVALID;
        serial = str(out->root, "serial");
        reason = str(out->root, "reason");
        out->requester = str(out->root, "requester");
        out->authority = str(out->root, "authority");
        out->document_ref = str(out->root, "document_ref");
        out->note = str(out->root, "note");
        if (serial == NULL || gmca_serial_normalize(serial, out->serial) != 0) {
                gmca_error_set(e, rc, "serial: required, 1..40 hex digits");
                goto fail;
        }
        if (reason == NULL || strlen(reason) != 1 || gmca_ra_reason_code(reason[0]) < 0) {
                gmca_error_set(e, rc, "reason: required, one of A..I (CPS §3.9.1)");
                goto fail;
        }
        out->reason = reason[0];
        out->reason_code = gmca_ra_reason_code(out->reason);
        for (i = 0; out->requester != NULL && i < sizeof(requesters) / sizeof(requesters[0]); i++)
                if (strcmp(out->requester, requesters[i].name) == 0)
                        break;
        if (out->requester == NULL || i == sizeof(requesters) / sizeof(requesters[0])) {
                gmca_error_set(e, rc,
                               "requester: required, one of subscriber, org_representative, ca, "
                               "judicial (CPS §3.9.2)");
                goto fail;
        }
        if (strchr(requesters[i].reasons, out->reason) == NULL) {
                gmca_error_set(e, GMCA_ERR_POLICY,
                               "CPS §3.9.1/§3.9.2: a %s may not ask for revocation for reason "
                               "%c (allowed: %s)",
                               out->requester, out->reason, requesters[i].reasons);
                rc = GMCA_ERR_POLICY;
                goto fail;
        }
        if (strcmp(out->requester, "judicial") == 0 &&
            (out->authority == NULL || out->document_ref == NULL)) {
                gmca_error_set(e, rc,
                               "authority, document_ref: required for a judicial request "
                               "(CPS §3.9.2)");
                goto fail;
        }
        if (strcmp(out->requester, "judicial") != 0 &&
            (out->authority != NULL || out->document_ref != NULL)) {
                gmca_error_set(e, rc, "authority, document_ref: only for a judicial request");
                goto fail;
        }
        return 0;
fail:
        ra_revocation_body_clear(out);
        return rc;
}
