/*
 * test_matmul.c - matmul: gradient checks on plain, batched, broadcast and
 * size-1 shapes (both the one-GEMM fast path and the per-batch path), forward
 * values against a naive triple loop, batch-sized inputs, and shape errors.
 */
#include "test.h"

#include <string.h>

/* a @ b shape pairs: 2-D, M/N/K = 1, batched, broadcast batch, b 2-D with a
 * batched (fast path), b with all-1 batch axes (fast path), a 2-D against a
 * batched b, and 4-D with broadcasting on both sides. */
static const struct { int na; int64_t a[4]; int nb; int64_t b[4]; } mshapes[] = {
    {2, {3, 4}, 2, {4, 2}},
    {2, {1, 4}, 2, {4, 3}},          /* M = 1 */
    {2, {3, 4}, 2, {4, 1}},          /* N = 1 */
    {2, {3, 1}, 2, {1, 2}},          /* K = 1 */
    {2, {1, 1}, 2, {1, 1}},
    {3, {2, 3, 4}, 3, {2, 4, 5}},    /* batched */
    {4, {2, 1, 3, 4}, 3, {5, 4, 2}}, /* broadcast batch -> [2,5,3,2] */
    {3, {2, 3, 4}, 2, {4, 2}},       /* b 2-D, a batched: fast path */
    {4, {2, 2, 1, 3}, 2, {3, 2}},    /* fast path, M = 1 */
    {3, {2, 3, 4}, 3, {1, 4, 2}},    /* b batch all 1: fast path */
    {2, {3, 4}, 4, {1, 1, 4, 2}},    /* a 2-D, b batch all 1: fast path, out [1,1,3,2] */
    {2, {3, 4}, 3, {2, 4, 2}},       /* a 2-D broadcast over b's batch */
    {3, {1, 3, 4}, 3, {2, 4, 1}},    /* a batch 1 broadcast, N = 1 */
    {4, {2, 1, 3, 2}, 4, {1, 2, 2, 3}},
};
#define N_MSHAPES (sizeof mshapes / sizeof mshapes[0])

/* Naive reference: c = a @ b with NumPy batch broadcasting, summed in double.
 * Writes c's shape into cs and returns its ndim. */
static int ref_matmul(const float *a, int na, const int64_t *as, const float *b, int nb,
                      const int64_t *bs, float *c, int64_t *cs)
{
    int nd = (na > nb ? na : nb) - 2; /* batch axes of c */
    int64_t M = as[na - 2], K = as[na - 1], N = bs[nb - 1];
    int64_t adim[8], bdim[8], nbatch = 1;
    for (int k = 0; k < nd; k++) {
        int ka = k - (nd - (na - 2)), kb = k - (nd - (nb - 2));
        adim[k] = ka >= 0 ? as[ka] : 1;
        bdim[k] = kb >= 0 ? bs[kb] : 1;
        cs[k] = adim[k] > bdim[k] ? adim[k] : bdim[k];
        nbatch *= cs[k];
    }
    cs[nd] = M;
    cs[nd + 1] = N;
    for (int64_t t = 0; t < nbatch; t++) {
        /* unravel t over c's batch axes; locate a's and b's matrices */
        int64_t rem = t, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int k = nd - 1; k >= 0; k--) {
            int64_t idx = rem % cs[k];
            rem /= cs[k];
            if (adim[k] != 1) ia += idx * sa;
            if (bdim[k] != 1) ib += idx * sb;
            sa *= adim[k];
            sb *= bdim[k];
        }
        const float *at = a + ia * M * K, *bt = b + ib * K * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += (double)at[i * K + k] * bt[k * N + j];
                c[(t * M + i) * N + j] = (float)s;
            }
    }
    return nd + 2;
}

NB_TEST(test_matmul_gradcheck)
{
    for (size_t s = 0; s < N_MSHAPES; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_test_param(g, "a", mshapes[s].na, mshapes[s].a, -1.0f, 1.0f);
        nb_node *b = nb_test_param(g, "b", mshapes[s].nb, mshapes[s].b, -1.0f, 1.0f);
        nb_node *c = nb_matmul(g, a, b);
        CHECK_GRAD(g, c);
        if (nb_graph_status(g) != NB_OK) fprintf(stderr, "    (shape pair %zu)\n", s);
        nb_graph_free(g);
    }
}

