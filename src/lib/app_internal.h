/*
 * app_internal: what the modules behind the public API (app*.c) share.
 * Not a public header.
 */
#ifndef GMCA_APP_INTERNAL_H
#define GMCA_APP_INTERNAL_H

#include "gmca/gmca.h"

#include "err.h"

/* Report e through st (which may be NULL); returns e->code. */
int app_status(struct gmca_status *st, const struct gmca_error *e);
/* Report success through st (which may be NULL). */
void app_status_ok(struct gmca_status *st);

#endif
