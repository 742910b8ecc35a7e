/*
 * test_pool.c - max_pool2d and avg_pool2d: gradients by finite differences,
 * forward values against direct definitions, PyTorch's conventions (padding
 * never wins a max, ties go to the first element, the average divides by the
 * window including its padding), errors and batch-sized inputs.
 */
#include "test.h"
#include "../src/core/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int N, C, H, W, kh, kw, sh, sw, ph, pw;   /* stride 0: the kernel size */
} pool_case;

static void out_size(const pool_case *c, int *oh, int *ow)
{
    int sh = c->sh ? c->sh : c->kh, sw = c->sw ? c->sw : c->kw;
    *oh = (c->H + 2 * c->ph - c->kh) / sh + 1;
    *ow = (c->W + 2 * c->pw - c->kw) / sw + 1;
}

/* The definitions, tap by tap: max over the taps inside the image; average
 * = sum over the taps inside the image / taps inside the padded image. */
static void naive_pool(const pool_case *c, int is_max, const float *x, float *y)
{
    int OH, OW, sh = c->sh ? c->sh : c->kh, sw = c->sw ? c->sw : c->kw;
    out_size(c, &OH, &OW);
    for (int p = 0; p < c->N * c->C; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double s = 0.0, m = -INFINITY;
                int padded = 0;
                for (int i = 0; i < c->kh; i++)
                    for (int j = 0; j < c->kw; j++) {
                        int ih = oh * sh - c->ph + i, iw = ow * sw - c->pw + j;
                        if (ih >= -c->ph && ih < c->H + c->ph && iw >= -c->pw && iw < c->W + c->pw)
                            padded++;
                        if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                        double v = x[(p * c->H + ih) * c->W + iw];
                        s += v;
                        if (v > m) m = v;
                    }
                y[(p * OH + oh) * OW + ow] = (float)(is_max ? m : s / padded);
            }
}

/* Distinct values spaced 0.05 apart, shuffled: no two elements of a window
 * come within the gradient check's step of each other. */
