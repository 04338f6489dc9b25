/*
 * Keys and certificates that `gmca app` commands read from files: an SM2
 * private key as `openssl genpkey` writes it (PEM: PKCS#8, plain or
 * encrypted, or SEC1), its passphrase only from --pass-file (never a
 * prompt, never an argument), and a certificate in PEM or DER.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli.h"
#include "crypto.h"
#include "util.h"
#include "x509.h"

#define KEY_FILE_MAX (64u << 10)

struct pass {
        const char *p;
        size_t len;
};

/* The passphrase for an encrypted key; without --pass-file, refuse (never prompt). */
static int pem_pass(char *buf, int size, int rwflag, void *u)
{
        const struct pass *pw = u;

        (void)rwflag;
        if (pw == NULL || pw->p == NULL || size < 0 || pw->len > (size_t)size)
                return -1;
        memcpy(buf, pw->p, pw->len);
        return (int)pw->len;
}

/* An SM2 private key from a PEM file; caller frees with EVP_PKEY_free. */
EVP_PKEY *cli_load_key(const char *path, const char *pass_file, struct gmca_error *e)
{
        struct pass pw = {0};
        char *pass = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        BIO *bio = NULL;
        EVP_PKEY *key = NULL;

        if (pass_file != NULL) {
                if (cli_secret(pass_file, NULL, "key passphrase", 0, &pass, &pw.len, e) != 0)
                        return NULL;
                pw.p = pass;
        }
        if (gmca_read_file(path, KEY_FILE_MAX, &buf, &len, e) != 0)
                goto out;
        if (len > INT_MAX || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: cannot read", path);
                goto out;
        }
        if ((key = PEM_read_bio_PrivateKey_ex(bio, NULL, pem_pass, &pw, NULL, NULL)) == NULL) {
                gmca_ossl_clear();
                gmca_error_set(e, pass_file != NULL ? GMCA_ERR_AUTH : GMCA_ERR_INVALID,
                               "%s: not a PEM private key%s", path,
                               pass_file != NULL ? ", or wrong passphrase"
                                                 : " (an encrypted key needs --pass-file)");
                goto out;
        }
        if (gmca_sm2_is_sm2(key, e) != 0) {
                EVP_PKEY_free(key);
                key = NULL;
        }
out:
        BIO_free(bio);
        if (buf != NULL)
                OPENSSL_cleanse(buf, len);
        free(buf);
        cli_pass_free(pass, pw.len);
        return key;
}

X509 *cli_load_cert(const char *path, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        X509 *x = NULL;

        if (gmca_read_file(path, GMCA_CERT_MAX, &buf, &len, e) == 0)
                x = gmca_cert_parse(buf, len, e);
        free(buf);
        return x;
}
