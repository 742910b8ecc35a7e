/*
 * internal.h - the structures behind nabla's opaque handles, shared by the
 * core, the ops and the kernels. Not installed.
 */
#ifndef NB_INTERNAL_H
#define NB_INTERNAL_H

#include "nabla.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors (error.c) ---------------------------------------------- */

/* Records a message for nb_last_error() and returns status. */
nb_status nb_set_error(nb_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- memory (alloc.c): every allocation of the library goes here ---- */

void *nb_alloc(size_t bytes);                 /* NULL + message on failure */
void *nb_calloc(size_t count, size_t size);   /* zeroed; overflow checked */
void *nb_realloc(void *p, size_t bytes);
void  nb_free(void *p);
char *nb_strdup(const char *s);
/* a*b and a+b with overflow detection: return 0 on overflow */
int nb_mul_ok(size_t a, size_t b, size_t *out);
int nb_add_ok(size_t a, size_t b, size_t *out);

/* ---- shapes (shape.c) ---------------------------------------------- */

typedef struct nb_shape {
    int ndim;
    int64_t d[NB_MAX_DIMS];
} nb_shape;

size_t nb_shape_numel(const nb_shape *s);
int    nb_shape_eq(const nb_shape *a, const nb_shape *b);
/* "[2,3,4]" into buf; returns buf */
char  *nb_shape_str(const nb_shape *s, char *buf, size_t size);
/* Resolves a possibly negative axis against ndim; -1 when out of range. */
int    nb_axis(int axis, int ndim);
/* NumPy broadcasting of a and b into out; 0 when they do not fit. */
int    nb_broadcast_shape(const nb_shape *a, const nb_shape *b, nb_shape *out);
/* Row-major strides of `in` aligned to `out` (which in broadcasts to):
 * broadcast axes get stride 0. Fills st[out->ndim]. */
void   nb_broadcast_strides(const nb_shape *in, const nb_shape *out, int64_t *st);

typedef struct nb_pool nb_pool;

/* ---- runtime tensors ----------------------------------------------- */

/* A node's buffers in one plan: shape, value and (when needed) gradient. */
typedef struct nb_tensor {
    nb_shape s;
    size_t n;     /* element count */
    float *x;     /* value */
    float *g;     /* gradient, or NULL when no gradient flows here */
} nb_tensor;

/* ---- ops ------------------------------------------------------------ */

typedef enum nb_op_kind {
    /* leaves */
    NB_OP_INPUT = 0, NB_OP_PARAM, NB_OP_CONST,
    /* elementwise binary (ops/binary.c) */
    NB_OP_ADD, NB_OP_SUB, NB_OP_MUL, NB_OP_DIV,
    /* elementwise unary (ops/unary.c) */
    NB_OP_NEG, NB_OP_SCALE, NB_OP_ADD_SCALAR, NB_OP_EXP, NB_OP_LOG, NB_OP_SQRT,
    NB_OP_POW, NB_OP_ABS,
    /* activations (ops/activation.c) */
    NB_OP_RELU, NB_OP_LEAKY_RELU, NB_OP_ELU, NB_OP_GELU, NB_OP_SIGMOID, NB_OP_TANH,
    NB_OP_SOFTPLUS,
    /* linear algebra (ops/matmul.c) */
    NB_OP_MATMUL,
    /* layout (ops/layout.c) */
    NB_OP_PERMUTE, NB_OP_RESHAPE, NB_OP_CONCAT, NB_OP_SLICE,
    /* reductions (ops/reduce.c) */
    NB_OP_SUM, NB_OP_MEAN, NB_OP_MAX,
    /* softmax (ops/softmax.c) */
    NB_OP_SOFTMAX, NB_OP_LOG_SOFTMAX,
    /* convolution and pooling (ops/conv.c, ops/pool.c) */
    NB_OP_CONV2D, NB_OP_MAX_POOL2D, NB_OP_AVG_POOL2D,
    /* losses (ops/loss.c) */
    NB_OP_SOFTMAX_CE, NB_OP_MSE, NB_OP_BCE_LOGITS,
    /* layers (ops/linear.c, ops/dropout.c, ops/norm.c, ops/embedding.c) */
    NB_OP_LINEAR, NB_OP_DROPOUT, NB_OP_BATCHNORM, NB_OP_LAYERNORM, NB_OP_EMBEDDING,
    /* more losses (ops/loss.c) */
    NB_OP_NLL, NB_OP_L1, NB_OP_HUBER,
    NB_OP_COUNT
} nb_op_kind;

/* Everything an op needs to run one node in one plan. */
typedef struct nb_exec {
    const struct nb_node *node;
    int n_in;
    nb_tensor *const *in;   /* inputs' tensors */
    nb_tensor *out;         /* out->g is the upstream gradient in backward */
    void *saved;            /* bytes kept from forward to backward (op's saved_bytes) */
    void *scratch;          /* temporary bytes, shared by all nodes (op's scratch_bytes) */
    int training;
    nb_rng *rng;
    nb_pool *pool;          /* threads for the kernels (NULL: the caller's only) */
    /* Random masks are a function of (seed, step, the sample's index in the
     * global batch, the element's index within its sample), whatever the
     * partition of the batch across processes (ops/dropout.c). */
    uint64_t seed, step;
    int64_t batch_offset;   /* index of the plan's first sample in the global batch */
    const struct nb_sync *sync; /* cross-process reductions; NULL: one process */
    nb_status *status;      /* where a backward that fails (a sync) reports it */
    /* An activation the plan fused into this op (NB_ACT_*, ops with
     * NB_OPF_ACT only): forward applies it to the output in place, backward
     * first turns out->g, the activation's upstream gradient, into the
     * op's own (from the activated output). */
    int act;
    /* Bit k set: in[k]->g has not been written yet in this backward pass
     * (it holds garbage) and backward must overwrite it, every element: = in
     * place of +=. Only ever set for ops with NB_OPF_ASSIGN. */
    unsigned fresh;
} nb_exec;

/* Activations a producer can apply to its own output (plan.c fuses them). */
enum { NB_ACT_NONE = 0, NB_ACT_RELU = 1 };
/* (ops/activation.c) Applies `act` to y[0..n) in place; turns dy into the
 * gradient before the activation, in place, from the activated output y
 * alone. Large arrays are split over the pool (NULL: the caller's thread).
 * NB_ACT_NONE does nothing. */
void nb_act_apply(struct nb_pool *pool, int act, float *y, size_t n);
void nb_act_grad(struct nb_pool *pool, int act, const float *y, float *dy, size_t n);
/* y[0..n) = act(y + b), on the caller's thread: a bias and the activation in
 * one pass over a product's output while in cache */
void nb_act_bias(int act, float *y, float b, size_t n);

/* Reductions across processes that an op needs in data-parallel training
 * (synchronised batch normalisation), set on a plan by the trainer. */
typedef struct nb_sync {
    /* Sums n doubles over every process, in place; every process gets the
     * same bits. A failure (a dead or stuck process) returns its status and
     * sets the message. */
    nb_status (*allreduce)(void *ctx, double *buf, size_t n);
    void *ctx;
    /* This process's share of the global loss, n_local / n_global: its
     * gradients are multiplied by it before they are summed across processes. */
    double weight;
} nb_sync;

/* For tests: fills the plan's arena (every value and gradient buffer) with
 * NaN, so that a pass reading memory nothing wrote first shows it. */
void nb_plan_poison(nb_plan *p);

/* The plan's cross-process reductions (NULL: none, the default). Copied. */
void nb_plan_set_sync(nb_plan *p, const nb_sync *s);
/* Called after the backward step of every node (in backward order, from the
 * target down to node 0), so that data-parallel training can start summing a
 * bucket of parameter gradients as soon as the last op that writes it has
 * run. A status other than NB_OK stops the backward pass with it. */
void nb_plan_set_backward_hook(nb_plan *p, nb_status (*hook)(void *user, int node), void *user);

/* Op flags */
enum {
    NB_OPF_VIEW = 1,  /* output is input 0's memory under another shape (no copy) */
    NB_OPF_ACT = 2,   /* honours nb_exec.act: a relu consuming its output can be fused */
    NB_OPF_ASSIGN = 4 /* honours nb_exec.fresh for every input it writes a gradient to */
};

/* One entry of the op table. Each op family file defines its entries next to
 * the functions they point to. */
typedef struct nb_op_def {
    const char *name;
    unsigned flags;
    /* Output shape from input shapes, or an error naming the op and shapes. */
    nb_status (*shape)(const struct nb_node *n, const nb_shape *const *in, nb_shape *out);
    /* Bytes kept per node from forward to backward; NULL for none. */
    size_t (*saved_bytes)(const struct nb_node *n, const nb_shape *const *in, const nb_shape *out);
    /* Temporary bytes needed by forward or backward; NULL for none. */
    size_t (*scratch_bytes)(const struct nb_node *n, const nb_shape *const *in, const nb_shape *out);
    /* out = f(in). May fail on bad data (e.g. labels). NULL for views. */
    nb_status (*forward)(const nb_exec *e);
    /* in[i]->g += d out / d in[i] * out->g for every i with in[i]->g != NULL.
     * NULL for views and for ops without a gradient. */
    void (*backward)(const nb_exec *e);
} nb_op_def;

extern const nb_op_def *const nb_op_table[NB_OP_COUNT];

/* ---- graph ---------------------------------------------------------- */

#define NB_MAX_IATTR 16
#define NB_MAX_FATTR 4

struct nb_node {
    int id;
    nb_op_kind op;
    int n_in;
    struct nb_node **in;     /* graph-owned array of n_in inputs */
    char *name;              /* NULL when unnamed */
    nb_shape shape;          /* as built, with batch size 1 */
    nb_shape shape2;         /* the same with batch size 2: axes that differ scale with the batch */
    int requires_grad;
    int keep;                /* value must survive the forward pass */
    int n_consumers;
    int64_t ia[NB_MAX_IATTR];  /* op attributes: axes, kernel sizes, ... */
    float fa[NB_MAX_FATTR];
    size_t off;              /* parameters and constants: offset in the graph's block */
    struct nb_graph *graph;
};

struct nb_graph {
    nb_node **nodes;
    int n_nodes, cap_nodes;
    /* parameters: values and gradients, contiguous, same offsets */
    float *pdata, *pgrad;
    size_t pnumel, pcap;
    nb_node **params;
    int n_params, cap_params;
    /* constants: values only */
    float *cdata;
    size_t cnumel, ccap;
    unsigned version;        /* bumped by every change plans depend on */
    nb_pool *pool;           /* threads and their workspaces for every plan of this graph */
    nb_status status;        /* first build error */
    char *errmsg;
};

/* Creates an op node (used by every builder in ops/). Checks the inputs,
 * infers the shape under two nominal batch sizes (to find batch axes) and
 * appends the node. Returns NULL on error (message set). */
nb_node *nb_graph_add_node(nb_graph *g, nb_op_kind op, int n_in, nb_node *const *in,
                           const int64_t *ia, int n_ia, const float *fa, int n_fa);
/* Records a build error in g (first one wins) and returns NULL. */
nb_node *nb_graph_fail(nb_graph *g, nb_status st);

/* ---- threads (pool.c) --------------------------------------------------- */

/* A pool of `threads` threads in all (the caller counts as one). */
nb_pool *nb_pool_create(int threads);
void     nb_pool_free(nb_pool *p);
int      nb_pool_threads(const nb_pool *p);   /* 1 for NULL */
/* Scratch memory for the parallel kernel the pool is running (one at a
 * time: a pool runs one job at a time); NULL and 0 bytes for NULL or a
 * one-thread pool. */
void    *nb_pool_scratch(nb_pool *p, size_t *bytes);
/* The calling thread's own workspace in the pool (the caller's, or the
 * worker's running the task), nb_sgemm_workspace_floats() floats: where the
 * matrix product packs its blocks, so that no kernel needs a large stack
 * (a host program's threads may have small ones). Workspaces exist once
 * nb_pool_reserve has made them (plans do: a graph that only parses or
 * loads never pays for them); until then, and for a NULL pool, NULL. */
float    *nb_pool_workspace(nb_pool *p);
nb_status nb_pool_reserve(nb_pool *p);
int       nb_pool_reserved(const nb_pool *p);
/* fn(ctx, t) for t = 0..ntasks-1, spread over the pool; returns when all are
 * done. Allocates nothing. p may be NULL (runs on the caller). */
void     nb_pool_run(nb_pool *p, int ntasks, void (*fn)(void *ctx, int task), void *ctx);
/* fn(ctx, lo, hi) over disjoint ranges covering [0, n), each at least grain
 * long (except the last), spread over the pool. */
void     nb_pool_for(nb_pool *p, size_t n, size_t grain, void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx);

/* ---- kernels (kernels/gemm.c) ---------------------------------------- */

/* Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
 * op(A) = A (lda >= K) or A^T (A stored [K,M], lda >= M); likewise B. */
void nb_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The same spread over a thread pool (NULL: the caller's thread). */
void nb_sgemm_pool(nb_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* Floats of one thread's workspace for the built-in kernel (nb_pool_workspace). */
size_t nb_sgemm_workspace_floats(void);
/* nb_sgemm_pool on the calling thread only, still packing in the pool's
 * workspace (for kernels that run many small products in parallel tasks). */
void nb_sgemm_serial(nb_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* An A operand packed once for many products with it (a convolution's
 * weights, used by every sample): the floats it needs, the packing of
 * alpha * op(A) [M,K], and C[M,N] = packed * op(B) + beta * C (serial: on
 * the calling thread only, as nb_sgemm_serial). */
size_t nb_sgemm_packed_size(int M, int K);
void nb_sgemm_pack(int trans_a, int M, int K, float alpha, const float *A, int lda, float *packed);
void nb_sgemm_packed(nb_pool *pool, int serial, int M, int N, int K, const float *packed, int trans_b,
                     const float *B, int ldb, float beta, float *C, int ldc);
/* The built-in blocked kernel, exported for tests that compare against BLAS. */
void nb_sgemm_builtin(int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc);
void nb_sgemm_builtin_pool(nb_pool *pool, int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The built-in kernel at a given level (2: AVX-512, 1: AVX2+FMA, 0:
 * portable), for tests; and whether this CPU runs that level (also what
 * other kernels ask before taking an AVX-512 path). */
void nb_sgemm_kernel(int level, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc);
int  nb_sgemm_kernel_available(int level);
/* The built-in kernel's micro-kernel, for code that writes its operands in
 * the packed layouts itself (kernels/winograd.c): c[mr', nr'] (+)= a x b
 * over kc, a holding mr floats per k (rows past mr' zero), b nr per k; store
 * overwrites c instead of adding. level: 2 AVX-512, 1 AVX2+FMA, 0 portable. */
typedef void (*nb_ukernel)(int kc, const float *a, const float *b, float *c, int ldc, int mr, int nr, int store);
typedef struct {
    int mr, nr, level;
    nb_ukernel fn;
} nb_ukernel_info;
nb_ukernel_info nb_sgemm_ukernel(int level);   /* -1: the best this CPU runs */

#endif /* NB_INTERNAL_H */
