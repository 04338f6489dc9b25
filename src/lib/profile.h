/*
 * profile: certificate templates read from JSON files in conf/profiles/.
 * A profile fixes what a certificate of its kind contains and which
 * requests it accepts: key usages, extended key usages, validity, the DN
 * attributes and private extensions required, allowed or forbidden, the SAN
 * kinds allowed, and the SM2 ID. Requests that break a rule are refused with
 * the rule named.
 */
#ifndef GMCA_PROFILE_H
#define GMCA_PROFILE_H

#include <stddef.h>

#include <openssl/x509.h>

#include "err.h"
#include "crypto.h"
#include "x509.h"

#define GMCA_PROFILE_NAME_MAX 64
#define GMCA_PROFILE_FILE_MAX 65536
#define GMCA_PROFILE_EKU_MAX 8
#define GMCA_PROFILE_DAYS_MAX 36500 /* max_validity_days ceiling (100 years) */
#define GMCA_PROFILE_LIST_MAX 1024  /* profiles in one directory */

/* How a profile treats a DN attribute, private extension or SAN kind. */
enum gmca_rule {
        GMCA_RULE_FORBIDDEN = 0,
        GMCA_RULE_OPTIONAL = 1,
        GMCA_RULE_REQUIRED = 2,
};

/* DN attributes a profile rules on (CPS §2.1.2 tables 3 and 4). */
enum gmca_dn_attr {
        GMCA_DN_C = 0,
        GMCA_DN_ST,
        GMCA_DN_L,
        GMCA_DN_O,
        GMCA_DN_OU,
        GMCA_DN_CN,
        GMCA_DN_E,
        GMCA_DN_SERIAL,
        GMCA_DN_COUNT
};

enum gmca_san_kind { GMCA_SAN_DNS = 0, GMCA_SAN_IP, GMCA_SAN_EMAIL, GMCA_SAN_COUNT };

/*
 * Purpose of the key certified: a signature certificate, an encryption
 * certificate (dual-certificate system), or a CA / service certificate.
 */
enum gmca_key_purpose { GMCA_PURPOSE_SIGN = 0, GMCA_PURPOSE_ENCRYPT, GMCA_PURPOSE_CA };

struct gmca_profile {
        char name[GMCA_PROFILE_NAME_MAX];
        char description[256];
        enum gmca_key_purpose purpose;
        int ca;             /* issues CA certificates */
        int path_len;       /* -1: none */
        unsigned key_usage; /* X509v3_KU_* bits */
        int eku[GMCA_PROFILE_EKU_MAX];
        size_t neku;
        int validity_days;     /* default validity */
        int max_validity_days; /* a request may not ask for more */
        enum gmca_rule dn[GMCA_DN_COUNT];
        enum gmca_rule pext[GMCA_PEXT_COUNT];
        enum gmca_rule san[GMCA_SAN_COUNT];
        char sm2_id[GMCA_SM2_ID_BUF];
        int ocsp_nocheck;
        int eku_critical; /* extKeyUsage marked critical (RFC 3161 §2.3 for a TSA) */
        /* a "sign" profile's dual pair (CPS §7.1.1 item 3, km.h): the "encrypt" profile of the
         * encryption certificate issued with it for a KM key pair when the CA has a KM; "" none */
        char encryption_profile[GMCA_PROFILE_NAME_MAX];
        int publish; /* to the directory (CPS §3.4.2; ldap_pub.h); default true */
};

/*
 * Load one profile from a JSON file (at most GMCA_PROFILE_FILE_MAX bytes).
 * Unknown keys, unknown key usages or EKUs, bad rules are errors naming the
 * key. Caller frees with gmca_profile_free (NULL is fine).
 */
struct gmca_profile *gmca_profile_load(const char *path, struct gmca_error *e);

/* Parse a profile from JSON text; name is used if the text has none. */
struct gmca_profile *gmca_profile_parse(const char *json, size_t len, const char *name,
                                        struct gmca_error *e);

/* Load profile `name` from directory dir (file dir/name.json). The name
 * must be [a-z0-9_-]{1,63}; GMCA_ERR_NOTFOUND if there is no such profile. */
struct gmca_profile *gmca_profile_find(const char *dir, const char *name, struct gmca_error *e);

void gmca_profile_free(struct gmca_profile *p);

/* Names of all profiles in dir, sorted; caller frees each and the array. */
int gmca_profile_list(const char *dir, char ***names, size_t *count, struct gmca_error *e) GMCA_WUR;

/*
 * Check a request against the profile: the subject DN (required attributes
 * present, forbidden absent, C=CN, at most one of each except OU), the
 * subject info (private extensions and SAN kinds), and the requested
 * validity in days (0: use the profile's default). GMCA_ERR_POLICY with
 * "profile <name>: <rule>" on failure.
 */
int gmca_profile_check(const struct gmca_profile *p, const X509_NAME *subject,
                       const struct gmca_subject_info *info, int days,
                       struct gmca_error *e) GMCA_WUR;

#endif
