/*
 * gmca token: a software stand-in for the subscriber's USB key (a GM/T
 * 0016 container with a signature and an encryption key pair), so that
 * the dual-certificate flows of issue 6 can be driven end to end without
 * hardware. The signature key pair is generated inside the token and never
 * leaves it; the encryption key pair comes from the KM as an
 * SM2EnvelopedKey or ENVELOPEDKEYBLOB sealed to the signature key
 * (envelope.h), and older encryption keys are kept so that data encrypted
 * to a previous encryption certificate still decrypts after a rekey (CPS
 * §7.3.2). The token is a directory (mode 0700, files 0600):
 *
 *   token.json        marker written by `token init`
 *   sign.key          signature private key, encrypted PKCS#8 under the PIN
 *   sign.pub          its public key (PEM), readable without the PIN
 *   enc-N.key/.pub    encryption key N (1, 2, ...; the highest is current)
 *   cert-<fp>.pem     the certificate of the key whose SM3 fingerprint of
 *                     04||X||Y is fp; an encryption certificate may come
 *                     before its key
 *
 * The PIN is set by the first `token csr` (the first key written under
 * it) and checked by reading a key with it. Nothing here is CA state, so
 * nothing is audited: the token belongs to the subscriber.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "crypto.h"
#include "envelope.h"
#include "gmt0010.h"
#include "util.h"
#include "x509.h"

#define TOKEN_ENC_MAX 64            /* encryption keys kept in one token */
#define TOKEN_FILES_MAX 1024        /* directory entries looked at */
#define TOKEN_DATA_MAX (64u << 20)  /* bytes signed, encrypted or decrypted */
#define TOKEN_SMALL_MAX (64u << 10) /* public keys, envelopes */
#define FP_HEX (2 * GMCA_SM3_LEN + 1)
#define MARKER "{\"format\": \"gmca-soft-token\", \"version\": 1}\n"

static const char usage[] =
    "usage: gmca token <subcommand> --token DIR [options]\n"
    "\n"
    "A software token standing in for a subscriber's USB key (GM/T 0016): a\n"
    "signature key pair made inside it, an encryption key pair imported from the\n"
    "KM's envelope, their certificates. Private keys are kept encrypted under the\n"
    "token PIN (--pin-file FILE, else asked on the terminal).\n"
    "\n"
    "  init                          create the token directory (must be empty or absent)\n"
    "  csr --subject DN [--out F]    PKCS#10 request for the signature key (made on\n"
    "                                first use; later requests reuse it)\n"
    "  import-cert FILE              the signature or an encryption certificate\n"
    "  import-key FILE               the encryption key pair: SM2EnvelopedKey (DER or\n"
    "                                PEM) or ENVELOPEDKEYBLOB, sealed to the signature key\n"
    "  sign --in F --out SIG         SM2 signature (ID 1234567812345678), DER\n"
    "  verify --in F --sig SIG [--cert C]  check one (default: the token's certificate)\n"
    "  encrypt --cert C --in F --out OUT [--cms]  SM2Cipher to C, or with --cms a\n"
    "                                GM/T 0010 EnvelopedData\n"
    "  decrypt --in F --out OUT      with the current, then older encryption keys\n"
    "  show                          certificates and key fingerprints (JSON)\n"
    "\n"
    "Testing aid, standing in for the KM: seal-for-test --key K [--pass-file P]\n"
    "  --cert SIGNCERT --out ENV.der [--blob-out ENV.blob]\n";

struct tok {
        char seen[32];
        const char *dir, *pin_file, *subject, *out, *in, *sig, *cert, *key, *pass_file, *blob_out;
        const char *arg; /* the one positional argument of import-cert / import-key */
        int cms;
};

