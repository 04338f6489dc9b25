/*
 * Applications (CPS §3.1–§3.3, and §3.6–§3.8 for renew, rekey, reissue and
 * change, which go through the same workflow): a data-entry operator
 * submits (the CSR's proof of possession and the profile's rules are
 * checked at once, so nobody vets what the CA would refuse), another
 * operator records the identity vetting (§3.2.1: who, how, which
 * documents, result, when), a business admin who did not submit approves
 * or rejects with a reason, and the CA engine issues after checking all of
 * it again (ra_check.c). Each step keeps the operator's signed request.
 * Processing time is measured in working days (§3.2.3); the applicant is
 * notified of a rejection here and of the issued certificate by the CA
 * engine (§3.2.4, §3.3.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "audit.h"
#include "ca.h"
#include "profile.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "template.h"
#include "util.h"

#define OBJ_MAX 64

static const char SQL_INSERT[] =
    "INSERT INTO applications (applicant_id, type, state, ca, profile, days, "
    "csr, info_json, "
    "materials, old_serial, carrier, affiliation_confirmed, submitted_by, "
    "submitted_at, "
    "submit_auth) VALUES (?, ?, 'submitted', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?) RETURNING id";
static const char SQL_NO_PUBLISH[] = "UPDATE applications SET publish_directory = 0 WHERE id = ?";
static const char SQL_APPLICANT_EXISTS[] = "SELECT id FROM applicants WHERE id = ?";
static const char SQL_ISSUED_BY[] =
    "SELECT id, applicant_id FROM applications WHERE issued_serial = ? ORDER "
    "BY id LIMIT 1";
static const char SQL_VET[] = "UPDATE applications SET state = ?, vetted_by = "
                              "?, vetted_at = ?, vet_method = ?, "
                              "vet_documents = ?, vet_result = ?, vet_auth = ? "
                              "WHERE id = ? AND state = 'submitted'";
static const char SQL_DECIDE[] =
    "UPDATE applications SET state = ?, decided_by = ?, decided_at = ?, "
    "decision_reason = ?, "
    "decide_auth = ? WHERE id = ? AND state = ?";
static const char SQL_LIST[] = "SELECT " RA_APP_COLS " FROM applications"
                               " WHERE (? = '' OR state = ?) AND (? = 0 OR applicant_id = ?)"
                               " ORDER BY id LIMIT ? OFFSET ?";
static const char SQL_COUNT[] = "SELECT COUNT(*) FROM applications"
                                " WHERE (? = '' OR state = ?) AND (? = 0 OR applicant_id = ?)";
static const char SQL_NOTES[] =
    "SELECT id, application_id, revocation_id, channel, recipient, text, time "
    "FROM notifications"
    " WHERE (? = 0 OR application_id = ?) ORDER BY id DESC LIMIT ?";

static void app_object(char out[OBJ_MAX], int64_t id)
{
        snprintf(out, OBJ_MAX, "application:%lld", (long long)id);
}

static json_t *json_or_null(const char *text)
{
        json_t *j = text != NULL ? json_loads(text, 0, NULL) : NULL;

        return j != NULL ? j : json_null();
}

static json_t *str_or_null(const char *s)
{
        return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t t)
{
        return t > 0 ? json_integer(t) : json_null();
}

/* The application as the API shows it, with its processing time (§3.2.3). */
static json_t *app_json(const struct ra_app *a, int64_t now)
{
        const unsigned char *p = a->csr;
        X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)a->csr_len);
        char subject[GMCA_DN_MAX] = "", sub[RA_SUBMISSION_HEX + 1];
        struct gmca_error ignored = {0};
        int64_t end, working;
        json_t *o;

        if (req == NULL ||
            gmca_dn_format(X509_REQ_get_subject_name(req), subject, sizeof(subject), &ignored) != 0)
                subject[0] = '\0';
        X509_REQ_free(req);
        gmca_ossl_clear();
        end = a->issued_at > 0                                            ? a->issued_at
              : a->decided_at > 0                                         ? a->decided_at
              : strcmp(a->state, RA_ST_REJECTED) == 0 && a->vetted_at > 0 ? a->vetted_at
                                                                          : now;
        working = gmca_ra_working_seconds(a->submitted_at, end);
        o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:i, s:s}", "id", (json_int_t)a->id,
                      "applicant", (json_int_t)a->applicant_id, "type", a->type, "state", a->state,
                      "ca", a->ca, "profile", a->profile, "days", a->days, "subject", subject);
        if (o == NULL)
                return NULL;
        json_object_set_new(o, "subject_info", json_or_null(a->info_json));
        json_object_set_new(o, "materials",
                            a->materials ? json_or_null(a->materials) : json_array());
        json_object_set_new(o, "old_serial", str_or_null(a->old_serial));
        json_object_set_new(o, "carrier", str_or_null(a->carrier));
        json_object_set_new(o, "affiliation_confirmed", json_boolean(a->affiliation_confirmed));
        json_object_set_new(
            o, "submission",
            ra_submission_digest(a->submit_auth, a->submit_auth_len, sub, &ignored) == 0
                ? json_string(sub)
                : json_null());
        json_object_set_new(o, "submitted_by", json_string(a->submitted_by));
        json_object_set_new(o, "submitted_at", json_integer(a->submitted_at));
        json_object_set_new(o, "vetted_by", str_or_null(a->vetted_by));
        json_object_set_new(o, "vetted_at", time_or_null(a->vetted_at));
        json_object_set_new(o, "vet_method", str_or_null(a->vet_method));
        json_object_set_new(o, "vet_documents", json_or_null(a->vet_documents));
        json_object_set_new(o, "vet_result", str_or_null(a->vet_result));
        json_object_set_new(o, "decided_by", str_or_null(a->decided_by));
        json_object_set_new(o, "decided_at", time_or_null(a->decided_at));
        json_object_set_new(o, "decision_reason", str_or_null(a->decision_reason));
        json_object_set_new(o, "issued_serial", str_or_null(a->issued_serial));
        json_object_set_new(o, "issued_at", time_or_null(a->issued_at));
        json_object_set_new(o, "elapsed_seconds",
                            json_integer(end > a->submitted_at ? end - a->submitted_at : 0));
        json_object_set_new(o, "working_days", json_real((double)working / 86400.0));
        json_object_set_new(o, "overdue",
                            json_boolean(working > (int64_t)GMCA_RA_WORKING_DAYS * 86400));
        return o;
}

