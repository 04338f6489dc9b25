/*
 * softsdf: gmca's software crypto device behind the GM/T 0018 SDF calls of
 * sdf.h. Key pairs live at indexes 1..1024 in a key store directory, one
 * file per index (key-0001.sdk ...). A file holds the public key in clear,
 * so exporting it needs no password, and the private scalar sealed with
 * SM4-GCM under a key derived from the index's access password with
 * PBKDF2-HMAC-SHA256; the authenticated data is the whole header (index and
 * public key included), so a file moved to another index or a public key
 * edited in place is refused as damaged (SDR_KEYERR). An unlocked key is
 * held per session as an EVP_PKEY, whose private BIGNUM OpenSSL keeps on
 * its secure heap (locked, not dumped) when one could be set up.
 *
 * The file is compiled twice: into gmcacore with internal names (reached
 * through gmca_softsdf_api()), and with GMCA_SOFTSDF_SHARED into
 * libgmca-softsdf.so, where the same functions carry the standard SDF_ and
 * SDFX_ names and are the only symbols exported, so the dlopen path of
 * device.c is tested against a library shaped like a vendor's.
 *
 * A device handle and its sessions are for one thread at a time, like the
 * rest of gmca (STYLE.md); separate processes may share a store: files are
 * replaced by rename and created by link, so no reader sees half a file and
 * two creators of one index cannot both win.
 */
#include "sdf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "util.h"

#ifdef GMCA_SOFTSDF_SHARED
#define API __attribute__((visibility("default")))
#define SDF(f) SDF_##f
#define SDFX(f) SDFX_##f
#else
#define API static
#define SDF(f) gmca_softsdf_##f
#define SDFX(f) gmca_softsdfx_##f
#endif

#define MAX_INDEX 1024
#define PWD_MIN 8   /* a new password; checking accepts 1.. */
#define PWD_MAX 256 /* GMCA_DEVICE_PIN_MAX */
#define ID_MAX 64   /* GMCA_SM2_ID_MAX */
/*
 * PBKDF2 iterations for a new file. Low for a password a person types, and
 * meant for what gmca gives it: the 32-byte random key PIN of a CA key
 * (custody.h). Files record their count, so it can be raised later.
 */
#define KDF_ITER 10000
#define KDF_ITER_MIN 1000
#define KDF_ITER_MAX 10000000 /* refused above, before deriving anything */
#define KDF_PBKDF2_SHA256 1
#define SERIAL_FILE "device-serial"
#define HANDLE_DEV 0x53444656u  /* "SDFV" */
#define HANDLE_SESS 0x53444653u /* "SDFS" */

/*
 * The key file, big-endian integers:
 *    0  magic "GMCA-SDK"         8
 *    8  version = 1              4
 *   12  key index                4
 *   16  algorithm = SGD_SM2_1    4
 *   20  bits = 256               4
 *   24  public x || y           64
 *   88  KDF = 1 (PBKDF2-SHA256)  4
 *   92  iterations               4
 *   96  salt                    16
 *  112  password check          16
 *  128  GCM IV                  12
 *  140  SM4-GCM(private scalar) 32   AAD = bytes 0..139
 *  172  GCM tag                 16
 *  188
 * PBKDF2 yields 32 bytes: the first 16 are the SM4 key, the other 16 are
 * stored as the password check (as WinZip AES does with its verification
 * value). It tells a wrong password (SDR_PARDENY) from a damaged file
 * (the tag fails with the right password: SDR_KEYERR) and helps no guesser:
 * the tag already lets one test a password at the same PBKDF2 cost.
 */
#define MAGIC "GMCA-SDK"
#define VERSION 1
#define OFF_VERSION 8
#define OFF_INDEX 12
#define OFF_ALG 16
#define OFF_BITS 20
#define OFF_PUB 24
#define OFF_KDF 88
#define OFF_ITER 92
#define OFF_SALT 96
#define OFF_CHECK 112
#define OFF_IV 128
#define OFF_CT 140
#define OFF_TAG 172
#define BLOB_LEN 188
#define SALT_LEN 16
#define CHECK_LEN 16

struct sdev;

struct sess {
        unsigned magic;
        struct sdev *dev;
        struct sess *next;
        EVP_MD_CTX *hash; /* between HashInit and HashFinal */
        EVP_PKEY *keys[MAX_INDEX + 1];
};

struct sdev {
        unsigned magic;
        char dir[PATH_MAX];
        char serial[17];
        struct sess *sessions;
};

/* Set by SDFX_Configure, read by SDF_OpenDevice. */
static char conf_dir[PATH_MAX];

/* ---- conversions, shared with device.c ---- */

static int all_zero(const unsigned char *p, size_t n)
{
        unsigned char acc = 0;

        for (size_t i = 0; i < n; i++)
                acc |= p[i];
        return acc == 0;
}

