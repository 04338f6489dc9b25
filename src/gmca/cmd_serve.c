/*
 * gmca serve: run the RA front (src/serve) on a state directory. Before it
 * listens it checks that the RA communication key and certificate belong
 * together and that the certificate is the named RA's current one, and
 * that the CA engine runs — starting it with the custodians given, as gmca
 * activate does, and stopping it again when the front stops. With
 * --tsa-cert and --tsa-key it also answers POST /tsa (RFC 3161); the TSA
 * key is loaded here once, checked against its certificate by a self-test
 * token, lent to the worker threads and freed (its memory cleared by
 * OpenSSL) when serve returns. With --ocsp-cert and --ocsp-key (once per
 * CA) it answers OCSP (RFC 6960) as that CA's delegated responder; those
 * keys are handled the same way. With --ocsp-auto the front keeps and
 * rotates a responder per CA itself (src/serve/ocsp_rotate.c); with
 * --ocsp-ca-signed the CA key answers through the engine's op 'O'.
 *
 * With --responder (issue 9) it is a stand-alone OCSP and CRL responder
 * for another host, reading a database that may be a hot-standby replica
 * (--db): no RA identity, no CA engine, no API, no TSA, no publishing, no
 * CRL schedule, only the delegated responder keys given; nothing it does
 * writes to the store (docs/responders.md).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "ca.h"
#include "cli.h"
#include "ocsp.h"
#include "serve.h"
#include "ldap_pub.h"
#include "store.h"
#include "sync.h"
#include "tsa.h"
#include "util.h"
#include "x509.h"

static const char usage[] =
    "usage: gmca [--dir DIR] serve --ra NAME --ra-key FILE --ra-cert FILE [options]\n"
    "       gmca [--dir DIR] serve --responder [--db URI] [--ocsp-cert FILE --ocsp-key FILE]...\n"
    "                  [--listen ADDR:PORT] [--threads N] [--ocsp-validity SECONDS]\n"
    "\n"
    "Runs the RA front: the signed operator API (/api/v1, see docs/api.md) and\n"
    "the public downloads (/ca/NAME.crt, /crl/NAME.crl, /healthz). It holds no\n"
    "CA key: issuance and the sealing of identity numbers go to the CA engine,\n"
    "signed with the RA communication key. Prints \"gmca: serving on URL\" when\n"
    "ready, writes DIR/run/serve.pid; SIGTERM or SIGINT stops it (exit 0).\n"
    "\n"
    "  --listen ADDR:PORT  where to listen (default " GMCA_SERVE_DEFAULT_LISTEN "; [ADDR6]:PORT;\n"
    "                      port 0 picks a free one, printed in the ready line)\n"
    "  --ra NAME           the RA system this front is\n"
    "  --ra-key FILE       its communication private key (PEM)\n"
    "  --ra-pass-file FILE the key's passphrase, if it has one\n"
    "  --ra-cert FILE      its certificate: NAME's current one (gmca ra cert issue)\n"
    "  --threads N         worker threads (default 4, at most 64)\n"
    "  --share FILE --pin-file FILE ...\n"
    "                      if the CA engine is not running: the custodians who start\n"
    "                      it (as gmca activate); it is stopped when serve stops.\n"
    "                      Without them, serve refuses to start (exit 6).\n"
    "  --tsa-cert FILE --tsa-key FILE [--tsa-pass-file FILE]\n"
    "                      also answer POST /tsa (RFC 3161) as the time-stamping\n"
    "                      authority of this certificate (profile tsa) and key\n"
    "  --tsa-policy OID    the TSA policy of the tokens (default " GMCA_TSA_POLICY_DEFAULT ")\n"
    "  --tsa-accuracy-ms N the accuracy the tokens state, 1..999 (default: none)\n"
    "  --crl-interval HOURS\n"
    "                      generate every CA's CRL through the CA engine this often\n"
    "                      (default: crl_hours of the configuration, 24; CPS §3.9.10),\n"
    "                      and at start when one is due; at once after a keyCompromise\n"
    "                      or cACompromise revocation through the API\n"
    "  --crl-interval-seconds N  the same in seconds (for tests)\n"
    "  --ocsp-cert FILE --ocsp-key FILE [--ocsp-pass-file FILE]\n"
    "                      also answer POST /ocsp and GET /ocsp/{base64} (RFC 6960,\n"
    "                      RFC 5019) for the CA that issued this delegated responder\n"
    "                      certificate (profile ocsp); repeat once per CA\n"
    "  --ocsp-validity SECONDS\n"
    "                      nextUpdate - thisUpdate of the responses (default 3600)\n"
    "  --ocsp-auto CA      answer OCSP for CA with a delegated responder this front\n"
    "                      keeps and rotates itself: key and certificate under\n"
    "                      DIR/ocsp/CA/ (the key encrypted with --ocsp-pass-file,\n"
    "                      which then must not follow an --ocsp-key), a new one from\n"
    "                      the CA engine (signed with the RA key) when none is valid\n"
    "                      or the current one is in its last third; swapped in without\n"
    "                      a restart. Repeat once per CA\n"
    "  --ocsp-rotate-before SECONDS\n"
    "                      rotate this long before notAfter instead (the engine allows\n"
    "                      a new responder once the newest is a quarter through its life)\n"
    "  --ocsp-cert-seconds SECONDS\n"
    "                      for tests: ask for responder certificates valid this long\n"
    "                      (at least 30; the profile caps it; default: the profile's)\n"
    "  --ocsp-ca-signed CA answer OCSP for CA with responses signed by the CA key itself\n"
    "                      through the CA engine, which checks each one against the\n"
    "                      store first. Repeat once per CA\n"
    "  --sync NAME=URL     push every certificate and CRL event, signed, to a downstream\n"
    "                      system's receiver (CPS 4.6.1, 4.6.2; channel sync:NAME).\n"
    "                      Repeatable; needs --sync-key and --sync-cert\n"
    "  --sync-key FILE --sync-cert FILE [--sync-pass-file FILE]\n"
    "                      the CA's sync signing key (encrypted PEM) and its certificate\n"
    "                      of profile sync, issued by a CA of this directory\n"
    "  --sync-ca-file FILE CA bundle for https receivers (default: the system's)\n"
    "  --ldap-uri URI --ldap-base DN [--ldap-bind-dn DN --ldap-password-file FILE]\n"
    "                      publish every CA certificate, CRL and subscriber certificate\n"
    "                      whose profile allows it to this LDAP directory under DN\n"
    "                      (CPS 3.4.2; channel ldap; layout in src/lib/ldap_pub.h).\n"
    "                      A simple bind sends the password as is: use ldaps:// or\n"
    "                      ldapi:// unless the directory is on this host\n"
    "\n"
    "Responder mode (--responder): a read-only OCSP and CRL responder, e.g. on another\n"
    "host reading a PostgreSQL hot-standby replica. It answers OCSP with the delegated\n"
    "responders given (--ocsp-cert/--ocsp-key; none: CRLs only) and serves /ca/, /crl/,\n"
    "/certs, / and /healthz (with the replica's replay lag); /api/v1 is 404. It needs\n"
    "no RA identity, never starts or contacts the CA engine, and never writes to the\n"
    "database. --ocsp-auto, --ocsp-ca-signed, --ra*, --share, --tsa-*, --crl-interval*,\n"
    "--sync* and --ldap-* are refused. Writes DIR/run/responder.pid.\n"
    "  --responder         run as such a responder\n"
    "  --db URI            the database to read (postgresql://, no password: libpq's\n"
    "                      PGPASSFILE or peer authentication), e.g. a replica; default:\n"
    "                      the one gmca.json of DIR names. With --db, DIR needs no file\n"
    "                      at all (gmca.json only for base_url/cps_uri of the page)\n";

#define SERVE_OCSP_MAX 16 /* CAs one front answers OCSP for */
#define SERVE_SYNC_MAX 16 /* sync receivers */
#define SERVE_PUB_MAX 32  /* change feed channels: sync receivers, the LDAP directory */