static int respond(struct gmca_store *s, int64_t id, int64_t now, json_t **out,
                   struct gmca_error *e)
{
        struct ra_app a;
        int rc;

        if ((rc = ra_app_load(s, id, &a, e)) != 0)
                return rc;
        *out = app_json(&a, now);
        ra_app_clear(&a);
        return *out != NULL ? 0 : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
}

/*
 * The step names the submission on record (ra_internal.h): a vetting or an
 * approval of what the operator read, not of what the row holds by now.
 */
static int same_submission(const struct ra_app *a, const char *named, struct gmca_error *e)
{
        char sub[RA_SUBMISSION_HEX + 1];
        int rc;

        if ((rc = ra_submission_digest(a->submit_auth, a->submit_auth_len, sub, e)) != 0)
                return rc;
        if (strcmp(named, sub) != 0)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "submission: application %lld is submission %s, not the "
                                      "one named; read it again",
                                      (long long)a->id, sub);
        return 0;
}

/* ---- submission ---- */

struct submission {
        struct ra_application_body b;
        uint8_t *csr;
        size_t csr_len;
        char *info;
        char *materials;
        char old_serial[GMCA_SERIAL_HEX_MAX];
        char profile[GMCA_NAME_MAX];
        char ca[GMCA_NAME_MAX];
        int64_t applicant;
};

static void submission_clear(struct submission *sb)
{
        ra_application_body_clear(&sb->b);
        OPENSSL_free(sb->csr);
        free(sb->info);
        free(sb->materials);
        memset(sb, 0, sizeof(*sb));
}

/* The applicant of a lifecycle application: the old certificate's, else the
 * body's. */
