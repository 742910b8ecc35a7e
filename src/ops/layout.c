/*
 * layout.c - ops that move elements without arithmetic: permute (and
 * transpose), reshape (and flatten), concat, slice.
 *
 * Every forward is a copy and every backward adds the gradient back to where
 * the element came from; each input element receives from at most one
 * output element per op, so the order of the adds cannot change the result.
 *
 * Axes and negative indices are stored as the caller gave them and resolved
 * against the runtime shapes, in shape() and again in forward and backward,
 * so one graph runs at every batch size.
 */
#include "ops.h"

#include <stdio.h>
#include <string.h>

/* ---- permute --------------------------------------------------------
 *
 *   x: [d0, ..., d(n-1)]   perm: ia[0..n-1]   y: [d(perm[0]), ..., d(perm[n-1])]
 *
 *   forward   y[i0, ..., i(n-1)] = x[j] where j(perm[k]) = ik
 *   backward  dx[j] += dy[i]  (the inverse permutation, by the same walk)
 *
 * The walk visits y in order; the offset into x advances by x's stride of
 * axis perm[k] when y's axis k advances. The last axis of y is the inner loop.
 */

/* Resolves ia[0..ndim-1] (negative axes allowed) into perm; 0 when it is not a
 * permutation of 0..ndim-1. */
static int permute_resolve(const nb_node *n, int ndim, int *perm)
{
    int seen[NB_MAX_DIMS] = {0};
    for (int k = 0; k < ndim; k++) {
        int64_t v = n->ia[k];
        int ax = (v < -ndim || v >= ndim) ? -1 : nb_axis((int)v, ndim);
        if (ax < 0 || seen[ax]) return 0;
        seen[ax] = 1;
        perm[k] = ax;
    }
    return 1;
}

typedef struct {
    int nd;
    int64_t dim[NB_MAX_DIMS], st[NB_MAX_DIMS], idx[NB_MAX_DIMS];
    int64_t len, inc;   /* y's last axis: length, and x's stride along it */
    size_t rows;
    int64_t off;        /* offset in x of the current row of y */
} nb_perm_walk;

static void perm_walk_init(nb_perm_walk *w, const nb_shape *x, const int *perm)
{
    int64_t xst[NB_MAX_DIMS], s = 1;
    for (int k = x->ndim - 1; k >= 0; k--) {
        xst[k] = s;
        s *= x->d[k];
    }
    w->nd = x->ndim;
    for (int k = 0; k < x->ndim; k++) {
        w->dim[k] = x->d[perm[k]];
        w->st[k] = xst[perm[k]];
        w->idx[k] = 0;
    }
    w->len = x->ndim ? w->dim[x->ndim - 1] : 1;
    w->inc = x->ndim ? w->st[x->ndim - 1] : 0;
    w->rows = nb_shape_numel(x) / (size_t)w->len;
    w->off = 0;
}

static void perm_walk_next(nb_perm_walk *w)
{
    for (int k = w->nd - 2; k >= 0; k--) {
        w->off += w->st[k];
        if (++w->idx[k] < w->dim[k]) return;
        w->off -= w->st[k] * w->dim[k];
        w->idx[k] = 0;
    }
}

static nb_status permute_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    int perm[NB_MAX_DIMS];
    if (!permute_resolve(n, in[0]->ndim, perm))
        return nb_shape_error(n, "perm is not a permutation of the input's axes", in[0], NULL);
    out->ndim = in[0]->ndim;
    for (int k = 0; k < out->ndim; k++) out->d[k] = in[0]->d[perm[k]];
    return NB_OK;
}

static nb_status permute_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    int perm[NB_MAX_DIMS];
    permute_resolve(e->node, e->in[0]->s.ndim, perm);
    nb_perm_walk w;
    perm_walk_init(&w, &e->in[0]->s, perm);
    const int64_t len = w.len, inc = w.inc;
    for (size_t r = 0; r < w.rows; r++, y += len, perm_walk_next(&w)) {
        const float *xr = x + w.off;
        for (int64_t i = 0; i < len; i++) y[i] = xr[i * inc];
    }
    return NB_OK;
}

