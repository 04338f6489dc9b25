/*
 * The public certificate search of the front (CPS §1.6.1, §4.6.3), for
 * relying parties and people, unsigned and read-only:
 *   GET /certs?serial=&cn=&o=&status=&type=&limit=&offset=   JSON search
 *   GET /certs/{serial}.pem, .der, /certs/{serial}/pubkey.pem downloads
 *   GET /repository.json   the CAs, their CRLs, the OCSP and CPS addresses
 *   GET /cps               the CPS document, if the state directory has one
 *   GET /, /app.js, /style.css, /favicon.svg   the search page (web/)
 * What anyone may see is what certsearch.h hands out: no private extension
 * values, no request data, no serialNumber in subjects (§8.3.2, §8.4.4).
 * The page's files are read on each request from web/ beside an installed
 * gmca (<prefix>/share/gmca/web) or else the source tree it was built from,
 * with an ETag and a Content-Security-Policy that lets in nothing but
 * themselves. Static names here start with srch_: this file is compiled
 * into one unit with routes.c and files.c by the unit test and the fuzzer.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.h"
#include "certsearch.h"
#include "crl.h"
#include "crypto.h"
#include "serve_internal.h"
#include "util.h"

#ifndef GMCA_DEFAULT_WEB
#define GMCA_DEFAULT_WEB "/usr/local/share/gmca/web"
#endif

#define SRCH_VALUE_MAX 256
#define SRCH_LIMIT_DEFAULT 20
#define SRCH_FILE_MAX (512 * 1024)      /* bytes of a page file */
#define SRCH_CPS_MAX (16 * 1024 * 1024) /* bytes of the CPS document */
#define SRCH_CA_MAX 32                  /* CAs listed in /repository.json */

static const char srch_csp_page[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
static const char srch_csp_data[] = "default-src 'none'; frame-ancestors 'none'; sandbox";

static const char *const srch_keys[] = {"serial", "cn", "o", "status", "type", "limit", "offset"};
#define SRCH_NKEYS (sizeof(srch_keys) / sizeof(srch_keys[0]))

struct srch_query {
        char val[SRCH_NKEYS][SRCH_VALUE_MAX];
        int given[SRCH_NKEYS];
};

/* ---- the query string ---- */

static int srch_key_index(const char *key)
{
        for (size_t i = 0; i < SRCH_NKEYS; i++)
                if (strcmp(srch_keys[i], key) == 0)
                        return (int)i;
        return -1;
}

/* "a=1&b=x": each key of srch_keys at most once, values percent-decoded. */
static int srch_parse_query(const char *qs, struct srch_query *q, struct gmca_error *e)
{
        memset(q, 0, sizeof(*q));
        for (const char *p = qs; p != NULL && *p != '\0';) {
                const char *amp = strchr(p, '&'), *eq;
                size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p), klen;
                char key[16];
                int k;

                eq = memchr(p, '=', n);
                klen = eq != NULL ? (size_t)(eq - p) : n;
                if (n == 0 || serve_pct_decode(p, klen, 1, key, sizeof(key)) != 0 ||
                    (k = srch_key_index(key)) < 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "query: parameters are serial, cn, o, status, "
                                              "type, limit, offset");
                if (q->given[k])
                        return gmca_error_set(e, GMCA_ERR_INVALID, "query: '%s' given twice", key);
                if (eq == NULL ||
                    serve_pct_decode(eq + 1, n - klen - 1, 1, q->val[k], SRCH_VALUE_MAX) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "query: '%s': a value of at most %d bytes, "
                                              "percent-encoded, without control characters",
                                              key, SRCH_VALUE_MAX - 1);
                q->given[k] = 1;
                p = amp != NULL ? amp + 1 : NULL;
        }
        return 0;
}

static const char *srch_get(const struct srch_query *q, const char *key)
{
        int k = srch_key_index(key);

        return k >= 0 && q->given[k] && q->val[k][0] != '\0' ? q->val[k] : NULL;
}

