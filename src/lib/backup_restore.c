/*
 * backup_restore: opening an archive with the backup private key, checking
 * it whole (gmca backup verify), and restoring a chain of archives onto an
 * empty directory. Everything read from an archive is treated as hostile
 * until the GCM tag, the manifest and its MAC have been checked, and a
 * restore is built in a staging directory beside the target that is renamed
 * into place only after the database's blocks and every file match the
 * last archive's digests: a refused restore leaves nothing behind. A
 * restore into PostgreSQL fills a database beyond that directory: any
 * failure once the database was found empty drops the tables it made there
 * again (bk_pg_unload), so that the operator can run the same restore again.
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

#include "backup.h"
#include "backup_internal.h"
#include "ca.h"
#include "store.h"
#include "util.h"

int gmca_backup_parse_outer(const uint8_t *buf, size_t len, struct gmca_backup_outer *o,
                            struct gmca_error *e)
{
        size_t off = 8, hl, kl;
        uint64_t cl;

        memset(o, 0, sizeof(*o));
        if (len < 8 + 4 || memcmp(buf, GMCA_BACKUP_MAGIC, 8) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: not a gmca backup archive");
        hl = gmca_get_be32(buf + off);
        off += 4;
        if (hl == 0 || hl > GMCA_BACKUP_HEADER_MAX || len - off < hl + 2)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: bad header length");
        o->header = (const char *)buf + off;
        o->header_len = hl;
        off += hl;
        kl = (size_t)buf[off] << 8 | buf[off + 1];
        off += 2;
        if (kl == 0 || kl > 1024 || len - off < kl + GMCA_SM4_GCM_IV_LEN + 8)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: bad sealed key");
        o->sealed_key = buf + off;
        o->sealed_len = kl;
        off += kl;
        o->iv = buf + off;
        off += GMCA_SM4_GCM_IV_LEN;
        o->aad_len = off;
        cl = gmca_get_be64(buf + off);
        off += 8;
        if (cl > len - off || len - off - cl != GMCA_SM4_GCM_TAG_LEN)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "backup: archive truncated or with bytes after its tag");
        o->ct = buf + off;
        o->ct_len = (size_t)cl;
        o->tag = buf + off + cl;
        return 0;
}

static int header_parse(const struct gmca_backup_outer *o, struct gmca_backup_info *info,
                        struct gmca_error *e)
{
        json_t *h = json_loadb(o->header, o->header_len, JSON_REJECT_DUPLICATES, NULL);
        const char *kind = NULL, *base = NULL, *kid = NULL;
        json_int_t seq = 0, created = 0;
        int format = 0, rc = 0;

        if (h == NULL ||
            json_unpack(h, "{s:i, s:s, s:I, s:s, s:I, s:s !}", "format", &format, "kind", &kind,
                        "seq", &seq, "base", &base, "created", &created, "key_id", &kid) != 0 ||
            format != 1 || strlen(kid) != 64 || strlen(base) > 64 || seq < 1 ||
            (strcmp(kind, "full") != 0 && strcmp(kind, "incremental") != 0) ||
            (strcmp(kind, "full") == 0) != (base[0] == '\0' && seq == 1) ||
            (base[0] != '\0' && strlen(base) != 64))
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "backup: malformed archive header");
        else {
                gmca_strlcpy(info->kind, kind, sizeof(info->kind));
                gmca_strlcpy(info->base, base, sizeof(info->base));
                gmca_strlcpy(info->key_id, kid, sizeof(info->key_id));
                info->seq = seq;
                info->created = created;
        }
        json_decref(h);
        return rc;
}

/* A decrypted archive: plain holds the package, pkg points into it. */
struct opened {
        struct gmca_backup_info info;
        uint8_t *plain;
        size_t plain_len;
        struct gmca_pkg pkg;
};

