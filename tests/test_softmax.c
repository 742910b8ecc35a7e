/*
 * test_softmax.c - softmax and log_softmax: gradient checks over 1-D to 4-D
 * inputs along every kind of axis (first, middle, last, negative, size 1);
 * forward values against a double reference; logits near +-1000 that would
 * overflow a naive exp; a batch axis; bad axes.
 */
#include "test.h"

#include <string.h>

typedef nb_node *(*softmax_fn)(nb_graph *, nb_node *, int);

static const struct { const char *name; softmax_fn fn; } softmaxes[] = {
    {"softmax", nb_softmax}, {"log_softmax", nb_log_softmax},
};

static const struct { int ndim; int64_t shape[4]; int axis; } scases[] = {
    {1, {5}, 0},
    {1, {6}, -1},
    {1, {1}, 0},             /* one class: softmax 1, gradient 0 */
    {2, {3, 4}, 0},
    {2, {3, 4}, 1},
    {2, {3, 4}, -2},
    {2, {4, 1}, -1},         /* size-1 axis */
    {3, {2, 1, 3}, 1},       /* size-1 middle axis */
    {3, {2, 3, 4}, 1},
    {4, {2, 3, 2, 3}, -3},
    {4, {2, 2, 3, 2}, 3},
    {4, {3, 2, 2, 2}, 0},
};
#define N_SCASES (sizeof scases / sizeof scases[0])

/* Reference in double: the slice max is subtracted, as a reference must for
 * logits beyond exp's range even in double. */
static void softmax_ref(int log_out, const float *x, int nd, const int64_t *dims, int axis,
                        double *ref)
{
    size_t outer = 1, D = (size_t)dims[axis], inner = 1;
    for (int k = 0; k < axis; k++) outer *= (size_t)dims[k];
    for (int k = axis + 1; k < nd; k++) inner *= (size_t)dims[k];
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            size_t b = o * D * inner + j;
            double m = -INFINITY, s = 0;
            for (size_t d = 0; d < D; d++) m = fmax(m, x[b + d * inner]);
            for (size_t d = 0; d < D; d++) s += exp(x[b + d * inner] - m);
            for (size_t d = 0; d < D; d++) {
                double z = x[b + d * inner] - m;
                ref[b + d * inner] = log_out ? z - log(s) : exp(z) / s;
            }
        }
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

NB_TEST(test_softmax_gradcheck)
{
    for (size_t f = 0; f < 2; f++)
        for (size_t c = 0; c < N_SCASES; c++) {
            nb_graph *g = nb_graph_create();
            nb_node *x = nb_test_param(g, "x", scases[c].ndim, scases[c].shape, -2, 2);
            CHECK_GRAD(g, softmaxes[f].fn(g, x, scases[c].axis));
            nb_graph_free(g);
        }
}

NB_TEST(test_softmax_gradcheck_in_chain)
{
    /* a consumer that reads the output and adds its own gradient: the
     * softmax gradient must add into x's, which also gets a direct path */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){3, 5}, -2, 2);
    nb_node *y = nb_mul(g, nb_softmax(g, x, -1), x);
    CHECK_GRAD(g, nb_add(g, y, nb_log_softmax(g, x, 0)));
    nb_graph_free(g);
}

NB_TEST(test_softmax_forward)
{
    for (size_t f = 0; f < 2; f++)
        for (size_t c = 0; c < N_SCASES; c++) {
            nb_graph *g = nb_graph_create();
            nb_node *x = nb_test_param(g, "x", scases[c].ndim, scases[c].shape, -4, 4);
            nb_node *y = softmaxes[f].fn(g, x, scases[c].axis);
            CHECK_PTR(y);
            if (!y) {
                nb_graph_free(g);
                continue;
            }
            CHECK(strcmp(nb_node_op(y), softmaxes[f].name) == 0);
            int64_t shp[NB_MAX_DIMS];
            CHECK(nb_node_shape(y, shp) == scases[c].ndim);
            int nd = scases[c].ndim;
            int axis = scases[c].axis < 0 ? scases[c].axis + nd : scases[c].axis;
            double ref[128];
            softmax_ref((int)f, nb_node_data(x), nd, scases[c].shape, axis, ref);
            nb_plan *p = nb_plan_create(g, NULL, 1, 0);
            CHECK_PTR(p);
            CHECK_OK(nb_plan_forward(p));
            size_t n = 0;
            const float *out = nb_plan_data(p, y, &n);
            CHECK(n == nb_node_numel(x));
            CHECK_CLOSE(out, ref, n);
            nb_plan_free(p);
            nb_graph_free(g);
        }
}

