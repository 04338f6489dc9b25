/*
 * ldap_pub: the LDAP directory of CPS §3.4.2 — the change feed's "ldap"
 * channel (publish.h), writing to an OpenLDAP (or any LDAPv3) server with
 * libldap, so relying parties find every published certificate and CRL
 * there within seconds.
 *
 * Layout under the configured base DN (e.g. dc=gmca,dc=test):
 *
 *   cn=<CA's CN>,<base>      each CA: objectClass cRLDistributionPoint
 *                            (structural) + pkiCA + deltaCRL, holding
 *                            cACertificate;binary (its CA certificates,
 *                            rollover links included), certificateRevocation-
 *                            List;binary (the latest complete CRL) and
 *                            deltaRevocationList;binary (the latest delta)
 *   <subject DN>,<base>      each subscriber: the subject DN, most specific
 *                            RDN first as RFC 4514 writes it, e.g.
 *                            cn=张三,o=某市政务服务中心,st=北京市,c=CN,<base>,
 *                            holding userCertificate;binary (pkiUser). A
 *                            cn leaf is an inetOrgPerson with sn = cn (what
 *                            mail clients look up for S/MIME certificates).
 *                            Missing parents are created: c country, st and l
 *                            locality, o organization, ou organizationalUnit,
 *                            dc domain, cn organizationalRole; an RDN of
 *                            several values also gets extensibleObject. Any
 *                            other RDN type is refused for good (GMCA_ERR_POLICY:
 *                            the pump audits the skip).
 *
 * Only certificates valid now are published: cert.issue adds the value (if
 * it is not there yet: a valid certificate's value in its entry), cert.revoke
 * removes it (the entry stays); crl.issue replaces the CA's CRL values with
 * the latest ones of the store. Each delivery sets the state the store says,
 * so replaying an event changes nothing and an event of a certificate
 * revoked since (or expired) adds nothing. Certificates whose profile says
 * "publish": false (the CA's service certificates, a subscriber agreement
 * against publication) are not written, and neither are those of an
 * application submitted with "publish_directory": false.
 *
 * Failures of the server (down, timeouts, busy, refused credentials) are
 * retried by the pump with backoff, over a new connection; an entry the
 * server's schema refuses (object class or naming violation, bad DN) is
 * refused for good.
 */
#ifndef GMCA_LDAP_PUB_H
#define GMCA_LDAP_PUB_H

#include <stddef.h>

#include <openssl/x509.h>

#include "err.h"
#include "publish.h"

#define GMCA_LDAP_CHANNEL "ldap"
#define GMCA_LDAP_TIMEOUT_DEFAULT 10 /* seconds per operation and per connect */
#define GMCA_LDAP_DN_MAX 2048

struct gmca_ldap_pub_config {
        const char *uri;      /* ldap://HOST:PORT/, ldaps://..., ldapi://... */
        const char *base;     /* the base DN, e.g. "dc=gmca,dc=test" */
        const char *bind_dn;  /* NULL: anonymous */
        const char *password; /* bind_dn's password, password_len bytes; copied */
        size_t password_len;
        const char *dir; /* the state directory (its profiles/) */
        int timeout;     /* seconds; 0: GMCA_LDAP_TIMEOUT_DEFAULT */
};

struct gmca_ldap_pub;

/*
 * A publisher for cfg (copied; nothing is connected yet): NULL with e set
 * for a bad URI or base DN. Free with gmca_ldap_pub_free (wipes the password).
 * Not for use by two threads at once (one channel thread owns it).
 */
struct gmca_ldap_pub *gmca_ldap_pub_new(const struct gmca_ldap_pub_config *cfg,
                                        struct gmca_error *e);
void gmca_ldap_pub_free(struct gmca_ldap_pub *lp);

/* The "ldap" channel delivering through lp (borrowed: lp outlives the pump). */
void gmca_ldap_pub_publisher(struct gmca_ldap_pub *lp, struct gmca_publisher *out);

/*
 * The entry DN of subject under base, RFC 4514 (most specific RDN first,
 * values escaped, UTF-8 kept): 0, GMCA_ERR_INVALID for an empty subject or
 * one too long for out, GMCA_ERR_POLICY for an attribute without a name
 * LDAP knows.
 */
int gmca_ldap_subject_dn(const X509_NAME *subject, const char *base, char *out, size_t len,
                         struct gmca_error *e) GMCA_WUR;

#endif