static int lifecycle_applicant(struct gmca_store *s, struct submission *sb, struct gmca_error *e)
{
        struct gmca_q q;
        int64_t found = 0, app = 0;
        int rc;

        if ((rc = gmca_q_open(s, SQL_ISSUED_BY, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, sb->old_serial);
        rc = gmca_q_step(&q, e, "application of %s", sb->old_serial);
        if (rc == GMCA_DB_ROW) {
                app = gmca_q_col_int(&q, 0);
                found = gmca_q_col_int(&q, 1);
        }
        gmca_q_close(&q);
        if (rc < 0)
                return rc;
        if (found != 0 && sb->b.applicant != 0 && sb->b.applicant != found)
                return gmca_error_set(e, GMCA_ERR_POLICY,
                                      "applicant: certificate %s was issued to applicant %lld "
                                      "(application %lld), not %lld",
                                      sb->old_serial, (long long)found, (long long)app,
                                      (long long)sb->b.applicant);
        if (found == 0 && sb->b.applicant == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "applicant: required (certificate %s was not issued through "
                                      "an application)",
                                      sb->old_serial);
        sb->applicant = found != 0 ? found : sb->b.applicant;
        return 0;
}

/* Inside the transaction: every check that needs the store, the profile or the
 * CSR. */
static int submission_check(const struct gmca_ra_env *env, enum gmca_app_type type,
                            struct submission *sb, int64_t now, struct gmca_error *e)
{
        struct gmca_cert_rec old;
        struct gmca_ca_rec ca;
        struct gmca_profile *prof = NULL;
        struct gmca_subject_info *info = NULL;
        X509_REQ *req = NULL;
        struct gmca_q q;
        char dir[4096];
        int rc, disabled = 0;

        memset(&old, 0, sizeof(old));
        memset(&ca, 0, sizeof(ca));
        if (type != GMCA_APP_NEW) {
                rc = gmca_store_cert_get(env->store, sb->old_serial, &old, e);
                if (rc == GMCA_ERR_NOTFOUND) {
                        gmca_error_clear(e);
                        rc = gmca_error_set(e, GMCA_ERR_NOTFOUND,
                                            "certificate %s: not issued by this CA (CPS §3.6.4)",
                                            sb->old_serial);
                }
                if (rc != 0)
                        goto out;
                gmca_strlcpy(sb->profile, sb->b.profile != NULL ? sb->b.profile : old.profile,
                             sizeof(sb->profile));
                if ((rc = lifecycle_applicant(env->store, sb, e)) != 0)
                        goto out;
                /* §3.6.2: renewed, rekeyed or reissued, the same certificate; a change
                 * brings its own information. */
                if (sb->info == NULL && type != GMCA_APP_CHANGE &&
                    (rc = ra_old_info(env->store, sb->old_serial, &sb->info, e)) != 0)
                        goto out;
        } else {
                gmca_strlcpy(sb->profile, sb->b.profile, sizeof(sb->profile));
                sb->applicant = sb->b.applicant;
        }
        if ((rc = gmca_q_open(env->store, SQL_APPLICANT_EXISTS, &q, e)) != 0)
                goto out;
        gmca_q_int(&q, sb->applicant);
        rc = gmca_q_step(&q, e, "applicant %lld", (long long)sb->applicant);
        gmca_q_close(&q);
        if (rc == GMCA_DB_DONE)
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "applicant %lld: no such applicant",
                                    (long long)sb->applicant);
        if (rc < 0)
                goto out;
        if (ra_internal_profile(sb->profile)) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "profile %s: issued by the custodians, not through the RA",
                                    sb->profile);
                goto out;
        }
        /* The template admin's switch (template.h); applications approved before it was
         * thrown stay issuable: gmca_ra_check_approvals does not look at it. */
        if ((rc = gmca_template_disabled(env->store, sb->profile, &disabled, e)) != 0)
                goto out;
        if (disabled) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY, "profile %s is disabled", sb->profile);
                goto out;
        }
        if (env->dir == NULL ||
            (size_t)snprintf(dir, sizeof(dir), "%s/profiles", env->dir) >= sizeof(dir)) {
                rc = gmca_error_set(e, GMCA_ERR_INTERNAL, "RA: no state directory");
                goto out;
        }
        if ((prof = gmca_profile_find(dir, sb->profile, e)) == NULL) {
                rc = e->code != 0 ? e->code : GMCA_ERR_NOTFOUND;
                goto out;
        }
        if (prof->ca) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "profile %s: CA certificates are made by a key ceremony",
                                    prof->name);
                goto out;
        }
        if (sb->b.ca != NULL)
                gmca_strlcpy(sb->ca, sb->b.ca, sizeof(sb->ca));
        else if ((rc = ra_default_ca(env->store, env->dir, sb->ca, e)) != 0)
                goto out;
        rc = gmca_store_ca_get(env->store, sb->ca, &ca, e);
        if (rc == GMCA_ERR_NOTFOUND || (rc == GMCA_ERR_INVALID && sb->ca[0] == '\0')) {
                gmca_error_clear(e);
                rc = gmca_error_set(e, GMCA_ERR_NOTFOUND, "ca: no CA named \"%s\"", sb->ca);
        }
        if (rc != 0)
                goto out;
        if (strcmp(ca.key_state, GMCA_KEY_ACTIVE) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE, "CA %s: its key is %s; it issues no more",
                                    ca.name, ca.key_state);
                goto out;
        }
        if (ca.parent_id == 0) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "CA %s is a root: it certifies CAs only; name the operational "
                                    "CA",
                                    ca.name);
                goto out;
        }
        /* The CSR's proof of possession (CPS §2.2.1) under the profile's SM2 ID. */
        if ((req = gmca_csr_parse(sb->csr, sb->csr_len, prof->sm2_id, e)) == NULL) {
                rc = e->code != 0 ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        if (sb->info != NULL &&
            (info = gmca_subject_info_parse(sb->info, strlen(sb->info), e)) == NULL) {
                rc = e->code != 0 ? e->code : GMCA_ERR_INVALID;
                goto out;
        }
        if ((rc = gmca_profile_check(prof, X509_REQ_get_subject_name(req), info, sb->b.days, e)) !=
            0)
                goto out;
        rc = ra_lifecycle_check(env->store, type, sb->old_serial, sb->profile, sb->csr, sb->csr_len,
                                sb->info, sb->b.carrier, sb->b.affiliation_confirmed, 0, now, NULL,
                                e);
out:
        gmca_cert_rec_clear(&old);
        gmca_ca_rec_clear(&ca);
        gmca_profile_free(prof);
        gmca_subject_info_free(info);
        X509_REQ_free(req);
        return rc;
}