struct ocsp_opt {
        const char *cert, *key, *pass;
};

/* The loaded responders: certificates, keys and signers, freed by ocsp_free. */
struct ocsp_keys {
        X509 *cert[SERVE_OCSP_MAX];
        EVP_PKEY *key[SERVE_OCSP_MAX];
        struct gmca_pkey_signer signer[SERVE_OCSP_MAX];
        struct gmca_ocsp_responder r[SERVE_OCSP_MAX];
        size_t n;
};

struct serve_opts {
        const char *listen, *ra, *key, *pass, *cert;
        int threads;
        const char *tsa_cert, *tsa_key, *tsa_pass, *tsa_policy;
        int tsa_accuracy_ms;
        int64_t crl_interval; /* seconds; 0: the configured crl_hours */
        struct ocsp_opt ocsp[SERVE_OCSP_MAX];
        int nocsp_cert, nocsp_key;
        int64_t ocsp_validity;
        const char *ocsp_auto[SERVE_OCSP_MAX], *ocsp_ca_signed[SERVE_OCSP_MAX];
        size_t nocsp_auto, nocsp_ca_signed;
        const char *ocsp_auto_pass; /* the --ocsp-pass-file not right after an --ocsp-key */
        int64_t ocsp_rotate_before, ocsp_cert_seconds;
        const char *sync_key, *sync_cert, *sync_pass, *sync_ca; /* the sync push (sync.h) */
        const char *sync[SERVE_SYNC_MAX];
        size_t nsync;
        const char *ldap_uri, *ldap_base, *ldap_bind_dn, *ldap_pass; /* ldap_pub.h */
        int responder;                                               /* --responder */
        const char *db;                                              /* --db */
};

