/*
 * Certificate building: a root, an intermediate and end-entity certificates
 * of each kind the CPS names, decoded field by field with OpenSSL's own
 * decoders and checked against values computed independently here (SKI from
 * the raw public key, private extension DER from GMT-REFERENCE §1.2), plus
 * the refusals, the private extension reader on hand-made DER, and the
 * openssl command line as an outside verifier.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "err.h"
#include "x509.h"
#include "testutil.h"

#define YEAR (365L * 24 * 3600)
#define OTHER_ID "1234567812345679"
#define CRL_URL "http://crl.example.gov.cn/sub.crl"
#define OCSP_URL "http://ocsp.example.gov.cn/"
#define CAISSUERS_URL "http://ca.example.gov.cn/sub.crt"
#define POLICY_OID "1.2.156.112559.1.1.2.1"
#define CPS_URI "https://www.example.gov.cn/cps"

/* The GM/T 0015 OIDs written out again here, so that the library's table is checked too. */
static const char *const pext_oids[GMCA_PEXT_COUNT] = {
    "1.2.156.10260.4.1.1", "1.2.156.10260.4.1.2", "1.2.156.10260.4.1.3",
    "1.2.156.10260.4.1.4", "1.2.156.10260.4.1.5", "1.2.156.10260.4.4",
};

struct pki {
        time_t now;
        EVP_PKEY *root_key, *sub_key, *ee_key, *p256_key;
        X509 *root, *sub, *ee; /* ee: an end entity under sub, used as a wrong issuer */
        X509_NAME *root_name, *sub_name, *ee_name, *empty_name;
};

/* A DN from "field", "value" pairs, NULL-terminated, UTF-8 values. */
static X509_NAME *make_name(const char *const *kv)
{
        X509_NAME *n = X509_NAME_new();

        assert_non_null(n);
        for (; kv[0] != NULL; kv += 2)
                assert_int_equal(X509_NAME_add_entry_by_txt(n, kv[0], MBSTRING_UTF8,
                                                            (const unsigned char *)kv[1], -1, -1,
                                                            0),
                                 1);
        return n;
}

/* gmca_subject_info is filled by hand so these tests do not depend on its parser. */
static struct gmca_subject_info *info_new(void)
{
        struct gmca_subject_info *si = calloc(1, sizeof(*si));

        assert_non_null(si);
        return si;
}

static char *dup_str(const char *s)
{
        char *d = strdup(s);

        assert_non_null(d);
        return d;
}

static void fill_serial(uint8_t serial[GMCA_SERIAL_LEN], uint8_t first)
{
        for (int i = 0; i < GMCA_SERIAL_LEN; i++)
                serial[i] = (uint8_t)(first + 17 * i);
}

static void root_template(struct pki *k, struct gmca_cert_template *t)
{
        memset(t, 0, sizeof(*t));
        t->subject = k->root_name;
        t->pubkey = k->root_key;
        t->issuer_key = k->root_key;
        fill_serial(t->serial, 0x11);
        t->not_before = k->now - 3600;
        t->not_after = k->now + 30 * YEAR; /* past 2049: GeneralizedTime */
        t->ca = 1;
        t->path_len = 1;
        t->key_usage = X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN;
}

static void sub_template(struct pki *k, struct gmca_cert_template *t)
{
        memset(t, 0, sizeof(*t));
        t->subject = k->sub_name;
        t->pubkey = k->sub_key;
        t->issuer = k->root;
        t->issuer_key = k->root_key;
        fill_serial(t->serial, 0x22);
        t->not_before = k->now - 1800;
        t->not_after = k->now + 10 * YEAR;
        t->ca = 1;
        t->path_len = 0;
        t->key_usage = X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN;
        t->crl_url = "http://crl.example.gov.cn/root.crl";
        t->policy_oid = POLICY_OID;
}

/* An end entity under sub with every URI set; cases change what they need. */
static void ee_template(struct pki *k, struct gmca_cert_template *t)
{
        memset(t, 0, sizeof(*t));
        t->subject = k->ee_name;
        t->pubkey = k->ee_key;
        t->issuer = k->sub;
        t->issuer_key = k->sub_key;
        fill_serial(t->serial, 0x33);
        t->not_before = k->now - 60;
        t->not_after = k->now + YEAR;
        t->ca = 0;
        t->path_len = -1;
        t->key_usage = X509v3_KU_DIGITAL_SIGNATURE;
        t->crl_url = CRL_URL;
        t->ocsp_url = OCSP_URL;
        t->ca_issuers_url = CAISSUERS_URL;
        t->policy_oid = POLICY_OID;
        t->cps_uri = CPS_URI;
}

static X509 *build_ok(const struct gmca_cert_template *t)
{
        struct gmca_error e = {0};
        X509 *x = gmca_cert_build(t, &e);

        if (x == NULL)
                fail_msg("gmca_cert_build: %s", e.msg);
        return x;
}

static int setup(void **state)
{
        static const char *const root_dn[] = {"C", "CN", "O", "测试政务 CA", "CN", "测试 SM2 根 CA",
                                              NULL};
        static const char *const sub_dn[] = {
            "C", "CN", "O", "测试政务 CA", "CN", "测试 SM2 二级 CA", NULL};
        static const char *const ee_dn[] = {
            "C", "CN", "O", "Example Org", "CN", "ee.example.gov.cn", NULL};
        struct gmca_cert_template t;
        struct pki *k = calloc(1, sizeof(*k));

        if (k == NULL)
                return -1;
        k->now = time(NULL);
        k->root_key = gmca_sm2_keygen(NULL);
        k->sub_key = gmca_sm2_keygen(NULL);
        k->ee_key = gmca_sm2_keygen(NULL);
        k->p256_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (k->root_key == NULL || k->sub_key == NULL || k->ee_key == NULL || k->p256_key == NULL)
                return -1;
        k->root_name = make_name(root_dn);
        k->sub_name = make_name(sub_dn);
        k->ee_name = make_name(ee_dn);
        if ((k->empty_name = X509_NAME_new()) == NULL)
                return -1;
        root_template(k, &t);
        if ((k->root = gmca_cert_build(&t, NULL)) == NULL)
                return -1;
        sub_template(k, &t);
        if ((k->sub = gmca_cert_build(&t, NULL)) == NULL)
                return -1;
        ee_template(k, &t);
        if ((k->ee = gmca_cert_build(&t, NULL)) == NULL)
                return -1;
        *state = k;
        return 0;
}

static int teardown(void **state)
{
        struct pki *k = *state;

        X509_free(k->root);
        X509_free(k->sub);
        X509_free(k->ee);
        X509_NAME_free(k->root_name);
        X509_NAME_free(k->sub_name);
        X509_NAME_free(k->ee_name);
        X509_NAME_free(k->empty_name);
        EVP_PKEY_free(k->root_key);
        EVP_PKEY_free(k->sub_key);
        EVP_PKEY_free(k->ee_key);
        EVP_PKEY_free(k->p256_key);
        free(k);
        return 0;
}

