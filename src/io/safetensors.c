/*
 * safetensors.c - reading and writing Hugging Face safetensors files.
 *
 * Layout: an 8-byte little-endian unsigned header length N, N bytes of JSON,
 * then the data region. The JSON is an object that maps every tensor name to
 *     {"dtype": "F32" | "I64", "shape": [d0, d1, ...], "data_offsets": [b, e]}
 * where [b, e) are byte offsets into the data region, plus an optional
 * "__metadata__" object of string values. Tensor bytes are little-endian,
 * row-major.
 *
 * Writer (nb_st_write):
 * - the header is compact JSON: "__metadata__" first (when there is any),
 *   its keys sorted by byte value (so the file does not depend on the order
 *   of nb_st_set_meta calls), then the tensors in the order they were added;
 * - the header is padded with spaces to a multiple of 8 bytes, as the
 *   reference implementation does, so the data region starts 8-aligned;
 * - tensors are laid out contiguously in the order they were added, with no
 *   padding between them (readers reject holes);
 * - values are encoded little-endian with shifts, whatever the host order;
 * - the file is written atomically: to "<path>.tmp", fsync, rename over
 *   path, fsync of the directory. A failure before the rename removes the
 *   temporary and leaves path as it was. If only the final directory sync
 *   fails, path has already been replaced; the call still reports NB_ERR_IO.
 *   Two processes writing the same path at once share the temporary name.
 *
 * Reader (nb_st_read) trusts nothing before checking it: the header length
 * (at most NB_ST_MAX_HEADER and within the file), the JSON (strict, depth
 * limited), every entry (known dtype, at most NB_MAX_DIMS non-negative dims,
 * byte counts without overflow, offsets inside the data and matching the
 * shape), unique non-empty names, string metadata, and, like the reference,
 * that the tensors tile the data region exactly: no overlap, no hole, no
 * trailing bytes. Every failure is NB_ERR_FORMAT naming the file and the
 * tensor or byte offset (I/O problems are NB_ERR_IO).
 *
 * Alignment: the file is read into a buffer placed so that the data region
 * starts on an 8-byte boundary; a tensor whose offset is not a multiple of
 * its element size (possible: offsets are only required to be contiguous) is
 * copied into a separate aligned block. So every pointer nb_st_find returns
 * can be read as float or int64_t directly on any host. On big-endian hosts
 * the values are converted to host order when loaded.
 */
#include "safetensors.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest header accepted, as in the reference implementation. */
#define NB_ST_MAX_HEADER ((uint64_t)100 << 20)
/* JSON nesting needed: header object > tensor entry > shape array. */
#define NB_ST_MAX_DEPTH 4
#define METADATA_KEY "__metadata__"

static size_t dtype_size(nb_dtype d) { return d == NB_DTYPE_I64 ? 8 : 4; }
static const char *dtype_name(nb_dtype d) { return d == NB_DTYPE_I64 ? "I64" : "F32"; }

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* count elements of esize bytes from native order in src to little-endian
 * in dst: shifts, not byte swaps, so it is right on any host */
