/*
 * test_loss.c - softmax_cross_entropy (with and without label smoothing),
 * nll, mse, bce_with_logits, l1, huber: gradient checks, forward values
 * against double references and hand-computed numbers, logits far outside
 * exp's range, batch-sized inputs, bad labels found by forward, and shape
 * and argument errors found at build time.
 */
#include "test.h"

#include <string.h>

/* The scalar value of `loss` after a forward pass, NAN if it failed. */
static double forward_value(nb_graph *g, nb_node *loss)
{
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    if (!p) return NAN;
    double v = NAN;
    size_t n = 0;
    if (nb_plan_forward(p) == NB_OK) {
        const float *y = nb_plan_data(p, loss, &n);
        if (y && n == 1) v = y[0];
    }
    nb_plan_free(p);
    return v;
}

#define CHECK_REL(got, ref) CHECK_NEAR((got), (ref), 1e-5 * fabs(ref) + 1e-7)

/* Labels 0..C-1 drawn with a fixed seed. */
static void random_labels(float *y, int n, int C, uint64_t seed)
{
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) y[i] = (float)nb_rng_below(&r, (uint64_t)C);
}

/* mean_i logsumexp(z_i) - z_i[y_i], in double */
static double ce_ref(const float *z, const float *y, int N, int C)
{
    double total = 0;
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++) m = fmax(m, z[i * C + c]);
        for (int c = 0; c < C; c++) s += exp(z[i * C + c] - m);
        total += m + log(s) - z[i * C + (int)y[i]];
    }
    return total / N;
}

/* ---- softmax_cross_entropy ---- */

static const struct { int N, C; } ce_shapes[] = {{1, 1}, {1, 3}, {4, 5}, {6, 2}, {3, 10}, {8, 1}};

NB_TEST(test_loss_softmax_ce_gradcheck)
{
    for (size_t s = 0; s < sizeof ce_shapes / sizeof ce_shapes[0]; s++) {
        int N = ce_shapes[s].N, C = ce_shapes[s].C;
        float y[16];
        random_labels(y, N, C, 5 + s);
        nb_graph *g = nb_graph_create();
        nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){N, C}, -3, 3);
        nb_node *lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
        CHECK_GRAD(g, nb_softmax_cross_entropy(g, z, lab));
        nb_graph_free(g);
    }
}

NB_TEST(test_loss_softmax_ce_forward)
{
    for (size_t s = 0; s < sizeof ce_shapes / sizeof ce_shapes[0]; s++) {
        int N = ce_shapes[s].N, C = ce_shapes[s].C;
        float y[16];
        random_labels(y, N, C, 11 + s);
        nb_graph *g = nb_graph_create();
        nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){N, C}, -5, 5);
        nb_node *loss = nb_softmax_cross_entropy(g, z, nb_const(g, "y", 1, (int64_t[]){N}, y));
        CHECK_PTR(loss);
        int64_t shp[NB_MAX_DIMS];
        CHECK(nb_node_shape(loss, shp) == 0);
        CHECK(strcmp(nb_node_op(loss), "softmax_cross_entropy") == 0);
        CHECK_REL(forward_value(g, loss), ce_ref(nb_node_data(z), y, N, C));
        nb_graph_free(g);
    }
}

NB_TEST(test_loss_softmax_ce_by_hand)
{
    /* row 0: log(e + e^2 + e^3) - 3 = 0.40760596...; row 1: all equal, log 3.
     * mean 0.753109126556245. dz = (p - onehot(y)) / 2. */
    nb_graph *g = nb_graph_create();
    nb_node *z = nb_param(g, "z", 2, (int64_t[]){2, 3});
    memcpy(nb_node_data(z), (float[]){1, 2, 3, 1, 1, 1}, 6 * sizeof(float));
    nb_node *lab = nb_const(g, "y", 1, (int64_t[]){2}, (float[]){2, 0});
    nb_node *loss = nb_softmax_cross_entropy(g, z, lab);
    nb_plan *p = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_REL(nb_plan_data(p, loss, NULL)[0], 0.753109126556245);
    CHECK_OK(nb_plan_backward(p, NULL));
    const float *dz = nb_node_grad(z);
    const double want[6] = {0.04501528658519023, 0.12236423552739883, 0.33262047788741095 - 0.5,
                            1.0 / 6 - 0.5, 1.0 / 6, 1.0 / 6};
    for (int i = 0; i < 6; i++) CHECK_NEAR(dz[i], want[i], 1e-6);
    /* a seed of 3 scales the gradient; parameter gradients accumulate */
    CHECK_OK(nb_plan_backward(p, (float[]){3.0f}));
    for (int i = 0; i < 6; i++) CHECK_NEAR(dz[i], 4 * want[i], 4e-6);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_loss_softmax_ce_large_logits)
{
    /* logits of +-1000 overflow exp in float and double; the loss must be
     * finite and right, and so must its gradient */
    const float z[8] = {1000, 1001, 999, 1002, -1000, -1003, -999, -1000.5f};
    const float y[2] = {3, 1};
    nb_graph *g = nb_graph_create();
    nb_node *zp = nb_param(g, "z", 2, (int64_t[]){2, 4});
    memcpy(nb_node_data(zp), z, sizeof z);
    nb_node *loss = nb_softmax_cross_entropy(g, zp, nb_const(g, "y", 1, (int64_t[]){2}, y));
    double v = forward_value(g, loss);
    CHECK(isfinite(v));
    CHECK_REL(v, ce_ref(z, y, 2, 4));
    CHECK_GRAD(g, loss);
    nb_graph_free(g);
}

