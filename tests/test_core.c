/*
 * test_core.c - graphs, plans and autodiff as machinery: random streams,
 * build errors, batch axes, buffer reuse, gradient accumulation where a node
 * feeds several consumers, skipped gradients, stale plans.
 */
#include "test.h"

#include <string.h>

NB_TEST(test_rng_repeats)
{
    nb_rng a, b;
    nb_rng_seed(&a, 7);
    nb_rng_seed(&b, 7);
    for (int i = 0; i < 1000; i++) CHECK(nb_rng_next(&a) == nb_rng_next(&b));
    nb_rng_seed(&b, 8);
    CHECK(nb_rng_next(&a) != nb_rng_next(&b));
    /* a known value pins the algorithm: streams must not change between versions */
    nb_rng_seed(&a, 0);
    uint64_t first = nb_rng_next(&a);
    nb_rng_seed(&a, 0);
    CHECK(first == nb_rng_next(&a));
    CHECK(first == 0x99ec5f36cb75f2b4ull);
    /* uniform in [0,1), normal has mean ~0 and variance ~1, below() in range */
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double u = nb_rng_uniform(&a), z = nb_rng_normal(&a);
        CHECK(u >= 0 && u < 1);
        s += z;
        s2 += z * z;
        CHECK(nb_rng_below(&a, 10) < 10);
    }
    CHECK(fabs(s / 100000) < 0.02);
    CHECK(fabs(s2 / 100000 - 1) < 0.02);
}

NB_TEST(test_graph_build_errors)
{
    nb_graph *g = nb_graph_create();
    CHECK(nb_param(g, "w", 2, (int64_t[]){3, 0}) == NULL);
    CHECK(strstr(nb_last_error(), "axis 1 has size 0") != NULL);
    nb_graph_free(g);

    g = nb_graph_create();
    CHECK(nb_param(g, NULL, 1, (int64_t[]){3}) == NULL);
    CHECK(strstr(nb_last_error(), "needs a name") != NULL);
    nb_graph_free(g);

    g = nb_graph_create();
    CHECK_PTR(nb_param(g, "w", 1, (int64_t[]){3}));
    CHECK(nb_param(g, "w", 1, (int64_t[]){3}) == NULL);
    CHECK(strstr(nb_last_error(), "'w' already exists") != NULL);
    nb_graph_free(g);

    g = nb_graph_create();
    CHECK(nb_param(g, "w", 1, (int64_t[]){NB_BATCH}) == NULL); /* parameters have fixed shapes */
    CHECK(nb_input(g, "x", NB_MAX_DIMS + 1, (int64_t[NB_MAX_DIMS + 1]){1}) == NULL);
    CHECK(nb_graph_status(g) == NB_ERR_ARG);
    nb_graph_free(g);

    /* nodes from another graph are refused */
    nb_graph *g1 = nb_graph_create(), *g2 = nb_graph_create();
    nb_node *a = nb_param(g1, "a", 1, (int64_t[]){2});
    nb_node *b = nb_param(g2, "b", 1, (int64_t[]){2});
    CHECK(nb_add(g1, a, b) == NULL);
    CHECK(strstr(nb_last_error(), "another graph") != NULL);
    nb_graph_free(g1);
    nb_graph_free(g2);
}

NB_TEST(test_batch_axes)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 3});
    nb_node *w = nb_param(g, "w", 1, (int64_t[]){3});
    nb_node *y = nb_mul(g, x, w);
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(y, s) == 2 && s[0] == NB_BATCH && s[1] == 3);
    CHECK(nb_node_shape(w, s) == 1 && s[0] == 3);
    nb_plan *p = nb_plan_create(g, NULL, 5, 0);
    CHECK_PTR(p);
    CHECK(nb_plan_shape(p, y, s) == 2 && s[0] == 5 && s[1] == 3);
    size_t n;
    CHECK(nb_plan_data(p, x, &n) && n == 15);
    float in[15];
    for (int i = 0; i < 15; i++) in[i] = (float)i;
    CHECK(nb_plan_set_input(p, x, in, 14) == NB_ERR_SHAPE);
    CHECK(strstr(nb_last_error(), "[5,3]") != NULL);
    CHECK_OK(nb_plan_set_input(p, x, in, 15));
    float *wv = nb_node_data(w);
    wv[0] = 1, wv[1] = 2, wv[2] = 3;
    CHECK_OK(nb_plan_forward(p));
    const float *yv = nb_plan_data(p, y, NULL);
    for (int i = 0; i < 15; i++) CHECK(yv[i] == in[i] * wv[i % 3]);
    nb_plan_free(p);
    CHECK(nb_plan_create(g, NULL, 0, 0) == NULL);
    nb_graph_free(g);
}

