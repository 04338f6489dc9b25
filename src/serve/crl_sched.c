/*
 * The CRL schedule of the front (CPS §3.9.10, §4.4.2): one background
 * thread that keeps every CA's CRL current through the CA engine — at start
 * when the latest CRL is due, then every interval — and issues one at once
 * when asked (the emergency CRL after a keyCompromise or cACompromise
 * revocation). It has its own gmca_ctx on the state directory, signing
 * through the engine (the front holds no CA key); its audit records name
 * the actor "scheduler". A pass that fails (the engine down, a store
 * error) closes that context and is retried after a short while, so an
 * engine restarted later is found again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "serve_internal.h"
#include "util.h"

#define RETRY_MAX 300 /* seconds between attempts after a failed pass, at most */
#define WAIT_MAX 3600 /* seconds the thread sleeps without looking, at most */

struct serve_crl_sched {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        char dir[PATH_MAX];
        int64_t interval; /* seconds; 0: the configured crl_hours */
        int stop;
        int urgent; /* an emergency CRL is asked for */
};

/* One pass; returns when to look again (seconds since the epoch). */
static int64_t pass(struct serve_crl_sched *s, struct gmca_ctx **ctx, int force)
{
        struct gmca_error e = {0};
        int64_t next = 0, now = (int64_t)gmca_now(), retry;
        size_t made = 0;
        int rc;

        retry = s->interval > 0 ? s->interval / 4 : RETRY_MAX;
        if (retry < 1)
                retry = 1;
        if (retry > RETRY_MAX)
                retry = RETRY_MAX;
        if (*ctx == NULL && (*ctx = gmca_ctx_open_front(s->dir, "scheduler", &e)) == NULL) {
                fprintf(stderr, "gmca serve: CRL schedule: %s\n", e.msg);
                return now + retry;
        }
        if ((rc = gmca_ctx_use_engine(*ctx, &e)) == 0)
                rc = gmca_ca_crl_refresh(*ctx, s->interval, force, &next, &made, &e);
        if (rc != 0) {
                fprintf(stderr, "gmca serve: CRL schedule: %s\n", e.msg);
                /* Start afresh next time: the engine connection may be the cause. */
                gmca_ctx_close(*ctx);
                *ctx = NULL;
                return next != 0 && next < now + retry ? next : now + retry;
        }
        return next;
}

static void *run(void *arg)
{
        struct serve_crl_sched *s = arg;
        struct gmca_ctx *ctx = NULL;
        int force = 0;

        pthread_mutex_lock(&s->lock);
        while (!s->stop) {
                int64_t at, now;
                struct timespec ts;

                force = s->urgent;
                s->urgent = 0;
                pthread_mutex_unlock(&s->lock);
                at = pass(s, &ctx, force);
                pthread_mutex_lock(&s->lock);
                now = (int64_t)gmca_now();
                if (at > now + WAIT_MAX)
                        at = now + WAIT_MAX;
                if (at < now + 1)
                        at = now + 1;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t)(at - now);
                while (!s->stop && !s->urgent &&
                       pthread_cond_timedwait(&s->wake, &s->lock, &ts) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&s->lock);
        gmca_ctx_close(ctx);
        return NULL;
}

struct serve_crl_sched *serve_crl_sched_start(const char *dir, int64_t interval,
                                              struct gmca_error *e)
{
        struct serve_crl_sched *s;

        if (interval < 0 || interval > GMCA_CRL_INTERVAL_MAX) {
                gmca_error_set(e, GMCA_ERR_INVALID, "--crl-interval: 1..744 hours");
                return NULL;
        }
        if ((s = calloc(1, sizeof(*s))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (gmca_strlcpy(s->dir, dir, sizeof(s->dir)) >= sizeof(s->dir)) {
                free(s);
                gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", dir);
                return NULL;
        }
        s->interval = interval;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        if (pthread_create(&s->thread, NULL, run, s) != 0) {
                pthread_cond_destroy(&s->wake);
                pthread_mutex_destroy(&s->lock);
                free(s);
                gmca_error_set(e, GMCA_ERR_INTERNAL, "cannot start the CRL schedule");
                return NULL;
        }
        return s;
}

void serve_crl_sched_urgent(struct serve_crl_sched *s)
{
        if (s == NULL)
                return;
        pthread_mutex_lock(&s->lock);
        s->urgent = 1;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
}

void serve_crl_sched_stop(struct serve_crl_sched *s)
{
        if (s == NULL)
                return;
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
}
