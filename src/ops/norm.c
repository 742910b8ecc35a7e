/*
 * norm.c - batch normalisation (torch.nn.BatchNorm1d/2d) and layer
 * normalisation (torch.nn.LayerNorm).
 *
 * Both normalise groups of elements to zero mean and unit (biased) variance,
 * xhat = (x - mean) * invstd with invstd = 1 / sqrt(var + eps), then apply
 * an optional per-feature scale gamma and shift beta: y = xhat * gamma + beta.
 * Means and variances are summed in double, in memory order within each
 * group, so every result is deterministic. mean and invstd are rounded to
 * float once and saved, and forward and backward both compute xhat from
 * those saved floats.
 */
#include "ops.h"

#include <math.h>
#include <string.h>

/* ==== batchnorm ==========================================================
 *   inputs: x [N, C] or [N, C, *S], then gamma [C] if ia[0], beta [C] if
 *     ia[1], then running_mean [C], running_var [C], num_batches_tracked []
 *     (the last three are graph constants);  fa[0] momentum, fa[1] eps.
 *   out: y, x's shape.
 *   A channel c gathers cnt = N * prod(S) elements x[n, c, s].
 *
 *   training:  mean_c, var_c = the batch's mean and biased variance;
 *              running_mean = (1 - m) running_mean + m mean_c
 *              running_var  = (1 - m) running_var  + m var_c cnt / (cnt - 1)
 *              num_batches_tracked += 1
 *              dx = gamma invstd (dy - sum(dy) / cnt - xhat sum(dy xhat) / cnt)
 *   evaluation: mean_c = running_mean, invstd_c = 1 / sqrt(running_var + eps);
 *              nothing is updated;  dx = gamma invstd dy
 *   both:      dgamma += sum(dy xhat);  dbeta += sum(dy)   (over n and s)
 *
 * saved: one double, the number of values per channel the statistics were
 * taken over (all processes' when synchronised), then floats mean [C],
 * invstd [C] and one float: 1 when forward used the batch statistics
 * (backward follows forward's mode).
 *
 * Synchronised (data-parallel training with e->sync, training mode): the
 * statistics are those of the global batch, computed as above in two passes
 * whose per-process sums are added across processes (sums and count, then
 * squared deviations from the global mean), so one process gives the same
 * bits as no synchronisation. In backward, process r's upstream gradient dy
 * is its share w_r = n_r / n of the global one, divided by w_r (the trainer
 * weights each process's gradients by w_r before summing them): the sums
 * sum(dy) and sum(dy xhat) of the dx formula are summed across processes as
 * w_r-weighted parts and divided by this process's w_r. dgamma and dbeta
 * stay local sums, weighted and summed with every other gradient.
 * scratch: 2C + 1 doubles for the sums sent across processes. */

enum { BN_X = 0 };

typedef struct {
    int gamma, beta, rm, rv, nbt;   /* input indices; -1 when absent */
} bn_idx;

static bn_idx bn_inputs(const nb_node *n)
{
    bn_idx k;
    int i = 1;
    k.gamma = n->ia[0] ? i++ : -1;
    k.beta = n->ia[1] ? i++ : -1;
    k.rm = i++;
    k.rv = i++;
    k.nbt = i;
    return k;
}

/* N, C and the spatial size S of x [N, C, *S] */
static void bn_dims(const nb_shape *x, size_t *N, size_t *C, size_t *S)
{
    *N = (size_t)x->d[0];
    *C = (size_t)x->d[1];
    *S = 1;
    for (int k = 2; k < x->ndim; k++) *S *= (size_t)x->d[k];
}

static nb_status batchnorm_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[BN_X];
    const bn_idx k = bn_inputs(n);
    if (x->ndim < 2)
        return nb_shape_error(n, "the input must be [N, C] or [N, C, ...]", x, NULL);
    const int vec[4] = {k.gamma, k.beta, k.rm, k.rv};
    const char *what[4] = {"gamma must be [C] for input [N, C, ...]",
                           "beta must be [C] for input [N, C, ...]",
                           "running_mean must be [C] for input [N, C, ...]",
                           "running_var must be [C] for input [N, C, ...]"};
    for (int j = 0; j < 4; j++) {
        if (vec[j] < 0) continue;
        const nb_shape *v = in[vec[j]];
        if (v->ndim != 1 || v->d[0] != x->d[1]) return nb_shape_error(n, what[j], x, v);
    }
    if (in[k.nbt]->ndim != 0)
        return nb_shape_error(n, "num_batches_tracked must be 0-d", x, in[k.nbt]);
    *out = *x;
    return NB_OK;
}

