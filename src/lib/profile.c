/*
 * Certificate profiles: JSON templates in conf/profiles/<name>.json that fix
 * the contents of a kind of certificate, and the check of a request against
 * one. The file is outside input for the CA engine (an operator edits it), so
 * it is read strictly: size and nesting are capped, every key must be known,
 * every value must have the right JSON type, and the rules of GM/T 0015 and
 * the CPS that a profile could break are refused when it is loaded, not when
 * it is first used.
 *
 * Schema (also in conf/profiles/README.md). Keys marked * are required.
 *
 *   "name"               string [a-z0-9_-]{1,63}; must equal the file name
 *                        (without .json) when loaded by gmca_profile_find
 *   "description"        string, at most 255 bytes
 *   "purpose" *          "sign" | "encrypt" | "ca"
 *   "ca"                 boolean, default false (true needs purpose "ca")
 *   "path_len"           integer -1..16, default -1 (none); >= 0 only for CAs
 *   "key_usage" *        non-empty array of distinct names: digitalSignature,
 *                        nonRepudiation, keyEncipherment, dataEncipherment,
 *                        keyAgreement, keyCertSign, cRLSign
 *   "extended_key_usage" array of distinct names: serverAuth, clientAuth,
 *                        codeSigning, emailProtection, OCSPSigning,
 *                        timeStamping (at most GMCA_PROFILE_EKU_MAX)
 *   "validity_days" *    integer, 1..max_validity_days (the default)
 *   "max_validity_days" * integer, 1..36500 (a request may not ask more)
 *   "subject" *          object: C, ST (or S), L, O, OU, CN, E,
 *                        serialNumber -> "required" | "optional" |
 *                        "forbidden"; absent attributes are forbidden;
 *                        C must be "required" (CPS §2.1.2 tables 3, 4)
 *   "extensions"         object: private extension name (gmca_pext_name) ->
 *                        rule; absent ones are forbidden
 *   "san"                object: dns, ip, email -> rule; absent: forbidden
 *   "sm2_id"             string of 1..GMCA_SM2_ID_MAX printable bytes,
 *                        default "1234567812345678" (GM/T 0009)
 *   "ocsp_nocheck"       boolean, default false; needs OCSPSigning
 *   "extended_key_usage_critical" boolean, default false; needs an EKU
 *   "publish"            boolean, default true: certificates of this profile
 *                        go to the LDAP directory (CPS §3.4.2, ldap_pub.h)
 *   "encryption_profile" a "sign" profile's dual pair: the name of the
 *                        "encrypt" profile of the encryption certificate
 *                        issued with it for a KM key pair (km.h)
 *
 * Key usage rules (RFC 5280 §4.2.1.3, §4.2.1.9; GM/T 0015 dual
 * certificates): a CA profile needs keyCertSign and an end-entity profile
 * may not have it; an "encrypt" profile carries only keyEncipherment,
 * dataEncipherment and keyAgreement; a "sign" profile carries none of them.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "profile.h"
#include "util.h"

#define DEPTH_MAX 3     /* the top-level object, then arrays and objects of rules */
#define PATH_LEN_MAX 16 /* a deeper CA hierarchy is not a real profile */
#define DESCRIPTION_MAX 255
#define SHOW_MAX 40 /* bytes of an unknown key or value quoted in an error */

static const struct {
        const char *name;
        unsigned bit;
} kus[] = {
    {"digitalSignature", X509v3_KU_DIGITAL_SIGNATURE},
    {"nonRepudiation", X509v3_KU_NON_REPUDIATION},
    {"keyEncipherment", X509v3_KU_KEY_ENCIPHERMENT},
    {"dataEncipherment", X509v3_KU_DATA_ENCIPHERMENT},
    {"keyAgreement", X509v3_KU_KEY_AGREEMENT},
    {"keyCertSign", X509v3_KU_KEY_CERT_SIGN},
    {"cRLSign", X509v3_KU_CRL_SIGN},
};