static void opened_free(struct opened *a)
{
        gmca_pkg_clear(&a->pkg);
        if (a->plain != NULL)
                OPENSSL_clear_free(a->plain, a->plain_len);
        memset(a, 0, sizeof(*a));
}

static int unseal_key(const struct gmca_backup_outer *o, EVP_PKEY *key, const char *want,
                      uint8_t dk[GMCA_SM4_KEY_LEN], struct gmca_error *e)
{
        char have[65];
        uint8_t *k = NULL;
        size_t kl = 0;
        int rc;

        if ((rc = bk_key_id(key, have, e)) != 0)
                return rc;
        if (strcmp(have, want) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "backup: the archive is sealed to backup key %.16s..., not "
                                      "to this key (%.16s...)",
                                      want, have);
        if ((rc = gmca_sm2_decrypt(key, o->sealed_key, o->sealed_len, &k, &kl, e)) != 0 ||
            kl != GMCA_SM4_KEY_LEN) {
                if (k != NULL)
                        OPENSSL_clear_free(k, kl);
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "backup: the archive's sealed key does not open");
        }
        memcpy(dk, k, GMCA_SM4_KEY_LEN);
        OPENSSL_clear_free(k, kl);
        return 0;
}

int bk_decrypt(const uint8_t *buf, const struct gmca_backup_outer *o,
               const uint8_t dk[GMCA_SM4_KEY_LEN], uint8_t **plain, size_t *plain_len,
               struct gmca_pkg *pkg, struct gmca_error *e)
{
        uint8_t *p, mac[GMCA_PKG_SEAL_MAX];
        size_t maclen = 0;
        int rc;

        if ((p = OPENSSL_malloc(o->ct_len ? o->ct_len : 1)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "backup: out of memory");
        if (gmca_sm4_gcm_decrypt(dk, o->iv, buf, o->aad_len, o->ct, o->ct_len, o->tag, p, e) != 0) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "backup: SM4-GCM tag mismatch (archive changed or damaged)");
                goto out;
        }
        if ((rc = gmca_pkg_parse(p, o->ct_len, pkg, e)) != 0)
                goto out;
        if ((rc = bk_mac_seal((void *)dk, pkg->manifest, pkg->manifest_len, mac, &maclen, e)) !=
                0 ||
            maclen != pkg->seal_len || CRYPTO_memcmp(mac, pkg->seal, maclen) != 0) {
                gmca_pkg_clear(pkg);
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "backup: the manifest's MAC does not verify");
                goto out;
        }
        *plain = p;
        *plain_len = o->ct_len;
        p = NULL;
out:
        if (p != NULL)
                OPENSSL_clear_free(p, o->ct_len);
        return rc;
}

/* Read, decrypt and parse path; check the seal. */
static int archive_open(const char *path, EVP_PKEY *key, struct opened *a, struct gmca_error *e)
{
        struct gmca_backup_outer o;
        uint8_t *buf = NULL, dk[GMCA_SM4_KEY_LEN], id[GMCA_SM3_LEN];
        size_t len = 0;
        int rc;

        memset(a, 0, sizeof(*a));
        if ((rc = gmca_read_file(path, GMCA_BACKUP_MAX, &buf, &len, e)) != 0)
                return rc;
        if ((rc = gmca_backup_parse_outer(buf, len, &o, e)) != 0 ||
            (rc = header_parse(&o, &a->info, e)) != 0 ||
            (rc = unseal_key(&o, key, a->info.key_id, dk, e)) != 0)
                goto out;
        if (gmca_sm3(buf, len, id) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3");
                goto out;
        }
        gmca_hex(id, sizeof(id), a->info.id);
        if ((rc = bk_decrypt(buf, &o, dk, &a->plain, &a->plain_len, &a->pkg, e)) != 0)
                goto out;
        a->info.entries = a->pkg.n;
        rc = 0;
out:
        OPENSSL_cleanse(dk, sizeof(dk));
        free(buf);
        if (rc != 0) {
                /* A malformed archive is a damaged one: the reader wants to know that. */
                if (rc == GMCA_ERR_INVALID || rc == GMCA_ERR_LIMIT) {
                        rc = GMCA_ERR_TAMPER;
                        if (e != NULL)
                                e->code = rc;
                }
                opened_free(a);
        }
        return rc;
}

