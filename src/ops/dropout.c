/*
 * dropout.c - inverted dropout, torch.nn.functional.dropout.
 *
 *   x: X;  fa[0]: p in [0, 1);  y: X
 *
 *   training, p > 0:  keep_i = (u_i >= p) with u_i ~ U[0, 1) drawn from the
 *                     plan's generator, one per element in memory order;
 *                     y_i = keep_i ? x_i / (1 - p) : 0
 *                     dx_i += keep_i ? dy_i / (1 - p) : 0
 *   evaluation, or p == 0:  y = x, dx += dy (no numbers are drawn)
 *
 * saved: one byte per element (the mask) and one more byte that records
 * whether forward applied a mask, so backward follows what forward did even
 * if the plan's mode changed in between.
 */
#include "ops.h"

#include <string.h>

static size_t dropout_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return nb_shape_numel(in[0]) + 1;
}

static float dropout_scale(const nb_node *n) { return (float)(1.0 / (1.0 - (double)n->fa[0])); }

static nb_status dropout_forward(const nb_exec *e)
{
    const float *x = e->in[0]->x;
    float *y = e->out->x;
    unsigned char *mask = e->saved;
    const size_t n = e->in[0]->n;
    const double p = e->node->fa[0];
    if (!e->training || p == 0.0) {
        mask[n] = 0;
        if (y != x) memcpy(y, x, n * sizeof *y);
        return NB_OK;
    }
    const float scale = dropout_scale(e->node);
    mask[n] = 1;
    for (size_t i = 0; i < n; i++) {
        const unsigned char keep = nb_rng_uniform(e->rng) >= p;
        mask[i] = keep;
        y[i] = keep ? x[i] * scale : 0.0f;
    }
    return NB_OK;
}

static void dropout_backward(const nb_exec *e)
{
    float *dx = e->in[0]->g;
    if (!dx) return;
    const float *dy = e->out->g;
    const unsigned char *mask = e->saved;
    const size_t n = e->in[0]->n;
    if (!mask[n]) {
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    const float scale = dropout_scale(e->node);
    for (size_t i = 0; i < n; i++)
        if (mask[i]) dx[i] += dy[i] * scale;
}

const nb_op_def nb_def_dropout = {"dropout", 0, nb_shape_same, dropout_saved, NULL,
                                  dropout_forward, dropout_backward};

nb_node *nb_dropout(nb_graph *g, nb_node *x, float p)
{
    if (!g || !x || g->status != NB_OK) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) {
        nb_set_error(NB_ERR_ARG, "dropout: p is %g, expected 0 <= p < 1", (double)p);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    const float fa[1] = {p};
    return nb_graph_add_node(g, NB_OP_DROPOUT, 1, &x, NULL, 0, fa, 1);
}
