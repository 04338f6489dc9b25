/*
 * The public, unsigned downloads of the front (DESIGN.md "Contracts"):
 * the CA certificates (GET /ca/{name}.crt, DER) and each CA's latest CRL
 * (GET /crl/{name}.crl, DER, as stored when it was generated, with HTTP
 * caching headers; GET /crl/{name}/{number}.crl any CRL ever issued, GET
 * /crl/{name}/delta.crl the latest delta CRL), for relying
 * parties and the URLs in issued certificates (CRL distribution point,
 * caIssuers); and GET /healthz for whoever watches the service. All read
 * the store only.
 *
 * A responder (gmca serve --responder) may read a hot-standby replica: its
 * /healthz then asks the database how far behind the primary it is
 * (responder_health) and answers 503 when the store cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "crypto.h"
#include "serve_internal.h"
#include "store_internal.h"
#include "util.h"

int serve_store_uri(const struct gmca_serve_config *cfg, char *out, size_t len,
                    struct gmca_error *e)
{
        if (cfg->db == NULL)
                return gmca_ca_front_store_uri(cfg->dir, out, len, e);
        if (gmca_strlcpy(out, cfg->db, len) >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "database URI too long");
        return 0;
}

/* A CA name from the path: [A-Za-z0-9._-], 1..GMCA_NAME_MAX-1 bytes, then suffix. */
static int name_from(const char *path, const char *prefix, const char *suffix,
                     char name[GMCA_NAME_MAX])
{
        size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);

        if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0)
                return 0;
        n -= pl + sl;
        if (n >= GMCA_NAME_MAX || path[pl] == '.')
                return 0;
        for (size_t i = 0; i < n; i++) {
                char ch = path[pl + i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
                        return 0;
        }
        memcpy(name, path + pl, n);
        name[n] = '\0';
        return 1;
}

static void store_failure(struct serve_reply *out, int rc, const struct gmca_error *e,
                          const char *what, const char *name)
{
        if (rc == GMCA_ERR_NOTFOUND)
                serve_reply_error(out, 404, "not_found", "no %s for CA %s", what, name);
        else
                serve_reply_error(out, 500, "internal", "%s", e->msg);
}

static void ca_cert(struct serve_worker *w, const char *name, struct serve_reply *out)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec ca;
        int rc;

        memset(&ca, 0, sizeof(ca));
        if ((rc = gmca_store_ca_get(w->store, name, &ca, &e)) != 0) {
                store_failure(out, rc, &e, "certificate", name);
                return;
        }
        serve_reply_bytes(out, 200, "application/pkix-cert", ca.cert_der, ca.cert_len);
        gmca_ca_rec_clear(&ca);
}

/* IMF-fixdate (RFC 9110 §5.6.7). */
static void http_date(time_t t, char *buf, size_t len)
{
        struct tm tm;

        if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
                buf[0] = '\0';
}

/* An HTTP date, IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 otherwise. */
static int http_date_parse(const char *s, time_t *out)
{
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        char wday[4], mon[4];
        const char *m;
        struct tm tm;
        int end = -1;

        memset(&tm, 0, sizeof(tm));
        if (strlen(s) != 29 ||
            sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wday, &tm.tm_mday, mon,
                   &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &end) != 7 ||
            end != 29 || (m = strstr(months, mon)) == NULL || (m - months) % 3 != 0 ||
            tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60 || tm.tm_year < 1970)
                return -1;
        tm.tm_mon = (int)(m - months) / 3;
        tm.tm_year -= 1900;
        *out = timegm(&tm);
        return *out == (time_t)-1 ? -1 : 0;
}

/* 1 if the If-None-Match list (RFC 9110 §13.1.2, weak comparison) holds etag, or is "*". */
static int etag_match(const char *list, const char *etag)
{
        size_t n = strlen(etag);
        const char *p = list;

        for (int guard = 0; *p != '\0' && guard < SERVE_COND_MAX; guard++) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (*p == '*')
                        return 1;
                if (strncmp(p, "W/", 2) == 0)
                        p += 2;
                if (strncmp(p, etag, n) == 0 &&
                    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
                        return 1;
                while (*p != '\0' && *p != ',')
                        p++;
        }
        return 0;
}

