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
 * masks on (seed, step, the sample's index in the batch, the element), and
 * every kernel sums in a fixed order.
 *
 * Data-parallel training (nb_trainer_set_comm): every rank walks the same
 * shuffled order and takes a contiguous shard of each global batch (sizes
 * differing by at most one sample), planned for its own size. Backward
 * gives the gradient of the shard's mean loss; weighted by n_rank / n_batch
 * and summed across ranks it is the gradient of the global batch's mean
 * loss, so every rank clips and steps identically. Loss, correct answers,
 * samples and a failure flag are summed in one more reduction per step, with
 * the running statistics of unsynchronised batch norm (averaged, weighted
 * the same way, so the replicas stay identical). One rank alone runs exactly
 * the code of one process: the same bits.
 */
#include "nn.h"
#include "../data/data.h"
#include "../dist/dist.h"

#include <limits.h>

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

static void free_dist(nb_trainer *t)
{
    nb_free(t->red);
    nb_free(t->bn_ptr);
    nb_free(t->bn_len);
    nb_free(t->bucket_lo);
    nb_free(t->bucket_hi);
    nb_free(t->bucket_ready);
    nb_free(t->sync_sizes);
    t->sync_sizes = NULL;
    t->n_sync = 0;
    t->sync_max = 0;
    t->red = NULL;
    t->bn_ptr = NULL;
    t->bn_len = NULL;
    t->bucket_lo = t->bucket_hi = NULL;
    t->bucket_ready = NULL;
    t->nred = 0;
    t->n_bn = t->n_buckets = 0;
}

void nb_trainer_free(nb_trainer *t)
{
    if (!t) return;
    free_dist(t);
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
    t->cnt[0] = b;
    t->cnt[1] = t->last;
    t->weight[0] = t->weight[1] = 1.0f;
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
    t->anomaly = on != 0;
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

/* ---- data-parallel training -------------------------------------------- */

/* The shard of a batch of n samples that rank r of `size` takes: sizes
 * n / size, the first n % size ranks one more, in rank order. */
static void shard(size_t n, int r, int size, size_t *off, size_t *cnt)
{
    size_t q = n / (size_t)size, rem = n % (size_t)size, k = (size_t)r;
    *cnt = q + (k < rem);
    *off = k * q + (k < rem ? k : rem);
}

static nb_status sync_allreduce(void *ctx, double *buf, size_t n)
{
    nb_trainer *t = ctx;
    t->sync_calls++;
    return nb_comm_allreduce_f64(t->comm, buf, n, "the sum of batch-norm statistics");
}

/* This rank's step failed part-way (a bad sample): the others still expect
 * its share of the batch-norm sums it did not reach. Zeros. */
static nb_status finish_sync(nb_trainer *t)
{
    if (t->sync_calls >= t->n_sync) return NB_OK;
    double *zero = nb_calloc(t->sync_max, sizeof *zero);
    if (!zero) return NB_ERR_NOMEM; /* (the other ranks wait until the time limit) */
    nb_status st = NB_OK;
    for (int k = t->sync_calls; k < t->n_sync && st == NB_OK; k++) {
        memset(zero, 0, t->sync_sizes[k] * sizeof *zero);
        st = nb_comm_allreduce_f64(t->comm, zero, t->sync_sizes[k], "the sum of batch-norm statistics");
    }
    nb_free(zero);
    return st;
}

static void scale(float *x, size_t n, float w)
{
    if (w != 1.0f)
        for (size_t i = 0; i < n; i++) x[i] *= w;
}

static nb_status start_bucket(nb_trainer *t)
{
    int b = t->next_bucket++;
    float *grad = nb_graph_param_grad(nb_model_graph(t->m)) + t->bucket_lo[b];
    size_t n = t->bucket_hi[b] - t->bucket_lo[b];
    scale(grad, n, t->weight[t->cur]);
    return nb_comm_start_f32(t->comm, grad, n, "the sum of gradients");
}

/* After the backward step of `node`: start every bucket whose gradients are
 * complete, in order (every rank starts the same ones in the same order). */
static nb_status bucket_hook(void *user, int node)
{
    nb_trainer *t = user;
    nb_status st;
    while (t->next_bucket < t->n_buckets && t->bucket_ready[t->next_bucket] >= node)
        if ((st = start_bucket(t)) != NB_OK) return st;
    return nb_comm_progress(t->comm);
}

/* Every rank's weighted gradients summed: the gradient of the global batch's mean loss. */
static nb_status finish_gradients(nb_trainer *t)
{
    nb_graph *g = nb_model_graph(t->m);
    nb_status st;
    if (t->n_buckets) {
        while (t->next_bucket < t->n_buckets)
            if ((st = start_bucket(t)) != NB_OK) return st;
        return nb_comm_wait_all(t->comm, "the sum of gradients");
    }
    size_t n = nb_graph_param_numel(g);
    scale(nb_graph_param_grad(g), n, t->weight[t->cur]);
    return nb_comm_allreduce_f32(t->comm, nb_graph_param_grad(g), n, "the sum of gradients");
}

/* Buckets of about `bytes` over the gradient block, from the last parameter
 * (its gradient is complete first in backward) to the first; each is ready
 * after the backward step of the earliest node that reads one of its
 * parameters. */
static nb_status make_buckets(nb_trainer *t, size_t bytes)
{
    nb_graph *g = nb_model_graph(t->m);
    int np = g->n_params;
    if (!bytes || np == 0) return NB_OK;
    int *first_use = nb_alloc((size_t)np * sizeof *first_use);
    t->bucket_lo = nb_calloc((size_t)np, sizeof *t->bucket_lo);
    t->bucket_hi = nb_calloc((size_t)np, sizeof *t->bucket_hi);
    t->bucket_ready = nb_calloc((size_t)np, sizeof *t->bucket_ready);
    if (!first_use || !t->bucket_lo || !t->bucket_hi || !t->bucket_ready) {
        nb_free(first_use);
        return NB_ERR_NOMEM;
    }
    for (int i = 0; i < np; i++) first_use[i] = INT_MAX; /* never read: ready at once */
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node *nd = g->nodes[i];
        for (int j = 0; j < nd->n_in; j++)
            if (nd->in[j]->op == NB_OP_PARAM)
                for (int k = 0; k < np; k++)
                    if (g->params[k] == nd->in[j] && i < first_use[k]) first_use[k] = i;
    }
    /* parameters in the block's order, by offset */
    int nb = 0;
    size_t acc = 0;
    for (int k = np - 1; k >= 0; k--) {
        nb_node *pn = g->params[k];
        size_t lo = pn->off, hi = pn->off + nb_node_numel(pn);
        if (acc == 0) {
            t->bucket_lo[nb] = lo;
            t->bucket_hi[nb] = hi;
            t->bucket_ready[nb] = first_use[k];
            nb++;
        } else {
            if (lo < t->bucket_lo[nb - 1]) t->bucket_lo[nb - 1] = lo;
            if (hi > t->bucket_hi[nb - 1]) t->bucket_hi[nb - 1] = hi;
            if (first_use[k] < t->bucket_ready[nb - 1]) t->bucket_ready[nb - 1] = first_use[k];
        }
        acc += (hi - lo) * sizeof(float);
        if (acc >= bytes) acc = 0;
    }
    nb_free(first_use);
    t->n_buckets = nb;
    return NB_OK;
}

static int is_batchnorm(const nb_node *n) { return n->op == NB_OP_BATCHNORM; }

nb_comm *nb_trainer_comm(const nb_trainer *t) { return t ? t->comm : NULL; }

nb_status nb_trainer_set_comm(nb_trainer *t, nb_comm *c, unsigned flags)
{
    if (!t) return nb_set_error(NB_ERR_ARG, "trainer_set_comm: NULL trainer");
    if (flags & ~(unsigned)NB_DIST_SYNC_BN)
        return nb_set_error(NB_ERR_ARG, "trainer_set_comm: unknown flags 0x%x", flags);
    nb_graph *g = nb_model_graph(t->m);
    const int size = nb_comm_size(c), rank = nb_comm_rank(c);
    nb_status st;
    if (c) {
        /* the same model, data, settings and position everywhere */
        const nb_train_config *k = &t->cfg;
        char cfg[320], pos[96];
        snprintf(cfg, sizeof cfg, "batch %d optimizer %s lr %.9g momentum %.9g weight_decay %.9g schedule %s "
                                  "clip %.9g epochs %d seed %llu flags %u", k->batch, k->optimizer, k->lr,
                 k->momentum, k->weight_decay, k->schedule, k->clip_norm, k->epochs,
                 (unsigned long long)k->seed, flags);
        snprintf(pos, sizeof pos, "epoch %d batch %zu step %ld", t->epoch, t->batch_in_epoch, t->step);
        const nb_dataset *d = t->d;
        char shape[128];
        snprintf(shape, sizeof shape, "samples %zu features %zu targets %zu classes %d", d->count,
                 d->sample_size, d->target_size, d->classes);
        nb_comm_item items[] = {
            {"model spec", nb_model_spec(t->m), strlen(nb_model_spec(t->m))},
            {"training data size", shape, strlen(shape)},
            {"training data", d->x, d->count * d->sample_size * sizeof(float)},
            {"training targets", d->y, d->count * d->target_size * sizeof(float)},
            {"training settings", cfg, strlen(cfg)},
            {"training position", pos, strlen(pos)},
        };
        if ((st = nb_comm_check_same(c, items, (int)(sizeof items / sizeof items[0]))) != NB_OK) return st;
    }

    /* batches per epoch and the last one's size: every rank's shard of
     * every batch must hold a sample (two without synchronisation when batch
     * norm takes its statistics per rank; two in all when it takes them
     * over the batch); a last batch too small joins the one before it */
    int n_bn = 0;
    for (int i = 0; i < g->n_nodes; i++) n_bn += is_batchnorm(g->nodes[i]);
    const int sync = c && n_bn && (flags & NB_DIST_SYNC_BN);
    const size_t n = nb_dataset_count(t->d), B = (size_t)t->cfg.batch, ranks = (size_t)size;
    size_t need = n_bn ? (sync ? (ranks > 2 ? ranks : 2) : 2 * ranks) : ranks;
    size_t batches = (n + B - 1) / B, last = n - (batches - 1) * B;
    int fold = 0;
    if (c && B < need)
        return nb_set_error(NB_ERR_ARG, "trainer_set_comm: a global batch of %zu over %d ranks leaves "
                                        "shards of %zu sample%s; %s needs at least %zu in all", B, size,
                            B / ranks, B / ranks == 1 ? "" : "s",
                            n_bn ? (sync ? "synchronised batch norm" : "batch norm with per-rank statistics "
                                                                       "(2 per rank; or --sync-bn)")
                                 : "every rank", need);
    if (last < need && batches > 1) {
        fold = 1;
        batches--;
        last += B;
    } else if (c && last < need) {
        return nb_set_error(NB_ERR_ARG, "trainer_set_comm: %zu training samples cannot be shared by %d "
                                        "ranks (%zu needed)", n, size, need);
    }

    /* this rank's plans: the full batches' shard and the last batch's */
    size_t off[2], cnt[2];
    shard(B, rank, size, &off[0], &cnt[0]);
    shard(last, rank, size, &off[1], &cnt[1]);
    nb_plan *np[2] = {NULL, NULL};
    nb_node *lossn = nb_model_loss(t->m);
    if (!(np[0] = nb_plan_create(g, lossn, (int)cnt[0], NB_PLAN_TRAIN)) ||
        (last != B && !(np[1] = nb_plan_create(g, lossn, (int)cnt[1], NB_PLAN_TRAIN)))) {
        nb_plan_free(np[0]);
        return NB_ERR_STATE; /* the plan's message says why */
    }
    float weight[2];
    for (int k = 0; k < 2; k++) {
        size_t global = k ? last : B;
        weight[k] = c ? (float)((double)cnt[k] / (double)global) : 1.0f;
        if (!np[k]) continue;
        nb_plan_seed(np[k], t->cfg.seed * 2 + 1 + (uint64_t)k);
        nb_plan *old = t->plan[k] ? t->plan[k] : t->plan[0];
        *nb_plan_rng(np[k]) = *nb_plan_rng(old);
        nb_plan_set_batch_offset(np[k], (int64_t)off[k]);
        nb_plan_set_detect_anomaly(np[k], t->anomaly);
        if (sync) {
            t->sync[k] = (nb_sync){sync_allreduce, t, (double)cnt[k] / (double)global};
            nb_plan_set_sync(np[k], &t->sync[k]);
        }
    }

    /* the per-step sums, the running statistics to average, the buckets */
    free_dist(t);
    st = NB_OK;
    if (c) {
        int avg = n_bn && !sync;
        size_t nred = 4;
        if (avg && !(t->bn_ptr = nb_calloc(2 * (size_t)n_bn, sizeof *t->bn_ptr))) st = NB_ERR_NOMEM;
        if (avg && !(t->bn_len = nb_calloc(2 * (size_t)n_bn, sizeof *t->bn_len))) st = NB_ERR_NOMEM;
        for (int i = 0; avg && st == NB_OK && i < g->n_nodes; i++) {
            nb_node *nd = g->nodes[i];
            if (!is_batchnorm(nd)) continue;
            for (int j = 0; j < 2; j++) { /* inputs: x, [gamma], [beta], running_mean, running_var, count */
                nb_node *buf = nd->in[nd->n_in - 3 + j];
                t->bn_ptr[2 * t->n_bn + j] = nb_node_data(buf);
                t->bn_len[2 * t->n_bn + j] = nb_node_numel(buf);
                nred += nb_node_numel(buf);
            }
            t->n_bn++;
        }
        if (st == NB_OK && !(t->red = nb_calloc(nred, sizeof *t->red))) st = NB_ERR_NOMEM;
        t->nred = nred;
        /* buckets interleave with the sums of synchronised batch norm in an
         * order a failed rank could not replay: not together */
        if (st == NB_OK && !sync) st = make_buckets(t, nb_comm_bucket_bytes(c));
        if (st == NB_OK && sync) {
            /* forward: sums and count, then squared deviations, node by node;
             * backward, in reverse: the two gradient sums where x needs a gradient */
            if (!(t->sync_sizes = nb_calloc(3 * (size_t)n_bn, sizeof *t->sync_sizes))) st = NB_ERR_NOMEM;
            for (int i = 0; st == NB_OK && i < g->n_nodes; i++)
                if (is_batchnorm(g->nodes[i])) {
                    size_t C = (size_t)g->nodes[i]->shape.d[1];
                    t->sync_sizes[t->n_sync++] = C + 1;
                    t->sync_sizes[t->n_sync++] = C;
                    if (2 * C > t->sync_max) t->sync_max = 2 * C;
                    if (C + 1 > t->sync_max) t->sync_max = C + 1;
                }
            for (int i = g->n_nodes - 1; st == NB_OK && i >= 0; i--)
                if (is_batchnorm(g->nodes[i]) && g->nodes[i]->in[0]->requires_grad)
                    t->sync_sizes[t->n_sync++] = 2 * (size_t)g->nodes[i]->shape.d[1];
        }
        /* rank 0's weights and buffers everywhere (a program may have seeded ranks apart) */
        if (st == NB_OK)
            st = nb_comm_bcast(c, nb_graph_param_data(g), nb_graph_param_numel(g) * sizeof(float), 0,
                               "the broadcast of rank 0's weights");
        if (st == NB_OK)
            st = nb_comm_bcast(c, g->cdata, g->cnumel * sizeof(float), 0, "the broadcast of rank 0's buffers");
    }
    if (st != NB_OK) {
        /* the old plans stay, but not the old communicator: this trainer's
         * state is no longer one the ranks share (nothing to checkpoint) */
        free_dist(t);
        nb_plan_free(np[0]);
        nb_plan_free(np[1]);
        t->comm = NULL;
        t->failed = 1;
        return st;
    }
    for (int k = 0; k < 2; k++) {
        nb_plan_free(t->plan[k]);
        t->plan[k] = np[k];
        if (np[k] && t->n_buckets) nb_plan_set_backward_hook(np[k], bucket_hook, t);
        t->off[k] = off[k];
        t->cnt[k] = cnt[k];
        t->weight[k] = weight[k];
    }
    t->comm = c;
    t->dist_flags = c ? flags : 0;
    t->batches = batches;
    t->last = last;
    t->fold = fold;
    if (t->batch_in_epoch >= t->batches) t->batch_in_epoch = 0;
    return make_schedule(t);
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
        const int li = (bi == t->batches - 1 && t->plan[1]) ? 1 : 0;
        nb_plan *p = t->plan[li];
        const size_t global = li ? t->last : (size_t)t->cfg.batch;
        float *xb = nb_plan_data(p, x, NULL), *yb = nb_plan_data(p, y, NULL);
        /* this rank's shard of the global batch (all of it for one process) */
        nb_loader_skip(t->loader, t->off[li]);
        size_t got = nb_loader_take(t->loader, t->cnt[li], xb, yb);
        nb_loader_skip(t->loader, global - t->off[li] - got);
        nb_status st;
        float lr = nb_schedule_lr(&t->sched, t->step);
        nb_optim_set_lr(t->opt, lr);
        nb_graph_zero_grad(g);
        nb_plan_set_step(p, (uint64_t)t->step);
        st = nb_plan_forward(p);
        float l = st == NB_OK ? *nb_plan_data(p, loss, NULL) : NAN;
        double step_loss, step_correct = 0, step_samples;
        if (!t->comm) {
            if (st != NB_OK) return st;
            if (!isfinite(l))
                return nb_set_error(NB_ERR_NUMERIC, "the loss became %s at epoch %d, step %ld: lower the "
                                                    "learning rate (now %g) or clip gradients",
                                    isnan(l) ? "NaN" : "infinite", t->epoch + 1, t->step + 1, lr);
            if ((st = nb_plan_backward(p, NULL)) != NB_OK) return st;
            step_loss = (double)l * (double)got;
            if (classifier) step_correct = (double)count_correct(nb_plan_data(p, out, NULL), yb, got, C);
            step_samples = (double)got;
        } else {
            /* a local failure (bad data) still takes part in this step's
             * reductions, so that every rank stops here with it */
            t->cur = li;
            t->next_bucket = 0;
            t->sync_calls = 0;
            if (st == NB_OK) st = nb_plan_backward(p, NULL);
            if (st == NB_ERR_COMM) return st; /* the ranks can no longer work together */
            nb_status lst = st;
            if (lst != NB_OK) {
                char own[512];
                snprintf(own, sizeof own, "%s", nb_last_error());
                if ((st = finish_sync(t)) != NB_OK) return st;
                nb_set_error(lst, "%s", own);
            }
            if ((st = finish_gradients(t)) != NB_OK) return st;
            double *red = t->red;
            red[0] = lst == NB_OK ? (double)l * (double)got : 0.0;
            red[1] = lst == NB_OK && classifier ? (double)count_correct(nb_plan_data(p, out, NULL), yb, got, C) : 0.0;
            red[2] = (double)got;
            red[3] = lst != NB_OK;
            for (int k = 0, at = 4; k < 2 * t->n_bn; k++)
                for (size_t j = 0; j < t->bn_len[k]; j++) red[at++] = (double)t->bn_ptr[k][j] * t->weight[li];
            if ((st = nb_comm_allreduce_f64(t->comm, red, t->nred, "the sums of the step's loss and statistics")) != NB_OK)
                return st;
            if (red[3] > 0) {
                char what[80];
                snprintf(what, sizeof what, "step %ld of epoch %d", t->step + 1, t->epoch + 1);
                return nb_comm_agree(t->comm, lst, what);
            }
            for (int k = 0, at = 4; k < 2 * t->n_bn; k++)
                for (size_t j = 0; j < t->bn_len[k]; j++) t->bn_ptr[k][j] = (float)red[at++];
            step_loss = red[0];
            step_correct = red[1];
            step_samples = red[2];
            double gl = red[0] / red[2];
            if (!isfinite(gl))
                return nb_set_error(NB_ERR_NUMERIC, "the loss became %s at epoch %d, step %ld: lower the "
                                                    "learning rate (now %g) or clip gradients",
                                    isnan(gl) ? "NaN" : "infinite", t->epoch + 1, t->step + 1, lr);
        }
        run.grad_norm = t->cfg.clip_norm > 0 ? nb_clip_grad_norm(g, t->cfg.clip_norm)
                                             : nb_clip_grad_norm(g, INFINITY);
        if (!isfinite(run.grad_norm))
            return nb_set_error(NB_ERR_NUMERIC, "the gradient norm is %s at epoch %d, step %ld; the "
                                                "weights were left unchanged",
                                isnan(run.grad_norm) ? "NaN" : "infinite", t->epoch + 1, t->step + 1);
        if ((st = nb_optim_step(t->opt)) != NB_OK) return st;
        t->step++;
        t->batch_in_epoch = bi + 1;
        loss_sum += step_loss;
        correct += (size_t)step_correct;
        run.samples += (size_t)step_samples;
        run.step = t->step;
        run.lr = lr;
        run.loss = loss_sum / (double)run.samples;
        if (classifier) run.accuracy = (double)correct / (double)run.samples;
        if (on_step) {
            int stop = on_step(user, &run) != 0;
            if (t->comm) { /* any rank may ask (a signal): all stop after the same step */
                double v = stop;
                if ((st = nb_comm_allreduce_f64(t->comm, &v, 1, "the decision to stop")) != NB_OK) return st;
                stop = v > 0;
            }
            if (stop) {
                if (stats) *stats = run;
                t->failed = 0; /* stopped between two steps: a consistent state */
                return nb_set_error(NB_ERR_STATE, "stopped");
            }
        }
    }
    t->epoch++;
    t->batch_in_epoch = 0;
    if (t->comm) {
        /* the replicas must still be identical: the sums gave every rank the same bits */
        nb_comm_item same[2] = {{"weights after the epoch", nb_graph_param_data(g), nb_graph_param_numel(g) * sizeof(float)},
                                {"batch-norm statistics after the epoch", g->cdata, g->cnumel * sizeof(float)}};
        nb_status st = nb_comm_check_same(t->comm, same, 2);
        if (st != NB_OK) return st;
    }
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
    size_t base;             /* the first sample evaluated (a rank's share) */
} nb_eval_ctx;

