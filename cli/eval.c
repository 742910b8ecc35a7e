/*
 * eval.c - `nabla eval CKPT --data ...` (loss, accuracy, per-class table,
 * confusion matrix) and `nabla predict CKPT INPUT` (one line per sample).
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Loads a checkpoint's model (running on `threads` threads), the input
 * normalisation it was trained with, and its seed (synthetic sets are drawn
 * from it) and label column. */
static nb_model *load_ckpt(const char *path, long threads, double *mean, double *std, uint64_t *seed,
                           long *label_col)
{
    nb_st_file *f = nb_st_read(path);
    if (!f) return NULL;
    const char *mv = nb_st_meta(f, "norm_mean"), *sv = nb_st_meta(f, "norm_std");
    const char *sd = nb_st_meta(f, "seed"), *lc = nb_st_meta(f, "label_column");
    *mean = mv ? atof(mv) : 0;
    *std = sv ? atof(sv) : 1;
    if (!(*std > 0)) *std = 1;
    *seed = sd ? strtoull(sd, NULL, 10) : 1;
    if (lc && *label_col == -2) *label_col = atol(lc);
    nb_st_free(f);
    nb_model *m = nb_checkpoint_load(path);
    if (m && nb_graph_set_threads(nb_model_graph(m), (int)threads) != NB_OK) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}