/* A decimal number min..max without sign or leading zero; absent: def. */
static int srch_number(const struct srch_query *q, const char *key, size_t min, size_t max,
                       size_t def, size_t *out, struct gmca_error *e)
{
        const char *s = srch_get(q, key);
        size_t v = 0, n;

        if (s == NULL) {
                *out = def;
                return 0;
        }
        n = strlen(s);
        for (size_t i = 0; i < n && n <= 9 && !(s[0] == '0' && n > 1); i++) {
                if (s[i] < '0' || s[i] > '9')
                        break;
                v = v * 10 + (size_t)(s[i] - '0');
                if (i + 1 == n && v >= min && v <= max) {
                        *out = v;
                        return 0;
                }
        }
        return gmca_error_set(e, GMCA_ERR_INVALID, "query: '%s': a number %zu..%zu", key, min, max);
}

/* UTF-8 text (jansson refuses anything else), for cn, o and type. */
static int srch_text(const struct srch_query *q, const char *key, const char **out,
                     struct gmca_error *e)
{
        const char *s = srch_get(q, key);
        json_t *probe;

        *out = s;
        if (s == NULL)
                return 0;
        if (strlen(s) > GMCA_SEARCH_TEXT_MAX || (probe = json_string(s)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "query: '%s': UTF-8 text of at most %d bytes", key,
                                      GMCA_SEARCH_TEXT_MAX);
        json_decref(probe);
        return 0;
}

/* The query into sq (serial is sq's buffer). */
static int srch_build(const struct srch_query *q, struct gmca_search_query *sq,
                      char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        const char *s;
        int st = GMCA_SEARCH_ANY, rc;

        memset(sq, 0, sizeof(*sq));
        if ((s = srch_get(q, "serial")) != NULL) {
                if (gmca_serial_normalize(s, serial) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "query: 'serial': 1..40 hexadecimal digits");
                sq->serial = serial;
        }
        if ((s = srch_get(q, "status")) != NULL && (st = gmca_search_status_from(s)) < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "query: 'status': valid, revoked or expired");
        sq->status = (enum gmca_search_status)st;
        if ((rc = srch_text(q, "cn", &sq->cn, e)) != 0 ||
            (rc = srch_text(q, "o", &sq->o, e)) != 0 ||
            (rc = srch_text(q, "type", &sq->profile, e)) != 0 ||
            (rc = srch_number(q, "limit", 1, GMCA_SEARCH_LIMIT_MAX, SRCH_LIMIT_DEFAULT, &sq->limit,
                              e)) != 0 ||
            (rc = srch_number(q, "offset", 0, GMCA_SEARCH_SCAN_MAX, 0, &sq->offset, e)) != 0)
                return rc;
        sq->now = gmca_now();
        return 0;
}

/* ---- GET /certs ---- */

struct srch_ca_names {
        int64_t id[SRCH_CA_MAX];
        char name[SRCH_CA_MAX][GMCA_NAME_MAX];
        char subject[SRCH_CA_MAX][GMCA_DN_MAX];
        size_t n;
};

struct srch_ctx {
        struct gmca_store *store;
        struct srch_ca_names cas;
        json_t *results;
};

static json_t *srch_time(int64_t t)
{
        char buf[32];

        if (t <= 0)
                return json_null();
        gmca_time_iso((time_t)t, buf, sizeof(buf));
        return json_string(buf);
}

/* The issuing CA's name and public subject; cached for the page. */
static int srch_issuer(struct srch_ctx *c, int64_t id, const char **name, const char **subject)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec ca;
        size_t i;

        for (i = 0; i < c->cas.n && c->cas.id[i] != id; i++)
                ;
        if (i == c->cas.n) {
                if (i == SRCH_CA_MAX)
                        return -1;
                memset(&ca, 0, sizeof(ca));
                if (gmca_store_ca_get_by_id(c->store, id, &ca, &e) != 0)
                        return -1;
                c->cas.id[i] = id;
                gmca_strlcpy(c->cas.name[i], ca.name, GMCA_NAME_MAX);
                if (gmca_dn_public(ca.subject, c->cas.subject[i], GMCA_DN_MAX) != 0)
                        c->cas.subject[i][0] = '\0';
                gmca_ca_rec_clear(&ca);
                c->cas.n++;
        }
        *name = c->cas.name[i];
        *subject = c->cas.subject[i];
        return 0;
}

