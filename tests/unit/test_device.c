/*
 * Tests of the device module and the software SDF device behind it. Every
 * device test runs twice: over the built-in device and over
 * libgmca-softsdf.so loaded with dlopen (path in GMCA_SOFTSDF_LIB). Keys
 * are generated, exported, unlocked with right and wrong passwords, sign
 * digests and TBS bytes that OpenSSL verifies, change PIN, are destroyed,
 * moved between stores as sealed blobs; damaged and swapped key files are
 * refused; SM3 with and without Z matches gmca_sm2_z. Raw SDF calls check
 * argument handling, and the key store is searched for the private scalar
 * (read through the test-only accessor of the built-in device).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "device.h"
#include "sdf.h"
#include "signer.h"

#define PIN "device test pin 1"
#define PIN2 "another key password"
#define WRONG "not the password!"
#define KEY_FILE_LEN 188

struct backend {
        const char *name;
        int shared; /* through libgmca-softsdf.so */
};

static const struct backend builtin = {"built-in", 0};
static const struct backend shared = {"libgmca-softsdf.so", 1};

struct fx {
        const struct backend *b;
        char base[64];
        char dir[128];  /* the device's key store: made by the device */
        char dir2[128]; /* a second store */
        struct gmca_device *d;
};

static const uint8_t *u8(const char *s)
{
        return (const uint8_t *)s;
}

static void rmtree(const char *path)
{
        struct stat st;
        DIR *d;
        struct dirent *de;

        if (lstat(path, &st) != 0)
                return;
        if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
                while ((de = readdir(d)) != NULL) {
                        char sub[512];

                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                        rmtree(sub);
                }
                closedir(d);
                rmdir(path);
                return;
        }
        unlink(path);
}

static struct gmca_device *open_dev(const struct fx *f, const char *dir)
{
        struct gmca_device_conf conf = {NULL, dir};
        struct gmca_error e = {0};
        struct gmca_device *d;

        if (f->b->shared)
                conf.library = getenv("GMCA_SOFTSDF_LIB");
        d = gmca_device_open(&conf, &e);
        if (d == NULL)
                fail_msg("%s: open %s: %s", f->b->name, dir, e.msg);
        return d;
}

static int setup(void **state)
{
        const struct backend *b = *state;
        struct fx *f;

        if (b->shared && getenv("GMCA_SOFTSDF_LIB") == NULL) {
                fprintf(stderr, "GMCA_SOFTSDF_LIB not set: run through ctest\n");
                return -1;
        }
        if ((f = calloc(1, sizeof(*f))) == NULL)
                return -1;
        f->b = b;
        snprintf(f->base, sizeof(f->base), "/tmp/gmca-test-device.XXXXXX");
        if (mkdtemp(f->base) == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/keys/device", f->base);
        snprintf(f->dir2, sizeof(f->dir2), "%s/store2", f->base);
        f->d = open_dev(f, f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        gmca_device_close(f->d);
        rmtree(f->base);
        free(f);
        return 0;
}

static void key_path(const char *dir, unsigned index, char *buf, size_t len)
{
        snprintf(buf, len, "%s/key-%04u.sdk", dir, index);
}

static void read_bytes(const char *path, uint8_t *buf, size_t len)
{
        FILE *fp = fopen(path, "rb");

        assert_non_null(fp);
        assert_int_equal(fread(buf, 1, len, fp), len);
        assert_int_equal(fgetc(fp), EOF);
        fclose(fp);
}

static void write_bytes(const char *path, const uint8_t *buf, size_t len)
{
        FILE *fp = fopen(path, "wb");

        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, len, fp), len);
        assert_int_equal(fclose(fp), 0);
}

/* Generate and unlock a key at index with pin. */
static void make_key(struct gmca_device *d, unsigned index, const char *pin)
{
        struct gmca_error e = {0};

        expect(gmca_device_generate_key(d, index, u8(pin), strlen(pin), &e), &e, 0, NULL,
               "generate");
        expect(gmca_device_unlock(d, index, u8(pin), strlen(pin), &e), &e, 0, NULL, "unlock");
}

static void random_digest(uint8_t dgst[32])
{
        struct gmca_error e = {0};

        assert_int_equal(gmca_rand_bytes(dgst, 32, &e), 0);
}

/* OpenSSL's own check of an SM2 signature over the digest e (no Z). */
static int ossl_verify_digest(EVP_PKEY *pub, const uint8_t dgst[32], const uint8_t *sig,
                              size_t siglen)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        int ok;

        assert_non_null(ctx);
        assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
        ok = EVP_PKEY_verify(ctx, sig, siglen, dgst, 32);
        EVP_PKEY_CTX_free(ctx);
        return ok;
}

/* Sign a fresh digest at index and check it three ways. */
static void sign_and_check(struct gmca_device *d, unsigned index, EVP_PKEY *pub)
{
        struct gmca_error e = {0};
        uint8_t dgst[32], sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;

        random_digest(dgst);
        expect(gmca_device_sign_digest(d, index, dgst, sig, &siglen, &e), &e, 0, NULL, "sign");
        assert_int_equal(ossl_verify_digest(pub, dgst, sig, siglen), 1);
        expect(gmca_device_verify_digest(d, pub, dgst, sig, siglen, &e), &e, 0, NULL, "verify");
        dgst[0] ^= 1;
        assert_int_not_equal(ossl_verify_digest(pub, dgst, sig, siglen), 1);
        expect(gmca_device_verify_digest(d, pub, dgst, sig, siglen, &e), &e, GMCA_ERR_VERIFY,
               "SDR_VERIFYERR", "verify a changed digest");
}

