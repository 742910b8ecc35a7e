/*
 * test_model.c - model specs (parsing, shapes, errors that quote the line,
 * PyTorch names and initialisation), the trainer (learning, determinism,
 * no sample dropped) and checkpoints (round trip, exact resume).
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

NB_TEST(test_model_parse_cnn)
{
    const char *spec = "# a comment line\n"
                       "input 1 12 12\n"
                       "conv2d 4 kernel=3 pad=1   # trailing comment\n"
                       "batchnorm\n"
                       "relu\n"
                       "maxpool 2\n"
                       "\n"
                       "conv2d 6 kernel=3x1 stride=2 bias=false\n"
                       "globalavgpool\n"
                       "flatten\n"
                       "dropout 0.25\n"
                       "linear 10\n"
                       "loss softmax_cross_entropy smoothing=0.1\n";
    nb_model *m = nb_model_from_text(spec, "cnn.nn", 7);
    CHECK_PTR(m);
    if (!m) return;
    CHECK(nb_model_layer_count(m) == 9);
    CHECK(nb_model_is_classifier(m));
    nb_layer_info li;
    CHECK_OK(nb_model_layer(m, 0, &li));
    CHECK(!strcmp(li.kind, "conv2d") && li.index == 0 && li.line == 3 && li.params == 4 * 9 + 4);
    CHECK(li.ndim == 3 && li.shape[0] == 4 && li.shape[1] == 12 && li.shape[2] == 12);
    CHECK_OK(nb_model_layer(m, 4, &li)); /* conv2d 6 kernel=3x1 stride=2 on [4,6,6]: [6,2,3] */
    CHECK(li.index == 4 && li.ndim == 3 && li.shape[0] == 6 && li.shape[1] == 2 && li.shape[2] == 3);
    CHECK(li.params == 6 * 4 * 3);
    CHECK_OK(nb_model_layer(m, 5, &li));
    CHECK(!strcmp(li.kind, "globalavgpool") && li.shape[0] == 6 && li.shape[1] == 1 && li.shape[2] == 1);
    nb_graph *g = nb_model_graph(m);
    /* names follow torch.nn.Sequential's state dict */
    CHECK(nb_graph_find(g, "0.weight") && nb_graph_find(g, "0.bias"));
    CHECK(nb_graph_find(g, "1.weight") && nb_graph_find(g, "1.running_mean"));
    CHECK(nb_graph_find(g, "1.running_var") && nb_graph_find(g, "1.num_batches_tracked"));
    CHECK(nb_graph_find(g, "4.weight") && !nb_graph_find(g, "4.bias"));
    CHECK(nb_graph_find(g, "8.weight") && nb_graph_find(g, "8.bias"));
    int64_t s[NB_MAX_DIMS];
    CHECK(nb_node_shape(nb_graph_find(g, "8.weight"), s) == 2 && s[0] == 10 && s[1] == 6);
    /* batchnorm starts as the identity, running_var at 1 */
    CHECK(nb_node_data(nb_graph_find(g, "1.weight"))[0] == 1.0f);
    CHECK(nb_node_data(nb_graph_find(g, "1.running_var"))[3] == 1.0f);
    CHECK(!strcmp(nb_model_spec(m), spec));
    nb_model_free(m);
}

