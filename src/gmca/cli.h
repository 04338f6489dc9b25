/*
 * Shared pieces of the gmca command: global options, passphrase intake
 * (file, environment or terminal — never an argument), errors to stderr as
 * one line, and exit codes that scripts can rely on.
 */
#ifndef GMCA_CLI_H
#define GMCA_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>
#include <openssl/types.h>

#include "ca.h"
#include "err.h"

/* Exit codes. */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,     /* any other failure */
        EXIT_USAGE = 2,    /* bad command line */
        EXIT_INPUT = 3,    /* bad input: CSR, JSON, DN, serial... */
        EXIT_NOTFOUND = 4, /* unknown serial, CA, profile, file */
        EXIT_AUTH = 5,     /* wrong passphrase */
        EXIT_POLICY = 6,   /* refused by a profile or CPS rule, or wrong state */
        EXIT_TAMPER = 7,   /* integrity failure (audit chain, key/cert mismatch) */
};

struct cli {
        const char *dir; /* state directory */
        char actor[GMCA_ACTOR_MAX];
};

/* Print "gmca: <cause>" and return the exit code for e->code. */
int cli_fail(const struct gmca_error *e);
/* Print "gmca: <message>" and return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) GMCA_PRINTF(1, 2);
int cli_exit_code(int err);

/*
 * Get a secret (PIN) from the first line of file, from environment variable
 * env, or from the terminal (twice when confirm is set), never from an
 * argument. what names it in the prompt and in errors. *pass is wiped and
 * freed with cli_pass_free.
 */
int cli_secret(const char *file, const char *env, const char *what, int confirm, char **pass,
               size_t *len, struct gmca_error *e);
void cli_pass_free(char *pass, size_t len);

/*
 * Custodians on the command line: --custodian NAME (ceremonies that make
 * shares), --share FILE (ceremonies that use them) and --pin-file FILE,
 * paired with them in order; a PIN without a file is asked on the terminal.
 */
struct cli_custody {
        const char *names[GMCA_CUSTODY_MAX];
        size_t nnames;
        const char *shares[GMCA_CUSTODY_MAX];
        size_t nshares;
        const char *pin_files[GMCA_CUSTODY_MAX];
        size_t npins;
        char paths[GMCA_CUSTODY_MAX][4096];
        char *pins[GMCA_CUSTODY_MAX];
        size_t pinlens[GMCA_CUSTODY_MAX];
        struct gmca_custodian cust[GMCA_CUSTODY_MAX];
        size_t n;
};
/* which: 'n' --custodian, 's' --share, 'p' --pin-file. EXIT_USAGE past the cap. */
int cli_custody_option(struct cli_custody *k, int which, const char *arg);
/* Read the PINs and fill k->cust: from names and share_dir (ceremony) or from shares. */
int cli_custody_collect(struct cli_custody *k, int ceremony, const char *share_dir,
                        struct gmca_error *e);
void cli_custody_free(struct cli_custody *k);

/* An SM2 private key from a PEM file, its passphrase from pass_file (NULL: none). */
EVP_PKEY *cli_load_key(const char *path, const char *pass_file, struct gmca_error *e);
/* A certificate from a PEM or DER file, strictly parsed. */
X509 *cli_load_cert(const char *path, struct gmca_error *e);

/* Open the state directory; with activate, sign through the running CA engine. */
struct gmca_ctx *cli_open(const struct cli *cli, const char *ca, int activate,
                          struct gmca_error *e);

/* Print a JSON value to stdout followed by a newline, then free it. */
int cli_print_json(json_t *v);

/* Write data to path (exclusive create) or stdout when path is NULL. */
int cli_output(const char *path, const void *data, size_t len, struct gmca_error *e);

/*
 * For `gmca <group> <subcommand> ...`: with no subcommand, or --help in its
 * place, print usage (to stderr or stdout), set *rc and return 1.
 */
int cli_group_help(int argc, char **argv, const char *usage, int *rc);

/*
 * Options a subcommand ignores are refused rather than silently dropped:
 * cli_seen_option records each option letter parsed into seen (a NUL-
 * terminated buffer of size bytes); cli_only_options returns EXIT_USAGE
 * (after saying so) if seen has a letter not in allowed, else 0.
 */
