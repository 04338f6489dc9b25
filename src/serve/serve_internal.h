/*
 * serve_internal: what the files of the front share — the worker context a
 * request runs with (http.c hands it out, worker.c makes it), the parsed
 * request and the reply (http.c fills and sends them, routes.c and files.c
 * decide them). Nothing here touches libmicrohttpd but http.c.
 */
#ifndef GMCA_SERVE_INTERNAL_H
#define GMCA_SERVE_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "engine.h"
#include "err.h"
#include "ra.h"
#include "serve.h"
#include "store.h"

#define SERVE_TARGET_MAX 4096 /* bytes of a request target (path and query) */
#define SERVE_METHOD_MAX 15
#define SERVE_CTYPE_MAX 127     /* bytes of a Content-Type kept */
#define SERVE_TSA_BODY_MAX 8192 /* bytes of a TimeStampReq over HTTP (they are ~100) */
#define SERVE_COND_MAX 255      /* bytes of an If-None-Match or If-Modified-Since kept */

struct serve_crl_sched;

/*
 * One per libmicrohttpd worker thread, used by one request at a time: its
 * own store connection and its own CA engine connection (made on first
 * use, dropped when the engine stops answering, made again next time).
 */
struct serve_worker {
        const struct gmca_serve_config *cfg;
        struct gmca_store *store;
        struct gmca_engine_ra era; /* era.client NULL until needed */
        char sock[PATH_MAX];
        int engine_down; /* set by a call that could not reach the CA engine */
        int busy;
        struct gmca_pii_sealer sealer;
        struct gmca_ra_env env;
        /* Asks the CRL schedule for a CRL now (crl_sched.c); NULL: no schedule. */
        void (*crl_urgent)(struct serve_crl_sched *);
        struct serve_crl_sched *crl;
        struct gmca_ocsp_cache *ocsp_cache; /* shared by the workers; NULL: sign each time */
        struct serve_ocsp_fast *ocsp;       /* the responders (ocsp.c); NULL: no OCSP */
};

/* The store the front reads and writes: cfg->db, else the directory's front store (files.c). */
int serve_store_uri(const struct gmca_serve_config *cfg, char *out, size_t len,
                    struct gmca_error *e) GMCA_WUR;

int serve_worker_init(struct serve_worker *w, const struct gmca_serve_config *cfg,
                      struct gmca_error *e) GMCA_WUR;
void serve_worker_free(struct serve_worker *w);

/* A request as received: the raw target (what the operator signed) and the body. */
struct serve_request {
        char method[SERVE_METHOD_MAX + 1];
        char target[SERVE_TARGET_MAX + 1];
        int target_bad; /* longer than SERVE_TARGET_MAX, or with bytes outside 0x21..0x7e */
        char remote[64];
        struct gmca_auth_headers hdr; /* "" where a header is absent */
        const char *hdr_bad; /* a malformed, over-long or repeated X-Gmca header, or NULL */
        char ctype[SERVE_CTYPE_MAX + 1]; /* Content-Type, "" when absent */
        int ctype_bad;                   /* Content-Type repeated or over-long */
        int has_body;                    /* Content-Length or Transfer-Encoding was sent */
        /* Conditional GET (RFC 9110 §13.1): "" absent, "\x01" over-long or repeated (ignored). */
        char if_none_match[SERVE_COND_MAX + 1];
        char if_modified_since[SERVE_COND_MAX + 1];
        uint8_t *body; /* NULL when empty */
        size_t len, cap;
};

struct serve_reply {
        unsigned status;
        const char *ctype;
        char *data; /* malloc'd */
        size_t len;
        char allow[48]; /* for 405: the methods the path takes */
        /*
         * HTTP caching (RFC 9111), "" where not sent: cache replaces the
         * default "Cache-Control: no-store"; the dates are IMF-fixdate
         * (RFC 9110 §5.6.7); etag is sent as given (quoted by the caller).
         */
        char cache[96];
        char last_modified[32];
        char expires[32];
        char etag[80];
        const char *csp; /* Content-Security-Policy, static; NULL: not sent (search.c sets it) */
};

/*
 * Take one request header as received: the X-Gmca headers into rq->hdr
 * (each once, fitting its field, else rq->hdr_bad), Content-Type into
 * rq->ctype, and whether a body is announced.
 */
void serve_request_header(struct serve_request *rq, const char *key, const char *value);

/* The body cap for a request target: SERVE_TSA_BODY_MAX for /tsa, else GMCA_AUTH_BODY_MAX. */
size_t serve_body_max(const char *target);

