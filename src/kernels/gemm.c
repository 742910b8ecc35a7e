/*
 * gemm.c - single-precision matrix product, row-major:
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
 *
 * nb_sgemm_pool() goes to a CBLAS (OpenBLAS) when the library is built with
 * NB_HAVE_CBLAS, else to the built-in kernel below.
 *
 * The built-in kernel is the classic blocked scheme: a KC x NC block of
 * op(B) is packed into panels NR columns wide, an MC x KC block of op(A)
 * (times alpha) into panels MR rows tall, and a micro-kernel computes each
 * MR x NR tile of C with its accumulators in registers over the whole KC
 * depth. Packing makes every transpose the same cost (one strided copy of a
 * block; with AVX-512 a transposed B goes through 16 x 16 register
 * transposes) and lets the micro-kernel read both operands contiguously.
 *
 * Micro-kernels, chosen at run time from the CPU's features (never its model):
 *   AVX-512  8 x 32 tile: 16 zmm accumulators, two FMAs per broadcast; a
 *            variant reads a row-major A (alpha 1) in place, eight rows at
 *            a time, so such an A is never packed
 *   AVX2+FMA 6 x 16 tile: 12 ymm accumulators
 *   portable 6 x 16 tile, plain C
 * They use the GCC/Clang vector extension (one source, compiled per target).
 *
 * Threads: each (NC, KC) block of B is packed by all threads (one panel per
 * task), then the tiles of C are shared out, each task packing its own A
 * block (or all sharing one, packed once, when several tasks work on the
 * same rows). With a single row block and no shared A (a batch of 64 rows,
 * say) each task packs the panels it uses itself and goes straight on to
 * its tiles: one hand-off per block instead of two. Every element of C is
 * summed over K in the same order whatever the number of threads, so
 * results are bit-identical for any thread count (on a given machine: FMA
 * rounds differently from multiply-then-add).
 *
 * Memory: blocks are packed into the pool's per-thread workspaces
 * (nb_pool_workspace), so the kernels ask no large stack of the threads that
 * call them; only direct calls without a pool pack on the stack.
 */
#include "../core/internal.h"
#include "simd.h"

#include <string.h>

#ifdef NB_HAVE_CBLAS
#include <cblas.h>
#endif

enum { KC = 512, NC = 512, MC = 96, MR_MAX = 8, NR_MAX = 32 };

/* A thread's workspace (nb_pool_workspace): the packed B block, then an
 * A block, each 64-byte aligned */
#define BP_FLOATS ((size_t)KC * (NC + NR_MAX))
#define AP_FLOATS ((size_t)((MC + MR_MAX - 1) / MR_MAX * MR_MAX + MR_MAX) * KC)
/* Where the blocks sit within a page: large buffers from malloc start a few
 * bytes into a page, and a packing loop whose source and destination share
 * their offset within a page stalls on false store-to-load dependences (4K
 * aliasing; measured: 9% slower on a small MLP). So the B block starts 2 KB
 * into a page and the A block 3 KB in (both blocks are whole pages long). */
#define BP_SKEW ((size_t)512)
#define AP_SKEW ((size_t)256)

/* ws's B block: 2 KB past the first page boundary in it */
static float *ws_bp(float *ws) { return (float *)(((uintptr_t)ws + 4095) & ~(uintptr_t)4095) + BP_SKEW; }

#if defined(__GNUC__)
#define NB_NOINLINE __attribute__((noinline))
#else
#define NB_NOINLINE
#endif


size_t nb_sgemm_workspace_floats(void) { return 1024 + BP_SKEW + BP_FLOATS + AP_SKEW + AP_FLOATS; }

/* ---- micro-kernels ------------------------------------------------------ */

#if defined(__GNUC__)
typedef float nb_v16 __attribute__((vector_size(64)));
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(nb_v16))
#define STORE16(p, v) memcpy((p), &(v), sizeof(nb_v16))

/* Adds the accumulators acc[rows][cols] to C (or stores them, when store),
 * only mr x nr of them valid. */
