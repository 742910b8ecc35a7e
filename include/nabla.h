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
#include <stdio.h>

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
    NB_ERR_GRADIENT, /* nb_gradcheck found a gradient that disagrees */
    NB_ERR_COMM      /* processes of a data-parallel run disagree, died or timed out */
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

/* Threads for the kernels of every plan of this graph (the caller counts as
 * one; 0: one per online CPU; default 1). Results are the same bit for bit
 * for any number of threads on a given machine. A graph and its plans are
 * used by one thread at a time (different graphs may run concurrently on
 * different threads); the kernels need no large stack from that thread. */
nb_status nb_graph_set_threads(nb_graph *g, int threads);
int       nb_graph_threads(const nb_graph *g);

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
/* layers' ops */
/* y = x W^T + b: x [..., in], weight [out, in] (PyTorch's layout), bias [out] or NULL */
nb_node *nb_linear(nb_graph *g, nb_node *x, nb_node *weight, nb_node *bias);
/* Zeroes each element with probability p and scales the rest by 1/(1-p) in
 * training mode (masks from the plan's seed and step, see nb_plan_set_step);
 * identity in evaluation. */
nb_node *nb_dropout(nb_graph *g, nb_node *x, float p);
/* Batch normalisation over axis 1 of x [N, C] or [N, C, ...] (BatchNorm1d/2d):
 * training mode normalises with the batch statistics (biased variance) and
 * updates running_mean/running_var (constants [C], unbiased variance, as
 * PyTorch) and the 0-d constant num_batches_tracked; evaluation mode uses the
 * running statistics. gamma, beta: [C] parameters (may be NULL: no affine). */
nb_node *nb_batchnorm(nb_graph *g, nb_node *x, nb_node *gamma, nb_node *beta,
                      nb_node *running_mean, nb_node *running_var,
                      nb_node *num_batches_tracked, float momentum /* 0.1 */, float eps /* 1e-5 */);
/* Layer normalisation over the last `naxes` axes; gamma, beta have the shape
 * of those axes (may be NULL). */
nb_node *nb_layernorm(nb_graph *g, nb_node *x, int naxes, nb_node *gamma, nb_node *beta,
                      float eps /* 1e-5 */);
/* Rows of weight [num, dim] picked by indices (class ids stored as floats, any
 * shape S): output S + [dim]. An index outside [0, num) fails the forward pass. */
nb_node *nb_embedding(nb_graph *g, nb_node *indices, nb_node *weight);

/* losses: scalar (0-d) outputs, averaged over the batch */
/* logits [N, C]; labels [N] hold class indices 0..C-1 stored as floats */
nb_node *nb_softmax_cross_entropy(nb_graph *g, nb_node *logits, nb_node *labels);
/* the same with label smoothing eps in [0, 1): the target puts 1 - eps on the
 * label and eps spread over all C classes (as torch.nn.CrossEntropyLoss) */
nb_node *nb_softmax_cross_entropy_smooth(nb_graph *g, nb_node *logits, nb_node *labels,
                                         float smoothing);
/* log_probs [N, C] (e.g. from nb_log_softmax), labels [N]: mean -log_probs[i, label_i] */
nb_node *nb_nll(nb_graph *g, nb_node *log_probs, nb_node *labels);
nb_node *nb_l1(nb_graph *g, nb_node *pred, nb_node *target);      /* mean |p - t| */
/* mean of 0.5 d^2 where |d| < delta, else delta (|d| - delta/2) (torch.nn.HuberLoss) */
nb_node *nb_huber(nb_graph *g, nb_node *pred, nb_node *target, float delta);
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
/* Seeds the plan's random masks (dropout) and its generator, and sets its
 * step to 0. */
void nb_plan_seed(nb_plan *p, uint64_t seed);
/* The plan's generator itself, to save and restore its state (checkpoints). */
nb_rng *nb_plan_rng(nb_plan *p);
/* Random masks do not come from a stream: each element's is a hash of (the
 * seed, the step, the node, the sample's index in the GLOBAL batch, the
 * element's index within its sample). So a sample gets the same mask
 * whichever process of a data-parallel run and whichever position it lands
 * in. The step says which pass the masks are for: every forward pass in
 * training mode advances it by one (a trainer sets it to the optimizer step);
 * the batch offset is the index of the plan's first sample in the global
 * batch (0, the default, for one process). */
void     nb_plan_set_step(nb_plan *p, uint64_t step);
uint64_t nb_plan_step(const nb_plan *p);
void     nb_plan_set_batch_offset(nb_plan *p, int64_t offset);

/* Checks, after every op, that its output (forward) and the gradients it
 * sent back (backward) are finite; the first that is not fails the pass with
 * NB_ERR_NUMERIC naming the node, its op, its input shapes and the element.
 * Costs one scan of every buffer: for debugging. */
