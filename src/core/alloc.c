/*
 * alloc.c - the only place the library calls malloc and free.
 *
 * Keeping every allocation behind these five functions makes "a training
 * step allocates nothing" checkable (tests/test_alloc.c wraps malloc) and
 * gives one place to report a failed allocation.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int nb_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int nb_add_ok(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

void *nb_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) nb_set_error(NB_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *nb_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (!nb_mul_ok(count, size, &bytes)) {
        nb_set_error(NB_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) nb_set_error(NB_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *nb_realloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) nb_set_error(NB_ERR_NOMEM, "out of memory reallocating to %zu bytes", bytes);
    return q;
}

void nb_free(void *p) { free(p); }

char *nb_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nb_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
