/*
 * gemm.c - single-precision matrix product, row-major:
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 *
 * nb_sgemm() goes to a CBLAS (OpenBLAS) when the library is built with
 * NB_HAVE_CBLAS, else to the built-in kernel below.
 *
 * The built-in kernel is the classic blocked scheme: a KC x NC block of
 * op(B) is packed into panels NR columns wide, an MC x KC block of op(A)
 * (times alpha) into panels MR rows tall, and a micro-kernel computes each
 * MR x NR tile of C with its accumulators in registers over the whole KC
 * depth. Packing makes every transpose the same cost (one strided copy of a
 * block) and lets the micro-kernel read both operands contiguously.
 *
 * The micro-kernel uses the GCC/Clang vector extension (plain loops for other
 * compilers); it is compiled three times (AVX-512, AVX2+FMA, baseline) and the CPU picks one at
 * load time (GCC/Clang target_clones), so one binary is fast on new machines
 * and still runs on old ones. Results can differ in the last bit between
 * machines (FMA), never between runs on one machine.
 */
#include "../core/internal.h"

#include <string.h>

#ifdef NB_HAVE_CBLAS
#include <cblas.h>
#endif

enum { MR = 6, NR = 16, KC = 128, NC = 256, MC = 96 };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__SANITIZE_ADDRESS__)
#define NB_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define NB_CLONES
#endif

/* C[MR x NR] (leading dimension ldc, only mr x nr valid) += A panel * B panel:
 * a: kc x MR (row k holds the MR values of column k of the A block),
 * b: kc x NR. */
#if defined(__GNUC__)
/* GCC/Clang vector extension: 16 floats, one AVX-512 register (two AVX2
 * ones, four SSE ones); accumulators stay in registers for the whole loop */
typedef float nb_v16 __attribute__((vector_size(64)));

/* unaligned 16-float load and store, as memcpy (a macro: no vector-typed
 * function boundary, whose ABI would depend on the clone) */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(nb_v16))
#define STORE16(p, v) memcpy((p), &(v), sizeof(nb_v16))

NB_CLONES
static void micro_kernel(int kc, const float *a, const float *b, float *c, int ldc, int mr, int nr)
{
    nb_v16 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0};
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        nb_v16 bk;
        LOAD16(bk, b);
        c0 += a[0] * bk;
        c1 += a[1] * bk;
        c2 += a[2] * bk;
        c3 += a[3] * bk;
        c4 += a[4] * bk;
        c5 += a[5] * bk;
    }
    nb_v16 acc[MR] = {c0, c1, c2, c3, c4, c5};
    if (nr == NR) {
        for (int r = 0; r < mr; r++) {
            nb_v16 v;
            LOAD16(v, c + (size_t)r * ldc);
            v += acc[r];
            STORE16(c + (size_t)r * ldc, v);
        }
    } else {
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nr; j++) c[(size_t)r * ldc + j] += acc[r][j];
    }
}
#else
static void micro_kernel(int kc, const float *a, const float *b, float *c, int ldc, int mr, int nr)
{
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += a[k * MR + r] * b[k * NR + j];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[(size_t)r * ldc + j] += acc[r][j];
}
#endif

/* Scales C by beta; beta == 0 overwrites (so NaN in C does not survive). */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    if (beta == 1.0f) return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* op(B)[k0:k0+kc, j0:j0+nc] into NR-wide panels, zero-padded to whole panels. */
static void pack_b(int trans_b, const float *B, int ldb, int k0, int kc, int j0, int nc, float *bp)
{
    for (int jp = 0; jp < nc; jp += NR) {
        int w = nc - jp < NR ? nc - jp : NR;
        float *dst = bp + (size_t)jp * kc;
        for (int k = 0; k < kc; k++, dst += NR) {
            if (!trans_b) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0 + jp;
                for (int j = 0; j < w; j++) dst[j] = src[j];
            } else {
                const float *src = B + (size_t)(j0 + jp) * ldb + k0 + k;
                for (int j = 0; j < w; j++) dst[j] = src[(size_t)j * ldb];
            }
            for (int j = w; j < NR; j++) dst[j] = 0.0f;
        }
    }
}

/* alpha * op(A)[i0:i0+mc, k0:k0+kc] into MR-tall panels, zero-padded. */
static void pack_a(int trans_a, const float *A, int lda, int i0, int mc, int k0, int kc, float alpha,
                   float *ap)
{
    for (int ip = 0; ip < mc; ip += MR) {
        int h = mc - ip < MR ? mc - ip : MR;
        float *dst = ap + (size_t)ip * kc;
        for (int k = 0; k < kc; k++, dst += MR) {
            for (int r = 0; r < h; r++) {
                float v = trans_a ? A[(size_t)(k0 + k) * lda + i0 + ip + r]
                                  : A[(size_t)(i0 + ip + r) * lda + k0 + k];
                dst[r] = alpha * v;
            }
            for (int r = h; r < MR; r++) dst[r] = 0.0f;
        }
    }
}

void nb_sgemm_builtin(int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc)
{
    /* packed blocks live on the stack: 160 KiB, no allocation, no shared state */
    float bp[KC * ((NC + NR - 1) / NR * NR)];
    float ap[((MC + MR - 1) / MR * MR) * KC];
    scale_c(M, N, beta, C, ldc);
    if (alpha == 0.0f || K == 0) return;
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            pack_b(trans_b, B, ldb, k0, kc, j0, nc, bp);
            for (int i0 = 0; i0 < M; i0 += MC) {
                int mc = M - i0 < MC ? M - i0 : MC;
                pack_a(trans_a, A, lda, i0, mc, k0, kc, alpha, ap);
                for (int jp = 0; jp < nc; jp += NR)
                    for (int ip = 0; ip < mc; ip += MR)
                        micro_kernel(kc, ap + (size_t)ip * kc, bp + (size_t)jp * kc,
                                     C + (size_t)(i0 + ip) * ldc + j0 + jp, ldc,
                                     mc - ip < MR ? mc - ip : MR, nc - jp < NR ? nc - jp : NR);
            }
        }
    }
}

void nb_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef NB_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    nb_sgemm_builtin(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
