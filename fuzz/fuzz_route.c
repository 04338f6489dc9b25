/*
 * Fuzz target for the front's own parsers of outside input (src/serve):
 * the request target (path segments, {id}, {serial}, percent-encoded
 * {name}, the route table's 404 and 405 answers), query strings against
 * the keys of every route, the request headers (each X-Gmca signature
 * header once and bounded, Content-Type), the signature headers again
 * through gmca_auth_verify's own parsing (strict base64 and the rest)
 * against a store without operators, and POST /tsa with a TSA configured.
 * An input is a small HTTP request:
 *     METHOD SP TARGET LF (NAME ":" VALUE LF)* LF BODY
 * built into a serve_request as http.c builds it. The front's sources are
 * not in gmcacore, so they are compiled in here, as tests/unit/test_serve.c
 * does (http.c needs libmicrohttpd and stays out).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "../src/serve/files.c"
#include "../src/serve/routes.c"
#include "../src/serve/ocsp.c"
#include "../src/serve/ocsp_rotate.c"
#include "../src/serve/tsa.c"
#include "../src/serve/search.c"

#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600 /* 2026-01-01: the requests' clock */

static char fz_dir[64];
static struct gmca_store *fz_store;
static struct gmca_serve_tsa fz_tsa;
static struct gmca_serve_config fz_cfg;
static struct serve_worker tsa_worker; /* only /tsa gets a worker: it needs no store */

static void cleanup(void)
{
        static const char *const files[] = {"gmca.db", "gmca.db-wal", "gmca.db-shm"};
        char path[128];

        gmca_store_close(fz_store);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", fz_dir, files[i]);
                unlink(path);
        }
        rmdir(fz_dir);
        EVP_PKEY_free(fz_tsa.key);
        X509_free(fz_tsa.cert);
}

/* A self-issued TSA certificate (EKU timeStamping, critical) and its key. */
static int make_tsa(struct gmca_error *e)
{
        static const int eku[] = {NID_time_stamp};
        struct gmca_cert_template t;
        X509_NAME *name = X509_NAME_new();
        X509 *built;
        unsigned char *der = NULL;
        const unsigned char *p;
        int len;

        if (name == NULL || (fz_tsa.key = gmca_sm2_keygen(e)) == NULL ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"fuzz TSA",
                                       -1, -1, 0) != 1) {
                X509_NAME_free(name);
                return -1;
        }
        memset(&t, 0, sizeof(t));
        t.subject = name;
        t.pubkey = fz_tsa.key;
        t.issuer_key = fz_tsa.key;
        memset(t.serial, 0x22, sizeof(t.serial));
        t.not_before = 0;
        t.not_after = (time_t)4102444800; /* 2100 */
        t.path_len = -1;
        t.key_usage = KU_DIGITAL_SIGNATURE;
        t.eku = eku;
        t.neku = 1;
        t.eku_critical = 1;
        built = gmca_cert_build(&t, e);
        X509_NAME_free(name);
        /*
         * gmca_cert_build leaves an end-entity certificate without a decoded
         * key (x509.c set_pubkey); a TSA certificate is read from a file.
         */
        if (built == NULL || (len = i2d_X509(built, &der)) <= 0) {
                X509_free(built);
                return -1;
        }
        X509_free(built);
        p = der;
        fz_tsa.cert = d2i_X509(NULL, &p, len);
        OPENSSL_free(der);
        return fz_tsa.cert != NULL ? 0 : -1;
}

static int init(void)
{
        struct gmca_error e = {0};
        char path[128];

        snprintf(fz_dir, sizeof(fz_dir), "%s", "/tmp/fuzz_route.XXXXXX");
        if (mkdtemp(fz_dir) == NULL)
                return -1;
        snprintf(path, sizeof(path), "%s/gmca.db", fz_dir);
        atexit(cleanup);
        if ((fz_store = gmca_store_open(path, &e)) == NULL || make_tsa(&e) != 0 ||
            gmca_serve_tsa_check(&fz_tsa, &e) != 0) {
                fprintf(stderr, "fuzz_route: %s\n", e.msg);
                return -1;
        }
        fz_cfg.tsa = &fz_tsa;
        tsa_worker.cfg = &fz_cfg;
        return 0;
}

/* The next line of [*p, end) without its LF (NULL at the end); *p moves past it. */
static const char *line(const char **p, const char *end, size_t *n)
{
        const char *s = *p, *lf;

        if (s >= end)
                return NULL;
        lf = memchr(s, '\n', (size_t)(end - s));
        *n = lf != NULL ? (size_t)(lf - s) : (size_t)(end - s);
        *p = lf != NULL ? lf + 1 : end;
        return s;
}

