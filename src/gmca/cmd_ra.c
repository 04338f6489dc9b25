/*
 * gmca ra cert: the RA communication certificate (CPS §7.1.1 item 2) —
 * issue it to an RA system, list who holds one, and check a certificate
 * the way the CA engine will before it accepts an RA's request.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli.h"
#include "util.h"
#include "x509.h"

#define RA_PROFILE "ra-comm"
#define RA_LIST_MAX 100000

static const char usage[] =
    "usage: gmca [--dir DIR] ra cert <subcommand> [options]\n"
    "\n"
    "  issue --ra NAME --csr FILE [--days N] [--out FILE] [--share FILE --pin-file FILE ...]\n"
    "        Issue the RA system NAME its communication certificate (profile\n"
    "        ra-comm) from the default CA; it replaces NAME's earlier one. Prints\n"
    "        the certificate (PEM) or, with --out, writes it and prints the serial.\n"
    "        Needs the CA activated (gmca activate); unless it was activated with\n"
    "        --direct-issue, the custodians authorise it with --share and --pin-file.\n"
    "  list  [--json]\n"
    "        Every RA communication certificate, its RA and whether it is current.\n"
    "  check --cert FILE\n"
    "        Exit 0 if FILE is an RA's current communication certificate, issued\n"
    "        here, valid now and not revoked; exit 5 with the reason otherwise.\n";

struct ra_opts {
        const char *ra, *csr, *out, *cert;
        int days, json;
        char seen[16];
        struct cli_custody k; /* issue: custodians who authorise it */
};

