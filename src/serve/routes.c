/*
 * The routes of the front: the table that maps each method and path of the
 * signed /api/v1 API to the permission it needs (auth.h) and the RA
 * operation that does it (ra.h), and the one way every request goes
 * through it — route (404, 405), authenticate (401), parse the query (400),
 * check the role (403), run, answer. Refusals of authentication and of
 * role are audited here (auth.request); the RA operations audit their own.
 * Path parameters and query strings are parsed strictly: ids are decimal
 * 1..2^53 without leading zeros, serials go through gmca_serial_normalize,
 * a query key a route does not take, or one given twice, is refused.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca.h"
#include "ocsp.h"
#include "serve_internal.h"
#include "stats.h"
#include "system.h"
#include "template.h"
#include "util.h"

#define SEGS_MAX 8
#define SEG_MAX 255
#define QUERY_PARAMS_MAX 8
#define QUERY_VALUE_MAX 256
#define ID_MAX ((int64_t)1 << 53)
#define LIST_DEFAULT 100
#define AUDIT_LIST_MAX 1000

struct query {
        size_t n;
        struct {
                char key[16];
                char val[QUERY_VALUE_MAX];
        } p[QUERY_PARAMS_MAX];
};

struct call;

struct route {
        const char *method;
        const char *path; /* literal segments, or {id} {serial} {name} */
        enum gmca_action action;
        const char *query; /* the query keys it takes, ',' separated; NULL: none */
        int (*run)(struct call *c);
        int arg;     /* run's own: an application type, approve or reject */
        unsigned ok; /* status on success */
};

struct call {
        struct serve_worker *w;
        const struct serve_request *rq;
        const struct route *rt;
        struct gmca_auth_result who;
        int64_t id;
        char serial[GMCA_SERIAL_HEX_MAX];
        char name[GMCA_NAME_MAX];
        struct query q;
        int64_t now;
        json_t *out;
        char *text; /* instead of out: a body that is not JSON (free()), of text_type */
        size_t text_len;
        const char *text_type;
        struct gmca_error e;
};

/* ---- replies ---- */

void serve_reply_bytes(struct serve_reply *r, unsigned status, const char *ctype, const uint8_t *p,
                       size_t n)
{
        free(r->data);
        r->data = NULL;
        r->len = 0;
        if (n > 0 && (r->data = malloc(n)) == NULL) {
                r->status = 500;
                r->ctype = "text/plain; charset=utf-8";
                return;
        }
        if (n > 0)
                memcpy(r->data, p, n);
        r->len = n;
        r->status = status;
        r->ctype = ctype;
}

void serve_reply_json(struct serve_reply *r, unsigned status, json_t *v)
{
        char *text = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        size_t n;

        json_decref(v);
        free(r->data);
        r->data = NULL;
        r->len = 0;
        r->ctype = "application/json; charset=utf-8";
        if (text == NULL) {
                static const char oom[] =
                    "{\"error\":\"internal\",\"message\":\"out of memory\"}\n";

                serve_reply_bytes(r, 500, r->ctype, (const uint8_t *)oom, sizeof(oom) - 1);
                return;
        }
        /* One line with its newline, for people reading it with curl. */
        n = strlen(text);
        r->data = malloc(n + 2);
        if (r->data != NULL) {
                memcpy(r->data, text, n);
                r->data[n] = '\n';
                r->data[n + 1] = '\0';
        }
        free(text);
        if (r->data == NULL) {
                r->status = 500;
                return;
        }
        r->len = n + 1;
        r->status = status;
}

void serve_reply_error(struct serve_reply *r, unsigned status, const char *code, const char *fmt,
                       ...)
{
        char msg[GMCA_ERROR_MSG_MAX];
        va_list ap;
        json_t *v;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /*
         * A message may quote the request (a name, a value) and jansson takes
         * only UTF-8: rather than a 500, the bytes it refuses become '?'.
         */
        if ((v = json_pack("{s:s, s:s}", "error", code, "message", msg)) == NULL) {
                for (char *p = msg; *p != '\0'; p++)
                        if ((unsigned char)*p >= 0x80)
                                *p = '?';
                v = json_pack("{s:s, s:s}", "error", code, "message", msg);
        }
        serve_reply_json(r, status, v);
}

/* gmca_err -> HTTP status and the API's error code. */
static void reply_err(struct serve_reply *r, const struct gmca_error *e)
{
        static const struct {
                int code;
                unsigned status;
                const char *name;
        } map[] = {
            {GMCA_ERR_INVALID, 400, "bad_request"}, {GMCA_ERR_VERIFY, 400, "bad_request"},
            {GMCA_ERR_LIMIT, 413, "too_large"},     {GMCA_ERR_AUTH, 401, "unauthenticated"},
            {GMCA_ERR_FORBIDDEN, 403, "forbidden"}, {GMCA_ERR_NOTFOUND, 404, "not_found"},
            {GMCA_ERR_EXISTS, 409, "conflict"},     {GMCA_ERR_STATE, 409, "conflict"},
            {GMCA_ERR_POLICY, 422, "policy"},
        };
        const char *msg = e->msg[0] != '\0' ? e->msg : gmca_err_name(e->code);

        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (map[i].code == e->code) {
                        serve_reply_error(r, map[i].status, map[i].name, "%s", msg);
                        return;
                }
        serve_reply_error(r, 500, "internal", "%s", msg);
}

/* ---- parsing ---- */

struct hdr_field {
        const char *name;
        size_t off, size;
        const char *bad;
};

#define HDR_FIELD(n, f, max)                                                                       \
        {                                                                                          \
                n, offsetof(struct gmca_auth_headers, f),                                          \
                    sizeof(((struct gmca_auth_headers *)0)->f),                                    \
                    "malformed request: " n " header repeated or over " max " characters"          \
        }