static void test_generate_unlock_sign(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        EVP_PKEY *pub, *other;
        uint8_t dgst[32], sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        char path[256];
        struct stat st;

        expect(gmca_device_generate_key(f->d, 7, u8(PIN), strlen(PIN), &e), &e, 0, NULL,
               "generate");
        /* The store directory was made, private; the key file too. */
        assert_int_equal(stat(f->dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        key_path(f->dir, 7, path, sizeof(path));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, KEY_FILE_LEN);

        gmca_error_clear(&e);
        expect(gmca_device_generate_key(f->d, 7, u8(PIN2), strlen(PIN2), &e), &e, GMCA_ERR_EXISTS,
               "SDR_FILEEXSITS", "generate at a taken index");
        gmca_error_clear(&e);
        assert_non_null(pub = gmca_device_public_key(f->d, 7, &e));
        assert_int_equal(gmca_sm2_is_sm2(pub, &e), 0);

        /* Signing needs the access right. */
        random_digest(dgst);
        expect(gmca_device_sign_digest(f->d, 7, dgst, sig, &siglen, &e), &e, GMCA_ERR_AUTH,
               "SDF_InternalSign_ECC(index 7): SDR_PARDENY", "sign locked");
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 7, u8(WRONG), strlen(WRONG), &e), &e, GMCA_ERR_AUTH,
               "device: SDF_GetPrivateKeyAccessRight(index 7): SDR_PARDENY: wrong key password",
               "unlock with a wrong password");
        gmca_error_clear(&e);
        expect(gmca_device_sign_digest(f->d, 7, dgst, sig, &siglen, &e), &e, GMCA_ERR_AUTH,
               "SDR_PARDENY", "sign after a failed unlock");
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 7, u8(PIN), strlen(PIN), &e), &e, 0, NULL, "unlock");
        sign_and_check(f->d, 7, pub);
        /* Unlocking again is fine; a wrong password then keeps the right. */
        expect(gmca_device_unlock(f->d, 7, u8(PIN), strlen(PIN), &e), &e, 0, NULL, "unlock again");
        expect(gmca_device_unlock(f->d, 7, u8(WRONG), strlen(WRONG), &e), &e, GMCA_ERR_AUTH,
               "SDR_PARDENY", "unlock with a wrong password");
        gmca_error_clear(&e);
        sign_and_check(f->d, 7, pub);

        /* Another key's signature does not verify. */
        expect(gmca_device_sign_digest(f->d, 7, dgst, sig, &siglen, &e), &e, 0, NULL, "sign");
        assert_non_null(other = gmca_sm2_keygen(&e));
        expect(gmca_device_verify_digest(f->d, other, dgst, sig, siglen, &e), &e, GMCA_ERR_VERIFY,
               NULL, "verify with another key");
        gmca_error_clear(&e);
        sig[siglen - 1] ^= 1;
        expect(gmca_device_verify_digest(f->d, pub, dgst, sig, siglen, &e), &e, GMCA_ERR_VERIFY,
               NULL, "verify a changed signature");
        gmca_error_clear(&e);
        expect(gmca_device_verify_digest(f->d, pub, dgst, sig, siglen - 1, &e), &e, GMCA_ERR_VERIFY,
               NULL, "verify a truncated signature");

        /* Lock: signing stops. */
        gmca_error_clear(&e);
        gmca_device_lock(f->d, 7);
        expect(gmca_device_sign_digest(f->d, 7, dgst, sig, &siglen, &e), &e, GMCA_ERR_AUTH,
               "SDR_PARDENY", "sign after lock");
        EVP_PKEY_free(other);
        EVP_PKEY_free(pub);
}

static void test_signer(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_device_signer s;
        static const uint8_t tbs[] = "0\x82 pretend this is a TBSCertificate";
        static const char *ids[] = {NULL, "1234567812345678", "gmca@example.cn"};
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        EVP_PKEY *pub, *other;

        make_key(f->d, 3, PIN);
        assert_non_null(pub = gmca_device_public_key(f->d, 3, &e));
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
                expect(gmca_device_signer_init(&s, f->d, 3, pub, ids[i], &e), &e, 0, NULL,
                       "signer init");
                expect(s.base.sign(s.base.arg, tbs, sizeof(tbs), sig, &siglen, &e), &e, 0, NULL,
                       "signer sign");
                expect(gmca_sm2_verify(pub, ids[i], tbs, sizeof(tbs), sig, siglen, &e), &e, 0, NULL,
                       "gmca_sm2_verify");
                /* With another ID it does not verify. */
                expect(gmca_sm2_verify(pub, "another id", tbs, sizeof(tbs), sig, siglen, &e), &e,
                       GMCA_ERR_VERIFY, NULL, "verify with another ID");
                gmca_error_clear(&e);
        }
        /* A public key that is not the one at the index is refused up front. */
        assert_non_null(other = gmca_sm2_keygen(&e));
        expect(gmca_device_signer_init(&s, f->d, 3, other, NULL, &e), &e, GMCA_ERR_INVALID,
               "not the key at index 3", "signer with another key");
        gmca_error_clear(&e);
        expect(gmca_device_signer_init(&s, f->d, 4, pub, NULL, &e), &e, GMCA_ERR_NOTFOUND,
               "SDR_KEYNOTEXIST", "signer over an empty index");
        EVP_PKEY_free(other);
        EVP_PKEY_free(pub);
}

