/*
 * gmca backup setup / create / verify / restore: the daily backups of
 * CPS §6.9.1 and §6.7.3 (backup.h), made while the CA runs and without the
 * custodians, sealed to the backup certificate whose private key the
 * custodians keep offline and bring only to verify or restore. Each
 * outcome is audited: creation and verification in the CA's chain, a
 * restore in the restored CA's own chain.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "backup.h"
#include "cli.h"
#include "util.h"

#define ARCHIVES_MAX 1024

static const char usage[] =
    "usage: gmca [--dir DIR] backup <subcommand> [options]\n"
    "\n"
    "  setup    --cert FILE [--copy-to DEST]\n"
    "           the backup certificate (profile backup, issued with the custodians)\n"
    "           that every archive is sealed to, and the off-site copy target\n"
    "  create   --out FILE [--incremental] [--copy-to DEST]\n"
    "           a consistent online snapshot of the store, configuration, key store,\n"
    "           certificates and CRLs, SM4-GCM encrypted; --incremental: only what\n"
    "           changed since the last archive. DEST: a file, a directory (existing\n"
    "           or ending in /), host:path or user@host:path (scp); default\n"
    "           gmca.json \"backup_copy\"\n"
    "  verify   --in FILE --key KEY [--pass-file P] [--base ID]\n"
    "           open and check an archive without restoring it; --base: the id of\n"
    "           the archive an incremental must build on\n"
    "  restore  --in FULL [--in INCR ...] --key KEY [--pass-file P] [--to NEWDIR]\n"
    "           [--db URI|sqlite]\n"
    "           rebuild a CA directory (NEWDIR, else the global --dir; absent or\n"
    "           empty) from a full archive and its incrementals in order; the\n"
    "           restored audit chain is verified. --db: the restored store, an empty\n"
    "           PostgreSQL database or the SQLite file (default: the archived CA's)\n";

struct bopts {
        const char *cert, *copy, *out, *key, *pass, *base, *to, *db;
        const char *in[ARCHIVES_MAX];
        size_t nin;
        int incremental;
        char seen[16];
};

static int parse(int argc, char **argv, struct bopts *o)
{
        static const struct option opts[] = {
            {"cert", required_argument, NULL, 'c'},
            {"copy-to", required_argument, NULL, 'C'},
            {"out", required_argument, NULL, 'o'},
            {"incremental", no_argument, NULL, 'I'},
            {"in", required_argument, NULL, 'i'},
            {"key", required_argument, NULL, 'k'},
            {"pass-file", required_argument, NULL, 'p'},
            {"base", required_argument, NULL, 'b'},
            {"to", required_argument, NULL, 't'},
            {"db", required_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'c':
                        o->cert = optarg;
                        break;
                case 'C':
                        o->copy = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'I':
                        o->incremental = 1;
                        break;
                case 'k':
                        o->key = optarg;
                        break;
                case 'p':
                        o->pass = optarg;
                        break;
                case 'b':
                        o->base = optarg;
                        break;
                case 't':
                        o->to = optarg;
                        break;
                case 'd':
                        o->db = optarg;
                        break;
                case 'i':
                        if (o->nin == ARCHIVES_MAX)
                                return cli_usage_error("--in: at most %d archives", ARCHIVES_MAX);
                        o->in[o->nin++] = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("backup: unexpected argument '%s'", argv[optind]);
        return 0;
}

static json_t *info_json(const struct gmca_backup_info *i)
{
        return json_pack("{s:s, s:s, s:I, s:s?, s:I, s:I, s:I, s:s}", "id", i->id, "kind", i->kind,
                         "seq", (json_int_t)i->seq, "base", i->base[0] ? i->base : NULL, "entries",
                         (json_int_t)i->entries, "blocks_changed", (json_int_t)i->blocks_changed,
                         "files_carried", (json_int_t)i->files_carried, "key_id", i->key_id);
}

/* One audit record in the store of dir (skipped when dir holds no CA). */
static void audit(const struct cli *cli, const char *dir, const char *event, int ok,
                  const char *object, json_t *detail, const struct gmca_error *cause)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        char *txt;
        struct gmca_audit_event ev = {event, cli->actor, ok, object, NULL};

        if (detail == NULL)
                detail = json_object();
        if (!ok && cause != NULL)
                json_object_set_new(detail, "error", json_string(cause->msg));
        txt = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(detail);
        ev.detail = txt;
        if ((c = gmca_ctx_open(dir, cli->actor, &e)) != NULL) {
                if (gmca_audit_record(gmca_ctx_store(c), &ev, &e) != 0)
                        fprintf(stderr, "gmca: warning: audit record not written: %s\n", e.msg);
                gmca_ctx_close(c);
        }
        free(txt);
}

