/*
 * Shared helpers of the gmca command: error reporting, exit codes,
 * passphrase intake and opening the state directory.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "util.h"

int cli_exit_code(int err)
{
        switch (err) {
        case GMCA_OK:
                return EXIT_OK;
        case GMCA_ERR_INVALID:
        case GMCA_ERR_LIMIT:
        case GMCA_ERR_VERIFY:
                return EXIT_INPUT;
        case GMCA_ERR_NOTFOUND:
                return EXIT_NOTFOUND;
        case GMCA_ERR_AUTH:
        case GMCA_ERR_FORBIDDEN:
                return EXIT_AUTH;
        case GMCA_ERR_POLICY:
        case GMCA_ERR_STATE:
        case GMCA_ERR_EXISTS:
                return EXIT_POLICY;
        case GMCA_ERR_TAMPER:
                return EXIT_TAMPER;
        }
        return EXIT_FAIL;
}

int cli_fail(const struct gmca_error *e)
{
        const char *msg = e->msg[0] ? e->msg : gmca_err_name(e->code);
        char line[GMCA_ERROR_MSG_MAX];
        size_t i;

        /* One line: the cause may quote input, so fold any newline. */
        for (i = 0; msg[i] != '\0' && i + 1 < sizeof(line); i++)
                line[i] = (msg[i] == '\n' || msg[i] == '\r') ? ' ' : msg[i];
        line[i] = '\0';
        fprintf(stderr, "gmca: %s\n", line);
        return cli_exit_code(e->code ? e->code : GMCA_ERR_INTERNAL);
}

int cli_usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("gmca: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see --help)\n", stderr);
        return EXIT_USAGE;
}

int cli_parse_int(const char *s, int min, int max)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
                return -1;
        return (int)v;
}

void cli_pass_free(char *pass, size_t len)
{
        if (pass != NULL)
                OPENSSL_clear_free(pass, len + 1);
}

static int prompt(const char *text, char *buf, size_t cap, size_t *len, struct gmca_error *e)
{
        int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
        struct termios old, quiet;
        size_t n = 0;
        int rc = 0;

        if (fd < 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "no %s given and no terminal to ask on (use --pin-file)",
                                      text);
        if (tcgetattr(fd, &old) != 0) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "terminal: %s", strerror(errno));
        }
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        if (write(fd, text, strlen(text)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
                close(fd);
                return gmca_error_set(e, GMCA_ERR_IO, "terminal: %s", strerror(errno));
        }
        for (;;) {
                char ch;
                ssize_t r = read(fd, &ch, 1);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0 || ch == '\n' || ch == '\r')
                        break;
                if (n + 1 >= cap) {
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "passphrase too long");
                        break;
                }
                buf[n++] = ch;
        }
        buf[n] = '\0';
        tcsetattr(fd, TCSAFLUSH, &old);
        if (write(fd, "\n", 1) < 0) {
                /* nothing to do: the prompt line is cosmetic */
        }
        close(fd);
        *len = n;
        return rc;
}

int cli_secret(const char *file, const char *env, const char *what, int confirm, char **pass,
               size_t *len, struct gmca_error *e)
{
        size_t cap = GMCA_PASS_MAX + 2, n = 0;
        char question[160];
        char *buf = OPENSSL_zalloc(cap);
        int rc = 0;

        if (buf == NULL)
                return gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
        snprintf(question, sizeof(question), "%s: ", what);
        if (file != NULL) {
                uint8_t *data = NULL;
                size_t dlen = 0;

                if ((rc = gmca_read_file(file, GMCA_PASS_MAX + 2, &data, &dlen, e)) == 0) {
                        /* The first line is the passphrase. */
                        while (n < dlen && data[n] != '\n' && data[n] != '\r' && n + 1 < cap) {
                                buf[n] = (char)data[n];
                                n++;
                        }
                        OPENSSL_cleanse(data, dlen);
                }
                free(data);
        } else if (env != NULL) {
                const char *v = getenv(env);

                if (v == NULL)
                        rc = gmca_error_set(e, GMCA_ERR_INVALID,
                                            "no %s: environment variable %s is not set", what, env);
                else if ((n = strlen(v)) + 1 >= cap)
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "passphrase too long");
                else
                        memcpy(buf, v, n + 1);
        } else {
                rc = prompt(question, buf, cap, &n, e);
                if (rc == 0 && confirm) {
                        char *again = OPENSSL_zalloc(cap);
                        size_t n2 = 0;

                        if (again == NULL)
                                rc = gmca_error_set(e, GMCA_ERR_NOMEM, "out of memory");
                        else if ((rc = prompt("Again: ", again, cap, &n2, e)) == 0 &&
                                 (n2 != n || CRYPTO_memcmp(again, buf, n) != 0))
                                rc = gmca_error_set(e, GMCA_ERR_INVALID, "%s: the two do not match",
                                                    what);
                        OPENSSL_clear_free(again, cap);
                }
        }
        if (rc == 0 && n == 0)
                rc = gmca_error_set(e, GMCA_ERR_INVALID, "empty %s", what);
        if (rc != 0) {
                OPENSSL_clear_free(buf, cap);
                return rc;
        }
        buf[n] = '\0';
        *pass = buf;
        *len = n;
        /* cli_pass_free clears len + 1 bytes; the rest of buf is zero already. */
        return 0;
}