static void permute_backward(const nb_exec *e)
{
    const float *dy = e->out->g;
    float *dx = e->in[0]->g;
    int perm[NB_MAX_DIMS];
    permute_resolve(e->node, e->in[0]->s.ndim, perm);
    nb_perm_walk w;
    perm_walk_init(&w, &e->in[0]->s, perm);
    const int64_t len = w.len, inc = w.inc;
    for (size_t r = 0; r < w.rows; r++, dy += len, perm_walk_next(&w)) {
        float *dxr = dx + w.off;
        for (int64_t i = 0; i < len; i++) dxr[i * inc] += dy[i];
    }
}

const nb_op_def nb_def_permute = {"permute", 0, permute_shape, NULL, NULL, permute_forward,
                                  permute_backward};

nb_node *nb_permute(nb_graph *g, nb_node *x, const int *perm)
{
    if (!g || !x) return NULL;
    int nd = x->shape.ndim;
    if (nd > 0 && !perm) {
        nb_set_error(NB_ERR_ARG, "permute: NULL perm for an input with %d axes", nd);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    int64_t ia[NB_MAX_DIMS];
    for (int k = 0; k < nd; k++) ia[k] = perm[k];
    return nb_graph_add_node(g, NB_OP_PERMUTE, 1, &x, ia, nd, NULL, 0);
}

nb_node *nb_transpose(nb_graph *g, nb_node *x, int axis0, int axis1)
{
    if (!g || !x) return NULL;
    int nd = x->shape.ndim;
    int a0 = nb_axis(axis0, nd), a1 = nb_axis(axis1, nd);
    if (a0 < 0 || a1 < 0) {
        char buf[96];
        nb_set_error(NB_ERR_SHAPE, "transpose: axes (%d, %d) out of range for shape %s", axis0,
                     axis1, nb_shape_str(&x->shape, buf, sizeof buf));
        return nb_graph_fail(g, NB_ERR_SHAPE);
    }
    int perm[NB_MAX_DIMS];
    for (int k = 0; k < nd; k++) perm[k] = k;
    perm[a0] = a1;
    perm[a1] = a0;
    return nb_permute(g, x, perm);
}

/* ---- reshape --------------------------------------------------------
 *
 *   x: any shape with E elements   y: ia[1..ia[0]] resolved, E elements
 *
 * A view (NB_OPF_VIEW): y is x's memory under another shape, and the plan
 * aliases y's value and gradient to x's, so there is no forward or backward.
 * Target entries: -1 is inferred so that the counts match (at most one);
 * 0 copies x's size at the same axis (so {0, -1} flattens at any batch size).
 */

static nb_status reshape_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[0];
    nb_shape req;   /* the target as given, for messages */
    req.ndim = (int)n->ia[0];
    for (int k = 0; k < req.ndim; k++) req.d[k] = n->ia[1 + k];
    int infer = -1, overflow = 0;
    size_t known = 1, total = nb_shape_numel(x);
    *out = req;
    for (int k = 0; k < out->ndim; k++) {
        if (out->d[k] == 0) {
            if (k >= x->ndim)
                return nb_shape_error(n, "size 0 (copy) at an axis the input lacks", x, &req);
            out->d[k] = x->d[k];
        }
        if (out->d[k] == -1) infer = k;
        else if (!nb_mul_ok(known, (size_t)out->d[k], &known)) overflow = 1;
    }
    if (infer >= 0) {
        if (overflow || total % known != 0)
            return nb_shape_error(n, "cannot infer the -1 axis: the element count does not divide",
                                  x, &req);
        out->d[infer] = (int64_t)(total / known);
    } else if (overflow || known != total) {
        return nb_shape_error(n, "element counts differ", x, out);
    }
    return NB_OK;
}

const nb_op_def nb_def_reshape = {"reshape", NB_OPF_VIEW, reshape_shape, NULL, NULL, NULL, NULL};