/* 1 if a Content-Type value is the media type want (case-insensitive; parameters may follow). */
int serve_media_type_is(const char *ctype, const char *want);

/* POST /tsa: the TimeStampResp for the body (tsa.c). */
void serve_tsa(struct serve_worker *w, const struct serve_request *rq, struct serve_reply *out);

/* POST /ocsp, GET /ocsp/{base64}: the OCSPResponse for the request (ocsp.c). */
void serve_ocsp(struct serve_worker *w, const struct serve_request *rq, const char *path,
                struct serve_reply *out);

/* The reply for one request; w may be NULL if no worker could be had (503). */
void serve_dispatch(struct serve_worker *w, const struct serve_request *rq,
                    struct serve_reply *out);

/* Set the reply (status, JSON body). v is consumed; NULL becomes a 500. */
void serve_reply_json(struct serve_reply *r, unsigned status, json_t *v);
/* {"error": code, "message": text} */
void serve_reply_error(struct serve_reply *r, unsigned status, const char *code, const char *fmt,
                       ...) GMCA_PRINTF(4, 5);
void serve_reply_bytes(struct serve_reply *r, unsigned status, const char *ctype, const uint8_t *p,
                       size_t n);

/*
 * "1.2.3.4:80" or "[::1]:80" into *ss (port 0: any) and host (the address
 * part, hostlen >= INET6_ADDRSTRLEN + 1). GMCA_ERR_INVALID otherwise.
 */
struct sockaddr_storage;
int serve_parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hostlen,
                       struct gmca_error *e) GMCA_WUR;

/*
 * The CRL schedule (crl_sched.c, CPS §3.9.10): a thread that generates each
 * CA's CRL through the CA engine every interval seconds (0: the configured
 * crl_hours), at start when one is due, and at once after
 * serve_crl_sched_urgent. Stopped and freed by serve_crl_sched_stop (NULL
 * is fine).
 */
struct serve_crl_sched *serve_crl_sched_start(const char *dir, int64_t interval,
                                              struct gmca_error *e);
void serve_crl_sched_urgent(struct serve_crl_sched *s);
void serve_crl_sched_stop(struct serve_crl_sched *s);

/*
 * The delivery workers (publish_run.c, publish.h): one thread per channel
 * p[0..n) (copied), each with its own connection to the store in dir,
 * pumping the change feed to its receiver until serve_publish_stop (NULL
 * is fine).
 */
struct gmca_publisher;
struct serve_publish;
struct serve_publish *serve_publish_start(const char *dir, const struct gmca_publisher *p, size_t n,
                                          struct gmca_error *e);
void serve_publish_stop(struct serve_publish *sp);

/*
 * The OCSP fast path (ocsp.c): the cache of pre-signed responses shared by
 * the workers, and a thread with its own store connection that re-signs
 * entries before they reach nextUpdate - margin. NULL from start when
 * cfg serves no OCSP (nothing to do) or on failure (e->code set). Stopped
 * and freed by serve_ocsp_fast_stop (NULL is fine).
 */
struct serve_ocsp_fast;
struct gmca_ocsp_cache;
struct serve_ocsp_fast *serve_ocsp_fast_start(const struct gmca_serve_config *cfg,
                                              struct gmca_error *e);
struct gmca_ocsp_cache *serve_ocsp_fast_cache(struct serve_ocsp_fast *f);
/* 1 if cfg asks for any OCSP responder (then serve_ocsp_fast_start must succeed). */
int serve_ocsp_wanted(const struct gmca_serve_config *cfg);
void serve_ocsp_fast_stop(struct serve_ocsp_fast *f);

/* The public, unsigned downloads: 1 if path is one of them (out filled), else 0. */
int serve_public(struct serve_worker *w, const struct serve_request *rq, const char *path,
                 struct serve_reply *out);

/* 1 if an If-None-Match list holds etag (files.c; weak comparison, "*" matches). */
int serve_etag_match(const char *list, const char *etag);

/*
 * Percent-decode [in, in + n) into out (routes.c): '+' is a space when plus
 * is set; -1 for a bad escape, a control character or no room.
 */
int serve_pct_decode(const char *in, size_t n, int plus, char *out, size_t cap);

/*
 * The public search (search.c, CPS §1.6.1): GET /certs?query, the
 * certificate and public key downloads under /certs/, /repository.json,
 * /cps and the page at /. 1 if path is one of them (out filled), else 0;
 * query is the query string or NULL. w may be NULL (503, but the page).
 */
int serve_search(struct serve_worker *w, const struct serve_request *rq, const char *path,
                 const char *query, struct serve_reply *out);

#endif