/* How often an extension occurs, and whether (the last one) is critical. */
static int ext_count(const X509 *x, const ASN1_OBJECT *obj, int *crit)
{
        int n = 0;

        for (int i = 0; i < X509_get_ext_count(x); i++) {
                X509_EXTENSION *ext = X509_get_ext(x, i);

                if (OBJ_cmp(X509_EXTENSION_get_object(ext), obj) == 0) {
                        n++;
                        if (crit != NULL)
                                *crit = X509_EXTENSION_get_critical(ext);
                }
        }
        return n;
}

static int nid_count(const X509 *x, int nid, int *crit)
{
        return ext_count(x, OBJ_nid2obj(nid), crit);
}

static void assert_ext_once(const X509 *x, int nid, int critical)
{
        int crit = -1;

        assert_int_equal(nid_count(x, nid, &crit), 1);
        assert_int_equal(crit, critical);
}

static void assert_no_duplicates(const X509 *x)
{
        int n = X509_get_ext_count(x);

        for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                        assert_int_not_equal(OBJ_cmp(X509_EXTENSION_get_object(X509_get_ext(x, i)),
                                                     X509_EXTENSION_get_object(X509_get_ext(x, j))),
                                             0);
}

/* extnValue bytes of the only extension nid. */
static const ASN1_OCTET_STRING *ext_value(const X509 *x, const ASN1_OBJECT *obj)
{
        int idx = X509_get_ext_by_OBJ(x, obj, -1);

        assert_true(idx >= 0);
        return X509_EXTENSION_get_data(X509_get_ext(x, idx));
}

static void assert_bytes(const ASN1_STRING *s, const void *want, size_t len)
{
        assert_non_null(s);
        assert_int_equal(ASN1_STRING_length(s), len);
        assert_memory_equal(ASN1_STRING_get0_data(s), want, len);
}

static void assert_ia5_name(const GENERAL_NAME *gn, int type, const char *want)
{
        int t = -1;
        const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);

        assert_int_equal(t, type);
        assert_int_equal(ASN1_STRING_type(s), V_ASN1_IA5STRING);
        assert_bytes(s, want, strlen(want));
}

/* SKI computed independently: SM3 over 04||X||Y, leftmost 20 bytes. */
static void expected_ski(EVP_PKEY *key, uint8_t out[20])
{
        uint8_t pub[128], md[32];
        size_t len = 0;
        unsigned int mdlen = 0;

        assert_int_equal(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                         pub, sizeof(pub), &len),
                         1);
        assert_int_equal(len, 65);
        assert_int_equal(pub[0], 0x04);
        assert_int_equal(EVP_Digest(pub, len, md, &mdlen, EVP_sm3(), NULL), 1);
        assert_int_equal(mdlen, 32);
        memcpy(out, md, 20);
}

/* What every certificate we build has, whatever its kind. */
static void assert_common(X509 *x, const struct gmca_cert_template *t, X509 *issuer,
                          EVP_PKEY *issuer_key)
{
        const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
        uint8_t *der = NULL, ski[20];
        int len, crit = -1;
        BASIC_CONSTRAINTS *bc;
        struct gmca_error e = {0};

        assert_int_equal(X509_get_version(x), X509_VERSION_3);
        /* Serial: exactly the template's 16 bytes, positive, 02 10 in DER. */
        assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
        assert_bytes(sn, t->serial, GMCA_SERIAL_LEN);
        len = i2d_ASN1_INTEGER(sn, &der);
        assert_int_equal(len, 2 + GMCA_SERIAL_LEN);
        assert_int_equal(der[0], 0x02);
        assert_int_equal(der[1], GMCA_SERIAL_LEN);
        assert_true(der[2] >= 0x01 && der[2] <= 0x7f);
        OPENSSL_free(der);

        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), t->subject), 0);
        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
                                       issuer != NULL ? X509_get_subject_name(issuer) : t->subject),
                         0);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), t->not_before), 0);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), t->not_after), 0);
        {
                /* the certificate carries exactly the template's key */
                unsigned char *a = NULL, *b = NULL;
                int alen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &a);
                int blen = i2d_PUBKEY(t->pubkey, &b);

                assert_true(alen > 0);
                assert_int_equal(alen, blen);
                assert_memory_equal(a, b, (size_t)alen);
                OPENSSL_free(a);
                OPENSSL_free(b);
        }

        assert_no_duplicates(x);
        assert_ext_once(x, NID_basic_constraints, 1);
        bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
        assert_non_null(bc);
        assert_int_equal(bc->ca != 0, t->ca != 0);
        if (t->ca && t->path_len >= 0) {
                assert_non_null(bc->pathlen);
                assert_int_equal(ASN1_INTEGER_get(bc->pathlen), t->path_len);
        } else {
                assert_null(bc->pathlen);
        }
        BASIC_CONSTRAINTS_free(bc);
        if (!t->ca) /* cA FALSE is the DEFAULT: the empty SEQUENCE */
                assert_bytes(ext_value(x, OBJ_nid2obj(NID_basic_constraints)), "\x30\x00", 2);

        if (t->key_usage != 0) {
                assert_ext_once(x, NID_key_usage, 1);
                assert_int_equal(X509_get_key_usage(x), t->key_usage);
        } else {
                assert_int_equal(nid_count(x, NID_key_usage, NULL), 0);
        }

        expected_ski(t->pubkey, ski);
        assert_ext_once(x, NID_subject_key_identifier, 0);
        assert_bytes(X509_get0_subject_key_id(x), ski, sizeof(ski));
        assert_ext_once(x, NID_authority_key_identifier, 0);
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                               issuer != NULL ? X509_get0_subject_key_id(issuer)
                                                              : X509_get0_subject_key_id(x)),
                         0);

        /* Signed with the default ID under the issuer key, and only so. */
        assert_int_equal(gmca_cert_verify_signed_by(x, issuer_key, NULL, &e), 0);
        assert_int_equal(gmca_cert_verify_signed_by(x, issuer_key, GMCA_SM2_DEFAULT_ID, NULL), 0);
        assert_int_equal(gmca_cert_verify_signed_by(x, issuer_key, OTHER_ID, NULL),
                         GMCA_ERR_VERIFY);
        if (issuer != NULL) /* not by the subject's own key */
                assert_int_equal(gmca_cert_verify_signed_by(x, t->pubkey, NULL, NULL),
                                 GMCA_ERR_VERIFY);
}

static void test_serial_random(void **state)
{
        uint8_t s[GMCA_SERIAL_LEN], prev[GMCA_SERIAL_LEN] = {0};
        struct gmca_error e = {0};

        (void)state;
        for (int i = 0; i < 2000; i++) {
                ASN1_INTEGER *ai = ASN1_INTEGER_new();
                uint8_t *der = NULL;

                assert_int_equal(gmca_serial_random(s, &e), 0);
                assert_true(s[0] >= 0x01 && s[0] <= 0x7f);
                assert_memory_not_equal(s, prev, sizeof(s));
                memcpy(prev, s, sizeof(s));
                /* As an INTEGER: 128 bits, no leading zero octet, positive. */
                assert_non_null(ai);
                assert_int_equal(ASN1_STRING_set(ai, s, sizeof(s)), 1);
                assert_int_equal(i2d_ASN1_INTEGER(ai, &der), 18);
                assert_int_equal(der[1], 16);
                OPENSSL_free(der);
                ASN1_INTEGER_free(ai);
        }
}