int gmca_ra_application_submit(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               enum gmca_app_type type, const char *old_serial, const uint8_t *body,
                               size_t len, int64_t now, json_t **out, struct gmca_error *e)
{
        struct submission sb;
        char object[OBJ_MAX] = "application";
        struct gmca_q q;
        int64_t id = 0;
        int rc;

        memset(&sb, 0, sizeof(sb));
        if (type != GMCA_APP_NEW && old_serial != NULL)
                ra_show(object, sizeof(object), old_serial);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_SUBMIT, GMCA_EV_APP_SUBMIT, object,
                             e)) != 0)
                return rc;
        rc = GMCA_ERR_INVALID;
        if ((unsigned)type > GMCA_APP_CHANGE) {
                gmca_error_set(e, rc, "application: unknown type");
                goto fail;
        }
        if (type != GMCA_APP_NEW &&
            (old_serial == NULL || gmca_serial_normalize(old_serial, sb.old_serial) != 0)) {
                gmca_error_set(e, rc, "serial: 1..40 hex digits");
                goto fail;
        }
        if (type == GMCA_APP_NEW && old_serial != NULL && old_serial[0] != '\0') {
                gmca_error_set(e, rc, "a new application names no old certificate");
                goto fail;
        }
        if (type != GMCA_APP_NEW)
                gmca_strlcpy(object, sb.old_serial, sizeof(object));
        if ((rc = ra_need_proof(who, e)) != 0 ||
            (rc = ra_application_parse(body, len, type, &sb.b, e)) != 0 ||
            (rc = ra_csr_der(sb.b.csr, &sb.csr, &sb.csr_len, e)) != 0 ||
            (rc = ra_info_text(sb.b.subject_info, &sb.info, e)) != 0)
                goto fail;
        if (sb.b.materials != NULL &&
            (sb.materials = json_dumps(sb.b.materials, JSON_COMPACT)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = submission_check(env, type, &sb, now, e)) != 0)
                goto fail;
        if ((rc = gmca_q_open(env->store, SQL_INSERT, &q, e)) != 0)
                goto fail;
        gmca_q_int(&q, sb.applicant);
        gmca_q_text(&q, gmca_app_type_name(type));
        gmca_q_text(&q, sb.ca);
        gmca_q_text(&q, sb.profile);
        gmca_q_int(&q, sb.b.days);
        gmca_q_blob(&q, sb.csr, sb.csr_len);
        gmca_q_text(&q, sb.info);
        gmca_q_text(&q, sb.materials);
        gmca_q_text(&q, type != GMCA_APP_NEW ? sb.old_serial : NULL);
        gmca_q_text(&q, sb.b.carrier);
        gmca_q_int(&q, sb.b.affiliation_confirmed);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_blob(&q, who->proof, who->proof_len);
        rc = gmca_q_step(&q, e, "new application");
        if (rc == GMCA_DB_ROW)
                id = gmca_q_col_int(&q, 0);
        else if (rc >= 0)
                rc = gmca_error_set(e, GMCA_ERR_DB, "new application: no id returned");
        gmca_q_close(&q);
        if (rc >= 0 && sb.b.no_publish &&
            (rc = gmca_q_open(env->store, SQL_NO_PUBLISH, &q, e)) == 0) {
                gmca_q_int(&q, id); /* the subscriber agreement: not in the directory (§3.4.2) */
                rc = gmca_q_step(&q, e, "application %lld", (long long)id);
                gmca_q_close(&q);
        }
        if (rc < 0)
                goto fail;
        app_object(object, id);
        if ((rc = ra_audit(env->store, GMCA_EV_APP_SUBMIT, who->op.name, object,
                           json_pack("{s:s, s:I, s:s, s:s, s:s?, s:s?}", "type",
                                     gmca_app_type_name(type), "applicant",
                                     (json_int_t)sb.applicant, "profile", sb.profile, "ca", sb.ca,
                                     "old_serial", type != GMCA_APP_NEW ? sb.old_serial : NULL,
                                     "carrier", sb.b.carrier),
                           e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        submission_clear(&sb);
        return respond(env->store, id, now, out, e);
fail:
        submission_clear(&sb);
        return ra_refuse(env->store, who->op.name, GMCA_EV_APP_SUBMIT, object, rc, e);
}

/* ---- reading ---- */

int gmca_ra_application_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            int64_t id, int64_t now, json_t **out, struct gmca_error *e)
{
        char object[OBJ_MAX];
        int rc;

        app_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_READ, GMCA_EV_AUTH_REQUEST, object,
                             e)) != 0)
                return rc;
        return respond(env->store, id, now, out, e);
}

