/*
 * gmca api: a small client of the RA front's signed API, for scripts and
 * tests. It signs the request with the operator's key and certificate
 * (gmca_auth_sign), sends it with libcurl, prints the response body, and
 * turns the HTTP status into the command's exit status. A few options
 * exist only so that tests can show the front refusing what it must: a
 * chosen timestamp or nonce, no signature, a body other than the one signed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth.h"
#include "cli.h"
#include "crypto.h"
#include "util.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define DATA_MAX (8u << 20)      /* a test may send more than the front takes */
#define RESPONSE_MAX (64u << 20) /* bytes of a response kept */
#define TIMEOUT_SEC 300L

static const char usage[] =
    "usage: gmca api [--url URL] --key FILE [--pass-file FILE] --cert FILE\n"
    "                METHOD TARGET [--data JSON | --data @FILE]\n"
    "\n"
    "Sends one signed request to the RA front (docs/api.md) as the operator\n"
    "whose key and certificate are given, and prints the response body.\n"
    "\n"
    "  --url URL         the front (default " DEFAULT_URL ")\n"
    "  --key FILE        the operator's SM2 private key (PEM)\n"
    "  --pass-file FILE  its passphrase, if it has one\n"
    "  --cert FILE       the operator's certificate\n"
    "  METHOD            GET, POST, PATCH ...\n"
    "  TARGET            path and query, e.g. /api/v1/applications?state=vetted\n"
    "  --data JSON       the request body; @FILE reads it from FILE (@- stdin)\n"
    "\n"
    "Test aids (to show the front's refusals; never needed otherwise):\n"
    "  --timestamp UNIX  sign with this time instead of now\n"
    "  --nonce N         sign with this nonce instead of a fresh one\n"
    "  --unsigned        send no signature headers at all\n"
    "  --tamper-body     sign the body, then send it with its last byte changed\n"
    "\n"
    "Exit status: 0 for 2xx, 3 for 400/413, 5 for 401/403, 4 for 404,\n"
    "6 for 409/422, 1 otherwise (\"gmca: <message> (HTTP <status>)\" on stderr).\n";

struct api_opts {
        const char *url, *key, *pass, *cert, *data, *nonce;
        int64_t timestamp; /* 0: now */
        int unsign, tamper;
};

struct buf {
        char *p;
        size_t len, cap;
        int over;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
        struct buf *b = arg;
        size_t len = size * n;

        if (len > RESPONSE_MAX - b->len) {
                b->over = 1;
                return 0;
        }
        if (b->cap - b->len < len + 1) {
                size_t cap = b->cap == 0 ? 4096 : b->cap;
                char *p;

                while (cap - b->len < len + 1)
                        cap *= 2;
                if ((p = realloc(b->p, cap)) == NULL)
                        return 0;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, ptr, len);
        b->len += len;
        b->p[b->len] = '\0';
        return len;
}

/* Sign with a nonce of the caller's choosing (a test aid: replays). */
static int sign_with_nonce(EVP_PKEY *key, X509 *cert, const char *method, const char *target,
                           const uint8_t *body, size_t len, int64_t now, const char *nonce,
                           struct gmca_auth_headers *h, struct gmca_error *e)
{
        uint8_t *der = NULL, *sig = NULL;
        size_t siglen = 0;
        char *base = NULL;
        int dlen, rc;

        memset(h, 0, sizeof(*h));
        if ((dlen = i2d_X509(cert, &der)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "operator certificate: encoding");
        gmca_auth_fingerprint(der, (size_t)dlen, h->operator_fpr);
        OPENSSL_free(der);
        snprintf(h->timestamp, sizeof(h->timestamp), "%lld", (long long)now);
        if (strlen(nonce) >= sizeof(h->nonce))
                return gmca_error_set(e, GMCA_ERR_INVALID, "--nonce: at most %d characters",
                                      GMCA_AUTH_NONCE_MAX);
        gmca_strlcpy(h->nonce, nonce, sizeof(h->nonce));
        if ((rc = gmca_auth_base(method, target, h->timestamp, h->nonce, body, len, h->operator_fpr,
                                 &base, e)) != 0 ||
            (rc = gmca_sm2_sign(key, GMCA_SM2_DEFAULT_ID, (const uint8_t *)base, strlen(base), &sig,
                                &siglen, e)) != 0)
                goto out;
        if (4 * ((siglen + 2) / 3) >= sizeof(h->signature)) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "signature too long");
                goto out;
        }
        EVP_EncodeBlock((unsigned char *)h->signature, sig, (int)siglen);
