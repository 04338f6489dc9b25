/*
 * backup: archives of a CA state directory that can be trusted and
 * restored (CPS §6.9.1, §6.7.3, §6.1.8), and the container they share with
 * the termination export (export.h).
 *
 * The container ("package") is a list of named byte strings, sorted by
 * name, followed by a MANIFEST entry (one line per entry: SM3 hex, length,
 * name) and a seal over the manifest: an HMAC-SM3 for backups, the CA's
 * SM2 signature for exports. docs/export.md gives the byte layout.
 *
 * A backup archive wraps one package in SM4-GCM. Its SM4 key is SM2-sealed
 * to the backup certificate (gmca.json "backup_cert"), whose private key
 * the custodians keep offline: a daily backup needs nobody, a restore needs
 * that key. The outer header (format, kind, the archive it builds on) is
 * the GCM additional data, so it cannot be changed either.
 *
 * What a backup holds: the database as a consistent online snapshot (the
 * SQLite online backup API; a PostgreSQL store copied in one REPEATABLE
 * READ transaction into a SQLite file of the same schema, backup_pg.c),
 * and every file of the state directory but the database, run/ and
 * backups/ (configuration, profiles, the sealed key store, certificates,
 * every CRL). An incremental holds only what changed since the previous
 * archive of the chain: database rows are grouped in blocks of 256 rowids
 * per table, each block known by the SM3 of its rows; blocks whose digest
 * changed (new rows of append-only tables, a revocation's updated row) are
 * carried whole, and files whose SM3 changed. Every archive lists the
 * digests of all blocks and files as they were, so a restore proves that
 * it rebuilt exactly the state the CA had, and each incremental names the
 * SM3 of the archive it builds on. The chain's head is kept in
 * <dir>/backups/ (last, last.blocks, last.files; log lists every archive).
 *
 * What the seal does and does not prove: GCM and the manifest MAC catch any
 * change by someone without the archive's data key. The data key is sealed
 * to a public certificate, so someone who can write to the backup location
 * and holds the backup certificate could make a whole new archive; compare
 * an archive's id (SM3 of the file, printed, logged and audited at creation)
 * with the CA's records before trusting it for a restore.
 */
#ifndef GMCA_BACKUP_H
#define GMCA_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "err.h"

/* ---- the package container (shared with export.c) ---- */

#define GMCA_PKG_MAGIC "GMCAPKG1"
#define GMCA_PKG_NAME_MAX 255
#define GMCA_PKG_ENTRIES_MAX 1000000
#define GMCA_PKG_SEAL_MAX 128
#define GMCA_PKG_MANIFEST "MANIFEST"

/*
 * 1 if s[0..n) is a safe entry name: 1..GMCA_PKG_NAME_MAX printable bytes
 * without space or backslash, a relative path with no empty, "." or ".."
 * component (so it can name a file under a directory).
 */
int gmca_pkg_name_ok(const char *s, size_t n);

/* One named byte string; data borrowed. */
struct gmca_pkg_entry {
        const char *name;
        const uint8_t *data;
        size_t len;
};

/*
 * Pack n entries (names 1..GMCA_PKG_NAME_MAX printable bytes, pairwise
 * different, not "MANIFEST"; sorted here) and the manifest. seal(arg,
 * manifest, len, out, &outlen) fills at most GMCA_PKG_SEAL_MAX bytes.
 * *out: OPENSSL_malloc'd, caller frees.
 */
typedef int (*gmca_pkg_seal_fn)(void *arg, const uint8_t *manifest, size_t len,
                                uint8_t seal[GMCA_PKG_SEAL_MAX], size_t *seallen,
                                struct gmca_error *e);
int gmca_pkg_pack(struct gmca_pkg_entry *v, size_t n, gmca_pkg_seal_fn seal, void *arg,
                  uint8_t **out, size_t *outlen, struct gmca_error *e) GMCA_WUR;

/* A parsed package: pointers into the caller's buffer. */
struct gmca_pkg {
        struct gmca_pkg_entry *v; /* sorted by name, without the manifest */
        size_t n;
        const uint8_t *manifest;
        size_t manifest_len;
        const uint8_t *seal;
        size_t seal_len;
};
/*
 * Parse strictly: magic, bounds, names sorted and valid, the manifest equal
 * to the one the entries give, nothing after the seal. The seal itself is
 * the caller's to check. GMCA_ERR_INVALID / GMCA_ERR_TAMPER (manifest
 * mismatch) / GMCA_ERR_LIMIT. Free with gmca_pkg_clear.
 */
int gmca_pkg_parse(const uint8_t *buf, size_t len, struct gmca_pkg *p,
                   struct gmca_error *e) GMCA_WUR;
void gmca_pkg_clear(struct gmca_pkg *p);
/* The entry called name, or NULL. */
const struct gmca_pkg_entry *gmca_pkg_find(const struct gmca_pkg *p, const char *name);

