/*
 * test_norm.c - batchnorm and layernorm: gradient checks over several shapes
 * and affine choices (batchnorm in training mode through nb_gradcheck, and in
 * evaluation mode against the closed form and central differences computed
 * here), forward values against double-precision loops, running statistics
 * after two training passes, batch-sized inputs and build errors.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ==== batchnorm ==== */

/* x [dims...] as a parameter, optional gamma/beta parameters, running
 * statistics as constants (mean rm0, var rv0, count 0). */
typedef struct {
    int ndim;
    int64_t d[4];
    int gamma, beta;
} bn_case;

static const bn_case bn_cases[] = {
    {2, {4, 3}, 1, 1},         /* BatchNorm1d on [N, C] */
    {3, {3, 2, 5}, 1, 1},      /* BatchNorm1d on [N, C, L] */
    {4, {2, 3, 2, 2}, 1, 1},   /* BatchNorm2d */
    {2, {5, 2}, 0, 0},         /* no affine */
    {3, {2, 3, 3}, 1, 0},      /* gamma only */
    {2, {3, 4}, 0, 1},         /* beta only */
    {4, {1, 2, 3, 2}, 1, 1},   /* N = 1 still has 6 values per channel */
};
#define N_BN (sizeof bn_cases / sizeof bn_cases[0])

typedef struct {
    nb_node *x, *gamma, *beta, *rm, *rv, *nbt, *y;
} bn_nodes;

static bn_nodes bn_build(nb_graph *g, const bn_case *c, float momentum, float eps)
{
    bn_nodes b;
    const int64_t C = c->d[1];
    float rm0[8], rv0[8];
    for (int i = 0; i < C; i++) {
        rm0[i] = 0.3f * (float)i - 0.2f;
        rv0[i] = 0.5f + 0.25f * (float)i;
    }
    b.x = nb_test_param(g, "x", c->ndim, c->d, -1, 1);
    b.gamma = c->gamma ? nb_test_param(g, "gamma", 1, &C, 0.5f, 1.5f) : NULL;
    b.beta = c->beta ? nb_test_param(g, "beta", 1, &C, -0.5f, 0.5f) : NULL;
    b.rm = nb_const(g, "running_mean", 1, &C, rm0);
    b.rv = nb_const(g, "running_var", 1, &C, rv0);
    b.nbt = nb_const(g, "num_batches_tracked", 0, NULL, NULL);
    b.y = nb_batchnorm(g, b.x, b.gamma, b.beta, b.rm, b.rv, b.nbt, momentum, eps);
    return b;
}

/* N, C, S of x [N, C, *S] */
static void dims_of(const bn_case *c, int *N, int *C, int *S)
{
    *N = (int)c->d[0];
    *C = (int)c->d[1];
    *S = 1;
    for (int k = 2; k < c->ndim; k++) *S *= (int)c->d[k];
}

/* mean and biased variance per channel, in double */
static void bn_stats(const bn_case *c, const float *x, double *mean, double *var)
{
    int N, C, S;
    dims_of(c, &N, &C, &S);
    for (int ch = 0; ch < C; ch++) {
        double s = 0, v = 0;
        for (int n = 0; n < N; n++)
            for (int j = 0; j < S; j++) s += x[(n * C + ch) * S + j];
        mean[ch] = s / (N * S);
        for (int n = 0; n < N; n++)
            for (int j = 0; j < S; j++) {
                double d = x[(n * C + ch) * S + j] - mean[ch];
                v += d * d;
            }
        var[ch] = v / (N * S);
    }
}

/* y = (x - mean) / sqrt(var + eps) * gamma + beta, in double */
static void bn_apply(const bn_case *c, const float *x, const double *mean, const double *var,
                     const float *gamma, const float *beta, double eps, double *y)
{
    int N, C, S;
    dims_of(c, &N, &C, &S);
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (int j = 0; j < S; j++) {
                int i = (n * C + ch) * S + j;
                y[i] = (x[i] - mean[ch]) / sqrt(var[ch] + eps) * (gamma ? gamma[ch] : 1.0) +
                       (beta ? beta[ch] : 0.0);
            }
}

