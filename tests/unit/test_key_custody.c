/*
 * Unit tests of the custody ceremonies (ca_custody_ops.c) and of the key
 * backup format (keybackup.c): a re-split retires the old shares and each
 * refusal changes nothing; a backup restores into a CA with the same keys
 * and never holds a private scalar; the framed archive refuses every
 * reordering, cut, splice and flipped byte.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <openssl/crypto.h>

#include "audit.h"
#include "ca.h"
#include "ca_internal.h"
#include "crypto.h"
#include "keybackup.h"
#include "sdf.h"
#include "util.h"

static const char *const names[5] = {"张三", "李四", "王五", "赵六", "钱七"};
static const char *const pins[5] = {"Unit1pinAA", "Unit2pinBB", "Unit3pinCC", "Unit4pinDD",
                                    "Unit5pinEE"};
static const char *const next_names[5] = {"孙八", "周九", "吴十", "郑一", "冯二"};
static const char *const next_pins[5] = {"Next1pinQQ", "Next2pinRR", "Next3pinSS", "Next4pinTT",
                                         "Next5pinUU"};

struct fixture {
        char top[256];
        char dir[300];
        char shares[5][320];
        char next_shares[5][320];
        struct gmca_custodian cust[5];
        struct gmca_custodian next[5];
        struct gmca_ctx *c;
};

static const char *profiles_dir(void)
{
        static char path[1024];
        const char *src = getenv("GMCA_SRC");

        snprintf(path, sizeof(path), "%s/conf/profiles", src != NULL ? src : ".");
        return path;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct gmca_init_params p = {0};
        struct gmca_error e = {0};
        char d[300];

        snprintf(f->top, sizeof(f->top), "/tmp/gmca-test-kc.XXXXXX");
        if (mkdtemp(f->top) == NULL)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/ca", f->top);
        snprintf(d, sizeof(d), "%s/shares", f->top);
        mkdir(d, 0700);
        snprintf(d, sizeof(d), "%s/next", f->top);
        mkdir(d, 0700);
        for (int i = 0; i < 5; i++) {
                snprintf(f->shares[i], sizeof(f->shares[i]), "%s/shares/share-%d.json", f->top,
                         i + 1);
                snprintf(f->next_shares[i], sizeof(f->next_shares[i]), "%s/next/share-%d.json",
                         f->top, i + 1);
                f->cust[i] =
                    (struct gmca_custodian){names[i], pins[i], strlen(pins[i]), f->shares[i]};
                f->next[i] = (struct gmca_custodian){next_names[i], next_pins[i],
                                                     strlen(next_pins[i]), f->next_shares[i]};
        }
        p.root_dn = "C=CN, O=单元测试认证中心, CN=单元测试根 CA";
        p.sub_dn = "C=CN, O=单元测试认证中心, CN=单元测试运营 CA";
        p.profiles_src = profiles_dir();
        p.actor = "unit";
        p.custodians = f->cust;
        p.ncustodians = 5;
        if (gmca_ca_init(f->dir, &p, &e) != 0) {
                fprintf(stderr, "init: %s\n", e.msg);
                return -1;
        }
        if ((f->c = gmca_ctx_open(f->dir, "unit-operator", &e)) == NULL) {
                fprintf(stderr, "open: %s\n", e.msg);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[600];

        gmca_ctx_close(f->c);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
        if (system(cmd) != 0)
                return -1;
        free(f);
        return 0;
}

static void custody_text(struct fixture *f, char out[GMCA_META_VALUE_MAX])
{
        struct gmca_error e = {0};

        assert_int_equal(
            gmca_store_meta_get(gmca_ctx_store(f->c), META_CUSTODY, out, GMCA_META_VALUE_MAX, &e),
            0);
}

struct last {
        char event[GMCA_NAME_MAX];
        int success;
        char detail[GMCA_AUDIT_DETAIL_MAX + 1];
};

static int last_cb(const struct gmca_audit_rec *r, void *arg)
{
        struct last *l = arg;

        gmca_strlcpy(l->event, r->event, sizeof(l->event));
        l->success = r->success;
        gmca_strlcpy(l->detail, r->detail ? r->detail : "", sizeof(l->detail));
        return 0;
}

static void last_audit(struct fixture *f, const char *event, int success)
{
        struct last l = {0};
        struct gmca_error e = {0};

        assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(f->c), NULL, last_cb, &l, &e), 0);
        assert_string_equal(l.event, event);
        assert_int_equal(l.success, success);
}

static int exists(const char *path)
{
        return access(path, F_OK) == 0;
}

/* No file of top's direct entries starts with prefix. */
static int no_sibling(const char *top, const char *prefix)
{
        DIR *d = opendir(top);
        struct dirent *de;
        int none = 1;

        assert_non_null(d);
        while ((de = readdir(d)) != NULL)
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        none = 0;
        closedir(d);
        return none;
}

