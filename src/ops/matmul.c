/*
 * matmul.c - batched matrix product with NumPy (torch.matmul) broadcasting of
 * the batch axes.
 *
 *   a: [..., M, K]   b: [..., K, N]   c: [broadcast(a[:-2], b[:-2]), M, N]
 *
 *   forward   c[t] = a[ta(t)] @ b[tb(t)]        for each output batch index t
 *   backward  da[ta(t)] += dc[t] @ b[tb(t)]^T
 *             db[tb(t)] += a[ta(t)]^T @ dc[t]
 *
 * ta, tb map an output batch index to the matrix of a and b it reads (stride
 * 0 along broadcast batch axes), so a gradient sums over the batches that
 * shared its matrix. Batches are visited in order and every product goes
 * through nb_sgemm with beta = 1, so the sums are deterministic.
 *
 * Fast path: when b has a single matrix (b is 2-D, or all its batch axes are
 * 1), every batch of a multiplies the same b, and a's batches are contiguous
 * in the same order as c's; so a is one [rows = prod(batch) * M, K] matrix and
 * each of forward, da and db is one GEMM. This is the common x @ W of a
 * linear layer.
 *
 * nb_sgemm takes int sizes: shape() rejects matrix axes above INT_MAX, and the
 * fast path is used only when its row count fits in an int.
 */
#include "ops.h"

#include <limits.h>

/* Batch geometry of one matmul: the batch shapes of a, b and c, the strides
 * (in matrices) that map c's batch index onto a's and b's, and M, K, N. */
typedef struct {
    nb_shape ab, bb, cb;
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
    int M, K, N;
    size_t nbatch;          /* prod of c's batch axes */
    int fast;               /* b is one matrix and a is one [rows, K] matrix */
    int rows;               /* fast path: prod(a's batch axes) * M */
} nb_mm;

/* The first ndim - 2 axes of s. */
static nb_shape batch_of(const nb_shape *s)
{
    nb_shape b;
    b.ndim = s->ndim - 2;
    for (int i = 0; i < b.ndim; i++) b.d[i] = s->d[i];
    return b;
}

/* Fills m from the runtime shapes of a, b and c (shape() has checked them). */
static void mm_init(nb_mm *m, const nb_shape *a, const nb_shape *b, const nb_shape *c)
{
    m->ab = batch_of(a);
    m->bb = batch_of(b);
    m->cb = batch_of(c);
    m->M = (int)a->d[a->ndim - 2];
    m->K = (int)a->d[a->ndim - 1];
    m->N = (int)b->d[b->ndim - 1];
    nb_broadcast_strides(&m->ab, &m->cb, m->sa);
    nb_broadcast_strides(&m->bb, &m->cb, m->sb);
    m->nbatch = nb_shape_numel(&m->cb);
    size_t rows = nb_shape_numel(&m->ab) * (size_t)m->M;
    m->fast = nb_shape_numel(&m->bb) == 1 && rows <= (size_t)INT_MAX;
    m->rows = m->fast ? (int)rows : 0;
}

/* Odometer over c's batch axes: the matrix indices of a and b for batch t. */
typedef struct {
    int64_t idx[NB_MAX_DIMS];
    int64_t ia, ib;
} nb_mm_iter;

static void mm_next(const nb_mm *m, nb_mm_iter *it)
{
    for (int k = m->cb.ndim - 1; k >= 0; k--) {
        it->ia += m->sa[k];
        it->ib += m->sb[k];
        if (++it->idx[k] < m->cb.d[k]) return;
        it->ia -= m->sa[k] * m->cb.d[k];
        it->ib -= m->sb[k] * m->cb.d[k];
        it->idx[k] = 0;
    }
}

