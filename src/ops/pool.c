/*
 * pool.c - 2-D max and average pooling, NCHW, as PyTorch's max_pool2d and
 * avg_pool2d (floor mode; average counts the padding).
 *
 *   x [N, C, H, W] -> out [N, C, OH, OW],  OH = (H + 2 ph - kh) / sh + 1, OW alike
 *
 * Attributes: ia = {kh, kw, sh, sw, ph, pw}; the builder has resolved a stride
 * of 0 to the kernel size and checked ph <= kh / 2, pw <= kw / 2, which
 * (with OH, OW >= 1) leaves at least one real input in every window.
 *
 * Window (oh, ow) covers rows oh*sh - ph .. oh*sh - ph + kh - 1 (likewise
 * columns); the part outside the image is padding.
 */
#include "ops.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { A_KH, A_KW, A_SH, A_SW, A_PH, A_PW, A_COUNT };

/* Argmax indices are int32 offsets in an H x W plane; sizes past this would
 * overflow them. */
#define POOL_MAX_DIM (INT_MAX / 4)

/* Sizes of one run, from runtime shapes. */
typedef struct {
    int64_t planes;   /* N * C */
    int H, W, OH, OW, kh, kw, sh, sw, ph, pw;
} pool_geom;

static pool_geom pool_get(const nb_node *n, const nb_shape *x, const nb_shape *y)
{
    pool_geom g;
    g.planes = x->d[0] * x->d[1];
    g.H = (int)x->d[2];
    g.W = (int)x->d[3];
    g.OH = (int)y->d[2];
    g.OW = (int)y->d[3];
    g.kh = (int)n->ia[A_KH];
    g.kw = (int)n->ia[A_KW];
    g.sh = (int)n->ia[A_SH];
    g.sw = (int)n->ia[A_SW];
    g.ph = (int)n->ia[A_PH];
    g.pw = (int)n->ia[A_PW];
    return g;
}

/* ---- shape, shared: [N,C,H,W] -> [N,C,OH,OW] ---- */
static nb_status pool_shape(const nb_node *n, const nb_shape *const *in, nb_shape *out)
{
    const nb_shape *x = in[0];
    if (x->ndim != 4) return nb_shape_error(n, "input must be 4-D [N,C,H,W]", x, NULL);
    if (x->d[2] > POOL_MAX_DIM || x->d[3] > POOL_MAX_DIM || x->d[2] * x->d[3] > POOL_MAX_DIM)
        return nb_shape_error(n, "image plane too large", x, NULL);
    int64_t hp = x->d[2] + 2 * n->ia[A_PH], wp = x->d[3] + 2 * n->ia[A_PW];   /* padded */
    if (hp < n->ia[A_KH] || wp < n->ia[A_KW]) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "output smaller than 1x1: padded input %lldx%lld, kernel %lldx%lld",
                 (long long)hp, (long long)wp, (long long)n->ia[A_KH], (long long)n->ia[A_KW]);
        return nb_shape_error(n, msg, x, NULL);
    }
    *out = *x;
    out->d[2] = (hp - n->ia[A_KH]) / n->ia[A_SH] + 1;
    out->d[3] = (wp - n->ia[A_KW]) / n->ia[A_SW] + 1;
    return NB_OK;
}

/* ---- max_pool2d: out = max over the window, padding never wins;
 *      saved: int32 argmax per output, an offset in its H x W plane ---- */

static size_t max_pool_saved_bytes(const nb_node *n, const nb_shape *const *in,
                                   const nb_shape *out)
{
    return nb_shape_numel(out) * sizeof(int32_t);
}

/* The winner rule, as PyTorch: a strictly greater value wins (ties keep the
 * first in scan order), a NaN always wins. Written as selects, not branches:
 * on real data the comparisons are coin flips a branch predictor loses. */
