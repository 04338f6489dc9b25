/*
 * Unit tests for validate: a root, an operational CA and leaves built in
 * memory; table-driven cases over use, validation time, anchors,
 * intermediates, a forged issuer of the same name, and CRLs given
 * by the caller (good, revoked, from another key, stale) under the
 * policies; a pathLenConstraint of 0 with a CA below it; revocation
 * freshness that follows the validation time; a chain directory; OCSP
 * against a one-shot responder on 127.0.0.1 (a forked child that answers
 * one request with a response made to order: nonce echoed, wrong or
 * missing, stale, from the future, signed by the CA, by a delegated
 * responder with or without OCSPSigning, or by a responder of another CA);
 * plus the strict OCSP response parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <openssl/ocsp.h>
#include <openssl/pem.h>
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
        EVP_PKEY *rk, *sk, *fk, *ek, *rsp_k, *rsp_noeku_k, *rsp_other_k, *rsp_root_k;
        X509 *root, *sub, *fake_sub, *sign, *enc, *limited_root, *deep_sub, *leaf2;
        X509 *pl0, *pl0_below, *pl0_leaf, *pl0_direct;
        X509 *rsp, *rsp_noeku, *rsp_other, *rsp_root; /* OCSP responder certificates */
        X509_CRL *crl_good, *crl_revoked, *crl_forged, *crl_stale, *crl_past;
};

static const int eku_ocsp[] = {NID_OCSP_sign};
static const int eku_client[] = {NID_client_auth};

/* As mk below, with an extKeyUsage (NULL: none). */
static X509 *mk_eku(const char *dn, EVP_PKEY *pub, const X509 *iss, EVP_PKEY *ikey, int ca, int pl,
                    unsigned ku, time_t nb, time_t na, const int *eku);

static X509 *mk(const char *dn, EVP_PKEY *pub, const X509 *iss, EVP_PKEY *ikey, int ca, int pl,
                unsigned ku, time_t nb, time_t na)
{
        return mk_eku(dn, pub, iss, ikey, ca, pl, ku, nb, na, NULL);
}

