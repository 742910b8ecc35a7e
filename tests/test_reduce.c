/*
 * test_reduce.c - sum, mean, max: gradient checks over 0-d to 4-D inputs,
 * negative, size-1 and all axes, keepdims on and off; forward values and
 * output shapes against a naive double reference; max's tie and NaN rules;
 * batch axes sized by the plan; bad axes.
 */
#include "test.h"

#include <string.h>

typedef nb_node *(*reduce_fn)(nb_graph *, nb_node *, int, const int *, int);

static const struct { const char *name; reduce_fn fn; } reducers[] = {
    {"sum", nb_sum}, {"mean", nb_mean}, {"max", nb_max},
};

/* naxes 0 reduces every axis */
static const struct {
    int ndim;
    int64_t shape[4];
    int naxes;
    int axes[4];
    int keepdims;
} rcases[] = {
    {0, {0}, 0, {0}, 0},                 /* 0-d in, 0-d out */
    {1, {5}, 0, {0}, 0},                 /* 1-D, all axes -> 0-d */
    {1, {5}, 1, {-1}, 1},                /* negative axis, keepdims -> [1] */
    {1, {1}, 1, {0}, 0},                 /* size-1 only axis */
    {2, {3, 4}, 1, {0}, 0},
    {2, {3, 4}, 1, {1}, 1},
    {2, {3, 4}, 2, {1, 0}, 1},           /* every axis, listed out of order */
    {2, {4, 1}, 1, {-1}, 0},             /* size-1 last axis */
    {3, {2, 1, 3}, 1, {1}, 0},           /* size-1 middle axis */
    {3, {2, 3, 4}, 2, {0, 2}, 0},
    {3, {2, 3, 4}, 1, {-2}, 1},
    {4, {2, 3, 2, 3}, 2, {1, 3}, 1},
    {4, {2, 3, 2, 3}, 2, {-4, -1}, 0},
    {4, {3, 1, 2, 4}, 0, {0}, 1},        /* all axes with keepdims -> [1,1,1,1] */
    {4, {2, 2, 3, 2}, 3, {0, 1, 2}, 0},  /* all but the last */
};
#define N_RCASES (sizeof rcases / sizeof rcases[0])

/* A parameter whose values are distinct and at least 0.05 apart (a shuffled
 * ladder), so a +-1e-2 gradcheck step never changes which element is the max. */
static nb_node *ladder_param(nb_graph *g, const char *name, int ndim, const int64_t *shape)
{
    nb_node *p = nb_param(g, name, ndim, shape);
    if (!p) return NULL;
    float *x = nb_node_data(p);
    size_t n = nb_node_numel(p);
    nb_rng r;
    nb_rng_seed(&r, 77 + n);
    for (size_t i = 0; i < n; i++) x[i] = 0.05f * (float)i - 0.025f * (float)n;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)nb_rng_below(&r, i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    return p;
}

/* The case's bitmask of reduced axes. */
static unsigned case_mask(size_t c)
{
    int nd = rcases[c].ndim;
    if (rcases[c].naxes == 0) return (1u << nd) - 1;
    unsigned m = 0;
    for (int k = 0; k < rcases[c].naxes; k++) {
        int a = rcases[c].axes[k] < 0 ? rcases[c].axes[k] + nd : rcases[c].axes[k];
        m |= 1u << a;
    }
    return m;
}

/* Naive reference: op (0 sum, 1 mean, 2 max) of x (shape nd, dims) over the
 * axes of mask, into ref (output order, which keepdims does not change). */
