/*
 * Fuzz target for the backup archive (backup.h): the outer framing read
 * before any key is used; the body opened under a fixed fuzzing data key
 * (16 bytes of 0x5A: the good_*.gbk seeds were sealed under it, so that
 * mutations reach the package, the block list, the file list and the delta
 * behind the tag); and each inner parser run straight on the input (the
 * pkg_*, blocks_*, files_* and delta_* seeds). Invariants the parsers
 * promise are checked: entries inside the input and sorted, no unsafe name.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "backup.h"
#include "backup_internal.h"

#define FUZZ_KEY_BYTE 0x5A

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inner(const uint8_t *p, size_t n)
{
        struct gmca_error e = {0};
        struct bk_blocks b;
        struct bk_files f;
        size_t nb;

        if (bk_blocks_parse(p, n, &b, &e) == 0)
                bk_blocks_free(&b);
        if (bk_files_parse(p, n, &f, &e) == 0) {
                for (size_t i = 0; i < f.n; i++)
                        if (strncmp(f.v[i].rel, "files/", 6) != 0 || strstr(f.v[i].rel, "\n"))
                                __builtin_trap();
                bk_files_free(&f);
        }
        (void)!bk_delta_check(p, n, &nb, &e);
}

static void package(const uint8_t *p, size_t n)
{
        struct gmca_error e = {0};
        struct gmca_pkg pkg;

        if (gmca_pkg_parse(p, n, &pkg, &e) != 0)
                return;
        for (size_t i = 0; i < pkg.n; i++) {
                const struct gmca_pkg_entry *x = &pkg.v[i];
                if (x->data < p || x->data + x->len > p + n || x->name[0] == '/' ||
                    strstr(x->name, "..") == x->name || strstr(x->name, "/../") != NULL ||
                    (i > 0 && strcmp(pkg.v[i - 1].name, x->name) >= 0))
                        __builtin_trap();
                inner(x->data, x->len);
        }
        gmca_pkg_clear(&pkg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gmca_backup_outer o;
        struct gmca_error e = {0};
        struct gmca_pkg pkg;
        uint8_t dk[GMCA_SM4_KEY_LEN], *plain = NULL;
        size_t plen = 0;

        memset(dk, FUZZ_KEY_BYTE, sizeof(dk));
        if (gmca_backup_parse_outer(data, size, &o, &e) == 0) {
                if (o.ct + o.ct_len + GMCA_SM4_GCM_TAG_LEN != data + size)
                        __builtin_trap();
                if (bk_decrypt(data, &o, dk, &plain, &plen, &pkg, &e) == 0) {
                        gmca_pkg_clear(&pkg);
                        package(plain, plen);
                        OPENSSL_clear_free(plain, plen);
                }
        }
        package(data, size);
        inner(data, size);
        return 0;
}
