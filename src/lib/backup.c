/*
 * backup: creating archives of a CA state directory (backup.h gives the
 * design; backup_pkg.c the container, backup_db.c the database,
 * backup_files.c the files, backup_restore.c opening, verifying and
 * restoring). Everything an archive holds is read into memory, sealed and
 * written with one exclusive create, so a failed backup leaves no archive
 * and does not move the chain's head.
 *
 * Archive layout (integers big-endian):
 *   "GMCABAK1"  u32 hlen, header JSON   u16 klen, SM2Cipher(SM4 key)   IV(12)
 *   u64 clen, SM4-GCM(package)  tag(16)
 * The GCM additional data is everything before clen. The package's seal is
 * HMAC-SM3(K_mac, manifest), K_mac = HMAC-SM3(SM4 key, "gmca backup
 * manifest v1").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "backup.h"
#include "backup_internal.h"
#include "ca.h"
#include "util.h"

#define MAC_LABEL "gmca backup manifest v1"
#define CONFIG_MAX (256 * 1024)

/* ---- configuration ---- */

static int load_config(const char *dir, json_t **root, char *path, size_t plen,
                       struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len;
        json_error_t jerr;
        int rc;

        if (snprintf(path, plen, "%s/%s", dir, GMCA_CONFIG_FILE) >= (int)plen)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "backup: path too long");
        if ((rc = gmca_read_file(path, CONFIG_MAX, &buf, &len, e)) != 0)
                return rc;
        *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
        free(buf);
        if (*root == NULL || !json_is_object(*root)) {
                json_decref(*root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a JSON object", path);
        }
        return 0;
}

int gmca_backup_config(const char *dir, X509 **cert, char *copy, size_t copylen,
                       struct gmca_error *e)
{
        char path[PATH_MAX], cpath[PATH_MAX];
        json_t *root = NULL, *v;
        BIO *b = NULL;
        X509 *x = NULL;
        int rc;

        if ((rc = load_config(dir, &root, path, sizeof(path), e)) != 0)
                return rc;
        copy[0] = '\0';
        v = json_object_get(root, "backup_copy");
        if (v != NULL && (!json_is_string(v) || json_string_length(v) >= copylen)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "%s: \"backup_copy\" must be a string",
                                    path);
                goto out;
        }
        if (v != NULL)
                gmca_strlcpy(copy, json_string_value(v), copylen);
        v = json_object_get(root, "backup_cert");
        if (v == NULL || !json_is_string(v) || strstr(json_string_value(v), "..") != NULL ||
            json_string_value(v)[0] == '/') {
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "no backup certificate configured (gmca.json \"backup_cert\"): "
                                    "issue one with profile backup and run gmca backup setup");
                goto out;
        }
        snprintf(cpath, sizeof(cpath), "%s/%s", dir, json_string_value(v));
        if ((b = BIO_new_file(cpath, "r")) == NULL ||
            (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_NOTFOUND, "backup certificate %s unreadable",
                                     cpath);
                goto out;
        }
        *cert = x;
        rc = 0;
out:
        BIO_free(b);
        json_decref(root);
        return rc;
}

