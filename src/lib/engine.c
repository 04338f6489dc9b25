/*
 * The CA engine process (engine.h): a single-threaded poll() server on a
 * Unix socket that signs, with keys it alone holds, the TBS of certificates
 * and CRLs that name its CA as issuer, and the client other gmca processes
 * use to reach it. The engine trusts nothing it receives: every frame is
 * length-capped, every request parsed strictly, and every TBS walked as
 * DER (definite minimal lengths, no trailing bytes, bounded depth) before
 * its algorithm and issuer are compared byte for byte with what the CA may
 * sign. Errors travel back to the client as a gmca_err code and a message;
 * the client prefixes "engine: ".
 */
#define _GNU_SOURCE /* struct ucred and SO_PEERCRED, accept4 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "engine.h"
#include "util.h"
#include "x509.h"

#define CONN_MAX 64           /* clients served at once; more are refused */
#define IDLE_SEC 300          /* a connection without progress this long is closed */
#define CLIENT_TIMEOUT_SEC 30 /* client: no reply within this is an error */
#define REPLY_MAX (1u << 20)  /* client: replies are a signature, a list or a message */
#define DER_DEPTH_MAX 16      /* nesting in a TBS (certificates need about 6) */
#define MSG_WIRE_MAX 400      /* bytes of an error message on the wire */
#define KEYS_MAX 1024         /* CAs one engine serves */

#define ST_OK 0
#define ST_ERR 1

/* AlgorithmIdentifier { 1.2.156.10197.1.501 } with parameters absent (GM/T 0015). */
static const uint8_t sm2_sm3_algid[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81,
                                        0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75};

/* CA names on the wire: 1..GMCA_ENGINE_NAME_MAX-1 graphic ASCII bytes, no '/'. */
static int name_ok(const char *s, size_t n)
{
        if (n == 0 || n >= GMCA_ENGINE_NAME_MAX)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '/')
                        return 0;
        return 1;
}

/* ---- requests ---- */

int gmca_engine_parse_request(const uint8_t *buf, size_t len, struct gmca_engine_request *r,
                              struct gmca_error *e)
{
        size_t namelen;

        if (buf == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: empty request");
        if (len > GMCA_ENGINE_FRAME_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "engine: request of %zu bytes over %u",
                                      len, GMCA_ENGINE_FRAME_MAX);
        switch (buf[0]) {
        case 'L':
        case 'D':
                if (len != 1)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: request '%c' carries %zu bytes of body",
                                              buf[0], len - 1);
                memset(r, 0, sizeof(*r));
                r->op = (char)buf[0];
                return 0;
        case 'S':
                break;
        default:
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: unknown request 0x%02x",
                                      buf[0]);
        }
        if (len < 3)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: sign request without a name");
        namelen = (size_t)buf[1] << 8 | buf[2];
        if (namelen == 0 || namelen >= GMCA_ENGINE_NAME_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: CA name of %zu bytes (1..%d allowed)", namelen,
                                      GMCA_ENGINE_NAME_MAX - 1);
        if (len - 3 < namelen)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CA name runs past the request");
        if (!name_ok((const char *)buf + 3, namelen))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: CA name has a byte outside printable ASCII or '/'");
        if (len - 3 == namelen)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: sign request without a TBS");
        memset(r, 0, sizeof(*r));
        r->op = 'S';
        memcpy(r->name, buf + 3, namelen);
        r->name[namelen] = '\0';
        r->tbs = buf + 3 + namelen;
        r->tbs_len = len - 3 - namelen;
        return 0;
}

/* ---- strict DER ---- */

struct tlv {
        uint8_t tag;
        const uint8_t *start; /* first byte of the whole TLV */
        const uint8_t *val;
        size_t len;  /* of the value */
        size_t size; /* of the whole TLV */
};

/*
 * One DER TLV at the start of p[0..n): single-byte tags, definite lengths in
 * minimal form of at most 4 bytes, and within n. Universal types may be
 * constructed only if they are SEQUENCE or SET (DER strings are primitive).
 */
static int tlv_get(const uint8_t *p, size_t n, struct tlv *t)
{
        size_t hdr = 2, len;

        if (n < 2 || (p[0] & 0x1f) == 0x1f || p[0] == 0x00)
                return -1;
        if ((p[0] & 0xc0) == 0 && (p[0] & 0x20) != 0 && p[0] != 0x30 && p[0] != 0x31)
                return -1;
        if (p[0] == 0x10 || p[0] == 0x11)
                return -1;
        len = p[1];
        if (len & 0x80) {
                size_t k = len & 0x7f;

                if (k == 0 || k > 4 || n - 2 < k || p[2] == 0)
                        return -1;
                len = 0;
                for (size_t i = 0; i < k; i++)
                        len = len << 8 | p[2 + i];
                if (len < 0x80)
                        return -1;
                hdr += k;
        }
        if (len > n - hdr)
                return -1;
        t->tag = p[0];
        t->start = p;
        t->val = p + hdr;
        t->len = len;
        t->size = hdr + len;
        return 0;
}

/* 0 if p[0..n) is a sequence of well-formed TLVs, constructed ones recursively. */
static int der_walk(const uint8_t *p, size_t n, int depth)
{
        struct tlv t;

        if (depth > DER_DEPTH_MAX)
                return -1;
        while (n > 0) { /* each TLV takes at least 2 bytes */
                if (tlv_get(p, n, &t) != 0)
                        return -1;
                if ((t.tag & 0x20) != 0 && der_walk(t.val, t.len, depth + 1) != 0)
                        return -1;
                p += t.size;
                n -= t.size;
        }
        return 0;
}