static int valid_state(const char *s)
{
        static const char *const states[] = {RA_ST_SUBMITTED, RA_ST_VETTED, RA_ST_APPROVED,
                                             RA_ST_ISSUED, RA_ST_REJECTED};

        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
                if (strcmp(s, states[i]) == 0)
                        return 1;
        return 0;
}

/* One row of the listing; arg: the time now. */
static int app_item(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e)
{
        struct ra_app a;
        int rc;

        if ((rc = ra_app_from_row(q, &a, e)) != 0)
                return rc;
        *o = app_json(&a, *(const int64_t *)arg);
        ra_app_clear(&a);
        return 0;
}

int gmca_ra_application_list(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             const char *state, int64_t applicant, int64_t limit, int64_t offset,
                             int64_t now, json_t **out, struct gmca_error *e)
{
        struct gmca_q q;
        int64_t total = 0;
        int rc;

        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_READ, GMCA_EV_AUTH_REQUEST,
                             "applications", e)) != 0)
                return rc;
        if (state == NULL)
                state = "";
        if (state[0] != '\0' && !valid_state(state))
                return gmca_error_set(
                    e, GMCA_ERR_INVALID,
                    "state: one of submitted, vetted, approved, issued, rejected");
        if (applicant < 0 || limit < 0 || limit > GMCA_RA_LIST_MAX || offset < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "applicant: an id; limit: 1..%d; offset: 0 or more",
                                      GMCA_RA_LIST_MAX);
        if (limit == 0)
                limit = GMCA_RA_LIST_MAX;
        if ((rc = gmca_q_open(env->store, SQL_COUNT, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, state);
        gmca_q_text(&q, state);
        gmca_q_int(&q, applicant);
        gmca_q_int(&q, applicant);
        if ((rc = gmca_q_step(&q, e, "count applications")) == GMCA_DB_ROW)
                total = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        if (rc < 0 || (rc = gmca_q_open(env->store, SQL_LIST, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, state);
        gmca_q_text(&q, state);
        gmca_q_int(&q, applicant);
        gmca_q_int(&q, applicant);
        gmca_q_int(&q, limit);
        gmca_q_int(&q, offset);
        return ra_list_collect(&q, "list applications", app_item, &now, total, out, e);
}

/* ---- vetting ---- */

int gmca_ra_application_vet(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            int64_t id, const uint8_t *body, size_t len, int64_t now, json_t **out,
                            struct gmca_error *e)
{
        struct ra_vet_body b;
        struct ra_app a;
        char object[OBJ_MAX], text[RA_TEXT_CAP + 256], *docs = NULL;
        struct gmca_q q;
        int rc, pass;

        memset(&b, 0, sizeof(b));
        memset(&a, 0, sizeof(a));
        app_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_VET, GMCA_EV_APP_VET, object, e)) != 0)
                return rc;
        if ((rc = ra_need_proof(who, e)) != 0 || (rc = ra_vet_parse(body, len, &b, e)) != 0)
                goto fail;
        if ((docs = json_dumps(b.documents, JSON_COMPACT)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto fail;
        }
        pass = strcmp(b.result, "pass") == 0;
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = ra_app_load(env->store, id, &a, e)) != 0)
                goto fail;
        if (strcmp(a.state, RA_ST_SUBMITTED) != 0) {
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "application %lld is %s: only a submitted application is "
                                    "vetted, once",
                                    (long long)id, a.state);
                goto fail;
        }
        if (strcmp(a.submitted_by, who->op.name) == 0) {
                rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                    "CPS §3.1.3: the operator who vets must not be the one who "
                                    "entered the application (%s)",
                                    a.submitted_by);
                goto fail;
        }
        if ((rc = same_submission(&a, b.submission, e)) != 0)
                goto fail;
        if ((rc = gmca_q_open(env->store, SQL_VET, &q, e)) != 0)
                goto fail;
        gmca_q_text(&q, pass ? RA_ST_VETTED : RA_ST_REJECTED);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_text(&q, b.method);
        gmca_q_text(&q, docs);
        gmca_q_text(&q, b.result);
        gmca_q_blob(&q, who->proof, who->proof_len);
        gmca_q_int(&q, id);
        rc = gmca_q_step(&q, e, "application %lld", (long long)id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "application %lld changed meanwhile",
                                    (long long)id);
        gmca_q_close(&q);
        if (rc < 0)
                goto fail;
        if (!pass) {
                /* §3.2.2: a failed identification is told to the applicant at once. */
                snprintf(text, sizeof(text), "您的证书申请（编号 %lld）未通过身份鉴别。原因：%s",
                         (long long)id, b.note != NULL ? b.note : "未能完成身份鉴别");
                if ((rc = ra_notify(env->store, a.applicant_id, id, 0, text, now, e)) != 0)
                        goto fail;
        }
        if ((rc = ra_audit(env->store, GMCA_EV_APP_VET, who->op.name, object,
                           json_pack("{s:s, s:s, s:O, s:s?}", "method", b.method, "result",
                                     b.result, "documents", b.documents, "note", b.note),
                           e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        rc = respond(env->store, id, now, out, e);
        goto out;
fail:
        ra_refuse(env->store, who->op.name, GMCA_EV_APP_VET, object, rc, e);
out:
        free(docs);
        ra_app_clear(&a);
        ra_vet_body_clear(&b);
        return rc;
}

/* ---- decision and issuance ---- */

/*
 * Ask the CA engine to issue, and answer with the application as it is
 * then: issued with "serial" and "certificate" (PEM), or still approved
 * with "issue_error". *irc: the engine's answer (0 issued).
 */
static int issue_and_respond(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                             int64_t id, int64_t now, json_t **out, int *irc, struct gmca_error *ie,
                             struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX] = "", object[OBJ_MAX];
        struct gmca_cert_rec rec;
        struct ra_app a;
        json_t *o;
        int rc;

        memset(&rec, 0, sizeof(rec));
        *irc = 0;
        if (env->issue != NULL) {
                *irc = env->issue(env->issue_arg, id, serial, ie);
                if (*irc != 0) {
                        app_object(object, id);
                        ra_refuse(env->store, who->op.name, GMCA_EV_APP_ISSUE, object, *irc, ie);
                }
        }
        if ((rc = ra_app_load(env->store, id, &a, e)) != 0)
                return rc;
        o = app_json(&a, now);
        if (o != NULL && strcmp(a.state, RA_ST_ISSUED) == 0 &&
            gmca_store_cert_get(env->store, a.issued_serial, &rec, e) == 0) {
                char *pem = ra_cert_pem(rec.der, rec.der_len);

                json_object_set_new(o, "serial", json_string(a.issued_serial));
                json_object_set_new(o, "certificate", pem != NULL ? json_string(pem) : json_null());
                free(pem);
                if (ra_dual_json(env->store, a.issued_serial, o, e) != 0) {
                        json_decref(o);
                        o = NULL;
                }
        } else if (o != NULL && *irc != 0) {
                json_object_set_new(o, "issue_error", json_string(ie->msg));
        }
        gmca_error_clear(e);
        gmca_cert_rec_clear(&rec);
        ra_app_clear(&a);
        if (o == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        *out = o;
        return 0;
}

int gmca_ra_application_decide(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                               int64_t id, int approve, const uint8_t *body, size_t len,
                               int64_t now, json_t **out, struct gmca_error *e)
{
        const char *event = approve ? GMCA_EV_APP_APPROVE : GMCA_EV_APP_REJECT;
        struct gmca_error ie = {0};
        struct ra_decide_body b;
        struct ra_app a;
        char object[OBJ_MAX], text[RA_TEXT_CAP + 256];
        const char *from;
        struct gmca_q q;
        int rc, irc, type;

        memset(&b, 0, sizeof(b));
        memset(&a, 0, sizeof(a));
        app_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_DECIDE, event, object, e)) != 0)
                return rc;
        if ((rc = ra_need_proof(who, e)) != 0 ||
            (rc = ra_decide_parse(body, len, approve, &b, e)) != 0)
                goto fail;
        if ((rc = gmca_store_begin(env->store, e)) != 0 ||
            (rc = ra_app_load(env->store, id, &a, e)) != 0)
                goto fail;
        from = a.state;
        rc = GMCA_ERR_STATE;
        if (approve && strcmp(a.state, RA_ST_VETTED) != 0) {
                gmca_error_set(e, rc,
                               "application %lld is %s: only a vetted application is approved "
                               "(CPS §3.2.1)",
                               (long long)id, a.state);
                goto fail;
        }
        if (!approve && strcmp(a.state, RA_ST_SUBMITTED) != 0 &&
            strcmp(a.state, RA_ST_VETTED) != 0) {
                gmca_error_set(e, rc, "application %lld is %s: it can no longer be rejected",
                               (long long)id, a.state);
                goto fail;
        }
        if (b.submission != NULL && (rc = same_submission(&a, b.submission, e)) != 0)
                goto fail;
        if (approve) {
                if (strcmp(a.submitted_by, who->op.name) == 0) {
                        rc = gmca_error_set(e, GMCA_ERR_POLICY,
                                            "CPS §3.1.3: the operator who approves must not be "
                                            "the one who entered the application (%s)",
                                            a.submitted_by);
                        goto fail;
                }
                /* The old certificate may have changed since submission (§3.6.2 window). */
                if ((type = ra_app_type_from_name(a.type)) < 0) {
                        rc = gmca_error_set(e, GMCA_ERR_DB, "application %lld: unknown type",
                                            (long long)id);
                        goto fail;
                }
                if ((rc = ra_lifecycle_check(env->store, type, a.old_serial, a.profile, a.csr,
                                             a.csr_len, a.info_json, a.carrier,
                                             a.affiliation_confirmed, a.id, now, NULL, e)) != 0)
                        goto fail;
        }
        if ((rc = gmca_q_open(env->store, SQL_DECIDE, &q, e)) != 0)
                goto fail;
        gmca_q_text(&q, approve ? RA_ST_APPROVED : RA_ST_REJECTED);
        gmca_q_text(&q, who->op.name);
        gmca_q_int(&q, now);
        gmca_q_text(&q, b.reason);
        gmca_q_blob(&q, who->proof, who->proof_len);
        gmca_q_int(&q, id);
        gmca_q_text(&q, from);
        rc = gmca_q_step(&q, e, "application %lld", (long long)id);
        if (rc >= 0 && gmca_q_changes(&q) != 1)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "application %lld changed meanwhile",
                                    (long long)id);
        gmca_q_close(&q);
        if (rc < 0)
                goto fail;
        if (!approve) {
                snprintf(text, sizeof(text), "您的证书申请（编号 %lld）未获批准。原因：%s",
                         (long long)id, b.reason);
                if ((rc = ra_notify(env->store, a.applicant_id, id, 0, text, now, e)) != 0)
                        goto fail;
        }
        if ((rc = ra_audit(env->store, event, who->op.name, object,
                           json_pack("{s:s, s:s, s:s?}", "submitted_by", a.submitted_by,
                                     "vetted_by", a.vetted_by, "reason", b.reason),
                           e)) != 0 ||
            (rc = gmca_store_commit(env->store, e)) != 0)
                goto fail;
        ra_app_clear(&a);
        ra_decide_body_clear(&b);
        if (!approve)
                return respond(env->store, id, now, out, e);
        /* Approved and committed: the CA engine checks everything again and signs. */
        return issue_and_respond(env, who, id, now, out, &irc, &ie, e);