static void test_root(void **state)
{
        struct pki *k = *state;
        struct gmca_cert_template t;

        root_template(k, &t);
        assert_common(k->root, &t, NULL, k->root_key);
        assert_int_equal(
            X509_NAME_cmp(X509_get_issuer_name(k->root), X509_get_subject_name(k->root)), 0);
        assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(k->root)), V_ASN1_UTCTIME);
        assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(k->root)), V_ASN1_GENERALIZEDTIME);
        assert_int_equal(X509_get_key_usage(k->root), X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN);
        /* AKI of a root is its own SKI. */
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(k->root),
                                               X509_get0_subject_key_id(k->root)),
                         0);
        /* Nothing that was not asked for. */
        assert_int_equal(X509_get_ext_count(k->root), 4);
        assert_int_equal(nid_count(k->root, NID_ext_key_usage, NULL), 0);
        assert_int_equal(nid_count(k->root, NID_subject_alt_name, NULL), 0);
        assert_int_equal(nid_count(k->root, NID_crl_distribution_points, NULL), 0);
        /* Signed by a different key: no. */
        assert_int_equal(gmca_cert_verify_signed_by(k->root, k->sub_key, NULL, NULL),
                         GMCA_ERR_VERIFY);
}

static void test_intermediate(void **state)
{
        struct pki *k = *state;
        struct gmca_cert_template t;
        CERTIFICATEPOLICIES *pols;
        CRL_DIST_POINTS *dps;
        DIST_POINT *dp;
        char oid[64];

        sub_template(k, &t);
        assert_common(k->sub, &t, k->root, k->root_key);
        assert_int_equal(gmca_cert_verify_signed_by(k->sub, k->sub_key, NULL, NULL),
                         GMCA_ERR_VERIFY);
        assert_ext_once(k->sub, NID_crl_distribution_points, 0);
        dps = X509_get_ext_d2i(k->sub, NID_crl_distribution_points, NULL, NULL);
        assert_non_null(dps);
        assert_int_equal(sk_DIST_POINT_num(dps), 1);
        dp = sk_DIST_POINT_value(dps, 0);
        assert_int_equal(dp->distpoint->type, 0);
        assert_null(dp->reasons);
        assert_null(dp->CRLissuer);
        assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
        assert_ia5_name(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0), GEN_URI,
                        "http://crl.example.gov.cn/root.crl");
        CRL_DIST_POINTS_free(dps);
        /* A policy without a CPS pointer has no qualifiers. */
        assert_ext_once(k->sub, NID_certificate_policies, 0);
        pols = X509_get_ext_d2i(k->sub, NID_certificate_policies, NULL, NULL);
        assert_non_null(pols);
        assert_int_equal(sk_POLICYINFO_num(pols), 1);
        assert_true(OBJ_obj2txt(oid, sizeof(oid), sk_POLICYINFO_value(pols, 0)->policyid, 1) > 0);
        assert_string_equal(oid, POLICY_OID);
        assert_null(sk_POLICYINFO_value(pols, 0)->qualifiers);
        CERTIFICATEPOLICIES_free(pols);
        assert_int_equal(nid_count(k->sub, NID_info_access, NULL), 0);
}

struct ee_case {
        const char *name;
        const char *cn;
        unsigned key_usage;
        int eku[3];
        size_t neku;
        const char *pext[GMCA_PEXT_COUNT];
        const char *dns[2];
        size_t ndns;
        const char *ip[2];
        size_t nip;
        uint8_t ipbytes[2][16];
        int iplen[2];
        const char *email;
        int ocsp_nocheck;
        int urls; /* CRL DP, AIA, CPS set */
};

static const struct ee_case ee_cases[] = {
    {
        .name = "personal signature",
        .cn = "张三",
        .key_usage = X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_NON_REPUDIATION,
        .eku = {NID_client_auth, NID_email_protect},
        .neku = 2,
        .pext = {[GMCA_PEXT_IDENTITY_CARD] = "11010119900307123X",
                 [GMCA_PEXT_INSURANCE] = "1101011990030712"},
        .email = "zhang.san@example.gov.cn",
        .urls = 1,
    },
    {
        .name = "organisation",
        .cn = "Example Org",
        .key_usage = X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_NON_REPUDIATION,
        .eku = {NID_client_auth},
        .neku = 1,
        .pext = {[GMCA_PEXT_USCC] = "91350100M000100Y43",
                 [GMCA_PEXT_ORG_CODE] = "M000100Y4",
                 [GMCA_PEXT_TAXATION] = "91350100M000100Y43",
                 [GMCA_PEXT_IC_REGISTRATION] = "350100100012345"},
        .urls = 1,
    },
    {
        .name = "server",
        .cn = "www.example.gov.cn",
        .key_usage = X509v3_KU_DIGITAL_SIGNATURE | X509v3_KU_KEY_ENCIPHERMENT,
        .eku = {NID_server_auth, NID_client_auth},
        .neku = 2,
        .dns = {"www.example.gov.cn", "*.example.gov.cn"},
        .ndns = 2,
        .ip = {"192.0.2.10", "2001:db8::1"},
        .nip = 2,
        .ipbytes = {{192, 0, 2, 10}, {0x20, 0x01, 0x0d, 0xb8, [15] = 1}},
        .iplen = {4, 16},
        .urls = 1,
    },
    {
        .name = "OCSP responder",
        .cn = "Example OCSP Responder",
        .key_usage = X509v3_KU_DIGITAL_SIGNATURE,
        .eku = {NID_OCSP_sign},
        .neku = 1,
        .ocsp_nocheck = 1,
        .urls = 0,
    },
};

static struct gmca_subject_info *case_info(const struct ee_case *c)
{
        struct gmca_subject_info *si = info_new();

        for (int i = 0; i < GMCA_PEXT_COUNT; i++)
                if (c->pext[i] != NULL)
                        si->pext[i] = dup_str(c->pext[i]);
        for (size_t i = 0; i < c->ndns; i++)
                si->dns[si->ndns++] = dup_str(c->dns[i]);
        for (size_t i = 0; i < c->nip; i++)
                si->ip[si->nip++] = dup_str(c->ip[i]);
        if (c->email != NULL)
                si->email[si->nemail++] = dup_str(c->email);
        return si;
}

static X509 *build_case(struct pki *k, const struct ee_case *c, struct gmca_cert_template *t,
                        struct gmca_subject_info **si, X509_NAME **name, X509 *issuer,
                        EVP_PKEY *issuer_key)
{
        const char *dn[] = {"C", "CN", "O", "Example Org", "CN", c->cn, NULL};

        ee_template(k, t);
        *name = make_name(dn);
        *si = case_info(c);
        t->subject = *name;
        t->issuer = issuer;
        t->issuer_key = issuer_key;
        t->key_usage = c->key_usage;
        t->eku = c->eku;
        t->neku = c->neku;
        t->info = *si;
        t->ocsp_nocheck = c->ocsp_nocheck;
        if (!c->urls)
                t->crl_url = t->ocsp_url = t->ca_issuers_url = t->cps_uri = NULL;
        return build_ok(t);
}

