/*
 * The RA front's request handling without the network: the strict parsers
 * of path parameters, query strings and the listen address, and
 * serve_dispatch against a real store — routing (404, 405), the public
 * downloads, and unauthenticated API requests refused with 401 and
 * audited. The front's sources are not in gmcacore, so they are compiled
 * into this test (routes.c, files.c, addr.c; http.c needs libmicrohttpd
 * and is covered by tests/e2e/serve.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/serve/addr.c"
#include "../../src/serve/files.c"
#include "../../src/serve/routes.c"
#include "../../src/serve/ocsp.c"
#include "../../src/serve/ocsp_rotate.c"
#include "../../src/serve/tsa.c"
#include "../../src/serve/search.c"

#include "audit.h"

static void test_pct_decode(void **state)
{
        static const struct {
                const char *in;
                int plus;
                const char *out; /* NULL: refused */
        } t[] = {
            {"abc", 0, "abc"},   {"%E5%BC%A0%E4%B8%89", 1, "张三"},
            {"a+b", 1, "a b"},   {"a+b", 0, "a+b"},
            {"%41%42", 0, "AB"}, {"%4", 0, NULL},
            {"%", 0, NULL},      {"%zz", 0, NULL},
            {"%00", 0, NULL},    {"%0a", 0, NULL},
            {"%7f", 0, NULL},    {"", 0, ""},
        };
        char out[16];

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                int rc = pct_decode(t[i].in, strlen(t[i].in), t[i].plus, out, sizeof(out));

                if (t[i].out == NULL) {
                        assert_int_not_equal(rc, 0);
                } else {
                        assert_int_equal(rc, 0);
                        assert_string_equal(out, t[i].out);
                }
        }
        /* Exactly what fits, and one more. */
        assert_int_equal(pct_decode("123456789012345", 15, 0, out, sizeof(out)), 0);
        assert_int_not_equal(pct_decode("1234567890123456", 16, 0, out, sizeof(out)), 0);
}

static void test_parse_id(void **state)
{
        static const struct {
                const char *in;
                int64_t want; /* -1: refused */
        } t[] = {
            {"1", 1},
            {"42", 42},
            {"9007199254740992", (int64_t)1 << 53},
            {"9007199254740993", -1},
            {"0", -1},
            {"01", -1},
            {"-1", -1},
            {"+1", -1},
            {"1a", -1},
            {"", -1},
            {" 1", -1},
            {"99999999999999999999", -1},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                assert_int_equal(parse_id(t[i].in, 1), t[i].want);
}

static void test_parse_query(void **state)
{
        static const struct {
                const char *qs;
                const char *allowed;
                int ok;
                const char *key, *val; /* one value to check */
        } t[] = {
            {NULL, NULL, 1, NULL, NULL},
            {"", "a", 1, NULL, NULL},
            {"state=issued", "state,limit", 1, "state", "issued"},
            {"name=%E5%BC%A0&limit=5", "name,limit", 1, "name", "张"},
            {"name=a+b", "name", 1, "name", "a b"},
            {"full=", "full", 1, "full", ""},
            {"x=1", "state", 0, NULL, NULL},
            {"x=1", NULL, 0, NULL, NULL},
            {"state=a&state=b", "state", 0, NULL, NULL},
            {"state", "state", 0, NULL, NULL},
            {"&", "state", 0, NULL, NULL},
            {"state=a&", "state", 0, NULL, NULL},
            {"=a", "state", 0, NULL, NULL},
            {"state=%zz", "state", 0, NULL, NULL},
            {"a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1", "a,b,c,d,e,f,g,h,i", 0, NULL, NULL},
        };
        struct query q;

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct gmca_error e = {0};
                int rc = parse_query(t[i].qs, t[i].allowed, &q, &e);

                if (!t[i].ok) {
                        assert_int_equal(rc, GMCA_ERR_INVALID);
                        assert_true(strncmp(e.msg, "query: ", 7) == 0);
                        continue;
                }
                assert_int_equal(rc, 0);
                if (t[i].key != NULL)
                        assert_string_equal(q_str(&q, t[i].key), t[i].val);
        }
        {
                struct gmca_error e = {0};
                int64_t v = 0;

                assert_int_equal(parse_query("limit=500&offset=0", "limit,offset", &q, &e), 0);
                assert_int_equal(q_int(&q, "limit", 1, 500, 100, &v, &e), 0);
                assert_int_equal(v, 500);
                assert_int_equal(q_int(&q, "offset", 0, 10, 7, &v, &e), 0);
                assert_int_equal(v, 0);
                assert_int_equal(q_int(&q, "absent", 1, 10, 7, &v, &e), 0);
                assert_int_equal(v, 7);
                assert_int_equal(parse_query("limit=501", "limit", &q, &e), 0);
                assert_int_equal(q_int(&q, "limit", 1, 500, 100, &v, &e), GMCA_ERR_INVALID);
        }
}