static const struct hdr_field hdr_fields[] = {
    HDR_FIELD("X-Gmca-Operator", operator_fpr, "64"),
    HDR_FIELD("X-Gmca-Timestamp", timestamp, "23"),
    HDR_FIELD("X-Gmca-Nonce", nonce, "64"),
    HDR_FIELD("X-Gmca-Signature", signature, "159"),
};
_Static_assert(sizeof(((struct gmca_auth_headers *)0)->operator_fpr) == 64 + 1 &&
                   sizeof(((struct gmca_auth_headers *)0)->timestamp) == 23 + 1 &&
                   sizeof(((struct gmca_auth_headers *)0)->nonce) == 64 + 1 &&
                   sizeof(((struct gmca_auth_headers *)0)->signature) == 159 + 1,
               "the X-Gmca header messages name the field sizes");

void serve_request_header(struct serve_request *rq, const char *key, const char *value)
{
        size_t n = value != NULL ? strlen(value) : 0;

        if (key == NULL)
                return;
        if (strcasecmp(key, "Content-Length") == 0 || strcasecmp(key, "Transfer-Encoding") == 0)
                rq->has_body = 1;
        if (strcasecmp(key, "Content-Type") == 0) {
                if (rq->ctype[0] != '\0' || value == NULL || n == 0 || n > SERVE_CTYPE_MAX)
                        rq->ctype_bad = 1;
                else
                        memcpy(rq->ctype, value, n + 1);
                return;
        }
        if (strcasecmp(key, "If-None-Match") == 0 || strcasecmp(key, "If-Modified-Since") == 0) {
                char *field = tolower((unsigned char)key[3]) == 'n' ? rq->if_none_match
                                                                    : rq->if_modified_since;

                /* Repeated or over-long: ignored, so the full reply is sent (RFC 9110 §13.1). */
                if (field[0] != '\0' || value == NULL || n > SERVE_COND_MAX)
                        memcpy(field, "\x01", 2);
                else
                        memcpy(field, value, n + 1);
                return;
        }
        for (size_t i = 0; i < sizeof(hdr_fields) / sizeof(hdr_fields[0]); i++) {
                char *field = (char *)&rq->hdr + hdr_fields[i].off;

                if (strcasecmp(key, hdr_fields[i].name) != 0)
                        continue;
                if (field[0] != '\0' || value == NULL || n == 0 || n >= hdr_fields[i].size) {
                        if (rq->hdr_bad == NULL)
                                rq->hdr_bad = hdr_fields[i].bad;
                        return;
                }
                memcpy(field, value, n + 1);
                return;
        }
}

size_t serve_body_max(const char *target)
{
        if (strncmp(target, "/tsa", 4) == 0 && (target[4] == '\0' || target[4] == '?'))
                return SERVE_TSA_BODY_MAX;
        if (strncmp(target, "/ocsp", 5) == 0 && strchr("/?", target[5]) != NULL)
                return GMCA_OCSP_REQ_MAX; /* also for "/ocsp" itself: strchr finds the NUL */
        return GMCA_AUTH_BODY_MAX;
}

int serve_media_type_is(const char *ctype, const char *want)
{
        size_t n = strlen(want);
        const char *p;

        if (strncasecmp(ctype, want, n) != 0)
                return 0;
        for (p = ctype + n; *p == ' ' || *p == '\t'; p++)
                ;
        return *p == '\0' || *p == ';';
}

static int hexval(int ch)
{
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

/*
 * Percent-decode [in, in + n) into out (cap bytes with the NUL); '+' is a
 * space when plus is set (query strings). Refuses a bad escape, a NUL or
 * another control character, and anything that does not fit.
 */
static int pct_decode(const char *in, size_t n, int plus, char *out, size_t cap)
{
        size_t j = 0;

        for (size_t i = 0; i < n; i++) {
                int ch = (unsigned char)in[i];

                if (ch == '%') {
                        int hi, lo;

                        if (i + 2 >= n || (hi = hexval(in[i + 1])) < 0 ||
                            (lo = hexval(in[i + 2])) < 0)
                                return -1;
                        ch = hi << 4 | lo;
                        i += 2;
                } else if (ch == '+' && plus) {
                        ch = ' ';
                }
                if (ch < 0x20 || ch == 0x7f || j + 1 >= cap)
                        return -1;
                out[j++] = (char)ch;
        }
        out[j] = '\0';
        return 0;
}

int serve_pct_decode(const char *in, size_t n, int plus, char *out, size_t cap)
{
        return pct_decode(in, n, plus, out, cap);
}

/* A decimal id 1..2^53, no sign, no leading zero; -1 otherwise. */
static int64_t parse_id(const char *s, int64_t min)
{
        int64_t v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 16 || (s[0] == '0' && n > 1))
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v < min || v > ID_MAX ? -1 : v;
}

static int key_allowed(const char *allowed, const char *key)
{
        size_t n = strlen(key);

        for (const char *p = allowed; p != NULL && *p != '\0';) {
                const char *end = strchr(p, ',');
                size_t m = end != NULL ? (size_t)(end - p) : strlen(p);

                if (m == n && memcmp(p, key, n) == 0)
                        return 1;
                p = end != NULL ? end + 1 : NULL;
        }
        return 0;
}

