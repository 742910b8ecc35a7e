/*
 * winograd.h - 3x3 convolution (stride 1, no dilation, one group) by
 * Winograd's minimal filtering F(2x2, 3x3): 16 multiplies per 2x2 block of
 * outputs and channel pair instead of 36. Forward and both backward passes;
 * conv.c decides when it applies and schedules the chunks of samples.
 */
#ifndef NB_WINOGRAD_H
#define NB_WINOGRAD_H

#include "../core/internal.h"
#include "im2col.h"

#include <stddef.h>

/* One direction of a convolution: input [C, H, W] to output [O, OH, OW],
 * patches at (2 ty - ph, 2 tx - pw) (a negative padding crops). */
typedef struct nb_wino_geom {
    int C, H, W;
    int ph, pw;
    int O, OH, OW;
    int TH, TW, T;      /* tiles (2x2 outputs) per sample: rows, columns, all */
    int Om;             /* O rounded up to the micro-kernel's mr */
} nb_wino_geom;

/* One layer's plan: both directions, the micro-kernel, the chunk size. */
typedef struct nb_wino {
    nb_wino_geom f;     /* forward: x -> y */
    nb_wino_geom b;     /* the input's gradient: dy -> dx, a convolution of
                         * dy by the flipped weights, padded 2 - ph, 2 - pw */
    int chunk;          /* samples per call, at most */
    int mr, nr, level;  /* the micro-kernel (nb_ukernel_info) */
    nb_ukernel fn;
    int Cn;             /* C rounded up to nr: the weight gradient's columns */
} nb_wino;

/* Whether the Winograd path computes this convolution: 3x3, stride 1, no
 * dilation, one group, and enough channels both ways that 16 products of
 * [O, C] by [C, tiles] keep the micro-kernel busy (measured: 8 channels
 * each way run faster by im2col's one deep product, 16 by Winograd; see
 * docs/performance.md). */
int nb_wino_applies(const nb_conv_geom *g, int O, int groups);
/* level: the micro-kernel's instruction set (nb_sgemm_ukernel; -1: the
 * best this CPU runs) */
void nb_wino_init(nb_wino *w, const nb_conv_geom *g, int O, int chunk, int level);

/* Floats of: the transformed weights (both layouts), one task's scratch,
 * one chunk's transformed weight gradient. */
size_t nb_wino_weights_floats(const nb_wino *w);
size_t nb_wino_scratch_floats(const nb_wino *w);
size_t nb_wino_du_floats(const nb_wino *w);

/* Transforms the weights W [O, C, 3, 3] into u (nb_wino_weights_floats):
 * the layout the forward pass reads, or (backward) the one the input's
 * gradient reads. */
void nb_wino_pack(const nb_wino *w, const float *W, float *u, int backward);

/* n <= chunk samples: y [n, O, OH, OW] = conv(x [n, C, H, W]) + bias (or
 * NULL). pool: spreads the 16 products over its threads (NULL: all on the
 * caller's thread). */
void nb_wino_forward(const nb_wino *w, nb_pool *pool, const float *u, const float *x, int n, const float *bias,
                     float *y, float *scratch);

/* The same n samples backward, from dy [n, O, OH, OW]: dx [n, C, H, W] =
 * the input's gradient (+= when dx_add; dx NULL: not wanted); du = these
 * samples' gradient of the transformed weights, overwritten (NULL: not
 * wanted). */
void nb_wino_backward(const nb_wino *w, nb_pool *pool, const float *u, const float *x, const float *dy, int n,
                      float *dx, int dx_add, float *du, float *scratch);

/* dW [O, C, 3, 3] for the (o, c) pairs i = o * C + c in [lo, hi), from
 * the transformed gradient du (the chunks' partials summed): dW = G^T du G,
 * or dW += it when !overwrite. */
void nb_wino_weight_grad(const nb_wino *w, const float *du, size_t lo, size_t hi, float *dW, int overwrite);

#endif
