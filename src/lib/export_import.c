/*
 * export_import: the successor's side of export.h. Nothing in an export is
 * believed before three checks: the package's manifest (every entry), the
 * SM2 signature over it by the CA certificate export.json names, and that
 * certificate's path to the anchor the successor gives, at the export's
 * time; then the exported audit chain is walked record by record (each
 * hash recomputed, each link followed, the head matching export.json).
 * Only then is the history written, in a staging directory renamed into
 * place. Table and column names come from the export, so they are checked
 * to be plain identifiers before any SQL is built from them.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sqlite3.h>

#include "audit.h"
#include "backup.h"
#include "backup_internal.h"
#include "ca_internal.h"
#include "export.h"
#include "util.h"
#include "validate.h"
#include "x509.h"

#define COLS_MAX 64
#define CAS_MAX 32

struct imp {
        struct gmca_pkg pkg;
        json_t *meta;
        X509 *cas[CAS_MAX];
        char ca_names[CAS_MAX][GMCA_NAME_MAX];
        size_t ncas;
        X509 *signer;
};

static void imp_free(struct imp *m)
{
        size_t i;

        gmca_pkg_clear(&m->pkg);
        json_decref(m->meta);
        for (i = 0; i < m->ncas; i++)
                X509_free(m->cas[i]);
}

static int ident_ok(const char *s)
{
        size_t i, n = strlen(s);

        if (n == 0 || n >= GMCA_NAME_MAX)
                return 0;
        for (i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return 0;
        return 1;
}

/* {"base64": "..."} into a new buffer. */
static int unb64(json_t *v, uint8_t **out, size_t *len)
{
        const char *s = json_string_value(json_object_get(v, "base64"));
        size_t n, pad = 0;
        uint8_t *p;
        int k;

        if (s == NULL || json_object_size(v) != 1 || (n = strlen(s)) % 4 != 0)
                return -1;
        if ((p = OPENSSL_malloc(n / 4 * 3 + 1)) == NULL)
                return -1;
        if ((k = EVP_DecodeBlock(p, (const unsigned char *)s, (int)n)) < 0) {
                OPENSSL_free(p);
                return -1;
        }
        pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
        *out = p;
        *len = (size_t)k - pad;
        return 0;
}

static int meta_load(struct imp *m, struct gmca_error *e)
{
        const struct gmca_pkg_entry *x = gmca_pkg_find(&m->pkg, "export.json");
        const char *fmt;

        if (x == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "import: no export.json");
        m->meta = json_loadb((const char *)x->data, x->len, JSON_REJECT_DUPLICATES, NULL);
        fmt = json_string_value(json_object_get(m->meta, "format"));
        if (fmt == NULL || strcmp(fmt, GMCA_EXPORT_FORMAT) != 0 ||
            !json_is_string(json_object_get(m->meta, "signer")) ||
            !json_is_string(json_object_get(m->meta, "signer_sm2_id")) ||
            !json_is_integer(json_object_get(m->meta, "created")) ||
            !json_is_array(json_object_get(m->meta, "cas")) ||
            !json_is_object(json_object_get(m->meta, "tables")) ||
            !json_is_object(json_object_get(m->meta, "audit_head")))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "import: export.json is not a %s description",
                                      GMCA_EXPORT_FORMAT);
        return 0;
}

static int cas_load(struct imp *m, struct gmca_error *e)
{
        json_t *cas = json_object_get(m->meta, "cas"), *v;
        const char *signer = json_string_value(json_object_get(m->meta, "signer"));
        size_t i;

        json_array_foreach(cas, i, v)
        {
                char name[GMCA_NAME_MAX + 16];
                const struct gmca_pkg_entry *x;
                const char *s = json_string_value(v);
                if (m->ncas == CAS_MAX || s == NULL || !ca_valid_name(s))
                        return gmca_error_set(e, GMCA_ERR_INVALID, "import: bad CA list");
                snprintf(name, sizeof(name), "cas/%s.der", s);
                if ((x = gmca_pkg_find(&m->pkg, name)) == NULL ||
                    (m->cas[m->ncas] = gmca_cert_parse(x->data, x->len, e)) == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "import: %s missing or bad",
                                              name);
                gmca_strlcpy(m->ca_names[m->ncas], s, GMCA_NAME_MAX);
                if (strcmp(s, signer) == 0)
                        m->signer = m->cas[m->ncas];
                m->ncas++;
        }
        if (m->signer == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "import: the signer %s is not listed",
                                      signer);
        return 0;
}

