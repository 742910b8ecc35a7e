/*
 * test_winograd.c - the F(2x2, 3x3) kernels (kernels/winograd.c) directly,
 * at every micro-kernel level this CPU runs (AVX-512 8x32, AVX2 6x16,
 * portable 6x16: different panel layouts and paddings), against a direct
 * convolution in double: the output, the input's gradient (overwritten and
 * added), and the weights' gradient from several chunks' partials.
 */
#include "test.h"
#include "../src/kernels/winograd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int n, C, H, W, O, ph, pw;
} wcase;

static int out_size(int in, int pad) { return in + 2 * pad - 2; }

/* y[s][o][i][j] = sum x[s][c][i - ph + a][j - pw + b] w[o][c][a][b] */
static void naive_forward(const wcase *k, const float *x, const float *w, double *y)
{
    const int OH = out_size(k->H, k->ph), OW = out_size(k->W, k->pw);
    for (int s = 0; s < k->n; s++)
        for (int o = 0; o < k->O; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double acc = 0.0;
                    for (int c = 0; c < k->C; c++)
                        for (int a = 0; a < 3; a++)
                            for (int b = 0; b < 3; b++) {
                                int r = i - k->ph + a, q = j - k->pw + b;
                                if (r < 0 || r >= k->H || q < 0 || q >= k->W) continue;
                                acc += (double)x[((size_t)(s * k->C + c) * k->H + r) * k->W + q] *
                                       w[((size_t)(o * k->C + c) * 3 + a) * 3 + b];
                            }
                    y[((size_t)(s * k->O + o) * OH + i) * OW + j] = acc;
                }
}

/* the adjoints: dx and dw from dy */
static void naive_backward(const wcase *k, const float *x, const float *w, const float *dy, double *dx, double *dw)
{
    const int OH = out_size(k->H, k->ph), OW = out_size(k->W, k->pw);
    memset(dx, 0, sizeof(double) * k->n * k->C * k->H * k->W);
    memset(dw, 0, sizeof(double) * k->O * k->C * 9);
    for (int s = 0; s < k->n; s++)
        for (int o = 0; o < k->O; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    const double g = dy[((size_t)(s * k->O + o) * OH + i) * OW + j];
                    for (int c = 0; c < k->C; c++)
                        for (int a = 0; a < 3; a++)
                            for (int b = 0; b < 3; b++) {
                                int r = i - k->ph + a, q = j - k->pw + b;
                                if (r < 0 || r >= k->H || q < 0 || q >= k->W) continue;
                                size_t xi = ((size_t)(s * k->C + c) * k->H + r) * k->W + q;
                                size_t wi = ((size_t)(o * k->C + c) * 3 + a) * 3 + b;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                }
}

/* max |got - ref| / max |ref| */
static double normwise(const float *got, const double *ref, size_t n)
{
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]);
        if (!(e <= err)) err = e; /* NaN wins */
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return scale > 0 ? err / scale : err;
}

/* Winograd rounds each output through four transforms of sums of up to 4
 * terms and a product of depth C (or O, or the tiles): measured 1.3e-7 to
 * 3.3e-7 normwise here, at every level (a direct product: ~1e-7); a wrong
 * index or sign is off by O(1). */
#define WINO_TOL 2e-6

