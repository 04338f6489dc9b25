/*
 * gmca ca: list the CAs of a state directory and export their certificates,
 * the trust anchors relying parties install (CPS §7.1.4).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli.h"
#include "util.h"

static const char usage[] = "usage: gmca ca <subcommand> [options]\n"
                            "\n"
                            "  list   [--json]\n"
                            "  export [--ca NAME] [--der] [--out FILE]\n"
                            "  rollover     new CA key and certificates (CPS §6.8; custodians)\n"
                            "  compromise   revoke all, new CA key, re-issue (CPS §6.10.3)\n"
                            "  reissues     --job JOB: the old → new serials of a compromise\n";

struct ca_list_state {
        int json;
        json_t *arr;
};

static int ca_one(const struct gmca_ca_rec *r, void *arg)
{
        struct ca_list_state *st = arg;
        char created[32];

        gmca_time_iso((time_t)r->created, created, sizeof(created));
        if (st->json)
                return json_array_append_new(
                           st->arr, json_pack("{s:s, s:s, s:b, s:s, s:s}", "name", r->name,
                                              "subject", r->subject, "root", r->parent_id == 0,
                                              "created", created, "sm2_id", r->sm2_id)) == 0
                           ? 0
                           : 1;
        printf("%-12s %-5s %s\n", r->name, r->parent_id == 0 ? "root" : "sub", r->subject);
        return 0;
}

int cmd_ca(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"ca", required_argument, NULL, 'a'},  {"der", no_argument, NULL, 'D'},
            {"out", required_argument, NULL, 'o'}, {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
        };
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        const char *ca = NULL, *out = NULL, *sub;
        int der = 0, json = 0, ch, rc;
        char seen[16] = "";

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        if (strcmp(argv[1], "rollover") == 0)
                return cmd_ca_rollover(cli, argc - 1, argv + 1);
        if (strcmp(argv[1], "compromise") == 0)
                return cmd_ca_compromise(cli, argc - 1, argv + 1);
        if (strcmp(argv[1], "reissues") == 0)
                return cmd_ca_reissues(cli, argc - 1, argv + 1);
        sub = argv[1];
        argc--;
        argv++;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(seen, sizeof(seen), ch);
                switch (ch) {
                case 'a':
                        ca = optarg;
                        break;
                case 'D':
                        der = 1;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("ca: unexpected argument '%s'", argv[optind]);
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        if (strcmp(sub, "list") == 0) {
                if (cli_only_options(seen, "j", "ca list") != 0) {
                        gmca_ctx_close(c);
                        return EXIT_USAGE;
                }
                struct ca_list_state st = {json, json ? json_array() : NULL};

                rc = gmca_store_ca_list(gmca_ctx_store(c), ca_one, &st, &e);
                gmca_ctx_close(c);
                if (rc != 0) {
                        json_decref(st.arr);
                        return cli_fail(&e);
                }
                return json ? cli_print_json(st.arr) : EXIT_OK;
        }
        if (strcmp(sub, "export") == 0) {
                if (cli_only_options(seen, "aDo", "ca export") != 0) {
                        gmca_ctx_close(c);
                        return EXIT_USAGE;
                }
                struct gmca_ca_rec r;

                memset(&r, 0, sizeof(r));
                rc = gmca_store_ca_get(gmca_ctx_store(c), ca ? ca : gmca_ctx_default_ca(c), &r, &e);
                if (rc == 0 && der) {
                        rc = cli_output(out, r.cert_der, r.cert_len, &e);
                } else if (rc == 0) {
                        const uint8_t *p = r.cert_der;
                        X509 *x = d2i_X509(NULL, &p, (long)r.cert_len);
                        BIO *b = BIO_new(BIO_s_mem());
                        char *pem;

                        if (x == NULL || b == NULL || PEM_write_bio_X509(b, x) != 1)
                                rc = gmca_error_set(&e, GMCA_ERR_TAMPER,
                                                    "stored CA certificate does not parse");
                        else {
                                size_t n = (size_t)BIO_get_mem_data(b, &pem);

                                rc = cli_output(out, pem, n, &e);
                        }
                        X509_free(x);
                        BIO_free(b);
                }
                gmca_ca_rec_clear(&r);
                gmca_ctx_close(c);
                return rc == 0 ? EXIT_OK : cli_fail(&e);
        }
        gmca_ctx_close(c);
        return cli_usage_error("ca: unknown subcommand '%s'", sub);
}