static const struct {
        const char *name;
        int nid;
} ekus[] = {
    {"serverAuth", NID_server_auth}, {"clientAuth", NID_client_auth},
    {"codeSigning", NID_code_sign},  {"emailProtection", NID_email_protect},
    {"OCSPSigning", NID_OCSP_sign},  {"timeStamping", NID_time_stamp},
};

/* Profile key and the NID of each DN attribute, in enum gmca_dn_attr order. */
static const struct {
        const char *key;
        int nid;
} dn_attrs[GMCA_DN_COUNT] = {
    [GMCA_DN_C] = {"C", NID_countryName},
    [GMCA_DN_ST] = {"ST", NID_stateOrProvinceName},
    [GMCA_DN_L] = {"L", NID_localityName},
    [GMCA_DN_O] = {"O", NID_organizationName},
    [GMCA_DN_OU] = {"OU", NID_organizationalUnitName},
    [GMCA_DN_CN] = {"CN", NID_commonName},
    [GMCA_DN_E] = {"E", NID_pkcs9_emailAddress},
    [GMCA_DN_SERIAL] = {"serialNumber", NID_serialNumber},
};

static const char *const san_keys[GMCA_SAN_COUNT] = {
    [GMCA_SAN_DNS] = "dns",
    [GMCA_SAN_IP] = "ip",
    [GMCA_SAN_EMAIL] = "email",
};

static const char *const rule_names[] = {
    [GMCA_RULE_FORBIDDEN] = "forbidden",
    [GMCA_RULE_OPTIONAL] = "optional",
    [GMCA_RULE_REQUIRED] = "required",
};

/* Keys with encryption meaning, which GM/T 0015 keeps off signature certificates. */
#define KU_ENCRYPT                                                                                 \
        (X509v3_KU_KEY_ENCIPHERMENT | X509v3_KU_DATA_ENCIPHERMENT | X509v3_KU_KEY_AGREEMENT)

/* Copy outside text into a short printable form for an error message. */
static void show(char *out, size_t cap, const char *s)
{
        size_t n = 0;

        for (; *s != '\0' && n + 4 < cap; s++)
                out[n++] = (*s >= 0x20 && *s < 0x7f) || (*s & 0x80) ? *s : '?';
        if (*s != '\0') {
                out[n++] = '.';
                out[n++] = '.';
                out[n++] = '.';
        }
        out[n] = '\0';
}

/* [a-z0-9_-]{1,63}: also what keeps a profile name from walking out of its directory. */
static int name_ok(const char *s)
{
        size_t n = 0;

        if (s == NULL)
                return 0;
        for (; s[n] != '\0'; n++) {
                char c = s[n];

                if (n >= GMCA_PROFILE_NAME_MAX - 1)
                        return 0;
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                        return 0;
        }
        return n > 0;
}

/*
 * Nesting depth of JSON text, counted outside strings before jansson sees
 * it (jansson's own limit is 2048). Returns 0 when within max.
 */
static int depth_ok(const char *s, size_t len, int max)
{
        int depth = 0, in_str = 0;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = 0;
                } else if (c == '"') {
                        in_str = 1;
                } else if (c == '{' || c == '[') {
                        if (++depth > max)
                                return 0;
                } else if (c == '}' || c == ']') {
                        depth--;
                }
        }
        return 1;
}

static int rule_of(const json_t *v, enum gmca_rule *out)
{
        const char *s = json_string_value(v);

        if (s == NULL)
                return -1;
        for (size_t i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]); i++) {
                if (strcmp(s, rule_names[i]) == 0) {
                        *out = (enum gmca_rule)i;
                        return 0;
                }
        }
        return -1;
}

/* State of one parse: the profile being filled and the name used in errors. */
struct pctx {
        struct gmca_profile *p;
        const char *name;
        struct gmca_error *e;
};

static int bad(struct pctx *c, const char *key, const char *fmt, ...) GMCA_PRINTF(3, 4);

/* Record "profile <name>: <key>: <what>" and return GMCA_ERR_INVALID. */
static int bad(struct pctx *c, const char *key, const char *fmt, ...)
{
        char what[200];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return gmca_error_set(c->e, GMCA_ERR_INVALID, "profile %s: %s: %s", c->name, key, what);
}