nb_node *nb_reshape(nb_graph *g, nb_node *x, int ndim, const int64_t *shape)
{
    if (!g || !x) return NULL;
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !shape)) {
        nb_set_error(NB_ERR_ARG, "reshape: %d axes%s, expected 0 to %d", ndim,
                     (ndim > 0 && !shape) ? " with a NULL shape" : "", NB_MAX_DIMS);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    int64_t ia[1 + NB_MAX_DIMS];
    int n_infer = 0;
    ia[0] = ndim;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < -1 || shape[k] > ((int64_t)1 << 40)) {
            nb_set_error(NB_ERR_ARG,
                         "reshape: size %lld at axis %d, expected >= 1, 0 (copy) or -1 (infer)",
                         (long long)shape[k], k);
            return nb_graph_fail(g, NB_ERR_ARG);
        }
        if (shape[k] == -1) n_infer++;
        ia[1 + k] = shape[k];
    }
    if (n_infer > 1) {
        nb_set_error(NB_ERR_ARG, "reshape: %d axes are -1, at most one can be inferred", n_infer);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    return nb_graph_add_node(g, NB_OP_RESHAPE, 1, &x, ia, 1 + ndim, NULL, 0);
}

/* [N, d1, d2, ...] -> [N, d1 * d2 * ...], as torch.nn.Flatten (which also
 * wants a batch axis plus at least one more). */
nb_node *nb_flatten(nb_graph *g, nb_node *x)
{
    if (!g || !x) return NULL;
    if (x->shape.ndim < 2) {
        char buf[96];
        nb_set_error(NB_ERR_SHAPE, "flatten: expected at least 2 axes [N, ...] (shape %s)",
                     nb_shape_str(&x->shape, buf, sizeof buf));
        return nb_graph_fail(g, NB_ERR_SHAPE);
    }
    return nb_reshape(g, x, 2, (const int64_t[]){0, -1});
}

/* ---- concat ---------------------------------------------------------
 *
 *   x_i: [..., c_i, ...] (same ndim, same sizes off the axis)   axis: ia[0]
 *   y:   [..., c_0 + ... + c_(n-1), ...]
 *
 * Seen as [outer, c, inner] (outer: axes before, inner: axes after), each
 * outer row of y is the inputs' rows of c_i * inner floats, one after another.
 * Backward splits dy the same way.
 */

/* outer = prod(d[:axis]), inner = prod(d[axis+1:]) */
static void outer_inner(const nb_shape *s, int axis, size_t *outer, size_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < axis; k++) *outer *= (size_t)s->d[k];
    for (int k = axis + 1; k < s->ndim; k++) *inner *= (size_t)s->d[k];
}

static nb_status concat_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x0 = in[0];
    int64_t a = n->ia[0];
    int axis = (a < -x0->ndim || a >= x0->ndim) ? -1 : nb_axis((int)a, x0->ndim);
    if (axis < 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "axis %lld out of range", (long long)a);
        return nb_shape_error(n, msg, x0, NULL);
    }
    *out = *x0;
    for (int i = 1; i < n->n_in; i++) {
        const nb_shape *xi = in[i];
        int fits = xi->ndim == x0->ndim;
        for (int k = 0; fits && k < x0->ndim; k++)
            if (k != axis && xi->d[k] != x0->d[k]) fits = 0;
        if (!fits) {
            char msg[96];
            snprintf(msg, sizeof msg, "input %d does not match input 0 off axis %d", i, axis);
            return nb_shape_error(n, msg, x0, xi);
        }
        out->d[axis] += xi->d[axis];
    }
    return NB_OK;
}

static nb_status concat_forward(const nb_exec *e)
{
    const nb_shape *ys = &e->out->s;
    int axis = nb_axis((int)e->node->ia[0], ys->ndim);
    size_t outer, inner;
    outer_inner(ys, axis, &outer, &inner);
    float *y = e->out->x;
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < e->n_in; i++) {
            size_t len = (size_t)e->in[i]->s.d[axis] * inner;
            memcpy(y, e->in[i]->x + o * len, len * sizeof(float));
            y += len;
        }
    return NB_OK;
}

static void concat_backward(const nb_exec *e)
{
    const nb_shape *ys = &e->out->s;
    int axis = nb_axis((int)e->node->ia[0], ys->ndim);
    size_t outer, inner;
    outer_inner(ys, axis, &outer, &inner);
    const float *dy = e->out->g;
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < e->n_in; i++) {
            size_t len = (size_t)e->in[i]->s.d[axis] * inner;
            float *dx = e->in[i]->g;
            if (dx) {
                dx += o * len;
                for (size_t j = 0; j < len; j++) dx[j] += dy[j];
            }
            dy += len;
        }
}