static int parse(int argc, char **argv, struct tok *o)
{
        static const struct option opts[] = {
            {"token", required_argument, NULL, 't'},
            {"pin-file", required_argument, NULL, 'p'},
            {"subject", required_argument, NULL, 's'},
            {"out", required_argument, NULL, 'o'},
            {"in", required_argument, NULL, 'i'},
            {"sig", required_argument, NULL, 'S'},
            {"cert", required_argument, NULL, 'c'},
            {"key", required_argument, NULL, 'k'},
            {"pass-file", required_argument, NULL, 'P'},
            {"blob-out", required_argument, NULL, 'b'},
            {"cms", no_argument, NULL, 'm'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char **slot[128] = {0};
        int ch;

        memset(o, 0, sizeof(*o));
        slot['t'] = &o->dir;
        slot['p'] = &o->pin_file;
        slot['s'] = &o->subject;
        slot['o'] = &o->out;
        slot['i'] = &o->in;
        slot['S'] = &o->sig;
        slot['c'] = &o->cert;
        slot['k'] = &o->key;
        slot['P'] = &o->pass_file;
        slot['b'] = &o->blob_out;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                if (ch == 'h')
                        return -1;
                if (ch == 'm')
                        o->cms = 1;
                else if (ch > 0 && ch < 128 && slot[ch] != NULL)
                        *slot[ch] = optarg;
                else
                        return EXIT_USAGE;
        }
        if (optind < argc)
                o->arg = argv[optind++];
        if (optind != argc)
                return cli_usage_error("%s: unexpected argument '%s'", argv[0], argv[optind]);
        return 0;
}

/* dir/name into buf; GMCA_ERR_INVALID when it does not fit. */
static int token_path(char *buf, size_t len, const char *dir, const char *name,
                      struct gmca_error *e)
{
        if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--token: path too long");
        return 0;
}

static int exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

/* 0 if dir is a token made by `token init`. */
static int token_open(const struct tok *o, struct gmca_error *e)
{
        char p[PATH_MAX];
        int rc;

        if (o->dir == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--token DIR is required");
        if ((rc = token_path(p, sizeof(p), o->dir, "token.json", e)) != 0)
                return rc;
        if (!exists(p))
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "%s: not a token (no token.json; see `gmca token init`)",
                                      o->dir);
        return 0;
}

/* Lower-case hex SM3 of the public point 04||X||Y: the name a key's certificate is kept under. */
static int fingerprint(const EVP_PKEY *key, char fp[FP_HEX], struct gmca_error *e)
{
        uint8_t pt[65], md[GMCA_SM3_LEN];
        int rc;

        pt[0] = 0x04;
        if ((rc = gmca_sm2_pub_xy(key, pt + 1, e)) != 0)
                return rc;
        if (gmca_sm3(pt, sizeof(pt), md) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "SM3 failed");
        gmca_hex(md, sizeof(md), fp);
        return 0;
}

static EVP_PKEY *read_pub(const char *path, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        BIO *bio = NULL;
        EVP_PKEY *key = NULL;

        if (gmca_read_file(path, TOKEN_SMALL_MAX, &buf, &len, e) != 0)
                return NULL;
        if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
            (key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL)
                gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: not a PEM public key", path);
        BIO_free(bio);
        free(buf);
        return key;
}

/* PEM of a public key or a certificate, exclusive (excl) or replacing, mode 0600. */
static int write_pem(const char *path, EVP_PKEY *pub, X509 *cert, int excl, struct gmca_error *e)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        long n;
        int rc;

        if (bio == NULL || (pub != NULL && PEM_write_bio_PUBKEY(bio, pub) != 1) ||
            (cert != NULL && PEM_write_bio_X509(bio, cert) != 1) ||
            (n = BIO_get_mem_data(bio, &data)) <= 0) {
                BIO_free(bio);
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: cannot encode PEM", path);
        }
        rc = excl ? gmca_write_file_excl(path, data, (size_t)n, 0600, e)
                  : gmca_write_file_atomic(path, data, (size_t)n, 0600, e);
        BIO_free(bio);
        return rc;
}

/* A key pair into name.key (under the PIN) and name.pub; neither is left if one fails. */
static int store_key(const char *dir, const char *name, EVP_PKEY *key, const char *pin,
                     size_t pinlen, struct gmca_error *e)
{
        char kp[PATH_MAX], pp[PATH_MAX], fn[64];
        int rc;

        snprintf(fn, sizeof(fn), "%s.key", name);
        if ((rc = token_path(kp, sizeof(kp), dir, fn, e)) != 0)
                return rc;
        snprintf(fn, sizeof(fn), "%s.pub", name);
        if ((rc = token_path(pp, sizeof(pp), dir, fn, e)) != 0)
                return rc;
        if ((rc = gmca_key_write(kp, key, pin, pinlen, e)) != 0)
                return rc;
        if ((rc = write_pem(pp, key, NULL, 1, e)) != 0)
                unlink(kp);
        return rc;
}

