/*
 * km: the key management centre's process side (km.h): its directory and
 * ceremonies (init, trust), activation with 3 of 5 custodians, the escrow
 * of encryption key pairs, the answer to each CARequest, and the socket.
 *
 * Secrets and where they live. The master key is rebuilt from the
 * custodians' shares only for as long as it takes to derive from it, with
 * HMAC-SM3 and a label each: K_escrow ("gmca km escrow v1", first 16
 * bytes, the SM4-GCM key of every escrowed private key, kept in secure
 * memory while the KM runs), the passphrase of keys/km.key ("gmca km
 * signing key v1", in hex), and the MAC that binds the three trusted
 * certificates to this KM ("gmca km trust v1"): someone who can write the
 * KM directory but has no custodians cannot make it serve another CA.
 *
 * An escrowed key is IV(12) || SM4-GCM(d) || tag(16) with the AAD
 * "gmca km escrow v1" || SM3(CA subject DER) || userCertNo, so a
 * ciphertext moved to another row or another CA's key does not open. The
 * clear d exists only in a stack buffer wiped after sealing, and in the
 * EVP_PKEY that is freed right after.
 *
 * One request is handled in steps, each its own transaction with its audit
 * record: the task number is taken first (so a replay is refused even if
 * an item fails), then each item. A refusal of the whole request (too big,
 * malformed, not the trusted CA, stale, replayed) is one km.request
 * failure record and no answer.
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "crypto.h"
#include "envelope.h"
#include "km.h"
#include "store_internal.h"
#include "util.h"
#include "x509.h"

#define KM_CONFIG "km.json"
#define KM_DB "km.db"
#define KM_KEY "keys/km.key"
#define KM_CERT "certs/km.crt"
#define KM_CA_CERT "certs/ca.crt"
#define KM_COMM_CERT "certs/ca-comm.crt"
#define KM_SOCKET "run/km.sock"
#define CONFIG_MAX (64 * 1024)
#define CERT_FILE_MAX (64 * 1024)
#define ESCROW_LEN (GMCA_SM4_GCM_IV_LEN + 32 + GMCA_SM4_GCM_TAG_LEN)
#define ESCROW_LABEL "gmca km escrow v1"
#define ESCROW_AAD_MAX 96 /* the label (17), SM3 (32), a userCertNo (up to 20) */
#define SIGNKEY_LABEL "gmca km signing key v1"
#define TRUST_LABEL "gmca km trust v1"
#define READ_TIMEOUT_MS 10000
#define YEAR_SECONDS (365 * 86400 + 86400 / 4)

struct gmca_km {
        char dir[PATH_MAX];
        struct gmca_store *store;
        uint8_t *k_escrow; /* secure heap, GMCA_SM4_KEY_LEN */
        EVP_PKEY *key;     /* the KM's signing key */
        struct gmca_pkey_signer signer;
        X509 *cert, *ca_cert, *comm_cert;
        uint8_t ca_hash[GMCA_SM3_LEN]; /* SM3 of the CA subject DER: escrow AAD */
        char ca_name[256];             /* the CA subject, for the records */
        char requester[65];            /* hex SM3 of the comm certificate: km_tasks */
        char actor[256];               /* its subject: the actor of the records */
};

/* The parsed km.json. */
struct km_config {
        struct gmca_custody_set set;
        uint8_t check[32];
        uint8_t trust_mac[32];
        int trusted;
        char subject[GMCA_DN_MAX];
        int64_t created;
        char database[GMCA_STORE_URI_MAX]; /* "": km.db in the KM's directory (SQLite) */
};

/* ---- paths, hex, configuration ---- */

static int path_in(char *buf, size_t len, const char *dir, const char *rel, struct gmca_error *e)
{
        if ((size_t)snprintf(buf, len, "%s/%s", dir, rel) >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: path too long: %s/%s", dir, rel);
        return 0;
}

static int unhex_exact(const char *hex, uint8_t *out, size_t n)
{
        size_t got;

        return hex != NULL && strlen(hex) == 2 * n && gmca_unhex(hex, out, n, &got) == 0 && got == n
                   ? 0
                   : -1;
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
        char buf[2 * 64 + 1];

        gmca_hex_upper(p, n, buf);
        return json_string(buf);
}

static int config_read(const char *dir, struct km_config *c, struct gmca_error *e)
{
        char path[PATH_MAX];
        uint8_t *buf = NULL;
        size_t len;
        json_t *root = NULL, *cu;
        json_error_t jerr;
        const char *state, *subject;
        int rc;

        memset(c, 0, sizeof(*c));
        if ((rc = path_in(path, sizeof(path), dir, KM_CONFIG, e)) != 0)
                return rc;
        if ((rc = gmca_read_file(path, CONFIG_MAX, &buf, &len, e)) != 0)
                return rc == GMCA_ERR_IO ? gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                                          "km: %s: no KM here (gmca km init)", dir)
                                         : rc;
        root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
        free(buf);
        cu = json_object_get(root, "custody");
        state = json_string_value(json_object_get(root, "state"));
        subject = json_string_value(json_object_get(root, "subject"));
        if (root == NULL || !json_is_object(cu) || state == NULL || subject == NULL ||
            unhex_exact(json_string_value(json_object_get(cu, "installation")), c->set.installation,
                        GMCA_CUSTODY_ID_LEN) != 0 ||
            unhex_exact(json_string_value(json_object_get(cu, "set_id")), c->set.set_id,
                        GMCA_CUSTODY_ID_LEN) != 0 ||
            unhex_exact(json_string_value(json_object_get(cu, "check")), c->check, 32) != 0 ||
            !json_is_integer(json_object_get(cu, "threshold")) ||
            !json_is_integer(json_object_get(cu, "count")) ||
            gmca_strlcpy(c->subject, subject, sizeof(c->subject)) >= sizeof(c->subject)) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: %s/%s is malformed", dir,
                                      KM_CONFIG);
        }
        c->set.threshold = (unsigned)json_integer_value(json_object_get(cu, "threshold"));
        c->set.count = (unsigned)json_integer_value(json_object_get(cu, "count"));
        c->created = json_integer_value(json_object_get(root, "created"));
        c->trusted = strcmp(state, "trusted") == 0;
        if (json_object_get(root, "database") != NULL &&
            (!json_is_string(json_object_get(root, "database")) ||
             gmca_store_uri_check(json_string_value(json_object_get(root, "database")), e) != 0 ||
             gmca_strlcpy(c->database, json_string_value(json_object_get(root, "database")),
                          sizeof(c->database)) >= sizeof(c->database))) {
                json_decref(root);
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km: %s/%s: \"database\" must be a postgresql:// URI "
                                      "without a password",
                                      dir, KM_CONFIG);
        }
        if (c->trusted && unhex_exact(json_string_value(json_object_get(root, "trust_mac")),
                                      c->trust_mac, 32) != 0) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: %s/%s: trust_mac malformed", dir,
                                      KM_CONFIG);
        }
        json_decref(root);
        return 0;
}

