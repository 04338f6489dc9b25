/*
 * Helpers shared by the cmocka unit tests. Include after <cmocka.h>.
 */
#ifndef GMCA_TESTUTIL_H
#define GMCA_TESTUTIL_H

#include <string.h>

#include "err.h"

/*
 * rc must be want; when msg is given, the cause must contain it; a
 * success must leave no cause behind. what names the case in failures.
 */
static inline void expect(int rc, const struct gmca_error *e, int want, const char *msg,
                          const char *what)
{
        if (rc != want)
                fail_msg("%s: rc %d (%s), want %d", what, rc, e->msg, want);
        if (msg != NULL && strstr(e->msg, msg) == NULL)
                fail_msg("%s: message \"%s\" lacks \"%s\"", what, e->msg, msg);
        if (want == 0 && e->msg[0] != '\0')
                fail_msg("%s: success with a message \"%s\"", what, e->msg);
}

#endif