#define MAX_POOL_TAKE(v, i, best, bi)                  \
    do {                                              \
        int take_ = ((v) > (best)) | ((v) != (v));    \
        (best) = take_ ? (v) : (best);                \
        (bi) = take_ ? (i) : (bi);                    \
    } while (0)

/* The common 2x2 window, stride 2, no padding: four loads per output. */
static void max_pool_2x2(const float *x, int W, int OH, int OW, float *y, int32_t *a)
{
    for (int oh = 0; oh < OH; oh++) {
        const float *r0 = x + (size_t)2 * oh * W, *r1 = r0 + W;
        const int32_t base = 2 * oh * W;
        for (int ow = 0; ow < OW; ow++) {
            float best = r0[2 * ow];
            int32_t bi = base + 2 * ow;
            MAX_POOL_TAKE(r0[2 * ow + 1], base + 2 * ow + 1, best, bi);
            MAX_POOL_TAKE(r1[2 * ow], base + W + 2 * ow, best, bi);
            MAX_POOL_TAKE(r1[2 * ow + 1], base + W + 2 * ow + 1, best, bi);
            y[oh * OW + ow] = best;
            a[oh * OW + ow] = bi;
        }
    }
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
/* The same with AVX-512, 16 outputs at a time: each input row pair is read
 * as even and odd columns (masked loads: nothing past the row is touched),
 * and the four candidates are taken in the scalar kernel's order with the
 * same rule (greater, or NaN), so the same values and indices come out. */
__attribute__((target("avx512f"))) static void max_pool_2x2_avx512(const float *x, int W, int OH, int OW, float *y,
                                                                   int32_t *a)
{
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_add_epi32(evens, _mm512_set1_epi32(1));
    const __m512i lane2 = _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
    for (int oh = 0; oh < OH; oh++) {
        const float *r0 = x + (size_t)2 * oh * W, *r1 = r0 + W;
        for (int ow = 0; ow < OW; ow += 16) {
            const int n = OW - ow < 16 ? OW - ow : 16, cols = 2 * ow, left = W - cols;
            /* columns cols .. cols + 31 of the two rows, inside the row only */
            const __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
            const __mmask16 m1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
            const __m512 a0 = _mm512_maskz_loadu_ps(m0, r0 + cols), a1 = _mm512_maskz_loadu_ps(m1, r0 + cols + 16);
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, r1 + cols), b1 = _mm512_maskz_loadu_ps(m1, r1 + cols + 16);
            const __m512 c[4] = {_mm512_permutex2var_ps(a0, evens, a1), _mm512_permutex2var_ps(a0, odds, a1),
                                 _mm512_permutex2var_ps(b0, evens, b1), _mm512_permutex2var_ps(b0, odds, b1)};
            const __m512i base = _mm512_add_epi32(_mm512_set1_epi32(2 * oh * W + cols), lane2);
            const int off[4] = {0, 1, W, W + 1};
            __m512 best = c[0];
            __m512i bi = base;
            for (int k = 1; k < 4; k++) {
                const __mmask16 take = _mm512_cmp_ps_mask(c[k], best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(c[k], c[k], _CMP_UNORD_Q);
                best = _mm512_mask_mov_ps(best, take, c[k]);
                bi = _mm512_mask_mov_epi32(bi, take, _mm512_add_epi32(base, _mm512_set1_epi32(off[k])));
            }
            const __mmask16 out = (__mmask16)((1u << n) - 1);
            _mm512_mask_storeu_ps(y + (size_t)oh * OW + ow, out, best);
            _mm512_mask_storeu_epi32(a + (size_t)oh * OW + ow, out, bi);
        }
    }
}
#define NB_HAVE_POOL_AVX512 1
#endif

/* planes [lo, hi) of a max pooling forward pass */
static void max_pool_planes(void *ctx, size_t lo, size_t hi)
{
    const nb_exec *e = ctx;
    pool_geom g = pool_get(e->node, &e->in[0]->s, &e->out->s);
    const size_t HW = (size_t)g.H * g.W, OHW = (size_t)g.OH * g.OW;
    const int plain2x2 = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;
#ifdef NB_HAVE_POOL_AVX512
    const int avx512 = nb_sgemm_kernel_available(2); /* the CPU runs AVX-512 */
#endif
    int32_t *arg = e->saved;
    for (size_t c = lo; c < hi; c++) {
        const float *x = e->in[0]->x + c * HW;
        float *y = e->out->x + c * OHW;
        int32_t *a = arg + c * OHW;
        if (plain2x2) {
#ifdef NB_HAVE_POOL_AVX512
            if (avx512) {
                max_pool_2x2_avx512(x, g.W, g.OH, g.OW, y, a);
                continue;
            }
#endif
            max_pool_2x2(x, g.W, g.OH, g.OW, y, a);
            continue;
        }
        for (int oh = 0; oh < g.OH; oh++) {
            int h0 = oh * g.sh - g.ph, h1 = h0 + g.kh;
            if (h0 < 0) h0 = 0;
            if (h1 > g.H) h1 = g.H;
            for (int ow = 0; ow < g.OW; ow++) {
                int w0 = ow * g.sw - g.pw, w1 = w0 + g.kw;
                if (w0 < 0) w0 = 0;
                if (w1 > g.W) w1 = g.W;
                /* start at the first real input with -inf, so an all -inf
                 * window picks it */
                float best = -INFINITY;
                int32_t bi = h0 * g.W + w0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) MAX_POOL_TAKE(x[h * g.W + w], h * g.W + w, best, bi);
                y[oh * g.OW + ow] = best;
                a[oh * g.OW + ow] = bi;
            }
        }
    }
}