static void encode_le(unsigned char *dst, const unsigned char *src, size_t count, size_t esize)
{
    if (esize == 4) {
        for (size_t i = 0; i < count; i++) {
            uint32_t u;
            memcpy(&u, src + 4 * i, 4);
            for (int k = 0; k < 4; k++) dst[4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            uint64_t u;
            memcpy(&u, src + 8 * i, 8);
            for (int k = 0; k < 8; k++) dst[8 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
        }
    }
}

/* the inverse, in place: little-endian bytes to native values */
static void decode_le_inplace(unsigned char *p, size_t count, size_t esize)
{
    if (esize == 4) {
        for (size_t i = 0; i < count; i++) {
            uint32_t u = 0;
            for (int k = 0; k < 4; k++) u |= (uint32_t)p[4 * i + (size_t)k] << (8 * k);
            memcpy(p + 4 * i, &u, 4);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u |= (uint64_t)p[8 * i + (size_t)k] << (8 * k);
            memcpy(p + 8 * i, &u, 8);
        }
    }
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    nb_shape s;
    s.ndim = ndim;
    for (int i = 0; i < ndim; i++) s.d[i] = shape[i];
    nb_shape_str(&s, buf, size);
}

/* ===================================================================== */
/* Writer                                                                 */

typedef struct st_entry {
    char *name;
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    size_t numel, bytes;
    unsigned char *data;   /* native order */
} st_entry;

typedef struct st_kv {
    char *key, *value;
} st_kv;

struct nb_st_writer {
    st_entry *t;
    int n, cap;
    st_kv *meta;           /* sorted by key (strcmp) */
    int nmeta, capmeta;
    size_t total;          /* data bytes */
};

nb_st_writer *nb_st_writer_create(void) { return nb_calloc(1, sizeof(nb_st_writer)); }

void nb_st_writer_free(nb_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        nb_free(w->t[i].name);
        nb_free(w->t[i].data);
    }
    for (int i = 0; i < w->nmeta; i++) {
        nb_free(w->meta[i].key);
        nb_free(w->meta[i].value);
    }
    nb_free(w->t);
    nb_free(w->meta);
    nb_free(w);
}

/* grows an array of *cap elements of size `size` to hold one more */
static int grow(void **arr, int *cap, int n, size_t size)
{
    if (n < *cap) return 0;
    if (*cap > (1 << 29)) {
        nb_set_error(NB_ERR_NOMEM, "too many entries");
        return -1;
    }
    int ncap = *cap ? *cap * 2 : 16;
    size_t bytes;
    if (!nb_mul_ok((size_t)ncap, size, &bytes)) {
        nb_set_error(NB_ERR_NOMEM, "too many entries");
        return -1;
    }
    void *q = nb_realloc(*arr, bytes);
    if (!q) return -1;
    *arr = q;
    *cap = ncap;
    return 0;
}

nb_status nb_st_add(nb_st_writer *w, const char *name, nb_dtype dtype, int ndim,
                    const int64_t *shape, const void *data)
{
    if (!w || !name) return nb_set_error(NB_ERR_ARG, "nb_st_add: NULL %s", w ? "name" : "writer");
    if (!*name) return nb_set_error(NB_ERR_ARG, "nb_st_add: empty tensor name");
    if (strcmp(name, METADATA_KEY) == 0)
        return nb_set_error(NB_ERR_ARG, "nb_st_add: '%s' is reserved for metadata", name);
    if (!nb_json_utf8_valid(name, strlen(name)))
        return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor name is not valid UTF-8");
    if (dtype != NB_DTYPE_F32 && dtype != NB_DTYPE_I64)
        return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': %d axes (0 to %d allowed)", name,
                            ndim, NB_MAX_DIMS);
    if (ndim > 0 && !shape) return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': NULL shape", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return nb_set_error(NB_ERR_ARG, "nb_st_add: duplicate tensor name '%s'", name);

    size_t numel = 1, bytes, total;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': negative dimension %lld", name,
                                (long long)shape[i]);
        if ((uint64_t)shape[i] > SIZE_MAX || !nb_mul_ok(numel, (size_t)shape[i], &numel))
            return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': size overflows", name);
    }
    if (!nb_mul_ok(numel, dtype_size(dtype), &bytes) || !nb_add_ok(w->total, bytes, &total))
        return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': size overflows", name);
    if (bytes && !data) return nb_set_error(NB_ERR_ARG, "nb_st_add: tensor '%s': NULL data", name);

    void *arr = w->t;
    if (grow(&arr, &w->cap, w->n, sizeof(st_entry))) return NB_ERR_NOMEM;
    w->t = arr;
    st_entry *e = &w->t[w->n];
    memset(e, 0, sizeof *e);
    e->name = nb_strdup(name);
    e->data = nb_alloc(bytes);
    if (!e->name || !e->data) {
        nb_free(e->name);
        nb_free(e->data);
        return NB_ERR_NOMEM;
    }
    if (bytes) memcpy(e->data, data, bytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->numel = numel;
    e->bytes = bytes;
    w->total = total;
    w->n++;
    return NB_OK;
}

