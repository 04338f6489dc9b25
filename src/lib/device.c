/*
 * device: gmca's side of the crypto device (device.h). Opens the built-in
 * software device or a vendor SDF library (dlopen, RTLD_NOW | RTLD_LOCAL,
 * every standard function looked up before anything is called), keeps one
 * session and the set of indexes it unlocked, converts between the SDF
 * structures and OpenSSL's, and turns SDR_* codes into gmca errors whose
 * cause names the SDF function, the index and the SDR code.
 */
#include "device.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "sdf.h"

_Static_assert(sizeof(void *) == sizeof(int (*)(void)),
               "dlsym results are stored into function pointers");

/* SM3 input per SDF_HashUpdate, and random bytes per SDF_GenerateRandom. */
#define CHUNK_MAX (1u << 20)
#define CHUNK_MIN 1024u

struct gmca_device {
        void *dl; /* NULL for the built-in device */
        struct gmca_sdf_api api;
        void *hdev;
        void *hsess;
        size_t chunk;
        char desc[96];
        unsigned char unlocked[GMCA_DEVICE_MAX_INDEX + 1];
};

/* Every name gmca looks up, with where it goes; the SDFX_ ones may be missing. */
static const struct {
        const char *name;
        size_t off;
        int required;
} symbols[] = {
    {"SDF_OpenDevice", offsetof(struct gmca_sdf_api, OpenDevice), 1},
    {"SDF_CloseDevice", offsetof(struct gmca_sdf_api, CloseDevice), 1},
    {"SDF_OpenSession", offsetof(struct gmca_sdf_api, OpenSession), 1},
    {"SDF_CloseSession", offsetof(struct gmca_sdf_api, CloseSession), 1},
    {"SDF_GetDeviceInfo", offsetof(struct gmca_sdf_api, GetDeviceInfo), 1},
    {"SDF_GenerateRandom", offsetof(struct gmca_sdf_api, GenerateRandom), 1},
    {"SDF_GetPrivateKeyAccessRight", offsetof(struct gmca_sdf_api, GetPrivateKeyAccessRight), 1},
    {"SDF_ReleasePrivateKeyAccessRight",
     offsetof(struct gmca_sdf_api, ReleasePrivateKeyAccessRight), 1},
    {"SDF_ExportSignPublicKey_ECC", offsetof(struct gmca_sdf_api, ExportSignPublicKey_ECC), 1},
    {"SDF_InternalSign_ECC", offsetof(struct gmca_sdf_api, InternalSign_ECC), 1},
    {"SDF_ExternalVerify_ECC", offsetof(struct gmca_sdf_api, ExternalVerify_ECC), 1},
    {"SDF_HashInit", offsetof(struct gmca_sdf_api, HashInit), 1},
    {"SDF_HashUpdate", offsetof(struct gmca_sdf_api, HashUpdate), 1},
    {"SDF_HashFinal", offsetof(struct gmca_sdf_api, HashFinal), 1},
    {"SDFX_Configure", offsetof(struct gmca_sdf_api, X_Configure), 0},
    {"SDFX_GenerateKeyPair_ECC", offsetof(struct gmca_sdf_api, X_GenerateKeyPair_ECC), 0},
    {"SDFX_ChangeKeyPIN", offsetof(struct gmca_sdf_api, X_ChangeKeyPIN), 0},
    {"SDFX_DestroyKeyPair_ECC", offsetof(struct gmca_sdf_api, X_DestroyKeyPair_ECC), 0},
    {"SDFX_ExportKeyBlob", offsetof(struct gmca_sdf_api, X_ExportKeyBlob), 0},
    {"SDFX_ImportKeyBlob", offsetof(struct gmca_sdf_api, X_ImportKeyBlob), 0},
};