/* every plane on its own: planes are shared out among the pool's threads */
static nb_status max_pool_forward(const nb_exec *e)
{
    pool_geom g = pool_get(e->node, &e->in[0]->s, &e->out->s);
    nb_pool_for(e->pool, (size_t)g.planes, 4, max_pool_planes, (void *)e);
    return NB_OK;
}

/* dx[argmax] += dy, output by output; planes are independent, so they are
 * shared out among the pool's threads */
static void max_pool_back_planes(void *ctx, size_t lo, size_t hi)
{
    const nb_exec *e = ctx;
    pool_geom g = pool_get(e->node, &e->in[0]->s, &e->out->s);
    const size_t HW = (size_t)g.H * g.W, OHW = (size_t)g.OH * g.OW;
    const int32_t *arg = e->saved;
    for (size_t c = lo; c < hi; c++) {
        float *dx = e->in[0]->g + c * HW;
        const float *dy = e->out->g + c * OHW;
        const int32_t *a = arg + c * OHW;
        if (e->fresh & 1) memset(dx, 0, HW * sizeof(float)); /* cleared here, while in cache */
        for (size_t i = 0; i < OHW; i++) dx[a[i]] += dy[i];
    }
}

static void max_pool_backward(const nb_exec *e)
{
    pool_geom g = pool_get(e->node, &e->in[0]->s, &e->out->s);
    nb_pool_for(e->pool, (size_t)g.planes, 4, max_pool_back_planes, (void *)e);
}

/* ---- avg_pool2d: out = sum over the window's real inputs / pool_size, where
 *      pool_size counts the padding inside the padded image (PyTorch's
 *      count_include_pad=True) but not a window's overhang past it ---- */

/* The clipped window [*h0, *h1) x [*w0, *w1) of output (oh, ow), and the
 * divisor PyTorch uses for it. */
static int avg_window(const pool_geom *g, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
    int he = hs + g->kh, we = ws + g->kw;
    if (he > g->H + g->ph) he = g->H + g->ph;
    if (we > g->W + g->pw) we = g->W + g->pw;
    int size = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > g->H ? g->H : he;
    *w1 = we > g->W ? g->W : we;
    return size;
}