/* The private key name.key under the PIN: GMCA_ERR_AUTH on a wrong PIN. */
static EVP_PKEY *load_key(const char *dir, const char *name, const char *pin, size_t pinlen,
                          struct gmca_error *e)
{
        char p[PATH_MAX], fn[64];
        EVP_PKEY *key;

        snprintf(fn, sizeof(fn), "%s.key", name);
        if (token_path(p, sizeof(p), dir, fn, e) != 0)
                return NULL;
        if (!exists(p)) {
                gmca_error_set(e, GMCA_ERR_NOTFOUND, "%s: the token has no %s key", dir, name);
                return NULL;
        }
        if ((key = gmca_key_read(p, pin, pinlen, e)) == NULL && e->code == GMCA_ERR_AUTH) {
                gmca_error_clear(e);
                gmca_error_set(e, GMCA_ERR_AUTH, "%s: wrong PIN", dir);
        }
        return key;
}

/* The public key of name (sign, enc-N), or NULL (e set) when there is none. */
static EVP_PKEY *load_pub(const char *dir, const char *name, struct gmca_error *e)
{
        char p[PATH_MAX], fn[64];

        snprintf(fn, sizeof(fn), "%s.pub", name);
        if (token_path(p, sizeof(p), dir, fn, e) != 0)
                return NULL;
        if (!exists(p)) {
                gmca_error_set(e, GMCA_ERR_NOTFOUND, "%s: the token has no %s key", dir, name);
                return NULL;
        }
        return read_pub(p, e);
}

/* How many encryption keys: enc-1 .. enc-N exist. */
static int enc_count(const char *dir)
{
        char p[PATH_MAX];
        int n = 0;

        while (n < TOKEN_ENC_MAX) {
                if ((size_t)snprintf(p, sizeof(p), "%s/enc-%d.pub", dir, n + 1) >= sizeof(p) ||
                    !exists(p))
                        break;
                n++;
        }
        return n;
}

/* The certificate kept for fingerprint fp, or NULL (e untouched) if there is none. */
static X509 *cert_for(const char *dir, const char *fp, struct gmca_error *e)
{
        char p[PATH_MAX];

        if ((size_t)snprintf(p, sizeof(p), "%s/cert-%s.pem", dir, fp) >= sizeof(p) || !exists(p))
                return NULL;
        return cli_load_cert(p, e);
}

/* The role of fingerprint fp in the token: 0 signature, N encryption key N, -1 none. */
static int key_role(const char *dir, const char *fp, struct gmca_error *e)
{
        char kfp[FP_HEX], name[32];
        int n = enc_count(dir);

        for (int i = 0; i <= n; i++) {
                EVP_PKEY *pub;
                int same;

                if (i == 0)
                        snprintf(name, sizeof(name), "sign");
                else
                        snprintf(name, sizeof(name), "enc-%d", i);
                if ((pub = load_pub(dir, name, e)) == NULL) {
                        gmca_error_clear(e);
                        continue;
                }
                same = fingerprint(pub, kfp, e) == 0 && strcmp(kfp, fp) == 0;
                EVP_PKEY_free(pub);
                if (same)
                        return i;
        }
        gmca_error_clear(e);
        return -1;
}

/* keyUsage says encryption only: keyEncipherment, dataEncipherment or keyAgreement, no signing. */
static int is_encryption_cert(X509 *cert)
{
        uint32_t ku = X509_get_key_usage(cert);

        return ku != UINT32_MAX && (ku & (KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT)) != 0 &&
               (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0;
}

/*
 * Fingerprints of the encryption certificates kept whose key is not in the
 * token yet (imported ahead of it); *n of them, at most cap.
 */
static int pending_certs(const char *dir, char (*fps)[FP_HEX], size_t cap, size_t *n,
                         struct gmca_error *e)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t seen = 0;

        *n = 0;
        if (d == NULL)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", dir, strerror(errno));
        while ((de = readdir(d)) != NULL && seen++ < TOKEN_FILES_MAX && *n < cap) {
                const char *s = de->d_name;
                size_t len = strlen(s);

                if (len != 5 + FP_HEX - 1 + 4 || strncmp(s, "cert-", 5) != 0 ||
                    strcmp(s + len - 4, ".pem") != 0)
                        continue;
                memcpy(fps[*n], s + 5, FP_HEX - 1);
                fps[*n][FP_HEX - 1] = '\0';
                if (key_role(dir, fps[*n], e) < 0)
                        (*n)++;
        }
        closedir(d);
        return 0;
}