/* A cursor over the elements of one constructed value. */
struct cur {
        const uint8_t *p;
        size_t n;
};

/* The next element if it has tag `tag`; 0 if taken, -1 if absent or another tag. */
static int take(struct cur *c, uint8_t tag, struct tlv *t)
{
        if (c->n == 0 || c->p[0] != tag || tlv_get(c->p, c->n, t) != 0)
                return -1;
        c->p += t->size;
        c->n -= t->size;
        return 0;
}

/* DER INTEGER content: non-empty, minimal. */
static int int_ok(const struct tlv *t)
{
        if (t->len == 0)
                return 0;
        if (t->len > 1 && ((t->val[0] == 0x00 && (t->val[1] & 0x80) == 0) ||
                           (t->val[0] == 0xff && (t->val[1] & 0x80) != 0)))
                return 0;
        return 1;
}

static int is_time(uint8_t tag)
{
        return tag == 0x17 || tag == 0x18; /* UTCTime, GeneralizedTime */
}

/* The signature algorithm and issuer checks common to both kinds. */
static int check_alg_issuer(struct cur *c, const char *what, const uint8_t *subject,
                            size_t subject_len, const char *ca, struct gmca_error *e)
{
        struct tlv alg, iss;
        X509_NAME *name = NULL;
        const unsigned char *q;
        char dn[256];
        struct gmca_error le;

        if (take(c, 0x30, &alg) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no signature AlgorithmIdentifier",
                                      what);
        if (alg.size != sizeof(sm2_sm3_algid) || memcmp(alg.start, sm2_sm3_algid, alg.size) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "%s: signature algorithm is not SM2-with-SM3 "
                                      "(1.2.156.10197.1.501) with parameters absent (GM/T 0015)",
                                      what);
        if (take(c, 0x30, &iss) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no issuer Name", what);
        if (iss.size == subject_len && memcmp(iss.start, subject, subject_len) == 0)
                return 0;
        /* Name the issuer for the operator; the bytes are untrusted but DER-walked. */
        q = iss.start;
        gmca_error_clear(&le);
        if ((name = d2i_X509_NAME(NULL, &q, (long)iss.size)) == NULL ||
            gmca_dn_format(name, dn, sizeof(dn), &le) != 0)
                gmca_strlcpy(dn, "(unreadable)", sizeof(dn));
        X509_NAME_free(name);
        gmca_ossl_clear();
        if (ca != NULL)
                return gmca_error_set(e, GMCA_ERR_POLICY, "%s names issuer \"%s\", not CA %s", what,
                                      dn, ca);
        return gmca_error_set(e, GMCA_ERR_POLICY, "%s names issuer \"%s\", not the CA's subject",
                              what, dn);
}

/*
 * TBSCertificate (RFC 5280 §4.1) after the [0] version: serial, signature,
 * issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3].
 */
static int check_cert(struct cur *c, const struct tlv *ver, const uint8_t *subject,
                      size_t subject_len, const char *ca, struct gmca_error *e)
{
        static const char what[] = "TBSCertificate";
        struct cur vc = {ver->val, ver->len};
        struct tlv t;
        int rc;

        if (take(&vc, 0x02, &t) != 0 || vc.n != 0 || !int_ok(&t))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: version is not one INTEGER", what);
        if (t.len != 1 || t.val[0] != 2)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "%s: version is not v3 (GM/T 0015, RFC 5280 §4.1.2.1)", what);
        if (take(c, 0x02, &t) != 0 || !int_ok(&t))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no serialNumber INTEGER", what);
        if ((rc = check_alg_issuer(c, what, subject, subject_len, ca, e)) != 0)
                return rc;
        if (take(c, 0x30, &t) != 0 || take(c, 0x30, &t) != 0 || take(c, 0x30, &t) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "%s: validity, subject or subjectPublicKeyInfo missing",
                                      what);
        (void)take(c, 0x81, &t); /* issuerUniqueID */
        (void)take(c, 0x82, &t); /* subjectUniqueID */
        (void)take(c, 0xa3, &t); /* extensions */
        if (c->n != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: unexpected field after %s", what,
                                      "the public key or extensions");
        return 0;
}

/*
 * TBSCertList (RFC 5280 §5.1): version OPTIONAL (v2), signature, issuer,
 * thisUpdate, nextUpdate OPTIONAL, revokedCertificates OPTIONAL, [0].
 */
static int check_crl(struct cur *c, const uint8_t *subject, size_t subject_len, const char *ca,
                     struct gmca_error *e)
{
        static const char what[] = "TBSCertList";
        struct tlv t;
        int rc;

        /* Only v2 is written out (v1 is the absent version); an INTEGER with
         * another value is most likely a certificate without its [0]. */
        if (take(c, 0x02, &t) == 0 && (t.len != 1 || t.val[0] != 1))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "TBS is neither a TBSCertificate ([0] version) nor a "
                                      "TBSCertList (version v2 or absent, RFC 5280 §5.1.2.1)");
        if ((rc = check_alg_issuer(c, what, subject, subject_len, ca, e)) != 0)
                return rc;
        if (take(c, 0x17, &t) != 0 && take(c, 0x18, &t) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: no thisUpdate Time", what);
        if (c->n > 0 && is_time(c->p[0]))
                (void)take(c, c->p[0], &t); /* nextUpdate */
        (void)take(c, 0x30, &t);            /* revokedCertificates */
        (void)take(c, 0xa0, &t);            /* crlExtensions */
        if (c->n != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: unexpected field after %s", what,
                                      "the revoked certificates or extensions");
        return 0;
}

