/*
 * optim.c - optimizers. State lives here, outside the graph; an update is one
 * loop over the graph's contiguous parameter and gradient blocks.
 *
 * Update rules are PyTorch's (torch.optim 1.13, the single-tensor code paths,
 * foreach=False), step for step, so that a run can be checked against it
 * (tests/torch/test_optim_torch.py does). PyTorch computes its scalars (bias
 * corrections, 1 - beta, lr * weight_decay) in Python doubles and casts them
 * to float32 where they meet a tensor; the tensor arithmetic is float32, in
 * the order of its kernels:
 *   t.mul_(s)                t * (float)s
 *   t.add_(u, alpha=s)       t + (float)s * u
 *   t.addcmul_(u, v, value)  t + ((float)value * u) * v
 *   t.addcdiv_(u, v, value)  t + ((float)value * u) / v
 * The loops below do the same, one float32 operation at a time (C11 in ISO
 * mode does not contract a * b + c into a fused multiply-add). The result
 * is bit for bit that of torch 1.13's scalar kernels (ATEN_CPU_CAPABILITY=
 * default). Its vectorised kernels fuse the `add_(alpha=...)` form, so the
 * default torch differs in the last bit of such sums: a few 1e-6 relative
 * after 20 steps.
 *
 * Every buffer is allocated at create; a step allocates nothing.
 */
#include "../core/internal.h"

#include <math.h>
#include <string.h>

typedef enum { NB_OPTIM_SGD, NB_OPTIM_ADAM, NB_OPTIM_ADAMW, NB_OPTIM_RMSPROP } nb_optim_kind;

#define NB_OPTIM_MAX_STATE 3

struct nb_optim {
    nb_optim_kind kind;
    const char *name;
    nb_graph *g;
    size_t numel;        /* parameter count when created */
    long step;           /* updates done */
    float lr;            /* current learning rate (the opts' lr is the initial one) */
    nb_sgd_opts sgd;
    nb_adam_opts adam;
    nb_rmsprop_opts rms;
    int nstate;
    const char *state_name[NB_OPTIM_MAX_STATE];
    float *state[NB_OPTIM_MAX_STATE];   /* numel floats each, in one block */
    float *block;
};

/* x must be finite and >= 0 */
static int nonneg(float x) { return isfinite(x) && x >= 0; }

/* Allocates the optimizer and one zeroed block for its named state buffers. */
static nb_optim *optim_new(nb_graph *g, nb_optim_kind kind, const char *name, float lr,
                           int nstate, const char *const *names)
{
    nb_optim *o = nb_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = kind;
    o->name = name;
    o->g = g;
    o->numel = nb_graph_param_numel(g);
    o->lr = lr;
    o->nstate = nstate;
    if (nstate > 0) {
        size_t count;
        if (!nb_mul_ok(o->numel, (size_t)nstate, &count)) {
            nb_set_error(NB_ERR_NOMEM, "%s: %zu parameters are too many", name, o->numel);
            nb_free(o);
            return NULL;
        }
        if (!(o->block = nb_calloc(count ? count : 1, sizeof(float)))) {
            nb_free(o);
            return NULL;
        }
        for (int i = 0; i < nstate; i++) {
            o->state_name[i] = names[i];
            o->state[i] = o->block + (size_t)i * o->numel;
        }
    }
    return o;
}

nb_optim *nb_sgd_create(nb_graph *g, const nb_sgd_opts *opts)
{
    if (!g || !opts) {
        nb_set_error(NB_ERR_ARG, "sgd: NULL graph or options");
        return NULL;
    }
    if (!nonneg(opts->lr) || !nonneg(opts->momentum) || !nonneg(opts->weight_decay)) {
        nb_set_error(NB_ERR_ARG, "sgd: lr %g, momentum %g and weight_decay %g must be finite and >= 0",
                     opts->lr, opts->momentum, opts->weight_decay);
        return NULL;
    }
    if (!isfinite(opts->dampening)) {
        nb_set_error(NB_ERR_ARG, "sgd: dampening %g must be finite", opts->dampening);
        return NULL;
    }
    if (opts->nesterov && (opts->momentum <= 0 || opts->dampening != 0)) {
        nb_set_error(NB_ERR_ARG, "sgd: Nesterov momentum needs momentum > 0 and dampening 0 "
                                 "(momentum %g, dampening %g)", opts->momentum, opts->dampening);
        return NULL;
    }
    static const char *const names[] = {"momentum_buffer"};
    nb_optim *o = optim_new(g, NB_OPTIM_SGD, "sgd", opts->lr, opts->momentum > 0 ? 1 : 0, names);
    if (o) o->sgd = *opts;
    return o;
}

