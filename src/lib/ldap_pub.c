/*
 * The LDAP directory channel (ldap_pub.h): each event of the change feed
 * turned into the directory state the store says now, with synchronous
 * libldap calls on one connection, opened lazily and dropped on any
 * failure so the next attempt (after the pump's backoff) starts afresh.
 * Entries are found by trying the change first and creating the missing
 * path only when the server says there is no such object, so the common
 * case is one round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ldap_pub.h"
#include "profile.h"
#include "store_internal.h"
#include "util.h"

#define RDN_MAX 16    /* RDNs of a subject */
#define AVA_MAX 4     /* values of one RDN */
#define VALUE_MAX 256 /* bytes of one RDN value (UTF-8) */

struct gmca_ldap_pub {
        char uri[512];
        char base[GMCA_LDAP_DN_MAX];
        char bind_dn[GMCA_LDAP_DN_MAX];
        char *password; /* secret; NULL: anonymous */
        size_t password_len;
        char dir[1024];
        int timeout;
        LDAP *ld; /* NULL: not connected */
};

/* One RDN of an entry: its attribute types and (unescaped) values. */
struct rdn {
        const char *type[AVA_MAX];
        char value[AVA_MAX][VALUE_MAX];
        size_t n;
};

/* An entry to write: its RDNs below the base, most specific first, and each level's DN. */
struct path {
        struct rdn rdn[RDN_MAX];
        size_t n;
        char dn[GMCA_LDAP_DN_MAX];
        size_t off[RDN_MAX]; /* dn + off[i]: the DN of the entry named by rdn[i] */
};

static const char SQL_NO_PUBLISH[] = "SELECT COUNT(*) FROM applications"
                                     " WHERE issued_serial = ? AND publish_directory = 0";

struct gmca_ldap_pub *gmca_ldap_pub_new(const struct gmca_ldap_pub_config *cfg,
                                        struct gmca_error *e)
{
        struct gmca_ldap_pub *lp;
        LDAPDN dn = NULL;

        if (cfg->uri == NULL || ldap_is_ldap_url(cfg->uri) + ldap_is_ldaps_url(cfg->uri) +
                                        ldap_is_ldapi_url(cfg->uri) ==
                                    0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "LDAP: '%s' is not an ldap, ldaps or ldapi URI",
                               cfg->uri != NULL ? cfg->uri : "");
                return NULL;
        }
        if (cfg->base == NULL || cfg->base[0] == '\0' ||
            ldap_str2dn(cfg->base, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
                gmca_error_set(e, GMCA_ERR_INVALID, "LDAP: base DN '%s': not an RFC 4514 DN",
                               cfg->base != NULL ? cfg->base : "");
                return NULL;
        }
        ldap_dnfree(dn);
        if ((lp = calloc(1, sizeof(*lp))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (gmca_strlcpy(lp->uri, cfg->uri, sizeof(lp->uri)) >= sizeof(lp->uri) ||
            gmca_strlcpy(lp->base, cfg->base, sizeof(lp->base)) >= sizeof(lp->base) / 2 ||
            gmca_strlcpy(lp->bind_dn, cfg->bind_dn ? cfg->bind_dn : "", sizeof(lp->bind_dn)) >=
                sizeof(lp->bind_dn) ||
            gmca_strlcpy(lp->dir, cfg->dir ? cfg->dir : ".", sizeof(lp->dir)) >= sizeof(lp->dir)) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "LDAP: URI, base DN, bind DN or directory "
                               "too long");
                gmca_ldap_pub_free(lp);
                return NULL;
        }
        if (cfg->password != NULL) {
                if ((lp->password = OPENSSL_malloc(cfg->password_len + 1)) == NULL) {
                        gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        gmca_ldap_pub_free(lp);
                        return NULL;
                }
                memcpy(lp->password, cfg->password, cfg->password_len);
                lp->password[cfg->password_len] = '\0';
                lp->password_len = cfg->password_len;
        }
        lp->timeout = cfg->timeout > 0 ? cfg->timeout : GMCA_LDAP_TIMEOUT_DEFAULT;
        return lp;
}

