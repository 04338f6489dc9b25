/*
 * Fuzz target for the envelope parsers: an SM2EnvelopedKey and an
 * ENVELOPEDKEYBLOB come from the KM through the CA and the network to the
 * subscriber's token. Both are opened with a fixed recipient key (a
 * fuzzer cannot make C3 match, so this drives the DER and blob checks and
 * the decryption's refusal), and the DER form's public key is read.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static EVP_PKEY *recip;
        EVP_PKEY *k;

        if (recip == NULL && (recip = gmca_sm2_keygen(NULL)) == NULL)
                __builtin_trap();
        /* Opening needs the recipient's key: a fuzzer's bytes never carry it. */
        if ((k = gmca_envelope_open(data, size, recip, NULL)) != NULL)
                __builtin_trap();
        if ((k = gmca_envelope_blob_open(data, size, recip, NULL)) != NULL)
                __builtin_trap();
        EVP_PKEY_free(gmca_envelope_pubkey(data, size, NULL));
        gmca_ossl_clear();
        return 0;
}