/* ---- resplit ---- */

static void test_resplit(void **state)
{
        struct fixture *f = *state;
        struct gmca_custodian weak[5];
        struct gmca_error e = {0};
        char before[GMCA_META_VALUE_MAX], after[GMCA_META_VALUE_MAX];
        struct gmca_share_info oldi, newi;
        int rc;

        custody_text(f, before);
        /* Two current custodians are not enough. */
        rc = gmca_key_resplit(f->c, f->cust, 2, f->next, 5, 0, &e);
        expect(rc, &e, GMCA_ERR_AUTH, "3 of 5", "two present");
        last_audit(f, GMCA_EV_KEY_RESPLIT, 0);
        /* A weak new PIN is refused by rule before the custodians are asked. */
        memcpy(weak, f->next, sizeof(weak));
        weak[3].pin = "password";
        weak[3].pinlen = 8;
        gmca_error_clear(&e);
        rc = gmca_key_resplit(f->c, f->cust, 3, weak, 5, 0, &e);
        expect(rc, &e, GMCA_ERR_POLICY, "7.4.1", "weak PIN");
        last_audit(f, GMCA_EV_KEY_RESPLIT, 0);
        /* A new share may not overwrite a file. */
        memcpy(weak, f->next, sizeof(weak));
        weak[1].path = f->shares[1];
        gmca_error_clear(&e);
        rc = gmca_key_resplit(f->c, f->cust, 3, weak, 5, 0, &e);
        expect(rc, &e, GMCA_ERR_EXISTS, "exists", "share file exists");
        /* A threshold above the count is no share set. */
        gmca_error_clear(&e);
        rc = gmca_key_resplit(f->c, f->cust, 3, f->next, 3, 4, &e);
        expect(rc, &e, GMCA_ERR_INVALID, "7.2.1.1", "threshold above count");
        custody_text(f, after);
        assert_string_equal(before, after);
        for (int i = 0; i < 5; i++)
                assert_false(exists(f->next_shares[i]));

        /* Custodians 1, 3, 5 hand over to five new ones, 3 of 5. */
        gmca_error_clear(&e);
        rc = gmca_key_resplit(f->c, (struct gmca_custodian[]){f->cust[0], f->cust[2], f->cust[4]},
                              3, f->next, 5, 3, &e);
        expect(rc, &e, 0, NULL, "resplit");
        last_audit(f, GMCA_EV_KEY_RESPLIT, 1);
        custody_text(f, after);
        assert_string_not_equal(before, after);
        assert_non_null(strstr(after, "冯二"));
        for (int i = 0; i < 5; i++)
                assert_true(exists(f->next_shares[i]));
        assert_int_equal(gmca_share_info(f->shares[0], &oldi, &e), 0);
        assert_int_equal(gmca_share_info(f->next_shares[0], &newi, &e), 0);
        assert_memory_equal(oldi.installation, newi.installation, GMCA_CUSTODY_ID_LEN);
        assert_memory_not_equal(oldi.set_id, newi.set_id, GMCA_CUSTODY_ID_LEN);

        /* The old shares open nothing now; the new ones do. */
        rc = gmca_ctx_activate(f->c, f->cust, 3, &e);
        expect(rc, &e, GMCA_ERR_AUTH, "earlier share set", "old shares");
        gmca_error_clear(&e);
        rc = gmca_ctx_activate(f->c, f->next + 2, 3, &e);
        expect(rc, &e, 0, NULL, "new shares");
        gmca_ctx_close(f->c);
        f->c = gmca_ctx_open(f->dir, "unit-operator", &e);
        assert_non_null(f->c);
        {
                int64_t count = 0, bad = 0;

                assert_int_equal(gmca_audit_verify(gmca_ctx_store(f->c), &count, &bad, &e), 0);
        }
}

/* ---- backup and restore ---- */

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
        for (size_t i = 0; i + m <= n; i++)
                if (memcmp(hay + i, needle, m) == 0)
                        return 1;
        return 0;
}

