/*
 * The operators' table (store migration 3): who may act through the API,
 * with which roles, under which certificate, each row tagged under K_op so
 * that the CA engine can tell the custodians' records from rows the front
 * wrote (auth.h). Written inside the caller's transaction, except
 * gmca_operator_disable, which is one business operation with its
 * revocation and audit record.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "audit.h"
#include "auth.h"
#include "ca_internal.h"
#include "crypto.h"
#include "store_internal.h"
#include "util.h"

#define OP_COLS                                                                                    \
        "id, name, roles, cert_serial, fingerprint, status, created_at, "                          \
        "created_by, status_time, tag"

_Static_assert(GMCA_OP_TAG_LEN == GMCA_SM3_LEN, "an operator tag is one HMAC-SM3");

static const char SQL_OP_INSERT[] =
    "INSERT INTO operators (name, roles, cert_serial, fingerprint, status, "
    "created_at, created_by, status_time, tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_OP_BY_NAME[] = "SELECT " OP_COLS " FROM operators WHERE name = ?";
static const char SQL_OP_BY_FPR[] = "SELECT " OP_COLS " FROM operators WHERE fingerprint = ?";
static const char SQL_OP_LIST[] = "SELECT " OP_COLS " FROM operators ORDER BY id";
static const char SQL_OP_STATUS[] =
    "UPDATE operators SET status = ?, status_time = ? WHERE name = ?";

/* Length of the UTF-8 sequence at p (RFC 3629: shortest form, no surrogates), 0
 * if bad. */
static size_t utf8_char(const unsigned char *p, size_t left, uint32_t *cp)
{
        size_t n, i;
        uint32_t v;

        if (p[0] < 0x80) {
                *cp = p[0];
                return 1;
        }
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2, v = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                n = 3, v = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                n = 4, v = p[0] & 0x07;
        else
                return 0;
        if (left < n)
                return 0;
        for (i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                v = v << 6 | (p[i] & 0x3f);
        }
        if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) ||
            (v >= 0xd800 && v <= 0xdfff))
                return 0;
        *cp = v;
        return n;
}

/*
 * An operator's name: 1..GMCA_NAME_MAX-1 bytes of UTF-8 without control
 * characters (C0, DEL, C1) and without a space at either end, so that the
 * name shown in the audit log is the name typed.
 */
static int valid_name(const char *name, struct gmca_error *e)
{
        const unsigned char *p = (const unsigned char *)name;
        size_t len, i, n;
        uint32_t cp;

        if (name == NULL || (len = strnlen(name, GMCA_NAME_MAX)) == 0 || len >= GMCA_NAME_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator name: must be 1..%d bytes",
                                      GMCA_NAME_MAX - 1);
        for (i = 0; i < len; i += n) {
                if ((n = utf8_char(p + i, len - i, &cp)) == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "operator name: not valid UTF-8 at byte %zu", i);
                if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "operator name: control character at byte %zu", i);
        }
        if (name[0] == ' ' || name[len - 1] == ' ')
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "operator name: no space at the start or end");
        return 0;
}

static int valid_serial(const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
                        return 0;
        return i >= 1 && i < GMCA_SERIAL_HEX_MAX;
}

static int valid_fpr(const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0'; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return i == GMCA_AUTH_FPR_LEN;
}

static int valid_status(const char *s)
{
        return strcmp(s, GMCA_OP_ACTIVE) == 0 || strcmp(s, GMCA_OP_DISABLED) == 0;
}

/* ---- the records' tags ---- */

int gmca_operator_key(const struct gmca_ctx *c, uint8_t k_op[GMCA_OP_KEY_LEN], struct gmca_error *e)
{
        if (c == NULL || c->engine_keys == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "operator records: the custodians have not authorised this "
                                      "(no K_op)");
        memcpy(k_op, CTX_OPKEY(c), GMCA_OP_KEY_LEN);
        return 0;
}