static int want_type(struct pctx *c, const char *key, const json_t *v, json_type t,
                     const char *tname)
{
        if (json_typeof(v) != t)
                return bad(c, key, "must be %s", tname);
        return 0;
}

static int get_int(struct pctx *c, const char *key, const json_t *v, long long lo, long long hi,
                   int *out)
{
        json_int_t n;

        if (want_type(c, key, v, JSON_INTEGER, "an integer") != 0)
                return GMCA_ERR_INVALID;
        n = json_integer_value(v);
        if (n < lo || n > hi)
                return bad(c, key, "must be in %lld..%lld", lo, hi);
        *out = (int)n;
        return 0;
}

static int parse_ku(struct pctx *c, const json_t *v)
{
        size_t i;
        json_t *it;
        char shown[SHOW_MAX + 4];

        if (want_type(c, "key_usage", v, JSON_ARRAY, "an array of key usage names") != 0)
                return GMCA_ERR_INVALID;
        if (json_array_size(v) == 0)
                return bad(c, "key_usage", "%s", "must not be empty (GM/T 0015 §7.3)");
        json_array_foreach(v, i, it)
        {
                const char *s = json_string_value(it);
                size_t k;

                if (s == NULL)
                        return bad(c, "key_usage", "%s", "entries must be strings");
                for (k = 0; k < sizeof(kus) / sizeof(kus[0]) && strcmp(s, kus[k].name) != 0; k++)
                        ;
                show(shown, sizeof(shown), s);
                if (k == sizeof(kus) / sizeof(kus[0]))
                        return bad(c, "key_usage", "unknown key usage \"%s\"", shown);
                if (c->p->key_usage & kus[k].bit)
                        return bad(c, "key_usage", "\"%s\" listed twice", shown);
                c->p->key_usage |= kus[k].bit;
        }
        return 0;
}

static int parse_eku(struct pctx *c, const json_t *v)
{
        size_t i;
        json_t *it;
        char shown[SHOW_MAX + 4];

        if (want_type(c, "extended_key_usage", v, JSON_ARRAY, "an array of purpose names") != 0)
                return GMCA_ERR_INVALID;
        json_array_foreach(v, i, it)
        {
                const char *s = json_string_value(it);
                size_t k;

                if (s == NULL)
                        return bad(c, "extended_key_usage", "%s", "entries must be strings");
                for (k = 0; k < sizeof(ekus) / sizeof(ekus[0]) && strcmp(s, ekus[k].name) != 0; k++)
                        ;
                show(shown, sizeof(shown), s);
                if (k == sizeof(ekus) / sizeof(ekus[0]))
                        return bad(c, "extended_key_usage", "unknown purpose \"%s\"", shown);
                for (size_t j = 0; j < c->p->neku; j++)
                        if (c->p->eku[j] == ekus[k].nid)
                                return bad(c, "extended_key_usage", "\"%s\" listed twice", shown);
                if (c->p->neku == GMCA_PROFILE_EKU_MAX)
                        return bad(c, "extended_key_usage", "%s", "too many purposes");
                c->p->eku[c->p->neku++] = ekus[k].nid;
        }
        return 0;
}