void nb_plan_set_detect_anomaly(nb_plan *p, int on);

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
 * parameter in one pass over the contiguous parameter block.
 *
 * Each follows torch.optim 1.13's update rule exactly (the single-tensor
 * path, maximize=False): its scalars are computed in double and its tensor
 * arithmetic in float32, in torch's order (see src/nn/optim.c), so that a
 * run agrees with torch.optim to float32 rounding (tests/torch checks it).
 *
 * Options: every field is taken literally - a zero field means zero, not
 * "the default" (0 is a valid weight decay, beta1 or momentum) - so start
 * from the NB_*_DEFAULTS initialisers (torch's defaults) and change what you
 * need, or set every field. lr is always the caller's: >= 0. The create
 * functions check every option and fail with NB_ERR_ARG and a message
 * naming the optimizer, the option and its value, e.g.
 * "adam: beta2 1 must be in [0, 1)". Non-finite values are refused.
 * Every state buffer is allocated by create; nb_optim_step allocates nothing. */

typedef struct nb_optim nb_optim;

/* torch.optim.SGD: lr, momentum, weight_decay >= 0; dampening finite;
 * nesterov needs momentum > 0 and dampening 0. */
typedef struct nb_sgd_opts {
    float lr;
    float momentum;      /* 0: plain SGD */
    float dampening;
    float weight_decay;  /* L2 penalty added to the gradient, as torch.optim.SGD */
    int nesterov;
} nb_sgd_opts;

/* torch.optim.Adam and AdamW: lr, eps, weight_decay >= 0; beta1, beta2 in [0, 1). */
typedef struct nb_adam_opts {
    float lr;            /* torch's default 1e-3 */
    float beta1, beta2;  /* 0.9, 0.999 */
    float eps;           /* 1e-8 */
    float weight_decay;  /* Adam: L2 added to the gradient (default 0);
                            AdamW: decoupled, p *= 1 - lr * weight_decay (default 1e-2) */
    int amsgrad;         /* 0 */
} nb_adam_opts;

/* torch.optim.RMSprop: lr, eps, weight_decay, momentum >= 0; alpha in [0, 1]
 * (torch also accepts alpha > 1, which is never useful). */
typedef struct nb_rmsprop_opts {
    float lr;            /* torch's default 1e-2 */
    float alpha;         /* 0.99 */
    float eps;           /* 1e-8 */
    float weight_decay;  /* L2 added to the gradient (default 0) */
    float momentum;      /* 0 */
    int centered;        /* 0 */
} nb_rmsprop_opts;

/* torch's defaults, e.g.  nb_adam_opts o = NB_ADAM_DEFAULTS; o.lr = 3e-4f; */
#define NB_ADAM_DEFAULTS    {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, \
                             .weight_decay = 0.0f, .amsgrad = 0}
#define NB_ADAMW_DEFAULTS   {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, \
                             .weight_decay = 1e-2f, .amsgrad = 0}
#define NB_RMSPROP_DEFAULTS {.lr = 1e-2f, .alpha = 0.99f, .eps = 1e-8f, .weight_decay = 0.0f, \
                             .momentum = 0.0f, .centered = 0}

nb_optim *nb_sgd_create(nb_graph *g, const nb_sgd_opts *opts);
nb_optim *nb_adam_create(nb_graph *g, const nb_adam_opts *opts);
nb_optim *nb_adamw_create(nb_graph *g, const nb_adam_opts *opts);
nb_optim *nb_rmsprop_create(nb_graph *g, const nb_rmsprop_opts *opts);
void      nb_optim_free(nb_optim *o);
/* One update from the current gradients. Does not zero them. Fails with
 * NB_ERR_STATE if the graph gained parameters after the optimizer was made. */
nb_status nb_optim_step(nb_optim *o);
/* The learning rate of the next steps (e.g. from nb_schedule_lr); AdamW's
 * decoupled decay uses it too, as torch does. */
void      nb_optim_set_lr(nb_optim *o, float lr);
float     nb_optim_lr(const nb_optim *o);
const char *nb_optim_name(const nb_optim *o);   /* "sgd", "adam", "adamw", "rmsprop" */
/* Updates done so far (torch's state "step"): Adam's bias corrections use
 * steps + 1 in the next update, and SGD starts its momentum buffer as a copy
 * of the first step's gradient only when steps is 0. Settable to resume a
 * run (restore the state buffers too); a negative value is ignored. */
long      nb_optim_steps(const nb_optim *o);
void      nb_optim_set_steps(nb_optim *o, long steps);
/* The optimizer's state buffers, each nb_graph_param_numel() floats laid out
 * like the parameter block, for checkpoints: read them to save, write them
 * to resume. Names and order, as torch's state dict:
 *   sgd      "momentum_buffer" (only when momentum > 0)
 *   adam(w)  "exp_avg", "exp_avg_sq", then "max_exp_avg_sq" when amsgrad
 *   rmsprop  "square_avg", then "momentum_buffer" when momentum > 0, then
 *            "grad_avg" when centered
 * An index outside [0, count) gives NULL and a message. */
