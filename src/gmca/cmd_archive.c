/*
 * gmca key archive / destroy: the end of a CA key's life (CPS §7.2.1.4,
 * §7.2.1.9), each a key ceremony with custodians present and the CA engine
 * stopped.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char archive_usage[] =
    "usage: gmca [--dir DIR] key archive --ca NAME --share FILE [--pin-file FILE] ...\n"
    "\n"
    "Moves a CA key that will sign nothing more (its certificate has expired, or it\n"
    "is superseded or compromised and every certificate it issued has expired) out\n"
    "of the crypto device into keys/archive/<ca>-<index>.key, sealed, and erases it\n"
    "from the device (CPS §7.2.1.4). The key is kept 10 years after its certificate\n"
    "ends and never signs again. Needs 3 custodians and the CA engine stopped\n"
    "(gmca deactivate). Run it again to finish an archive that was cut short.\n"
    "\n"
    "  --ca NAME         the CA whose key is archived\n"
    "  --share FILE      a custodian's share file (once per custodian present)\n"
    "  --pin-file FILE   that custodian's PIN, same order (else asked on the terminal)\n";

static const char destroy_usage[] =
    "usage: gmca [--dir DIR] key destroy --ca NAME --share FILE [--pin-file FILE] ...\n"
    "\n"
    "Destroys an archived CA key once its retention is over (CPS §7.2.1.9): the\n"
    "archive file is authenticated, overwritten and removed, and the key is\n"
    "recorded as destroyed. The CA and its certificate stay on record. Needs 3\n"
    "custodians and the CA engine stopped.\n"
    "\n"
    "  --ca NAME         the CA whose archived key is destroyed\n"
    "  --share FILE      a custodian's share file (once per custodian present)\n"
    "  --pin-file FILE   that custodian's PIN, same order (else asked on the terminal)\n";

static int run(struct cli *cli, int argc, char **argv, const char *usage,
               int (*fn)(struct gmca_ctx *, const char *, const struct gmca_custodian *, size_t,
                         struct gmca_error *),
               const char *done)
{
        static const struct option opts[] = {
            {"ca", required_argument, NULL, 'a'},
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        const char *ca = NULL;
        int ch, rc;

        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'a':
                        ca = optarg;
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
                return cli_usage_error("key %s: unexpected argument '%s'", argv[0], argv[optind]);
        /* The CA is named every time: nothing this final happens to a default. */
        if (ca == NULL)
                return cli_usage_error("key %s: --ca NAME is required", argv[0]);
        if (k.nshares == 0)
                return cli_usage_error("key %s: give --share FILE (and --pin-file FILE) for each "
                                       "custodian present",
                                       argv[0]);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        if ((rc = cli_custody_collect(&k, 0, NULL, &e)) == 0)
                rc = fn(c, ca, k.cust, k.n, &e);
        cli_custody_free(&k);
        gmca_ctx_close(c);
        if (rc != 0)
                return cli_fail(&e);
        printf("%s: key of CA %s %s\n", cli->dir, ca, done);
        return EXIT_OK;
}

int cmd_key_archive(struct cli *cli, int argc, char **argv)
{
        return run(cli, argc, argv, archive_usage, gmca_key_archive,
                   "archived; it signs nothing more (gmca key status)");
}

int cmd_key_destroy(struct cli *cli, int argc, char **argv)
{
        return run(cli, argc, argv, destroy_usage, gmca_key_destroy,
                   "destroyed; its certificate and audit records remain");
}