static void run_case(const wcase *k, int level)
{
    nb_conv_geom g = {k->C, k->H, k->W, 3, 3, 1, 1, k->ph, k->pw, 1, 1, out_size(k->H, k->ph), out_size(k->W, k->pw)};
    const int OH = g.OH, OW = g.OW, chunk = 2;
    nb_wino w;
    nb_wino_init(&w, &g, k->O, chunk, level);
    const size_t nx = (size_t)k->n * k->C * k->H * k->W, ny = (size_t)k->n * k->O * OH * OW, nw = (size_t)k->O * k->C * 9;
    float *x = malloc(nx * sizeof *x), *wt = malloc(nw * sizeof *wt), *dy = malloc(ny * sizeof *dy);
    float *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw);
    double *ry = malloc(ny * sizeof *ry), *rdx = malloc(nx * sizeof *rdx), *rdw = malloc(nw * sizeof *rdw);
    const int parts = (k->n + chunk - 1) / chunk;
    float *u = malloc(nb_wino_weights_floats(&w) * sizeof *u), *scratch = malloc(nb_wino_scratch_floats(&w) * sizeof *scratch);
    float *du = malloc((size_t)parts * nb_wino_du_floats(&w) * sizeof *du);
    nb_rng r;
    nb_rng_seed(&r, 5);
    nb_fill_uniform(x, nx, -1.0f, 1.0f, &r);
    nb_fill_uniform(wt, nw, -1.0f, 1.0f, &r);
    nb_fill_uniform(dy, ny, -1.0f, 1.0f, &r);
    naive_forward(k, x, wt, ry);
    naive_backward(k, x, wt, dy, rdx, rdw);

    nb_wino_pack(&w, wt, u, 0); /* both layouts, side by side */
    nb_wino_pack(&w, wt, u, 1);
    for (size_t i = 0; i < nx; i++) dx[i] = NAN; /* overwritten, never read */
    for (int p = 0; p < parts; p++) {
        const int s0 = p * chunk, m = k->n - s0 < chunk ? k->n - s0 : chunk;
        nb_wino_forward(&w, NULL, u, x + (size_t)s0 * k->C * k->H * k->W, m, NULL,
                        y + (size_t)s0 * k->O * OH * OW, scratch);
        nb_wino_backward(&w, NULL, u, x + (size_t)s0 * k->C * k->H * k->W, dy + (size_t)s0 * k->O * OH * OW, m,
                         dx + (size_t)s0 * k->C * k->H * k->W, 0, du + (size_t)p * nb_wino_du_floats(&w), scratch);
    }
    /* the partials summed in order, as conv.c does */
    for (int p = 1; p < parts; p++)
        for (size_t i = 0; i < nb_wino_du_floats(&w); i++) du[i] += du[(size_t)p * nb_wino_du_floats(&w) + i];
    for (size_t i = 0; i < nw; i++) dw[i] = NAN;
    nb_wino_weight_grad(&w, du, 0, (size_t)k->O * k->C, dw, 1);

    double ey = normwise(y, ry, ny), edx = normwise(dx, rdx, nx), edw = normwise(dw, rdw, nw);
    if (!(ey <= WINO_TOL && edx <= WINO_TOL && edw <= WINO_TOL))
        nb_test_fail(__FILE__, __LINE__,
                     "level %d, n %d C %d %dx%d O %d pad %d,%d: errors y %.3g dx %.3g dw %.3g", level, k->n, k->C,
                     k->H, k->W, k->O, k->ph, k->pw, ey, edx, edw);

    /* dx added: a second pass onto the first doubles it */
    nb_wino_backward(&w, NULL, u, x, dy, k->n < chunk ? k->n : chunk, dx, 1, NULL, scratch);
    const size_t first = (size_t)(k->n < chunk ? k->n : chunk) * k->C * k->H * k->W;
    for (size_t i = 0; i < first; i++) rdx[i] *= 2.0;
    double e2 = normwise(dx, rdx, first);
    if (!(e2 <= WINO_TOL))
        nb_test_fail(__FILE__, __LINE__, "level %d: dx added onto itself: error %.3g", level, e2);

    free(x), free(wt), free(dy), free(y), free(dx), free(dw), free(ry), free(rdx), free(rdw);
    free(u), free(scratch), free(du);
}

NB_TEST(test_winograd_against_direct)
{
    static const wcase cases[] = {
        {3, 16, 14, 14, 32, 1, 1},   /* the CNN's layer, tiles of several samples per panel */
        {2, 17, 9, 11, 20, 1, 1},    /* odd sizes: the last tile row and column stick out */
        {1, 19, 7, 6, 16, 0, 0},     /* unpadded (the input's gradient pads by 2) */
        {2, 16, 5, 8, 40, 2, 0},     /* wider padding one way (the input's gradient crops) */
        {1, 24, 3, 40, 18, 1, 1},    /* rows of 20 tiles: 16-float vectors, a run longer than 16 */
        {2, 16, 5, 19, 16, 1, 1},    /* rows of 10 tiles: 16-float vectors, one per run */
        {5, 16, 3, 3, 16, 1, 1},     /* many small images: runs of two tiles */
    };
    int levels = 0;
    for (int level = 0; level <= 2; level++) {
        if (!nb_sgemm_kernel_available(level)) continue;
        levels++;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], level);
    }
    CHECK(levels >= 1);
}