int bk_key_id(EVP_PKEY *k, char hex[65], struct gmca_error *e)
{
        uint8_t xy[64], d[GMCA_SM3_LEN];
        int rc;

        if ((rc = gmca_sm2_pub_xy(k, xy, e)) != 0)
                return rc;
        if (gmca_sm3(xy, sizeof(xy), d) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3");
        gmca_hex(d, sizeof(d), hex);
        return 0;
}

int gmca_backup_setup(const char *dir, X509 *cert, const char *copy, struct gmca_error *e)
{
        char path[PATH_MAX], cpath[PATH_MAX];
        json_t *root = NULL;
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        uint32_t ku = X509_get_key_usage(cert);
        char *txt = NULL;
        BIO *b = NULL;
        int rc;

        if (pub == NULL || gmca_sm2_is_sm2(pub, e) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY, "backup certificate: not an SM2 key");
        if (ku == UINT32_MAX || (ku & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT)) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "backup certificate: key usage lacks keyEncipherment");
        if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 ||
            X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "backup certificate: outside its validity period");
        if ((rc = load_config(dir, &root, path, sizeof(path), e)) != 0)
                return rc;
        snprintf(cpath, sizeof(cpath), "%s/certs/backup.pem", dir);
        if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, cert) != 1) {
                rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "backup certificate: PEM");
                goto out;
        }
        {
                char *pem;
                long n = BIO_get_mem_data(b, &pem);
                if ((rc = gmca_write_file_atomic(cpath, pem, (size_t)n, 0644, e)) != 0)
                        goto out;
        }
        json_object_set_new(root, "backup_cert", json_string("certs/backup.pem"));
        if (copy != NULL && copy[0] == '\0')
                json_object_del(root, "backup_copy");
        else if (copy != NULL)
                json_object_set_new(root, "backup_copy", json_string(copy));
        if ((txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "backup: out of memory");
                goto out;
        }
        rc = gmca_write_file_atomic(path, txt, strlen(txt), 0600, e);
out:
        free(txt);
        BIO_free(b);
        json_decref(root);
        return rc;
}

/* ---- the chain's head in <dir>/backups ---- */

struct chain {
        char id[65];
        int64_t seq;
        struct bk_blocks blocks;
        struct bk_files files;
};

static void chain_free(struct chain *c)
{
        bk_blocks_free(&c->blocks);
        bk_files_free(&c->files);
}

static int chain_load(const char *dir, struct chain *c, struct gmca_error *e)
{
        char path[PATH_MAX];
        uint8_t *buf = NULL;
        size_t len;
        int rc;

        memset(c, 0, sizeof(*c));
        snprintf(path, sizeof(path), "%s/%s/last", dir, GMCA_BACKUP_DIR);
        if ((rc = gmca_read_file(path, 256, &buf, &len, e)) != 0) {
                if (rc != GMCA_ERR_NOTFOUND)
                        return rc;
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "no earlier backup of %s: take a full backup first", dir);
        }
        if (sscanf((char *)buf, "%64s %lld", c->id, (long long *)&c->seq) != 2 ||
            strlen(c->id) != 64 || c->seq < 1) {
                free(buf);
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: malformed", path);
        }
        free(buf);
        snprintf(path, sizeof(path), "%s/%s/last.blocks", dir, GMCA_BACKUP_DIR);
        if ((rc = gmca_read_file(path, GMCA_BACKUP_MAX, &buf, &len, e)) != 0)
                return rc;
        rc = bk_blocks_parse(buf, len, &c->blocks, e);
        free(buf);
        if (rc != 0)
                return rc;
        snprintf(path, sizeof(path), "%s/%s/last.files", dir, GMCA_BACKUP_DIR);
        if ((rc = gmca_read_file(path, GMCA_BACKUP_MAX, &buf, &len, e)) != 0)
                return rc;
        rc = bk_files_parse(buf, len, &c->files, e);
        free(buf);
        return rc;
}

static int chain_save(const char *dir, const struct gmca_backup_info *info, const char *out,
                      const struct bk_buf *blocks, const struct bk_buf *files, struct gmca_error *e)
{
        char path[PATH_MAX], line[PATH_MAX + 256];
        int rc, fd;

        snprintf(path, sizeof(path), "%s/%s/last.blocks", dir, GMCA_BACKUP_DIR);
        if ((rc = gmca_write_file_atomic(path, blocks->p, blocks->len, 0600, e)) != 0)
                return rc;
        snprintf(path, sizeof(path), "%s/%s/last.files", dir, GMCA_BACKUP_DIR);
        if ((rc = gmca_write_file_atomic(path, files->p, files->len, 0600, e)) != 0)
                return rc;
        snprintf(path, sizeof(path), "%s/%s/last", dir, GMCA_BACKUP_DIR);
        snprintf(line, sizeof(line), "%s %lld\n", info->id, (long long)info->seq);
        if ((rc = gmca_write_file_atomic(path, line, strlen(line), 0600, e)) != 0)
                return rc;
        snprintf(path, sizeof(path), "%s/%s/log", dir, GMCA_BACKUP_DIR);
        snprintf(line, sizeof(line), "%lld %s %s %lld %s %s\n", (long long)info->created, info->id,
                 info->kind, (long long)info->seq, info->base[0] ? info->base : "-", out);
        if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0 ||
            gmca_write_all(fd, line, strlen(line)) != 0) {
                if (fd >= 0)
                        close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: cannot append", path);
        }
        close(fd);
        return 0;
}

