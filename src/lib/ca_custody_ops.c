/*
 * Custody ceremonies over the master key (CPS §6.3.4, §7.2.1.1, §7.2.1.3,
 * §7.1.2.5): handing the shares to a new set of custodians, and backing up
 * and restoring the CA keys with the state they belong to. The CA keys
 * themselves never leave the device in clear: a resplit only re-wraps the
 * key PIN under a new master key, and a backup carries each key as the
 * device's sealed blob inside an archive encrypted under a key derived from
 * the master key (keybackup.h), so three custodians are needed to open it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "backup_internal.h"
#include "ca_internal.h"
#include "crypto.h"
#include "keybackup.h"
#include "util.h"

#define RESTORE_CHECK_MSG "gmca key restore check"

static uint8_t *secure_alloc(size_t len, struct gmca_error *e)
{
        uint8_t *p;

        if (!CRYPTO_secure_malloc_initialized())
                (void)CRYPTO_secure_malloc_init(1 << 16, 32); /* not every system lets us lock */
        if ((p = OPENSSL_secure_zalloc(len)) == NULL)
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of secure memory");
        return p;
}

static json_t *hex_json(const uint8_t *v, size_t len)
{
        char buf[2 * GMCA_SM3_LEN + 1];

        gmca_hex_upper(v, len < GMCA_SM3_LEN ? len : GMCA_SM3_LEN, buf);
        return json_string(buf);
}

/* ---- custodian change ---- */

/* The new custodians, before anything is touched: CPS §7.2.1.1 and §7.4.1. */
static int check_next(const struct gmca_custodian *next, size_t n, unsigned threshold,
                      struct gmca_error *e)
{
        int rc;

        if (next == NULL || n < 2 || n > GMCA_CUSTODY_MAX || threshold < 2 || threshold > n)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "resplit: CPS §7.2.1.1: %u of %zu custodians is not a share "
                                      "set (2 <= threshold <= custodians <= %d)",
                                      threshold, n, GMCA_CUSTODY_MAX);
        for (size_t i = 0; i < n; i++) {
                if (next[i].name == NULL || next[i].name[0] == '\0' || next[i].path == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "resplit: new custodian %zu lacks a name or share "
                                              "file",
                                              i + 1);
                if (strlen(next[i].name) >= GMCA_CUSTODIAN_NAME_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "resplit: custodian name %zu is over %d bytes", i + 1,
                                              GMCA_CUSTODIAN_NAME_MAX - 1);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(next[i].name, next[j].name) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "resplit: custodian %s named twice",
                                                      next[i].name);
                if ((rc = gmca_pin_check(next[i].pin, next[i].pinlen, next[i].name, e)) != 0)
                        return rc;
                if (access(next[i].path, F_OK) == 0)
                        return gmca_error_set(e, GMCA_ERR_EXISTS,
                                              "resplit: share file %s exists; refusing to "
                                              "overwrite",
                                              next[i].path);
        }
        return 0;
}

int gmca_key_resplit(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                     const struct gmca_custodian *next, size_t nnext, unsigned threshold,
                     struct gmca_error *e)
{
        struct ca_custody old, nm;
        struct gmca_audit_event ev;
        uint8_t *master = NULL;
        json_t *names = NULL;
        char *detail = NULL;
        int rc, shares = 0;