NB_TEST(test_batchnorm_gradcheck_training)
{
    for (size_t k = 0; k < N_BN; k++) {
        nb_graph *g = nb_graph_create();
        bn_nodes b = bn_build(g, &bn_cases[k], 0.1f, 1e-5f);
        CHECK_GRAD(g, b.y);
        nb_graph_free(g);
    }
    /* a larger eps and momentum, and a non-linear consumer */
    nb_graph *g = nb_graph_create();
    bn_nodes b = bn_build(g, &bn_cases[2], 0.5f, 0.1f);
    CHECK_GRAD(g, nb_tanh(g, b.y));
    nb_graph_free(g);
}

NB_TEST(test_batchnorm_forward_training)
{
    for (size_t k = 0; k < N_BN; k++) {
        const bn_case *c = &bn_cases[k];
        nb_graph *g = nb_graph_create();
        bn_nodes b = bn_build(g, c, 0.1f, 1e-3f);
        CHECK_PTR(b.y);
        CHECK(strcmp(nb_node_op(b.y), "batchnorm") == 0);
        nb_plan *p = nb_plan_create(g, NULL, 1, 0);
        CHECK_PTR(p);
        nb_plan_set_training(p, 1);
        CHECK_OK(nb_plan_forward(p));
        size_t n = nb_node_numel(b.x), count = 0;
        const float *got = nb_plan_data(p, b.y, &count);
        CHECK(count == n);
        double mean[8], var[8], *ref = calloc(n, sizeof *ref);
        bn_stats(c, nb_node_data(b.x), mean, var);
        bn_apply(c, nb_node_data(b.x), mean, var, b.gamma ? nb_node_data(b.gamma) : NULL,
                 b.beta ? nb_node_data(b.beta) : NULL, 1e-3, ref);
        for (size_t i = 0; i < n && count == n; i++) CHECK_NEAR(got[i], ref[i], 2e-5);
        free(ref);
        nb_plan_free(p);
        nb_graph_free(g);
    }
}

NB_TEST(test_batchnorm_running_stats)
{
    /* two training passes with different x; then evaluation uses the
     * running statistics and changes nothing */
    const bn_case *c = &bn_cases[2];   /* [2, 3, 2, 2]: 8 values per channel */
    const double m = 0.1, eps = 1e-5;
    nb_graph *g = nb_graph_create();
    bn_nodes b = bn_build(g, c, (float)m, (float)eps);
    CHECK_PTR(b.y);
    nb_plan *p = nb_plan_create(g, b.y, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    const size_t n = nb_node_numel(b.x);
    double rm[3], rv[3];
    for (int ch = 0; ch < 3; ch++) {
        rm[ch] = nb_node_data(b.rm)[ch];
        rv[ch] = nb_node_data(b.rv)[ch];
    }
    float *xv = nb_node_data(b.x);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (size_t i = 0; i < n; i++) xv[i] = 2.0f * xv[i] + 0.1f * (float)(i % 3);
        double mean[3], var[3];
        bn_stats(c, xv, mean, var);
        for (int ch = 0; ch < 3; ch++) {
            rm[ch] = (1 - m) * rm[ch] + m * mean[ch];
            rv[ch] = (1 - m) * rv[ch] + m * var[ch] * 8.0 / 7.0;   /* unbiased: cnt / (cnt - 1) */
        }
        CHECK_OK(nb_plan_forward(p));
    }
    for (int ch = 0; ch < 3; ch++) {
        CHECK_NEAR(nb_node_data(b.rm)[ch], rm[ch], 1e-6);
        CHECK_NEAR(nb_node_data(b.rv)[ch], rv[ch], 1e-6);
    }
    CHECK(nb_node_data(b.nbt)[0] == 2.0f);

    /* evaluation: y from the running statistics, which stay put */
    nb_plan_set_training(p, 0);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_forward(p));
    CHECK(nb_node_data(b.nbt)[0] == 2.0f);
    double rmd[3], rvd[3], *ref = calloc(n, sizeof *ref);
    for (int ch = 0; ch < 3; ch++) {
        CHECK_NEAR(nb_node_data(b.rm)[ch], rm[ch], 1e-6);
        rmd[ch] = nb_node_data(b.rm)[ch];
        rvd[ch] = nb_node_data(b.rv)[ch];
    }
    bn_apply(c, xv, rmd, rvd, nb_node_data(b.gamma), nb_node_data(b.beta), eps, ref);
    const float *got = nb_plan_data(p, b.y, NULL);
    for (size_t i = 0; i < n; i++) CHECK_NEAR(got[i], ref[i], 2e-5);
    free(ref);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* sum(y * r) for the plan's current parameters */