int         nb_optim_state_count(const nb_optim *o);
const char *nb_optim_state_name(const nb_optim *o, int i);
float      *nb_optim_state(nb_optim *o, int i);

/* Scales all parameter gradients so that their global L2 norm is at most
 * max_norm, as torch.nn.utils.clip_grad_norm_: total = sqrt(sum of every
 * gradient element squared) (in double); when
 * max_norm / (total + 1e-6) < 1 every gradient is multiplied by it. Returns
 * total, the norm before clipping; max_norm INFINITY only measures it. A
 * non-finite total leaves the gradients alone (and is returned: check it).
 * NULL g, or max_norm negative or NaN: returns -1 with a message, gradients
 * untouched. */
float nb_clip_grad_norm(nb_graph *g, float max_norm);

/* Learning-rate schedules: the rate for step `step` (0-based, the number of
 * updates done before it; negative counts as 0), computed in double:
 *   constant       lr
 *   step           lr * gamma^floor(step / step_size)         (step_size >= 1)
 *   cosine         min_lr + (lr - min_lr) (1 + cos(pi step / total_steps)) / 2
 *                  for step < total_steps, min_lr from then on  (total_steps >= 1)
 *   warmup-cosine  with W = warmup_steps, T = total_steps (0 <= W <= T, T >= 1):
 *                  step < W:  lr * (step + 1) / W   (lr/W, 2 lr/W, ..., lr)
 *                  step >= W: min_lr + (lr - min_lr) (1 + cos(pi (step - W) / (T - W))) / 2,
 *                             i.e. lr at step W down to min_lr at step T;
 *                  min_lr for every step >= T (and W = 0 is plain cosine)
 * Fields a kind does not use are ignored. A schedule that breaks its kind's
 * rule, or an unknown kind, gives NaN and a message. */
typedef enum { NB_SCHED_CONSTANT, NB_SCHED_STEP, NB_SCHED_COSINE, NB_SCHED_WARMUP_COSINE } nb_sched_kind;
typedef struct nb_schedule {
    nb_sched_kind kind;
    float lr, min_lr, gamma;
    long step_size, warmup_steps, total_steps;
} nb_schedule;
float nb_schedule_lr(const nb_schedule *s, long step);
/* "constant", "step", "cosine", "warmup-cosine" -> kind; -1 if unknown or NULL */
int   nb_schedule_kind(const char *name);

/* ------------------------------------------------------------------ */
/* Initialisers. fan_in/fan_out as PyTorch computes them (Linear: in, out;
 * Conv2d: in/groups*kh*kw, out/groups*kh*kw).                          */

typedef enum {
    NB_INIT_UNIFORM_FANIN,   /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's Linear/Conv default */
    NB_INIT_XAVIER_UNIFORM,  /* U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)) */
    NB_INIT_XAVIER_NORMAL,   /* N(0, gain^2 2 / (fan_in + fan_out)) */
    NB_INIT_HE_UNIFORM,      /* U(-a, a), a = sqrt(6 / fan_in)   (kaiming_uniform_, relu) */
    NB_INIT_HE_NORMAL,       /* N(0, 2 / fan_in)                 (kaiming_normal_, relu) */
    NB_INIT_NORMAL,          /* N(0, value^2) (value 0: 1)       (Embedding's default) */
    NB_INIT_ZEROS,
    NB_INIT_CONSTANT         /* every element = value */
} nb_init_kind;
/* Fills n floats. gain/value as noted above. */
void nb_init_fill(float *x, size_t n, nb_init_kind kind, double fan_in, double fan_out,
                  double value, nb_rng *r);
/* "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "normal",
 * "zeros", "constant", "default" (NB_INIT_UNIFORM_FANIN) -> kind; -1 if unknown. */
int nb_init_kind_from_name(const char *name);

/* ------------------------------------------------------------------ */
/* Models described by a spec (.nn text, see docs/model-spec.md): one layer
 * per line. Reading a spec builds the graph, so every shape is checked
 * then; errors quote the file, the line number and the line.           */

typedef struct nb_model nb_model;

/* source names the text in messages (a file name). Parameters are
 * initialised from seed as PyTorch's layers would be (or as init= says). */
nb_model *nb_model_from_text(const char *text, const char *source, uint64_t seed);
nb_model *nb_model_from_file(const char *path, uint64_t seed);
void      nb_model_free(nb_model *m);
/* Re-initialises every parameter and buffer from seed. */
void      nb_model_init(nb_model *m, uint64_t seed);

const char *nb_model_spec(const nb_model *m);      /* the text it was read from */
nb_graph   *nb_model_graph(nb_model *m);
nb_node    *nb_model_input(const nb_model *m);     /* [B, input shape...] */
nb_node    *nb_model_target(const nb_model *m);    /* labels [B] or targets [B, ...] */
nb_node    *nb_model_output(const nb_model *m);    /* the last layer's output (logits) */
nb_node    *nb_model_loss(const nb_model *m);      /* 0-d */
/* 1 when the loss takes class labels (softmax_cross_entropy, nll), 0 for
 * regression targets of the output's shape. */