NB_TEST(test_softmax_large_logits)
{
    /* exp(1000) overflows float and double: only the shifted form survives */
    const float v[12] = {1000, 1001, 1002, 999, -1000, -1001, -999, -1000.5f,
                         1000, 1000, 1000, 1000};
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_const(g, "x", 2, (int64_t[]){3, 4}, v);
    nb_node *s = nb_softmax(g, x, 1), *ls = nb_log_softmax(g, x, -1);
    nb_node *s0 = nb_softmax(g, x, 0);   /* across rows of +1000 and -1000 */
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    CHECK_OK(nb_plan_forward(p));
    double ref[12];
    const float *out = nb_plan_data(p, s, NULL);
    softmax_ref(0, v, 2, (int64_t[]){3, 4}, 1, ref);
    CHECK_CLOSE(out, ref, 12);
    for (int r = 0; r < 3; r++) {
        double sum = 0;
        for (int k = 0; k < 4; k++) sum += out[4 * r + k];
        CHECK_NEAR(sum, 1.0, 1e-6);
    }
    CHECK(out[8] == 0.25f);
    out = nb_plan_data(p, ls, NULL);
    softmax_ref(1, v, 2, (int64_t[]){3, 4}, 1, ref);
    CHECK_CLOSE(out, ref, 12);
    for (int i = 0; i < 12; i++) CHECK(isfinite(out[i]));
    out = nb_plan_data(p, s0, NULL);
    softmax_ref(0, v, 2, (int64_t[]){3, 4}, 0, ref);
    CHECK_CLOSE(out, ref, 12);
    CHECK(out[4] == 0.0f);   /* exp(-2000) underflows to exactly 0, not NaN */
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_softmax_large_logits_gradcheck)
{
    /* gradients stay finite and right at logits near 1000 (the float step
     * there is 6e-5, well under gradcheck's 1e-2) */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){2, 4}, 998, 1002);
    CHECK_GRAD(g, nb_softmax(g, x, -1));
    nb_graph_free(g);
    g = nb_graph_create();
    x = nb_test_param(g, "x", 2, (int64_t[]){2, 4}, -1002, -998);
    CHECK_GRAD(g, nb_log_softmax(g, x, 1));
    nb_graph_free(g);
}

NB_TEST(test_softmax_batch_axis)
{
    /* softmax across the batch axis: D comes from the plan */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 2});
    nb_node *y = nb_softmax(g, x, 0), *ly = nb_log_softmax(g, x, 1);
    nb_plan *p = nb_plan_create(g, NULL, 3, 0);
    CHECK_PTR(p);
    const float v[6] = {0, 1, 1, 2, 2, 3};
    CHECK_OK(nb_plan_set_input(p, x, v, 6));
    CHECK_OK(nb_plan_forward(p));
    double ref[6];
    softmax_ref(0, v, 2, (int64_t[]){3, 2}, 0, ref);
    CHECK_CLOSE(nb_plan_data(p, y, NULL), ref, 6);
    softmax_ref(1, v, 2, (int64_t[]){3, 2}, 1, ref);
    CHECK_CLOSE(nb_plan_data(p, ly, NULL), ref, 6);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_softmax_bad_axis)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_softmax(g, x, 2) == NULL);
    CHECK(strstr(nb_last_error(), "softmax") && strstr(nb_last_error(), "axis 2"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_log_softmax(g, x, -3) == NULL);
    CHECK(strstr(nb_last_error(), "log_softmax") && strstr(nb_last_error(), "-3"));
    nb_graph_free(g);

    g = nb_graph_create();
    CHECK(nb_softmax(g, nb_scalar(g, 1.0f), 0) == NULL);   /* 0-d: no axis */
    CHECK(strstr(nb_last_error(), "softmax") != NULL);
    CHECK(nb_log_softmax(g, NULL, 0) == NULL);
    nb_graph_free(g);
}