/* The file lacks the scalar, raw and in hex of either case. */
static void lacks_scalar(const char *path, const uint8_t scalar[32])
{
        static const char *digits[] = {"0123456789abcdef", "0123456789ABCDEF"};
        char hex[2][65];
        uint8_t *buf = NULL;
        size_t n = 0;
        struct gmca_error e = {0};

        for (int k = 0; k < 2; k++) {
                for (int i = 0; i < 32; i++) {
                        hex[k][2 * i] = digits[k][scalar[i] >> 4];
                        hex[k][2 * i + 1] = digits[k][scalar[i] & 15];
                }
                hex[k][64] = '\0';
        }
        assert_int_equal(gmca_read_file(path, 64u << 20, &buf, &n, &e), 0);
        assert_true(n > 0);
        if (contains(buf, n, scalar, 32) || contains(buf, n, (const uint8_t *)hex[0], 64) ||
            contains(buf, n, (const uint8_t *)hex[1], 64))
                fail_msg("%s holds a private scalar", path);
        free(buf);
}

/* The private scalars of the CA keys at indexes 1 and 2, read through the software device. */
static void scalars(struct fixture *f, uint8_t out[2][32])
{
        const struct gmca_sdf_api *api = gmca_softsdf_api();
        struct ca_custody m;
        struct gmca_error e = {0};
        char keys[400];
        void *hdev = NULL, *hs = NULL;

        assert_int_equal(ca_open_master(f->c, f->cust, 3, &m, &e), 0);
        snprintf(keys, sizeof(keys), "%s/keys/device", f->dir);
        assert_int_equal(api->X_Configure(keys), SDR_OK);
        assert_int_equal(api->OpenDevice(&hdev), SDR_OK);
        assert_int_equal(api->OpenSession(hdev, &hs), SDR_OK);
        for (unsigned i = 1; i <= 2; i++) {
                assert_int_equal(api->GetPrivateKeyAccessRight(hs, i, CTX_KEYPIN(f->c), KEYPIN_LEN),
                                 SDR_OK);
                assert_int_equal(gmca_softsdf_debug_scalar(hs, i, out[i - 1]), SDR_OK);
        }
        assert_int_equal(api->CloseSession(hs), SDR_OK);
        assert_int_equal(api->CloseDevice(hdev), SDR_OK);
        gmca_ctx_forget_secrets(f->c);
}

static void ca_der(const char *dir, const char *ca, uint8_t **der, size_t *len)
{
        struct gmca_error e = {0};
        struct gmca_ctx *c = gmca_ctx_open(dir, "unit", &e);
        struct gmca_ca_rec rec;

        assert_non_null(c);
        memset(&rec, 0, sizeof(rec));
        assert_int_equal(gmca_store_ca_get(gmca_ctx_store(c), ca, &rec, &e), 0);
        *der = malloc(rec.cert_len);
        memcpy(*der, rec.cert_der, rec.cert_len);
        *len = rec.cert_len;
        gmca_ca_rec_clear(&rec);
        gmca_ctx_close(c);
}

