/*
 * Fuzz target for the OCSP responder's request side: gmca_ocsp_request_parse
 * (the bytes of POST /ocsp and GET /ocsp/{base64} come from anyone), the
 * CertID fields the responder reads after parsing, and gmca_ocsp_respond
 * with no CA served, which must still answer (unauthorized or
 * malformedRequest) without touching the store.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/crypto.h>
#include <openssl/ocsp.h>

#include "ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_ocsp_answer a;
        struct gmca_error e;
        OCSP_REQUEST *req;
        uint8_t *out = NULL;
        size_t outlen = 0;

        gmca_error_clear(&e);
        if ((req = gmca_ocsp_request_parse(data, size, &e)) != NULL) {
                for (int i = 0; i < OCSP_request_onereq_count(req); i++) {
                        ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
                        ASN1_OBJECT *md = NULL;
                        ASN1_INTEGER *sn = NULL;

                        (void)OCSP_id_get0_info(
                            &nh, &md, &kh, &sn,
                            OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)));
                }
                OCSP_REQUEST_free(req);
        }
        gmca_error_clear(&e);
        if (gmca_ocsp_respond(NULL, NULL, 0, NULL, data, size, &out, &outlen, &a, &e) == 0 &&
            (a.status == OCSP_RESPONSE_STATUS_SUCCESSFUL || outlen == 0))
                __builtin_trap(); /* nothing served: never a signed answer, never empty */
        OPENSSL_free(out);
        return 0;
}