/* The change feed's channels given to gmca_serve_run, and what they borrow. */
struct serve_pubs {
        struct gmca_publisher p[SERVE_PUB_MAX];
        size_t n;
        EVP_PKEY *sync_key;
        X509 *sync_cert;
        struct gmca_sync_receiver sync[SERVE_SYNC_MAX];
        struct gmca_ldap_pub *ldap;
};

static int sync_option(struct serve_opts *o, int ch, const char *arg)
{
        switch (ch) {
        case 1101:
                o->sync_key = arg;
                break;
        case 1102:
                o->sync_cert = arg;
                break;
        case 1103:
                o->sync_pass = arg;
                break;
        case 1104:
                if (o->nsync >= SERVE_SYNC_MAX)
                        return cli_usage_error("--sync: at most %d", SERVE_SYNC_MAX);
                o->sync[o->nsync++] = arg;
                break;
        default:
                o->sync_ca = arg;
        }
        return 0;
}

/*
 * The sync signer (a current certificate of profile sync issued here, and
 * its key) and one publisher per --sync receiver, appended to ps.
 */
static int sync_load(struct gmca_ctx *c, const struct serve_opts *o, struct serve_pubs *ps,
                     struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        char serial[GMCA_SERIAL_HEX_MAX];
        int rc;

        if (o->nsync == 0)
                return 0;
        if ((ps->sync_cert = cli_load_cert(o->sync_cert, e)) == NULL ||
            (ps->sync_key = cli_load_key(o->sync_key, o->sync_pass, e)) == NULL)
                return e->code;
        if ((rc = gmca_sync_check_signer(ps->sync_cert, ps->sync_key, e)) != 0)
                return rc;
        memset(&rec, 0, sizeof(rec));
        if (gmca_serial_hex(ps->sync_cert, serial, sizeof(serial)) != 0 ||
            gmca_store_cert_get(gmca_ctx_store(c), serial, &rec, e) != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_POLICY, "%s: not issued by this CA",
                                      o->sync_cert);
        }
        rc = strcmp(rec.profile, GMCA_SYNC_PROFILE) != 0 || rec.status != GMCA_CERT_VALID;
        gmca_cert_rec_clear(&rec);
        if (rc)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "%s: not a valid certificate of profile " GMCA_SYNC_PROFILE,
                                      o->sync_cert);
        for (size_t i = 0; i < o->nsync; i++) {
                if (ps->n >= SERVE_PUB_MAX)
                        return gmca_error_set(e, GMCA_ERR_LIMIT, "more than %d channels",
                                              SERVE_PUB_MAX);
                if ((rc = gmca_sync_receiver_init(&ps->sync[i], o->sync[i], ps->sync_cert,
                                                  ps->sync_key, o->sync_ca, e)) != 0)
                        return rc;
                for (size_t j = 0; j < ps->n; j++)
                        if (strcmp(ps->p[j].channel, ps->sync[i].pub.channel) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID, "--sync %s: named twice",
                                                      ps->sync[i].name);
                ps->p[ps->n++] = ps->sync[i].pub;
        }
        return 0;
}

/* The LDAP directory's channel (--ldap-uri), appended to ps. */
static int ldap_load(struct cli *cli, const struct serve_opts *o, struct serve_pubs *ps,
                     struct gmca_error *e)
{
        struct gmca_ldap_pub_config lc = {
            .uri = o->ldap_uri, .base = o->ldap_base, .bind_dn = o->ldap_bind_dn, .dir = cli->dir};
        char *pass = NULL;
        size_t len = 0;