typedef nb_node *(*label_loss_fn)(nb_graph *, nb_node *, nb_node *);

/* loss(z [5,10], y) builds, and its forward fails with NB_ERR_VALUE and a
 * message naming the op and holding both `want`s */
static void check_bad_labels_of(const char *file, int line, label_loss_fn loss_fn, const char *op,
                                const float *y, const char *want1, const char *want2)
{
    nb_graph *g = nb_graph_create();
    nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){5, 10}, -3, 0);
    nb_node *loss = loss_fn(g, z, nb_const(g, "y", 1, (int64_t[]){5}, y));
    nb_plan *p = loss ? nb_plan_create(g, NULL, 1, 0) : NULL;
    if (!p) {
        nb_test_fail(file, line, "build failed: %s", nb_last_error());
    } else {
        nb_status st = nb_plan_forward(p);
        const char *msg = nb_last_error();
        if (st != NB_ERR_VALUE || !strstr(msg, op) || !strstr(msg, want1) || !strstr(msg, want2))
            nb_test_fail(file, line, "forward -> %s: '%s'; expected bad value naming '%s', '%s', '%s'",
                         nb_status_str(st), msg, op, want1, want2);
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

static void check_bad_labels(const char *file, int line, const float *y, const char *want1,
                             const char *want2)
{
    check_bad_labels_of(file, line, nb_softmax_cross_entropy, "softmax_cross_entropy: ", y, want1, want2);
}

NB_TEST(test_loss_softmax_ce_bad_labels)
{
    check_bad_labels(__FILE__, __LINE__, (float[]){0, 1, 9, 11, 2}, "label 11 at row 3",
                     "outside [0, 10)");
    check_bad_labels(__FILE__, __LINE__, (float[]){0, 10, 1, 1, 1}, "label 10 at row 1", "[0, 10)");
    check_bad_labels(__FILE__, __LINE__, (float[]){-1, 0, 0, 0, 0}, "label -1 at row 0", "[0, 10)");
    check_bad_labels(__FILE__, __LINE__, (float[]){0, 1, 2, NAN, 4}, "row 3", "nan");
    check_bad_labels(__FILE__, __LINE__, (float[]){0, 1, 2, 3, 2.5f}, "label 2.5 at row 4",
                     "integer");
    check_bad_labels(__FILE__, __LINE__, (float[]){INFINITY, 1, 2, 3, 4}, "row 0", "outside");
}

NB_TEST(test_loss_softmax_ce_errors)
{
    /* logits not 2-D */
    nb_graph *g = nb_graph_create();
    nb_node *z = nb_param(g, "z", 3, (int64_t[]){2, 3, 4});
    nb_node *y = nb_const(g, "y", 1, (int64_t[]){2}, NULL);
    CHECK(nb_softmax_cross_entropy(g, z, y) == NULL);
    CHECK(strstr(nb_last_error(), "softmax_cross_entropy") && strstr(nb_last_error(), "[2,3,4]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* labels not 1-D */
    g = nb_graph_create();
    z = nb_param(g, "z", 2, (int64_t[]){2, 3});
    y = nb_const(g, "y", 2, (int64_t[]){2, 1}, NULL);
    CHECK(nb_softmax_cross_entropy(g, z, y) == NULL);
    CHECK(strstr(nb_last_error(), "softmax_cross_entropy") && strstr(nb_last_error(), "[2,1]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* N differs */
    g = nb_graph_create();
    z = nb_param(g, "z", 2, (int64_t[]){4, 3});
    y = nb_const(g, "y", 1, (int64_t[]){5}, NULL);
    CHECK(nb_softmax_cross_entropy(g, z, y) == NULL);
    CHECK(strstr(nb_last_error(), "[4,3]") && strstr(nb_last_error(), "[5]"));
    nb_graph_free(g);

    /* a batch-sized logits against fixed-size labels */
    g = nb_graph_create();
    z = nb_input(g, "z", 2, (int64_t[]){NB_BATCH, 3});
    y = nb_const(g, "y", 1, (int64_t[]){1}, NULL);
    CHECK(nb_softmax_cross_entropy(g, z, y) == NULL);
    CHECK(strstr(nb_last_error(), "softmax_cross_entropy") != NULL);
    nb_graph_free(g);

    /* labels that would need a gradient */
    g = nb_graph_create();
    z = nb_param(g, "z", 2, (int64_t[]){2, 3});
    y = nb_param(g, "y", 1, (int64_t[]){2});
    CHECK(nb_softmax_cross_entropy(g, z, y) == NULL);
    CHECK(strstr(nb_last_error(), "softmax_cross_entropy") && strstr(nb_last_error(), "labels"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    /* NULL inputs: NULL back, message untouched */
    CHECK(nb_softmax_cross_entropy(g, NULL, y) == NULL);
    CHECK(nb_mse(g, z, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "labels") != NULL);
    nb_graph_free(g);
}

/* inputs sized by the plan: the mean divides by the batch's N */
static nb_status fill_ce(nb_plan *p, void *user)
{
    nb_node **io = user;
    size_t n = 0;
    float *x = nb_plan_data(p, io[0], &n);
    for (size_t i = 0; i < n; i++) x[i] = 0.3f * (float)(i % 7) - 0.8f;
    float *y = nb_plan_data(p, io[1], &n);
    for (size_t i = 0; i < n; i++) y[i] = (float)((i * 2) % 4);
    return NB_OK;
}

NB_TEST(test_loss_softmax_ce_batch)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 4});
    nb_node *y = nb_input(g, "y", 1, (int64_t[]){NB_BATCH});
    nb_node *w = nb_test_param(g, "w", 1, (int64_t[]){4}, 0.5f, 2);
    nb_node *loss = nb_softmax_cross_entropy(g, nb_mul(g, x, w), y);
    CHECK_PTR(loss);
    nb_node *io[2] = {x, y};
    nb_gradcheck_opts o = {0};
    o.batch = 3;
    o.seed = 3;
    o.fill_inputs = fill_ce;
    o.user = io;
    CHECK_OK(nb_gradcheck(g, loss, &o, NULL));

    /* the value at batch 3 */
    nb_plan *p = nb_plan_create(g, NULL, 3, 0);
    CHECK_PTR(p);
    CHECK_OK(fill_ce(p, io));
    CHECK_OK(nb_plan_forward(p));
    float z[12], lab[3];
    const float *xv = nb_plan_data(p, x, NULL), *wv = nb_node_data(w);
    for (int i = 0; i < 12; i++) z[i] = xv[i] * wv[i % 4];
    memcpy(lab, nb_plan_data(p, y, NULL), sizeof lab);
    CHECK_REL(nb_plan_data(p, loss, NULL)[0], ce_ref(z, lab, 3, 4));
    nb_plan_free(p);
    nb_graph_free(g);
}

/* ---- mse and bce_with_logits ---- */

static const struct { int ndim; int64_t shape[4]; } pw_shapes[] = {
    {0, {0}}, {1, {1}}, {1, {7}}, {2, {3, 4}}, {3, {2, 1, 3}}, {4, {2, 3, 1, 2}},
};
#define N_PW (sizeof pw_shapes / sizeof pw_shapes[0])

NB_TEST(test_loss_mse_gradcheck)
{
    for (size_t s = 0; s < N_PW; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_test_param(g, "pred", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        nb_node *b = nb_test_param(g, "target", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        CHECK_GRAD(g, nb_mse(g, a, b));
        nb_graph_free(g);
    }
    /* a constant target: only pred gets a gradient */
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_test_param(g, "pred", 2, (int64_t[]){2, 3}, -2, 2);
    nb_node *t = nb_const(g, "t", 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    CHECK_GRAD(g, nb_mse(g, a, t));
    nb_graph_free(g);
}

NB_TEST(test_loss_mse_forward)
{
    for (size_t s = 0; s < N_PW; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_test_param(g, "pred", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        nb_node *b = nb_test_param(g, "target", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        nb_node *loss = nb_mse(g, a, b);
        CHECK_PTR(loss);
        const float *pa = nb_node_data(a), *pb = nb_node_data(b);
        size_t n = nb_node_numel(a);
        double ref = 0;
        for (size_t i = 0; i < n; i++) ref += ((double)pa[i] - pb[i]) * ((double)pa[i] - pb[i]);
        CHECK_REL(forward_value(g, loss), ref / (double)n);
        nb_graph_free(g);
    }
    /* by hand: ((1-0)^2 + (2-4)^2 + (3-3)^2 + (4-1)^2) / 4 = 14 / 4 */
    nb_graph *g = nb_graph_create();
    nb_node *p = nb_param(g, "p", 2, (int64_t[]){2, 2});
    memcpy(nb_node_data(p), (float[]){1, 2, 3, 4}, 4 * sizeof(float));
    nb_node *t = nb_const(g, "t", 2, (int64_t[]){2, 2}, (float[]){0, 4, 3, 1});
    nb_node *loss = nb_mse(g, p, t);
    CHECK(forward_value(g, loss) == 3.5);
    CHECK(strcmp(nb_node_op(loss), "mse") == 0);
    /* dp = 2 (p - t) / 4 */
    nb_plan *pl = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(pl);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(pl));
    CHECK_OK(nb_plan_backward(pl, NULL));
    const float *dp = nb_node_grad(p);
    CHECK(dp[0] == 0.5f && dp[1] == -1.0f && dp[2] == 0.0f && dp[3] == 1.5f);
    nb_plan_free(pl);
    nb_graph_free(g);
}

/* mean of max(x,0) - x t + log1p(exp(-|x|)), and the textbook form for
 * moderate x as a second opinion */
static double bce_ref(const float *x, const float *t, size_t n, int textbook)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (textbook) {
            double s = 1 / (1 + exp(-v));
            total += -t[i] * log(s) - (1 - t[i]) * log(1 - s);
        } else {
            total += fmax(v, 0) - v * t[i] + log1p(exp(-fabs(v)));
        }
    }
    return total / (double)n;
}

NB_TEST(test_loss_bce_gradcheck)
{
    for (size_t s = 0; s < N_PW; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_test_param(g, "x", pw_shapes[s].ndim, pw_shapes[s].shape, -3, 3);
        nb_node *t = nb_test_param(g, "t", pw_shapes[s].ndim, pw_shapes[s].shape, 0, 1);
        CHECK_GRAD(g, nb_bce_with_logits(g, x, t));
        nb_graph_free(g);
    }
    /* hard 0/1 targets as constants, logits of both signs */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){2, 3}, -4, 4);
    nb_node *t = nb_const(g, "t", 2, (int64_t[]){2, 3}, (float[]){0, 1, 1, 0, 0, 1});
    CHECK_GRAD(g, nb_bce_with_logits(g, x, t));
    nb_graph_free(g);
}

NB_TEST(test_loss_bce_forward)
{
    for (size_t s = 0; s < N_PW; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_test_param(g, "x", pw_shapes[s].ndim, pw_shapes[s].shape, -4, 4);
        nb_node *t = nb_test_param(g, "t", pw_shapes[s].ndim, pw_shapes[s].shape, 0, 1);
        nb_node *loss = nb_bce_with_logits(g, x, t);
        CHECK_PTR(loss);
        size_t n = nb_node_numel(x);
        double v = forward_value(g, loss);
        CHECK_REL(v, bce_ref(nb_node_data(x), nb_node_data(t), n, 0));
        CHECK_NEAR(v, bce_ref(nb_node_data(x), nb_node_data(t), n, 1), 1e-5);
        nb_graph_free(g);
    }
    /* |x| = 100: exp(100) would overflow float; the loss is ~ 0 or ~ 100 */
    const float xv[4] = {100, -100, 100, -100}, tv[4] = {1, 0, 0, 1};
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 1, (int64_t[]){4});
    memcpy(nb_node_data(x), xv, sizeof xv);
    nb_node *t = nb_const(g, "t", 1, (int64_t[]){4}, tv);
    nb_node *loss = nb_bce_with_logits(g, x, t);
    CHECK(strcmp(nb_node_op(loss), "bce_with_logits") == 0);
    double v = forward_value(g, loss);
    CHECK(isfinite(v));
    CHECK_REL(v, bce_ref(xv, tv, 4, 0));
    CHECK_REL(v, 50.0);
    /* gradients there: (sigmoid(x) - t) / 4 is 0, 0, 1/4, -1/4 */
    nb_plan *p = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_backward(p, NULL));
    const float *dx = nb_node_grad(x);
    CHECK_NEAR(dx[0], 0, 1e-7);
    CHECK_NEAR(dx[1], 0, 1e-7);
    CHECK_NEAR(dx[2], 0.25, 1e-7);
    CHECK_NEAR(dx[3], -0.25, 1e-7);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_loss_shape_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_param(g, "a", 2, (int64_t[]){3, 4});
    nb_node *b = nb_param(g, "b", 2, (int64_t[]){4, 3});
    CHECK(nb_mse(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "mse") && strstr(nb_last_error(), "[3,4]") &&
          strstr(nb_last_error(), "[4,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* shapes that broadcast are still refused: a loss pairs elements 1:1 */
    g = nb_graph_create();
    a = nb_param(g, "a", 1, (int64_t[]){3});
    b = nb_param(g, "b", 2, (int64_t[]){3, 1});
    CHECK(nb_bce_with_logits(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "bce_with_logits") && strstr(nb_last_error(), "[3]") &&
          strstr(nb_last_error(), "[3,1]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    a = nb_param(g, "a", 1, (int64_t[]){3});
    b = nb_scalar(g, 1.0f);
    CHECK(nb_mse(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "mse") && strstr(nb_last_error(), "[]"));
    nb_graph_free(g);
}

/* ---- label smoothing ---- */

/* mean_i (1 - eps) (lse_i - z_i[y_i]) + eps mean_c (lse_i - z_ic), in double */
static double ce_smooth_ref(const float *z, const float *y, int N, int C, double eps)
{
    double total = 0;
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, s = 0, mean = 0;
        for (int c = 0; c < C; c++) m = fmax(m, z[i * C + c]);
        for (int c = 0; c < C; c++) s += exp(z[i * C + c] - m);
        double lse = m + log(s);
        for (int c = 0; c < C; c++) mean += (lse - z[i * C + c]) / C;
        total += (1 - eps) * (lse - z[i * C + (int)y[i]]) + eps * mean;
    }
    return total / N;
}

NB_TEST(test_loss_smoothing_gradcheck)
{
    const float eps[] = {0.1f, 0.3f, 0.9f};
    for (size_t s = 0; s < sizeof ce_shapes / sizeof ce_shapes[0]; s++)
        for (size_t k = 0; k < 3; k++) {
            int N = ce_shapes[s].N, C = ce_shapes[s].C;
            float y[16];
            random_labels(y, N, C, 21 + s);
            nb_graph *g = nb_graph_create();
            nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){N, C}, -3, 3);
            nb_node *lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
            CHECK_GRAD(g, nb_softmax_cross_entropy_smooth(g, z, lab, eps[k]));
            nb_graph_free(g);
        }
}

NB_TEST(test_loss_smoothing_forward)
{
    const float eps[] = {0.0f, 0.1f, 0.5f};
    for (size_t s = 0; s < sizeof ce_shapes / sizeof ce_shapes[0]; s++)
        for (size_t k = 0; k < 3; k++) {
            int N = ce_shapes[s].N, C = ce_shapes[s].C;
            float y[16];
            random_labels(y, N, C, 31 + s);
            nb_graph *g = nb_graph_create();
            nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){N, C}, -5, 5);
            nb_node *lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
            nb_node *loss = nb_softmax_cross_entropy_smooth(g, z, lab, eps[k]);
            CHECK_PTR(loss);
            CHECK(strcmp(nb_node_op(loss), "softmax_cross_entropy") == 0);
            CHECK_REL(forward_value(g, loss), ce_smooth_ref(nb_node_data(z), y, N, C, eps[k]));
            nb_graph_free(g);
        }
    /* smoothing 0 is plain cross-entropy, bit for bit */
    nb_graph *g = nb_graph_create();
    nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){4, 5}, -5, 5);
    nb_node *lab = nb_const(g, "y", 1, (int64_t[]){4}, (float[]){0, 4, 2, 2});
    nb_node *a = nb_softmax_cross_entropy(g, z, lab);
    nb_node *b = nb_softmax_cross_entropy_smooth(g, z, lab, 0.0f);
    CHECK(forward_value(g, a) == forward_value(g, b));
    nb_graph_free(g);
}

