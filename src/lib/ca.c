/*
 * The CA engine's business operations over one state directory. Each
 * operation is one store transaction that carries its audit record; each
 * rejection of outside input is audited in a transaction of its own, so
 * the database changes by nothing but that record.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "ca_internal.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "crl.h"
#include "km.h"
#include "store_roles.h"
#include "crypto.h"
#include "util.h"
#include "x509.h"

int ca_valid_name(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n >= GMCA_NAME_MAX)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char ch = s[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                      ch == '_'))
                        return 0;
        }
        return 1;
}

/* snprintf into a path buffer; a path that does not fit is an error, not a cut. */
int ca_pathf(char *out, size_t len, struct gmca_error *e, const char *fmt, ...) GMCA_PRINTF(4, 5);
int ca_pathf(char *out, size_t len, struct gmca_error *e, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(out, len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "path too long");
        return 0;
}

int ca_path_join(char *out, size_t len, const char *a, const char *b, struct gmca_error *e)
{
        if ((size_t)snprintf(out, len, "%s/%s", a, b) >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "path too long: %s/%s", a, b);
        return 0;
}

/* ---- configuration ---- */

const char *ca_json_unknown_key(json_t *obj, const char *const *known, size_t n)
{
        const char *key;
        json_t *v;

        json_object_foreach(obj, key, v)
        {
                size_t i;

                (void)v;
                for (i = 0; i < n && strcmp(key, known[i]) != 0; i++)
                        ;
                if (i == n)
                        return key;
        }
        return NULL;
}

static void config_defaults(struct ca_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        gmca_strlcpy(cfg->default_ca, "sub", sizeof(cfg->default_ca));
        gmca_strlcpy(cfg->base_url, DEFAULT_BASE_URL, sizeof(cfg->base_url));
        gmca_strlcpy(cfg->policy_oid, ANY_POLICY, sizeof(cfg->policy_oid));
        snprintf(cfg->cps_uri, sizeof(cfg->cps_uri), "%s/cps", DEFAULT_BASE_URL);
        cfg->crl_hours = 24;
}

static int config_string(json_t *root, const char *key, char *out, size_t len, struct gmca_error *e)
{
        json_t *v = json_object_get(root, key);

        if (v == NULL)
                return 0;
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: \"%s\" must be a string of 1..%zu bytes",
                                      GMCA_CONFIG_FILE, key, len - 1);
        gmca_strlcpy(out, json_string_value(v), len);
        return 0;
}

static int config_load(const char *dir, struct ca_config *cfg, struct gmca_error *e)
{
        static const char *const known[] = {"version",           "default_ca",     "base_url",
                                            "policy_oid",        "cps_uri",        "crl_hours",
                                            "verify_after_sign", "device_library", "device_config",
                                            "delta_crl_minutes", "database",       "backup_cert",
                                            "backup_copy",       "front_database"};
        char path[PATH_MAX];
        uint8_t *buf = NULL;
        size_t len;
        json_t *root = NULL, *v;
        json_error_t jerr;
        const char *key;
        int rc;

        config_defaults(cfg);
        if ((rc = ca_path_join(path, sizeof(path), dir, GMCA_CONFIG_FILE, e)) != 0)
                return rc;
        if ((rc = gmca_read_file(path, CONFIG_MAX, &buf, &len, e)) != 0) {
                if (rc == GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(e);
                        rc = gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                            "%s: not a gmca state directory (no %s; run gmca init)",
                                            dir, GMCA_CONFIG_FILE);
                }
                return rc;
        }
        root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
        free(buf);
        if (root == NULL || !json_is_object(root)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "%s: line %d: %s", path,
                                    root ? 0 : jerr.line, root ? "not a JSON object" : jerr.text);
                goto out;
        }
        if ((key = ca_json_unknown_key(root, known, sizeof(known) / sizeof(known[0]))) != NULL) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "%s: unknown key \"%s\"", path, key);
                goto out;
        }
        if ((rc = config_string(root, "default_ca", cfg->default_ca, sizeof(cfg->default_ca), e)) !=
                0 ||
            (rc = config_string(root, "base_url", cfg->base_url, sizeof(cfg->base_url), e)) != 0 ||
            (rc = config_string(root, "policy_oid", cfg->policy_oid, sizeof(cfg->policy_oid), e)) !=
                0 ||
            (rc = config_string(root, "cps_uri", cfg->cps_uri, sizeof(cfg->cps_uri), e)) != 0 ||
            (rc = config_string(root, "device_library", cfg->device_library,
                                sizeof(cfg->device_library), e)) != 0 ||
            (rc = config_string(root, "device_config", cfg->device_config,
                                sizeof(cfg->device_config), e)) != 0 ||
            (rc = config_string(root, "database", cfg->database, sizeof(cfg->database), e)) != 0 ||
            (rc = config_string(root, "front_database", cfg->front_database,
                                sizeof(cfg->front_database), e)) != 0)
                goto out;
        if (cfg->front_database[0] != '\0' &&
            (cfg->database[0] == '\0' || gmca_store_uri_check(cfg->front_database, e) != 0)) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "%s: \"front_database\" must be a postgresql:// URI without a "
                                    "password, beside a PostgreSQL \"database\"",
                                    path);
                goto out;
        }
        if (cfg->database[0] != '\0' && (rc = gmca_store_uri_check(cfg->database, e)) != 0) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "%s: \"database\" must be a postgresql:// URI without a "
                                    "password",
                                    path);
                goto out;
        }
        /* dlopen of a bare name would search the library path: only absolute paths. */
        if (cfg->device_library[0] != '\0' && cfg->device_library[0] != '/') {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "%s: device_library must be an absolute path", path);
                goto out;
        }
        if ((v = json_object_get(root, "verify_after_sign")) != NULL) {
                if (!json_is_boolean(v)) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "%s: verify_after_sign must be true or false", path);
                        goto out;
                }
                cfg->verify_after_sign = json_is_true(v);
        }
        if ((v = json_object_get(root, "crl_hours")) != NULL) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > 24 * 31) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "%s: crl_hours must be 1..744 (CPS §3.9.10)", path);
                        goto out;
                }
                cfg->crl_hours = (int)json_integer_value(v);
        }
        if ((v = json_object_get(root, "delta_crl_minutes")) != NULL) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) >= (json_int_t)cfg->crl_hours * 60) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "%s: delta_crl_minutes must be 0 (none) or shorter "
                                            "than crl_hours",
                                            path);
                        goto out;
                }
                cfg->delta_crl_minutes = (int)json_integer_value(v);
        }
        rc = 0;
out:
        json_decref(root);
        return rc;
}

static int config_write(const char *dir, const struct ca_config *cfg, struct gmca_error *e)
{
        char path[PATH_MAX];
        json_t *root;
        char *text = NULL;
        int rc;

        if ((rc = ca_path_join(path, sizeof(path), dir, GMCA_CONFIG_FILE, e)) != 0)
                return rc;
        root = json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:b}", "version", 1, "default_ca",
                         cfg->default_ca, "base_url", cfg->base_url, "policy_oid", cfg->policy_oid,
                         "cps_uri", cfg->cps_uri, "crl_hours", cfg->crl_hours, "verify_after_sign",
                         cfg->verify_after_sign);
        if (root != NULL && cfg->delta_crl_minutes > 0)
                json_object_set_new(root, "delta_crl_minutes",
                                    json_integer(cfg->delta_crl_minutes));
        if (root != NULL && cfg->device_library[0] != '\0')
                json_object_set_new(root, "device_library", json_string(cfg->device_library));
        if (root != NULL && cfg->device_config[0] != '\0')
                json_object_set_new(root, "device_config", json_string(cfg->device_config));
        if (root != NULL && cfg->database[0] != '\0')
                json_object_set_new(root, "database", json_string(cfg->database));
        if (root != NULL && cfg->front_database[0] != '\0')
                json_object_set_new(root, "front_database", json_string(cfg->front_database));
        if (root == NULL || (text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "config: out of memory");
        }
        rc = gmca_write_file_excl(path, text, strlen(text), 0644, e);
        free(text);
        json_decref(root);
        return rc;
}

/* ---- helpers ---- */

int ca_write_pem_cert(const char *path, X509 *cert, struct gmca_error *e)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;
        int rc;

        if (b == NULL || PEM_write_bio_X509(b, cert) != 1) {
                BIO_free(b);
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: cannot encode certificate", path);
        }
        n = BIO_get_mem_data(b, &data);
        rc = gmca_write_file_excl(path, data, (size_t)n, 0644, e);
        BIO_free(b);
        return rc;
}

static int copy_profiles(const char *src, const char *dst, struct gmca_error *e)
{
        DIR *d;
        struct dirent *de;
        int rc = 0, count = 0;

        if ((d = opendir(src)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "profiles: %s: %s", src,
                                      strerror(errno));
        while (rc == 0 && (de = readdir(d)) != NULL) {
                char from[PATH_MAX], to[PATH_MAX];
                size_t n = strlen(de->d_name);
                uint8_t *buf = NULL;
                size_t len;

                if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
                        continue;
                if ((rc = ca_path_join(from, sizeof(from), src, de->d_name, e)) != 0 ||
                    (rc = ca_path_join(to, sizeof(to), dst, de->d_name, e)) != 0)
                        break;
                if ((rc = gmca_read_file(from, GMCA_PROFILE_FILE_MAX, &buf, &len, e)) == 0)
                        rc = gmca_write_file_excl(to, buf, len, 0644, e);
                free(buf);
                count++;
        }
        closedir(d);
        if (rc == 0 && count == 0)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "profiles: no *.json in %s", src);
        return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(path);
}