static double weighted(nb_plan *p, nb_node *y, const float *r)
{
    size_t n = 0;
    const float *v = nb_plan_data(p, y, &n);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * r[i];
    return s;
}

/* Evaluation-mode backward: nb_gradcheck plans in training mode, so this
 * compares the analytic gradients of sum(y * r) with the closed form
 * (dx = r gamma / sqrt(rv + eps), dgamma = sum r xhat, dbeta = sum r) and
 * with central differences of evaluation-mode forward passes. */
static void bn_eval_case(const bn_case *c)
{
    const double eps = 1e-3;
    nb_graph *g = nb_graph_create();
    bn_nodes b = bn_build(g, c, 0.1f, (float)eps);
    nb_plan *p = b.y ? nb_plan_create(g, b.y, 1, NB_PLAN_TRAIN | NB_PLAN_KEEP) : NULL;
    CHECK_PTR(p);
    if (!p) {
        nb_graph_free(g);
        return;
    }
    nb_plan_set_training(p, 0);
    int N, C, S;
    dims_of(c, &N, &C, &S);
    const size_t n = nb_node_numel(b.x);
    float *r = malloc(n * sizeof *r);
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_fill_uniform(r, n, -1, 1, &rng);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_backward(p, r));

    const float *x = nb_node_data(b.x), *rm = nb_node_data(b.rm), *rv = nb_node_data(b.rv);
    const float *gamma = b.gamma ? nb_node_data(b.gamma) : NULL;
    const float *dx = nb_node_grad(b.x);
    for (int ch = 0; ch < C; ch++) {
        double is = 1.0 / sqrt(rv[ch] + eps), sg = 0, sb = 0;
        for (int nn = 0; nn < N; nn++)
            for (int j = 0; j < S; j++) {
                int i = (nn * C + ch) * S + j;
                CHECK_NEAR(dx[i], r[i] * (gamma ? gamma[ch] : 1.0) * is, 1e-5);
                sg += r[i] * (x[i] - rm[ch]) * is;
                sb += r[i];
            }
        if (b.gamma) CHECK_NEAR(nb_node_grad(b.gamma)[ch], sg, 1e-5);
        if (b.beta) CHECK_NEAR(nb_node_grad(b.beta)[ch], sb, 1e-5);
    }

    /* central differences over every parameter element */
    nb_node *pars[3] = {b.x, b.gamma, b.beta};
    for (int k = 0; k < 3; k++) {
        if (!pars[k]) continue;
        float *v = nb_node_data(pars[k]);
        const float *ana = nb_node_grad(pars[k]);
        for (size_t i = 0; i < nb_node_numel(pars[k]); i++) {
            const float old = v[i], h = 1e-2f;
            v[i] = old + h;
            CHECK_OK(nb_plan_forward(p));
            double fp = weighted(p, b.y, r);
            v[i] = old - h;
            CHECK_OK(nb_plan_forward(p));
            double fm = weighted(p, b.y, r);
            v[i] = old;
            double num = (fp - fm) / ((double)(old + h) - (double)(old - h));
            CHECK_NEAR(ana[i], num, 1e-3 + 1e-2 * fabs(num));
        }
    }
    /* evaluation never touched the running statistics */
    CHECK(nb_node_data(b.nbt)[0] == 0.0f);
    free(r);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_batchnorm_eval_backward)
{
    for (size_t k = 0; k < N_BN; k++) bn_eval_case(&bn_cases[k]);
}

