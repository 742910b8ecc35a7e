/*
 * conv.c - 2-D convolution (cross-correlation, as PyTorch's conv2d), NCHW.
 *
 *   x [N, C, H, W], weight [O, C/G, kh, kw], bias [O] (optional third input)
 *   out [N, O, OH, OW],  OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1, OW alike
 *
 * Attributes: ia = {sh, sw, ph, pw, dh, dw, G} (stride, zero padding,
 * dilation, groups), all resolved by the builder (no zeros left).
 *
 * Per sample n and group g (C/G = Cg input channels, O/G = Og outputs):
 *   cols   [Cg*kh*kw, OH*OW] = im2col(x[n, g*Cg : (g+1)*Cg])
 *   out_g  [Og, OH*OW]       = W_g [Og, Cg*kh*kw] @ cols (+ bias)
 * and backward, with dY_g the matching slice of out->g:
 *   dW_g  += dY_g @ cols^T              (cols recomputed: nothing is saved)
 *   dcols  = W_g^T @ dY_g, then col2im adds it into dx
 *   dbias += dY summed over n and the OH*OW positions
 * A 1x1 kernel with stride 1 and no padding needs no im2col at all: cols is
 * the input slice itself. A fused relu (NB_OPF_ACT) is applied to each
 * sample's output right after its product, and its mask to each sample's dY
 * before the products that read it.
 *
 * 3x3 layers with stride 1, no dilation, one group and 16+ channels each
 * way go by Winograd's F(2x2, 3x3) instead (kernels/winograd.c: 2.25x fewer
 * multiply-adds), a chunk of samples per call, on the same schedule; its
 * weight gradient is summed per chunk in the transformed domain and taken
 * back to 3x3 once. conv_layout_of chooses, from the shapes alone.
 */
#include "ops.h"

#include "../kernels/im2col.h"
#include "../kernels/winograd.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

enum { A_SH, A_SW, A_PH, A_PW, A_DH, A_DW, A_G, A_COUNT };

/* Sizes past this would overflow the int indices of the kernels (products of
 * two such sizes are checked separately). */
#define CONV_MAX_DIM (INT_MAX / 4)

/* The geometry of one group of one sample, from runtime shapes. */
static nb_conv_geom conv_geom(const nb_node *n, const nb_shape *x, const nb_shape *w,
                              const nb_shape *y)
{
    nb_conv_geom g;
    g.C = (int)w->d[1];   /* channels per group */
    g.H = (int)x->d[2];
    g.W = (int)x->d[3];
    g.kh = (int)w->d[2];
    g.kw = (int)w->d[3];
    g.sh = (int)n->ia[A_SH];
    g.sw = (int)n->ia[A_SW];
    g.ph = (int)n->ia[A_PH];
    g.pw = (int)n->ia[A_PW];
    g.dh = (int)n->ia[A_DH];
    g.dw = (int)n->ia[A_DW];
    g.OH = (int)y->d[2];
    g.OW = (int)y->d[3];
    return g;
}