NB_TEST(test_loss_smoothing_by_hand)
{
    /* z = [[1, 2, 3], [1, 1, 1]], y = [2, 0], eps = 0.1, C = 3.
     * row 0: -log p = [2, 1, 0] + 0.40760596444438; loss = 0.9 * 0.40760596
     *   + 0.1 * 1.40760596 = 0.50760596444438
     * row 1: -log p = log 3 everywhere; loss = log 3
     * mean = (0.50760596444438 + 1.09861228866811) / 2 = 0.80310912655624
     * dz = (p - q) / 2, q = [1/30, 1/30, 0.9 + 1/30] and [0.9 + 1/30, 1/30, 1/30] */
    nb_graph *g = nb_graph_create();
    nb_node *z = nb_param(g, "z", 2, (int64_t[]){2, 3});
    memcpy(nb_node_data(z), (float[]){1, 2, 3, 1, 1, 1}, 6 * sizeof(float));
    nb_node *lab = nb_const(g, "y", 1, (int64_t[]){2}, (float[]){2, 0});
    nb_node *loss = nb_softmax_cross_entropy_smooth(g, z, lab, 0.1f);
    nb_plan *p = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_REL(nb_plan_data(p, loss, NULL)[0], 0.80310912655624);
    CHECK_OK(nb_plan_backward(p, NULL));
    const double p0[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    const double q[6] = {1.0 / 30, 1.0 / 30, 0.9 + 1.0 / 30, 0.9 + 1.0 / 30, 1.0 / 30, 1.0 / 30};
    const float *dz = nb_node_grad(z);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(dz[i], ((i < 3 ? p0[i] : 1.0 / 3) - q[i]) / 2, 1e-6);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_loss_smoothing_errors)
{
    const float bad[] = {1.0f, -0.1f, 2.0f, NAN};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *z = nb_param(g, "z", 2, (int64_t[]){2, 3});
        nb_node *y = nb_const(g, "y", 1, (int64_t[]){2}, NULL);
        CHECK(nb_softmax_cross_entropy_smooth(g, z, y, bad[k]) == NULL);
        CHECK(strstr(nb_last_error(), "softmax_cross_entropy") &&
              strstr(nb_last_error(), "smoothing"));
        CHECK(nb_graph_status(g) == NB_ERR_ARG);
        nb_graph_free(g);
    }
    /* labels that would need a gradient */
    nb_graph *g = nb_graph_create();
    nb_node *z = nb_param(g, "z", 2, (int64_t[]){2, 3});
    nb_node *y = nb_param(g, "y", 1, (int64_t[]){2});
    CHECK(nb_softmax_cross_entropy_smooth(g, z, y, 0.1f) == NULL);
    CHECK(strstr(nb_last_error(), "labels") != NULL);
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);
}

