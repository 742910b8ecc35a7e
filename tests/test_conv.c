/*
 * test_conv.c - conv2d: gradients by finite differences over every option,
 * forward values against a direct convolution written out below, shape and
 * argument errors, and batch-sized inputs.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* One convolution to test: x [N,C,H,W], weight [O,C/groups,kh,kw], bias [O]. */
typedef struct {
    int N, C, H, W, O, kh, kw;
    int bias;
    nb_conv2d_opts opts;
} conv_case;

static int opt1(int v) { return v ? v : 1; }

static void case_out_size(const conv_case *c, int *oh, int *ow)
{
    const nb_conv2d_opts *o = &c->opts;
    *oh = (c->H + 2 * o->pad_h - opt1(o->dilation_h) * (c->kh - 1) - 1) / opt1(o->stride_h) + 1;
    *ow = (c->W + 2 * o->pad_w - opt1(o->dilation_w) * (c->kw - 1) - 1) / opt1(o->stride_w) + 1;
}

/* The definition, one output at a time, summed in double. */
static void naive_conv(const conv_case *c, const float *x, const float *w, const float *b, float *y)
{
    const nb_conv2d_opts *o = &c->opts;
    const int G = opt1(o->groups), Cg = c->C / G, Og = c->O / G;
    const int sh = opt1(o->stride_h), sw = opt1(o->stride_w);
    const int dh = opt1(o->dilation_h), dw = opt1(o->dilation_w);
    int OH, OW;
    case_out_size(c, &OH, &OW);
    for (int n = 0; n < c->N; n++)
        for (int oc = 0; oc < c->O; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b[oc] : 0.0;
                    int gi = oc / Og;
                    for (int ci = 0; ci < Cg; ci++)
                        for (int i = 0; i < c->kh; i++)
                            for (int j = 0; j < c->kw; j++) {
                                int ih = oh * sh - o->pad_h + i * dh;
                                int iw = ow * sw - o->pad_w + j * dw;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                int xi = ((n * c->C + gi * Cg + ci) * c->H + ih) * c->W + iw;
                                s += (double)x[xi] * w[((oc * Cg + ci) * c->kh + i) * c->kw + j];
                            }
                    y[((n * c->O + oc) * OH + oh) * OW + ow] = (float)s;
                }
}

/* Builds the case with x, weight and bias as parameters (so every gradient
 * is checked); NULL when the build fails. */
static nb_node *build_case(nb_graph *g, const conv_case *c, nb_node **px, nb_node **pw,
                           nb_node **pb)
{
    int G = opt1(c->opts.groups);
    nb_node *x = nb_test_param(g, "x", 4, (int64_t[]){c->N, c->C, c->H, c->W}, -1.0f, 1.0f);
    nb_node *w = nb_test_param(g, "w", 4, (int64_t[]){c->O, c->C / G, c->kh, c->kw}, -1.0f, 1.0f);
    nb_node *b = c->bias ? nb_test_param(g, "b", 1, (int64_t[]){c->O}, -1.0f, 1.0f) : NULL;
    if (px) *px = x;
    if (pw) *pw = w;
    if (pb) *pb = b;
    if (c->bias && !b) return NULL;
    return nb_conv2d(g, x, w, b, &c->opts);
}

static void grad_case(const conv_case *c)
{
    nb_graph *g = nb_graph_create();
    nb_node *y = build_case(g, c, NULL, NULL, NULL);
    CHECK_GRAD(g, y);
    nb_graph_free(g);
}

