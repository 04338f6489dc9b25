/*
 * m-of-n custody of the CA master key. Shamir splitting is libgfshare's
 * (GF(2^8), one polynomial per byte); everything around it is here: the PIN
 * rules of CPS §7.4.1, the sealed share file, and the checks that make a
 * share of another CA, of an earlier split, or of the wrong index fail by
 * name before any key is derived.
 *
 * A share file is one JSON object with exactly these fields:
 *
 *   format        "gmca-share-1"
 *   custodian     UTF-8 name, 1..GMCA_CUSTODIAN_NAME_MAX-1 bytes, no controls
 *   installation  hex, GMCA_CUSTODY_ID_LEN bytes
 *   set           hex, GMCA_CUSTODY_ID_LEN bytes
 *   x             share index, 1..count
 *   threshold     2..count
 *   count         threshold..GMCA_CUSTODY_MAX
 *   created       seconds since the epoch, up to the end of 9999
 *   kdf           "pbkdf2-hmac-sha256"
 *   iterations    SHARE_ITER_MIN..SHARE_ITER_MAX
 *   salt          hex, SHARE_SALT_LEN bytes
 *   iv            hex, GMCA_SM4_GCM_IV_LEN bytes
 *   share         hex, GMCA_MASTER_LEN bytes: SM4-GCM ciphertext of the share
 *   tag           hex, GMCA_SM4_GCM_TAG_LEN bytes
 *
 * The SM4 key is PBKDF2-HMAC-SHA256(PIN, salt, iterations, 16 bytes). The
 * GCM additional data is a length-prefixed binary encoding of every public
 * field (see aad()), not the JSON text, so that the check does not depend on
 * how the JSON is spelled. A wrong PIN and an edited header both end as a
 * tag mismatch; the message says so rather than guessing.
 *
 * libgfshare draws the random coefficients from the global function pointer
 * gfshare_fill_rand (NULL in 2.0.0), and gfshare_ctx_free() overwrites the
 * context's buffers through it before freeing them. It is pointed once at a
 * function over RAND_priv_bytes; a failure of the CSPRNG is noted in a
 * thread-local flag, since the callback cannot return one.
 */
#include "custody.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libgfshare.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "util.h"

#define SHARE_FORMAT "gmca-share-1"
#define SHARE_KDF "pbkdf2-hmac-sha256"
#define SHARE_SALT_LEN 16
#define SHARE_ITER_MIN 1000
#define SHARE_ITER_MAX 10000000
#define SHARE_FIELDS 14
#define SHARE_CREATED_MAX 253402300799LL /* 9999-12-31T23:59:59Z */
#define CHECK_LABEL "gmca custody check v1"
#define AAD_MAX 512

/* A share file's fields, parsed; nothing here is secret. */
struct share {
        struct gmca_share_info info;
        unsigned iter;
        uint8_t salt[SHARE_SALT_LEN];
        uint8_t iv[GMCA_SM4_GCM_IV_LEN];
        uint8_t ct[GMCA_MASTER_LEN];
        uint8_t tag[GMCA_SM4_GCM_TAG_LEN];
};

/* --------------------------------------------------------- randomness --- */

static _Thread_local int rand_failed;
static CRYPTO_ONCE rand_once = CRYPTO_ONCE_STATIC_INIT;

/* libgfshare's source of coefficients and of the bytes it wipes with. */
static void fill_rand(unsigned char *buf, unsigned int n)
{
        if (n > 0 && RAND_priv_bytes(buf, (int)n) != 1) {
                OPENSSL_cleanse(buf, n);
                rand_failed = 1;
        }
}

static void set_fill_rand(void)
{
        gfshare_fill_rand = fill_rand;
}

/* Point libgfshare at the CSPRNG; refuse if someone else re-pointed it. */
static int gfshare_ready(struct gmca_error *e)
{
        if (!CRYPTO_THREAD_run_once(&rand_once, set_fill_rand) || gfshare_fill_rand != fill_rand)
                return gmca_error_set(e, GMCA_ERR_INTERNAL,
                                      "custody: libgfshare is not using the CSPRNG");
        return 0;
}

/* -------------------------------------------------------------- UTF-8 --- */

/*
 * Decode one code point of s[*i..len) strictly (no overlong forms, no
 * surrogates, nothing above U+10FFFF) and advance *i. -1 on bad input.
 */
