/*
 * gmca serve: run the RA front (src/serve) on a state directory. Before it
 * listens it checks that the RA communication key and certificate belong
 * together and that the certificate is the named RA's current one, and
 * that the CA engine runs — starting it with the custodians given, as gmca
 * activate does, and stopping it again when the front stops. With
 * --tsa-cert and --tsa-key it also answers POST /tsa (RFC 3161); the TSA
 * key is loaded here once, checked against its certificate by a self-test
 * token, lent to the worker threads and freed (its memory cleared by
 * OpenSSL) when serve returns.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "cli.h"
#include "serve.h"
#include "tsa.h"
#include "x509.h"

static const char usage[] =
    "usage: gmca [--dir DIR] serve --ra NAME --ra-key FILE --ra-cert FILE [options]\n"
    "\n"
    "Runs the RA front: the signed operator API (/api/v1, see docs/api.md) and\n"
    "the public downloads (/ca/NAME.crt, /crl/NAME.crl, /healthz). It holds no\n"
    "CA key: issuance and the sealing of identity numbers go to the CA engine,\n"
    "signed with the RA communication key. Prints \"gmca: serving on URL\" when\n"
    "ready, writes DIR/run/serve.pid; SIGTERM or SIGINT stops it (exit 0).\n"
    "\n"
    "  --listen ADDR:PORT  where to listen (default " GMCA_SERVE_DEFAULT_LISTEN "; [ADDR6]:PORT;\n"
    "                      port 0 picks a free one, printed in the ready line)\n"
    "  --ra NAME           the RA system this front is\n"
    "  --ra-key FILE       its communication private key (PEM)\n"
    "  --ra-pass-file FILE the key's passphrase, if it has one\n"
    "  --ra-cert FILE      its certificate: NAME's current one (gmca ra cert issue)\n"
    "  --threads N         worker threads (default 4, at most 64)\n"
    "  --share FILE --pin-file FILE ...\n"
    "                      if the CA engine is not running: the custodians who start\n"
    "                      it (as gmca activate); it is stopped when serve stops.\n"
    "                      Without them, serve refuses to start (exit 6).\n"
    "  --tsa-cert FILE --tsa-key FILE [--tsa-pass-file FILE]\n"
    "                      also answer POST /tsa (RFC 3161) as the time-stamping\n"
    "                      authority of this certificate (profile tsa) and key\n"
    "  --tsa-policy OID    the TSA policy of the tokens (default " GMCA_TSA_POLICY_DEFAULT ")\n"
    "  --tsa-accuracy-ms N the accuracy the tokens state, 1..999 (default: none)\n";

struct serve_opts {
        const char *listen, *ra, *key, *pass, *cert;
        int threads;
        const char *tsa_cert, *tsa_key, *tsa_pass, *tsa_policy;
        int tsa_accuracy_ms;
};

/* The RA certificate: current for the RA named, issued here, and the key's. */
static int check_ra(struct gmca_ctx *c, const struct serve_opts *o, EVP_PKEY *key, X509 *cert,
                    struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX], owner[GMCA_NAME_MAX];
        int rc, current = 0;

        if (X509_check_private_key(cert, key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_TAMPER, "%s: not the key of %s", o->key, o->cert);
        }
        if ((rc = gmca_ra_cert_check(c, cert, e)) != 0)
                return rc;
        if ((rc = gmca_serial_hex(cert, serial, sizeof(serial))) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: bad serial", o->cert);
        if ((rc = gmca_ra_cert_owner(c, serial, owner, &current, e)) != 0)
                return rc;
        if (strcmp(owner, o->ra) != 0 || !current)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "%s: the current RA communication certificate of '%s', "
                                      "not of '%s'",
                                      o->cert, owner, o->ra);
        return 0;
}

/* Start the CA engine with the custodians; *started tells whether we did. */
static int engine_up(struct cli *cli, struct cli_custody *k, int *started, struct gmca_error *e)
{
        struct gmca_ctx *c;
        pid_t pid;
        int rc;

        *started = 0;
        if ((c = gmca_ctx_open(cli->dir, cli->actor, e)) == NULL)
                return e->code;
        if (gmca_ctx_use_engine(c, e) == 0) {
                gmca_ctx_close(c);
                if (k->nshares > 0)
                        fprintf(stderr,
                                "gmca: the CA engine runs already; custodians not needed\n");
                return 0;
        }
        gmca_ctx_close(c);
        if (k->nshares == 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "CA not activated: run gmca activate, or give the "
                                      "custodians (--share, --pin-file)");
        }
        gmca_error_clear(e);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, e)) == NULL)
                return e->code;
        if ((rc = cli_custody_collect(k, 0, NULL, e)) != 0 ||
            (rc = gmca_ctx_activate(c, k->cust, k->n, e)) != 0) {
                gmca_ctx_close(c);
                return rc;
        }
        gmca_ctx_forget_secrets(c);
        rc = cli_engine_spawn(c, &pid, e);
        /* The keys live on in the engine only. */
        gmca_ctx_close(c);
        if (rc != 0)
                return rc;
        fprintf(stderr, "gmca: CA engine started (pid %ld)\n", (long)pid);
        *started = 1;
        return 0;
}

