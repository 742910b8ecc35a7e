/*
 * test_threads.c - the thread pool runs every task of every job exactly once,
 * also when jobs follow each other with no pause (threads still leaving one
 * job while the next starts), parallel loops cover their range, and a
 * training step runs on a host thread with a small stack.
 */
#include "test.h"
#include "../src/core/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

typedef struct {
    atomic_int runs[64];
} job_counts;

static void count_task(void *ctx, int t)
{
    job_counts *c = ctx;
    volatile int spin = 0;
    for (int i = 0; i < 300; i++) spin += i; /* long enough for the workers to take part */
    atomic_fetch_add(&c->runs[t], 1);
}

NB_TEST(test_threads_every_task_once)
{
    nb_pool *p = nb_pool_create(3);
    CHECK_PTR(p);
    static job_counts c;
    int bad = 0;
    for (int job = 0; job < 20000 && !bad; job++) {
        int n = 1 + (job * 7) % 37;
        for (int t = 0; t < 64; t++) atomic_store(&c.runs[t], 0);
        nb_pool_run(p, n, count_task, &c);
        for (int t = 0; t < 64; t++)
            if (atomic_load(&c.runs[t]) != (t < n)) {
                nb_test_fail(__FILE__, __LINE__, "job %d of %d tasks: task %d ran %d times", job, n, t,
                             atomic_load(&c.runs[t]));
                bad = 1;
                break;
            }
    }
    nb_pool_free(p);
}

static void mark_range(void *ctx, size_t lo, size_t hi)
{
    unsigned char *m = ctx;
    for (size_t i = lo; i < hi; i++) m[i]++;
}

NB_TEST(test_threads_for_covers_range)
{
    nb_pool *p = nb_pool_create(2);
    static unsigned char m[100003];
    for (size_t n = 0; n < sizeof m; n = n * 3 + 1) {
        memset(m, 0, sizeof m);
        nb_pool_for(p, n, 100, mark_range, m);
        for (size_t i = 0; i < sizeof m; i++)
            if (m[i] != (i < n)) {
                nb_test_fail(__FILE__, __LINE__, "n %zu: element %zu marked %d times", n, i, m[i]);
                break;
            }
    }
    nb_pool_free(p);
    /* no pool: the caller does it all */
    memset(m, 0, sizeof m);
    nb_pool_for(NULL, 1000, 10, mark_range, m);
    CHECK(m[0] == 1 && m[999] == 1 && m[1000] == 0);
}

/* A training step on a host thread with a small stack (256 KB, where musl's
 * default is 128 KB): the matrix product packs its blocks in the pool's
 * per-thread workspaces, never on the caller's stack. */
typedef struct {
    int threads;
    int ok;
} small_stack_job;

static void *small_stack_step(void *arg)
{
    small_stack_job *job = arg;
    nb_graph *g = nb_graph_create();
    if (!g || nb_graph_set_threads(g, job->threads) != NB_OK) return NULL;
    nb_node *x = nb_input(g, "x", 4, (int64_t[]){NB_BATCH, 3, 16, 16});
    nb_node *t = nb_input(g, "t", 2, (int64_t[]){NB_BATCH, 10});
    nb_node *w1 = nb_test_param(g, "w1", 4, (int64_t[]){16, 3, 3, 3}, -0.3f, 0.3f);
    nb_node *w2 = nb_test_param(g, "w2", 2, (int64_t[]){10, 16 * 8 * 8}, -0.1f, 0.1f);
    nb_node *c = nb_relu(g, nb_conv2d(g, x, w1, NULL, &(nb_conv2d_opts){.pad_h = 1, .pad_w = 1}));
    nb_node *y = nb_linear(g, nb_flatten(g, nb_max_pool2d(g, c, 2, 2, 0, 0, 0, 0)), w2, NULL);
    nb_node *loss = nb_mse(g, y, t);
    nb_plan *p = loss ? nb_plan_create(g, loss, 64, NB_PLAN_TRAIN) : NULL;
    if (p) {
        nb_rng r;
        nb_rng_seed(&r, 4);
        size_t n;
        float *xv = nb_plan_data(p, x, &n);
        nb_fill_uniform(xv, n, -1.0f, 1.0f, &r);
        float *tv = nb_plan_data(p, t, &n);
        nb_fill_uniform(tv, n, -1.0f, 1.0f, &r);
        nb_graph_zero_grad(g);
        job->ok = nb_plan_forward(p) == NB_OK && nb_plan_backward(p, NULL) == NB_OK &&
                  *nb_plan_data(p, loss, NULL) > 0.0f;
    }
    nb_plan_free(p);
    nb_graph_free(g);
    return NULL;
}

NB_TEST(test_threads_small_host_stack)
{
    for (int threads = 1; threads <= 2; threads++) {
        small_stack_job job = {threads, 0};
        pthread_attr_t attr;
        pthread_t tid;
        pthread_attr_init(&attr);
        CHECK(pthread_attr_setstacksize(&attr, (size_t)256 << 10) == 0);
        CHECK(pthread_create(&tid, &attr, small_stack_step, &job) == 0);
        pthread_join(tid, NULL);
        pthread_attr_destroy(&attr);
        if (!job.ok) nb_test_fail(__FILE__, __LINE__, "a training step with %d thread(s) failed", threads);
    }
}
