/*
 * gmca profile: the certificate profiles in force in a state directory.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "profile.h"
#include "util.h"

static const char usage[] = "usage: gmca profile <subcommand>\n"
                            "\n"
                            "  list          names and descriptions of the profiles in force\n"
                            "  show NAME     the profile's JSON\n";

int cmd_profile(struct cli *cli, int argc, char **argv)
{
        struct gmca_error e = {0};
        char dir[PATH_MAX];
        int rc = EXIT_OK;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        if ((size_t)snprintf(dir, sizeof(dir), "%s/profiles", cli->dir) >= sizeof(dir))
                return cli_usage_error("--dir: too long");
        if (strcmp(argv[1], "list") == 0 && argc == 2) {
                char **names = NULL;
                size_t n = 0;

                if (gmca_profile_list(dir, &names, &n, &e) != 0)
                        return cli_fail(&e);
                for (size_t i = 0; i < n; i++) {
                        struct gmca_profile *p = gmca_profile_find(dir, names[i], &e);

                        if (p == NULL) {
                                rc = cli_fail(&e);
                                gmca_error_clear(&e);
                        } else {
                                printf("%-16s %s\n", p->name, p->description);
                        }
                        gmca_profile_free(p);
                        free(names[i]);
                }
                free(names);
                return rc;
        }
        if (strcmp(argv[1], "show") == 0 && argc == 3) {
                struct gmca_profile *p = gmca_profile_find(dir, argv[2], &e);
                char path[PATH_MAX + 64];
                uint8_t *buf = NULL;
                size_t len;

                if (p == NULL)
                        return cli_fail(&e);
                gmca_profile_free(p);
                snprintf(path, sizeof(path), "%s/%s.json", dir, argv[2]);
                if (gmca_read_file(path, GMCA_PROFILE_FILE_MAX, &buf, &len, &e) != 0)
                        return cli_fail(&e);
                fwrite(buf, 1, len, stdout);
                free(buf);
                return EXIT_OK;
        }
        return cli_usage_error("profile: unknown subcommand");
}
