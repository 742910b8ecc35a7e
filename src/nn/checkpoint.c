/*
 * checkpoint.c - a model and its training state in one safetensors file.
 *
 * Tensors: the state dict under PyTorch nn.Sequential names ("0.weight",
 * "1.running_mean", "1.num_batches_tracked" as int64, ...), then the
 * optimizer's buffers as "optimizer.<buffer>.<parameter>" with the
 * parameter's shape. A PyTorch user loads the model with
 *     sd = {k: v for k, v in load_file(path).items() if not k.startswith("optimizer.")}
 *     model.load_state_dict(sd, strict=True)
 * Metadata: the spec text (so the file alone rebuilds the model), the
 * training state (epoch, step, optimizer and settings, random states) and
 * whatever the caller adds (e.g. input normalisation).
 *
 * Why one file with the optimizer inside, rather than two files: a single
 * atomic rename is what makes "the checkpoint on disk is always complete"
 * true; two files could be caught half-updated by a crash.
 */
#include "nn.h"
#include "../dist/dist.h"
#include "../io/safetensors.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT_PREFIX "optimizer."

/* Named state of the model: parameters and named constants (buffers). */
static int is_state(const nb_node *n)
{
    return nb_node_is_param(n) || (!strcmp(nb_node_op(n), "const") && *nb_node_name(n));
}

static int is_int64_buffer(const char *name)
{
    const char *suffix = ".num_batches_tracked";
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && !strcmp(name + n - k, suffix);
}

static void rng_to_text(const nb_rng *r, char *buf, size_t size)
{
    snprintf(buf, size, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1],
             r->s[2], r->s[3]);
}

static int rng_from_text(const char *s, nb_rng *r)
{
    if (!s || strlen(s) != 64) return 0;
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, s + 16 * i, 16);
        part[16] = '\0';
        char *end;
        r->s[i] = strtoull(part, &end, 16);
        if (*end) return 0;
    }
    return 1;
}

static nb_status add_state_dict(nb_st_writer *w, nb_model *m)
{
    nb_graph *g = nb_model_graph(m);
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_node *n = nb_graph_node(g, i);
        if (!is_state(n)) continue;
        int64_t shape[NB_MAX_DIMS];
        int nd = nb_node_shape(n, shape);
        nb_status st;
        if (is_int64_buffer(nb_node_name(n))) {
            int64_t v = (int64_t)nb_node_data(n)[0];
            st = nb_st_add(w, nb_node_name(n), NB_DTYPE_I64, nd, shape, &v);
        } else {
            st = nb_st_add(w, nb_node_name(n), NB_DTYPE_F32, nd, shape, nb_node_data(n));
        }
        if (st != NB_OK) return st;
    }
    return NB_OK;
}

static nb_status meta_num(nb_st_writer *w, const char *key, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    return nb_st_set_meta(w, key, buf);
}