static nb_status avg_pool_forward(const nb_exec *e)
{
    pool_geom g = pool_get(e->node, &e->in[0]->s, &e->out->s);
    const size_t HW = (size_t)g.H * g.W, OHW = (size_t)g.OH * g.OW;
    for (int64_t c = 0; c < g.planes; c++) {
        const float *x = e->in[0]->x + (size_t)c * HW;
        float *y = e->out->x + (size_t)c * OHW;
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                int h0, h1, w0, w1;
                int size = avg_window(&g, oh, ow, &h0, &h1, &w0, &w1);
                float s = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) s += x[h * g.W + w];
                y[oh * g.OW + ow] = s / (float)size;
            }
    }
    return NB_OK;
}

/* dx += dy / pool_size over each clipped window */
static void avg_pool_backward(const nb_exec *e)
{
    pool_geom g = pool_get(e->node, &e->in[0]->s, &e->out->s);
    const size_t HW = (size_t)g.H * g.W, OHW = (size_t)g.OH * g.OW;
    for (int64_t c = 0; c < g.planes; c++) {
        float *dx = e->in[0]->g + (size_t)c * HW;
        const float *dy = e->out->g + (size_t)c * OHW;
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++) {
                int h0, h1, w0, w1;
                int size = avg_window(&g, oh, ow, &h0, &h1, &w0, &w1);
                float d = dy[oh * g.OW + ow] / (float)size;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) dx[h * g.W + w] += d;
            }
    }
}

const nb_op_def nb_def_max_pool2d = {"max_pool2d", NB_OPF_ASSIGN, pool_shape, max_pool_saved_bytes, NULL,
                                     max_pool_forward, max_pool_backward};
const nb_op_def nb_def_avg_pool2d = {"avg_pool2d", 0, pool_shape, NULL, NULL, avg_pool_forward,
                                     avg_pool_backward};

/* Checks the arguments PyTorch rejects and resolves stride 0 to the kernel. */
static nb_node *pool(nb_graph *g, nb_op_kind op, nb_node *x, int kh, int kw, int sh, int sw,
                     int ph, int pw)
{
    const char *name = nb_op_table[op]->name;
    if (!g || !x) return NULL;
    if (kh < 1 || kw < 1 || kh > POOL_MAX_DIM || kw > POOL_MAX_DIM) {
        nb_set_error(NB_ERR_ARG, "%s: kernel %dx%d, expected sizes >= 1", name, kh, kw);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    if (sh < 0 || sw < 0 || sh > POOL_MAX_DIM || sw > POOL_MAX_DIM) {
        nb_set_error(NB_ERR_ARG, "%s: stride %dx%d, expected >= 1 (or 0 for the kernel size)",
                     name, sh, sw);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    if (ph < 0 || pw < 0 || ph > kh / 2 || pw > kw / 2) {
        char xs[96];
        nb_set_error(NB_ERR_ARG,
                     "%s: padding %dx%d, expected >= 0 and at most half the kernel %dx%d "
                     "(input %s)", name, ph, pw, kh, kw, nb_shape_str(&x->shape, xs, sizeof xs));
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    int64_t ia[A_COUNT] = {kh, kw, sh ? sh : kh, sw ? sw : kw, ph, pw};
    return nb_graph_add_node(g, op, 1, &x, ia, A_COUNT, NULL, 0);
}

nb_node *nb_max_pool2d(nb_graph *g, nb_node *x, int kh, int kw, int stride_h, int stride_w,
                       int pad_h, int pad_w)
{
    return pool(g, NB_OP_MAX_POOL2D, x, kh, kw, stride_h, stride_w, pad_h, pad_w);
}

nb_node *nb_avg_pool2d(nb_graph *g, nb_node *x, int kh, int kw, int stride_h, int stride_w,
                       int pad_h, int pad_w)
{
    return pool(g, NB_OP_AVG_POOL2D, x, kh, kw, stride_h, stride_w, pad_h, pad_w);
}
