/*
 * Fuzz target for the private-key file parser: gmca_key_from_pem over
 * arbitrary bytes with a fixed passphrase. The PBKDF2 iteration count comes
 * from the input, so the parser's cap on it (checked before any derivation)
 * is what keeps a mutated file from stalling the fuzzer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"

#define FUZZ_PASS "gmca-fuzz-passphrase"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        EVP_PKEY *key;

        gmca_error_clear(&e);
        key = gmca_key_from_pem((const char *)data, size, FUZZ_PASS, strlen(FUZZ_PASS), &e);
        /* A key that comes back must be a usable SM2 private key. */
        if (key != NULL && gmca_sm2_is_sm2(key, NULL) != 0)
                __builtin_trap();
        EVP_PKEY_free(key);
        return 0;
}