/* One of the rule objects: subject, extensions, san. */
static int parse_rules(struct pctx *c, const char *key, const json_t *v)
{
        const char *k;
        json_t *r;
        char shown[SHOW_MAX + 4], where[SHOW_MAX + 32];
        int seen_st = 0;

        if (want_type(c, key, v, JSON_OBJECT, "an object of rules") != 0)
                return GMCA_ERR_INVALID;
        json_object_foreach((json_t *)v, k, r)
        {
                enum gmca_rule rule;
                enum gmca_rule *slot = NULL;

                show(shown, sizeof(shown), k);
                snprintf(where, sizeof(where), "%s.%s", key, shown);
                if (strcmp(key, "subject") == 0) {
                        /* "S" is the spelling of CPS table 3/4; "ST" that of RFC 4514. */
                        const char *attr = strcmp(k, "S") == 0 ? "ST" : k;

                        for (int i = 0; i < GMCA_DN_COUNT && slot == NULL; i++)
                                if (strcmp(attr, dn_attrs[i].key) == 0)
                                        slot = &c->p->dn[i];
                        if (slot == &c->p->dn[GMCA_DN_ST] && seen_st++)
                                return bad(c, where, "%s", "ST and S are the same attribute");
                        if (slot == NULL)
                                return bad(c, key, "unknown DN attribute \"%s\"", shown);
                } else if (strcmp(key, "extensions") == 0) {
                        int x = gmca_pext_from_name(k);

                        if (x < 0)
                                return bad(c, key, "unknown private extension \"%s\"", shown);
                        slot = &c->p->pext[x];
                } else {
                        for (int i = 0; i < GMCA_SAN_COUNT && slot == NULL; i++)
                                if (strcmp(k, san_keys[i]) == 0)
                                        slot = &c->p->san[i];
                        if (slot == NULL)
                                return bad(c, key, "unknown subjectAltName kind \"%s\"", shown);
                }
                if (rule_of(r, &rule) != 0)
                        return bad(c, where, "%s",
                                   "must be \"required\", \"optional\" or \"forbidden\"");
                *slot = rule;
        }
        if (strcmp(key, "subject") == 0 && c->p->dn[GMCA_DN_C] != GMCA_RULE_REQUIRED)
                return bad(c, "subject.C", "%s", "must be required (CPS §2.1.2 tables 3, 4: C=CN)");
        return 0;
}

static int parse_sm2_id(struct pctx *c, const json_t *v)
{
        const char *s;
        size_t n;

        if (want_type(c, "sm2_id", v, JSON_STRING, "a string") != 0)
                return GMCA_ERR_INVALID;
        s = json_string_value(v);
        n = json_string_length(v);
        if (n == 0)
                return bad(c, "sm2_id", "%s",
                           "must not be empty (GM/T 0009 uses 1234567812345678)");
        if (n > GMCA_SM2_ID_MAX)
                return bad(c, "sm2_id", "longer than %d bytes", GMCA_SM2_ID_MAX);
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return bad(c, "sm2_id", "%s", "must be printable ASCII");
        memcpy(c->p->sm2_id, s, n + 1);
        return 0;
}

/* Rules between keys, checked once all keys are read. */
static int cross_check(struct pctx *c)
{
        const struct gmca_profile *p = c->p;

        if (p->max_validity_days < p->validity_days)
                return bad(c, "validity_days", "%s", "exceeds max_validity_days");
        if (p->ca && p->purpose != GMCA_PURPOSE_CA)
                return bad(c, "ca", "%s", "a CA profile must have purpose \"ca\"");
        if (!p->ca && p->path_len != -1)
                return bad(c, "path_len", "%s",
                           "only CA profiles have a pathLenConstraint (RFC 5280 §4.2.1.9)");
        if (p->ca && (p->key_usage & X509v3_KU_KEY_CERT_SIGN) == 0)
                return bad(c, "key_usage", "%s",
                           "a CA profile needs keyCertSign (RFC 5280 §4.2.1.3)");
        if (!p->ca && (p->key_usage & X509v3_KU_KEY_CERT_SIGN) != 0)
                return bad(c, "key_usage", "%s",
                           "keyCertSign only in CA profiles (RFC 5280 §4.2.1.9)");
        if (p->purpose == GMCA_PURPOSE_ENCRYPT && (p->key_usage & ~(unsigned)KU_ENCRYPT) != 0)
                return bad(c, "key_usage", "%s",
                           "an encryption certificate carries only keyEncipherment, "
                           "dataEncipherment, keyAgreement (GM/T 0015 dual certificates)");
        if (p->purpose == GMCA_PURPOSE_SIGN && (p->key_usage & KU_ENCRYPT) != 0)
                return bad(c, "key_usage", "%s",
                           "a signature certificate may not carry keyEncipherment, "
                           "dataEncipherment or keyAgreement (GM/T 0015 dual certificates)");
        if (p->encryption_profile[0] != '\0' &&
            (p->purpose != GMCA_PURPOSE_SIGN || strcmp(p->encryption_profile, p->name) == 0))
                return bad(c, "encryption_profile", "%s",
                           "only a signature profile names its encryption pair, and not itself");
        if (p->eku_critical && p->neku == 0)
                return bad(c, "extended_key_usage_critical", "%s",
                           "needs extended_key_usage (RFC 5280 §4.2.1.12)");
        if (p->ocsp_nocheck) {
                size_t i;

                for (i = 0; i < p->neku && p->eku[i] != NID_OCSP_sign; i++)
                        ;
                if (i == p->neku)
                        return bad(c, "ocsp_nocheck", "%s",
                                   "only for OCSP responders (extended_key_usage OCSPSigning, "
                                   "RFC 6960 §4.2.2.2.1)");
        }
        return 0;
}

