/*
 * Archive and destruction of CA keys (CPS §7.2.1.4, §7.2.1.9). A CA key
 * that will sign nothing more leaves the crypto device for an archive file
 * under keys/archive/, is kept there at least ten years after its
 * certificate ends, and is then wiped with custodians present. The CA row
 * and its certificate stay in the store for ever: only the key goes.
 *
 * The archive file keys/archive/<ca>-<index>.key (mode 0600) is
 *
 *   header (one line of compact JSON) "\n" IV(12) SM4-GCM(device blob) tag(16)
 *
 * where the device blob is the key as SDFX_ExportKeyBlob gives it (still
 * sealed under the key PIN: never a clear private key) and the header names
 * the CA, the device index, the SM3 fingerprint of the CA certificate and
 * the retention date. The header is the additional data, and once opened it
 * must match what the store says of that CA, so an altered file, an edited
 * header or another CA's archive put in its place is GMCA_ERR_TAMPER.
 *
 * The wrapping key is HMAC-SM3(key PIN, "gmca key archive v1") cut to 128
 * bits. Not the master key itself: custodians change (gmca key resplit
 * makes a new master key) many times in ten years, while the key PIN stays;
 * the key PIN is reachable only through the master key, so the same quorum
 * of custodians still guards the archive.
 *
 * Crash safety: the archive file is written (temporary file, fsync,
 * rename, fsync of the directory) and read back before the store says
 * "archived"; the device copy is erased only after that commit. A crash
 * in between leaves either an active key with a spare archive file (written
 * again next time) or an archived key still in the device, which the next
 * gmca key archive erases after checking the file. Destruction likewise
 * records "destroyed" first and wipes the file after, and runs again to
 * finish a wipe that was cut short.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "ca_internal.h"
#include "crypto.h"
#include "util.h"

#define ARCHIVE_LABEL "gmca key archive v1"
#define ARCHIVE_FORMAT "gmca-key-archive"
#define ARCHIVE_VERSION 1
#define ARCHIVE_HEADER_MAX 4096
#define ARCHIVE_BLOB_MAX (64 * 1024)
#define ARCHIVE_FILE_MAX                                                                           \
        (ARCHIVE_HEADER_MAX + 1 + GMCA_SM4_GCM_IV_LEN + ARCHIVE_BLOB_MAX + GMCA_SM4_GCM_TAG_LEN)
#define WIPE_CHUNK 4096

/* What the store says an archive file must be; the file is checked against it. */
struct facts {
        const char *ca;
        unsigned index;
        char fingerprint[65];
        int64_t retention; /* keep until (seconds) */
};

static int get_facts(const struct ca_slot *ca, struct facts *f, struct gmca_error *e)
{
        time_t end = ca_cert_not_after(ca->cert);

        memset(f, 0, sizeof(*f));
        f->ca = ca->rec.name;
        if ((f->index = ca_key_index(&ca->rec)) == 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: bad key reference \"%s\"",
                                      ca->rec.name, ca->rec.key_file);
        if (end == 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: certificate has no notAfter",
                                      ca->rec.name);
        f->retention = (int64_t)end + (int64_t)GMCA_ARCHIVE_RETENTION_DAYS * 86400;
        return gmca_cert_fingerprint(ca->cert, f->fingerprint, e);
}

static int archive_path(const struct gmca_ctx *c, const struct facts *f, char *path, size_t len,
                        struct gmca_error *e)
{
        return ca_pathf(path, len, e, "%s/keys/archive/%s-%u.key", c->dir, f->ca, f->index);
}

/* The path relative to the state directory, for audit records. */
static void archive_rel(const struct facts *f, char *out, size_t len)
{
        snprintf(out, len, "keys/archive/%s-%u.key", f->ca, f->index);
}

static int sync_dir_of(const char *path, struct gmca_error *e)
{
        char dir[PATH_MAX];
        char *slash;
        int fd, rc = 0;

        gmca_strlcpy(dir, path, sizeof(dir));
        if ((slash = strrchr(dir, '/')) == NULL)
                return 0;
        *slash = '\0';
        if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", dir, strerror(errno));
        if (fsync(fd) != 0)
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: fsync: %s", dir, strerror(errno));
        close(fd);
        return rc;
}

static int wrap_key(const uint8_t keypin[KEYPIN_LEN], uint8_t key[GMCA_SM4_KEY_LEN],
                    struct gmca_error *e)
{
        uint8_t mac[GMCA_SM3_LEN];
        int rc;