NB_TEST(test_batchnorm_by_hand)
{
    /* x [4, 1] = 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3.
     * gamma 2, beta 1, eps 0: y = 2 (x - 2.5) / sqrt(1.25) + 1.
     * running_mean 0 -> 0.25, running_var 1 -> 0.9 + 0.1 * 5/3. */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){4, 1});
    memcpy(nb_node_data(x), (float[]){1, 2, 3, 4}, 4 * sizeof(float));
    nb_node *gm = nb_const(g, "gamma", 1, (int64_t[]){1}, (float[]){2});
    nb_node *bt = nb_const(g, "beta", 1, (int64_t[]){1}, (float[]){1});
    nb_node *rm = nb_const(g, "rm", 1, (int64_t[]){1}, (float[]){0});
    nb_node *rv = nb_const(g, "rv", 1, (int64_t[]){1}, (float[]){1});
    nb_node *nbt = nb_scalar(g, 0);
    nb_node *y = nb_batchnorm(g, x, gm, bt, rm, rv, nbt, 0.1f, 1e-12f);
    nb_plan *p = nb_plan_create(g, y, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    const float *yv = nb_plan_data(p, y, NULL);
    for (int i = 0; i < 4; i++) CHECK_NEAR(yv[i], 2 * (i + 1 - 2.5) / sqrt(1.25) + 1, 1e-6);
    CHECK_NEAR(nb_node_data(rm)[0], 0.25, 1e-7);
    CHECK_NEAR(nb_node_data(rv)[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-7);
    CHECK(nb_node_data(nbt)[0] == 1.0f);
    /* a seed dy = xhat is removed entirely by the projection: dx = 0;
     * dy = 1 too (a shift): dx = 0 */
    CHECK_OK(nb_plan_backward(p, (float[]){1, 1, 1, 1}));
    for (int i = 0; i < 4; i++) CHECK_NEAR(nb_node_grad(x)[i], 0, 1e-6);
    float xh[4];
    for (int i = 0; i < 4; i++) xh[i] = (float)((i + 1 - 2.5) / sqrt(1.25));
    CHECK_OK(nb_plan_backward(p, xh));
    for (int i = 0; i < 4; i++) CHECK_NEAR(nb_node_grad(x)[i], 0, 1e-6);
    /* dy = [1, 0, 0, 0]: dx = gamma invstd (dy - 1/4 - xhat xhat_0 / 4) */
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_backward(p, (float[]){1, 0, 0, 0}));
    const double is = 1 / sqrt(1.25);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(nb_node_grad(x)[i], 2 * is * ((i == 0) - 0.25 - xh[i] * xh[0] / 4.0), 1e-6);
    nb_plan_free(p);
    nb_graph_free(g);
}

static nb_status fill_bn(nb_plan *p, void *user)
{
    size_t n = 0;
    float *x = nb_plan_data(p, user, &n);
    for (size_t i = 0; i < n; i++) x[i] = 0.37f * (float)((i * 7) % 11) - 1.5f;
    return NB_OK;
}

NB_TEST(test_batchnorm_batch_input)
{
    /* x [batch, 2, 3] as an input: the count per channel follows the plan */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 3, (int64_t[]){NB_BATCH, 2, 3});
    nb_node *w = nb_test_param(g, "w", 1, (int64_t[]){3}, 0.5f, 1.5f);
    nb_node *gm = nb_test_param(g, "gamma", 1, (int64_t[]){2}, 0.5f, 1.5f);
    nb_node *bt = nb_test_param(g, "beta", 1, (int64_t[]){2}, -1, 1);
    nb_node *y = nb_batchnorm(g, nb_mul(g, x, w), gm, bt,
                              nb_const(g, "rm", 1, (int64_t[]){2}, NULL),
                              nb_const(g, "rv", 1, (int64_t[]){2}, (float[]){1, 1}),
                              nb_scalar(g, 0), 0.1f, 1e-5f);
    CHECK_PTR(y);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(y, s) == 3 && s[0] == NB_BATCH && s[1] == 2 && s[2] == 3);
    nb_gradcheck_opts o = {0};
    o.batch = 3;
    o.seed = 4;
    o.fill_inputs = fill_bn;
    o.user = x;
    CHECK_OK(nb_gradcheck(g, nb_tanh(g, y), &o, NULL));
    nb_graph_free(g);

    /* one value per channel cannot be normalised in training mode */
    g = nb_graph_create();
    x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 2});
    y = nb_batchnorm(g, x, NULL, NULL, nb_const(g, "rm", 1, (int64_t[]){2}, NULL),
                     nb_const(g, "rv", 1, (int64_t[]){2}, (float[]){1, 1}), nb_scalar(g, 0), 0.1f,
                     1e-5f);
    CHECK_PTR(y);
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    nb_plan_set_training(p, 1);
    CHECK(nb_plan_forward(p) == NB_ERR_SHAPE);
    CHECK(strstr(nb_last_error(), "batchnorm") && strstr(nb_last_error(), "[1,2]"));
    /* evaluation mode is fine */
    nb_plan_set_training(p, 0);
    CHECK_OK(nb_plan_forward(p));
    nb_plan_free(p);
    /* and so is a batch of 2 in training mode */
    p = nb_plan_create(g, NULL, 2, 0);
    CHECK_PTR(p);
    nb_plan_set_training(p, 1);
    CHECK_OK(nb_plan_forward(p));
    nb_plan_free(p);
    nb_graph_free(g);
}