void cli_seen_option(char *seen, size_t size, int ch);
int cli_only_options(const char *seen, const char *allowed, const char *what);

/* Parse a positive int option; -1 on error. */
int cli_parse_int(const char *s, int min, int max);

int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_cert(struct cli *cli, int argc, char **argv);
int cmd_crl(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_ca(struct cli *cli, int argc, char **argv);
int cmd_profile(struct cli *cli, int argc, char **argv);
int cmd_activate(struct cli *cli, int argc, char **argv);
int cmd_deactivate(struct cli *cli, int argc, char **argv);
int cmd_key(struct cli *cli, int argc, char **argv);
int cmd_ra(struct cli *cli, int argc, char **argv);
int cmd_operator(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);   /* cmd_serve.c: the RA front */
int cmd_api(struct cli *cli, int argc, char **argv);     /* cmd_api.c: signed API client */
int cmd_km(struct cli *cli, int argc, char **argv);      /* cmd_km.c: the key management centre */
int cmd_km_link(struct cli *cli, int argc, char **argv); /* cmd_km_link.c: the CA's side */
int cmd_token(struct cli *cli, int argc, char **argv);   /* cmd_token.c: the soft token */
int cmd_stats(struct cli *cli, int argc, char **argv);   /* cmd_stats.c: statistics */
int cmd_sync(struct cli *cli, int argc, char **argv);    /* cmd_sync.c: sync verify */
int cmd_publish(struct cli *cli, int argc, char **argv); /* cmd_publish.c: feed cursors */
int cmd_db(struct cli *cli, int argc, char **argv);      /* cmd_db.c: the front's database role */
int cmd_backup(struct cli *cli, int argc, char **argv);  /* cmd_backup.c: backups */
int cmd_export(struct cli *cli, int argc, char **argv);  /* cmd_export.c: CA termination */
int cmd_import(struct cli *cli, int argc, char **argv);  /* cmd_export.c */

/* Start the CA engine process from an activated context (cmd_key.c; activate, serve). */
int cli_engine_spawn(struct gmca_ctx *c, pid_t *pid, struct gmca_error *e);

/*
 * Subcommands that live in their own files; argv[0] is the subcommand name
 * (getopt starts at argv[1]).
 */
int cmd_key_resplit(struct cli *cli, int argc, char **argv);   /* cmd_custody.c */
int cmd_key_backup(struct cli *cli, int argc, char **argv);    /* cmd_custody.c */
int cmd_key_restore(struct cli *cli, int argc, char **argv);   /* cmd_custody.c */
int cmd_key_archive(struct cli *cli, int argc, char **argv);   /* cmd_archive.c */
int cmd_key_destroy(struct cli *cli, int argc, char **argv);   /* cmd_archive.c */
int cmd_ca_rollover(struct cli *cli, int argc, char **argv);   /* cmd_rollover.c */
int cmd_ca_compromise(struct cli *cli, int argc, char **argv); /* cmd_compromise.c */
int cmd_ca_reissues(struct cli *cli, int argc, char **argv);   /* cmd_compromise.c */
/* gmca app ...: the relying-party and application interface (CPS §3.5.2, §4.2). */
int cmd_app(struct cli *cli, int argc, char **argv);          /* cmd_app.c: dispatcher */
int cmd_app_cert(struct cli *cli, int argc, char **argv);     /* cmd_app.c */
int cmd_app_random(struct cli *cli, int argc, char **argv);   /* cmd_app.c */
int cmd_app_sm3(struct cli *cli, int argc, char **argv);      /* cmd_app.c */
int cmd_app_sm4(struct cli *cli, int argc, char **argv);      /* cmd_app.c */
int cmd_app_sign(struct cli *cli, int argc, char **argv);     /* cmd_app_cms.c: GM/T 0010 */
int cmd_app_verify(struct cli *cli, int argc, char **argv);   /* cmd_app_cms.c */
int cmd_app_encrypt(struct cli *cli, int argc, char **argv);  /* cmd_app_cms.c */
int cmd_app_decrypt(struct cli *cli, int argc, char **argv);  /* cmd_app_cms.c */
int cmd_app_validate(struct cli *cli, int argc, char **argv); /* cmd_app_validate.c */
int cmd_app_ts(struct cli *cli, int argc, char **argv);       /* cmd_app_ts.c: RFC 3161 */

#endif