        rc = gmca_hmac_sm3(keypin, KEYPIN_LEN, ARCHIVE_LABEL, strlen(ARCHIVE_LABEL), mac, e);
        if (rc == 0)
                memcpy(key, mac, GMCA_SM4_KEY_LEN);
        OPENSSL_cleanse(mac, sizeof(mac));
        return rc;
}

/* Additional data: the label, a NUL, then the header line exactly as in the file. */
static uint8_t *make_aad(const char *header, size_t hlen, size_t *len)
{
        size_t n = strlen(ARCHIVE_LABEL) + 1;
        uint8_t *aad = malloc(n + hlen);

        if (aad == NULL)
                return NULL;
        memcpy(aad, ARCHIVE_LABEL, n); /* with its NUL */
        memcpy(aad + n, header, hlen);
        *len = n + hlen;
        return aad;
}

/*
 * The archive file for blob: *out (malloc'd, caller frees) of *outlen
 * bytes. The key PIN comes from the ceremony in progress.
 */
static int seal(struct gmca_ctx *c, const struct facts *f, const uint8_t *blob, size_t bloblen,
                uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        uint8_t key[GMCA_SM4_KEY_LEN], *buf = NULL, *aad = NULL, *iv;
        char *header = NULL;
        size_t hlen, aadlen = 0, total;
        int rc;

        header = ca_detail_json(json_pack(
            "{s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:s}", "format", ARCHIVE_FORMAT, "version",
            ARCHIVE_VERSION, "ca", f->ca, "index", (int)f->index, "fingerprint", f->fingerprint,
            "retention_until", (json_int_t)f->retention, "archived_at", (json_int_t)gmca_now(),
            "device", gmca_device_description(c->dev)));
        if (header == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        hlen = strlen(header);
        total = hlen + 1 + GMCA_SM4_GCM_IV_LEN + bloblen + GMCA_SM4_GCM_TAG_LEN;
        if (hlen > ARCHIVE_HEADER_MAX || bloblen == 0 || bloblen > ARCHIVE_BLOB_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "archive: key blob of %zu bytes", bloblen);
                goto out;
        }
        if ((buf = malloc(total)) == NULL || (aad = make_aad(header, hlen, &aadlen)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        memcpy(buf, header, hlen);
        buf[hlen] = '\n';
        iv = buf + hlen + 1;
        if ((rc = gmca_rand_bytes(iv, GMCA_SM4_GCM_IV_LEN, e)) != 0 ||
            (rc = wrap_key(CTX_KEYPIN(c), key, e)) != 0)
                goto out;
        rc = gmca_sm4_gcm_encrypt(key, iv, aad, aadlen, blob, bloblen, iv + GMCA_SM4_GCM_IV_LEN,
                                  iv + GMCA_SM4_GCM_IV_LEN + bloblen, e);
        OPENSSL_cleanse(key, sizeof(key));
        if (rc != 0)
                goto out;
        *out = buf;
        *outlen = total;
        buf = NULL;
out:
        free(buf);
        free(aad);
        free(header);
        return rc;
}

/* The header's fields must be those the store gives for this CA. */
static int header_matches(json_t *h, const struct facts *f, const char *path, struct gmca_error *e)
{
        static const char *const known[] = {"format",      "version",     "ca",
                                            "index",       "fingerprint", "retention_until",
                                            "archived_at", "device"};
        json_t *ca = json_object_get(h, "ca"), *idx = json_object_get(h, "index");
        json_t *fp = json_object_get(h, "fingerprint"),
               *ret = json_object_get(h, "retention_until");
        const char *key;

        if ((key = ca_json_unknown_key(h, known, sizeof(known) / sizeof(known[0]))) != NULL)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "%s: unknown header key \"%s\"", path,
                                      key);
        if (!json_is_string(ca) || !json_is_integer(idx) || !json_is_string(fp) ||
            !json_is_integer(ret))
                return gmca_error_set(e, GMCA_ERR_TAMPER, "%s: header lacks its CA facts", path);
        if (strcmp(json_string_value(ca), f->ca) != 0 || json_integer_value(idx) != f->index)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "%s: this is the archive of CA %s (index %lld), not of CA "
                                      "%s (index %u)",
                                      path, json_string_value(ca),
                                      (long long)json_integer_value(idx), f->ca, f->index);
        if (strcmp(json_string_value(fp), f->fingerprint) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "%s: archived for another certificate of CA %s (fingerprint "
                                      "%.16s..., the store has %.16s...)",
                                      path, f->ca, json_string_value(fp), f->fingerprint);
        if (json_integer_value(ret) != f->retention)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "%s: retention date differs from the certificate's end + "
                                      "%d days",
                                      path, GMCA_ARCHIVE_RETENTION_DAYS);
        return 0;
}

