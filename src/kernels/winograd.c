/*
 * winograd.c - F(2x2, 3x3) convolution (see winograd.h).
 *
 * Forward, per tile (a 2x2 block of outputs, read from a 4x4 patch d of the
 * zero-padded input) and per channel pair (o, c):
 *
 *   U = G g G^T     the 3x3 weights g taken to 4x4 (once per pass)
 *   V = B^T d B     the patch, 4x4
 *   M = sum over c of U . V     (elementwise)
 *   Y = A^T M A     2x2 outputs
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * Each of the 16 positions xi of the 4x4 is a matrix product over the
 * channels: M_xi [O, tiles] = U_xi [O, C] @ V_xi [C, tiles].
 *
 * Backward:
 * - the input's gradient is itself a 3x3 convolution, of dy by the weights
 *   flipped in both axes with input and output channels swapped (padding
 *   2 - ph, 2 - pw): the forward algorithm again (nb_wino.b);
 * - the weights' gradient is the adjoint of the forward computation:
 *     dM = A dY A^T                      (per tile and output channel)
 *     dU_xi [O, C] = dM_xi @ V_xi^T      (summed over the tiles)
 *     dg = G^T dU G                      (once, after the chunks)
 *   so it is exactly the gradient of the forward that ran.
 *
 * The transforms write each product's operands straight into the layouts
 * the GEMM's micro-kernel reads (nb_sgemm_ukernel: mr-row panels of A, nr
 * columns of B per k), so nothing is packed twice. A convolution goes nr
 * tiles at a time (a panel): its transformed patches, 16 products and
 * inverse transform stay in cache, and the transforms run along the tiles,
 * vectorised. The weight gradient sums over the chunk's tiles, DU_BLOCK at
 * a time (k runs over the tiles), so its operands are transformed from
 * channel-minor copies of x and dy, vectorised along the channels.
 *
 * Every transform is a few additions (the weights' halves are exact), and
 * every sum runs in a fixed order: same inputs, same bits, whatever the
 * threads.
 */
#include "winograd.h"
#include "simd.h"

#include <string.h>

#ifndef NB_SIMD
/* Without the GNU vector extension: no Winograd path (conv2d uses im2col),
 * so only nb_wino_applies is ever called. */
int nb_wino_applies(const nb_conv_geom *g, int O, int groups)
{
    (void)g, (void)O, (void)groups;
    return 0;
}
void nb_wino_init(nb_wino *w, const nb_conv_geom *g, int O, int chunk, int level)
{
    (void)g, (void)O, (void)chunk, (void)level;
    memset(w, 0, sizeof *w);
}
size_t nb_wino_weights_floats(const nb_wino *w) { return (void)w, 0; }
size_t nb_wino_scratch_floats(const nb_wino *w) { return (void)w, 0; }
size_t nb_wino_du_floats(const nb_wino *w) { return (void)w, 0; }
void nb_wino_pack(const nb_wino *w, const float *W, float *u, int backward) { (void)w, (void)W, (void)u, (void)backward; }
void nb_wino_forward(const nb_wino *w, nb_pool *pool, const float *u, const float *x, int n, const float *bias,
                     float *y, float *scratch)
{
    (void)w, (void)pool, (void)u, (void)x, (void)n, (void)bias, (void)y, (void)scratch;
}
void nb_wino_backward(const nb_wino *w, nb_pool *pool, const float *u, const float *x, const float *dy, int n,
                      float *dx, int dx_add, float *du, float *scratch)
{
    (void)w, (void)pool, (void)u, (void)x, (void)dy, (void)n, (void)dx, (void)dx_add, (void)du, (void)scratch;
}
void nb_wino_weight_grad(const nb_wino *w, const float *du, size_t lo, size_t hi, float *dW, int overwrite)
{
    (void)w, (void)du, (void)lo, (void)hi, (void)dW, (void)overwrite;
}
#else

#if !defined(__clang__)
/* the transforms' short vector copies are moves: not to be turned into
 * calls to memmove */
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* per-tile descriptor: its sample, and the top-left output (y, x) */
typedef struct {
    int s, y, x, pad;
} wtile;

static int round_up(int n, int m) { return (n + m - 1) / m * m; }
static size_t r16(size_t n) { return (n + 15) / 16 * 16; }
static int imax(int a, int b) { return a > b ? a : b; }

