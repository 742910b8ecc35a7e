/*
 * loss.c - softmax cross-entropy, mean squared error and binary
 * cross-entropy on logits. Each returns a 0-d scalar: the mean over rows
 * (cross-entropy) or over elements (mse, bce), summed in double in memory
 * order so the result is deterministic.
 *
 * The gradient arriving at a loss is a single number, dloss (out->g[0]);
 * 1 when the loss is the target of backward.
 */
#include "ops.h"

#include <math.h>

/* ---- softmax_cross_entropy ----
 *   logits z: [N, C]; labels y: [N], class indices stored as floats; out: []
 *   loss = 1/N sum_i (logsumexp(z_i) - z_i[y_i])
 *   dz_i = dloss * (p_i - onehot(y_i)) / N, p_i = softmax(z_i)
 * saved: p, [N, C] floats. Labels get no gradient (the builder refuses
 * labels that would need one); their values are checked in forward, where
 * they are first seen. */
static nb_status softmax_ce_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    if (in[0]->ndim != 2)
        return nb_shape_error(n, "logits must be 2-D [N, C], labels 1-D [N]", in[0], in[1]);
    if (in[1]->ndim != 1)
        return nb_shape_error(n, "labels must be 1-D [N] for logits [N, C]", in[0], in[1]);
    if (in[0]->d[0] != in[1]->d[0])
        return nb_shape_error(n, "logits [N, C] and labels [N] have different N", in[0], in[1]);
    out->ndim = 0;
    return NB_OK;
}

static size_t softmax_ce_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return nb_shape_numel(in[0]) * sizeof(float);
}

static nb_status softmax_ce_forward(const nb_exec *e)
{
    const nb_node *n = e->node;
    const size_t N = (size_t)e->in[0]->s.d[0], C = (size_t)e->in[0]->s.d[1];
    const float *labels = e->in[1]->x;
    float *prob = e->saved;
    double total = 0.0;
    for (size_t i = 0; i < N; i++) {
        const float v = labels[i];
        if (isnan(v))
            return nb_set_error(NB_ERR_VALUE, "%s: label %g at row %zu is not a class index",
                                nb_op_table[n->op]->name, v, i);
        if (v != floorf(v))
            return nb_set_error(NB_ERR_VALUE, "%s: label %g at row %zu is not an integer",
                                nb_op_table[n->op]->name, v, i);
        if (!(v >= 0.0f && v < (float)C))
            return nb_set_error(NB_ERR_VALUE, "%s: label %g at row %zu is outside [0, %zu)",
                                nb_op_table[n->op]->name, v, i, C);
        const float *z = e->in[0]->x + i * C;
        float *p = prob + i * C;
        float m = z[0];
        for (size_t c = 1; c < C; c++)
            if (z[c] > m) m = z[c];
        /* p holds exp(z - m) until the sum is known */
        double s = 0.0;
        for (size_t c = 0; c < C; c++) {
            p[c] = expf(z[c] - m);
            s += p[c];
        }
        const float inv = (float)(1.0 / s);
        for (size_t c = 0; c < C; c++) p[c] *= inv;
        /* logsumexp(z) - z[y] = m + log(s) - z[y] */
        total += (double)m + log(s) - (double)z[(size_t)v];
    }
    e->out->x[0] = (float)(total / (double)N);
    return NB_OK;
}

static void softmax_ce_backward(const nb_exec *e)
{
    float *dz = e->in[0]->g;
    if (!dz) return;
    const size_t N = (size_t)e->in[0]->s.d[0], C = (size_t)e->in[0]->s.d[1];
    const float *labels = e->in[1]->x, *prob = e->saved;
    const float scale = e->out->g[0] / (float)N;
    for (size_t i = 0; i < N; i++) {
        const float *p = prob + i * C;
        const size_t y = (size_t)labels[i];   /* validated by forward */
        for (size_t c = 0; c < C; c++) dz[i * C + c] += scale * (p[c] - (c == y ? 1.0f : 0.0f));
    }
}