/*
 * Open and authenticate the archive file of f: *blob (malloc'd, caller
 * frees) is the device blob inside. GMCA_ERR_NOTFOUND if the file is
 * missing, GMCA_ERR_TAMPER if it is not, intact, the archive of this key.
 */
static int unseal(struct gmca_ctx *c, const struct facts *f, const char *path, uint8_t **blob,
                  size_t *bloblen, struct gmca_error *e)
{
        uint8_t *buf = NULL, *aad = NULL, *out = NULL, key[GMCA_SM4_KEY_LEN];
        const uint8_t *nl, *iv;
        size_t len = 0, hlen, aadlen = 0, n;
        json_t *h = NULL;
        json_error_t jerr;
        int rc;

        if ((rc = gmca_read_file(path, ARCHIVE_FILE_MAX, &buf, &len, e)) != 0) {
                if (rc == GMCA_ERR_NOTFOUND || rc == GMCA_ERR_LIMIT) {
                        gmca_error_clear(e);
                        rc = rc == GMCA_ERR_NOTFOUND
                                 ? gmca_error_set(e, rc, "CA %s: archive file %s is missing", f->ca,
                                                  path)
                                 : gmca_error_set(e, GMCA_ERR_TAMPER,
                                                  "%s: larger than any key archive", path);
                }
                return rc;
        }
        rc = GMCA_ERR_TAMPER;
        nl = memchr(buf, '\n', len < ARCHIVE_HEADER_MAX + 1 ? len : ARCHIVE_HEADER_MAX + 1);
        if (nl == NULL) {
                gmca_error_set(e, rc, "%s: not a gmca key archive (no header)", path);
                goto out;
        }
        hlen = (size_t)(nl - buf);
        if (len - hlen - 1 <= GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN) {
                gmca_error_set(e, rc, "%s: truncated key archive", path);
                goto out;
        }
        h = json_loadb((const char *)buf, hlen, JSON_REJECT_DUPLICATES, &jerr);
        if (h == NULL || !json_is_object(h) || !json_is_string(json_object_get(h, "format")) ||
            strcmp(json_string_value(json_object_get(h, "format")), ARCHIVE_FORMAT) != 0 ||
            json_integer_value(json_object_get(h, "version")) != ARCHIVE_VERSION) {
                gmca_error_set(e, rc, "%s: not a gmca key archive (version %d)", path,
                               ARCHIVE_VERSION);
                goto out;
        }
        iv = nl + 1;
        n = len - hlen - 1 - GMCA_SM4_GCM_IV_LEN - GMCA_SM4_GCM_TAG_LEN;
        if ((aad = make_aad((const char *)buf, hlen, &aadlen)) == NULL ||
            (out = malloc(n)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = wrap_key(CTX_KEYPIN(c), key, e)) != 0)
                goto out;
        rc = gmca_sm4_gcm_decrypt(key, iv, aad, aadlen, iv + GMCA_SM4_GCM_IV_LEN, n,
                                  iv + GMCA_SM4_GCM_IV_LEN + n, out, e);
        OPENSSL_cleanse(key, sizeof(key));
        if (rc != 0) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "%s: the key archive does not authenticate (altered, or not "
                                    "sealed by this CA)",
                                    path);
                goto out;
        }
        if ((rc = header_matches(h, f, path, e)) != 0)
                goto out;
        *blob = out;
        *bloblen = n;
        out = NULL;
        rc = 0;
out:
        if (out != NULL)
                OPENSSL_clear_free(out, n);
        json_decref(h);
        free(aad);
        free(buf);
        return rc;
}

/* 1 if the device still holds the CA's key at its index (an archive cut short). */
static int device_holds(struct gmca_ctx *c, const struct ca_slot *ca, unsigned index)
{
        struct gmca_error ignored = {0};
        EVP_PKEY *pub = gmca_device_public_key(c->dev, index, &ignored);
        int held = pub != NULL && EVP_PKEY_eq(pub, X509_get0_pubkey(ca->cert)) == 1;

        EVP_PKEY_free(pub);
        gmca_ossl_clear();
        return held;
}

