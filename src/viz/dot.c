/*
 * dot.c - a graph as Graphviz DOT text: one box per node (op, name, shape),
 * leaves styled by kind, edges from each input to its consumer in creation
 * order (which is data-flow order). With a plan that has run, each box can
 * also carry a summary of the node's value and the norm of its gradient.
 */
#include "viz.h"

#include <math.h>
#include <string.h>

static int is_loss_op(const char *op)
{
    static const char *const losses[] = {"softmax_cross_entropy", "nll", "mse", "l1", "huber",
                                         "bce_with_logits", NULL};
    for (int i = 0; losses[i]; i++)
        if (!strcmp(op, losses[i])) return 1;
    return 0;
}

static void shape_text(vz_out *o, int nd, const int64_t *s)
{
    if (nd == 0) {
        vz_put(o, "scalar");
        return;
    }
    vz_put(o, "[");
    for (int i = 0; i < nd; i++) {
        if (s[i] == NB_BATCH) vz_put(o, i ? ", N" : "N");
        else vz_fmt(o, i ? ", %lld" : "%lld", (long long)s[i]);
    }
    vz_put(o, "]");
}

/* "mean m  std s\nmin a  max b" over n values, in double; NaN/inf counted apart. */
static void value_summary(vz_out *o, const float *x, size_t n)
{
    double sum = 0, sq = 0, mn = INFINITY, mx = -INFINITY;
    size_t finite = 0;
    if (n == 1) {
        vz_fmt(o, "\\nvalue %.6g", (double)x[0]);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (!isfinite(v)) continue;
        finite++;
        sum += v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
    }
    if (finite) {
        double mean = sum / (double)finite;
        for (size_t i = 0; i < n; i++)
            if (isfinite(x[i])) sq += ((double)x[i] - mean) * ((double)x[i] - mean);
        vz_fmt(o, "\\nmean %.4g  std %.4g\\nmin %.4g  max %.4g", mean, sqrt(sq / (double)finite), mn, mx);
    }
    if (finite < n) vz_fmt(o, "\\n%zu not finite", n - finite);
}

static void grad_summary(vz_out *o, const float *g, size_t n)
{
    double sq = 0;
    for (size_t i = 0; i < n; i++) sq += (double)g[i] * (double)g[i];
    vz_fmt(o, "\\ngrad norm %.4g", sqrt(sq));
}

nb_status nb_graph_write_dot(nb_graph *g, nb_plan *p, unsigned flags, FILE *out)
{
    if (!g || !out) return nb_set_error(NB_ERR_ARG, "graph_write_dot: NULL graph or stream");
    int nn = nb_graph_node_count(g);
    if (p && nn > 0 && nb_plan_shape(p, nb_graph_node(g, 0), (int64_t[NB_MAX_DIMS]){0}) < 0)
        return nb_set_error(NB_ERR_ARG, "graph_write_dot: the plan belongs to another graph");
    vz_out o = {out, 0};
    vz_put(&o, "digraph nabla {\n"
               "  graph [rankdir=TB, nodesep=0.3, ranksep=0.35, fontname=\"Helvetica\"];\n"
               "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#555555\", "
               "fontname=\"Helvetica\", fontsize=10, margin=\"0.12,0.05\"];\n"
               "  edge [color=\"#666666\", arrowsize=0.6];\n");
    for (int i = 0; i < nn; i++) {
        nb_node *n = nb_graph_node(g, i);
        const char *op = nb_node_op(n), *name = nb_node_name(n);
        int64_t s[NB_MAX_DIMS];
        int nd = p ? nb_plan_shape(p, n, s) : nb_node_shape(n, s);
        vz_fmt(&o, "  n%d [label=\"", nb_node_id(n));
        vz_dot(&o, op);
        if (name && *name && strcmp(name, op)) {
            vz_put(&o, "\\n");
            vz_dot(&o, name);
        }
        vz_put(&o, "\\n");
        shape_text(&o, nd, s);
        int is_const = !strcmp(op, "const");
        if (is_const && nb_node_numel(n) == 1 && nb_node_data(n)) vz_fmt(&o, "\\nvalue %.6g", (double)nb_node_data(n)[0]);
        if (p && (flags & NB_DOT_VALUES)) {
            size_t count = 0;
            const float *x = nb_plan_data(p, n, &count);
            if (x && count && !(is_const && count == 1)) value_summary(&o, x, count);
            const float *gr = nb_plan_grad(p, n, &count);
            if (gr && count) grad_summary(&o, gr, count);
        }
        vz_put(&o, "\"");
        if (!strcmp(op, "input"))
            vz_put(&o, ", shape=box, style=filled, fillcolor=\"#dbe9f6\", color=\"#2f6694\"");
        else if (nb_node_is_param(n))
            vz_put(&o, ", shape=box, style=filled, fillcolor=\"#fde8c8\", color=\"#b36b00\"");
        else if (is_const)
            vz_put(&o, ", shape=box, style=\"filled,dashed\", fillcolor=\"#eeeeee\", color=\"#888888\"");
        else if (is_loss_op(op))
            vz_put(&o, ", shape=box, style=\"rounded,filled,bold\", fillcolor=\"#f8d3d0\", color=\"#b22222\", penwidth=2");
        vz_put(&o, "];\n");
    }
    for (int i = 0; i < nn; i++) {
        nb_node *n = nb_graph_node(g, i);
        int k = nb_node_input_count(n), data_inputs = 0;
        for (int j = 0; j < k; j++) data_inputs += !nb_node_is_param(nb_node_input(n, j));
        for (int j = 0; j < k; j++) {
            const nb_node *in = nb_node_input(n, j);
            vz_fmt(&o, "  n%d -> n%d", nb_node_id(in), nb_node_id(n));
            /* the order of data inputs matters (sub, div, a loss's prediction and target): number them */
            if (data_inputs > 1 && !nb_node_is_param(in)) vz_fmt(&o, " [headlabel=\"%d\", labelfontsize=8, labelfontcolor=\"#888888\"]", j);
            vz_put(&o, ";\n");
        }
    }
    vz_put(&o, "}\n");
    return vz_finish(&o, "graph_write_dot");
}