int nb_wino_applies(const nb_conv_geom *g, int O, int groups)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && groups == 1 &&
           g->C >= 16 && O >= 16;
}

static nb_wino_geom geom_of(int C, int H, int W, int ph, int pw, int O, int OH, int OW, int mr)
{
    nb_wino_geom g = {C, H, W, ph, pw, O, OH, OW, (OH + 1) / 2, (OW + 1) / 2, 0, round_up(O, mr)};
    g.T = g.TH * g.TW;
    return g;
}

void nb_wino_init(nb_wino *w, const nb_conv_geom *g, int O, int chunk, int level)
{
    nb_ukernel_info k = nb_sgemm_ukernel(level);
    w->f = geom_of(g->C, g->H, g->W, g->ph, g->pw, O, g->OH, g->OW, k.mr);
    w->b = geom_of(O, g->OH, g->OW, 2 - g->ph, 2 - g->pw, g->C, g->H, g->W, k.mr);
    w->chunk = chunk;
    w->mr = k.mr;
    w->nr = k.nr;
    w->level = k.level;
    w->fn = k.fn;
    w->Cn = round_up(g->C, k.nr);
}

size_t nb_wino_weights_floats(const nb_wino *w)
{
    return r16((size_t)16 * w->f.Om * w->f.C) + r16((size_t)16 * w->b.Om * w->b.C);
}

/* Tiles per product of the weight gradient: its operands for that many
 * tiles stay in cache, and the depth keeps the micro-kernel busy. */
enum { DU_BLOCK = 64 };

/* the zero-padded input of geometry g: [Hp][Wp] per channel, Hp = 2 TH + 2,
 * Wp = 2 TW + 2 (row 2 ty + i, column 2 tx + j: patch element (i, j) of
 * tile (ty, tx)) */
static size_t padded_plane(const nb_wino_geom *g) { return (size_t)(2 * g->TH + 2) * (2 * g->TW + 2); }
/* floats the patch gathers may read past the last plane */
enum { PAD_SLACK = 96 };

/* A task's scratch, in floats from its start. */
typedef struct {
    size_t tiles, p, xpad;    /* panel's descriptors; [16][nr + 16] lanes (or dM's [16][Od]);
                               * the chunk's padded input */
    size_t v, m;              /* a panel's V [16][C nr + 16] and M [16][Om][nr] */
    size_t xt, dyt, zero;     /* channel-minor x [n][H W][Cn], dy [n][OH OW][Od]; zeros */
    size_t dm, vt;            /* dU's operands for DU_BLOCK tiles: dM [16][Om/mr][tiles][mr],
                               * V [16][Cn/nr][tiles][nr] */
    size_t total;
} wlayout;

static wlayout layout_of(const nb_wino *w)
{
    wlayout l;
    const nb_wino_geom *f = &w->f, *b = &w->b;
    const size_t nr = (size_t)w->nr, n = (size_t)w->chunk;
    const size_t Od = (size_t)round_up(f->Om, 16);
    const size_t pf = n * f->C * padded_plane(f), pb = n * b->C * padded_plane(b);
    l.tiles = 0;
    l.p = l.tiles + r16(nr * sizeof(wtile) / sizeof(float));
    l.xpad = l.p + 16 * (nr + 16 > Od ? nr + 16 : Od);
    l.v = l.xpad + r16((pf > pb ? pf : pb) + PAD_SLACK);
    l.m = l.v + r16(16 * ((size_t)imax(f->C, b->C) * nr + 16));
    l.xt = l.m + r16(16 * (size_t)imax(f->Om, b->Om) * nr);
    l.dyt = l.xt + r16(n * f->H * f->W * (size_t)w->Cn);
    l.zero = l.dyt + r16(n * f->OH * f->OW * Od);
    l.dm = l.zero + r16(Od > (size_t)w->Cn ? Od : (size_t)w->Cn);
    l.vt = l.dm + r16(16 * (size_t)f->Om * DU_BLOCK);
    l.total = l.vt + r16(16 * (size_t)w->Cn * DU_BLOCK);
    return l;
}