#define ADD_TILE(ROWS, VECS)                                                         \
    do {                                                                             \
        if (nr == (VECS) * 16) {                                                     \
            for (int r = 0; r < mr; r++)                                             \
                for (int v = 0; v < (VECS); v++) {                                   \
                    nb_v16 t = acc[r][v];                                            \
                    if (!store) {                                                    \
                        nb_v16 old;                                                  \
                        LOAD16(old, c + (size_t)r * ldc + 16 * v);                   \
                        t += old;                                                    \
                    }                                                                \
                    STORE16(c + (size_t)r * ldc + 16 * v, t);                        \
                }                                                                    \
        } else {                                                                     \
            for (int r = 0; r < mr; r++)                                             \
                for (int j = 0; j < nr; j++) {                                       \
                    float *cj = c + (size_t)r * ldc + j;                             \
                    *cj = store ? acc[r][j / 16][j % 16] : *cj + acc[r][j / 16][j % 16]; \
                }                                                                    \
        }                                                                            \
    } while (0)

/* the 6 x 16 kernel, compiled once per target below */
#define KERNEL_6x16_BODY                                              \
    nb_v16 acc[6][1];                                                 \
    memset(acc, 0, sizeof acc);                                       \
    for (int k = 0; k < kc; k++, a += 6, b += 16) {                   \
        nb_v16 b0;                                                    \
        LOAD16(b0, b);                                                \
        for (int r = 0; r < 6; r++) acc[r][0] += a[r] * b0;           \
    }                                                                 \
    ADD_TILE(6, 1)

#if defined(__x86_64__) || defined(__i386__)
/* 8 x 32: a is kc x 8, b is kc x 32 */
__attribute__((target("avx512f"))) static void kernel_8x32(int kc, const float *a, const float *b, float *c,
                                                           int ldc, int mr, int nr, int store)
{
    nb_v16 acc[8][2];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++, a += 8, b += 32) {
        nb_v16 b0, b1;
        LOAD16(b0, b);
        LOAD16(b1, b + 16);
        for (int r = 0; r < 8; r++) {
            acc[r][0] += a[r] * b0;
            acc[r][1] += a[r] * b1;
        }
    }
    ADD_TILE(8, 2);
}

/* 8 x 16 over the left half of 32-wide panels: the last panel of a product
 * whose width leaves 16 columns or fewer, which the 8 x 32 kernel would
 * compute in full for nothing */
__attribute__((target("avx512f"))) static void kernel_8x16(int kc, const float *a, const float *b, float *c,
                                                           int ldc, int mr, int nr, int store)
{
    nb_v16 acc[8][1];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++, a += 8, b += 32) {
        nb_v16 b0;
        LOAD16(b0, b);
        for (int r = 0; r < 8; r++) acc[r][0] += a[r] * b0;
    }
    ADD_TILE(8, 1);
}

/* The same two kernels reading A in place, row r at a + r * lda (k
 * contiguous), for a row-major A with alpha 1: the eight broadcasts per k
 * come from eight rows instead of one packed panel, so A needs no packing
 * (a small product's A is packed once per use: up to 8% of an MLP step).
 * The same operations in the same order: the same bits as packed. */
#define KERNEL_8xN_DIRECT(VECS)                                                \
    nb_v16 acc[8][VECS];                                                       \
    memset(acc, 0, sizeof acc);                                                \
    const float *ar[8];                                                        \
    for (int r = 0; r < 8; r++) ar[r] = a + (size_t)r * lda;                   \
    for (int k = 0; k < kc; k++, b += 32) {                                    \
        nb_v16 bv[VECS];                                                       \
        for (int v = 0; v < (VECS); v++) LOAD16(bv[v], b + 16 * v);            \
        for (int r = 0; r < 8; r++)                                            \
            for (int v = 0; v < (VECS); v++) acc[r][v] += ar[r][k] * bv[v];    \
    }                                                                          \
    const int mr = 8;                                                          \
    ADD_TILE(8, VECS)
__attribute__((target("avx512f"))) static void kernel_8x32_direct(int kc, const float *a, int lda, const float *b,
                                                                  float *c, int ldc, int nr, int store)
{
    KERNEL_8xN_DIRECT(2);
}
__attribute__((target("avx512f"))) static void kernel_8x16_direct(int kc, const float *a, int lda, const float *b,
                                                                  float *c, int ldc, int nr, int store)
{
    KERNEL_8xN_DIRECT(1);
}

/* 6 x 16 with AVX2 and FMA: each 16-float vector is two ymm registers */
__attribute__((target("avx2,fma"))) static void kernel_6x16_avx2(int kc, const float *a, const float *b,
                                                                 float *c, int ldc, int mr, int nr, int store)
{
    KERNEL_6x16_BODY;
}
#endif

