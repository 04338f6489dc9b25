/*
 * gmca init: the key ceremony that creates a CA state directory with an
 * SM2 root CA and an operational CA under it.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#ifndef GMCA_DEFAULT_PROFILES
#define GMCA_DEFAULT_PROFILES "/usr/local/share/gmca/profiles"
#endif

/*
 * The shipped profiles: beside an installed binary (<prefix>/bin/gmca ->
 * <prefix>/share/gmca/profiles, wherever the prefix was moved), else those
 * of the source tree the binary was built from.
 */
static const char *shipped_profiles(char *buf, size_t len)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;
        struct stat st;

        if (n > 0) {
                exe[n] = '\0';
                if ((slash = strrchr(exe, '/')) != NULL) {
                        *slash = '\0';
                        if ((size_t)snprintf(buf, len, "%s/../share/gmca/profiles", exe) < len &&
                            stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                                return buf;
                }
        }
        return GMCA_DEFAULT_PROFILES;
}

static const char usage[] =
    "usage: gmca [--dir DIR] init --root-dn DN --sub-dn DN [options]\n"
    "\n"
    "The key ceremony (CPS §7.1, §7.2.1.1): creates DIR with a self-signed SM2 root\n"
    "CA and an operational CA signed by it. The crypto device generates the keys;\n"
    "a master key that protects them is split 3-of-5 among the custodians, each\n"
    "share sealed under that custodian's PIN (CPS §7.4.1: 8+ characters, letters\n"
    "and digits, not their name) in --shares-out DIR/share-N.json.\n"
    "DNs follow CPS §2.1.2 table 3: \"C=CN, O=Org, OU=Unit, ST=..., L=..., CN=Name\"\n"
    "(or /C=CN/O=Org/CN=Name); Chinese text is stored as UTF8String.\n"
    "\n"
    "  --root-dn DN        subject of the root CA (required)\n"
    "  --sub-dn DN         subject of the operational CA (required)\n"
    "  --root-name NAME    short name of the root (default root)\n"
    "  --sub-name NAME     short name of the operational CA (default sub)\n"
    "  --root-days N       root validity (default: profile root-ca)\n"
    "  --sub-days N        operational CA validity (default: profile sub-ca)\n"
    "  --base-url URL      where CRLs, CA certificates and OCSP are served\n"
    "                      (default http://127.0.0.1:8080)\n"
    "  --policy-oid OID    certificate policy (default anyPolicy)\n"
    "  --cps-uri URI       CPS qualifier (default <base-url>/cps)\n"
    "  --profiles DIR      profiles to install (default $GMCA_PROFILES or the shipped set)\n"
    "  --config FILE       JSON with any of: root_dn, sub_dn, root_name, sub_name,\n"
    "                      root_days, sub_days, base_url, policy_oid, cps_uri\n"
    "  --custodian NAME    a custodian (give 5; each receives one share)\n"
    "  --pin-file FILE     that custodian's PIN, same order (else asked twice)\n"
    "  --threshold N       custodians needed to activate (default 3)\n"
    "  --shares-out DIR    where the share files are written (must exist)\n"
    "  --device-library SO a GM/T 0018 SDF library (default: the software device)\n"
    "  --device-config S   passed to the library (SDFX_Configure); the software\n"
    "                      device takes its key store directory (default keys/device)\n"
    "  --db URI            keep the store in PostgreSQL (postgresql://..., an existing\n"
    "                      empty database; no password in it: PGPASSFILE or peer\n"
    "                      authentication) instead of gmca.db\n"
    "  --front-db URI      with --db: the same database as a restricted role for\n"
    "                      gmca serve (see gmca db front-role --help); its rights\n"
    "                      are granted here. Not for SQLite\n";

static int from_config(const char *path, struct gmca_init_params *p, json_t **keep,
                       struct gmca_error *e)
{
        static const char *strs[] = {"root_dn",  "sub_dn",     "root_name", "sub_name",
                                     "base_url", "policy_oid", "cps_uri"};
        uint8_t *buf = NULL;
        size_t len;
        json_t *root, *v;
        json_error_t jerr;
        const char *key;
        int rc;

        if ((rc = gmca_read_file(path, 65536, &buf, &len, e)) != 0)
                return rc;
        root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
        free(buf);
        if (root == NULL || !json_is_object(root)) {
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: not a JSON object (%s)", path,
                                      root ? "" : jerr.text);
        }
        json_object_foreach(root, key, v)
        {
                size_t i;
                const char **slots[] = {&p->root_dn,  &p->sub_dn,     &p->root_name, &p->sub_name,
                                        &p->base_url, &p->policy_oid, &p->cps_uri};

                for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
                        if (strcmp(key, strs[i]) == 0)
                                break;
                if (i < sizeof(strs) / sizeof(strs[0])) {
                        if (!json_is_string(v)) {
                                json_decref(root);
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "%s: %s must be a string", path, key);
                        }
                        if (*slots[i] == NULL) /* the command line wins */
                                *slots[i] = json_string_value(v);
                        continue;
                }
                if (strcmp(key, "root_days") == 0 || strcmp(key, "sub_days") == 0) {
                        int *slot = key[0] == 'r' ? &p->root_days : &p->sub_days;

                        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                            json_integer_value(v) > 36500) {
                                json_decref(root);
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "%s: %s must be 1..36500", path, key);
                        }
                        if (*slot == 0)
                                *slot = (int)json_integer_value(v);
                        continue;
                }
                json_decref(root);
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: unknown key \"%s\"", path, key);
        }
        *keep = root;
        return 0;
}

