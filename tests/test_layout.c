/*
 * test_layout.c - permute/transpose, reshape/flatten, concat, slice: gradient
 * checks (views through a following op too), forward values against naive
 * index arithmetic, batch-sized inputs, and shape and argument errors.
 */
#include "test.h"

#include <string.h>

/* Builds a forward-only plan at `batch`, runs it, and returns it (NULL and a
 * failed check on error). */
static nb_plan *run_forward(nb_graph *g, int batch)
{
    nb_plan *p = nb_plan_create(g, NULL, batch, 0);
    CHECK_PTR(p);
    if (p) CHECK_OK(nb_plan_forward(p));
    return p;
}

/* Checks the plan shape of n against want[0..nd-1]. */
static void check_shape(const char *file, int line, nb_plan *p, const nb_node *n, int nd,
                        const int64_t *want)
{
    int64_t s[NB_MAX_DIMS];
    int got = nb_plan_shape(p, n, s);
    int same = got == nd;
    for (int k = 0; same && k < nd; k++) same = s[k] == want[k];
    if (!same)
        nb_test_fail(file, line, "plan shape of %s differs (ndim %d, want %d)", nb_node_op(n), got,
                     nd);
}
#define CHECK_SHAPE(p, n, nd, ...) \
    check_shape(__FILE__, __LINE__, (p), (n), (nd), (int64_t[])__VA_ARGS__)

/* ---- permute / transpose ---- */

static const struct { int nd; int64_t s[4]; int perm[4]; } pcases[] = {
    {2, {3, 4}, {1, 0}},
    {3, {2, 3, 4}, {2, 0, 1}},
    {3, {2, 3, 4}, {1, 2, 0}},
    {3, {2, 3, 4}, {0, 2, 1}},
    {3, {2, 3, 4}, {0, 1, 2}},       /* identity */
    {4, {1, 3, 1, 2}, {3, 1, 0, 2}}, /* size-1 axes */
    {4, {2, 1, 3, 2}, {-1, 0, -2, 1}}, /* negative axes */
    {1, {5}, {0}},
    {0, {0}, {0}},                   /* 0-d */
};
#define N_PCASES (sizeof pcases / sizeof pcases[0])

NB_TEST(test_layout_permute_gradcheck)
{
    for (size_t c = 0; c < N_PCASES; c++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_test_param(g, "x", pcases[c].nd, pcases[c].s, -1, 1);
        CHECK_GRAD(g, nb_permute(g, x, pcases[c].perm));
        nb_graph_free(g);
    }
}

NB_TEST(test_layout_permute_forward)
{
    for (size_t c = 0; c < N_PCASES; c++) {
        const int nd = pcases[c].nd;
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_test_param(g, "x", nd, pcases[c].s, -1, 1);
        nb_node *y = nb_permute(g, x, pcases[c].perm);
        CHECK_PTR(y);
        nb_plan *p = run_forward(g, 1);
        if (!p) {
            nb_graph_free(g);
            continue;
        }
        int perm[4];
        int64_t ys[4], xst[4], st = 1;
        for (int k = 0; k < nd; k++)
            perm[k] = pcases[c].perm[k] < 0 ? pcases[c].perm[k] + nd : pcases[c].perm[k];
        for (int k = nd - 1; k >= 0; k--) {
            xst[k] = st;
            st *= pcases[c].s[k];
        }
        for (int k = 0; k < nd; k++) ys[k] = pcases[c].s[perm[k]];
        check_shape(__FILE__, __LINE__, p, y, nd, ys);
        /* y[i] = x[sum_k i_k * stride_x(perm[k])], by unravelling i */
        size_t n = 0;
        const float *yv = nb_plan_data(p, y, &n), *xv = nb_node_data(x);
        CHECK(n == (size_t)st);
        for (size_t i = 0; i < n; i++) {
            int64_t rem = (int64_t)i, off = 0;
            for (int k = nd - 1; k >= 0; k--) {
                off += (rem % ys[k]) * xst[perm[k]];
                rem /= ys[k];
            }
            CHECK(yv[i] == xv[off]);
        }
        nb_plan_free(p);
        nb_graph_free(g);
    }
}