static int device_can(struct gmca_ctx *c, const char *what, struct gmca_error *e)
{
        static const char *const need[] = {"SDFX_ExportKeyBlob", "SDFX_DestroyKeyPair_ECC"};

        for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
                if (!gmca_device_has(c->dev, need[i]))
                        return gmca_error_set(e, GMCA_ERR_STATE,
                                              "%s: the crypto device (%s) has no %s: %s the key "
                                              "with the vendor's key management tool",
                                              what, gmca_device_description(c->dev), need[i], what);
        return 0;
}

/* Erase the CA's key from the device (key PIN of the ceremony in progress). */
static int device_erase(struct gmca_ctx *c, struct ca_slot *ca, unsigned index,
                        struct gmca_error *e)
{
        if (ca->signer == &ca->dsigner.base)
                gmca_device_lock(c->dev, index);
        ca->signer = NULL;
        OPENSSL_cleanse(&ca->dsigner, sizeof(ca->dsigner));
        return gmca_device_destroy_key(c->dev, index, CTX_KEYPIN(c), KEYPIN_LEN, e);
}

/* ---- archive ---- */

struct live {
        int64_t ca_id;
        const char *own_serial; /* the CA's own certificate (a root's is its own issue) */
        int64_t now;
        uint64_t count;
        int64_t last_end;
};

static int count_live(const struct gmca_cert_rec *r, void *arg)
{
        struct live *l = arg;

        if (r->ca_id != l->ca_id || strcmp(r->serial, l->own_serial) == 0 || r->not_after < l->now)
                return 0;
        l->count++;
        if (r->not_after > l->last_end)
                l->last_end = r->not_after;
        return 0;
}

/* GMCA_ERR_STATE, saying why, unless the CA's key will sign nothing more. */
static int archivable(struct gmca_ctx *c, const struct ca_slot *ca, struct gmca_error *e)
{
        const char *st = ca->rec.key_state;
        time_t now = gmca_now(), end = ca_cert_not_after(ca->cert);
        char serial[GMCA_SERIAL_HEX_MAX], when[32];
        struct gmca_cert_filter flt;
        struct live l;
        int rc;

        if (strcmp(st, GMCA_KEY_ARCHIVED) == 0 || strcmp(st, GMCA_KEY_DESTROYED) == 0)
                return gmca_error_set(e, GMCA_ERR_STATE, "CA %s: its key is already %s",
                                      ca->rec.name, st);
        if (end != 0 && end <= now)
                return 0; /* nothing it issued outlives it (CPS §6.8 rule 1) */
        gmca_time_iso(end, when, sizeof(when));
        if (strcmp(st, GMCA_KEY_ACTIVE) == 0)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "CPS §7.2.1.4: CA %s is active and its certificate is valid "
                                      "until %s; only a key past its use is archived (roll it "
                                      "over first)",
                                      ca->rec.name, when);
        if (strcmp(st, GMCA_KEY_SUPERSEDED) != 0 && strcmp(st, GMCA_KEY_COMPROMISED) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE, "CA %s: unknown key state \"%s\"",
                                      ca->rec.name, st);
        if (gmca_serial_hex(ca->cert, serial, sizeof(serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: certificate serial",
                                      ca->rec.name);
        /* Revoked certificates count too: they stay on its CRLs until they expire. */
        memset(&flt, 0, sizeof(flt));
        flt.ca_id = ca->rec.id;
        flt.status = GMCA_STATUS_ANY;
        l = (struct live){ca->rec.id, serial, (int64_t)now, 0, 0};
        if ((rc = gmca_store_cert_list(c->store, &flt, count_live, &l, e)) != 0)
                return rc;
        if (l.count == 0)
                return 0;
        gmca_time_iso((time_t)l.last_end, when, sizeof(when));
        return gmca_error_set(e, GMCA_ERR_STATE,
                              "CPS §7.2.1.4: CA %s is %s but %llu certificate(s) it issued are "
                              "still within validity (the last ends %s); its key signs their "
                              "CRLs until then",
                              ca->rec.name, st, (unsigned long long)l.count, when);
}

/* Inside a transaction: the CA row must still be in state want (no one else moved it). */
static int still(struct gmca_ctx *c, const struct ca_slot *ca, const char *want,
                 struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        int rc;

        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_ca_get(c->store, ca->rec.name, &rec, e)) == 0 &&
            strcmp(rec.key_state, want) != 0)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "CA %s: its key became %s while the ceremony ran", ca->rec.name,
                                    rec.key_state);
        gmca_ca_rec_clear(&rec);
        return rc;
}

