/*
 * optim_trace.c - runs every optimizer configuration on fixed parameters and
 * gradients and prints everything a reference implementation needs to replay
 * the run, for tests/torch/test_optim_torch.py (which replays it in
 * torch.optim and compares).
 *
 * Two parameters, "w" [5, 6] and "b" [7] (37 floats), start from a fixed
 * formula; for 50 steps the gradients are set from a fixed formula of (step,
 * index) with magnitudes from about 1e-3 to 1, then nb_optim_step runs. Per
 * configuration, the output is (every float as %.9g, which float32 reads back
 * exactly):
 *
 *   config LABEL OPTIMIZER key=value ...
 *   init v0 ... v36
 *   step K lr=LR g0 ... g36          (K = 0..49; LR: the lr used for this step)
 *   final LABEL p0 ... p36           (parameters after the last step)
 *   state NAME s0 ... s36            (each state buffer after the last step)
 *   steps N
 *   end
 *
 * The "adamw-schedule" configuration changes lr every step from a
 * warmup-cosine schedule (nb_schedule_lr + nb_optim_set_lr).
 */
#include "nabla.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NPARAM 37
#define STEPS 50

typedef struct config {
    const char *label, *optim;
    nb_sgd_opts sgd;
    nb_adam_opts adam;
    nb_rmsprop_opts rms;
    int scheduled;
} config;

static const config configs[] = {
    {"sgd", "sgd", .sgd = {.lr = 0.1f}},
    {"sgd-momentum", "sgd", .sgd = {.lr = 0.05f, .momentum = 0.9f}},
    {"sgd-nesterov", "sgd", .sgd = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-3f, .nesterov = 1}},
    {"sgd-dampening-wd", "sgd", .sgd = {.lr = 0.05f, .momentum = 0.8f, .dampening = 0.3f, .weight_decay = 0.01f}},
    {"adam", "adam", .adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f}},
    {"adam-amsgrad", "adam", .adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .amsgrad = 1}},
    {"adam-wd", "adam", .adam = {.lr = 1e-2f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.05f}},
    {"adamw", "adamw", .adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f}},
    {"adamw-amsgrad-schedule", "adamw", .adam = {.lr = 3e-2f, .beta1 = 0.85f, .beta2 = 0.995f, .eps = 1e-7f,
                                                 .weight_decay = 0.02f, .amsgrad = 1}, .scheduled = 1},
    {"rmsprop", "rmsprop", .rms = {.lr = 1e-2f, .alpha = 0.99f, .eps = 1e-8f}},
    {"rmsprop-momentum", "rmsprop", .rms = {.lr = 1e-3f, .alpha = 0.9f, .eps = 1e-8f, .momentum = 0.5f}},
    {"rmsprop-centered-momentum-wd", "rmsprop", .rms = {.lr = 1e-3f, .alpha = 0.9f, .eps = 1e-6f,
                                                        .weight_decay = 0.01f, .momentum = 0.9f, .centered = 1}},
};

static float init_value(int i)
{
    return sinf(1.3f * (float)i + 0.5f) * (0.2f + 0.2f * (float)(i % 5));
}

static float grad_value(int step, int i)
{
    static const float scale[4] = {1.0f, 0.1f, 0.01f, 0.001f};
    float s = (float)(step + 1), x = (float)i;
    return scale[i % 4] * (sinf(0.37f * (x + 1) * s) + 0.5f * cosf(1.1f * x - 0.3f * s));
}

static void print_floats(const float *v, int n)
{
    for (int i = 0; i < n; i++) printf(" %.9g", v[i]);
    printf("\n");
}

static int run(const config *c)
{
    nb_graph *g = nb_graph_create();
    if (!g) return 1;
    nb_node *w = nb_param(g, "w", 2, (int64_t[]){5, 6});
    nb_node *b = nb_param(g, "b", 1, (int64_t[]){7});
    if (!w || !b || nb_graph_param_numel(g) != NPARAM) {
        fprintf(stderr, "optim_trace: %s\n", nb_last_error());
        nb_graph_free(g);
        return 1;
    }
    float *p = nb_graph_param_data(g), *gr = nb_graph_param_grad(g);
    for (int i = 0; i < NPARAM; i++) p[i] = init_value(i);

    nb_optim *o = NULL;
    if (strcmp(c->optim, "sgd") == 0) {
        const nb_sgd_opts *s = &c->sgd;
        o = nb_sgd_create(g, s);
        printf("config %s sgd lr=%.9g momentum=%.9g dampening=%.9g weight_decay=%.9g nesterov=%d\n",
               c->label, s->lr, s->momentum, s->dampening, s->weight_decay, s->nesterov);
    } else if (strncmp(c->optim, "adam", 4) == 0) {
        const nb_adam_opts *a = &c->adam;
        o = strcmp(c->optim, "adamw") == 0 ? nb_adamw_create(g, a) : nb_adam_create(g, a);
        printf("config %s %s lr=%.9g beta1=%.9g beta2=%.9g eps=%.9g weight_decay=%.9g amsgrad=%d\n",
               c->label, c->optim, a->lr, a->beta1, a->beta2, a->eps, a->weight_decay, a->amsgrad);
    } else {
        const nb_rmsprop_opts *r = &c->rms;
        o = nb_rmsprop_create(g, r);
        printf("config %s rmsprop lr=%.9g alpha=%.9g eps=%.9g weight_decay=%.9g momentum=%.9g "
               "centered=%d\n",
               c->label, r->lr, r->alpha, r->eps, r->weight_decay, r->momentum, r->centered);
    }
    if (!o) {
        fprintf(stderr, "optim_trace: %s: %s\n", c->label, nb_last_error());
        nb_graph_free(g);
        return 1;
    }
    printf("init");
    print_floats(p, NPARAM);

    nb_schedule sched = {NB_SCHED_WARMUP_COSINE, nb_optim_lr(o), 1e-3f, 0, 0, 4, STEPS};
    int fail = 0;
    for (int step = 0; step < STEPS && !fail; step++) {
        if (c->scheduled) nb_optim_set_lr(o, nb_schedule_lr(&sched, step));
        for (int i = 0; i < NPARAM; i++) gr[i] = grad_value(step, i);
        printf("step %d lr=%.9g", step, nb_optim_lr(o));
        print_floats(gr, NPARAM);
        if (nb_optim_step(o) != NB_OK) {
            fprintf(stderr, "optim_trace: %s step %d: %s\n", c->label, step, nb_last_error());
            fail = 1;
        }
    }
    printf("final %s", c->label);
    print_floats(p, NPARAM);
    for (int k = 0; k < nb_optim_state_count(o); k++) {
        printf("state %s", nb_optim_state_name(o, k));
        print_floats(nb_optim_state(o, k), NPARAM);
    }
    printf("steps %ld\nend\n", nb_optim_steps(o));
    nb_optim_free(o);
    nb_graph_free(g);
    return fail;
}

int main(void)
{
    int fail = 0;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) fail |= run(&configs[i]);
    return fail;
}
