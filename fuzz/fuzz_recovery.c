/*
 * Fuzz target for the body of POST /api/v1/recoveries (ra_recovery.c,
 * CPS §3.10): the strict parser of kind, encryption serial, recipient
 * (a serial, or an SM2 public key in PEM) and the judicial fields, as it
 * came from the network.
 */
#include <stddef.h>
#include <stdint.h>

#include "ra_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ra_recovery_body b;
        struct gmca_error e;

        gmca_error_clear(&e);
        if (ra_recovery_parse(data, size, &b, &e) == 0)
                ra_recovery_body_clear(&b);
        return 0;
}
