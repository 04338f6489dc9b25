/*
 * Fuzz target for gmca_profile_parse: the certificate profile JSON an
 * operator puts in conf/profiles. Parsed once without a name and once with
 * the name the file would have, so that both the name fallback and the
 * name-match rule run; a parsed profile is checked against a fixed subject.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_error e;
        struct gmca_profile *p;
        char *s = malloc(size + 1);

        if (s == NULL)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        gmca_error_clear(&e);
        p = gmca_profile_parse(s, size, NULL, &e);
        if (p != NULL) {
                X509_NAME *name = X509_NAME_new();

                if (name != NULL &&
                    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                                               (const unsigned char *)"CN", -1, -1, 0) == 1 &&
                    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                               (const unsigned char *)"fuzz", -1, -1, 0) == 1) {
                        gmca_error_clear(&e);
                        (void)!gmca_profile_check(p, name, NULL, p->validity_days, &e);
                }
                X509_NAME_free(name);
                gmca_profile_free(p);
        }
        gmca_error_clear(&e);
        gmca_profile_free(gmca_profile_parse(s, size, "personal-sign", &e));
        free(s);
        return 0;
}
