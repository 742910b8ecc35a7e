/*
 * bench.c - one nabla workload per run, timed; prints one line of results.
 *
 *   bench mlp64|mlp256|cnn64|xor [--threads N] [--seconds S]
 *       training steps on random data shaped like Fashion-MNIST (the same
 *       networks as examples/fashion_mlp.nn without dropout, and
 *       examples/fashion_cnn.nn), or a 2-8-1 network on XOR with batch 4
 *   bench gemm SIZE [--threads N] [--openblas]
 *       square SGEMM, nabla's built-in kernel or OpenBLAS (loaded at run time)
 *
 * Output: "rate=<samples/s, steps/s or GFLOP/s> rss_kb=<peak resident memory>".
 * bench/run.sh runs it next to the PyTorch version of each workload.
 */
#include "nabla.h"
#include "../src/core/internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long peak_rss_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

static const char *MLP = "input 1 28 28\nflatten\nlinear 256\nrelu\nlinear 128\nrelu\nlinear 10\n"
                         "loss softmax_cross_entropy\n";
static const char *CNN = "input 1 28 28\nconv2d 32 kernel=3 pad=1\nrelu\nmaxpool 2\nconv2d 64 kernel=3 pad=1\n"
                         "relu\nmaxpool 2\nflatten\nlinear 128\nrelu\nlinear 10\nloss softmax_cross_entropy\n";
static const char *XOR = "input 2\nlinear 8\ntanh\nlinear 1\nloss bce_with_logits\n";

static int train(const char *spec, int batch, const char *opt, int threads, double seconds)
{
    nb_model *m = nb_model_from_text(spec, "bench", 1);
    if (!m) {
        fprintf(stderr, "bench: %s\n", nb_last_error());
        return 1;
    }
    nb_graph *g = nb_model_graph(m);
    nb_graph_set_threads(g, threads);
    nb_plan *p = nb_plan_create(g, nb_model_loss(m), batch, NB_PLAN_TRAIN);
    nb_optim *o = NULL;
    if (!strcmp(opt, "adam")) {
        nb_adam_opts a = NB_ADAM_DEFAULTS;
        o = nb_adam_create(g, &a);
    } else {
        nb_sgd_opts s = {0.01f, 0.9f, 0, 0, 0};
        o = nb_sgd_create(g, &s);
    }
    if (!p || !o) {
        fprintf(stderr, "bench: %s\n", nb_last_error());
        return 1;
    }
    nb_rng r;
    nb_rng_seed(&r, 7);
    size_t nx, ny;
    float *x = nb_plan_data(p, nb_model_input(m), &nx), *y = nb_plan_data(p, nb_model_target(m), &ny);
    nb_fill_uniform(x, nx, 0, 1, &r);
    int classes = nb_model_is_classifier(m) ? (int)nb_model_output_size(m) : 2;
    for (size_t i = 0; i < ny; i++) y[i] = (float)(i % (size_t)classes); /* labels, or 0/1 targets */
    long steps = 0;
    double t0 = 0;
    for (;;) {
        nb_graph_zero_grad(g);
        if (nb_plan_forward(p) || nb_plan_backward(p, NULL) || nb_optim_step(o)) {
            fprintf(stderr, "bench: %s\n", nb_last_error());
            return 1;
        }
        steps++;
        if (steps == 5) t0 = now(); /* warm-up done */
        if (steps > 5 && now() - t0 >= seconds) break;
    }
    double rate = (double)(steps - 5) * (strcmp(spec, XOR) ? batch : 1) / (now() - t0);
    printf("rate=%.1f rss_kb=%ld\n", rate, peak_rss_kb());
    nb_optim_free(o);
    nb_plan_free(p);
    nb_model_free(m);
    return 0;
}

typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                               float, float *, int);

static int gemm(int n, int threads, int openblas, double seconds)
{
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n);
    float *c = malloc(sizeof(float) * (size_t)n * n);
    nb_rng r;
    nb_rng_seed(&r, 3);
    nb_fill_uniform(a, (size_t)n * n, -1, 1, &r);
    nb_fill_uniform(b, (size_t)n * n, -1, 1, &r);
    cblas_sgemm_fn blas = NULL;
    nb_pool *pool = NULL;
    if (openblas) {
        void *h = dlopen("libopenblas.so.0", RTLD_NOW);
        if (!h) h = dlopen("libopenblas.so", RTLD_NOW);
        blas = h ? (cblas_sgemm_fn)(size_t)dlsym(h, "cblas_sgemm") : NULL;
        void (*set_threads)(int) = h ? (void (*)(int))(size_t)dlsym(h, "openblas_set_num_threads") : NULL;
        if (!blas) {
            fprintf(stderr, "bench: OpenBLAS not found (apt-get install libopenblas0)\n");
            return 1;
        }
        if (set_threads) set_threads(threads);
    } else {
        /* with its workspaces, as a plan's pool has them */
        pool = nb_pool_create(threads);
        if (!pool || nb_pool_reserve(pool) != NB_OK) {
            fprintf(stderr, "bench: %s\n", nb_last_error());
            return 1;
        }
    }
    long reps = 0;
    double t0 = now(), t;
    do {
        if (blas) blas(101, 111, 111, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* row-major, no transposes */
        else nb_sgemm_builtin_pool(pool, 0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        reps++;
        t = now() - t0;
    } while (t < seconds);
    printf("rate=%.1f rss_kb=%ld\n", 2.0 * n * n * (double)n * (double)reps / t / 1e9, peak_rss_kb());
    nb_pool_free(pool);
    free(a), free(b), free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench mlp64|mlp256|cnn64|xor|gemm SIZE [--threads N] [--seconds S] [--openblas]\n");
        return 2;
    }
    int threads = 0, openblas = 0, size = 0;
    double seconds = 2.0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--openblas")) openblas = 1;
        else size = atoi(argv[i]);
    }
    const char *w = argv[1];
    if (!strcmp(w, "mlp64")) return train(MLP, 64, "sgd", threads, seconds);
    if (!strcmp(w, "mlp256")) return train(MLP, 256, "sgd", threads, seconds);
    if (!strcmp(w, "cnn64")) return train(CNN, 64, "adam", threads, seconds);
    if (!strcmp(w, "xor")) return train(XOR, 4, "sgd", threads, seconds);
    if (!strcmp(w, "gemm") && size > 0) return gemm(size, threads > 0 ? threads : 2, openblas, seconds);
    fprintf(stderr, "bench: unknown workload '%s'\n", w);
    return 2;
}
