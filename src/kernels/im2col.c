/*
 * im2col.c - nb_im2col and its adjoint nb_col2im_add (see im2col.h).
 *
 * Both walk cols row by row: a row is one (channel, tap) pair and holds OH
 * runs of OW outputs. For a fixed tap the outputs that fall inside the image
 * form one contiguous range of oh and, within a row of the image, one range
 * of ow; the ranges are computed once per row of cols, so the inner loops
 * have no bounds tests: zeros before and after, a strided copy in between.
 */
#include "im2col.h"

#include <stddef.h>
#include <string.h>

/* The outputs o in [0, n_out) whose input o*stride + off lies in [0, size):
 * they form the range [*lo, *hi) (empty when *lo == *hi). */
static void inside_range(int off, int stride, int size, int n_out, int *lo, int *hi)
{
    /* o*stride + off >= 0  <=>  o >= ceil(-off / stride) */
    int a = off < 0 ? (-off + stride - 1) / stride : 0;
    /* o*stride + off < size  <=>  o <= (size - 1 - off) / stride */
    int b = size - off <= 0 ? 0 : (size - 1 - off) / stride + 1;
    if (b > n_out) b = n_out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

void nb_im2col(const nb_conv_geom *g, const float *x, float *cols)
{
    const int OH = g->OH, OW = g->OW;
    const size_t P = (size_t)OH * OW;
    float *row = cols;
    for (int c = 0; c < g->C; c++) {
        const float *xc = x + (size_t)c * g->H * g->W;
        for (int i = 0; i < g->kh; i++) {
            int hoff = i * g->dh - g->ph, oh_lo, oh_hi;
            inside_range(hoff, g->sh, g->H, OH, &oh_lo, &oh_hi);
            for (int j = 0; j < g->kw; j++, row += P) {
                int woff = j * g->dw - g->pw, ow_lo, ow_hi;
                inside_range(woff, g->sw, g->W, OW, &ow_lo, &ow_hi);
                /* windows whose tap row falls in the top or bottom padding */
                memset(row, 0, (size_t)oh_lo * OW * sizeof(float));
                memset(row + (size_t)oh_hi * OW, 0, (size_t)(OH - oh_hi) * OW * sizeof(float));
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    /* the image row under this tap; ow reads column ow*sw + woff,
                     * which is >= 0 inside [ow_lo, ow_hi) */
                    const float *xr = xc + (size_t)(oh * g->sh + hoff) * g->W;
                    float *dst = row + (size_t)oh * OW;
                    for (int ow = 0; ow < ow_lo; ow++) dst[ow] = 0.0f;
                    if (g->sw == 1) {
                        /* rows are short (tens of floats): a loop, not a call */
                        const float *src = xr + woff;
                        for (int ow = ow_lo; ow < ow_hi; ow++) dst[ow] = src[ow];
                    } else {
                        for (int ow = ow_lo; ow < ow_hi; ow++) dst[ow] = xr[ow * g->sw + woff];
                    }
                    for (int ow = ow_hi; ow < OW; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

void nb_col2im_add(const nb_conv_geom *g, const float *cols, float *x)
{
    const int OH = g->OH, OW = g->OW;
    const size_t P = (size_t)OH * OW;
    const float *row = cols;
    for (int c = 0; c < g->C; c++) {
        float *xc = x + (size_t)c * g->H * g->W;
        for (int i = 0; i < g->kh; i++) {
            int hoff = i * g->dh - g->ph, oh_lo, oh_hi;
            inside_range(hoff, g->sh, g->H, OH, &oh_lo, &oh_hi);
            for (int j = 0; j < g->kw; j++, row += P) {
                int woff = j * g->dw - g->pw, ow_lo, ow_hi;
                inside_range(woff, g->sw, g->W, OW, &ow_lo, &ow_hi);
                /* only taps inside the image receive gradient */
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    float *xr = xc + (size_t)(oh * g->sh + hoff) * g->W;
                    const float *src = row + (size_t)oh * OW;
                    for (int ow = ow_lo; ow < ow_hi; ow++) xr[ow * g->sw + woff] += src[ow];
                }
            }
        }
    }
}
