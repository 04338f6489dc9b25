/*
 * CA key changeover (CPS §6.8). Before a CA certificate runs out the CA gets
 * a new key pair and certificate; the old key stays in the device to sign
 * CRLs for what it issued until the last of that expires (rule 2) and issues
 * nothing more. A root issues the three certificates of §6.8 so that no
 * relying party is left without a trust path (rule 5): NewWithNew (the new
 * self-signed root), OldWithNew (the old public key certified by the new key,
 * for those who hold only the new root) and NewWithOld (the new public key
 * certified by the old key, for those who hold only the old root). An
 * operational CA's new certificate comes from its parent, or from the CA that
 * succeeded its parent. Everything is one store transaction with its audit
 * records, made in a key ceremony with the CA engine stopped; a refusal is
 * audited and leaves the store, the device and the published files as they
 * were.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca_internal.h"
#include "util.h"

/* + the new CA's id: what the rollover that made it produced (gmca_ca_rollover_info). */
#define META_ROLLOVER "ca.rollover."
#define META_KEY_MAX 48
#define GENERATION_MAX 999
#define LINK_OLD_WITH_NEW "old-with-new"
#define LINK_NEW_WITH_OLD "new-with-old"

struct rollover {
        struct ca_slot *old;
        struct ca_slot *parent;          /* who certifies an operational CA; NULL for a root */
        const struct gmca_profile *prof; /* root-ca or sub-ca; owned by the context */
        char name[GMCA_NAME_MAX];        /* the new CA */
        X509_NAME *dn;                   /* its subject */
        time_t not_after;                /* end of its certificate */
        unsigned index;                  /* its device key; 0 until generated */
        EVP_PKEY *pub;
        struct gmca_device_signer ds;
        X509 *nwn, *own, *nwo; /* NewWithNew (or the parent's certificate), the two links */
        char files[3][PATH_MAX];
        size_t nfiles;
};

static void rollover_clear(struct rollover *r)
{
        X509_NAME_free(r->dn);
        EVP_PKEY_free(r->pub);
        X509_free(r->nwn);
        X509_free(r->own);
        X509_free(r->nwo);
        OPENSSL_cleanse(&r->ds, sizeof(r->ds));
        memset(r, 0, sizeof(*r));
}

static void meta_key(char key[META_KEY_MAX], const char *prefix, int64_t id)
{
        snprintf(key, META_KEY_MAX, "%s%lld", prefix, (long long)id);
}

/* 1 if the CA may issue now: its key is active and its certificate has not ended. */
static int issues_now(const struct ca_slot *ca)
{
        return ca_state_issues(ca->rec.key_state) && ca_cert_not_after(ca->cert) > gmca_now();
}

/* 0 if no CA is called name; GMCA_ERR_EXISTS if one is. */
static int name_free(struct gmca_ctx *c, const char *name, struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        int rc;

        memset(&rec, 0, sizeof(rec));
        rc = gmca_store_ca_get(c->store, name, &rec, e);
        gmca_ca_rec_clear(&rec);
        if (rc == 0)
                return gmca_error_set(e, GMCA_ERR_EXISTS,
                                      "rollover: a CA named %s exists; choose another name", name);
        if (rc != GMCA_ERR_NOTFOUND)
                return rc;
        gmca_error_clear(e);
        return 0;
}

/* The next generation's free name: root -> root-g2, root-g2 -> root-g3 (or -g4 if taken). */
static int next_name(struct gmca_ctx *c, const char *old, char out[GMCA_NAME_MAX],
                     struct gmca_error *e)
{
        const char *dash = strrchr(old, '-');
        size_t base = strlen(old);
        unsigned long gen = 2;
        int rc;

        if (dash != NULL && dash[1] == 'g' && dash[2] >= '1' && dash[2] <= '9' &&
            strlen(dash + 2) <= 3 && strspn(dash + 2, "0123456789") == strlen(dash + 2)) {
                base = (size_t)(dash - old);
                gen = strtoul(dash + 2, NULL, 10) + 1;
        }
        for (; gen <= GENERATION_MAX; gen++) {
                int n = snprintf(out, GMCA_NAME_MAX, "%.*s-g%lu", (int)base, old, gen);

                if (n < 0 || n >= GMCA_NAME_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "rollover: CA %s: no room for a generation suffix "
                                              "in its name; give the new name",
                                              old);
                if ((rc = name_free(c, out, e)) != GMCA_ERR_EXISTS)
                        return rc;
                gmca_error_clear(e);
        }
        return gmca_error_set(e, GMCA_ERR_LIMIT, "rollover: CA %s: no free generation name", old);
}