static int parse_key(struct pctx *c, const char *k, const json_t *v, unsigned *seen)
{
        struct gmca_profile *p = c->p;
        char shown[SHOW_MAX + 4];

        if (strcmp(k, "name") == 0)
                return 0; /* read before the other keys */
        if (strcmp(k, "description") == 0) {
                if (want_type(c, k, v, JSON_STRING, "a string") != 0)
                        return GMCA_ERR_INVALID;
                if (json_string_length(v) > DESCRIPTION_MAX)
                        return bad(c, k, "longer than %d bytes", DESCRIPTION_MAX);
                memcpy(p->description, json_string_value(v), json_string_length(v) + 1);
                return 0;
        }
        if (strcmp(k, "purpose") == 0) {
                const char *s = json_string_value(v);

                *seen |= 1u;
                if (s != NULL && strcmp(s, "sign") == 0)
                        p->purpose = GMCA_PURPOSE_SIGN;
                else if (s != NULL && strcmp(s, "encrypt") == 0)
                        p->purpose = GMCA_PURPOSE_ENCRYPT;
                else if (s != NULL && strcmp(s, "ca") == 0)
                        p->purpose = GMCA_PURPOSE_CA;
                else
                        return bad(c, k, "%s", "must be \"sign\", \"encrypt\" or \"ca\"");
                return 0;
        }
        if (strcmp(k, "ca") == 0 || strcmp(k, "ocsp_nocheck") == 0 ||
            strcmp(k, "extended_key_usage_critical") == 0 || strcmp(k, "publish") == 0) {
                if (!json_is_boolean(v))
                        return bad(c, k, "%s", "must be true or false");
                *(k[0] == 'c'   ? &p->ca
                  : k[0] == 'o' ? &p->ocsp_nocheck
                  : k[0] == 'p' ? &p->publish
                                : &p->eku_critical) = json_is_true(v);
                return 0;
        }
        if (strcmp(k, "path_len") == 0)
                return get_int(c, k, v, -1, PATH_LEN_MAX, &p->path_len);
        if (strcmp(k, "key_usage") == 0) {
                *seen |= 2u;
                return parse_ku(c, v);
        }
        if (strcmp(k, "extended_key_usage") == 0)
                return parse_eku(c, v);
        if (strcmp(k, "validity_days") == 0) {
                *seen |= 4u;
                return get_int(c, k, v, 1, GMCA_PROFILE_DAYS_MAX, &p->validity_days);
        }
        if (strcmp(k, "max_validity_days") == 0) {
                *seen |= 8u;
                return get_int(c, k, v, 1, GMCA_PROFILE_DAYS_MAX, &p->max_validity_days);
        }
        if (strcmp(k, "subject") == 0) {
                *seen |= 16u;
                return parse_rules(c, k, v);
        }
        if (strcmp(k, "extensions") == 0 || strcmp(k, "san") == 0)
                return parse_rules(c, k, v);
        if (strcmp(k, "sm2_id") == 0)
                return parse_sm2_id(c, v);
        if (strcmp(k, "encryption_profile") == 0) {
                const char *s = json_string_value(v);

                if (s == NULL || !name_ok(s))
                        return bad(c, k, "%s", "must be a profile name");
                gmca_strlcpy(p->encryption_profile, s, sizeof(p->encryption_profile));
                return 0;
        }
        show(shown, sizeof(shown), k);
        return bad(c, "schema", "unknown key \"%s\"", shown);
}

