/*
 * explain.c - `nabla explain`: one training step (or a few) of a tiny
 * network, walked through in words and numbers a learner can check by hand.
 * The walk itself is the library's nb_explain_step; this file builds the
 * built-in examples (xor, ball) or reads a small model and data set, and
 * prints the introduction and the summary of several steps.
 */
#include "cli.h"

#include <string.h>

#define EXPLAIN_MAX_WEIGHTS 64
#define EXPLAIN_MAX_EXAMPLES 4

typedef struct {
    nb_graph *g;             /* owned unless m is set */
    nb_model *m;
    nb_node *loss;
    nb_plan *plan;
    nb_optim *opt;
} lesson;

/* The library's message without its "explain: " prefix (the command names itself). */
static int fail_nb(void)
{
    const char *m = nb_last_error();
    if (!strncmp(m, "explain: ", 9)) m += 9;
    return cli_fail("explain", "%s", m);
}

static void lesson_free(lesson *l)
{
    nb_optim_free(l->opt);
    nb_plan_free(l->plan);
    if (l->m) nb_model_free(l->m);
    else nb_graph_free(l->g);
}

static int name_all(nb_node *const *n, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (!n[i] || nb_node_set_name(n[i], names[i]) != NB_OK) return 0;
    return 1;
}

/* XOR: 2 inputs -> 2 tanh units -> 1 sigmoid output, mean squared error,
 * the 4 points as one batch, hand-picked weights. */
static int build_xor(lesson *l)
{
    static const float X[8] = {0, 0, 0, 1, 1, 0, 1, 1}, T[4] = {0, 1, 1, 0};
    static const float W1[4] = {0.5f, -0.4f, 0.3f, 0.8f}, B1[2] = {0.1f, -0.2f};
    static const float W2[2] = {0.7f, -0.6f}, B2[1] = {0.2f};
    nb_graph *g = l->g = nb_graph_create();
    if (!g) return 0;
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){4, 2});
    nb_node *t = nb_input(g, "target", 2, (int64_t[]){4, 1});
    nb_node *w1 = nb_param(g, "W1", 2, (int64_t[]){2, 2});
    nb_node *b1 = nb_param(g, "b1", 1, (int64_t[]){2});
    nb_node *w2 = nb_param(g, "W2", 2, (int64_t[]){1, 2});
    nb_node *b2 = nb_param(g, "b2", 1, (int64_t[]){1});
    nb_node *z1 = nb_linear(g, x, w1, b1);
    nb_node *h = nb_tanh(g, z1);
    nb_node *z2 = nb_linear(g, h, w2, b2);
    nb_node *y = nb_sigmoid(g, z2);
    nb_node *loss = l->loss = nb_mse(g, y, t);
    nb_node *named[] = {z1, h, z2, y, loss};
    static const char *const names[] = {"z1", "h", "z2", "y", "loss"};
    if (!loss || !name_all(named, names, 5)) return 0;
    memcpy(nb_node_data(w1), W1, sizeof W1);
    memcpy(nb_node_data(b1), B1, sizeof B1);
    memcpy(nb_node_data(w2), W2, sizeof W2);
    memcpy(nb_node_data(b2), B2, sizeof B2);
    if (!(l->plan = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN | NB_PLAN_KEEP))) return 0;
    return nb_plan_set_input(l->plan, x, X, 8) == NB_OK && nb_plan_set_input(l->plan, t, T, 4) == NB_OK;
}

/* Aiming a throw: distance = w * speed, one weight, 4 throws. */
static int build_ball(lesson *l)
{
    static const float S[4] = {1.0f, 1.5f, 2.0f, 2.5f}, D[4] = {2.1f, 2.9f, 4.2f, 4.9f};
    nb_graph *g = l->g = nb_graph_create();
    if (!g) return 0;
    nb_node *speed = nb_input(g, "speed", 1, (int64_t[]){4});
    nb_node *dist = nb_input(g, "distance", 1, (int64_t[]){4});
    nb_node *w = nb_param(g, "w", 0, NULL);
    nb_node *guess = nb_mul(g, speed, w);
    nb_node *loss = l->loss = nb_mse(g, guess, dist);
    nb_node *named[] = {guess, loss};
    static const char *const names[] = {"guess", "loss"};
    if (!loss || !name_all(named, names, 2)) return 0;
    nb_node_data(w)[0] = 0.5f;
    if (!(l->plan = nb_plan_create(g, loss, 1, NB_PLAN_TRAIN | NB_PLAN_KEEP))) return 0;
    return nb_plan_set_input(l->plan, speed, S, 4) == NB_OK && nb_plan_set_input(l->plan, dist, D, 4) == NB_OK;
}

