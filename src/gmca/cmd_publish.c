/*
 * gmca publish: where each delivery channel of the change feed (publish.h:
 * the LDAP directory, the sync receivers) stands, and moving a channel's
 * cursor by hand — to send a directory rebuilt from nothing everything
 * again (--to 0), or to pass over events an operator has dealt with
 * otherwise. A reset is audited (publish.reset), a refused one too.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "ca.h"
#include "cli.h"
#include "publish.h"
#include "util.h"

static const char usage[] =
    "usage: gmca publish <subcommand> [options]\n"
    "\n"
    "  status [--json]   each channel (ldap, sync:NAME): the last event delivered, the\n"
    "                    events pending, failed attempts at the next one, when it is\n"
    "                    tried again and the last error\n"
    "  reset --channel C --to N\n"
    "                    make C continue after event N (0: deliver everything again;\n"
    "                    deliveries are idempotent). Audited. Stop gmca serve first or\n"
    "                    expect the channel to carry on from where its worker was\n";

struct status_list {
        struct gmca_store *s;
        json_t *arr;
        struct gmca_error *e;
};

static int one(const char *channel, void *arg)
{
        struct status_list *l = arg;
        struct gmca_publish_state st;
        char next[32] = "";
        json_t *o;

        if (gmca_publish_state(l->s, channel, &st, l->e) != 0)
                return 1;
        if (st.next_at > 0)
                gmca_time_iso((time_t)st.next_at, next, sizeof(next));
        o = json_pack("{s:s, s:I, s:I, s:i}", "channel", channel, "last_event",
                      (json_int_t)st.last_event, "pending", (json_int_t)st.pending, "attempts",
                      st.attempts);
        if (o == NULL || json_array_append_new(l->arr, o) != 0) {
                gmca_error_set(l->e, GMCA_ERR_NOMEM, "out of memory");
                return 1;
        }
        json_object_set_new(o, "next_attempt", next[0] ? json_string(next) : json_null());
        json_object_set_new(o, "last_error",
                            st.last_error[0] ? json_string(st.last_error) : json_null());
        return 0;
}

static void print_text(json_t *arr)
{
        size_t i;
        json_t *o;

        json_array_foreach(arr, i, o)
        {
                const char *err = json_string_value(json_object_get(o, "last_error"));

                printf("%-24s last event %lld, %lld pending, %lld failed attempts%s%s\n",
                       json_string_value(json_object_get(o, "channel")),
                       (long long)json_integer_value(json_object_get(o, "last_event")),
                       (long long)json_integer_value(json_object_get(o, "pending")),
                       (long long)json_integer_value(json_object_get(o, "attempts")),
                       err ? ": " : "", err ? err : "");
        }
}

static int status(struct gmca_ctx *c, int json)
{
        struct gmca_error e = {0};
        struct status_list l = {gmca_ctx_store(c), json_array(), &e};

        if (l.arr == NULL)
                return cli_fail(&(struct gmca_error){GMCA_ERR_NOMEM, "out of memory"});
        if (gmca_publish_channels(l.s, one, &l, &e) != 0 || e.code != 0) {
                json_decref(l.arr);
                return cli_fail(&e);
        }
        if (json)
                return cli_print_json(l.arr);
        print_text(l.arr);
        json_decref(l.arr);
        return EXIT_OK;
}

/* The reset and its audit record (success or refusal). */
static int reset(struct cli *cli, struct gmca_ctx *c, const char *channel, int64_t to)
{
        struct gmca_store *s = gmca_ctx_store(c);
        struct gmca_publish_state st;
        struct gmca_error e = {0}, ae = {0};
        struct gmca_audit_event ev;
        char detail[256], object[GMCA_PUBLISH_CHANNEL_MAX + 8];
        int rc;

        memset(&st, 0, sizeof(st));
        if ((rc = gmca_publish_state(s, channel, &st, &e)) == 0)
                rc = gmca_publish_reset(s, channel, to, &e);
        snprintf(object, sizeof(object), "channel:%s", channel);
        snprintf(detail, sizeof(detail), "{\"from\":%lld,\"to\":%lld}", (long long)st.last_event,
                 (long long)to);
        ev = (struct gmca_audit_event){GMCA_EV_PUBLISH_RESET, cli->actor, rc == 0, object, detail};
        if (gmca_store_begin(s, &ae) != 0 || gmca_audit_append(s, &ev, &ae) != 0 ||
            gmca_store_commit(s, &ae) != 0) {
                if (gmca_store_in_transaction(s))
                        gmca_store_rollback(s);
                return cli_fail(rc != 0 ? &e : &ae);
        }
        if (rc != 0)
                return cli_fail(&e);
        printf("%s: continues after event %lld (was %lld)\n", channel, (long long)to,
               (long long)st.last_event);
        return EXIT_OK;
}

/* A decimal event id, or -1. */
static long long parse_id(const char *s)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < 0 || s[0] == '+' || s[0] == ' ')
                return -1;
        return v;
}

int cmd_publish(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, 'j'},
            {"channel", required_argument, NULL, 'c'},
            {"to", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        const char *sub, *channel = NULL;
        long long to = -1;
        int ch, json = 0, rc;

        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        sub = argv[1];
        argc--;
        argv++;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'j':
                        json = 1;
                        break;
                case 'c':
                        channel = optarg;
                        break;
                case 't':
                        if ((to = parse_id(optarg)) < 0)
                                return cli_usage_error("--to: an event id >= 0");
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("publish: unexpected argument '%s'", argv[optind]);
        if (strcmp(sub, "status") != 0 && strcmp(sub, "reset") != 0)
                return cli_usage_error("publish: unknown subcommand '%s'", sub);
        if (strcmp(sub, "reset") == 0 && (channel == NULL || to < 0))
                return cli_usage_error("publish reset: --channel and --to are required");
        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL)
                return cli_fail(&e);
        rc = strcmp(sub, "status") == 0 ? status(c, json) : reset(cli, c, channel, (int64_t)to);
        gmca_ctx_close(c);
        return rc;
}
