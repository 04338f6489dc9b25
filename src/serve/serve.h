/*
 * serve: the `gmca serve` front of DESIGN.md's service zone. It speaks
 * HTTP (libmicrohttpd), authenticates each /api/v1 request as an operator
 * (auth.h), runs the RA operation (ra.h) against the store and answers in
 * JSON; it also serves the public CA certificates and CRLs. It holds no CA
 * key: what needs one (issuance, the sealing of identity numbers) goes to
 * the CA engine over its socket, signed with the RA communication key
 * (engine.h).
 *
 * Threads: libmicrohttpd runs a pool of `threads` workers; each request is
 * handled on one of them with a worker context of its own (a store
 * connection and a CA engine connection), never shared between threads.
 */
#ifndef GMCA_SERVE_H
#define GMCA_SERVE_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define GMCA_SERVE_DEFAULT_LISTEN "127.0.0.1:8080"
#define GMCA_SERVE_THREADS_DEFAULT 4
#define GMCA_SERVE_THREADS_MAX 64
#define GMCA_SERVE_PID_FILE "run/serve.pid" /* relative to the state directory */

struct gmca_serve_config {
        const char *dir;    /* state directory */
        const char *listen; /* "ADDR:PORT" or "[ADDR6]:PORT"; port 0 picks a free one */
        unsigned threads;   /* 1..GMCA_SERVE_THREADS_MAX */
        const char *ra;     /* the RA system's name (its communication certificate's) */
        EVP_PKEY *ra_key;   /* borrowed: the RA communication private key */
        X509 *ra_cert;      /* borrowed: its certificate */
};

/*
 * Serve until SIGTERM or SIGINT: print "gmca: serving on http://ADDR:PORT"
 * on stdout once listening and write <dir>/run/serve.pid; on the signal stop
 * accepting, let the requests under way finish (at most
 * GMCA_SERVE_DRAIN_SECONDS), remove the pid file and return 0. The caller
 * has checked the RA certificate and that the CA engine runs.
 * GMCA_ERR_INVALID for a bad listen address, GMCA_ERR_IO if it cannot
 * listen, GMCA_ERR_STATE if another front serves this directory.
 */
/* GMCA_ERR_INVALID unless listen is an address gmca_serve_run takes. */
int gmca_serve_check_listen(const char *listen, struct gmca_error *e) GMCA_WUR;

#define GMCA_SERVE_DRAIN_SECONDS 30
int gmca_serve_run(const struct gmca_serve_config *cfg, struct gmca_error *e) GMCA_WUR;

#endif