/* An SM2 EVP_PKEY from x || y (public only), or with the private scalar d too. */
static EVP_PKEY *sm2_from_xy(const uint8_t xy[64], const uint8_t *d)
{
        OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *key = NULL;
        BIGNUM *bn = NULL;
        uint8_t pt[65];

        pt[0] = 0x04;
        memcpy(pt + 1, xy, 64);
        if (b == NULL ||
            OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) != 1)
                goto out;
        if (d != NULL) {
                /* Secure BIGNUMs make OSSL_PARAM_BLD put the scalar on the secure heap. */
                if ((bn = BN_secure_new()) == NULL || BN_bin2bn(d, 32, bn) == NULL ||
                    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn) != 1)
                        goto out;
        }
        if ((params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
            (ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL)) == NULL ||
            EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, d != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                              params) != 1) {
                key = NULL;
                goto out;
        }
        EVP_PKEY_CTX_free(ctx);
        /* On the curve, and for a pair: the scalar is the public key's. */
        if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
            EVP_PKEY_public_check(ctx) != 1 || (d != NULL && EVP_PKEY_pairwise_check(ctx) != 1)) {
                EVP_PKEY_free(key);
                key = NULL;
        }
out:
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(b);
        BN_clear_free(bn);
        return key;
}

EVP_PKEY *gmca_sdf_pkey_from_ecc(const ECCrefPublicKey *pub, struct gmca_error *e)
{
        uint8_t xy[64];
        EVP_PKEY *key;

        if (pub == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "SDF: no public key");
                return NULL;
        }
        if (pub->bits != 256 || !all_zero(pub->x, 32) || !all_zero(pub->y, 32)) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "SDF: ECCrefPublicKey of %u bits, want 256 right-aligned",
                               pub->bits);
                return NULL;
        }
        memcpy(xy, pub->x + 32, 32);
        memcpy(xy + 32, pub->y + 32, 32);
        if ((key = sm2_from_xy(xy, NULL)) == NULL)
                gmca_error_ossl(e, GMCA_ERR_INVALID,
                                "SDF: ECCrefPublicKey is not a point on the SM2 curve");
        return key;
}

int gmca_sdf_ecc_from_pkey(EVP_PKEY *key, ECCrefPublicKey *out, struct gmca_error *e)
{
        uint8_t xy[64];
        int rc;

        if ((rc = gmca_sm2_is_sm2(key, e)) != 0 || (rc = gmca_sm2_pub_xy(key, xy, e)) != 0)
                return rc;
        memset(out, 0, sizeof(*out));
        out->bits = 256;
        memcpy(out->x + 32, xy, 32);
        memcpy(out->y + 32, xy + 32, 32);
        return 0;
}

int gmca_sdf_sig_from_der(const uint8_t *der, size_t len, ECCSignature *out, struct gmca_error *e)
{
        const unsigned char *p = der;
        const BIGNUM *r = NULL, *s = NULL;
        ECDSA_SIG *sig = NULL;
        ECCSignature v;
        int rc = GMCA_ERR_INVALID;

        if (der == NULL || len == 0 || len > 80)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2Signature: %zu bytes", len);
        /* Exactly one DER SM2Signature, nothing after it. */
        if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL || p != der + len) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID,
                                     "SM2Signature: not one DER SEQUENCE of two INTEGERs");
                goto out;
        }
        ECDSA_SIG_get0(sig, &r, &s);
        memset(&v, 0, sizeof(v));
        if (BN_is_negative(r) || BN_is_negative(s) || BN_bn2binpad(r, v.r + 32, 32) != 32 ||
            BN_bn2binpad(s, v.s + 32, 32) != 32) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "SM2Signature: r or s out of range");
                goto out;
        }
        *out = v;
        rc = 0;
out:
        ECDSA_SIG_free(sig);
        return rc;
}

int gmca_sdf_sig_to_der(const ECCSignature *sig, uint8_t *out, size_t *outlen, struct gmca_error *e)
{
        ECDSA_SIG *s = NULL;
        BIGNUM *br = NULL, *bs = NULL;
        unsigned char *p = out;
        int n, rc = GMCA_ERR_CRYPTO;

        if (!all_zero(sig->r, 32) || !all_zero(sig->s, 32))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "SDF: ECCSignature r or s over 256 bits");
        if ((s = ECDSA_SIG_new()) == NULL || (br = BN_bin2bn(sig->r + 32, 32, NULL)) == NULL ||
            (bs = BN_bin2bn(sig->s + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(s, br, bs) != 1) {
                BN_free(br);
                BN_free(bs);
                rc = gmca_error_ossl(e, GMCA_ERR_NOMEM, "SDF: signature not converted");
                goto out;
        }
        /* s owns br and bs now. */
        if ((n = i2d_ECDSA_SIG(s, NULL)) <= 0 || n > 80 || i2d_ECDSA_SIG(s, &p) != n) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "SDF: signature not encoded");
                goto out;
        }
        *outlen = (size_t)n;
        rc = 0;
out:
        ECDSA_SIG_free(s);
        return rc;
}

/* ---- key files ---- */

int gmca_softsdf_blob_check(const unsigned char *blob, size_t len, unsigned int *index)
{
        uint32_t idx, iter;
        EVP_PKEY *pub;

        if (blob == NULL || len != BLOB_LEN || memcmp(blob, MAGIC, 8) != 0 ||
            gmca_get_be32(blob + OFF_VERSION) != VERSION ||
            gmca_get_be32(blob + OFF_ALG) != SGD_SM2_1 || gmca_get_be32(blob + OFF_BITS) != 256 ||
            gmca_get_be32(blob + OFF_KDF) != KDF_PBKDF2_SHA256)
                return SDR_KEYERR;
        idx = gmca_get_be32(blob + OFF_INDEX);
        iter = gmca_get_be32(blob + OFF_ITER);
        if (idx < 1 || idx > MAX_INDEX || iter < KDF_ITER_MIN || iter > KDF_ITER_MAX)
                return SDR_KEYERR;
        if ((pub = sm2_from_xy(blob + OFF_PUB, NULL)) == NULL) {
                gmca_ossl_clear();
                return SDR_KEYERR;
        }
        EVP_PKEY_free(pub);
        if (index != NULL)
                *index = idx;
        return SDR_OK;
}

