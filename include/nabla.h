/*
 * nabla.h - the public API of nabla, a small C library that trains neural
 * networks by backpropagation.
 *
 * The four steps of learning map onto four calls:
 *
 *   nb_plan_forward(plan)            the forward pass: the network guesses
 *   (a loss node in the graph)       the loss: how wrong the guess was
 *   nb_plan_backward(plan, NULL)     backpropagation: every weight's gradient
 *   nb_optim_step(opt)               the update: every weight steps downhill
 *
 * Conventions
 * - Every public name starts with nb_. Handles are opaque.
 * - A function that can fail returns an nb_status (NB_OK == 0) or NULL, and
 *   leaves a message naming what was wrong in nb_last_error() (per thread).
 *   The library never prints, never exits and never aborts.
 * - Graph builders accept NULL inputs and then return NULL without touching
 *   the message, so a chain of calls can be checked once at its end:
 *       nb_node *y = nb_relu(g, nb_add(g, nb_matmul(g, x, w), b));
 *       if (!y) fprintf(stderr, "%s\n", nb_last_error());
 * - Tensors are float32, row-major (C order), at most NB_MAX_DIMS axes.
 *   Images are NCHW as in PyTorch.
 * - Ownership: the graph owns its nodes and parameter memory; a plan owns its
 *   activation memory; whoever calls *_create calls the matching *_free.
 */
#ifndef NABLA_H
#define NABLA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_VERSION "0.1.0"
#define NB_MAX_DIMS 8
/* A dimension given as NB_BATCH in nb_input() is the batch dimension: its
 * size is fixed later, by the plan. */
#define NB_BATCH (-1)

typedef enum nb_status {
    NB_OK = 0,
    NB_ERR_ARG,      /* a bad argument: NULL, out of range, wrong kind of node */
    NB_ERR_SHAPE,    /* shapes that do not fit the op */
    NB_ERR_NOMEM,    /* an allocation failed or a size overflowed */
    NB_ERR_STATE,    /* a call out of order (e.g. a plan older than its graph) */
    NB_ERR_VALUE,    /* a bad value in data (e.g. a label outside its range) */
    NB_ERR_NUMERIC,  /* a result that is not finite where it must be */
    NB_ERR_IO,       /* a file could not be read or written */
    NB_ERR_FORMAT,   /* a file or text that does not follow its format */
    NB_ERR_GRADIENT  /* nb_gradcheck found a gradient that disagrees */
} nb_status;

/* The message of the last failed call on this thread ("" if none). The
 * pointer stays valid until the next failing call on the same thread. */
const char *nb_last_error(void);
/* A short name for a status code, e.g. "shape error". */
const char *nb_status_str(nb_status s);

/* ------------------------------------------------------------------ */
/* Random numbers: xoshiro256**, seeded by splitmix64. Same seed, same
 * stream, on every machine.                                           */

typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

void     nb_rng_seed(nb_rng *r, uint64_t seed);
uint64_t nb_rng_next(nb_rng *r);             /* 64 random bits */
double   nb_rng_uniform(nb_rng *r);          /* in [0, 1) */
double   nb_rng_normal(nb_rng *r);           /* mean 0, stddev 1 */
uint64_t nb_rng_below(nb_rng *r, uint64_t n); /* in [0, n), unbiased; n > 0 */
void nb_fill_uniform(float *x, size_t n, float lo, float hi, nb_rng *r);
void nb_fill_normal(float *x, size_t n, float mean, float std, nb_rng *r);

/* ------------------------------------------------------------------ */
/* Graphs. A graph is a list of nodes; each node is an op over earlier
 * nodes, so creation order is a topological order. Build it once, then
 * run it many times through plans.                                    */

typedef struct nb_graph nb_graph;
typedef struct nb_node nb_node;

nb_graph *nb_graph_create(void);             /* NULL only when out of memory */
void      nb_graph_free(nb_graph *g);        /* frees every node and plan-independent memory */
/* The first error met while building this graph (NB_OK if none), and its message. */
nb_status   nb_graph_status(const nb_graph *g);
const char *nb_graph_error(const nb_graph *g);