static X509 *mk_eku(const char *dn, EVP_PKEY *pub, const X509 *iss, EVP_PKEY *ikey, int ca, int pl,
                    unsigned ku, time_t nb, time_t na, const int *eku)
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
        t.eku = eku;
        t.neku = eku != NULL;
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
        EVP_PKEY *lk, *l2k, *dk, *lrk, *p0k, *p1k, *p2k, *p3k;
        X509 *standin;

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
        assert_non_null(p0k = gmca_sm2_keygen(&e));
        assert_non_null(p1k = gmca_sm2_keygen(&e));
        assert_non_null(p2k = gmca_sm2_keygen(&e));
        assert_non_null(p3k = gmca_sm2_keygen(&e));
        assert_non_null(k.rsp_k = gmca_sm2_keygen(&e));
        assert_non_null(k.rsp_noeku_k = gmca_sm2_keygen(&e));
        assert_non_null(k.rsp_other_k = gmca_sm2_keygen(&e));
        assert_non_null(k.rsp_root_k = gmca_sm2_keygen(&e));
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
        /* RFC 5280 §4.2.1.9: pathLenConstraint 0 allows no CA below it. */
        k.pl0 = mk("C=CN, O=T, CN=PL0", p0k, k.root, k.rk, 1, 0, KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                   T0 - DAY, T0 + 300 * DAY);
        /*
         * The builder refuses to put a CA under a pathLen-0 issuer, so Below is
         * made under a stand-in with PL0's name and key but no constraint: its
         * signature and key identifiers are PL0's all the same.
         */
        standin = mk("C=CN, O=T, CN=PL0", p0k, k.root, k.rk, 1, -1, KU_KEY_CERT_SIGN | KU_CRL_SIGN,
                     T0 - DAY, T0 + 300 * DAY);
        k.pl0_below = mk("C=CN, O=T, CN=Below PL0", p1k, standin, p0k, 1, -1, KU_KEY_CERT_SIGN,
                         T0 - DAY, T0 + 300 * DAY);
        X509_free(standin);
        k.pl0_leaf = mk("C=CN, O=T, CN=Leaf Below PL0", p2k, k.pl0_below, p1k, 0, -1,
                        KU_DIGITAL_SIGNATURE, T0 - DAY, T0 + 200 * DAY);
        k.pl0_direct = mk("C=CN, O=T, CN=Leaf Of PL0", p3k, k.pl0, p0k, 0, -1, KU_DIGITAL_SIGNATURE,
                          T0 - DAY, T0 + 200 * DAY);
        /* OCSP responders: delegated by Sub, the same without OCSPSigning, by the impostor, by
         * Root. */
        k.rsp = mk_eku("C=CN, O=T, CN=OCSP", k.rsp_k, k.sub, k.sk, 0, -1, KU_DIGITAL_SIGNATURE,
                       T0 - DAY, T0 + 100 * DAY, eku_ocsp);
        k.rsp_noeku = mk_eku("C=CN, O=T, CN=Not OCSP", k.rsp_noeku_k, k.sub, k.sk, 0, -1,
                             KU_DIGITAL_SIGNATURE, T0 - DAY, T0 + 100 * DAY, eku_client);
        k.rsp_other = mk_eku("C=CN, O=T, CN=Impostor OCSP", k.rsp_other_k, k.fake_sub, k.fk, 0, -1,
                             KU_DIGITAL_SIGNATURE, T0 - DAY, T0 + 100 * DAY, eku_ocsp);
        k.rsp_root = mk_eku("C=CN, O=T, CN=Root OCSP", k.rsp_root_k, k.root, k.rk, 0, -1,
                            KU_DIGITAL_SIGNATURE, T0 - DAY, T0 + 100 * DAY, eku_ocsp);
        k.crl_good = mkcrl(k.sub, k.sk, NULL, T0 - 60, T0 + DAY);
        k.crl_revoked = mkcrl(k.sub, k.sk, k.sign, T0 - 60, T0 + DAY);
        k.crl_forged = mkcrl(k.fake_sub, k.fk, NULL, T0 - 60, T0 + DAY);
        k.crl_stale = mkcrl(k.sub, k.sk, NULL, T0 - 3 * DAY, T0 - DAY);
        /* Current twelve to six hours ago only. */
        k.crl_past = mkcrl(k.sub, k.sk, NULL, T0 - 12 * 3600, T0 - 6 * 3600);
        EVP_PKEY_free(p0k);
        EVP_PKEY_free(p1k);
        EVP_PKEY_free(p2k);
        EVP_PKEY_free(p3k);
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
        X509 *xs[] = {k->root, k->sub,          k->fake_sub,  k->sign,
                      k->enc,  k->limited_root, k->deep_sub,  k->leaf2,
                      k->pl0,  k->pl0_below,    k->pl0_leaf,  k->pl0_direct,
                      k->rsp,  k->rsp_noeku,    k->rsp_other, k->rsp_root};
        X509_CRL *cs[] = {k->crl_good, k->crl_revoked, k->crl_forged, k->crl_stale, k->crl_past};
        EVP_PKEY *ks[] = {k->rsp_k, k->rsp_noeku_k, k->rsp_other_k, k->rsp_root_k};

        for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
                X509_free(xs[i]);
        for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
                X509_CRL_free(cs[i]);
        for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
                EVP_PKEY_free(ks[i]);
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

/* Validate target with one anchor, intermediates, CRLs, a policy, a time; returns the reason. */
static int run(X509 *target, X509 *anchor, X509 **inter, size_t ni, X509_CRL *crl,
               enum gmca_vfy_revocation rev, time_t at, struct gmca_vfy_result *r)
{
        struct gmca_vfy_opts o;
        struct gmca_error e;
        X509 *anchors[] = {anchor};
        X509_CRL *crls[] = {crl};
        int rc;

        memset(&o, 0, sizeof(o));
        gmca_error_clear(&e);
        o.anchors = anchors;
        o.nanchors = 1;
        o.intermediates = inter;
        o.nintermediates = ni;
        o.crls = crls;
        o.ncrls = crl != NULL;
        o.revocation = rev;
        o.at = at;
        rc = gmca_validate(target, &o, r, &e);
        assert_int_equal(rc == 0, r->reason == GMCA_VFY_OK);
        if (rc != 0)
                assert_int_equal(rc, GMCA_ERR_VERIFY);
        return (int)r->reason;
}