static size_t batchnorm_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return sizeof(double) + (2 * (size_t)in[BN_X]->d[1] + 1) * sizeof(float);
}

static size_t batchnorm_scratch(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return (2 * (size_t)in[BN_X]->d[1] + 1) * sizeof(double);
}

static nb_status batchnorm_forward(const nb_exec *e)
{
    const nb_node *nd = e->node;
    const bn_idx k = bn_inputs(nd);
    const nb_tensor *X = e->in[BN_X];
    size_t N, C, S;
    bn_dims(&X->s, &N, &C, &S);
    const size_t cnt = N * S;
    const double m = nd->fa[0], eps = nd->fa[1];
    const float *x = X->x;
    const float *gamma = k.gamma >= 0 ? e->in[k.gamma]->x : NULL;
    const float *beta = k.beta >= 0 ? e->in[k.beta]->x : NULL;
    float *rm = e->in[k.rm]->x, *rv = e->in[k.rv]->x, *nbt = e->in[k.nbt]->x;
    float *y = e->out->x;
    double *count = e->saved;
    float *mean = (float *)(count + 1), *invstd = mean + C, *mode = invstd + C;
    const int train = e->training != 0;
    const nb_sync *sync = train ? e->sync : NULL;
    double *sums = e->scratch; /* synchronised: sums [C], count, then squared deviations [C] */
    if (sync) {
        for (size_t c = 0; c < C; c++) {
            double s = 0.0;
            for (size_t n = 0; n < N; n++) {
                const float *xc = x + (n * C + c) * S;
                for (size_t j = 0; j < S; j++) s += xc[j];
            }
            sums[c] = s;
        }
        sums[C] = (double)cnt;
        nb_status st = sync->allreduce(sync->ctx, sums, C + 1);
        if (st != NB_OK) return st;
        *count = sums[C];
    } else {
        *count = (double)cnt;
    }
    const double cntg = *count;
    if (train && cntg < 2)
        return nb_shape_error(nd, "expected more than 1 value per channel in training mode", &X->s,
                              NULL);
    if (sync) {
        double *dev = sums + C + 1;
        for (size_t c = 0; c < C; c++) {
            const double mu = sums[c] / cntg;
            double v = 0.0;
            for (size_t n = 0; n < N; n++) {
                const float *xc = x + (n * C + c) * S;
                for (size_t j = 0; j < S; j++) {
                    const double d = (double)xc[j] - mu;
                    v += d * d;
                }
            }
            dev[c] = v;
        }
        nb_status st = sync->allreduce(sync->ctx, dev, C);
        if (st != NB_OK) return st;
    }
    *mode = (float)train;
    for (size_t c = 0; c < C; c++) {
        if (train) {
            double mu, v;
            if (sync) {
                mu = sums[c] / cntg;
                v = sums[C + 1 + c];
            } else {
                double s = 0.0;
                for (size_t n = 0; n < N; n++) {
                    const float *xc = x + (n * C + c) * S;
                    for (size_t j = 0; j < S; j++) s += xc[j];
                }
                mu = s / cntg;
                v = 0.0;
                for (size_t n = 0; n < N; n++) {
                    const float *xc = x + (n * C + c) * S;
                    for (size_t j = 0; j < S; j++) {
                        const double d = (double)xc[j] - mu;
                        v += d * d;
                    }
                }
            }
            const double var = v / cntg;
            mean[c] = (float)mu;
            invstd[c] = (float)(1.0 / sqrt(var + eps));
            rm[c] = (float)((1.0 - m) * rm[c] + m * mu);
            rv[c] = (float)((1.0 - m) * rv[c] + m * var * cntg / (cntg - 1));
        } else {
            mean[c] = rm[c];
            invstd[c] = (float)(1.0 / sqrt((double)rv[c] + eps));
        }
        const float mu = mean[c], is = invstd[c];
        const float gm = gamma ? gamma[c] : 1.0f, bt = beta ? beta[c] : 0.0f;
        for (size_t n = 0; n < N; n++) {
            const float *xc = x + (n * C + c) * S;
            float *yc = y + (n * C + c) * S;
            for (size_t j = 0; j < S; j++) yc[j] = (xc[j] - mu) * is * gm + bt;
        }
    }
    if (train) nbt[0] += 1.0f;
    return NB_OK;
}

