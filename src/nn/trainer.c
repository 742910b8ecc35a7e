/*
 * trainer.c - the training loop: shuffle, batch, forward, loss, backward,
 * clip, schedule, update; and evaluation and prediction in batches.
 *
 * Everything a step needs is allocated when the trainer is created: two
 * training plans (the batch size and, if the data does not divide evenly,
 * the size of the last batch, so no sample is dropped), the optimizer's
 * state and the loader's permutation. The loader copies each batch straight
 * into the plan's input buffers. A step allocates nothing.
 *
 * Determinism: the order of samples depends only on (seed, epoch), dropout
 * masks on the plans' generators (seeded from the seed, saved in
 * checkpoints), and every kernel sums in a fixed order.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- configuration ---------------------------------------------------- */

static nb_status make_optim(nb_trainer *t)
{
    nb_graph *g = nb_model_graph(t->m);
    const char *o = t->optimizer;
    nb_train_config *c = &t->cfg;
    if (!strcmp(o, "sgd") || !strcmp(o, "momentum") || !strcmp(o, "nesterov")) {
        int plain = !strcmp(o, "sgd");
        nb_sgd_opts so = {0};
        so.lr = c->lr > 0 ? c->lr : plain ? 0.1f : 0.05f;
        so.momentum = plain ? (c->momentum > 0 ? c->momentum : 0) : (c->momentum > 0 ? c->momentum : 0.9f);
        so.weight_decay = c->weight_decay > 0 ? c->weight_decay : 0;
        so.nesterov = !strcmp(o, "nesterov");
        c->lr = so.lr;
        c->momentum = so.momentum;
        c->weight_decay = so.weight_decay;
        t->opt = nb_sgd_create(g, &so);
    } else if (!strcmp(o, "adam") || !strcmp(o, "adamw")) {
        int w = !strcmp(o, "adamw");
        nb_adam_opts ao = {0};
        ao.lr = c->lr > 0 ? c->lr : 1e-3f;
        ao.beta1 = 0.9f;
        ao.beta2 = 0.999f;
        ao.eps = 1e-8f;
        ao.weight_decay = c->weight_decay >= 0 ? c->weight_decay : (w ? 0.01f : 0);
        c->lr = ao.lr;
        c->weight_decay = ao.weight_decay;
        t->opt = w ? nb_adamw_create(g, &ao) : nb_adam_create(g, &ao);
    } else if (!strcmp(o, "rmsprop")) {
        nb_rmsprop_opts ro = {0};
        ro.lr = c->lr > 0 ? c->lr : 1e-3f;
        ro.alpha = 0.99f;
        ro.eps = 1e-8f;
        ro.momentum = c->momentum > 0 ? c->momentum : 0;
        ro.weight_decay = c->weight_decay > 0 ? c->weight_decay : 0;
        c->lr = ro.lr;
        c->momentum = ro.momentum;
        c->weight_decay = ro.weight_decay;
        t->opt = nb_rmsprop_create(g, &ro);
    } else {
        return nb_set_error(NB_ERR_ARG, "unknown optimizer '%s' (expected sgd, momentum, nesterov, "
                                        "adam, adamw or rmsprop)", o);
    }
    return t->opt ? NB_OK : NB_ERR_ARG;
}

static nb_status make_schedule(nb_trainer *t)
{
    int kind = nb_schedule_kind(t->schedule);
    if (kind < 0)
        return nb_set_error(NB_ERR_ARG, "unknown schedule '%s' (expected constant, step, cosine or "
                                        "warmup-cosine)", t->schedule);
    long total = (long)t->batches * t->cfg.epochs;
    nb_schedule *s = &t->sched;
    memset(s, 0, sizeof *s);
    s->kind = (nb_sched_kind)kind;
    s->lr = t->cfg.lr;
    s->min_lr = 0;
    /* step: x0.1 every third of the run; warm-up: the first epoch, at most a tenth of the run */
    s->gamma = 0.1f;
    s->step_size = (long)t->batches * ((t->cfg.epochs + 2) / 3);
    if (s->step_size < 1) s->step_size = 1;
    s->warmup_steps = (long)t->batches < total / 10 ? (long)t->batches : total / 10;
    if (s->warmup_steps < 1) s->warmup_steps = 1;
    s->total_steps = total > 0 ? total : 1;
    return NB_OK;
}