/* a constant's values from U(-1, 1) */
static void fill_const(nb_node *c, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    nb_fill_uniform(nb_node_data(c), nb_node_numel(c), -1.0f, 1.0f, &r);
}

NB_TEST(test_matmul_gradcheck_one_side)
{
    /* only one input needs a gradient: the other's g is NULL and is skipped */
    for (size_t s = 0; s < N_MSHAPES; s++)
        for (int side = 0; side < 2; side++) {
            nb_graph *g = nb_graph_create();
            nb_node *a, *b;
            if (side == 0) {
                a = nb_test_param(g, "a", mshapes[s].na, mshapes[s].a, -1.0f, 1.0f);
                b = nb_const(g, "b", mshapes[s].nb, mshapes[s].b, NULL);
                fill_const(b, 1);
            } else {
                a = nb_const(g, "a", mshapes[s].na, mshapes[s].a, NULL);
                fill_const(a, 2);
                b = nb_test_param(g, "b", mshapes[s].nb, mshapes[s].b, -1.0f, 1.0f);
            }
            CHECK_GRAD(g, nb_matmul(g, a, b));
            nb_graph_free(g);
        }
}

NB_TEST(test_matmul_same_input_twice)
{
    /* x @ x: both gradient terms accumulate into one buffer */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){3, 3}, -1, 1);
    CHECK_GRAD(g, nb_matmul(g, x, x));
    nb_graph_free(g);
    /* batched: the per-batch path with both terms in one buffer */
    g = nb_graph_create();
    x = nb_test_param(g, "x", 3, (int64_t[]){2, 3, 3}, -1, 1);
    CHECK_GRAD(g, nb_matmul(g, x, x));
    nb_graph_free(g);
}

NB_TEST(test_matmul_chain)
{
    /* two products in a row: the middle gradient comes from the arena, not a param */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 3, (int64_t[]){2, 3, 4}, -1, 1);
    nb_node *w1 = nb_test_param(g, "w1", 2, (int64_t[]){4, 5}, -1, 1);
    nb_node *w2 = nb_test_param(g, "w2", 3, (int64_t[]){2, 5, 2}, -1, 1);
    CHECK_GRAD(g, nb_matmul(g, nb_matmul(g, x, w1), w2));
    nb_graph_free(g);
}

NB_TEST(test_matmul_forward_values)
{
    for (size_t s = 0; s < N_MSHAPES; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_test_param(g, "a", mshapes[s].na, mshapes[s].a, -1.0f, 1.0f);
        nb_node *b = nb_test_param(g, "b", mshapes[s].nb, mshapes[s].b, -1.0f, 1.0f);
        nb_node *c = nb_matmul(g, a, b);
        CHECK_PTR(c);
        nb_plan *p = nb_plan_create(g, NULL, 1, 0);
        CHECK_PTR(p);
        if (!p) {
            nb_graph_free(g);
            continue;
        }
        CHECK_OK(nb_plan_forward(p));
        float ref[256];
        int64_t rs[8], ps[NB_MAX_DIMS];
        int rnd = ref_matmul(nb_node_data(a), mshapes[s].na, mshapes[s].a, nb_node_data(b),
                             mshapes[s].nb, mshapes[s].b, ref, rs);
        int pnd = nb_plan_shape(p, c, ps);
        CHECK(pnd == rnd);
        CHECK(pnd == rnd && memcmp(ps, rs, (size_t)rnd * sizeof *rs) == 0);
        size_t n = 0;
        const float *y = nb_plan_data(p, c, &n);
        size_t rn = 1;
        for (int k = 0; k < rnd; k++) rn *= (size_t)rs[k];
        CHECK(n == rn);
        for (size_t i = 0; i < n && i < rn; i++) CHECK_NEAR(y[i], ref[i], 1e-6);
        nb_plan_free(p);
        nb_graph_free(g);
    }
}