/* Append field (at most cap bytes with its NUL) to b at *n as u32 big-endian length + bytes. */
static int put_field(uint8_t *b, size_t *n, const char *field, size_t cap)
{
        size_t len = strnlen(field, cap);

        if (len == cap)
                return -1;
        b[(*n)++] = (uint8_t)(len >> 24);
        b[(*n)++] = (uint8_t)(len >> 16);
        b[(*n)++] = (uint8_t)(len >> 8);
        b[(*n)++] = (uint8_t)len;
        memcpy(b + *n, field, len);
        *n += len;
        return 0;
}

int gmca_operator_tag(const struct gmca_operator *op, const uint8_t k_op[GMCA_OP_KEY_LEN],
                      uint8_t tag[GMCA_OP_TAG_LEN], struct gmca_error *e)
{
        uint8_t buf[4 * 4 + sizeof(op->name) + GMCA_ROLES_TEXT_MAX + sizeof(op->cert_serial) +
                    sizeof(op->fingerprint)];
        char roles[GMCA_ROLES_TEXT_MAX];
        size_t n = 0;

        if (op == NULL || k_op == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "operator record tag: no key");
        gmca_roles_format(op->roles, roles);
        if (put_field(buf, &n, op->name, sizeof(op->name)) != 0 ||
            put_field(buf, &n, roles, sizeof(roles)) != 0 ||
            put_field(buf, &n, op->cert_serial, sizeof(op->cert_serial)) != 0 ||
            put_field(buf, &n, op->fingerprint, sizeof(op->fingerprint)) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "operator record tag: a field is not terminated");
        return gmca_hmac_sm3(k_op, GMCA_OP_KEY_LEN, buf, n, tag, e);
}

int gmca_operator_tag_check(const struct gmca_operator *op, const uint8_t k_op[GMCA_OP_KEY_LEN],
                            struct gmca_error *e)
{
        uint8_t want[GMCA_OP_TAG_LEN];
        int rc, same;

        if (op == NULL || k_op == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL,
                                      "operator record check: no record or no K_op");
        if ((rc = gmca_operator_tag(op, k_op, want, e)) != 0)
                return rc;
        same = CRYPTO_memcmp(want, op->tag, GMCA_OP_TAG_LEN) == 0;
        OPENSSL_cleanse(want, sizeof(want));
        if (!same)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "operator %s: record not made by the custodians (tag)",
                                      op->name);
        return 0;
}

/* ---- the table ---- */

