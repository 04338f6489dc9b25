/*
 * store_roles: on PostgreSQL, the database role of the service zone
 * (DESIGN.md "Trust zones and processes"). The front (`gmca serve`) may
 * connect with a role of its own (gmca.json "front_database") that reads
 * what it serves but writes only the tables the service zone keeps (the
 * RA's records, nonces, publishing cursors, audit records appended), never
 * what the CA engine and the key ceremonies own (CAs, certificates but for
 * the RA's revocation, CRLs' inputs, keys, the RA certificates trusted, the
 * schema). One table in store_roles.c says per table who writes it and
 * why; the grants follow from it alone. The role is recorded in the meta
 * table, and the grants are applied again by the owner after every
 * migration, so that a table added later starts with no rights for it.
 * SQLite is one file: nothing separates the zones there.
 */
#ifndef GMCA_STORE_ROLES_H
#define GMCA_STORE_ROLES_H

#include "err.h"
#include "store.h"

#define GMCA_META_FRONT_ROLE "store.front_role"

/*
 * Inside a transaction of s, connected as the database's owner (the CA's
 * "database"): check that front_uri is a PostgreSQL connection to the same
 * database as another role (not the owner, not a member of the owner's
 * role, not a superuser), apply the grant set to that role and record it.
 * *role receives its name (GMCA_STORE_ROLE_MAX bytes). Audit is the
 * caller's. GMCA_ERR_INVALID for a bad URI or a SQLite store,
 * GMCA_ERR_POLICY for a role that would not be restricted, GMCA_ERR_DB.
 */
#define GMCA_STORE_ROLE_MAX 64
int gmca_store_front_role_set(struct gmca_store *s, const char *front_uri,
                              char role[GMCA_STORE_ROLE_MAX], struct gmca_error *e) GMCA_WUR;

/*
 * After migrations (store.c), outside a transaction: if a front role is
 * recorded, apply the grant set to it again in one transaction. 0 when
 * there is none or the store is SQLite.
 */
int gmca_store_front_role_reapply(struct gmca_store *s, struct gmca_error *e) GMCA_WUR;

/*
 * The front role's rights on table ("SELECT", "SELECT, INSERT", ...), NULL
 * if the table is not in the list (the role gets nothing on it). For tests
 * that check every table of the schema is listed.
 */
const char *gmca_store_front_rights(const char *table);

#endif
