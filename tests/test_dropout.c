/*
 * test_dropout.c - dropout: the share of zeros over many elements, the
 * scaling of the kept ones, identity in evaluation mode and for p = 0,
 * masks repeatable from the plan's seed and the same whatever the partition
 * of the batch (data-parallel training), gradients (checked in training
 * mode: gradcheck reseeds the plan before each pass, so the mask is fixed)
 * and argument errors.
 */
#include "test.h"

#include <string.h>

#define BIG 10000

/* x [100, 100] constant in [1, 2) (never 0) and y = dropout(x, p) */
static nb_node *big_case(nb_graph *g, float p, nb_node **px)
{
    static float xv[BIG];
    nb_rng r;
    nb_rng_seed(&r, 77);
    nb_fill_uniform(xv, BIG, 1.0f, 2.0f, &r);
    *px = nb_const(g, "x", 2, (int64_t[]){100, 100}, xv);
    return nb_dropout(g, *px, p);
}

NB_TEST(test_dropout_fraction_and_scale)
{
    const float ps[] = {0.1f, 0.3f, 0.5f, 0.9f};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        const float p = ps[k];
        nb_graph *g = nb_graph_create();
        nb_node *x;
        nb_node *y = big_case(g, p, &x);
        CHECK_PTR(y);
        CHECK(strcmp(nb_node_op(y), "dropout") == 0);
        nb_plan *pl = nb_plan_create(g, NULL, 1, 0);
        CHECK_PTR(pl);
        nb_plan_set_training(pl, 1);
        nb_plan_seed(pl, 100 + k);
        CHECK_OK(nb_plan_forward(pl));
        const float *yv = nb_plan_data(pl, y, NULL), *xv = nb_node_data(x);
        const float scale = (float)(1.0 / (1.0 - (double)p));
        size_t zeros = 0, bad = 0;
        for (size_t i = 0; i < BIG; i++) {
            if (yv[i] == 0.0f) zeros++;
            else if (yv[i] != xv[i] * scale) bad++;
        }
        CHECK(bad == 0);
        /* binomial: 5 standard deviations is at most 0.025 here */
        double frac = (double)zeros / BIG, sd = sqrt(p * (1.0 - p) / BIG);
        CHECK_NEAR(frac, p, 5 * sd);
        /* the mean is preserved in expectation */
        double sx = 0, sy = 0;
        for (size_t i = 0; i < BIG; i++) {
            sx += xv[i];
            sy += yv[i];
        }
        CHECK_NEAR(sy / sx, 1.0, 0.05 * sqrt(p / (1 - p)) + 0.01);
        nb_plan_free(pl);
        nb_graph_free(g);
    }
}

NB_TEST(test_dropout_eval_and_p0)
{
    /* evaluation mode: y == x, bit for bit, and nothing is drawn */
    nb_graph *g = nb_graph_create();
    nb_node *x;
    nb_node *y = big_case(g, 0.5f, &x);
    nb_plan *pl = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(pl);
    nb_plan_set_training(pl, 0);
    nb_rng before = *nb_plan_rng(pl);
    CHECK_OK(nb_plan_forward(pl));
    CHECK(memcmp(nb_plan_data(pl, y, NULL), nb_node_data(x), BIG * sizeof(float)) == 0);
    CHECK(memcmp(&before, nb_plan_rng(pl), sizeof before) == 0);
    nb_plan_free(pl);
    nb_graph_free(g);

    /* p = 0 in training mode: identity too */
    g = nb_graph_create();
    y = big_case(g, 0.0f, &x);
    pl = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(pl);
    nb_plan_set_training(pl, 1);
    CHECK_OK(nb_plan_forward(pl));
    CHECK(memcmp(nb_plan_data(pl, y, NULL), nb_node_data(x), BIG * sizeof(float)) == 0);
    nb_plan_free(pl);
    nb_graph_free(g);
}