/* "a=1&b=x" (NULL or "": none) against the route's keys. */
static int parse_query(const char *qs, const char *allowed, struct query *q, struct gmca_error *e)
{
        memset(q, 0, sizeof(*q));
        if (qs == NULL || qs[0] == '\0')
                return 0;
        for (const char *p = qs;;) {
                const char *amp = strchr(p, '&'), *eq;
                size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p), klen;
                char key[16];

                if (n == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "query: empty parameter");
                eq = memchr(p, '=', n);
                klen = eq != NULL ? (size_t)(eq - p) : n;
                if (pct_decode(p, klen, 1, key, sizeof(key)) != 0 || key[0] == '\0')
                        return gmca_error_set(e, GMCA_ERR_INVALID, "query: bad parameter name");
                if (!key_allowed(allowed, key))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "query: '%s' is not a parameter of this "
                                              "request%s%s%s",
                                              key, allowed != NULL ? " (it takes " : "",
                                              allowed != NULL ? allowed : "",
                                              allowed != NULL ? ")" : "");
                for (size_t i = 0; i < q->n; i++)
                        if (strcmp(q->p[i].key, key) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "query: '%s' given twice", key);
                if (q->n == QUERY_PARAMS_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "query: too many parameters");
                memcpy(q->p[q->n].key, key, sizeof(key));
                if (eq == NULL ||
                    pct_decode(eq + 1, n - klen - 1, 1, q->p[q->n].val, QUERY_VALUE_MAX) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "query: '%s': a value of at most %d bytes, "
                                              "percent-encoded, without control characters",
                                              key, QUERY_VALUE_MAX - 1);
                q->n++;
                if (amp == NULL)
                        return 0;
                p = amp + 1;
        }
}

static const char *q_str(const struct query *q, const char *key)
{
        for (size_t i = 0; i < q->n; i++)
                if (strcmp(q->p[i].key, key) == 0)
                        return q->p[i].val;
        return NULL;
}

/* An integer parameter min..max; absent: def. */
static int q_int(const struct query *q, const char *key, int64_t min, int64_t max, int64_t def,
                 int64_t *out, struct gmca_error *e)
{
        const char *s = q_str(q, key);
        int64_t v;

        if (s == NULL) {
                *out = def;
                return 0;
        }
        v = strcmp(s, "0") == 0 && min == 0 ? 0 : parse_id(s, 1);
        if (v < min || v > max)
                return gmca_error_set(e, GMCA_ERR_INVALID, "query: '%s': a number %lld..%lld", key,
                                      (long long)min, (long long)max);
        *out = v;
        return 0;
}

/* ---- operations ---- */

static json_t *roles_json(unsigned roles)
{
        json_t *a = json_array();

        for (unsigned bit = 1; a != NULL && bit <= GMCA_ROLE_ALL; bit <<= 1)
                if ((roles & bit) != 0 &&
                    json_array_append_new(a, json_string(gmca_role_name(bit))))
                        return json_decref(a), NULL;
        return a;
}

/* Times are Unix seconds, as in the RA's records; null when unset. */
static json_t *time_json(int64_t t)
{
        return t > 0 ? json_integer(t) : json_null();
}

static json_t *operator_json(const struct gmca_operator *op)
{
        return json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:s, s:o}", "name", op->name, "roles",
                         roles_json(op->roles), "cert_serial", op->cert_serial, "fingerprint",
                         op->fingerprint, "status", op->status, "created_at",
                         time_json(op->created_at), "created_by", op->created_by, "status_time",
                         time_json(op->status_time));
}

static int run_whoami(struct call *c)
{
        json_t *o = operator_json(&c->who.op), *acts = json_array();

        for (int a = 0; o != NULL && acts != NULL && a < GMCA_ACT_COUNT; a++)
                if ((gmca_action_roles((enum gmca_action)a) & c->who.op.roles) != 0 &&
                    json_array_append_new(acts, json_string(gmca_action_name((enum gmca_action)a))))
                        break;
        if (o == NULL || acts == NULL || json_object_set_new(o, "may", acts) != 0) {
                json_decref(o);
                return gmca_error_set(&c->e, GMCA_ERR_NOMEM, "out of memory");
        }
        c->out = o;
        return 0;
}

static int add_operator(const struct gmca_operator *op, void *arg)
{
        return json_array_append_new(arg, operator_json(op)) == 0 ? 0 : GMCA_ERR_NOMEM;
}

static int run_operators(struct call *c)
{
        json_t *items = json_array();
        int rc;

        if (items == NULL)
                return gmca_error_set(&c->e, GMCA_ERR_NOMEM, "out of memory");
        if ((rc = gmca_operator_list(c->w->store, add_operator, items, &c->e)) != 0) {
                json_decref(items);
                return rc < 0 ? rc : gmca_error_set(&c->e, GMCA_ERR_NOMEM, "out of memory");
        }
        c->out = json_pack("{s:o}", "items", items);
        return 0;
}

/*
 * The CA engine disables (env.disable): it checks the super admin's signed
 * request and revokes the operator's certificate, which the front may not.
 * A disable that did not happen is on the front's record too (the engine
 * keeps its own of a refusal), under the super admin's name.
 */
static int disable_operator(struct call *c)
{
        const struct gmca_ra_env *env = &c->w->env;
        struct gmca_error ignored = {0};
        struct gmca_audit_event ev;
        char *detail;
        json_t *d;
        int rc;

        if (c->who.proof == NULL || c->who.proof_len == 0)
                rc = gmca_error_set(&c->e, GMCA_ERR_AUTH, "disable %s: no signed request", c->name);
        else if (env->disable == NULL)
                rc = gmca_error_set(&c->e, GMCA_ERR_STATE, "disable %s: no CA engine", c->name);
        else
                rc = env->disable(env->issue_arg, c->name, c->who.proof, c->who.proof_len, &c->e);
        if (rc == 0)
                return 0;
        d = json_pack("{s:s, s:s}", "error", gmca_err_name(rc), "cause", c->e.msg);
        detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        ev =
            (struct gmca_audit_event){GMCA_EV_OPERATOR_DISABLE, c->who.op.name, 0, c->name, detail};
        if (gmca_audit_record(c->w->store, &ev, &ignored) != 0) {
                /* The refusal stands; its record is lost with the store. */
        }
        free(detail);
        return rc;
}

static int run_operator_disable(struct call *c)
{
        struct gmca_operator op;
        int rc;

        if ((rc = disable_operator(c)) != 0 ||
            (rc = gmca_operator_get(c->w->store, c->name, &op, &c->e)) != 0)
                return rc;
        c->out = operator_json(&op);
        return 0;
}