static void test_bad_indexes(void **state)
{
        struct fx *f = *state;
        static const unsigned bad[] = {0, GMCA_DEVICE_MAX_INDEX + 1, 0xFFFFFFFFu};
        struct gmca_error e = {0};
        uint8_t dgst[32] = {1}, sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        uint8_t *blob = NULL;
        size_t bloblen = 0;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                expect(gmca_device_generate_key(f->d, bad[i], u8(PIN), strlen(PIN), &e), &e,
                       GMCA_ERR_INVALID, "not in 1..1024", "generate");
                gmca_error_clear(&e);
                expect(gmca_device_unlock(f->d, bad[i], u8(PIN), strlen(PIN), &e), &e,
                       GMCA_ERR_INVALID, "not in 1..1024", "unlock");
                gmca_error_clear(&e);
                assert_null(gmca_device_public_key(f->d, bad[i], &e));
                assert_int_equal(e.code, GMCA_ERR_INVALID);
                gmca_error_clear(&e);
                expect(gmca_device_sign_digest(f->d, bad[i], dgst, sig, &siglen, &e), &e,
                       GMCA_ERR_INVALID, "not in 1..1024", "sign");
                gmca_error_clear(&e);
                expect(gmca_device_export_blob(f->d, bad[i], &blob, &bloblen, &e), &e,
                       GMCA_ERR_INVALID, "not in 1..1024", "export");
                gmca_error_clear(&e);
                gmca_device_lock(f->d, bad[i]); /* harmless */
        }
        /* The ends of the range are usable. */
        make_key(f->d, 1, PIN);
        make_key(f->d, GMCA_DEVICE_MAX_INDEX, PIN);
        /* Nothing at an index: NOTFOUND everywhere. */
        assert_null(gmca_device_public_key(f->d, 2, &e));
        assert_int_equal(e.code, GMCA_ERR_NOTFOUND);
        assert_non_null(strstr(e.msg, "SDF_ExportSignPublicKey_ECC(index 2): SDR_KEYNOTEXIST"));
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 2, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_NOTFOUND,
               "SDR_KEYNOTEXIST", "unlock nothing");
        gmca_error_clear(&e);
        expect(gmca_device_export_blob(f->d, 2, &blob, &bloblen, &e), &e, GMCA_ERR_NOTFOUND,
               "SDR_KEYNOTEXIST", "export nothing");
        gmca_error_clear(&e);
        expect(gmca_device_destroy_key(f->d, 2, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_NOTFOUND,
               "SDR_KEYNOTEXIST", "destroy nothing");
        /* Passwords: empty, too long; a new one under 8 bytes. */
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 1, u8(""), 0, &e), &e, GMCA_ERR_INVALID, "1..256",
               "empty password");
        gmca_error_clear(&e);
        {
                uint8_t long_pin[GMCA_DEVICE_PIN_MAX + 1];

                memset(long_pin, 'x', sizeof(long_pin));
                expect(gmca_device_unlock(f->d, 1, long_pin, sizeof(long_pin), &e), &e,
                       GMCA_ERR_INVALID, "1..256", "long password");
                gmca_error_clear(&e);
                expect(gmca_device_unlock(f->d, 1, long_pin, GMCA_DEVICE_PIN_MAX, &e), &e,
                       GMCA_ERR_AUTH, "SDR_PARDENY", "256-byte wrong password");
        }
        gmca_error_clear(&e);
        expect(gmca_device_generate_key(f->d, 5, u8("short"), 5, &e), &e, GMCA_ERR_INVALID,
               "SDR_INARGERR", "short new password");
}

static void test_change_pin(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        EVP_PKEY *pub, *pub2;

        make_key(f->d, 9, PIN);
        assert_non_null(pub = gmca_device_public_key(f->d, 9, &e));
        expect(
            gmca_device_change_pin(f->d, 9, u8(WRONG), strlen(WRONG), u8(PIN2), strlen(PIN2), &e),
            &e, GMCA_ERR_AUTH, "SDFX_ChangeKeyPIN(index 9): SDR_PARDENY: wrong key password",
            "change with a wrong old password");
        gmca_error_clear(&e);
        expect(gmca_device_change_pin(f->d, 9, u8(PIN), strlen(PIN), u8("short"), 5, &e), &e,
               GMCA_ERR_INVALID, "SDR_INARGERR", "change to a short password");
        gmca_error_clear(&e);
        expect(gmca_device_change_pin(f->d, 9, u8(PIN), strlen(PIN), u8(PIN2), strlen(PIN2), &e),
               &e, 0, NULL, "change");
        expect(gmca_device_unlock(f->d, 9, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_AUTH,
               "SDR_PARDENY", "old password");
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 9, u8(PIN2), strlen(PIN2), &e), &e, 0, NULL,
               "new password");
        assert_non_null(pub2 = gmca_device_public_key(f->d, 9, &e));
        assert_int_equal(EVP_PKEY_eq(pub, pub2), 1);
        sign_and_check(f->d, 9, pub);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(pub2);
}

