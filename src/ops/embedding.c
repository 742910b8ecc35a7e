/*
 * embedding.c - a lookup table, torch.nn.functional.embedding.
 *
 *   indices: S (any shape, integer ids stored as floats, no gradient)
 *   weight W: [num, dim]
 *   y: S + [dim],  y[s, :] = W[indices[s], :]
 *
 *   backward  dW[indices[s], :] += dy[s, :], positions s in order (rows
 *             picked more than once accumulate, deterministically)
 *
 * Indices are checked in forward, where their values are first seen: NaN,
 * a fraction, or a value outside [0, num) fails with NB_ERR_VALUE naming the
 * value and its flat position.
 */
#include "ops.h"

#include <math.h>
#include <string.h>

static nb_status embedding_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *idx = in[0], *w = in[1];
    if (w->ndim != 2)
        return nb_shape_error(n, "the weight must be 2-D [num, dim]", idx, w);
    if (idx->ndim + 1 > NB_MAX_DIMS)
        return nb_shape_error(n, "indices have too many axes to add the embedding axis", idx, w);
    *out = *idx;
    out->d[out->ndim++] = w->d[1];
    return NB_OK;
}

static nb_status embedding_forward(const nb_exec *e)
{
    const float *idx = e->in[0]->x, *w = e->in[1]->x;
    const size_t count = e->in[0]->n;
    const size_t num = (size_t)e->in[1]->s.d[0], dim = (size_t)e->in[1]->s.d[1];
    float *y = e->out->x;
    for (size_t i = 0; i < count; i++) {
        const float v = idx[i];
        if (isnan(v))
            return nb_set_error(NB_ERR_VALUE, "embedding: index %g at position %zu is not an index",
                                v, i);
        if (v != floorf(v))
            return nb_set_error(NB_ERR_VALUE,
                                "embedding: index %g at position %zu is not an integer", v, i);
        if (!(v >= 0.0f && (double)v < (double)num))
            return nb_set_error(NB_ERR_VALUE,
                                "embedding: index %g at position %zu is outside [0, %zu)", v, i,
                                num);
        memcpy(y + i * dim, w + (size_t)v * dim, dim * sizeof *y);
    }
    return NB_OK;
}

static void embedding_backward(const nb_exec *e)
{
    float *dw = e->in[1]->g;
    if (!dw) return;
    const float *idx = e->in[0]->x, *dy = e->out->g;
    const size_t count = e->in[0]->n, dim = (size_t)e->in[1]->s.d[1];
    for (size_t i = 0; i < count; i++) {
        float *row = dw + (size_t)idx[i] * dim;   /* validated by forward */
        const float *d = dy + i * dim;
        for (size_t j = 0; j < dim; j++) row[j] += d[j];
    }
}

const nb_op_def nb_def_embedding = {"embedding", 0, embedding_shape, NULL, NULL,
                                    embedding_forward, embedding_backward};

nb_node *nb_embedding(nb_graph *g, nb_node *indices, nb_node *weight)
{
    if (!g || !indices || !weight || g->status != NB_OK) return NULL;
    if (indices->graph == g && indices->requires_grad) {
        nb_set_error(NB_ERR_ARG, "embedding: the indices depend on a parameter; indices are "
                                 "row ids and take no gradient");
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    nb_node *in[2] = {indices, weight};
    return nb_graph_add_node(g, NB_OP_EMBEDDING, 2, in, NULL, 0, NULL, 0);
}
