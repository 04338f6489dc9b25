/*
 * gmca app sign | verify | encrypt | decrypt: GM/T 0010 SignedData and
 * EnvelopedData for applications (issue 8 item 3), through src/lib/gmt0010.
 * Keys are the PEM private keys `openssl genpkey -algorithm SM2` writes,
 * plain or encrypted PKCS#8 (then --pass-file); certificates are PEM or DER.
 * Messages are written as DER, never over an existing file.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "crypto.h"
#include "gmt0010.h"
#include "util.h"
#include "x509.h"

#define KEY_FILE_MAX (64u << 10)
#define CERT_FILE_MAX (64u << 10)

struct cms_opts {
        char seen[32];
        const char *cert, *key, *pass_file, *in, *out, *content, *ca, *id;
        const char *recips[GMCA_GMT0010_RECIPS_MAX];
        size_t nrecips;
        int detached, no_attrs, no_cert, sm2_with_sm3;
};

struct pass {
        const char *p;
        size_t len;
};

/* The passphrase for an encrypted key; without --pass-file, refuse (never prompt). */
static int pem_pass(char *buf, int size, int rwflag, void *u)
{
        const struct pass *pw = u;

        (void)rwflag;
        if (pw == NULL || pw->p == NULL || size < 0 || pw->len > (size_t)size)
                return -1;
        memcpy(buf, pw->p, pw->len);
        return (int)pw->len;
}

/* An SM2 private key from a PEM file; caller frees with EVP_PKEY_free. */
static EVP_PKEY *load_key(const char *path, const char *pass_file, struct gmca_error *e)
{
        struct pass pw = {0};
        char *pass = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        BIO *bio = NULL;
        EVP_PKEY *key = NULL;

        if (pass_file != NULL) {
                if (cli_secret(pass_file, NULL, "key passphrase", 0, &pass, &pw.len, e) != 0)
                        return NULL;
                pw.p = pass;
        }
        if (gmca_read_file(path, KEY_FILE_MAX, &buf, &len, e) != 0)
                goto out;
        if (len > INT_MAX || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
                gmca_error_ossl(e, GMCA_ERR_NOMEM, "%s: cannot read", path);
                goto out;
        }
        if ((key = PEM_read_bio_PrivateKey_ex(bio, NULL, pem_pass, &pw, NULL, NULL)) == NULL) {
                gmca_ossl_clear();
                gmca_error_set(e, pass_file != NULL ? GMCA_ERR_AUTH : GMCA_ERR_INVALID,
                               "%s: not a PEM private key%s", path,
                               pass_file != NULL ? ", or wrong passphrase"
                                                 : " (an encrypted key needs --pass-file)");
                goto out;
        }
        if (gmca_sm2_is_sm2(key, e) != 0) {
                EVP_PKEY_free(key);
                key = NULL;
        }
out:
        BIO_free(bio);
        if (buf != NULL)
                OPENSSL_cleanse(buf, len);
        free(buf);
        cli_pass_free(pass, pw.len);
        return key;
}

static X509 *load_cert(const char *path, struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        X509 *x = NULL;

        if (gmca_read_file(path, CERT_FILE_MAX, &buf, &len, e) == 0)
                x = gmca_cert_parse(buf, len, e);
        free(buf);
        return x;
}

