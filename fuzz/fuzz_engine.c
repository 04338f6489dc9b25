/*
 * Fuzz target for the CA engine's intake: the payload of one request frame
 * (what any local process may send to the engine socket) goes through
 * gmca_engine_parse_request; the TBS of a sign request ('S', or 'T' with
 * the custodians' MAC) through gmca_engine_check_tbs against a fixed CA
 * subject, so that the strict DER walk, the algorithm check and the issuer
 * comparison all run; the payload of an RA request ('R') through
 * gmca_engine_parse_ra; a CRL request ('C') is parsed only (its kind,
 * flags, argument and actor). Results are ignored; the sanitizers judge.
 */
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Name ::= C=CN, CN=Fuzz CA (the issuer the seeds carry). */
static const uint8_t subject[] = {0x30, 0x1f, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06,
                                  0x13, 0x02, 0x43, 0x4e, 0x31, 0x10, 0x30, 0x0e, 0x06, 0x03, 0x55,
                                  0x04, 0x03, 0x0c, 0x07, 0x46, 0x75, 0x7a, 0x7a, 0x20, 0x43, 0x41};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_engine_request r;
        struct gmca_error e;
        int is_cert = 0;

        gmca_error_clear(&e);
        if (gmca_engine_parse_request(data, size, &r, &e) != 0)
                return 0;
        gmca_error_clear(&e);
        if (r.op == 'R') {
                struct gmca_engine_ra_req q;

                (void)!gmca_engine_parse_ra(r.payload, r.payload_len, &q, &e);
                return 0;
        }
        if (r.op != 'S' && r.op != 'T')
                return 0;
        (void)!gmca_engine_check_tbs(r.tbs, r.tbs_len, subject, sizeof(subject), &is_cert, &e);
        gmca_ossl_clear();
        return 0;
}
