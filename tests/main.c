/*
 * main.c - runs every NB_TEST (optionally only those whose name contains
 * argv[1]) and prints "N passed, M failed".
 */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NB_TEST_ENTRY(name) void name(void);
#include "tests.inc"
#undef NB_TEST_ENTRY

static const struct { const char *name; void (*fn)(void); } tests[] = {
#define NB_TEST_ENTRY(name) {#name, name},
#include "tests.inc"
#undef NB_TEST_ENTRY
};

static int current_failed;

void nb_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed++;
}

void nb_test_gradcheck(const char *file, int line, nb_graph *g, nb_node *out,
                       nb_status (*fill)(nb_plan *p, void *user), void *user)
{
    if (!out) {
        nb_test_fail(file, line, "graph build failed: %s", nb_last_error());
        return;
    }
    nb_gradcheck_opts o = {0};
    o.seed = 42;
    o.fill_inputs = fill;
    o.user = user;
    nb_gradcheck_report r;
    nb_status st = nb_gradcheck(g, out, &o, &r);
    if (st != NB_OK) nb_test_fail(file, line, "%s", nb_last_error());
    else if (r.checked == 0) nb_test_fail(file, line, "gradcheck of %s compared nothing", nb_node_op(out));
}

nb_node *nb_test_param(nb_graph *g, const char *name, int ndim, const int64_t *shape, float lo,
                       float hi)
{
    nb_node *p = nb_param(g, name, ndim, shape);
    if (p) {
        nb_rng r;
        nb_rng_seed(&r, 1234 + (uint64_t)nb_graph_param_count(g));
        nb_fill_uniform(nb_node_data(p), nb_node_numel(p), lo, hi, &r);
    }
    return p;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        current_failed = 0;
        tests[i].fn();
        if (current_failed) {
            failed++;
            fprintf(stderr, "FAIL %s\n", tests[i].name);
        } else {
            passed++;
            printf("ok   %s\n", tests[i].name);
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