/* ---- sealing ---- */

int bk_mac_seal(void *arg, const uint8_t *m, size_t len, uint8_t seal[GMCA_PKG_SEAL_MAX],
                size_t *seallen, struct gmca_error *e)
{
        const uint8_t *dk = arg;
        uint8_t kmac[GMCA_SM3_LEN];
        int rc;

        if ((rc = gmca_hmac_sm3(dk, GMCA_SM4_KEY_LEN, MAC_LABEL, strlen(MAC_LABEL), kmac, e)) != 0)
                return rc;
        rc = gmca_hmac_sm3(kmac, sizeof(kmac), m, len, seal, e);
        OPENSSL_cleanse(kmac, sizeof(kmac));
        *seallen = GMCA_SM3_LEN;
        return rc;
}

static int put_header(struct bk_buf *b, const struct gmca_backup_info *info, const uint8_t *sealed,
                      size_t sealed_len, const uint8_t iv[GMCA_SM4_GCM_IV_LEN])
{
        json_t *h = json_pack("{s:i, s:s, s:I, s:s, s:I, s:s}", "format", 1, "kind", info->kind,
                              "seq", (json_int_t)info->seq, "base", info->base, "created",
                              (json_int_t)info->created, "key_id", info->key_id);
        char *txt = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        int rc = GMCA_ERR_NOMEM;

        json_decref(h);
        if (txt != NULL && strlen(txt) <= GMCA_BACKUP_HEADER_MAX &&
            (rc = bk_put(b, GMCA_BACKUP_MAGIC, 8)) == 0 &&
            (rc = bk_put_u32(b, (uint32_t)strlen(txt))) == 0 &&
            (rc = bk_put(b, txt, strlen(txt))) == 0 &&
            (rc = bk_put_u16(b, (unsigned)sealed_len)) == 0 &&
            (rc = bk_put(b, sealed, sealed_len)) == 0)
                rc = bk_put(b, iv, GMCA_SM4_GCM_IV_LEN);
        free(txt);
        return rc;
}

/* Encrypt pkg into a new archive in out, sealed to pub. */
static int seal_archive(EVP_PKEY *pub, const uint8_t dk[GMCA_SM4_KEY_LEN], const uint8_t *pkg,
                        size_t pkglen, const struct gmca_backup_info *info, struct bk_buf *out,
                        struct gmca_error *e)
{
        uint8_t iv[GMCA_SM4_GCM_IV_LEN], tag[GMCA_SM4_GCM_TAG_LEN], *sealed = NULL;
        size_t sealed_len = 0, aad;
        int rc;

        if ((rc = gmca_rand_bytes(iv, sizeof(iv), e)) != 0 ||
            (rc = gmca_sm2_encrypt(pub, dk, GMCA_SM4_KEY_LEN, &sealed, &sealed_len, e)) != 0)
                return rc;
        if ((rc = put_header(out, info, sealed, sealed_len, iv)) != 0)
                goto nomem;
        aad = out->len;
        if ((rc = bk_put_u64(out, pkglen)) != 0 || (rc = bk_put(out, pkg, pkglen)) != 0 ||
            (rc = bk_put(out, tag, sizeof(tag))) != 0)
                goto nomem;
        rc = gmca_sm4_gcm_encrypt(dk, iv, out->p, aad, pkg, pkglen, out->p + aad + 8, tag, e);
        if (rc == 0)
                memcpy(out->p + out->len - sizeof(tag), tag, sizeof(tag));
        OPENSSL_free(sealed);
        return rc;
nomem:
        OPENSSL_free(sealed);
        return gmca_error_set(e, rc, "backup: archive too large");
}

