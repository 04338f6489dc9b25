/*
 * Subject distinguished names as text: the operator's "C=CN, O=Org, CN=Name"
 * or "/C=CN/O=Org/CN=Name" turned into an X509_NAME with the string types
 * GM/T 0015 and RFC 5280 expect (countryName PrintableString, emailAddress
 * IA5String, serialNumber PrintableString, everything else UTF8String so
 * that Chinese names survive), and X509_NAME back to one UTF-8 line that
 * gmca_dn_parse reads again. The text comes from operators and RA requests,
 * so every value is checked: valid UTF-8, no control characters, bounded
 * lengths and counts, only the attributes CPS §2.1 (tables 3 and 4) names.
 * Also the subject-info JSON (gmca_subject_info_parse): the rest of what
 * names a subscriber in a certificate, the GM/T 0015 private extension
 * values (identity card number, credit code, ...) and subjectAltName.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "util.h"
#include "x509.h"

/* The attributes CPS §2.1 tables 3 and 4 use; the first name of a NID is the one printed. */
static const struct {
        const char *name;
        int nid;
        int type; /* ASN.1 string type written */
} attrs[] = {
    {"C", NID_countryName, V_ASN1_PRINTABLESTRING},
    {"ST", NID_stateOrProvinceName, V_ASN1_UTF8STRING},
    {"S", NID_stateOrProvinceName, V_ASN1_UTF8STRING},
    {"L", NID_localityName, V_ASN1_UTF8STRING},
    {"O", NID_organizationName, V_ASN1_UTF8STRING},
    {"OU", NID_organizationalUnitName, V_ASN1_UTF8STRING},
    {"CN", NID_commonName, V_ASN1_UTF8STRING},
    {"E", NID_pkcs9_emailAddress, V_ASN1_IA5STRING},
    {"emailAddress", NID_pkcs9_emailAddress, V_ASN1_IA5STRING},
    /* X.520 and RFC 5280 Appendix A: serialNumber is a PrintableString. */
    {"serialNumber", NID_serialNumber, V_ASN1_PRINTABLESTRING},
};

#define NATTRS (sizeof(attrs) / sizeof(attrs[0]))

/* Longest attribute name accepted in the text ("emailAddress"). */
#define KEY_MAX 32

/*
 * Length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not
 * valid: overlong forms, surrogates and code points past U+10FFFF are
 * refused (RFC 3629 §4).
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
        unsigned c = s[0];
        size_t len;
        unsigned long cp, min;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                cp = c & 0x1f;
                min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                cp = c & 0x0f;
                min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                cp = c & 0x07;
                min = 0x10000;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* 0 if v[0..n) is valid UTF-8 without C0 controls or DEL; else a cause. */
static const char *check_text(const unsigned char *v, size_t n)
{
        size_t i = 0, k;

        while (i < n) {
                if (v[i] < 0x20 || v[i] == 0x7f)
                        return "control character";
                if ((k = utf8_seq(v + i, n - i)) == 0)
                        return "invalid UTF-8";
                i += k;
        }
        return NULL;
}

/* X.680 §41.4 PrintableString characters. */
static int is_printable(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               strchr(" '()+,-./:=?", c) != NULL;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Add one checked attribute to name; set is 0 for a new RDN, -1 to join the previous. */
static int add_attr(X509_NAME *name, const char *key, const unsigned char *v, size_t n, int set,
                    struct gmca_error *e)
{
        const char *why;
        size_t a;

        for (a = 0; a < NATTRS; a++)
                if (strcasecmp(key, attrs[a].name) == 0)
                        break;
        if (a == NATTRS)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "DN: unknown attribute \"%s\" (CPS §2.1 allows C, ST, L, O, "
                                      "OU, CN, E, serialNumber)",
                                      key);
        if (n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "DN: %s: empty value", key);
        if (n > GMCA_ATTR_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "DN: %s: value longer than %d bytes", key,
                                      GMCA_ATTR_MAX);
        if ((why = check_text(v, n)) != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "DN: %s: %s in value", key, why);
        if (attrs[a].nid == NID_countryName &&
            (n != 2 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z'))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "DN: C: X.520 countryName must be two upper-case letters "
                                      "(ISO 3166), e.g. CN");
        if (attrs[a].type == V_ASN1_IA5STRING)
                for (size_t i = 0; i < n; i++)
                        if (v[i] >= 0x80)
                                return gmca_error_set(
                                    e, GMCA_ERR_INVALID,
                                    "DN: %s: PKCS#9 emailAddress is an IA5String (ASCII only)",
                                    key);
        if (attrs[a].type == V_ASN1_PRINTABLESTRING)
                for (size_t i = 0; i < n; i++)
                        if (!is_printable(v[i]))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "DN: %s: character not allowed in a "
                                                      "PrintableString",
                                                      key);
        /*
         * An explicit string type (not MBSTRING_*) makes OpenSSL store the
         * bytes with exactly that type, independent of the global string
         * mask.
         */
        if (X509_NAME_add_entry_by_NID(name, attrs[a].nid, attrs[a].type, v, (int)n, -1, set) != 1)
                return gmca_error_ossl(e, GMCA_ERR_NOMEM, "DN: %s: cannot add attribute", key);
        return 0;
}