static nb_status add_training_state(nb_st_writer *w, nb_model *m, nb_trainer *t)
{
    nb_graph *g = nb_model_graph(m);
    const float *base = nb_graph_param_data(g);
    nb_status st = NB_OK;
    char name[256], buf[80];
    for (int k = 0; k < nb_optim_state_count(t->opt) && st == NB_OK; k++) {
        const float *state = nb_optim_state(t->opt, k);
        for (int i = 0; i < nb_graph_param_count(g) && st == NB_OK; i++) {
            nb_node *p = nb_graph_param(g, i);
            int64_t shape[NB_MAX_DIMS];
            int nd = nb_node_shape(p, shape);
            snprintf(name, sizeof name, OPT_PREFIX "%s.%s", nb_optim_state_name(t->opt, k), nb_node_name(p));
            st = nb_st_add(w, name, NB_DTYPE_F32, nd, shape, state + (nb_node_data(p) - base));
        }
    }
    const nb_train_config *c = &t->cfg;
    if (st == NB_OK) st = nb_st_set_meta(w, "optimizer", c->optimizer);
    if (st == NB_OK) st = nb_st_set_meta(w, "schedule", c->schedule);
    if (st == NB_OK) st = meta_num(w, "lr", c->lr);
    if (st == NB_OK) st = meta_num(w, "momentum", c->momentum);
    if (st == NB_OK) st = meta_num(w, "weight_decay", c->weight_decay);
    if (st == NB_OK) st = meta_num(w, "clip_norm", c->clip_norm);
    if (st == NB_OK) st = meta_num(w, "batch", c->batch);
    if (st == NB_OK) st = meta_num(w, "epochs", c->epochs);
    if (st == NB_OK) {
        snprintf(buf, sizeof buf, "%" PRIu64, c->seed);
        st = nb_st_set_meta(w, "seed", buf);
    }
    if (st == NB_OK) st = meta_num(w, "train_samples", (double)nb_dataset_count(t->d));
    if (st == NB_OK) st = meta_num(w, "epoch", t->epoch);
    if (st == NB_OK) st = meta_num(w, "batch_in_epoch", (double)t->batch_in_epoch);
    if (st == NB_OK) st = meta_num(w, "step", (double)t->step);
    if (st == NB_OK) st = meta_num(w, "optimizer_steps", (double)nb_optim_steps(t->opt));
    /* what a data-parallel run's bits depend on besides the above */
    if (st == NB_OK) st = meta_num(w, "batches_per_epoch", (double)t->batches);
    if (st == NB_OK) st = meta_num(w, "world_size", nb_comm_size(t->comm));
    if (st == NB_OK) st = meta_num(w, "sync_bn", (t->dist_flags & NB_DIST_SYNC_BN) != 0);
    for (int i = 0; i < 2 && st == NB_OK; i++) {
        if (!t->plan[i]) continue;
        rng_to_text(nb_plan_rng(t->plan[i]), buf, sizeof buf);
        st = nb_st_set_meta(w, i ? "rng_last_batch" : "rng", buf);
    }
    return st;
}

nb_status nb_checkpoint_save(const char *path, nb_model *m, nb_trainer *t, const char *const *extra)
{
    if (!path || !m) return nb_set_error(NB_ERR_ARG, "checkpoint_save: NULL path or model");
    if (t && t->m != m) return nb_set_error(NB_ERR_ARG, "checkpoint_save: the trainer belongs to another model");
    if (t && t->failed)
        return nb_set_error(NB_ERR_STATE, "checkpoint_save: the last training step failed part-way; "
                                          "there is no consistent state to save");
    static const char *const reserved[] = {"format", "spec", "optimizer", "schedule", "lr", "momentum",
                                           "weight_decay", "clip_norm", "batch", "epochs", "seed",
                                           "train_samples", "epoch", "batch_in_epoch", "step",
                                           "optimizer_steps", "rng", "rng_last_batch",
                                           "batches_per_epoch", "world_size", "sync_bn", NULL};
    for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        for (int k = 0; reserved[k]; k++)
            if (!strcmp(extra[i], reserved[k]))
                return nb_set_error(NB_ERR_ARG, "checkpoint_save: metadata key '%s' is nabla's own", extra[i]);
    /* a checkpoint is what a run falls back to: never one with broken weights */
    nb_graph *g = nb_model_graph(m);
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_node *n = nb_graph_node(g, i);
        if (!is_state(n)) continue;
        const float *v = nb_node_data(n);
        for (size_t k = 0; k < nb_node_numel(n); k++)
            if (!isfinite(v[k]))
                return nb_set_error(NB_ERR_NUMERIC, "checkpoint_save: not writing %s: '%s' element %zu is %s",
                                    path, nb_node_name(n), k, isnan(v[k]) ? "NaN" : "infinite");
    }
    nb_st_writer *w = nb_st_writer_create();
    if (!w) return NB_ERR_NOMEM;
    nb_status st = nb_st_set_meta(w, "format", "nabla-checkpoint-1");
    if (st == NB_OK) st = nb_st_set_meta(w, "spec", nb_model_spec(m));
    if (st == NB_OK) st = add_state_dict(w, m);
    if (st == NB_OK && t) st = add_training_state(w, m, t);
    for (int i = 0; extra && extra[i] && extra[i + 1] && st == NB_OK; i += 2)
        st = nb_st_set_meta(w, extra[i], extra[i + 1]);
    if (st == NB_OK) st = nb_st_write(w, path);
    nb_st_writer_free(w);
    return st;
}

