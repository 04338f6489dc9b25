/*
 * gmca ca: list the CAs of a state directory with their key states, and
 * export their certificates — the trust anchors relying parties install
 * (CPS §7.1.4) and the link certificates of a root key rollover (§6.8).
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
                            "  list   [--json]   each CA: root or sub, key state, parent\n"
                            "  export [--ca NAME] [--link old-with-new|new-with-old] [--der]\n"
                            "         [--out FILE]   a CA certificate; with --link, a link\n"
                            "         certificate of the root rollover that made NAME\n"
                            "  rollover     new CA key and certificates (CPS §6.8; custodians)\n"
                            "  compromise   revoke all, new CA key, re-issue (CPS §6.10.3)\n"
                            "  reissues     --job JOB: the old → new serials of a compromise\n";

struct ca_list_state {
        struct gmca_ctx *c;
        int json;
        json_t *arr;
        struct gmca_ca_rec recs[64]; /* names and ids only, to name each parent */
        size_t n;
};

static int ca_collect(const struct gmca_ca_rec *r, void *arg)
{
        struct ca_list_state *st = arg;
        struct gmca_ca_rec *to;

        if (st->n == sizeof(st->recs) / sizeof(st->recs[0]))
                return GMCA_ERR_LIMIT;
        to = &st->recs[st->n++];
        *to = *r;
        to->cert_der = NULL; /* borrowed from the store's row; not kept */
        to->cert_len = 0;
        return 0;
}

static const char *ca_name_of(const struct ca_list_state *st, int64_t id)
{
        for (size_t i = 0; i < st->n; i++)
                if (st->recs[i].id == id)
                        return st->recs[i].name;
        return "?";
}

static int ca_one(struct ca_list_state *st, const struct gmca_ca_rec *r)
{
        char created[32], since[32], old[GMCA_NAME_MAX];
        const char *parent = r->parent_id != 0 ? ca_name_of(st, r->parent_id) : NULL;
        struct gmca_rollover_result rr;
        struct gmca_error ignored = {0};
        json_t *o;

        gmca_time_iso((time_t)r->created, created, sizeof(created));
        gmca_time_iso((time_t)r->state_time, since, sizeof(since));
        if (!st->json) {
                printf("%-16s %-5s %-11s %-16s %s\n", r->name, parent ? "sub" : "root",
                       r->key_state, parent ? parent : "-", r->subject);
                return 0;
        }
        o = json_pack("{s:s, s:s, s:b, s:s?, s:s, s:s, s:s, s:s, s:b}", "name", r->name, "subject",
                      r->subject, "root", parent == NULL, "parent", parent, "key_state",
                      r->key_state, "since", since, "created", created, "sm2_id", r->sm2_id,
                      "default", strcmp(r->name, gmca_ctx_default_ca(st->c)) == 0);
        if (o != NULL && gmca_ca_rollover_info(st->c, r->name, old, &rr, &ignored) == 0)
                json_object_set_new(o, "replaces", json_string(old));
        return json_array_append_new(st->arr, o) == 0 ? 0 : GMCA_ERR_NOMEM;
}

