/*
 * Fuzz target for gmca_subject_info_parse: the subject-info JSON from the
 * RA. The input is copied into a NUL-terminated buffer, as callers that
 * hold C strings would pass it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        struct gmca_subject_info *si;
        char *s = malloc(size + 1);

        if (s == NULL)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        gmca_error_clear(&e);
        si = gmca_subject_info_parse(s, size, &e);
        gmca_subject_info_free(si);
        free(s);
        return 0;
}