/* Checks that the data fits the model: sample size, targets, classes. */
static nb_status check_data(nb_model *m, const nb_dataset *d)
{
    int64_t ms[NB_MAX_DIMS], ds[NB_MAX_DIMS];
    int mn = nb_model_input_shape(m, ms), dn = nb_dataset_shape(d, ds);
    size_t msize = 1;
    for (int i = 0; i < mn; i++) msize *= (size_t)ms[i];
    if (msize != nb_dataset_sample_size(d)) {
        char a[96], b[96];
        nb_shape sa = {mn, {0}}, sb = {dn, {0}};
        for (int i = 0; i < mn; i++) sa.d[i] = ms[i];
        for (int i = 0; i < dn; i++) sb.d[i] = ds[i];
        return nb_set_error(NB_ERR_SHAPE, "the data's samples have shape %s (%zu values) but the "
                                          "model's input is %s (%zu values)",
                            nb_shape_str(&sb, b, sizeof b), nb_dataset_sample_size(d),
                            nb_shape_str(&sa, a, sizeof a), msize);
    }
    size_t out = nb_model_output_size(m);
    if (nb_model_is_classifier(m)) {
        if (nb_dataset_classes(d) <= 0)
            return nb_set_error(NB_ERR_SHAPE, "the model is a classifier but the data has real-valued targets");
        if ((size_t)nb_dataset_classes(d) > out)
            return nb_set_error(NB_ERR_SHAPE, "the data has %d classes but the model outputs %zu",
                                nb_dataset_classes(d), out);
    } else if (nb_dataset_target_size(d) != out) {
        return nb_set_error(NB_ERR_SHAPE, "the data has %zu target values per sample but the model "
                                          "outputs %zu (its loss compares them one to one)",
                            nb_dataset_target_size(d), out);
    }
    return NB_OK;
}

size_t nb_model_output_size(const nb_model *m)
{
    int64_t s[NB_MAX_DIMS];
    int nd = nb_node_shape(nb_model_output(m), s);
    size_t n = 1;
    for (int i = 1; i < nd; i++) n *= (size_t)s[i];
    return n;
}

static int has_batchnorm(nb_graph *g)
{
    for (int i = 0; i < nb_graph_node_count(g); i++)
        if (!strcmp(nb_node_op(nb_graph_node(g, i)), "batchnorm")) return 1;
    return 0;
}

void nb_trainer_free(nb_trainer *t)
{
    if (!t) return;
    nb_optim_free(t->opt);
    nb_loader_free(t->loader);
    nb_plan_free(t->plan[0]);
    nb_plan_free(t->plan[1]);
    nb_free(t);
}