size_t nb_wino_scratch_floats(const nb_wino *w) { return layout_of(w).total; }
size_t nb_wino_du_floats(const nb_wino *w) { return r16((size_t)16 * w->f.Om * w->Cn); }

/* G g G^T for one 3x3 g (rows gy apart, columns gx apart) */
static void weight_transform(const float *g, int gy, int gx, float v[16])
{
    float t[4][3];
    for (int j = 0; j < 3; j++) { /* G g: rows */
        const float g0 = g[j * gx], g1 = g[gy + j * gx], g2 = g[2 * gy + j * gx];
        t[0][j] = g0;
        t[1][j] = 0.5f * (g0 + g1 + g2);
        t[2][j] = 0.5f * (g0 - g1 + g2);
        t[3][j] = g2;
    }
    for (int i = 0; i < 4; i++) { /* (G g) G^T: columns */
        v[i * 4 + 0] = t[i][0];
        v[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        v[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        v[i * 4 + 3] = t[i][2];
    }
}

/* ---- the weights ----
 * u: U_xi as A panels, [16][f.Om/mr][C][mr] (forward), then those of the
 * flipped weights with the channels swapped, [16][b.Om/mr][O][mr] (the
 * input's gradient). Rows past O (or C) are zero. */
void nb_wino_pack(const nb_wino *w, const float *W, float *u, int backward)
{
    const int O = w->f.O, C = w->f.C, mr = w->mr;
    const size_t ub_at = r16((size_t)16 * w->f.Om * C);
    float *uf = u, *ub = u + ub_at;
    if (backward) memset(ub, 0, (nb_wino_weights_floats(w) - ub_at) * sizeof(float));
    else memset(uf, 0, ub_at * sizeof(float));
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++) {
            const float *g = W + ((size_t)o * C + c) * 9;
            float v[16];
            if (!backward) {
                weight_transform(g, 3, 1, v);
                for (int xi = 0; xi < 16; xi++)
                    uf[(size_t)xi * w->f.Om * C + (size_t)(o / mr) * mr * C + (size_t)c * mr + o % mr] = v[xi];
                continue;
            }
            weight_transform(g + 8, -3, -1, v); /* g flipped: starts at its last element */
            for (int xi = 0; xi < 16; xi++)
                ub[(size_t)xi * w->b.Om * O + (size_t)(c / mr) * mr * O + (size_t)o * mr + c % mr] = v[xi];
        }
}

void nb_wino_weight_grad(const nb_wino *w, const float *du, size_t lo, size_t hi, float *dW, int overwrite)
{
    const int C = w->f.C;
    const size_t xs = (size_t)w->f.Om * w->Cn;
    for (size_t i = lo; i < hi; i++) {
        const size_t o = i / (size_t)C, c = i % (size_t)C, at = o * (size_t)w->Cn + c;
        float s[16], t[3][4], *dg = dW + i * 9;
        for (int xi = 0; xi < 16; xi++) s[xi] = du[(size_t)xi * xs + at];
        /* G^T dU: rows */
        for (int j = 0; j < 4; j++) {
            t[0][j] = s[j] + 0.5f * (s[4 + j] + s[8 + j]);
            t[1][j] = 0.5f * (s[4 + j] - s[8 + j]);
            t[2][j] = 0.5f * (s[4 + j] + s[8 + j]) + s[12 + j];
        }
        /* (G^T dU) G: columns */
        for (int r = 0; r < 3; r++) {
            float g0 = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
            float g1 = 0.5f * (t[r][1] - t[r][2]);
            float g2 = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
            dg[r * 3 + 0] = overwrite ? g0 : dg[r * 3 + 0] + g0;
            dg[r * 3 + 1] = overwrite ? g1 : dg[r * 3 + 1] + g1;
            dg[r * 3 + 2] = overwrite ? g2 : dg[r * 3 + 2] + g2;
        }
    }
}

/* The tiles q0 .. q0 + nt - 1 of a chunk, tile q = (sample, row, column). */
NB_INLINE void panel_tiles(const nb_wino_geom *g, int q0, int nt, wtile *tl)
{
    for (int t = 0; t < nt; t++) {
        int q = q0 + t, r = q % g->T;
        tl[t].s = q / g->T;
        tl[t].y = 2 * (r / g->TW);
        tl[t].x = 2 * (r % g->TW);
    }
}

/* The end of the run of tiles from t0 in the same sample and tile row
 * (consecutive columns). */
NB_INLINE int run_end(const wtile *tl, int t0, int nt)
{
    int t1 = t0 + 1;
    while (t1 < nt && tl[t1].s == tl[t0].s && tl[t1].y == tl[t0].y) t1++;
    return t1;
}

/* ---- a convolution, nr tiles at a time ---- */

/* x [n][C][H][W] -> xp: every channel zero-padded (padded_plane), each
 * padded row stored as its even columns then its odd ones (Wh = TW + 1 of
 * each), then PAD_SLACK zeros. Patch element (i, j) of the tiles tx, tx + 1,
 * ... of a tile row then lies in consecutive floats: row 2 ty + i, at
 * (j & 1) Wh + (j >> 1) + tx. */
NB_INLINE void pad_input(const nb_wino_geom *g, const float *x, int n, float *xp)
{
    const int Hp = 2 * g->TH + 2, Wh = g->TW + 1, Wp = 2 * Wh;
    /* half h of a padded row: k in [lo[h], hi[h]) reads input column 2 k + h - pw */
    int lo[2], hi[2];
    for (int h = 0; h < 2; h++) {
        const int off = h - g->pw;
        lo[h] = off >= 0 ? 0 : (1 - off) / 2;
        hi[h] = g->W - off <= 0 ? 0 : (g->W - 1 - off) / 2 + 1;
        if (hi[h] > Wh) hi[h] = Wh;
        if (lo[h] > hi[h]) lo[h] = hi[h];
    }
    for (size_t plane = 0; plane < (size_t)n * g->C; plane++) {
        const float *src = x + plane * g->H * g->W;
        float *dst = xp + plane * Hp * Wp;
        for (int r = 0; r < Hp; r++, dst += Wp) {
            const int ir = r - g->ph;
            if (ir < 0 || ir >= g->H) {
                for (int k = 0; k < Wp; k++) dst[k] = 0.0f;
                continue;
            }
            for (int h = 0; h < 2; h++) {
                const float *row = src + (size_t)ir * g->W + h - g->pw;
                float *d = dst + h * Wh;
                for (int k = 0; k < lo[h]; k++) d[k] = 0.0f;
                for (int k = lo[h]; k < hi[h]; k++) d[k] = row[2 * k];
                for (int k = hi[h]; k < Wh; k++) d[k] = 0.0f;
            }
        }
    }
    for (int k = 0; k < PAD_SLACK; k++) xp[(size_t)n * g->C * Hp * Wp + k] = 0.0f;
}

/* V = B^T d B for the tiles of one run, VL lanes from lane k: rowp[i] is
 * padded row i of the patches at the run's first tile (even columns; the
 * odd ones Wh further), out[xi * xs] lane 0 the run's first tile. Lanes
 * past the run are garbage, written into what the next run, the next
 * channel or the slack after each xi block overwrites or ignores. */
#define DEFINE_IN_RUN(NAME, VT, VTU)                                                              \
    NB_INLINE void NAME(const float *const rowp[4], int Wh, int k, float *restrict out, size_t xs) \
    {                                                                                             \
        VT d[16], e[16];                                                                          \
        for (int i = 0; i < 4; i++) {                                                             \
            d[4 * i + 0] = *(const VTU *)(rowp[i] + k);                                           \
            d[4 * i + 1] = *(const VTU *)(rowp[i] + Wh + k);                                      \
            d[4 * i + 2] = *(const VTU *)(rowp[i] + k + 1);                                       \
            d[4 * i + 3] = *(const VTU *)(rowp[i] + Wh + k + 1);                                  \
        }                                                                                         \
        for (int j = 0; j < 4; j++) { /* B^T d */                                                 \
            e[0 + j] = d[0 + j] - d[8 + j];                                                       \
            e[4 + j] = d[4 + j] + d[8 + j];                                                       \
            e[8 + j] = d[8 + j] - d[4 + j];                                                       \
            e[12 + j] = d[4 + j] - d[12 + j];                                                     \
        }                                                                                         \
        for (int i = 0; i < 4; i++) { /* (B^T d) B */                                             \
            const VT *r = e + 4 * i;                                                              \
            *(VTU *)(out + (size_t)(4 * i + 0) * xs + k) = r[0] - r[2];                           \
            *(VTU *)(out + (size_t)(4 * i + 1) * xs + k) = r[1] + r[2];                           \
            *(VTU *)(out + (size_t)(4 * i + 2) * xs + k) = r[2] - r[1];                           \
            *(VTU *)(out + (size_t)(4 * i + 3) * xs + k) = r[1] - r[3];                           \
        }                                                                                         \
    }
DEFINE_IN_RUN(in_run16, wv, wv_u)
DEFINE_IN_RUN(in_run8, wv8, wv8_u)

/* V = B^T d B for input channel c under the panel's tiles: out[xi * xs + t]
 * (lanes past nt zero), a run of tiles in one tile row at a time, along the
 * tiles in vectors of 8 floats when rows have at most 8 tiles, else 16. */
NB_INLINE void in_transform(const nb_wino_geom *g, int nr, const wtile *tl, int nt, const float *xp, int c,
                              float *restrict out, size_t xs)
{
    const int Hp = 2 * g->TH + 2, Wh = g->TW + 1, Wp = 2 * Wh;
    for (int t0 = 0, t1; t0 < nt; t0 = t1) {
        t1 = run_end(tl, t0, nt);
        const int cnt = t1 - t0;
        const float *base = xp + (((size_t)tl[t0].s * g->C + c) * Hp + tl[t0].y) * Wp + tl[t0].x / 2;
        const float *rowp[4] = {base, base + Wp, base + 2 * Wp, base + 3 * Wp};
        if (g->TW <= 8) in_run8(rowp, Wh, 0, out + t0, xs);
        else
            for (int k = 0; k < cnt; k += 16) in_run16(rowp, Wh, k, out + t0, xs);
    }
    for (int e = 0; e < 16; e++)
        for (int t = nt; t < nr; t++) out[(size_t)e * xs + t] = 0.0f;
}

/* Y = A^T M A (+ b) for output channel o, from m[xi * xs + t], into y (or
 * added to it); the 2x2 blocks go out a run of tiles at a time, interleaved
 * row by row. */
NB_INLINE void out_transform(const nb_wino_geom *g, int nr, const wtile *tl, int nt, const float *m, size_t xs,
                               float b, int o, int add, float *restrict p, float *restrict y)
{
    const int OH = g->OH, OW = g->OW;
    for (int t = 0; t < nr; t += 16) {
        wv v[16], a[8];
        for (int k = 0; k < 16; k++) v[k] = wv_load(m + (size_t)k * xs + t);
        for (int j = 0; j < 4; j++) { /* A^T M */
            a[j] = v[j] + v[4 + j] + v[8 + j];
            a[4 + j] = v[4 + j] - v[8 + j] - v[12 + j];
        }
        for (int i = 0; i < 2; i++) { /* (A^T M) A */
            wv_store(p + (2 * i + 0) * nr + t, a[4 * i] + a[4 * i + 1] + a[4 * i + 2] + b);
            wv_store(p + (2 * i + 1) * nr + t, a[4 * i + 1] - a[4 * i + 2] - a[4 * i + 3] + b);
        }
    }
    for (int t0 = 0, t1; t0 < nt; t0 = t1) {
        t1 = run_end(tl, t0, nt);
        /* the last tile of a run may stick out past the right edge */
        const int cnt = t1 - t0, full = tl[t1 - 1].x + 1 < OW ? cnt : cnt - 1;
        for (int i = 0; i < 2 && tl[t0].y + i < OH; i++) {
            float *yr = y + ((size_t)tl[t0].s * g->O + o) * OH * OW + (size_t)(tl[t0].y + i) * OW + tl[t0].x;
            const float *p0 = p + 2 * i * nr + t0, *p1 = p0 + nr;
            if (add)
                for (int k = 0; k < full; k++) {
                    yr[2 * k] += p0[k];
                    yr[2 * k + 1] += p1[k];
                }
            else
                for (int k = 0; k < full; k++) {
                    yr[2 * k] = p0[k];
                    yr[2 * k + 1] = p1[k];
                }
            if (full < cnt) yr[2 * full] = add ? yr[2 * full] + p0[full] : p0[full];
        }
    }
}

/* ---- the 16 products ----
 * Task xi of a product: all of its panels, on one thread. */
typedef struct {
    const nb_wino *w;
    const nb_wino_geom *g;
    int kind;                 /* 0: M = U V (a panel), 1: dU (+)= dM V^T (a block of tiles) */
    const float *a, *b;
    float *c;
    int nt;                   /* kind 1: the block's tiles (the depth) */
    int store;                /* kind 1: the first block, overwriting dU */
} wprod;

static void product_task(void *ctx, int xi)
{
    const wprod *j = ctx;
    const nb_wino *w = j->w;
    const int mr = w->mr, nr = w->nr;
    if (j->kind == 0) { /* [Om, nr] = U_xi [Om, C] @ V_xi [C, nr] */
        const int C = j->g->C, Om = j->g->Om;
        const float *a = j->a + (size_t)xi * Om * C, *b = j->b + (size_t)xi * ((size_t)C * nr + 16);
        float *c = j->c + (size_t)xi * Om * nr;
        for (int i = 0; i < Om; i += mr) w->fn(C, a + (size_t)i * C, b, c + (size_t)i * nr, nr, mr, nr, 1);
    } else { /* [Om, Cn] = dM_xi [Om, NT] @ V_xi [NT, Cn] */
        const int Om = w->f.Om, Cn = w->Cn;
        const size_t NT = (size_t)j->nt;
        const float *a = j->a + (size_t)xi * Om * NT, *b = j->b + (size_t)xi * Cn * NT;
        float *c = j->c + (size_t)xi * Om * Cn;
        for (int jc = 0; jc < Cn; jc += nr)
            for (int i = 0; i < Om; i += mr)
                w->fn(j->nt, a + (size_t)i * NT, b + (size_t)jc * NT, c + (size_t)i * Cn + jc, Cn, mr, nr, j->store);
    }
}

/* y [n, O, OH, OW] (+)= conv(x [n, C, H, W]) in geometry g, with u's A panels */
NB_INLINE void conv_pass(const nb_wino *w, const nb_wino_geom *g, nb_pool *pool, const float *u, const float *x, int n,
                           const float *bias, float *y, int add, float *scratch)
{
    const wlayout l = layout_of(w);
    const int nr = w->nr, NT = n * g->T, C = g->C;
    wtile *tl = (wtile *)(scratch + l.tiles);
    float *p = scratch + l.p, *xp = scratch + l.xpad, *v = scratch + l.v, *m = scratch + l.m;
    pad_input(g, x, n, xp);
    for (int q0 = 0; q0 < NT; q0 += nr) {
        const int nt = NT - q0 < nr ? NT - q0 : nr;
        panel_tiles(g, q0, nt, tl);
        /* V [16][C][nr], each xi block followed by 16 floats of slack */
        for (int c = 0; c < C; c++) in_transform(g, nr, tl, nt, xp, c, v + (size_t)c * nr, (size_t)C * nr + 16);
        wprod j = {w, g, 0, u, v, m, 0, 1};
        nb_pool_run(pool, 16, product_task, &j);
        for (int o = 0; o < g->O; o++)
            out_transform(g, nr, tl, nt, m + (size_t)o * nr, (size_t)g->Om * nr, bias ? bias[o] : 0.0f, o, add, p, y);
    }
}

/* ---- the weights' gradient ---- */

/* src [n][C][P] -> dst [n][P][ld], channels C .. ld - 1 zero: 16 x 16
 * blocks transposed in registers, the edges one by one */
NB_INLINE void channel_minor(const float *src, int n, int C, int P, int ld, float *dst)
{
    for (int s = 0; s < n; s++) {
        const float *a = src + (size_t)s * C * P;
        float *d = dst + (size_t)s * P * ld;
        int c0 = 0;
        for (; c0 + 16 <= C; c0 += 16) {
            int q0 = 0;
            for (; q0 + 16 <= P; q0 += 16) {
                wv r[16];
                for (int i = 0; i < 16; i++) r[i] = wv_load(a + (size_t)(c0 + i) * P + q0);
                wv_transpose16(r);
                for (int i = 0; i < 16; i++) wv_store(d + (size_t)(q0 + i) * ld + c0, r[i]);
            }
            for (; q0 < P; q0++)
                for (int i = 0; i < 16; i++) d[(size_t)q0 * ld + c0 + i] = a[(size_t)(c0 + i) * P + q0];
        }
        for (int q = 0; q < P; q++) {
            for (int c = c0; c < C; c++) d[(size_t)q * ld + c] = a[(size_t)c * P + q];
            for (int c = C; c < ld; c++) d[(size_t)q * ld + c] = 0.0f;
        }
    }
}

/* dM (as A panels, [16][Om/mr][NT][mr]) and V (as B panels,
 * [16][Cn/nr][NT][nr]) for the chunk's tiles q0 .. q0 + NT - 1, each tile's 16 values
 * computed along the channels, 16 at a time, from the channel-minor copies
 * (dy's rows Od = O rounded up to 16 long; tmp: [16][Od]). */
NB_INLINE void du_operands(const nb_wino *w, int q0, int NT, int Od, const float *xt, const float *dyt,
                             const float *zero, float *restrict tmp, float *restrict dm, float *restrict vt)
{
    const nb_wino_geom *f = &w->f;
    const int mr = w->mr, nr = w->nr, Om = f->Om, Cn = w->Cn, H = f->H, W = f->W, OH = f->OH, OW = f->OW;
    const size_t dm_xs = (size_t)Om * NT, vt_xs = (size_t)Cn * NT;
    for (int q = 0; q < NT; q++) {
        const int s = (q0 + q) / f->T, r = (q0 + q) % f->T, y = 2 * (r / f->TW), x = 2 * (r % f->TW);
        /* dM = A dY A^T from the 2x2 block of dy (zeros past the edges) */
        const float *d00 = dyt + (((size_t)s * OH + y) * OW + x) * Od;
        const int right = x + 1 < OW, below = y + 1 < OH;
        const float *d01 = right ? d00 + Od : zero, *d10 = below ? d00 + (size_t)OW * Od : zero;
        const float *d11 = right && below ? d00 + (size_t)(OW + 1) * Od : zero;
        for (int o = 0; o < Od; o += 16) {
            const wv a = wv_load(d00 + o), b = wv_load(d01 + o), c = wv_load(d10 + o), d = wv_load(d11 + o);
            const wv rr[4][2] = {{a, b}, {a + c, b + d}, {a - c, b - d}, {-c, -d}}; /* A dY */
            wv dmv[16];
            for (int i = 0; i < 4; i++) { /* (A dY) A^T */
                dmv[4 * i + 0] = rr[i][0];
                dmv[4 * i + 1] = rr[i][0] + rr[i][1];
                dmv[4 * i + 2] = rr[i][0] - rr[i][1];
                dmv[4 * i + 3] = -rr[i][1];
            }
            if (mr == 8) { /* two panels' rows straight from the vector's halves */
                for (int xi = 0; xi < 16; xi++) {
                    float *dst = dm + xi * dm_xs + (size_t)q * 8;
                    if (o < Om) *(wv8_u *)(dst + (size_t)o * NT) = WV_LO8(dmv[xi]);
                    if (o + 8 < Om) *(wv8_u *)(dst + (size_t)(o + 8) * NT) = WV_HI8(dmv[xi]);
                }
            } else {
                for (int xi = 0; xi < 16; xi++) wv_store(tmp + xi * Od + o, dmv[xi]);
            }
        }
        if (mr != 8)
            for (int xi = 0; xi < 16; xi++)
                for (int o0 = 0; o0 < Om; o0 += mr) {
                    float *dst = dm + xi * dm_xs + (size_t)o0 * NT + (size_t)q * mr;
                    const float *src = tmp + xi * Od + o0;
                    for (int k = 0; k < mr; k++) dst[k] = src[k];
                }
        /* V = B^T d B from the 4x4 patch of x */
        const float *dp[16];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const int rr = y - f->ph + i, cc = x - f->pw + j;
                dp[i * 4 + j] = rr >= 0 && rr < H && cc >= 0 && cc < W ? xt + (((size_t)s * H + rr) * W + cc) * Cn : zero;
            }
        for (int c = 0; c < Cn; c += 16) { /* Cn: a multiple of nr, so of 16 */
            wv d[16], e[16];
            for (int k = 0; k < 16; k++) d[k] = wv_load(dp[k] + c);
            for (int j = 0; j < 4; j++) { /* B^T d */
                e[0 + j] = d[0 + j] - d[8 + j];
                e[4 + j] = d[4 + j] + d[8 + j];
                e[8 + j] = d[8 + j] - d[4 + j];
                e[12 + j] = d[4 + j] - d[12 + j];
            }
            float *dst = vt + (size_t)(c / nr) * nr * NT + (size_t)q * nr + c % nr;
            for (int i = 0; i < 4; i++) { /* (B^T d) B */
                const wv *rw = e + 4 * i;
                wv_store(dst + (4 * i + 0) * vt_xs, rw[0] - rw[2]);
                wv_store(dst + (4 * i + 1) * vt_xs, rw[1] + rw[2]);
                wv_store(dst + (4 * i + 2) * vt_xs, rw[2] - rw[1]);
                wv_store(dst + (4 * i + 3) * vt_xs, rw[1] - rw[3]);
            }
        }
    }
}

