/*
 * gmca export / import: CA termination (CPS §6.8, §6.11; export.h,
 * docs/export.md). The terminating CA's custodians sign the export of its
 * history; the successor imports it after checking the signature, the
 * signer's chain to a root it trusts and the audit chain, and can then
 * look up the old CA's certificates. Both are audited in the chain of the
 * state directory they run on.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "audit.h"
#include "cli.h"
#include "export.h"
#include "util.h"

static const char export_usage[] =
    "usage: gmca [--dir DIR] export --out FILE [--ca NAME] --share FILE [--pin-file FILE] ...\n"
    "\n"
    "CA termination (CPS §6.8, §6.11): everything a successor needs — certificates and\n"
    "their revocation state, every CRL, the audit chain, the CA certificates, subscriber\n"
    "records (sealed fields stay sealed) — in one file signed by the CA's key, which\n"
    "the custodians unlock here. The CA engine must be stopped (gmca deactivate).\n"
    "\n"
    "  --out FILE       the export (must not exist)\n"
    "  --ca NAME        the CA whose key signs (default: the operational CA)\n"
    "  --share FILE     a custodian's share file (one per custodian present)\n"
    "  --pin-file FILE  that custodian's PIN, same order (else asked on the terminal)\n";

static const char import_usage[] =
    "usage: gmca [--dir DIR] import --in FILE --anchor ROOT.pem\n"
    "       gmca [--dir DIR] import --status SERIAL\n"
    "\n"
    "On a successor CA: check a terminated CA's export (signature, the signer's chain\n"
    "to ROOT.pem, the audit chain) and keep it as read-only history under\n"
    "DIR/history/; --status looks a certificate of such a history up.\n";

static void harden(void)
{
        struct rlimit none = {0, 0};

        (void)setrlimit(RLIMIT_CORE, &none);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static json_t *info_json(const struct gmca_export_info *i)
{
        return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id", i->id, "signer", i->signer,
                         "created", (json_int_t)i->created, "certificates",
                         (json_int_t)i->certificates, "crls", (json_int_t)i->crls, "audit_records",
                         (json_int_t)i->audit_records, "tables", (json_int_t)i->tables);
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"out", required_argument, NULL, 'o'},   {"ca", required_argument, NULL, 'a'},
            {"share", required_argument, NULL, 's'}, {"pin-file", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
        };
        struct gmca_export_info info;
        struct gmca_error e = {0};
        struct cli_custody k;
        struct gmca_ctx *c = NULL;
        const char *out = NULL, *ca = NULL;
        int ch;

        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'a':
                        ca = optarg;
                        break;
                case 'h':
                        fputs(export_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("export: unexpected argument '%s'", argv[optind]);
        if (out == NULL || k.nshares == 0)
                return cli_usage_error("export: --out FILE and the custodians' --share FILE are "
                                       "required");
        harden();
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL ||
            cli_custody_collect(&k, 0, NULL, &e) != 0 ||
            gmca_ca_export(c, k.cust, k.n, ca, out, &info, &e) != 0) {
                cli_custody_free(&k);
                gmca_ctx_close(c);
                return cli_fail(&e);
        }
        cli_custody_free(&k);
        gmca_ctx_close(c);
        return cli_print_json(info_json(&info));
}

static int import_status(const struct cli *cli, const char *serial)
{
        struct gmca_history_cert h;
        struct gmca_error e = {0};

        if (gmca_history_lookup(cli->dir, serial, &h, &e) != 0)
                return cli_fail(&e);
        return cli_print_json(json_pack(
            "{s:s, s:s, s:s, s:s, s:I, s:I, s:i}", "serial", serial, "history", h.history,
            "subject", h.subject, "status", h.status ? "revoked" : "valid", "not_after",
            (json_int_t)h.not_after, "revoked_at", (json_int_t)h.revoked_at, "reason", h.reason));
}

/* The import's audit record in this state directory's chain. */
static void audit_import(const struct cli *cli, const char *in, const struct gmca_export_info *i,
                         const struct gmca_error *cause)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        json_t *d = cause == NULL ? info_json(i) : json_pack("{s:s}", "error", cause->msg);
        char *txt = d ? json_dumps(d, JSON_COMPACT) : NULL;
        struct gmca_audit_event ev = {GMCA_EV_CA_IMPORT, cli->actor, cause == NULL,
                                      cause == NULL ? i->id : in, txt};

        json_decref(d);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL ||
            gmca_audit_record(gmca_ctx_store(c), &ev, &e) != 0)
                fprintf(stderr, "gmca: warning: the import was not audited: %s\n", e.msg);
        gmca_ctx_close(c);
        free(txt);
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"in", required_argument, NULL, 'i'},
            {"anchor", required_argument, NULL, 'a'},
            {"status", required_argument, NULL, 's'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_export_info info;
        struct gmca_error e = {0};
        const char *in = NULL, *anchor = NULL, *serial = NULL;
        X509 *root;
        int ch, rc;

        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'i':
                        in = optarg;
                        break;
                case 'a':
                        anchor = optarg;
                        break;
                case 's':
                        serial = optarg;
                        break;
                case 'h':
                        fputs(import_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("import: unexpected argument '%s'", argv[optind]);
        if (serial != NULL && in == NULL && anchor == NULL)
                return import_status(cli, serial);
        if (in == NULL || anchor == NULL || serial != NULL)
                return cli_usage_error("import: --in FILE --anchor ROOT.pem, or --status SERIAL");
        if ((root = cli_load_cert(anchor, &e)) == NULL)
                return cli_fail(&e);
        memset(&info, 0, sizeof(info));
        rc = gmca_ca_import(cli->dir, in, root, &info, &e);
        X509_free(root);
        audit_import(cli, in, &info, rc == 0 ? NULL : &e);
        if (rc != 0)
                return cli_fail(&e);
        {
                json_t *j = info_json(&info);
                json_object_set_new(j, "history", json_string(info.where));
                return cli_print_json(j);
        }
}