/* Checks that everything printed reached stdout. */
static int finish_output(const char *cmd)
{
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail(cmd, "writing the output failed");
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv)
{
    cli_opt opts[] = {{"data", 0, NULL}, {"batch", 0, NULL}, {"label-column", 0, NULL}, {"threads", 0, NULL},
                      {NULL, 0, NULL}};
    cli_args a = {"eval", {0}, 0};
    int rc = cli_parse(argc, argv, 2, opts, &a);
    if (rc) return rc;
    long batch = 256, label_col = -2, threads = 0;
    if (a.npos != 1 || !cli_get(opts, "data")) {
        fprintf(stderr, "usage: nabla eval CKPT --data DIR|FILE|NAME [--batch N]\n");
        return EXIT_USAGE;
    }
    if (!cli_int(opts, "batch", 1, 1 << 20, &batch) || !cli_int(opts, "label-column", -1, 1 << 20, &label_col) ||
        !cli_int(opts, "threads", 0, 1024, &threads))
        return EXIT_USAGE;
    double mean, std;
    uint64_t seed;
    nb_model *m = load_ckpt(a.pos[0], threads, &mean, &std, &seed, &label_col);
    if (!m) return cli_fail_nb("eval");
    nb_dataset *d = cli_load_data(cli_get(opts, "data"), "test", label_col < -1 ? -1 : (int)label_col,
                                  !nb_model_is_classifier(m), seed);
    nb_eval_result r = {0};
    rc = EXIT_BAD;
    if (!d || nb_dataset_normalize(d, (float)mean, (float)std) != NB_OK ||
        nb_evaluate(m, d, (int)batch, &r) != NB_OK) {
        cli_fail_nb("eval");
        goto done;
    }
    printf("samples %zu\nloss %.6f\n", r.samples, r.loss);
    if (r.accuracy >= 0) {
        int C = r.classes;
        printf("accuracy %.4f\n\n%-6s %9s %9s %9s %7s\n", r.accuracy, "class", "precision", "recall", "f1", "count");
        for (int i = 0; i < C; i++) {
            size_t tp = r.confusion[(size_t)i * C + i], row = 0, col = 0;
            for (int j = 0; j < C; j++) row += r.confusion[(size_t)i * C + j], col += r.confusion[(size_t)j * C + i];
            if (!row && !col) continue;
            double p = col ? (double)tp / col : 0, rc2 = row ? (double)tp / row : 0;
            double f1 = p + rc2 > 0 ? 2 * p * rc2 / (p + rc2) : 0;
            printf("%-6d %9.4f %9.4f %9.4f %7zu\n", i, p, rc2, f1, row);
        }
        printf("\nconfusion matrix (rows: true class, columns: predicted)\n%6s", "");
        for (int j = 0; j < C; j++) printf(" %6d", j);
        printf("\n");
        for (int i = 0; i < C; i++) {
            printf("%6d", i);
            for (int j = 0; j < C; j++) printf(" %6zu", r.confusion[(size_t)i * C + j]);
            printf("\n");
        }
    }
    rc = finish_output("eval");
done:
    nb_eval_result_free(&r);
    nb_dataset_free(d);
    nb_model_free(m);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    cli_opt opts[] = {{"label-column", 0, NULL}, {"limit", 0, NULL}, {"threads", 0, NULL}, {NULL, 0, NULL}};
    cli_args a = {"predict", {0}, 0};
    int rc = cli_parse(argc, argv, 2, opts, &a);
    if (rc) return rc;
    long label_col = -2, limit = -1, threads = 0;
    if (a.npos != 2) {
        fprintf(stderr, "usage: nabla predict CKPT INPUT (an IDX directory, a CSV file or a synthetic set)\n");
        return EXIT_USAGE;
    }
    if (!cli_int(opts, "label-column", -1, 1 << 20, &label_col) || !cli_int(opts, "limit", 0, 2000000000L, &limit) ||
        !cli_int(opts, "threads", 0, 1024, &threads))
        return EXIT_USAGE;
    double mean, std;
    uint64_t seed;
    nb_model *m = load_ckpt(a.pos[0], threads, &mean, &std, &seed, &label_col);
    if (!m) return cli_fail_nb("predict");
    int classifier = nb_model_is_classifier(m);
    nb_dataset *d = cli_load_data(a.pos[1], "test", label_col < -1 ? -1 : (int)label_col, !classifier, seed);
    float *out = NULL;
    rc = EXIT_BAD;
    if (!d || nb_dataset_normalize(d, (float)mean, (float)std) != NB_OK) {
        cli_fail_nb("predict");
        goto done;
    }
    size_t n = nb_dataset_count(d), C = nb_model_output_size(m);
    if (limit >= 0 && (size_t)limit < n) n = (size_t)limit;
    int64_t ms[NB_MAX_DIMS];
    int mn = nb_model_input_shape(m, ms);
    size_t msize = 1;
    for (int i = 0; i < mn; i++) msize *= (size_t)ms[i];
    if (msize != nb_dataset_sample_size(d)) {
        cli_fail("predict", "%s: samples have %zu values, the model takes %zu", a.pos[1], nb_dataset_sample_size(d), msize);
        goto done;
    }
    if (!(out = calloc(n ? n * C : 1, sizeof *out))) {
        cli_fail("predict", "out of memory");
        goto done;
    }
    if (nb_model_predict(m, nb_dataset_features(d), n, out) != NB_OK) {
        cli_fail_nb("predict");
        goto done;
    }
    const float *y = nb_dataset_targets(d);
    printf(classifier ? "index,label,true_label,probabilities\n" : "index,prediction,target\n");
    for (size_t i = 0; i < n; i++) {
        const float *z = out + i * C;
        if (classifier) {
            size_t best = 0;
            double mx = z[0], sum = 0;
            for (size_t c = 1; c < C; c++) {
                if (z[c] > z[best]) best = c;
                if (z[c] > mx) mx = z[c];
            }
            for (size_t c = 0; c < C; c++) sum += exp(z[c] - mx);
            printf("%zu,%zu,%d,", i, best, (int)y[i]);
            for (size_t c = 0; c < C; c++) printf(c ? " %.4f" : "%.4f", exp(z[c] - mx) / sum);
            printf("\n");
        } else {
            size_t ts = nb_dataset_target_size(d);
            printf("%zu,", i);
            for (size_t c = 0; c < C; c++) printf(c ? " %.6g" : "%.6g", z[c]);
            printf(",");
            for (size_t c = 0; c < ts; c++) printf(c ? " %.6g" : "%.6g", y[i * ts + c]);
            printf("\n");
        }
    }
    rc = finish_output("predict");
done:
    free(out);
    nb_dataset_free(d);
    nb_model_free(m);
    return rc;
}
