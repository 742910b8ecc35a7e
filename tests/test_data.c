/*
 * test_data.c - data sets: IDX files (raw and gzip) and their damaged
 * variants, CSV files and their mistakes, the synthetic sets, statistics,
 * the seeded split and the mini-batch loader. Files are written into a fresh
 * directory under /tmp and removed afterwards.
 */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NB_HAVE_ZLIB
#include <zlib.h>
#endif

/* ---- scratch files --------------------------------------------------- */

typedef struct tmpdir {
    char dir[64];
    char path[256]; /* the last path made by tmp_path */
} tmpdir;

static int tmp_open(tmpdir *t)
{
    strcpy(t->dir, "/tmp/nabla-test-data-XXXXXX");
    if (!mkdtemp(t->dir)) {
        nb_test_fail(__FILE__, __LINE__, "mkdtemp failed");
        return 0;
    }
    return 1;
}

static const char *tmp_path(tmpdir *t, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

/* Removes every file in the directory, then the directory. */
static void tmp_close(tmpdir *t)
{
    DIR *d = opendir(t->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", t->dir, e->d_name);
            if (remove(p) != 0) rmdir(p);
        }
        closedir(d);
    }
    rmdir(t->dir);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) nb_test_fail(__FILE__, __LINE__, "cannot write %s", path);
    if (f) fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

#ifdef NB_HAVE_ZLIB
static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    if (!g || gzwrite(g, data, (unsigned)n) != (int)n) nb_test_fail(__FILE__, __LINE__, "cannot write %s", path);
    if (g) gzclose(g);
}
#endif

/* Checks that the last error contains `want`, and reports it otherwise. */
#define CHECK_ERR(want) \
    do { if (!strstr(nb_last_error(), (want))) \
             nb_test_fail(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", nb_last_error(), (want)); \
    } while (0)

/* ---- IDX ---------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

#define IMG_N 5
#define IMG_R 3
#define IMG_C 4
static const unsigned char test_labels[IMG_N] = {0, 3, 9, 1, 2};

static unsigned char pixel(size_t i) { return (unsigned char)((i * 37 + 11) % 256); }

/* An images file of n images of r x c (header claims may differ from the
 * data written: pass the real data size separately). Returns its size. */
static size_t make_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t r, uint32_t c,
                          size_t pixels)
{
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, r);
    put_be32(buf + 12, c);
    for (size_t i = 0; i < pixels; i++) buf[16 + i] = pixel(i);
    return 16 + pixels;
}

static size_t make_labels(unsigned char *buf, uint32_t n, const unsigned char *labels)
{
    put_be32(buf, 0x00000801);
    put_be32(buf + 4, n);
    memcpy(buf + 8, labels, n);
    return 8 + n;
}

static void check_idx_set(const nb_dataset *d, const unsigned char *labels, int classes)
{
    CHECK_PTR(d);
    if (!d) return;
    CHECK(nb_dataset_count(d) == IMG_N);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_dataset_shape(d, s) == 3);
    CHECK(s[0] == 1 && s[1] == IMG_R && s[2] == IMG_C);
    CHECK(nb_dataset_sample_size(d) == IMG_R * IMG_C);
    CHECK(nb_dataset_target_size(d) == 1);
    CHECK(nb_dataset_classes(d) == classes);
    const float *x = nb_dataset_features(d), *y = nb_dataset_targets(d);
    for (size_t i = 0; i < IMG_N * IMG_R * IMG_C; i++) CHECK(x[i] == pixel(i) / 255.0f);
    for (size_t i = 0; i < IMG_N; i++) CHECK(y[i] == labels[i]);
}

