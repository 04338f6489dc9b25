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

#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define GMCA_SERVE_DEFAULT_LISTEN "127.0.0.1:8080"
#define GMCA_SERVE_THREADS_DEFAULT 4
#define GMCA_SERVE_THREADS_MAX 64
#define GMCA_SERVE_PID_FILE "run/serve.pid"               /* relative to the state directory */
#define GMCA_SERVE_RESPONDER_PID_FILE "run/responder.pid" /* the same in responder mode */

/*
 * The time-stamping authority of POST /tsa (RFC 3161 over HTTP, §3.4). Its
 * key is not a CA key: like the OCSP delegated key of DESIGN.md it lives in
 * the front, loaded once at start and shared read-only by the worker
 * threads (each signature has its own EVP_MD_CTX, which OpenSSL 3 allows).
 */
struct gmca_serve_tsa {
        X509 *cert;         /* borrowed: the TSA certificate (profile tsa) */
        EVP_PKEY *key;      /* borrowed: its private key */
        const char *policy; /* TSA policy OID; NULL: GMCA_TSA_POLICY_DEFAULT */
        int accuracy_ms;    /* 0: no accuracy in the tokens; else 1..999 */
};

/*
 * 0 if t can answer time-stamp requests: the certificate is a TSA's
 * (gmca_tsa_cert_check) and valid now, the key is its key, the policy an
 * OID, the accuracy 0..999, and a token made with them verifies under the
 * certificate. GMCA_ERR_TAMPER for a key that is not the certificate's,
 * GMCA_ERR_POLICY for a certificate that may not time-stamp now,
 * GMCA_ERR_INVALID for the policy or accuracy.
 */
int gmca_serve_tsa_check(const struct gmca_serve_tsa *t, struct gmca_error *e) GMCA_WUR;

struct gmca_ocsp_responder;
struct gmca_publisher;

struct gmca_serve_config {
        const char *dir;    /* state directory */
        const char *listen; /* "ADDR:PORT" or "[ADDR6]:PORT"; port 0 picks a free one */
        unsigned threads;   /* 1..GMCA_SERVE_THREADS_MAX */
        const char *ra;     /* the RA system's name (its communication certificate's) */
        EVP_PKEY *ra_key;   /* borrowed: the RA communication private key */
        X509 *ra_cert;      /* borrowed: its certificate */
        const struct gmca_serve_tsa *tsa; /* borrowed; NULL: no POST /tsa (404) */
        /* Seconds between scheduled CRLs (CPS §3.9.10); 0: the configured crl_hours. */
        int64_t crl_interval;
        /*
         * The OCSP responders of POST /ocsp and GET /ocsp/{base64}, one per
         * CA served (ocsp.h; borrowed, their keys held by the caller);
         * nocsp 0: no responder (404). ocsp_validity: seconds from
         * thisUpdate to nextUpdate, 0: GMCA_OCSP_VALIDITY_DEFAULT.
         */
        const struct gmca_ocsp_responder *ocsp;
        size_t nocsp;
        int64_t ocsp_validity;
        /*
         * Responders the front runs itself (issue 5 item 2; src/serve/ocsp.c,
         * ocsp_rotate.c). ocsp_auto: names of CAs whose delegated responder
         * the front keeps under <dir>/ocsp/<ca>/ (key encrypted with
         * ocsp_pass) and rotates through the CA engine (RA SUBOP ocsp) once
         * within ocsp_rotate_before seconds of its notAfter (0: in its last
         * third); ocsp_cert_seconds: the validity asked for (0: the
         * profile's; tests ask for seconds). ocsp_ca_signed: CAs answered
         * with the CA key itself through the engine's op 'O'. Borrowed.
         */
        const char *const *ocsp_auto;
        size_t nocsp_auto;
        const char *const *ocsp_ca_signed;
        size_t nocsp_ca_signed;
        const char *ocsp_pass; /* the passphrase, ocsp_pass_len bytes */
        size_t ocsp_pass_len;
        int64_t ocsp_rotate_before;
        int64_t ocsp_cert_seconds;
        /*
         * The change feed's delivery channels (publish.h), one thread each
         * (publish_run.c): the LDAP directory (ldap_pub.h), the sync
         * receivers (sync.h). Borrowed with their args, which must outlive
         * gmca_serve_run; npublishers 0: none.
         */
        const struct gmca_publisher *publishers;
        size_t npublishers;
        /*
         * Responder mode (issue 9, gmca serve --responder): a front that only
         * reads, so that it can run on a hot-standby replica. It answers OCSP
         * with the delegated responders of ocsp[] and serves the CA
         * certificates, the CRLs, the search and /healthz (which then reports
         * the replica's replay lag); /api is 404. No RA identity, no CA
         * engine, no CRL schedule, and tsa, ocsp_auto, ocsp_ca_signed and
         * publishers must be empty (GMCA_ERR_INVALID). Nothing is written to
         * the store; the pid file is GMCA_SERVE_RESPONDER_PID_FILE.
         */
        int responder;
        /* The store read, a database URI; NULL: the directory's (gmca_ca_front_store_uri). */
        const char *db;
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
