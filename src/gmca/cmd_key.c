/*
 * gmca activate / deactivate: wake the CA keys with the custodians (CPS
 * §7.2.1.7) and start the CA engine that holds them; wipe them again
 * (§7.2.1.8). gmca key ...: the other key ceremonies.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "audit.h"
#include "engine.h"

static const char activate_usage[] =
    "usage: gmca [--dir DIR] activate --share FILE [--pin-file FILE] ... [--direct-issue]\n"
    "       [--foreground]\n"
    "\n"
    "Wakes the CA keys (CPS §7.2.1.7): any 3 of the 5 custodians give their share\n"
    "file and PIN; the master key they recombine unlocks the keys in the crypto\n"
    "device, and a CA engine process starts that alone holds them. Other gmca\n"
    "commands then sign through it, until `gmca deactivate`.\n"
    "\n"
    "  --share FILE      a custodian's share file (once per custodian present)\n"
    "  --pin-file FILE   that custodian's PIN, same order (else asked on the terminal)\n"
    "  --direct-issue    the custodians allow certificates issued from the command line\n"
    "                    (gmca cert issue) for this run (audited); without it the CA\n"
    "                    engine signs certificates only for approved RA applications\n"
    "                    or with the custodians' shares given again (--share on the\n"
    "                    issuing command); CRLs are signed either way\n"
    "  --foreground      run the CA engine in this process instead of detaching\n";

static const char deactivate_usage[] =
    "usage: gmca [--dir DIR] deactivate\n"
    "\n"
    "Tells the CA engine to wipe the CA keys from memory and exit (CPS §7.2.1.8).\n";

/* The CA engine does not leave key material in a core file or to a debugger. */
static void harden(void)
{
        struct rlimit none = {0, 0};

        (void)setrlimit(RLIMIT_CORE, &none);
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void detach(void)
{
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        (void)setsid();
        if (fd >= 0) {
                (void)dup2(fd, STDIN_FILENO);
                (void)dup2(fd, STDOUT_FILENO);
                (void)dup2(fd, STDERR_FILENO);
                if (fd > STDERR_FILENO)
                        close(fd);
        }
}

/*
 * Start the CA engine as a process of its own from c, whose keys this
 * process has activated (gmca_ctx_activate): it detaches and serves, and
 * this returns once it listens, with *pid its process id. If it does not
 * start, the failure is audited (key.activate) and GMCA_ERR_STATE returned.
 * c stays the caller's to close; the engine has its own copy.
 */
int cli_engine_spawn(struct gmca_ctx *c, pid_t *pid, struct gmca_error *e)
{
        int pipefd[2], rc;
        pid_t child;
        char ready = 0;

        if (pipe(pipefd) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "pipe: %s", strerror(errno));
        fflush(NULL);
        if ((child = fork()) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "fork: %s", strerror(errno));
                close(pipefd[0]);
                close(pipefd[1]);
                return rc;
        }
        if (child == 0) {
                close(pipefd[0]);
                detach();
                rc = gmca_ctx_serve_engine(c, pipefd[1], e);
                /* The store belongs to the parent; leave without touching it. */
                _exit(rc == 0 ? 0 : 1);
        }
        close(pipefd[1]);
        while ((rc = (int)read(pipefd[0], &ready, 1)) < 0 && errno == EINTR)
                ;
        close(pipefd[0]);
        if (rc != 1) {
                struct gmca_error ae = {0};
                int status = 0;

                (void)waitpid(child, &status, 0);
                gmca_error_set(e, GMCA_ERR_STATE, "the CA engine did not start");
                if (gmca_ctx_audit_failure(c, GMCA_EV_KEY_ACTIVATE, "engine", e->msg, &ae) != 0) {
                        /* the cause above is what the operator needs */
                }
                return GMCA_ERR_STATE;
        }
        *pid = child;
        return 0;
}

int cmd_activate(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"share", required_argument, NULL, 's'}, {"pin-file", required_argument, NULL, 'p'},
            {"foreground", no_argument, NULL, 'f'},  {"direct-issue", no_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
        };
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        int ch, rc, foreground = 0, direct = 0;
        pid_t pid;

        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'f':
                        foreground = 1;
                        break;
                case 'd':
                        direct = 1;
                        break;
                case 'h':
                        fputs(activate_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("activate: unexpected argument '%s'", argv[optind]);
        harden();
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        /* A live engine is refused before anyone types a PIN. */
        if (gmca_ctx_use_engine(c, &e) == 0) {
                gmca_ctx_close(c);
                gmca_error_clear(&e);
                gmca_error_set(&e, GMCA_ERR_STATE, "%s: already activated (gmca deactivate first)",
                               cli->dir);
                return cli_fail(&e);
        }
        gmca_ctx_close(c);
        gmca_error_clear(&e);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        gmca_ctx_set_direct_issue(c, direct);
        if (cli_custody_collect(&k, 0, NULL, &e) != 0 || gmca_ctx_activate(c, k.cust, k.n, &e) != 0)
                goto fail;
        cli_custody_free(&k);
        gmca_ctx_forget_secrets(c); /* the engine needs the unlocked keys only */
        if (foreground) {
                printf("activated %s; CA engine serving (Ctrl-C or gmca deactivate stops it)\n",
                       cli->dir);
                fflush(stdout);
                rc = gmca_ctx_serve_engine(c, -1, &e);
                gmca_ctx_close(c);
                return rc == 0 ? EXIT_OK : cli_fail(&e);
        }
        if (cli_engine_spawn(c, &pid, &e) != 0) {
                gmca_ctx_close(c);
                return cli_fail(&e);
        }
        gmca_ctx_close(c);
        printf("activated %s; CA engine running (pid %ld)\n", cli->dir, (long)pid);
        return EXIT_OK;
fail:
        cli_custody_free(&k);
        gmca_ctx_close(c);
        return cli_fail(&e);
}

int cmd_deactivate(struct cli *cli, int argc, char **argv)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        int rc;

        if (argc > 1) {
                if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                        fputs(deactivate_usage, stdout);
                        return EXIT_OK;
                }
                return cli_usage_error("deactivate: unexpected argument '%s'", argv[1]);
        }
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_ctx_deactivate_engine(c, &e);
        gmca_ctx_close(c);
        if (rc != 0)
                return cli_fail(&e);
        printf("deactivated %s: CA keys wiped from memory\n", cli->dir);
        return EXIT_OK;
}
