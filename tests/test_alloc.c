/*
 * test_alloc.c - after the first step, a training step (forward, loss,
 * backward, update, zero_grad) allocates nothing.
 *
 * Linked with -Wl,--wrap=malloc,... so that every call to malloc, calloc and
 * realloc from the library (and this file) goes through the counters below.
 * Two networks: an MLP and a small convolutional network.
 */
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static long allocations;
void *__wrap_malloc(size_t n) { allocations++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocations++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocations++; return __real_realloc(p, n); }
void __wrap_free(void *p) { __real_free(p); }

#define B 16

static nb_node *mlp(nb_graph *g, nb_node *x)
{
    nb_node *w1 = nb_param(g, "w1", 2, (int64_t[]){20, 32}), *b1 = nb_param(g, "b1", 1, (int64_t[]){32});
    nb_node *w2 = nb_param(g, "w2", 2, (int64_t[]){32, 10}), *b2 = nb_param(g, "b2", 1, (int64_t[]){10});
    nb_node *h = nb_relu(g, nb_add(g, nb_matmul(g, x, w1), b1));
    return nb_add(g, nb_matmul(g, h, w2), b2);
}

static nb_node *cnn(nb_graph *g, nb_node *x)
{
    nb_node *k = nb_param(g, "k", 4, (int64_t[]){4, 1, 3, 3}), *kb = nb_param(g, "kb", 1, (int64_t[]){4});
    nb_node *w = nb_param(g, "w", 2, (int64_t[]){4 * 4 * 4, 10});
    nb_conv2d_opts o = {.pad_h = 1, .pad_w = 1};
    nb_node *h = nb_max_pool2d(g, nb_relu(g, nb_conv2d(g, x, k, kb, &o)), 2, 2, 0, 0, 0, 0);
    h = nb_avg_pool2d(g, h, 1, 1, 0, 0, 0, 0);
    return nb_matmul(g, nb_flatten(g, h), w);
}

static int run(const char *name, int cnn_net)
{
    nb_graph *g = nb_graph_create();
    nb_node *x = cnn_net ? nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 1, 8, 8})
                         : nb_input(g, "x", 2, (int64_t[]){NB_BATCH, 20});
    nb_node *y = nb_input(g, "y", 1, (int64_t[]){NB_BATCH});
    nb_node *logits = cnn_net ? cnn(g, x) : mlp(g, x);
    nb_node *loss = nb_softmax_cross_entropy(g, nb_log_softmax(g, logits, 1), y);
    nb_plan *p = loss ? nb_plan_create(g, loss, B, NB_PLAN_TRAIN) : NULL;
    nb_optim *o = p ? nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.01f, .momentum = 0.9f}) : NULL;
    if (!o) {
        printf("test_alloc %s: setup failed: %s\n", name, nb_last_error());
        return 1;
    }
    nb_rng r;
    nb_rng_seed(&r, 5);
    nb_fill_normal(nb_graph_param_data(g), nb_graph_param_numel(g), 0, 0.1f, &r);
    size_t nx, ny;
    float *xv = nb_plan_data(p, x, &nx), *yv = nb_plan_data(p, y, &ny);
    nb_fill_uniform(xv, nx, -1, 1, &r);
    for (size_t i = 0; i < ny; i++) yv[i] = (float)(i % 10);
    long during = -1;
    float first = 0, last = 0;
    for (int step = 0; step < 8; step++) {
        if (step == 3) allocations = 0;
        nb_graph_zero_grad(g);
        if (nb_plan_forward(p) || nb_plan_backward(p, NULL) || nb_optim_step(o)) {
            printf("test_alloc %s: step failed: %s\n", name, nb_last_error());
            return 1;
        }
        last = *nb_plan_data(p, loss, NULL);
        if (step == 0) first = last;
    }
    during = allocations;
    nb_optim_free(o);
    nb_plan_free(p);
    nb_graph_free(g);
    printf("test_alloc %s: %ld allocations in 5 steady training steps (loss %.4f -> %.4f)\n", name,
           during, first, last);
    return during != 0 || !(last < first);
}

int main(void)
{
    int fail = run("mlp", 0);
    fail |= run("cnn", 1);
    return fail;
}
