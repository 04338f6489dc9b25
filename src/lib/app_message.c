/*
 * app_message: include/gmca/message.h over gmt0010 and crypto. Keys and
 * certificates arrive as bytes: certificates through the CA's strict
 * intake (gmca_cert_parse), keys through OpenSSL's decoders (PEM or DER,
 * plain or encrypted, SM2 only, capped); results are copied out into
 * malloc'ed buffers and handles so that no OpenSSL type or allocator
 * crosses the interface.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gmca/message.h"

#include "app_internal.h"
#include "crypto.h"
#include "err.h"
#include "gmt0010.h"
#include "util.h"
#include "x509.h"

_Static_assert(GMCA_MESSAGE_MAX == GMCA_GMT0010_MAX &&
                   GMCA_MESSAGE_RECIPIENTS_MAX == GMCA_GMT0010_RECIPS_MAX &&
                   GMCA_SM2_RAW_MAX == GMCA_SM2CIPHER_MAX,
               "message caps differ");

struct gmca_message {
        struct gmca_message_info info;
        uint8_t *content;
        size_t content_len;
        struct gmca_certificate *signer;
};

/* A malloc'ed copy of buf (at least one byte, so empty content has a buffer). */
static int give(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        uint8_t *p = malloc(len > 0 ? len : 1);

        if (p == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (len > 0)
                memcpy(p, buf, len);
        *out = p;
        *outlen = len;
        return 0;
}

static X509 *cert_in(const void *data, size_t len, const char *what, struct gmca_error *e)
{
        if (data == NULL || len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: no certificate given", what);
                return NULL;
        }
        return gmca_cert_parse(data, len, e);
}

/* The SM2 private key of c (and its certificate when present or need_cert). */
static EVP_PKEY *key_in(const struct gmca_credential *c, int need_cert, X509 **cert,
                        struct gmca_error *e)
{
        OSSL_DECODER_CTX *dctx = NULL;
        EVP_PKEY *key = NULL;
        const uint8_t *p;
        size_t left;

        if (c != NULL && c->token_key != NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "private key: a key in a token only signs; decryption needs a "
                               "key file (the device interface has no SM2 decryption)");
                return NULL;
        }
        if (c == NULL || c->private_key == NULL || c->private_key_len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "private key: none given");
                return NULL;
        }
        if (c->private_key_len > GMCA_KEY_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "private key: over %d bytes", GMCA_KEY_MAX);
                return NULL;
        }
        if ((need_cert || c->certificate != NULL) &&
            (*cert = cert_in(c->certificate, c->certificate_len, "credential", e)) == NULL)
                return NULL;
        p = c->private_key;
        left = c->private_key_len;
        if ((dctx = OSSL_DECODER_CTX_new_for_pkey(&key, NULL, NULL, NULL, EVP_PKEY_KEYPAIR, NULL,
                                                  NULL)) == NULL ||
            (c->passphrase != NULL &&
             OSSL_DECODER_CTX_set_passphrase(dctx, (const unsigned char *)c->passphrase,
                                             c->passphrase_len) != 1) ||
            OSSL_DECODER_from_data(dctx, &p, &left) != 1 || key == NULL) {
                gmca_ossl_clear();
                gmca_error_set(e, c->passphrase != NULL ? GMCA_ERR_AUTH : GMCA_ERR_INVALID,
                               "private key: not a PEM or DER SM2 key%s",
                               c->passphrase != NULL ? ", or wrong passphrase"
                                                     : " (an encrypted key needs the passphrase)");
                goto fail;
        }
        /* Only the whitespace after a PEM block may be left over. */
        for (; left > 0; left--, p++)
                if (!isspace(*p)) {
                        gmca_error_set(e, GMCA_ERR_INVALID, "private key: trailing bytes");
                        goto fail;
                }
        if (gmca_sm2_is_sm2(key, e) != 0)
                goto fail;
        if (*cert != NULL &&
            (X509_get0_pubkey(*cert) == NULL || EVP_PKEY_eq(X509_get0_pubkey(*cert), key) != 1)) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "private key: does not belong to the credential's certificate");
                goto fail;
        }
        OSSL_DECODER_CTX_free(dctx);
        return key;
fail:
        OSSL_DECODER_CTX_free(dctx);
        EVP_PKEY_free(key);
        X509_free(*cert);
        *cert = NULL;
        return NULL;
}

