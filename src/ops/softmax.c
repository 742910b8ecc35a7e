/*
 * softmax.c - softmax and log_softmax over one axis.
 *
 *   x: any shape with at least one axis; ia[0]: the axis (resolved at build
 *   time); y: same shape as x.
 *
 * The input is viewed as [outer, D, inner] where D is the size of the axis:
 * each of the outer * inner slices is a vector of D elements, inner apart in
 * memory. Both ops subtract the slice's max before exponentiating, so large
 * logits cannot overflow (exp of a value <= 0 is at most 1):
 *
 *   softmax:      y_d = exp(x_d - m) / s,   s = sum_d exp(x_d - m)
 *   log_softmax:  y_d = x_d - m - log(s)
 *
 * Backward, per slice, from the saved output y (no saved state needed):
 *   softmax:      dx_d += y_d * (dy_d - sum_k dy_k y_k)
 *   log_softmax:  dx_d += dy_d - exp(y_d) * sum_k dy_k
 */
#include "ops.h"

#include <math.h>

/* The [outer, D, inner] view of shape s around axis. */
static void split_axis(const nb_shape *s, int axis, size_t *outer, size_t *D, size_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < axis; k++) *outer *= (size_t)s->d[k];
    *D = (size_t)s->d[axis];
    for (int k = axis + 1; k < s->ndim; k++) *inner *= (size_t)s->d[k];
}

/* x: X with ndim >= 1; y: X */
static nb_status softmax_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    if (n->ia[0] < 0 || n->ia[0] >= in[0]->ndim)
        return nb_shape_error(n, "axis out of range for the input", in[0], NULL);
    *out = *in[0];
    return NB_OK;
}

static nb_status softmax_forward(const nb_exec *e)
{
    const int log_out = e->node->op == NB_OP_LOG_SOFTMAX;
    size_t outer, D, inner;
    split_axis(&e->in[0]->s, (int)e->node->ia[0], &outer, &D, &inner);
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            const float *x = e->in[0]->x + o * D * inner + j;
            float *y = e->out->x + o * D * inner + j;
            float m = x[0];
            for (size_t d = 1; d < D; d++)
                if (x[d * inner] > m) m = x[d * inner];
            double s = 0.0;
            if (log_out) {
                for (size_t d = 0; d < D; d++) s += expf(x[d * inner] - m);
                const float lse = (float)log(s);
                for (size_t d = 0; d < D; d++) y[d * inner] = x[d * inner] - m - lse;
            } else {
                /* y holds exp(x - m) until the sum is known */
                for (size_t d = 0; d < D; d++) {
                    y[d * inner] = expf(x[d * inner] - m);
                    s += y[d * inner];
                }
                const float inv = (float)(1.0 / s);
                for (size_t d = 0; d < D; d++) y[d * inner] *= inv;
            }
        }
    return NB_OK;
}

static void softmax_backward(const nb_exec *e)
{
    const int log_out = e->node->op == NB_OP_LOG_SOFTMAX;
    size_t outer, D, inner;
    split_axis(&e->in[0]->s, (int)e->node->ia[0], &outer, &D, &inner);
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            const size_t base = o * D * inner + j;
            const float *y = e->out->x + base, *dy = e->out->g + base;
            float *dx = e->in[0]->g + base;
            double s = 0.0;
            if (log_out) {
                for (size_t d = 0; d < D; d++) s += dy[d * inner];
                const float sf = (float)s;
                for (size_t d = 0; d < D; d++)
                    dx[d * inner] += dy[d * inner] - expf(y[d * inner]) * sf;
            } else {
                for (size_t d = 0; d < D; d++) s += (double)dy[d * inner] * y[d * inner];
                const float sf = (float)s;
                for (size_t d = 0; d < D; d++) dx[d * inner] += y[d * inner] * (dy[d * inner] - sf);
            }
        }
}

const nb_op_def nb_def_softmax = {"softmax", 0, softmax_shape, NULL, NULL, softmax_forward,
                                  softmax_backward};
const nb_op_def nb_def_log_softmax = {"log_softmax", 0, softmax_shape, NULL, NULL,
                                      softmax_forward, softmax_backward};

static nb_node *softmax_op(nb_graph *g, nb_op_kind op, nb_node *x, int axis)
{
    int64_t ia = axis;
    if (g && x) {
        int a = nb_axis(axis, x->shape.ndim);
        if (a < 0) {
            nb_set_error(NB_ERR_ARG, "%s: axis %d is out of range for a %d-D input",
                         nb_op_table[op]->name, axis, x->shape.ndim);
            return nb_graph_fail(g, NB_ERR_ARG);
        }
        ia = a;
    }
    return nb_graph_add_node(g, op, 1, &x, &ia, 1, NULL, 0);
}

nb_node *nb_softmax(nb_graph *g, nb_node *x, int axis)
{
    return softmax_op(g, NB_OP_SOFTMAX, x, axis);
}
nb_node *nb_log_softmax(nb_graph *g, nb_node *x, int axis)
{
    return softmax_op(g, NB_OP_LOG_SOFTMAX, x, axis);
}