        if (o->ldap_uri == NULL && o->ldap_base == NULL)
                return 0;
        if (o->ldap_uri == NULL || o->ldap_base == NULL || (o->ldap_pass && !o->ldap_bind_dn))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--ldap-uri and --ldap-base go together; "
                                      "--ldap-password-file needs --ldap-bind-dn");
        if (ps->n >= SERVE_PUB_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "more than %d channels", SERVE_PUB_MAX);
        if (o->ldap_pass != NULL &&
            cli_secret(o->ldap_pass, NULL, "LDAP password", 0, &pass, &len, e) != 0)
                return e->code;
        lc.password = pass;
        lc.password_len = len;
        ps->ldap = gmca_ldap_pub_new(&lc, e);
        cli_pass_free(pass, len);
        if (ps->ldap == NULL)
                return e->code;
        gmca_ldap_pub_publisher(ps->ldap, &ps->p[ps->n++]);
        return 0;
}

static void pubs_free(struct serve_pubs *ps)
{
        gmca_ldap_pub_free(ps->ldap);
        EVP_PKEY_free(ps->sync_key); /* EC keys clear their private scalar */
        X509_free(ps->sync_cert);
        memset(ps, 0, sizeof(*ps));
}

/*
 * Load each --ocsp-cert/--ocsp-key pair: the key must be the certificate's,
 * the certificate an OCSP signer issued by a CA of the store, one per CA.
 */
static int ocsp_load(struct gmca_store *s, const struct serve_opts *o, struct ocsp_keys *ok,
                     struct gmca_error *e)
{
        for (int i = 0; i < o->nocsp_cert; i++) {
                const struct ocsp_opt *p = &o->ocsp[i];
                int rc;

                if ((ok->cert[i] = cli_load_cert(p->cert, e)) == NULL ||
                    (ok->key[i] = cli_load_key(p->key, p->pass, e)) == NULL)
                        return e->code;
                if (X509_check_private_key(ok->cert[i], ok->key[i]) != 1) {
                        gmca_ossl_clear();
                        return gmca_error_set(e, GMCA_ERR_TAMPER, "%s: not the key of %s", p->key,
                                              p->cert);
                }
                if ((rc = gmca_pkey_signer_init(&ok->signer[i], ok->key[i], NULL, e)) != 0 ||
                    (rc = gmca_ocsp_responder_init(&ok->r[i], s, ok->cert[i], &ok->signer[i].base,
                                                   gmca_now(), e)) != 0) {
                        struct gmca_error cause = *e;

                        return gmca_error_set(e, rc, "%s: %s", p->cert, cause.msg);
                }
                ok->n = (size_t)i + 1;
                for (int j = 0; j < i; j++)
                        if (ok->r[j].ca_id == ok->r[i].ca_id)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "%s and %s: two OCSP responders for one CA",
                                                      o->ocsp[j].cert, p->cert);
        }
        return 0;
}

static void ocsp_free(struct ocsp_keys *ok)
{
        for (size_t i = 0; i < SERVE_OCSP_MAX; i++) {
                gmca_ocsp_responder_clear(&ok->r[i]);
                EVP_PKEY_free(ok->key[i]); /* EC keys clear their private scalar */
                X509_free(ok->cert[i]);
        }
        OPENSSL_cleanse(ok, sizeof(*ok));
}

/* The RA certificate: current for the RA named, issued here, and the key's. */
static int check_ra(struct gmca_ctx *c, const struct serve_opts *o, EVP_PKEY *key, X509 *cert,
                    struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX], owner[GMCA_NAME_MAX];
        int rc, current = 0;

        if (X509_check_private_key(cert, key) != 1) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_TAMPER, "%s: not the key of %s", o->key, o->cert);
        }
        if ((rc = gmca_ra_cert_check(c, cert, e)) != 0)
                return rc;
        if ((rc = gmca_serial_hex(cert, serial, sizeof(serial))) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: bad serial", o->cert);
        if ((rc = gmca_ra_cert_owner(c, serial, owner, &current, e)) != 0)
                return rc;
        if (strcmp(owner, o->ra) != 0 || !current)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "%s: the current RA communication certificate of '%s', "
                                      "not of '%s'",
                                      o->cert, owner, o->ra);
        return 0;
}

/*
 * --responder takes only what reads: everything that needs the RA identity,
 * the CA engine or a key other than a delegated OCSP responder's, or that
 * writes to the store, is a usage error rather than silently ignored.
 */
