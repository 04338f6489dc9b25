/*
 * The change feed's cursors (publish.h): each channel's position in the
 * events table and its backoff, in publish_state. Each call is its own
 * short transaction; a worker holds no transaction while it delivers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "publish.h"
#include "store_internal.h"
#include "util.h"

static const char SQL_STATE[] = "SELECT last_event, attempts, next_at, COALESCE(last_error, '')"
                                " FROM publish_state WHERE channel = ?";
static const char SQL_STATE_NEW[] = "INSERT INTO publish_state (channel, last_event, attempts,"
                                    " next_at, last_error, updated) VALUES (?, ?, 0, 0, NULL, ?)";
static const char SQL_DONE[] = "UPDATE publish_state SET last_event = ?, attempts = 0, next_at = 0,"
                               " last_error = NULL, updated = ? WHERE channel = ?"
                               " AND last_event < ?";
static const char SQL_FAILED[] = "UPDATE publish_state SET attempts = ?, next_at = ?,"
                                 " last_error = ?, updated = ? WHERE channel = ?";
static const char SQL_RESET[] =
    "UPDATE publish_state SET last_event = ?, attempts = 0, next_at = 0,"
    " last_error = NULL, updated = ? WHERE channel = ?";
static const char SQL_NEXT[] = "SELECT id, time, kind, COALESCE(serial, ''), ca_id, number"
                               " FROM events WHERE id > ? AND ((? <> 0 AND kind = 'cert.issue')"
                               " OR (? <> 0 AND kind = 'cert.revoke')"
                               " OR (? <> 0 AND kind = 'crl.issue'))"
                               " ORDER BY id LIMIT 1";
static const char SQL_PENDING[] = "SELECT COUNT(*) FROM events WHERE id > ?";

const char *gmca_event_kind_name(enum gmca_event_kind k)
{
        switch (k) {
        case GMCA_EVENT_CERT_ISSUE:
                return "cert.issue";
        case GMCA_EVENT_CERT_REVOKE:
                return "cert.revoke";
        case GMCA_EVENT_CRL_ISSUE:
                return "crl.issue";
        }
        return "?";
}

static int channel_ok(const char *channel, struct gmca_error *e)
{
        size_t n = channel != NULL ? strnlen(channel, GMCA_PUBLISH_CHANNEL_MAX) : 0;

        if (n == 0 || n >= GMCA_PUBLISH_CHANNEL_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "publish: channel name of 1..%d bytes",
                                      GMCA_PUBLISH_CHANNEL_MAX - 1);
        return 0;
}

/* Read channel's row, creating it (at the beginning) if it is new. */
static int state_get(struct gmca_store *s, const char *channel, int64_t now,
                     struct gmca_publish_state *st, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        memset(st, 0, sizeof(*st));
        if ((rc = channel_ok(channel, e)) != 0 || (rc = gmca_q_open(s, SQL_STATE, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, channel);
        rc = gmca_q_step(&q, e, "publish state of %s", channel);
        if (rc == GMCA_DB_ROW) {
                st->last_event = gmca_q_col_int(&q, 0);
                st->attempts = (int)gmca_q_col_int(&q, 1);
                st->next_at = gmca_q_col_int(&q, 2);
                rc = gmca_q_col_str(&q, 3, st->last_error, sizeof(st->last_error), "last_error", e);
                gmca_q_close(&q);
                return rc;
        }
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        if ((rc = gmca_q_open(s, SQL_STATE_NEW, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, channel);
        gmca_q_int(&q, 0);
        gmca_q_int(&q, now);
        rc = gmca_q_step(&q, e, "publish state of %s", channel);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* End the transaction begun by the caller: commit after rc == 0, else roll back. */
static int in_tx(struct gmca_store *s, int rc, struct gmca_error *e)
{
        if (rc != 0) {
                gmca_store_rollback(s);
                return rc;
        }
        return gmca_store_commit(s, e);
}

static int next_of(struct gmca_store *s, const char *channel, unsigned kinds, int64_t now,
                   struct gmca_event *ev, struct gmca_error *e);

int gmca_publish_next(struct gmca_store *s, const char *channel, int64_t now, struct gmca_event *ev,
                      struct gmca_error *e)
{
        return next_of(s, channel, 0, now, ev, e);
}

static int want(unsigned kinds, enum gmca_event_kind k)
{
        return kinds == 0 || (kinds & (1u << k)) != 0;
}

static int next_of(struct gmca_store *s, const char *channel, unsigned kinds, int64_t now,
                   struct gmca_event *ev, struct gmca_error *e)
{
        struct gmca_publish_state st;
        struct gmca_q q;
        char kind[16];
        int rc;

        memset(ev, 0, sizeof(*ev));
        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = in_tx(s, state_get(s, channel, now, &st, e), e)) != 0)
                return rc;
        if (st.next_at > now)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "publish: %s backs off until %lld after %d failures: %s",
                                      channel, (long long)st.next_at, st.attempts, st.last_error);
        if ((rc = gmca_q_open(s, SQL_NEXT, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, st.last_event);
        gmca_q_int(&q, want(kinds, GMCA_EVENT_CERT_ISSUE));
        gmca_q_int(&q, want(kinds, GMCA_EVENT_CERT_REVOKE));
        gmca_q_int(&q, want(kinds, GMCA_EVENT_CRL_ISSUE));
        rc = gmca_q_step(&q, e, "next event for %s", channel);
        if (rc == GMCA_DB_ROW) {
                ev->id = gmca_q_col_int(&q, 0);
                ev->time = gmca_q_col_int(&q, 1);
                ev->ca_id = gmca_q_col_int(&q, 4);
                ev->number = gmca_q_col_int(&q, 5);
                if ((rc = gmca_q_col_str(&q, 2, kind, sizeof(kind), "kind", e)) == 0)
                        rc = gmca_q_col_str(&q, 3, ev->serial, sizeof(ev->serial), "serial", e);
                if (rc == 0 && strcmp(kind, "cert.issue") == 0)
                        ev->kind = GMCA_EVENT_CERT_ISSUE;
                else if (rc == 0 && strcmp(kind, "cert.revoke") == 0)
                        ev->kind = GMCA_EVENT_CERT_REVOKE;
                else if (rc == 0 && strcmp(kind, "crl.issue") == 0)
                        ev->kind = GMCA_EVENT_CRL_ISSUE;
                else if (rc == 0)
                        rc = gmca_error_set(e, GMCA_ERR_DB, "publish: event %lld of kind %s",
                                            (long long)ev->id, kind);
        } else if (rc == GMCA_DB_DONE) {
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "publish: %s is up to date", channel);
        }
        gmca_q_close(&q);
        return rc;
}

int gmca_publish_done(struct gmca_store *s, const char *channel, int64_t id, int64_t now,
                      struct gmca_error *e)
{
        struct gmca_publish_state st;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = state_get(s, channel, now, &st, e)) == 0 &&
            (rc = gmca_q_open(s, SQL_DONE, &q, e)) == 0) {
                gmca_q_int(&q, id);
                gmca_q_int(&q, now);
                gmca_q_text(&q, channel);
                gmca_q_int(&q, id);
                rc = gmca_q_step(&q, e, "publish cursor of %s", channel);
                gmca_q_close(&q);
                rc = rc < 0 ? rc : 0;
        }
        return in_tx(s, rc, e);
}

int gmca_publish_failed(struct gmca_store *s, const char *channel, const char *why, int64_t now,
                        struct gmca_error *e)
{
        struct gmca_publish_state st;
        struct gmca_q q;
        int64_t wait = 1;
        int rc;

        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = state_get(s, channel, now, &st, e)) == 0 &&
            (rc = gmca_q_open(s, SQL_FAILED, &q, e)) == 0) {
                for (int i = 0; i < st.attempts && wait < GMCA_PUBLISH_BACKOFF_MAX; i++)
                        wait *= 2;
                if (wait > GMCA_PUBLISH_BACKOFF_MAX)
                        wait = GMCA_PUBLISH_BACKOFF_MAX;
                gmca_q_int(&q, st.attempts + 1);
                gmca_q_int(&q, now + wait);
                gmca_q_text(&q, why != NULL ? why : "");
                gmca_q_int(&q, now);
                gmca_q_text(&q, channel);
                rc = gmca_q_step(&q, e, "publish failure of %s", channel);
                gmca_q_close(&q);
                rc = rc < 0 ? rc : 0;
        }
        return in_tx(s, rc, e);
}