NB_TEST(test_layout_transpose)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_const(g, "x", 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    nb_node *y = nb_transpose(g, x, 0, -1);
    CHECK_PTR(y);
    nb_plan *p = run_forward(g, 1);
    if (p) {
        CHECK_SHAPE(p, y, 2, {3, 2});
        const float *v = nb_plan_data(p, y, NULL);
        const float want[6] = {1, 4, 2, 5, 3, 6};
        for (int i = 0; i < 6; i++) CHECK(v[i] == want[i]);
        nb_plan_free(p);
    }
    nb_graph_free(g);

    /* gradients: 2-D, the last two of 3-D (negative), the same axis twice */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){3, 4}, -1, 1);
    CHECK_GRAD(g, nb_transpose(g, x, 1, 0));
    nb_graph_free(g);
    g = nb_graph_create();
    x = nb_test_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1);
    CHECK_GRAD(g, nb_transpose(g, x, -1, -2));
    nb_graph_free(g);
    g = nb_graph_create();
    x = nb_test_param(g, "x", 3, (int64_t[]){2, 1, 4}, -1, 1);
    CHECK_GRAD(g, nb_transpose(g, x, 1, 1));
    nb_graph_free(g);

    /* transpose then matmul: x^T @ x, x reaching the product twice */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){4, 3}, -1, 1);
    CHECK_GRAD(g, nb_matmul(g, nb_transpose(g, x, 0, 1), x));
    nb_graph_free(g);
}

NB_TEST(test_layout_permute_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 3, (int64_t[]){2, 3, 4});
    CHECK(nb_permute(g, x, (int[]){0, 0, 1}) == NULL); /* repeated axis */
    CHECK(strstr(nb_last_error(), "permute") && strstr(nb_last_error(), "[2,3,4]"));
    CHECK(nb_graph_status(g) != NB_OK);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 3, (int64_t[]){2, 3, 4});
    CHECK(nb_permute(g, x, (int[]){0, 3, 1}) == NULL); /* out of range */
    CHECK(strstr(nb_last_error(), "permute") && strstr(nb_last_error(), "[2,3,4]"));
    CHECK(nb_permute(g, x, (int[]){-4, 1, 2}) == NULL);
    CHECK(nb_graph_status(g) != NB_OK);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    CHECK(nb_transpose(g, x, 0, 2) == NULL);
    CHECK(strstr(nb_last_error(), "transpose") && strstr(nb_last_error(), "[2,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    CHECK(nb_transpose(g, NULL, 0, 1) == NULL); /* NULL keeps the first message */
    CHECK(strstr(nb_last_error(), "transpose") && strstr(nb_last_error(), "[2,3]"));
    CHECK(nb_permute(g, x, NULL) == NULL);
    nb_graph_free(g);
}

/* ---- reshape / flatten ---- */

NB_TEST(test_layout_reshape_gradcheck)
{
    /* through a following elementwise op: y = reshape(x) * w */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1);
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){4, 6}, -1, 1);
    nb_node *r = nb_reshape(g, x, 2, (int64_t[]){4, -1});
    CHECK(strcmp(nb_node_op(r), "reshape") == 0);
    CHECK_GRAD(g, nb_mul(g, r, w));
    nb_graph_free(g);

    /* a reshape of a reshape, with 0 (copy) and -1, then a broadcast mul */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1);
    w = nb_test_param(g, "w", 1, (int64_t[]){3}, -1, 1);
    r = nb_reshape(g, nb_reshape(g, x, 2, (int64_t[]){0, 12}), 4, (int64_t[]){-1, 2, 2, 3});
    CHECK_GRAD(g, nb_mul(g, r, w));
    nb_graph_free(g);

    /* a reshape of an op output (the view aliases an arena gradient), then matmul */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){2, 6}, -1, 1);
    nb_node *s = nb_test_param(g, "s", 2, (int64_t[]){2, 6}, -1, 1);
    w = nb_test_param(g, "w", 2, (int64_t[]){3, 2}, -1, 1);
    r = nb_reshape(g, nb_mul(g, x, s), 3, (int64_t[]){2, 2, 3});
    CHECK_GRAD(g, nb_matmul(g, r, w));
    nb_graph_free(g);

    /* size-1 axes added and removed; and a view as the output itself */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){1, 5}, -1, 1);
    w = nb_test_param(g, "w", 3, (int64_t[]){5, 1, 1}, -1, 1);
    CHECK_GRAD(g, nb_mul(g, nb_reshape(g, x, 3, (int64_t[]){5, 1, 1}), w));
    CHECK_GRAD(g, nb_reshape(g, x, 1, (int64_t[]){5}));
    nb_graph_free(g);

    /* flatten, then a product */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 4, (int64_t[]){2, 1, 2, 3}, -1, 1);
    w = nb_test_param(g, "w", 2, (int64_t[]){6, 2}, -1, 1);
    nb_node *f = nb_flatten(g, x);
    CHECK_GRAD(g, nb_matmul(g, f, w));
    nb_graph_free(g);

    /* to and from 0-d */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){1, 1}, -1, 1);
    w = nb_test_param(g, "w", 0, NULL, -1, 1);
    CHECK_GRAD(g, nb_mul(g, nb_reshape(g, x, 0, NULL), w));
    nb_graph_free(g);
}