/* builds batchnorm over x [4, 3] with the given statistic nodes; NULL + error */
typedef enum { BN_OK, BN_RM_PARAM, BN_RV_INPUT, BN_NBT_OP, BN_SAME } bn_bad;

static nb_node *bn_bad_build(nb_graph *g, bn_bad what, const int64_t *rm_shape, int nbt_ndim,
                             float momentum, float eps, int64_t gamma_c)
{
    const int64_t C = 3;
    nb_node *x = nb_param(g, "x", 2, (int64_t[]){4, 3});
    nb_node *gm = nb_param(g, "gamma", 1, &gamma_c);
    nb_node *rm = what == BN_RM_PARAM ? nb_param(g, "rm", 1, &C)
                                      : nb_const(g, "rm", 1, rm_shape ? rm_shape : &C, NULL);
    nb_node *rv = what == BN_RV_INPUT ? nb_input(g, "rv", 1, &C) : nb_const(g, "rv", 1, &C, NULL);
    if (what == BN_SAME) rv = rm;
    nb_node *nbt = what == BN_NBT_OP ? nb_add(g, nb_scalar(g, 0), nb_scalar(g, 1))
                                     : nb_const(g, "nbt", nbt_ndim, (int64_t[]){1}, NULL);
    return nb_batchnorm(g, x, gm, NULL, rm, rv, nbt, momentum, eps);
}

static void bn_error(const char *file, int line, bn_bad what, const int64_t *rm_shape,
                     int nbt_ndim, float momentum, float eps, int64_t gamma_c, nb_status want,
                     const char *want1, const char *want2)
{
    nb_graph *g = nb_graph_create();
    nb_node *y = bn_bad_build(g, what, rm_shape, nbt_ndim, momentum, eps, gamma_c);
    const char *msg = nb_last_error();
    if (y || nb_graph_status(g) != want || !strstr(msg, "batchnorm") || !strstr(msg, want1) ||
        (want2 && !strstr(msg, want2)))
        nb_test_fail(file, line, "got %s '%s'; expected %s naming '%s' and '%s'",
                     nb_status_str(nb_graph_status(g)), msg, nb_status_str(want), want1,
                     want2 ? want2 : "");
    nb_graph_free(g);
}