/* gmca_engine_check_tbs with messages that name the CA (ca may be NULL) and no prefix. */
static int check_tbs(const uint8_t *tbs, size_t len, const uint8_t *subject, size_t subject_len,
                     const char *ca, int *is_cert, struct gmca_error *e)
{
        struct tlv outer, ver;
        struct cur c;
        int rc;

        if (tbs == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "empty TBS");
        if (subject == NULL || subject_len == 0)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "no CA subject to compare with");
        if (tlv_get(tbs, len, &outer) != 0 || outer.tag != 0x30)
                return gmca_error_set(e, GMCA_ERR_INVALID, "TBS is not a DER SEQUENCE");
        if (outer.size != len)
                return gmca_error_set(e, GMCA_ERR_INVALID, "TBS has %zu trailing bytes",
                                      len - outer.size);
        if (der_walk(outer.val, outer.len, 1) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "TBS is not DER (bad tag or length, or nested over %d)",
                                      DER_DEPTH_MAX);
        c.p = outer.val;
        c.n = outer.len;
        if (take(&c, 0xa0, &ver) == 0) {
                if ((rc = check_cert(&c, &ver, subject, subject_len, ca, e)) != 0)
                        return rc;
                *is_cert = 1;
                return 0;
        }
        if ((rc = check_crl(&c, subject, subject_len, ca, e)) != 0)
                return rc;
        *is_cert = 0;
        return 0;
}

int gmca_engine_check_tbs(const uint8_t *tbs, size_t len, const uint8_t *subject_der,
                          size_t subject_len, int *is_cert, struct gmca_error *e)
{
        struct gmca_error le;
        int rc, cert = 0;

        gmca_error_clear(&le);
        if ((rc = check_tbs(tbs, len, subject_der, subject_len, NULL, &cert, &le)) != 0)
                return gmca_error_set(e, rc, "engine: %s", le.msg);
        *is_cert = cert;
        return 0;
}

/* ---- server ---- */

struct conn {
        int fd;
        uint8_t hdr[4];
        size_t hdr_have;
        uint8_t *in; /* the frame's payload, once its length is known */
        size_t in_len, in_have;
        uint8_t *out; /* a whole reply frame */
        size_t out_len, out_off;
        int close_after; /* close once out is sent (framing error) */
        int stop_after;  /* stop serving once out is sent (deactivate) */
        time_t last;     /* monotonic seconds of the last progress */
};

struct server {
        const struct gmca_engine_key *keys;
        size_t nkeys;
        struct conn conns[CONN_MAX];
        size_t nconns;
        int stop;
};

static time_t mono(void)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
                return 0;
        return ts.tv_sec;
}

static void conn_reset_in(struct conn *c)
{
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_have = c->hdr_have = 0;
}

/* Close connection i; a deactivation stops the server even if its answer got lost. */
static void conn_close(struct server *s, size_t i)
{
        struct conn *c = &s->conns[i];

        if (c->stop_after)
                s->stop = 1;
        close(c->fd);
        conn_reset_in(c);
        free(c->out);
        s->conns[i] = s->conns[--s->nconns];
}

/* Queue a reply frame: status, then body (which may be in two pieces). */
static void reply(struct conn *c, uint8_t status, const void *a, size_t alen, const void *b,
                  size_t blen)
{
        size_t n = 1 + alen + blen;

        free(c->out);
        c->out_off = 0;
        if ((c->out = malloc(4 + n)) == NULL) {
                c->out_len = 0;
                c->close_after = 1; /* nothing to say it with: hang up */
                return;
        }
        gmca_put_be32(c->out, (uint32_t)n);
        c->out[4] = status;
        if (alen > 0)
                memcpy(c->out + 5, a, alen);
        if (blen > 0)
                memcpy(c->out + 5 + alen, b, blen);
        c->out_len = 4 + n;
}

static void reply_err(struct conn *c, int code, const char *msg)
{
        uint8_t be[4];
        size_t n = strlen(msg);

        gmca_put_be32(be, (uint32_t)(int32_t)code);
        reply(c, ST_ERR, be, sizeof(be), msg, n > MSG_WIRE_MAX ? MSG_WIRE_MAX : n);
}

