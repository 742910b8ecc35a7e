/*
 * test_optim.c - optimizers (options, state, steps, update rules against a
 * double-precision replay), gradient clipping and learning-rate schedules.
 * The bit-level comparison with torch.optim is tests/torch/test_optim_torch.py.
 */
#include "test.h"

#include <string.h>

#define CHECK_ERR(expr, text) \
    do { CHECK((expr) == NULL); CHECK(strstr(nb_last_error(), (text)) != NULL); } while (0)

/* a graph with parameters "w" [2, 3] and "b" [4] from U(-1, 1) */
static nb_graph *two_params(void)
{
    nb_graph *g = nb_graph_create();
    nb_test_param(g, "w", 2, (int64_t[]){2, 3}, -1, 1);
    nb_test_param(g, "b", 1, (int64_t[]){4}, -1, 1);
    return g;
}

static void set_grads(nb_graph *g, int step)
{
    float *gr = nb_graph_param_grad(g);
    for (size_t i = 0; i < nb_graph_param_numel(g); i++)
        gr[i] = (float)(0.5 * sin(0.7 * (double)(i + 1) * (step + 1)) + 0.1 * cos((double)i - step));
}

NB_TEST(test_optim_option_validation)
{
    nb_graph *g = two_params();
    const nb_adam_opts adam = NB_ADAM_DEFAULTS;
    const nb_rmsprop_opts rms = NB_RMSPROP_DEFAULTS;
    nb_adam_opts a;
    nb_rmsprop_opts r;

    CHECK_ERR(nb_adam_create(NULL, &adam), "adam");
    CHECK_ERR(nb_adamw_create(g, NULL), "adamw");
    CHECK_ERR(nb_rmsprop_create(g, NULL), "rmsprop");
    CHECK_ERR(nb_sgd_create(NULL, &(nb_sgd_opts){.lr = 0.1f}), "sgd");

    a = adam; a.lr = -1e-3f;
    CHECK_ERR(nb_adam_create(g, &a), "adam: lr -0.001");
    a = adam; a.lr = NAN;
    CHECK_ERR(nb_adam_create(g, &a), "adam: lr nan");
    a = adam; a.beta1 = 1.0f;
    CHECK_ERR(nb_adamw_create(g, &a), "adamw: beta1 1 must be in [0, 1)");
    a = adam; a.beta2 = -0.5f;
    CHECK_ERR(nb_adam_create(g, &a), "adam: beta2 -0.5");
    a = adam; a.eps = -1e-8f;
    CHECK_ERR(nb_adam_create(g, &a), "adam: eps -1e-08");
    a = adam; a.weight_decay = -0.25f;
    CHECK_ERR(nb_adamw_create(g, &a), "adamw: weight_decay -0.25");
    a = adam; a.lr = INFINITY;
    CHECK_ERR(nb_adam_create(g, &a), "adam: lr inf");

    r = rms; r.lr = -1;
    CHECK_ERR(nb_rmsprop_create(g, &r), "rmsprop: lr -1");
    r = rms; r.alpha = 1.5f;
    CHECK_ERR(nb_rmsprop_create(g, &r), "rmsprop: alpha 1.5");
    r = rms; r.eps = -1;
    CHECK_ERR(nb_rmsprop_create(g, &r), "rmsprop: eps -1");
    r = rms; r.momentum = -0.5f;
    CHECK_ERR(nb_rmsprop_create(g, &r), "rmsprop: momentum -0.5");
    r = rms; r.weight_decay = -2;
    CHECK_ERR(nb_rmsprop_create(g, &r), "rmsprop: weight_decay -2");

    CHECK_ERR(nb_sgd_create(g, &(nb_sgd_opts){.lr = -0.1f}), "sgd: lr -0.1");
    CHECK_ERR(nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f, .momentum = -1}), "sgd");
    CHECK_ERR(nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f, .dampening = NAN}), "sgd: dampening nan");
    CHECK_ERR(nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f, .nesterov = 1}), "Nesterov");

    /* zero is a value, not "the default": all-zero options are valid */
    nb_optim *o;
    CHECK_PTR(o = nb_adam_create(g, &(nb_adam_opts){0}));
    nb_optim_free(o);
    CHECK_PTR(o = nb_rmsprop_create(g, &(nb_rmsprop_opts){0}));
    nb_optim_free(o);
    CHECK_PTR(o = nb_sgd_create(g, &(nb_sgd_opts){0}));
    nb_optim_free(o);
    /* edges that torch accepts */
    a = adam; a.beta1 = 0; a.beta2 = 0; a.eps = 0; a.lr = 0;
    CHECK_PTR(o = nb_adam_create(g, &a));
    nb_optim_free(o);
    for (int k = 0; k < 2; k++) {
        r = rms; r.alpha = (float)k;
        CHECK_PTR(o = nb_rmsprop_create(g, &r));
        nb_optim_free(o);
    }
    nb_optim_free(NULL);
    nb_graph_free(g);
}