static void assert_urls(X509 *x, int present)
{
        AUTHORITY_INFO_ACCESS *aia;
        CERTIFICATEPOLICIES *pols;
        POLICYQUALINFO *q;
        CRL_DIST_POINTS *dps;
        DIST_POINT *dp;

        if (!present) {
                assert_int_equal(nid_count(x, NID_crl_distribution_points, NULL), 0);
                assert_int_equal(nid_count(x, NID_info_access, NULL), 0);
                return;
        }
        assert_ext_once(x, NID_crl_distribution_points, 0);
        dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
        assert_non_null(dps);
        assert_int_equal(sk_DIST_POINT_num(dps), 1);
        dp = sk_DIST_POINT_value(dps, 0);
        assert_int_equal(dp->distpoint->type, 0);
        assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
        assert_ia5_name(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0), GEN_URI, CRL_URL);
        CRL_DIST_POINTS_free(dps);

        assert_ext_once(x, NID_info_access, 0);
        aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
        assert_non_null(aia);
        assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 2);
        assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 0)->method), NID_ad_OCSP);
        assert_ia5_name(sk_ACCESS_DESCRIPTION_value(aia, 0)->location, GEN_URI, OCSP_URL);
        assert_int_equal(OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, 1)->method),
                         NID_ad_ca_issuers);
        assert_ia5_name(sk_ACCESS_DESCRIPTION_value(aia, 1)->location, GEN_URI, CAISSUERS_URL);
        AUTHORITY_INFO_ACCESS_free(aia);

        assert_ext_once(x, NID_certificate_policies, 0);
        pols = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
        assert_non_null(pols);
        assert_int_equal(sk_POLICYINFO_num(pols), 1);
        assert_int_equal(sk_POLICYQUALINFO_num(sk_POLICYINFO_value(pols, 0)->qualifiers), 1);
        q = sk_POLICYQUALINFO_value(sk_POLICYINFO_value(pols, 0)->qualifiers, 0);
        assert_int_equal(OBJ_obj2nid(q->pqualid), NID_id_qt_cps);
        assert_bytes(q->d.cpsuri, CPS_URI, strlen(CPS_URI));
        CERTIFICATEPOLICIES_free(pols);
}

static void assert_san(X509 *x, const struct ee_case *c)
{
        GENERAL_NAMES *names;
        int i = 0;

        if (c->ndns + c->nip + (c->email != NULL) == 0) {
                assert_int_equal(nid_count(x, NID_subject_alt_name, NULL), 0);
                return;
        }
        assert_ext_once(x, NID_subject_alt_name, 0);
        names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        assert_non_null(names);
        assert_int_equal(sk_GENERAL_NAME_num(names), c->ndns + c->nip + (c->email != NULL));
        for (size_t j = 0; j < c->ndns; j++)
                assert_ia5_name(sk_GENERAL_NAME_value(names, i++), GEN_DNS, c->dns[j]);
        for (size_t j = 0; j < c->nip; j++) {
                int type = -1;
                const ASN1_OCTET_STRING *ip =
                    GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i++), &type);

                assert_int_equal(type, GEN_IPADD);
                assert_bytes(ip, c->ipbytes[j], (size_t)c->iplen[j]);
        }
        if (c->email != NULL)
                assert_ia5_name(sk_GENERAL_NAME_value(names, i++), GEN_EMAIL, c->email);
        GENERAL_NAMES_free(names);
}

static void assert_eku(X509 *x, const struct ee_case *c)
{
        EXTENDED_KEY_USAGE *eku;

        assert_ext_once(x, NID_ext_key_usage, 0);
        eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
        assert_non_null(eku);
        assert_int_equal(sk_ASN1_OBJECT_num(eku), c->neku);
        for (size_t i = 0; i < c->neku; i++)
                assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, (int)i)), c->eku[i]);
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
}

/* Private extensions: exact DER, non-critical, once, and read back. */
static void assert_pexts(X509 *x, const struct ee_case *c)
{
        for (int p = 0; p < GMCA_PEXT_COUNT; p++) {
                ASN1_OBJECT *obj = OBJ_txt2obj(pext_oids[p], 1);
                struct gmca_error e = {0};
                char *v = (char *)"untouched";
                int crit = -1;

                assert_non_null(obj);
                assert_string_equal(gmca_pext_oid(p), pext_oids[p]);
                if (c->pext[p] == NULL) {
                        assert_int_equal(ext_count(x, obj, NULL), 0);
                        assert_int_equal(gmca_cert_get_pext(x, p, &v, &e), GMCA_ERR_NOTFOUND);
                        assert_string_equal(v, "untouched");
                } else {
                        size_t n = strlen(c->pext[p]);
                        uint8_t want[80];
                        size_t off = 0;

                        assert_int_equal(ext_count(x, obj, &crit), 1);
                        assert_int_equal(crit, 0);
                        if (p == GMCA_PEXT_IDENTITY_CARD) {
                                want[off++] = 0xa0;
                                want[off++] = (uint8_t)(n + 2);
                        }
                        want[off++] = 0x13;
                        want[off++] = (uint8_t)n;
                        memcpy(want + off, c->pext[p], n);
                        assert_bytes(ext_value(x, obj), want, off + n);
                        assert_int_equal(gmca_cert_get_pext(x, p, &v, &e), 0);
                        assert_string_equal(v, c->pext[p]);
                        OPENSSL_free(v);
                }
                ASN1_OBJECT_free(obj);
        }
}

static void test_end_entities(void **state)
{
        struct pki *k = *state;

        for (size_t i = 0; i < sizeof(ee_cases) / sizeof(ee_cases[0]); i++) {
                const struct ee_case *c = &ee_cases[i];
                struct gmca_cert_template t;
                struct gmca_subject_info *si = NULL;
                X509_NAME *name = NULL;
                X509 *x;
                int crit = -1;

                print_message("end entity: %s\n", c->name);
                x = build_case(k, c, &t, &si, &name, k->sub, k->sub_key);
                assert_common(x, &t, k->sub, k->sub_key);
                assert_int_equal(gmca_cert_verify_signed_by(x, k->root_key, NULL, NULL),
                                 GMCA_ERR_VERIFY);
                assert_eku(x, c);
                assert_urls(x, c->urls);
                assert_san(x, c);
                assert_pexts(x, c);
                if (c->ocsp_nocheck) {
                        assert_int_equal(nid_count(x, NID_id_pkix_OCSP_noCheck, &crit), 1);
                        assert_int_equal(crit, 0);
                        assert_bytes(ext_value(x, OBJ_nid2obj(NID_id_pkix_OCSP_noCheck)),
                                     "\x05\x00", 2);
                } else {
                        assert_int_equal(nid_count(x, NID_id_pkix_OCSP_noCheck, NULL), 0);
                }
                X509_free(x);
                X509_NAME_free(name);
                gmca_subject_info_free(si);
        }
}