static void handle_sign(struct server *s, struct conn *c, const struct gmca_engine_request *r)
{
        const struct gmca_engine_key *k = NULL;
        struct gmca_error le;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        int rc, is_cert = 0;
        char msg[160];

        for (size_t i = 0; i < s->nkeys && k == NULL; i++)
                if (strcmp(s->keys[i].name, r->name) == 0)
                        k = &s->keys[i];
        if (k == NULL) {
                snprintf(msg, sizeof(msg), "no CA %s in this engine", r->name);
                reply_err(c, GMCA_ERR_NOTFOUND, msg);
                return;
        }
        gmca_error_clear(&le);
        rc = check_tbs(r->tbs, r->tbs_len, k->subject_der, k->subject_len, k->name, &is_cert, &le);
        if (rc == 0 && is_cert && k->crl_only)
                rc = gmca_error_set(&le, GMCA_ERR_POLICY,
                                    "CA %s: superseded key signs CRLs only (CPS §6.8)", k->name);
        if (rc == 0) {
                rc = k->signer->sign(k->signer->arg, r->tbs, r->tbs_len, sig, &siglen, &le);
                if (rc == 0 && (siglen == 0 || siglen > GMCA_SM2_SIG_MAX))
                        rc = gmca_error_set(&le, GMCA_ERR_INTERNAL,
                                            "CA %s: signer returned %zu bytes", k->name, siglen);
                if (rc != 0 && le.msg[0] == '\0')
                        gmca_error_set(&le, rc, "CA %s: signing failed", k->name);
        }
        gmca_ossl_clear();
        if (rc != 0) {
                reply_err(c, rc, le.msg);
                return;
        }
        reply(c, ST_OK, sig, siglen, NULL, 0);
        OPENSSL_cleanse(sig, sizeof(sig));
}

static void handle_list(struct server *s, struct conn *c)
{
        size_t n = 0, off = 0;
        char *buf;

        for (size_t i = 0; i < s->nkeys; i++)
                n += strlen(s->keys[i].name) + 1;
        if ((buf = malloc(n + 1)) == NULL) {
                reply_err(c, GMCA_ERR_NOMEM, "out of memory");
                return;
        }
        for (size_t i = 0; i < s->nkeys; i++) {
                size_t l = strlen(s->keys[i].name);

                if (i > 0)
                        buf[off++] = '\n';
                memcpy(buf + off, s->keys[i].name, l);
                off += l;
        }
        reply(c, ST_OK, buf, off, NULL, 0);
        free(buf);
}

/* Replies carry no "engine: " prefix: the client adds it. */
static const char *unprefixed(const char *msg)
{
        static const char prefix[] = "engine: ";

        return strncmp(msg, prefix, sizeof(prefix) - 1) == 0 ? msg + sizeof(prefix) - 1 : msg;
}

/* A whole frame is in c->in: answer it. */
static void handle(struct server *s, struct conn *c)
{
        struct gmca_engine_request r;
        struct gmca_error le;

        gmca_error_clear(&le);
        if (gmca_engine_parse_request(c->in, c->in_len, &r, &le) != 0) {
                /* The framing is intact, so the connection stays usable. */
                reply_err(c, le.code, unprefixed(le.msg));
                return;
        }
        switch (r.op) {
        case 'S':
                handle_sign(s, c, &r);
                break;
        case 'L':
                handle_list(s, c);
                break;
        case 'D':
                reply(c, ST_OK, NULL, 0, NULL, 0);
                c->stop_after = 1;
                break;
        }
}

/* Send what is queued; 0 to keep the connection, -1 to close it. */
static int conn_write(struct server *s, struct conn *c)
{
        while (c->out_off < c->out_len) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (w <= 0)
                        return -1;
                c->out_off += (size_t)w;
                c->last = mono();
        }
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_off = 0;
        return c->close_after || c->stop_after ? -1 : 0;
}

/* Read toward one frame; answer it when complete. 0 to keep, -1 to close. */
static int conn_read(struct server *s, struct conn *c)
{
        for (;;) {
                uint8_t *dst;
                size_t want;
                ssize_t r;

                if (c->hdr_have < 4) {
                        dst = c->hdr + c->hdr_have;
                        want = 4 - c->hdr_have;
                } else {
                        dst = c->in + c->in_have;
                        want = c->in_len - c->in_have;
                }
                r = recv(c->fd, dst, want, MSG_DONTWAIT);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (r <= 0)
                        return -1; /* EOF or error; a partial frame is dropped */
                c->last = mono();
                if (c->hdr_have < 4) {
                        uint32_t n;

                        if ((c->hdr_have += (size_t)r) < 4)
                                continue;
                        n = gmca_get_be32(c->hdr);
                        if (n == 0 || n > GMCA_ENGINE_FRAME_MAX) {
                                char msg[80];

                                snprintf(msg, sizeof(msg), "frame length %u out of 1..%u", n,
                                         GMCA_ENGINE_FRAME_MAX);
                                reply_err(c, n == 0 ? GMCA_ERR_INVALID : GMCA_ERR_LIMIT, msg);
                                c->close_after = 1;
                                return 0;
                        }
                        if ((c->in = malloc(n)) == NULL) {
                                reply_err(c, GMCA_ERR_NOMEM, "out of memory for the frame");
                                c->close_after = 1;
                                return 0;
                        }
                        c->in_len = n;
                        continue;
                }
                if ((c->in_have += (size_t)r) < c->in_len)
                        continue;
                handle(s, c);
                conn_reset_in(c);
                return 0; /* read the next frame once the reply is out */
        }
}

static int uid_ok(int fd)
{
        struct ucred uc;
        socklen_t len = sizeof(uc);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || len != sizeof(uc))
                return 0;
        return uc.uid == geteuid();
}