static void kernel_6x16(int kc, const float *a, const float *b, float *c, int ldc, int mr, int nr, int store)
{
    KERNEL_6x16_BODY;
}
#else
static void kernel_6x16(int kc, const float *a, const float *b, float *c, int ldc, int mr, int nr, int store)
{
    float acc[6][16];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < 6; r++)
            for (int j = 0; j < 16; j++) acc[r][j] += a[k * 6 + r] * b[k * 16 + j];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[(size_t)r * ldc + j] = store ? acc[r][j] : c[(size_t)r * ldc + j] + acc[r][j];
}
#endif

/* a kernel reading A in place, all mr rows of it (see kernel_8x32_direct) */
typedef void (*nb_dkernel)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int nr, int store);

typedef struct {
    int mr, nr;
    nb_ukernel fn;
    nb_ukernel half;   /* for tiles at most nr / 2 wide, reading the panel's left half; or NULL */
    int level;
    nb_dkernel direct, direct_half;   /* or NULL */
} nb_arch;

/* The kernel of a given level (2: AVX-512, 1: AVX2+FMA, 0: portable; -1:
 * the best this CPU runs), or the portable one when the CPU lacks the level.
 * No cached state: the check is a few instructions, and the library keeps no
 * mutable globals. */
static nb_arch pick_arch(int level)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if ((level < 0 || level == 2) && __builtin_cpu_supports("avx512f")) return (nb_arch){8, 32, kernel_8x32, kernel_8x16, 2, kernel_8x32_direct, kernel_8x16_direct};
    if ((level < 0 || level == 1) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return (nb_arch){6, 16, kernel_6x16_avx2, NULL, 1, NULL, NULL};
#endif
    (void)level;
    return (nb_arch){6, 16, kernel_6x16, NULL, 0, NULL, NULL};
}

nb_ukernel_info nb_sgemm_ukernel(int level)
{
    nb_arch a = pick_arch(level);
    return (nb_ukernel_info){a.mr, a.nr, a.level, a.fn};
}

int nb_sgemm_kernel_available(int level)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (level == 2) return __builtin_cpu_supports("avx512f");
    if (level == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return level == 0;
}

/* ---- packing ------------------------------------------------------------ */

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

#if defined(NB_SIMD) && (defined(__x86_64__) || defined(__i386__))
/* B^T[k0:k0+kc, j0:j0+w] into one nr-wide panel (nr a multiple of 16, w <=
 * nr), for AVX-512: B's rows j are contiguous along k, so 16 x 16 blocks
 * are loaded as rows, transposed in registers and stored as the panel's
 * rows; what is left of k and j goes one by one. */
__attribute__((target("avx512f"))) static void pack_bt_avx512(const float *B, int ldb, int k0, int kc, int j0, int w,
                                                              int nr, float *dst)
{
    int jb = 0;
    for (; jb + 16 <= w; jb += 16) {
        const float *src = B + (size_t)(j0 + jb) * ldb + k0;
        int k = 0;
        for (; k + 16 <= kc; k += 16) {
            wv r[16];
            for (int i = 0; i < 16; i++) r[i] = wv_load(src + (size_t)i * ldb + k);
            wv_transpose16(r);
            for (int i = 0; i < 16; i++) wv_store(dst + (size_t)(k + i) * nr + jb, r[i]);
        }
        for (; k < kc; k++)
            for (int i = 0; i < 16; i++) dst[(size_t)k * nr + jb + i] = src[(size_t)i * ldb + k];
    }
    for (int k = 0; k < kc; k++) {
        float *d = dst + (size_t)k * nr;
        for (int j = jb; j < w; j++) d[j] = B[(size_t)(j0 + j) * ldb + k0 + k];
        for (int j = w; j < nr; j++) d[j] = 0.0f;
    }
}
#define NB_HAVE_PACK_BT 1
#endif

/* op(B)[k0:k0+kc, j0:j0+w] into one nr-wide panel, zero-padded; level: the
 * kernel's (a transposed B goes through registers with AVX-512). */
static void pack_b_panel(int level, int trans_b, const float *B, int ldb, int k0, int kc, int j0, int w, int nr,
                         float *dst)
{
#ifdef NB_HAVE_PACK_BT
    if (trans_b && level == 2 && nr % 16 == 0) {
        pack_bt_avx512(B, ldb, k0, kc, j0, w, nr, dst);
        return;
    }
#else
    (void)level;
#endif
    for (int k = 0; k < kc; k++, dst += nr) {
        if (!trans_b) {
            const float *src = B + (size_t)(k0 + k) * ldb + j0;
            for (int j = 0; j < w; j++) dst[j] = src[j];
        } else {
            const float *src = B + (size_t)j0 * ldb + k0 + k;
            for (int j = 0; j < w; j++) dst[j] = src[(size_t)j * ldb];
        }
        for (int j = w; j < nr; j++) dst[j] = 0.0f;
    }
}

