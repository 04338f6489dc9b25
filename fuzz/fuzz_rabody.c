/*
 * Fuzz target for the RA API's strict body parsers (ra_json.c): the first
 * byte picks the parser (applicant create / correct, application of each
 * type, vetting, approval / rejection, revocation), the rest is the body
 * as it came from the network. The CSR text of an application body goes
 * through ra_csr_der too, and its subject_info through ra_info_text, as
 * submission does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "ra_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        unsigned which;

        if (size == 0)
                return 0;
        which = data[0] % 10;
        data++;
        size--;
        gmca_error_clear(&e);
        switch (which) {
        case 0:
        case 1: {
                struct ra_applicant_body b;

                if (ra_applicant_parse(data, size, which == 0, &b, &e) == 0)
                        ra_applicant_body_clear(&b);
                break;
        }
        case 2:
        case 3:
        case 4:
        case 5:
        case 6: {
                struct ra_application_body b;
                uint8_t *der = NULL;
                size_t len = 0;
                char *info = NULL;

                if (ra_application_parse(data, size, (enum gmca_app_type)(which - 2), &b, &e) != 0)
                        break;
                gmca_error_clear(&e);
                if (ra_csr_der(b.csr, &der, &len, &e) == 0)
                        OPENSSL_free(der);
                gmca_error_clear(&e);
                if (ra_info_text(b.subject_info, &info, &e) == 0)
                        free(info);
                ra_application_body_clear(&b);
                break;
        }
        case 7: {
                struct ra_vet_body b;

                if (ra_vet_parse(data, size, &b, &e) == 0)
                        ra_vet_body_clear(&b);
                break;
        }
        case 8: {
                struct ra_decide_body b;

                if (ra_decide_parse(data, size, size % 2, &b, &e) == 0)
                        ra_decide_body_clear(&b);
                break;
        }
        default: {
                struct ra_revocation_body b;

                if (ra_revocation_parse(data, size, &b, &e) == 0)
                        ra_revocation_body_clear(&b);
                break;
        }
        }
        return 0;
}
