/*
 * ca_km: the CA's side of the link to its key management centre (km.h):
 * setting the link up with the custodians present (`gmca km link`), and
 * the round trips the CA engine makes for the encryption key pair of a
 * dual certificate, a recovery and a revocation.
 *
 * The KM is another trust zone (DESIGN.md, CPS §6.1.1): its answers are
 * believed only when they parse strictly, carry the pinned KM
 * certificate's EntName and SM2 signature, echo this request's task
 * number, are within GMCA_KM_SKEW of our clock, answer the serial asked,
 * and deliver an envelope whose public key is the one the encryption
 * certificate will certify. Every answer refused for any of these is on
 * the CA's audit chain (km.response). The CA's own KM-communication key
 * is kept encrypted under a passphrase derived from the key PIN, so only
 * an activated CA — custodians present — can speak for the CA.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca_internal.h"
#include "crypto.h"
#include "envelope.h"
#include "km.h"
#include "util.h"

#define KM_DIR "km"
#define KM_PROFILE "km"
#define COMM_PROFILE "km-comm"
#define COMM_LABEL "gmca km comm key v1"
#define EV_KM_LINK "km.link"
#define EV_KM_RESPONSE "km.response"
#define IO_TIMEOUT_SEC 10
#define JSON_MAX 4096
#define CERT_FILE_MAX 65536
#define TASK_MASK INT64_MAX /* task numbers are 63-bit */

struct gmca_km_link {
        struct gmca_ctx *c; /* borrowed: audits refusals on its chain */
        char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
        X509 *km_cert;   /* pinned: the only signer of answers */
        X509 *comm_cert; /* ours */
        EVP_PKEY *comm_key;
        struct gmca_pkey_signer signer;
        int fd; /* -1 until the first round trip */
};

/* ---- files ---- */

/* hex(HMAC-SM3(key PIN, label)): the comm key's passphrase, 64 characters. */
static int comm_pass(const struct gmca_ctx *c, char pass[2 * GMCA_SM3_LEN + 1],
                     struct gmca_error *e)
{
        uint8_t mac[GMCA_SM3_LEN];
        int rc;

        if (c->secrets == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "km: the CA is not activated here (no key PIN)");
        rc = gmca_hmac_sm3(CTX_KEYPIN(c), KEYPIN_LEN, COMM_LABEL, strlen(COMM_LABEL), mac, e);
        if (rc == 0)
                gmca_hex(mac, sizeof(mac), pass);
        OPENSSL_cleanse(mac, sizeof(mac));
        return rc;
}

static X509 *read_cert(const char *path, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        X509 *x;

        if (gmca_read_file(path, CERT_FILE_MAX, &buf, &len, e) != 0)
                return NULL;
        x = gmca_cert_parse(buf, len, e);
        free(buf);
        return x;
}

/* An absolute path that fits a sockaddr_un. */
static int sock_ok(const char *path, struct gmca_error *e)
{
        if (path == NULL || path[0] != '/' ||
            strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "km: socket must be an absolute path under %zu bytes",
                                      sizeof(((struct sockaddr_un *)0)->sun_path));
        return 0;
}

/* km.json: {"socket": PATH} and nothing else. */
static int read_link_json(const char *path, char *sock, size_t len, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t n = 0;
        json_t *root = NULL, *s;
        int rc;

        if ((rc = gmca_read_file(path, JSON_MAX, &buf, &n, e)) != 0)
                return rc;
        root = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
        free(buf);
        if (!json_is_object(root) || json_object_size(root) != 1 ||
            !json_is_string(s = json_object_get(root, "socket")) ||
            sock_ok(json_string_value(s), e) != 0) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not {\"socket\": PATH}", path);
        }
        gmca_strlcpy(sock, json_string_value(s), len);
        json_decref(root);
        return 0;
}

/*
 * cert is byte for byte a certificate this CA issued under profile, valid
 * now and not revoked; for the KM's, with digitalSignature (it signs answers).
 */
