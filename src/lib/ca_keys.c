/*
 * CA keys: where they live (the crypto device), who may wake them (the
 * custodians, m of n), and who signs with them once awake (this process, or
 * the CA engine). Key hierarchy:
 *
 *   custodians' shares --Shamir--> master key --SM4-GCM--> key PIN --device--> CA keys
 *
 * The master key exists only while custodians are present; the key PIN
 * (random, 32 bytes) is the device password of every CA key and is stored
 * only wrapped under the master key, in the store's "custody" metadata with
 * the public facts of the share set. Changing custodians re-wraps the key
 * PIN under a new master key, in one transaction; the device is untouched.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "ca_internal.h"
#include "ca_ocsp.h"
#include "crypto.h"
#include "km.h"
#include "ra.h"
#include "util.h"

#define WRAP_LABEL "gmca key-pin wrap v1"
#define WRAP_AAD "gmca-keypin-v1"
#define WRAPPED_LEN (GMCA_SM4_GCM_IV_LEN + KEYPIN_LEN + GMCA_SM4_GCM_TAG_LEN)
#define CUSTODY_JSON_MAX 16384
#define SECRETS_LEN (GMCA_MASTER_LEN + KEYPIN_LEN)
#define AUTHZ_LABEL "gmca engine authorisation v1"
#define PII_LABEL "gmca pii key v1"
#define OPKEY_LABEL "gmca operator record v1"
#define ENGINE_KEYS_LEN (GMCA_ENGINE_AUTHZ_LEN + GMCA_ENGINE_PII_KEY_LEN + GMCA_OP_KEY_LEN)

/* ---- small facts ---- */

int ca_device_conf(const char *dir, const struct ca_config *cfg, char *config, size_t len,
                   struct gmca_device_conf *out, struct gmca_error *e)
{
        int rc;

        memset(out, 0, sizeof(*out));
        out->library = cfg->device_library[0] != '\0' ? cfg->device_library : NULL;
        if (cfg->device_config[0] == '/')
                rc = ca_pathf(config, len, e, "%s", cfg->device_config);
        else if (cfg->device_config[0] != '\0')
                rc = ca_pathf(config, len, e, "%s/%s", dir, cfg->device_config);
        else
                rc = ca_pathf(config, len, e, "%s/keys/device", dir);
        if (rc != 0)
                return rc;
        out->config = config;
        return 0;
}

unsigned ca_key_index(const struct gmca_ca_rec *rec)
{
        const char *p = rec->key_file;
        unsigned long v;
        char *end;

        if (strncmp(p, KEY_REF_PREFIX, strlen(KEY_REF_PREFIX)) != 0)
                return 0;
        p += strlen(KEY_REF_PREFIX);
        if (*p < '1' || *p > '9')
                return 0;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno != 0 || *end != '\0' || v > GMCA_DEVICE_MAX_INDEX)
                return 0;
        return (unsigned)v;
}

int ca_state_issues(const char *state)
{
        return strcmp(state, GMCA_KEY_ACTIVE) == 0;
}

int ca_state_signs_crls(const char *state)
{
        return strcmp(state, GMCA_KEY_ACTIVE) == 0 || strcmp(state, GMCA_KEY_SUPERSEDED) == 0 ||
               strcmp(state, GMCA_KEY_COMPROMISED) == 0;
}

int ca_need_signer(struct gmca_ctx *c, struct ca_slot *ca, int for_cert, struct gmca_error *e)
{
        if (for_cert && !ca_state_issues(ca->rec.key_state))
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "CA %s: its key is %s and issues no more certificates "
                                      "(CPS §6.8)",
                                      ca->rec.name, ca->rec.key_state);
        if (!ca_state_signs_crls(ca->rec.key_state))
                return gmca_error_set(e, GMCA_ERR_STATE, "CA %s: its key is %s and signs nothing",
                                      ca->rec.name, ca->rec.key_state);
        if (ca->signer != NULL)
                return 0;
        if (c->engine != NULL) {
                gmca_engine_signer_init(&ca->esigner, c->engine, ca->rec.name);
                ca->esigner.authz = c->engine_keys; /* the custodians' authorisation, if given */
                ca->signer = &ca->esigner.base;
                return 0;
        }
        return gmca_error_set(e, GMCA_ERR_STATE,
                              "CA %s is not activated: run gmca activate with the custodians' "
                              "shares",
                              ca->rec.name);
}

/* ---- custody metadata ---- */

static int hex_field(json_t *root, const char *key, uint8_t *out, size_t len, struct gmca_error *e)
{
        json_t *v = json_object_get(root, key);
        size_t got = 0;

        if (!json_is_string(v) || json_string_length(v) != 2 * len ||
            gmca_unhex(json_string_value(v), out, len, &got) != 0 || got != len)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "custody record: bad \"%s\"", key);
        return 0;
}