static int parse(int argc, char **argv, struct cms_opts *o)
{
        static const struct option opts[] = {
            {"cert", required_argument, NULL, 'c'},
            {"key", required_argument, NULL, 'k'},
            {"pass-file", required_argument, NULL, 'p'},
            {"in", required_argument, NULL, 'i'},
            {"out", required_argument, NULL, 'o'},
            {"content", required_argument, NULL, 'C'},
            {"ca", required_argument, NULL, 'a'},
            {"id", required_argument, NULL, 'I'},
            {"recip", required_argument, NULL, 'r'},
            {"detached", no_argument, NULL, 'd'},
            {"no-attrs", no_argument, NULL, 'A'},
            {"no-cert", no_argument, NULL, 'N'},
            {"sm2-with-sm3", no_argument, NULL, 'S'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        optind = 1;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'c':
                        o->cert = optarg;
                        break;
                case 'k':
                        o->key = optarg;
                        break;
                case 'p':
                        o->pass_file = optarg;
                        break;
                case 'i':
                        o->in = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'C':
                        o->content = optarg;
                        break;
                case 'a':
                        o->ca = optarg;
                        break;
                case 'I':
                        if (strlen(optarg) == 0 || strlen(optarg) > GMCA_SM2_ID_MAX)
                                return cli_usage_error("--id: 1 to %d bytes", GMCA_SM2_ID_MAX);
                        o->id = optarg;
                        break;
                case 'r':
                        if (o->nrecips == GMCA_GMT0010_RECIPS_MAX)
                                return cli_usage_error("--recip: at most %d recipients",
                                                       GMCA_GMT0010_RECIPS_MAX);
                        o->recips[o->nrecips++] = optarg;
                        break;
                case 'd':
                        o->detached = 1;
                        break;
                case 'A':
                        o->no_attrs = 1;
                        break;
                case 'N':
                        o->no_cert = 1;
                        break;
                case 'S':
                        o->sm2_with_sm3 = 1;
                        break;
                case 'h':
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("%s: unexpected argument '%s'", argv[0], argv[optind]);
        return 0;
}

/*
 * Parse, refuse options the subcommand does not take: 0 to go on, -1 when
 * --help printed the usage, else the exit code.
 */
static int setup(int argc, char **argv, struct cms_opts *o, const char *allowed, const char *usage)
{
        int rc = parse(argc, argv, o);

        if (rc == -1) {
                fputs(usage, stdout);
                return -1;
        }
        if (rc != 0)
                return rc;
        return cli_only_options(o->seen, allowed, argv[0]);
}

static const char sign_usage[] =
    "usage: gmca app sign --cert F --key F [--pass-file F] [--detached] [--no-attrs]\n"
    "                     [--no-cert] [--sm2-with-sm3] [--id ID] --in F --out F\n"
    "GM/T 0010 SignedData (DER) of the file --in, signed with the SM2 key --key of the\n"
    "certificate --cert (ID 1234567812345678 unless --id).\n";

int cmd_app_sign(struct cli *cli, int argc, char **argv)
{
        struct gmca_gmt0010_sign_opts so = {0};
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *data = NULL, *msg = NULL;
        size_t len = 0, msglen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int rc;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "ckpdANSIio", sign_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.cert == NULL || o.key == NULL || o.in == NULL || o.out == NULL)
                return cli_usage_error("app sign: --cert, --key, --in and --out are required");
        so.id = o.id;
        so.detached = o.detached;
        so.no_attrs = o.no_attrs;
        so.no_cert = o.no_cert;
        so.sm2_with_sm3 = o.sm2_with_sm3;
        if ((cert = load_cert(o.cert, &e)) == NULL ||
            (key = load_key(o.key, o.pass_file, &e)) == NULL ||
            gmca_read_file(o.in, GMCA_GMT0010_MAX, &data, &len, &e) != 0 ||
            gmca_gmt0010_sign(cert, key, &so, data, len, &msg, &msglen, &e) != 0 ||
            cli_output(strcmp(o.out, "-") == 0 ? NULL : o.out, msg, msglen, &e) != 0)
                rc = cli_fail(&e);
        OPENSSL_free(msg);
        free(data);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}

static const char verify_usage[] =
    "usage: gmca app verify --in F [--content F] [--cert F] [--ca F] [--id ID] [--out F]\n"
    "Verify a GM/T 0010 SignedData: --content for a detached signature, --cert when the\n"
    "message does not carry the signer certificate, --ca to check that certificate's\n"
    "signature under its issuer too; --out writes the signed content. Prints the signer\n"
    "as JSON.\n";

static json_t *signer_json(const struct gmca_gmt0010_signer *s, int ca_checked,
                           struct gmca_error *e)
{
        char subject[1024], issuer[1024], serial[2 * 20 + 1], when[32];
        json_t *j;

        if (gmca_dn_format(X509_get_subject_name(s->cert), subject, sizeof(subject), e) != 0 ||
            gmca_dn_format(X509_get_issuer_name(s->cert), issuer, sizeof(issuer), e) != 0 ||
            gmca_serial_hex(s->cert, serial, sizeof(serial)) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "signer certificate: cannot format its names");
                return NULL;
        }
        if (s->has_time)
                gmca_time_iso(s->signing_time, when, sizeof(when));
        j = json_pack("{s:b, s:s, s:s, s:s, s:o, s:b, s:i, s:b}", "verified", 1, "subject", subject,
                      "issuer", issuer, "serial", serial, "signing_time",
                      s->has_time ? json_string(when) : json_null(), "detached", s->detached,
                      "signers", s->nsigners, "issuer_checked", ca_checked);
        if (j == NULL)
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        return j;
}