static int get_pin(const struct tok *o, int confirm, char **pin, size_t *len, struct gmca_error *e)
{
        return cli_secret(o->pin_file, NULL, "token PIN", confirm, pin, len, e);
}

/* ---- subcommands ---- */

static int do_init(const struct tok *o, struct gmca_error *e)
{
        char p[PATH_MAX];
        DIR *d;
        struct dirent *de;
        int rc, empty = 1;

        if (o->dir == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--token DIR is required");
        if (mkdir(o->dir, 0700) != 0) {
                if (errno != EEXIST || (d = opendir(o->dir)) == NULL)
                        return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", o->dir, strerror(errno));
                while ((de = readdir(d)) != NULL)
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                empty = 0;
                closedir(d);
                if (!empty)
                        return gmca_error_set(e, GMCA_ERR_EXISTS,
                                              "%s: exists and is not empty; a token is made in "
                                              "an empty directory",
                                              o->dir);
                if (chmod(o->dir, 0700) != 0)
                        return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", o->dir, strerror(errno));
        }
        if ((rc = token_path(p, sizeof(p), o->dir, "token.json", e)) != 0)
                return rc;
        return gmca_write_file_excl(p, MARKER, strlen(MARKER), 0600, e);
}

/* A PKCS#10 request by key for subject, signed with the default ID; PEM into *pem. */
static int make_csr(EVP_PKEY *key, const char *subject, BIO *pem, struct gmca_error *e)
{
        X509_NAME *name = gmca_dn_parse(subject, e);
        X509_REQ *req = NULL, *check = NULL;
        EVP_MD_CTX *mctx = NULL;
        uint8_t *der = NULL;
        int n, rc = GMCA_ERR_CRYPTO;

        if (name == NULL)
                return e->code;
        if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, 0) != 1 ||
            X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
            (mctx = gmca_sm2_sign_ctx(key, NULL, e)) == NULL || X509_REQ_sign_ctx(req, mctx) <= 0 ||
            (n = i2d_X509_REQ(req, &der)) <= 0) {
                rc = gmca_error_ossl(e, GMCA_ERR_CRYPTO, "CSR: cannot build or sign");
                goto out;
        }
        /* What leaves the token is what the CA will accept (CPS §2.2.1 proof of possession). */
        if ((check = gmca_csr_parse(der, (size_t)n, NULL, e)) == NULL) {
                rc = e->code;
                goto out;
        }
        rc = PEM_write_bio_X509_REQ(pem, req) == 1
                 ? 0
                 : gmca_error_ossl(e, GMCA_ERR_INTERNAL, "CSR: cannot write PEM");
out:
        OPENSSL_free(der);
        X509_REQ_free(check);
        EVP_MD_CTX_free(mctx);
        X509_REQ_free(req);
        X509_NAME_free(name);
        return rc;
}

static int do_csr(const struct tok *o, struct gmca_error *e)
{
        char p[PATH_MAX];
        char *pin = NULL, *data = NULL;
        size_t pinlen = 0;
        EVP_PKEY *key = NULL;
        BIO *pem = NULL;
        long n;
        int rc, fresh;

        if ((rc = token_open(o, e)) != 0)
                return rc;
        if (o->subject == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--subject DN is required");
        if ((rc = token_path(p, sizeof(p), o->dir, "sign.key", e)) != 0)
                return rc;
        fresh = !exists(p);
        if ((rc = get_pin(o, fresh, &pin, &pinlen, e)) != 0)
                return rc;
        if (fresh && pinlen < GMCA_PASS_MIN) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY, "token PIN: at least %d characters",
                                    GMCA_PASS_MIN);
                goto out;
        }
        /* The key pair is made here, inside the token (GM/T 0016 GenECCKeyPair). */
        key = fresh ? gmca_sm2_keygen(e) : load_key(o->dir, "sign", pin, pinlen, e);
        if (key == NULL) {
                rc = e->code;
                goto out;
        }
        if ((pem = BIO_new(BIO_s_mem())) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = make_csr(key, o->subject, pem, e)) != 0 ||
            (fresh && (rc = store_key(o->dir, "sign", key, pin, pinlen, e)) != 0))
                goto out;
        n = BIO_get_mem_data(pem, &data);
        rc = cli_output(o->out, data, (size_t)n, e);
out:
        BIO_free(pem);
        EVP_PKEY_free(key);
        cli_pass_free(pin, pinlen);
        return rc;
}