NB_TEST(test_matmul_exact_small)
{
    /* integers: every path must give the exact product */
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_const(g, "a", 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    nb_node *b = nb_const(g, "b", 2, (int64_t[]){3, 2}, (float[]){7, 8, 9, 10, 11, 12});
    nb_node *c = nb_matmul(g, a, b);
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    CHECK_OK(nb_plan_forward(p));
    const float *y = nb_plan_data(p, c, NULL);
    CHECK(y[0] == 58 && y[1] == 64 && y[2] == 139 && y[3] == 154);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* fills input "x" with 0.1 * (i % 7) - 0.3 */
static nb_status fill_x(nb_plan *p, void *user)
{
    nb_node *x = user;
    size_t n = 0;
    float *v = nb_plan_data(p, x, &n);
    for (size_t i = 0; i < n; i++) v[i] = 0.1f * (float)(i % 7) - 0.3f;
    return NB_OK;
}

NB_TEST(test_matmul_batch_input)
{
    /* x [B, 2, 3] @ w [3, 2] (fast path) and x [B, 1, 2, 3] @ v [2, 3, 2]
     * (per-batch path): w's and v's gradients sum over every sample */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 3, (int64_t[]){NB_BATCH, 2, 3});
    nb_node *w = nb_test_param(g, "w", 2, (int64_t[]){3, 2}, -1, 1);
    nb_node *y = nb_matmul(g, x, w);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(y, s) == 3 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 2);
    nb_gradcheck_opts o = {0};
    o.batch = 3;
    o.seed = 7;
    o.fill_inputs = fill_x;
    o.user = x;
    CHECK_OK(nb_gradcheck(g, y, &o, NULL));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 1, 2, 3});
    nb_node *v = nb_test_param(g, "v", 3, (int64_t[]){2, 3, 2}, -1, 1);
    y = nb_matmul(g, x, v);
    CHECK(nb_node_shape(y, s) == 4 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 2 && s[3] == 2);
    o.user = x;
    CHECK_OK(nb_gradcheck(g, y, &o, NULL));
    /* and the forward values at batch 3 */
    nb_plan *p = nb_plan_create(g, NULL, 3, 0);
    CHECK_PTR(p);
    CHECK_OK(fill_x(p, x));
    CHECK_OK(nb_plan_forward(p));
    CHECK(nb_plan_shape(p, y, s) == 4 && s[0] == 3 && s[1] == 2 && s[2] == 2 && s[3] == 2);
    float ref[24];
    int64_t rs[8];
    ref_matmul(nb_plan_data(p, x, NULL), 4, (int64_t[]){3, 1, 2, 3}, nb_node_data(v), 3,
               (int64_t[]){2, 3, 2}, ref, rs);
    const float *yv = nb_plan_data(p, y, NULL);
    for (int i = 0; i < 24; i++) CHECK_NEAR(yv[i], ref[i], 1e-6);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_matmul_shape_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_param(g, "a", 2, (int64_t[]){3, 4});
    nb_node *b = nb_param(g, "b", 2, (int64_t[]){5, 2});
    CHECK(nb_matmul(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "matmul") && strstr(nb_last_error(), "inner dimensions differ"));
    CHECK(strstr(nb_last_error(), "[3,4]") && strstr(nb_last_error(), "[5,2]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    /* NULL propagates without replacing the first message */
    CHECK(nb_matmul(g, NULL, b) == NULL);
    CHECK(strstr(nb_last_error(), "inner dimensions differ"));
    nb_graph_free(g);

    /* 1-D input */
    g = nb_graph_create();
    a = nb_param(g, "a", 1, (int64_t[]){4});
    b = nb_param(g, "b", 2, (int64_t[]){4, 2});
    CHECK(nb_matmul(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "matmul") && strstr(nb_last_error(), "[4]") &&
          strstr(nb_last_error(), "[4,2]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* batch axes that do not broadcast */
    g = nb_graph_create();
    a = nb_param(g, "a", 3, (int64_t[]){2, 3, 4});
    b = nb_param(g, "b", 3, (int64_t[]){3, 4, 5});
    CHECK(nb_matmul(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "matmul") && strstr(nb_last_error(), "broadcast") &&
          strstr(nb_last_error(), "[2,3,4]") && strstr(nb_last_error(), "[3,4,5]"));
    CHECK(nb_graph_status(g) != NB_OK);
    nb_graph_free(g);

    /* a batch axis that only fits at batch size 1 is caught when building */
    g = nb_graph_create();
    a = nb_input(g, "x", 3, (int64_t[]){NB_BATCH, 3, 4});
    b = nb_param(g, "b", 3, (int64_t[]){3, 4, 5});
    CHECK(nb_matmul(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "matmul"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);
}