/*
 * The scanner: one pass over the text, unescaping each value into val.
 * sep is ',' or '/'. An unescaped '+' joins the next attribute to the same
 * RDN (RFC 4514 §2.2).
 */
struct scan {
        char key[KEY_MAX + 1];
        size_t klen;
        unsigned char val[GMCA_ATTR_MAX + 1];
        size_t vlen;  /* bytes in val */
        size_t vkeep; /* vlen without unescaped trailing spaces */
        int in_value;
        int count;
};

static int flush(X509_NAME *name, struct scan *s, int set, struct gmca_error *e)
{
        int rc;

        while (s->klen > 0 && s->key[s->klen - 1] == ' ')
                s->klen--;
        s->key[s->klen] = '\0';
        if (!s->in_value) {
                if (s->klen == 0)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "DN: empty attribute (stray separator)");
                return gmca_error_set(e, GMCA_ERR_INVALID, "DN: attribute \"%s\" has no '='",
                                      s->key);
        }
        if (s->klen == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID, "DN: attribute name missing before '='");
        if (++s->count > GMCA_DN_RDN_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "DN: more than %d attributes",
                                      GMCA_DN_RDN_MAX);
        if ((rc = add_attr(name, s->key, s->val, s->vkeep, set, e)) != 0)
                return rc;
        s->klen = s->vlen = s->vkeep = 0;
        s->in_value = 0;
        return 0;
}

static int put_value(struct scan *s, unsigned char c, int escaped, struct gmca_error *e)
{
        /* Unescaped leading spaces are trimmed. */
        if (s->vlen == 0 && c == ' ' && !escaped)
                return 0;
        if (s->vlen >= GMCA_ATTR_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "DN: %.*s: value longer than %d bytes",
                                      (int)s->klen, s->key, GMCA_ATTR_MAX);
        s->val[s->vlen++] = c;
        if (c != ' ' || escaped)
                s->vkeep = s->vlen;
        return 0;
}

static int put_key(struct scan *s, unsigned char c, struct gmca_error *e)
{
        if (s->klen == 0 && c == ' ')
                return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == ' '))
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "DN: character 0x%02x not allowed in an attribute name", c);
        if (s->klen >= KEY_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "DN: attribute name too long");
        s->key[s->klen++] = (char)c;
        return 0;
}