static int do_import_cert(const struct tok *o, struct gmca_error *e)
{
        char fp[FP_HEX], p[PATH_MAX], serial[64];
        X509 *cert = NULL;
        int rc, role;

        if ((rc = token_open(o, e)) != 0)
                return rc;
        if ((cert = cli_load_cert(o->arg, e)) == NULL)
                return e->code;
        if ((rc = fingerprint(X509_get0_pubkey(cert), fp, e)) != 0)
                goto out;
        role = key_role(o->dir, fp, e);
        if (role < 0 && !is_encryption_cert(cert)) {
                rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                    "%s: the certificate's public key is no key of this token",
                                    o->arg);
                goto out;
        }
        if ((size_t)snprintf(p, sizeof(p), "%s/cert-%s.pem", o->dir, fp) >= sizeof(p)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "--token: path too long");
                goto out;
        }
        if ((rc = write_pem(p, NULL, cert, 0, e)) != 0 ||
            (rc = gmca_serial_hex(cert, serial, sizeof(serial))) != 0)
                goto out;
        if (role == 0)
                printf("signature certificate %s imported\n", serial);
        else if (role > 0)
                printf("encryption certificate %s imported for encryption key %d\n", serial, role);
        else
                printf("encryption certificate %s imported; its key is not in the token yet\n",
                       serial);
out:
        X509_free(cert);
        return rc;
}

/* The key pair in an envelope file: ENVELOPEDKEYBLOB, or SM2EnvelopedKey DER or PEM. */
static EVP_PKEY *open_envelope(const char *path, EVP_PKEY *sign, struct gmca_error *e)
{
        static const char *const labels[] = {"SM2 ENVELOPED KEY", "ENVELOPED KEY", NULL};
        uint8_t *buf = NULL, *owned = NULL;
        const uint8_t *der = NULL;
        size_t len = 0, derlen = 0;
        EVP_PKEY *pair = NULL;

        if (gmca_read_file(path, TOKEN_SMALL_MAX, &buf, &len, e) != 0)
                return NULL;
        if (len == GMCA_ENVELOPE_BLOB_LEN && buf[0] == 1 && buf[1] == 0 && buf[2] == 0 &&
            buf[3] == 0)
                pair = gmca_envelope_blob_open(buf, len, sign, e);
        else if (gmca_der_input(buf, len, GMCA_ENVELOPE_MAX * 2, "SM2EnvelopedKey", labels, &owned,
                                &der, &derlen, e) == 0)
                pair = gmca_envelope_open(der, derlen, sign, e);
        OPENSSL_free(owned);
        free(buf);
        return pair;
}

/*
 * The imported key must be the encryption certificate's when one is
 * waiting for its key; without one, the certificate may come later.
 */
static int check_pending(const char *dir, const char *fp, struct gmca_error *e)
{
        char fps[8][FP_HEX];
        size_t n = 0;
        int rc;

        if ((rc = pending_certs(dir, fps, 8, &n, e)) != 0)
                return rc;
        for (size_t i = 0; i < n; i++)
                if (strcmp(fps[i], fp) == 0)
                        return 0;
        if (n > 0)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "the envelope's key pair is not the public key of the "
                                      "encryption certificate in the token");
        return 0;
}

static int do_import_key(const struct tok *o, struct gmca_error *e)
{
        char fp[FP_HEX], name[32];
        char *pin = NULL;
        size_t pinlen = 0;
        EVP_PKEY *sign = NULL, *pair = NULL;
        int rc, n;

        if ((rc = token_open(o, e)) != 0)
                return rc;
        if ((n = enc_count(o->dir)) >= TOKEN_ENC_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "%s: already %d encryption keys", o->dir,
                                      TOKEN_ENC_MAX);
        if ((rc = get_pin(o, 0, &pin, &pinlen, e)) != 0)
                return rc;
        /* Opened with the signature key, as SKF_ImportECCKeyPair does inside a USB key. */
        if ((sign = load_key(o->dir, "sign", pin, pinlen, e)) == NULL ||
            (pair = open_envelope(o->arg, sign, e)) == NULL) {
                rc = e->code;
                goto out;
        }
        if ((rc = fingerprint(pair, fp, e)) != 0)
                goto out;
        if (key_role(o->dir, fp, e) >= 0) {
                rc = gmca_error_set(e, GMCA_ERR_EXISTS, "%s: the token holds this key already",
                                    o->arg);
                goto out;
        }
        if ((rc = check_pending(o->dir, fp, e)) != 0)
                goto out;
        snprintf(name, sizeof(name), "enc-%d", n + 1);
        if ((rc = store_key(o->dir, name, pair, pin, pinlen, e)) == 0)
                printf("encryption key %d imported (%.16s)\n", n + 1, fp);
out:
        EVP_PKEY_free(pair);
        EVP_PKEY_free(sign);
        cli_pass_free(pin, pinlen);
        return rc;
}