fail:
        ra_app_clear(&a);
        ra_decide_body_clear(&b);
        return ra_refuse(env->store, who->op.name, event, object, rc, e);
}

int gmca_ra_application_issue(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                              int64_t id, int64_t now, json_t **out, struct gmca_error *e)
{
        struct gmca_error ie = {0};
        struct ra_app a;
        char object[OBJ_MAX];
        json_t *o = NULL;
        int rc, irc;

        app_object(object, id);
        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_DECIDE, GMCA_EV_APP_ISSUE, object,
                             e)) != 0)
                return rc;
        if ((rc = ra_app_load(env->store, id, &a, e)) != 0)
                return ra_refuse(env->store, who->op.name, GMCA_EV_APP_ISSUE, object, rc, e);
        rc = 0;
        if (strcmp(a.state, RA_ST_APPROVED) != 0)
                rc = gmca_error_set(e, GMCA_ERR_STATE,
                                    "application %lld is %s: only an approved application is "
                                    "issued",
                                    (long long)id, a.state);
        else if (env->issue == NULL)
                rc = gmca_error_set(e, GMCA_ERR_STATE, "no CA engine to issue with");
        ra_app_clear(&a);
        if (rc != 0)
                return ra_refuse(env->store, who->op.name, GMCA_EV_APP_ISSUE, object, rc, e);
        if ((rc = issue_and_respond(env, who, id, now, &o, &irc, &ie, e)) != 0)
                return rc;
        if (irc != 0) {
                json_decref(o);
                *e = ie;
                return irc;
        }
        *out = o;
        return 0;
}