X509_NAME *gmca_dn_parse(const char *text, struct gmca_error *e)
{
        X509_NAME *name = NULL, *ret = NULL;
        struct scan *s = NULL;
        const char *p;
        size_t len;
        char sep = ',';
        int set = 0;

        if (text == NULL)
                goto empty;
        if ((len = strnlen(text, GMCA_DN_MAX + 1)) > GMCA_DN_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "DN: longer than %d bytes", GMCA_DN_MAX);
                goto out;
        }
        p = text;
        while (*p == ' ')
                p++;
        if (*p == '\0')
                goto empty;
        if (*p == '/') {
                sep = '/';
                p++;
        }
        if ((s = calloc(1, sizeof(*s))) == NULL || (name = X509_NAME_new()) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "DN: out of memory");
                goto out;
        }
        for (; *p != '\0'; p++) {
                unsigned char c = (unsigned char)*p;

                if (c < 0x20 || c == 0x7f) {
                        gmca_error_set(e, GMCA_ERR_INVALID,
                                       "DN: control character 0x%02x in the text", c);
                        goto out;
                }
                if (c == sep || c == '+') {
                        if (flush(name, s, set, e) != 0)
                                goto out;
                        set = c == '+' ? -1 : 0;
                        continue;
                }
                if (!s->in_value) {
                        if (c == '=') {
                                s->in_value = 1;
                                continue;
                        }
                        if (put_key(s, c, e) != 0)
                                goto out;
                        continue;
                }
                if (c == '\\') {
                        int hi, lo;

                        c = (unsigned char)*++p;
                        if (c != '\0' && (hi = hexval((char)c)) >= 0 && (lo = hexval(p[1])) >= 0) {
                                /* RFC 4514 \XX: one byte, checked with the value. */
                                p++;
                                c = (unsigned char)(hi << 4 | lo);
                        } else if (c == '\0' || strchr(",\\=+/\"<>;# ", c) == NULL) {
                                gmca_error_set(e, GMCA_ERR_INVALID,
                                               "DN: %.*s: bad escape sequence in value",
                                               (int)s->klen, s->key);
                                goto out;
                        }
                        if (put_value(s, c, 1, e) != 0)
                                goto out;
                        continue;
                }
                if (c == '=') {
                        gmca_error_set(e, GMCA_ERR_INVALID,
                                       "DN: %.*s: unescaped '=' in value (write \\=)", (int)s->klen,
                                       s->key);
                        goto out;
                }
                if (put_value(s, c, 0, e) != 0)
                        goto out;
        }
        if (flush(name, s, set, e) != 0)
                goto out;
        ret = name;
        name = NULL;
        goto out;
empty:
        gmca_error_set(e, GMCA_ERR_INVALID, "DN: empty");
out:
        X509_NAME_free(name);
        free(s);
        return ret;
}

/* Appends to an output buffer; records overflow instead of writing past the end. */
struct out {
        char *buf;
        size_t cap, len;
        int overflow;
};

static void emit(struct out *o, const char *s, size_t n)
{
        if (o->overflow || o->len + n >= o->cap) {
                o->overflow = 1;
                return;
        }
        memcpy(o->buf + o->len, s, n);
        o->len += n;
        o->buf[o->len] = '\0';
}

static void emit_value(struct out *o, const unsigned char *v, size_t n)
{
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < n; i++) {
                unsigned char c = v[i];
                char esc[3] = {'\\', 0, 0};

                if (c < 0x20 || c == 0x7f) {
                        esc[1] = hex[c >> 4];
                        esc[2] = hex[c & 15];
                        emit(o, esc, 3);
                        continue;
                }
                if (strchr(",+\"\\<>;=", c) != NULL || (c == '#' && i == 0) ||
                    (c == ' ' && (i == 0 || i == n - 1))) {
                        esc[1] = (char)c;
                        emit(o, esc, 2);
                        continue;
                }
                emit(o, (const char *)&c, 1);
        }
}

int gmca_dn_format(const X509_NAME *name, char *buf, size_t len, struct gmca_error *e)
{
        struct out o = {buf, len, 0, 0};
        unsigned char *u = NULL;
        int n, rc = GMCA_ERR_INVALID, prevset = -1;

        if (buf == NULL || len == 0)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "DN: no output buffer");
        buf[0] = '\0';
        if (name == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "DN: missing");
        n = X509_NAME_entry_count(name);
        for (int i = 0; i < n; i++) {
                const X509_NAME_ENTRY *ent = X509_NAME_get_entry(name, i);
                const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(ent);
                int nid = OBJ_obj2nid(obj), set = X509_NAME_ENTRY_set(ent), ulen;
                const char *key = NULL;
                char oid[80];

                for (size_t a = 0; a < NATTRS && key == NULL; a++)
                        if (attrs[a].nid == nid)
                                key = attrs[a].name;
                if (key == NULL && nid != NID_undef)
                        key = OBJ_nid2sn(nid);
                if (key == NULL) {
                        if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0) {
                                rc = gmca_error_ossl(e, GMCA_ERR_INVALID,
                                                     "DN: attribute %d: bad OID", i);
                                goto out;
                        }
                        key = oid;
                }
                if ((ulen = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ent))) < 0) {
                        rc = gmca_error_ossl(e, GMCA_ERR_INVALID,
                                             "DN: %s: value cannot be converted to UTF-8", key);
                        goto out;
                }
                if (i > 0)
                        emit(&o, set == prevset ? "+" : ", ", set == prevset ? 1 : 2);
                prevset = set;
                emit(&o, key, strlen(key));
                emit(&o, "=", 1);
                emit_value(&o, u, (size_t)ulen);
                OPENSSL_free(u);
                u = NULL;
        }
        if (o.overflow) {
                buf[0] = '\0';
                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "DN: does not fit in %zu bytes", len);
                goto out;
        }
        rc = 0;