static size_t reduce_ref(int op, const float *x, int nd, const int64_t *dims, unsigned mask,
                         double *ref)
{
    size_t nin = 1, nout = 1;
    for (int k = 0; k < nd; k++) {
        nin *= (size_t)dims[k];
        if (!(mask >> k & 1)) nout *= (size_t)dims[k];
    }
    for (size_t o = 0; o < nout; o++) ref[o] = op == 2 ? -INFINITY : 0.0;
    for (size_t i = 0; i < nin; i++) {
        /* unravel i, ravel the kept axes */
        size_t rest = i, o = 0, ostride = 1;
        for (int k = nd - 1; k >= 0; k--) {
            size_t ik = rest % (size_t)dims[k];
            rest /= (size_t)dims[k];
            if (!(mask >> k & 1)) {
                o += ik * ostride;
                ostride *= (size_t)dims[k];
            }
        }
        if (op == 2) {
            if (x[i] > ref[o]) ref[o] = x[i];
        } else {
            ref[o] += x[i];
        }
    }
    if (op == 1)
        for (size_t o = 0; o < nout; o++) ref[o] /= (double)(nin / nout);
    return nout;
}

#define CHECK_CLOSE(got, ref, n) check_close(__FILE__, __LINE__, (got), (ref), (n))
static void check_close(const char *file, int line, const float *got, const double *ref, size_t n)
{
    if (!got) {
        nb_test_fail(file, line, "no output buffer");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - ref[i]) <= 1e-5 * fabs(ref[i]) + 1e-7)) {
            nb_test_fail(file, line, "element %zu: got %.9g, expected %.9g", i, got[i], ref[i]);
            return;
        }
}

NB_TEST(test_reduce_gradcheck)
{
    for (size_t f = 0; f < sizeof reducers / sizeof reducers[0]; f++)
        for (size_t c = 0; c < N_RCASES; c++) {
            nb_graph *g = nb_graph_create();
            nb_node *x = ladder_param(g, "x", rcases[c].ndim, rcases[c].shape);
            nb_node *y = reducers[f].fn(g, x, rcases[c].naxes, rcases[c].axes, rcases[c].keepdims);
            CHECK_GRAD(g, y);
            nb_graph_free(g);
        }
}

NB_TEST(test_reduce_gradcheck_random_values)
{
    /* uniform values (no ladder) for the smooth reductions, and max over
     * short axes where the gaps between values stay large */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 3, (int64_t[]){3, 4, 5}, -2, 2);
    CHECK_GRAD(g, nb_sum(g, x, 1, (int[]){1}, 0));
    nb_graph_free(g);
    g = nb_graph_create();
    x = nb_test_param(g, "x", 3, (int64_t[]){3, 4, 5}, -2, 2);
    CHECK_GRAD(g, nb_mean(g, x, 2, (int[]){-1, 0}, 1));
    nb_graph_free(g);
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){4, 2}, -2, 2);
    CHECK_GRAD(g, nb_max(g, x, 1, (int[]){0}, 0));
    nb_graph_free(g);
}

NB_TEST(test_reduce_forward_and_shape)
{
    for (size_t f = 0; f < sizeof reducers / sizeof reducers[0]; f++)
        for (size_t c = 0; c < N_RCASES; c++) {
            nb_graph *g = nb_graph_create();
            nb_node *x = nb_test_param(g, "x", rcases[c].ndim, rcases[c].shape, -3, 3);
            nb_node *y = reducers[f].fn(g, x, rcases[c].naxes, rcases[c].axes, rcases[c].keepdims);
            CHECK_PTR(y);
            if (!y) {
                nb_graph_free(g);
                continue;
            }
            CHECK(strcmp(nb_node_op(y), reducers[f].name) == 0);
            /* the expected shape: reduced axes dropped, or 1 with keepdims */
            unsigned mask = case_mask(c);
            int64_t want[NB_MAX_DIMS], got[NB_MAX_DIMS];
            int nw = 0;
            for (int k = 0; k < rcases[c].ndim; k++) {
                if (!(mask >> k & 1)) want[nw++] = rcases[c].shape[k];
                else if (rcases[c].keepdims) want[nw++] = 1;
            }
            int ng = nb_node_shape(y, got);
            CHECK(ng == nw);
            if (ng == nw)
                for (int k = 0; k < nw; k++) CHECK(got[k] == want[k]);

            double ref[256];
            size_t nref = reduce_ref((int)f, nb_node_data(x), rcases[c].ndim, rcases[c].shape,
                                     mask, ref);
            nb_plan *p = nb_plan_create(g, NULL, 1, 0);
            CHECK_PTR(p);
            CHECK_OK(nb_plan_forward(p));
            size_t count = 0;
            const float *out = nb_plan_data(p, y, &count);
            CHECK(count == nref);
            CHECK_CLOSE(out, ref, nref);
            nb_plan_free(p);
            nb_graph_free(g);
        }
}