/* GM/T 0018 §A error codes: name, gmca code, what it means to an operator. */
static const struct {
        int sdr;
        const char *name;
        int code;
        const char *what;
} sdr_codes[] = {
    {SDR_UNKNOWERR, "SDR_UNKNOWERR", GMCA_ERR_CRYPTO, "unknown device error"},
    {SDR_NOTSUPPORT, "SDR_NOTSUPPORT", GMCA_ERR_STATE, "not supported by the device"},
    {SDR_COMMFAIL, "SDR_COMMFAIL", GMCA_ERR_IO, "communication with the device failed"},
    {SDR_HARDFAIL, "SDR_HARDFAIL", GMCA_ERR_IO, "device hardware failure"},
    {SDR_OPENDEVICE, "SDR_OPENDEVICE", GMCA_ERR_IO,
     "cannot open the device (for the software device: its key store directory)"},
    {SDR_OPENSESSION, "SDR_OPENSESSION", GMCA_ERR_IO, "cannot open a session"},
    {SDR_PARDENY, "SDR_PARDENY", GMCA_ERR_AUTH, "no access right to the private key"},
    {SDR_KEYNOTEXIST, "SDR_KEYNOTEXIST", GMCA_ERR_NOTFOUND, "no key at this index"},
    {SDR_ALGNOTSUPPORT, "SDR_ALGNOTSUPPORT", GMCA_ERR_STATE, "algorithm not supported"},
    {SDR_ALGMODNOTSUPPORT, "SDR_ALGMODNOTSUPPORT", GMCA_ERR_STATE, "algorithm mode not supported"},
    {SDR_PKOPERR, "SDR_PKOPERR", GMCA_ERR_CRYPTO, "public-key operation failed"},
    {SDR_SKOPERR, "SDR_SKOPERR", GMCA_ERR_CRYPTO, "private-key operation failed"},
    {SDR_SIGNERR, "SDR_SIGNERR", GMCA_ERR_CRYPTO, "signing failed"},
    {SDR_VERIFYERR, "SDR_VERIFYERR", GMCA_ERR_VERIFY, "signature does not verify"},
    {SDR_SYMOPERR, "SDR_SYMOPERR", GMCA_ERR_CRYPTO, "symmetric operation failed"},
    {SDR_STEPERR, "SDR_STEPERR", GMCA_ERR_INTERNAL, "calls out of order"},
    {SDR_FILESIZEERR, "SDR_FILESIZEERR", GMCA_ERR_IO, "file size error"},
    {SDR_FILENOEXIST, "SDR_FILENOEXIST", GMCA_ERR_NOTFOUND, "no such file"},
    {SDR_FILEOFSERR, "SDR_FILEOFSERR", GMCA_ERR_IO, "file read failed"},
    {SDR_KEYTYPEERR, "SDR_KEYTYPEERR", GMCA_ERR_INVALID, "wrong key type"},
    {SDR_KEYERR, "SDR_KEYERR", GMCA_ERR_TAMPER, "key damaged or tampered with"},
    {SDR_ENCDATAERR, "SDR_ENCDATAERR", GMCA_ERR_INVALID, "bad encrypted data"},
    {SDR_RANDERR, "SDR_RANDERR", GMCA_ERR_CRYPTO, "random number generator failed"},
    {SDR_PRKRERR, "SDR_PRKRERR", GMCA_ERR_AUTH, "private-key access right error"},
    {SDR_MACERR, "SDR_MACERR", GMCA_ERR_VERIFY, "MAC does not verify"},
    {SDR_FILEEXSITS, "SDR_FILEEXSITS", GMCA_ERR_EXISTS, "the index is taken"},
    {SDR_FILEWERR, "SDR_FILEWERR", GMCA_ERR_IO, "file write failed"},
    {SDR_NOBUFFER, "SDR_NOBUFFER", GMCA_ERR_NOMEM, "out of buffer space"},
    {SDR_INARGERR, "SDR_INARGERR", GMCA_ERR_INVALID, "invalid argument"},
    {SDR_OUTARGERR, "SDR_OUTARGERR", GMCA_ERR_INTERNAL, "invalid output argument"},
    {SDR_USERIDERR, "SDR_USERIDERR", GMCA_ERR_INVALID, "user ID error"},
};

/*
 * Record a failed SDF call: "device: SDF_X(index N): SDR_NAME: what".
 * why, when given, replaces the table's meaning with what it means for
 * this call. index 0: no index in the message. Returns the gmca code.
 */
