/*
 * bench_load: a bounded load on the RA front (issue 9 item 5), loopback
 * only. CLIENTS threads, each a client of the signed API (gmca_auth_sign,
 * as gmca api signs) on its own kept-alive connection, for SECONDS: an
 * SM2 key and CSR of its own, apply (business operator), vet (business
 * admin B), approve (business admin C: the CA engine issues), and every
 * second certificate revoked at once by the CA (§3.9.1 case G) and then
 * asked of the OCSP responder until it answers "revoked" (2 s at most).
 *
 *   bench_load DIR URL CLIENTS SECONDS
 *
 * DIR holds the operators' keys and certificates (opA, adminB, adminC:
 * NAME.key, NAME.pem), the issuing CA's certificate (sub.pem) and the
 * applicant's id (applicant). What clients were told goes to DIR/told
 * (one serial a line, from a 2xx answer) and DIR/revoked (acknowledged
 * revocations), for the caller's check against the store, CRL and audit
 * chain (bench/load.sh). Prints throughput, latency percentiles and error
 * counts; exits 1 if an answer was inconsistent (a 2xx without a serial,
 * a revoked certificate OCSP does not call revoked), 0 otherwise: errors
 * under load are counted, not fatal — the caller's invariants decide.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth.h"
#include "crypto.h"
#include "util.h"

#define CLIENTS_MAX 1000
#define RESPONSE_MAX (1u << 20)
#define OCSP_WAIT_SEC 2.0

enum op { OP_ISSUE, OP_REVOKE, OP_OCSP, OP_REQUEST, OP_N };
static const char *const op_names[OP_N] = {"issuance", "revocation", "ocsp check", "request"};

struct who {
        EVP_PKEY *key;
        X509 *cert;
};

/* Read-only after main sets it up. */
static struct {
        const char *dir, *url;
        struct who op_a, admin_b, admin_c;
        X509 *issuer;
        long long applicant;
        double deadline;
} G;

/* One latency series: seconds, grown as needed. */
struct series {
        double *v;
        size_t n, cap;
};

struct client {
        pthread_t tid;
        int id;
        CURL *curl;
        struct series lat[OP_N];
        long errors[OP_N];
        long inconsistent;
        char **told, **revoked; /* serials */
        size_t ntold, nrevoked;
};

struct buf {
        char *p;
        size_t len;
};

static double now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
        fprintf(stderr, "bench_load: %s: %s\n", what, why);
        exit(2);
}

static int push(struct series *s, double v)
{
        if (s->n == s->cap) {
                size_t cap = s->cap == 0 ? 256 : 2 * s->cap;
                double *p = realloc(s->v, cap * sizeof(*p));

                if (p == NULL)
                        return -1;
                s->v = p;
                s->cap = cap;
        }
        s->v[s->n++] = v;
        return 0;
}

static int push_str(char ***list, size_t *n, const char *s)
{
        char **p = realloc(*list, (*n + 1) * sizeof(*p));

        if (p == NULL)
                return -1;
        *list = p;
        if ((p[*n] = strdup(s)) == NULL)
                return -1;
        (*n)++;
        return 0;
}

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
        struct buf *b = arg;
        size_t len = size * n;
        char *p;

        if (len > RESPONSE_MAX - b->len || (p = realloc(b->p, b->len + len + 1)) == NULL)
                return 0;
        b->p = p;
        memcpy(b->p + b->len, ptr, len);
        b->len += len;
        b->p[b->len] = '\0';
        return len;
}

/*
 * One HTTP exchange on the client's connection: signed by w if w is not
 * NULL (JSON body), else an OCSP request. The HTTP status, or -1 if none
 * came; *resp is the body (caller frees resp->p).
 */
static long exchange(struct client *c, const struct who *w, const char *method, const char *target,
                     const uint8_t *body, size_t len, struct buf *resp)
{
        struct gmca_auth_headers h;
        struct gmca_error e = {0};
        struct curl_slist *hdrs = NULL;
        char url[1024], line[256];
        long status = -1;
        double t0 = now_mono();

        memset(resp, 0, sizeof(*resp));
        snprintf(url, sizeof(url), "%s%s", G.url, target);
        if (w != NULL) {
                if (gmca_auth_sign(w->key, w->cert, method, target, body, len, (int64_t)time(NULL),
                                   &h, &e) != 0)
                        die("signing", e.msg);
                snprintf(line, sizeof(line), "X-Gmca-Operator: %s", h.operator_fpr);
                hdrs = curl_slist_append(hdrs, line);
                snprintf(line, sizeof(line), "X-Gmca-Timestamp: %s", h.timestamp);
                hdrs = curl_slist_append(hdrs, line);
                snprintf(line, sizeof(line), "X-Gmca-Nonce: %s", h.nonce);
                hdrs = curl_slist_append(hdrs, line);
                snprintf(line, sizeof(line), "X-Gmca-Signature: %s", h.signature);
                hdrs = curl_slist_append(hdrs, line);
        }
        if (len > 0)
                hdrs =
                    curl_slist_append(hdrs, w != NULL ? "Content-Type: application/json"
                                                      : "Content-Type: application/ocsp-request");
        curl_easy_reset(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, resp);
        if (strcmp(method, "GET") == 0) {
                curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        } else {
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS,
                                 body != NULL ? (const char *)body : "");
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        if (curl_easy_perform(c->curl) == CURLE_OK)
                curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        push(&c->lat[OP_REQUEST], now_mono() - t0);
        if (status < 200 || status > 299)
                c->errors[OP_REQUEST]++;
        return status;
}