struct gmca_ctx *cli_open(const struct cli *cli, const char *ca, int activate, struct gmca_error *e)
{
        struct gmca_ctx *c;

        (void)ca;
        if ((c = gmca_ctx_open(cli->dir, cli->actor, e)) == NULL)
                return NULL;
        /* Without an engine the operation is refused, and audited, by the library. */
        if (activate && gmca_ctx_use_engine(c, e) != 0)
                gmca_error_clear(e);
        return c;
}

/* ---- custodians ---- */

int cli_custody_option(struct cli_custody *k, int which, const char *arg)
{
        const char **slot;
        size_t *n;

        if (which == 'n') {
                slot = k->names;
                n = &k->nnames;
        } else if (which == 's') {
                slot = k->shares;
                n = &k->nshares;
        } else {
                slot = k->pin_files;
                n = &k->npins;
        }
        if (*n == GMCA_CUSTODY_MAX)
                return cli_usage_error("at most %d custodians", GMCA_CUSTODY_MAX);
        slot[(*n)++] = arg;
        return 0;
}

int cli_custody_collect(struct cli_custody *k, int ceremony, const char *share_dir,
                        struct gmca_error *e)
{
        size_t n = ceremony ? k->nnames : k->nshares;
        int rc;

        if (n == 0)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      ceremony ? "no custodians: give --custodian NAME for each"
                                               : "no custodians: give --share FILE (and "
                                                 "--pin-file FILE) for each one present");
        if (k->npins > n)
                return gmca_error_set(e, GMCA_ERR_INVALID, "more --pin-file than custodians");
        if (ceremony && share_dir == NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID,
                                      "--shares-out DIR: where the custodians' share files go");
        for (size_t i = 0; i < n; i++) {
                char what[GMCA_CUSTODIAN_NAME_MAX + 64];
                struct gmca_share_info info;

                if (ceremony) {
                        if ((size_t)snprintf(k->paths[i], sizeof(k->paths[i]), "%s/share-%zu.json",
                                             share_dir, i + 1) >= sizeof(k->paths[i]))
                                return gmca_error_set(e, GMCA_ERR_INVALID, "--shares-out too long");
                        k->cust[i].name = k->names[i];
                        k->cust[i].path = k->paths[i];
                        snprintf(what, sizeof(what), "PIN for custodian %s", k->names[i]);
                } else {
                        k->cust[i].path = k->shares[i];
                        if ((rc = gmca_share_info(k->shares[i], &info, e)) != 0)
                                return rc;
                        snprintf(what, sizeof(what), "PIN of %s (%s)", info.custodian,
                                 k->shares[i]);
                }
                if ((rc = cli_secret(i < k->npins ? k->pin_files[i] : NULL, NULL, what, ceremony,
                                     &k->pins[i], &k->pinlens[i], e)) != 0)
                        return rc;
                k->cust[i].pin = k->pins[i];
                k->cust[i].pinlen = k->pinlens[i];
        }
        k->n = n;
        return 0;
}

void cli_custody_free(struct cli_custody *k)
{
        for (size_t i = 0; i < GMCA_CUSTODY_MAX; i++)
                cli_pass_free(k->pins[i], k->pinlens[i]);
        memset(k, 0, sizeof(*k));
}

int cli_print_json(json_t *v)
{
        int rc;

        if (v == NULL) {
                fputs("gmca: out of memory\n", stderr);
                return EXIT_FAIL;
        }
        rc = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(v);
        fputc('\n', stdout);
        return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

int cli_output(const char *path, const void *data, size_t len, struct gmca_error *e)
{
        if (path == NULL) {
                if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
                        return gmca_error_set(e, GMCA_ERR_IO, "stdout: write failed");
                return 0;
        }
        return gmca_write_file_excl(path, data, len, 0644, e);
}

int cli_group_help(int argc, char **argv, const char *usage, int *rc)
{
        if (argc >= 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
                return 0;
        fputs(usage, argc < 2 ? stderr : stdout);
        *rc = argc < 2 ? EXIT_USAGE : EXIT_OK;
        return 1;
}

int cli_only_options(const char *seen, const char *allowed, const char *what)
{
        for (const char *p = seen; *p != '\0'; p++)
                if (strchr(allowed, *p) == NULL)
                        return cli_usage_error("%s: an option given does not apply to it", what);
        return 0;
}

void cli_seen_option(char *seen, size_t size, int ch)
{
        size_t n = strlen(seen);

        if (ch != '?' && ch != 'h' && n + 1 < size && strchr(seen, ch) == NULL) {
                seen[n] = (char)ch;
                seen[n + 1] = '\0';
        }
}