NB_TEST(test_data_idx_raw)
{
    tmpdir t;
    if (!tmp_open(&t)) return;
    unsigned char img[16 + IMG_N * IMG_R * IMG_C], lab[8 + IMG_N];
    char ip[256];
    write_bytes(strcpy(ip, tmp_path(&t, "img")), img,
                make_images(img, 0x803, IMG_N, IMG_R, IMG_C, IMG_N * IMG_R * IMG_C));
    write_bytes(tmp_path(&t, "lab"), lab, make_labels(lab, IMG_N, test_labels));
    nb_dataset *d = nb_dataset_load_idx(ip, t.path);
    check_idx_set(d, test_labels, 10);
    nb_dataset_free(d);

    /* labels beyond 9: classes = max + 1 */
    static const unsigned char big[IMG_N] = {0, 12, 4, 255, 7};
    write_bytes(tmp_path(&t, "lab"), lab, make_labels(lab, IMG_N, big));
    d = nb_dataset_load_idx(ip, t.path);
    check_idx_set(d, big, 256);
    nb_dataset_free(d);

    /* the directory form, uncompressed */
    write_bytes(tmp_path(&t, "train-images-idx3-ubyte"), img, sizeof img);
    write_bytes(tmp_path(&t, "train-labels-idx1-ubyte"), lab, make_labels(lab, IMG_N, test_labels));
    d = nb_dataset_load_idx_dir(t.dir, "train");
    check_idx_set(d, test_labels, 10);
    nb_dataset_free(d);

    /* the test split is missing: the message lists what was looked for */
    CHECK(nb_dataset_load_idx_dir(t.dir, "test") == NULL);
    CHECK_ERR("t10k-images-idx3-ubyte");
    CHECK_ERR("t10k-images-idx3-ubyte.gz");
    CHECK(nb_dataset_load_idx_dir(t.dir, "validation") == NULL);
    CHECK_ERR("unknown split 'validation'");
    tmp_close(&t);
}

NB_TEST(test_data_idx_gzip)
{
    tmpdir t;
    if (!tmp_open(&t)) return;
    unsigned char img[16 + IMG_N * IMG_R * IMG_C], lab[8 + IMG_N];
    size_t ni = make_images(img, 0x803, IMG_N, IMG_R, IMG_C, IMG_N * IMG_R * IMG_C);
    size_t nl = make_labels(lab, IMG_N, test_labels);
#ifdef NB_HAVE_ZLIB
    write_gz(tmp_path(&t, "t10k-images-idx3-ubyte.gz"), img, ni);
    write_gz(tmp_path(&t, "t10k-labels-idx1-ubyte.gz"), lab, nl);
    nb_dataset *d = nb_dataset_load_idx_dir(t.dir, "test");
    check_idx_set(d, test_labels, 10);
    nb_dataset_free(d);

    /* a mix: gzip images, raw labels */
    write_bytes(tmp_path(&t, "lab"), lab, nl);
    char ip[256];
    strcpy(ip, tmp_path(&t, "t10k-images-idx3-ubyte.gz"));
    d = nb_dataset_load_idx(ip, tmp_path(&t, "lab"));
    check_idx_set(d, test_labels, 10);
    nb_dataset_free(d);

    /* a gzip stream cut short */
    write_gz(tmp_path(&t, "big.gz"), img, ni);
    FILE *f = fopen(t.path, "rb");
    unsigned char gz[512];
    size_t ngz = f ? fread(gz, 1, sizeof gz, f) : 0;
    if (f) fclose(f);
    CHECK(ngz > 20);
    write_bytes(strcpy(ip, tmp_path(&t, "cut.gz")), gz, ngz - 10);
    CHECK(nb_dataset_load_idx(ip, tmp_path(&t, "lab")) == NULL);
    CHECK_ERR("cut.gz");
    CHECK_ERR("truncated");

    /* gzip data under a name without .gz: the magic says so */
    write_bytes(strcpy(ip, tmp_path(&t, "looks-raw")), gz, ngz);
    CHECK(nb_dataset_load_idx(ip, tmp_path(&t, "lab")) == NULL);
    CHECK_ERR("gzip-compressed");
#else
    write_bytes(tmp_path(&t, "img.gz"), img, ni);
    write_bytes(tmp_path(&t, "lab"), lab, nl);
    char ip[256];
    strcpy(ip, tmp_path(&t, "img.gz"));
    CHECK(nb_dataset_load_idx(ip, tmp_path(&t, "lab")) == NULL);
    CHECK_ERR("built without zlib");
    printf("     note: built without zlib: gzip reading not tested\n");
#endif
    tmp_close(&t);
}

