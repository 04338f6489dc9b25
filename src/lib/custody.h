/*
 * custody: m-of-n control of the CA's master key (CPS §7.2.1.1, 3 of 5).
 * The master key (random, GMCA_MASTER_LEN bytes) is split with Shamir
 * secret sharing over GF(2^8) (libgfshare) into one share per custodian.
 * Each share is written to its own file, sealed with SM4-GCM under a key
 * derived from that custodian's PIN (PBKDF2-HMAC-SHA256 with a random salt),
 * and bound to the installation and to the share set: a share of another
 * CA, of an earlier set, or of a different index is refused by name.
 *
 * PINs follow the activation-data rules of CPS §7.4.1; a refusal names the
 * rule. No share and no PIN is ever written anywhere but the sealed file.
 */
#ifndef GMCA_CUSTODY_H
#define GMCA_CUSTODY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define GMCA_MASTER_LEN 32
#define GMCA_CUSTODY_ID_LEN 16
#define GMCA_CUSTODIAN_NAME_MAX 128 /* bytes, UTF-8 */
#define GMCA_CUSTODY_MAX 16         /* shares in one set */
#define GMCA_PIN_MIN 8              /* characters */
#define GMCA_PIN_MAX 256            /* bytes */
#define GMCA_SHARE_PBKDF2_ITER 200000
#define GMCA_SHARE_FILE_MAX 8192

/* What identifies a share set; stored in the CA configuration (public). */
struct gmca_custody_set {
        uint8_t installation[GMCA_CUSTODY_ID_LEN]; /* the CA installation the shares open */
        uint8_t set_id[GMCA_CUSTODY_ID_LEN];       /* changes at every re-split */
        unsigned threshold;                        /* 3 */
        unsigned count;                            /* 5 */
};

struct gmca_custodian {
        const char *name; /* UTF-8, 1..GMCA_CUSTODIAN_NAME_MAX-1 bytes */
        const char *pin;  /* not NUL-terminated necessarily */
        size_t pinlen;
        const char *path; /* the share file: written by split, read by combine */
};

/*
 * CPS §7.4.1 activation-data rules: at least GMCA_PIN_MIN characters
 * (UTF-8 characters, not bytes), at least one ASCII letter and one digit,
 * not mostly one character (no character fills half or more of the PIN and
 * none repeats 4 times in a row), not the custodian's name and no substring
 * of the name of 4 or more characters (for a name of 2 or 3 characters:
 * the whole name), compared case-insensitively. GMCA_ERR_POLICY naming the
 * rule ("CPS §7.4.1: PIN of 张三 must contain a digit").
 */
int gmca_pin_check(const char *pin, size_t pinlen, const char *custodian,
                   struct gmca_error *e) GMCA_WUR;

/*
 * Split master into set->count shares with threshold set->threshold
 * (2 <= threshold <= count <= GMCA_CUSTODY_MAX) and write share i to
 * cust[i].path sealed under cust[i].pin. Every PIN is checked, and the
 * names must be distinct, before anything is written; the files are created
 * with O_EXCL, mode 0600, and on any failure every file written so far is
 * removed. n must equal set->count. Share indexes (the x of Shamir) are
 * 1..count in the order given.
 */
int gmca_custody_split(const uint8_t master[GMCA_MASTER_LEN], const struct gmca_custody_set *set,
                       const struct gmca_custodian *cust, size_t n, struct gmca_error *e) GMCA_WUR;

/* Public facts of a share file, readable without the PIN. */
struct gmca_share_info {
        char custodian[GMCA_CUSTODIAN_NAME_MAX];
        uint8_t installation[GMCA_CUSTODY_ID_LEN];
        uint8_t set_id[GMCA_CUSTODY_ID_LEN];
        unsigned x; /* share index, 1..count */
        unsigned threshold;
        unsigned count;
        int64_t created;
};
int gmca_share_info(const char *path, struct gmca_share_info *info, struct gmca_error *e) GMCA_WUR;

/*
 * Open n share files with their PINs (cust[i].name is ignored: the file
 * names its custodian) and recombine the master key into master. Refused:
 * fewer than expect->threshold shares (GMCA_ERR_AUTH, "3 of 5 custodians
 * needed, 2 given"); a share of another installation or an older set
 * (GMCA_ERR_AUTH, naming the file and custodian); the same share index or
 * custodian twice (GMCA_ERR_INVALID); a wrong PIN (GMCA_ERR_AUTH naming the
 * custodian); a malformed file (GMCA_ERR_INVALID, GMCA_ERR_LIMIT over a
 * cap). An edited file fails its GCM tag exactly as a wrong PIN does, so it
 * is GMCA_ERR_AUTH too, and the message says either may be the cause. A
 * share whose threshold or count disagrees with expect, or (given more than
 * threshold shares) shares that do not lie on one polynomial, are
 * GMCA_ERR_TAMPER. The caller checks the result against its check value.
 * If who is not NULL, it receives the custodians' names joined with ", "
 * (for the audit record), up to wholen bytes.
 */
int gmca_custody_combine(const struct gmca_custody_set *expect, const struct gmca_custodian *cust,
                         size_t n, uint8_t master[GMCA_MASTER_LEN], char *who, size_t wholen,
                         struct gmca_error *e) GMCA_WUR;

/*
 * The check value stored beside the set (public): HMAC-SM3 of a fixed label
 * under the master key. Lets the CA tell "these shares do not open this CA"
 * from a device failure without revealing anything about the key.
 */
int gmca_custody_check_value(const uint8_t master[GMCA_MASTER_LEN], uint8_t out[32],
                             struct gmca_error *e) GMCA_WUR;

/*
 * For the fuzz target: parse the text of a share file (at most
 * GMCA_SHARE_FILE_MAX bytes) and return its public facts, with the checks
 * gmca_share_info applies. No PIN is needed and nothing is decrypted.
 */
int gmca_share_parse(const uint8_t *buf, size_t len, struct gmca_share_info *info,
                     struct gmca_error *e) GMCA_WUR;

#endif