static int config_write(const char *dir, const struct km_config *c, struct gmca_error *e)
{
        char path[PATH_MAX], *text = NULL;
        json_t *root;
        int rc;

        if ((rc = path_in(path, sizeof(path), dir, KM_CONFIG, e)) != 0)
                return rc;
        root = json_pack("{s:i, s:s, s:s, s:I, s:{s:o, s:o, s:i, s:i, s:o}}", "version", 1,
                         "subject", c->subject, "state", c->trusted ? "trusted" : "initialised",
                         "created", (json_int_t)c->created, "custody", "installation",
                         hex_json(c->set.installation, GMCA_CUSTODY_ID_LEN), "set_id",
                         hex_json(c->set.set_id, GMCA_CUSTODY_ID_LEN), "threshold",
                         (int)c->set.threshold, "count", (int)c->set.count, "check",
                         hex_json(c->check, 32));
        if (root != NULL && c->trusted)
                json_object_set_new(root, "trust_mac", hex_json(c->trust_mac, 32));
        if (root != NULL)
                json_object_set_new(root, "socket", json_string(KM_SOCKET));
        if (root != NULL && c->database[0] != '\0')
                json_object_set_new(root, "database", json_string(c->database));
        if (root == NULL || (text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        else
                rc = gmca_write_file_atomic(path, text, strlen(text), 0600, e);
        free(text);
        json_decref(root);
        return rc;
}

/* The KM's store as gmca_store_open takes it: km.json's "database", else <dir>/km.db. */
static int km_db_uri(const char *dir, const struct km_config *c, char *out, size_t len,
                     struct gmca_error *e)
{
        if (c->database[0] == '\0')
                return path_in(out, len, dir, KM_DB, e);
        if (gmca_strlcpy(out, c->database, len) >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: database URI too long");
        return 0;
}

int gmca_km_store_uri(const char *dir, char *out, size_t len, struct gmca_error *e)
{
        struct km_config c;
        int rc;

        if ((rc = config_read(dir, &c, e)) != 0)
                return rc;
        return km_db_uri(dir, &c, out, len, e);
}

/*
 * A PostgreSQL database is not created with the KM's directory: km init
 * refuses one that already holds records (a CA's or another KM's), so
 * escrowed keys never share a database with anything else.
 */
static int km_db_empty(struct gmca_store *s, struct gmca_error *e)
{
        uint8_t hash[GMCA_SM3_LEN];
        int64_t seq = 0;
        int rc;

        if ((rc = gmca_store_audit_last(s, &seq, hash, e)) != 0)
                return rc;
        if (seq != 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "km init: the database already holds records; the KM "
                                      "needs an empty database of its own");
        return 0;
}

/* ---- the master key and what derives from it ---- */

static uint8_t *secure_alloc(size_t n, struct gmca_error *e)
{
        uint8_t *p;

        if (!CRYPTO_secure_malloc_initialized())
                (void)CRYPTO_secure_malloc_init(1 << 16, 32);
        if ((p = OPENSSL_secure_zalloc(n)) == NULL)
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return p;
}

static int derive(const uint8_t *master, const char *label, uint8_t out[GMCA_SM3_LEN],
                  struct gmca_error *e)
{
        return gmca_hmac_sm3(master, GMCA_MASTER_LEN, label, strlen(label), out, e);
}

/* The passphrase of keys/km.key: hex of its derived key, 64 characters. */
static int signkey_pass(const uint8_t *master, char pass[65], struct gmca_error *e)
{
        uint8_t k[GMCA_SM3_LEN];
        int rc;

        if ((rc = derive(master, SIGNKEY_LABEL, k, e)) == 0)
                gmca_hex(k, sizeof(k), pass);
        OPENSSL_cleanse(k, sizeof(k));
        return rc;
}

/* Rebuild the master key into master and check it against km.json. */
static int master_open(const struct km_config *c, const struct gmca_custodian *cust, size_t n,
                       uint8_t *master, char *who, size_t wholen, struct gmca_error *e)
{
        uint8_t check[32];
        int rc;

        if ((rc = gmca_custody_combine(&c->set, cust, n, master, who, wholen, e)) != 0)
                return rc;
        if ((rc = gmca_custody_check_value(master, check, e)) != 0)
                return rc;
        if (CRYPTO_memcmp(check, c->check, sizeof(check)) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "custody: the shares given do not open this KM's master key");
        return 0;
}

static int cert_hash(X509 *x, uint8_t out[GMCA_SM3_LEN], struct gmca_error *e)
{
        uint8_t *der = NULL;
        int n = i2d_X509(x, &der), rc;

        if (n <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "km: certificate does not encode");
        rc = gmca_sm3(der, (size_t)n, out) == 0
                 ? 0
                 : gmca_error_set(e, GMCA_ERR_CRYPTO, "km: SM3 failed");
        OPENSSL_free(der);
        return rc;
}

/* The MAC binding the KM, CA and CA-communication certificates to the master key. */
static int trust_mac(const uint8_t *master, X509 *km, X509 *ca, X509 *comm,
                     uint8_t out[GMCA_SM3_LEN], struct gmca_error *e)
{
        uint8_t k[GMCA_SM3_LEN], msg[3 * GMCA_SM3_LEN];
        int rc;

        if ((rc = cert_hash(km, msg, e)) != 0 || (rc = cert_hash(ca, msg + 32, e)) != 0 ||
            (rc = cert_hash(comm, msg + 64, e)) != 0 ||
            (rc = derive(master, TRUST_LABEL, k, e)) != 0)
                goto out;
        rc = gmca_hmac_sm3(k, sizeof(k), msg, sizeof(msg), out, e);
out:
        OPENSSL_cleanse(k, sizeof(k));
        return rc;
}

/* ---- audit ---- */

static void audit_refusal(struct gmca_store *s, const char *event, const char *actor,
                          const char *object, const struct gmca_error *why)
{
        struct gmca_audit_event ev = {event, actor, 0, object, why != NULL ? why->msg : NULL};
        struct gmca_error ignore = {0};

        if (s != NULL && !gmca_store_in_transaction(s))
                if (gmca_audit_record(s, &ev, &ignore) != 0)
                        return; /* the refusal stands whether or not it could be recorded */
}

static int audit_ok(struct gmca_store *s, const char *event, const char *actor, const char *object,
                    json_t *detail, int own_txn, struct gmca_error *e)
{
        char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        struct gmca_audit_event ev = {event, actor, 1, object, text};
        int rc;

        rc = own_txn ? gmca_audit_record(s, &ev, e) : gmca_audit_append(s, &ev, e);
        free(text);
        json_decref(detail);
        return rc;
}

/* ---- init ---- */

static X509_REQ *make_csr(EVP_PKEY *key, const char *subject, struct gmca_error *e)
{
        X509_NAME *name = gmca_dn_parse(subject, e);
        X509_REQ *req = NULL;
        EVP_MD_CTX *mctx = NULL;

        if (name == NULL)
                return NULL;
        if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, 0) != 1 ||
            X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
            (mctx = gmca_sm2_sign_ctx(key, NULL, e)) == NULL || X509_REQ_sign_ctx(req, mctx) <= 0) {
                gmca_error_ossl(e, GMCA_ERR_CRYPTO, "km: cannot make the CSR");
                X509_REQ_free(req);
                req = NULL;
        }
        EVP_MD_CTX_free(mctx);
        X509_NAME_free(name);
        return req;
}

static int make_dirs(const char *dir, struct gmca_error *e)
{
        static const char *const sub[] = {"keys", "certs", "run"};
        char path[PATH_MAX];
        int rc;

        if (mkdir(dir, 0700) != 0)
                return gmca_error_set(e, errno == EEXIST ? GMCA_ERR_EXISTS : GMCA_ERR_IO,
                                      "km: cannot create %s: %s", dir, strerror(errno));
        for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
                if ((rc = path_in(path, sizeof(path), dir, sub[i], e)) != 0)
                        return rc;
                if (mkdir(path, 0700) != 0)
                        return gmca_error_set(e, GMCA_ERR_IO, "km: cannot create %s: %s", path,
                                              strerror(errno));
        }
        return 0;
}