struct audit_page {
        json_t *items;
        int64_t after, limit, n, last;
};

static int add_audit(const struct gmca_audit_rec *r, void *arg)
{
        struct audit_page *pg = arg;
        char t[32], hash[2 * GMCA_SM3_LEN + 1];
        json_t *j;

        if (r->seq <= pg->after)
                return 0;
        if (pg->n == pg->limit)
                return 1; /* a full page: stop */
        gmca_time_iso((time_t)(r->time / 1000000), t, sizeof(t));
        gmca_hex(r->hash, sizeof(r->hash), hash);
        j = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s?}", "seq", (json_int_t)r->seq,
                      "time", t, "time_us", (json_int_t)r->time, "event", r->event, "actor",
                      r->actor, "outcome", r->success ? "success" : "failure", "object", r->object,
                      "hash", hash, "detail", r->detail);
        if (json_array_append_new(pg->items, j) != 0)
                return GMCA_ERR_NOMEM;
        pg->n++;
        pg->last = r->seq;
        return 0;
}

static int run_audit(struct call *c)
{
        struct audit_page pg = {0};
        struct gmca_audit_filter f;
        const char *s;
        time_t t;
        int rc;

        memset(&f, 0, sizeof(f));
        f.event = q_str(&c->q, "event");
        f.actor = q_str(&c->q, "actor");
        if ((f.event != NULL && f.event[0] == '\0') || (f.actor != NULL && f.actor[0] == '\0'))
                return gmca_error_set(&c->e, GMCA_ERR_INVALID, "query: event and actor not empty");
        for (int i = 0; i < 2; i++) {
                if ((s = q_str(&c->q, i == 0 ? "since" : "until")) == NULL)
                        continue;
                if (gmca_time_parse(s, &t) != 0)
                        return gmca_error_set(&c->e, GMCA_ERR_INVALID,
                                              "query: '%s': YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
                                              i == 0 ? "since" : "until");
                *(i == 0 ? &f.since : &f.until) = (int64_t)t * 1000000;
        }
        if ((rc = q_int(&c->q, "limit", 1, AUDIT_LIST_MAX, LIST_DEFAULT, &pg.limit, &c->e)) != 0 ||
            (rc = q_int(&c->q, "after", 0, ID_MAX, 0, &pg.after, &c->e)) != 0)
                return rc;
        if ((pg.items = json_array()) == NULL)
                return gmca_error_set(&c->e, GMCA_ERR_NOMEM, "out of memory");
        rc = gmca_store_audit_iter(c->w->store, &f, add_audit, &pg, &c->e);
        if (rc < 0) {
                json_decref(pg.items);
                return gmca_error_set(&c->e, rc, "audit: %s", gmca_err_name(rc));
        }
        /* rc 1: the page filled up; ask again with after = next_after. */
        c->out = json_pack("{s:o, s:b}", "items", pg.items, "more", rc == 1);
        if (c->out != NULL && rc == 1)
                json_object_set_new(c->out, "next_after", json_integer(pg.last));
        return 0;
}

static int run_audit_verify(struct call *c)
{
        int64_t count = 0, bad = 0;
        struct gmca_error ve = {0};
        int rc = gmca_audit_verify(c->w->store, &count, &bad, &ve);

        if (rc == GMCA_ERR_TAMPER) {
                c->out = json_pack("{s:b, s:I, s:s}", "intact", 0, "bad_seq", (json_int_t)bad,
                                   "message", ve.msg);
                return 0;
        }
        if (rc != 0)
                return gmca_error_set(&c->e, rc, "%s", ve.msg);
        c->out = json_pack("{s:b, s:I}", "intact", 1, "records", (json_int_t)count);
        return 0;
}

static int run_applicant_create(struct call *c)
{
        return gmca_ra_applicant_create(&c->w->env, &c->who, c->rq->body, c->rq->len, c->now,
                                        &c->out, &c->e);
}

static int run_applicant_get(struct call *c)
{
        const char *full = q_str(&c->q, "full");

        return gmca_ra_applicant_get(&c->w->env, &c->who, c->id,
                                     full != NULL && strcmp(full, "1") == 0, c->now, &c->out,
                                     &c->e);
}

static int run_applicant_list(struct call *c)
{
        int64_t limit, offset;
        int rc;

        if ((rc = q_int(&c->q, "limit", 1, GMCA_RA_LIST_MAX, LIST_DEFAULT, &limit, &c->e)) != 0 ||
            (rc = q_int(&c->q, "offset", 0, ID_MAX, 0, &offset, &c->e)) != 0)
                return rc;
        return gmca_ra_applicant_list(&c->w->env, &c->who, q_str(&c->q, "kind"),
                                      q_str(&c->q, "name"), limit, offset, &c->out, &c->e);
}

static int run_applicant_correct(struct call *c)
{
        return gmca_ra_applicant_correct(&c->w->env, &c->who, c->id, c->rq->body, c->rq->len,
                                         c->now, &c->out, &c->e);
}

static int run_submit(struct call *c)
{
        return gmca_ra_application_submit(&c->w->env, &c->who, (enum gmca_app_type)c->rt->arg,
                                          c->rt->arg == GMCA_APP_NEW ? NULL : c->serial,
                                          c->rq->body, c->rq->len, c->now, &c->out, &c->e);
}

static int run_application_get(struct call *c)
{
        return gmca_ra_application_get(&c->w->env, &c->who, c->id, c->now, &c->out, &c->e);
}