static void test_backup_restore(void **state)
{
        struct fixture *f = *state;
        struct gmca_restore_params p = {0};
        struct gmca_error e = {0};
        char out[400], dir[400], path[500];
        uint8_t sc[2][32], *a = NULL, *b = NULL;
        size_t alen, blen;
        struct stat st;
        int rc;

        snprintf(out, sizeof(out), "%s/b.kbk", f->top);
        snprintf(dir, sizeof(dir), "%s/restored", f->top);
        rc = gmca_key_backup(f->c, f->cust + 2, 3, out, &e);
        expect(rc, &e, 0, NULL, "backup");
        last_audit(f, GMCA_EV_KEY_BACKUP, 1);
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_true(no_sibling(f->top, "b.kbk."));
        snprintf(path, sizeof(path), "%s/run", f->dir);
        assert_true(no_sibling(path, "backup-"));
        /* Never over an existing file. */
        rc = gmca_key_backup(f->c, f->cust + 2, 3, out, &e);
        expect(rc, &e, GMCA_ERR_EXISTS, "exists", "backup over a file");
        last_audit(f, GMCA_EV_KEY_BACKUP, 0);

        scalars(f, sc);
        lacks_scalar(out, sc[0]);
        lacks_scalar(out, sc[1]);

        /* Refusals leave nothing. */
        p.archive = out;
        p.dir = dir;
        p.actor = "unit";
        p.custodians = f->cust;
        p.ncustodians = 2;
        gmca_error_clear(&e);
        rc = gmca_key_restore(&p, &e);
        expect(rc, &e, GMCA_ERR_AUTH, "3 of 5", "two custodians");
        p.custodians = (struct gmca_custodian[]){
            f->cust[0], f->cust[1], {names[2], pins[3], strlen(pins[3]), f->shares[2]}};
        p.ncustodians = 3;
        gmca_error_clear(&e);
        rc = gmca_key_restore(&p, &e);
        expect(rc, &e, GMCA_ERR_AUTH, "王五", "wrong PIN");
        p.dir = f->dir;
        p.custodians = f->cust;
        gmca_error_clear(&e);
        rc = gmca_key_restore(&p, &e);
        expect(rc, &e, GMCA_ERR_EXISTS, "not empty", "onto a CA");
        assert_true(no_sibling(f->top, "restored"));
        assert_true(no_sibling(f->top, "ca.restore-"));

        /* Restored: the same certificates, the keys sealed as before, audited. */
        p.dir = dir;
        p.custodians = f->cust + 1;
        gmca_error_clear(&e);
        rc = gmca_key_restore(&p, &e);
        expect(rc, &e, 0, NULL, "restore");
        ca_der(f->dir, "sub", &a, &alen);
        ca_der(dir, "sub", &b, &blen);
        assert_int_equal(alen, blen);
        assert_memory_equal(a, b, alen);
        free(a);
        free(b);
        for (int i = 1; i <= 2; i++) {
                snprintf(path, sizeof(path), "%s/keys/device/key-%04d.sdk", dir, i);
                lacks_scalar(path, sc[i - 1]);
        }
        snprintf(path, sizeof(path), "%s/gmca.db", dir);
        lacks_scalar(path, sc[0]);
        {
                struct gmca_ctx *c = gmca_ctx_open(dir, "unit", &e);
                struct last l = {0};

                assert_non_null(c);
                assert_int_equal(gmca_store_audit_iter(gmca_ctx_store(c), NULL, last_cb, &l, &e),
                                 0);
                assert_string_equal(l.event, GMCA_EV_KEY_RESTORE);
                assert_non_null(strstr(l.detail, "李四"));
                rc = gmca_ctx_activate(c, f->cust + 2, 3, &e);
                expect(rc, &e, 0, NULL, "activate the restored CA");
                gmca_ctx_close(c);
        }
}

/* ---- the format ---- */

