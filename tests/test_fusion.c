/*
 * test_fusion.c - a plan fuses a relu into the conv2d or linear that feeds
 * it (plan.c, "Fusion"). The fused plan must give the same bits as the
 * unfused one (a plan that keeps every value fuses nothing), for any number
 * of threads, any batch size (convolution works in chunks of samples), and
 * with anomaly detection on; and it must fuse only where the op's own output
 * is out of sight. Every plan starts with its buffers full of NaN, which
 * also checks that gradients nothing has written are overwritten, not
 * added to, by the ops told to (nb_exec.fresh).
 */
#include "test.h"
#include "../src/core/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    nb_graph *g;
    nb_node *x, *t, *c1, *r1, *cw, *rw, *c2, *r2, *l1, *rl, *out, *loss;
} net;

/* x [B,3,9,9] -> conv 3x3 pad 1 -> relu -> max pool 2 -> conv 3x3 stride 2
 * groups 2 -> relu -> flatten -> linear 5 -> relu -> linear 3; mse to t.
 * wide: the first conv has 16 outputs, followed by a conv 16 -> 16 3x3 pad
 * 1 and a relu (Winograd's path, kernels/winograd.c) before the pool. */
static net build(int wide)
{
    net n;
    const int64_t c1 = wide ? 16 : 4;
    nb_graph *g = n.g = nb_graph_create();
    n.x = nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 3, 9, 9});
    n.t = nb_input(g, "t", 2, (int64_t[]){NB_BATCH, 3});
    nb_node *w1 = nb_test_param(g, "w1", 4, (int64_t[]){c1, 3, 3, 3}, -0.5f, 0.5f);
    nb_node *b1 = nb_test_param(g, "b1", 1, (int64_t[]){c1}, -0.5f, 0.5f);
    nb_node *w2 = nb_test_param(g, "w2", 4, (int64_t[]){6, c1 / 2, 3, 3}, -0.5f, 0.5f);
    nb_node *b2 = nb_test_param(g, "b2", 1, (int64_t[]){6}, -0.5f, 0.5f);
    nb_node *w3 = nb_test_param(g, "w3", 2, (int64_t[]){5, 6}, -0.5f, 0.5f);
    nb_node *b3 = nb_test_param(g, "b3", 1, (int64_t[]){5}, -0.5f, 0.5f);
    nb_node *w4 = nb_test_param(g, "w4", 2, (int64_t[]){3, 5}, -0.5f, 0.5f);
    n.c1 = nb_conv2d(g, n.x, w1, b1, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1});
    n.r1 = nb_relu(g, n.c1);
    nb_node *top = n.r1;
    n.cw = n.rw = NULL;
    if (wide) {
        nb_node *ww = nb_test_param(g, "ww", 4, (int64_t[]){16, 16, 3, 3}, -0.2f, 0.2f);
        nb_node *bw = nb_test_param(g, "bw", 1, (int64_t[]){16}, -0.5f, 0.5f);
        n.cw = nb_conv2d(g, top, ww, bw, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1});
        top = n.rw = nb_relu(g, n.cw);
    }
    nb_node *p1 = nb_max_pool2d(g, top, 2, 2, 0, 0, 0, 0);
    n.c2 = nb_conv2d(g, p1, w2, b2, &(nb_conv2d_opts){.stride_h = 2, .stride_w = 2, .groups = 2});
    n.r2 = nb_relu(g, n.c2);
    n.l1 = nb_linear(g, nb_flatten(g, n.r2), w3, b3);
    n.rl = nb_relu(g, n.l1);
    n.out = nb_linear(g, n.rl, w4, NULL);
    n.loss = nb_mse(g, n.out, n.t);
    nb_node_keep(n.out);   /* read after backward */
    return n;
}

typedef struct {
    float loss, *out, *grad;
    size_t n_out, n_grad;
} result;

/* One forward and backward pass of batch B with the given plan flags and
 * threads; the inputs depend on B only. */
static result run(net *n, int B, unsigned flags, int threads, int anomaly, nb_plan **keep_plan)
{
    result r = {0};
    CHECK_OK(nb_graph_set_threads(n->g, threads));
    nb_plan *p = nb_plan_create(n->g, n->loss, B, NB_PLAN_TRAIN | flags);
    CHECK_PTR(p);
    if (!p) return r;
    nb_plan_set_detect_anomaly(p, anomaly);
    /* every buffer starts as NaN: a gradient the plan neither zeroed nor had
     * overwritten (nb_exec.fresh) would spread it */
    nb_plan_poison(p);
    nb_rng rng;
    nb_rng_seed(&rng, 100 + (uint64_t)B);
    size_t nx, nt;
    float *x = nb_plan_data(p, n->x, &nx), *t = nb_plan_data(p, n->t, &nt);
    nb_fill_uniform(x, nx, -1.0f, 1.0f, &rng);
    nb_fill_uniform(t, nt, -1.0f, 1.0f, &rng);
    nb_graph_zero_grad(n->g);
    CHECK_OK(nb_plan_forward(p));
    CHECK_OK(nb_plan_backward(p, NULL));
    r.loss = *nb_plan_data(p, n->loss, NULL);
    const float *out = nb_plan_data(p, n->out, &r.n_out);
    r.out = malloc(r.n_out * sizeof(float));
    memcpy(r.out, out, r.n_out * sizeof(float));
    r.n_grad = nb_graph_param_numel(n->g);
    r.grad = malloc(r.n_grad * sizeof(float));
    memcpy(r.grad, nb_graph_param_grad(n->g), r.n_grad * sizeof(float));
    if (keep_plan) *keep_plan = p;
    else nb_plan_free(p);
    return r;
}

