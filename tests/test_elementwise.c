/*
 * test_elementwise.c - binary ops with broadcasting, one-input ops and
 * activations: gradient checks on shapes with size-1 edges and broadcasting,
 * forward values against the C library, and shape errors.
 */
#include "test.h"

#include <string.h>

typedef nb_node *(*binary_fn)(nb_graph *, nb_node *, nb_node *);

static const struct { const char *name; binary_fn fn; } binaries[] = {
    {"add", nb_add}, {"sub", nb_sub}, {"mul", nb_mul}, {"div", nb_div},
};

/* pairs of shapes that broadcast: same, scalar, trailing, leading 1s, both ways */
static const struct { int na; int64_t a[4]; int nb; int64_t b[4]; } bshapes[] = {
    {2, {3, 4}, 2, {3, 4}},
    {2, {3, 4}, 0, {0}},
    {2, {3, 4}, 1, {4}},
    {3, {2, 3, 4}, 3, {2, 1, 4}},
    {3, {2, 1, 4}, 2, {3, 1}},
    {1, {1}, 3, {2, 3, 2}},
    {4, {1, 2, 1, 3}, 4, {2, 1, 2, 1}},
    {1, {5}, 1, {5}},
};

NB_TEST(test_binary_gradcheck)
{
    for (size_t f = 0; f < sizeof binaries / sizeof binaries[0]; f++)
        for (size_t s = 0; s < sizeof bshapes / sizeof bshapes[0]; s++) {
            nb_graph *g = nb_graph_create();
            /* b in [0.5, 1.5] keeps div away from its pole */
            nb_node *a = nb_test_param(g, "a", bshapes[s].na, bshapes[s].a, -1.0f, 1.0f);
            nb_node *b = nb_test_param(g, "b", bshapes[s].nb, bshapes[s].b, 0.5f, 1.5f);
            nb_node *y = binaries[f].fn(g, a, b);
            CHECK_GRAD(g, y);
            nb_graph_free(g);
        }
}

NB_TEST(test_binary_same_input_twice)
{
    /* x * x: both gradient contributions land in one buffer */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_test_param(g, "x", 2, (int64_t[]){2, 3}, -1, 1);
    CHECK_GRAD(g, nb_mul(g, x, x));
    nb_graph_free(g);
}

NB_TEST(test_binary_forward_broadcast)
{
    nb_graph *g = nb_graph_create();
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 20, 30};
    nb_node *a = nb_const(g, "a", 2, (int64_t[]){2, 3}, av);
    nb_node *b = nb_const(g, "b", 1, (int64_t[]){3}, bv);
    nb_node *c = nb_const(g, "c", 2, (int64_t[]){2, 1}, (float[]){2, 4});
    nb_node *s = nb_sub(g, a, b), *d = nb_div(g, a, c);
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_PTR(p);
    CHECK_OK(nb_plan_forward(p));
    const float *ys = nb_plan_data(p, s, NULL), *yd = nb_plan_data(p, d, NULL);
    for (int i = 0; i < 6; i++) {
        CHECK(ys[i] == av[i] - bv[i % 3]);
        CHECK(yd[i] == av[i] / (i < 3 ? 2.0f : 4.0f));
    }
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_binary_shape_error)
{
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_param(g, "a", 2, (int64_t[]){3, 4});
    nb_node *b = nb_param(g, "b", 2, (int64_t[]){3, 5});
    CHECK(nb_add(g, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "add") && strstr(nb_last_error(), "[3,4]") &&
          strstr(nb_last_error(), "[3,5]"));
    CHECK(nb_graph_status(g) == NB_ERR_SHAPE);
    /* NULL propagates without replacing the first message */
    CHECK(nb_relu(g, NULL) == NULL);
    CHECK(strstr(nb_last_error(), "add") != NULL);
    CHECK(strstr(nb_graph_error(g), "[3,5]") != NULL);
    /* a plan refuses a graph with a build error */
    CHECK(nb_plan_create(g, NULL, 1, 0) == NULL);
    nb_graph_free(g);
}

