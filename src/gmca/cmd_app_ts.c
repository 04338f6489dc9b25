/*
 * gmca app ts query | reply | verify: RFC 3161 time-stamps with SM2
 * (issue 8 item 4) through src/lib/tsa. `query` writes a TimeStampReq for
 * a file or a digest; `reply` answers a request file as `gmca serve
 * --tsa-cert` answers the body of `POST /tsa` (src/serve/tsa.c; both call
 * gmca_tsa_reply), signing with the TSA certificate (profile tsa) and its
 * key; `verify` checks a TimeStampResp against the data or a digest,
 * the request sent, and a trusted TSA certificate or its CA, and prints the
 * time-stamp as JSON. Requests and responses are DER files, never written
 * over an existing file ("-" is standard output).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "crypto.h"
#include "tsa.h"
#include "util.h"
#include "x509.h"

#define DATA_MAX ((size_t)1 << 30) /* bytes of a file hashed by query/verify */

static const char ts_usage[] =
    "usage: gmca app ts <query|reply|verify> [options]\n"
    "\n"
    "  query   (--in DATA | --digest-hex H) [--sha256] [--no-nonce] [--cert-req]\n"
    "          [--policy OID] --out REQ\n"
    "          RFC 3161 TimeStampReq for the SM3 (or --sha256 SHA-256) digest of DATA,\n"
    "          or for the 32-byte digest H, with a random nonce unless --no-nonce.\n"
    "  reply   --cert TSA.pem --key TSA.key [--pass-file F] --in REQ --out RESP\n"
    "          [--policy OID] [--accuracy-ms N] [--tsa-name] [--signing-time] [--id ID]\n"
    "          Answer the request REQ as the time-stamping authority: a token signed\n"
    "          with SM2 (ID 1234567812345678 unless --id) under TSA.pem, whose\n"
    "          extKeyUsage must be timeStamping only and critical (profile tsa).\n"
    "          A request that cannot be granted gets a rejection (failInfo badAlg,\n"
    "          badRequest, badDataFormat, unacceptedPolicy, unacceptedExtension),\n"
    "          which is written too; the command then exits 3.\n"
    "  verify  --in RESP (--data F | --digest-hex H) [--request REQ]\n"
    "          (--cert TSA.pem | --ca CA.pem | both) [--id ID]\n"
    "          Verify the TimeStampResp RESP: granted, the token's SM2 signature\n"
    "          under the TSA certificate (given, or carried in the token and issued\n"
    "          by CA.pem), its extKeyUsage, messageDigest and ESSCertIDv2, the imprint\n"
    "          against the data or digest, and the nonce and policy of REQ. Prints\n"
    "          genTime, serial, policy and the TSA as JSON.\n";

struct ts_opts {
        char seen[32];
        const char *in, *out, *digest_hex, *policy, *cert, *key, *pass_file, *data, *request, *ca,
            *id;
        int sha256, no_nonce, cert_req, accuracy_ms, tsa_name, signing_time;
};