void ca_rm_tree(const char *path)
{
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int ca_dir_free(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int empty = 1;

        if (d == NULL)
                return errno == ENOENT ? 1 : 0;
        while ((de = readdir(d)) != NULL)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        empty = 0;
        closedir(d);
        return empty ? 2 : 0;
}

static int url_join(char *out, size_t len, const char *base, const char *suffix)
{
        return (size_t)snprintf(out, len, "%s%s", base, suffix) < len ? 0 : -1;
}

/*
 * The parts of a certificate that come from the profile and configuration:
 * extensions, URLs and the SM2 ID. The caller sets subject, keys, serial,
 * validity.
 */

/* Where the delta CRLs of a CA are published (a complete CRL's and certificates' freshestCRL). */
static int ca_delta_url(const struct ca_config *cfg, const char *ca, char *out, size_t len)
{
        char tmp[URL_MAX];

        snprintf(tmp, sizeof(tmp), "/crl/%s/delta.crl", ca);
        return url_join(out, len, cfg->base_url, tmp);
}

int ca_fill_template(struct gmca_cert_template *t, struct tmpl_urls *u, const struct ca_config *cfg,
                     const struct gmca_profile *p, const char *issuer_name, struct gmca_error *e)
{
        char tmp[URL_MAX];

        t->sm2_id = p->sm2_id;
        t->ca = p->ca;
        t->path_len = p->path_len;
        t->key_usage = p->key_usage;
        t->eku = p->eku;
        t->neku = p->neku;
        t->ocsp_nocheck = p->ocsp_nocheck;
        t->eku_critical = p->eku_critical;
        t->policy_oid = cfg->policy_oid;
        t->cps_uri = cfg->cps_uri;
        if (issuer_name == NULL)
                return 0; /* a root has no issuer to point at */
        snprintf(tmp, sizeof(tmp), "/crl/%s.crl", issuer_name);
        if (url_join(u->crl, sizeof(u->crl), cfg->base_url, tmp) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "base_url too long");
        snprintf(tmp, sizeof(tmp), "/ca/%s.crt", issuer_name);
        if (url_join(u->ca_issuers, sizeof(u->ca_issuers), cfg->base_url, tmp) != 0 ||
            url_join(u->ocsp, sizeof(u->ocsp), cfg->base_url, "/ocsp") != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "base_url too long");
        t->crl_url = u->crl;
        if (cfg->delta_crl_minutes > 0) {
                if (ca_delta_url(cfg, issuer_name, u->delta, sizeof(u->delta)) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "base_url too long");
                t->freshest_url = u->delta;
        }
        t->ca_issuers_url = u->ca_issuers;
        /* The OCSP responder answers for end entities and operational CAs. */
        t->ocsp_url = p->ocsp_nocheck ? NULL : u->ocsp;
        return 0;
}

int ca_cert_der(X509 *cert, uint8_t **der, size_t *len, struct gmca_error *e)
{
        unsigned char *buf = NULL;
        int n = i2d_X509(cert, &buf);

        if (n <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "certificate: cannot encode");
        *der = buf;
        *len = (size_t)n;
        return 0;
}

/* Fill a certificate record for the store from a built certificate. */
int ca_cert_record(X509 *cert, int64_t ca_id, const char *profile, int64_t request_id,
                   struct gmca_cert_rec *r, struct gmca_error *e)
{
        int rc;

        memset(r, 0, sizeof(*r));
        if ((rc = gmca_serial_hex(cert, r->serial, sizeof(r->serial))) != 0)
                return gmca_error_set(e, rc, "certificate: serial");
        r->ca_id = ca_id;
        if ((rc = gmca_dn_format(X509_get_subject_name(cert), r->subject, sizeof(r->subject), e)) !=
            0)
                return rc;
        gmca_strlcpy(r->profile, profile, sizeof(r->profile));
        {
                struct tm tm;

                if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) != 1)
                        return gmca_error_set(e, GMCA_ERR_INTERNAL, "certificate: notBefore");
                r->not_before = timegm(&tm);
                if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
                        return gmca_error_set(e, GMCA_ERR_INTERNAL, "certificate: notAfter");
                r->not_after = timegm(&tm);
        }
        r->issued_at = gmca_now();
        r->status = GMCA_CERT_VALID;
        r->reason = -1;
        r->request_id = request_id;
        if ((rc = gmca_cert_fingerprint(cert, r->fingerprint, e)) != 0)
                return rc;
        return ca_cert_der(cert, &r->der, &r->der_len, e);
}

char *ca_detail_json(json_t *obj)
{
        char *s = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        json_decref(obj);
        return s;
}

/* ---- init ---- */

struct init_ca {
        const char *name;
        X509_NAME *dn;
        unsigned index; /* device key index */
        EVP_PKEY *pub;  /* from the device */
        X509 *cert;
        struct gmca_profile *prof;
        struct gmca_device_signer ds;
};

/* Generate the CA's key in the device, unlock it and make its certificate. */
static int init_build(struct gmca_device *dev, const uint8_t *keypin, const struct ca_config *cfg,
                      struct init_ca *ca, int days, const struct init_ca *issuer,
                      struct gmca_error *e)
{
        struct gmca_cert_template t;
        struct tmpl_urls u;
        time_t now = gmca_now();
        int rc;