static int key_path(const struct sdev *d, unsigned index, char *buf, size_t len)
{
        int n = snprintf(buf, len, "%s/key-%04u.sdk", d->dir, index);

        return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The well-formed file of index: SDR_KEYNOTEXIST, SDR_KEYERR, SDR_FILEOFSERR. */
static int read_key(const struct sdev *d, unsigned index, uint8_t blob[BLOB_LEN])
{
        char path[PATH_MAX];
        struct stat st;
        unsigned idx = 0;
        int fd, rc;

        if (key_path(d, index, path, sizeof(path)) != 0)
                return SDR_FILEOFSERR;
        if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return errno == ENOENT ? SDR_KEYNOTEXIST : SDR_FILEOFSERR;
        if (fstat(fd, &st) != 0)
                rc = SDR_FILEOFSERR;
        else if (!S_ISREG(st.st_mode) || st.st_size != BLOB_LEN)
                rc = SDR_KEYERR; /* the size cap: the format has one size */
        else if (gmca_read_all(fd, blob, BLOB_LEN) != 0)
                rc = SDR_FILEOFSERR;
        else if ((rc = gmca_softsdf_blob_check(blob, BLOB_LEN, &idx)) == SDR_OK && idx != index)
                rc = SDR_KEYERR; /* a file moved from another index */
        close(fd);
        return rc;
}

static int sync_dir(const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc;

        if (fd < 0)
                return -1;
        rc = fsync(fd);
        close(fd);
        return rc;
}

/*
 * Write the file of index through a 0600 temporary file and fsync, then
 * either rename it over the old one (replace) or link it in, which fails
 * when the index is taken (SDR_FILEEXSITS): no overwrite, even between
 * processes.
 */
static int write_key(const struct sdev *d, unsigned index, const uint8_t blob[BLOB_LEN],
                     int replace)
{
        char path[PATH_MAX], tmp[PATH_MAX];
        int fd, n, rc = SDR_FILEWERR;

        n = snprintf(tmp, sizeof(tmp), "%s/.key-%04u.XXXXXX", d->dir, index);
        if (n < 0 || (size_t)n >= sizeof(tmp) || key_path(d, index, path, sizeof(path)) != 0)
                return SDR_FILEWERR;
        if ((fd = mkstemp(tmp)) < 0)
                return SDR_FILEWERR;
        if (fchmod(fd, 0600) != 0 || gmca_write_all(fd, blob, BLOB_LEN) != 0 || fsync(fd) != 0) {
                close(fd);
                goto out;
        }
        if (close(fd) != 0)
                goto out;
        if (replace) {
                if (rename(tmp, path) != 0)
                        goto out;
        } else if (link(tmp, path) != 0) {
                rc = errno == EEXIST ? SDR_FILEEXSITS : SDR_FILEWERR;
                goto out;
        }
        rc = sync_dir(d->dir) == 0 ? SDR_OK : SDR_FILEWERR;
out:
        unlink(tmp); /* after rename: already gone */
        return rc;
}

/* PBKDF2-HMAC-SHA256 of the password: dk[0..16] the SM4 key, dk[16..32] the check. */
static int derive(const uint8_t *blob, const unsigned char *pwd, unsigned pwdlen, uint8_t dk[32])
{
        if (PKCS5_PBKDF2_HMAC((const char *)pwd, (int)pwdlen, blob + OFF_SALT, SALT_LEN,
                              (int)gmca_get_be32(blob + OFF_ITER), EVP_sha256(), 32, dk) != 1) {
                gmca_ossl_clear();
                return SDR_UNKNOWERR;
        }
        return SDR_OK;
}

/* Open a well-formed file with pwd: SDR_PARDENY, SDR_KEYERR, or the scalar. */
static int unseal(const uint8_t blob[BLOB_LEN], const unsigned char *pwd, unsigned pwdlen,
                  uint8_t scalar[32])
{
        uint8_t dk[32];
        int rc;

        if ((rc = derive(blob, pwd, pwdlen, dk)) != SDR_OK)
                return rc;
        if (CRYPTO_memcmp(dk + 16, blob + OFF_CHECK, CHECK_LEN) != 0)
                rc = SDR_PARDENY;
        else if (gmca_sm4_gcm_decrypt(dk, blob + OFF_IV, blob, OFF_CT, blob + OFF_CT, 32,
                                      blob + OFF_TAG, scalar, NULL) != 0)
                rc = SDR_KEYERR;
        OPENSSL_cleanse(dk, sizeof(dk));
        gmca_ossl_clear();
        return rc;
}

/* A file for index holding scalar and the public x || y, sealed under pwd. */
static int seal(unsigned index, const uint8_t xy[64], const uint8_t scalar[32],
                const unsigned char *pwd, unsigned pwdlen, uint8_t blob[BLOB_LEN])
{
        uint8_t dk[32];
        int rc;

        memset(blob, 0, BLOB_LEN);
        memcpy(blob, MAGIC, 8);
        gmca_put_be32(blob + OFF_VERSION, VERSION);
        gmca_put_be32(blob + OFF_INDEX, index);
        gmca_put_be32(blob + OFF_ALG, SGD_SM2_1);
        gmca_put_be32(blob + OFF_BITS, 256);
        memcpy(blob + OFF_PUB, xy, 64);
        gmca_put_be32(blob + OFF_KDF, KDF_PBKDF2_SHA256);
        gmca_put_be32(blob + OFF_ITER, KDF_ITER);
        if (RAND_bytes(blob + OFF_SALT, SALT_LEN) != 1 ||
            RAND_bytes(blob + OFF_IV, GMCA_SM4_GCM_IV_LEN) != 1) {
                gmca_ossl_clear();
                return SDR_RANDERR;
        }
        if ((rc = derive(blob, pwd, pwdlen, dk)) != SDR_OK)
                return rc;
        memcpy(blob + OFF_CHECK, dk + 16, CHECK_LEN);
        if (gmca_sm4_gcm_encrypt(dk, blob + OFF_IV, blob, OFF_CT, scalar, 32, blob + OFF_CT,
                                 blob + OFF_TAG, NULL) != 0) {
                gmca_ossl_clear();
                rc = SDR_SYMOPERR;
        }
        OPENSSL_cleanse(dk, sizeof(dk));
        return rc;
}

/* ---- handles and arguments ---- */

static struct sess *session(void *h)
{
        struct sess *s = h;

        return s != NULL && s->magic == HANDLE_SESS ? s : NULL;
}

static int index_ok(unsigned index)
{
        return index >= 1 && index <= MAX_INDEX;
}

/* A password being checked (1..PWD_MAX), or being set (PWD_MIN..PWD_MAX). */
static int pwd_ok(const unsigned char *pwd, unsigned len, unsigned min)
{
        return pwd != NULL && len >= min && len <= PWD_MAX;
}

static void drop_key(struct sdev *d, unsigned index)
{
        for (struct sess *s = d->sessions; s != NULL; s = s->next) {
                EVP_PKEY_free(s->keys[index]);
                s->keys[index] = NULL;
        }
}

/* mkdir -p with mode 0700 for what is missing. */
static int make_dir(const char *dir)
{
        char buf[PATH_MAX];
        size_t n = strlen(dir);
        struct stat st;

        if (n == 0 || n >= sizeof(buf))
                return -1;
        memcpy(buf, dir, n + 1);
        for (size_t i = 1; i <= n; i++) {
                if (buf[i] != '/' && buf[i] != '\0')
                        continue;
                buf[i] = '\0';
                if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                        return -1;
                buf[i] = dir[i];
        }
        return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* The device serial: 16 hex digits made once per key store, kept in it. */
static int load_serial(struct sdev *d)
{
        char path[PATH_MAX], tmp[PATH_MAX];
        uint8_t raw[8];
        char hex[17];
        int n, fd;

        n = snprintf(path, sizeof(path), "%s/" SERIAL_FILE, d->dir);
        if (n < 0 || (size_t)n >= sizeof(path))
                return -1;
        for (int tries = 0; tries < 2; tries++) {
                if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
                        int ok = gmca_read_all(fd, (uint8_t *)d->serial, 16) == 0;

                        close(fd);
                        d->serial[16] = '\0';
                        return ok ? 0 : -1;
                }
                if (errno != ENOENT || RAND_bytes(raw, sizeof(raw)) != 1)
                        return -1;
                gmca_hex_upper(raw, sizeof(raw), hex);
                n = snprintf(tmp, sizeof(tmp), "%s/.serial.XXXXXX", d->dir);
                if (n < 0 || (size_t)n >= sizeof(tmp) || (fd = mkstemp(tmp)) < 0)
                        return -1;
                n = gmca_write_all(fd, (const uint8_t *)hex, 16) == 0 && fsync(fd) == 0;
                close(fd);
                /* link: another process may have made it first; then read theirs. */
                if (n && link(tmp, path) != 0 && errno != EEXIST)
                        n = 0;
                unlink(tmp);
                if (!n)
                        return -1;
        }
        return -1;
}

/* ---- SDF: device and sessions ---- */

API int SDFX(Configure)(const char *config)
{
        size_t n = config != NULL ? strlen(config) : 0;

        if (n >= sizeof(conf_dir))
                return SDR_INARGERR;
        memcpy(conf_dir, n > 0 ? config : "", n + 1);
        return SDR_OK;
}

API int SDF(OpenDevice)(void **phDeviceHandle)
{
        const char *dir = conf_dir[0] != '\0' ? conf_dir : getenv("GMCA_SOFTSDF_DIR");
        struct sdev *d;

        if (phDeviceHandle == NULL)
                return SDR_INARGERR;
        if (dir == NULL || dir[0] == '\0' || strlen(dir) >= sizeof(d->dir) - 32)
                return SDR_OPENDEVICE;
        /*
         * Private BIGNUMs go to OpenSSL's secure heap (mlock'd, excluded from
         * core dumps) once it exists; where mlock is not allowed they stay
         * on the normal heap, wiped when freed.
         */
        if (!CRYPTO_secure_malloc_initialized() && CRYPTO_secure_malloc_init(64 * 1024, 16) == 0)
                gmca_ossl_clear();
        if ((d = calloc(1, sizeof(*d))) == NULL)
                return SDR_NOBUFFER;
        memcpy(d->dir, dir, strlen(dir) + 1);
        if (make_dir(d->dir) != 0 || load_serial(d) != 0) {
                free(d);
                return SDR_OPENDEVICE;
        }
        d->magic = HANDLE_DEV;
        *phDeviceHandle = d;
        return SDR_OK;
}

static void free_session(struct sess *s)
{
        for (unsigned i = 0; i <= MAX_INDEX; i++)
                EVP_PKEY_free(s->keys[i]);
        EVP_MD_CTX_free(s->hash);
        s->magic = 0;
        free(s);
}

API int SDF(CloseDevice)(void *hDeviceHandle)
{
        struct sdev *d = hDeviceHandle;

        if (d == NULL || d->magic != HANDLE_DEV)
                return SDR_INARGERR;
        while (d->sessions != NULL) {
                struct sess *s = d->sessions;

                d->sessions = s->next;
                free_session(s);
        }
        d->magic = 0;
        free(d);
        return SDR_OK;
}

API int SDF(OpenSession)(void *hDeviceHandle, void **phSessionHandle)
{
        struct sdev *d = hDeviceHandle;
        struct sess *s;

        if (d == NULL || d->magic != HANDLE_DEV || phSessionHandle == NULL)
                return SDR_INARGERR;
        if ((s = calloc(1, sizeof(*s))) == NULL)
                return SDR_OPENSESSION;
        s->magic = HANDLE_SESS;
        s->dev = d;
        s->next = d->sessions;
        d->sessions = s;
        *phSessionHandle = s;
        return SDR_OK;
}

API int SDF(CloseSession)(void *hSessionHandle)
{
        struct sess *s = session(hSessionHandle);
        struct sess **pp;

        if (s == NULL)
                return SDR_INARGERR;
        for (pp = &s->dev->sessions; *pp != NULL; pp = &(*pp)->next) {
                if (*pp == s) {
                        *pp = s->next;
                        break;
                }
        }
        free_session(s);
        return SDR_OK;
}

static void put_name(unsigned char *dst, size_t cap, const char *src)
{
        size_t n = strlen(src);

        memcpy(dst, src, n < cap ? n : cap);
}

API int SDF(GetDeviceInfo)(void *hSessionHandle, DEVICEINFO *pstDeviceInfo)
{
        struct sess *s = session(hSessionHandle);

        if (s == NULL || pstDeviceInfo == NULL)
                return SDR_INARGERR;
        memset(pstDeviceInfo, 0, sizeof(*pstDeviceInfo));
        put_name(pstDeviceInfo->IssuerName, sizeof(pstDeviceInfo->IssuerName), "gmca");
        put_name(pstDeviceInfo->DeviceName, sizeof(pstDeviceInfo->DeviceName), "softsdf");
        put_name(pstDeviceInfo->DeviceSerial, sizeof(pstDeviceInfo->DeviceSerial), s->dev->serial);
        pstDeviceInfo->DeviceVersion = 0x00000100;
        pstDeviceInfo->StandardVersion = 1; /* GM/T 0018-2012 */
        pstDeviceInfo->AsymAlgAbility[0] = SGD_SM2_1;
        pstDeviceInfo->AsymAlgAbility[1] = 256;
        pstDeviceInfo->SymAlgAbility = 0;
        pstDeviceInfo->HashAlgAbility = SGD_SM3;
        pstDeviceInfo->BufferSize = 1u << 20;
        return SDR_OK;
}

API int SDF(GenerateRandom)(void *hSessionHandle, unsigned int uiLength, unsigned char *pucRandom)
{
        if (session(hSessionHandle) == NULL || (pucRandom == NULL && uiLength > 0))
                return SDR_INARGERR;
        while (uiLength > 0) {
                unsigned n = uiLength < (1u << 16) ? uiLength : (1u << 16);

                if (RAND_priv_bytes(pucRandom, (int)n) != 1) {
                        gmca_ossl_clear();
                        return SDR_RANDERR;
                }
                pucRandom += n;
                uiLength -= n;
        }
        return SDR_OK;
}

/* ---- SDF: private-key access ---- */

API int SDF(GetPrivateKeyAccessRight)(void *hSessionHandle, unsigned int uiKeyIndex,
                                      unsigned char *pucPassword, unsigned int uiPwdLength)
{
        struct sess *s = session(hSessionHandle);
        uint8_t blob[BLOB_LEN], scalar[32];
        EVP_PKEY *key;
        int rc;

        if (s == NULL || !index_ok(uiKeyIndex) || !pwd_ok(pucPassword, uiPwdLength, 1))
                return SDR_INARGERR;
        if ((rc = read_key(s->dev, uiKeyIndex, blob)) != SDR_OK ||
            (rc = unseal(blob, pucPassword, uiPwdLength, scalar)) != SDR_OK)
                return rc;
        key = sm2_from_xy(blob + OFF_PUB, scalar);
        OPENSSL_cleanse(scalar, sizeof(scalar));
        if (key == NULL) {
                gmca_ossl_clear();
                return SDR_KEYERR; /* sealed by us, yet not the public key's scalar */
        }
        /* A second unlock replaces the first; a failed one leaves it alone. */
        EVP_PKEY_free(s->keys[uiKeyIndex]);
        s->keys[uiKeyIndex] = key;
        return SDR_OK;
}

API int SDF(ReleasePrivateKeyAccessRight)(void *hSessionHandle, unsigned int uiKeyIndex)
{
        struct sess *s = session(hSessionHandle);

        if (s == NULL || !index_ok(uiKeyIndex))
                return SDR_INARGERR;
        EVP_PKEY_free(s->keys[uiKeyIndex]);
        s->keys[uiKeyIndex] = NULL;
        return SDR_OK;
}

API int SDF(ExportSignPublicKey_ECC)(void *hSessionHandle, unsigned int uiKeyIndex,
                                     ECCrefPublicKey *pucPublicKey)
{
        struct sess *s = session(hSessionHandle);
        uint8_t blob[BLOB_LEN];
        int rc;

        if (s == NULL || !index_ok(uiKeyIndex) || pucPublicKey == NULL)
                return SDR_INARGERR;
        if ((rc = read_key(s->dev, uiKeyIndex, blob)) != SDR_OK)
                return rc;
        memset(pucPublicKey, 0, sizeof(*pucPublicKey));
        pucPublicKey->bits = 256;
        memcpy(pucPublicKey->x + 32, blob + OFF_PUB, 32);
        memcpy(pucPublicKey->y + 32, blob + OFF_PUB + 32, 32);
        return SDR_OK;
}

/* ---- SDF: signatures ---- */

API int SDF(InternalSign_ECC)(void *hSessionHandle, unsigned int uiISKIndex, unsigned char *pucData,
                              unsigned int uiDataLength, ECCSignature *pucSignature)
{
        struct sess *s = session(hSessionHandle);
        EVP_PKEY_CTX *ctx = NULL;
        uint8_t der[80];
        size_t derlen = sizeof(der);
        int rc = SDR_SIGNERR;

        if (s == NULL || !index_ok(uiISKIndex) || pucData == NULL || uiDataLength != 32 ||
            pucSignature == NULL)
                return SDR_INARGERR;
        if (s->keys[uiISKIndex] == NULL)
                return SDR_PARDENY;
        /* OpenSSL 3's SM2 EVP_PKEY_sign signs the given e as it is (no Z). */
        if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->keys[uiISKIndex], NULL)) == NULL ||
            EVP_PKEY_sign_init(ctx) != 1 ||
            EVP_PKEY_sign(ctx, der, &derlen, pucData, uiDataLength) != 1 ||
            gmca_sdf_sig_from_der(der, derlen, pucSignature, NULL) != 0)
                goto out;
        rc = SDR_OK;
