/*
 * Unit tests for validate: a root, an operational CA and leaves built in
 * memory; table-driven cases over use, validation time, anchors,
 * intermediates, a forged issuer of the same name, and CRLs given
 * by the caller (good, revoked, from another key, stale) under the
 * policies; plus the strict OCSP response parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "crypto.h"
#include "util.h"
#include "validate.h"
#include "x509.h"

#include "testutil.h"

#define DAY 86400

static time_t T0;

struct pki {
        EVP_PKEY *rk, *sk, *fk, *ek;
        X509 *root, *sub, *fake_sub, *sign, *enc, *limited_root, *deep_sub, *leaf2;
        X509_CRL *crl_good, *crl_revoked, *crl_forged, *crl_stale;
};

static X509 *mk(const char *dn, EVP_PKEY *pub, const X509 *iss, EVP_PKEY *ikey, int ca, int pl,
                unsigned ku, time_t nb, time_t na)
{
        struct gmca_cert_template t;
        struct gmca_error e;
        X509_NAME *n;
        X509 *x;

        memset(&t, 0, sizeof(t));
        gmca_error_clear(&e);
        assert_non_null(n = gmca_dn_parse(dn, &e));
        t.subject = n;
        t.pubkey = pub;
        t.issuer = iss;
        t.issuer_key = ikey;
        assert_int_equal(gmca_serial_random(t.serial, &e), 0);
        t.not_before = nb;
        t.not_after = na;
        t.ca = ca;
        t.path_len = pl;
        t.key_usage = ku;
        if ((x = gmca_cert_build(&t, &e)) == NULL)
                fail_msg("build %s: %s", dn, e.msg);
        X509_NAME_free(n);
        /* Through DER and the strict parser, as a relying party gets it. */
        {
                uint8_t *der = NULL;
                int len = i2d_X509(x, &der);
                X509 *y;

                assert_true(len > 0);
                assert_non_null(y = gmca_cert_parse(der, (size_t)len, &e));
                OPENSSL_free(der);
                X509_free(x);
                x = y;
        }
        return x;
}

static X509_CRL *mkcrl(X509 *iss, EVP_PKEY *key, X509 *revoked, time_t tu, time_t nu)
{
        struct gmca_crl_params p;
        struct gmca_crl_entry ent;
        struct gmca_error e;
        X509_CRL *crl;

        memset(&p, 0, sizeof(p));
        memset(&ent, 0, sizeof(ent));
        gmca_error_clear(&e);
        p.issuer = iss;
        p.key = key;
        p.number = 1;
        p.this_update = tu;
        p.next_update = nu;
        if (revoked != NULL) {
                const ASN1_INTEGER *s = X509_get0_serialNumber(revoked);

                ent.serial_len = (size_t)ASN1_STRING_length(s);
                memcpy(ent.serial, ASN1_STRING_get0_data(s), ent.serial_len);
                ent.revoked_at = tu - 10;
                ent.reason = 1;
                p.entries = &ent;
                p.nentries = 1;
        }
        if ((crl = gmca_crl_build(&p, &e)) == NULL)
                fail_msg("crl: %s", e.msg);
        return crl;
}

static int setup(void **state)
{
        static struct pki k;
        struct gmca_error e;
        EVP_PKEY *lk, *l2k, *dk, *lrk;

        gmca_error_clear(&e);
        T0 = gmca_now();
        assert_non_null(k.rk = gmca_sm2_keygen(&e));
        assert_non_null(k.sk = gmca_sm2_keygen(&e));
        assert_non_null(k.fk = gmca_sm2_keygen(&e));
        assert_non_null(lk = gmca_sm2_keygen(&e));
        assert_non_null(k.ek = gmca_sm2_keygen(&e));
        assert_non_null(l2k = gmca_sm2_keygen(&e));
        assert_non_null(dk = gmca_sm2_keygen(&e));
        assert_non_null(lrk = gmca_sm2_keygen(&e));
        k.root = mk("C=CN, O=T, CN=Root", k.rk, NULL, k.rk, 1, -1, KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                    T0 - DAY, T0 + 3650 * DAY);
        k.sub = mk("C=CN, O=T, CN=Sub", k.sk, k.root, k.rk, 1, -1, KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                   T0 - DAY, T0 + 1000 * DAY);
        /* Same name as Sub, another key, self-signed: must not stand in for Sub. */
        k.fake_sub = mk("C=CN, O=T, CN=Sub", k.fk, NULL, k.fk, 1, -1,
                        KU_KEY_CERT_SIGN | KU_CRL_SIGN, T0 - DAY, T0 + 1000 * DAY);
        k.sign = mk("C=CN, O=T, CN=Signer", lk, k.sub, k.sk, 0, -1,
                    KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION, T0 - DAY, T0 + 365 * DAY);
        k.enc = mk("C=CN, O=T, CN=Encrypter", k.ek, k.sub, k.sk, 0, -1,
                   KU_KEY_ENCIPHERMENT | KU_DATA_ENCIPHERMENT, T0 - DAY, T0 + 365 * DAY);
        /* A third CA level: a four-certificate path. */
        k.deep_sub = mk("C=CN, O=T, CN=Deep", dk, k.sub, k.sk, 1, -1, KU_KEY_CERT_SIGN, T0 - DAY,
                        T0 + 300 * DAY);
        k.leaf2 = mk("C=CN, O=T, CN=Deep Leaf", l2k, k.deep_sub, dk, 0, -1, KU_DIGITAL_SIGNATURE,
                     T0 - DAY, T0 + 200 * DAY);
        k.limited_root = mk("C=CN, O=T, CN=Limited", lrk, NULL, lrk, 0, -1, KU_DIGITAL_SIGNATURE,
                            T0 - DAY, T0 + 300 * DAY);
        k.crl_good = mkcrl(k.sub, k.sk, NULL, T0 - 60, T0 + DAY);
        k.crl_revoked = mkcrl(k.sub, k.sk, k.sign, T0 - 60, T0 + DAY);
        k.crl_forged = mkcrl(k.fake_sub, k.fk, NULL, T0 - 60, T0 + DAY);
        k.crl_stale = mkcrl(k.sub, k.sk, NULL, T0 - 3 * DAY, T0 - DAY);
        EVP_PKEY_free(lk);
        EVP_PKEY_free(l2k);
        EVP_PKEY_free(dk);
        EVP_PKEY_free(lrk);
        *state = &k;
        return 0;
}