static int cert_issued_here(struct gmca_ctx *c, X509 *cert, const char *profile,
                            struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        char serial[GMCA_SERIAL_HEX_MAX];
        uint8_t *der = NULL;
        size_t len = 0;
        int64_t now = (int64_t)gmca_now();
        int rc;

        memset(&rec, 0, sizeof(rec));
        if (gmca_serial_hex(cert, serial, sizeof(serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: certificate without usable serial");
        if ((rc = gmca_store_cert_get(c->store, serial, &rec, e)) != 0) {
                if (rc == GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(e);
                        rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                            "km: certificate %s was not issued by this CA", serial);
                }
                return rc;
        }
        if ((rc = ca_cert_der(cert, &der, &len, e)) != 0)
                goto out;
        rc = GMCA_ERR_VERIFY;
        if (len != rec.der_len || CRYPTO_memcmp(der, rec.der, len) != 0)
                gmca_error_set(e, rc, "km: certificate %s is not the one issued under that serial",
                               serial);
        else if (strcmp(rec.profile, profile) != 0)
                gmca_error_set(e, rc, "km: certificate %s has profile %s, not %s", serial,
                               rec.profile, profile);
        else if (rec.status == GMCA_CERT_REVOKED)
                gmca_error_set(e, rc, "km: certificate %s is revoked", serial);
        else if (now < rec.not_before || now > rec.not_after)
                gmca_error_set(e, rc, "km: certificate %s is not valid now", serial);
        else if (!(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE))
                gmca_error_set(e, rc, "km: certificate %s lacks digitalSignature", serial);
        else
                rc = 0;
out:
        OPENSSL_free(der);
        gmca_cert_rec_clear(&rec);
        return rc;
}

/* ---- the link ---- */

void gmca_km_link_close(struct gmca_km_link *l)
{
        if (l == NULL)
                return;
        if (l->fd >= 0)
                close(l->fd);
        X509_free(l->km_cert);
        X509_free(l->comm_cert);
        EVP_PKEY_free(l->comm_key); /* OpenSSL clears the private scalar */
        OPENSSL_cleanse(&l->signer, sizeof(l->signer));
        free(l);
}

static int link_load(struct gmca_ctx *c, struct gmca_km_link *l, struct gmca_error *e)
{
        char dir[PATH_MAX], p[PATH_MAX], pass[2 * GMCA_SM3_LEN + 1];
        struct stat st;
        int rc;

        if ((rc = ca_path_join(dir, sizeof(dir), c->dir, KM_DIR, e)) != 0 ||
            (rc = ca_pathf(p, sizeof(p), e, "%s/km.json", dir)) != 0)
                return rc;
        if (stat(p, &st) != 0 && errno == ENOENT)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "km: this CA has no KM (gmca km link)");
        if ((rc = read_link_json(p, l->sock, sizeof(l->sock), e)) != 0 ||
            (rc = ca_pathf(p, sizeof(p), e, "%s/km.crt", dir)) != 0)
                return rc;
        if ((l->km_cert = read_cert(p, e)) == NULL ||
            (rc = ca_pathf(p, sizeof(p), e, "%s/comm.crt", dir)) != 0 ||
            (l->comm_cert = read_cert(p, e)) == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_INVALID;
        if ((rc = cert_issued_here(c, l->km_cert, KM_PROFILE, e)) != 0 ||
            (rc = cert_issued_here(c, l->comm_cert, COMM_PROFILE, e)) != 0 ||
            (rc = comm_pass(c, pass, e)) != 0 ||
            (rc = ca_pathf(p, sizeof(p), e, "%s/comm.key", dir)) != 0)
                goto out;
        if ((l->comm_key = gmca_key_read(p, pass, strlen(pass), e)) == NULL) {
                rc = e != NULL && e->code != 0 ? e->code : GMCA_ERR_AUTH;
                goto out;
        }
        if (EVP_PKEY_eq(l->comm_key, X509_get0_pubkey(l->comm_cert)) != 1) {
                gmca_ossl_clear();
                rc = gmca_error_set(e, GMCA_ERR_TAMPER, "km: comm.key is not comm.crt's key");
                goto out;
        }
        rc = gmca_pkey_signer_init(&l->signer, l->comm_key, GMCA_SM2_DEFAULT_ID, e);
out:
        OPENSSL_cleanse(pass, sizeof(pass));
        return rc;
}

struct gmca_km_link *gmca_ca_km_link(struct gmca_ctx *c, struct gmca_error *e)
{
        struct gmca_km_link *l = calloc(1, sizeof(*l));

        if (l == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        l->c = c;
        l->fd = -1;
        if (link_load(c, l, e) != 0) {
                gmca_km_link_close(l);
                return NULL;
        }
        return l;
}

/* ---- the wire ---- */

static void drop(struct gmca_km_link *l)
{
        if (l->fd >= 0)
                close(l->fd);
        l->fd = -1;
}

static int dial(struct gmca_km_link *l, struct gmca_error *e)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct timeval tv = {.tv_sec = IO_TIMEOUT_SEC};
        int fd;

        memcpy(sa.sun_path, l->sock, strlen(l->sock) + 1);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "km: unreachable (socket: %s)",
                                      strerror(errno));
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
                int err = errno;

                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "km: unreachable (%s: %s)", l->sock,
                                      strerror(err));
        }
        l->fd = fd;
        return 0;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/*
 * One framed request and its framed answer. *got is set once any byte of
 * the answer arrived, after which a retry could repeat work on the KM.
 */