/* alpha * op(A)[i0:i0+h, k0:k0+kc] into one mr-tall panel, zero-padded,
 * written in order: an untransposed A is read as mr streams at once, which
 * measured faster than reading it row by row and writing across the panel. */
static void pack_a_panel(int trans_a, const float *A, int lda, int i0, int h, int k0, int kc, float alpha, int mr,
                         float *dst)
{
    if (trans_a) {
        for (int k = 0; k < kc; k++, dst += mr) {
            const float *src = A + (size_t)(k0 + k) * lda + i0;
            for (int r = 0; r < h; r++) dst[r] = alpha * src[r];
            for (int r = h; r < mr; r++) dst[r] = 0.0f;
        }
        return;
    }
    const float *src = A + (size_t)i0 * lda + k0;
    for (int k = 0; k < kc; k++, dst += mr) {
        for (int r = 0; r < h; r++) dst[r] = alpha * src[(size_t)r * lda + k];
        for (int r = h; r < mr; r++) dst[r] = 0.0f;
    }
}

/* alpha * op(A)[i0:i0+mc, k0:k0+kc] into mr-tall panels */
static void pack_a(int trans_a, const float *A, int lda, int i0, int mc, int k0, int kc, float alpha, int mr,
                   float *ap)
{
    for (int ip = 0; ip < mc; ip += mr)
        pack_a_panel(trans_a, A, lda, i0 + ip, mc - ip < mr ? mc - ip : mr, k0, kc, alpha, mr, ap + (size_t)ip * kc);
}

/* ---- the blocked product ------------------------------------------------- */

typedef struct {
    nb_arch arch;
    int trans_a, trans_b, M, N, K, lda, ldb, ldc;
    float alpha;
    const float *A, *B;
    float *C;
    /* the current block */
    int j0, nc, k0, kc;
    int store;               /* this block overwrites C (beta == 0, first KC block) */
    int n_panels, m_blocks, n_chunks, chunk_panels;
    float *bp;               /* packed B block: the caller's workspace */
    nb_pool *pool;           /* where each thread's workspace is (NULL: the stack) */
    float *ap;               /* packed A, all of M, shared by the tile tasks; or NULL */
    const float *pa;         /* A packed by the caller (nb_sgemm_pack), all of it; or NULL */
    int mpad;                /* M rounded up to mr: pa's row count */
    int direct;              /* full row panels read A in place (arch.direct) */
} nb_gemm_job;

/* Task t < n_panels packs B panel t; the tasks after it (with a shared A)
 * pack one A panel each. */
static void pack_task(void *ctx, int t)
{
    nb_gemm_job *g = ctx;
    if (t < g->n_panels) {
        int jp = t * g->arch.nr, w = g->nc - jp < g->arch.nr ? g->nc - jp : g->arch.nr;
        pack_b_panel(g->arch.level, g->trans_b, g->B, g->ldb, g->k0, g->kc, g->j0 + jp, w, g->arch.nr,
                     g->bp + (size_t)jp * g->kc);
        return;
    }
    int ip = (t - g->n_panels) * g->arch.mr, h = g->M - ip < g->arch.mr ? g->M - ip : g->arch.mr;
    pack_a_panel(g->trans_a, g->A, g->lda, ip, h, g->k0, g->kc, g->alpha, g->arch.mr, g->ap + (size_t)ip * g->kc);
}

/* One MC-row block of C times one chunk of B panels; own: room for an A
 * block. With g->direct, full row panels read A in place and only a
 * partial last one is packed. */