        memset(&nm, 0, sizeof(nm));
        if (threshold == 0)
                threshold = 3;
        if ((rc = check_next(next, nnext, threshold, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_RESPLIT, "custody", rc, e);
        if ((rc = ca_ceremony_begin(c, cust, n, &old, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_RESPLIT, "custody", rc, e);

        /* The same installation, a new set: every old share now names a set that is gone. */
        memcpy(nm.set.installation, old.set.installation, GMCA_CUSTODY_ID_LEN);
        nm.set.threshold = threshold;
        nm.set.count = (unsigned)nnext;
        nm.created = gmca_now();
        if ((master = secure_alloc(GMCA_MASTER_LEN, e)) == NULL) {
                rc = GMCA_ERR_NOMEM;
                goto out;
        }
        do {
                if ((rc = gmca_device_random(c->dev, nm.set.set_id, GMCA_CUSTODY_ID_LEN, e)) != 0)
                        goto out;
        } while (memcmp(nm.set.set_id, old.set.set_id, GMCA_CUSTODY_ID_LEN) == 0);
        if ((rc = gmca_device_random(c->dev, master, GMCA_MASTER_LEN, e)) != 0 ||
            (rc = ca_custody_wrap(&nm, master, CTX_KEYPIN(c), e)) != 0)
                goto out;
        if ((names = json_array()) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < nnext; i++) {
                gmca_strlcpy(nm.names[i], next[i].name, sizeof(nm.names[i]));
                json_array_append_new(names, json_string(next[i].name));
        }
        detail = ca_detail_json(
            json_pack("{s:s, s:O, s:i, s:i, s:o, s:o}", "present", c->custodians, "custodians",
                      names, "threshold", (int)threshold, "count", (int)nnext, "set",
                      hex_json(nm.set.set_id, GMCA_CUSTODY_ID_LEN), "previous_set",
                      hex_json(old.set.set_id, GMCA_CUSTODY_ID_LEN)));
        ev = (struct gmca_audit_event){GMCA_EV_KEY_RESPLIT, c->actor, 1, "custody", detail};
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                goto out;
        if ((rc = ca_custody_store(c->store, &nm, e)) != 0 ||
            (rc = gmca_audit_append(c->store, &ev, e)) != 0) {
                gmca_store_rollback(c->store);
                goto out;
        }
        /* The shares go out last: after them only the commit can fail. */
        if ((rc = gmca_custody_split(master, &nm.set, next, nnext, e)) != 0) {
                gmca_store_rollback(c->store);
                goto out;
        }
        shares = 1;
        if ((rc = gmca_store_commit(c->store, e)) != 0)
                goto out;
        shares = 0;
out:
        if (shares)
                for (size_t i = 0; i < nnext; i++)
                        unlink(next[i].path);
        OPENSSL_secure_clear_free(master, GMCA_MASTER_LEN);
        OPENSSL_cleanse(&nm, sizeof(nm));
        free(detail);
        json_decref(names);
        ca_ceremony_end(c);
        return rc == 0 ? 0 : ca_reject(c, GMCA_EV_KEY_RESPLIT, "custody", rc, e);
}

/* ---- backup ---- */

struct backup_ca {
        char name[GMCA_NAME_MAX];
        unsigned index; /* 0: the device holds no key for it */
};

struct backup_list {
        struct backup_ca cas[GMCA_KBK_CAS_MAX];
        size_t n;
};

static int list_ca(const struct gmca_ca_rec *r, void *arg)
{
        struct backup_list *l = arg;

        if (l->n == GMCA_KBK_CAS_MAX)
                return GMCA_ERR_LIMIT;
        gmca_strlcpy(l->cas[l->n].name, r->name, GMCA_NAME_MAX);
        l->cas[l->n].index = ca_state_signs_crls(r->key_state) ? ca_key_index(r) : 0;
        l->n++;
        return 0;
}

/* Every regular file under top/rel into the archive as rel/...; a missing rel is empty. */
static int put_tree(struct gmca_kbk_writer *w, const char *top, const char *rel, int depth,
                    struct gmca_error *e)
{
        char dir[PATH_MAX];
        struct dirent *de;
        DIR *d;
        int rc = 0;

        if ((rc = ca_pathf(dir, sizeof(dir), e, "%s/%s", top, rel)) != 0)
                return rc;
        if ((d = opendir(dir)) == NULL)
                return errno == ENOENT ? 0
                                       : gmca_error_set(e, GMCA_ERR_IO, "key backup: %s: %s", dir,
                                                        strerror(errno));
        while (rc == 0 && (de = readdir(d)) != NULL) {
                char path[PATH_MAX], sub[GMCA_KBK_PATH_MAX + 1];
                struct stat st;

                if (de->d_name[0] == '.') /* ".", "..", and editors' leftovers */
                        continue;
                if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name) >= sizeof(sub) ||
                    (rc = ca_pathf(path, sizeof(path), e, "%s/%s", top, sub)) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "key backup: %s/%s: path too long",
                                            rel, de->d_name);
                        break;
                }
                if (lstat(path, &st) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_IO, "key backup: %s: %s", path,
                                            strerror(errno));
                        break;
                }
                if (S_ISDIR(st.st_mode) && depth < 4)
                        rc = put_tree(w, top, sub, depth + 1, e);
                else if (S_ISREG(st.st_mode) && gmca_kbk_path_ok(sub))
                        rc = gmca_kbk_put_file(w, sub, path, e);
                else
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "key backup: %s is not a file a backup can hold "
                                            "(names [A-Za-z0-9._-], regular files, depth 5)",
                                            sub);
        }
        closedir(d);
        return rc;
}

/*
 * The snapshot's custody record is the one the custodians opened: nothing
 * changed the share set between the start of the ceremony and the snapshot.
 */
static int snapshot_custody_same(struct gmca_ctx *c, const char *snap, const struct ca_custody *m,
                                 struct gmca_error *e)
{
        struct gmca_store *s, *live = c->store;
        struct ca_custody sm;
        int rc;

