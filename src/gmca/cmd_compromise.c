/*
 * gmca ca compromise: the CA compromise procedure of CPS §6.10.3 as one
 * restartable ceremony (see ca_compromise.c), with its progress on stderr
 * and its result as JSON on stdout. gmca ca reissues: the old → new serial
 * list of a compromise job, for telling subscribers and relying parties.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

static const char compromise_usage[] =
    "usage: gmca [--dir DIR] ca compromise --ca NAME [--name NEW] [--dn DN] [--days N]\n"
    "                                      [--batch N] --share FILE --pin-file FILE ...\n"
    "\n"
    "The CA compromise procedure (CPS §6.10.3), with the custodians present and the\n"
    "CA engine stopped (gmca deactivate first): the CA's key is marked compromised;\n"
    "a new key and CA certificate are made (by the parent CA, or self-signed for a\n"
    "root) and the new CA becomes the default if the old one was; every certificate\n"
    "the old CA issued is revoked with reason cACompromise and, if still valid,\n"
    "re-issued under the new CA with the same subject, public key and end date;\n"
    "then the old key signs its final CRL. CAs under a compromised root are re-homed\n"
    "under the new root.\n"
    "\n"
    "If it stops midway (killed, power lost), run the same command again with the\n"
    "custodians: it carries on where it stopped and issues nothing twice.\n"
    "\n"
    "  --ca NAME        the compromised CA (required: never assumed)\n"
    "  --name NEW       name of the new CA (default NAME-g2, -g3, ...)\n"
    "  --dn DN          its subject (default: the old CA's)\n"
    "  --days N         its validity (default: the CA profile's)\n"
    "  --batch N        certificates per transaction, 1..10000 (default 500)\n"
    "  --share FILE     a custodian's share file (once per custodian present)\n"
    "  --pin-file FILE  that custodian's PIN, same order (else asked on the terminal)\n"
    "\n"
    "Prints {\"job\", \"new_ca\", \"revoked\", \"reissued\", \"crl_number\"}; the old → new\n"
    "serials: gmca ca reissues --job JOB.\n";

static const char reissues_usage[] =
    "usage: gmca [--dir DIR] ca reissues --job JOB [--json]\n"
    "\n"
    "The certificates a CA compromise re-issued, in the order it did so: one line\n"
    "\"OLD → NEW TIME\" each (serials in hex), or a JSON array of\n"
    "{\"old\", \"new\", \"time\"}. JOB is the job the compromise printed (it is named\n"
    "after the new CA).\n";

struct progress {
        int tty;
        int last_pct;
        double t0;
        uint64_t first; /* done when this run started */
};

static double mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* On a terminal one line redrawn; otherwise a line per 10%. */
static void show_progress(void *arg, uint64_t done, uint64_t total)
{
        struct progress *pg = arg;
        int pct = total > 0 ? (int)(done * 100 / total) : 100;
        double el = mono() - pg->t0;

        if (pg->t0 == 0) {
                pg->t0 = mono();
                pg->first = done;
                pg->last_pct = -100;
                el = 0;
        }
        if (!pg->tty && pct < 100 && pct - pg->last_pct < 10)
                return;
        pg->last_pct = pct;
        fprintf(stderr, "%scompromise: %llu of %llu certificates revoked and re-issued (%d%%)",
                pg->tty ? "\r" : "", (unsigned long long)done, (unsigned long long)total, pct);
        if (el > 0.5 && done > pg->first)
                fprintf(stderr, ", %.0f/s", (double)(done - pg->first) / el);
        fputs(pg->tty ? "\033[K" : "\n", stderr);
        fflush(stderr);
}