NB_INLINE void backward_body(const nb_wino *w, nb_pool *pool, const float *u, const float *x, const float *dy, int n,
                               float *dx, int dx_add, float *du, float *scratch)
{
    if (dx) conv_pass(w, &w->b, pool, u + r16((size_t)16 * w->f.Om * w->f.C), dy, n, NULL, dx, dx_add, scratch);
    if (!du) return;
    const wlayout l = layout_of(w);
    const nb_wino_geom *f = &w->f;
    const int NT = n * f->T;
    const int Od = round_up(f->Om, 16);
    float *xt = scratch + l.xt, *dyt = scratch + l.dyt, *zero = scratch + l.zero;
    for (int i = 0; i < imax(Od, w->Cn); i++) zero[i] = 0.0f;
    channel_minor(x, n, f->C, f->H * f->W, w->Cn, xt);
    channel_minor(dy, n, f->O, f->OH * f->OW, Od, dyt);
    for (int q0 = 0; q0 < NT; q0 += DU_BLOCK) {
        const int nb = NT - q0 < DU_BLOCK ? NT - q0 : DU_BLOCK;
        du_operands(w, q0, nb, Od, xt, dyt, zero, scratch + l.p, scratch + l.dm, scratch + l.vt);
        wprod j = {w, f, 1, scratch + l.dm, scratch + l.vt, du, nb, q0 == 0};
        nb_pool_run(pool, 16, product_task, &j);
    }
}

