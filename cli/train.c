/*
 * train.c - `nabla train MODEL.nn --data ...`: read the spec, load and
 * normalise the data, train epoch by epoch with a progress bar (or plain
 * lines when stderr is not a terminal), evaluate, log, checkpoint.
 */
#include "cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    int tty;
    int epoch, epochs;
    size_t total;           /* samples per epoch */
    double start, last_draw;
    cli_report *rep;        /* --report: gradient norms are measured every step */
} progress;

/* The live bar: redrawn at most every 0.1 s, on one terminal line. */
/* Ctrl-C (SIGINT) or SIGTERM: finish the current step, then stop */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static int on_step(void *user, const nb_train_stats *s)
{
    progress *p = user;
    cli_report_step(p->rep, s, p->total);
    if (interrupted) return 1;
    if (!p->tty) return 0;
    double t = now();
    if (t - p->last_draw < 0.1 && s->samples < p->total) return 0;
    p->last_draw = t;
    double frac = p->total ? (double)s->samples / (double)p->total : 1, rate = s->samples / (t - p->start + 1e-9);
    double eta = rate > 0 ? (double)(p->total - s->samples) / rate : 0;
    char bar[21];
    int fill = (int)(frac * 20);
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %3.0f%%  loss %.4f", p->epoch, p->epochs, bar, 100 * frac, s->loss);
    if (s->accuracy >= 0) fprintf(stderr, "  acc %.4f", s->accuracy);
    fprintf(stderr, "  %.0f samples/s  ETA %d:%02d \033[K", rate, (int)eta / 60, (int)eta % 60);
    return 0;
}

/* The value of a metadata key of a checkpoint, copied into buf ("" if absent). */
static void ckpt_meta(const nb_st_file *f, const char *key, char *buf, size_t size)
{
    const char *v = f ? nb_st_meta(f, key) : NULL;
    snprintf(buf, size, "%s", v ? v : "");
}

/* A failure of a collective call (nb_trainer_set_comm, resume, an epoch, an
 * evaluation): unless the ranks could no longer communicate, every rank has
 * the same error, so rank 0 alone says it and the job ends normally. */
static void collective_fail(nb_comm *c, int *agreed)
{
    if (c && !nb_comm_failed(c)) {
        *agreed = 1;
        if (nb_comm_rank(c) == 0) cli_fail_nb("train");
    } else {
        cli_fail_nb("train");
    }
}

static void print_eval(FILE *out, const char *name, const nb_eval_result *r)
{
    fprintf(out, "  %s_loss %.4f", name, r->loss);
    if (r->accuracy >= 0) fprintf(out, "  %s_acc %.4f", name, r->accuracy);
}

