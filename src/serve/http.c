/*
 * The HTTP side of the front, on libmicrohttpd: a pool of threads, each
 * request read into a bounded buffer (GMCA_AUTH_BODY_MAX, SERVE_TSA_BODY_MAX
 * for /tsa; 413 as soon as the declared or received length passes it), the
 * raw request target kept as sent (the operator signed it, so it is not
 * unescaped or normalised), the headers handed to routes.c, and its reply
 * sent back.
 * Connection limits and timeouts keep slow or many clients from starving
 * the rest. SIGTERM or SIGINT stops it: no new connections, the requests
 * under way finish, then it returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve_internal.h"
#include "util.h"

#define CONNECTION_LIMIT 4096
#define CONNECTION_TIMEOUT 30         /* seconds of silence before a connection is dropped */
#define CONNECTION_MEMORY (32 * 1024) /* per connection: request line and headers */
#define LISTEN_BACKLOG 1024
#define NOFILE_WANT 8192

struct server {
        const struct gmca_serve_config *cfg;
        struct serve_worker *workers;
        struct serve_crl_sched *crl;  /* the CRL schedule's thread */
        struct serve_ocsp_fast *ocsp; /* the OCSP cache and its refresh thread */
        struct serve_publish *pub;    /* the change feed's delivery threads */
        size_t nworkers;
        pthread_mutex_t lock;
        atomic_long inflight; /* requests whose headers are in and whose reply is not done */
        atomic_int stopping;
};

/* Per request (libmicrohttpd's *con_cls). */
struct req {
        struct serve_request rq;
        int started;
        int counted; /* in server.inflight */
        int too_large;
        size_t max; /* body cap of the target (serve_body_max) */
};

/* ---- workers ---- */

static struct serve_worker *worker_take(struct server *srv)
{
        struct serve_worker *w = NULL;

        pthread_mutex_lock(&srv->lock);
        for (size_t i = 0; i < srv->nworkers; i++)
                if (!srv->workers[i].busy) {
                        w = &srv->workers[i];
                        w->busy = 1;
                        break;
                }
        pthread_mutex_unlock(&srv->lock);
        return w;
}

static void worker_give(struct server *srv, struct serve_worker *w)
{
        if (w == NULL)
                return;
        pthread_mutex_lock(&srv->lock);
        w->busy = 0;
        pthread_mutex_unlock(&srv->lock);
}

/* ---- requests ---- */

/* The raw target, before libmicrohttpd unescapes it: it is what was signed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
        struct req *r = calloc(1, sizeof(*r));
        const union MHD_ConnectionInfo *ci;
        size_t n;

        (void)cls;
        if (r == NULL)
                return NULL;
        n = strlen(uri);
        if (n == 0 || n > SERVE_TARGET_MAX) {
                r->rq.target_bad = 1;
        } else {
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] >= 0x7f)
                                r->rq.target_bad = 1;
                memcpy(r->rq.target, uri, n + 1);
        }
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci != NULL && ci->client_addr != NULL) {
                const struct sockaddr *sa = ci->client_addr;
                char host[INET6_ADDRSTRLEN] = "?";

                if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET,
                                  &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
                                  sizeof(host));
                else if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6,
                                  &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, host,
                                  sizeof(host));
                snprintf(r->rq.remote, sizeof(r->rq.remote), "%s", host);
        }
        return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct server *srv = cls;
        struct req *r = *con_cls;

        (void)conn;
        (void)toe;
        if (r == NULL)
                return;
        if (r->counted)
                atomic_fetch_sub(&srv->inflight, 1);
        if (r->rq.body != NULL) {
                OPENSSL_cleanse(r->rq.body, r->rq.cap);
                free(r->rq.body);
        }
        free(r);
        *con_cls = NULL;
}

/* Each header to serve_request_header (routes.c), which keeps what the front reads. */
static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
        (void)kind;
        serve_request_header(cls, key, value);
        return MHD_YES;
}