NB_TEST(test_optim_defaults_are_torchs)
{
    const nb_adam_opts a = NB_ADAM_DEFAULTS, w = NB_ADAMW_DEFAULTS;
    const nb_rmsprop_opts r = NB_RMSPROP_DEFAULTS;
    CHECK(a.lr == 1e-3f && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f);
    CHECK(a.weight_decay == 0 && !a.amsgrad);
    CHECK(w.lr == 1e-3f && w.weight_decay == 1e-2f && w.beta2 == 0.999f);
    CHECK(r.lr == 1e-2f && r.alpha == 0.99f && r.eps == 1e-8f && r.momentum == 0 && !r.centered);
}

static void check_states(nb_optim *o, const char *name, int n, const char *const *names, size_t numel)
{
    CHECK_PTR(o);
    if (!o) return;
    CHECK(strcmp(nb_optim_name(o), name) == 0);
    CHECK(nb_optim_state_count(o) == n);
    for (int i = 0; i < n && i < nb_optim_state_count(o); i++) {
        const char *got = nb_optim_state_name(o, i);
        CHECK(got && strcmp(got, names[i]) == 0);
        float *s = nb_optim_state(o, i);
        CHECK_PTR(s);
        if (!s) continue;
        int zero = 1;
        for (size_t k = 0; k < numel; k++) zero &= s[k] == 0;
        CHECK(zero);
        s[numel - 1] = 1;   /* the whole block is writable */
    }
    CHECK(nb_optim_state_name(o, n) == NULL);
    CHECK(strstr(nb_last_error(), "no state buffer") != NULL);
    CHECK(nb_optim_state(o, -1) == NULL);
    CHECK(nb_optim_state(o, n) == NULL);
    nb_optim_free(o);
}

