/*
 * The CA key backup file format (see keybackup.h): header encoding and a
 * strict parser for it, the framed SM4-GCM stream a backup is written and
 * read as, and the entries inside. Nothing here knows custodians or the
 * store: ca_custody_ops.c feeds it the master key and the files.
 */
#include "keybackup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "device.h"
#include "util.h"

#define KEY_LABEL "gmca key backup v1"
#define AAD_LABEL "gmca-kbk-v1"
#define FRAME_HEAD 5 /* flags, length */
#define FLAG_LAST 1
#define CHUNK 65536
#define PATH_DEPTH_MAX 6
#define COMPONENT_MAX 128
#define AAD_LEN (sizeof(AAD_LABEL) - 1 + GMCA_SM3_LEN + 8 + 1)

/* ---- header ---- */

static json_t *hexj(const uint8_t *v, size_t len)
{
        char buf[2 * 64 + 1];

        gmca_hex_upper(v, len, buf);
        return json_string(buf);
}

int gmca_kbk_header_encode(const struct gmca_kbk_header *h, uint8_t **out, size_t *len,
                           struct gmca_error *e)
{
        json_t *root = NULL, *cas = json_array();
        char *text = NULL;
        uint8_t *buf = NULL;
        size_t n;
        int rc = GMCA_ERR_NOMEM;

        if (cas == NULL)
                goto out;
        for (size_t i = 0; i < h->ncas; i++)
                if (json_array_append_new(cas, json_string(h->cas[i])) != 0)
                        goto out;
        root = json_pack("{s:s, s:i, s:o, s:o, s:i, s:i, s:o, s:o, s:I, s:O, s:s}", "format",
                         "gmca key backup", "version", GMCA_KBK_VERSION, "installation",
                         hexj(h->set.installation, GMCA_CUSTODY_ID_LEN), "set",
                         hexj(h->set.set_id, GMCA_CUSTODY_ID_LEN), "threshold",
                         (int)h->set.threshold, "count", (int)h->set.count, "check",
                         hexj(h->check, sizeof(h->check)), "salt", hexj(h->salt, sizeof(h->salt)),
                         "created", (json_int_t)h->created, "cas", cas, "device", h->device);
        if (root == NULL || (text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
                goto out;
        n = strlen(text);
        if (n > GMCA_KBK_HEADER_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "key backup: header of %zu bytes", n);
                goto out;
        }
        if ((buf = malloc(GMCA_KBK_PREFIX_LEN + n)) == NULL)
                goto out;
        memcpy(buf, GMCA_KBK_MAGIC, 8);
        gmca_put_be32(buf + 8, GMCA_KBK_VERSION);
        gmca_put_be32(buf + 12, (uint32_t)n);
        memcpy(buf + GMCA_KBK_PREFIX_LEN, text, n);
        *out = buf;
        *len = GMCA_KBK_PREFIX_LEN + n;
        buf = NULL;
        rc = 0;
out:
        if (rc == GMCA_ERR_NOMEM)
                gmca_error_set(e, rc, "key backup: out of memory");
        free(buf);
        free(text);
        json_decref(root);
        json_decref(cas);
        return rc;
}

int gmca_kbk_header_len(const uint8_t prefix[GMCA_KBK_PREFIX_LEN], size_t *len,
                        struct gmca_error *e)
{
        uint32_t n;

        if (memcmp(prefix, GMCA_KBK_MAGIC, 8) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "not a gmca key backup (bad magic)");
        if (gmca_get_be32(prefix + 8) != GMCA_KBK_VERSION)
                return gmca_error_set(e, GMCA_ERR_INVALID, "key backup: version %u is not %u",
                                      gmca_get_be32(prefix + 8), GMCA_KBK_VERSION);
        n = gmca_get_be32(prefix + 12);
        if (n < 2 || n > GMCA_KBK_HEADER_MAX)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup: header of %u bytes (1..%u allowed)", n,
                                      GMCA_KBK_HEADER_MAX);
        *len = GMCA_KBK_PREFIX_LEN + n;
        return 0;
}

/* A string member of exactly 2*len hex digits into out. */
static int hex_member(json_t *root, const char *key, uint8_t *out, size_t len, struct gmca_error *e)
{
        json_t *v = json_object_get(root, key);
        size_t got = 0;

        if (!json_is_string(v) || json_string_length(v) != 2 * len ||
            gmca_unhex(json_string_value(v), out, len, &got) != 0 || got != len)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup header: \"%s\" must be %zu hex digits", key,
                                      2 * len);
        return 0;
}