static json_t *srch_links(const char *serial, const char *ca)
{
        char pem[80], der[80], pub[96], issuer[GMCA_NAME_MAX + 16];

        snprintf(pem, sizeof(pem), "/certs/%s.pem", serial);
        snprintf(der, sizeof(der), "/certs/%s.der", serial);
        snprintf(pub, sizeof(pub), "/certs/%s/pubkey.pem", serial);
        snprintf(issuer, sizeof(issuer), "/ca/%s.crt", ca);
        return json_pack("{s:s, s:s, s:s, s:s}", "pem", pem, "der", der, "pubkey", pub, "issuer",
                         issuer);
}

static int srch_hit(const struct gmca_search_hit *h, void *arg)
{
        struct srch_ctx *c = arg;
        const struct gmca_cert_rec *r = h->rec;
        const char *ca = "", *ca_subject = "";
        int revoked = h->status == GMCA_SEARCH_REVOKED;
        const char *reason = revoked ? gmca_crl_reason_name(r->reason) : NULL;
        json_t *v;

        if (srch_issuer(c, r->ca_id, &ca, &ca_subject) != 0)
                return GMCA_ERR_DB;
        v = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:o, s:o, s:s, s:o, s:o, s:s, s:o}",
                      "serial", r->serial, "subject", h->subject, "cn", h->cn, "o", h->o, "issuer",
                      "name", ca, "subject", ca_subject, "type", r->profile, "not_before",
                      srch_time(r->not_before), "not_after", srch_time(r->not_after), "status",
                      gmca_search_status_name(h->status), "revoked_at",
                      revoked ? srch_time(r->revoked_at) : json_null(), "reason",
                      reason != NULL ? json_string(reason) : json_null(), "fingerprint",
                      r->fingerprint, "links", srch_links(r->serial, ca));
        if (v == NULL || json_array_append_new(c->results, v) != 0)
                return GMCA_ERR_NOMEM;
        return 0;
}

static void srch_search(struct serve_worker *w, const char *qs, struct serve_reply *out)
{
        struct gmca_error e = {0};
        struct srch_query q;
        struct gmca_search_query sq;
        char serial[GMCA_SERIAL_HEX_MAX];
        struct srch_ctx *c;
        size_t total = 0;
        int capped = 0, rc;

        if (srch_parse_query(qs, &q, &e) != 0 || srch_build(&q, &sq, serial, &e) != 0) {
                serve_reply_error(out, 400, "bad_request", "%s", e.msg);
                return;
        }
        if ((c = calloc(1, sizeof(*c))) == NULL || (c->results = json_array()) == NULL) {
                free(c);
                serve_reply_error(out, 500, "internal", "out of memory");
                return;
        }
        c->store = w->store;
        rc = gmca_search_certs(w->store, &sq, srch_hit, c, &total, &capped, &e);
        if (rc != 0)
                serve_reply_error(out, 500, "internal", "search failed");
        else
                serve_reply_json(out, 200,
                                 json_pack("{s:I, s:b, s:I, s:I, s:o}", "total", (json_int_t)total,
                                           "total_capped", capped, "offset", (json_int_t)sq.offset,
                                           "limit", (json_int_t)sq.limit, "results", c->results));
        if (rc != 0)
                json_decref(c->results);
        free(c);
}

/* ---- GET /certs/{serial}.pem, .der, /certs/{serial}/pubkey.pem ---- */

enum srch_kind { SRCH_PEM, SRCH_DER, SRCH_PUBKEY };

/* The serial and what is asked for, from the path after "/certs/"; -1 if not one of them. */
static int srch_download_path(const char *rest, char serial[GMCA_SERIAL_HEX_MAX],
                              enum srch_kind *kind)
{
        static const struct {
                const char *suffix;
                enum srch_kind kind;
        } forms[] = {{".pem", SRCH_PEM}, {".der", SRCH_DER}, {"/pubkey.pem", SRCH_PUBKEY}};
        size_t n = strlen(rest);

        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
                size_t sl = strlen(forms[i].suffix);
                char hex[GMCA_SERIAL_HEX_MAX];

                if (n <= sl || n - sl >= sizeof(hex) || strcmp(rest + n - sl, forms[i].suffix) != 0)
                        continue;
                memcpy(hex, rest, n - sl);
                hex[n - sl] = '\0';
                if (strspn(hex, "0123456789ABCDEFabcdef") != n - sl ||
                    gmca_serial_normalize(hex, serial) != 0)
                        continue; /* "X/pubkey.pem" ends in ".pem" too */
                *kind = forms[i].kind;
                return 0;
        }
        return -1;
}