static int responder_usage(const struct serve_opts *o, const struct cli_custody *k)
{
        if (!o->responder)
                return o->db == NULL ? 0 : cli_usage_error("serve: --db needs --responder");
        if (o->nocsp_auto > 0 || o->nocsp_ca_signed > 0 || o->ocsp_auto_pass != NULL ||
            o->ocsp_rotate_before != 0 || o->ocsp_cert_seconds != 0)
                return cli_usage_error("serve --responder: no --ocsp-auto or --ocsp-ca-signed "
                                       "(they need the CA engine); give the delegated responders "
                                       "with --ocsp-cert and --ocsp-key");
        if (o->ra != NULL || o->key != NULL || o->cert != NULL || o->pass != NULL ||
            k->nshares > 0 || k->npins > 0 || k->nnames > 0)
                return cli_usage_error("serve --responder: no RA identity (--ra, --ra-key, "
                                       "--ra-cert) and no custodians: it never uses the CA engine");
        if (o->tsa_cert != NULL || o->tsa_key != NULL || o->crl_interval != 0 || o->nsync > 0 ||
            o->sync_key != NULL || o->ldap_uri != NULL || o->ldap_base != NULL)
                return cli_usage_error("serve --responder: no --tsa-*, --crl-interval*, --sync* "
                                       "or --ldap-*: a responder only reads");
        return 0;
}

/*
 * The responder's store: --db, else the directory's front store. Opened
 * read-only in effect: the schema must be current (a migration would write)
 * and a missing SQLite file is not created.
 */
static struct gmca_store *responder_store(struct cli *cli, const struct serve_opts *o, char *uri,
                                          size_t len, struct gmca_error *e)
{
        if (o->db != NULL) {
                if (gmca_store_uri_check(o->db, e) != 0)
                        return NULL;
                gmca_strlcpy(uri, o->db, len);
        } else if (gmca_ca_front_store_uri(cli->dir, uri, len, e) != 0) {
                return NULL;
        }
        if (!gmca_store_uri_is_pg(uri) && access(uri, R_OK) != 0) {
                gmca_error_set(e, GMCA_ERR_NOTFOUND, "%s: %s", uri, strerror(errno));
                return NULL;
        }
        return gmca_store_open(uri, e);
}

/* gmca serve --responder: load the delegated responders, then serve until a signal. */
static int run_responder(struct cli *cli, const struct serve_opts *o, struct ocsp_keys *ok)
{
        struct gmca_serve_config cfg;
        struct gmca_error e = {0};
        struct gmca_store *s = NULL;
        char uri[GMCA_STORE_URI_MAX + PATH_MAX];

        if (gmca_serve_check_listen(o->listen, &e) != 0 ||
            (s = responder_store(cli, o, uri, sizeof(uri), &e)) == NULL ||
            ocsp_load(s, o, ok, &e) != 0) {
                gmca_store_close(s);
                return cli_fail(&e);
        }
        gmca_store_close(s);
        cfg = (struct gmca_serve_config){.dir = cli->dir,
                                         .listen = o->listen,
                                         .threads = (unsigned)o->threads,
                                         .ocsp = ok->r,
                                         .nocsp = ok->n,
                                         .ocsp_validity = o->ocsp_validity,
                                         .responder = 1,
                                         .db = uri};
        return gmca_serve_run(&cfg, &e) != 0 ? cli_fail(&e) : EXIT_OK;
}

/* Start the CA engine with the custodians; *started tells whether we did. */
static int engine_up(struct cli *cli, struct cli_custody *k, int *started, struct gmca_error *e)
{
        struct gmca_ctx *c;
        pid_t pid;
        int rc;

        *started = 0;
        if ((c = gmca_ctx_open(cli->dir, cli->actor, e)) == NULL)
                return e->code;
        if (gmca_ctx_use_engine(c, e) == 0) {
                gmca_ctx_close(c);
                if (k->nshares > 0)
                        fprintf(stderr,
                                "gmca: the CA engine runs already; custodians not needed\n");
                return 0;
        }
        gmca_ctx_close(c);
        if (k->nshares == 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "CA not activated: run gmca activate, or give the "
                                      "custodians (--share, --pin-file)");
        }
        gmca_error_clear(e);
        if ((c = gmca_ctx_open(cli->dir, cli->actor, e)) == NULL)
                return e->code;
        if ((rc = cli_custody_collect(k, 0, NULL, e)) != 0 ||
            (rc = gmca_ctx_activate(c, k->cust, k->n, e)) != 0) {
                gmca_ctx_close(c);
                return rc;
        }
        gmca_ctx_forget_secrets(c);
        rc = cli_engine_spawn(c, &pid, e);
        /* The keys live on in the engine only. */
        gmca_ctx_close(c);
        if (rc != 0)
                return rc;
        fprintf(stderr, "gmca: CA engine started (pid %ld)\n", (long)pid);
        *started = 1;
        return 0;
}