static int run_application_list(struct call *c)
{
        int64_t applicant, limit, offset;
        int rc;

        if ((rc = q_int(&c->q, "applicant", 1, ID_MAX, 0, &applicant, &c->e)) != 0 ||
            (rc = q_int(&c->q, "limit", 1, GMCA_RA_LIST_MAX, LIST_DEFAULT, &limit, &c->e)) != 0 ||
            (rc = q_int(&c->q, "offset", 0, ID_MAX, 0, &offset, &c->e)) != 0)
                return rc;
        return gmca_ra_application_list(&c->w->env, &c->who, q_str(&c->q, "state"), applicant,
                                        limit, offset, c->now, &c->out, &c->e);
}

static int run_vet(struct call *c)
{
        return gmca_ra_application_vet(&c->w->env, &c->who, c->id, c->rq->body, c->rq->len, c->now,
                                       &c->out, &c->e);
}

static int run_decide(struct call *c)
{
        return gmca_ra_application_decide(&c->w->env, &c->who, c->id, c->rt->arg, c->rq->body,
                                          c->rq->len, c->now, &c->out, &c->e);
}

static int run_issue(struct call *c)
{
        return gmca_ra_application_issue(&c->w->env, &c->who, c->id, c->now, &c->out, &c->e);
}

static int run_notifications(struct call *c)
{
        int64_t app;
        int rc;

        if ((rc = q_int(&c->q, "application", 1, ID_MAX, 0, &app, &c->e)) != 0)
                return rc;
        return gmca_ra_notifications(&c->w->env, &c->who, app, &c->out, &c->e);
}

static int run_certificate_get(struct call *c)
{
        return gmca_ra_certificate_get(&c->w->env, &c->who, c->serial, c->now, &c->out, &c->e);
}

/*
 * After a keyCompromise or cACompromise revocation the CRL goes out now
 * (CPS §3.9.10), not on schedule: the CRL schedule is woken.
 */
static void crl_if_compromise(struct call *c)
{
        json_t *state = json_object_get(c->out, "state"),
               *code = json_object_get(c->out, "reason_code");

        if (c->w->crl_urgent != NULL && json_is_string(state) &&
            strcmp(json_string_value(state), "completed") == 0 && json_is_integer(code) &&
            (json_integer_value(code) == CRL_REASON_KEY_COMPROMISE ||
             json_integer_value(code) == CRL_REASON_CA_COMPROMISE))
                c->w->crl_urgent(c->w->crl);
}

static int run_revocation_request(struct call *c)
{
        int rc = gmca_ra_revocation_request(&c->w->env, &c->who, c->rq->body, c->rq->len, c->now,
                                            &c->out, &c->e);

        if (rc == 0)
                crl_if_compromise(c);
        return rc;
}

static int run_revocation_complete(struct call *c)
{
        int rc = gmca_ra_revocation_complete(&c->w->env, &c->who, c->id, c->now, &c->out, &c->e);

        if (rc == 0)
                crl_if_compromise(c);
        return rc;
}

/*
 * A CRL on demand (the emergency CRL of CPS §3.9.10): signed now through the
 * CA engine by a context of this request, so that its crl.generate record
 * names the operator.
 */
static int run_crl_generate(struct call *c)
{
        struct gmca_crl_rec r;
        struct gmca_ctx *ctx;
        char url[GMCA_NAME_MAX + 48];
        int rc;

        memset(&r, 0, sizeof(r));
        if ((ctx = gmca_ctx_open_front(c->w->cfg->dir, c->who.op.name, &c->e)) == NULL)
                return c->e.code != 0 ? c->e.code : GMCA_ERR_INTERNAL;
        if ((rc = gmca_ctx_use_engine(ctx, &c->e)) != 0) {
                c->w->engine_down = 1;
                goto out;
        }
        if ((rc = gmca_ca_crl_generate(ctx, c->name, 0, &r, &c->e)) != 0)
                goto out;
        snprintf(url, sizeof(url), "/crl/%s/%lld.crl", c->name, (long long)r.number);
        c->out =
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "ca", c->name, "number",
                      (json_int_t)r.number, "this_update", (json_int_t)r.this_update, "next_update",
                      (json_int_t)r.next_update, "entries", (json_int_t)r.entries, "url", url);
out:
        gmca_crl_rec_clear(&r);
        gmca_ctx_close(ctx);
        return rc;
}

/* Key recovery (CPS §3.10; ra.h). */
static int run_recovery_request(struct call *c)
{
        return gmca_ra_recovery_request(&c->w->env, &c->who, c->rq->body, c->rq->len, c->now,
                                        &c->out, &c->e);
}

static int run_recovery_decide(struct call *c)
{
        return gmca_ra_recovery_decide(&c->w->env, &c->who, c->id, c->rt->arg, c->rq->body,
                                       c->rq->len, c->now, &c->out, &c->e);
}

static int run_recovery_deliver(struct call *c)
{
        return gmca_ra_recovery_deliver(&c->w->env, &c->who, c->id, c->now, &c->out, &c->e);
}

static int run_recovery_get(struct call *c)
{
        return gmca_ra_recovery_get(&c->w->env, &c->who, c->id, &c->out, &c->e);
}

static int run_recovery_list(struct call *c)
{
        return gmca_ra_recovery_list(&c->w->env, &c->who, q_str(&c->q, "state"), &c->out, &c->e);
}

static int run_revocation_list(struct call *c)
{
        return gmca_ra_revocation_list(&c->w->env, &c->who, q_str(&c->q, "state"), c->now, &c->out,
                                       &c->e);
}

/* The template admin's (template.h) and the system admin's (system.h). */
static int run_profile_list(struct call *c)
{
        return gmca_template_list(c->w->store, c->w->env.dir, &c->who, &c->out, &c->e);
}

static int run_profile_get(struct call *c)
{
        return gmca_template_get(c->w->store, c->w->env.dir, &c->who, c->name, &c->out, &c->e);
}

static int run_profile_put(struct call *c)
{
        return gmca_template_put(c->w->store, c->w->env.dir, &c->who, c->name, c->rq->body,
                                 c->rq->len, c->now, &c->out, &c->e);
}