/*
 * The parse behind the three loaders. want: the name the profile must have
 * (gmca_profile_find, gmca_profile_parse), or NULL; fallback: the name used
 * when the text has none (the file name for gmca_profile_load), or NULL.
 */
static struct gmca_profile *parse(const char *json, size_t len, const char *want,
                                  const char *fallback, struct gmca_error *e)
{
        static const char *const required[] = {"purpose", "key_usage", "validity_days",
                                               "max_validity_days", "subject"};
        struct gmca_profile *p = NULL, *ret = NULL;
        struct pctx c = {NULL, "?", e};
        json_t *root = NULL, *jn, *v;
        json_error_t jerr;
        const char *k, *name;
        unsigned seen = 0;
        char shown[SHOW_MAX + 4];

        if (json == NULL || len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "profile: empty input");
                goto out;
        }
        if (len > GMCA_PROFILE_FILE_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "profile: larger than %d bytes",
                               GMCA_PROFILE_FILE_MAX);
                goto out;
        }
        if (!depth_ok(json, len, DEPTH_MAX)) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "profile: JSON nested deeper than %d levels",
                               DEPTH_MAX);
                goto out;
        }
        if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "profile: JSON line %d: %s", jerr.line,
                               jerr.text);
                goto out;
        }
        if (!json_is_object(root)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "profile: top level must be an object");
                goto out;
        }
        if ((jn = json_object_get(root, "name")) != NULL) {
                if ((name = json_string_value(jn)) == NULL) {
                        gmca_error_set(e, GMCA_ERR_INVALID, "profile: name: must be a string");
                        goto out;
                }
        } else if ((name = want != NULL ? want : fallback) == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "profile: name: missing");
                goto out;
        }
        if (!name_ok(name)) {
                show(shown, sizeof(shown), name);
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "profile: name: \"%s\" must match [a-z0-9_-]{1,63}", shown);
                goto out;
        }
        if (want != NULL && strcmp(name, want) != 0) {
                show(shown, sizeof(shown), want);
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "profile %s: name: does not match the file name \"%s\"", name,
                               shown);
                goto out;
        }
        if ((p = calloc(1, sizeof(*p))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "profile: out of memory");
                goto out;
        }
        gmca_strlcpy(p->name, name, sizeof(p->name));
        p->path_len = -1;
        p->publish = 1;
        gmca_strlcpy(p->sm2_id, GMCA_SM2_DEFAULT_ID, sizeof(p->sm2_id));
        /* calloc left every DN attribute, extension and SAN kind forbidden. */
        c.p = p;
        c.name = p->name;
        json_object_foreach(root, k, v)
        {
                if (parse_key(&c, k, v, &seen) != 0)
                        goto out;
        }
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
                if ((seen & (1u << i)) == 0) {
                        bad(&c, required[i], "%s", "missing");
                        goto out;
                }
        }
        if (cross_check(&c) != 0)
                goto out;
        ret = p;
        p = NULL;
out:
        json_decref(root);
        free(p);
        return ret;
}

struct gmca_profile *gmca_profile_parse(const char *json, size_t len, const char *name,
                                        struct gmca_error *e)
{
        return parse(json, len, name, NULL, e);
}

struct gmca_profile *gmca_profile_load(const char *path, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        struct gmca_profile *p = NULL;
        char stem[GMCA_PROFILE_NAME_MAX];
        const char *base, *dot;

        if (path == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "profile: no path");
                return NULL;
        }
        if (gmca_read_file(path, GMCA_PROFILE_FILE_MAX, &buf, &len, e) != 0)
                return NULL;
        /* The file name stands in for a missing "name" when it is a valid one. */
        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        dot = strrchr(base, '.');
        stem[0] = '\0';
        if (dot != NULL && strcmp(dot, ".json") == 0 && (size_t)(dot - base) < sizeof(stem)) {
                memcpy(stem, base, (size_t)(dot - base));
                stem[dot - base] = '\0';
        }
        p = parse((const char *)buf, len, NULL, name_ok(stem) ? stem : NULL, e);
        free(buf);
        return p;
}