/* ---- nll ---- */

NB_TEST(test_loss_nll_gradcheck)
{
    for (size_t s = 0; s < sizeof ce_shapes / sizeof ce_shapes[0]; s++) {
        int N = ce_shapes[s].N, C = ce_shapes[s].C;
        float y[16];
        random_labels(y, N, C, 41 + s);
        nb_graph *g = nb_graph_create();
        nb_node *l = nb_test_param(g, "l", 2, (int64_t[]){N, C}, -3, 0);
        nb_node *lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
        CHECK_GRAD(g, nb_nll(g, l, lab));
        nb_graph_free(g);
        /* after log_softmax */
        g = nb_graph_create();
        nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){N, C}, -3, 3);
        lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
        CHECK_GRAD(g, nb_nll(g, nb_log_softmax(g, z, 1), lab));
        nb_graph_free(g);
    }
}

NB_TEST(test_loss_nll_forward)
{
    for (size_t s = 0; s < sizeof ce_shapes / sizeof ce_shapes[0]; s++) {
        int N = ce_shapes[s].N, C = ce_shapes[s].C;
        float y[16];
        random_labels(y, N, C, 51 + s);
        nb_graph *g = nb_graph_create();
        nb_node *l = nb_test_param(g, "l", 2, (int64_t[]){N, C}, -5, 1);
        nb_node *lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
        nb_node *loss = nb_nll(g, l, lab);
        CHECK_PTR(loss);
        CHECK(strcmp(nb_node_op(loss), "nll") == 0);
        const float *lv = nb_node_data(l);
        double ref = 0;
        for (int i = 0; i < N; i++) ref -= lv[i * C + (int)y[i]];
        CHECK_REL(forward_value(g, loss), ref / N);
        nb_graph_free(g);
        /* nll(log_softmax(z)) is cross-entropy */
        g = nb_graph_create();
        nb_node *z = nb_test_param(g, "z", 2, (int64_t[]){N, C}, -5, 5);
        lab = nb_const(g, "y", 1, (int64_t[]){N}, y);
        loss = nb_nll(g, nb_log_softmax(g, z, 1), lab);
        CHECK_NEAR(forward_value(g, loss), ce_ref(nb_node_data(z), y, N, C), 1e-5);
        nb_graph_free(g);
    }
    /* by hand: -(-1 + -3) / 2 = 2; dl = -1/2 at the labels */
    nb_graph *g = nb_graph_create();
    nb_node *l = nb_param(g, "l", 2, (int64_t[]){2, 2});
    memcpy(nb_node_data(l), (float[]){-1, -2, -3, -4}, 4 * sizeof(float));
    nb_node *loss = nb_nll(g, l, nb_const(g, "y", 1, (int64_t[]){2}, (float[]){0, 0}));
    nb_plan *p = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK(nb_plan_data(p, loss, NULL)[0] == 2.0f);
    CHECK_OK(nb_plan_backward(p, NULL));
    const float *dl = nb_node_grad(l);
    CHECK(dl[0] == -0.5f && dl[1] == 0 && dl[2] == -0.5f && dl[3] == 0);
    nb_plan_free(p);
    nb_graph_free(g);
}