static void engine_down(struct cli *cli)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;

        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL ||
            gmca_ctx_deactivate_engine(c, &e) != 0)
                fprintf(stderr, "gmca: could not stop the CA engine: %s\n", e.msg);
        else
                fprintf(stderr, "gmca: CA engine stopped\n");
        gmca_ctx_close(c);
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"listen", required_argument, NULL, 'l'},
            {"ra", required_argument, NULL, 'r'},
            {"ra-key", required_argument, NULL, 'k'},
            {"ra-pass-file", required_argument, NULL, 'P'},
            {"ra-cert", required_argument, NULL, 'c'},
            {"threads", required_argument, NULL, 't'},
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"tsa-cert", required_argument, NULL, 'C'},
            {"tsa-key", required_argument, NULL, 'K'},
            {"tsa-pass-file", required_argument, NULL, 'Q'},
            {"tsa-policy", required_argument, NULL, 'O'},
            {"tsa-accuracy-ms", required_argument, NULL, 'A'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct serve_opts o = {.listen = GMCA_SERVE_DEFAULT_LISTEN,
                               .threads = GMCA_SERVE_THREADS_DEFAULT};
        struct gmca_serve_tsa tsa = {0};
        struct gmca_serve_config cfg;
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int ch, rc = EXIT_FAIL, started = 0;

        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'l':
                        o.listen = optarg;
                        break;
                case 'r':
                        o.ra = optarg;
                        break;
                case 'k':
                        o.key = optarg;
                        break;
                case 'P':
                        o.pass = optarg;
                        break;
                case 'c':
                        o.cert = optarg;
                        break;
                case 't':
                        if ((o.threads = cli_parse_int(optarg, 1, GMCA_SERVE_THREADS_MAX)) < 0)
                                return cli_usage_error("--threads: 1..%d", GMCA_SERVE_THREADS_MAX);
                        break;
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'C':
                        o.tsa_cert = optarg;
                        break;
                case 'K':
                        o.tsa_key = optarg;
                        break;
                case 'Q':
                        o.tsa_pass = optarg;
                        break;
                case 'O':
                        o.tsa_policy = optarg;
                        break;
                case 'A':
                        if ((o.tsa_accuracy_ms = cli_parse_int(optarg, 1, 999)) < 0)
                                return cli_usage_error("--tsa-accuracy-ms: 1..999");
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("serve: unexpected argument '%s'", argv[optind]);
        if (o.ra == NULL || o.key == NULL || o.cert == NULL)
                return cli_usage_error("serve: --ra, --ra-key and --ra-cert are required");
        if ((o.tsa_cert == NULL) != (o.tsa_key == NULL) ||
            (o.tsa_cert == NULL &&
             (o.tsa_pass != NULL || o.tsa_policy != NULL || o.tsa_accuracy_ms != 0)))
                return cli_usage_error("serve: --tsa-cert and --tsa-key go together, and the "
                                       "other --tsa options need them");
        if (gmca_serve_check_listen(o.listen, &e) != 0 ||
            (key = cli_load_key(o.key, o.pass, &e)) == NULL ||
            (cert = cli_load_cert(o.cert, &e)) == NULL ||
            (c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL ||
            check_ra(c, &o, key, cert, &e) != 0)
                goto fail;
        if (o.tsa_cert != NULL) {
                tsa.policy = o.tsa_policy;
                tsa.accuracy_ms = o.tsa_accuracy_ms;
                if ((tsa.cert = cli_load_cert(o.tsa_cert, &e)) == NULL ||
                    (tsa.key = cli_load_key(o.tsa_key, o.tsa_pass, &e)) == NULL)
                        goto fail;
                if (gmca_serve_tsa_check(&tsa, &e) != 0) {
                        struct gmca_error cause = e;

                        gmca_error_set(&e, cause.code, "%s: %s", o.tsa_cert, cause.msg);
                        goto fail;
                }
        }
        gmca_ctx_close(c);
        c = NULL;
        if (engine_up(cli, &k, &started, &e) != 0)
                goto fail;
        cli_custody_free(&k);
        cfg = (struct gmca_serve_config){.dir = cli->dir,
                                         .listen = o.listen,
                                         .threads = (unsigned)o.threads,
                                         .ra = o.ra,
                                         .ra_key = key,
                                         .ra_cert = cert,
                                         .tsa = o.tsa_cert != NULL ? &tsa : NULL};
        if (gmca_serve_run(&cfg, &e) != 0)
                goto fail;
        rc = EXIT_OK;
        goto out;
fail:
        rc = cli_fail(&e);
out:
        if (started)
                engine_down(cli);
        cli_custody_free(&k);
        gmca_ctx_close(c);
        EVP_PKEY_free(key);
        X509_free(cert);
        EVP_PKEY_free(tsa.key);
        X509_free(tsa.cert);
        return rc;
}
