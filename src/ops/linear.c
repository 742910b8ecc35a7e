/*
 * linear.c - the fully connected layer, torch.nn.functional.linear.
 *
 *   x: [..., in]   weight W: [out, in] (PyTorch's layout)   bias b: [out] (optional)
 *   y: [..., out]
 *
 *   forward   y = x W^T + b
 *   backward  dx += dy W;  dW += dy^T x;  db += sum of dy over the leading rows
 *
 * Every leading axis of x is folded into one row axis (x is row-major, so
 * x is a [rows, in] matrix and y a [rows, out] one): the forward and the two
 * matrix gradients are one nb_sgemm each, accumulating with beta = 1 in
 * backward (beta = 0 where the gradient is written first, nb_exec.fresh).
 * The bias gradient sums rows in order, in double, so it is deterministic.
 * A fused relu (NB_OPF_ACT) is applied to y after the product and its mask
 * to dy before the gradients. nb_sgemm takes int sizes: shape() refuses any
 * of rows, in and out above INT_MAX.
 */
#include "ops.h"

#include <limits.h>
#include <string.h>

/* x [..., in], W [out, in], b [out] -> [..., out] */
static nb_status linear_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[0], *w = in[1];
    if (x->ndim < 1)
        return nb_shape_error(n, "the input must have at least 1 axis ([..., in]) for weight "
                                 "[out, in]", x, w);
    if (w->ndim != 2)
        return nb_shape_error(n, "the weight must be 2-D [out, in]", x, w);
    if (x->d[x->ndim - 1] != w->d[1])
        return nb_shape_error(n, "the input's last axis differs from the weight's in_features "
                                 "(input [..., in], weight [out, in])", x, w);
    if (n->n_in == 3 && (in[2]->ndim != 1 || in[2]->d[0] != w->d[0]))
        return nb_shape_error(n, "the bias must be [out] for weight [out, in]", w, in[2]);
    const size_t numel = nb_shape_numel(x);
    const size_t rows = x->d[x->ndim - 1] ? numel / (size_t)x->d[x->ndim - 1] : 0;
    if (rows > (size_t)INT_MAX || w->d[0] > INT_MAX || w->d[1] > INT_MAX)
        return nb_shape_error(n, "a matrix axis is larger than INT_MAX", x, w);
    *out = *x;
    out->d[out->ndim - 1] = w->d[0];
    return NB_OK;
}

/* the bias gradient's double accumulators: [out] */
static size_t linear_scratch(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return n->n_in == 3 ? (size_t)in[1]->d[0] * sizeof(double) : 0;
}

/* y [rows, out] = x [rows, in] @ W^T (+ b broadcast over rows) */
static nb_status linear_forward(const nb_exec *e)
{
    const nb_tensor *X = e->in[0], *W = e->in[1];
    const int O = (int)W->s.d[0], I = (int)W->s.d[1];
    const int rows = (int)(X->n / (size_t)I);
    float *y = e->out->x;
    float beta = 0.0f;
    if (e->n_in == 3) {
        const float *b = e->in[2]->x;
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)r * O, b, (size_t)O * sizeof(float));
        beta = 1.0f;
    }
    nb_sgemm_pool(e->pool, 0, 1, rows, O, I, 1.0f, X->x, I, W->x, I, beta, y, O);
    nb_act_apply(e->pool, e->act, y, e->out->n);
    return NB_OK;
}

/* dx [rows, in] += dy [rows, out] @ W [out, in]
 * dW [out, in]  += dy^T [out, rows] @ x [rows, in]
 * db [out]      += sum_r dy[r, :] */
static void linear_backward(const nb_exec *e)
{
    const nb_tensor *X = e->in[0], *W = e->in[1];
    const int O = (int)W->s.d[0], I = (int)W->s.d[1];
    const int rows = (int)(X->n / (size_t)I);
    float *dy = e->out->g;
    nb_act_grad(e->pool, e->act, e->out->x, dy, e->out->n);   /* a fused relu's mask first */
    /* beta 0 overwrites a gradient nothing has written yet (e->fresh) */
    if (X->g) nb_sgemm_pool(e->pool, 0, 0, rows, I, O, 1.0f, dy, O, W->x, I, e->fresh & 1 ? 0.0f : 1.0f, X->g, I);
    if (W->g) nb_sgemm_pool(e->pool, 1, 0, O, I, rows, 1.0f, dy, O, X->x, I, e->fresh & 2 ? 0.0f : 1.0f, W->g, I);
    if (e->n_in == 3 && e->in[2]->g) {
        double *acc = e->scratch;
        float *db = e->in[2]->g;
        memset(acc, 0, (size_t)O * sizeof *acc);
        for (int r = 0; r < rows; r++) {
            const float *d = dy + (size_t)r * O;
            for (int o = 0; o < O; o++) acc[o] += d[o];
        }
        for (int o = 0; o < O; o++) db[o] = (e->fresh & 4 ? 0.0f : db[o]) + (float)acc[o];
    }
}

const nb_op_def nb_def_linear = {"linear", NB_OPF_ACT | NB_OPF_ASSIGN, linear_shape, NULL, linear_scratch, linear_forward,
                                 linear_backward};

nb_node *nb_linear(nb_graph *g, nb_node *x, nb_node *weight, nb_node *bias)
{
    nb_node *in[3] = {x, weight, bias};
    return nb_graph_add_node(g, NB_OP_LINEAR, bias ? 3 : 2, in, NULL, 0, NULL, 0);
}