/* The signature over the manifest, and the signer's path to anchor. */
static int check_signer(struct imp *m, X509 *anchor, struct gmca_error *e)
{
        struct gmca_vfy_opts o;
        struct gmca_vfy_result r;
        const char *id = json_string_value(json_object_get(m->meta, "signer_sm2_id"));
        int rc;

        if ((rc = gmca_sm2_verify(X509_get0_pubkey(m->signer), id, m->pkg.manifest,
                                  m->pkg.manifest_len, m->pkg.seal, m->pkg.seal_len, e)) != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "import: the export's signature does not verify under the "
                                      "certificate of CA %s",
                                      json_string_value(json_object_get(m->meta, "signer")));
        }
        memset(&o, 0, sizeof(o));
        o.anchors = &anchor;
        o.nanchors = 1;
        o.intermediates = m->cas;
        o.nintermediates = m->ncas;
        o.at = (time_t)json_integer_value(json_object_get(m->meta, "created"));
        o.revocation = GMCA_VFY_REV_NONE;
        if ((rc = gmca_validate(m->signer, &o, &r, e)) != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, rc == GMCA_ERR_VERIFY ? GMCA_ERR_VERIFY : rc,
                                      "import: the signer's certificate does not chain to the "
                                      "anchor: %s",
                                      r.msg);
        }
        return 0;
}

static int str_field(json_t *row, const char *k, char *buf, size_t len)
{
        const char *s = json_string_value(json_object_get(row, k));

        if (s == NULL || strlen(s) >= len)
                return -1;
        gmca_strlcpy(buf, s, len);
        return 0;
}

/* One exported audit row into r (detail allocated). */
static int audit_row(json_t *row, struct gmca_audit_rec *r)
{
        uint8_t *p = NULL;
        size_t n = 0;
        json_t *d = json_object_get(row, "detail");

        memset(r, 0, sizeof(*r));
        if (!json_is_integer(json_object_get(row, "seq")) ||
            !json_is_integer(json_object_get(row, "time")) ||
            !json_is_integer(json_object_get(row, "success")) ||
            str_field(row, "event", r->event, sizeof(r->event)) != 0 ||
            str_field(row, "actor", r->actor, sizeof(r->actor)) != 0 ||
            str_field(row, "object", r->object, sizeof(r->object)) != 0)
                return -1;
        r->seq = json_integer_value(json_object_get(row, "seq"));
        r->time = json_integer_value(json_object_get(row, "time"));
        r->success = (int)json_integer_value(json_object_get(row, "success"));
        if (d != NULL && !json_is_null(d) &&
            (!json_is_string(d) || (r->detail = strdup(json_string_value(d))) == NULL))
                return -1;
        if (unb64(json_object_get(row, "prev"), &p, &n) != 0 || n != GMCA_SM3_LEN)
                goto bad;
        memcpy(r->prev, p, n);
        OPENSSL_free(p);
        p = NULL;
        if (unb64(json_object_get(row, "hash"), &p, &n) != 0 || n != GMCA_SM3_LEN)
                goto bad;
        memcpy(r->hash, p, n);
        OPENSSL_free(p);
        return 0;
bad:
        OPENSSL_free(p);
        free(r->detail);
        r->detail = NULL;
        return -1;
}

/* Calls cb on each JSON object line of tables/<t>.jsonl; a non-zero return stops. */
static int each_row(const struct imp *m, const char *t, int (*cb)(json_t *, void *), void *arg,
                    struct gmca_error *e)
{
        char name[GMCA_NAME_MAX + 16];
        const struct gmca_pkg_entry *x;
        size_t off = 0;
        int rc = 0;

