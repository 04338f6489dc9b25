/*
 * The CA engine process (engine.h): a single-threaded poll() server on a
 * Unix socket that signs, with keys it alone holds, the TBS of certificates
 * that name its CA as issuer, makes the CRLs of its CAs itself (op 'C':
 * callers say when, never what), and the client other gmca processes use
 * to reach it. The engine trusts nothing it receives: every frame is
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

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "audit.h"
#include "auth.h"
#include "crypto.h"
#include "engine.h"
#include "ra.h"
#include "util.h"
#include "x509.h"

#define CONN_MAX 64           /* clients served at once; more are refused */
#define IDLE_SEC 300          /* a connection without progress this long is closed */
#define CLIENT_TIMEOUT_SEC 30 /* client: no reply within this is an error */
#define REPLY_MAX (1u << 20)  /* client: replies are a signature, a list or a message */
#define DER_DEPTH_MAX 16      /* nesting in a TBS (certificates need about 6) */
#define MSG_WIRE_MAX 400      /* bytes of an error message on the wire */
#define KEYS_MAX 1024         /* CAs one engine serves */
#define FRAME_SEC 30          /* a frame begun must be complete within this */
#define NONCE_MAX 65536       /* RA nonces remembered at once (2 * skew window) */
#define AUDIT_QUEUE_MAX 1024  /* records waiting to be written */
#define SIG_MIN 8             /* bytes of the shortest DER SM2 signature */

static const char crl_refused[] = "CRLs are made by the engine: op C";
static const char direct_refused[] =
    "certificates are issued for approved applications only (RA); or with the custodians' "
    "authorisation";

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

/* u16 namelen, name at p[0..n): the CA name into r; *used bytes taken. */
static int parse_name(const uint8_t *p, size_t n, char op, struct gmca_engine_request *r,
                      size_t *used, struct gmca_error *e)
{
        size_t namelen;

        if (n < 2)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: sign request without a name");
        namelen = (size_t)p[0] << 8 | p[1];
        if (namelen == 0 || namelen >= GMCA_ENGINE_NAME_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: CA name of %zu bytes (1..%d allowed)", namelen,
                                      GMCA_ENGINE_NAME_MAX - 1);
        if (n - 2 < namelen)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CA name runs past the request");
        if (!name_ok((const char *)p + 2, namelen))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: CA name has a byte outside printable ASCII or '/'");
        memset(r, 0, sizeof(*r));
        r->op = op;
        memcpy(r->name, p + 2, namelen);
        r->name[namelen] = '\0';
        *used = 2 + namelen;
        return 0;
}

/* The actor of a 'C' request: 1..GMCA_ENGINE_ACTOR_MAX-1 bytes, no control character. */
static int actor_ok(const uint8_t *p, size_t n)
{
        if (n == 0 || n >= GMCA_ENGINE_ACTOR_MAX)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (p[i] < 0x20 || p[i] == 0x7f)
                        return 0;
        return 1;
}

/* 'C': u16 namelen, name, kind, flags, u32 arg, u16 actorlen, actor; nothing after. */
static int parse_crl(const uint8_t *buf, size_t len, struct gmca_engine_request *r,
                     struct gmca_error *e)
{
        struct gmca_engine_request q = {0};
        struct gmca_engine_crl_req *c = &q.crl;
        size_t used = 0, actorlen;
        const uint8_t *p;
        int rc;

        if ((rc = parse_name(buf + 1, len - 1, 'C', &q, &used, e)) != 0)
                return rc;
        used += 1;
        if (len - used < 8)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CRL request cut short");
        p = buf + used;
        c->kind = (char)p[0];
        c->force = p[1] & 1;
        c->arg = gmca_get_be32(p + 2);
        actorlen = (size_t)p[6] << 8 | p[7];
        if (len - used - 8 != actorlen || !actor_ok(p + 8, actorlen))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: CRL request: the actor is not 1..%d printable "
                                      "bytes ending the request",
                                      GMCA_ENGINE_ACTOR_MAX - 1);
        memcpy(c->actor, p + 8, actorlen);
        c->actor[actorlen] = '\0';
        if (c->kind != GMCA_ENGINE_CRL_FULL && c->kind != GMCA_ENGINE_CRL_DELTA &&
            c->kind != GMCA_ENGINE_CRL_PASS)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CRL request of kind 0x%02x",
                                      p[0]);
        if (p[1] & ~(c->kind == GMCA_ENGINE_CRL_PASS ? 1u : 0u))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CRL request: flags 0x%02x",
                                      p[1]);
        if ((c->kind == GMCA_ENGINE_CRL_PASS) != (strcmp(q.name, GMCA_ENGINE_CRL_ALL) == 0))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: CRL request: a pass names \"%s\", nothing else does",
                                      GMCA_ENGINE_CRL_ALL);
        if ((c->kind == GMCA_ENGINE_CRL_DELTA && c->arg != 0) ||
            (c->kind == GMCA_ENGINE_CRL_FULL && c->arg > GMCA_ENGINE_CRL_HOURS_MAX))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CRL request: %s of %u (%s)",
                                      c->kind == GMCA_ENGINE_CRL_FULL ? "hours" : "argument",
                                      c->arg,
                                      c->kind == GMCA_ENGINE_CRL_FULL ? "0..744" : "0 only");
        *r = q;
        return 0;
}

int gmca_engine_parse_request(const uint8_t *buf, size_t len, struct gmca_engine_request *r,
                              struct gmca_error *e)
{
        struct gmca_engine_request q = {0};
        size_t used = 0, paylen;
        int rc;

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
        case 'T':
        case 'O':
                break;
        case 'C':
                return parse_crl(buf, len, r, e);
        case 'R':
                if (len < 5)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: RA request without a payload length");
                paylen = gmca_get_be32(buf + 1);
                if (paylen == 0 || paylen > GMCA_ENGINE_RA_MAX)
                        return gmca_error_set(e, paylen == 0 ? GMCA_ERR_INVALID : GMCA_ERR_LIMIT,
                                              "engine: RA payload of %zu bytes (1..%d allowed)",
                                              paylen, GMCA_ENGINE_RA_MAX);
                if (len - 5 < paylen)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: RA payload runs past the request");
                if (len - 5 - paylen < SIG_MIN || len - 5 - paylen > GMCA_SM2_SIG_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: RA request signature of %zu bytes (%d..%d "
                                              "allowed)",
                                              len - 5 - paylen, SIG_MIN, GMCA_SM2_SIG_MAX);
                memset(r, 0, sizeof(*r));
                r->op = 'R';
                r->payload = buf + 5;
                r->payload_len = paylen;
                r->sig = buf + 5 + paylen;
                r->sig_len = len - 5 - paylen;
                return 0;
        default:
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: unknown request 0x%02x",
                                      buf[0]);
        }
        if ((rc = parse_name(buf + 1, len - 1, (char)buf[0], &q, &used, e)) != 0)
                return rc;
        used += 1;
        if (q.op == 'T') {
                if (len - used < GMCA_ENGINE_AUTHZ_LEN)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "engine: authorised sign request without its MAC");
                q.mac = buf + used;
                used += GMCA_ENGINE_AUTHZ_LEN;
        }
        if (len == used)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: sign request without a TBS");
        q.tbs = buf + used;
        q.tbs_len = len - used;
        *r = q;
        return 0;
}

/* ---- RA payloads ---- */

