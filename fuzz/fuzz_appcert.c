/*
 * Fuzz target for gmca_certificate_parse, the public certificate reader of
 * libgmca (include/gmca/gmca.h): certificates that relying parties receive
 * from anyone (DER or one PEM block). When one parses, every string the
 * info points to is read to its end, so that a dangling or unterminated
 * field shows under the sanitizers, and the lookups run.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gmca/gmca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t touch(const char *s)
{
        return s != NULL ? strlen(s) : 0;
}

static size_t touch_name(const struct gmca_name_info *n)
{
        size_t t = touch(n->text);

        for (size_t i = 0; i < n->count; i++)
                t += touch(n->attributes[i].type) + touch(n->attributes[i].oid) +
                     touch(n->attributes[i].value);
        return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const struct gmca_certificate_info *i;
        struct gmca_certificate *c;
        struct gmca_status st;
        volatile size_t sink = 0;
        size_t derlen = 0;

        c = gmca_certificate_parse(data, size, &st);
        if (c == NULL) {
                sink += touch(st.message);
                return 0;
        }
        i = gmca_certificate_info(c);
        sink += touch(i->serial) + touch_name(&i->subject) + touch_name(&i->issuer) +
                touch(i->not_before_text) + touch(i->not_after_text) +
                touch(i->signature_algorithm) + touch(i->fingerprint) +
                touch(i->public_key_fingerprint) + touch(i->public_key);
        for (size_t k = 0; k < i->ext_key_usage_count; k++)
                sink += touch(i->ext_key_usage[k].oid) + touch(i->ext_key_usage[k].name);
        for (size_t k = 0; k < i->private_extension_count; k++)
                sink += touch(i->private_extensions[k].name) + touch(i->private_extensions[k].oid) +
                        touch(i->private_extensions[k].value);
        for (size_t k = 0; k < i->alt_name_count; k++)
                sink += touch(i->alt_names[k].kind) + touch(i->alt_names[k].value);
        sink += touch(gmca_certificate_subject_attribute(c, "CN"));
        sink += touch(gmca_certificate_private_extension(c, "identity_card_number"));
        (void)gmca_certificate_der(c, &derlen);
        sink += derlen;
        gmca_certificate_free(c);
        return 0;
}