static int parse_opts(int argc, char **argv, struct ra_opts *o)
{
        static const struct option opts[] = {
            {"ra", required_argument, NULL, 'r'},    {"csr", required_argument, NULL, 'c'},
            {"days", required_argument, NULL, 'd'},  {"out", required_argument, NULL, 'o'},
            {"cert", required_argument, NULL, 'C'},  {"json", no_argument, NULL, 'j'},
            {"share", required_argument, NULL, 'K'}, {"pin-file", required_argument, NULL, 'P'},
            {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'r':
                        o->ra = optarg;
                        break;
                case 'c':
                        o->csr = optarg;
                        break;
                case 'd':
                        if ((o->days = cli_parse_int(optarg, 1, 36500)) < 0)
                                return cli_usage_error("--days: 1..36500");
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'C':
                        o->cert = optarg;
                        break;
                case 'j':
                        o->json = 1;
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
                return cli_usage_error("ra cert: unexpected argument '%s'", argv[optind]);
        return 0;
}

static int ra_issue(struct cli *cli, struct ra_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        uint8_t *csr = NULL;
        size_t csr_len = 0, pemlen;
        char serial[GMCA_SERIAL_HEX_MAX], *pem;
        X509 *cert = NULL;
        BIO *b = NULL;
        int rc = EXIT_FAIL;

        if (o->ra == NULL || o->csr == NULL)
                return cli_usage_error("ra cert issue: --ra NAME and --csr FILE are required");
        if ((c = cli_open(cli, NULL, 1, &e)) == NULL)
                return cli_fail(&e);
        /* The custodians present authorise this issuance (refusals audited). */
        if (o->k.nshares > 0 || o->k.npins > 0) {
                int ok = cli_custody_collect(&o->k, 0, NULL, &e) == 0 &&
                         gmca_ctx_authorise(c, o->k.cust, o->k.n, &e) == 0;

                cli_custody_free(&o->k);
                if (!ok) {
                        rc = cli_fail(&e);
                        goto out;
                }
        }
        if (gmca_read_file(o->csr, GMCA_CSR_MAX, &csr, &csr_len, &e) != 0) {
                struct gmca_error ae = {0};

                if (gmca_ctx_audit_failure(c, "ra.cert", o->ra, e.msg, &ae) != 0)
                        fprintf(stderr, "gmca: %s\n", ae.msg);
                rc = cli_fail(&e);
                goto out;
        }
        if (gmca_ra_cert_issue(c, o->ra, csr, csr_len, o->days, serial, &cert, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, cert) != 1) {
                fprintf(stderr, "gmca: issued %s but cannot encode it; use gmca cert export\n",
                        serial);
                goto out;
        }
        pemlen = (size_t)BIO_get_mem_data(b, &pem);
        if (cli_output(o->out, pem, pemlen, &e) != 0) {
                fprintf(stderr, "gmca: issued %s but %s; use gmca cert export\n", serial, e.msg);
                goto out;
        }
        if (o->out != NULL)
                printf("%s\n", serial);
        else
                fprintf(stderr, "gmca: issued RA %s serial %s\n", o->ra, serial);
        rc = EXIT_OK;
out:
        BIO_free(b);
        X509_free(cert);
        free(csr);
        gmca_ctx_close(c);
        return rc;
}

/* One RA certificate, as listed. */
struct ra_row {
        char serial[GMCA_SERIAL_HEX_MAX];
        char subject[GMCA_DN_MAX];
        int64_t not_after;
        int revoked;
};

struct ra_rows {
        struct ra_row *v;
        size_t n, cap;
};

static int collect(const struct gmca_cert_rec *r, void *arg)
{
        struct ra_rows *rows = arg;
        void *v = rows->v;
        int rc = gmca_grow(&v, &rows->cap, rows->n, sizeof(*rows->v), 16, RA_LIST_MAX);

        rows->v = v;
        if (rc != 0)
                return rc;
        gmca_strlcpy(rows->v[rows->n].serial, r->serial, sizeof(rows->v[rows->n].serial));
        gmca_strlcpy(rows->v[rows->n].subject, r->subject, sizeof(rows->v[rows->n].subject));
        rows->v[rows->n].not_after = r->not_after;
        rows->v[rows->n].revoked = r->status == GMCA_CERT_REVOKED;
        rows->n++;
        return 0;
}

/* The metadata value of prefix+name, or "" when absent. */
static int ra_list(struct cli *cli, const struct ra_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        struct gmca_cert_filter f;
        struct ra_rows rows = {0};
        json_t *arr = NULL;
        int64_t now = (int64_t)gmca_now();
        int rc;

        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        memset(&f, 0, sizeof(f));
        f.profile = RA_PROFILE;
        f.status = GMCA_STATUS_ANY;
        /* Collected first: the metadata is read once the listing is done. */
        rc = gmca_store_cert_list(gmca_ctx_store(c), &f, collect, &rows, &e);
        if (rc == GMCA_ERR_LIMIT)
                gmca_error_set(&e, rc, "ra cert list: more than %d certificates", RA_LIST_MAX);
        if (rc != 0)
                goto out;
        if (o->json && (arr = json_array()) == NULL) {
                rc = gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < rows.n; i++) {
                const struct ra_row *r = &rows.v[i];
                char ra[GMCA_NAME_MAX], na[32];
                const char *status;
                int is_current;

                if ((rc = gmca_ra_cert_owner(c, r->serial, ra, &is_current, &e)) != 0)
                        goto out;
                status = r->revoked ? "revoked" : r->not_after < now ? "expired" : "valid";
                gmca_time_iso((time_t)r->not_after, na, sizeof(na));
                if (o->json)
                        json_array_append_new(arr,
                                              json_pack("{s:s?, s:s, s:s, s:s, s:s, s:b}", "ra",
                                                        ra[0] ? ra : NULL, "serial", r->serial,
                                                        "subject", r->subject, "not_after", na,
                                                        "status", status, "current", is_current));
                else
                        printf("%-16s %-40s %-8s %s %s%s\n", ra[0] ? ra : "-", r->serial, status,
                               na, r->subject, is_current ? " (current)" : "");
        }
out:
        free(rows.v);
        gmca_ctx_close(c);
        if (rc != 0) {
                json_decref(arr);
                return cli_fail(&e);
        }
        return o->json ? cli_print_json(arr) : EXIT_OK;
}

static int ra_check(struct cli *cli, const struct ra_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        char serial[GMCA_SERIAL_HEX_MAX], ra[GMCA_NAME_MAX];
        X509 *cert = NULL;
        int rc;

        if (o->cert == NULL)
                return cli_usage_error("ra cert check: --cert FILE is required");
        if (gmca_read_file(o->cert, GMCA_CERT_MAX, &buf, &len, &e) != 0 ||
            (cert = gmca_cert_parse(buf, len, &e)) == NULL) {
                free(buf);
                return cli_fail(&e);
        }
        free(buf);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL) {
                X509_free(cert);
                return cli_fail(&e);
        }
        rc = gmca_ra_cert_check(c, cert, &e);
        if (rc == 0 && gmca_serial_hex(cert, serial, sizeof(serial)) == 0) {
                int current;

                if (gmca_ra_cert_owner(c, serial, ra, &current, &e) != 0)
                        ra[0] = '\0';
                printf("RA %s: certificate %s accepted\n", ra, serial);
        }
        X509_free(cert);
        gmca_ctx_close(c);
        return rc == 0 ? EXIT_OK : cli_fail(&e);
}

int cmd_ra(struct cli *cli, int argc, char **argv)
{
        struct ra_opts o;
        const char *sub;
        int rc;

        /* argv: "ra" "cert" SUB options... */
        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        if (strcmp(argv[1], "cert") != 0)
                return cli_usage_error("ra: unknown subcommand '%s' (gmca ra cert ...)", argv[1]);
        if (cli_group_help(argc - 1, argv + 1, usage, &rc))
                return rc;
        sub = argv[2];
        if ((rc = parse_opts(argc - 2, argv + 2, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (strcmp(sub, "issue") == 0)
                return cli_only_options(o.seen, "rcdoKP", "ra cert issue") ? EXIT_USAGE
                                                                           : ra_issue(cli, &o);
        if (strcmp(sub, "list") == 0)
                return cli_only_options(o.seen, "j", "ra cert list") ? EXIT_USAGE
                                                                     : ra_list(cli, &o);
        if (strcmp(sub, "check") == 0)
                return cli_only_options(o.seen, "C", "ra cert check") ? EXIT_USAGE
                                                                      : ra_check(cli, &o);
        return cli_usage_error("ra cert: unknown subcommand '%s'", sub);
}
