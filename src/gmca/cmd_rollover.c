/*
 * gmca ca rollover: the CA key changeover of CPS §6.8, a key ceremony with
 * the custodians present and the CA engine stopped. Prints what it made as
 * JSON; the custodians activate again afterwards.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "store.h"

static const char usage[] =
    "usage: gmca [--dir DIR] ca rollover [--ca NAME] [--name NEW] [--dn DN] [--days N]\n"
    "                                    [--parent NAME] --share FILE --pin-file FILE ...\n"
    "\n"
    "CA key changeover (CPS §6.8): a new key pair in the crypto device and a new\n"
    "CA (NEW, default NAME-g2, -g3, ...). A root gets three certificates: the new\n"
    "self-signed root (NewWithNew), the old root's key signed by the new key\n"
    "(OldWithNew) and the new key signed by the old one (NewWithOld), so relying\n"
    "parties holding either root validate both generations. An operational CA gets\n"
    "its new certificate from its parent, or from the CA that replaced the parent.\n"
    "The old key then only signs CRLs for what it issued; if it was the default\n"
    "CA, NEW issues from now on. Needs the CA engine stopped (gmca deactivate) and\n"
    "3 custodians; run gmca activate again afterwards.\n"
    "\n"
    "  --ca NAME         the CA whose key is replaced (default: the default CA)\n"
    "  --name NEW        name of the new CA\n"
    "  --dn DN           its subject DN (default: the old CA's)\n"
    "  --days N          validity of its certificate (default: the profile's)\n"
    "  --parent NAME     operational CA only: who certifies the new key\n"
    "  --share FILE      a custodian's share file (once per custodian present)\n"
    "  --pin-file FILE   that custodian's PIN, same order (else asked on the terminal)\n";

/* The new CA's parent, "" for a root. */
static void parent_name(struct gmca_ctx *c, const char *name, char out[GMCA_NAME_MAX])
{
        struct gmca_ca_rec rec, parent;
        struct gmca_error ignored = {0};

        out[0] = '\0';
        memset(&rec, 0, sizeof(rec));
        memset(&parent, 0, sizeof(parent));
        if (gmca_store_ca_get(gmca_ctx_store(c), name, &rec, &ignored) == 0 && rec.parent_id != 0 &&
            gmca_store_ca_get_by_id(gmca_ctx_store(c), rec.parent_id, &parent, &ignored) == 0)
                snprintf(out, GMCA_NAME_MAX, "%s", parent.name);
        gmca_ca_rec_clear(&rec);
        gmca_ca_rec_clear(&parent);
}

static json_t *result_json(struct gmca_ctx *c, const char *old,
                           const struct gmca_rollover_result *r)
{
        json_t *o, *files = json_array();
        char parent[GMCA_NAME_MAX];

        o = json_pack("{s:s, s:s, s:s}", "old", old, "new", r->name, "new_with_new",
                      r->new_with_new);
        if (o == NULL || files == NULL) {
                json_decref(o);
                json_decref(files);
                return NULL;
        }
        json_array_append_new(files, json_sprintf("%s/certs/%s.pem", gmca_ctx_dir(c), r->name));
        if (r->old_with_new[0] != '\0') {
                json_object_set_new(o, "old_with_new", json_string(r->old_with_new));
                json_object_set_new(o, "new_with_old", json_string(r->new_with_old));
                json_array_append_new(
                    files, json_sprintf("%s/certs/%s.old-with-new.pem", gmca_ctx_dir(c), r->name));
                json_array_append_new(
                    files, json_sprintf("%s/certs/%s.new-with-old.pem", gmca_ctx_dir(c), r->name));
        }
        parent_name(c, r->name, parent);
        if (parent[0] != '\0')
                json_object_set_new(o, "parent", json_string(parent));
        json_object_set_new(o, "default_ca", json_string(gmca_ctx_default_ca(c)));
        json_object_set_new(o, "published", files);
        return o;
}

int cmd_ca_rollover(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"ca", required_argument, NULL, 'a'},
            {"name", required_argument, NULL, 'n'},
            {"dn", required_argument, NULL, 'd'},
            {"days", required_argument, NULL, 'D'},
            {"parent", required_argument, NULL, 'P'},
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_rollover_params p = {0};
        struct gmca_rollover_result res;
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        char old[GMCA_NAME_MAX];
        int ch, rc;

        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'a':
                        p.ca = optarg;
                        break;
                case 'n':
                        p.new_name = optarg;
                        break;
                case 'd':
                        p.dn = optarg;
                        break;
                case 'D':
                        if ((p.days = cli_parse_int(optarg, 1, 36500)) < 0)
                                return cli_usage_error("rollover: --days must be 1..36500");
                        break;
                case 'P':
                        p.parent = optarg;
                        break;
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("rollover: unexpected argument '%s'", argv[optind]);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        snprintf(old, sizeof(old), "%s", p.ca != NULL ? p.ca : gmca_ctx_default_ca(c));
        /*
         * A running engine is refused before anyone types a PIN: the library
         * checks it first and audits the refusal without touching a share.
         */
        if (gmca_ctx_use_engine(c, &e) == 0) {
                rc = gmca_ca_rollover(c, NULL, 0, &p, &res, &e);
                goto done;
        }
        gmca_error_clear(&e);
        if ((rc = cli_custody_collect(&k, 0, NULL, &e)) != 0)
                goto done;
        if ((rc = gmca_ca_rollover(c, k.cust, k.n, &p, &res, &e)) != 0)
                goto done;
        cli_custody_free(&k);
        rc = cli_print_json(result_json(c, old, &res));
        gmca_ctx_close(c);
        return rc;
done:
        cli_custody_free(&k);
        gmca_ctx_close(c);
        return rc == 0 ? EXIT_FAIL : cli_fail(&e);
}