static int exchange_once(struct gmca_km_link *l, const uint8_t *req, size_t len, uint8_t **resp,
                         size_t *resp_len, int *got, struct gmca_error *e)
{
        uint8_t hdr[4];
        uint32_t n;
        uint8_t *buf;

        *got = 0;
        gmca_put_be32(hdr, (uint32_t)len);
        if (send_all(l->fd, hdr, 4) != 0 || send_all(l->fd, req, len) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "km: unreachable (send: %s)",
                                      strerror(errno));
        if (gmca_read_all(l->fd, hdr, 4) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "km: unreachable (no answer)");
        *got = 1;
        n = gmca_get_be32(hdr);
        if (n == 0 || n > GMCA_KM_MSG_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "km: answer of %u bytes", n);
        if ((buf = OPENSSL_malloc(n)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (gmca_read_all(l->fd, buf, n) != 0) {
                OPENSSL_free(buf);
                return gmca_error_set(e, GMCA_ERR_IO, "km: unreachable (answer cut short)");
        }
        *resp = buf;
        *resp_len = n;
        return 0;
}

/* Connect lazily; a connection broken before the answer began is dialled again
 * once. */
static int exchange(struct gmca_km_link *l, const uint8_t *req, size_t len, uint8_t **resp,
                    size_t *resp_len, struct gmca_error *e)
{
        int rc, got = 0, fresh = l->fd < 0;

        if (fresh && (rc = dial(l, e)) != 0)
                return rc;
        rc = exchange_once(l, req, len, resp, resp_len, &got, e);
        if (rc == GMCA_ERR_IO && !got && !fresh) {
                drop(l);
                gmca_error_clear(e);
                if ((rc = dial(l, e)) != 0)
                        return rc;
                rc = exchange_once(l, req, len, resp, resp_len, &got, e);
        }
        if (rc != 0)
                drop(l);
        return rc;
}

/* ---- round trips ---- */

static int task_new(uint64_t *task, struct gmca_error *e)
{
        uint8_t b[8];
        int rc;

        do {
                if ((rc = gmca_rand_bytes(b, sizeof(b), e)) != 0)
                        return rc;
                *task = gmca_get_be64(b) & (uint64_t)TASK_MASK;
        } while (*task == 0);
        return 0;
}

static int err_code(int64_t err_no)
{
        switch (err_no) {
        case GMCA_KM_E_NOTFOUND:
                return GMCA_ERR_NOTFOUND;
        case GMCA_KM_E_STATE:
                return GMCA_ERR_STATE;
        case GMCA_KM_E_EXISTS:
                return GMCA_ERR_EXISTS;
        case GMCA_KM_E_INVALID:
                return GMCA_ERR_INVALID;
        default:
                return GMCA_ERR_INTERNAL;
        }
}

/* ret_pub is the public key the envelope delivers. */
static int envelope_matches(const struct gmca_km_item *it, struct gmca_error *e)
{
        EVP_PKEY *k = gmca_envelope_pubkey(it->envelope, it->envelope_len, e);
        int eq = k != NULL && EVP_PKEY_eq(k, it->ret_pub) == 1;

        EVP_PKEY_free(k);
        gmca_ossl_clear();
        if (!eq)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km: retPubKey is not the key the envelope delivers");
        return 0;
}

/* Everything km.h promises about an answer to req, before its content is used.
 */
static int answer_check(struct gmca_km_link *l, const struct gmca_km_msg *req,
                        const struct gmca_km_msg *ans, struct gmca_error *e)
{
        const struct gmca_km_item *q = &req->items[0], *a = &ans->items[0];
        int64_t now = (int64_t)gmca_now();
        int rc;

        if ((rc = gmca_km_msg_verify(ans, l->km_cert, e)) != 0)
                return rc;
        if (ans->task_no != req->task_no)
                return gmca_error_set(e, GMCA_ERR_VERIFY, "km: answer for task %llu, not %llu",
                                      (unsigned long long)ans->task_no,
                                      (unsigned long long)req->task_no);
        if (ans->time < now - GMCA_KM_SKEW || ans->time > now + GMCA_KM_SKEW)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km: answer time is more than %d s off our clock",
                                      GMCA_KM_SKEW);
        if (ans->n != 1 || (a->kind != q->kind && a->kind != GMCA_KM_ERROR))
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km: the answer does not fit the request");
        if (a->kind == GMCA_KM_ERROR)
                return 0;
        if (a->cert_no_len != q->cert_no_len || memcmp(a->cert_no, q->cert_no, q->cert_no_len) != 0)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "km: the answer is for another userCertNo");
        return a->kind == GMCA_KM_REVOKE ? 0 : envelope_matches(a, e);
}