static const uint8_t test_master[GMCA_MASTER_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

static void test_header(struct gmca_kbk_header *h)
{
        memset(h, 0, sizeof(*h));
        memset(h->set.installation, 0x11, GMCA_CUSTODY_ID_LEN);
        memset(h->set.set_id, 0x22, GMCA_CUSTODY_ID_LEN);
        h->set.threshold = 3;
        h->set.count = 5;
        memset(h->check, 0x33, sizeof(h->check));
        memset(h->salt, 0x44, sizeof(h->salt));
        h->created = 1700000000;
        h->ncas = 2;
        gmca_strlcpy(h->cas[0], "root", GMCA_NAME_MAX);
        gmca_strlcpy(h->cas[1], "sub", GMCA_NAME_MAX);
        gmca_strlcpy(h->device, "unit device", sizeof(h->device));
}

struct collected {
        uint64_t bytes;
        unsigned files, keys;
        EVP_MD_CTX *md;
};

static int c_open(void *arg, const char *path, uint64_t size, struct gmca_error *e)
{
        struct collected *c = arg;

        (void)path;
        (void)size;
        (void)e;
        c->files++;
        return 0;
}

static int c_data(void *arg, const uint8_t *p, size_t n, struct gmca_error *e)
{
        struct collected *c = arg;

        (void)e;
        c->bytes += n;
        return gmca_sm3_update(c->md, p, n);
}

static int c_key(void *arg, unsigned index, const uint8_t *blob, size_t n, struct gmca_error *e)
{
        struct collected *c = arg;

        (void)e;
        (void)blob;
        c->keys += index == 7 && n == 188;
        return 0;
}

/* Write buf to a file under top and read it back as an archive; its error code. */
static int read_archive(const char *top, const uint8_t *buf, size_t len,
                        const uint8_t key[GMCA_SM4_KEY_LEN], struct collected *got,
                        struct gmca_error *e)
{
        char path[400];
        struct gmca_kbk_header h;
        struct gmca_kbk_reader *r = NULL;
        struct gmca_kbk_src src = {gmca_kbk_read, NULL};
        struct gmca_kbk_sink sink = {c_open, c_data, NULL, c_key, got};
        uint8_t sm3[GMCA_SM3_LEN];
        size_t used = 0;
        int fd, rc;

        memset(got, 0, sizeof(*got));
        got->md = gmca_sm3_new();
        snprintf(path, sizeof(path), "%s/variant", top);
        unlink(path);
        assert_int_equal(gmca_write_file_excl(path, buf, len, 0600, e), 0);
        assert_true((fd = open(path, O_RDONLY)) >= 0);
        if ((rc = gmca_kbk_header_parse(buf, len, &h, &used, e)) == 0) {
                assert_true(lseek(fd, (off_t)used, SEEK_SET) == (off_t)used);
                assert_non_null(r = gmca_kbk_reader_new(fd, buf, used, key, e));
                src.arg = r;
                if ((rc = gmca_kbk_entries(&src, &sink, e)) == 0)
                        rc = gmca_kbk_reader_finish(r, sm3, e);
        }
        gmca_kbk_reader_free(r);
        close(fd);
        return rc;
}

#define FRAME_BYTES (5 + GMCA_KBK_FRAME_MAX + GMCA_SM4_GCM_TAG_LEN)

static void test_frames(void **state)
{
        char top[] = "/tmp/gmca-test-kbk.XXXXXX", big[300], arch[300], cmd[400];
        struct gmca_kbk_header h;
        struct gmca_kbk_writer *w;
        struct gmca_error e = {0};
        struct collected got;
        uint8_t key[GMCA_SM4_KEY_LEN], wrong[GMCA_SM4_KEY_LEN], sm3[GMCA_SM3_LEN],
            want[GMCA_SM3_LEN], blob[188], *header = NULL, *buf = NULL, *v;
        size_t hlen, len, big_len = 2 * GMCA_KBK_FRAME_MAX + 12345;
        uint64_t bytes, frames;
        int fd;

        (void)state;
        assert_non_null(mkdtemp(top));
        snprintf(big, sizeof(big), "%s/big", top);
        snprintf(arch, sizeof(arch), "%s/a.kbk", top);
        /* A file spanning three frames, and a key blob. */
        {
                uint8_t *data = malloc(big_len);

                assert_int_equal(gmca_rand_bytes(data, big_len, &e), 0);
                assert_int_equal(gmca_sm3(data, big_len, want), 0);
                assert_int_equal(gmca_write_file_excl(big, data, big_len, 0600, &e), 0);
                free(data);
        }
        memset(blob, 0xB1, sizeof(blob));
        test_header(&h);
        assert_int_equal(gmca_kbk_header_encode(&h, &header, &hlen, &e), 0);
        assert_int_equal(gmca_kbk_key(test_master, h.salt, key, &e), 0);
        assert_true((fd = open(arch, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
        assert_non_null(w = gmca_kbk_writer_new(fd, header, hlen, key, &e));
        assert_int_equal(gmca_kbk_put_file(w, "certs/big.pem", big, &e), 0);
        assert_int_equal(gmca_kbk_put_key(w, 7, blob, sizeof(blob), &e), 0);
        assert_int_equal(gmca_kbk_put_file(w, "gmca.json", big, &e), 0);
        assert_int_not_equal(gmca_kbk_put_file(w, "../etc/passwd", big, &e), 0);
        assert_int_equal(gmca_kbk_finish(w, sm3, &bytes, &e), 0);
        gmca_kbk_writer_free(w);
        close(fd);
        assert_int_equal(gmca_read_file(arch, 16u << 20, &buf, &len, &e), 0);
        assert_int_equal(len, bytes);
        {
                uint8_t check[GMCA_SM3_LEN];

                assert_int_equal(gmca_sm3(buf, len, check), 0);
                assert_memory_equal(check, sm3, sizeof(check));
        }
        assert_int_equal(gmca_kbk_frames_scan(buf + hlen, len - hlen, &frames, &e), 0);
        assert_int_equal(frames, 5); /* 2 x (2 MiB + 12345) + entries: 5 frames */

        /* Whole: every byte comes back. */
        gmca_error_clear(&e);
        assert_int_equal(read_archive(top, buf, len, key, &got, &e), 0);
        assert_int_equal(got.files, 2);
        assert_int_equal(got.keys, 1);
        assert_int_equal(got.bytes, 2 * big_len);
        assert_int_equal(gmca_sm3_final(got.md, sm3), 0);

        /* Another key (another master or salt): refused. */
        memcpy(wrong, key, sizeof(wrong));
        wrong[0] ^= 1;
        gmca_error_clear(&e);
        expect(read_archive(top, buf, len, wrong, &got, &e), &e, GMCA_ERR_TAMPER,
               "does not authenticate", "wrong key");
        (void)!gmca_sm3_final(got.md, sm3);

        v = malloc(len + FRAME_BYTES);
#define VARIANT(what, vlen, msg)                                                                   \
        do {                                                                                       \
                gmca_error_clear(&e);                                                              \
                expect(read_archive(top, v, (vlen), key, &got, &e), &e, GMCA_ERR_TAMPER, msg,      \
                       what);                                                                      \
                (void)!gmca_sm3_final(got.md, sm3);                                                \
        } while (0)
        /* Frames 0 and 1 swapped (both full, so the structure still parses). */
        memcpy(v, buf, len);
        memcpy(v + hlen, buf + hlen + FRAME_BYTES, FRAME_BYTES);
        memcpy(v + hlen + FRAME_BYTES, buf + hlen, FRAME_BYTES);
        VARIANT("frames swapped", len, "frame 0");
        /* Frame 1 dropped. */
        memcpy(v, buf, hlen + FRAME_BYTES);
        memcpy(v + hlen + FRAME_BYTES, buf + hlen + 2 * FRAME_BYTES, len - hlen - 2 * FRAME_BYTES);
        VARIANT("frame dropped", len - FRAME_BYTES, "frame 1");
        /* Frame 0 repeated in place of frame 1. */
        memcpy(v, buf, len);
        memcpy(v + hlen + FRAME_BYTES, buf + hlen, FRAME_BYTES);
        VARIANT("frame repeated", len, "frame 1");
        /* Cut at a frame boundary. */
        memcpy(v, buf, len);
        VARIANT("cut after frame 1", hlen + 2 * FRAME_BYTES, "cut short");
        /* Cut after frame 1, which now claims to be the last: its tag says otherwise. */
        memcpy(v, buf, len);
        v[hlen + FRAME_BYTES] = 1;
        VARIANT("flag forged", hlen + 2 * FRAME_BYTES, "frame 1");
        /* One byte anywhere in the frames, and in the header. */
        for (size_t off = hlen; off < len; off += len / 7) {
                memcpy(v, buf, len);
                v[off] ^= 0x80;
                gmca_error_clear(&e);
                if (read_archive(top, v, len, key, &got, &e) != GMCA_ERR_TAMPER)
                        fail_msg("flipped byte at %zu: %s", off, e.msg);
                (void)!gmca_sm3_final(got.md, sm3);
        }
        memcpy(v, buf, len);
        {
                char *p = strstr((char *)v + GMCA_KBK_PREFIX_LEN, "\"created\":17");

                assert_non_null(p);
                p[11] = '2';
        }
        VARIANT("header altered", len, "frame 0");
        /* A byte after the last frame. */
        memcpy(v, buf, len);
        v[len] = 0;
        VARIANT("trailing byte", len + 1, "after the last frame");
        free(v);
        free(buf);
        free(header);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
        assert_int_equal(system(cmd), 0);
}

/* base with its first `from` replaced by `to`, into out. */
static size_t edit(const char *base, const char *from, const char *to, char *out, size_t cap)
{
        const char *at = from[0] ? strstr(base, from) : NULL;
        size_t n;

        if (at == NULL) {
                n = (size_t)snprintf(out, cap, "%s", base);
        } else {
                n = (size_t)snprintf(out, cap, "%.*s%s%s", (int)(at - base), base, to,
                                     at + strlen(from));
        }
        assert_true(n < cap);
        return n;
}

static void test_header_parse(void **state)
{
        static const struct {
                const char *from, *to;
                int want;
        } cases[] = {
            {"", "", 0},
            {"\"threshold\":3", "\"threshold\":6", GMCA_ERR_TAMPER},
            {"\"threshold\":3", "\"threshold\":1", GMCA_ERR_TAMPER},
            {"[\"root\"]", "[\"Root\"]", GMCA_ERR_TAMPER},
            {"[\"root\"]", "[]", GMCA_ERR_TAMPER},
            {"[\"root\"]", "[\"root\\u0000x\"]", GMCA_ERR_TAMPER},
            {"\"version\":1}", "\"version\":1,\"extra\":1}", GMCA_ERR_TAMPER},
            {"\"version\":1}", "\"version\":1,\"version\":1}", GMCA_ERR_TAMPER},
            {"\"version\":1}", "\"version\":2}", GMCA_ERR_TAMPER},
            {"\"salt\":\"", "\"salt\":\"0", GMCA_ERR_TAMPER},
            {"\"set\":\"A", "\"set\":\"G", GMCA_ERR_TAMPER},
            {"\"created\":1", "\"created\":-1", GMCA_ERR_TAMPER},
            {"gmca key backup", "gmca key backup 2", GMCA_ERR_TAMPER},
            {"\"device\":\"d\"", "\"device\":\"\"", GMCA_ERR_TAMPER},
            {"{", "[1,2]", GMCA_ERR_TAMPER},
        };
        char hex16[33], hex32[65], base[1024], json[1024];
        uint8_t buf[1100];
        struct gmca_kbk_header h;
        struct gmca_error e;
        size_t used, n;

        (void)state;
        memset(hex16, 'A', 32);
        hex16[32] = '\0';
        memset(hex32, '0', 64);
        hex32[64] = '\0';
        snprintf(base, sizeof(base),
                 "{\"cas\":[\"root\"],\"check\":\"%s\",\"count\":5,\"created\":1,\"device\":\"d\","
                 "\"format\":\"gmca key backup\",\"installation\":\"%s\",\"salt\":\"%s\","
                 "\"set\":\"%s\",\"threshold\":3,\"version\":1}",
                 hex32, hex16, hex32, hex16);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                n = edit(base, cases[i].from, cases[i].to, json, sizeof(json));
                memcpy(buf, GMCA_KBK_MAGIC, 8);
                buf[8] = buf[9] = buf[10] = 0;
                buf[11] = 1;
                buf[12] = buf[13] = 0;
                buf[14] = (uint8_t)(n >> 8);
                buf[15] = (uint8_t)n;
                memcpy(buf + 16, json, n);
                gmca_error_clear(&e);
                if (gmca_kbk_header_parse(buf, 16 + n, &h, &used, &e) != cases[i].want)
                        fail_msg("case %zu: %s", i, e.msg);
                if (cases[i].want != 0)
                        continue;
                assert_int_equal(used, 16 + n);
                assert_int_equal(h.set.threshold, 3);
                assert_string_equal(h.cas[0], "root");
                /* cut anywhere: damage */
                for (size_t cut = 8; cut < 16 + n; cut += 7) {
                        gmca_error_clear(&e);
                        assert_int_equal(gmca_kbk_header_parse(buf, cut, &h, &used, &e),
                                         GMCA_ERR_TAMPER);
                }
                /* another format altogether */
                buf[0] = 'X';
                gmca_error_clear(&e);
                assert_int_equal(gmca_kbk_header_parse(buf, 16 + n, &h, &used, &e),
                                 GMCA_ERR_INVALID);
        }
}

static void test_paths(void **state)
{
        static const struct {
                const char *path;
                int ok;
        } cases[] = {
            {"gmca.json", 1},
            {"gmca.db", 1},
            {"profiles/a.json", 1},
            {"certs/sub.pem", 1},
            {"crl/sub/12.crl", 1},
            {"keys/archive/root-1.sdk", 1},
            {"keys/device/key-0001.sdk", 0},
            {"keys/archive", 0},
            {"gmca.db/x", 0},
            {"run/engine.sock", 0},
            {"/etc/passwd", 0},
            {"certs/../gmca.db", 0},
            {"certs//a", 0},
            {"certs/.hidden", 0},
            {"certs/a b", 0},
            {"profiles", 0},
            {"", 0},
            {"crl/a/b/c/d/e/f", 0},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (gmca_kbk_path_ok(cases[i].path) != cases[i].ok)
                        fail_msg("path \"%s\": want %d", cases[i].path, cases[i].ok);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_resplit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backup_restore, setup, teardown),
            cmocka_unit_test(test_frames),
            cmocka_unit_test(test_header_parse),
            cmocka_unit_test(test_paths),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