out:
        if (rc != 0)
                buf[0] = '\0';
        OPENSSL_free(u);
        return rc;
}

/*
 * Subject info: the JSON the RA sends beside the CSR with the GM/T 0015
 * private extension values and the subjectAltName entries. Each value is
 * checked against the standard that defines it before it can reach a
 * certificate.
 */

#define SI_ID_LEN 18   /* GB 11643-1999 citizen identity number */
#define SI_USCC_LEN 18 /* GB 32100-2015 unified social credit code */
#define SI_INSURANCE_MAX 32
#define SI_EMAIL_MAX 254 /* RFC 5321 §4.5.3.1.3 path, less the brackets */
#define SI_EMAIL_LOCAL_MAX 64
#define SI_DNS_MAX 253
#define SI_LABEL_MAX 63
#define SI_KEY_SHOW 40 /* bytes of an unknown key quoted in a message */

/* A printable, bounded copy of an outside string for messages. */
static void show(char out[SI_KEY_SHOW + 4], const char *s)
{
        size_t i;

        for (i = 0; s[i] != '\0' && i < SI_KEY_SHOW; i++)
                out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        if (s[i] != '\0') {
                memcpy(out + i, "...", 3);
                i += 3;
        }
        out[i] = '\0';
}

static int is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static int is_upper_alnum(char c)
{
        return is_digit(c) || (c >= 'A' && c <= 'Z');
}

static int leap(int y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * GB 11643-1999: 6-digit address code, 8-digit birth date YYYYMMDD,
 * 3-digit sequence, check character. With a_i the digits and
 * W_i = 2^(17-i) mod 11 = 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2, the check
 * character is "10X98765432"[sum(a_i * W_i) mod 11]. A lower-case x is
 * accepted and stored upper-case.
 */
static int check_id_card(char *v, const char *key, struct gmca_error *e)
{
        static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
        static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int sum = 0, y, m, d;
        time_t now = gmca_now();
        struct tm tm;

        if (strlen(v) != SI_ID_LEN)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 11643 requires 18 characters", key);
        if (v[17] == 'x')
                v[17] = 'X';
        for (int i = 0; i < 17; i++) {
                if (!is_digit(v[i]))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: %s: GB 11643 requires 17 digits "
                                              "and a check character",
                                              key);
                sum += (v[i] - '0') * w[i];
        }
        if (!is_digit(v[17]) && v[17] != 'X')
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 11643 check character must be a "
                                      "digit or X",
                                      key);
        y = (v[6] - '0') * 1000 + (v[7] - '0') * 100 + (v[8] - '0') * 10 + (v[9] - '0');
        m = (v[10] - '0') * 10 + (v[11] - '0');
        d = (v[12] - '0') * 10 + (v[13] - '0');
        if (gmtime_r(&now, &tm) == NULL)
                return gmca_error_set(e, GMCA_ERR_INTERNAL, "subject info: clock out of range");
        if (y < 1900 || m < 1 || m > 12 || d < 1 ||
            d > mdays[m - 1] + (m == 2 && leap(y) ? 1 : 0) ||
            y * 10000 + m * 100 + d >
                (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 11643 birth date %.8s is not a real "
                                      "past date",
                                      key, v + 6);
        if ("10X98765432"[sum % 11] != v[17])
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 11643 check digit mismatch", key);
        return 0;
}

/*
 * GB 32100-2015: 18 characters from the 31-character set without I, O, S,
 * V, Z; weights W_i = 3^i mod 31; check = (31 - sum mod 31) mod 31.
 */
