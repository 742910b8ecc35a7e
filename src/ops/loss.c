/*
 * loss.c - softmax cross-entropy (with optional label smoothing), negative
 * log-likelihood, mean squared error, binary cross-entropy on logits, L1 and
 * Huber. Each returns a 0-d scalar: the mean over rows (cross-entropy, nll)
 * or over elements (the others), summed in double in memory order so the
 * result is deterministic.
 *
 * The gradient arriving at a loss is a single number, dloss (out->g[0]);
 * 1 when the loss is the target of backward.
 */
#include "ops.h"

#include <math.h>

/* ---- labels, shared by softmax_cross_entropy and nll ----
 * A label is a class index stored as a float: an integer in [0, C). Checked
 * in forward, where the values are first seen; the message names the op,
 * the label and its row. */
static nb_status check_label(const nb_node *n, float v, size_t row, size_t C)
{
    const char *op = nb_op_table[n->op]->name;
    if (isnan(v))
        return nb_set_error(NB_ERR_VALUE, "%s: label %g at row %zu is not a class index", op, v,
                            row);
    if (v != floorf(v))
        return nb_set_error(NB_ERR_VALUE, "%s: label %g at row %zu is not an integer", op, v, row);
    if (!(v >= 0.0f && (double)v < (double)C))
        return nb_set_error(NB_ERR_VALUE, "%s: label %g at row %zu is outside [0, %zu)", op, v,
                            row, C);
    return NB_OK;
}

/* scores [N, C] (logits, or log-probabilities for nll), labels [N] -> [] */
static nb_status class_loss_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const int nll = n->op == NB_OP_NLL;
    if (in[0]->ndim != 2)
        return nb_shape_error(n, nll ? "log_probs must be 2-D [N, C], labels 1-D [N]"
                                     : "logits must be 2-D [N, C], labels 1-D [N]",
                              in[0], in[1]);
    if (in[1]->ndim != 1)
        return nb_shape_error(n, nll ? "labels must be 1-D [N] for log_probs [N, C]"
                                     : "labels must be 1-D [N] for logits [N, C]",
                              in[0], in[1]);
    if (in[0]->d[0] != in[1]->d[0])
        return nb_shape_error(n, nll ? "log_probs [N, C] and labels [N] have different N"
                                     : "logits [N, C] and labels [N] have different N",
                              in[0], in[1]);
    out->ndim = 0;
    return NB_OK;
}

/* ---- softmax_cross_entropy ----
 *   logits z: [N, C]; labels y: [N], class indices stored as floats; out: []
 *   fa[0]: label smoothing eps in [0, 1) (torch.nn.CrossEntropyLoss's
 *   label_smoothing): the target of row i is q_i = (1 - eps) onehot(y_i) + eps / C
 *   loss = 1/N sum_i sum_c -q_ic log p_ic
 *        = 1/N sum_i (1 - eps) (lse_i - z_i[y_i]) + eps mean_c (lse_i - z_ic)
 *     with lse_i = logsumexp(z_i), p_i = softmax(z_i)
 *   dz_i = dloss * (p_i - q_i) / N
 * saved: p, [N, C] floats. Labels get no gradient (the builder refuses
 * labels that would need one). */
static size_t softmax_ce_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return nb_shape_numel(in[0]) * sizeof(float);
}

