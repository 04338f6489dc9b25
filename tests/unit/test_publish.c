/*
 * The change feed (publish.h): events appended with each change and only
 * on commit, each channel's cursor, backoff doubling and capped, reset,
 * the pump delivering in order, skipping (audited) what a receiver refuses
 * for good, and passing over the kinds a channel does not want.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "publish.h"
#include "store.h"
#include "util.h"

static const uint8_t fake_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};

struct fx {
        char dir[64];
        char path[128];
        struct gmca_store *s;
        int64_t ca;
};

static void must(int rc, const struct gmca_error *e)
{
        if (rc != 0)
                fail_msg("rc %d: %s", rc, e->msg);
}

static int setup(void **state)
{
        struct gmca_error e = {0};
        struct gmca_ca_rec r;
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        gmca_strlcpy(f->dir, "/tmp/gmca-publish-XXXXXX", sizeof(f->dir));
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/gmca.db", f->dir);
        if ((f->s = gmca_store_open(f->path, &e)) == NULL)
                fail_msg("open: %s", e.msg);
        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.name, "sub", sizeof(r.name));
        gmca_strlcpy(r.subject, "CN=sub", sizeof(r.subject));
        gmca_strlcpy(r.key_file, "keys/sub.key", sizeof(r.key_file));
        gmca_strlcpy(r.sm2_id, "1234567812345678", sizeof(r.sm2_id));
        r.created = 1700000000;
        r.cert_der = (uint8_t *)fake_der;
        r.cert_len = sizeof(fake_der);
        must(gmca_store_ca_insert(f->s, &r, &e), &e);
        f->ca = r.id;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        char p[200];

        gmca_store_close(f->s);
        unlink(f->path);
        snprintf(p, sizeof(p), "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", f->path);
        unlink(p);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void issue(struct fx *f, const char *serial, int commit)
{
        struct gmca_error e = {0};
        struct gmca_cert_rec r;

        memset(&r, 0, sizeof(r));
        gmca_strlcpy(r.serial, serial, sizeof(r.serial));
        r.ca_id = f->ca;
        gmca_strlcpy(r.subject, "CN=x", sizeof(r.subject));
        gmca_strlcpy(r.profile, "personal-sign", sizeof(r.profile));
        r.not_before = 1700000000;
        r.not_after = 1800000000;
        r.issued_at = 1700000000;
        r.reason = -1;
        gmca_strlcpy(r.fingerprint, "ab12", sizeof(r.fingerprint));
        r.der = (uint8_t *)fake_der;
        r.der_len = sizeof(fake_der);
        must(gmca_store_begin(f->s, &e), &e);
        must(gmca_store_cert_insert(f->s, &r, &e), &e);
        if (commit)
                must(gmca_store_commit(f->s, &e), &e);
        else
                gmca_store_rollback(f->s);
}

static void crl(struct fx *f, int64_t number)
{
        struct gmca_error e = {0};
        struct gmca_crl_rec r = {.ca_id = f->ca,
                                 .number = number,
                                 .this_update = 1700000000,
                                 .next_update = 1700086400,
                                 .der = (uint8_t *)fake_der,
                                 .der_len = sizeof(fake_der)};

        must(gmca_store_crl_insert(f->s, &r, &e), &e);
}

static struct gmca_event next(struct fx *f, const char *ch, int64_t now, int want)
{
        struct gmca_error e = {0};
        struct gmca_event ev;
        int rc = gmca_publish_next(f->s, ch, now, &ev, &e);

        if (rc != want)
                fail_msg("next on %s: rc %d (%s), want %d", ch, rc, e.msg, want);
        return ev;
}

static void test_feed_and_cursor(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_publish_state st;
        struct gmca_event ev;

        next(f, "a", 100, GMCA_ERR_NOTFOUND);
        issue(f, "0A", 1);
        issue(f, "0B", 0); /* rolled back: no event */
        must(gmca_store_cert_revoke(f->s, "0A", 1700000100, 1, 0, &e), &e);
        crl(f, 1);

        ev = next(f, "a", 100, 0);
        assert_int_equal(ev.kind, GMCA_EVENT_CERT_ISSUE);
        assert_string_equal(ev.serial, "0A");
        assert_int_equal(ev.ca_id, f->ca);
        /* Not done yet: the same event again (a crash here delivers it twice). */
        assert_int_equal(next(f, "a", 100, 0).id, ev.id);
        must(gmca_publish_done(f->s, "a", ev.id, 100, &e), &e);
        ev = next(f, "a", 100, 0);
        assert_int_equal(ev.kind, GMCA_EVENT_CERT_REVOKE);
        assert_string_equal(ev.serial, "0A");
        must(gmca_publish_done(f->s, "a", ev.id, 100, &e), &e);
        ev = next(f, "a", 100, 0);
        assert_int_equal(ev.kind, GMCA_EVENT_CRL_ISSUE);
        assert_int_equal(ev.number, 1);
        assert_string_equal(gmca_event_kind_name(ev.kind), "crl.issue");
        must(gmca_publish_done(f->s, "a", ev.id, 100, &e), &e);
        next(f, "a", 100, GMCA_ERR_NOTFOUND);

        /* Another channel starts from the beginning, on its own. */
        must(gmca_publish_state(f->s, "b", &st, &e), &e);
        assert_int_equal(st.last_event, 0);
        assert_int_equal(st.pending, 3);
        assert_string_equal(next(f, "b", 100, 0).serial, "0A");

        /* A cursor never moves back by a late done. */
        must(gmca_publish_done(f->s, "a", 1, 100, &e), &e);
        next(f, "a", 100, GMCA_ERR_NOTFOUND);

        /* reset: from the beginning again, or after a given event. */
        must(gmca_publish_reset(f->s, "a", 0, &e), &e);
        assert_string_equal(next(f, "a", 100, 0).serial, "0A");
        must(gmca_publish_reset(f->s, "a", ev.id, &e), &e);
        next(f, "a", 100, GMCA_ERR_NOTFOUND);
        assert_int_equal(gmca_publish_reset(f->s, "a", -1, &e), GMCA_ERR_INVALID);
        gmca_error_clear(&e);
        assert_int_equal(gmca_publish_next(f->s, "", 100, &ev, &e), GMCA_ERR_INVALID);
}