nb_status nb_st_set_meta(nb_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return nb_set_error(NB_ERR_ARG, "nb_st_set_meta: NULL argument");
    if (!nb_json_utf8_valid(key, strlen(key)))
        return nb_set_error(NB_ERR_ARG, "nb_st_set_meta: key is not valid UTF-8");
    if (!nb_json_utf8_valid(value, strlen(value)))
        return nb_set_error(NB_ERR_ARG, "nb_st_set_meta: value of '%s' is not valid UTF-8", key);
    /* find the key, or where it belongs */
    int lo = 0, hi = w->nmeta;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(w->meta[mid].key, key);
        if (c == 0) {
            char *v = nb_strdup(value);
            if (!v) return NB_ERR_NOMEM;
            nb_free(w->meta[mid].value);
            w->meta[mid].value = v;
            return NB_OK;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    void *arr = w->meta;
    if (grow(&arr, &w->capmeta, w->nmeta, sizeof(st_kv))) return NB_ERR_NOMEM;
    w->meta = arr;
    char *k = nb_strdup(key), *v = nb_strdup(value);
    if (!k || !v) {
        nb_free(k);
        nb_free(v);
        return NB_ERR_NOMEM;
    }
    memmove(&w->meta[lo + 1], &w->meta[lo], (size_t)(w->nmeta - lo) * sizeof(st_kv));
    w->meta[lo].key = k;
    w->meta[lo].value = v;
    w->nmeta++;
    return NB_OK;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static nb_status build_header(const nb_st_writer *w, nb_jbuf *b)
{
    int first = 1;
    nb_jbuf_puts(b, "{");
    if (w->nmeta > 0) {
        nb_jbuf_string(b, METADATA_KEY, strlen(METADATA_KEY));
        nb_jbuf_puts(b, ":{");
        for (int i = 0; i < w->nmeta; i++) {
            if (i) nb_jbuf_puts(b, ",");
            nb_jbuf_string(b, w->meta[i].key, strlen(w->meta[i].key));
            nb_jbuf_puts(b, ":");
            nb_jbuf_string(b, w->meta[i].value, strlen(w->meta[i].value));
        }
        nb_jbuf_puts(b, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_entry *e = &w->t[i];
        if (!first) nb_jbuf_puts(b, ",");
        first = 0;
        nb_jbuf_string(b, e->name, strlen(e->name));
        nb_jbuf_puts(b, ":{\"dtype\":\"");
        nb_jbuf_puts(b, dtype_name(e->dtype));
        nb_jbuf_puts(b, "\",\"shape\":[");
        for (int k = 0; k < e->ndim; k++) {
            if (k) nb_jbuf_puts(b, ",");
            nb_jbuf_i64(b, e->shape[k]);
        }
        nb_jbuf_puts(b, "],\"data_offsets\":[");
        nb_jbuf_u64(b, off);
        nb_jbuf_puts(b, ",");
        off += e->bytes;
        nb_jbuf_u64(b, off);
        nb_jbuf_puts(b, "]}");
    }
    nb_jbuf_puts(b, "}");
    while (!b->failed && b->len % 8) nb_jbuf_puts(b, " ");
    if (b->failed) return NB_ERR_NOMEM;
    if ((uint64_t)b->len > NB_ST_MAX_HEADER)
        return nb_set_error(NB_ERR_ARG,
                            "nb_st_write: the header would be %zu bytes, more than the %llu that "
                            "safetensors readers accept (too many tensors or too much metadata)",
                            b->len, (unsigned long long)NB_ST_MAX_HEADER);
    return NB_OK;
}

/* Writes all n bytes; returns 0 or an errno value. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = write(fd, p, chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (r == 0) return ENOSPC; /* no progress: treat as a full device */
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

#define WRITE_CHUNK ((size_t)1 << 16)

/* Writes the length, the header and every tensor, encoded through chunk
 * (WRITE_CHUNK bytes); returns 0 or an errno value. */
static int write_contents(int fd, const nb_st_writer *w, const nb_jbuf *header, unsigned char *chunk)
{
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)header->len >> (8 * k));
    int e = write_all(fd, len8, 8);
    if (!e) e = write_all(fd, (const unsigned char *)header->p, header->len);
    for (int i = 0; i < w->n && !e; i++) {
        const st_entry *t = &w->t[i];
        size_t esize = dtype_size(t->dtype), per = WRITE_CHUNK / esize;
        for (size_t done = 0; done < t->numel && !e; done += per) {
            size_t cnt = t->numel - done < per ? t->numel - done : per;
            encode_le(chunk, t->data + done * esize, cnt, esize);
            e = write_all(fd, chunk, cnt * esize);
        }
    }
    return e;
}

/* fsyncs the directory that holds path; returns 0 or an errno value */
static int sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = nb_strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = nb_alloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return ENOMEM;
    int e = 0;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
    } else {
        /* some file systems cannot sync a directory: nothing more to do then */
        if (fsync(fd) != 0 && errno != EINVAL) e = errno;
        close(fd);
    }
    nb_free(dir);
    return e;
}