/*
 * The signing key of c: a key file (into *key) or a token key (into ds,
 * *key stays NULL), with the certificate in *cert when present or
 * need_cert. id: the SM2 ID the token signer is made for.
 */
static int signing_key_in(const struct gmca_credential *c, int need_cert, const char *id,
                          X509 **cert, EVP_PKEY **key, struct gmca_device_signer *ds,
                          struct gmca_error *e)
{
        int rc;

        if (c == NULL || c->token_key == NULL)
                return (*key = key_in(c, need_cert, cert, e)) != NULL ? 0 : e->code;
        if (c->private_key != NULL || c->private_key_len != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "credential: a key file and a token key both given");
        if ((need_cert || c->certificate != NULL) &&
            (*cert = cert_in(c->certificate, c->certificate_len, "credential", e)) == NULL)
                return e->code;
        if ((rc = app_token_signer(c->token_key, *cert, id, ds, e)) != 0) {
                X509_free(*cert);
                *cert = NULL;
        }
        return rc;
}

static int certs_in(const struct gmca_bytes *b, size_t n, size_t max, X509 **out, const char *what,
                    struct gmca_error *e)
{
        size_t i;

        if (n > max)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: more than %zu certificates", what,
                                      max);
        if (n > 0 && b == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no certificates given", what);
        for (i = 0; i < n; i++)
                if ((out[i] = cert_in(b[i].data, b[i].len, what, e)) == NULL)
                        return e->code;
        return 0;
}

static void certs_free(X509 **c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                X509_free(c[i]);
}

static void sign_opts(const struct gmca_sign_options *o, struct gmca_gmt0010_sign_opts *so)
{
        memset(so, 0, sizeof(*so));
        if (o == NULL)
                return;
        so->id = o->id;
        so->detached = (o->flags & GMCA_SIGN_DETACHED) != 0;
        so->no_attrs = (o->flags & GMCA_SIGN_NO_ATTRIBUTES) != 0;
        so->no_cert = (o->flags & GMCA_SIGN_NO_CERTIFICATE) != 0;
        so->sm2_with_sm3 = (o->flags & GMCA_SIGN_SM2_WITH_SM3) != 0;
        so->signing_time = (time_t)o->signing_time;
}

static int id_ok(const char *id, struct gmca_error *e)
{
        if (id != NULL && (id[0] == '\0' || strlen(id) > GMCA_SM2_ID_MAX))
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2 ID: 1 to %d bytes",
                                      GMCA_SM2_ID_MAX);
        return 0;
}

/* Sign, or sign and encrypt when recipients is not NULL. */
static int do_sign(const struct gmca_credential *signer, const struct gmca_sign_options *opts,
                   const struct gmca_bytes *recipients, size_t n, const void *data, size_t len,
                   uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        X509 *recips[GMCA_MESSAGE_RECIPIENTS_MAX] = {0};
        struct gmca_gmt0010_sign_opts so;
        struct gmca_device_signer ds;
        struct gmca_error e;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        uint8_t *msg = NULL;
        size_t msglen = 0;
        int rc;

        gmca_error_clear(&e);
        sign_opts(opts, &so);
        if (out == NULL || outlen == NULL || (data == NULL && len > 0)) {
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "GM/T 0010: missing input or output");
                goto out;
        }
        if ((rc = id_ok(so.id, &e)) != 0 ||
            (recipients != NULL && (rc = certs_in(recipients, n, GMCA_MESSAGE_RECIPIENTS_MAX,
                                                  recips, "recipients", &e)) != 0))
                goto out;
        if ((rc = signing_key_in(signer, 1, so.id, &cert, &key, &ds, &e)) != 0)
                goto out;
        if (key == NULL)
                so.signer = &ds.base;
        rc = recipients != NULL ? gmca_gmt0010_sign_encrypt(cert, key, &so, recips, n, data, len,
                                                            &msg, &msglen, &e)
                                : gmca_gmt0010_sign(cert, key, &so, data, len, &msg, &msglen, &e);
        if (rc == 0)
                rc = give(msg, msglen, out, outlen, &e);
out:
        OPENSSL_free(msg);
        certs_free(recips, n <= GMCA_MESSAGE_RECIPIENTS_MAX ? n : 0);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

