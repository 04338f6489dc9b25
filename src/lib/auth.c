/*
 * auth: roles and what each may do (CPS §6.2.3), the signature base of an
 * operator's API request, signing it (client side), checking it (server
 * side: who, when, which nonce, which key, which certificate), and the
 * proofs the RA keeps so that the CA engine can check every workflow step
 * again before it signs. The operators' table itself is auth_operator.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth.h"
#include "crypto.h"
#include "store_internal.h"
#include "util.h"
#include "x509.h"

#define BASE_MAGIC "gmca-request-v1"
#define BASE_LINES 7
#define METHOD_MAX 15       /* bytes; struct gmca_auth_proof.method holds it with its NUL */
#define TARGET_MAX 4095     /* bytes; struct gmca_auth_proof.target holds it with its NUL */
#define TIMESTAMP_MAX 19    /* decimal digits of a positive int64 */
#define PROOF_BASE_MAX 8192 /* bytes of a proof's base, its NUL included */
#define SIG_MAX 80          /* bytes of a DER SM2 signature (72 at most, with room) */
#define NONCE_RAND 18       /* random bytes of a fresh nonce: 24 base64url characters */

/* ---- roles and the permission table ---- */

static const struct {
        unsigned bit;
        const char *name;
} roles[] = {
    {GMCA_ROLE_BUSINESS_ADMIN, "business_admin"},
    {GMCA_ROLE_TEMPLATE_ADMIN, "template_admin"},
    {GMCA_ROLE_BUSINESS_OPERATOR, "business_operator"},
    {GMCA_ROLE_SUPER_ADMIN, "super_admin"},
    {GMCA_ROLE_SYSTEM_ADMIN, "system_admin"},
    {GMCA_ROLE_AUDIT_ADMIN, "audit_admin"},
};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

#define BA GMCA_ROLE_BUSINESS_ADMIN
#define TA GMCA_ROLE_TEMPLATE_ADMIN
#define BO GMCA_ROLE_BUSINESS_OPERATOR
#define SU GMCA_ROLE_SUPER_ADMIN
#define SY GMCA_ROLE_SYSTEM_ADMIN
#define AU GMCA_ROLE_AUDIT_ADMIN

/*
 * The permission table (auth.h, enum gmca_action). Data entry, vetting and
 * revocation requests are the business operators' (制证员) and their
 * admins'; decisions and completing a revocation are the business admin's
 * alone; the audit admin reads (applications, revocations, certificates,
 * operators, the audit log, the system's status) and changes nothing; the
 * super admin manages operators; the system admin runs CRLs and reads the
 * system's status; the template admin reads, replaces, enables and disables
 * the RA's profiles (template.h; the CA and internal profiles stay the
 * custodians').
 */
static const struct {
        const char *name;
        unsigned roles;
} actions[GMCA_ACT_COUNT] = {
    [GMCA_ACT_WHOAMI] = {"whoami", GMCA_ROLE_ALL},
    [GMCA_ACT_OPERATOR_LIST] = {"operator.list", SU | AU},
    [GMCA_ACT_OPERATOR_DISABLE] = {"operator.disable", SU},
    [GMCA_ACT_APPLICANT_CREATE] = {"applicant.create", BO | BA},
    [GMCA_ACT_APPLICANT_READ] = {"applicant.read", BO | BA},
    [GMCA_ACT_APPLICANT_READ_FULL] = {"applicant.read_full", BA},
    [GMCA_ACT_APPLICANT_CORRECT] = {"applicant.correct", BO | BA},
    [GMCA_ACT_APPLICATION_SUBMIT] = {"application.submit", BO | BA},
    [GMCA_ACT_APPLICATION_READ] = {"application.read", BO | BA | AU},
    [GMCA_ACT_APPLICATION_VET] = {"application.vet", BO | BA},
    [GMCA_ACT_APPLICATION_DECIDE] = {"application.decide", BA},
    [GMCA_ACT_REVOCATION_REQUEST] = {"revocation.request", BO | BA},
    [GMCA_ACT_REVOCATION_COMPLETE] = {"revocation.complete", BA},
    [GMCA_ACT_REVOCATION_READ] = {"revocation.read", BO | BA | AU},
    [GMCA_ACT_CERT_READ] = {"cert.read", BO | BA | AU},
    [GMCA_ACT_PROFILE_READ] = {"profile.read", TA | BA | BO},
    [GMCA_ACT_CRL_GENERATE] = {"crl.generate", SY | BA},
    [GMCA_ACT_AUDIT_READ] = {"audit.read", AU},
    [GMCA_ACT_PROFILE_WRITE] = {"profile.write", TA},
    [GMCA_ACT_SYSTEM_READ] = {"system.read", SY | AU},
    [GMCA_ACT_RECOVERY_REQUEST] = {"recovery.request", BO | BA},
    [GMCA_ACT_RECOVERY_APPROVE] = {"recovery.approve", BA},
    [GMCA_ACT_RECOVERY_READ] = {"recovery.read", BO | BA | AU},
    /* Decision-support statistics (CPS §4.4.4): for those who run the service, not data entry. */
    [GMCA_ACT_STATS_READ] = {"stats.read", BA | SY | AU},
};