static void tile_work(nb_gemm_job *g, int t, float *own)
{
    const int mr = g->arch.mr, nr = g->arch.nr;
    float *ap = own;
    int mb = t / g->n_chunks, ch = t % g->n_chunks;
    int i0 = mb * MC, mc = g->M - i0 < MC ? g->M - i0 : MC;
    const int full = g->direct ? mc / mr * mr : 0;   /* rows read in place */
    /* MC is a multiple of every mr, so row blocks start on panel boundaries */
    if (g->pa) ap = (float *)g->pa + (size_t)g->k0 * g->mpad + (size_t)i0 * g->kc;
    else if (g->ap) ap = g->ap + (size_t)i0 * g->kc;
    else if (full < mc) pack_a(g->trans_a, g->A, g->lda, i0 + full, mc - full, g->k0, g->kc, g->alpha, mr, own);
    /* the packed panels start at row `full` of the block */
    int p0 = ch * g->chunk_panels, p1 = p0 + g->chunk_panels < g->n_panels ? p0 + g->chunk_panels : g->n_panels;
    for (int p = p0; p < p1; p++) {
        int jp = p * nr;
        const int w = g->nc - jp < nr ? g->nc - jp : nr;
        const int half = w <= nr / 2;
        const nb_ukernel fn = half && g->arch.half ? g->arch.half : g->arch.fn;
        const nb_dkernel dfn = half && g->arch.direct_half ? g->arch.direct_half : g->arch.direct;
        const float *bp = g->bp + (size_t)jp * g->kc;
        float *c = g->C + (size_t)i0 * g->ldc + g->j0 + jp;
        int ip = 0;
        for (; ip < full; ip += mr)
            dfn(g->kc, g->A + (size_t)(i0 + ip) * g->lda + g->k0, g->lda, bp, c + (size_t)ip * g->ldc, g->ldc, w,
                g->store);
        for (; ip < mc; ip += mr)
            fn(g->kc, ap + (size_t)(ip - full) * g->kc, bp, c + (size_t)ip * g->ldc, g->ldc, mc - ip < mr ? mc - ip : mr,
               w, g->store);
    }
}

/* Without a pool (direct calls, tests) the A block lives on the stack, in
 * a frame of its own so that it costs nothing when a workspace exists. */
NB_NOINLINE static void tile_work_on_stack(nb_gemm_job *g, int t)
{
    _Alignas(64) float own[AP_FLOATS];
    tile_work(g, t, own);
}

static void tile_task(void *ctx, int t)
{
    nb_gemm_job *g = ctx;
    float *ws = nb_pool_workspace(g->pool);   /* the thread running this task */
    if (ws) tile_work(g, t, ws_bp(ws) + BP_FLOATS + AP_SKEW);
    else tile_work_on_stack(g, t);
}

/* One row block (m_blocks == 1) and no shared A: task t packs the B panels
 * of its own chunk, then computes them, with no wait for the others. */
static void fused_task(void *ctx, int t)
{
    nb_gemm_job *g = ctx;
    const int p0 = t * g->chunk_panels, p1 = p0 + g->chunk_panels < g->n_panels ? p0 + g->chunk_panels : g->n_panels;
    for (int p = p0; p < p1; p++) pack_task(ctx, p);
    tile_task(ctx, t);
}

/* pa: A already packed (nb_sgemm_pack, alpha applied), or NULL. pool: the
 * workspaces, and the threads when parallel. bp: the caller's B block. */
static void gemm_run(int level, nb_pool *pool, int parallel, int trans_a, int trans_b, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     const float *pa, float *bp)
{
    nb_gemm_job g = {pick_arch(level), trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, A, B, C,
                     0, 0, 0, 0, 0, 0, 0, 0, 0, bp, pool, NULL, pa, 0, 0};
    g.direct = g.arch.direct && !pa && !trans_a && alpha == 1.0f;
    g.mpad = (M + g.arch.mr - 1) / g.arch.mr * g.arch.mr;
    if (alpha == 0.0f || K == 0) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    /* beta == 0: the first KC block stores its tiles instead of adding them
     * (no pass to clear C, and NaN in C does not survive) */
    if (beta != 0.0f) scale_c(M, N, beta, C, ldc);
    const int threads = parallel ? nb_pool_threads(pool) : 1;
    /* one thread, or a small product (no hand-off cost): no pool to run on */
    nb_pool *p = threads == 1 || (double)M * N * K < 64.0 * 64 * 64 ? NULL : pool;
    g.m_blocks = (M + MC - 1) / MC;
    for (g.j0 = 0; g.j0 < N; g.j0 += NC) {
        g.nc = N - g.j0 < NC ? N - g.j0 : NC;
        g.n_panels = (g.nc + g.arch.nr - 1) / g.arch.nr;
        /* enough chunks of panels to keep every thread busy */
        g.n_chunks = g.m_blocks >= 2 * threads ? 1 : (2 * threads + g.m_blocks - 1) / g.m_blocks;
        if (g.n_chunks > g.n_panels) g.n_chunks = g.n_panels;
        if (!p) g.n_chunks = 1;
        g.chunk_panels = (g.n_panels + g.n_chunks - 1) / g.n_chunks;
        g.n_chunks = (g.n_panels + g.chunk_panels - 1) / g.chunk_panels;
        /* several tasks per row block: A is packed once, in the pool's
         * scratch, rather than by each of them */
        const int a_panels = (M + g.arch.mr - 1) / g.arch.mr;
        size_t have = 0;
        float *shared = nb_pool_scratch(p, &have);
        g.ap = !pa && !g.direct && g.n_chunks > 1 && (size_t)a_panels * g.arch.mr * KC * sizeof(float) <= have
                   ? shared
                   : NULL;
        for (g.k0 = 0; g.k0 < K; g.k0 += KC) {
            g.kc = K - g.k0 < KC ? K - g.k0 : KC;
            g.store = beta == 0.0f && g.k0 == 0;
            if (g.m_blocks == 1 && !g.ap) {
                nb_pool_run(p, g.n_chunks, fused_task, &g);
                continue;
            }
            nb_pool_run(p, g.n_panels + (g.ap ? a_panels : 0), pack_task, &g);
            nb_pool_run(p, g.m_blocks * g.n_chunks, tile_task, &g);
        }
    }
}

