/*
 * backup_pkg: the package container of backup.h — named byte strings, an
 * SM3 manifest of them and a seal over the manifest. Parsing is strict
 * because a package arrives from storage we do not control: every length
 * is checked against what is left, names are sorted (so duplicates are
 * impossible) and restricted to the characters of relative paths, and the
 * manifest must be exactly the one the entries give.
 *
 * Layout (integers big-endian):
 *   "GMCAPKG1"  u32 count (entries + manifest)
 *   count x { u16 namelen, name, u64 len, bytes }   manifest last
 *   u16 seallen, seal
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "backup.h"
#include "util.h"

int gmca_pkg_name_ok(const char *s, size_t n)
{
        size_t i;

        if (n == 0 || n > GMCA_PKG_NAME_MAX || s[0] == '/')
                return 0;
        for (i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x21 || c == 0x7f || c == '\\')
                        return 0;
                if (c == '/' && (i + 1 == n || s[i + 1] == '/'))
                        return 0;
                /* no "." or ".." path component */
                if (c == '.' && (i == 0 || s[i - 1] == '/') &&
                    (i + 1 == n || s[i + 1] == '/' ||
                     (s[i + 1] == '.' && (i + 2 == n || s[i + 2] == '/'))))
                        return 0;
        }
        return 1;
}

static int cmp_entry(const void *a, const void *b)
{
        return strcmp(((const struct gmca_pkg_entry *)a)->name,
                      ((const struct gmca_pkg_entry *)b)->name);
}

/* Manifest text of v[0..n) into a new buffer. */
static int manifest_make(const struct gmca_pkg_entry *v, size_t n, uint8_t **out, size_t *outlen,
                         struct gmca_error *e)
{
        size_t cap = 1, len = 0, i;
        uint8_t *m;

        for (i = 0; i < n; i++)
                cap += 64 + 1 + 20 + 1 + strlen(v[i].name) + 1;
        if ((m = OPENSSL_malloc(cap)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "package: out of memory");
        for (i = 0; i < n; i++) {
                uint8_t d[GMCA_SM3_LEN];
                char hex[65];
                int w;
                if (gmca_sm3(v[i].data, v[i].len, d) != 0) {
                        OPENSSL_free(m);
                        return gmca_error_set(e, GMCA_ERR_CRYPTO, "package: SM3 failed");
                }
                gmca_hex(d, sizeof(d), hex);
                w = snprintf((char *)m + len, cap - len, "%s %zu %s\n", hex, v[i].len, v[i].name);
                if (w < 0 || (size_t)w >= cap - len) {
                        OPENSSL_free(m);
                        return gmca_error_set(e, GMCA_ERR_INTERNAL, "package: manifest overflow");
                }
                len += (size_t)w;
        }
        *out = m;
        *outlen = len;
        return 0;
}

static void put_entry(uint8_t *p, size_t *off, const char *name, const uint8_t *data, size_t len)
{
        size_t nl = strlen(name);

        p[*off] = (uint8_t)(nl >> 8);
        p[*off + 1] = (uint8_t)nl;
        memcpy(p + *off + 2, name, nl);
        gmca_put_be64(p + *off + 2 + nl, len);
        if (len > 0)
                memcpy(p + *off + 10 + nl, data, len);
        *off += 10 + nl + len;
}

int gmca_pkg_pack(struct gmca_pkg_entry *v, size_t n, gmca_pkg_seal_fn seal, void *arg,
                  uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        uint8_t *man = NULL, *buf = NULL, sl[GMCA_PKG_SEAL_MAX];
        size_t manlen = 0, total, off = 0, seallen = 0, i;
        int rc;

        if (n + 1 > GMCA_PKG_ENTRIES_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "package: more than %d entries",
                                      GMCA_PKG_ENTRIES_MAX - 1);
        qsort(v, n, sizeof(*v), cmp_entry);
        total = 8 + 4;
        for (i = 0; i < n; i++) {
                if (!gmca_pkg_name_ok(v[i].name, strlen(v[i].name)) ||
                    strcmp(v[i].name, GMCA_PKG_MANIFEST) == 0 ||
                    (i > 0 && strcmp(v[i - 1].name, v[i].name) == 0))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "package: bad or duplicate entry name \"%.64s\"",
                                              v[i].name);
                total += 10 + strlen(v[i].name) + v[i].len;
        }
        if ((rc = manifest_make(v, n, &man, &manlen, e)) != 0)
                return rc;
        if ((rc = seal(arg, man, manlen, sl, &seallen, e)) != 0)
                goto out;
        if (seallen == 0 || seallen > GMCA_PKG_SEAL_MAX) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "package: bad seal length");
                goto out;
        }
        total += 10 + strlen(GMCA_PKG_MANIFEST) + manlen + 2 + seallen;
        if ((buf = OPENSSL_malloc(total)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "package: out of memory");
                goto out;
        }
        memcpy(buf, GMCA_PKG_MAGIC, 8);
        gmca_put_be32(buf + 8, (uint32_t)(n + 1));
        off = 12;
        for (i = 0; i < n; i++)
                put_entry(buf, &off, v[i].name, v[i].data, v[i].len);
        put_entry(buf, &off, GMCA_PKG_MANIFEST, man, manlen);
        buf[off] = (uint8_t)(seallen >> 8);
        buf[off + 1] = (uint8_t)seallen;
        memcpy(buf + off + 2, sl, seallen);
        *out = buf;
        *outlen = total;
        buf = NULL;
        rc = 0;