/* A model spec on the first few examples of a data set. */
static int build_model(lesson *l, const char *spec, const char *source, uint64_t seed, size_t *examples)
{
    if (!(l->m = nb_model_from_file(spec, seed))) return cli_fail_nb("explain"), 0;
    nb_graph *g = l->g = nb_model_graph(l->m);
    l->loss = nb_model_loss(l->m);
    size_t weights = nb_graph_param_numel(g);
    if (weights > EXPLAIN_MAX_WEIGHTS)
        return cli_fail("explain", "%s has %zu weights; explain walks tiny networks of at most %d "
                                   "(every number is printed; 'nabla info %s' shows where they are)",
                        spec, weights, EXPLAIN_MAX_WEIGHTS, spec), 0;
    int regression = !nb_model_is_classifier(l->m);
    nb_dataset *d = cli_load_data(source, "train", -1, regression, seed);
    if (!d) return cli_fail_nb("explain"), 0;
    int64_t s[NB_MAX_DIMS];
    int nd = nb_model_input_shape(l->m, s);
    size_t in = 1, n = nb_dataset_count(d);
    for (int i = 0; i < nd; i++) in *= (size_t)s[i];
    int ok = 0;
    if (n == 0) {
        cli_fail("explain", "%s has no examples", source);
    } else if (nb_dataset_sample_size(d) != in) {
        cli_fail("explain", "the examples of %s have %zu values but %s takes %zu", source,
                 nb_dataset_sample_size(d), spec, in);
    } else if (!regression && nb_dataset_classes(d) <= 0) {
        cli_fail("explain", "%s is a classifier but %s has real-valued targets", spec, source);
    } else if (!regression && (size_t)nb_dataset_classes(d) > nb_model_output_size(l->m)) {
        cli_fail("explain", "%s has %d classes but %s outputs %zu scores", source,
                 nb_dataset_classes(d), spec, nb_model_output_size(l->m));
    } else if (regression && nb_dataset_target_size(d) != nb_model_output_size(l->m)) {
        cli_fail("explain", "%s has %zu target values per example but %s outputs %zu", source,
                 nb_dataset_target_size(d), spec, nb_model_output_size(l->m));
    } else {
        if (n > EXPLAIN_MAX_EXAMPLES) n = EXPLAIN_MAX_EXAMPLES;
        *examples = n;
        size_t ts = nb_dataset_target_size(d);
        if (!(l->plan = nb_plan_create(g, l->loss, (int)n, NB_PLAN_TRAIN | NB_PLAN_KEEP)) ||
            nb_plan_set_input(l->plan, nb_model_input(l->m), nb_dataset_features(d), n * in) != NB_OK ||
            nb_plan_set_input(l->plan, nb_model_target(l->m), nb_dataset_targets(d), n * ts) != NB_OK)
            cli_fail_nb("explain");
        else
            ok = 1;
    }
    nb_dataset_free(d);
    return ok;
}

