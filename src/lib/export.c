/*
 * export: the terminating CA's side of export.h. The tables are read from
 * an online snapshot of the store (backup_db.c; a PostgreSQL store through
 * backup_pg.c), one JSON object per row
 * with the columns in table order (blobs as {"base64": ...}), so that a
 * successor that is not gmca can read them too; export.json lists every
 * table with its columns and row count and names the signer and the audit
 * chain's head. The manifest is signed in this process with the CA key the
 * custodians unlock, as in every key ceremony.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit.h"
#include "backup.h"
#include "backup_internal.h"
#include "ca_internal.h"
#include "export.h"
#include "util.h"

/* What a successor needs (CPS §6.11): history, not the CA's working state. */
static const char *const export_tables[] = {"cas",
                                            "certificates",
                                            "crls",
                                            "requests",
                                            "reissues",
                                            "audit",
                                            "applicants",
                                            "applications",
                                            "revocation_requests",
                                            "notifications",
                                            "dual_keys",
                                            "key_recoveries",
                                            "events",
                                            NULL};

static json_t *b64(const void *p, size_t n)
{
        size_t cap = 4 * ((n + 2) / 3) + 1;
        char *s = OPENSSL_malloc(cap);
        json_t *v;

        if (s == NULL)
                return NULL;
        EVP_EncodeBlock((unsigned char *)s, p, (int)n);
        v = json_pack("{s:s}", "base64", s);
        OPENSSL_free(s);
        return v;
}

/* One column of the current row as JSON. */
static json_t *cell(sqlite3_stmt *st, int i)
{
        const void *p;
        size_t n;

        switch (sqlite3_column_type(st, i)) {
        case SQLITE_NULL:
                return json_null();
        case SQLITE_INTEGER:
                return json_integer((json_int_t)sqlite3_column_int64(st, i));
        case SQLITE_FLOAT:
                return json_real(sqlite3_column_double(st, i));
        case SQLITE_TEXT:
                p = sqlite3_column_text(st, i);
                n = (size_t)sqlite3_column_bytes(st, i);
                /* jansson refuses text that is not UTF-8: such text goes as bytes */
                {
                        json_t *v = json_stringn(p, n);
                        return v != NULL ? v : b64(p, n);
                }
        default:
                p = sqlite3_column_blob(st, i);
                return b64(p != NULL ? p : "", (size_t)sqlite3_column_bytes(st, i));
        }
}

static int table_exists(sqlite3 *db, const char *t)
{
        sqlite3_stmt *st = NULL;
        int yes = 0;

        if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?",
                               -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
                yes = sqlite3_step(st) == SQLITE_ROW;
        }
        sqlite3_finalize(st);
        return yes;
}

/* tables/<t>.jsonl into out; its columns and row count into desc. */
static int dump_table(sqlite3 *db, const char *t, struct bk_buf *out, json_t *desc,
                      struct gmca_error *e)
{
        char sql[128];
        sqlite3_stmt *st = NULL;
        json_t *cols = json_array();
        int64_t rows = 0;
        int rc = 0, s, i, n;

        /* t is one of export_tables: a fixed identifier, not input */
        snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY rowid", t);
        if (cols == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                json_decref(cols);
                return gmca_error_set(e, GMCA_ERR_DB, "export: %s: %s", t, sqlite3_errmsg(db));
        }
        n = sqlite3_column_count(st);
        for (i = 0; i < n; i++)
                json_array_append_new(cols, json_string(sqlite3_column_name(st, i)));
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *row = json_object();
                char *line;
                for (i = 0; row != NULL && i < n; i++)
                        json_object_set_new(row, sqlite3_column_name(st, i), cell(st, i));
                line = row ? json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                json_decref(row);
                if (line == NULL || bk_put(out, line, strlen(line)) != 0 ||
                    bk_put(out, "\n", 1) != 0)
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "export: table %s too large", t);
                free(line);
                rows++;
        }
        if (rc == 0 && s != SQLITE_DONE)
                rc = gmca_error_set(e, GMCA_ERR_DB, "export: %s: %s", t, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        if (rc == 0)
                json_object_set_new(
                    desc, t, json_pack("{s:o, s:I}", "columns", cols, "rows", (json_int_t)rows));
        else
                json_decref(cols);
        return rc;
}

struct exp_state {
        struct bk_buf bufs[48]; /* table dumps, then CA certificates (MAX_CAS) */
        char names[48][96];
        struct gmca_pkg_entry v[50];
        size_t n, nbufs;
        char *meta; /* export.json */
        struct ca_slot *signer;
};

