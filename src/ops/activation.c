/*
 * activation.c - relu, leaky_relu, elu, gelu (exact and tanh), sigmoid, tanh,
 * softplus. Formulas and edge conventions follow PyTorch.
 *
 *   x: any shape, y: same shape.  Forward y = f(x); backward dx += dy * f'(x).
 * Attributes: leaky_relu fa[0] = slope; elu fa[0] = alpha; gelu ia[0] = 1 for
 * the tanh approximation; softplus fa[0] = beta, fa[1] = threshold.
 */
#include "ops.h"

#include <math.h>

#define SQRT_2_OVER_PI 0.7978845608028654f   /* sqrt(2 / pi) */
#define INV_SQRT_2PI   0.3989422804014327f   /* 1 / sqrt(2 pi) */
#define INV_SQRT_2     0.7071067811865476f
#define GELU_KAPPA     0.044715f

/* ---- relu: y = max(x, 0); dy flows where x > 0 ----
 * (the most common activation of large tensors: split over the pool) */
static void relu_fwd_range(void *ctx, size_t lo, size_t hi)
{
    const nb_exec *e = ctx;
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static nb_status relu_forward(const nb_exec *e)
{
    nb_pool_for(e->pool, e->out->n, 1 << 15, relu_fwd_range, (void *)e);
    return NB_OK;
}
static void relu_bwd_range(void *ctx, size_t lo, size_t hi)
{
    const nb_exec *e = ctx;
    const float *x = e->in[0]->x, *dy = e->out->g;
    float *dx = e->in[0]->g;
    if (e->fresh & 1)
        for (size_t i = lo; i < hi; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
    else
        for (size_t i = lo; i < hi; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}
static void relu_backward(const nb_exec *e)
{
    nb_pool_for(e->pool, e->out->n, 1 << 15, relu_bwd_range, (void *)e);
}

/* ---- fused relu (ops with NB_OPF_ACT): y > 0 exactly where x > 0, so the
 * activated output is enough for backward; same formulas as above ---- */
typedef struct {
    float *y, *dy;
} act_job;

static void act_apply_range(void *ctx, size_t lo, size_t hi)
{
    float *y = ((act_job *)ctx)->y;
    for (size_t i = lo; i < hi; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

static void act_grad_range(void *ctx, size_t lo, size_t hi)
{
    const act_job *j = ctx;
    for (size_t i = lo; i < hi; i++) j->dy[i] = j->y[i] > 0.0f ? j->dy[i] : 0.0f;
}

void nb_act_apply(nb_pool *pool, int act, float *y, size_t n)
{
    act_job j = {y, NULL};
    if (act == NB_ACT_RELU) nb_pool_for(pool, n, 1 << 15, act_apply_range, &j);
}

void nb_act_bias(int act, float *y, float b, size_t n)
{
    if (act == NB_ACT_RELU)
        for (size_t i = 0; i < n; i++) {
            const float v = y[i] + b;
            y[i] = v > 0.0f ? v : 0.0f;
        }
    else
        for (size_t i = 0; i < n; i++) y[i] += b;
}

void nb_act_grad(nb_pool *pool, int act, const float *y, float *dy, size_t n)
{
    act_job j = {(float *)y, dy};
    if (act == NB_ACT_RELU) nb_pool_for(pool, n, 1 << 15, act_grad_range, &j);
}

/* ---- leaky_relu: y = x > 0 ? x : slope * x ---- */
static nb_status leaky_relu_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x, s = e->node->fa[0];
    float *y = e->out->x;
    for (size_t i = 0; i < e->out->n; i++) y[i] = x[i] > 0.0f ? x[i] : s * x[i];
    return NB_OK;
}
static void leaky_relu_backward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *dy = e->out->g, s = e->node->fa[0];
    float *dx = e->in[0]->g;
    for (size_t i = 0; i < e->out->n; i++) dx[i] += x[i] > 0.0f ? dy[i] : s * dy[i];
}

/* ---- elu: y = x > 0 ? x : alpha (e^x - 1); dy/dx = 1 or alpha e^x = y + alpha ---- */
static nb_status elu_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x, a = e->node->fa[0];
    float *y = e->out->x;
    for (size_t i = 0; i < e->out->n; i++) y[i] = x[i] > 0.0f ? x[i] : a * expm1f(x[i]);
    return NB_OK;
}
static void elu_backward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *dy = e->out->g, a = e->node->fa[0];
    float *dx = e->in[0]->g;
    for (size_t i = 0; i < e->out->n; i++) dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * a * expf(x[i]);
}

/* ---- gelu: exact y = x Phi(x); tanh y = x/2 (1 + tanh(sqrt(2/pi)(x + k x^3))) ---- */
static nb_status gelu_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    if (e->node->ia[0]) {
        for (size_t i = 0; i < e->out->n; i++) {
            float v = x[i], inner = SQRT_2_OVER_PI * (v + GELU_KAPPA * v * v * v);
            y[i] = 0.5f * v * (1.0f + tanhf(inner));
        }
    } else {
        for (size_t i = 0; i < e->out->n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * INV_SQRT_2));
    }
    return NB_OK;
}
static void gelu_backward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *dy = e->out->g;
    float *dx = e->in[0]->g;
    if (e->node->ia[0]) {
        for (size_t i = 0; i < e->out->n; i++) {
            float v = x[i], t = tanhf(SQRT_2_OVER_PI * (v + GELU_KAPPA * v * v * v));
            float dinner = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_KAPPA * v * v);
            dx[i] += dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * dinner);
        }
    } else {
        /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        for (size_t i = 0; i < e->out->n; i++) {
            float v = x[i];
            float cdf = 0.5f * (1.0f + erff(v * INV_SQRT_2)), pdf = INV_SQRT_2PI * expf(-0.5f * v * v);
            dx[i] += dy[i] * (cdf + v * pdf);
        }
    }
}

