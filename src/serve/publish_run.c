/*
 * The front's delivery workers (publish.h): one thread per channel (the
 * LDAP directory, each sync receiver), each with its own store connection,
 * pumping the change feed to its receiver until the front stops. An idle
 * or backing-off channel looks again every POLL_MS, so a change committed
 * by any process reaches its receivers within a fraction of a second, and
 * a receiver that comes back is served within its backoff.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca.h"
#include "publish.h"
#include "serve_internal.h"
#include "util.h"

#define POLL_MS 200
#define BATCH 64 /* events per pump, between looks at the stop flag */

struct pub_thread {
        struct serve_publish *owner;
        struct gmca_publisher p;
        pthread_t thread;
        int started;
};

struct serve_publish {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        char db[PATH_MAX + 16];
        int stop;
        size_t n;
        struct pub_thread t[];
};

static void *run(void *arg)
{
        struct pub_thread *t = arg;
        struct serve_publish *sp = t->owner;
        struct gmca_store *s = NULL;
        struct gmca_error e = {0};

        pthread_mutex_lock(&sp->lock);
        while (!sp->stop) {
                struct timespec ts;
                int n = 0;

                pthread_mutex_unlock(&sp->lock);
                gmca_error_clear(&e);
                if (s == NULL && (s = gmca_store_open(sp->db, &e)) == NULL)
                        fprintf(stderr, "gmca serve: publish %s: %s\n", t->p.channel, e.msg);
                if (s != NULL && (n = gmca_publish_pump(s, &t->p, BATCH, &e)) < 0) {
                        fprintf(stderr, "gmca serve: publish %s: %s\n", t->p.channel, e.msg);
                        gmca_store_close(s); /* start afresh: the connection may be the cause */
                        s = NULL;
                }
                pthread_mutex_lock(&sp->lock);
                if (n > 0 || sp->stop)
                        continue; /* more may be waiting */
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += POLL_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&sp->wake, &sp->lock, &ts);
        }
        pthread_mutex_unlock(&sp->lock);
        gmca_store_close(s);
        return NULL;
}

struct serve_publish *serve_publish_start(const char *dir, const struct gmca_publisher *p, size_t n,
                                          struct gmca_error *e)
{
        struct serve_publish *sp;

        if ((sp = calloc(1, sizeof(*sp) + n * sizeof(sp->t[0]))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                return NULL;
        }
        if (gmca_ca_front_store_uri(dir, sp->db, sizeof(sp->db), e) != 0) {
                free(sp);
                return NULL;
        }
        pthread_mutex_init(&sp->lock, NULL);
        pthread_cond_init(&sp->wake, NULL);
        sp->n = n;
        for (size_t i = 0; i < n; i++) {
                sp->t[i].owner = sp;
                sp->t[i].p = p[i];
                if (pthread_create(&sp->t[i].thread, NULL, run, &sp->t[i]) != 0) {
                        gmca_error_set(e, GMCA_ERR_INTERNAL, "publish %s: no thread", p[i].channel);
                        serve_publish_stop(sp);
                        return NULL;
                }
                sp->t[i].started = 1;
        }
        return sp;
}

void serve_publish_stop(struct serve_publish *sp)
{
        if (sp == NULL)
                return;
        pthread_mutex_lock(&sp->lock);
        sp->stop = 1;
        pthread_cond_broadcast(&sp->wake);
        pthread_mutex_unlock(&sp->lock);
        for (size_t i = 0; i < sp->n; i++)
                if (sp->t[i].started)
                        pthread_join(sp->t[i].thread, NULL);
        pthread_cond_destroy(&sp->wake);
        pthread_mutex_destroy(&sp->lock);
        free(sp);
}
