/*
 * unary.c - elementwise ops of one input: neg, scale, add_scalar, exp, log,
 * sqrt, pow, abs.
 *
 *   x: any shape, y: same shape.  Forward y[i] = f(x[i]);
 *   backward dx[i] += dy[i] * f'(x[i]), written with y where that is cheaper.
 * Scalar attributes sit in fa[0].
 */
#include "ops.h"

#include <math.h>

static nb_status unary_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    const size_t n = e->out->n;
    const float c = e->node->fa[0];
    switch (e->node->op) {
    case NB_OP_NEG:        for (size_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case NB_OP_SCALE:      for (size_t i = 0; i < n; i++) y[i] = c * x[i]; break;
    case NB_OP_ADD_SCALAR: for (size_t i = 0; i < n; i++) y[i] = x[i] + c; break;
    case NB_OP_EXP:        for (size_t i = 0; i < n; i++) y[i] = expf(x[i]); break;
    case NB_OP_LOG:        for (size_t i = 0; i < n; i++) y[i] = logf(x[i]); break;
    case NB_OP_SQRT:       for (size_t i = 0; i < n; i++) y[i] = sqrtf(x[i]); break;
    case NB_OP_POW:        for (size_t i = 0; i < n; i++) y[i] = powf(x[i], c); break;
    case NB_OP_ABS:        for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]); break;
    default: break;
    }
    return NB_OK;
}

static void unary_backward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *y = e->out->x, *dy = e->out->g;
    float *dx = e->in[0]->g;
    const size_t n = e->out->n;
    const float c = e->node->fa[0];
    switch (e->node->op) {
    case NB_OP_NEG:        for (size_t i = 0; i < n; i++) dx[i] -= dy[i]; break;
    case NB_OP_SCALE:      for (size_t i = 0; i < n; i++) dx[i] += c * dy[i]; break;
    case NB_OP_ADD_SCALAR: for (size_t i = 0; i < n; i++) dx[i] += dy[i]; break;
    case NB_OP_EXP:        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i]; break;
    case NB_OP_LOG:        for (size_t i = 0; i < n; i++) dx[i] += dy[i] / x[i]; break;
    /* d sqrt(x) = 1 / (2 sqrt(x)) */
    case NB_OP_SQRT:       for (size_t i = 0; i < n; i++) dx[i] += dy[i] * 0.5f / y[i]; break;
    /* d x^c = c x^(c-1); c == 0 has zero derivative everywhere (even at x = 0) */
    case NB_OP_POW:
        if (c != 0.0f)
            for (size_t i = 0; i < n; i++) dx[i] += dy[i] * c * powf(x[i], c - 1.0f);
        break;
    /* d |x| = sign(x), 0 at 0 as in PyTorch */
    case NB_OP_ABS:
        for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : x[i] < 0 ? -dy[i] : 0.0f;
        break;
    default: break;
    }
}

#define UNARY_DEF(var, nm) \
    const nb_op_def var = {nm, 0, nb_shape_same, NULL, NULL, unary_forward, unary_backward}
UNARY_DEF(nb_def_neg, "neg");
UNARY_DEF(nb_def_scale, "scale");
UNARY_DEF(nb_def_add_scalar, "add_scalar");
UNARY_DEF(nb_def_exp, "exp");
UNARY_DEF(nb_def_log, "log");
UNARY_DEF(nb_def_sqrt, "sqrt");
UNARY_DEF(nb_def_pow, "pow");
UNARY_DEF(nb_def_abs, "abs");

static nb_node *unary(nb_graph *g, nb_op_kind op, nb_node *x, float c)
{
    return nb_graph_add_node(g, op, 1, &x, NULL, 0, &c, 1);
}

nb_node *nb_neg(nb_graph *g, nb_node *x) { return unary(g, NB_OP_NEG, x, 0); }
nb_node *nb_scale(nb_graph *g, nb_node *x, float alpha) { return unary(g, NB_OP_SCALE, x, alpha); }
nb_node *nb_add_scalar(nb_graph *g, nb_node *x, float c) { return unary(g, NB_OP_ADD_SCALAR, x, c); }
nb_node *nb_exp(nb_graph *g, nb_node *x) { return unary(g, NB_OP_EXP, x, 0); }
nb_node *nb_log(nb_graph *g, nb_node *x) { return unary(g, NB_OP_LOG, x, 0); }
nb_node *nb_sqrt(nb_graph *g, nb_node *x) { return unary(g, NB_OP_SQRT, x, 0); }
nb_node *nb_pow(nb_graph *g, nb_node *x, float p) { return unary(g, NB_OP_POW, x, p); }
nb_node *nb_abs(nb_graph *g, nb_node *x) { return unary(g, NB_OP_ABS, x, 0); }