static void audit_refusal(struct gmca_km_link *l, const struct gmca_km_msg *req,
                          const struct gmca_error *cause)
{
        char obj[48];

        snprintf(obj, sizeof(obj), "task %llu", (unsigned long long)req->task_no);
        (void)ca_audit_failure(l->c, EV_KM_RESPONSE, obj, cause);
}

/* Sign req (one item, *it moved in), send it, check the answer; out takes its
 * item. */
static int round_trip(struct gmca_km_link *l, struct gmca_km_item *it, struct gmca_km_item *out,
                      struct gmca_error *e)
{
        struct gmca_km_msg req = {0}, ans = {0};
        struct gmca_error err = {0};
        uint8_t *der = NULL, *resp = NULL;
        size_t len = 0, resp_len = 0;
        int rc;

        req.items[0] = *it;
        memset(it, 0, sizeof(*it));
        req.n = 1;
        req.time = (int64_t)gmca_now();
        if ((rc = task_new(&req.task_no, e)) != 0 ||
            (rc = gmca_km_msg_sign(&req, l->comm_cert, &l->signer.base, &der, &len, e)) != 0 ||
            (rc = exchange(l, der, len, &resp, &resp_len, e)) != 0)
                goto out;
        if ((rc = gmca_km_msg_parse(resp, resp_len, 1, &ans, &err)) != 0 ||
            (rc = answer_check(l, &req, &ans, &err)) != 0) {
                drop(l); /* whatever is on this connection is not to be believed */
                audit_refusal(l, &req, &err);
                *e = err;
                goto out;
        }
        if (ans.items[0].kind == GMCA_KM_ERROR) {
                rc = gmca_error_set(e, err_code(ans.items[0].err_no), "km: %s (errNo %lld)",
                                    ans.items[0].err_desc ? ans.items[0].err_desc : "refused",
                                    (long long)ans.items[0].err_no);
                goto out;
        }
        *out = ans.items[0];
        memset(&ans.items[0], 0, sizeof(ans.items[0]));
out:
        if (rc != 0 && e != NULL && err.code != 0 && e->code == 0)
                *e = err;
        gmca_km_msg_clear(&req);
        gmca_km_msg_clear(&ans);
        OPENSSL_free(der);
        OPENSSL_free(resp);
        return rc;
}