out:
        gmca_ossl_clear();
        EVP_PKEY_CTX_free(ctx);
        return rc;
}

API int SDF(ExternalVerify_ECC)(void *hSessionHandle, unsigned int uiAlgID,
                                ECCrefPublicKey *pucPublicKey, unsigned char *pucDataInput,
                                unsigned int uiInputLength, ECCSignature *pucSignature)
{
        EVP_PKEY *pub = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        uint8_t der[80];
        size_t derlen = 0;
        int rc = SDR_VERIFYERR;

        if (session(hSessionHandle) == NULL || pucPublicKey == NULL || pucDataInput == NULL ||
            uiInputLength != 32 || pucSignature == NULL)
                return SDR_INARGERR;
        if (uiAlgID != SGD_SM2_1)
                return SDR_ALGNOTSUPPORT;
        if ((pub = gmca_sdf_pkey_from_ecc(pucPublicKey, NULL)) == NULL) {
                rc = SDR_INARGERR;
                goto out;
        }
        if (gmca_sdf_sig_to_der(pucSignature, der, &derlen, NULL) != 0)
                goto out; /* r or s over 256 bits: not a signature */
        if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) == NULL ||
            EVP_PKEY_verify_init(ctx) != 1) {
                rc = SDR_PKOPERR;
                goto out;
        }
        if (EVP_PKEY_verify(ctx, der, derlen, pucDataInput, uiInputLength) == 1)
                rc = SDR_OK;
