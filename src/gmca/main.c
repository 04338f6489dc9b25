/*
 * gmca — the command of the gmca certificate authority. Dispatches to the
 * command groups (init, cert, crl, ca, audit, profile); global options set
 * the state directory, the operator recorded in the audit log and where the
 * key passphrase comes from.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define DEFAULT_DIR "./var/gmca"

static const char usage[] =
    "usage: gmca [global options] <command> [options]\n"
    "\n"
    "A certificate authority for SM2/SM3 e-government PKI (GM/T 0015).\n"
    "\n"
    "commands:\n"
    "  init              create the root and operational CA (key ceremony)\n"
    "  activate          wake the CA keys with 3 of 5 custodians; starts the CA engine\n"
    "  deactivate        wipe the CA keys from memory; stops the CA engine\n"
    "  key ...           custodians, backup/restore, archive, destroy (ceremonies)\n"
    "  cert issue        issue a certificate from a PKCS#10 request\n"
    "  cert show|list|export|revoke\n"
    "  crl generate|list CRLs of a CA\n"
    "  ca list|export    the CAs of this state directory\n"
    "  ca rollover|compromise|reissues  CA key changeover and compromise (ceremonies)\n"
    "  ra cert issue|list  the RA system's communication certificate\n"
    "  serve             the RA front: the signed operator API, CA certificates, CRLs\n"
    "  api               send one signed request to the front (scripts, tests)\n"
    "  km ...            the key management centre: init, trust, serve, list, destroy\n"
    "  operator add|list|disable  the RA's operators and their roles (custodians)\n"
    "  app ...           for applications: certificates, GM/T 0010 messages, SM3/SM4\n"
    "  token ...         a subscriber's software token: keys, CSR, enveloped key import\n"
    "  sync verify       check a signed certificate/CRL event pushed to a receiver\n"
    "  publish status|reset  the LDAP directory's and sync receivers' delivery cursors\n"
    "  db front-role     PostgreSQL: the front's restricted database role\n"
    "  audit verify|list the hash-chained audit log\n"
    "  backup setup|create|verify|restore  sealed online backups, full and incremental\n"
    "  export            CA termination: the signed history for a successor (custodians)\n"
    "  import            on a successor: verify and keep a terminated CA's export\n"
    "  stats             issuance, revocation and service-time statistics (JSON, CSV)\n"
    "  profile list|show certificate profiles\n"
    "\n"
    "global options:\n"
    "  --dir DIR         state directory (default " DEFAULT_DIR ", or $GMCA_DIR)\n"
    "  --operator NAME   operator identity for the audit log (default: os:<login>)\n"
    "  -h, --help        this help; `gmca <command> --help` for each command\n"
    "  --version\n"
    "\n"
    "PINs are never taken as arguments: --pin-file FILE or the terminal.\n"
    "Exit status: 0 ok, 1 failure, 2 usage, 3 bad input, 4 not found,\n"
    "5 wrong PIN or too few custodians, 6 refused by policy or state, 7 integrity.\n";

static void default_actor(struct cli *cli)
{
        const char *env = getenv("GMCA_OPERATOR");
        struct passwd *pw;

        if (env != NULL && env[0] != '\0') {
                snprintf(cli->actor, sizeof(cli->actor), "%s", env);
                return;
        }
        pw = getpwuid(geteuid());
        snprintf(cli->actor, sizeof(cli->actor), "os:%s", pw != NULL ? pw->pw_name : "unknown");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"dir", required_argument, NULL, 'd'},
            {"operator", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        struct cli cli;
        const char *cmd;
        int ch;

        memset(&cli, 0, sizeof(cli));
        cli.dir = getenv("GMCA_DIR") != NULL ? getenv("GMCA_DIR") : DEFAULT_DIR;
        default_actor(&cli);
        while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                switch (ch) {
                case 'd':
                        cli.dir = optarg;
                        break;
                case 'o':
                        if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(cli.actor))
                                return cli_usage_error("--operator: 1..%zu bytes",
                                                       sizeof(cli.actor) - 1);
                        snprintf(cli.actor, sizeof(cli.actor), "%s", optarg);
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                case 'V':
                        puts("gmca 0.1.0");
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                fputs(usage, stderr);
                return EXIT_USAGE;
        }
        cmd = argv[optind];
        argc -= optind;
        argv += optind;
        optind = 1; /* reset getopt for the command's own options */
        if (strcmp(cmd, "init") == 0)
                return cmd_init(&cli, argc, argv);
        if (strcmp(cmd, "activate") == 0)
                return cmd_activate(&cli, argc, argv);
        if (strcmp(cmd, "deactivate") == 0)
                return cmd_deactivate(&cli, argc, argv);
        if (strcmp(cmd, "key") == 0)
                return cmd_key(&cli, argc, argv);
        if (strcmp(cmd, "ra") == 0)
                return cmd_ra(&cli, argc, argv);
        if (strcmp(cmd, "serve") == 0)
                return cmd_serve(&cli, argc, argv);
        if (strcmp(cmd, "api") == 0)
                return cmd_api(&cli, argc, argv);
        if (strcmp(cmd, "km") == 0)
                return cmd_km(&cli, argc, argv);
        if (strcmp(cmd, "operator") == 0)
                return cmd_operator(&cli, argc, argv);
        if (strcmp(cmd, "app") == 0)
                return cmd_app(&cli, argc, argv);
        if (strcmp(cmd, "token") == 0)
                return cmd_token(&cli, argc, argv);
        if (strcmp(cmd, "sync") == 0)
                return cmd_sync(&cli, argc, argv);
        if (strcmp(cmd, "publish") == 0)
                return cmd_publish(&cli, argc, argv);
        if (strcmp(cmd, "db") == 0)
                return cmd_db(&cli, argc, argv);
        if (strcmp(cmd, "backup") == 0)
                return cmd_backup(&cli, argc, argv);
        if (strcmp(cmd, "export") == 0)
                return cmd_export(&cli, argc, argv);
        if (strcmp(cmd, "import") == 0)
                return cmd_import(&cli, argc, argv);
        if (strcmp(cmd, "cert") == 0)
                return cmd_cert(&cli, argc, argv);
        if (strcmp(cmd, "crl") == 0)
                return cmd_crl(&cli, argc, argv);
        if (strcmp(cmd, "ca") == 0)
                return cmd_ca(&cli, argc, argv);
        if (strcmp(cmd, "audit") == 0)
                return cmd_audit(&cli, argc, argv);
        if (strcmp(cmd, "profile") == 0)
                return cmd_profile(&cli, argc, argv);
        if (strcmp(cmd, "stats") == 0)
                return cmd_stats(&cli, argc, argv);
        if (strcmp(cmd, "help") == 0) {
                fputs(usage, stdout);
                return EXIT_OK;
        }
        return cli_usage_error("unknown command '%s'", cmd);
}