NB_TEST(test_optim_state_names)
{
    nb_graph *g = two_params();
    size_t n = nb_graph_param_numel(g);
    CHECK(n == 10);
    nb_adam_opts a = NB_ADAM_DEFAULTS;
    nb_rmsprop_opts r = NB_RMSPROP_DEFAULTS;

    check_states(nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f}), "sgd", 0, NULL, n);
    check_states(nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f, .momentum = 0.9f}), "sgd", 1,
                 (const char *const[]){"momentum_buffer"}, n);
    check_states(nb_adam_create(g, &a), "adam", 2, (const char *const[]){"exp_avg", "exp_avg_sq"}, n);
    a.amsgrad = 1;
    check_states(nb_adamw_create(g, &a), "adamw", 3,
                 (const char *const[]){"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, n);
    check_states(nb_rmsprop_create(g, &r), "rmsprop", 1, (const char *const[]){"square_avg"}, n);
    r.centered = 1;
    check_states(nb_rmsprop_create(g, &r), "rmsprop", 2, (const char *const[]){"square_avg", "grad_avg"}, n);
    r.momentum = 0.9f;
    check_states(nb_rmsprop_create(g, &r), "rmsprop", 3,
                 (const char *const[]){"square_avg", "momentum_buffer", "grad_avg"}, n);
    r.centered = 0;
    check_states(nb_rmsprop_create(g, &r), "rmsprop", 2,
                 (const char *const[]){"square_avg", "momentum_buffer"}, n);

    CHECK(nb_optim_state_count(NULL) == 0);
    CHECK(nb_optim_state(NULL, 0) == NULL);
    CHECK(strcmp(nb_optim_name(NULL), "") == 0);
    nb_graph_free(g);
}

NB_TEST(test_optim_steps_and_lr)
{
    nb_graph *g = two_params();
    nb_adam_opts a = NB_ADAM_DEFAULTS;
    nb_optim *o = nb_adam_create(g, &a);
    CHECK_PTR(o);
    CHECK(nb_optim_steps(o) == 0);
    CHECK(nb_optim_lr(o) == 1e-3f);
    for (int s = 0; s < 3; s++) {
        set_grads(g, s);
        CHECK_OK(nb_optim_step(o));
    }
    CHECK(nb_optim_steps(o) == 3);
    nb_optim_set_steps(o, 1000);
    CHECK(nb_optim_steps(o) == 1000);
    nb_optim_set_steps(o, -5);   /* ignored */
    CHECK(nb_optim_steps(o) == 1000);
    nb_optim_set_lr(o, 0.25f);
    CHECK(nb_optim_lr(o) == 0.25f);
    CHECK(nb_optim_steps(NULL) == 0);
    nb_optim_set_steps(NULL, 3);
    nb_optim_set_lr(NULL, 3);

    /* lr 0 leaves Adam's parameters where they are (but the moments move) */
    nb_optim_set_lr(o, 0);
    float before[10];
    memcpy(before, nb_graph_param_data(g), sizeof before);
    CHECK_OK(nb_optim_step(o));
    CHECK(memcmp(before, nb_graph_param_data(g), sizeof before) == 0);

    /* a parameter added after create: the optimizer refuses to step */
    nb_param(g, "late", 1, (int64_t[]){3});
    CHECK(nb_optim_step(o) == NB_ERR_STATE);
    CHECK(strstr(nb_last_error(), "adam") != NULL);
    CHECK(nb_optim_step(NULL) == NB_ERR_ARG);
    nb_optim_free(o);
    nb_graph_free(g);

    /* a graph without parameters: steps count, nothing else happens */
    g = nb_graph_create();
    o = nb_rmsprop_create(g, &(nb_rmsprop_opts)NB_RMSPROP_DEFAULTS);
    CHECK_PTR(o);
    CHECK_OK(nb_optim_step(o));
    CHECK(nb_optim_steps(o) == 1);
    nb_optim_free(o);
    nb_graph_free(g);
}

/* The update rules of torch.optim replayed in double; every optimizer must
 * follow them to float32 rounding (1e-5 relative after 25 steps). */
typedef struct ref_state {
    double p[10], m[10], v[10], vmax[10], buf[10], ga[10];
} ref_state;

static void ref_adam(ref_state *s, const float *grad, const nb_adam_opts *o, int decoupled, int t)
{
    for (int i = 0; i < 10; i++) {
        double g = grad[i];
        if (decoupled) s->p[i] *= 1 - (double)o->lr * o->weight_decay;
        else g += o->weight_decay * s->p[i];
        s->m[i] = o->beta1 * s->m[i] + (1 - (double)o->beta1) * g;
        s->v[i] = o->beta2 * s->v[i] + (1 - (double)o->beta2) * g * g;
        double v = s->v[i];
        if (o->amsgrad) v = s->vmax[i] = fmax(s->vmax[i], v);
        double bc1 = 1 - pow(o->beta1, t), bc2 = 1 - pow(o->beta2, t);
        s->p[i] -= o->lr / bc1 * s->m[i] / (sqrt(v) / sqrt(bc2) + o->eps);
    }
}

static void ref_rmsprop(ref_state *s, const float *grad, const nb_rmsprop_opts *o)
{
    for (int i = 0; i < 10; i++) {
        double g = grad[i] + (double)o->weight_decay * s->p[i];
        s->v[i] = o->alpha * s->v[i] + (1 - (double)o->alpha) * g * g;
        double avg = s->v[i];
        if (o->centered) {
            s->ga[i] = o->alpha * s->ga[i] + (1 - (double)o->alpha) * g;
            avg -= s->ga[i] * s->ga[i];
        }
        avg = sqrt(avg) + o->eps;
        if (o->momentum > 0) {
            s->buf[i] = o->momentum * s->buf[i] + g / avg;
            s->p[i] -= o->lr * s->buf[i];
        } else {
            s->p[i] -= o->lr * g / avg;
        }
    }
}

static void check_against_ref(const char *what, nb_optim *o, nb_graph *g, int kind,
                              const nb_adam_opts *ao, const nb_rmsprop_opts *ro)
{
    CHECK_PTR(o);
    if (!o) return;
    ref_state s;
    memset(&s, 0, sizeof s);
    float *p = nb_graph_param_data(g);
    for (int i = 0; i < 10; i++) s.p[i] = p[i];
    for (int t = 1; t <= 25; t++) {
        set_grads(g, t);
        CHECK_OK(nb_optim_step(o));
        if (kind == 2) ref_rmsprop(&s, nb_graph_param_grad(g), ro);
        else ref_adam(&s, nb_graph_param_grad(g), ao, kind, t);
    }
    double worst = 0;
    for (int i = 0; i < 10; i++) worst = fmax(worst, fabs(p[i] - s.p[i]) / fmax(fabs(s.p[i]), 1e-3));
    if (!(worst < 1e-5)) nb_test_fail(__FILE__, __LINE__, "%s: relative error %g", what, worst);
    /* the first state buffer follows the replay too */
    const double *ref0 = kind == 2 ? s.v : s.m;
    float *st = nb_optim_state(o, 0);
    for (int i = 0; i < 10; i++) CHECK_NEAR(st[i], ref0[i], 1e-5 * fmax(fabs(ref0[i]), 1e-3));
    nb_optim_free(o);
}

NB_TEST(test_optim_rules_match_reference)
{
    const nb_adam_opts adam[] = {
        NB_ADAM_DEFAULTS,
        {.lr = 1e-2f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.05f, .amsgrad = 1},
        {.lr = 3e-2f, .beta1 = 0, .beta2 = 0.9f, .eps = 1e-8f, .weight_decay = 0.1f},
    };
    for (int c = 0; c < 3; c++) {
        for (int w = 0; w < 2; w++) {
            nb_graph *g = two_params();
            check_against_ref(w ? "adamw" : "adam", w ? nb_adamw_create(g, &adam[c]) : nb_adam_create(g, &adam[c]),
                              g, w, &adam[c], NULL);
            nb_graph_free(g);
        }
    }
    const nb_rmsprop_opts rms[] = {
        NB_RMSPROP_DEFAULTS,
        {.lr = 1e-3f, .alpha = 0.9f, .eps = 1e-6f, .weight_decay = 0.01f, .momentum = 0.9f, .centered = 1},
        {.lr = 1e-3f, .alpha = 0.95f, .eps = 1e-8f, .momentum = 0.5f},
        {.lr = 1e-3f, .alpha = 0.9f, .eps = 1e-8f, .centered = 1},
    };
    for (int c = 0; c < 4; c++) {
        nb_graph *g = two_params();
        check_against_ref("rmsprop", nb_rmsprop_create(g, &rms[c]), g, 2, NULL, &rms[c]);
        nb_graph_free(g);
    }
}

/* Ten steps, a checkpoint (state buffers + steps) copied into a fresh
 * optimizer, ten more steps on both: the two runs stay identical. */
static void check_resume(nb_optim *(*make)(nb_graph *, const void *), const void *opts)
{
    nb_graph *g1 = two_params(), *g2 = two_params();
    nb_optim *o1 = make(g1, opts);
    CHECK_PTR(o1);
    if (!o1) return;
    for (int s = 0; s < 10; s++) {
        set_grads(g1, s);
        CHECK_OK(nb_optim_step(o1));
    }
    nb_optim *o2 = make(g2, opts);
    size_t n = nb_graph_param_numel(g1);
    memcpy(nb_graph_param_data(g2), nb_graph_param_data(g1), n * sizeof(float));
    for (int k = 0; k < nb_optim_state_count(o1); k++)
        memcpy(nb_optim_state(o2, k), nb_optim_state(o1, k), n * sizeof(float));
    nb_optim_set_steps(o2, nb_optim_steps(o1));
    for (int s = 10; s < 20; s++) {
        set_grads(g1, s);
        set_grads(g2, s);
        CHECK_OK(nb_optim_step(o1));
        CHECK_OK(nb_optim_step(o2));
    }
    CHECK(memcmp(nb_graph_param_data(g1), nb_graph_param_data(g2), n * sizeof(float)) == 0);
    CHECK(nb_optim_steps(o2) == 20);
    nb_optim_free(o1);
    nb_optim_free(o2);
    nb_graph_free(g1);
    nb_graph_free(g2);
}

static nb_optim *make_sgd(nb_graph *g, const void *o) { return nb_sgd_create(g, o); }
static nb_optim *make_adam(nb_graph *g, const void *o) { return nb_adam_create(g, o); }
static nb_optim *make_adamw(nb_graph *g, const void *o) { return nb_adamw_create(g, o); }
static nb_optim *make_rmsprop(nb_graph *g, const void *o) { return nb_rmsprop_create(g, o); }

NB_TEST(test_optim_resume_from_state)
{
    nb_sgd_opts s = {.lr = 0.05f, .momentum = 0.9f, .dampening = 0.2f, .weight_decay = 0.01f};
    nb_adam_opts a = NB_ADAM_DEFAULTS, w = NB_ADAMW_DEFAULTS;
    nb_rmsprop_opts r = {.lr = 1e-3f, .alpha = 0.9f, .eps = 1e-8f, .momentum = 0.9f, .centered = 1};
    a.amsgrad = 1;
    check_resume(make_sgd, &s);
    check_resume(make_adam, &a);
    check_resume(make_adamw, &w);
    check_resume(make_rmsprop, &r);

    /* SGD's first step copies the gradient into the buffer, whatever was in it;
     * after a resume (steps > 0) the buffer is used as it is */
    nb_graph *g = two_params();
    nb_optim *o = nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f, .momentum = 0.5f});
    float *buf = nb_optim_state(o, 0);
    for (int i = 0; i < 10; i++) buf[i] = 100;
    set_grads(g, 0);
    CHECK_OK(nb_optim_step(o));
    for (int i = 0; i < 10; i++) CHECK(buf[i] == nb_graph_param_grad(g)[i]);
    for (int i = 0; i < 10; i++) buf[i] = 100;
    CHECK_OK(nb_optim_step(o));
    for (int i = 0; i < 10; i++) CHECK(buf[i] == 50 + nb_graph_param_grad(g)[i]);
    nb_optim_free(o);
    nb_graph_free(g);
}