static void accept_all(struct server *s, int lfd)
{
        /* Bounded: the backlog empties, and each round takes at most CONN_MAX + 16. */
        for (int round = 0; round < CONN_MAX + 16; round++) {
                struct conn *c;
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd < 0 && errno == EINTR)
                        continue;
                if (fd < 0)
                        return;
                if (!uid_ok(fd)) {
                        close(fd); /* another user: say nothing */
                        continue;
                }
                if (s->nconns == CONN_MAX) {
                        uint8_t f[4 + 1 + 4 + 32];
                        static const char m[] = "too many connections";

                        gmca_put_be32(f, 1 + 4 + sizeof(m) - 1);
                        f[4] = ST_ERR;
                        gmca_put_be32(f + 5, (uint32_t)(int32_t)GMCA_ERR_LIMIT);
                        memcpy(f + 9, m, sizeof(m) - 1);
                        (void)!send(fd, f, 9 + sizeof(m) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                        close(fd);
                        continue;
                }
                c = &s->conns[s->nconns++];
                memset(c, 0, sizeof(*c));
                c->fd = fd;
                c->last = mono();
        }
}

static int serve_loop(struct server *s, int lfd, int sfd, struct gmca_error *e)
{
        struct pollfd pfd[2 + CONN_MAX];

        while (!s->stop) {
                size_t np = 2, nc;
                time_t now = mono();
                int timeout = -1;

                /* Idle connections go first, so that the array below matches. */
                for (size_t i = s->nconns; i-- > 0;)
                        if (now - s->conns[i].last >= IDLE_SEC)
                                conn_close(s, i);
                pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
                pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
                for (size_t i = 0; i < s->nconns; i++) {
                        const struct conn *c = &s->conns[i];
                        int left = (int)(c->last + IDLE_SEC - now);

                        pfd[np++] = (struct pollfd){.fd = c->fd,
                                                    .events = c->out != NULL ? POLLOUT : POLLIN};
                        if (left < 1)
                                left = 1;
                        if (timeout < 0 || left * 1000 < timeout)
                                timeout = left * 1000;
                }
                nc = s->nconns;
                if (poll(pfd, np, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return gmca_error_set(e, GMCA_ERR_IO, "engine: poll: %s", strerror(errno));
                }
                if (pfd[0].revents != 0) {
                        struct signalfd_siginfo si;

                        (void)!read(sfd, &si, sizeof(si));
                        return 0; /* SIGTERM or SIGINT */
                }
                /* Walk backwards: closing moves the last connection into slot i. */
                for (size_t i = nc; i-- > 0;) {
                        struct conn *c = &s->conns[i];
                        short re = pfd[2 + i].revents;
                        int keep = 0;

                        if (re == 0)
                                continue;
                        if (re & POLLNVAL)
                                keep = -1;
                        else if (c->out != NULL)
                                keep = (re & (POLLOUT | POLLERR | POLLHUP)) ? conn_write(s, c) : 0;
                        else if (re & (POLLIN | POLLERR | POLLHUP))
                                keep = conn_read(s, c);
                        /* A fresh reply is usually sent at once, without another poll. */
                        if (keep == 0 && c->out != NULL)
                                keep = conn_write(s, c);
                        /* No reply could be queued (out of memory): hang up all the same. */
                        if (keep == 0 && c->out == NULL && (c->close_after || c->stop_after))
                                keep = -1;
                        if (keep != 0)
                                conn_close(s, i);
                        if (s->stop)
                                return 0;
                }
                if (pfd[1].revents & POLLIN)
                        accept_all(s, lfd);
        }
        return 0;
}

/* The directory that holds the socket: create it 0700, or refuse a loose one. */
static int run_dir(const char *sock_path, struct gmca_error *e)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        const char *slash = strrchr(sock_path, '/');
        struct stat st;

        if (slash == NULL)
                gmca_strlcpy(dir, ".", sizeof(dir));
        else if (slash == sock_path)
                gmca_strlcpy(dir, "/", sizeof(dir));
        else {
                memcpy(dir, sock_path, (size_t)(slash - sock_path));
                dir[slash - sock_path] = '\0';
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return gmca_error_set(e, GMCA_ERR_IO, "engine: cannot create %s: %s", dir,
                                      strerror(errno));
        if (lstat(dir, &st) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "engine: %s: %s", dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return gmca_error_set(e, GMCA_ERR_POLICY, "engine: %s is not a directory", dir);
        if (st.st_uid != geteuid())
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "engine: run directory %s belongs to uid %u, not %u", dir,
                                      (unsigned)st.st_uid, (unsigned)geteuid());
        if ((st.st_mode & 077) != 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "engine: run directory %s has mode %04o; group and others "
                                      "must have no access (0700)",
                                      dir, (unsigned)(st.st_mode & 07777));
        return 0;
}

/*
 * Is an engine answering at addr? 1 yes, 0 no (nothing there, or a stale
 * socket), or the errno of another failure.
 */
static int probe(const struct sockaddr_un *addr)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

        if (fd < 0)
                return errno;
        if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
                rc = 1;
        else
                rc = errno == ECONNREFUSED || errno == ENOENT ? 0 : errno;
        close(fd);
        return rc;
}