static int sdr_fail(struct gmca_error *e, int sdr, const char *fn, unsigned index, const char *why)
{
        char where[48] = "";

        if (index != 0)
                snprintf(where, sizeof(where), "(index %u)", index);
        for (size_t i = 0; i < sizeof(sdr_codes) / sizeof(sdr_codes[0]); i++) {
                if (sdr_codes[i].sdr == sdr)
                        return gmca_error_set(e, sdr_codes[i].code, "device: %s%s: %s: %s", fn,
                                              where, sdr_codes[i].name,
                                              why != NULL ? why : sdr_codes[i].what);
        }
        return gmca_error_set(e, GMCA_ERR_CRYPTO, "device: %s%s: vendor error 0x%08X", fn, where,
                              (unsigned)sdr);
}

static int check_index(unsigned index, const char *what, struct gmca_error *e)
{
        if (index < 1 || index > GMCA_DEVICE_MAX_INDEX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "device: %s: key index %u not in 1..%d",
                                      what, index, GMCA_DEVICE_MAX_INDEX);
        return 0;
}

static int check_pin(const uint8_t *pin, size_t len, const char *what, struct gmca_error *e)
{
        if (pin == NULL || len == 0 || len > GMCA_DEVICE_PIN_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "device: %s: key password must be 1..%d bytes", what,
                                      GMCA_DEVICE_PIN_MAX);
        return 0;
}

/* SDF takes passwords as unsigned char * (not const); gmca's are. */
static unsigned char *pin_arg(const uint8_t *pin)
{
        return (unsigned char *)(uintptr_t)pin;
}

static void *lookup(const struct gmca_sdf_api *api, size_t off)
{
        void *p;

        memcpy(&p, (const char *)api + off, sizeof(p));
        return p;
}

static int load_library(struct gmca_device *d, const char *path, struct gmca_error *e)
{
        dlerror();
        if ((d->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
                const char *why = dlerror();

                return gmca_error_set(e, GMCA_ERR_IO, "device: cannot load SDF library %s: %s",
                                      path, why != NULL ? why : "dlopen failed");
        }
        for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
                void *p = dlsym(d->dl, symbols[i].name);

                if (p == NULL && symbols[i].required)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "device: SDF library %s lacks %s (GM/T 0018)", path,
                                              symbols[i].name);
                memcpy((char *)&d->api + symbols[i].off, &p, sizeof(p));
        }
        return 0;
}

/* "issuer device serial" from fixed-width fields that need not end in NUL. */
static void describe(struct gmca_device *d, const DEVICEINFO *info)
{
        const struct {
                const unsigned char *p;
                size_t n;
        } f[] = {
            {info->IssuerName, sizeof(info->IssuerName)},
            {info->DeviceName, sizeof(info->DeviceName)},
            {info->DeviceSerial, sizeof(info->DeviceSerial)},
        };
        size_t o = 0;

        for (size_t i = 0; i < 3; i++) {
                size_t n = f[i].n;

                while (n > 0 && (f[i].p[n - 1] == '\0' || f[i].p[n - 1] == ' '))
                        n--;
                if (i > 0 && o + 1 < sizeof(d->desc))
                        d->desc[o++] = ' ';
                for (size_t j = 0; j < n && o + 1 < sizeof(d->desc); j++) {
                        unsigned char c = f[i].p[j];

                        d->desc[o++] = c >= 0x21 && c < 0x7f ? (char)c : '?';
                }
        }
        d->desc[o] = '\0';
}

struct gmca_device *gmca_device_open(const struct gmca_device_conf *conf, struct gmca_error *e)
{
        struct gmca_device *d = NULL;
        DEVICEINFO info;
        int rc;

