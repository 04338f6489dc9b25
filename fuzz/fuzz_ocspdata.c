/*
 * Fuzz target for the CA engine's OCSP ResponseData parser
 * (gmca_ocsp_respdata_parse, ca_ocsp.h): the bytes of op 'O' come from any
 * local process, and only what parses strictly is then checked against
 * the store and signed with a CA key. Also walks what libcrypto's
 * accessors give for each SingleResponse, as the check does.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/ocsp.h>

#include "ca_ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        OCSP_BASICRESP *bs;
        const ASN1_OCTET_STRING *kid = NULL;
        const X509_NAME *name = NULL;

        gmca_error_clear(&e);
        if ((bs = gmca_ocsp_respdata_parse(data, size, &e)) == NULL)
                return 0;
        (void)OCSP_resp_get0_id(bs, &kid, &name);
        (void)OCSP_resp_get0_produced_at(bs);
        for (int i = 0; i < OCSP_resp_count(bs); i++) {
                OCSP_SINGLERESP *one = OCSP_resp_get0(bs, i);
                ASN1_GENERALIZEDTIME *rev = NULL, *tu = NULL, *nu = NULL;
                ASN1_OCTET_STRING *nh = NULL, *kh = NULL;
                ASN1_OBJECT *md = NULL;
                ASN1_INTEGER *sn = NULL;
                int reason = -1;

                (void)OCSP_single_get0_status(one, &reason, &rev, &tu, &nu);
                (void)OCSP_id_get0_info(&nh, &md, &kh, &sn,
                                        (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(one));
        }
        OCSP_BASICRESP_free(bs);
        return 0;
}
