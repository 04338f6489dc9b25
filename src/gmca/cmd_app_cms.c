/*
 * gmca app sign | verify | encrypt | decrypt: GM/T 0010 SignedData,
 * EnvelopedData and SignedAndEnvelopedData for applications (issue 8 item
 * 3), through src/lib/gmt0010, and with --raw the bare GM/T 0009 forms: a
 * DER SM2Signature over the data with the ID, and SM2 encryption as DER
 * SM2Cipher or (--c1c3c2) the C1C3C2 octets.
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

struct cms_opts {
        char seen[32];
        const char *cert, *key, *pass_file, *in, *out, *content, *ca, *id, *signer;
        const char *recips[GMCA_GMT0010_RECIPS_MAX];
        size_t nrecips;
        int detached, no_attrs, no_cert, sm2_with_sm3, raw, c1c3c2;
};

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
            {"encrypt-to", required_argument, NULL, 'e'},
            {"signer-cert", required_argument, NULL, 's'},
            {"raw", no_argument, NULL, 'R'},
            {"c1c3c2", no_argument, NULL, '3'},
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
                case 'e':
                        if (o->nrecips == GMCA_GMT0010_RECIPS_MAX)
                                return cli_usage_error("--recip/--encrypt-to: at most %d "
                                                       "recipients",
                                                       GMCA_GMT0010_RECIPS_MAX);
                        o->recips[o->nrecips++] = optarg;
                        break;
                case 's':
                        o->signer = optarg;
                        break;
                case 'R':
                        o->raw = 1;
                        break;
                case '3':
                        o->c1c3c2 = 1;
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

/* Write buf to --out ("-": standard output). */
static int output(const char *out, const uint8_t *buf, size_t len, struct gmca_error *e)
{
        return cli_output(strcmp(out, "-") == 0 ? NULL : out, buf, len, e);
}

/* The key of --key, and when --cert is given, checked to be that certificate's. */
static EVP_PKEY *load_key_of(const struct cms_opts *o, X509 **cert, struct gmca_error *e)
{
        EVP_PKEY *key;

        if (o->cert != NULL && (*cert = cli_load_cert(o->cert, e)) == NULL)
                return NULL;
        if ((key = cli_load_key(o->key, o->pass_file, e)) == NULL)
                return NULL;
        if (*cert != NULL &&
            (X509_get0_pubkey(*cert) == NULL || EVP_PKEY_eq(X509_get0_pubkey(*cert), key) != 1)) {
                gmca_ossl_clear();
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: the key does not belong to %s", o->key,
                               o->cert);
                EVP_PKEY_free(key);
                return NULL;
        }
        return key;
}

/* --recip / --encrypt-to certificates into certs (o->nrecips of them). */
static int load_recips(const struct cms_opts *o, X509 **certs, struct gmca_error *e)
{
        size_t i;

        for (i = 0; i < o->nrecips; i++)
                if ((certs[i] = cli_load_cert(o->recips[i], e)) == NULL)
                        return e->code;
        return 0;
}

static void free_recips(X509 **certs, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++)
                X509_free(certs[i]);
}

static const char sign_usage[] =
    "usage: gmca app sign --cert F --key F [--pass-file F] [--detached] [--no-attrs]\n"
    "                     [--no-cert] [--sm2-with-sm3] [--id ID] [--encrypt-to CERT ...]\n"
    "                     --in F --out F\n"
    "       gmca app sign --raw --key F [--pass-file F] [--cert F] [--id ID] --in F --out F\n"
    "GM/T 0010 SignedData (DER) of the file --in, signed with the SM2 key --key of the\n"
    "certificate --cert (ID 1234567812345678 unless --id). With --encrypt-to (repeatable,\n"
    "recipients' encryption certificates) a SignedAndEnvelopedData instead: signed as\n"
    "above and encrypted as `app encrypt` does (open it with `app decrypt`).\n"
    "--raw: only the DER SM2Signature (GM/T 0009) over the bytes of --in with the ID.\n";