static int int_member(json_t *root, const char *key, json_int_t min, json_int_t max,
                      json_int_t *out, struct gmca_error *e)
{
        json_t *v = json_object_get(root, key);

        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup header: \"%s\" must be an integer %lld..%lld",
                                      key, (long long)min, (long long)max);
        *out = json_integer_value(v);
        return 0;
}

/* A JSON string without NUL inside, of 1..max-1 bytes, into out. */
static int str_ok(json_t *v, char *out, size_t max)
{
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= max ||
            strlen(json_string_value(v)) != json_string_length(v))
                return 0;
        gmca_strlcpy(out, json_string_value(v), max);
        return 1;
}

static int ca_name_ok(const char *s)
{
        for (; *s != '\0'; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                      *s == '_'))
                        return 0;
        return 1;
}

int gmca_kbk_header_parse(const uint8_t *buf, size_t len, struct gmca_kbk_header *h, size_t *used,
                          struct gmca_error *e)
{
        static const char *const known[] = {"format",    "version", "installation", "set",
                                            "threshold", "count",   "check",        "salt",
                                            "created",   "cas",     "device"};
        struct gmca_kbk_header tmp;
        json_t *root = NULL, *v;
        json_error_t jerr;
        json_int_t iv;
        const char *key;
        size_t total, i;
        int rc;

        memset(&tmp, 0, sizeof(tmp));
        if (len < GMCA_KBK_PREFIX_LEN)
                return gmca_error_set(e,
                                      len >= 8 && memcmp(buf, GMCA_KBK_MAGIC, 8) == 0
                                          ? GMCA_ERR_TAMPER
                                          : GMCA_ERR_INVALID,
                                      "key backup: cut short in its header (%zu bytes)", len);
        if ((rc = gmca_kbk_header_len(buf, &total, e)) != 0)
                return rc;
        if (len < total)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup: cut short in its header (%zu of %zu bytes)", len,
                                      total);
        root = json_loadb((const char *)buf + GMCA_KBK_PREFIX_LEN, total - GMCA_KBK_PREFIX_LEN,
                          JSON_REJECT_DUPLICATES, &jerr);
        rc = GMCA_ERR_TAMPER;
        if (root == NULL || !json_is_object(root)) {
                gmca_error_set(e, rc, "key backup header: not a JSON object");
                goto out;
        }
        json_object_foreach(root, key, v)
        {
                for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        if (strcmp(key, known[i]) == 0)
                                break;
                if (i == sizeof(known) / sizeof(known[0])) {
                        gmca_error_set(e, rc, "key backup header: unknown key \"%.64s\"", key);
                        goto out;
                }
        }
        v = json_object_get(root, "format");
        if (!json_is_string(v) || strcmp(json_string_value(v), "gmca key backup") != 0) {
                gmca_error_set(e, rc, "key backup header: \"format\" is not \"gmca key backup\"");
                goto out;
        }
        if (int_member(root, "version", GMCA_KBK_VERSION, GMCA_KBK_VERSION, &iv, e) != 0 ||
            hex_member(root, "installation", tmp.set.installation, GMCA_CUSTODY_ID_LEN, e) != 0 ||
            hex_member(root, "set", tmp.set.set_id, GMCA_CUSTODY_ID_LEN, e) != 0 ||
            hex_member(root, "check", tmp.check, sizeof(tmp.check), e) != 0 ||
            hex_member(root, "salt", tmp.salt, sizeof(tmp.salt), e) != 0)
                goto out;
        if (int_member(root, "threshold", 2, GMCA_CUSTODY_MAX, &iv, e) != 0)
                goto out;
        tmp.set.threshold = (unsigned)iv;
        if (int_member(root, "count", tmp.set.threshold, GMCA_CUSTODY_MAX, &iv, e) != 0)
                goto out;
        tmp.set.count = (unsigned)iv;
        if (int_member(root, "created", 0, (json_int_t)1 << 40, &iv, e) != 0)
                goto out;
        tmp.created = (int64_t)iv;
        if (!str_ok(json_object_get(root, "device"), tmp.device, sizeof(tmp.device))) {
                gmca_error_set(e, rc, "key backup header: bad \"device\"");
                goto out;
        }
        v = json_object_get(root, "cas");
        if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > GMCA_KBK_CAS_MAX) {
                gmca_error_set(e, rc, "key backup header: \"cas\" must list 1..%d CAs",
                               GMCA_KBK_CAS_MAX);
                goto out;
        }
        for (i = 0; i < json_array_size(v); i++) {
                if (!str_ok(json_array_get(v, i), tmp.cas[i], GMCA_NAME_MAX) ||
                    !ca_name_ok(tmp.cas[i])) {
                        gmca_error_set(e, rc, "key backup header: bad CA name in \"cas\"");
                        goto out;
                }
        }
        tmp.ncas = i;
        *h = tmp;
        *used = total;
        rc = 0;