static int check_uscc(const char *v, const char *key, struct gmca_error *e)
{
        static const char set[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
        static const int w[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
        int sum = 0;
        const char *c;

        if (strlen(v) != SI_USCC_LEN)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 32100 requires 18 characters", key);
        for (int i = 0; i < 18; i++)
                if ((c = strchr(set, v[i])) == NULL || v[i] == '\0')
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: %s: GB 32100 character '%c' not in "
                                              "the code set",
                                              key, (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?');
        for (int i = 0; i < 17; i++)
                sum += (int)(strchr(set, v[i]) - set) * w[i];
        if (set[(31 - sum % 31) % 31] != v[17])
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 32100 check character mismatch", key);
        return 0;
}

/*
 * GB 11714-1997: 8 characters [0-9A-Z] (A=10 ... Z=35), weights
 * 3,7,9,10,5,8,4,2, C9 = 11 - sum mod 11 with 10 -> 'X' and 11 -> '0'.
 * "XXXXXXXX-X" is accepted; the hyphen is removed in place.
 */
static int check_org_code(char *v, const char *key, struct gmca_error *e)
{
        static const int w[8] = {3, 7, 9, 10, 5, 8, 4, 2};
        size_t n = strlen(v);
        int sum = 0, c9;
        char want;

        if (n == 10 && v[8] == '-') {
                v[8] = v[9];
                v[9] = '\0';
                n = 9;
        }
        if (n != 9)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 11714 requires 9 characters "
                                      "(XXXXXXXX-X)",
                                      key);
        for (int i = 0; i < 8; i++) {
                if (!is_upper_alnum(v[i]))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: %s: GB 11714 body must be [0-9A-Z]",
                                              key);
                sum += (is_digit(v[i]) ? v[i] - '0' : v[i] - 'A' + 10) * w[i];
        }
        c9 = 11 - sum % 11;
        want = c9 == 10 ? 'X' : c9 == 11 ? '0' : (char)('0' + c9);
        if (v[8] != want)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "subject info: %s: GB 11714 check character mismatch", key);
        return 0;
}

static int check_pext(enum gmca_pext p, char *v, struct gmca_error *e)
{
        const char *key = gmca_pext_name(p);
        size_t n = strlen(v);

        switch (p) {
        case GMCA_PEXT_IDENTITY_CARD:
                return check_id_card(v, key, e);
        case GMCA_PEXT_USCC:
                return check_uscc(v, key, e);
        case GMCA_PEXT_ORG_CODE:
                return check_org_code(v, key, e);
        case GMCA_PEXT_IC_REGISTRATION:
                if (n == SI_USCC_LEN)
                        return check_uscc(v, key, e);
                for (size_t i = 0; i < n; i++)
                        if (!is_digit(v[i]))
                                n = 0;
                if (n != 15)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: %s: must be a 15-digit registration "
                                              "number or an 18-character GB 32100 code",
                                              key);
                return 0;
        case GMCA_PEXT_TAXATION:
                for (size_t i = 0; i < n; i++)
                        if (!is_upper_alnum(v[i]))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "subject info: %s: must be [0-9A-Z]", key);
                if (n != 15 && n != 17 && n != 18 && n != 20)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: %s: must have 15, 17, 18 or 20 "
                                              "characters",
                                              key);
                return 0;
        case GMCA_PEXT_INSURANCE:
                if (n < 1 || n > SI_INSURANCE_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: %s: must have 1 to %d characters", key,
                                              SI_INSURANCE_MAX);
                for (size_t i = 0; i < n; i++)
                        if (!is_printable((unsigned char)v[i]))
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "subject info: %s: GM/T 0015 value is a "
                                                      "PrintableString",
                                                      key);
                return 0;
        case GMCA_PEXT_COUNT:
                break;
        }
        return gmca_error_set(e, GMCA_ERR_INTERNAL, "subject info: unknown extension");
}

/*
 * RFC 1035 §2.3.1 / RFC 5280 §4.2.1.6: LDH labels of 1..63 bytes, no
 * leading or trailing hyphen, at least two labels, a non-numeric top label,
 * at most 253 bytes; "*." only as the whole first label when wildcard.
 * Stored in lower case.
 */
