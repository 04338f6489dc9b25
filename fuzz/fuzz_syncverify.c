/*
 * Fuzz target for the receiver's side of the sync push (sync.h): a body as
 * gmca_sync_verify takes it (GM/T 0010 parsing; with no trust anchor
 * nothing may verify), and the event payload JSON as
 * gmca_sync_payload_check reads it once a signature holds (a mutated body
 * keeps no valid signature, so the payload is fuzzed directly). The first
 * byte picks which.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "sync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        struct gmca_vfy_opts vo = {0};
        char *payload = NULL;
        size_t plen = 0;
        int64_t id;

        if (size == 0)
                return 0;
        gmca_error_clear(&e);
        /* Invariants: a payload passes only with a positive id; with no trust anchor no
           body verifies. */
        if (data[0] & 1) {
                if (gmca_sync_payload_check((const char *)data + 1, size - 1, &id, &e) == 0 &&
                    id <= 0)
                        abort();
        } else if (gmca_sync_verify(data + 1, size - 1, &vo, &payload, &plen, NULL, &e) == 0) {
                OPENSSL_free(payload);
                abort();
        }
        return 0;
}
