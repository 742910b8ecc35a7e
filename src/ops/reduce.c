/*
 * reduce.c - sum, mean and max over a set of axes.
 *
 *   x: shape X (d axes); ia[0]: bitmask R of the reduced axes of X;
 *   ia[1]: keepdims.
 *   y: X without the axes in R, or with them kept at size 1 (keepdims).
 *
 * Every op walks x in memory order and finds the output element of each
 * input element through output strides that are 0 along the reduced axes:
 * the strides of the keepdims shape broadcast to X (nb_broadcast_strides).
 * Each output thus accumulates its inputs in increasing input order, so the
 * results never depend on anything but the data. Sums accumulate in double.
 *
 * Axes are resolved at build time against the input's ndim (which never
 * changes); sizes, including the count a mean divides by, are read from the
 * plan's shapes at run time, so batch axes can be reduced too.
 */
#include "ops.h"

#include <math.h>
#include <string.h>

/* Walks X row by row: the last axis is an inner loop with a constant output
 * stride (0 when reduced), the other axes advance an odometer that keeps the
 * output offset of the row's first element. */
typedef struct {
    int nd;
    int64_t dim[NB_MAX_DIMS], st[NB_MAX_DIMS], idx[NB_MAX_DIMS];
    int64_t len, inc;   /* the last axis: length and output stride */
    size_t rows;
    int64_t off;        /* output offset of the current row */
} nb_rwalk;

static void rwalk_init(nb_rwalk *w, const nb_shape *x, int64_t mask)
{
    nb_shape keep = *x;   /* the keepdims shape: reduced axes at size 1 */
    for (int k = 0; k < x->ndim; k++)
        if (mask >> k & 1) keep.d[k] = 1;
    nb_broadcast_strides(&keep, x, w->st);
    w->nd = x->ndim;
    for (int k = 0; k < x->ndim; k++) {
        w->dim[k] = x->d[k];
        w->idx[k] = 0;
    }
    if (x->ndim == 0) {
        w->len = 1;
        w->inc = 0;
        w->rows = 1;
    } else {
        w->len = x->d[x->ndim - 1];
        w->inc = w->st[x->ndim - 1];
        w->rows = w->len ? nb_shape_numel(x) / (size_t)w->len : 0;
    }
    w->off = 0;
}

static void rwalk_next(nb_rwalk *w)
{
    for (int k = w->nd - 2; k >= 0; k--) {
        w->off += w->st[k];
        if (++w->idx[k] < w->dim[k]) return;
        w->off -= w->st[k] * w->dim[k];
        w->idx[k] = 0;
    }
}

/* ---- shape, shared by the three ops ----
 * x: X; y: X without the axes of ia[0], or with them at size 1 when ia[1] */
static nb_status reduce_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[0];
    const int64_t mask = n->ia[0];
    if (mask < 0 || (mask >> x->ndim) != 0)
        return nb_shape_error(n, "reduced axes out of range for the input", x, NULL);
    out->ndim = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (!(mask >> k & 1)) out->d[out->ndim++] = x->d[k];
        else if (n->ia[1]) out->d[out->ndim++] = 1;
    }
    return NB_OK;
}

/* ---- sum and mean: y[o] = (1 or 1/count) * sum of x[i] over i -> o ----
 * scratch: one double accumulator per output element */
static size_t sum_scratch(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return nb_shape_numel(out) * sizeof(double);
}

/* elements folded into each output: |X| / |Y| (1 when nothing is reduced) */
static double reduce_scale(const nb_exec *e)
{
    if (e->node->op != NB_OP_MEAN || e->out->n == 0) return 1.0;
    return (double)e->out->n / (double)e->in[0]->n;
}

static nb_status sum_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    double *acc = e->scratch;
    const double scale = reduce_scale(e);
    memset(acc, 0, e->out->n * sizeof *acc);
    nb_rwalk w;
    rwalk_init(&w, &e->in[0]->s, e->node->ia[0]);
    const int64_t len = w.len, inc = w.inc;
    for (size_t r = 0; r < w.rows; r++, x += len, rwalk_next(&w)) {
        double *a = acc + w.off;
        if (inc == 0) {
            /* the last axis is reduced: the whole row folds into one output */
            double s = 0.0;
            for (int64_t i = 0; i < len; i++) s += x[i];
            a[0] += s;
        } else {
            for (int64_t i = 0; i < len; i++) a[i * inc] += x[i];
        }
    }
    for (size_t o = 0; o < e->out->n; o++) y[o] = (float)(acc[o] * scale);
    return NB_OK;
}

