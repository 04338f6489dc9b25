/*
 * Fuzz target for gmca_ocsp_response_parse: OCSP responses come from
 * responders over plain HTTP during validation. The parts validate.c reads
 * after parsing (responder ID, single responses, nonce) run too.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        OCSP_RESPONSE *resp;
        OCSP_BASICRESP *bs;
        struct gmca_error e;
        X509 *signer = NULL;

        gmca_error_clear(&e);
        if ((resp = gmca_ocsp_response_parse(data, size, &e)) == NULL)
                return 0;
        if ((bs = OCSP_response_get1_basic(resp)) != NULL) {
                for (int i = 0; i < OCSP_resp_count(bs); i++) {
                        int status, reason;
                        ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;

                        status = OCSP_single_get0_status(OCSP_resp_get0(bs, i), &reason, &rev,
                                                         &thisupd, &nextupd);
                        (void)status;
                }
                (void)OCSP_resp_get0_signer(bs, &signer, NULL);
                OCSP_BASICRESP_free(bs);
        }
        OCSP_RESPONSE_free(resp);
        return 0;
}