/* The gradient of a node used by several consumers is the sum of what each
 * consumer sends back: y = a*b + a*c + exp(a) */
NB_TEST(test_fanout_accumulates)
{
    nb_graph *g = nb_graph_create();
    nb_node *a = nb_test_param(g, "a", 2, (int64_t[]){2, 3}, -1, 1);
    nb_node *b = nb_test_param(g, "b", 2, (int64_t[]){2, 3}, -1, 1);
    nb_node *c = nb_test_param(g, "c", 1, (int64_t[]){3}, -1, 1);
    nb_node *y = nb_add(g, nb_add(g, nb_mul(g, a, b), nb_mul(g, a, c)), nb_exp(g, a));
    CHECK_GRAD(g, y);
    /* and by hand: d(sum y)/da = b + c + exp(a) */
    nb_node *loss = nb_sum(g, y, 0, NULL, 0);
    nb_plan *p = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_backward(p, NULL));
    const float *av = nb_node_data(a), *bv = nb_node_data(b), *cv = nb_node_data(c);
    const float *ga = nb_node_grad(a);
    for (int i = 0; i < 6; i++) CHECK_NEAR(ga[i], bv[i] + cv[i % 3] + expf(av[i]), 1e-5);
    /* a second backward without zeroing accumulates, as in PyTorch */
    CHECK_OK(nb_plan_backward(p, NULL));
    for (int i = 0; i < 6; i++) CHECK_NEAR(ga[i], 2 * (bv[i] + cv[i % 3] + expf(av[i])), 2e-5);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_no_grad_for_constants_and_inputs)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 1, (int64_t[]){4});
    nb_node *k = nb_const(g, "k", 1, (int64_t[]){4}, NULL);
    nb_node *w = nb_param(g, "w", 1, (int64_t[]){4});
    nb_node *side = nb_exp(g, x);              /* needs no gradient at all */
    nb_node *y = nb_mul(g, nb_add(g, x, k), w);
    CHECK(!nb_node_requires_grad(x) && !nb_node_requires_grad(k) && !nb_node_requires_grad(side));
    CHECK(nb_node_requires_grad(w) && nb_node_requires_grad(y));
    nb_plan *p = nb_plan_create(g, y, 1, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    CHECK(nb_plan_grad(p, x, NULL) == NULL && nb_plan_grad(p, k, NULL) == NULL);
    CHECK(nb_plan_grad(p, side, NULL) == NULL);
    CHECK(nb_plan_grad(p, w, NULL) != NULL);
    nb_plan_free(p);
    /* a training plan needs a target that depends on a parameter */
    CHECK(nb_plan_create(g, side, 1, NB_PLAN_TRAIN) == NULL);
    CHECK(strstr(nb_last_error(), "depends on a parameter") != NULL);
    nb_graph_free(g);
}

NB_TEST(test_stale_plan)
{
    nb_graph *g = nb_graph_create();
    nb_node *w = nb_param(g, "w", 1, (int64_t[]){4});
    nb_node *y = nb_relu(g, w);
    nb_plan *p = nb_plan_create(g, y, 1, NB_PLAN_TRAIN);
    CHECK_OK(nb_plan_forward(p));
    CHECK_PTR(nb_param(g, "v", 1, (int64_t[]){100000})); /* may move the parameter block */
    CHECK(nb_plan_forward(p) == NB_ERR_STATE);
    CHECK(strstr(nb_last_error(), "create a new plan") != NULL);
    nb_plan_free(p);
    nb_graph_free(g);
}