static void test_listen(void **state)
{
        static const struct {
                const char *in;
                int ok;
                int family;
                unsigned port;
        } t[] = {
            {"127.0.0.1:8080", 1, AF_INET, 8080},
            {"0.0.0.0:0", 1, AF_INET, 0},
            {"[::1]:443", 1, AF_INET6, 443},
            {"127.0.0.1:65535", 1, AF_INET, 65535},
            {"127.0.0.1:65536", 0, 0, 0},
            {"1.2.3:80", 0, 0, 0},
            {"localhost:80", 0, 0, 0},
            {"::1:80", 0, 0, 0},
            {"[::1]80", 0, 0, 0},
            {"127.0.0.1:", 0, 0, 0},
            {"127.0.0.1", 0, 0, 0},
            {":80", 0, 0, 0},
            {"127.0.0.1:+80", 0, 0, 0},
            {"127.0.0.1:-1", 0, 0, 0},
            {"127.0.0.1:080000", 0, 0, 0},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                struct sockaddr_storage ss;
                char host[INET6_ADDRSTRLEN + 1];
                struct gmca_error e = {0};
                int rc = serve_parse_listen(t[i].in, &ss, host, sizeof(host), &e);

                if (!t[i].ok) {
                        assert_int_equal(rc, GMCA_ERR_INVALID);
                        continue;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(ss.ss_family, t[i].family);
                assert_int_equal(ntohs(t[i].family == AF_INET
                                           ? ((struct sockaddr_in *)(void *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)(void *)&ss)->sin6_port),
                                 t[i].port);
        }
}

/* ---- dispatch against a store ---- */

struct fixture {
        char dir[64];
        struct serve_worker w;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_error e = {0};
        char path[128];

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_serve.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(path, sizeof(path), "%s/gmca.db", f->dir);
        f->w.store = gmca_store_open(path, &e);
        assert_non_null(f->w.store);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char path[128];

        gmca_store_close(f->w.store);
        snprintf(path, sizeof(path), "%s/gmca.db", f->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/gmca.db-wal", f->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/gmca.db-shm", f->dir);
        unlink(path);
        rmdir(f->dir);
        free(f);
        return 0;
}

static int64_t audit_count(struct gmca_store *s)
{
        int64_t seq = 0;
        uint8_t hash[GMCA_SM3_LEN];
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_last(s, &seq, hash, &e), 0);
        return seq;
}

static void dispatch(struct serve_worker *w, const char *method, const char *target,
                     const char *body, struct serve_reply *out)
{
        struct serve_request rq;

        memset(&rq, 0, sizeof(rq));
        memset(out, 0, sizeof(*out));
        snprintf(rq.method, sizeof(rq.method), "%s", method);
        snprintf(rq.target, sizeof(rq.target), "%s", target);
        snprintf(rq.remote, sizeof(rq.remote), "127.0.0.1");
        rq.body = (uint8_t *)body;
        rq.len = body != NULL ? strlen(body) : 0;
        serve_dispatch(w, &rq, out);
}

/* The reply's "error" member ("" if none). */
static void error_code(const struct serve_reply *r, char *buf, size_t len)
{
        json_t *j = json_loadb(r->data, r->len, 0, NULL);
        const char *code = json_string_value(json_object_get(j, "error"));

        snprintf(buf, len, "%s", code != NULL ? code : "");
        json_decref(j);
}