/*
 * Separation of duties (CPS §6.2.3: "如果一个人担任了完成某一职能的角色，
 * 就不能再担任完成另一特定职能的角色"). One person holds one role; the
 * only pairs allowed are
 *     template_admin + business_admin   (the business admin keeps the
 *                                        templates the business uses)
 *     system_admin   + template_admin   (templates are configuration)
 * and every other pair is refused, in particular:
 *     audit_admin  with any other role  (the auditor audits everyone)
 *     super_admin  with business_admin, business_operator, template_admin
 *                                       (who makes operators does no business)
 *     business_admin with business_operator (the decision is another person's)
 *     system_admin with business_admin or business_operator
 *     super_admin + system_admin, template_admin + business_operator
 *                                       (not among the allowed pairs)
 * A set of three roles always contains a refused pair.
 */
static const unsigned allowed_pairs[] = {TA | BA, SY | TA};

unsigned gmca_role_from_name(const char *name)
{
        if (name == NULL)
                return 0;
        for (size_t i = 0; i < NROLES; i++)
                if (strcmp(roles[i].name, name) == 0)
                        return roles[i].bit;
        return 0;
}

const char *gmca_role_name(unsigned role_bit)
{
        for (size_t i = 0; i < NROLES; i++)
                if (roles[i].bit == role_bit)
                        return roles[i].name;
        return NULL;
}

int gmca_roles_parse(const char *text, unsigned *out, struct gmca_error *e)
{
        char one[GMCA_ROLES_TEXT_MAX];
        unsigned bits = 0, bit;
        const char *p, *end;
        size_t n, count = 0;

        if (text == NULL || text[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_INVALID, "roles: none given");
        if (strlen(text) >= GMCA_ROLES_TEXT_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "roles: over %d bytes",
                                      GMCA_ROLES_TEXT_MAX - 1);
        for (p = text;; p = end + 1) {
                end = strchr(p, ',');
                n = end != NULL ? (size_t)(end - p) : strlen(p);
                memcpy(one, p, n);
                one[n] = '\0';
                if (n == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "roles: empty role in \"%s\"",
                                              text);
                if ((bit = gmca_role_from_name(one)) == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "roles: unknown role \"%s\" (business_admin, "
                                              "template_admin, business_operator, super_admin, "
                                              "system_admin, audit_admin)",
                                              one);
                if (bits & bit)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "roles: %s given twice", one);
                bits |= bit;
                if (end == NULL || ++count >= NROLES)
                        break;
        }
        if (end != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "roles: more than %zu", NROLES);
        *out = bits;
        return 0;
}

void gmca_roles_format(unsigned bits, char out[GMCA_ROLES_TEXT_MAX])
{
        size_t used = 0;

        out[0] = '\0';
        for (size_t i = 0; i < NROLES; i++) {
                if (!(bits & roles[i].bit))
                        continue;
                used += (size_t)snprintf(out + used, GMCA_ROLES_TEXT_MAX - used, "%s%s",
                                         used ? "," : "", roles[i].name);
        }
}

int gmca_auth_roles_conflict(unsigned bits, struct gmca_error *e)
{
        for (size_t i = 0; i < NROLES; i++) {
                for (size_t j = i + 1; j < NROLES; j++) {
                        unsigned pair = roles[i].bit | roles[j].bit;
                        int ok = 0;

                        if ((bits & pair) != pair)
                                continue;
                        for (size_t k = 0; k < sizeof(allowed_pairs) / sizeof(allowed_pairs[0]);
                             k++)
                                ok |= allowed_pairs[k] == pair;
                        if (!ok)
                                return gmca_error_set(e, GMCA_ERR_POLICY,
                                                      "roles: CPS §6.2.3: one person may not be "
                                                      "both %s and %s",
                                                      roles[i].name, roles[j].name);
                }
        }
        return 0;
}

const char *gmca_action_name(enum gmca_action a)
{
        if ((unsigned)a >= GMCA_ACT_COUNT)
                return "unknown";
        return actions[a].name;
}

unsigned gmca_action_roles(enum gmca_action a)
{
        if ((unsigned)a >= GMCA_ACT_COUNT)
                return 0;
        return actions[a].roles;
}