        if (conf == NULL) {
                gmca_error_set(e, GMCA_ERR_INVALID, "device: no configuration");
                return NULL;
        }
        if ((d = calloc(1, sizeof(*d))) == NULL) {
                gmca_error_set(e, GMCA_ERR_NOMEM, "device: out of memory");
                return NULL;
        }
        if (conf->library == NULL || conf->library[0] == '\0')
                d->api = *gmca_softsdf_api();
        else if (load_library(d, conf->library, e) != 0)
                goto fail;
        if (d->api.X_Configure != NULL && conf->config != NULL &&
            (rc = d->api.X_Configure(conf->config)) != SDR_OK) {
                sdr_fail(e, rc, "SDFX_Configure", 0, NULL);
                goto fail;
        }
        if ((rc = d->api.OpenDevice(&d->hdev)) != SDR_OK) {
                d->hdev = NULL;
                sdr_fail(e, rc, "SDF_OpenDevice", 0, NULL);
                goto fail;
        }
        if ((rc = d->api.OpenSession(d->hdev, &d->hsess)) != SDR_OK) {
                d->hsess = NULL;
                sdr_fail(e, rc, "SDF_OpenSession", 0, NULL);
                goto fail;
        }
        memset(&info, 0, sizeof(info));
        if ((rc = d->api.GetDeviceInfo(d->hsess, &info)) != SDR_OK) {
                sdr_fail(e, rc, "SDF_GetDeviceInfo", 0, NULL);
                goto fail;
        }
        describe(d, &info);
        d->chunk = CHUNK_MAX;
        if (info.BufferSize >= CHUNK_MIN && info.BufferSize < CHUNK_MAX)
                d->chunk = info.BufferSize;
        return d;
fail:
        gmca_device_close(d);
        return NULL;
}

void gmca_device_close(struct gmca_device *d)
{
        if (d == NULL)
                return;
        if (d->hsess != NULL) {
                for (unsigned i = 1; i <= GMCA_DEVICE_MAX_INDEX; i++) {
                        if (d->unlocked[i])
                                (void)d->api.ReleasePrivateKeyAccessRight(d->hsess, i);
                }
                (void)d->api.CloseSession(d->hsess);
        }
        if (d->hdev != NULL)
                (void)d->api.CloseDevice(d->hdev);
        if (d->dl != NULL)
                dlclose(d->dl);
        OPENSSL_cleanse(d, sizeof(*d));
        free(d);
}

const char *gmca_device_description(const struct gmca_device *d)
{
        return d != NULL ? d->desc : "";
}

int gmca_device_has(const struct gmca_device *d, const char *sdfx_function)
{
        if (d == NULL || sdfx_function == NULL)
                return 0;
        for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
                if (strcmp(symbols[i].name, sdfx_function) == 0)
                        return lookup(&d->api, symbols[i].off) != NULL;
        }
        return 0;
}

static int need(const struct gmca_device *d, const void *fn, const char *name, struct gmca_error *e)
{
        if (fn == NULL)
                return gmca_error_set(e, GMCA_ERR_STATE,
                                      "device: the SDF library has no %s: use the vendor's key "
                                      "management tool",
                                      name);
        return 0;
}

int gmca_device_generate_key(struct gmca_device *d, unsigned index, const uint8_t *pin,
                             size_t pinlen, struct gmca_error *e)
{
        const char *fn = "SDFX_GenerateKeyPair_ECC";
        int rc;

        if ((rc = check_index(index, fn, e)) != 0 || (rc = check_pin(pin, pinlen, fn, e)) != 0 ||
            (rc = need(d, (const void *)d->api.X_GenerateKeyPair_ECC, fn, e)) != 0)
                return rc;
        if ((rc = d->api.X_GenerateKeyPair_ECC(d->hsess, index, pin_arg(pin), (unsigned)pinlen)) !=
            SDR_OK)
                return sdr_fail(e, rc, fn, index, NULL);
        return 0;
}

/* SDF_ExportSignPublicKey_ECC into *out (caller frees); a gmca code. */
static int export_pub(struct gmca_device *d, unsigned index, EVP_PKEY **out, struct gmca_error *e)
{
        const char *fn = "SDF_ExportSignPublicKey_ECC";
        ECCrefPublicKey ref;
        int rc;

        if ((rc = check_index(index, fn, e)) != 0)
                return rc;
        memset(&ref, 0, sizeof(ref));
        if ((rc = d->api.ExportSignPublicKey_ECC(d->hsess, index, &ref)) != SDR_OK)
                return sdr_fail(e, rc, fn, index, NULL);
        if ((*out = gmca_sdf_pkey_from_ecc(&ref, NULL)) == NULL) {
                gmca_ossl_clear();
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "device: %s(index %u): not a 256-bit right-aligned point "
                                      "on the SM2 curve",
                                      fn, index);
        }
        return 0;
}