static int item_start(struct gmca_km_item *it, int kind, const uint8_t *cert_no, size_t len,
                      EVP_PKEY *pub, struct gmca_error *e)
{
        memset(it, 0, sizeof(*it));
        it->kind = kind;
        if (cert_no == NULL || len == 0 || len > sizeof(it->cert_no))
                return gmca_error_set(e, GMCA_ERR_INVALID, "km: serial of 1..20 octets");
        memcpy(it->cert_no, cert_no, len);
        it->cert_no_len = len;
        if (pub != NULL && EVP_PKEY_up_ref(pub) == 1)
                it->user_pub = pub;
        return 0;
}

int gmca_km_apply(struct gmca_km_link *l, const uint8_t *cert_no, size_t cert_no_len,
                  EVP_PKEY *sig_pub, int64_t not_before, int64_t not_after, const char *user_name,
                  struct gmca_km_item *out, struct gmca_error *e)
{
        struct gmca_km_item it;
        int rc;

        if ((rc = item_start(&it, GMCA_KM_APPLY, cert_no, cert_no_len, sig_pub, e)) == 0 &&
            user_name != NULL && (it.user_name = strdup(user_name)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        it.not_before = not_before;
        it.not_after = not_after;
        if (rc == 0 && not_before >= not_after)
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "km: notBefore is not before notAfter");
        if (rc == 0)
                rc = round_trip(l, &it, out, e);
        gmca_km_item_clear(&it);
        return rc;
}

int gmca_km_restore(struct gmca_km_link *l, const uint8_t *cert_no, size_t cert_no_len,
                    EVP_PKEY *recipient, const char *info_json, struct gmca_km_item *out,
                    struct gmca_error *e)
{
        struct gmca_km_item it;
        int rc;

        if ((rc = item_start(&it, GMCA_KM_RESTORE, cert_no, cert_no_len, recipient, e)) == 0 &&
            info_json != NULL && (it.info = strdup(info_json)) == NULL)
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (rc == 0)
                rc = round_trip(l, &it, out, e);
        gmca_km_item_clear(&it);
        return rc;
}

int gmca_km_revoke(struct gmca_km_link *l, const uint8_t *cert_no, size_t cert_no_len,
                   struct gmca_error *e)
{
        struct gmca_km_item it, out = {0};
        int rc;

        if ((rc = item_start(&it, GMCA_KM_REVOKE, cert_no, cert_no_len, NULL, e)) == 0)
                rc = round_trip(l, &it, &out, e);
        gmca_km_item_clear(&it);
        gmca_km_item_clear(&out);
        return rc;
}

/* ---- gmca km link ---- */

/* A CSR for the comm key: C and O of the default CA, CN "<CA> KM link". */
static int comm_csr(struct gmca_ctx *c, EVP_PKEY *key, uint8_t **der, size_t *len,
                    struct gmca_error *e)
{
        struct ca_slot *ca = ca_find(c, NULL, e);
        const X509_NAME *sub;
        X509_NAME *nm = NULL;
        X509_REQ *req = NULL;
        EVP_MD_CTX *md = NULL;
        char cn[GMCA_NAME_MAX + 16];
        unsigned char *out = NULL;
        int rc = GMCA_ERR_INTERNAL, n;

