/*
 * gmca cert: issue, show, list, export and revoke certificates.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli.h"
#include "crl.h"
#include "util.h"
#include "x509.h"

static const char usage[] =
    "usage: gmca cert <subcommand> [options]\n"
    "\n"
    "  issue  --profile P --csr FILE [--info FILE] [--ca NAME] [--days N] [--out FILE]\n"
    "         [--share FILE --pin-file FILE ...]\n"
    "         Check the PKCS#10 request (SM2 proof of possession with the profile's\n"
    "         SM2 ID), apply the profile and issue. --info is a JSON file with the\n"
    "         GM/T 0015 private extensions and subjectAltName entries, e.g.\n"
    "         {\"identity_card_number\": \"...\", \"san\": {\"dns\": [\"a.gov.cn\"]}}.\n"
    "         Prints the certificate (PEM) or, with --out, writes it and prints\n"
    "         the serial. Needs the CA activated (gmca activate). Unless it was\n"
    "         activated with --direct-issue, the custodians authorise the issuance:\n"
    "         --share and --pin-file of each of the threshold of them (audited).\n"
    "  show   --serial S [--json | --pem]\n"
    "  list   [--ca NAME] [--status valid|revoked|expired] [--profile P]\n"
    "         [--subject TEXT] [--limit N] [--offset N] [--json]\n"
    "  export --serial S [--der] [--out FILE]\n"
    "  revoke --serial S --reason R [--invalidity-date YYYY-MM-DD[THH:MM:SSZ]]\n"
    "         R: unspecified keyCompromise cACompromise affiliationChanged\n"
    "         superseded cessationOfOperation privilegeWithdrawn\n";

struct cert_opts {
        const char *profile, *csr, *info, *ca, *out, *serial, *status, *subject, *reason;
        const char *invalidity;
        int days, limit, offset, json, pem, der;
        char seen[32];        /* option letters given, to refuse those a subcommand ignores */
        struct cli_custody k; /* issue: custodians who authorise it */
};