static int run_profile_enable(struct call *c)
{
        return gmca_template_set_enabled(c->w->store, c->w->env.dir, &c->who, c->name, c->rt->arg,
                                         &c->out, &c->e);
}

/* Whether the CA engine answers is part of the status, not an error of the request. */
static int run_system(struct call *c)
{
        char cas[4096];
        struct gmca_error ee = {0};
        struct gmca_system_engine en = {0, NULL, NULL};
        struct serve_worker *w = c->w;

        if (w->era.client == NULL)
                w->era.client = gmca_engine_connect(w->sock, &ee);
        if (w->era.client != NULL && gmca_engine_list(w->era.client, cas, sizeof(cas), &ee) == 0) {
                en.up = 1;
                en.cas = cas;
        } else {
                en.error = ee.msg[0] != '\0' ? ee.msg : "no answer";
        }
        return gmca_system_status(w->store, &c->who, &en, c->now, &c->out, &c->e);
}

/* Decision-support statistics (stats.h), as JSON or CSV. */
static int run_stats(struct call *c)
{
        const char *by = q_str(&c->q, "by"), *format = q_str(&c->q, "format");
        struct gmca_stats *st = NULL;
        int64_t from, to;
        int b = gmca_stats_by_parse(by != NULL ? by : "type"), csv, rc;

        if (b < 0)
                return gmca_error_set(&c->e, GMCA_ERR_INVALID,
                                      "query: 'by': type, profile, region, month or day");
        if (format != NULL && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
                return gmca_error_set(&c->e, GMCA_ERR_INVALID, "query: 'format': json or csv");
        csv = format != NULL && strcmp(format, "csv") == 0;
        if ((rc = gmca_stats_period(q_str(&c->q, "from"), q_str(&c->q, "to"), c->now, &from, &to,
                                    &c->e)) != 0 ||
            (rc = gmca_stats_compute(c->w->store, from, to, (enum gmca_stats_by)b, &st, &c->e)) !=
                0)
                return rc;
        rc = csv ? gmca_stats_csv(st, &c->text, &c->text_len, &c->e)
                 : gmca_stats_json(st, &c->text, &c->text_len, &c->e);
        gmca_stats_free(st);
        c->text_type = csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8";
        return rc;
}

/* The API (docs/api.md describes each). */
static const struct route routes[] = {
    {"GET", "/api/v1/whoami", GMCA_ACT_WHOAMI, NULL, run_whoami, 0, 200},
    {"GET", "/api/v1/operators", GMCA_ACT_OPERATOR_LIST, NULL, run_operators, 0, 200},
    {"POST", "/api/v1/operators/{name}/disable", GMCA_ACT_OPERATOR_DISABLE, NULL,
     run_operator_disable, 0, 200},
    {"GET", "/api/v1/audit", GMCA_ACT_AUDIT_READ, "event,actor,since,until,after,limit", run_audit,
     0, 200},
    {"GET", "/api/v1/audit/verify", GMCA_ACT_AUDIT_READ, NULL, run_audit_verify, 0, 200},
    {"POST", "/api/v1/applicants", GMCA_ACT_APPLICANT_CREATE, NULL, run_applicant_create, 0, 201},
    {"GET", "/api/v1/applicants", GMCA_ACT_APPLICANT_READ, "kind,name,limit,offset",
     run_applicant_list, 0, 200},
    /* full=1 needs GMCA_ACT_APPLICANT_READ_FULL (see needed_action). */
    {"GET", "/api/v1/applicants/{id}", GMCA_ACT_APPLICANT_READ, "full", run_applicant_get, 0, 200},
    {"PATCH", "/api/v1/applicants/{id}", GMCA_ACT_APPLICANT_CORRECT, NULL, run_applicant_correct, 0,
     200},
    {"POST", "/api/v1/applications", GMCA_ACT_APPLICATION_SUBMIT, NULL, run_submit, GMCA_APP_NEW,
     201},
    {"GET", "/api/v1/applications", GMCA_ACT_APPLICATION_READ, "state,applicant,limit,offset",
     run_application_list, 0, 200},
    {"GET", "/api/v1/applications/{id}", GMCA_ACT_APPLICATION_READ, NULL, run_application_get, 0,
     200},
    {"POST", "/api/v1/applications/{id}/vet", GMCA_ACT_APPLICATION_VET, NULL, run_vet, 0, 200},
    {"POST", "/api/v1/applications/{id}/approve", GMCA_ACT_APPLICATION_DECIDE, NULL, run_decide, 1,
     200},
    {"POST", "/api/v1/applications/{id}/reject", GMCA_ACT_APPLICATION_DECIDE, NULL, run_decide, 0,
     200},
    {"POST", "/api/v1/applications/{id}/issue", GMCA_ACT_APPLICATION_DECIDE, NULL, run_issue, 0,
     200},
    {"GET", "/api/v1/notifications", GMCA_ACT_APPLICATION_READ, "application", run_notifications, 0,
     200},
    {"GET", "/api/v1/certificates/{serial}", GMCA_ACT_CERT_READ, NULL, run_certificate_get, 0, 200},
    {"POST", "/api/v1/certificates/{serial}/renew", GMCA_ACT_APPLICATION_SUBMIT, NULL, run_submit,
     GMCA_APP_RENEW, 201},
    {"POST", "/api/v1/certificates/{serial}/rekey", GMCA_ACT_APPLICATION_SUBMIT, NULL, run_submit,
     GMCA_APP_REKEY, 201},
    {"POST", "/api/v1/certificates/{serial}/reissue", GMCA_ACT_APPLICATION_SUBMIT, NULL, run_submit,
     GMCA_APP_REISSUE, 201},
    {"POST", "/api/v1/certificates/{serial}/change", GMCA_ACT_APPLICATION_SUBMIT, NULL, run_submit,
     GMCA_APP_CHANGE, 201},
    {"POST", "/api/v1/revocations", GMCA_ACT_REVOCATION_REQUEST, NULL, run_revocation_request, 0,
     201},
    {"GET", "/api/v1/revocations", GMCA_ACT_REVOCATION_READ, "state", run_revocation_list, 0, 200},
    {"POST", "/api/v1/revocations/{id}/complete", GMCA_ACT_REVOCATION_COMPLETE, NULL,
     run_revocation_complete, 0, 200},
    {"POST", "/api/v1/recoveries", GMCA_ACT_RECOVERY_REQUEST, NULL, run_recovery_request, 0, 201},
    {"GET", "/api/v1/recoveries", GMCA_ACT_RECOVERY_READ, "state", run_recovery_list, 0, 200},
    {"GET", "/api/v1/recoveries/{id}", GMCA_ACT_RECOVERY_READ, NULL, run_recovery_get, 0, 200},
    {"POST", "/api/v1/recoveries/{id}/approve", GMCA_ACT_RECOVERY_APPROVE, NULL,
     run_recovery_decide, 1, 200},
    {"POST", "/api/v1/recoveries/{id}/reject", GMCA_ACT_RECOVERY_APPROVE, NULL, run_recovery_decide,
     0, 200},
    {"POST", "/api/v1/recoveries/{id}/deliver", GMCA_ACT_RECOVERY_APPROVE, NULL,
     run_recovery_deliver, 0, 200},
    {"GET", "/api/v1/profiles", GMCA_ACT_PROFILE_READ, NULL, run_profile_list, 0, 200},
    {"GET", "/api/v1/profiles/{name}", GMCA_ACT_PROFILE_READ, NULL, run_profile_get, 0, 200},
    {"PUT", "/api/v1/profiles/{name}", GMCA_ACT_PROFILE_WRITE, NULL, run_profile_put, 0, 200},
    {"POST", "/api/v1/profiles/{name}/disable", GMCA_ACT_PROFILE_WRITE, NULL, run_profile_enable, 0,
     200},
    {"POST", "/api/v1/profiles/{name}/enable", GMCA_ACT_PROFILE_WRITE, NULL, run_profile_enable, 1,
     200},
    {"GET", "/api/v1/system", GMCA_ACT_SYSTEM_READ, NULL, run_system, 0, 200},
    {"GET", "/api/v1/stats", GMCA_ACT_STATS_READ, "from,to,by,format", run_stats, 0, 200},
    {"POST", "/api/v1/crl/{name}", GMCA_ACT_CRL_GENERATE, NULL, run_crl_generate, 0, 201},
};

static enum gmca_action needed_action(const struct call *c)
{
        const char *full = q_str(&c->q, "full");

        if (c->rt->run == run_applicant_get && full != NULL && strcmp(full, "1") == 0)
                return GMCA_ACT_APPLICANT_READ_FULL;
        return c->rt->action;
}

/* Split "/a/b/c" into segments (pointers into buf). -1 if empty segments or too many. */
static int split_path(char *buf, char *segs[SEGS_MAX], size_t *n)
{
        char *p = buf + 1;

        *n = 0;
        if (buf[0] != '/')
                return -1;
        for (;;) {
                char *slash = strchr(p, '/');

                if (*n == SEGS_MAX || p[0] == '/' || p[0] == '\0')
                        return -1;
                segs[(*n)++] = p;
                if (slash == NULL)
                        return 0;
                *slash = '\0';
                p = slash + 1;
        }
}

/* Does the route's path match segs? Fills c's parameters; 0 if not. */
static int match(const struct route *rt, char *const *segs, size_t n, struct call *c)
{
        char pat[128], *ps[SEGS_MAX];
        size_t pn;

        gmca_strlcpy(pat, rt->path, sizeof(pat));
        if (split_path(pat, ps, &pn) != 0 || pn != n)
                return 0;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(ps[i], "{id}") == 0) {
                        if ((c->id = parse_id(segs[i], 1)) < 0)
                                return 0;
                } else if (strcmp(ps[i], "{serial}") == 0) {
                        if (gmca_serial_normalize(segs[i], c->serial) != 0)
                                return 0;
                } else if (strcmp(ps[i], "{name}") == 0) {
                        if (pct_decode(segs[i], strlen(segs[i]), 0, c->name, sizeof(c->name)) !=
                                0 ||
                            c->name[0] == '\0')
                                return 0;
                } else if (strcmp(ps[i], segs[i]) != 0) {
                        return 0;
                }
        }
        return 1;
}

