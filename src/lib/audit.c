/*
 * audit: the hash chain over the audit table (CPS §6.4-6.6). Each record's
 * hash is SM3 over a canonical encoding of its fields and the previous
 * record's hash; the head of the chain (last seq and hash) is kept in the
 * store metadata and moved in the same transaction as the record, so that
 * a cut tail is seen as well as a changed, removed, inserted or reordered
 * record.
 *
 * What the chain does not do: someone who can rewrite the whole database
 * can recompute every hash and the head, and the log verifies. Anchoring
 * the head outside the database (signing it with the CA's audit key,
 * publishing or timestamping it) is a later step; until then the chain
 * finds edits made with ordinary SQL by someone who did not recompute it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "crypto.h"
#include "util.h"

#define TAG "gmca-audit-v1"
#define HEAD_SEQ "audit.head.seq"
#define HEAD_HASH "audit.head.hash"
#define NULL_LEN 0xFFFFFFFFu /* the length that encodes an absent (NULL) detail */

static int put_str(EVP_MD_CTX *c, const char *s, size_t n)
{
        uint8_t len[4];
        int rc;

        gmca_put_be32(len, (uint32_t)n);
        if ((rc = gmca_sm3_update(c, len, sizeof(len))) != 0)
                return rc;
        return n > 0 ? gmca_sm3_update(c, s, n) : 0;
}

int gmca_audit_hash(const struct gmca_audit_rec *r, uint8_t out[GMCA_SM3_LEN])
{
        EVP_MD_CTX *c = NULL;
        uint8_t b[8], flag;
        size_t dlen = 0;
        int rc = GMCA_ERR_CRYPTO;

        if (r->success != 0 && r->success != 1)
                return GMCA_ERR_INVALID;
        if (r->detail != NULL && (dlen = strlen(r->detail)) >= NULL_LEN)
                return GMCA_ERR_LIMIT;
        if ((c = gmca_sm3_new()) == NULL)
                return GMCA_ERR_CRYPTO;
        if (gmca_sm3_update(c, TAG, strlen(TAG)) != 0)
                goto out;
        gmca_put_be64(b, (uint64_t)r->seq);
        if (gmca_sm3_update(c, b, 8) != 0)
                goto out;
        gmca_put_be64(b, (uint64_t)r->time);
        if (gmca_sm3_update(c, b, 8) != 0)
                goto out;
        if (put_str(c, r->event, strnlen(r->event, sizeof(r->event))) != 0 ||
            put_str(c, r->actor, strnlen(r->actor, sizeof(r->actor))) != 0 ||
            put_str(c, r->object, strnlen(r->object, sizeof(r->object))) != 0)
                goto out;
        if (r->detail == NULL) {
                gmca_put_be32(b, NULL_LEN);
                if (gmca_sm3_update(c, b, 4) != 0)
                        goto out;
        } else if (put_str(c, r->detail, dlen) != 0) {
                goto out;
        }
        flag = (uint8_t)r->success;
        if (gmca_sm3_update(c, &flag, 1) != 0 || gmca_sm3_update(c, r->prev, GMCA_SM3_LEN) != 0)
                goto out;
        rc = gmca_sm3_final(c, out);
        c = NULL;
out:
        EVP_MD_CTX_free(c);
        return rc;
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
        size_t n = strnlen(s, max + 1);

        if (n <= max)
                return n;
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                n--;
        return n;
}

static void copy_cut(char *dst, size_t size, const char *src)
{
        size_t n = src != NULL ? utf8_cut(src, size - 1) : 0;

        if (n > 0)
                memcpy(dst, src, n);
        dst[n] = '\0';
}

/*
 * The chain head from the metadata: *found 0 if neither key is there.
 * GMCA_ERR_TAMPER if it is half there or unreadable.
 */
static int head_get(struct gmca_store *s, int *found, int64_t *seq, uint8_t hash[GMCA_SM3_LEN],
                    struct gmca_error *e)
{
        char sbuf[32], hbuf[2 * GMCA_SM3_LEN + 1];
        struct gmca_error e1 = {0}, e2 = {0};
        size_t n = 0;
        char *end;
        long long v;
        int r1, r2;

