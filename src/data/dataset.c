/*
 * dataset.c - the in-memory data set: construction, accessors, feature
 * statistics, normalisation and the seeded train/validation split.
 *
 * Loaders (idx.c, csv.c, synthetic.c) only fill the two arrays that
 * nb_dataset_new allocates; everything that reads a data set lives here.
 */
#include "data.h"

#include <math.h>
#include <string.h>

nb_dataset *nb_dataset_new(size_t count, const nb_shape *shape, size_t target_size, int classes)
{
    size_t sample = nb_shape_numel(shape), nx, ny;
    if (!nb_mul_ok(count, sample, &nx) || !nb_mul_ok(count, target_size, &ny) ||
        !nb_mul_ok(nx, sizeof(float), &nx) || !nb_mul_ok(ny, sizeof(float), &ny)) {
        nb_set_error(NB_ERR_NOMEM, "data set of %zu samples of %zu + %zu floats: size overflows",
                     count, sample, target_size);
        return NULL;
    }
    nb_dataset *d = nb_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->count = count;
    d->shape = *shape;
    d->sample_size = sample;
    d->target_size = target_size;
    d->classes = classes;
    d->x = nb_alloc(nx);
    d->y = nb_alloc(ny);
    if (!d->x || !d->y) {
        nb_dataset_free(d);
        return NULL;
    }
    return d;
}

void nb_dataset_free(nb_dataset *d)
{
    if (!d) return;
    nb_free(d->x);
    nb_free(d->y);
    nb_free(d);
}

size_t nb_dataset_count(const nb_dataset *d) { return d ? d->count : 0; }

int nb_dataset_shape(const nb_dataset *d, int64_t shape[NB_MAX_DIMS])
{
    if (!d) return -1;
    if (shape)
        for (int i = 0; i < d->shape.ndim; i++) shape[i] = d->shape.d[i];
    return d->shape.ndim;
}

size_t nb_dataset_sample_size(const nb_dataset *d) { return d ? d->sample_size : 0; }
int nb_dataset_classes(const nb_dataset *d) { return d ? d->classes : 0; }
size_t nb_dataset_target_size(const nb_dataset *d) { return d ? d->target_size : 0; }
const float *nb_dataset_features(const nb_dataset *d) { return d ? d->x : NULL; }
const float *nb_dataset_targets(const nb_dataset *d) { return d ? d->y : NULL; }

void nb_dataset_stats(const nb_dataset *d, double *mean, double *std)
{
    /* Two passes in double: one-pass sum-of-squares loses every digit when
     * the mean is large next to the spread (pixels near 1, say). */
    double m = 0, v = 0;
    size_t n = d ? d->count * d->sample_size : 0;
    if (n > 0) {
        for (size_t i = 0; i < n; i++) m += d->x[i];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double e = d->x[i] - m;
            v += e * e;
        }
        v /= (double)n; /* population variance: this is all the data there is */
    }
    if (mean) *mean = m;
    if (std) *std = sqrt(v);
}

nb_status nb_dataset_normalize(nb_dataset *d, float mean, float std)
{
    if (!d) return nb_set_error(NB_ERR_ARG, "nb_dataset_normalize: NULL data set");
    if (!isfinite(mean) || !isfinite(std) || !(std > 0))
        return nb_set_error(NB_ERR_ARG,
                            "nb_dataset_normalize: mean %g and std %g: std must be positive "
                            "and both finite", (double)mean, (double)std);
    size_t n = d->count * d->sample_size;
    float inv = 1.0f / std;
    for (size_t i = 0; i < n; i++) d->x[i] = (d->x[i] - mean) * inv;
    return NB_OK;
}

/* A new data set holding the samples idx[0..k) of d, in that order. */
static nb_dataset *gather(const nb_dataset *d, const size_t *idx, size_t k)
{
    nb_dataset *o = nb_dataset_new(k, &d->shape, d->target_size, d->classes);
    if (!o) return NULL;
    size_t sx = d->sample_size, sy = d->target_size;
    for (size_t i = 0; i < k; i++) {
        memcpy(o->x + i * sx, d->x + idx[i] * sx, sx * sizeof(float));
        memcpy(o->y + i * sy, d->y + idx[i] * sy, sy * sizeof(float));
    }
    return o;
}

nb_status nb_dataset_split(const nb_dataset *d, double fraction, uint64_t seed,
                           nb_dataset **train, nb_dataset **val)
{
    if (train) *train = NULL;
    if (val) *val = NULL;
    if (!d || !train || !val) return nb_set_error(NB_ERR_ARG, "nb_dataset_split: NULL argument");
    if (!(fraction >= 0 && fraction < 1))
        return nb_set_error(NB_ERR_ARG, "nb_dataset_split: fraction %g is outside [0, 1)", fraction);
    size_t n = d->count;
    size_t n_val = (size_t)floor(fraction * (double)n + 0.5);
    if (n_val > n) n_val = n;
    if (n_val == n)
        return nb_set_error(NB_ERR_ARG,
                            "nb_dataset_split: a fraction of %g of %zu samples leaves none to train on",
                            fraction, n);

    size_t *perm = nb_calloc(n ? n : 1, sizeof *perm);
    if (!perm) return NB_ERR_NOMEM;
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)nb_rng_below(&r, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    nb_dataset *a = gather(d, perm, n - n_val);
    nb_dataset *b = a ? gather(d, perm + (n - n_val), n_val) : NULL;
    nb_free(perm);
    if (!b) {
        nb_dataset_free(a);
        return NB_ERR_NOMEM;
    }
    *train = a;
    *val = b;
    return NB_OK;
}