int         nb_model_is_classifier(const nb_model *m);

/* Layers (every line but input and loss), with PyTorch nn.Sequential indices. */
typedef struct nb_layer_info {
    const char *kind;        /* "linear", "conv2d", ... */
    int index;               /* nn.Sequential index: parameters are "<index>.weight" */
    int line;                /* in the spec */
    int ndim;                /* output shape per sample (without the batch axis) */
    int64_t shape[NB_MAX_DIMS];
    size_t params;           /* trainable parameters */
} nb_layer_info;
int       nb_model_layer_count(const nb_model *m);
nb_status nb_model_layer(const nb_model *m, int i, nb_layer_info *info);
/* Input shape per sample; returns ndim. */
int       nb_model_input_shape(const nb_model *m, int64_t shape[NB_MAX_DIMS]);

/* ------------------------------------------------------------------ */
/* safetensors files: an 8-byte little-endian header size, a JSON header
 * {"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}, then
 * the tensors' bytes. Readers check every size and offset against the file
 * before trusting it.
 * Files written here list "__metadata__" first (keys sorted by byte value),
 * then the tensors in the order they were added, their bytes contiguous in
 * that order, little-endian on any host; the header is padded with spaces
 * to a multiple of 8 bytes, as the reference implementation does.        */

typedef enum { NB_DTYPE_F32 = 0, NB_DTYPE_I64 = 1 } nb_dtype;

typedef struct nb_st_writer nb_st_writer;
nb_st_writer *nb_st_writer_create(void);
void          nb_st_writer_free(nb_st_writer *w);
/* Adds a tensor. The data is copied. Names must be unique. */
nb_status nb_st_add(nb_st_writer *w, const char *name, nb_dtype dtype, int ndim,
                    const int64_t *shape, const void *data);
/* Sets a metadata string (key unique; later values replace earlier ones). */
nb_status nb_st_set_meta(nb_st_writer *w, const char *key, const char *value);
/* Writes the file atomically: to "path.tmp", fsync, rename over path, fsync
 * the directory. On any failure path is untouched and the temporary removed
 * (NB_ERR_IO naming the path and the system's reason), except when only the
 * final directory sync fails: path is then already replaced. */
nb_status nb_st_write(const nb_st_writer *w, const char *path);

typedef struct nb_st_file nb_st_file;
/* Reads and validates a whole file: NULL with NB_ERR_IO (missing, a
 * directory, unreadable) or NB_ERR_FORMAT naming the file and the tensor or
 * byte offset. Checked: header size (at most 100 MiB), strict JSON, known
 * dtypes, at most NB_MAX_DIMS non-negative dims, offsets that match the
 * shapes and, as in the reference, tile the data exactly (no overlap, no
 * hole), unique non-empty names, string metadata. */
nb_st_file *nb_st_read(const char *path);
void        nb_st_free(nb_st_file *f);
int         nb_st_count(const nb_st_file *f);
const char *nb_st_name(const nb_st_file *f, int i);     /* in file order; NULL if out of range */
/* Finds a tensor; NULL data if absent (no error message). dtype, ndim and
 * shape may be NULL. The data stays valid until nb_st_free, is in host byte
 * order and is aligned for reading float / int64_t directly on any host
 * (non-NULL even for a tensor of 0 elements). */
const void *nb_st_find(const nb_st_file *f, const char *name, nb_dtype *dtype, int *ndim,
                       int64_t shape[NB_MAX_DIMS]);
/* A metadata value, or NULL. */
const char *nb_st_meta(const nb_st_file *f, const char *key);

/* ------------------------------------------------------------------ */
/* Data sets: samples (features as float32, any shape) with one target
 * each: a class index (classification, stored as a float) or a vector of
 * values (regression). Loaded once into memory.                       */

typedef struct nb_dataset nb_dataset;

/* IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed (a name ending
 * in .gz; needs zlib): images idx3 (unsigned bytes, scaled to [0, 1]) and
 * labels idx1. Features have shape [1, rows, cols] (NCHW without N). Classes
 * are 10 when every label is within 0..9, max label + 1 otherwise. */
nb_dataset *nb_dataset_load_idx(const char *images_path, const char *labels_path);
/* A directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]
 * (split "train") or t10k-* (split "test"); the uncompressed file is preferred
 * when both exist. */
nb_dataset *nb_dataset_load_idx_dir(const char *dir, const char *split);

