/*
 * gmca app validate: certificate validation for a relying party (CPS
 * §3.5.2 steps 1-4) through the public libgmca interface
 * (include/gmca/validate.h): chain to the given trust anchors, SM2
 * signatures with the ID, validity, constraints, key usage for the
 * intended use, and revocation by CRL or OCSP under a policy. Exit 0 when
 * valid; otherwise the reason on stderr as one line and exit 3.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gmca/gmca.h"
#include "gmca/validate.h"

#include "cli.h"
#include "util.h"

#define FILES_MAX 16 /* of each of --anchor, --chain, --crl */

static const char usage[] =
    "usage: gmca app validate --cert FILE --anchor FILE [--anchor FILE ...]\n"
    "           [--chain FILE ...] [--chain-dir DIR] [--use signature|encryption|any]\n"
    "           [--revocation crl|ocsp|prefer-ocsp|soft-fail|none] [--crl FILE ...]\n"
    "           [--cache DIR] [--ocsp-url URL] [--offline] [--timeout SECONDS]\n"
    "           [--at YYYY-MM-DDTHH:MM:SSZ] [--json]\n"
    "\n"
    "Validate an SM2 certificate the way a relying party must (CPS §3.5.2):\n"
    "build the chain to a trust anchor (--anchor) through the intermediates\n"
    "given with --chain (link certificates of a CA key rollover included), the\n"
    "*.pem, *.crt and *.der files in --chain-dir (one certificate each, at most\n"
    "32), or fetched from caIssuers URLs; check each SM2 signature with the ID\n"
    "1234567812345678, the validity periods at --at (default now), basic\n"
    "constraints, key usage for --use (default any), critical extensions; then\n"
    "revocation of each certificate below the anchor:\n"
    "  crl          CRL only: --crl files, the --cache directory, or the CDP URL\n"
    "  ocsp         OCSP only (AIA URL or --ocsp-url), SM3 CertID and a nonce\n"
    "  prefer-ocsp  OCSP, then CRL (default)\n"
    "  soft-fail    OCSP, then CRL; passes when neither can be had\n"
    "  none         no revocation check\n"
    "A CRL or OCSP response with a wrong signature, issuer or nonce fails under\n"
    "every policy. Fetched CRLs are kept in --cache until their nextUpdate.\n"
    "Revocation follows --at (RFC 5280 §6.1: the status at the validation\n"
    "time): a CRL or OCSP response must be current then (nextUpdate not before\n"
    "--at), so an archived CRL that was current at a past --at serves, a future\n"
    "--at needs data current then, and a revocation dated after --at does not\n"
    "count; data with a thisUpdate after the real time is always refused.\n"
    "--offline fetches nothing. Exit 0 when valid; 3 with the reason\n"
    "(no-issuer, bad-signature, expired, not-yet-valid, wrong-use, revoked,\n"
    "revocation-unavailable, crl-invalid, ocsp-invalid, ...) when not.\n";

struct opts {
        const char *cert, *anchors[FILES_MAX], *chain[FILES_MAX], *crls[FILES_MAX];
        size_t nanchors, nchain, ncrls;
        const char *cache, *ocsp_url, *chain_dir;
        int use, revocation, json, offline, timeout;
        time_t at;
        char seen[24];
};

