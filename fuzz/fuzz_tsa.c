/*
 * Fuzz target for the RFC 3161 parsers of tsa.c: a TimeStampReq arrives as
 * the body of `POST /tsa`, a TimeStampResp from a time-stamping authority
 * over the network. Each input goes through gmca_tsa_req_parse, through
 * gmca_tsa_reply (which answers it, rejection or token), and through
 * gmca_tsa_verify against a TSA certificate made once at start, so the
 * token walk past the strict decode runs too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "tsa.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *tsa_cert;
static EVP_PKEY *tsa_key;

/* A self-issued TSA certificate (EKU timeStamping, critical). */
static int init(void)
{
        static const int eku[] = {NID_time_stamp};
        struct gmca_cert_template t;
        X509_NAME *name = X509_NAME_new();
        struct gmca_error e = {0};

        if (name == NULL || (tsa_key = gmca_sm2_keygen(NULL)) == NULL ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"fuzz TSA",
                                       -1, -1, 0) != 1)
                return -1;
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = tsa_key;
        t.issuer_key = tsa_key;
        memset(t.serial, 0x11, sizeof(t.serial));
        t.not_before = 0;
        t.not_after = (time_t)4102444800; /* 2100 */
        t.path_len = -1;
        t.key_usage = KU_DIGITAL_SIGNATURE;
        t.eku = eku;
        t.neku = 1;
        t.eku_critical = 1;
        /* Read back from DER, as a relying party holds it (a built certificate's
         * public key is not decoded until then, and gmca_tsa_reply needs it). */
        X509 *built = gmca_cert_build(&t, &e);
        uint8_t *der = NULL;
        int n = built != NULL ? i2d_X509(built, &der) : 0;
        const uint8_t *p = der;

        tsa_cert = n > 0 ? d2i_X509(NULL, &p, n) : NULL;
        if (tsa_cert == NULL)
                fprintf(stderr, "fuzz_tsa: %s\n",
                        e.msg[0] ? e.msg : "cannot re-read the certificate");
        OPENSSL_free(der);
        X509_free(built);
        X509_NAME_free(name);
        return tsa_cert != NULL ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_tsa_expect x = {0};
        struct gmca_tsa_info info;
        struct gmca_tsa_req r;
        struct gmca_error e;
        uint8_t *resp = NULL;
        size_t resplen = 0;
        int fail, status;

        if (tsa_cert == NULL && init() != 0)
                __builtin_trap(); /* a harness that cannot start must not pass */
        gmca_error_clear(&e);
        x.tsa_cert = tsa_cert;
        if (gmca_tsa_req_parse(data, size, &r, &fail, &e) == 0)
                x.req = &r;
        gmca_error_clear(&e);
        if (size <= GMCA_TSA_REQ_MAX && gmca_tsa_reply(tsa_cert, tsa_key, NULL, data, size, &resp,
                                                       &resplen, &status, &e) == 0) {
                /* Our own answer must verify against the request it answers. */
                struct gmca_tsa_expect self = {.tsa_cert = tsa_cert, .req = x.req};

                gmca_error_clear(&e);
                if (status == 0 && gmca_tsa_verify(resp, resplen, &self, &info, &e) != 0)
                        __builtin_trap();
                OPENSSL_free(resp);
        }
        gmca_error_clear(&e);
        x.data = data;
        x.data_len = size;
        x.has_data = 1;
        if (gmca_tsa_verify(data, size, &x, &info, &e) == 0)
                __builtin_trap(); /* no input is signed by this run's key */
        return 0;
}