/*
 * A CRL with its caching headers (RFC 9111): it changes only when a new one
 * is issued, so Last-Modified is its thisUpdate, the ETag the SM3 of its
 * DER, and caches may keep it until its nextUpdate. A matching
 * If-None-Match (or, without one, an If-Modified-Since not before
 * thisUpdate) gets 304 (RFC 9110 §13.2.2).
 */
static void crl_reply(const struct serve_request *rq, const struct gmca_crl_rec *crl,
                      struct serve_reply *out)
{
        uint8_t md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1];
        time_t now = gmca_now(), ims;
        int64_t age = crl->next_update > now ? crl->next_update - now : 0;
        int fresh = 0;

        if (gmca_sm3(crl->der, crl->der_len, md) != 0) {
                serve_reply_error(out, 500, "internal", "cannot hash the CRL");
                return;
        }
        gmca_hex_upper(md, sizeof(md), hex);
        if (rq->if_none_match[0] != '\0' && rq->if_none_match[0] != '\x01') {
                char quoted[sizeof(hex) + 2];

                snprintf(quoted, sizeof(quoted), "\"%s\"", hex);
                fresh = etag_match(rq->if_none_match, quoted);
        } else if (rq->if_modified_since[0] != '\0' &&
                   http_date_parse(rq->if_modified_since, &ims) == 0) {
                fresh = crl->this_update <= (int64_t)ims;
        }
        if (fresh)
                serve_reply_bytes(out, 304, "application/pkix-crl", NULL, 0);
        else
                serve_reply_bytes(out, 200, "application/pkix-crl", crl->der, crl->der_len);
        if (out->status != 200 && out->status != 304)
                return;
        snprintf(out->etag, sizeof(out->etag), "\"%s\"", hex);
        snprintf(out->cache, sizeof(out->cache), "public, max-age=%lld", (long long)age);
        http_date((time_t)crl->this_update, out->last_modified, sizeof(out->last_modified));
        http_date((time_t)crl->next_update, out->expires, sizeof(out->expires));
}

/* number: 0 for the latest complete CRL, -1 for the latest delta CRL, else that cRLNumber
 * (every CRL is kept, CPS §3.9.12). */
static void ca_crl(struct serve_worker *w, const struct serve_request *rq, const char *name,
                   int64_t number, struct serve_reply *out)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec ca;
        struct gmca_crl_rec crl;
        int rc;

        memset(&ca, 0, sizeof(ca));
        memset(&crl, 0, sizeof(crl));
        if ((rc = gmca_store_ca_get(w->store, name, &ca, &e)) != 0) {
                store_failure(out, rc, &e, "CRL", name);
                return;
        }
        if (number == 0)
                rc = gmca_store_crl_latest(w->store, ca.id, &crl, &e);
        else if (number < 0)
                rc = gmca_store_crl_latest_delta(w->store, ca.id, &crl, &e);
        else
                rc = gmca_store_crl_get(w->store, ca.id, number, &crl, &e);
        if (rc != 0)
                store_failure(out, rc, &e, "such CRL", name);
        else
                crl_reply(rq, &crl, out);
        gmca_crl_rec_clear(&crl);
        gmca_ca_rec_clear(&ca);
}

/*
 * On PostgreSQL: whether the server is a standby in recovery, how long ago
 * the last transaction it replayed was committed on the primary (NULL on a
 * primary; it also grows while the primary commits nothing), and whether it
 * has replayed all the WAL it received.
 */
static const char SQL_REPLICA[] =
    "SELECT pg_is_in_recovery()::int,"
    " (EXTRACT(EPOCH FROM (clock_timestamp() - pg_last_xact_replay_timestamp())) * 1000)::bigint,"
    " (pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn())::int";

/* The replica fields of a responder's /healthz into o; 0, or an error code. */
static int replica_state(struct gmca_store *s, json_t *o, struct gmca_error *e)
{
        struct gmca_q q;
        int rc, standby;

        if (!gmca_store_is_pg(s)) {
                json_object_set_new(o, "standby", json_false());
                json_object_set_new(o, "replay_lag_seconds", json_null());
                return 0;
        }
        if ((rc = gmca_q_open(s, SQL_REPLICA, &q, e)) != 0)
                return rc;
        if ((rc = gmca_q_step(&q, e, "replica state")) != GMCA_DB_ROW) {
                gmca_q_close(&q);
                return rc < 0 ? rc : gmca_error_set(e, GMCA_ERR_DB, "replica state: no row");
        }
        standby = gmca_q_col_int(&q, 0) != 0;
        json_object_set_new(o, "standby", json_boolean(standby));
        json_object_set_new(o, "replay_lag_seconds",
                            standby && !gmca_q_col_null(&q, 1)
                                ? json_real((double)gmca_q_col_int(&q, 1) / 1000.0)
                                : json_null());
        if (standby)
                json_object_set_new(o, "replay_caught_up", json_boolean(gmca_q_col_int(&q, 2)));
        gmca_q_close(&q);
        return 0;
}