/* Bind and listen at addr with mode 0600, replacing a stale socket. */
static int listen_at(const struct sockaddr_un *addr, int *out, struct gmca_error *e)
{
        const char *path = addr->sun_path;
        int fd = -1, rc = GMCA_ERR_IO, err = 0;
        mode_t old;
        struct stat st;

        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "engine: socket: %s", strerror(errno));
                goto out;
        }
        for (int attempt = 0; attempt < 2; attempt++) {
                int alive;

                old = umask(0177);
                err = bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 ? 0 : errno;
                umask(old);
                if (err != EADDRINUSE || attempt == 1)
                        break;
                if ((alive = probe(addr)) == 1) {
                        rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                            "engine: already activated: an engine answers at %s",
                                            path);
                        goto out;
                }
                if (alive != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_IO, "engine: cannot probe %s: %s", path,
                                            strerror(alive));
                        goto out;
                }
                if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
                        rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                            "engine: %s exists and is not a socket", path);
                        goto out;
                }
                if (unlink(path) != 0 && errno != ENOENT) {
                        rc = gmca_error_set(e, GMCA_ERR_IO,
                                            "engine: cannot remove stale socket %s: %s", path,
                                            strerror(errno));
                        goto out;
                }
        }
        if (err != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "engine: bind %s: %s", path, strerror(err));
                goto out;
        }
        if (listen(fd, 64) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "engine: listen %s: %s", path, strerror(errno));
                unlink(path);
                goto out;
        }
        *out = fd;
        fd = -1;
        rc = 0;
out:
        if (fd >= 0)
                close(fd);
        return rc;
}

static int keys_ok(const struct gmca_engine_key *keys, size_t n, struct gmca_error *e)
{
        if (n > KEYS_MAX || (n > 0 && keys == NULL))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: %zu keys", n);
        for (size_t i = 0; i < n; i++) {
                const struct gmca_engine_key *k = &keys[i];

                if (k->name == NULL || !name_ok(k->name, strlen(k->name)))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: key %zu: CA name must be 1..%d printable "
                                              "ASCII bytes without '/'",
                                              i, GMCA_ENGINE_NAME_MAX - 1);
                if (k->signer == NULL || k->signer->sign == NULL || k->subject_der == NULL ||
                    k->subject_len == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: CA %s: no signer or subject", k->name);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(keys[j].name, k->name) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "engine: CA %s listed twice", k->name);
        }
        return 0;
}

/*
 * ready_fd is closed on every path, so that a parent waiting on it sees
 * end of file when the engine could not start.
 */
int gmca_engine_serve(const char *sock_path, const struct gmca_engine_key *keys, size_t n,
                      int ready_fd, struct gmca_error *e)
{
        struct sockaddr_un addr;
        struct server *s = NULL;
        struct sigaction ign, old_pipe;
        sigset_t mask, old_mask;
        struct stat st;
        char lock_path[sizeof(addr.sun_path) + 8];
        int lock_fd = -1, lfd = -1, sfd = -1, masked = 0, piped = 0, rc = GMCA_ERR_INTERNAL;
        dev_t dev = 0;
        ino_t ino = 0;

        memset(&addr, 0, sizeof(addr));
        addr.sun_family = AF_UNIX;
        if (sock_path == NULL || sock_path[0] == '\0' ||
            strlen(sock_path) >= sizeof(addr.sun_path)) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                    "engine: socket path empty or over %zu bytes",
                                    sizeof(addr.sun_path) - 1);
                goto out;
        }
        memcpy(addr.sun_path, sock_path, strlen(sock_path));
        if ((rc = keys_ok(keys, n, e)) != 0 || (rc = run_dir(sock_path, e)) != 0)
                goto out;

        /* One engine per socket: the lock settles two activations racing for a stale socket. */
        snprintf(lock_path, sizeof(lock_path), "%s.lock", sock_path);
        if ((lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_IO, "engine: %s: %s", lock_path, strerror(errno));
                goto out;
        }
        if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
                rc = errno == EWOULDBLOCK
                         ? gmca_error_set(e, GMCA_ERR_EXISTS,
                                          "engine: already activated: an engine serves %s",
                                          sock_path)
                         : gmca_error_set(e, GMCA_ERR_IO, "engine: lock %s: %s", lock_path,
                                          strerror(errno));
                goto out;
        }
        if ((rc = listen_at(&addr, &lfd, e)) != 0)
                goto out;
        if (lstat(sock_path, &st) == 0) {
                dev = st.st_dev;
                ino = st.st_ino;
        }

        /* SIGTERM and SIGINT arrive on a descriptor; SIGPIPE is ignored. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, &old_mask) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "engine: sigprocmask: %s",
                                    strerror(errno));
                goto out;
        }
        masked = 1;
        if ((sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "engine: signalfd: %s", strerror(errno));
                goto out;
        }
        memset(&ign, 0, sizeof(ign));
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        if (sigaction(SIGPIPE, &ign, &old_pipe) == 0)
                piped = 1;

        if ((s = calloc(1, sizeof(*s))) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "engine: out of memory");
                goto out;
        }
        s->keys = keys;
        s->nkeys = n;
        if (ready_fd >= 0) {
                uint8_t one = 1;

                while (write(ready_fd, &one, 1) < 0 && errno == EINTR)
                        ;
                close(ready_fd);
                ready_fd = -1;
        }
        rc = serve_loop(s, lfd, sfd, e);
out:
        if (s != NULL) {
                while (s->nconns > 0)
                        conn_close(s, s->nconns - 1);
                free(s);
        }
        if (lfd >= 0) {
                /* Remove the socket only if it is still the one bound here. */
                if (lstat(sock_path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
                        unlink(sock_path);
                close(lfd);
        }
        if (sfd >= 0) {
                struct signalfd_siginfo si;

                /* Consume what is pending so that unblocking does not kill the caller. */
                while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                        ;
                close(sfd);
        }
        if (masked)
                sigprocmask(SIG_SETMASK, &old_mask, NULL);
        if (piped)
                sigaction(SIGPIPE, &old_pipe, NULL);
        if (lock_fd >= 0)
                close(lock_fd);
        if (ready_fd >= 0)
                close(ready_fd);
        return rc;
}

