/*
 * keybackup: the file format of a CA key backup (CPS §7.2.1.3, §7.1.2.5);
 * the ceremonies that make and restore one live in ca_custody_ops.c. This
 * module owns the bytes: the public header, the encrypted frames and the
 * entries inside them, each parser bounded and callable on bytes alone
 * (fuzz/fuzz_keybackup.c).
 *
 *   header  "GMCA-KBK" | u32 version (1) | u32 n | n bytes of JSON: the share
 *           set that opens the backup (installation, set id, threshold,
 *           count, check value), a random salt, the creation time, the CA
 *           names and the device description. Readable without custodians.
 *   frames  u8 flags (1: last) | u32 len (<= GMCA_KBK_FRAME_MAX) |
 *           len bytes of SM4-GCM ciphertext | 16-byte tag
 *
 * Integers are big-endian. Frame i is sealed under
 * K = HMAC-SM3(master, "gmca key backup v1" || salt)[0..16) with IV
 * 0^4 || be64(i) and additional data "gmca-kbk-v1" || SM3(header) ||
 * be64(i) || flags. So a changed byte anywhere (header included), frames
 * reordered, dropped or repeated, the file cut after any frame, or a frame
 * spliced in from another backup each fail a tag or the last-frame rule. K
 * differs for every backup (the salt), so the counter IV never repeats
 * under one key.
 *
 * The plaintext is a stream of entries, ended by 'E' in the last frame:
 *   'F' u16 n | path (n bytes) | u64 size | size bytes   a file of the state
 *        directory (gmca.json, gmca.db, profiles/, certs/, crl/, keys/archive/)
 *   'K' u32 index | u32 n | n bytes                      a CA key as the
 *        device's sealed blob (still under the key PIN: never clear)
 *   'E'                                                  the end
 */
#ifndef GMCA_KEYBACKUP_H
#define GMCA_KEYBACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "custody.h"
#include "err.h"
#include "store.h"

#define GMCA_KBK_MAGIC "GMCA-KBK"
#define GMCA_KBK_VERSION 1
#define GMCA_KBK_PREFIX_LEN 16 /* magic, version, JSON length */
#define GMCA_KBK_HEADER_MAX 16384
#define GMCA_KBK_FRAME_MAX (1u << 20)
#define GMCA_KBK_PATH_MAX 255
#define GMCA_KBK_FILE_MAX (1ull << 40) /* bytes of one file entry */
#define GMCA_KBK_BLOB_MAX 65536        /* bytes of one key blob */
#define GMCA_KBK_ENTRIES_MAX (1u << 20)
#define GMCA_KBK_CAS_MAX 64
#define GMCA_KBK_SALT_LEN 32
#define GMCA_KBK_DEVICE_MAX 128

/* The public facts of a backup. */
struct gmca_kbk_header {
        struct gmca_custody_set set; /* the share set that opens it */
        uint8_t check[32];           /* gmca_custody_check_value of its master key */
        uint8_t salt[GMCA_KBK_SALT_LEN];
        int64_t created;
        char cas[GMCA_KBK_CAS_MAX][GMCA_NAME_MAX];
        size_t ncas;
        char device[GMCA_KBK_DEVICE_MAX];
};

/* The header's bytes (prefix and JSON); *out malloc'd, caller frees. */
int gmca_kbk_header_encode(const struct gmca_kbk_header *h, uint8_t **out, size_t *len,
                           struct gmca_error *e) GMCA_WUR;

/*
 * The whole header's length from its first GMCA_KBK_PREFIX_LEN bytes:
 * GMCA_ERR_INVALID if they are not a key backup's, GMCA_ERR_TAMPER if the
 * length is out of bounds.
 */
int gmca_kbk_header_len(const uint8_t prefix[GMCA_KBK_PREFIX_LEN], size_t *len,
                        struct gmca_error *e) GMCA_WUR;

/*
 * Parse the header at the start of buf (len bytes, may run on into the
 * frames); *used receives its length. Not a key backup: GMCA_ERR_INVALID;
 * cut short, malformed, unknown keys or values out of bounds:
 * GMCA_ERR_TAMPER. Nothing here is authenticated yet: the frames are.
 */
