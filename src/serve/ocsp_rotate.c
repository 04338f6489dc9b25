/*
 * The front's own OCSP responders (ocsp_rotate.h). A delegated responder
 * key is not a CA key (DESIGN.md lets it live in the front), but it is
 * still a signing key: it is generated here, never leaves this process
 * unencrypted (gmca_key_write: SM4 under the --ocsp-pass-file
 * passphrase, 0600, O_EXCL), and its certificate comes from the CA engine,
 * which decides whether another responder may exist at all (ca_ocsp.h).
 * A certificate from the engine is checked before use as if it came from
 * anywhere: the key must be ours, the issuer the CA asked, the EKU and
 * nocheck present and the validity current.
 *
 * Files: <dir>/ocsp/<ca>/<SERIAL>.key, then <SERIAL>.pem; the certificate
 * is written last, so a crash between the two leaves a key no one loads.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "ocsp_rotate.h"
#include "util.h"
#include "x509.h"

static int pathf(char *out, size_t len, struct gmca_error *e, const char *fmt, ...)
    GMCA_PRINTF(4, 5);

static int pathf(char *out, size_t len, struct gmca_error *e, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(out, len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "OCSP responder: path too long");
        return 0;
}

/* <dir>/ocsp/<ca>, created 0700 if missing; a directory others can read is refused. */
static int ca_dir(const struct gmca_serve_config *cfg, const char *ca, char *out, size_t len,
                  int create, struct gmca_error *e)
{
        char top[PATH_MAX];
        struct stat st;
        int rc;

        if ((rc = pathf(top, sizeof(top), e, "%s/%s%s", cfg->dir, SERVE_OCSP_DIR, "")) != 0 ||
            (rc = pathf(out, len, e, "%s/%s/%s", top, ca, "")) != 0)
                return rc;
        out[strlen(out) - 1] = '\0'; /* the trailing '/' of the format */
        if (create && ((mkdir(top, 0700) != 0 && errno != EEXIST) ||
                       (mkdir(out, 0700) != 0 && errno != EEXIST)))
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", out, strerror(errno));
        if (lstat(out, &st) != 0)
                return create ? gmca_error_set(e, GMCA_ERR_IO, "%s: %s", out, strerror(errno))
                              : GMCA_ERR_NOTFOUND;
        if (!S_ISDIR(st.st_mode) || (st.st_mode & 077) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "%s: not a directory of mode 0700 (responder keys)", out);
        return 0;
}

/* The store id of CA name, its certificate in *cert (caller frees). */
static int ca_of(struct gmca_store *s, const char *name, int64_t *id, X509 **cert,
                 struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        const uint8_t *p;
        int rc;

        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_ca_get(s, name, &rec, e)) != 0)
                return rc;
        p = rec.cert_der;
        *id = rec.id;
        if (cert != NULL && (*cert = d2i_X509(NULL, &p, (long)rec.cert_len)) == NULL)
                rc = gmca_error_ossl(e, GMCA_ERR_TAMPER, "CA %s: stored certificate", name);
        gmca_ca_rec_clear(&rec);
        return rc;
}

static int64_t time_of(const ASN1_TIME *t)
{
        struct tm tm;

        if (ASN1_TIME_to_tm(t, &tm) != 1)
                return 0;
        return (int64_t)timegm(&tm);
}

/*
 * Check cert and key as a responder of CA ca_id at now and make them a's
 * current one (references taken; a's old ones dropped). 0 or an error.
 */
static int adopt(struct gmca_store *s, struct serve_ocsp_auto *a, int64_t ca_id, X509 *cert,
                 EVP_PKEY *key, int64_t now, struct gmca_error *e)
{
        struct gmca_ocsp_responder r;
        struct gmca_pkey_signer tmp;
        int rc;

        if (X509_check_private_key(cert, key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "OCSP responder of %s: certificate and key do not match",
                                      a->ca);
        }
        if ((rc = gmca_pkey_signer_init(&tmp, key, NULL, e)) != 0 ||
            (rc = gmca_ocsp_responder_init(&r, s, cert, &tmp.base, now, e)) != 0)
                return rc;
        r.signer = NULL; /* tmp goes out of scope: each responder set has its own */
        if (r.ca_id != ca_id) {
                gmca_ocsp_responder_clear(&r);
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "OCSP responder certificate: not issued by CA %s", a->ca);
        }
        X509_up_ref(cert);
        EVP_PKEY_up_ref(key);
        gmca_ocsp_responder_clear(&a->r);
        X509_free(a->cert);
        EVP_PKEY_free(a->key);
        a->r = r;
        a->cert = cert;
        a->key = key;
        a->not_before = time_of(X509_get0_notBefore(cert));
        a->not_after = time_of(X509_get0_notAfter(cert));
        return 0;
}

