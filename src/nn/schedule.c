/*
 * schedule.c - gradient clipping by global norm and learning-rate schedules.
 * Both compute in double and hand back float32.
 */
#include "../core/internal.h"

#include <math.h>
#include <string.h>

#define NB_PI 3.14159265358979323846

float nb_clip_grad_norm(nb_graph *g, float max_norm)
{
    if (!g) {
        nb_set_error(NB_ERR_ARG, "clip_grad_norm: NULL graph");
        return -1.0f;
    }
    if (!(max_norm >= 0)) {   /* +infinity is allowed: measure, never clip */
        nb_set_error(NB_ERR_ARG, "clip_grad_norm: max_norm %g must be >= 0", max_norm);
        return -1.0f;
    }
    size_t n = nb_graph_param_numel(g);
    float *grad = nb_graph_param_grad(g);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)grad[i] * grad[i];
    double total = sqrt(sum);
    if (!isfinite(total)) return (float)total;   /* nothing sensible to scale by */
    double coef = max_norm / (total + 1e-6);
    if (coef < 1) {
        const float c = (float)coef;
        for (size_t i = 0; i < n; i++) grad[i] *= c;
    }
    return (float)total;
}

static const char *const sched_names[] = {"constant", "step", "cosine", "warmup-cosine"};

int nb_schedule_kind(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < (int)(sizeof sched_names / sizeof sched_names[0]); i++)
        if (strcmp(name, sched_names[i]) == 0) return i;
    return -1;
}

/* min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2, with t clamped to [0, T] */
static double cosine(double lr, double min_lr, long t, long T)
{
    if (t >= T) return min_lr;
    return min_lr + (lr - min_lr) * (1 + cos(NB_PI * (double)t / (double)T)) / 2;
}

float nb_schedule_lr(const nb_schedule *s, long step)
{
    if (!s) {
        nb_set_error(NB_ERR_ARG, "schedule: NULL schedule");
        return NAN;
    }
    if (step < 0) step = 0;
    const double lr = s->lr, min_lr = s->min_lr;
    switch (s->kind) {
    case NB_SCHED_CONSTANT:
        return s->lr;
    case NB_SCHED_STEP:
        if (s->step_size < 1) {
            nb_set_error(NB_ERR_ARG, "schedule step: step_size %ld must be >= 1", s->step_size);
            return NAN;
        }
        return (float)(lr * pow((double)s->gamma, (double)(step / s->step_size)));
    case NB_SCHED_COSINE:
        if (s->total_steps < 1) {
            nb_set_error(NB_ERR_ARG, "schedule cosine: total_steps %ld must be >= 1", s->total_steps);
            return NAN;
        }
        return (float)cosine(lr, min_lr, step, s->total_steps);
    case NB_SCHED_WARMUP_COSINE:
        if (s->total_steps < 1 || s->warmup_steps < 0 || s->warmup_steps > s->total_steps) {
            nb_set_error(NB_ERR_ARG, "schedule warmup-cosine: needs total_steps >= 1 and "
                                     "0 <= warmup_steps <= total_steps (warmup_steps %ld, "
                                     "total_steps %ld)", s->warmup_steps, s->total_steps);
            return NAN;
        }
        if (step < s->warmup_steps) return (float)(lr * (double)(step + 1) / (double)s->warmup_steps);
        return (float)cosine(lr, min_lr, step - s->warmup_steps, s->total_steps - s->warmup_steps);
    }
    nb_set_error(NB_ERR_ARG, "schedule: unknown kind %d", (int)s->kind);
    return NAN;
}