NB_TEST(test_dropout_seed)
{
    static float first[BIG];
    nb_graph *g = nb_graph_create();
    nb_node *x;
    nb_node *y = big_case(g, 0.4f, &x);
    nb_plan *pl = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(pl);
    nb_plan_set_training(pl, 1);
    nb_plan_seed(pl, 5);
    CHECK_OK(nb_plan_forward(pl));
    const float *yv = nb_plan_data(pl, y, NULL);
    memcpy(first, yv, sizeof first);
    /* the next pass draws a new mask */
    CHECK_OK(nb_plan_forward(pl));
    CHECK(memcmp(first, yv, sizeof first) != 0);
    /* the same seed again: the same mask */
    nb_plan_seed(pl, 5);
    CHECK_OK(nb_plan_forward(pl));
    CHECK(memcmp(first, yv, sizeof first) == 0);
    /* another plan of the same graph with the same seed: the same mask */
    nb_plan *p2 = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p2);
    nb_plan_set_training(p2, 1);
    nb_plan_seed(p2, 5);
    CHECK_OK(nb_plan_forward(p2));
    CHECK(memcmp(first, nb_plan_data(p2, y, NULL), sizeof first) == 0);
    /* another seed: another mask */
    nb_plan_seed(p2, 6);
    CHECK_OK(nb_plan_forward(p2));
    CHECK(memcmp(first, nb_plan_data(p2, y, NULL), sizeof first) != 0);
    nb_plan_free(p2);
    nb_plan_free(pl);
    nb_graph_free(g);
}

NB_TEST(test_dropout_gradcheck)
{
    const struct { int ndim; int64_t shape[3]; float p; } cs[] = {
        {2, {4, 5}, 0.5f}, {1, {7}, 0.2f}, {3, {2, 3, 4}, 0.7f}, {2, {3, 3}, 0.0f},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_test_param(g, "x", cs[k].ndim, cs[k].shape, -2, 2);
        CHECK_GRAD(g, nb_dropout(g, x, cs[k].p));
        nb_graph_free(g);
    }
    /* dropout between two differentiable ops */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){3, 4}, -1, 1);
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){4, 2}, -1, 1);
    CHECK_GRAD(g, nb_matmul(g, nb_dropout(g, nb_tanh(g, x), 0.3f), w));
    nb_graph_free(g);
}

NB_TEST(test_dropout_backward)
{
    /* training: dx = mask / (1 - p) * dy, the mask being where y != 0 */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){10, 10}, 1, 2);
    nb_node *y = nb_dropout(g, x, 0.25f);
    nb_plan *pl = nb_plan_create(g, y, 1, NB_PLAN_TRAIN | NB_PLAN_KEEP);
    CHECK_PTR(pl);
    float seed[100];
    for (int i = 0; i < 100; i++) seed[i] = (float)(i % 5) - 2.0f;
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(pl));
    CHECK_OK(nb_plan_backward(pl, seed));
    const float *yv = nb_plan_data(pl, y, NULL), *dx = nb_node_grad(x);
    int kept = 0, bad = 0;
    for (int i = 0; i < 100; i++) {
        float want = yv[i] != 0.0f ? seed[i] * (1.0f / 0.75f) : 0.0f;
        kept += yv[i] != 0.0f;
        if (fabsf(dx[i] - want) > 1e-6f) bad++;
    }
    CHECK(bad == 0);
    CHECK(kept > 50 && kept < 95);
    /* evaluation: dx = dy */
    nb_plan_set_training(pl, 0);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(pl));
    CHECK_OK(nb_plan_backward(pl, seed));
    CHECK(memcmp(nb_plan_data(pl, y, NULL), nb_node_data(x), 100 * sizeof(float)) == 0);
    CHECK(memcmp(dx, seed, sizeof seed) == 0);
    nb_plan_free(pl);
    nb_graph_free(g);
}

