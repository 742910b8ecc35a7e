/*
 * pool.c - one pool of worker threads, used by every parallel kernel.
 *
 * nb_pool_run(pool, n, fn, ctx) calls fn(ctx, task) for task = 0..n-1 on
 * the caller and the workers, and returns when all are done. Tasks are
 * handed out by an atomic counter; kernels make each task write its own part
 * of the output with its own order of operations, so results never depend on
 * which thread ran which task, or on how many threads there are.
 *
 * Workers spin for a short while before sleeping on a condition variable:
 * a training step runs many small kernels back to back, and waking a
 * sleeping thread costs more than most of them.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

struct nb_pool {
    int threads;                 /* including the caller */
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job, written by nb_pool_run before it is published */
    void (*fn)(void *ctx, int task);
    void *ctx;
    atomic_int ntasks;
    /* claims: job number in the high 32 bits, next task in the low 32; a
     * task is taken by compare-and-swap, so a thread still finishing an
     * earlier job can never take (or skip) a task of the next one */
    _Atomic uint64_t claim;
    atomic_int finished;         /* tasks of the current job done */
    atomic_uint generation;      /* the current job's number */
    int stop;
    void *scratch;               /* nb_pool_scratch */
    float **ws;                  /* nb_pool_workspace: one per thread, the caller's first */
    int nws;
    struct worker_arg *args;     /* what each worker is started with */
};

/* Which of its pool's threads this is: 0 for the caller (any thread that is
 * not a worker), i + 1 for worker i. A worker only ever runs its own pool's
 * tasks, so one number per thread is enough. */
static _Thread_local int thread_index;

/* Bytes of scratch a pool holds for one parallel kernel at a time (the
 * GEMM packs the A block every tile task shares there). */
#define POOL_SCRATCH_BYTES ((size_t)640 << 10)

/* Spinning lasts about a millisecond (SPIN polls, each with a pause that
 * tells the core it is a spin loop): long enough to bridge the serial work
 * between two parallel kernels of a training step, short enough not to burn
 * a core for long once the work is done. */
enum { SPIN = 40000, CLOSED = 0x7fffffff };

static inline void relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Runs tasks of job `job` until none are left. */
static void drain(nb_pool *p, unsigned job)
{
    uint64_t c = atomic_load(&p->claim);
    for (;;) {
        if ((unsigned)(c >> 32) != job || (int)(uint32_t)c >= atomic_load(&p->ntasks)) return;
        if (!atomic_compare_exchange_weak(&p->claim, &c, c + 1)) continue; /* c reloaded */
        p->fn(p->ctx, (int)(uint32_t)c);
        atomic_fetch_add(&p->finished, 1);
        c = atomic_load(&p->claim);
    }
}

typedef struct worker_arg {
    nb_pool *p;
    int index;
} worker_arg;

static void *worker(void *arg)
{
    nb_pool *p = ((worker_arg *)arg)->p;
    thread_index = ((worker_arg *)arg)->index;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load(&p->generation);
        for (int i = 0; i < SPIN && gen == seen; i++) {
            relax();
            gen = atomic_load(&p->generation);
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->mu);
            while ((gen = atomic_load(&p->generation)) == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mu);
            int stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop) return NULL;
        }
        seen = gen;
        drain(p, gen);
        /* wake the caller if it went to sleep waiting */
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