static int utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp)
{
        uint8_t c = s[*i];
        uint32_t v, min;
        size_t n;

        if (c < 0x80) {
                *cp = c;
                (*i)++;
                return 0;
        }
        if (c >= 0xc2 && c <= 0xdf) {
                n = 1, v = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 2, v = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 3, v = c & 0x07, min = 0x10000;
        } else {
                return -1;
        }
        if (len - *i <= n)
                return -1;
        for (size_t k = 1; k <= n; k++) {
                if ((s[*i + k] & 0xc0) != 0x80)
                        return -1;
                v = v << 6 | (s[*i + k] & 0x3f);
        }
        if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                return -1;
        *cp = v;
        *i += n + 1;
        return 0;
}

static uint32_t fold(uint32_t c)
{
        return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int is_control(uint32_t c)
{
        return c < 0x20 || (c >= 0x7f && c < 0xa0);
}

/*
 * Decode s into at most cap case-folded code points. Returns the count, -1
 * on invalid UTF-8, -2 on a control character, -3 if over cap.
 */
static int decode(const uint8_t *s, size_t len, uint32_t *out, size_t cap)
{
        size_t i = 0, n = 0;

        while (i < len) {
                uint32_t c;

                if (utf8_next(s, len, &i, &c) != 0)
                        return -1;
                if (is_control(c))
                        return -2;
                if (n == cap)
                        return -3;
                out[n++] = fold(c);
        }
        return (int)n;
}

/* A custodian name: 1..MAX-1 bytes of UTF-8 without control characters. */
static int name_ok(const char *name)
{
        uint32_t cps[GMCA_CUSTODIAN_NAME_MAX];
        size_t len;

        if (name == NULL)
                return 0;
        len = strlen(name);
        return len > 0 && len < GMCA_CUSTODIAN_NAME_MAX &&
               decode((const uint8_t *)name, len, cps, GMCA_CUSTODIAN_NAME_MAX) > 0;
}

/* Names compared with ASCII case folded, as the PIN rules compare them. */
static int same_name(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);

        if (la != lb)
                return 0;
        for (size_t i = 0; i < la; i++)
                if (fold((uint8_t)a[i]) != fold((uint8_t)b[i]))
                        return 0;
        return 1;
}

/* ---------------------------------------------------------- PIN rules --- */

static int contains(const uint32_t *hay, size_t hn, const uint32_t *needle, size_t nn)
{
        if (nn == 0 || nn > hn)
                return 0;
        for (size_t i = 0; i + nn <= hn; i++)
                if (memcmp(hay + i, needle, nn * sizeof(*needle)) == 0)
                        return 1;
        return 0;
}

int gmca_pin_check(const char *pin, size_t pinlen, const char *custodian, struct gmca_error *e)
{
        uint32_t p[GMCA_PIN_MAX], nm[GMCA_CUSTODIAN_NAME_MAX];
        int np, nn, letter = 0, digit = 0, rc = GMCA_ERR_POLICY;
        size_t run = 0;

        if (!name_ok(custodian))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "custodian name must be 1 to %d bytes of UTF-8 without "
                                      "control characters",
                                      GMCA_CUSTODIAN_NAME_MAX - 1);
        if (pin == NULL && pinlen > 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "PIN of %s: none given", custodian);
        nn = decode((const uint8_t *)custodian, strlen(custodian), nm, GMCA_CUSTODIAN_NAME_MAX);
        if (pinlen > GMCA_PIN_MAX) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must be at most %d bytes", custodian,
                               GMCA_PIN_MAX);
                goto out;
        }
        np = pinlen == 0 ? 0 : decode((const uint8_t *)pin, pinlen, p, GMCA_PIN_MAX);
        if (np == -1) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s is not valid UTF-8", custodian);
                goto out;
        }
        if (np < 0) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must not contain control characters",
                               custodian);
                goto out;
        }
        if (np < GMCA_PIN_MIN) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must be at least %d characters",
                               custodian, GMCA_PIN_MIN);
                goto out;
        }
        for (int i = 0; i < np; i++) {
                letter |= p[i] >= 'a' && p[i] <= 'z';
                digit |= p[i] >= '0' && p[i] <= '9';
        }
        if (!letter) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must contain an ASCII letter",
                               custodian);
                goto out;
        }
        if (!digit) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must contain a digit", custodian);
                goto out;
        }
        for (int i = 0; i < np; i++) {
                int same = 0;

                for (int j = 0; j < np; j++)
                        same += p[j] == p[i];
                if (2 * same >= np) {
                        gmca_error_set(e, rc,
                                       "CPS §7.4.1: PIN of %s must not be mostly one character "
                                       "(one fills half or more of it)",
                                       custodian);
                        goto out;
                }
        }
        for (int i = 0; i < np; i++) {
                run = i > 0 && p[i] == p[i - 1] ? run + 1 : 1;
                if (run >= 4) {
                        gmca_error_set(e, rc,
                                       "CPS §7.4.1: PIN of %s must not repeat a character 4 times "
                                       "in a row",
                                       custodian);
                        goto out;
                }
        }
        if (np == nn && memcmp(p, nm, (size_t)np * sizeof(*p)) == 0) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must not be the custodian's name",
                               custodian);
                goto out;
        }
        if ((nn == 2 || nn == 3) && contains(p, (size_t)np, nm, (size_t)nn)) {
                gmca_error_set(e, rc, "CPS §7.4.1: PIN of %s must not contain the custodian's name",
                               custodian);
                goto out;
        }
        for (int i = 0; nn >= 4 && i + 4 <= nn; i++) {
                if (contains(p, (size_t)np, nm + i, 4)) {
                        gmca_error_set(e, rc,
                                       "CPS §7.4.1: PIN of %s must not contain 4 or more "
                                       "consecutive characters of the custodian's name",
                                       custodian);
                        goto out;
                }
        }
        rc = 0;
