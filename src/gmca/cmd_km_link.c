/*
 * gmca km link: the CA's side of setting up its key management centre
 * (km.h, CPS §7.1.1 item 3). With the CA's custodians present it checks
 * the KM's certificate (issued here under profile km), makes the CA's
 * KM-communication key and certificate (profile km-comm) and writes
 * <dir>/km/; the KM is then told to trust the printed comm certificate
 * with `gmca km trust`. The work and its audit record are the library's
 * (gmca_ca_km_link_create); this file reads the command line.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "km.h"
#include "util.h"

#define KM_CERT_MAX 65536

static const char usage[] =
    "usage: gmca [--dir DIR] km link --km-cert FILE --socket PATH\n"
    "                                --share FILE --pin-file FILE [...]\n"
    "\n"
    "  Link this CA to its key management centre. FILE is the KM's "
    "certificate\n"
    "  (PEM or DER), issued by this CA under profile km; PATH the KM's socket\n"
    "  (absolute). The custodians' shares and PINs (the threshold of them)\n"
    "  authorise it. Generates the CA's KM-communication key, issues its\n"
    "  certificate (profile km-comm) and writes DIR/km/. Prints the path of "
    "the\n"
    "  communication certificate, which the KM must trust (gmca km trust).\n";

struct link_opts {
        const char *km_cert, *sock;
        struct cli_custody k;
};

static int parse_opts(int argc, char **argv, struct link_opts *o)
{
        static const struct option opts[] = {
            {"km-cert", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
            {"share", required_argument, NULL, 'K'},   {"pin-file", required_argument, NULL, 'P'},
            {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'c':
                        o->km_cert = optarg;
                        break;
                case 's':
                        o->sock = optarg;
                        break;
                case 'K':
                case 'P':
                        if (cli_custody_option(&o->k, ch == 'K' ? 's' : 'p', optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("km link: unexpected argument '%s'", argv[optind]);
        if (o->km_cert == NULL || o->sock == NULL || o->k.nshares == 0)
                return cli_usage_error("km link: --km-cert, --socket and the custodians' --share "
                                       "and --pin-file are required");
        return 0;
}

int cmd_km_link(struct cli *cli, int argc, char **argv)
{
        struct link_opts o;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        uint8_t *cert = NULL;
        size_t len = 0;
        char comm[PATH_MAX];
        int rc;

        optind = 1;
        if ((rc = parse_opts(argc, argv, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL) {
                cli_custody_free(&o.k);
                return cli_fail(&e);
        }
        if (gmca_read_file(o.km_cert, KM_CERT_MAX, &cert, &len, &e) != 0) {
                struct gmca_error ae = {0};

                if (gmca_ctx_audit_failure(c, "km.link", o.km_cert, e.msg, &ae) != 0)
                        fprintf(stderr, "gmca: %s\n", ae.msg);
                rc = cli_fail(&e);
                goto out;
        }
        if (cli_custody_collect(&o.k, 0, NULL, &e) != 0 ||
            gmca_ca_km_link_create(c, o.k.cust, o.k.n, cert, len, o.sock, comm, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        printf("%s\n", comm);
        fprintf(stderr, "gmca: linked to the KM at %s; on the KM: gmca km trust ... with %s\n",
                o.sock, comm);
        rc = EXIT_OK;
out:
        cli_custody_free(&o.k);
        free(cert);
        gmca_ctx_close(c);
        return rc;
}