/* ---- one-input ops and activations ---- */

typedef struct {
    const char *name;
    nb_node *(*build)(nb_graph *, nb_node *);
    float lo, hi;          /* input range: away from kinks and poles */
    double (*ref)(double); /* forward reference */
} unary_case;

static nb_node *b_neg(nb_graph *g, nb_node *x) { return nb_neg(g, x); }
static nb_node *b_scale(nb_graph *g, nb_node *x) { return nb_scale(g, x, -2.5f); }
static nb_node *b_add_scalar(nb_graph *g, nb_node *x) { return nb_add_scalar(g, x, 0.75f); }
static nb_node *b_pow3(nb_graph *g, nb_node *x) { return nb_pow(g, x, 3.0f); }
static nb_node *b_pow_frac(nb_graph *g, nb_node *x) { return nb_pow(g, x, -1.5f); }
static nb_node *b_leaky(nb_graph *g, nb_node *x) { return nb_leaky_relu(g, x, 0.1f); }
static nb_node *b_elu(nb_graph *g, nb_node *x) { return nb_elu(g, x, 1.3f); }
static nb_node *b_gelu(nb_graph *g, nb_node *x) { return nb_gelu(g, x, 0); }
static nb_node *b_gelu_tanh(nb_graph *g, nb_node *x) { return nb_gelu(g, x, 1); }
static nb_node *b_softplus(nb_graph *g, nb_node *x) { return nb_softplus(g, x, 1.0f, 20.0f); }
static nb_node *b_softplus_b(nb_graph *g, nb_node *x) { return nb_softplus(g, x, 2.0f, 3.0f); }

static double r_neg(double x) { return -x; }
static double r_scale(double x) { return -2.5 * x; }
static double r_add_scalar(double x) { return x + 0.75; }
static double r_pow3(double x) { return x * x * x; }
static double r_pow_frac(double x) { return pow(x, -1.5); }
static double r_relu(double x) { return x > 0 ? x : 0; }
static double r_leaky(double x) { return x > 0 ? x : 0.1 * x; }
static double r_elu(double x) { return x > 0 ? x : 1.3 * (exp(x) - 1); }
static double r_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double r_gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / 3.141592653589793) * (x + 0.044715 * x * x * x)));
}
static double r_sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double r_softplus(double x) { return log1p(exp(x)); }
static double r_softplus_b(double x) { return 2 * x > 3 ? x : log1p(exp(2 * x)) / 2; }

static const unary_case unaries[] = {
    {"neg", b_neg, -2, 2, r_neg},
    {"scale", b_scale, -2, 2, r_scale},
    {"add_scalar", b_add_scalar, -2, 2, r_add_scalar},
    {"exp", nb_exp, -2, 2, exp},
    {"log", nb_log, 0.5f, 3, log},
    {"sqrt", nb_sqrt, 0.5f, 3, sqrt},
    {"pow3", b_pow3, -2, 2, r_pow3},
    {"pow_frac", b_pow_frac, 0.5f, 2, r_pow_frac},
    {"abs", nb_abs, 0.1f, 2, fabs},          /* both signs below */
    {"relu", nb_relu, 0.1f, 2, r_relu},
    {"leaky_relu", b_leaky, 0.1f, 2, r_leaky},
    {"elu", b_elu, 0.1f, 2, r_elu},
    {"gelu", b_gelu, -3, 3, r_gelu},
    {"gelu_tanh", b_gelu_tanh, -3, 3, r_gelu_tanh},
    {"sigmoid", nb_sigmoid, -4, 4, r_sigmoid},
    {"tanh", nb_tanh, -2, 2, tanh},
    {"softplus", b_softplus, -4, 4, r_softplus},
    {"softplus_beta", b_softplus_b, -1, 3, r_softplus_b},
};

/* A parameter with values of both signs, each at least lo away from 0, so
 * kinks at 0 (relu, abs, leaky_relu, elu) are never straddled by +-eps. */