static void exp_free(struct exp_state *s)
{
        size_t i;

        for (i = 0; i < s->nbufs; i++)
                bk_buf_free(&s->bufs[i]);
        free(s->meta);
}

static int add(struct exp_state *s, const char *name, const uint8_t *p, size_t n)
{
        if (s->n == sizeof(s->v) / sizeof(s->v[0]))
                return GMCA_ERR_LIMIT;
        s->v[s->n].name = name;
        s->v[s->n].data = p != NULL ? p : (const uint8_t *)"";
        s->v[s->n].len = n;
        s->n++;
        return 0;
}

static int dump_tables(sqlite3 *db, struct exp_state *s, json_t *desc, struct gmca_error *e)
{
        size_t i;
        int rc;

        for (i = 0; export_tables[i] != NULL; i++) {
                struct bk_buf *b = &s->bufs[s->nbufs];
                if (!table_exists(db, export_tables[i]))
                        continue;
                snprintf(s->names[s->nbufs], sizeof(s->names[0]), "tables/%s.jsonl",
                         export_tables[i]);
                s->nbufs++;
                if ((rc = dump_table(db, export_tables[i], b, desc, e)) != 0)
                        return rc;
                if (add(s, s->names[s->nbufs - 1], b->p, b->len) != 0)
                        return gmca_error_set(e, GMCA_ERR_LIMIT, "export: too many entries");
        }
        return 0;
}

/* cas/<name>.der for every CA of the context. */
static int add_cas(struct gmca_ctx *c, struct exp_state *s, json_t *names, struct gmca_error *e)
{
        size_t i;

        for (i = 0; i < c->ncas; i++) {
                const struct gmca_ca_rec *r = &c->cas[i].rec;
                struct bk_buf *b = &s->bufs[s->nbufs];
                if (r->cert_der == NULL)
                        continue;
                if (s->nbufs == sizeof(s->bufs) / sizeof(s->bufs[0]))
                        return gmca_error_set(e, GMCA_ERR_LIMIT, "export: too many CAs");
                snprintf(s->names[s->nbufs], sizeof(s->names[0]), "cas/%s.der", r->name);
                s->nbufs++;
                if (bk_put(b, r->cert_der, r->cert_len) != 0 ||
                    add(s, s->names[s->nbufs - 1], b->p, b->len) != 0)
                        return gmca_error_set(e, GMCA_ERR_LIMIT, "export: too many CAs");
                json_array_append_new(names, json_string(r->name));
        }
        return 0;
}

static int meta_json(struct gmca_ctx *c, struct exp_state *s, json_t *tables, json_t *cas,
                     int64_t created, struct gmca_error *e)
{
        uint8_t head[GMCA_SM3_LEN];
        char hex[65];
        int64_t seq = 0;
        json_t *m;
        int rc;

        if ((rc = gmca_store_audit_last(c->store, &seq, head, e)) != 0)
                return rc;
        gmca_hex(head, sizeof(head), hex);
        m = json_pack("{s:s, s:I, s:s, s:s, s:s, s:O, s:{s:I, s:s}, s:O}", "format",
                      GMCA_EXPORT_FORMAT, "created", (json_int_t)created, "signer",
                      s->signer->rec.name, "signer_sm2_id", s->signer->rec.sm2_id, "default_ca",
                      gmca_ctx_default_ca(c), "cas", cas, "audit_head", "seq", (json_int_t)seq,
                      "hash", hex, "tables", tables);
        s->meta = m ? json_dumps(m, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(m);
        if (s->meta == NULL ||
            add(s, "export.json", (const uint8_t *)s->meta, strlen(s->meta)) != 0)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "export: export.json");
        return 0;
}

static int sign_manifest(void *arg, const uint8_t *m, size_t len, uint8_t seal[GMCA_PKG_SEAL_MAX],
                         size_t *seallen, struct gmca_error *e)
{
        const struct gmca_signer *sg = arg;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t n = 0;
        int rc;

        if ((rc = sg->sign(sg->arg, m, len, sig, &n, e)) != 0)
                return rc;
        memcpy(seal, sig, n);
        *seallen = n;
        return 0;
}

/*
 * The audit trail of a snapshot taken at the time of the export is what goes
 * out: a record appended later (this export's own) is in the CA's chain only.
 */
