/*
 * certsearch: the public certificate search of CPS §1.6.1 — who anyone may
 * look up (serial, subject CN or organisation, type, status, validity)
 * without seeing what is private (§8.3.2, §8.4.4). It reads the store's
 * certificates only: never requests.info_json, never the GM/T 0015 private
 * extension values, and the subject it hands out has its serialNumber
 * attributes (where identity numbers go) taken out.
 *
 * A search is bounded: it looks at no more than GMCA_SEARCH_SCAN_MAX
 * candidate rows (newest first) and hands out at most GMCA_SEARCH_LIMIT_MAX.
 * The CN and O filters are substrings of the attribute's value, compared
 * ASCII case-insensitively: SQL narrows the candidates with a LIKE on the
 * stored subject (a substring search no B-tree index serves) and each one
 * is then checked on its parsed value, so "O=Foo, CN=Bar" is not found by
 * cn=Foo.
 */
#ifndef GMCA_CERTSEARCH_H
#define GMCA_CERTSEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"
#include "x509.h"

#define GMCA_SEARCH_LIMIT_MAX 100
#define GMCA_SEARCH_SCAN_MAX 10000 /* candidate rows looked at per search */
#define GMCA_SEARCH_TEXT_MAX 128   /* bytes of a CN, O or profile filter */

enum gmca_search_status {
        GMCA_SEARCH_ANY = 0,
        GMCA_SEARCH_VALID,   /* not revoked, notAfter not passed */
        GMCA_SEARCH_REVOKED, /* revoked (expired or not) */
        GMCA_SEARCH_EXPIRED, /* not revoked, notAfter passed */
};

/* "valid", "revoked", "expired" (NULL for ANY); and back, -1 if unknown. */
const char *gmca_search_status_name(enum gmca_search_status st);
int gmca_search_status_from(const char *name);

struct gmca_search_query {
        const char *serial;  /* the store's form (gmca_serial_normalize); NULL: any */
        const char *cn;      /* substring of a CN value; NULL or "": any */
        const char *o;       /* substring of an O value; NULL or "": any */
        const char *profile; /* exact; NULL or "": any */
        enum gmca_search_status status;
        int64_t now;   /* for valid/expired */
        size_t limit;  /* 1..GMCA_SEARCH_LIMIT_MAX */
        size_t offset; /* 0..GMCA_SEARCH_SCAN_MAX */
};

/* One certificate found, as it may be shown to anyone. */
struct gmca_search_hit {
        const struct gmca_cert_rec *rec; /* borrowed; rec->der is the certificate */
        const char *subject;             /* rec->subject without serialNumber attributes */
        const char *cn, *o;              /* the first CN and O values, unescaped ("" if none) */
        enum gmca_search_status status;  /* VALID, REVOKED or EXPIRED at q->now */
};

/*
 * Run q: cb for each certificate of the page [offset, offset + limit) in
 * newest-first order (a non-zero return stops and is returned); *total the
 * number of matches among the candidates looked at, *capped 1 if there were
 * more than GMCA_SEARCH_SCAN_MAX candidates (the total is then a lower
 * bound). GMCA_ERR_INVALID for a query out of its bounds.
 */
int gmca_search_certs(struct gmca_store *s, const struct gmca_search_query *q,
                      int (*cb)(const struct gmca_search_hit *h, void *arg), void *arg,
                      size_t *total, int *capped, struct gmca_error *e) GMCA_WUR;

/*
 * On a DN as gmca_dn_format writes it: the DN without its serialNumber
 * attributes (0, or -1 if out is too small); the first value of attribute
 * key (case-insensitive), unescaped, into out (1 found, 0 absent, -1 too
 * long); 1 if a value of key holds needle (ASCII case-insensitive).
 */
int gmca_dn_public(const char *dn, char *out, size_t len);
int gmca_dn_value(const char *dn, const char *key, char *out, size_t len);
int gmca_dn_value_contains(const char *dn, const char *key, const char *needle);

#endif