/* ---- create ---- */

struct create_state {
        struct bk_buf blocks_txt, files_txt, delta, dbfile;
        struct bk_blocks blocks;
        struct bk_files files;
        struct chain base;
        size_t nblocks;
};

static void create_free(struct create_state *s)
{
        bk_buf_free(&s->blocks_txt);
        bk_buf_free(&s->files_txt);
        bk_buf_free(&s->delta);
        if (s->dbfile.p != NULL)
                OPENSSL_cleanse(s->dbfile.p, s->dbfile.len);
        bk_buf_free(&s->dbfile);
        bk_blocks_free(&s->blocks);
        bk_files_free(&s->files);
        chain_free(&s->base);
}

/* Snapshot the database (a PostgreSQL store as a SQLite file of the same
 * schema, backup_pg.c), take its blocks, and its bytes (full) or delta
 * (incremental). */
static int take_db(const char *dir, int incremental, struct create_state *s, struct gmca_error *e)
{
        char snap[PATH_MAX], side[PATH_MAX + 8];
        sqlite3 *h = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc;

        snprintf(snap, sizeof(snap), "%s/%s/snap.%ld.db", dir, GMCA_BACKUP_DIR, (long)getpid());
        if ((rc = bk_snapshot_dir(dir, snap, e)) != 0)
                return rc;
        if (sqlite3_open_v2(snap, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                rc = gmca_error_set(e, GMCA_ERR_DB, "backup: cannot open the snapshot");
        else if ((rc = bk_db_blocks(h, &s->blocks, e)) == 0 && incremental)
                rc = bk_delta_make(h, &s->base.blocks, &s->blocks, &s->delta, &s->nblocks, e);
        sqlite3_close(h);
        if (rc == 0 && !incremental &&
            (rc = gmca_read_file(snap, GMCA_BACKUP_MAX, &buf, &len, e)) == 0) {
                rc = bk_put(&s->dbfile, buf, len);
                OPENSSL_cleanse(buf, len);
                free(buf);
                if (rc != 0)
                        gmca_error_set(e, rc, "backup: database too large");
        }
        unlink(snap);
        snprintf(side, sizeof(side), "%s-wal", snap);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", snap);
        unlink(side);
        if (rc == 0)
                rc = bk_blocks_text(&s->blocks, &s->blocks_txt, e);
        return rc;
}

static int add_entry(struct gmca_pkg_entry **v, size_t *n, size_t *cap, const char *name,
                     const uint8_t *data, size_t len, struct gmca_error *e)
{
        int rc;

        if ((rc = gmca_grow((void **)v, cap, *n, sizeof(**v), 64, GMCA_PKG_ENTRIES_MAX)) != 0)
                return gmca_error_set(e, rc, "backup: too many entries");
        (*v)[*n].name = name;
        (*v)[*n].data = data ? data : (const uint8_t *)"";
        (*v)[*n].len = len;
        (*n)++;
        return 0;
}

/* The package's entries: db/..., files.list and the files to carry. */
static int entries(struct create_state *s, int incremental, struct gmca_pkg_entry **v, size_t *n,
                   size_t *carried, struct gmca_error *e)
{
        size_t cap = 0, i;
        int rc;

        *n = 0;
        *carried = 0;
        if ((rc = add_entry(v, n, &cap, "db/blocks", s->blocks_txt.p, s->blocks_txt.len, e)) != 0 ||
            (rc = add_entry(v, n, &cap, incremental ? "db/delta" : "db/gmca.db",
                            incremental ? s->delta.p : s->dbfile.p,
                            incremental ? s->delta.len : s->dbfile.len, e)) != 0 ||
            (rc = add_entry(v, n, &cap, "files.list", s->files_txt.p, s->files_txt.len, e)) != 0)
                return rc;
        for (i = 0; i < s->files.n; i++) {
                const struct bk_file *was =
                    incremental ? bk_files_find(&s->base.files, s->files.v[i].rel) : NULL;
                if (was != NULL && memcmp(was->d, s->files.v[i].d, GMCA_SM3_LEN) == 0 &&
                    was->mode == s->files.v[i].mode)
                        continue;
                if ((rc = add_entry(v, n, &cap, s->files.v[i].rel, s->files.v[i].data,
                                    s->files.v[i].size, e)) != 0)
                        return rc;
                (*carried)++;
        }
        return 0;
}

static int backup_dir(const char *dir, struct gmca_error *e)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", dir, GMCA_BACKUP_DIR);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        return 0;
}

static int build_archive(const struct gmca_backup_opts *o, struct create_state *s, EVP_PKEY *pub,
                         struct gmca_backup_info *info, struct bk_buf *arch, struct gmca_error *e)
{
        struct gmca_pkg_entry *v = NULL;
        uint8_t dk[GMCA_SM4_KEY_LEN], *pkg = NULL;
        size_t n = 0, pkglen = 0;
        int rc;

        if ((rc = take_db(o->dir, o->incremental, s, e)) != 0 ||
            (rc = bk_walk(o->dir, "", 0, &s->files, e)) != 0)
                goto out;
        qsort(s->files.v, s->files.n, sizeof(*s->files.v), bk_cmp_file);
        if ((rc = bk_files_text(&s->files, &s->files_txt, e)) != 0 ||
            (rc = entries(s, o->incremental, &v, &n, &info->files_carried, e)) != 0 ||
            (rc = gmca_rand_bytes(dk, sizeof(dk), e)) != 0 ||
            (rc = gmca_pkg_pack(v, n, bk_mac_seal, dk, &pkg, &pkglen, e)) != 0)
                goto out;
        info->entries = n;
        info->blocks_changed = s->nblocks;
        rc = seal_archive(pub, dk, pkg, pkglen, info, arch, e);
out:
        OPENSSL_cleanse(dk, sizeof(dk));
        if (pkg != NULL)
                OPENSSL_clear_free(pkg, pkglen);
        free(v);
        return rc;
}

int gmca_backup_create(const struct gmca_backup_opts *o, struct gmca_backup_info *out,
                       struct gmca_error *e)
{
        struct create_state s;
        struct gmca_backup_info info;
        struct bk_buf arch = {0};
        char copy[PATH_MAX];
        X509 *cert = NULL;
        uint8_t id[GMCA_SM3_LEN];
        int rc;

        memset(&s, 0, sizeof(s));
        memset(&info, 0, sizeof(info));
        if ((rc = gmca_backup_config(o->dir, &cert, copy, sizeof(copy), e)) != 0)
                goto out;
        if ((rc = bk_key_id(X509_get0_pubkey(cert), info.key_id, e)) != 0 ||
            (rc = backup_dir(o->dir, e)) != 0)
                goto out;
        info.created = (int64_t)gmca_now();
        gmca_strlcpy(info.kind, o->incremental ? "incremental" : "full", sizeof(info.kind));
        info.seq = 1;
        if (o->incremental) {
                if ((rc = chain_load(o->dir, &s.base, e)) != 0)
                        goto out;
                gmca_strlcpy(info.base, s.base.id, sizeof(info.base));
                info.seq = s.base.seq + 1;
        }
        if ((rc = build_archive(o, &s, X509_get0_pubkey(cert), &info, &arch, e)) != 0)
                goto out;
        if (gmca_sm3(arch.p, arch.len, id) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3");
                goto out;
        }
        gmca_hex(id, sizeof(id), info.id);
        if ((rc = gmca_write_file_excl(o->out, arch.p, arch.len, 0600, e)) != 0 ||
            (rc = chain_save(o->dir, &info, o->out, &s.blocks_txt, &s.files_txt, e)) != 0)
                goto out;
        if (out != NULL)
                *out = info;
out:
        X509_free(cert);
        bk_buf_free(&arch);
        create_free(&s);
        return rc;
}