static void test_destroy(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        uint8_t dgst[32] = {0}, sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        char path[256];
        EVP_PKEY *pub;

        make_key(f->d, 11, PIN);
        key_path(f->dir, 11, path, sizeof(path));
        expect(gmca_device_destroy_key(f->d, 11, u8(WRONG), strlen(WRONG), &e), &e, GMCA_ERR_AUTH,
               "SDFX_DestroyKeyPair_ECC(index 11): SDR_PARDENY", "destroy with a wrong password");
        assert_int_equal(access(path, F_OK), 0);
        gmca_error_clear(&e);
        expect(gmca_device_destroy_key(f->d, 11, u8(PIN), strlen(PIN), &e), &e, 0, NULL, "destroy");
        assert_int_not_equal(access(path, F_OK), 0);
        assert_null(pub = gmca_device_public_key(f->d, 11, &e));
        assert_int_equal(e.code, GMCA_ERR_NOTFOUND);
        gmca_error_clear(&e);
        /* The unlocked copy went with it. */
        expect(gmca_device_sign_digest(f->d, 11, dgst, sig, &siglen, &e), &e, GMCA_ERR_AUTH,
               "SDR_PARDENY", "sign with a destroyed key");
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 11, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_NOTFOUND,
               "SDR_KEYNOTEXIST", "unlock a destroyed key");
        gmca_error_clear(&e);
        /* The index can be used again, for a different key. */
        make_key(f->d, 11, PIN2);
        assert_non_null(pub = gmca_device_public_key(f->d, 11, &e));
        sign_and_check(f->d, 11, pub);
        EVP_PKEY_free(pub);
}

static void test_blob(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_device *d2;
        uint8_t *blob = NULL, junk[KEY_FILE_LEN];
        size_t len = 0;
        EVP_PKEY *pub, *pub2;
        uint8_t file[KEY_FILE_LEN];
        char path[256];

        make_key(f->d, 21, PIN);
        assert_non_null(pub = gmca_device_public_key(f->d, 21, &e));
        expect(gmca_device_export_blob(f->d, 21, &blob, &len, &e), &e, 0, NULL, "export");
        /* The blob is the sealed file, verbatim. */
        assert_int_equal(len, KEY_FILE_LEN);
        key_path(f->dir, 21, path, sizeof(path));
        read_bytes(path, file, sizeof(file));
        assert_memory_equal(blob, file, len);

        d2 = open_dev(f, f->dir2);
        expect(gmca_device_import_blob(d2, 22, blob, len, &e), &e, GMCA_ERR_INVALID,
               "SDFX_ImportKeyBlob(index 22): SDR_INARGERR", "import at another index");
        gmca_error_clear(&e);
        expect(gmca_device_import_blob(d2, 21, blob, len, &e), &e, 0, NULL, "import");
        expect(gmca_device_import_blob(d2, 21, blob, len, &e), &e, GMCA_ERR_EXISTS,
               "SDR_FILEEXSITS", "import at a taken index");
        gmca_error_clear(&e);
        expect(gmca_device_unlock(d2, 21, u8(WRONG), strlen(WRONG), &e), &e, GMCA_ERR_AUTH,
               "SDR_PARDENY", "unlock the import with a wrong password");
        gmca_error_clear(&e);
        expect(gmca_device_unlock(d2, 21, u8(PIN), strlen(PIN), &e), &e, 0, NULL,
               "unlock the import");
        assert_non_null(pub2 = gmca_device_public_key(d2, 21, &e));
        assert_int_equal(EVP_PKEY_eq(pub, pub2), 1);
        sign_and_check(d2, 21, pub);

        /* Damaged blobs. */
        memcpy(junk, blob, len);
        junk[0] ^= 0x20;
        expect(gmca_device_import_blob(d2, 23, junk, len, &e), &e, GMCA_ERR_TAMPER, "SDR_KEYERR",
               "import with a bad magic");
        gmca_error_clear(&e);
        expect(gmca_device_import_blob(d2, 23, blob, len - 1, &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "import a truncated blob");
        gmca_error_clear(&e);
        memset(junk, 0x5a, sizeof(junk));
        expect(gmca_device_import_blob(d2, 23, junk, sizeof(junk), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "import junk");
        gmca_error_clear(&e);
        expect(gmca_device_import_blob(d2, 23, NULL, 0, &e), &e, GMCA_ERR_INVALID, NULL,
               "import nothing");
        gmca_device_close(d2);
        free(blob);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(pub2);
}

/* Flip one bit of the key file of index at off. */
static void flip(const char *dir, unsigned index, size_t off)
{
        uint8_t buf[KEY_FILE_LEN];
        char path[256];

        key_path(dir, index, path, sizeof(path));
        read_bytes(path, buf, sizeof(buf));
        buf[off] ^= 0x01;
        write_bytes(path, buf, sizeof(buf));
}

static void test_tamper(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        uint8_t orig1[KEY_FILE_LEN], orig2[KEY_FILE_LEN], buf[KEY_FILE_LEN];
        char p1[256], p2[256];
        EVP_PKEY *pub;

        make_key(f->d, 1, PIN);
        make_key(f->d, 2, PIN);
        gmca_device_lock(f->d, 1);
        gmca_device_lock(f->d, 2);
        key_path(f->dir, 1, p1, sizeof(p1));
        key_path(f->dir, 2, p2, sizeof(p2));
        read_bytes(p1, orig1, sizeof(orig1));
        read_bytes(p2, orig2, sizeof(orig2));

        /* Ciphertext (offset 140..171) and tag (172..187): the right password fails. */
        for (size_t off = 140; off < KEY_FILE_LEN; off += 47) {
                flip(f->dir, 1, off);
                expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
                       "SDF_GetPrivateKeyAccessRight(index 1): SDR_KEYERR: key damaged or "
                       "tampered with",
                       "ciphertext flipped");
                gmca_error_clear(&e);
                write_bytes(p1, orig1, sizeof(orig1));
        }
        /* The public key: not on the curve any more. */
        flip(f->dir, 1, 24 + 63);
        assert_null(gmca_device_public_key(f->d, 1, &e));
        assert_int_equal(e.code, GMCA_ERR_TAMPER);
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "public key flipped");
        gmca_error_clear(&e);
        /* Another valid public key in its place: export cannot tell, unlock can (AAD). */
        memcpy(buf, orig1, sizeof(buf));
        memcpy(buf + 24, orig2 + 24, 64);
        write_bytes(p1, buf, sizeof(buf));
        expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "public key replaced");
        gmca_error_clear(&e);
        /* The index field (in AAD too), made to match the file name. */
        memcpy(buf, orig2, sizeof(buf));
        buf[15] = 1;
        write_bytes(p1, buf, sizeof(buf));
        expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "index rewritten");
        gmca_error_clear(&e);
        /* Files swapped between indexes. */
        write_bytes(p1, orig2, sizeof(orig2));
        write_bytes(p2, orig1, sizeof(orig1));
        assert_null(gmca_device_public_key(f->d, 1, &e));
        assert_int_equal(e.code, GMCA_ERR_TAMPER);
        gmca_error_clear(&e);
        expect(gmca_device_unlock(f->d, 2, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "swapped files");
        gmca_error_clear(&e);
        /* Truncated, and an iteration count over the cap. */
        write_bytes(p1, orig1, sizeof(orig1) - 1);
        expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "truncated");
        gmca_error_clear(&e);
        memcpy(buf, orig1, sizeof(buf));
        buf[92] = 0x7f;
        write_bytes(p1, buf, sizeof(buf));
        expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, GMCA_ERR_TAMPER,
               "SDR_KEYERR", "iterations over the cap");
        gmca_error_clear(&e);
        /* Put back: all is well again. */
        write_bytes(p1, orig1, sizeof(orig1));
        write_bytes(p2, orig2, sizeof(orig2));
        expect(gmca_device_unlock(f->d, 1, u8(PIN), strlen(PIN), &e), &e, 0, NULL, "restored");
        assert_non_null(pub = gmca_device_public_key(f->d, 1, &e));
        sign_and_check(f->d, 1, pub);
        EVP_PKEY_free(pub);
}