/* dx[i] += dy[o(i)] * (1 or 1/count) */
static void sum_backward(const nb_exec *e)
{
    const float *dy = e->out->g;
    float *dx = e->in[0]->g;
    const float scale = (float)reduce_scale(e);
    nb_rwalk w;
    rwalk_init(&w, &e->in[0]->s, e->node->ia[0]);
    const int64_t len = w.len, inc = w.inc;
    for (size_t r = 0; r < w.rows; r++, dx += len, rwalk_next(&w)) {
        const float *d = dy + w.off;
        for (int64_t i = 0; i < len; i++) dx[i] += d[i * inc] * scale;
    }
}

/* ---- max: y[o] = max of x[i] over i -> o ----
 * saved: the flat input index of each output's max (int64 per output), the
 * first one on ties; a NaN wins over every number (and the first NaN over
 * later ones), so NaN propagates as in PyTorch. */
static size_t max_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return nb_shape_numel(out) * sizeof(int64_t);
}

static nb_status max_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    int64_t *arg = e->saved;
    for (size_t o = 0; o < e->out->n; o++) {
        arg[o] = -1;
        y[o] = -INFINITY;
    }
    nb_rwalk w;
    rwalk_init(&w, &e->in[0]->s, e->node->ia[0]);
    const int64_t len = w.len, inc = w.inc;
    int64_t base = 0;   /* flat input index of the row's first element */
    for (size_t r = 0; r < w.rows; r++, base += len, rwalk_next(&w)) {
        for (int64_t i = 0; i < len; i++) {
            const int64_t o = w.off + i * inc;
            const float v = x[base + i];
            /* strictly greater keeps the first of equal values */
            if (arg[o] < 0 || v > y[o] || (isnan(v) && !isnan(y[o]))) {
                y[o] = v;
                arg[o] = base + i;
            }
        }
    }
    return NB_OK;
}

/* dy flows to the max element only: dx[arg[o]] += dy[o] */
static void max_backward(const nb_exec *e)
{
    const float *dy = e->out->g;
    float *dx = e->in[0]->g;
    const int64_t *arg = e->saved;
    for (size_t o = 0; o < e->out->n; o++)
        if (arg[o] >= 0) dx[arg[o]] += dy[o];
}

const nb_op_def nb_def_sum = {"sum", 0, reduce_shape, NULL, sum_scratch, sum_forward, sum_backward};
const nb_op_def nb_def_mean = {"mean", 0, reduce_shape, NULL, sum_scratch, sum_forward,
                               sum_backward};
const nb_op_def nb_def_max = {"max", 0, reduce_shape, max_saved, NULL, max_forward, max_backward};

/* Resolves the axes into a bitmask (ia[0]); keepdims goes to ia[1]. */
static nb_node *reduce(nb_graph *g, nb_op_kind op, nb_node *x, int naxes, const int *axes,
                       int keepdims)
{
    const char *name = nb_op_table[op]->name;
    int64_t ia[2] = {0, keepdims != 0};
    if (g && x) {
        const int nd = x->shape.ndim;
        if (naxes < 0) {
            nb_set_error(NB_ERR_ARG, "%s: naxes is %d, expected >= 0", name, naxes);
            return nb_graph_fail(g, NB_ERR_ARG);
        }
        if (naxes == 0 || !axes) {
            ia[0] = ((int64_t)1 << nd) - 1;
        } else {
            for (int k = 0; k < naxes; k++) {
                int a = nb_axis(axes[k], nd);
                if (a < 0) {
                    nb_set_error(NB_ERR_ARG, "%s: axis %d is out of range for a %d-D input", name,
                                 axes[k], nd);
                    return nb_graph_fail(g, NB_ERR_ARG);
                }
                if (ia[0] >> a & 1) {
                    nb_set_error(NB_ERR_ARG, "%s: axis %d is given twice (axis %d of a %d-D input)",
                                 name, axes[k], a, nd);
                    return nb_graph_fail(g, NB_ERR_ARG);
                }
                ia[0] |= (int64_t)1 << a;
            }
        }
    }
    return nb_graph_add_node(g, op, 1, &x, ia, 2, NULL, 0);
}

nb_node *nb_sum(nb_graph *g, nb_node *x, int naxes, const int *axes, int keepdims)
{
    return reduce(g, NB_OP_SUM, x, naxes, axes, keepdims);
}
nb_node *nb_mean(nb_graph *g, nb_node *x, int naxes, const int *axes, int keepdims)
{
    return reduce(g, NB_OP_MEAN, x, naxes, axes, keepdims);
}
nb_node *nb_max(nb_graph *g, nb_node *x, int naxes, const int *axes, int keepdims)
{
    return reduce(g, NB_OP_MAX, x, naxes, axes, keepdims);
}