        if ((rc = gmca_profile_check(ca->prof, ca->dn, NULL, days, e)) != 0)
                return rc;
        if ((rc = gmca_device_generate_key(dev, ca->index, keypin, KEYPIN_LEN, e)) != 0 ||
            (rc = gmca_device_unlock(dev, ca->index, keypin, KEYPIN_LEN, e)) != 0)
                return rc;
        if ((ca->pub = gmca_device_public_key(dev, ca->index, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_CRYPTO;
        if ((rc = gmca_device_signer_init(&ca->ds, dev, ca->index, ca->pub, ca->prof->sm2_id, e)) !=
            0)
                return rc;
        memset(&t, 0, sizeof(t));
        memset(&u, 0, sizeof(u));
        if ((rc = ca_fill_template(&t, &u, cfg, ca->prof, issuer ? issuer->name : NULL, e)) != 0)
                return rc;
        if ((rc = gmca_serial_random(t.serial, e)) != 0)
                return rc;
        t.subject = ca->dn;
        t.pubkey = ca->pub;
        t.issuer = issuer ? issuer->cert : NULL;
        t.issuer_key = issuer ? issuer->pub : ca->pub;
        t.signer = issuer ? &issuer->ds.base : &ca->ds.base;
        t.sm2_id = issuer ? issuer->prof->sm2_id : ca->prof->sm2_id;
        t.not_before = now;
        t.not_after = now + (time_t)(days > 0 ? days : ca->prof->validity_days) * 86400;
        /* An operational CA never outlives its root (CPS §6.8 rule 1). */
        if (issuer != NULL && (rc = ca_within_issuer(issuer->name, ca_cert_not_after(issuer->cert),
                                                     t.not_after, e)) != 0)
                return rc;
        if ((ca->cert = gmca_cert_build(&t, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_INTERNAL;
        return 0;
}

/* Inside a transaction: the CA, its certificate and their audit records. */
int ca_record_new(struct gmca_store *s, const char *name, X509 *cert, const char *profile,
                  const char *sm2_id, unsigned index, int64_t parent_id, const char *actor,
                  const char *device, int64_t *id, struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        struct gmca_cert_rec cr;
        struct gmca_audit_event ev;
        char *detail = NULL;
        int rc;

        memset(&rec, 0, sizeof(rec));
        gmca_strlcpy(rec.name, name, sizeof(rec.name));
        rec.parent_id = parent_id;
        if ((rc = gmca_dn_format(X509_get_subject_name(cert), rec.subject, sizeof(rec.subject),
                                 e)) != 0)
                return rc;
        snprintf(rec.key_file, sizeof(rec.key_file), KEY_REF_PREFIX "%u", index);
        gmca_strlcpy(rec.sm2_id, sm2_id, sizeof(rec.sm2_id));
        rec.created = gmca_now();
        rec.state_time = rec.created;
        if ((rc = ca_cert_der(cert, &rec.cert_der, &rec.cert_len, e)) != 0)
                return rc;
        rc = gmca_store_ca_insert(s, &rec, e);
        *id = rec.id;
        gmca_ca_rec_clear(&rec);
        if (rc != 0)
                return rc;
        if ((rc = ca_cert_record(cert, parent_id ? parent_id : *id, profile, 0, &cr, e)) != 0) {
                gmca_cert_rec_clear(&cr);
                return rc;
        }
        rc = gmca_store_cert_insert(s, &cr, e);
        if (rc == 0) {
                detail = ca_detail_json(json_pack("{s:s, s:s, s:s, s:i, s:s}", "ca", name,
                                                  "algorithm", "SM2", "fingerprint", cr.fingerprint,
                                                  "index", (int)index, "device", device));
                ev = (struct gmca_audit_event){GMCA_EV_KEY_GENERATE, actor, 1, name, detail};
                rc = gmca_audit_append(s, &ev, e);
                free(detail);
        }
        if (rc == 0) {
                detail = ca_detail_json(json_pack("{s:s, s:s, s:s, s:s}", "ca", name, "subject",
                                                  cr.subject, "profile", profile, "issuer",
                                                  parent_id ? "parent" : "self"));
                ev = (struct gmca_audit_event){GMCA_EV_CERT_ISSUE, actor, 1, cr.serial, detail};
                rc = gmca_audit_append(s, &ev, e);
                free(detail);
        }
        gmca_cert_rec_clear(&cr);
        return rc;
}

static int init_config(const struct gmca_init_params *p, struct ca_config *cfg, const char *sub,
                       struct gmca_error *e)
{
        config_defaults(cfg);
        gmca_strlcpy(cfg->default_ca, sub, sizeof(cfg->default_ca));
        if (p->base_url != NULL) {
                if (strlen(p->base_url) >= 256 || strncmp(p->base_url, "http", 4) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "init: base URL must be http(s)://..., < 256 bytes");
                gmca_strlcpy(cfg->base_url, p->base_url, sizeof(cfg->base_url));
                /* strip one trailing slash so that URLs join cleanly */
                if (cfg->base_url[strlen(cfg->base_url) - 1] == '/')
                        cfg->base_url[strlen(cfg->base_url) - 1] = '\0';
                if (ca_pathf(cfg->cps_uri, sizeof(cfg->cps_uri), e, "%s/cps", cfg->base_url) != 0)
                        return GMCA_ERR_INVALID;
        }
        if (p->policy_oid != NULL) {
                ASN1_OBJECT *o = OBJ_txt2obj(p->policy_oid, 1);

                ASN1_OBJECT_free(o);
                if (o == NULL || strlen(p->policy_oid) >= sizeof(cfg->policy_oid)) {
                        gmca_ossl_clear();
                        return gmca_error_set(e, GMCA_ERR_INVALID, "init: bad policy OID %s",
                                              p->policy_oid);
                }
                gmca_strlcpy(cfg->policy_oid, p->policy_oid, sizeof(cfg->policy_oid));
        }
        if (p->cps_uri != NULL) {
                if (strlen(p->cps_uri) >= sizeof(cfg->cps_uri))
                        return gmca_error_set(e, GMCA_ERR_INVALID, "init: CPS URI too long");
                gmca_strlcpy(cfg->cps_uri, p->cps_uri, sizeof(cfg->cps_uri));
        }
        if (p->database != NULL) {
                if (gmca_store_uri_check(p->database, e) != 0)
                        return GMCA_ERR_INVALID;
                gmca_strlcpy(cfg->database, p->database, sizeof(cfg->database));
        }
        if (p->front_database != NULL) {
                if (p->database == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "init: --front-db needs the store on PostgreSQL "
                                              "(--db postgresql://...): a SQLite store is one file "
                                              "that the front and the CA engine both write");
                if (gmca_store_uri_check(p->front_database, e) != 0)
                        return GMCA_ERR_INVALID;
                gmca_strlcpy(cfg->front_database, p->front_database, sizeof(cfg->front_database));
        }
        if (p->device_library != NULL && p->device_library[0] != '\0') {
                if (p->device_library[0] != '/' ||
                    strlen(p->device_library) >= sizeof(cfg->device_library))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "init: the device library must be an absolute path");
                gmca_strlcpy(cfg->device_library, p->device_library, sizeof(cfg->device_library));
        }
        if (p->device_config != NULL && p->device_config[0] != '\0') {
                if (strlen(p->device_config) >= sizeof(cfg->device_config))
                        return gmca_error_set(e, GMCA_ERR_INVALID, "init: device config too long");
                gmca_strlcpy(cfg->device_config, p->device_config, sizeof(cfg->device_config));
        }
        return 0;
}

static void unlink_shares(const struct gmca_init_params *p)
{
        for (size_t i = 0; i < p->ncustodians; i++)
                if (p->custodians[i].path != NULL)
                        unlink(p->custodians[i].path);
}

/*
 * A PostgreSQL database outlives the state directory's temporary build (an
 * interrupted init rolls back its one transaction, but a finished one stays):
 * init refuses a database that already holds a CA, which is another CA's.
 * Called inside the init transaction, so two inits cannot both pass.
 */
static int count_ca(const struct gmca_ca_rec *r, void *arg)
{
        (void)r;
        (*(int *)arg)++;
        return 0;
}

static int init_db_empty(struct gmca_store *s, struct gmca_error *e)
{
        int n = 0, rc;

        if ((rc = gmca_store_ca_list(s, count_ca, &n, e)) != 0)
                return rc;
        if (n > 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "init: the database already holds a CA; refusing to share it "
                                      "(give an empty database)");
        return 0;
}

/* Inside the init transaction: the front's database role, if one is named (store_roles.h). */
static int init_front_role(struct gmca_store *s, const struct ca_config *cfg, const char *actor,
                           struct gmca_error *e)
{
        char role[GMCA_STORE_ROLE_MAX];
        struct gmca_audit_event ev;
        char *detail;
        int rc;

        if (cfg->front_database[0] == '\0')
                return 0;
        if ((rc = gmca_store_front_role_set(s, cfg->front_database, role, e)) != 0)
                return rc;
        detail = ca_detail_json(json_pack("{s:s}", "front_role", role));
        ev = (struct gmca_audit_event){GMCA_EV_DB_FRONT_ROLE, actor, 1, "database", detail};
        rc = gmca_audit_append(s, &ev, e);
        free(detail);
        return rc;
}

int gmca_ca_init(const char *dir, const struct gmca_init_params *p, struct gmca_error *e)
{
        struct ca_config cfg;
        struct init_ca root, sub;
        struct gmca_store *s = NULL;
        struct gmca_device *dev = NULL;
        struct gmca_device_conf dc;
        struct ca_custody cm;
        char tmp[PATH_MAX], path[PATH_MAX], sub_path[PATH_MAX], devconf[PATH_MAX];
        const char *actor = p->actor ? p->actor : "unknown";
        int64_t root_id = 0, sub_id = 0;
        int rc = GMCA_ERR_INTERNAL, made_tmp = 0, state, shares_written = 0;
        struct gmca_audit_event ev;
        char *detail = NULL;
        uint8_t *secrets = NULL; /* master key, then key PIN */
        json_t *names = NULL;

        memset(&root, 0, sizeof(root));
        memset(&sub, 0, sizeof(sub));
        memset(&cm, 0, sizeof(cm));
        root.name = p->root_name ? p->root_name : "root";
        sub.name = p->sub_name ? p->sub_name : "sub";
        root.index = 1;
        sub.index = 2;
        if (!ca_valid_name(root.name) || !ca_valid_name(sub.name) ||
            strcmp(root.name, sub.name) == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "init: CA names must be distinct, [a-z0-9_-]{1,63}");
        if (p->root_dn == NULL || p->sub_dn == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "init: root and sub DNs are required");
        if (p->profiles_src == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "init: no profile directory");
        cm.set.count = (unsigned)p->ncustodians;
        cm.set.threshold = p->threshold ? p->threshold : 3;
        if (p->custodians == NULL || p->ncustodians < 2 || p->ncustodians > GMCA_CUSTODY_MAX ||
            cm.set.threshold < 2 || cm.set.threshold > cm.set.count)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "init: CPS §7.2.1.1: the key ceremony needs custodians "
                                      "(%u of %zu given; at least 2 of 2)",
                                      cm.set.threshold, p->ncustodians);
        for (size_t i = 0; i < p->ncustodians; i++) {
                if (p->custodians[i].name == NULL || p->custodians[i].path == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "init: custodian %zu lacks a name or share file",
                                              i + 1);
                if ((rc = gmca_pin_check(p->custodians[i].pin, p->custodians[i].pinlen,
                                         p->custodians[i].name, e)) != 0)
                        return rc;
                if (access(p->custodians[i].path, F_OK) == 0)
                        return gmca_error_set(e, GMCA_ERR_EXISTS,
                                              "init: share file %s exists; refusing to overwrite",
                                              p->custodians[i].path);
        }
        if ((state = ca_dir_free(dir)) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "init: %s exists and is not empty; refusing to overwrite",
                                      dir);
        if ((rc = init_config(p, &cfg, sub.name, e)) != 0)
                return rc;

        /* Build everything in a sibling directory, then rename it into place. */
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.init-XXXXXX", dir) >= sizeof(tmp))
                return gmca_error_set(e, GMCA_ERR_INVALID, "init: path too long");
        if (mkdtemp(tmp) == NULL)
                return gmca_error_set(e, GMCA_ERR_IO, "init: %s: %s", tmp, strerror(errno));
        made_tmp = 1;
        if (chmod(tmp, 0700) != 0)
                goto io_fail;
        static const char *subdirs[] = {"keys", "certs", "crl", "profiles", "run"};
        for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
                if ((rc = ca_path_join(path, sizeof(path), tmp, subdirs[i], e)) != 0)
                        goto out;
                if (mkdir(path, i == 0 || i == 4 ? 0700 : 0755) != 0)
                        goto io_fail;
        }
        if ((rc = ca_path_join(path, sizeof(path), tmp, "profiles", e)) != 0 ||
            (rc = copy_profiles(p->profiles_src, path, e)) != 0)
                goto out;
        if ((root.prof = gmca_profile_find(path, "root-ca", e)) == NULL ||
            (sub.prof = gmca_profile_find(path, "sub-ca", e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_NOTFOUND;
                goto out;
        }
        if ((root.dn = gmca_dn_parse(p->root_dn, e)) == NULL ||
            (sub.dn = gmca_dn_parse(p->sub_dn, e)) == NULL) {
                rc = GMCA_ERR_INVALID;
                goto out;
        }

        /* The device, the secrets and the keys. */
        if ((rc = ca_device_conf(tmp, &cfg, devconf, sizeof(devconf), &dc, e)) != 0)
                goto out;
        if ((dev = gmca_device_open(&dc, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_IO;
                goto out;
        }
        if (!CRYPTO_secure_malloc_initialized())
                (void)CRYPTO_secure_malloc_init(1 << 16, 32);
        if ((secrets = OPENSSL_secure_zalloc(GMCA_MASTER_LEN + KEYPIN_LEN)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of secure memory");
                goto out;
        }
        if ((rc = gmca_device_random(dev, secrets, GMCA_MASTER_LEN + KEYPIN_LEN, e)) != 0 ||
            (rc = gmca_device_random(dev, cm.set.installation, GMCA_CUSTODY_ID_LEN, e)) != 0 ||
            (rc = gmca_device_random(dev, cm.set.set_id, GMCA_CUSTODY_ID_LEN, e)) != 0)
                goto out;
        if ((rc = init_build(dev, secrets + GMCA_MASTER_LEN, &cfg, &root, p->root_days, NULL, e)) !=
                0 ||
            (rc = init_build(dev, secrets + GMCA_MASTER_LEN, &cfg, &sub, p->sub_days, &root, e)) !=
                0)
                goto out;
        cm.created = gmca_now();
        if ((names = json_array()) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < p->ncustodians; i++) {
                gmca_strlcpy(cm.names[i], p->custodians[i].name, sizeof(cm.names[i]));
                json_array_append_new(names, json_string(p->custodians[i].name));
        }
        if ((rc = ca_custody_wrap(&cm, secrets, secrets + GMCA_MASTER_LEN, e)) != 0)
                goto out;

        if ((rc = ca_pathf(path, sizeof(path), e, "%s/certs/%s.pem", tmp, root.name)) != 0 ||
            (rc = ca_pathf(sub_path, sizeof(sub_path), e, "%s/certs/%s.pem", tmp, sub.name)) != 0)
                goto out;
        if ((rc = ca_write_pem_cert(path, root.cert, e)) != 0 ||
            (rc = ca_write_pem_cert(sub_path, sub.cert, e)) != 0 ||
            (rc = config_write(tmp, &cfg, e)) != 0)
                goto out;

        if (cfg.database[0] != '\0')
                gmca_strlcpy(path, cfg.database, sizeof(path));
        else if ((rc = ca_path_join(path, sizeof(path), tmp, GMCA_DB_FILE, e)) != 0)
                goto out;
        if ((s = gmca_store_open(path, e)) == NULL) {
                rc = GMCA_ERR_DB;
                goto out;
        }
        if ((rc = gmca_store_begin(s, e)) != 0 || (rc = init_db_empty(s, e)) != 0 ||
            (rc = init_front_role(s, &cfg, actor, e)) != 0) {
                gmca_store_rollback(s);
                goto out;
        }
        if ((rc = ca_record_new(s, root.name, root.cert, root.prof->name, root.prof->sm2_id,
                                root.index, 0, actor, gmca_device_description(dev), &root_id, e)) !=
                0 ||
            (rc = ca_record_new(s, sub.name, sub.cert, sub.prof->name, sub.prof->sm2_id, sub.index,
                                root_id, actor, gmca_device_description(dev), &sub_id, e)) != 0 ||
            (rc = ca_custody_store(s, &cm, e)) != 0) {
                gmca_store_rollback(s);
                goto out;
        }
        detail = ca_detail_json(json_pack("{s:O, s:i, s:i, s:s}", "custodians", names, "threshold",
                                          (int)cm.set.threshold, "count", (int)cm.set.count,
                                          "device", gmca_device_description(dev)));
        ev = (struct gmca_audit_event){GMCA_EV_KEY_CEREMONY, actor, 1, "custody", detail};
        if ((rc = gmca_audit_append(s, &ev, e)) != 0) {
                gmca_store_rollback(s);
                goto out;
        }
        free(detail);
        detail =
            ca_detail_json(json_pack("{s:s, s:s, s:s, s:s}", "root", root.name, "sub", sub.name,
                                     "base_url", cfg.base_url, "policy", cfg.policy_oid));
        ev = (struct gmca_audit_event){GMCA_EV_CA_INIT, actor, 1, sub.name, detail};
        if ((rc = gmca_audit_append(s, &ev, e)) != 0) {
                gmca_store_rollback(s);
                goto out;
        }
        /* The shares go out last: nothing else can fail after them but the commit. */
        if ((rc = gmca_custody_split(secrets, &cm.set, p->custodians, p->ncustodians, e)) != 0) {
                gmca_store_rollback(s);
                goto out;
        }
        shares_written = 1;
        if ((rc = gmca_store_commit(s, e)) != 0) {
                gmca_store_rollback(s);
                goto out;
        }
        gmca_store_close(s);
        s = NULL;
        gmca_device_close(dev);
        dev = NULL;

        if (state == 2 && rmdir(dir) != 0)
                goto io_fail;
        if (rename(tmp, dir) != 0)
                goto io_fail;
        made_tmp = 0;
        rc = 0;
        goto out;
io_fail:
        rc = gmca_error_set(e, GMCA_ERR_IO, "init: %s", strerror(errno));
out:
        if (rc != 0 && shares_written)
                unlink_shares(p);
        free(detail);
        json_decref(names);
        gmca_store_close(s);
        gmca_device_close(dev);
        OPENSSL_secure_clear_free(secrets, GMCA_MASTER_LEN + KEYPIN_LEN);
        if (made_tmp)
                ca_rm_tree(tmp);
        EVP_PKEY_free(root.pub);
        EVP_PKEY_free(sub.pub);
        X509_free(root.cert);
        X509_free(sub.cert);
        X509_NAME_free(root.dn);
        X509_NAME_free(sub.dn);
        gmca_profile_free(root.prof);
        gmca_profile_free(sub.prof);
        return rc;
}

/* ---- context ---- */

static int store_uri(const char *dir, int front, char *out, size_t len, struct gmca_error *e)
{
        struct ca_config *cfg;
        int rc;

        /* A ca_config is a few kilobytes: not on the stacks of the front's threads. */
        if ((cfg = malloc(sizeof(*cfg))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if ((rc = config_load(dir, cfg, e)) == 0) {
                const char *uri =
                    front && cfg->front_database[0] != '\0' ? cfg->front_database : cfg->database;

                if (uri[0] != '\0') {
                        if (strlen(uri) >= len)
                                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                                    "%s: database URI too long", dir);
                        else
                                gmca_strlcpy(out, uri, len);
                } else {
                        rc = ca_pathf(out, len, e, "%s/%s", dir, GMCA_DB_FILE);
                }
        }
        free(cfg);
        return rc;
}

int gmca_ca_store_uri(const char *dir, char *out, size_t len, struct gmca_error *e)
{
        return store_uri(dir, 0, out, len, e);
}

int gmca_ca_front_store_uri(const char *dir, char *out, size_t len, struct gmca_error *e)
{
        return store_uri(dir, 1, out, len, e);
}

static struct gmca_ctx *ctx_open(const char *dir, const char *actor, int front,
                                 struct gmca_error *e)
{
        struct gmca_ctx *c;
        char path[PATH_MAX];

        if ((c = calloc(1, sizeof(*c))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (strlen(dir) >= sizeof(c->dir) - 64) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", dir);
                goto fail;
        }
        gmca_strlcpy(c->dir, dir, sizeof(c->dir));
        gmca_strlcpy(c->actor, actor != NULL ? actor : "unknown", sizeof(c->actor));
        if (config_load(dir, &c->cfg, e) != 0)
                goto fail;
        if (store_uri(dir, front, path, sizeof(path), e) != 0)
                goto fail;
        /* gmca_store_open would create a missing SQLite file: not here. */
        if (!gmca_store_uri_is_pg(path) && access(path, F_OK) != 0) {
                gmca_error_set(e, GMCA_ERR_NOTFOUND, "%s: missing database %s", dir, GMCA_DB_FILE);
                goto fail;
        }
        if ((c->store = gmca_store_open(path, e)) == NULL)
                goto fail;
        {
                /* A rollover or compromise names the CA that issues now. */
                char name[GMCA_NAME_MAX];
                struct gmca_error ignored = {0};

                if (gmca_store_meta_get(c->store, META_DEFAULT_CA, name, sizeof(name), &ignored) ==
                        0 &&
                    ca_valid_name(name))
                        gmca_strlcpy(c->cfg.default_ca, name, sizeof(c->cfg.default_ca));
        }
        return c;
fail:
        gmca_ctx_close(c);
        return NULL;
}

struct gmca_ctx *gmca_ctx_open(const char *dir, const char *actor, struct gmca_error *e)
{
        return ctx_open(dir, actor, 0, e);
}

struct gmca_ctx *gmca_ctx_open_front(const char *dir, const char *actor, struct gmca_error *e)
{
        return ctx_open(dir, actor, 1, e);
}

/* gmca.json with "front_database" set to uri, replaced atomically. */
static int config_set_front(const char *dir, const char *uri, struct gmca_error *e)
{
        char path[PATH_MAX], *text = NULL;
        uint8_t *buf = NULL;
        json_t *root = NULL;
        size_t len;
        int rc;

        if ((rc = ca_path_join(path, sizeof(path), dir, GMCA_CONFIG_FILE, e)) != 0 ||
            (rc = gmca_read_file(path, CONFIG_MAX, &buf, &len, e)) != 0)
                return rc;
        root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
        free(buf);
        if (!json_is_object(root)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a JSON object", path);
                goto out;
        }
        json_object_set_new(root, "front_database", json_string(uri));
        if ((text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "config: out of memory");
                goto out;
        }
        rc = gmca_write_file_atomic(path, text, strlen(text), 0644, e);
out:
        free(text);
        json_decref(root);
        return rc;
}

int gmca_ca_front_role(struct gmca_ctx *c, const char *front_uri, struct gmca_error *e)
{
        char role[GMCA_STORE_ROLE_MAX];
        struct gmca_audit_event ev;
        char *detail = NULL;
        int rc;

        if (c->cfg.database[0] == '\0') {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "--front-db: a separate front role needs the store on "
                                    "PostgreSQL; this CA's store is SQLite (%s), one file that "
                                    "the front and the CA engine both write",
                                    GMCA_DB_FILE);
                return ca_reject(c, GMCA_EV_DB_FRONT_ROLE, "database", rc, e);
        }
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return ca_reject(c, GMCA_EV_DB_FRONT_ROLE, "database", rc, e);
        if ((rc = gmca_store_front_role_set(c->store, front_uri, role, e)) != 0)
                goto fail;
        detail = ca_detail_json(json_pack("{s:s}", "front_role", role));
        ev = (struct gmca_audit_event){GMCA_EV_DB_FRONT_ROLE, c->actor, 1, "database", detail};
        if ((rc = gmca_audit_append(c->store, &ev, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0)
                goto fail;
        free(detail);
        if ((rc = config_set_front(c->dir, front_uri, e)) != 0)
                return rc;
        gmca_strlcpy(c->cfg.front_database, front_uri, sizeof(c->cfg.front_database));
        return 0;
fail:
        free(detail);
        gmca_store_rollback(c->store);
        return ca_reject(c, GMCA_EV_DB_FRONT_ROLE, "database", rc, e);
}

void gmca_ctx_close(struct gmca_ctx *c)
{
        if (c == NULL)
                return;
        ca_ceremony_end(c);
        gmca_km_link_close(c->km);
        c->km = NULL;
        for (size_t i = 0; i < c->ncas; i++) {
                X509_free(c->cas[i].cert);
                gmca_ca_rec_clear(&c->cas[i].rec);
        }
        for (size_t i = 0; i < c->nprofiles; i++)
                gmca_profile_free(c->profiles[i]);
        gmca_store_close(c->store);
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
}

struct gmca_store *gmca_ctx_store(struct gmca_ctx *c)
{
        return c->store;
}

const char *gmca_ctx_dir(const struct gmca_ctx *c)
{
        return c->dir;
}

const char *gmca_ctx_default_ca(const struct gmca_ctx *c)
{
        return c->cfg.default_ca;
}

struct ca_slot *ca_find(struct gmca_ctx *c, const char *name, struct gmca_error *e)
{
        struct ca_slot *slot;
        const uint8_t *p;

        if (name == NULL)
                name = c->cfg.default_ca;
        for (size_t i = 0; i < c->ncas; i++)
                if (strcmp(c->cas[i].rec.name, name) == 0)
                        return &c->cas[i];
        if (!ca_valid_name(name)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "CA name must be [a-z0-9_-]{1,63}");
                return NULL;
        }
        if (c->ncas == MAX_CAS) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "too many CAs open");
                return NULL;
        }
        slot = &c->cas[c->ncas];
        memset(slot, 0, sizeof(*slot));
        if (gmca_store_ca_get(c->store, name, &slot->rec, e) != 0) {
                gmca_ca_rec_clear(&slot->rec);
                return NULL;
        }
        p = slot->rec.cert_der;
        slot->cert = d2i_X509(NULL, &p, (long)slot->rec.cert_len);
        if (slot->cert == NULL || p != slot->rec.cert_der + slot->rec.cert_len) {
                gmca_error_ossl(e, GMCA_ERR_TAMPER, "CA %s: stored certificate does not parse",
                                name);
                X509_free(slot->cert);
                gmca_ca_rec_clear(&slot->rec);
                return NULL;
        }
        c->ncas++;
        return slot;
}

/* 1 if the file behind a cached profile is still the one it was loaded from. */
static int same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*
 * Profiles are cached for the life of the context, but a long-lived one
 * (the CA engine) must see a template admin's change (template.h): a
 * cached profile whose file was replaced is loaded again, in place, so
 * that pointers handed out before stay valid.
 */
struct gmca_profile *gmca_ctx_profile(struct gmca_ctx *c, const char *name, struct gmca_error *e)
{
        char dir[PATH_MAX], path[PATH_MAX];
        struct gmca_profile *p;
        struct stat st;
        size_t i;
        int n;

        if (ca_pathf(dir, sizeof(dir), e, "%s/profiles", c->dir) != 0)
                return NULL;
        for (i = 0; i < c->nprofiles && strcmp(c->profiles[i]->name, name) != 0; i++)
                ;
        /* Stat before loading, so that a change in between shows up next time. */
        n = ca_valid_name(name) ? snprintf(path, sizeof(path), "%s/%s.json", dir, name) : -1;
        if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) != 0)
                memset(&st, 0, sizeof(st)); /* gmca_profile_find says what is wrong */
        else if (i < c->nprofiles && same_file(&st, &c->profile_stat[i]))
                return c->profiles[i];
        if ((p = gmca_profile_find(dir, name, e)) == NULL)
                return NULL;
        if (i < c->nprofiles) {
                *c->profiles[i] = *p;
                c->profile_stat[i] = st;
                gmca_profile_free(p);
                return c->profiles[i];
        }
        if (c->nprofiles < MAX_PROFILES) {
                c->profile_stat[c->nprofiles] = st;
                c->profiles[c->nprofiles++] = p;
        } else {
                gmca_profile_free(p);
                gmca_error_set(e, GMCA_ERR_LIMIT, "too many profiles in use");
                return NULL;
        }
        return p;
}

int ca_audit_failure_at(struct gmca_store *s, const char *actor, const char *event,
                        const char *object, const struct gmca_error *cause)
{
        struct gmca_error ignored = {0};
        struct gmca_audit_event ev;
        char *detail;

        detail = ca_detail_json(
            json_pack("{s:s, s:s}", "error", gmca_err_name(cause->code), "cause", cause->msg));
        ev = (struct gmca_audit_event){event, actor, 0, object, detail};
        int rc = gmca_audit_record(s, &ev, &ignored);
        free(detail);
        return rc;
}

int ca_audit_failure(struct gmca_ctx *c, const char *event, const char *object,
                     const struct gmca_error *cause)
{
        return ca_audit_failure_at(c->store, c->actor, event, object, cause);
}

int gmca_ctx_audit_failure(struct gmca_ctx *c, const char *event, const char *object,
                           const char *cause, struct gmca_error *e)
{
        struct gmca_error err = {0};

        gmca_error_set(&err, GMCA_ERR_INVALID, "%s", cause);
        if (ca_audit_failure(c, event, object, &err) != 0)
                return gmca_error_set(e, GMCA_ERR_DB, "audit: cannot record failure");
        return 0;
}

/*
 * Finish a failed operation: audit the rejection, and if even that fails,
 * say so, since an unaudited rejection is itself an incident.
 */
int ca_reject(struct gmca_ctx *c, const char *event, const char *object, int rc,
              struct gmca_error *e)
{
        struct gmca_error cause = {0};

        if (e != NULL && e->code != 0)
                cause = *e;
        else
                gmca_error_set(&cause, rc, "%s", gmca_err_name(rc));
        if (cause.code == 0)
                cause.code = rc;
        if (ca_audit_failure(c, event, object, &cause) != 0 && e != NULL) {
                size_t n = strlen(e->msg);

                snprintf(e->msg + n, sizeof(e->msg) - n, " [and the audit record failed]");
        }
        return rc;
}

int ca_within_issuer(const char *issuer, time_t issuer_end, time_t not_after, struct gmca_error *e)
{
        char end[32];
        struct tm tm;

        if (not_after <= issuer_end)
                return 0;
        gmtime_r(&issuer_end, &tm);
        strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return gmca_error_set(e, GMCA_ERR_POLICY,
                              "CPS §6.8 rule 1: the certificate would outlive CA %s, whose "
                              "certificate ends %s (%lld days left): ask for fewer days, or roll "
                              "the CA key over",
                              issuer, end, (long long)((issuer_end - gmca_now()) / 86400));
}

time_t ca_cert_not_after(const X509 *cert)
{
        struct tm tm;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
                return 0;
        return timegm(&tm);
}

/* ---- issue ---- */

/*
 * A certificate signed and ready to be stored: everything an issuance
 * writes, prepared outside the transaction so that the write lock is held
 * only for the inserts.
 */
struct pending {
        struct gmca_cert_rec rec;
        struct gmca_request_rec req;
        unsigned char *csr_der;
        char *detail;
        X509 *cert;
};

static void pending_clear(struct pending *p)
{
        gmca_cert_rec_clear(&p->rec);
        OPENSSL_free(p->csr_der);
        free(p->detail);
        X509_free(p->cert);
        memset(p, 0, sizeof(*p));
}

/* Check the request against its profile and sign: no store writes. */
static int issue_prepare(struct gmca_ctx *c, struct ca_slot *ca, const struct gmca_issue_req *r,
                         struct pending *pd, struct gmca_error *e)
{
        struct gmca_profile *prof;
        X509_REQ *csr = NULL;
        struct gmca_subject_info *info = NULL;
        struct gmca_cert_template t;
        struct tmpl_urls u;
        time_t now = gmca_now(), ca_end;
        int rc, n, exists = 1;

        memset(pd, 0, sizeof(*pd));
        if ((prof = gmca_ctx_profile(c, r->profile, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if (prof->ca)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "profile %s: CA certificates are made by a key ceremony "
                                      "(gmca init), not by cert issue",
                                      prof->name);
        if ((csr = gmca_csr_parse(r->csr, r->csr_len, prof->sm2_id, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        if (r->info_json != NULL &&
            (info = gmca_subject_info_parse(r->info_json, r->info_len, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        if ((rc = gmca_profile_check(prof, X509_REQ_get_subject_name(csr), info, r->days, e)) != 0)
                goto out;

        memset(&t, 0, sizeof(t));
        memset(&u, 0, sizeof(u));
        if ((rc = ca_fill_template(&t, &u, &c->cfg, prof, ca->rec.name, e)) != 0)
                goto out;
        for (int i = 0; i < SERIAL_TRIES && exists; i++) {
                char hex[GMCA_SERIAL_HEX_MAX];

                if (r->serial != NULL) {
                        memcpy(t.serial, r->serial, GMCA_SERIAL_LEN);
                        i = SERIAL_TRIES; /* agreed with the KM: that one or none */
                } else if ((rc = gmca_serial_random(t.serial, e)) != 0) {
                        goto out;
                }
                gmca_hex_upper(t.serial, GMCA_SERIAL_LEN, hex);
                if ((rc = gmca_store_serial_exists(c->store, hex, &exists, e)) != 0)
                        goto out;
        }
        if (exists) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "serial: no unique serial after %d tries",
                                    SERIAL_TRIES);
                goto out;
        }
        t.subject = X509_REQ_get_subject_name(csr);
        t.pubkey = r->km_pubkey != NULL ? r->km_pubkey : X509_REQ_get0_pubkey(csr);
        t.issuer = ca->cert;
        t.issuer_key = X509_get0_pubkey(ca->cert);
        t.signer = ca->signer;
        t.sm2_id = ca->rec.sm2_id[0] ? ca->rec.sm2_id : NULL; /* the ID the CA signs with */
        t.info = info;
        t.skip_self_check = !c->cfg.verify_after_sign;
        t.not_before = r->not_before > 0 ? (time_t)r->not_before : now;
        t.not_after = r->not_after > 0
                          ? (time_t)r->not_after
                          : now + (time_t)(r->days > 0 ? r->days : prof->validity_days) * 86400;
        if (t.not_after <= now) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "issue: the certificate would end before "
                                    "it starts");
                goto out;
        }
        /* CPS §6.8 rule 1: no certificate outlives its CA's; the CA stops issuing first. */
        ca_end = ca_cert_not_after(ca->cert);
        if (ca_end <= now) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "CA %s: certificate has expired",
                                    ca->rec.name);
                goto out;
        }
        if ((rc = ca_within_issuer(ca->rec.name, ca_end, t.not_after, e)) != 0)
                goto out;
        if ((pd->cert = gmca_cert_build(&t, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INTERNAL;
                goto out;
        }
        if ((rc = ca_cert_record(pd->cert, ca->rec.id, prof->name, 0, &pd->rec, e)) != 0)
                goto out;
        if ((n = i2d_X509_REQ(csr, &pd->csr_der)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "CSR: cannot encode");
                goto out;
        }
        pd->req.created = now;
        pd->req.ca_id = ca->rec.id;
        gmca_strlcpy(pd->req.profile, prof->name, sizeof(pd->req.profile));
        gmca_strlcpy(pd->req.subject, pd->rec.subject, sizeof(pd->req.subject));
        pd->req.status = GMCA_REQ_ISSUED;
        gmca_strlcpy(pd->req.serial, pd->rec.serial, sizeof(pd->req.serial));
        pd->req.csr_der = pd->csr_der;
        pd->req.csr_len = (size_t)n;
        pd->req.info_json = r->info_json;
        pd->detail = ca_detail_json(json_pack("{s:s, s:s, s:s, s:s, s:I}", "ca", ca->rec.name,
                                              "profile", prof->name, "subject", pd->rec.subject,
                                              "fingerprint", pd->rec.fingerprint, "not_after",
                                              (json_int_t)pd->rec.not_after));
        if (pd->detail == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        rc = 0;
out:
        if (rc != 0)
                pending_clear(pd);
        X509_REQ_free(csr);
        gmca_subject_info_free(info);
        return rc;
}

/* Inside a transaction: the request, the certificate and its audit record. */
static int issue_store(struct gmca_ctx *c, struct pending *pd, struct gmca_error *e)
{
        struct gmca_audit_event ev = {GMCA_EV_CERT_ISSUE, c->actor, 1, pd->rec.serial, pd->detail};
        int rc;

        if ((rc = gmca_store_request_insert(c->store, &pd->req, e)) != 0)
                return rc;
        pd->rec.request_id = pd->req.id; /* the certificate names its request (RA lifecycle) */
        if ((rc = gmca_store_cert_insert(c->store, &pd->rec, e)) != 0 ||
            (rc = gmca_audit_append(c->store, &ev, e)) != 0)
                return rc;
        return 0;
}

/* 1 if the CA's own certificate is on record as revoked (a store fault counts as revoked). */
static int ca_revoked(struct gmca_ctx *c, struct ca_slot *ca)
{
        char serial[GMCA_SERIAL_HEX_MAX];
        struct gmca_cert_rec cr;
        struct gmca_error ignored = {0};
        int revoked;

        memset(&cr, 0, sizeof(cr));
        if (gmca_serial_hex(ca->cert, serial, sizeof(serial)) != 0 ||
            gmca_store_cert_get(c->store, serial, &cr, &ignored) != 0)
                return 1;
        revoked = cr.status == GMCA_CERT_REVOKED;
        gmca_cert_rec_clear(&cr);
        return revoked;
}

/* The CA for a request, activated; audits and returns the refusal otherwise. */
static struct ca_slot *issuing_ca(struct gmca_ctx *c, const struct gmca_issue_req *r, int *rc,
                                  struct gmca_error *e)
{
        struct ca_slot *ca;

        if ((ca = ca_find(c, r->ca, e)) == NULL) {
                *rc = ca_reject(c, GMCA_EV_CERT_ISSUE, r->ca,
                                e && e->code ? e->code : GMCA_ERR_NOTFOUND, e);
                return NULL;
        }
        if (ca_need_signer(c, ca, 1, e) != 0) {
                *rc = ca_reject(c, GMCA_EV_CERT_ISSUE, ca->rec.name,
                                e && e->code ? e->code : GMCA_ERR_STATE, e);
                return NULL;
        }
        if (r->profile == NULL || r->csr == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "issue: profile and CSR are required");
                *rc = ca_reject(c, GMCA_EV_CERT_ISSUE, ca->rec.name, GMCA_ERR_INVALID, e);
                return NULL;
        }
        /* A key without its proof of possession is only ever the KM's, inside the CA. */
        if (r->km_pubkey != NULL || r->serial != NULL || r->not_before != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "issue: a KM key, serial or notBefore is set only by the CA");
                *rc = ca_reject(c, GMCA_EV_CERT_ISSUE, ca->rec.name, GMCA_ERR_INVALID, e);
                return NULL;
        }
        if (ca_revoked(c, ca)) {
                gmca_error_set(e, GMCA_ERR_STATE,
                               "CA %s: its own certificate is revoked; it issues no more",
                               ca->rec.name);
                *rc = ca_reject(c, GMCA_EV_CERT_ISSUE, ca->rec.name, GMCA_ERR_STATE, e);
                return NULL;
        }
        return ca;
}

/* Store one prepared certificate in a transaction of its own. */
static int issue_commit_one(struct gmca_ctx *c, struct pending *pd, struct gmca_error *e)
{
        int rc;

        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return rc;
        if ((rc = issue_store(c, pd, e)) != 0 || (rc = gmca_store_commit(c->store, e)) != 0)
                gmca_store_rollback(c->store);
        return rc;
}

int ca_issue_in_tx(struct gmca_ctx *c, const struct gmca_issue_req *r,
                   char serial[GMCA_SERIAL_HEX_MAX], X509 **out, struct gmca_error *e)
{
        struct ca_slot *ca;
        struct pending pd;
        int rc;

        if (!gmca_store_in_transaction(c->store))
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "issue: no transaction open");
        if (r->profile == NULL || r->csr == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "issue: profile and CSR are required");
        if ((ca = ca_find(c, r->ca, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if ((rc = ca_need_signer(c, ca, 1, e)) != 0)
                return rc;
        if (ca_revoked(c, ca))
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "CA %s: its own certificate is revoked; it issues no more",
                                      ca->rec.name);
        if ((rc = issue_prepare(c, ca, r, &pd, e)) != 0)
                return rc;
        if ((rc = issue_store(c, &pd, e)) != 0) {
                pending_clear(&pd);
                return rc;
        }
        gmca_strlcpy(serial, pd.rec.serial, GMCA_SERIAL_HEX_MAX);
        if (out != NULL) {
                *out = pd.cert;
                pd.cert = NULL;
        }
        pending_clear(&pd);
        return 0;
}

int gmca_ca_issue(struct gmca_ctx *c, const struct gmca_issue_req *r,
                  char serial[GMCA_SERIAL_HEX_MAX], X509 **out, struct gmca_error *e)
{
        struct ca_slot *ca;
        struct pending pd;
        int rc;

        if ((ca = issuing_ca(c, r, &rc, e)) == NULL)
                return rc;
        if ((rc = issue_prepare(c, ca, r, &pd, e)) != 0 ||
            (rc = issue_commit_one(c, &pd, e)) != 0) {
                pending_clear(&pd);
                return ca_reject(c, GMCA_EV_CERT_ISSUE, r->profile, rc, e);
        }
        gmca_strlcpy(serial, pd.rec.serial, GMCA_SERIAL_HEX_MAX);
        if (out != NULL) {
                *out = pd.cert;
                pd.cert = NULL;
        }
        pending_clear(&pd);
        return 0;
}

int gmca_ca_issue_batch(struct gmca_ctx *c, const struct gmca_issue_req *r, size_t n,
                        struct gmca_issue_result *res, struct gmca_error *e)
{
        struct pending *pd;
        unsigned char *audited;
        size_t i;
        int rc;

        if (n == 0)
                return 0;
        if (n > GMCA_ISSUE_BATCH_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "issue: at most %d requests a batch",
                                      GMCA_ISSUE_BATCH_MAX);
        pd = calloc(n, sizeof(*pd));
        audited = calloc(n, 1);
        if (pd == NULL || audited == NULL) {
                free(pd);
                free(audited);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        for (i = 0; i < n; i++) {
                struct ca_slot *ca;

                memset(&res[i], 0, sizeof(res[i]));
                if ((ca = issuing_ca(c, &r[i], &res[i].rc, &res[i].err)) == NULL) {
                        audited[i] = 1; /* refused and audited */
                        continue;
                }
                res[i].rc = issue_prepare(c, ca, &r[i], &pd[i], &res[i].err);
        }
        /* One transaction for the batch: each certificate with its audit record. */
        if ((rc = gmca_store_begin(c->store, e)) == 0) {
                for (i = 0; i < n && rc == 0; i++) {
                        struct gmca_audit_event ev;
                        char *detail;

                        if (pd[i].cert != NULL) {
                                rc = issue_store(c, &pd[i], e);
                                continue;
                        }
                        if (res[i].rc == 0 || audited[i])
                                continue;
                        if (res[i].err.code == 0)
                                res[i].err.code = res[i].rc;
                        detail = ca_detail_json(json_pack("{s:s, s:s}", "error",
                                                          gmca_err_name(res[i].rc), "cause",
                                                          res[i].err.msg));
                        ev = (struct gmca_audit_event){GMCA_EV_CERT_ISSUE, c->actor, 0,
                                                       r[i].profile, detail};
                        rc = gmca_audit_append(c->store, &ev, e);
                        free(detail);
                }
                if (rc == 0)
                        rc = gmca_store_commit(c->store, e);
                if (rc != 0)
                        gmca_store_rollback(c->store);
        }
        if (rc != 0) {
                /* The batch failed as a whole: store what can be, one by one. */
                gmca_error_clear(e);
                for (i = 0; i < n; i++) {
                        if (audited[i])
                                continue;
                        if (pd[i].cert != NULL &&
                            (res[i].rc = issue_commit_one(c, &pd[i], &res[i].err)) != 0)
                                ca_reject(c, GMCA_EV_CERT_ISSUE, r[i].profile, res[i].rc,
                                          &res[i].err);
                        else if (pd[i].cert == NULL && res[i].rc != 0)
                                ca_reject(c, GMCA_EV_CERT_ISSUE, r[i].profile, res[i].rc,
                                          &res[i].err);
                }
        }
        for (i = 0; i < n; i++) {
                if (pd[i].cert != NULL && res[i].rc == 0) {
                        gmca_strlcpy(res[i].serial, pd[i].rec.serial, sizeof(res[i].serial));
                        res[i].cert = pd[i].cert;
                        pd[i].cert = NULL;
                }
                pending_clear(&pd[i]);
        }
        free(pd);
        free(audited);
        return 0;
}

/* ---- revoke ---- */

int gmca_serial_normalize(const char *in, char out[GMCA_SERIAL_HEX_MAX])
{
        size_t n = 0;

        if (strncmp(in, "0x", 2) == 0 || strncmp(in, "0X", 2) == 0)
                in += 2;
        for (; *in != '\0'; in++) {
                char ch = *in;

                if (ch == ':')
                        continue;
                if (ch >= 'a' && ch <= 'f')
                        ch = (char)(ch - 'a' + 'A');
                if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F')))
                        return -1;
                if (n + 1 >= GMCA_SERIAL_HEX_MAX)
                        return -1;
                out[n++] = ch;
        }
        out[n] = '\0';
        return n == 0 ? -1 : 0;
}

int gmca_ca_revoke(struct gmca_ctx *c, const char *serial_in, int reason, int64_t invalidity,
                   struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX];
        struct gmca_cert_rec rec;
        struct gmca_audit_event ev;
        struct gmca_ca_rec carec;
        char *detail = NULL;
        int rc;

        memset(&rec, 0, sizeof(rec));
        memset(&carec, 0, sizeof(carec));
        if (gmca_serial_normalize(serial_in, serial) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "revoke: serial must be 1..40 hex digits");
                return ca_reject(c, GMCA_EV_CERT_REVOKE, NULL, GMCA_ERR_INVALID, e);
        }
        if (reason < 0 || reason > 10 || reason == 7 || reason == CRL_REASON_REMOVE_FROM_CRL ||
            reason == CRL_REASON_CERTIFICATE_HOLD) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "revoke: reason %d not allowed (RFC 5280 §5.3.1; revocation here "
                               "is permanent, so no certificateHold or removeFromCRL)",
                               reason);
                return ca_reject(c, GMCA_EV_CERT_REVOKE, serial, GMCA_ERR_INVALID, e);
        }
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return ca_reject(c, GMCA_EV_CERT_REVOKE, serial, rc, e);
        if ((rc = gmca_store_cert_get(c->store, serial, &rec, e)) != 0)
                goto fail;
        if (invalidity > gmca_now()) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "revoke: invalidity date lies in the future (RFC 5280 §5.3.2)");
                goto fail;
        }
        if ((rc = gmca_store_ca_get_by_id(c->store, rec.ca_id, &carec, e)) != 0)
                goto fail;
        if (carec.parent_id == 0 && carec.cert_len == rec.der_len &&
            memcmp(carec.cert_der, rec.der, rec.der_len) == 0) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "revoke: a root certificate cannot be revoked on its own "
                                    "CRL; a root compromise is handled by CPS §6.10.3");
                goto fail;
        }
        if ((rc = gmca_store_cert_revoke(c->store, serial, gmca_now(), reason, invalidity, e)) != 0)
                goto fail;
        detail = ca_detail_json(json_pack("{s:s, s:s, s:s}", "ca", carec.name, "reason",
                                          gmca_crl_reason_name(reason), "subject", rec.subject));
        ev = (struct gmca_audit_event){GMCA_EV_CERT_REVOKE, c->actor, 1, serial, detail};
        if ((rc = gmca_audit_append(c->store, &ev, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0)
                goto fail;
        rc = 0;
        goto out;
fail:
        gmca_store_rollback(c->store);
        ca_reject(c, GMCA_EV_CERT_REVOKE, serial, rc, e);
out:
        free(detail);
        gmca_cert_rec_clear(&rec);
        gmca_ca_rec_clear(&carec);
        return rc;
}

/* ---- CRL ---- */

struct entries {
        struct gmca_crl_entry *v;
        size_t n, cap;
        int failed;
};

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* A stored serial (hex, an odd count padded with a leading zero) to bytes; 0 if malformed. */
static size_t serial_bytes(const char *hex, uint8_t out[20])
{
        size_t n = strnlen(hex, GMCA_SERIAL_HEX_MAX), odd = n % 2, len = (n + 1) / 2;

        if (n == 0 || len > 20)
                return 0;
        for (size_t i = 0; i < len; i++) {
                int hi = i == 0 && odd ? 0 : hex_digit(hex[2 * i - odd]);
                int lo = hex_digit(hex[2 * i + 1 - odd]);

                if (hi < 0 || lo < 0)
                        return 0;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return len;
}

static int collect_revoked(const struct gmca_cert_rec *r, void *arg)
{
        struct entries *es = arg;
        struct gmca_crl_entry *ent;
        void *v = es->v;

        es->failed = gmca_grow(&v, &es->cap, es->n, sizeof(*es->v), 64, SIZE_MAX / sizeof(*es->v));
        es->v = v;
        if (es->failed != 0)
                return 1;
        ent = &es->v[es->n];
        memset(ent, 0, sizeof(*ent));
        if ((ent->serial_len = serial_bytes(r->serial, ent->serial)) == 0) {
                es->failed = GMCA_ERR_TAMPER; /* the store holds only hex serials */
                return 1;
        }
        ent->revoked_at = (time_t)r->revoked_at;
        ent->reason = r->reason;
        ent->invalidity = (time_t)r->invalidity_date;
        es->n++;
        return 0;
}

int ca_publish_crl(struct gmca_ctx *c, const char *ca, int64_t number, int delta,
                   const uint8_t *der, size_t len, struct gmca_error *e)
{
        char path[PATH_MAX];
        int rc;

        if ((rc = ca_pathf(path, sizeof(path), e, "%s/crl/%s", c->dir, ca)) != 0)
                return rc;

        if (mkdir(path, 0755) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        if ((rc = ca_pathf(path, sizeof(path), e, "%s/crl/%s/%lld.crl", c->dir, ca,
                           (long long)number)) != 0)
                return rc;

        if ((rc = gmca_write_file_excl(path, der, len, 0644, e)) != 0)
                return rc;
        if ((rc = delta ? ca_pathf(path, sizeof(path), e, "%s/crl/%s/delta.crl", c->dir, ca)
                        : ca_pathf(path, sizeof(path), e, "%s/crl/%s.crl", c->dir, ca)) != 0)
                return rc;

        return gmca_write_file_atomic(path, der, len, 0644, e);
}

/*
 * A delta CRL lists what was revoked since its base was made, from a little
 * before the base's thisUpdate: a revocation stamped just before the base
 * but committed after the base read the store (another process, another
 * machine's clock) is then on the delta. An entry on both is harmless
 * (RFC 5280 §5.2.4: the relying party takes the union).
 */
#define DELTA_OVERLAP 300

/* What crl_build collects and signs: one complete or delta CRL. */
struct crl_job {
        struct ca_slot *ca;
        int64_t next_seconds; /* validity, checked by the callers */
        int delta;
        struct gmca_crl_rec base; /* a delta's base (the latest complete CRL) */
};

/* Collect the entries and sign the CRL of j into rec (rec->der owned); in a transaction. */
static int crl_build(struct gmca_ctx *c, struct crl_job *j, struct gmca_crl_rec *rec,
                     struct gmca_error *e)
{
        struct entries es = {0};
        struct gmca_crl_params p;
        char url[URL_MAX];
        time_t now = gmca_now();
        size_t n = 0;
        int rc;

        if ((rc = gmca_store_crl_next_number(c->store, j->ca->rec.id, &rec->number, e)) != 0)
                return rc;
        if (j->delta) {
                gmca_crl_rec_clear(&j->base);
                if ((rc = gmca_store_crl_latest(c->store, j->ca->rec.id, &j->base, e)) != 0)
                        return rc == GMCA_ERR_NOTFOUND
                                   ? gmca_error_set(e, GMCA_ERR_STATE,
                                                    "crl: %s has no complete CRL for a delta "
                                                    "CRL to be relative to",
                                                    j->ca->rec.name)
                                   : rc;
                rc = gmca_store_revoked_since(c->store, j->ca->rec.id,
                                              j->base.this_update - DELTA_OVERLAP, collect_revoked,
                                              &es, e);
        } else {
                rc = gmca_store_revoked_list(c->store, j->ca->rec.id, collect_revoked, &es, e);
        }
        if (es.failed) {
                rc = gmca_error_set(e, es.failed,
                                    es.failed == GMCA_ERR_TAMPER
                                        ? "crl: a revoked serial in the store is not hex"
                                        : "crl: out of memory collecting revoked certificates");
                goto out;
        }
        if (rc != 0)
                goto out;
        memset(&p, 0, sizeof(p));
        p.issuer = j->ca->cert;
        p.signer = j->ca->signer;
        p.sm2_id = j->ca->rec.sm2_id[0] ? j->ca->rec.sm2_id : NULL;
        p.number = rec->number;
        p.base_number = j->delta ? j->base.number : 0;
        if (!j->delta && c->cfg.delta_crl_minutes > 0) {
                if (ca_delta_url(&c->cfg, j->ca->rec.name, url, sizeof(url)) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_INVALID, "crl: base_url too long");
                        goto out;
                }
                p.freshest_url = url;
        }
        p.this_update = now;
        p.next_update = now + (time_t)j->next_seconds;
        p.entries = es.v;
        p.nentries = es.n;
        if ((rc = gmca_crl_build_der(&p, &rec->der, &n, e)) != 0)
                goto out;
        rec->der_len = n;
        rec->ca_id = j->ca->rec.id;
        rec->base_number = p.base_number;
        rec->this_update = p.this_update;
        rec->next_update = p.next_update;
        rec->entries = (int64_t)es.n;
out:
        /* The entries are in the DER now: a million of them are 56 MB (peak memory). */
        free(es.v);
        return rc;
}

/* Tenths of a second the engine waits for the clock to pass its last CRL's thisUpdate. */
#define PACE_STEPS 15

/*
 * At most one CRL of a kind per CA a second when the engine makes them on
 * request: one asked for in the same second as the CA's last waits for the
 * next, so no caller can burn cRLNumbers (and disk) faster than that, and
 * no two CRLs of a kind share a thisUpdate. A clock behind the last CRL is
 * not waited for (that would stop CRLs until it caught up).
 */
static int crl_pace(struct gmca_ctx *c, const struct ca_slot *ca, int delta, struct gmca_error *e)
{
        struct gmca_crl_rec last;
        int64_t made;
        int rc;

        memset(&last, 0, sizeof(last));
        rc = delta ? gmca_store_crl_latest_delta(c->store, ca->rec.id, &last, e)
                   : gmca_store_crl_latest(c->store, ca->rec.id, &last, e);
        made = last.this_update;
        gmca_crl_rec_clear(&last);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return 0;
        }
        if (rc != 0)
                return rc;
        for (int i = 0; i < PACE_STEPS && (int64_t)gmca_now() == made; i++)
                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        if ((int64_t)gmca_now() == made)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "crl: %s made a %sCRL this second; one a second at most",
                                      ca->rec.name, delta ? "delta " : "");
        return 0;
}

static int crl_generate(struct gmca_ctx *c, const char *ca_name, int64_t next_seconds, int delta,
                        struct gmca_crl_rec *out, struct gmca_error *e)
{
        struct crl_job j;
        struct gmca_crl_rec rec;
        struct gmca_audit_event ev;
        char *detail = NULL, object[GMCA_NAME_MAX + 24];
        json_t *o;
        int rc;

        memset(&rec, 0, sizeof(rec));
        memset(&j, 0, sizeof(j));
        j.next_seconds = next_seconds;
        j.delta = delta;
        if ((j.ca = ca_find(c, ca_name, e)) == NULL)
                return ca_reject(c, GMCA_EV_CRL_GENERATE, ca_name,
                                 e && e->code ? e->code : GMCA_ERR_NOTFOUND, e);
        if (ca_need_signer(c, j.ca, 0, e) != 0)
                return ca_reject(c, GMCA_EV_CRL_GENERATE, j.ca->rec.name,
                                 e && e->code ? e->code : GMCA_ERR_STATE, e);
        if (c->crl_requester != NULL && (rc = crl_pace(c, j.ca, delta, e)) != 0)
                return ca_reject(c, GMCA_EV_CRL_GENERATE, j.ca->rec.name, rc, e);
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return ca_reject(c, GMCA_EV_CRL_GENERATE, j.ca->rec.name, rc, e);
        if ((rc = crl_build(c, &j, &rec, e)) != 0)
                goto fail;
        snprintf(object, sizeof(object), "%s#%lld", j.ca->rec.name, (long long)rec.number);
        if ((o = json_pack("{s:s, s:I, s:I, s:I}", "ca", j.ca->rec.name, "number",
                           (json_int_t)rec.number, "entries", (json_int_t)rec.entries,
                           "next_update", (json_int_t)rec.next_update)) != NULL &&
            delta)
                json_object_set_new(o, "delta_of", json_integer(rec.base_number));
        if (o != NULL && c->crl_requester != NULL)
                json_object_set_new(o, "requested_by", json_string(c->crl_requester));
        detail = ca_detail_json(o);
        ev = (struct gmca_audit_event){GMCA_EV_CRL_GENERATE, c->actor, 1, object, detail};
        if ((rc = gmca_store_crl_insert(c->store, &rec, e)) != 0 ||
            (rc = gmca_audit_append(c->store, &ev, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0)
                goto fail;
        /* The store is the record; the files are its publication. */
        if ((rc = ca_publish_crl(c, j.ca->rec.name, rec.number, delta, rec.der, rec.der_len, e)) !=
            0)
                goto out;
        if (out != NULL) {
                *out = rec;
                memset(&rec, 0, sizeof(rec));
        }
        rc = 0;
        goto out;
fail:
        gmca_store_rollback(c->store);
        ca_reject(c, GMCA_EV_CRL_GENERATE, j.ca->rec.name, rc, e);
out:
        free(detail);
        gmca_crl_rec_clear(&j.base);
        gmca_crl_rec_clear(&rec);
        return rc;
}

/* The validity of a delta CRL: its interval and a quarter more, like complete CRLs. */
static int64_t delta_seconds(const struct gmca_ctx *c)
{
        int64_t interval = (int64_t)c->cfg.delta_crl_minutes * 60;

        return interval + interval / 4;
}

/*
 * A complete CRL, then (with delta CRLs configured) a fresh delta against it,
 * so the delta published never refers to an older base than the complete
 * CRL beside it.
 */
static int crl_generate_pair(struct gmca_ctx *c, const char *ca_name, int64_t next_seconds,
                             struct gmca_crl_rec *out, struct gmca_error *e)
{
        int rc;

        if ((rc = crl_generate(c, ca_name, next_seconds, 0, out, e)) != 0 ||
            c->cfg.delta_crl_minutes == 0)
                return rc;
        return crl_generate(c, ca_name, delta_seconds(c), 1, NULL, e);
}

/*
 * A context that signs through the CA engine has its CRLs made there (op
 * 'C'): it says which and when, the engine builds them from its own store,
 * so a compromised caller cannot leave a revocation out or pick the
 * validity. A context holding the keys itself (the engine's own, a
 * ceremony's) builds them here.
 */
static int crl_by_engine(const struct gmca_ctx *c)
{
        return c->engine != NULL && c->dev == NULL;
}

static void engine_crl_req(const struct gmca_ctx *c, char kind, uint32_t arg,
                           struct gmca_engine_crl_req *q)
{
        memset(q, 0, sizeof(*q));
        q->kind = kind;
        q->arg = arg;
        gmca_strlcpy(q->actor, c->actor[0] != '\0' ? c->actor : "?", sizeof(q->actor));
        for (char *p = q->actor; *p != '\0'; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* Op 'C' 'F' or 'D' for CA ca_name; *out (may be NULL) read back from the store. */
static int engine_crl_ask(struct gmca_ctx *c, const char *ca_name, char kind, uint32_t arg,
                          struct gmca_crl_rec *out, struct gmca_error *e)
{
        struct gmca_engine_crl_req q;
        struct gmca_engine_crl_res res;
        struct gmca_crl_rec rec;
        struct ca_slot *ca;
        int rc;

        /* An unknown CA is refused (and audited) here, as without an engine, */
        if ((ca = ca_find(c, ca_name, e)) == NULL)
                return ca_reject(c, GMCA_EV_CRL_GENERATE, ca_name,
                                 e && e->code ? e->code : GMCA_ERR_NOTFOUND, e);
        /* So is a key that signs nothing any more (archived, destroyed). */
        if (ca_need_signer(c, ca, 0, e) != 0)
                return ca_reject(c, GMCA_EV_CRL_GENERATE, ca->rec.name,
                                 e && e->code ? e->code : GMCA_ERR_STATE, e);
        engine_crl_req(c, kind, arg, &q);
        /* The engine audits what it makes and what it refuses. */
        if ((rc = gmca_engine_crl(c->engine, ca->rec.name, &q, &res, e)) != 0 || out == NULL)
                return rc;
        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_crl_get(c->store, ca->rec.id, res.number, &rec, e)) != 0)
                return rc;
        *out = rec;
        return 0;
}

int gmca_ca_crl_generate(struct gmca_ctx *c, const char *ca_name, int next_hours,
                         struct gmca_crl_rec *out, struct gmca_error *e)
{
        if (next_hours < 0 || next_hours > 24 * 31) {
                gmca_error_set(e, GMCA_ERR_INVALID, "crl: next update must be 1..744 hours");
                return ca_reject(c, GMCA_EV_CRL_GENERATE, ca_name ? ca_name : c->cfg.default_ca,
                                 GMCA_ERR_INVALID, e);
        }
        if (crl_by_engine(c))
                return engine_crl_ask(c, ca_name, GMCA_ENGINE_CRL_FULL, (uint32_t)next_hours, out,
                                      e);
        if (next_hours == 0)
                next_hours = c->cfg.crl_hours;
        return crl_generate_pair(c, ca_name, (int64_t)next_hours * 3600, out, e);
}

int gmca_ca_crl_generate_delta(struct gmca_ctx *c, const char *ca_name, struct gmca_crl_rec *out,
                               struct gmca_error *e)
{
        if (crl_by_engine(c))
                return engine_crl_ask(c, ca_name, GMCA_ENGINE_CRL_DELTA, 0, out, e);
        if (c->cfg.delta_crl_minutes == 0) {
                gmca_error_set(e, GMCA_ERR_STATE,
                               "crl: delta CRLs are not configured (delta_crl_minutes in %s)",
                               GMCA_CONFIG_FILE);
                return ca_reject(c, GMCA_EV_CRL_GENERATE, ca_name ? ca_name : c->cfg.default_ca,
                                 GMCA_ERR_STATE, e);
        }
        return crl_generate(c, ca_name, delta_seconds(c), 1, out, e);
}

struct crl_due {
        char names[MAX_CAS][GMCA_NAME_MAX];
        char states[MAX_CAS][16];
        size_t n;
};

static int collect_signing_ca(const struct gmca_ca_rec *r, void *arg)
{
        struct crl_due *d = arg;

        if (!ca_state_signs_crls(r->key_state) || d->n == MAX_CAS)
                return 0;
        gmca_strlcpy(d->names[d->n], r->name, sizeof(d->names[0]));
        gmca_strlcpy(d->states[d->n], r->key_state, sizeof(d->states[0]));
        d->n++;
        return 0;
}

/*
 * When the delta CRL of a CA falls due: now if it has none or its base is
 * not the latest complete CRL (base), else a quarter interval before its
 * nextUpdate.
 */
static int64_t delta_due(struct gmca_ctx *c, int64_t ca_id, int64_t base, int64_t now, int *rc,
                         struct gmca_error *e)
{
        struct gmca_crl_rec d;
        int64_t at = now;

        memset(&d, 0, sizeof(d));
        *rc = gmca_store_crl_latest_delta(c->store, ca_id, &d, e);
        if (*rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                *rc = 0;
        } else if (*rc == 0 && d.base_number == base) {
                at = d.next_update - (d.next_update - d.this_update) / 5;
        }
        gmca_crl_rec_clear(&d);
        return at;
}

/* Op 'C' 'P': the schedule's pass, run by the engine. */
static int engine_crl_pass(struct gmca_ctx *c, int64_t interval, int force, int64_t *next_due,
                           size_t *made, struct gmca_error *e)
{
        struct gmca_engine_crl_req q;
        struct gmca_engine_crl_res res;
        int rc;

        engine_crl_req(c, GMCA_ENGINE_CRL_PASS, (uint32_t)interval, &q);
        q.force = force;
        memset(&res, 0, sizeof(res));
        rc = gmca_engine_crl(c->engine, GMCA_ENGINE_CRL_ALL, &q, &res, e);
        if (next_due != NULL)
                *next_due = res.next_due;
        if (made != NULL)
                *made = res.made > 0 ? (size_t)res.made : 0;
        return rc;
}

/* A pass's interval as the engine takes it: the caller's, but no longer than crl_hours. */
static int64_t engine_interval(const struct gmca_ctx *c, uint32_t asked)
{
        int64_t cap = (int64_t)c->cfg.crl_hours * 3600;

        if (cap < 1 || cap > GMCA_CRL_INTERVAL_MAX)
                cap = GMCA_CRL_INTERVAL_MAX;
        return asked == 0 || (int64_t)asked > cap ? cap : (int64_t)asked;
}

/*
 * The engine reads what CRLs depend on (crl_hours, delta_crl_minutes,
 * base_url) from the configuration again before it makes any, as the CLI
 * did when it made them: an administrator's change applies without a new
 * activation. A configuration that does not load stops CRLs, with the cause.
 */
static int crl_config_reload(struct gmca_ctx *c, struct gmca_error *e)
{
        struct ca_config fresh;
        int rc;

        if ((rc = config_load(c->dir, &fresh, e)) != 0)
                return rc;
        c->cfg.crl_hours = fresh.crl_hours;
        c->cfg.delta_crl_minutes = fresh.delta_crl_minutes;
        memcpy(c->cfg.base_url, fresh.base_url, sizeof(c->cfg.base_url));
        return 0;
}

int ca_engine_crl(void *arg, const char *ca, const struct gmca_engine_crl_req *q,
                  struct gmca_engine_crl_res *res, struct gmca_error *e)
{
        struct gmca_ctx *c = arg;
        struct gmca_crl_rec rec;
        char actor[GMCA_ACTOR_MAX];
        size_t made = 0;
        int rc;

        memset(&rec, 0, sizeof(rec));
        if ((rc = crl_config_reload(c, e)) != 0)
                return rc;
        memcpy(actor, c->actor, sizeof(actor));
        gmca_strlcpy(c->actor, "engine", sizeof(c->actor));
        c->crl_requester = q->actor;
        switch (q->kind) {
        case GMCA_ENGINE_CRL_FULL:
                rc = gmca_ca_crl_generate(c, ca, (int)q->arg, &rec, e);
                break;
        case GMCA_ENGINE_CRL_DELTA:
                rc = gmca_ca_crl_generate_delta(c, ca, &rec, e);
                break;
        case GMCA_ENGINE_CRL_PASS:
                rc = gmca_ca_crl_refresh(c, engine_interval(c, q->arg), q->force, &res->next_due,
                                         &made, e);
                res->made = (int64_t)made;
                break;
        default:
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "crl: request of kind 0x%02x",
                                    (unsigned char)q->kind);
        }
        if (rc == 0 && q->kind != GMCA_ENGINE_CRL_PASS) {
                res->number = rec.number;
                res->base_number = rec.base_number;
                res->this_update = rec.this_update;
                res->next_update = rec.next_update;
                res->entries = rec.entries;
        }
        gmca_crl_rec_clear(&rec);
        c->crl_requester = NULL;
        memcpy(c->actor, actor, sizeof(actor));
        return rc;
}

int gmca_ca_crl_refresh(struct gmca_ctx *c, int64_t interval, int force, int64_t *next_due,
                        size_t *made, struct gmca_error *e)
{
        struct crl_due d;
        struct gmca_error ce;
        int64_t now = (int64_t)gmca_now(), due = INT64_MAX, margin;
        size_t count = 0;
        int rc, first = 0;

        if (interval < 0 || interval > GMCA_CRL_INTERVAL_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "crl: the interval must be 1 s .. 744 hours (CPS §3.9.10)");
        if (crl_by_engine(c))
                return engine_crl_pass(c, interval, force, next_due, made, e);
        if (interval == 0)
                interval = (int64_t)c->cfg.crl_hours * 3600;
        if (interval < 1 || interval > GMCA_CRL_INTERVAL_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "crl: the interval must be 1 s .. 744 hours (CPS §3.9.10)");
        margin = interval / 4;
        memset(&d, 0, sizeof(d));
        if ((rc = gmca_store_ca_list(c->store, collect_signing_ca, &d, e)) != 0)
                return rc;
        for (size_t i = 0; i < d.n; i++) {
                struct gmca_crl_rec latest;
                struct ca_slot *ca;
                int64_t at = now;

                memset(&latest, 0, sizeof(latest));
                memset(&ce, 0, sizeof(ce));
                /* The slot may be older than a rollover or compromise: take today's state. */
                if ((ca = ca_find(c, d.names[i], &ce)) != NULL)
                        gmca_strlcpy(ca->rec.key_state, d.states[i], sizeof(ca->rec.key_state));
                if (ca == NULL) {
                        rc = ce.code ? ce.code : GMCA_ERR_INTERNAL;
                } else if ((rc = gmca_store_crl_latest(c->store, ca->rec.id, &latest, &ce)) ==
                           GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(&ce);
                        rc = 0;
                        at = now;
                } else if (rc == 0) {
                        at = latest.next_update - margin;
                }
                if (rc == 0 && (force || at <= now)) {
                        if ((rc = crl_generate_pair(c, d.names[i], interval + margin, NULL, &ce)) ==
                            0) {
                                count++;
                                at = now + interval;
                        }
                } else if (rc == 0 && c->cfg.delta_crl_minutes > 0) {
                        int64_t at_delta = delta_due(c, ca->rec.id, latest.number, now, &rc, &ce);

                        if (rc == 0 && at_delta <= now &&
                            (rc = crl_generate(c, d.names[i], delta_seconds(c), 1, NULL, &ce)) ==
                                0) {
                                count++;
                                at_delta = now + (int64_t)c->cfg.delta_crl_minutes * 60;
                        }
                        if (at_delta < at)
                                at = at_delta;
                }
                gmca_crl_rec_clear(&latest);
                if (rc != 0) {
                        if (first == 0) {
                                first = rc;
                                if (e != NULL)
                                        *e = ce;
                        }
                        continue;
                }
                if (at < due)
                        due = at;
        }
        if (next_due != NULL)
                *next_due = due;
        if (made != NULL)
                *made = count;
        return first;
}