/* A signed JSON request; the answer parsed, or NULL (not 2xx, or not JSON). */
static json_t *call(struct client *c, const struct who *w, const char *method, const char *target,
                    json_t *body)
{
        char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
        struct buf resp;
        json_t *j = NULL;
        long st;

        st = exchange(c, w, method, target, (const uint8_t *)text, text ? strlen(text) : 0, &resp);
        if (st >= 200 && st <= 299 && resp.p != NULL)
                j = json_loadb(resp.p, resp.len, 0, NULL);
        free(resp.p);
        free(text);
        json_decref(body);
        return j;
}

/* A fresh SM2 key's CSR, PEM (caller frees), or NULL. */
static char *make_csr(int client, long n)
{
        struct gmca_error e = {0};
        EVP_PKEY *key = gmca_sm2_keygen(&e);
        X509_REQ *req = X509_REQ_new();
        X509_NAME *name = X509_NAME_new();
        EVP_MD_CTX *mctx = NULL;
        BIO *mem = BIO_new(BIO_s_mem());
        char cn[64], *pem = NULL, *p;
        long len;

        snprintf(cn, sizeof(cn), "负载用户 %d-%ld", client, n);
        if (key == NULL || req == NULL || name == NULL || mem == NULL ||
            X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"CN", -1, -1,
                                       0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                       0) != 1 ||
            X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
            (mctx = gmca_sm2_sign_ctx(key, NULL, &e)) == NULL ||
            X509_REQ_sign_ctx(req, mctx) <= 0 || PEM_write_bio_X509_REQ(mem, req) != 1)
                goto out;
        len = BIO_get_mem_data(mem, &p);
        if ((pem = malloc((size_t)len + 1)) != NULL) {
                memcpy(pem, p, (size_t)len);
                pem[len] = '\0';
        }
out:
        BIO_free(mem);
        EVP_MD_CTX_free(mctx);
        X509_NAME_free(name);
        X509_REQ_free(req);
        EVP_PKEY_free(key);
        return pem;
}

/* "vet" or "approve" application app, naming the submission as read now. */
static json_t *decide(struct client *c, const struct who *w, long long app, const char *what)
{
        char target[128];
        json_t *a, *body;
        const char *sub;

        snprintf(target, sizeof(target), "/api/v1/applications/%lld", app);
        if ((a = call(c, w, "GET", target, NULL)) == NULL)
                return NULL;
        sub = json_string_value(json_object_get(a, "submission"));
        body = strcmp(what, "vet") == 0
                   ? json_pack("{s:s, s:[s], s:s, s:s}", "method", "in_person", "documents",
                               "居民身份证原件", "result", "pass", "submission", sub ? sub : "")
                   : json_pack("{s:s, s:s}", "reason", "材料齐全", "submission", sub ? sub : "");
        json_decref(a);
        snprintf(target, sizeof(target), "/api/v1/applications/%lld/%s", app, what);
        return call(c, w, "POST", target, body);
}

/* 1 if j's member key is the string want. */
static int is(json_t *j, const char *key, const char *want)
{
        const char *v = json_string_value(json_object_get(j, key));

        return v != NULL && strcmp(v, want) == 0;
}