out:
        OPENSSL_free(man);
        OPENSSL_free(buf);
        return rc;
}

void gmca_pkg_clear(struct gmca_pkg *p)
{
        size_t i;

        if (p == NULL)
                return;
        for (i = 0; i < p->n; i++)
                OPENSSL_free((char *)p->v[i].name);
        OPENSSL_free(p->v);
        memset(p, 0, sizeof(*p));
}

/* One entry at *off; name copied (NUL-terminated) into *name. */
static int get_entry(const uint8_t *buf, size_t len, size_t *off, char **name, const uint8_t **data,
                     size_t *dlen, struct gmca_error *e)
{
        size_t nl;
        uint64_t l;

        if (len - *off < 2)
                return gmca_error_set(e, GMCA_ERR_INVALID, "package: truncated entry name");
        nl = (size_t)buf[*off] << 8 | buf[*off + 1];
        if (len - *off - 2 < nl + 8)
                return gmca_error_set(e, GMCA_ERR_INVALID, "package: truncated entry");
        if (!gmca_pkg_name_ok((const char *)buf + *off + 2, nl) ||
            memchr(buf + *off + 2, 0, nl) != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "package: bad entry name");
        l = gmca_get_be64(buf + *off + 2 + nl);
        if (l > len - *off - 10 - nl)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "package: entry longer than the package");
        if ((*name = OPENSSL_strndup((const char *)buf + *off + 2, nl)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "package: out of memory");
        *data = buf + *off + 10 + nl;
        *dlen = (size_t)l;
        *off += 10 + nl + (size_t)l;
        return 0;
}

static int parse_entries(const uint8_t *buf, size_t len, size_t count, size_t *off,
                         struct gmca_pkg *p, struct gmca_error *e)
{
        size_t i;
        int rc;

        if ((p->v = OPENSSL_zalloc(sizeof(*p->v) * count)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "package: out of memory");
        for (i = 0; i + 1 < count; i++) {
                char *name = NULL;
                if ((rc = get_entry(buf, len, off, &name, &p->v[i].data, &p->v[i].len, e)) != 0)
                        return rc;
                p->v[i].name = name;
                p->n = i + 1;
                if (strcmp(name, GMCA_PKG_MANIFEST) == 0 ||
                    (i > 0 && strcmp(p->v[i - 1].name, name) >= 0))
                        return gmca_error_set(
                            e, GMCA_ERR_INVALID,
                            "package: entries not in strict name order at \"%.64s\"", name);
        }
        return 0;
}

int gmca_pkg_parse(const uint8_t *buf, size_t len, struct gmca_pkg *p, struct gmca_error *e)
{
        struct gmca_pkg r;
        size_t off = 12, count, seallen, mlen = 0;
        uint8_t *want = NULL;
        char *mname = NULL;
        int rc;

        memset(&r, 0, sizeof(r));
        if (len < 12 || memcmp(buf, GMCA_PKG_MAGIC, 8) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "package: not a gmca package (magic)");
        count = gmca_get_be32(buf + 8);
        if (count == 0 || count > GMCA_PKG_ENTRIES_MAX || count > (len - 12) / 10)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "package: bad entry count %zu", count);
        if ((rc = parse_entries(buf, len, count, &off, &r, e)) != 0)
                goto out;
        if ((rc = get_entry(buf, len, &off, &mname, &r.manifest, &r.manifest_len, e)) != 0)
                goto out;
        rc = GMCA_ERR_INVALID;
        if (strcmp(mname, GMCA_PKG_MANIFEST) != 0) {
                gmca_error_set(e, rc, "package: the last entry is not the manifest");
                goto out;
        }
        if (len - off < 2 || (seallen = (size_t)buf[off] << 8 | buf[off + 1]) == 0 ||
            seallen > GMCA_PKG_SEAL_MAX || len - off - 2 != seallen) {
                gmca_error_set(e, rc, "package: bad seal (length, or bytes after it)");
                goto out;
        }
        r.seal = buf + off + 2;
        r.seal_len = seallen;
        if ((rc = manifest_make(r.v, r.n, &want, &mlen, e)) != 0)
                goto out;
        if (mlen != r.manifest_len || CRYPTO_memcmp(want, r.manifest, mlen) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "package: an entry does not match the SM3 manifest");
                goto out;
        }
        *p = r;
        memset(&r, 0, sizeof(r));
        rc = 0;
out:
        OPENSSL_free(mname);
        OPENSSL_free(want);
        gmca_pkg_clear(&r);
        return rc;
}

const struct gmca_pkg_entry *gmca_pkg_find(const struct gmca_pkg *p, const char *name)
{
        size_t lo = 0, hi = p->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(p->v[mid].name, name);
                if (c == 0)
                        return &p->v[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}
