/*
 * CA compromise (CPS §6.10.3): the compromised key stops issuing, a new key
 * and CA certificate are made with the custodians present, every
 * certificate the old key issued is revoked (cACompromise) and, if still
 * valid, re-issued under the new CA with the same subject, public key,
 * extensions and end date; the old key then signs its final CRL.
 *
 * A CA may have issued a hundred thousand certificates, so the work is a
 * state machine that survives a kill at any moment. The job record (store
 * metadata "compromise") says which CA is being replaced by which, and in
 * what phase. Each step is one store transaction with its audit records:
 *
 *   start    the new CA row and certificate, the old key compromised, the
 *            old CA certificate revoked by the parent, the default CA moved,
 *            the job record: all or nothing.
 *   reissue  batches of certificates: per certificate the revocation, the
 *            replacement and the old → new row commit together, so none is
 *            revoked without its replacement recorded, and a resumed run,
 *            which picks only certificates still valid, issues none twice.
 *   done     the final CRLs, then the job is marked done.
 *
 * The job is named after the CA it creates (one compromise, one new CA).
 * Only one compromise runs at a time; running the command again resumes an
 * unfinished one (the custodians are needed again: the new key must be
 * unlocked).
 *
 * Certificates that expired without being revoked are revoked too (so
 * nothing of the old key stays "valid" in the store) but not re-issued,
 * and have no old → new row: their audit record says why. A compromised
 * root's own self-signed certificate is left as it is: a root cannot revoke
 * itself on its own CRL; its key state says it is compromised, and the new
 * root replaces it as trust anchor. Operational CAs under a compromised
 * root have their CA certificates re-issued like any other and are
 * re-homed under the new root, in the same transaction, so they go on
 * issuing with their own keys.
 */
#include "ca_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "crl.h"
#include "util.h"
#include "x509.h"

#define META_JOB "compromise"
#define PHASE_REISSUE "reissue"
#define PHASE_DONE "done"
#define REASON_CA_COMPROMISE 2 /* RFC 5280 §5.3.1 cACompromise */
#define DEFAULT_BATCH 500
#define BATCH_MAX 10000
#define GENERATION_MAX 99

struct job {
        char name[GMCA_NAME_MAX];   /* the job, named after the new CA */
        char old[GMCA_NAME_MAX];    /* the compromised CA */
        char new_ca[GMCA_NAME_MAX]; /* its replacement */
        char phase[16];
        int64_t started;
        int64_t crl_number; /* the old CA's final CRL, once done */
};

/* A CA whose certificate the compromised root issued: re-homed when re-issued. */
struct child {
        char serial[GMCA_SERIAL_HEX_MAX];
        int64_t id;
        char name[GMCA_NAME_MAX];
};

struct children {
        int64_t parent_id;
        struct child v[MAX_CAS];
        size_t n;
};

/* ---- the job record ---- */

static int job_field(json_t *root, const char *key, char *out, size_t len)
{
        json_t *v = json_object_get(root, key);

        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= len)
                return -1;
        gmca_strlcpy(out, json_string_value(v), len);
        return 0;
}

/* *found = 0 when no compromise ever ran. A malformed record is GMCA_ERR_TAMPER. */
static int job_load(struct gmca_ctx *c, struct job *j, int *found, struct gmca_error *e)
{
        static const char *const known[] = {"job", "old", "new", "phase", "started", "crl_number"};
        char buf[GMCA_META_VALUE_MAX];
        struct gmca_error nf = {0};
        json_t *root, *v;
        int rc;

        memset(j, 0, sizeof(*j));
        *found = 0;
        if ((rc = gmca_store_meta_get(c->store, META_JOB, buf, sizeof(buf), &nf)) ==
            GMCA_ERR_NOTFOUND)
                return 0;
        if (rc != 0) {
                if (e != NULL)
                        *e = nf;
                return rc;
        }
        root = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
        rc = gmca_error_set(e, GMCA_ERR_TAMPER, "store metadata %s: not a compromise job record",
                            META_JOB);
        if (root == NULL || !json_is_object(root) ||
            ca_json_unknown_key(root, known, sizeof(known) / sizeof(known[0])) != NULL ||
            job_field(root, "job", j->name, sizeof(j->name)) != 0 ||
            job_field(root, "old", j->old, sizeof(j->old)) != 0 ||
            job_field(root, "new", j->new_ca, sizeof(j->new_ca)) != 0 ||
            job_field(root, "phase", j->phase, sizeof(j->phase)) != 0 ||
            (strcmp(j->phase, PHASE_REISSUE) != 0 && strcmp(j->phase, PHASE_DONE) != 0) ||
            !ca_valid_name(j->old) || !ca_valid_name(j->new_ca))
                goto out;
        if ((v = json_object_get(root, "started")) != NULL && json_is_integer(v))
                j->started = json_integer_value(v);
        if ((v = json_object_get(root, "crl_number")) != NULL && json_is_integer(v))
                j->crl_number = json_integer_value(v);
        gmca_error_clear(e);
        *found = 1;
        rc = 0;
out:
        json_decref(root);
        return rc;
}