static void fill_distinct(float *v, size_t n, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) v[i] = -0.025f * (float)n + 0.05f * (float)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)nb_rng_below(&r, i + 1);
        float t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static nb_node *build(nb_graph *g, const pool_case *c, int is_max, nb_node **px)
{
    nb_node *x = nb_test_param(g, "x", 4, (int64_t[]){c->N, c->C, c->H, c->W}, -1.0f, 1.0f);
    if (x && is_max) fill_distinct(nb_node_data(x), nb_node_numel(x), 99);
    if (px) *px = x;
    return is_max ? nb_max_pool2d(g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw)
                  : nb_avg_pool2d(g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
}

static void grad_case(const pool_case *c, int is_max)
{
    nb_graph *g = nb_graph_create();
    CHECK_GRAD(g, build(g, c, is_max, NULL));
    nb_graph_free(g);
}

static void forward_case(const pool_case *c, int is_max, float lo, float hi)
{
    nb_graph *g = nb_graph_create();
    nb_node *x;
    nb_node *y = build(g, c, is_max, &x);
    if (x) nb_fill_uniform(nb_node_data(x), nb_node_numel(x), lo, hi, &(nb_rng){{1, 2, 3, 4}});
    nb_plan *p = y ? nb_plan_create(g, NULL, 1, 0) : NULL;
    CHECK_PTR(p);
    if (p) {
        CHECK_OK(nb_plan_forward(p));
        int OH, OW;
        out_size(c, &OH, &OW);
        size_t count = 0, want = (size_t)c->N * c->C * OH * OW;
        const float *got = nb_plan_data(p, y, &count);
        CHECK(count == want);
        int64_t s[NB_MAX_DIMS];
        CHECK(nb_plan_shape(p, y, s) == 4 && s[0] == c->N && s[1] == c->C && s[2] == OH &&
              s[3] == OW);
        float *ref = calloc(want, sizeof *ref);
        naive_pool(c, is_max, nb_node_data(x), ref);
        int bad = 0;
        for (size_t i = 0; got && count == want && i < want; i++)
            if (!(fabsf(got[i] - ref[i]) <= 1e-5f) && bad++ < 3)
                CHECK_NEAR(got[i], ref[i], 1e-5);
        CHECK(bad == 0);
        free(ref);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- gradients ---- */

NB_TEST(test_pool_max_grad)
{
    /* stride 0 = kernel; the floor leaves the last row and column out */
    grad_case(&(pool_case){2, 2, 5, 5, 2, 2, 0, 0, 0, 0}, 1);
}

NB_TEST(test_pool_max_grad_overlap_pad)
{
    /* overlapping windows: one element can win several of them */
    grad_case(&(pool_case){1, 2, 7, 6, 3, 3, 2, 2, 1, 1}, 1);
    grad_case(&(pool_case){1, 1, 6, 6, 3, 3, 1, 1, 1, 1}, 1);
}

NB_TEST(test_pool_max_grad_rect)
{
    grad_case(&(pool_case){2, 1, 5, 7, 2, 3, 1, 2, 1, 1}, 1);
}

NB_TEST(test_pool_avg_grad)
{
    grad_case(&(pool_case){2, 2, 5, 5, 2, 2, 0, 0, 0, 0}, 0);
}

NB_TEST(test_pool_avg_grad_pad)
{
    grad_case(&(pool_case){1, 2, 6, 5, 3, 3, 2, 2, 1, 1}, 0);
}

NB_TEST(test_pool_avg_grad_rect)
{
    grad_case(&(pool_case){2, 1, 5, 7, 3, 2, 2, 1, 1, 1}, 0);
}

/* Both pools read x: their gradients add up. */
NB_TEST(test_pool_grad_shared_input)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 4, (int64_t[]){1, 2, 6, 6}, -1.0f, 1.0f);
    if (x) fill_distinct(nb_node_data(x), nb_node_numel(x), 5);
    nb_node *y = nb_add(g, nb_max_pool2d(g, x, 2, 2, 0, 0, 0, 0),
                        nb_avg_pool2d(g, x, 3, 3, 2, 2, 1, 1));
    CHECK_GRAD(g, y);
    nb_graph_free(g);
}

/* ---- forward values and conventions ---- */

NB_TEST(test_pool_forward_naive)
{
    const pool_case cases[] = {
        {2, 2, 5, 5, 2, 2, 0, 0, 0, 0},
        {1, 3, 7, 6, 3, 3, 2, 2, 1, 1},
        {2, 1, 5, 7, 2, 3, 1, 2, 1, 1},
        {1, 2, 4, 4, 4, 4, 1, 1, 2, 2},
        {1, 1, 6, 6, 1, 1, 2, 3, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        forward_case(&cases[i], 1, -1.0f, 1.0f);
        forward_case(&cases[i], 0, -1.0f, 1.0f);
        /* all negative: a padded position read as 0 would win the max */
        forward_case(&cases[i], 1, -2.0f, -1.0f);
    }
}

/* Runs forward then backward from y with a seed of ones; returns x's
 * gradient. The plan's buffers start as NaN (nb_plan_poison): a gradient
 * left unwritten shows. */
static const float *pool_ones_backward(nb_graph *g, nb_node *x, nb_node *y, nb_plan **pp)
{
    nb_plan *p = y ? nb_plan_create(g, y, 1, NB_PLAN_TRAIN) : NULL;
    *pp = p;
    CHECK_PTR(p);
    if (!p) return NULL;
    nb_plan_poison(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_backward(p, NULL));
    return nb_node_grad(x);
}

/* Ties go to the first element in scan order, as in PyTorch. */
NB_TEST(test_pool_max_ties)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 4, (int64_t[]){1, 1, 4, 4});
    if (x)
        for (int i = 0; i < 16; i++) nb_node_data(x)[i] = 0.5f;
    nb_node *y = nb_max_pool2d(g, x, 2, 2, 0, 0, 0, 0);
    nb_plan *p;
    const float *dx = pool_ones_backward(g, x, y, &p);
    if (dx) {
        const float want[16] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
        for (int i = 0; i < 16; i++) CHECK_NEAR(dx[i], want[i], 0);
        const float *out = nb_plan_data(p, y, NULL);
        for (int i = 0; out && i < 4; i++) CHECK_NEAR(out[i], 0.5, 0);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Hand-computed, independent of naive_pool: all ones, kernel 3, stride 2,
 * padding 1 on 4x4. Windows cover rows -1..1 and 1..3: the corner window
 * holds 4 real ones and 5 padded zeros, and PyTorch divides by 9, not 4. */
NB_TEST(test_pool_avg_count_include_pad)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 4, (int64_t[]){1, 1, 4, 4});
    if (x)
        for (int i = 0; i < 16; i++) nb_node_data(x)[i] = 1.0f;
    nb_node *y = nb_avg_pool2d(g, x, 3, 3, 2, 2, 1, 1);
    nb_plan *p;
    const float *dx = pool_ones_backward(g, x, y, &p);
    const float *out = p ? nb_plan_data(p, y, NULL) : NULL;
    if (out && dx) {
        const float want[4] = {4.0f / 9, 6.0f / 9, 6.0f / 9, 1.0f};
        for (int i = 0; i < 4; i++) CHECK_NEAR(out[i], want[i], 1e-6);
        /* each real input gets 1/9 from every window that covers it */
        const float cover[16] = {1, 2, 1, 1, 2, 4, 2, 2, 1, 2, 1, 1, 1, 2, 1, 1};
        for (int i = 0; i < 16; i++) CHECK_NEAR(dx[i], cover[i] / 9.0f, 1e-6);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* Max with padding on negative inputs: the max is a real input, and so is
 * where its gradient goes. */
NB_TEST(test_pool_max_pad_never_wins)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 4, (int64_t[]){1, 1, 2, 2});
    if (x) {
        const float v[4] = {-4, -3, -2, -1};
        memcpy(nb_node_data(x), v, sizeof v);
    }
    /* kernel 2, stride 1, padding 1: 3x3 windows, four of them see one element */
    nb_node *y = nb_max_pool2d(g, x, 2, 2, 1, 1, 1, 1);
    nb_plan *p;
    const float *dx = pool_ones_backward(g, x, y, &p);
    const float *out = p ? nb_plan_data(p, y, NULL) : NULL;
    if (out && dx) {
        const float want[9] = {-4, -3, -3, -2, -1, -1, -2, -1, -1};
        for (int i = 0; i < 9; i++) CHECK_NEAR(out[i], want[i], 0);
        const float dwant[4] = {1, 2, 2, 4};
        for (int i = 0; i < 4; i++) CHECK_NEAR(dx[i], dwant[i], 0);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- errors ---- */

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

NB_TEST(test_pool_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 4, (int64_t[]){1, 1, 6, 6});
    /* padding above half the kernel, as PyTorch rejects it */
    CHECK(nb_max_pool2d(g, x, 3, 3, 1, 1, 2, 1) == NULL);
    CHECK(has(nb_last_error(), "max_pool2d") && has(nb_last_error(), "padding 2x1") &&
          has(nb_last_error(), "3x3"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    CHECK(nb_avg_pool2d(g, x, 2, 4, 0, 0, 1, 3) == NULL);
    CHECK(has(nb_last_error(), "avg_pool2d") && has(nb_last_error(), "padding 1x3"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 1, 6, 6});
    CHECK_PTR(nb_max_pool2d(g, x, 3, 3, 1, 1, 1, 1));   /* exactly half (floor) is fine */
    CHECK_PTR(nb_avg_pool2d(g, x, 2, 2, 0, 0, 1, 1));
    CHECK(nb_max_pool2d(g, x, 0, 2, 0, 0, 0, 0) == NULL);   /* kernel 0 */
    CHECK(has(nb_last_error(), "max_pool2d") && has(nb_last_error(), "kernel"));
    CHECK(nb_avg_pool2d(g, x, 2, 2, -1, 1, 0, 0) == NULL);  /* negative stride */
    CHECK(has(nb_last_error(), "avg_pool2d") && has(nb_last_error(), "stride"));
    CHECK(nb_max_pool2d(g, x, 2, 2, 1, 1, -1, 0) == NULL);  /* negative padding */
    CHECK(has(nb_last_error(), "max_pool2d"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 2, 2, 3});
    /* output smaller than 1 */
    CHECK(nb_max_pool2d(g, x, 3, 3, 0, 0, 0, 0) == NULL);
    CHECK(has(nb_last_error(), "max_pool2d") && has(nb_last_error(), "[1,2,2,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);
    /* errors are sticky: a fresh graph for the next one */
    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 2, 2, 3});
    CHECK(nb_avg_pool2d(g, x, 1, 4, 0, 0, 0, 0) == NULL);
    CHECK(has(nb_last_error(), "avg_pool2d") && has(nb_last_error(), "[1,2,2,3]"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 3, (int64_t[]){2, 6, 6});
    CHECK(nb_avg_pool2d(g, x, 2, 2, 0, 0, 0, 0) == NULL);   /* not 4-D */
    CHECK(has(nb_last_error(), "avg_pool2d") && has(nb_last_error(), "[2,6,6]"));
    CHECK(nb_max_pool2d(g, NULL, 2, 2, 0, 0, 0, 0) == NULL);
    CHECK(has(nb_last_error(), "[2,6,6]"));                  /* NULL keeps the message */
    CHECK(nb_max_pool2d(NULL, x, 2, 2, 0, 0, 0, 0) == NULL);
    nb_graph_free(g);
}

/* ---- batch-sized inputs ---- */

NB_TEST(test_pool_batch)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 2, 5, 5});
    nb_node *m = nb_max_pool2d(g, x, 2, 2, 0, 0, 0, 0);
    nb_node *a = nb_avg_pool2d(g, x, 3, 3, 2, 2, 1, 1);
    CHECK_PTR(m);
    CHECK_PTR(a);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(m, s) == 4 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 2 && s[3] == 2);
    nb_plan *p = (m && a) ? nb_plan_create(g, NULL, 3, 0) : NULL;
    CHECK_PTR(p);
    if (p) {
        CHECK(nb_plan_shape(p, m, s) == 4 && s[0] == 3 && s[1] == 2 && s[2] == 2 && s[3] == 2);
        CHECK(nb_plan_shape(p, a, s) == 4 && s[0] == 3 && s[1] == 2 && s[2] == 3 && s[3] == 3);
        float xv[3 * 2 * 25];
        fill_distinct(xv, 3 * 2 * 25, 17);
        CHECK_OK(nb_plan_set_input(p, x, xv, 3 * 2 * 25));
        CHECK_OK(nb_plan_forward(p));
        pool_case cm = {3, 2, 5, 5, 2, 2, 0, 0, 0, 0}, ca = {3, 2, 5, 5, 3, 3, 2, 2, 1, 1};
        float ref[3 * 2 * 9];
        size_t count = 0;
        const float *got = nb_plan_data(p, m, &count);
        naive_pool(&cm, 1, xv, ref);
        CHECK(count == 3 * 2 * 4);
        for (size_t i = 0; got && i < 3 * 2 * 4; i++) CHECK_NEAR(got[i], ref[i], 1e-5);
        got = nb_plan_data(p, a, &count);
        naive_pool(&ca, 0, xv, ref);
        CHECK(count == 3 * 2 * 9);
        for (size_t i = 0; got && i < 3 * 2 * 9; i++) CHECK_NEAR(got[i], ref[i], 1e-5);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* The 2x2 stride-2 kernels (a vector one on AVX-512: 16 outputs at a time,
 * masked at the row's end) against the rule written out, PyTorch's: the
 * first maximum in scan order wins, a NaN over everything, and a later NaN
 * over an earlier one. Widths below, at and past 16 and 32 outputs, odd sizes (a
 * last row and column no window reads), values with many ties, some NaN.
 * Pooling a parameter adds into its gradient (a scatter); pooling an
 * intermediate (x * 1) writes its gradient whole, every element once. */
NB_TEST(test_pool_max_2x2_rule)
{
    static const int sizes[][3] = {{3, 5, 7}, {2, 28, 28}, {1, 9, 33}, {2, 4, 64}, {1, 6, 70}, {3, 2, 2}};
    for (size_t k = 0; k < 2 * sizeof sizes / sizeof sizes[0]; k++) {
        const int via = (int)(k % 2), *sz = sizes[k / 2];
        const int C = sz[0], H = sz[1], W = sz[2], OH = H / 2, OW = W / 2;
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_param(g, "x", 4, (int64_t[]){1, C, H, W});
        nb_node *y = nb_max_pool2d(g, via ? nb_scale(g, x, 1.0f) : x, 2, 2, 0, 0, 0, 0);
        if (!x || !y) {
            CHECK(0);
            nb_graph_free(g);
            continue;
        }
        float *xv = nb_node_data(x);
        nb_rng r;
        nb_rng_seed(&r, 40 + k / 2);
        nb_fill_uniform(xv, (size_t)C * H * W, -1.0f, 1.0f, &r);
        for (int i = 0; i < C * H * W; i++) {
            xv[i] = floorf(xv[i] * 2.0f) / 2.0f; /* four values: ties everywhere */
            if (i % 37 == 5 || i % 53 == 11) xv[i] = NAN;
        }
        nb_plan *p;
        const float *dx = pool_ones_backward(g, x, y, &p);
        const float *out = p ? nb_plan_data(p, y, NULL) : NULL;
        int bad = 0;
        for (int c = 0; out && dx && c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    const int at[4] = {(c * H + 2 * oh) * W + 2 * ow, (c * H + 2 * oh) * W + 2 * ow + 1,
                                       (c * H + 2 * oh + 1) * W + 2 * ow, (c * H + 2 * oh + 1) * W + 2 * ow + 1};
                    int best = at[0];
                    for (int q = 1; q < 4; q++)
                        if (isnan(xv[at[q]]) || xv[at[q]] > xv[best]) best = at[q];
                    const float got = out[(c * OH + oh) * OW + ow];
                    if (memcmp(&got, &xv[best], sizeof got) != 0) bad++;
                    for (int q = 0; q < 4; q++)
                        if (dx[at[q]] != (at[q] == best ? 1.0f : 0.0f)) bad++;
                }
        for (int i = 0; dx && i < C * H * W; i++) /* a last row or column no window reads */
            if (((i / W) % H >= 2 * OH || i % W >= 2 * OW) && dx[i] != 0.0f) bad++;
        if (bad)
            nb_test_fail(__FILE__, __LINE__, "%dx%dx%d%s: %d values or gradients off the rule", C, H, W,
                         via ? " (through x * 1)" : "", bad);
        nb_plan_free(p);
        nb_graph_free(g);
    }
}