/* The ID is the one the template names, not a fixed one. */
static void test_custom_id(void **state)
{
        struct pki *k = *state;
        struct gmca_cert_template t;
        struct gmca_error e = {0};
        X509 *x;

        ee_template(k, &t);
        t.sm2_id = "ALICE123@YAHOO.COM";
        x = build_ok(&t);
        assert_int_equal(gmca_cert_verify_signed_by(x, k->sub_key, "ALICE123@YAHOO.COM", &e), 0);
        assert_int_equal(gmca_cert_verify_signed_by(x, k->sub_key, NULL, NULL), GMCA_ERR_VERIFY);
        X509_free(x);
}

static void test_fingerprint_serial_hex(void **state)
{
        struct pki *k = *state;
        uint8_t *der = NULL, md[32];
        unsigned int mdlen = 0;
        char fp[65], want[65], hex[41];
        struct gmca_error e = {0};
        int len;

        len = i2d_X509(k->sub, &der);
        assert_true(len > 0);
        assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sm3(), NULL), 1);
        OPENSSL_free(der);
        for (int i = 0; i < 32; i++)
                snprintf(want + 2 * i, 3, "%02x", md[i]);
        assert_int_equal(gmca_cert_fingerprint(k->sub, fp, &e), 0);
        assert_string_equal(fp, want);

        assert_int_equal(gmca_serial_hex(k->sub, hex, sizeof(hex)), 0);
        assert_string_equal(hex, "2233445566778899AABBCCDDEEFF1021");
        assert_int_equal(gmca_serial_hex(k->sub, hex, 32), GMCA_ERR_LIMIT);
        assert_int_equal(gmca_serial_hex(k->sub, hex, 33), 0);
}

/* The reader on hand-made extension values, including the ones we never write. */
struct pext_case {
        const char *name;
        enum gmca_pext p;
        const char *der;
        size_t len;
        int rc;
        const char *value;
};

#define D(s) s, sizeof(s) - 1
static const struct pext_case pext_cases[] = {
    {"ID [0] EXPLICIT", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x05\x13\x03"
       "123"),
     0, "123"},
    {"ID [0] IMPLICIT", GMCA_PEXT_IDENTITY_CARD,
     D("\x80\x03"
       "12X"),
     0, "12X"},
    {"ID [0] EXPLICIT UTF8", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x05\x0c\x03"
       "123"),
     0, "123"},
    {"ID [1] EXPLICIT UTF8 officer", GMCA_PEXT_IDENTITY_CARD,
     D("\xa1\x08\x0c\x06"
       "\xe5\x86\x9b"
       "123"),
     0,
     "\xe5\x86\x9b"
     "123"},
    {"ID [1] IMPLICIT officer", GMCA_PEXT_IDENTITY_CARD,
     D("\x81\x04"
       "\xe5\x86\x9b"
       "1"),
     0,
     "\xe5\x86\x9b"
     "1"},
    {"ID [2] EXPLICIT passport", GMCA_PEXT_IDENTITY_CARD,
     D("\xa2\x0b\x13\x09"
       "E12345678"),
     0, "E12345678"},
    {"ID [2] IMPLICIT passport", GMCA_PEXT_IDENTITY_CARD,
     D("\x82\x09"
       "E12345678"),
     0, "E12345678"},
    {"ID bare PrintableString", GMCA_PEXT_IDENTITY_CARD,
     D("\x13\x03"
       "123"),
     GMCA_ERR_INVALID, NULL},
    {"ID [3]", GMCA_PEXT_IDENTITY_CARD,
     D("\xa3\x05\x13\x03"
       "123"),
     GMCA_ERR_INVALID, NULL},
    {"ID trailing byte", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x05\x13\x03"
       "123"
       "\x00"),
     GMCA_ERR_INVALID, NULL},
    {"ID inner shorter than outer", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x06\x13\x03"
       "123"
       "4"),
     GMCA_ERR_INVALID, NULL},
    {"ID long-form length", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x81\x05\x13\x03"
       "123"),
     GMCA_ERR_INVALID, NULL},
    {"ID indefinite length", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x80\x13\x03"
       "123"
       "\x00\x00"),
     GMCA_ERR_INVALID, NULL},
    {"ID truncated", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x05\x13\x03"
       "12"),
     GMCA_ERR_INVALID, NULL},
    {"ID explicit OCTET STRING", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x05\x04\x03"
       "123"),
     GMCA_ERR_INVALID, NULL},
    {"ID empty", GMCA_PEXT_IDENTITY_CARD, D("\xa0\x02\x13\x00"), GMCA_ERR_INVALID, NULL},
    {"ID '@' in PrintableString", GMCA_PEXT_IDENTITY_CARD,
     D("\xa0\x05\x13\x03"
       "1@3"),
     GMCA_ERR_INVALID, NULL},
    {"ID NUL in IMPLICIT", GMCA_PEXT_IDENTITY_CARD,
     D("\x80\x03"
       "1\x00"
       "3"),
     GMCA_ERR_INVALID, NULL},
    {"USCC PrintableString", GMCA_PEXT_USCC,
     D("\x13\x04"
       "91AB"),
     0, "91AB"},
    {"org code UTF8String (deployed CAs)", GMCA_PEXT_ORG_CODE,
     D("\x0c\x04"
       "91AB"),
     0, "91AB"},
    {"taxation IA5String", GMCA_PEXT_TAXATION,
     D("\x16\x04"
       "91AB"),
     GMCA_ERR_INVALID, NULL},
    {"insurance context tag", GMCA_PEXT_INSURANCE,
     D("\x80\x04"
       "91AB"),
     GMCA_ERR_INVALID, NULL},
    {"IC reg constructed string", GMCA_PEXT_IC_REGISTRATION,
     D("\x33\x04"
       "91AB"),
     GMCA_ERR_INVALID, NULL},
    {"USCC overlong UTF-8", GMCA_PEXT_USCC, D("\x0c\x02\xc0\xaf"), GMCA_ERR_INVALID, NULL},
    {"USCC UTF-8 control", GMCA_PEXT_USCC,
     D("\x0c\x02"
       "A\x07"),
     GMCA_ERR_INVALID, NULL},
    {"USCC UTF-8 surrogate", GMCA_PEXT_USCC, D("\x0c\x03\xed\xa0\x80"), GMCA_ERR_INVALID, NULL},
    {"USCC trailing bytes", GMCA_PEXT_USCC,
     D("\x13\x02"
       "91"
       "\x13\x00"),
     GMCA_ERR_INVALID, NULL},
    {"USCC empty extnValue", GMCA_PEXT_USCC, "", 0, GMCA_ERR_INVALID, NULL},
};
#undef D

static void add_raw_ext(X509 *x, const char *oid, const void *der, size_t len)
{
        ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *ext;

        assert_non_null(obj);
        assert_non_null(os);
        assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)len), 1);
        ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
}

