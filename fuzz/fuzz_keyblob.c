/*
 * Fuzz target for the software device's key blob parser: the key store
 * files and what SDFX_ImportKeyBlob takes from an operator's backup are
 * read by gmca_softsdf_blob_check before anything is decrypted. A blob it
 * accepts must name an index in 1..1024.
 */
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "sdf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        unsigned int index = 0;

        if (gmca_softsdf_blob_check(data, size, &index) == SDR_OK && (index < 1 || index > 1024))
                __builtin_trap();
        gmca_ossl_clear();
        return 0;
}