nb_trainer *nb_trainer_create(nb_model *m, const nb_dataset *train, const nb_train_config *cfg)
{
    if (!m || !train) {
        nb_set_error(NB_ERR_ARG, "trainer: NULL model or data");
        return NULL;
    }
    if (check_data(m, train) != NB_OK) return NULL;
    nb_trainer *t = nb_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->m = m;
    t->d = train;
    if (cfg) t->cfg = *cfg;
    if (t->cfg.batch <= 0) t->cfg.batch = 64;
    if (t->cfg.epochs <= 0) t->cfg.epochs = 10;
    snprintf(t->optimizer, sizeof t->optimizer, "%s", t->cfg.optimizer ? t->cfg.optimizer : "adam");
    snprintf(t->schedule, sizeof t->schedule, "%s", t->cfg.schedule ? t->cfg.schedule : "constant");
    t->cfg.optimizer = t->optimizer;
    t->cfg.schedule = t->schedule;
    size_t n = nb_dataset_count(train), b = (size_t)t->cfg.batch;
    if (n == 0) {
        nb_set_error(NB_ERR_ARG, "trainer: the training data is empty");
        goto fail;
    }
    if (b > n) b = n, t->cfg.batch = (int)n;
    t->batches = (n + b - 1) / b;
    t->last = n - (t->batches - 1) * b;
    if (t->last == 1 && t->batches > 1 && has_batchnorm(nb_model_graph(m))) {
        /* batch statistics of one sample are undefined (PyTorch refuses them
         * too): the lone leftover sample joins the batch before it */
        t->fold = 1;
        t->batches--;
        t->last = b + 1;
    }
    if (make_optim(t) != NB_OK || make_schedule(t) != NB_OK) goto fail;
    nb_graph *g = nb_model_graph(m);
    if (!(t->plan[0] = nb_plan_create(g, nb_model_loss(m), (int)b, NB_PLAN_TRAIN))) goto fail;
    if (t->last != b && !(t->plan[1] = nb_plan_create(g, nb_model_loss(m), (int)t->last, NB_PLAN_TRAIN)))
        goto fail;
    nb_plan_seed(t->plan[0], t->cfg.seed * 2 + 1);
    if (t->plan[1]) nb_plan_seed(t->plan[1], t->cfg.seed * 2 + 2);
    if (!(t->loader = nb_loader_create(train, (int)b, 1, t->cfg.seed))) goto fail;
    return t;
fail:
    nb_trainer_free(t);
    return NULL;
}

int nb_trainer_epochs_done(const nb_trainer *t) { return t ? t->epoch : 0; }

void nb_trainer_set_detect_anomaly(nb_trainer *t, int on)
{
    if (!t) return;
    nb_plan_set_detect_anomaly(t->plan[0], on);
    nb_plan_set_detect_anomaly(t->plan[1], on);
}
const nb_train_config *nb_trainer_config(const nb_trainer *t) { return t ? &t->cfg : NULL; }
nb_optim *nb_trainer_optim(nb_trainer *t) { return t ? t->opt : NULL; }

/* Correct predictions among `count` rows of logits z [count, C] vs labels. */
static size_t count_correct(const float *z, const float *labels, size_t count, size_t C)
{
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        const float *row = z + i * C;
        size_t best = 0;
        for (size_t c = 1; c < C; c++)
            if (row[c] > row[best]) best = c;
        ok += (float)best == labels[i];
    }
    return ok;
}

/* ---- one epoch ---------------------------------------------------------- */