static enum MHD_Result send_reply(struct server *srv, struct MHD_Connection *conn,
                                  struct serve_reply *out)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        resp = MHD_create_response_from_buffer(out->len, out->data, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL) {
                free(out->data);
                out->data = NULL;
                return MHD_NO;
        }
        out->data = NULL; /* the response owns it */
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    out->ctype != NULL ? out->ctype : "text/plain") != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                    out->cache[0] != '\0' ? out->cache : "no-store") != MHD_YES ||
            (out->last_modified[0] != '\0' &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, out->last_modified) !=
                 MHD_YES) ||
            (out->expires[0] != '\0' &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, out->expires) != MHD_YES) ||
            (out->etag[0] != '\0' &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, out->etag) != MHD_YES) ||
            MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
            (out->csp != NULL &&
             (MHD_add_response_header(resp, "Content-Security-Policy", out->csp) != MHD_YES ||
              MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") != MHD_YES)) ||
            (out->allow[0] != '\0' &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, out->allow) != MHD_YES) ||
            (atomic_load(&srv->stopping) &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        ret = MHD_queue_response(conn, out->status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_now(struct server *srv, struct MHD_Connection *conn, unsigned status,
                                 const char *code, const char *msg)
{
        struct serve_reply out;

        memset(&out, 0, sizeof(out));
        serve_reply_error(&out, status, code, "%s", msg);
        return send_reply(srv, conn, &out);
}

/* A Content-Length over the cap is refused before a byte of the body is read. */
static int declared_too_large(struct MHD_Connection *conn, size_t max)
{
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        size_t n;

        if (cl == NULL)
                return 0;
        n = strlen(cl);
        /* libmicrohttpd has checked it is a number; a long one is large. */
        if (n > 9)
                return 1;
        return strtoul(cl, NULL, 10) > max;
}

static int body_append(struct serve_request *rq, const char *data, size_t n, size_t max)
{
        if (rq->cap - rq->len < n) {
                size_t cap = rq->cap == 0 ? 4096 : rq->cap;
                uint8_t *p;

                while (cap - rq->len < n)
                        cap *= 2;
                if (cap > max)
                        cap = max;
                if ((p = malloc(cap)) == NULL)
                        return -1;
                if (rq->body != NULL) {
                        memcpy(p, rq->body, rq->len);
                        OPENSSL_cleanse(rq->body, rq->cap);
                        free(rq->body);
                }
                rq->body = p;
                rq->cap = cap;
        }
        memcpy(rq->body + rq->len, data, n);
        rq->len += n;
        return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
        struct server *srv = cls;
        struct req *r = *con_cls;
        struct serve_worker *w;
        struct serve_reply out;
        enum MHD_Result ret;

        (void)url;
        (void)version;
        if (r == NULL)
                return reply_now(srv, conn, 500, "internal", "out of memory");
        if (!r->started) {
                r->started = 1;
                r->counted = 1;
                atomic_fetch_add(&srv->inflight, 1);
                if (strlen(method) > SERVE_METHOD_MAX)
                        return reply_now(srv, conn, 400, "bad_request", "method too long");
                gmca_strlcpy(r->rq.method, method, sizeof(r->rq.method));
                MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, &r->rq);
                r->max = serve_body_max(r->rq.target);
                if (declared_too_large(conn, r->max)) {
                        char msg[64];

                        snprintf(msg, sizeof(msg), "request body over %zu bytes", r->max);
                        r->too_large = 1;
                        return reply_now(srv, conn, 413, "too_large", msg);
                }
                return MHD_YES;
        }
        if (*upload_size > 0) {
                size_t n = *upload_size;

                *upload_size = 0;
                if (r->too_large)
                        return MHD_YES;
                if (n > r->max - r->rq.len) {
                        /* A chunked body that grew past the cap: drop the connection. */
                        r->too_large = 1;
                        return MHD_NO;
                }
                if (body_append(&r->rq, upload, n, r->max) != 0)
                        return MHD_NO;
                return MHD_YES;
        }
        if (r->too_large)
                return MHD_YES; /* the 413 is queued already */
        memset(&out, 0, sizeof(out));
        w = worker_take(srv);
        serve_dispatch(w, &r->rq, &out);
        worker_give(srv, w);
        ret = send_reply(srv, conn, &out);
        free(out.data);
        return ret;
}

/* ---- the daemon ---- */

int gmca_serve_check_listen(const char *listen, struct gmca_error *e)
{
        struct sockaddr_storage ss;
        char host[INET6_ADDRSTRLEN + 1];

        return serve_parse_listen(listen, &ss, host, sizeof(host), e);
}

/* <dir>/run/serve.pid (responder.pid), locked while we serve: a second one on the directory is
 * refused. */
static int pid_lock(const char *dir, const char *name, char *path, size_t len, int *fd,
                    struct gmca_error *e)
{
        char run[PATH_MAX], buf[32];
        int n, f;

        n = snprintf(run, sizeof(run), "%s/run", dir);
        if (n < 0 || (size_t)n >= sizeof(run) ||
            (n = snprintf(path, len, "%s/%s", dir, name)) < 0 || (size_t)n >= len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", dir);
        if (mkdir(run, 0700) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", run, strerror(errno));
        if ((f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        if (flock(f, LOCK_EX | LOCK_NB) != 0) {
                int err = errno;

                close(f);
                if (err == EWOULDBLOCK)
                        return gmca_error_set(e, GMCA_ERR_STATE,
                                              "%s: another gmca serve is serving this directory",
                                              dir);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: lock: %s", path, strerror(err));
        }
        n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
        if (ftruncate(f, 0) != 0 || gmca_write_all(f, buf, (size_t)n) != 0) {
                int err = errno;

                close(f);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(err));
        }
        *fd = f;
        return 0;
}

/* 1000 and more clients at once need as many descriptors. */
static void raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return;
        if (rl.rlim_cur >= NOFILE_WANT)
                return;
        rl.rlim_cur =
            rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= NOFILE_WANT ? NOFILE_WANT : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * A responder only reads (serve.h): what would write to the store, hold a
 * key of its own or need the CA engine is refused rather than ignored.
 */
static int responder_check(const struct gmca_serve_config *cfg, struct gmca_error *e)
{
        if (!cfg->responder)
                return 0;
        if (cfg->tsa != NULL || cfg->nocsp_auto > 0 || cfg->nocsp_ca_signed > 0 ||
            cfg->npublishers > 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "responder mode: no TSA, no --ocsp-auto or --ocsp-ca-signed, "
                                      "no publishing");
        return 0;
}

int gmca_serve_run(const struct gmca_serve_config *cfg, struct gmca_error *e)
{
        struct server srv;
        struct sockaddr_storage ss;
        struct MHD_Daemon *d = NULL;
        const union MHD_DaemonInfo *di;
        char host[INET6_ADDRSTRLEN + 1], pid_path[PATH_MAX];
        sigset_t set, old;
        unsigned flags;
        int rc, sig = 0, pid_fd = -1, masked = 0;
        MHD_socket lfd;

        memset(&srv, 0, sizeof(srv));
        srv.cfg = cfg;
        pthread_mutex_init(&srv.lock, NULL);
        atomic_init(&srv.inflight, 0);
        atomic_init(&srv.stopping, 0);
        if (cfg->threads < 1 || cfg->threads > GMCA_SERVE_THREADS_MAX) {
                rc =
                    gmca_error_set(e, GMCA_ERR_INVALID, "--threads: 1..%d", GMCA_SERVE_THREADS_MAX);
                goto out;
        }
        if ((rc = serve_parse_listen(cfg->listen, &ss, host, sizeof(host), e)) != 0 ||
            (rc = responder_check(cfg, e)) != 0 ||
            (rc = pid_lock(cfg->dir,
                           cfg->responder ? GMCA_SERVE_RESPONDER_PID_FILE : GMCA_SERVE_PID_FILE,
                           pid_path, sizeof(pid_path), &pid_fd, e)) != 0)
                goto out;
        if ((srv.workers = calloc(cfg->threads, sizeof(*srv.workers))) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        for (; srv.nworkers < cfg->threads; srv.nworkers++)
                if ((rc = serve_worker_init(&srv.workers[srv.nworkers], cfg, e)) != 0)
                        goto out;
        raise_nofile();
        (void)signal(SIGPIPE, SIG_IGN);
        /* The signals go to sigwait below, never to libmicrohttpd's threads. */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "cannot block signals");
                goto out;
        }
        masked = 1;
        /* After the pid lock (one schedule per state directory) and with the signals blocked.
         * A responder generates nothing: the CRLs it serves come from the store. */
        if (!cfg->responder &&
            (srv.crl = serve_crl_sched_start(cfg->dir, cfg->crl_interval, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INTERNAL;
                goto out;
        }
        if ((srv.ocsp = serve_ocsp_fast_start(cfg, e)) == NULL && serve_ocsp_wanted(cfg)) {
                rc = e && e->code ? e->code : GMCA_ERR_INTERNAL;
                goto out;
        }
        if (cfg->npublishers > 0 && (srv.pub = serve_publish_start(cfg->dir, cfg->publishers,
                                                                   cfg->npublishers, e)) == NULL) {
                rc = e && e->code ? e->code : GMCA_ERR_INTERNAL;
                goto out;
        }
        for (size_t i = 0; i < srv.nworkers; i++) {
                srv.workers[i].crl = srv.crl;
                srv.workers[i].crl_urgent = serve_crl_sched_urgent;
                srv.workers[i].ocsp_cache = serve_ocsp_fast_cache(srv.ocsp);
                srv.workers[i].ocsp = srv.ocsp;
        }
        /* TURBO: read, write and accept before asking epoll (non-blocking sockets), fewer
         * system calls per request on the OCSP fast path (bench/ocsp.sh). */
        flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_TURBO;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        errno = 0;
        d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_CONNECTION_TIMEOUT,
                             (unsigned)CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             (size_t)CONNECTION_MEMORY, MHD_OPTION_LISTEN_BACKLOG_SIZE,
                             (unsigned)LISTEN_BACKLOG, MHD_OPTION_URI_LOG_CALLBACK, on_uri, &srv,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv, MHD_OPTION_END);
        if (d == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "cannot serve on %s%s%s", cfg->listen,
                                    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
                goto out;
        }
        di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        printf("gmca: serving on http://%s%s%s:%u\n", ss.ss_family == AF_INET6 ? "[" : "", host,
               ss.ss_family == AF_INET6 ? "]" : "", di != NULL ? (unsigned)di->port : 0u);
        fflush(stdout);
        while (sigwait(&set, &sig) != 0)
                ;
        /* Stop accepting, let what is under way finish, then stop. */
        atomic_store(&srv.stopping, 1);
        lfd = MHD_quiesce_daemon(d);
        for (int i = 0; i < GMCA_SERVE_DRAIN_SECONDS * 20 && atomic_load(&srv.inflight) > 0; i++) {
                struct timespec ts = {0, 50 * 1000 * 1000};

                nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(d);
        d = NULL;
        if (lfd != MHD_INVALID_SOCKET)
                close(lfd);
        rc = 0;
out:
        if (d != NULL)
                MHD_stop_daemon(d);
        if (masked)
                pthread_sigmask(SIG_SETMASK, &old, NULL);
        serve_crl_sched_stop(srv.crl);
        serve_ocsp_fast_stop(srv.ocsp);
        serve_publish_stop(srv.pub);
        for (size_t i = 0; i < srv.nworkers; i++)
                serve_worker_free(&srv.workers[i]);
        free(srv.workers);
        if (pid_fd >= 0) {
                (void)unlink(pid_path);
                close(pid_fd);
        }
        pthread_mutex_destroy(&srv.lock);
        return rc;
}
