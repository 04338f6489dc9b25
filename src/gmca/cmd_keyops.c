/*
 * gmca key ...: the key ceremonies besides init and activation — changing
 * custodians, backup and restore of the CA keys, archive and destruction —
 * and a view of the keys' states.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store.h"

static const char usage[] =
    "usage: gmca [--dir DIR] key <subcommand> [options]\n"
    "\n"
    "  status            each CA key: device index, state, since when; custodians\n"
    "  resplit           new shares for a new set of custodians (3 current present)\n"
    "  backup            encrypted backup of the CA keys and state (3 custodians)\n"
    "  restore           restore a key backup onto a fresh state directory\n"
    "  archive           move an expired CA key out of the device into the archive\n"
    "  destroy           wipe an archived CA key after its retention (3 custodians)\n"
    "`gmca key <subcommand> --help` for the options of each.\n";

static int print_ca(const struct gmca_ca_rec *r, void *arg)
{
        json_t *list = arg;

        return json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "ca", r->name, "key",
                                                     r->key_file, "state", r->key_state, "since",
                                                     (json_int_t)r->state_time));
}

static int key_status(struct cli *cli)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        json_t *list = json_array();
        int rc;

        if (list == NULL || (c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL) {
                json_decref(list);
                return cli_fail(&e);
        }
        rc = gmca_store_ca_list(gmca_ctx_store(c), print_ca, list, &e);
        gmca_ctx_close(c);
        if (rc != 0) {
                json_decref(list);
                return cli_fail(&e);
        }
        return cli_print_json(list);
}

int cmd_key(struct cli *cli, int argc, char **argv)
{
        int rc;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        if (strcmp(argv[1], "status") == 0 && argc == 2)
                return key_status(cli);
        if (strcmp(argv[1], "resplit") == 0)
                return cmd_key_resplit(cli, argc - 1, argv + 1);
        if (strcmp(argv[1], "backup") == 0)
                return cmd_key_backup(cli, argc - 1, argv + 1);
        if (strcmp(argv[1], "restore") == 0)
                return cmd_key_restore(cli, argc - 1, argv + 1);
        if (strcmp(argv[1], "archive") == 0)
                return cmd_key_archive(cli, argc - 1, argv + 1);
        if (strcmp(argv[1], "destroy") == 0)
                return cmd_key_destroy(cli, argc - 1, argv + 1);
        return cli_usage_error("key: unknown subcommand '%s'", argv[1]);
}