int gmca_operator_insert(struct gmca_store *s, struct gmca_operator *op,
                         const uint8_t k_op[GMCA_OP_KEY_LEN], struct gmca_error *e)
{
        char roles[GMCA_ROLES_TEXT_MAX];
        struct gmca_q q;
        int rc;

        if (op == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator: nothing to insert");
        if (k_op == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "operator %s: no K_op to tag it",
                                      op->name);
        if ((rc = valid_name(op->name, e)) != 0)
                return rc;
        if (op->roles == 0 || (op->roles & ~(unsigned)GMCA_ROLE_ALL) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator %s: no valid role", op->name);
        if ((rc = gmca_auth_roles_conflict(op->roles, e)) != 0)
                return rc;
        if (!valid_serial(op->cert_serial) || !valid_fpr(op->fingerprint))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "operator %s: certificate serial or fingerprint malformed",
                                      op->name);
        if (op->status[0] == '\0')
                gmca_strlcpy(op->status, GMCA_OP_ACTIVE, sizeof(op->status));
        if (!valid_status(op->status))
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator %s: status %s", op->name,
                                      op->status);
        if (op->created_by[0] == '\0' ||
            memchr(op->created_by, '\0', sizeof(op->created_by)) == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator %s: who created it?",
                                      op->name);
        gmca_roles_format(op->roles, roles);
        if ((rc = gmca_operator_tag(op, k_op, op->tag, e)) != 0)
                return rc;
        if ((rc = gmca_q_open(s, SQL_OP_INSERT, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, op->name);
        gmca_q_text(&q, roles);
        gmca_q_text(&q, op->cert_serial);
        gmca_q_text(&q, op->fingerprint);
        gmca_q_text(&q, op->status);
        gmca_q_int(&q, op->created_at);
        gmca_q_text(&q, op->created_by);
        gmca_q_int(&q, op->status_time ? op->status_time : op->created_at);
        gmca_q_blob(&q, op->tag, sizeof(op->tag));
        rc = gmca_q_step(&q, e, "operator %s", op->name);
        gmca_q_close(&q);
        if (rc == GMCA_ERR_EXISTS) {
                gmca_error_clear(e);
                return gmca_error_set(e, rc,
                                      "operator %s: the name, certificate or fingerprint is "
                                      "already an operator's",
                                      op->name);
        }
        if (rc < 0)
                return rc;
        {
                struct gmca_operator back;

                if ((rc = gmca_operator_get(s, op->name, &back, e)) != 0)
                        return rc;
                op->id = back.id;
                op->status_time = back.status_time;
        }
        return 0;
}

/* The current row into *op; GMCA_ERR_DB if it is not what gmca writes. */
static int read_row(struct gmca_q *q, struct gmca_operator *op, struct gmca_error *e)
{
        char roles[GMCA_ROLES_TEXT_MAX];
        const void *tag;
        size_t tag_len = 0;
        int rc;

        memset(op, 0, sizeof(*op));
        op->id = gmca_q_col_int(q, 0);
        if ((rc = gmca_q_col_str(q, 1, op->name, sizeof(op->name), "operator name", e)) != 0 ||
            (rc = gmca_q_col_str(q, 2, roles, sizeof(roles), "operator roles", e)) != 0 ||
            (rc = gmca_q_col_str(q, 3, op->cert_serial, sizeof(op->cert_serial),
                                 "operator certificate", e)) != 0 ||
            (rc = gmca_q_col_str(q, 4, op->fingerprint, sizeof(op->fingerprint),
                                 "operator fingerprint", e)) != 0 ||
            (rc = gmca_q_col_str(q, 5, op->status, sizeof(op->status), "operator status", e)) !=
                0 ||
            (rc = gmca_q_col_str(q, 7, op->created_by, sizeof(op->created_by), "operator creator",
                                 e)) != 0)
                return rc;
        op->created_at = gmca_q_col_int(q, 6);
        op->status_time = gmca_q_col_int(q, 8);
        /* A tag of another length stays all zero: it is refused where tags are checked,
         * while the front, which cannot check them, still reads the row. */
        if ((tag = gmca_q_col_blob(q, 9, &tag_len)) != NULL && tag_len == GMCA_OP_TAG_LEN)
                memcpy(op->tag, tag, GMCA_OP_TAG_LEN);
        if (gmca_roles_parse(roles, &op->roles, e) != 0) {
                gmca_error_clear(e);
                return gmca_error_set(e, GMCA_ERR_DB, "store: operator %s: roles \"%s\" unreadable",
                                      op->name, roles);
        }
        if (!valid_status(op->status) || !valid_fpr(op->fingerprint))
                return gmca_error_set(e, GMCA_ERR_DB, "store: operator %s: malformed row",
                                      op->name);
        return 0;
}

static int get_one(struct gmca_store *s, const char *sql, const char *key, const char *what,
                   struct gmca_operator *out, struct gmca_error *e)
{
        struct gmca_operator op;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, sql, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, key);
        rc = gmca_q_step(&q, e, "operator %s", what);
        if (rc == GMCA_DB_ROW)
                rc = read_row(&q, &op, e);
        else if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "no operator %s", what);
        gmca_q_close(&q);
        if (rc == 0)
                *out = op;
        return rc;
}