/* Is name "<hex>.pem"? Its stem into stem. */
static int pem_name(const char *name, char *stem, size_t len)
{
        size_t n = strlen(name);

        if (n < 5 || n - 4 >= len || strcmp(name + n - 4, ".pem") != 0)
                return 0;
        for (size_t i = 0; i < n - 4; i++)
                if (strchr("0123456789ABCDEF", name[i]) == NULL)
                        return 0;
        memcpy(stem, name, n - 4);
        stem[n - 4] = '\0';
        return 1;
}

static X509 *read_cert(const char *path)
{
        FILE *f = fopen(path, "r");
        X509 *x;

        if (f == NULL)
                return NULL;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        gmca_ossl_clear();
        return x;
}

int serve_ocsp_auto_load(const struct gmca_serve_config *cfg, struct gmca_store *s,
                         struct serve_ocsp_auto *a, int64_t now, struct gmca_error *e)
{
        char dir[PATH_MAX], path[PATH_MAX], stem[GMCA_SERIAL_HEX_MAX], best[GMCA_SERIAL_HEX_MAX];
        int64_t ca_id = 0, best_nb = -1;
        struct dirent *d;
        DIR *dh;
        int rc, seen = 0;

        if ((rc = ca_of(s, a->ca, &ca_id, NULL, e)) != 0)
                return rc;
        if ((rc = ca_dir(cfg, a->ca, dir, sizeof(dir), 0, e)) != 0)
                return rc == GMCA_ERR_NOTFOUND ? 0 : rc;
        if ((dh = opendir(dir)) == NULL)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", dir, strerror(errno));
        /* The newest certificate valid now; only it has its key opened (PBKDF2 is slow). */
        while ((d = readdir(dh)) != NULL && seen++ < SERVE_OCSP_FILES_MAX) {
                struct gmca_error le = {0};
                static const struct gmca_signer none = {NULL, NULL};
                struct gmca_ocsp_responder r;
                X509 *x;

                if (!pem_name(d->d_name, stem, sizeof(stem)) ||
                    pathf(path, sizeof(path), &le, "%s/%s%s", dir, d->d_name, "") != 0 ||
                    (x = read_cert(path)) == NULL)
                        continue;
                /* Only checked here, never used to sign: no key is opened yet. */
                if (gmca_ocsp_responder_init(&r, s, x, &none, now, &le) == 0) {
                        int64_t nb = time_of(X509_get0_notBefore(x));

                        if (r.ca_id == ca_id && nb > best_nb) {
                                best_nb = nb;
                                gmca_strlcpy(best, stem, sizeof(best));
                        }
                        gmca_ocsp_responder_clear(&r);
                }
                X509_free(x);
        }
        closedir(dh);
        if (best_nb < 0)
                return 0;
        {
                X509 *x = NULL;
                EVP_PKEY *k = NULL;

                if ((rc = pathf(path, sizeof(path), e, "%s/%s.%s", dir, best, "pem")) == 0 &&
                    (x = read_cert(path)) == NULL)
                        rc = gmca_error_set(e, GMCA_ERR_IO, "%s: unreadable", path);
                if (rc == 0 &&
                    (rc = pathf(path, sizeof(path), e, "%s/%s.%s", dir, best, "key")) == 0 &&
                    (k = gmca_key_read(path, cfg->ocsp_pass, cfg->ocsp_pass_len, e)) == NULL)
                        rc = e->code ? e->code : GMCA_ERR_IO;
                if (rc == 0)
                        rc = adopt(s, a, ca_id, x, k, now, e);
                X509_free(x);
                EVP_PKEY_free(k);
                return rc;
        }
}

