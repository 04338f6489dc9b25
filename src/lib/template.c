/*
 * The template admin's work on the certificate profiles (template.h): the
 * profiles as a person reads them, their replacement with the old version
 * kept in history/, and the flag that stops the RA taking applications
 * under one. The files stay the single source of what a profile says (the
 * CA engine and the RA load them with the strict loader of profile.c);
 * this module only changes them, carefully: strict load first, the old
 * bytes kept, the new ones renamed into place, the audit record after, the
 * old file back if the audit record cannot be written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "crypto.h"
#include "ra_internal.h"
#include "template.h"
#include "util.h"

#define HISTORY_SUFFIX_MAX 99   /* NAME.<time>.<n>.json when one second saw several changes */
#define HISTORY_SCAN_MAX 100000 /* directory entries looked at */

/* The names a person reads, as the profile JSON spells them (profile.c's
 * schema). */
static const struct {
        unsigned bit;
        const char *name;
} ku_names[] = {
    {X509v3_KU_DIGITAL_SIGNATURE, "digitalSignature"},
    {X509v3_KU_NON_REPUDIATION, "nonRepudiation"},
    {X509v3_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
    {X509v3_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {X509v3_KU_KEY_AGREEMENT, "keyAgreement"},
    {X509v3_KU_KEY_CERT_SIGN, "keyCertSign"},
    {X509v3_KU_CRL_SIGN, "cRLSign"},
};

static const char *const dn_keys[GMCA_DN_COUNT] = {
    [GMCA_DN_C] = "C",   [GMCA_DN_ST] = "ST", [GMCA_DN_L] = "L", [GMCA_DN_O] = "O",
    [GMCA_DN_OU] = "OU", [GMCA_DN_CN] = "CN", [GMCA_DN_E] = "E", [GMCA_DN_SERIAL] = "serialNumber",
};

static const char *const san_keys[GMCA_SAN_COUNT] = {
    [GMCA_SAN_DNS] = "dns",
    [GMCA_SAN_IP] = "ip",
    [GMCA_SAN_EMAIL] = "email",
};

static const char *rule_name(enum gmca_rule r)
{
        return r == GMCA_RULE_REQUIRED   ? "required"
               : r == GMCA_RULE_OPTIONAL ? "optional"
                                         : "forbidden";
}

static const char *purpose_name(enum gmca_key_purpose p)
{
        return p == GMCA_PURPOSE_SIGN ? "sign" : p == GMCA_PURPOSE_ENCRYPT ? "encrypt" : "ca";
}

/* [a-z0-9_-]{1,63}, as profile.c requires: also what keeps a name inside its
 * directory. */
static int name_ok(const char *s)
{
        size_t n;

        if (s == NULL)
                return 0;
        for (n = 0; s[n] != '\0'; n++) {
                char c = s[n];

                if (n >= GMCA_PROFILE_NAME_MAX - 1 ||
                    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                        return 0;
        }
        return n > 0;
}

/* The custodians' profiles: issued by key ceremonies or for the CA's own
 * services. */
static int custodians(const char *name, const struct gmca_profile *p)
{
        return ra_internal_profile(name) || (p != NULL && p->ca);
}

static void sm3_hex(const void *p, size_t n, char out[2 * GMCA_SM3_LEN + 1])
{
        uint8_t d[GMCA_SM3_LEN];

        if (gmca_sm3(p, n, d) != 0) {
                out[0] = '\0';
                return;
        }
        gmca_hex(d, sizeof(d), out);
}

/* fsync a directory, so that a rename or a new file in it survives a crash. */
static int sync_dir(const char *dir, struct gmca_error *e)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = 0;

        if (fd < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", dir, strerror(errno));
        if (fsync(fd) != 0)
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: fsync: %s", dir, strerror(errno));
        close(fd);
        return rc;
}

struct paths {
        char dir[PATH_MAX];  /* <dir>/profiles */
        char file[PATH_MAX]; /* <dir>/profiles/NAME.json */
        char hist[PATH_MAX]; /* <dir>/profiles/history */
        char tmp[PATH_MAX];  /* <dir>/profiles/.NAME.<pid>.tmp: not a name the loader
                                lists */
};

static int paths_of(const char *dir, const char *name, struct paths *p, struct gmca_error *e)
{
        int n1, n2, n3, n4;

        if (dir == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "profiles: no state directory");
        n1 = snprintf(p->dir, sizeof(p->dir), "%s/profiles", dir);
        n2 = snprintf(p->file, sizeof(p->file), "%s/profiles/%s.json", dir, name);
        n3 = snprintf(p->hist, sizeof(p->hist), "%s/profiles/" GMCA_TEMPLATE_HISTORY_DIR, dir);
        n4 = snprintf(p->tmp, sizeof(p->tmp), "%s/profiles/.%s.%ld.tmp", dir, name, (long)getpid());
        if (n1 < 0 || n2 < 0 || n3 < 0 || n4 < 0 || (size_t)n1 >= sizeof(p->dir) ||
            (size_t)n2 >= sizeof(p->file) || (size_t)n3 >= sizeof(p->hist) ||
            (size_t)n4 >= sizeof(p->tmp))
                return gmca_error_set(e, GMCA_ERR_INVALID, "profiles: %s: path too long", dir);
        return 0;
}

/* The role check, its refusal audited as event on object. */
static int allowed(struct gmca_store *s, const struct gmca_auth_result *who, enum gmca_action act,
                   const char *event, const char *object, struct gmca_error *e)
{
        int rc;

        if (who == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "profiles: no operator");
        if ((rc = gmca_auth_allowed(who->op.roles, act, e)) != 0)
                return ra_refuse(s, who->op.name, event, object, rc, e);
        return 0;
}

static int flag_key(const char *name, char key[GMCA_NAME_MAX])
{
        if (strlen(name) > (size_t)GMCA_TEMPLATE_FLAG_NAME_MAX)
                return -1;
        snprintf(key, GMCA_NAME_MAX, GMCA_TEMPLATE_META_PREFIX "%s", name);
        return 0;
}

int gmca_template_disabled(struct gmca_store *s, const char *name, int *disabled,
                           struct gmca_error *e)
{
        char key[GMCA_NAME_MAX], v[8];
        struct gmca_error tmp = {0};
        int rc;

        if (name == NULL || flag_key(name, key) != 0) {
                *disabled = 0;
                return 0;
        }
        rc = gmca_store_meta_get(s, key, v, sizeof(v), &tmp);
        if (rc == GMCA_ERR_NOTFOUND) {
                *disabled = 0;
                return 0;
        }
        if (rc != 0)
                return gmca_error_set(e, rc, "profile %s: %s", name, tmp.msg);
        *disabled = strcmp(v, "1") == 0;
        return 0;
}

/* ---- reading ---- */

static json_t *rules_json(const enum gmca_rule *r, size_t n, const char *(*key)(size_t))
{
        json_t *o = json_object();

        for (size_t i = 0; o != NULL && i < n; i++)
                if (json_object_set_new(o, key(i), json_string(rule_name(r[i]))) != 0)
                        return json_decref(o), NULL;
        return o;
}

static const char *dn_key(size_t i)
{
        return dn_keys[i];
}

static const char *pext_key(size_t i)
{
        return gmca_pext_name((enum gmca_pext)i);
}

static const char *san_key(size_t i)
{
        return san_keys[i];
}

/* The fields of a parsed profile, as a person reads them. */
static json_t *profile_json(const struct gmca_profile *p, int enabled)
{
        json_t *o, *ku = json_array(), *eku = json_array();

        for (size_t i = 0; ku != NULL && i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
                if ((p->key_usage & ku_names[i].bit) != 0 &&
                    json_array_append_new(ku, json_string(ku_names[i].name)) != 0)
                        goto fail;
        for (size_t i = 0; eku != NULL && i < p->neku; i++)
                if (json_array_append_new(eku, json_string(OBJ_nid2sn(p->eku[i]))) != 0)
                        goto fail;
        if (ku == NULL || eku == NULL)
                goto fail;
        o = json_pack(
            "{s:s, s:s, s:s, s:b, s:i, s:o, s:o, s:i, s:i, s:o, s:o, s:o, "
            "s:s, s:b, s:b, "
            "s:b, s:s}",
            "name", p->name, "description", p->description, "purpose", purpose_name(p->purpose),
            "ca", p->ca, "path_len", p->path_len, "key_usage", ku, "extended_key_usage", eku,
            "validity_days", p->validity_days, "max_validity_days", p->max_validity_days, "subject",
            rules_json(p->dn, GMCA_DN_COUNT, dn_key), "extensions",
            rules_json(p->pext, GMCA_PEXT_COUNT, pext_key), "san",
            rules_json(p->san, GMCA_SAN_COUNT, san_key), "sm2_id", p->sm2_id, "ocsp_nocheck",
            p->ocsp_nocheck, "extended_key_usage_critical", p->eku_critical, "enabled", enabled,
            "managed_by", custodians(p->name, p) ? "custodians" : "template_admin");
        if (o != NULL && p->encryption_profile[0] != '\0')
                json_object_set_new(o, "encryption_profile", json_string(p->encryption_profile));
        return o; /* json_pack took ku and eku, even when it failed */
fail:
        json_decref(ku);
        json_decref(eku);
        return NULL;
}

struct hist {
        int64_t time;
        int n; /* 0, or the suffix of a second change in the same second */
        char file[GMCA_PROFILE_NAME_MAX + 40];
};

static int hist_cmp(const void *a, const void *b)
{
        const struct hist *x = a, *y = b;

        /* Newest first. */
        if (x->time != y->time)
                return x->time < y->time ? 1 : -1;
        return y->n - x->n;
}

/* "NAME.<digits>[.<digits>].json" -> time and n; -1 if the entry is not one of
 * name's. */
static int hist_parse(const char *entry, const char *name, int64_t *time, int *n)
{
        size_t k = strlen(name);
        const char *p;
        int64_t t = 0;
        int m = 0, digits = 0;

        if (strncmp(entry, name, k) != 0 || entry[k] != '.')
                return -1;
        for (p = entry + k + 1; *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
                t = t * 10 + (*p - '0');
        if (digits == 0)
                return -1;
        if (p[0] == '.' && p[1] >= '0' && p[1] <= '9') {
                for (p++, digits = 0; *p >= '0' && *p <= '9' && digits < 3; p++, digits++)
                        m = m * 10 + (*p - '0');
        }
        if (strcmp(p, ".json") != 0)
                return -1;
        *time = t;
        *n = m;
        return 0;
}

/* The newest kept versions of name: [{"file", "time"}...]; [] if there is no
 * history. */
static json_t *history_json(const struct paths *pa, const char *name)
{
        struct hist *v = NULL;
        size_t n = 0, cap = 0, seen = 0;
        struct dirent *de;
        json_t *a = json_array();
        DIR *d;

        if (a == NULL || (d = opendir(pa->hist)) == NULL)
                return a;
        while ((de = readdir(d)) != NULL && seen++ < HISTORY_SCAN_MAX) {
                struct hist h;

                if (hist_parse(de->d_name, name, &h.time, &h.n) != 0 ||
                    strlen(de->d_name) >= sizeof(h.file))
                        continue;
                gmca_strlcpy(h.file, de->d_name, sizeof(h.file));
                if (n == cap) {
                        size_t nc = cap == 0 ? 16 : cap * 2;
                        struct hist *nv = realloc(v, nc * sizeof(*v));

                        if (nv == NULL)
                                break;
                        v = nv;
                        cap = nc;
                }
                v[n++] = h;
        }
        closedir(d);
        if (n > 0)
                qsort(v, n, sizeof(*v), hist_cmp);
        for (size_t i = 0; i < n && i < GMCA_TEMPLATE_HISTORY_LIST_MAX; i++)
                if (json_array_append_new(a, json_pack("{s:s, s:I}", "file", v[i].file, "time",
                                                       (json_int_t)v[i].time)) != 0)
                        break;
        free(v);
        return a;
}

/*
 * The full view of profile name (no role check: the callers did it).
 * *out is set on success; e names the cause otherwise.
 */
static int show(struct gmca_store *s, const struct paths *pa, const char *name, json_t **out,
                struct gmca_error *e)
{
        struct gmca_profile *p = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        json_t *o = NULL, *src;
        char sm3[2 * GMCA_SM3_LEN + 1];
        int rc, disabled = 0;

        if ((p = gmca_profile_find(pa->dir, name, e)) == NULL)
                return e->code != 0 ? e->code : GMCA_ERR_NOTFOUND;
        if ((rc = gmca_read_file(pa->file, GMCA_PROFILE_FILE_MAX, &buf, &len, e)) != 0 ||
            (rc = gmca_template_disabled(s, name, &disabled, e)) != 0)
                goto out;
        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        sm3_hex(buf, len, sm3);
        /* It loaded strictly a moment ago; a file changed in between shows as null.
         */
        src = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
        if ((o = profile_json(p, !disabled)) == NULL ||
            json_object_set_new(o, "sm3", json_string(sm3)) != 0 ||
            json_object_set_new(o, "source", src != NULL ? src : json_null()) != 0 ||
            json_object_set_new(o, "history", history_json(pa, name)) != 0)
                goto out;
        gmca_error_clear(e);
        *out = o;
        o = NULL;
        rc = 0;
out:
        json_decref(o);
        free(buf);
        gmca_profile_free(p);
        return rc;
}

int gmca_template_list(struct gmca_store *s, const char *dir, const struct gmca_auth_result *who,
                       json_t **out, struct gmca_error *e)
{
        struct paths pa;
        char **names = NULL;
        size_t n = 0;
        json_t *items = NULL;
        int rc;

        if ((rc = allowed(s, who, GMCA_ACT_PROFILE_READ, GMCA_EV_AUTH_REQUEST, "profiles", e)) !=
                0 ||
            (rc = paths_of(dir, "x", &pa, e)) != 0 || /* only pa.dir is used */
            (rc = gmca_profile_list(pa.dir, &names, &n, e)) != 0)
                return rc;
        if ((items = json_array()) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++) {
                struct gmca_error pe = {0};
                struct gmca_profile *p = gmca_profile_find(pa.dir, names[i], &pe);
                int disabled = 0;
                json_t *it;

                if ((rc = gmca_template_disabled(s, names[i], &disabled, e)) != 0)
                        break;
                if (p == NULL)
                        it = json_pack("{s:s, s:s}", "name", names[i], "error", pe.msg);
                else
                        it = json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:b, s:s}", "name", p->name,
                                       "description", p->description, "purpose",
                                       purpose_name(p->purpose), "ca", p->ca, "validity_days",
                                       p->validity_days, "max_validity_days", p->max_validity_days,
                                       "enabled", !disabled, "managed_by",
                                       custodians(p->name, p) ? "custodians" : "template_admin");
                gmca_profile_free(p);
                if (json_array_append_new(items, it) != 0)
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        if (rc == 0 && (*out = json_pack("{s:o}", "items", items)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (rc != 0)
                json_decref(items);
        return rc;
}

int gmca_template_get(struct gmca_store *s, const char *dir, const struct gmca_auth_result *who,
                      const char *name, json_t **out, struct gmca_error *e)
{
        char object[GMCA_NAME_MAX];
        struct paths pa;
        int rc;

        ra_show(object, sizeof(object), name != NULL ? name : "");
        if ((rc = allowed(s, who, GMCA_ACT_PROFILE_READ, GMCA_EV_AUTH_REQUEST, object, e)) != 0)
                return rc;
        if (!name_ok(name))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "profile name \"%s\" must match [a-z0-9_-]{1,63}", object);
        if ((rc = paths_of(dir, name, &pa, e)) != 0)
                return rc;
        return show(s, &pa, name, out, e);
}

/* ---- changing ---- */

/*
 * Copy the old version into history/NAME.<now>[.<n>].json (created
 * exclusively, fsynced, the directory fsynced). file receives its name.
 */
static int keep_old(const struct paths *pa, const char *name, const uint8_t *old, size_t len,
                    int64_t now, char *file, size_t cap, struct gmca_error *e)
{
        char path[PATH_MAX];
        int rc = GMCA_ERR_EXISTS;

        if (mkdir(pa->hist, 0755) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", pa->hist, strerror(errno));
        for (int n = 0; rc == GMCA_ERR_EXISTS && n <= HISTORY_SUFFIX_MAX; n++) {
                int k = n == 0 ? snprintf(file, cap, "%s.%lld.json", name, (long long)now)
                               : snprintf(file, cap, "%s.%lld.%d.json", name, (long long)now, n);

                if (k < 0 || (size_t)k >= cap ||
                    (size_t)snprintf(path, sizeof(path), "%s/%s", pa->hist, file) >= sizeof(path))
                        return gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", pa->hist);
                gmca_error_clear(e);
                rc = gmca_write_file_excl(path, old, len, 0644, e);
        }
        if (rc != 0)
                return rc;
        return sync_dir(pa->hist, e);
}

/*
 * data becomes pa->file: written to pa->tmp (exclusively, fsynced), loaded
 * back with the strict loader when check is set, renamed into place, the
 * directory fsynced. On failure pa->file is as it was.
 */
static int install(const struct paths *pa, const uint8_t *data, size_t len, int check,
                   struct gmca_error *e)
{
        struct gmca_profile *p;
        int rc;

        unlink(pa->tmp); /* one left by a crashed process with our pid */
        if ((rc = gmca_write_file_excl(pa->tmp, data, len, 0644, e)) != 0)
                return rc;
        if (check) {
                if ((p = gmca_profile_load(pa->tmp, e)) == NULL) {
                        unlink(pa->tmp);
                        return e->code != 0 ? e->code : GMCA_ERR_INVALID;
                }
                gmca_profile_free(p);
        }
        if (rename(pa->tmp, pa->file) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: %s", pa->file, strerror(errno));
                unlink(pa->tmp);
                return rc;
        }
        return sync_dir(pa->dir, e);
}

/* After a failed audit record: the old version back, or the new file gone. */
static void put_back(const struct paths *pa, const uint8_t *old, size_t len, struct gmca_error *e)
{
        struct gmca_error re = {0};
        int rc;

        if (old != NULL)
                rc = install(pa, old, len, 0, &re);
        else if (unlink(pa->file) != 0)
                rc = gmca_error_set(&re, GMCA_ERR_IO, "%s: %s", pa->file, strerror(errno));
        else
                rc = sync_dir(pa->dir, &re);
        if (rc != 0) {
                size_t n = strlen(e->msg);

                snprintf(e->msg + n, sizeof(e->msg) - n,
                         " [and putting the old file back failed: %s]", re.msg);
        }
}

/* The body must say its name (the strict loader would take the path's). */
static int body_names_itself(const uint8_t *body, size_t len, struct gmca_error *e)
{
        json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
        int has = root != NULL && json_is_string(json_object_get(root, "name"));

        json_decref(root);
        return has ? 0 : gmca_error_set(e, GMCA_ERR_INVALID, "profile: name: missing");
}

int gmca_template_put(struct gmca_store *s, const char *dir, const struct gmca_auth_result *who,
                      const char *name, const uint8_t *body, size_t len, int64_t now, json_t **out,
                      struct gmca_error *e)
{
        char object[GMCA_NAME_MAX], old_sm3[2 * GMCA_SM3_LEN + 1], new_sm3[2 * GMCA_SM3_LEN + 1];
        char kept[GMCA_PROFILE_NAME_MAX + 40] = "";
        struct gmca_profile *p = NULL, *op = NULL;
        struct gmca_error ignored = {0};
        uint8_t *old = NULL;
        size_t old_len = 0;
        struct paths pa;
        json_t *o = NULL;
        int rc, installed = 0;

        ra_show(object, sizeof(object), name != NULL ? name : "");
        if ((rc = allowed(s, who, GMCA_ACT_PROFILE_WRITE, GMCA_EV_CONFIG_CHANGE, object, e)) != 0)
                return rc;
        if (!name_ok(name)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "profile name \"%s\" must match [a-z0-9_-]{1,63}", object);
                goto fail;
        }
        if ((rc = paths_of(dir, name, &pa, e)) != 0)
                goto fail;
        /* The strict loader, with the path's name as the one the body must carry. */
        if ((p = gmca_profile_parse((const char *)body, len, name, e)) == NULL) {
                rc = e->code != 0 ? e->code : GMCA_ERR_INVALID;
                if (rc == GMCA_ERR_INVALID && strstr(e->msg, "does not match the file name")) {
                        gmca_error_clear(e); /* the loader's words are about files */
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "profile %s: name: the body names another profile "
                                            "than the path",
                                            name);
                }
                goto fail;
        }
        if ((rc = body_names_itself(body, len, e)) != 0)
                goto fail;
        if (custodians(name, p)) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "profile %s: %s the custodians' (CPS §6.2.3): not changed "
                                    "through the API",
                                    name, p->ca ? "a CA profile is" : "an internal profile is");
                goto fail;
        }
        /* From here under the store's write lock: one change at a time. */
        if ((rc = gmca_store_begin(s, e)) != 0)
                goto fail;
        rc = gmca_read_file(pa.file, GMCA_PROFILE_FILE_MAX, &old, &old_len, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                old = NULL;
        } else if (rc != 0) {
                goto fail;
        } else if ((op = gmca_profile_parse((const char *)old, old_len, name, &ignored)) != NULL &&
                   op->ca) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "profile %s: the profile in force is a CA profile, the "
                                    "custodians' (CPS §6.2.3)",
                                    name);
                goto fail;
        }
        if (old != NULL) {
                sm3_hex(old, old_len, old_sm3);
                if ((rc = keep_old(&pa, name, old, old_len, now, kept, sizeof(kept), e)) != 0)
                        goto fail;
        }
        sm3_hex(body, len, new_sm3);
        if ((rc = install(&pa, body, len, 1, e)) != 0)
                goto fail;
        installed = 1;
        if ((rc = ra_audit(s, GMCA_EV_CONFIG_CHANGE, who->op.name, name,
                           json_pack("{s:s, s:s?, s:s, s:s?, s:b}", "profile", name, "old_sm3",
                                     old != NULL ? old_sm3 : NULL, "new_sm3", new_sm3, "kept_as",
                                     old != NULL ? kept : NULL, "created", old == NULL),
                           e)) != 0 ||
            (rc = gmca_store_commit(s, e)) != 0)
                goto fail;
        installed = 0;
        if ((rc = show(s, &pa, name, &o, e)) != 0)
                goto out;
        json_object_set_new(o, "created", json_boolean(old == NULL));
        json_object_set_new(o, "old_sm3", old != NULL ? json_string(old_sm3) : json_null());
        *out = o;
        rc = 0;
        goto out;
fail:
        if (installed)
                put_back(&pa, old, old_len, e);
        rc = ra_refuse(s, who->op.name, GMCA_EV_CONFIG_CHANGE, object, rc, e);
out:
        free(old);
        gmca_profile_free(p);
        gmca_profile_free(op);
        return rc;
}