static int same(const result *a, const result *b)
{
    return a->grad && b->grad && a->n_out == b->n_out && a->n_grad == b->n_grad &&
           !memcmp(&a->loss, &b->loss, sizeof a->loss) && !memcmp(a->out, b->out, a->n_out * sizeof(float)) &&
           !memcmp(a->grad, b->grad, a->n_grad * sizeof(float));
}

static void release(result *r)
{
    free(r->out);
    free(r->grad);
}

/* A fused relu shares its producer's buffer; an unfused one has its own. */
static int fused(nb_plan *p, nb_node *op, nb_node *relu)
{
    return nb_plan_data(p, op, NULL) == nb_plan_data(p, relu, NULL);
}

static void same_bits_case(int wide)
{
    net n = build(wide);
    CHECK_PTR(n.loss);
    if (!n.loss) return;
    const int batches[] = {1, 5, 9, 16};
    for (size_t k = 0; k < sizeof batches / sizeof batches[0]; k++) {
        int B = batches[k];
        nb_plan *pk = NULL, *pf = NULL;
        result ref = run(&n, B, NB_PLAN_KEEP, 1, 0, &pk);   /* nothing fused */
        result one = run(&n, B, 0, 1, 0, &pf);
        result three = run(&n, B, 0, 3, 0, NULL);
        result anom = run(&n, B, 0, 2, 1, NULL);
        if (pk && pf) {
            CHECK(!fused(pk, n.c1, n.r1) && !fused(pk, n.c2, n.r2) && !fused(pk, n.l1, n.rl));
            CHECK(fused(pf, n.c1, n.r1) && fused(pf, n.c2, n.r2) && fused(pf, n.l1, n.rl));
            if (wide) CHECK(!fused(pk, n.cw, n.rw) && fused(pf, n.cw, n.rw));
        }
        if (!same(&ref, &one)) nb_test_fail(__FILE__, __LINE__, "wide %d batch %d: fused differs from unfused", wide, B);
        if (!same(&ref, &three)) nb_test_fail(__FILE__, __LINE__, "wide %d batch %d: 3 threads differ from 1", wide, B);
        if (!same(&ref, &anom)) nb_test_fail(__FILE__, __LINE__, "wide %d batch %d: detect-anomaly differs", wide, B);
        release(&ref);
        release(&one);
        release(&three);
        release(&anom);
        nb_plan_free(pk);
        nb_plan_free(pf);
    }
    nb_graph_free(n.g);
}

NB_TEST(test_fusion_same_bits)
{
    same_bits_case(0);
    same_bits_case(1);
}

/* A kept op output is seen before its relu: that pair stays apart. */
NB_TEST(test_fusion_not_when_kept)
{
    net n = build(0);
    CHECK_PTR(n.loss);
    if (!n.loss) return;
    nb_plan *pk = NULL, *pf = NULL;
    result ref = run(&n, 4, NB_PLAN_KEEP, 1, 0, &pk);
    nb_node_keep(n.c2);
    result kept = run(&n, 4, 0, 2, 0, &pf);
    if (pf) {
        CHECK(fused(pf, n.c1, n.r1) && !fused(pf, n.c2, n.r2) && fused(pf, n.l1, n.rl));
        /* the kept conv output is the value before the relu */
        size_t count;
        const float *c2 = nb_plan_data(pf, n.c2, &count), *c2ref = nb_plan_data(pk, n.c2, NULL);
        CHECK(c2 && c2ref && !memcmp(c2, c2ref, count * sizeof(float)));
        int negative = 0;
        for (size_t i = 0; c2 && i < count; i++) negative += c2[i] < 0.0f;
        CHECK(negative > 0);
    }
    CHECK(same(&ref, &kept));
    release(&ref);
    release(&kept);
    nb_plan_free(pk);
    nb_plan_free(pf);
    nb_graph_free(n.g);
}

/* Anomaly detection still names the op whose output went bad first: a NaN
 * in the first convolution's weights is reported at that conv, not later. */
NB_TEST(test_fusion_anomaly_names_op)
{
    net n = build(0);
    CHECK_PTR(n.loss);
    if (!n.loss) return;
    nb_plan *p = nb_plan_create(n.g, n.loss, 2, NB_PLAN_TRAIN);
    CHECK_PTR(p);
    if (p) {
        CHECK(fused(p, n.c1, n.r1));
        nb_plan_set_detect_anomaly(p, 1);
        /* -inf weights: the conv's output is -inf or NaN, which a fused relu
         * would have hidden as 0 had it run before the check */
        float *w = nb_graph_param_data(n.g);
        for (int i = 0; i < 108; i++) w[i] = -INFINITY; /* all of w1 */
        size_t nx;
        float *x = nb_plan_data(p, n.x, &nx);
        for (size_t i = 0; i < nx; i++) x[i] = 1.0f;
        CHECK(nb_plan_forward(p) == NB_ERR_NUMERIC);
        CHECK(strstr(nb_last_error(), "conv2d") != NULL);
        CHECK(strstr(nb_last_error(), "node 9 ") != NULL);
    }
    nb_plan_free(p);
    nb_graph_free(n.g);
}
