/*
 * idx.c - the IDX format of MNIST and Fashion-MNIST.
 *
 * An IDX file is a 4-byte magic (0, 0, element type, number of axes), one
 * big-endian 32-bit size per axis, then the elements in row-major order.
 * We read images (0x00000803: unsigned bytes, 3 axes) and labels
 * (0x00000801: unsigned bytes, 1 axis). Every size in the header is checked
 * against the bytes that follow it before anything is allocated from it, so
 * a damaged header gives a message, not a huge allocation.
 */
#include "data.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define IDX_UBYTE 0x08
#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Checks the magic and size of an IDX file of ndim axes of unsigned bytes,
 * reads the axis sizes into dims[] and the number of elements they promise
 * into *numel, and makes sure exactly that many bytes follow the header. */
static nb_status idx_header(const char *path, const unsigned char *buf, size_t len, int ndim,
                            uint32_t *dims, size_t *numel)
{
    uint32_t want = (uint32_t)IDX_UBYTE << 8 | (uint32_t)ndim;
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < 4)
        return nb_set_error(NB_ERR_FORMAT, "%s: truncated: %zu bytes, too short for an IDX header",
                            path, len);
    uint32_t magic = be32(buf);
    if (magic != want) {
        /* say what the file seems to be: the usual mistakes are a swapped
         * images/labels pair and a compressed file without its .gz name */
        char seen[96] = "";
        if (buf[0] == 0x1f && buf[1] == 0x8b)
            snprintf(seen, sizeof seen, "; the file looks gzip-compressed: name it .gz");
        else if (buf[0] == 0 && buf[1] == 0 && buf[3] != (unsigned)ndim && buf[3] >= 1 && buf[3] <= 3)
            snprintf(seen, sizeof seen, "; this is an idx%u file (%s)", (unsigned)buf[3],
                     buf[3] == 1 ? "labels?" : buf[3] == 3 ? "images?" : "not MNIST");
        return nb_set_error(NB_ERR_FORMAT, "%s: bad magic 0x%08x, expected 0x%08x (idx%d, unsigned bytes)%s",
                            path, (unsigned)magic, (unsigned)want, ndim, seen);
    }
    if (len < header)
        return nb_set_error(NB_ERR_FORMAT, "%s: truncated: %zu bytes, too short for an idx%d header (%zu bytes)",
                            path, len, ndim, header);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(buf + 4 + 4 * i);
        if (dims[i] == 0)
            return nb_set_error(NB_ERR_FORMAT, "%s: axis %d of the header has size 0", path, i);
        if (!nb_mul_ok(n, dims[i], &n))
            return nb_set_error(NB_ERR_FORMAT, "%s: the sizes in the header overflow", path);
    }
    size_t have = len - header;
    if (have < n)
        return nb_set_error(NB_ERR_FORMAT,
                            "%s: truncated: the header promises %zu bytes of data but only %zu follow",
                            path, n, have);
    if (have > n)
        return nb_set_error(NB_ERR_FORMAT, "%s: %zu unexpected bytes after the %zu bytes of data",
                            path, have - n, n);
    *numel = n;
    return NB_OK;
}