out:
        json_decref(root);
        return rc;
}

int gmca_kbk_frames_scan(const uint8_t *buf, size_t len, uint64_t *frames, struct gmca_error *e)
{
        uint64_t n = 0;
        size_t off = 0;

        for (;;) {
                uint32_t flen;
                int last;

                if (len - off < FRAME_HEAD)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "key backup: cut short after frame %llu "
                                              "(no last frame)",
                                              (unsigned long long)n);
                last = buf[off] == FLAG_LAST;
                flen = gmca_get_be32(buf + off + 1);
                if (buf[off] > FLAG_LAST || flen > GMCA_KBK_FRAME_MAX || (flen == 0 && !last))
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "key backup: frame %llu has a bad head",
                                              (unsigned long long)n);
                off += FRAME_HEAD;
                if (len - off < (size_t)flen + GMCA_SM4_GCM_TAG_LEN)
                        return gmca_error_set(e, GMCA_ERR_TAMPER,
                                              "key backup: cut short in frame %llu",
                                              (unsigned long long)n);
                off += (size_t)flen + GMCA_SM4_GCM_TAG_LEN;
                n++;
                if (last)
                        break;
        }
        if (off != len)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup: %zu bytes after the last frame", len - off);
        *frames = n;
        return 0;
}

int gmca_kbk_key(const uint8_t master[GMCA_MASTER_LEN], const uint8_t salt[GMCA_KBK_SALT_LEN],
                 uint8_t key[GMCA_SM4_KEY_LEN], struct gmca_error *e)
{
        uint8_t msg[sizeof(KEY_LABEL) - 1 + GMCA_KBK_SALT_LEN], mac[GMCA_SM3_LEN];
        int rc;

        memcpy(msg, KEY_LABEL, sizeof(KEY_LABEL) - 1);
        memcpy(msg + sizeof(KEY_LABEL) - 1, salt, GMCA_KBK_SALT_LEN);
        rc = gmca_hmac_sm3(master, GMCA_MASTER_LEN, msg, sizeof(msg), mac, e);
        if (rc == 0)
                memcpy(key, mac, GMCA_SM4_KEY_LEN);
        OPENSSL_cleanse(mac, sizeof(mac));
        return rc;
}

static int component_ok(const char *s, size_t n)
{
        if (n == 0 || n > COMPONENT_MAX || s[0] == '.')
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
                        return 0;
        return 1;
}

int gmca_kbk_path_ok(const char *path)
{
        const char *parts[PATH_DEPTH_MAX];
        size_t lens[PATH_DEPTH_MAX], n = 0;
        const char *p = path;

        if (strlen(path) == 0 || strlen(path) > GMCA_KBK_PATH_MAX)
                return 0;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);

                if (n == PATH_DEPTH_MAX || !component_ok(p, len))
                        return 0;
                parts[n] = p;
                lens[n++] = len;
                if (slash == NULL)
                        break;
                p = slash + 1;
        }
#define IS(i, s) (lens[i] == strlen(s) && memcmp(parts[i], s, lens[i]) == 0)
        if (IS(0, "gmca.json") || IS(0, "gmca.db"))
                return n == 1;
        if (IS(0, "profiles") || IS(0, "certs") || IS(0, "crl"))
                return n >= 2;
        if (IS(0, "keys"))
                return n >= 3 && IS(1, "archive");
#undef IS
        return 0;
}

/* ---- the frames ---- */