static void test_random(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        static uint8_t big[(5u << 20) / 2];
        uint8_t a[64] = {0}, b[64] = {0}, zero[64] = {0};

        expect(gmca_device_random(f->d, a, sizeof(a), &e), &e, 0, NULL, "random");
        expect(gmca_device_random(f->d, b, sizeof(b), &e), &e, 0, NULL, "random");
        assert_memory_not_equal(a, zero, sizeof(a));
        assert_memory_not_equal(a, b, sizeof(a));
        expect(gmca_device_random(f->d, a, 0, &e), &e, 0, NULL, "no random");
        /* More than one SDF_GenerateRandom call's worth; the tail is filled. */
        memset(big, 0, sizeof(big));
        expect(gmca_device_random(f->d, big, sizeof(big), &e), &e, 0, NULL, "random 2.5 MiB");
        assert_memory_not_equal(big + sizeof(big) - 64, zero, 64);
}

static void test_sm3(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        static const char *ids[] = {NULL, "1234567812345678", "ALICE123@YAHOO.COM"};
        static uint8_t msg[(3u << 20) / 2];
        const size_t lens[] = {0, 3, sizeof(msg)};
        uint8_t got[32], want[32], z[32];
        EVP_PKEY *pub;
        EVP_MD_CTX *c;

        for (size_t i = 0; i < sizeof(msg); i++)
                msg[i] = (uint8_t)(i * 7 + 1);
        make_key(f->d, 5, PIN);
        assert_non_null(pub = gmca_device_public_key(f->d, 5, &e));
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                expect(gmca_device_sm3(f->d, NULL, NULL, msg, lens[i], got, &e), &e, 0, NULL,
                       "sm3");
                assert_int_equal(gmca_sm3(msg, lens[i], want), 0);
                assert_memory_equal(got, want, 32);
                for (size_t j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
                        expect(gmca_device_sm3(f->d, pub, ids[j], msg, lens[i], got, &e), &e, 0,
                               NULL, "sm3 with Z");
                        expect(gmca_sm2_z(pub, ids[j], z, &e), &e, 0, NULL, "Z");
                        assert_non_null(c = gmca_sm3_new());
                        assert_int_equal(gmca_sm3_update(c, z, sizeof(z)), 0);
                        assert_int_equal(gmca_sm3_update(c, msg, lens[i]), 0);
                        assert_int_equal(gmca_sm3_final(c, want), 0);
                        assert_memory_equal(got, want, 32);
                }
        }
        /* GM/T 0004 example 1: SM3("abc"). */
        expect(gmca_device_sm3(f->d, NULL, NULL, u8("abc"), 3, got, &e), &e, 0, NULL, "abc");
        assert_int_equal(got[0], 0x66);
        assert_int_equal(got[31], 0xe0);
        EVP_PKEY_free(pub);
}

static void test_info(void **state)
{
        struct fx *f = *state;
        const char *desc = gmca_device_description(f->d);
        struct gmca_device *again;

        assert_int_equal(strncmp(desc, "gmca softsdf ", 13), 0);
        assert_int_equal(strlen(desc), 13 + 16);
        assert_true(gmca_device_has(f->d, "SDFX_GenerateKeyPair_ECC"));
        assert_true(gmca_device_has(f->d, "SDFX_ImportKeyBlob"));
        assert_true(gmca_device_has(f->d, "SDF_HashInit"));
        assert_false(gmca_device_has(f->d, "SDFX_NoSuchThing"));
        assert_false(gmca_device_has(f->d, NULL));
        /* The serial belongs to the store: the same when opened again. */
        again = open_dev(f, f->dir);
        assert_string_equal(gmca_device_description(again), desc);
        gmca_device_close(again);
        again = open_dev(f, f->dir2);
        assert_string_not_equal(gmca_device_description(again), desc);
        gmca_device_close(again);
}

