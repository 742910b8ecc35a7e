/*
 * test_explain.c - nb_explain_step: the gradients it prints are the
 * library's (nb_node_grad), the new weights it prints are the parameters
 * after the update, a weight used twice gets its parts and then its total;
 * plans that reuse memory, ops it cannot show and failed writes are refused
 * with nothing written; the brief form is one line.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* x [3,2] -> tanh(x @ W + b) -> linear(V, c) -> o*a + a -> mean((. - t)^2):
 * matmul, broadcast add, tanh, linear, mul, add, sub, pow, mean, and the
 * 0-d weight a used twice. */
typedef struct {
    nb_graph *g;
    nb_node *x, *t, *loss, *p[5];
    nb_plan *plan;
} net;

static void net_build(net *n, unsigned flags)
{
    static const float X[6] = {0.5f, -1.0f, 1.5f, 0.25f, -0.75f, 2.0f}, T[3] = {0.3f, -0.2f, 0.9f};
    nb_graph *g = n->g = nb_graph_create();
    n->x = nb_input(g, "x", 2, (int64_t[]){3, 2});
    n->t = nb_input(g, "t", 2, (int64_t[]){3, 1});
    nb_node *W = n->p[0] = nb_test_param(g, "W", 2, (int64_t[]){2, 3}, -1, 1);
    nb_node *b = n->p[1] = nb_test_param(g, "b", 1, (int64_t[]){3}, -0.5f, 0.5f);
    nb_node *V = n->p[2] = nb_test_param(g, "V", 2, (int64_t[]){1, 3}, -1, 1);
    nb_node *c = n->p[3] = nb_test_param(g, "c", 1, (int64_t[]){1}, -0.5f, 0.5f);
    nb_node *a = n->p[4] = nb_param(g, "a", 0, NULL);
    if (a) nb_node_data(a)[0] = 0.8f;
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, n->x, W), b));
    nb_node *o = nb_linear(g, h, V, c);
    nb_node *out = nb_add(g, nb_mul(g, o, a), a);
    n->loss = nb_mean(g, nb_pow(g, nb_sub(g, out, n->t), 2.0f), 0, NULL, 0);
    CHECK_PTR(n->loss);
    n->plan = n->loss ? nb_plan_create(g, n->loss, 1, flags) : NULL;
    CHECK_PTR(n->plan);
    if (n->plan) {
        CHECK_OK(nb_plan_set_input(n->plan, n->x, X, 6));
        CHECK_OK(nb_plan_set_input(n->plan, n->t, T, 3));
    }
}

static void net_free(net *n)
{
    nb_plan_free(n->plan);
    nb_graph_free(n->g);
}

/* The whole of a stream written so far, NUL-terminated (caller frees). */
static char *slurp(FILE *f)
{
    long size = ftell(f);
    char *s = malloc(size > 0 ? (size_t)size + 1 : 1);
    if (!s) return NULL;
    rewind(f);
    size_t got = size > 0 ? fread(s, 1, (size_t)size, f) : 0;
    s[got] = '\0';
    return s;
}

/* Parses "name[i,j]" at s into the parameter's flat index; -1 when the name
 * is not p's. 0-d parameters have no brackets. */
static long elem_index(nb_node *p, const char *s, size_t len)
{
    const char *name = nb_node_name(p);
    size_t k = strlen(name);
    if (len < k || strncmp(s, name, k)) return -1;
    int64_t shape[NB_MAX_DIMS];
    int nd = nb_node_shape(p, shape);
    if (nd == 0) return len == k ? 0 : -1;
    if (s[k] != '[') return -1;
    long flat = 0;
    const char *q = s + k + 1;
    for (int d = 0; d < nd; d++) {
        char *end;
        long i = strtol(q, &end, 10);
        if (end == q || i < 0 || i >= shape[d]) return -1;
        flat = flat * (long)shape[d] + i;
        q = end + 1;   /* past ',' or ']' */
    }
    return (size_t)(q - s) == len ? flat : -1;
}

/* The number after the last " = " of a line, annotations "   (...)" cut off. */
static double last_value(const char *line)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", line);
    char *ann = strstr(buf, "   (");
    if (ann) *ann = '\0';
    char *eq = NULL;
    for (char *p = strstr(buf, " = "); p; p = strstr(p + 1, " = ")) eq = p;
    return eq ? strtod(eq + 3, NULL) : NAN;
}