static void batchnorm_backward(const nb_exec *e)
{
    const nb_node *nd = e->node;
    const bn_idx k = bn_inputs(nd);
    const nb_tensor *X = e->in[BN_X];
    size_t N, C, S;
    bn_dims(&X->s, &N, &C, &S);
    const float *x = X->x, *dy = e->out->g;
    float *dx = X->g;
    const float *gamma = k.gamma >= 0 ? e->in[k.gamma]->x : NULL;
    float *dgamma = k.gamma >= 0 ? e->in[k.gamma]->g : NULL;
    float *dbeta = k.beta >= 0 ? e->in[k.beta]->g : NULL;
    const double *count = e->saved;
    const float *mean = (const float *)(count + 1), *invstd = mean + C;
    const int train = invstd[C] != 0.0f;
    const nb_sync *sync = train ? e->sync : NULL;
    double *sums = e->scratch; /* sum(dy) [C], then sum(dy xhat) [C] (weighted when synchronised) */
    for (size_t c = 0; c < C; c++) {
        const float mu = mean[c], is = invstd[c];
        double sdy = 0.0, sdyx = 0.0;   /* sum(dy), sum(dy xhat) */
        for (size_t n = 0; n < N; n++) {
            const size_t o = (n * C + c) * S;
            for (size_t j = 0; j < S; j++) {
                const float xh = (x[o + j] - mu) * is;
                sdy += dy[o + j];
                sdyx += (double)dy[o + j] * xh;
            }
        }
        if (dgamma) dgamma[c] += (float)sdyx;
        if (dbeta) dbeta[c] += (float)sdy;
        sums[c] = sync ? sdy * sync->weight : sdy;
        sums[C + c] = sync ? sdyx * sync->weight : sdyx;
    }
    if (!dx) return;
    if (sync) {
        nb_status st = sync->allreduce(sync->ctx, sums, 2 * C);
        if (st != NB_OK) {
            *e->status = st;
            return;
        }
    }
    const double cntg = *count;
    for (size_t c = 0; c < C; c++) {
        const float mu = mean[c], is = invstd[c];
        const double sdy = sync ? sums[c] / sync->weight : sums[c];
        const double sdyx = sync ? sums[C + c] / sync->weight : sums[C + c];
        const float gi = (gamma ? gamma[c] : 1.0f) * is;
        /* training: the batch statistics depend on x too */
        const float a = train ? (float)(sdy / cntg) : 0.0f;
        const float b = train ? (float)(sdyx / cntg) : 0.0f;
        for (size_t n = 0; n < N; n++) {
            const size_t o = (n * C + c) * S;
            for (size_t j = 0; j < S; j++) {
                const float xh = (x[o + j] - mu) * is;
                dx[o + j] += gi * (dy[o + j] - a - xh * b);
            }
        }
    }
}

const nb_op_def nb_def_batchnorm = {"batchnorm", 0, batchnorm_shape, batchnorm_saved, batchnorm_scratch,
                                    batchnorm_forward, batchnorm_backward};

