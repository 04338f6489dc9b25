/*
 * gmca stats: the decision-support statistics (CPS §4.4.4, §4.6.4; stats.h)
 * on the operator's console, read straight from the store: the same report
 * as GET /api/v1/stats, as JSON (the default) or CSV on stdout.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stats.h"
#include "util.h"

static const char usage[] =
    "usage: gmca stats [--from DATE] [--to DATE] [--by type|profile|region|month|day]\n"
    "                  [--json | --csv]\n"
    "\n"
    "Certificates issued (by business type: new, renew, rekey, reissue, change,\n"
    "or cli for those issued outside the RA) and revoked in [from, to), and the\n"
    "time from application to issuance and from revocation request to completion\n"
    "(seconds and working days; revocations over the CPS's 24 hours), grouped\n"
    "by business type (default), certificate profile, region (the subject's ST),\n"
    "month or day.\n"
    "\n"
    "  --from DATE  YYYY-MM-DD (midnight, UTC+8) or YYYY-MM-DDTHH:MM:SSZ;\n"
    "               default 30 days before --to\n"
    "  --to DATE    the end, not included; default the end of today (UTC+8)\n"
    "  --json       one JSON object (default)\n"
    "  --csv        RFC 4180 CSV with a header row, the total last\n";

struct stats_opts {
        const char *from, *to;
        int by, csv;
};

static int parse_opts(int argc, char **argv, struct stats_opts *o, int *done)
{
        static const struct option opts[] = {
            {"from", required_argument, NULL, 'f'},
            {"to", required_argument, NULL, 't'},
            {"by", required_argument, NULL, 'b'},
            {"json", no_argument, NULL, 'j'},
            {"csv", no_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch, json = 0;

        *done = 0;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'f':
                        o->from = optarg;
                        break;
                case 't':
                        o->to = optarg;
                        break;
                case 'b':
                        if ((o->by = gmca_stats_by_parse(optarg)) < 0)
                                return cli_usage_error("--by: type, profile, region, month or day");
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'c':
                        o->csv = 1;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        *done = 1;
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("stats: unexpected argument '%s'", argv[optind]);
        if (json && o->csv)
                return cli_usage_error("stats: --json or --csv, not both");
        return EXIT_OK;
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
        struct stats_opts o = {NULL, NULL, GMCA_STATS_BY_TYPE, 0};
        struct gmca_error e = {0};
        struct gmca_stats *st = NULL;
        struct gmca_ctx *c;
        int64_t from, to;
        char *text = NULL;
        size_t len = 0;
        int rc, done;

        if ((rc = parse_opts(argc, argv, &o, &done)) != EXIT_OK || done)
                return rc;
        /* A bad date is a usage error, found before the store is opened. */
        if (gmca_stats_period(o.from, o.to, (int64_t)gmca_now(), &from, &to, &e) != 0)
                return cli_usage_error("%s", e.msg);
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_stats_compute(gmca_ctx_store(c), from, to, (enum gmca_stats_by)o.by, &st, &e);
        gmca_ctx_close(c);
        if (rc == GMCA_ERR_INVALID)
                return cli_usage_error("%s", e.msg); /* e.g. too many days to group by */
        if (rc != 0 || (rc = o.csv ? gmca_stats_csv(st, &text, &len, &e)
                                   : gmca_stats_json(st, &text, &len, &e)) != 0) {
                gmca_stats_free(st);
                return cli_fail(&e);
        }
        gmca_stats_free(st);
        rc = cli_output(NULL, text, len, &e);
        free(text);
        return rc != 0 ? cli_fail(&e) : EXIT_OK;
}