static void frame_iv_aad(const uint8_t hh[GMCA_SM3_LEN], uint64_t frame, int last,
                         uint8_t iv[GMCA_SM4_GCM_IV_LEN], uint8_t aad[AAD_LEN])
{
        size_t n = sizeof(AAD_LABEL) - 1;

        memset(iv, 0, GMCA_SM4_GCM_IV_LEN);
        gmca_put_be64(iv + 4, frame);
        memcpy(aad, AAD_LABEL, n);
        memcpy(aad + n, hh, GMCA_SM3_LEN);
        gmca_put_be64(aad + n + GMCA_SM3_LEN, frame);
        aad[n + GMCA_SM3_LEN + 8] = last ? FLAG_LAST : 0;
}

struct gmca_kbk_writer {
        int fd;
        uint8_t key[GMCA_SM4_KEY_LEN];
        uint8_t hh[GMCA_SM3_LEN]; /* SM3 of the header */
        uint64_t frame;
        uint8_t *buf; /* plaintext of the frame being filled */
        size_t len;
        uint8_t *ct;
        EVP_MD_CTX *sm3; /* of every byte written */
        uint64_t bytes;
};

void gmca_kbk_writer_free(struct gmca_kbk_writer *w)
{
        if (w == NULL)
                return;
        if (w->sm3 != NULL) {
                uint8_t dummy[GMCA_SM3_LEN];

                (void)!gmca_sm3_final(w->sm3, dummy);
        }
        OPENSSL_clear_free(w->buf, GMCA_KBK_FRAME_MAX);
        OPENSSL_clear_free(w->ct, GMCA_KBK_FRAME_MAX);
        OPENSSL_clear_free(w, sizeof(*w));
}

static int emit(struct gmca_kbk_writer *w, const void *p, size_t n, struct gmca_error *e)
{
        if (gmca_write_all(w->fd, p, n) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "key backup: write: %s", strerror(errno));
        if (gmca_sm3_update(w->sm3, p, n) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "key backup: SM3 failed");
        w->bytes += n;
        return 0;
}

struct gmca_kbk_writer *gmca_kbk_writer_new(int fd, const uint8_t *header, size_t hlen,
                                            const uint8_t key[GMCA_SM4_KEY_LEN],
                                            struct gmca_error *e)
{
        struct gmca_kbk_writer *w = OPENSSL_zalloc(sizeof(*w));

        if (w == NULL || (w->buf = OPENSSL_malloc(GMCA_KBK_FRAME_MAX)) == NULL ||
            (w->ct = OPENSSL_malloc(GMCA_KBK_FRAME_MAX)) == NULL ||
            (w->sm3 = gmca_sm3_new()) == NULL) {
                gmca_kbk_writer_free(w);
                gmca_error_set(e, GMCA_ERR_NOMEM, "key backup: out of memory");
                return NULL;
        }
        w->fd = fd;
        memcpy(w->key, key, GMCA_SM4_KEY_LEN);
        if (gmca_sm3(header, hlen, w->hh) != 0) {
                gmca_kbk_writer_free(w);
                gmca_error_set(e, GMCA_ERR_CRYPTO, "key backup: SM3 failed");
                return NULL;
        }
        if (emit(w, header, hlen, e) != 0) {
                gmca_kbk_writer_free(w);
                return NULL;
        }
        return w;
}

static int flush(struct gmca_kbk_writer *w, int last, struct gmca_error *e)
{
        uint8_t head[FRAME_HEAD], iv[GMCA_SM4_GCM_IV_LEN], aad[AAD_LEN], tag[GMCA_SM4_GCM_TAG_LEN];
        int rc;

        frame_iv_aad(w->hh, w->frame, last, iv, aad);
        if ((rc = gmca_sm4_gcm_encrypt(w->key, iv, aad, sizeof(aad), w->buf, w->len, w->ct, tag,
                                       e)) != 0)
                return rc;
        head[0] = last ? FLAG_LAST : 0;
        gmca_put_be32(head + 1, (uint32_t)w->len);
        if ((rc = emit(w, head, sizeof(head), e)) != 0 || (rc = emit(w, w->ct, w->len, e)) != 0 ||
            (rc = emit(w, tag, sizeof(tag), e)) != 0)
                return rc;
        w->frame++;
        w->len = 0;
        return 0;
}