NB_TEST(test_batchnorm_errors)
{
    /* the fixture itself builds */
    nb_graph *g = nb_graph_create();
    CHECK_PTR(bn_bad_build(g, BN_OK, NULL, 0, 0.1f, 1e-5f, 3));
    nb_graph_free(g);

    bn_error(__FILE__, __LINE__, BN_RM_PARAM, NULL, 0, 0.1f, 1e-5f, 3, NB_ERR_ARG, "running_mean",
             "constant");
    bn_error(__FILE__, __LINE__, BN_RV_INPUT, NULL, 0, 0.1f, 1e-5f, 3, NB_ERR_ARG, "running_var",
             "constant");
    bn_error(__FILE__, __LINE__, BN_NBT_OP, NULL, 0, 0.1f, 1e-5f, 3, NB_ERR_ARG,
             "num_batches_tracked", "constant");
    bn_error(__FILE__, __LINE__, BN_SAME, NULL, 0, 0.1f, 1e-5f, 3, NB_ERR_ARG, "running_mean",
             "running_var");
    bn_error(__FILE__, __LINE__, BN_OK, (int64_t[]){4}, 0, 0.1f, 1e-5f, 3, NB_ERR_SHAPE,
             "[4,3]", "[4]");
    bn_error(__FILE__, __LINE__, BN_OK, NULL, 0, 0.1f, 1e-5f, 2, NB_ERR_SHAPE, "gamma", "[2]");
    bn_error(__FILE__, __LINE__, BN_OK, NULL, 1, 0.1f, 1e-5f, 3, NB_ERR_SHAPE,
             "num_batches_tracked", "[1]");
    bn_error(__FILE__, __LINE__, BN_OK, NULL, 0, 1.5f, 1e-5f, 3, NB_ERR_ARG, "momentum", NULL);
    bn_error(__FILE__, __LINE__, BN_OK, NULL, 0, -0.1f, 1e-5f, 3, NB_ERR_ARG, "momentum", NULL);
    bn_error(__FILE__, __LINE__, BN_OK, NULL, 0, 0.1f, 0.0f, 3, NB_ERR_ARG, "eps", NULL);
    bn_error(__FILE__, __LINE__, BN_OK, NULL, 0, 0.1f, NAN, 3, NB_ERR_ARG, "eps", NULL);

    /* a 1-D input */
    g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 1, (int64_t[]){3});
    nb_node *rm = nb_const(g, "rm", 1, (int64_t[]){3}, NULL);
    nb_node *rv = nb_const(g, "rv", 1, (int64_t[]){3}, NULL);
    CHECK(nb_batchnorm(g, x, NULL, NULL, rm, rv, nb_scalar(g, 0), 0.1f, 1e-5f) == NULL);
    CHECK(strstr(nb_last_error(), "batchnorm") && strstr(nb_last_error(), "[3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    /* NULL inputs: NULL back, message untouched */
    CHECK(nb_batchnorm(g, x, NULL, NULL, NULL, rv, nb_scalar(g, 0), 0.1f, 1e-5f) == NULL);
    CHECK(strstr(nb_last_error(), "[3]") != NULL);
    nb_graph_free(g);
}

/* ==== layernorm ==== */

typedef struct {
    int ndim;
    int64_t d[4];
    int naxes, gamma, beta;
} ln_case;

static const ln_case ln_cases[] = {
    {2, {3, 4}, 1, 1, 1},
    {3, {2, 3, 4}, 2, 1, 1},
    {3, {2, 2, 3}, 3, 0, 0},
    {2, {4, 5}, 1, 1, 0},
    {2, {4, 5}, 1, 0, 1},
    {1, {6}, 1, 1, 1},
    {4, {2, 1, 3, 2}, 2, 1, 1},
};
#define N_LN (sizeof ln_cases / sizeof ln_cases[0])

static nb_node *ln_build(nb_graph *g, const ln_case *c, float eps, nb_node **px, nb_node **pg,
                         nb_node **pb)
{
    const int64_t *tail = c->d + c->ndim - c->naxes;
    *px = nb_test_param(g, "x", c->ndim, c->d, -1, 1);
    *pg = c->gamma ? nb_test_param(g, "gamma", c->naxes, tail, 0.5f, 1.5f) : NULL;
    *pb = c->beta ? nb_test_param(g, "beta", c->naxes, tail, -0.5f, 0.5f) : NULL;
    return nb_layernorm(g, *px, c->naxes, *pg, *pb, eps);
}

NB_TEST(test_layernorm_gradcheck)
{
    for (size_t k = 0; k < N_LN; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *x, *gm, *bt;
        CHECK_GRAD(g, ln_build(g, &ln_cases[k], 1e-5f, &x, &gm, &bt));
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_create();
    nb_node *x, *gm, *bt;
    CHECK_GRAD(g, nb_tanh(g, ln_build(g, &ln_cases[1], 0.1f, &x, &gm, &bt)));
    nb_graph_free(g);
}

NB_TEST(test_layernorm_forward)
{
    for (size_t k = 0; k < N_LN; k++) {
        const ln_case *c = &ln_cases[k];
        const double eps = 1e-3;
        nb_graph *g = nb_graph_create();
        nb_node *x, *gm, *bt;
        nb_node *y = ln_build(g, c, (float)eps, &x, &gm, &bt);
        CHECK_PTR(y);
        CHECK(strcmp(nb_node_op(y), "layernorm") == 0);
        nb_plan *p = nb_plan_create(g, NULL, 1, 0);
        CHECK_PTR(p);
        CHECK_OK(nb_plan_forward(p));
        const size_t n = nb_node_numel(x);
        size_t D = 1, count = 0;
        for (int a = c->ndim - c->naxes; a < c->ndim; a++) D *= (size_t)c->d[a];
        const float *got = nb_plan_data(p, y, &count), *xv = nb_node_data(x);
        const float *gv = gm ? nb_node_data(gm) : NULL, *bv = bt ? nb_node_data(bt) : NULL;
        CHECK(count == n);
        for (size_t r = 0; r < n / D && count == n; r++) {
            double s = 0, v = 0;
            for (size_t j = 0; j < D; j++) s += xv[r * D + j];
            double mean = s / D;
            for (size_t j = 0; j < D; j++) v += (xv[r * D + j] - mean) * (xv[r * D + j] - mean);
            double is = 1 / sqrt(v / D + eps);
            for (size_t j = 0; j < D; j++) {
                double ref = (xv[r * D + j] - mean) * is * (gv ? gv[j] : 1) + (bv ? bv[j] : 0);
                CHECK_NEAR(got[r * D + j], ref, 2e-5);
            }
        }
        nb_plan_free(p);
        nb_graph_free(g);
    }
}

static nb_status fill_ln(nb_plan *p, void *user)
{
    size_t n = 0;
    float *x = nb_plan_data(p, user, &n);
    for (size_t i = 0; i < n; i++) x[i] = 0.29f * (float)((i * 5) % 13) - 1.7f;
    return NB_OK;
}

NB_TEST(test_layernorm_batch_input)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 5});
    nb_node *gm = nb_test_param(g, "gamma", 1, (int64_t[]){5}, 0.5f, 1.5f);
    nb_node *bt = nb_test_param(g, "beta", 1, (int64_t[]){5}, -1, 1);
    nb_node *y = nb_tanh(g, nb_layernorm(g, x, 1, gm, bt, 1e-5f));
    CHECK_PTR(y);
    nb_gradcheck_opts o = {0};
    o.batch = 4;
    o.seed = 8;
    o.fill_inputs = fill_ln;
    o.user = x;
    CHECK_OK(nb_gradcheck(g, y, &o, NULL));
    nb_graph_free(g);
}

