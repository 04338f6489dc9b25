/*
 * gmca key resplit / backup / restore: the custody ceremonies (CPS §6.3.4,
 * §7.2.1.1, §7.2.1.3, §7.1.2.5). Each runs in this process with the
 * custodians present and the CA engine stopped; the library does the work
 * and audits it, this file reads options and PINs.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "crypto.h"
#include "util.h"

static const char resplit_usage[] =
    "usage: gmca [--dir DIR] key resplit --share FILE [--pin-file FILE] ... \\\n"
    "           --custodian NAME [--new-pin-file FILE] ... --shares-out DIR [--threshold N]\n"
    "\n"
    "Custodian change (CPS §6.3.4, §7.2.1.1): with 3 of the current custodians\n"
    "present, a new master key is made and split among the new custodians; the\n"
    "CA keys stay in the device untouched. The old shares no longer open this CA\n"
    "(old backups stay openable by the shares current when they were made).\n"
    "The CA engine must be stopped (gmca deactivate); activate again afterwards.\n"
    "\n"
    "  --share FILE         a current custodian's share file (one per custodian present)\n"
    "  --pin-file FILE      that custodian's PIN, same order (else asked on the terminal)\n"
    "  --custodian NAME     a new custodian (give 5; each receives one share)\n"
    "  --new-pin-file FILE  that new custodian's PIN, same order (else asked twice);\n"
    "                       CPS §7.4.1: 8+ characters, letters and digits, not the name\n"
    "  --shares-out DIR     where the new share files go (share-N.json; must exist)\n"
    "  --threshold N        custodians needed from now on (default 3)\n";

static const char backup_usage[] =
    "usage: gmca [--dir DIR] key backup --share FILE [--pin-file FILE] ... --out FILE\n"
    "\n"
    "CA key backup (CPS §7.2.1.3, §7.1.2.5): with 3 custodians present, writes one\n"
    "file (mode 0600, never overwriting) holding a consistent copy of the store,\n"
    "the configuration, profiles, CA certificates and CRLs, archived keys, and\n"
    "every CA key as the device's sealed blob, all encrypted with SM4-GCM under a\n"
    "key derived from the master key. Only 3 custodians of the current share set\n"
    "can restore it. The CA engine must be stopped (gmca deactivate).\n"
    "\n"
    "  --share FILE      a custodian's share file (one per custodian present)\n"
    "  --pin-file FILE   that custodian's PIN, same order (else asked on the terminal)\n"
    "  --out FILE        the backup file to write (must not exist)\n";

static const char restore_usage[] =
    "usage: gmca --dir NEWDIR key restore --in FILE --share FILE [--pin-file FILE] ...\n"
    "           [--device-library SO] [--device-config S]\n"
    "\n"
    "Restores a key backup onto a fresh state directory (CPS §7.2.1.3): with 3\n"
    "custodians of the share set the backup was made under, every frame is\n"
    "authenticated, the CA keys are imported into the device at their indexes and\n"
    "each is checked against its CA certificate before NEWDIR appears. Activate\n"
    "NEWDIR afterwards with the same shares.\n"
    "\n"
    "  --in FILE           the backup\n"
    "  --share FILE        a custodian's share file (one per custodian present)\n"
    "  --pin-file FILE     that custodian's PIN, same order (else asked on the terminal)\n"
    "  --device-library SO a GM/T 0018 SDF library for the new device (default: as in\n"
    "                      the backup)\n"
    "  --device-config S   passed to the library (SDFX_Configure); the software device\n"
    "                      takes its key store directory (default: as in the backup)\n";

/* A ceremony holds the master key: no core file, no debugger. */
static void harden(void)
{
        struct rlimit none = {0, 0};

        (void)setrlimit(RLIMIT_CORE, &none);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* What an unexpected argument or a missing option is, before any PIN is asked. */
static int no_extra(int argc, char **argv, const char *what)
{
        if (optind != argc)
                return cli_usage_error("%s: unexpected argument '%s'", what, argv[optind]);
        return 0;
}

int cmd_key_resplit(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"custodian", required_argument, NULL, 'n'},
            {"new-pin-file", required_argument, NULL, 'P'},
            {"shares-out", required_argument, NULL, 'O'},
            {"threshold", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct cli_custody cur, next;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        const char *shares_out = NULL;
        unsigned threshold = 0;
        struct stat st;
        int ch, rc;

        memset(&cur, 0, sizeof(cur));
        memset(&next, 0, sizeof(next));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 's':
                case 'p':
                        if (cli_custody_option(&cur, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'n':
                case 'P':
                        if (cli_custody_option(&next, ch == 'n' ? 'n' : 'p', optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'O':
                        shares_out = optarg;
                        break;
                case 't':
                        if ((rc = cli_parse_int(optarg, 2, GMCA_CUSTODY_MAX)) < 0)
                                return cli_usage_error("--threshold: 2..%d", GMCA_CUSTODY_MAX);
                        threshold = (unsigned)rc;
                        break;
                case 'h':
                        fputs(resplit_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if ((rc = no_extra(argc, argv, "key resplit")) != 0)
                return rc;
        if (cur.nshares == 0)
                return cli_usage_error("key resplit: --share FILE for each current custodian "
                                       "present");
        if (next.nnames == 0)
                return cli_usage_error("key resplit: --custodian NAME for each new custodian");
        if (shares_out == NULL)
                return cli_usage_error("key resplit: --shares-out DIR: where the new shares go");
        if (stat(shares_out, &st) != 0 || !S_ISDIR(st.st_mode)) {
                gmca_error_set(&e, GMCA_ERR_NOTFOUND,
                               "key resplit: --shares-out %s is not a "
                               "directory",
                               shares_out);
                return cli_fail(&e);
        }
        harden();
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                goto fail;
        if (cli_custody_collect(&cur, 0, NULL, &e) != 0 ||
            cli_custody_collect(&next, 1, shares_out, &e) != 0 ||
            gmca_key_resplit(c, cur.cust, cur.n, next.cust, next.n, threshold, &e) != 0)
                goto fail;
        gmca_ctx_close(c);
        printf("re-split the master key of %s: %u of %zu custodians from now on; the old shares "
               "no longer open it\n",
               cli->dir, threshold ? threshold : 3, next.n);
        for (size_t i = 0; i < next.n; i++)
                printf("share for %s: %s\n", next.names[i], next.paths[i]);
        cli_custody_free(&cur);
        cli_custody_free(&next);
        return EXIT_OK;
fail:
        cli_custody_free(&cur);
        cli_custody_free(&next);
        gmca_ctx_close(c);
        return cli_fail(&e);
}

/* SM3 of a file, for the operator to label the backup medium with. */
static int file_sm3(const char *path, char hex[2 * GMCA_SM3_LEN + 1], struct gmca_error *e)
{
        uint8_t buf[65536], md[GMCA_SM3_LEN];
        EVP_MD_CTX *h = NULL;
        ssize_t n;
        int fd, rc = 0;

        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || (h = gmca_sm3_new()) == NULL) {
                if (fd >= 0)
                        close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: cannot read back", path);
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (gmca_sm3_update(h, buf, (size_t)n) != 0)
                        rc = -1;
        close(fd);
        if (gmca_sm3_final(h, md) != 0 || n < 0 || rc != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: cannot read back", path);
        gmca_hex(md, sizeof(md), hex);
        return 0;
}

int cmd_key_backup(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"out", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        const char *out = NULL;
        char hex[2 * GMCA_SM3_LEN + 1];
        int ch, rc;

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
                case 'h':
                        fputs(backup_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if ((rc = no_extra(argc, argv, "key backup")) != 0)
                return rc;
        if (out == NULL)
                return cli_usage_error("key backup: --out FILE: where the backup goes");
        if (k.nshares == 0)
                return cli_usage_error("key backup: --share FILE for each custodian present");
        harden();
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                goto fail;
        if (cli_custody_collect(&k, 0, NULL, &e) != 0 || gmca_key_backup(c, k.cust, k.n, out, &e))
                goto fail;
        cli_custody_free(&k);
        gmca_ctx_close(c);
        if (file_sm3(out, hex, &e) != 0)
                return cli_fail(&e);
        printf("backup of %s written to %s (mode 0600)\nSM3 %s\n", cli->dir, out, hex);
        return EXIT_OK;
fail:
        cli_custody_free(&k);
        gmca_ctx_close(c);
        return cli_fail(&e);
}

int cmd_key_restore(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"in", required_argument, NULL, 'i'},
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"device-library", required_argument, NULL, 'L'},
            {"device-config", required_argument, NULL, 'G'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_restore_params p;
        struct cli_custody k;
        struct gmca_error e = {0};
        int ch, rc;

        memset(&p, 0, sizeof(p));
        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'i':
                        p.archive = optarg;
                        break;
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'L':
                        p.device_library = optarg;
                        break;
                case 'G':
                        p.device_config = optarg;
                        break;
                case 'h':
                        fputs(restore_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if ((rc = no_extra(argc, argv, "key restore")) != 0)
                return rc;
        if (p.archive == NULL)
                return cli_usage_error("key restore: --in FILE: the backup to restore");
        if (k.nshares == 0)
                return cli_usage_error("key restore: --share FILE for each custodian present");
        harden();
        p.dir = cli->dir;
        p.actor = cli->actor;
        if (cli_custody_collect(&k, 0, NULL, &e) != 0) {
                cli_custody_free(&k);
                return cli_fail(&e);
        }
        p.custodians = k.cust;
        p.ncustodians = k.n;
        rc = gmca_key_restore(&p, &e);
        cli_custody_free(&k);
        if (rc != 0)
                return cli_fail(&e);
        printf("restored %s from %s; every CA key checked against its certificate\n"
               "activate it with the custodians' shares (gmca --dir %s activate ...)\n",
               cli->dir, p.archive, cli->dir);
        return EXIT_OK;
}