/* The CA that replaced CA id, into out; GMCA_ERR_NOTFOUND if none. */
static int successor(struct gmca_ctx *c, int64_t id, char out[GMCA_NAME_MAX], struct gmca_error *e)
{
        char key[META_KEY_MAX];
        int rc;

        meta_key(key, META_SUCCESSOR, id);
        if ((rc = gmca_store_meta_get(c->store, key, out, GMCA_NAME_MAX, e)) != 0)
                return rc;
        if (!ca_valid_name(out))
                return gmca_error_set(e, GMCA_ERR_TAMPER, "store: metadata %s is not a CA name",
                                      key);
        return 0;
}

/* The CA that certifies the new key of operational CA old (see gmca_rollover_params.parent). */
static struct ca_slot *pick_parent(struct gmca_ctx *c, const struct ca_slot *old, const char *want,
                                   struct gmca_error *e)
{
        struct ca_slot *ca = NULL;
        struct gmca_ca_rec rec;
        char next[GMCA_NAME_MAX];
        int rc;

        if (want != NULL) {
                if ((ca = ca_find(c, want, e)) == NULL)
                        return NULL;
                if (ca == old) {
                        gmca_error_set(e, GMCA_ERR_INVALID,
                                       "rollover: CA %s cannot certify its own new key", want);
                        return NULL;
                }
                if (!issues_now(ca)) {
                        if (ca_state_issues(ca->rec.key_state))
                                gmca_error_set(e, GMCA_ERR_STATE,
                                               "rollover: parent %s issues no more (its "
                                               "certificate has expired)",
                                               want);
                        else
                                gmca_error_set(e, GMCA_ERR_STATE,
                                               "rollover: parent %s issues no more (its key is "
                                               "%s)",
                                               want, ca->rec.key_state);
                        return NULL;
                }
                return ca;
        }
        memset(&rec, 0, sizeof(rec));
        rc = gmca_store_ca_get_by_id(c->store, old->rec.parent_id, &rec, e);
        gmca_strlcpy(next, rec.name, sizeof(next));
        gmca_ca_rec_clear(&rec);
        if (rc != 0)
                return NULL;
        /* Follow the parent's successors until one still issues (bounded: each is a CA). */
        for (size_t hops = 0; hops <= MAX_CAS; hops++) {
                if ((ca = ca_find(c, next, e)) == NULL)
                        return NULL;
                if (issues_now(ca))
                        return ca;
                rc = successor(c, ca->rec.id, next, e);
                if (rc == GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(e);
                        gmca_error_set(e, GMCA_ERR_STATE,
                                       "rollover: parent %s of %s issues no more (its key is "
                                       "%s) and nothing replaced it: name a parent",
                                       ca->rec.name, old->rec.name, ca->rec.key_state);
                        return NULL;
                }
                if (rc != 0)
                        return NULL;
        }
        gmca_error_set(e, GMCA_ERR_TAMPER, "rollover: the successors of %s form a loop",
                       old->rec.name);
        return NULL;
}

/* GMCA_ERR_STATE if the CA's own certificate is on record as revoked. */
static int not_revoked(struct gmca_ctx *c, struct ca_slot *ca, struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX];
        struct gmca_cert_rec cr;
        int rc;

        if (gmca_serial_hex(ca->cert, serial, sizeof(serial)) != 0)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "CA %s: certificate serial",
                                      ca->rec.name);
        memset(&cr, 0, sizeof(cr));
        rc = gmca_store_cert_get(c->store, serial, &cr, e);
        if (rc == 0 && cr.status == GMCA_CERT_REVOKED)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "rollover: CA %s: its certificate is revoked; that is a "
                                    "compromise (CPS §6.10.3), not a rollover",
                                    ca->rec.name);
        gmca_cert_rec_clear(&cr);
        return rc;
}