EVP_PKEY *gmca_device_public_key(struct gmca_device *d, unsigned index, struct gmca_error *e)
{
        EVP_PKEY *key = NULL;

        return export_pub(d, index, &key, e) == 0 ? key : NULL;
}

int gmca_device_unlock(struct gmca_device *d, unsigned index, const uint8_t *pin, size_t pinlen,
                       struct gmca_error *e)
{
        const char *fn = "SDF_GetPrivateKeyAccessRight";
        int rc;

        if ((rc = check_index(index, fn, e)) != 0 || (rc = check_pin(pin, pinlen, fn, e)) != 0)
                return rc;
        if ((rc = d->api.GetPrivateKeyAccessRight(d->hsess, index, pin_arg(pin),
                                                  (unsigned)pinlen)) != SDR_OK)
                return sdr_fail(e, rc, fn, index, rc == SDR_PARDENY ? "wrong key password" : NULL);
        d->unlocked[index] = 1;
        return 0;
}

void gmca_device_lock(struct gmca_device *d, unsigned index)
{
        if (d == NULL || index < 1 || index > GMCA_DEVICE_MAX_INDEX)
                return;
        (void)d->api.ReleasePrivateKeyAccessRight(d->hsess, index);
        d->unlocked[index] = 0;
}

int gmca_device_sign_digest(struct gmca_device *d, unsigned index, const uint8_t dgst[32],
                            uint8_t sig[GMCA_SM2_SIG_MAX], size_t *siglen, struct gmca_error *e)
{
        const char *fn = "SDF_InternalSign_ECC";
        ECCSignature s;
        uint8_t e32[32];
        size_t n = 0;
        int rc;

        if ((rc = check_index(index, fn, e)) != 0)
                return rc;
        memcpy(e32, dgst, sizeof(e32));
        memset(&s, 0, sizeof(s));
        if ((rc = d->api.InternalSign_ECC(d->hsess, index, e32, sizeof(e32), &s)) != SDR_OK)
                return sdr_fail(e, rc, fn, index,
                                rc == SDR_PARDENY
                                    ? "key not unlocked (SDF_GetPrivateKeyAccessRight first)"
                                    : NULL);
        if ((rc = gmca_sdf_sig_to_der(&s, sig, &n, e)) != 0)
                return gmca_error_set(e, rc, "device: %s(index %u): unusable signature", fn, index);
        *siglen = n;
        return 0;
}

int gmca_device_verify_digest(struct gmca_device *d, EVP_PKEY *pub, const uint8_t dgst[32],
                              const uint8_t *sig, size_t siglen, struct gmca_error *e)
{
        const char *fn = "SDF_ExternalVerify_ECC";
        ECCrefPublicKey ref;
        ECCSignature s;
        uint8_t e32[32];
        int rc;

        if ((rc = gmca_sdf_ecc_from_pkey(pub, &ref, e)) != 0)
                return rc;
        /* A signature that is not DER SM2Signature does not verify. */
        if (gmca_sdf_sig_from_der(sig, siglen, &s, NULL) != 0)
                return gmca_error_set(e, GMCA_ERR_VERIFY,
                                      "device: signature is not one DER SM2Signature");
        memcpy(e32, dgst, sizeof(e32));
        if ((rc = d->api.ExternalVerify_ECC(d->hsess, SGD_SM2_1, &ref, e32, sizeof(e32), &s)) !=
            SDR_OK)
                return sdr_fail(e, rc, fn, 0, NULL);
        return 0;
}

int gmca_device_random(struct gmca_device *d, uint8_t *buf, size_t len, struct gmca_error *e)
{
        while (len > 0) {
                unsigned n = len < d->chunk ? (unsigned)len : (unsigned)d->chunk;
                int rc;

                if ((rc = d->api.GenerateRandom(d->hsess, n, buf)) != SDR_OK)
                        return sdr_fail(e, rc, "SDF_GenerateRandom", 0, NULL);
                buf += n;
                len -= n;
        }
        return 0;
}