out:
        OPENSSL_cleanse(p, sizeof(p));
        return rc;
}

/* ------------------------------------------------------- share sealing --- */

static void put32(uint8_t *b, size_t *n, uint32_t v)
{
        gmca_put_be32(b + *n, v);
        *n += 4;
}

static void putbytes(uint8_t *b, size_t *n, const void *p, size_t len)
{
        put32(b, n, (uint32_t)len);
        memcpy(b + *n, p, len);
        *n += len;
}

/*
 * The GCM additional data: every public field of the file, each with its
 * length, in a fixed order. buf holds AAD_MAX bytes, which the caps on the
 * name (and the fixed sizes of the rest) keep it under.
 */
static size_t aad(const struct share *s, uint8_t buf[AAD_MAX])
{
        const struct gmca_share_info *in = &s->info;
        uint64_t created = (uint64_t)in->created;
        size_t n = 0;

        putbytes(buf, &n, SHARE_FORMAT, strlen(SHARE_FORMAT));
        putbytes(buf, &n, in->custodian, strlen(in->custodian));
        putbytes(buf, &n, in->installation, sizeof(in->installation));
        putbytes(buf, &n, in->set_id, sizeof(in->set_id));
        put32(buf, &n, in->x);
        put32(buf, &n, in->threshold);
        put32(buf, &n, in->count);
        put32(buf, &n, (uint32_t)(created >> 32));
        put32(buf, &n, (uint32_t)created);
        putbytes(buf, &n, SHARE_KDF, strlen(SHARE_KDF));
        put32(buf, &n, s->iter);
        putbytes(buf, &n, s->salt, sizeof(s->salt));
        return n;
}

static int derive(const char *pin, size_t pinlen, const struct share *s,
                  uint8_t key[GMCA_SM4_KEY_LEN], struct gmca_error *e)
{
        if (s->iter < SHARE_ITER_MIN || s->iter > SHARE_ITER_MAX)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "custody: iteration count unchecked");
        if (PKCS5_PBKDF2_HMAC(pin, (int)pinlen, s->salt, sizeof(s->salt), (int)s->iter,
                              EVP_sha256(), GMCA_SM4_KEY_LEN, key) != 1)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "custody: PBKDF2 failed");
        return 0;
}

/* Seal plain (one share) into s under pin: fresh salt and IV. */
static int seal(struct share *s, const uint8_t plain[GMCA_MASTER_LEN], const char *pin,
                size_t pinlen, struct gmca_error *e)
{
        uint8_t key[GMCA_SM4_KEY_LEN], ad[AAD_MAX];
        size_t adlen;
        int rc;

        if ((rc = gmca_rand_bytes(s->salt, sizeof(s->salt), e)) != 0 ||
            (rc = gmca_rand_bytes(s->iv, sizeof(s->iv), e)) != 0)
                return rc;
        adlen = aad(s, ad);
        if ((rc = derive(pin, pinlen, s, key, e)) == 0)
                rc = gmca_sm4_gcm_encrypt(key, s->iv, ad, adlen, plain, GMCA_MASTER_LEN, s->ct,
                                          s->tag, e);
        OPENSSL_cleanse(key, sizeof(key));
        return rc;
}

