/*
 * shape.c - shape arithmetic shared by every op: element counts, printing,
 * axis resolution and NumPy broadcasting.
 */
#include "internal.h"

#include <stdio.h>

size_t nb_shape_numel(const nb_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->d[i];
    return n;
}

int nb_shape_eq(const nb_shape *a, const nb_shape *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i]) return 0;
    return 1;
}

char *nb_shape_str(const nb_shape *s, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)s->d[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

int nb_axis(int axis, int ndim)
{
    if (axis < 0) axis += ndim;
    return (axis >= 0 && axis < ndim) ? axis : -1;
}

int nb_broadcast_shape(const nb_shape *a, const nb_shape *b, nb_shape *out)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = n;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1) return 0;
        out->d[i] = da == 1 ? db : da;
    }
    return 1;
}

void nb_broadcast_strides(const nb_shape *in, const nb_shape *out, int64_t *st)
{
    int64_t stride = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int k = i - (out->ndim - in->ndim);
        if (k < 0 || in->d[k] == 1) {
            st[i] = 0;
        } else {
            st[i] = stride;
        }
        if (k >= 0) stride *= in->d[k];
    }
}