out:
        free(base);
        OPENSSL_free(sig);
        return rc;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
        char line[256];
        struct curl_slist *l;

        snprintf(line, sizeof(line), "%s: %s", name, value);
        if ((l = curl_slist_append(*list, line)) == NULL)
                return -1;
        *list = l;
        return 0;
}

/* HTTP status -> exit status. */
static int status_exit(long status)
{
        if (status >= 200 && status < 300)
                return EXIT_OK;
        switch (status) {
        case 400:
        case 413:
                return EXIT_INPUT;
        case 401:
        case 403:
                return EXIT_AUTH;
        case 404:
                return EXIT_NOTFOUND;
        case 409:
        case 422:
                return EXIT_POLICY;
        }
        return EXIT_FAIL;
}

/* "gmca: <message> (HTTP <status>)", the message from the error body if it has one. */
static void report(long status, const struct buf *resp)
{
        json_t *j = resp->p != NULL ? json_loadb(resp->p, resp->len, 0, NULL) : NULL;
        const char *msg = json_string_value(json_object_get(j, "message"));
        char line[GMCA_ERROR_MSG_MAX];
        size_t i;

        snprintf(line, sizeof(line), "%s", msg != NULL ? msg : "request failed");
        for (i = 0; line[i] != '\0'; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        fprintf(stderr, "gmca: %s (HTTP %ld)\n", line, status);
        json_decref(j);
}

static int valid_method(const char *m)
{
        size_t n = strlen(m);

        if (n == 0 || n > 15)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (m[i] < 'A' || m[i] > 'Z')
                        return 0;
        return 1;
}

static int send_request(const struct api_opts *o, const char *method, const char *target,
                        const uint8_t *body, size_t len, const struct gmca_auth_headers *h,
                        struct buf *resp, long *status, struct gmca_error *e)
{
        struct curl_slist *hdrs = NULL;
        char url[8192], errbuf[CURL_ERROR_SIZE] = "";
        size_t ulen = strlen(o->url);
        CURL *curl = NULL;
        CURLcode cc;
        int rc = GMCA_ERR_INTERNAL;

        while (ulen > 0 && o->url[ulen - 1] == '/')
                ulen--;
        if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "--url: http:// or https://");
        if (ulen + strlen(target) >= sizeof(url))
                return gmca_error_set(e, GMCA_ERR_INVALID, "URL too long");
        memcpy(url, o->url, ulen);
        memcpy(url + ulen, target, strlen(target) + 1);
        if ((curl = curl_easy_init()) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "curl: cannot start");
        if (h != NULL && (add_header(&hdrs, "X-Gmca-Operator", h->operator_fpr) != 0 ||
                          add_header(&hdrs, "X-Gmca-Timestamp", h->timestamp) != 0 ||
                          add_header(&hdrs, "X-Gmca-Nonce", h->nonce) != 0 ||
                          add_header(&hdrs, "X-Gmca-Signature", h->signature) != 0)) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if (len > 0 && add_header(&hdrs, "Content-Type", "application/json") != 0) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        curl_easy_setopt(curl, CURLOPT_URL, url);
        /* The path is signed as written: curl must not squash "/../" or the like. */
        curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, TIMEOUT_SEC);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
        if (strcmp(method, "GET") == 0 && len == 0) {
                curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        } else if (strcmp(method, "HEAD") == 0) {
                curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        } else {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
                curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        }
        if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
                rc = gmca_error_set(e, resp->over ? GMCA_ERR_LIMIT : GMCA_ERR_IO, "%s: %s", url,
                                    resp->over          ? "response too large"
                                    : errbuf[0] != '\0' ? errbuf
                                                        : curl_easy_strerror(cc));
                goto out;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
        rc = 0;
out:
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(curl);
        return rc;
}

