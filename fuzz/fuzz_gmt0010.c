/*
 * Fuzz target for the GM/T 0010 readers: the same bytes go to
 * gmca_gmt0010_verify (as a message, and as a detached message with the
 * bytes as content), to gmca_gmt0010_decrypt and
 * gmca_gmt0010_decrypt_verify with a fixed recipient, to gmca_gmt0010_kind,
 * and to both SM2Cipher form converters, so every parser and check before a
 * signature or key operation is reached.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "crypto.h"
#include "gmt0010.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed recipient: the key and a self-signed certificate made once. */
static X509 *cert;
static EVP_PKEY *key;

static void init(void)
{
        struct gmca_cert_template t = {0};
        X509_NAME *n;
        uint8_t *der = NULL;
        X509 *built;
        int len;

        if ((key = gmca_sm2_keygen(NULL)) == NULL || (n = X509_NAME_new()) == NULL ||
            !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"fuzz", -1,
                                        -1, 0))
                return;
        t.subject = n;
        t.pubkey = key;
        t.issuer_key = key;
        t.serial[0] = 0x42;
        t.not_before = 0;
        t.not_after = 86400;
        t.path_len = -1;
        if ((built = gmca_cert_build(&t, NULL)) != NULL && (len = i2d_X509(built, &der)) > 0)
                cert = gmca_cert_parse(der, (size_t)len, NULL);
        OPENSSL_free(der);
        X509_free(built);
        X509_NAME_free(n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_gmt0010_signer s = {0};
        struct gmca_error e;
        uint8_t *out = NULL;
        size_t outlen = 0;

        if (key == NULL)
                init();
        gmca_error_clear(&e);
        if (gmca_gmt0010_verify(data, size, NULL, 0, NULL, NULL, &out, &outlen, &s, &e) == 0)
                OPENSSL_free(out);
        gmca_gmt0010_signer_clear(&s);
        gmca_error_clear(&e);
        if (gmca_gmt0010_verify(data, size, data, size, NULL, NULL, NULL, NULL, &s, &e) == 0)
                gmca_gmt0010_signer_clear(&s);
        gmca_error_clear(&e);
        out = NULL;
        if (cert != NULL && gmca_gmt0010_decrypt(data, size, cert, key, &out, &outlen, &e) == 0)
                OPENSSL_clear_free(out, outlen);
        gmca_error_clear(&e);
        out = NULL;
        if (cert != NULL && gmca_gmt0010_decrypt_verify(data, size, cert, key, NULL, NULL, &out,
                                                        &outlen, &s, &e) == 0) {
                OPENSSL_clear_free(out, outlen);
                gmca_gmt0010_signer_clear(&s);
        }
        gmca_error_clear(&e);
        if (gmca_gmt0010_kind(data, size, &e) < 0)
                gmca_error_clear(&e);
        gmca_error_clear(&e);
        if (gmca_sm2cipher_to_c1c3c2(data, size, &out, &outlen, &e) == 0)
                OPENSSL_free(out);
        gmca_error_clear(&e);
        if (gmca_sm2cipher_from_c1c3c2(data, size, &out, &outlen, &e) == 0)
                OPENSSL_free(out);
        return 0;
}