NB_TEST(test_reduce_sum_exact)
{
    /* small integers: every result is exact */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_const(g, "x", 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    nb_node *s0 = nb_sum(g, x, 1, (int[]){0}, 0), *s1 = nb_sum(g, x, 1, (int[]){-1}, 1);
    nb_node *all = nb_sum(g, x, 0, NULL, 0), *m = nb_mean(g, x, 1, (int[]){1}, 0);
    nb_node *mx = nb_max(g, x, 2, (int[]){0, 1}, 1);
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    CHECK_OK(nb_plan_forward(p));
    const float *v = nb_plan_data(p, s0, NULL);
    CHECK(v[0] == 5 && v[1] == 7 && v[2] == 9);
    v = nb_plan_data(p, s1, NULL);
    CHECK(v[0] == 6 && v[1] == 15);
    size_t n = 0;
    v = nb_plan_data(p, all, &n);
    CHECK(n == 1 && v[0] == 21);
    v = nb_plan_data(p, m, NULL);
    CHECK(v[0] == 2 && v[1] == 5);
    v = nb_plan_data(p, mx, &n);
    CHECK(n == 1 && v[0] == 6);
    int64_t shp[NB_MAX_DIMS];
    CHECK(nb_node_shape(all, shp) == 0);
    CHECK(nb_node_shape(mx, shp) == 2 && shp[0] == 1 && shp[1] == 1);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_reduce_max_ties_go_to_first)
{
    /* row 0 ties at columns 1 and 2, row 1 at 0 and 1: the gradient goes to
     * the first of each, once */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){2, 3});
    memcpy(nb_node_data(x), (float[]){1, 5, 5, 2, 2, 0}, 6 * sizeof(float));
    nb_node *y = nb_max(g, x, 1, (int[]){1}, 0);
    nb_node *all = nb_max(g, x, 0, NULL, 0);
    nb_node *loss = nb_add(g, nb_sum(g, y, 0, NULL, 0), nb_scale(g, all, 10.0f));
    nb_plan *p = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_backward(p, NULL));
    const float *dx = nb_node_grad(x);
    const float want[6] = {0, 11, 0, 1, 0, 0};
    for (int i = 0; i < 6; i++) CHECK_NEAR(dx[i], want[i], 0);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_reduce_max_nan_and_inf)
{
    /* a NaN anywhere in a slice makes its max NaN, wherever it sits; a slice
     * of -inf has max -inf */
    nb_graph *g = nb_graph_create();
    const float vals[12] = {1, NAN, 3, 2, 4, 5, 6, 7, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    nb_node *x = nb_const(g, "x", 2, (int64_t[]){3, 4}, vals);
    nb_node *rows = nb_max(g, x, 1, (int[]){1}, 0);
    nb_node *first = nb_const(g, "f", 1, (int64_t[]){3}, (float[]){NAN, 1, 2});
    nb_node *mf = nb_max(g, first, 0, NULL, 0);
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    CHECK_OK(nb_plan_forward(p));
    const float *r = nb_plan_data(p, rows, NULL);
    CHECK(isnan(r[0]));
    CHECK(r[1] == 7);
    CHECK(isinf(r[2]) && r[2] < 0);
    CHECK(isnan(nb_plan_data(p, mf, NULL)[0]));
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- batch axes: sizes and the mean's count come from the plan ---- */

static nb_status fill_batch(nb_plan *p, void *user)
{
    nb_node *x = user;
    size_t n = 0;
    float *v = nb_plan_data(p, x, &n);
    for (size_t i = 0; i < n; i++) v[i] = 0.25f * (float)i - 1.0f;
    return NB_OK;
}

NB_TEST(test_reduce_batch_axis)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 3});
    nb_node *m = nb_mean(g, x, 1, (int[]){0}, 0);       /* over the batch: [3] */
    nb_node *s = nb_sum(g, x, 1, (int[]){-1}, 1);       /* [B, 1] */
    nb_node *mx = nb_max(g, x, 0, NULL, 1);             /* [1, 1] */
    int64_t shp[NB_MAX_DIMS];
    CHECK(nb_node_shape(s, shp) == 2 && shp[0] == NB_BATCH && shp[1] == 1);
    nb_plan *p = nb_plan_create(g, NULL, 4, 0);
    CHECK_PTR(p);
    const float xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    CHECK_OK(nb_plan_set_input(p, x, xv, 12));
    CHECK_OK(nb_plan_forward(p));
    size_t n = 0;
    const float *v = nb_plan_data(p, m, &n);
    CHECK(n == 3 && v[0] == 5.5f && v[1] == 6.5f && v[2] == 7.5f);
    v = nb_plan_data(p, s, &n);
    CHECK(n == 4 && v[0] == 6 && v[3] == 33);
    CHECK(nb_plan_shape(p, s, shp) == 2 && shp[0] == 4 && shp[1] == 1);
    v = nb_plan_data(p, mx, &n);
    CHECK(n == 1 && v[0] == 12);
    nb_plan_free(p);
    nb_graph_free(g);

    /* gradients through a batch-axis mean at batch 3 */
    g = nb_graph_create();
    x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 3});
    nb_node *w = nb_test_param(g, "w", 1, (int64_t[]){3}, -1, 1);
    nb_node *y = nb_mean(g, nb_mul(g, x, w), 1, (int[]){0}, 1);
    CHECK_PTR(y);
    nb_gradcheck_opts o = {0};
    o.batch = 3;
    o.seed = 7;
    o.fill_inputs = fill_batch;
    o.user = x;
    CHECK_OK(nb_gradcheck(g, y, &o, NULL));
    nb_graph_free(g);
}