int gmca_operator_get(struct gmca_store *s, const char *name, struct gmca_operator *out,
                      struct gmca_error *e)
{
        if (name == NULL || strnlen(name, GMCA_NAME_MAX) >= GMCA_NAME_MAX)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "no such operator");
        return get_one(s, SQL_OP_BY_NAME, name, name, out, e);
}

int gmca_operator_by_fingerprint(struct gmca_store *s, const char *fpr, struct gmca_operator *out,
                                 struct gmca_error *e)
{
        if (fpr == NULL || !valid_fpr(fpr))
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "no operator with that fingerprint");
        return get_one(s, SQL_OP_BY_FPR, fpr, fpr, out, e);
}

int gmca_operator_set_status(struct gmca_store *s, const char *name, const char *status,
                             int64_t when, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if (status == NULL || !valid_status(status))
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator status must be %s or %s",
                                      GMCA_OP_ACTIVE, GMCA_OP_DISABLED);
        if (name == NULL)
                return gmca_error_set(e, GMCA_ERR_NOTFOUND, "no such operator");
        if ((rc = gmca_q_open(s, SQL_OP_STATUS, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, status);
        gmca_q_int(&q, when);
        gmca_q_text(&q, name);
        rc = gmca_q_step(&q, e, "operator %s status", name);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "no operator %s", name);
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

int gmca_operator_list(struct gmca_store *s, int (*cb)(const struct gmca_operator *, void *),
                       void *arg, struct gmca_error *e)
{
        struct gmca_operator op;
        struct gmca_q q;
        int rc;

        if ((rc = gmca_q_open(s, SQL_OP_LIST, &q, e)) != 0)
                return rc;
        /* Bounded by the table: each step advances, and the table is finite. */
        while ((rc = gmca_q_step(&q, e, "list operators")) == GMCA_DB_ROW) {
                if ((rc = read_row(&q, &op, e)) != 0 || (rc = cb(&op, arg)) != 0)
                        break;
        }
        gmca_q_close(&q);
        return rc < 0 || rc > 0 ? rc : 0;
}

#define CRL_REASON_PRIVILEGE_WITHDRAWN 9 /* RFC 5280 §5.3.1 */

/* Compact JSON text of o (consumed), malloc'd; NULL on failure. */
static char *dump(json_t *o)
{
        char *t = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        json_decref(o);
        return t;
}

static int disable_tx(struct gmca_store *s, const char *name, const char *actor,
                      const char *custodians, int64_t now, struct gmca_error *e)
{
        struct gmca_operator op;
        struct gmca_audit_event ev;
        char roles[GMCA_ROLES_TEXT_MAX];
        int rc, already = 0;
        char *detail;

        if ((rc = gmca_operator_get(s, name, &op, e)) != 0)
                return rc;
        if (strcmp(op.status, GMCA_OP_DISABLED) == 0)
                return gmca_error_set(e, GMCA_ERR_STATE, "operator %s is already disabled", name);
        if ((rc = gmca_operator_set_status(s, name, GMCA_OP_DISABLED, now, e)) != 0)
                return rc;
        rc = gmca_store_cert_revoke(s, op.cert_serial, now, CRL_REASON_PRIVILEGE_WITHDRAWN, 0, e);
        if (rc == GMCA_ERR_STATE) {
                /* Revoked already (by cert revoke): the operator is disabled all the same.
                 */
                gmca_error_clear(e);
                already = 1;
        } else if (rc != 0) {
                return rc;
        }
        gmca_roles_format(op.roles, roles);
        detail = dump(json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s?}", "name", op.name, "roles",
                                roles, "serial", op.cert_serial, "fingerprint", op.fingerprint,
                                "reason", "privilegeWithdrawn", "already_revoked", already,
                                "custodians", custodians));
        if (detail == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        ev = (struct gmca_audit_event){GMCA_EV_OPERATOR_DISABLE, actor, 1, op.name, detail};
        rc = gmca_audit_append(s, &ev, e);
        free(detail);
        return rc;
}