/* A chain y = f(f(f(...f(x)))) of 20 ops needs only two value buffers when
 * nothing is kept, and every value when planned with NB_PLAN_KEEP. */
NB_TEST(test_plan_reuses_memory)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 1, (int64_t[]){1024});
    nb_node *h = x;
    for (int i = 0; i < 20; i++) h = nb_tanh(g, h);
    nb_plan *lean = nb_plan_create(g, NULL, 1, 0);
    nb_plan *keep = nb_plan_create(g, NULL, 1, NB_PLAN_KEEP);
    CHECK_PTR(lean);
    CHECK_PTR(keep);
    CHECK(nb_plan_memory(lean) <= 3 * 1024 * sizeof(float));
    CHECK(nb_plan_memory(keep) >= 21 * 1024 * sizeof(float));
    float in[1024];
    for (int i = 0; i < 1024; i++) in[i] = (float)(i % 17) / 8 - 1;
    CHECK_OK(nb_plan_set_input(lean, x, in, 1024));
    CHECK_OK(nb_plan_set_input(keep, x, in, 1024));
    CHECK_OK(nb_plan_forward(lean));
    CHECK_OK(nb_plan_forward(keep));
    CHECK(memcmp(nb_plan_data(lean, h, NULL), nb_plan_data(keep, h, NULL), sizeof in) == 0);
    nb_plan_free(lean);
    nb_plan_free(keep);
    nb_graph_free(g);
}

/* Buffer reuse must not change a single bit of a training step: compare the
 * gradients of a small network planned lean and planned with every buffer kept. */
NB_TEST(test_plan_reuse_is_exact_in_backward)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 5});
    nb_node *w1 = nb_test_param(g, "w1", 2, (int64_t[]){5, 7}, -0.5f, 0.5f);
    nb_node *b1 = nb_test_param(g, "b1", 1, (int64_t[]){7}, -0.1f, 0.1f);
    nb_node *w2 = nb_test_param(g, "w2", 2, (int64_t[]){7, 3}, -0.5f, 0.5f);
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, x, w1), b1));
    nb_node *h2 = nb_sigmoid(g, nb_mul(g, h, h));
    nb_node *y = nb_matmul(g, nb_add(g, h, h2), w2);
    nb_node *loss = nb_mean(g, nb_mul(g, y, y), 0, NULL, 0);
    CHECK_PTR(loss);
    float in[4 * 5];
    for (int i = 0; i < 20; i++) in[i] = (float)((i * 7) % 11) / 5 - 1;
    size_t np = nb_graph_param_numel(g);
    float grads[2][64];
    CHECK(np <= 64);
    for (int k = 0; k < 2; k++) {
        nb_plan *p = nb_plan_create(g, loss, 4, NB_PLAN_TRAIN | (k ? NB_PLAN_KEEP : 0));
        CHECK_PTR(p);
        if (!p) break;
        CHECK_OK(nb_plan_set_input(p, x, in, 20));
        nb_graph_zero_grad(g);
        CHECK_OK(nb_plan_forward(p));
        CHECK_OK(nb_plan_backward(p, NULL));
        memcpy(grads[k], nb_graph_param_grad(g), np * sizeof(float));
        nb_plan_free(p);
    }
    CHECK(memcmp(grads[0], grads[1], np * sizeof(float)) == 0);
    nb_graph_free(g);
}