int      nb_graph_node_count(const nb_graph *g);
nb_node *nb_graph_node(const nb_graph *g, int i);   /* i-th node in creation order */
nb_node *nb_graph_find(const nb_graph *g, const char *name);

/* Leaves. Shapes may use NB_BATCH for the batch dimension.
 * - an input is fed by the caller before every forward pass;
 * - a parameter is trained: it has a gradient and optimizers update it
 *   (its values start at zero; fill them with nb_node_data or an init);
 * - a constant holds fixed values and has no gradient.
 * Names are copied; parameter names must be unique in the graph. */
nb_node *nb_input(nb_graph *g, const char *name, int ndim, const int64_t *shape);
nb_node *nb_param(nb_graph *g, const char *name, int ndim, const int64_t *shape);
nb_node *nb_const(nb_graph *g, const char *name, int ndim, const int64_t *shape,
                  const float *values /* may be NULL: zeros */);
nb_node *nb_scalar(nb_graph *g, float value);       /* a 0-d constant */

/* Node properties. */
const char *nb_node_name(const nb_node *n);  /* "" for unnamed op nodes */
nb_status   nb_node_set_name(nb_node *n, const char *name);
const char *nb_node_op(const nb_node *n);    /* op name, e.g. "matmul" */
int         nb_node_id(const nb_node *n);    /* index in creation order */
int         nb_node_input_count(const nb_node *n);
nb_node    *nb_node_input(const nb_node *n, int i);
/* Shape as built; batch-sized axes read NB_BATCH. Returns ndim. */
int         nb_node_shape(const nb_node *n, int64_t shape[NB_MAX_DIMS]);
/* Number of elements per sample-independent shape (batch axes counted as 1). */
size_t      nb_node_numel(const nb_node *n);
int         nb_node_is_param(const nb_node *n);
int         nb_node_requires_grad(const nb_node *n);
/* Values and gradients of parameters and constants (NULL for other nodes;
 * gradient NULL for constants). The pointers stay valid until the next
 * parameter or constant is added to the graph. */
float *nb_node_data(nb_node *n);
float *nb_node_grad(nb_node *n);
/* Keep this node's value readable after a forward pass (plans may reuse the
 * memory of values no later op needs). Outputs without consumers are kept. */
void nb_node_keep(nb_node *n);

/* All parameters: count, total number of floats, and the contiguous blocks
 * that hold every parameter value and every gradient, in creation order. */
int    nb_graph_param_count(const nb_graph *g);
nb_node *nb_graph_param(const nb_graph *g, int i);
size_t nb_graph_param_numel(const nb_graph *g);
float *nb_graph_param_data(nb_graph *g);
float *nb_graph_param_grad(nb_graph *g);
void   nb_graph_zero_grad(nb_graph *g);      /* set every parameter gradient to 0 */

/* ------------------------------------------------------------------ */
/* Ops. Each returns a new node, or NULL with a message that names the op
 * and the shapes. Binary elementwise ops broadcast as NumPy does.
 * Axes may be negative (counted from the end).                         */

/* elementwise, with broadcasting */
nb_node *nb_add(nb_graph *g, nb_node *a, nb_node *b);
nb_node *nb_sub(nb_graph *g, nb_node *a, nb_node *b);
nb_node *nb_mul(nb_graph *g, nb_node *a, nb_node *b);
nb_node *nb_div(nb_graph *g, nb_node *a, nb_node *b);
/* elementwise, one input */
nb_node *nb_neg(nb_graph *g, nb_node *x);
nb_node *nb_scale(nb_graph *g, nb_node *x, float alpha);      /* alpha * x */
nb_node *nb_add_scalar(nb_graph *g, nb_node *x, float c);     /* x + c */
nb_node *nb_exp(nb_graph *g, nb_node *x);
nb_node *nb_log(nb_graph *g, nb_node *x);
nb_node *nb_sqrt(nb_graph *g, nb_node *x);
nb_node *nb_pow(nb_graph *g, nb_node *x, float p);            /* x ** p */
nb_node *nb_abs(nb_graph *g, nb_node *x);
/* activations */
nb_node *nb_relu(nb_graph *g, nb_node *x);
nb_node *nb_leaky_relu(nb_graph *g, nb_node *x, float slope); /* PyTorch default 0.01 */
nb_node *nb_elu(nb_graph *g, nb_node *x, float alpha);        /* PyTorch default 1.0 */
nb_node *nb_gelu(nb_graph *g, nb_node *x, int tanh_approx);   /* 0: exact (erf), 1: tanh */
nb_node *nb_sigmoid(nb_graph *g, nb_node *x);
nb_node *nb_tanh(nb_graph *g, nb_node *x);
nb_node *nb_softplus(nb_graph *g, nb_node *x, float beta, float threshold); /* 1, 20 */
/* linear algebra and shapes */
nb_node *nb_matmul(nb_graph *g, nb_node *a, nb_node *b);  /* [..,M,K] @ [..,K,N]; batch axes broadcast */
nb_node *nb_transpose(nb_graph *g, nb_node *x, int axis0, int axis1);
nb_node *nb_permute(nb_graph *g, nb_node *x, const int *perm);  /* perm has ndim(x) entries */
/* reshape: one entry may be -1 (inferred); 0 copies the input's size at that
 * axis (so {0, -1} flattens whatever the batch size). No copy is made. */