int gmca_message_sign(const struct gmca_credential *signer, const struct gmca_sign_options *opts,
                      const void *data, size_t len, uint8_t **out, size_t *outlen,
                      struct gmca_status *st)
{
        return do_sign(signer, opts, NULL, 0, data, len, out, outlen, st);
}

int gmca_message_sign_encrypt(const struct gmca_credential *signer,
                              const struct gmca_sign_options *opts,
                              const struct gmca_bytes *recipients, size_t n, const void *data,
                              size_t len, uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        static const struct gmca_bytes none[1];

        return do_sign(signer, opts, recipients != NULL ? recipients : none, n, data, len, out,
                       outlen, st);
}

int gmca_message_encrypt(const struct gmca_bytes *recipients, size_t n, const void *data,
                         size_t len, uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        X509 *recips[GMCA_MESSAGE_RECIPIENTS_MAX] = {0};
        struct gmca_error e;
        uint8_t *msg = NULL;
        size_t msglen = 0;
        int rc;

        gmca_error_clear(&e);
        if (out == NULL || outlen == NULL || (data == NULL && len > 0))
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "EnvelopedData: missing input or output");
        else if ((rc = certs_in(recipients, n, GMCA_MESSAGE_RECIPIENTS_MAX, recips, "recipients",
                                &e)) == 0 &&
                 (rc = gmca_gmt0010_encrypt(recips, n, data, len, &msg, &msglen, &e)) == 0)
                rc = give(msg, msglen, out, outlen, &e);
        OPENSSL_free(msg);
        certs_free(recips, n <= GMCA_MESSAGE_RECIPIENTS_MAX ? n : 0);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