NB_TEST(test_layout_reshape_forward)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1);
    nb_node *a = nb_reshape(g, x, 2, (int64_t[]){0, -1});
    nb_node *b = nb_reshape(g, x, 3, (int64_t[]){4, 0, -1});
    nb_node *c = nb_flatten(g, x);
    nb_node *d = nb_reshape(g, x, 1, (int64_t[]){24});
    nb_node *e = nb_reshape(g, x, 4, (int64_t[]){0, 0, 0, 1});
    CHECK_PTR(a);
    CHECK_PTR(b);
    CHECK_PTR(c);
    CHECK_PTR(d);
    CHECK_PTR(e);
    /* build-time shapes */
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(b, s) == 3 && s[0] == 4 && s[1] == 3 && s[2] == 2);
    nb_plan *p = run_forward(g, 1);
    if (p) {
        CHECK_SHAPE(p, a, 2, {2, 12});
        CHECK_SHAPE(p, b, 3, {4, 3, 2});
        CHECK_SHAPE(p, c, 2, {2, 12});
        CHECK_SHAPE(p, d, 1, {24});
        CHECK_SHAPE(p, e, 4, {2, 3, 4, 1});
        /* same elements, same order */
        const float *xv = nb_node_data(x);
        const nb_node *views[5] = {a, b, c, d, e};
        for (int k = 0; k < 5; k++) {
            size_t n = 0;
            const float *v = nb_plan_data(p, views[k], &n);
            CHECK(n == 24 && v && memcmp(v, xv, 24 * sizeof(float)) == 0);
        }
        nb_plan_free(p);
    }
    nb_graph_free(g);
}

NB_TEST(test_layout_reshape_batch)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 6});
    nb_node *r = nb_reshape(g, x, 3, (int64_t[]){0, 2, 3});
    nb_node *f = nb_flatten(g, r);
    nb_node *m = nb_reshape(g, x, 2, (int64_t[]){-1, 3}); /* [2B, 3] */
    CHECK_PTR(r);
    CHECK_PTR(f);
    CHECK_PTR(m);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(r, s) == 3 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 3);
    CHECK(nb_node_shape(f, s) == 2 && s[0] == NB_BATCH && s[1] == 6);
    nb_plan *p = nb_plan_create(g, NULL, 4, 0);
    CHECK_PTR(p);
    if (p) {
        CHECK_SHAPE(p, r, 3, {4, 2, 3});
        CHECK_SHAPE(p, f, 2, {4, 6});
        CHECK_SHAPE(p, m, 2, {8, 3});
        float v[24];
        for (int i = 0; i < 24; i++) v[i] = (float)i;
        CHECK_OK(nb_plan_set_input(p, x, v, 24));
        CHECK_OK(nb_plan_forward(p));
        size_t n = 0;
        const float *rv = nb_plan_data(p, r, &n);
        CHECK(n == 24 && rv && memcmp(rv, v, sizeof v) == 0);
        nb_plan_free(p);
    }
    /* a second plan of the same graph at another batch size */
    p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    if (p) {
        CHECK_SHAPE(p, r, 3, {1, 2, 3});
        CHECK_SHAPE(p, m, 2, {2, 3});
        nb_plan_free(p);
    }
    nb_graph_free(g);
}

