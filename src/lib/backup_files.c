/*
 * backup_files: the files half of backup.h — walking a state directory
 * into a sorted list of files with their SM3 and mode, the list's text
 * form inside an archive (files.list), and the off-site copy of a finished
 * archive. The database and the run/ and backups/ directories are not
 * files of a backup: the database goes by its online snapshot.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "backup.h"
#include "backup_internal.h"
#include "ca.h"
#include "util.h"

#define FILE_MAX ((size_t)1 << 30)
#define WALK_DEPTH 16
#define LIST_LINE_MAX (GMCA_PKG_NAME_MAX + 128)

extern char **environ;

void bk_files_free(struct bk_files *f)
{
        size_t i;

        for (i = 0; i < f->n; i++)
                OPENSSL_free(f->v[i].data);
        free(f->v);
        memset(f, 0, sizeof(*f));
}

/* Top-level names that are not copied as files. */
static int skipped(const char *rel)
{
        static const char *const skip[] = {GMCA_DB_FILE,      "gmca.db-wal", "gmca.db-shm",
                                           "gmca.db-journal", "run",         GMCA_BACKUP_DIR};
        size_t i;

        for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
                if (strcmp(rel, skip[i]) == 0)
                        return 1;
        return 0;
}

static int add_file(struct bk_files *f, const char *path, const char *rel, const struct stat *st,
                    struct gmca_error *e)
{
        struct bk_file *x;
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc;

        if ((rc = gmca_grow((void **)&f->v, &f->cap, f->n, sizeof(*f->v), 64, 1000000)) != 0)
                return gmca_error_set(e, rc, "backup: too many files");
        x = &f->v[f->n];
        memset(x, 0, sizeof(*x));
        if (snprintf(x->rel, sizeof(x->rel), "files/%s", rel) >= (int)sizeof(x->rel) ||
            strchr(rel, ' ') != NULL || strchr(rel, '\n') != NULL)
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup: unsupported file name %s",
                                      path);
        if ((rc = gmca_read_file(path, FILE_MAX, &buf, &len, e)) != 0)
                return rc;
        if ((x->data = OPENSSL_malloc(len ? len : 1)) == NULL) {
                OPENSSL_clear_free(buf, len);
                return gmca_error_set(e, GMCA_ERR_NOMEM, "backup: out of memory");
        }
        memcpy(x->data, buf, len);
        OPENSSL_cleanse(buf, len);
        free(buf);
        x->size = len;
        x->mode = (unsigned)(st->st_mode & 0777);
        if (gmca_sm3(x->data, len, x->d) != 0)
                return gmca_error_set(e, GMCA_ERR_CRYPTO, "backup: SM3 of %s", path);
        f->n++;
        return 0;
}

int bk_walk(const char *root, const char *rel, int depth, struct bk_files *f, struct gmca_error *e)
{
        char path[PATH_MAX], sub[PATH_MAX];
        DIR *d;
        struct dirent *de;
        int rc = 0;

        if (depth > WALK_DEPTH)
                return gmca_error_set(e, GMCA_ERR_LIMIT, "backup: directories too deep at %s", rel);
        snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
        if ((d = opendir(path)) == NULL)
                return gmca_error_set(e, GMCA_ERR_IO, "backup: cannot read %s: %s", path,
                                      strerror(errno));
        while (rc == 0 && (de = readdir(d)) != NULL) {
                struct stat st;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    (rel[0] == '\0' && skipped(de->d_name)))
                        continue;
                if (snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                    (int)sizeof(sub))
                        rc = gmca_error_set(e, GMCA_ERR_LIMIT, "backup: path too long");
                else if (snprintf(path, sizeof(path), "%s/%s", root, sub) >= (int)sizeof(path) ||
                         lstat(path, &st) != 0)
                        rc = gmca_error_set(e, GMCA_ERR_IO, "backup: cannot stat %s", sub);
                else if (S_ISDIR(st.st_mode))
                        rc = bk_walk(root, sub, depth + 1, f, e);
                else if (S_ISREG(st.st_mode))
                        rc = add_file(f, path, sub, &st, e);
                /* sockets, links and the like are not state */
        }
        closedir(d);
        return rc;
}

int bk_cmp_file(const void *a, const void *b)
{
        return strcmp(((const struct bk_file *)a)->rel, ((const struct bk_file *)b)->rel);
}

/* "HEX SIZE MODE NAME\n" per file, sorted. */
int bk_files_text(const struct bk_files *f, struct bk_buf *out, struct gmca_error *e)
{
        char line[LIST_LINE_MAX], hex[65];
        size_t i;
        int rc = 0;

        for (i = 0; i < f->n && rc == 0; i++) {
                gmca_hex(f->v[i].d, GMCA_SM3_LEN, hex);
                snprintf(line, sizeof(line), "%s %zu %o %s\n", hex, f->v[i].size, f->v[i].mode,
                         f->v[i].rel);
                rc = bk_put(out, line, strlen(line));
        }
        return rc ? gmca_error_set(e, rc, "backup: file list too large") : 0;
}