static int audit_ok(struct gmca_ctx *c, const char *event, const char *object, json_t *detail,
                    int in_tx, struct gmca_error *e)
{
        struct gmca_audit_event ev;
        char *text = ca_detail_json(detail);
        int rc;

        if (text == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        ev = (struct gmca_audit_event){event, c->actor, 1, object, text};
        rc = in_tx ? gmca_audit_append(c->store, &ev, e) : gmca_audit_record(c->store, &ev, e);
        free(text);
        return rc;
}

/* An archived key the device still holds (archive cut short): erase it. */
static int archive_finish(struct gmca_ctx *c, struct ca_slot *ca, const struct facts *f,
                          const char *path, struct gmca_error *e)
{
        uint8_t *blob = NULL;
        size_t bloblen = 0;
        char rel[PATH_MAX];
        int rc;

        /* Never erase the device copy unless the archive opens. */
        if ((rc = unseal(c, f, path, &blob, &bloblen, e)) != 0)
                return rc;
        OPENSSL_clear_free(blob, bloblen);
        if ((rc = device_can(c, "archive", e)) != 0 || (rc = device_erase(c, ca, f->index, e)) != 0)
                return rc;
        archive_rel(f, rel, sizeof(rel));
        return audit_ok(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name,
                        json_pack("{s:s, s:i, s:s, s:s, s:s}", "ca", ca->rec.name, "index",
                                  (int)f->index, "custodians", c->custodians, "file", rel,
                                  "completed", "the device's copy of the archived key erased"),
                        0, e);
}

int gmca_key_archive(struct gmca_ctx *c, const char *name, const struct gmca_custodian *cust,
                     size_t n, struct gmca_error *e)
{
        struct ca_custody m;
        struct ca_slot *ca;
        struct facts f;
        char path[PATH_MAX], dir[PATH_MAX], rel[PATH_MAX], until[32];
        uint8_t *blob = NULL, *file = NULL, *check = NULL;
        size_t bloblen = 0, filelen = 0, checklen = 0;
        const char *prev;
        int rc, wrote = 0, resume;

        if ((ca = ca_find(c, name, e)) == NULL)
                return ca_reject(c, GMCA_EV_KEY_ARCHIVE, name ? name : gmca_ctx_default_ca(c),
                                 e && e->code ? e->code : GMCA_ERR_NOTFOUND, e);
        /* The state decides everything here: read it afresh, not from a cached slot. */
        if ((rc = ca_slot_reload(c, ca, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name, rc, e);
        resume = strcmp(ca->rec.key_state, GMCA_KEY_ARCHIVED) == 0;
        if ((rc = get_facts(ca, &f, e)) != 0 ||
            (rc = archive_path(c, &f, path, sizeof(path), e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name, rc, e);
        if (resume) {
                /* Only an archive cut short before the device erase has anything left to do. */
                if ((rc = ca_open_device(c, e)) != 0)
                        return ca_reject(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name, rc, e);
                if (!device_holds(c, ca, f.index)) {
                        ca_release_keys(c);
                        gmca_error_set(e, GMCA_ERR_STATE, "CA %s: its key is already archived",
                                       ca->rec.name);
                        return ca_reject(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name, GMCA_ERR_STATE, e);
                }
        } else if ((rc = archivable(c, ca, e)) != 0) {
                return ca_reject(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name, rc, e);
        }
        if ((rc = ca_ceremony_begin(c, cust, n, &m, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name, rc, e);
        OPENSSL_cleanse(&m, sizeof(m));
        if (resume) {
                rc = archive_finish(c, ca, &f, path, e);
                goto out;
        }
        if ((rc = device_can(c, "archive", e)) != 0)
                goto out;
        if (ca->signer != &ca->dsigner.base) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "CA %s: its key is not in the device",
                                    ca->rec.name);
                goto out;
        }

        /* The file first, read back, before the store says "archived". */
        if ((rc = gmca_device_export_blob(c->dev, f.index, &blob, &bloblen, e)) != 0 ||
            (rc = seal(c, &f, blob, bloblen, &file, &filelen, e)) != 0 ||
            (rc = ca_pathf(dir, sizeof(dir), e, "%s/keys/archive", c->dir)) != 0)
                goto out;
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: %s", dir, strerror(errno));
                goto out;
        }
        if ((rc = gmca_write_file_atomic(path, file, filelen, 0600, e)) != 0)
                goto out;
        wrote = 1;
        if ((rc = sync_dir_of(path, e)) != 0 ||
            (rc = unseal(c, &f, path, &check, &checklen, e)) != 0)
                goto out;
        if (checklen != bloblen || CRYPTO_memcmp(check, blob, bloblen) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO,
                                    "%s: reads back different from what was written", path);
                goto out;
        }

        prev = ca->rec.key_state;
        archive_rel(&f, rel, sizeof(rel));
        gmca_time_iso((time_t)f.retention, until, sizeof(until));
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                goto out;
        if ((rc = still(c, ca, prev, e)) != 0 ||
            (rc = gmca_store_ca_set_state(c->store, ca->rec.id, GMCA_KEY_ARCHIVED, gmca_now(),
                                          e)) != 0 ||
            (rc = audit_ok(c, GMCA_EV_KEY_ARCHIVE, ca->rec.name,
                           json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "ca", ca->rec.name,
                                     "index", (int)f.index, "fingerprint", f.fingerprint,
                                     "custodians", c->custodians, "retention_until", until,
                                     "previous_state", prev, "file", rel, "device",
                                     gmca_device_description(c->dev)),
                           1, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                goto out;
        }
        wrote = 0; /* the archive is the record now */

        /* Recorded: now the device's copy goes. */
        if ((rc = device_erase(c, ca, f.index, e)) != 0) {
                struct gmca_error cause = *e;

                gmca_error_clear(e);
                gmca_error_set(e, rc,
                               "CA %s: archived to %s, but erasing the device's copy failed (%s): "
                               "run gmca key archive again",
                               ca->rec.name, rel, cause.msg);
        }
        {
                struct gmca_error ignored = {0};

                (void)ca_slot_reload(c, ca, &ignored);
        }
out:
        if (wrote) {
                unlink(path);
                (void)sync_dir_of(path, NULL);
        }
        if (blob != NULL)
                OPENSSL_clear_free(blob, bloblen);
        if (check != NULL)
                OPENSSL_clear_free(check, checklen);
        free(file);
        ca_ceremony_end(c);
        if (rc != 0)
                return ca_reject(c, GMCA_EV_KEY_ARCHIVE, f.ca, rc, e);
        return 0;
}

/* ---- destroy ---- */

/* Overwrite with random bytes, then zeros (each pass synced), then unlink. */
static int wipe_file(const char *path, struct gmca_error *e)
{
        uint8_t buf[WIPE_CHUNK];
        struct stat st;
        int fd, rc = 0;

        if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: not a regular file", path);
        }
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
                off_t left = st.st_size;

                if (lseek(fd, 0, SEEK_SET) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
                        break;
                }
                while (left > 0 && rc == 0) {
                        size_t k = left < (off_t)sizeof(buf) ? (size_t)left : sizeof(buf);

                        if (pass == 0)
                                rc = gmca_rand_bytes(buf, k, e);
                        else
                                memset(buf, 0, k);
                        if (rc == 0 && gmca_write_all(fd, buf, k) != 0)
                                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: write: %s", path,
                                                    strerror(errno));
                        left -= (off_t)k;
                }
                if (rc == 0 && fsync(fd) != 0)
                        rc = gmca_error_set(e, GMCA_ERR_IO, "%s: fsync: %s", path, strerror(errno));
        }
        close(fd);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (rc != 0)
                return rc;
        if (unlink(path) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        return sync_dir_of(path, e);
}

int gmca_key_destroy(struct gmca_ctx *c, const char *name, const struct gmca_custodian *cust,
                     size_t n, struct gmca_error *e)
{
        struct ca_custody m;
        struct ca_slot *ca;
        struct facts f;
        char path[PATH_MAX], rel[PATH_MAX], until[32];
        uint8_t *blob = NULL;
        size_t bloblen = 0;
        int rc, leftover, erased = 0;

        if ((ca = ca_find(c, name, e)) == NULL)
                return ca_reject(c, GMCA_EV_KEY_DESTROY, name ? name : gmca_ctx_default_ca(c),
                                 e && e->code ? e->code : GMCA_ERR_NOTFOUND, e);
        /* The state decides everything here: read it afresh, not from a cached slot. */
        if ((rc = ca_slot_reload(c, ca, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_DESTROY, ca->rec.name, rc, e);
        if ((rc = get_facts(ca, &f, e)) != 0 ||
            (rc = archive_path(c, &f, path, sizeof(path), e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_DESTROY, ca->rec.name, rc, e);
        archive_rel(&f, rel, sizeof(rel));
        gmca_time_iso((time_t)f.retention, until, sizeof(until));
        /* A destruction cut short after its record still has the file to wipe. */
        leftover = strcmp(ca->rec.key_state, GMCA_KEY_DESTROYED) == 0 && access(path, F_OK) == 0;
        if (strcmp(ca->rec.key_state, GMCA_KEY_ARCHIVED) != 0 && !leftover) {
                gmca_error_set(e, GMCA_ERR_STATE,
                               strcmp(ca->rec.key_state, GMCA_KEY_DESTROYED) == 0
                                   ? "CA %s: its key is already destroyed"
                                   : "CPS §7.2.1.9: CA %s: only an archived key is destroyed (its "
                                     "key is %s; gmca key archive first)",
                               ca->rec.name, ca->rec.key_state);
                return ca_reject(c, GMCA_EV_KEY_DESTROY, ca->rec.name, GMCA_ERR_STATE, e);
        }
        if ((int64_t)gmca_now() < f.retention) {
                gmca_error_set(e, GMCA_ERR_STATE,
                               "CPS §7.2.1.4: CA %s: its archived key is kept until %s (%d days "
                               "after its certificate ends)",
                               ca->rec.name, until, GMCA_ARCHIVE_RETENTION_DAYS);
                return ca_reject(c, GMCA_EV_KEY_DESTROY, ca->rec.name, GMCA_ERR_STATE, e);
        }
        if ((rc = ca_ceremony_begin(c, cust, n, &m, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_DESTROY, ca->rec.name, rc, e);
        OPENSSL_cleanse(&m, sizeof(m));
        if (leftover) {
                if ((rc = wipe_file(path, e)) == 0)
                        rc = audit_ok(c, GMCA_EV_KEY_DESTROY, ca->rec.name,
                                      json_pack("{s:s, s:s, s:s, s:s}", "ca", ca->rec.name,
                                                "custodians", c->custodians, "file", rel,
                                                "completed", "archive file wiped"),
                                      0, e);
                goto out;
        }

        /* Only an archive that opens is the key being destroyed. */
        if ((rc = unseal(c, &f, path, &blob, &bloblen, e)) != 0)
                goto out;
        if (device_holds(c, ca, f.index)) { /* an archive cut short left it there */
                if ((rc = device_can(c, "destroy", e)) != 0 ||
                    (rc = device_erase(c, ca, f.index, e)) != 0)
                        goto out;
                erased = 1;
        }
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                goto out;
        if ((rc = still(c, ca, GMCA_KEY_ARCHIVED, e)) != 0 ||
            (rc = gmca_store_ca_set_state(c->store, ca->rec.id, GMCA_KEY_DESTROYED, gmca_now(),
                                          e)) != 0 ||
            (rc = audit_ok(c, GMCA_EV_KEY_DESTROY, ca->rec.name,
                           json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:b}", "ca", ca->rec.name,
                                     "index", (int)f.index, "fingerprint", f.fingerprint,
                                     "custodians", c->custodians, "retention_until", until, "file",
                                     rel, "device_copy_erased", erased),
                           1, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                goto out;
        }
        if ((rc = wipe_file(path, e)) != 0) {
                struct gmca_error cause = *e;

                gmca_error_clear(e);
                gmca_error_set(e, rc,
                               "CA %s: destroyed on record, but wiping %s failed (%s): run gmca "
                               "key destroy again",
                               ca->rec.name, rel, cause.msg);
        }
        {
                struct gmca_error ignored = {0};

                (void)ca_slot_reload(c, ca, &ignored);
        }
out:
        if (blob != NULL)
                OPENSSL_clear_free(blob, bloblen);
        ca_ceremony_end(c);
        if (rc != 0)
                return ca_reject(c, GMCA_EV_KEY_DESTROY, f.ca, rc, e);
        return 0;
}