nb_status nb_trainer_epoch(nb_trainer *t, nb_train_stats *stats,
                           int (*on_step)(void *user, const nb_train_stats *running), void *user)
{
    if (!t) return nb_set_error(NB_ERR_ARG, "trainer_epoch: NULL trainer");
    nb_model *m = t->m;
    nb_graph *g = nb_model_graph(m);
    nb_node *x = nb_model_input(m), *y = nb_model_target(m), *out = nb_model_output(m);
    nb_node *loss = nb_model_loss(m);
    const int classifier = nb_model_is_classifier(m);
    const size_t C = nb_model_output_size(m);
    nb_train_stats run;
    memset(&run, 0, sizeof run);
    run.epoch = t->epoch;
    run.accuracy = classifier ? 0 : -1;
    double loss_sum = 0;
    size_t correct = 0;

    /* the order depends on (seed, epoch) only: a run stopped part-way through
     * an epoch continues after the batches it had done */
    nb_loader_start(t->loader, t->epoch);
    nb_loader_skip(t->loader, t->batch_in_epoch * (size_t)t->cfg.batch);
    t->failed = 1; /* until the step below completes */
    for (size_t bi = t->batch_in_epoch; bi < t->batches; bi++) {
        nb_plan *p = (bi == t->batches - 1 && t->plan[1]) ? t->plan[1] : t->plan[0];
        float *xb = nb_plan_data(p, x, NULL), *yb = nb_plan_data(p, y, NULL);
        size_t got = nb_loader_next(t->loader, xb, yb);
        if (t->fold && bi == t->batches - 1)
            got += nb_loader_next(t->loader, xb + got * nb_dataset_sample_size(t->d),
                                  yb + got * nb_dataset_target_size(t->d));
        nb_status st;
        float lr = nb_schedule_lr(&t->sched, t->step);
        nb_optim_set_lr(t->opt, lr);
        nb_graph_zero_grad(g);
        if ((st = nb_plan_forward(p)) != NB_OK) return st;
        float l = *nb_plan_data(p, loss, NULL);
        if (!isfinite(l))
            return nb_set_error(NB_ERR_NUMERIC, "the loss became %s at epoch %d, step %ld: lower the "
                                                "learning rate (now %g) or clip gradients",
                                isnan(l) ? "NaN" : "infinite", t->epoch + 1, t->step + 1, lr);
        if ((st = nb_plan_backward(p, NULL)) != NB_OK) return st;
        run.grad_norm = t->cfg.clip_norm > 0 ? nb_clip_grad_norm(g, t->cfg.clip_norm)
                                             : nb_clip_grad_norm(g, INFINITY);
        if (!isfinite(run.grad_norm))
            return nb_set_error(NB_ERR_NUMERIC, "the gradient norm is %s at epoch %d, step %ld; the "
                                                "weights were left unchanged",
                                isnan(run.grad_norm) ? "NaN" : "infinite", t->epoch + 1, t->step + 1);
        if ((st = nb_optim_step(t->opt)) != NB_OK) return st;
        t->step++;
        t->batch_in_epoch = bi + 1;
        loss_sum += (double)l * (double)got;
        if (classifier) correct += count_correct(nb_plan_data(p, out, NULL), yb, got, C);
        run.samples += got;
        run.step = t->step;
        run.lr = lr;
        run.loss = loss_sum / (double)run.samples;
        if (classifier) run.accuracy = (double)correct / (double)run.samples;
        if (on_step && on_step(user, &run)) {
            if (stats) *stats = run;
            t->failed = 0; /* stopped between two steps: a consistent state */
            return nb_set_error(NB_ERR_STATE, "stopped");
        }
    }
    t->epoch++;
    t->batch_in_epoch = 0;
    t->failed = 0;
    if (stats) *stats = run;
    return NB_OK;
}

/* ---- evaluation and prediction ---------------------------------------- */

/* Runs m forward over n samples in chunks of `batch` (evaluation mode). For
 * each chunk, fill() writes the inputs (and targets) and use() reads the
 * results. Plans are made for the chunk size and the last short chunk. */
typedef struct {
    nb_status (*fill)(void *u, nb_plan *p, size_t first, size_t count);
    nb_status (*use)(void *u, nb_plan *p, size_t first, size_t count);
    void *u;
} nb_chunks;

static nb_status run_chunks(nb_model *m, size_t n, int batch, const nb_chunks *c)
{
    if (n == 0) return NB_OK;
    size_t b = batch > 0 ? (size_t)batch : 256;
    if (b > n) b = n;
    size_t last = n % b;
    nb_graph *g = nb_model_graph(m);
    nb_plan *p[2] = {nb_plan_create(g, NULL, (int)b, 0), NULL};
    nb_status st = NB_OK;
    if (!p[0] || (last && !(p[1] = nb_plan_create(g, NULL, (int)last, 0)))) {
        st = NB_ERR_STATE; /* the plan's message says what failed */
        goto done;
    }
    for (size_t first = 0; first < n; first += b) {
        size_t count = n - first < b ? n - first : b;
        nb_plan *pl = count == b ? p[0] : p[1];
        if ((st = c->fill(c->u, pl, first, count)) != NB_OK || (st = nb_plan_forward(pl)) != NB_OK ||
            (st = c->use(c->u, pl, first, count)) != NB_OK)
            goto done;
    }
done:
    nb_plan_free(p[0]);
    nb_plan_free(p[1]);
    return st;
}

typedef struct {
    nb_model *m;
    const nb_dataset *d;
    nb_eval_result *r;
    double loss_sum;
    size_t correct;
} nb_eval_ctx;