NB_TEST(test_data_idx_errors)
{
    tmpdir t;
    if (!tmp_open(&t)) return;
    unsigned char img[16 + IMG_N * IMG_R * IMG_C], lab[8 + IMG_N];
    char ip[256], lp[256];
    size_t ni = make_images(img, 0x803, IMG_N, IMG_R, IMG_C, IMG_N * IMG_R * IMG_C);
    write_bytes(strcpy(lp, tmp_path(&t, "labels")), lab, make_labels(lab, IMG_N, test_labels));
    strcpy(ip, tmp_path(&t, "images"));

    /* truncated pixel data */
    write_bytes(ip, img, ni - 3);
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK(strstr(nb_last_error(), ip) != NULL);
    CHECK_ERR("truncated");
    /* labels cut short, and extra bytes after the data */
    write_bytes(ip, img, ni);
    write_bytes(lp, lab, make_labels(lab, IMG_N, test_labels) - 1);
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK(strstr(nb_last_error(), lp) != NULL);
    CHECK_ERR("truncated");
    unsigned char more[sizeof img + 1] = {0};
    memcpy(more, img, ni);
    write_bytes(ip, more, ni + 1);
    write_bytes(lp, lab, make_labels(lab, IMG_N, test_labels));
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("1 unexpected bytes after");

    /* bad magic: a 2-axis file where images belong */
    make_images(img, 0x802, IMG_N, IMG_R, IMG_C, IMG_N * IMG_R * IMG_C);
    write_bytes(ip, img, ni);
    write_bytes(lp, lab, make_labels(lab, IMG_N, test_labels));
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("bad magic 0x00000802, expected 0x00000803 (idx3, unsigned bytes)");
    /* images and labels swapped */
    make_images(img, 0x803, IMG_N, IMG_R, IMG_C, IMG_N * IMG_R * IMG_C);
    write_bytes(ip, img, ni);
    CHECK(nb_dataset_load_idx(lp, ip) == NULL);
    CHECK_ERR("expected 0x00000803");
    CHECK_ERR("idx1");

    /* counts differ */
    write_bytes(lp, lab, make_labels(lab, IMG_N - 1, test_labels));
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("has 5 images but");
    CHECK_ERR("has 4 labels");

    /* huge claimed sizes in a tiny file: an error, never a huge allocation */
    unsigned char tiny[100];
    make_images(tiny, 0x803, 0xffffffffu, 0xffffffffu, 0xffffffffu, sizeof tiny - 16);
    write_bytes(ip, tiny, sizeof tiny);
    write_bytes(lp, lab, make_labels(lab, IMG_N, test_labels));
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK(strstr(nb_last_error(), "overflow") || strstr(nb_last_error(), "truncated"));
    make_images(tiny, 0x803, 60000, 28, 28, sizeof tiny - 16);
    write_bytes(ip, tiny, sizeof tiny);
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("truncated: the header promises 47040000 bytes of data but only 84 follow");
    put_be32(tiny + 8, 0);
    write_bytes(ip, tiny, sizeof tiny);
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("size 0");
    /* a header cut short */
    write_bytes(ip, tiny, 10);
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("too short");

    /* empty file, directory, missing file */
    write_bytes(ip, "", 0);
    CHECK(nb_dataset_load_idx(ip, lp) == NULL);
    CHECK_ERR("empty");
    CHECK(nb_dataset_load_idx(t.dir, lp) == NULL);
    CHECK_ERR("is a directory");
    CHECK(nb_dataset_load_idx(tmp_path(&t, "missing"), lp) == NULL);
    CHECK_ERR("missing: No such file or directory");
    CHECK(nb_dataset_load_idx(NULL, lp) == NULL);
    tmp_close(&t);
}

NB_TEST(test_data_fashion_mnist)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        printf("     note: %s not found: Fashion-MNIST test skipped\n", dir);
        return;
    }
#ifndef NB_HAVE_ZLIB
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte", R_OK) != 0 ||
        access("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte", R_OK) != 0) {
        printf("     note: built without zlib and %s has only .gz files: Fashion-MNIST test skipped\n", dir);
        return;
    }
#endif
    nb_dataset *d = nb_dataset_load_idx_dir(dir, "test");
    CHECK_PTR(d);
    if (!d) return;
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_dataset_count(d) == 10000);
    CHECK(nb_dataset_shape(d, s) == 3 && s[0] == 1 && s[1] == 28 && s[2] == 28);
    CHECK(nb_dataset_classes(d) == 10);
    size_t per[10] = {0};
    const float *y = nb_dataset_targets(d), *x = nb_dataset_features(d);
    for (size_t i = 0; i < 10000; i++)
        if (y[i] >= 0 && y[i] < 10) per[(int)y[i]]++;
    for (int c = 0; c < 10; c++) CHECK(per[c] == 1000);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < 10000 * 784; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    CHECK(lo == 0.0f && hi == 1.0f);
    double mean, std;
    nb_dataset_stats(d, &mean, &std);
    CHECK(mean > 0.2 && mean < 0.4 && std > 0.2 && std < 0.5); /* about 0.286 and 0.353 */
    nb_dataset_free(d);
}