nb_status nb_st_write(const nb_st_writer *w, const char *path)
{
    if (!w || !path || !*path) return nb_set_error(NB_ERR_ARG, "nb_st_write: NULL or empty argument");
    nb_jbuf header = {0};
    nb_status st = build_header(w, &header);
    if (st != NB_OK) {
        nb_jbuf_release(&header);
        return st;
    }
    size_t plen = strlen(path);
    char *tmp = nb_alloc(plen + 5);
    unsigned char *chunk = tmp ? nb_alloc(WRITE_CHUNK) : NULL;
    if (!chunk) {
        nb_free(tmp);
        nb_jbuf_release(&header);
        return NB_ERR_NOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = nb_set_error(NB_ERR_IO, "%s: cannot create the temporary file %s: %s", path, tmp,
                          strerror(errno));
        goto done;
    }
    int e = write_contents(fd, w, &header, chunk);
    if (e) {
        st = nb_set_error(NB_ERR_IO, "%s: writing %s failed: %s", path, tmp, strerror(e));
        close(fd);
        unlink(tmp);
        goto done;
    }
    if (fsync(fd) != 0) {
        e = errno;
        st = nb_set_error(NB_ERR_IO, "%s: syncing %s failed: %s", path, tmp, strerror(e));
        close(fd);
        unlink(tmp);
        goto done;
    }
    if (close(fd) != 0) {
        e = errno;
        st = nb_set_error(NB_ERR_IO, "%s: closing %s failed: %s", path, tmp, strerror(e));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        st = nb_set_error(NB_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(e));
        unlink(tmp);
        goto done;
    }
    e = sync_parent_dir(path);
    if (e)
        st = nb_set_error(NB_ERR_IO, "%s: written, but syncing its directory failed: %s", path,
                          strerror(e));
done:
    nb_free(chunk);
    nb_free(tmp);
    nb_jbuf_release(&header);
    return st;
}

/* ===================================================================== */
/* Reader                                                                 */

typedef struct st_tensor {
    const char *name;
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    uint64_t begin, end;       /* in the data region */
    size_t numel;
    uint32_t pos;              /* header byte where the entry's value starts */
    unsigned char *data;       /* aligned, host order */
} st_tensor;

typedef struct st_meta {
    const char *key, *value;
} st_meta;

struct nb_st_file {
    unsigned char *buf;        /* the whole file, placed so the data region is 8-aligned */
    unsigned char *copies;     /* aligned copies of tensors at unaligned offsets */
    char *strings;             /* decoded names, keys and values */
    st_tensor *t;              /* in file order */
    int n;
    st_tensor **by_name;       /* sorted by name */
    st_meta *meta;             /* sorted by key */
    int nmeta;
};