/* The archive's own structure: block list, file list, delta, carried files. */
static int archive_check(struct opened *a, struct bk_blocks *blocks, struct bk_files *files,
                         struct gmca_error *e)
{
        int full = strcmp(a->info.kind, "full") == 0;
        const struct gmca_pkg_entry *b = gmca_pkg_find(&a->pkg, "db/blocks"),
                                    *l = gmca_pkg_find(&a->pkg, "files.list"),
                                    *d = gmca_pkg_find(&a->pkg, full ? "db/gmca.db" : "db/delta");
        size_t i, nb = 0;
        int rc;

        if (b == NULL || l == NULL || d == NULL)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "backup: a %s archive lacks %s",
                                      a->info.kind,
                                      b == NULL   ? "db/blocks"
                                      : l == NULL ? "files.list"
                                      : full      ? "db/gmca.db"
                                                  : "db/delta");
        if ((rc = bk_blocks_parse(b->data, b->len, blocks, e)) != 0 ||
            (rc = bk_files_parse(l->data, l->len, files, e)) != 0 ||
            (!full && (rc = bk_delta_check(d->data, d->len, &nb, e)) != 0))
                return rc;
        a->info.blocks_changed = nb;
        for (i = 0; i < a->pkg.n; i++) {
                const struct bk_file *f;
                uint8_t dg[GMCA_SM3_LEN];
                if (strncmp(a->pkg.v[i].name, "files/", 6) != 0)
                        continue;
                a->info.files_carried++;
                if ((f = bk_files_find(files, a->pkg.v[i].name)) == NULL ||
                    gmca_sm3(a->pkg.v[i].data, a->pkg.v[i].len, dg) != 0 ||
                    memcmp(dg, f->d, GMCA_SM3_LEN) != 0)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "backup: %s does not match the file list",
                                              a->pkg.v[i].name);
        }
        for (i = 0; full && i < files->n; i++)
                if (gmca_pkg_find(&a->pkg, files->v[i].rel) == NULL)
                        return gmca_error_set(e, GMCA_ERR_TAMPER, "backup: full archive lacks %s",
                                              files->v[i].rel);
        return 0;
}

int gmca_backup_verify(const char *path, EVP_PKEY *key, const char *base_id,
                       struct gmca_backup_info *info, struct gmca_error *e)
{
        struct opened a;
        struct bk_blocks blocks = {0};
        struct bk_files files = {0};
        int rc;

        if ((rc = archive_open(path, key, &a, e)) != 0)
                return rc;
        if ((rc = archive_check(&a, &blocks, &files, e)) == 0 && base_id != NULL &&
            strcmp(a.info.base, base_id) != 0)
                rc = gmca_error_set(
                    e, GMCA_ERR_STATE, "backup: %s builds on %.16s..., not on %.16s...", path,
                    a.info.base[0] ? a.info.base : "(nothing: a full backup)", base_id);
        if (rc == 0 && info != NULL)
                *info = a.info;
        bk_blocks_free(&blocks);
        bk_files_free(&files);
        opened_free(&a);
        return rc;
}

/* ---- restore ---- */

static int write_rel(const char *root, const char *rel, const uint8_t *data, size_t len,
                     unsigned mode, struct gmca_error *e)
{
        char path[PATH_MAX];
        char *p;

        if (snprintf(path, sizeof(path), "%s/%s", root, rel + 6) >= (int)sizeof(path))
                return gmca_error_set(e, GMCA_ERR_LIMIT, "restore: path too long");
        /* Parent directories: names were checked by the package parser (no "..", no
         * "/" start). */
        for (p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
                *p = '\0';
                if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                        *p = '/';
                        return gmca_error_set(e, GMCA_ERR_IO, "restore: mkdir %s: %s", path,
                                              strerror(errno));
                }
                *p = '/';
        }
        unlink(path);
        return gmca_write_file_excl(path, data, len, (int)(mode & 0700 ? mode : 0600), e);
}