int gmca_auth_allowed(unsigned bits, enum gmca_action a, struct gmca_error *e)
{
        char text[GMCA_ROLES_TEXT_MAX];

        if ((bits & gmca_action_roles(a)) != 0)
                return 0;
        gmca_roles_format(bits, text);
        return gmca_error_set(e, GMCA_ERR_FORBIDDEN, "role%s %s may not %s",
                              strchr(text, ',') != NULL ? "s" : "", text[0] ? text : "(none)",
                              gmca_action_name(a));
}

/* ---- the signature base ---- */

void gmca_auth_fingerprint(const uint8_t *der, size_t len, char out[GMCA_AUTH_FPR_LEN + 1])
{
        uint8_t md[GMCA_SM3_LEN];

        if (gmca_sm3(der, len, md) != 0) {
                /* Cannot happen with a working libcrypto; never match anything. */
                memset(out, 'x', GMCA_AUTH_FPR_LEN);
                out[GMCA_AUTH_FPR_LEN] = '\0';
                return;
        }
        gmca_hex(md, sizeof(md), out);
}

static int lower_hex64(const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return i == GMCA_AUTH_FPR_LEN;
}

static int valid_method(const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (s[i] < 'A' || s[i] > 'Z')
                        return 0;
        return i >= 1 && i <= METHOD_MAX;
}

/* A request target: starts with '/', no control characters, at most TARGET_MAX
 * bytes. */
static int valid_target(const char *s)
{
        size_t i;

        if (s[0] != '/')
                return 0;
        for (i = 0; s[i] != '\0'; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || i >= TARGET_MAX)
                        return 0;
        return 1;
}

/* Canonical decimal of a non-negative int64 (no sign, no leading zero). */
static int parse_timestamp(const char *s, int64_t *out)
{
        int64_t v = 0;
        size_t i;

        if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
                return -1;
        for (i = 0; s[i] != '\0'; i++) {
                if (s[i] < '0' || s[i] > '9' || i >= TIMESTAMP_MAX)
                        return -1;
                if (v > (INT64_MAX - (s[i] - '0')) / 10)
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

static int valid_nonce(const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0' && i <= GMCA_AUTH_NONCE_MAX; i++) {
                char c = s[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-'))
                        return 0;
        }
        return i >= GMCA_AUTH_NONCE_MIN && i <= GMCA_AUTH_NONCE_MAX;
}

/* The base from checked fields and a body digest already in hex. */
static int base_join(const char *method, const char *target, const char *ts, const char *nonce,
                     const char *body_hex, const char *fpr, char **base, struct gmca_error *e)
{
        size_t len = strlen(BASE_MAGIC) + strlen(method) + strlen(target) + strlen(ts) +
                     strlen(nonce) + strlen(body_hex) + strlen(fpr) + BASE_LINES;
        char *b = malloc(len);

        if (b == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        snprintf(b, len, "%s\n%s\n%s\n%s\n%s\n%s\n%s", BASE_MAGIC, method, target, ts, nonce,
                 body_hex, fpr);
        *base = b;
        return 0;
}

int gmca_auth_base(const char *method, const char *target, const char *timestamp, const char *nonce,
                   const uint8_t *body, size_t body_len, const char *fpr, char **base,
                   struct gmca_error *e)
{
        uint8_t md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1];
        int64_t ts;

        if (method == NULL || !valid_method(method))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "request: method must be 1..%d upper-case letters",
                                      METHOD_MAX);
        if (target == NULL || !valid_target(target))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "request: target must start with '/', have no control "
                                      "characters and at most %d bytes",
                                      TARGET_MAX);
        if (timestamp == NULL || parse_timestamp(timestamp, &ts) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "request: X-Gmca-Timestamp must be Unix seconds in decimal");
        if (nonce == NULL || !valid_nonce(nonce))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "request: X-Gmca-Nonce must be %d..%d of [A-Za-z0-9_-]",
                                      GMCA_AUTH_NONCE_MIN, GMCA_AUTH_NONCE_MAX);
        if (fpr == NULL || !lower_hex64(fpr))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "request: X-Gmca-Operator must be %d lower-case hex digits",
                                      GMCA_AUTH_FPR_LEN);
        if (body == NULL && body_len != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "request: body missing");
        if (body_len > GMCA_AUTH_BODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "request: body over %u bytes",
                                      GMCA_AUTH_BODY_MAX);
        if (gmca_sm3(body != NULL ? body : (const uint8_t *)"", body_len, md) != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "request: SM3 of the body failed");
        gmca_hex(md, sizeof(md), hex);
        return base_join(method, target, timestamp, nonce, hex, fpr, base, e);
}

/* ---- base64 (the signature header) ---- */