int cmd_init(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"root-dn", required_argument, NULL, 'r'},
            {"sub-dn", required_argument, NULL, 's'},
            {"root-name", required_argument, NULL, 'R'},
            {"sub-name", required_argument, NULL, 'S'},
            {"root-days", required_argument, NULL, 'a'},
            {"sub-days", required_argument, NULL, 'b'},
            {"base-url", required_argument, NULL, 'u'},
            {"policy-oid", required_argument, NULL, 'o'},
            {"cps-uri", required_argument, NULL, 'c'},
            {"profiles", required_argument, NULL, 'f'},
            {"config", required_argument, NULL, 'C'},
            {"custodian", required_argument, NULL, 'n'},
            {"pin-file", required_argument, NULL, 'p'},
            {"threshold", required_argument, NULL, 't'},
            {"shares-out", required_argument, NULL, 'O'},
            {"device-library", required_argument, NULL, 'L'},
            {"device-config", required_argument, NULL, 'G'},
            {"db", required_argument, NULL, 'D'},
            {"front-db", required_argument, NULL, 'F'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_init_params p;
        char installed[PATH_MAX];
        struct gmca_error e = {0};
        const char *config = NULL;
        json_t *keep = NULL;
        struct cli_custody k;
        const char *shares_out = NULL;
        int ch, rc;

        memset(&p, 0, sizeof(p));
        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'r':
                        p.root_dn = optarg;
                        break;
                case 's':
                        p.sub_dn = optarg;
                        break;
                case 'R':
                        p.root_name = optarg;
                        break;
                case 'S':
                        p.sub_name = optarg;
                        break;
                case 'a':
                case 'b':
                        if ((rc = cli_parse_int(optarg, 1, 36500)) < 0)
                                return cli_usage_error("--%s-days: 1..36500",
                                                       ch == 'a' ? "root" : "sub");
                        *(ch == 'a' ? &p.root_days : &p.sub_days) = rc;
                        break;
                case 'u':
                        p.base_url = optarg;
                        break;
                case 'o':
                        p.policy_oid = optarg;
                        break;
                case 'c':
                        p.cps_uri = optarg;
                        break;
                case 'f':
                        p.profiles_src = optarg;
                        break;
                case 'C':
                        config = optarg;
                        break;
                case 'n':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 't':
                        if ((rc = cli_parse_int(optarg, 2, GMCA_CUSTODY_MAX)) < 0)
                                return cli_usage_error("--threshold: 2..%d", GMCA_CUSTODY_MAX);
                        p.threshold = (unsigned)rc;
                        break;
                case 'O':
                        shares_out = optarg;
                        break;
                case 'L':
                        p.device_library = optarg;
                        break;
                case 'G':
                        p.device_config = optarg;
                        break;
                case 'D':
                        p.database = optarg;
                        break;
                case 'F':
                        p.front_database = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("init: unexpected argument '%s'", argv[optind]);
        if (config != NULL && from_config(config, &p, &keep, &e) != 0)
                return cli_fail(&e);
        if (p.root_dn == NULL || p.sub_dn == NULL) {
                json_decref(keep);
                return cli_usage_error("init: --root-dn and --sub-dn are required");
        }
        if (p.profiles_src == NULL)
                p.profiles_src = getenv("GMCA_PROFILES")
                                     ? getenv("GMCA_PROFILES")
                                     : shipped_profiles(installed, sizeof(installed));
        p.actor = cli->actor;
        if (cli_custody_collect(&k, 1, shares_out, &e) != 0) {
                cli_custody_free(&k);
                json_decref(keep);
                return cli_fail(&e);
        }
        p.custodians = k.cust;
        p.ncustodians = k.n;
        rc = gmca_ca_init(cli->dir, &p, &e);
        json_decref(keep);
        if (rc != 0) {
                cli_custody_free(&k);
                return cli_fail(&e);
        }
        printf("initialised %s: root CA '%s', operational CA '%s'\n", cli->dir,
               p.root_name ? p.root_name : "root", p.sub_name ? p.sub_name : "sub");
        for (size_t i = 0; i < k.n; i++)
                printf("share for %s: %s\n", k.names[i], k.paths[i]);
        cli_custody_free(&k);
        return EXIT_OK;
}