struct gmca_profile *gmca_profile_find(const char *dir, const char *name, struct gmca_error *e)
{
        char path[4096], shown[SHOW_MAX + 4];
        struct gmca_error tmp;
        uint8_t *buf = NULL;
        size_t len = 0;
        struct gmca_profile *p;

        if (!name_ok(name)) {
                show(shown, sizeof(shown), name != NULL ? name : "");
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "profile name \"%s\" must match [a-z0-9_-]{1,63}", shown);
                return NULL;
        }
        if (dir == NULL ||
            (size_t)snprintf(path, sizeof(path), "%s/%s.json", dir, name) >= sizeof(path)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "profile %s: directory path too long", name);
                return NULL;
        }
        gmca_error_clear(&tmp);
        if (gmca_read_file(path, GMCA_PROFILE_FILE_MAX, &buf, &len, &tmp) != 0) {
                if (tmp.code == GMCA_ERR_NOTFOUND)
                        gmca_error_set(e, GMCA_ERR_NOTFOUND, "profile '%s' not found in %s", name,
                                       dir);
                else
                        gmca_error_set(e, tmp.code, "profile %s: %s", name, tmp.msg);
                return NULL;
        }
        p = parse((const char *)buf, len, name, NULL, e);
        free(buf);
        return p;
}

void gmca_profile_free(struct gmca_profile *p)
{
        free(p);
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int gmca_profile_list(const char *dir, char ***names, size_t *count, struct gmca_error *e)
{
        DIR *d = NULL;
        struct dirent *de;
        char **v = NULL;
        size_t n = 0;
        int rc = GMCA_ERR_INTERNAL;

        if (dir == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "profiles: no directory");
        if ((d = opendir(dir)) == NULL)
                return gmca_error_set(e, errno == ENOENT ? GMCA_ERR_NOTFOUND : GMCA_ERR_IO,
                                      "profiles: %s: %s", dir, strerror(errno));
        while ((de = readdir(d)) != NULL) {
                size_t l = strlen(de->d_name);
                char stem[GMCA_PROFILE_NAME_MAX];
                char **nv;

                /* Only files gmca_profile_find could open: <valid name>.json. */
                if (l <= 5 || strcmp(de->d_name + l - 5, ".json") != 0 || l - 5 >= sizeof(stem))
                        continue;
                memcpy(stem, de->d_name, l - 5);
                stem[l - 5] = '\0';
                if (!name_ok(stem))
                        continue;
                if (n == GMCA_PROFILE_LIST_MAX) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "profiles: %s: more than %d", dir,
                                            GMCA_PROFILE_LIST_MAX);
                        goto out;
                }
                if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "profiles: out of memory");
                        goto out;
                }
                v = nv;
                if ((v[n] = strdup(stem)) == NULL) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "profiles: out of memory");
                        goto out;
                }
                n++;
        }
        if (n > 0)
                qsort(v, n, sizeof(*v), cmp_names);
        *names = v;
        *count = n;
        v = NULL;
        n = 0;
        rc = 0;
out:
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
        closedir(d);
        return rc;
}

/* ---- checking a request ---- */

static int refuse(const struct gmca_profile *p, struct gmca_error *e, const char *fmt, ...)
    GMCA_PRINTF(3, 4);

/* Record "profile <name>: <rule>" and return GMCA_ERR_POLICY. */
static int refuse(const struct gmca_profile *p, struct gmca_error *e, const char *fmt, ...)
{
        char what[300];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return gmca_error_set(e, GMCA_ERR_POLICY, "profile %s: %s", p->name, what);
}