/* Copies every state tensor of f into m, checking names, dtypes and shapes;
 * tensors the model does not have are an error too (strict, as PyTorch). */
static nb_status load_state_dict(const char *path, const nb_st_file *f, nb_model *m)
{
    nb_graph *g = nb_model_graph(m);
    int found = 0;
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_node *n = nb_graph_node(g, i);
        if (!is_state(n)) continue;
        nb_dtype dt;
        int nd;
        int64_t fs[NB_MAX_DIMS], ms[NB_MAX_DIMS];
        const void *data = nb_st_find(f, nb_node_name(n), &dt, &nd, fs);
        if (!data) return nb_set_error(NB_ERR_FORMAT, "%s: no tensor '%s' (the model needs it)", path, nb_node_name(n));
        int mnd = nb_node_shape(n, ms);
        int same = nd == mnd;
        for (int k = 0; same && k < nd; k++) same = fs[k] == ms[k];
        nb_dtype want = is_int64_buffer(nb_node_name(n)) ? NB_DTYPE_I64 : NB_DTYPE_F32;
        if (!same || dt != want) {
            nb_shape a = {nd, {0}}, b = {mnd, {0}};
            char sa[96], sb[96];
            for (int k = 0; k < nd; k++) a.d[k] = fs[k];
            for (int k = 0; k < mnd; k++) b.d[k] = ms[k];
            return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s' is %s %s, the model needs %s %s", path,
                                nb_node_name(n), dt == NB_DTYPE_I64 ? "I64" : "F32",
                                nb_shape_str(&a, sa, sizeof sa), want == NB_DTYPE_I64 ? "I64" : "F32",
                                nb_shape_str(&b, sb, sizeof sb));
        }
        if (want == NB_DTYPE_I64) {
            int64_t v;
            memcpy(&v, data, sizeof v);
            nb_node_data(n)[0] = (float)v;
        } else {
            memcpy(nb_node_data(n), data, nb_node_numel(n) * sizeof(float));
        }
        found++;
    }
    for (int i = 0; i < nb_st_count(f); i++) {
        const char *name = nb_st_name(f, i);
        if (strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX)) && !nb_graph_find(g, name))
            return nb_set_error(NB_ERR_FORMAT, "%s: tensor '%s' has no place in the model", path, name);
    }
    (void)found;
    return NB_OK;
}

nb_model *nb_checkpoint_load(const char *path)
{
    nb_st_file *f = nb_st_read(path);
    if (!f) return NULL;
    const char *spec = nb_st_meta(f, "spec");
    if (!spec) {
        nb_set_error(NB_ERR_FORMAT, "%s: not a nabla checkpoint (no 'spec' in its metadata)", path);
        nb_st_free(f);
        return NULL;
    }
    char source[300];
    snprintf(source, sizeof source, "%s (spec)", path);
    nb_model *m = nb_model_from_text(spec, source, 0);
    if (m && load_state_dict(path, f, m) != NB_OK) {
        nb_model_free(m);
        m = NULL;
    }
    nb_st_free(f);
    return m;
}

/* A whole non-negative number from metadata, or -1. */
static long meta_long(const nb_st_file *f, const char *key)
{
    const char *v = nb_st_meta(f, key);
    if (!v || !*v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < 0) ? -1 : x;
}