static int key_is(const nb_json_value *k, const char *lit)
{
    size_t n = strlen(lit);
    return k->count == n && memcmp(k->u.s, lit, n) == 0;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

/* Reads one non-negative integer array element; 0 when it is not one. */
static int get_uint(const nb_json_value *v, int64_t *out)
{
    if (v->type != NB_JSON_INT || v->u.i < 0) return 0;
    *out = v->u.i;
    return 1;
}

/* Checks the entry of tensor t (JSON object at doc->v[vi]) and fills t. */
static nb_status parse_entry(const char *path, const nb_json_doc *doc, uint32_t vi,
                             st_tensor *t, uint64_t data_size)
{
    const nb_json_value *v = &doc->v[vi];
    const char *name = t->name;
    if (v->type != NB_JSON_OBJECT)
        return nb_set_error(NB_ERR_FORMAT,
                            "%s: tensor '%s': expected an object with dtype, shape and data_offsets "
                            "(header byte %u)", path, name, (unsigned)v->pos);
    const nb_json_value *dtype = NULL, *shape = NULL, *offs = NULL;
    uint32_t c = vi + 1;
    for (uint32_t m = 0; m < v->count; m++) {
        const nb_json_value *key = &doc->v[c];
        const nb_json_value *val = &doc->v[c + 1];
        c = val->end;
        const nb_json_value **slot;
        if (key_is(key, "dtype")) slot = &dtype;
        else if (key_is(key, "shape")) slot = &shape;
        else if (key_is(key, "data_offsets")) slot = &offs;
        else
            return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': unknown key '%s' (header byte %u)",
                                path, name, key->u.s, (unsigned)key->pos);
        if (*slot)
            return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': duplicate key '%s' (header byte %u)",
                                path, name, key->u.s, (unsigned)key->pos);
        *slot = val;
    }
    if (!dtype || !shape || !offs)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': missing \"%s\" (header byte %u)", path,
                            name, !dtype ? "dtype" : !shape ? "shape" : "data_offsets",
                            (unsigned)v->pos);

    /* dtype */
    if (dtype->type != NB_JSON_STRING)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': dtype is not a string (header byte %u)",
                            path, name, (unsigned)dtype->pos);
    if (key_is(dtype, "F32")) t->dtype = NB_DTYPE_F32;
    else if (key_is(dtype, "I64")) t->dtype = NB_DTYPE_I64;
    else
        return nb_set_error(NB_ERR_FORMAT,
                            "%s: tensor '%s': unsupported dtype '%s' (nabla reads F32 and I64)",
                            path, name, dtype->u.s);

    /* shape */
    if (shape->type != NB_JSON_ARRAY)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': shape is not an array (header byte %u)",
                            path, name, (unsigned)shape->pos);
    if (shape->count > NB_MAX_DIMS)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': shape has %u axes, more than the %d "
                            "nabla supports", path, name, (unsigned)shape->count, NB_MAX_DIMS);
    t->ndim = (int)shape->count;
    size_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        const nb_json_value *d = &doc->v[(uint32_t)(shape - doc->v) + 1 + (uint32_t)i];
        if (!get_uint(d, &t->shape[i]))
            return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': shape[%d] is %s: dimensions must be "
                                "non-negative integers (header byte %u)", path, name, i,
                                d->type == NB_JSON_INT ? "negative" : "not an integer",
                                (unsigned)d->pos);
        if ((uint64_t)t->shape[i] > SIZE_MAX || !nb_mul_ok(numel, (size_t)t->shape[i], &numel))
            overflow = 1;
    }
    char sbuf[8 * 22 + 4];
    shape_str(t->ndim, t->shape, sbuf, sizeof sbuf);
    size_t bytes = 0;
    if (overflow || !nb_mul_ok(numel, dtype_size(t->dtype), &bytes))
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': shape %s of %s is too large (its byte "
                            "count overflows)", path, name, sbuf, dtype_name(t->dtype));
    t->numel = numel;

    /* data_offsets */
    int64_t b = 0, e = 0;
    if (offs->type != NB_JSON_ARRAY || offs->count != 2 ||
        !get_uint(&doc->v[(uint32_t)(offs - doc->v) + 1], &b) ||
        !get_uint(&doc->v[(uint32_t)(offs - doc->v) + 2], &e))
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative "
                            "integers [begin, end] (header byte %u)", path, name, (unsigned)offs->pos);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    if (b > e)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] end before "
                            "they begin", path, name, (long long)b, (long long)e);
    if ((uint64_t)e > data_size)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] extend past the "
                            "end of the data (%llu bytes; is the file truncated?)", path, name,
                            (long long)b, (long long)e, (unsigned long long)data_size);
    if ((uint64_t)(e - b) != (uint64_t)bytes)
        return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] do not match "
                            "shape %s of %s (%zu bytes)", path, name, (long long)b, (long long)e,
                            sbuf, dtype_name(t->dtype), bytes);
    return NB_OK;
}