        r1 = gmca_store_meta_get(s, HEAD_SEQ, sbuf, sizeof(sbuf), &e1);
        r2 = gmca_store_meta_get(s, HEAD_HASH, hbuf, sizeof(hbuf), &e2);
        if (r1 == GMCA_ERR_NOTFOUND && r2 == GMCA_ERR_NOTFOUND) {
                *found = 0;
                return 0;
        }
        if ((r1 != 0 && r1 != GMCA_ERR_NOTFOUND && r1 != GMCA_ERR_LIMIT) ||
            (r2 != 0 && r2 != GMCA_ERR_NOTFOUND && r2 != GMCA_ERR_LIMIT))
                return gmca_error_set(e, r1 != 0 ? r1 : r2, "%s", r1 != 0 ? e1.msg : e2.msg);
        if (r1 != 0 || r2 != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "audit: chain head in metadata is incomplete or too long");
        errno = 0;
        v = strtoll(sbuf, &end, 10);
        if (errno != 0 || end == sbuf || *end != '\0' || v <= 0 ||
            gmca_unhex(hbuf, hash, GMCA_SM3_LEN, &n) != 0 || n != GMCA_SM3_LEN)
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "audit: chain head in metadata is malformed (seq '%s')",
                                      sbuf);
        *found = 1;
        *seq = (int64_t)v;
        return 0;
}

int gmca_audit_append(struct gmca_store *s, const struct gmca_audit_event *ev, struct gmca_error *e)
{
        struct gmca_audit_rec r;
        uint8_t head_hash[GMCA_SM3_LEN];
        char sbuf[32], hbuf[2 * GMCA_SM3_LEN + 1];
        int64_t last, head_seq = 0;
        size_t n;
        int rc, found;

        memset(&r, 0, sizeof(r));
        if (!gmca_store_in_transaction(s))
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "audit: append outside a store transaction");
        if (ev == NULL || ev->type == NULL || ev->type[0] == '\0' ||
            strnlen(ev->type, sizeof(r.event)) >= sizeof(r.event))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "audit: missing or over-long event type");
        /* CPS §6.6 item 6: every record names who caused it. */
        if (ev->actor == NULL || ev->actor[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_INVALID, "audit: event %s has no actor",
                                      ev->type);
        if ((rc = gmca_store_audit_last(s, &last, r.prev, e)) != 0 ||
            (rc = head_get(s, &found, &head_seq, head_hash, e)) != 0)
                goto out;
        /*
         * Refuse to extend a chain whose head disagrees with its last record:
         * appending would rewrite the head and hide a cut tail.
         */
        if ((found && (head_seq != last || memcmp(head_hash, r.prev, GMCA_SM3_LEN) != 0)) ||
            (!found && last != 0)) {
                rc = gmca_error_set(e, GMCA_ERR_TAMPER,
                                    "audit: chain head (seq %" PRId64 ") does not match the last "
                                    "record (seq %" PRId64 "); run gmca audit verify",
                                    found ? head_seq : 0, last);
                goto out;
        }
        r.seq = last + 1;
        r.time = gmca_now_us();
        gmca_strlcpy(r.event, ev->type, sizeof(r.event));
        copy_cut(r.actor, sizeof(r.actor), ev->actor);
        copy_cut(r.object, sizeof(r.object), ev->object);
        r.success = ev->success ? 1 : 0;
        if (ev->detail != NULL) {
                n = utf8_cut(ev->detail, GMCA_AUDIT_DETAIL_MAX);
                if ((r.detail = OPENSSL_malloc(n + 1)) == NULL) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "audit: out of memory");
                        goto out;
                }
                memcpy(r.detail, ev->detail, n);
                r.detail[n] = '\0';
        }
        if ((rc = gmca_audit_hash(&r, r.hash)) != 0) {
                rc = gmca_error_set(e, rc, "audit: cannot hash record %" PRId64, r.seq);
                goto out;
        }
        snprintf(sbuf, sizeof(sbuf), "%" PRId64, r.seq);
        gmca_hex(r.hash, GMCA_SM3_LEN, hbuf);
        if ((rc = gmca_store_audit_insert(s, &r, e)) != 0 ||
            (rc = gmca_store_meta_set(s, HEAD_SEQ, sbuf, e)) != 0 ||
            (rc = gmca_store_meta_set(s, HEAD_HASH, hbuf, e)) != 0)
                goto out;
        rc = 0;
out:
        gmca_audit_rec_clear(&r);
        return rc;
}

int gmca_audit_record(struct gmca_store *s, const struct gmca_audit_event *ev, struct gmca_error *e)
{
        int rc;

        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = gmca_audit_append(s, ev, e)) != 0 || (rc = gmca_store_commit(s, e)) != 0) {
                gmca_store_rollback(s);
                return rc;
        }
        return 0;
}