/* ---- notifications, certificates ---- */

/* One notification record. */
static int note_item(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e)
{
        (void)arg;
        (void)e;
        *o = json_pack(
            "{s:I, s:o, s:o, s:s, s:o, s:s, s:I}", "id", (json_int_t)gmca_q_col_int(q, 0),
            "application", gmca_q_col_null(q, 1) ? json_null() : json_integer(gmca_q_col_int(q, 1)),
            "revocation", gmca_q_col_null(q, 2) ? json_null() : json_integer(gmca_q_col_int(q, 2)),
            "channel", gmca_q_col_text(q, 3) ? gmca_q_col_text(q, 3) : "", "recipient",
            str_or_null(gmca_q_col_text(q, 4)), "text",
            gmca_q_col_text(q, 5) ? gmca_q_col_text(q, 5) : "", "time",
            (json_int_t)gmca_q_col_int(q, 6));
        return 0;
}

int gmca_ra_notifications(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                          int64_t application, json_t **out, struct gmca_error *e)
{
        struct gmca_q q;
        int rc;

        if ((rc = ra_allowed(env, who, GMCA_ACT_APPLICATION_READ, GMCA_EV_AUTH_REQUEST,
                             "notifications", e)) != 0)
                return rc;
        if (application < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "application: an id");
        if ((rc = gmca_q_open(env->store, SQL_NOTES, &q, e)) != 0)
                return rc;
        gmca_q_int(&q, application);
        gmca_q_int(&q, application);
        gmca_q_int(&q, GMCA_RA_LIST_MAX);
        return ra_list_collect(&q, "notifications", note_item, NULL, -1, out, e);
}