static void test_backoff(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_publish_state st;
        int64_t now = 1000, want = 1;

        issue(f, "0C", 1);
        for (int i = 0; i < 12; i++) {
                must(gmca_publish_failed(f->s, "c", "down", now, &e), &e);
                must(gmca_publish_state(f->s, "c", &st, &e), &e);
                assert_int_equal(st.attempts, i + 1);
                assert_int_equal(st.next_at, now + want);
                assert_string_equal(st.last_error, "down");
                next(f, "c", now + want - 1, GMCA_ERR_STATE); /* backing off */
                gmca_error_clear(&e);
                now += want;
                want = want * 2 > GMCA_PUBLISH_BACKOFF_MAX ? GMCA_PUBLISH_BACKOFF_MAX : want * 2;
        }
        assert_int_equal(st.next_at - (now - GMCA_PUBLISH_BACKOFF_MAX), GMCA_PUBLISH_BACKOFF_MAX);
        /* Due again: the same event, and a success clears the failures. */
        must(gmca_publish_done(f->s, "c", next(f, "c", now, 0).id, now, &e), &e);
        must(gmca_publish_state(f->s, "c", &st, &e), &e);
        assert_int_equal(st.attempts, 0);
        assert_int_equal(st.next_at, 0);
        assert_string_equal(st.last_error, "");
}

struct sink {
        int calls;
        int fail_on; /* call number that fails (1-based), 0: none */
        int fail_rc;
        char seen[16][GMCA_SERIAL_HEX_MAX];
};

static int deliver(void *arg, struct gmca_store *s, const struct gmca_event *ev,
                   struct gmca_error *e)
{
        struct sink *k = arg;

        (void)s;
        k->calls++;
        if (k->calls == k->fail_on)
                return gmca_error_set(e, k->fail_rc, "receiver says no to %s", ev->serial);
        if (k->calls <= 16)
                gmca_strlcpy(k->seen[k->calls - 1], ev->serial, GMCA_SERIAL_HEX_MAX);
        return 0;
}

static int count_one(const struct gmca_audit_rec *r, void *arg)
{
        (void)r;
        (*(int *)arg)++;
        return 0;
}

static int skips(struct fx *f)
{
        struct gmca_audit_filter af = {.event = GMCA_EV_PUBLISH_SKIP};
        struct gmca_error e = {0};
        int n = 0;

        must(gmca_store_audit_iter(f->s, &af, count_one, &n, &e), &e);
        return n;
}

static void test_pump(void **state)
{
        struct fx *f = *state;
        struct gmca_error e = {0};
        struct gmca_publish_state st;
        struct sink k = {0};
        struct gmca_publisher p = {.channel = "d", .deliver = deliver, .arg = &k};

        issue(f, "01", 1);
        issue(f, "02", 1);
        issue(f, "03", 1);
        crl(f, 1);

        /* A refusal for good: audited, passed over; the rest delivered in order. */
        k.fail_on = 2;
        k.fail_rc = GMCA_ERR_POLICY;
        assert_int_equal(gmca_publish_pump(f->s, &p, 10, &e), 4); /* 3 delivered, 1 skipped */
        assert_int_equal(k.calls, 4);
        assert_string_equal(k.seen[0], "01");
        assert_string_equal(k.seen[2], "03");
        assert_int_equal(skips(f), 1);
        assert_int_equal(gmca_publish_pump(f->s, &p, 10, &e), 0);

        /* A failure to retry: the pump stops, the cursor stays, the channel backs off. */
        memset(&k, 0, sizeof(k));
        k.fail_on = 1;
        k.fail_rc = GMCA_ERR_IO;
        issue(f, "04", 1);
        assert_int_equal(gmca_publish_pump(f->s, &p, 10, &e), 0);
        must(gmca_publish_state(f->s, "d", &st, &e), &e);
        assert_int_equal(st.attempts, 1);
        assert_int_equal(st.pending, 1);
        assert_non_null(strstr(st.last_error, "receiver says no to 04"));

        /* max bounds one pump. */
        memset(&k, 0, sizeof(k));
        p = (struct gmca_publisher){.channel = "e", .deliver = deliver, .arg = &k};
        assert_int_equal(gmca_publish_pump(f->s, &p, 2, &e), 2);
        assert_int_equal(gmca_publish_pump(f->s, &p, 10, &e), 3);

        /* kinds: a channel that wants revocations only passes over the rest unseen. */
        memset(&k, 0, sizeof(k));
        must(gmca_store_cert_revoke(f->s, "02", 1700000100, 1, 0, &e), &e);
        p = (struct gmca_publisher){
            .channel = "f", .deliver = deliver, .arg = &k, .kinds = 1u << GMCA_EVENT_CERT_REVOKE};
        assert_int_equal(gmca_publish_pump(f->s, &p, 10, &e), 1);
        assert_int_equal(k.calls, 1);
        assert_string_equal(k.seen[0], "02");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_feed_and_cursor, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pump, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