static void responder_health(struct serve_worker *w, struct serve_reply *out)
{
        struct gmca_error e = {0};
        json_t *o;
        char *text;

        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                return;
        }
        if ((o = json_pack("{s:s, s:s}", "status", "ok", "mode", "responder")) == NULL) {
                serve_reply_error(out, 500, "internal", "out of memory");
                return;
        }
        if (replica_state(w->store, o, &e) != 0) {
                json_decref(o);
                serve_reply_error(out, 503, "unavailable", "store: %s", e.msg);
                return;
        }
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (text == NULL) {
                serve_reply_error(out, 500, "internal", "out of memory");
                return;
        }
        serve_reply_bytes(out, 200, "application/json; charset=utf-8", (const uint8_t *)text,
                          strlen(text));
        free(text);
}

/* /crl/{name}/{number}.crl: number 1..2^53 in decimal without leading zeros; -1 for
 * /crl/{name}/delta.crl. */
static int numbered_crl(const char *path, char name[GMCA_NAME_MAX], int64_t *number)
{
        char tmp[GMCA_NAME_MAX + 32];
        const char *slash;
        int64_t v = 0;
        size_t n;

        if (strncmp(path, "/crl/", 5) != 0 || (slash = strchr(path + 5, '/')) == NULL)
                return 0;
        n = strlen(slash + 1);
        if (strcmp(slash + 1, "delta.crl") == 0)
                v = -1;
        else if (n < 5 || n > 16 + 4 || strcmp(slash + 1 + n - 4, ".crl") != 0 || slash[1] == '0')
                return 0;
        for (size_t i = 1; v >= 0 && i <= n - 4; i++) {
                if (slash[i] < '0' || slash[i] > '9')
                        return 0;
                v = v * 10 + (slash[i] - '0');
        }
        if (v > ((int64_t)1 << 53) || (size_t)(slash - path) + 4 >= sizeof(tmp))
                return 0;
        /* The name part goes through the same check as /crl/{name}.crl. */
        snprintf(tmp, sizeof(tmp), "%.*s.crl", (int)(slash - path), path);
        if (!name_from(tmp, "/crl/", ".crl", name))
                return 0;
        *number = v;
        return 1;
}

int serve_public(struct serve_worker *w, const struct serve_request *rq, const char *path,
                 struct serve_reply *out)
{
        const char *method = rq->method;
        char name[GMCA_NAME_MAX];
        int64_t number = 0;
        int healthz = strcmp(path, "/healthz") == 0, cert = 0, crl = 0;

        if (!healthz && !(cert = name_from(path, "/ca/", ".crt", name)) &&
            !(crl = name_from(path, "/crl/", ".crl", name)) &&
            !(crl = numbered_crl(path, name, &number)))
                return 0;
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                gmca_strlcpy(out->allow, "GET, HEAD", sizeof(out->allow));
                serve_reply_error(out, 405, "method_not_allowed",
                                  "%s is not allowed here (allowed: GET, HEAD)", method);
                return 1;
        }
        if (healthz && w != NULL && w->cfg != NULL && w->cfg->responder) {
                responder_health(w, out);
                return 1;
        }
        if (healthz) {
                static const char ok[] = "{\"status\":\"ok\"}\n";

                serve_reply_bytes(out, 200, "application/json; charset=utf-8", (const uint8_t *)ok,
                                  sizeof(ok) - 1);
                return 1;
        }
        if (w == NULL) {
                serve_reply_error(out, 503, "unavailable", "no worker free; try again");
                return 1;
        }
        if (cert)
                ca_cert(w, name, out);
        else
                ca_crl(w, rq, name, number, out);
        return 1;
}

int serve_etag_match(const char *list, const char *etag)
{
        return etag_match(list, etag);
}
