/*
 * gmca app: what an e-government application (a relying party, CPS §3.5.2,
 * §4.2) needs without OpenSSL: read a certificate, random numbers, SM3 and
 * SM4. These subcommands go through the public libgmca interface
 * (include/gmca/gmca.h), so the command shows what the library gives; the
 * GM/T 0010 message subcommands live in cmd_app_cms.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "gmca/gmca.h"

#include "cli.h"
#include "crypto.h"
#include "util.h"

#define RANDOM_MAX (1 << 20)      /* bytes gmca app random gives at once */
#define SM4_FILE_MAX (256u << 20) /* bytes gmca app sm4 reads */
#define HMAC_KEY_MAX 1024         /* bytes of an HMAC-SM3 key */
#define SM3_CHUNK 65536

static const char usage[] =
    "usage: gmca app <subcommand> [options]\n"
    "\n"
    "  cert    --in FILE [--json]\n"
    "          Read an SM2 certificate (DER or PEM) strictly and show its fields:\n"
    "          subject and issuer, serial, validity, key usage, extended key usage,\n"
    "          basic constraints, subjectAltName, the GM/T 0015 private extensions\n"
    "          (identity card number, ...), the SM3 fingerprints of the certificate\n"
    "          and of its SubjectPublicKeyInfo, and the SM2 public key. The\n"
    "          signature is not checked here.\n"
    "  random  --bytes N [--hex]\n"
    "          N (1..1048576) bytes from the CSPRNG, raw or as hex.\n"
    "  sm3     [--in FILE] [--hmac-key-hex K]\n"
    "          SM3 digest (or HMAC-SM3 under the hex key K) of FILE or standard\n"
    "          input, as hex. A key on the command line is visible to other local\n"
    "          users; prefer the library for secret keys.\n"
    "  sm4     --encrypt|--decrypt --key-hex K --in FILE --out FILE\n"
    "          SM4-GCM authenticated encryption with a 16-byte key (32 hex digits):\n"
    "          the output is a random 12-byte IV, the ciphertext, and a 16-byte tag.\n"
    "          --decrypt refuses (exit 3) anything altered or under another key and\n"
    "          then writes nothing. --out must not exist. At most 256 MiB.\n"
    "  sign | verify | encrypt | decrypt\n"
    "          GM/T 0010 SM2 messages (see gmca app <subcommand> --help).\n"
    "  validate\n"
    "          Validate a certificate for a use: chain to trust anchors, SM2\n"
    "          signatures, validity, constraints, revocation by CRL or OCSP\n"
    "          (see gmca app validate --help).\n"
    "  ts      query | reply | verify\n"
    "          RFC 3161 time-stamps with SM2 (see gmca app ts --help).\n";

struct app_opts {
        const char *in, *out, *key_hex, *hmac_key_hex;
        int bytes, json, hex, encrypt, decrypt;
        char seen[16];
};

