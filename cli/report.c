/*
 * report.c - `nabla train ... --report FILE.html`: feeds the library's
 * training report (nb_report) as training goes - the metrics of every
 * epoch, the gradient norm of every layer (measured in the trainer's
 * per-step callback), a confusion matrix, test images or a decision
 * boundary - and rewrites the page atomically after every epoch.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TILES 30        /* image tiles shown */
#define MAX_WRONG 20        /* of which misclassified, at most */
#define TILE_POOL 1000      /* samples predicted to find them */
#define GRID 120            /* decision boundary: grid cells a side */
#define MAX_POINTS 1500     /* samples drawn over it */
#define GRAD_POINTS 200     /* gradient-norm samples over the whole run, about */

struct cli_report {
    nb_report *r;
    const char *path;
    nb_model *m;
    double mean, std;       /* the data's normalisation: raw = x * std + mean */
    /* gradient flow: parameter -> layer slot, norms summed over a window of steps */
    int nparams, nlayers, *slot;
    double *sq, *sum;
    long every, in_window;
};

static const char *const fashion_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

void cli_report_free(cli_report *c)
{
    if (!c) return;
    nb_report_free(c->r);
    free(c->slot);
    free(c->sq);
    free(c->sum);
    free(c);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

cli_report *cli_report_create(const char *path, nb_model *m, const char *spec_path, const char *source,
                              const nb_train_config *cfg, size_t samples, double mean, double std)
{
    char title[256], buf[256];
    snprintf(title, sizeof title, "%s on %s", base_name(spec_path), base_name(source));
    cli_report *c = calloc(1, sizeof *c);
    if (!c || !(c->r = nb_report_create(title))) {
        cli_fail("train", "out of memory");
        cli_report_free(c);
        return NULL;
    }
    c->path = path, c->m = m, c->mean = mean, c->std = std;
    nb_report *r = c->r;
    size_t total = 0;
    for (int i = 0; i < nb_model_layer_count(m); i++) {
        nb_layer_info li;
        if (nb_model_layer(m, i, &li) == NB_OK) total += li.params;
    }
    nb_status st = NB_OK;
    snprintf(buf, sizeof buf, "%d layers, %zu parameters", nb_model_layer_count(m), total);
    if (!st) st = nb_report_set_info(r, "model", spec_path);
    if (!st) st = nb_report_set_info(r, "network", buf);
    snprintf(buf, sizeof buf, "%s (%zu training samples)", source, samples);
    if (!st) st = nb_report_set_info(r, "data", buf);
    snprintf(buf, sizeof buf, "%s, learning rate %g, %s schedule, batch %d, %d epochs, seed %llu", cfg->optimizer,
             cfg->lr, cfg->schedule, cfg->batch, cfg->epochs, (unsigned long long)cfg->seed);
    if (!st) st = nb_report_set_info(r, "training", buf);
    if (!st && !strcmp(source, "fashion-mnist")) st = nb_report_set_class_names(r, 10, fashion_names);

    /* the layers that have parameters, and which layer owns each parameter */
    nb_graph *g = nb_model_graph(m);
    int L = nb_model_layer_count(m);
    c->nparams = nb_graph_param_count(g);
    c->slot = calloc((size_t)c->nparams + 1, sizeof *c->slot);
    c->sq = calloc((size_t)L + 1, sizeof *c->sq);
    c->sum = calloc((size_t)L + 1, sizeof *c->sum);
    const char *names[64];
    char name_buf[64][40];
    int index_of[64];
    if (!c->slot || !c->sq || !c->sum) st = NB_ERR_NOMEM;
    for (int i = 0; !st && i < L && c->nlayers < 64; i++) {
        nb_layer_info li;
        if (nb_model_layer(m, i, &li) != NB_OK || li.params == 0) continue;
        snprintf(name_buf[c->nlayers], sizeof name_buf[0], "%d %s", li.index, li.kind);
        names[c->nlayers] = name_buf[c->nlayers];
        index_of[c->nlayers++] = li.index;
    }
    for (int p = 0; !st && p < c->nparams; p++) {
        int idx = atoi(nb_node_name(nb_graph_param(g, p))); /* "3.weight" -> 3 */
        c->slot[p] = -1;
        for (int k = 0; k < c->nlayers; k++)
            if (index_of[k] == idx) c->slot[p] = k;
    }
    if (!st && c->nlayers) st = nb_report_set_layers(r, c->nlayers, names);
    long steps = (long)((samples + (size_t)cfg->batch - 1) / (size_t)cfg->batch) * cfg->epochs;
    c->every = steps / GRAD_POINTS > 1 ? steps / GRAD_POINTS : 1;
    if (st) {
        cli_fail_nb("train");
        cli_report_free(c);
        return NULL;
    }
    return c;
}

void cli_report_step(cli_report *c, const nb_train_stats *s, size_t epoch_samples)
{
    if (!c || !c->nlayers) return;
    nb_graph *g = nb_model_graph(c->m);
    memset(c->sq, 0, (size_t)c->nlayers * sizeof *c->sq);
    for (int p = 0; p < c->nparams; p++) {
        if (c->slot[p] < 0) continue;
        nb_node *n = nb_graph_param(g, p);
        const float *gr = nb_node_grad(n);
        size_t k = nb_node_numel(n);
        double acc = 0;
        for (size_t i = 0; i < k; i++) acc += (double)gr[i] * (double)gr[i];
        c->sq[c->slot[p]] += acc;
    }
    for (int l = 0; l < c->nlayers; l++) c->sum[l] += sqrt(c->sq[l]);
    c->in_window++;
    int epoch_end = s->samples >= epoch_samples;
    if (c->in_window < c->every && !epoch_end) return;
    for (int l = 0; l < c->nlayers; l++) c->sum[l] /= (double)c->in_window;
    double x = s->epoch + (epoch_samples ? (double)s->samples / (double)epoch_samples : 1);
    nb_report_add_grad_norms(c->r, x, c->sum); /* can only fail when out of memory: the point is lost */
    memset(c->sum, 0, (size_t)c->nlayers * sizeof *c->sum);
    c->in_window = 0;
}

static int argmax(const float *z, size_t C)
{
    size_t best = 0;
    for (size_t k = 1; k < C; k++)
        if (z[k] > z[best]) best = k;
    return (int)best;
}

/* Test images: predicts a pool of samples, keeps the first misclassified
 * ones and fills up with correct ones. */
static nb_status set_images(cli_report *c, const nb_dataset *d, const char *caption)
{
    int64_t s[NB_MAX_DIMS];
    nb_model_input_shape(c->m, s);  /* [C, H, W] */
    size_t n = nb_dataset_count(d), per = nb_dataset_sample_size(d), C = nb_model_output_size(c->m);
    if (n > TILE_POOL) n = TILE_POOL;
    float *out = malloc((n ? n : 1) * C * sizeof *out), *px = malloc(MAX_TILES * per * sizeof *px);
    int pred[MAX_TILES], truth[MAX_TILES], pick[MAX_TILES];
    nb_status st = NB_OK;
    if (!out || !px) {
        st = NB_ERR_NOMEM;
        goto done;
    }
    if ((st = nb_model_predict(c->m, nb_dataset_features(d), n, out)) != NB_OK) goto done;
    const float *y = nb_dataset_targets(d);
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n && k < MAX_TILES; i++) {
            int wrong = argmax(out + i * C, C) != (int)y[i];
            if (pass == 0 ? (wrong && k < MAX_WRONG) : !wrong) pick[k++] = (int)i;
        }
    for (int t = 0; t < k; t++) {
        memcpy(px + (size_t)t * per, nb_dataset_features(d) + (size_t)pick[t] * per, per * sizeof *px);
        pred[t] = argmax(out + (size_t)pick[t] * C, C);
        truth[t] = (int)y[pick[t]];
    }
    /* IDX pixels were scaled to [0, 1], then normalised */
    st = nb_report_set_images(c->r, k, (int)s[0], (int)s[1], (int)s[2], px, (float)((0 - c->mean) / c->std),
                              (float)((1 - c->mean) / c->std), pred, truth, caption);
done:
    free(out);
    free(px);
    return st;
}

