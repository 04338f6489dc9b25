/*
 * Error reporting for the gmca library. Functions that can fail return 0 on
 * success or a negative enum gmca_err, and fill a caller-provided
 * struct gmca_error with a one-line cause that names the standard and the
 * field where one applies. The library never prints and never exits.
 */
#ifndef GMCA_ERR_H
#define GMCA_ERR_H

#include <stddef.h>

#define GMCA_WUR __attribute__((warn_unused_result))
#define GMCA_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum gmca_err {
        GMCA_OK = 0,
        GMCA_ERR_INTERNAL = -1, /* a bug or an unexpected library failure */
        GMCA_ERR_NOMEM = -2,
        GMCA_ERR_INVALID = -3,  /* malformed or unacceptable input */
        GMCA_ERR_CRYPTO = -4,   /* a cryptographic operation failed */
        GMCA_ERR_VERIFY = -5,   /* a signature or tag did not verify */
        GMCA_ERR_NOTFOUND = -6, /* no such serial, CA, profile, file */
        GMCA_ERR_EXISTS = -7,   /* refusing to overwrite or duplicate */
        GMCA_ERR_POLICY = -8,   /* refused by a profile or CPS rule */
        GMCA_ERR_IO = -9,
        GMCA_ERR_DB = -10,
        GMCA_ERR_AUTH = -11,      /* wrong passphrase, operator or approval */
        GMCA_ERR_STATE = -12,     /* operation not valid in the current state */
        GMCA_ERR_TAMPER = -13,    /* integrity check (audit chain) failed */
        GMCA_ERR_LIMIT = -14,     /* input over a hard size or count cap */
        GMCA_ERR_FORBIDDEN = -15, /* the operator is known but their role does not allow it */
};

#define GMCA_ERROR_MSG_MAX 512

struct gmca_error {
        int code;
        char msg[GMCA_ERROR_MSG_MAX];
};

/* Short stable name of a code ("invalid", "verify", ...). */
const char *gmca_err_name(int code);

/* Reset e to "no error". e may be NULL. */
void gmca_error_clear(struct gmca_error *e);

/*
 * Record code and a printf-style cause in e (which may be NULL) and return
 * code, so that callers can write `return gmca_error_set(e, ...)`.
 * The first cause recorded wins: a later call does not overwrite a message
 * already set unless gmca_error_clear() was called, so that the innermost,
 * most precise cause reaches the user.
 */
int gmca_error_set(struct gmca_error *e, int code, const char *fmt, ...) GMCA_PRINTF(3, 4);

/* Like gmca_error_set, then append OpenSSL's error queue (drained). */
int gmca_error_ossl(struct gmca_error *e, int code, const char *fmt, ...) GMCA_PRINTF(3, 4);

/* Drain and discard OpenSSL's error queue. */
void gmca_ossl_clear(void);

#endif