static int build(struct gmca_ctx *c, struct exp_state *s, const char *snap, uint8_t **pkg,
                 size_t *pkglen, struct gmca_export_info *info, struct gmca_error *e)
{
        json_t *tables = json_object(), *cas = json_array();
        sqlite3 *db = NULL;
        int rc;

        if (sqlite3_open_v2(snap, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
                rc = gmca_error_set(e, GMCA_ERR_DB, "export: cannot open the snapshot");
        else if ((rc = dump_tables(db, s, tables, e)) == 0 && (rc = add_cas(c, s, cas, e)) == 0 &&
                 (rc = meta_json(c, s, tables, cas, info->created, e)) == 0)
                rc = gmca_pkg_pack(s->v, s->n, sign_manifest, (void *)s->signer->signer, pkg,
                                   pkglen, e);
        sqlite3_close(db);
        info->tables = json_object_size(tables);
        info->certificates =
            json_integer_value(json_object_get(json_object_get(tables, "certificates"), "rows"));
        info->crls = json_integer_value(json_object_get(json_object_get(tables, "crls"), "rows"));
        info->audit_records =
            json_integer_value(json_object_get(json_object_get(tables, "audit"), "rows"));
        json_decref(tables);
        json_decref(cas);
        return rc;
}

static int export_locked(struct gmca_ctx *c, const char *ca, const char *out,
                         struct gmca_export_info *info, struct gmca_error *e)
{
        struct exp_state s;
        char snap[PATH_MAX];
        uint8_t *pkg = NULL, id[GMCA_SM3_LEN];
        size_t pkglen = 0;
        int rc;

        memset(&s, 0, sizeof(s));
        if ((s.signer = ca_find(c, ca != NULL ? ca : gmca_ctx_default_ca(c), e)) == NULL)
                return GMCA_ERR_NOTFOUND;
        if (s.signer->signer == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE, "export: CA %s has no key that signs (%s)",
                                      s.signer->rec.name, s.signer->rec.key_state);
        gmca_strlcpy(info->signer, s.signer->rec.name, sizeof(info->signer));
        if (snprintf(snap, sizeof(snap), "%s/export.%ld.db", c->dir, (long)getpid()) >=
            (int)sizeof(snap))
                return gmca_error_set(e, GMCA_ERR_LIMIT, "export: path too long");
        if ((rc = bk_snapshot_dir(c->dir, snap, e)) != 0)
                return rc;
        rc = build(c, &s, snap, &pkg, &pkglen, info, e);
        unlink(snap);
        if (rc == 0 && gmca_sm3(pkg, pkglen, id) != 0)
                rc = gmca_error_set(e, GMCA_ERR_CRYPTO, "export: SM3");
        if (rc == 0) {
                gmca_hex(id, sizeof(id), info->id);
                rc = gmca_write_file_excl(out, pkg, pkglen, 0600, e);
        }
        OPENSSL_free(pkg);
        exp_free(&s);
        return rc;
}

static int audit_export(struct gmca_ctx *c, const struct gmca_export_info *inf,
                        struct gmca_error *e)
{
        json_t *d =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "id", inf->id, "signer", inf->signer,
                      "certificates", (json_int_t)inf->certificates, "crls", (json_int_t)inf->crls,
                      "audit_records", (json_int_t)inf->audit_records, "custodians", c->custodians);
        char *txt = d ? json_dumps(d, JSON_COMPACT) : NULL;
        struct gmca_audit_event ev = {GMCA_EV_CA_EXPORT, c->actor, 1, inf->id, txt};
        int rc;

        json_decref(d);
        if (txt == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "export: audit detail");
        rc = gmca_audit_record(c->store, &ev, e);
        free(txt);
        return rc;
}

int gmca_ca_export(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n, const char *ca,
                   const char *out, struct gmca_export_info *info, struct gmca_error *e)
{
        struct gmca_export_info inf;
        struct ca_custody m;
        int rc;

        memset(&inf, 0, sizeof(inf));
        inf.created = (int64_t)gmca_now();
        if (access(out, F_OK) == 0)
                return ca_reject(c, GMCA_EV_CA_EXPORT, out,
                                 gmca_error_set(e, GMCA_ERR_EXISTS, "%s exists", out), e);
        if ((rc = ca_ceremony_begin(c, cust, n, &m, e)) != 0)
                return ca_reject(c, GMCA_EV_CA_EXPORT, out, rc, e);
        rc = export_locked(c, ca, out, &inf, e);
        ca_ceremony_end(c);
        OPENSSL_cleanse(&m, sizeof(m));
        if (rc != 0)
                return ca_reject(c, GMCA_EV_CA_EXPORT, out, rc, e);
        if ((rc = audit_export(c, &inf, e)) != 0)
                return rc;
        if (info != NULL)
                *info = inf;
        return 0;
}