/* Make the staging directory's files those of list, taking content from a. */
static int apply_files(const char *root, const struct opened *a, const struct bk_files *prev,
                       const struct bk_files *list, struct gmca_error *e)
{
        char path[PATH_MAX];
        size_t i;
        int rc;

        for (i = 0; prev != NULL && i < prev->n; i++)
                if (bk_files_find(list, prev->v[i].rel) == NULL &&
                    snprintf(path, sizeof(path), "%s/%s", root, prev->v[i].rel + 6) <
                        (int)sizeof(path))
                        unlink(path);
        for (i = 0; i < list->n; i++) {
                const struct gmca_pkg_entry *en = gmca_pkg_find(&a->pkg, list->v[i].rel);
                if (en != NULL &&
                    (rc = write_rel(root, en->name, en->data, en->len, list->v[i].mode, e)) != 0)
                        return rc;
        }
        return 0;
}

/* Every listed file is there with its digest, and nothing else is. */
static int files_match(const char *root, const struct bk_files *list, struct gmca_error *e)
{
        struct bk_files have = {0};
        size_t i;
        int rc;

        if ((rc = bk_walk(root, "", 0, &have, e)) != 0)
                return rc;
        qsort(have.v, have.n, sizeof(*have.v), bk_cmp_file);
        for (i = 0; i < have.n && i < list->n; i++)
                if (strcmp(have.v[i].rel, list->v[i].rel) != 0 ||
                    memcmp(have.v[i].d, list->v[i].d, GMCA_SM3_LEN) != 0)
                        break;
        if (i < have.n || i < list->n)
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "restore: file %s does not match the archive's list",
                                    i < list->n ? list->v[i].rel : have.v[i].rel);
        bk_files_free(&have);
        return rc;
}

struct restore {
        char stage[PATH_MAX];
        sqlite3 *db;
        struct bk_files files;
        struct bk_blocks blocks;
        char last_id[65];
        int64_t last_seq;
        char pg[PATH_MAX];    /* the PostgreSQL database restored into, if any */
        struct bk_names made; /* the tables to drop there if the restore fails */
};

/* Take in archive i of the chain. */
static int restore_one(struct restore *r, const char *path, size_t i, EVP_PKEY *key,
                       struct gmca_backup_info *info, struct gmca_error *e)
{
        struct opened a;
        struct bk_files files = {0};
        struct bk_blocks blocks = {0};
        char dbpath[PATH_MAX + 16];
        const struct gmca_pkg_entry *d;
        int rc;

        if ((rc = archive_open(path, key, &a, e)) != 0 ||
            (rc = archive_check(&a, &blocks, &files, e)) != 0)
                goto out;
        if (i == 0 && strcmp(a.info.kind, "full") != 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "restore: %s is an incremental backup; the chain starts with "
                                    "its full backup",
                                    path);
                goto out;
        }
        if (i > 0 && (strcmp(a.info.base, r->last_id) != 0 || a.info.seq != r->last_seq + 1)) {
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "restore: %s builds on archive %.16s... (no. %lld), but the "
                                    "archive before it is %.16s... (no. %lld): a base is missing",
                                    path, a.info.base[0] ? a.info.base : "none",
                                    (long long)a.info.seq - 1, r->last_id, (long long)r->last_seq);
                goto out;
        }
        d = gmca_pkg_find(&a.pkg, i == 0 ? "db/gmca.db" : "db/delta");
        snprintf(dbpath, sizeof(dbpath), "%s/%s", r->stage, GMCA_DB_FILE);
        if (i == 0) {
                if ((rc = gmca_write_file_excl(dbpath, d->data, d->len, 0600, e)) != 0)
                        goto out;
                if (sqlite3_open_v2(dbpath, &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
                        rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                            "restore: the database does not open");
                        goto out;
                }
        } else if ((rc = bk_delta_apply(r->db, d->data, d->len, e)) != 0)
                goto out;
        if ((rc = apply_files(r->stage, &a, i == 0 ? NULL : &r->files, &files, e)) != 0)
                goto out;
        bk_files_free(&r->files);
        bk_blocks_free(&r->blocks);
        r->files = files;
        r->blocks = blocks;
        memset(&files, 0, sizeof(files));
        memset(&blocks, 0, sizeof(blocks));
        gmca_strlcpy(r->last_id, a.info.id, sizeof(r->last_id));
        r->last_seq = a.info.seq;
        *info = a.info;