/* Open s with pin into plain. A tag mismatch is GMCA_ERR_AUTH naming the custodian. */
static int unseal(const struct share *s, const char *path, const char *pin, size_t pinlen,
                  uint8_t plain[GMCA_MASTER_LEN], struct gmca_error *e)
{
        uint8_t key[GMCA_SM4_KEY_LEN], ad[AAD_MAX];
        struct gmca_error inner;
        size_t adlen;
        int rc;

        if (pin == NULL || pinlen == 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "custodian %s: no PIN given",
                                      s->info.custodian);
        if (pinlen > GMCA_PIN_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "custodian %s: PIN over %d bytes",
                                      s->info.custodian, GMCA_PIN_MAX);
        adlen = aad(s, ad);
        if ((rc = derive(pin, pinlen, s, key, e)) != 0)
                goto out;
        gmca_error_clear(&inner);
        rc = gmca_sm4_gcm_decrypt(key, s->iv, ad, adlen, s->ct, sizeof(s->ct), s->tag, plain,
                                  &inner);
        if (rc == GMCA_ERR_VERIFY)
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "custodian %s: wrong PIN (or the share file %s was altered)",
                                    s->info.custodian, path);
        else if (rc != 0)
                rc = gmca_error_set(e, rc, "%s", inner.msg);
out:
        OPENSSL_cleanse(key, sizeof(key));
        return rc;
}

/* ---------------------------------------------------- share file format --- */

static char *share_json(const struct share *s, struct gmca_error *e)
{
        const struct gmca_share_info *in = &s->info;
        char inst[2 * GMCA_CUSTODY_ID_LEN + 1], set[2 * GMCA_CUSTODY_ID_LEN + 1];
        char salt[2 * SHARE_SALT_LEN + 1], iv[2 * GMCA_SM4_GCM_IV_LEN + 1];
        char ct[2 * GMCA_MASTER_LEN + 1], tag[2 * GMCA_SM4_GCM_TAG_LEN + 1];
        char *text, *line;
        json_t *o;
        size_t len;

        gmca_hex(in->installation, sizeof(in->installation), inst);
        gmca_hex(in->set_id, sizeof(in->set_id), set);
        gmca_hex(s->salt, sizeof(s->salt), salt);
        gmca_hex(s->iv, sizeof(s->iv), iv);
        gmca_hex(s->ct, sizeof(s->ct), ct);
        gmca_hex(s->tag, sizeof(s->tag), tag);
        o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:s}",
                      "format", SHARE_FORMAT, "custodian", in->custodian, "installation", inst,
                      "set", set, "x", (json_int_t)in->x, "threshold", (json_int_t)in->threshold,
                      "count", (json_int_t)in->count, "created", (json_int_t)in->created, "kdf",
                      SHARE_KDF, "iterations", (json_int_t)s->iter, "salt", salt, "iv", iv, "share",
                      ct, "tag", tag);
        if (o == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "custody: cannot build the share file");
                return NULL;
        }
        text = json_dumps(o, JSON_INDENT(2));
        json_decref(o);
        if (text == NULL || (len = strlen(text)) + 2 > GMCA_SHARE_FILE_MAX ||
            (line = realloc(text, len + 2)) == NULL) {
                free(text);
                gmca_error_set(e, GMCA_ERR_NOMEM, "custody: cannot write the share file");
                return NULL;
        }
        memcpy(line + len, "\n", 2);
        return line;
}

/* A printable, short field name for messages, or a placeholder. */
static const char *shown_key(const char *k)
{
        size_t n = strlen(k);

        if (n == 0 || n > 32)
                return "(unprintable)";
        for (size_t i = 0; i < n; i++)
                if (k[i] < 0x21 || k[i] > 0x7e)
                        return "(unprintable)";
        return k;
}

static int get_str(json_t *o, const char *key, const char *label, const char **out, size_t *len,
                   struct gmca_error *e)
{
        json_t *v = json_object_get(o, key);

        if (v == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: field \"%s\" missing", label, key);
        if (!json_is_string(v))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: field \"%s\" is not a string",
                                      label, key);
        *out = json_string_value(v);
        *len = json_string_length(v);
        return 0;
}