/* Decision boundary: the model's class over a grid spanning both sets. */
static nb_status set_boundary(cli_report *c, const nb_dataset *fit, const nb_dataset *d, const char *caption)
{
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    const nb_dataset *sets[2] = {fit, d};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < nb_dataset_count(sets[k]); i++)
            for (int a = 0; a < 2; a++) {
                double v = nb_dataset_features(sets[k])[2 * i + (size_t)a] * c->std + c->mean;
                if (v < lo[a]) lo[a] = v;
                if (v > hi[a]) hi[a] = v;
            }
    double range[4];
    for (int a = 0; a < 2; a++) {
        if (!(hi[a] > lo[a])) lo[a] -= 1, hi[a] += 1;
        double pad = 0.06 * (hi[a] - lo[a]);
        range[2 * a] = lo[a] - pad, range[2 * a + 1] = hi[a] + pad;
    }
    size_t cells = (size_t)GRID * GRID, C = nb_model_output_size(c->m);
    size_t np = nb_dataset_count(d) < MAX_POINTS ? nb_dataset_count(d) : MAX_POINTS;
    float *xy = malloc(cells * 2 * sizeof *xy), *out = malloc(cells * C * sizeof *out);
    float *pts = malloc((np ? np : 1) * 2 * sizeof *pts);
    int *grid = malloc(cells * sizeof *grid), *lab = malloc((np ? np : 1) * sizeof *lab);
    nb_status st = NB_OK;
    if (!xy || !out || !pts || !grid || !lab) {
        st = NB_ERR_NOMEM;
        goto done;
    }
    for (int r = 0; r < GRID; r++)
        for (int q = 0; q < GRID; q++) {
            size_t i = (size_t)r * GRID + (size_t)q;
            double x = range[0] + (q + 0.5) * (range[1] - range[0]) / GRID;
            double y = range[2] + (r + 0.5) * (range[3] - range[2]) / GRID;
            xy[2 * i] = (float)((x - c->mean) / c->std);
            xy[2 * i + 1] = (float)((y - c->mean) / c->std);
        }
    if ((st = nb_model_predict(c->m, xy, cells, out)) != NB_OK) goto done;
    for (size_t i = 0; i < cells; i++) grid[i] = argmax(out + i * C, C);
    for (size_t i = 0; i < np; i++) {
        pts[2 * i] = (float)(nb_dataset_features(d)[2 * i] * c->std + c->mean);
        pts[2 * i + 1] = (float)(nb_dataset_features(d)[2 * i + 1] * c->std + c->mean);
        lab[i] = (int)nb_dataset_targets(d)[i];
    }
    st = nb_report_set_boundary(c->r, GRID, GRID, range, grid, np, pts, lab, caption);