static void b64_encode(const uint8_t *in, size_t len, char *out)
{
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/*
 * Strict base64 with padding: only its canonical encoding (re-encoded and
 * compared), at most cap bytes decoded. -1 if not.
 */
static int b64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
        uint8_t tmp[3 * 160 / 4];
        char again[sizeof(tmp) / 3 * 4 + 1];
        size_t n = strlen(in), len;
        int dl;

        if (n == 0 || n % 4 != 0 || n >= sizeof(again))
                return -1;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '/' || (c == '=' && i >= n - 2)))
                        return -1;
        }
        if (in[n - 2] == '=' && in[n - 1] != '=')
                return -1;
        if ((dl = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n)) < 0)
                return -1;
        len = (size_t)dl - (in[n - 1] == '=') - (in[n - 2] == '=');
        if (len == 0 || len > cap)
                return -1;
        b64_encode(tmp, len, again);
        if (strcmp(again, in) != 0)
                return -1;
        memcpy(out, tmp, len);
        *outlen = len;
        return 0;
}

/* ---- client side ---- */

int gmca_auth_sign(EVP_PKEY *key, X509 *cert, const char *method, const char *target,
                   const uint8_t *body, size_t body_len, int64_t now, struct gmca_auth_headers *h,
                   struct gmca_error *e)
{
        struct gmca_auth_headers out;
        uint8_t rnd[NONCE_RAND], *der = NULL, *sig = NULL;
        size_t siglen = 0;
        char *base = NULL;
        int len, rc;

        memset(&out, 0, sizeof(out));
        if (key == NULL || cert == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "request: no operator key or certificate");
        if (now < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "request: time before 1970");
        if ((len = i2d_X509(cert, &der)) <= 0)
                return gmca_error_ossl(e, GMCA_ERR_INVALID, "operator certificate: cannot encode");
        gmca_auth_fingerprint(der, (size_t)len, out.operator_fpr);
        OPENSSL_free(der);
        snprintf(out.timestamp, sizeof(out.timestamp), "%lld", (long long)now);
        if ((rc = gmca_rand_bytes(rnd, sizeof(rnd), e)) != 0)
                return rc;
        b64_encode(rnd, sizeof(rnd), out.nonce);
        for (char *p = out.nonce; *p != '\0'; p++)
                *p = *p == '+' ? '-' : *p == '/' ? '_' : *p; /* base64url, RFC 4648 §5 */
        if ((rc = gmca_auth_base(method, target, out.timestamp, out.nonce, body, body_len,
                                 out.operator_fpr, &base, e)) != 0)
                return rc;
        if ((rc = gmca_sm2_sign(key, GMCA_SM2_DEFAULT_ID, (const uint8_t *)base, strlen(base), &sig,
                                &siglen, e)) != 0)
                goto out;
        if (siglen > SIG_MAX) {
                rc =
                    gmca_error_set(e, GMCA_ERR_INTERNAL, "request: signature of %zu bytes", siglen);
                goto out;
        }
        b64_encode(sig, siglen, out.signature);
        *h = out;
out:
        OPENSSL_free(sig);
        free(base);
        return rc;
}

/* ---- server side ---- */

void gmca_auth_result_clear(struct gmca_auth_result *r)
{
        if (r == NULL)
                return;
        OPENSSL_free(r->proof);
        memset(r, 0, sizeof(*r));
}