/* Parses both files (already in memory) into a new data set. */
static nb_dataset *idx_parse(const char *images_path, const unsigned char *img, size_t img_len,
                             const char *labels_path, const unsigned char *lab, size_t lab_len)
{
    uint32_t idims[3], ldims[1];
    size_t inumel, lnumel;
    if (idx_header(images_path, img, img_len, 3, idims, &inumel) != NB_OK) return NULL;
    if (idx_header(labels_path, lab, lab_len, 1, ldims, &lnumel) != NB_OK) return NULL;
    if (idims[0] != ldims[0]) {
        nb_set_error(NB_ERR_FORMAT, "%s has %u images but %s has %u labels", images_path,
                     (unsigned)idims[0], labels_path, (unsigned)ldims[0]);
        return NULL;
    }
    const unsigned char *pix = img + 16, *lbl = lab + 8;
    size_t n = idims[0];

    /* Labels are bytes, so always within 0..255. MNIST-style sets use
     * 0..9: keep 10 classes even when a subset lacks the last ones, so a
     * model's output size does not depend on which file was read. */
    unsigned max = 0;
    for (size_t i = 0; i < n; i++)
        if (lbl[i] > max) max = lbl[i];
    int classes = max <= 9 ? 10 : (int)max + 1;

    nb_shape s = {.ndim = 3, .d = {1, idims[1], idims[2]}};
    nb_dataset *d = nb_dataset_new(n, &s, 1, classes);
    if (!d) return NULL;
    for (size_t i = 0; i < inumel; i++) d->x[i] = (float)pix[i] / 255.0f;
    for (size_t i = 0; i < n; i++) d->y[i] = (float)lbl[i];
    return d;
}

nb_dataset *nb_dataset_load_idx(const char *images_path, const char *labels_path)
{
    if (!images_path || !labels_path) {
        nb_set_error(NB_ERR_ARG, "nb_dataset_load_idx: NULL path");
        return NULL;
    }
    unsigned char *img = NULL, *lab = NULL;
    size_t img_len = 0, lab_len = 0;
    nb_dataset *d = NULL;
    /* labels first: the small file, so a wrong pair fails fast */
    if (nb_data_read_file(labels_path, &lab, &lab_len) == NB_OK &&
        nb_data_read_file(images_path, &img, &img_len) == NB_OK)
        d = idx_parse(images_path, img, img_len, labels_path, lab, lab_len);
    nb_free(img);
    nb_free(lab);
    return d;
}

/* Finds dir/prefix-kind or dir/prefix-kind.gz (the first that exists) into
 * a new string; NULL with a message listing both otherwise. */
static char *find_idx_file(const char *dir, const char *prefix, const char *kind)
{
    size_t dl = strlen(dir);
    const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
    size_t size = dl + strlen(prefix) + strlen(kind) + 8;
    char *raw = nb_alloc(size), *gz = nb_alloc(size);
    if (!raw || !gz) {
        nb_free(raw);
        nb_free(gz);
        return NULL;
    }
    snprintf(raw, size, "%s%s%s-%s", dir, sep, prefix, kind);
    snprintf(gz, size, "%s.gz", raw);
    /* the uncompressed file first: it is faster to read */
    struct stat st;
    if (stat(raw, &st) == 0 && !S_ISDIR(st.st_mode)) {
        nb_free(gz);
        return raw;
    }
    if (stat(gz, &st) == 0 && !S_ISDIR(st.st_mode)) {
        nb_free(raw);
        return gz;
    }
    nb_set_error(NB_ERR_IO, "nb_dataset_load_idx_dir: %s: found neither %s nor %s", dir, raw, gz);
    nb_free(raw);
    nb_free(gz);
    return NULL;
}

nb_dataset *nb_dataset_load_idx_dir(const char *dir, const char *split)
{
    if (!dir || !split) {
        nb_set_error(NB_ERR_ARG, "nb_dataset_load_idx_dir: NULL argument");
        return NULL;
    }
    const char *prefix;
    if (strcmp(split, "train") == 0) prefix = "train";
    else if (strcmp(split, "test") == 0 || strcmp(split, "t10k") == 0) prefix = "t10k";
    else {
        nb_set_error(NB_ERR_ARG, "nb_dataset_load_idx_dir: unknown split '%s' (use \"train\" or \"test\")",
                     split);
        return NULL;
    }
    nb_dataset *d = NULL;
    char *images = find_idx_file(dir, prefix, "images-idx3-ubyte");
    char *labels = images ? find_idx_file(dir, prefix, "labels-idx1-ubyte") : NULL;
    if (labels) d = nb_dataset_load_idx(images, labels);
    nb_free(images);
    nb_free(labels);
    return d;
}