/* Forward through a plan that only runs forward, against naive_conv. */
static void forward_case(const conv_case *c)
{
    nb_graph *g = nb_graph_create();
    nb_node *x, *w, *b;
    nb_node *y = build_case(g, c, &x, &w, &b);
    CHECK_PTR(y);
    nb_plan *p = y ? nb_plan_create(g, NULL, 1, 0) : NULL;
    if (y) CHECK_PTR(p);
    if (p) {
        CHECK_OK(nb_plan_forward(p));
        int OH, OW;
        case_out_size(c, &OH, &OW);
        size_t count = 0, want = (size_t)c->N * c->O * OH * OW;
        const float *got = nb_plan_data(p, y, &count);
        CHECK(count == want);
        int64_t s[NB_MAX_DIMS];
        CHECK(nb_plan_shape(p, y, s) == 4 && s[0] == c->N && s[1] == c->O && s[2] == OH &&
              s[3] == OW);
        float *ref = calloc(want, sizeof *ref);
        naive_conv(c, nb_node_data(x), nb_node_data(w), b ? nb_node_data(b) : NULL, ref);
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

NB_TEST(test_conv_grad_bias)
{
    grad_case(&(conv_case){2, 2, 5, 5, 3, 3, 3, 1, {0}});
}

NB_TEST(test_conv_grad_no_bias)
{
    grad_case(&(conv_case){1, 2, 5, 5, 3, 3, 3, 0, {0}});
}

NB_TEST(test_conv_grad_stride2)
{
    grad_case(&(conv_case){1, 2, 7, 7, 2, 3, 3, 1, {.stride_h = 2, .stride_w = 2}});
}

NB_TEST(test_conv_grad_pad1)
{
    grad_case(&(conv_case){1, 2, 5, 5, 2, 3, 3, 1, {.pad_h = 1, .pad_w = 1}});
}

NB_TEST(test_conv_grad_stride2_pad1)
{
    /* windows that hang over the far edge are cut by the floor */
    grad_case(&(conv_case){2, 2, 6, 6, 2, 3, 3, 1, {.stride_h = 2, .stride_w = 2, .pad_h = 1,
                                                    .pad_w = 1}});
}

NB_TEST(test_conv_grad_dilation2)
{
    grad_case(&(conv_case){1, 2, 7, 7, 2, 3, 3, 1, {.dilation_h = 2, .dilation_w = 2}});
}

NB_TEST(test_conv_grad_dilation2_pad2)
{
    grad_case(&(conv_case){1, 1, 6, 6, 2, 3, 3, 0, {.pad_h = 2, .pad_w = 2, .dilation_h = 2,
                                                    .dilation_w = 2}});
}

NB_TEST(test_conv_grad_groups2)
{
    grad_case(&(conv_case){1, 4, 5, 5, 4, 3, 3, 1, {.groups = 2}});
}

NB_TEST(test_conv_grad_depthwise)
{
    /* groups == channels, two filters per channel */
    grad_case(&(conv_case){2, 3, 4, 4, 6, 3, 3, 1, {.groups = 3, .pad_h = 1, .pad_w = 1}});
}

NB_TEST(test_conv_grad_kernel1x1)
{
    /* the pointwise path: no im2col */
    grad_case(&(conv_case){2, 3, 4, 4, 4, 1, 1, 1, {0}});
}

NB_TEST(test_conv_grad_kernel1x1_stride2)
{
    /* 1x1 again, but strided: back through im2col */
    grad_case(&(conv_case){2, 3, 5, 5, 2, 1, 1, 1, {.stride_h = 2, .stride_w = 2}});
}

NB_TEST(test_conv_grad_kernel1x1_groups2)
{
    grad_case(&(conv_case){2, 4, 3, 3, 4, 1, 1, 0, {.groups = 2}});
}

NB_TEST(test_conv_grad_rect)
{
    /* non-square input, kernel, stride and padding */
    grad_case(&(conv_case){1, 2, 4, 7, 3, 2, 3, 1, {.stride_h = 1, .stride_w = 2, .pad_h = 1,
                                                    .pad_w = 0}});
}

NB_TEST(test_conv_grad_batch2)
{
    grad_case(&(conv_case){2, 2, 4, 5, 2, 2, 2, 1, {.pad_h = 1, .dilation_w = 2}});
}

NB_TEST(test_conv_grad_channels1)
{
    grad_case(&(conv_case){2, 1, 6, 6, 2, 3, 3, 1, {0}});
}

/* Few taps, many outputs (a first layer): the weight gradient is computed
 * transposed (conv.c, dw_t); with groups too, and over several chunks. */
NB_TEST(test_conv_grad_few_taps)
{
    grad_case(&(conv_case){2, 1, 5, 5, 24, 3, 3, 1, {.pad_h = 1, .pad_w = 1}});
    grad_case(&(conv_case){1, 2, 4, 4, 48, 3, 3, 1, {.groups = 2}});
    grad_case(&(conv_case){9, 1, 3, 3, 24, 2, 2, 0, {0}});
}

/* 3x3, stride 1, 16+ channels both ways: the Winograd path (conv.c,
 * kernels/winograd.c). Odd and even output sizes (tiles cut at the far
 * edge), padding 0, 1 and 2, rectangles, channels that fill no micro-kernel
 * tile exactly, a batch over several chunks, and each gradient alone. */
NB_TEST(test_conv_grad_winograd)
{
    grad_case(&(conv_case){2, 16, 5, 5, 16, 3, 3, 1, {.pad_h = 1, .pad_w = 1}});
    grad_case(&(conv_case){1, 17, 6, 7, 19, 3, 3, 0, {0}});
    grad_case(&(conv_case){1, 16, 3, 4, 18, 3, 3, 1, {.pad_h = 2, .pad_w = 1}});
    grad_case(&(conv_case){9, 16, 3, 3, 16, 3, 3, 1, {.pad_h = 1, .pad_w = 1}});
}

NB_TEST(test_conv_grad_winograd_partial)
{
    nb_conv2d_opts o = {.pad_h = 1, .pad_w = 1};
    float *wv = malloc(16 * 16 * 9 * sizeof *wv), *xv = malloc(2 * 16 * 4 * 5 * sizeof *xv);
    nb_rng r;
    nb_rng_seed(&r, 11);
    nb_fill_uniform(wv, 16 * 16 * 9, -1.0f, 1.0f, &r);
    nb_fill_uniform(xv, 2 * 16 * 4 * 5, -1.0f, 1.0f, &r);
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_const(g, "x", 4, (int64_t[]){2, 16, 4, 5}, xv);
    nb_node *w = nb_test_param(g, "w", 4, (int64_t[]){16, 16, 3, 3}, -1.0f, 1.0f);
    CHECK_GRAD(g, nb_conv2d(g, x, w, NULL, &o));
    nb_graph_free(g);
    g = nb_graph_create();
    x = nb_test_param(g, "x", 4, (int64_t[]){2, 16, 4, 5}, -1.0f, 1.0f);
    w = nb_const(g, "w", 4, (int64_t[]){16, 16, 3, 3}, wv);
    CHECK_GRAD(g, nb_conv2d(g, x, w, NULL, &o));
    nb_graph_free(g);
    free(wv);
    free(xv);
}

/* Gradients accumulate: x feeds two convolutions (one through im2col, one
 * pointwise) and the sum of both must reach it. */
NB_TEST(test_conv_grad_shared_input)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 4, (int64_t[]){1, 2, 4, 4}, -1.0f, 1.0f);
    nb_node *w1 = nb_test_param(g, "w1", 4, (int64_t[]){3, 2, 3, 3}, -1.0f, 1.0f);
    nb_node *w2 = nb_test_param(g, "w2", 4, (int64_t[]){3, 2, 1, 1}, -1.0f, 1.0f);
    nb_conv2d_opts pad = {.pad_h = 1, .pad_w = 1};
    nb_node *y = nb_add(g, nb_conv2d(g, x, w1, NULL, &pad), nb_conv2d(g, x, w2, NULL, NULL));
    CHECK_GRAD(g, y);
    nb_graph_free(g);
}