struct walk {
        int64_t last;               /* seq of the last good record, 0 before the first */
        uint8_t prev[GMCA_SM3_LEN]; /* its hash */
        int64_t bad;
        struct gmca_error *e;
        int rc;
};

static int tamper(struct walk *w, int64_t seq, const char *why)
{
        w->bad = seq;
        w->rc = gmca_error_set(w->e, GMCA_ERR_TAMPER, "audit record %" PRId64 ": %s", seq, why);
        return 1; /* stop the walk */
}

static int walk_one(const struct gmca_audit_rec *r, void *arg)
{
        struct walk *w = arg;
        uint8_t h[GMCA_SM3_LEN];
        int rc;

        if (r->seq <= w->last)
                return tamper(w, r->seq, "seq out of order (record renumbered)");
        if (r->seq != w->last + 1)
                return tamper(w, w->last + 1, "missing (record removed or renumbered)");
        if (r->malformed)
                return tamper(w, r->seq,
                              "a stored field has the wrong size or type (record "
                              "altered)");
        if (memcmp(r->prev, w->prev, GMCA_SM3_LEN) != 0)
                return tamper(w, r->seq,
                              r->seq == 1 ? "prev is not the zero hash (record altered)"
                                          : "prev does not match the previous record's hash "
                                            "(record inserted, removed, reordered or altered)");
        if ((rc = gmca_audit_hash(r, h)) == GMCA_ERR_INVALID)
                return tamper(w, r->seq, "success flag is neither 0 nor 1 (record altered)");
        if (rc != 0) {
                w->bad = 0;
                w->rc = gmca_error_set(w->e, rc, "audit record %" PRId64 ": cannot hash", r->seq);
                return 1;
        }
        if (memcmp(h, r->hash, GMCA_SM3_LEN) != 0)
                return tamper(w, r->seq, "hash mismatch (record altered)");
        memcpy(w->prev, r->hash, GMCA_SM3_LEN);
        w->last = r->seq;
        return 0;
}

/* Compare the chain head in the metadata with the last record of the walk. */
static int check_head(struct gmca_store *s, struct walk *w, struct gmca_error *e)
{
        uint8_t hash[GMCA_SM3_LEN];
        int64_t seq = 0;
        int rc, found;

        if ((rc = head_get(s, &found, &seq, hash, e)) != 0) {
                w->bad = w->last > 0 ? w->last : 1;
                return rc;
        }
        if (!found && w->last == 0)
                return 0;
        if (!found) {
                w->bad = w->last;
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "audit record %" PRId64 ": the chain head is missing from "
                                      "the metadata",
                                      w->last);
        }
        if (seq > w->last) {
                w->bad = w->last + 1;
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "audit record %" PRId64 ": missing; the chain head is at "
                                      "seq %" PRId64 " (records cut from the end)",
                                      w->last + 1, seq);
        }
        if (seq < w->last) {
                w->bad = seq + 1;
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "audit record %" PRId64 ": beyond the chain head at seq "
                                      "%" PRId64 " (records added outside gmca)",
                                      seq + 1, seq);
        }
        if (memcmp(hash, w->prev, GMCA_SM3_LEN) != 0) {
                w->bad = w->last;
                return gmca_error_set(e, GMCA_ERR_TAMPER,
                                      "audit record %" PRId64 ": hash differs from the chain head",
                                      w->last);
        }
        return 0;
}

int gmca_audit_verify(struct gmca_store *s, int64_t *count, int64_t *bad_seq, struct gmca_error *e)
{
        struct walk w;
        int rc, own_tx = 0;

        memset(&w, 0, sizeof(w));
        w.e = e;
        /* One transaction, so that the records and the head are one snapshot. */
        if (!gmca_store_in_transaction(s)) {
                if ((rc = gmca_store_begin(s, e)) != 0)
                        return rc;
                own_tx = 1;
        }
        rc = gmca_store_audit_iter(s, NULL, walk_one, &w, e);
        if (rc > 0)
                rc = w.rc;
        else if (rc == 0)
                rc = check_head(s, &w, e);
        if (own_tx)
                gmca_store_rollback(s); /* read only */
        if (rc == GMCA_ERR_TAMPER && bad_seq != NULL)
                *bad_seq = w.bad;
        if (rc == 0 && count != NULL)
                *count = w.last;
        return rc;
}
