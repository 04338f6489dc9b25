/*
 * ocsp_rotate: the responders the front runs for itself (issue 5 item 2):
 * delegated responder certificates it keeps and renews through the CA
 * engine (--ocsp-auto), and the signer of CA-signed responses that goes
 * through the engine's op 'O' (--ocsp-ca-signed). ocsp.c swaps them in
 * for the worker threads; this file owns their keys, files and requests.
 * Not a public header.
 */
#ifndef GMCA_SERVE_OCSP_ROTATE_H
#define GMCA_SERVE_OCSP_ROTATE_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "engine.h"
#include "ocsp.h"
#include "serve.h"
#include "store.h"

#define SERVE_OCSP_CAS_MAX 16    /* CAs of each kind (--ocsp-cert, -auto, -ca-signed) */
#define SERVE_OCSP_DIR "ocsp"    /* under the state directory: ocsp/<ca>/<SERIAL>.{key,pem} */
#define SERVE_OCSP_FILES_MAX 512 /* responder files looked at per CA at start */

/* The current responder of one --ocsp-auto CA. Touched by one thread at a time. */
struct serve_ocsp_auto {
        char ca[GMCA_NAME_MAX];
        X509 *cert;                   /* NULL: none yet */
        EVP_PKEY *key;                /* its private key */
        struct gmca_ocsp_responder r; /* for cert; r.signer NULL (each set has its own) */
        int64_t not_before, not_after;
        int64_t retry_at; /* after a failed renewal: not before this */
};

/*
 * Load the newest responder of a->ca from <dir>/ocsp/<ca>/ that is valid
 * at now, issued by that CA and whose key opens with the passphrase.
 * 0 with a->cert NULL if there is none; a negative code for a store error.
 */
int serve_ocsp_auto_load(const struct gmca_serve_config *cfg, struct gmca_store *s,
                         struct serve_ocsp_auto *a, int64_t now, struct gmca_error *e) GMCA_WUR;

/* When a->cert is due for replacement (now if there is none). */
int64_t serve_ocsp_auto_due(const struct gmca_serve_config *cfg, const struct serve_ocsp_auto *a);

/*
 * A new SM2 key, a CSR (C and O of the CA, CN "<ca> OCSP Responder"), the
 * certificate from the engine (RA SUBOP ocsp, signed with the RA key),
 * checked (the key's, an OCSP signer of that CA, valid now), written
 * (key encrypted, 0600; certificate PEM) and made a's current one. On
 * failure a is unchanged.
 */
int serve_ocsp_auto_renew(const struct gmca_serve_config *cfg, struct gmca_engine_ra *ra,
                          struct gmca_store *s, struct serve_ocsp_auto *a,
                          struct gmca_error *e) GMCA_WUR;
void serve_ocsp_auto_clear(struct serve_ocsp_auto *a);

/* Signs ResponseData of CA ca through the engine's op 'O'; one connection, under a mutex. */
struct serve_ocsp_engine_signer {
        struct gmca_signer base;
        pthread_mutex_t lock;
        struct gmca_engine_client *client; /* NULL until used, or after a failure */
        char ca[GMCA_ENGINE_NAME_MAX];
        char sock[PATH_MAX];
};
int serve_ocsp_engine_signer_init(struct serve_ocsp_engine_signer *s, const char *dir,
                                  const char *ca, struct gmca_error *e) GMCA_WUR;
void serve_ocsp_engine_signer_clear(struct serve_ocsp_engine_signer *s);

#endif