static nb_optim *adam_create(nb_graph *g, const nb_adam_opts *opts, nb_optim_kind kind,
                             const char *name)
{
    if (!g || !opts) {
        nb_set_error(NB_ERR_ARG, "%s: NULL graph or options", name);
        return NULL;
    }
    if (!nonneg(opts->lr)) {
        nb_set_error(NB_ERR_ARG, "%s: lr %g must be finite and >= 0", name, opts->lr);
        return NULL;
    }
    if (!(isfinite(opts->beta1) && opts->beta1 >= 0 && opts->beta1 < 1)) {
        nb_set_error(NB_ERR_ARG, "%s: beta1 %g must be in [0, 1)", name, opts->beta1);
        return NULL;
    }
    if (!(isfinite(opts->beta2) && opts->beta2 >= 0 && opts->beta2 < 1)) {
        nb_set_error(NB_ERR_ARG, "%s: beta2 %g must be in [0, 1)", name, opts->beta2);
        return NULL;
    }
    if (!nonneg(opts->eps)) {
        nb_set_error(NB_ERR_ARG, "%s: eps %g must be finite and >= 0", name, opts->eps);
        return NULL;
    }
    if (!nonneg(opts->weight_decay)) {
        nb_set_error(NB_ERR_ARG, "%s: weight_decay %g must be finite and >= 0", name,
                     opts->weight_decay);
        return NULL;
    }
    static const char *const names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    nb_optim *o = optim_new(g, kind, name, opts->lr, opts->amsgrad ? 3 : 2, names);
    if (o) o->adam = *opts;
    return o;
}

nb_optim *nb_adam_create(nb_graph *g, const nb_adam_opts *opts)
{
    return adam_create(g, opts, NB_OPTIM_ADAM, "adam");
}

nb_optim *nb_adamw_create(nb_graph *g, const nb_adam_opts *opts)
{
    return adam_create(g, opts, NB_OPTIM_ADAMW, "adamw");
}

nb_optim *nb_rmsprop_create(nb_graph *g, const nb_rmsprop_opts *opts)
{
    if (!g || !opts) {
        nb_set_error(NB_ERR_ARG, "rmsprop: NULL graph or options");
        return NULL;
    }
    if (!nonneg(opts->lr)) {
        nb_set_error(NB_ERR_ARG, "rmsprop: lr %g must be finite and >= 0", opts->lr);
        return NULL;
    }
    if (!(isfinite(opts->alpha) && opts->alpha >= 0 && opts->alpha <= 1)) {
        nb_set_error(NB_ERR_ARG, "rmsprop: alpha %g must be in [0, 1]", opts->alpha);
        return NULL;
    }
    if (!nonneg(opts->eps)) {
        nb_set_error(NB_ERR_ARG, "rmsprop: eps %g must be finite and >= 0", opts->eps);
        return NULL;
    }
    if (!nonneg(opts->weight_decay)) {
        nb_set_error(NB_ERR_ARG, "rmsprop: weight_decay %g must be finite and >= 0",
                     opts->weight_decay);
        return NULL;
    }
    if (!nonneg(opts->momentum)) {
        nb_set_error(NB_ERR_ARG, "rmsprop: momentum %g must be finite and >= 0", opts->momentum);
        return NULL;
    }
    const char *names[3];
    int n = 0;
    names[n++] = "square_avg";
    if (opts->momentum > 0) names[n++] = "momentum_buffer";
    if (opts->centered) names[n++] = "grad_avg";
    nb_optim *o = optim_new(g, NB_OPTIM_RMSPROP, "rmsprop", opts->lr, n, names);
    if (o) o->rms = *opts;
    return o;
}

void nb_optim_free(nb_optim *o)
{
    if (!o) return;
    nb_free(o->block);
    nb_free(o);
}

/* torch.optim.SGD:
 *   d = grad + wd * p                                   (wd != 0)
 *   buf = clone(d) on the first step (steps == 0),
 *         else buf * momentum + (1 - dampening) * d    (momentum != 0)
 *   d = d + momentum * buf (Nesterov) or buf
 *   p = p + (-lr) * d                                                  */