typedef struct nb_csv_opts {
    int header;           /* 1: the first row names the columns, 0: it is data,
                             -1: detect (a header has a cell that is not a number) */
    int label_column;     /* 0-based index of the target column; -1: the last one
                             (NB: a zeroed struct means column 0) */
    int regression;       /* 0: the label is a class index 0..C-1; 1: a real value */
    char delimiter;       /* 0: ',' */
} nb_csv_opts;
/* A numeric CSV file: one sample per row, features of shape [columns - 1].
 * Classification labels are non-negative integers (classes = max + 1);
 * regression targets are any finite numbers. Blank lines, \r\n and spaces
 * around cells are accepted; empty cells, NaN and infinities are not. A bad
 * cell is reported as "file:line: column c: ..." (both 1-based). Files
 * ending in .gz are decompressed (needs zlib). */
nb_dataset *nb_dataset_load_csv(const char *path,
                                const nb_csv_opts *opts /* NULL: detect header, last column, classes, ',' */);

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
/* Splits off the last round(fraction * count) samples of a seeded
 * permutation as a validation set (fraction in [0, 1); 0 gives an empty
 * validation set, and at least one training sample must remain). Both
 * results are new data sets; d is unchanged. */
nb_status nb_dataset_split(const nb_dataset *d, double fraction, uint64_t seed,
                           nb_dataset **train, nb_dataset **val);

/* Mini-batches over a data set: a seeded permutation per epoch (the same
 * seed and epoch give the same order), or the stored order. The loader
 * borrows d, which must outlive it. batch >= 1. Epoch 0 is started by
 * create. */
typedef struct nb_loader nb_loader;
nb_loader *nb_loader_create(const nb_dataset *d, int batch, int shuffle, uint64_t seed);
void       nb_loader_free(nb_loader *l);
/* Starts epoch `epoch` (0-based): reshuffles with (seed, epoch). */
void       nb_loader_start(nb_loader *l, int epoch);
/* Copies the next batch into x (batch x sample_size floats) and y (batch x
 * target_size; either may be NULL to skip it); returns how many samples it
 * copied (< batch only for the last batch of an epoch, 0 when the epoch is
 * over). Allocates nothing. */
size_t     nb_loader_next(nb_loader *l, float *x, float *y);
/* Skips the next n samples of the epoch (to resume part-way through one). */
void       nb_loader_skip(nb_loader *l, size_t n);
size_t     nb_loader_batches(const nb_loader *l);   /* per epoch, the last may be short */

/* ------------------------------------------------------------------ */
/* Training and evaluation of a model on a data set: the loop every
 * program would write, with deterministic shuffling, the optimizer and
 * schedule of its configuration, and checkpoints that resume exactly.  */

typedef struct nb_train_config {
    int batch;               /* mini-batch size (default 64) */
    const char *optimizer;   /* "sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"
                                (default "adam") */
    float lr;                /* <= 0: the optimizer's default (sgd 0.1, momentum/nesterov 0.05,
                                adam/adamw 1e-3, rmsprop 1e-3) */
    float momentum;          /* <= 0: 0.9 for momentum/nesterov, 0 for rmsprop */
    float weight_decay;      /* default 0 (adamw: 0.01 when < 0) */
    const char *schedule;    /* "constant", "step", "cosine", "warmup-cosine" (default constant) */
    float clip_norm;         /* > 0: clip the global gradient norm to this */
    int epochs;              /* the run's total epochs, for schedules (default 10) */
    uint64_t seed;           /* shuffling and dropout */
} nb_train_config;

typedef struct nb_trainer nb_trainer;
typedef struct nb_comm nb_comm;   /* processes of a data-parallel run, see below */

/* Statistics of one step or epoch: mean loss over samples, accuracy (-1 for
 * regression), samples seen. */
typedef struct nb_train_stats {
    int epoch;               /* 0-based */
    long step;               /* optimizer steps so far */
    size_t samples;
    double loss, accuracy;
    float lr;
    double grad_norm;        /* global gradient norm of the last step (before clipping) */
} nb_train_stats;

/* The trainer keeps a reference to m and train (both must outlive it). */
nb_trainer *nb_trainer_create(nb_model *m, const nb_dataset *train, const nb_train_config *cfg);
void        nb_trainer_free(nb_trainer *t);
/* Runs the next epoch. on_step (may be NULL) is called after every step with
 * the running statistics of the epoch; returning non-zero stops the epoch
 * early (NB_ERR_STATE "stopped") between two steps: a checkpoint then holds
 * the exact state and the next call (or a resumed run) continues with the
 * epoch's next batch. After a step that failed (e.g. a non-finite loss) no
 * checkpoint can be written.
 * With batch normalisation, a last batch of a single sample joins the batch
 * before it (statistics of one sample are undefined). */
nb_status   nb_trainer_epoch(nb_trainer *t, nb_train_stats *stats,
                             int (*on_step)(void *user, const nb_train_stats *running), void *user);
int         nb_trainer_epochs_done(const nb_trainer *t);
/* nb_plan_set_detect_anomaly for the trainer's plans: the first op whose
 * output or gradient is not finite stops the epoch with its name. */