int cmd_train(int argc, char **argv)
{
    cli_opt opts[] = {
        {"data", 0, NULL}, {"test", 0, NULL}, {"epochs", 0, NULL}, {"batch", 0, NULL},
        {"optimizer", 0, NULL}, {"lr", 0, NULL}, {"momentum", 0, NULL}, {"weight-decay", 0, NULL},
        {"schedule", 0, NULL}, {"clip-norm", 0, NULL}, {"seed", 0, NULL}, {"val-split", 0, NULL},
        {"out", 0, NULL}, {"resume", 0, NULL}, {"log", 0, NULL}, {"label-column", 0, NULL},
        {"no-normalize", 1, NULL}, {"quiet", 1, NULL}, {"report", 0, NULL}, {"detect-anomaly", 1, NULL},
        {"threads", 0, NULL}, {"sync-bn", 1, NULL}, {"mpi-timeout", 0, NULL}, {"mpi-bucket-kb", 0, NULL},
        {NULL, 0, NULL},
    };
    cli_args a = {"train", {0}, 0};
    int rc = cli_parse(argc, argv, 2, opts, &a);
    if (rc) return rc;
    if (a.npos != 1 || !cli_get(opts, "data")) {
        fprintf(stderr, "usage: nabla train MODEL.nn --data DIR|FILE|NAME [options] (see 'nabla help')\n");
        return EXIT_USAGE;
    }
    const char *spec_path = a.pos[0], *source = cli_get(opts, "data");
    const char *resume = cli_get(opts, "resume"), *out = cli_get(opts, "out"), *logp = cli_get(opts, "log");
    int quiet = cli_get(opts, "quiet") != NULL;

    /* settings: the command line, else the checkpoint being resumed, else defaults */
    nb_st_file *ck = NULL;
    if (resume && !(ck = nb_st_read(resume))) return cli_fail_nb("train");
    char optimizer[32], schedule[32], buf[64];
    long epochs = 10, batch = 64, seed = 1, label_col = -1, threads = 0, bucket_kb = 0;
    double lr = 0, momentum = 0, wd = -1, clip = 0, val = 0, mpi_timeout = 60;
    ckpt_meta(ck, "optimizer", optimizer, sizeof optimizer);
    ckpt_meta(ck, "schedule", schedule, sizeof schedule);
    if (ck) {
        ckpt_meta(ck, "batch", buf, sizeof buf), batch = *buf ? atol(buf) : batch;
        ckpt_meta(ck, "seed", buf, sizeof buf), seed = *buf ? atol(buf) : seed;
        ckpt_meta(ck, "epochs", buf, sizeof buf), epochs = *buf ? atol(buf) : epochs;
        ckpt_meta(ck, "lr", buf, sizeof buf), lr = *buf ? atof(buf) : lr;
        ckpt_meta(ck, "momentum", buf, sizeof buf), momentum = *buf ? atof(buf) : momentum;
        ckpt_meta(ck, "weight_decay", buf, sizeof buf), wd = *buf ? atof(buf) : wd;
        ckpt_meta(ck, "clip_norm", buf, sizeof buf), clip = *buf ? atof(buf) : clip;
        ckpt_meta(ck, "val_split", buf, sizeof buf), val = *buf ? atof(buf) : val;
        ckpt_meta(ck, "label_column", buf, sizeof buf), label_col = *buf ? atol(buf) : label_col;
    }
    if (cli_get(opts, "optimizer")) snprintf(optimizer, sizeof optimizer, "%s", cli_get(opts, "optimizer"));
    if (cli_get(opts, "schedule")) snprintf(schedule, sizeof schedule, "%s", cli_get(opts, "schedule"));
    if (!cli_int(opts, "epochs", 1, 1000000, &epochs) || !cli_int(opts, "batch", 1, 1 << 20, &batch) ||
        !cli_int(opts, "seed", 0, 0x7fffffffL, &seed) || !cli_int(opts, "label-column", -1, 1 << 20, &label_col) ||
        !cli_num(opts, "lr", 1e-12, 1e3, &lr) || !cli_num(opts, "momentum", 0, 0.999999, &momentum) ||
        !cli_num(opts, "weight-decay", 0, 1e3, &wd) || !cli_num(opts, "clip-norm", 0, 1e12, &clip) ||
        !cli_num(opts, "val-split", 0, 0.99, &val) || !cli_int(opts, "threads", 0, 1024, &threads) ||
        !cli_num(opts, "mpi-timeout", 0, 1e7, &mpi_timeout) || !cli_int(opts, "mpi-bucket-kb", 0, 1 << 22, &bucket_kb)) {
        nb_st_free(ck);
        return EXIT_USAGE;
    }

    /* one of several processes started by mpirun: join them (rank 0 alone
     * prints, logs and writes; the others only say what goes wrong) */
    int dist_failed, agreed = 0;
    nb_comm *comm = cli_dist_start("train", &dist_failed);
    if (dist_failed) {
        nb_st_free(ck);
        return EXIT_BAD;
    }
    const int rank = nb_comm_rank(comm), ranks = nb_comm_size(comm);
    nb_comm_set_timeout(comm, mpi_timeout);
    nb_comm_set_bucket_bytes(comm, (size_t)bucket_kb * 1024);
    if (rank != 0) quiet = 1;
    if (comm && !cli_get(opts, "threads")) threads = cli_dist_threads(); /* not one per CPU in every rank */

    nb_model *m = nb_model_from_file(spec_path, (uint64_t)seed);
    nb_dataset *train = NULL, *test = NULL, *trn = NULL, *vset = NULL;
    nb_trainer *t = NULL;
    FILE *log = NULL;
    cli_report *rep = NULL;
    nb_eval_result tr = {0}, vr = {0};
    rc = EXIT_BAD;
    if (!m) {
        cli_fail_nb("train");
        goto done;
    }
    if (nb_graph_set_threads(nb_model_graph(m), (int)threads) != NB_OK) {
        cli_fail_nb("train");
        goto done;
    }
    int regression = !nb_model_is_classifier(m);
    if (!(train = cli_load_data(source, "train", (int)label_col, regression, (uint64_t)seed))) {
        cli_fail_nb("train");
        goto done;
    }
    int none;
    test = cli_get(opts, "test") ? cli_load_data(cli_get(opts, "test"), "test", (int)label_col, regression, (uint64_t)seed)
                                 : cli_default_test(source, (int)label_col, regression, (uint64_t)seed, &none);
    if (!test && (cli_get(opts, "test") || !none)) {
        cli_fail_nb("train");
        goto done;
    }

    /* normalise with the training set's statistics (kept in the checkpoint) */
    double mean = 0, std = 1;
    nb_layer_info first;
    int ids = nb_model_layer(m, 0, &first) == NB_OK && !strcmp(first.kind, "embedding"); /* token ids stay ids */
    if (!cli_get(opts, "no-normalize") && !ids) {
        ckpt_meta(ck, "norm_mean", buf, sizeof buf);
        if (*buf) {
            mean = atof(buf);
            ckpt_meta(ck, "norm_std", buf, sizeof buf);
            std = atof(buf);
        } else {
            nb_dataset_stats(train, &mean, &std);
            if (!(std > 0)) std = 1;
        }
        if (nb_dataset_normalize(train, (float)mean, (float)std) != NB_OK ||
            (test && nb_dataset_normalize(test, (float)mean, (float)std) != NB_OK)) {
            cli_fail_nb("train");
            goto done;
        }
    }
    const nb_dataset *fit = train;
    if (val > 0) {
        if (nb_dataset_split(train, val, (uint64_t)seed, &trn, &vset) != NB_OK) {
            cli_fail_nb("train");
            goto done;
        }
        fit = trn;
    }

    nb_train_config cfg = {(int)batch, *optimizer ? optimizer : "adam", (float)lr, (float)momentum,
                           (float)wd, *schedule ? schedule : "constant", (float)clip, (int)epochs,
                           (uint64_t)seed};
    if (!(t = nb_trainer_create(m, fit, &cfg))) {
        cli_fail_nb("train");
        goto done;
    }
    nb_trainer_set_detect_anomaly(t, cli_get(opts, "detect-anomaly") != NULL);
    if (comm) {
        /* the same spec, data, settings everywhere (the trainer checks its own), then the test set */
        const nb_dataset *chk[2] = {test, vset};
        char size[2][96];
        for (int k = 0; k < 2; k++)
            snprintf(size[k], sizeof size[k], "samples %zu features %zu targets %zu", chk[k] ? nb_dataset_count(chk[k]) : 0,
                     chk[k] ? nb_dataset_sample_size(chk[k]) : 0, chk[k] ? nb_dataset_target_size(chk[k]) : 0);
        size_t tn = test ? nb_dataset_count(test) : 0;
        nb_comm_item items[] = {
            {"test data size", size[0], strlen(size[0])},
            {"test data", test ? nb_dataset_features(test) : NULL, test ? tn * nb_dataset_sample_size(test) * sizeof(float) : 0},
            {"test targets", test ? nb_dataset_targets(test) : NULL, test ? tn * nb_dataset_target_size(test) * sizeof(float) : 0},
            {"validation data size", size[1], strlen(size[1])},
        };
        if (nb_trainer_set_comm(t, comm, cli_get(opts, "sync-bn") ? NB_DIST_SYNC_BN : 0) != NB_OK ||
            nb_comm_check_same(comm, items, (int)(sizeof items / sizeof items[0])) != NB_OK) {
            collective_fail(comm, &agreed);
            goto done;
        }
    } else if (cli_get(opts, "sync-bn") && !quiet) {
        fprintf(stderr, "nabla train: --sync-bn has no effect in a single process\n");
    }
    if (resume && nb_trainer_resume(t, resume) != NB_OK) {
        collective_fail(comm, &agreed);
        goto done;
    }
    if (logp && rank == 0) {
        int fresh = !resume || access(logp, F_OK) != 0;
        if (!(log = fopen(logp, resume ? "a" : "w"))) {
            cli_fail("train", "%s: cannot write the metrics log", logp);
            goto done;
        }
        if (fresh)
            fprintf(log, "epoch,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,lr,seconds,samples_per_s\n");
    }
    char smean[32], sstd[32], sval[32], slabel[32];
    snprintf(smean, sizeof smean, "%.9g", mean);
    snprintf(sstd, sizeof sstd, "%.9g", std);
    snprintf(sval, sizeof sval, "%.9g", val);
    snprintf(slabel, sizeof slabel, "%ld", label_col);
    const char *extra[] = {"norm_mean", smean, "norm_std", sstd, "val_split", sval, "label_column", slabel, NULL};

    const nb_train_config *c = nb_trainer_config(t);
    if (cli_get(opts, "report") && rank == 0 &&
        !(rep = cli_report_create(cli_get(opts, "report"), m, spec_path, source, c, nb_dataset_count(fit), mean, std)))
        goto done;
    if (!quiet)
        fprintf(stderr, "nabla train: %s on %s: %zu samples%s, batch %d, %s lr %g, %d epochs\n", spec_path,
                source, nb_dataset_count(fit), vset ? " (+ validation)" : "", c->batch, c->optimizer, c->lr,
                c->epochs);
    if (!quiet && comm)
        fprintf(stderr, "nabla train: %d ranks, each %d or %d samples of every batch of %d%s\n", ranks,
                c->batch / ranks, (c->batch + ranks - 1) / ranks, c->batch,
                cli_get(opts, "sync-bn") ? ", batch norm synchronised" : "");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (int e = nb_trainer_epochs_done(t); e < c->epochs; e++) {
        progress pg = {!quiet && isatty(2), e + 1, c->epochs, nb_dataset_count(fit), now(), 0, rep};
        nb_train_stats s;
        if (nb_trainer_epoch(t, &s, on_step, &pg) != NB_OK) {
            if (pg.tty) fputc('\n', stderr);
            if (strcmp(nb_last_error(), "stopped")) {
                collective_fail(comm, &agreed);
                goto done;
            }
            /* stopped between two steps (every rank after the same one): the state is exact, save it */
            if (out && rank == 0 && nb_checkpoint_save(out, m, t, extra) != NB_OK) {
                cli_fail_nb("train");
                goto done;
            }
            if (out && rank == 0)
                fprintf(stderr, "nabla train: interrupted in epoch %d after step %ld; wrote %s (continue "
                                "with --resume %s)\n", e + 1, s.step, out, out);
            else if (rank == 0)
                fprintf(stderr, "nabla train: interrupted in epoch %d after step %ld; nothing saved (no --out)\n",
                        e + 1, s.step);
            agreed = 1;
            rc = 128 + (int)(interrupted ? interrupted : SIGINT);
            goto done;
        }
        double secs = now() - pg.start;
        if (pg.tty) fprintf(stderr, "\r\033[K");
        nb_eval_result_free(&tr);
        nb_eval_result_free(&vr);
        if ((vset && nb_evaluate_comm(comm, m, vset, 256, &vr) != NB_OK) ||
            (test && nb_evaluate_comm(comm, m, test, 256, &tr) != NB_OK)) {
            collective_fail(comm, &agreed);
            goto done;
        }
        if (!quiet) {
            fprintf(stderr, "epoch %d/%d  loss %.4f", e + 1, c->epochs, s.loss);
            if (s.accuracy >= 0) fprintf(stderr, "  acc %.4f", s.accuracy);
            if (vset) print_eval(stderr, "val", &vr);
            if (test) print_eval(stderr, "test", &tr);
            fprintf(stderr, "  %.1fs  %.0f samples/s\n", secs, (double)s.samples / secs);
        }
        /* the checkpoint first: after a crash between the two, a resumed run
         * redoes this epoch and must not find its row in the log already */
        if (out && rank == 0 && nb_checkpoint_save(out, m, t, extra) != NB_OK) {
            cli_fail_nb("train");
            goto done;
        }
        if (log) {
            fprintf(log, "%d,%.6f,%.6f,", e + 1, s.loss, s.accuracy);
            if (vset) fprintf(log, "%.6f,%.6f,", vr.loss, vr.accuracy);
            else fprintf(log, ",,");
            if (test) fprintf(log, "%.6f,%.6f,", tr.loss, tr.accuracy);
            else fprintf(log, ",,");
            fprintf(log, "%g,%.3f,%.1f\n", s.lr, secs, (double)s.samples / secs);
            fflush(log);
        }
        if (rep && cli_report_epoch(rep, &s, secs, vset ? &vr : NULL, test ? &tr : NULL, fit, test ? test : vset ? vset : fit,
                                    test ? "test set" : vset ? "validation set" : "training set") != EXIT_OK)
            goto done;
    }
    if (test) {
        if (!tr.samples && nb_evaluate_comm(comm, m, test, 256, &tr) != NB_OK) {
            collective_fail(comm, &agreed);
            goto done;
        }
        if (rank != 0) {
        } else if (tr.accuracy >= 0) printf("test accuracy %.4f  loss %.4f  (%zu samples)\n", tr.accuracy, tr.loss, tr.samples);
        else printf("test loss %.6f  (%zu samples)\n", tr.loss, tr.samples);
    }
    if (out && !quiet) fprintf(stderr, "nabla train: wrote %s\n", out);
    if (rep && !quiet) fprintf(stderr, "nabla train: wrote %s\n", cli_get(opts, "report"));
    rc = (fflush(stdout) != 0 || ferror(stdout)) ? cli_fail("train", "writing the output failed") : EXIT_OK;
done:
    nb_eval_result_free(&tr);
    nb_eval_result_free(&vr);
    if (log && fclose(log) != 0 && rc == EXIT_OK) rc = cli_fail("train", "%s: write error", logp);
    cli_report_free(rep);
    nb_trainer_free(t);
    nb_dataset_free(trn);
    nb_dataset_free(vset);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_model_free(m);
    nb_st_free(ck);
    if (comm) {
        /* a rank that failed alone, or ranks that can no longer talk: end the whole job */
        if (rc != EXIT_OK && (!agreed || nb_comm_failed(comm))) cli_dist_abort(comm, rc);
        nb_comm_free(comm);
        cli_rank = -1;
    }
    return rc;
}