static nb_node *signed_param(nb_graph *g, const int64_t *shape, float lo, float hi)
{
    nb_node *x = nb_test_param(g, "x", 3, shape, lo, hi);
    float *v = nb_node_data(x);
    for (size_t i = 0; i < nb_node_numel(x); i += 2) v[i] = -v[i];
    return x;
}

NB_TEST(test_unary_gradcheck)
{
    for (size_t u = 0; u < sizeof unaries / sizeof unaries[0]; u++) {
        int kinked = unaries[u].lo > 0 && unaries[u].ref != log && unaries[u].ref != sqrt &&
                     unaries[u].ref != r_pow_frac;
        static const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 4}, {1, 7, 1}};
        for (int s = 0; s < 3; s++) {
            nb_graph *g = nb_graph_create();
            nb_node *x;
            if (kinked) {
                x = signed_param(g, shapes[s], unaries[u].lo, unaries[u].hi);
            } else {
                x = nb_test_param(g, "x", 3, shapes[s], unaries[u].lo, unaries[u].hi);
            }
            nb_node *y = unaries[u].build(g, x);
            if (!y) nb_test_fail(__FILE__, __LINE__, "%s: %s", unaries[u].name, nb_last_error());
            CHECK_GRAD(g, y);
            nb_graph_free(g);
        }
    }
}

NB_TEST(test_unary_forward_values)
{
    for (size_t u = 0; u < sizeof unaries / sizeof unaries[0]; u++) {
        nb_graph *g = nb_graph_create();
        nb_node *x = nb_test_param(g, "x", 1, (int64_t[]){50}, unaries[u].lo - 1, unaries[u].hi);
        float *xv = nb_node_data(x);
        if (unaries[u].ref == log || unaries[u].ref == sqrt || unaries[u].ref == r_pow_frac)
            for (int i = 0; i < 50; i++) xv[i] = fabsf(xv[i]) + 0.1f;
        nb_node *y = unaries[u].build(g, x);
        nb_plan *p = nb_plan_create(g, NULL, 1, 0);
        CHECK_PTR(p);
        CHECK_OK(nb_plan_forward(p));
        const float *yv = nb_plan_data(p, y, NULL);
        for (int i = 0; i < 50; i++) {
            double want = unaries[u].ref(xv[i]);
            if (!(fabs(yv[i] - want) <= 2e-6 * (1 + fabs(want))))
                nb_test_fail(__FILE__, __LINE__, "%s(%g) = %.9g, expected %.9g", unaries[u].name,
                             xv[i], yv[i], want);
        }
        nb_plan_free(p);
        nb_graph_free(g);
    }
}

NB_TEST(test_activation_extremes)
{
    /* sigmoid and softplus must not overflow at large |x| */
    nb_graph *g = nb_graph_create();
    float v[4] = {-100, -30, 30, 100};
    nb_node *x = nb_const(g, "x", 1, (int64_t[]){4}, v);
    nb_node *s = nb_sigmoid(g, x), *sp = nb_softplus(g, x, 1, 20);
    nb_plan *p = nb_plan_create(g, NULL, 1, 0);
    CHECK_OK(nb_plan_forward(p));
    const float *ys = nb_plan_data(p, s, NULL), *ysp = nb_plan_data(p, sp, NULL);
    for (int i = 0; i < 4; i++) {
        CHECK(isfinite(ys[i]) && ys[i] >= 0 && ys[i] <= 1);
        CHECK(isfinite(ysp[i]) && ysp[i] >= 0);
    }
    CHECK(ys[0] < 1e-30f && ys[3] == 1.0f && ysp[3] == 100.0f);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_softplus_bad_beta)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 1, (int64_t[]){3});
    CHECK(nb_softplus(g, x, 0.0f, 20.0f) == NULL);
    CHECK(strstr(nb_last_error(), "softplus") != NULL);
    nb_graph_free(g);
}