int gmca_device_sm3(struct gmca_device *d, EVP_PKEY *pub, const char *id, const uint8_t *msg,
                    size_t len, uint8_t out[32], struct gmca_error *e)
{
        ECCrefPublicKey ref;
        unsigned char idbuf[GMCA_SM2_ID_MAX];
        uint8_t h[64];
        unsigned hlen = 0;
        size_t idlen = 0;
        int rc;

        if (pub != NULL) {
                id = id != NULL ? id : GMCA_SM2_DEFAULT_ID;
                idlen = strlen(id);
                if (idlen == 0 || idlen > GMCA_SM2_ID_MAX)
                        return gmca_error_set(e, GMCA_ERR_INVALID,
                                              "device: SM2 ID must be 1..%d bytes",
                                              GMCA_SM2_ID_MAX);
                memcpy(idbuf, id, idlen);
                if ((rc = gmca_sdf_ecc_from_pkey(pub, &ref, e)) != 0)
                        return rc;
        }
        if ((rc = d->api.HashInit(d->hsess, SGD_SM3, pub != NULL ? &ref : NULL,
                                  pub != NULL ? idbuf : NULL, (unsigned)idlen)) != SDR_OK)
                return sdr_fail(e, rc, "SDF_HashInit", 0, NULL);
        while (len > 0) {
                unsigned n = len < d->chunk ? (unsigned)len : (unsigned)d->chunk;

                /* SDF takes data as unsigned char *, gmca's is const. */
                if ((rc = d->api.HashUpdate(d->hsess, (unsigned char *)(uintptr_t)msg, n)) !=
                    SDR_OK)
                        return sdr_fail(e, rc, "SDF_HashUpdate", 0, NULL);
                msg += n;
                len -= n;
        }
        /* h is larger than SM3's 32 bytes in case a device writes more. */
        if ((rc = d->api.HashFinal(d->hsess, h, &hlen)) != SDR_OK)
                return sdr_fail(e, rc, "SDF_HashFinal", 0, NULL);
        if (hlen != 32)
                return gmca_error_set(e, GMCA_ERR_CRYPTO,
                                      "device: SDF_HashFinal: %u bytes, SM3 has 32", hlen);
        memcpy(out, h, 32);
        return 0;
}

int gmca_device_change_pin(struct gmca_device *d, unsigned index, const uint8_t *oldpin,
                           size_t oldlen, const uint8_t *newpin, size_t newlen,
                           struct gmca_error *e)
{
        const char *fn = "SDFX_ChangeKeyPIN";
        int rc;

        if ((rc = check_index(index, fn, e)) != 0 || (rc = check_pin(oldpin, oldlen, fn, e)) != 0 ||
            (rc = check_pin(newpin, newlen, fn, e)) != 0 ||
            (rc = need(d, (const void *)d->api.X_ChangeKeyPIN, fn, e)) != 0)
                return rc;
        if ((rc = d->api.X_ChangeKeyPIN(d->hsess, index, pin_arg(oldpin), (unsigned)oldlen,
                                        pin_arg(newpin), (unsigned)newlen)) != SDR_OK)
                return sdr_fail(e, rc, fn, index, rc == SDR_PARDENY ? "wrong key password" : NULL);
        return 0;
}

int gmca_device_destroy_key(struct gmca_device *d, unsigned index, const uint8_t *pin,
                            size_t pinlen, struct gmca_error *e)
{
        const char *fn = "SDFX_DestroyKeyPair_ECC";
        int rc;

        if ((rc = check_index(index, fn, e)) != 0 || (rc = check_pin(pin, pinlen, fn, e)) != 0 ||
            (rc = need(d, (const void *)d->api.X_DestroyKeyPair_ECC, fn, e)) != 0)
                return rc;
        if ((rc = d->api.X_DestroyKeyPair_ECC(d->hsess, index, pin_arg(pin), (unsigned)pinlen)) !=
            SDR_OK)
                return sdr_fail(e, rc, fn, index, rc == SDR_PARDENY ? "wrong key password" : NULL);
        d->unlocked[index] = 0;
        return 0;
}

#define BLOB_MAX (64u * 1024u)

int gmca_device_export_blob(struct gmca_device *d, unsigned index, uint8_t **blob, size_t *len,
                            struct gmca_error *e)
{
        const char *fn = "SDFX_ExportKeyBlob";
        unsigned n = 0, got;
        uint8_t *buf;
        int rc;

