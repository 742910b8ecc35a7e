/*
 * file.c - reads a whole file into memory, gzip-compressed or not.
 *
 * Loaders parse from memory because then every size a file claims can be
 * checked against the bytes that are really there before anything is
 * allocated for it. The buffer itself grows only with the bytes actually
 * read: a gzip header cannot be trusted for the decompressed size (its
 * ISIZE field is modulo 4 GiB and easy to forge), so we never preallocate
 * from it, and a hard ceiling (NB_DATA_MAX_FILE) stops a decompression bomb.
 */
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifdef NB_HAVE_ZLIB
#include <zlib.h>
#endif

/* Growth doubles the buffer (few copies for ordinary files) but adds at most
 * this much at a time, so a stream that ends just past a boundary does not
 * leave gigabytes of slack. */
#define GROW_MAX_STEP ((size_t)256 << 20)
/* One read call asks for at most this much (gzread takes an unsigned int). */
#define READ_MAX_CHUNK ((size_t)1 << 30)

/* A file being read: plain stdio or a zlib stream. */
typedef struct source {
    const char *path;
    nb_status err;     /* why the last read failed */
    FILE *f;
#ifdef NB_HAVE_ZLIB
    gzFile gz;
#endif
} source;

static int has_gz_suffix(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* Reads up to n bytes; returns the count, 0 at the end, or -1 with the
 * message and s->err set. */
static long long source_read(source *s, unsigned char *buf, size_t n)
{
#ifdef NB_HAVE_ZLIB
    if (s->gz) {
        int got = gzread(s->gz, buf, (unsigned)n);
        if (got < 0) {
            int err;
            const char *msg = gzerror(s->gz, &err);
            if (err == Z_ERRNO)
                s->err = nb_set_error(NB_ERR_IO, "%s: %s", s->path, strerror(errno));
            else
                s->err = nb_set_error(NB_ERR_FORMAT, "%s: corrupt gzip data: %s", s->path, msg);
            return -1;
        }
        if (got == 0) {
            /* zlib reports a stream cut short as a soft error after the
             * last bytes it could decode; a truncated download must not pass
             * as a shorter file. */
            int err;
            const char *msg = gzerror(s->gz, &err);
            if (err == Z_BUF_ERROR) {
                s->err = nb_set_error(NB_ERR_FORMAT, "%s: truncated gzip data (%s)", s->path, msg);
                return -1;
            }
        }
        return got;
    }
#endif
    size_t got = fread(buf, 1, n, s->f);
    if (got == 0 && ferror(s->f)) {
        s->err = nb_set_error(NB_ERR_IO, "%s: %s", s->path, strerror(errno));
        return -1;
    }
    return (long long)got;
}

/* Reads s to its end into a buffer that starts at `hint` bytes. */
static nb_status read_all(source *s, size_t hint, unsigned char **data, size_t *len)
{
    size_t cap = hint < 4096 ? 4096 : hint;
    if (cap > NB_DATA_MAX_FILE) cap = NB_DATA_MAX_FILE;
    cap += 2; /* the terminating zero, and one byte to see the end of the file */
    unsigned char *buf = nb_alloc(cap);
    if (!buf) return NB_ERR_NOMEM;
    size_t n = 0;
    for (;;) {
        if (cap - n < 2) {
            if (n >= NB_DATA_MAX_FILE) {
                nb_free(buf);
                return nb_set_error(NB_ERR_FORMAT, "%s: larger than the limit of %zu bytes%s",
                                    s->path, NB_DATA_MAX_FILE,
                                    has_gz_suffix(s->path) ? " after decompression" : "");
            }
            size_t step = cap < GROW_MAX_STEP ? cap : GROW_MAX_STEP;
            size_t ncap = cap + step;
            if (ncap > NB_DATA_MAX_FILE + 2) ncap = NB_DATA_MAX_FILE + 2;
            unsigned char *nbuf = nb_realloc(buf, ncap);
            if (!nbuf) {
                nb_free(buf);
                return NB_ERR_NOMEM;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t want = cap - n - 1;
        if (want > READ_MAX_CHUNK) want = READ_MAX_CHUNK;
        long long got = source_read(s, buf + n, want);
        if (got < 0) {
            nb_free(buf);
            return s->err;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    buf[n] = 0;
    if (cap - n > cap / 4) { /* give back a large unused tail of a guessed size */
        unsigned char *fit = nb_realloc(buf, n + 1);
        if (fit) buf = fit;
    }
    *data = buf;
    *len = n;
    return NB_OK;
}

nb_status nb_data_read_file(const char *path, unsigned char **data, size_t *len)
{
    if (!path || !data || !len) return nb_set_error(NB_ERR_ARG, "reading a file: NULL argument");
    *data = NULL;
    *len = 0;

    /* stat first: fopen succeeds on a directory, and the reads then fail
     * with a less helpful message */
    struct stat st;
    if (stat(path, &st) != 0) return nb_set_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return nb_set_error(NB_ERR_IO, "%s: is a directory, not a file", path);
    size_t on_disk = st.st_size > 0 ? (size_t)st.st_size : 0;

    source s = {.path = path};
    nb_status status;
    int gz = has_gz_suffix(path);
    if (gz) {
#ifdef NB_HAVE_ZLIB
        errno = 0;
        s.gz = gzopen(path, "rb");
        if (!s.gz)
            return nb_set_error(NB_ERR_IO, "%s: %s", path,
                                errno ? strerror(errno) : "cannot open (out of memory)");
        gzbuffer(s.gz, 1u << 17);
        /* a first guess; the buffer doubles from there (IDX images deflate
         * about 2:1 to 5:1) */
        size_t hint = on_disk > NB_DATA_MAX_FILE / 4 ? NB_DATA_MAX_FILE : on_disk * 4;
        status = read_all(&s, hint, data, len);
        gzclose(s.gz);
#else
        return nb_set_error(NB_ERR_IO,
                            "%s: cannot read a gzip-compressed file: nabla was built without zlib "
                            "(decompress it with gunzip, or rebuild with zlib)", path);
#endif
    } else {
        if (on_disk > NB_DATA_MAX_FILE)
            return nb_set_error(NB_ERR_FORMAT, "%s: %zu bytes is larger than the limit of %zu", path,
                                on_disk, NB_DATA_MAX_FILE);
        s.f = fopen(path, "rb");
        if (!s.f) return nb_set_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
        status = read_all(&s, on_disk, data, len);
        fclose(s.f);
    }
    if (status != NB_OK) return status;
    if (*len == 0) {
        nb_free(*data);
        *data = NULL;
        return nb_set_error(NB_ERR_FORMAT, "%s: the file is empty%s", path,
                            gz && on_disk ? " after decompression" : "");
    }
    return NB_OK;
}
