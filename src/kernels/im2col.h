/*
 * im2col.h - the data movement behind convolution: one image's sliding
 * windows laid out as the columns of a matrix, so that a convolution becomes
 * one matrix product (and its backward two), and the way back.
 */
#ifndef NB_IM2COL_H
#define NB_IM2COL_H

/* Geometry of one 2-D convolution (or pooling) over one image of C channels.
 * Output position (oh, ow) with kernel tap (i, j) reads input row
 * oh*sh - ph + i*dh and column ow*sw - pw + j*dw; outside the image is the
 * zero padding. Every size fits in int (conv2d's shape rule checks it). */
typedef struct nb_conv_geom {
    int C, H, W;     /* input channels and size */
    int kh, kw;      /* kernel */
    int sh, sw;      /* stride */
    int ph, pw;      /* zero padding */
    int dh, dw;      /* dilation */
    int OH, OW;      /* output size */
} nb_conv_geom;

/* x [C, H, W] -> cols [C*kh*kw, OH*OW]: row (c*kh + i)*kw + j, column
 * oh*OW + ow holds the input under tap (i, j) of window (oh, ow), or 0 in the
 * padding. Every element of cols is written. */
void nb_im2col(const nb_conv_geom *g, const float *x, float *cols);

/* The adjoint of nb_im2col: x [C, H, W] += every element of cols
 * [C*kh*kw, OH*OW] at the input position it was read from; elements read
 * from the padding are dropped. The order of the sums is fixed (row by row
 * of cols), so the result is deterministic. */
void nb_col2im_add(const nb_conv_geom *g, const float *cols, float *x);

#endif