/* ---- client ---- */

struct gmca_engine_client {
        int fd; /* -1 after an I/O failure: the next request reconnects */
        int used;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int connect_fd(const char *path, int *out, struct gmca_error *e)
{
        struct sockaddr_un addr;
        struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_SEC};
        struct ucred uc;
        socklen_t len = sizeof(uc);
        int fd;

        memset(&addr, 0, sizeof(addr));
        addr.sun_family = AF_UNIX;
        memcpy(addr.sun_path, path, strlen(path));
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                return gmca_error_set(e, GMCA_ERR_IO, "engine: socket: %s", strerror(errno));
        if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) != 0) {
                int err = errno;

                close(fd);
                if (err == ENOENT || err == ECONNREFUSED)
                        return gmca_error_set(e, GMCA_ERR_STATE,
                                              "CA not activated: no CA engine at %s "
                                              "(run gmca activate)",
                                              path);
                return gmca_error_set(e, GMCA_ERR_IO, "engine: cannot connect to %s: %s", path,
                                      strerror(err));
        }
        /* The engine must run as us: the socket's directory is ours alone. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || len != sizeof(uc) ||
            uc.uid != geteuid()) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_AUTH, "engine: %s is served by another user",
                                      path);
        }
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "engine: setsockopt: %s", strerror(errno));
        }
        *out = fd;
        return 0;
}

struct gmca_engine_client *gmca_engine_connect(const char *sock_path, struct gmca_error *e)
{
        struct gmca_engine_client *c;

        if (sock_path == NULL || sock_path[0] == '\0' || strlen(sock_path) >= sizeof(c->path)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "engine: socket path empty or over %zu bytes",
                               sizeof(c->path) - 1);
                return NULL;
        }
        if ((c = calloc(1, sizeof(*c))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "engine: out of memory");
                return NULL;
        }
        gmca_strlcpy(c->path, sock_path, sizeof(c->path));
        if (connect_fd(c->path, &c->fd, e) != 0) {
                free(c);
                return NULL;
        }
        return c;
}

void gmca_engine_disconnect(struct gmca_engine_client *c)
{
        if (c == NULL)
                return;
        if (c->fd >= 0)
                close(c->fd);
        free(c);
}

/* Results of one exchange besides 0: the caller decides whether to retry. */
enum { X_FAIL = 1, X_CLOSED = 2 /* closed before any reply byte */ };

static int send_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -1;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Read exactly n bytes: 0, -1 on error or timeout (errno set), 1 on EOF. */
static int recv_all(int fd, uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t r = recv(fd, p, n, 0);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -1;
                if (r == 0)
                        return 1;
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

/*
 * Send one request (head, then tail) and read the reply frame into *body
 * (malloc'd, caller frees; status byte stripped) with its status.
 */
static int exchange(struct gmca_engine_client *c, const uint8_t *head, size_t hlen,
                    const uint8_t *tail, size_t tlen, uint8_t *status, uint8_t **body, size_t *blen,
                    struct gmca_error *e)
{
        uint8_t hdr[4], *buf = NULL;
        uint32_t n;
        int r;

        if (send_all(c->fd, head, hlen) != 0 || (tlen > 0 && send_all(c->fd, tail, tlen) != 0)) {
                if (errno == EPIPE || errno == ECONNRESET)
                        return X_CLOSED;
                gmca_error_set(e, GMCA_ERR_IO, "engine: send to %s: %s", c->path,
                               errno == EAGAIN ? "timed out" : strerror(errno));
                return X_FAIL;
        }
        if ((r = recv_all(c->fd, hdr, 1)) != 0) {
                if (r == 1 || errno == ECONNRESET)
                        return X_CLOSED;
                gmca_error_set(e, GMCA_ERR_IO, "engine: no reply from %s%s%s", c->path,
                               errno == EAGAIN ? " within the timeout" : ": ",
                               errno == EAGAIN ? "" : strerror(errno));
                return X_FAIL;
        }
        if ((r = recv_all(c->fd, hdr + 1, 3)) != 0)
                goto short_read;
        n = gmca_get_be32(hdr);
        if (n == 0 || n > REPLY_MAX) {
                gmca_error_set(e, GMCA_ERR_INVALID, "engine: reply of %u bytes", n);
                return X_FAIL;
        }
        if ((buf = malloc(n)) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "engine: out of memory");
                return X_FAIL;
        }
        if ((r = recv_all(c->fd, buf, n)) != 0) {
                free(buf);
                goto short_read;
        }
        *status = buf[0];
        *blen = n - 1;
        memmove(buf, buf + 1, n - 1);
        *body = buf;
        return 0;
short_read:
        gmca_error_set(e, GMCA_ERR_IO, "engine: reply from %s cut short%s%s", c->path,
                       r == 1 ? "" : ": ", r == 1 ? "" : strerror(errno));
        return X_FAIL;
}