/* Undo a failed init: what it wrote, nothing else. */
static void init_undo(const char *dir, const struct gmca_km_init_params *p, int shares)
{
        static const char *const files[] = {KM_CONFIG, KM_DB, KM_DB "-wal", KM_DB "-shm", KM_KEY};
        static const char *const dirs[] = {"keys", "certs", "run", ""};
        char path[PATH_MAX];

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, files[i]) < sizeof(path))
                        unlink(path);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
                if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]) < sizeof(path))
                        rmdir(path);
        for (size_t i = 0; shares && i < p->ncustodians; i++)
                unlink(p->custodians[i].path);
}

static int init_key(const char *dir, const uint8_t *master, EVP_PKEY **key, struct gmca_error *e)
{
        char path[PATH_MAX], pass[65];
        int rc;

        if ((rc = path_in(path, sizeof(path), dir, KM_KEY, e)) != 0)
                return rc;
        if ((*key = gmca_sm2_keygen(e)) == NULL)
                return e->code ? e->code : GMCA_ERR_CRYPTO;
        if ((rc = signkey_pass(master, pass, e)) == 0)
                rc = gmca_key_write(path, *key, pass, strlen(pass), e);
        OPENSSL_cleanse(pass, sizeof(pass));
        return rc;
}

static int init_params_ok(const struct gmca_km_init_params *p, unsigned *threshold,
                          struct gmca_error *e)
{
        *threshold = p->threshold != 0 ? p->threshold : 3;
        if (p->subject == NULL || p->actor == NULL || p->custodians == NULL ||
            p->ncustodians > GMCA_CUSTODY_MAX || *threshold < 2 || *threshold > p->ncustodians)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km init: a subject and %u..%d custodians are needed",
                                      *threshold, GMCA_CUSTODY_MAX);
        return 0;
}

int gmca_km_init(const char *dir, const struct gmca_km_init_params *p, uint8_t **csr,
                 size_t *csr_len, struct gmca_error *e)
{
        struct km_config c;
        uint8_t *master = NULL, *der = NULL;
        EVP_PKEY *key = NULL;
        X509_REQ *req = NULL;
        struct gmca_store *s = NULL;
        char path[PATH_MAX];
        int rc, n, made = 0, shares = 0;

        memset(&c, 0, sizeof(c));
        if ((rc = init_params_ok(p, &c.set.threshold, e)) != 0)
                return rc;
        c.set.count = (unsigned)p->ncustodians;
        c.created = gmca_now();
        if (gmca_strlcpy(c.subject, p->subject, sizeof(c.subject)) >= sizeof(c.subject))
                return gmca_error_set(e, GMCA_ERR_INVALID, "km init: subject too long");
        if (p->database != NULL) {
                if (gmca_store_uri_check(p->database, e) != 0)
                        return GMCA_ERR_INVALID;
                gmca_strlcpy(c.database, p->database, sizeof(c.database));
        }
        if ((master = secure_alloc(GMCA_MASTER_LEN, e)) == NULL)
                return GMCA_ERR_NOMEM;
        if ((rc = gmca_rand_bytes(master, GMCA_MASTER_LEN, e)) != 0 ||
            (rc = gmca_rand_bytes(c.set.installation, GMCA_CUSTODY_ID_LEN, e)) != 0 ||
            (rc = gmca_rand_bytes(c.set.set_id, GMCA_CUSTODY_ID_LEN, e)) != 0 ||
            (rc = gmca_custody_check_value(master, c.check, e)) != 0)
                goto out;
        /* Everything that can be refused is checked before anything is written. */
        if ((key = gmca_sm2_keygen(e)) == NULL || (req = make_csr(key, p->subject, e)) == NULL) {
                rc = e->code ? e->code : GMCA_ERR_CRYPTO;
                goto out;
        }
        EVP_PKEY_free(key);
        key = NULL;
        X509_REQ_free(req);
        req = NULL;
        if ((rc = make_dirs(dir, e)) != 0)
                goto out;
        made = 1;
        if ((rc = gmca_custody_split(master, &c.set, p->custodians, p->ncustodians, e)) != 0)
                goto out;
        shares = 1;
        if ((rc = init_key(dir, master, &key, e)) != 0)
                goto out;
        if ((req = make_csr(key, p->subject, e)) == NULL || (n = i2d_X509_REQ(req, &der)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "km: cannot make the CSR");
                goto out;
        }
        if ((rc = km_db_uri(dir, &c, path, sizeof(path), e)) != 0 ||
            (s = gmca_store_open(path, e)) == NULL) {
                rc = rc != 0 ? rc : e->code;
                goto out;
        }
        if (c.database[0] != '\0' && (rc = km_db_empty(s, e)) != 0)
                goto out;
        if ((rc = audit_ok(s, GMCA_EV_KM_INIT, p->actor, "km",
                           json_pack("{s:s, s:i, s:i}", "subject", p->subject, "threshold",
                                     (int)c.set.threshold, "custodians", (int)c.set.count),
                           1, e)) != 0 ||
            (rc = config_write(dir, &c, e)) != 0)
                goto out;
        *csr = der;
        *csr_len = (size_t)n;
        der = NULL;
out:
        gmca_store_close(s);
        if (rc != 0 && made)
                init_undo(dir, p, shares);
        OPENSSL_free(der);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
        OPENSSL_secure_clear_free(master, GMCA_MASTER_LEN);
        return rc;
}

/* ---- trust ---- */

static int cert_check(X509 *x, X509 *ca, const char *what, struct gmca_error *e)
{
        time_t now = gmca_now();

        if (X509_check_issued(ca, x) != X509_V_OK)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km trust: the %s was not issued by the CA", what);
        if (gmca_cert_verify_signed_by(x, X509_get0_pubkey(ca), NULL, e) != 0)
                return gmca_error_set(
                    e, GMCA_ERR_VERIFY,
                    "km trust: the %s's signature does not verify with the CA key", what);
        if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0 ||
            X509_cmp_time(X509_get0_notAfter(x), &now) < 0)
                return gmca_error_set(e, GMCA_ERR_POLICY, "km trust: the %s is not valid now",
                                      what);
        return 0;
}

static int write_cert(const char *dir, const char *rel, X509 *x, struct gmca_error *e)
{
        char path[PATH_MAX];
        uint8_t *der = NULL;
        int n = i2d_X509(x, &der), rc;

        if (n <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "km: certificate does not encode");
        if ((rc = path_in(path, sizeof(path), dir, rel, e)) == 0)
                rc = gmca_write_file_atomic(path, der, (size_t)n, 0644, e);
        OPENSSL_free(der);
        return rc;
}

static EVP_PKEY *signkey_read(const char *dir, const uint8_t *master, struct gmca_error *e)
{
        char path[PATH_MAX], pass[65];
        EVP_PKEY *key = NULL;

        if (path_in(path, sizeof(path), dir, KM_KEY, e) != 0 || signkey_pass(master, pass, e) != 0)
                return NULL;
        key = gmca_key_read(path, pass, strlen(pass), e);
        OPENSSL_cleanse(pass, sizeof(pass));
        return key;
}