static int parse_opts(int argc, char **argv, struct app_opts *o)
{
        static const struct option opts[] = {
            {"in", required_argument, NULL, 'i'},
            {"out", required_argument, NULL, 'o'},
            {"json", no_argument, NULL, 'j'},
            {"bytes", required_argument, NULL, 'b'},
            {"hex", no_argument, NULL, 'x'},
            {"hmac-key-hex", required_argument, NULL, 'm'},
            {"key-hex", required_argument, NULL, 'k'},
            {"encrypt", no_argument, NULL, 'e'},
            {"decrypt", no_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'i':
                        o->in = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'b':
                        if ((o->bytes = cli_parse_int(optarg, 1, RANDOM_MAX)) < 0)
                                return cli_usage_error("--bytes: 1..%d", RANDOM_MAX);
                        break;
                case 'x':
                        o->hex = 1;
                        break;
                case 'm':
                        o->hmac_key_hex = optarg;
                        break;
                case 'k':
                        o->key_hex = optarg;
                        break;
                case 'e':
                        o->encrypt = 1;
                        break;
                case 'd':
                        o->decrypt = 1;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("app %s: unexpected argument '%s'", argv[0], argv[optind]);
        return 0;
}

/* Report a public-interface failure the way every gmca command does. */
static int app_fail(const struct gmca_status *st)
{
        struct gmca_error e;

        gmca_error_clear(&e);
        gmca_error_set(&e, st->code != 0 ? st->code : GMCA_ERR_INTERNAL, "%s", st->message);
        return cli_fail(&e);
}

static const struct {
        unsigned bit;
        const char *name;
} ku_names[] = {
    {GMCA_KU_DIGITAL_SIGNATURE, "digitalSignature"},
    {GMCA_KU_NON_REPUDIATION, "nonRepudiation"},
    {GMCA_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
    {GMCA_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {GMCA_KU_KEY_AGREEMENT, "keyAgreement"},
    {GMCA_KU_KEY_CERT_SIGN, "keyCertSign"},
    {GMCA_KU_CRL_SIGN, "cRLSign"},
    {GMCA_KU_ENCIPHER_ONLY, "encipherOnly"},
    {GMCA_KU_DECIPHER_ONLY, "decipherOnly"},
};

static json_t *name_json(const struct gmca_name_info *n)
{
        json_t *o = json_object(), *attrs = json_array();

        for (size_t i = 0; i < n->count; i++)
                json_array_append_new(
                    attrs, json_pack("{s:s, s:s, s:s}", "type", n->attributes[i].type, "oid",
                                     n->attributes[i].oid, "value", n->attributes[i].value));
        json_object_set_new(o, "text", json_string(n->text));
        json_object_set_new(o, "attributes", attrs);
        return o;
}

static json_t *cert_json(const struct gmca_certificate_info *c)
{
        json_t *o = json_object(), *ku = json_array(), *eku = json_array(), *pext = json_object(),
               *san = json_array();

        json_object_set_new(o, "version", json_integer(c->version));
        json_object_set_new(o, "serial", json_string(c->serial));
        json_object_set_new(o, "subject", name_json(&c->subject));
        json_object_set_new(o, "issuer", name_json(&c->issuer));
        json_object_set_new(o, "not_before", json_string(c->not_before_text));
        json_object_set_new(o, "not_after", json_string(c->not_after_text));
        json_object_set_new(o, "signature_algorithm", json_string(c->signature_algorithm));
        if (c->has_key_usage) {
                for (size_t i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
                        if ((c->key_usage & ku_names[i].bit) != 0)
                                json_array_append_new(ku, json_string(ku_names[i].name));
                json_object_set_new(o, "key_usage", ku);
                json_object_set_new(o, "key_usage_critical", json_boolean(c->key_usage_critical));
        } else {
                json_decref(ku);
        }
        for (size_t i = 0; i < c->ext_key_usage_count; i++)
                json_array_append_new(eku, json_pack("{s:s, s:s}", "oid", c->ext_key_usage[i].oid,
                                                     "name", c->ext_key_usage[i].name));
        json_object_set_new(o, "ext_key_usage", eku);
        if (c->has_basic_constraints) {
                json_t *bc = json_object();

                json_object_set_new(bc, "ca", json_boolean(c->is_ca));
                if (c->path_len >= 0)
                        json_object_set_new(bc, "path_len", json_integer(c->path_len));
                json_object_set_new(o, "basic_constraints", bc);
        }
        for (size_t i = 0; i < c->private_extension_count; i++)
                json_object_set_new(pext, c->private_extensions[i].name,
                                    json_pack("{s:s, s:s}", "oid", c->private_extensions[i].oid,
                                              "value", c->private_extensions[i].value));
        json_object_set_new(o, "private_extensions", pext);
        for (size_t i = 0; i < c->alt_name_count; i++)
                json_array_append_new(san, json_pack("{s:s, s:s}", "kind", c->alt_names[i].kind,
                                                     "value", c->alt_names[i].value));
        json_object_set_new(o, "subject_alt_names", san);
        json_object_set_new(o, "fingerprint_sm3", json_string(c->fingerprint));
        json_object_set_new(o, "public_key_sm3", json_string(c->public_key_fingerprint));
        json_object_set_new(o, "public_key", json_string(c->public_key));
        return o;
}

static void cert_text(const struct gmca_certificate_info *c)
{
        printf("subject:             %s\n", c->subject.text);
        printf("issuer:              %s\n", c->issuer.text);
        printf("serial:              %s\n", c->serial);
        printf("not before:          %s\n", c->not_before_text);
        printf("not after:           %s\n", c->not_after_text);
        if (c->has_key_usage) {
                printf("key usage:          ");
                for (size_t i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++)
                        if ((c->key_usage & ku_names[i].bit) != 0)
                                printf(" %s", ku_names[i].name);
                printf("%s\n", c->key_usage_critical ? " (critical)" : "");
        }
        for (size_t i = 0; i < c->ext_key_usage_count; i++)
                printf("extended key usage:  %s\n", c->ext_key_usage[i].name);
        if (c->has_basic_constraints)
                printf("basic constraints:   CA:%s\n", c->is_ca ? "TRUE" : "FALSE");
        for (size_t i = 0; i < c->alt_name_count; i++)
                printf("alt name:            %s:%s\n", c->alt_names[i].kind, c->alt_names[i].value);
        for (size_t i = 0; i < c->private_extension_count; i++)
                printf("%-20s %s\n", c->private_extensions[i].name, c->private_extensions[i].value);
        printf("fingerprint (SM3):   %s\n", c->fingerprint);
        printf("public key (SM3):    %s\n", c->public_key_fingerprint);
        printf("public key:          %s\n", c->public_key);
}

int cmd_app_cert(struct cli *cli, int argc, char **argv)
{
        struct gmca_certificate *cert;
        struct gmca_status st;
        struct app_opts o;
        int rc;

        (void)cli;
        if ((rc = parse_opts(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (cli_only_options(o.seen, "ij", "app cert"))
                return EXIT_USAGE;
        if (o.in == NULL)
                return cli_usage_error("app cert: --in FILE is required");
        if ((cert = gmca_certificate_load(o.in, &st)) == NULL)
                return app_fail(&st);
        if (o.json) {
                rc = cli_print_json(cert_json(gmca_certificate_info(cert)));
        } else {
                cert_text(gmca_certificate_info(cert));
                rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
        }
        gmca_certificate_free(cert);
        return rc;
}

int cmd_app_random(struct cli *cli, int argc, char **argv)
{
        struct gmca_status st;
        struct gmca_error e;
        struct app_opts o;
        uint8_t *buf = NULL;
        char *hex = NULL;
        int rc;

        (void)cli;
        if ((rc = parse_opts(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (cli_only_options(o.seen, "bx", "app random"))
                return EXIT_USAGE;
        if (o.bytes == 0)
                return cli_usage_error("app random: --bytes N is required");
        gmca_error_clear(&e);
        if ((buf = malloc((size_t)o.bytes)) == NULL ||
            (o.hex && (hex = malloc(2 * (size_t)o.bytes + 2)) == NULL)) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "random: out of memory");
                rc = cli_fail(&e);
                goto out;
        }
        if (gmca_random_bytes(buf, (size_t)o.bytes, &st) != 0) {
                rc = app_fail(&st);
                goto out;
        }
        if (o.hex) {
                gmca_hex(buf, (size_t)o.bytes, hex);
                hex[2 * (size_t)o.bytes] = '\n';
                hex[2 * (size_t)o.bytes + 1] = '\0';
        }
        if (cli_output(NULL, o.hex ? (const void *)hex : buf,
                       o.hex ? 2 * (size_t)o.bytes + 1 : (size_t)o.bytes, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        rc = EXIT_OK;
out:
        gmca_buffer_free(buf, buf != NULL ? (size_t)o.bytes : 0);
        gmca_buffer_free(hex, hex != NULL ? 2 * (size_t)o.bytes + 2 : 0);
        return rc;
}

/* Decode hex into a new buffer of at most max bytes; NULL if not hex of 1..max bytes. */
static uint8_t *unhex_arg(const char *hex, size_t max, size_t *len)
{
        size_t n = strlen(hex);
        uint8_t *buf;

        if (n == 0 || n % 2 != 0 || n / 2 > max || (buf = malloc(n / 2)) == NULL)
                return NULL;
        if (gmca_unhex(hex, buf, n / 2, len) != 0 || *len != n / 2) {
                gmca_buffer_free(buf, n / 2);
                return NULL;
        }
        return buf;
}

int cmd_app_sm3(struct cli *cli, int argc, char **argv)
{
        struct gmca_sm3_stream *s = NULL;
        struct gmca_status st;
        struct gmca_error e;
        struct app_opts o;
        uint8_t md[GMCA_SM3_DIGEST_SIZE], *key = NULL, *chunk = NULL;
        char hex[2 * GMCA_SM3_DIGEST_SIZE + 1];
        size_t keylen = 0, n;
        FILE *f = NULL;
        int rc;

        (void)cli;
        if ((rc = parse_opts(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (cli_only_options(o.seen, "im", "app sm3"))
                return EXIT_USAGE;
        if (o.hmac_key_hex != NULL &&
            (key = unhex_arg(o.hmac_key_hex, HMAC_KEY_MAX, &keylen)) == NULL)
                return cli_usage_error("--hmac-key-hex: 1..%d bytes as hex", HMAC_KEY_MAX);
        gmca_error_clear(&e);
        if (o.in == NULL || strcmp(o.in, "-") == 0) {
                f = stdin;
        } else if ((f = fopen(o.in, "rb")) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOTFOUND, "%s: cannot open", o.in);
                rc = cli_fail(&e);
                goto out;
        }
        if ((chunk = malloc(SM3_CHUNK)) == NULL) {
                gmca_error_set(&e, GMCA_ERR_NOMEM, "SM3: out of memory");
                rc = cli_fail(&e);
                goto out;
        }
        if ((s = gmca_sm3_stream_new(key, keylen, &st)) == NULL) {
                rc = app_fail(&st);
                goto out;
        }
        /* Streamed: any length of input, constant memory. */
        while ((n = fread(chunk, 1, SM3_CHUNK, f)) > 0) {
                if (gmca_sm3_stream_update(s, chunk, n, &st) != 0) {
                        rc = app_fail(&st);
                        goto out;
                }
        }
        if (ferror(f)) {
                gmca_error_set(&e, GMCA_ERR_IO, "%s: read failed", o.in != NULL ? o.in : "stdin");
                rc = cli_fail(&e);
                goto out;
        }
        if (gmca_sm3_stream_final(s, md, &st) != 0) {
                rc = app_fail(&st);
                goto out;
        }
        gmca_hex(md, sizeof(md), hex);
        printf("%s\n", hex);
        rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
out:
        if (f != NULL && f != stdin)
                fclose(f);
        free(chunk);
        gmca_sm3_stream_free(s);
        gmca_buffer_free(key, keylen);
        return rc;
}

int cmd_app_sm4(struct cli *cli, int argc, char **argv)
{
        struct gmca_status st;
        struct gmca_error e;
        struct app_opts o;
        uint8_t *key = NULL, *in = NULL, *out = NULL;
        size_t keylen = 0, inlen = 0, outlen = 0;
        int rc;

        (void)cli;
        if ((rc = parse_opts(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (cli_only_options(o.seen, "edkio", "app sm4"))
                return EXIT_USAGE;
        if (o.encrypt == o.decrypt)
                return cli_usage_error("app sm4: exactly one of --encrypt and --decrypt");
        if (o.key_hex == NULL || o.in == NULL || o.out == NULL)
                return cli_usage_error("app sm4: --key-hex, --in and --out are required");
        if (strlen(o.key_hex) != 2 * GMCA_SM4_KEY_SIZE ||
            (key = unhex_arg(o.key_hex, GMCA_SM4_KEY_SIZE, &keylen)) == NULL)
                return cli_usage_error("--key-hex: %d hex digits (a 16-byte SM4 key)",
                                       2 * GMCA_SM4_KEY_SIZE);
        gmca_error_clear(&e);
        if (gmca_read_file(o.in, SM4_FILE_MAX, &in, &inlen, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        if (o.encrypt ? gmca_sm4_seal(key, NULL, 0, in, inlen, &out, &outlen, &st)
                      : gmca_sm4_open(key, NULL, 0, in, inlen, &out, &outlen, &st)) {
                rc = app_fail(&st);
                goto out;
        }
        if (o.decrypt) {
                /* The plaintext may be secret: readable by the owner only. */
                rc = gmca_write_file_excl(o.out, out, outlen, 0600, &e);
        } else {
                rc = cli_output(o.out, out, outlen, &e);
        }
        rc = rc != 0 ? cli_fail(&e) : EXIT_OK;
out:
        gmca_buffer_free(key, keylen);
        if (in != NULL) {
                OPENSSL_cleanse(in, inlen);
                free(in);
        }
        gmca_buffer_free(out, outlen);
        return rc;
}

int cmd_app(struct cli *cli, int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(struct cli *, int, char **);
        } subs[] = {
            {"cert", cmd_app_cert},         {"random", cmd_app_random},
            {"sm3", cmd_app_sm3},           {"sm4", cmd_app_sm4},
            {"sign", cmd_app_sign},         {"verify", cmd_app_verify},
            {"encrypt", cmd_app_encrypt},   {"decrypt", cmd_app_decrypt},
            {"validate", cmd_app_validate}, {"ts", cmd_app_ts},
        };
        int rc;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
                if (strcmp(argv[1], subs[i].name) == 0)
                        return subs[i].fn(cli, argc - 1, argv + 1);
        return cli_usage_error("app: unknown subcommand '%s'", argv[1]);
}