/* The next line of *p (without its '\n'), at most max bytes; -1 if none. */
static int next_line(const uint8_t **p, size_t *n, size_t max, const char **line, size_t *len)
{
        size_t lim = *n < max + 1 ? *n : max + 1;
        const uint8_t *nl = memchr(*p, '\n', lim);

        if (nl == NULL)
                return -1;
        *line = (const char *)*p;
        *len = (size_t)(nl - *p);
        *n -= *len + 1;
        *p = nl + 1;
        return 0;
}

/* Decimal without sign or leading zero, 1..digits digits, into *v. */
static int decimal(const char *s, size_t n, size_t digits, int64_t *v)
{
        int64_t x = 0;

        if (n == 0 || n > digits || s[0] < '1' || s[0] > '9')
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                x = x * 10 + (s[i] - '0');
        }
        *v = x;
        return 0;
}

static int all_of(const char *s, size_t n, const char *set)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\0' || strchr(set, s[i]) == NULL)
                        return 0;
        return 1;
}

/* ARGS of SUBOP ocsp: CA name '\n' seconds '\n' CSR DER. */
static int parse_ra_ocsp(const uint8_t *p, size_t n, struct gmca_engine_ra_req *q,
                         struct gmca_engine_ra_req *r, struct gmca_error *e)
{
        const char *l;
        size_t len;

        if (next_line(&p, &n, GMCA_ENGINE_NAME_MAX - 1, &l, &len) != 0 || !name_ok(l, len))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: ocsp takes a CA name line (printable ASCII)");
        memcpy(q->ca, l, len);
        if (next_line(&p, &n, 9, &l, &len) != 0 ||
            !((len == 1 && l[0] == '0') || decimal(l, len, 9, &q->seconds) == 0))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: ocsp takes a validity line (seconds, 0 for the "
                                      "profile's)");
        if (n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "RA request: ocsp without a CSR");
        q->value = p;
        q->value_len = n;
        *r = *q;
        return 0;
}

/* ARGS of SUBOP disable: operator name '\n' signed request (auth.h proof). */
static int parse_ra_disable(const uint8_t *p, size_t n, struct gmca_engine_ra_req *q,
                            struct gmca_engine_ra_req *r, struct gmca_error *e)
{
        const char *l;
        size_t len;

        if (next_line(&p, &n, GMCA_ENGINE_NAME_MAX - 1, &l, &len) != 0 || !name_ok(l, len))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: disable takes an operator name line");
        memcpy(q->op_name, l, len);
        if (n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: disable without the signed request");
        q->value = p;
        q->value_len = n;
        *r = *q;
        return 0;
}

int gmca_engine_parse_ra(const uint8_t *p, size_t n, struct gmca_engine_ra_req *r,
                         struct gmca_error *e)
{
        static const char upper_hex[] = "0123456789ABCDEF", lower_hex[] = "0123456789abcdef";
        struct gmca_engine_ra_req q;
        const char *l;
        size_t len;

