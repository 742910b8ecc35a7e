/*
 * test_linear.c - linear (y = x W^T + b): gradient checks over several
 * shapes with and without bias, forward values against a double-precision
 * loop, batch-sized inputs, and shape errors that name both shapes.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* x [lead..., in], W [out, in], bias or not */
typedef struct {
    int nlead;
    int64_t lead[3];
    int in, out, bias;
} lin_case;

static const lin_case cases[] = {
    {1, {3}, 4, 5, 1},          /* the usual [N, in] */
    {1, {3}, 4, 5, 0},          /* no bias */
    {0, {0}, 4, 3, 1},          /* a single vector x [in] */
    {2, {2, 3}, 4, 2, 1},       /* [B, T, in] */
    {3, {2, 2, 2}, 3, 3, 0},    /* three leading axes */
    {1, {1}, 1, 1, 1},          /* 1x1 */
    {1, {6}, 7, 1, 1},          /* one output */
};
#define N_CASES (sizeof cases / sizeof cases[0])

static nb_node *build(nb_graph *g, const lin_case *c, nb_node **px, nb_node **pw, nb_node **pb)
{
    int64_t xs[4];
    for (int k = 0; k < c->nlead; k++) xs[k] = c->lead[k];
    xs[c->nlead] = c->in;
    nb_node *x = nb_test_param(g, "x", c->nlead + 1, xs, -1, 1);
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){c->out, c->in}, -1, 1);
    nb_node *b = c->bias ? nb_test_param(g, "b", 1, (int64_t[]){c->out}, -1, 1) : NULL;
    *px = x;
    *pw = w;
    *pb = b;
    return nb_linear(g, x, w, b);
}

NB_TEST(test_linear_gradcheck)
{
    for (size_t i = 0; i < N_CASES; i++) {
        nb_graph *g = nb_graph_create();
        nb_node *x, *w, *b;
        nb_node *y = build(g, &cases[i], &x, &w, &b);
        CHECK_GRAD(g, y);
        nb_graph_free(g);
    }
}

NB_TEST(test_linear_forward)
{
    for (size_t i = 0; i < N_CASES; i++) {
        const lin_case *c = &cases[i];
        nb_graph *g = nb_graph_create();
        nb_node *x, *w, *b;
        nb_node *y = build(g, c, &x, &w, &b);
        CHECK_PTR(y);
        CHECK(strcmp(nb_node_op(y), "linear") == 0);
        CHECK(nb_node_input_count(y) == (c->bias ? 3 : 2));
        int64_t s[NB_MAX_DIMS];
        CHECK(nb_node_shape(y, s) == c->nlead + 1 && s[c->nlead] == c->out);
        nb_plan *p = nb_plan_create(g, NULL, 1, 0);
        CHECK_PTR(p);
        CHECK_OK(nb_plan_forward(p));
        size_t count = 0;
        const float *got = nb_plan_data(p, y, &count);
        const float *xv = nb_node_data(x), *wv = nb_node_data(w);
        const float *bv = b ? nb_node_data(b) : NULL;
        size_t rows = nb_node_numel(x) / (size_t)c->in;
        CHECK(count == rows * (size_t)c->out);
        for (size_t r = 0; r < rows && count == rows * (size_t)c->out; r++)
            for (int o = 0; o < c->out; o++) {
                double ref = bv ? bv[o] : 0.0;
                for (int k = 0; k < c->in; k++)
                    ref += (double)xv[r * c->in + k] * wv[o * c->in + k];
                CHECK_NEAR(got[r * c->out + o], ref, 1e-5);
            }
        nb_plan_free(p);
        nb_graph_free(g);
    }
}