/* Lower-case hex of exactly len bytes. */
static int get_hex(json_t *o, const char *key, const char *label, uint8_t *out, size_t len,
                   struct gmca_error *e)
{
        const char *s;
        size_t n, got;
        int rc;

        if ((rc = get_str(o, key, label, &s, &n, e)) != 0)
                return rc;
        if (n != 2 * len)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: field \"%s\" must be %zu hex digits", label, key,
                                      2 * len);
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "%s: field \"%s\" is not lower-case hex", label, key);
        if (gmca_unhex(s, out, len, &got) != 0 || got != len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: field \"%s\" is not hex", label,
                                      key);
        return 0;
}

/* An integer in [min, max]; over max is code (GMCA_ERR_INVALID or _LIMIT). */
static int get_int(json_t *o, const char *key, const char *label, json_int_t min, json_int_t max,
                   int code, json_int_t *out, struct gmca_error *e)
{
        json_t *v = json_object_get(o, key);
        json_int_t i;

        if (v == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: field \"%s\" missing", label, key);
        if (!json_is_integer(v))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: field \"%s\" is not an integer",
                                      label, key);
        i = json_integer_value(v);
        if (i < min)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: field \"%s\" is %lld, under the minimum %lld", label,
                                      key, (long long)i, (long long)min);
        if (i > max)
                return gmca_error_set(e, code, "%s: field \"%s\" is %lld, over the cap of %lld",
                                      label, key, (long long)i, (long long)max);
        *out = i;
        return 0;
}

static int parse_obj(json_t *o, const char *label, struct share *s, struct gmca_error *e)
{
        static const char *const known[SHARE_FIELDS] = {
            "format",  "custodian", "installation", "set",  "x",  "threshold", "count",
            "created", "kdf",       "iterations",   "salt", "iv", "share",     "tag"};
        struct gmca_share_info *in = &s->info;
        const char *str, *key;
        json_int_t x, t, c, created, iter;
        json_t *v;
        size_t len;
        int rc;

        if (!json_is_object(o))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a JSON object", label);
        json_object_foreach(o, key, v)
        {
                size_t k = 0;

                while (k < SHARE_FIELDS && strcmp(key, known[k]) != 0)
                        k++;
                if (k == SHARE_FIELDS)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "%s: unknown field \"%s\"",
                                              label, shown_key(key));
        }
        if ((rc = get_str(o, "format", label, &str, &len, e)) != 0)
                return rc;
        if (len != strlen(SHARE_FORMAT) || strcmp(str, SHARE_FORMAT) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a %s share file", label,
                                      SHARE_FORMAT);
        if ((rc = get_str(o, "custodian", label, &str, &len, e)) != 0)
                return rc;
        if (len != strlen(str) || !name_ok(str))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: field \"custodian\" must be 1 to %d bytes of UTF-8 "
                                      "without control characters",
                                      label, GMCA_CUSTODIAN_NAME_MAX - 1);
        memcpy(in->custodian, str, len + 1);
        if ((rc = get_hex(o, "installation", label, in->installation, sizeof(in->installation),
                          e)) != 0 ||
            (rc = get_hex(o, "set", label, in->set_id, sizeof(in->set_id), e)) != 0 ||
            (rc = get_int(o, "count", label, 2, GMCA_CUSTODY_MAX, GMCA_ERR_INVALID, &c, e)) != 0 ||
            (rc = get_int(o, "threshold", label, 2, c, GMCA_ERR_INVALID, &t, e)) != 0 ||
            (rc = get_int(o, "x", label, 1, c, GMCA_ERR_INVALID, &x, e)) != 0 ||
            (rc = get_int(o, "created", label, 0, SHARE_CREATED_MAX, GMCA_ERR_INVALID, &created,
                          e)) != 0)
                return rc;
        if ((rc = get_str(o, "kdf", label, &str, &len, e)) != 0)
                return rc;
        if (len != strlen(SHARE_KDF) || strcmp(str, SHARE_KDF) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: field \"kdf\" is not %s", label,
                                      SHARE_KDF);
        if ((rc = get_int(o, "iterations", label, SHARE_ITER_MIN, SHARE_ITER_MAX, GMCA_ERR_LIMIT,
                          &iter, e)) != 0 ||
            (rc = get_hex(o, "salt", label, s->salt, sizeof(s->salt), e)) != 0 ||
            (rc = get_hex(o, "iv", label, s->iv, sizeof(s->iv), e)) != 0 ||
            (rc = get_hex(o, "share", label, s->ct, sizeof(s->ct), e)) != 0 ||
            (rc = get_hex(o, "tag", label, s->tag, sizeof(s->tag), e)) != 0)
                return rc;
        in->x = (unsigned)x;
        in->threshold = (unsigned)t;
        in->count = (unsigned)c;
        in->created = (int64_t)created;
        s->iter = (unsigned)iter;
        return 0;
}