static int trust_checks(const char *dir, const uint8_t *master, X509 *km, X509 *ca, X509 *comm,
                        struct gmca_error *e)
{
        EVP_PKEY *key;
        int rc;

        if ((key = signkey_read(dir, master, e)) == NULL)
                return e->code ? e->code : GMCA_ERR_INTERNAL;
        rc = EVP_PKEY_eq(key, X509_get0_pubkey(km)) == 1
                 ? 0
                 : gmca_error_set(e, GMCA_ERR_TAMPER,
                                  "km trust: the KM certificate is not for this KM's key");
        EVP_PKEY_free(key);
        if (rc == 0)
                rc = cert_check(km, ca, "KM certificate", e);
        if (rc == 0)
                rc = cert_check(comm, ca, "CA KM-communication certificate", e);
        return rc;
}

int gmca_km_trust(const char *dir, const struct gmca_custodian *cust, size_t n, X509 *km_cert,
                  X509 *ca_cert, X509 *comm_cert, const char *actor, struct gmca_error *e)
{
        struct km_config c;
        struct gmca_store *s = NULL;
        uint8_t *master = NULL;
        char path[PATH_MAX], who[1024] = "", ca[256] = "", comm[256] = "";
        int rc;

        if ((rc = config_read(dir, &c, e)) != 0)
                return rc;
        if ((rc = km_db_uri(dir, &c, path, sizeof(path), e)) != 0)
                return rc;
        if ((s = gmca_store_open(path, e)) == NULL)
                return e->code;
        if ((master = secure_alloc(GMCA_MASTER_LEN, e)) == NULL) {
                rc = GMCA_ERR_NOMEM;
                goto out;
        }
        if ((rc = master_open(&c, cust, n, master, who, sizeof(who), e)) != 0 ||
            (rc = trust_checks(dir, master, km_cert, ca_cert, comm_cert, e)) != 0 ||
            (rc = trust_mac(master, km_cert, ca_cert, comm_cert, c.trust_mac, e)) != 0)
                goto out;
        if ((rc = write_cert(dir, KM_CERT, km_cert, e)) != 0 ||
            (rc = write_cert(dir, KM_CA_CERT, ca_cert, e)) != 0 ||
            (rc = write_cert(dir, KM_COMM_CERT, comm_cert, e)) != 0)
                goto out;
        c.trusted = 1;
        if (gmca_dn_format(X509_get_subject_name(ca_cert), ca, sizeof(ca), e) != 0 ||
            gmca_dn_format(X509_get_subject_name(comm_cert), comm, sizeof(comm), e) != 0)
                gmca_error_clear(e); /* the names are for the record only */
        /* km.json last: until it says "trusted" (and carries the MAC) nothing serves. */
        if ((rc = audit_ok(
                 s, GMCA_EV_KM_TRUST, actor, "km",
                 json_pack("{s:s, s:s, s:s}", "custodians", who, "ca", ca, "requester", comm), 1,
                 e)) != 0 ||
            (rc = config_write(dir, &c, e)) != 0)
                goto out;
out:
        if (rc != 0)
                audit_refusal(s, GMCA_EV_KM_TRUST, actor, "km", e);
        gmca_store_close(s);
        OPENSSL_secure_clear_free(master, GMCA_MASTER_LEN);
        return rc;
}

/* ---- open, close ---- */

static X509 *cert_read(const char *dir, const char *rel, struct gmca_error *e)
{
        char path[PATH_MAX];
        uint8_t *buf = NULL;
        size_t len;
        X509 *x;

        if (path_in(path, sizeof(path), dir, rel, e) != 0 ||
            gmca_read_file(path, CERT_FILE_MAX, &buf, &len, e) != 0)
                return NULL;
        x = gmca_cert_parse(buf, len, e);
        free(buf);
        return x;
}

static int names_fill(struct gmca_km *k, struct gmca_error *e)
{
        const X509_NAME *name = X509_get_subject_name(k->ca_cert);
        const uint8_t *der = NULL;
        size_t len = 0;
        uint8_t h[GMCA_SM3_LEN];

        if (X509_NAME_get0_der((X509_NAME *)name, &der, &len) != 1 ||
            gmca_sm3(der, len, k->ca_hash) != 0 ||
            gmca_dn_format(name, k->ca_name, sizeof(k->ca_name), e) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: the CA certificate's subject");
        if (cert_hash(k->comm_cert, h, e) != 0 ||
            gmca_dn_format(X509_get_subject_name(k->comm_cert), k->actor, sizeof(k->actor), e) != 0)
                return e->code ? e->code : GMCA_ERR_INVALID;
        gmca_hex(h, sizeof(h), k->requester);
        return 0;
}

/* What open needs the master key for: the keys, and the certificates checked. */
static int open_secrets(struct gmca_km *k, const struct km_config *c, const uint8_t *master,
                        struct gmca_error *e)
{
        uint8_t mac[GMCA_SM3_LEN], ke[GMCA_SM3_LEN];
        int rc;

        if ((k->cert = cert_read(k->dir, KM_CERT, e)) == NULL ||
            (k->ca_cert = cert_read(k->dir, KM_CA_CERT, e)) == NULL ||
            (k->comm_cert = cert_read(k->dir, KM_COMM_CERT, e)) == NULL)
                return e->code ? e->code : GMCA_ERR_NOTFOUND;
        if ((rc = trust_mac(master, k->cert, k->ca_cert, k->comm_cert, mac, e)) != 0)
                return rc;
        if (CRYPTO_memcmp(mac, c->trust_mac, sizeof(mac)) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "km: the trusted certificates in %s/certs are not the ones "
                                      "the custodians installed",
                                      k->dir);
        if ((k->key = signkey_read(k->dir, master, e)) == NULL)
                return e->code ? e->code : GMCA_ERR_INTERNAL;
        if (EVP_PKEY_eq(k->key, X509_get0_pubkey(k->cert)) != 1)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "km: %s does not match %s", KM_KEY,
                                      KM_CERT);
        if ((rc = gmca_pkey_signer_init(&k->signer, k->key, NULL, e)) != 0 ||
            (rc = derive(master, ESCROW_LABEL, ke, e)) != 0)
                return rc;
        memcpy(k->k_escrow, ke, GMCA_SM4_KEY_LEN);
        OPENSSL_cleanse(ke, sizeof(ke));
        return names_fill(k, e);
}

struct gmca_km *gmca_km_open(const char *dir, const struct gmca_custodian *cust, size_t n,
                             struct gmca_error *e)
{
        struct gmca_km *k = NULL;
        struct km_config c;
        uint8_t *master = NULL;
        char path[PATH_MAX], who[1024] = "";
        int rc;