/* The 1x1, stride 1, unpadded case: im2col would be a plain copy. */
static int conv_is_pointwise(const nb_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* ---- conv2d: [N,C,H,W] * [O,C/G,kh,kw] (+ [O]) -> [N,O,OH,OW] ---- */

static nb_status conv_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[0], *w = in[1];
    const int64_t G = n->ia[A_G];
    char msg[200];
    if (x->ndim != 4) return nb_shape_error(n, "input must be 4-D [N,C,H,W]", x, w);
    if (w->ndim != 4) return nb_shape_error(n, "weight must be 4-D [O,C/groups,kh,kw]", x, w);
    /* every later product stays far below INT64_MAX once each size is capped */
    for (int k = 0; k < 4; k++)
        if ((k > 0 && x->d[k] > CONV_MAX_DIM) || w->d[k] > CONV_MAX_DIM)
            return nb_shape_error(n, "sizes too large", x, w);
    if (w->d[1] * G != x->d[1]) {
        snprintf(msg, sizeof msg,
                 "input has %lld channels, weight takes %lld (%lld per group x %lld groups)",
                 (long long)x->d[1], (long long)(w->d[1] * G), (long long)w->d[1], (long long)G);
        return nb_shape_error(n, msg, x, w);
    }
    if (w->d[0] % G != 0) {
        snprintf(msg, sizeof msg, "%lld output channels do not divide into %lld groups",
                 (long long)w->d[0], (long long)G);
        return nb_shape_error(n, msg, x, w);
    }
    if (n->n_in == 3 && (in[2]->ndim != 1 || in[2]->d[0] != w->d[0]))
        return nb_shape_error(n, "bias must be [O], O = weight's first axis", in[2], w);
    /* the extent of a dilated kernel: dh (kh - 1) + 1 */
    int64_t eh = n->ia[A_DH] * (w->d[2] - 1) + 1, ew = n->ia[A_DW] * (w->d[3] - 1) + 1;
    int64_t hp = x->d[2] + 2 * n->ia[A_PH], wp = x->d[3] + 2 * n->ia[A_PW];   /* padded */
    if (hp < eh || wp < ew) {
        snprintf(msg, sizeof msg,
                 "output smaller than 1x1: padded input %lldx%lld, dilated kernel %lldx%lld",
                 (long long)hp, (long long)wp, (long long)eh, (long long)ew);
        return nb_shape_error(n, msg, x, w);
    }
    int64_t oh = (hp - eh) / n->ia[A_SH] + 1, ow = (wp - ew) / n->ia[A_SW] + 1;
    /* im2col's rows and columns, and the image plane, are int-indexed */
    int64_t taps = w->d[2] * w->d[3];
    if (oh * ow > CONV_MAX_DIM || taps > CONV_MAX_DIM || w->d[1] * taps > CONV_MAX_DIM ||
        x->d[2] * x->d[3] > CONV_MAX_DIM)
        return nb_shape_error(n, "sizes too large", x, w);
    out->ndim = 4;
    out->d[0] = x->d[0];
    out->d[1] = w->d[0];
    out->d[2] = oh;
    out->d[3] = ow;
    return NB_OK;
}

/* ---- the parallel schedule ----
 * The batch is cut into chunks of `chunk` consecutive samples (4 unless the
 * scratch budget asks for more). Each chunk's weight gradient is summed into
 * a partial of its own, and the partials are added to dW in chunk order at
 * the end; so every result depends on the shapes only, never on the number
 * of threads, and a batch split across processes at chunk boundaries sums
 * its gradient almost in the same order as a whole one. Chunks are dealt to
 * `slots` tasks (task s takes chunks s, s + slots, ...), each with a cols
 * matrix of its own. With fewer tasks than threads (a batch of one) the tasks
 * run one after the other and each product is spread over the pool instead:
 * the same sums either way. */
enum { CONV_CHUNK = 4, CONV_MAX_SLOTS = 32 };
#define CONV_SCRATCH_BUDGET ((size_t)64 << 20)

/* Scratch: the weights packed once for every sample's product (forward:
 * W_g, backward: W_g^T, per group; or transformed, for Winograd), then
 * `slots` task scratches (a cols matrix, or the Winograd buffers), then
 * `chunks` partial weight gradients, then the chunks' sums of dY for the
 * bias. */
typedef struct {
    int64_t chunk, chunks;
    int slots;
    size_t wpack, cols, dw;   /* floats: packed weights, one task's scratch, one partial dW */
    size_t wpack_group;       /* floats of one group's packed weights */
    size_t bsum;              /* floats: dY's sums per chunk and output, [chunks, O] doubles */
    int wino;                 /* 3x3 by Winograd's F(2x2, 3x3) (kernels/winograd.c) */
    nb_wino w;
} conv_layout;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

static size_t conv_layout_floats(const conv_layout *l)
{
    return l->wpack + (size_t)l->slots * l->cols + (size_t)l->chunks * l->dw + l->bsum;
}