static void test_pext_parse(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(pext_cases) / sizeof(pext_cases[0]); i++) {
                const struct pext_case *c = &pext_cases[i];
                struct gmca_error e = {0};
                X509 *x = X509_new();
                char *v = NULL;
                int rc;

                print_message("private extension: %s\n", c->name);
                assert_non_null(x);
                add_raw_ext(x, pext_oids[c->p], c->der, c->len);
                rc = gmca_cert_get_pext(x, c->p, &v, &e);
                assert_int_equal(rc, c->rc);
                if (c->rc == 0) {
                        assert_string_equal(v, c->value);
                        OPENSSL_free(v);
                } else {
                        assert_null(v);
                        assert_true(e.msg[0] != '\0');
                }
                X509_free(x);
        }
}

static void test_pext_duplicate(void **state)
{
        X509 *x = X509_new();
        char *v = NULL;

        (void)state;
        assert_non_null(x);
        add_raw_ext(x, pext_oids[GMCA_PEXT_USCC],
                    "\x13\x02"
                    "91",
                    4);
        add_raw_ext(x, pext_oids[GMCA_PEXT_TAXATION],
                    "\x13\x02"
                    "92",
                    4);
        assert_int_equal(gmca_cert_get_pext(x, GMCA_PEXT_USCC, &v, NULL), 0);
        assert_string_equal(v, "91");
        OPENSSL_free(v);
        v = NULL;
        add_raw_ext(x, pext_oids[GMCA_PEXT_USCC],
                    "\x13\x02"
                    "91",
                    4);
        assert_int_equal(gmca_cert_get_pext(x, GMCA_PEXT_USCC, &v, NULL), GMCA_ERR_INVALID);
        assert_null(v);
        assert_int_equal(gmca_cert_get_pext(x, GMCA_PEXT_COUNT, &v, NULL), GMCA_ERR_INVALID);
        X509_free(x);
}

/* Templates that must be refused, each a change to a good end-entity template. */
struct refusal {
        const char *name;
        void (*change)(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si);
        int rc;
        const char *msg; /* substring of the cause */
};

static void r_equal_validity(struct pki *k, struct gmca_cert_template *t,
                             struct gmca_subject_info *si)
{
        t->not_after = t->not_before;
}
static void r_reversed_validity(struct pki *k, struct gmca_cert_template *t,
                                struct gmca_subject_info *si)
{
        t->not_after = t->not_before - 1;
}
static void r_outlives_issuer(struct pki *k, struct gmca_cert_template *t,
                              struct gmca_subject_info *si)
{
        t->not_after = k->now + 10 * YEAR + 1;
}
static void r_p256_subject(struct pki *k, struct gmca_cert_template *t,
                           struct gmca_subject_info *si)
{
        t->pubkey = k->p256_key;
}
static void r_p256_issuer_key(struct pki *k, struct gmca_cert_template *t,
                              struct gmca_subject_info *si)
{
        t->issuer_key = k->p256_key;
}
static void r_pext_control(struct pki *k, struct gmca_cert_template *t,
                           struct gmca_subject_info *si)
{
        si->pext[GMCA_PEXT_IDENTITY_CARD] = dup_str("110101199003\x01"
                                                    "07123X");
}
static void r_pext_at(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        si->pext[GMCA_PEXT_TAXATION] = dup_str("tax@example");
}
static void r_pext_chinese(struct pki *k, struct gmca_cert_template *t,
                           struct gmca_subject_info *si)
{
        si->pext[GMCA_PEXT_ORG_CODE] = dup_str("组织机构代码");
}
static void r_pext_empty(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        si->pext[GMCA_PEXT_USCC] = dup_str("");
}
static void r_pext_long(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        si->pext[GMCA_PEXT_INSURANCE] =
            dup_str("12345678901234567890123456789012345678901234567890123456789012345");
}
static void r_serial_negative(struct pki *k, struct gmca_cert_template *t,
                              struct gmca_subject_info *si)
{
        t->serial[0] = 0x80;
}
static void r_serial_short(struct pki *k, struct gmca_cert_template *t,
                           struct gmca_subject_info *si)
{
        t->serial[0] = 0x00;
}
static void r_wrong_issuer_key(struct pki *k, struct gmca_cert_template *t,
                               struct gmca_subject_info *si)
{
        t->issuer_key = k->root_key;
}
static void r_self_signed_other_key(struct pki *k, struct gmca_cert_template *t,
                                    struct gmca_subject_info *si)
{
        t->issuer = NULL;
        t->issuer_key = k->sub_key;
}
static void r_ee_key_cert_sign(struct pki *k, struct gmca_cert_template *t,
                               struct gmca_subject_info *si)
{
        t->key_usage |= X509v3_KU_KEY_CERT_SIGN;
}
static void r_ee_path_len(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        t->path_len = 0;
}
static void r_ca_without_cert_sign(struct pki *k, struct gmca_cert_template *t,
                                   struct gmca_subject_info *si)
{
        t->ca = 1;
        t->path_len = -1;
        t->key_usage = X509v3_KU_CRL_SIGN;
}
static void r_ca_under_pathlen0(struct pki *k, struct gmca_cert_template *t,
                                struct gmca_subject_info *si)
{
        t->ca = 1;
        t->path_len = 0;
        t->key_usage = X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN;
}
static void r_ca_pathlen_too_big(struct pki *k, struct gmca_cert_template *t,
                                 struct gmca_subject_info *si)
{
        t->issuer = k->root;
        t->issuer_key = k->root_key;
        t->ca = 1;
        t->path_len = 1; /* root's pathLen 1 allows 0 below it */
        t->key_usage = X509v3_KU_KEY_CERT_SIGN;
}
static void r_issuer_not_ca(struct pki *k, struct gmca_cert_template *t,
                            struct gmca_subject_info *si)
{
        t->issuer = k->ee;
        t->issuer_key = k->ee_key;
        t->pubkey = k->sub_key;
}
static void r_bad_ip(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        si->ip[si->nip++] = dup_str("192.0.2.300");
}
static void r_bad_dns(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        si->dns[si->ndns++] = dup_str("bad_name.example.gov.cn");
}
static void r_bad_dns_label(struct pki *k, struct gmca_cert_template *t,
                            struct gmca_subject_info *si)
{
        si->dns[si->ndns++] = dup_str("www..example.gov.cn");
}
static void r_bad_email(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        si->email[si->nemail++] = dup_str("nobody");
}
static void r_bad_crl_url(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        t->crl_url = "ftp://crl.example.gov.cn/sub.crl";
}
static void r_crl_url_space(struct pki *k, struct gmca_cert_template *t,
                            struct gmca_subject_info *si)
{
        t->crl_url = "http://crl.example.gov.cn/a b.crl";
}
static void r_bad_ocsp_url(struct pki *k, struct gmca_cert_template *t,
                           struct gmca_subject_info *si)
{
        t->ocsp_url = "http://";
}
static void r_bad_policy(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        t->policy_oid = "anyPolicy";
}
static void r_cps_without_policy(struct pki *k, struct gmca_cert_template *t,
                                 struct gmca_subject_info *si)
{
        t->policy_oid = NULL;
}
static void r_nocheck_without_eku(struct pki *k, struct gmca_cert_template *t,
                                  struct gmca_subject_info *si)
{
        t->ocsp_nocheck = 1;
}
static const int eku_dup[] = {NID_server_auth, NID_server_auth};
static void r_eku_duplicate(struct pki *k, struct gmca_cert_template *t,
                            struct gmca_subject_info *si)
{
        t->eku = eku_dup;
        t->neku = 2;
}
static const int eku_undef[] = {NID_undef};
static void r_eku_unknown(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        t->eku = eku_undef;
        t->neku = 1;
}
static void r_ku_unknown_bit(struct pki *k, struct gmca_cert_template *t,
                             struct gmca_subject_info *si)
{
        t->key_usage |= 0x100;
}
static void r_empty_subject(struct pki *k, struct gmca_cert_template *t,
                            struct gmca_subject_info *si)
{
        t->subject = k->empty_name;
}
static void r_no_subject(struct pki *k, struct gmca_cert_template *t, struct gmca_subject_info *si)
{
        t->subject = NULL;
}