/* ---- CSV ------------------------------------------------------------------ */

static nb_dataset *csv(tmpdir *t, const char *text, int header, int label_column, int regression)
{
    write_text(tmp_path(t, "data.csv"), text);
    nb_csv_opts o = {.header = header, .label_column = label_column, .regression = regression};
    return nb_dataset_load_csv(t->path, &o);
}

NB_TEST(test_data_csv_read)
{
    tmpdir t;
    if (!tmp_open(&t)) return;
    /* a header; \r\n; spaces; blank lines inside and at the end */
    const char *text = "a,b,label\r\n1,2,0\r\n3.5, -4 ,1\r\n\r\n 5e-1 ,6,2\r\n\n\n";
    for (int header = -1; header <= 1; header += 2) { /* given and detected */
        nb_dataset *d = csv(&t, text, header, -1, 0);
        CHECK_PTR(d);
        if (!d) continue;
        int64_t s[NB_MAX_DIMS];
        CHECK(nb_dataset_count(d) == 3);
        CHECK(nb_dataset_shape(d, s) == 1 && s[0] == 2);
        CHECK(nb_dataset_classes(d) == 3);
        const float *x = nb_dataset_features(d), *y = nb_dataset_targets(d);
        static const float ex[6] = {1, 2, 3.5f, -4, 0.5f, 6}, ey[3] = {0, 1, 2};
        for (int i = 0; i < 6; i++) CHECK(x[i] == ex[i]);
        for (int i = 0; i < 3; i++) CHECK(y[i] == ey[i]);
        nb_dataset_free(d);
    }
    /* NULL options: detect the header, label last; a byte order mark */
    write_text(tmp_path(&t, "plain.csv"), "\xEF\xBB\xBF" "1,2,1\n3,4,0");
    nb_dataset *d = nb_dataset_load_csv(t.path, NULL);
    CHECK_PTR(d);
    CHECK(nb_dataset_count(d) == 2 && nb_dataset_classes(d) == 2);
    nb_dataset_free(d);

    /* the label in the middle; quoted header names with the delimiter inside */
    d = csv(&t, "\"x, first\",y,\"x2\"\n1,0,2\n3,4,\"5\"\n", -1, 1, 0);
    CHECK_PTR(d);
    if (d) {
        const float *x = nb_dataset_features(d), *y = nb_dataset_targets(d);
        CHECK(nb_dataset_count(d) == 2 && nb_dataset_sample_size(d) == 2);
        CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 5);
        CHECK(y[0] == 0 && y[1] == 4);
        CHECK(nb_dataset_classes(d) == 5);
    }
    nb_dataset_free(d);

    /* regression: any finite real target, no classes */
    d = csv(&t, "x1,x2,y\n0.5,1,-1.25\n1e-3,2,3.5e2\n", 1, -1, 1);
    CHECK_PTR(d);
    if (d) {
        const float *y = nb_dataset_targets(d);
        CHECK(nb_dataset_classes(d) == 0 && nb_dataset_target_size(d) == 1);
        CHECK(y[0] == -1.25f && y[1] == 350.0f);
        CHECK(nb_dataset_features(d)[2] == 1e-3f);
    }
    nb_dataset_free(d);

    /* another delimiter; header 0 with numeric first row; label first */
    write_text(tmp_path(&t, "semi.csv"), "1;0.25;0.5\n0;0.75;1\n");
    d = nb_dataset_load_csv(t.path, &(nb_csv_opts){.header = 0, .label_column = 0, .delimiter = ';'});
    CHECK_PTR(d);
    if (d) {
        CHECK(nb_dataset_count(d) == 2);
        CHECK(nb_dataset_features(d)[1] == 0.5f && nb_dataset_targets(d)[0] == 1);
    }
    nb_dataset_free(d);
    tmp_close(&t);
}