static int parse_opts(struct cli *cli, int argc, char **argv, struct cert_opts *o)
{
        static const struct option opts[] = {
            {"profile", required_argument, NULL, 'f'},
            {"csr", required_argument, NULL, 'c'},
            {"info", required_argument, NULL, 'i'},
            {"ca", required_argument, NULL, 'a'},
            {"days", required_argument, NULL, 'd'},
            {"out", required_argument, NULL, 'o'},
            {"serial", required_argument, NULL, 's'},
            {"status", required_argument, NULL, 't'},
            {"subject", required_argument, NULL, 'S'},
            {"limit", required_argument, NULL, 'l'},
            {"offset", required_argument, NULL, 'O'},
            {"reason", required_argument, NULL, 'r'},
            {"invalidity-date", required_argument, NULL, 'I'},
            {"json", no_argument, NULL, 'j'},
            {"pem", no_argument, NULL, 'm'},
            {"der", no_argument, NULL, 'D'},
            {"share", required_argument, NULL, 'K'},
            {"pin-file", required_argument, NULL, 'P'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int ch;

        memset(o, 0, sizeof(*o));
        o->limit = 0;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                cli_seen_option(o->seen, sizeof(o->seen), ch);
                switch (ch) {
                case 'f':
                        o->profile = optarg;
                        break;
                case 'c':
                        o->csr = optarg;
                        break;
                case 'i':
                        o->info = optarg;
                        break;
                case 'a':
                        o->ca = optarg;
                        break;
                case 'd':
                        if ((o->days = cli_parse_int(optarg, 1, 36500)) < 0)
                                return cli_usage_error("--days: 1..36500");
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 's':
                        o->serial = optarg;
                        break;
                case 't':
                        o->status = optarg;
                        break;
                case 'S':
                        o->subject = optarg;
                        break;
                case 'l':
                        if ((o->limit = cli_parse_int(optarg, 1, 1000000)) < 0)
                                return cli_usage_error("--limit: 1..1000000");
                        break;
                case 'O':
                        if ((o->offset = cli_parse_int(optarg, 0, 1000000000)) < 0)
                                return cli_usage_error("--offset: 0..1000000000");
                        break;
                case 'r':
                        o->reason = optarg;
                        break;
                case 'I':
                        o->invalidity = optarg;
                        break;
                case 'j':
                        o->json = 1;
                        break;
                case 'm':
                        o->pem = 1;
                        break;
                case 'D':
                        o->der = 1;
                        break;
                case 'K':
                case 'P':
                        if (cli_custody_option(&o->k, ch == 'K' ? 's' : 'p', optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return -1;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("cert: unexpected argument '%s'", argv[optind]);
        return 0;
}

static int pem_of(const uint8_t *der, size_t len, char **pem, size_t *pemlen)
{
        const uint8_t *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;
        int rc = -1;

        if (x != NULL && b != NULL && PEM_write_bio_X509(b, x) == 1) {
                n = BIO_get_mem_data(b, &data);
                if ((*pem = malloc((size_t)n + 1)) != NULL) {
                        memcpy(*pem, data, (size_t)n);
                        (*pem)[n] = '\0';
                        *pemlen = (size_t)n;
                        rc = 0;
                }
        }
        X509_free(x);
        BIO_free(b);
        return rc;
}

static int cert_issue(struct cli *cli, struct cert_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        struct gmca_issue_req r;
        uint8_t *csr = NULL, *info = NULL;
        size_t csr_len = 0, info_len = 0, pemlen = 0;
        char serial[GMCA_SERIAL_HEX_MAX];
        X509 *cert = NULL;
        BIO *b = NULL;
        char *pem;
        int rc = EXIT_FAIL;

        if (o->profile == NULL || o->csr == NULL)
                return cli_usage_error("cert issue: --profile and --csr are required");
        if ((c = cli_open(cli, o->ca, 1, &e)) == NULL)
                return cli_fail(&e);
        /* The custodians present authorise this issuance (refusals audited). */
        if (o->k.nshares > 0 || o->k.npins > 0) {
                int ok = cli_custody_collect(&o->k, 0, NULL, &e) == 0 &&
                         gmca_ctx_authorise(c, o->k.cust, o->k.n, &e) == 0;

                cli_custody_free(&o->k);
                if (!ok) {
                        rc = cli_fail(&e);
                        goto out;
                }
        }
        /*
         * Files that cannot be read are input errors too: audit them as
         * rejected requests, like a CSR that does not parse.
         */
        if (gmca_read_file(o->csr, GMCA_CSR_MAX, &csr, &csr_len, &e) != 0 ||
            (o->info != NULL &&
             gmca_read_file(o->info, GMCA_CERT_MAX, &info, &info_len, &e) != 0)) {
                struct gmca_error ae = {0};

                if (gmca_ctx_audit_failure(c, "cert.issue", o->profile, e.msg, &ae) != 0)
                        fprintf(stderr, "gmca: %s\n", ae.msg);
                rc = cli_fail(&e);
                goto out;
        }
        memset(&r, 0, sizeof(r));
        r.ca = o->ca;
        r.profile = o->profile;
        r.csr = csr;
        r.csr_len = csr_len;
        r.info_json = (const char *)info;
        r.info_len = info_len;
        r.days = o->days;
        if (gmca_ca_issue(c, &r, serial, &cert, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, cert) != 1) {
                fprintf(stderr, "gmca: issued %s but cannot encode it; use gmca cert export\n",
                        serial);
                goto out;
        }
        pemlen = (size_t)BIO_get_mem_data(b, &pem);
        if (cli_output(o->out, pem, pemlen, &e) != 0) {
                fprintf(stderr, "gmca: issued %s but %s; use gmca cert export\n", serial, e.msg);
                goto out;
        }
        if (o->out != NULL)
                printf("%s\n", serial);
        else
                fprintf(stderr, "gmca: issued serial %s\n", serial);
        rc = EXIT_OK;
out:
        BIO_free(b);
        X509_free(cert);
        free(csr);
        free(info);
        gmca_ctx_close(c);
        return rc;
}

static const char *status_name(const struct gmca_cert_rec *r, int64_t now)
{
        if (r->status == GMCA_CERT_REVOKED)
                return "revoked";
        return r->not_after < now ? "expired" : "valid";
}

static json_t *cert_json(const struct gmca_cert_rec *r, const char *ca)
{
        char nb[32], na[32], ra[32], inv[32];
        json_t *j;

        gmca_time_iso((time_t)r->not_before, nb, sizeof(nb));
        gmca_time_iso((time_t)r->not_after, na, sizeof(na));
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "serial", r->serial, "subject",
                      r->subject, "profile", r->profile, "not_before", nb, "not_after", na,
                      "status", status_name(r, gmca_now()), "fingerprint_sm3", r->fingerprint);
        if (j == NULL)
                return NULL;
        if (ca != NULL)
                json_object_set_new(j, "ca", json_string(ca));
        if (r->status == GMCA_CERT_REVOKED) {
                gmca_time_iso((time_t)r->revoked_at, ra, sizeof(ra));
                json_object_set_new(j, "revoked_at", json_string(ra));
                json_object_set_new(j, "reason",
                                    json_string(gmca_crl_reason_name(r->reason)
                                                    ? gmca_crl_reason_name(r->reason)
                                                    : "unspecified"));
                if (r->invalidity_date != 0) {
                        gmca_time_iso((time_t)r->invalidity_date, inv, sizeof(inv));
                        json_object_set_new(j, "invalidity_date", json_string(inv));
                }
        }
        return j;
}

static int cert_show(struct cli *cli, struct cert_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        struct gmca_cert_rec r;
        struct gmca_ca_rec ca;
        char serial[GMCA_SERIAL_HEX_MAX];
        int rc = EXIT_FAIL;

        if (o->serial == NULL)
                return cli_usage_error("cert show: --serial is required");
        if (gmca_serial_normalize(o->serial, serial) != 0) {
                fputs("gmca: --serial: 1..40 hex digits\n", stderr);
                return EXIT_INPUT;
        }
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        memset(&r, 0, sizeof(r));
        memset(&ca, 0, sizeof(ca));
        if (gmca_store_cert_get(gmca_ctx_store(c), serial, &r, &e) != 0 ||
            gmca_store_ca_get_by_id(gmca_ctx_store(c), r.ca_id, &ca, &e) != 0) {
                rc = cli_fail(&e);
                goto out;
        }
        if (o->pem) {
                char *pem = NULL;
                size_t n = 0;

                if (pem_of(r.der, r.der_len, &pem, &n) != 0) {
                        fputs("gmca: stored certificate does not parse\n", stderr);
                        rc = EXIT_TAMPER;
                        goto out;
                }
                fputs(pem, stdout);
                free(pem);
                rc = EXIT_OK;
        } else if (o->json) {
                rc = cli_print_json(cert_json(&r, ca.name));
        } else {
                char nb[32], na[32];

                gmca_time_iso((time_t)r.not_before, nb, sizeof(nb));
                gmca_time_iso((time_t)r.not_after, na, sizeof(na));
                printf("serial:      %s\nsubject:     %s\nissuer CA:   %s\nprofile:     %s\n"
                       "not before:  %s\nnot after:   %s\nstatus:      %s\n",
                       r.serial, r.subject, ca.name, r.profile, nb, na,
                       status_name(&r, gmca_now()));
                if (r.status == GMCA_CERT_REVOKED) {
                        char ra[32];

                        gmca_time_iso((time_t)r.revoked_at, ra, sizeof(ra));
                        printf("revoked at:  %s\nreason:      %s\n", ra,
                               gmca_crl_reason_name(r.reason) ? gmca_crl_reason_name(r.reason)
                                                              : "unspecified");
                }
                printf("SM3 fingerprint: %s\n", r.fingerprint);
                rc = EXIT_OK;
        }
out:
        gmca_cert_rec_clear(&r);
        gmca_ca_rec_clear(&ca);
        gmca_ctx_close(c);
        return rc;
}

struct list_state {
        int json;
        json_t *arr;
        int64_t now;
};

static int list_one(const struct gmca_cert_rec *r, void *arg)
{
        struct list_state *st = arg;
        char na[32];

        if (st->json)
                return json_array_append_new(st->arr, cert_json(r, NULL)) == 0 ? 0 : 1;
        gmca_time_iso((time_t)r->not_after, na, sizeof(na));
        printf("%-34s %-8s %-16s %s  %s\n", r->serial, status_name(r, st->now), r->profile, na,
               r->subject);
        return 0;
}

static int cert_list(struct cli *cli, struct cert_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        struct gmca_cert_filter f;
        struct gmca_ca_rec ca;
        struct list_state st;
        int rc;

        memset(&f, 0, sizeof(f));
        memset(&ca, 0, sizeof(ca));
        f.status = GMCA_STATUS_ANY;
        if (o->status != NULL) {
                if (strcmp(o->status, "valid") == 0)
                        f.status = GMCA_CERT_VALID;
                else if (strcmp(o->status, "revoked") == 0)
                        f.status = GMCA_CERT_REVOKED;
                else if (strcmp(o->status, "expired") == 0)
                        f.status = GMCA_STATUS_EXPIRED;
                else
                        return cli_usage_error("--status: valid, revoked or expired");
        }
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        if (o->ca != NULL) {
                if (gmca_store_ca_get(gmca_ctx_store(c), o->ca, &ca, &e) != 0) {
                        gmca_ctx_close(c);
                        return cli_fail(&e);
                }
                f.ca_id = ca.id;
        }
        f.subject = o->subject;
        f.profile = o->profile;
        f.now = gmca_now();
        f.limit = o->limit;
        f.offset = o->offset;
        st.json = o->json;
        st.now = f.now;
        st.arr = o->json ? json_array() : NULL;
        rc = gmca_store_cert_list(gmca_ctx_store(c), &f, list_one, &st, &e);
        gmca_ca_rec_clear(&ca);
        gmca_ctx_close(c);
        if (rc != 0) {
                json_decref(st.arr);
                return cli_fail(&e);
        }
        return o->json ? cli_print_json(st.arr) : EXIT_OK;
}

static int cert_export(struct cli *cli, struct cert_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        struct gmca_cert_rec r;
        char serial[GMCA_SERIAL_HEX_MAX];
        int rc;

        if (o->serial == NULL)
                return cli_usage_error("cert export: --serial is required");
        if (gmca_serial_normalize(o->serial, serial) != 0) {
                fputs("gmca: --serial: 1..40 hex digits\n", stderr);
                return EXIT_INPUT;
        }
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        memset(&r, 0, sizeof(r));
        if (gmca_store_cert_get(gmca_ctx_store(c), serial, &r, &e) != 0) {
                rc = cli_fail(&e);
        } else if (o->der) {
                rc = cli_output(o->out, r.der, r.der_len, &e) == 0 ? EXIT_OK : cli_fail(&e);
        } else {
                char *pem = NULL;
                size_t n = 0;

                if (pem_of(r.der, r.der_len, &pem, &n) != 0) {
                        fputs("gmca: stored certificate does not parse\n", stderr);
                        rc = EXIT_TAMPER;
                } else {
                        rc = cli_output(o->out, pem, n, &e) == 0 ? EXIT_OK : cli_fail(&e);
                }
                free(pem);
        }
        gmca_cert_rec_clear(&r);
        gmca_ctx_close(c);
        return rc;
}

static int cert_revoke(struct cli *cli, struct cert_opts *o)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;
        time_t inv = 0;
        int reason, rc;

        if (o->serial == NULL || o->reason == NULL)
                return cli_usage_error("cert revoke: --serial and --reason are required");
        if ((reason = gmca_crl_reason_from_name(o->reason)) < 0)
                return cli_usage_error("cert revoke: unknown reason '%s'", o->reason);
        if (o->invalidity != NULL && gmca_time_parse(o->invalidity, &inv) != 0)
                return cli_usage_error("--invalidity-date: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
        if ((c = cli_open(cli, NULL, 0, &e)) == NULL)
                return cli_fail(&e);
        rc = gmca_ca_revoke(c, o->serial, reason, (int64_t)inv, &e);
        gmca_ctx_close(c);
        if (rc != 0)
                return cli_fail(&e);
        printf("revoked %s (%s)\n", o->serial, o->reason);
        return EXIT_OK;
}

int cmd_cert(struct cli *cli, int argc, char **argv)
{
        struct cert_opts o;
        const char *sub;
        int rc;

        if (cli_group_help(argc, argv, usage, &rc))
                return rc;
        sub = argv[1];
        if ((rc = parse_opts(cli, argc - 1, argv + 1, &o)) != 0)
                return rc < 0 ? EXIT_OK : rc;
        if (strcmp(sub, "issue") == 0)
                return cli_only_options(o.seen, "fciadoKP", "cert") ? EXIT_USAGE
                                                                    : cert_issue(cli, &o);
        if (strcmp(sub, "show") == 0)
                return cli_only_options(o.seen, "sjm", "cert") ? EXIT_USAGE : cert_show(cli, &o);
        if (strcmp(sub, "list") == 0)
                return cli_only_options(o.seen, "atfSlOj", "cert") ? EXIT_USAGE
                                                                   : cert_list(cli, &o);
        if (strcmp(sub, "export") == 0)
                return cli_only_options(o.seen, "sDo", "cert") ? EXIT_USAGE : cert_export(cli, &o);
        if (strcmp(sub, "revoke") == 0)
                return cli_only_options(o.seen, "srI", "cert") ? EXIT_USAGE : cert_revoke(cli, &o);
        return cli_usage_error("cert: unknown subcommand '%s'", sub);
}