NB_TEST(test_optim_clip_grad_norm)
{
    nb_graph *g = two_params();
    float *gr = nb_graph_param_grad(g);
    /* 3-4-12-84: norm 85 */
    const float v[10] = {3, 0, 0, -4, 0, 0, 12, 0, 0, -84};
    memcpy(gr, v, sizeof v);
    CHECK_NEAR(nb_clip_grad_norm(g, 1000), 85, 1e-5);
    for (int i = 0; i < 10; i++) CHECK(gr[i] == v[i]);           /* below: untouched */
    CHECK_NEAR(nb_clip_grad_norm(g, INFINITY), 85, 1e-5);
    for (int i = 0; i < 10; i++) CHECK(gr[i] == v[i]);
    CHECK_NEAR(nb_clip_grad_norm(g, 85), 85, 1e-5);              /* coef 85/(85+1e-6) < 1 */
    CHECK_NEAR(gr[9], -84 * (85 / (85 + 1e-6)), 1e-5);
    memcpy(gr, v, sizeof v);
    CHECK_NEAR(nb_clip_grad_norm(g, 17), 85, 1e-5);              /* scaled by 1/5 */
    double norm = 0;
    for (int i = 0; i < 10; i++) {
        CHECK_NEAR(gr[i], v[i] / 5.0, 1e-5);
        norm += (double)gr[i] * gr[i];
    }
    CHECK_NEAR(sqrt(norm), 17, 1e-4);
    CHECK_NEAR(nb_clip_grad_norm(g, 17), 17, 1e-4);              /* already there: ~unchanged */
    CHECK_NEAR(gr[9], -84 / 5.0, 1e-4);
    CHECK_NEAR(nb_clip_grad_norm(g, 0), 17, 1e-4);               /* max_norm 0: zeroes */
    for (int i = 0; i < 10; i++) CHECK(gr[i] == 0);
    CHECK(nb_clip_grad_norm(g, 1) == 0);                          /* zero gradients stay zero */
    for (int i = 0; i < 10; i++) CHECK(gr[i] == 0);

    /* a non-finite norm is reported, the gradients are left alone */
    memcpy(gr, v, sizeof v);
    gr[2] = INFINITY;
    CHECK(isinf(nb_clip_grad_norm(g, 1)));
    CHECK(gr[9] == -84);

    CHECK(nb_clip_grad_norm(g, -1) == -1);
    CHECK(strstr(nb_last_error(), "max_norm -1") != NULL);
    CHECK(nb_clip_grad_norm(g, NAN) == -1);
    CHECK(nb_clip_grad_norm(NULL, 1) == -1);
    nb_graph_free(g);

    g = nb_graph_create();   /* no parameters: norm 0 */
    CHECK(nb_clip_grad_norm(g, 1) == 0);
    nb_graph_free(g);
}