NB_TEST(test_reduce_bad_axes)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_sum(g, x, 1, (int[]){2}, 0) == NULL);
    CHECK(strstr(nb_last_error(), "sum") && strstr(nb_last_error(), "axis 2"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_mean(g, x, 1, (int[]){-3}, 1) == NULL);
    CHECK(strstr(nb_last_error(), "mean") && strstr(nb_last_error(), "-3"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_max(g, x, 2, (int[]){0, -2}, 0) == NULL);   /* the same axis twice */
    CHECK(strstr(nb_last_error(), "max") && strstr(nb_last_error(), "twice"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_sum(g, x, -1, (int[]){0}, 0) == NULL);
    CHECK(strstr(nb_last_error(), "sum") && strstr(nb_last_error(), "naxes"));
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_scalar(g, 2.0f);
    CHECK(nb_sum(g, x, 1, (int[]){0}, 0) == NULL);   /* a 0-d tensor has no axis 0 */
    CHECK(strstr(nb_last_error(), "sum") != NULL);
    nb_graph_free(g);

    /* NULL input: NULL back, and the earlier message stays */
    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_max(g, x, 1, (int[]){5}, 0) == NULL);
    CHECK(nb_sum(g, NULL, 1, (int[]){7}, 0) == NULL);
    CHECK(nb_mean(NULL, x, 1, (int[]){7}, 0) == NULL);
    CHECK(strstr(nb_last_error(), "max") && strstr(nb_last_error(), "axis 5"));
    CHECK(strstr(nb_graph_error(g), "axis 5") != NULL);
    nb_graph_free(g);
}
