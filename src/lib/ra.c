/*
 * ra: what every RA operation shares — the role check that comes first,
 * the audit records of successes (inside the operation's transaction) and
 * of refusals (in a transaction of their own, after the rollback), the
 * notifications to applicants (CPS §3.2.4, §3.3.2, §3.9.3), and small
 * lookups. The operations themselves live in ra_applicant.c,
 * ra_application.c and ra_revoke.c; the CA engine's re-check in ra_check.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit.h"
#include "ca_internal.h"
#include "ra_internal.h"
#include "store_internal.h"
#include "util.h"

int ra_refuse(struct gmca_store *s, const char *actor, const char *event, const char *object,
              int rc, struct gmca_error *e)
{
        struct gmca_error cause = {0};

        if (gmca_store_in_transaction(s))
                gmca_store_rollback(s);
        if (e != NULL && e->msg[0] != '\0')
                cause = *e;
        else
                gmca_error_set(&cause, rc, "%s", gmca_err_name(rc));
        cause.code = rc;
        if (ca_audit_failure_at(s, actor, event, object, &cause) != 0 && e != NULL) {
                size_t n = strlen(e->msg);

                snprintf(e->msg + n, sizeof(e->msg) - n, " [and the audit record failed]");
        }
        return rc;
}

int ra_audit(struct gmca_store *s, const char *event, const char *actor, const char *object,
             json_t *detail, struct gmca_error *e)
{
        struct gmca_audit_event ev;
        char *text = NULL;
        int rc;

        if (detail != NULL && (text = ca_detail_json(detail)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        ev = (struct gmca_audit_event){event, actor, 1, object, text};
        rc = gmca_audit_append(s, &ev, e);
        free(text);
        return rc;
}

int ra_allowed(const struct gmca_ra_env *env, const struct gmca_auth_result *who,
               enum gmca_action act, const char *event, const char *object, struct gmca_error *e)
{
        int rc;

        if ((rc = gmca_auth_allowed(who->op.roles, act, e)) != 0)
                return ra_refuse(env->store, who->op.name, event, object, rc, e);
        return 0;
}

const char *ra_channel(const char *contact)
{
        size_t digits = 0;
        const char *p;

        if (contact == NULL || contact[0] == '\0')
                return "counter";
        if (strchr(contact, '@') != NULL)
                return "email";
        for (p = contact; *p != '\0'; p++) {
                if (*p >= '0' && *p <= '9')
                        digits++;
                else if (*p != '+' && *p != '-' && *p != ' ')
                        return "counter";
        }
        return digits > 0 ? "sms" : "counter";
}

static const char SQL_CONTACT[] = "SELECT contact FROM applicants WHERE id = ?";
static const char SQL_NOTIFY[] = "INSERT INTO notifications (application_id, revocation_id, "
                                 "channel, recipient, text, time) VALUES (?, ?, ?, ?, ?, ?)";

int ra_notify(struct gmca_store *s, int64_t applicant_id, int64_t app_id, int64_t rev_id,
              const char *text, int64_t now, struct gmca_error *e)
{
        char contact[RA_NAME_CAP + 1] = "";
        struct gmca_q q;
        int rc;

        if (applicant_id > 0) {
                if ((rc = gmca_q_open(s, SQL_CONTACT, &q, e)) != 0)
                        return rc;
                gmca_q_int(&q, applicant_id);
                rc = gmca_q_step(&q, e, "applicant %lld", (long long)applicant_id);
                if (rc == GMCA_DB_ROW)
                        rc = gmca_q_col_str(&q, 0, contact, sizeof(contact), "contact", e);
                gmca_q_close(&q);
                if (rc < 0)
                        return rc;
        }
        if ((rc = gmca_q_open(s, SQL_NOTIFY, &q, e)) != 0)
                return rc;
        if (app_id > 0)
                gmca_q_int(&q, app_id);
        else
                gmca_q_text(&q, NULL);
        if (rev_id > 0)
                gmca_q_int(&q, rev_id);
        else
                gmca_q_text(&q, NULL);
        gmca_q_text(&q, ra_channel(contact));
        gmca_q_text(&q, contact[0] != '\0' ? contact : NULL);
        gmca_q_text(&q, text);
        gmca_q_int(&q, now);
        rc = gmca_q_step(&q, e, "notification");
        gmca_q_close(&q);
        return rc < 0 ? rc : 0;
}

char *ra_cert_pem(const uint8_t *der, size_t len)
{
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        BIO *b = BIO_new(BIO_s_mem());
        char *out = NULL, *data;
        long n;

        if (x != NULL && b != NULL && PEM_write_bio_X509(b, x) == 1 &&
            (n = BIO_get_mem_data(b, &data)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
                memcpy(out, data, (size_t)n);
                out[n] = '\0';
        }
        X509_free(x);
        BIO_free(b);
        gmca_ossl_clear();
        return out;
}

json_t *ra_b64_json(const uint8_t *p, size_t len)
{
        char *t;
        json_t *j = NULL;

        if (p == NULL || len == 0 || len > INT_MAX / 2)
                return json_null();
        if ((t = malloc((len + 2) / 3 * 4 + 1)) != NULL) {
                EVP_EncodeBlock((unsigned char *)t, p, (int)len);
                j = json_string(t);
        }
        free(t);
        return j;
}

int ra_list_collect(struct gmca_q *q, const char *what,
                    int (*row)(struct gmca_q *q, void *arg, json_t **o, struct gmca_error *e),
                    void *arg, int64_t total, json_t **out, struct gmca_error *e)
{
        json_t *items = json_array(), *o = NULL;
        int rc = 0;

        while (items != NULL && (rc = gmca_q_step(q, e, "%s", what)) == GMCA_DB_ROW) {
                if ((rc = row(q, arg, &o, e)) != 0)
                        break;
                if (o == NULL || json_array_append_new(items, o) != 0) {
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        break;
                }
        }
        gmca_q_close(q);
        if (items == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        if (rc < 0) {
                json_decref(items);
                return rc;
        }
        *out = total >= 0 ? json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)total)
                          : json_pack("{s:o}", "items", items);
        return *out != NULL ? 0 : gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
}

int ra_need_proof(const struct gmca_auth_result *who, struct gmca_error *e)
{
        if (who->proof == NULL || who->proof_len == 0)
                return gmca_error_set(e, GMCA_ERR_AUTH,
                                      "the step needs the operator's signed request (auth.h)");
        return 0;
}

static const char SQL_DUAL[] = "SELECT d.enc_serial, d.envelope, d.blob, c.der FROM dual_keys d"
                               " JOIN certificates c ON c.serial = d.enc_serial"
                               " WHERE d.sig_serial = ? ORDER BY d.created DESC LIMIT 1";

int ra_dual_json(struct gmca_store *s, const char *sig_serial, json_t *o, struct gmca_error *e)
{
        const uint8_t *env, *blob, *der;
        size_t env_len, blob_len, der_len;
        struct gmca_q q;
        char *pem = NULL;
        int rc;

        if ((rc = gmca_q_open(s, SQL_DUAL, &q, e)) != 0)
                return rc;
        gmca_q_text(&q, sig_serial);
        rc = gmca_q_step(&q, e, "encryption pair of %s", sig_serial);
        if (rc == GMCA_DB_ROW) {
                env = gmca_q_col_blob(&q, 1, &env_len);
                blob = gmca_q_col_blob(&q, 2, &blob_len);
                der = gmca_q_col_blob(&q, 3, &der_len);
                pem = der != NULL ? ra_cert_pem(der, der_len) : NULL;
                if (pem == NULL || env == NULL ||
                    json_object_set_new(o, "encryption_serial",
                                        json_string(gmca_q_col_text(&q, 0))) != 0 ||
                    json_object_set_new(o, "encryption_certificate", json_string(pem)) != 0 ||
                    json_object_set_new(o, "enveloped_key", ra_b64_json(env, env_len)) != 0 ||
                    (blob != NULL && json_object_set_new(o, "enveloped_key_blob",
                                                         ra_b64_json(blob, blob_len)) != 0))
                        rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        }
        gmca_q_close(&q);
        free(pem);
        return rc < 0 ? rc : 0;
}

int ra_default_ca(struct gmca_store *s, const char *dir, char out[GMCA_NAME_MAX],
                  struct gmca_error *e)
{
        struct gmca_error ignored = {0};
        char path[PATH_MAX];
        uint8_t *buf = NULL;
        size_t len = 0;
        json_t *cfg = NULL, *v;

        /* A rollover or compromise records the successor (ca.c); else gmca.json says.
         */
        if (gmca_store_meta_get(s, META_DEFAULT_CA, out, GMCA_NAME_MAX, &ignored) == 0)
                return 0;
        out[0] = '\0';
        if (dir == NULL)
                return 0;
        if ((size_t)snprintf(path, sizeof(path), "%s/" GMCA_CONFIG_FILE, dir) >= sizeof(path))
                return gmca_error_set(e, GMCA_ERR_INVALID, "state directory path too long");
        if (gmca_read_file(path, CONFIG_MAX, &buf, &len, &ignored) == 0 &&
            (cfg = json_loadb((const char *)buf, len, 0, NULL)) != NULL &&
            json_is_string(v = json_object_get(cfg, "default_ca")))
                gmca_strlcpy(out, json_string_value(v), GMCA_NAME_MAX);
        json_decref(cfg);
        free(buf);
        return 0;
}