NB_TEST(test_layout_reshape_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    CHECK(nb_reshape(g, x, 2, (int64_t[]){4, 2}) == NULL);
    CHECK(strstr(nb_last_error(), "reshape") && strstr(nb_last_error(), "[2,3]") &&
          strstr(nb_last_error(), "[4,2]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    CHECK(nb_reshape(g, x, 2, (int64_t[]){-1, 4}) == NULL); /* 6 is not a multiple of 4 */
    CHECK(strstr(nb_last_error(), "reshape") && strstr(nb_last_error(), "[2,3]") &&
          strstr(nb_last_error(), "[-1,4]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    CHECK(nb_reshape(g, x, 3, (int64_t[]){0, 0, 0}) == NULL); /* no axis 2 to copy */
    CHECK(strstr(nb_last_error(), "reshape") && strstr(nb_last_error(), "[2,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    CHECK(nb_reshape(g, x, 2, (int64_t[]){-1, -1}) == NULL);
    CHECK(strstr(nb_last_error(), "reshape"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    CHECK(nb_reshape(g, x, 2, (int64_t[]){-2, 3}) == NULL);
    CHECK(strstr(nb_last_error(), "reshape"));
    CHECK(nb_reshape(g, x, NB_MAX_DIMS + 1, (int64_t[]){1, 1, 1, 1, 1, 1, 2, 3, 1}) == NULL);
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    /* flatten wants [N, ...] */
    g = nb_graph_create();
    x = nb_param(g, "x", 1, (int64_t[]){5});
    CHECK(nb_flatten(g, x) == NULL);
    CHECK(strstr(nb_last_error(), "flatten") && strstr(nb_last_error(), "[5]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    CHECK(nb_flatten(g, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "flatten"));
    nb_graph_free(g);

    /* a fixed target that only fits one batch size fails at build time */
    g = nb_graph_create();
    x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 6});
    CHECK(nb_reshape(g, x, 2, (int64_t[]){2, 3}) == NULL);
    CHECK(strstr(nb_last_error(), "reshape"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);
}

/* ---- concat ---- */

NB_TEST(test_layout_concat_gradcheck)
{
    /* three inputs along a middle axis */
    nb_graph *g = nb_graph_create();
    nb_node *xs[3];
    xs[0] = nb_test_param(g, "a", 3, (int64_t[]){2, 1, 3}, -1, 1);
    xs[1] = nb_test_param(g, "b", 3, (int64_t[]){2, 2, 3}, -1, 1);
    xs[2] = nb_test_param(g, "c", 3, (int64_t[]){2, 3, 3}, -1, 1);
    CHECK_GRAD(g, nb_concat(g, 3, xs, 1));
    nb_graph_free(g);

    /* axis 0, axis -1, one input, the same input twice */
    g = nb_graph_create();
    xs[0] = nb_test_param(g, "a", 2, (int64_t[]){1, 3}, -1, 1);
    xs[1] = nb_test_param(g, "b", 2, (int64_t[]){2, 3}, -1, 1);
    CHECK_GRAD(g, nb_concat(g, 2, xs, 0));
    nb_graph_free(g);
    g = nb_graph_create();
    xs[0] = nb_test_param(g, "a", 2, (int64_t[]){2, 2}, -1, 1);
    xs[1] = nb_test_param(g, "b", 2, (int64_t[]){2, 1}, -1, 1);
    CHECK_GRAD(g, nb_concat(g, 2, xs, -1));
    CHECK_GRAD(g, nb_concat(g, 1, xs, 0));
    xs[1] = xs[0];
    CHECK_GRAD(g, nb_concat(g, 2, xs, 1));
    nb_graph_free(g);

    /* a constant among the inputs has no gradient: its part of dy is skipped */
    g = nb_graph_create();
    xs[0] = nb_const(g, "k", 2, (int64_t[]){3, 2}, (float[]){1, 2, 3, 4, 5, 6});
    xs[1] = nb_test_param(g, "b", 2, (int64_t[]){3, 1}, -1, 1);
    xs[2] = nb_test_param(g, "c", 2, (int64_t[]){3, 2}, -1, 1);
    nb_node *y = nb_concat(g, 3, xs, 1);
    CHECK_GRAD(g, y);
    /* then through a product */
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){5, 2}, -1, 1);
    CHECK_GRAD(g, nb_matmul(g, y, w));
    nb_graph_free(g);

    /* more inputs than the plan's on-stack shape list (8) */
    g = nb_graph_create();
    nb_node *many[10];
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "p%d", i);
        many[i] = nb_test_param(g, name, 2, (int64_t[]){1, 2}, -1, 1);
    }
    CHECK_GRAD(g, nb_concat(g, 10, many, 0));
    nb_graph_free(g);
}

NB_TEST(test_layout_concat_forward)
{
    nb_graph *g = nb_graph_create();
    nb_node *xs[3];
    xs[0] = nb_const(g, "a", 2, (int64_t[]){2, 1}, (float[]){1, 2});
    xs[1] = nb_const(g, "b", 2, (int64_t[]){2, 2}, (float[]){3, 4, 5, 6});
    xs[2] = nb_const(g, "c", 2, (int64_t[]){2, 3}, (float[]){7, 8, 9, 10, 11, 12});
    nb_node *y1 = nb_concat(g, 3, xs, 1);
    nb_node *y0 = nb_concat(g, 2, (nb_node *[]){xs[1], xs[1]}, -2);
    CHECK_PTR(y1);
    CHECK_PTR(y0);
    nb_plan *p = run_forward(g, 1);
    if (p) {
        CHECK_SHAPE(p, y1, 2, {2, 6});
        CHECK_SHAPE(p, y0, 2, {4, 2});
        const float w1[12] = {1, 3, 4, 7, 8, 9, 2, 5, 6, 10, 11, 12};
        const float *v1 = nb_plan_data(p, y1, NULL);
        for (int i = 0; i < 12; i++) CHECK(v1[i] == w1[i]);
        const float *v0 = nb_plan_data(p, y0, NULL);
        for (int i = 0; i < 8; i++) CHECK(v0[i] == (float)(3 + i % 4));
        nb_plan_free(p);
    }
    nb_graph_free(g);

    /* along axis 0 the inputs' memory is laid end to end */
    g = nb_graph_create();
    xs[0] = nb_const(g, "a", 2, (int64_t[]){1, 2}, (float[]){1, 2});
    xs[1] = nb_const(g, "b", 2, (int64_t[]){2, 2}, (float[]){3, 4, 5, 6});
    nb_node *y = nb_concat(g, 2, xs, 0);
    p = run_forward(g, 1);
    if (p) {
        CHECK_SHAPE(p, y, 2, {3, 2});
        const float *v = nb_plan_data(p, y, NULL);
        for (int i = 0; i < 6; i++) CHECK(v[i] == (float)(i + 1));
        nb_plan_free(p);
    }
    nb_graph_free(g);

    /* a batch-sized input next to a batch-sized input, along the feature axis */
    g = nb_graph_create();
    xs[0] = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 2});
    xs[1] = nb_input(g, "z", 2, (int64_t[]){NB_BATCH, 1});
    y = nb_concat(g, 2, xs, 1);
    CHECK_PTR(y);
    p = nb_plan_create(g, NULL, 3, 0);
    CHECK_PTR(p);
    if (p) {
        CHECK_SHAPE(p, y, 2, {3, 3});
        CHECK_OK(nb_plan_set_input(p, xs[0], (float[]){1, 2, 4, 5, 7, 8}, 6));
        CHECK_OK(nb_plan_set_input(p, xs[1], (float[]){3, 6, 9}, 3));
        CHECK_OK(nb_plan_forward(p));
        const float *v = nb_plan_data(p, y, NULL);
        for (int i = 0; i < 9; i++) CHECK(v[i] == (float)(i + 1));
        nb_plan_free(p);
    }
    nb_graph_free(g);
}

NB_TEST(test_layout_concat_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *xs[2];
    xs[0] = nb_param(g, "a", 2, (int64_t[]){2, 3});
    xs[1] = nb_param(g, "b", 2, (int64_t[]){3, 3});
    CHECK(nb_concat(g, 2, xs, 1) == NULL); /* axis 0 differs */
    CHECK(strstr(nb_last_error(), "concat") && strstr(nb_last_error(), "[2,3]") &&
          strstr(nb_last_error(), "[3,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    xs[0] = nb_param(g, "a", 2, (int64_t[]){2, 3});
    xs[1] = nb_param(g, "b", 3, (int64_t[]){2, 3, 1});
    CHECK(nb_concat(g, 2, xs, 0) == NULL); /* ndim differs */
    CHECK(strstr(nb_last_error(), "concat") && strstr(nb_last_error(), "[2,3,1]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    xs[0] = nb_param(g, "a", 2, (int64_t[]){2, 3});
    xs[1] = nb_param(g, "b", 2, (int64_t[]){2, 3});
    CHECK(nb_concat(g, 2, xs, 2) == NULL); /* axis out of range */
    CHECK(strstr(nb_last_error(), "concat") && strstr(nb_last_error(), "[2,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    CHECK(nb_concat(g, 0, xs, 0) == NULL);
    CHECK(strstr(nb_last_error(), "concat"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    /* a NULL among the inputs: NULL, first message kept */
    g = nb_graph_create();
    xs[0] = nb_param(g, "a", 2, (int64_t[]){2, 3});
    xs[1] = NULL;
    CHECK(nb_transpose(g, xs[0], 0, 5) == NULL);
    CHECK(nb_concat(g, 2, xs, 0) == NULL);
    CHECK(strstr(nb_last_error(), "transpose"));
    nb_graph_free(g);
}

/* ---- slice ---- */

NB_TEST(test_layout_slice_gradcheck)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){4, 3}, -1, 1);
    CHECK_GRAD(g, nb_slice(g, x, 0, 1, 3));
    CHECK_GRAD(g, nb_slice(g, x, -1, -2, 3));  /* columns 1..2 */
    CHECK_GRAD(g, nb_slice(g, x, 1, 0, 1));    /* one column */
    CHECK_GRAD(g, nb_slice(g, x, 0, 0, 4));    /* everything */
    CHECK_GRAD(g, nb_slice(g, x, 0, -1, 4));   /* the last row */
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_test_param(g, "x", 3, (int64_t[]){2, 5, 3}, -1, 1);
    CHECK_GRAD(g, nb_slice(g, x, 1, 1, -1));
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){3, 2}, -1, 1);
    /* two overlapping slices of one input feed one product: gradients add up */
    nb_node *a = nb_slice(g, x, 1, 0, 3), *b = nb_slice(g, x, 1, 2, 5);
    CHECK_GRAD(g, nb_matmul(g, nb_add(g, a, b), w));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){1, 1}, -1, 1);
    CHECK_GRAD(g, nb_slice(g, x, 0, 0, 1));
    nb_graph_free(g);
}

NB_TEST(test_layout_slice_forward)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 3, (int64_t[]){2, 5, 3}, -1, 1);
    struct { int axis; int64_t start, end, rs, re; } c[] = {
        {0, 1, 2, 1, 2}, {1, 1, 4, 1, 4}, {1, -3, -1, 2, 4}, {2, 2, 3, 2, 3}, {-1, 0, -1, 0, 2},
        {-2, -5, 5, 0, 5},
    };
    const int nc = (int)(sizeof c / sizeof c[0]);
    nb_node *y[6];
    for (int k = 0; k < nc; k++) {
        y[k] = nb_slice(g, x, c[k].axis, c[k].start, c[k].end);
        CHECK_PTR(y[k]);
    }
    nb_plan *p = run_forward(g, 1);
    if (p) {
        const int64_t xs[3] = {2, 5, 3};
        const float *xv = nb_node_data(x);
        for (int k = 0; k < nc; k++) {
            int ax = c[k].axis < 0 ? c[k].axis + 3 : c[k].axis;
            int64_t ys[3] = {2, 5, 3};
            ys[ax] = c[k].re - c[k].rs;
            check_shape(__FILE__, __LINE__, p, y[k], 3, ys);
            const float *v = nb_plan_data(p, y[k], NULL);
            for (int64_t i = 0; i < ys[0]; i++)
                for (int64_t j = 0; j < ys[1]; j++)
                    for (int64_t l = 0; l < ys[2]; l++) {
                        int64_t ii = i + (ax == 0 ? c[k].rs : 0), jj = j + (ax == 1 ? c[k].rs : 0),
                                ll = l + (ax == 2 ? c[k].rs : 0);
                        CHECK(v[(i * ys[1] + j) * ys[2] + l] == xv[(ii * xs[1] + jj) * xs[2] + ll]);
                    }
        }
        nb_plan_free(p);
    }
    nb_graph_free(g);

    /* batch-sized input: slicing the feature axis, and the first sample */
    g = nb_graph_create();
    x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 6});
    nb_node *f = nb_slice(g, x, 1, 2, -1), *s0 = nb_slice(g, x, 0, 0, 1);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(f, s) == 2 && s[0] == NB_BATCH && s[1] == 3);
    p = nb_plan_create(g, NULL, 3, 0);
    CHECK_PTR(p);
    if (p) {
        float v[18];
        for (int i = 0; i < 18; i++) v[i] = (float)i;
        CHECK_OK(nb_plan_set_input(p, x, v, 18));
        CHECK_OK(nb_plan_forward(p));
        CHECK_SHAPE(p, f, 2, {3, 3});
        CHECK_SHAPE(p, s0, 2, {1, 6});
        const float *fv = nb_plan_data(p, f, NULL), *sv = nb_plan_data(p, s0, NULL);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) CHECK(fv[i * 3 + j] == v[i * 6 + 2 + j]);
        for (int j = 0; j < 6; j++) CHECK(sv[j] == v[j]);
        nb_plan_free(p);
    }
    nb_graph_free(g);
}