        if ((rc = config_read(dir, &c, e)) != 0)
                return NULL;
        if ((k = calloc(1, sizeof(*k))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (gmca_strlcpy(k->dir, dir, sizeof(k->dir)) >= sizeof(k->dir) ||
            km_db_uri(dir, &c, path, sizeof(path), e) != 0 ||
            (k->store = gmca_store_open(path, e)) == NULL)
                goto fail;
        if (!c.trusted) {
                gmca_error_set(e, GMCA_ERR_STATE,
                               "km: not given its certificates yet: run gmca km trust");
                goto refused;
        }
        if ((master = secure_alloc(GMCA_MASTER_LEN, e)) == NULL ||
            (k->k_escrow = secure_alloc(GMCA_SM4_KEY_LEN, e)) == NULL)
                goto fail;
        if (master_open(&c, cust, n, master, who, sizeof(who), e) != 0 ||
            open_secrets(k, &c, master, e) != 0)
                goto refused;
        OPENSSL_secure_clear_free(master, GMCA_MASTER_LEN);
        if (audit_ok(k->store, GMCA_EV_KM_ACTIVATE, who, "km",
                     json_pack("{s:s, s:s}", "ca", k->ca_name, "custodians", who), 1, e) != 0)
                goto fail;
        return k;
refused:
        audit_refusal(k->store, GMCA_EV_KM_ACTIVATE, who[0] ? who : "custodians", "km", e);
fail:
        OPENSSL_secure_clear_free(master, GMCA_MASTER_LEN);
        gmca_km_close(k);
        return NULL;
}

void gmca_km_close(struct gmca_km *k)
{
        if (k == NULL)
                return;
        gmca_store_close(k->store);
        OPENSSL_secure_clear_free(k->k_escrow, GMCA_SM4_KEY_LEN);
        EVP_PKEY_free(k->key);
        X509_free(k->cert);
        X509_free(k->ca_cert);
        X509_free(k->comm_cert);
        OPENSSL_cleanse(k, sizeof(*k));
        free(k);
}

struct gmca_store *gmca_km_store(struct gmca_km *k)
{
        return k->store;
}

/* ---- escrow ---- */

static const char SQL_KEY_GET[] =
    "SELECT state, pub, enc_priv, retain_until FROM km_keys WHERE serial = ?";
static const char SQL_KEY_INSERT[] =
    "INSERT INTO km_keys (serial, ca, subject, pub, enc_priv, not_before, "
    "not_after, state,"
    " retain_until, task_no, created, state_time) VALUES (?, ?, ?, ?, ?, ?, ?, "
    "'active', ?, ?, ?, ?)";
static const char SQL_KEY_REVOKE[] =
    "UPDATE km_keys SET state = 'revoked', state_time = ? WHERE serial = ?";
static const char SQL_KEY_DESTROY[] =
    "UPDATE km_keys SET state = 'destroyed', enc_priv = NULL, state_time = ? "
    "WHERE serial = ?";
static const char SQL_TASK_INSERT[] =
    "INSERT INTO km_tasks (requester, task_no, time) VALUES (?, ?, ?)";
/*
 * A task number needs remembering only while its request could still pass
 * the time check: accepted at t with a requestTime within GMCA_KM_SKEW of t,
 * the same request is refused for its time after t + 2 * GMCA_KM_SKEW. Older
 * rows go (with a margin), so km_tasks stays a few minutes of requests.
 */
static const char SQL_TASK_PRUNE[] = "DELETE FROM km_tasks WHERE time < ?";
#define KM_TASK_KEEP (3 * GMCA_KM_SKEW)

/* A row of km_keys as handled here; pub and enc are OPENSSL_malloc'd. */
struct key_row {
        char state[16];
        uint8_t *pub;
        size_t pub_len;
        uint8_t *enc;
        size_t enc_len;
        int64_t retain_until;
};

static void key_row_clear(struct key_row *r)
{
        OPENSSL_free(r->pub);
        OPENSSL_free(r->enc);
        memset(r, 0, sizeof(*r));
}

/* GMCA_ERR_NOTFOUND when serial has no row. */
static int key_get(struct gmca_store *s, const char *serial, struct key_row *r,
                   struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(r, 0, sizeof(*r));
        if ((rc = gmca_q_open(s, SQL_KEY_GET, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "km: key %s", serial);
        if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "km: no escrowed key for %s", serial);
        else if (rc == GMCA_DB_ROW) {
                r->retain_until = gmca_q_col_int(&q, 3);
                if ((rc = gmca_q_col_str(&q, 0, r->state, sizeof(r->state), "state", e)) == 0 &&
                    (rc = gmca_q_col_dup(&q, 1, &r->pub, &r->pub_len, e)) == 0)
                        rc = gmca_q_col_dup(&q, 2, &r->enc, &r->enc_len, e);
        }
        gmca_q_close(&q);
        if (rc != 0)
                key_row_clear(r);
        return rc;
}

static int exec_serial(struct gmca_store *s, const char *sql, const char *serial, int64_t now,
                       struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, sql, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, now);
        gmca_q_text(&q, serial);
        rc = gmca_q_step(&q, e, "km: update key %s", serial);
        gmca_q_close(&q);
        return rc == GMCA_DB_DONE ? 0 : rc;
}

/* "gmca km escrow v1" || SM3(CA subject) || userCertNo */
static size_t escrow_aad(const struct gmca_km *k, const uint8_t *no, size_t no_len, uint8_t *aad)
{
        size_t n = strlen(ESCROW_LABEL);

        memcpy(aad, ESCROW_LABEL, n);
        memcpy(aad + n, k->ca_hash, GMCA_SM3_LEN);
        memcpy(aad + n + GMCA_SM3_LEN, no, no_len);
        return n + GMCA_SM3_LEN + no_len;
}

static int escrow_seal(const struct gmca_km *k, const struct gmca_km_item *it, EVP_PKEY *pair,
                       uint8_t out[ESCROW_LEN], struct gmca_error *e)
{
        uint8_t d[32], aad[ESCROW_AAD_MAX];
        BIGNUM *bn = NULL;
        size_t aadlen = escrow_aad(k, it->cert_no, it->cert_no_len, aad);
        int rc;

        if (EVP_PKEY_get_bn_param(pair, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
            BN_bn2binpad(bn, d, sizeof(d)) != (int)sizeof(d)) {
                BN_clear_free(bn);
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "km: the new private key");
        }
        BN_clear_free(bn);
        if ((rc = gmca_rand_bytes(out, GMCA_SM4_GCM_IV_LEN, e)) == 0)
                rc = gmca_sm4_gcm_encrypt(k->k_escrow, out, aad, aadlen, d, sizeof(d),
                                          out + GMCA_SM4_GCM_IV_LEN,
                                          out + GMCA_SM4_GCM_IV_LEN + sizeof(d), e);
        OPENSSL_cleanse(d, sizeof(d));
        return rc;
}

/* An SM2 key pair from d and the public point, checked to belong together. */
static EVP_PKEY *pair_from(const uint8_t d[32], const uint8_t xy[64], struct gmca_error *e)
{
        OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *key = NULL;
        BIGNUM *bn = BN_secure_new();
        uint8_t pt[65];

        pt[0] = 0x04;
        memcpy(pt + 1, xy, 64);
        if (b == NULL || bn == NULL || BN_bin2bn(d, 32, bn) == NULL ||
            OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) != 1 ||
            OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn) != 1 ||
            (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
            (ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL)) == NULL ||
            EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
                key = NULL;
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
        if (key != NULL && ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
                            EVP_PKEY_pairwise_check(ctx) != 1)) {
                EVP_PKEY_free(key);
                key = NULL;
        }
        if (key == NULL)
                gmca_error_ossl(e, GMCA_ERR_TAMPER,
                                "km: the escrowed private key is not the recorded public key's");
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(b);
        BN_clear_free(bn);
        return key;
}