int64_t serve_ocsp_auto_due(const struct gmca_serve_config *cfg, const struct serve_ocsp_auto *a)
{
        int64_t before;

        if (a->cert == NULL)
                return 0;
        before = cfg->ocsp_rotate_before > 0 ? cfg->ocsp_rotate_before
                                             : (a->not_after - a->not_before) / 3;
        return a->not_after - before;
}

/* C and O of the CA's subject, CN "<ca> OCSP Responder"; DER CSR signed with the ID. */
static int make_csr(EVP_PKEY *key, X509 *ca, const char *name, uint8_t **der, size_t *len,
                    struct gmca_error *e)
{
        X509_NAME *cas = X509_get_subject_name(ca), *sub = X509_NAME_new();
        X509_REQ *req = X509_REQ_new();
        EVP_MD_CTX *mctx = NULL;
        char cn[GMCA_NAME_MAX + 32];
        unsigned char *out = NULL;
        int n, rc = GMCA_ERR_NOMEM;

        if (sub == NULL || req == NULL)
                goto out;
        for (int i = 0; i < X509_NAME_entry_count(cas); i++) {
                X509_NAME_ENTRY *ent = X509_NAME_get_entry(cas, i);
                int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ent));

                if ((nid == NID_countryName || nid == NID_organizationName) &&
                    X509_NAME_add_entry(sub, ent, -1, 0) != 1)
                        goto out;
        }
        snprintf(cn, sizeof(cn), "%s OCSP Responder", name);
        if (X509_NAME_add_entry_by_NID(sub, NID_commonName, MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0) != 1 ||
            X509_REQ_set_subject_name(req, sub) != 1 || X509_REQ_set_pubkey(req, key) != 1)
                goto out;
        if ((mctx = gmca_sm2_sign_ctx(key, NULL, e)) == NULL) {
                rc = e->code ? e->code : GMCA_ERR_CRYPTO;
                goto out;
        }
        if (X509_REQ_sign_ctx(req, mctx) <= 0 || (n = i2d_X509_REQ(req, &out)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "OCSP responder: CSR not made");
                goto out;
        }
        *der = out;
        *len = (size_t)n;
        rc = 0;
out:
        if (rc == GMCA_ERR_NOMEM)
                gmca_error_set(e, rc, "out of memory for the responder CSR");
        EVP_MD_CTX_free(mctx);
        X509_REQ_free(req);
        X509_NAME_free(sub);
        gmca_ossl_clear();
        return rc;
}

static int write_cert(const char *path, X509 *x, struct gmca_error *e)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), ok;
        FILE *f;

        if (fd < 0)
                return gmca_error_set(e, errno == EEXIST ? GMCA_ERR_EXISTS : GMCA_ERR_IO, "%s: %s",
                                      path, strerror(errno));
        if ((f = fdopen(fd, "w")) == NULL) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        }
        ok = PEM_write_X509(f, x) == 1;
        ok = fclose(f) == 0 && ok;
        gmca_ossl_clear();
        if (!ok) {
                unlink(path);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: cannot write", path);
        }
        return 0;
}

int serve_ocsp_auto_renew(const struct gmca_serve_config *cfg, struct gmca_engine_ra *ra,
                          struct gmca_store *s, struct serve_ocsp_auto *a, struct gmca_error *e)
{
        char dir[PATH_MAX], path[PATH_MAX], serial[GMCA_SERIAL_HEX_MAX];
        EVP_PKEY *key = NULL;
        X509 *ca = NULL, *cert = NULL;
        uint8_t *csr = NULL, *der = NULL;
        const uint8_t *p;
        size_t csrlen = 0, derlen = 0;
        int64_t ca_id = 0;
        int rc;