/* Compiled twice where the compiler can: for AVX-512 (the transforms' loops
 * in 16-float vectors) and for the baseline. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("avx512f"))) static void forward_avx512(const nb_wino *w, nb_pool *pool, const float *u,
                                                              const float *x, int n, const float *bias, float *y,
                                                              float *scratch)
{
    conv_pass(w, &w->f, pool, u, x, n, bias, y, 0, scratch);
}
__attribute__((target("avx512f"))) static void backward_avx512(const nb_wino *w, nb_pool *pool, const float *u,
                                                               const float *x, const float *dy, int n, float *dx,
                                                               int dx_add, float *du, float *scratch)
{
    backward_body(w, pool, u, x, dy, n, dx, dx_add, du, scratch);
}
#define WINO_HAVE_AVX512 1
#else
#define WINO_HAVE_AVX512 0
#endif

void nb_wino_forward(const nb_wino *w, nb_pool *pool, const float *u, const float *x, int n, const float *bias,
                     float *y, float *scratch)
{
#if WINO_HAVE_AVX512
    if (w->level == 2) {
        forward_avx512(w, pool, u, x, n, bias, y, scratch);
        return;
    }
#endif
    conv_pass(w, &w->f, pool, u, x, n, bias, y, 0, scratch);
}

void nb_wino_backward(const nb_wino *w, nb_pool *pool, const float *u, const float *x, const float *dy, int n,
                      float *dx, int dx_add, float *du, float *scratch)
{
#if WINO_HAVE_AVX512
    if (w->level == 2) {
        backward_avx512(w, pool, u, x, dy, n, dx, dx_add, du, scratch);
        return;
    }
#endif
    backward_body(w, pool, u, x, dy, n, dx, dx_add, du, scratch);
}

#endif /* NB_SIMD */