NB_TEST(test_layout_slice_errors)
{
    static const struct { int axis; int64_t start, end; } bad[] = {
        {1, 2, 2},   /* empty */
        {1, 3, 1},   /* reversed */
        {1, 0, 5},   /* end past the axis */
        {1, -5, 2},  /* start before the axis */
        {2, 0, 1},   /* no such axis */
        {-3, 0, 1},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_param(g, "x", 2, (int64_t[]){3, 4});
        CHECK(nb_slice(g, x, bad[k].axis, bad[k].start, bad[k].end) == NULL);
        char want[64];
        snprintf(want, sizeof want, "[%lld, %lld)", (long long)bad[k].start, (long long)bad[k].end);
        CHECK(strstr(nb_last_error(), "slice") && strstr(nb_last_error(), "[3,4]") &&
              strstr(nb_last_error(), want));
        CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
        nb_graph_free(g);
    }
    /* a range that only fits at batch size 1 fails at build time */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 4});
    CHECK(nb_slice(g, x, 0, 1, 2) == NULL);
    CHECK(strstr(nb_last_error(), "slice"));
    nb_graph_free(g);
}

NB_TEST(test_layout_slice_to_end_of_batch)
{
    /* the last sample of any batch: end NB_END follows the batch size */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 3});
    nb_node *y = nb_slice(g, x, 0, -1, NB_END);
    CHECK_PTR(y);
    nb_plan *p = nb_plan_create(g, NULL, 4, 0);
    CHECK_PTR(p);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_plan_shape(p, y, s) == 2 && s[0] == 1 && s[1] == 3);
    float in[12];
    for (int i = 0; i < 12; i++) in[i] = (float)i;
    CHECK_OK(nb_plan_set_input(p, x, in, 12));
    CHECK_OK(nb_plan_forward(p));
    const float *v = nb_plan_data(p, y, NULL);
    CHECK(v[0] == 9 && v[1] == 10 && v[2] == 11);
    nb_plan_free(p);
    nb_graph_free(g);
}
