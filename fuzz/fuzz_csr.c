/*
 * Fuzz target for gmca_csr_parse and gmca_cert_parse: the bytes a
 * subscriber or an importer hands the CA. Both parsers see every input;
 * whatever they return must be freed without leaks.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        X509_REQ *req;
        X509 *cert;
        char dn[GMCA_DN_MAX * 4];

        gmca_error_clear(&e);
        req = gmca_csr_parse(data, size, NULL, &e);
        if (req != NULL && gmca_dn_format(X509_REQ_get_subject_name(req), dn, sizeof(dn), &e) != 0)
                gmca_error_clear(&e);
        X509_REQ_free(req);
        gmca_error_clear(&e);
        cert = gmca_cert_parse(data, size, &e);
        X509_free(cert);
        return 0;
}
