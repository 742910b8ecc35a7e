/*
 * data.h - what the data set files share: the structure behind nb_dataset,
 * its constructor, and the whole-file reader the IDX and CSV loaders use.
 * Not installed.
 */
#ifndef NB_DATA_H
#define NB_DATA_H

#include "../core/internal.h"

/* A data set lives in memory as two dense row-major arrays: count samples of
 * sample_size floats (shaped `shape`) and count targets of target_size floats.
 * Classification stores the class index as a float (target_size 1). */
struct nb_dataset {
    size_t count;
    nb_shape shape;       /* one sample's features */
    size_t sample_size;   /* numel(shape) */
    size_t target_size;
    int classes;          /* 0 for regression */
    float *x;             /* count x sample_size */
    float *y;             /* count x target_size */
};

/* A data set with room for count samples (contents uninitialised).
 * count may be 0. Returns NULL with a message on overflow or no memory. */
nb_dataset *nb_dataset_new(size_t count, const nb_shape *shape, size_t target_size, int classes);

/* The largest file the readers accept (after decompression): a bound on
 * what a damaged or hostile file can make the library allocate. */
#define NB_DATA_MAX_FILE ((size_t)1 << 34)   /* 16 GiB */

/* Reads a whole file into a new buffer (free with nb_free). Names ending in
 * ".gz" are decompressed (when built with zlib); others are read as they
 * are. The buffer grows with the bytes actually read, never with a size the
 * file claims. One extra zero byte follows the data, so text can be scanned
 * as a C string; *len does not count it. Errors name the path. */
nb_status nb_data_read_file(const char *path, unsigned char **data, size_t *len);

/* Copies the next n samples of the loader's epoch into x and y (either may
 * be NULL), whatever its batch size: fewer only at the end of the epoch.
 * Returns how many. A data-parallel rank takes its shard of each global
 * batch this way, skipping the others' (nb_loader_skip). */
size_t nb_loader_take(nb_loader *l, size_t n, float *x, float *y);

#endif /* NB_DATA_H */
