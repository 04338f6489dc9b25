/*
 * The worker context of the front: one store connection and one CA engine
 * connection per libmicrohttpd thread, and the ra.h environment over them.
 * The sealer and the issue, recover, revoke and disable callbacks go to the
 * CA engine signed with the RA communication key (gmca_engine_ra_*); they
 * connect on first use and note when the engine cannot be reached, so that
 * the front answers 503 rather than blaming the request.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca.h"
#include "serve_internal.h"
#include "util.h"

/* The engine connection, made on first use (the client reconnects by itself after that). */
static struct gmca_engine_ra *engine(struct serve_worker *w, struct gmca_error *e)
{
        if (w->era.client == NULL) {
                if ((w->era.client = gmca_engine_connect(w->sock, e)) == NULL) {
                        w->engine_down = 1;
                        return NULL;
                }
        }
        return &w->era;
}

/*
 * After a failed engine call: an I/O or state error may mean the engine is
 * gone rather than that it refused; a fresh connection tells which.
 */
static void note_failure(struct serve_worker *w, int rc)
{
        struct gmca_engine_client *probe;

        if (rc != GMCA_ERR_IO && rc != GMCA_ERR_STATE)
                return;
        if ((probe = gmca_engine_connect(w->sock, NULL)) == NULL) {
                w->engine_down = 1;
                return;
        }
        gmca_engine_disconnect(probe);
}

static int seal_cb(struct serve_worker *w, int unseal, const char *aad, const uint8_t *in, size_t n,
                   uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        struct gmca_engine_ra *ra;
        int rc;

        if ((ra = engine(w, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_STATE;
        if ((rc = gmca_engine_ra_seal(ra, unseal, aad, in, n, out, outlen, e)) != 0)
                note_failure(w, rc);
        return rc;
}

static int seal(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                size_t *outlen, struct gmca_error *e)
{
        return seal_cb(arg, 0, aad, in, n, out, outlen, e);
}

static int unseal(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                  size_t *outlen, struct gmca_error *e)
{
        return seal_cb(arg, 1, aad, in, n, out, outlen, e);
}

static int issue(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        struct serve_worker *w = arg;
        struct gmca_engine_ra *ra;
        int rc;

        if ((ra = engine(w, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_STATE;
        if ((rc = gmca_engine_ra_issue(ra, app_id, serial, e)) != 0)
                note_failure(w, rc);
        return rc;
}

static int recover(void *arg, int64_t id, struct gmca_error *e)
{
        struct serve_worker *w = arg;
        struct gmca_engine_ra *ra;
        int rc;

        if ((ra = engine(w, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_STATE;
        if ((rc = gmca_engine_ra_recover(ra, id, e)) != 0)
                note_failure(w, rc);
        return rc;
}

static int revoke(void *arg, int64_t id, struct gmca_error *e)
{
        struct serve_worker *w = arg;
        struct gmca_engine_ra *ra;
        int rc;

        if ((ra = engine(w, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_STATE;
        if ((rc = gmca_engine_ra_revoke(ra, id, e)) != 0)
                note_failure(w, rc);
        return rc;
}

static int disable(void *arg, const char *name, const uint8_t *proof, size_t len,
                   struct gmca_error *e)
{
        struct serve_worker *w = arg;
        struct gmca_engine_ra *ra;
        int rc;

        if ((ra = engine(w, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_STATE;
        if ((rc = gmca_engine_ra_disable(ra, name, proof, len, e)) != 0)
                note_failure(w, rc);
        return rc;
}

int serve_worker_init(struct serve_worker *w, const struct gmca_serve_config *cfg,
                      struct gmca_error *e)
{
        char db[PATH_MAX];
        int n;

        memset(w, 0, sizeof(*w));
        w->cfg = cfg;
        if (serve_store_uri(cfg, db, sizeof(db), e) != 0)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_INVALID;
        n = snprintf(w->sock, sizeof(w->sock), "%s/%s", cfg->dir, GMCA_ENGINE_SOCKET);
        if (n < 0 || (size_t)n >= sizeof(w->sock))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", cfg->dir);
        if ((w->store = gmca_store_open(db, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_DB;
        w->era.key = cfg->ra_key;
        w->era.cert = cfg->ra_cert;
        w->sealer = (struct gmca_pii_sealer){seal, unseal, w};
        w->env = (struct gmca_ra_env){w->store, cfg->dir, &w->sealer, issue,
                                      w,        recover,  revoke,     disable};
        return 0;
}

void serve_worker_free(struct serve_worker *w)
{
        if (w == NULL)
                return;
        gmca_engine_disconnect(w->era.client);
        gmca_store_close(w->store);
        OPENSSL_cleanse(w, sizeof(*w));
}