/* An error reply back into a gmca_error: known codes only, printable text. */
static int reply_error(const uint8_t *b, size_t n, struct gmca_error *e)
{
        char msg[MSG_WIRE_MAX + 1];
        int32_t code;
        size_t m;

        if (n < 4)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: malformed error reply");
        code = (int32_t)gmca_get_be32(b);
        if (code < GMCA_ERR_LIMIT || code > GMCA_ERR_INTERNAL)
                code = GMCA_ERR_INTERNAL;
        m = n - 4 > MSG_WIRE_MAX ? MSG_WIRE_MAX : n - 4;
        for (size_t i = 0; i < m; i++) {
                uint8_t ch = b[4 + i];

                msg[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
        msg[m] = '\0';
        return gmca_error_set(e, code, "engine: %s", m > 0 ? msg : gmca_err_name(code));
}

/*
 * One request. A connection the engine closed while idle (its idle timeout)
 * is reopened and the request sent once more; deactivation is not repeated.
 * On success *body holds the ok reply's body (malloc'd, caller frees).
 */
static int request(struct gmca_engine_client *c, uint8_t op, const uint8_t *head, size_t hlen,
                   const uint8_t *tail, size_t tlen, uint8_t **body, size_t *blen,
                   struct gmca_error *e)
{
        uint8_t status = 0, *b = NULL;
        size_t n = 0;
        int rc, x = X_FAIL;

        for (int attempt = 0; attempt < 2; attempt++) {
                struct gmca_error le;

                if (c->fd < 0) {
                        if ((rc = connect_fd(c->path, &c->fd, e)) != 0)
                                return rc;
                        c->used = 0;
                }
                gmca_error_clear(&le);
                x = exchange(c, head, hlen, tail, tlen, &status, &b, &n, &le);
                if (x == 0) {
                        c->used = 1;
                        break;
                }
                close(c->fd);
                c->fd = -1;
                if (x == X_CLOSED && c->used && op != 'D')
                        continue;
                if (x == X_CLOSED)
                        return gmca_error_set(e, GMCA_ERR_IO,
                                              "engine: %s closed the connection without a reply",
                                              c->path);
                return gmca_error_set(e, le.code, "%s", le.msg);
        }
        if (x != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "engine: %s closed the connection twice",
                                      c->path);
        if (status == ST_ERR) {
                rc = reply_error(b, n, e);
                free(b);
                return rc;
        }
        if (status != ST_OK) {
                free(b);
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: reply status %u", status);
        }
        *body = b;
        *blen = n;
        return 0;
}

int gmca_engine_sign(struct gmca_engine_client *c, const char *ca, const uint8_t *tbs, size_t len,
                     uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e)
{
        uint8_t head[4 + 3 + GMCA_ENGINE_NAME_MAX], *b = NULL;
        size_t nl, n = 0;
        int rc;

        if (c == NULL || ca == NULL || tbs == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: nothing to sign");
        nl = strlen(ca);
        if (!name_ok(ca, nl))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: bad CA name");
        if (len > GMCA_ENGINE_FRAME_MAX - 3 - nl)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "engine: TBS of %zu bytes over the cap",
                                      len);
        gmca_put_be32(head, (uint32_t)(3 + nl + len));
        head[4] = 'S';
        head[5] = (uint8_t)(nl >> 8);
        head[6] = (uint8_t)nl;
        memcpy(head + 7, ca, nl);
        if ((rc = request(c, 'S', head, 7 + nl, tbs, len, &b, &n, e)) != 0)
                return rc;
        if (n == 0 || n > GMCA_SM2_SIG_MAX) {
                free(b);
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: signature of %zu bytes", n);
        }
        memcpy(sig, b, n);
        *siglen = n;
        free(b);
        return 0;
}

int gmca_engine_list(struct gmca_engine_client *c, char *buf, size_t len, struct gmca_error *e)
{
        uint8_t head[5], *b = NULL;
        size_t n = 0;
        int rc;

        if (c == NULL || buf == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: no buffer for the list");
        gmca_put_be32(head, 1);
        head[4] = 'L';
        if ((rc = request(c, 'L', head, sizeof(head), NULL, 0, &b, &n, e)) != 0)
                return rc;
        if (n >= len || memchr(b, '\0', n) != NULL) {
                free(b);
                return gmca_error_set(e, n >= len ? GMCA_ERR_LIMIT : GMCA_ERR_INVALID,
                                      "engine: list of %zu bytes does not fit or has a NUL", n);
        }
        memcpy(buf, b, n);
        buf[n] = '\0';
        free(b);
        return 0;
}

int gmca_engine_deactivate(struct gmca_engine_client *c, struct gmca_error *e)
{
        uint8_t head[5], *b = NULL;
        size_t n = 0;
        int rc;

        if (c == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: no client");
        gmca_put_be32(head, 1);
        head[4] = 'D';
        if ((rc = request(c, 'D', head, sizeof(head), NULL, 0, &b, &n, e)) != 0)
                return rc;
        free(b);
        return 0;
}

static int engine_signer_sign(void *arg, const uint8_t *tbs, size_t len,
                              uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e)
{
        struct gmca_engine_signer *s = arg;

        return gmca_engine_sign(s->client, s->ca, tbs, len, sig, siglen, e);
}

void gmca_engine_signer_init(struct gmca_engine_signer *s, struct gmca_engine_client *c,
                             const char *ca)
{
        memset(s, 0, sizeof(*s));
        s->base.sign = engine_signer_sign;
        s->base.arg = s;
        s->client = c;
        gmca_strlcpy(s->ca, ca != NULL ? ca : "", sizeof(s->ca));
}