/* The audit record of a refused request (401 or 403). */
static int audit_refusal(struct call *c, const char *cause, struct gmca_error *e)
{
        const struct serve_request *rq = c->rq;
        const char *actor = c->who.op.name[0] != '\0' ? c->who.op.name : "unauthenticated";
        char target[512];
        struct gmca_audit_event ev;
        json_t *d;
        char *detail;
        int rc;

        gmca_strlcpy(target, rq->target, sizeof(target));
        d = json_pack("{s:s, s:s, s:s, s:s, s:s}", "method", rq->method, "target", target, "remote",
                      rq->remote, "cause", cause, "operator_fingerprint", rq->hdr.operator_fpr);
        detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        ev = (struct gmca_audit_event){GMCA_EV_AUTH_REQUEST, actor, 0,
                                       gmca_action_name(needed_action(c)), detail};
        rc = gmca_audit_record(c->w->store, &ev, e);
        free(detail);
        return rc;
}

static void refuse(struct call *c, unsigned status, const char *code, const char *cause,
                   struct serve_reply *out)
{
        struct gmca_error ae = {0};

        if (audit_refusal(c, cause, &ae) != 0) {
                serve_reply_error(out, 500, "internal", "refused (%s), and the audit failed: %s",
                                  cause, ae.msg);
                return;
        }
        serve_reply_error(out, status, code, "%s", cause);
}