static nb_status softmax_ce_forward(const nb_exec *e)
{
    const nb_node *n = e->node;
    const size_t N = (size_t)e->in[0]->s.d[0], C = (size_t)e->in[0]->s.d[1];
    const float *labels = e->in[1]->x;
    const double eps = n->fa[0];
    float *prob = e->saved;
    double total = 0.0;
    for (size_t i = 0; i < N; i++) {
        const float v = labels[i];
        nb_status st = check_label(n, v, i, C);
        if (st != NB_OK) return st;
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
        /* logsumexp(z) = m + log(s) */
        const double lse = (double)m + log(s);
        if (eps == 0.0) {
            total += lse - (double)z[(size_t)v];
        } else {
            double zsum = 0.0;
            for (size_t c = 0; c < C; c++) zsum += z[c];
            total += (1.0 - eps) * (lse - (double)z[(size_t)v]) + eps * (lse - zsum / (double)C);
        }
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
    const double eps = e->node->fa[0];
    const float scale = e->out->g[0] / (float)N;
    /* q: on the label and off it */
    const float off = (float)(eps / (double)C), on = (float)(1.0 - eps + eps / (double)C);
    for (size_t i = 0; i < N; i++) {
        const float *p = prob + i * C;
        const size_t y = (size_t)labels[i];   /* validated by forward */
        for (size_t c = 0; c < C; c++) dz[i * C + c] += scale * (p[c] - (c == y ? on : off));
    }
}

/* ---- nll ----
 *   log_probs l: [N, C]; labels y: [N]; out: []
 *   loss = -1/N sum_i l_i[y_i];  dl_i[y_i] -= dloss / N (0 elsewhere) */
static nb_status nll_forward(const nb_exec *e)
{
    const size_t N = (size_t)e->in[0]->s.d[0], C = (size_t)e->in[0]->s.d[1];
    const float *l = e->in[0]->x, *labels = e->in[1]->x;
    double total = 0.0;
    for (size_t i = 0; i < N; i++) {
        nb_status st = check_label(e->node, labels[i], i, C);
        if (st != NB_OK) return st;
        total -= l[i * C + (size_t)labels[i]];
    }
    e->out->x[0] = (float)(total / (double)N);
    return NB_OK;
}

static void nll_backward(const nb_exec *e)
{
    float *dl = e->in[0]->g;
    if (!dl) return;
    const size_t N = (size_t)e->in[0]->s.d[0], C = (size_t)e->in[0]->s.d[1];
    const float *labels = e->in[1]->x;
    const float scale = e->out->g[0] / (float)N;
    for (size_t i = 0; i < N; i++) dl[i * C + (size_t)labels[i]] -= scale;
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

/* ---- l1 ----
 *   pred p: X; target t: X; out: []
 *   loss = 1/n sum |p - t|;  dp = dloss sign(p - t) / n (sign(0) = 0, as
 *   PyTorch);  dt = -dp */
static nb_status l1_forward(const nb_exec *e)
{
    const float *p = e->in[0]->x, *t = e->in[1]->x;
    const size_t n = e->in[0]->n;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) total += fabs((double)p[i] - (double)t[i]);
    e->out->x[0] = (float)(total / (double)n);
    return NB_OK;
}

static void l1_backward(const nb_exec *e)
{
    const float *p = e->in[0]->x, *t = e->in[1]->x;
    float *dp = e->in[0]->g, *dt = e->in[1]->g;
    const size_t n = e->in[0]->n;
    const float scale = e->out->g[0] / (float)n;
    for (size_t i = 0; i < n; i++) {
        const float d = p[i] - t[i];
        const float s = d > 0.0f ? scale : d < 0.0f ? -scale : 0.0f;
        if (dp) dp[i] += s;
        if (dt) dt[i] -= s;
    }
}

/* ---- huber ----
 *   pred p: X; target t: X; fa[0]: delta > 0; out: []
 *   with d = p - t:  loss = 1/n sum (|d| < delta ? d^2 / 2 : delta (|d| - delta / 2))
 *   dp = dloss clamp(d, -delta, delta) / n;  dt = -dp  (torch.nn.HuberLoss) */
static nb_status huber_forward(const nb_exec *e)
{
    const float *p = e->in[0]->x, *t = e->in[1]->x;
    const size_t n = e->in[0]->n;
    const double delta = e->node->fa[0];
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)p[i] - (double)t[i], a = fabs(d);
        total += a < delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
    }
    e->out->x[0] = (float)(total / (double)n);
    return NB_OK;
}

