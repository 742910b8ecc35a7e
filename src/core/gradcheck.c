/*
 * gradcheck.c - is backpropagation right? Compare every parameter's gradient
 * from nb_plan_backward with central finite differences of the forward pass.
 *
 * The output is reduced to one number f = sum_k out[k] * r[k] with a fixed
 * random r, so every output element (and every path to it) counts, with
 * weights a bug cannot cancel by symmetry. Backward is seeded with r, which
 * gives df/dp; the numeric slope is (f(p + eps) - f(p - eps)) / (2 eps), f
 * summed in double so that only float32 rounding of the op itself remains.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double weighted_sum(const float *y, const float *r, size_t n)
{
    double s = 0.0;
    for (size_t k = 0; k < n; k++) s += (double)y[k] * (double)r[k];
    return s;
}

nb_status nb_gradcheck(nb_graph *g, nb_node *out, const nb_gradcheck_opts *opts,
                       nb_gradcheck_report *report)
{
    nb_gradcheck_opts o = {0};
    nb_gradcheck_report rep;
    memset(&rep, 0, sizeof rep);
    if (opts) o = *opts;
    if (o.eps <= 0) o.eps = 1e-2;
    if (o.rtol <= 0) o.rtol = 1e-2;
    if (o.atol <= 0) o.atol = 1e-3;
    if (o.batch <= 0) o.batch = 1;
    if (!g || !out) return nb_set_error(NB_ERR_ARG, "gradcheck: NULL graph or output");

    nb_plan *p = nb_plan_create(g, out, o.batch, NB_PLAN_TRAIN | NB_PLAN_KEEP);
    if (!p) return nb_graph_status(g) != NB_OK ? nb_graph_status(g) : NB_ERR_ARG;
    nb_status st = NB_OK;
    size_t n_out = 0, n_par = nb_graph_param_numel(g);
    const float *y = nb_plan_data(p, out, &n_out);
    float *r = nb_alloc(n_out * sizeof *r);
    float *saved_grad = nb_alloc((n_par ? n_par : 1) * sizeof *saved_grad);
    float *analytic = nb_alloc((n_par ? n_par : 1) * sizeof *analytic);
    if (!r || !saved_grad || !analytic) {
        st = NB_ERR_NOMEM;
        goto done;
    }
    if (o.fill_inputs && (st = o.fill_inputs(p, o.user)) != NB_OK) goto done;

    nb_rng rng;
    nb_rng_seed(&rng, o.seed);
    nb_fill_uniform(r, n_out, -1.0f, 1.0f, &rng);

    /* analytic gradients, leaving the caller's accumulated gradients intact */
    float *pgrad = nb_graph_param_grad(g);
    if (n_par) memcpy(saved_grad, pgrad, n_par * sizeof(float));
    nb_graph_zero_grad(g);
    /* Ops that draw random numbers (dropout) must draw the same ones in every
     * evaluation: the plan's generator is reseeded before each forward pass. */
    nb_plan_seed(p, o.seed);
    if ((st = nb_plan_forward(p)) != NB_OK) goto restore;
    if ((st = nb_plan_backward(p, r)) != NB_OK) goto restore;
    if (n_par) memcpy(analytic, pgrad, n_par * sizeof(float));

    double worst_ratio = -1.0;
    float *pdata = nb_graph_param_data(g);
    for (int i = 0; i < nb_graph_param_count(g); i++) {
        nb_node *par = nb_graph_param(g, i);
        if (!nb_plan_grad(p, par, NULL)) continue; /* output does not depend on it */
        size_t off = (size_t)(nb_node_data(par) - pdata), n = nb_node_numel(par);
        for (size_t k = 0; k < n; k++) {
            float *x = pdata + off + k, v = *x;
            *x = (float)(v + o.eps);
            nb_plan_seed(p, o.seed);
            if ((st = nb_plan_forward(p)) != NB_OK) goto restore;
            double fp = weighted_sum(y, r, n_out);
            *x = (float)(v - o.eps);
            nb_plan_seed(p, o.seed);
            if ((st = nb_plan_forward(p)) != NB_OK) goto restore;
            double fm = weighted_sum(y, r, n_out);
            /* divide by the step actually taken after rounding to float */
            double step = (double)(float)(v + o.eps) - (double)(float)(v - o.eps);
            *x = v;
            double num = (fp - fm) / step, ana = analytic[off + k];
            double err = fabs(ana - num), big = fmax(fabs(ana), fabs(num));
            double tol = o.atol + o.rtol * big;
            double rel = err / fmax(big, o.atol);
            rep.checked++;
            if (err > rep.max_abs_err) rep.max_abs_err = err;
            if (rel > rep.max_rel_err) rep.max_rel_err = rel;
            int bad = !(err <= tol); /* NaN fails too */
            if (bad) rep.failed++;
            double ratio = isnan(err) ? INFINITY : err / tol;
            if (ratio > worst_ratio) {
                worst_ratio = ratio;
                snprintf(rep.worst, sizeof rep.worst,
                         "param '%s' element %zu: analytic %.6g, numeric %.6g",
                         nb_node_name(par), k, ana, num);
            }
        }
    }
    if (rep.failed)
        st = nb_set_error(NB_ERR_GRADIENT, "gradcheck of %s: %zu of %zu elements disagree; worst: %s",
                          nb_node_op(out), rep.failed, rep.checked, rep.worst);
restore:
    if (n_par) memcpy(pgrad, saved_grad, n_par * sizeof(float));
done:
    if (report) *report = rep;
    nb_free(r);
    nb_free(saved_grad);
    nb_free(analytic);
    nb_plan_free(p);
    return st;
}
