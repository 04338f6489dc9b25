/*
 * Small shared helpers: the replaceable clock, bounded file I/O with
 * exclusive or atomic creation, hex and time formatting.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static time_t (*clock_fn)(void);

time_t gmca_now(void)
{
        if (clock_fn != NULL)
                return clock_fn();
        return time(NULL);
}

int64_t gmca_now_us(void)
{
        struct timeval tv;

        if (clock_fn != NULL)
                return (int64_t)clock_fn() * 1000000;
        gettimeofday(&tv, NULL);
        return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

void gmca_set_clock(time_t (*fn)(void))
{
        clock_fn = fn;
}

int gmca_read_file(const char *path, size_t max, uint8_t **buf, size_t *len, struct gmca_error *e)
{
        int fd = -1, rc = GMCA_ERR_IO;
        uint8_t *b = NULL;
        size_t n = 0, cap = 0;

        if (strcmp(path, "-") == 0)
                fd = STDIN_FILENO;
        else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return gmca_error_set(e, errno == ENOENT ? GMCA_ERR_NOTFOUND : GMCA_ERR_IO,
                                      "%s: %s", path, strerror(errno));
        for (;;) {
                ssize_t r;

                if (n == cap) {
                        size_t ncap = cap == 0 ? 4096 : cap * 2;
                        uint8_t *nb;

                        if (ncap > max + 1)
                                ncap = max + 1;
                        if (ncap <= n) {
                                rc = gmca_error_set(e, GMCA_ERR_LIMIT, "%s: larger than %zu bytes",
                                                    path, max);
                                goto out;
                        }
                        if ((nb = realloc(b, ncap + 1)) == NULL) {
                                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "%s: out of memory", path);
                                goto out;
                        }
                        b = nb;
                        cap = ncap;
                }
                r = read(fd, b + n, cap - n);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        rc = gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
                        goto out;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
                if (n > max) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "%s: larger than %zu bytes", path,
                                            max);
                        goto out;
                }
        }
        if (b == NULL && (b = malloc(1)) == NULL) {
                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "%s: out of memory", path);
                goto out;
        }
        b[n] = '\0';
        *buf = b;
        *len = n;
        b = NULL;
        rc = 0;
out:
        if (fd >= 0 && fd != STDIN_FILENO)
                close(fd);
        free(b);
        return rc;
}

int gmca_write_all(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t w = write(fd, p, len);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

int gmca_read_all(int fd, void *buf, size_t len)
{
        uint8_t *p = buf;

        while (len > 0) {
                ssize_t r = read(fd, p, len);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -1;
                p += r;
                len -= (size_t)r;
        }
        return 0;
}

int gmca_write_file_excl(const char *path, const void *data, size_t len, int mode,
                         struct gmca_error *e)
{
        int fd;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
        if (fd < 0)
                return gmca_error_set(
                    e, errno == EEXIST ? GMCA_ERR_EXISTS : GMCA_ERR_IO, "%s: %s", path,
                    errno == EEXIST ? "exists, refusing to overwrite" : strerror(errno));
        /* The umask may have narrowed the mode; make it exact. */
        if (fchmod(fd, (mode_t)mode) != 0 || gmca_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
                int err = errno;

                close(fd);
                unlink(path);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(err));
        }
        if (close(fd) != 0) {
                unlink(path);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(errno));
        }
        return 0;
}

int gmca_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                           struct gmca_error *e)
{
        char tmp[4096];
        int rc;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
                return gmca_error_set(e, GMCA_ERR_INVALID, "%s: path too long", path);
        unlink(tmp);
        if ((rc = gmca_write_file_excl(tmp, data, len, mode, e)) != 0)
                return rc;
        if (rename(tmp, path) != 0) {
                int err = errno;

                unlink(tmp);
                return gmca_error_set(e, GMCA_ERR_IO, "%s: %s", path, strerror(err));
        }
        return 0;
}

void gmca_hex_upper(const uint8_t *in, size_t len, char *out)
{
        static const char digits[] = "0123456789ABCDEF";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * len] = '\0';
}

static int nibble(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int gmca_unhex(const char *hex, uint8_t *out, size_t cap, size_t *outlen)
{
        size_t n = strlen(hex);

        if (n == 0 || n % 2 != 0 || n / 2 > cap)
                return -1;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -1;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        *outlen = n / 2;
        return 0;
}

size_t gmca_strlcpy(char *dst, const char *src, size_t size)
{
        size_t n = strlen(src);

        if (size > 0) {
                size_t c = n < size - 1 ? n : size - 1;

                memcpy(dst, src, c);
                dst[c] = '\0';
        }
        return n;
}

void gmca_time_iso(time_t t, char *buf, size_t len)
{
        struct tm tm;

        if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
                if (len > 0)
                        buf[0] = '\0';
        }
}

int gmca_time_parse(const char *s, time_t *out)
{
        struct tm tm;
        const char *end;

        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (end == NULL || *end != '\0') {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, "%Y-%m-%d", &tm);
                if (end == NULL || *end != '\0')
                        return -1;
        }
        *out = timegm(&tm);
        return 0;
}

int gmca_grow(void **v, size_t *cap, size_t n, size_t elem, size_t first, size_t max)
{
        size_t ncap;
        void *nv;

        if (n < *cap)
                return 0;
        ncap = *cap ? *cap * 2 : first;
        if (ncap > max)
                ncap = max;
        if (ncap <= n)
                return GMCA_ERR_LIMIT;
        if (ncap > SIZE_MAX / elem || (nv = realloc(*v, ncap * elem)) == NULL)
                return GMCA_ERR_NOMEM;
        *v = nv;
        *cap = ncap;
        return 0;
}