        if ((s = gmca_store_open(snap, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_DB;
        c->store = s; /* ca_custody_load reads the context's store */
        rc = ca_custody_load(c, &sm, e);
        c->store = live;
        gmca_store_close(s);
        if (rc == 0 && (memcmp(&sm.set, &m->set, sizeof(sm.set)) != 0 ||
                        memcmp(sm.check, m->check, sizeof(sm.check)) != 0))
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "key backup: the custodians changed during the backup; run "
                                    "it again");
        return rc;
}

int gmca_key_backup(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                    const char *out_path, struct gmca_error *e)
{
        struct ca_custody m;
        struct gmca_kbk_header h;
        struct backup_list l;
        struct gmca_kbk_writer *w = NULL;
        struct gmca_audit_event ev;
        uint8_t key[GMCA_SM4_KEY_LEN], sm3[GMCA_SM3_LEN], *header = NULL, *blob = NULL;
        char snapdir[PATH_MAX] = "", snap[PATH_MAX] = "", tmp[PATH_MAX] = "", path[PATH_MAX];
        size_t hlen = 0, blen = 0;
        uint64_t bytes = 0;
        json_t *cas = NULL, *keys = NULL;
        char *detail = NULL;
        int rc, fd = -1, linked = 0, began = 0;

        memset(&h, 0, sizeof(h));
        memset(&l, 0, sizeof(l));
        if (out_path == NULL || out_path[0] == '\0') {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "key backup: no output file");
                goto out;
        }
        if (access(out_path, F_OK) == 0) {
                rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                    "key backup: %s exists; refusing to "
                                    "overwrite",
                                    out_path);
                goto out;
        }
        if ((rc = ca_ceremony_begin(c, cust, n, &m, e)) != 0)
                goto out;
        began = 1;
        if (!gmca_device_has(c->dev, "SDFX_ExportKeyBlob")) {
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "key backup: the device (%s) cannot export sealed keys "
                                    "(SDFX_ExportKeyBlob): back them up with the vendor's tool",
                                    gmca_device_description(c->dev));
                goto out;
        }
        if ((rc = gmca_store_ca_list(c->store, list_ca, &l, e)) != 0) {
                if (rc == GMCA_ERR_LIMIT)
                        gmca_error_set(e, rc, "key backup: more than %d CAs", GMCA_KBK_CAS_MAX);
                goto out;
        }
        h.set = m.set;
        memcpy(h.check, m.check, sizeof(h.check));
        h.created = gmca_now();
        h.ncas = l.n;
        for (size_t i = 0; i < l.n; i++)
                gmca_strlcpy(h.cas[i], l.cas[i].name, GMCA_NAME_MAX);
        gmca_strlcpy(h.device, gmca_device_description(c->dev), sizeof(h.device));
        if (h.device[0] == '\0')
                gmca_strlcpy(h.device, "unknown", sizeof(h.device));
        if ((rc = gmca_device_random(c->dev, h.salt, sizeof(h.salt), e)) != 0 ||
            (rc = gmca_kbk_header_encode(&h, &header, &hlen, e)) != 0 ||
            (rc = gmca_kbk_key(CTX_MASTER(c), h.salt, key, e)) != 0)
                goto out;

        /* A consistent copy of the store, beside the live one (run/ is 0700). */
        if ((rc = ca_pathf(snapdir, sizeof(snapdir), e, "%s/run/backup-XXXXXX", c->dir)) != 0)
                goto out;
        if (mkdtemp(snapdir) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "key backup: %s: %s", snapdir, strerror(errno));
                snapdir[0] = '\0';
                goto out;
        }
        if ((rc = ca_pathf(snap, sizeof(snap), e, "%s/%s", snapdir, GMCA_DB_FILE)) != 0 ||
            (rc = gmca_store_snapshot(c->store, snap, e)) != 0 ||
            (rc = snapshot_custody_same(c, snap, &m, e)) != 0)
                goto out;

        /* Written under a temporary name, then linked into place: never half a backup. */
        if ((rc = ca_pathf(tmp, sizeof(tmp), e, "%s.XXXXXX", out_path)) != 0)
                goto out;
        if ((fd = mkstemp(tmp)) < 0) {
                rc =
                    gmca_error_set(e, GMCA_ERR_IO, "key backup: %s: %s", out_path, strerror(errno));
                tmp[0] = '\0';
                goto out;
        }
        if (fchmod(fd, 0600) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "key backup: %s: %s", tmp, strerror(errno));
                goto out;
        }
        if ((w = gmca_kbk_writer_new(fd, header, hlen, key, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INTERNAL;
                goto out;
        }
        if ((rc = ca_pathf(path, sizeof(path), e, "%s/%s", c->dir, GMCA_CONFIG_FILE)) != 0 ||
            (rc = gmca_kbk_put_file(w, GMCA_CONFIG_FILE, path, e)) != 0 ||
            (rc = put_tree(w, c->dir, "profiles", 0, e)) != 0 ||
            (rc = put_tree(w, c->dir, "certs", 0, e)) != 0 ||
            (rc = put_tree(w, c->dir, "crl", 0, e)) != 0 ||
            (rc = put_tree(w, c->dir, "keys/archive", 0, e)) != 0 ||
            (rc = gmca_kbk_put_file(w, GMCA_DB_FILE, snap, e)) != 0)
                goto out;
        if ((keys = json_array()) == NULL || (cas = json_array()) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < l.n; i++) {
                json_array_append_new(cas, json_string(l.cas[i].name));
                if (l.cas[i].index == 0)
                        continue;
                if ((rc = gmca_device_export_blob(c->dev, l.cas[i].index, &blob, &blen, e)) != 0 ||
                    (rc = gmca_kbk_put_key(w, l.cas[i].index, blob, blen, e)) != 0)
                        goto out;
                free(blob);
                blob = NULL;
                json_array_append_new(keys, json_integer(l.cas[i].index));
        }
        if ((rc = gmca_kbk_finish(w, sm3, &bytes, e)) != 0)
                goto out;
        if (close(fd) != 0) {
                fd = -1;
                rc = gmca_error_set(e, GMCA_ERR_IO, "key backup: %s: %s", tmp, strerror(errno));
                goto out;
        }
        fd = -1;
        if (link(tmp, out_path) != 0) {
                rc = gmca_error_set(e, errno == EEXIST ? GMCA_ERR_EXISTS : GMCA_ERR_IO,
                                    "key backup: %s: %s", out_path, strerror(errno));
                goto out;
        }
        linked = 1;

        detail = ca_detail_json(json_pack(
            "{s:s, s:s, s:o, s:I, s:O, s:O, s:o, s:s}", "custodians", c->custodians, "file",
            out_path, "sm3", hex_json(sm3, sizeof(sm3)), "bytes", (json_int_t)bytes, "cas", cas,
            "keys", keys, "set", hex_json(m.set.set_id, GMCA_CUSTODY_ID_LEN), "device", h.device));
        ev = (struct gmca_audit_event){GMCA_EV_KEY_BACKUP, c->actor, 1, "ca", detail};
        if ((rc = gmca_audit_record(c->store, &ev, e)) != 0)
                goto out;
        linked = 0;
out:
        if (fd >= 0)
                close(fd);
        if (tmp[0] != '\0')
                unlink(tmp);
        if (linked)
                unlink(out_path);
        if (snap[0] != '\0')
                unlink(snap);
        if (snapdir[0] != '\0')
                rmdir(snapdir);
        gmca_kbk_writer_free(w);
        OPENSSL_cleanse(key, sizeof(key));
        free(blob);
        free(header);
        free(detail);
        json_decref(cas);
        json_decref(keys);
        if (began)
                ca_ceremony_end(c);
        return rc == 0 ? 0 : ca_reject(c, GMCA_EV_KEY_BACKUP, "ca", rc, e);
}

/* ---- restore ---- */

struct restore_key {
        unsigned index;
        uint8_t *blob;
        size_t len;
        int imported, checked;
};

struct restore {
        const char *top; /* the temporary state directory */
        int fd;          /* the file being written */
        char cur[GMCA_KBK_PATH_MAX + 1];
        struct restore_key keys[GMCA_KBK_CAS_MAX];
        size_t nkeys;
        int have_db, have_config;
};

/* mkdir -p for the parents of rel under top: keys/ stays private. */
static int make_parents(const char *top, const char *rel, struct gmca_error *e)
{
        char path[PATH_MAX];
        size_t base = strlen(top) + 1;
        int rc;

        if ((rc = ca_pathf(path, sizeof(path), e, "%s/%s", top, rel)) != 0)
                return rc;
        for (char *p = path + base; (p = strchr(p, '/')) != NULL; p++) {
                mode_t mode = strncmp(path + base, "keys", 4) == 0 ? 0700 : 0755;

                *p = '\0';
                if (mkdir(path, mode) != 0 && errno != EEXIST)
                        return gmca_error_set(e, GMCA_ERR_IO, "key restore: %s: %s", path,
                                              strerror(errno));
                *p = '/';
        }
        return 0;
}

static int restore_open(void *arg, const char *rel, uint64_t size, struct gmca_error *e)
{
        struct restore *r = arg;
        char path[PATH_MAX];
        int private, rc;

        (void)size;
        private = strcmp(rel, GMCA_DB_FILE) == 0 || strncmp(rel, "keys/", 5) == 0;
        if ((rc = make_parents(r->top, rel, e)) != 0 ||
            (rc = ca_pathf(path, sizeof(path), e, "%s/%s", r->top, rel)) != 0)
                return rc;
        r->fd =
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, private ? 0600 : 0644);
        if (r->fd < 0)
                return gmca_error_set(e, errno == EEXIST ? GMCA_ERR_TAMPER : GMCA_ERR_IO,
                                      "key restore: %s: %s", rel,
                                      errno == EEXIST ? "in the archive twice" : strerror(errno));
        gmca_strlcpy(r->cur, rel, sizeof(r->cur));
        r->have_db |= strcmp(rel, GMCA_DB_FILE) == 0;
        r->have_config |= strcmp(rel, GMCA_CONFIG_FILE) == 0;
        return 0;
}