int cmd_app_verify(struct cli *cli, int argc, char **argv)
{
        struct gmca_gmt0010_signer s = {0};
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *msg = NULL, *detached = NULL, *content = NULL;
        size_t len = 0, dlen = 0, clen = 0;
        STACK_OF(X509) *extra = NULL;
        X509 *cert = NULL, *ca = NULL;
        json_t *j = NULL;
        int rc;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "iCcaIo", verify_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.in == NULL)
                return cli_usage_error("app verify: --in is required");
        if (gmca_read_file(o.in, GMCA_GMT0010_MAX, &msg, &len, &e) != 0 ||
            (o.content != NULL &&
             gmca_read_file(o.content, GMCA_GMT0010_MAX, &detached, &dlen, &e) != 0))
                goto fail;
        if (o.cert != NULL) {
                if ((cert = load_cert(o.cert, &e)) == NULL)
                        goto fail;
                if ((extra = sk_X509_new_null()) == NULL || !sk_X509_push(extra, cert)) {
                        gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                        goto fail;
                }
        }
        if (o.ca != NULL && (ca = load_cert(o.ca, &e)) == NULL)
                goto fail;
        if (gmca_gmt0010_verify(msg, len, detached, dlen, extra, o.id, &content, &clen, &s, &e) !=
            0)
                goto fail;
        if (ca != NULL) {
                if (X509_NAME_cmp(X509_get_issuer_name(s.cert), X509_get_subject_name(ca)) != 0) {
                        gmca_error_set(&e, GMCA_ERR_VERIFY,
                                       "signer certificate: its issuer is not the --ca subject");
                        goto fail;
                }
                if (gmca_cert_verify_signed_by(s.cert, X509_get0_pubkey(ca), NULL, &e) != 0)
                        goto fail;
        }
        if ((j = signer_json(&s, ca != NULL, &e)) == NULL)
                goto fail;
        if (o.out != NULL &&
            cli_output(strcmp(o.out, "-") == 0 ? NULL : o.out, content, clen, &e) != 0)
                goto fail;
        rc = cli_print_json(j);
        j = NULL;
        goto out;
fail:
        rc = cli_fail(&e);
out:
        json_decref(j);
        gmca_gmt0010_signer_clear(&s);
        OPENSSL_free(content);
        free(detached);
        free(msg);
        sk_X509_free(extra);
        X509_free(cert);
        X509_free(ca);
        return rc;
}

static const char encrypt_usage[] =
    "usage: gmca app encrypt --recip CERT [--recip CERT ...] --in F --out F\n"
    "GM/T 0010 EnvelopedData (DER): --in under a random SM4-CBC key, SM2-encrypted to\n"
    "each recipient's encryption certificate.\n";

int cmd_app_encrypt(struct cli *cli, int argc, char **argv)
{
        X509 *certs[GMCA_GMT0010_RECIPS_MAX] = {0};
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *data = NULL, *msg = NULL;
        size_t len = 0, msglen = 0, i;
        int rc;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "rio", encrypt_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.nrecips == 0 || o.in == NULL || o.out == NULL)
                return cli_usage_error("app encrypt: --recip, --in and --out are required");
        for (i = 0; i < o.nrecips; i++)
                if ((certs[i] = load_cert(o.recips[i], &e)) == NULL)
                        break;
        if (i < o.nrecips || gmca_read_file(o.in, GMCA_GMT0010_MAX, &data, &len, &e) != 0 ||
            gmca_gmt0010_encrypt(certs, o.nrecips, data, len, &msg, &msglen, &e) != 0 ||
            cli_output(strcmp(o.out, "-") == 0 ? NULL : o.out, msg, msglen, &e) != 0)
                rc = cli_fail(&e);
        for (i = 0; i < o.nrecips; i++)
                X509_free(certs[i]);
        if (data != NULL)
                OPENSSL_cleanse(data, len);
        free(data);
        OPENSSL_free(msg);
        return rc;
}

static const char decrypt_usage[] =
    "usage: gmca app decrypt --cert F --key F [--pass-file F] --in F --out F\n"
    "Open a GM/T 0010 EnvelopedData with the encryption certificate --cert and its key.\n";

int cmd_app_decrypt(struct cli *cli, int argc, char **argv)
{
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *msg = NULL, *out = NULL;
        size_t len = 0, outlen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int rc;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "ckpio", decrypt_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.cert == NULL || o.key == NULL || o.in == NULL || o.out == NULL)
                return cli_usage_error("app decrypt: --cert, --key, --in and --out are required");
        if ((cert = load_cert(o.cert, &e)) == NULL ||
            (key = load_key(o.key, o.pass_file, &e)) == NULL ||
            gmca_read_file(o.in, GMCA_GMT0010_MAX, &msg, &len, &e) != 0 ||
            gmca_gmt0010_decrypt(msg, len, cert, key, &out, &outlen, &e) != 0 ||
            cli_output(strcmp(o.out, "-") == 0 ? NULL : o.out, out, outlen, &e) != 0)
                rc = cli_fail(&e);
        if (out != NULL)
                OPENSSL_clear_free(out, outlen);
        free(msg);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}