static void disconnect(struct gmca_ldap_pub *lp)
{
        if (lp->ld != NULL)
                ldap_unbind_ext_s(lp->ld, NULL, NULL);
        lp->ld = NULL;
}

void gmca_ldap_pub_free(struct gmca_ldap_pub *lp)
{
        if (lp == NULL)
                return;
        disconnect(lp);
        OPENSSL_clear_free(lp->password, lp->password_len + 1);
        free(lp);
}

/*
 * Why rc failed, as gmca's code: the entry itself is wrong for the server's
 * schema (refused for good), or anything else (retry later, reconnecting).
 */
static int ldap_fail(struct gmca_ldap_pub *lp, int rc, const char *what, const char *dn,
                     struct gmca_error *e)
{
        int code = GMCA_ERR_IO;

        switch (rc) {
        case LDAP_INVALID_DN_SYNTAX:
        case LDAP_NAMING_VIOLATION:
        case LDAP_OBJECT_CLASS_VIOLATION:
        case LDAP_UNDEFINED_TYPE:
        case LDAP_INVALID_SYNTAX:
        case LDAP_CONSTRAINT_VIOLATION:
                code = GMCA_ERR_POLICY;
                break;
        default:
                disconnect(lp);
        }
        return gmca_error_set(e, code, "LDAP %s %s: %s", what, dn, ldap_err2string(rc));
}