/*
 * jansson quotes the input near an error; keep the message one line of valid
 * UTF-8 by replacing control characters and broken sequences with '?'.
 */
static void printable(char *s, size_t cap)
{
        size_t len = strnlen(s, cap), i = 0;

        while (i < len) {
                size_t at = i;
                uint32_t c;

                if (utf8_next((const uint8_t *)s, len, &i, &c) != 0 || is_control(c)) {
                        i = at + 1;
                        s[at] = '?';
                }
        }
}

/* Parse a share file's text; label names it in messages. */
static int parse(const uint8_t *buf, size_t len, const char *label, struct share *s,
                 struct gmca_error *e)
{
        json_error_t jerr;
        json_t *o;
        int rc;

        if (len > GMCA_SHARE_FILE_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: larger than %d bytes", label,
                                      GMCA_SHARE_FILE_MAX);
        memset(s, 0, sizeof(*s));
        if ((o = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
                printable(jerr.text, sizeof(jerr.text));
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a share file (JSON: %s)", label,
                                      jerr.text);
        }
        rc = parse_obj(o, label, s, e);
        json_decref(o);
        return rc;
}

int gmca_share_parse(const uint8_t *buf, size_t len, struct gmca_share_info *info,
                     struct gmca_error *e)
{
        struct share s;
        int rc;

        if (buf == NULL || info == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "share file: nothing to parse");
        if ((rc = parse(buf, len, "share file", &s, e)) == 0)
                *info = s.info;
        return rc;
}

static int read_share(const char *path, struct share *s, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len;
        int rc;

        if (path == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "share file: no path given");
        if ((rc = gmca_read_file(path, GMCA_SHARE_FILE_MAX, &buf, &len, e)) != 0)
                return rc;
        rc = parse(buf, len, path, s, e);
        free(buf);
        return rc;
}

int gmca_share_info(const char *path, struct gmca_share_info *info, struct gmca_error *e)
{
        struct share s;
        int rc;

        if (info == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "share file: no result buffer");
        if ((rc = read_share(path, &s, e)) == 0)
                *info = s.info;
        return rc;
}

/* -------------------------------------------------------- split/combine --- */

/* Secrets of one split or combine, kept together to be locked and wiped. */
struct secrets {
        uint8_t master[GMCA_MASTER_LEN];
        uint8_t check[GMCA_MASTER_LEN];
        uint8_t share[GMCA_CUSTODY_MAX][GMCA_MASTER_LEN];
};

static void secrets_lock(struct secrets *sec)
{
        /* Best effort: a failure (RLIMIT_MEMLOCK) still leaves the wipe. */
        (void)mlock(sec, sizeof(*sec));
}

static void secrets_wipe(struct secrets *sec)
{
        OPENSSL_cleanse(sec, sizeof(*sec));
        (void)munlock(sec, sizeof(*sec));
}

static int set_ok(const struct gmca_custody_set *set, struct gmca_error *e)
{
        if (set == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "custody: no share set given");
        if (set->count > GMCA_CUSTODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "custody: %u shares is over the cap of %d",
                                      set->count, GMCA_CUSTODY_MAX);
        if (set->threshold < 2 || set->threshold > set->count)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "custody: threshold %u of %u shares (2 <= threshold <= "
                                      "count)",
                                      set->threshold, set->count);
        return 0;
}