out:
        gmca_ossl_clear();
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pub);
        return rc;
}

/* ---- SDF: SM3 ---- */

API int SDF(HashInit)(void *hSessionHandle, unsigned int uiAlgID, ECCrefPublicKey *pucPublicKey,
                      unsigned char *pucID, unsigned int uiIDLength)
{
        struct sess *s = session(hSessionHandle);
        uint8_t z[GMCA_SM3_LEN];
        char id[ID_MAX + 1];
        EVP_PKEY *pub = NULL;
        int rc = SDR_UNKNOWERR;

        if (s == NULL)
                return SDR_INARGERR;
        if (uiAlgID != SGD_SM3)
                return SDR_ALGNOTSUPPORT;
        EVP_MD_CTX_free(s->hash); /* a new HashInit abandons an unfinished hash */
        s->hash = NULL;
        if (pucPublicKey != NULL) {
                /* Z takes the ID as a string here: 1..64 bytes, no NUL inside. */
                if (pucID == NULL || uiIDLength == 0 || uiIDLength > ID_MAX ||
                    memchr(pucID, '\0', uiIDLength) != NULL)
                        return SDR_INARGERR;
                memcpy(id, pucID, uiIDLength);
                id[uiIDLength] = '\0';
                if ((pub = gmca_sdf_pkey_from_ecc(pucPublicKey, NULL)) == NULL) {
                        rc = SDR_INARGERR;
                        goto out;
                }
                if (gmca_sm2_z(pub, id, z, NULL) != 0)
                        goto out;
        }
        if ((s->hash = gmca_sm3_new()) == NULL ||
            (pub != NULL && gmca_sm3_update(s->hash, z, sizeof(z)) != 0)) {
                EVP_MD_CTX_free(s->hash);
                s->hash = NULL;
                goto out;
        }
        rc = SDR_OK;
out:
        gmca_ossl_clear();
        EVP_PKEY_free(pub);
        return rc;
}