/* GMCA_ERR_AUTH with the cause (the store's own failures keep their code). */
static int refuse(struct gmca_error *e, const char *fmt, ...) GMCA_PRINTF(2, 3);
static int refuse(struct gmca_error *e, const char *fmt, ...)
{
        char msg[GMCA_ERROR_MSG_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return gmca_error_set(e, GMCA_ERR_AUTH, "%s", msg);
}

/*
 * The operator's certificate as the store holds it, checked: issued under
 * the operator's serial with the operator profile by one of the store's
 * CAs (signature checked with the CA's key and ID), the fingerprint the
 * operator row names, not revoked now, valid at when (the request's time
 * for a proof checked again later; now for a request). *pub: its public
 * key (caller frees).
 */
static int operator_cert(struct gmca_store *s, const struct gmca_operator *op, int64_t when,
                         EVP_PKEY **pub, struct gmca_error *e)
{
        struct gmca_cert_rec rec;
        struct gmca_ca_rec ca;
        char fpr[GMCA_AUTH_FPR_LEN + 1], t1[32], t2[32];
        X509 *cert = NULL, *cacert = NULL;
        EVP_PKEY *key = NULL;
        int rc;

        memset(&rec, 0, sizeof(rec));
        memset(&ca, 0, sizeof(ca));
        rc = gmca_store_cert_get(s, op->cert_serial, &rec, e);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "operator %s: certificate %s is not in the store", op->name,
                                      op->cert_serial);
        }
        if (rc != 0)
                return rc;
        rc = GMCA_ERR_AUTH;
        gmca_auth_fingerprint(rec.der, rec.der_len, fpr);
        if (strcmp(fpr, op->fingerprint) != 0) {
                gmca_error_set(e, rc,
                               "operator %s: certificate %s does not have the operator's "
                               "fingerprint",
                               op->name, op->cert_serial);
                goto out;
        }
        if (strcmp(rec.profile, GMCA_OPERATOR_PROFILE) != 0) {
                gmca_error_set(e, rc,
                               "operator %s: certificate %s is a %s certificate, not an "
                               "operator certificate",
                               op->name, op->cert_serial, rec.profile);
                goto out;
        }
        if (rec.status == GMCA_CERT_REVOKED) {
                gmca_error_set(e, rc, "operator certificate revoked (%s, serial %s)", op->name,
                               op->cert_serial);
                goto out;
        }
        if (when < rec.not_before || when > rec.not_after) {
                gmca_time_iso((time_t)rec.not_before, t1, sizeof(t1));
                gmca_time_iso((time_t)rec.not_after, t2, sizeof(t2));
                gmca_error_set(e, rc, "operator certificate %s (%s, valid %s to %s)",
                               when > rec.not_after ? "expired" : "not yet valid", op->name, t1,
                               t2);
                goto out;
        }
        if ((rc = gmca_store_ca_get_by_id(s, rec.ca_id, &ca, e)) != 0)
                goto out;
        if ((cert = gmca_cert_parse(rec.der, rec.der_len, e)) == NULL ||
            (cacert = gmca_cert_parse(ca.cert_der, ca.cert_len, e)) == NULL) {
                rc = GMCA_ERR_DB;
                gmca_error_set(e, rc, "operator %s: stored certificate does not parse", op->name);
                goto out;
        }
        if (gmca_cert_verify_signed_by(cert, X509_get0_pubkey(cacert),
                                       ca.sm2_id[0] ? ca.sm2_id : GMCA_SM2_DEFAULT_ID, e) != 0) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "operator %s: certificate %s is not signed by CA %s", op->name,
                                    op->cert_serial, ca.name);
                goto out;
        }
        if ((key = X509_get_pubkey(cert)) == NULL) {
                rc = gmca_error_ossl(e, GMCA_ERR_AUTH, "operator %s: certificate has no usable key",
                                     op->name);
                goto out;
        }
        *pub = key;
        rc = 0;
out:
        X509_free(cert);
        X509_free(cacert);
        gmca_cert_rec_clear(&rec);
        gmca_ca_rec_clear(&ca);
        return rc;
}

/* The operator named by fpr; "unknown operator" when there is none. */
static int find_operator(struct gmca_store *s, const char *fpr, struct gmca_operator *op,
                         struct gmca_error *e)
{
        int rc = gmca_operator_by_fingerprint(s, fpr, op, e);

        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                return refuse(e, "unknown operator %s", fpr);
        }
        return rc;
}

static const char SQL_NONCE_PURGE[] = "DELETE FROM nonces WHERE time < ?";
static const char SQL_NONCE_INSERT[] =
    "INSERT INTO nonces (fingerprint, nonce, time) VALUES (?, ?, ?)";

/*
 * Record a nonce in a transaction of its own, purging those whose requests
 * can no longer be accepted anyway. Each row keeps the request's
 * timestamp ts, which was within GMCA_AUTH_SKEW of the clock; such a
 * request is acceptable until ts + GMCA_AUTH_SKEW, so rows older than
 * now - 2 * GMCA_AUTH_SKEW are of no further use.
 */