        snprintf(name, sizeof(name), "tables/%s.jsonl", t);
        if ((x = gmca_pkg_find(&m->pkg, name)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "import: %s missing", name);
        while (off < x->len && rc == 0) {
                const uint8_t *nl = memchr(x->data + off, '\n', x->len - off);
                json_t *row;
                if (nl == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "import: %s: unterminated line",
                                              name);
                row = json_loadb((const char *)x->data + off, (size_t)(nl - (x->data + off)),
                                 JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(row)) {
                        json_decref(row);
                        return gmca_error_set(e, GMCA_ERR_INVALID, "import: %s: bad line", name);
                }
                rc = cb(row, arg);
                json_decref(row);
                off = (size_t)(nl - x->data) + 1;
        }
        return rc;
}

struct chain_walk {
        int64_t seq;
        uint8_t hash[GMCA_SM3_LEN];
        struct gmca_error *e;
};

static int chain_step(json_t *row, void *arg)
{
        struct chain_walk *w = arg;
        struct gmca_audit_rec r;
        uint8_t h[GMCA_SM3_LEN];
        int bad;

        if (audit_row(row, &r) != 0)
                return gmca_error_set(w->e, GMCA_ERR_TAMPER,
                                      "import: audit record after %lld "
                                      "malformed",
                                      (long long)w->seq);
        bad = r.seq != w->seq + 1 || memcmp(r.prev, w->hash, GMCA_SM3_LEN) != 0 ||
              gmca_audit_hash(&r, h) != 0 || memcmp(h, r.hash, GMCA_SM3_LEN) != 0;
        free(r.detail);
        if (bad)
                return gmca_error_set(w->e, GMCA_ERR_TAMPER,
                                      "import: audit record %lld does not chain (changed, "
                                      "removed or reordered)",
                                      (long long)(w->seq + 1));
        w->seq = r.seq;
        memcpy(w->hash, r.hash, GMCA_SM3_LEN);
        return 0;
}

static int check_audit(const struct imp *m, int64_t *count, struct gmca_error *e)
{
        struct chain_walk w = {0, {0}, e};
        json_t *head = json_object_get(m->meta, "audit_head");
        const char *hex = json_string_value(json_object_get(head, "hash"));
        uint8_t want[GMCA_SM3_LEN];
        size_t n = 0;
        int rc;

        if ((rc = each_row(m, "audit", chain_step, &w, e)) != 0)
                return rc;
        if (hex == NULL || gmca_unhex(hex, want, sizeof(want), &n) != 0 || n != GMCA_SM3_LEN ||
            json_integer_value(json_object_get(head, "seq")) != w.seq ||
            memcmp(want, w.hash, GMCA_SM3_LEN) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "import: the audit chain ends at %lld, not at the head "
                                      "export.json names",
                                      (long long)w.seq);
        *count = w.seq;
        return 0;
}

/* ---- the history directory ---- */

/* a/b into out; -1 if it does not fit. */
static int pjoin(char *out, size_t len, const char *a, const char *b)
{
        return snprintf(out, len, "%s/%s", a, b) >= (int)len ? -1 : 0;
}

struct loader {
        sqlite3_stmt *ins;
        json_t *cols;
        const char *stage;
        json_t *ca_ids; /* cas: id -> name, for CRL file names */
        int is_crls, is_cas;
        struct gmca_error *e;
};

static int bind_cell(sqlite3_stmt *st, int i, json_t *v)
{
        uint8_t *p = NULL;
        size_t n = 0;

        if (json_is_null(v))
                return sqlite3_bind_null(st, i);
        if (json_is_integer(v))
                return sqlite3_bind_int64(st, i, json_integer_value(v));
        if (json_is_real(v))
                return sqlite3_bind_double(st, i, json_real_value(v));
        if (json_is_string(v))
                return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v),
                                         SQLITE_TRANSIENT);
        if (unb64(v, &p, &n) != 0)
                return SQLITE_MISMATCH;
        i = sqlite3_bind_blob(st, i, p, (int)n, SQLITE_TRANSIENT);
        OPENSSL_free(p);
        return i;
}