NB_TEST(test_layernorm_errors)
{
    const int bad_naxes[] = {0, 3, -1};
    for (size_t k = 0; k < 3; k++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_param(g, "x", 2, (int64_t[]){3, 4});
        CHECK(nb_layernorm(g, x, bad_naxes[k], NULL, NULL, 1e-5f) == NULL);
        CHECK(strstr(nb_last_error(), "layernorm") && strstr(nb_last_error(), "naxes"));
        CHECK(nb_graph_status(g) == NB_ERR_ARG);
        nb_graph_free(g);
    }
    /* gamma of the wrong shape: both shapes named */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 3, (int64_t[]){2, 3, 4});
    nb_node *gm = nb_param(g, "gamma", 1, (int64_t[]){3});
    CHECK(nb_layernorm(g, x, 1, gm, NULL, 1e-5f) == NULL);
    CHECK(strstr(nb_last_error(), "layernorm") && strstr(nb_last_error(), "gamma") &&
          strstr(nb_last_error(), "[2,3,4]") && strstr(nb_last_error(), "[3]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    nb_graph_free(g);

    /* beta covering the wrong number of axes */
    g = nb_graph_create();
    x = nb_param(g, "x", 3, (int64_t[]){2, 3, 4});
    nb_node *bt = nb_param(g, "beta", 1, (int64_t[]){4});
    CHECK(nb_layernorm(g, x, 2, NULL, bt, 1e-5f) == NULL);
    CHECK(strstr(nb_last_error(), "beta") && strstr(nb_last_error(), "[4]"));
    nb_graph_free(g);

    /* eps */
    g = nb_graph_create();
    x = nb_param(g, "x", 2, (int64_t[]){3, 4});
    CHECK(nb_layernorm(g, x, 1, NULL, NULL, -1.0f) == NULL);
    CHECK(strstr(nb_last_error(), "layernorm") && strstr(nb_last_error(), "eps"));
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);
}