/* Inside a transaction. */
static int job_save(struct gmca_ctx *c, const struct job *j, struct gmca_error *e)
{
        char *text = ca_detail_json(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "job", j->name,
                                              "old", j->old, "new", j->new_ca, "phase", j->phase,
                                              "started", (json_int_t)j->started, "crl_number",
                                              (json_int_t)j->crl_number));
        int rc;

        if (text == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        rc = gmca_store_meta_set(c->store, META_JOB, text, e);
        free(text);
        return rc;
}

static int job_unfinished(const struct job *j, int found)
{
        return found && strcmp(j->phase, PHASE_DONE) != 0;
}

/* ---- small helpers ---- */

/* Append one audit record (inside a transaction); detail is consumed. */
static int audit_append(struct gmca_ctx *c, const char *event, const char *object, json_t *detail,
                        struct gmca_error *e)
{
        char *text = ca_detail_json(detail);
        struct gmca_audit_event ev = {event, c->actor, 1, object, text};
        int rc;

        if (text == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        rc = gmca_audit_append(c->store, &ev, e);
        free(text);
        return rc;
}

static struct ca_slot *find_by_id(struct gmca_ctx *c, int64_t id, struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        struct ca_slot *slot = NULL;

        memset(&rec, 0, sizeof(rec));
        if (gmca_store_ca_get_by_id(c->store, id, &rec, e) == 0)
                slot = ca_find(c, rec.name, e);
        gmca_ca_rec_clear(&rec);
        return slot;
}

/* <base>-g2, -g3, ... where base is name without a "-gN" it already has. */
static int next_name(struct gmca_ctx *c, const char *name, char out[GMCA_NAME_MAX],
                     struct gmca_error *e)
{
        char base[GMCA_NAME_MAX];
        size_t n;

        gmca_strlcpy(base, name, sizeof(base));
        n = strlen(base);
        while (n > 0 && base[n - 1] >= '0' && base[n - 1] <= '9')
                n--;
        if (n >= 2 && n < strlen(base) && base[n - 1] == 'g' && base[n - 2] == '-')
                base[n - 2] = '\0';
        for (int g = 2; g <= GENERATION_MAX; g++) {
                struct gmca_ca_rec rec;
                struct gmca_error nf = {0};
                int rc;

                if ((size_t)snprintf(out, GMCA_NAME_MAX, "%s-g%d", base, g) >= GMCA_NAME_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "CA name %s is too long to add -g%d: name the new "
                                              "CA (--name)",
                                              base, g);
                memset(&rec, 0, sizeof(rec));
                rc = gmca_store_ca_get(c->store, out, &rec, &nf);
                gmca_ca_rec_clear(&rec);
                if (rc == GMCA_ERR_NOTFOUND)
                        return 0;
                if (rc != 0) {
                        if (e != NULL)
                                *e = nf;
                        return rc;
                }
        }
        return gmca_error_set(e, GMCA_ERR_LIMIT,
                              "no free name %s-g2..g%d: name the new CA (--name)", base,
                              GENERATION_MAX);
}

/* The certificate row of a CA's own certificate (its profile and request). */
static int ca_cert_row(struct gmca_ctx *c, struct ca_slot *ca, struct gmca_cert_rec *out,
                       struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX];