/* Append plaintext; a full frame goes out only once more follows, so the last is never empty. */
static int put(struct gmca_kbk_writer *w, const void *p, size_t n, struct gmca_error *e)
{
        const uint8_t *in = p;
        int rc;

        while (n > 0) {
                size_t take;

                if (w->len == GMCA_KBK_FRAME_MAX && (rc = flush(w, 0, e)) != 0)
                        return rc;
                take = GMCA_KBK_FRAME_MAX - w->len < n ? GMCA_KBK_FRAME_MAX - w->len : n;
                memcpy(w->buf + w->len, in, take);
                w->len += take;
                in += take;
                n -= take;
        }
        return 0;
}

int gmca_kbk_put_file(struct gmca_kbk_writer *w, const char *path, const char *src,
                      struct gmca_error *e)
{
        uint8_t head[1 + 2 + GMCA_KBK_PATH_MAX + 8], chunk[CHUNK];
        size_t plen = strlen(path);
        uint64_t size, done = 0;
        struct stat st;
        int fd, rc;

        if (!gmca_kbk_path_ok(path))
                return gmca_error_set(e, GMCA_ERR_INVALID, "key backup: cannot hold a file %s",
                                      path);
        if ((fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                return gmca_error_set(e, errno == ENOENT ? GMCA_ERR_NOTFOUND : GMCA_ERR_IO,
                                      "key backup: %s: %s", src, strerror(errno));
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            (uint64_t)st.st_size > GMCA_KBK_FILE_MAX) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_INVALID, "key backup: %s: not a regular file",
                                      src);
        }
        size = (uint64_t)st.st_size;
        head[0] = 'F';
        head[1] = (uint8_t)(plen >> 8);
        head[2] = (uint8_t)plen;
        memcpy(head + 3, path, plen);
        gmca_put_be64(head + 3 + plen, size);
        rc = put(w, head, 3 + plen + 8, e);
        while (rc == 0 && done < size) {
                size_t want = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
                ssize_t got = read(fd, chunk, want);

                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0) {
                        rc = gmca_error_set(e, GMCA_ERR_IO, "key backup: %s changed while read",
                                            src);
                        break;
                }
                rc = put(w, chunk, (size_t)got, e);
                done += (uint64_t)got;
        }
        close(fd);
        return rc;
}

int gmca_kbk_put_key(struct gmca_kbk_writer *w, unsigned index, const uint8_t *blob, size_t len,
                     struct gmca_error *e)
{
        uint8_t head[9];
        int rc;

        if (index == 0 || index > GMCA_DEVICE_MAX_INDEX || len == 0 || len > GMCA_KBK_BLOB_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "key backup: key %u of %zu bytes", index,
                                      len);
        head[0] = 'K';
        gmca_put_be32(head + 1, index);
        gmca_put_be32(head + 5, (uint32_t)len);
        if ((rc = put(w, head, sizeof(head), e)) != 0)
                return rc;
        return put(w, blob, len, e);
}

int gmca_kbk_finish(struct gmca_kbk_writer *w, uint8_t sm3[GMCA_SM3_LEN], uint64_t *bytes,
                    struct gmca_error *e)
{
        int rc;

        if ((rc = put(w, "E", 1, e)) != 0 || (rc = flush(w, 1, e)) != 0)
                return rc;
        if (fsync(w->fd) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "key backup: fsync: %s", strerror(errno));
        rc = gmca_sm3_final(w->sm3, sm3);
        w->sm3 = NULL;
        if (rc != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "key backup: SM3 failed");
        *bytes = w->bytes;
        return 0;
}

struct gmca_kbk_reader {
        int fd;
        uint8_t key[GMCA_SM4_KEY_LEN];
        uint8_t hh[GMCA_SM3_LEN];
        uint64_t frame; /* frames opened so far */
        int last;       /* the last frame is open */
        uint8_t *buf;   /* plaintext of the open frame */
        size_t len, pos;
        uint8_t *ct;
        EVP_MD_CTX *sm3;
};

void gmca_kbk_reader_free(struct gmca_kbk_reader *r)
{
        if (r == NULL)
                return;
        if (r->sm3 != NULL) {
                uint8_t dummy[GMCA_SM3_LEN];

                (void)!gmca_sm3_final(r->sm3, dummy);
        }
        OPENSSL_clear_free(r->buf, GMCA_KBK_FRAME_MAX);
        OPENSSL_clear_free(r->ct, GMCA_KBK_FRAME_MAX + GMCA_SM4_GCM_TAG_LEN);
        OPENSSL_clear_free(r, sizeof(*r));
}