NB_TEST(test_data_csv_errors)
{
    tmpdir t;
    if (!tmp_open(&t)) return;
    /* a bad cell: file, line and column */
    CHECK(csv(&t, "a,b,c\n1,2,0\n\n1,abc,1\n", -1, -1, 0) == NULL);
    CHECK(strstr(nb_last_error(), t.path) != NULL);
    CHECK_ERR("data.csv:4: column 2: 'abc' is not a number");
    CHECK(csv(&t, "1,2,0\n1,2x,1\n", 0, -1, 0) == NULL);
    CHECK_ERR("data.csv:2: column 2: '2x' is not a number");
    CHECK(csv(&t, "1,0x10,0\n", 0, -1, 0) == NULL); /* no hex */
    CHECK_ERR("column 2");
    /* a row with the wrong number of columns */
    CHECK(csv(&t, "a,b,c\n1,2,0\n1,2\n", -1, -1, 0) == NULL);
    CHECK_ERR("data.csv:3: 2 columns, but line 1 has 3");
    CHECK(csv(&t, "1,2,0\n1,2,0,4\n", -1, -1, 0) == NULL);
    CHECK_ERR("data.csv:2: 4 columns");
    /* NaN and infinity, including a number that overflows */
    CHECK(csv(&t, "1,2,0\nnan,2,1\n", -1, -1, 0) == NULL);
    CHECK_ERR("data.csv:2: column 1: 'nan' is not a finite number");
    CHECK(csv(&t, "1,-inf,0\n", -1, -1, 0) == NULL);
    CHECK_ERR("column 2: '-inf' is not a finite");
    CHECK(csv(&t, "1,1e999,0\n", -1, -1, 0) == NULL);
    CHECK_ERR("not a finite");
    CHECK(csv(&t, "1,1e300,0\n", -1, -1, 0) == NULL); /* finite, but not as a float */
    CHECK_ERR("column 2: '1e300' is too large for a float");
    /* empty cell, trailing delimiter */
    CHECK(csv(&t, "1,,0\n", -1, -1, 0) == NULL);
    CHECK_ERR("data.csv:1: column 2: empty cell");
    CHECK(csv(&t, "1,2,0,\n", 0, -1, 0) == NULL);
    CHECK_ERR("column 4: empty cell");
    /* labels of a classification set */
    CHECK(csv(&t, "1,2,0\n1,2,1.5\n", -1, -1, 0) == NULL);
    CHECK_ERR("data.csv:2: column 3: label '1.5' is not a class index");
    CHECK(csv(&t, "1,2,-1\n", -1, -1, 0) == NULL);
    CHECK_ERR("label '-1'");
    /* a header given but the first row is data, and vice versa */
    CHECK(csv(&t, "x,y\n1,0\n", 0, -1, 0) == NULL);
    CHECK_ERR("data.csv:1: column 1: 'x' is not a number");
    /* label column out of range, one column, header only */
    CHECK(csv(&t, "1,2,0\n", -1, 3, 0) == NULL);
    CHECK_ERR("label column 3 is out of range");
    CHECK(csv(&t, "1\n2\n", -1, -1, 0) == NULL);
    CHECK_ERR("one column");
    CHECK(csv(&t, "a,b\n\n", -1, -1, 0) == NULL);
    CHECK_ERR("no data rows");
    /* empty and blank files, a directory, a missing file, bad options */
    CHECK(csv(&t, "", -1, -1, 0) == NULL);
    CHECK_ERR("data.csv: the file is empty");
    CHECK(csv(&t, "\n \r\n\n", -1, -1, 0) == NULL);
    CHECK_ERR("blank");
    CHECK(nb_dataset_load_csv(t.dir, NULL) == NULL);
    CHECK_ERR("is a directory");
    CHECK(nb_dataset_load_csv(tmp_path(&t, "nope.csv"), NULL) == NULL);
    CHECK_ERR("nope.csv: No such file or directory");
    write_text(tmp_path(&t, "ok.csv"), "1,0\n");
    CHECK(nb_dataset_load_csv(t.path, &(nb_csv_opts){.header = 2}) == NULL);
    CHECK(nb_dataset_load_csv(t.path, &(nb_csv_opts){.header = 0, .delimiter = '.'}) == NULL);
    tmp_close(&t);
}

/* ---- synthetic sets ----------------------------------------------------- */