        if ((rc = check_index(index, fn, e)) != 0 ||
            (rc = need(d, (const void *)d->api.X_ExportKeyBlob, fn, e)) != 0)
                return rc;
        if ((rc = d->api.X_ExportKeyBlob(d->hsess, index, NULL, &n)) != SDR_OK)
                return sdr_fail(e, rc, fn, index, NULL);
        if (n == 0 || n > BLOB_MAX)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "device: %s(index %u): %u bytes", fn,
                                      index, n);
        if ((buf = malloc(n)) == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "device: out of memory");
        got = n;
        if ((rc = d->api.X_ExportKeyBlob(d->hsess, index, buf, &got)) != SDR_OK || got > n) {
                free(buf);
                if (rc == SDR_OK)
                        return gmca_error_set(e, GMCA_ERR_INTERNAL,
                                              "device: %s(index %u): blob grew", fn, index);
                return sdr_fail(e, rc, fn, index, NULL);
        }
        *blob = buf;
        *len = got;
        return 0;
}

int gmca_device_import_blob(struct gmca_device *d, unsigned index, const uint8_t *blob, size_t len,
                            struct gmca_error *e)
{
        const char *fn = "SDFX_ImportKeyBlob";
        int rc;

        if ((rc = check_index(index, fn, e)) != 0 ||
            (rc = need(d, (const void *)d->api.X_ImportKeyBlob, fn, e)) != 0)
                return rc;
        if (blob == NULL || len == 0 || len > BLOB_MAX)
                return gmca_error_set(e, GMCA_ERR_INVALID, "device: %s: blob of %zu bytes", fn,
                                      len);
        if ((rc = d->api.X_ImportKeyBlob(d->hsess, index, blob, (unsigned)len)) != SDR_OK)
                return sdr_fail(e, rc, fn, index,
                                rc == SDR_INARGERR
                                    ? "not a key blob for this index (blobs return to the "
                                      "index they came from)"
                                    : NULL);
        return 0;
}

/* ---- signer ---- */

static int device_sign(void *arg, const uint8_t *tbs, size_t len, uint8_t sig[GMCA_SM2_SIG_MAX],
                       size_t *siglen, struct gmca_error *e)
{
        struct gmca_device_signer *s = arg;
        uint8_t dgst[GMCA_SM3_LEN];
        EVP_MD_CTX *c;

        /* e = SM3(Z || TBS) here; the device signs e (GM/T 0009 §5.3). */
        if ((c = gmca_sm3_new()) == NULL || gmca_sm3_update(c, s->z, sizeof(s->z)) != 0 ||
            gmca_sm3_update(c, tbs, len) != 0) {
                EVP_MD_CTX_free(c);
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "device signer: SM3 failed");
        }
        if (gmca_sm3_final(c, dgst) != 0)
                return gmca_error_ossl(e, GMCA_ERR_CRYPTO, "device signer: SM3 failed");
        return gmca_device_sign_digest(s->dev, s->index, dgst, sig, siglen, e);
}

int gmca_device_signer_init(struct gmca_device_signer *s, struct gmca_device *d, unsigned index,
                            EVP_PKEY *pub, const char *id, struct gmca_error *e)
{
        EVP_PKEY *have = NULL;
        uint8_t z[GMCA_SM3_LEN];
        int rc;

        if ((rc = check_index(index, "signer", e)) != 0 || (rc = gmca_sm2_z(pub, id, z, e)) != 0)
                return rc;
        /* A wrong pub would give signatures nothing verifies: catch it now. */
        if ((rc = export_pub(d, index, &have, e)) != 0)
                return rc;
        rc = EVP_PKEY_eq(have, pub) == 1 ? 0
                                         : gmca_error_set(e, GMCA_ERR_INVALID,
                                                          "device signer: the public key given "
                                                          "is not the key at index %u",
                                                          index);
        EVP_PKEY_free(have);
        gmca_ossl_clear();
        if (rc != 0)
                return rc;
        memset(s, 0, sizeof(*s));
        s->base.sign = device_sign;
        s->base.arg = s;
        s->dev = d;
        s->index = index;
        memcpy(s->z, z, sizeof(z));
        return 0;
}
