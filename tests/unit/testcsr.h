/*
 * Test CSRs for the unit tests that drive a CA. Include after <cmocka.h>.
 */
#ifndef GMCA_TESTCSR_H
#define GMCA_TESTCSR_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto.h"

/*
 * A DER CSR for "C=CN[, O=o][, OU=ou], CN=cn" signed with key (the default
 * SM2 ID); caller frees with OPENSSL_free.
 */
static inline uint8_t *test_csr_key(EVP_PKEY *key, const char *o, const char *ou, const char *cn,
                                    size_t *len)
{
        struct gmca_error e = {0};
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = X509_NAME_new();
        EVP_MD_CTX *mctx;
        unsigned char *der = NULL;
        int n;

        X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1, -1, 0);
        if (o != NULL)
                X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)o, -1,
                                           -1, 0);
        if (ou != NULL)
                X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)ou, -1,
                                           -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
        X509_REQ_set_subject_name(req, name);
        X509_REQ_set_pubkey(req, key);
        mctx = gmca_sm2_sign_ctx(key, NULL, &e);
        assert_non_null(mctx);
        assert_true(X509_REQ_sign_ctx(req, mctx) > 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > 0);
        *len = (size_t)n;
        EVP_MD_CTX_free(mctx);
        X509_NAME_free(name);
        X509_REQ_free(req);
        return der;
}

/* A DER CSR for "C=CN, CN=cn" with a fresh SM2 key; caller frees. */
static inline uint8_t *test_csr(const char *cn, size_t *len)
{
        struct gmca_error e = {0};
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        uint8_t *der;

        assert_non_null(key);
        der = test_csr_key(key, NULL, NULL, cn, len);
        EVP_PKEY_free(key);
        return der;
}

#endif
