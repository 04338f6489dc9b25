/*
 * Fuzz target for the CA-KM messages (kmproto.h): the same bytes go to
 * gmca_km_msg_parse as a CARequest (what the KM reads) and as a KMRespond
 * (what the CA engine reads); whatever parses is verified against a fixed
 * certificate, so every check before and inside the signature check runs.
 * A parse must leave the message clear on failure.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "crypto.h"
#include "kmproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *cert;

static void init(void)
{
        EVP_PKEY *key = gmca_sm2_keygen(NULL);
        X509_NAME *n = X509_NAME_new();
        EVP_MD_CTX *md;

        if (key == NULL || n == NULL || (cert = X509_new()) == NULL ||
            !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"fuzz", -1,
                                        -1, 0) ||
            !ASN1_INTEGER_set(X509_get_serialNumber(cert), 0x42) ||
            !X509_set_subject_name(cert, n) || !X509_set_issuer_name(cert, n) ||
            !X509_set_pubkey(cert, key) || (md = gmca_sm2_sign_ctx(key, NULL, NULL)) == NULL)
                abort();
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
        if (X509_sign_ctx(cert, md) <= 0)
                abort();
        EVP_MD_CTX_free(md);
        X509_NAME_free(n);
        EVP_PKEY_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e = {0};
        struct gmca_km_msg m;

        if (cert == NULL)
                init();
        for (int response = 0; response < 2; response++) {
                if (gmca_km_msg_parse(data, size, response, &m, &e) == 0) {
                        if (m.n == 0 || m.n > GMCA_KM_ITEMS_MAX || m.tbs == NULL)
                                abort();
                        (void)!gmca_km_msg_verify(&m, cert, &e);
                } else if (m.n != 0 || m.tbs != NULL || m.sig != NULL) {
                        abort();
                }
                gmca_km_msg_clear(&m);
                gmca_error_clear(&e);
        }
        return 0;
}