static int check_subject(const struct gmca_profile *p, const X509_NAME *subject,
                         struct gmca_error *e)
{
        /* CPS §2.1.2: table 3 names CA subjects, table 4 end-entity subjects. */
        const char *table = p->ca ? "CPS §2.1.2 table 3" : "CPS §2.1.2 table 4";
        int count[GMCA_DN_COUNT] = {0};
        int n = subject != NULL ? X509_NAME_entry_count(subject) : 0;

        for (int i = 0; i < n; i++) {
                const X509_NAME_ENTRY *ent = X509_NAME_get_entry(subject, i);
                const ASN1_STRING *val = X509_NAME_ENTRY_get_data(ent);
                int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ent));
                int a;

                for (a = 0; a < GMCA_DN_COUNT && dn_attrs[a].nid != nid; a++)
                        ;
                if (a == GMCA_DN_COUNT) {
                        char oid[80];

                        if (nid != NID_undef)
                                gmca_strlcpy(oid, OBJ_nid2sn(nid), sizeof(oid));
                        else if (OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(ent),
                                             1) <= 0)
                                gmca_strlcpy(oid, "?", sizeof(oid));
                        return refuse(p, e, "subject: attribute %s is not allowed (%s)", oid,
                                      table);
                }
                if (++count[a] > 1 && a != GMCA_DN_OU)
                        return refuse(p, e, "subject: more than one %s (%s)", dn_attrs[a].key,
                                      table);
                if (a == GMCA_DN_C && (val == NULL || ASN1_STRING_length(val) != 2 ||
                                       memcmp(ASN1_STRING_get0_data(val), "CN", 2) != 0))
                        return refuse(p, e, "subject: C must be CN (%s)", table);
        }
        for (int a = 0; a < GMCA_DN_COUNT; a++) {
                if (p->dn[a] == GMCA_RULE_REQUIRED && count[a] == 0)
                        return refuse(p, e, "subject: %s is required (%s)", dn_attrs[a].key, table);
                if (p->dn[a] == GMCA_RULE_FORBIDDEN && count[a] > 0)
                        return refuse(p, e, "subject: %s is not allowed in this profile",
                                      dn_attrs[a].key);
        }
        return 0;
}

static int check_info(const struct gmca_profile *p, const struct gmca_subject_info *info,
                      struct gmca_error *e)
{
        for (int x = 0; x < GMCA_PEXT_COUNT; x++) {
                int present = info != NULL && info->pext[x] != NULL;

                if (p->pext[x] == GMCA_RULE_REQUIRED && !present)
                        return refuse(p, e,
                                      "extension %s is required (GM/T 0015 private "
                                      "extension, CPS §2.1.3)",
                                      gmca_pext_name((enum gmca_pext)x));
                if (p->pext[x] == GMCA_RULE_FORBIDDEN && present)
                        return refuse(p, e, "extension %s is not allowed in this profile",
                                      gmca_pext_name((enum gmca_pext)x));
        }
        for (int k = 0; k < GMCA_SAN_COUNT; k++) {
                size_t n = 0;

                if (info != NULL)
                        n = k == GMCA_SAN_DNS  ? info->ndns
                            : k == GMCA_SAN_IP ? info->nip
                                               : info->nemail;
                if (p->san[k] == GMCA_RULE_REQUIRED && n == 0)
                        return refuse(p, e, "subjectAltName %s is required", san_keys[k]);
                if (p->san[k] == GMCA_RULE_FORBIDDEN && n > 0)
                        return refuse(p, e, "subjectAltName %s is not allowed in this profile",
                                      san_keys[k]);
        }
        return 0;
}

int gmca_profile_check(const struct gmca_profile *p, const X509_NAME *subject,
                       const struct gmca_subject_info *info, int days, struct gmca_error *e)
{
        int rc;

        if (p == NULL || subject == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "profile check: no profile or subject");
        if (days < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "profile %s: validity: %d days is not a positive number",
                                      p->name, days);
        if (days > p->max_validity_days)
                return refuse(p, e, "validity: %d days exceeds the maximum of %d days", days,
                              p->max_validity_days);
        if ((rc = check_subject(p, subject, e)) != 0)
                return rc;
        return check_info(p, info, e);
}