nb_node *nb_batchnorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta,
                      nb_node *running_mean, nb_node *running_var,
                      nb_node *num_batches_tracked, float momentum, float eps)
{
    if (!g || !x || !running_mean || !running_var || !num_batches_tracked || g->status != NB_OK)
        return NULL;
    const struct { nb_node *n; const char *name; } st[3] = {
        {running_mean, "running_mean"}, {running_var, "running_var"},
        {num_batches_tracked, "num_batches_tracked"}};
    for (int j = 0; j < 3; j++) {
        if (st[j].n->op != NB_OP_CONST) {
            nb_set_error(NB_ERR_ARG, "batchnorm: %s must be a constant (nb_const), got a%s %s",
                         st[j].name, st[j].n->op == NB_OP_INPUT ? "n" : "",
                         nb_op_table[st[j].n->op]->name);
            return nb_graph_fail(g, NB_ERR_ARG);
        }
        for (int i = 0; i < j; i++)
            if (st[i].n == st[j].n) {
                nb_set_error(NB_ERR_ARG, "batchnorm: %s and %s are the same node", st[i].name,
                             st[j].name);
                return nb_graph_fail(g, NB_ERR_ARG);
            }
    }
    if (!(momentum >= 0.0f && momentum <= 1.0f)) {
        nb_set_error(NB_ERR_ARG, "batchnorm: momentum is %g, expected 0 <= momentum <= 1",
                     (double)momentum);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    if (!(eps > 0.0f) || isinf(eps)) {
        nb_set_error(NB_ERR_ARG, "batchnorm: eps is %g, expected a finite eps > 0", (double)eps);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    nb_node *in[6];
    int n_in = 0;
    in[n_in++] = x;
    if (gamma) in[n_in++] = gamma;
    if (beta) in[n_in++] = beta;
    in[n_in++] = running_mean;
    in[n_in++] = running_var;
    in[n_in++] = num_batches_tracked;
    const int64_t ia[2] = {gamma != NULL, beta != NULL};
    const float fa[2] = {momentum, eps};
    return nb_graph_add_node(g, NB_OP_BATCHNORM, n_in, in, ia, 2, fa, 2);
}

/* ==== layernorm ==========================================================
 *   inputs: x [*B, *D] with D the last ia[0] axes; gamma [*D] if ia[1],
 *     beta [*D] if ia[2];  fa[0] eps.
 *   out: y, x's shape.
 *   Each row r (one index into B) is normalised over its |D| elements:
 *     y = xhat gamma + beta
 *     dxhat = dy gamma
 *     dx = invstd (dxhat - sum(dxhat) / |D| - xhat sum(dxhat xhat) / |D|)
 *     dgamma += sum_r dy xhat;  dbeta += sum_r dy
 * saved: floats mean [rows], invstd [rows].
 * scratch: doubles [2 |D|], the dgamma and dbeta sums over rows. */

static size_t ln_width(const nb_node *n, const nb_shape *x)
{
    size_t D = 1;
    for (int k = x->ndim - (int)n->ia[0]; k < x->ndim; k++) D *= (size_t)x->d[k];
    return D;
}

static nb_status layernorm_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[0];
    const int na = (int)n->ia[0];
    if (na < 1 || na > x->ndim)
        return nb_shape_error(n, "the number of normalised axes is out of range for the input", x,
                              NULL);
    for (int j = 1; j < n->n_in; j++) {
        const nb_shape *v = in[j];
        int ok = v->ndim == na;
        for (int k = 0; ok && k < na; k++) ok = v->d[k] == x->d[x->ndim - na + k];
        if (!ok)
            return nb_shape_error(n, j == 1 && n->ia[1]
                                         ? "gamma must have the shape of the normalised axes"
                                         : "beta must have the shape of the normalised axes",
                                  x, v);
    }
    *out = *x;
    return NB_OK;
}

static size_t layernorm_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    const size_t D = ln_width(n, in[0]);
    return 2 * (nb_shape_numel(in[0]) / D) * sizeof(float);
}

static size_t layernorm_scratch(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return n->n_in > 1 ? 2 * ln_width(n, in[0]) * sizeof(double) : 0;
}