/* Only some inputs need a gradient: x constant (no dx), then weight and bias
 * constant (no dW, no db). */
NB_TEST(test_conv_grad_partial)
{
    float xv[2 * 2 * 5 * 5], wv[3 * 2 * 3 * 3], bv[3];
    nb_rng r;
    nb_rng_seed(&r, 7);
    nb_fill_uniform(xv, sizeof xv / sizeof *xv, -1.0f, 1.0f, &r);
    nb_fill_uniform(wv, sizeof wv / sizeof *wv, -1.0f, 1.0f, &r);
    nb_fill_uniform(bv, 3, -1.0f, 1.0f, &r);
    nb_conv2d_opts o = {.pad_h = 1, .pad_w = 1, .stride_h = 2};

    nb_graph *g = nb_graph_create();
    nb_node *x = nb_const(g, "x", 4, (int64_t[]){2, 2, 5, 5}, xv);
    nb_node *w = nb_test_param(g, "w", 4, (int64_t[]){3, 2, 3, 3}, -1.0f, 1.0f);
    nb_node *b = nb_test_param(g, "b", 1, (int64_t[]){3}, -1.0f, 1.0f);
    CHECK_GRAD(g, nb_conv2d(g, x, w, b, &o));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_test_param(g, "x", 4, (int64_t[]){2, 2, 5, 5}, -1.0f, 1.0f);
    w = nb_const(g, "w", 4, (int64_t[]){3, 2, 3, 3}, wv);
    b = nb_const(g, "b", 1, (int64_t[]){3}, bv);
    CHECK_GRAD(g, nb_conv2d(g, x, w, b, &o));
    nb_graph_free(g);
}