void        nb_trainer_set_detect_anomaly(nb_trainer *t, int on);
const nb_train_config *nb_trainer_config(const nb_trainer *t);
nb_optim   *nb_trainer_optim(nb_trainer *t);

typedef struct nb_eval_result {
    size_t samples;
    double loss, accuracy;   /* accuracy -1 for regression */
    int classes;
    size_t *confusion;       /* classes x classes counts [true][predicted], owned by the result */
} nb_eval_result;
/* Evaluates m on every sample of d (evaluation mode). r is overwritten: free
 * an earlier result first. On failure r holds nothing to free. */
nb_status nb_evaluate(nb_model *m, const nb_dataset *d, int batch, nb_eval_result *r);
void      nb_eval_result_free(nb_eval_result *r);
/* nb_evaluate over the processes of c (NULL: this one alone): each
 * evaluates a contiguous share of d and the counts are summed, so every
 * process gets the result over all of d. Collective: every process calls it
 * with the same d and batch. */
nb_status nb_evaluate_comm(nb_comm *c, nb_model *m, const nb_dataset *d, int batch, nb_eval_result *r);
/* Outputs of the last layer for n samples (x: n x input size floats) into
 * out (n x output size floats); softmax is NOT applied. */
nb_status nb_model_predict(nb_model *m, const float *x, size_t n, float *out);
size_t    nb_model_output_size(const nb_model *m);   /* floats per sample */

/* ------------------------------------------------------------------ */
/* Data-parallel training over MPI (docs/distributed.md). Every process
 * (rank) holds the whole model and trains on a disjoint shard of every
 * global batch, all taken from the same shuffled order; gradients are summed
 * across ranks, each weighted by its shard's share of the batch, so every
 * rank takes the step of the mean loss over the global batch, and the
 * weights stay identical everywhere. Needs a build with MPI (`make MPI=1`);
 * otherwise nb_comm_world fails saying so, and a NULL communicator means
 * one process everywhere.
 *
 * Collectives wait at most the communicator's time limit: a rank that died,
 * stopped or hangs turns into NB_ERR_COMM naming it on the others, never a
 * hang. After such an error the communicator is unusable: end the job (an
 * MPI program calls MPI_Abort). Every call marked collective must be made
 * by every rank, in the same order.                                     */

/* 1 when this library was built with MPI. */
int      nb_have_mpi(void);
/* All processes of the job (MPI_COMM_WORLD, duplicated; MPI initialised
 * with MPI_Init_thread(FUNNELED) unless the program already did). Collective.
 * NULL with NB_ERR_STATE when built without MPI. */
nb_comm *nb_comm_world(void);
/* The processes of an MPI communicator of the program's: mpi_comm points to
 * an MPI_Comm (duplicated; MPI must be initialised). Collective. */
nb_comm *nb_comm_from_mpi(const void *mpi_comm);
/* Frees c; finalises MPI if nb_comm_world initialised it and no collective
 * failed (after a failure the job must be aborted instead). */
void     nb_comm_free(nb_comm *c);
int      nb_comm_rank(const nb_comm *c);    /* 0 for NULL */
int      nb_comm_size(const nb_comm *c);    /* 1 for NULL */
/* The time limit of every collective, in seconds (default 60; <= 0: none). */
void     nb_comm_set_timeout(nb_comm *c, double seconds);
double   nb_comm_timeout(const nb_comm *c);
/* Sums n doubles over every rank, in place; every rank gets the same bits.
 * Collective. */
nb_status nb_comm_allreduce(nb_comm *c, double *buf, size_t n);
/* Checks that every rank holds the same bytes for each item (hashes are
 * compared): NB_OK, or NB_ERR_COMM on every rank with a message naming the
 * items and the ranks that differ from rank 0. Collective. */
typedef struct nb_comm_item {
    const char *what;        /* e.g. "model spec" */
    const void *data;
    size_t bytes;
} nb_comm_item;
nb_status nb_comm_check_same(nb_comm *c, const nb_comm_item *items, int n);
/* Every rank's local status: NB_OK when all are NB_OK; otherwise every rank
 * returns an error with the same message, "WHAT failed on rank R: <rank R's
 * message>" (a failed rank keeps its own status, the others get
 * NB_ERR_COMM). Collective. */
nb_status nb_comm_agree(nb_comm *c, nb_status local, const char *what);
/* 1 once a collective of c failed or timed out: the ranks can no longer
 * work together, and the job must be ended (MPI_Abort). */
int       nb_comm_failed(const nb_comm *c);

/* Gradient buckets: 0 (the default) sums all gradients in one allreduce
 * after the backward pass; bytes > 0 starts summing each bucket of about
 * that many bytes as soon as backward has finished writing it, overlapping
 * communication with the rest of the backward pass (docs/distributed.md
 * has the measurements: on one machine it does not pay). */
void     nb_comm_set_bucket_bytes(nb_comm *c, size_t bytes);

