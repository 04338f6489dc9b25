/*
 * publish: getting every change relying parties must learn about — a
 * certificate issued or revoked, a CRL — to the places that serve them
 * (CPS §3.4.2, §3.9.9, §4.6.1, §4.6.2): the LDAP directory (ldap.h) and
 * the downstream e-government systems' sync receivers (sync.h).
 *
 * The change feed: the store appends an event in the very transaction of
 * each change (store.c, table events: cert.issue, cert.revoke — the
 * encryption certificate of a dual pair included — and crl.issue), so an
 * event exists exactly when its change committed, whoever made it (CA
 * engine, front, CLI) and whatever crashed afterwards. Event ids grow in
 * commit order.
 *
 * Each delivery channel ("ldap", "sync:<name>") has a cursor in
 * publish_state: the last event it has finished with. A worker takes the
 * next event after the cursor, delivers it, and only then moves the cursor
 * (gmca_publish_done): a crash in between delivers that event again, so
 * every delivery must be idempotent (LDAP: set the values, not add them
 * blindly; sync: the event id goes with the payload for the receiver to
 * drop repeats). A failed delivery leaves the cursor and sets the next
 * attempt with exponential backoff (gmca_publish_failed: 1 s doubling to
 * GMCA_PUBLISH_BACKOFF_MAX), so a channel whose receiver is down receives
 * everything in order once it is back, nothing lost, and other channels
 * are not held up. An event a receiver refuses for good (its answer says
 * the payload itself is wrong, e.g. HTTP 4xx other than 408/429) may be
 * skipped with gmca_publish_done after it has been audited
 * (publish.skip): nothing is skipped silently.
 */
#ifndef GMCA_PUBLISH_H
#define GMCA_PUBLISH_H

#include <stdint.h>

#include "err.h"
#include "store.h"

#define GMCA_PUBLISH_CHANNEL_MAX 64
#define GMCA_PUBLISH_BACKOFF_MAX 300 /* seconds between attempts, at most */

enum gmca_event_kind {
        GMCA_EVENT_CERT_ISSUE,
        GMCA_EVENT_CERT_REVOKE,
        GMCA_EVENT_CRL_ISSUE,
};

struct gmca_event {
        int64_t id;
        int64_t time;
        enum gmca_event_kind kind;
        char serial[GMCA_SERIAL_HEX_MAX]; /* certificates */
        int64_t ca_id;                    /* cert.issue and crl.issue */
        int64_t number;                   /* crl.issue: the cRLNumber */
};

/* "cert.issue", "cert.revoke", "crl.issue" */
const char *gmca_event_kind_name(enum gmca_event_kind k);

/* Where channel stands. */
struct gmca_publish_state {
        int64_t last_event; /* 0: nothing delivered yet */
        int attempts;       /* failed attempts at the event after last_event */
        int64_t next_at;    /* no attempt before this time */
        char last_error[256];
        int64_t pending; /* events after last_event */
};

/*
 * The next event for channel, if it is due at now: 0 with *ev filled,
 * GMCA_ERR_NOTFOUND when there is none, GMCA_ERR_STATE (e says until when)
 * while the channel is backing off. A channel seen for the first time
 * starts at the beginning of the feed (every event ever) unless
 * gmca_publish_reset said otherwise.
 */
int gmca_publish_next(struct gmca_store *s, const char *channel, int64_t now, struct gmca_event *ev,
                      struct gmca_error *e) GMCA_WUR;

/* The channel has finished with event id (delivered or skipped): the cursor moves to it. */
int gmca_publish_done(struct gmca_store *s, const char *channel, int64_t id, int64_t now,
                      struct gmca_error *e) GMCA_WUR;

/* The attempt failed with why: the cursor stays; the next attempt is backed off. */
int gmca_publish_failed(struct gmca_store *s, const char *channel, const char *why, int64_t now,
                        struct gmca_error *e) GMCA_WUR;

/* Start channel after event last (0: from the beginning), e.g. for a new receiver. */
int gmca_publish_reset(struct gmca_store *s, const char *channel, int64_t last,
                       struct gmca_error *e) GMCA_WUR;

int gmca_publish_state(struct gmca_store *s, const char *channel, struct gmca_publish_state *st,
                       struct gmca_error *e) GMCA_WUR;

/* Call cb with each channel that has a cursor, by name; a non-zero return of cb stops. */
int gmca_publish_channels(struct gmca_store *s, int (*cb)(const char *channel, void *arg),
                          void *arg, struct gmca_error *e) GMCA_WUR;

/* A delivery channel: its name and how it delivers one event. */
struct gmca_publisher {
        char channel[GMCA_PUBLISH_CHANNEL_MAX];
        /*
         * Deliver ev (idempotently). 0: delivered. GMCA_ERR_POLICY: the receiver
         * refuses this event for good (the pump audits publish.skip and moves on).
         * Anything else: retry later (backoff). s is the pump's store connection,
         * for reading what the event refers to.
         */
        int (*deliver)(void *arg, struct gmca_store *s, const struct gmca_event *ev,
                       struct gmca_error *e);
        void *arg;
        /* The kinds it wants, bits (1u << enum gmca_event_kind); 0: all. The
         * cursor passes over the others without a delivery. */
        unsigned kinds;
};

/*
 * Deliver what is due on p's channel now, at most max events: the number
 * it finished with, delivered or skipped (>= 0; 0 when up to date or
 * backing off), or a negative code
 * for a store failure. Failures of the receiver are recorded with
 * gmca_publish_failed, not returned.
 */
int gmca_publish_pump(struct gmca_store *s, const struct gmca_publisher *p, int max,
                      struct gmca_error *e);

#endif
