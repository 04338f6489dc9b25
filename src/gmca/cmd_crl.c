/*
 * gmca crl: generate the next CRL of a CA (on demand: the emergency CRL of
 * CPS §3.9.10) and list every CRL issued.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const char usage[] =
    "usage: gmca crl <subcommand> [options]\n"
    "\n"
    "  generate [--ca NAME] [--hours N] [--out FILE] [--now] [--delta]\n"
    "           sign and publish the next CRL now, the emergency CRL of CPS §3.9.10\n"
    "           (nextUpdate in N hours, default from the configuration, 24; --now is\n"
    "           accepted and changes nothing). Needs the CA activated (gmca activate).\n"
    "           The CRL is kept in the store and written to DIR/crl/<ca>.crl and\n"
    "           DIR/crl/<ca>/<number>.crl. gmca serve also generates CRLs on a schedule.\n"
    "           With delta_crl_minutes set in ca.json, every complete CRL points to the\n"
    "           delta CRL (freshestCRL) and is followed by a delta against it; --delta\n"
    "           makes only a delta CRL (RFC 5280 §5.2.4: what was revoked since the\n"
    "           latest complete CRL), written to DIR/crl/<ca>/delta.crl.\n"
    "  list     [--ca NAME] [--json]   every CRL issued, by cRLNumber (each is served\n"
    "           at /crl/<ca>/<number>.crl; the latest delta at /crl/<ca>/delta.crl)\n";

struct crl_list_state {
        int json;
        json_t *arr;
};

static int crl_one(const struct gmca_crl_rec *r, void *arg)
{
        struct crl_list_state *st = arg;
        char tu[32], nu[32];

        gmca_time_iso((time_t)r->this_update, tu, sizeof(tu));
        gmca_time_iso((time_t)r->next_update, nu, sizeof(nu));
        if (st->json) {
                json_t *o = json_pack("{s:I, s:s, s:s, s:I}", "number", (json_int_t)r->number,
                                      "this_update", tu, "next_update", nu, "entries",
                                      (json_int_t)r->entries);

                if (o != NULL && r->base_number > 0)
                        json_object_set_new(o, "delta_of", json_integer(r->base_number));
                return json_array_append_new(st->arr, o) == 0 ? 0 : 1;
        }
        if (r->base_number > 0)
                printf("%-8lld %s  %s  %lld entries (delta of %lld)\n", (long long)r->number, tu,
                       nu, (long long)r->entries, (long long)r->base_number);
        else
                printf("%-8lld %s  %s  %lld entries\n", (long long)r->number, tu, nu,
                       (long long)r->entries);
        return 0;
}

int cmd_crl(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"ca", required_argument, NULL, 'a'},  {"hours", required_argument, NULL, 'H'},
            {"out", required_argument, NULL, 'o'}, {"now", no_argument, NULL, 'n'},
            {"delta", no_argument, NULL, 'd'},     {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
        };
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        const char *ca = NULL, *out = NULL, *sub;
        int hours = 0, json = 0, delta = 0, ch, rc;
        char seen[16] = "";

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        sub = argv[1];
        argc--;
        argv++;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(seen, sizeof(seen), ch);
                switch (ch) {
                case 'a':
                        ca = optarg;
                        break;
                case 'H':
                        if ((hours = cli_parse_int(optarg, 1, 744)) < 0)
                                return cli_usage_error("--hours: 1..744");
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'n':
                        break; /* generation is always immediate; kept for scripts */
                case 'd':
                        delta = 1;
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
                return cli_usage_error("crl: unexpected argument '%s'", argv[optind]);
        if (strcmp(sub, "generate") == 0) {
                if (cli_only_options(seen, "aHondpP", "crl generate") != 0) {
                        return EXIT_USAGE;
                }
                struct gmca_crl_rec r;

                memset(&r, 0, sizeof(r));
                if ((c = cli_open(cli, ca, 1, &e)) == NULL)
                        return cli_fail(&e);
                if (delta && hours != 0)
                        rc = gmca_error_set(&e, GMCA_ERR_INVALID,
                                            "crl: --hours does not apply to a delta CRL "
                                            "(delta_crl_minutes sets its validity)");
                else if (delta)
                        rc = gmca_ca_crl_generate_delta(c, ca, &r, &e);
                else
                        rc = gmca_ca_crl_generate(c, ca, hours, &r, &e);
                if (rc == 0 && out != NULL && cli_output(out, r.der, r.der_len, &e) != 0)
                        rc = e.code;
                if (rc == 0 && delta)
                        printf("delta CRL %lld of %s (base %lld): %lld entries, "
                               "%s/crl/%s/delta.crl\n",
                               (long long)r.number, ca ? ca : gmca_ctx_default_ca(c),
                               (long long)r.base_number, (long long)r.entries, cli->dir,
                               ca ? ca : gmca_ctx_default_ca(c));
                else if (rc == 0)
                        printf("CRL %lld of %s: %lld entries, %s/crl/%s.crl\n", (long long)r.number,
                               ca ? ca : gmca_ctx_default_ca(c), (long long)r.entries, cli->dir,
                               ca ? ca : gmca_ctx_default_ca(c));
                gmca_crl_rec_clear(&r);
                gmca_ctx_close(c);
                return rc == 0 ? EXIT_OK : cli_fail(&e);
        }
        if (strcmp(sub, "list") == 0) {
                if (cli_only_options(seen, "aj", "crl list") != 0) {
                        return EXIT_USAGE;
                }
                struct gmca_ca_rec rec;
                struct crl_list_state st = {json, json ? json_array() : NULL};

                memset(&rec, 0, sizeof(rec));
                if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                        return cli_fail(&e);
                rc = gmca_store_ca_get(gmca_ctx_store(c), ca ? ca : gmca_ctx_default_ca(c), &rec,
                                       &e);
                if (rc == 0)
                        rc = gmca_store_crl_list(gmca_ctx_store(c), rec.id, crl_one, &st, &e);
                gmca_ca_rec_clear(&rec);
                gmca_ctx_close(c);
                if (rc != 0) {
                        json_decref(st.arr);
                        return cli_fail(&e);
                }
                return json ? cli_print_json(st.arr) : EXIT_OK;
        }
        return cli_usage_error("crl: unknown subcommand '%s'", sub);
}
