/*
 * Fuzz target for gmca_dn_parse, and for gmca_dn_format on what it
 * accepts: a formatted DN must parse again to an equal name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        X509_NAME *name, *again = NULL;
        char *s = malloc(size + 1);
        char out[GMCA_DN_MAX * 4];

        if (s == NULL)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        gmca_error_clear(&e);
        name = gmca_dn_parse(s, &e);
        if (name != NULL && gmca_dn_format(name, out, sizeof(out), &e) == 0) {
                /* The round trip is the contract: a failure here is a bug. */
                if (strlen(out) <= GMCA_DN_MAX &&
                    ((again = gmca_dn_parse(out, &e)) == NULL || X509_NAME_cmp(name, again) != 0))
                        abort();
        }
        X509_NAME_free(again);
        X509_NAME_free(name);
        free(s);
        return 0;
}