static void srch_pem_reply(struct serve_reply *out, X509 *x, enum srch_kind kind)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL;
        long n = 0;

        if (b != NULL && (kind == SRCH_PEM ? PEM_write_bio_X509(b, x)
                                           : PEM_write_bio_PUBKEY(b, X509_get0_pubkey(x))) == 1)
                n = BIO_get_mem_data(b, &pem);
        if (n > 0)
                serve_reply_bytes(out, 200, "application/x-pem-file", (const uint8_t *)pem,
                                  (size_t)n);
        else
                serve_reply_error(out, 500, "internal", "cannot encode the certificate");
        BIO_free(b);
}

static void srch_download(struct serve_worker *w, const char *rest, struct serve_reply *out)
{
        struct gmca_error e = {0};
        char serial[GMCA_SERIAL_HEX_MAX];
        struct gmca_cert_rec rec;
        enum srch_kind kind;
        const unsigned char *p;
        X509 *x = NULL;
        int rc;

        if (srch_download_path(rest, serial, &kind) != 0) {
                serve_reply_error(out, 404, "not_found",
                                  "no such path (/certs/{serial}.pem, .der or /pubkey.pem)");
                return;
        }
        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_cert_get(w->store, serial, &rec, &e)) != 0) {
                if (rc == GMCA_ERR_NOTFOUND)
                        serve_reply_error(out, 404, "not_found", "no certificate %s", serial);
                else
                        serve_reply_error(out, 500, "internal", "cannot read the certificate");
                return;
        }
        p = rec.der;
        if (kind == SRCH_DER)
                serve_reply_bytes(out, 200, "application/pkix-cert", rec.der, rec.der_len);
        else if ((x = d2i_X509(NULL, &p, (long)rec.der_len)) == NULL || p != rec.der + rec.der_len)
                serve_reply_error(out, 500, "internal", "stored certificate does not parse");
        else
                srch_pem_reply(out, x, kind);
        /* A certificate's bytes never change; its status is not in them. */
        if (out->status == 200)
                gmca_strlcpy(out->cache, "public, max-age=86400", sizeof(out->cache));
        X509_free(x);
        gmca_cert_rec_clear(&rec);
}

/* ---- GET /repository.json ---- */

struct srch_repo {
        struct gmca_store *store;
        json_t *cas;
};

static int srch_repo_ca(const struct gmca_ca_rec *ca, void *arg)
{
        struct srch_repo *r = arg;
        struct gmca_error e = {0};
        struct gmca_crl_rec crl;
        char subject[GMCA_DN_MAX], link[GMCA_NAME_MAX + 32];
        json_t *v;
        int has_crl, has_delta;

        if (json_array_size(r->cas) >= SRCH_CA_MAX)
                return 0;
        if (gmca_dn_public(ca->subject, subject, sizeof(subject)) != 0)
                subject[0] = '\0';
        snprintf(link, sizeof(link), "/ca/%s.crt", ca->name);
        v = json_pack("{s:s, s:s, s:s, s:s}", "name", ca->name, "subject", subject, "state",
                      ca->key_state[0] != '\0' ? ca->key_state : GMCA_KEY_ACTIVE, "certificate",
                      link);
        if (v == NULL)
                return GMCA_ERR_NOMEM;
        memset(&crl, 0, sizeof(crl));
        has_crl = gmca_store_crl_latest(r->store, ca->id, &crl, &e) == 0;
        if (has_crl) {
                snprintf(link, sizeof(link), "/crl/%s.crl", ca->name);
                json_object_set_new(v, "crl", json_string(link));
                json_object_set_new(v, "crl_number", json_integer(crl.number));
                json_object_set_new(v, "this_update", srch_time(crl.this_update));
                json_object_set_new(v, "next_update", srch_time(crl.next_update));
        }
        gmca_crl_rec_clear(&crl);
        gmca_error_clear(&e);
        has_delta = gmca_store_crl_latest_delta(r->store, ca->id, &crl, &e) == 0;
        if (has_delta) {
                snprintf(link, sizeof(link), "/crl/%s/delta.crl", ca->name);
                json_object_set_new(v, "delta_crl", json_string(link));
        }
        gmca_crl_rec_clear(&crl);
        return json_array_append_new(r->cas, v) == 0 ? 0 : GMCA_ERR_NOMEM;
}

