/*
 * test_threads.c - the thread pool runs every task of every job exactly once,
 * also when jobs follow each other with no pause (threads still leaving one
 * job while the next starts), and parallel loops cover their range.
 */
#include "test.h"
#include "../src/core/internal.h"

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