/* A store written by one build of the device is read by the other. */
static void test_cross(void **state)
{
        struct fx *f = *state;
        const struct backend *other_b = f->b->shared ? &builtin : &shared;
        struct fx other = *f;
        struct gmca_error e = {0};
        struct gmca_device *d2;
        EVP_PKEY *pub;

        make_key(f->d, 30, PIN);
        other.b = other_b;
        d2 = open_dev(&other, f->dir);
        expect(gmca_device_unlock(d2, 30, u8(PIN), strlen(PIN), &e), &e, 0, NULL,
               "unlock in the other build");
        assert_non_null(pub = gmca_device_public_key(f->d, 30, &e));
        sign_and_check(d2, 30, pub);
        gmca_device_close(d2);
        EVP_PKEY_free(pub);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
        for (size_t i = 0; i + m <= n; i++) {
                if (memcmp(hay + i, needle, m) == 0)
                        return 1;
        }
        return 0;
}

/* Every file under dir (recursively) lacks the scalar, raw and in hex. */
static void scan(const char *dir, const uint8_t scalar[32], int *files)
{
        static const char *digits[] = {"0123456789abcdef", "0123456789ABCDEF"};
        char hex[2][65];
        DIR *d;
        struct dirent *de;

        for (int k = 0; k < 2; k++) {
                for (int i = 0; i < 32; i++) {
                        hex[k][2 * i] = digits[k][scalar[i] >> 4];
                        hex[k][2 * i + 1] = digits[k][scalar[i] & 15];
                }
                hex[k][64] = '\0';
        }
        assert_non_null(d = opendir(dir));
        while ((de = readdir(d)) != NULL) {
                char path[512];
                struct stat st;
                static uint8_t buf[1u << 16];
                size_t n;
                FILE *fp;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                assert_int_equal(lstat(path, &st), 0);
                if (S_ISDIR(st.st_mode)) {
                        scan(path, scalar, files);
                        continue;
                }
                assert_non_null(fp = fopen(path, "rb"));
                n = fread(buf, 1, sizeof(buf), fp);
                fclose(fp);
                if (contains(buf, n, scalar, 32) || contains(buf, n, u8(hex[0]), 64) ||
                    contains(buf, n, u8(hex[1]), 64))
                        fail_msg("%s holds the private scalar", path);
                (*files)++;
        }
        closedir(d);
}

static void test_no_scalar_in_store(void **state)
{
        struct fx *f = *state;
        const struct gmca_sdf_api *api = gmca_softsdf_api();
        void *hdev = NULL, *hs = NULL;
        uint8_t scalar[32], zero[32] = {0}, e32[32] = {9};
        ECCSignature sig;
        unsigned n = 0;
        int files = 0;

        assert_int_equal(api->X_Configure(f->dir2), SDR_OK);
        assert_int_equal(api->OpenDevice(&hdev), SDR_OK);
        /* Unlocked keys go to OpenSSL's secure heap, which the device set up. */
        assert_int_equal(CRYPTO_secure_malloc_initialized(), 1);
        assert_int_equal(api->OpenSession(hdev, &hs), SDR_OK);
        for (unsigned i = 1; i <= 3; i++)
                assert_int_equal(
                    api->X_GenerateKeyPair_ECC(hs, i, (unsigned char *)PIN, strlen(PIN)), SDR_OK);
        assert_int_equal(api->X_ChangeKeyPIN(hs, 2, (unsigned char *)PIN, strlen(PIN),
                                             (unsigned char *)PIN2, strlen(PIN2)),
                         SDR_OK);
        assert_int_equal(api->X_ExportKeyBlob(hs, 3, NULL, &n), SDR_OK);
        assert_int_equal(n, KEY_FILE_LEN);
        for (unsigned i = 1; i <= 3; i++) {
                const char *pin = i == 2 ? PIN2 : PIN;

                assert_int_equal(gmca_softsdf_debug_scalar(hs, i, scalar), SDR_PARDENY);
                assert_int_equal(
                    api->GetPrivateKeyAccessRight(hs, i, (unsigned char *)pin, strlen(pin)),
                    SDR_OK);
                assert_int_equal(api->InternalSign_ECC(hs, i, e32, 32, &sig), SDR_OK);
                assert_int_equal(gmca_softsdf_debug_scalar(hs, i, scalar), SDR_OK);
                assert_memory_not_equal(scalar, zero, 32);
                files = 0;
                scan(f->base, scalar, &files);
                assert_true(files >= 4); /* three keys and the serial */
        }
        /* Release wipes the session's copy. */
        assert_int_equal(api->ReleasePrivateKeyAccessRight(hs, 1), SDR_OK);
        assert_int_equal(gmca_softsdf_debug_scalar(hs, 1, scalar), SDR_PARDENY);
        assert_int_equal(api->CloseSession(hs), SDR_OK);
        assert_int_equal(api->CloseDevice(hdev), SDR_OK);
}