/* base_url and cps_uri of the state directory's gmca.json, with init's defaults. */
static void srch_config(const char *dir, char *base, size_t blen, char *cps, size_t clen)
{
        char path[PATH_MAX];
        json_t *root = NULL;
        const char *s;

        gmca_strlcpy(base, "http://127.0.0.1:8080", blen);
        cps[0] = '\0';
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, GMCA_CONFIG_FILE) < sizeof(path))
                root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
        if ((s = json_string_value(json_object_get(root, "base_url"))) != NULL)
                gmca_strlcpy(base, s, blen);
        if ((s = json_string_value(json_object_get(root, "cps_uri"))) != NULL)
                gmca_strlcpy(cps, s, clen);
        else if ((size_t)snprintf(cps, clen, "%s/cps", base) >= clen)
                cps[0] = '\0'; /* a base_url that long leaves no room: no address */
        json_decref(root);
}

static const char *const srch_cps_files[][2] = {
    {"cps.pdf", "application/pdf"},
    {"cps.html", "text/html; charset=utf-8"},
    {"cps.txt", "text/plain; charset=utf-8"},
};
#define SRCH_NCPS (sizeof(srch_cps_files) / sizeof(srch_cps_files[0]))

/* The CPS document of the state directory (dir/cps.pdf, .html or .txt): its index, or -1. */
static int srch_cps_file(const char *dir, char *path, size_t len)
{
        struct stat st;

        for (size_t i = 0; i < SRCH_NCPS; i++)
                if ((size_t)snprintf(path, len, "%s/%s", dir, srch_cps_files[i][0]) < len &&
                    stat(path, &st) == 0 && S_ISREG(st.st_mode))
                        return (int)i;
        return -1;
}

static void srch_repository(struct serve_worker *w, struct serve_reply *out)
{
        struct gmca_error e = {0};
        struct srch_repo r = {w->store, json_array()};
        char base[512], cps[512], ocsp[560], path[PATH_MAX];
        int rc;

        if (r.cas == NULL) {
                serve_reply_error(out, 500, "internal", "out of memory");
                return;
        }
        if ((rc = gmca_store_ca_list(w->store, srch_repo_ca, &r, &e)) != 0) {
                json_decref(r.cas);
                serve_reply_error(out, 500, "internal", "cannot list the CAs");
                return;
        }
        srch_config(w->cfg->dir, base, sizeof(base), cps, sizeof(cps));
        snprintf(ocsp, sizeof(ocsp), "%s/ocsp", base);
        serve_reply_json(
            out, 200,
            json_pack("{s:o, s:o, s:s, s:o}", "cas", r.cas, "ocsp",
                      w->ocsp != NULL ? json_string(ocsp) : json_null(), "cps", cps, "cps_document",
                      srch_cps_file(w->cfg->dir, path, sizeof(path)) >= 0 ? json_string("/cps")
                                                                          : json_null()));
        gmca_strlcpy(out->cache, "no-cache", sizeof(out->cache));
}

/* ---- static files ---- */

/* web/ beside an installed gmca, else the source tree's. */
static const char *srch_web_dir(char *buf, size_t len)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;
        struct stat st;

        if (n > 0) {
                exe[n] = '\0';
                if ((slash = strrchr(exe, '/')) != NULL) {
                        *slash = '\0';
                        if ((size_t)snprintf(buf, len, "%s/../share/gmca/web", exe) < len &&
                            stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                                return buf;
                }
        }
        return GMCA_DEFAULT_WEB;
}

/*
 * A file with an ETag (the first 128 bits of its SM3) and cache, answering
 * a matching If-None-Match with 304.
 */