/* The loops below are written with selects, not branches, and the optional
 * state as a constant argument of an inlined function, so that they
 * vectorise; the arithmetic is the same, in the same order. */
static inline void sgd_range(nb_optim *o, float *p, const float *grad, float *buf, size_t lo, size_t hi,
                             const int has_buf)
{
    const double lr = o->lr, wd = o->sgd.weight_decay, mom = o->sgd.momentum;
    const float f_wd = (float)wd, f_mom = (float)mom;
    const float f_keep = (float)(1.0 - (double)o->sgd.dampening), f_neg_lr = (float)-lr;
    const int first = o->step == 0, nesterov = o->sgd.nesterov, decay = wd != 0;
    for (size_t i = lo; i < hi; i++) {
        float d = grad[i];
        d = decay ? d + f_wd * p[i] : d;
        if (has_buf) {
            float b = first ? d : buf[i] * f_mom + f_keep * d;
            buf[i] = b;
            d = nesterov ? d + f_mom * b : b;
        }
        p[i] = p[i] + f_neg_lr * d;
    }
}

static void sgd_step(nb_optim *o, float *p, const float *grad, size_t lo, size_t hi)
{
    if (o->nstate) sgd_range(o, p, grad, o->state[0], lo, hi, 1);
    else sgd_range(o, p, grad, NULL, lo, hi, 0);
}

/* torch.optim.Adam (decoupled = 0) and AdamW (decoupled = 1), step t >= 1:
 *   AdamW: p = p * (1 - lr * wd)          Adam: g = grad + wd * p (wd != 0)
 *   m = m * beta1 + (1 - beta1) * g
 *   v = v * beta2 + ((1 - beta2) * g) * g
 *   vmax = max(vmax, v), used for v below  (amsgrad)
 *   bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, step_size = lr / bc1  (doubles)
 *   denom = sqrt(v) / sqrt(bc2) + eps
 *   p = p + (-step_size * m) / denom                                   */
static inline void adam_range(nb_optim *o, float *p, const float *grad, size_t lo, size_t hi, int decoupled,
                              const int amsgrad)
{
    const nb_adam_opts *a = &o->adam;
    const double lr = o->lr, b1 = a->beta1, b2 = a->beta2, wd = a->weight_decay;
    const double t = (double)o->step + 1;
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    const double step_size = lr / bc1;
    const float f_bc2_sqrt = (float)sqrt(bc2), f_neg_step = (float)-step_size;
    const float f_b1 = (float)b1, f_b2 = (float)b2;
    const float f_1mb1 = (float)(1.0 - b1), f_1mb2 = (float)(1.0 - b2);
    const float f_wd = (float)wd, f_decay = (float)(1.0 - lr * wd), eps = a->eps;
    const int l2 = !decoupled && wd != 0, shrink = decoupled && wd != 0;
    float *m = o->state[0], *v = o->state[1], *vmax = amsgrad ? o->state[2] : NULL;
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i], gi = grad[i];
        pi = shrink ? pi * f_decay : pi;
        gi = l2 ? gi + f_wd * pi : gi;
        float mi = m[i] * f_b1;
        mi = mi + f_1mb1 * gi;
        m[i] = mi;
        float vi = v[i] * f_b2;
        vi = vi + (f_1mb2 * gi) * gi;
        v[i] = vi;
        if (amsgrad) {
            float mx = vmax[i];
            mx = (vi != vi || vi > mx) ? vi : mx;   /* torch.maximum propagates NaN */
            vmax[i] = mx;
            vi = mx;
        }
        float denom = sqrtf(vi) / f_bc2_sqrt;
        denom = denom + eps;
        p[i] = pi + (f_neg_step * mi) / denom;
    }
}

static void adam_step(nb_optim *o, float *p, const float *grad, size_t lo, size_t hi, int decoupled)
{
    if (o->adam.amsgrad) adam_range(o, p, grad, lo, hi, decoupled, 1);
    else adam_range(o, p, grad, lo, hi, decoupled, 0);
}

