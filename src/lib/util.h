/*
 * util: small helpers shared by the library, the command and the tests:
 * the replaceable clock, bounded file reading, exclusive file creation,
 * hex, bounded string copies.
 */
#ifndef GMCA_UTIL_H
#define GMCA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

/* Big-endian integers in byte strings (file formats, frames, hashed fields). */
static inline void gmca_put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static inline uint32_t gmca_get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void gmca_put_be64(uint8_t *p, uint64_t v)
{
        gmca_put_be32(p, (uint32_t)(v >> 32));
        gmca_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t gmca_get_be64(const uint8_t *p)
{
        return (uint64_t)gmca_get_be32(p) << 32 | gmca_get_be32(p + 4);
}

/* Current time (seconds). Tests may replace the clock; NULL restores it. */
time_t gmca_now(void);
/* Current time in microseconds since the epoch. */
int64_t gmca_now_us(void);
void gmca_set_clock(time_t (*fn)(void));

/*
 * Read a whole file of at most max bytes ("-" reads standard input).
 * *buf is NUL-terminated (not counted in *len); caller frees with free().
 * GMCA_ERR_LIMIT if larger than max.
 */
int gmca_read_file(const char *path, size_t max, uint8_t **buf, size_t *len,
                   struct gmca_error *e) GMCA_WUR;

/*
 * Create path with O_CREAT|O_EXCL and mode (e.g. 0600 or 0644), write all
 * of data, fsync. GMCA_ERR_EXISTS if the file exists. On failure the file is
 * removed.
 */
int gmca_write_file_excl(const char *path, const void *data, size_t len, int mode,
                         struct gmca_error *e) GMCA_WUR;

/* Write via a temporary file and rename (replaces an existing file). */
int gmca_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                           struct gmca_error *e) GMCA_WUR;

/* Write / read exactly len bytes (retrying on EINTR); -1 on error or early EOF. */
int gmca_write_all(int fd, const void *data, size_t len) GMCA_WUR;
int gmca_read_all(int fd, void *buf, size_t len) GMCA_WUR;

/* Upper-case hex of in into out (2*len+1 bytes). */
void gmca_hex_upper(const uint8_t *in, size_t len, char *out);
/* Decode hex (either case) into out (capacity cap); -1 on bad input. */
int gmca_unhex(const char *hex, uint8_t *out, size_t cap, size_t *outlen);

/* Copy at most size-1 bytes and NUL-terminate; returns strlen(src). */
size_t gmca_strlcpy(char *dst, const char *src, size_t size);

/* Format t as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
void gmca_time_iso(time_t t, char *buf, size_t len);
/* Parse "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC). -1 on bad input. */
int gmca_time_parse(const char *s, time_t *out);

/*
 * Make room for one more element in a realloc'd array *v of *cap elements
 * of elem bytes, n of them in use: doubles the capacity (first: first
 * elements) up to max. 0, GMCA_ERR_LIMIT past max, GMCA_ERR_NOMEM.
 */
int gmca_grow(void **v, size_t *cap, size_t n, size_t elem, size_t first, size_t max);

#endif
