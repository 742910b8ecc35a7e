/*
 * test_embedding.c - embedding: rows copied for indices of several shapes,
 * gradients (finite differences and by hand, with repeated indices), bad
 * indices found by forward, batch-sized indices, and build errors.
 */
#include "test.h"

#include <string.h>

NB_TEST(test_embedding_gradcheck)
{
    const struct { int ndim; int64_t shape[3]; float idx[8]; } cs[] = {
        {1, {4}, {1, 3, 1, 9}},                 /* a repeated row */
        {2, {2, 3}, {0, 9, 5, 5, 5, 2}},
        {0, {0}, {7}},                          /* a single index: out [dim] */
        {3, {2, 2, 2}, {0, 1, 2, 3, 3, 2, 1, 0}},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *idx = nb_const(g, "idx", cs[k].ndim, cs[k].shape, cs[k].idx);
        nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){10, 4}, -1, 1);
        CHECK_GRAD(g, nb_embedding(g, idx, w));
        nb_graph_free(g);
    }
    /* through a non-linearity, and with a weight of one column */
    nb_graph *g = nb_graph_create();
    nb_node *idx = nb_const(g, "idx", 1, (int64_t[]){5}, (float[]){2, 0, 2, 1, 2});
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){3, 1}, -1, 1);
    CHECK_GRAD(g, nb_tanh(g, nb_embedding(g, idx, w)));
    nb_graph_free(g);
}

NB_TEST(test_embedding_forward_backward)
{
    const float iv[6] = {4, 0, 4, 2, 2, 4};
    nb_graph *g = nb_graph_create();
    nb_node *idx = nb_const(g, "idx", 2, (int64_t[]){3, 2}, iv);
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){5, 3}, -1, 1);
    nb_node *y = nb_embedding(g, idx, w);
    CHECK_PTR(y);
    CHECK(strcmp(nb_node_op(y), "embedding") == 0);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(y, s) == 3 && s[0] == 3 && s[1] == 2 && s[2] == 3);
    nb_plan *p = nb_plan_create(g, y, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    const float *yv = nb_plan_data(p, y, NULL), *wv = nb_node_data(w);
    for (int i = 0; i < 6; i++)
        CHECK(memcmp(yv + 3 * i, wv + 3 * (int)iv[i], 3 * sizeof(float)) == 0);
    /* dy[i, :] = (i + 1) * [1, 10, 100]: row 4 gets 1 + 3 + 6, row 2 gets
     * 4 + 5, row 0 gets 2, rows 1 and 3 nothing */
    float dy[18];
    for (int i = 0; i < 6; i++) {
        dy[3 * i] = (float)(i + 1);
        dy[3 * i + 1] = 10.0f * (float)(i + 1);
        dy[3 * i + 2] = 100.0f * (float)(i + 1);
    }
    CHECK_OK(nb_plan_backward(p, dy));
    const float per_row[5] = {2, 0, 9, 0, 10};
    const float *dw = nb_node_grad(w);
    for (int r = 0; r < 5; r++) {
        CHECK(dw[3 * r] == per_row[r]);
        CHECK(dw[3 * r + 1] == 10 * per_row[r]);
        CHECK(dw[3 * r + 2] == 100 * per_row[r]);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

/* forward over indices `iv` (5 of them, table of 10 rows) fails with
 * NB_ERR_VALUE and a message holding want1 and want2 */
static void check_bad(const char *file, int line, const float *iv, const char *want1,
                      const char *want2)
{
    nb_graph *g = nb_graph_create();
    nb_node *idx = nb_const(g, "idx", 1, (int64_t[]){5}, iv);
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){10, 2}, -1, 1);
    nb_node *y = nb_embedding(g, idx, w);
    nb_plan *p = y ? nb_plan_create(g, NULL, 1, 0) : NULL;
    if (!p) {
        nb_test_fail(file, line, "build failed: %s", nb_last_error());
    } else {
        nb_status st = nb_plan_forward(p);
        const char *msg = nb_last_error();
        if (st != NB_ERR_VALUE || !strstr(msg, "embedding") || !strstr(msg, want1) ||
            !strstr(msg, want2))
            nb_test_fail(file, line, "forward -> %s: '%s'; expected bad value naming '%s', '%s'",
                         nb_status_str(st), msg, want1, want2);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_embedding_bad_index)
{
    check_bad(__FILE__, __LINE__, (float[]){0, 1, 9, 12, 2},
              "embedding: index 12 at position 3 is outside [0, 10)", "");
    check_bad(__FILE__, __LINE__, (float[]){0, 10, 1, 1, 1}, "index 10 at position 1", "[0, 10)");
    check_bad(__FILE__, __LINE__, (float[]){-1, 0, 0, 0, 0}, "index -1 at position 0", "[0, 10)");
    check_bad(__FILE__, __LINE__, (float[]){0, 1, 2, NAN, 4}, "position 3", "nan");
    check_bad(__FILE__, __LINE__, (float[]){0, 1, 2, 3, 2.5f}, "index 2.5 at position 4",
              "integer");
    check_bad(__FILE__, __LINE__, (float[]){INFINITY, 1, 2, 3, 4}, "position 0", "outside");
}

static nb_status fill_idx(nb_plan *p, void *user)
{
    size_t n = 0;
    float *x = nb_plan_data(p, user, &n);
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 3) % 7);
    return NB_OK;
}

NB_TEST(test_embedding_batch)
{
    nb_graph *g = nb_graph_create();
    nb_node *idx = nb_input(g, "idx", 2, (int64_t[]){NB_BATCH, 2});
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){7, 3}, -1, 1);
    nb_node *y = nb_embedding(g, idx, w);
    CHECK_PTR(y);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(y, s) == 3 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 3);
    nb_gradcheck_opts o = {0};
    o.batch = 5;
    o.seed = 2;
    o.fill_inputs = fill_idx;
    o.user = idx;
    CHECK_OK(nb_gradcheck(g, nb_tanh(g, y), &o, NULL));
    nb_graph_free(g);
}

NB_TEST(test_embedding_errors)
{
    /* indices that would need a gradient */
    nb_graph *g = nb_graph_create();
    nb_node *idx = nb_param(g, "idx", 1, (int64_t[]){3});
    nb_node *w = nb_param(g, "w", 2, (int64_t[]){4, 2});
    CHECK(nb_embedding(g, idx, w) == NULL);
    CHECK(strstr(nb_last_error(), "embedding") && strstr(nb_last_error(), "indices"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    /* a weight that is not 2-D */
    g = nb_graph_create();
    idx = nb_const(g, "idx", 1, (int64_t[]){3}, NULL);
    w = nb_param(g, "w", 3, (int64_t[]){4, 2, 2});
    CHECK(nb_embedding(g, idx, w) == NULL);
    CHECK(strstr(nb_last_error(), "embedding") && strstr(nb_last_error(), "[3]") &&
          strstr(nb_last_error(), "[4,2,2]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* no room for the extra axis */
    g = nb_graph_create();
    idx = nb_const(g, "idx", NB_MAX_DIMS, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, NULL);
    w = nb_param(g, "w", 2, (int64_t[]){4, 2});
    CHECK(nb_embedding(g, idx, w) == NULL);
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    /* NULL inputs: NULL back */
    CHECK(nb_embedding(g, NULL, w) == NULL);
    nb_graph_free(g);
}