/* A CRL row: also crl/<ca>/<number>.crl, the DER the old CA signed. */
static int crl_file(struct loader *l, json_t *row)
{
        char key[32], path[PATH_MAX];
        const char *ca;
        uint8_t *p = NULL;
        size_t n = 0;
        int rc;

        snprintf(key, sizeof(key), "%lld",
                 (long long)json_integer_value(json_object_get(row, "ca_id")));
        /* the name becomes a directory name: checked like every CA name */
        if ((ca = json_string_value(json_object_get(l->ca_ids, key))) == NULL ||
            !ca_valid_name(ca) || !json_is_integer(json_object_get(row, "number")) ||
            unb64(json_object_get(row, "der"), &p, &n) != 0)
                return gmca_error_set(l->e, GMCA_ERR_INVALID, "import: a CRL row is malformed");
        snprintf(path, sizeof(path), "%s/crl/%s", l->stage, ca);
        (void)mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/crl/%s/%lld.crl", l->stage, ca,
                 (long long)json_integer_value(json_object_get(row, "number")));
        rc = gmca_write_file_excl(path, p, n, 0644, l->e);
        OPENSSL_free(p);
        return rc;
}

static int load_row(json_t *row, void *arg)
{
        struct loader *l = arg;
        size_t i;
        json_t *c;

        if (json_object_size(row) != json_array_size(l->cols))
                return gmca_error_set(l->e, GMCA_ERR_INVALID,
                                      "import: a row does not fit its table");
        json_array_foreach(l->cols, i, c)
        {
                json_t *v = json_object_get(row, json_string_value(c));
                if (v == NULL || bind_cell(l->ins, (int)i + 1, v) != SQLITE_OK)
                        return gmca_error_set(l->e, GMCA_ERR_INVALID,
                                              "import: column %s of a row is bad",
                                              json_string_value(c));
        }
        if (sqlite3_step(l->ins) != SQLITE_DONE)
                return gmca_error_set(l->e, GMCA_ERR_DB, "import: history.db insert failed");
        sqlite3_reset(l->ins);
        if (l->is_cas && json_is_string(json_object_get(row, "name"))) {
                char key[32];
                snprintf(key, sizeof(key), "%lld",
                         (long long)json_integer_value(json_object_get(row, "id")));
                json_object_set(l->ca_ids, key, json_object_get(row, "name"));
        }
        return l->is_crls ? crl_file(l, row) : 0;
}

/* CREATE TABLE "t" ("c1", ...) and its INSERT. */
static int table_sql(const char *t, json_t *cols, char *create, char *insert, size_t len)
{
        size_t i, co, io;
        json_t *c;

        if (!ident_ok(t) || json_array_size(cols) == 0 || json_array_size(cols) > COLS_MAX)
                return -1;
        co = (size_t)snprintf(create, len, "CREATE TABLE \"%s\" (", t);
        io = (size_t)snprintf(insert, len, "INSERT INTO \"%s\" VALUES (", t);
        json_array_foreach(cols, i, c)
        {
                const char *s = json_string_value(c);
                if (s == NULL || !ident_ok(s) || co + strlen(s) + 8 >= len || io + 4 >= len)
                        return -1;
                co += (size_t)snprintf(create + co, len - co, "%s\"%s\"", i ? ", " : "", s);
                io += (size_t)snprintf(insert + io, len - io, "%s?", i ? ", " : "");
        }
        snprintf(create + co, len - co, ")");
        snprintf(insert + io, len - io, ")");
        return 0;
}