NB_TEST(test_explain_prints_the_library_gradients)
{
    net n;
    net_build(&n, NB_PLAN_TRAIN | NB_PLAN_KEEP);
    nb_optim *opt = nb_sgd_create(n.g, &(nb_sgd_opts){.lr = 0.1f});
    FILE *f = tmpfile();
    CHECK_PTR(opt);
    CHECK_PTR(f);
    if (!n.plan || !opt || !f) {
        if (f) fclose(f);
        nb_optim_free(opt);
        net_free(&n);
        return;
    }
    float old[64];
    size_t total = nb_graph_param_numel(n.g);
    memcpy(old, nb_graph_param_data(n.g), total * sizeof(float));
    nb_explain_opts eo = {.decimals = 6};
    nb_explain_result r;
    CHECK_OK(nb_explain_check(n.g, n.plan, n.loss, &eo));
    CHECK_OK(nb_explain_step(n.g, n.plan, n.loss, opt, f, &eo, &r));
    CHECK(r.loss_after < r.loss_before);
    CHECK_NEAR(*nb_plan_data(n.plan, n.loss, NULL), r.loss_after, 0);
    char *text = slurp(f);
    fclose(f);
    CHECK_PTR(text);
    if (!text) goto done;
    for (const char *head = "1. Forward pass\0" "2. Loss\0" "3. Backward pass\0" "4. Update\0"
                            "5. After the update\0" "The loss is lower\0";
         *head; head += strlen(head) + 1)
        if (!strstr(text, head)) nb_test_fail(__FILE__, __LINE__, "'%s' is not in the explanation", head);

    /* every parameter element: the last "dL/d<name>" line (the total, for a)
     * and its update line */
    double grad_seen[5][8], new_seen[5][8];
    for (int q = 0; q < 5; q++)
        for (int k = 0; k < 8; k++) grad_seen[q][k] = new_seen[q][k] = NAN;
    int section = 0, parts_of_a = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "3. ", 3)) section = 3;
        if (!strncmp(line, "4. ", 3)) section = 4;
        if (!strncmp(line, "5. ", 3)) section = 5;
        const char *s = line + 4;
        int is_grad = !strncmp(line, "    dL/d", 8);
        if (is_grad) s += 4;
        else if (strncmp(line, "    ", 4) || section != 4) continue;
        size_t len = strcspn(s, " ");
        for (int q = 0; q < 5; q++) {
            long k = elem_index(n.p[q], s, len);
            if (k < 0) continue;
            if (is_grad && section == 3) {
                grad_seen[q][k] = last_value(line);
                if (q == 4 && strstr(line, "the part from")) parts_of_a++;
            } else if (!is_grad && section == 4) {
                new_seen[q][k] = last_value(line);
            }
        }
    }
    CHECK(parts_of_a == 2);
    for (int q = 0; q < 5; q++) {
        const float *g = nb_node_grad(n.p[q]), *v = nb_node_data(n.p[q]);
        for (size_t k = 0; k < nb_node_numel(n.p[q]); k++) {
            if (!(fabs(grad_seen[q][k] - g[k]) <= 0.5e-6 + 1e-6 * fabs(g[k])))
                nb_test_fail(__FILE__, __LINE__, "%s[%zu]: printed gradient %.7f, nb_node_grad %.7f",
                             nb_node_name(n.p[q]), k, grad_seen[q][k], (double)g[k]);
            if (!(fabs(new_seen[q][k] - v[k]) <= 0.5e-6 + 1e-6 * fabs(v[k])))
                nb_test_fail(__FILE__, __LINE__, "%s[%zu]: printed new value %.7f, parameter %.7f",
                             nb_node_name(n.p[q]), k, new_seen[q][k], (double)v[k]);
        }
    }
    /* plain SGD: the update the library made is old - lr * grad */
    for (size_t k = 0; k < total; k++)
        CHECK_NEAR(nb_graph_param_data(n.g)[k], old[k] - 0.1f * nb_graph_param_grad(n.g)[k], 1e-6);
done:
    free(text);
    nb_optim_free(opt);
    net_free(&n);
}

