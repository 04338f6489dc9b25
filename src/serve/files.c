/*
 * The public, unsigned downloads of the front (DESIGN.md "Contracts"):
 * the CA certificates (GET /ca/{name}.crt, DER) and each CA's latest CRL
 * (GET /crl/{name}.crl, DER, as stored when it was generated), for relying
 * parties and the URLs in issued certificates (CRL distribution point,
 * caIssuers); and GET /healthz for whoever watches the service. All read
 * the store only.
 */
#include <string.h>

#include "serve_internal.h"
#include "util.h"

/* A CA name from the path: [A-Za-z0-9._-], 1..GMCA_NAME_MAX-1 bytes, then suffix. */
static int name_from(const char *path, const char *prefix, const char *suffix,
                     char name[GMCA_NAME_MAX])
{
        size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);

        if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0)
                return 0;
        n -= pl + sl;
        if (n >= GMCA_NAME_MAX || path[pl] == '.')
                return 0;
        for (size_t i = 0; i < n; i++) {
                char ch = path[pl + i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
                        return 0;
        }
        memcpy(name, path + pl, n);
        name[n] = '\0';
        return 1;
}

static void store_failure(struct serve_reply *out, int rc, const struct gmca_error *e,
                          const char *what, const char *name)
{
        if (rc == GMCA_ERR_NOTFOUND)
                serve_reply_error(out, 404, "not_found", "no %s for CA %s", what, name);
        else
                serve_reply_error(out, 500, "internal", "%s", e->msg);
}

static void ca_cert(struct serve_worker *w, const char *name, struct serve_reply *out)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec ca;
        int rc;

        memset(&ca, 0, sizeof(ca));
        if ((rc = gmca_store_ca_get(w->store, name, &ca, &e)) != 0) {
                store_failure(out, rc, &e, "certificate", name);
                return;
        }
        serve_reply_bytes(out, 200, "application/pkix-cert", ca.cert_der, ca.cert_len);
        gmca_ca_rec_clear(&ca);
}

static void ca_crl(struct serve_worker *w, const char *name, struct serve_reply *out)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec ca;
        struct gmca_crl_rec crl;
        int rc;

        memset(&ca, 0, sizeof(ca));
        memset(&crl, 0, sizeof(crl));
        if ((rc = gmca_store_ca_get(w->store, name, &ca, &e)) != 0) {
                store_failure(out, rc, &e, "CRL", name);
                return;
        }
        if ((rc = gmca_store_crl_latest(w->store, ca.id, &crl, &e)) != 0)
                store_failure(out, rc, &e, "CRL", name);
        else
                serve_reply_bytes(out, 200, "application/pkix-crl", crl.der, crl.der_len);
        gmca_crl_rec_clear(&crl);
        gmca_ca_rec_clear(&ca);
}

int serve_public(struct serve_worker *w, const char *method, const char *path,
                 struct serve_reply *out)
{
        char name[GMCA_NAME_MAX];
        int healthz = strcmp(path, "/healthz") == 0, cert = 0, crl = 0;

        if (!healthz && !(cert = name_from(path, "/ca/", ".crt", name)) &&
            !(crl = name_from(path, "/crl/", ".crl", name)))
                return 0;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                gmca_strlcpy(out->allow, "GET, HEAD", sizeof(out->allow));
                serve_reply_error(out, 405, "method_not_allowed",
                                  "%s is not allowed here (allowed: GET, HEAD)", method);
                return 1;
        }
        if (healthz) {
                static const char ok[] = "{\"status\":\"ok\"}\n";

                serve_reply_bytes(out, 200, "application/json; charset=utf-8", (const uint8_t *)ok,
                                  sizeof(ok) - 1);
                return 1;
        }
        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                return 1;
        }
        if (cert)
                ca_cert(w, name, out);
        else
                ca_crl(w, name, out);
        return 1;
}