int ca_custody_load(struct gmca_ctx *c, struct ca_custody *m, struct gmca_error *e)
{
        static const char *const known[] = {"version",   "installation", "set",
                                            "threshold", "count",        "check",
                                            "wrapped",   "custodians",   "created"};
        char *buf = NULL;
        json_t *root = NULL, *v;
        json_error_t jerr;
        const char *key;
        int rc;

        memset(m, 0, sizeof(*m));
        if ((buf = malloc(CUSTODY_JSON_MAX)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if ((rc = gmca_store_meta_get(c->store, META_CUSTODY, buf, CUSTODY_JSON_MAX, e)) != 0) {
                if (rc == GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(e);
                        rc = gmca_error_set(e, GMCA_ERR_STATE,
                                            "%s: no key custody on record (made before key "
                                            "ceremonies existed?)",
                                            c->dir);
                }
                goto out;
        }
        rc = GMCA_ERR_TAMPER;
        if ((root = json_loads(buf, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
            !json_is_object(root)) {
                gmca_error_set(e, rc, "custody record: not a JSON object");
                goto out;
        }
        if ((key = ca_json_unknown_key(root, known, sizeof(known) / sizeof(known[0]))) != NULL) {
                gmca_error_set(e, rc, "custody record: unknown key \"%s\"", key);
                goto out;
        }
        if (hex_field(root, "installation", m->set.installation, GMCA_CUSTODY_ID_LEN, e) != 0 ||
            hex_field(root, "set", m->set.set_id, GMCA_CUSTODY_ID_LEN, e) != 0 ||
            hex_field(root, "check", m->check, sizeof(m->check), e) != 0 ||
            hex_field(root, "wrapped", m->wrapped, sizeof(m->wrapped), e) != 0)
                goto out;
        v = json_object_get(root, "threshold");
        if (!json_is_integer(v) || json_integer_value(v) < 2 ||
            json_integer_value(v) > GMCA_CUSTODY_MAX) {
                gmca_error_set(e, rc, "custody record: bad threshold");
                goto out;
        }
        m->set.threshold = (unsigned)json_integer_value(v);
        v = json_object_get(root, "count");
        if (!json_is_integer(v) || json_integer_value(v) < m->set.threshold ||
            json_integer_value(v) > GMCA_CUSTODY_MAX) {
                gmca_error_set(e, rc, "custody record: bad count");
                goto out;
        }
        m->set.count = (unsigned)json_integer_value(v);
        v = json_object_get(root, "created");
        m->created = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
        v = json_object_get(root, "custodians");
        if (!json_is_array(v) || json_array_size(v) != m->set.count) {
                gmca_error_set(e, rc, "custody record: bad custodians");
                goto out;
        }
        for (size_t i = 0; i < m->set.count; i++) {
                json_t *n = json_array_get(v, i);

                if (!json_is_string(n) || json_string_length(n) == 0 ||
                    json_string_length(n) >= GMCA_CUSTODIAN_NAME_MAX) {
                        gmca_error_set(e, rc, "custody record: bad custodian name");
                        goto out;
                }
                gmca_strlcpy(m->names[i], json_string_value(n), sizeof(m->names[i]));
        }
        rc = 0;
out:
        json_decref(root);
        free(buf);
        return rc;
}

static json_t *hexj(const uint8_t *v, size_t len)
{
        char buf[2 * WRAPPED_LEN + 1];

        gmca_hex_upper(v, len, buf);
        return json_string(buf);
}

/* Inside a transaction: record m as the custody of this state directory. */
int ca_custody_store(struct gmca_store *s, const struct ca_custody *m, struct gmca_error *e)
{
        json_t *root, *names;
        char *text;
        int rc;

        if ((names = json_array()) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < m->set.count; i++)
                json_array_append_new(names, json_string(m->names[i]));
        root =
            json_pack("{s:i, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:I}", "version", 1, "installation",
                      hexj(m->set.installation, GMCA_CUSTODY_ID_LEN), "set",
                      hexj(m->set.set_id, GMCA_CUSTODY_ID_LEN), "threshold", (int)m->set.threshold,
                      "count", (int)m->set.count, "check", hexj(m->check, sizeof(m->check)),
                      "wrapped", hexj(m->wrapped, sizeof(m->wrapped)), "custodians", names,
                      "created", (json_int_t)m->created);
        if (root == NULL || (text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        rc = gmca_store_meta_set(s, META_CUSTODY, text, e);
        free(text);
        json_decref(root);
        return rc;
}

static int wrap_key(const uint8_t master[GMCA_MASTER_LEN], uint8_t key[GMCA_SM4_KEY_LEN],
                    struct gmca_error *e)
{
        uint8_t mac[GMCA_SM3_LEN];
        int rc;

        rc = gmca_hmac_sm3(master, GMCA_MASTER_LEN, WRAP_LABEL, strlen(WRAP_LABEL), mac, e);
        if (rc == 0)
                memcpy(key, mac, GMCA_SM4_KEY_LEN);
        OPENSSL_cleanse(mac, sizeof(mac));
        return rc;
}

static void wrap_aad(const struct gmca_custody_set *set, uint8_t *aad, size_t *len)
{
        size_t n = strlen(WRAP_AAD);

        memcpy(aad, WRAP_AAD, n);
        memcpy(aad + n, set->installation, GMCA_CUSTODY_ID_LEN);
        memcpy(aad + n + GMCA_CUSTODY_ID_LEN, set->set_id, GMCA_CUSTODY_ID_LEN);
        *len = n + 2 * GMCA_CUSTODY_ID_LEN;
}

int ca_custody_wrap(struct ca_custody *m, const uint8_t master[GMCA_MASTER_LEN],
                    const uint8_t keypin[KEYPIN_LEN], struct gmca_error *e)
{
        uint8_t key[GMCA_SM4_KEY_LEN], aad[64];
        size_t aadlen;
        int rc;

        if ((rc = gmca_custody_check_value(master, m->check, e)) != 0 ||
            (rc = gmca_rand_bytes(m->wrapped, GMCA_SM4_GCM_IV_LEN, e)) != 0 ||
            (rc = wrap_key(master, key, e)) != 0)
                return rc;
        wrap_aad(&m->set, aad, &aadlen);
        rc = gmca_sm4_gcm_encrypt(key, m->wrapped, aad, aadlen, keypin, KEYPIN_LEN,
                                  m->wrapped + GMCA_SM4_GCM_IV_LEN,
                                  m->wrapped + GMCA_SM4_GCM_IV_LEN + KEYPIN_LEN, e);
        OPENSSL_cleanse(key, sizeof(key));
        return rc;
}

int ca_custody_unwrap(const struct ca_custody *m, const uint8_t master[GMCA_MASTER_LEN],
                      uint8_t keypin[KEYPIN_LEN], struct gmca_error *e)
{
        uint8_t check[32], key[GMCA_SM4_KEY_LEN], aad[64];
        size_t aadlen;
        int rc;

        if ((rc = gmca_custody_check_value(master, check, e)) != 0)
                return rc;
        if (CRYPTO_memcmp(check, m->check, sizeof(check)) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "custody: the shares given do not open this CA's master key");
        if ((rc = wrap_key(master, key, e)) != 0)
                return rc;
        wrap_aad(&m->set, aad, &aadlen);
        rc = gmca_sm4_gcm_decrypt(key, m->wrapped, aad, aadlen, m->wrapped + GMCA_SM4_GCM_IV_LEN,
                                  KEYPIN_LEN, m->wrapped + GMCA_SM4_GCM_IV_LEN + KEYPIN_LEN, keypin,
                                  e);
        OPENSSL_cleanse(key, sizeof(key));
        if (rc != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "custody: the wrapped key PIN does not decrypt (altered "
                                      "custody record)");
        }
        return 0;
}

/* ---- secrets held by a context ---- */

static int secrets_alloc(struct gmca_ctx *c, struct gmca_error *e)
{
        if (c->secrets != NULL)
                return 0;
        if (!CRYPTO_secure_malloc_initialized())
                (void)CRYPTO_secure_malloc_init(1 << 16, 32); /* not every system lets us lock */
        if ((c->secrets = OPENSSL_secure_zalloc(SECRETS_LEN)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of secure memory");
        return 0;
}

void ca_forget_secrets(struct gmca_ctx *c)
{
        if (c == NULL || c->secrets == NULL)
                return;
        OPENSSL_secure_clear_free(c->secrets, SECRETS_LEN);
        c->secrets = NULL;
}

void gmca_ctx_forget_secrets(struct gmca_ctx *c)
{
        if (c == NULL || c->secrets == NULL)
                return;
        /* The KM link's key opens with the key PIN: the engine opens it now or never (km.h). */
        if (c->km == NULL) {
                gmca_error_clear(&c->km_error);
                if ((c->km = gmca_ca_km_link(c, &c->km_error)) != NULL ||
                    c->km_error.code == GMCA_ERR_NOTFOUND)
                        gmca_error_clear(&c->km_error);
        }
        ca_forget_secrets(c);
}

int ca_have_secrets(const struct gmca_ctx *c)
{
        return c->secrets != NULL && c->dev != NULL;
}

void gmca_ctx_set_direct_issue(struct gmca_ctx *c, int on)
{
        c->direct_issue = on != 0;
}

static void engine_keys_wipe(struct gmca_ctx *c)
{
        if (c->engine_keys != NULL)
                OPENSSL_secure_clear_free(c->engine_keys, ENGINE_KEYS_LEN);
        c->engine_keys = NULL;
        c->engine_pii = 0;
}

/*
 * The CA engine's keys from the open secrets (engine.h): K_authz from the
 * master key, with pii K_pii from the key PIN, and K_op (auth.h) from the
 * key PIN. The key PIN outlives custodian changes, so values sealed under
 * K_pii stay readable and operator records tagged under K_op stay valid
 * after a resplit (which draws a new master key, hence a new K_authz).
 */
static int engine_keys_derive(struct gmca_ctx *c, int pii, struct gmca_error *e)
{
        uint8_t mac[GMCA_SM3_LEN];
        int rc;

        if (c->secrets == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE, "no custodians' secrets open");
        if (c->engine_keys == NULL &&
            (c->engine_keys = OPENSSL_secure_zalloc(ENGINE_KEYS_LEN)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of secure memory");
        if ((rc = gmca_hmac_sm3(CTX_MASTER(c), GMCA_MASTER_LEN, AUTHZ_LABEL, strlen(AUTHZ_LABEL),
                                CTX_AUTHZ(c), e)) != 0)
                return rc;
        if ((rc = gmca_hmac_sm3(CTX_KEYPIN(c), KEYPIN_LEN, OPKEY_LABEL, strlen(OPKEY_LABEL), mac,
                                e)) != 0)
                return rc;
        memcpy(CTX_OPKEY(c), mac, GMCA_OP_KEY_LEN);
        OPENSSL_cleanse(mac, sizeof(mac));
        if (pii) {
                rc = gmca_hmac_sm3(CTX_KEYPIN(c), KEYPIN_LEN, PII_LABEL, strlen(PII_LABEL), mac, e);
                if (rc == 0) {
                        memcpy(CTX_PII(c), mac, GMCA_ENGINE_PII_KEY_LEN);
                        c->engine_pii = 1;
                }
                OPENSSL_cleanse(mac, sizeof(mac));
        }
        return rc;
}

/* ---- activation ---- */

static int unlock_slot(struct gmca_ctx *c, struct ca_slot *ca, struct gmca_error *e)
{
        EVP_PKEY *pub = NULL;
        const char *id = ca->rec.sm2_id[0] ? ca->rec.sm2_id : NULL;
        int rc;

        if ((ca->key_index = ca_key_index(&ca->rec)) == 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: bad key reference \"%s\"",
                                      ca->rec.name, ca->rec.key_file);
        if ((pub = gmca_device_public_key(c->dev, ca->key_index, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if (EVP_PKEY_eq(pub, X509_get0_pubkey(ca->cert)) != 1) {
                EVP_PKEY_free(pub);
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "CA %s: the key at device index %u is not the key of the "
                                      "CA certificate",
                                      ca->rec.name, ca->key_index);
        }
        EVP_PKEY_free(pub);
        if ((rc = gmca_device_unlock(c->dev, ca->key_index, CTX_KEYPIN(c), KEYPIN_LEN, e)) != 0)
                return rc;
        if ((rc = gmca_device_signer_init(&ca->dsigner, c->dev, ca->key_index,
                                          X509_get0_pubkey(ca->cert), id, e)) != 0)
                return rc;
        ca->signer = &ca->dsigner.base;
        return 0;
}

struct names {
        struct gmca_ctx *c;
        char list[MAX_CAS][GMCA_NAME_MAX];
        size_t n;
};

static int collect_name(const struct gmca_ca_rec *r, void *arg)
{
        struct names *ns = arg;

        if (ns->n == MAX_CAS)
                return GMCA_ERR_LIMIT;
        gmca_strlcpy(ns->list[ns->n++], r->name, GMCA_NAME_MAX);
        return 0;
}

int ca_open_device(struct gmca_ctx *c, struct gmca_error *e)
{
        char config[PATH_MAX];
        struct gmca_device_conf dc;
        int rc;

        if (c->dev != NULL)
                return 0;
        if ((rc = ca_device_conf(c->dir, &c->cfg, config, sizeof(config), &dc, e)) != 0)
                return rc;
        if ((c->dev = gmca_device_open(&dc, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_IO;
        return 0;
}

int ca_unlock_all(struct gmca_ctx *c, json_t *unlocked, struct gmca_error *e)
{
        struct names ns = {.c = c};
        int rc;

        if ((rc = gmca_store_ca_list(c->store, collect_name, &ns, e)) != 0)
                return rc == GMCA_ERR_LIMIT ? gmca_error_set(e, rc, "too many CAs") : rc;
        for (size_t i = 0; i < ns.n; i++) {
                struct ca_slot *ca = ca_find(c, ns.list[i], e);

                if (ca == NULL)
                        return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
                if (!ca_state_signs_crls(ca->rec.key_state) || ca->signer != NULL)
                        continue;
                if ((rc = unlock_slot(c, ca, e)) != 0)
                        return rc;
                if (unlocked != NULL)
                        json_array_append_new(unlocked, json_string(ca->rec.name));
        }
        return 0;
}

int ca_open_master(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                   struct ca_custody *m, struct gmca_error *e)
{
        int rc;

        if ((rc = ca_custody_load(c, m, e)) != 0)
                return rc;
        if ((rc = secrets_alloc(c, e)) != 0)
                return rc;
        c->custodians[0] = '\0';
        if ((rc = gmca_custody_combine(&m->set, cust, n, CTX_MASTER(c), c->custodians,
                                       sizeof(c->custodians), e)) != 0 ||
            (rc = ca_custody_unwrap(m, CTX_MASTER(c), CTX_KEYPIN(c), e)) != 0) {
                ca_forget_secrets(c);
                return rc;
        }
        return 0;
}

int gmca_ctx_activate(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                      struct gmca_error *e)
{
        struct ca_custody m;
        struct gmca_audit_event ev;
        json_t *unlocked = NULL;
        char *detail = NULL;
        int rc;

        if ((rc = ca_open_master(c, cust, n, &m, e)) != 0)
                goto fail;
        if ((unlocked = json_array()) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        if ((rc = ca_open_device(c, e)) != 0 || (rc = ca_unlock_all(c, unlocked, e)) != 0 ||
            (rc = engine_keys_derive(c, 1, e)) != 0)
                goto fail;
        detail = ca_detail_json(json_pack("{s:s, s:s, s:O, s:b}", "custodians", c->custodians,
                                          "device", gmca_device_description(c->dev), "cas",
                                          unlocked, "direct_issue", c->direct_issue));
        ev = (struct gmca_audit_event){GMCA_EV_KEY_ACTIVATE, c->actor, 1, "ca", detail};
        if ((rc = gmca_audit_record(c->store, &ev, e)) != 0)
                goto fail;
        free(detail);
        json_decref(unlocked);
        return 0;
fail:
        free(detail);
        json_decref(unlocked);
        ca_release_keys(c);
        ca_forget_secrets(c);
        return ca_reject(c, GMCA_EV_KEY_ACTIVATE, "ca", rc, e);
}

void ca_release_keys(struct gmca_ctx *c)
{
        for (size_t i = 0; i < c->ncas; i++) {
                struct ca_slot *ca = &c->cas[i];

                if (ca->signer == &ca->dsigner.base && c->dev != NULL)
                        gmca_device_lock(c->dev, ca->key_index);
                ca->signer = NULL;
                OPENSSL_cleanse(&ca->dsigner, sizeof(ca->dsigner));
                OPENSSL_cleanse(&ca->esigner, sizeof(ca->esigner));
        }
        gmca_device_close(c->dev);
        c->dev = NULL;
        gmca_engine_disconnect(c->engine);
        c->engine = NULL;
        engine_keys_wipe(c);
}

/* ---- the CA engine ---- */

int gmca_ctx_engine_path(const struct gmca_ctx *c, char *buf, size_t len, struct gmca_error *e)
{
        return ca_pathf(buf, len, e, "%s/%s", c->dir, GMCA_ENGINE_SOCKET);
}

int gmca_ctx_use_engine(struct gmca_ctx *c, struct gmca_error *e)
{
        char path[PATH_MAX];
        int rc;

        if (c->engine != NULL)
                return 0;
        if ((rc = gmca_ctx_engine_path(c, path, sizeof(path), e)) != 0)
                return rc;
        if ((c->engine = gmca_engine_connect(path, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_STATE;
        return 0;
}

/* ---- what the CA engine asks of this context (engine.h policy hooks) ---- */

/* The certificate of serial, if it is an RA's current communication certificate. */
static int hook_ra_cert(void *arg, const char *serial, X509 **out, struct gmca_error *e)
{
        struct gmca_ctx *c = arg;
        struct gmca_cert_rec rec;
        const uint8_t *p;
        X509 *cert = NULL;
        int rc;

        memset(&rec, 0, sizeof(rec));
        rc = gmca_store_cert_get(c->store, serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_AUTH, "RA certificate %s: not issued by this CA",
                                      serial);
        }
        if (rc != 0)
                return rc;
        p = rec.der;
        if ((cert = d2i_X509(NULL, &p, (long)rec.der_len)) == NULL || p != rec.der + rec.der_len) {
                rc = gmca_error_ossl(e, GMCA_ERR_TAMPER,
                                     "certificate %s: stored DER does not parse", serial);
                goto out;
        }
        if ((rc = gmca_ra_cert_check(c, cert, e)) != 0)
                goto out;
        *out = cert;
        cert = NULL;
out:
        X509_free(cert);
        gmca_cert_rec_clear(&rec);
        return rc;
}

static int hook_ra_issue(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                         struct gmca_error *e)
{
        return gmca_ra_issue_approved(arg, app_id, (int64_t)gmca_now(), serial, e);
}

static int hook_ra_recover(void *arg, int64_t id, struct gmca_error *e)
{
        return gmca_ra_recover_approved(arg, id, (int64_t)gmca_now(), e);
}

static int hook_ra_revoke(void *arg, int64_t id, struct gmca_error *e)
{
        return gmca_ra_revoke_approved(arg, id, (int64_t)gmca_now(), e);
}

static int hook_op_disable(void *arg, const char *name, const uint8_t *proof, size_t len,
                           struct gmca_error *e)
{
        return gmca_operator_disable_signed(arg, name, proof, len, (int64_t)gmca_now(), e);
}

/* RA SUBOP ocsp and op 'O' (ca_ocsp.h). */
static int hook_ocsp_issue(void *arg, const char *ca, const uint8_t *csr, size_t len,
                           int64_t seconds, const char *actor, uint8_t **der, size_t *derlen,
                           struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX];

        return gmca_ca_ocsp_issue(arg, ca, csr, len, seconds, actor, der, derlen, serial, e);
}

static int hook_ocsp_check(void *arg, const char *ca, const uint8_t *rd, size_t len,
                           struct gmca_error *e)
{
        return gmca_ca_ocsp_check(arg, ca, rd, len, (int64_t)gmca_now(), e);
}

static void hook_idle(void *arg)
{
        ca_km_notices(arg);
}

static int hook_audit(void *arg, const struct gmca_engine_audit *recs, size_t n,
                      struct gmca_error *e)
{
        struct gmca_ctx *c = arg;
        int rc;

        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return rc;
        for (size_t i = 0; i < n && rc == 0; i++) {
                struct gmca_audit_event ev = {recs[i].event, recs[i].actor, recs[i].success,
                                              recs[i].object[0] ? recs[i].object : NULL,
                                              recs[i].detail};

                rc = gmca_audit_append(c->store, &ev, e);
        }
        if (rc == 0)
                rc = gmca_store_commit(c->store, e);
        if (rc != 0)
                gmca_store_rollback(c->store);
        return rc;
}

int gmca_ctx_serve_engine(struct gmca_ctx *c, int ready_fd, struct gmca_error *e)
{
        struct gmca_engine_key keys[MAX_CAS];
        struct gmca_engine_policy pol;
        uint8_t *subjects[MAX_CAS] = {0};
        char path[PATH_MAX], db[PATH_MAX];
        size_t n = 0;
        int rc;

        if ((rc = gmca_ctx_engine_path(c, path, sizeof(path), e)) != 0)
                goto out;
        for (size_t i = 0; i < c->ncas; i++) {
                struct ca_slot *ca = &c->cas[i];
                int len;

                if (ca->signer != &ca->dsigner.base)
                        continue;
                if ((len = i2d_X509_NAME(X509_get_subject_name(ca->cert), &subjects[n])) <= 0) {
                        rc = gmca_error_ossl(e, GMCA_ERR_INTERNAL, "CA %s: subject", ca->rec.name);
                        goto out;
                }
                keys[n] =
                    (struct gmca_engine_key){ca->rec.name, ca->signer, subjects[n], (size_t)len,
                                             !ca_state_issues(ca->rec.key_state)};
                n++;
        }
        if (n == 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "no CA key is activated");
                goto out;
        }
        /*
         * The engine's records (RA requests, its audit) go through a store
         * connection opened here: this context may have been opened by a
         * parent that forked the engine, and SQLite's state for a connection
         * (its locks above all) does not survive a fork, nor would a second
         * connection opened beside the inherited one be sound. So the
         * inherited connection is closed (it is idle: no transaction
         * crosses the fork) and a fresh one takes its place.
         */
        if ((rc = gmca_ca_store_uri(c->dir, db, sizeof(db), e)) != 0)
                goto out;
        gmca_store_close(c->store);
        if ((c->store = gmca_store_open(db, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_DB;
                goto out;
        }
        memset(&pol, 0, sizeof(pol));
        pol.direct_issue = c->direct_issue;
        pol.authz_key = c->engine_keys;
        pol.pii_key = c->engine_pii ? CTX_PII(c) : NULL;
        pol.ra_cert = hook_ra_cert;
        pol.ra_issue = hook_ra_issue;
        pol.ra_recover = hook_ra_recover;
        pol.ra_revoke = hook_ra_revoke;
        pol.op_disable = hook_op_disable;
        pol.ocsp_issue = hook_ocsp_issue;
        pol.ocsp_check = hook_ocsp_check;
        pol.crl = ca_engine_crl;
        pol.audit = hook_audit;
        pol.idle = hook_idle;
        pol.arg = c;
        rc = gmca_engine_serve(path, keys, n, &pol, ready_fd, e);
out:
        for (size_t i = 0; i < n; i++)
                OPENSSL_free(subjects[i]);
        ca_release_keys(c);
        ca_forget_secrets(c);
        return rc;
}

int gmca_ctx_authorise(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                       struct gmca_error *e)
{
        struct ca_custody m;
        struct gmca_audit_event ev;
        char *detail = NULL;
        int rc;

        if ((rc = gmca_ctx_use_engine(c, e)) != 0) {
                if (rc != GMCA_ERR_STATE)
                        return ca_reject(c, GMCA_EV_KEY_ACTIVATE, "ca", rc, e);
                gmca_error_clear(e); /* no CA engine: the custodians activate here */
                return gmca_ctx_activate(c, cust, n, e);
        }
        if ((rc = ca_open_master(c, cust, n, &m, e)) != 0 ||
            (rc = engine_keys_derive(c, 0, e)) != 0)
                goto fail;
        ca_forget_secrets(c); /* K_authz is all the engine's clients need */
        for (size_t i = 0; i < c->ncas; i++)
                if (c->cas[i].signer == &c->cas[i].esigner.base)
                        c->cas[i].esigner.authz = CTX_AUTHZ(c);
        detail = ca_detail_json(
            json_pack("{s:s, s:s}", "custodians", c->custodians, "authorisation", "engine"));
        ev = (struct gmca_audit_event){GMCA_EV_KEY_ACTIVATE, c->actor, 1, "ca", detail};
        if ((rc = gmca_audit_record(c->store, &ev, e)) != 0)
                goto fail;
        free(detail);
        return 0;
fail:
        free(detail);
        engine_keys_wipe(c);
        for (size_t i = 0; i < c->ncas; i++)
                c->cas[i].esigner.authz = NULL;
        ca_forget_secrets(c);
        return ca_reject(c, GMCA_EV_KEY_ACTIVATE, "ca", rc, e);
}

int gmca_ctx_deactivate_engine(struct gmca_ctx *c, struct gmca_error *e)
{
        struct gmca_audit_event ev;
        int rc;

        if ((rc = gmca_ctx_use_engine(c, e)) != 0 ||
            (rc = gmca_engine_deactivate(c->engine, e)) != 0)
                return ca_reject(c, GMCA_EV_KEY_DEACTIVATE, "ca", rc, e);
        gmca_engine_disconnect(c->engine);
        c->engine = NULL;
        for (size_t i = 0; i < c->ncas; i++)
                c->cas[i].signer = NULL;
        ev = (struct gmca_audit_event){GMCA_EV_KEY_DEACTIVATE, c->actor, 1, "ca", NULL};
        return gmca_audit_record(c->store, &ev, e);
}

/* ---- key ceremonies ---- */

/*
 * A ceremony holds the CA engine's own lock (engine.c) while it runs: no
 * engine can start on the keys it changes, and no second ceremony runs.
 */
static int ceremony_lock(struct gmca_ctx *c, struct gmca_error *e)
{
        char path[PATH_MAX];
        int fd, rc;

        if (c->ceremony_lock != 0)
                return 0;
        if ((rc = ca_pathf(path, sizeof(path), e, "%s/run", c->dir)) != 0)
                return rc;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        if ((rc = ca_pathf(path, sizeof(path), e, "%s/%s.lock", c->dir, GMCA_ENGINE_SOCKET)) != 0)
                return rc;
        if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
                int busy = errno == EWOULDBLOCK;

                close(fd);
                return busy ? gmca_error_set(e, GMCA_ERR_STATE,
                                             "the CA engine is running on %s, or another key "
                                             "ceremony is: a key ceremony needs the keys offline "
                                             "(gmca deactivate first)",
                                             c->dir)
                            : gmca_error_set(e, GMCA_ERR_IO, "lock %s: %s", path, strerror(errno));
        }
        c->ceremony_lock = fd + 1;
        return 0;
}

int ca_ceremony_begin(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                      struct ca_custody *m, struct gmca_error *e)
{
        int rc;

        if ((rc = ceremony_lock(c, e)) != 0)
                return rc;
        ca_release_keys(c);
        if ((rc = ca_open_master(c, cust, n, m, e)) != 0 || (rc = ca_open_device(c, e)) != 0 ||
            (rc = ca_unlock_all(c, NULL, e)) != 0) {
                ca_ceremony_end(c);
                return rc;
        }
        return 0;
}

void ca_ceremony_end(struct gmca_ctx *c)
{
        ca_release_keys(c);
        ca_forget_secrets(c);
        if (c->ceremony_lock != 0) {
                close(c->ceremony_lock - 1); /* releases the lock */
                c->ceremony_lock = 0;
        }
}

static int max_index(const struct gmca_ca_rec *r, void *arg)
{
        unsigned *max = arg, i = ca_key_index(r);

        if (i > *max)
                *max = i;
        return 0;
}

int ca_generate_key(struct gmca_ctx *c, unsigned *index, EVP_PKEY **pub, struct gmca_error *e)
{
        unsigned i = 0;
        int rc;

        *pub = NULL;
        if (!ca_have_secrets(c))
                return gmca_error_set(e, GMCA_ERR_STATE, "no key ceremony in progress");
        if ((rc = gmca_store_ca_list(c->store, max_index, &i, e)) != 0)
                return rc;
        for (i++; i <= GMCA_DEVICE_MAX_INDEX; i++) {
                rc = gmca_device_generate_key(c->dev, i, CTX_KEYPIN(c), KEYPIN_LEN, e);
                if (rc == GMCA_ERR_EXISTS) { /* left by an interrupted ceremony: never reuse */
                        gmca_error_clear(e);
                        continue;
                }
                if (rc != 0)
                        return rc;
                if ((rc = gmca_device_unlock(c->dev, i, CTX_KEYPIN(c), KEYPIN_LEN, e)) != 0)
                        return rc;
                if ((*pub = gmca_device_public_key(c->dev, i, e)) == NULL)
                        return e && e->code ? e->code : GMCA_ERR_CRYPTO;
                *index = i;
                return 0;
        }
        return gmca_error_set(e, GMCA_ERR_LIMIT, "the device has no free key index left");
}

int ca_slot_issuer(struct ca_slot *ca, struct ca_issuer *out, struct gmca_error *e)
{
        if (ca->signer == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE, "CA %s: its key is not unlocked",
                                      ca->rec.name);
        *out = (struct ca_issuer){ca->rec.name, ca->cert, X509_get0_pubkey(ca->cert), ca->signer,
                                  ca->rec.sm2_id[0] ? ca->rec.sm2_id : NULL};
        return 0;
}

X509 *ca_make_ca_cert(struct gmca_ctx *c, const char *profile, const X509_NAME *subject,
                      EVP_PKEY *pub, const struct ca_issuer *is, time_t not_after,
                      struct gmca_error *e)
{
        struct gmca_profile *prof;
        struct gmca_cert_template t;
        struct tmpl_urls u;
        time_t now = gmca_now();
        int days = not_after > now ? (int)((not_after - now + 86399) / 86400) : 0;

        if (days <= 0) {
                gmca_error_set(e, GMCA_ERR_INVALID,
                               "CA certificate: it would end before it begins");
                return NULL;
        }
        if ((prof = gmca_ctx_profile(c, profile, e)) == NULL)
                return NULL;
        if (!prof->ca) {
                gmca_error_set(e, GMCA_ERR_POLICY, "profile %s is not a CA profile", profile);
                return NULL;
        }
        if (gmca_profile_check(prof, subject, NULL, days, e) != 0)
                return NULL;
        if (is->cert != NULL &&
            ca_within_issuer(is->name, ca_cert_not_after(is->cert), not_after, e) != 0)
                return NULL;
        memset(&t, 0, sizeof(t));
        memset(&u, 0, sizeof(u));
        if (ca_fill_template(&t, &u, &c->cfg, prof, is->cert ? is->name : NULL, e) != 0 ||
            gmca_serial_random(t.serial, e) != 0)
                return NULL;
        t.subject = subject;
        t.pubkey = pub;
        t.issuer = is->cert;
        t.issuer_key = is->key;
        t.signer = is->signer;
        t.sm2_id = is->sm2_id;
        t.not_before = now;
        t.not_after = not_after;
        return gmca_cert_build(&t, e);
}

int ca_slot_reload(struct gmca_ctx *c, struct ca_slot *ca, struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        const uint8_t *p;
        X509 *cert;
        int rc;

        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_ca_get(c->store, ca->rec.name, &rec, e)) != 0) {
                gmca_ca_rec_clear(&rec);
                return rc;
        }
        p = rec.cert_der;
        cert = d2i_X509(NULL, &p, (long)rec.cert_len);
        if (cert == NULL || p != rec.cert_der + rec.cert_len) {
                X509_free(cert);
                gmca_ca_rec_clear(&rec);
                return gmca_error_ossl(e, GMCA_ERR_TAMPER,
                                       "CA %s: stored certificate does not parse", ca->rec.name);
        }
        X509_free(ca->cert);
        gmca_ca_rec_clear(&ca->rec);
        ca->rec = rec;
        ca->cert = cert;
        return 0;
}