static nb_status matmul_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *a = in[0], *b = in[1];
    if (a->ndim < 2 || b->ndim < 2)
        return nb_shape_error(n, "both inputs need at least 2 axes ([..., M, K] @ [..., K, N])", a,
                              b);
    if (a->d[a->ndim - 1] != b->d[b->ndim - 2])
        return nb_shape_error(n, "inner dimensions differ", a, b);
    if (a->d[a->ndim - 2] > INT_MAX || a->d[a->ndim - 1] > INT_MAX || b->d[b->ndim - 1] > INT_MAX)
        return nb_shape_error(n, "a matrix axis is larger than INT_MAX", a, b);
    nb_shape ab = batch_of(a), bb = batch_of(b);
    if (!nb_broadcast_shape(&ab, &bb, out))
        return nb_shape_error(n, "batch axes do not broadcast", a, b);
    /* out holds the batch axes; append M, N (at most NB_MAX_DIMS: each input fits) */
    out->d[out->ndim++] = a->d[a->ndim - 2];
    out->d[out->ndim++] = b->d[b->ndim - 1];
    return NB_OK;
}

/* c = a @ b */
static nb_status matmul_forward(const nb_exec *e)
{
    const nb_tensor *A = e->in[0], *B = e->in[1];
    float *c = e->out->x;
    nb_mm m;
    mm_init(&m, &A->s, &B->s, &e->out->s);
    const int M = m.M, K = m.K, N = m.N;
    if (m.fast) {
        nb_sgemm_pool(e->pool, 0, 0, m.rows, N, K, 1.0f, A->x, K, B->x, N, 0.0f, c, N);
        return NB_OK;
    }
    const size_t sza = (size_t)M * K, szb = (size_t)K * N, szc = (size_t)M * N;
    nb_mm_iter it = {{0}, 0, 0};
    for (size_t t = 0; t < m.nbatch; t++, mm_next(&m, &it))
        nb_sgemm_pool(e->pool, 0, 0, M, N, K, 1.0f, A->x + (size_t)it.ia * sza, K, B->x + (size_t)it.ib * szb, N,
                 0.0f, c + t * szc, N);
    return NB_OK;
}

/* da += dc @ b^T ; db += a^T @ dc, summed over the batches that share a matrix */
static void matmul_backward(const nb_exec *e)
{
    const nb_tensor *A = e->in[0], *B = e->in[1];
    const float *dc = e->out->g;
    nb_mm m;
    mm_init(&m, &A->s, &B->s, &e->out->s);
    const int M = m.M, K = m.K, N = m.N;
    if (m.fast) {
        /* da [rows, K] += dc [rows, N] @ b^T ; db [K, N] += a^T [K, rows] @ dc [rows, N] */
        if (A->g) nb_sgemm_pool(e->pool, 0, 1, m.rows, K, N, 1.0f, dc, N, B->x, N, 1.0f, A->g, K);
        if (B->g) nb_sgemm_pool(e->pool, 1, 0, K, N, m.rows, 1.0f, A->x, K, dc, N, 1.0f, B->g, N);
        return;
    }
    const size_t sza = (size_t)M * K, szb = (size_t)K * N, szc = (size_t)M * N;
    nb_mm_iter it = {{0}, 0, 0};
    for (size_t t = 0; t < m.nbatch; t++, mm_next(&m, &it)) {
        const float *dct = dc + t * szc;
        const float *at = A->x + (size_t)it.ia * sza, *bt = B->x + (size_t)it.ib * szb;
        if (A->g) nb_sgemm_pool(e->pool, 0, 1, M, K, N, 1.0f, dct, N, bt, N, 1.0f, A->g + (size_t)it.ia * sza, K);
        if (B->g) nb_sgemm_pool(e->pool, 1, 0, K, N, M, 1.0f, at, K, dct, N, 1.0f, B->g + (size_t)it.ib * szb, N);
    }
}

const nb_op_def nb_def_matmul = {"matmul", 0, matmul_shape, NULL, NULL, matmul_forward,
                                 matmul_backward};

nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b)
{
    nb_node *in[2] = {a, b};
    return nb_graph_add_node(g, NB_OP_MATMUL, 2, in, NULL, 0, NULL, 0);
}