NB_TEST(test_model_init_like_pytorch)
{
    /* nn.Linear(in, out): weight and bias uniform in +-1/sqrt(in) */
    nb_model *m = nb_model_from_text("input 100\nlinear 50\nlinear 3 init=zeros\nloss mse\n", "mlp.nn", 3);
    CHECK_PTR(m);
    if (!m) return;
    nb_graph *g = nb_model_graph(m);
    const float *w = nb_node_data(nb_graph_find(g, "0.weight")), *b = nb_node_data(nb_graph_find(g, "0.bias"));
    double lo = 1, hi = -1, sum = 0;
    for (int i = 0; i < 5000; i++) {
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
        sum += w[i];
    }
    CHECK(lo >= -0.1 && hi <= 0.1 && lo < -0.098 && hi > 0.098 && fabs(sum / 5000) < 0.005);
    for (int i = 0; i < 50; i++) CHECK(fabsf(b[i]) <= 0.1f);
    const float *w1 = nb_node_data(nb_graph_find(g, "1.weight"));
    for (int i = 0; i < 150; i++) CHECK(w1[i] == 0.0f);
    /* same seed, same weights; another seed, other weights */
    nb_model *m2 = nb_model_from_text(nb_model_spec(m), "mlp.nn", 3);
    nb_model *m3 = nb_model_from_text(nb_model_spec(m), "mlp.nn", 4);
    size_t n = nb_graph_param_numel(g);
    CHECK(!memcmp(nb_graph_param_data(g), nb_graph_param_data(nb_model_graph(m2)), n * sizeof(float)));
    CHECK(memcmp(nb_graph_param_data(g), nb_graph_param_data(nb_model_graph(m3)), n * sizeof(float)));
    CHECK(!nb_model_is_classifier(m));
    nb_model_free(m);
    nb_model_free(m2);
    nb_model_free(m3);
}

