/*
 * test_gemm.c - the built-in matrix product (and whatever nb_sgemm uses)
 * against a naive triple loop in double, for every transpose, odd sizes that
 * straddle the blocking, and alpha/beta.
 */
#include "test.h"
#include "../src/core/internal.h"

#include <stdlib.h>
#include <string.h>

static void naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                     (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]));
        }
}

NB_TEST(test_gemm_against_naive)
{
    static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {4, 16, 1}, {13, 300, 129},
                                   {67, 33, 260}, {5, 257, 2}, {128, 64, 128}};
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ta = t & 1, tb = t >> 1;
            int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
            float *A = malloc(sizeof(float) * (size_t)(ta ? K : M) * lda);
            float *B = malloc(sizeof(float) * (size_t)(tb ? N : K) * ldb);
            float *C1 = malloc(sizeof(float) * (size_t)M * ldc), *C2 = malloc(sizeof(float) * (size_t)M * ldc);
            float *C3 = malloc(sizeof(float) * (size_t)M * ldc);
            nb_fill_uniform(A, (size_t)(ta ? K : M) * lda, -1, 1, &r);
            nb_fill_uniform(B, (size_t)(tb ? N : K) * ldb, -1, 1, &r);
            nb_fill_uniform(C1, (size_t)M * ldc, -1, 1, &r);
            for (size_t i = 0; i < (size_t)M * ldc; i++) C3[i] = C2[i] = C1[i];
            float alpha = t == 3 ? -0.5f : 1.0f, beta = t == 0 ? 0.0f : t == 1 ? 1.0f : 0.25f;
            naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
            nb_sgemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
            nb_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C3, ldc);
            double worst = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double e2 = fabs(C1[i * ldc + j] - C2[i * ldc + j]);
                    double e3 = fabs(C1[i * ldc + j] - C3[i * ldc + j]);
                    worst = fmax(worst, fmax(e2, e3));
                }
            /* float32 sums of K products of magnitude <= 1 */
            if (!(worst <= 1e-6 * (K + 4)))
                nb_test_fail(__FILE__, __LINE__, "gemm %dx%dx%d ta=%d tb=%d: error %g", M, N, K, ta, tb, worst);
            /* the padding columns beyond N are never touched */
            for (int i = 0; i < M; i++)
                for (int j = N; j < ldc; j++) CHECK(C2[i * ldc + j] == C3[i * ldc + j]);
            free(A), free(B), free(C1), free(C2), free(C3);
        }
}

/* Random A [M,K] (or its transpose: same size), B [K,N], C1 [M,N] and a copy C2. */
static void random_case(nb_rng *r, int M, int N, int K, float **A, float **B, float **C1, float **C2)
{
    *A = malloc(sizeof(float) * (size_t)M * K);
    *B = malloc(sizeof(float) * (size_t)K * N);
    *C1 = malloc(sizeof(float) * (size_t)M * N);
    *C2 = malloc(sizeof(float) * (size_t)M * N);
    nb_fill_uniform(*A, (size_t)M * K, -1, 1, r);
    nb_fill_uniform(*B, (size_t)K * N, -1, 1, r);
    nb_fill_uniform(*C1, (size_t)M * N, -1, 1, r);
    memcpy(*C2, *C1, sizeof(float) * (size_t)M * N);
}

/* Elements of got farther from want than float32 sums of K products of
 * magnitude <= 1 can be; NaN counts (fmax of errors would skip it). */
static size_t wrong(const float *want, const float *got, size_t n, int K)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(fabs(want[i] - got[i]) <= 1e-6 * (K + 4));
    return bad;
}

NB_TEST(test_gemm_threads_bit_identical)
{
    /* every element is summed in the same order whatever the thread count */
    static const int sizes[][3] = {{64, 196, 288}, {300, 70, 513}, {7, 1000, 33}, {128, 128, 600}};
    nb_pool *pool = nb_pool_create(3);
    CHECK_PTR(pool);
    nb_rng r;
    nb_rng_seed(&r, 9);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ta = t & 1, tb = t >> 1;
            float *A, *B, *C1, *C2;
            random_case(&r, M, N, K, &A, &B, &C1, &C2);
            nb_sgemm_builtin_pool(NULL, ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 1.0f, C1, N);
            nb_sgemm_builtin_pool(pool, ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 1.0f, C2, N);
            if (memcmp(C1, C2, sizeof(float) * (size_t)M * N))
                nb_test_fail(__FILE__, __LINE__, "gemm %dx%dx%d ta=%d tb=%d differs with 3 threads", M, N, K, ta, tb);
            free(A), free(B), free(C1), free(C2);
        }
    nb_pool_free(pool);
}