static int nonce_record(struct gmca_store *s, const char *fpr, const char *nonce, int64_t ts,
                        int64_t now, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = gmca_q_open(s, SQL_NONCE_PURGE, &q, e)) != 0)
                goto out;
        gmca_q_int(&q, now - 2 * GMCA_AUTH_SKEW);
        rc = gmca_q_step(&q, e, "purge nonces");
        gmca_q_close(&q);
        if (rc < 0 || (rc = gmca_q_open(s, SQL_NONCE_INSERT, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, fpr);
        gmca_q_text(&q, nonce);
        gmca_q_int(&q, ts);
        rc = gmca_q_step(&q, e, "record nonce");
        gmca_q_close(&q);
        if (rc == GMCA_ERR_EXISTS) {
                gmca_error_clear(e);
                rc = refuse(e, "replayed: nonce %s was used before", nonce);
        }
        if (rc < 0)
                goto out;
        rc = gmca_store_commit(s, e);
out:
        if (rc != 0)
                gmca_store_rollback(s);
        return rc;
}

/*
 * The checks, in this order (each failure GMCA_ERR_AUTH with its cause):
 * headers present and well formed; the operator known by fingerprint; the
 * timestamp within GMCA_AUTH_SKEW either way ("stale"); the signature over
 * the base by the key of the operator's certificate, after checking that
 * certificate (issuer's signature, fingerprint, revoked, validity); the
 * operator active; and last the nonce, so that only a request that passed
 * everything else writes to the store (a forger cannot fill the nonce
 * table) while a replay of an accepted request is still "replayed".
 */
int gmca_auth_verify(struct gmca_store *s, const struct gmca_auth_headers *h, const char *method,
                     const char *target, const uint8_t *body, size_t body_len, int64_t now,
                     struct gmca_auth_result *out, struct gmca_error *e)
{
        static const struct {
                const char *name;
                size_t off;
        } hdrs[] = {
            {"X-Gmca-Operator", offsetof(struct gmca_auth_headers, operator_fpr)},
            {"X-Gmca-Timestamp", offsetof(struct gmca_auth_headers, timestamp)},
            {"X-Gmca-Nonce", offsetof(struct gmca_auth_headers, nonce)},
            {"X-Gmca-Signature", offsetof(struct gmca_auth_headers, signature)},
        };
        struct gmca_operator op;
        uint8_t sig[SIG_MAX], *proof = NULL;
        size_t siglen = 0, proof_len = 0;
        EVP_PKEY *pub = NULL;
        char *base = NULL;
        int64_t ts;
        int rc;

        memset(&op, 0, sizeof(op));
        if (s == NULL || h == NULL || out == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "auth: nothing to verify");
        if (gmca_store_in_transaction(s))
                return gmca_error_set(e, GMCA_ERR_INTERNAL,
                                      "auth: verify called inside a transaction");
        for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
                const char *v = (const char *)h + hdrs[i].off;

                if (v[0] == '\0')
                        return refuse(e, "missing header %s", hdrs[i].name);
        }
        /* The fields are arrays: make sure each is terminated before reading it as
         * text. */
        if (memchr(h->operator_fpr, '\0', sizeof(h->operator_fpr)) == NULL ||
            memchr(h->timestamp, '\0', sizeof(h->timestamp)) == NULL ||
            memchr(h->nonce, '\0', sizeof(h->nonce)) == NULL ||
            memchr(h->signature, '\0', sizeof(h->signature)) == NULL)
                return refuse(e, "malformed headers");
        if (!lower_hex64(h->operator_fpr))
                return refuse(e, "malformed header %s", "X-Gmca-Operator");
        if (parse_timestamp(h->timestamp, &ts) != 0)
                return refuse(e, "malformed header %s", "X-Gmca-Timestamp");
        if (!valid_nonce(h->nonce))
                return refuse(e, "malformed header %s", "X-Gmca-Nonce");
        if (b64_decode(h->signature, sig, sizeof(sig), &siglen) != 0)
                return refuse(e, "malformed header %s", "X-Gmca-Signature");
        if (body_len > GMCA_AUTH_BODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "request: body over %u bytes",
                                      GMCA_AUTH_BODY_MAX);
        if ((rc = gmca_auth_base(method, target, h->timestamp, h->nonce, body, body_len,
                                 h->operator_fpr, &base, e)) != 0) {
                if (rc == GMCA_ERR_INVALID) {
                        struct gmca_error cause = *e;

                        gmca_error_clear(e);
                        rc = refuse(e, "malformed request: %s", cause.msg);
                }
                return rc;
        }
        if ((rc = find_operator(s, h->operator_fpr, &op, e)) != 0)
                goto out;
        if (ts > now + GMCA_AUTH_SKEW || ts < now - GMCA_AUTH_SKEW) {
                char d[32];

                snprintf(d, sizeof(d), "%+lld", (long long)(ts - now));
                rc = gmca_error_set(e, GMCA_ERR_AUTH,
                                    "stale: timestamp is %s s from the server's clock (at most "
                                    "%d either way)",
                                    d, GMCA_AUTH_SKEW);
                goto out;
        }
        if ((rc = operator_cert(s, &op, now, &pub, e)) != 0)
                goto out;
        if (gmca_sm2_verify(pub, GMCA_SM2_DEFAULT_ID, (const uint8_t *)base, strlen(base), sig,
                            siglen, e) != 0) {
                gmca_error_clear(e);
                rc = refuse(e, "bad signature: does not verify with operator %s's certificate",
                            op.name);
                goto out;
        }
        if (strcmp(op.status, GMCA_OP_ACTIVE) != 0) {
                rc = refuse(e, "operator disabled (%s)", op.name);
                goto out;
        }
        if ((rc = gmca_auth_proof_encode(base, sig, siglen, body, body_len, &proof, &proof_len,
                                         e)) != 0)
                goto out;
        if ((rc = nonce_record(s, h->operator_fpr, h->nonce, ts, now, e)) != 0)
                goto out;
        memset(out, 0, sizeof(*out));
        out->op = op;
        out->proof = proof;
        out->proof_len = proof_len;
        proof = NULL;
out:
        OPENSSL_free(proof);
        EVP_PKEY_free(pub);
        free(base);
        return rc;
}