static int add(const char **arr, size_t *n, const char *v, const char *what)
{
        if (*n >= FILES_MAX)
                return cli_usage_error("%s: at most %d", what, FILES_MAX);
        arr[(*n)++] = v;
        return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
        static const struct option lo[] = {
            {"cert", required_argument, NULL, 'c'},
            {"anchor", required_argument, NULL, 'a'},
            {"chain", required_argument, NULL, 'i'},
            {"chain-dir", required_argument, NULL, 'd'},
            {"use", required_argument, NULL, 'u'},
            {"revocation", required_argument, NULL, 'r'},
            {"crl", required_argument, NULL, 'l'},
            {"cache", required_argument, NULL, 'k'},
            {"at", required_argument, NULL, 't'},
            {"json", no_argument, NULL, 'j'},
            {"ocsp-url", required_argument, NULL, 'o'},
            {"offline", no_argument, NULL, 'n'},
            {"timeout", required_argument, NULL, 'T'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        static const char *const uses[] = {"any", "signature", "encryption"};
        static const char *const pols[] = {"none", "crl", "ocsp", "prefer-ocsp", "soft-fail"};
        int ch, rc = 0;

        memset(o, 0, sizeof(*o));
        o->revocation = GMCA_REVOCATION_PREFER_OCSP;
        o->timeout = 10;
        o->use = -1;
        while (rc == 0 && (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'c':
                        o->cert = optarg;
                        break;
                case 'a':
                        rc = add(o->anchors, &o->nanchors, optarg, "--anchor");
                        break;
                case 'i':
                        rc = add(o->chain, &o->nchain, optarg, "--chain");
                        break;
                case 'd':
                        o->chain_dir = optarg;
                        break;
                case 'l':
                        rc = add(o->crls, &o->ncrls, optarg, "--crl");
                        break;
                case 'u':
                        o->use = -1;
                        for (int i = 0; i < 3; i++)
                                if (strcmp(optarg, uses[i]) == 0)
                                        o->use = i;
                        if (o->use < 0)
                                return cli_usage_error("--use: signature, encryption or any");
                        break;
                case 'r':
                        o->revocation = -1;
                        for (int i = 0; i < 5; i++)
                                if (strcmp(optarg, pols[i]) == 0)
                                        o->revocation = i;
                        if (o->revocation < 0)
                                return cli_usage_error(
                                    "--revocation: crl, ocsp, prefer-ocsp, soft-fail or none");
                        break;
                case 'k':
                        o->cache = optarg;
                        break;
                case 't':
                        if (gmca_time_parse(optarg, &o->at) != 0 || o->at <= 0)
                                return cli_usage_error("--at: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'o':
                        o->ocsp_url = optarg;
                        break;
                case 'n':
                        o->offline = 1;
                        break;
                case 'T':
                        if ((o->timeout = cli_parse_int(optarg, 1, 300)) < 0)
                                return cli_usage_error("--timeout: 1..300 seconds");
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (rc != 0)
                return rc;
        if (optind != argc)
                return cli_usage_error("app validate: unexpected argument '%s'", argv[optind]);
        if (o->cert == NULL || o->nanchors == 0)
                return cli_usage_error("app validate: --cert and at least one --anchor are needed");
        if (o->use < 0)
                o->use = GMCA_USE_ANY;
        return 0;
}

static int fail_status(const struct gmca_status *st)
{
        struct gmca_error e;

        gmca_error_clear(&e);
        gmca_error_set(&e, st->code != 0 ? st->code : GMCA_ERR_INTERNAL, "%s", st->message);
        return cli_fail(&e);
}

static json_t *result_json(const struct gmca_validation_result *r, int valid)
{
        json_t *o = json_object(), *chain = json_array();

        for (size_t i = 0; i < r->chain_length; i++)
                json_array_append_new(chain, json_string(r->chain[i]));
        json_object_set_new(o, "valid", json_boolean(valid));
        json_object_set_new(o, "reason", json_string(gmca_validation_reason_name(r->reason)));
        if (!valid) {
                json_object_set_new(o, "depth", json_integer(r->depth));
                json_object_set_new(o, "message", json_string(r->message));
        }
        json_object_set_new(o, "revocation", json_string(r->revocation));
        json_object_set_new(o, "chain", chain);
        return o;
}

int cmd_app_validate(struct cli *cli, int argc, char **argv)
{
        struct gmca_validation_result *res = NULL;
        struct gmca_validator *v = NULL;
        struct gmca_certificate *cert = NULL;
        struct gmca_status st;
        struct gmca_error e;
        struct opts o;
        int rc;

        (void)cli;
        if ((rc = parse(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        memset(&st, 0, sizeof(st));
        if ((cert = gmca_certificate_load(o.cert, &st)) == NULL ||
            (v = gmca_validator_new(&st)) == NULL) {
                rc = fail_status(&st);
                goto out;
        }
        for (size_t i = 0; i < o.nanchors; i++)
                if (gmca_validator_add_anchor_file(v, o.anchors[i], &st) != 0) {
                        rc = fail_status(&st);
                        goto out;
                }
        for (size_t i = 0; i < o.nchain; i++)
                if (gmca_validator_add_intermediate_file(v, o.chain[i], &st) != 0) {
                        rc = fail_status(&st);
                        goto out;
                }
        for (size_t i = 0; i < o.ncrls; i++)
                if (gmca_validator_add_crl_file(v, o.crls[i], &st) != 0) {
                        rc = fail_status(&st);
                        goto out;
                }
        if (gmca_validator_set_use(v, o.use) != 0 ||
            gmca_validator_set_revocation(v, o.revocation) != 0 ||
            gmca_validator_set_time(v, (int64_t)o.at) != 0 ||
            gmca_validator_set_network(v, !o.offline, o.timeout) != 0 ||
            gmca_validator_set_crl_cache(v, o.cache, &st) != 0 ||
            gmca_validator_set_chain_dir(v, o.chain_dir, &st) != 0 ||
            gmca_validator_set_ocsp_url(v, o.ocsp_url, &st) != 0) {
                rc = st.code != 0 ? fail_status(&st) : cli_usage_error("app validate: bad option");
                goto out;
        }
        if ((res = calloc(1, sizeof(*res))) == NULL) {
                gmca_error_clear(&e);
                gmca_error_set(&e, GMCA_ERR_NOMEM, "validate: out of memory");
                rc = cli_fail(&e);
                goto out;
        }
        rc = gmca_validate_certificate(v, cert, res, &st);
        if (rc != 0 && rc != GMCA_RC_VERIFY) {
                rc = fail_status(&st);
                goto out;
        }
        if (o.json && cli_print_json(result_json(res, rc == 0)) != EXIT_OK) {
                rc = EXIT_FAIL;
                goto out;
        }
        if (rc == 0) {
                if (!o.json)
                        printf("valid: %s (revocation: %s)\n", res->chain[0], res->revocation);
                rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
        } else {
                gmca_error_clear(&e);
                gmca_error_set(&e, GMCA_ERR_VERIFY, "not valid: %s: %s",
                               gmca_validation_reason_name(res->reason), res->message);
                rc = cli_fail(&e);
        }
out:
        free(res);
        gmca_validator_free(v);
        gmca_certificate_free(cert);
        return rc;
}