int cmd_explain(int argc, char **argv)
{
    cli_opt opts[] = {
        {"example", 0, NULL}, {"steps", 0, NULL}, {"lr", 0, NULL}, {"data", 0, NULL},
        {"seed", 0, NULL}, {NULL, 0, NULL},
    };
    cli_args a = {"explain", {0}, 0};
    int rc = cli_parse(argc, argv, 2, opts, &a);
    if (rc) return rc;
    const char *example = cli_get(opts, "example"), *source = cli_get(opts, "data");
    const char *spec = a.npos == 1 ? a.pos[0] : NULL;
    if (a.npos > 1 || (spec && example) || (spec && !source) || (!spec && source) ||
        (example && strcmp(example, "xor") && strcmp(example, "ball"))) {
        fprintf(stderr, "usage: nabla explain [--example xor|ball] [--steps N] [--lr X]\n"
                        "       nabla explain MODEL.nn --data FILE|NAME [--steps N] [--lr X] [--seed N]\n");
        return EXIT_USAGE;
    }
    if (!spec && !example) example = "xor";
    const int ball = example && !strcmp(example, "ball");
    long steps = 1, seed = 1;
    double lr = example && !ball ? 0.5 : 0.1;
    if (!cli_int(opts, "steps", 1, 10000, &steps) || !cli_int(opts, "seed", 0, 0x7fffffffL, &seed) ||
        !cli_num(opts, "lr", 1e-9, 1e3, &lr))
        return EXIT_USAGE;

    lesson l = {0};
    size_t examples = 4;
    int ok = spec ? build_model(&l, spec, source, (uint64_t)seed, &examples)
                  : ball ? build_ball(&l) : build_xor(&l);
    if (!ok) {
        if (!spec) fail_nb();
        lesson_free(&l);
        return EXIT_BAD;
    }
    /* refuse what explain cannot show before anything is printed */
    if (!(l.opt = nb_sgd_create(l.g, &(nb_sgd_opts){.lr = (float)lr})) ||
        nb_explain_check(l.g, l.plan, l.loss, NULL) != NB_OK) {
        lesson_free(&l);
        return fail_nb();
    }

    if (!spec && !ball)
        printf("How a network learns, one step at a time, with every number.\n\n"
               "The task: XOR. Two inputs, each 0 or 1; the answer is 1 when exactly one\n"
               "of them is 1. The network: 2 inputs -> 2 hidden units (tanh) -> 1 output\n"
               "(sigmoid), a guess between 0 and 1. All 4 examples go through together as\n"
               "one batch; row n of x is example n. The loss is the mean squared error, the\n"
               "update plain gradient descent with learning rate %g.\n", lr);
    else if (ball)
        printf("How a network learns, one step at a time, with every number.\n\n"
               "The task: aiming a throw. How far does a ball fly for a given throwing\n"
               "speed? The guess is distance = w * speed, with one weight w to learn from\n"
               "4 throws. The loss is the mean squared error, the update plain gradient\n"
               "descent with learning rate %g.\n", lr);
    else
        printf("How a network learns, one step at a time, with every number.\n\n"
               "The network: %s (%zu weights, initialised from seed %ld), on the first %zu\n"
               "examples of %s as one batch. The update is plain gradient descent with\n"
               "learning rate %g.\n", spec, nb_graph_param_numel(l.g), seed, examples, source, lr);
    printf("Every number below is the one nabla computed; a line like\n"
           "\"a*b + c*d = e\" can be checked with a calculator (to the digits shown).\n\n");

    const int all_full = steps <= 3;
    double first = 0, last = 0;
    int rises = 0;
    nb_status st = NB_OK;
    for (long s = 1; s <= steps && st == NB_OK; s++) {
        nb_explain_opts eo = {0};
        nb_explain_result r;
        eo.step = (int)s;
        eo.brief = !all_full && s > 1;
        if (s == 2 && eo.brief) {
            printf("Steps 2 to %ld, one line each: the loss before -> after the update.\n\n", steps);
            fflush(stdout);
        }
        st = nb_explain_step(l.g, l.plan, l.loss, l.opt, stdout, &eo, &r);
        if (st != NB_OK) break;
        if (s == 1) first = r.loss_before;
        last = r.loss_after;
        rises += !(r.loss_after < r.loss_before);
    }
    if (st == NB_OK && steps > 1) {
        printf("\nOver %ld steps the loss went from %.4f to %.4f", steps, first, last);
        if (!rises) printf(",\nlower after every step: the network is learning.\n");
        else printf(",\nbut it did not fall at %d step%s: a smaller --lr may help.\n", rises, rises > 1 ? "s" : "");
        /* the built-in examples: where the guesses are now (the plan holds
         * the forward pass at the latest weights) */
        nb_node *y = spec ? NULL : nb_graph_find(l.g, ball ? "guess" : "y");
        nb_node *t = spec ? NULL : nb_graph_find(l.g, ball ? "distance" : "target");
        size_t n = 0;
        const float *yv = y ? nb_plan_data(l.plan, y, &n) : NULL, *tv = t ? nb_plan_data(l.plan, t, NULL) : NULL;
        if (yv && tv) {
            printf("The guesses now:");
            for (size_t i = 0; i < n; i++) printf(" %.4f", yv[i]);
            printf("\nThe targets:    ");
            for (size_t i = 0; i < n; i++) printf(" %.4f", tv[i]);
            printf("\n");
        }
    }
    lesson_free(&l);
    if (st != NB_OK) return fail_nb();
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail("explain", "writing the output failed");
    return EXIT_OK;
}