out:
        bk_files_free(&files);
        bk_blocks_free(&blocks);
        opened_free(&a);
        return rc;
}

static int target_free(const char *dir, struct gmca_error *e)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (d == NULL)
                return errno == ENOENT ? 0
                                       : gmca_error_set(e, GMCA_ERR_IO, "restore: %s: %s", dir,
                                                        strerror(errno));
        while ((de = readdir(d)) != NULL)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        if (n > 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "restore: %s is not empty: restore only onto an empty "
                                      "directory",
                                      dir);
        return 1;
}

static void rm_tree(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;
        char sub[PATH_MAX];

        if (d == NULL) {
                unlink(path);
                return;
        }
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

static int restore_finish(struct restore *r, struct gmca_error *e)
{
        struct bk_blocks now = {0};
        int rc;

        if ((rc = bk_db_blocks(r->db, &now, e)) == 0)
                rc = bk_blocks_same(&now, &r->blocks, e);
        bk_blocks_free(&now);
        if (rc == 0 && sqlite3_close(r->db) != SQLITE_OK)
                rc = gmca_error_set(e, GMCA_ERR_DB, "restore: closing the database");
        r->db = NULL;
        return rc != 0 ? rc : files_match(r->stage, &r->files, e);
}

/* Rows per table of the blocks a and b agree (the rowids of tables without an
 * integer key are not kept between backends). */
static int same_counts(const struct bk_blocks *a, const struct bk_blocks *b, struct gmca_error *e)
{
        size_t i = 0, j = 0;

        while (i < a->n || j < b->n) {
                const char *t = i < a->n ? a->v[i].table : b->v[j].table;
                int64_t na = 0, nb = 0;
                if (j < b->n && i < a->n && strcmp(b->v[j].table, t) < 0)
                        t = b->v[j].table;
                for (; i < a->n && strcmp(a->v[i].table, t) == 0; i++)
                        na += a->v[i].rows;
                for (; j < b->n && strcmp(b->v[j].table, t) == 0; j++)
                        nb += b->v[j].rows;
                if (na != nb)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "restore: table %s has %lld rows in the database, "
                                              "%lld in the archive",
                                              t, (long long)nb, (long long)na);
        }
        return 0;
}

/* Read the PostgreSQL database uri back and check it against the archive:
 * block for block when the archive came from PostgreSQL too (the same row
 * order), else table by table. */