static const char *dns_rule(char *v, int wildcard)
{
        size_t n = strlen(v), lab = 0, labels = 0;
        int alldigit = 1;
        char *p = v;

        if (wildcard && strncmp(p, "*.", 2) == 0) {
                p += 2;
                n -= 2;
        }
        if (n == 0 || n > SI_DNS_MAX)
                return "RFC 1035: name must be 1 to 253 bytes";
        for (size_t i = 0; i <= n; i++) {
                char c = p[i];

                if (c == '.' || c == '\0') {
                        if (lab == 0)
                                return "RFC 1035: empty label";
                        if (p[i - 1] == '-')
                                return "RFC 1035: label ends with a hyphen";
                        labels++;
                        if (c == '\0')
                                break;
                        lab = 0;
                        alldigit = 1;
                        continue;
                }
                if (c >= 'A' && c <= 'Z')
                        p[i] = c = (char)(c - 'A' + 'a');
                if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
                        return c == '*' ? "wildcard only as the whole first label"
                                        : "RFC 1035: only letters, digits and hyphens";
                if (c == '-' && lab == 0)
                        return "RFC 1035: label starts with a hyphen";
                if (!is_digit(c))
                        alldigit = 0;
                if (++lab > SI_LABEL_MAX)
                        return "RFC 1035: label longer than 63 bytes";
        }
        if (labels < 2)
                return "needs at least two labels";
        if (alldigit)
                return "top-level label is numeric";
        return NULL;
}

/* RFC 5321 §4.1.2 dot-atom local part @ a DNS domain, ASCII only. */
static const char *email_rule(char *v)
{
        char *at = strchr(v, '@');
        size_t n = strlen(v), local;

        if (n > SI_EMAIL_MAX)
                return "RFC 5321: longer than 254 bytes";
        if (at == NULL || strchr(at + 1, '@') != NULL)
                return "needs exactly one '@'";
        local = (size_t)(at - v);
        if (local == 0 || local > SI_EMAIL_LOCAL_MAX)
                return "RFC 5321: local part must be 1 to 64 bytes";
        if (v[0] == '.' || at[-1] == '.')
                return "RFC 5322: local part starts or ends with a dot";
        for (size_t i = 0; i < local; i++) {
                char c = v[i];

                if (c == '.' && v[i + 1] == '.')
                        return "RFC 5322: two dots in the local part";
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                      strchr(".!#$%&'*+-/=?^_`{|}~", c) != NULL))
                        return "RFC 5322: character not allowed in the local part";
        }
        return dns_rule(at + 1, 0);
}

/* inet_pton v4 or v6; canon gets the canonical inet_ntop text. */
static const char *ip_rule(const char *v, char canon[INET6_ADDRSTRLEN])
{
        unsigned char addr[16];
        int af = strchr(v, ':') != NULL ? AF_INET6 : AF_INET;

        if (strlen(v) >= INET6_ADDRSTRLEN || inet_pton(af, v, addr) != 1 ||
            inet_ntop(af, addr, canon, INET6_ADDRSTRLEN) == NULL)
                return "not an IPv4 or IPv6 address";
        return NULL;
}

static int san_list(const json_t *arr, const char *kind, char **out, size_t *count,
                    struct gmca_error *e)
{
        size_t i;
        const json_t *item;
        const char *why;
        char canon[INET6_ADDRSTRLEN];

        if (!json_is_array(arr))
                return gmca_error_set(e, GMCA_ERR_INVALID, "subject info: san.%s: must be an array",
                                      kind);
        if (json_array_size(arr) > GMCA_SAN_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT,
                                      "subject info: san.%s: more than %d entries", kind,
                                      GMCA_SAN_MAX);
        json_array_foreach(arr, i, item)
        {
                char *v;

                if (!json_is_string(item))
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "subject info: san.%s[%zu]: must be a string", kind,
                                              i);
                if (json_string_length(item) > SI_EMAIL_MAX)
                        return gmca_error_set(e, GMCA_ERR_LIMIT,
                                              "subject info: san.%s[%zu]: longer than %d bytes",
                                              kind, i, SI_EMAIL_MAX);
                if ((v = strdup(json_string_value(item))) == NULL)
                        return gmca_error_set(e, GMCA_ERR_NOMEM, "subject info: out of memory");
                out[(*count)++] = v;
                if (kind[0] == 'd')
                        why = dns_rule(v, 1);
                else if (kind[0] == 'e')
                        why = email_rule(v);
                else if ((why = ip_rule(v, canon)) == NULL) {
                        if ((v = strdup(canon)) == NULL)
                                return gmca_error_set(e, GMCA_ERR_NOMEM,
                                                      "subject info: out of memory");
                        free(out[*count - 1]);
                        out[*count - 1] = v;
                }
                if (why != NULL)
                        return gmca_error_set(e, GMCA_ERR_INVALID, "subject info: san.%s[%zu]: %s",
                                              kind, i, why);
                for (size_t j = 0; j + 1 < *count; j++)
                        if (strcmp(out[j], out[*count - 1]) == 0)
                                return gmca_error_set(e, GMCA_ERR_INVALID,
                                                      "subject info: san.%s[%zu]: duplicate entry",
                                                      kind, i);
        }
        return 0;
}