        if ((rc = ca_of(s, a->ca, &ca_id, &ca, e)) != 0 ||
            (rc = ca_dir(cfg, a->ca, dir, sizeof(dir), 1, e)) != 0)
                goto out;
        if ((key = gmca_sm2_keygen(e)) == NULL) {
                rc = e->code ? e->code : GMCA_ERR_CRYPTO;
                goto out;
        }
        if ((rc = make_csr(key, ca, a->ca, &csr, &csrlen, e)) != 0 ||
            (rc = gmca_engine_ra_ocsp(ra, a->ca, csr, csrlen, cfg->ocsp_cert_seconds, &der, &derlen,
                                      e)) != 0)
                goto out;
        p = der;
        if ((cert = d2i_X509(NULL, &p, (long)derlen)) == NULL || p != der + derlen) {
                rc = gmca_error_ossl(e, GMCA_ERR_INVALID, "engine: reply is not a certificate");
                goto out;
        }
        if ((rc = gmca_serial_hex(cert, serial, sizeof(serial))) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "engine: certificate serial");
                goto out;
        }
        /* Checked before anything is written: a bad certificate leaves no file. */
        {
                struct serve_ocsp_auto probe = {0};

                gmca_strlcpy(probe.ca, a->ca, sizeof(probe.ca));
                rc = adopt(s, &probe, ca_id, cert, key, (int64_t)gmca_now(), e);
                serve_ocsp_auto_clear(&probe);
                if (rc != 0)
                        goto out;
        }
        if ((rc = pathf(path, sizeof(path), e, "%s/%s.%s", dir, serial, "key")) != 0 ||
            (rc = gmca_key_write(path, key, cfg->ocsp_pass, cfg->ocsp_pass_len, e)) != 0 ||
            (rc = pathf(path, sizeof(path), e, "%s/%s.%s", dir, serial, "pem")) != 0 ||
            (rc = write_cert(path, cert, e)) != 0)
                goto out;
        rc = adopt(s, a, ca_id, cert, key, (int64_t)gmca_now(), e);
out:
        OPENSSL_free(csr);
        free(der);
        X509_free(ca);
        X509_free(cert);
        EVP_PKEY_free(key); /* EC keys clear their scalar */
        return rc;
}

void serve_ocsp_auto_clear(struct serve_ocsp_auto *a)
{
        if (a == NULL)
                return;
        gmca_ocsp_responder_clear(&a->r);
        X509_free(a->cert);
        EVP_PKEY_free(a->key);
        a->cert = NULL;
        a->key = NULL;
        a->not_before = a->not_after = 0;
}

/* ---- CA-signed: the engine's op 'O' ---- */

static int esign(void *arg, const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX],
                 size_t *siglen, struct gmca_error *e)
{
        struct serve_ocsp_engine_signer *s = arg;
        int rc;

        pthread_mutex_lock(&s->lock);
        if (s->client == NULL && (s->client = gmca_engine_connect(s->sock, e)) == NULL)
                rc = e->code ? e->code : GMCA_ERR_STATE;
        else
                rc = gmca_engine_sign_ocsp(s->client, s->ca, tbs, len, sig, siglen, e);
        if (rc == GMCA_ERR_IO || rc == GMCA_ERR_STATE) {
                gmca_engine_disconnect(s->client);
                s->client = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        return rc;
}

int serve_ocsp_engine_signer_init(struct serve_ocsp_engine_signer *s, const char *dir,
                                  const char *ca, struct gmca_error *e)
{
        memset(s, 0, sizeof(*s));
        if (strlen(ca) >= sizeof(s->ca))
                return gmca_error_set(e, GMCA_ERR_INVALID, "CA name too long");
        gmca_strlcpy(s->ca, ca, sizeof(s->ca));
        if (pathf(s->sock, sizeof(s->sock), e, "%s/%s%s", dir, GMCA_ENGINE_SOCKET, "") != 0)
                return GMCA_ERR_INVALID;
        pthread_mutex_init(&s->lock, NULL);
        s->base.sign = esign;
        s->base.arg = s;
        return 0;
}

void serve_ocsp_engine_signer_clear(struct serve_ocsp_engine_signer *s)
{
        if (s == NULL || s->base.sign == NULL)
                return;
        gmca_engine_disconnect(s->client);
        pthread_mutex_destroy(&s->lock);
        memset(s, 0, sizeof(*s));
}