static nb_status eval_fill(void *u, nb_plan *p, size_t first, size_t count)
{
    nb_eval_ctx *e = u;
    size_t xs = nb_dataset_sample_size(e->d), ts = nb_dataset_target_size(e->d);
    memcpy(nb_plan_data(p, nb_model_input(e->m), NULL), nb_dataset_features(e->d) + first * xs,
           count * xs * sizeof(float));
    memcpy(nb_plan_data(p, nb_model_target(e->m), NULL), nb_dataset_targets(e->d) + first * ts,
           count * ts * sizeof(float));
    return NB_OK;
}

static nb_status eval_use(void *u, nb_plan *p, size_t first, size_t count)
{
    nb_eval_ctx *e = u;
    e->loss_sum += (double)*nb_plan_data(p, nb_model_loss(e->m), NULL) * (double)count;
    if (e->r->classes > 0) {
        const float *z = nb_plan_data(p, nb_model_output(e->m), NULL);
        const float *labels = nb_dataset_targets(e->d) + first;
        size_t C = nb_model_output_size(e->m);
        for (size_t i = 0; i < count; i++) {
            size_t best = 0;
            for (size_t c = 1; c < C; c++)
                if (z[i * C + c] > z[i * C + best]) best = c;
            size_t truth = (size_t)labels[i];
            e->correct += best == truth;
            if (truth < (size_t)e->r->classes && best < (size_t)e->r->classes)
                e->r->confusion[truth * (size_t)e->r->classes + best]++;
        }
    }
    return NB_OK;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *d, int batch, nb_eval_result *r)
{
    if (!m || !d || !r) return nb_set_error(NB_ERR_ARG, "evaluate: NULL argument");
    memset(r, 0, sizeof *r);
    nb_status st = check_data(m, d);
    if (st != NB_OK) return st;
    r->samples = nb_dataset_count(d);
    r->accuracy = -1;
    if (nb_model_is_classifier(m)) {
        r->classes = (int)nb_model_output_size(m);
        if (!(r->confusion = nb_calloc((size_t)r->classes * (size_t)r->classes, sizeof(size_t))))
            return NB_ERR_NOMEM;
    }
    nb_eval_ctx e = {m, d, r, 0, 0};
    nb_chunks c = {eval_fill, eval_use, &e};
    if ((st = run_chunks(m, r->samples, batch, &c)) != NB_OK) {
        nb_eval_result_free(r);
        return st;
    }
    if (r->samples) {
        r->loss = e.loss_sum / (double)r->samples;
        if (r->classes > 0) r->accuracy = (double)e.correct / (double)r->samples;
    }
    return NB_OK;
}

void nb_eval_result_free(nb_eval_result *r)
{
    if (!r) return;
    nb_free(r->confusion);
    r->confusion = NULL;
}

typedef struct {
    nb_model *m;
    const float *x;
    float *out;
    size_t xs, os;
} nb_pred_ctx;

static nb_status pred_fill(void *u, nb_plan *p, size_t first, size_t count)
{
    nb_pred_ctx *c = u;
    memcpy(nb_plan_data(p, nb_model_input(c->m), NULL), c->x + first * c->xs, count * c->xs * sizeof(float));
    /* targets are not needed for outputs, but the loss runs too: give it valid labels */
    size_t ny;
    float *y = nb_plan_data(p, nb_model_target(c->m), &ny);
    memset(y, 0, ny * sizeof(float));
    return NB_OK;
}

static nb_status pred_use(void *u, nb_plan *p, size_t first, size_t count)
{
    nb_pred_ctx *c = u;
    memcpy(c->out + first * c->os, nb_plan_data(p, nb_model_output(c->m), NULL), count * c->os * sizeof(float));
    return NB_OK;
}

nb_status nb_model_predict(nb_model *m, const float *x, size_t n, float *out)
{
    if (!m || (n && (!x || !out))) return nb_set_error(NB_ERR_ARG, "predict: NULL argument");
    int64_t s[NB_MAX_DIMS];
    int nd = nb_model_input_shape(m, s);
    size_t xs = 1;
    for (int i = 0; i < nd; i++) xs *= (size_t)s[i];
    nb_pred_ctx c = {m, x, out, xs, nb_model_output_size(m)};
    nb_chunks ch = {pred_fill, pred_use, &c};
    return run_chunks(m, n, 256, &ch);
}
