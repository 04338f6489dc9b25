/*
 * app_internal: what the modules behind the public API (app*.c) share.
 * Not a public header.
 */
#ifndef GMCA_APP_INTERNAL_H
#define GMCA_APP_INTERNAL_H

#include "gmca/gmca.h"

#include <openssl/x509.h>

#include "device.h"
#include "err.h"

/* Report e through st (which may be NULL); returns e->code. */
int app_status(struct gmca_status *st, const struct gmca_error *e);
/* Report success through st (which may be NULL). */
void app_status_ok(struct gmca_status *st);

struct gmca_token_key;
/*
 * A device signer (device.h) for token key k with SM2 ID id (NULL: the
 * default). cert, when not NULL, must carry k's public key (else
 * GMCA_ERR_INVALID); Z is computed from that key. k must outlive s.
 */
int app_token_signer(struct gmca_token_key *k, X509 *cert, const char *id,
                     struct gmca_device_signer *s, struct gmca_error *e);

#endif