int gmca_publish_reset(struct gmca_store *s, const char *channel, int64_t last,
                       struct gmca_error *e)
{
        struct gmca_publish_state st;
        struct gmca_q q;
        int64_t now = (int64_t)gmca_now();
        int rc;

        if (last < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "publish: negative event id");
        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = state_get(s, channel, now, &st, e)) == 0 &&
            (rc = gmca_q_open(s, SQL_RESET, &q, e)) == 0) {
                gmca_q_int(&q, last);
                gmca_q_int(&q, now);
                gmca_q_text(&q, channel);
                rc = gmca_q_step(&q, e, "publish reset of %s", channel);
                gmca_q_close(&q);
                rc = rc < 0 ? rc : 0;
        }
        return in_tx(s, rc, e);
}

int gmca_publish_state(struct gmca_store *s, const char *channel, struct gmca_publish_state *st,
                       struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = in_tx(s, state_get(s, channel, (int64_t)gmca_now(), st, e), e)) != 0)
                return rc;
        if ((rc = gmca_q_open(s, SQL_PENDING, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, st->last_event);
        rc = gmca_q_step(&q, e, "pending events of %s", channel);
        if (rc == GMCA_DB_ROW)
                st->pending = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_publish_channels(struct gmca_store *s, int (*cb)(const char *channel, void *arg),
                          void *arg, struct gmca_error *e)
{
        static const char sql[] = "SELECT channel FROM publish_state ORDER BY channel";
        char channel[GMCA_PUBLISH_CHANNEL_MAX];
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, sql, &q, e)) != 0)
                return rc;
        while ((rc = gmca_q_step(&q, e, "publish channels")) == GMCA_DB_ROW) {
                if ((rc = gmca_q_col_str(&q, 0, channel, sizeof(channel), "channel", e)) != 0)
                        break;
                if (cb(channel, arg) != 0) {
                        rc = GMCA_DB_DONE;
                        break;
                }
        }
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