static int read_in(const struct tok *o, uint8_t **data, size_t *len, struct gmca_error *e)
{
        if (o->in == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--in FILE is required");
        return gmca_read_file(o->in, TOKEN_DATA_MAX, data, len, e);
}

static int do_sign(const struct tok *o, struct gmca_error *e)
{
        char *pin = NULL;
        size_t pinlen = 0, len = 0, siglen = 0;
        uint8_t *data = NULL, *sig = NULL;
        EVP_PKEY *key = NULL;
        int rc;

        if ((rc = token_open(o, e)) != 0 || (rc = read_in(o, &data, &len, e)) != 0)
                goto out;
        if ((rc = get_pin(o, 0, &pin, &pinlen, e)) != 0)
                goto out;
        if ((key = load_key(o->dir, "sign", pin, pinlen, e)) == NULL) {
                rc = e->code;
                goto out;
        }
        if ((rc = gmca_sm2_sign(key, NULL, data, len, &sig, &siglen, e)) == 0)
                rc = cli_output(o->out, sig, siglen, e);
out:
        OPENSSL_free(sig);
        EVP_PKEY_free(key);
        free(data);
        cli_pass_free(pin, pinlen);
        return rc;
}

static int do_verify(const struct tok *o, struct gmca_error *e)
{
        uint8_t *data = NULL, *sig = NULL;
        size_t len = 0, siglen = 0;
        X509 *cert = NULL;
        EVP_PKEY *pub = NULL;
        int rc;

        if (o->sig == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--sig FILE is required");
        if (o->cert != NULL) {
                if ((cert = cli_load_cert(o->cert, e)) == NULL)
                        return e->code;
                if ((pub = X509_get_pubkey(cert)) == NULL) {
                        rc = gmca_error_ossl(e, GMCA_ERR_INVALID, "%s: no public key", o->cert);
                        goto out;
                }
        } else if ((rc = token_open(o, e)) != 0 || (pub = load_pub(o->dir, "sign", e)) == NULL) {
                rc = e->code;
                goto out;
        }
        if ((rc = read_in(o, &data, &len, e)) != 0 ||
            (rc = gmca_read_file(o->sig, TOKEN_SMALL_MAX, &sig, &siglen, e)) != 0)
                goto out;
        if ((rc = gmca_sm2_verify(pub, NULL, data, len, sig, siglen, e)) == 0)
                puts("signature verified");
out:
        free(sig);
        free(data);
        EVP_PKEY_free(pub);
        X509_free(cert);
        return rc;
}

static int do_encrypt(const struct tok *o, struct gmca_error *e)
{
        uint8_t *data = NULL, *out = NULL;
        size_t len = 0, outlen = 0;
        X509 *cert = NULL;
        int rc;

        if (o->cert == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--cert CERT (the encryption "
                                      "certificate) is required");
        if ((cert = cli_load_cert(o->cert, e)) == NULL)
                return e->code;
        if ((rc = read_in(o, &data, &len, e)) != 0)
                goto out;
        rc = o->cms ? gmca_gmt0010_encrypt(&cert, 1, data, len, &out, &outlen, e)
                    : gmca_sm2_encrypt(X509_get0_pubkey(cert), data, len, &out, &outlen, e);
        if (rc == 0)
                rc = cli_output(o->out, out, outlen, e);
out:
        OPENSSL_free(out);
        if (data != NULL)
                OPENSSL_cleanse(data, len);
        free(data);
        X509_free(cert);
        return rc;
}

/*
 * Decrypt msg with encryption key i: 0 and *out on success, a negative
 * code otherwise; GMCA_ERR_VERIFY / GMCA_ERR_NOTFOUND mean "not this key".
 */
static int decrypt_with(const struct tok *o, int i, int cms, const char *pin, size_t pinlen,
                        const uint8_t *msg, size_t len, uint8_t **out, size_t *outlen,
                        struct gmca_error *e)
{
        char name[32], fp[FP_HEX];
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int rc;

        snprintf(name, sizeof(name), "enc-%d", i);
        if ((key = load_key(o->dir, name, pin, pinlen, e)) == NULL)
                return e->code;
        if (!cms) {
                rc = gmca_sm2_decrypt(key, msg, len, out, outlen, e);
        } else if ((rc = fingerprint(key, fp, e)) == 0) {
                /* EnvelopedData names its recipient by certificate: without one, not this key. */
                if ((cert = cert_for(o->dir, fp, e)) == NULL)
                        rc = e->code != 0 ? e->code
                                          : gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                                           "no certificate for key %d", i);
                else
                        rc = gmca_gmt0010_decrypt(msg, len, cert, key, out, outlen, e);
        }
        X509_free(cert);
        EVP_PKEY_free(key);
        return rc;
}

static int do_decrypt(const struct tok *o, struct gmca_error *e)
{
        char *pin = NULL;
        size_t pinlen = 0, len = 0, outlen = 0;
        uint8_t *msg = NULL, *out = NULL;
        int rc, n, cms;

        if ((rc = token_open(o, e)) != 0 || (rc = read_in(o, &msg, &len, e)) != 0)
                goto out;
        if ((n = enc_count(o->dir)) == 0) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "%s: the token has no encryption key",
                                    o->dir);
                goto out;
        }
        cms = gmca_gmt0010_kind(msg, len, e) == GMCA_GMT0010_KIND_ENVELOPED;
        gmca_error_clear(e);
        if ((rc = get_pin(o, 0, &pin, &pinlen, e)) != 0)
                goto out;
        /* The current key first, then the older ones (CPS §7.3.2). */
        for (int i = n; i >= 1; i--) {
                rc = decrypt_with(o, i, cms, pin, pinlen, msg, len, &out, &outlen, e);
                if (rc == 0 || (rc != GMCA_ERR_VERIFY && rc != GMCA_ERR_NOTFOUND))
                        break;
                gmca_error_clear(e);
        }
        if (rc == GMCA_ERR_VERIFY || rc == GMCA_ERR_NOTFOUND)
                rc = gmca_error_set(e, GMCA_ERR_VERIFY,
                                    "%s: no encryption key of this token decrypts it", o->in);
        if (rc == 0)
                rc = o->out != NULL ? gmca_write_file_excl(o->out, out, outlen, 0600, e)
                                    : cli_output(NULL, out, outlen, e);
out:
        if (out != NULL)
                OPENSSL_clear_free(out, outlen);
        free(msg);
        cli_pass_free(pin, pinlen);
        return rc;
}

