/*
 * Fuzz target for gmca_crl_parse: CRLs fetched from other CAs or handed in
 * by relying parties (DER or one PEM block). When a CRL parses, its
 * signature is checked with a fixed SM2 key made once, so the TBS
 * re-encoding and the algorithm checks of gmca_crl_verify run too; the
 * result is ignored (it will not verify).
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "crl.h"
#include "crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static EVP_PKEY *key;
        struct gmca_error e;
        X509_CRL *crl;

        gmca_error_clear(&e);
        if (key == NULL && (key = gmca_sm2_keygen(&e)) == NULL)
                return 0;
        crl = gmca_crl_parse(data, size, &e);
        if (crl != NULL) {
                gmca_error_clear(&e);
                (void)!gmca_crl_verify(crl, key, NULL, &e);
                X509_CRL_free(crl);
        }
        gmca_ossl_clear();
        return 0;
}