/* One issuance through the three operators; the serial told, or 0 and none. */
static int issue(struct client *c, long n, char serial[GMCA_SERIAL_HEX_MAX])
{
        char *csr = make_csr(c->id, n);
        json_t *a = NULL, *v = NULL, *ok = NULL;
        const char *s;
        double t0 = now_mono();
        int rc = -1;

        if (csr == NULL)
                die("CSR", "cannot make one");
        a = call(c, &G.op_a, "POST", "/api/v1/applications",
                 json_pack("{s:I, s:s, s:s, s:{s:s}, s:[s]}", "applicant", (json_int_t)G.applicant,
                           "profile", "personal-sign", "csr", csr, "subject_info",
                           "identity_card_number", "11010519491231002X", "materials", "申请表"));
        if (a == NULL ||
            (v = decide(c, &G.admin_b, json_integer_value(json_object_get(a, "id")), "vet")) ==
                NULL ||
            (ok = decide(c, &G.admin_c, json_integer_value(json_object_get(a, "id")), "approve")) ==
                NULL)
                goto out;
        s = json_string_value(json_object_get(ok, "serial"));
        if (!is(ok, "state", "issued"))
                goto out; /* e.g. the engine busy: approved, not issued; an error */
        if (s == NULL || strlen(s) >= GMCA_SERIAL_HEX_MAX) {
                c->inconsistent++;
                fprintf(stderr, "bench_load: issued without a serial\n");
                goto out;
        }
        gmca_strlcpy(serial, s, GMCA_SERIAL_HEX_MAX);
        push(&c->lat[OP_ISSUE], now_mono() - t0);
        push_str(&c->told, &c->ntold, serial);
        rc = 0;
out:
        if (rc != 0)
                c->errors[OP_ISSUE]++;
        json_decref(a);
        json_decref(v);
        json_decref(ok);
        free(csr);
        return rc;
}

static int revoke_one(struct client *c, const char *serial)
{
        double t0 = now_mono();
        json_t *r =
            call(c, &G.admin_b, "POST", "/api/v1/revocations",
                 json_pack("{s:s, s:s, s:s}", "serial", serial, "reason", "G", "requester", "ca"));
        int done = is(r, "state", "completed");

        json_decref(r);
        if (!done) {
                c->errors[OP_REVOKE]++;
                return -1;
        }
        push(&c->lat[OP_REVOKE], now_mono() - t0);
        push_str(&c->revoked, &c->nrevoked, serial);
        return 0;
}

/* V_OCSP_CERTSTATUS_* of serial from the responder, or -1. */
static int ocsp_status(struct client *c, const char *serial)
{
        OCSP_REQUEST *req = OCSP_REQUEST_new();
        OCSP_RESPONSE *resp = NULL;
        OCSP_BASICRESP *basic = NULL;
        OCSP_CERTID *id = NULL;
        BIGNUM *bn = NULL;
        ASN1_INTEGER *sn = NULL;
        uint8_t *der = NULL;
        const unsigned char *p;
        struct buf b = {0};
        int len, status = -1, reason;

        if (req == NULL || BN_hex2bn(&bn, serial) == 0 ||
            (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
            (id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(G.issuer),
                                   X509_get0_pubkey_bitstr(G.issuer), sn)) == NULL ||
            OCSP_request_add0_id(req, id) == NULL) {
                OCSP_CERTID_free(id);
                goto out;
        }
        id = OCSP_CERTID_dup(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)));
        if ((len = i2d_OCSP_REQUEST(req, &der)) <= 0)
                goto out;
        if (exchange(c, NULL, "POST", "/ocsp", der, (size_t)len, &b) != 200 || b.p == NULL)
                goto out;
        p = (const unsigned char *)b.p;
        if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b.len)) == NULL ||
            OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
            (basic = OCSP_response_get1_basic(resp)) == NULL)
                goto out;
        if (OCSP_resp_find_status(basic, id, &status, &reason, NULL, NULL, NULL) != 1)
                status = -1;
out:
        OCSP_CERTID_free(id);
        OCSP_BASICRESP_free(basic);
        OCSP_RESPONSE_free(resp);
        OCSP_REQUEST_free(req);
        OPENSSL_free(der);
        ASN1_INTEGER_free(sn);
        BN_free(bn);
        free(b.p);
        return status;
}

/* Ask until "revoked" (a cached "good" may stand for a moment); inconsistent if
 * never. */
static void ocsp_check(struct client *c, const char *serial)
{
        double t0 = now_mono();
        int st;

        while ((st = ocsp_status(c, serial)) != V_OCSP_CERTSTATUS_REVOKED &&
               now_mono() - t0 < OCSP_WAIT_SEC)
                usleep(100000);
        if (st == V_OCSP_CERTSTATUS_REVOKED) {
                push(&c->lat[OP_OCSP], now_mono() - t0);
                return;
        }
        c->errors[OP_OCSP]++;
        if (st >= 0) {
                c->inconsistent++;
                fprintf(stderr, "bench_load: OCSP: %s revoked, answered %s\n", serial,
                        OCSP_cert_status_str(st));
        }
}