/* ---- sigmoid: y = 1 / (1 + e^-x), stable on both sides; dy/dx = y (1 - y) ---- */
static nb_status sigmoid_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    for (size_t i = 0; i < e->out->n; i++) {
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float z = expf(x[i]);
            y[i] = z / (1.0f + z);
        }
    }
    return NB_OK;
}
static void sigmoid_backward(const nb_exec *e)
{
    const float *y = e->out->x, *dy = e->out->g;
    float *dx = e->in[0]->g;
    for (size_t i = 0; i < e->out->n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

/* ---- tanh: dy/dx = 1 - y^2 ---- */
static nb_status tanh_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    for (size_t i = 0; i < e->out->n; i++) y[i] = tanhf(x[i]);
    return NB_OK;
}
static void tanh_backward(const nb_exec *e)
{
    const float *y = e->out->x, *dy = e->out->g;
    float *dx = e->in[0]->g;
    for (size_t i = 0; i < e->out->n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

/* ---- softplus: y = log(1 + e^(beta x)) / beta, or x where beta x > threshold;
 *      dy/dx = sigmoid(beta x), or 1 past the threshold ---- */
static nb_status softplus_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x, beta = e->node->fa[0], th = e->node->fa[1];
    float *y = e->out->x;
    for (size_t i = 0; i < e->out->n; i++) {
        float bx = beta * x[i];
        y[i] = bx > th ? x[i] : log1pf(expf(bx)) / beta;
    }
    return NB_OK;
}
static void softplus_backward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *dy = e->out->g, beta = e->node->fa[0], th = e->node->fa[1];
    float *dx = e->in[0]->g;
    for (size_t i = 0; i < e->out->n; i++) {
        float bx = beta * x[i];
        if (bx > th) {
            dx[i] += dy[i];
        } else {
            float z = expf(bx);
            dx[i] += dy[i] * z / (z + 1.0f);
        }
    }
}

const nb_op_def nb_def_relu = {"relu", NB_OPF_ASSIGN, nb_shape_same, NULL, NULL, relu_forward, relu_backward};
const nb_op_def nb_def_leaky_relu = {"leaky_relu", 0, nb_shape_same, NULL, NULL,
                                     leaky_relu_forward, leaky_relu_backward};
const nb_op_def nb_def_elu = {"elu", 0, nb_shape_same, NULL, NULL, elu_forward, elu_backward};
const nb_op_def nb_def_gelu = {"gelu", 0, nb_shape_same, NULL, NULL, gelu_forward, gelu_backward};
const nb_op_def nb_def_sigmoid = {"sigmoid", 0, nb_shape_same, NULL, NULL, sigmoid_forward,
                                  sigmoid_backward};
const nb_op_def nb_def_tanh = {"tanh", 0, nb_shape_same, NULL, NULL, tanh_forward, tanh_backward};
const nb_op_def nb_def_softplus = {"softplus", 0, nb_shape_same, NULL, NULL, softplus_forward,
                                   softplus_backward};

static nb_node *act(nb_graph *g, nb_op_kind op, nb_node *x, int64_t i0, float f0, float f1)
{
    float fa[2] = {f0, f1};
    return nb_graph_add_node(g, op, 1, &x, &i0, 1, fa, 2);
}

nb_node *nb_relu(nb_graph *g, nb_node *x) { return act(g, NB_OP_RELU, x, 0, 0, 0); }
nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float slope)
{
    return act(g, NB_OP_LEAKY_RELU, x, 0, slope, 0);
}
nb_node *nb_elu(nb_graph *g, nb_node *x, float alpha) { return act(g, NB_OP_ELU, x, 0, alpha, 0); }
nb_node *nb_gelu(nb_graph *g, nb_node *x, int tanh_approx)
{
    return act(g, NB_OP_GELU, x, tanh_approx != 0, 0, 0);
}
nb_node *nb_sigmoid(nb_graph *g, nb_node *x) { return act(g, NB_OP_SIGMOID, x, 0, 0, 0); }
nb_node *nb_tanh(nb_graph *g, nb_node *x) { return act(g, NB_OP_TANH, x, 0, 0, 0); }
nb_node *nb_softplus(nb_graph *g, nb_node *x, float beta, float threshold)
{
    if (g && x && !(beta > 0.0f)) {
        nb_set_error(NB_ERR_ARG, "softplus: beta must be > 0, got %g", beta);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    return act(g, NB_OP_SOFTPLUS, x, 0, beta, threshold);
}