/* torch.optim.RMSprop:
 *   g = grad + wd * p                                   (wd != 0)
 *   sq = sq * alpha + ((1 - alpha) * g) * g
 *   centered: ga = ga * alpha + (1 - alpha) * g, avg = sqrt(sq - ga * ga)
 *   else      avg = sqrt(sq)
 *   avg = avg + eps
 *   momentum > 0: buf = buf * momentum + g / avg, p = p + (-lr) * buf
 *   else          p = p + (-lr * g) / avg                             */
static void rmsprop_step(nb_optim *o, float *p, const float *grad, size_t lo, size_t hi)
{
    const nb_rmsprop_opts *r = &o->rms;
    const double lr = o->lr, alpha = r->alpha, wd = r->weight_decay;
    const float f_alpha = (float)alpha, f_1ma = (float)(1.0 - alpha), f_wd = (float)wd;
    const float f_mom = r->momentum, f_neg_lr = (float)-lr, eps = r->eps;
    float *sq = o->state[0];
    int k = 1;
    float *buf = r->momentum > 0 ? o->state[k++] : NULL;
    float *ga = r->centered ? o->state[k++] : NULL;
    for (size_t i = lo; i < hi; i++) {
        float gi = grad[i];
        if (wd != 0) gi = gi + f_wd * p[i];
        float s = sq[i] * f_alpha;
        s = s + (f_1ma * gi) * gi;
        sq[i] = s;
        float avg;
        if (ga) {
            float a = ga[i] * f_alpha;
            a = a + f_1ma * gi;
            ga[i] = a;
            avg = sqrtf(s + (-1.0f * a) * a);
        } else {
            avg = sqrtf(s);
        }
        avg = avg + eps;
        if (buf) {
            float b = buf[i] * f_mom;
            b = b + (1.0f * gi) / avg;
            buf[i] = b;
            p[i] = p[i] + f_neg_lr * b;
        } else {
            p[i] = p[i] + (f_neg_lr * gi) / avg;
        }
    }
}

/* Parameters [lo, hi): every element's update is independent of the others,
 * so ranges run on the graph's threads with the same result. */
static void step_range(void *ctx, size_t lo, size_t hi)
{
    nb_optim *o = ctx;
    float *p = nb_graph_param_data(o->g);
    const float *grad = nb_graph_param_grad(o->g);
    switch (o->kind) {
    case NB_OPTIM_SGD: sgd_step(o, p, grad, lo, hi); break;
    case NB_OPTIM_ADAM: adam_step(o, p, grad, lo, hi, 0); break;
    case NB_OPTIM_ADAMW: adam_step(o, p, grad, lo, hi, 1); break;
    case NB_OPTIM_RMSPROP: rmsprop_step(o, p, grad, lo, hi); break;
    }
}

nb_status nb_optim_step(nb_optim *o)
{
    if (!o) return nb_set_error(NB_ERR_ARG, "optim_step: NULL optimizer");
    if (nb_graph_param_numel(o->g) != o->numel)
        return nb_set_error(NB_ERR_STATE, "%s: the graph gained parameters after the "
                                          "optimizer was created", o->name);
    nb_pool_for(o->g->pool, o->numel, 1 << 14, step_range, o);
    o->step++;
    return NB_OK;
}

void nb_optim_set_lr(nb_optim *o, float lr)
{
    if (o) o->lr = lr;
}

float nb_optim_lr(const nb_optim *o) { return o ? o->lr : 0.0f; }

const char *nb_optim_name(const nb_optim *o) { return o ? o->name : ""; }

long nb_optim_steps(const nb_optim *o) { return o ? o->step : 0; }

void nb_optim_set_steps(nb_optim *o, long steps)
{
    if (o && steps >= 0) o->step = steps;
}

int nb_optim_state_count(const nb_optim *o) { return o ? o->nstate : 0; }

const char *nb_optim_state_name(const nb_optim *o, int i)
{
    if (!o || i < 0 || i >= o->nstate) {
        nb_set_error(NB_ERR_ARG, "optim_state_name: no state buffer %d (%s has %d)", i,
                     o ? o->name : "NULL optimizer", o ? o->nstate : 0);
        return NULL;
    }
    return o->state_name[i];
}

float *nb_optim_state(nb_optim *o, int i)
{
    if (!o || i < 0 || i >= o->nstate) {
        nb_set_error(NB_ERR_ARG, "optim_state: no state buffer %d (%s has %d)", i,
                     o ? o->name : "NULL optimizer", o ? o->nstate : 0);
        return NULL;
    }
    return o->state[i];
}