NB_TEST(test_gemm_pool_against_naive)
{
    /* the threaded schedule (A packed once in the pool's scratch when few
     * row blocks share many column chunks, several K blocks, beta = 0
     * storing over C's old contents, NaN included) against the naive product */
    static const int sizes[][3] = {{50, 700, 900}, {7, 1000, 33}, {200, 300, 100}, {1, 64, 500}};
    nb_pool *pool = nb_pool_create(3);
    CHECK_PTR(pool);
    CHECK_OK(nb_pool_reserve(pool)); /* packing in the workspaces (the other tests: on the stack) */
    nb_rng r;
    nb_rng_seed(&r, 17);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 8; t++) {
            int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ta = t & 1, tb = (t >> 1) & 1;
            float beta = t >> 2 ? 0.0f : 0.5f;
            float *A, *B, *C1, *C2;
            random_case(&r, M, N, K, &A, &B, &C1, &C2);
            if (beta == 0.0f)
                for (size_t i = 0; i < (size_t)M * N; i++) C2[i] = NAN;
            naive(ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, beta, C1, N);
            nb_sgemm_builtin_pool(pool, ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, beta, C2, N);
            size_t bad = wrong(C1, C2, (size_t)M * N, K);
            if (bad)
                nb_test_fail(__FILE__, __LINE__, "pool gemm %dx%dx%d ta=%d tb=%d beta=%g: %zu elements wrong", M, N,
                             K, ta, tb, beta, bad);
            free(A), free(B), free(C1), free(C2);
        }
    nb_pool_free(pool);
}

NB_TEST(test_gemm_packed_a)
{
    /* A packed once (nb_sgemm_pack, alpha folded in) and used for products
     * on one thread and on three, against the naive product */
    static const int sizes[][3] = {{64, 196, 288}, {13, 300, 900}, {288, 70, 64}, {1, 5, 3}};
    nb_pool *pool = nb_pool_create(3);
    CHECK_PTR(pool);
    nb_rng r;
    nb_rng_seed(&r, 23);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ta = t & 1, tb = t >> 1;
            float *A, *B, *C1, *C2;
            random_case(&r, M, N, K, &A, &B, &C1, &C2);
            float *C3 = malloc(sizeof(float) * (size_t)M * N);
            memcpy(C3, C2, sizeof(float) * (size_t)M * N);
            float *packed = malloc(sizeof(float) * nb_sgemm_packed_size(M, K));
            nb_sgemm_pack(ta, M, K, -0.5f, A, ta ? M : K, packed);
            naive(ta, tb, M, N, K, -0.5f, A, ta ? M : K, B, tb ? K : N, 0.25f, C1, N);
            nb_sgemm_packed(NULL, 0, M, N, K, packed, tb, B, tb ? K : N, 0.25f, C2, N);
            nb_sgemm_packed(pool, 0, M, N, K, packed, tb, B, tb ? K : N, 0.25f, C3, N);
            size_t bad = wrong(C1, C2, (size_t)M * N, K);
            if (bad || memcmp(C2, C3, sizeof(float) * (size_t)M * N))
                nb_test_fail(__FILE__, __LINE__, "packed gemm %dx%dx%d ta=%d tb=%d: %zu wrong or threads differ", M,
                             N, K, ta, tb, bad);
            free(A), free(B), free(C1), free(C2), free(C3), free(packed);
        }
    nb_pool_free(pool);
}

NB_TEST(test_gemm_every_kernel)
{
    /* every micro-kernel this CPU can run (AVX-512, AVX2+FMA, portable), not
     * only the one nb_sgemm picks, against the naive product */
    static const int sizes[][3] = {{1, 1, 1}, {9, 35, 17}, {70, 100, 300}, {8, 32, 256}};
    nb_rng r;
    nb_rng_seed(&r, 21);
    int levels = 0;
    for (int level = 0; level <= 2; level++) {
        if (!nb_sgemm_kernel_available(level)) continue;
        levels++;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int t = 0; t < 4; t++) {
                int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], ta = t & 1, tb = t >> 1;
                float *A, *B, *C1, *C2;
                random_case(&r, M, N, K, &A, &B, &C1, &C2);
                naive(ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, 0.5f, C1, N);
                nb_sgemm_kernel(level, ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, 0.5f, C2, N);
                size_t bad = wrong(C1, C2, (size_t)M * N, K);
                if (bad)
                    nb_test_fail(__FILE__, __LINE__, "kernel level %d, %dx%dx%d ta=%d tb=%d: %zu elements wrong",
                                 level, M, N, K, ta, tb, bad);
                free(A), free(B), free(C1), free(C2);
            }
    }
    CHECK(levels >= 1); /* the portable kernel always */
}