NB_NOINLINE static void gemm_on_stack(int level, nb_pool *pool, int parallel, int trans_a, int trans_b, int M, int N,
                                      int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                                      float *C, int ldc, const float *pa)
{
    _Alignas(64) float bp[BP_FLOATS];
    gemm_run(level, pool, parallel, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pa, bp);
}

/* The B block goes to the calling thread's workspace in the pool, or (no
 * pool, or none reserved yet: direct calls) to the stack. */
static void gemm_blocked(int level, nb_pool *pool, int parallel, int trans_a, int trans_b, int M, int N, int K,
                         float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                         const float *pa)
{
    float *ws = nb_pool_workspace(pool);
    if (ws) gemm_run(level, pool, parallel, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pa, ws_bp(ws));
    else gemm_on_stack(level, pool, parallel, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pa);
}

void nb_sgemm_builtin_pool(nb_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_blocked(-1, pool, 1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void nb_sgemm_serial(nb_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef NB_HAVE_CBLAS
    (void)pool;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
#else
    gemm_blocked(-1, pool, 0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
#endif
}

void nb_sgemm_kernel(int level, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_blocked(level, NULL, 0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void nb_sgemm_builtin(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc)
{
    nb_sgemm_builtin_pool(NULL, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nb_sgemm_pool(nb_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef NB_HAVE_CBLAS
    (void)pool;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    nb_sgemm_builtin_pool(pool, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void nb_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    nb_sgemm_pool(NULL, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- A packed once, for many products ------------------------------------
 * The built-in layout: for each KC block of K, all of alpha * op(A)'s mr-row
 * panels (M padded to mr) at k0 * mpad. With a CBLAS it is simply alpha *
 * op(A), row-major. */

size_t nb_sgemm_packed_size(int M, int K)
{
#ifdef NB_HAVE_CBLAS
    return (size_t)M * K;
#else
    const int mr = pick_arch(-1).mr;
    return (size_t)((M + mr - 1) / mr * mr) * K;
#endif
}

void nb_sgemm_pack(int trans_a, int M, int K, float alpha, const float *A, int lda, float *packed)
{
#ifdef NB_HAVE_CBLAS
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++)
            packed[(size_t)i * K + k] = alpha * (trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
#else
    const int mr = pick_arch(-1).mr, mpad = (M + mr - 1) / mr * mr;
    for (int k0 = 0; k0 < K; k0 += KC)
        pack_a(trans_a, A, lda, 0, M, k0, K - k0 < KC ? K - k0 : KC, alpha, mr, packed + (size_t)k0 * mpad);
#endif
}

void nb_sgemm_packed(nb_pool *pool, int serial, int M, int N, int K, const float *packed, int trans_b,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef NB_HAVE_CBLAS
    (void)pool;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, packed, K, B, ldb,
                beta, C, ldc);
#else
    gemm_blocked(-1, pool, !serial, 0, trans_b, M, N, K, 1.0f, NULL, 0, B, ldb, beta, C, ldc, packed);
#endif
}