nb_node *nb_reshape(nb_graph *g, nb_node *x, int ndim, const int64_t *shape);
nb_node *nb_flatten(nb_graph *g, nb_node *x);   /* [N, ...] -> [N, prod(...)] */
nb_node *nb_concat(nb_graph *g, int n, nb_node *const *xs, int axis);
/* [start, end) along axis; negative positions count from the end, and end
 * NB_END means "to the end" whatever the size (e.g. on a batch axis). */
#define NB_END INT64_MAX
nb_node *nb_slice(nb_graph *g, nb_node *x, int axis, int64_t start, int64_t end);
/* reductions: axes == NULL or naxes == 0 reduces over every axis */
nb_node *nb_sum(nb_graph *g, nb_node *x, int naxes, const int *axes, int keepdims);
nb_node *nb_mean(nb_graph *g, nb_node *x, int naxes, const int *axes, int keepdims);
nb_node *nb_max(nb_graph *g, nb_node *x, int naxes, const int *axes, int keepdims);
nb_node *nb_softmax(nb_graph *g, nb_node *x, int axis);
nb_node *nb_log_softmax(nb_graph *g, nb_node *x, int axis);
/* convolution and pooling, NCHW. bias may be NULL.
 * weight is [out_channels, in_channels / groups, kh, kw]. */
typedef struct nb_conv2d_opts {
    int stride_h, stride_w;      /* 0 means 1 */
    int pad_h, pad_w;
    int dilation_h, dilation_w;  /* 0 means 1 */
    int groups;                  /* 0 means 1 */
} nb_conv2d_opts;
nb_node *nb_conv2d(nb_graph *g, nb_node *x, nb_node *weight, nb_node *bias,
                   const nb_conv2d_opts *opts /* NULL: stride 1, no padding */);
/* stride 0 means stride = kernel (PyTorch's default) */
nb_node *nb_max_pool2d(nb_graph *g, nb_node *x, int kh, int kw, int stride_h, int stride_w,
                       int pad_h, int pad_w);
nb_node *nb_avg_pool2d(nb_graph *g, nb_node *x, int kh, int kw, int stride_h, int stride_w,
                       int pad_h, int pad_w);   /* padding counted in the average, as PyTorch */
/* losses: scalar (0-d) outputs, averaged over the batch */
/* logits [N, C]; labels [N] hold class indices 0..C-1 stored as floats */
nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels);
nb_node *nb_mse(nb_graph *g, nb_node *pred, nb_node *target);
nb_node *nb_bce_with_logits(nb_graph *g, nb_node *logits, nb_node *target);

/* ------------------------------------------------------------------ */
/* Plans. A plan fixes the batch size, infers every shape, decides the
 * order of work and allocates every buffer once. Running it allocates
 * nothing.                                                             */

typedef struct nb_plan nb_plan;

enum {
    NB_PLAN_TRAIN = 1,   /* allocate gradients: nb_plan_backward is allowed */
    NB_PLAN_KEEP  = 2    /* keep every value and gradient (no buffer reuse):
                            for inspection, explanations and gradcheck */
};