/* Checks that the tensors tile [0, data_size) exactly. */
static nb_status check_coverage(const char *path, st_tensor *t, int n, uint64_t data_size,
                                uint64_t data_start)
{
    st_tensor **order = nb_calloc(n ? (size_t)n : 1, sizeof *order);
    if (!order) return NB_ERR_NOMEM;
    for (int i = 0; i < n; i++) order[i] = &t[i];
    qsort(order, (size_t)n, sizeof *order, cmp_tensor_offset);
    nb_status st = NB_OK;
    uint64_t at = 0;
    const st_tensor *prev = NULL;
    for (int i = 0; i < n && st == NB_OK; i++) {
        const st_tensor *x = order[i];
        if (x->begin < at)
            st = nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap "
                              "tensor '%s' [%llu, %llu]", path, x->name,
                              (unsigned long long)x->begin, (unsigned long long)x->end, prev->name,
                              (unsigned long long)prev->begin, (unsigned long long)prev->end);
        else if (x->begin > at)
            st = nb_set_error(NB_ERR_FORMAT, "%s: data bytes [%llu, %llu) (file offset %llu) belong "
                              "to no tensor: a hole before tensor '%s'", path,
                              (unsigned long long)at, (unsigned long long)x->begin,
                              (unsigned long long)(data_start + at), x->name);
        at = x->end;
        prev = x;
    }
    if (st == NB_OK && at != data_size)
        st = nb_set_error(NB_ERR_FORMAT, "%s: data bytes [%llu, %llu) (file offset %llu) belong to no "
                          "tensor: trailing bytes after the last tensor", path,
                          (unsigned long long)at, (unsigned long long)data_size,
                          (unsigned long long)(data_start + at));
    nb_free(order);
    return st;
}

/* Validates the parsed header and fills f's tables. */
static nb_status load_header(nb_st_file *f, const char *path, const nb_json_doc *doc,
                             uint64_t data_size, uint64_t data_start)
{
    const nb_json_value *root = &doc->v[0];
    if (root->type != NB_JSON_OBJECT)
        return nb_set_error(NB_ERR_FORMAT, "%s: the header is not a JSON object", path);
    if (root->count > (uint32_t)INT32_MAX)
        return nb_set_error(NB_ERR_FORMAT, "%s: too many header entries", path);

    f->t = nb_calloc(root->count ? root->count : 1, sizeof *f->t);
    if (!f->t) return NB_ERR_NOMEM;
    const nb_json_value *meta = NULL;
    uint32_t c = 1;
    for (uint32_t m = 0; m < root->count; m++) {
        const nb_json_value *key = &doc->v[c];
        uint32_t vi = c + 1;
        c = doc->v[vi].end;
        if (key_is(key, METADATA_KEY)) {
            if (meta)
                return nb_set_error(NB_ERR_FORMAT, "%s: duplicate \"%s\" (header byte %u)", path,
                                    METADATA_KEY, (unsigned)key->pos);
            meta = &doc->v[vi];
            continue;
        }
        if (key->count == 0)
            return nb_set_error(NB_ERR_FORMAT, "%s: a tensor has an empty name (header byte %u)", path,
                                (unsigned)key->pos);
        if (memchr(key->u.s, '\0', key->count))
            return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s...': the name contains a NUL character "
                                "(header byte %u)", path, key->u.s, (unsigned)key->pos);
        st_tensor *t = &f->t[f->n];
        t->name = key->u.s;
        t->pos = doc->v[vi].pos;
        nb_status st = parse_entry(path, doc, vi, t, data_size);
        if (st != NB_OK) return st;
        f->n++;
    }

    /* names are unique */
    f->by_name = nb_calloc(f->n ? (size_t)f->n : 1, sizeof *f->by_name);
    if (!f->by_name) return NB_ERR_NOMEM;
    for (int i = 0; i < f->n; i++) f->by_name[i] = &f->t[i];
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_tensor_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
            const st_tensor *a = f->by_name[i - 1], *b = f->by_name[i];
            return nb_set_error(NB_ERR_FORMAT, "%s: duplicate tensor name '%s' (header bytes %u and %u)",
                                path, a->name, (unsigned)(a->pos < b->pos ? a->pos : b->pos),
                                (unsigned)(a->pos < b->pos ? b->pos : a->pos));
        }

    nb_status st = check_coverage(path, f->t, f->n, data_size, data_start);
    if (st != NB_OK) return st;

    /* metadata: {string: string}, or null */
    if (meta && meta->type != NB_JSON_NULL) {
        if (meta->type != NB_JSON_OBJECT)
            return nb_set_error(NB_ERR_FORMAT, "%s: \"%s\" is not an object of strings (header byte %u)",
                                path, METADATA_KEY, (unsigned)meta->pos);
        f->meta = nb_calloc(meta->count ? meta->count : 1, sizeof *f->meta);
        if (!f->meta) return NB_ERR_NOMEM;
        uint32_t mc = (uint32_t)(meta - doc->v) + 1;
        for (uint32_t m = 0; m < meta->count; m++) {
            const nb_json_value *key = &doc->v[mc], *val = &doc->v[mc + 1];
            mc = val->end;
            if (val->type != NB_JSON_STRING)
                return nb_set_error(NB_ERR_FORMAT, "%s: metadata '%s': the value is not a string "
                                    "(header byte %u)", path, key->u.s, (unsigned)val->pos);
            if (memchr(key->u.s, '\0', key->count) || memchr(val->u.s, '\0', val->count))
                return nb_set_error(NB_ERR_FORMAT, "%s: metadata '%s': contains a NUL character "
                                    "(header byte %u)", path, key->u.s, (unsigned)key->pos);
            f->meta[m].key = key->u.s;
            f->meta[m].value = val->u.s;
        }
        f->nmeta = (int)meta->count;
        qsort(f->meta, (size_t)f->nmeta, sizeof *f->meta, cmp_meta);
        for (int i = 1; i < f->nmeta; i++)
            if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
                return nb_set_error(NB_ERR_FORMAT, "%s: duplicate metadata key '%s'", path,
                                    f->meta[i].key);
    }
    return NB_OK;
}