static void engine_down(struct cli *cli)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c;

        if ((c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL ||
            gmca_ctx_deactivate_engine(c, &e) != 0)
                fprintf(stderr, "gmca: could not stop the CA engine: %s\n", e.msg);
        else
                fprintf(stderr, "gmca: CA engine stopped\n");
        gmca_ctx_close(c);
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"listen", required_argument, NULL, 'l'},
            {"ra", required_argument, NULL, 'r'},
            {"ra-key", required_argument, NULL, 'k'},
            {"ra-pass-file", required_argument, NULL, 'P'},
            {"ra-cert", required_argument, NULL, 'c'},
            {"threads", required_argument, NULL, 't'},
            {"share", required_argument, NULL, 's'},
            {"pin-file", required_argument, NULL, 'p'},
            {"tsa-cert", required_argument, NULL, 'C'},
            {"tsa-key", required_argument, NULL, 'K'},
            {"tsa-pass-file", required_argument, NULL, 'Q'},
            {"tsa-policy", required_argument, NULL, 'O'},
            {"tsa-accuracy-ms", required_argument, NULL, 'A'},
            {"crl-interval", required_argument, NULL, 'I'},
            {"crl-interval-seconds", required_argument, NULL, 'S'},
            {"ocsp-cert", required_argument, NULL, 1001},
            {"ocsp-key", required_argument, NULL, 1002},
            {"ocsp-pass-file", required_argument, NULL, 1003},
            {"ocsp-validity", required_argument, NULL, 1004},
            {"ocsp-auto", required_argument, NULL, 1005},
            {"ocsp-ca-signed", required_argument, NULL, 1006},
            {"ocsp-rotate-before", required_argument, NULL, 1007},
            {"ocsp-cert-seconds", required_argument, NULL, 1008},
            {"sync-key", required_argument, NULL, 1101},
            {"sync-cert", required_argument, NULL, 1102},
            {"sync-pass-file", required_argument, NULL, 1103},
            {"sync", required_argument, NULL, 1104},
            {"sync-ca-file", required_argument, NULL, 1105},
            {"ldap-uri", required_argument, NULL, 1201},
            {"ldap-base", required_argument, NULL, 1202},
            {"ldap-bind-dn", required_argument, NULL, 1203},
            {"ldap-password-file", required_argument, NULL, 1204},
            {"responder", no_argument, NULL, 1301},
            {"db", required_argument, NULL, 1302},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct serve_opts o = {.listen = GMCA_SERVE_DEFAULT_LISTEN,
                               .threads = GMCA_SERVE_THREADS_DEFAULT};
        struct gmca_serve_tsa tsa = {0};
        static struct ocsp_keys ok;    /* large; one serve per process */
        static struct serve_pubs pubs; /* the change feed's channels; outlive gmca_serve_run */
        struct gmca_serve_config cfg;
        struct cli_custody k;
        struct gmca_error e = {0};
        struct gmca_ctx *c = NULL;
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        char *auto_pass = NULL;
        size_t auto_pass_len = 0;
        int ch, n, rc = EXIT_FAIL, started = 0, after_key = 0;

        memset(&k, 0, sizeof(k));
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                int was_after_key = after_key;

                after_key = ch == 1002;
                switch (ch) {
                case 'l':
                        o.listen = optarg;
                        break;
                case 'r':
                        o.ra = optarg;
                        break;
                case 'k':
                        o.key = optarg;
                        break;
                case 'P':
                        o.pass = optarg;
                        break;
                case 'c':
                        o.cert = optarg;
                        break;
                case 't':
                        if ((o.threads = cli_parse_int(optarg, 1, GMCA_SERVE_THREADS_MAX)) < 0)
                                return cli_usage_error("--threads: 1..%d", GMCA_SERVE_THREADS_MAX);
                        break;
                case 's':
                case 'p':
                        if (cli_custody_option(&k, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 'C':
                        o.tsa_cert = optarg;
                        break;
                case 'K':
                        o.tsa_key = optarg;
                        break;
                case 'Q':
                        o.tsa_pass = optarg;
                        break;
                case 'O':
                        o.tsa_policy = optarg;
                        break;
                case 'A':
                        if ((o.tsa_accuracy_ms = cli_parse_int(optarg, 1, 999)) < 0)
                                return cli_usage_error("--tsa-accuracy-ms: 1..999");
                        break;
                case 'I':
                        if ((n = cli_parse_int(optarg, 1, 744)) < 0)
                                return cli_usage_error("--crl-interval: 1..744 hours");
                        o.crl_interval = (int64_t)n * 3600;
                        break;
                case 'S':
                        if ((n = cli_parse_int(optarg, 1, 744 * 3600)) < 0)
                                return cli_usage_error("--crl-interval-seconds: 1..2678400");
                        o.crl_interval = n;
                        break;
                case 1001:
                        if (o.nocsp_cert >= SERVE_OCSP_MAX)
                                return cli_usage_error("--ocsp-cert: at most %d", SERVE_OCSP_MAX);
                        o.ocsp[o.nocsp_cert++].cert = optarg;
                        break;
                case 1002:
                        if (o.nocsp_key >= SERVE_OCSP_MAX)
                                return cli_usage_error("--ocsp-key: at most %d", SERVE_OCSP_MAX);
                        o.ocsp[o.nocsp_key++].key = optarg;
                        break;
                case 1003:
                        if (was_after_key) {
                                o.ocsp[o.nocsp_key - 1].pass = optarg;
                                break;
                        }
                        if (o.ocsp_auto_pass != NULL)
                                return cli_usage_error("--ocsp-pass-file: once for --ocsp-auto, "
                                                       "else right after its --ocsp-key");
                        o.ocsp_auto_pass = optarg;
                        break;
                case 1005:
                case 1006:
                        if ((ch == 1005 ? o.nocsp_auto : o.nocsp_ca_signed) >= SERVE_OCSP_MAX)
                                return cli_usage_error("--ocsp-auto, --ocsp-ca-signed: at most %d",
                                                       SERVE_OCSP_MAX);
                        if (ch == 1005)
                                o.ocsp_auto[o.nocsp_auto++] = optarg;
                        else
                                o.ocsp_ca_signed[o.nocsp_ca_signed++] = optarg;
                        break;
                case 1007:
                case 1008:
                        if ((n = cli_parse_int(optarg, ch == 1007 ? 1 : 30, 90 * 86400)) < 0)
                                return cli_usage_error("%s: %d..7776000 seconds",
                                                       ch == 1007 ? "--ocsp-rotate-before"
                                                                  : "--ocsp-cert-seconds",
                                                       ch == 1007 ? 1 : 30);
                        if (ch == 1007)
                                o.ocsp_rotate_before = n;
                        else
                                o.ocsp_cert_seconds = n;
                        break;
                case 1004:
                        if ((n = cli_parse_int(optarg, 60, GMCA_OCSP_VALIDITY_MAX)) < 0)
                                return cli_usage_error("--ocsp-validity: 60..%d seconds",
                                                       GMCA_OCSP_VALIDITY_MAX);
                        o.ocsp_validity = n;
                        break;
                case 1101:
                case 1102:
                case 1103:
                case 1104:
                case 1105:
                        if (sync_option(&o, ch, optarg) != 0)
                                return EXIT_USAGE;
                        break;
                case 1201:
                        o.ldap_uri = optarg;
                        break;
                case 1202:
                        o.ldap_base = optarg;
                        break;
                case 1203:
                        o.ldap_bind_dn = optarg;
                        break;
                case 1204:
                        o.ldap_pass = optarg;
                        break;
                case 1301:
                        o.responder = 1;
                        break;
                case 1302:
                        o.db = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return cli_usage_error("serve: unexpected argument '%s'", argv[optind]);
        if ((o.nsync > 0) != (o.sync_key != NULL && o.sync_cert != NULL) ||
            (o.nsync == 0 && (o.sync_key != NULL || o.sync_cert != NULL || o.sync_pass != NULL ||
                              o.sync_ca != NULL)))
                return cli_usage_error("serve: --sync needs --sync-key and --sync-cert, and "
                                       "the other --sync options need --sync");
        if (responder_usage(&o, &k) != 0)
                return EXIT_USAGE;
        if (o.responder) {
                if (o.nocsp_cert != o.nocsp_key || (o.nocsp_cert == 0 && o.ocsp_validity != 0))
                        return cli_usage_error("serve: each --ocsp-cert needs its --ocsp-key, and "
                                               "--ocsp-validity needs a responder");
                rc = run_responder(cli, &o, &ok);
                ocsp_free(&ok);
                return rc;
        }
        if (o.ra == NULL || o.key == NULL || o.cert == NULL)
                return cli_usage_error("serve: --ra, --ra-key and --ra-cert are required");
        if ((o.ldap_uri == NULL) != (o.ldap_base == NULL) ||
            ((o.ldap_pass != NULL || o.ldap_bind_dn != NULL) && o.ldap_uri == NULL))
                return cli_usage_error("serve: --ldap-uri and --ldap-base go together; "
                                       "--ldap-bind-dn and --ldap-password-file need them");
        if ((o.tsa_cert == NULL) != (o.tsa_key == NULL) ||
            (o.tsa_cert == NULL &&
             (o.tsa_pass != NULL || o.tsa_policy != NULL || o.tsa_accuracy_ms != 0)))
                return cli_usage_error("serve: --tsa-cert and --tsa-key go together, and the "
                                       "other --tsa options need them");
        if (o.nocsp_cert != o.nocsp_key || (o.nocsp_cert == 0 && o.nocsp_auto == 0 &&
                                            o.nocsp_ca_signed == 0 && o.ocsp_validity != 0))
                return cli_usage_error("serve: each --ocsp-cert needs its --ocsp-key, and "
                                       "--ocsp-validity needs a responder");
        if ((o.nocsp_auto > 0) != (o.ocsp_auto_pass != NULL) ||
            (o.nocsp_auto == 0 && (o.ocsp_rotate_before != 0 || o.ocsp_cert_seconds != 0)))
                return cli_usage_error("serve: --ocsp-auto needs --ocsp-pass-file (not right "
                                       "after an --ocsp-key), and --ocsp-rotate-before and "
                                       "--ocsp-cert-seconds need --ocsp-auto");
        if (gmca_serve_check_listen(o.listen, &e) != 0 ||
            (key = cli_load_key(o.key, o.pass, &e)) == NULL ||
            (cert = cli_load_cert(o.cert, &e)) == NULL ||
            (c = gmca_ctx_open(cli->dir, cli->actor, &e)) == NULL ||
            check_ra(c, &o, key, cert, &e) != 0)
                goto fail;
        if (o.tsa_cert != NULL) {
                tsa.policy = o.tsa_policy;
                tsa.accuracy_ms = o.tsa_accuracy_ms;
                if ((tsa.cert = cli_load_cert(o.tsa_cert, &e)) == NULL ||
                    (tsa.key = cli_load_key(o.tsa_key, o.tsa_pass, &e)) == NULL)
                        goto fail;
                if (gmca_serve_tsa_check(&tsa, &e) != 0) {
                        struct gmca_error cause = e;

                        gmca_error_set(&e, cause.code, "%s: %s", o.tsa_cert, cause.msg);
                        goto fail;
                }
        }
        if (ocsp_load(gmca_ctx_store(c), &o, &ok, &e) != 0 || sync_load(c, &o, &pubs, &e) != 0 ||
            ldap_load(cli, &o, &pubs, &e) != 0)
                goto fail;
        if (o.ocsp_auto_pass != NULL &&
            cli_secret(o.ocsp_auto_pass, NULL, "OCSP responder key passphrase", 0, &auto_pass,
                       &auto_pass_len, &e) != 0)
                goto fail;
        gmca_ctx_close(c);
        c = NULL;
        if (engine_up(cli, &k, &started, &e) != 0)
                goto fail;
        cli_custody_free(&k);
        cfg = (struct gmca_serve_config){.dir = cli->dir,
                                         .listen = o.listen,
                                         .threads = (unsigned)o.threads,
                                         .ra = o.ra,
                                         .ra_key = key,
                                         .ra_cert = cert,
                                         .tsa = o.tsa_cert != NULL ? &tsa : NULL,
                                         .crl_interval = o.crl_interval,
                                         .ocsp = ok.r,
                                         .nocsp = ok.n,
                                         .ocsp_validity = o.ocsp_validity,
                                         .ocsp_auto = o.ocsp_auto,
                                         .nocsp_auto = o.nocsp_auto,
                                         .ocsp_ca_signed = o.ocsp_ca_signed,
                                         .nocsp_ca_signed = o.nocsp_ca_signed,
                                         .ocsp_pass = auto_pass,
                                         .ocsp_pass_len = auto_pass_len,
                                         .ocsp_rotate_before = o.ocsp_rotate_before,
                                         .ocsp_cert_seconds = o.ocsp_cert_seconds,
                                         .publishers = pubs.p,
                                         .npublishers = pubs.n};
        if (gmca_serve_run(&cfg, &e) != 0)
                goto fail;
        rc = EXIT_OK;
        goto out;
fail:
        rc = cli_fail(&e);
out:
        if (started)
                engine_down(cli);
        cli_custody_free(&k);
        gmca_ctx_close(c);
        EVP_PKEY_free(key);
        X509_free(cert);
        EVP_PKEY_free(tsa.key);
        X509_free(tsa.cert);
        ocsp_free(&ok);
        pubs_free(&pubs);
        cli_pass_free(auto_pass, auto_pass_len);
        return rc;
}