static int teardown(void **state)
{
        struct pki *k = *state;
        X509 *xs[] = {k->root, k->sub,          k->fake_sub, k->sign,
                      k->enc,  k->limited_root, k->deep_sub, k->leaf2};
        X509_CRL *cs[] = {k->crl_good, k->crl_revoked, k->crl_forged, k->crl_stale};

        for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
                X509_free(xs[i]);
        for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
                X509_CRL_free(cs[i]);
        EVP_PKEY_free(k->rk);
        EVP_PKEY_free(k->sk);
        EVP_PKEY_free(k->fk);
        EVP_PKEY_free(k->ek);
        return 0;
}

enum which { SIGN, ENC, LEAF2 };

static void test_table(void **state)
{
        struct pki *k = *state;
        /* which CRL (0 none, 1 good, 2 revoked, 3 forged, 4 stale) */
        static const struct {
                const char *name;
                enum which target;
                int anchor_sub; /* trust Sub directly instead of Root */
                int with_fake;  /* offer the same-name impostor too */
                int with_deep;
                enum gmca_vfy_use use;
                enum gmca_vfy_revocation rev;
                int crl;
                long at_days;
                enum gmca_vfy_reason want;
                int depth;
        } cases[] = {
            {"valid", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_NONE, 0, 0, GMCA_VFY_OK, -1},
            {"valid, impostor offered", SIGN, 0, 1, 0, GMCA_VFY_USE_SIGNATURE, GMCA_VFY_REV_NONE, 0,
             0, GMCA_VFY_OK, -1},
            {"valid under Sub", SIGN, 1, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_NONE, 0, 0,
             GMCA_VFY_OK, -1},
            {"sign cert for encryption", SIGN, 0, 0, 0, GMCA_VFY_USE_ENCRYPTION, GMCA_VFY_REV_NONE,
             0, 0, GMCA_VFY_WRONG_USE, 0},
            {"enc cert for encryption", ENC, 0, 0, 0, GMCA_VFY_USE_ENCRYPTION, GMCA_VFY_REV_NONE, 0,
             0, GMCA_VFY_OK, -1},
            {"enc cert for signature", ENC, 0, 0, 0, GMCA_VFY_USE_SIGNATURE, GMCA_VFY_REV_NONE, 0,
             0, GMCA_VFY_WRONG_USE, 0},
            {"leaf expired", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_NONE, 0, 400,
             GMCA_VFY_EXPIRED, 0},
            {"not yet valid", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_NONE, 0, -2,
             GMCA_VFY_NOT_YET_VALID, 2},
            {"four levels", LEAF2, 0, 0, 1, GMCA_VFY_USE_ANY, GMCA_VFY_REV_NONE, 0, 0, GMCA_VFY_OK,
             -1},
            {"no intermediate", LEAF2, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_NONE, 0, 0,
             GMCA_VFY_NO_ISSUER, 0},
            {"CRL good", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_CRL, 1, 0, GMCA_VFY_OK, -1},
            {"CRL revoked", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_CRL, 2, 0,
             GMCA_VFY_REVOKED, 0},
            {"CRL revoked, soft-fail", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_SOFT_FAIL, 2,
             0, GMCA_VFY_REVOKED, 0},
            {"CRL revoked, prefer-ocsp falls back", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY,
             GMCA_VFY_REV_PREFER_OCSP, 2, 0, GMCA_VFY_REVOKED, 0},
            {"CRL signed by the impostor", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_CRL, 3, 0,
             GMCA_VFY_CRL_INVALID, 0},
            {"stale CRL, crl policy", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_CRL, 4, 0,
             GMCA_VFY_REVOCATION_UNAVAILABLE, 0},
            {"stale CRL, soft-fail", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_SOFT_FAIL, 4, 0,
             GMCA_VFY_OK, -1},
            {"no CRL, crl policy", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_CRL, 0, 0,
             GMCA_VFY_REVOCATION_UNAVAILABLE, 0},
            {"no OCSP URL, ocsp policy", SIGN, 0, 0, 0, GMCA_VFY_USE_ANY, GMCA_VFY_REV_OCSP, 0, 0,
             GMCA_VFY_REVOCATION_UNAVAILABLE, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct gmca_vfy_opts o;
                struct gmca_vfy_result r;
                struct gmca_error e;
                X509 *anchors[1], *inter[3];
                X509_CRL *crls[1];
                X509_CRL *pick[] = {NULL, k->crl_good, k->crl_revoked, k->crl_forged, k->crl_stale};
                X509 *target = cases[i].target == SIGN  ? k->sign
                               : cases[i].target == ENC ? k->enc
                                                        : k->leaf2;
                size_t ni = 0;
                int rc;

                memset(&o, 0, sizeof(o));
                gmca_error_clear(&e);
                anchors[0] = cases[i].anchor_sub ? k->sub : k->root;
                if (cases[i].with_fake)
                        inter[ni++] = k->fake_sub;
                if (!cases[i].anchor_sub)
                        inter[ni++] = k->sub;
                if (cases[i].with_deep)
                        inter[ni++] = k->deep_sub;
                if (cases[i].target == LEAF2 && !cases[i].with_deep)
                        ni = 0;
                o.anchors = anchors;
                o.nanchors = 1;
                o.intermediates = inter;
                o.nintermediates = ni;
                crls[0] = pick[cases[i].crl];
                o.crls = crls;
                o.ncrls = cases[i].crl != 0;
                o.use = cases[i].use;
                o.revocation = cases[i].rev;
                o.at = T0 + cases[i].at_days * DAY;
                /* The root CRL is not given: only the target's status is asked for here. */
                if (cases[i].rev != GMCA_VFY_REV_NONE)
                        anchors[0] = k->sub, o.intermediates = NULL, o.nintermediates = 0;
                rc = gmca_validate(target, &o, &r, &e);
                if ((int)r.reason != (int)cases[i].want || (rc == 0) != (cases[i].want == 0))
                        fail_msg("%s: reason %s (%s), want %s", cases[i].name,
                                 gmca_vfy_reason_name(r.reason), r.msg,
                                 gmca_vfy_reason_name(cases[i].want));
                if (cases[i].want != GMCA_VFY_OK && r.depth != cases[i].depth)
                        fail_msg("%s: depth %d, want %d", cases[i].name, r.depth, cases[i].depth);
                if (cases[i].want != GMCA_VFY_OK)
                        assert_int_equal(e.code, GMCA_ERR_VERIFY);
        }
}

static void test_not_ca_anchor(void **state)
{
        struct pki *k = *state;
        struct gmca_vfy_opts o;
        struct gmca_vfy_result r;
        struct gmca_error e;
        X509 *anchors[] = {k->root}, *inter[] = {k->sign};

        /* The signer's certificate offered as an issuer of itself is not a CA. */
        memset(&o, 0, sizeof(o));
        gmca_error_clear(&e);
        o.anchors = anchors;
        o.nanchors = 1;
        o.intermediates = inter;
        o.nintermediates = 1;
        assert_int_equal(gmca_validate(k->limited_root, &o, &r, &e), GMCA_ERR_VERIFY);
        assert_int_equal(r.reason, GMCA_VFY_NO_ISSUER);
        /* No anchors at all is a usage error, not a verdict. */
        o.nanchors = 0;
        gmca_error_clear(&e);
        assert_int_equal(gmca_validate(k->sign, &o, &r, &e), GMCA_ERR_INVALID);
}

static void test_ocsp_parse(void **state)
{
        static const uint8_t unauthorized[] = {0x30, 0x03, 0x0a, 0x01, 0x06};
        static const uint8_t trailing[] = {0x30, 0x03, 0x0a, 0x01, 0x06, 0x00};
        static const uint8_t ber_len[] = {0x30, 0x81, 0x03, 0x0a, 0x01, 0x06};
        struct gmca_error e;
        OCSP_RESPONSE *r;

        (void)state;
        gmca_error_clear(&e);
        assert_non_null(r = gmca_ocsp_response_parse(unauthorized, sizeof(unauthorized), &e));
        assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
        OCSP_RESPONSE_free(r);
        gmca_error_clear(&e);
        assert_null(gmca_ocsp_response_parse(trailing, sizeof(trailing), &e));
        assert_non_null(strstr(e.msg, "trailing"));
        gmca_error_clear(&e);
        assert_null(gmca_ocsp_response_parse(ber_len, sizeof(ber_len), &e));
        gmca_error_clear(&e);
        assert_null(gmca_ocsp_response_parse(NULL, 0, &e));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_not_ca_anchor),
            cmocka_unit_test(test_ocsp_parse),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