/* The escrowed pair of a row, or NULL (GMCA_ERR_TAMPER if it does not open). */
static EVP_PKEY *escrow_open(const struct gmca_km *k, const uint8_t *no, size_t no_len,
                             const struct key_row *r, struct gmca_error *e)
{
        uint8_t d[32], aad[ESCROW_AAD_MAX], xy[64];
        const uint8_t *p = r->pub;
        EVP_PKEY *pub = NULL, *pair = NULL;
        size_t aadlen = escrow_aad(k, no, no_len, aad);

        if (r->enc == NULL || r->enc_len != ESCROW_LEN || r->pub == NULL ||
            (pub = d2i_PUBKEY(NULL, &p, (long)r->pub_len)) == NULL ||
            gmca_sm2_pub_xy(pub, xy, e) != 0) {
                EVP_PKEY_free(pub);
                gmca_error_set(e, GMCA_ERR_TAMPER, "km: escrow record malformed");
                return NULL;
        }
        EVP_PKEY_free(pub);
        if (gmca_sm4_gcm_decrypt(k->k_escrow, r->enc, aad, aadlen, r->enc + GMCA_SM4_GCM_IV_LEN,
                                 sizeof(d), r->enc + GMCA_SM4_GCM_IV_LEN + sizeof(d), d, e) != 0) {
                gmca_error_clear(e);
                gmca_error_set(e, GMCA_ERR_TAMPER,
                               "km: the escrowed key does not decrypt (altered record)");
                return NULL;
        }
        pair = pair_from(d, xy, e);
        OPENSSL_cleanse(d, sizeof(d));
        return pair;
}

/* ---- one item of a request ---- */

static int64_t add_years(int64_t t, int years)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (gmtime_r(&tt, &tm) == NULL)
                return t + (int64_t)years * YEAR_SECONDS;
        tm.tm_year += years;
        return (int64_t)timegm(&tm);
}

static int seal_to(EVP_PKEY *pair, EVP_PKEY *to, struct gmca_km_item *out, struct gmca_error *e)
{
        return gmca_envelope_seal(pair, to, &out->envelope, &out->envelope_len, &out->blob,
                                  &out->blob_len, e);
}

static int pub_der(EVP_PKEY *key, uint8_t **der, size_t *len, struct gmca_error *e)
{
        int n = i2d_PUBKEY(key, der);

        if (n <= 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "km: public key does not encode");
        *len = (size_t)n;
        return 0;
}

static int pub_only(const uint8_t *der, size_t len, EVP_PKEY **out, struct gmca_error *e)
{
        const uint8_t *p = der;

        if ((*out = d2i_PUBKEY(NULL, &p, (long)len)) == NULL)
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "km: public key does not decode");
        return 0;
}

static int apply_check(const struct gmca_km_item *it, int64_t now, struct gmca_error *e)
{
        if (it->not_before >= it->not_after)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km: apply: notBefore is not before notAfter");
        if (it->not_after <= now)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: apply: notAfter is in the past");
        if (it->user_pub == NULL || gmca_sm2_is_sm2(it->user_pub, e) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: apply: userPubKey is not SM2");
        return 0;
}

static int apply_insert(struct gmca_km *k, const struct gmca_km_item *it, const char *serial,
                        const char *task, const uint8_t *pub, size_t pub_len, const uint8_t *enc,
                        int64_t now, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(k->store, SQL_KEY_INSERT, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, serial);
        gmca_q_text(&q, k->ca_name);
        gmca_q_text(&q, it->user_name != NULL ? it->user_name : "");
        gmca_q_blob(&q, pub, pub_len);
        gmca_q_blob(&q, enc, ESCROW_LEN);
        gmca_q_int(&q, it->not_before);
        gmca_q_int(&q, it->not_after);
        gmca_q_int(&q, add_years(it->not_after, GMCA_KM_RETENTION_YEARS));
        gmca_q_text(&q, task);
        gmca_q_int(&q, now);
        gmca_q_int(&q, now);
        rc = gmca_q_step(&q, e, "km: escrow %s", serial);
        gmca_q_close(&q);
        return rc == GMCA_DB_DONE ? 0 : rc;
}

/* Inside the item's transaction: generate, escrow, seal. */
static int do_apply(struct gmca_km *k, const struct gmca_km_item *it, const char *serial,
                    const char *task, struct gmca_km_item *out, json_t **detail,
                    struct gmca_error *e)
{
        struct key_row row;
        EVP_PKEY *pair = NULL;
        uint8_t enc[ESCROW_LEN], *pub = NULL;
        size_t pub_len = 0;
        int64_t now = gmca_now();
        int rc;

        if ((rc = apply_check(it, now, e)) != 0)
                return rc;
        if ((rc = key_get(k->store, serial, &row, e)) != GMCA_ERR_NOTFOUND) {
                key_row_clear(&row);
                return rc != 0
                           ? rc
                           : gmca_error_set(e, GMCA_ERR_EXISTS,
                                            "km: apply: %s has an escrowed key already", serial);
        }
        gmca_error_clear(e);
        if ((pair = gmca_sm2_keygen(e)) == NULL)
                return e->code ? e->code : GMCA_ERR_CRYPTO;
        if ((rc = escrow_seal(k, it, pair, enc, e)) != 0 ||
            (rc = pub_der(pair, &pub, &pub_len, e)) != 0 ||
            (rc = apply_insert(k, it, serial, task, pub, pub_len, enc, now, e)) != 0 ||
            (rc = seal_to(pair, it->user_pub, out, e)) != 0)
                goto out;
        /* The answer carries the public half only; d leaves in the envelopes. */
        if ((rc = pub_only(pub, pub_len, &out->ret_pub, e)) != 0)
                goto out;
        *detail =
            json_pack("{s:s, s:s, s:I}", "subject", it->user_name != NULL ? it->user_name : "",
                      "task", task, "not_after", (json_int_t)it->not_after);
out:
        OPENSSL_cleanse(enc, sizeof(enc));
        OPENSSL_free(pub);
        EVP_PKEY_free(pair);
        return rc;
}

/*
 * Restore: active, revoked and expired keys are re-sealed — an encryption
 * key outlives its certificate, and data encrypted to an old or revoked
 * certificate must stay readable (CPS §3.10, §7.3.2). A destroyed key is
 * gone (GMCA_ERR_STATE).
 */
static int do_restore(struct gmca_km *k, const struct gmca_km_item *it, const char *serial,
                      struct gmca_km_item *out, json_t **detail, struct gmca_error *e)
{
        struct key_row row;
        EVP_PKEY *pair = NULL;
        int rc;

        if (it->user_pub == NULL || gmca_sm2_is_sm2(it->user_pub, e) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: restore: userPubKey is not SM2");
        if ((rc = key_get(k->store, serial, &row, e)) != 0)
                return rc;
        if (strcmp(row.state, "destroyed") == 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "km: restore: the key of %s was destroyed",
                                    serial);
                goto out;
        }
        if ((pair = escrow_open(k, it->cert_no, it->cert_no_len, &row, e)) == NULL) {
                rc = e->code ? e->code : GMCA_ERR_TAMPER;
                goto out;
        }
        if ((rc = seal_to(pair, it->user_pub, out, e)) != 0 ||
            (rc = pub_only(row.pub, row.pub_len, &out->ret_pub, e)) != 0)
                goto out;
        *detail = json_pack("{s:s, s:s}", "state", row.state, "restore_info",
                            it->info != NULL ? it->info : "");
out:
        EVP_PKEY_free(pair);
        key_row_clear(&row);
        return rc;
}

static int do_revoke(struct gmca_km *k, const char *serial, json_t **detail, struct gmca_error *e)
{
        struct key_row row;
        int rc;

        if ((rc = key_get(k->store, serial, &row, e)) != 0)
                return rc;
        if (strcmp(row.state, "destroyed") == 0)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "km: revoke: the key of %s was destroyed",
                                    serial);
        else if (strcmp(row.state, "revoked") != 0)
                rc = exec_serial(k->store, SQL_KEY_REVOKE, serial, gmca_now(), e);
        if (rc == 0)
                *detail = json_pack("{s:s}", "was", row.state);
        key_row_clear(&row);
        return rc;
}