/* ---- backup archives ---- */

#define GMCA_BACKUP_MAGIC "GMCABAK1"
#define GMCA_BACKUP_HEADER_MAX 4096
#define GMCA_BACKUP_MAX ((size_t)4 << 30) /* bytes of an archive */
#define GMCA_BACKUP_DIR "backups"         /* chain state, under the state directory */

/* The outer framing, parsed without the key (pointers into the buffer). */
struct gmca_backup_outer {
        const char *header; /* JSON, header_len bytes, not NUL-terminated */
        size_t header_len;
        const uint8_t *sealed_key; /* SM2Cipher of the SM4 key */
        size_t sealed_len;
        const uint8_t *iv;
        const uint8_t *ct;
        size_t ct_len;
        const uint8_t *tag;
        size_t aad_len; /* bytes from the start that are the GCM additional data */
};
int gmca_backup_parse_outer(const uint8_t *buf, size_t len, struct gmca_backup_outer *o,
                            struct gmca_error *e) GMCA_WUR;

/* What an archive says about itself (from the authenticated header). */
struct gmca_backup_info {
        char id[65];   /* SM3 of the archive file, hex */
        char kind[12]; /* "full" or "incremental" */
        char base[65]; /* an incremental's base archive id; "" for a full one */
        int64_t seq;   /* 1 for a full backup, +1 for each incremental */
        int64_t created;
        char key_id[65]; /* SM3 of the backup certificate's public point */
        size_t entries;
        size_t blocks_changed; /* incremental: database blocks carried */
        size_t files_carried;
};

struct gmca_backup_opts {
        const char *dir; /* the CA state directory */
        const char *out; /* archive path, must not exist */
        int incremental; /* 1: since the chain's last archive */
};

/*
 * Take a backup of opts->dir sealed to the backup certificate configured
 * in gmca.json, write it to opts->out (0600, exclusive) and make it the
 * chain's head. GMCA_ERR_STATE without "backup_cert" or for an incremental
 * without a previous archive.
 */
int gmca_backup_create(const struct gmca_backup_opts *opts, struct gmca_backup_info *info,
                       struct gmca_error *e) GMCA_WUR;

/*
 * Open an archive with the backup private key and check it whole: tag,
 * manifest, seal, the structure of every entry. GMCA_ERR_AUTH for a key
 * the archive is not sealed to, GMCA_ERR_TAMPER for any change.
 * If base_id is not NULL, an incremental must name it as its base.
 */
int gmca_backup_verify(const char *path, EVP_PKEY *key, const char *base_id,
                       struct gmca_backup_info *info, struct gmca_error *e) GMCA_WUR;

/*
 * Restore a full archive and then incrementals in chain order (paths[0]
 * full, each next one naming the previous as base) into directory to, which must
 * be absent or empty. The database and files are checked against the last
 * archive's digests before the directory is put in place (a failure leaves
 * nothing). info: the last archive's. The caller then records the restore
 * in the restored CA's audit chain.
 */
int gmca_backup_restore(const char *const *paths, size_t n, EVP_PKEY *key, const char *to,
                        struct gmca_backup_info *info, struct gmca_error *e) GMCA_WUR;
/*
 * The same, choosing the restored CA's store: db NULL keeps the backend the
 * archive was taken from (its gmca.json "database"), "sqlite" makes it the
 * SQLite file <to>/gmca.db, a postgresql:// URI loads an empty PostgreSQL
 * database (GMCA_ERR_EXISTS if it has tables) and checks it read back. So a
 * CA moves between the backends through a backup. A failure while loading
 * PostgreSQL leaves that database's schema behind, without rows.
 */
int gmca_backup_restore_db(const char *const *paths, size_t n, EVP_PKEY *key, const char *to,
                           const char *db, struct gmca_backup_info *info,
                           struct gmca_error *e) GMCA_WUR;

/*
 * The configured backup certificate of dir and the off-site copy target
 * (gmca.json "backup_copy", "" if none). *cert: caller frees.
 */
int gmca_backup_config(const char *dir, X509 **cert, char *copy, size_t copylen,
                       struct gmca_error *e) GMCA_WUR;

/*
 * Check cert as a backup certificate (SM2, key encipherment, in its
 * validity period), copy it to certs/backup.pem and set gmca.json
 * "backup_cert" (and "backup_copy" when copy is not NULL; "" removes it).
 */
int gmca_backup_setup(const char *dir, X509 *cert, const char *copy, struct gmca_error *e) GMCA_WUR;

/*
 * Copy the archive to dest: a local path (copied here, exclusive create),
 * or host:path / user@host:path (scp -B, no shell).
 */
int gmca_backup_copy(const char *path, const char *dest, struct gmca_error *e) GMCA_WUR;

#endif