static int load_tables(const struct imp *m, sqlite3 *db, const char *stage, struct gmca_error *e)
{
        json_t *tables = json_object_get(m->meta, "tables"), *desc, *ids = json_object();
        const char *t;
        char create[4096], insert[4096];
        int rc = 0;

        /* cas first: the CRL files are named after the CA */
        for (int pass = 0; pass < 2 && rc == 0; pass++)
                json_object_foreach(tables, t, desc)
                {
                        struct loader l = {
                            NULL, json_object_get(desc, "columns"), stage,
                            ids,  strcmp(t, "crls") == 0,           strcmp(t, "cas") == 0,
                            e};
                        if (rc != 0 || (pass == 0) != (strcmp(t, "cas") == 0))
                                continue;
                        if (table_sql(t, l.cols, create, insert, sizeof(create)) != 0) {
                                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                                    "import: table %.64s: bad name or columns", t);
                                break;
                        }
                        if (sqlite3_exec(db, create, NULL, NULL, NULL) != SQLITE_OK ||
                            sqlite3_prepare_v2(db, insert, -1, &l.ins, NULL) != SQLITE_OK) {
                                rc = gmca_error_set(e, GMCA_ERR_DB, "import: %s: %s", t,
                                                    sqlite3_errmsg(db));
                                break;
                        }
                        rc = each_row(m, t, load_row, &l, e);
                        sqlite3_finalize(l.ins);
                }
        json_decref(ids);
        return rc;
}

static int write_cas(const struct imp *m, const char *stage, struct gmca_error *e)
{
        char path[PATH_MAX];
        size_t i;

        if (pjoin(path, sizeof(path), stage, "cas") != 0 || mkdir(path, 0755) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "import: %s: %s", path, strerror(errno));
        for (i = 0; i < m->ncas; i++) {
                char rel[GMCA_NAME_MAX + 16];
                BIO *b = NULL;
                snprintf(rel, sizeof(rel), "cas/%s.pem", m->ca_names[i]);
                if (pjoin(path, sizeof(path), stage, rel) != 0 ||
                    (b = BIO_new_file(path, "wx")) == NULL ||
                    PEM_write_bio_X509(b, m->cas[i]) != 1) {
                        BIO_free(b);
                        return gmca_error_ossl(e, GMCA_ERR_IO, "import: %s", path);
                }
                BIO_free(b);
        }
        return 0;
}

static int write_history(const struct imp *m, const uint8_t *buf, size_t len, const char *stage,
                         struct gmca_error *e)
{
        char path[PATH_MAX];
        sqlite3 *db = NULL;
        int rc;

        if (pjoin(path, sizeof(path), stage, "crl") != 0 || mkdir(path, 0755) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "import: %s: %s", path, strerror(errno));
        if (pjoin(path, sizeof(path), stage, "export.gmx") != 0)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "import: path too long");
        if ((rc = gmca_write_file_excl(path, buf, len, 0600, e)) != 0 ||
            (rc = write_cas(m, stage, e)) != 0)
                return rc;
        if (pjoin(path, sizeof(path), stage, "history.db") != 0)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "import: path too long");
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK) {
                sqlite3_close(db);
                return gmca_error_set(e, GMCA_ERR_DB, "import: cannot create %s", path);
        }
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                rc = gmca_error_set(e, GMCA_ERR_DB, "import: begin");
        else if ((rc = load_tables(m, db, stage, e)) == 0 &&
                 sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                rc = gmca_error_set(e, GMCA_ERR_DB, "import: commit");
        sqlite3_close(db);
        return rc;
}

static void rm_tree(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;
        char sub[PATH_MAX];

        if (d == NULL)
                return;
        while ((de = readdir(d)) != NULL) {
                struct stat st;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                        rm_tree(sub);
                else
                        unlink(sub);
        }
        closedir(d);
        rmdir(path);
}

static int keep(const struct imp *m, const uint8_t *buf, size_t len, const char *dir,
                struct gmca_export_info *info, struct gmca_error *e)
{
        char top[PATH_MAX], stage[PATH_MAX], sub[40];
        int rc;

        if (pjoin(top, sizeof(top), dir, GMCA_HISTORY_DIR) != 0 || strlen(top) > 900)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "import: path too long");
        if (mkdir(top, 0700) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "import: %s: %s", top, strerror(errno));
        snprintf(sub, sizeof(sub), "%.16s", info->id);
        if (pjoin(info->where, sizeof(info->where), top, sub) != 0)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "import: path too long");
        if (access(info->where, F_OK) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS, "import: %s was imported already (%s)",
                                      info->id, info->where);
        snprintf(sub, sizeof(sub), ".%.16s.%ld", info->id, (long)getpid());
        if (pjoin(stage, sizeof(stage), top, sub) != 0 || mkdir(stage, 0700) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "import: %s: %s", stage, strerror(errno));
        if ((rc = write_history(m, buf, len, stage, e)) == 0 && rename(stage, info->where) != 0)
                rc = gmca_error_set(e, GMCA_ERR_IO, "import: %s: %s", info->where, strerror(errno));
        if (rc != 0)
                rm_tree(stage);
        return rc;
}

