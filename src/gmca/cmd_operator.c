/*
 * gmca operator: the CA's operators (CPS §6.2). The custodians add an
 * operator — the CA issues the operator's own SM2 certificate from their
 * CSR and records name and roles — list them, and disable one (which
 * revokes the certificate). Operators then act through the signed API.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "util.h"
#include "x509.h"

#ifndef GMCA_DEFAULT_PROFILES
#define GMCA_DEFAULT_PROFILES "/usr/local/share/gmca/profiles"
#endif
#define OPERATOR_LIST_MAX 100000

static const char usage[] =
    "usage: gmca [--dir DIR] operator <subcommand> [options]\n"
    "\n"
    "  add --name NAME --role ROLE[,ROLE] --csr FILE --out CERT.pem [--days N]\n"
    "      --share FILE --pin-file FILE ...   (a threshold of custodians)\n"
    "        The custodians make NAME an operator: the default CA issues their\n"
    "        operator certificate (profile operator, clientAuth) from their own\n"
    "        CSR and records the roles. Roles: business_admin, template_admin,\n"
    "        business_operator, super_admin, system_admin, audit_admin; one person\n"
    "        holds one role, except template_admin with business_admin or with\n"
    "        system_admin (CPS §6.2.3). CERT.pem must not exist.\n"
    "  list [--json]\n"
    "        Every operator: name, roles, status, certificate serial and\n"
    "        fingerprint, when created.\n"
    "  disable NAME --share FILE --pin-file FILE ...\n"
    "        The custodians disable NAME; the operator certificate is revoked\n"
    "        (privilegeWithdrawn) in the same step.\n";

struct op_opts {
        const char *name, *roles, *csr, *out;
        int days, json;
        struct cli_custody k;
        char seen[16];
};

/* Key material of the custodians is in this process: no core file, no debugger. */
static void harden(void)
{
        struct rlimit none = {0, 0};

        (void)setrlimit(RLIMIT_CORE, &none);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int parse_opts(int argc, char **argv, struct op_opts *o)
{
        static const struct option opts[] = {
            {"name", required_argument, NULL, 'n'},  {"role", required_argument, NULL, 'r'},
            {"csr", required_argument, NULL, 'c'},   {"out", required_argument, NULL, 'o'},
            {"days", required_argument, NULL, 'd'},  {"json", no_argument, NULL, 'j'},
            {"share", required_argument, NULL, 's'}, {"pin-file", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
        };
        int ch;

        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'n':
                        o->name = optarg;
                        break;
                case 'r':
                        o->roles = optarg;
                        break;
                case 'c':
                        o->csr = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'd':
                        if ((o->days = cli_parse_int(optarg, 1, 36500)) < 0)
                                return cli_usage_error("--days: 1..36500");
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 's':
                case 'p':
                        if (cli_custody_option(&o->k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        return 0;
}

static const char *profiles_src(void)
{
        const char *env = getenv("GMCA_PROFILES");

        return env != NULL && env[0] != '\0' ? env : GMCA_DEFAULT_PROFILES;
}

static int op_add(struct cli *cli, struct op_opts *o)
{
        struct gmca_operator_add_req r;
        struct gmca_operator op;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        char roles[GMCA_ROLES_TEXT_MAX];
        uint8_t *csr = NULL;
        size_t csr_len = 0;
        X509 *cert = NULL;
        BIO *b = NULL;
        struct stat st;
        char *pem;
        long pemlen;
        unsigned bits = 0;
        int rc = EXIT_FAIL;

        if (o->name == NULL || o->roles == NULL || o->csr == NULL || o->out == NULL)
                return cli_usage_error(
                    "operator add: --name, --role, --csr and --out are required");
        if (o->k.nshares == 0)
                return cli_usage_error("operator add: the custodians' --share and --pin-file "
                                       "are required");
        /* Refused before anyone types a PIN or anything is signed. */
        if (lstat(o->out, &st) == 0) {
                gmca_error_set(&e, GMCA_ERR_EXISTS, "%s exists; not overwriting it", o->out);
                return cli_fail(&e);
        }
        harden();
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        if (gmca_read_file(o->csr, GMCA_CSR_MAX, &csr, &csr_len, &e) != 0) {
                struct gmca_error ae = {0};

                if (gmca_ctx_audit_failure(c, GMCA_EV_OPERATOR_ADD, "operator", e.msg, &ae) != 0)
                        fprintf(stderr, "gmca: %s\n", ae.msg);
                goto fail;
        }
        /* Roles are checked before the custodians type their PINs (and again when recorded). */
        if (gmca_roles_parse(o->roles, &bits, &e) != 0 || gmca_auth_roles_conflict(bits, &e) != 0) {
                struct gmca_error ae = {0};

                if (gmca_ctx_audit_failure(c, GMCA_EV_OPERATOR_ADD, "operator", e.msg, &ae) != 0)
                        fprintf(stderr, "gmca: %s\n", ae.msg);
                goto fail;
        }
        if (cli_custody_collect(&o->k, 0, NULL, &e) != 0 ||
            gmca_ctx_authorise(c, o->k.cust, o->k.n, &e) != 0)
                goto fail;
        cli_custody_free(&o->k);
        memset(&r, 0, sizeof(r));
        r.name = o->name;
        r.roles = o->roles;
        r.csr = csr;
        r.csr_len = csr_len;
        r.days = o->days;
        r.profiles_src = profiles_src();
        if (gmca_operator_add(c, &r, &op, &cert, &e) != 0)
                goto fail;
        if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, cert) != 1 ||
            (pemlen = BIO_get_mem_data(b, &pem)) <= 0) {
                fprintf(stderr,
                        "gmca: operator %s added (certificate %s) but it cannot be "
                        "encoded; use gmca cert export\n",
                        op.name, op.cert_serial);
                goto out;
        }
        if (gmca_write_file_excl(o->out, pem, (size_t)pemlen, 0644, &e) != 0) {
                fprintf(stderr,
                        "gmca: operator %s added (certificate %s) but %s; use gmca cert "
                        "export\n",
                        op.name, op.cert_serial, e.msg);
                goto out;
        }
        gmca_roles_format(op.roles, roles);
        printf("operator %s added: roles %s, certificate %s, fingerprint %s\n", op.name, roles,
               op.cert_serial, op.fingerprint);
        rc = EXIT_OK;
        goto out;
fail:
        rc = cli_fail(&e);
out:
        cli_custody_free(&o->k);
        BIO_free(b);
        X509_free(cert);
        free(csr);
        gmca_ctx_close(c);
        return rc;
}

struct op_rows {
        struct gmca_operator *v;
        size_t n, cap;
};

static int collect(const struct gmca_operator *op, void *arg)
{
        struct op_rows *rows = arg;
        void *v = rows->v;
        int rc = gmca_grow(&v, &rows->cap, rows->n, sizeof(*rows->v), 16, OPERATOR_LIST_MAX);

        rows->v = v;
        if (rc != 0)
                return rc;
        rows->v[rows->n++] = *op;
        return 0;
}

static int op_list(struct cli *cli, const struct op_opts *o)
{
        struct gmca_error e = {0};
        struct op_rows rows = {0};
        struct gmca_ctx *c;
        json_t *arr = NULL;
        int rc;

        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_operator_list(gmca_ctx_store(c), collect, &rows, &e);
        if (rc == GMCA_ERR_LIMIT)
                gmca_error_set(&e, rc, "operator list: more than %d operators", OPERATOR_LIST_MAX);
        if (rc == 0 && o->json && (arr = json_array()) == NULL)
                rc = gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < rows.n; i++) {
                const struct gmca_operator *op = &rows.v[i];
                char roles[GMCA_ROLES_TEXT_MAX], created[32];

                gmca_roles_format(op->roles, roles);
                gmca_time_iso((time_t)op->created_at, created, sizeof(created));
                if (o->json)
                        json_array_append_new(
                            arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", op->name,
                                           "roles", roles, "status", op->status, "serial",
                                           op->cert_serial, "fingerprint", op->fingerprint,
                                           "created", created, "created_by", op->created_by));
                else
                        printf("%-20s %-32s %-8s %-40s %s %s\n", op->name, roles, op->status,
                               op->cert_serial, op->fingerprint, created);
        }
        free(rows.v);
        gmca_ctx_close(c);
        if (rc != 0) {
                json_decref(arr);
                return cli_fail(&e);
        }
        return o->json ? cli_print_json(arr) : EXIT_OK;
}

