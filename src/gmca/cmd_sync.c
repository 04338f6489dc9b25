/*
 * gmca sync verify: what a downstream e-government system does with each
 * body the CA's sync push sends it (CPS §4.6.1, §4.6.2; sync.h) — check
 * the SM2 signature, that the signer is the CA's sync certificate chaining
 * to the root it trusts, and read the event. Needs no state directory: a
 * receiver has only the root (and the operational CA's certificate, which
 * the body does not carry).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "cli.h"
#include "crl.h"
#include "sync.h"
#include "util.h"
#include "validate.h"
#include "x509.h"

#define SYNC_FILES_MAX 8 /* --anchor, --chain, --crl each */

static const char usage[] =
    "usage: gmca sync verify --in BODY --anchor ROOT.pem [--chain SUB.pem]... [--crl F]...\n"
    "                        [--json]\n"
    "\n"
    "Check a body pushed by `gmca serve --sync`: the GM/T 0010 SignedData's SM2\n"
    "signature, a signer certificate of profile sync chaining to ROOT through the\n"
    "--chain certificates (revocation checked when --crl is given), and the event\n"
    "payload. Prints the payload JSON, or with --json an object with the signer and\n"
    "the payload. Exit 0 when it verifies, else the cause on stderr.\n";

struct sync_opts {
        const char *in, *anchor[SYNC_FILES_MAX], *chain[SYNC_FILES_MAX], *crl[SYNC_FILES_MAX];
        size_t nanchor, nchain, ncrl;
        int json;
};

static int add(const char **v, size_t *n, const char *arg, const char *what)
{
        if (*n >= SYNC_FILES_MAX)
                return cli_usage_error("%s: at most %d", what, SYNC_FILES_MAX);
        v[(*n)++] = arg;
        return 0;
}

static int parse(int argc, char **argv, struct sync_opts *o)
{
        static const struct option opts[] = {
            {"in", required_argument, NULL, 'i'},
            {"anchor", required_argument, NULL, 'a'},
            {"chain", required_argument, NULL, 'c'},
            {"crl", required_argument, NULL, 'r'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        optind = 1;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'i':
                        o->in = optarg;
                        break;
                case 'a':
                        if (add(o->anchor, &o->nanchor, optarg, "--anchor") != 0)
                                return EXIT_USAGE;
                        break;
                case 'c':
                        if (add(o->chain, &o->nchain, optarg, "--chain") != 0)
                                return EXIT_USAGE;
                        break;
                case 'r':
                        if (add(o->crl, &o->ncrl, optarg, "--crl") != 0)
                                return EXIT_USAGE;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("sync verify: unexpected argument '%s'", argv[optind]);
        if (o->in == NULL || o->nanchor == 0)
                return cli_usage_error("sync verify: --in and --anchor are required");
        return 0;
}

/* The certificates and CRLs named on the command line, parsed strictly. */
struct sync_files {
        X509 *anchor[SYNC_FILES_MAX], *chain[SYNC_FILES_MAX];
        X509_CRL *crl[SYNC_FILES_MAX];
};

static int load(const struct sync_opts *o, struct sync_files *f, struct gmca_error *e)
{
        for (size_t i = 0; i < o->nanchor; i++)
                if ((f->anchor[i] = cli_load_cert(o->anchor[i], e)) == NULL)
                        return e->code;
        for (size_t i = 0; i < o->nchain; i++)
                if ((f->chain[i] = cli_load_cert(o->chain[i], e)) == NULL)
                        return e->code;
        for (size_t i = 0; i < o->ncrl; i++) {
                uint8_t *buf = NULL;
                size_t len = 0;
                int rc;

                if ((rc = gmca_read_file(o->crl[i], GMCA_VFY_FETCH_MAX, &buf, &len, e)) != 0)
                        return rc;
                f->crl[i] = gmca_crl_parse(buf, len, e);
                free(buf);
                if (f->crl[i] == NULL)
                        return e->code;
        }
        return 0;
}

static void files_free(struct sync_files *f)
{
        for (size_t i = 0; i < SYNC_FILES_MAX; i++) {
                X509_free(f->anchor[i]);
                X509_free(f->chain[i]);
                X509_CRL_free(f->crl[i]);
        }
}

static int print(const struct sync_opts *o, const char *payload, size_t plen,
                 const struct gmca_sync_verified *vi, struct gmca_error *e)
{
        char when[32] = "";
        json_error_t je;
        json_t *p;

        if (!o->json) {
                fwrite(payload, 1, plen, stdout);
                fputc('\n', stdout);
                return 0;
        }
        if ((p = json_loadb(payload, plen, 0, &je)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "sync payload: %s", je.text);
        if (vi->signing_time > 0)
                gmca_time_iso(vi->signing_time, when, sizeof(when));
        return cli_print_json(json_pack("{s:b, s:I, s:s, s:s, s:s?, s:o}", "verified", 1,
                                        "event_id", (json_int_t)vi->event_id, "signer", vi->signer,
                                        "signer_serial", vi->signer_serial, "signing_time",
                                        when[0] != '\0' ? when : NULL, "payload", p)) == 0
                   ? 0
                   : gmca_error_set(e, GMCA_ERR_IO, "cannot print");
}

static int verify(int argc, char **argv)
{
        struct sync_opts o;
        struct sync_files f;
        struct gmca_sync_verified vi;
        struct gmca_vfy_opts vo;
        struct gmca_error e = {0};
        uint8_t *body = NULL;
        char *payload = NULL;
        size_t len = 0, plen = 0;
        int rc;

        if ((rc = parse(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        memset(&f, 0, sizeof(f));
        if (load(&o, &f, &e) != 0 ||
            gmca_read_file(o.in, GMCA_SYNC_BODY_MAX, &body, &len, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        vo =
            (struct gmca_vfy_opts){.anchors = f.anchor,
                                   .nanchors = o.nanchor,
                                   .intermediates = f.chain,
                                   .nintermediates = o.nchain,
                                   .crls = f.crl,
                                   .ncrls = o.ncrl,
                                   .revocation = o.ncrl > 0 ? GMCA_VFY_REV_CRL : GMCA_VFY_REV_NONE};
        if (gmca_sync_verify(body, len, &vo, &payload, &plen, &vi, &e) != 0 ||
            print(&o, payload, plen, &vi, &e) != 0)
                rc = cli_fail(&e);
        else
                rc = EXIT_OK;
out:
        OPENSSL_free(payload);
        free(body);
        files_free(&f);
        return rc;
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
        int rc;

        (void)cli;
        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        if (strcmp(argv[1], "verify") == 0)
                return verify(argc - 1, argv + 1);
        return cli_usage_error("sync: unknown subcommand '%s' (gmca sync verify)", argv[1]);
}