static int pg_check(struct restore *r, const char *uri, int from_pg, struct gmca_error *e)
{
        char snap[PATH_MAX + 16];
        struct bk_blocks now = {0};
        sqlite3 *h = NULL;
        int rc;

        snprintf(snap, sizeof(snap), "%s/check.db", r->stage);
        if ((rc = bk_pg_snapshot(uri, snap, e)) != 0)
                return rc;
        if (sqlite3_open_v2(snap, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
                rc = gmca_error_set(e, GMCA_ERR_DB, "restore: cannot open %s", snap);
        else if ((rc = bk_db_blocks(h, &now, e)) == 0)
                rc = from_pg ? bk_blocks_same(&now, &r->blocks, e)
                             : same_counts(&r->blocks, &now, e);
        sqlite3_close(h);
        unlink(snap);
        bk_blocks_free(&now);
        return rc;
}

/* Put the restored store where it belongs: db NULL keeps the archive's
 * backend (gmca.json "database"), "sqlite" the SQLite file, a PostgreSQL URI
 * that (empty) database. */
static int restore_store(struct restore *r, const char *db, struct gmca_error *e)
{
        char was[PATH_MAX], lite[PATH_MAX + 16];
        const char *target;
        int rc;

        if ((rc = bk_config_db(r->stage, was, sizeof(was), NULL, e)) != 0)
                return rc;
        target = db == NULL ? was : strcmp(db, "sqlite") == 0 ? "" : db;
        if (!gmca_store_uri_is_pg(target)) {
                if (target[0] != '\0' && !gmca_store_uri_is_pg(was))
                        return 0;
                return was[0] != '\0' ? bk_config_db(r->stage, NULL, 0, "", e) : 0;
        }
        snprintf(lite, sizeof(lite), "%s/%s", r->stage, GMCA_DB_FILE);
        gmca_strlcpy(r->pg, target, sizeof(r->pg));
        if ((rc = bk_pg_load(lite, target, &r->made, e)) != 0 ||
            (rc = pg_check(r, target, gmca_store_uri_is_pg(was), e)) != 0)
                return rc;
        if (unlink(lite) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "restore: %s: %s", lite, strerror(errno));
        return bk_config_db(r->stage, NULL, 0, target, e);
}

int gmca_backup_restore(const char *const *paths, size_t n, EVP_PKEY *key, const char *to,
                        struct gmca_backup_info *info, struct gmca_error *e)
{
        return gmca_backup_restore_db(paths, n, key, to, NULL, info, e);
}

int gmca_backup_restore_db(const char *const *paths, size_t n, EVP_PKEY *key, const char *to,
                           const char *db, struct gmca_backup_info *info, struct gmca_error *e)
{
        struct restore r;
        struct gmca_backup_info last;
        char dir[PATH_MAX];
        size_t i, dl;
        int rc;

        memset(&r, 0, sizeof(r));
        if (n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "restore: no archive given");
        /* "new/" names the directory "new": the staging directory goes beside it */
        if ((dl = gmca_strlcpy(dir, to, sizeof(dir))) >= sizeof(dir) || dl == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "restore: bad target directory");
        while (dl > 1 && dir[dl - 1] == '/')
                dir[--dl] = '\0';
        if ((rc = target_free(dir, e)) < 0)
                return rc;
        if (snprintf(r.stage, sizeof(r.stage), "%s.restore.%ld", dir, (long)getpid()) >=
                (int)sizeof(r.stage) ||
            mkdir(r.stage, 0700) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "restore: cannot create %s: %s", r.stage,
                                      strerror(errno));
        for (i = 0, rc = 0; i < n && rc == 0; i++)
                rc = restore_one(&r, paths[i], i, key, &last, e);
        if (rc == 0)
                rc = restore_finish(&r, e);
        sqlite3_close(r.db);
        if (rc == 0)
                rc = restore_store(&r, db, e);
        /* An empty directory dir is replaced by the rename (rename(2)): it is
         * never gone while the restore can still fail. */
        if (rc == 0 && rename(r.stage, dir) != 0)
                rc = gmca_error_set(e, GMCA_ERR_IO, "restore: rename into %s: %s", dir,
                                    strerror(errno));
        if (rc != 0) {
                bk_pg_unload(r.pg, &r.made, e);
                rm_tree(r.stage);
        } else if (info != NULL)
                *info = last;
        bk_files_free(&r.files);
        bk_blocks_free(&r.blocks);
        bk_names_free(&r.made);
        return rc;
}