static nb_status layernorm_forward(const nb_exec *e)
{
    const nb_node *nd = e->node;
    const size_t D = ln_width(nd, &e->in[0]->s), R = e->in[0]->n / D;
    const int ig = nd->ia[1] ? 1 : -1, ib = nd->ia[2] ? 1 + (nd->ia[1] != 0) : -1;
    const float *gamma = ig > 0 ? e->in[ig]->x : NULL, *beta = ib > 0 ? e->in[ib]->x : NULL;
    const double eps = nd->fa[0];
    float *mean = e->saved, *invstd = mean + R;
    for (size_t r = 0; r < R; r++) {
        const float *x = e->in[0]->x + r * D;
        float *y = e->out->x + r * D;
        double s = 0.0, v = 0.0;
        for (size_t j = 0; j < D; j++) s += x[j];
        const double mu = s / (double)D;
        for (size_t j = 0; j < D; j++) {
            const double d = (double)x[j] - mu;
            v += d * d;
        }
        mean[r] = (float)mu;
        invstd[r] = (float)(1.0 / sqrt(v / (double)D + eps));
        const float m = mean[r], is = invstd[r];
        for (size_t j = 0; j < D; j++) {
            const float xh = (x[j] - m) * is;
            y[j] = xh * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
        }
    }
    return NB_OK;
}

static void layernorm_backward(const nb_exec *e)
{
    const nb_node *nd = e->node;
    const size_t D = ln_width(nd, &e->in[0]->s), R = e->in[0]->n / D;
    const int ig = nd->ia[1] ? 1 : -1, ib = nd->ia[2] ? 1 + (nd->ia[1] != 0) : -1;
    const float *gamma = ig > 0 ? e->in[ig]->x : NULL;
    float *dgamma = ig > 0 ? e->in[ig]->g : NULL, *dbeta = ib > 0 ? e->in[ib]->g : NULL;
    const float *mean = e->saved, *invstd = mean + R;
    double *ag = e->scratch, *ab = ag ? ag + D : NULL;
    if (dgamma) memset(ag, 0, D * sizeof *ag);
    if (dbeta) memset(ab, 0, D * sizeof *ab);
    float *dxall = e->in[0]->g;
    for (size_t r = 0; r < R; r++) {
        const float *x = e->in[0]->x + r * D, *dy = e->out->g + r * D;
        const float m = mean[r], is = invstd[r];
        double sd = 0.0, sdx = 0.0;   /* sum(dxhat), sum(dxhat xhat) */
        for (size_t j = 0; j < D; j++) {
            const float xh = (x[j] - m) * is;
            const float dxh = dy[j] * (gamma ? gamma[j] : 1.0f);
            sd += dxh;
            sdx += (double)dxh * xh;
            if (dgamma) ag[j] += (double)dy[j] * xh;
            if (dbeta) ab[j] += dy[j];
        }
        if (!dxall) continue;
        float *dx = dxall + r * D;
        const float a = (float)(sd / (double)D), b = (float)(sdx / (double)D);
        for (size_t j = 0; j < D; j++) {
            const float xh = (x[j] - m) * is;
            const float dxh = dy[j] * (gamma ? gamma[j] : 1.0f);
            dx[j] += is * (dxh - a - xh * b);
        }
    }
    if (dgamma)
        for (size_t j = 0; j < D; j++) dgamma[j] += (float)ag[j];
    if (dbeta)
        for (size_t j = 0; j < D; j++) dbeta[j] += (float)ab[j];
}

const nb_op_def nb_def_layernorm = {"layernorm", 0, layernorm_shape, layernorm_saved,
                                    layernorm_scratch, layernorm_forward, layernorm_backward};

nb_node *nb_layernorm(nb_graph *g, nb_node *x, int naxes, nb_node *gamma, nb_node *beta,
                      float eps)
{
    if (!g || !x || g->status != NB_OK) return NULL;
    if (naxes < 1 || naxes > x->shape.ndim) {
        nb_set_error(NB_ERR_ARG, "layernorm: naxes is %d, expected 1 to %d for a %d-D input",
                     naxes, x->shape.ndim, x->shape.ndim);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    if (!(eps > 0.0f) || isinf(eps)) {
        nb_set_error(NB_ERR_ARG, "layernorm: eps is %g, expected a finite eps > 0", (double)eps);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    nb_node *in[3];
    int n_in = 0;
    in[n_in++] = x;
    if (gamma) in[n_in++] = gamma;
    if (beta) in[n_in++] = beta;
    const int64_t ia[3] = {naxes, gamma != NULL, beta != NULL};
    const float fa[1] = {eps};
    return nb_graph_add_node(g, NB_OP_LAYERNORM, n_in, in, ia, 3, fa, 1);
}
