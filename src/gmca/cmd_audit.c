/*
 * gmca audit: verify the hash chain of the audit log (CPS §6.4) and list
 * records by time, event and actor (§6.5, §6.6).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "crypto.h"
#include "util.h"

static const char usage[] =
    "usage: gmca audit <subcommand> [options]\n"
    "\n"
    "  verify   check every record's hash and link, and the chain head;\n"
    "           names the first bad record (exit 7) if any\n"
    "  list     [--since T] [--until T] [--event E] [--actor A] [--limit N] [--json]\n"
    "           T: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ; E: exact or prefix* (cert.*)\n";

struct audit_list_state {
        int json;
        json_t *arr;
};

static int audit_one(const struct gmca_audit_rec *r, void *arg)
{
        struct audit_list_state *st = arg;
        char t[32], hash[65];

        gmca_time_iso((time_t)(r->time / 1000000), t, sizeof(t));
        gmca_hex(r->hash, sizeof(r->hash), hash);
        if (st->json) {
                json_t *j =
                    json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)r->seq,
                              "time", t, "time_us", (json_int_t)r->time, "event", r->event, "actor",
                              r->actor, "outcome", r->success ? "success" : "failure", "object",
                              r->object, "hash", hash);

                if (j != NULL && r->detail != NULL)
                        json_object_set_new(j, "detail", json_string(r->detail));
                return json_array_append_new(st->arr, j) == 0 ? 0 : 1;
        }
        printf("%6lld %s %-14s %-7s %-20s %-34s %s\n", (long long)r->seq, t, r->event,
               r->success ? "success" : "FAILURE", r->actor, r->object[0] ? r->object : "-",
               r->detail ? r->detail : "");
        return 0;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 'u'},
            {"event", required_argument, NULL, 'e'}, {"actor", required_argument, NULL, 'a'},
            {"limit", required_argument, NULL, 'l'}, {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
        };
        struct gmca_error e = {0};
        struct gmca_audit_filter f;
        struct gmca_ctx *c;
        const char *sub;
        int json = 0, ch, rc;
        time_t t;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        sub = argv[1];
        argc--;
        argv++;
        memset(&f, 0, sizeof(f));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 's':
                case 'u':
                        if (gmca_time_parse(optarg, &t) != 0)
                                return cli_usage_error("--%s: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
                                                       ch == 's' ? "since" : "until");
                        *(ch == 's' ? &f.since : &f.until) = (int64_t)t * 1000000;
                        break;
                case 'e':
                        f.event = optarg;
                        break;
                case 'a':
                        f.actor = optarg;
                        break;
                case 'l':
                        if ((rc = cli_parse_int(optarg, 1, 100000000)) < 0)
                                return cli_usage_error("--limit: 1..100000000");
                        f.limit = rc;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("audit: unexpected argument '%s'", argv[optind]);
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        if (strcmp(sub, "verify") == 0) {
                int64_t count = 0, bad = 0;

                rc = gmca_audit_verify(gmca_ctx_store(c), &count, &bad, &e);
                gmca_ctx_close(c);
                if (rc != 0)
                        return cli_fail(&e);
                printf("audit chain intact: %lld records\n", (long long)count);
                return EXIT_OK;
        }
        if (strcmp(sub, "list") == 0) {
                struct audit_list_state st = {json, json ? json_array() : NULL};

                rc = gmca_store_audit_iter(gmca_ctx_store(c), &f, audit_one, &st, &e);
                gmca_ctx_close(c);
                if (rc != 0) {
                        json_decref(st.arr);
                        return cli_fail(&e);
                }
                return json ? cli_print_json(st.arr) : EXIT_OK;
        }
        gmca_ctx_close(c);
        return cli_usage_error("audit: unknown subcommand '%s'", sub);
}
