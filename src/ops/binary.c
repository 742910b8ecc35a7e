/*
 * binary.c - add, sub, mul, div with NumPy broadcasting.
 *
 *   a: shape A, b: shape B, out: broadcast(A, B)
 *   out[i] = a[ia(i)] op b[ib(i)], where ia, ib map an output index to the
 *   input element it reads (stride 0 along broadcast axes).
 *
 * Backward sums the gradient over the broadcast axes: da[ia(i)] += dout[i] *
 * d(op)/da, visiting outputs in order, so the sum is deterministic.
 *
 * The walk goes row by row: the last axis is an inner loop with constant
 * input strides (0 or 1 in practice), the other axes advance an odometer.
 */
#include "ops.h"

/* Odometer over all axes but the last; keeps the input offsets of the row. */
typedef struct {
    int nd;
    int64_t dim[NB_MAX_DIMS], sa[NB_MAX_DIMS], sb[NB_MAX_DIMS], idx[NB_MAX_DIMS];
    int64_t len, inc_a, inc_b;   /* the last axis: length and input strides */
    size_t rows;
    int64_t oa, ob;              /* offsets of the current row */
} nb_bcast;

static void bcast_init(nb_bcast *w, const nb_shape *a, const nb_shape *b, const nb_shape *out)
{
    w->nd = out->ndim;
    nb_broadcast_strides(a, out, w->sa);
    nb_broadcast_strides(b, out, w->sb);
    for (int i = 0; i < out->ndim; i++) {
        w->dim[i] = out->d[i];
        w->idx[i] = 0;
    }
    if (out->ndim == 0) {
        w->len = 1;
        w->inc_a = w->inc_b = 0;
        w->rows = 1;
    } else {
        w->len = out->d[out->ndim - 1];
        w->inc_a = w->sa[out->ndim - 1];
        w->inc_b = w->sb[out->ndim - 1];
        w->rows = nb_shape_numel(out) / (size_t)w->len;
    }
    w->oa = w->ob = 0;
}

static void bcast_next(nb_bcast *w)
{
    for (int k = w->nd - 2; k >= 0; k--) {
        w->oa += w->sa[k];
        w->ob += w->sb[k];
        if (++w->idx[k] < w->dim[k]) return;
        w->oa -= w->sa[k] * w->dim[k];
        w->ob -= w->sb[k] * w->dim[k];
        w->idx[k] = 0;
    }
}

static nb_status binary_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    if (!nb_broadcast_shape(in[0], in[1], out))
        return nb_shape_error(n, "shapes do not broadcast", in[0], in[1]);
    return NB_OK;
}

/* out = a op b */
static nb_status binary_forward(const nb_exec *e)
{
    const nb_tensor *A = e->in[0], *B = e->in[1];
    float *y = e->out->x;
    nb_op_kind op = e->node->op;
    nb_bcast w;
    bcast_init(&w, &A->s, &B->s, &e->out->s);
    const int64_t n = w.len, sa = w.inc_a, sb = w.inc_b;
    for (size_t r = 0; r < w.rows; r++, y += n, bcast_next(&w)) {
        const float *a = A->x + w.oa, *b = B->x + w.ob;
        switch (op) {
        case NB_OP_ADD: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] + b[i * sb]; break;
        case NB_OP_SUB: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] - b[i * sb]; break;
        case NB_OP_MUL: for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] * b[i * sb]; break;
        default:        for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] / b[i * sb]; break;
        }
    }
    return NB_OK;
}

/* da += dy * d(a op b)/da ; db += dy * d(a op b)/db */
static void binary_backward(const nb_exec *e)
{
    const nb_tensor *A = e->in[0], *B = e->in[1];
    const float *dy = e->out->g;
    nb_op_kind op = e->node->op;
    nb_bcast w;
    bcast_init(&w, &A->s, &B->s, &e->out->s);
    const int64_t n = w.len, sa = w.inc_a, sb = w.inc_b;
    for (size_t r = 0; r < w.rows; r++, dy += n, bcast_next(&w)) {
        const float *a = A->x + w.oa, *b = B->x + w.ob;
        float *da = A->g ? A->g + w.oa : NULL, *db = B->g ? B->g + w.ob : NULL;
        switch (op) {
        case NB_OP_ADD:
            if (da) for (int64_t i = 0; i < n; i++) da[i * sa] += dy[i];
            if (db) for (int64_t i = 0; i < n; i++) db[i * sb] += dy[i];
            break;
        case NB_OP_SUB:
            if (da) for (int64_t i = 0; i < n; i++) da[i * sa] += dy[i];
            if (db) for (int64_t i = 0; i < n; i++) db[i * sb] -= dy[i];
            break;
        case NB_OP_MUL:
            if (da) for (int64_t i = 0; i < n; i++) da[i * sa] += dy[i] * b[i * sb];
            if (db) for (int64_t i = 0; i < n; i++) db[i * sb] += dy[i] * a[i * sa];
            break;
        default: /* div: d/da = 1/b, d/db = -a/b^2 */
            if (da) for (int64_t i = 0; i < n; i++) da[i * sa] += dy[i] / b[i * sb];
            if (db)
                for (int64_t i = 0; i < n; i++) {
                    float bi = b[i * sb];
                    db[i * sb] -= dy[i] * a[i * sa] / (bi * bi);
                }
            break;
        }
    }
}

const nb_op_def nb_def_add = {"add", 0, binary_shape, NULL, NULL, binary_forward, binary_backward};
const nb_op_def nb_def_sub = {"sub", 0, binary_shape, NULL, NULL, binary_forward, binary_backward};
const nb_op_def nb_def_mul = {"mul", 0, binary_shape, NULL, NULL, binary_forward, binary_backward};
const nb_op_def nb_def_div = {"div", 0, binary_shape, NULL, NULL, binary_forward, binary_backward};

static nb_node *binary(nb_graph *g, nb_op_kind op, nb_node *a, nb_node *b)
{
    nb_node *in[2] = {a, b};
    return nb_graph_add_node(g, op, 2, in, NULL, 0, NULL, 0);
}

nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, NB_OP_ADD, a, b); }
nb_node *nb_sub(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, NB_OP_SUB, a, b); }
nb_node *nb_mul(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, NB_OP_MUL, a, b); }
nb_node *nb_div(nb_graph *g, nb_node *a, nb_node *b) { return binary(g, NB_OP_DIV, a, b); }
