/*
 * gmca km: the key management centre's own commands (km.h). The KM lives in
 * its own directory (--km-dir, default $GMCA_KM_DIR or ./var/gmca-km) with
 * its own custodians, so none of these touch the CA's state directory:
 *
 *   init      key ceremony: master key split to 5 custodians (3 to open),
 *             the KM signing key, a CSR for the CA (profile km)
 *   trust     custodians install the KM, CA and CA-communication certificates
 *   serve     custodians open the KM; it answers the CA engine until SIGTERM
 *   list      the escrowed keys (JSON, no secret)
 *   expire    keys past their certificate's notAfter become expired
 *   destroy   custodians destroy a key past its retention date (§7.2.1.4)
 *   audit verify   the KM's own hash chain
 *
 * `gmca km link` (the CA's side) lives in cmd_km_link.c. `test-request` is
 * a test aid standing in for the CA engine (a request signed with a given
 * key, the answer checked and its envelopes opened). `destroy` takes the
 * system clock as now, never a time it is given: the retention of
 * §7.2.1.4 is not for a variable of the environment to shorten.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "audit.h"
#include "cli.h"
#include "crypto.h"
#include "envelope.h"
#include "km.h"
#include "util.h"

#define DEFAULT_KM_DIR "./var/gmca-km"

static const char usage[] =
    "usage: gmca km <subcommand> [--km-dir DIR] [options]\n"
    "\n"
    "The key management centre (KM) of the dual-certificate system, in its own\n"
    "directory (--km-dir, default $GMCA_KM_DIR or " DEFAULT_KM_DIR ").\n"
    "\n"
    "  init --subject DN --custodian NAME --pin-file F (x5) --shares-out DIR\n"
    "       [--threshold 3] --csr-out FILE     key ceremony; CSR for profile km\n"
    "       [--db postgresql://...]            the KM's own empty database (else km.db)\n"
    "  trust --km-cert F --ca-cert F --ca-comm-cert F --share F --pin-file F (x3)\n"
    "  serve --share F --pin-file F (x3) [--socket PATH]   until SIGTERM\n"
    "  list [--state active|revoked|expired|destroyed]\n"
    "  expire                                   mark keys past notAfter expired\n"
    "  destroy --serial HEX --share F --pin-file F (x3)   past retention only\n"
    "  audit verify                             the KM's audit chain\n"
    "  link ...                                 (the CA's side: gmca km link --help)\n";

/* test-request --check-db: the KM database searched for each delivered private key. */
static const char *check_db;

struct km_opts {
        const char *km_dir, *subject, *shares_out, *csr_out, *km_cert, *ca_cert, *comm_cert;
        const char *socket, *state, *serial, *key, *cert, *sig_key, *kind, *db;
        unsigned threshold;
        int64_t time_offset, days;
        uint64_t task;
        int have_task;
        struct cli_custody cust;
        char seen[64];
};

