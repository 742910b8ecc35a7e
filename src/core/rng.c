/*
 * rng.c - a seeded random generator that repeats bit for bit everywhere.
 *
 * xoshiro256** (Blackman and Vigna) for the stream, splitmix64 to expand a
 * 64-bit seed into its state. Normals by Box-Muller in double precision, one
 * pair per two draws with no cached spare, so the stream depends on nothing
 * but the seed and the number of calls.
 */
#include "internal.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void nb_rng_seed(nb_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t nb_rng_next(nb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nb_rng_uniform(nb_rng *r)
{
    return (double)(nb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}

double nb_rng_normal(nb_rng *r)
{
    /* Box-Muller; 1 - u keeps the log argument in (0, 1]. */
    double u = 1.0 - nb_rng_uniform(r), v = nb_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t nb_rng_below(nb_rng *r, uint64_t n)
{
    /* rejection sampling: no modulo bias */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = nb_rng_next(r); while (x >= limit);
    return x % n;
}

void nb_fill_uniform(float *x, size_t n, float lo, float hi, nb_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * nb_rng_uniform(r));
}

void nb_fill_normal(float *x, size_t n, float mean, float std, nb_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(mean + std * nb_rng_normal(r));
}