static const struct refusal refusals[] = {
    {"notAfter == notBefore", r_equal_validity, GMCA_ERR_INVALID, "notAfter"},
    {"notAfter < notBefore", r_reversed_validity, GMCA_ERR_INVALID, "notAfter"},
    {"outlives issuer", r_outlives_issuer, GMCA_ERR_POLICY,
     "validity: GM/T 0015: certificate may not outlive its issuer"},
    {"P-256 subject key", r_p256_subject, GMCA_ERR_INVALID, "subject public key"},
    {"P-256 issuer key", r_p256_issuer_key, GMCA_ERR_INVALID, "issuer key"},
    {"control character in ID number", r_pext_control, GMCA_ERR_INVALID, "identity_card_number"},
    {"'@' in taxation number", r_pext_at, GMCA_ERR_INVALID, "taxation_number"},
    {"Chinese in organisation code", r_pext_chinese, GMCA_ERR_INVALID, "organization_code"},
    {"empty USCC", r_pext_empty, GMCA_ERR_INVALID, "unified_social_credit_code"},
    {"65-character insurance number", r_pext_long, GMCA_ERR_INVALID, "insurance_number"},
    {"negative serial", r_serial_negative, GMCA_ERR_INVALID, "serial"},
    {"serial with a zero first byte", r_serial_short, GMCA_ERR_INVALID, "serial"},
    {"issuer key not the issuer's", r_wrong_issuer_key, GMCA_ERR_INVALID, "does not match"},
    {"self-signed with another key", r_self_signed_other_key, GMCA_ERR_INVALID, "own key"},
    {"end entity with keyCertSign", r_ee_key_cert_sign, GMCA_ERR_INVALID, "keyCertSign"},
    {"end entity with pathLen", r_ee_path_len, GMCA_ERR_INVALID, "pathLenConstraint"},
    {"CA without keyCertSign", r_ca_without_cert_sign, GMCA_ERR_INVALID, "keyCertSign"},
    {"CA under pathLen 0", r_ca_under_pathlen0, GMCA_ERR_POLICY, "pathLenConstraint 0"},
    {"CA pathLen not below issuer's", r_ca_pathlen_too_big, GMCA_ERR_POLICY, "pathLenConstraint"},
    {"issuer is not a CA", r_issuer_not_ca, GMCA_ERR_POLICY, "not a CA"},
    {"bad IP address", r_bad_ip, GMCA_ERR_INVALID, "iPAddress"},
    {"bad DNS name", r_bad_dns, GMCA_ERR_INVALID, "dNSName"},
    {"empty DNS label", r_bad_dns_label, GMCA_ERR_INVALID, "dNSName"},
    {"bad e-mail", r_bad_email, GMCA_ERR_INVALID, "rfc822Name"},
    {"ftp CRL URL", r_bad_crl_url, GMCA_ERR_INVALID, "cRLDistributionPoints"},
    {"space in CRL URL", r_crl_url_space, GMCA_ERR_INVALID, "cRLDistributionPoints"},
    {"OCSP URL without host", r_bad_ocsp_url, GMCA_ERR_INVALID, "authorityInfoAccess"},
    {"policy by name", r_bad_policy, GMCA_ERR_INVALID, "dotted OID"},
    {"CPS URI without policy", r_cps_without_policy, GMCA_ERR_INVALID, "policy OID"},
    {"ocspNoCheck without OCSPSigning", r_nocheck_without_eku, GMCA_ERR_INVALID, "ocspNoCheck"},
    {"duplicate EKU", r_eku_duplicate, GMCA_ERR_INVALID, "twice"},
    {"unknown EKU", r_eku_unknown, GMCA_ERR_INVALID, "unknown purpose"},
    {"unknown keyUsage bit", r_ku_unknown_bit, GMCA_ERR_INVALID, "unknown bits"},
    {"empty subject", r_empty_subject, GMCA_ERR_INVALID, "subject"},
    {"no subject", r_no_subject, GMCA_ERR_INVALID, "template"},
};

static void test_refusals(void **state)
{
        struct pki *k = *state;

        for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
                const struct refusal *r = &refusals[i];
                struct gmca_cert_template t;
                struct gmca_subject_info *si = info_new();
                struct gmca_error e = {0};
                X509 *x;

                print_message("refusal: %s\n", r->name);
                ee_template(k, &t);
                t.info = si;
                r->change(k, &t, si);
                x = gmca_cert_build(&t, &e);
                assert_null(x);
                assert_int_equal(e.code, r->rc);
                if (strstr(e.msg, r->msg) == NULL)
                        fail_msg("cause \"%s\" lacks \"%s\"", e.msg, r->msg);
                gmca_subject_info_free(si);
        }
        /* The unchanged template is fine, so each refusal is the change's doing. */
        {
                struct gmca_cert_template t;

                ee_template(k, &t);
                X509_free(build_ok(&t));
        }
}

/* The openssl command line as an outside check of what we build. */
static int have_openssl(void)
{
        return system("command -v openssl >/dev/null 2>&1") == 0;
}

static void write_pem(const char *dir, const char *name, X509 *x)
{
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(PEM_write_X509(f, x), 1);
        assert_int_equal(fclose(f), 0);
}