        memset(out, 0, sizeof(*out));
        if (gmca_serial_hex(ca->cert, serial, sizeof(serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: certificate serial",
                                      ca->rec.name);
        return gmca_store_cert_get(c->store, serial, out, e);
}

/* certs/<ca>.pem, unless a run stopped after writing it. */
static int write_ca_pem(struct gmca_ctx *c, struct ca_slot *ca, struct gmca_error *e)
{
        char path[PATH_MAX];
        int rc;

        if ((rc = ca_pathf(path, sizeof(path), e, "%s/certs/%s.pem", c->dir, ca->rec.name)) != 0)
                return rc;
        if (access(path, F_OK) == 0)
                return 0;
        return ca_write_pem_cert(path, ca->cert, e);
}

/* ---- start: the new CA ---- */

struct start {
        struct ca_slot *old, *parent;
        char profile[GMCA_NAME_MAX];
        char name[GMCA_NAME_MAX];
        char old_serial[GMCA_SERIAL_HEX_MAX];
        X509_NAME *dn; /* owned, when p->dn is given */
        EVP_PKEY *pub;
        unsigned index;
        X509 *cert;
        struct gmca_device_signer self;
};

static void start_clear(struct start *s)
{
        X509_NAME_free(s->dn);
        EVP_PKEY_free(s->pub);
        X509_free(s->cert);
        OPENSSL_cleanse(&s->self, sizeof(s->self));
}

/* The new key and CA certificate (no store writes). */
static int start_prepare(struct gmca_ctx *c, const struct gmca_compromise_params *p,
                         struct start *s, struct gmca_error *e)
{
        struct gmca_cert_rec row;
        struct gmca_profile *prof;
        struct ca_issuer is;
        const X509_NAME *subject;
        time_t now = gmca_now();
        int days, rc;

        if (!ca_state_issues(s->old->rec.key_state) &&
            strcmp(s->old->rec.key_state, GMCA_KEY_SUPERSEDED) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "CA %s: its key is %s; only an active or superseded key "
                                      "can be declared compromised",
                                      s->old->rec.name, s->old->rec.key_state);
        if (gmca_serial_hex(s->old->cert, s->old_serial, sizeof(s->old_serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: certificate serial",
                                      s->old->rec.name);
        /* The new certificate is made under the profile the old one was. */
        if ((rc = ca_cert_row(c, s->old, &row, e)) == 0)
                gmca_strlcpy(s->profile, row.profile, sizeof(s->profile));
        gmca_cert_rec_clear(&row);
        if (rc == GMCA_ERR_NOTFOUND) {
                gmca_error_clear(e);
                gmca_strlcpy(s->profile, s->old->rec.parent_id == 0 ? "root-ca" : "sub-ca",
                             sizeof(s->profile));
        } else if (rc != 0) {
                return rc;
        }
        if ((prof = gmca_ctx_profile(c, s->profile, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if (p->new_name != NULL) {
                struct gmca_ca_rec rec;
                struct gmca_error nf = {0};

                if (!ca_valid_name(p->new_name))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "new CA name must be [a-z0-9_-]{1,63}");
                memset(&rec, 0, sizeof(rec));
                rc = gmca_store_ca_get(c->store, p->new_name, &rec, &nf);
                gmca_ca_rec_clear(&rec);
                if (rc == 0)
                        return gmca_error_set(e, GMCA_ERR_EXISTS, "CA %s exists already",
                                              p->new_name);
                if (rc != GMCA_ERR_NOTFOUND) {
                        if (e != NULL)
                                *e = nf;
                        return rc;
                }
                gmca_strlcpy(s->name, p->new_name, sizeof(s->name));
        } else if ((rc = next_name(c, s->old->rec.name, s->name, e)) != 0) {
                return rc;
        }
        if (p->dn != NULL) {
                if ((s->dn = gmca_dn_parse(p->dn, e)) == NULL)
                        return e && e->code ? e->code : GMCA_ERR_INVALID;
                subject = s->dn;
        } else {
                subject = X509_get_subject_name(s->old->cert);
        }
        if (p->days < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "days must be positive");
        days = p->days > 0 ? p->days : prof->validity_days;
        if (s->old->rec.parent_id != 0) {
                if ((s->parent = find_by_id(c, s->old->rec.parent_id, e)) == NULL)
                        return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
                if (!ca_state_issues(s->parent->rec.key_state))
                        return gmca_error_set(e, GMCA_ERR_STATE,
                                              "CA %s: its issuer %s has a %s key and cannot "
                                              "certify a new key; compromise or roll over %s "
                                              "first",
                                              s->old->rec.name, s->parent->rec.name,
                                              s->parent->rec.key_state, s->parent->rec.name);
                if ((rc = ca_slot_issuer(s->parent, &is, e)) != 0)
                        return rc;
        }
        if ((rc = ca_generate_key(c, &s->index, &s->pub, e)) != 0)
                return rc;
        if (s->parent == NULL) {
                /* A root signs its own certificate with the new key. */
                if ((rc = gmca_device_signer_init(&s->self, c->dev, s->index, s->pub,
                                                  prof->sm2_id[0] ? prof->sm2_id : NULL, e)) != 0)
                        return rc;
                is = (struct ca_issuer){s->name, NULL, s->pub, &s->self.base,
                                        prof->sm2_id[0] ? prof->sm2_id : NULL};
        }
        s->cert =
            ca_make_ca_cert(c, s->profile, subject, s->pub, &is, now + (time_t)days * 86400, e);
        if (s->cert == NULL)
                return e && e->code ? e->code : GMCA_ERR_INTERNAL;
        return 0;
}

/* The start transaction; the job record says it happened. */
static int start_commit(struct gmca_ctx *c, struct start *s, struct job *j, struct gmca_error *e)
{
        struct gmca_profile *prof = gmca_ctx_profile(c, s->profile, e);
        char key[GMCA_NAME_MAX], new_serial[GMCA_SERIAL_HEX_MAX];
        int64_t now = gmca_now(), new_id = 0;
        int found, rc, parent_revoked = 0, was_default;
        struct job cur;

        if (prof == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if (gmca_serial_hex(s->cert, new_serial, sizeof(new_serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "new CA certificate: serial");
        was_default = strcmp(c->cfg.default_ca, s->old->rec.name) == 0;
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return rc;
        /* Checked again under the write lock: another run may have started one. */
        if ((rc = job_load(c, &cur, &found, e)) != 0)
                goto fail;
        if (job_unfinished(&cur, found)) {
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "the compromise of CA %s (job %s) is unfinished: run gmca "
                                    "ca compromise --ca %s to finish it first",
                                    cur.old, cur.name, cur.old);
                goto fail;
        }
        if ((rc = ca_record_new(c->store, s->name, s->cert, s->profile, prof->sm2_id, s->index,
                                s->old->rec.parent_id, c->actor, gmca_device_description(c->dev),
                                &new_id, e)) != 0 ||
            (rc = gmca_store_ca_set_state(c->store, s->old->rec.id, GMCA_KEY_COMPROMISED, now,
                                          e)) != 0)
                goto fail;
        if (s->parent != NULL) {
                rc = gmca_store_cert_revoke(c->store, s->old_serial, now, REASON_CA_COMPROMISE, 0,
                                            e);
                if (rc == GMCA_ERR_STATE) { /* revoked before: it keeps its first reason */
                        gmca_error_clear(e);
                } else if (rc != 0 ||
                           (rc = audit_append(c, GMCA_EV_CERT_REVOKE, s->old_serial,
                                              json_pack("{s:s, s:s, s:s, s:s}", "ca",
                                                        s->parent->rec.name, "reason",
                                                        "cACompromise", "subject",
                                                        s->old->rec.subject, "job", s->name),
                                              e)) != 0) {
                        goto fail;
                } else {
                        parent_revoked = 1;
                }
        }
        if (was_default && (rc = gmca_store_meta_set(c->store, META_DEFAULT_CA, s->name, e)) != 0)
                goto fail;
        snprintf(key, sizeof(key), "%s%lld", META_SUCCESSOR, (long long)s->old->rec.id);
        if ((rc = gmca_store_meta_set(c->store, key, s->name, e)) != 0)
                goto fail;
        memset(j, 0, sizeof(*j));
        gmca_strlcpy(j->name, s->name, sizeof(j->name));
        gmca_strlcpy(j->old, s->old->rec.name, sizeof(j->old));
        gmca_strlcpy(j->new_ca, s->name, sizeof(j->new_ca));
        gmca_strlcpy(j->phase, PHASE_REISSUE, sizeof(j->phase));
        j->started = now;
        if ((rc = job_save(c, j, e)) != 0 ||
            (rc = audit_append(c, GMCA_EV_CA_COMPROMISE, s->old->rec.name,
                               json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:b}",
                                         "phase", "start", "custodians", c->custodians, "job",
                                         j->name, "old", j->old, "new", j->new_ca, "certificate",
                                         new_serial, "index", (int)s->index, "device",
                                         gmca_device_description(c->dev), "parent_revoked",
                                         parent_revoked, "default", was_default),
                               e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0)
                goto fail;
        if (was_default)
                gmca_strlcpy(c->cfg.default_ca, s->name, sizeof(c->cfg.default_ca));
        return 0;
fail:
        gmca_store_rollback(c->store);
        return rc;
}

static int start(struct gmca_ctx *c, const struct gmca_compromise_params *p, struct ca_slot *old,
                 struct job *j, struct gmca_error *e)
{
        struct start s;
        int rc;

        memset(&s, 0, sizeof(s));
        s.old = old;
        rc = start_prepare(c, p, &s, e);
        if (rc == 0)
                rc = start_commit(c, &s, j, e);
        if (rc != 0 && s.index != 0) {
                /*
                 * Nothing names the new key: take it out of the device again.
                 * Should that fail, ca_generate_key never reuses the index.
                 */
                struct gmca_error ignored = {0};

                if (gmca_device_destroy_key(c->dev, s.index, CTX_KEYPIN(c), KEYPIN_LEN, &ignored) !=
                    0)
                        gmca_error_clear(&ignored);
        }
        start_clear(&s);
        if (rc != 0)
                return rc;
        /* The old key now signs CRLs only; the new one is unlocked for the batches. */
        if ((rc = ca_slot_reload(c, old, e)) != 0 || (rc = ca_unlock_all(c, NULL, e)) != 0)
                return rc;
        return 0;
}

/* ---- re-issue in batches ---- */

static int collect_child(const struct gmca_ca_rec *r, void *arg)
{
        struct children *ch = arg;
        struct child *k;
        const uint8_t *p = r->cert_der;
        X509 *x;

        if (r->parent_id != ch->parent_id || r->id == ch->parent_id)
                return 0;
        if (ch->n == MAX_CAS)
                return GMCA_ERR_LIMIT;
        k = &ch->v[ch->n];
        if ((x = d2i_X509(NULL, &p, (long)r->cert_len)) == NULL ||
            gmca_serial_hex(x, k->serial, sizeof(k->serial)) != 0) {
                X509_free(x);
                gmca_ossl_clear();
                return GMCA_ERR_TAMPER;
        }
        X509_free(x);
        k->id = r->id;
        gmca_strlcpy(k->name, r->name, sizeof(k->name));
        ch->n++;
        return 0;
}

static const struct child *child_of(const struct children *ch, const char *serial)
{
        for (size_t i = 0; i < ch->n; i++)
                if (strcmp(ch->v[i].serial, serial) == 0)
                        return &ch->v[i];
        return NULL;
}

struct serials {
        char (*v)[GMCA_SERIAL_HEX_MAX];
        size_t n, cap;
        const char *skip; /* a compromised root's own certificate */
        uint64_t count;   /* when counting only (v == NULL) */
};

static int collect_serial(const struct gmca_cert_rec *r, void *arg)
{
        struct serials *s = arg;

        if (s->skip != NULL && strcmp(r->serial, s->skip) == 0)
                return 0;
        if (s->v == NULL) {
                s->count++;
                return 0;
        }
        if (s->n == s->cap)
                return 1;
        gmca_strlcpy(s->v[s->n++], r->serial, GMCA_SERIAL_HEX_MAX);
        return 0;
}

/* Up to s->cap serials of old's certificates in status valid, unexpired or expired. */
static int list_batch(struct gmca_ctx *c, int64_t ca_id, int status, struct serials *s,
                      struct gmca_error *e)
{
        struct gmca_cert_filter f = {0};
        int rc;

        f.ca_id = ca_id;
        f.status = status;
        f.now = gmca_now();
        f.limit = s->v != NULL ? (int64_t)s->cap + 1 : 0; /* +1: the root's own may be among them */
        s->n = 0;
        rc = gmca_store_cert_list(c->store, &f, collect_serial, s, e);
        return rc == 1 ? 0 : rc;
}

static int count_reissued(const char *o, const char *n, int64_t t, void *arg)
{
        (void)o;
        (void)n;
        (void)t;
        (*(uint64_t *)arg)++;
        return 0;
}

static int count_ca_compromise(const struct gmca_cert_rec *r, void *arg)
{
        if (r->reason == REASON_CA_COMPROMISE)
                (*(uint64_t *)arg)++;
        return 0;
}

/* One certificate of a batch, prepared outside the transaction. */
struct item {
        struct gmca_cert_rec old; /* with der */
        struct gmca_cert_rec rec; /* the replacement; serial "" when none (expired) */
        const struct child *child;
};

static void item_clear(struct item *it)
{
        gmca_cert_rec_clear(&it->old);
        gmca_cert_rec_clear(&it->rec);
        memset(it, 0, sizeof(*it));
}

struct run {
        struct gmca_ctx *c;
        struct job *j;
        struct ca_slot *old, *nw;
        struct children ch;
        struct tmpl_urls urls;
        time_t nw_end;
};

static int unique_serial(struct gmca_ctx *c, uint8_t serial[GMCA_SERIAL_LEN], struct gmca_error *e)
{
        int exists = 1, rc;

        for (int i = 0; i < SERIAL_TRIES && exists; i++) {
                char hex[GMCA_SERIAL_HEX_MAX];

                if ((rc = gmca_serial_random(serial, e)) != 0)
                        return rc;
                gmca_hex_upper(serial, GMCA_SERIAL_LEN, hex);
                if ((rc = gmca_store_serial_exists(c->store, hex, &exists, e)) != 0)
                        return rc;
        }
        if (exists)
                return gmca_error_set(e, GMCA_ERR_INTERNAL,
                                      "serial: no unique serial after %d tries", SERIAL_TRIES);
        return 0;
}

/* Sign the replacement of one certificate (no store writes). */
static int prepare_item(struct run *r, const char *serial, struct item *it, struct gmca_error *e)
{
        struct gmca_reissue_template t;
        struct gmca_ctx *c = r->c;
        time_t now = gmca_now();
        X509 *x = NULL;
        int rc;

        memset(it, 0, sizeof(*it));
        if ((rc = gmca_store_cert_get(c->store, serial, &it->old, e)) != 0)
                return rc;
        if (it->old.status != GMCA_CERT_VALID || it->old.not_after <= now)
                return 0; /* revoked meanwhile, or expired: no replacement */
        memset(&t, 0, sizeof(t));
        if ((rc = unique_serial(c, t.serial, e)) != 0)
                return rc;
        t.issuer = r->nw->cert;
        t.issuer_key = X509_get0_pubkey(r->nw->cert);
        t.signer = r->nw->signer;
        t.sm2_id = r->nw->rec.sm2_id[0] ? r->nw->rec.sm2_id : NULL;
        t.not_before = now;
        /* The old end date, unless the new CA ends first (CPS §6.8 rule 1). */
        t.not_after = it->old.not_after < r->nw_end ? (time_t)it->old.not_after : r->nw_end;
        t.crl_url = r->urls.crl;
        t.ocsp_url = r->urls.ocsp;
        t.ca_issuers_url = r->urls.ca_issuers;
        t.skip_self_check = !c->cfg.verify_after_sign;
        if ((x = gmca_cert_reissue(it->old.der, it->old.der_len, &t, e)) == NULL) {
                if (e == NULL)
                        return GMCA_ERR_INTERNAL;
                size_t n = strlen(e->msg);

                snprintf(e->msg + n, sizeof(e->msg) - n, " (certificate %s)", serial);
                return e->code ? e->code : GMCA_ERR_INTERNAL;
        }
        rc = ca_cert_record(x, r->nw->rec.id, it->old.profile, it->old.request_id, &it->rec, e);
        X509_free(x);
        if (rc != 0)
                return rc;
        it->child = child_of(&r->ch, serial);
        return 0;
}

/* Inside the batch transaction: revoke one, store its replacement and the pair. */
static int store_item(struct run *r, struct item *it, int64_t now, int *done, struct gmca_error *e)
{
        struct gmca_ctx *c = r->c;
        int rc;

        *done = 0;
        rc = gmca_store_cert_revoke(c->store, it->old.serial, now, REASON_CA_COMPROMISE, 0, e);
        if (rc == GMCA_ERR_STATE) { /* revoked by someone else since it was listed */
                gmca_error_clear(e);
                return 0;
        }
        if (rc != 0)
                return rc;
        *done = 1;
        if (it->rec.serial[0] == '\0')
                return audit_append(c, GMCA_EV_CERT_REVOKE, it->old.serial,
                                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "ca", r->old->rec.name,
                                              "reason", "cACompromise", "subject", it->old.subject,
                                              "job", r->j->name, "replacement", "none: expired"),
                                    e);
        if ((rc = gmca_store_cert_insert(c->store, &it->rec, e)) != 0 ||
            (rc = gmca_store_reissue_insert(c->store, r->j->name, it->old.serial, it->rec.serial,
                                            now, e)) != 0)
                return rc;
        if (it->child != NULL &&
            (rc = gmca_store_ca_set_cert(c->store, it->child->id, it->rec.der, it->rec.der_len,
                                         r->nw->rec.id, e)) != 0)
                return rc;
        return audit_append(c, GMCA_EV_CERT_REISSUE, it->old.serial,
                            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s?}", "job",
                                      r->j->name, "old_ca", r->old->rec.name, "ca", r->nw->rec.name,
                                      "revoked", "cACompromise", "new_serial", it->rec.serial,
                                      "subject", it->rec.subject, "not_after",
                                      (json_int_t)it->rec.not_after, "rehomed_ca",
                                      it->child != NULL ? it->child->name : NULL),
                            e);
}

/* One batch: sign outside the write lock, then one transaction. *processed: revoked. */
static int run_batch(struct run *r, const struct serials *s, uint64_t *processed,
                     struct gmca_error *e)
{
        struct gmca_ctx *c = r->c;
        struct item *items = calloc(s->n, sizeof(*items));
        int64_t now = gmca_now();
        uint64_t k = 0;
        int rc = 0;

        *processed = 0;
        if (items == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < s->n && rc == 0; i++)
                rc = prepare_item(r, s->v[i], &items[i], e);
        if (rc == 0 && (rc = gmca_store_begin(c->store, e)) == 0) {
                for (size_t i = 0; i < s->n && rc == 0; i++) {
                        int done = 0;

                        if (items[i].old.status != GMCA_CERT_VALID)
                                continue;
                        rc = store_item(r, &items[i], now, &done, e);
                        k += (uint64_t)done;
                }
                if (rc == 0)
                        rc = gmca_store_commit(c->store, e);
                if (rc != 0)
                        gmca_store_rollback(c->store);
        }
        /* Re-homed CAs issue under the new root from now on. */
        for (size_t i = 0; i < s->n && rc == 0; i++) {
                struct ca_slot *slot;

                if (items[i].child == NULL)
                        continue;
                if ((slot = ca_find(c, items[i].child->name, e)) == NULL)
                        rc = e && e->code ? e->code : GMCA_ERR_NOTFOUND;
                else
                        rc = ca_slot_reload(c, slot, e);
        }
        for (size_t i = 0; i < s->n; i++)
                item_clear(&items[i]);
        free(items);
        if (rc == 0)
                *processed = k;
        return rc;
}

static int reissue_all(struct gmca_ctx *c, struct job *j, size_t batch,
                       const struct gmca_compromise_params *p, struct gmca_error *e)
{
        static const struct gmca_profile any = {0}; /* for the URL scheme only */
        struct gmca_cert_template unused;
        char own[GMCA_SERIAL_HEX_MAX];
        struct serials s = {0};
        uint64_t done = 0, total;
        struct run r;
        int rc, status = GMCA_CERT_VALID;

        memset(&r, 0, sizeof(r));
        r.c = c;
        r.j = j;
        if ((r.old = ca_find(c, j->old, e)) == NULL || (r.nw = ca_find(c, j->new_ca, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if ((rc = ca_need_signer(c, r.nw, 1, e)) != 0)
                return rc;
        r.nw_end = ca_cert_not_after(r.nw->cert);
        memset(&unused, 0, sizeof(unused));
        if ((rc = ca_fill_template(&unused, &r.urls, &c->cfg, &any, r.nw->rec.name, e)) != 0)
                return rc;
        r.ch.parent_id = r.old->rec.id;
        if ((rc = gmca_store_ca_list(c->store, collect_child, &r.ch, e)) != 0)
                return e && e->code ? rc
                                    : gmca_error_set(e, rc, "CA %s: cannot list the CAs under it",
                                                     r.old->rec.name);
        if (gmca_serial_hex(r.old->cert, own, sizeof(own)) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: certificate serial", j->old);
        s.skip = r.old->rec.parent_id == 0 ? own : NULL;

        /* Progress: what this job did before, and what is left. */
        if ((rc = gmca_store_reissue_list(c->store, j->name, count_reissued, &done, e)) != 0 ||
            (rc = list_batch(c, r.old->rec.id, GMCA_CERT_VALID, &s, e)) != 0)
                return rc;
        total = done + s.count;
        s.count = 0;
        if ((rc = list_batch(c, r.old->rec.id, GMCA_STATUS_EXPIRED, &s, e)) != 0)
                return rc;
        total += s.count;
        if (p->progress != NULL)
                p->progress(p->progress_arg, done, total);

        if ((s.v = calloc(batch + 1, sizeof(*s.v))) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        s.cap = batch;
        for (;;) {
                uint64_t k;

                if ((rc = list_batch(c, r.old->rec.id, status, &s, e)) != 0)
                        break;
                if (s.n == 0 && status == GMCA_CERT_VALID) {
                        status = GMCA_STATUS_EXPIRED; /* then those that expired unrevoked */
                        continue;
                }
                if (s.n == 0)
                        break;
                if ((rc = run_batch(&r, &s, &k, e)) != 0)
                        break;
                done += k;
                if (k == 0 && status == GMCA_STATUS_EXPIRED) {
                        rc = gmca_error_set(e, GMCA_ERR_INTERNAL,
                                            "compromise: a batch revoked nothing; stopping");
                        break;
                }
                if (p->progress != NULL)
                        p->progress(p->progress_arg, done, total > done ? total : done);
        }
        free(s.v);
        return rc;
}

/* ---- done: the final CRLs ---- */

static int finish(struct gmca_ctx *c, struct job *j, struct gmca_compromise_result *out,
                  struct gmca_error *e)
{
        struct gmca_crl_rec crl;
        struct ca_slot *old, *parent = NULL;
        uint64_t revoked = 0, reissued = 0;
        int rc;

        memset(&crl, 0, sizeof(crl));
        if ((old = ca_find(c, j->old, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if (old->rec.parent_id != 0 && (parent = find_by_id(c, old->rec.parent_id, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        /*
         * The compromised key signs its last CRL (it may still sign CRLs);
         * the parent publishes the revoked CA certificate; the new CA
         * publishes its first, so the CRL URL in each replacement answers.
         */
        if ((rc = gmca_ca_crl_generate(c, j->old, 0, &crl, e)) != 0)
                return rc;
        j->crl_number = crl.number;
        gmca_crl_rec_clear(&crl);
        if ((parent != NULL && (rc = gmca_ca_crl_generate(c, parent->rec.name, 0, NULL, e)) != 0) ||
            (rc = gmca_ca_crl_generate(c, j->new_ca, 0, NULL, e)) != 0)
                return rc;
        if ((rc = gmca_store_revoked_list(c->store, old->rec.id, count_ca_compromise, &revoked,
                                          e)) != 0 ||
            (rc = gmca_store_reissue_list(c->store, j->name, count_reissued, &reissued, e)) != 0)
                return rc;
        gmca_strlcpy(j->phase, PHASE_DONE, sizeof(j->phase));
        if ((rc = gmca_store_begin(c->store, e)) != 0)
                return rc;
        if ((rc = job_save(c, j, e)) != 0 ||
            (rc = audit_append(c, GMCA_EV_CA_COMPROMISE, j->old,
                               json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "phase",
                                         "done", "custodians", c->custodians, "job", j->name, "old",
                                         j->old, "new", j->new_ca, "revoked", (json_int_t)revoked,
                                         "reissued", (json_int_t)reissued, "crl_number",
                                         (json_int_t)j->crl_number),
                               e)) != 0 ||
            (rc = gmca_store_commit(c->store, e)) != 0) {
                gmca_store_rollback(c->store);
                return rc;
        }
        if (out != NULL) {
                gmca_strlcpy(out->job, j->name, sizeof(out->job));
                gmca_strlcpy(out->new_ca, j->new_ca, sizeof(out->new_ca));
                out->revoked = revoked;
                out->reissued = reissued;
                out->crl_number = j->crl_number;
        }
        return 0;
}

/* ---- the ceremony ---- */

int gmca_ca_compromise(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                       const struct gmca_compromise_params *p, struct gmca_compromise_result *out,
                       struct gmca_error *e)
{
        static const struct gmca_compromise_params none = {0};
        char object[GMCA_NAME_MAX];
        struct ca_custody m;
        struct ca_slot *old = NULL;
        struct job j;
        size_t batch;
        int found, rc;

        if (p == NULL)
                p = &none;
        if (out != NULL)
                memset(out, 0, sizeof(*out));
        gmca_strlcpy(object, p->ca != NULL ? p->ca : c->cfg.default_ca, sizeof(object));
        batch = p->batch != 0 ? p->batch : DEFAULT_BATCH;
        if (batch > BATCH_MAX) {
                gmca_error_set(e, GMCA_ERR_INVALID, "compromise: at most %d certificates a batch",
                               BATCH_MAX);
                return ca_reject(c, GMCA_EV_CA_COMPROMISE, object, GMCA_ERR_INVALID, e);
        }
        if ((rc = job_load(c, &j, &found, e)) != 0)
                return ca_reject(c, GMCA_EV_CA_COMPROMISE, object, rc, e);
        if (job_unfinished(&j, found)) {
                /* Resume: the CA named must be the one being replaced. */
                if (p->ca != NULL && strcmp(p->ca, j.old) != 0) {
                        gmca_error_set(e, GMCA_ERR_STATE,
                                       "the compromise of CA %s (job %s) is unfinished: run gmca "
                                       "ca compromise --ca %s to finish it first",
                                       j.old, j.name, j.old);
                        return ca_reject(c, GMCA_EV_CA_COMPROMISE, object, GMCA_ERR_STATE, e);
                }
                gmca_strlcpy(object, j.old, sizeof(object));
        } else if ((old = ca_find(c, object, e)) == NULL) {
                return ca_reject(c, GMCA_EV_CA_COMPROMISE, object,
                                 e && e->code ? e->code : GMCA_ERR_NOTFOUND, e);
        }
        if ((rc = ca_ceremony_begin(c, cust, n, &m, e)) != 0)
                return ca_reject(c, GMCA_EV_CA_COMPROMISE, object, rc, e);
        if (old != NULL) {
                rc = start(c, p, old, &j, e);
        } else {
                /* Who carried on is on record too. */
                struct gmca_audit_event ev;
                char *detail = ca_detail_json(
                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "phase", "resume", "custodians",
                              c->custodians, "job", j.name, "old", j.old, "new", j.new_ca));

                ev = (struct gmca_audit_event){GMCA_EV_CA_COMPROMISE, c->actor, 1, j.old, detail};
                rc = detail != NULL ? gmca_audit_record(c->store, &ev, e)
                                    : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                free(detail);
        }
        if (rc == 0) {
                struct ca_slot *nw = ca_find(c, j.new_ca, e);

                rc = nw != NULL     ? write_ca_pem(c, nw, e)
                     : e && e->code ? e->code
                                    : GMCA_ERR_NOTFOUND;
        }
        if (rc == 0)
                rc = reissue_all(c, &j, batch, p, e);
        if (rc == 0)
                rc = finish(c, &j, out, e);
        ca_ceremony_end(c);
        if (rc != 0)
                return ca_reject(c, GMCA_EV_CA_COMPROMISE, object, rc, e);
        return 0;
}