/* ---- mse ----
 *   pred p: X; target t: X; out: []
 *   loss = 1/n sum (p - t)^2;  dp = dloss * 2 (p - t) / n;  dt = -dp */
static nb_status same_shape_loss(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    if (!nb_shape_eq(in[0], in[1]))
        return nb_shape_error(n, "the two inputs must have the same shape", in[0], in[1]);
    out->ndim = 0;
    return NB_OK;
}

static nb_status mse_forward(const nb_exec *e)
{
    const float *p = e->in[0]->x, *t = e->in[1]->x;
    const size_t n = e->in[0]->n;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)p[i] - (double)t[i];
        total += d * d;
    }
    e->out->x[0] = (float)(total / (double)n);
    return NB_OK;
}

static void mse_backward(const nb_exec *e)
{
    const float *p = e->in[0]->x, *t = e->in[1]->x;
    float *dp = e->in[0]->g, *dt = e->in[1]->g;
    const size_t n = e->in[0]->n;
    const float scale = 2.0f * e->out->g[0] / (float)n;
    for (size_t i = 0; i < n; i++) {
        const float d = scale * (p[i] - t[i]);
        if (dp) dp[i] += d;
        if (dt) dt[i] -= d;
    }
}

/* ---- bce_with_logits ----
 *   logits x: X; target t: X (probabilities in [0, 1]); out: []
 *   loss = 1/n sum max(x, 0) - x t + log1p(exp(-|x|))
 *     (= -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)), written so that
 *     exp never overflows; PyTorch's form)
 *   dx = dloss * (sigmoid(x) - t) / n;  dt = -dloss * x / n */
static nb_status bce_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *t = e->in[1]->x;
    const size_t n = e->in[0]->n;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        total += (double)(v > 0.0f ? v : 0.0f) - (double)v * t[i] + log1p(exp(-fabs((double)v)));
    }
    e->out->x[0] = (float)(total / (double)n);
    return NB_OK;
}

static void bce_backward(const nb_exec *e)
{
    const float *x = e->in[0]->x, *t = e->in[1]->x;
    float *dx = e->in[0]->g, *dt = e->in[1]->g;
    const size_t n = e->in[0]->n;
    const float scale = e->out->g[0] / (float)n;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (dx) {
            /* sigmoid without overflow on either side */
            const float z = expf(-fabsf(v));
            const float sig = v >= 0.0f ? 1.0f / (1.0f + z) : z / (1.0f + z);
            dx[i] += scale * (sig - t[i]);
        }
        if (dt) dt[i] -= scale * v;
    }
}

const nb_op_def nb_def_softmax_ce = {"softmax_cross_entropy", 0, softmax_ce_shape,
                                     softmax_ce_saved, NULL, softmax_ce_forward,
                                     softmax_ce_backward};
const nb_op_def nb_def_mse = {"mse", 0, same_shape_loss, NULL, NULL, mse_forward, mse_backward};
const nb_op_def nb_def_bce_logits = {"bce_with_logits", 0, same_shape_loss, NULL, NULL,
                                     bce_forward, bce_backward};

nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels)
{
    nb_node *in[2] = {logits, labels};
    if (g && logits && labels && labels->graph == g && labels->requires_grad) {
        nb_set_error(NB_ERR_ARG, "softmax_cross_entropy: the labels depend on a parameter; "
                                 "labels are class indices and take no gradient");
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    return nb_graph_add_node(g, NB_OP_SOFTMAX_CE, 2, in, NULL, 0, NULL, 0);
}

nb_node *nb_mse(nb_graph *g, nb_node *pred, nb_node *target)
{
    nb_node *in[2] = {pred, target};
    return nb_graph_add_node(g, NB_OP_MSE, 2, in, NULL, 0, NULL, 0);
}

nb_node *nb_bce_with_logits(nb_graph *g, nb_node *logits, nb_node *target)
{
    nb_node *in[2] = {logits, target};
    return nb_graph_add_node(g, NB_OP_BCE_LOGITS, 2, in, NULL, 0, NULL, 0);
}