static int sign_raw(const struct cms_opts *o, struct gmca_error *e)
{
        uint8_t *data = NULL, *sig = NULL;
        size_t len = 0, siglen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int rc = 0;

        if ((key = load_key_of(o, &cert, e)) == NULL ||
            gmca_read_file(o->in, GMCA_GMT0010_MAX, &data, &len, e) != 0 ||
            gmca_sm2_sign(key, o->id, data, len, &sig, &siglen, e) != 0 ||
            output(o->out, sig, siglen, e) != 0)
                rc = cli_fail(e);
        OPENSSL_free(sig);
        free(data);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}

int cmd_app_sign(struct cli *cli, int argc, char **argv)
{
        X509 *recips[GMCA_GMT0010_RECIPS_MAX] = {0};
        struct gmca_gmt0010_sign_opts so = {0};
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *data = NULL, *msg = NULL;
        size_t len = 0, msglen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int rc;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "ckpdANSIioeR", sign_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.raw) {
                if (o.key == NULL || o.in == NULL || o.out == NULL)
                        return cli_usage_error("app sign --raw: --key, --in and --out are "
                                               "required");
                if (o.detached || o.no_attrs || o.no_cert || o.sm2_with_sm3 || o.nrecips > 0)
                        return cli_usage_error("app sign --raw: takes only --key, --pass-file, "
                                               "--cert, --id, --in, --out");
                return sign_raw(&o, &e);
        }
        if (o.cert == NULL || o.key == NULL || o.in == NULL || o.out == NULL)
                return cli_usage_error("app sign: --cert, --key, --in and --out are required");
        if (o.detached && o.nrecips > 0)
                return cli_usage_error("app sign: --detached and --encrypt-to exclude each other");
        so.id = o.id;
        so.detached = o.detached;
        so.no_attrs = o.no_attrs;
        so.no_cert = o.no_cert;
        so.sm2_with_sm3 = o.sm2_with_sm3;
        if ((cert = cli_load_cert(o.cert, &e)) == NULL ||
            (key = cli_load_key(o.key, o.pass_file, &e)) == NULL ||
            load_recips(&o, recips, &e) != 0 ||
            gmca_read_file(o.in, GMCA_GMT0010_MAX, &data, &len, &e) != 0 ||
            (o.nrecips > 0
                 ? gmca_gmt0010_sign_encrypt(cert, key, &so, recips, o.nrecips, data, len, &msg,
                                             &msglen, &e)
                 : gmca_gmt0010_sign(cert, key, &so, data, len, &msg, &msglen, &e)) != 0 ||
            output(o.out, msg, msglen, &e) != 0)
                rc = cli_fail(&e);
        OPENSSL_free(msg);
        if (data != NULL)
                OPENSSL_cleanse(data, len);
        free(data);
        free_recips(recips, o.nrecips);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}

static const char verify_usage[] =
    "usage: gmca app verify --in F [--content F] [--cert F] [--ca F] [--id ID] [--out F]\n"
    "       gmca app verify --raw --in SIG --content F --cert F [--id ID]\n"
    "Verify a GM/T 0010 SignedData: --content for a detached signature, --cert when the\n"
    "message does not carry the signer certificate, --ca to check that certificate's\n"
    "signature under its issuer too; --out writes the signed content. Prints the signer\n"
    "as JSON. --raw: --in is a DER SM2Signature over the bytes of --content by the key of\n"
    "--cert. (A SignedAndEnvelopedData is verified by `app decrypt`.)\n";

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

/* --ca: the signer certificate must be issued (and signed) by it. */
static int check_ca(X509 *signer, X509 *ca, struct gmca_error *e)
{
        if (X509_NAME_cmp(X509_get_issuer_name(signer), X509_get_subject_name(ca)) != 0)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "signer certificate: its issuer is not the --ca subject");
        return gmca_cert_verify_signed_by(signer, X509_get0_pubkey(ca), NULL, e);
}