/* The raw SDF calls of the built-in device: handles, arguments, order. */
static void test_sdf_arguments(void **state)
{
        struct fx *f = *state;
        const struct gmca_sdf_api *api = gmca_softsdf_api();
        void *hdev = NULL, *hs = NULL, *hs2 = NULL;
        uint8_t blob[KEY_FILE_LEN + 8], h[32], e32[32] = {1};
        ECCrefPublicKey pub, bad;
        ECCSignature sig;
        DEVICEINFO info;
        unsigned n = 0;
        unsigned char *pin = (unsigned char *)PIN;

        assert_int_equal(api->X_Configure(f->dir2), SDR_OK);
        assert_int_equal(api->OpenDevice(NULL), SDR_INARGERR);
        assert_int_equal(api->OpenDevice(&hdev), SDR_OK);
        assert_int_equal(api->OpenSession(NULL, &hs), SDR_INARGERR);
        assert_int_equal(api->OpenSession(hdev, NULL), SDR_INARGERR);
        assert_int_equal(api->OpenSession(hdev, &hs), SDR_OK);
        assert_int_equal(api->OpenSession(hdev, &hs2), SDR_OK);
        /* A device handle is not a session, nor the reverse. */
        assert_int_equal(api->GetDeviceInfo(hdev, &info), SDR_INARGERR);
        assert_int_equal(api->OpenSession(hs, &hs2), SDR_INARGERR);
        assert_int_equal(api->CloseDevice(hs), SDR_INARGERR);
        assert_int_equal(api->CloseSession(NULL), SDR_INARGERR);
        assert_int_equal(api->GetDeviceInfo(hs, NULL), SDR_INARGERR);
        assert_int_equal(api->GetDeviceInfo(hs, &info), SDR_OK);
        assert_memory_equal(info.IssuerName, "gmca\0", 5);
        assert_memory_equal(info.DeviceName, "softsdf\0", 8);
        assert_int_equal(info.AsymAlgAbility[0], SGD_SM2_1);
        assert_int_equal(info.HashAlgAbility, SGD_SM3);
        assert_int_equal(api->GenerateRandom(NULL, 4, h), SDR_INARGERR);
        assert_int_equal(api->GenerateRandom(hs, 4, NULL), SDR_INARGERR);

        /* Indexes and passwords. */
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 0, pin, strlen(PIN)), SDR_INARGERR);
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 1025, pin, strlen(PIN)), SDR_INARGERR);
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 1, NULL, 8), SDR_INARGERR);
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 1, pin, 7), SDR_INARGERR);
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 1, pin, 257), SDR_INARGERR);
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 1, pin, strlen(PIN)), SDR_OK);
        assert_int_equal(api->X_GenerateKeyPair_ECC(hs, 1, pin, strlen(PIN)), SDR_FILEEXSITS);
        assert_int_equal(api->GetPrivateKeyAccessRight(hs, 0, pin, strlen(PIN)), SDR_INARGERR);
        assert_int_equal(api->GetPrivateKeyAccessRight(hs, 1, pin, 0), SDR_INARGERR);
        assert_int_equal(api->GetPrivateKeyAccessRight(hs, 2, pin, strlen(PIN)), SDR_KEYNOTEXIST);
        assert_int_equal(api->ReleasePrivateKeyAccessRight(hs, 1025), SDR_INARGERR);
        assert_int_equal(api->ReleasePrivateKeyAccessRight(hs, 1), SDR_OK); /* not held: fine */
        assert_int_equal(api->ExportSignPublicKey_ECC(hs, 1, NULL), SDR_INARGERR);
        assert_int_equal(api->ExportSignPublicKey_ECC(hs, 1, &pub), SDR_OK);
        assert_int_equal(pub.bits, 256);

        /* Rights are per session. */
        assert_int_equal(api->GetPrivateKeyAccessRight(hs, 1, pin, strlen(PIN)), SDR_OK);
        assert_int_equal(api->InternalSign_ECC(hs, 1, e32, 32, &sig), SDR_OK);
        assert_int_equal(api->InternalSign_ECC(hs2, 1, e32, 32, &sig), SDR_PARDENY);
        assert_int_equal(api->InternalSign_ECC(hs, 1, e32, 31, &sig), SDR_INARGERR);
        assert_int_equal(api->InternalSign_ECC(hs, 1, NULL, 32, &sig), SDR_INARGERR);
        assert_int_equal(api->InternalSign_ECC(hs, 1, e32, 32, NULL), SDR_INARGERR);
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM2_1, &pub, e32, 32, &sig), SDR_OK);
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM3_SM2, &pub, e32, 32, &sig),
                         SDR_ALGNOTSUPPORT);
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM2_1, &pub, e32, 16, &sig),
                         SDR_INARGERR);
        bad = pub;
        bad.bits = 512;
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM2_1, &bad, e32, 32, &sig),
                         SDR_INARGERR);
        bad = pub;
        bad.x[0] = 1; /* not right-aligned */
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM2_1, &bad, e32, 32, &sig),
                         SDR_INARGERR);
        bad = pub;
        bad.y[63] ^= 1; /* off the curve */
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM2_1, &bad, e32, 32, &sig),
                         SDR_INARGERR);
        sig.r[0] = 1; /* r over 256 bits */
        assert_int_equal(api->ExternalVerify_ECC(hs2, SGD_SM2_1, &pub, e32, 32, &sig),
                         SDR_VERIFYERR);

        /* Hash: order and arguments. */
        assert_int_equal(api->HashUpdate(hs, e32, 32), SDR_STEPERR);
        assert_int_equal(api->HashFinal(hs, h, &n), SDR_STEPERR);
        assert_int_equal(api->HashInit(hs, SGD_SM4_ECB, NULL, NULL, 0), SDR_ALGNOTSUPPORT);
        assert_int_equal(api->HashInit(hs, SGD_SM3, &pub, NULL, 0), SDR_INARGERR);
        assert_int_equal(api->HashInit(hs, SGD_SM3, &pub, (unsigned char *)"a\0b", 3),
                         SDR_INARGERR);
        assert_int_equal(api->HashInit(hs, SGD_SM3, &pub, (unsigned char *)"x", 65), SDR_INARGERR);
        assert_int_equal(api->HashInit(hs, SGD_SM3, NULL, NULL, 0), SDR_OK);
        assert_int_equal(api->HashUpdate(hs, NULL, 1), SDR_INARGERR);
        assert_int_equal(api->HashUpdate(hs, NULL, 0), SDR_OK);
        assert_int_equal(api->HashFinal(hs, h, NULL), SDR_INARGERR);
        assert_int_equal(api->HashFinal(hs, h, &n), SDR_OK);
        assert_int_equal(n, 32);
        assert_int_equal(api->HashFinal(hs, h, &n), SDR_STEPERR);

        /* Blob length query and a short buffer. */
        assert_int_equal(api->X_ExportKeyBlob(hs, 1, NULL, NULL), SDR_INARGERR);
        n = 0;
        assert_int_equal(api->X_ExportKeyBlob(hs, 1, NULL, &n), SDR_OK);
        assert_int_equal(n, KEY_FILE_LEN);
        n = KEY_FILE_LEN - 1;
        assert_int_equal(api->X_ExportKeyBlob(hs, 1, blob, &n), SDR_NOBUFFER);
        assert_int_equal(n, KEY_FILE_LEN);
        n = sizeof(blob);
        assert_int_equal(api->X_ExportKeyBlob(hs, 1, blob, &n), SDR_OK);
        assert_int_equal(n, KEY_FILE_LEN);
        assert_int_equal(gmca_softsdf_blob_check(blob, n, &n), SDR_OK);
        assert_int_equal(n, 1);
        assert_int_equal(api->X_ImportKeyBlob(hs, 1, NULL, 0), SDR_INARGERR);
        assert_int_equal(api->X_ImportKeyBlob(hs, 1, blob, KEY_FILE_LEN), SDR_FILEEXSITS);
        assert_int_equal(api->X_ChangeKeyPIN(hs, 1, pin, strlen(PIN), pin, 3), SDR_INARGERR);
        assert_int_equal(api->X_DestroyKeyPair_ECC(hs, 1, (unsigned char *)WRONG, strlen(WRONG)),
                         SDR_PARDENY);

        /* Destroy drops the right in every session; closing the device closes hs2. */
        assert_int_equal(api->GetPrivateKeyAccessRight(hs2, 1, pin, strlen(PIN)), SDR_OK);
        assert_int_equal(api->X_DestroyKeyPair_ECC(hs, 1, pin, strlen(PIN)), SDR_OK);
        assert_int_equal(api->InternalSign_ECC(hs, 1, e32, 32, &sig), SDR_PARDENY);
        assert_int_equal(api->InternalSign_ECC(hs2, 1, e32, 32, &sig), SDR_PARDENY);
        assert_int_equal(api->CloseSession(hs), SDR_OK);
        assert_int_equal(api->CloseDevice(hdev), SDR_OK);
        assert_int_equal(api->X_Configure(NULL), SDR_OK);
}

