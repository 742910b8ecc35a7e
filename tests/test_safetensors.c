/*
 * test_safetensors.c - safetensors files: round trips, the exact bytes of a
 * small file, atomic replacement, a table of damaged files, and (when
 * /usr/bin/python3 has numpy and torch) a check in both directions against an
 * independent Python reader and writer (tests/torch/check_safetensors.py).
 */
#include "test.h"
#include "../src/io/json.h"
#include "../src/io/safetensors.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

/* A fresh directory under /tmp, removed by rmtree(). */
static int make_tmpdir(char *dir, size_t size)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(dir, size, "%s/nb_st_XXXXXX", base);
    if (!mkdtemp(dir)) {
        nb_test_fail(__FILE__, __LINE__, "mkdtemp(%s): %s", dir, strerror(errno));
        return 0;
    }
    return 1;
}

static void rmtree(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "    note: could not remove %s\n", dir);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(bytes, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Reads a whole file (malloc'd); NULL if it cannot. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (n == cap) buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A safetensors file made by hand: the length, the header text as given, then
 * `data` (datalen bytes). */
static int write_st(const char *path, const char *header, const void *data, size_t datalen)
{
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + datalen + 1);
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(buf + 8, header, hl);
    if (datalen) memcpy(buf + 8 + hl, data, datalen);
    int ok = write_file(path, buf, 8 + hl + datalen);
    free(buf);
    return ok;
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* ---- the tensors of the round trip and of the Python check ------------- */

static const char *META_NOTE =
    "quote \" backslash \\ newline \n tab \t ctrl \x01 e-acute \xc3\xa9 "
    "nihon \xe6\x97\xa5\xe6\x9c\xac smile \xf0\x9f\x99\x82 end";

/* w F32 [2,3], step I64 [], b F32 [1], conv F32 [2,1,2,3], ids I64 [3] (at a
 * data offset that is not a multiple of 8), empty F32 [0,4] */
static nb_st_writer *make_writer(void)
{
    float w[6], b[1] = {3.5f}, conv[12];
    int64_t step = 1234567890123LL;
    int64_t ids[3] = {-1, 0, ((int64_t)1 << 40) + 7};
    for (int i = 0; i < 6; i++) w[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 12; i++) conv[i] = (float)(i - 6) / 8.0f;
    nb_st_writer *wr = nb_st_writer_create();
    if (!wr) return NULL;
    int64_t s_w[2] = {2, 3}, s_b[1] = {1}, s_conv[4] = {2, 1, 2, 3}, s_ids[1] = {3},
            s_empty[2] = {0, 4};
    CHECK_OK(nb_st_add(wr, "w", NB_DTYPE_F32, 2, s_w, w));
    CHECK_OK(nb_st_add(wr, "step", NB_DTYPE_I64, 0, NULL, &step));
    CHECK_OK(nb_st_add(wr, "b", NB_DTYPE_F32, 1, s_b, b));
    CHECK_OK(nb_st_add(wr, "conv", NB_DTYPE_F32, 4, s_conv, conv));
    CHECK_OK(nb_st_add(wr, "ids", NB_DTYPE_I64, 1, s_ids, ids));
    CHECK_OK(nb_st_add(wr, "empty", NB_DTYPE_F32, 2, s_empty, NULL));
    CHECK_OK(nb_st_set_meta(wr, "note", "replaced below"));
    CHECK_OK(nb_st_set_meta(wr, "note", META_NOTE));
    CHECK_OK(nb_st_set_meta(wr, "format", "pt"));
    return wr;
}

static void check_tensor(const nb_st_file *f, const char *name, nb_dtype dtype, int ndim,
                         const int64_t *shape, const void *want, size_t bytes)
{
    nb_dtype dt = (nb_dtype)-1;
    int nd = -1;
    int64_t sh[NB_MAX_DIMS];
    const void *p = nb_st_find(f, name, &dt, &nd, sh);
    if (!p) {
        nb_test_fail(__FILE__, __LINE__, "tensor '%s' not found", name);
        return;
    }
    CHECK(dt == dtype);
    CHECK(nd == ndim);
    for (int i = 0; i < ndim && nd == ndim; i++) CHECK(sh[i] == shape[i]);
    /* every pointer is aligned for its element type */
    CHECK((uintptr_t)p % (dtype == NB_DTYPE_I64 ? 8 : 4) == 0);
    if (bytes && memcmp(p, want, bytes) != 0)
        nb_test_fail(__FILE__, __LINE__, "tensor '%s': values differ", name);
}

static void check_reader(const nb_st_file *f)
{
    float w[6], b[1] = {3.5f}, conv[12];
    int64_t step = 1234567890123LL;
    int64_t ids[3] = {-1, 0, ((int64_t)1 << 40) + 7};
    for (int i = 0; i < 6; i++) w[i] = (float)i * 0.25f - 1.0f;
    for (int i = 0; i < 12; i++) conv[i] = (float)(i - 6) / 8.0f;
    int64_t s_w[2] = {2, 3}, s_b[1] = {1}, s_conv[4] = {2, 1, 2, 3}, s_ids[1] = {3},
            s_empty[2] = {0, 4};
    static const char *const names[] = {"w", "step", "b", "conv", "ids", "empty"};
    CHECK(nb_st_count(f) == 6);
    for (int i = 0; i < 6 && i < nb_st_count(f); i++) CHECK(strcmp(nb_st_name(f, i), names[i]) == 0);
    CHECK(nb_st_name(f, 6) == NULL && nb_st_name(f, -1) == NULL);
    check_tensor(f, "w", NB_DTYPE_F32, 2, s_w, w, sizeof w);
    check_tensor(f, "step", NB_DTYPE_I64, 0, NULL, &step, sizeof step);
    check_tensor(f, "b", NB_DTYPE_F32, 1, s_b, b, sizeof b);
    check_tensor(f, "conv", NB_DTYPE_F32, 4, s_conv, conv, sizeof conv);
    check_tensor(f, "ids", NB_DTYPE_I64, 1, s_ids, ids, sizeof ids);
    check_tensor(f, "empty", NB_DTYPE_F32, 2, s_empty, NULL, 0);
    CHECK(nb_st_find(f, "missing", NULL, NULL, NULL) == NULL);
    CHECK(nb_st_find(f, "", NULL, NULL, NULL) == NULL);
    const char *note = nb_st_meta(f, "note");
    CHECK(note && strcmp(note, META_NOTE) == 0);
    CHECK(nb_st_meta(f, "format") && strcmp(nb_st_meta(f, "format"), "pt") == 0);
    CHECK(nb_st_meta(f, "absent") == NULL);
}

/* ---- tests --------------------------------------------------------------- */

NB_TEST(test_safetensors_roundtrip)
{
    char dir[512], path[1024];
    if (!make_tmpdir(dir, sizeof dir)) return;
    path_in(path, sizeof path, dir, "model.safetensors");
    nb_st_writer *w = make_writer();
    CHECK_PTR(w);
    if (w) {
        CHECK_OK(nb_st_write(w, path));
        nb_st_file *f = nb_st_read(path);
        CHECK_PTR(f);
        if (f) check_reader(f);
        nb_st_free(f);
        /* the header length is a multiple of 8, so the data starts 8-aligned */
        size_t len = 0;
        unsigned char *bytes = read_file(path, &len);
        CHECK(bytes && len >= 8);
        if (bytes && len >= 8) {
            uint64_t n = 0;
            for (int k = 0; k < 8; k++) n |= (uint64_t)bytes[k] << (8 * k);
            CHECK(n % 8 == 0);
            CHECK(len == 8 + n + 24 + 8 + 4 + 48 + 24 + 0);
        }
        free(bytes);
    }
    nb_st_writer_free(w);

    /* an empty writer makes a valid empty file */
    nb_st_writer *e = nb_st_writer_create();
    CHECK_OK(nb_st_write(e, path));
    nb_st_writer_free(e);
    nb_st_file *f = nb_st_read(path);
    CHECK_PTR(f);
    CHECK(nb_st_count(f) == 0 && nb_st_meta(f, "format") == NULL);
    nb_st_free(f);
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    CHECK(bytes && len == 16 && memcmp(bytes, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
    free(bytes);
    rmtree(dir);
}

NB_TEST(test_safetensors_writer_args)
{
    nb_st_writer *w = nb_st_writer_create();
    int64_t s1[1] = {2}, neg[1] = {-1}, huge[3] = {INT64_MAX, INT64_MAX, 4};
    float x[2] = {1, 2};
    CHECK_OK(nb_st_add(w, "x", NB_DTYPE_F32, 1, s1, x));
    CHECK(nb_st_add(w, "x", NB_DTYPE_F32, 1, s1, x) == NB_ERR_ARG);
    CHECK(strstr(nb_last_error(), "duplicate") != NULL);
    CHECK(nb_st_add(w, "", NB_DTYPE_F32, 1, s1, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "__metadata__", NB_DTYPE_F32, 1, s1, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "bad\xff", NB_DTYPE_F32, 1, s1, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "n", NB_DTYPE_F32, 1, neg, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "h", NB_DTYPE_F32, 3, huge, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "d", (nb_dtype)7, 1, s1, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "m", NB_DTYPE_F32, NB_MAX_DIMS + 1, s1, x) == NB_ERR_ARG);
    CHECK(nb_st_add(w, "z", NB_DTYPE_F32, 1, s1, NULL) == NB_ERR_ARG);
    CHECK(nb_st_add(NULL, "z", NB_DTYPE_F32, 1, s1, x) == NB_ERR_ARG);
    CHECK(nb_st_set_meta(w, "k", "\xc3") == NB_ERR_ARG);
    CHECK(nb_st_set_meta(w, NULL, "v") == NB_ERR_ARG);
    CHECK(nb_st_write(w, NULL) == NB_ERR_ARG);
    CHECK(nb_st_write(NULL, "x") == NB_ERR_ARG);
    nb_st_writer_free(w);
    nb_st_writer_free(NULL);
    nb_st_free(NULL);
    CHECK(nb_st_count(NULL) == 0);
    CHECK(nb_st_read(NULL) == NULL);
}

/* The bytes of a tiny file, written out by hand. Metadata keys come out
 * sorted, tensors in the order added, the header padded with spaces. */
NB_TEST(test_safetensors_exact_bytes)
{
    char dir[512], path[1024];
    if (!make_tmpdir(dir, sizeof dir)) return;
    path_in(path, sizeof path, dir, "tiny.safetensors");
    nb_st_writer *w = nb_st_writer_create();
    float x[2] = {1.0f, -2.0f};
    int64_t n = 258, s_x[1] = {2};
    CHECK_OK(nb_st_add(w, "x", NB_DTYPE_F32, 1, s_x, x));
    CHECK_OK(nb_st_add(w, "n", NB_DTYPE_I64, 0, NULL, &n));
    CHECK_OK(nb_st_set_meta(w, "b", "x\"y"));
    CHECK_OK(nb_st_set_meta(w, "a", "1"));
    CHECK_OK(nb_st_write(w, path));
    nb_st_writer_free(w);

    static const char header[] =
        "{\"__metadata__\":{\"a\":\"1\",\"b\":\"x\\\"y\"},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}"
        " "; /* 143 bytes of JSON + 1 space = 144 */
    unsigned char want[8 + 144 + 16];
    CHECK(sizeof header - 1 == 144);
    memcpy(want, "\x90\0\0\0\0\0\0\0", 8);
    memcpy(want + 8, header, 144);
    memcpy(want + 152, "\x00\x00\x80\x3f\x00\x00\x00\xc0" "\x02\x01\0\0\0\0\0\0", 16);
    size_t len = 0;
    unsigned char *got = read_file(path, &len);
    CHECK(got != NULL);
    CHECK(len == sizeof want);
    if (got && len == sizeof want && memcmp(got, want, len) != 0) {
        for (size_t i = 0; i < len; i++)
            if (got[i] != want[i]) {
                nb_test_fail(__FILE__, __LINE__, "byte %zu is 0x%02x, expected 0x%02x", i, got[i],
                             want[i]);
                break;
            }
    }
    free(got);

    /* and it reads back */
    nb_st_file *f = nb_st_read(path);
    CHECK_PTR(f);
    if (f) {
        const float *px = nb_st_find(f, "x", NULL, NULL, NULL);
        const int64_t *pn = nb_st_find(f, "n", NULL, NULL, NULL);
        CHECK(px && px[0] == 1.0f && px[1] == -2.0f);
        CHECK(pn && *pn == 258);
        CHECK(nb_st_meta(f, "b") && strcmp(nb_st_meta(f, "b"), "x\"y") == 0);
    }
    nb_st_free(f);
    rmtree(dir);
}

NB_TEST(test_safetensors_atomic_write)
{
    char dir[512], path[1024], tmp[1100];
    if (!make_tmpdir(dir, sizeof dir)) return;
    path_in(path, sizeof path, dir, "ckpt.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(write_file(path, "old contents", 12));

    float a[3] = {1, 2, 3}, b[1] = {9};
    int64_t s3[1] = {3}, s1[1] = {1};
    nb_st_writer *w = nb_st_writer_create();
    CHECK_OK(nb_st_add(w, "a", NB_DTYPE_F32, 1, s3, a));
    CHECK_OK(nb_st_write(w, path));
    CHECK(!file_exists(tmp));
    nb_st_file *f = nb_st_read(path);
    CHECK_PTR(f);
    CHECK(nb_st_count(f) == 1);
    nb_st_free(f);

    /* replace it again with other contents */
    nb_st_writer *w2 = nb_st_writer_create();
    CHECK_OK(nb_st_add(w2, "b", NB_DTYPE_F32, 1, s1, b));
    CHECK_OK(nb_st_write(w2, path));
    CHECK(!file_exists(tmp));
    f = nb_st_read(path);
    CHECK_PTR(f);
    CHECK(nb_st_count(f) == 1 && nb_st_find(f, "a", NULL, NULL, NULL) == NULL);
    const float *pb = nb_st_find(f, "b", NULL, NULL, NULL);
    CHECK(pb && pb[0] == 9);
    nb_st_free(f);

    /* mode 0644 less the umask */
    mode_t mask = umask(0);
    umask(mask);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == (0644 & ~mask));

    /* a full disk: the temporary is a link to /dev/full, so writing fails with
     * ENOSPC; the old file stays and the temporary goes */
    if (file_exists("/dev/full") && symlink("/dev/full", tmp) == 0) {
        CHECK(nb_st_write(w, path) == NB_ERR_IO);
        CHECK(strstr(nb_last_error(), path) != NULL);
        CHECK(strstr(nb_last_error(), strerror(ENOSPC)) != NULL);
        CHECK(!file_exists(tmp));
        f = nb_st_read(path);
        CHECK_PTR(f);
        CHECK(f && nb_st_find(f, "b", NULL, NULL, NULL) != NULL);
        nb_st_free(f);
    } else {
        printf("    note: /dev/full unavailable, full-disk case not tested\n");
    }

    /* renaming over a directory fails; the temporary is removed */
    char sub[1100], subtmp[1200];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    snprintf(subtmp, sizeof subtmp, "%s.tmp", sub);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(nb_st_write(w, sub) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), sub) != NULL);
    CHECK(!file_exists(subtmp));

    nb_st_writer_free(w);
    nb_st_writer_free(w2);
    rmtree(dir);
}

NB_TEST(test_safetensors_missing_dir)
{
    char dir[512], path[1024], tmp[1100];
    if (!make_tmpdir(dir, sizeof dir)) return;
    path_in(path, sizeof path, dir, "no/such/dir/m.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    nb_st_writer *w = nb_st_writer_create();
    float x = 1;
    CHECK_OK(nb_st_add(w, "x", NB_DTYPE_F32, 0, NULL, &x));
    CHECK(nb_st_write(w, path) == NB_ERR_IO);
    CHECK(strstr(nb_last_error(), path) != NULL);
    CHECK(strstr(nb_last_error(), strerror(ENOENT)) != NULL);
    CHECK(!file_exists(path) && !file_exists(tmp));
    nb_st_writer_free(w);
    rmtree(dir);
}

/* ---- damaged files -------------------------------------------------------- */

typedef struct corrupt_case {
    const char *what;
    const char *header;     /* NULL: raw bytes below */
    size_t datalen;         /* zero bytes of data after the header */
    const char *raw;        /* when header is NULL: the whole file */
    size_t rawlen;
    const char *want;       /* a piece of the message */
} corrupt_case;

#define T(name, dtype, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const corrupt_case corrupt_cases[] = {
    {"empty file", NULL, 0, "", 0, "empty"},
    {"truncated header length", NULL, 0, "\x02\0\0\0\0", 5, "too short for the 8-byte header length"},
    {"header length larger than the file", NULL, 0, "\x40\0\0\0\0\0\0\0{}", 10, "is larger than the 2 bytes"},
    {"header length over the limit", NULL, 0, "\0\0\0\x10\0\0\0\0{}", 10, "exceeds the limit"},
    {"header not JSON", "{\"a\":", 0, NULL, 0, "not valid JSON"},
    {"header garbage after JSON", "{} x", 0, NULL, 0, "not valid JSON"},
    {"header trailing comma", "{\"a\":{},}", 0, NULL, 0, "not valid JSON"},
    {"header not an object", "[1,2]", 0, NULL, 0, "not a JSON object"},
    {"header invalid UTF-8", "{\"a\xff\":1}", 0, NULL, 0, "invalid UTF-8"},
    {"header lone surrogate", "{\"\\ud800\":1}", 0, NULL, 0, "surrogate"},
    {"header too deep", "{\"a\":{\"dtype\":[[[1]]]}}", 0, NULL, 0, "nested deeper"},
    {"entry not an object", "{\"a\":5}", 0, NULL, 0, "tensor 'a': expected an object"},
    {"unknown dtype", "{" T("a", "F16", "[2]", 0, 4) "}", 4, NULL, 0, "tensor 'a': unsupported dtype 'F16'"},
    {"dtype not a string", "{\"a\":{\"dtype\":1,\"shape\":[],\"data_offsets\":[0,4]}}", 4, NULL, 0, "dtype is not a string"},
    {"missing key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, NULL, 0, "missing \"data_offsets\""},
    {"unknown key", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, NULL, 0, "unknown key 'x'"},
    {"duplicate key", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, NULL, 0, "duplicate key 'dtype'"},
    {"offsets outside the data", "{" T("a", "F32", "[2]", 0, 8) "}", 4, NULL, 0, "tensor 'a': data_offsets [0, 8] extend past the end of the data (4 bytes"},
    {"offsets reversed", "{" T("a", "F32", "[1]", 4, 0) "}", 4, NULL, 0, "end before they begin"},
    {"offsets not two integers", "{" "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}" "}", 4, NULL, 0, "two non-negative integers"},
    {"offsets beyond int64", "{" T("a", "F32", "[1]", 0, 18446744073709551615) "}", 4, NULL, 0, "two non-negative integers"},
    {"overlapping tensors", "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12) "}", 12, NULL, 0, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]"},
    {"a hole", "{" T("a", "F32", "[1]", 0, 4) "," T("b", "F32", "[1]", 8, 12) "}", 12, NULL, 0, "data bytes [4, 8)"},
    {"a hole at the start", "{" T("a", "F32", "[1]", 4, 8) "}", 8, NULL, 0, "data bytes [0, 4)"},
    {"trailing data", "{" T("a", "F32", "[1]", 0, 4) "}", 8, NULL, 0, "trailing bytes"},
    {"data but no tensors", "{}", 8, NULL, 0, "trailing bytes"},
    {"shape/size mismatch", "{" T("0.weight", "F32", "[3,4]", 0, 100) "}", 100, NULL, 0,
     "tensor '0.weight': data_offsets [0, 100] do not match shape [3,4] of F32 (48 bytes)"},
    {"I64 size mismatch", "{" T("a", "I64", "[2]", 0, 8) "}", 8, NULL, 0, "do not match shape [2] of I64 (16 bytes)"},
    {"negative dim", "{" T("a", "F32", "[-1]", 0, 0) "}", 0, NULL, 0, "shape[0] is negative"},
    {"fractional dim", "{" T("a", "F32", "[2.0]", 0, 8) "}", 8, NULL, 0, "shape[0] is not an integer"},
    {"too many dims", "{" T("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, NULL, 0, "shape has 9 axes"},
    {"shape overflow", "{" T("a", "F32", "[4294967296,4294967296,4]", 0, 4) "}", 4, NULL, 0, "overflows"},
    {"shape not an array", "{" T("a", "F32", "3", 0, 12) "}", 12, NULL, 0, "shape is not an array"},
    {"duplicate names", "{" T("a", "F32", "[1]", 0, 4) "," T("a", "F32", "[1]", 4, 8) "}", 8, NULL, 0, "duplicate tensor name 'a'"},
    {"empty name", "{" T("", "F32", "[1]", 0, 4) "}", 4, NULL, 0, "empty name"},
    {"NUL in a name", "{" T("a\\u0000b", "F32", "[1]", 0, 4) "}", 4, NULL, 0, "NUL"},
    {"metadata value not a string", "{\"__metadata__\":{\"k\":1}}", 0, NULL, 0, "metadata 'k': the value is not a string"},
    {"metadata not an object", "{\"__metadata__\":[\"k\"]}", 0, NULL, 0, "is not an object of strings"},
    {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, NULL, 0, "duplicate metadata key 'k'"},
    {"duplicate metadata", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, NULL, 0, "duplicate \"__metadata__\""},
};

NB_TEST(test_safetensors_corrupt_files)
{
    char dir[512], path[1024];
    if (!make_tmpdir(dir, sizeof dir)) return;
    static const unsigned char zeros[128];
    for (size_t i = 0; i < sizeof corrupt_cases / sizeof corrupt_cases[0]; i++) {
        const corrupt_case *c = &corrupt_cases[i];
        snprintf(path, sizeof path, "%s/case%02zu.safetensors", dir, i);
        int ok = c->header ? write_st(path, c->header, zeros, c->datalen)
                           : write_file(path, c->raw, c->rawlen);
        if (!ok) {
            nb_test_fail(__FILE__, __LINE__, "%s: cannot write %s", c->what, path);
            continue;
        }
        nb_st_file *f = (nb_st_file *)1;
        nb_status st = nb_st_read_ex(path, &f);
        if (st != NB_ERR_FORMAT || f != NULL)
            nb_test_fail(__FILE__, __LINE__, "%s: status %s, expected format error (%s)", c->what,
                         nb_status_str(st), nb_last_error());
        if (!strstr(nb_last_error(), path) || !strstr(nb_last_error(), c->want))
            nb_test_fail(__FILE__, __LINE__, "%s: message \"%s\" lacks the path or \"%s\"", c->what,
                         nb_last_error(), c->want);
        nb_st_free(f == (nb_st_file *)1 ? NULL : f);
    }

    /* the exact message of the documentation */
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, "{" T("0.weight", "F32", "[3,4]", 0, 100) "}", zeros, 100);
    CHECK(nb_st_read(path) == NULL);
    char want[1200];
    snprintf(want, sizeof want,
             "%s: tensor '0.weight': data_offsets [0, 100] do not match shape [3,4] of F32 (48 bytes)", path);
    if (strcmp(nb_last_error(), want) != 0)
        nb_test_fail(__FILE__, __LINE__, "message \"%s\"", nb_last_error());

    /* truncated data: a good file cut short */
    nb_st_writer *w = make_writer();
    CHECK_OK(nb_st_write(w, path));
    nb_st_writer_free(w);
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    CHECK(bytes && len > 10);
    if (bytes && len > 10) {
        CHECK(write_file(path, bytes, len - 3));
        nb_st_file *f = NULL;
        CHECK(nb_st_read_ex(path, &f) == NB_ERR_FORMAT && !f);
        CHECK(strstr(nb_last_error(), "past the end of the data") != NULL);
        /* and with the header cut */
        CHECK(write_file(path, bytes, 20));
        CHECK(nb_st_read_ex(path, &f) == NB_ERR_FORMAT && !f);
        CHECK(strstr(nb_last_error(), "larger than the 12 bytes") != NULL);
    }
    free(bytes);

    /* not files at all */
    nb_st_file *f = NULL;
    CHECK(nb_st_read_ex(dir, &f) == NB_ERR_IO && !f);
    CHECK(strstr(nb_last_error(), dir) != NULL && strstr(nb_last_error(), strerror(EISDIR)) != NULL);
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    CHECK(nb_st_read_ex(path, &f) == NB_ERR_IO && !f);
    CHECK(strstr(nb_last_error(), path) != NULL && strstr(nb_last_error(), strerror(ENOENT)) != NULL);
    rmtree(dir);
}

/* Well-formed files the writer would not make: whitespace, escapes,
 * unpadded headers, tensors listed out of data order, null metadata. */
NB_TEST(test_safetensors_foreign_layouts)
{
    char dir[512], path[1024];
    if (!make_tmpdir(dir, sizeof dir)) return;
    snprintf(path, sizeof path, "%s/f.safetensors", dir);
    /* data: b = int64 -5 at [0, 8), a = float 2.5 at [8, 12), c = int64 7 at [12, 20) */
    unsigned char data[20] = {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0x00, 0x00, 0x20, 0x40,
                              7, 0, 0, 0, 0, 0, 0, 0};
    const char *header =
        " {\n \"a\" : {\"shape\": [ ], \"data_offsets\": [8, 12], \"dtype\": \"F32\"},\n"
        "\t\"\\u00e9\\ud83d\\ude42\\/\\\"\": {\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},\r\n"
        " \"z\": {\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[12,20]},"
        " \"e\": {\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[20,20]},"
        " \"__metadata__\": null } ";
    CHECK(write_st(path, header, data, sizeof data));
    nb_st_file *f = nb_st_read(path);
    CHECK_PTR(f);
    if (f) {
        CHECK(nb_st_count(f) == 4);
        const char *odd = "\xc3\xa9\xf0\x9f\x99\x82/\"";
        CHECK(nb_st_name(f, 1) && strcmp(nb_st_name(f, 1), odd) == 0);
        const float *a = nb_st_find(f, "a", NULL, NULL, NULL);
        const int64_t *b = nb_st_find(f, odd, NULL, NULL, NULL);
        const int64_t *z = nb_st_find(f, "z", NULL, NULL, NULL);
        CHECK(a && *a == 2.5f);
        CHECK(b && *b == -5);
        CHECK(z && *z == 7 && (uintptr_t)z % 8 == 0);
        CHECK(nb_st_find(f, "e", NULL, NULL, NULL) != NULL);
        CHECK(nb_st_meta(f, "x") == NULL);
    }
    nb_st_free(f);
    rmtree(dir);
}

/* ---- the JSON reader and writer underneath ------------------------------- */

static int json_ok(const char *text, nb_json_doc *d)
{
    nb_json_error e;
    return nb_json_parse(text, strlen(text), 8, d, &e) == NB_OK;
}

static int json_bad(const char *text, size_t len, const char *want)
{
    nb_json_doc d;
    nb_json_error e;
    nb_status st = nb_json_parse(text, len, 3, &d, &e);
    if (st == NB_OK) nb_json_doc_free(&d);
    if (st != NB_ERR_FORMAT || !strstr(e.msg, want)) {
        nb_test_fail(__FILE__, __LINE__, "JSON \"%.*s\": status %d, message \"%s\", expected \"%s\"",
                     (int)len, text, (int)st, e.msg, want);
        return 0;
    }
    return 1;
}

NB_TEST(test_safetensors_json_parser)
{
    nb_json_doc d;
    CHECK(json_ok(" [0, -0, 9223372036854775807, -9223372036854775808, 9223372036854775808, "
                  "1.5, 1e3, -2E-2, true, false, null, \"\", {}] ", &d));
    CHECK(d.n == 14 && d.v[0].type == NB_JSON_ARRAY && d.v[0].count == 13 && d.v[0].end == 14);
    CHECK(d.v[1].type == NB_JSON_INT && d.v[1].u.i == 0);
    CHECK(d.v[2].type == NB_JSON_INT && d.v[2].u.i == 0);
    CHECK(d.v[3].type == NB_JSON_INT && d.v[3].u.i == INT64_MAX);
    CHECK(d.v[4].type == NB_JSON_INT && d.v[4].u.i == INT64_MIN);
    CHECK(d.v[5].type == NB_JSON_NUMBER && d.v[6].type == NB_JSON_NUMBER);
    CHECK(d.v[7].type == NB_JSON_NUMBER && d.v[8].type == NB_JSON_NUMBER);
    CHECK(d.v[9].type == NB_JSON_TRUE && d.v[10].type == NB_JSON_FALSE && d.v[11].type == NB_JSON_NULL);
    CHECK(d.v[12].type == NB_JSON_STRING && d.v[12].count == 0 && d.v[12].u.s[0] == 0);
    CHECK(d.v[13].type == NB_JSON_OBJECT && d.v[13].count == 0);
    nb_json_doc_free(&d);

    /* escapes, \u to UTF-8 (1 to 4 bytes), pre-order layout of objects */
    CHECK(json_ok("{\"k\\n\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude42\\u0000x\","
                  "\"o\":{\"a\":[1,[2]]},\"z\":3}", &d));
    CHECK(d.v[0].count == 3);
    CHECK(d.v[1].type == NB_JSON_STRING && strcmp(d.v[1].u.s, "k\n") == 0);
    static const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82\0x";
    CHECK(d.v[2].count == sizeof want - 1 && memcmp(d.v[2].u.s, want, sizeof want) == 0);
    CHECK(d.v[3].type == NB_JSON_STRING && strcmp(d.v[3].u.s, "o") == 0);
    CHECK(d.v[4].type == NB_JSON_OBJECT && d.v[4].end == 10); /* o, a, [1,[2]]: 4..9 */
    CHECK(d.v[d.v[4].end].type == NB_JSON_STRING && strcmp(d.v[d.v[4].end].u.s, "z") == 0);
    CHECK(d.v[11].type == NB_JSON_INT && d.v[11].u.i == 3 && d.n == 12);
    nb_json_doc_free(&d);

    /* strictness; the length bounds every read (no NUL terminator needed) */
    json_bad("{\"a\":1}", 6, "expected ',' or '}'");
    json_bad("\"abc", 4, "unterminated string");
    json_bad("[1,]", 4, "expected a JSON value");
    json_bad("[01]", 4, "leading zeros");
    json_bad("[1.]", 4, "after the decimal point");
    json_bad("[1e]", 4, "exponent");
    json_bad("[-]", 3, "a digit");
    json_bad("[+1]", 4, "expected a JSON value");
    json_bad("[nul]", 5, "expected a JSON value");
    json_bad("[\"\\u12\"]", 8, "hexadecimal");
    json_bad("[\"\\u12", 6, "truncated");
    json_bad("[\"\\ude00\"]", 10, "unpaired low surrogate");
    json_bad("[\"\\ud800\\u0041\"]", 16, "not followed by a low one");
    json_bad("[\"\\q\"]", 6, "unknown escape");
    json_bad("[\"\t\"]", 5, "control character");
    json_bad("[\"\xc0\xaf\"]", 6, "invalid UTF-8");        /* overlong '/' */
    json_bad("[\"\xed\xa0\x80\"]", 7, "invalid UTF-8");    /* surrogate */
    json_bad("[\"\xf4\x90\x80\x80\"]", 8, "invalid UTF-8"); /* above U+10FFFF */
    json_bad("[\"\xe2\x82\"]", 6, "invalid UTF-8");        /* cut short */
    json_bad("[[[[1]]]]", 9, "nested deeper than 3");
    json_bad("{1:2}", 5, "a string key");
    json_bad("{\"a\" 2}", 7, "':'");
    json_bad("1 2", 3, "nothing but whitespace");
    json_bad("", 0, "expected a JSON value");
    json_bad("[1]\0", 4, "nothing but whitespace");
    json_bad("/*c*/1", 6, "expected a JSON value");

    /* the escaper's output parses back to the same bytes */
    nb_jbuf b = {0};
    static const char raw[] = "q\" b\\ nl\n cr\r tab\t bs\b ff\f c1\x01 c1f\x1f del\x7f \xc3\xa9\xf0\x9f\x99\x82 /";
    CHECK(nb_jbuf_string(&b, raw, sizeof raw - 1) == 0);
    CHECK(nb_jbuf_put(&b, "", 1) == 0);
    CHECK(b.p && strcmp(b.p, "\"q\\\" b\\\\ nl\\n cr\\r tab\\t bs\\b ff\\f c1\\u0001 c1f\\u001f del\x7f "
                             "\xc3\xa9\xf0\x9f\x99\x82 /\"") == 0);
    nb_json_error e;
    CHECK(nb_json_parse(b.p, b.len - 1, 1, &d, &e) == NB_OK);
    CHECK(d.n == 1 && d.v[0].count == sizeof raw - 1 && memcmp(d.v[0].u.s, raw, sizeof raw) == 0);
    nb_json_doc_free(&d);
    nb_jbuf_release(&b);
    CHECK(nb_json_utf8_valid("\xc3\xa9", 2) && !nb_json_utf8_valid("\xc3", 1) &&
          !nb_json_utf8_valid("\xff", 1) && nb_json_utf8_valid("", 0));
}

/* ---- PyTorch ---------------------------------------------------------------- */

static void check_python_file(const char *path)
{
    nb_st_file *f = nb_st_read(path);
    CHECK_PTR(f);
    if (!f) return;
    /* see tests/torch/check_safetensors.py, write_own() */
    CHECK(nb_st_count(f) == 4);
    nb_dtype dt;
    int nd;
    int64_t sh[NB_MAX_DIMS];
    const float *x = nb_st_find(f, "py.x", &dt, &nd, sh);
    CHECK(x && dt == NB_DTYPE_F32 && nd == 2 && sh[0] == 3 && sh[1] == 2);
    for (int i = 0; x && i < 6; i++) CHECK(x[i] == (float)i * 1.5f - 2.0f);
    const float *s = nb_st_find(f, "py.scalar", &dt, &nd, sh);
    CHECK(s && dt == NB_DTYPE_F32 && nd == 0 && *s == 0.1f);
    const float *big = nb_st_find(f, "py.big", &dt, &nd, sh);
    CHECK(big && nd == 3 && sh[0] == 4 && sh[1] == 5 && sh[2] == 6);
    for (int i = 0; big && i < 120; i++) CHECK(big[i] == (float)((i * 7) % 11) / 4.0f);
    const int64_t *ids = nb_st_find(f, "py.ids", &dt, &nd, sh);
    CHECK(ids && dt == NB_DTYPE_I64 && nd == 1 && sh[0] == 4 && (uintptr_t)ids % 8 == 0);
    if (ids) {
        CHECK(ids[0] == 5 && ids[1] == -6 && ids[2] == (int64_t)1 << 62 && ids[3] == INT64_MIN);
    }
    CHECK(nb_st_meta(f, "producer") && strcmp(nb_st_meta(f, "producer"), "check_safetensors.py") == 0);
    CHECK(nb_st_meta(f, "unicode") &&
          strcmp(nb_st_meta(f, "unicode"), "\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82") == 0);
    CHECK(nb_st_meta(f, "escapes") && strcmp(nb_st_meta(f, "escapes"), "a\"b\\c\nd\x01") == 0);
    nb_st_free(f);
}

NB_TEST(test_safetensors_pytorch)
{
    const char *py = "/usr/bin/python3", *script = "tests/torch/check_safetensors.py";
    int in_ci = getenv("CI") && *getenv("CI");
    if (access(py, X_OK) != 0 || access(script, R_OK) != 0) {
        if (in_ci) nb_test_fail(__FILE__, __LINE__, "%s or %s missing in CI", py, script);
        else printf("    note: %s or %s missing: PyTorch check skipped\n", py, script);
        return;
    }
    char dir[512], path[1024], back[1024], ref[1100], cmd[4096];
    if (!make_tmpdir(dir, sizeof dir)) return;
    path_in(path, sizeof path, dir, "nabla.safetensors");
    path_in(back, sizeof back, dir, "python.safetensors");
    snprintf(ref, sizeof ref, "%s.ref", back);
    nb_st_writer *w = make_writer();
    CHECK_OK(nb_st_write(w, path));
    nb_st_writer_free(w);
    snprintf(cmd, sizeof cmd, "%s %s '%s' '%s'", py, script, path, back);
    fflush(stdout);
    int rc = system(cmd);
    int code = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 2) {
        if (in_ci) nb_test_fail(__FILE__, __LINE__, "numpy or torch missing from %s in CI", py);
        else printf("    note: numpy or torch missing from %s: PyTorch check skipped\n", py);
    } else if (code != 0) {
        nb_test_fail(__FILE__, __LINE__, "%s exited with status %d", cmd, code);
    } else {
        check_python_file(back);
        if (file_exists(ref)) check_python_file(ref); /* written by the safetensors package */
    }
    rmtree(dir);
}