const nb_op_def nb_def_concat = {"concat", 0, concat_shape, NULL, NULL, concat_forward,
                                 concat_backward};

nb_node *nb_concat(nb_graph *g, int n, nb_node *const *xs, int axis)
{
    if (!g) return NULL;
    if (n < 1 || !xs) {
        nb_set_error(NB_ERR_ARG, "concat: %d inputs%s, expected at least 1", n,
                     (n >= 1 && !xs) ? " in a NULL array" : "");
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    int64_t ia[1] = {axis};
    return nb_graph_add_node(g, NB_OP_CONCAT, n, xs, ia, 1, NULL, 0);
}

/* ---- slice ----------------------------------------------------------
 *
 *   x: [..., d, ...]   axis: ia[0], start: ia[1], end: ia[2]   y: [..., end - start, ...]
 *
 * Step 1. Negative start and end count from the end of the axis (Python);
 * after that 0 <= start < end <= d is required (no clamping: an out-of-range
 * index is a mistake worth reporting). As [outer, d, inner], each outer row of
 * y is (end - start) * inner floats of x's row, from start * inner on.
 */

typedef struct {
    int axis;
    int64_t start, end;
} nb_slice_at;

/* Resolves axis, start and end against x's shape; 0 when out of range. */
static int slice_resolve(const nb_node *n, const nb_shape *x, nb_slice_at *s)
{
    int64_t a = n->ia[0];
    s->axis = (a < -x->ndim || a >= x->ndim) ? -1 : nb_axis((int)a, x->ndim);
    if (s->axis < 0) return 0;
    int64_t d = x->d[s->axis];
    s->start = n->ia[1] < 0 ? n->ia[1] + d : n->ia[1];
    s->end = n->ia[2] == NB_END ? d : n->ia[2] < 0 ? n->ia[2] + d : n->ia[2];
    return 0 <= s->start && s->start < s->end && s->end <= d;
}

static nb_status slice_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    nb_slice_at s = {0, 0, 0};
    if (!slice_resolve(n, in[0], &s)) {
        char msg[160];
        snprintf(msg, sizeof msg, "axis %lld, [start, end) = [%lld, %lld) is empty or out of range",
                 (long long)n->ia[0], (long long)n->ia[1], (long long)n->ia[2]);
        return nb_shape_error(n, msg, in[0], NULL);
    }
    *out = *in[0];
    out->d[s.axis] = s.end - s.start;
    return NB_OK;
}

static nb_status slice_forward(const nb_exec *e)
{
    const nb_shape *xs = &e->in[0]->s;
    nb_slice_at s = {0, 0, 0};
    slice_resolve(e->node, xs, &s);
    size_t outer, inner;
    outer_inner(xs, s.axis, &outer, &inner);
    const size_t row = (size_t)xs->d[s.axis] * inner, len = (size_t)(s.end - s.start) * inner;
    const float *x = e->in[0]->x + (size_t)s.start * inner;
    float *y = e->out->x;
    for (size_t o = 0; o < outer; o++) memcpy(y + o * len, x + o * row, len * sizeof(float));
    return NB_OK;
}

static void slice_backward(const nb_exec *e)
{
    const nb_shape *xs = &e->in[0]->s;
    nb_slice_at s = {0, 0, 0};
    slice_resolve(e->node, xs, &s);
    size_t outer, inner;
    outer_inner(xs, s.axis, &outer, &inner);
    const size_t row = (size_t)xs->d[s.axis] * inner, len = (size_t)(s.end - s.start) * inner;
    float *dx = e->in[0]->g + (size_t)s.start * inner;
    const float *dy = e->out->g;
    for (size_t o = 0; o < outer; o++, dx += row, dy += len)
        for (size_t j = 0; j < len; j++) dx[j] += dy[j];
}

const nb_op_def nb_def_slice = {"slice", 0, slice_shape, NULL, NULL, slice_forward,
                                slice_backward};

nb_node *nb_slice(nb_graph *g, nb_node *x, int axis, int64_t start, int64_t end)
{
    int64_t ia[3] = {axis, start, end};
    return nb_graph_add_node(g, NB_OP_SLICE, 1, &x, ia, 3, NULL, 0);
}