int gmca_custody_split(const uint8_t master[GMCA_MASTER_LEN], const struct gmca_custody_set *set,
                       const struct gmca_custodian *cust, size_t n, struct gmca_error *e)
{
        uint8_t nrs[GMCA_CUSTODY_MAX];
        struct secrets sec;
        struct share s;
        gfshare_ctx *g = NULL;
        size_t written = 0;
        char *text = NULL;
        int rc;

        if ((rc = set_ok(set, e)) != 0)
                return rc;
        if (master == NULL || cust == NULL || n != set->count)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "custody: %zu custodians given for %u shares", n, set->count);
        for (size_t i = 0; i < n; i++) {
                struct stat st;

                if (cust[i].path == NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "custody: no share file given for custodian %zu",
                                              i + 1);
                if ((rc = gmca_pin_check(cust[i].pin, cust[i].pinlen, cust[i].name, e)) != 0)
                        return rc;
                for (size_t j = 0; j < i; j++) {
                        if (same_name(cust[i].name, cust[j].name))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "custody: custodian %s named twice",
                                                      cust[i].name);
                        if (strcmp(cust[i].path, cust[j].path) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "custody: share file %s given twice",
                                                      cust[i].path);
                }
                /* Refuse before writing anything; O_EXCL still guards the race. */
                if (lstat(cust[i].path, &st) == 0)
                        return gmca_error_set(e, GMCA_ERR_EXISTS,
                                              "%s: exists, refusing to overwrite (share file of "
                                              "%s)",
                                              cust[i].path, cust[i].name);
        }
        if ((rc = gfshare_ready(e)) != 0)
                return rc;

        secrets_lock(&sec);
        memcpy(sec.master, master, GMCA_MASTER_LEN);
        for (size_t i = 0; i < n; i++)
                nrs[i] = (uint8_t)(i + 1);
        if ((g = gfshare_ctx_init_enc(nrs, (unsigned)n, (unsigned char)set->threshold,
                                      GMCA_MASTER_LEN)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "custody: cannot start the split");
                goto out;
        }
        rand_failed = 0;
        gfshare_ctx_enc_setsecret(g, sec.master);
        if (rand_failed) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO,
                                     "custody: CSPRNG failed; no shares were made");
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                gfshare_ctx_enc_getshare(g, (unsigned char)i, sec.share[i]);

        for (size_t i = 0; i < n; i++) {
                memset(&s, 0, sizeof(s));
                gmca_strlcpy(s.info.custodian, cust[i].name, sizeof(s.info.custodian));
                memcpy(s.info.installation, set->installation, GMCA_CUSTODY_ID_LEN);
                memcpy(s.info.set_id, set->set_id, GMCA_CUSTODY_ID_LEN);
                s.info.x = nrs[i];
                s.info.threshold = set->threshold;
                s.info.count = set->count;
                s.info.created = (int64_t)gmca_now();
                s.iter = GMCA_SHARE_PBKDF2_ITER;
                if ((rc = seal(&s, sec.share[i], cust[i].pin, cust[i].pinlen, e)) != 0)
                        goto out;
                if ((text = share_json(&s, e)) == NULL) {
                        rc = GMCA_ERR_NOMEM;
                        goto out;
                }
                if ((rc = gmca_write_file_excl(cust[i].path, text, strlen(text), 0600, e)) != 0)
                        goto out;
                written++;
                free(text);
                text = NULL;
        }
        rc = 0;
out:
        if (rc != 0)
                for (size_t i = 0; i < written; i++)
                        unlink(cust[i].path);
        free(text);
        if (g != NULL)
                gfshare_ctx_free(g); /* overwrites its coefficients through fill_rand */
        secrets_wipe(&sec);
        return rc;
}