done:
    free(xy);
    free(out);
    free(pts);
    free(grid);
    free(lab);
    return st;
}

int cli_report_epoch(cli_report *c, const nb_train_stats *s, double seconds, const nb_eval_result *vr,
                     const nb_eval_result *tr, const nb_dataset *fit, const nb_dataset *eval, const char *eval_name)
{
    nb_report_epoch e = {s->epoch + 1, s->loss, s->accuracy, vr != NULL, vr ? vr->loss : 0, vr ? vr->accuracy : -1,
                         tr != NULL, tr ? tr->loss : 0, tr ? tr->accuracy : -1, s->lr, seconds};
    nb_status st = nb_report_add_epoch(c->r, &e);
    int classifier = nb_model_is_classifier(c->m);
    char caption[128];
    snprintf(caption, sizeof caption, "From the %s (%zu samples) after epoch %d.", eval_name, nb_dataset_count(eval),
             s->epoch + 1);
    if (st == NB_OK && classifier) {
        /* the confusion matrix of the evaluation set: already measured, unless it is the training set */
        const nb_eval_result *er = tr ? tr : vr;
        nb_eval_result own = {0};
        if (!er && (st = nb_evaluate(c->m, eval, 256, &own)) == NB_OK) er = &own;
        if (st == NB_OK && er->classes > 0 && er->classes <= 100) st = nb_report_set_confusion(c->r, er->classes, er->confusion, caption);
        nb_eval_result_free(&own);
    }
    int64_t shape[NB_MAX_DIMS];
    int nd = nb_model_input_shape(c->m, shape);
    if (st == NB_OK && classifier && nd == 3 && (shape[0] == 1 || shape[0] == 3) && shape[1] <= 512 && shape[2] <= 512)
        st = set_images(c, eval, caption);
    if (st == NB_OK && classifier && nd == 1 && shape[0] == 2) st = set_boundary(c, fit, eval, caption);
    if (st == NB_OK) st = nb_report_write(c->r, c->path);
    return st == NB_OK ? EXIT_OK : cli_fail_nb("train");
}
