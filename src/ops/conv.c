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
 * The cols matrix of one (n, g) lives in scratch. A 1x1 kernel with stride 1
 * and no padding needs no im2col at all: cols is the input slice itself.
 */
#include "ops.h"

#include "../kernels/im2col.h"

#include <limits.h>
#include <stdio.h>

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

/* One cols matrix [C/G*kh*kw, OH*OW], none when im2col is skipped. */
static size_t conv_scratch_bytes(const nb_node *n, const nb_shape *const *in, const nb_shape *out)
{
    nb_conv_geom g = conv_geom(n, in[0], in[1], out);
    if (conv_is_pointwise(&g)) return 0;
    return (size_t)g.C * g.kh * g.kw * ((size_t)g.OH * g.OW) * sizeof(float);
}

/* out[n, g] = W_g @ im2col(x[n, g]) (+ bias), for every sample n and group g */
static nb_status conv_forward(const nb_exec *e)
{
    const nb_tensor *X = e->in[0], *Wt = e->in[1];
    const float *bias = e->n_in == 3 ? e->in[2]->x : NULL;
    nb_conv_geom g = conv_geom(e->node, &X->s, &Wt->s, &e->out->s);
    const int64_t N = X->s.d[0];
    const int G = (int)e->node->ia[A_G];
    const int O = (int)Wt->s.d[0], Og = O / G;
    const int K = g.C * g.kh * g.kw, P = g.OH * g.OW;
    const size_t xg = (size_t)g.C * g.H * g.W;   /* floats of one group's input */
    const int pointwise = conv_is_pointwise(&g);
    for (int64_t n = 0; n < N; n++) {
        for (int gi = 0; gi < G; gi++) {
            const float *x = X->x + ((size_t)n * G + gi) * xg;
            const float *w = Wt->x + (size_t)gi * Og * K;
            float *y = e->out->x + ((size_t)n * O + (size_t)gi * Og) * P;
            const float *cols = x;
            if (!pointwise) {
                nb_im2col(&g, x, e->scratch);
                cols = e->scratch;
            }
            /* start from the bias and accumulate the product onto it */
            if (bias)
                for (int o = 0; o < Og; o++) {
                    float b = bias[gi * Og + o], *yo = y + (size_t)o * P;
                    for (int p = 0; p < P; p++) yo[p] = b;
                }
            nb_sgemm_pool(e->pool, 0, 0, Og, P, K, 1.0f, w, K, cols, P, bias ? 1.0f : 0.0f, y, P);
        }
    }
    return NB_OK;
}

/* dW_g += dY_g @ cols^T, dx[n, g] += col2im(W_g^T @ dY_g), dbias += sum of dY;
 * samples in order, so every sum has a fixed order */
static void conv_backward(const nb_exec *e)
{
    const nb_tensor *X = e->in[0], *Wt = e->in[1];
    float *dbias = e->n_in == 3 ? e->in[2]->g : NULL;
    nb_conv_geom g = conv_geom(e->node, &X->s, &Wt->s, &e->out->s);
    const int64_t N = X->s.d[0];
    const int G = (int)e->node->ia[A_G];
    const int O = (int)Wt->s.d[0], Og = O / G;
    const int K = g.C * g.kh * g.kw, P = g.OH * g.OW;
    const size_t xg = (size_t)g.C * g.H * g.W;
    const int pointwise = conv_is_pointwise(&g);
    float *cols = e->scratch;
    for (int64_t n = 0; n < N; n++) {
        for (int gi = 0; gi < G; gi++) {
            const size_t xoff = ((size_t)n * G + gi) * xg;
            const float *w = Wt->x + (size_t)gi * Og * K;
            const float *dy = e->out->g + ((size_t)n * O + (size_t)gi * Og) * P;
            if (Wt->g) {
                /* dW_g[Og, K] += dY_g[Og, P] @ cols[K, P]^T */
                const float *c = X->x + xoff;
                if (!pointwise) {
                    nb_im2col(&g, X->x + xoff, cols);
                    c = cols;
                }
                nb_sgemm_pool(e->pool, 0, 1, Og, K, P, 1.0f, dy, P, c, P, 1.0f, Wt->g + (size_t)gi * Og * K, K);
            }
            if (X->g) {
                /* dcols[K, P] = W_g[Og, K]^T @ dY_g[Og, P]; pointwise adds straight into dx */
                if (pointwise) {
                    nb_sgemm_pool(e->pool, 1, 0, K, P, Og, 1.0f, w, K, dy, P, 1.0f, X->g + xoff, P);
                } else {
                    nb_sgemm_pool(e->pool, 1, 0, K, P, Og, 1.0f, w, K, dy, P, 0.0f, cols, P);
                    nb_col2im_add(&g, cols, X->g + xoff);
                }
            }
        }
        if (dbias) {
            const float *dy = e->out->g + (size_t)n * O * P;
            for (int o = 0; o < O; o++) {
                float s = 0.0f;
                for (int p = 0; p < P; p++) s += dy[(size_t)o * P + p];
                dbias[o] += s;
            }
        }
    }
}

const nb_op_def nb_def_conv2d = {"conv2d", 0, conv_shape, NULL, conv_scratch_bytes, conv_forward,
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