int ra_internal_profile(const char *profile)
{
        /* Issued by the custodians themselves (auth.h, ca_ra.c, OCSP, TSA), never by
         * the RA. */
        static const char *const internal[] = {"operator", "ra-comm", "ocsp",
                                               "tsa",      "root-ca", "sub-ca"};

        for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
                if (strcmp(profile, internal[i]) == 0)
                        return 1;
        return 0;
}

int ra_affiliated_profile(const char *profile)
{
        return strncmp(profile, "org-", 4) == 0 || strncmp(profile, "gov-staff-", 10) == 0;
}

const char *gmca_app_type_name(enum gmca_app_type t)
{
        static const char *const names[] = {"new", "renew", "rekey", "reissue", "change"};

        return (unsigned)t <= GMCA_APP_CHANGE ? names[t] : NULL;
}

int ra_app_type_from_name(const char *s)
{
        for (int t = GMCA_APP_NEW; t <= GMCA_APP_CHANGE; t++)
                if (strcmp(s, gmca_app_type_name(t)) == 0)
                        return t;
        return -1;
}

/*
 * Working time (CPS §3.2.3 counts working days): Monday to Friday in China
 * Standard Time, UTC+8, without public holidays (the CPS names none; a
 * holiday calendar would be configuration). W(x) is the working seconds
 * from a Thursday midnight (the epoch's day) to x; the answer is W(to) -
 * W(from), in constant time however long the span.
 */
static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int workday(int64_t day) /* days since 1970-01-01 (a Thursday) */
{
        int64_t dow = ((day % 7) + 7 + 4) % 7; /* 0 Sunday .. 6 Saturday */

        return dow >= 1 && dow <= 5;
}

static int64_t working_upto(int64_t x)
{
        int64_t day = floor_div(x, 86400), rem = x - day * 86400;
        int64_t weeks = floor_div(day, 7), d = day - weeks * 7, w = weeks * 5 * 86400;

        for (int64_t i = 0; i < d; i++)
                w += workday(weeks * 7 + i) ? 86400 : 0;
        return w + (workday(day) ? rem : 0);
}

int64_t gmca_ra_working_seconds(int64_t from, int64_t to)
{
        const int64_t cst = 8 * 3600, lim = INT64_MAX / 4;

        if (to <= from)
                return 0;
        if (from < -lim || to > lim)
                return 0;
        return working_upto(to + cst) - working_upto(from + cst);
}
