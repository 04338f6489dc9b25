/*
 * relying_party: a complete libgmca program, the one docs/libgmca.md walks
 * through. A sender signs a document (GM/T 0010 SignedData) and envelopes
 * the signed message to a recipient's encryption certificate
 * (EnvelopedData, SM4 under SM2); the recipient opens the envelope, verifies
 * the signature and validates the signer's certificate up to the root CA,
 * with revocation checked against the CRLs given (CPS §3.5.2).
 *
 *   relying_party DOCUMENT SIGNER-CERT SIGNER-KEY RECIPIENT-CERT RECIPIENT-KEY
 *                 ROOT-CA SUB-CA [CRL ...]
 *
 * Writes DOCUMENT.p7s (the SignedData) and DOCUMENT.p7e (the envelope), and
 * prints what the recipient learnt. Exit status 0 when the document came
 * through, signed by a valid certificate; 1 otherwise.
 *
 * Build: cc -o relying_party relying_party.c $(pkg-config --cflags --libs gmca)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmca/gmca.h>
#include <gmca/message.h>
#include <gmca/validate.h>

#define FILE_MAX (16u << 20) /* largest input file this example reads */

struct file {
        unsigned char *data;
        size_t len;
};

/* Read a whole file (at most FILE_MAX bytes); 0 or -1 with a message printed. */
static int read_file(const char *path, struct file *f)
{
        FILE *fp = fopen(path, "rb");
        size_t cap = 4096;

        f->data = NULL;
        f->len = 0;
        if (fp == NULL) {
                perror(path);
                return -1;
        }
        for (;;) {
                unsigned char *p = realloc(f->data, cap);

                if (p == NULL) {
                        fprintf(stderr, "%s: out of memory\n", path);
                        fclose(fp);
                        free(f->data);
                        return -1;
                }
                f->data = p;
                f->len += fread(f->data + f->len, 1, cap - f->len, fp);
                if (f->len < cap || cap >= FILE_MAX)
                        break;
                cap *= 2;
        }
        if (ferror(fp) || !feof(fp)) {
                fprintf(stderr, "%s: unreadable or over %u bytes\n", path, FILE_MAX);
                fclose(fp);
                free(f->data);
                return -1;
        }
        fclose(fp);
        return 0;
}

/* Write buf to DOCUMENT.suffix. */
static int write_output(const char *document, const char *suffix, const uint8_t *buf, size_t len)
{
        char path[4096];
        FILE *fp;

        if (snprintf(path, sizeof(path), "%s.%s", document, suffix) >= (int)sizeof(path))
                return -1;
        if ((fp = fopen(path, "wb")) == NULL) {
                perror(path);
                return -1;
        }
        if (fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
                perror(path);
                return -1;
        }
        printf("wrote %s (%zu bytes)\n", path, len);
        return 0;
}

/* Print a failed call's cause: the library's one line and the code's name. */
static int failed(const char *what, const struct gmca_status *st)
{
        fprintf(stderr, "relying_party: %s: %s (%s)\n", what, st->message, gmca_rc_name(st->code));
        return 1;
}

/*
 * The sender's side: SignedData of the document, then an EnvelopedData of
 * that SignedData to the recipient. *envelope: free with gmca_buffer_free.
 */
static int send_document(const char *document, const struct file *doc,
                         const struct gmca_credential *signer, const struct file *recipient_cert,
                         uint8_t **envelope, size_t *envelope_len)
{
        struct gmca_bytes to = {recipient_cert->data, recipient_cert->len};
        struct gmca_status st;
        uint8_t *signed_msg = NULL;
        size_t signed_len = 0;
        int rc;

        /* opts NULL: content attached, signingTime now, signer certificate carried. */
        if (gmca_message_sign(signer, NULL, doc->data, doc->len, &signed_msg, &signed_len, &st) !=
            0)
                return failed("sign", &st);
        rc = write_output(document, "p7s", signed_msg, signed_len) != 0 ||
             gmca_message_encrypt(&to, 1, signed_msg, signed_len, envelope, envelope_len, &st) != 0;
        gmca_buffer_free(signed_msg, signed_len);
        if (rc != 0)
                return st.code != 0 ? failed("envelope", &st) : 1;
        return write_output(document, "p7e", *envelope, *envelope_len) != 0;
}