static int connect_bind(struct gmca_ldap_pub *lp, struct gmca_error *e)
{
        struct timeval tv = {lp->timeout, 0};
        struct berval cred = {0, NULL};
        int v3 = LDAP_VERSION3, rc;

        if (lp->ld != NULL)
                return 0;
        if ((rc = ldap_initialize(&lp->ld, lp->uri)) != LDAP_SUCCESS) {
                lp->ld = NULL;
                return gmca_error_set(e, GMCA_ERR_IO, "LDAP %s: %s", lp->uri, ldap_err2string(rc));
        }
        if (ldap_set_option(lp->ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
            ldap_set_option(lp->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
            ldap_set_option(lp->ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS ||
            ldap_set_option(lp->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS) {
                disconnect(lp);
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "LDAP %s: cannot set options", lp->uri);
        }
        if (lp->password != NULL) {
                cred.bv_val = lp->password;
                cred.bv_len = lp->password_len;
        }
        rc = ldap_sasl_bind_s(lp->ld, lp->bind_dn[0] != '\0' ? lp->bind_dn : NULL, LDAP_SASL_SIMPLE,
                              &cred, NULL, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
                disconnect(lp);
                return gmca_error_set(e, GMCA_ERR_IO, "LDAP bind to %s as '%s': %s", lp->uri,
                                      lp->bind_dn, ldap_err2string(rc));
        }
        return 0;
}

/* ---- names ---- */

/* The LDAP name of an attribute of a subject (RFC 4519 short names), or NULL. */
static const char *attr_name(int nid)
{
        switch (nid) {
        case NID_countryName:
                return "c";
        case NID_stateOrProvinceName:
                return "st";
        case NID_localityName:
                return "l";
        case NID_organizationName:
                return "o";
        case NID_organizationalUnitName:
                return "ou";
        case NID_commonName:
                return "cn";
        case NID_domainComponent:
                return "dc";
        case NID_serialNumber:
                return "serialNumber";
        case NID_pkcs9_emailAddress:
                return "email";
        case NID_title:
                return "title";
        case NID_givenName:
                return "givenName";
        case NID_surname:
                return "sn";
        }
        return NULL;
}

/* Append value to out at *at escaped per RFC 4514 §2.4. */
static int escape(const char *v, char *out, size_t len, size_t *at)
{
        size_t n = strlen(v);

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)v[i];
                int esc = strchr("\"+,;<>\\=", c) != NULL || (i == 0 && (c == ' ' || c == '#')) ||
                          (i == n - 1 && c == ' ');

                if (c < 0x20 || c == 0x7f) {
                        if (*at + 3 >= len)
                                return -1;
                        snprintf(out + *at, 4, "\\%02x", c);
                        *at += 3;
                        continue;
                }
                if (*at + 2 >= len)
                        return -1;
                if (esc)
                        out[(*at)++] = '\\';
                out[(*at)++] = (char)c;
        }
        out[*at] = '\0';
        return 0;
}

/* Write p->dn from p->rdn and base, recording where each level starts. */
static int path_format(struct path *p, const char *base, struct gmca_error *e)
{
        size_t at = 0;

        for (size_t i = 0; i < p->n; i++) {
                p->off[i] = at;
                for (size_t j = 0; j < p->rdn[i].n; j++) {
                        size_t tl = strlen(p->rdn[i].type[j]);

                        if (at + tl + 3 >= sizeof(p->dn))
                                goto long_dn;
                        if (j > 0)
                                p->dn[at++] = '+';
                        memcpy(p->dn + at, p->rdn[i].type[j], tl);
                        at += tl;
                        p->dn[at++] = '=';
                        if (escape(p->rdn[i].value[j], p->dn, sizeof(p->dn), &at) != 0)
                                goto long_dn;
                }
                if (at + 2 >= sizeof(p->dn))
                        goto long_dn;
                p->dn[at++] = ',';
        }
        if (at + strlen(base) + 1 > sizeof(p->dn))
                goto long_dn;
        memcpy(p->dn + at, base, strlen(base) + 1);
        return 0;
long_dn:
        return gmca_error_set(e, GMCA_ERR_INVALID, "LDAP: DN longer than %d bytes",
                              GMCA_LDAP_DN_MAX - 1);
}

/* Add one value of an X509_NAME entry to rdn. */
static int rdn_add(struct rdn *r, const X509_NAME_ENTRY *ne, struct gmca_error *e)
{
        const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(ne);
        unsigned char *utf8 = NULL;
        const char *type = attr_name(OBJ_obj2nid(obj));
        int n;

        if (type == NULL) {
                char oid[80];

                OBJ_obj2txt(oid, sizeof(oid), obj, 1);
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "LDAP: subject attribute %s has no directory name", oid);
        }
        if (r->n >= AVA_MAX)
                return gmca_error_set(e, GMCA_ERR_POLICY, "LDAP: more than %d values in an RDN",
                                      AVA_MAX);
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(ne));
        if (n < 0 || (size_t)n >= VALUE_MAX || memchr(utf8, '\0', (size_t)n) != NULL) {
                OPENSSL_free(utf8);
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_POLICY, "LDAP: subject %s value unusable", type);
        }
        memcpy(r->value[r->n], utf8, (size_t)n);
        r->value[r->n][n] = '\0';
        r->type[r->n++] = type;
        OPENSSL_free(utf8);
        return 0;
}

/* The path of subject's entry under base (RDNs most specific first). */
static int path_subject(const X509_NAME *name, const char *base, struct path *p,
                        struct gmca_error *e)
{
        int count = X509_NAME_entry_count(name), last_set = -1, rc;

        memset(p, 0, sizeof(*p));
        if (count <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "LDAP: empty subject");
        /* X509_NAME lists the most significant RDN first: walk it backwards. */
        for (int i = count - 1; i >= 0; i--) {
                const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, i);
                int set = X509_NAME_ENTRY_set(ne);

                if (set != last_set) {
                        if (p->n >= RDN_MAX)
                                return gmca_error_set(e, GMCA_ERR_POLICY, "LDAP: more than %d RDNs",
                                                      RDN_MAX);
                        p->n++;
                        last_set = set;
                }
                if ((rc = rdn_add(&p->rdn[p->n - 1], ne, e)) != 0)
                        return rc;
        }
        return path_format(p, base, e);
}