static int64_t rows_of(const struct imp *m, const char *t)
{
        return json_integer_value(
            json_object_get(json_object_get(json_object_get(m->meta, "tables"), t), "rows"));
}

int gmca_ca_import(const char *dir, const char *path, X509 *anchor, struct gmca_export_info *info,
                   struct gmca_error *e)
{
        struct imp m;
        struct gmca_export_info inf;
        uint8_t *buf = NULL, id[GMCA_SM3_LEN];
        size_t len = 0;
        int rc;

        memset(&m, 0, sizeof(m));
        memset(&inf, 0, sizeof(inf));
        if ((rc = gmca_read_file(path, GMCA_EXPORT_MAX, &buf, &len, e)) != 0)
                return rc;
        if ((rc = gmca_pkg_parse(buf, len, &m.pkg, e)) != 0 || (rc = meta_load(&m, e)) != 0 ||
            (rc = cas_load(&m, e)) != 0 || (rc = check_signer(&m, anchor, e)) != 0 ||
            (rc = check_audit(&m, &inf.audit_records, e)) != 0)
                goto out;
        if (gmca_sm3(buf, len, id) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_CRYPTO, "import: SM3");
                goto out;
        }
        gmca_hex(id, sizeof(id), inf.id);
        gmca_strlcpy(inf.signer, json_string_value(json_object_get(m.meta, "signer")),
                     sizeof(inf.signer));
        inf.created = json_integer_value(json_object_get(m.meta, "created"));
        inf.certificates = rows_of(&m, "certificates");
        inf.crls = rows_of(&m, "crls");
        inf.tables = json_object_size(json_object_get(m.meta, "tables"));
        if ((rc = keep(&m, buf, len, dir, &inf, e)) == 0 && info != NULL)
                *info = inf;
out:
        imp_free(&m);
        free(buf);
        return rc;
}

/* ---- look-ups ---- */

static int lookup_one(const char *hist, const char *serial, struct gmca_history_cert *out)
{
        char path[PATH_MAX];
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int found = 0;

        if (pjoin(path, sizeof(path), hist, "history.db") != 0)
                return 0;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db,
                               "SELECT subject, status, not_after, revoked_at, reason FROM "
                               "certificates WHERE serial = ?",
                               -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW) {
                        const unsigned char *s = sqlite3_column_text(st, 0);
                        gmca_strlcpy(out->subject, s ? (const char *)s : "", sizeof(out->subject));
                        out->status = sqlite3_column_int(st, 1);
                        out->not_after = sqlite3_column_int64(st, 2);
                        out->revoked_at = sqlite3_column_int64(st, 3);
                        out->reason = sqlite3_column_int(st, 4);
                        found = 1;
                }
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return found;
}

int gmca_history_lookup(const char *dir, const char *serial, struct gmca_history_cert *out,
                        struct gmca_error *e)
{
        char top[PATH_MAX], hist[PATH_MAX];
        struct dirent *de;
        DIR *d;
        int found = 0;

        snprintf(top, sizeof(top), "%s/%s", dir, GMCA_HISTORY_DIR);
        if ((d = opendir(top)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "no imported history in %s", dir);
        while (!found && (de = readdir(d)) != NULL) {
                if (de->d_name[0] == '.')
                        continue;
                if (pjoin(hist, sizeof(hist), top, de->d_name) != 0)
                        continue;
                memset(out, 0, sizeof(*out));
                if ((found = lookup_one(hist, serial, out)) != 0)
                        snprintf(out->history, sizeof(out->history), "%s/%.60s", GMCA_HISTORY_DIR,
                                 de->d_name);
        }
        closedir(d);
        return found ? 0
                     : gmca_error_set(e, GMCA_ERR_NOTFOUND, "serial %s is in no imported history",
                                      serial);
}
