/*
 * graph.c - `nabla graph MODEL.nn|CKPT -o FILE.dot|FILE.svg [--batch N] [--step]`:
 * the computation graph as Graphviz DOT, written by the library; .svg (and
 * .png, .pdf) are rendered from it by Graphviz's `dot`, fed through a pipe.
 * With --step, one forward and backward pass on a synthetic batch first, so
 * every box shows its values and gradient.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* One forward and backward pass on random inputs (ids 0 for an embedding)
 * and all-zero targets (class 0 for a classifier). */
static nb_status step_once(nb_model *m, nb_plan *p)
{
    nb_graph *g = nb_model_graph(m);
    size_t nx, ny;
    float *x = nb_plan_data(p, nb_model_input(m), &nx), *y = nb_plan_data(p, nb_model_target(m), &ny);
    nb_layer_info first;
    int ids = nb_model_layer(m, 0, &first) == NB_OK && !strcmp(first.kind, "embedding");
    nb_rng r;
    nb_rng_seed(&r, 1);
    if (ids) memset(x, 0, nx * sizeof *x);
    else nb_fill_normal(x, nx, 0.0f, 1.0f, &r);
    memset(y, 0, ny * sizeof *y);
    nb_plan_seed(p, 1);
    nb_graph_zero_grad(g);
    nb_status st = nb_plan_forward(p);
    if (st == NB_OK) st = nb_plan_backward(p, NULL);
    return st;
}

/* Pipes the DOT text into `dot -T<format> -o out.tmp`, then renames. */
static int render(const char *out, const char *format, nb_model *m, nb_plan *p, unsigned flags)
{
    size_t n = strlen(out);
    char *tmp = malloc(n + 5), fmt[16];
    if (!tmp) return cli_fail("graph", "out of memory");
    snprintf(tmp, n + 5, "%s.tmp", out);
    snprintf(fmt, sizeof fmt, "-T%s", format);
    int fds[2];
    if (pipe(fds) != 0) {
        free(tmp);
        return cli_fail("graph", "cannot create a pipe: %s", strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {"dot", fmt, "-o", tmp, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[0]);
    if (e != 0) {
        close(fds[1]);
        free(tmp);
        if (e == ENOENT)
            return cli_fail("graph", "%s: Graphviz's 'dot' program was not found: install graphviz "
                                     "(apt-get install graphviz), or write a .dot file instead", out);
        return cli_fail("graph", "cannot run 'dot': %s", strerror(e));
    }
    signal(SIGPIPE, SIG_IGN); /* if dot dies, writes fail instead of killing us */
    FILE *w = fdopen(fds[1], "w");
    nb_status st = w ? nb_graph_write_dot(nb_model_graph(m), p, flags, w) : NB_ERR_IO;
    int closed = w ? fclose(w) : close(fds[1]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
    int rc = EXIT_OK;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = cli_fail("graph", "%s: 'dot -T%s' failed (exit status %d)", out, format,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (st != NB_OK || closed != 0)
        rc = cli_fail("graph", "%s: writing the graph to 'dot' failed", out);
    else if (rename(tmp, out) != 0)
        rc = cli_fail("graph", "%s: cannot rename %s into place: %s", out, tmp, strerror(errno));
    if (rc != EXIT_OK) unlink(tmp);
    free(tmp);
    return rc;
}

int cmd_graph(int argc, char **argv)
{
    /* -o is the usual spelling for an output: read it as --out */
    char *args[64];
    if (argc > (int)(sizeof args / sizeof args[0])) return cli_fail("graph", "too many arguments");
    for (int i = 0; i < argc; i++) args[i] = strcmp(argv[i], "-o") ? argv[i] : "--out";
    cli_opt opts[] = {{"out", 0, NULL}, {"batch", 0, NULL}, {"step", 1, NULL}, {NULL, 0, NULL}};
    cli_args a = {"graph", {0}, 0};
    int rc = cli_parse(argc, args, 2, opts, &a);
    if (rc) return rc;
    long batch = 1;
    if (a.npos != 1) {
        fprintf(stderr, "usage: nabla graph MODEL.nn|CKPT [-o FILE.dot|FILE.svg] [--batch N] [--step]\n");
        return EXIT_USAGE;
    }
    if (!cli_int(opts, "batch", 1, 1 << 16, &batch)) return EXIT_USAGE;
    const char *path = a.pos[0], *out = cli_get(opts, "out");
    const char *format = NULL; /* NULL: DOT text */
    if (out && (ends_with(out, ".svg") || ends_with(out, ".png") || ends_with(out, ".pdf"))) format = out + strlen(out) - 3;
    else if (out && !ends_with(out, ".dot") && !ends_with(out, ".gv"))
        return cli_fail("graph", "%s: the output must end in .dot, .gv, .svg, .png or .pdf", out);
    int step = cli_get(opts, "step") != NULL;

    nb_model *m = ends_with(path, ".safetensors") ? nb_checkpoint_load(path) : nb_model_from_file(path, 1);
    if (!m) return cli_fail_nb("graph");
    nb_plan *p = nb_plan_create(nb_model_graph(m), step ? nb_model_loss(m) : NULL, (int)batch,
                                step ? NB_PLAN_TRAIN | NB_PLAN_KEEP : 0);
    rc = EXIT_BAD;
    if (!p || (step && step_once(m, p) != NB_OK)) {
        cli_fail_nb("graph");
        goto done;
    }
    unsigned flags = step ? NB_DOT_VALUES : 0;
    if (format) {
        rc = render(out, format, m, p, flags);
    } else if (!out) {
        rc = nb_graph_write_dot(nb_model_graph(m), p, flags, stdout) == NB_OK ? EXIT_OK
                                                                                : cli_fail("graph", "writing the output failed");
    } else {
        FILE *f = fopen(out, "w");
        if (!f) {
            cli_fail("graph", "%s: cannot write: %s", out, strerror(errno));
            goto done;
        }
        nb_status st = nb_graph_write_dot(nb_model_graph(m), p, flags, f);
        if (fclose(f) != 0 || st != NB_OK) {
            cli_fail("graph", "%s: write error", out);
            remove(out);
            goto done;
        }
        rc = EXIT_OK;
    }
done:
    nb_plan_free(p);
    nb_model_free(m);
    return rc;
}
