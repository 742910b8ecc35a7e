/*
 * dropout.c - inverted dropout, torch.nn.functional.dropout.
 *
 *   x: X;  fa[0]: p in [0, 1);  y: X
 *
 *   training, p > 0:  keep_i = (u_i >= p) with u_i in [0, 1) a hash of
 *                     (seed, step, node, sample, element) - see below;
 *                     y_i = keep_i ? x_i / (1 - p) : 0
 *                     dx_i += keep_i ? dy_i / (1 - p) : 0
 *   evaluation, or p == 0:  y = x, dx += dy (no numbers are drawn)
 *
 * saved: one byte per element (the mask) and one more byte that records
 * whether forward applied a mask, so backward follows what forward did even
 * if the plan's mode changed in between.
 *
 * Masks are counter-based, not drawn from a stream: in data-parallel
 * training each process holds a shard of the global batch, and a sample's
 * mask must not depend on which process or position it lands in. The batch
 * axis is the first axis whose size scales with the batch (node->shape at
 * batch 1 against shape2 at batch 2), of base size b per sample; an element
 * at index j along it and at position k in the rest of the tensor (the other
 * axes, row-major) belongs to global row r = offset * b + j, with offset the
 * plan's batch offset. Then
 *     key_s = mix(mix(seed ^ mix(step + G)) ^ mix(node + 2G) + r * H)
 *     u     = (mix(key_s + (k + 1) G) >> 11) / 2^53
 * with mix the splitmix64 finaliser and G, H odd constants: per row, a
 * splitmix64 stream seeded by key_s. A tensor without a batch axis has r = 0.
 */
#include "ops.h"

#include <string.h>

static size_t dropout_saved(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    return nb_shape_numel(in[0]) + 1;
}

static float dropout_scale(const nb_node *n) { return (float)(1.0 / (1.0 - (double)n->fa[0])); }

#define GOLDEN 0x9e3779b97f4a7c15ull
#define ROWMUL 0xd1b54a32d192ed03ull

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

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
    /* outer x rows x inner, rows along the batch axis (1 row if none) */
    const nb_node *nd = e->node;
    const nb_shape *s = &e->in[0]->s;
    int axis = -1;
    for (int k = 0; k < nd->shape.ndim && axis < 0; k++)
        if (nd->shape.d[k] != nd->shape2.d[k]) axis = k;
    size_t outer = 1, rows = 1, inner = n;
    uint64_t row0 = 0;
    if (axis >= 0 && n > 0) {
        for (int k = 0; k < axis; k++) outer *= (size_t)s->d[k];
        rows = (size_t)s->d[axis];
        inner = n / outer / rows;
        row0 = (uint64_t)e->batch_offset * (uint64_t)nd->shape.d[axis];
    }
    const uint64_t base = mix(e->seed ^ mix(e->step + GOLDEN)) ^ mix((uint64_t)nd->id + 2 * GOLDEN);
    const double thr = p * 9007199254740992.0; /* keep when (h >> 11) >= p 2^53, as u >= p */
    for (size_t r = 0; r < rows; r++) {
        const uint64_t key = mix(base + (row0 + r) * ROWMUL);
        for (size_t o = 0; o < outer; o++) {
            const size_t at = (o * rows + r) * inner;
            const uint64_t k0 = (uint64_t)(o * inner);
            for (size_t j = 0; j < inner; j++) {
                const unsigned char keep = (double)(mix(key + (k0 + j + 1) * GOLDEN) >> 11) >= thr;
                mask[at + j] = keep;
                y[at + j] = keep ? x[at + j] * scale : 0.0f;
            }
        }
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