static int restore_data(void *arg, const uint8_t *p, size_t n, struct gmca_error *e)
{
        struct restore *r = arg;

        if (gmca_write_all(r->fd, p, n) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "key restore: %s: %s", r->cur,
                                      strerror(errno));
        return 0;
}

static int restore_close(void *arg, struct gmca_error *e)
{
        struct restore *r = arg;
        int rc = fsync(r->fd) == 0 ? 0 : -1;

        if (close(r->fd) != 0)
                rc = -1;
        r->fd = -1;
        return rc == 0
                   ? 0
                   : gmca_error_set(e, GMCA_ERR_IO, "key restore: %s: %s", r->cur, strerror(errno));
}

/* Key blobs wait in memory until the whole archive has authenticated. */
static int restore_key(void *arg, unsigned index, const uint8_t *blob, size_t n,
                       struct gmca_error *e)
{
        struct restore *r = arg;
        struct restore_key *k;

        for (size_t i = 0; i < r->nkeys; i++)
                if (r->keys[i].index == index)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "key restore: key %u in the archive twice", index);
        if (r->nkeys == GMCA_KBK_CAS_MAX)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key restore: more than %d keys",
                                      GMCA_KBK_CAS_MAX);
        k = &r->keys[r->nkeys];
        if ((k->blob = malloc(n)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        memcpy(k->blob, blob, n);
        k->len = n;
        k->index = index;
        r->nkeys++;
        return 0;
}

static void restore_clear(struct restore *r)
{
        if (r->fd >= 0)
                close(r->fd);
        for (size_t i = 0; i < r->nkeys; i++) {
                OPENSSL_cleanse(r->keys[i].blob, r->keys[i].len);
                free(r->keys[i].blob);
        }
        memset(r, 0, sizeof(*r));
        r->fd = -1;
}

/* Read the public header of the archive on fd into h and its bytes into *buf. */
static int read_header(int fd, const char *name, struct gmca_kbk_header *h, uint8_t **buf,
                       size_t *len, struct gmca_error *e)
{
        uint8_t prefix[GMCA_KBK_PREFIX_LEN], *b;
        size_t got = 0, total = 0, used = 0;
        ssize_t n;
        int rc, magic;

        while (got < sizeof(prefix)) {
                if ((n = read(fd, prefix + got, sizeof(prefix) - got)) < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        if (got < sizeof(prefix)) { /* a cut backup still starts with the magic */
                magic = got >= 8 && memcmp(prefix, GMCA_KBK_MAGIC, 8) == 0;
                return gmca_error_set(e, magic ? GMCA_ERR_TAMPER : GMCA_ERR_INVALID, "%s: %s", name,
                                      magic ? "key backup cut short in its header"
                                            : "not a gmca key backup (too short)");
        }
        if ((rc = gmca_kbk_header_len(prefix, &total, e)) != 0)
                return rc;
        if ((b = malloc(total)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        memcpy(b, prefix, sizeof(prefix));
        if (gmca_read_all(fd, b + sizeof(prefix), total - sizeof(prefix)) != 0) {
                free(b);
                return gmca_error_set(e, GMCA_ERR_TAMPER, "%s: cut short in its header", name);
        }
        if ((rc = gmca_kbk_header_parse(b, total, h, &used, e)) != 0) {
                free(b);
                return rc;
        }
        *buf = b;
        *len = total;
        return 0;
}

/* Point the restored configuration at the device given for it. */
static int set_device(const char *top, const struct gmca_restore_params *p, struct gmca_error *e)
{
        char path[PATH_MAX], *text = NULL;
        uint8_t *buf = NULL;
        size_t len;
        json_t *root = NULL;
        json_error_t jerr;
        int rc;

        if (p->device_library == NULL && p->device_config == NULL)
                return 0;
        if (p->device_library != NULL &&
            (p->device_library[0] != '/' || strlen(p->device_library) >= PATH_MAX))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "key restore: the device library must be an absolute path");
        if (p->device_config != NULL &&
            (p->device_config[0] == '\0' || strlen(p->device_config) >= PATH_MAX))
                return gmca_error_set(e, GMCA_ERR_INVALID, "key restore: bad device config");
        if ((rc = ca_pathf(path, sizeof(path), e, "%s/%s", top, GMCA_CONFIG_FILE)) != 0 ||
            (rc = gmca_read_file(path, CONFIG_MAX, &buf, &len, e)) != 0)
                return rc;
        root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
        rc = GMCA_ERR_INVALID;
        if (root == NULL || !json_is_object(root)) {
                gmca_error_set(e, rc, "key restore: %s in the backup is not a JSON object",
                               GMCA_CONFIG_FILE);
                goto out;
        }
        if ((p->device_library != NULL &&
             json_object_set_new(root, "device_library", json_string(p->device_library)) != 0) ||
            (p->device_config != NULL &&
             json_object_set_new(root, "device_config", json_string(p->device_config)) != 0) ||
            (text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        rc = gmca_write_file_atomic(path, text, strlen(text), 0644, e);
out:
        free(text);
        free(buf);
        json_decref(root);
        return rc;
}

struct name_list {
        char names[GMCA_KBK_CAS_MAX][GMCA_NAME_MAX];
        size_t n;
};

static int collect(const struct gmca_ca_rec *r, void *arg)
{
        struct name_list *l = arg;

        if (l->n == GMCA_KBK_CAS_MAX)
                return GMCA_ERR_LIMIT;
        gmca_strlcpy(l->names[l->n++], r->name, GMCA_NAME_MAX);
        return 0;
}

static struct restore_key *find_key(struct restore *r, unsigned index)
{
        for (size_t i = 0; i < r->nkeys; i++)
                if (r->keys[i].index == index)
                        return &r->keys[i];
        return NULL;
}

/*
 * The restored key of ca answers to its certificate: the device holds the
 * certificate's public key at the CA's index, the key PIN unlocks it, and a
 * signature it makes verifies (in OpenSSL) under the certificate's key.
 */
static int check_key(struct gmca_ctx *c, struct ca_slot *ca, struct restore_key *k,
                     const uint8_t keypin[KEYPIN_LEN], struct gmca_error *e)
{
        struct gmca_device_signer ds;
        const char *id = ca->rec.sm2_id[0] ? ca->rec.sm2_id : NULL;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        EVP_PKEY *pub;
        int rc;

        if ((pub = gmca_device_public_key(c->dev, k->index, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        rc = EVP_PKEY_eq(pub, X509_get0_pubkey(ca->cert));
        EVP_PKEY_free(pub);
        gmca_ossl_clear();
        if (rc != 1)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key restore: CA %s: the key restored at index %u is not "
                                      "the key of its certificate",
                                      ca->rec.name, k->index);
        if ((rc = gmca_device_unlock(c->dev, k->index, keypin, KEYPIN_LEN, e)) != 0)
                return rc;
        rc = gmca_device_signer_init(&ds, c->dev, k->index, X509_get0_pubkey(ca->cert), id, e);
        if (rc == 0)
                rc = ds.base.sign(ds.base.arg, (const uint8_t *)RESTORE_CHECK_MSG,
                                  strlen(RESTORE_CHECK_MSG), sig, &siglen, e);
        if (rc == 0 &&
            gmca_sm2_verify(X509_get0_pubkey(ca->cert), id, (const uint8_t *)RESTORE_CHECK_MSG,
                            strlen(RESTORE_CHECK_MSG), sig, siglen, e) != 0)
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "key restore: CA %s: the restored key's signature does not "
                                    "verify under its certificate",
                                    ca->rec.name);
        gmca_device_lock(c->dev, k->index);
        OPENSSL_cleanse(&ds, sizeof(ds));
        k->checked = rc == 0;
        return rc;
}

/* Import every key, then check each CA that signs against its certificate. */
static int restore_keys(struct gmca_ctx *c, struct restore *r, const uint8_t keypin[KEYPIN_LEN],
                        json_t *keys, struct gmca_error *e)
{
        struct name_list l;
        int rc;

        memset(&l, 0, sizeof(l));
        if ((rc = ca_open_device(c, e)) != 0)
                return rc;
        if (!gmca_device_has(c->dev, "SDFX_ImportKeyBlob"))
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "key restore: the device (%s) cannot import sealed keys "
                                      "(SDFX_ImportKeyBlob): use the vendor's tool",
                                      gmca_device_description(c->dev));
        for (size_t i = 0; i < r->nkeys; i++) {
                struct restore_key *k = &r->keys[i];

                rc = gmca_device_import_blob(c->dev, k->index, k->blob, k->len, e);
                if (rc == GMCA_ERR_EXISTS) {
                        gmca_error_clear(e);
                        return gmca_error_set(e, rc,
                                              "key restore: the device already holds a key at "
                                              "index %u: restore onto an empty device (give "
                                              "--device-config)",
                                              k->index);
                }
                if (rc != 0)
                        return rc;
                k->imported = 1;
        }
        if ((rc = gmca_store_ca_list(c->store, collect, &l, e)) != 0)
                return rc == GMCA_ERR_LIMIT ? gmca_error_set(e, rc, "too many CAs") : rc;
        for (size_t i = 0; i < l.n; i++) {
                struct ca_slot *ca = ca_find(c, l.names[i], e);
                struct restore_key *k;

                if (ca == NULL)
                        return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
                if (!ca_state_signs_crls(ca->rec.key_state))
                        continue;
                if ((k = find_key(r, ca_key_index(&ca->rec))) == NULL)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "key restore: the backup holds no key for CA %s "
                                              "(%s)",
                                              ca->rec.name, ca->rec.key_file);
                if ((rc = check_key(c, ca, k, keypin, e)) != 0)
                        return rc;
                json_array_append_new(
                    keys, json_pack("{s:s, s:i}", "ca", ca->rec.name, "index", (int)k->index));
        }
        for (size_t i = 0; i < r->nkeys; i++)
                if (!r->keys[i].checked)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "key restore: the key at index %u belongs to no CA "
                                              "that signs",
                                              r->keys[i].index);
        return 0;
}

/* After a failure: a device outside the temporary directory forgets what was imported. */
static void unimport(struct gmca_ctx *c, const char *top, struct restore *r,
                     const uint8_t keypin[KEYPIN_LEN])
{
        char config[PATH_MAX];
        struct gmca_device_conf dc;
        struct gmca_error ignored = {0};
        size_t n = strlen(top);

        if (c == NULL || c->dev == NULL ||
            ca_device_conf(c->dir, &c->cfg, config, sizeof(config), &dc, &ignored) != 0)
                return;
        if (c->cfg.device_library[0] == '\0' && strncmp(config, top, n) == 0 && config[n] == '/')
                return; /* the built-in device's key store goes with the directory */
        for (size_t i = 0; i < r->nkeys; i++)
                if (r->keys[i].imported && gmca_device_destroy_key(c->dev, r->keys[i].index, keypin,
                                                                   KEYPIN_LEN, &ignored) == 0)
                        r->keys[i].imported = 0;
}

int gmca_key_restore(const struct gmca_restore_params *p, struct gmca_error *e)
{
        struct gmca_kbk_header h;
        struct restore r;
        struct gmca_kbk_reader *rd = NULL;
        struct gmca_ctx *c = NULL;
        struct ca_custody m;
        struct gmca_audit_event ev;
        struct gmca_kbk_sink sink = {restore_open, restore_data, restore_close, restore_key, &r};
        char tmp[PATH_MAX] = "", path[PATH_MAX], who[GMCA_CUSTODY_MAX * GMCA_CUSTODIAN_NAME_MAX];
        uint8_t *secrets = NULL, *header = NULL, key[GMCA_SM4_KEY_LEN], check[32],
                sm3[GMCA_SM3_LEN];
        size_t hlen = 0;
        json_t *keys = NULL;
        char *detail = NULL;
        int rc, fd = -1, state;
        struct gmca_kbk_src source = {gmca_kbk_read, NULL};

        memset(&r, 0, sizeof(r));
        memset(&m, 0, sizeof(m));
        r.fd = -1;
        if (p == NULL || p->archive == NULL || p->dir == NULL || p->dir[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "key restore: archive and directory "
                                      "needed");
        if ((state = ca_dir_free(p->dir)) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "key restore: %s exists and is not empty; restore onto a "
                                      "fresh state directory",
                                      p->dir);
        if ((fd = open(p->archive, O_RDONLY | O_CLOEXEC)) < 0)
                return gmca_error_set(e, errno == ENOENT ? GMCA_ERR_NOTFOUND : GMCA_ERR_IO,
                                      "key restore: %s: %s", p->archive, strerror(errno));
        if ((rc = read_header(fd, p->archive, &h, &header, &hlen, e)) != 0)
                goto out;

        /* The custodians of the share set the backup names open it. */
        if ((secrets = secure_alloc(GMCA_MASTER_LEN + KEYPIN_LEN, e)) == NULL) {
                rc = GMCA_ERR_NOMEM;
                goto out;
        }
        /* combine would call a share of another set "earlier": here it may be later. */
        for (size_t i = 0; p->custodians != NULL && i < p->ncustodians; i++) {
                struct gmca_share_info info;
                char when[32];

                if (p->custodians[i].path == NULL ||
                    gmca_share_info(p->custodians[i].path, &info, e) != 0)
                        break; /* combine names the fault */
                if (memcmp(info.installation, h.set.installation, GMCA_CUSTODY_ID_LEN) == 0 &&
                    memcmp(info.set_id, h.set.set_id, GMCA_CUSTODY_ID_LEN) != 0) {
                        gmca_time_iso((time_t)h.created, when, sizeof(when));
                        rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                            "key restore: share file %s of %s is not of the share "
                                            "set this backup (made %s) opens with: a backup "
                                            "opens with the shares current when it was made",
                                            p->custodians[i].path, info.custodian, when);
                        goto out;
                }
        }
        gmca_error_clear(e);
        who[0] = '\0';
        if ((rc = gmca_custody_combine(&h.set, p->custodians, p->ncustodians, secrets, who,
                                       sizeof(who), e)) != 0 ||
            (rc = gmca_custody_check_value(secrets, check, e)) != 0)
                goto out;
        if (CRYPTO_memcmp(check, h.check, sizeof(check)) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "key restore: the shares given do not open this backup");
                goto out;
        }
        if ((rc = gmca_kbk_key(secrets, h.salt, key, e)) != 0)
                goto out;

        /* Everything is built beside dir and renamed into place at the end. */
        if ((rc = ca_pathf(tmp, sizeof(tmp), e, "%s.restore-XXXXXX", p->dir)) != 0)
                goto out;
        if (mkdtemp(tmp) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "key restore: %s: %s", tmp, strerror(errno));
                tmp[0] = '\0';
                goto out;
        }
        r.top = tmp;
        {
                static const char *const subdirs[] = {"keys", "certs", "crl", "profiles", "run"};

                for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
                        if ((rc = ca_pathf(path, sizeof(path), e, "%s/%s", tmp, subdirs[i])) != 0)
                                goto out;
                        if (mkdir(path, i == 0 || i == 4 ? 0700 : 0755) != 0) {
                                rc = gmca_error_set(e, GMCA_ERR_IO, "key restore: %s: %s", path,
                                                    strerror(errno));
                                goto out;
                        }
                }
        }
        if ((rd = gmca_kbk_reader_new(fd, header, hlen, key, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INTERNAL;
                goto out;
        }
        source.arg = rd;
        if ((rc = gmca_kbk_entries(&source, &sink, e)) != 0 ||
            (rc = gmca_kbk_reader_finish(rd, sm3, e)) != 0)
                goto out;
        if (!r.have_db || !r.have_config) {
                rc = gmca_error_set(e, GMCA_ERR_TAMPER, "key restore: the backup lacks %s",
                                    r.have_db ? GMCA_CONFIG_FILE : GMCA_DB_FILE);
                goto out;
        }
        /* The archive is whole and authentic: now the device. The restored CA
         * runs on the backup's store file, never on a PostgreSQL database its
         * configuration names (the live CA's). */
        if ((rc = set_device(tmp, p, e)) != 0 || (rc = bk_config_db(tmp, NULL, 0, "", e)) != 0)
                goto out;
        if ((c = gmca_ctx_open(tmp, p->actor, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        if ((rc = ca_custody_load(c, &m, e)) != 0)
                goto out;
        if (memcmp(&m.set, &h.set, sizeof(m.set)) != 0 ||
            CRYPTO_memcmp(m.check, h.check, sizeof(m.check)) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "key restore: the backed-up store is under another share set "
                                    "than its header says");
                goto out;
        }
        if ((rc = ca_custody_unwrap(&m, secrets, secrets + GMCA_MASTER_LEN, e)) != 0)
                goto out;
        if ((keys = json_array()) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = restore_keys(c, &r, secrets + GMCA_MASTER_LEN, keys, e)) != 0)
                goto out;
        detail = ca_detail_json(json_pack("{s:s, s:s, s:o, s:I, s:O, s:s, s:o}", "custodians", who,
                                          "archive", p->archive, "sm3", hex_json(sm3, sizeof(sm3)),
                                          "backup_created", (json_int_t)h.created, "keys", keys,
                                          "device", gmca_device_description(c->dev), "set",
                                          hex_json(h.set.set_id, GMCA_CUSTODY_ID_LEN)));
        ev = (struct gmca_audit_event){GMCA_EV_KEY_RESTORE, c->actor, 1, "ca", detail};
        if ((rc = gmca_audit_record(c->store, &ev, e)) != 0)
                goto out;
        if ((state = ca_dir_free(p->dir)) == 0) {
                rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                    "key restore: %s is no longer empty; refusing to overwrite",
                                    p->dir);
                goto out;
        }
        gmca_ctx_close(c); /* the store's files move with the directory */
        c = NULL;
        if ((state == 2 && rmdir(p->dir) != 0) || rename(tmp, p->dir) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "key restore: %s: %s", p->dir, strerror(errno));
                /* reopen to forget the imported keys in an outside device */
                if ((c = gmca_ctx_open(tmp, p->actor, NULL)) != NULL &&
                    ca_open_device(c, NULL) != 0) {
                        gmca_ctx_close(c);
                        c = NULL;
                }
                goto out;
        }
        tmp[0] = '\0';
        rc = 0;
out:
        if (rc != 0 && tmp[0] != '\0' && secrets != NULL)
                unimport(c, tmp, &r, secrets + GMCA_MASTER_LEN);
        gmca_ctx_close(c);
        gmca_kbk_reader_free(rd);
        restore_clear(&r);
        if (tmp[0] != '\0')
                ca_rm_tree(tmp);
        if (fd >= 0)
                close(fd);
        OPENSSL_secure_clear_free(secrets, GMCA_MASTER_LEN + KEYPIN_LEN);
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(&m, sizeof(m));
        free(header);
        free(detail);
        json_decref(keys);
        return rc;
}