NB_TEST(test_data_synthetic)
{
    static const struct { const char *name; size_t n; int classes; size_t dims; } sets[] = {
        {"xor", 400, 2, 2}, {"spiral", 300, 3, 2}, {"circles", 400, 2, 2}, {"sine", 256, 0, 1}};
    for (int k = 0; k < 4; k++) {
        nb_dataset *a = nb_dataset_synthetic(sets[k].name, 0, 5);
        nb_dataset *b = nb_dataset_synthetic(sets[k].name, 0, 5);
        nb_dataset *c = nb_dataset_synthetic(sets[k].name, 0, 6);
        CHECK_PTR(a);
        CHECK_PTR(b);
        CHECK_PTR(c);
        if (!a || !b || !c) break;
        size_t n = nb_dataset_count(a), dims = nb_dataset_sample_size(a);
        int64_t s[NB_MAX_DIMS];
        CHECK(n == sets[k].n);
        CHECK(nb_dataset_shape(a, s) == 1 && (size_t)s[0] == sets[k].dims && dims == sets[k].dims);
        CHECK(nb_dataset_classes(a) == sets[k].classes);
        CHECK(nb_dataset_target_size(a) == 1);
        /* same seed, same bytes; another seed, other data */
        CHECK(memcmp(nb_dataset_features(a), nb_dataset_features(b), n * dims * sizeof(float)) == 0);
        CHECK(memcmp(nb_dataset_targets(a), nb_dataset_targets(b), n * sizeof(float)) == 0);
        CHECK(memcmp(nb_dataset_features(a), nb_dataset_features(c), n * dims * sizeof(float)) != 0);

        const float *x = nb_dataset_features(a), *y = nb_dataset_targets(a);
        size_t per[3] = {0}, wrong = 0;
        for (size_t i = 0; i < n; i++) {
            float x0 = x[i * dims], x1 = dims > 1 ? x[i * dims + 1] : 0;
            CHECK(isfinite(x0) && isfinite(x1) && isfinite(y[i]));
            if (sets[k].classes) {
                CHECK(y[i] >= 0 && y[i] < sets[k].classes && y[i] == floorf(y[i]));
                if (y[i] >= 0 && y[i] < 3) per[(int)y[i]]++;
            }
            float r = sqrtf(x0 * x0 + x1 * x1);
            if (k == 0) { /* xor: label = xor of the quadrant's signs, clusters near (+-1, +-1) */
                CHECK(fabsf(x0) < 2.5f && fabsf(x1) < 2.5f);
                wrong += (float)((x0 > 0) != (x1 > 0)) != y[i];
            } else if (k == 1) { /* spiral: radius from 0 to 1 */
                CHECK(r <= 1.0f + 1e-6f);
            } else if (k == 2) { /* circles: radius 1 (class 0) or 0.5 (class 1), noise 0.05 */
                CHECK(fabsf(r - (y[i] == 0 ? 1.0f : 0.5f)) < 0.3f);
            } else { /* sine */
                CHECK(x0 >= -3.1416f && x0 <= 3.1416f);
                CHECK(fabsf(y[i] - sinf(x0)) < 0.3f);
            }
        }
        if (k == 0) CHECK(wrong <= 2);
        for (int cl = 0; cl < sets[k].classes; cl++) CHECK(per[cl] == n / (size_t)sets[k].classes);
        if (k == 3) { /* noise about 0.05 */
            double se = 0;
            for (size_t i = 0; i < n; i++) se += (y[i] - sinf(x[i])) * (y[i] - sinf(x[i]));
            CHECK(sqrt(se / (double)n) > 0.03 && sqrt(se / (double)n) < 0.07);
        }
        nb_dataset_free(a);
        nb_dataset_free(b);
        nb_dataset_free(c);
    }
    nb_dataset *d = nb_dataset_synthetic("spiral", 10, 1);
    CHECK(d && nb_dataset_count(d) == 10);
    nb_dataset_free(d);
    CHECK(nb_dataset_synthetic("moons", 0, 1) == NULL);
    CHECK_ERR("unknown data set 'moons' (valid: xor, spiral, circles, sine)");
    CHECK(nb_dataset_synthetic(NULL, 0, 1) == NULL);
    CHECK(nb_dataset_synthetic("xor", (size_t)-1, 1) == NULL);
}