API int SDF(HashUpdate)(void *hSessionHandle, unsigned char *pucData, unsigned int uiDataLength)
{
        struct sess *s = session(hSessionHandle);

        if (s == NULL || (pucData == NULL && uiDataLength > 0))
                return SDR_INARGERR;
        if (s->hash == NULL)
                return SDR_STEPERR;
        if (uiDataLength > 0 && gmca_sm3_update(s->hash, pucData, uiDataLength) != 0) {
                gmca_ossl_clear();
                return SDR_UNKNOWERR;
        }
        return SDR_OK;
}

API int SDF(HashFinal)(void *hSessionHandle, unsigned char *pucHash, unsigned int *puiHashLength)
{
        struct sess *s = session(hSessionHandle);
        EVP_MD_CTX *c;

        if (s == NULL || pucHash == NULL || puiHashLength == NULL)
                return SDR_INARGERR;
        if (s->hash == NULL)
                return SDR_STEPERR;
        c = s->hash;
        s->hash = NULL;
        /* gmca_sm3_final frees c either way. */
        if (gmca_sm3_final(c, pucHash) != 0) {
                gmca_ossl_clear();
                return SDR_UNKNOWERR;
        }
        *puiHashLength = GMCA_SM3_LEN;
        return SDR_OK;
}

