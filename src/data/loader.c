/*
 * loader.c - mini-batches over a data set.
 *
 * The loader owns one permutation array, allocated at create; starting an
 * epoch rebuilds it in place and nb_loader_next only copies, so the training
 * loop allocates nothing. Each epoch's order is a function of (seed, epoch)
 * alone: it is rebuilt from the identity with a generator seeded from both,
 * never from the previous epoch's order, so resuming at epoch 7 gives the
 * same batches as running epochs 0..6 first.
 */
#include "data.h"

#include <string.h>

struct nb_loader {
    const nb_dataset *d;   /* borrowed: must outlive the loader */
    size_t batch;
    int shuffle;
    uint64_t seed;
    size_t *order;         /* sample indices for this epoch */
    size_t pos;            /* next entry of order */
};

/* Folds the epoch into the seed. The multiply-xorshift finaliser (from
 * splitmix64) makes neighbouring epochs give unrelated seeds; nb_rng_seed
 * mixes again. */
static uint64_t epoch_seed(uint64_t seed, int epoch)
{
    uint64_t z = seed ^ (((uint64_t)(int64_t)epoch + 1) * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

nb_loader *nb_loader_create(const nb_dataset *d, int batch, int shuffle, uint64_t seed)
{
    if (!d) {
        nb_set_error(NB_ERR_ARG, "nb_loader_create: NULL data set");
        return NULL;
    }
    if (batch < 1) {
        nb_set_error(NB_ERR_ARG, "nb_loader_create: batch size %d: must be at least 1", batch);
        return NULL;
    }
    nb_loader *l = nb_calloc(1, sizeof *l);
    if (!l) return NULL;
    l->order = nb_calloc(d->count ? d->count : 1, sizeof *l->order);
    if (!l->order) {
        nb_free(l);
        return NULL;
    }
    l->d = d;
    l->batch = (size_t)batch;
    l->shuffle = shuffle != 0;
    l->seed = seed;
    nb_loader_start(l, 0); /* ready for epoch 0 without a call */
    return l;
}

void nb_loader_free(nb_loader *l)
{
    if (!l) return;
    nb_free(l->order);
    nb_free(l);
}

void nb_loader_start(nb_loader *l, int epoch)
{
    if (!l) return;
    size_t n = l->d->count;
    for (size_t i = 0; i < n; i++) l->order[i] = i;
    if (l->shuffle) {
        nb_rng r;
        nb_rng_seed(&r, epoch_seed(l->seed, epoch));
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)nb_rng_below(&r, i), t = l->order[i - 1];
            l->order[i - 1] = l->order[j];
            l->order[j] = t;
        }
    }
    l->pos = 0;
}

size_t nb_loader_take(nb_loader *l, size_t n, float *x, float *y)
{
    if (!l || l->pos >= l->d->count) return 0;
    const nb_dataset *d = l->d;
    size_t k = d->count - l->pos;
    if (k > n) k = n;
    size_t sx = d->sample_size, sy = d->target_size;
    for (size_t i = 0; i < k; i++) {
        size_t s = l->order[l->pos + i];
        if (x) memcpy(x + i * sx, d->x + s * sx, sx * sizeof(float));
        if (y) memcpy(y + i * sy, d->y + s * sy, sy * sizeof(float));
    }
    l->pos += k;
    return k;
}

size_t nb_loader_next(nb_loader *l, float *x, float *y)
{
    return l ? nb_loader_take(l, l->batch, x, y) : 0;
}

size_t nb_loader_batches(const nb_loader *l)
{
    if (!l) return 0;
    return l->d->count / l->batch + (l->d->count % l->batch != 0);
}

void nb_loader_skip(nb_loader *l, size_t n)
{
    if (!l) return;
    l->pos = n > l->d->count - l->pos ? l->d->count : l->pos + n;
}