        if (p == NULL || n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "RA request: empty payload");
        if (n > GMCA_ENGINE_RA_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "RA request: payload of %zu bytes over %d",
                                      n, GMCA_ENGINE_RA_MAX);
        memset(&q, 0, sizeof(q));
        if (next_line(&p, &n, 16, &l, &len) != 0 || len != strlen(GMCA_ENGINE_RA_MAGIC) ||
            memcmp(l, GMCA_ENGINE_RA_MAGIC, len) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: does not begin with \"" GMCA_ENGINE_RA_MAGIC
                                      "\"");
        if (next_line(&p, &n, GMCA_SERIAL_HEX_MAX - 1, &l, &len) != 0 || len == 0 ||
            !all_of(l, len, upper_hex))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: line 2 is not a serial (1..40 upper-case hex)");
        memcpy(q.serial, l, len);
        if (next_line(&p, &n, 12, &l, &len) != 0 || decimal(l, len, 12, &q.time) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: line 3 is not a time (Unix seconds)");
        if (next_line(&p, &n, GMCA_ENGINE_NONCE_HEX, &l, &len) != 0 ||
            len != GMCA_ENGINE_NONCE_HEX || !all_of(l, len, lower_hex))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: line 4 is not a nonce (%d lower-case hex)",
                                      GMCA_ENGINE_NONCE_HEX);
        memcpy(q.nonce, l, len);
        if (next_line(&p, &n, 8, &l, &len) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: line 5 (operation) missing");
        if (len == 5 && memcmp(l, "issue", 5) == 0)
                q.subop = GMCA_RA_OP_ISSUE;
        else if (len == 4 && memcmp(l, "seal", 4) == 0)
                q.subop = GMCA_RA_OP_SEAL;
        else if (len == 6 && memcmp(l, "unseal", 6) == 0)
                q.subop = GMCA_RA_OP_UNSEAL;
        else if (len == 4 && memcmp(l, "ocsp", 4) == 0)
                q.subop = GMCA_RA_OP_OCSP;
        else if (len == 7 && memcmp(l, "recover", 7) == 0)
                q.subop = GMCA_RA_OP_RECOVER;
        else if (len == 6 && memcmp(l, "revoke", 6) == 0)
                q.subop = GMCA_RA_OP_REVOKE;
        else if (len == 7 && memcmp(l, "disable", 7) == 0)
                q.subop = GMCA_RA_OP_DISABLE;
        else
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: unknown operation (issue, seal, unseal, ocsp, "
                                      "recover, revoke, disable)");
        if (q.subop == GMCA_RA_OP_OCSP)
                return parse_ra_ocsp(p, n, &q, r, e);
        if (q.subop == GMCA_RA_OP_DISABLE)
                return parse_ra_disable(p, n, &q, r, e);
        if (q.subop == GMCA_RA_OP_ISSUE || q.subop == GMCA_RA_OP_RECOVER ||
            q.subop == GMCA_RA_OP_REVOKE) {
                if (decimal((const char *)p, n, 18, &q.app_id) != 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "RA request: %s takes %s id "
                                              "(decimal, 1..18 digits, nothing after it)",
                                              q.subop == GMCA_RA_OP_ISSUE     ? "issue"
                                              : q.subop == GMCA_RA_OP_RECOVER ? "recover"
                                                                              : "revoke",
                                              q.subop == GMCA_RA_OP_ISSUE     ? "an application"
                                              : q.subop == GMCA_RA_OP_RECOVER ? "a recovery"
                                                                              : "a revocation "
                                                                                "request");
                *r = q;
                return 0;
        }
        if (next_line(&p, &n, GMCA_ENGINE_AAD_MAX, &l, &len) != 0 || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: seal takes an aad line of 1..%d bytes",
                                      GMCA_ENGINE_AAD_MAX);
        for (size_t i = 0; i < len; i++)
                if (l[i] < 0x20 || l[i] > 0x7e)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "RA request: aad has a byte outside printable ASCII");
        memcpy(q.aad, l, len);
        if (q.subop == GMCA_RA_OP_SEAL && (n == 0 || n > GMCA_ENGINE_SEAL_MAX))
                return gmca_error_set(e, n == 0 ? GMCA_ERR_INVALID : GMCA_ERR_LIMIT,
                                      "RA request: value to seal of %zu bytes (1..%d)", n,
                                      GMCA_ENGINE_SEAL_MAX);
        if (q.subop == GMCA_RA_OP_UNSEAL &&
            (n <= GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN ||
             n > GMCA_ENGINE_SEAL_MAX + GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "RA request: sealed value of %zu bytes is not IV, "
                                      "ciphertext and tag",
                                      n);
        q.value = p;
        q.value_len = n;
        *r = q;
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

/* An audit record waiting until the reply that caused it is out. */
struct qrec {
        char event[GMCA_NAME_MAX];
        char actor[GMCA_NAME_MAX];
        int success;
        char object[GMCA_NAME_MAX];
        char *detail;
};

/* RA nonces seen within the replay window: open addressing, rebuilt when full. */
struct nonce_slot {
        uint8_t n[GMCA_ENGINE_NONCE_HEX / 2];
        int64_t until; /* 0: empty */
};
#define NONCE_SLOTS (2 * NONCE_MAX) /* a power of two */

struct server {
        const struct gmca_engine_key *keys;
        size_t nkeys;
        const struct gmca_engine_policy *pol;
        struct conn conns[CONN_MAX];
        size_t nconns;
        int stop;
        struct qrec queue[AUDIT_QUEUE_MAX];
        size_t nqueue;
        time_t audit_retry; /* monotonic: no flush before this after a failure */
        struct nonce_slot *nonces;
        size_t nnonces;
        uint64_t salt;
        time_t idle_at; /* monotonic: when pol->idle is due */
};

/* Seconds a connection may go without progress: less in the middle of a frame. */
static time_t conn_limit(const struct conn *c)
{
        return c->hdr_have > 0 || c->out != NULL ? FRAME_SEC : IDLE_SEC;
}

static time_t mono(void)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
                return 0;
        return ts.tv_sec;
}

static void conn_reset_in(struct conn *c)
{
        if (c->in != NULL)
                OPENSSL_cleanse(c->in, c->in_len); /* a value to seal, say */
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

/* ---- audit queue ---- */

static void copy_field(char *dst, size_t cap, const char *src)
{
        gmca_strlcpy(dst, src != NULL ? src : "", cap);
}

/* Queue a record (detail: JSON object, consumed). -1 if the queue is full. */
static int audit_queue(struct server *s, const char *event, const char *actor, int success,
                       const char *object, json_t *detail)
{
        struct qrec *q;

        if (s->pol == NULL || s->pol->audit == NULL) {
                json_decref(detail);
                return 0;
        }
        if (s->nqueue == AUDIT_QUEUE_MAX) {
                json_decref(detail);
                return -1;
        }
        q = &s->queue[s->nqueue];
        copy_field(q->event, sizeof(q->event), event);
        copy_field(q->actor, sizeof(q->actor), actor);
        copy_field(q->object, sizeof(q->object), object);
        q->success = success;
        q->detail = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(detail);
        s->nqueue++;
        return 0;
}

/* A refusal: the error reply and its engine.request record. */
static void refuse(struct server *s, struct conn *c, const char *actor, const char *object,
                   const char *op, int code, const char *msg)
{
        reply_err(c, code, msg);
        (void)audit_queue(
            s, GMCA_EV_ENGINE_REQUEST, actor, 0, object,
            json_pack("{s:s, s:s, s:s}", "op", op, "error", gmca_err_name(code), "cause", msg));
}

/* Write what is queued, in one transaction; on failure keep it and retry in a second. */
static void audit_flush(struct server *s)
{
        struct gmca_engine_audit recs[AUDIT_QUEUE_MAX];
        struct gmca_error le;

        if (s->nqueue == 0 || s->pol == NULL || s->pol->audit == NULL || mono() < s->audit_retry)
                return;
        for (size_t i = 0; i < s->nqueue; i++)
                recs[i] = (struct gmca_engine_audit){s->queue[i].event, s->queue[i].actor,
                                                     s->queue[i].success, s->queue[i].object,
                                                     s->queue[i].detail};
        gmca_error_clear(&le);
        if (s->pol->audit(s->pol->arg, recs, s->nqueue, &le) != 0) {
                s->audit_retry = mono() + 1;
                return;
        }
        for (size_t i = 0; i < s->nqueue; i++)
                free(s->queue[i].detail);
        s->nqueue = 0;
}

/* ---- signing ---- */

/* The serial (hex, as the store writes it) and subject of a checked TBSCertificate. */
static void cert_facts(const uint8_t *tbs, size_t len, char serial[GMCA_SERIAL_HEX_MAX],
                       char *subject, size_t subject_len)
{
        struct tlv outer, t, subj;
        struct cur c;
        X509_NAME *name = NULL;
        const unsigned char *q;
        struct gmca_error le;

        gmca_strlcpy(serial, "?", GMCA_SERIAL_HEX_MAX);
        gmca_strlcpy(subject, "?", subject_len);
        if (tlv_get(tbs, len, &outer) != 0)
                return;
        c = (struct cur){outer.val, outer.len};
        if (take(&c, 0xa0, &t) != 0 || take(&c, 0x02, &t) != 0)
                return;
        if (t.len > 1 && t.val[0] == 0x00) { /* the sign byte of a positive serial */
                t.val++;
                t.len--;
        }
        if (t.len <= (GMCA_SERIAL_HEX_MAX - 1) / 2)
                gmca_hex_upper(t.val, t.len, serial);
        if (take(&c, 0x30, &t) != 0 || take(&c, 0x30, &t) != 0 || take(&c, 0x30, &t) != 0 ||
            take(&c, 0x30, &subj) != 0)
                return;
        q = subj.start;
        gmca_error_clear(&le);
        if ((name = d2i_X509_NAME(NULL, &q, (long)subj.size)) == NULL ||
            gmca_dn_format(name, subject, subject_len, &le) != 0)
                gmca_strlcpy(subject, "?", subject_len);
        X509_NAME_free(name);
        gmca_ossl_clear();
}

/* 0 if mac is HMAC-SM3(K_authz, tbs); the comparison takes constant time. */
static int mac_ok(const struct gmca_engine_policy *pol, const struct gmca_engine_request *r)
{
        uint8_t want[GMCA_SM3_LEN];
        struct gmca_error le;
        int ok;

        gmca_error_clear(&le);
        if (pol == NULL || pol->authz_key == NULL ||
            gmca_hmac_sm3(pol->authz_key, GMCA_ENGINE_AUTHZ_LEN, r->tbs, r->tbs_len, want, &le) !=
                0)
                return -1;
        ok = CRYPTO_memcmp(want, r->mac, GMCA_ENGINE_AUTHZ_LEN) == 0;
        OPENSSL_cleanse(want, sizeof(want));
        return ok ? 0 : -1;
}

static void handle_sign(struct server *s, struct conn *c, const struct gmca_engine_request *r)
{
        const struct gmca_engine_key *k = NULL;
        const char *op = r->op == 'T' ? "T" : "S";
        struct gmca_error le;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        int rc, is_cert = 0;
        char msg[160], serial[GMCA_SERIAL_HEX_MAX], subject[GMCA_DN_MAX];

        for (size_t i = 0; i < s->nkeys && k == NULL; i++)
                if (strcmp(s->keys[i].name, r->name) == 0)
                        k = &s->keys[i];
        if (k == NULL) {
                snprintf(msg, sizeof(msg), "no CA %s in this engine", r->name);
                reply_err(c, GMCA_ERR_NOTFOUND, msg);
                return;
        }
        /* The custodians' MAC first: nothing else of a forged request is looked at. */
        if (r->op == 'T' && mac_ok(s->pol, r) != 0) {
                refuse(s, c, "engine", k->name, op, GMCA_ERR_AUTH,
                       s->pol == NULL || s->pol->authz_key == NULL
                           ? "this engine holds no custodians' authorisation key"
                           : "the custodians' authorisation does not verify for this TBS "
                             "(HMAC-SM3)");
                return;
        }
        gmca_error_clear(&le);
        rc = check_tbs(r->tbs, r->tbs_len, k->subject_der, k->subject_len, k->name, &is_cert, &le);
        if (rc == 0 && is_cert && k->crl_only)
                rc = gmca_error_set(&le, GMCA_ERR_POLICY,
                                    "CA %s: superseded key signs CRLs only (CPS §6.8), and those "
                                    "the engine makes (op C)",
                                    k->name);
        if (rc != 0) {
                gmca_ossl_clear();
                reply_err(c, rc, le.msg);
                return;
        }
        if (!is_cert) {
                refuse(s, c, "engine", k->name, op, GMCA_ERR_POLICY, crl_refused);
                return;
        }
        cert_facts(r->tbs, r->tbs_len, serial, subject, sizeof(subject));
        if (r->op == 'S' && (s->pol == NULL || !s->pol->direct_issue)) {
                refuse(s, c, "engine", serial, op, GMCA_ERR_POLICY, direct_refused);
                return;
        }
        if (s->pol != NULL && s->pol->audit != NULL && s->nqueue == AUDIT_QUEUE_MAX) {
                reply_err(c, GMCA_ERR_DB,
                          "the audit log cannot be written: no certificate is signed until it "
                          "can");
                return;
        }
        rc = k->signer->sign(k->signer->arg, r->tbs, r->tbs_len, sig, &siglen, &le);
        if (rc == 0 && (siglen == 0 || siglen > GMCA_SM2_SIG_MAX))
                rc = gmca_error_set(&le, GMCA_ERR_INTERNAL, "CA %s: signer returned %zu bytes",
                                    k->name, siglen);
        if (rc != 0 && le.msg[0] == '\0')
                gmca_error_set(&le, rc, "CA %s: signing failed", k->name);
        gmca_ossl_clear();
        if (rc != 0) {
                reply_err(c, rc, le.msg);
                return;
        }
        (void)audit_queue(s, GMCA_EV_ENGINE_SIGN, "engine", 1, serial,
                          json_pack("{s:s, s:s, s:s, s:s}", "ca", k->name, "serial", serial,
                                    "subject", subject, "authorisation",
                                    r->op == 'T' ? "custodians" : "direct"));
        reply(c, ST_OK, sig, siglen, NULL, 0);
        OPENSSL_cleanse(sig, sizeof(sig));
}

/* ---- RA requests ---- */

static uint64_t load64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

static size_t nonce_hash(const struct server *s, const uint8_t *n)
{
        uint64_t h = (load64(n) ^ s->salt) * 0x9e3779b97f4a7c15ull;

        h ^= load64(n + 8) + (h >> 29);
        h *= 0xbf58476d1ce4e5b9ull;
        return (size_t)(h >> 17) & (NONCE_SLOTS - 1);
}

/* Slot of n, or of the empty slot where it would go. */
static struct nonce_slot *nonce_find(struct server *s, const uint8_t *n)
{
        size_t i = nonce_hash(s, n);

        /* Bounded: the table is never more than half full. */
        for (;;) {
                struct nonce_slot *slot = &s->nonces[i];

                if (slot->until == 0 || memcmp(slot->n, n, sizeof(slot->n)) == 0)
                        return slot;
                i = (i + 1) & (NONCE_SLOTS - 1);
        }
}

/* Keep only the nonces still inside the window. */
static int nonce_purge(struct server *s, int64_t now)
{
        struct nonce_slot *old = s->nonces, *fresh;

        if ((fresh = calloc(NONCE_SLOTS, sizeof(*fresh))) == NULL)
                return -1;
        s->nonces = fresh;
        s->nnonces = 0;
        for (size_t i = 0; i < NONCE_SLOTS; i++)
                if (old[i].until > now) {
                        *nonce_find(s, old[i].n) = old[i];
                        s->nnonces++;
                }
        free(old);
        return 0;
}

/*
 * Record the nonce of a request whose signature verified: 0, or
 * GMCA_ERR_AUTH if seen within the window, GMCA_ERR_LIMIT if the window
 * holds NONCE_MAX already.
 */
static int nonce_take(struct server *s, const char *hex, int64_t now, struct gmca_error *e)
{
        uint8_t n[GMCA_ENGINE_NONCE_HEX / 2];
        struct nonce_slot *slot;
        size_t got = 0;

        if (gmca_unhex(hex, n, sizeof(n), &got) != 0 || got != sizeof(n))
                return gmca_error_set(e, GMCA_ERR_INVALID, "RA request: bad nonce");
        if (s->nonces == NULL && (s->nonces = calloc(NONCE_SLOTS, sizeof(*s->nonces))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory for nonces");
        slot = nonce_find(s, n);
        if (slot->until != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "RA request: nonce replayed");
        if (s->nnonces >= NONCE_MAX) {
                if (nonce_purge(s, now) != 0)
                        return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory for nonces");
                if (s->nnonces >= NONCE_MAX)
                        return gmca_error_set(e, GMCA_ERR_LIMIT,
                                              "RA request: over %d requests within %d s", NONCE_MAX,
                                              2 * GMCA_AUTH_SKEW);
                slot = nonce_find(s, n);
        }
        memcpy(slot->n, n, sizeof(n));
        slot->until = now + 2 * GMCA_AUTH_SKEW;
        s->nnonces++;
        return 0;
}

static const char *subop_name(enum gmca_engine_subop op)
{
        return op == GMCA_RA_OP_ISSUE     ? "issue"
               : op == GMCA_RA_OP_SEAL    ? "seal"
               : op == GMCA_RA_OP_OCSP    ? "ocsp"
               : op == GMCA_RA_OP_RECOVER ? "recover"
               : op == GMCA_RA_OP_REVOKE  ? "revoke"
               : op == GMCA_RA_OP_DISABLE ? "disable"
                                          : "unseal";
}

static void ra_seal(struct server *s, struct conn *c, const struct gmca_engine_ra_req *q,
                    const char *actor)
{
        const size_t over = GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN;
        const uint8_t *key = s->pol->pii_key;
        const uint8_t *aad = (const uint8_t *)q->aad;
        size_t aadlen = strlen(q->aad), n;
        struct gmca_error le;
        uint8_t *out = NULL;
        int rc;

        gmca_error_clear(&le);
        if (key == NULL) {
                refuse(s, c, actor, q->aad, subop_name(q->subop), GMCA_ERR_STATE,
                       "this engine holds no key for sensitive fields");
                return;
        }
        n = q->subop == GMCA_RA_OP_SEAL ? q->value_len + over : q->value_len - over;
        if ((out = OPENSSL_malloc(n)) == NULL) {
                reply_err(c, GMCA_ERR_NOMEM, "out of memory");
                return;
        }
        if (q->subop == GMCA_RA_OP_SEAL) {
                if ((rc = gmca_rand_bytes(out, GMCA_SM4_GCM_IV_LEN, &le)) == 0)
                        rc = gmca_sm4_gcm_encrypt(key, out, aad, aadlen, q->value, q->value_len,
                                                  out + GMCA_SM4_GCM_IV_LEN,
                                                  out + GMCA_SM4_GCM_IV_LEN + q->value_len, &le);
        } else {
                rc =
                    gmca_sm4_gcm_decrypt(key, q->value, aad, aadlen, q->value + GMCA_SM4_GCM_IV_LEN,
                                         n, q->value + GMCA_SM4_GCM_IV_LEN + n, out, &le);
                if (rc == GMCA_ERR_VERIFY) {
                        gmca_error_clear(&le);
                        gmca_error_set(&le, rc,
                                       "sealed value does not authenticate under aad \"%s\" "
                                       "(altered, or moved from another field)",
                                       q->aad);
                }
        }
        gmca_ossl_clear();
        /*
         * Every value the engine opens is on its own audit record (the field,
         * never the value), so a front that unseals behind the RA's back
         * (§8.4) still leaves a trace it cannot write away; no record, no value.
         */
        if (rc == 0 && q->subop == GMCA_RA_OP_UNSEAL &&
            audit_queue(s, GMCA_EV_ENGINE_REQUEST, actor, 1, q->aad,
                        json_pack("{s:s}", "op", "unseal")) != 0) {
                rc = GMCA_ERR_STATE;
                gmca_error_set(&le, rc, "engine: audit queue full; try again");
        }
        if (rc != 0)
                refuse(s, c, actor, q->aad, subop_name(q->subop), rc, le.msg);
        else
                reply(c, ST_OK, out, n, NULL, 0);
        OPENSSL_clear_free(out, n);
}

/* SUBOP ocsp: a responder certificate within the bound of ca_ocsp.h; refusals audited. */
static void ra_ocsp(struct server *s, struct conn *c, const struct gmca_engine_ra_req *q,
                    const char *actor)
{
        struct gmca_error le;
        uint8_t *der = NULL;
        size_t len = 0;
        int rc;

        if (s->pol->ocsp_issue == NULL) {
                refuse(s, c, actor, q->ca, "ocsp", GMCA_ERR_STATE,
                       "this engine issues no OCSP responder certificates");
                return;
        }
        gmca_error_clear(&le);
        rc = s->pol->ocsp_issue(s->pol->arg, q->ca, q->value, q->value_len, q->seconds, actor, &der,
                                &len, &le);
        gmca_ossl_clear();
        if (rc != 0) {
                refuse(s, c, actor, q->ca, "ocsp", rc, le.msg[0] ? le.msg : gmca_err_name(rc));
                return;
        }
        reply(c, ST_OK, der, len, NULL, 0);
        OPENSSL_free(der);
}

/*
 * SUBOP recover and revoke: the recovery (km.recover) and the revocation
 * (cert.revoke, ra.revocation.complete) audit their own outcome.
 */
static void ra_recover(struct server *s, struct conn *c, const struct gmca_engine_ra_req *q,
                       const char *actor)
{
        int revoke = q->subop == GMCA_RA_OP_REVOKE;
        int (*hook)(void *, int64_t, struct gmca_error *) =
            revoke ? s->pol->ra_revoke : s->pol->ra_recover;
        struct gmca_error le;
        char id[24];
        int rc;

        snprintf(id, sizeof(id), "%lld", (long long)q->app_id);
        if (hook == NULL) {
                refuse(s, c, actor, id, subop_name(q->subop), GMCA_ERR_STATE,
                       revoke ? "this engine carries out no RA revocations"
                              : "this engine carries out no key recoveries");
                return;
        }
        gmca_error_clear(&le);
        if ((rc = hook(s->pol->arg, q->app_id, &le)) != 0) {
                gmca_ossl_clear();
                reply_err(c, rc, le.msg[0] ? le.msg : gmca_err_name(rc));
                return;
        }
        reply(c, ST_OK, NULL, 0, NULL, 0);
}

/* SUBOP disable: the disable audits its own outcome (operator.disable). */
static void ra_disable(struct server *s, struct conn *c, const struct gmca_engine_ra_req *q,
                       const char *actor)
{
        struct gmca_error le;
        int rc;

        if (s->pol->op_disable == NULL) {
                refuse(s, c, actor, q->op_name, "disable", GMCA_ERR_STATE,
                       "this engine disables no operators");
                return;
        }
        gmca_error_clear(&le);
        if ((rc = s->pol->op_disable(s->pol->arg, q->op_name, q->value, q->value_len, &le)) != 0) {
                gmca_ossl_clear();
                reply_err(c, rc, le.msg[0] ? le.msg : gmca_err_name(rc));
                return;
        }
        reply(c, ST_OK, NULL, 0, NULL, 0);
}

static void handle_ra(struct server *s, struct conn *c, const struct gmca_engine_request *r)
{
        struct gmca_engine_ra_req q;
        struct gmca_error le;
        X509 *cert = NULL;
        EVP_PKEY *pub;
        int64_t now;
        char actor[GMCA_NAME_MAX], msg[GMCA_ERROR_MSG_MAX], serial[GMCA_SERIAL_HEX_MAX];
        int rc;

        gmca_error_clear(&le);
        if (gmca_engine_parse_ra(r->payload, r->payload_len, &q, &le) != 0) {
                refuse(s, c, "ra", NULL, "R", le.code, le.msg);
                return;
        }
        snprintf(actor, sizeof(actor), "ra:%s", q.serial);
        if (s->pol == NULL || s->pol->ra_cert == NULL) {
                refuse(s, c, actor, NULL, subop_name(q.subop), GMCA_ERR_STATE,
                       "this engine takes no RA requests");
                return;
        }
        if ((rc = s->pol->ra_cert(s->pol->arg, q.serial, &cert, &le)) != 0) {
                if (le.msg[0] == '\0')
                        gmca_error_set(&le, rc, "RA certificate %s refused", q.serial);
                refuse(s, c, actor, NULL, subop_name(q.subop),
                       rc == GMCA_ERR_DB ? rc : GMCA_ERR_AUTH, le.msg);
                goto out;
        }
        pub = X509_get0_pubkey(cert);
        if (pub == NULL || gmca_sm2_verify(pub, GMCA_SM2_DEFAULT_ID, r->payload, r->payload_len,
                                           r->sig, r->sig_len, &le) != 0) {
                snprintf(msg, sizeof(msg),
                         "RA request: SM2 signature does not verify with RA certificate %s "
                         "(ID " GMCA_SM2_DEFAULT_ID ")",
                         q.serial);
                refuse(s, c, actor, NULL, subop_name(q.subop), GMCA_ERR_AUTH, msg);
                goto out;
        }
        now = (int64_t)gmca_now();
        if (q.time > now + GMCA_AUTH_SKEW || q.time < now - GMCA_AUTH_SKEW) {
                snprintf(msg, sizeof(msg),
                         "RA request: stale: its time %lld is %lld s from the engine's clock "
                         "(%d allowed)",
                         (long long)q.time, (long long)(q.time > now ? q.time - now : now - q.time),
                         GMCA_AUTH_SKEW);
                refuse(s, c, actor, NULL, subop_name(q.subop), GMCA_ERR_AUTH, msg);
                goto out;
        }
        gmca_error_clear(&le);
        if ((rc = nonce_take(s, q.nonce, now, &le)) != 0) {
                refuse(s, c, actor, NULL, subop_name(q.subop), rc, le.msg);
                goto out;
        }
        if (q.subop == GMCA_RA_OP_OCSP) {
                ra_ocsp(s, c, &q, actor);
                goto out;
        }
        if (q.subop == GMCA_RA_OP_RECOVER || q.subop == GMCA_RA_OP_REVOKE) {
                ra_recover(s, c, &q, actor);
                goto out;
        }
        if (q.subop == GMCA_RA_OP_DISABLE) {
                ra_disable(s, c, &q, actor);
                goto out;
        }
        if (q.subop != GMCA_RA_OP_ISSUE) {
                ra_seal(s, c, &q, actor);
                goto out;
        }
        snprintf(msg, sizeof(msg), "%lld", (long long)q.app_id);
        if (s->pol->ra_issue == NULL) {
                refuse(s, c, actor, msg, "issue", GMCA_ERR_STATE,
                       "this engine issues no applications");
                goto out;
        }
        /* The issuance audits its own outcome (ra.application.issue). */
        gmca_error_clear(&le);
        if ((rc = s->pol->ra_issue(s->pol->arg, q.app_id, serial, &le)) != 0) {
                gmca_ossl_clear();
                reply_err(c, rc, le.msg[0] ? le.msg : gmca_err_name(rc));
                goto out;
        }
        reply(c, ST_OK, serial, strlen(serial), NULL, 0);
out:
        X509_free(cert);
        gmca_ossl_clear();
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

/*
 * 'O': a ResponseData signed with the CA key only once the store confirms
 * every claim in it (ca_ocsp.h). A refusal is audited: a process that can
 * reach the socket tried to have the CA sign something untrue.
 */
static void handle_ocsp(struct server *s, struct conn *c, const struct gmca_engine_request *r)
{
        const struct gmca_engine_key *k = NULL;
        struct gmca_error le;
        uint8_t sig[GMCA_SM2_SIG_MAX];
        size_t siglen = 0;
        char msg[160];
        int rc;

        for (size_t i = 0; i < s->nkeys && k == NULL; i++)
                if (strcmp(s->keys[i].name, r->name) == 0)
                        k = &s->keys[i];
        if (k == NULL) {
                snprintf(msg, sizeof(msg), "no CA %s in this engine", r->name);
                reply_err(c, GMCA_ERR_NOTFOUND, msg);
                return;
        }
        if (s->pol == NULL || s->pol->ocsp_check == NULL) {
                refuse(s, c, "engine", k->name, "O", GMCA_ERR_STATE,
                       "this engine signs no OCSP responses");
                return;
        }
        gmca_error_clear(&le);
        if ((rc = s->pol->ocsp_check(s->pol->arg, k->name, r->tbs, r->tbs_len, &le)) != 0) {
                gmca_ossl_clear();
                refuse(s, c, "engine", k->name, "O", rc, le.msg[0] ? le.msg : gmca_err_name(rc));
                return;
        }
        rc = k->signer->sign(k->signer->arg, r->tbs, r->tbs_len, sig, &siglen, &le);
        if (rc == 0 && (siglen == 0 || siglen > GMCA_SM2_SIG_MAX))
                rc = gmca_error_set(&le, GMCA_ERR_INTERNAL, "CA %s: signer returned %zu bytes",
                                    k->name, siglen);
        gmca_ossl_clear();
        if (rc != 0) {
                reply_err(c, rc, le.msg[0] ? le.msg : "signing failed");
                return;
        }
        reply(c, ST_OK, sig, siglen, NULL, 0);
        OPENSSL_cleanse(sig, sizeof(sig));
}

static void put64(uint8_t *p, int64_t v)
{
        gmca_put_be32(p, (uint32_t)((uint64_t)v >> 32));
        gmca_put_be32(p + 4, (uint32_t)v);
}

/*
 * 'C': CRLs made here, from the engine's store, clock and configuration
 * (the policy hook runs the library's CRL code with the engine's keys). The
 * caller picks the CA and the kind; the content is the engine's. The hook
 * audits what it makes and what it refuses (crl.generate, actor "engine",
 * requested_by the caller's claim).
 */
static void handle_crl(struct server *s, struct conn *c, const struct gmca_engine_request *r)
{
        const struct gmca_engine_crl_req *q = &r->crl;
        struct gmca_engine_crl_res res;
        struct gmca_error le;
        uint8_t out[5 * 8 + 4];
        char msg[160];
        int rc, found = q->kind == GMCA_ENGINE_CRL_PASS;

        for (size_t i = 0; i < s->nkeys && !found; i++)
                found = strcmp(s->keys[i].name, r->name) == 0;
        if (!found) {
                snprintf(msg, sizeof(msg), "no CA %s in this engine", r->name);
                reply_err(c, GMCA_ERR_NOTFOUND, msg);
                return;
        }
        if (s->pol == NULL || s->pol->crl == NULL) {
                refuse(s, c, "engine", r->name, "C", GMCA_ERR_STATE, "this engine makes no CRLs");
                return;
        }
        memset(&res, 0, sizeof(res));
        gmca_error_clear(&le);
        rc = s->pol->crl(s->pol->arg, r->name, q, &res, &le);
        gmca_ossl_clear();
        if (q->kind == GMCA_ENGINE_CRL_PASS) {
                /* A pass reports how far it got even when one CA failed. */
                put64(out, res.made);
                put64(out + 8, res.next_due);
                gmca_put_be32(out + 16, (uint32_t)(int32_t)rc);
                reply(c, ST_OK, out, 20, rc != 0 ? le.msg : NULL,
                      rc != 0 ? strnlen(le.msg, MSG_WIRE_MAX) : 0);
                return;
        }
        if (rc != 0) {
                reply_err(c, rc, le.msg[0] ? unprefixed(le.msg) : gmca_err_name(rc));
                return;
        }
        put64(out, res.number);
        put64(out + 8, res.base_number);
        put64(out + 16, res.this_update);
        put64(out + 24, res.next_update);
        put64(out + 32, res.entries);
        reply(c, ST_OK, out, 40, NULL, 0);
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
        case 'T':
                handle_sign(s, c, &r);
                break;
        case 'R':
                handle_ra(s, c, &r);
                break;
        case 'O':
                handle_ocsp(s, c, &r);
                break;
        case 'C':
                handle_crl(s, c, &r);
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
        OPENSSL_cleanse(c->out, c->out_len); /* an unsealed value, say */
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
                void (*idle)(void *) = NULL;
                size_t np = 2, nc;
                time_t now = mono();
                int timeout = -1;

                /* Idle connections go first, so that the array below matches. A
                 * frame begun must arrive within FRAME_SEC: a stuck peer keeps
                 * no slot for long. */
                for (size_t i = s->nconns; i-- > 0;)
                        if (now - s->conns[i].last >= conn_limit(&s->conns[i]))
                                conn_close(s, i);
                pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
                pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
                for (size_t i = 0; i < s->nconns; i++) {
                        const struct conn *c = &s->conns[i];
                        int left = (int)(c->last + conn_limit(c) - now);

                        pfd[np++] = (struct pollfd){.fd = c->fd,
                                                    .events = c->out != NULL ? POLLOUT : POLLIN};
                        if (left < 1)
                                left = 1;
                        if (timeout < 0 || left * 1000 < timeout)
                                timeout = left * 1000;
                }
                idle = s->pol != NULL ? s->pol->idle : NULL;
                if ((s->nqueue > 0 || idle != NULL) && (timeout < 0 || timeout > 1000))
                        timeout = 1000; /* audit records to retry, idle work */
                if (idle != NULL && now >= s->idle_at) {
                        idle(s->pol->arg);
                        s->idle_at = mono() + 1;
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
                /* Replies are out: the records they caused can be written now. */
                audit_flush(s);
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
                      const struct gmca_engine_policy *policy, int ready_fd, struct gmca_error *e)
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
        s->pol = policy;
        if (gmca_rand_bytes((uint8_t *)&s->salt, sizeof(s->salt), e) != 0) {
                rc = e && e->code ? e->code : GMCA_ERR_CRYPTO;
                goto out;
        }
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
                s->audit_retry = 0;
                audit_flush(s); /* a last try; what still fails is lost with the engine */
                for (size_t i = 0; i < s->nqueue; i++)
                        free(s->queue[i].detail);
                free(s->nonces);
                OPENSSL_cleanse(s, sizeof(*s));
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
        if (code < GMCA_ERR_FORBIDDEN || code > GMCA_ERR_INTERNAL)
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

/* 'S' (authz NULL) or 'T'; 'O' when ocsp is set. */
static int sign_req(struct gmca_engine_client *c, const char *ca, const uint8_t *authz, int ocsp,
                    const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen,
                    struct gmca_error *e)
{
        uint8_t head[4 + 3 + GMCA_ENGINE_NAME_MAX + GMCA_ENGINE_AUTHZ_LEN], *b = NULL;
        size_t nl, hl, macl = authz != NULL ? GMCA_ENGINE_AUTHZ_LEN : 0, n = 0;
        int rc;

        if (c == NULL || ca == NULL || tbs == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: nothing to sign");
        nl = strlen(ca);
        if (!name_ok(ca, nl))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: bad CA name");
        if (len > GMCA_ENGINE_FRAME_MAX - 3 - nl - macl)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "engine: TBS of %zu bytes over the cap",
                                      len);
        gmca_put_be32(head, (uint32_t)(3 + nl + macl + len));
        head[4] = ocsp ? 'O' : authz != NULL ? 'T' : 'S';
        head[5] = (uint8_t)(nl >> 8);
        head[6] = (uint8_t)nl;
        memcpy(head + 7, ca, nl);
        hl = 7 + nl;
        if (authz != NULL) {
                if ((rc = gmca_hmac_sm3(authz, GMCA_ENGINE_AUTHZ_LEN, tbs, len, head + hl, e)) != 0)
                        return rc;
                hl += macl;
        }
        if ((rc = request(c, head[4], head, hl, tbs, len, &b, &n, e)) != 0)
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

int gmca_engine_sign(struct gmca_engine_client *c, const char *ca, const uint8_t *tbs, size_t len,
                     uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e)
{
        return sign_req(c, ca, NULL, 0, tbs, len, sig, siglen, e);
}

int gmca_engine_sign_ocsp(struct gmca_engine_client *c, const char *ca, const uint8_t *rd,
                          size_t len, uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen,
                          struct gmca_error *e)
{
        return sign_req(c, ca, NULL, 1, rd, len, sig, siglen, e);
}

int gmca_engine_sign_authorised(struct gmca_engine_client *c, const char *ca,
                                const uint8_t authz[GMCA_ENGINE_AUTHZ_LEN], const uint8_t *tbs,
                                size_t len, uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen,
                                struct gmca_error *e)
{
        if (authz == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: no authorisation key");
        return sign_req(c, ca, authz, 0, tbs, len, sig, siglen, e);
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

static int64_t get64(const uint8_t *p)
{
        return (int64_t)((uint64_t)gmca_get_be32(p) << 32 | gmca_get_be32(p + 4));
}

int gmca_engine_crl(struct gmca_engine_client *c, const char *ca,
                    const struct gmca_engine_crl_req *q, struct gmca_engine_crl_res *res,
                    struct gmca_error *e)
{
        uint8_t head[4 + 3 + GMCA_ENGINE_NAME_MAX + 8 + GMCA_ENGINE_ACTOR_MAX], *b = NULL, *p;
        size_t nl, al, n = 0, want;
        int rc;

        if (c == NULL || ca == NULL || q == NULL || res == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: incomplete CRL request");
        nl = strlen(ca);
        al = strnlen(q->actor, GMCA_ENGINE_ACTOR_MAX);
        if (!name_ok(ca, nl) || !actor_ok((const uint8_t *)q->actor, al))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: bad CA name or actor");
        gmca_put_be32(head, (uint32_t)(3 + nl + 8 + al));
        head[4] = 'C';
        head[5] = (uint8_t)(nl >> 8);
        head[6] = (uint8_t)nl;
        memcpy(head + 7, ca, nl);
        p = head + 7 + nl;
        p[0] = (uint8_t)q->kind;
        p[1] = q->force ? 1 : 0;
        gmca_put_be32(p + 2, q->arg);
        p[6] = (uint8_t)(al >> 8);
        p[7] = (uint8_t)al;
        memcpy(p + 8, q->actor, al);
        if ((rc = request(c, 'C', head, 7 + nl + 8 + al, NULL, 0, &b, &n, e)) != 0)
                return rc;
        want = q->kind == GMCA_ENGINE_CRL_PASS ? 20 : 40;
        if (n < want || (q->kind != GMCA_ENGINE_CRL_PASS && n != want)) {
                free(b);
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: CRL reply of %zu bytes", n);
        }
        memset(res, 0, sizeof(*res));
        if (q->kind == GMCA_ENGINE_CRL_PASS) {
                res->made = get64(b);
                res->next_due = get64(b + 8);
                rc = gmca_get_be32(b + 16) == 0 ? 0 : reply_error(b + 16, n - 16, e);
        } else {
                res->number = get64(b);
                res->base_number = get64(b + 8);
                res->this_update = get64(b + 16);
                res->next_update = get64(b + 24);
                res->entries = get64(b + 32);
        }
        free(b);
        return rc;
}

static int engine_signer_sign(void *arg, const uint8_t *tbs, size_t len,
                              uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e)
{
        struct gmca_engine_signer *s = arg;

        return sign_req(s->client, s->ca, s->authz, 0, tbs, len, sig, siglen, e);
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

/* ---- RA requests (client) ---- */

/*
 * Sign and send one RA request: the payload header, then args (a, b: two
 * pieces, b may be NULL). On success *body is the reply (malloc'd).
 */
static int ra_request(struct gmca_engine_ra *ra, const char *subop, const void *a, size_t alen,
                      const void *b, size_t blen, uint8_t **body, size_t *bodylen,
                      struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX], nonce[GMCA_ENGINE_NONCE_HEX + 1], hdr[160];
        uint8_t rnd[GMCA_ENGINE_NONCE_HEX / 2], *frame = NULL, *sig = NULL;
        size_t hl, plen, siglen = 0, flen = 0;
        int n, rc;

        if (ra == NULL || ra->client == NULL || ra->key == NULL || ra->cert == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: RA client not set up");
        if (gmca_serial_hex(ra->cert, serial, sizeof(serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: RA certificate serial");
        if ((rc = gmca_rand_bytes(rnd, sizeof(rnd), e)) != 0)
                return rc;
        gmca_hex(rnd, sizeof(rnd), nonce);
        n = snprintf(hdr, sizeof(hdr), GMCA_ENGINE_RA_MAGIC "\n%s\n%lld\n%s\n%s\n", serial,
                     (long long)gmca_now(), nonce, subop);
        if (n < 0 || (size_t)n >= sizeof(hdr))
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "engine: RA request header");
        hl = (size_t)n;
        plen = hl + alen + blen;
        if (plen > GMCA_ENGINE_RA_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "engine: RA request of %zu bytes over %d",
                                      plen, GMCA_ENGINE_RA_MAX);
        flen = 4 + 1 + 4 + plen + GMCA_SM2_SIG_MAX;
        if ((frame = malloc(flen)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        memcpy(frame + 9, hdr, hl);
        if (alen > 0)
                memcpy(frame + 9 + hl, a, alen);
        if (blen > 0)
                memcpy(frame + 9 + hl + alen, b, blen);
        if ((rc = gmca_sm2_sign(ra->key, GMCA_SM2_DEFAULT_ID, frame + 9, plen, &sig, &siglen, e)) !=
            0)
                goto out;
        if (siglen < SIG_MIN || siglen > GMCA_SM2_SIG_MAX) {
                rc =
                    gmca_error_set(e, GMCA_ERR_CRYPTO, "engine: RA signature of %zu bytes", siglen);
                goto out;
        }
        memcpy(frame + 9 + plen, sig, siglen);
        gmca_put_be32(frame, (uint32_t)(1 + 4 + plen + siglen));
        frame[4] = 'R';
        gmca_put_be32(frame + 5, (uint32_t)plen);
        rc = request(ra->client, 'R', frame, 9 + plen + siglen, NULL, 0, body, bodylen, e);
out:
        OPENSSL_free(sig);
        OPENSSL_clear_free(frame, flen); /* it may hold a sensitive value */
        return rc;
}

int gmca_engine_ra_issue(struct gmca_engine_ra *ra, int64_t app_id,
                         char serial[GMCA_SERIAL_HEX_MAX], struct gmca_error *e)
{
        char id[24];
        uint8_t *b = NULL;
        size_t n = 0;
        int rc;

        if (app_id <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: application id %lld",
                                      (long long)app_id);
        snprintf(id, sizeof(id), "%lld", (long long)app_id);
        if ((rc = ra_request(ra, "issue", id, strlen(id), NULL, 0, &b, &n, e)) != 0)
                return rc;
        if (n == 0 || n >= GMCA_SERIAL_HEX_MAX || !all_of((const char *)b, n, "0123456789ABCDEF")) {
                free(b);
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: reply is not a serial");
        }
        memcpy(serial, b, n);
        serial[n] = '\0';
        free(b);
        return 0;
}

/* An RA request naming a record by its id (what: for messages), answered with nothing. */
static int ra_by_id(struct gmca_engine_ra *ra, const char *subop, const char *what, int64_t id,
                    struct gmca_error *e)
{
        char arg[24];
        uint8_t *b = NULL;
        size_t n = 0;
        int rc;

        if (id <= 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: %s id %lld", what,
                                      (long long)id);
        snprintf(arg, sizeof(arg), "%lld", (long long)id);
        if ((rc = ra_request(ra, subop, arg, strlen(arg), NULL, 0, &b, &n, e)) != 0)
                return rc;
        free(b);
        return n == 0 ? 0
                      : gmca_error_set(e, GMCA_ERR_INVALID, "engine: %s: unexpected reply", subop);
}

int gmca_engine_ra_recover(struct gmca_engine_ra *ra, int64_t id, struct gmca_error *e)
{
        return ra_by_id(ra, "recover", "recovery", id, e);
}

int gmca_engine_ra_recover_cb(void *arg, int64_t id, struct gmca_error *e)
{
        return gmca_engine_ra_recover(arg, id, e);
}

int gmca_engine_ra_revoke(struct gmca_engine_ra *ra, int64_t id, struct gmca_error *e)
{
        return ra_by_id(ra, "revoke", "revocation request", id, e);
}

int gmca_engine_ra_disable(struct gmca_engine_ra *ra, const char *name, const uint8_t *proof,
                           size_t len, struct gmca_error *e)
{
        char line[GMCA_ENGINE_NAME_MAX + 1];
        size_t nl = name != NULL ? strlen(name) : 0;
        uint8_t *b = NULL;
        size_t n = 0;
        int rc;

        if (!name_ok(name != NULL ? name : "", nl) || proof == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "engine: disable: operator name and signed request");
        memcpy(line, name, nl);
        line[nl] = '\n';
        if ((rc = ra_request(ra, "disable", line, nl + 1, proof, len, &b, &n, e)) != 0)
                return rc;
        free(b);
        return n == 0 ? 0
                      : gmca_error_set(e, GMCA_ERR_INVALID, "engine: disable: unexpected reply");
}

int gmca_engine_ra_ocsp(struct gmca_engine_ra *ra, const char *ca, const uint8_t *csr, size_t len,
                        int64_t seconds, uint8_t **der, size_t *derlen, struct gmca_error *e)
{
        char head[GMCA_ENGINE_NAME_MAX + 24];
        uint8_t *b = NULL;
        size_t n = 0;
        int rc, hl;

        if (ca == NULL || !name_ok(ca, strlen(ca)) || csr == NULL || len == 0 || seconds < 0 ||
            seconds > 999999999)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: ocsp: CA name, CSR, seconds");
        hl = snprintf(head, sizeof(head), "%s\n%lld\n", ca, (long long)seconds);
        if (hl < 0 || (size_t)hl >= sizeof(head))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: ocsp: CA name too long");
        if ((rc = ra_request(ra, "ocsp", head, (size_t)hl, csr, len, &b, &n, e)) != 0)
                return rc;
        if (n == 0) {
                free(b);
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: empty ocsp reply");
        }
        *der = b;
        *derlen = n;
        return 0;
}

int gmca_engine_ra_seal(struct gmca_engine_ra *ra, int unseal, const char *aad, const uint8_t *in,
                        size_t n, uint8_t **out, size_t *outlen, struct gmca_error *e)
{
        const size_t over = GMCA_SM4_GCM_IV_LEN + GMCA_SM4_GCM_TAG_LEN;
        size_t al = aad != NULL ? strlen(aad) : 0, got = 0;
        char line[GMCA_ENGINE_AAD_MAX + 2];
        uint8_t *b = NULL;
        int rc;

        if (al == 0 || al > GMCA_ENGINE_AAD_MAX || strchr(aad, '\n') != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: aad of 1..%d bytes, one line",
                                      GMCA_ENGINE_AAD_MAX);
        if (in == NULL || n == 0 || n > GMCA_ENGINE_SEAL_MAX + (unseal ? over : 0))
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: value of %zu bytes to %s", n,
                                      unseal ? "unseal" : "seal");
        memcpy(line, aad, al);
        line[al] = '\n';
        if ((rc = ra_request(ra, unseal ? "unseal" : "seal", line, al + 1, in, n, &b, &got, e)) !=
            0)
                return rc;
        if (unseal ? got + over != n : got != n + over) {
                OPENSSL_cleanse(b, got);
                free(b);
                return gmca_error_set(e, GMCA_ERR_INVALID, "engine: %s reply of %zu bytes",
                                      unseal ? "unseal" : "seal", got);
        }
        *out = b;
        *outlen = got;
        return 0;
}

static int cb_seal(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                   size_t *outlen, struct gmca_error *e)
{
        return gmca_engine_ra_seal(arg, 0, aad, in, n, out, outlen, e);
}

static int cb_unseal(void *arg, const char *aad, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *outlen, struct gmca_error *e)
{
        return gmca_engine_ra_seal(arg, 1, aad, in, n, out, outlen, e);
}

void gmca_engine_ra_sealer(struct gmca_engine_ra *ra, struct gmca_pii_sealer *out)
{
        out->seal = cb_seal;
        out->unseal = cb_unseal;
        out->arg = ra;
}

int gmca_engine_ra_issue_cb(void *arg, int64_t app_id, char serial[GMCA_SERIAL_HEX_MAX],
                            struct gmca_error *e)
{
        return gmca_engine_ra_issue(arg, app_id, serial, e);
}