static void api(struct serve_worker *w, const struct serve_request *rq, char *path, const char *qs,
                struct serve_reply *out)
{
        char *segs[SEGS_MAX];
        size_t nsegs;
        const struct route *rt = NULL;
        struct call *c;
        int rc;

        if ((c = calloc(1, sizeof(*c))) == NULL) {
                serve_reply_error(out, 500, "internal", "out of memory");
                return;
        }
        c->w = w;
        c->rq = rq;
        out->allow[0] = '\0';
        if (strlen(path) > SEGS_MAX * (SEG_MAX + 1) || split_path(path, segs, &nsegs) != 0)
                nsegs = 0;
        for (size_t i = 0; nsegs > 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
                if (!match(&routes[i], segs, nsegs, c))
                        continue;
                if (strcmp(routes[i].method, rq->method) == 0) {
                        rt = &routes[i];
                        break;
                }
                if (strstr(out->allow, routes[i].method) == NULL) {
                        size_t used = strlen(out->allow);

                        snprintf(out->allow + used, sizeof(out->allow) - used, "%s%s",
                                 used > 0 ? ", " : "", routes[i].method);
                }
        }
        if (rt == NULL) {
                if (out->allow[0] != '\0')
                        serve_reply_error(out, 405, "method_not_allowed",
                                          "%s is not allowed here (allowed: %s)", rq->method,
                                          out->allow);
                else
                        serve_reply_error(out, 404, "not_found", "no such API path");
                goto done;
        }
        out->allow[0] = '\0';
        c->rt = rt;
        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                goto done;
        }
        c->now = (int64_t)gmca_now();
        w->engine_down = 0;
        /* Who is asking. */
        if (rq->hdr_bad != NULL) {
                refuse(c, 401, "unauthenticated", rq->hdr_bad, out);
                goto done;
        }
        rc = gmca_auth_verify(w->store, &rq->hdr, rq->method, rq->target, rq->body, rq->len, c->now,
                              &c->who, &c->e);
        if (rc != 0) {
                memset(&c->who.op, 0, sizeof(c->who.op));
                if (rc == GMCA_ERR_AUTH || rc == GMCA_ERR_INVALID)
                        refuse(c, 401, "unauthenticated", c->e.msg, out);
                else
                        reply_err(out, &c->e);
                goto done;
        }
        if ((rc = parse_query(qs, rt->query, &c->q, &c->e)) != 0) {
                reply_err(out, &c->e);
                goto done;
        }
        /* May they. */
        if ((rc = gmca_auth_allowed(c->who.op.roles, needed_action(c), &c->e)) != 0) {
                if (rc == GMCA_ERR_FORBIDDEN)
                        refuse(c, 403, "forbidden", c->e.msg, out);
                else
                        reply_err(out, &c->e);
                goto done;
        }
        if (strcmp(rq->method, "GET") == 0 && rq->len > 0) {
                serve_reply_error(out, 400, "bad_request", "a GET request has no body");
                goto done;
        }
        if ((rc = rt->run(c)) != 0) {
                if (w->engine_down)
                        serve_reply_error(out, 503, "unavailable",
                                          "the CA engine is not reachable: %s", c->e.msg);
                else
                        reply_err(out, &c->e);
                goto done;
        }
        if (c->text != NULL) {
                serve_reply_bytes(out, rt->ok, c->text_type, (const uint8_t *)c->text, c->text_len);
                goto done;
        }
        if (c->out == NULL) {
                serve_reply_error(out, 500, "internal", "out of memory");
                goto done;
        }
        serve_reply_json(out, rt->ok, c->out);
        c->out = NULL;
done:
        json_decref(c->out);
        free(c->text);
        gmca_auth_result_clear(&c->who);
        OPENSSL_cleanse(c, sizeof(*c));
        free(c);
}

/* 1 if m is a method token (RFC 9110 §9.1, §5.6.2): tchar only, not empty. */
static int method_token(const char *m)
{
        static const char tchar_punct[] = "!#$%&'*+-.^_`|~";

        if (m[0] == '\0')
                return 0;
        for (; *m != '\0'; m++)
                if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') ||
                      (*m >= '0' && *m <= '9') || strchr(tchar_punct, *m) != NULL))
                        return 0;
        return 1;
}

void serve_dispatch(struct serve_worker *w, const struct serve_request *rq, struct serve_reply *out)
{
        char path[SERVE_TARGET_MAX + 1];
        char *qmark;

        if (!method_token(rq->method)) {
                serve_reply_error(out, 400, "bad_request", "method: an HTTP token");
                return;
        }
        if (rq->target_bad) {
                serve_reply_error(out, 400, "bad_request",
                                  "request target: over %d bytes or not printable ASCII",
                                  SERVE_TARGET_MAX);
                return;
        }
        gmca_strlcpy(path, rq->target, sizeof(path));
        if (strchr(path, '#') != NULL || path[0] != '/') {
                serve_reply_error(out, 400, "bad_request", "request target: an absolute path");
                return;
        }
        if ((qmark = strchr(path, '?')) != NULL)
                *qmark++ = '\0';
        if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0) {
                if (w != NULL && w->cfg != NULL && w->cfg->responder)
                        serve_reply_error(out, 404, "not_found",
                                          "no API here: this is an OCSP and CRL responder");
                else
                        api(w, rq, path, qmark, out);
                return;
        }
        if (serve_search(w, rq, path, qmark, out))
                return;
        if (qmark != NULL) {
                serve_reply_error(out, 400, "bad_request", "no query string here");
                return;
        }
        if (strcmp(path, "/tsa") == 0) {
                serve_tsa(w, rq, out);
                return;
        }
        if (strcmp(path, "/ocsp") == 0 || strncmp(path, "/ocsp/", 6) == 0) {
                serve_ocsp(w, rq, path, out);
                return;
        }
        if (!serve_public(w, rq, path, out))
                serve_reply_error(out, 404, "not_found", "no such path");
}