/* Run cmd, return its exit status and its output (both streams) in out. */
static int run(const char *cmd, char *out, size_t outlen)
{
        FILE *p = popen(cmd, "r");
        size_t n = 0, r;
        int st;

        assert_non_null(p);
        while (n + 1 < outlen && (r = fread(out + n, 1, outlen - n - 1, p)) > 0)
                n += r;
        out[n] = '\0';
        st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_openssl_cli(void **state)
{
        static const char *const files[] = {"root.pem", "sub.pem", "leaf.pem", "ee0.pem",
                                            "ee1.pem",  "ee2.pem", "ee3.pem"};
        struct pki *k = *state;
        char dir[] = "/tmp/gmca-test-x509-XXXXXX", cmd[1024], out[16384], path[512];
        struct gmca_cert_template t;
        X509 *leaf;

        if (!have_openssl())
                skip();
        assert_non_null(mkdtemp(dir));
        write_pem(dir, "root.pem", k->root);
        write_pem(dir, "sub.pem", k->sub);
        /* A leaf directly under the root: the CLI sets the ID on the target only. */
        ee_template(k, &t);
        t.issuer = k->root;
        t.issuer_key = k->root_key;
        t.ocsp_url = t.ca_issuers_url = NULL;
        leaf = build_ok(&t);
        write_pem(dir, "leaf.pem", leaf);
        X509_free(leaf);
        for (size_t i = 0; i < sizeof(ee_cases) / sizeof(ee_cases[0]); i++) {
                struct gmca_subject_info *si = NULL;
                X509_NAME *name = NULL;
                char f[16];
                X509 *x = build_case(k, &ee_cases[i], &t, &si, &name, k->sub, k->sub_key);

                snprintf(f, sizeof(f), "ee%zu.pem", i);
                write_pem(dir, f, x);
                X509_free(x);
                X509_NAME_free(name);
                gmca_subject_info_free(si);
        }

        snprintf(cmd, sizeof(cmd),
                 "cd %s && openssl verify -vfyopt distid:1234567812345678 -CAfile root.pem "
                 "leaf.pem 2>&1",
                 dir);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "leaf.pem: OK"));
        /* And the ID matters to the outside verifier too. */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && openssl verify -vfyopt distid:" OTHER_ID " -CAfile root.pem "
                 "leaf.pem 2>&1",
                 dir);
        assert_int_not_equal(run(cmd, out, sizeof(out)), 0);
        assert_null(strstr(out, "leaf.pem: OK"));

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(cmd, sizeof(cmd), "openssl x509 -text -noout -in %s/%s 2>&1", dir,
                         files[i]);
                if (run(cmd, out, sizeof(out)) != 0)
                        fail_msg("openssl x509 -text %s: %s", files[i], out);
                assert_non_null(strstr(out, "Signature Algorithm: SM2-with-SM3"));
                assert_non_null(strstr(out, "X509v3 Subject Key Identifier"));
                if (i == 3) /* personal: the ID number is visible to any reader */
                        assert_non_null(strstr(out, "1.2.156.10260.4.1.1"));
                if (i == 6)
                        assert_non_null(strstr(out, "OCSP No Check"));
        }
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(rmdir(dir), 0);
}

/* A public-only copy of key, as a device gives it. */
static EVP_PKEY *public_only(EVP_PKEY *key)
{
        unsigned char *der = NULL;
        const unsigned char *q;
        int len = i2d_PUBKEY(key, &der);
        EVP_PKEY *pub;

        assert_true(len > 0);
        q = der;
        pub = d2i_PUBKEY(NULL, &q, len);
        assert_non_null(pub);
        OPENSSL_free(der);
        return pub;
}

static int failing_sign(void *arg, const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX],
                        size_t *siglen, struct gmca_error *e)
{
        (void)tbs;
        (void)len;
        (void)sig;
        *siglen = 0;
        if (arg != NULL)
                return 0; /* "succeeds" with an empty signature */
        return gmca_error_set(e, GMCA_ERR_AUTH, "device: key locked");
}

/* A signer (as a device or the CA engine provides) gives the same certificate as the key. */
static void test_signer(void **state)
{
        struct pki *k = *state;
        void (*make[])(struct pki *, struct gmca_cert_template *) = {root_template, sub_template,
                                                                     ee_template};

        for (size_t i = 0; i < sizeof(make) / sizeof(make[0]); i++) {
                struct gmca_cert_template t;
                struct gmca_pkey_signer ps;
                struct gmca_signer bad;
                struct gmca_error e = {0};
                unsigned char *tbs1 = NULL, *tbs2 = NULL, *der = NULL;
                const unsigned char *q;
                int n1, n2, dlen;
                X509 *a, *b, *back;
                EVP_PKEY *priv, *pub;
                const X509_ALGOR *alg;
                const ASN1_OBJECT *obj;
                int ptype;

                make[i](k, &t);
                a = build_ok(&t);
                priv = t.issuer_key;
                pub = public_only(priv);
                expect(gmca_pkey_signer_init(&ps, priv, t.sm2_id, &e), &e, 0, NULL, "signer init");
                t.issuer_key = pub;
                t.signer = &ps.base;
                b = build_ok(&t);
                n1 = i2d_re_X509_tbs(a, &tbs1);
                n2 = i2d_re_X509_tbs(b, &tbs2);
                assert_true(n1 > 0);
                assert_int_equal(n1, n2);
                assert_memory_equal(tbs1, tbs2, (size_t)n1);
                expect(gmca_cert_verify_signed_by(b, priv, NULL, &e), &e, 0, NULL, "verify");
                /* What leaves is DER that parses back the same, with the algorithm twice. */
                dlen = i2d_X509(b, &der);
                assert_true(dlen > 0);
                q = der;
                back = d2i_X509(NULL, &q, dlen);
                assert_non_null(back);
                assert_ptr_equal(q, der + dlen);
                alg = X509_get0_tbs_sigalg(back);
                X509_ALGOR_get0(&obj, &ptype, NULL, alg);
                assert_int_equal(OBJ_obj2nid(obj), NID_SM2_with_SM3);
                assert_int_equal(ptype, V_ASN1_UNDEF);
                assert_int_equal(X509_get_signature_nid(back), NID_SM2_with_SM3);
                expect(gmca_cert_verify_signed_by(back, priv, NULL, &e), &e, 0, NULL, "reparsed");

                /* A signer's failure is the build's failure, with its cause. */
                bad = (struct gmca_signer){failing_sign, NULL};
                t.signer = &bad;
                gmca_error_clear(&e);
                assert_null(gmca_cert_build(&t, &e));
                assert_int_equal(e.code, GMCA_ERR_AUTH);
                assert_non_null(strstr(e.msg, "key locked"));
                bad.arg = &bad;
                gmca_error_clear(&e);
                assert_null(gmca_cert_build(&t, &e));
                assert_int_equal(e.code, GMCA_ERR_CRYPTO);

                OPENSSL_free(tbs1);
                OPENSSL_free(tbs2);
                OPENSSL_free(der);
                X509_free(a);
                X509_free(b);
                X509_free(back);
                EVP_PKEY_free(pub);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_serial_random), cmocka_unit_test(test_root),
            cmocka_unit_test(test_intermediate),  cmocka_unit_test(test_end_entities),
            cmocka_unit_test(test_custom_id),     cmocka_unit_test(test_fingerprint_serial_hex),
            cmocka_unit_test(test_pext_parse),    cmocka_unit_test(test_pext_duplicate),
            cmocka_unit_test(test_refusals),      cmocka_unit_test(test_openssl_cli),
            cmocka_unit_test(test_signer),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