/* An event refused for good: on the audit chain with the receiver's cause, then passed over. */
static int skip(struct gmca_store *s, const struct gmca_publisher *p, const struct gmca_event *ev,
                const struct gmca_error *why, int64_t now, struct gmca_error *e)
{
        struct gmca_audit_event a;
        char object[64], *detail;
        json_t *o;
        int rc;

        snprintf(object, sizeof(object), "event#%lld", (long long)ev->id);
        o = json_pack("{s:s, s:s, s:s, s:s}", "channel", p->channel, "kind",
                      gmca_event_kind_name(ev->kind), "serial", ev->serial, "cause", why->msg);
        detail = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (detail == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        a = (struct gmca_audit_event){GMCA_EV_PUBLISH_SKIP, "publisher", 0, object, detail};
        if ((rc = gmca_store_begin(s, e)) == 0)
                rc = in_tx(s, gmca_audit_append(s, &a, e), e);
        free(detail);
        return rc != 0 ? rc : gmca_publish_done(s, p->channel, ev->id, now, e);
}

int gmca_publish_pump(struct gmca_store *s, const struct gmca_publisher *p, int max,
                      struct gmca_error *e)
{
        int n = 0, rc;

        while (n < max) {
                struct gmca_event ev;
                struct gmca_error why = {0};
                int64_t now = (int64_t)gmca_now();

                rc = next_of(s, p->channel, p->kinds, now, &ev, e);
                if (rc == GMCA_ERR_NOTFOUND || rc == GMCA_ERR_STATE) {
                        gmca_error_clear(e);
                        return n;
                }
                if (rc != 0)
                        return rc;
                rc = p->deliver(p->arg, s, &ev, &why);
                if (rc == 0)
                        rc = gmca_publish_done(s, p->channel, ev.id, now, e);
                else if (rc == GMCA_ERR_POLICY)
                        rc = skip(s, p, &ev, &why, now, e);
                else
                        return gmca_publish_failed(s, p->channel, why.msg, now, e) != 0 ? e->code
                                                                                        : n;
                if (rc != 0)
                        return rc;
                n++;
        }
        return n;
}