int cmd_api(struct cli *cli, int argc, char **argv)
{
        static const struct option opts[] = {
            {"url", required_argument, NULL, 'u'},
            {"key", required_argument, NULL, 'k'},
            {"pass-file", required_argument, NULL, 'P'},
            {"cert", required_argument, NULL, 'c'},
            {"data", required_argument, NULL, 'd'},
            {"timestamp", required_argument, NULL, 'T'},
            {"nonce", required_argument, NULL, 'n'},
            {"unsigned", no_argument, NULL, 'U'},
            {"tamper-body", no_argument, NULL, 'X'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct api_opts o = {.url = DEFAULT_URL};
        struct gmca_auth_headers h;
        struct gmca_error e = {0};
        struct buf resp = {0};
        const char *method, *target;
        uint8_t *body = NULL;
        size_t len = 0;
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        long status = 0;
        int ch, rc = EXIT_FAIL;

        (void)cli;
        /* Start getopt afresh (main's "+" stops at the first operand): options may
         * follow METHOD and TARGET. */
        optind = 0;
        while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (ch) {
                case 'u':
                        o.url = optarg;
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
                case 'd':
                        o.data = optarg;
                        break;
                case 'T': {
                        char *end;
                        long long t = strtoll(optarg, &end, 10);

                        if (*optarg == '\0' || *end != '\0' || t <= 0)
                                return cli_usage_error("--timestamp: seconds since 1970");
                        o.timestamp = t;
                        break;
                }
                case 'n':
                        o.nonce = optarg;
                        break;
                case 'U':
                        o.unsign = 1;
                        break;
                case 'X':
                        o.tamper = 1;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (argc - optind != 2)
                return cli_usage_error("api: METHOD and TARGET expected");
        method = argv[optind];
        target = argv[optind + 1];
        if (!valid_method(method))
                return cli_usage_error("api: METHOD in capitals, e.g. GET or POST");
        if (target[0] != '/')
                return cli_usage_error("api: TARGET starts with '/'");
        if (!o.unsign && (o.key == NULL || o.cert == NULL))
                return cli_usage_error("api: --key and --cert are required");
        if (o.data != NULL && o.data[0] == '@') {
                if (gmca_read_file(o.data + 1, DATA_MAX, &body, &len, &e) != 0)
                        return cli_fail(&e);
        } else if (o.data != NULL) {
                len = strlen(o.data);
                if ((body = malloc(len + 1)) == NULL) {
                        gmca_error_set(&e, GMCA_ERR_NOMEM, "out of memory");
                        return cli_fail(&e);
                }
                memcpy(body, o.data, len + 1);
        }
        if (!o.unsign) {
                int64_t now = o.timestamp != 0 ? o.timestamp : (int64_t)gmca_now();

                if ((key = cli_load_key(o.key, o.pass, &e)) == NULL ||
                    (cert = cli_load_cert(o.cert, &e)) == NULL)
                        goto fail;
                if (o.nonce != NULL
                        ? sign_with_nonce(key, cert, method, target, body, len, now, o.nonce, &h,
                                          &e) != 0
                        : gmca_auth_sign(key, cert, method, target, body, len, now, &h, &e) != 0)
                        goto fail;
        }
        if (o.tamper) {
                /* What was signed is not what is sent. */
                if (len == 0) {
                        free(body);
                        if ((body = (uint8_t *)strdup("{}")) == NULL)
                                goto fail;
                        len = 2;
                } else {
                        body[len - 1] ^= 0x01;
                }
        }
        if (send_request(&o, method, target, body, len, o.unsign ? NULL : &h, &resp, &status, &e) !=
            0)
                goto fail;
        if (resp.len > 0 && fwrite(resp.p, 1, resp.len, stdout) != resp.len) {
                gmca_error_set(&e, GMCA_ERR_IO, "stdout: write failed");
                goto fail;
        }
        fflush(stdout);
        rc = status_exit(status);
        if (rc != EXIT_OK)
                report(status, &resp);
        goto out;
fail:
        rc = cli_fail(&e);
out:
        free(resp.p);
        free(body);
        EVP_PKEY_free(key);
        X509_free(cert);
        return rc;
}