/* ---- proofs ---- */

int gmca_auth_proof_encode(const char *base, const uint8_t *sig, size_t sig_len,
                           const uint8_t *body, size_t body_len, uint8_t **out, size_t *out_len,
                           struct gmca_error *e)
{
        size_t blen, total;
        uint8_t *p, *w;

        if (base == NULL || sig == NULL || sig_len == 0 || (body == NULL && body_len != 0))
                return gmca_error_set(e, GMCA_ERR_INVALID, "proof: base and signature required");
        blen = strlen(base) + 1;
        if (blen > PROOF_BASE_MAX || sig_len > SIG_MAX || body_len > GMCA_AUTH_BODY_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "proof: a part is over its cap");
        total = 12 + blen + sig_len + body_len;
        if ((p = OPENSSL_malloc(total)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        w = p;
        gmca_put_be32(w, (uint32_t)blen);
        memcpy(w + 4, base, blen);
        w += 4 + blen;
        gmca_put_be32(w, (uint32_t)sig_len);
        memcpy(w + 4, sig, sig_len);
        w += 4 + sig_len;
        gmca_put_be32(w, (uint32_t)body_len);
        if (body_len > 0)
                memcpy(w + 4, body, body_len);
        *out = p;
        *out_len = total;
        return 0;
}

/* Next part of a proof: u32 length (<= cap) and the bytes; -1 if short or over.
 */
static int part(const uint8_t **pp, size_t *left, size_t cap, const uint8_t **v, size_t *vlen)
{
        size_t n;

        if (*left < 4)
                return -1;
        n = gmca_get_be32(*pp);
        if (n > cap || n > *left - 4)
                return -1;
        *v = *pp + 4;
        *vlen = n;
        *pp += 4 + n;
        *left -= 4 + n;
        return 0;
}

/*
 * Split base into its seven lines and check each, filling p's parsed
 * fields. The base is then rebuilt from its fields and must be the same
 * text (no room for a second reading of it).
 */
static int parse_base(const char *base, struct gmca_auth_proof *p, struct gmca_error *e)
{
        const char *line[BASE_LINES], *q = base;
        char f[BASE_LINES][TARGET_MAX + 1];
        char *again = NULL;
        size_t n;
        int rc;

        for (int i = 0; i < BASE_LINES; i++) {
                const char *nl = strchr(q, '\n');

                if ((nl == NULL) != (i == BASE_LINES - 1))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "proof: signature base must have %d lines",
                                              BASE_LINES);
                n = nl != NULL ? (size_t)(nl - q) : strlen(q);
                if (n > TARGET_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "proof: line %d too long",
                                              i + 1);
                memcpy(f[i], q, n);
                f[i][n] = '\0';
                line[i] = f[i];
                q = nl != NULL ? nl + 1 : q + n;
        }
        if (strcmp(line[0], BASE_MAGIC) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "proof: signature base does not start with " BASE_MAGIC);
        if (!lower_hex64(line[5]))
                return gmca_error_set(e, GMCA_ERR_INVALID, "proof: body digest is not SM3 hex");
        if (!valid_method(line[1]) || !valid_target(line[2]) ||
            parse_timestamp(line[3], &p->timestamp) != 0 || !valid_nonce(line[4]) ||
            !lower_hex64(line[6]))
                return gmca_error_set(e, GMCA_ERR_INVALID, "proof: malformed signature base");
        if ((rc = base_join(line[1], line[2], line[3], line[4], line[5], line[6], &again, e)) != 0)
                return rc;
        rc = strcmp(again, base) == 0
                 ? 0
                 : gmca_error_set(e, GMCA_ERR_INVALID, "proof: signature base is not canonical");
        free(again);
        if (rc != 0)
                return rc;
        gmca_strlcpy(p->method, line[1], sizeof(p->method));
        gmca_strlcpy(p->target, line[2], sizeof(p->target));
        gmca_strlcpy(p->fpr, line[6], sizeof(p->fpr));
        return 0;
}

int gmca_auth_proof_decode(const uint8_t *buf, size_t len, struct gmca_auth_proof *out,
                           struct gmca_error *e)
{
        struct gmca_auth_proof p;
        const uint8_t *q = buf, *b, *s, *body;
        size_t left = len, blen, slen, bodylen;
        int rc;