static int disable(struct gmca_store *s, const char *name, const char *actor,
                   const char *custodians, int64_t now, struct gmca_error *e)
{
        struct gmca_audit_event ev;
        struct gmca_error ignored = {0};
        char *detail;
        int rc;

        if (actor == NULL || actor[0] == '\0')
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator disable: no actor");
        if ((rc = gmca_store_begin(s, e)) != 0)
                return rc;
        if ((rc = disable_tx(s, name, actor, custodians, now, e)) != 0 ||
            (rc = gmca_store_commit(s, e)) != 0) {
                gmca_store_rollback(s);
                detail = dump(json_pack("{s:s, s:s}", "error", gmca_err_name(rc), "cause",
                                        e != NULL ? e->msg : ""));
                ev = (struct gmca_audit_event){
                    GMCA_EV_OPERATOR_DISABLE, actor, 0,
                    name != NULL && valid_name(name, NULL) == 0 ? name : "operator", detail};
                if (gmca_audit_record(s, &ev, &ignored) != 0) {
                        /* The refusal stands; its record is lost with the store. */
                }
                free(detail);
                return rc;
        }
        return 0;
}

int gmca_operator_disable(struct gmca_store *s, const char *name, const char *actor, int64_t now,
                          struct gmca_error *e)
{
        return disable(s, name, actor, NULL, now, e);
}

int gmca_operator_disable_ctx(struct gmca_ctx *c, const char *name, struct gmca_error *e)
{
        return disable(c->store, name, c->actor, c->custodians[0] ? c->custodians : NULL,
                       (int64_t)gmca_now(), e);
}

/* ---- gmca operator add ---- */

/*
 * The operator profile, taken from src into the state directory if the CA
 * was made before it shipped (the file is checked as a profile first, and
 * the copy audited as config.change).
 */
static int need_profile(struct gmca_ctx *c, const char *src, struct gmca_error *e)
{
        char from[PATH_MAX], to[PATH_MAX];
        struct gmca_audit_event ev;
        struct gmca_profile *p;
        uint8_t *buf = NULL;
        size_t len = 0;
        char *detail;
        int rc;

        if (gmca_ctx_profile(c, GMCA_OPERATOR_PROFILE, e) != NULL)
                return 0;
        if (e->code != GMCA_ERR_NOTFOUND || src == NULL)
                return e->code;
        gmca_error_clear(e);
        if ((rc = ca_pathf(from, sizeof(from), e, "%s/%s.json", src, GMCA_OPERATOR_PROFILE)) != 0 ||
            (rc = ca_pathf(to, sizeof(to), e, "%s/profiles/%s.json", c->dir,
                           GMCA_OPERATOR_PROFILE)) != 0)
                return rc;
        if ((p = gmca_profile_find(src, GMCA_OPERATOR_PROFILE, e)) == NULL)
                return gmca_error_set(e, e->code ? e->code : GMCA_ERR_NOTFOUND,
                                      "profile %s: not in this CA, nor usable in %s",
                                      GMCA_OPERATOR_PROFILE, src);
        gmca_profile_free(p);
        if ((rc = gmca_read_file(from, GMCA_PROFILE_FILE_MAX, &buf, &len, e)) != 0)
                return rc;
        rc = gmca_write_file_excl(to, buf, len, 0644, e);
        free(buf);
        if (rc != 0)
                return rc;
        detail = dump(json_pack("{s:s, s:s, s:s}", "profile", GMCA_OPERATOR_PROFILE, "added_from",
                                from, "reason", "operator certificates (issue 4)"));
        ev = (struct gmca_audit_event){GMCA_EV_CONFIG_CHANGE, c->actor, 1, GMCA_OPERATOR_PROFILE,
                                       detail};
        rc = gmca_audit_record(c->store, &ev, e);
        free(detail);
        if (rc != 0)
                return rc;
        return gmca_ctx_profile(c, GMCA_OPERATOR_PROFILE, e) != NULL ? 0 : e->code;
}