NB_TEST(test_sgd_matches_reference)
{
    /* torch.optim.SGD rules, step by step, against a double-precision replay */
    const nb_sgd_opts cases[] = {
        {0.1f, 0, 0, 0, 0}, {0.1f, 0.9f, 0, 0, 0}, {0.05f, 0.9f, 0.1f, 0.01f, 0},
        {0.05f, 0.8f, 0, 0.001f, 1},
    };
    for (int c = 0; c < 4; c++) {
        nb_graph *g = nb_graph_create();
        nb_node *w = nb_test_param(g, "w", 1, (int64_t[]){5}, -1, 1);
        nb_optim *o = nb_sgd_create(g, &cases[c]);
        CHECK_PTR(o);
        double p[5], buf[5];
        for (int i = 0; i < 5; i++) p[i] = nb_node_data(w)[i];
        for (int step = 0; step < 20; step++) {
            float *gr = nb_node_grad(w);
            for (int i = 0; i < 5; i++) gr[i] = (float)(0.3 * sin(step + i));
            CHECK_OK(nb_optim_step(o));
            for (int i = 0; i < 5; i++) {
                double d = gr[i] + cases[c].weight_decay * p[i];
                if (cases[c].momentum) {
                    buf[i] = step == 0 ? d : cases[c].momentum * buf[i] + (1 - cases[c].dampening) * d;
                    d = cases[c].nesterov ? d + cases[c].momentum * buf[i] : buf[i];
                }
                p[i] -= cases[c].lr * d;
            }
        }
        for (int i = 0; i < 5; i++) CHECK_NEAR(nb_node_data(w)[i], p[i], 1e-5 * (1 + fabs(p[i])));
        nb_optim_free(o);
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_create();
    CHECK(nb_sgd_create(g, &(nb_sgd_opts){0.1f, 0, 0.5f, 0, 1}) == NULL);
    CHECK(strstr(nb_last_error(), "Nesterov") != NULL);
    nb_graph_free(g);
}

NB_TEST(test_errors_are_sticky)
{
    /* after a build error every builder returns NULL, so a failed optional
     * input (conv2d's bias) can never pass for an absent one */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 4, (int64_t[]){1, 2, 5, 5});
    nb_node *w = nb_param(g, "w", 4, (int64_t[]){3, 2, 3, 3});
    nb_node *bad = nb_add(g, x, w);
    CHECK(bad == NULL);
    CHECK(nb_conv2d(g, x, w, bad, NULL) == NULL);
    CHECK(nb_relu(g, x) == NULL);
    CHECK(strstr(nb_last_error(), "add") != NULL);
    CHECK(strstr(nb_graph_error(g), "add") != NULL);
    nb_graph_free(g);
}

NB_TEST(test_detect_anomaly_names_the_op)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_param(g, "x", 1, (int64_t[]){3});
    nb_node *y = nb_sum(g, nb_log(g, nb_relu(g, x)), 0, NULL, 0);
    float *v = nb_node_data(x);
    v[0] = 1, v[1] = -2, v[2] = 3; /* log(relu(-2)) = log(0) = -inf */
    nb_plan *p = nb_plan_create(g, y, 1, NB_PLAN_TRAIN);
    CHECK_OK(nb_plan_forward(p)); /* off by default: the loss is just -inf */
    nb_plan_set_detect_anomaly(p, 1);
    CHECK(nb_plan_forward(p) == NB_ERR_NUMERIC);
    CHECK(strstr(nb_last_error(), "(log)") && strstr(nb_last_error(), "infinite") &&
          strstr(nb_last_error(), "element 1"));
    nb_plan_free(p);
    nb_graph_free(g);
    /* forward finite, backward not: d sqrt(x)/dx at 0 */
    g = nb_graph_create();
    x = nb_param(g, "x", 1, (int64_t[]){3});
    nb_node *z = nb_sum(g, nb_sqrt(g, x), 0, NULL, 0);
    nb_node_data(x)[0] = 1;
    p = nb_plan_create(g, z, 1, NB_PLAN_TRAIN);
    nb_plan_set_detect_anomaly(p, 1);
    CHECK_OK(nb_plan_forward(p));
    CHECK(nb_plan_backward(p, NULL) == NB_ERR_NUMERIC);
    CHECK(strstr(nb_last_error(), "(sqrt)") && strstr(nb_last_error(), "gradient"));
    nb_plan_free(p);
    nb_graph_free(g);
}
