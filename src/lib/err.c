/*
 * Error reporting helpers: formatting a cause into struct gmca_error and
 * draining OpenSSL's thread-local error queue into it.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

const char *gmca_err_name(int code)
{
        switch (code) {
        case GMCA_OK:
                return "ok";
        case GMCA_ERR_INTERNAL:
                return "internal";
        case GMCA_ERR_NOMEM:
                return "out of memory";
        case GMCA_ERR_INVALID:
                return "invalid input";
        case GMCA_ERR_CRYPTO:
                return "crypto";
        case GMCA_ERR_VERIFY:
                return "verification failed";
        case GMCA_ERR_NOTFOUND:
                return "not found";
        case GMCA_ERR_EXISTS:
                return "exists";
        case GMCA_ERR_POLICY:
                return "policy";
        case GMCA_ERR_IO:
                return "i/o";
        case GMCA_ERR_DB:
                return "database";
        case GMCA_ERR_AUTH:
                return "authentication";
        case GMCA_ERR_STATE:
                return "state";
        case GMCA_ERR_TAMPER:
                return "tamper";
        case GMCA_ERR_LIMIT:
                return "limit";
        case GMCA_ERR_FORBIDDEN:
                return "forbidden";
        }
        return "unknown";
}

void gmca_error_clear(struct gmca_error *e)
{
        if (e == NULL)
                return;
        e->code = 0;
        e->msg[0] = '\0';
}

static void vset(struct gmca_error *e, int code, const char *fmt, va_list ap) GMCA_PRINTF(3, 0);
static void vset(struct gmca_error *e, int code, const char *fmt, va_list ap)
{
        if (e == NULL || e->msg[0] != '\0')
                return;
        e->code = code;
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int gmca_error_set(struct gmca_error *e, int code, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vset(e, code, fmt, ap);
        va_end(ap);
        return code;
}

int gmca_error_ossl(struct gmca_error *e, int code, const char *fmt, ...)
{
        va_list ap;
        unsigned long l;
        int had = e != NULL && e->msg[0] != '\0';
        char buf[256];
        size_t n;

        va_start(ap, fmt);
        vset(e, code, fmt, ap);
        va_end(ap);
        while ((l = ERR_get_error()) != 0) {
                if (e == NULL || had)
                        continue;
                ERR_error_string_n(l, buf, sizeof(buf));
                n = strlen(e->msg);
                if (n + 3 < sizeof(e->msg))
                        snprintf(e->msg + n, sizeof(e->msg) - n, " (%s)", buf);
                had = 1; /* the first queued error is the most precise */
        }
        return code;
}

void gmca_ossl_clear(void)
{
        ERR_clear_error();
}