int gmca_ldap_subject_dn(const X509_NAME *subject, const char *base, char *out, size_t len,
                         struct gmca_error *e)
{
        struct path *p;
        int rc;

        if ((p = malloc(sizeof(*p))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if ((rc = path_subject(subject, base, p, e)) == 0 && gmca_strlcpy(out, p->dn, len) >= len)
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "LDAP: DN longer than %zu bytes", len - 1);
        free(p);
        return rc;
}

/* The CA's entry: cn=<CA's CN>,<base>. */
static int path_ca(const X509_NAME *name, const char *base, struct path *p, struct gmca_error *e)
{
        int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        int rc;

        memset(p, 0, sizeof(*p));
        if (i < 0)
                return gmca_error_set(e, GMCA_ERR_POLICY, "LDAP: a CA subject without CN");
        p->n = 1;
        if ((rc = rdn_add(&p->rdn[0], X509_NAME_get_entry(name, i), e)) != 0)
                return rc;
        return path_format(p, base, e);
}

/* ---- entries ---- */

/* The structural class of an entry named by type (RFC 4519 §3), or NULL. */
static const char *class_of(const char *type, int leaf, const char *const *leaf_classes)
{
        static const struct {
                const char *type, *cls;
        } t[] = {
            {"c", "country"},
            {"st", "locality"},
            {"l", "locality"},
            {"o", "organization"},
            {"ou", "organizationalUnit"},
            {"dc", "domain"},
            {"cn", "organizationalRole"},
        };

        if (leaf && leaf_classes != NULL && strcmp(leaf_classes[0], "pkiCA") == 0)
                return "cRLDistributionPoint"; /* a CA's entry (RFC 4523) */
        if (leaf && strcmp(type, "cn") == 0)
                return "inetOrgPerson";
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                if (strcmp(type, t[i].type) == 0)
                        return t[i].cls;
        return NULL;
}

/*
 * Add the entry of one RDN at dn with object classes extra (NULL-ended)
 * besides its structural one; an entry there already is fine.
 */
static int entry_add(struct gmca_ldap_pub *lp, const char *dn, const struct rdn *r, int leaf,
                     const char *const *extra, struct gmca_error *e)
{
        const char *cls = class_of(r->type[0], leaf, extra);
        char *oc[8], *vals[AVA_MAX][2], *sn[2];
        LDAPMod mods[AVA_MAX + 2], *list[AVA_MAX + 3];
        size_t n = 0, k = 0;
        int rc;

        if (cls == NULL)
                return gmca_error_set(e, GMCA_ERR_POLICY, "LDAP %s: no object class for %s=", dn,
                                      r->type[0]);
        oc[k++] = (char *)cls;
        for (size_t i = 0; extra != NULL && extra[i] != NULL && k < 6; i++)
                oc[k++] = (char *)extra[i];
        if (r->n > 1)
                oc[k++] = "extensibleObject";
        oc[k] = NULL;
        mods[n++] = (LDAPMod){.mod_op = LDAP_MOD_ADD, .mod_type = "objectClass", .mod_values = oc};
        for (size_t i = 0; i < r->n; i++) {
                vals[i][0] = (char *)r->value[i];
                vals[i][1] = NULL;
                mods[n++] = (LDAPMod){LDAP_MOD_ADD, (char *)r->type[i], {vals[i]}};
        }
        if (strcmp(cls, "inetOrgPerson") == 0) { /* person needs a surname: the name given */
                sn[0] = (char *)r->value[0];
                sn[1] = NULL;
                mods[n++] = (LDAPMod){LDAP_MOD_ADD, "sn", {sn}};
        }
        for (size_t i = 0; i < n; i++)
                list[i] = &mods[i];
        list[n] = NULL;
        rc = ldap_add_ext_s(lp->ld, dn, list, NULL, NULL);
        if (rc != LDAP_SUCCESS && rc != LDAP_ALREADY_EXISTS)
                return ldap_fail(lp, rc, "add", dn, e);
        return 0;
}

/* The base entry, if the server holds it as its suffix and it is missing. */
static int base_add(struct gmca_ldap_pub *lp, struct gmca_error *e)
{
        LDAPDN dn = NULL;
        struct rdn r = {0};
        int rc;

        if (ldap_str2dn(lp->base, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || dn == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "LDAP: base DN '%s'", lp->base);
        for (size_t i = 0; dn[0][i] != NULL && r.n < AVA_MAX; i++) {
                const LDAPAVA *a = dn[0][i];
                const char *type =
                    a->la_attr.bv_len == 2 && strncasecmp(a->la_attr.bv_val, "dc", 2) == 0   ? "dc"
                    : a->la_attr.bv_len == 1 && (a->la_attr.bv_val[0] | 32) == 'o'           ? "o"
                    : a->la_attr.bv_len == 1 && (a->la_attr.bv_val[0] | 32) == 'c'           ? "c"
                    : a->la_attr.bv_len == 2 && strncasecmp(a->la_attr.bv_val, "ou", 2) == 0 ? "ou"
                                                                                             : NULL;

                if (type == NULL || a->la_value.bv_len >= VALUE_MAX) {
                        ldap_dnfree(dn);
                        return gmca_error_set(e, GMCA_ERR_POLICY,
                                              "LDAP: cannot create the base entry %s", lp->base);
                }
                memcpy(r.value[r.n], a->la_value.bv_val, a->la_value.bv_len);
                r.value[r.n][a->la_value.bv_len] = '\0';
                r.type[r.n++] = type;
        }
        ldap_dnfree(dn);
        rc = entry_add(lp, lp->base, &r, 0, NULL, e);
        return rc;
}

/* Create the entries of p from the base down to the leaf's parent, then the leaf. */
static int path_add(struct gmca_ldap_pub *lp, const struct path *p, const char *const *leaf_classes,
                    struct gmca_error *e)
{
        int rc;

        if ((rc = base_add(lp, e)) != 0)
                return rc;
        for (size_t i = p->n; i-- > 1;)
                if ((rc = entry_add(lp, p->dn + p->off[i], &p->rdn[i], 0, NULL, e)) != 0)
                        return rc;
        return entry_add(lp, p->dn, &p->rdn[0], 1, leaf_classes, e);
}

/*
 * Apply one modification of attr at p's leaf: op LDAP_MOD_ADD (a value
 * there already is fine), LDAP_MOD_DELETE (one absent is fine) or
 * LDAP_MOD_REPLACE (der NULL: remove every value). A missing leaf is
 * created with leaf_classes for ADD and REPLACE, and is fine for DELETE.
 */
static int modify(struct gmca_ldap_pub *lp, const struct path *p, int op, const char *attr,
                  const uint8_t *der, size_t len, const char *const *leaf_classes,
                  struct gmca_error *e)
{
        struct berval bv = {(ber_len_t)len, (char *)der}, *vals[2] = {&bv, NULL};
        LDAPMod mod = {.mod_op = op | LDAP_MOD_BVALUES, .mod_type = (char *)attr};
        LDAPMod *list[2] = {&mod, NULL};
        int rc;

        mod.mod_bvalues = der != NULL ? vals : NULL;
        if ((rc = connect_bind(lp, e)) != 0)
                return rc;
        for (int tries = 0; tries < 3; tries++) {
                rc = ldap_modify_ext_s(lp->ld, p->dn, list, NULL, NULL);
                if (rc == LDAP_SUCCESS || (op == LDAP_MOD_ADD && rc == LDAP_TYPE_OR_VALUE_EXISTS) ||
                    (op == LDAP_MOD_DELETE &&
                     (rc == LDAP_NO_SUCH_ATTRIBUTE || rc == LDAP_NO_SUCH_OBJECT)))
                        return 0;
                if (rc == LDAP_NO_SUCH_OBJECT && tries == 0) {
                        if ((rc = path_add(lp, p, leaf_classes, e)) != 0)
                                return rc;
                        continue;
                }
                if (rc == LDAP_OBJECT_CLASS_VIOLATION && tries < 2 && leaf_classes != NULL) {
                        /* An entry made as a parent first: give it the leaf's classes. */
                        char *oc[4] = {(char *)leaf_classes[0], NULL};
                        LDAPMod add = {LDAP_MOD_ADD, "objectClass", {oc}}, *l2[2] = {&add, NULL};

                        rc = ldap_modify_ext_s(lp->ld, p->dn, l2, NULL, NULL);
                        if (rc != LDAP_SUCCESS && rc != LDAP_TYPE_OR_VALUE_EXISTS)
                                return ldap_fail(lp, rc, "modify", p->dn, e);
                        tries = 1;
                        continue;
                }
                break;
        }
        return ldap_fail(lp, rc, "modify", p->dn, e);
}

/* ---- events ---- */

static const char *const USER_CLASSES[] = {"pkiUser", NULL};
static const char *const CA_CLASSES[] = {"pkiCA", "deltaCRL", NULL};

/* Whether the certificate may go to the directory: its profile and its application say so. */
static int wanted(struct gmca_ldap_pub *lp, struct gmca_store *s, const struct gmca_cert_rec *r,
                  int *yes, struct gmca_error *e)
{
        char dir[1100];
        struct gmca_profile *prof;
        struct gmca_q q;
        int rc;

        snprintf(dir, sizeof(dir), "%s/profiles", lp->dir);
        if ((prof = gmca_profile_find(dir, r->profile, e)) == NULL)
                return e->code != 0 ? e->code : GMCA_ERR_INTERNAL;
        *yes = prof->publish;
        gmca_profile_free(prof);
        if (!*yes)
                return 0;
        if ((rc = gmca_q_open(s, SQL_NO_PUBLISH, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, r->serial);
        rc = gmca_q_step(&q, e, "publication of %s", r->serial);
        if (rc == GMCA_DB_ROW)
                *yes = gmca_q_col_int(&q, 0) == 0;
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

static int cert_event(struct gmca_ldap_pub *lp, struct gmca_store *s, const struct gmca_event *ev,
                      struct gmca_error *e)
{
        struct gmca_cert_rec r;
        const unsigned char *p;
        struct path *path = NULL;
        X509 *x = NULL;
        int rc, yes = 1, ca, op;

        memset(&r, 0, sizeof(r));
        if ((rc = gmca_store_cert_get(s, ev->serial, &r, e)) != 0)
                return rc;
        p = r.der;
        if ((x = d2i_X509(NULL, &p, (long)r.der_len)) == NULL || p != r.der + r.der_len) {
                gmca_ossl_clear();
                rc = gmca_error_set(e, GMCA_ERR_DB, "LDAP: certificate %s in the store is not DER",
                                    r.serial);
                goto out;
        }
        if ((path = malloc(sizeof(*path))) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        ca = X509_check_ca(x) != 0;
        if (!ca && (rc = wanted(lp, s, &r, &yes, e)) != 0)
                goto out;
        rc = ca ? path_ca(X509_get_subject_name(x), lp->base, path, e)
                : path_subject(X509_get_subject_name(x), lp->base, path, e);
        if (rc != 0)
                goto out;
        /* Only what is valid now: the store's state, whatever the event (replays change nothing).
         */
        op = r.status == GMCA_CERT_VALID && r.not_after > (int64_t)gmca_now() && yes
                 ? LDAP_MOD_ADD
                 : LDAP_MOD_DELETE;
        if (!yes && ev->kind == GMCA_EVENT_CERT_ISSUE) {
                rc = 0; /* never written: nothing to take back */
                goto out;
        }
        rc = modify(lp, path, op, ca ? "cACertificate;binary" : "userCertificate;binary", r.der,
                    r.der_len, ca ? CA_CLASSES : USER_CLASSES, e);
out:
        free(path);
        X509_free(x);
        gmca_cert_rec_clear(&r);
        return rc;
}

/* Replace attr of the CA's entry with crl (NULL: none of that kind yet). */
static int crl_set(struct gmca_ldap_pub *lp, const struct path *path, const char *attr,
                   const struct gmca_crl_rec *crl, struct gmca_error *e)
{
        if (crl->der == NULL)
                return 0; /* nothing to publish; an old value stays until a newer one */
        return modify(lp, path, LDAP_MOD_REPLACE, attr, crl->der, crl->der_len, CA_CLASSES, e);
}

static int crl_event(struct gmca_ldap_pub *lp, struct gmca_store *s, const struct gmca_event *ev,
                     struct gmca_error *e)
{
        struct gmca_ca_rec ca;
        struct gmca_crl_rec full, delta;
        const unsigned char *p;
        struct path *path = NULL;
        X509 *x = NULL;
        int rc;

        memset(&ca, 0, sizeof(ca));
        memset(&full, 0, sizeof(full));
        memset(&delta, 0, sizeof(delta));
        if ((rc = gmca_store_ca_get_by_id(s, ev->ca_id, &ca, e)) != 0)
                goto out;
        p = ca.cert_der;
        if (p == NULL || (x = d2i_X509(NULL, &p, (long)ca.cert_len)) == NULL) {
                gmca_ossl_clear();
                rc = gmca_error_set(e, GMCA_ERR_DB, "LDAP: CA %s has no certificate", ca.name);
                goto out;
        }
        if ((path = malloc(sizeof(*path))) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = path_ca(X509_get_subject_name(x), lp->base, path, e)) != 0)
                goto out;
        /* The latest of each kind, whichever event this is: replays and order do not matter. */
        if ((rc = gmca_store_crl_latest(s, ev->ca_id, &full, e)) == GMCA_ERR_NOTFOUND ||
            (rc == 0 &&
             (rc = gmca_store_crl_latest_delta(s, ev->ca_id, &delta, e)) == GMCA_ERR_NOTFOUND)) {
                gmca_error_clear(e);
                rc = 0;
        }
        if (rc == 0 && (rc = crl_set(lp, path, "certificateRevocationList;binary", &full, e)) == 0)
                rc = crl_set(lp, path, "deltaRevocationList;binary", &delta, e);
out:
        free(path);
        X509_free(x);
        gmca_crl_rec_clear(&full);
        gmca_crl_rec_clear(&delta);
        gmca_ca_rec_clear(&ca);
        return rc;
}

static int deliver(void *arg, struct gmca_store *s, const struct gmca_event *ev,
                   struct gmca_error *e)
{
        struct gmca_ldap_pub *lp = arg;
        int rc;

        switch (ev->kind) {
        case GMCA_EVENT_CERT_ISSUE:
        case GMCA_EVENT_CERT_REVOKE:
                rc = cert_event(lp, s, ev, e);
                break;
        case GMCA_EVENT_CRL_ISSUE:
                rc = crl_event(lp, s, ev, e);
                break;
        default:
                rc = gmca_error_set(e, GMCA_ERR_POLICY, "LDAP: unknown event kind");
        }
        return rc;
}

void gmca_ldap_pub_publisher(struct gmca_ldap_pub *lp, struct gmca_publisher *out)
{
        memset(out, 0, sizeof(*out));
        gmca_strlcpy(out->channel, GMCA_LDAP_CHANNEL, sizeof(out->channel));
        out->deliver = deliver;
        out->arg = lp;
}