static int do_setup(const struct cli *cli, const struct bopts *o)
{
        struct gmca_error e = {0};
        X509 *cert;
        int rc;

        if (cli_only_options(o->seen, "cC", "backup setup") != 0)
                return EXIT_USAGE;
        if (o->cert == NULL)
                return cli_usage_error("backup setup: --cert FILE is required");
        if ((cert = cli_load_cert(o->cert, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_backup_setup(cli->dir, cert, o->copy, &e);
        X509_free(cert);
        audit(cli, cli->dir, GMCA_EV_CONFIG_CHANGE, rc == 0, "backup_cert",
              json_pack("{s:s, s:s?}", "backup_cert", "certs/backup.pem", "backup_copy", o->copy),
              &e);
        if (rc != 0)
                return cli_fail(&e);
        return cli_print_json(json_pack("{s:s}", "backup_cert", "certs/backup.pem"));
}

static int do_create(const struct cli *cli, const struct bopts *o)
{
        struct gmca_backup_opts bo = {cli->dir, o->out, o->incremental};
        struct gmca_backup_info info;
        struct gmca_error e = {0}, ce = {0};
        char copy[PATH_MAX] = "";
        X509 *cert = NULL;
        json_t *d;
        int rc;

        if (cli_only_options(o->seen, "oIC", "backup create") != 0)
                return EXIT_USAGE;
        if (o->out == NULL)
                return cli_usage_error("backup create: --out FILE is required");
        if ((rc = gmca_backup_create(&bo, &info, &e)) != 0) {
                audit(cli, cli->dir, GMCA_EV_BACKUP_CREATE, 0, o->out, NULL, &e);
                return cli_fail(&e);
        }
        if (o->copy != NULL)
                gmca_strlcpy(copy, o->copy, sizeof(copy));
        else if (gmca_backup_config(cli->dir, &cert, copy, sizeof(copy), &ce) != 0)
                copy[0] = '\0';
        X509_free(cert);
        gmca_error_clear(&ce);
        d = info_json(&info);
        json_object_set_new(d, "out", json_string(o->out));
        if (copy[0] != '\0') {
                rc = gmca_backup_copy(o->out, copy, &ce);
                json_object_set_new(d, "copy", json_string(copy));
                json_object_set_new(d, "copied", json_boolean(rc == 0));
        }
        audit(cli, cli->dir, GMCA_EV_BACKUP_CREATE, 1, info.id, json_deep_copy(d), NULL);
        if (rc != 0) {
                json_decref(d);
                fprintf(stderr, "gmca: backup %s written, but the off-site copy failed: %s\n",
                        o->out, ce.msg);
                return cli_exit_code(ce.code);
        }
        return cli_print_json(d);
}

static EVP_PKEY *backup_key(const struct bopts *o, struct gmca_error *e)
{
        return cli_load_key(o->key, o->pass, e);
}

static int do_verify(const struct cli *cli, const struct bopts *o)
{
        struct gmca_backup_info info;
        struct gmca_error e = {0};
        char cfg[PATH_MAX];
        EVP_PKEY *k;
        int rc, here;

        if (cli_only_options(o->seen, "ikpb", "backup verify") != 0)
                return EXIT_USAGE;
        if (o->nin != 1 || o->key == NULL)
                return cli_usage_error("backup verify: --in FILE and --key KEY are required");
        snprintf(cfg, sizeof(cfg), "%s/gmca.json", cli->dir);
        here = access(cfg, F_OK) == 0;
        if ((k = backup_key(o, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_backup_verify(o->in[0], k, o->base, &info, &e);
        EVP_PKEY_free(k);
        if (here)
                audit(cli, cli->dir, GMCA_EV_BACKUP_VERIFY, rc == 0, rc == 0 ? info.id : o->in[0],
                      rc == 0 ? info_json(&info) : NULL, &e);
        if (rc != 0)
                return cli_fail(&e);
        return cli_print_json(info_json(&info));
}

static int do_restore(const struct cli *cli, const struct bopts *o)
{
        struct gmca_backup_info info;
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        int64_t count = 0, bad = 0;
        const char *to = o->to != NULL ? o->to : cli->dir;
        json_t *d, *ids;
        EVP_PKEY *k;
        size_t i;
        int rc;

        if (cli_only_options(o->seen, "ikptd", "backup restore") != 0)
                return EXIT_USAGE;
        if (o->nin == 0 || o->key == NULL)
                return cli_usage_error("backup restore: --in FILE and --key KEY are required");
        if ((k = backup_key(o, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_backup_restore_db(o->in, o->nin, k, to, o->db, &info, &e);
        EVP_PKEY_free(k);
        if (rc != 0)
                return cli_fail(&e);
        d = info_json(&info);
        ids = json_array();
        for (i = 0; i < o->nin; i++)
                json_array_append_new(ids, json_string(o->in[i]));
        json_object_set_new(d, "archives", ids);
        audit(cli, to, GMCA_EV_BACKUP_RESTORE, 1, info.id, json_deep_copy(d), NULL);
        if ((c = gmca_ctx_open(to, cli->actor, &e)) == NULL) {
                json_decref(d);
                return cli_fail(&e);
        }
        rc = gmca_audit_verify(gmca_ctx_store(c), &count, &bad, &e);
        gmca_ctx_close(c);
        if (rc != 0) {
                json_decref(d);
                return cli_fail(&e);
        }
        json_object_set_new(d, "dir", json_string(to));
        json_object_set_new(d, "audit_records", json_integer((json_int_t)count));
        return cli_print_json(d);
}

int cmd_backup(struct cli *cli, int argc, char **argv)
{
        struct bopts o;
        const char *sub;
        int rc;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        sub = argv[1];
        if ((rc = parse(argc - 1, argv + 1, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (strcmp(sub, "setup") == 0)
                return do_setup(cli, &o);
        if (strcmp(sub, "create") == 0)
                return do_create(cli, &o);
        if (strcmp(sub, "verify") == 0)
                return do_verify(cli, &o);
        if (strcmp(sub, "restore") == 0)
                return do_restore(cli, &o);
        return cli_usage_error("backup: unknown subcommand '%s'", sub);
}