static int parse(int argc, char **argv, struct ts_opts *o)
{
        static const struct option opts[] = {
            {"in", required_argument, NULL, 'i'},
            {"out", required_argument, NULL, 'o'},
            {"digest-hex", required_argument, NULL, 'D'},
            {"policy", required_argument, NULL, 'P'},
            {"cert", required_argument, NULL, 'c'},
            {"key", required_argument, NULL, 'k'},
            {"pass-file", required_argument, NULL, 'p'},
            {"data", required_argument, NULL, 'd'},
            {"request", required_argument, NULL, 'r'},
            {"ca", required_argument, NULL, 'a'},
            {"id", required_argument, NULL, 'I'},
            {"accuracy-ms", required_argument, NULL, 'A'},
            {"sha256", no_argument, NULL, 'S'},
            {"no-nonce", no_argument, NULL, 'N'},
            {"cert-req", no_argument, NULL, 'C'},
            {"tsa-name", no_argument, NULL, 'T'},
            {"signing-time", no_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        optind = 1;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'i':
                        o->in = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'D':
                        o->digest_hex = optarg;
                        break;
                case 'P':
                        if (strlen(optarg) >= GMCA_TSA_OID_MAX)
                                return cli_usage_error("--policy: a dotted OID");
                        o->policy = optarg;
                        break;
                case 'c':
                        o->cert = optarg;
                        break;
                case 'k':
                        o->key = optarg;
                        break;
                case 'p':
                        o->pass_file = optarg;
                        break;
                case 'd':
                        o->data = optarg;
                        break;
                case 'r':
                        o->request = optarg;
                        break;
                case 'a':
                        o->ca = optarg;
                        break;
                case 'I':
                        if (strlen(optarg) == 0 || strlen(optarg) > GMCA_SM2_ID_MAX)
                                return cli_usage_error("--id: 1 to %d bytes", GMCA_SM2_ID_MAX);
                        o->id = optarg;
                        break;
                case 'A':
                        if ((o->accuracy_ms = cli_parse_int(optarg, 1, 999)) < 0)
                                return cli_usage_error("--accuracy-ms: 1..999");
                        break;
                case 'S':
                        o->sha256 = 1;
                        break;
                case 'N':
                        o->no_nonce = 1;
                        break;
                case 'C':
                        o->cert_req = 1;
                        break;
                case 'T':
                        o->tsa_name = 1;
                        break;
                case 't':
                        o->signing_time = 1;
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

static int setup(int argc, char **argv, struct ts_opts *o, const char *allowed)
{
        int rc = parse(argc, argv, o);

        if (rc == -1) {
                fputs(ts_usage, stdout);
                return -1;
        }
        if (rc != 0)
                return rc;
        return cli_only_options(o->seen, allowed, argv[0]);
}

static int output(const char *out, const uint8_t *buf, size_t len, struct gmca_error *e)
{
        return cli_output(strcmp(out, "-") == 0 ? NULL : out, buf, len, e);
}

static int digest_of_hex(const char *hex, uint8_t out[32])
{
        size_t n = 0;

        if (strlen(hex) != 64 || gmca_unhex(hex, out, 32, &n) != 0 || n != 32)
                return cli_usage_error("--digest-hex: 64 hex digits (an SM3 or SHA-256 digest)");
        return 0;
}

static int ts_query(int argc, char **argv)
{
        struct gmca_error e = {0};
        struct gmca_tsa_req r;
        struct ts_opts o;
        uint8_t md[32], *data = NULL, *der = NULL;
        size_t len = 0, derlen = 0;
        int nid, rc;

        if ((rc = setup(argc, argv, &o, "iDSNCPo")) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if ((o.in == NULL) == (o.digest_hex == NULL) || o.out == NULL)
                return cli_usage_error("app ts query: one of --in and --digest-hex, and --out");
        nid = o.sha256 ? NID_sha256 : NID_sm3;
        if (o.digest_hex != NULL) {
                if ((rc = digest_of_hex(o.digest_hex, md)) != 0)
                        return rc;
        } else {
                unsigned int n = 0;

                if (gmca_read_file(o.in, DATA_MAX, &data, &len, &e) != 0)
                        return cli_fail(&e);
                if (EVP_Digest(data, len, md, &n, o.sha256 ? EVP_sha256() : EVP_sm3(), NULL) != 1) {
                        free(data);
                        gmca_error_ossl(&e, GMCA_ERR_CRYPTO, "cannot hash %s", o.in);
                        return cli_fail(&e);
                }
                free(data);
        }
        if (gmca_tsa_req_init(&r, nid, md, sizeof(md), o.no_nonce, o.cert_req, &e) != 0)
                return cli_fail(&e);
        if (o.policy != NULL)
                gmca_strlcpy(r.policy, o.policy, sizeof(r.policy));
        if (gmca_tsa_req_build(&r, &der, &derlen, &e) != 0 || output(o.out, der, derlen, &e) != 0)
                rc = cli_fail(&e);
        OPENSSL_free(der);
        return rc;
}

static int ts_reply(int argc, char **argv)
{
        struct gmca_tsa_opts to = {0};
        struct gmca_error e = {0};
        struct ts_opts o;
        uint8_t *req = NULL, *resp = NULL;
        size_t reqlen = 0, resplen = 0;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        int status = -1, rc;

        if ((rc = setup(argc, argv, &o, "ckpioPATtI")) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.cert == NULL || o.key == NULL || o.in == NULL || o.out == NULL)
                return cli_usage_error("app ts reply: --cert, --key, --in and --out are required");
        to.policy = o.policy;
        to.sm2_id = o.id;
        to.accuracy_ms = o.accuracy_ms;
        to.include_tsa = o.tsa_name;
        to.signing_time = o.signing_time;
        if ((cert = cli_load_cert(o.cert, &e)) == NULL ||
            (key = cli_load_key(o.key, o.pass_file, &e)) == NULL ||
            gmca_read_file(o.in, GMCA_TSA_REQ_MAX, &req, &reqlen, &e) != 0 ||
            gmca_tsa_reply(cert, key, &to, req, reqlen, &resp, &resplen, &status, &e) != 0 ||
            output(o.out, resp, resplen, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        if (status != 0) {
                struct gmca_tsa_expect x = {.tsa_cert = cert};

                /* Say why, from the response just written. */
                if (gmca_tsa_verify(resp, resplen, &x, NULL, &e) == 0)
                        gmca_error_set(&e, GMCA_ERR_INVALID, "request rejected");
                e.code = GMCA_ERR_INVALID;
                rc = cli_fail(&e);
        }
out:
        OPENSSL_free(resp);
        free(req);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}

static int ts_verify(int argc, char **argv)
{
        struct gmca_tsa_expect x = {0};
        struct gmca_tsa_info info;
        struct gmca_tsa_req req;
        struct gmca_error e = {0};
        struct ts_opts o;
        uint8_t md[32], *resp = NULL, *data = NULL, *reqder = NULL;
        size_t resplen = 0, datalen = 0, reqlen = 0;
        int fail, rc;
        json_t *j;

        if ((rc = setup(argc, argv, &o, "idDrcaI")) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (o.in == NULL || (o.data == NULL) == (o.digest_hex == NULL))
                return cli_usage_error("app ts verify: --in and one of --data and --digest-hex "
                                       "are required");
        if (o.cert == NULL && o.ca == NULL)
                return cli_usage_error("app ts verify: --cert (the TSA certificate) or --ca (its "
                                       "issuer) is required: the token alone proves nothing");
        if (o.digest_hex != NULL) {
                if ((rc = digest_of_hex(o.digest_hex, md)) != 0)
                        return rc;
                x.digest = md;
                x.digest_len = sizeof(md);
        }
        x.sm2_id = o.id;
        if ((o.data != NULL && gmca_read_file(o.data, DATA_MAX, &data, &datalen, &e) != 0) ||
            gmca_read_file(o.in, GMCA_TSA_RESP_MAX, &resp, &resplen, &e) != 0 ||
            (o.request != NULL &&
             (gmca_read_file(o.request, GMCA_TSA_REQ_MAX, &reqder, &reqlen, &e) != 0 ||
              gmca_tsa_req_parse(reqder, reqlen, &req, &fail, &e) != 0)) ||
            (o.cert != NULL && (x.tsa_cert = cli_load_cert(o.cert, &e)) == NULL) ||
            (o.ca != NULL && (x.ca_cert = cli_load_cert(o.ca, &e)) == NULL)) {
                rc = cli_fail(&e);
                goto out;
        }
        if (o.data != NULL) {
                x.data = data != NULL ? data : (const uint8_t *)"";
                x.data_len = datalen;
                x.has_data = 1;
        }
        if (o.request != NULL)
                x.req = &req;
        if (gmca_tsa_verify(resp, resplen, &x, &info, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        j = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "genTime", info.gen_time_text,
                      "genTimeUnix", (json_int_t)info.gen_time, "serial", info.serial, "policy",
                      info.policy, "tsa", info.tsa_subject, "hash", info.hash, "imprint",
                      info.digest);
        if (j != NULL && info.nonce[0] != '\0')
                json_object_set_new(j, "nonce", json_string(info.nonce));
        if (j != NULL && info.accuracy_ms >= 0)
                json_object_set_new(j, "accuracyMs", json_integer(info.accuracy_ms));
        rc = cli_print_json(j);
out:
        X509_free(x.tsa_cert);
        X509_free(x.ca_cert);
        free(reqder);
        free(resp);
        free(data);
        return rc;
}

int cmd_app_ts(struct cli *cli, int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } subs[] = {
            {"query", ts_query},
            {"reply", ts_reply},
            {"verify", ts_verify},
        };
        int rc;

        (void)cli;
        if (cli_group_help(argc, argv, ts_usage, &rc))
                return rc;
        for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
                if (strcmp(argv[1], subs[i].name) == 0)
                        return subs[i].fn(argc - 1, argv + 1);
        return cli_usage_error("app ts: unknown subcommand '%s'", argv[1]);
}