int gmca_ra_certificate_get(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
                            const char *serial_in, int64_t now, json_t **out, struct gmca_error *e)
{
        char serial[GMCA_SERIAL_HEX_MAX], object[OBJ_MAX] = "certificate";
        struct gmca_cert_rec rec;
        struct gmca_ca_rec ca;
        struct gmca_q q;
        int64_t app = 0;
        char *pem = NULL;
        json_t *o = NULL;
        int rc;

        memset(&rec, 0, sizeof(rec));
        memset(&ca, 0, sizeof(ca));
        if (serial_in != NULL)
                ra_show(object, sizeof(object), serial_in);
        if ((rc = ra_allowed(env, who, GMCA_ACT_CERT_READ, GMCA_EV_AUTH_REQUEST, object, e)) != 0)
                return rc;
        if (serial_in == NULL || gmca_serial_normalize(serial_in, serial) != 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "serial: 1..40 hex digits");
        if ((rc = gmca_store_cert_get(env->store, serial, &rec, e)) != 0)
                return rc;
        if ((rc = gmca_store_ca_get_by_id(env->store, rec.ca_id, &ca, e)) != 0)
                goto out;
        if ((rc = gmca_q_open(env->store, SQL_ISSUED_BY, &q, e)) != 0)
                goto out;
        gmca_q_text(&q, serial);
        if ((rc = gmca_q_step(&q, e, "application of %s", serial)) == GMCA_DB_ROW)
                app = gmca_q_col_int(&q, 0);
        gmca_q_close(&q);
        if (rc < 0)
                goto out;
        pem = ra_cert_pem(rec.der, rec.der_len);
        o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s?}", "serial", rec.serial,
                      "ca", ca.name, "subject", rec.subject, "profile", rec.profile, "not_before",
                      (json_int_t)rec.not_before, "not_after", (json_int_t)rec.not_after,
                      "issued_at", (json_int_t)rec.issued_at, "status",
                      rec.status == GMCA_CERT_REVOKED ? "revoked"
                      : now > rec.not_after           ? "expired"
                                                      : "valid",
                      "fingerprint", rec.fingerprint, "certificate", pem);
        if (o == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                goto out;
        }
        if (rec.status == GMCA_CERT_REVOKED) {
                json_object_set_new(o, "revoked_at", json_integer(rec.revoked_at));
                json_object_set_new(o, "reason", json_integer(rec.reason));
        }
        json_object_set_new(o, "application", app > 0 ? json_integer(app) : json_null());
        if ((rc = ra_dual_json(env->store, serial, o, e)) != 0) {
                json_decref(o);
                goto out;
        }
        *out = o;
        rc = 0;
out:
        free(pem);
        gmca_cert_rec_clear(&rec);
        gmca_ca_rec_clear(&ca);
        return rc;
}