/* DER SubjectPublicKeyInfo; caller frees with OPENSSL_free. */
static int spki(const X509_PUBKEY *pk, uint8_t **der, size_t *len)
{
        int n = pk != NULL ? i2d_X509_PUBKEY(pk, der) : -1;

        if (n <= 0)
                return -1;
        *len = (size_t)n;
        return 0;
}

struct key_search {
        struct gmca_store *s;
        const uint8_t *key;
        size_t len;
        char serials[64][GMCA_SERIAL_HEX_MAX];
        char names[64][GMCA_NAME_MAX];
        size_t n;
        int more;
};

static int gather(const struct gmca_operator *op, void *arg)
{
        struct key_search *k = arg;

        if (k->n == sizeof(k->serials) / sizeof(k->serials[0])) {
                k->more = 1;
                return 1;
        }
        gmca_strlcpy(k->serials[k->n], op->cert_serial, sizeof(k->serials[0]));
        gmca_strlcpy(k->names[k->n], op->name, sizeof(k->names[0]));
        k->n++;
        return 0;
}

/*
 * GMCA_ERR_EXISTS if the new certificate's key is an operator's already
 * (CPS §6.2.2: one token per person). Operators are read in pages of 64
 * certificates (the list cannot be open while certificates are read).
 */
static int key_unused(struct gmca_store *s, const X509_PUBKEY *pk, struct gmca_error *e)
{
        struct key_search *k = calloc(1, sizeof(*k));
        uint8_t *mine = NULL;
        size_t mine_len = 0;
        int rc = 0;

        if (k == NULL || spki(pk, &mine, &mine_len) != 0) {
                free(k);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "operator: cannot encode the key");
        }
        rc = gmca_operator_list(s, gather, k, e);
        if (rc == 1 && k->more) {
                rc = gmca_error_set(e, GMCA_ERR_LIMIT,
                                    "operator: more than 64 operators; cannot check the key");
        }
        for (size_t i = 0; rc == 0 && i < k->n; i++) {
                struct gmca_cert_rec rec;
                uint8_t *theirs = NULL;
                size_t theirs_len = 0;
                X509 *x;

                memset(&rec, 0, sizeof(rec));
                if ((rc = gmca_store_cert_get(s, k->serials[i], &rec, e)) != 0)
                        break;
                x = gmca_cert_parse(rec.der, rec.der_len, e);
                gmca_cert_rec_clear(&rec);
                if (x == NULL)
                        rc = GMCA_ERR_DB;
                else if (spki(X509_get_X509_PUBKEY(x), &theirs, &theirs_len) == 0 &&
                         theirs_len == mine_len && memcmp(theirs, mine, mine_len) == 0)
                        rc = gmca_error_set(e, GMCA_ERR_EXISTS,
                                            "operator: CPS §6.2.2: this key is already operator "
                                            "%s's; each operator has their own key",
                                            k->names[i]);
                OPENSSL_free(theirs);
                X509_free(x);
        }
        OPENSSL_free(mine);
        free(k);
        return rc;
}

static int add_tx(struct gmca_ctx *c, const struct gmca_operator_add_req *r, unsigned roles,
                  const uint8_t k_op[GMCA_OP_KEY_LEN], struct gmca_operator *op, X509 **out,
                  struct gmca_error *e)
{
        struct gmca_issue_req ir;
        struct gmca_operator old;
        struct gmca_audit_event ev;
        char roles_text[GMCA_ROLES_TEXT_MAX], subject[GMCA_DN_MAX];
        uint8_t *der = NULL;
        size_t der_len = 0;
        X509 *cert = NULL;
        X509_REQ *req = NULL;
        char *detail = NULL;
        int rc;