enum {
    NB_DIST_SYNC_BN = 1      /* batch norm with the global batch's statistics
                                (default: each rank its shard's, as PyTorch DDP) */
};
/* Makes t train data-parallel over c (NULL: back to one process). The
 * global batch is t's configured batch. Collective: checks that every rank
 * has the same spec, data, settings and position (NB_ERR_COMM naming the
 * ranks otherwise), broadcasts rank 0's weights and buffers, and re-plans
 * for this rank's shard. Call it before nb_trainer_resume. c must outlive t
 * (or be detached first). nb_trainer_epoch becomes collective. */
nb_status nb_trainer_set_comm(nb_trainer *t, nb_comm *c, unsigned flags);
nb_comm  *nb_trainer_comm(const nb_trainer *t);

/* ------------------------------------------------------------------ */
/* Checkpoints: one safetensors file with the model's state dict (PyTorch
 * nn.Sequential names and layouts), the optimizer's state as
 * "optimizer.<buffer>.<parameter>" tensors, and metadata: the spec text,
 * epoch, step, optimizer and its settings, random states, normalisation.
 * Written atomically (nb_st_write).                                     */

/* Saves m, and t's training state when t is not NULL. extra: metadata
 * key/value pairs (NULL-terminated array of 2*k strings, may be NULL). */
nb_status nb_checkpoint_save(const char *path, nb_model *m, nb_trainer *t, const char *const *extra);
/* Rebuilds the model from the spec stored in the checkpoint and loads its
 * weights and buffers. */
nb_model *nb_checkpoint_load(const char *path);
/* Restores t's training state (optimizer, step, epoch, random states) and
 * m's weights from a checkpoint written for the same spec. */
nb_status nb_trainer_resume(nb_trainer *t, const char *path);

/* ------------------------------------------------------------------ */
/* Seeing it learn: a graph as Graphviz DOT, and a training report as one
 * self-contained HTML page. Both write only to the caller's stream or
 * file, and return NB_ERR_IO (with a message) when a write fails.      */

/* Annotate each node with its value summary (mean, std, min, max) and its
 * gradient's L2 norm: meaningful after nb_plan_forward / nb_plan_backward on
 * a plan made with NB_PLAN_KEEP (other plans reuse buffers). */
enum { NB_DOT_VALUES = 1 };
/* Writes g as a Graphviz digraph to out: one box per node with its op, its
 * name (parameters: "3.weight") and its shape - in p's batch size when p is
 * not NULL, with "N" for batch axes otherwise. Inputs, parameters, constants
 * and losses are styled apart; edges run from each input to its consumer
 * in creation (data-flow) order, numbered at the head when a node takes
 * several non-parameter inputs. Labels are escaped for DOT (and invalid
 * UTF-8 replaced). Render with e.g. `dot -Tsvg graph.dot -o graph.svg`. */
nb_status nb_graph_write_dot(nb_graph *g, nb_plan *p /* may be NULL */, unsigned flags, FILE *out);

/* A training report: the caller feeds it what training measured, then
 * writes it (typically after every epoch). The page needs no network (inline
 * CSS and SVG, no script), scales from a phone to a desktop, and shows:
 *   loss and accuracy per epoch (training, validation, test), the learning
 *   rate, the gradient norm of each layer over time, a confusion matrix,
 *   image tiles with predicted and true labels, a decision boundary over
 *   the plane for 2-D inputs, and the numbers as a table.
 * Sections whose data was never given are left out. Every setter copies its
 * arguments; a later call replaces the earlier data. */
typedef struct nb_report nb_report;

nb_report *nb_report_create(const char *title /* NULL: "nabla training report" */);
void       nb_report_free(nb_report *r);
/* A line "key  value" in the table under the title (model, data, optimizer,
 * ...), in the order first set; setting a key again replaces its value. */
nb_status  nb_report_set_info(nb_report *r, const char *key, const char *value);
/* Names for class indices 0..n-1 (confusion matrix, images, legend). */
nb_status  nb_report_set_class_names(nb_report *r, int n, const char *const *names);

typedef struct nb_report_epoch {
    int epoch;                      /* 1-based */
    double train_loss, train_acc;   /* accuracies < 0: none (regression) */
    int has_val;                    /* 0: no validation set */
    double val_loss, val_acc;
    int has_test;                   /* 0: no test set */
    double test_loss, test_acc;
    double lr;                      /* learning rate at the end of the epoch */
    double seconds;                 /* time the epoch took */
} nb_report_epoch;
/* Appends an epoch; one numbered at or below an earlier one (a resumed run
 * that redoes it) replaces that epoch and everything after it. */
nb_status  nb_report_add_epoch(nb_report *r, const nb_report_epoch *e);

/* Gradient flow: name the layers once (at most 64; this clears earlier
 * norms), then add one norm per layer whenever sampled, at `epoch` as a
 * fractional position in the run (e.g. 2.5: half-way through the third).
 * A position at or before the last one added (a stretch done again)
 * replaces the points from there on. */