/* target: the node backward starts from (usually the scalar loss); NULL for
 * a plan that only runs forward. batch: the size of every NB_BATCH axis
 * (ignored by graphs without one, must be >= 1). */
nb_plan *nb_plan_create(nb_graph *g, nb_node *target, int batch, unsigned flags);
void     nb_plan_free(nb_plan *p);

/* Training mode (the default for NB_PLAN_TRAIN plans) versus evaluation mode:
 * ops such as dropout and batch normalisation behave differently. */
void nb_plan_set_training(nb_plan *p, int training);
/* Seeds the plan's own random generator (dropout masks). */
void nb_plan_seed(nb_plan *p, uint64_t seed);

/* Runs every node forward, in order. */
nb_status nb_plan_forward(nb_plan *p);
/* Backpropagation from the plan's target. seed_grad: d(target) as an array of
 * target's size, or NULL for all ones (the usual case for a scalar loss).
 * Parameter gradients are ADDED to (call nb_graph_zero_grad between steps). */
nb_status nb_plan_backward(nb_plan *p, const float *seed_grad);

/* The value (or gradient) buffer of node n in this plan, with its element
 * count in *count (may be NULL). Write inputs here before a forward pass.
 * NULL if the node has no such buffer in this plan. */
float *nb_plan_data(nb_plan *p, const nb_node *n, size_t *count);
float *nb_plan_grad(nb_plan *p, const nb_node *n, size_t *count);
/* Copies count floats into an input's buffer; count must match exactly. */
nb_status nb_plan_set_input(nb_plan *p, nb_node *input, const float *values, size_t count);
/* The node's concrete shape in this plan. Returns ndim, or -1 if n is foreign. */
int nb_plan_shape(const nb_plan *p, const nb_node *n, int64_t shape[NB_MAX_DIMS]);
/* Bytes of activation, gradient and workspace memory this plan holds. */
size_t nb_plan_memory(const nb_plan *p);

/* ------------------------------------------------------------------ */
/* Gradient check by central finite differences.
 *
 * Builds its own plan (NB_PLAN_KEEP) for `batch`, fixes a random weighting r
 * of the output, and compares d(sum(out * r))/dp from nb_plan_backward with
 * (f(p + eps) - f(p - eps)) / (2 eps) for every element of every parameter.
 * Inputs must have been filled through nb_gradcheck_opts.fill_inputs or be
 * free of NB_BATCH shapes and filled with nb_const instead.
 * An element passes when |analytic - numeric| <= atol + rtol * max(|a|, |n|).
 * Returns NB_OK when every element passes, NB_ERR_GRADIENT naming the worst
 * parameter and element otherwise, or another error from planning.        */
typedef struct nb_gradcheck_opts {
    double eps;   /* 0: 1e-2 (float32 needs a large step) */
    double rtol;  /* 0: 1e-2 */
    double atol;  /* 0: 1e-3 */
    int batch;    /* 0: 1 */
    uint64_t seed;
    /* called once after planning to fill the inputs of the plan; may be NULL */
    nb_status (*fill_inputs)(nb_plan *p, void *user);
    void *user;
} nb_gradcheck_opts;

typedef struct nb_gradcheck_report {
    size_t checked;          /* elements compared */
    size_t failed;           /* elements outside tolerance */
    double max_abs_err;      /* worst |analytic - numeric| */
    double max_rel_err;      /* worst |a - n| / max(|a|, |n|, atol) */
    char worst[160];         /* "param 'w' element 3: analytic 0.5, numeric 0.25" */
} nb_gradcheck_report;

nb_status nb_gradcheck(nb_graph *g, nb_node *out, const nb_gradcheck_opts *opts,
                       nb_gradcheck_report *report /* may be NULL */);

/* ------------------------------------------------------------------ */
/* Optimizers keep their state outside the graph and update every trainable
 * parameter in one pass over the contiguous parameter block.          */

typedef struct nb_optim nb_optim;

typedef struct nb_sgd_opts {
    float lr;
    float momentum;      /* 0: plain SGD */
    float dampening;
    float weight_decay;  /* L2 penalty added to the gradient, as torch.optim.SGD */
    int nesterov;
} nb_sgd_opts;