static int has_batchnorm(nb_graph *g)
{
    for (int i = 0; i < nb_graph_node_count(g); i++)
        if (!strcmp(nb_node_op(nb_graph_node(g, i)), "batchnorm")) return 1;
    return 0;
}

static nb_status resume_here(nb_trainer *t, const char *path);

nb_status nb_trainer_resume(nb_trainer *t, const char *path)
{
    if (!t || !path) return nb_set_error(NB_ERR_ARG, "trainer_resume: NULL argument");
    nb_status st = resume_here(t, path);
    if (!t->comm) return st;
    /* data-parallel: every rank resumed, from the same state */
    if ((st = nb_comm_agree(t->comm, st, "resuming from the checkpoint")) != NB_OK) return st;
    nb_graph *g = nb_model_graph(t->m);
    char pos[96];
    snprintf(pos, sizeof pos, "epoch %d batch %zu step %ld", t->epoch, t->batch_in_epoch, t->step);
    nb_comm_item same[2] = {{"the resumed position", pos, strlen(pos)},
                            {"the resumed weights", nb_graph_param_data(g), nb_graph_param_numel(g) * sizeof(float)}};
    return nb_comm_check_same(t->comm, same, 2);
}

static nb_status resume_here(nb_trainer *t, const char *path)
{
    nb_st_file *f = NULL;
    nb_status st = nb_st_read_ex(path, &f);
    if (st != NB_OK) return st;
    const char *spec = nb_st_meta(f, "spec"), *opt = nb_st_meta(f, "optimizer");
    long epoch = meta_long(f, "epoch"), step = meta_long(f, "step"), osteps = meta_long(f, "optimizer_steps");
    long batch = meta_long(f, "batch"), samples = meta_long(f, "train_samples");
    long in_epoch = meta_long(f, "batch_in_epoch");
    const char *seed = nb_st_meta(f, "seed");
    char want_seed[32];
    snprintf(want_seed, sizeof want_seed, "%" PRIu64, t->cfg.seed);
    nb_rng rng[2];
    nb_graph *g = nb_model_graph(t->m);

    /* check everything first, so a refused resume changes nothing */
    if (!spec || !opt || epoch < 0 || epoch > INT_MAX || step < 0 || osteps < 0 || batch < 0 || samples < 0 ||
        !seed || in_epoch < 0) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: no complete training state in this checkpoint (it cannot resume a run)", path);
        goto done;
    }
    if (strcmp(spec, nb_model_spec(t->m))) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: written for another model spec", path);
        goto done;
    }
    if (strcmp(opt, t->cfg.optimizer)) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: written with optimizer '%s', this run uses '%s'", path, opt,
                          t->cfg.optimizer);
        goto done;
    }
    if ((size_t)samples != nb_dataset_count(t->d) || batch != t->cfg.batch || strcmp(seed, want_seed)) {
        st = nb_set_error(NB_ERR_FORMAT, "%s: written for %ld training samples in batches of %ld with seed %s; "
                                         "this run has %zu samples, batches of %d, seed %s: the run would not "
                                         "continue exactly", path, samples, batch, seed, nb_dataset_count(t->d),
                          t->cfg.batch, want_seed);
        goto done;
    }
    /* a data-parallel run: batch norm with per-rank statistics depends on
     * how the batch is split, and the last batch may join the one before it */
    {
        long bpe = meta_long(f, "batches_per_epoch"), ws = meta_long(f, "world_size"), sbn = meta_long(f, "sync_bn");
        long want_ws = nb_comm_size(t->comm), want_sbn = (t->dist_flags & NB_DIST_SYNC_BN) != 0;
        if (ws < 0) ws = 1; /* written before data-parallel training existed */
        if (sbn < 0) sbn = 0;
        if (bpe >= 0 && (size_t)bpe != t->batches) {
            st = nb_set_error(NB_ERR_FORMAT, "%s: written for %ld batches per epoch (%ld rank%s); this run has "
                                             "%zu (%ld rank%s): the run would not continue exactly", path, bpe, ws,
                              ws == 1 ? "" : "s", t->batches, want_ws, want_ws == 1 ? "" : "s");
            goto done;
        }
        if (has_batchnorm(g) && (sbn != want_sbn || (!sbn && ws != want_ws))) {
            st = nb_set_error(NB_ERR_FORMAT, "%s: written by %ld rank%s with batch norm %s; this run has %ld "
                                             "rank%s with batch norm %s: the statistics would come from other "
                                             "samples, the run would not continue exactly", path, ws,
                              ws == 1 ? "" : "s", sbn ? "synchronised" : "per rank", want_ws,
                              want_ws == 1 ? "" : "s", want_sbn ? "synchronised" : "per rank");
            goto done;
        }
    }
    for (int i = 0; i < 2; i++) {
        const char *key = i ? "rng_last_batch" : "rng";
        if (t->plan[i] && !rng_from_text(nb_st_meta(f, key), &rng[i])) {
            st = nb_set_error(NB_ERR_FORMAT, "%s: missing or bad random state '%s'", path, key);
            goto done;
        }
    }
    for (int k = 0; k < nb_optim_state_count(t->opt); k++)
        for (int i = 0; i < nb_graph_param_count(g); i++) {
            nb_node *p = nb_graph_param(g, i);
            char name[256];
            snprintf(name, sizeof name, OPT_PREFIX "%s.%s", nb_optim_state_name(t->opt, k), nb_node_name(p));
            nb_dtype dt;
            int nd;
            int64_t shape[NB_MAX_DIMS];
            size_t count = 1;
            if (!nb_st_find(f, name, &dt, &nd, shape) || dt != NB_DTYPE_F32) {
                st = nb_set_error(NB_ERR_FORMAT, "%s: no optimizer state '%s' (F32)", path, name);
                goto done;
            }
            for (int d = 0; d < nd; d++) count *= (size_t)shape[d];
            if (count != nb_node_numel(p)) {
                st = nb_set_error(NB_ERR_FORMAT, "%s: optimizer state '%s' has %zu values, expected %zu", path,
                                  name, count, nb_node_numel(p));
                goto done;
            }
        }
    /* the state dict is checked tensor by tensor as it loads; on failure the
     * model may hold part of it, so load it into a copy first */
    size_t np = nb_graph_param_numel(g);
    float *saved = nb_alloc((np ? np : 1) * sizeof(float));
    if (!saved) {
        st = NB_ERR_NOMEM;
        goto done;
    }
    memcpy(saved, nb_graph_param_data(g), np * sizeof(float));
    if ((st = load_state_dict(path, f, t->m)) != NB_OK) {
        memcpy(nb_graph_param_data(g), saved, np * sizeof(float));
        nb_free(saved);
        goto done;
    }
    nb_free(saved);

    const float *base = nb_graph_param_data(g);
    for (int k = 0; k < nb_optim_state_count(t->opt); k++) {
        float *state = nb_optim_state(t->opt, k);
        for (int i = 0; i < nb_graph_param_count(g); i++) {
            nb_node *p = nb_graph_param(g, i);
            char name[256];
            snprintf(name, sizeof name, OPT_PREFIX "%s.%s", nb_optim_state_name(t->opt, k), nb_node_name(p));
            const void *data = nb_st_find(f, name, NULL, NULL, NULL);
            memcpy(state + (nb_node_data(p) - base), data, nb_node_numel(p) * sizeof(float));
        }
    }
    t->epoch = (int)epoch;
    t->step = step;
    t->batch_in_epoch = (size_t)in_epoch < t->batches ? (size_t)in_epoch : 0;
    t->failed = 0;
    nb_optim_set_steps(t->opt, osteps);
    for (int i = 0; i < 2; i++)
        if (t->plan[i]) *nb_plan_rng(t->plan[i]) = rng[i];
done:
    nb_st_free(f);
    return st;
}