/* Each bad spec must fail with a message holding every fragment listed. */
NB_TEST(test_model_spec_errors)
{
    static const struct { const char *spec, *want1, *want2; } cases[] = {
        {"", "empty model spec", "bad.nn"},
        {"# only a comment\n", "empty model spec", "bad.nn"},
        {"linear 10\nloss mse\n", "bad.nn:1", "first line must be 'input'"},
        {"input 4\nlinaer 10\nloss mse\n", "bad.nn:2: 'linaer 10'", "unknown layer 'linaer'"},
        {"input 4\nlinear\nloss mse\n", "bad.nn:2", "linear takes 1 positional argument, got 0"},
        {"input 4\nlinear ten\nloss mse\n", "bad.nn:2", "'ten' is not a number"},
        {"input 4\nlinear 2.5\nloss mse\n", "bad.nn:2", "whole number"},
        {"input 4\nlinear 0\nloss mse\n", "bad.nn:2", "outside"},
        {"input 4\nlinear 3 bais=false\nloss mse\n", "bad.nn:2", "unknown option 'bais'"},
        {"input 4\nlinear 3 bias=maybe\nloss mse\n", "bad.nn:2", "expected true or false"},
        {"input 4\nrelu slope=2\nloss mse\n", "bad.nn:2", "relu takes none"},
        {"input 4\nlinear 3\n", "bad.nn:2", "last line must be 'loss"},
        {"input 4\nloss mse\nlinear 3\n", "bad.nn:3", "nothing can follow"},
        {"input 4\ninput 3\nlinear 3\nloss mse\n", "bad.nn:2", "only the first line"},
        {"input 4\nloss mse\n", "bad.nn:2", "no layers"},
        {"input 4\nlinear 3\nloss hinge\n", "bad.nn:3", "unknown loss 'hinge'"},
        {"input 784\nconv2d 8 kernel=3\nloss mse\n", "bad.nn:2", "[channels, height, width]"},
        {"input 1 4 4\nconv2d 8\nloss mse\n", "bad.nn:2", "missing kernel"},
        {"input 1 4 4\nconv2d 8 kernel=5\nloss mse\n", "bad.nn:2: 'conv2d 8 kernel=5'", "conv2d"},
        {"input 1 4 4\nmaxpool 8\nloss mse\n", "bad.nn:2", "max_pool2d"},
        {"input 3 8 8\nconv2d 4 kernel=3 groups=2\nloss mse\n", "bad.nn:2", "groups=2 must divide"},
        {"input 1 28 28\nlinear 10\nloss softmax_cross_entropy\n", "bad.nn:3", "[classes]"},
        {"input 4\nlinear 3\nloss softmax_cross_entropy smoothing=1.5\n", "bad.nn:3", "smoothing"},
        {"input 4\ndropout 1.5\nlinear 2\nloss mse\n", "bad.nn:2", "outside"},
        {"input 4\nlinear 3 init=magic\nloss mse\n", "bad.nn:2", "init=magic"},
        {"input 4\nlinear 3 bias=\nloss mse\n", "bad.nn:2", "has no value"},
        {"input 4\x01\nlinear 3\nloss mse\n", "bad.nn:1", "control character"},
        {"input 4\nlinear 3 # caf\xe9\nloss mse\n", "bad.nn:2", "not valid UTF-8"},
        {"input 4\nlinear 3 bias=false bias=true\nloss mse\n", "bad.nn:2", "'bias' is given twice"},
        {"input 4\ndropout 0.3 p=0.7\nlinear 3\nloss mse\n", "bad.nn:2", "given twice"},
        {"input 4\nlinear 3\nloss mse smoothing=0.1\n", "bad.nn:3", "softmax_cross_entropy only"},
        {"input 4\nlinear 3\nloss l1 delta=2\n", "bad.nn:3", "huber only"},
        {"input 65536\nlinear 65536\nloss mse\n", "bad.nn:2", "more than 134217728 parameters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_model *m = nb_model_from_text(cases[i].spec, "bad.nn", 1);
        if (m) {
            nb_test_fail(__FILE__, __LINE__, "spec %zu was accepted: %s", i, cases[i].spec);
            nb_model_free(m);
            continue;
        }
        const char *e = nb_last_error();
        if (!has(e, cases[i].want1) || !has(e, cases[i].want2))
            nb_test_fail(__FILE__, __LINE__, "spec %zu: message '%s' lacks '%s' or '%s'", i, e, cases[i].want1,
                         cases[i].want2);
    }
    CHECK(nb_model_from_file("/nonexistent/model.nn", 1) == NULL);
    CHECK(has(nb_last_error(), "/nonexistent/model.nn") && has(nb_last_error(), "No such file"));
}

/* ---- training ---- */

static const char *spiral_spec = "input 2\n"
                                 "linear 32\n"
                                 "batchnorm\n"
                                 "relu\n"
                                 "dropout 0.1\n"
                                 "linear 32\n"
                                 "tanh\n"
                                 "linear 3\n"
                                 "loss softmax_cross_entropy\n";

static void train_epochs(nb_trainer *t, int n)
{
    for (int e = 0; e < n; e++) CHECK_OK(nb_trainer_epoch(t, NULL, NULL, NULL));
}

NB_TEST(test_trainer_learns_and_repeats)
{
    nb_dataset *d = nb_dataset_synthetic("spiral", 300, 5);
    CHECK_PTR(d);
    float final[2][2000];
    size_t np = 0;
    for (int run = 0; run < 2; run++) {
        nb_model *m = nb_model_from_text(spiral_spec, "spiral.nn", 9);
        nb_train_config c = {0};
        c.batch = 32; /* 300 = 9 x 32 + 12: the last short batch is kept */
        c.optimizer = "adam";
        c.lr = 0.01f;
        c.epochs = 60;
        c.seed = 11;
        c.weight_decay = -1;
        nb_trainer *t = nb_trainer_create(m, d, &c);
        CHECK_PTR(t);
        if (!t) return;
        nb_train_stats s;
        CHECK_OK(nb_trainer_epoch(t, &s, NULL, NULL));
        CHECK(s.samples == 300 && s.step == 10 && s.accuracy >= 0 && s.accuracy <= 1);
        train_epochs(t, 59);
        nb_eval_result r;
        CHECK_OK(nb_evaluate(m, d, 64, &r));
        if (run == 0 && !(r.accuracy > 0.9))
            nb_test_fail(__FILE__, __LINE__, "spiral accuracy %.3f after 60 epochs", r.accuracy);
        size_t sum = 0;
        for (int i = 0; i < r.classes * r.classes; i++) sum += r.confusion[i];
        CHECK(r.samples == 300 && sum == 300 && r.classes == 3);
        nb_eval_result_free(&r);
        np = nb_graph_param_numel(nb_model_graph(m));
        CHECK(np <= 2000);
        memcpy(final[run], nb_graph_param_data(nb_model_graph(m)), np * sizeof(float));
        nb_trainer_free(t);
        nb_model_free(m);
    }
    CHECK(memcmp(final[0], final[1], np * sizeof(float)) == 0); /* bit for bit */
    nb_dataset_free(d);
}

NB_TEST(test_trainer_checks_data)
{
    nb_dataset *d = nb_dataset_synthetic("spiral", 30, 1);
    nb_model *m = nb_model_from_text("input 3\nlinear 3\nloss softmax_cross_entropy\n", "m.nn", 1);
    CHECK(nb_trainer_create(m, d, NULL) == NULL);
    CHECK(has(nb_last_error(), "[2]") && has(nb_last_error(), "[3]"));
    nb_model_free(m);
    m = nb_model_from_text("input 2\nlinear 2\nloss softmax_cross_entropy\n", "m.nn", 1);
    CHECK(nb_trainer_create(m, d, NULL) == NULL);
    CHECK(has(nb_last_error(), "3 classes") && has(nb_last_error(), "outputs 2"));
    nb_model_free(m);
    m = nb_model_from_text("input 2\nlinear 3\nloss mse\n", "m.nn", 1);
    nb_train_config c = {0};
    c.optimizer = "adamax";
    CHECK(nb_trainer_create(m, d, &c) == NULL); /* a classifier's data for a regression model */
    nb_model_free(m);
    nb_dataset_free(d);
}

/* N epochs, checkpoint, a new process-like restart from the file, M more
 * epochs: the same bits as N + M epochs in one go. Dropout (random masks),
 * batchnorm (running statistics), Adam (moments) and a short last batch
 * (a second plan with its own generator) all have to survive the trip. */
NB_TEST(test_checkpoint_resume_is_exact)
{
    char path[] = "/tmp/nabla-ckpt-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    nb_dataset *d = nb_dataset_synthetic("spiral", 150, 2);
    nb_train_config c = {0};
    c.batch = 32;
    c.optimizer = "adamw";
    c.lr = 0.01f;
    c.weight_decay = -1;
    c.schedule = "cosine";
    c.clip_norm = 1.0f;
    c.epochs = 6;
    c.seed = 3;
    /* straight through */
    nb_model *a = nb_model_from_text(spiral_spec, "s.nn", 4);
    nb_trainer *ta = nb_trainer_create(a, d, &c);
    CHECK_PTR(ta);
    if (!ta) return;
    train_epochs(ta, 6);
    /* 2 epochs, save, resume in fresh objects, 4 more */
    nb_model *b = nb_model_from_text(spiral_spec, "s.nn", 4);
    nb_trainer *tb = nb_trainer_create(b, d, &c);
    train_epochs(tb, 2);
    CHECK_OK(nb_checkpoint_save(path, b, tb, (const char *const[]){"note", "hello", NULL}));
    nb_trainer_free(tb);
    nb_model_free(b);
    nb_model *r = nb_model_from_text(spiral_spec, "s.nn", 99); /* different init: all must come from the file */
    nb_trainer *tr = nb_trainer_create(r, d, &c);
    CHECK_OK(nb_trainer_resume(tr, path));
    CHECK(nb_trainer_epochs_done(tr) == 2);
    train_epochs(tr, 4);
    nb_graph *ga = nb_model_graph(a), *gr = nb_model_graph(r);
    size_t n = nb_graph_param_numel(ga);
    CHECK(memcmp(nb_graph_param_data(ga), nb_graph_param_data(gr), n * sizeof(float)) == 0);
    const char *bufs[] = {"1.running_mean", "1.running_var", "1.num_batches_tracked"};
    for (int i = 0; i < 3; i++) {
        nb_node *x = nb_graph_find(ga, bufs[i]), *y = nb_graph_find(gr, bufs[i]);
        CHECK(memcmp(nb_node_data(x), nb_node_data(y), nb_node_numel(x) * sizeof(float)) == 0);
    }
    CHECK(nb_node_data(nb_graph_find(ga, "1.num_batches_tracked"))[0] == 6 * 5);
    /* the checkpoint alone rebuilds the model */
    nb_model *l = nb_checkpoint_load(path);
    CHECK_PTR(l);
    nb_st_file *f = nb_st_read(path);
    CHECK_PTR(f);
    if (f) {
        CHECK(nb_st_meta(f, "note") && !strcmp(nb_st_meta(f, "note"), "hello"));
        CHECK(nb_st_meta(f, "optimizer") && !strcmp(nb_st_meta(f, "optimizer"), "adamw"));
        nb_dtype dt;
        int nd;
        int64_t s[NB_MAX_DIMS];
        CHECK(nb_st_find(f, "1.num_batches_tracked", &dt, &nd, s) && dt == NB_DTYPE_I64 && nd == 0);
        CHECK(nb_st_find(f, "optimizer.exp_avg.0.weight", &dt, &nd, s) && nd == 2 && s[0] == 32 && s[1] == 2);
        nb_st_free(f);
    }
    /* resuming into another spec or optimizer is refused */
    nb_model *o = nb_model_from_text("input 2\nlinear 3\nloss softmax_cross_entropy\n", "o.nn", 1);
    nb_trainer *to = nb_trainer_create(o, d, &c);
    CHECK(nb_trainer_resume(to, path) == NB_ERR_FORMAT && has(nb_last_error(), "another model spec"));
    nb_trainer_free(to);
    c.optimizer = "adam";
    to = nb_trainer_create(l, d, &c);
    CHECK(nb_trainer_resume(to, path) == NB_ERR_FORMAT && has(nb_last_error(), "'adamw'"));
    nb_trainer_free(to);
    nb_model_free(o);
    nb_model_free(l);
    nb_trainer_free(ta);
    nb_trainer_free(tr);
    nb_model_free(a);
    nb_model_free(r);
    nb_dataset_free(d);
    unlink(path);
}

NB_TEST(test_model_predict_matches_eval)
{
    nb_dataset *d = nb_dataset_synthetic("circles", 100, 1);
    nb_model *m = nb_model_from_text("input 2\nlinear 8\nrelu\nlinear 2\nloss softmax_cross_entropy\n", "c.nn", 2);
    float *out = malloc(100 * 2 * sizeof(float));
    CHECK_OK(nb_model_predict(m, nb_dataset_features(d), 100, out));
    nb_eval_result r;
    CHECK_OK(nb_evaluate(m, d, 7, &r)); /* chunks of 7: a short last chunk */
    size_t ok = 0;
    for (int i = 0; i < 100; i++) ok += (out[2 * i + 1] > out[2 * i]) == (nb_dataset_targets(d)[i] == 1.0f);
    CHECK_NEAR(r.accuracy, ok / 100.0, 1e-12);
    nb_eval_result_free(&r);
    free(out);
    nb_model_free(m);
    nb_dataset_free(d);
}

NB_TEST(test_init_distributions)
{
    /* each initialiser's spread against its formula, over 40000 draws */
    static float x[40000];
    const double fan_in = 200, fan_out = 50;
    static const struct { nb_init_kind kind; double value, std; } cases[] = {
        {NB_INIT_UNIFORM_FANIN, 0, 0.070710678 / 1.7320508},  /* U(+-1/sqrt(200)): std a/sqrt(3) */
        {NB_INIT_XAVIER_UNIFORM, 0, 0.154919334 / 1.7320508}, /* a = sqrt(6/250) */
        {NB_INIT_XAVIER_NORMAL, 0, 0.089442719},               /* sqrt(2/250) */
        {NB_INIT_HE_UNIFORM, 0, 0.173205081 / 1.7320508},     /* a = sqrt(6/200) */
        {NB_INIT_HE_NORMAL, 0, 0.1},                          /* sqrt(2/200) */
        {NB_INIT_NORMAL, 0.5, 0.5},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        nb_rng r;
        nb_rng_seed(&r, 10 + c);
        nb_init_fill(x, 40000, cases[c].kind, fan_in, fan_out, cases[c].value, &r);
        double s = 0, s2 = 0;
        for (int i = 0; i < 40000; i++) s += x[i], s2 += (double)x[i] * x[i];
        double mean = s / 40000, std = sqrt(s2 / 40000 - mean * mean);
        if (!(fabs(mean) < 0.02 * cases[c].std * 10 && fabs(std / cases[c].std - 1) < 0.02))
            nb_test_fail(__FILE__, __LINE__, "init %d: mean %g std %g, expected std %g", (int)cases[c].kind,
                         mean, std, cases[c].std);
    }
    nb_rng r;
    nb_rng_seed(&r, 1);
    nb_init_fill(x, 10, NB_INIT_CONSTANT, 0, 0, 0.25, &r);
    CHECK(x[0] == 0.25f && x[9] == 0.25f);
    nb_init_fill(x, 10, NB_INIT_ZEROS, 0, 0, 0, &r);
    CHECK(x[3] == 0.0f);
    CHECK(nb_init_kind_from_name("he_normal") == NB_INIT_HE_NORMAL);
    CHECK(nb_init_kind_from_name("glorot") == -1);
}

NB_TEST(test_trainer_batchnorm_lone_last_sample)
{
    /* 129 samples in batches of 64 leave one: batchnorm cannot use a batch
     * of one, so it joins the batch before (the epoch still sees all 129) */
    nb_dataset *d = nb_dataset_synthetic("circles", 129, 3);
    nb_model *m = nb_model_from_text("input 2\nlinear 8\nbatchnorm\nrelu\nlinear 2\nloss softmax_cross_entropy\n",
                                     "bn.nn", 1);
    nb_train_config c = {0};
    c.batch = 64;
    c.optimizer = "sgd";
    nb_trainer *t = nb_trainer_create(m, d, &c);
    CHECK_PTR(t);
    nb_train_stats s;
    if (t) {
        CHECK_OK(nb_trainer_epoch(t, &s, NULL, NULL));
        CHECK(s.samples == 129 && s.step == 2);
    }
    nb_trainer_free(t);
    nb_model_free(m);
    nb_dataset_free(d);
}

static int stop_at_two(void *user, const nb_train_stats *s)
{
    (void)user;
    return s->step == 2;
}

NB_TEST(test_checkpoint_mid_epoch_and_mismatch)
{
    char path[] = "/tmp/nabla-ckpt2-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    nb_dataset *d = nb_dataset_synthetic("spiral", 90, 2);
    nb_model *m = nb_model_from_text(spiral_spec, "s.nn", 4);
    nb_train_config c = {0};
    c.batch = 16;
    c.optimizer = "adam";
    c.seed = 8;
    nb_trainer *t = nb_trainer_create(m, d, &c);
    /* stopped after two steps of the first epoch (as on Ctrl-C): the
     * checkpoint holds that exact state, and a resumed run finishes the epoch
     * with the same bits as a run that was never stopped */
    CHECK(nb_trainer_epoch(t, NULL, stop_at_two, NULL) == NB_ERR_STATE);
    CHECK_OK(nb_checkpoint_save(path, m, t, NULL));
    CHECK_OK(nb_trainer_epoch(t, NULL, NULL, NULL)); /* the rest of the epoch */
    CHECK(nb_trainer_epochs_done(t) == 1);
    nb_model *m2 = nb_model_from_text(spiral_spec, "s.nn", 5);
    nb_trainer *tr = nb_trainer_create(m2, d, &c);
    CHECK_OK(nb_trainer_resume(tr, path));
    nb_train_stats s2;
    CHECK_OK(nb_trainer_epoch(tr, &s2, NULL, NULL));
    CHECK(s2.step == 6 && s2.samples == 90 - 32); /* 6 batches per epoch, 2 done before */
    nb_graph *g1 = nb_model_graph(m), *g2 = nb_model_graph(m2);
    CHECK(!memcmp(nb_graph_param_data(g1), nb_graph_param_data(g2), nb_graph_param_numel(g1) * sizeof(float)));
    nb_trainer_free(tr);
    nb_model_free(m2);
    CHECK_OK(nb_checkpoint_save(path, m, t, NULL));
    CHECK(nb_checkpoint_save(path, m, t, (const char *const[]){"spec", "x", NULL}) == NB_ERR_ARG);
    /* another batch size, seed or data size would not continue the run exactly */
    nb_train_config c2 = c;
    c2.batch = 32;
    nb_trainer *t2 = nb_trainer_create(m, d, &c2);
    CHECK(nb_trainer_resume(t2, path) == NB_ERR_FORMAT && has(nb_last_error(), "batches of 16"));
    nb_trainer_free(t2);
    c2 = c;
    c2.seed = 9;
    t2 = nb_trainer_create(m, d, &c2);
    CHECK(nb_trainer_resume(t2, path) == NB_ERR_FORMAT && has(nb_last_error(), "seed 8"));
    nb_trainer_free(t2);
    nb_dataset *d2 = nb_dataset_synthetic("spiral", 60, 2);
    t2 = nb_trainer_create(m, d2, &c);
    CHECK(nb_trainer_resume(t2, path) == NB_ERR_FORMAT && has(nb_last_error(), "90 training samples"));
    nb_trainer_free(t2);
    nb_dataset_free(d2);
    /* a trainer of another model cannot be saved with this one */
    nb_model *o = nb_model_from_text(spiral_spec, "s.nn", 4);
    CHECK(nb_checkpoint_save(path, o, t, NULL) == NB_ERR_ARG);
    nb_model_free(o);
    nb_trainer_free(t);
    nb_model_free(m);
    nb_dataset_free(d);
    unlink(path);
}

NB_TEST(test_checkpoint_refuses_non_finite_weights)
{
    char path[] = "/tmp/nabla-ckpt3-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    nb_model *m = nb_model_from_text("input 2\nlinear 3\nloss mse\n", "m.nn", 1);
    CHECK_OK(nb_checkpoint_save(path, m, NULL, NULL));
    nb_st_file *before = nb_st_read(path);
    nb_node_data(nb_graph_find(nb_model_graph(m), "0.bias"))[2] = NAN;
    CHECK(nb_checkpoint_save(path, m, NULL, NULL) == NB_ERR_NUMERIC);
    CHECK(has(nb_last_error(), "'0.bias' element 2 is NaN"));
    nb_st_file *after = nb_st_read(path); /* the earlier file is intact */
    CHECK_PTR(before);
    CHECK_PTR(after);
    if (before && after) {
        nb_dtype dt;
        int nd;
        int64_t s[NB_MAX_DIMS];
        const float *a = nb_st_find(before, "0.bias", &dt, &nd, s), *b = nb_st_find(after, "0.bias", &dt, &nd, s);
        CHECK(a && b && !memcmp(a, b, 3 * sizeof(float)));
    }
    nb_st_free(before);
    nb_st_free(after);
    nb_model_free(m);
    unlink(path);
}

NB_TEST(test_trainer_threads_bit_identical)
{
    /* a convolutional network trained with 1 and with 3 threads: the same bits */
    nb_dataset *d = nb_dataset_synthetic("spiral", 96, 2);
    static const char *spec = "input 2\nlinear 192\nrelu\nlinear 64\nrelu\nlinear 3\nloss softmax_cross_entropy\n";
    float w[2][20000];
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        nb_model *m = nb_model_from_text(spec, "t.nn", 3);
        CHECK_OK(nb_graph_set_threads(nb_model_graph(m), k ? 3 : 1));
        CHECK(nb_graph_threads(nb_model_graph(m)) == (k ? 3 : 1));
        nb_train_config c = {0};
        c.batch = 96;
        c.optimizer = "adam";
        nb_trainer *t = nb_trainer_create(m, d, &c);
        train_epochs(t, 3);
        n = nb_graph_param_numel(nb_model_graph(m));
        CHECK(n <= 20000);
        memcpy(w[k], nb_graph_param_data(nb_model_graph(m)), n * sizeof(float));
        nb_trainer_free(t);
        nb_model_free(m);
    }
    CHECK(!memcmp(w[0], w[1], n * sizeof(float)));
    nb_dataset_free(d);
}