nb_pool *nb_pool_create(int threads)
{
    if (threads < 1) threads = 1;
    nb_pool *p = nb_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    atomic_init(&p->claim, 0);
    atomic_init(&p->ntasks, 0);
    atomic_init(&p->finished, 0);
    atomic_init(&p->generation, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = 1; /* until the workers exist: what nb_pool_free joins */
    p->nws = threads;
    int ok = (p->ws = nb_calloc((size_t)threads, sizeof *p->ws)) != NULL;
    if (ok && threads > 1)
        ok = (p->tid = nb_calloc((size_t)threads - 1, sizeof *p->tid)) &&
             (p->args = nb_calloc((size_t)threads - 1, sizeof *p->args)) &&
             (p->scratch = nb_alloc(POOL_SCRATCH_BYTES));
    if (!ok) {
        nb_pool_free(p);
        return NULL;
    }
    for (int i = 0; i < threads - 1; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        /* kernels keep their large buffers in the workspaces; enough for a
         * product run before nb_pool_reserve, which packs on the stack */
        pthread_attr_setstacksize(&attr, (size_t)2 << 20);
        p->args[i] = (worker_arg){p, i + 1};
        int err = pthread_create(&p->tid[i], &attr, worker, &p->args[i]);
        pthread_attr_destroy(&attr);
        if (err) {
            nb_pool_free(p);
            nb_set_error(NB_ERR_NOMEM, "thread pool: cannot start thread %d of %d", i + 2, threads);
            return NULL;
        }
        p->threads = i + 2;
    }
    return p;
}

void nb_pool_free(nb_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->threads - 1 && p->tid; i++) pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    nb_free(p->tid);
    nb_free(p->args);
    nb_free(p->scratch);
    for (int i = 0; i < p->nws && p->ws; i++) nb_free(p->ws[i]);
    nb_free(p->ws);
    nb_free(p);
}

int nb_pool_threads(const nb_pool *p) { return p ? p->threads : 1; }

nb_status nb_pool_reserve(nb_pool *p)
{
    for (int i = 0; p && i < p->nws; i++)
        if (!p->ws[i] && !(p->ws[i] = nb_alloc(nb_sgemm_workspace_floats() * sizeof(float)))) return NB_ERR_NOMEM;
    return NB_OK;
}

int nb_pool_reserved(const nb_pool *p) { return p && p->nws && p->ws[p->nws - 1]; }

float *nb_pool_workspace(nb_pool *p)
{
    return p && thread_index < p->nws ? p->ws[thread_index] : NULL;
}

void *nb_pool_scratch(nb_pool *p, size_t *bytes)
{
    *bytes = p && p->scratch ? POOL_SCRATCH_BYTES : 0;
    return p ? p->scratch : NULL;
}

void nb_pool_run(nb_pool *p, int ntasks, void (*fn)(void *ctx, int task), void *ctx)
{
    if (ntasks <= 0) return;
    if (!p || p->threads == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    /* The previous job's tasks are all done, but a thread may still be about
     * to try one more claim on it. First the claim word moves to the new job,
     * closed (no index is below CLOSED), so such a late claim fails; then the
     * job is written; then claims open at 0. */
    unsigned job = atomic_load(&p->generation) + 1;
    atomic_store(&p->claim, (uint64_t)job << 32 | CLOSED);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->ntasks, ntasks);
    atomic_store(&p->finished, 0);
    atomic_store(&p->claim, (uint64_t)job << 32);
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->generation, job);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, job);
    for (int i = 0; i < SPIN && atomic_load(&p->finished) < ntasks; i++) relax();
    if (atomic_load(&p->finished) < ntasks) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->finished) < ntasks) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

/* ---- parallel loops ----------------------------------------------------- */

typedef struct {
    void (*fn)(void *ctx, size_t lo, size_t hi);
    void *ctx;
    size_t n, chunk;
} nb_for_job;

static void for_task(void *arg, int t)
{
    const nb_for_job *j = arg;
    size_t lo = (size_t)t * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    j->fn(j->ctx, lo, hi);
}

void nb_pool_for(nb_pool *p, size_t n, size_t grain, void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx)
{
    int threads = nb_pool_threads(p);
    if (n == 0) return;
    if (threads == 1 || n <= grain) {
        fn(ctx, 0, n);
        return;
    }
    /* a few chunks per thread, none smaller than grain */
    size_t chunks = (size_t)threads * 4, chunk = (n + chunks - 1) / chunks;
    if (chunk < grain) chunk = grain;
    nb_for_job j = {fn, ctx, n, chunk};
    nb_pool_run(p, (int)((n + chunk - 1) / chunk), for_task, &j);
}