NB_TEST(test_explain_refuses_with_nothing_written)
{
    /* a plan that reuses memory */
    net n;
    net_build(&n, NB_PLAN_TRAIN);
    nb_optim *opt = nb_sgd_create(n.g, &(nb_sgd_opts){.lr = 0.1f});
    FILE *f = tmpfile();
    CHECK_PTR(f);
    if (!f) {
        nb_optim_free(opt);
        net_free(&n);
        return;
    }
    CHECK(nb_explain_check(n.g, n.plan, n.loss, NULL) == NB_ERR_STATE);
    CHECK(nb_explain_check(n.g, n.plan, n.loss, &(nb_explain_opts){.brief = 1}) == NB_OK);
    CHECK(nb_explain_step(n.g, n.plan, n.loss, opt, f, NULL, NULL) == NB_ERR_STATE);
    CHECK(strstr(nb_last_error(), "NB_PLAN_KEEP") != NULL);
    CHECK(ftell(f) == 0);
    /* missing arguments */
    CHECK(nb_explain_step(n.g, n.plan, NULL, opt, f, NULL, NULL) == NB_ERR_ARG);
    CHECK(nb_explain_step(n.g, n.plan, n.loss, opt, NULL, NULL, NULL) == NB_ERR_ARG);
    nb_optim_free(opt);
    net_free(&n);

    /* an op it cannot show: softmax */
    nb_graph *g = nb_graph_create();
    nb_node *x = nb_input(g, "x", 2, (int64_t[]){2, 3});
    nb_node *w = nb_test_param(g, "w", 1, (int64_t[]){3}, -1, 1);
    nb_node *loss = nb_mean(g, nb_softmax(g, nb_mul(g, x, w), -1), 0, NULL, 0);
    nb_plan *p = loss ? nb_plan_create(g, loss, 1, NB_PLAN_TRAIN | NB_PLAN_KEEP) : NULL;
    opt = nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f});
    CHECK_PTR(p);
    if (p) {
        CHECK(nb_explain_step(g, p, loss, opt, f, NULL, NULL) == NB_ERR_ARG);
        CHECK(strstr(nb_last_error(), "softmax") != NULL);
        CHECK(ftell(f) == 0);
    }
    nb_optim_free(opt);
    nb_plan_free(p);
    nb_graph_free(g);

    /* a loss that is not the node the plan runs backward from */
    g = nb_graph_create();
    w = nb_test_param(g, "w", 1, (int64_t[]){3}, -1, 1);
    loss = nb_mean(g, nb_tanh(g, w), 0, NULL, 0);
    nb_node *twice = nb_scale(g, loss, 2.0f);
    p = twice ? nb_plan_create(g, twice, 1, NB_PLAN_TRAIN | NB_PLAN_KEEP) : NULL;
    opt = nb_sgd_create(g, &(nb_sgd_opts){.lr = 0.1f});
    CHECK_PTR(p);
    if (p) {
        CHECK(nb_explain_step(g, p, loss, opt, f, NULL, NULL) == NB_ERR_ARG);
        CHECK(strstr(nb_last_error(), "backward from") != NULL);
        CHECK(ftell(f) == 0);
        CHECK_OK(nb_explain_step(g, p, twice, opt, f, NULL, NULL));
        CHECK(ftell(f) > 0);
    }
    fclose(f);
    nb_optim_free(opt);
    nb_plan_free(p);
    nb_graph_free(g);
}

NB_TEST(test_explain_write_error)
{
    FILE *f = fopen("/dev/full", "w");
    if (!f) return;   /* no /dev/full here */
    net n;
    net_build(&n, NB_PLAN_TRAIN | NB_PLAN_KEEP);
    nb_optim *opt = nb_sgd_create(n.g, &(nb_sgd_opts){.lr = 0.1f});
    if (n.plan && opt) {
        CHECK(nb_explain_step(n.g, n.plan, n.loss, opt, f, NULL, NULL) == NB_ERR_IO);
        CHECK(strstr(nb_last_error(), "writing") != NULL);
    }
    fclose(f);
    nb_optim_free(opt);
    net_free(&n);
}

NB_TEST(test_explain_brief_and_other_optimizers)
{
    net n;
    net_build(&n, NB_PLAN_TRAIN | NB_PLAN_KEEP);
    nb_adam_opts ao = NB_ADAM_DEFAULTS;
    ao.lr = 0.05f;
    nb_optim *opt = nb_adam_create(n.g, &ao);
    FILE *f = tmpfile();
    CHECK_PTR(f);
    if (!f || !n.plan || !opt) {
        if (f) fclose(f);
        nb_optim_free(opt);
        net_free(&n);
        return;
    }
    nb_explain_opts eo = {.step = 7, .brief = 1};
    nb_explain_result r;
    CHECK_OK(nb_explain_step(n.g, n.plan, n.loss, opt, f, &eo, &r));
    char *text = slurp(f);
    CHECK_PTR(text);
    if (text) {
        CHECK(!strncmp(text, "step    7   loss ", 17));
        CHECK(strchr(text, '\n') == text + strlen(text) - 1);   /* one line */
        free(text);
    }
    /* the full walk with Adam: old, gradient and new, no "old - lr * gradient" */
    rewind(f);
    CHECK_OK(nb_explain_step(n.g, n.plan, n.loss, opt, f, NULL, &r));
    fflush(f);
    long end = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *all = malloc((size_t)end + 1);
    if (all) {
        size_t got = fread(all, 1, (size_t)end, f);
        all[got] = '\0';
        CHECK(strstr(all, "the optimizer (adam") != NULL);
        CHECK(strstr(all, ": old ") != NULL && strstr(all, ", gradient ") != NULL);
        free(all);
    }
    fclose(f);
    nb_optim_free(opt);
    net_free(&n);
}