int bk_files_parse(const uint8_t *p, size_t len, struct bk_files *out, struct gmca_error *e)
{
        struct bk_files f = {0};
        size_t off = 0, dl;
        int rc = 0;

        while (off < len && rc == 0) {
                const uint8_t *nl = memchr(p + off, '\n', len - off);
                size_t ll = nl ? (size_t)(nl - (p + off)) : 0;
                char line[LIST_LINE_MAX], *hex, *size, *mode, *name, *end;
                struct bk_file *x;
                if (nl == NULL || ll == 0 || ll >= sizeof(line) || memchr(p + off, 0, ll)) {
                        rc = GMCA_ERR_INVALID;
                        break;
                }
                memcpy(line, p + off, ll);
                line[ll] = '\0';
                off += ll + 1;
                if ((rc = gmca_grow((void **)&f.v, &f.cap, f.n, sizeof(*f.v), 64, 1000000)) != 0)
                        break;
                x = &f.v[f.n];
                memset(x, 0, sizeof(*x));
                hex = strtok(line, " ");
                size = strtok(NULL, " ");
                mode = strtok(NULL, " ");
                name = strtok(NULL, " ");
                if (hex == NULL || size == NULL || mode == NULL || name == NULL ||
                    strtok(NULL, " ") != NULL || strncmp(name, "files/", 6) != 0 ||
                    strlen(name) <= 6 || !gmca_pkg_name_ok(name, strlen(name)) ||
                    strlen(hex) != 64 || gmca_unhex(hex, x->d, sizeof(x->d), &dl) != 0) {
                        rc = GMCA_ERR_INVALID;
                        break;
                }
                x->size = (size_t)strtoull(size, &end, 10);
                if (*end != '\0' || end == size)
                        rc = GMCA_ERR_INVALID;
                x->mode = (unsigned)strtoul(mode, &end, 8);
                if (*end != '\0' || end == mode || x->mode > 0777)
                        rc = GMCA_ERR_INVALID;
                gmca_strlcpy(x->rel, name, sizeof(x->rel));
                if (f.n > 0 && strcmp(f.v[f.n - 1].rel, x->rel) >= 0)
                        rc = GMCA_ERR_INVALID;
                f.n++;
        }
        if (rc != 0) {
                bk_files_free(&f);
                return gmca_error_set(e, rc, "backup: malformed file list (files.list)");
        }
        *out = f;
        return 0;
}

const struct bk_file *bk_files_find(const struct bk_files *f, const char *rel)
{
        struct bk_file key;

        if (f == NULL || f->n == 0)
                return NULL;
        gmca_strlcpy(key.rel, rel, sizeof(key.rel));
        return bsearch(&key, f->v, f->n, sizeof(*f->v), bk_cmp_file);
}

/* ---- the off-site copy ---- */

/* dest is a file, or a directory (existing, or named with a final '/') to copy into. */
static int copy_local(const char *path, const char *dest, struct gmca_error *e)
{
        char to[PATH_MAX];
        const char *base = strrchr(path, '/');
        uint8_t *buf = NULL;
        size_t len = 0, dl = strlen(dest);
        struct stat st;
        int rc;

        base = base != NULL ? base + 1 : path;
        if ((dl > 0 && dest[dl - 1] == '/') || (stat(dest, &st) == 0 && S_ISDIR(st.st_mode))) {
                if (snprintf(to, sizeof(to), "%s%s%s", dest, dest[dl - 1] == '/' ? "" : "/",
                             base) >= (int)sizeof(to))
                        return gmca_error_set(e, GMCA_ERR_LIMIT, "backup copy: path too long");
        } else
                gmca_strlcpy(to, dest, sizeof(to));
        if ((rc = gmca_read_file(path, GMCA_BACKUP_MAX, &buf, &len, e)) != 0)
                return rc;
        rc = gmca_write_file_excl(to, buf, len, 0600, e);
        free(buf);
        return rc;
}

int gmca_backup_copy(const char *path, const char *dest, struct gmca_error *e)
{
        const char *colon = strchr(dest, ':'), *slash = strchr(dest, '/');
        char *argv[] = {"scp", "-q", "-B", "-p", "--", (char *)path, (char *)dest, NULL};
        pid_t pid;
        int st, rc;

        if (dest[0] == '\0' || dest[0] == '-')
                return gmca_error_set(e, GMCA_ERR_INVALID, "backup copy: bad destination \"%s\"",
                                      dest);
        if (colon == NULL || (slash != NULL && slash < colon))
                return copy_local(path, dest, e);
        if ((rc = posix_spawnp(&pid, "scp", NULL, NULL, argv, environ)) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "backup copy: cannot run scp: %s",
                                      strerror(rc));
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return gmca_error_set(e, GMCA_ERR_IO, "backup copy: waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return gmca_error_set(e, GMCA_ERR_IO, "backup copy: scp to %s failed", dest);
        return 0;
}