struct gmca_kbk_reader *gmca_kbk_reader_new(int fd, const uint8_t *header, size_t hlen,
                                            const uint8_t key[GMCA_SM4_KEY_LEN],
                                            struct gmca_error *e)
{
        struct gmca_kbk_reader *r = OPENSSL_zalloc(sizeof(*r));

        if (r == NULL || (r->buf = OPENSSL_malloc(GMCA_KBK_FRAME_MAX)) == NULL ||
            (r->ct = OPENSSL_malloc(GMCA_KBK_FRAME_MAX + GMCA_SM4_GCM_TAG_LEN)) == NULL ||
            (r->sm3 = gmca_sm3_new()) == NULL) {
                gmca_kbk_reader_free(r);
                gmca_error_set(e, GMCA_ERR_NOMEM, "key backup: out of memory");
                return NULL;
        }
        r->fd = fd;
        memcpy(r->key, key, GMCA_SM4_KEY_LEN);
        if (gmca_sm3(header, hlen, r->hh) != 0 || gmca_sm3_update(r->sm3, header, hlen) != 0) {
                gmca_kbk_reader_free(r);
                gmca_error_set(e, GMCA_ERR_CRYPTO, "key backup: SM3 failed");
                return NULL;
        }
        return r;
}

/* Read up to n bytes, fewer only at the end of the file; -1 on an error. */
static ssize_t read_upto(int fd, uint8_t *buf, size_t n)
{
        size_t got = 0;

        while (got < n) {
                ssize_t r = read(fd, buf + got, n - got);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -1;
                if (r == 0)
                        break;
                got += (size_t)r;
        }
        return (ssize_t)got;
}

static int open_frame(struct gmca_kbk_reader *r, struct gmca_error *e)
{
        uint8_t head[FRAME_HEAD], iv[GMCA_SM4_GCM_IV_LEN], aad[AAD_LEN];
        unsigned long long no = (unsigned long long)r->frame;
        uint32_t flen;
        ssize_t got;
        int rc;

        if ((got = read_upto(r->fd, head, sizeof(head))) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "key backup: read: %s", strerror(errno));
        if (got != (ssize_t)sizeof(head))
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup: cut short after frame %llu (its last frame "
                                      "is missing)",
                                      no);
        flen = gmca_get_be32(head + 1);
        if (head[0] > FLAG_LAST || flen > GMCA_KBK_FRAME_MAX || (flen == 0 && head[0] != FLAG_LAST))
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: frame %llu has a bad head",
                                      no);
        if ((got = read_upto(r->fd, r->ct, (size_t)flen + GMCA_SM4_GCM_TAG_LEN)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "key backup: read: %s", strerror(errno));
        if (got != (ssize_t)flen + GMCA_SM4_GCM_TAG_LEN)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: cut short in frame %llu",
                                      no);
        if (gmca_sm3_update(r->sm3, head, sizeof(head)) != 0 ||
            gmca_sm3_update(r->sm3, r->ct, (size_t)got) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "key backup: SM3 failed");
        frame_iv_aad(r->hh, r->frame, head[0] == FLAG_LAST, iv, aad);
        rc = gmca_sm4_gcm_decrypt(r->key, iv, aad, sizeof(aad), r->ct, flen, r->ct + flen, r->buf,
                                  e);
        if (rc != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup: frame %llu does not authenticate (the archive "
                                      "was altered, or its frames moved)",
                                      no);
        }
        r->frame++;
        r->last = head[0] == FLAG_LAST;
        r->len = flen;
        r->pos = 0;
        return 0;
}

int gmca_kbk_read(void *reader, uint8_t *buf, size_t n, struct gmca_error *e)
{
        struct gmca_kbk_reader *r = reader;
        int rc;

        while (n > 0) {
                size_t take;

                if (r->pos == r->len) {
                        if (r->last)
                                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                                      "key backup: its content ends early");
                        if ((rc = open_frame(r, e)) != 0)
                                return rc;
                        continue;
                }
                take = r->len - r->pos < n ? r->len - r->pos : n;
                memcpy(buf, r->buf + r->pos, take);
                r->pos += take;
                buf += take;
                n -= take;
        }
        return 0;
}