/* Everything that can be decided before the custodians open the keys. */
static int rollover_check(struct gmca_ctx *c, const struct gmca_rollover_params *p,
                          struct rollover *r, struct gmca_error *e)
{
        const X509_NAME *old_dn;
        time_t now = gmca_now(), old_end;
        int root, days, rc;

        if ((r->old = ca_find(c, p->ca, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        root = r->old->rec.parent_id == 0;
        old_end = ca_cert_not_after(r->old->cert);
        if (!ca_state_issues(r->old->rec.key_state)) {
                char next[GMCA_NAME_MAX] = "";
                struct gmca_error ignored = {0};

                (void)successor(c, r->old->rec.id, next, &ignored);
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "rollover: CA %s: its key is already %s%s%s",
                                      r->old->rec.name, r->old->rec.key_state,
                                      next[0] ? "; its successor is " : "", next);
        }
        if ((rc = not_revoked(c, r->old, e)) != 0)
                return rc;
        if (root && old_end <= now)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "rollover: root %s has expired, so it can certify no "
                                      "successor (CPS §6.8 rule 5): make a new root",
                                      r->old->rec.name);
        if (root && p->parent != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "rollover: CA %s is a root; a root has no parent",
                                      r->old->rec.name);
        if (p->new_name != NULL) {
                if (!ca_valid_name(p->new_name))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "rollover: CA name must be [a-z0-9_-]{1,63}");
                if ((rc = name_free(c, p->new_name, e)) != 0)
                        return rc;
                gmca_strlcpy(r->name, p->new_name, sizeof(r->name));
        } else if ((rc = next_name(c, r->old->rec.name, r->name, e)) != 0) {
                return rc;
        }
        if ((r->prof = gmca_ctx_profile(c, root ? "root-ca" : "sub-ca", e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        old_dn = X509_get_subject_name(r->old->cert);
        if (p->dn != NULL)
                r->dn = gmca_dn_parse(p->dn, e);
        else
                r->dn = X509_NAME_dup(old_dn);
        if (r->dn == NULL)
                return e && e->code ? e->code : GMCA_ERR_INVALID;
        if (p->days < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "rollover: days must be positive");
        days = p->days > 0 ? p->days : r->prof->validity_days;
        if ((rc = gmca_profile_check(r->prof, r->dn, NULL, days, e)) != 0)
                return rc;
        r->not_after = now + (time_t)days * 86400;
        if (root) {
                /* OldWithNew runs to the old root's end, inside the new root's life. */
                if (r->not_after < old_end)
                        return gmca_error_set(e, GMCA_ERR_POLICY,
                                              "rollover: the new root would end before the "
                                              "certificate of %s (%lld days left), leaving a "
                                              "gap in trust (CPS §6.8 rule 5): ask for more "
                                              "days",
                                              r->old->rec.name,
                                              (long long)((old_end - now) / 86400));
                return 0;
        }
        if ((r->parent = pick_parent(c, r->old, p->parent, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if (X509_check_ca(r->parent->cert) < 1 || X509_get_pathlen(r->parent->cert) == 0)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "rollover: %s cannot certify a CA (its pathLenConstraint "
                                      "is 0)",
                                      r->parent->rec.name);
        return ca_within_issuer(r->parent->rec.name, ca_cert_not_after(r->parent->cert),
                                r->not_after, e);
}

/* Sign the new certificates; no store writes. */
static int rollover_build(struct gmca_ctx *c, struct rollover *r, struct gmca_error *e)
{
        struct ca_issuer is;
        time_t old_end = ca_cert_not_after(r->old->cert);
        int rc;

        if (r->parent != NULL) {
                if ((rc = ca_slot_issuer(r->parent, &is, e)) != 0)
                        return rc;
                r->nwn = ca_make_ca_cert(c, r->prof->name, r->dn, r->pub, &is, r->not_after, e);
                return r->nwn != NULL ? 0 : e && e->code ? e->code : GMCA_ERR_INTERNAL;
        }
        is = (struct ca_issuer){r->name, NULL, r->pub, &r->ds.base, r->prof->sm2_id};
        if ((r->nwn = ca_make_ca_cert(c, r->prof->name, r->dn, r->pub, &is, r->not_after, e)) ==
            NULL)
                return e && e->code ? e->code : GMCA_ERR_INTERNAL;
        /* OldWithNew: ends with the old root; it vouches for nothing the old root did not. */
        is = (struct ca_issuer){r->name, r->nwn, r->pub, &r->ds.base, r->prof->sm2_id};
        if ((r->own = ca_make_ca_cert(c, r->prof->name, X509_get_subject_name(r->old->cert),
                                      X509_get0_pubkey(r->old->cert), &is, old_end, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_INTERNAL;
        /* NewWithOld: the old key certifies nothing past its own end (rule 1). */
        if ((rc = ca_slot_issuer(r->old, &is, e)) != 0)
                return rc;
        r->nwo = ca_make_ca_cert(c, r->prof->name, r->dn, r->pub, &is,
                                 r->not_after < old_end ? r->not_after : old_end, e);
        return r->nwo != NULL ? 0 : e && e->code ? e->code : GMCA_ERR_INTERNAL;
}

/* Inside the transaction: a link certificate, recorded under its issuer with its audit record. */
static int record_link(struct gmca_ctx *c, X509 *cert, int64_t issuer_id, const char *issuer,
                       const char *link, struct gmca_error *e)
{
        struct gmca_cert_rec cr;
        struct gmca_audit_event ev;
        char *detail = NULL;
        int rc;

        if ((rc = ca_cert_record(cert, issuer_id, "root-ca", 0, &cr, e)) == 0 &&
            (rc = gmca_store_cert_insert(c->store, &cr, e)) == 0) {
                detail = ca_detail_json(json_pack("{s:s, s:s, s:s, s:s, s:s}", "ca", issuer,
                                                  "profile", "root-ca", "subject", cr.subject,
                                                  "fingerprint", cr.fingerprint, "link", link));
                ev = (struct gmca_audit_event){GMCA_EV_CERT_ISSUE, c->actor, 1, cr.serial, detail};
                rc = detail != NULL ? gmca_audit_append(c->store, &ev, e)
                                    : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        free(detail);
        gmca_cert_rec_clear(&cr);
        return rc;
}

/* Publish cert as certs/<name><suffix>.pem, replacing what an interrupted ceremony left. */
static int publish(struct gmca_ctx *c, struct rollover *r, const char *suffix, X509 *cert,
                   struct gmca_error *e)
{
        char *path = r->files[r->nfiles], *pem;
        BIO *b = NULL;
        long n;
        int rc;

        if ((rc = ca_pathf(path, PATH_MAX, e, "%s/certs/%s%s.pem", c->dir, r->name, suffix)) != 0)
                return rc;
        if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, cert) != 1) {
                BIO_free(b);
                return gmca_error_ossl(e, GMCA_ERR_INTERNAL, "%s: cannot encode", path);
        }
        n = BIO_get_mem_data(b, &pem);
        rc = gmca_write_file_atomic(path, pem, (size_t)n, 0644, e);
        BIO_free(b);
        if (rc == 0)
                r->nfiles++;
        return rc;
}

/*
 * Inside the transaction: the old key is still active, so that two ceremonies
 * run at once on one CA cannot both replace it.
 */
static int still_active(struct gmca_ctx *c, const struct ca_slot *old, struct gmca_error *e)
{
        struct gmca_ca_rec rec;
        int rc;

        memset(&rec, 0, sizeof(rec));
        if ((rc = gmca_store_ca_get(c->store, old->rec.name, &rec, e)) == 0 &&
            (rec.id != old->rec.id || !ca_state_issues(rec.key_state)))
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "rollover: CA %s changed during the ceremony (its key is now "
                                    "%s)",
                                    old->rec.name, rec.key_state);
        gmca_ca_rec_clear(&rec);
        return rc;
}

static int rollover_commit(struct gmca_ctx *c, struct rollover *r, struct gmca_rollover_result *out,
                           struct gmca_error *e)
{
        struct gmca_store *s = c->store;
        struct gmca_audit_event ev;
        char key[META_KEY_MAX], *info = NULL, *detail = NULL;
        const char *old = r->old->rec.name;
        int was_default = strcmp(c->cfg.default_ca, old) == 0;
        int64_t new_id = 0;
        int rc;

        memset(out, 0, sizeof(*out));
        gmca_strlcpy(out->name, r->name, sizeof(out->name));
        if (gmca_serial_hex(r->nwn, out->new_with_new, sizeof(out->new_with_new)) != 0 ||
            (r->own != NULL &&
             gmca_serial_hex(r->own, out->old_with_new, sizeof(out->old_with_new)) != 0) ||
            (r->nwo != NULL &&
             gmca_serial_hex(r->nwo, out->new_with_old, sizeof(out->new_with_old)) != 0))
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "rollover: certificate serial");
        info = ca_detail_json(json_pack("{s:s, s:s, s:s, s:s}", "old", old, "new_with_new",
                                        out->new_with_new, "old_with_new", out->old_with_new,
                                        "new_with_old", out->new_with_old));
        detail = ca_detail_json(json_pack(
            "{s:s, s:s, s:s?, s:s, s:s, s:s, s:I, s:i, s:s, s:s, s:b}", "ca", old, "new", r->name,
            "parent", r->parent ? r->parent->rec.name : NULL, "new_with_new", out->new_with_new,
            "old_with_new", out->old_with_new, "new_with_old", out->new_with_old, "not_after",
            (json_int_t)r->not_after, "index", (int)r->index, "device",
            gmca_device_description(c->dev), "custodians", c->custodians, "default", was_default));
        if (info == NULL || detail == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if ((rc = gmca_store_begin(s, e)) != 0)
                goto out;
        if ((rc = still_active(c, r->old, e)) != 0)
                goto fail;
        if ((rc = ca_record_new(s, r->name, r->nwn, r->prof->name, r->prof->sm2_id, r->index,
                                r->parent ? r->parent->rec.id : 0, c->actor,
                                gmca_device_description(c->dev), &new_id, e)) != 0)
                goto fail;
        if (r->own != NULL &&
            ((rc = record_link(c, r->own, new_id, r->name, LINK_OLD_WITH_NEW, e)) != 0 ||
             (rc = record_link(c, r->nwo, r->old->rec.id, old, LINK_NEW_WITH_OLD, e)) != 0))
                goto fail;
        if ((rc = gmca_store_ca_set_state(s, r->old->rec.id, GMCA_KEY_SUPERSEDED, gmca_now(), e)) !=
            0)
                goto fail;
        meta_key(key, META_SUCCESSOR, r->old->rec.id);
        if ((rc = gmca_store_meta_set(s, key, r->name, e)) != 0)
                goto fail;
        meta_key(key, META_ROLLOVER, new_id);
        if ((rc = gmca_store_meta_set(s, key, info, e)) != 0)
                goto fail;
        if (was_default && (rc = gmca_store_meta_set(s, META_DEFAULT_CA, r->name, e)) != 0)
                goto fail;
        ev = (struct gmca_audit_event){GMCA_EV_KEY_ROLLOVER, c->actor, 1, old, detail};
        if ((rc = gmca_audit_append(s, &ev, e)) != 0)
                goto fail;
        /* §6.8 rule 4: the new certificates are published with the commit, or not at all. */
        if ((rc = publish(c, r, "", r->nwn, e)) != 0 ||
            (r->own != NULL && (rc = publish(c, r, "." LINK_OLD_WITH_NEW, r->own, e)) != 0) ||
            (r->nwo != NULL && (rc = publish(c, r, "." LINK_NEW_WITH_OLD, r->nwo, e)) != 0))
                goto fail;
        if ((rc = gmca_store_commit(s, e)) != 0)
                goto fail;
        rc = 0;
        goto out;
fail:
        gmca_store_rollback(s);
        for (size_t i = 0; i < r->nfiles; i++)
                unlink(r->files[i]);
        r->nfiles = 0;
out:
        free(info);
        free(detail);
        return rc;
}

/* Take back a key made by a ceremony that failed (a device without SDFX_Destroy keeps it unused).
 */
static void discard_key(struct gmca_ctx *c, unsigned index)
{
        struct gmca_error ignored = {0};

        gmca_device_lock(c->dev, index);
        if (gmca_device_destroy_key(c->dev, index, CTX_KEYPIN(c), KEYPIN_LEN, &ignored) != 0)
                gmca_ossl_clear();
}

int gmca_ca_rollover(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n,
                     const struct gmca_rollover_params *p, struct gmca_rollover_result *out,
                     struct gmca_error *e)
{
        struct rollover r;
        struct ca_custody m;
        const char *object = p != NULL && p->ca != NULL ? p->ca : c->cfg.default_ca;
        int rc, ceremony = 0;

        memset(&r, 0, sizeof(r));
        if (p == NULL || out == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "rollover: no parameters");
                goto fail;
        }
        if ((rc = rollover_check(c, p, &r, e)) != 0)
                goto fail;
        if ((rc = ca_ceremony_begin(c, cust, n, &m, e)) != 0)
                goto fail;
        OPENSSL_cleanse(&m, sizeof(m));
        ceremony = 1;
        if ((rc = ca_generate_key(c, &r.index, &r.pub, e)) != 0)
                goto fail;
        if ((rc = gmca_device_signer_init(&r.ds, c->dev, r.index, r.pub, r.prof->sm2_id, e)) != 0 ||
            (rc = rollover_build(c, &r, e)) != 0 || (rc = rollover_commit(c, &r, out, e)) != 0)
                goto fail;
        gmca_device_lock(c->dev, r.index);
        ca_ceremony_end(c);
        /* The context follows the store: the old key is superseded, the default may move. */
        gmca_strlcpy(r.old->rec.key_state, GMCA_KEY_SUPERSEDED, sizeof(r.old->rec.key_state));
        r.old->rec.state_time = gmca_now();
        if (strcmp(c->cfg.default_ca, r.old->rec.name) == 0)
                gmca_strlcpy(c->cfg.default_ca, r.name, sizeof(c->cfg.default_ca));
        rollover_clear(&r);
        return 0;
fail:
        if (ceremony) {
                if (r.index != 0)
                        discard_key(c, r.index);
                ca_ceremony_end(c);
        }
        rollover_clear(&r);
        return ca_reject(c, GMCA_EV_KEY_ROLLOVER, object, rc, e);
}

static int info_string(json_t *root, const char *key, char *out, size_t len, struct gmca_error *e)
{
        json_t *v = json_object_get(root, key);

        if (!json_is_string(v) || json_string_length(v) >= len)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "rollover record: bad \"%s\"", key);
        gmca_strlcpy(out, json_string_value(v), len);
        return 0;
}

int gmca_ca_rollover_info(struct gmca_ctx *c, const char *name, char old[GMCA_NAME_MAX],
                          struct gmca_rollover_result *out, struct gmca_error *e)
{
        static const char *const known[] = {"old", "new_with_new", "old_with_new", "new_with_old"};
        struct gmca_rollover_result res;
        struct ca_slot *ca;
        char key[META_KEY_MAX], prev[GMCA_NAME_MAX], *buf = NULL;
        json_t *root = NULL;
        json_error_t jerr;
        int rc;

        if ((ca = ca_find(c, name, e)) == NULL)
                return e && e->code ? e->code : GMCA_ERR_NOTFOUND;
        if ((buf = malloc(GMCA_META_VALUE_MAX)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        meta_key(key, META_ROLLOVER, ca->rec.id);
        if ((rc = gmca_store_meta_get(c->store, key, buf, GMCA_META_VALUE_MAX, e)) != 0) {
                if (rc == GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(e);
                        gmca_error_set(e, rc, "CA %s was not made by a key rollover", ca->rec.name);
                }
                goto out;
        }
        memset(&res, 0, sizeof(res));
        gmca_strlcpy(res.name, ca->rec.name, sizeof(res.name));
        rc = GMCA_ERR_TAMPER;
        if ((root = json_loads(buf, JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
            !json_is_object(root) ||
            ca_json_unknown_key(root, known, sizeof(known) / sizeof(known[0])) != NULL) {
                gmca_error_set(e, rc, "rollover record %s: not what gmca wrote", key);
                goto out;
        }
        if ((rc = info_string(root, "old", prev, sizeof(prev), e)) != 0 ||
            (rc = info_string(root, "new_with_new", res.new_with_new, sizeof(res.new_with_new),
                              e)) != 0 ||
            (rc = info_string(root, "old_with_new", res.old_with_new, sizeof(res.old_with_new),
                              e)) != 0 ||
            (rc = info_string(root, "new_with_old", res.new_with_old, sizeof(res.new_with_old),
                              e)) != 0)
                goto out;
        gmca_strlcpy(old, prev, GMCA_NAME_MAX);
        *out = res;
        rc = 0;
out:
        json_decref(root);
        free(buf);
        return rc;
}