/* Lagrange interpolation of the shares at x = 0 into out. */
static int interpolate(const struct share *s, uint8_t share[][GMCA_MASTER_LEN], size_t n,
                       uint8_t out[GMCA_MASTER_LEN], struct gmca_error *e)
{
        uint8_t nrs[GMCA_CUSTODY_MAX];
        gfshare_ctx *g;

        for (size_t i = 0; i < n; i++)
                nrs[i] = (uint8_t)s[i].info.x;
        if ((g = gfshare_ctx_init_dec(nrs, (unsigned)n, GMCA_MASTER_LEN)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "custody: cannot start combining");
        for (size_t i = 0; i < n; i++)
                gfshare_ctx_dec_giveshare(g, (unsigned char)i, share[i]);
        gfshare_ctx_dec_extract(g, out);
        gfshare_ctx_free(g);
        return 0;
}

/* Custodians' names joined with ", ", cut at a character boundary to fit. */
static void join_names(const struct share *s, size_t n, char *who, size_t wholen)
{
        size_t used = 0;

        who[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                const char *parts[2] = {i > 0 ? ", " : "", s[i].info.custodian};

                for (size_t k = 0; k < 2; k++) {
                        size_t len = strlen(parts[k]);

                        if (used + len >= wholen) {
                                len = wholen - 1 - used;
                                while (len > 0 && ((uint8_t)parts[k][len] & 0xc0) == 0x80)
                                        len--;
                                memcpy(who + used, parts[k], len);
                                who[used + len] = '\0';
                                return;
                        }
                        memcpy(who + used, parts[k], len);
                        used += len;
                        who[used] = '\0';
                }
        }
}

/* The public checks of combine: each share belongs to expect, none twice. */
static int belongs(const struct gmca_custody_set *expect, const struct share *s,
                   const struct gmca_custodian *cust, size_t i, struct gmca_error *e)
{
        const struct gmca_share_info *in = &s[i].info;
        char when[32];

        if (memcmp(in->installation, expect->installation, GMCA_CUSTODY_ID_LEN) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "share file %s of %s belongs to another CA",
                                      cust[i].path, in->custodian);
        if (memcmp(in->set_id, expect->set_id, GMCA_CUSTODY_ID_LEN) != 0) {
                gmca_time_iso((time_t)in->created, when, sizeof(when));
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "share file %s of %s is from an earlier share set (it was "
                                      "written %s; the key was re-split since)",
                                      cust[i].path, in->custodian, when);
        }
        /* Same CA and set but another shape: only an edited file gets here. */
        if (in->threshold != expect->threshold || in->count != expect->count)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "share file %s of %s says %u of %u, the share set is %u of "
                                      "%u",
                                      cust[i].path, in->custodian, in->threshold, in->count,
                                      expect->threshold, expect->count);
        for (size_t j = 0; j < i; j++) {
                if (s[j].info.x == in->x)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "share files %s and %s hold the same share (%u of "
                                              "%s)",
                                              cust[j].path, cust[i].path, in->x, in->custodian);
                if (same_name(s[j].info.custodian, in->custodian))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "custodian %s given twice (share files %s and %s)",
                                              in->custodian, cust[j].path, cust[i].path);
        }
        return 0;
}

int gmca_custody_combine(const struct gmca_custody_set *expect, const struct gmca_custodian *cust,
                         size_t n, uint8_t master[GMCA_MASTER_LEN], char *who, size_t wholen,
                         struct gmca_error *e)
{
        struct share s[GMCA_CUSTODY_MAX];
        struct secrets sec;
        int rc;

        if ((rc = set_ok(expect, e)) != 0)
                return rc;
        if (cust == NULL || master == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "custody: nothing to combine");
        if (n < expect->threshold)
                return gmca_error_set(e, GMCA_ERR_AUTH, "%u of %u custodians needed, %zu given",
                                      expect->threshold, expect->count, n);
        if (n > expect->count)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%zu shares given, the share set has only %u", n,
                                      expect->count);
        /* Every file is read and checked before the first (slow) PIN derivation. */
        for (size_t i = 0; i < n; i++)
                if ((rc = read_share(cust[i].path, &s[i], e)) != 0 ||
                    (rc = belongs(expect, s, cust, i, e)) != 0)
                        return rc;
        if ((rc = gfshare_ready(e)) != 0)
                return rc;

        secrets_lock(&sec);
        for (size_t i = 0; i < n; i++)
                if ((rc = unseal(&s[i], cust[i].path, cust[i].pin, cust[i].pinlen, sec.share[i],
                                 e)) != 0)
                        goto out;
        if ((rc = interpolate(s, sec.share, n, sec.master, e)) != 0)
                goto out;
        /*
         * With more shares than needed, the first threshold of them must give
         * the same key: a share that opens under its PIN but lies on another
         * polynomial (forged by its custodian, or from a botched split) shows.
         */
        if (n > expect->threshold) {
                if ((rc = interpolate(s, sec.share, expect->threshold, sec.check, e)) != 0)
                        goto out;
                if (CRYPTO_memcmp(sec.master, sec.check, GMCA_MASTER_LEN) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                            "custody: the %zu shares do not agree; one of them is "
                                            "not from this split",
                                            n);
                        goto out;
                }
        }
        memcpy(master, sec.master, GMCA_MASTER_LEN);
        if (who != NULL && wholen > 0)
                join_names(s, n, who, wholen);
        rc = 0;
out:
        secrets_wipe(&sec);
        return rc;
}

int gmca_custody_check_value(const uint8_t master[GMCA_MASTER_LEN], uint8_t out[32],
                             struct gmca_error *e)
{
        if (master == NULL || out == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "custody: no master key given");
        return gmca_hmac_sm3(master, GMCA_MASTER_LEN, CHECK_LABEL, strlen(CHECK_LABEL), out, e);
}