        memset(&p, 0, sizeof(p));
        if (buf == NULL || out == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "proof: empty");
        if (part(&q, &left, PROOF_BASE_MAX, &b, &blen) != 0 ||
            part(&q, &left, SIG_MAX, &s, &slen) != 0 ||
            part(&q, &left, GMCA_AUTH_BODY_MAX, &body, &bodylen) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "proof: truncated, or a part over its cap");
        if (left != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "proof: %zu bytes after the body", left);
        if (blen == 0 || b[blen - 1] != '\0' || memchr(b, '\0', blen - 1) != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "proof: signature base must be text ending in one NUL");
        if (slen == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "proof: no signature");
        p.base = (const char *)b;
        p.sig = s;
        p.sig_len = slen;
        p.body = body;
        p.body_len = bodylen;
        if ((rc = parse_base(p.base, &p, e)) != 0)
                return rc;
        *out = p;
        return 0;
}

int gmca_auth_proof_check(struct gmca_store *s, const uint8_t *proof, size_t len, int64_t now,
                          struct gmca_auth_proof *out, struct gmca_operator *opout,
                          struct gmca_error *e)
{
        struct gmca_auth_proof p;
        struct gmca_operator op;
        uint8_t md[GMCA_SM3_LEN];
        char hex[2 * GMCA_SM3_LEN + 1];
        const char *digest;
        EVP_PKEY *pub = NULL;
        int rc;

        memset(&op, 0, sizeof(op));
        if ((rc = gmca_auth_proof_decode(proof, len, &p, e)) != 0) {
                struct gmca_error cause = *e;

                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_AUTH, "%s", cause.msg);
        }
        /* The body digest is the sixth line: the 64 characters before "\n" + fpr. */
        digest = p.base + strlen(p.base) - GMCA_AUTH_FPR_LEN - 1 - 2 * GMCA_SM3_LEN;
        if (gmca_sm3(p.body_len ? p.body : (const uint8_t *)"", p.body_len, md) != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "proof: SM3 failed");
        gmca_hex(md, sizeof(md), hex);
        if (strncmp(digest, hex, 2 * GMCA_SM3_LEN) != 0)
                return refuse(e, "proof: the body is not the one signed");
        if ((rc = find_operator(s, p.fpr, &op, e)) != 0)
                goto out;
        /* Valid when the step was signed; revoked (or the operator disabled) by now
         * refuses. */
        if (p.timestamp > now + GMCA_AUTH_SKEW) {
                rc =
                    refuse(e, "proof: signed %lld s in the future", (long long)(p.timestamp - now));
                goto out;
        }
        if ((rc = operator_cert(s, &op, p.timestamp, &pub, e)) != 0)
                goto out;
        if (gmca_sm2_verify(pub, GMCA_SM2_DEFAULT_ID, (const uint8_t *)p.base, strlen(p.base),
                            p.sig, p.sig_len, e) != 0) {
                gmca_error_clear(e);
                rc = refuse(e, "proof: bad signature by operator %s", op.name);
                goto out;
        }
        if (strcmp(op.status, GMCA_OP_ACTIVE) != 0) {
                rc = refuse(e, "operator disabled (%s)", op.name);
                goto out;
        }
        if (out != NULL)
                *out = p;
        if (opout != NULL)
                *opout = op;
out:
        EVP_PKEY_free(pub);
        return rc;
}

int gmca_auth_step_check(struct gmca_store *s, const uint8_t k_op[GMCA_OP_KEY_LEN],
                         const char *what, const char *name, const uint8_t *proof, size_t len,
                         const char *who, enum gmca_action act, const char *target, int64_t now,
                         struct gmca_auth_proof *p, struct gmca_operator *op, struct gmca_error *e)
{
        struct gmca_error in = {0};
        int rc;

        if (proof == NULL || len == 0 || (who != NULL && who[0] == '\0'))
                return gmca_error_set(e, GMCA_ERR_AUTH, "%s: no signed %s", what, name);
        if (gmca_auth_proof_check(s, proof, len, now, p, op, &in) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "%s: %s: %s", what, name, in.msg);
        if ((rc = gmca_operator_tag_check(op, k_op, &in)) != 0)
                return gmca_error_set(e, rc, "%s: %s: %s", what, name, in.msg);
        if (who != NULL && strcmp(op->name, who) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "%s: the %s was signed by %s, the record "
                                      "says %s",
                                      what, name, op->name, who);
        if (strcmp(p->method, "POST") != 0 || strcmp(p->target, target) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "%s: the signed %s is a %s to %s, not to %s", what, name,
                                      p->method, p->target, target);
        if (gmca_auth_allowed(op->roles, act, &in) != 0)
                return gmca_error_set(e, GMCA_ERR_AUTH, "%s: %s by %s: %s", what, name, op->name,
                                      in.msg);
        return 0;
}
