/*
 * Fuzz target for gmca_auth_proof_decode: the proofs of operators' signed
 * requests that the RA stores with each workflow step and the CA engine
 * reads back before it signs. A proof that decodes must encode again to
 * the same bytes (one encoding per proof) and parse to the fields its
 * signature base names.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_auth_proof p;
        struct gmca_error e;
        uint8_t *again = NULL;
        size_t len = 0;

        gmca_error_clear(&e);
        if (gmca_auth_proof_decode(data, size, &p, &e) != 0)
                return 0;
        if (gmca_auth_proof_encode(p.base, p.sig, p.sig_len, p.body, p.body_len, &again, &len,
                                   &e) != 0 ||
            len != size || memcmp(again, data, size) != 0)
                abort();
        if (p.method[0] == '\0' || p.target[0] != '/' || strlen(p.fpr) != GMCA_AUTH_FPR_LEN ||
            strstr(p.base, p.target) == NULL)
                abort();
        OPENSSL_free(again);
        return 0;
}