static void test_path_len(void **state)
{
        struct pki *k = *state;
        struct gmca_vfy_result r;
        X509 *inter[] = {k->pl0, k->pl0_below};

        /* A leaf right under the pathLen-0 CA is fine (the control) ... */
        assert_int_equal(run(k->pl0_direct, k->root, inter, 1, NULL, GMCA_VFY_REV_NONE, 0, &r),
                         GMCA_VFY_OK);
        assert_int_equal(r.chain_len, 3);
        /* ... a CA it signed, and what that CA signs, are not. */
        assert_int_equal(run(k->pl0_leaf, k->root, inter, 2, NULL, GMCA_VFY_REV_NONE, 0, &r),
                         GMCA_VFY_PATH_LEN);
        assert_int_equal(r.depth, 2);
        assert_non_null(strstr(r.msg, "pathLenConstraint 0"));
        /* Trusting the CA below directly takes the constraint out of the path. */
        assert_int_equal(run(k->pl0_leaf, k->pl0_below, NULL, 0, NULL, GMCA_VFY_REV_NONE, 0, &r),
                         GMCA_VFY_OK);
}

/* RFC 5280 §6.1: revocation data must be current at the validation time, not only now. */
static void test_crl_freshness_follows_at(void **state)
{
        struct pki *k = *state;
        struct gmca_vfy_result r;
        static const struct {
                const char *name;
                int which; /* 0 current, 1 current 12h..6h ago, 2 stale, 3 revoked at T0-70 */
                long at;   /* seconds from T0; 0: now */
                enum gmca_vfy_reason want;
        } cases[] = {
            {"current CRL, now", 0, 0, GMCA_VFY_OK},
            {"past CRL, now: stale", 1, 0, GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"past CRL at a time it was current", 1, -9 * 3600, GMCA_VFY_OK},
            {"past CRL after its nextUpdate", 1, -2 * 3600, GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"current CRL at a past time", 0, -9 * 3600, GMCA_VFY_OK},
            {"current CRL beyond its nextUpdate", 0, 2 * DAY, GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"stale CRL at a time it was current", 2, -2 * DAY, GMCA_VFY_NOT_YET_VALID},
            {"revoked, validated before the revocation", 3, -3600, GMCA_VFY_OK},
            {"revoked, validated after the revocation", 3, 3600, GMCA_VFY_REVOKED},
        };
        X509_CRL *pick[] = {k->crl_good, k->crl_past, k->crl_stale, k->crl_revoked};

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int got = run(k->sign, k->sub, NULL, 0, pick[cases[i].which], GMCA_VFY_REV_CRL,
                              cases[i].at != 0 ? T0 + cases[i].at : 0, &r);

                if (got != (int)cases[i].want)
                        fail_msg("%s: %s (%s), want %s", cases[i].name, gmca_vfy_reason_name(got),
                                 r.msg, gmca_vfy_reason_name(cases[i].want));
        }
}