/* Points every tensor at aligned, host-order data. */
static nb_status place_data(nb_st_file *f, unsigned char *data)
{
    size_t extra = 0;
    for (int i = 0; i < f->n; i++) {
        st_tensor *t = &f->t[i];
        size_t bytes = (size_t)(t->end - t->begin);
        if (t->begin % dtype_size(t->dtype)) extra += (bytes + 7) & ~(size_t)7;
    }
    if (extra) {
        f->copies = nb_alloc(extra);
        if (!f->copies) return NB_ERR_NOMEM;
    }
    size_t used = 0;
    int le = host_is_little_endian();
    for (int i = 0; i < f->n; i++) {
        st_tensor *t = &f->t[i];
        size_t bytes = (size_t)(t->end - t->begin);
        t->data = data + t->begin;
        if (t->begin % dtype_size(t->dtype)) {
            /* malloc's blocks are aligned for any type; so are multiples of 8 into them */
            unsigned char *dst = f->copies + used;
            if (bytes) memcpy(dst, t->data, bytes);
            t->data = dst;
            used += (bytes + 7) & ~(size_t)7;
        }
        if (!le) decode_le_inplace(t->data, t->numel, dtype_size(t->dtype));
    }
    return NB_OK;
}

nb_status nb_st_read_ex(const char *path, nb_st_file **out)
{
    if (!out) return nb_set_error(NB_ERR_ARG, "nb_st_read: NULL argument");
    *out = NULL;
    if (!path) return nb_set_error(NB_ERR_ARG, "nb_st_read: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return nb_set_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
    nb_st_file *f = NULL;
    unsigned char *buf = NULL;
    nb_json_doc doc = {0};
    nb_status st = NB_OK;
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        st = nb_set_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = nb_set_error(NB_ERR_IO, "%s: %s", path, strerror(EISDIR));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = nb_set_error(NB_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t fsize = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    if (fsize == 0) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: the file is empty (a safetensors file starts with an "
                          "8-byte header length)", path);
        goto fail;
    }
    if (fsize < 8) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: the file is %llu bytes, too short for the 8-byte header "
                          "length", path, (unsigned long long)fsize);
        goto fail;
    }
    if (fsize > SIZE_MAX - 32) {
        st = nb_set_error(NB_ERR_NOMEM, "%s: the file is too large (%llu bytes) for this machine", path,
                          (unsigned long long)fsize);
        goto fail;
    }
    unsigned char len8[8];
    if (fread(len8, 1, 8, fp) != 8) {
        st = nb_set_error(NB_ERR_IO, "%s: %s", path, ferror(fp) ? strerror(errno) : "file shrank while reading");
        goto fail;
    }
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)len8[k] << (8 * k);
    if (hlen > NB_ST_MAX_HEADER) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: header length %llu (file offset 0) exceeds the limit of "
                          "%llu bytes", path, (unsigned long long)hlen,
                          (unsigned long long)NB_ST_MAX_HEADER);
        goto fail;
    }
    if (hlen > fsize - 8) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: header length %llu (file offset 0) is larger than the "
                          "%llu bytes that follow it", path, (unsigned long long)hlen,
                          (unsigned long long)(fsize - 8));
        goto fail;
    }

    /* place the file so that the data region (file offset 8 + hlen) is 8-aligned */
    size_t size = (size_t)fsize;
    buf = nb_alloc(size + 8 + 1);
    if (!buf) {
        st = NB_ERR_NOMEM;
        goto fail;
    }
    size_t pad = (size_t)((8 - ((uintptr_t)buf + 8 + (uintptr_t)hlen) % 8) % 8);
    unsigned char *file = buf + pad;
    memcpy(file, len8, 8);
    size_t got = 8;
    while (got < size) {
        size_t r = fread(file + got, 1, size - got, fp);
        if (r == 0) break;
        got += r;
    }
    if (got < size) {
        st = nb_set_error(NB_ERR_IO, "%s: %s", path,
                          ferror(fp) ? strerror(errno) : "the file shrank while it was being read");
        goto fail;
    }
    if (fgetc(fp) != EOF) {
        st = nb_set_error(NB_ERR_IO, "%s: the file grew while it was being read", path);
        goto fail;
    }
    file[size] = 0;
    fclose(fp);
    fp = NULL;

    nb_json_error jerr;
    st = nb_json_parse((const char *)file + 8, (size_t)hlen, NB_ST_MAX_DEPTH, &doc, &jerr);
    if (st == NB_ERR_FORMAT) {
        nb_set_error(NB_ERR_FORMAT, "%s: the header is not valid JSON: %s at header byte %zu (file "
                     "offset %zu)", path, jerr.msg, jerr.pos, jerr.pos + 8);
        goto fail;
    }
    if (st != NB_OK) goto fail;

    f = nb_calloc(1, sizeof *f);
    if (!f) {
        st = NB_ERR_NOMEM;
        goto fail;
    }
    f->buf = buf;
    buf = NULL;
    f->strings = doc.strings;
    doc.strings = NULL;
    uint64_t data_start = 8 + hlen;
    st = load_header(f, path, &doc, fsize - data_start, data_start);
    nb_json_doc_free(&doc);
    if (st != NB_OK) goto fail;
    st = place_data(f, file + data_start);
    if (st != NB_OK) goto fail;
    *out = f;
    return NB_OK;

