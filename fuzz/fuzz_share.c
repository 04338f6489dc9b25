/*
 * Fuzz target for gmca_share_parse: the custody share files that
 * custodians carry on their own media and hand back at a key ceremony.
 * Only the public header is parsed (no PIN, no PBKDF2), which is all the
 * code that touches the file before its GCM tag is checked.
 */
#include <stddef.h>
#include <stdint.h>

#include "custody.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_share_info info;
        struct gmca_error e;

        gmca_error_clear(&e);
        (void)!gmca_share_parse(data, size, &info, &e);
        return 0;
}