static void *run(void *arg)
{
        struct client *c = arg;
        char serial[GMCA_SERIAL_HEX_MAX];
        long n = 0;

        while (now_mono() < G.deadline) {
                if (issue(c, n++, serial) != 0) {
                        usleep(50000);
                        continue;
                }
                if (n % 2 == 0 && revoke_one(c, serial) == 0)
                        ocsp_check(c, serial);
        }
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* One line of the report for op: count, rate, errors, percentiles in ms. */
static void report(enum op o, struct series *all, long errors, double secs)
{
        double *v = all->v;
        size_t n = all->n;

        if (n > 0)
                qsort(v, n, sizeof(*v), cmp_double);
#define PCT(p) (n > 0 ? 1000 * v[(size_t)((double)(n - 1) * (p))] : 0.0)
        printf("%-11s %7zu done %8.2f/s %6ld errors  ms: p50 %7.1f p90 %7.1f p99 %7.1f "
               "max %7.1f\n",
               op_names[o], n, (double)n / secs, errors, PCT(0.5), PCT(0.9), PCT(0.99), PCT(1.0));
#undef PCT
}

static void load_who(struct who *w, const char *name)
{
        char path[4096];
        struct gmca_error e = {0};
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.key", G.dir, name);
        if ((f = fopen(path, "r")) == NULL ||
            (w->key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
                die(path, "cannot read the key");
        fclose(f);
        snprintf(path, sizeof(path), "%s/%s.pem", G.dir, name);
        if ((f = fopen(path, "r")) == NULL ||
            (w->cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
                die(path, "cannot read the certificate");
        fclose(f);
        (void)e;
}

static void write_list(const char *name, struct client *cl, int n, int revoked)
{
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", G.dir, name);
        if ((f = fopen(path, "w")) == NULL)
                die(path, strerror(errno));
        for (int i = 0; i < n; i++)
                for (size_t k = 0; k < (revoked ? cl[i].nrevoked : cl[i].ntold); k++)
                        fprintf(f, "%s\n", revoked ? cl[i].revoked[k] : cl[i].told[k]);
        if (fclose(f) != 0)
                die(path, strerror(errno));
}

/* A positive decimal of at most 9 digits; -1 for anything else. */
static long number(const char *s)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        return errno == 0 && end != s && *end == '\0' && v > 0 && v < 1000000000L ? v : -1;
}

int main(int argc, char **argv)
{
        struct client *cl;
        struct series all[OP_N] = {0};
        long errors[OP_N] = {0}, inconsistent = 0;
        char path[4096];
        FILE *f;
        long clients = 0, seconds = 0;
        double secs, t0;
        int n;

        if (argc != 5 || (clients = number(argv[3])) < 1 || clients > CLIENTS_MAX ||
            (seconds = number(argv[4])) < 1)
                die("usage", "bench_load DIR URL CLIENTS(1..1000) SECONDS");
        n = (int)clients;
        G.dir = argv[1];
        G.url = argv[2];
        load_who(&G.op_a, "opA");
        load_who(&G.admin_b, "adminB");
        load_who(&G.admin_c, "adminC");
        snprintf(path, sizeof(path), "%s/sub.pem", G.dir);
        if ((f = fopen(path, "r")) == NULL ||
            (G.issuer = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
                die(path, "cannot read the CA certificate");
        fclose(f);
        snprintf(path, sizeof(path), "%s/applicant", G.dir);
        if ((f = fopen(path, "r")) == NULL || fscanf(f, "%lld", &G.applicant) != 1)
                die(path, "cannot read the applicant id");
        fclose(f);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
            (cl = calloc((size_t)n, sizeof(*cl))) == NULL)
                die("start", "out of memory");
        t0 = now_mono();
        G.deadline = t0 + (double)seconds;
        for (int i = 0; i < n; i++) {
                cl[i].id = i;
                if ((cl[i].curl = curl_easy_init()) == NULL ||
                    pthread_create(&cl[i].tid, NULL, run, &cl[i]) != 0)
                        die("start", "cannot start a client");
        }
        for (int i = 0; i < n; i++)
                pthread_join(cl[i].tid, NULL);
        secs = now_mono() - t0;
        for (int i = 0; i < n; i++) {
                for (int o = 0; o < OP_N; o++) {
                        for (size_t k = 0; k < cl[i].lat[o].n; k++)
                                push(&all[o], cl[i].lat[o].v[k]);
                        errors[o] += cl[i].errors[o];
                }
                inconsistent += cl[i].inconsistent;
        }
        write_list("told", cl, n, 0);
        write_list("revoked", cl, n, 1);
        printf("%d clients, %.1f s\n", n, secs);
        for (int o = 0; o < OP_N; o++)
                report((enum op)o, &all[o], errors[o], secs);
        printf("inconsistent answers: %ld\n", inconsistent);
        return inconsistent == 0 ? 0 : 1;
}
