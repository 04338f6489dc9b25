/*
 * app_token: the crypto-device half of include/gmca/message.h (issue 8
 * item 6). A token is a device of device.h (a vendor SDF library through
 * dlopen, or the built-in software device) with one session; a token key
 * is one key index of it, unlocked once with its access password, which is
 * not kept. Signing goes through gmca_device_signer (Z from the
 * certificate's key and the ID, e = SM3(Z || M) here, SDF_InternalSign_ECC
 * in the device), the same path the CA signs certificates on. The token
 * counts its handles so that closing it before its keys is harmless.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gmca/message.h"

#include "app_internal.h"
#include "crypto.h"
#include "device.h"
#include "err.h"
#include "util.h"

_Static_assert(GMCA_TOKEN_INDEX_MAX == GMCA_DEVICE_MAX_INDEX &&
                   GMCA_TOKEN_PIN_MAX == GMCA_DEVICE_PIN_MAX,
               "token caps differ from the device layer's");

struct gmca_token {
        struct gmca_device *dev;
        unsigned refs; /* the caller's handle (until closed) plus one per open key */
        int closed;
        unsigned char open[GMCA_DEVICE_MAX_INDEX + 1];
};

struct gmca_token_key {
        struct gmca_token *t;
        unsigned index;
        EVP_PKEY *pub;
        char public_key[2 * 65 + 1];
};

static void token_unref(struct gmca_token *t)
{
        if (--t->refs > 0)
                return;
        gmca_device_close(t->dev);
        free(t);
}

struct gmca_token *gmca_token_open(const char *sdf_library, const char *config,
                                   struct gmca_status *st)
{
        struct gmca_device_conf conf;
        struct gmca_token *t = NULL;
        struct gmca_error e;
        int builtin = sdf_library == NULL || sdf_library[0] == '\0';

        gmca_error_clear(&e);
        if (builtin && (config == NULL || config[0] == '\0')) {
                gmca_error_set(&e, GMCA_ERR_INVALID,
                               "token: the built-in software device needs its key store "
                               "directory as config");
                goto fail;
        }
        if ((t = calloc(1, sizeof(*t))) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        memset(&conf, 0, sizeof(conf));
        conf.library = builtin ? NULL : sdf_library;
        conf.config = config;
        if ((t->dev = gmca_device_open(&conf, &e)) == NULL)
                goto fail;
        t->refs = 1;
        app_status_ok(st);
        return t;
fail:
        free(t);
        app_status(st, &e);
        return NULL;
}

void gmca_token_close(struct gmca_token *t)
{
        if (t == NULL || t->closed)
                return;
        t->closed = 1;
        token_unref(t);
}

const char *gmca_token_description(const struct gmca_token *t)
{
        return t != NULL ? gmca_device_description(t->dev) : "";
}

/* 04||x||y of pub in lower-case hex into out (131 bytes). */
static int point_hex(EVP_PKEY *pub, char out[2 * 65 + 1], struct gmca_error *e)
{
        uint8_t xy[64];
        int rc;

        if ((rc = gmca_sm2_pub_xy(pub, xy, e)) != 0)
                return rc;
        memcpy(out, "04", 2);
        for (size_t i = 0; i < sizeof(xy); i += GMCA_SM3_LEN)
                gmca_hex(xy + i, GMCA_SM3_LEN, out + 2 + 2 * i);
        return 0;
}

struct gmca_token_key *gmca_token_key_open(struct gmca_token *t, unsigned index, const char *pin,
                                           size_t pin_len, struct gmca_status *st)
{
        struct gmca_token_key *k = NULL;
        struct gmca_error e;

        gmca_error_clear(&e);
        if (t == NULL || t->closed) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "token key: no open token");
                goto fail;
        }
        if (index < 1 || index > GMCA_DEVICE_MAX_INDEX) {
                gmca_error_set(&e, GMCA_ERR_INVALID, "token key: index %u not in 1..%d", index,
                               GMCA_DEVICE_MAX_INDEX);
                goto fail;
        }
        if (t->open[index]) {
                gmca_error_set(&e, GMCA_ERR_INVALID,
                               "token key: index %u is already open on this token", index);
                goto fail;
        }
        if ((k = calloc(1, sizeof(*k))) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        if ((k->pub = gmca_device_public_key(t->dev, index, &e)) == NULL ||
            point_hex(k->pub, k->public_key, &e) != 0)
                goto fail;
        if (gmca_device_unlock(t->dev, index, (const uint8_t *)pin, pin_len, &e) != 0)
                goto fail;
        k->t = t;
        k->index = index;
        t->open[index] = 1;
        t->refs++;
        app_status_ok(st);
        return k;
fail:
        if (k != NULL)
                EVP_PKEY_free(k->pub);
        free(k);
        app_status(st, &e);
        return NULL;
}

const char *gmca_token_key_public_key(const struct gmca_token_key *k)
{
        return k != NULL ? k->public_key : "";
}

void gmca_token_key_free(struct gmca_token_key *k)
{
        if (k == NULL)
                return;
        gmca_device_lock(k->t->dev, k->index);
        k->t->open[k->index] = 0;
        token_unref(k->t);
        EVP_PKEY_free(k->pub);
        free(k);
}

int app_token_signer(struct gmca_token_key *k, X509 *cert, const char *id,
                     struct gmca_device_signer *s, struct gmca_error *e)
{
        EVP_PKEY *pub = k->pub;

        if (cert != NULL) {
                if ((pub = X509_get0_pubkey(cert)) == NULL || EVP_PKEY_eq(pub, k->pub) != 1) {
                        gmca_ossl_clear();
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "token key: the key at index %u does not belong "
                                              "to the credential's certificate",
                                              k->index);
                }
        }
        return gmca_device_signer_init(s, k->t->dev, k->index, pub, id, e);
}