NB_TEST(test_dropout_errors)
{
    const float bad[] = {1.0f, -0.1f, 1.5f, NAN, INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_param(g, "x", 1, (int64_t[]){3});
        CHECK(nb_dropout(g, x, bad[k]) == NULL);
        CHECK(strstr(nb_last_error(), "dropout") && strstr(nb_last_error(), "p"));
        CHECK(nb_graph_status(g) == NB_ERR_ARG);
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_create();
    CHECK(nb_dropout(g, NULL, 0.5f) == NULL);
    CHECK(nb_graph_status(g) == NB_OK);
    nb_graph_free(g);
}

/* Data-parallel training splits a global batch across processes: a sample's
 * mask must not depend on where it lands. Two plans of 3 and 5 samples at
 * batch offsets 0 and 3 draw exactly the masks of one plan of 8 - with the
 * batch axis first ([N, 4, 6]) and inside ([4, N, 6]). */
static void partition_case(int batch_axis)
{
    const int64_t shape[3] = {batch_axis == 0 ? NB_BATCH : 4, batch_axis == 0 ? 4 : NB_BATCH, 6};
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 3, shape);
    nb_node *y = nb_dropout(g, x, 0.5f);
    CHECK_PTR(y);
    if (!y) return;
    nb_plan *full = nb_plan_create(g, NULL, 8, 0);
    nb_plan *part[2] = {nb_plan_create(g, NULL, 3, 0), nb_plan_create(g, NULL, 5, 0)};
    CHECK_PTR(full);
    CHECK_PTR(part[0]);
    CHECK_PTR(part[1]);
    /* element (i, j, k) of the global [8, 4, 6] (or [4, 8, 6]) holds 1 + its index */
    size_t n;
    float *xf = nb_plan_data(full, x, &n);
    for (size_t i = 0; i < n; i++) xf[i] = 1.0f + (float)i;
    nb_plan_set_training(full, 1);
    nb_plan_seed(full, 11);
    nb_plan_set_step(full, 7);
    CHECK_OK(nb_plan_forward(full));
    CHECK(nb_plan_step(full) == 8);
    const float *yf = nb_plan_data(full, y, NULL);
    int off = 0, bad = 0;
    for (int k = 0; k < 2; k++) {
        int b = k ? 5 : 3;
        float *xp = nb_plan_data(part[k], x, NULL);
        /* the shard's values, then its forward pass */
        for (int i = 0; i < (batch_axis == 0 ? b : 4); i++)
            for (int j = 0; j < (batch_axis == 0 ? 4 : b); j++)
                for (int l = 0; l < 6; l++) {
                    size_t at = batch_axis == 0 ? ((size_t)(off + i) * 4 + (size_t)j) * 6 + (size_t)l
                                                : ((size_t)i * 8 + (size_t)(off + j)) * 6 + (size_t)l;
                    size_t local = batch_axis == 0 ? ((size_t)i * 4 + (size_t)j) * 6 + (size_t)l
                                                   : ((size_t)i * (size_t)b + (size_t)j) * 6 + (size_t)l;
                    xp[local] = xf[at];
                }
        nb_plan_set_training(part[k], 1);
        nb_plan_seed(part[k], 11);
        nb_plan_set_step(part[k], 7);
        nb_plan_set_batch_offset(part[k], off);
        CHECK_OK(nb_plan_forward(part[k]));
        const float *yp = nb_plan_data(part[k], y, NULL);
        for (size_t i = 0; i < (size_t)b * 24; i++) {
            /* xp[i] holds 1 + its global index: find the global output */
            size_t at = (size_t)xp[i] - 1;
            bad += yp[i] != yf[at];
        }
        off += b;
    }
    CHECK(bad == 0);
    /* another step, or the same shard at another offset: other masks */
    float first[72];
    memcpy(first, nb_plan_data(part[0], y, NULL), sizeof first);
    nb_plan_set_step(part[0], 8);
    CHECK_OK(nb_plan_forward(part[0]));
    CHECK(memcmp(first, nb_plan_data(part[0], y, NULL), sizeof first) != 0);
    nb_plan_set_step(part[0], 7);
    nb_plan_set_batch_offset(part[0], 1);
    CHECK_OK(nb_plan_forward(part[0]));
    CHECK(memcmp(first, nb_plan_data(part[0], y, NULL), sizeof first) != 0);
    nb_plan_free(full);
    nb_plan_free(part[0]);
    nb_plan_free(part[1]);
    nb_graph_free(g);
}

NB_TEST(test_dropout_partition)
{
    partition_case(0);
    partition_case(1);
}