int gmca_kbk_header_parse(const uint8_t *buf, size_t len, struct gmca_kbk_header *h, size_t *used,
                          struct gmca_error *e) GMCA_WUR;

/*
 * Walk the frames after the header without a key: lengths, flags, exactly
 * one last frame at the very end. *frames receives the count.
 * GMCA_ERR_TAMPER otherwise. Authenticity needs the reader.
 */
int gmca_kbk_frames_scan(const uint8_t *buf, size_t len, uint64_t *frames,
                         struct gmca_error *e) GMCA_WUR;

/* The backup's SM4 key from the master key and the header's salt. */
int gmca_kbk_key(const uint8_t master[GMCA_MASTER_LEN], const uint8_t salt[GMCA_KBK_SALT_LEN],
                 uint8_t key[GMCA_SM4_KEY_LEN], struct gmca_error *e) GMCA_WUR;

/* 1 if path may name a file entry (see above); no "..", no absolute paths. */
int gmca_kbk_path_ok(const char *path);

/*
 * Writer: header, then entries into frames on fd (which the caller opened
 * and closes). finish writes the end entry and the last frame, fsyncs and
 * gives the SM3 of every byte written and their count. free wipes the key
 * and buffers; NULL is fine.
 */
struct gmca_kbk_writer;
struct gmca_kbk_writer *gmca_kbk_writer_new(int fd, const uint8_t *header, size_t hlen,
                                            const uint8_t key[GMCA_SM4_KEY_LEN],
                                            struct gmca_error *e);
int gmca_kbk_put_file(struct gmca_kbk_writer *w, const char *path, const char *src,
                      struct gmca_error *e) GMCA_WUR;
int gmca_kbk_put_key(struct gmca_kbk_writer *w, unsigned index, const uint8_t *blob, size_t len,
                     struct gmca_error *e) GMCA_WUR;
int gmca_kbk_finish(struct gmca_kbk_writer *w, uint8_t sm3[GMCA_SM3_LEN], uint64_t *bytes,
                    struct gmca_error *e) GMCA_WUR;
void gmca_kbk_writer_free(struct gmca_kbk_writer *w);

/*
 * Reader: fd is positioned just after the header (whose bytes are given,
 * for the additional data and the file's SM3). read returns exactly n
 * plaintext bytes, opening and authenticating frames as it goes
 * (GMCA_ERR_TAMPER on any failure). finish checks that the last frame was
 * reached, fully read, and that nothing follows it, and gives the SM3 of
 * the whole file. free wipes; NULL is fine.
 */
struct gmca_kbk_reader;
struct gmca_kbk_reader *gmca_kbk_reader_new(int fd, const uint8_t *header, size_t hlen,
                                            const uint8_t key[GMCA_SM4_KEY_LEN],
                                            struct gmca_error *e);
int gmca_kbk_read(void *reader, uint8_t *buf, size_t n, struct gmca_error *e) GMCA_WUR;
int gmca_kbk_reader_finish(struct gmca_kbk_reader *r, uint8_t sm3[GMCA_SM3_LEN],
                           struct gmca_error *e) GMCA_WUR;
void gmca_kbk_reader_free(struct gmca_kbk_reader *r);

/* Where entries come from: read exactly n bytes or fail. */
struct gmca_kbk_src {
        int (*read)(void *arg, uint8_t *buf, size_t n, struct gmca_error *e);
        void *arg;
};
/* Where they go; a NULL callback skips that kind. */
struct gmca_kbk_sink {
        int (*file_open)(void *arg, const char *path, uint64_t size, struct gmca_error *e);
        int (*file_data)(void *arg, const uint8_t *p, size_t n, struct gmca_error *e);
        int (*file_close)(void *arg, struct gmca_error *e);
        int (*key)(void *arg, unsigned index, const uint8_t *blob, size_t n, struct gmca_error *e);
        void *arg;
};
/*
 * Parse entries from src up to and including the end entry, handing each
 * to sink. A malformed entry is GMCA_ERR_TAMPER; whatever src or sink
 * return stops the walk and is returned.
 */
int gmca_kbk_entries(const struct gmca_kbk_src *src, const struct gmca_kbk_sink *sink,
                     struct gmca_error *e) GMCA_WUR;

#endif