static int parse_opts(int argc, char **argv, struct km_opts *o)
{
        static const struct option opts[] = {
            {"km-dir", required_argument, NULL, 'd'},
            {"subject", required_argument, NULL, 's'},
            {"custodian", required_argument, NULL, 'n'},
            {"share", required_argument, NULL, 'S'},
            {"pin-file", required_argument, NULL, 'p'},
            {"shares-out", required_argument, NULL, 'O'},
            {"threshold", required_argument, NULL, 't'},
            {"csr-out", required_argument, NULL, 'c'},
            {"km-cert", required_argument, NULL, 'k'},
            {"ca-cert", required_argument, NULL, 'a'},
            {"ca-comm-cert", required_argument, NULL, 'm'},
            {"socket", required_argument, NULL, 'u'},
            {"state", required_argument, NULL, 'x'},
            {"serial", required_argument, NULL, 'r'},
            {"key", required_argument, NULL, 'K'},
            {"cert", required_argument, NULL, 'C'},
            {"sig-key", required_argument, NULL, 'g'},
            {"kind", required_argument, NULL, 'i'},
            {"task", required_argument, NULL, 'T'},
            {"time-offset", required_argument, NULL, 'o'},
            {"days", required_argument, NULL, 'y'},
            {"check-db", required_argument, NULL, 'D'},
            {"db", required_argument, NULL, 'B'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch, v;

        memset(o, 0, sizeof(*o));
        o->km_dir = getenv("GMCA_KM_DIR") != NULL ? getenv("GMCA_KM_DIR") : DEFAULT_KM_DIR;
        o->days = 365;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (ch != 'd')
                        cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'd':
                        o->km_dir = optarg;
                        break;
                case 's':
                        o->subject = optarg;
                        break;
                case 'O':
                        o->shares_out = optarg;
                        break;
                case 'c':
                        o->csr_out = optarg;
                        break;
                case 'k':
                        o->km_cert = optarg;
                        break;
                case 'a':
                        o->ca_cert = optarg;
                        break;
                case 'm':
                        o->comm_cert = optarg;
                        break;
                case 'u':
                        o->socket = optarg;
                        break;
                case 'x':
                        o->state = optarg;
                        break;
                case 'r':
                        o->serial = optarg;
                        break;
                case 'K':
                        o->key = optarg;
                        break;
                case 'C':
                        o->cert = optarg;
                        break;
                case 'g':
                        o->sig_key = optarg;
                        break;
                case 'i':
                        o->kind = optarg;
                        break;
                case 'D':
                        check_db = optarg;
                        break;
                case 'B':
                        o->db = optarg;
                        break;
                case 'n':
                case 'S':
                case 'p':
                        if (cli_custody_option(&o->cust, ch == 'S' ? 's' : ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 't':
                        if ((v = cli_parse_int(optarg, 2, GMCA_CUSTODY_MAX)) < 0)
                                return cli_usage_error("--threshold: 2..%d", GMCA_CUSTODY_MAX);
                        o->threshold = (unsigned)v;
                        break;
                case 'T':
                        o->task = strtoull(optarg, NULL, 10);
                        o->have_task = 1;
                        break;
                case 'o':
                        o->time_offset = strtoll(optarg, NULL, 10);
                        break;
                case 'y':
                        if ((v = cli_parse_int(optarg, 1, 36500)) < 0)
                                return cli_usage_error("--days: 1..36500");
                        o->days = v;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("km: unexpected argument '%s'", argv[optind]);
        return 0;
}

static int km_init(struct cli *cli, struct km_opts *o)
{
        struct gmca_km_init_params p = {0};
        struct gmca_error e = {0};
        uint8_t *csr = NULL;
        size_t len = 0;
        int rc;

        if (o->subject == NULL || o->csr_out == NULL)
                return cli_usage_error("km init: --subject and --csr-out are required");
        if (cli_custody_collect(&o->cust, 1, o->shares_out, &e) != 0)
                return cli_fail(&e);
        p.subject = o->subject;
        p.database = o->db;
        p.custodians = o->cust.cust;
        p.ncustodians = o->cust.n;
        p.threshold = o->threshold;
        p.actor = cli->actor;
        if (gmca_km_init(o->km_dir, &p, &csr, &len, &e) != 0)
                return cli_fail(&e);
        rc = gmca_write_file_excl(o->csr_out, csr, len, 0644, &e);
        OPENSSL_free(csr);
        if (rc != 0)
                return cli_fail(&e);
        printf("initialised KM %s; CSR for the CA (profile km): %s\n", o->km_dir, o->csr_out);
        for (size_t i = 0; i < o->cust.n; i++)
                printf("share for %s: %s\n", o->cust.names[i], o->cust.paths[i]);
        return EXIT_OK;
}

static int km_trust(struct cli *cli, struct km_opts *o)
{
        struct gmca_error e = {0};
        X509 *km = NULL, *ca = NULL, *comm = NULL;
        int rc = EXIT_OK;

        if (o->km_cert == NULL || o->ca_cert == NULL || o->comm_cert == NULL)
                return cli_usage_error("km trust: --km-cert, --ca-cert and --ca-comm-cert");
        if ((km = cli_load_cert(o->km_cert, &e)) == NULL ||
            (ca = cli_load_cert(o->ca_cert, &e)) == NULL ||
            (comm = cli_load_cert(o->comm_cert, &e)) == NULL ||
            cli_custody_collect(&o->cust, 0, NULL, &e) != 0 ||
            gmca_km_trust(o->km_dir, o->cust.cust, o->cust.n, km, ca, comm, cli->actor, &e) != 0)
                rc = cli_fail(&e);
        else
                printf("KM %s trusts its CA; it serves only %s's holder\n", o->km_dir,
                       o->comm_cert);
        X509_free(km);
        X509_free(ca);
        X509_free(comm);
        return rc;
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
        (void)sig;
        stop_flag = 1;
}

static int km_serve(struct km_opts *o)
{
        struct gmca_error e = {0};
        struct sigaction sa;
        struct gmca_km *k;
        char sock[4096];
        int rc;

        if (o->socket != NULL)
                gmca_strlcpy(sock, o->socket, sizeof(sock));
        else if ((size_t)snprintf(sock, sizeof(sock), "%s/run/km.sock", o->km_dir) >= sizeof(sock))
                return cli_usage_error("km serve: --km-dir too long");
        if (cli_custody_collect(&o->cust, 0, NULL, &e) != 0)
                return cli_fail(&e);
        k = gmca_km_open(o->km_dir, o->cust.cust, o->cust.n, &e);
        cli_custody_free(&o->cust);
        if (k == NULL)
                return cli_fail(&e);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: poll returns and the loop sees the flag */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        fprintf(stderr, "gmca: KM serving at %s\n", sock);
        rc = gmca_km_serve(k, sock, &stop_flag, &e);
        gmca_km_close(k);
        return rc != 0 ? cli_fail(&e) : EXIT_OK;
}

static int list_one(const struct gmca_km_key_info *ki, void *arg)
{
        char nb[32], na[32], ru[32];

        gmca_time_iso((time_t)ki->not_before, nb, sizeof(nb));
        gmca_time_iso((time_t)ki->not_after, na, sizeof(na));
        gmca_time_iso((time_t)ki->retain_until, ru, sizeof(ru));
        return json_array_append_new((json_t *)arg,
                                     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}",
                                               "serial", ki->serial, "ca", ki->ca, "subject",
                                               ki->subject, "state", ki->state, "not_before", nb,
                                               "not_after", na, "retain_until", ru, "task",
                                               ki->task_no, "escrowed", ki->escrowed)) == 0
                   ? 0
                   : GMCA_ERR_NOMEM;
}

static int km_list(struct km_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_store *s = gmca_km_store_open(o->km_dir, &e);
        json_t *arr = json_array();
        int rc;

        if (s == NULL || arr == NULL) {
                json_decref(arr);
                return cli_fail(&e);
        }
        rc = gmca_km_list(s, o->state, list_one, arr, &e);
        gmca_store_close(s);
        if (rc != 0) {
                json_decref(arr);
                return cli_fail(&e);
        }
        return cli_print_json(arr);
}

static int km_expire(struct cli *cli, struct km_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_store *s = gmca_km_store_open(o->km_dir, &e);
        int64_t n = 0;
        int rc;

        if (s == NULL)
                return cli_fail(&e);
        rc = gmca_km_expire(s, gmca_now(), cli->actor, &n, &e);
        gmca_store_close(s);
        if (rc != 0)
                return cli_fail(&e);
        printf("%lld key(s) expired\n", (long long)n);
        return EXIT_OK;
}

static int km_destroy(struct cli *cli, struct km_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_km *k;
        int rc;

        if (o->serial == NULL)
                return cli_usage_error("km destroy: --serial HEX is required");
        if (cli_custody_collect(&o->cust, 0, NULL, &e) != 0)
                return cli_fail(&e);
        if ((k = gmca_km_open(o->km_dir, o->cust.cust, o->cust.n, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_km_destroy(k, o->serial, (int64_t)gmca_now(), cli->actor, &e);
        gmca_km_close(k);
        if (rc != 0)
                return cli_fail(&e);
        printf("destroyed the escrowed key of %s\n", o->serial);
        return EXIT_OK;
}

static int km_audit(int argc, char **argv, struct km_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_store *s;
        int64_t count = 0, bad = 0;
        int rc;

        (void)argc;
        (void)argv;
        if ((s = gmca_km_store_open(o->km_dir, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_audit_verify(s, &count, &bad, &e);
        gmca_store_close(s);
        if (rc != 0)
                return cli_fail(&e);
        printf("KM audit chain intact: %lld records\n", (long long)count);
        return EXIT_OK;
}

/* ---- test-request: a stand-in for the CA engine ---- */

static int exchange(const char *path, const uint8_t *req, size_t len, uint8_t **resp,
                    size_t *resp_len, struct gmca_error *e)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        struct timeval tv = {30, 0};
        uint8_t head[4];
        uint32_t n;
        int fd, rc = GMCA_ERR_IO;

        gmca_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
                if (fd >= 0)
                        close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "km: unreachable at %s", path);
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        gmca_put_be32(head, (uint32_t)len);
        if (gmca_write_all(fd, head, 4) != 0 || gmca_write_all(fd, req, len) != 0 ||
            gmca_read_all(fd, head, 4) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "km: no answer (request refused)");
                goto out;
        }
        n = gmca_get_be32(head);
        if (n == 0 || n > GMCA_KM_MSG_MAX || (*resp = OPENSSL_malloc(n)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "km: answer of %u bytes", n);
                goto out;
        }
        if (gmca_read_all(fd, *resp, n) != 0) {
                OPENSSL_free(*resp);
                *resp = NULL;
                rc = gmca_error_set(e, GMCA_ERR_IO, "km: answer cut short");
                goto out;
        }
        *resp_len = n;
        rc = 0;
out:
        close(fd);
        return rc;
}

static int build_request(const struct km_opts *o, EVP_PKEY *sig, struct gmca_km_msg *m,
                         struct gmca_error *e)
{
        struct gmca_km_item *it = &m->items[0];
        size_t len;

        memset(m, 0, sizeof(*m));
        m->time = gmca_now() + o->time_offset;
        if (o->have_task)
                m->task_no = o->task;
        else if (gmca_rand_bytes((uint8_t *)&m->task_no, sizeof(m->task_no), e) != 0)
                return e->code;
        m->task_no &= INT64_MAX;
        m->n = 1;
        if (o->serial == NULL ||
            gmca_unhex(o->serial, it->cert_no, sizeof(it->cert_no), &len) != 0 || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--serial: 1..20 bytes of hex");
        it->cert_no_len = len;
        it->kind = strcmp(o->kind, "apply") == 0     ? GMCA_KM_APPLY
                   : strcmp(o->kind, "restore") == 0 ? GMCA_KM_RESTORE
                   : strcmp(o->kind, "revoke") == 0  ? GMCA_KM_REVOKE
                                                     : -1;
        if (it->kind < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--kind apply|restore|revoke");
        if (it->kind == GMCA_KM_REVOKE)
                return 0;
        if (sig == NULL || EVP_PKEY_up_ref(sig) != 1)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--sig-key is required");
        it->user_pub = sig;
        if (it->kind == GMCA_KM_APPLY) {
                it->not_before = gmca_now();
                it->not_after = it->not_before + o->days * 86400;
                it->user_name = strdup("CN=test subscriber");
        } else
                it->info = strdup("{\"kind\":\"subscriber\",\"reason\":\"test\"}");
        return 0;
}

/* 1 if the 32 bytes of d are in check_db or its write-ahead log. */
static int db_has(EVP_PKEY *pair)
{
        static const char *const suffix[] = {"", "-wal"};
        struct gmca_error e = {0};
        BIGNUM *bn = NULL;
        uint8_t d[32], *buf;
        char path[4096];
        size_t len;
        int found = 0;

        if (EVP_PKEY_get_bn_param(pair, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
            BN_bn2binpad(bn, d, sizeof(d)) != (int)sizeof(d)) {
                BN_clear_free(bn);
                return 1; /* cannot tell: report the worst */
        }
        BN_clear_free(bn);
        for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof(path), "%s%s", check_db, suffix[i]);
                if (gmca_read_file(path, 1u << 30, &buf, &len, &e) != 0)
                        continue;
                found |= memmem(buf, len, d, sizeof(d)) != NULL;
                free(buf);
        }
        OPENSSL_cleanse(d, sizeof(d));
        return found;
}

/* The answer's item as JSON; opens an envelope with the signature key. */
static json_t *item_json(const struct gmca_km_item *it, EVP_PKEY *sig, int *fail)
{
        static const char *const kinds[] = {"apply", "restore", "revoke", "error"};
        struct gmca_error e = {0};
        json_t *j = json_pack("{s:s}", "kind", kinds[it->kind & 3]);
        EVP_PKEY *got;

        if (it->kind == GMCA_KM_ERROR) {
                json_object_set_new(j, "errno", json_integer(it->err_no));
                json_object_set_new(j, "desc", json_string(it->err_desc ? it->err_desc : ""));
                *fail = it->err_no == GMCA_KM_E_NOTFOUND  ? GMCA_ERR_NOTFOUND
                        : it->err_no == GMCA_KM_E_STATE   ? GMCA_ERR_STATE
                        : it->err_no == GMCA_KM_E_EXISTS  ? GMCA_ERR_EXISTS
                        : it->err_no == GMCA_KM_E_INVALID ? GMCA_ERR_INVALID
                                                          : GMCA_ERR_INTERNAL;
                return j;
        }
        if (it->envelope == NULL)
                return j;
        got = gmca_envelope_open(it->envelope, it->envelope_len, sig, &e);
        json_object_set_new(j, "opened", json_boolean(got != NULL));
        json_object_set_new(j, "pub_matches",
                            json_boolean(got != NULL && EVP_PKEY_eq(got, it->ret_pub) == 1));
        if (got == NULL || EVP_PKEY_eq(got, it->ret_pub) != 1)
                *fail = 1;
        if (got != NULL && check_db != NULL) {
                int in_db = db_has(got);

                json_object_set_new(j, "key_in_db", json_boolean(in_db));
                *fail |= in_db;
        }
        EVP_PKEY_free(got);
        if (it->blob != NULL) {
                got = gmca_envelope_blob_open(it->blob, it->blob_len, sig, &e);
                json_object_set_new(
                    j, "blob_opened",
                    json_boolean(got != NULL && EVP_PKEY_eq(got, it->ret_pub) == 1));
                EVP_PKEY_free(got);
        }
        return j;
}

static int answer_check(const struct km_opts *o, const struct gmca_km_msg *req, const uint8_t *der,
                        size_t len, EVP_PKEY *sig, struct gmca_error *e)
{
        struct gmca_km_msg r;
        X509 *km = NULL;
        json_t *items;
        int fail = 0, rc;

        memset(&r, 0, sizeof(r));
        if ((km = cli_load_cert(o->km_cert, e)) == NULL)
                return e->code;
        if ((rc = gmca_km_msg_parse(der, len, 1, &r, e)) != 0 ||
            (rc = gmca_km_msg_verify(&r, km, e)) != 0)
                goto out;
        if (r.task_no != req->task_no || r.n != req->n) {
                rc = gmca_error_set(e, GMCA_ERR_VERIFY, "km: the answer is not for this task");
                goto out;
        }
        items = json_array();
        for (size_t i = 0; i < r.n; i++)
                json_array_append_new(items, item_json(&r.items[i], sig, &fail));
        cli_print_json(json_pack("{s:I, s:o}", "task", (json_int_t)r.task_no, "items", items));
        rc = fail == 0 ? 0 : fail < 0 ? fail : GMCA_ERR_TAMPER;
        if (fail)
                gmca_error_set(e, rc, "km: the KM refused an item, or its envelope is wrong");
out:
        gmca_km_msg_clear(&r);
        X509_free(km);
        return rc;
}

static int km_test_request(struct km_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_pkey_signer signer;
        struct gmca_km_msg m;
        EVP_PKEY *key = NULL, *sig = NULL;
        X509 *cert = NULL;
        uint8_t *der = NULL, *resp = NULL;
        size_t len = 0, resp_len = 0;
        int rc;

        memset(&m, 0, sizeof(m));
        if (o->socket == NULL || o->key == NULL || o->cert == NULL || o->kind == NULL ||
            o->km_cert == NULL)
                return cli_usage_error("km test-request: --socket --key --cert --km-cert --kind "
                                       "--serial [--sig-key]");
        if ((key = cli_load_key(o->key, NULL, &e)) == NULL ||
            (cert = cli_load_cert(o->cert, &e)) == NULL ||
            (o->sig_key != NULL && (sig = cli_load_key(o->sig_key, NULL, &e)) == NULL) ||
            gmca_pkey_signer_init(&signer, key, NULL, &e) != 0 ||
            build_request(o, sig, &m, &e) != 0 ||
            gmca_km_msg_sign(&m, cert, &signer.base, &der, &len, &e) != 0 ||
            exchange(o->socket, der, len, &resp, &resp_len, &e) != 0 ||
            answer_check(o, &m, resp, resp_len, sig, &e) != 0)
                rc = cli_fail(&e);
        else
                rc = EXIT_OK;
        gmca_km_msg_clear(&m);
        OPENSSL_free(der);
        OPENSSL_free(resp);
        X509_free(cert);
        EVP_PKEY_free(key);
        EVP_PKEY_free(sig);
        return rc;
}

static int dispatch(struct cli *cli, const char *sub, int argc, char **argv, struct km_opts *o)
{
        if (strcmp(sub, "init") == 0)
                return cli_only_options(o->seen, "snpOtcB", "km init") ? EXIT_USAGE
                                                                       : km_init(cli, o);
        if (strcmp(sub, "trust") == 0)
                return cli_only_options(o->seen, "kamSp", "km trust") ? EXIT_USAGE
                                                                      : km_trust(cli, o);
        if (strcmp(sub, "serve") == 0)
                return cli_only_options(o->seen, "Spu", "km serve") ? EXIT_USAGE : km_serve(o);
        if (strcmp(sub, "list") == 0)
                return cli_only_options(o->seen, "x", "km list") ? EXIT_USAGE : km_list(o);
        if (strcmp(sub, "expire") == 0)
                return cli_only_options(o->seen, "", "km expire") ? EXIT_USAGE : km_expire(cli, o);
        if (strcmp(sub, "destroy") == 0)
                return cli_only_options(o->seen, "rSp", "km destroy") ? EXIT_USAGE
                                                                      : km_destroy(cli, o);
        if (strcmp(sub, "test-request") == 0)
                return cli_only_options(o->seen, "uKCkgirToyD", "km test-request")
                           ? EXIT_USAGE
                           : km_test_request(o);
        (void)argc;
        (void)argv;
        return cli_usage_error("km: unknown subcommand '%s'", sub);
}

int cmd_km(struct cli *cli, int argc, char **argv)
{
        struct km_opts o;
        const char *sub;
        int rc;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        sub = argv[1];
        if (strcmp(sub, "link") == 0) /* the CA's side, cmd_km_link.c */
                return cmd_km_link(cli, argc - 1, argv + 1);
        if (strcmp(sub, "audit") == 0) {
                if (argc < 3 || strcmp(argv[2], "verify") != 0)
                        return cli_usage_error("km audit: the subcommand is verify");
                if ((rc = parse_opts(argc - 2, argv + 2, &o)) != 0)
                        return rc < 0 ? EXIT_OK : rc;
                rc = cli_only_options(o.seen, "", "km audit verify") ? EXIT_USAGE
                                                                     : km_audit(argc, argv, &o);
                cli_custody_free(&o.cust);
                return rc;
        }
        if ((rc = parse_opts(argc - 1, argv + 1, &o)) != 0) {
                cli_custody_free(&o.cust);
                return rc < 0 ? EXIT_OK : rc;
        }
        rc = dispatch(cli, sub, argc, argv, &o);
        cli_custody_free(&o.cust);
        return rc;
}
