/*
 * export: CA termination (CPS §6.8, §6.11). A CA that ends hands its
 * successor everything needed to keep answering for what it issued: its
 * certificates and their revocation state, every CRL it signed, the whole
 * audit chain, the CA certificates, and the subscriber records (applicants
 * with their sealed fields still sealed, applications, revocation
 * requests). The export is a package (backup.h's container: entries, an
 * SM3 manifest) whose seal is the terminating CA's own SM2 signature over
 * the manifest, made with the custodians present. docs/export.md is the
 * format.
 *
 * On the successor, an import checks the signature, the signer's chain up
 * to a trust anchor the successor names, and the exported audit chain
 * record by record, then keeps the export as read-only history under
 * <dir>/history/<id>/: the package itself, the old CA certificates, its
 * CRLs as signed DER files, and history.db (the exported tables, for status
 * look-ups). Without the old CA's key the successor can serve those CRLs
 * until their nextUpdate and answer look-ups, but cannot sign new CRLs or
 * OCSP responses for the old CA.
 */
#ifndef GMCA_EXPORT_H
#define GMCA_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca.h"
#include "custody.h"
#include "err.h"

#define GMCA_EXPORT_FORMAT "gmca-export-1"
#define GMCA_EXPORT_MAX ((size_t)4 << 30)
#define GMCA_HISTORY_DIR "history"

struct gmca_export_info {
        char id[65];                /* SM3 of the export file, hex */
        char signer[GMCA_NAME_MAX]; /* the CA whose key signed it */
        int64_t created;
        int64_t certificates;
        int64_t crls;
        int64_t audit_records;
        size_t tables;
        char where[1024]; /* import: the history directory made */
};

/*
 * Write the export of c's state directory to out (0600, exclusive), signed
 * by CA `ca` (NULL: the default CA) with the custodians' shares (any
 * threshold; the CA engine must be stopped, as for every ceremony).
 * Audited (ca.export), refusals too.
 */
int gmca_ca_export(struct gmca_ctx *c, const struct gmca_custodian *cust, size_t n, const char *ca,
                   const char *out, struct gmca_export_info *info, struct gmca_error *e) GMCA_WUR;

/*
 * Check the export at path — package, signature, signer's chain to anchor
 * at the export's time, audit chain — and keep it under
 * <dir>/history/<id>/. GMCA_ERR_VERIFY / GMCA_ERR_TAMPER for a bad
 * signature, chain or record; GMCA_ERR_EXISTS if already imported. The
 * caller audits (ca.import) in dir's chain.
 */
int gmca_ca_import(const char *dir, const char *path, X509 *anchor, struct gmca_export_info *info,
                   struct gmca_error *e) GMCA_WUR;

/* What an imported history knows about a serial. */
struct gmca_history_cert {
        char history[80]; /* history/<id> */
        char subject[GMCA_DN_MAX];
        int status; /* enum gmca_cert_status */
        int64_t not_after;
        int64_t revoked_at;
        int reason;
};

/* Look serial up in every history of dir; GMCA_ERR_NOTFOUND if none knows it. */
int gmca_history_lookup(const char *dir, const char *serial, struct gmca_history_cert *out,
                        struct gmca_error *e) GMCA_WUR;

#endif