static int parse_san(const json_t *san, struct gmca_subject_info *si, struct gmca_error *e)
{
        const char *k;
        const json_t *v;
        char shown[SI_KEY_SHOW + 4];
        int rc;

        if (!json_is_object(san))
                return gmca_error_set(e, GMCA_ERR_INVALID, "subject info: san: must be an object");
        json_object_foreach((json_t *)san, k, v)
        {
                if (strcmp(k, "dns") == 0)
                        rc = san_list(v, "dns", si->dns, &si->ndns, e);
                else if (strcmp(k, "ip") == 0)
                        rc = san_list(v, "ip", si->ip, &si->nip, e);
                else if (strcmp(k, "email") == 0)
                        rc = san_list(v, "email", si->email, &si->nemail, e);
                else {
                        show(shown, k);
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "subject info: san: unknown key \"%s\" (dns, ip, "
                                            "email)",
                                            shown);
                }
                if (rc != 0)
                        return rc;
        }
        return 0;
}

struct gmca_subject_info *gmca_subject_info_parse(const char *json, size_t len,
                                                  struct gmca_error *e)
{
        struct gmca_subject_info *si = NULL, *ret = NULL;
        json_t *root = NULL;
        json_error_t jerr;
        const char *k;
        json_t *v;
        char shown[SI_KEY_SHOW + 4];
        int p;

        if (json == NULL || len == 0) {
                gmca_error_set(e, GMCA_ERR_INVALID, "subject info: empty input");
                goto out;
        }
        if (len > GMCA_CERT_MAX) {
                gmca_error_set(e, GMCA_ERR_LIMIT, "subject info: larger than %d bytes",
                               GMCA_CERT_MAX);
                goto out;
        }
        if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "subject info: JSON line %d: %s", jerr.line,
                               jerr.text);
                goto out;
        }
        if (!json_is_object(root)) {
                gmca_error_set(e, GMCA_ERR_INVALID, "subject info: top level must be an object");
                goto out;
        }
        if ((si = calloc(1, sizeof(*si))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "subject info: out of memory");
                goto out;
        }
        json_object_foreach(root, k, v)
        {
                if (strcmp(k, "san") == 0) {
                        if (parse_san(v, si, e) != 0)
                                goto out;
                        continue;
                }
                if ((p = gmca_pext_from_name(k)) < 0) {
                        show(shown, k);
                        gmca_error_set(e, GMCA_ERR_INVALID, "subject info: unknown key \"%s\"",
                                       shown);
                        goto out;
                }
                if (!json_is_string(v)) {
                        gmca_error_set(e, GMCA_ERR_INVALID, "subject info: %s: must be a string",
                                       k);
                        goto out;
                }
                if (json_string_length(v) > GMCA_ATTR_MAX) {
                        gmca_error_set(e, GMCA_ERR_LIMIT, "subject info: %s: longer than %d bytes",
                                       k, GMCA_ATTR_MAX);
                        goto out;
                }
                /* Without JSON_ALLOW_NUL jansson refuses \u0000, so strdup copies all of it. */
                if ((si->pext[p] = strdup(json_string_value(v))) == NULL) {
                        gmca_error_set(e, GMCA_ERR_NOMEM, "subject info: out of memory");
                        goto out;
                }
                if (check_pext((enum gmca_pext)p, si->pext[p], e) != 0)
                        goto out;
        }
        ret = si;
        si = NULL;
out:
        gmca_subject_info_free(si);
        json_decref(root);
        return ret;
}

void gmca_subject_info_free(struct gmca_subject_info *si)
{
        if (si == NULL)
                return;
        for (int i = 0; i < GMCA_PEXT_COUNT; i++)
                free(si->pext[i]);
        for (size_t i = 0; i < si->ndns; i++)
                free(si->dns[i]);
        for (size_t i = 0; i < si->nip; i++)
                free(si->ip[i]);
        for (size_t i = 0; i < si->nemail; i++)
                free(si->email[i]);
        free(si);
}