int cmd_ca_compromise(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"ca", required_argument, NULL, 'a'},
            {"name", required_argument, NULL, 'n'},
            {"dn", required_argument, NULL, 'd'},
            {"days", required_argument, NULL, 'D'},
            {"batch", required_argument, NULL, 'b'},
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_compromise_params p;
        struct gmca_compromise_result res;
        struct progress pg;
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        int ch, rc, v;

        memset(&p, 0, sizeof(p));
        memset(&k, 0, sizeof(k));
        memset(&pg, 0, sizeof(pg));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'a':
                        p.ca = optarg;
                        break;
                case 'n':
                        p.new_name = optarg;
                        break;
                case 'd':
                        p.dn = optarg;
                        break;
                case 'D':
                        if ((p.days = cli_parse_int(optarg, 1, 36525)) < 0)
                                return cli_usage_error("ca compromise: --days must be 1..36525");
                        break;
                case 'b':
                        if ((v = cli_parse_int(optarg, 1, 10000)) < 0)
                                return cli_usage_error("ca compromise: --batch must be 1..10000");
                        p.batch = (size_t)v;
                        break;
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        fputs(compromise_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("ca compromise: unexpected argument '%s'", argv[optind]);
        if (p.ca == NULL)
                return cli_usage_error("ca compromise: --ca NAME is required (which CA's key is "
                                       "compromised is never assumed)");
        if (k.nshares == 0)
                return cli_usage_error("ca compromise: the custodians' --share FILE --pin-file "
                                       "FILE are needed");
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        if (cli_custody_collect(&k, 0, NULL, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        pg.tty = isatty(STDERR_FILENO);
        p.progress = show_progress;
        p.progress_arg = &pg;
        rc = gmca_ca_compromise(c, k.cust, k.n, &p, &res, &e);
        if (pg.tty && pg.t0 != 0)
                fputc('\n', stderr);
        if (rc != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        rc = cli_print_json(json_pack("{s:s, s:s, s:I, s:I, s:I}", "job", res.job, "new_ca",
                                      res.new_ca, "revoked", (json_int_t)res.revoked, "reissued",
                                      (json_int_t)res.reissued, "crl_number",
                                      (json_int_t)res.crl_number));
out:
        cli_custody_free(&k);
        gmca_ctx_close(c);
        return rc;
}

struct reissue_list {
        json_t *arr; /* NULL: text */
        uint64_t n;
};

static int reissue_one(const char *old_serial, const char *new_serial, int64_t when, void *arg)
{
        struct reissue_list *l = arg;
        char t[32];

        gmca_time_iso((time_t)when, t, sizeof(t));
        l->n++;
        if (l->arr != NULL)
                return json_array_append_new(l->arr, json_pack("{s:s, s:s, s:s}", "old", old_serial,
                                                               "new", new_serial, "time", t)) == 0
                           ? 0
                           : 1;
        printf("%s → %s %s\n", old_serial, new_serial, t);
        return 0;
}

int cmd_ca_reissues(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"job", required_argument, NULL, 'J'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct reissue_list l = {NULL, 0};
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        const char *job = NULL;
        int ch, json = 0, rc;

        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'J':
                        job = optarg;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        fputs(reissues_usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("ca reissues: unexpected argument '%s'", argv[optind]);
        if (job == NULL)
                return cli_usage_error("ca reissues: --job JOB is required");
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        if (json && (l.arr = json_array()) == NULL) {
                gmca_ctx_close(c);
                gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                return cli_fail(&e);
        }
        rc = gmca_store_reissue_list(gmca_ctx_store(c), job, reissue_one, &l, &e);
        if (rc == 0 && l.n == 0) {
                /* An empty list is a job that re-issued nothing, or no job at all. */
                struct gmca_ca_rec r;

                memset(&r, 0, sizeof(r));
                if (gmca_store_ca_get(gmca_ctx_store(c), job, &r, &e) != 0) {
                        gmca_error_clear(&e);
                        rc = gmca_error_set(&e, GMCA_ERR_NOTFOUND, "no compromise job %s", job);
                }
                gmca_ca_rec_clear(&r);
        } else if (rc == 1) {
                rc = gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
        }
        gmca_ctx_close(c);
        if (rc != 0) {
                json_decref(l.arr);
                return cli_fail(&e);
        }
        return json ? cli_print_json(l.arr) : EXIT_OK;
}