int gmca_template_set_enabled(struct gmca_store *s, const char *dir,
                              const struct gmca_auth_result *who, const char *name, int enable,
                              json_t **out, struct gmca_error *e)
{
        char object[GMCA_NAME_MAX], key[GMCA_NAME_MAX];
        struct gmca_profile *p = NULL;
        struct paths pa;
        int rc, disabled = 0;

        ra_show(object, sizeof(object), name != NULL ? name : "");
        if ((rc = allowed(s, who, GMCA_ACT_PROFILE_WRITE, GMCA_EV_CONFIG_CHANGE, object, e)) != 0)
                return rc;
        if (!name_ok(name)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "profile name \"%s\" must match [a-z0-9_-]{1,63}", object);
                goto fail;
        }
        if (flag_key(name, key) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                    "profile %s: only a name of at most %d bytes can be disabled",
                                    name, GMCA_TEMPLATE_FLAG_NAME_MAX);
                goto fail;
        }
        if ((rc = paths_of(dir, name, &pa, e)) != 0)
                goto fail;
        if ((p = gmca_profile_find(pa.dir, name, e)) == NULL) {
                rc = e->code != 0 ? e->code : GMCA_ERR_NOTFOUND;
                goto fail;
        }
        if (custodians(name, p)) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "profile %s: the custodians' (CPS §6.2.3); the RA never "
                                    "issues under it",
                                    name);
                goto fail;
        }
        if ((rc = gmca_store_begin(s, e)) != 0 ||
            (rc = gmca_template_disabled(s, name, &disabled, e)) != 0)
                goto fail;
        if (disabled == !enable) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "profile %s: already %s", name,
                                    enable ? "enabled" : "disabled");
                goto fail;
        }
        if ((rc = gmca_store_meta_set(s, key, enable ? "0" : "1", e)) != 0 ||
            (rc = ra_audit(s, GMCA_EV_CONFIG_CHANGE, who->op.name, name,
                           json_pack("{s:s, s:b}", "profile", name, "enabled", enable), e)) != 0 ||
            (rc = gmca_store_commit(s, e)) != 0)
                goto fail;
        gmca_profile_free(p);
        return show(s, &pa, name, out, e);
fail:
        gmca_profile_free(p);
        return ra_refuse(s, who->op.name, GMCA_EV_CONFIG_CHANGE, object, rc, e);
}