NB_TEST(test_data_stats_normalize)
{
    nb_dataset *d = nb_dataset_synthetic("sine", 1000, 3);
    CHECK_PTR(d);
    if (!d) return;
    double mean, std;
    nb_dataset_stats(d, &mean, &std);
    CHECK(fabs(mean) < 0.2);
    CHECK_NEAR(std, 3.14159265 / sqrt(3.0), 0.1); /* U[-pi, pi] */
    CHECK_OK(nb_dataset_normalize(d, (float)mean, (float)std));
    nb_dataset_stats(d, &mean, &std);
    CHECK_NEAR(mean, 0, 1e-5);
    CHECK_NEAR(std, 1, 1e-5);
    CHECK(nb_dataset_normalize(d, 0, 0) == NB_ERR_ARG);
    CHECK(nb_dataset_normalize(d, 0, -1) == NB_ERR_ARG);
    CHECK(nb_dataset_normalize(d, NAN, 1) == NB_ERR_ARG);
    CHECK(nb_dataset_normalize(NULL, 0, 1) == NB_ERR_ARG);
    nb_dataset_free(d);
}

/* Index of the sample of d whose features equal x (each sample is unique in
 * the synthetic sets); -1 if none. */
static long find_sample(const nb_dataset *d, const float *x)
{
    size_t n = nb_dataset_count(d), s = nb_dataset_sample_size(d);
    for (size_t i = 0; i < n; i++)
        if (memcmp(nb_dataset_features(d) + i * s, x, s * sizeof(float)) == 0) return (long)i;
    return -1;
}