static void huber_backward(const nb_exec *e)
{
    const float *p = e->in[0]->x, *t = e->in[1]->x;
    float *dp = e->in[0]->g, *dt = e->in[1]->g;
    const size_t n = e->in[0]->n;
    const float delta = e->node->fa[0];
    const float scale = e->out->g[0] / (float)n;
    for (size_t i = 0; i < n; i++) {
        const float d = p[i] - t[i];
        const float c = d < -delta ? -delta : d > delta ? delta : d;
        if (dp) dp[i] += scale * c;
        if (dt) dt[i] -= scale * c;
    }
}

const nb_op_def nb_def_softmax_ce = {"softmax_cross_entropy", 0, class_loss_shape,
                                     softmax_ce_saved, NULL, softmax_ce_forward,
                                     softmax_ce_backward};
const nb_op_def nb_def_mse = {"mse", 0, same_shape_loss, NULL, NULL, mse_forward, mse_backward};
const nb_op_def nb_def_bce_logits = {"bce_with_logits", 0, same_shape_loss, NULL, NULL,
                                     bce_forward, bce_backward};
const nb_op_def nb_def_nll = {"nll", 0, class_loss_shape, NULL, NULL, nll_forward, nll_backward};
const nb_op_def nb_def_l1 = {"l1", 0, same_shape_loss, NULL, NULL, l1_forward, l1_backward};
const nb_op_def nb_def_huber = {"huber", 0, same_shape_loss, NULL, NULL, huber_forward,
                                huber_backward};

/* A loss over class scores and labels: refuses labels that would need a
 * gradient (they are class indices). */
static nb_node *class_loss(nb_graph *g, nb_op_kind op, nb_node *scores, nb_node *labels,
                           const float *fa, int n_fa)
{
    nb_node *in[2] = {scores, labels};
    if (!g || !scores || !labels || g->status != NB_OK) return NULL;
    if (labels->graph == g && labels->requires_grad) {
        nb_set_error(NB_ERR_ARG, "%s: the labels depend on a parameter; labels are class "
                                 "indices and take no gradient", nb_op_table[op]->name);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    return nb_graph_add_node(g, op, 2, in, NULL, 0, fa, n_fa);
}

nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels)
{
    return nb_softmax_cross_entropy_smooth(g, logits, labels, 0.0f);
}

nb_node *nb_softmax_cross_entropy_smooth(nb_graph *g, nb_node *logits, nb_node *labels,
                                         float smoothing)
{
    if (!g || !logits || !labels || g->status != NB_OK) return NULL;
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) {
        nb_set_error(NB_ERR_ARG, "softmax_cross_entropy: label smoothing is %g, expected "
                                 "0 <= smoothing < 1", (double)smoothing);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    const float fa[1] = {smoothing};
    return class_loss(g, NB_OP_SOFTMAX_CE, logits, labels, fa, 1);
}

nb_node *nb_nll(nb_graph *g, nb_node *log_probs, nb_node *labels)
{
    return class_loss(g, NB_OP_NLL, log_probs, labels, NULL, 0);
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

nb_node *nb_l1(nb_graph *g, nb_node *pred, nb_node *target)
{
    nb_node *in[2] = {pred, target};
    return nb_graph_add_node(g, NB_OP_L1, 2, in, NULL, 0, NULL, 0);
}

nb_node *nb_huber(nb_graph *g, nb_node *pred, nb_node *target, float delta)
{
    if (!g || !pred || !target || g->status != NB_OK) return NULL;
    if (!(delta > 0.0f) || isinf(delta)) {
        nb_set_error(NB_ERR_ARG, "huber: delta is %g, expected a finite delta > 0",
                     (double)delta);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    nb_node *in[2] = {pred, target};
    const float fa[1] = {delta};
    return nb_graph_add_node(g, NB_OP_HUBER, 2, in, NULL, 0, fa, 1);
}