        if (ca == NULL)
                return e != NULL && e->code != 0 ? e->code : GMCA_ERR_NOTFOUND;
        sub = X509_get_subject_name(ca->cert);
        snprintf(cn, sizeof(cn), "%s KM link", ca->rec.name);
        if ((nm = X509_NAME_new()) == NULL || (req = X509_REQ_new()) == NULL)
                goto out;
        for (int nid = 0, i = 0; i < 2; i++) {
                int at;

                nid = i == 0 ? NID_countryName : NID_organizationName;
                if ((at = X509_NAME_get_index_by_NID(sub, nid, -1)) < 0 ||
                    X509_NAME_add_entry(nm, X509_NAME_get_entry(sub, at), -1, 0) != 1)
                        goto out;
        }
        if (X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                       -1, -1, 0) != 1 ||
            X509_REQ_set_subject_name(req, nm) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
            (md = gmca_sm2_sign_ctx(key, NULL, e)) == NULL || X509_REQ_sign_ctx(req, md) <= 0 ||
            (n = i2d_X509_REQ(req, &out)) <= 0)
                goto out;
        *der = out;
        *len = (size_t)n;
        rc = 0;
out:
        if (rc != 0)
                gmca_error_ossl(e, rc, "km link: cannot make the comm key's request");
        EVP_MD_CTX_free(md);
        X509_REQ_free(req);
        X509_NAME_free(nm);
        return rc;
}

/* The four files of km.h in dir (new, 0700). */
static int write_link(const char *dir, const char *sock, X509 *km_cert, X509 *comm_cert,
                      EVP_PKEY *key, const char *pass, struct gmca_error *e)
{
        char p[PATH_MAX], *js = NULL;
        json_t *o = json_pack("{s:s}", "socket", sock);
        int rc;

        if (o == NULL || (js = json_dumps(o, JSON_COMPACT)) == NULL) {
                json_decref(o);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        json_decref(o);
        if (mkdir(dir, 0700) != 0)
                rc = gmca_error_set(e, errno == EEXIST ? GMCA_ERR_EXISTS : GMCA_ERR_IO, "%s: %s",
                                    dir, strerror(errno));
        else if ((rc = ca_pathf(p, sizeof(p), e, "%s/km.json", dir)) == 0 &&
                 (rc = gmca_write_file_excl(p, js, strlen(js), 0600, e)) == 0 &&
                 (rc = ca_pathf(p, sizeof(p), e, "%s/km.crt", dir)) == 0 &&
                 (rc = ca_write_pem_cert(p, km_cert, e)) == 0 &&
                 (rc = ca_pathf(p, sizeof(p), e, "%s/comm.crt", dir)) == 0 &&
                 (rc = ca_write_pem_cert(p, comm_cert, e)) == 0 &&
                 (rc = ca_pathf(p, sizeof(p), e, "%s/comm.key", dir)) == 0)
                rc = gmca_key_write(p, key, pass, strlen(pass), e);
        free(js);
        return rc;
}

/*
 * The custodians' key PIN: after gmca_ctx_authorise it stays in c when the
 * keys were activated here, and is opened again when the engine signs (the
 * authorisation keeps only K_authz).
 */
static int link_pass(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                     char pass[2 * GMCA_SM3_LEN + 1], struct gmca_error *e)
{
        struct ca_custody m;
        int rc, opened = 0;

        if (c->secrets == NULL) {
                if ((rc = ca_open_master(c, cust, n, &m, e)) != 0)
                        return rc;
                opened = 1;
        }
        rc = comm_pass(c, pass, e);
        if (opened)
                ca_forget_secrets(c);
        OPENSSL_cleanse(&m, sizeof(m));
        return rc;
}

/* Everything after the checks; *serial: the comm certificate issued (even on
 * failure). */
static int link_create(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                       X509 *km_cert, const char *sock, char serial[GMCA_SERIAL_HEX_MAX],
                       char comm_path[4096], struct gmca_error *e)
{
        char pass[2 * GMCA_SM3_LEN + 1] = "", tmp[PATH_MAX], dir[PATH_MAX];
        EVP_PKEY *key = NULL;
        X509 *comm = NULL;
        uint8_t *csr = NULL;
        size_t csr_len = 0;
        struct gmca_issue_req r = {.profile = COMM_PROFILE};
        int rc;

        if ((rc = ca_path_join(dir, sizeof(dir), c->dir, KM_DIR, e)) != 0 ||
            (rc = ca_pathf(tmp, sizeof(tmp), e, "%s.new", dir)) != 0)
                return rc;
        if (access(dir, F_OK) == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "km link: %s exists (this CA has a KM already)", dir);
        if ((rc = gmca_ctx_authorise(c, cust, n, e)) != 0 ||
            (rc = link_pass(c, cust, n, pass, e)) != 0)
                goto out;
        if ((key = gmca_sm2_keygen(e)) == NULL) {
                rc = GMCA_ERR_CRYPTO;
                goto out;
        }
        if ((rc = comm_csr(c, key, &csr, &csr_len, e)) != 0)
                goto out;
        r.csr = csr;
        r.csr_len = csr_len;
        if ((rc = gmca_ca_issue(c, &r, serial, &comm, e)) != 0)
                goto out;
        ca_rm_tree(tmp); /* left by an interrupted link */
        if ((rc = write_link(tmp, sock, km_cert, comm, key, pass, e)) != 0)
                goto out;
        if (rename(tmp, dir) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "%s: %s", dir, strerror(errno));
                goto out;
        }
        rc = ca_pathf(comm_path, PATH_MAX, e, "%s/comm.crt", dir);
out:
        if (rc != 0)
                ca_rm_tree(tmp);
        OPENSSL_cleanse(pass, sizeof(pass));
        EVP_PKEY_free(key);
        X509_free(comm);
        OPENSSL_free(csr);
        return rc;
}