static void test_dispatch(void **state)
{
        static const struct {
                const char *method, *target;
                unsigned status;
                const char *error;
                int audited; /* a refusal record is added */
        } t[] = {
            {"GET", "/healthz", 200, "", 0},
            {"HEAD", "/healthz", 200, "", 0},
            {"POST", "/healthz", 405, "method_not_allowed", 0},
            {"GET", "/healthz?x=1", 400, "bad_request", 0},
            {"GET", "/", 404, "not_found", 0},
            {"GET", "/ca/sub.crt", 404, "not_found", 0},
            {"GET", "/ca/.crt", 404, "not_found", 0},
            {"GET", "/ca/../gmca.db", 404, "not_found", 0},
            {"GET", "/crl/sub.crl", 404, "not_found", 0},
            {"GET", "relative", 400, "bad_request", 0},
            {"GET", "/api/v1/nothing", 404, "not_found", 0},
            {"GET", "/api/v1//whoami", 404, "not_found", 0},
            {"GET", "/api/v1/whoami/", 404, "not_found", 0},
            {"GET", "/api/v1/applications/01", 404, "not_found", 0},
            {"GET", "/api/v1/certificates/xyz", 404, "not_found", 0},
            {"DELETE", "/api/v1/whoami", 405, "method_not_allowed", 0},
            {"GET", "/api/v1/applications/1/vet", 405, "method_not_allowed", 0},
            /* Routed, then refused: no signature. */
            {"GET", "/api/v1/whoami", 401, "unauthenticated", 1},
            {"POST", "/api/v1/applications/5/approve", 401, "unauthenticated", 1},
            {"GET", "/api/v1/certificates/0xab:cd", 401, "unauthenticated", 1},
            {"PATCH", "/api/v1/applicants/9", 401, "unauthenticated", 1},
        };
        struct fixture *f = *state;
        struct serve_reply out;
        char code[32];

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                int64_t before = audit_count(f->w.store);

                dispatch(&f->w, t[i].method, t[i].target, NULL, &out);
                assert_int_equal(out.status, t[i].status);
                error_code(&out, code, sizeof(code));
                assert_string_equal(code, t[i].error);
                assert_int_equal(audit_count(f->w.store), before + t[i].audited);
                if (t[i].status == 405)
                        assert_true(out.allow[0] != '\0');
                free(out.data);
        }
        /* A malformed header is refused before the signature is looked at. */
        {
                struct serve_request rq;

                memset(&rq, 0, sizeof(rq));
                snprintf(rq.method, sizeof(rq.method), "GET");
                snprintf(rq.target, sizeof(rq.target), "/api/v1/whoami");
                rq.hdr_bad = "malformed request: X-Gmca-Nonce header repeated";
                memset(&out, 0, sizeof(out));
                serve_dispatch(&f->w, &rq, &out);
                assert_int_equal(out.status, 401);
                assert_non_null(strstr(out.data, "repeated"));
                free(out.data);
                rq.hdr_bad = NULL;
                rq.target_bad = 1;
                memset(&out, 0, sizeof(out));
                serve_dispatch(&f->w, &rq, &out);
                assert_int_equal(out.status, 400);
                free(out.data);
        }
        /* No worker free: 503 for the API, the health check still answers. */
        dispatch(NULL, "GET", "/api/v1/whoami", NULL, &out);
        assert_int_equal(out.status, 503);
        free(out.data);
        dispatch(NULL, "GET", "/healthz", NULL, &out);
        assert_int_equal(out.status, 200);
        free(out.data);
}

/* The last audit record, copied. */
struct last_rec {
        char event[GMCA_NAME_MAX], actor[256], object[128], detail[1024];
        int success;
};

static int keep_last(const struct gmca_audit_rec *r, void *arg)
{
        struct last_rec *l = arg;

        snprintf(l->event, sizeof(l->event), "%s", r->event);
        snprintf(l->actor, sizeof(l->actor), "%s", r->actor);
        snprintf(l->object, sizeof(l->object), "%s", r->object);
        snprintf(l->detail, sizeof(l->detail), "%s", r->detail != NULL ? r->detail : "");
        l->success = r->success;
        return 0;
}

/* The refusal's audit record says what was asked, from where, and why it was refused. */
static void test_refusal_audited(void **state)
{
        struct fixture *f = *state;
        struct serve_reply out;
        struct gmca_error e = {0};
        struct last_rec l;
        int64_t count = 0, bad = 0;
        json_t *d;

        dispatch(&f->w, "POST", "/api/v1/revocations", "{\"serial\":\"01\"}", &out);
        assert_int_equal(out.status, 401);
        free(out.data);
        memset(&l, 0, sizeof(l));
        assert_int_equal(gmca_store_audit_iter(f->w.store, NULL, keep_last, &l, &e), 0);
        assert_string_equal(l.event, GMCA_EV_AUTH_REQUEST);
        assert_int_equal(l.success, 0);
        assert_string_equal(l.actor, "unauthenticated");
        assert_string_equal(l.object, "revocation.request");
        assert_non_null(d = json_loads(l.detail, 0, NULL));
        assert_string_equal(json_string_value(json_object_get(d, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(d, "target")), "/api/v1/revocations");
        assert_string_equal(json_string_value(json_object_get(d, "remote")), "127.0.0.1");
        assert_non_null(strstr(json_string_value(json_object_get(d, "cause")), "missing header"));
        json_decref(d);
        /* Nothing but the refusal was written. */
        assert_int_equal(gmca_audit_verify(f->w.store, &count, &bad, &e), 0);
        assert_int_equal(count, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pct_decode),
            cmocka_unit_test(test_parse_id),
            cmocka_unit_test(test_parse_query),
            cmocka_unit_test(test_listen),
            cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refusal_audited, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