fail:
    if (fp) fclose(fp);
    nb_json_doc_free(&doc);
    nb_free(buf);
    nb_st_free(f);
    return st;
}

nb_st_file *nb_st_read(const char *path)
{
    nb_st_file *f;
    return nb_st_read_ex(path, &f) == NB_OK ? f : NULL;
}

void nb_st_free(nb_st_file *f)
{
    if (!f) return;
    nb_free(f->buf);
    nb_free(f->copies);
    nb_free(f->strings);
    nb_free(f->t);
    nb_free(f->by_name);
    nb_free(f->meta);
    nb_free(f);
}

int nb_st_count(const nb_st_file *f) { return f ? f->n : 0; }

const char *nb_st_name(const nb_st_file *f, int i)
{
    if (!f || i < 0 || i >= f->n) return NULL;
    return f->t[i].name;
}

const void *nb_st_find(const nb_st_file *f, const char *name, nb_dtype *dtype, int *ndim,
                       int64_t shape[NB_MAX_DIMS])
{
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const st_tensor *t = f->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0) {
            if (dtype) *dtype = t->dtype;
            if (ndim) *ndim = t->ndim;
            if (shape)
                for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
            return t->data;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *nb_st_meta(const nb_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    int lo = 0, hi = f->nmeta;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->meta[mid].key, key);
        if (c == 0) return f->meta[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