static void srch_file(const struct serve_request *rq, const char *path, const char *ctype,
                      const char *cache, size_t max, struct serve_reply *out)
{
        struct gmca_error e = {0};
        uint8_t *buf = NULL, md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1], etag[2 * GMCA_SM3_LEN + 3];
        size_t len = 0;
        int rc;

        if ((rc = gmca_read_file(path, max, &buf, &len, &e)) != 0) {
                serve_reply_error(out, rc == GMCA_ERR_NOTFOUND ? 404 : 500,
                                  rc == GMCA_ERR_NOTFOUND ? "not_found" : "internal",
                                  "%s is not available", strrchr(path, '/') + 1);
                return;
        }
        if (gmca_sm3(buf, len, md) != 0) {
                free(buf);
                serve_reply_error(out, 500, "internal", "cannot hash the file");
                return;
        }
        gmca_hex_upper(md, 16, hex);
        snprintf(etag, sizeof(etag), "\"%s\"", hex);
        if (rq->if_none_match[0] != '\0' && rq->if_none_match[0] != '\x01' &&
            serve_etag_match(rq->if_none_match, etag))
                serve_reply_bytes(out, 304, ctype, NULL, 0);
        else
                serve_reply_bytes(out, 200, ctype, buf, len);
        free(buf);
        if (out->status == 200 || out->status == 304) {
                gmca_strlcpy(out->etag, etag, sizeof(out->etag));
                gmca_strlcpy(out->cache, cache, sizeof(out->cache));
        }
}

static const struct {
        const char *path, *file, *ctype, *cache;
} srch_pages[] = {
    {"/", "index.html", "text/html; charset=utf-8", "no-cache"},
    {"/index.html", "index.html", "text/html; charset=utf-8", "no-cache"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8", "public, max-age=300"},
    {"/style.css", "style.css", "text/css; charset=utf-8", "public, max-age=300"},
    {"/favicon.svg", "favicon.svg", "image/svg+xml", "public, max-age=86400"},
};

static int srch_page(const struct serve_request *rq, const char *path, struct serve_reply *out)
{
        char dir[PATH_MAX], file[PATH_MAX + 32];

        for (size_t i = 0; i < sizeof(srch_pages) / sizeof(srch_pages[0]); i++) {
                if (strcmp(path, srch_pages[i].path) != 0)
                        continue;
                snprintf(file, sizeof(file), "%s/%s", srch_web_dir(dir, sizeof(dir)),
                         srch_pages[i].file);
                srch_file(rq, file, srch_pages[i].ctype, srch_pages[i].cache, SRCH_FILE_MAX, out);
                out->csp = srch_csp_page;
                return 1;
        }
        return 0;
}

/* ---- dispatch ---- */

static int srch_is_ours(const char *path)
{
        return strcmp(path, "/certs") == 0 || strncmp(path, "/certs/", 7) == 0 ||
               strcmp(path, "/repository.json") == 0 || strcmp(path, "/cps") == 0 ||
               strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
               strcmp(path, "/app.js") == 0 || strcmp(path, "/style.css") == 0 ||
               strcmp(path, "/favicon.svg") == 0;
}

static void srch_cps(struct serve_worker *w, const struct serve_request *rq,
                     struct serve_reply *out)
{
        char path[PATH_MAX];
        int i = srch_cps_file(w->cfg->dir, path, sizeof(path));

        if (i < 0)
                serve_reply_error(out, 404, "not_found",
                                  "no CPS document here; see /repository.json");
        else
                srch_file(rq, path, srch_cps_files[i][1], "no-cache", SRCH_CPS_MAX, out);
}

int serve_search(struct serve_worker *w, const struct serve_request *rq, const char *path,
                 const char *query, struct serve_reply *out)
{
        if (!srch_is_ours(path))
                return 0;
        out->csp = srch_csp_data;
        if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
                gmca_strlcpy(out->allow, "GET, HEAD", sizeof(out->allow));
                serve_reply_error(out, 405, "method_not_allowed",
                                  "%s is not allowed here (allowed: GET, HEAD)", rq->method);
        } else if (query != NULL && strcmp(path, "/certs") != 0) {
                serve_reply_error(out, 400, "bad_request", "no query string here");
        } else if (srch_page(rq, path, out)) {
                ;
        } else if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
        } else if (strcmp(path, "/certs") == 0) {
                srch_search(w, query, out);
        } else if (strcmp(path, "/repository.json") == 0) {
                srch_repository(w, out);
        } else if (strcmp(path, "/cps") == 0) {
                srch_cps(w, rq, out);
        } else {
                srch_download(w, path + 7, out);
        }
        return 1;
}
