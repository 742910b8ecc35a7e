/*
 * synthetic.c - small built-in data sets for examples and tests, generated
 * from a seed with nb_rng, so the same (name, n, seed) gives the same bytes
 * on every machine.
 *
 * Samples cycle through the classes (sample i has class i % classes), so
 * every class gets n / classes samples, give or take one, and any prefix of
 * the set is balanced too.
 */
#include "data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI 3.14159265358979323846
/* A generous ceiling: these sets are for examples, and a typo such as
 * n = (size_t)-1 should fail with a message, not exhaust memory. */
#define SYNTH_MAX_COUNT ((size_t)100000000)

typedef struct synth_def {
    const char *name;
    size_t default_n;
    int dims;          /* features per sample */
    int classes;       /* 0: regression with one target */
    void (*fill)(nb_dataset *d, nb_rng *r);
} synth_def;

/* Four Gaussian clusters (std 0.25) centred on (+-1, +-1); the class is the
 * xor of the centre's signs, so no straight line separates the classes. */
static void fill_xor(nb_dataset *d, nb_rng *r)
{
    static const float cx[4] = {-1, 1, -1, 1}, cy[4] = {-1, 1, 1, -1};
    for (size_t i = 0; i < d->count; i++) {
        int k = (int)(i % 4);
        d->x[2 * i] = cx[k] + 0.25f * (float)nb_rng_normal(r);
        d->x[2 * i + 1] = cy[k] + 0.25f * (float)nb_rng_normal(r);
        d->y[i] = (float)(k / 2); /* clusters 0, 1 have equal signs: class 0 */
    }
}

/* The spiral of Stanford's CS231n notes: class c is an arm whose radius
 * grows from 0 to 1 while its angle sweeps 4 radians starting at 4c, plus
 * N(0, 0.2) noise on the angle. */
static void fill_spiral(nb_dataset *d, nb_rng *r)
{
    size_t n = d->count;
    for (size_t i = 0; i < n; i++) {
        size_t c = i % 3, k = i / 3;
        size_t per = n / 3 + (c < n % 3);          /* samples of class c */
        double t = per > 1 ? (double)k / (double)(per - 1) : 0;
        double angle = 4.0 * ((double)c + t) + 0.2 * nb_rng_normal(r);
        d->x[2 * i] = (float)(t * sin(angle));
        d->x[2 * i + 1] = (float)(t * cos(angle));
        d->y[i] = (float)c;
    }
}

/* Two concentric rings: class 0 at radius 1, class 1 at radius 0.5 (as
 * scikit-learn's make_circles with factor 0.5), N(0, 0.05) noise on each
 * coordinate. */
static void fill_circles(nb_dataset *d, nb_rng *r)
{
    for (size_t i = 0; i < d->count; i++) {
        int c = (int)(i % 2);
        double radius = c ? 0.5 : 1.0, a = 2 * PI * nb_rng_uniform(r);
        double nx = nb_rng_normal(r), ny = nb_rng_normal(r);
        d->x[2 * i] = (float)(radius * cos(a) + 0.05 * nx);
        d->x[2 * i + 1] = (float)(radius * sin(a) + 0.05 * ny);
        d->y[i] = (float)c;
    }
}

/* Regression: x ~ U[-pi, pi], y = sin(x) + N(0, 0.05). */
static void fill_sine(nb_dataset *d, nb_rng *r)
{
    for (size_t i = 0; i < d->count; i++) {
        double x = PI * (2 * nb_rng_uniform(r) - 1), e = nb_rng_normal(r);
        d->x[i] = (float)x;
        d->y[i] = (float)(sin(x) + 0.05 * e);
    }
}

static const synth_def synth_defs[] = {
    {"xor", 400, 2, 2, fill_xor},
    {"spiral", 300, 2, 3, fill_spiral},
    {"circles", 400, 2, 2, fill_circles},
    {"sine", 256, 1, 0, fill_sine},
};

nb_dataset *nb_dataset_synthetic(const char *name, size_t n, uint64_t seed)
{
    const synth_def *def = NULL;
    for (size_t i = 0; name && i < sizeof synth_defs / sizeof synth_defs[0]; i++)
        if (strcmp(name, synth_defs[i].name) == 0) def = &synth_defs[i];
    if (!def) {
        char valid[128] = "";
        for (size_t i = 0; i < sizeof synth_defs / sizeof synth_defs[0]; i++) {
            size_t used = strlen(valid);
            snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", synth_defs[i].name);
        }
        nb_set_error(NB_ERR_ARG, "nb_dataset_synthetic: unknown data set '%s' (valid: %s)",
                     name ? name : "(null)", valid);
        return NULL;
    }
    if (n == 0) n = def->default_n;
    if (n > SYNTH_MAX_COUNT) {
        nb_set_error(NB_ERR_ARG, "nb_dataset_synthetic: %s: %zu samples is more than the limit of %zu",
                     name, n, SYNTH_MAX_COUNT);
        return NULL;
    }
    nb_shape s = {.ndim = 1, .d = {def->dims}};
    nb_dataset *d = nb_dataset_new(n, &s, 1, def->classes);
    if (!d) return NULL;
    nb_rng r;
    nb_rng_seed(&r, seed);
    def->fill(d, &r);
    return d;
}
