/*
 * Fuzz target for the CA key backup format (keybackup.h): the public header
 * and the frame walk that run before any custodian is asked, the frames
 * opened under a fixed fuzzing master key (32 bytes of 0x5A: the good_*.kbk
 * seeds were written by gmca_kbk_writer under it, so mutations of them reach
 * the entries behind the tags), and the entry parser run straight on the
 * input as if it were plaintext (the *.bin seeds).
 */
#define _GNU_SOURCE /* memfd_create */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "keybackup.h"
#include "util.h"

#define FUZZ_MASTER_BYTE 0x5A

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
        const uint8_t *p;
        size_t len, off;
};

static int mem_read(void *arg, uint8_t *buf, size_t n, struct gmca_error *e)
{
        struct mem *m = arg;

        if (m->len - m->off < n)
                return gmca_error_set(e, GMCA_ERR_TAMPER, "fuzz: end of input");
        memcpy(buf, m->p + m->off, n);
        m->off += n;
        return 0;
}

static int s_open(void *arg, const char *path, uint64_t size, struct gmca_error *e)
{
        (void)arg;
        (void)size;
        /* the parser promised a safe relative path */
        if (!gmca_kbk_path_ok(path) || path[0] == '/' || path[0] == '.' ||
            strstr(path, "/.") != NULL || strstr(path, "//") != NULL)
                __builtin_trap();
        (void)e;
        return 0;
}

static int s_data(void *arg, const uint8_t *p, size_t n, struct gmca_error *e)
{
        (void)arg;
        (void)p;
        (void)n;
        (void)e;
        return 0;
}

static int s_key(void *arg, unsigned index, const uint8_t *blob, size_t n, struct gmca_error *e)
{
        (void)arg;
        (void)blob;
        (void)e;
        if (index == 0 || n == 0 || n > GMCA_KBK_BLOB_MAX)
                __builtin_trap();
        return 0;
}

static const struct gmca_kbk_sink sink = {s_open, s_data, NULL, s_key, NULL};

static void archive(const uint8_t *data, size_t size)
{
        struct gmca_kbk_header h;
        struct gmca_kbk_reader *r;
        struct gmca_error e = {0};
        uint8_t master[GMCA_MASTER_LEN], key[GMCA_SM4_KEY_LEN], sm3[GMCA_SM3_LEN];
        size_t used = 0;
        uint64_t frames;
        int fd;

        if (gmca_kbk_header_parse(data, size, &h, &used, &e) != 0)
                return;
        if (used > size || h.set.threshold < 2 || h.set.threshold > h.set.count)
                __builtin_trap();
        (void)!gmca_kbk_frames_scan(data + used, size - used, &frames, &e);
        memset(master, FUZZ_MASTER_BYTE, sizeof(master));
        if (gmca_kbk_key(master, h.salt, key, &e) != 0)
                return;
        if ((fd = memfd_create("kbk", MFD_CLOEXEC)) < 0)
                return;
        if (gmca_write_all(fd, data + used, size - used) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
            (r = gmca_kbk_reader_new(fd, data, used, key, &e)) != NULL) {
                struct gmca_kbk_src src = {gmca_kbk_read, r};

                if (gmca_kbk_entries(&src, &sink, &e) == 0)
                        (void)!gmca_kbk_reader_finish(r, sm3, &e);
                gmca_kbk_reader_free(r);
        }
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct mem m = {data, size, 0};
        struct gmca_kbk_src src = {mem_read, &m};
        struct gmca_error e = {0};

        archive(data, size);
        (void)!gmca_kbk_entries(&src, &sink, &e);
        return 0;
}