/* {"fingerprint", "certificate": {subject, serial, not_after} or null} of a key or cert. */
static json_t *describe(const char *dir, const char *fp, X509 *given, struct gmca_error *e)
{
        X509 *cert = given != NULL ? given : cert_for(dir, fp, e);
        json_t *j = json_pack("{s:s}", "fingerprint", fp), *c = json_null();
        char subject[GMCA_DN_MAX * 2], serial[64], after[32];
        const ASN1_TIME *na;
        struct tm tm;

        if (cert != NULL &&
            gmca_dn_format(X509_get_subject_name(cert), subject, sizeof(subject), e) == 0 &&
            gmca_serial_hex(cert, serial, sizeof(serial)) == 0 &&
            (na = X509_get0_notAfter(cert)) != NULL && ASN1_TIME_to_tm(na, &tm) == 1) {
                strftime(after, sizeof(after), "%Y-%m-%dT%H:%M:%SZ", &tm);
                json_decref(c);
                c = json_pack("{s:s, s:s, s:s}", "subject", subject, "serial", serial, "not_after",
                              after);
        }
        gmca_error_clear(e);
        if (j != NULL)
                json_object_set_new(j, "certificate", c);
        else
                json_decref(c);
        if (given == NULL)
                X509_free(cert);
        return j;
}

