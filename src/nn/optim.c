/*
 * optim.c - optimizers. State lives here, outside the graph; an update is one
 * loop over the graph's contiguous parameter and gradient blocks.
 *
 * Update rules are PyTorch's (torch.optim), step for step, so that a run can
 * be checked against it.
 */
#include "../core/internal.h"

#include <string.h>

typedef enum { NB_OPTIM_SGD } nb_optim_kind;

struct nb_optim {
    nb_optim_kind kind;
    nb_graph *g;
    size_t numel;        /* parameter count when created */
    long step;           /* updates done */
    nb_sgd_opts sgd;
    float *buf;          /* momentum buffer, numel floats (NULL without momentum) */
};

nb_optim *nb_sgd_create(nb_graph *g, const nb_sgd_opts *opts)
{
    if (!g || !opts) {
        nb_set_error(NB_ERR_ARG, "sgd: NULL graph or options");
        return NULL;
    }
    if (!(opts->lr >= 0) || !(opts->momentum >= 0) || !(opts->weight_decay >= 0)) {
        nb_set_error(NB_ERR_ARG, "sgd: lr %g, momentum %g and weight_decay %g must be >= 0",
                     opts->lr, opts->momentum, opts->weight_decay);
        return NULL;
    }
    if (opts->nesterov && (opts->momentum <= 0 || opts->dampening != 0)) {
        nb_set_error(NB_ERR_ARG, "sgd: Nesterov momentum needs momentum > 0 and dampening 0");
        return NULL;
    }
    nb_optim *o = nb_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = NB_OPTIM_SGD;
    o->g = g;
    o->numel = nb_graph_param_numel(g);
    o->sgd = *opts;
    if (opts->momentum > 0 && !(o->buf = nb_calloc(o->numel ? o->numel : 1, sizeof(float)))) {
        nb_free(o);
        return NULL;
    }
    return o;
}

void nb_optim_free(nb_optim *o)
{
    if (!o) return;
    nb_free(o->buf);
    nb_free(o);
}

/* torch.optim.SGD:
 *   d = grad + wd * p
 *   buf = d (first step) or momentum * buf + (1 - dampening) * d
 *   d = d + momentum * buf (Nesterov) or buf
 *   p -= lr * d                                                      */
static void sgd_step(nb_optim *o, float *p, const float *grad, size_t n)
{
    const float lr = o->sgd.lr, wd = o->sgd.weight_decay, mom = o->sgd.momentum;
    const float damp = o->sgd.dampening;
    for (size_t i = 0; i < n; i++) {
        float d = grad[i];
        if (wd != 0) d += wd * p[i];
        if (mom != 0) {
            float b = o->step == 0 ? d : mom * o->buf[i] + (1 - damp) * d;
            o->buf[i] = b;
            d = o->sgd.nesterov ? d + mom * b : b;
        }
        p[i] -= lr * d;
    }
}

nb_status nb_optim_step(nb_optim *o)
{
    if (!o) return nb_set_error(NB_ERR_ARG, "optim_step: NULL optimizer");
    if (nb_graph_param_numel(o->g) != o->numel)
        return nb_set_error(NB_ERR_STATE, "optim_step: the graph gained parameters after the "
                                          "optimizer was created");
    sgd_step(o, nb_graph_param_data(o->g), nb_graph_param_grad(o->g), o->numel);
    o->step++;
    return NB_OK;
}

void nb_optim_set_lr(nb_optim *o, float lr)
{
    if (o) o->sgd.lr = lr;
}

float nb_optim_lr(const nb_optim *o) { return o ? o->sgd.lr : 0.0f; }