static int verify_raw(const struct cms_opts *o, struct gmca_error *e)
{
        uint8_t *sig = NULL, *data = NULL;
        size_t siglen = 0, len = 0;
        X509 *cert = NULL;
        EVP_PKEY *pub;
        json_t *j = NULL;
        int rc;

        if ((cert = cli_load_cert(o->cert, e)) == NULL ||
            gmca_read_file(o->in, 4096, &sig, &siglen, e) != 0 ||
            gmca_read_file(o->content, GMCA_GMT0010_MAX, &data, &len, e) != 0)
                goto fail;
        if ((pub = X509_get0_pubkey(cert)) == NULL || gmca_sm2_is_sm2(pub, e) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: no SM2 public key", o->cert);
                goto fail;
        }
        if (gmca_sm2_verify(pub, o->id, data, len, sig, siglen, e) != 0)
                goto fail;
        if ((j = json_pack("{s:b, s:s}", "verified", 1, "id",
                           o->id != NULL ? o->id : GMCA_SM2_DEFAULT_ID)) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        rc = cli_print_json(j);
        goto out;
fail:
        rc = cli_fail(e);
out:
        free(data);
        free(sig);
        X509_free(cert);
        return rc;
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
        if ((rc = setup(argc, argv, &o, "iCcaIoR", verify_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.raw) {
                if (o.in == NULL || o.content == NULL || o.cert == NULL)
                        return cli_usage_error("app verify --raw: --in, --content and --cert are "
                                               "required");
                if (o.ca != NULL || o.out != NULL)
                        return cli_usage_error("app verify --raw: no --ca or --out");
                return verify_raw(&o, &e);
        }
        if (o.in == NULL)
                return cli_usage_error("app verify: --in is required");
        if (gmca_read_file(o.in, GMCA_GMT0010_MAX, &msg, &len, &e) != 0 ||
            (o.content != NULL &&
             gmca_read_file(o.content, GMCA_GMT0010_MAX, &detached, &dlen, &e) != 0))
                goto fail;
        if (o.cert != NULL) {
                if ((cert = cli_load_cert(o.cert, &e)) == NULL)
                        goto fail;
                if ((extra = sk_X509_new_null()) == NULL || !sk_X509_push(extra, cert)) {
                        gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                        goto fail;
                }
        }
        if (o.ca != NULL && (ca = cli_load_cert(o.ca, &e)) == NULL)
                goto fail;
        if (gmca_gmt0010_verify(msg, len, detached, dlen, extra, o.id, &content, &clen, &s, &e) !=
            0)
                goto fail;
        if (ca != NULL && check_ca(s.cert, ca, &e) != 0)
                goto fail;
        if ((j = signer_json(&s, ca != NULL, &e)) == NULL)
                goto fail;
        if (o.out != NULL && output(o.out, content, clen, &e) != 0)
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
    "       gmca app encrypt --raw [--c1c3c2] --recip CERT --in F --out F\n"
    "GM/T 0010 EnvelopedData (DER): --in under a random SM4-CBC key, SM2-encrypted to\n"
    "each recipient's encryption certificate. --raw: --in (at most 1 MiB) SM2-encrypted\n"
    "to the one --recip, written as a DER SM2Cipher (GM/T 0009), or with --c1c3c2 as the\n"
    "octets 04||x||y||C3||C2 (GM/T 0003.4).\n";

static int encrypt_raw(const struct cms_opts *o, X509 *cert, struct gmca_error *e)
{
        uint8_t *data = NULL, *ct = NULL, *raw = NULL;
        size_t len = 0, ctlen = 0, rawlen = 0;
        EVP_PKEY *pub = X509_get0_pubkey(cert);
        int rc = 0;

        if (pub == NULL || gmca_sm2_is_sm2(pub, e) != 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: no SM2 public key", o->recips[0]);
                return cli_fail(e);
        }
        if (gmca_read_file(o->in, GMCA_SM2CIPHER_MAX, &data, &len, e) != 0 ||
            gmca_sm2_encrypt(pub, data, len, &ct, &ctlen, e) != 0 ||
            (o->c1c3c2 && gmca_sm2cipher_to_c1c3c2(ct, ctlen, &raw, &rawlen, e) != 0) ||
            output(o->out, o->c1c3c2 ? raw : ct, o->c1c3c2 ? rawlen : ctlen, e) != 0)
                rc = cli_fail(e);
        OPENSSL_free(raw);
        OPENSSL_free(ct);
        if (data != NULL)
                OPENSSL_cleanse(data, len);
        free(data);
        return rc;
}

int cmd_app_encrypt(struct cli *cli, int argc, char **argv)
{
        X509 *certs[GMCA_GMT0010_RECIPS_MAX] = {0};
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *data = NULL, *msg = NULL;
        size_t len = 0, msglen = 0;
        int rc;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "rioR3", encrypt_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.nrecips == 0 || o.in == NULL || o.out == NULL)
                return cli_usage_error("app encrypt: --recip, --in and --out are required");
        if (o.c1c3c2 && !o.raw)
                return cli_usage_error("app encrypt: --c1c3c2 goes with --raw");
        if (o.raw && o.nrecips != 1)
                return cli_usage_error("app encrypt --raw: exactly one --recip");
        if (load_recips(&o, certs, &e) != 0)
                rc = cli_fail(&e);
        else if (o.raw)
                rc = encrypt_raw(&o, certs[0], &e);
        else if (gmca_read_file(o.in, GMCA_GMT0010_MAX, &data, &len, &e) != 0 ||
                 gmca_gmt0010_encrypt(certs, o.nrecips, data, len, &msg, &msglen, &e) != 0 ||
                 output(o.out, msg, msglen, &e) != 0)
                rc = cli_fail(&e);
        free_recips(certs, o.nrecips);
        if (data != NULL)
                OPENSSL_cleanse(data, len);
        free(data);
        OPENSSL_free(msg);
        return rc;
}

static const char decrypt_usage[] =
    "usage: gmca app decrypt --cert F --key F [--pass-file F] [--signer-cert F] [--ca F]\n"
    "                        [--id ID] --in F --out F\n"
    "       gmca app decrypt --raw [--c1c3c2] --key F [--pass-file F] [--cert F] --in F --out F\n"
    "Open a GM/T 0010 EnvelopedData with the encryption certificate --cert and its key.\n"
    "A SignedAndEnvelopedData is opened and then verified (--signer-cert when it does\n"
    "not carry the signer certificate, --ca to check that certificate under its issuer,\n"
    "--id the signer's SM2 ID); the signer is printed as JSON and nothing is written\n"
    "unless the signature verifies. --raw: --in is a DER SM2Cipher (GM/T 0009), or with\n"
    "--c1c3c2 the octets 04||x||y||C3||C2, decrypted with --key.\n";

static int decrypt_raw(const struct cms_opts *o, struct gmca_error *e)
{
        uint8_t *in = NULL, *der = NULL, *pt = NULL;
        size_t len = 0, derlen = 0, ptlen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int rc = 0;

        if ((key = load_key_of(o, &cert, e)) == NULL ||
            gmca_read_file(o->in, GMCA_SM2CIPHER_MAX + 256, &in, &len, e) != 0 ||
            (o->c1c3c2 && gmca_sm2cipher_from_c1c3c2(in, len, &der, &derlen, e) != 0) ||
            gmca_sm2_decrypt(key, o->c1c3c2 ? der : in, o->c1c3c2 ? derlen : len, &pt, &ptlen, e) !=
                0 ||
            output(o->out, pt, ptlen, e) != 0)
                rc = cli_fail(e);
        if (pt != NULL)
                OPENSSL_clear_free(pt, ptlen);
        OPENSSL_free(der);
        free(in);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}

/* A SignedAndEnvelopedData: open, verify, check --ca, print the signer, write the content. */
static int decrypt_signed(const struct cms_opts *o, const uint8_t *msg, size_t len, X509 *cert,
                          EVP_PKEY *key, struct gmca_error *e)
{
        struct gmca_gmt0010_signer s = {0};
        STACK_OF(X509) *extra = NULL;
        X509 *signer = NULL, *ca = NULL;
        uint8_t *out = NULL;
        size_t outlen = 0;
        json_t *j = NULL;
        int rc;

        if (o->signer != NULL) {
                if ((signer = cli_load_cert(o->signer, e)) == NULL)
                        goto fail;
                if ((extra = sk_X509_new_null()) == NULL || !sk_X509_push(extra, signer)) {
                        gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        goto fail;
                }
        }
        if (o->ca != NULL && (ca = cli_load_cert(o->ca, e)) == NULL)
                goto fail;
        if (gmca_gmt0010_decrypt_verify(msg, len, cert, key, extra, o->id, &out, &outlen, &s, e) !=
                0 ||
            (ca != NULL && check_ca(s.cert, ca, e) != 0) ||
            (j = signer_json(&s, ca != NULL, e)) == NULL || output(o->out, out, outlen, e) != 0)
                goto fail;
        rc = cli_print_json(j);
        j = NULL;
        goto out;
fail:
        rc = cli_fail(e);
out:
        json_decref(j);
        if (out != NULL)
                OPENSSL_clear_free(out, outlen);
        gmca_gmt0010_signer_clear(&s);
        sk_X509_free(extra);
        X509_free(signer);
        X509_free(ca);
        return rc;
}

int cmd_app_decrypt(struct cli *cli, int argc, char **argv)
{
        struct gmca_error e = {0};
        struct cms_opts o;
        uint8_t *msg = NULL, *out = NULL;
        size_t len = 0, outlen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int rc, kind;

        (void)cli;
        if ((rc = setup(argc, argv, &o, "ckpiosaIR3", decrypt_usage)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.c1c3c2 && !o.raw)
                return cli_usage_error("app decrypt: --c1c3c2 goes with --raw");
        if (o.raw) {
                if (o.key == NULL || o.in == NULL || o.out == NULL)
                        return cli_usage_error("app decrypt --raw: --key, --in and --out are "
                                               "required");
                if (o.signer != NULL || o.ca != NULL || o.id != NULL)
                        return cli_usage_error("app decrypt --raw: no --signer-cert, --ca or "
                                               "--id");
                return decrypt_raw(&o, &e);
        }
        if (o.cert == NULL || o.key == NULL || o.in == NULL || o.out == NULL)
                return cli_usage_error("app decrypt: --cert, --key, --in and --out are required");
        if ((cert = cli_load_cert(o.cert, &e)) == NULL ||
            (key = cli_load_key(o.key, o.pass_file, &e)) == NULL ||
            gmca_read_file(o.in, GMCA_GMT0010_MAX, &msg, &len, &e) != 0 ||
            (kind = gmca_gmt0010_kind(msg, len, &e)) < 0) {
                rc = cli_fail(&e);
                goto out;
        }
        if (kind == GMCA_GMT0010_KIND_SIGNED_ENVELOPED) {
                rc = decrypt_signed(&o, msg, len, cert, key, &e);
                goto out;
        }
        if (o.signer != NULL || o.ca != NULL || o.id != NULL) {
                rc = cli_usage_error("app decrypt: --signer-cert, --ca and --id are for a "
                                     "SignedAndEnvelopedData; this message is not signed");
                goto out;
        }
        if (gmca_gmt0010_decrypt(msg, len, cert, key, &out, &outlen, &e) != 0 ||
            output(o.out, out, outlen, &e) != 0)
                rc = cli_fail(&e);
out:
        if (out != NULL)
                OPENSSL_clear_free(out, outlen);
        free(msg);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}