NB_TEST(test_linear_by_hand)
{
    /* x = [[1, 2]], W = [[1, 0], [0, 1], [1, 1]], b = [0.5, -1, 2]:
     * y = [1.5, 1, 5]; with dy = [1, 2, 3]: dx = dy W = [4, 5],
     * dW = dy^T x = [[1, 2], [2, 4], [3, 6]], db = dy */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){1, 2});
    nb_node *w = nb_param(g, "w", 2, (int64_t[]){3, 2});
    nb_node *b = nb_param(g, "b", 1, (int64_t[]){3});
    memcpy(nb_node_data(x), (float[]){1, 2}, 2 * sizeof(float));
    memcpy(nb_node_data(w), (float[]){1, 0, 0, 1, 1, 1}, 6 * sizeof(float));
    memcpy(nb_node_data(b), (float[]){0.5f, -1, 2}, 3 * sizeof(float));
    nb_node *y = nb_linear(g, x, w, b);
    nb_plan *p = nb_plan_create(g, y, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    const float *yv = nb_plan_data(p, y, NULL);
    CHECK(yv[0] == 1.5f && yv[1] == 1.0f && yv[2] == 5.0f);
    CHECK_OK(nb_plan_backward(p, (float[]){1, 2, 3}));
    const float *dx = nb_node_grad(x), *dw = nb_node_grad(w), *db = nb_node_grad(b);
    CHECK(dx[0] == 4 && dx[1] == 5);
    const float want_dw[6] = {1, 2, 2, 4, 3, 6};
    for (int i = 0; i < 6; i++) CHECK(dw[i] == want_dw[i]);
    CHECK(db[0] == 1 && db[1] == 2 && db[2] == 3);
    /* gradients accumulate */
    CHECK_OK(nb_plan_backward(p, (float[]){1, 2, 3}));
    CHECK(dx[0] == 8 && dw[5] == 12 && db[2] == 6);
    nb_plan_free(p);
    nb_graph_free(g);
}

static nb_status fill_x(nb_plan *p, void *user)
{
    size_t n = 0;
    float *x = nb_plan_data(p, user, &n);
    for (size_t i = 0; i < n; i++) x[i] = 0.25f * (float)(i % 9) - 1.0f;
    return NB_OK;
}

NB_TEST(test_linear_batch)
{
    /* x [batch, 2, 3] as an input: the row count comes from the plan */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 3, (int64_t[]){NB_BATCH, 2, 3});
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){4, 3}, -1, 1);
    nb_node *b = nb_test_param(g, "b", 1, (int64_t[]){4}, -1, 1);
    nb_node *y = nb_tanh(g, nb_linear(g, x, w, b));
    CHECK_PTR(y);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(y, s) == 3 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 4);
    nb_gradcheck_opts o = {0};
    o.batch = 3;
    o.seed = 9;
    o.fill_inputs = fill_x;
    o.user = x;
    CHECK_OK(nb_gradcheck(g, y, &o, NULL));
    nb_graph_free(g);
}

NB_TEST(test_linear_errors)
{
    /* in_features differ: both shapes named */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    nb_node *w = nb_param(g, "w", 2, (int64_t[]){5, 3});
    CHECK(nb_linear(g, x, w, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "linear") && strstr(nb_last_error(), "[3,4]") &&
          strstr(nb_last_error(), "[5,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* the weight is not 2-D */
    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    w = nb_param(g, "w", 1, (int64_t[]){4});
    CHECK(nb_linear(g, x, w, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "linear") && strstr(nb_last_error(), "[3,4]") &&
          strstr(nb_last_error(), "[4]"));
    nb_graph_free(g);

    /* the bias does not match out_features */
    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    w = nb_param(g, "w", 2, (int64_t[]){5, 4});
    nb_node *b = nb_param(g, "b", 1, (int64_t[]){4});
    CHECK(nb_linear(g, x, w, b) == NULL);
    CHECK(strstr(nb_last_error(), "linear") && strstr(nb_last_error(), "bias") &&
          strstr(nb_last_error(), "[5,4]") && strstr(nb_last_error(), "[4]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* a 2-D bias */
    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    w = nb_param(g, "w", 2, (int64_t[]){5, 4});
    b = nb_param(g, "b", 2, (int64_t[]){1, 5});
    CHECK(nb_linear(g, x, w, b) == NULL);
    CHECK(strstr(nb_last_error(), "[1,5]") != NULL);
    nb_graph_free(g);

    /* a 0-d input */
    g = nb_graph_create();
    x = nb_scalar(g, 1.0f);
    w = nb_param(g, "w", 2, (int64_t[]){1, 1});
    CHECK(nb_linear(g, x, w, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "linear") && strstr(nb_last_error(), "[]"));
    /* NULL inputs: NULL back, message untouched */
    CHECK(nb_linear(g, NULL, w, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "linear") != NULL);
    nb_graph_free(g);
}
