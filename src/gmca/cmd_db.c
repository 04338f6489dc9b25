/*
 * gmca db: the database's roles. On PostgreSQL the front (`gmca serve`)
 * can connect with a role of its own that cannot change what the CA engine
 * signs (store_roles.h): `gmca db front-role --front-db URI` names it for an
 * existing CA, with the owner's connection (gmca.json "database"), grants
 * its rights and records it in gmca.json "front_database". `gmca init
 * --front-db` does the same at the key ceremony. Whoever holds the owner's
 * connection may change the database anyway, so no custodians are asked;
 * the change is audited (db.front_role), a refusal too.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ca.h"
#include "cli.h"

static const char usage[] =
    "usage: gmca db front-role --front-db URI\n"
    "\n"
    "  front-role        let the front (gmca serve: RA API, OCSP, CRLs, search,\n"
    "                    publishing) connect to the CA's PostgreSQL database as a\n"
    "                    restricted role (another user of the same database, e.g.\n"
    "                    postgresql://gmca_front@/gmca?host=/run/postgresql): it reads\n"
    "                    what it serves and writes only the RA's records, nonces,\n"
    "                    publishing cursors and audit records appended. Grants the\n"
    "                    role its rights (again after every schema migration), records\n"
    "                    it in gmca.json \"front_database\". Audited. Not for SQLite: a\n"
    "                    single file cannot separate the front from the CA engine.\n"
    "  --front-db URI    the front's postgresql:// URI (no password in it)\n";

static int front_role(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"front-db", required_argument, NULL, 'F'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_error e = {0};
        const char *uri = NULL;
        struct gmca_ctx *c;
        int ch, rc;

        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'F':
                        uri = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("db front-role: unexpected argument '%s'", argv[optind]);
        if (uri == NULL)
                return cli_usage_error("db front-role: --front-db URI is required");
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_ca_front_role(c, uri, &e);
        gmca_ctx_close(c);
        if (rc != 0)
                return cli_fail(&e);
        printf("front role set: gmca serve now connects with --front-db's role\n");
        return EXIT_OK;
}

int cmd_db(struct cli *cli, int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (strcmp(argv[1], "front-role") == 0)
                return front_role(cli, argc - 1, argv + 1);
        return cli_usage_error("db: unknown subcommand '%s'", argv[1]);
}