static int op_disable(struct cli *cli, struct op_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        int rc = EXIT_OK;

        if (o->k.nshares == 0)
                return cli_usage_error("operator disable: the custodians' --share and --pin-file "
                                       "are required");
        harden();
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        if (cli_custody_collect(&o->k, 0, NULL, &e) != 0 ||
            gmca_ctx_authorise(c, o->k.cust, o->k.n, &e) != 0 ||
            gmca_operator_disable_ctx(c, o->name, &e) != 0)
                rc = cli_fail(&e);
        else
                printf("operator %s disabled; their certificate is revoked\n", o->name);
        cli_custody_free(&o->k);
        gmca_ctx_close(c);
        return rc;
}

int cmd_operator(struct cli *cli, int argc, char **argv)
{
        struct op_opts o;
        const char *sub;
        int rc;

        /* argv: "operator" SUB [NAME] options... */
        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        sub = argv[1];
        memset(&o, 0, sizeof(o));
        /* A second argument vector: glibc's getopt starts afresh only from 0 (NAME may come
           anywhere among the options). */
        optind = 0;
        if ((rc = parse_opts(argc - 1, argv + 1, &o)) != 0) {
                cli_custody_free(&o.k);
                return rc < 0 ? EXIT_OK : rc;
        }
        if (strcmp(sub, "disable") == 0) {
                if (optind + 1 != argc - 1) {
                        cli_custody_free(&o.k);
                        return cli_usage_error("operator disable: exactly one NAME");
                }
                o.name = argv[1 + optind];
                return cli_only_options(o.seen, "sp", "operator disable") ? EXIT_USAGE
                                                                          : op_disable(cli, &o);
        }
        if (optind != argc - 1)
                return cli_usage_error("operator %s: unexpected argument '%s'", sub,
                                       argv[1 + optind]);
        if (strcmp(sub, "add") == 0)
                return cli_only_options(o.seen, "nrcodsp", "operator add") ? EXIT_USAGE
                                                                           : op_add(cli, &o);
        if (strcmp(sub, "list") == 0)
                return cli_only_options(o.seen, "j", "operator list") ? EXIT_USAGE
                                                                      : op_list(cli, &o);
        return cli_usage_error("operator: unknown subcommand '%s'", sub);
}