/* Loading libraries: a missing file, a library that is not an SDF device, a bad store. */
static void test_open_errors(void **state)
{
        struct fx *f = *state;
        struct gmca_device_conf conf = {"/nonexistent/libsdf.so", f->dir2};
        struct gmca_error e = {0};
        char notdir[256];

        assert_null(gmca_device_open(&conf, &e));
        assert_int_equal(e.code, GMCA_ERR_IO);
        assert_non_null(strstr(e.msg, "cannot load SDF library /nonexistent/libsdf.so"));
        gmca_error_clear(&e);
        conf.library = "libcrypto.so.3";
        assert_null(gmca_device_open(&conf, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        assert_non_null(strstr(e.msg, "lacks SDF_OpenDevice"));
        gmca_error_clear(&e);
        assert_null(gmca_device_open(NULL, &e));
        assert_int_equal(e.code, GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        /* A key store under a regular file cannot be made. */
        snprintf(notdir, sizeof(notdir), "%s/file", f->base);
        write_bytes(notdir, u8("x"), 1);
        snprintf(notdir, sizeof(notdir), "%s/file/store", f->base);
        conf.library = f->b->shared ? getenv("GMCA_SOFTSDF_LIB") : NULL;
        conf.config = notdir;
        assert_null(gmca_device_open(&conf, &e));
        assert_int_equal(e.code, GMCA_ERR_IO);
        assert_non_null(strstr(e.msg, "SDF_OpenDevice: SDR_OPENDEVICE"));
        gmca_device_close(NULL);
}

#define ONE(fn, b)                                                                                 \
        {                                                                                          \
#fn "/" #b, fn, setup, teardown, (void *)&b                                        \
        }
#define BOTH(fn) ONE(fn, builtin), ONE(fn, shared)

int main(void)
{
        const struct CMUnitTest tests[] = {
            BOTH(test_generate_unlock_sign),
            BOTH(test_signer),
            BOTH(test_bad_indexes),
            BOTH(test_change_pin),
            BOTH(test_destroy),
            BOTH(test_blob),
            BOTH(test_tamper),
            BOTH(test_random),
            BOTH(test_sm3),
            BOTH(test_info),
            BOTH(test_cross),
            BOTH(test_open_errors),
            ONE(test_no_scalar_in_store, builtin),
            ONE(test_sdf_arguments, builtin),
        };

        unsetenv("GMCA_SOFTSDF_DIR");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