static nb_status eval_fill(void *u, nb_plan *p, size_t first, size_t count)
{
    nb_eval_ctx *e = u;
    size_t xs = nb_dataset_sample_size(e->d), ts = nb_dataset_target_size(e->d);
    first += e->base;
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
        const float *labels = nb_dataset_targets(e->d) + e->base + first;
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

nb_status nb_evaluate_comm(nb_comm *c, nb_model *m, const nb_dataset *d, int batch, nb_eval_result *r)
{
    if (!m || !d || !r) {
        nb_status st = nb_set_error(NB_ERR_ARG, "evaluate: NULL argument");
        return c ? nb_comm_agree(c, st, "the evaluation") : st;
    }
    memset(r, 0, sizeof *r);
    nb_status st = check_data(m, d);
    size_t n = nb_dataset_count(d), first = 0, count = n;
    shard(n, nb_comm_rank(c), nb_comm_size(c), &first, &count);
    r->samples = n;
    r->accuracy = -1;
    if (st == NB_OK && nb_model_is_classifier(m)) {
        r->classes = (int)nb_model_output_size(m);
        if (!(r->confusion = nb_calloc((size_t)r->classes * (size_t)r->classes, sizeof(size_t))))
            st = NB_ERR_NOMEM;
    }
    nb_eval_ctx e = {m, d, r, 0, 0, first};
    nb_chunks ch = {eval_fill, eval_use, &e};
    if (st == NB_OK) st = run_chunks(m, count, batch, &ch);
    if (c) {
        /* every rank's sums: loss, correct, the confusion counts */
        st = nb_comm_agree(c, st, "the evaluation");
        size_t k = (size_t)r->classes * (size_t)r->classes;
        double *sum = st == NB_OK ? nb_alloc((2 + k) * sizeof *sum) : NULL;
        if (st == NB_OK && !sum) st = NB_ERR_NOMEM; /* (the ranks may no longer agree: end the job) */
        if (st == NB_OK) {
            sum[0] = e.loss_sum;
            sum[1] = (double)e.correct;
            for (size_t i = 0; i < k; i++) sum[2 + i] = (double)r->confusion[i];
            st = nb_comm_allreduce_f64(c, sum, 2 + k, "the sums of the evaluation");
            e.loss_sum = sum[0];
            e.correct = (size_t)sum[1];
            for (size_t i = 0; i < k; i++) r->confusion[i] = (size_t)sum[2 + i];
        }
        nb_free(sum);
    }
    if (st != NB_OK) {
        nb_eval_result_free(r);
        return st;
    }
    if (r->samples) {
        r->loss = e.loss_sum / (double)r->samples;
        if (r->classes > 0) r->accuracy = (double)e.correct / (double)r->samples;
    }
    return NB_OK;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *d, int batch, nb_eval_result *r)
{
    return nb_evaluate_comm(NULL, m, d, batch, r);
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