static int ca_list(struct gmca_ctx *c, int json, struct gmca_error *e)
{
        struct ca_list_state *st = calloc(1, sizeof(*st));
        int rc;

        if (st == NULL || (json && (st->arr = json_array()) == NULL)) {
                free(st);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        st->c = c;
        st->json = json;
        rc = gmca_store_ca_list(gmca_ctx_store(c), ca_collect, st, e);
        if (rc == GMCA_ERR_LIMIT)
                rc = gmca_error_set(e, rc, "too many CAs to list");
        if (rc == 0 && !json)
                printf("%-16s %-5s %-11s %-16s %s\n", "NAME", "ROLE", "KEY", "PARENT", "SUBJECT");
        for (size_t i = 0; rc == 0 && i < st->n; i++)
                if ((rc = ca_one(st, &st->recs[i])) != 0)
                        rc = gmca_error_set(e, rc, "out of memory");
        if (rc == 0 && json) {
                rc = cli_print_json(st->arr) == EXIT_OK ? 0 : GMCA_ERR_IO;
                st->arr = NULL;
                if (rc != 0)
                        gmca_error_set(e, rc, "stdout: write failed");
        }
        json_decref(st->arr);
        free(st);
        return rc;
}

/* The DER of the CA certificate to export: the CA's own, or a link of its rollover. */
static int ca_cert_der(struct gmca_ctx *c, const char *ca, const char *link, uint8_t **der,
                       size_t *len, struct gmca_error *e)
{
        struct gmca_rollover_result rr;
        struct gmca_cert_rec cr;
        struct gmca_ca_rec r;
        char old[GMCA_NAME_MAX];
        const char *serial;
        int rc;

        if (link == NULL) {
                memset(&r, 0, sizeof(r));
                if ((rc = gmca_store_ca_get(gmca_ctx_store(c), ca, &r, e)) == 0) {
                        *der = r.cert_der;
                        *len = r.cert_len;
                        r.cert_der = NULL;
                }
                gmca_ca_rec_clear(&r);
                return rc;
        }
        if ((rc = gmca_ca_rollover_info(c, ca, old, &rr, e)) != 0)
                return rc;
        serial = strcmp(link, "old-with-new") == 0 ? rr.old_with_new : rr.new_with_old;
        if (serial[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                      "CA %s replaced the operational CA %s: only a root "
                                      "rollover makes link certificates",
                                      ca, old);
        memset(&cr, 0, sizeof(cr));
        if ((rc = gmca_store_cert_get(gmca_ctx_store(c), serial, &cr, e)) == 0) {
                *der = cr.der;
                *len = cr.der_len;
                cr.der = NULL;
        }
        gmca_cert_rec_clear(&cr);
        return rc;
}

static int ca_export(struct gmca_ctx *c, const char *ca, const char *link, int der, const char *out,
                     struct gmca_error *e)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        X509 *x = NULL;
        BIO *b = NULL;
        char *pem;
        int rc;

        if ((rc = ca_cert_der(c, ca, link, &buf, &len, e)) != 0)
                return rc;
        if (der) {
                rc = cli_output(out, buf, len, e);
        } else {
                const uint8_t *p = buf;

                x = d2i_X509(NULL, &p, (long)len);
                if (x == NULL || p != buf + len || (b = BIO_new(BIO_s_mem())) == NULL ||
                    PEM_write_bio_X509(b, x) != 1)
                        rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                            "stored CA certificate does not parse");
                else
                        rc = cli_output(out, pem, (size_t)BIO_get_mem_data(b, &pem), e);
        }
        X509_free(x);
        BIO_free(b);
        OPENSSL_free(buf);
        return rc;
}

int cmd_ca(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"ca", required_argument, NULL, 'a'},
            {"der", no_argument, NULL, 'D'},
            {"out", required_argument, NULL, 'o'},
            {"json", no_argument, NULL, 'j'},
            {"link", required_argument, NULL, 'l'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        const char *ca = NULL, *out = NULL, *link = NULL, *sub;
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
                case 'l':
                        if (strcmp(optarg, "old-with-new") != 0 &&
                            strcmp(optarg, "new-with-old") != 0)
                                return cli_usage_error(
                                    "ca export: --link is old-with-new or new-with-old");
                        link = optarg;
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
                rc = ca_list(c, json, &e);
                gmca_ctx_close(c);
                return rc == 0 ? EXIT_OK : cli_fail(&e);
        }
        if (strcmp(sub, "export") == 0) {
                if (cli_only_options(seen, "aDol", "ca export") != 0) {
                        gmca_ctx_close(c);
                        return EXIT_USAGE;
                }
                rc = ca_export(c, ca ? ca : gmca_ctx_default_ca(c), link, der, out, &e);
                gmca_ctx_close(c);
                return rc == 0 ? EXIT_OK : cli_fail(&e);
        }
        gmca_ctx_close(c);
        return cli_usage_error("ca: unknown subcommand '%s'", sub);
}