/* The sizes for l->chunk samples per chunk. */
static void conv_layout_sizes(conv_layout *l, const nb_conv_geom *g, int64_t N, int O, int G)
{
    l->chunks = N < 1 ? 1 : (N + l->chunk - 1) / l->chunk;
    l->bsum = round16((size_t)l->chunks * O * 2);   /* doubles */
    if (l->wino) {
        nb_wino_init(&l->w, g, O, (int)(N < 1 ? 1 : N < l->chunk ? N : l->chunk), -1);
        l->wpack_group = l->wpack = round16(nb_wino_weights_floats(&l->w));
        l->cols = round16(nb_wino_scratch_floats(&l->w));
        l->dw = nb_wino_du_floats(&l->w);
        return;
    }
    const int K = g->C * g->kh * g->kw, Og = O / G;
    const size_t fwd = nb_sgemm_packed_size(Og, K), bwd = nb_sgemm_packed_size(K, Og);
    l->wpack_group = round16(fwd > bwd ? fwd : bwd);
    l->wpack = (size_t)G * l->wpack_group;
    l->cols = conv_is_pointwise(g) ? 0 : round16((size_t)K * ((size_t)g->OH * g->OW));
    l->dw = round16((size_t)O * K);
}

/* Chunks of 4 samples, fewer tasks or larger chunks while the scratch
 * exceeds its budget; 0 when even one chunk of the whole batch does. */
static int conv_layout_search(conv_layout *l, const nb_conv_geom *g, int64_t N, int O, int G)
{
    const size_t budget = CONV_SCRATCH_BUDGET / sizeof(float);
    for (l->chunk = CONV_CHUNK;; l->chunk *= 2) {
        conv_layout_sizes(l, g, N, O, G);
        l->slots = l->chunks < CONV_MAX_SLOTS ? (int)l->chunks : CONV_MAX_SLOTS;
        while (l->slots > 1 && conv_layout_floats(l) > budget) l->slots--;
        if (conv_layout_floats(l) <= budget) return 1;
        if (l->chunk >= N) return 0;
    }
}

/* O outputs in G groups: Winograd where it applies and fits the budget,
 * else im2col (over budget only when a single chunk of the batch is) */
static conv_layout conv_layout_of(const nb_conv_geom *g, int64_t N, int O, int G)
{
    conv_layout l;
    memset(&l, 0, sizeof l);
    l.wino = nb_wino_applies(g, O, G);
    if (l.wino && conv_layout_search(&l, g, N, O, G)) return l;
    l.wino = 0;
    conv_layout_search(&l, g, N, O, G);
    return l;
}

static size_t conv_scratch_bytes(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    nb_conv_geom g = conv_geom(n, in[0], in[1], out);
    conv_layout l = conv_layout_of(&g, in[0]->d[0], (int)in[1]->d[0], (int)n->ia[A_G]);
    return conv_layout_floats(&l) * sizeof(float);
}

/* Everything a task needs, from runtime shapes. */
typedef struct conv_job {
    const nb_exec *e;
    nb_conv_geom g;
    conv_layout l;
    int64_t N;
    int G, O, Og, K, P;   /* groups, outputs, outputs per group, rows of cols, positions */
    size_t xg;            /* floats of one group's input */
    int serial;           /* tasks run in parallel, each product on its thread; else the
                           * tasks one after the other, each product over the pool */
    /* The partial weight gradients are computed transposed, [K, Og] per
     * group, when that wastes less of the GEMM's tiles: a first layer has a
     * handful of taps (K = 9 for one channel) against many outputs, and a
     * K-wide tile row would be mostly padding. The same sums in the same
     * order either way, so the same bits. */
    int dw_t;
    void (*chunk_fn)(const struct conv_job *j, int64_t c, float *cols);
} conv_job;

static conv_job conv_job_of(const nb_exec *e)
{
    const nb_tensor *X = e->in[0], *Wt = e->in[1];
    conv_job j;
    j.e = e;
    j.g = conv_geom(e->node, &X->s, &Wt->s, &e->out->s);
    j.N = X->s.d[0];
    j.G = (int)e->node->ia[A_G];
    j.l = conv_layout_of(&j.g, j.N, (int)Wt->s.d[0], j.G);
    j.O = (int)Wt->s.d[0];
    j.Og = j.O / j.G;
    j.K = j.g.C * j.g.kh * j.g.kw;
    j.P = j.g.OH * j.g.OW;
    j.xg = (size_t)j.g.C * j.g.H * j.g.W;
    j.serial = j.l.slots >= nb_pool_threads(e->pool);
    j.chunk_fn = NULL;
    /* tiles are up to 8 rows by 32 columns: compare the padded areas */
    const int pad8 = 8, pad32 = 32;
    size_t normal = (size_t)((j.Og + pad8 - 1) / pad8 * pad8) * ((j.K + pad32 - 1) / pad32 * pad32);
    size_t transposed = (size_t)((j.K + pad8 - 1) / pad8 * pad8) * ((j.Og + pad32 - 1) / pad32 * pad32);
    j.dw_t = transposed < normal;
    return j;
}