static const char *kind_event(int kind)
{
        return kind == GMCA_KM_APPLY     ? GMCA_EV_KM_APPLY
               : kind == GMCA_KM_RESTORE ? GMCA_EV_KM_RESTORE
                                         : GMCA_EV_KM_REVOKE;
}

static int64_t km_errno(int rc)
{
        switch (rc) {
        case GMCA_ERR_NOTFOUND:
                return GMCA_KM_E_NOTFOUND;
        case GMCA_ERR_STATE:
                return GMCA_KM_E_STATE;
        case GMCA_ERR_EXISTS:
                return GMCA_KM_E_EXISTS;
        case GMCA_ERR_INVALID:
        case GMCA_ERR_POLICY:
                return GMCA_KM_E_INVALID;
        default:
                return GMCA_KM_E_INTERNAL;
        }
}

/* The answer's item for a refusal, with the cause (no secret is ever in it). */
static void item_error(struct gmca_km_item *out, int rc, const struct gmca_error *why)
{
        gmca_km_item_clear(out); /* ErrorPkgRespond names no userCertNo: position tells */
        out->kind = GMCA_KM_ERROR;
        out->err_no = km_errno(rc);
        out->err_desc = strdup(why->msg) /* < GMCA_KM_INFO_MAX */;
}

/* Inside the item's transaction: the change and its audit record. */
static int item_do(struct gmca_km *k, const struct gmca_km_item *it, const char *serial,
                   const char *task, struct gmca_km_item *out, struct gmca_error *e)
{
        json_t *detail = NULL;
        int rc;

        if (it->kind == GMCA_KM_APPLY)
                rc = do_apply(k, it, serial, task, out, &detail, e);
        else if (it->kind == GMCA_KM_RESTORE)
                rc = do_restore(k, it, serial, out, &detail, e);
        else
                rc = do_revoke(k, serial, &detail, e);
        if (rc != 0) {
                json_decref(detail);
                return rc;
        }
        /* audit_ok takes detail */
        return audit_ok(k->store, kind_event(it->kind), k->actor, serial, detail, 0, e);
}

/* One item: one transaction with its audit record; a refusal becomes an error item. */
static void handle_item(struct gmca_km *k, const struct gmca_km_item *it, const char *task,
                        struct gmca_km_item *out)
{
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        int rc;

        gmca_hex_upper(it->cert_no, it->cert_no_len, serial);
        out->kind = it->kind;
        memcpy(out->cert_no, it->cert_no, it->cert_no_len);
        out->cert_no_len = it->cert_no_len;
        if ((rc = gmca_store_begin(k->store, &e)) == 0 &&
            (rc = item_do(k, it, serial, task, out, &e)) == 0)
                rc = gmca_store_commit(k->store, &e);
        if (rc != 0) {
                gmca_store_rollback(k->store);
                audit_refusal(k->store, kind_event(it->kind), k->actor, serial, &e);
                item_error(out, rc, &e);
        }
}

/* ---- one request ---- */

/* Take the task number (its own transaction): GMCA_ERR_EXISTS for a replay. */
static int task_take(struct gmca_km *k, const struct gmca_km_msg *m, struct gmca_error *e)
{
        char task[24];
        struct gmca_q q;
        int rc;

        snprintf(task, sizeof(task), "%llu", (unsigned long long)m->task_no);
        if ((rc = gmca_store_begin(k->store, e)) != 0)
                return rc;
        if ((rc = gmca_q_open(k->store, SQL_TASK_INSERT, &q, e)) == 0) {
                gmca_q_text(&q, k->requester);
                gmca_q_text(&q, task);
                gmca_q_int(&q, gmca_now());
                rc = gmca_q_step(&q, e, "km: task %s", task);
                gmca_q_close(&q);
                if (rc == GMCA_DB_DONE)
                        rc = 0;
        }
        if (rc == 0 && (rc = gmca_q_open(k->store, SQL_TASK_PRUNE, &q, e)) == 0) {
                gmca_q_int(&q, gmca_now() - KM_TASK_KEEP);
                rc = gmca_q_step(&q, e, "km: forget old task numbers");
                gmca_q_close(&q);
                if (rc == GMCA_DB_DONE)
                        rc = 0;
        }
        if (rc == GMCA_ERR_EXISTS) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_EXISTS, "km: replayed request: taskNO %s seen",
                                    task);
        }
        if (rc == 0)
                rc = gmca_store_commit(k->store, e);
        if (rc != 0)
                gmca_store_rollback(k->store);
        return rc;
}

/* Parse, check signer and time, take the task number. */
static int request_accept(struct gmca_km *k, const uint8_t *req, size_t len, struct gmca_km_msg *m,
                          struct gmca_error *e)
{
        int64_t now = gmca_now(), skew;
        int rc;

        if (len > GMCA_KM_MSG_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km: request of %zu bytes (at most %u)",
                                      len, GMCA_KM_MSG_MAX);
        if ((rc = gmca_km_msg_parse(req, len, 0, m, e)) != 0)
                return rc;
        if ((rc = gmca_km_msg_verify(m, k->comm_cert, e)) != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km: request not signed by the trusted CA "
                                      "KM-communication certificate");
        }
        skew = m->time - now;
        if (skew > GMCA_KM_SKEW || skew < -GMCA_KM_SKEW)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "km: requestTime is %lld s from the KM's clock (at most %d)",
                                      (long long)skew, GMCA_KM_SKEW);
        return task_take(k, m, e);
}

int gmca_km_handle(struct gmca_km *k, const uint8_t *req, size_t len, uint8_t **resp,
                   size_t *resp_len, struct gmca_error *e)
{
        struct gmca_km_msg m, r;
        char task[24];
        int rc;

        memset(&m, 0, sizeof(m));
        memset(&r, 0, sizeof(r));
        if ((rc = request_accept(k, req, len, &m, e)) != 0) {
                audit_refusal(k->store, GMCA_EV_KM_REQUEST, "unverified peer", NULL, e);
                gmca_km_msg_clear(&m);
                return rc;
        }
        snprintf(task, sizeof(task), "%llu", (unsigned long long)m.task_no);
        r.response = 1;
        r.task_no = m.task_no;
        r.n = m.n;
        for (size_t i = 0; i < m.n; i++)
                handle_item(k, &m.items[i], task, &r.items[i]);
        r.time = gmca_now();
        /*
         * Should signing fail now, the items are committed and audited but
         * the CA hears nothing: it asks again with a new task, and an apply
         * answered E_EXISTS is recovered with a restore.
         */
        rc = gmca_km_msg_sign(&r, k->cert, &k->signer.base, resp, resp_len, e);
        gmca_km_msg_clear(&r);
        gmca_km_msg_clear(&m);
        return rc;
}