/* Is the signer's certificate valid for signatures under root, now? */
static int validate_signer(const struct gmca_certificate *signer, const char *root, const char *sub,
                           char **crls, int ncrls)
{
        struct gmca_validation_result res;
        struct gmca_validator *v;
        struct gmca_status st;
        int rc = 1;

        if ((v = gmca_validator_new(&st)) == NULL)
                return failed("validator", &st);
        /* Only local inputs: no fetching from the certificates' URLs. */
        if (gmca_validator_add_anchor_file(v, root, &st) != 0 ||
            gmca_validator_add_intermediate_file(v, sub, &st) != 0 ||
            gmca_validator_set_network(v, 0, 10) != 0 ||
            gmca_validator_set_use(v, GMCA_USE_SIGNATURE) != 0 ||
            gmca_validator_set_revocation(v, ncrls > 0 ? GMCA_REVOCATION_CRL
                                                       : GMCA_REVOCATION_NONE) != 0) {
                failed("validator settings", &st);
                goto out;
        }
        for (int i = 0; i < ncrls; i++)
                if (gmca_validator_add_crl_file(v, crls[i], &st) != 0) {
                        failed(crls[i], &st);
                        goto out;
                }
        if (gmca_validate_certificate(v, signer, &res, &st) != 0) {
                /* res says why, and about which certificate of the chain. */
                fprintf(stderr, "relying_party: signer certificate not valid: %s: %s\n",
                        gmca_validation_reason_name(res.reason), res.message);
                goto out;
        }
        printf("signer certificate valid (revocation: %s); chain:\n", res.revocation);
        for (size_t i = 0; i < res.chain_length; i++)
                printf("  %s\n", res.chain[i]);
        rc = 0;
out:
        gmca_validator_free(v);
        return rc;
}

/*
 * The recipient's side: open the envelope, verify the SignedData inside,
 * validate its signer. The document must come back unchanged.
 */
static int receive_document(const uint8_t *envelope, size_t envelope_len,
                            const struct gmca_credential *recipient, const struct file *doc,
                            char **argv, int argc)
{
        const struct gmca_message_info *opened, *verified;
        struct gmca_message *env = NULL, *sig = NULL;
        struct gmca_status st;
        char when[32] = "(none)";
        int rc = 1;

        if (gmca_message_decrypt(recipient, envelope, envelope_len, &env, &st) != 0)
                return failed("open the envelope", &st);
        opened = gmca_message_info(env);
        /* The signer certificate travels in the message: no extra certificates needed. */
        if (gmca_message_verify(opened->content, opened->content_len, NULL, 0, NULL, 0, NULL, &sig,
                                &st) != 0) {
                failed("verify", &st);
                goto out;
        }
        verified = gmca_message_info(sig);
        if (verified->has_signing_time) {
                time_t t = (time_t)verified->signing_time;
                struct tm tm;

                if (gmtime_r(&t, &tm) != NULL)
                        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        printf("signed by: %s\n", gmca_certificate_info(verified->signer)->subject.text);
        printf("signing time: %s\n", when);
        if (verified->content_len != doc->len ||
            memcmp(verified->content, doc->data, doc->len) != 0) {
                fprintf(stderr, "relying_party: the content differs from the document\n");
                goto out;
        }
        printf("content: %zu bytes, the document unchanged\n", verified->content_len);
        /* A good signature proves nothing until the certificate is valid. */
        rc = validate_signer(verified->signer, argv[6], argv[7], argv + 8, argc - 8);
out:
        gmca_message_free(sig);
        gmca_message_free(env);
        return rc;
}

int main(int argc, char **argv)
{
        struct file doc = {0}, scert = {0}, skey = {0}, rcert = {0}, rkey = {0};
        uint8_t *envelope = NULL;
        size_t envelope_len = 0;
        int rc = 1;

        if (argc < 8) {
                fprintf(stderr, "usage: relying_party DOCUMENT SIGNER-CERT SIGNER-KEY "
                                "RECIPIENT-CERT RECIPIENT-KEY ROOT-CA SUB-CA [CRL ...]\n");
                return 2;
        }
        printf("libgmca %s\n", gmca_library_version());
        if (read_file(argv[1], &doc) != 0 || read_file(argv[2], &scert) != 0 ||
            read_file(argv[3], &skey) != 0 || read_file(argv[4], &rcert) != 0 ||
            read_file(argv[5], &rkey) != 0)
                goto out;

        /* Credentials: the bytes of PEM or DER files; unused fields stay zero. */
        struct gmca_credential signer = {.certificate = scert.data,
                                         .certificate_len = scert.len,
                                         .private_key = skey.data,
                                         .private_key_len = skey.len};
        struct gmca_credential recipient = {.certificate = rcert.data,
                                            .certificate_len = rcert.len,
                                            .private_key = rkey.data,
                                            .private_key_len = rkey.len};

        if (send_document(argv[1], &doc, &signer, &rcert, &envelope, &envelope_len) != 0)
                goto out;
        rc = receive_document(envelope, envelope_len, &recipient, &doc, argv, argc);
        if (rc == 0)
                printf("OK\n");
out:
        gmca_buffer_free(envelope, envelope_len);
        free(doc.data);
        free(scert.data);
        free(rcert.data);
        /* Private keys: wiped before they are freed. */
        if (skey.data != NULL)
                explicit_bzero(skey.data, skey.len);
        if (rkey.data != NULL)
                explicit_bzero(rkey.data, rkey.len);
        free(skey.data);
        free(rkey.data);
        return rc;
}