NB_TEST(test_data_split)
{
    nb_dataset *d = nb_dataset_synthetic("xor", 400, 9), *tr = NULL, *va = NULL;
    CHECK_PTR(d);
    if (!d) return;
    CHECK_OK(nb_dataset_split(d, 0.25, 1, &tr, &va));
    if (!tr || !va) {
        nb_dataset_free(d);
        return;
    }
    CHECK(nb_dataset_count(tr) == 300 && nb_dataset_count(va) == 100);
    CHECK(nb_dataset_classes(tr) == 2 && nb_dataset_classes(va) == 2);
    /* train + val is a permutation of d: every sample once, with its label */
    char seen[400] = {0};
    int ok = 1;
    const nb_dataset *parts[2] = {tr, va};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < nb_dataset_count(parts[p]); i++) {
            long j = find_sample(d, nb_dataset_features(parts[p]) + 2 * i);
            if (j < 0 || seen[j] || nb_dataset_targets(d)[j] != nb_dataset_targets(parts[p])[i]) ok = 0;
            else seen[j] = 1;
        }
    CHECK(ok);
    /* not simply the first 300: the order is shuffled */
    CHECK(memcmp(nb_dataset_features(tr), nb_dataset_features(d), 300 * 2 * sizeof(float)) != 0);

    /* the same seed gives the same split, another seed another */
    nb_dataset *tr2, *va2;
    CHECK_OK(nb_dataset_split(d, 0.25, 1, &tr2, &va2));
    CHECK(tr2 && memcmp(nb_dataset_features(tr), nb_dataset_features(tr2), 600 * sizeof(float)) == 0);
    nb_dataset_free(tr2);
    nb_dataset_free(va2);
    CHECK_OK(nb_dataset_split(d, 0.25, 2, &tr2, &va2));
    CHECK(tr2 && memcmp(nb_dataset_features(tr), nb_dataset_features(tr2), 600 * sizeof(float)) != 0);
    nb_dataset_free(tr2);
    nb_dataset_free(va2);
    nb_dataset_free(tr);
    nb_dataset_free(va);

    /* rounding, an empty validation set, bad fractions */
    nb_dataset *ten = nb_dataset_synthetic("sine", 10, 1);
    CHECK_OK(nb_dataset_split(ten, 0.25, 1, &tr, &va)); /* 2.5 rounds to 3 */
    CHECK(nb_dataset_count(tr) == 7 && nb_dataset_count(va) == 3);
    CHECK(nb_dataset_classes(va) == 0);
    nb_dataset_free(tr);
    nb_dataset_free(va);
    CHECK_OK(nb_dataset_split(ten, 0, 1, &tr, &va));
    CHECK(nb_dataset_count(tr) == 10 && nb_dataset_count(va) == 0);
    double m, s;
    nb_dataset_stats(va, &m, &s);
    CHECK(m == 0 && s == 0);
    nb_dataset_free(tr);
    nb_dataset_free(va);
    CHECK(nb_dataset_split(ten, 1.0, 1, &tr, &va) == NB_ERR_ARG && !tr && !va);
    CHECK_ERR("outside [0, 1)");
    CHECK(nb_dataset_split(ten, -0.1, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(nb_dataset_split(ten, NAN, 1, &tr, &va) == NB_ERR_ARG);
    CHECK(nb_dataset_split(ten, 0.97, 1, &tr, &va) == NB_ERR_ARG); /* rounds to all 10 */
    CHECK_ERR("none to train on");
    nb_dataset_free(ten);
    nb_dataset_free(d);
}

/* ---- loader --------------------------------------------------------------- */

/* Runs one epoch with batch 3 over the 10-sample set, recording the order
 * (sample index found from the features); returns the batch sizes as digits. */
static void run_epoch(nb_loader *l, const nb_dataset *d, int epoch, long order[10], char sizes[8])
{
    float x[3], y[3];
    size_t got, pos = 0, nb = 0;
    nb_loader_start(l, epoch);
    while ((got = nb_loader_next(l, x, y)) > 0 && nb < 7) {
        sizes[nb++] = (char)('0' + got);
        for (size_t i = 0; i < got && pos < 10; i++) {
            long j = find_sample(d, &x[i]);
            order[pos++] = j;
            if (j < 0 || nb_dataset_targets(d)[j] != y[i]) order[pos - 1] = -1;
        }
    }
    sizes[nb] = 0;
    CHECK(nb_loader_next(l, x, y) == 0); /* stays over */
}

NB_TEST(test_data_loader)
{
    nb_dataset *d = nb_dataset_synthetic("sine", 10, 4);
    CHECK_PTR(d);
    if (!d) return;
    nb_loader *l = nb_loader_create(d, 3, 1, 77);
    CHECK_PTR(l);
    if (!l) {
        nb_dataset_free(d);
        return;
    }
    CHECK(nb_loader_batches(l) == 4);
    long e0[10], e1[10], again[10];
    char sizes[8];
    run_epoch(l, d, 0, e0, sizes);
    CHECK(strcmp(sizes, "3331") == 0);
    int seen[10] = {0}, ok = 1;
    for (int i = 0; i < 10; i++) {
        if (e0[i] < 0 || seen[e0[i]]) ok = 0;
        else seen[e0[i]] = 1;
    }
    CHECK(ok); /* every sample exactly once, with its own target */
    run_epoch(l, d, 1, e1, sizes);
    CHECK(memcmp(e0, e1, sizeof e0) != 0);
    /* the order depends on (seed, epoch) only, not on what ran before */
    run_epoch(l, d, 0, again, sizes);
    CHECK(memcmp(e0, again, sizeof e0) == 0);
    nb_loader *l2 = nb_loader_create(d, 3, 1, 77);
    run_epoch(l2, d, 1, again, sizes);
    CHECK(memcmp(e1, again, sizeof e1) == 0);
    nb_loader_free(l2);
    l2 = nb_loader_create(d, 3, 1, 78); /* another seed */
    run_epoch(l2, d, 0, again, sizes);
    CHECK(memcmp(e0, again, sizeof e0) != 0);
    nb_loader_free(l2);
    nb_loader_free(l);

    /* no shuffling: stored order, every epoch; started by create */
    l = nb_loader_create(d, 4, 0, 77);
    float x[4];
    CHECK(nb_loader_next(l, x, NULL) == 4);
    CHECK(memcmp(x, nb_dataset_features(d), 4 * sizeof(float)) == 0);
    CHECK(nb_loader_next(l, x, NULL) == 4);
    CHECK(memcmp(x, nb_dataset_features(d) + 4, 4 * sizeof(float)) == 0);
    nb_loader_start(l, 5);
    CHECK(nb_loader_next(l, x, NULL) == 4);
    CHECK(memcmp(x, nb_dataset_features(d), 4 * sizeof(float)) == 0);
    nb_loader_free(l);
    long order[10];
    l = nb_loader_create(d, 3, 0, 77);
    run_epoch(l, d, 3, order, sizes);
    for (long i = 0; i < 10; i++) CHECK(order[i] == i);
    nb_loader_free(l);

    /* a batch larger than the set, bad batch sizes */
    l = nb_loader_create(d, 64, 1, 1);
    CHECK(nb_loader_batches(l) == 1);
    CHECK(nb_loader_next(l, NULL, NULL) == 10);
    CHECK(nb_loader_next(l, NULL, NULL) == 0);
    nb_loader_free(l);
    CHECK(nb_loader_create(d, 0, 1, 1) == NULL);
    CHECK_ERR("batch size 0");
    CHECK(nb_loader_create(NULL, 1, 1, 1) == NULL);
    nb_dataset_free(d);
}