/* ---- destroy ---- */

int gmca_km_destroy(struct gmca_km *k, const char *serial, int64_t now, const char *actor,
                    struct gmca_error *e)
{
        struct key_row row;
        char when[32];
        int rc;

        memset(&row, 0, sizeof(row));
        if ((rc = gmca_store_begin(k->store, e)) != 0)
                return rc;
        if ((rc = key_get(k->store, serial, &row, e)) != 0)
                goto out;
        if (strcmp(row.state, "destroyed") == 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "km: the key of %s is destroyed already",
                                    serial);
                goto out;
        }
        if (now <= row.retain_until) {
                gmca_time_iso((time_t)row.retain_until, when, sizeof(when));
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "CPS §7.2.1.4: the key of %s is kept until %s", serial, when);
                goto out;
        }
        if ((rc = exec_serial(k->store, SQL_KEY_DESTROY, serial, now, e)) != 0 ||
            (rc = audit_ok(k->store, GMCA_EV_KM_DESTROY, actor, serial,
                           json_pack("{s:s, s:I}", "was", row.state, "retain_until",
                                     (json_int_t)row.retain_until),
                           0, e)) != 0 ||
            (rc = gmca_store_commit(k->store, e)) != 0)
                goto out;
out:
        if (rc != 0) {
                gmca_store_rollback(k->store);
                audit_refusal(k->store, GMCA_EV_KM_DESTROY, actor, serial, e);
        }
        key_row_clear(&row);
        return rc;
}

/* ---- the socket ---- */

/* The socket's directory: made 0700 if absent, refused if others may enter it. */
static int run_dir(const char *sock_path, struct gmca_error *e)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        const char *slash = strrchr(sock_path, '/');
        struct stat st;

        if (slash == NULL || (size_t)(slash - sock_path) >= sizeof(dir))
                gmca_strlcpy(dir, ".", sizeof(dir));
        else {
                memcpy(dir, sock_path, (size_t)(slash - sock_path));
                dir[slash - sock_path] = '\0';
        }
        if (dir[0] != '\0' && mkdir(dir, 0700) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "km: cannot create %s: %s", dir,
                                      strerror(errno));
        if (lstat(dir[0] != '\0' ? dir : "/", &st) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "km: %s: %s", dir, strerror(errno));
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "km: socket directory %s must be a directory of uid %u "
                                      "with mode 0700",
                                      dir, (unsigned)geteuid());
        return 0;
}

/* Bind and listen, mode 0600; a stale socket (nobody answering) is replaced. */
static int listen_on(const char *path, int *out, struct gmca_error *e)
{
        struct sockaddr_un addr;
        int fd, err;
        mode_t old;

        memset(&addr, 0, sizeof(addr));
        addr.sun_family = AF_UNIX;
        if (gmca_strlcpy(addr.sun_path, path, sizeof(addr.sun_path)) >= sizeof(addr.sun_path))
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: socket path too long: %s", path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "km: socket: %s", strerror(errno));
        if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_EXISTS, "km: a KM answers at %s already", path);
        }
        close(fd);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "km: socket: %s", strerror(errno));
        (void)unlink(path); /* stale: nobody answered */
        old = umask(0177);
        err = bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0 ? 0 : errno;
        umask(old);
        if (err != 0 || listen(fd, 8) != 0) {
                err = err != 0 ? err : errno;
                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "km: bind %s: %s", path, strerror(err));
        }
        *out = fd;
        return 0;
}

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly n bytes before deadline (monotonic ms); -1 on timeout, EOF, error. */
static int read_until(int fd, uint8_t *p, size_t n, int64_t deadline, volatile sig_atomic_t *stop)
{
        while (n > 0) {
                struct pollfd pfd = {fd, POLLIN, 0};
                int64_t left = deadline - mono_ms();
                ssize_t got;

                if (left <= 0 || *stop)
                        return -1;
                if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
                        continue;
                got = read(fd, p, n);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        return -1;
                p += got;
                n -= (size_t)got;
        }
        return 0;
}

static int peer_ok(int fd)
{
        struct ucred uc;
        socklen_t len = sizeof(uc);

        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && len == sizeof(uc) &&
               uc.uid == geteuid();
}

/* Frames until the peer closes, stalls or sends something refused. */
static void serve_conn(struct gmca_km *k, int fd, volatile sig_atomic_t *stop)
{
        struct timeval tv = {READ_TIMEOUT_MS / 1000, 0};
        uint8_t head[4], *req = NULL, *resp = NULL;
        size_t resp_len;
        uint32_t len;

        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        while (!*stop) {
                struct gmca_error e = {0};
                int64_t deadline = mono_ms() + READ_TIMEOUT_MS;

                if (read_until(fd, head, 4, deadline, stop) != 0)
                        break;
                len = gmca_get_be32(head);
                if (len == 0 || len > GMCA_KM_MSG_MAX) {
                        gmca_error_set(&e, GMCA_ERR_LIMIT, "km: frame of %u bytes (1..%u)", len,
                                       GMCA_KM_MSG_MAX);
                        audit_refusal(k->store, GMCA_EV_KM_REQUEST, "unverified peer", NULL, &e);
                        break;
                }
                if ((req = malloc(len)) == NULL || read_until(fd, req, len, deadline, stop) != 0)
                        break;
                if (gmca_km_handle(k, req, len, &resp, &resp_len, &e) != 0)
                        break;
                free(req);
                req = NULL;
                gmca_put_be32(head, (uint32_t)resp_len);
                if (gmca_write_all(fd, head, 4) != 0 || gmca_write_all(fd, resp, resp_len) != 0)
                        break;
                OPENSSL_free(resp);
                resp = NULL;
        }
        free(req);
        OPENSSL_free(resp);
        close(fd);
}

static void expire_now(struct gmca_km *k)
{
        struct gmca_error e = {0};
        int64_t n;

        if (gmca_km_expire(k->store, gmca_now(), "km", &n, &e) != 0)
                audit_refusal(k->store, GMCA_EV_KM_EXPIRE, "km", "km", &e);
}

int gmca_km_serve(struct gmca_km *k, const char *sock_path, volatile sig_atomic_t *stop,
                  struct gmca_error *e)
{
        int lfd = -1, rc;
        int64_t next_expire = 0;

        if ((rc = run_dir(sock_path, e)) != 0 || (rc = listen_on(sock_path, &lfd, e)) != 0)
                return rc;
        while (!*stop) {
                struct pollfd pfd = {lfd, POLLIN, 0};
                int fd;

                if (mono_ms() >= next_expire) {
                        expire_now(k);
                        next_expire = mono_ms() + 3600 * 1000;
                }
                if (poll(&pfd, 1, 1000) <= 0)
                        continue;
                if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
                        continue;
                if (!peer_ok(fd)) {
                        struct gmca_error why = {0};

                        gmca_error_set(&why, GMCA_ERR_AUTH, "km: peer of another uid refused");
                        audit_refusal(k->store, GMCA_EV_KM_REQUEST, "unverified peer", NULL, &why);
                        close(fd);
                        continue;
                }
                serve_conn(k, fd, stop);
        }
        close(lfd);
        unlink(sock_path);
        return 0;
}