/* the chunks of task s, with task s's cols matrix */
static void conv_task(void *ctx, int s)
{
    const conv_job *j = ctx;
    float *cols = (float *)j->e->scratch + j->l.wpack + (size_t)s * j->l.cols;
    for (int64_t c = s; c < j->l.chunks; c += j->l.slots) j->chunk_fn(j, c, cols);
}

/* Runs fn over every chunk: tasks in parallel, or in order with parallel products. */
static void conv_run(conv_job *j, void (*fn)(const conv_job *j, int64_t c, float *cols))
{
    j->chunk_fn = fn;
    nb_pool_run(j->serial ? j->e->pool : NULL, j->l.slots, conv_task, j);
}

/* C = op(A) op(B) + beta C on this task's thread, or over the pool */
static void conv_gemm(const conv_job *j, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc)
{
    if (j->serial) nb_sgemm_serial(j->e->pool, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    else nb_sgemm_pool(j->e->pool, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* group gi's packed weights */
static const float *group_wpack(const conv_job *j, int gi)
{
    return (const float *)j->e->scratch + (size_t)gi * j->l.wpack_group;
}

/* Packs every group's W_g [Og, K] (forward) or W_g^T [K, Og] (backward). */
static void conv_pack_weights(const conv_job *j, int transposed)
{
    const float *W = j->e->in[1]->x;
    for (int gi = 0; gi < j->G; gi++) {
        const float *w = W + (size_t)gi * j->Og * j->K;
        float *dst = (float *)j->e->scratch + (size_t)gi * j->l.wpack_group;
        if (transposed) nb_sgemm_pack(1, j->K, j->Og, 1.0f, w, j->K, dst);
        else nb_sgemm_pack(0, j->Og, j->K, 1.0f, w, j->K, dst);
    }
}

/* chunk c's sums of dY per output, for the bias gradient: [O] doubles */
static double *chunk_bsum(const conv_job *j, int64_t c)
{
    return (double *)((float *)j->e->scratch + j->l.wpack + (size_t)j->l.slots * j->l.cols + (size_t)j->l.chunks * j->l.dw) + (size_t)c * j->O;
}

/* d[0..P) summed in eight running sums, in a fixed order, so the loop
 * vectorises; the eight are added in double */
static double row_sum(const float *d, int P)
{
    float lane[8] = {0};
    int p = 0;
    for (; p + 8 <= P; p += 8)
        for (int k = 0; k < 8; k++) lane[k] += d[p + k];
    for (; p < P; p++) lane[0] += d[p];
    double s = 0.0;
    for (int k = 0; k < 8; k++) s += lane[k];
    return s;
}

/* chunk c's partial weight gradient */
static float *chunk_dw(const conv_job *j, int64_t c)
{
    return (float *)j->e->scratch + j->l.wpack + (size_t)j->l.slots * j->l.cols + (size_t)c * j->l.dw;
}

/* chunk c's samples [lo, hi) */
static int64_t chunk_lo(const conv_job *j, int64_t c) { return c * j->l.chunk; }
static int64_t chunk_hi(const conv_job *j, int64_t c)
{
    return (c + 1) * j->l.chunk < j->N ? (c + 1) * j->l.chunk : j->N;
}

/* out[n, g] = W_g @ im2col(x[n, g]) (+ bias), then the fused activation */
static void conv_forward_chunk(const conv_job *j, int64_t c, float *scratch)
{
    const nb_exec *e = j->e;
    const nb_tensor *X = e->in[0];
    const float *bias = e->n_in == 3 ? e->in[2]->x : NULL;
    const int K = j->K, P = j->P, Og = j->Og;
    for (int64_t n = chunk_lo(j, c); n < chunk_hi(j, c); n++) {
        for (int gi = 0; gi < j->G; gi++) {
            const float *x = X->x + ((size_t)n * j->G + gi) * j->xg;
            float *y = e->out->x + ((size_t)n * j->O + (size_t)gi * Og) * P;
            const float *cols = x;
            if (j->l.cols) {
                nb_im2col(&j->g, x, scratch);
                cols = scratch;
            }
            /* the product, then the bias and the activation in one pass,
             * each row while in cache */
            nb_sgemm_packed(e->pool, j->serial, Og, P, K, group_wpack(j, gi), 0, cols, P, 0.0f, y, P);
            if (bias)
                for (int o = 0; o < Og; o++) nb_act_bias(e->act, y + (size_t)o * P, bias[gi * Og + o], (size_t)P);
        }
        if (!bias) nb_act_apply(NULL, e->act, e->out->x + (size_t)n * j->O * P, (size_t)j->O * P);
    }
}

/* The same by Winograd: the chunk's samples in one call */
static void conv_forward_chunk_wino(const conv_job *j, int64_t c, float *scratch)
{
    const nb_exec *e = j->e;
    const int64_t n0 = chunk_lo(j, c), n1 = chunk_hi(j, c);
    float *y = e->out->x + (size_t)n0 * j->O * j->P;
    nb_wino_forward(&j->l.w, j->serial ? NULL : e->pool, group_wpack(j, 0), e->in[0]->x + (size_t)n0 * j->xg,
                    (int)(n1 - n0), e->n_in == 3 ? e->in[2]->x : NULL, y, scratch);
    nb_act_apply(NULL, e->act, y, (size_t)(n1 - n0) * j->O * j->P);
}

static nb_status conv_forward(const nb_exec *e)
{
    conv_job j = conv_job_of(e);
    if (j.l.wino) {
        nb_wino_pack(&j.l.w, e->in[1]->x, (float *)e->scratch, 0);
        conv_run(&j, conv_forward_chunk_wino);
        return NB_OK;
    }
    conv_pack_weights(&j, 0);
    conv_run(&j, conv_forward_chunk);
    return NB_OK;
}

/* Sample n of chunk c: the fused activation's mask on its dY, then, per
 * output row while in cache, the row's sum for the bias gradient. */
static void conv_prepare_dy(const conv_job *j, int64_t c, int64_t n)
{
    const nb_exec *e = j->e;
    const int P = j->P;
    float *dyn = e->out->g + (size_t)n * j->O * P;
    for (int o = 0; o < j->O; o++) {
        float *row = dyn + (size_t)o * P;
        nb_act_grad(NULL, e->act, e->out->x + (size_t)n * j->O * P + (size_t)o * P, row, (size_t)P);
        if (e->n_in == 3 && e->in[2]->g) {
            double *bs = chunk_bsum(j, c) + o;
            *bs = (n == chunk_lo(j, c) ? 0.0 : *bs) + row_sum(row, P);
        }
    }
}

/* Backward by Winograd: the chunk's transformed weight gradient, and its
 * samples' input gradients */
static void conv_backward_chunk_wino(const conv_job *j, int64_t c, float *scratch)
{
    const nb_exec *e = j->e;
    const nb_tensor *X = e->in[0], *Wt = e->in[1];
    const int64_t n0 = chunk_lo(j, c), n1 = chunk_hi(j, c);
    for (int64_t n = n0; n < n1; n++) conv_prepare_dy(j, c, n);
    /* a gradient nothing has written yet (e->fresh) is overwritten */
    nb_wino_backward(&j->l.w, j->serial ? NULL : e->pool, group_wpack(j, 0), X->x + (size_t)n0 * j->xg,
                     e->out->g + (size_t)n0 * j->O * j->P, (int)(n1 - n0), X->g ? X->g + (size_t)n0 * j->xg : NULL,
                     !(e->fresh & 1), Wt->g ? chunk_dw(j, c) : NULL, scratch);
}

/* For the chunk's samples: the fused activation's mask on dY, then
 *   dW_t[g]  = sum over its samples of dY_g @ cols^T   (cols recomputed)
 *   dx[n, g] += col2im(W_g^T @ dY_g)                     */
static void conv_backward_chunk(const conv_job *j, int64_t c, float *cols)
{
    const nb_exec *e = j->e;
    const nb_tensor *X = e->in[0], *Wt = e->in[1];
    float *dw = chunk_dw(j, c);
    const int K = j->K, P = j->P, Og = j->Og;
    const int64_t n0 = chunk_lo(j, c), n1 = chunk_hi(j, c);
    for (int64_t n = n0; n < n1; n++) {
        conv_prepare_dy(j, c, n);
        const float *dyn = e->out->g + (size_t)n * j->O * P;
        /* a gradient nothing has written yet (e->fresh): cleared here, in cache */
        if (X->g && (e->fresh & 1) && j->l.cols) memset(X->g + (size_t)n * j->G * j->xg, 0, (size_t)j->G * j->xg * sizeof(float));
        for (int gi = 0; gi < j->G; gi++) {
            const size_t xoff = ((size_t)n * j->G + gi) * j->xg;
            const float *dy = dyn + (size_t)gi * Og * P;
            if (Wt->g) {
                /* dW_c[Og, K] (+)= dY_g[Og, P] @ cols[K, P]^T, the first sample
                 * overwrites; or its transpose cols @ dY_g^T (see dw_t) */
                const float *src = X->x + xoff;
                if (j->l.cols) {
                    nb_im2col(&j->g, src, cols);
                    src = cols;
                }
                const float beta = n == n0 ? 0.0f : 1.0f;
                if (j->dw_t) conv_gemm(j, 0, 1, K, Og, P, src, P, dy, P, beta, dw + (size_t)gi * Og * K, Og);
                else conv_gemm(j, 0, 1, Og, K, P, dy, P, src, P, beta, dw + (size_t)gi * Og * K, K);
            }
            if (X->g) {
                /* dcols[K, P] = W_g[Og, K]^T @ dY_g[Og, P]; pointwise adds straight into dx */
                if (!j->l.cols) {
                    nb_sgemm_packed(e->pool, j->serial, K, P, Og, group_wpack(j, gi), 0, dy, P, e->fresh & 1 ? 0.0f : 1.0f,
                                    X->g + xoff, P);
                } else {
                    nb_sgemm_packed(e->pool, j->serial, K, P, Og, group_wpack(j, gi), 0, dy, P, 0.0f, cols, P);
                    nb_col2im_add(&j->g, cols, X->g + xoff);
                }
            }
        }
    }
}

/* dW[i] += the chunks' partial sums, in chunk order */
static void conv_sum_dw(void *ctx, size_t lo, size_t hi)
{
    const conv_job *j = ctx;
    float *dW = j->e->in[1]->g;
    if (j->e->fresh & 2) memset(dW + lo, 0, (hi - lo) * sizeof(float));
    const size_t OgK = (size_t)j->Og * j->K;
    for (int64_t c = 0; c < j->l.chunks; c++) {
        const float *part = chunk_dw(j, c);
        if (!j->dw_t) {
            for (size_t i = lo; i < hi; i++) dW[i] += part[i];
            continue;
        }
        for (size_t i = lo; i < hi; i++) { /* element (o, k) of group gi sits at (k, o) */
            size_t gi = i / OgK, r = i % OgK, o = r / (size_t)j->K, k = r % (size_t)j->K;
            dW[i] += part[gi * OgK + k * (size_t)j->Og + o];
        }
    }
}

/* dbias[o] += the chunks' sums of dY[:, o] (conv_backward_chunk), added in
 * chunk order, in double */
static void conv_sum_dbias(void *ctx, size_t lo, size_t hi)
{
    const conv_job *j = ctx;
    float *db = j->e->in[2]->g;
    for (size_t o = lo; o < hi; o++) {
        double s = 0.0;
        for (int64_t c = 0; c < j->l.chunks; c++) s += chunk_bsum(j, c)[o];
        db[o] = (j->e->fresh & 4 ? 0.0f : db[o]) + (float)s;
    }
}

/* The chunks' transformed weight gradients summed in chunk order into the
 * first one's, elements [lo, hi) */
static void conv_sum_du_wino(void *ctx, size_t lo, size_t hi)
{
    const conv_job *j = ctx;
    float *sum = chunk_dw(j, 0);
    for (int64_t c = 1; c < j->l.chunks; c++) {
        const float *part = chunk_dw(j, c);
        for (size_t i = lo; i < hi; i++) sum[i] += part[i];
    }
}

/* dW from that sum, for the (o, c) pairs [lo, hi) */
static void conv_dw_wino(void *ctx, size_t lo, size_t hi)
{
    const conv_job *j = ctx;
    nb_wino_weight_grad(&j->l.w, chunk_dw(j, 0), lo, hi, j->e->in[1]->g, (j->e->fresh & 2) != 0);
}

static void conv_backward(const nb_exec *e)
{
    conv_job j = conv_job_of(e);
    const nb_tensor *Wt = e->in[1];
    if (j.l.wino) {
        if (e->in[0]->g) nb_wino_pack(&j.l.w, Wt->x, (float *)e->scratch, 1);
        conv_run(&j, conv_backward_chunk_wino);
        if (Wt->g) {
            nb_pool_for(e->pool, j.l.dw, 4096, conv_sum_du_wino, &j);
            nb_pool_for(e->pool, (size_t)j.O * j.g.C, 64, conv_dw_wino, &j);
        }
        if (e->n_in == 3 && e->in[2]->g) nb_pool_for(e->pool, (size_t)j.O, 1, conv_sum_dbias, &j);
        return;
    }
    if (e->in[0]->g) conv_pack_weights(&j, 1);
    conv_run(&j, conv_backward_chunk);
    if (Wt->g) nb_pool_for(e->pool, Wt->n, 4096, conv_sum_dw, &j);
    if (e->n_in == 3 && e->in[2]->g) nb_pool_for(e->pool, (size_t)j.O, 1, conv_sum_dbias, &j);
}

const nb_op_def nb_def_conv2d = {"conv2d", NB_OPF_ACT | NB_OPF_ASSIGN, conv_shape, NULL, conv_scratch_bytes, conv_forward,
                                 conv_backward};

/* Resolves the options (0 means the default) into ia; NULL inputs pass
 * through to nb_graph_add_node, which returns NULL and keeps their message. */
nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *weight, nb_node *bias,
                   const nb_conv2d_opts *opts)
{
    nb_conv2d_opts o = {0};
    if (opts) o = *opts;
    if (g && x && weight) {
        if (o.stride_h < 0 || o.stride_w < 0 || o.pad_h < 0 || o.pad_w < 0 || o.dilation_h < 0 ||
            o.dilation_w < 0 || o.groups < 0) {
            nb_set_error(NB_ERR_ARG,
                         "conv2d: options must be >= 0 (0: default), got stride %dx%d, "
                         "padding %dx%d, dilation %dx%d, groups %d",
                         o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dilation_h, o.dilation_w,
                         o.groups);
            return nb_graph_fail(g, NB_ERR_ARG);
        }
        if (o.pad_h > CONV_MAX_DIM || o.pad_w > CONV_MAX_DIM || o.stride_h > CONV_MAX_DIM ||
            o.stride_w > CONV_MAX_DIM || o.dilation_h > CONV_MAX_DIM ||
            o.dilation_w > CONV_MAX_DIM) {
            nb_set_error(NB_ERR_ARG, "conv2d: stride, padding or dilation too large");
            return nb_graph_fail(g, NB_ERR_ARG);
        }
    }
    int64_t ia[A_COUNT];
    ia[A_SH] = o.stride_h ? o.stride_h : 1;
    ia[A_SW] = o.stride_w ? o.stride_w : 1;
    ia[A_PH] = o.pad_h;
    ia[A_PW] = o.pad_w;
    ia[A_DH] = o.dilation_h ? o.dilation_h : 1;
    ia[A_DW] = o.dilation_w ? o.dilation_w : 1;
    ia[A_G] = o.groups ? o.groups : 1;
    nb_node *in[3] = {x, weight, bias};
    return nb_graph_add_node(g, NB_OP_CONV2D, bias ? 3 : 2, in, ia, A_COUNT, NULL, 0);
}