/* Two backward passes from the same state give the same bits. */
NB_TEST(test_conv_deterministic)
{
    nb_graph *g = nb_graph_create();
    nb_node *y = build_case(g, &(conv_case){2, 4, 6, 6, 4, 3, 3, 1, {.groups = 2, .pad_h = 1,
                                                                      .pad_w = 1}},
                            NULL, NULL, NULL);
    nb_plan *p = y ? nb_plan_create(g, y, 1, NB_PLAN_TRAIN) : NULL;
    CHECK_PTR(p);
    if (p) {
        size_t n = nb_graph_param_numel(g);
        float *first = malloc(n * sizeof *first);
        for (int run = 0; run < 2; run++) {
            nb_graph_zero_grad(g);
            CHECK_OK(nb_plan_forward(p));
            CHECK_OK(nb_plan_backward(p, NULL));
            if (run == 0) memcpy(first, nb_graph_param_grad(g), n * sizeof *first);
        }
        CHECK(memcmp(first, nb_graph_param_grad(g), n * sizeof *first) == 0);
        free(first);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- forward values ---- */

NB_TEST(test_conv_forward_naive)
{
    const conv_case cases[] = {
        {2, 2, 5, 5, 3, 3, 3, 1, {0}},
        {1, 3, 6, 5, 2, 3, 2, 0, {.pad_h = 1, .pad_w = 2}},
        {2, 4, 7, 7, 4, 3, 3, 1, {.groups = 2, .pad_h = 1, .pad_w = 1}},
        {1, 6, 5, 5, 6, 3, 3, 1,
         {.groups = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}},
        {1, 2, 8, 9, 2, 3, 3, 1, {.dilation_h = 2, .dilation_w = 3, .pad_h = 2, .pad_w = 1}},
        {2, 3, 4, 4, 5, 1, 1, 1, {0}},                                  /* pointwise */
        {1, 2, 5, 6, 3, 1, 1, 0, {.stride_h = 2, .stride_w = 3, .pad_h = 1}},
        {1, 1, 3, 3, 1, 3, 3, 0, {.pad_h = 1, .pad_w = 1, .stride_h = 5, .stride_w = 5}},
        {1, 2, 3, 3, 2, 5, 5, 1, {.pad_h = 2, .pad_w = 2}},             /* kernel larger than x */
        /* Winograd: odd and even sizes, paddings 0 to 2, several chunks */
        {2, 16, 14, 14, 32, 3, 3, 1, {.pad_h = 1, .pad_w = 1}},
        {9, 17, 9, 11, 20, 3, 3, 1, {.pad_h = 1, .pad_w = 1}},
        {3, 32, 7, 6, 16, 3, 3, 0, {0}},
        {1, 16, 5, 8, 40, 3, 3, 1, {.pad_h = 2, .pad_w = 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) forward_case(&cases[i]);
}

/* A hand-computed case, independent of naive_conv: all ones through a 3x3
 * all-ones kernel with padding 1 counts the real inputs of each window. */
NB_TEST(test_conv_forward_counts)
{
    nb_graph *g = nb_graph_create();
    float ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    nb_node *x = nb_const(g, "x", 4, (int64_t[]){1, 1, 4, 4}, ones);
    nb_node *w = nb_param(g, "w", 4, (int64_t[]){1, 1, 3, 3});
    nb_node *b = nb_param(g, "b", 1, (int64_t[]){1});
    if (w && b) {
        for (int i = 0; i < 9; i++) nb_node_data(w)[i] = 1.0f;
        nb_node_data(b)[0] = 0.5f;
    }
    nb_node *y = nb_conv2d(g, x, w, b, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1});
    nb_plan *p = y ? nb_plan_create(g, NULL, 1, 0) : NULL;
    CHECK_PTR(p);
    if (p) {
        CHECK_OK(nb_plan_forward(p));
        const float want[16] = {4, 6, 6, 4, 6, 9, 9, 6, 6, 9, 9, 6, 4, 6, 6, 4};
        size_t count = 0;
        const float *got = nb_plan_data(p, y, &count);
        CHECK(count == 16);
        for (int i = 0; i < 16 && count == 16; i++) CHECK_NEAR(got[i], want[i] + 0.5f, 1e-6);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- errors ---- */

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

NB_TEST(test_conv_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 4, (int64_t[]){1, 3, 5, 5});
    nb_node *w = nb_param(g, "w", 4, (int64_t[]){2, 2, 3, 3});
    /* channels: 3 in, weight takes 2 */
    CHECK(nb_conv2d(g, x, w, NULL, NULL) == NULL);
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "[1,3,5,5]") &&
          has(nb_last_error(), "[2,2,3,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 2, 2, 2});
    w = nb_param(g, "w", 4, (int64_t[]){2, 2, 3, 3});
    /* output smaller than 1 */
    CHECK(nb_conv2d(g, x, w, NULL, NULL) == NULL);
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "[1,2,2,2]") &&
          has(nb_last_error(), "[2,2,3,3]"));
    /* with padding it fits: 2 + 2 - 3 + 1 = 2; dilation 2 makes it too small again */
    nb_graph *g2 = nb_graph_create();
    nb_node *x2 = nb_input(g2, "x", 4, (int64_t[]){1, 2, 2, 2});
    nb_node *w2 = nb_param(g2, "w", 4, (int64_t[]){2, 2, 3, 3});
    CHECK_PTR(nb_conv2d(g2, x2, w2, NULL, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1}));
    CHECK(nb_conv2d(g2, x2, w2, NULL,
                    &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1, .dilation_h = 2}) == NULL);
    CHECK(has(nb_last_error(), "conv2d"));
    nb_graph_free(g2);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 4, 5, 5});
    w = nb_param(g, "w", 4, (int64_t[]){3, 2, 3, 3});
    /* 3 outputs do not split into 2 groups */
    CHECK(nb_conv2d(g, x, w, NULL, &(nb_conv2d_opts){.groups = 2}) == NULL);
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "groups"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 2, 5, 5});
    w = nb_param(g, "w", 4, (int64_t[]){3, 2, 3, 3});
    nb_node *b = nb_param(g, "b", 1, (int64_t[]){2});
    /* bias [2] for 3 outputs */
    CHECK(nb_conv2d(g, x, w, b, NULL) == NULL);
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "bias") &&
          has(nb_last_error(), "[2]"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 3, (int64_t[]){2, 5, 5});
    w = nb_param(g, "w", 4, (int64_t[]){3, 2, 3, 3});
    nb_node *w3 = nb_param(g, "w3", 3, (int64_t[]){3, 2, 3});
    nb_node *x4 = nb_input(g, "x4", 4, (int64_t[]){1, 2, 5, 5});
    CHECK(nb_conv2d(g, x, w, NULL, NULL) == NULL);     /* x not 4-D */
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "[2,5,5]"));
    nb_graph_free(g);
    /* errors are sticky: a fresh graph for the next one */
    g = nb_graph_create();
    w3 = nb_param(g, "w3", 3, (int64_t[]){3, 2, 3});
    x4 = nb_input(g, "x4", 4, (int64_t[]){1, 2, 5, 5});
    CHECK(nb_conv2d(g, x4, w3, NULL, NULL) == NULL);   /* weight not 4-D */
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "[3,2,3]"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){1, 2, 5, 5});
    w = nb_param(g, "w", 4, (int64_t[]){3, 2, 3, 3});
    CHECK(nb_conv2d(g, x, w, NULL, &(nb_conv2d_opts){.stride_h = -1}) == NULL);
    CHECK(has(nb_last_error(), "conv2d"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    /* a NULL input (an earlier failure) gives NULL and keeps that message */
    CHECK(nb_conv2d(g, NULL, w, NULL, NULL) == NULL);
    CHECK(nb_conv2d(g, x, NULL, NULL, NULL) == NULL);
    CHECK(has(nb_last_error(), "conv2d") && has(nb_last_error(), "-1"));
    CHECK(nb_conv2d(NULL, x, w, NULL, NULL) == NULL);
    nb_graph_free(g);
}

/* ---- batch-sized inputs ---- */

NB_TEST(test_conv_batch)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 1, 6, 6});
    nb_node *w = nb_test_param(g, "w", 4, (int64_t[]){2, 1, 3, 3}, -1.0f, 1.0f);
    nb_node *b = nb_test_param(g, "b", 1, (int64_t[]){2}, -1.0f, 1.0f);
    nb_node *c = nb_conv2d(g, x, w, b, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1});
    nb_node *m = nb_max_pool2d(g, c, 2, 2, 0, 0, 0, 0);
    nb_node *a = nb_avg_pool2d(g, m, 3, 3, 1, 1, 1, 1);
    CHECK_PTR(a);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(c, s) == 4 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 6 && s[3] == 6);
    CHECK(nb_node_shape(a, s) == 4 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 3 && s[3] == 3);
    nb_node_keep(c);
    nb_plan *p = a ? nb_plan_create(g, NULL, 3, 0) : NULL;
    CHECK_PTR(p);
    if (p) {
        CHECK(nb_plan_shape(p, c, s) == 4 && s[0] == 3 && s[1] == 2 && s[2] == 6 && s[3] == 6);
        CHECK(nb_plan_shape(p, m, s) == 4 && s[0] == 3 && s[1] == 2 && s[2] == 3 && s[3] == 3);
        CHECK(nb_plan_shape(p, a, s) == 4 && s[0] == 3 && s[1] == 2 && s[2] == 3 && s[3] == 3);
        float xv[3 * 36];
        nb_rng r;
        nb_rng_seed(&r, 3);
        nb_fill_uniform(xv, 3 * 36, -1.0f, 1.0f, &r);
        CHECK_OK(nb_plan_set_input(p, x, xv, 3 * 36));
        CHECK_OK(nb_plan_forward(p));
        /* every sample of the batch is convolved, not just the first */
        conv_case cc = {3, 1, 6, 6, 2, 3, 3, 1, {.pad_h = 1, .pad_w = 1}};
        float ref[3 * 2 * 36];
        naive_conv(&cc, xv, nb_node_data(w), nb_node_data(b), ref);
        size_t count = 0;
        const float *got = nb_plan_data(p, c, &count);
        CHECK(count == 3 * 2 * 36);
        int bad = 0;
        for (size_t i = 0; got && count == 3 * 2 * 36 && i < count; i++)
            bad += !(fabsf(got[i] - ref[i]) <= 1e-5f);
        CHECK(bad == 0);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

static nb_status fill_batch(nb_plan *p, void *user)
{
    nb_node *x = user;
    size_t n = 0;
    float *v = nb_plan_data(p, x, &n);
    if (!v) return NB_ERR_ARG;
    nb_rng r;
    nb_rng_seed(&r, 11);
    nb_fill_uniform(v, n, -1.0f, 1.0f, &r);
    return NB_OK;
}

/* Gradients with the batch size fixed by the plan (3), through conv and both
 * pools. */
NB_TEST(test_conv_batch_gradcheck)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 2, 5, 5});
    nb_node *w = nb_test_param(g, "w", 4, (int64_t[]){2, 2, 3, 3}, -1.0f, 1.0f);
    nb_node *b = nb_test_param(g, "b", 1, (int64_t[]){2}, -1.0f, 1.0f);
    nb_node *c = nb_conv2d(g, x, w, b, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1, .stride_w = 2});
    nb_node *y = nb_avg_pool2d(g, c, 2, 2, 1, 1, 1, 1);
    CHECK_PTR(y);
    if (y) {
        nb_gradcheck_opts o = {0};
        o.seed = 42;
        o.batch = 3;
        o.fill_inputs = fill_batch;
        o.user = x;
        nb_gradcheck_report rep;
        CHECK_OK(nb_gradcheck(g, y, &o, &rep));
        CHECK(rep.checked == 2 * 2 * 9 + 2);
    }
    nb_graph_free(g);
}