int gmca_kbk_reader_finish(struct gmca_kbk_reader *r, uint8_t sm3[GMCA_SM3_LEN],
                           struct gmca_error *e)
{
        uint8_t extra;
        ssize_t got;
        int rc;

        if (!r->last || r->pos != r->len)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "key backup: content after its end entry");
        if ((got = read_upto(r->fd, &extra, 1)) != 0)
                return gmca_error_set(e, got < 0 ? GMCA_ERR_IO : GMCA_ERR_TAMPER,
                                      "key backup: bytes after the last frame");
        rc = gmca_sm3_final(r->sm3, sm3);
        r->sm3 = NULL;
        return rc == 0 ? 0 : gmca_error_set(e, GMCA_ERR_CRYPTO, "key backup: SM3 failed");
}

/* ---- entries ---- */

static int entry_file(const struct gmca_kbk_src *src, const struct gmca_kbk_sink *sink,
                      struct gmca_error *e)
{
        uint8_t head[8], chunk[CHUNK];
        char path[GMCA_KBK_PATH_MAX + 1];
        uint64_t size;
        size_t plen;
        int rc;

        if ((rc = src->read(src->arg, head, 2, e)) != 0)
                return rc;
        plen = (size_t)head[0] << 8 | head[1];
        if (plen == 0 || plen > GMCA_KBK_PATH_MAX)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: file name of %zu bytes",
                                      plen);
        if ((rc = src->read(src->arg, (uint8_t *)path, plen, e)) != 0)
                return rc;
        path[plen] = '\0';
        if (strlen(path) != plen || !gmca_kbk_path_ok(path))
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: bad file name in entry");
        if ((rc = src->read(src->arg, head, 8, e)) != 0)
                return rc;
        if ((size = gmca_get_be64(head)) > GMCA_KBK_FILE_MAX)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: %s: %llu bytes", path,
                                      (unsigned long long)size);
        if (sink->file_open != NULL && (rc = sink->file_open(sink->arg, path, size, e)) != 0)
                return rc;
        while (size > 0) {
                size_t n = size < CHUNK ? (size_t)size : CHUNK;

                if ((rc = src->read(src->arg, chunk, n, e)) != 0)
                        return rc;
                if (sink->file_data != NULL && (rc = sink->file_data(sink->arg, chunk, n, e)) != 0)
                        return rc;
                size -= n;
        }
        return sink->file_close != NULL ? sink->file_close(sink->arg, e) : 0;
}

static int entry_key(const struct gmca_kbk_src *src, const struct gmca_kbk_sink *sink,
                     struct gmca_error *e)
{
        uint8_t head[8], *blob;
        uint32_t index, len;
        int rc;

        if ((rc = src->read(src->arg, head, sizeof(head), e)) != 0)
                return rc;
        index = gmca_get_be32(head);
        len = gmca_get_be32(head + 4);
        if (index == 0 || index > GMCA_DEVICE_MAX_INDEX || len == 0 || len > GMCA_KBK_BLOB_MAX)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: key %u of %u bytes", index,
                                      len);
        if ((blob = malloc(len)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "key backup: out of memory");
        rc = src->read(src->arg, blob, len, e);
        if (rc == 0 && sink->key != NULL)
                rc = sink->key(sink->arg, index, blob, len, e);
        OPENSSL_cleanse(blob, len);
        free(blob);
        return rc;
}

int gmca_kbk_entries(const struct gmca_kbk_src *src, const struct gmca_kbk_sink *sink,
                     struct gmca_error *e)
{
        for (unsigned i = 0; i < GMCA_KBK_ENTRIES_MAX; i++) {
                uint8_t kind;
                int rc;

                if ((rc = src->read(src->arg, &kind, 1, e)) != 0)
                        return rc;
                if (kind == 'E')
                        return 0;
                if (kind == 'F')
                        rc = entry_file(src, sink, e);
                else if (kind == 'K')
                        rc = entry_key(src, sink, e);
                else
                        rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                            "key backup: unknown entry kind 0x%02x", kind);
                if (rc != 0)
                        return rc;
        }
        return gmca_error_set(e, GMCA_ERR_TAMPER, "key backup: more than %u entries",
                              GMCA_KBK_ENTRIES_MAX);
}