        rc = gmca_operator_get(c->store, r->name, &old, e);
        if (rc == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS, "operator %s exists already", r->name);
        if (rc != GMCA_ERR_NOTFOUND)
                return rc;
        gmca_error_clear(e);
        memset(&ir, 0, sizeof(ir));
        ir.ca = NULL; /* the default CA issues operator certificates */
        ir.profile = GMCA_OPERATOR_PROFILE;
        ir.csr = r->csr;
        ir.csr_len = r->csr_len;
        ir.days = r->days;
        memset(op, 0, sizeof(*op));
        /* Before anything is signed: the key must be no other operator's. */
        if ((req = gmca_csr_parse(r->csr, r->csr_len, GMCA_SM2_DEFAULT_ID, e)) == NULL) {
                rc = e->code ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        if ((rc = key_unused(c->store, X509_REQ_get_X509_PUBKEY(req), e)) != 0 ||
            (rc = ca_issue_in_tx(c, &ir, op->cert_serial, &cert, e)) != 0)
                goto out;
        if ((rc = ca_cert_der(cert, &der, &der_len, e)) != 0 ||
            (rc = gmca_dn_format(X509_get_subject_name(cert), subject, sizeof(subject), e)) != 0)
                goto out;
        gmca_auth_fingerprint(der, der_len, op->fingerprint);
        gmca_strlcpy(op->name, r->name, sizeof(op->name));
        op->roles = roles;
        gmca_strlcpy(op->status, GMCA_OP_ACTIVE, sizeof(op->status));
        op->created_at = (int64_t)gmca_now();
        gmca_strlcpy(op->created_by, c->actor, sizeof(op->created_by));
        if ((rc = gmca_operator_insert(c->store, op, k_op, e)) != 0)
                goto out;
        gmca_roles_format(roles, roles_text);
        detail = dump(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "name", op->name, "roles",
                                roles_text, "serial", op->cert_serial, "fingerprint",
                                op->fingerprint, "subject", subject, "ca", gmca_ctx_default_ca(c),
                                "custodians", c->custodians[0] ? c->custodians : NULL));
        if (detail == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        ev = (struct gmca_audit_event){GMCA_EV_OPERATOR_ADD, c->actor, 1, op->name, detail};
        if ((rc = gmca_audit_append(c->store, &ev, e)) != 0)
                goto out;
        if (out != NULL) {
                *out = cert;
                cert = NULL;
        }
out:
        free(detail);
        OPENSSL_free(der);
        X509_free(cert);
        X509_REQ_free(req);
        return rc;
}

int gmca_operator_add(struct gmca_ctx *c, const struct gmca_operator_add_req *r,
                      struct gmca_operator *opout, X509 **cert, struct gmca_error *e)
{
        const char *object = "operator";
        struct gmca_operator op;
        uint8_t k_op[GMCA_OP_KEY_LEN] = {0};
        X509 *x = NULL;
        unsigned roles = 0;
        int rc;

        if (r == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "operator add: nothing to add");
        if ((rc = valid_name(r->name, e)) != 0 ||
            (rc = gmca_roles_parse(r->roles, &roles, e)) != 0 ||
            (rc = gmca_auth_roles_conflict(roles, e)) != 0)
                goto refuse;
        object = r->name;
        if (r->csr == NULL || r->csr_len == 0) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "operator %s: no CSR", r->name);
                goto refuse;
        }
        if ((rc = gmca_operator_key(c, k_op, e)) != 0 ||
            (rc = need_profile(c, r->profiles_src, e)) != 0)
                goto refuse;
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                goto refuse;
        if ((rc = add_tx(c, r, roles, k_op, &op, cert != NULL ? &x : NULL, e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                X509_free(x);
                goto refuse;
        }
        OPENSSL_cleanse(k_op, sizeof(k_op));
        if (opout != NULL)
                *opout = op;
        if (cert != NULL)
                *cert = x;
        return 0;
refuse:
        OPENSSL_cleanse(k_op, sizeof(k_op));
        return ca_reject(c, GMCA_EV_OPERATOR_ADD, object, rc, e);
}