nb_optim *nb_sgd_create(nb_graph *g, const nb_sgd_opts *opts);
void      nb_optim_free(nb_optim *o);
/* One update from the current gradients. Does not zero them. */
nb_status nb_optim_step(nb_optim *o);
void      nb_optim_set_lr(nb_optim *o, float lr);
float     nb_optim_lr(const nb_optim *o);

/* ------------------------------------------------------------------ */
/* Data sets: samples (features as float32, any shape) with one target
 * each: a class index (classification, stored as a float) or a vector of
 * values (regression). Loaded once into memory.                       */

typedef struct nb_dataset nb_dataset;

/* IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed (needs zlib):
 * images idx3 (unsigned bytes, scaled to [0, 1]) and labels idx1. Features
 * have shape [1, rows, cols] (NCHW without N). */
nb_dataset *nb_dataset_load_idx(const char *images_path, const char *labels_path);
/* A directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]
 * (split "train") or t10k-* (split "test"). */
nb_dataset *nb_dataset_load_idx_dir(const char *dir, const char *split);

typedef struct nb_csv_opts {
    int header;           /* 1: the first row names the columns (-1: detect) */
    int label_column;     /* index of the target column; -1: the last one */
    int regression;       /* 0: the label is a class index 0..C-1; 1: a real value */
    char delimiter;       /* 0: ',' */
} nb_csv_opts;
/* A numeric CSV file: one sample per row; a bad cell is reported with its
 * row and column. */
nb_dataset *nb_dataset_load_csv(const char *path, const nb_csv_opts *opts /* NULL: defaults */);

/* Built-in synthetic sets, reproducible from the seed:
 *   "xor"     2-D points in 4 clusters, 2 classes
 *   "spiral"  2-D, 3 interleaved spirals, 3 classes
 *   "circles" 2-D, two concentric rings, 2 classes
 *   "sine"    1-D regression: y = sin(x) + noise
 * n: number of samples (0: a default size). */
nb_dataset *nb_dataset_synthetic(const char *name, size_t n, uint64_t seed);

void   nb_dataset_free(nb_dataset *d);
size_t nb_dataset_count(const nb_dataset *d);
/* Shape of one sample's features; returns ndim. */
int    nb_dataset_shape(const nb_dataset *d, int64_t shape[NB_MAX_DIMS]);
size_t nb_dataset_sample_size(const nb_dataset *d);   /* floats per sample */
int    nb_dataset_classes(const nb_dataset *d);       /* 0 for regression */
size_t nb_dataset_target_size(const nb_dataset *d);   /* 1 for classification */
const float *nb_dataset_features(const nb_dataset *d); /* count x sample_size */
const float *nb_dataset_targets(const nb_dataset *d);  /* count x target_size */
/* Feature statistics over all samples and values. */
void nb_dataset_stats(const nb_dataset *d, double *mean, double *std);
/* x = (x - mean) / std for every feature value (std <= 0: error). */
nb_status nb_dataset_normalize(nb_dataset *d, float mean, float std);
/* Splits off the last `fraction` of a seeded permutation as a validation
 * set. Both results are new data sets; d is unchanged. */
nb_status nb_dataset_split(const nb_dataset *d, double fraction, uint64_t seed,
                           nb_dataset **train, nb_dataset **val);

/* Mini-batches over a data set: a seeded permutation per epoch (the same
 * seed and epoch give the same order), or the stored order. */
typedef struct nb_loader nb_loader;
nb_loader *nb_loader_create(const nb_dataset *d, int batch, int shuffle, uint64_t seed);
void       nb_loader_free(nb_loader *l);
/* Starts epoch `epoch` (0-based): reshuffles with (seed, epoch). */
void       nb_loader_start(nb_loader *l, int epoch);
/* Copies the next batch into x (batch x sample_size floats) and y (batch x
 * target_size); returns how many samples it copied (< batch only for the
 * last batch of an epoch, 0 when the epoch is over). Allocates nothing. */
size_t     nb_loader_next(nb_loader *l, float *x, float *y);
size_t     nb_loader_batches(const nb_loader *l);   /* per epoch, the last may be short */

#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