static int do_show(const struct tok *o, struct gmca_error *e)
{
        char fp[FP_HEX], name[32], fps[TOKEN_ENC_MAX][FP_HEX];
        json_t *root, *enc, *pend;
        EVP_PKEY *pub;
        size_t np = 0;
        int rc, n;

        if ((rc = token_open(o, e)) != 0)
                return rc;
        n = enc_count(o->dir);
        root = json_pack("{s:s, s:o, s:[], s:[]}", "token", o->dir, "signature", json_null(),
                         "encryption", "pending_certificates");
        if (root == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        enc = json_object_get(root, "encryption");
        pend = json_object_get(root, "pending_certificates");
        for (int i = 0; i <= n; i++) {
                json_t *j;

                if (i == 0)
                        snprintf(name, sizeof(name), "sign");
                else
                        snprintf(name, sizeof(name), "enc-%d", i);
                if ((pub = load_pub(o->dir, name, e)) == NULL) {
                        gmca_error_clear(e);
                        continue;
                }
                rc = fingerprint(pub, fp, e);
                EVP_PKEY_free(pub);
                if (rc != 0 || (j = describe(o->dir, fp, NULL, e)) == NULL)
                        goto fail;
                if (i == 0) {
                        json_object_set_new(root, "signature", j);
                        continue;
                }
                json_object_set_new(j, "index", json_integer(i));
                json_object_set_new(j, "current", json_boolean(i == n));
                json_array_append_new(enc, j);
        }
        if ((rc = pending_certs(o->dir, fps, TOKEN_ENC_MAX, &np, e)) != 0)
                goto fail;
        for (size_t i = 0; i < np; i++)
                json_array_append_new(pend, describe(o->dir, fps[i], NULL, e));
        return cli_print_json(root) == EXIT_OK
                   ? 0
                   : gmca_error_set(e, GMCA_ERR_IO, "stdout: write failed");
fail:
        json_decref(root);
        return rc != 0 ? rc : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
}

/* The KM's part, for tests only: seal --key to the public key of --cert. */
static int do_seal(const struct tok *o, struct gmca_error *e)
{
        uint8_t *der = NULL, *blob = NULL;
        size_t derlen = 0, bloblen = 0;
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int rc;

        if (o->key == NULL || o->cert == NULL || o->out == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "seal-for-test: --key, --cert and --out "
                                      "are required");
        if ((key = cli_load_key(o->key, o->pass_file, e)) == NULL ||
            (cert = cli_load_cert(o->cert, e)) == NULL) {
                rc = e->code;
                goto out;
        }
        if ((rc = gmca_envelope_seal(key, X509_get0_pubkey(cert), &der, &derlen,
                                     o->blob_out != NULL ? &blob : NULL, &bloblen, e)) != 0 ||
            (rc = cli_output(o->out, der, derlen, e)) != 0)
                goto out;
        if (o->blob_out != NULL)
                rc = cli_output(o->blob_out, blob, bloblen, e);
out:
        OPENSSL_free(der);
        OPENSSL_free(blob);
        X509_free(cert);
        EVP_PKEY_free(key);
        return rc;
}

static const struct {
        const char *name;
        const char *allowed; /* option letters it takes */
        int (*fn)(const struct tok *, struct gmca_error *);
        int takes_arg;
} subs[] = {
    {"init", "t", do_init, 0},
    {"csr", "tpso", do_csr, 0},
    {"import-cert", "t", do_import_cert, 1},
    {"import-key", "tp", do_import_key, 1},
    {"sign", "tpio", do_sign, 0},
    {"verify", "tiSc", do_verify, 0},
    {"encrypt", "tciom", do_encrypt, 0},
    {"decrypt", "tpio", do_decrypt, 0},
    {"show", "t", do_show, 0},
    {"seal-for-test", "kPcob", do_seal, 0},
};

int cmd_token(struct cli *cli, int argc, char **argv)
{
        struct gmca_error e = {0};
        struct tok o;
        int rc;

        (void)cli;
        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
                if (strcmp(argv[1], subs[i].name) != 0)
                        continue;
                if ((rc = parse(argc - 1, argv + 1, &o)) == -1) {
                        fputs(usage, stdout);
                        return EXIT_OK;
                }
                if (rc != 0 || (rc = cli_only_options(o.seen, subs[i].allowed, argv[1])) != 0)
                        return rc;
                if (o.arg != NULL && !subs[i].takes_arg)
                        return cli_usage_error("%s: unexpected argument '%s'", argv[1], o.arg);
                if (o.arg == NULL && subs[i].takes_arg)
                        return cli_usage_error("%s: the FILE to import is missing", argv[1]);
                if (subs[i].fn(&o, &e) != 0)
                        return cli_fail(&e);
                return EXIT_OK;
        }
        return cli_usage_error("token: unknown subcommand '%s'", argv[1]);
}