/* ---- SDFX: key management ---- */

API int SDFX(GenerateKeyPair_ECC)(void *hSession, unsigned int uiKeyIndex,
                                  unsigned char *pucPassword, unsigned int uiPwdLength)
{
        struct sess *s = session(hSession);
        uint8_t blob[BLOB_LEN], scalar[32], xy[64];
        ECCrefPublicKey pub;
        EVP_PKEY *key = NULL;
        BIGNUM *d = NULL;
        char path[PATH_MAX];
        int rc = SDR_UNKNOWERR;

        if (s == NULL || !index_ok(uiKeyIndex) || !pwd_ok(pucPassword, uiPwdLength, PWD_MIN))
                return SDR_INARGERR;
        /* Refuse early when taken; write_key's link settles a race. */
        if (key_path(s->dev, uiKeyIndex, path, sizeof(path)) != 0)
                return SDR_FILEWERR;
        if (access(path, F_OK) == 0)
                return SDR_FILEEXSITS;
        if ((key = gmca_sm2_keygen(NULL)) == NULL ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
            BN_bn2binpad(d, scalar, 32) != 32 || gmca_sdf_ecc_from_pkey(key, &pub, NULL) != 0)
                goto out;
        memcpy(xy, pub.x + 32, 32);
        memcpy(xy + 32, pub.y + 32, 32);
        if ((rc = seal(uiKeyIndex, xy, scalar, pucPassword, uiPwdLength, blob)) != SDR_OK)
                goto out;
        rc = write_key(s->dev, uiKeyIndex, blob, 0);
out:
        OPENSSL_cleanse(scalar, sizeof(scalar));
        gmca_ossl_clear();
        BN_clear_free(d);
        EVP_PKEY_free(key);
        return rc;
}

API int SDFX(ChangeKeyPIN)(void *hSession, unsigned int uiKeyIndex, unsigned char *pucOld,
                           unsigned int uiOldLength, unsigned char *pucNew,
                           unsigned int uiNewLength)
{
        struct sess *s = session(hSession);
        uint8_t blob[BLOB_LEN], fresh[BLOB_LEN], scalar[32];
        EVP_PKEY *key;
        int rc;

        if (s == NULL || !index_ok(uiKeyIndex) || !pwd_ok(pucOld, uiOldLength, 1) ||
            !pwd_ok(pucNew, uiNewLength, PWD_MIN))
                return SDR_INARGERR;
        if ((rc = read_key(s->dev, uiKeyIndex, blob)) != SDR_OK ||
            (rc = unseal(blob, pucOld, uiOldLength, scalar)) != SDR_OK)
                return rc;
        /* Only a scalar that matches the public key is sealed again. */
        if ((key = sm2_from_xy(blob + OFF_PUB, scalar)) == NULL) {
                gmca_ossl_clear();
                rc = SDR_KEYERR;
        } else if ((rc = seal(uiKeyIndex, blob + OFF_PUB, scalar, pucNew, uiNewLength, fresh)) ==
                   SDR_OK) {
                rc = write_key(s->dev, uiKeyIndex, fresh, 1);
        }
        EVP_PKEY_free(key);
        OPENSSL_cleanse(scalar, sizeof(scalar));
        return rc;
}

/*
 * Overwrite with zeros, fsync, unlink. On a journaling or copy-on-write
 * file system the old blocks may survive; they hold only the sealed scalar.
 */