static void check_bad_nll(const char *file, int line, const float *y, const char *want1,
                          const char *want2)
{
    check_bad_labels_of(file, line, nb_nll, "nll: ", y, want1, want2);
}

NB_TEST(test_loss_nll_bad_labels)
{
    check_bad_nll(__FILE__, __LINE__, (float[]){0, 1, 9, 11, 2}, "label 11 at row 3",
                  "outside [0, 10)");
    check_bad_nll(__FILE__, __LINE__, (float[]){-1, 0, 0, 0, 0}, "label -1 at row 0", "[0, 10)");
    check_bad_nll(__FILE__, __LINE__, (float[]){0, 1, 2, NAN, 4}, "row 3", "nan");
    check_bad_nll(__FILE__, __LINE__, (float[]){0, 1, 2, 3, 2.5f}, "label 2.5 at row 4",
                  "integer");
    check_bad_nll(__FILE__, __LINE__, (float[]){INFINITY, 1, 2, 3, 4}, "row 0", "outside");
}

NB_TEST(test_loss_nll_errors)
{
    nb_graph *g = nb_graph_create();
    nb_node *l = nb_param(g, "l", 3, (int64_t[]){2, 3, 4});
    nb_node *y = nb_const(g, "y", 1, (int64_t[]){2}, NULL);
    CHECK(nb_nll(g, l, y) == NULL);
    CHECK(strstr(nb_last_error(), "nll") && strstr(nb_last_error(), "log_probs") &&
          strstr(nb_last_error(), "[2,3,4]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    l = nb_param(g, "l", 2, (int64_t[]){4, 3});
    y = nb_const(g, "y", 1, (int64_t[]){5}, NULL);
    CHECK(nb_nll(g, l, y) == NULL);
    CHECK(strstr(nb_last_error(), "nll") && strstr(nb_last_error(), "[4,3]") &&
          strstr(nb_last_error(), "[5]"));
    nb_graph_free(g);

    g = nb_graph_create();
    l = nb_param(g, "l", 2, (int64_t[]){2, 3});
    y = nb_param(g, "y", 1, (int64_t[]){2});
    CHECK(nb_nll(g, l, y) == NULL);
    CHECK(strstr(nb_last_error(), "nll") && strstr(nb_last_error(), "labels"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);
}

/* ---- l1 and huber ---- */

/* pred and target as parameters with every |pred - target| in [0.1, 1.5]
 * and at least 0.05 away from `avoid` (huber's delta; 0 for none), so a
 * finite-difference step of 0.01 never crosses a kink */
static void far_apart(nb_node *pred, nb_node *target, float avoid)
{
    float *p = nb_node_data(pred), *t = nb_node_data(target);
    nb_rng r;
    nb_rng_seed(&r, 17);
    for (size_t i = 0; i < nb_node_numel(pred); i++) {
        float d;
        do d = (float)(0.1 + 1.4 * nb_rng_uniform(&r));
        while (avoid > 0 && fabsf(d - avoid) < 0.05f);
        t[i] = p[i] + (nb_rng_uniform(&r) < 0.5 ? d : -d);
    }
}

NB_TEST(test_loss_l1_gradcheck)
{
    for (size_t s = 0; s < N_PW; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_test_param(g, "pred", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        nb_node *b = nb_test_param(g, "target", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        far_apart(a, b, 0);
        CHECK_GRAD(g, nb_l1(g, a, b));
        nb_graph_free(g);
    }
}

NB_TEST(test_loss_l1_forward)
{
    for (size_t s = 0; s < N_PW; s++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_test_param(g, "pred", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        nb_node *b = nb_test_param(g, "target", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
        nb_node *loss = nb_l1(g, a, b);
        CHECK_PTR(loss);
        CHECK(strcmp(nb_node_op(loss), "l1") == 0);
        const float *pa = nb_node_data(a), *pb = nb_node_data(b);
        size_t n = nb_node_numel(a);
        double ref = 0;
        for (size_t i = 0; i < n; i++) ref += fabs((double)pa[i] - pb[i]);
        CHECK_REL(forward_value(g, loss), ref / (double)n);
        nb_graph_free(g);
    }
    /* by hand: (|1-0| + |2-4| + |3-3| + |4-1|) / 4 = 1.5; the gradient is
     * sign(p - t) / 4 with sign(0) = 0, and its negative for t */
    nb_graph *g = nb_graph_create();
    nb_node *p = nb_param(g, "p", 2, (int64_t[]){2, 2});
    nb_node *t = nb_param(g, "t", 2, (int64_t[]){2, 2});
    memcpy(nb_node_data(p), (float[]){1, 2, 3, 4}, 4 * sizeof(float));
    memcpy(nb_node_data(t), (float[]){0, 4, 3, 1}, 4 * sizeof(float));
    nb_node *loss = nb_l1(g, p, t);
    nb_plan *pl = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(pl);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(pl));
    CHECK(nb_plan_data(pl, loss, NULL)[0] == 1.5f);
    CHECK_OK(nb_plan_backward(pl, NULL));
    const float *dp = nb_node_grad(p), *dt = nb_node_grad(t);
    CHECK(dp[0] == 0.25f && dp[1] == -0.25f && dp[2] == 0.0f && dp[3] == 0.25f);
    CHECK(dt[0] == -0.25f && dt[1] == 0.25f && dt[2] == 0.0f && dt[3] == -0.25f);
    nb_plan_free(pl);
    nb_graph_free(g);
}

static double huber_ref(const float *p, const float *t, size_t n, double delta)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)p[i] - t[i], a = fabs(d);
        total += a < delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
    }
    return total / (double)n;
}

NB_TEST(test_loss_huber_gradcheck)
{
    const float deltas[] = {1.0f, 0.5f, 0.3f};
    for (size_t k = 0; k < 3; k++)
        for (size_t s = 0; s < N_PW; s++) {
            nb_graph *g = nb_graph_create();
            nb_node *a = nb_test_param(g, "pred", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
            nb_node *b = nb_test_param(g, "target", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
            far_apart(a, b, deltas[k]);
            CHECK_GRAD(g, nb_huber(g, a, b, deltas[k]));
            nb_graph_free(g);
        }
    /* small differences too (0 is no kink for huber) */
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_test_param(g, "pred", 2, (int64_t[]){3, 4}, -0.2f, 0.2f);
    nb_node *b = nb_test_param(g, "target", 2, (int64_t[]){3, 4}, -0.2f, 0.2f);
    CHECK_GRAD(g, nb_huber(g, a, b, 1.0f));
    nb_graph_free(g);
}

NB_TEST(test_loss_huber_forward)
{
    const float deltas[] = {1.0f, 0.5f, 2.0f};
    for (size_t k = 0; k < 3; k++)
        for (size_t s = 0; s < N_PW; s++) {
            nb_graph *g = nb_graph_create();
            nb_node *a = nb_test_param(g, "pred", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
            nb_node *b = nb_test_param(g, "target", pw_shapes[s].ndim, pw_shapes[s].shape, -2, 2);
            nb_node *loss = nb_huber(g, a, b, deltas[k]);
            CHECK_PTR(loss);
            CHECK(strcmp(nb_node_op(loss), "huber") == 0);
            CHECK_REL(forward_value(g, loss),
                      huber_ref(nb_node_data(a), nb_node_data(b), nb_node_numel(a), deltas[k]));
            nb_graph_free(g);
        }
    /* by hand, delta 1: d = [0.5, -2, 3] -> [0.125, 1.5, 2.5], mean 1.375;
     * dp = clamp(d, -1, 1) / 3 = [0.5, -1, 1] / 3, dt = -dp */
    nb_graph *g = nb_graph_create();
    nb_node *p = nb_param(g, "p", 1, (int64_t[]){3});
    nb_node *t = nb_param(g, "t", 1, (int64_t[]){3});
    memcpy(nb_node_data(p), (float[]){1.5f, 0, 4}, 3 * sizeof(float));
    memcpy(nb_node_data(t), (float[]){1, 2, 1}, 3 * sizeof(float));
    nb_node *loss = nb_huber(g, p, t, 1.0f);
    nb_plan *pl = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(pl);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(pl));
    CHECK_REL(nb_plan_data(pl, loss, NULL)[0], 1.375);
    CHECK_OK(nb_plan_backward(pl, NULL));
    const float *dp = nb_node_grad(p), *dt = nb_node_grad(t);
    const double want[3] = {0.5 / 3, -1.0 / 3, 1.0 / 3};
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(dp[i], want[i], 1e-7);
        CHECK_NEAR(dt[i], -want[i], 1e-7);
    }
    nb_plan_free(pl);
    nb_graph_free(g);
}

NB_TEST(test_loss_l1_huber_errors)
{
    const float bad[] = {0.0f, -1.0f, NAN, INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *a = nb_param(g, "a", 1, (int64_t[]){3});
        nb_node *b = nb_param(g, "b", 1, (int64_t[]){3});
        CHECK(nb_huber(g, a, b, bad[k]) == NULL);
        CHECK(strstr(nb_last_error(), "huber") && strstr(nb_last_error(), "delta"));
        CHECK(nb_graph_status(g) == NB_ERR_ARG);
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_param(g, "a", 2, (int64_t[]){3, 4});
    nb_node *b = nb_param(g, "b", 2, (int64_t[]){4, 3});
    CHECK(nb_l1(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "l1") && strstr(nb_last_error(), "[3,4]") &&
          strstr(nb_last_error(), "[4,3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    g = nb_graph_create();
    a = nb_param(g, "a", 1, (int64_t[]){3});
    b = nb_param(g, "b", 2, (int64_t[]){3, 1});
    CHECK(nb_huber(g, a, b, 1.0f) == NULL);
    CHECK(strstr(nb_last_error(), "huber") && strstr(nb_last_error(), "[3]") &&
          strstr(nb_last_error(), "[3,1]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);
}
