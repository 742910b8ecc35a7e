/*
 * gemm.c - single-precision matrix product, row-major:
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 *
 * nb_sgemm() goes to a CBLAS (OpenBLAS) when the library is built with
 * NB_HAVE_CBLAS, else to the built-in kernel below. The built-in kernel packs
 * a KC x NC block of op(B) into a contiguous panel on the stack (so the
 * transposes backward needs cost one copy of a block, not of the matrix),
 * then updates C four rows at a time from that panel; the inner loop runs
 * along a row of the panel and vectorises.
 */
#include "../core/internal.h"

#include <string.h>

#ifdef NB_HAVE_CBLAS
#include <cblas.h>
#endif

enum { KC = 128, NC = 256, MR = 4 };

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

void nb_sgemm_builtin(int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc)
{
    float bp[KC * NC];      /* packed op(B)[k0:k0+kc, j0:j0+nc], row-major kc x nc */
    float ap[MR * KC];      /* packed op(A)[i:i+MR, k0:k0+kc], scaled by alpha */
    scale_c(M, N, beta, C, ldc);
    if (alpha == 0.0f || K == 0) return;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int j0 = 0; j0 < N; j0 += NC) {
            int nc = N - j0 < NC ? N - j0 : NC;
            /* pack B */
            for (int k = 0; k < kc; k++) {
                float *dst = bp + (size_t)k * nc;
                if (!trans_b) {
                    memcpy(dst, B + (size_t)(k0 + k) * ldb + j0, (size_t)nc * sizeof(float));
                } else {
                    const float *src = B + (size_t)j0 * ldb + (k0 + k);
                    for (int j = 0; j < nc; j++) dst[j] = src[(size_t)j * ldb];
                }
            }
            for (int i0 = 0; i0 < M; i0 += MR) {
                int mr = M - i0 < MR ? M - i0 : MR;
                /* pack MR rows of A, times alpha */
                for (int r = 0; r < mr; r++)
                    for (int k = 0; k < kc; k++) {
                        float a = trans_a ? A[(size_t)(k0 + k) * lda + (i0 + r)]
                                          : A[(size_t)(i0 + r) * lda + (k0 + k)];
                        ap[r * KC + k] = alpha * a;
                    }
                if (mr == MR) {
                    float *c0 = C + (size_t)i0 * ldc + j0, *c1 = c0 + ldc, *c2 = c1 + ldc,
                          *c3 = c2 + ldc;
                    for (int k = 0; k < kc; k++) {
                        const float *b = bp + (size_t)k * nc;
                        float a0 = ap[k], a1 = ap[KC + k], a2 = ap[2 * KC + k], a3 = ap[3 * KC + k];
                        for (int j = 0; j < nc; j++) {
                            float bj = b[j];
                            c0[j] += a0 * bj;
                            c1[j] += a1 * bj;
                            c2[j] += a2 * bj;
                            c3[j] += a3 * bj;
                        }
                    }
                } else {
                    for (int r = 0; r < mr; r++) {
                        float *c = C + (size_t)(i0 + r) * ldc + j0;
                        for (int k = 0; k < kc; k++) {
                            const float *b = bp + (size_t)k * nc;
                            float a = ap[r * KC + k];
                            for (int j = 0; j < nc; j++) c[j] += a * b[j];
                        }
                    }
                }
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
