/*
 * template: the certificate templates (profiles, profile.h) as the template
 * admin (模板管理员, CPS §6.2.3) keeps them through the signed API. Owns
 * <dir>/profiles/history/ (every version a change replaced, never deleted)
 * and the store metadata profile.disabled.<name> ("1" disabled, "0" or
 * absent enabled).
 *
 * What the template admin may do:
 *   - read every profile (list, show) — also the business admin and the
 *     business operator, who choose profiles for applications;
 *   - replace a profile, or create a new one, with JSON the strict loader
 *     accepts, named as the path names it;
 *   - disable a profile, so that the RA takes no new applications under it
 *     (an application approved before stays issuable: the CA engine's
 *     re-check does not look at this flag), and enable it again.
 * CA profiles ("ca": true) and the profiles the custodians issue under
 * (root-ca, sub-ca, operator, ra-comm, ocsp, tsa) are the custodians': they
 * cannot be created, replaced, disabled or enabled here.
 *
 * A replacement cannot be one transaction with its audit record, since a
 * file is not in the database. It runs under the store's write lock (an
 * open transaction, so changes are serialised between processes): the old
 * file is copied to history/NAME.<unix-time>.json, the new one written to a
 * temporary file in the profiles directory, loaded back with the strict
 * loader, fsynced and renamed over the old one (the directory fsynced), then
 * the audit record config.change {profile, old_sm3, new_sm3} is written and
 * committed; if that fails the old file is put back (or the new one
 * removed). Every refusal is audited (config.change, failure; reads:
 * auth.request), and the role is checked here as well as by the front.
 */
#ifndef GMCA_TEMPLATE_H
#define GMCA_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "err.h"
#include "profile.h"
#include "store.h"

#define GMCA_TEMPLATE_META_PREFIX "profile.disabled."
/* Longest profile name whose flag fits a metadata key (GMCA_NAME_MAX - 1
 * bytes). */
#define GMCA_TEMPLATE_FLAG_NAME_MAX ((int)(GMCA_NAME_MAX - sizeof(GMCA_TEMPLATE_META_PREFIX)))
#define GMCA_TEMPLATE_HISTORY_DIR "history"
#define GMCA_TEMPLATE_HISTORY_LIST_MAX 100 /* versions shown by gmca_template_get */

/*
 * Whether profile name is disabled: *disabled 1 or 0. A name too long to
 * carry a flag is never disabled. Reads the store (no transaction needed).
 */
int gmca_template_disabled(struct gmca_store *s, const char *name, int *disabled,
                           struct gmca_error *e) GMCA_WUR;

/*
 * GET /api/v1/profiles -> {"items":[{name, description, purpose, ca,
 * validity_days, max_validity_days, enabled, managed_by}...]} in name
 * order; a file that does not load is listed with "error" (its cause)
 * instead of its fields. dir: the state directory. *out: caller decrefs.
 */
int gmca_template_list(struct gmca_store *s, const char *dir, const struct gmca_auth_result *who,
                       json_t **out, struct gmca_error *e) GMCA_WUR;

/*
 * GET /api/v1/profiles/{name} -> the parsed profile (name, description,
 * purpose, ca, path_len, key_usage, extended_key_usage, validity_days,
 * max_validity_days, subject, extensions, san, sm2_id, ocsp_nocheck,
 * extended_key_usage_critical, enabled, managed_by), "sm3" of the file,
 * "source" (the file's JSON, to edit and PUT back) and "history" (the
 * newest GMCA_TEMPLATE_HISTORY_LIST_MAX kept versions). GMCA_ERR_NOTFOUND
 * for no such profile.
 */
int gmca_template_get(struct gmca_store *s, const char *dir, const struct gmca_auth_result *who,
                      const char *name, json_t **out, struct gmca_error *e) GMCA_WUR;

/*
 * PUT /api/v1/profiles/{name}: body (at most GMCA_PROFILE_FILE_MAX bytes)
 * becomes <dir>/profiles/<name>.json byte for byte, as described at the
 * top. Refused: not a template admin (GMCA_ERR_FORBIDDEN); a body the
 * strict loader refuses or without "name" (GMCA_ERR_INVALID naming the
 * key); "name" other than the path's (GMCA_ERR_INVALID); a CA or internal
 * profile, new or old (GMCA_ERR_POLICY). -> the profile as
 * gmca_template_get shows it, with "created" (1 if there was none) and
 * "old_sm3" (null if created).
 */
int gmca_template_put(struct gmca_store *s, const char *dir, const struct gmca_auth_result *who,
                      const char *name, const uint8_t *body, size_t len, int64_t now, json_t **out,
                      struct gmca_error *e) GMCA_WUR;

/*
 * POST /api/v1/profiles/{name}/disable (enable = 0) or .../enable (1): the
 * flag and its config.change record {profile, enabled} in one transaction.
 * GMCA_ERR_NOTFOUND for no such profile (it must load), GMCA_ERR_POLICY for
 * a CA or internal profile, GMCA_ERR_STATE if it is so already,
 * GMCA_ERR_LIMIT for a name over GMCA_TEMPLATE_FLAG_NAME_MAX bytes. -> the
 * profile as gmca_template_get shows it.
 */
int gmca_template_set_enabled(struct gmca_store *s, const char *dir,
                              const struct gmca_auth_result *who, const char *name, int enable,
                              json_t **out, struct gmca_error *e) GMCA_WUR;

#endif