/* What on_uri does with the target. */
static void set_target(struct serve_request *rq, const char *t, size_t n)
{
        if (n == 0 || n > SERVE_TARGET_MAX) {
                rq->target_bad = 1;
                return;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
                        rq->target_bad = 1;
        memcpy(rq->target, t, n);
        rq->target[n] = '\0';
}

/* A parsed query holds only keys the route takes, once each, and no control characters. */
static void check_query(const struct query *q, const char *allowed)
{
        if (q->n > QUERY_PARAMS_MAX)
                abort();
        for (size_t i = 0; i < q->n; i++) {
                if (!key_allowed(allowed, q->p[i].key))
                        abort();
                for (size_t j = i + 1; j < q->n; j++)
                        if (strcmp(q->p[i].key, q->p[j].key) == 0)
                                abort();
                for (const char *c = q->p[i].val; *c != '\0'; c++)
                        if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                abort();
        }
}

static void queries(const char *qs)
{
        static const char *const ints[] = {"limit", "offset", "after", "applicant", "application"};
        struct gmca_error e;
        struct query q;
        int64_t v;

        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                gmca_error_clear(&e);
                if (parse_query(qs, routes[i].query, &q, &e) != 0)
                        continue;
                check_query(&q, routes[i].query);
                for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
                        gmca_error_clear(&e);
                        if (q_int(&q, ints[k], 0, ID_MAX, 7, &v, &e) == 0 && (v < 0 || v > ID_MAX))
                                abort();
                }
        }
}

/* The reply is one the front may give without a worker (or with the TSA's). */
static void check_reply(const struct serve_reply *out, int tsa_path)
{
        json_t *j;

        if (out->data == NULL && out->len != 0)
                abort();
        switch (out->status) {
        case 200:
                /* /tsa answers a TimeStampResp, also to garbage (RFC 3161 §3.4). */
                if (tsa_path &&
                    (out->ctype == NULL || strcmp(out->ctype, "application/timestamp-reply") != 0 ||
                     out->len == 0))
                        abort();
                return;
        case 400:
        case 404:
        case 503:
                break;
        case 405:
                if (out->allow[0] == '\0')
                        abort();
                break;
        case 413:
        case 415:
                if (!tsa_path)
                        abort();
                break;
        default:
                abort(); /* 500 and the rest: a parser failed on input it should refuse */
        }
        if ((j = json_loadb(out->data, out->len, 0, NULL)) == NULL ||
            json_string_value(json_object_get(j, "error")) == NULL)
                abort();
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data, *end = p + size, *l, *sp, *qm;
        struct serve_request *rq;
        struct serve_reply out;
        struct gmca_auth_result who;
        struct gmca_error e;
        char path[SERVE_TARGET_MAX + 1];
        size_t n;
        int tsa_path;

        if (fz_store == NULL && init() != 0)
                __builtin_trap(); /* a harness that cannot start must not pass */
        if ((l = line(&p, end, &n)) == NULL || (sp = memchr(l, ' ', n)) == NULL ||
            (size_t)(sp - l) > SERVE_METHOD_MAX || memchr(l, '\0', n) != NULL)
                return 0;
        if ((rq = calloc(1, sizeof(*rq))) == NULL)
                return 0;
        memcpy(rq->method, l, (size_t)(sp - l));
        set_target(rq, sp + 1, n - (size_t)(sp - l) - 1);
        snprintf(rq->remote, sizeof(rq->remote), "192.0.2.1");
        /* Headers up to an empty line; the rest is the body. */
        while ((l = line(&p, end, &n)) != NULL && n > 0) {
                char key[64], value[512], *v;
                const char *colon = memchr(l, ':', n);
                size_t kl, vl;

                if (colon == NULL || (kl = (size_t)(colon - l)) >= sizeof(key) ||
                    (vl = n - kl - 1) >= sizeof(value))
                        continue;
                memcpy(key, l, kl);
                key[kl] = '\0';
                memcpy(value, colon + 1, vl);
                value[vl] = '\0';
                /* libmicrohttpd hands over values without the whitespace around them. */
                while (vl > 0 && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
                        value[--vl] = '\0';
                for (v = value; *v == ' ' || *v == '\t'; v++)
                        ;
                serve_request_header(rq, key, v);
        }
        rq->body = (uint8_t *)p;
        rq->len = (size_t)(end - p);
        tsa_path = strcmp(rq->target, "/tsa") == 0;

        /* The request as http.c hands it over (a body over the cap is 413 before this). */
        memset(&out, 0, sizeof(out));
        if (rq->len <= serve_body_max(rq->target)) {
                serve_dispatch(tsa_path ? &tsa_worker : NULL, rq, &out);
                check_reply(&out, tsa_path);
                free(out.data);
        }

        /* Query strings against every route's keys. */
        if (!rq->target_bad) {
                gmca_strlcpy(path, rq->target, sizeof(path));
                if ((qm = strchr(path, '?')) != NULL)
                        queries(qm + 1);
        }

        /* The signature headers: no request is accepted without an operator. */
        gmca_error_clear(&e);
        memset(&who, 0, sizeof(who));
        if (rq->hdr_bad == NULL && !rq->target_bad && rq->len <= GMCA_AUTH_BODY_MAX &&
            gmca_auth_verify(fz_store, &rq->hdr, rq->method, rq->target, rq->body, rq->len, NOW,
                             &who, &e) == 0)
                abort();
        gmca_auth_result_clear(&who);
        free(rq);
        return 0;
}