NB_TEST(test_optim_schedule_kinds)
{
    CHECK(nb_schedule_kind("constant") == NB_SCHED_CONSTANT);
    CHECK(nb_schedule_kind("step") == NB_SCHED_STEP);
    CHECK(nb_schedule_kind("cosine") == NB_SCHED_COSINE);
    CHECK(nb_schedule_kind("warmup-cosine") == NB_SCHED_WARMUP_COSINE);
    CHECK(nb_schedule_kind("Cosine") == -1);
    CHECK(nb_schedule_kind("warmup") == -1);
    CHECK(nb_schedule_kind("") == -1);
    CHECK(nb_schedule_kind(NULL) == -1);
}

NB_TEST(test_optim_schedule_values)
{
    const double pi = 3.14159265358979323846;
    nb_schedule s = {NB_SCHED_CONSTANT, 0.1f, 0.001f, 0.5f, 3, 4, 20};
    CHECK(nb_schedule_lr(&s, 0) == 0.1f);
    CHECK(nb_schedule_lr(&s, 1000000) == 0.1f);
    CHECK(nb_schedule_lr(&s, -3) == 0.1f);

    s.kind = NB_SCHED_STEP;   /* 0.1 * 0.5^floor(step / 3) */
    CHECK_NEAR(nb_schedule_lr(&s, 0), 0.1, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 2), 0.1, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 3), 0.05, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 5), 0.05, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 6), 0.025, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 30), 0.1 / 1024, 1e-10);
    CHECK_NEAR(nb_schedule_lr(&s, -1), 0.1, 1e-8);

    s.kind = NB_SCHED_COSINE;   /* from 0.1 to 0.001 over 20 steps */
    CHECK_NEAR(nb_schedule_lr(&s, 0), 0.1, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 5), 0.001 + 0.099 * (1 + cos(pi / 4)) / 2, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 10), 0.0505, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 19), 0.001 + 0.099 * (1 + cos(pi * 19 / 20)) / 2, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 20), 0.001, 1e-9);
    CHECK_NEAR(nb_schedule_lr(&s, 500), 0.001, 1e-9);
    for (long t = 1; t <= 20; t++) CHECK(nb_schedule_lr(&s, t) < nb_schedule_lr(&s, t - 1));

    s.kind = NB_SCHED_WARMUP_COSINE;   /* 4 warm-up steps, then cosine over 16 */
    CHECK_NEAR(nb_schedule_lr(&s, 0), 0.025, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 1), 0.05, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 2), 0.075, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 3), 0.1, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 4), 0.1, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 8), 0.001 + 0.099 * (1 + cos(pi / 4)) / 2, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 12), 0.0505, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 19), 0.001 + 0.099 * (1 + cos(pi * 15 / 16)) / 2, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 20), 0.001, 1e-9);
    CHECK_NEAR(nb_schedule_lr(&s, 21), 0.001, 1e-9);
    s.warmup_steps = 0;   /* plain cosine */
    CHECK_NEAR(nb_schedule_lr(&s, 10), 0.0505, 1e-8);
    s.warmup_steps = 20;  /* warm-up only, then min_lr */
    CHECK_NEAR(nb_schedule_lr(&s, 19), 0.1, 1e-8);
    CHECK_NEAR(nb_schedule_lr(&s, 20), 0.001, 1e-9);

    /* schedules that break their kind's rule */
    s.warmup_steps = 21;
    CHECK(isnan(nb_schedule_lr(&s, 0)));
    CHECK(strstr(nb_last_error(), "warmup_steps 21") != NULL);
    s.warmup_steps = -1;
    CHECK(isnan(nb_schedule_lr(&s, 0)));
    s.warmup_steps = 0;
    s.total_steps = 0;
    CHECK(isnan(nb_schedule_lr(&s, 0)));
    s.kind = NB_SCHED_COSINE;
    CHECK(isnan(nb_schedule_lr(&s, 0)));
    CHECK(strstr(nb_last_error(), "total_steps 0") != NULL);
    s.kind = NB_SCHED_STEP;
    s.step_size = 0;
    CHECK(isnan(nb_schedule_lr(&s, 0)));
    CHECK(strstr(nb_last_error(), "step_size 0") != NULL);
    s.kind = (nb_sched_kind)17;
    CHECK(isnan(nb_schedule_lr(&s, 0)));
    CHECK(isnan(nb_schedule_lr(NULL, 0)));
}