int gmca_ca_km_link_create(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                           const uint8_t *km_cert, size_t km_cert_len, const char *sock_path,
                           char comm_path[4096], struct gmca_error *e)
{
        struct gmca_error cause = {0};
        struct gmca_audit_event ev;
        char serial[GMCA_SERIAL_HEX_MAX] = "", km_serial[GMCA_SERIAL_HEX_MAX] = "?";
        char *detail = NULL;
        X509 *km = NULL;
        int rc;

        if ((km = gmca_cert_parse(km_cert, km_cert_len, e)) == NULL) {
                rc = e != NULL && e->code != 0 ? e->code : GMCA_ERR_INVALID;
                goto fail;
        }
        if (gmca_serial_hex(km, km_serial, sizeof(km_serial)) != 0)
                gmca_strlcpy(km_serial, "?", sizeof(km_serial));
        if ((rc = sock_ok(sock_path, e)) != 0 ||
            (rc = cert_issued_here(c, km, KM_PROFILE, e)) != 0 ||
            (rc = link_create(c, cust, n, km, sock_path, serial, comm_path, e)) != 0)
                goto fail;
        detail =
            ca_detail_json(json_pack("{s:s, s:s, s:s, s:s}", "km_cert", km_serial, "comm_cert",
                                     serial, "socket", sock_path, "custodians", c->custodians));
        ev = (struct gmca_audit_event){EV_KM_LINK, c->actor, 1, km_serial, detail};
        rc = gmca_audit_record(c->store, &ev, e);
        free(detail);
        X509_free(km);
        return rc;
fail:
        if (e != NULL)
                cause = *e;
        /* A comm certificate nobody can use is withdrawn (cessationOfOperation). */
        if (serial[0] != '\0' && gmca_ca_revoke(c, serial, 5, 0, &cause) != 0 && e != NULL) {
                size_t k = strlen(e->msg);

                snprintf(e->msg + k, sizeof(e->msg) - k, " [comm certificate %s not revoked]",
                         serial);
        }
        X509_free(km);
        return ca_reject(c, EV_KM_LINK, km_serial, rc, e);
}