nb_status  nb_report_set_layers(nb_report *r, int n, const char *const *names);
nb_status  nb_report_add_grad_norms(nb_report *r, double epoch, const double *norms);

/* counts: classes x classes (1 to 1000 classes), [true][predicted], as in
 * nb_eval_result.confusion.
 * caption: a line under the chart (may be NULL), e.g. which data set. */
nb_status  nb_report_set_confusion(nb_report *r, int classes, const size_t *counts, const char *caption);
/* n images (at most 1024; keep it to a few dozen) of [channels, height,
 * width] floats (channels 1 or 3, sides up to 512), mapped from [lo, hi] to
 * black..white (lo >= hi: the images' own range), with predicted and true
 * classes. Shown misclassified first, each group in the given order. */
nb_status  nb_report_set_images(nb_report *r, int n, int channels, int height, int width,
                                const float *pixels, float lo, float hi, const int *predicted,
                                const int *truth, const char *caption);
/* A decision boundary over the plane: grid holds gh rows of gw predicted
 * classes (at most 1024 a side; row 0 at y0, the bottom; column 0 at x0),
 * covering range = {x0, x1, y0, y1}; points (x, y pairs, at most 100000)
 * with their true labels are drawn on top. */
nb_status  nb_report_set_boundary(nb_report *r, int gw, int gh, const double range[4], const int *grid,
                                  size_t npoints, const float *points, const int *labels,
                                  const char *caption);

/* The page, to a stream the caller owns. */
nb_status  nb_report_write_html(const nb_report *r, FILE *out);
/* The page, atomically: written to "path.tmp", synced, renamed over path
 * (a reader never sees half a page; on failure path is untouched). */
nb_status  nb_report_write(const nb_report *r, const char *path);

/* ------------------------------------------------------------------ */
/* Explanations: one training step of a tiny network, written out in
 * words and numbers a learner can check by hand (`nabla explain`).
 *
 * nb_explain_step zeroes the gradients, runs the plan forward, backward,
 * one nb_optim_step and forward again, and writes to `out`:
 *   the data and the weights the step starts from;
 *   1. the forward pass node by node: the op, the numbers in, the number out
 *      ("z1[0,1] = 0.0000*0.3000 + 1.0000*0.8000 + (-0.2000) = 0.6000");
 *   2. the loss, guess against target for every value;
 *   3. the backward pass in reverse order: every gradient of every input of
 *      every op as local derivative * upstream gradient, element by element
 *      (linear and matmul as their sums of products);
 *   4. the update of every weight: old value, gradient, learning rate, new;
 *   5. the loss after the update, and whether (and why not) it is lower.
 * Every value shown is the library's own, read from the plan and the graph;
 * the op's formula only presents the local derivative. A value used in
 * several places gets its gradient in parts, shown as computed from the
 * formula, and then its total, the library's.
 *
 * Requirements: p was created for g with NB_PLAN_TRAIN | NB_PLAN_KEEP (a
 * plan that reuses memory is refused: values would be gone before they are
 * shown), its target is `loss` (a single number) and its inputs hold the
 * batch; opt updates g's parameters (plain SGD shows new = old - lr * grad;
 * other optimizers show old, gradient and new). Ops shown: linear, 2-D
 * matmul, add/sub/mul/div (broadcasting), the unary ops and activations but
 * softmax/log_softmax, sum, mean, reshape/flatten and every loss; at most
 * max_values values per node. Anything else fails (NB_ERR_ARG, NB_ERR_STATE)
 * before anything is written. Nothing is written anywhere but `out`; a failed write
 * (checked after a final fflush) gives NB_ERR_IO.
 * After the call the plan holds the forward pass at the updated weights and
 * the gradients of the step.                                           */
typedef struct nb_explain_opts {
    int step;            /* the step's number in the heading (0: 1) */
    int brief;           /* 1: one line "step N   loss A -> B   lower" instead of the walk
                            (then any plan and op will do: only the loss is checked) */
    int decimals;        /* digits after the point, 1..8 (0: 4) */
    size_t max_values;   /* the most values a node may hold (0: 256) */
} nb_explain_opts;

typedef struct nb_explain_result {
    double loss_before, loss_after;   /* the loss before and after the update */
} nb_explain_result;

nb_status nb_explain_step(nb_graph *g, nb_plan *p, nb_node *loss, nb_optim *opt, FILE *out,
                          const nb_explain_opts *opts /* NULL: defaults */,
                          nb_explain_result *result /* may be NULL */);
/* The checks nb_explain_step makes before it runs or writes anything:
 * NB_OK when it can show this graph and plan (with these opts; NULL:
 * defaults), the same error otherwise. Runs nothing. */
nb_status nb_explain_check(nb_graph *g, nb_plan *p, nb_node *loss, const nb_explain_opts *opts);
#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