API int SDFX(DestroyKeyPair_ECC)(void *hSession, unsigned int uiKeyIndex,
                                 unsigned char *pucPassword, unsigned int uiPwdLength)
{
        struct sess *s = session(hSession);
        uint8_t blob[BLOB_LEN], scalar[32];
        char path[PATH_MAX];
        int fd, rc;

        if (s == NULL || !index_ok(uiKeyIndex) || !pwd_ok(pucPassword, uiPwdLength, 1))
                return SDR_INARGERR;
        if ((rc = read_key(s->dev, uiKeyIndex, blob)) != SDR_OK ||
            (rc = unseal(blob, pucPassword, uiPwdLength, scalar)) != SDR_OK)
                return rc;
        OPENSSL_cleanse(scalar, sizeof(scalar));
        if (key_path(s->dev, uiKeyIndex, path, sizeof(path)) != 0 ||
            (fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return SDR_FILEWERR;
        memset(blob, 0, sizeof(blob));
        rc = gmca_write_all(fd, blob, sizeof(blob)) == 0 && fsync(fd) == 0 ? SDR_OK : SDR_FILEWERR;
        close(fd);
        if (rc == SDR_OK && (unlink(path) != 0 || sync_dir(s->dev->dir) != 0))
                rc = SDR_FILEWERR;
        drop_key(s->dev, uiKeyIndex);
        return rc;
}

API int SDFX(ExportKeyBlob)(void *hSession, unsigned int uiKeyIndex, unsigned char *pucBlob,
                            unsigned int *puiBlobLength)
{
        struct sess *s = session(hSession);
        uint8_t blob[BLOB_LEN];
        int rc;

        if (s == NULL || !index_ok(uiKeyIndex) || puiBlobLength == NULL)
                return SDR_INARGERR;
        if ((rc = read_key(s->dev, uiKeyIndex, blob)) != SDR_OK)
                return rc;
        if (pucBlob != NULL && *puiBlobLength < BLOB_LEN)
                rc = SDR_NOBUFFER;
        else if (pucBlob != NULL)
                memcpy(pucBlob, blob, BLOB_LEN);
        *puiBlobLength = BLOB_LEN;
        return rc;
}

API int SDFX(ImportKeyBlob)(void *hSession, unsigned int uiKeyIndex, const unsigned char *pucBlob,
                            unsigned int uiBlobLength)
{
        struct sess *s = session(hSession);
        unsigned idx = 0;
        int rc;

        if (s == NULL || !index_ok(uiKeyIndex) || pucBlob == NULL)
                return SDR_INARGERR;
        if ((rc = gmca_softsdf_blob_check(pucBlob, uiBlobLength, &idx)) != SDR_OK)
                return rc;
        /* The index is sealed into the blob (AAD): it goes back where it came from. */
        if (idx != uiKeyIndex)
                return SDR_INARGERR;
        return write_key(s->dev, uiKeyIndex, pucBlob, 0);
}

#ifndef GMCA_SOFTSDF_SHARED
const struct gmca_sdf_api *gmca_softsdf_api(void)
{
        static const struct gmca_sdf_api api = {
            .OpenDevice = gmca_softsdf_OpenDevice,
            .CloseDevice = gmca_softsdf_CloseDevice,
            .OpenSession = gmca_softsdf_OpenSession,
            .CloseSession = gmca_softsdf_CloseSession,
            .GetDeviceInfo = gmca_softsdf_GetDeviceInfo,
            .GenerateRandom = gmca_softsdf_GenerateRandom,
            .GetPrivateKeyAccessRight = gmca_softsdf_GetPrivateKeyAccessRight,
            .ReleasePrivateKeyAccessRight = gmca_softsdf_ReleasePrivateKeyAccessRight,
            .ExportSignPublicKey_ECC = gmca_softsdf_ExportSignPublicKey_ECC,
            .InternalSign_ECC = gmca_softsdf_InternalSign_ECC,
            .ExternalVerify_ECC = gmca_softsdf_ExternalVerify_ECC,
            .HashInit = gmca_softsdf_HashInit,
            .HashUpdate = gmca_softsdf_HashUpdate,
            .HashFinal = gmca_softsdf_HashFinal,
            .X_Configure = gmca_softsdfx_Configure,
            .X_GenerateKeyPair_ECC = gmca_softsdfx_GenerateKeyPair_ECC,
            .X_ChangeKeyPIN = gmca_softsdfx_ChangeKeyPIN,
            .X_DestroyKeyPair_ECC = gmca_softsdfx_DestroyKeyPair_ECC,
            .X_ExportKeyBlob = gmca_softsdfx_ExportKeyBlob,
            .X_ImportKeyBlob = gmca_softsdfx_ImportKeyBlob,
        };

        return &api;
}

int gmca_softsdf_debug_scalar(void *hSession, unsigned int index, unsigned char out[32])
{
        struct sess *s = session(hSession);
        BIGNUM *d = NULL;
        int rc = SDR_UNKNOWERR;

        if (s == NULL || !index_ok(index) || out == NULL)
                return SDR_INARGERR;
        if (s->keys[index] == NULL)
                return SDR_PARDENY;
        if (EVP_PKEY_get_bn_param(s->keys[index], OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 &&
            BN_bn2binpad(d, out, 32) == 32)
                rc = SDR_OK;
        gmca_ossl_clear();
        BN_clear_free(d);
        return rc;
}
#endif