/* A result handle over content (taken over) and signer s (may be NULL). */
static struct gmca_message *result(uint8_t **content, size_t len,
                                   const struct gmca_gmt0010_signer *s, struct gmca_error *e)
{
        struct gmca_message *m = calloc(1, sizeof(*m));
        struct gmca_status cst;
        uint8_t *der = NULL;
        int n;

        if (m == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (give(*content, len, &m->content, &m->content_len, e) != 0)
                goto fail;
        if (s != NULL) {
                if ((n = i2d_X509(s->cert, &der)) <= 0) {
                        gmca_error_ossl(e, GMCA_ERR_INTERNAL, "signer certificate: cannot encode");
                        goto fail;
                }
                m->signer = gmca_certificate_parse(der, (size_t)n, &cst);
                OPENSSL_free(der);
                if (m->signer == NULL) {
                        gmca_error_set(e, cst.code, "signer %s", cst.message);
                        goto fail;
                }
                m->info.signer = m->signer;
                m->info.signer_count = s->nsigners;
                m->info.has_signing_time = s->has_time;
                m->info.signing_time = s->has_time ? (int64_t)s->signing_time : 0;
                m->info.detached = s->detached;
        }
        m->info.content = m->content;
        m->info.content_len = m->content_len;
        return m;
fail:
        gmca_message_free(m);
        return NULL;
}

static int extra_in(const struct gmca_bytes *certs, size_t ncerts, STACK_OF(X509) * *extra,
                    struct gmca_error *e)
{
        X509 *c[GMCA_MESSAGE_CERTIFICATES_MAX] = {0};
        size_t i;
        int rc;

        if ((rc = certs_in(certs, ncerts, GMCA_MESSAGE_CERTIFICATES_MAX, c, "certificates", e)) !=
            0) {
                certs_free(c, ncerts <= GMCA_MESSAGE_CERTIFICATES_MAX ? ncerts : 0);
                return rc;
        }
        if ((*extra = sk_X509_new_null()) == NULL) {
                certs_free(c, ncerts);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        for (i = 0; i < ncerts; i++)
                if (!sk_X509_push(*extra, c[i])) {
                        certs_free(c + i, ncerts - i);
                        return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                }
        return 0;
}

int gmca_message_verify(const void *msg, size_t len, const void *detached, size_t dlen,
                        const struct gmca_bytes *certs, size_t ncerts, const char *id,
                        struct gmca_message **msg_out, struct gmca_status *st)
{
        struct gmca_gmt0010_signer s = {0};
        STACK_OF(X509) *extra = NULL;
        struct gmca_message *m = NULL;
        struct gmca_error e;
        uint8_t *content = NULL;
        size_t clen = 0;
        int rc;

        gmca_error_clear(&e);
        if (msg == NULL || msg_out == NULL || (detached == NULL && dlen > 0))
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "SignedData: missing input or output");
        else if ((rc = id_ok(id, &e)) == 0 && (rc = extra_in(certs, ncerts, &extra, &e)) == 0 &&
                 (rc = gmca_gmt0010_verify(msg, len, detached, dlen, extra, id, &content, &clen, &s,
                                           &e)) == 0) {
                if ((m = result(&content, clen, &s, &e)) == NULL)
                        rc = e.code;
                else
                        *msg_out = m;
        }
        OPENSSL_free(content);
        gmca_gmt0010_signer_clear(&s);
        sk_X509_pop_free(extra, X509_free);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

static int do_decrypt(const struct gmca_credential *recipient, const void *msg, size_t len,
                      int signed_too, const struct gmca_bytes *certs, size_t ncerts, const char *id,
                      struct gmca_message **msg_out, struct gmca_status *st)
{
        struct gmca_gmt0010_signer s = {0};
        STACK_OF(X509) *extra = NULL;
        struct gmca_message *m = NULL;
        struct gmca_error e;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        uint8_t *content = NULL;
        size_t clen = 0;
        int rc;

        gmca_error_clear(&e);
        if (msg == NULL || msg_out == NULL) {
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "GM/T 0010: missing input or output");
                goto out;
        }
        if ((rc = id_ok(id, &e)) != 0 ||
            (signed_too && (rc = extra_in(certs, ncerts, &extra, &e)) != 0))
                goto out;
        if ((key = key_in(recipient, 1, &cert, &e)) == NULL) {
                rc = e.code;
                goto out;
        }
        rc = signed_too ? gmca_gmt0010_decrypt_verify(msg, len, cert, key, extra, id, &content,
                                                      &clen, &s, &e)
                        : gmca_gmt0010_decrypt(msg, len, cert, key, &content, &clen, &e);
        if (rc != 0)
                goto out;
        if ((m = result(&content, clen, signed_too ? &s : NULL, &e)) == NULL)
                rc = e.code;
        else
                *msg_out = m;
out:
        if (content != NULL)
                OPENSSL_clear_free(content, clen);
        gmca_gmt0010_signer_clear(&s);
        sk_X509_pop_free(extra, X509_free);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

int gmca_message_decrypt(const struct gmca_credential *recipient, const void *msg, size_t len,
                         struct gmca_message **msg_out, struct gmca_status *st)
{
        return do_decrypt(recipient, msg, len, 0, NULL, 0, NULL, msg_out, st);
}

int gmca_message_decrypt_verify(const struct gmca_credential *recipient, const void *msg,
                                size_t len, const struct gmca_bytes *certs, size_t ncerts,
                                const char *id, struct gmca_message **msg_out,
                                struct gmca_status *st)
{
        return do_decrypt(recipient, msg, len, 1, certs, ncerts, id, msg_out, st);
}

const struct gmca_message_info *gmca_message_info(const struct gmca_message *m)
{
        return m != NULL ? &m->info : NULL;
}

void gmca_message_free(struct gmca_message *m)
{
        if (m == NULL)
                return;
        gmca_buffer_free(m->content, m->content_len > 0 ? m->content_len : 1);
        gmca_certificate_free(m->signer);
        free(m);
}

int gmca_sm2_raw_sign(const struct gmca_credential *signer, const char *id, const void *data,
                      size_t len, uint8_t **sig, size_t *siglen, struct gmca_status *st)
{
        static const uint8_t none[1];
        struct gmca_device_signer ds;
        struct gmca_error e;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        uint8_t *s = NULL, dsig[GMCA_SM2_SIG_MAX];
        size_t slen = 0;
        int rc;

        gmca_error_clear(&e);
        if (sig == NULL || siglen == NULL || (data == NULL && len > 0))
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "SM2 sign: missing input or output");
        else if (len > GMCA_MESSAGE_MAX)
                rc =
                    gmca_error_set(&e, GMCA_ERR_LIMIT, "SM2 sign: over %u bytes", GMCA_MESSAGE_MAX);
        else if ((rc = id_ok(id, &e)) == 0 &&
                 (rc = signing_key_in(signer, 0, id, &cert, &key, &ds, &e)) == 0) {
                if (key != NULL)
                        rc = gmca_sm2_sign(key, id, data != NULL ? data : none, len, &s, &slen, &e);
                else
                        rc = ds.base.sign(ds.base.arg, data != NULL ? data : none, len, dsig, &slen,
                                          &e);
                if (rc == 0)
                        rc = give(s != NULL ? s : dsig, slen, sig, siglen, &e);
        }
        OPENSSL_free(s);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

int gmca_sm2_raw_verify(const void *certificate, size_t certificate_len, const char *id,
                        const void *data, size_t len, const void *sig, size_t siglen,
                        struct gmca_status *st)
{
        static const uint8_t none[1];
        struct gmca_error e;
        X509 *cert = NULL;
        int rc;

        gmca_error_clear(&e);
        if (sig == NULL || siglen == 0 || (data == NULL && len > 0))
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "SM2 verify: missing input");
        else if (len > GMCA_MESSAGE_MAX || siglen > 256)
                rc = gmca_error_set(&e, GMCA_ERR_LIMIT, "SM2 verify: data or signature too long");
        else if ((rc = id_ok(id, &e)) == 0 &&
                 (cert = cert_in(certificate, certificate_len, "SM2 verify", &e)) == NULL)
                rc = e.code;
        else if (rc == 0)
                rc = gmca_sm2_verify(X509_get0_pubkey(cert), id, data != NULL ? data : none, len,
                                     sig, siglen, &e);
        X509_free(cert);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

static int form_ok(int form, struct gmca_error *e)
{
        if (form != GMCA_SM2_CIPHER_DER && form != GMCA_SM2_CIPHER_C1C3C2)
                return gmca_error_set(e, GMCA_ERR_INVALID, "SM2: unknown ciphertext form %d", form);
        return 0;
}

int gmca_sm2_raw_encrypt(const void *certificate, size_t certificate_len, int form,
                         const void *data, size_t len, uint8_t **out, size_t *outlen,
                         struct gmca_status *st)
{
        struct gmca_error e;
        X509 *cert = NULL;
        uint8_t *ct = NULL, *raw = NULL;
        size_t ctlen = 0, rawlen = 0;
        int rc;

        gmca_error_clear(&e);
        if (out == NULL || outlen == NULL || data == NULL || len == 0)
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "SM2 encrypt: missing input or output");
        else if ((rc = form_ok(form, &e)) == 0 &&
                 (cert = cert_in(certificate, certificate_len, "SM2 encrypt", &e)) == NULL)
                rc = e.code;
        else if (rc == 0 &&
                 (rc = gmca_sm2_encrypt(X509_get0_pubkey(cert), data, len, &ct, &ctlen, &e)) == 0 &&
                 (form == GMCA_SM2_CIPHER_DER ||
                  (rc = gmca_sm2cipher_to_c1c3c2(ct, ctlen, &raw, &rawlen, &e)) == 0))
                rc = raw != NULL ? give(raw, rawlen, out, outlen, &e)
                                 : give(ct, ctlen, out, outlen, &e);
        OPENSSL_free(raw);
        OPENSSL_free(ct);
        X509_free(cert);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}

int gmca_sm2_raw_decrypt(const struct gmca_credential *recipient, int form, const void *in,
                         size_t len, uint8_t **out, size_t *outlen, struct gmca_status *st)
{
        struct gmca_error e;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        uint8_t *der = NULL, *pt = NULL;
        size_t derlen = 0, ptlen = 0;
        int rc;

        gmca_error_clear(&e);
        if (out == NULL || outlen == NULL || in == NULL || len == 0)
                rc = gmca_error_set(&e, GMCA_ERR_INVALID, "SM2 decrypt: missing input or output");
        else if ((rc = form_ok(form, &e)) == 0 && (key = key_in(recipient, 0, &cert, &e)) == NULL)
                rc = e.code;
        else if (rc == 0 &&
                 (form == GMCA_SM2_CIPHER_DER ||
                  (rc = gmca_sm2cipher_from_c1c3c2(in, len, &der, &derlen, &e)) == 0) &&
                 (rc = gmca_sm2_decrypt(key, der != NULL ? der : in, der != NULL ? derlen : len,
                                        &pt, &ptlen, &e)) == 0)
                rc = give(pt, ptlen, out, outlen, &e);
        if (pt != NULL)
                OPENSSL_clear_free(pt, ptlen);
        OPENSSL_free(der);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc != 0 ? app_status(st, &e) : (app_status_ok(st), 0);
}