static void write_pem(const char *path, X509 *x)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_int_equal(PEM_write_X509(f, x), 1);
        assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static void test_chain_dir(void **state)
{
        struct pki *k = *state;
        char dir[] = "/tmp/gmca-chaindir.XXXXXX", path[256];
        struct gmca_vfy_opts o;
        struct gmca_vfy_result r;
        struct gmca_error e;
        X509 *anchors[] = {k->root};
        uint8_t *der = NULL;
        int len;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        memset(&o, 0, sizeof(o));
        o.anchors = anchors;
        o.nanchors = 1;
        o.chain_dir = dir;
        /* Empty: no issuer. */
        gmca_error_clear(&e);
        assert_int_equal(gmca_validate(k->leaf2, &o, &r, &e), GMCA_ERR_VERIFY);
        assert_int_equal(r.reason, GMCA_VFY_NO_ISSUER);
        /* Sub as PEM, Deep as DER, a note and a hidden file that are not candidates. */
        snprintf(path, sizeof(path), "%s/sub.pem", dir);
        write_pem(path, k->sub);
        snprintf(path, sizeof(path), "%s/deep.der", dir);
        assert_true((len = i2d_X509(k->deep_sub, &der)) > 0);
        assert_non_null(f = fopen(path, "wb"));
        assert_int_equal(fwrite(der, 1, (size_t)len, f), (size_t)len);
        assert_int_equal(fclose(f), 0);
        OPENSSL_free(der);
        snprintf(path, sizeof(path), "%s/README.txt", dir);
        write_text(path, "not a certificate\n");
        snprintf(path, sizeof(path), "%s/.hidden.pem", dir);
        write_text(path, "not a certificate either\n");
        gmca_error_clear(&e);
        assert_int_equal(gmca_validate(k->leaf2, &o, &r, &e), 0);
        assert_int_equal(r.chain_len, 4);
        /* A candidate that does not parse is an error, not a verdict. */
        snprintf(path, sizeof(path), "%s/broken.crt", dir);
        write_text(path, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        gmca_error_clear(&e);
        assert_int_equal(gmca_validate(k->leaf2, &o, &r, &e), GMCA_ERR_INVALID);
        assert_non_null(strstr(e.msg, "broken.crt"));
        assert_int_equal(unlink(path), 0);
        /* Over the cap on files. */
        for (int i = 0; i < GMCA_VFY_DIR_MAX; i++) {
                snprintf(path, sizeof(path), "%s/extra%02d.pem", dir, i);
                write_pem(path, k->enc);
        }
        gmca_error_clear(&e);
        assert_int_equal(gmca_validate(k->leaf2, &o, &r, &e), GMCA_ERR_LIMIT);
        for (int i = 0; i < GMCA_VFY_DIR_MAX; i++) {
                snprintf(path, sizeof(path), "%s/extra%02d.pem", dir, i);
                assert_int_equal(unlink(path), 0);
        }
        /* A directory that is not there. */
        o.chain_dir = "/nonexistent/gmca-chain";
        gmca_error_clear(&e);
        assert_int_equal(gmca_validate(k->leaf2, &o, &r, &e), GMCA_ERR_NOTFOUND);
        const char *names[] = {"sub.pem", "deep.der", "README.txt", ".hidden.pem"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(rmdir(dir), 0);
}

/* ---- OCSP against a one-shot responder ---------------------------------- */

enum signer { BY_CA, BY_DELEGATE, BY_NO_EKU, BY_OTHER_CA, BY_ROOT_DELEGATE };
enum nonce { ECHO, WRONG, NONE };

struct ocsp_case {
        const char *name;
        enum signer signer;
        enum nonce nonce;
        int status;         /* V_OCSP_CERTSTATUS_* */
        long this_off;      /* thisUpdate, seconds from T0 */
        long next_off;      /* nextUpdate, seconds from T0; 0: absent */
        long at;            /* validation time, seconds from T0; 0: now */
        int nonce_optional; /* opts.ocsp_nonce_optional */
        enum gmca_vfy_revocation rev;
        enum gmca_vfy_reason want;
};

/* Sign bs as the case says, with the SM2 ID (OpenSSL's OCSP signer takes it through the ctx). */
static int ocsp_sign(struct pki *k, OCSP_BASICRESP *bs, enum signer who)
{
        X509 *certs[] = {k->sub, k->rsp, k->rsp_noeku, k->rsp_other, k->rsp_root};
        EVP_PKEY *keys[] = {k->sk, k->rsp_k, k->rsp_noeku_k, k->rsp_other_k, k->rsp_root_k};
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        int ok;

        ok = mctx != NULL && EVP_DigestSignInit(mctx, &pctx, EVP_sm3(), NULL, keys[who]) == 1 &&
             EVP_PKEY_CTX_set1_id(pctx, "1234567812345678", 16) == 1 &&
             OCSP_basic_sign_ctx(bs, certs[who], mctx, NULL, who == BY_CA ? OCSP_NOCERTS : 0) == 1;
        EVP_MD_CTX_free(mctx);
        return ok ? 0 : -1;
}

/* Child: answer one HTTP POST on fd with the response the case asks for, then exit. */
static void ocsp_serve(struct pki *k, int lfd, const struct ocsp_case *c)
{
        static uint8_t req[70000];
        size_t got = 0, hdr = 0, clen = 0;
        const uint8_t *p;
        OCSP_REQUEST *oreq;
        OCSP_BASICRESP *bs;
        OCSP_RESPONSE *resp;
        ASN1_GENERALIZEDTIME *tu, *nu = NULL, *rt = NULL;
        uint8_t *der = NULL;
        char head[160];
        int fd, len;
        ssize_t n;

        alarm(20);
        if ((fd = accept(lfd, NULL, NULL)) < 0)
                _exit(1);
        while (got < sizeof(req) && (n = read(fd, req + got, sizeof(req) - got)) > 0) {
                got += (size_t)n;
                if (hdr == 0) {
                        for (size_t i = 0; i + 3 < got; i++)
                                if (memcmp(req + i, "\r\n\r\n", 4) == 0) {
                                        const char *cl;

                                        hdr = i + 4;
                                        req[i] = '\0';
                                        if ((cl = strstr((char *)req, "Content-Length:")) == NULL)
                                                _exit(2);
                                        clen = strtoul(cl + 15, NULL, 10);
                                        break;
                                }
                }
                if (hdr != 0 && got >= hdr + clen)
                        break;
        }
        p = req + hdr;
        if (hdr == 0 || (oreq = d2i_OCSP_REQUEST(NULL, &p, (long)clen)) == NULL)
                _exit(3);
        bs = OCSP_BASICRESP_new();
        tu = ASN1_GENERALIZEDTIME_set(NULL, T0 + c->this_off);
        if (c->next_off != 0)
                nu = ASN1_GENERALIZEDTIME_set(NULL, T0 + c->next_off);
        if (c->status == V_OCSP_CERTSTATUS_REVOKED)
                rt = ASN1_GENERALIZEDTIME_set(NULL, T0 - 60);
        if (OCSP_basic_add1_status(bs, OCSP_onereq_get0_id(OCSP_request_onereq_get0(oreq, 0)),
                                   c->status, OCSP_REVOKED_STATUS_KEYCOMPROMISE, rt, tu,
                                   nu) == NULL)
                _exit(4);
        if ((c->nonce == ECHO && OCSP_copy_nonce(bs, oreq) != 1) ||
            (c->nonce == WRONG && OCSP_basic_add1_nonce(bs, NULL, 16) != 1))
                _exit(5);
        if (ocsp_sign(k, bs, c->signer) != 0)
                _exit(6);
        resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
        if (resp == NULL || (len = i2d_OCSP_RESPONSE(resp, &der)) <= 0)
                _exit(7);
        snprintf(head, sizeof(head),
                 "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                 "Content-Length: %d\r\n\r\n",
                 len);
        if (write(fd, head, strlen(head)) < 0 || write(fd, der, (size_t)len) != len)
                _exit(8);
        close(fd);
        _exit(0);
}

static void test_ocsp(void **state)
{
        struct pki *k = *state;
        static const struct ocsp_case cases[] = {
            {"good, signed by the CA", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_OK},
            {"good, delegated responder", BY_DELEGATE, ECHO, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_OK},
            {"revoked", BY_DELEGATE, ECHO, V_OCSP_CERTSTATUS_REVOKED, -60, DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_REVOKED},
            {"revoked after the validation time", BY_DELEGATE, ECHO, V_OCSP_CERTSTATUS_REVOKED, -60,
             DAY, -3600, 0, GMCA_VFY_REV_OCSP, GMCA_VFY_OK},
            {"unknown", BY_CA, ECHO, V_OCSP_CERTSTATUS_UNKNOWN, -60, DAY, 0, 0, GMCA_VFY_REV_OCSP,
             GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"wrong nonce", BY_DELEGATE, WRONG, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_OCSP_INVALID},
            {"wrong nonce, nonce optional", BY_DELEGATE, WRONG, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0,
             1, GMCA_VFY_REV_OCSP, GMCA_VFY_OCSP_INVALID},
            {"wrong nonce fails soft-fail too", BY_DELEGATE, WRONG, V_OCSP_CERTSTATUS_GOOD, -60,
             DAY, 0, 0, GMCA_VFY_REV_SOFT_FAIL, GMCA_VFY_OCSP_INVALID},
            {"no nonce", BY_DELEGATE, NONE, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_OCSP_INVALID},
            {"no nonce, nonce optional", BY_DELEGATE, NONE, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0, 1,
             GMCA_VFY_REV_OCSP, GMCA_VFY_OK},
            {"nextUpdate passed", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD, -2 * DAY, -DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"nextUpdate passed, soft-fail", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD, -2 * DAY, -DAY, 0,
             0, GMCA_VFY_REV_SOFT_FAIL, GMCA_VFY_OK},
            {"no nextUpdate, thisUpdate two days old", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD,
             -2 * DAY, 0, 0, 0, GMCA_VFY_REV_OCSP, GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"no nextUpdate, thisUpdate a minute old", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD, -60, 0,
             0, 0, GMCA_VFY_REV_OCSP, GMCA_VFY_OK},
            {"thisUpdate in the future", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD, DAY, 2 * DAY, 0, 0,
             GMCA_VFY_REV_OCSP, GMCA_VFY_OCSP_INVALID},
            {"current at a past validation time", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD, -12 * 3600,
             -6 * 3600, -9 * 3600, 0, GMCA_VFY_REV_OCSP, GMCA_VFY_OK},
            {"fresh now, stale at a later validation time", BY_CA, ECHO, V_OCSP_CERTSTATUS_GOOD,
             -60, DAY, 2 * DAY, 0, GMCA_VFY_REV_OCSP, GMCA_VFY_REVOCATION_UNAVAILABLE},
            {"responder without OCSPSigning", BY_NO_EKU, ECHO, V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0,
             0, GMCA_VFY_REV_OCSP, GMCA_VFY_OCSP_INVALID},
            {"responder of another CA of the same name", BY_OTHER_CA, ECHO, V_OCSP_CERTSTATUS_GOOD,
             -60, DAY, 0, 0, GMCA_VFY_REV_OCSP, GMCA_VFY_OCSP_INVALID},
            {"responder of the root, not the issuer", BY_ROOT_DELEGATE, ECHO,
             V_OCSP_CERTSTATUS_GOOD, -60, DAY, 0, 0, GMCA_VFY_REV_PREFER_OCSP,
             GMCA_VFY_OCSP_INVALID},
        };

        unsetenv("http_proxy");
        unsetenv("HTTP_PROXY");
        unsetenv("all_proxy");
        unsetenv("ALL_PROXY");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct sockaddr_in sa;
                socklen_t sl = sizeof(sa);
                struct gmca_vfy_opts o;
                struct gmca_vfy_result r;
                struct gmca_error e;
                X509 *anchors[] = {k->sub};
                char url[64];
                int lfd, st, rc;
                pid_t pid;

                memset(&sa, 0, sizeof(sa));
                sa.sin_family = AF_INET;
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                assert_true((lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
                assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                assert_int_equal(listen(lfd, 1), 0);
                assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
                snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ntohs(sa.sin_port));
                assert_true((pid = fork()) >= 0);
                if (pid == 0)
                        ocsp_serve(k, lfd, &cases[i]);
                close(lfd);
                memset(&o, 0, sizeof(o));
                gmca_error_clear(&e);
                o.anchors = anchors;
                o.nanchors = 1;
                o.revocation = cases[i].rev;
                o.network = 1;
                o.timeout = 10;
                o.ocsp_url = url;
                o.ocsp_nonce_optional = cases[i].nonce_optional;
                o.at = cases[i].at != 0 ? T0 + cases[i].at : 0;
                rc = gmca_validate(k->sign, &o, &r, &e);
                assert_int_equal(waitpid(pid, &st, 0), pid);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        fail_msg("%s: responder failed (status %d)", cases[i].name, st);
                if ((int)r.reason != (int)cases[i].want || (rc == 0) != (cases[i].want == 0))
                        fail_msg("%s: reason %s (%s), want %s", cases[i].name,
                                 gmca_vfy_reason_name(r.reason), r.msg,
                                 gmca_vfy_reason_name(cases[i].want));
                if (cases[i].want == GMCA_VFY_OK)
                        assert_string_equal(r.revocation, cases[i].rev == GMCA_VFY_REV_SOFT_FAIL &&
                                                                  cases[i].next_off < 0
                                                              ? "unavailable"
                                                              : "ocsp");
        }
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
            cmocka_unit_test(test_table),      cmocka_unit_test(test_not_ca_anchor),
            cmocka_unit_test(test_path_len),   cmocka_unit_test(test_crl_freshness_follows_at),
            cmocka_unit_test(test_chain_dir),  cmocka_unit_test(test_ocsp),
            cmocka_unit_test(test_ocsp_parse),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
