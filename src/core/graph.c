/*
 * graph.c - building a graph: leaves (inputs, parameters, constants), op
 * nodes with their shapes checked as they are added, and the contiguous
 * blocks that hold every parameter and its gradient.
 *
 * Nodes can only refer to nodes that already exist, so creation order is a
 * topological order and no sort is ever needed.
 *
 * Shapes are inferred twice when a node is added: with the batch size set to
 * 1 and to 2. Axes that differ are the batch axes; both passes must succeed,
 * so most shape errors surface here, at build time, not at the first batch.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

nb_graph *nb_graph_create(void)
{
    nb_graph *g = nb_calloc(1, sizeof *g);
    /* one thread until told otherwise; even then a pool, for the workspace */
    if (g && !(g->pool = nb_pool_create(1))) {
        nb_free(g);
        return NULL;
    }
    return g;
}

void nb_graph_free(nb_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_free(g->nodes[i]->in);
        nb_free(g->nodes[i]->name);
        nb_free(g->nodes[i]);
    }
    nb_free(g->nodes);
    nb_free(g->params);
    nb_free(g->pdata);
    nb_free(g->pgrad);
    nb_free(g->cdata);
    nb_free(g->errmsg);
    nb_pool_free(g->pool);
    nb_free(g);
}

nb_status nb_graph_set_threads(nb_graph *g, int threads)
{
    if (!g) return nb_set_error(NB_ERR_ARG, "graph_set_threads: NULL graph");
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 1024) return nb_set_error(NB_ERR_ARG, "graph_set_threads: %d threads, at most 1024", threads);
    if (threads == nb_pool_threads(g->pool)) return NB_OK;
    nb_pool *p = nb_pool_create(threads);
    if (!p) return NB_ERR_NOMEM;
    /* plans made before keep finding their workspaces */
    if (nb_pool_reserved(g->pool) && nb_pool_reserve(p) != NB_OK) {
        nb_pool_free(p);
        return NB_ERR_NOMEM;
    }
    nb_pool_free(g->pool);
    g->pool = p;
    return NB_OK;
}

int nb_graph_threads(const nb_graph *g) { return g ? nb_pool_threads(g->pool) : 1; }

nb_status nb_graph_status(const nb_graph *g) { return g ? g->status : NB_ERR_ARG; }

const char *nb_graph_error(const nb_graph *g)
{
    return (g && g->errmsg) ? g->errmsg : "";
}

nb_node *nb_graph_fail(nb_graph *g, nb_status st)
{
    if (g && g->status == NB_OK) {
        g->status = st;
        g->errmsg = nb_strdup(nb_last_error());
    }
    return NULL;
}

int nb_graph_node_count(const nb_graph *g) { return g ? g->n_nodes : 0; }

nb_node *nb_graph_node(const nb_graph *g, int i)
{
    return (g && i >= 0 && i < g->n_nodes) ? g->nodes[i] : NULL;
}

nb_node *nb_graph_find(const nb_graph *g, const char *name)
{
    if (!g || !name) return NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->name && strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    return NULL;
}

/* Appends a fully formed node; takes ownership of it. */
static nb_node *append(nb_graph *g, nb_node *n)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        nb_node **nodes = nb_realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            nb_free(n->in);
            nb_free(n->name);
            nb_free(n);
            return nb_graph_fail(g, NB_ERR_NOMEM);
        }
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    n->id = g->n_nodes;
    n->graph = g;
    g->nodes[g->n_nodes++] = n;
    for (int i = 0; i < n->n_in; i++) n->in[i]->n_consumers++;
    g->version++;
    return n;
}

static nb_status check_name(nb_graph *g, const char *name)
{
    if (!name || !*name) return NB_OK;
    if (nb_graph_find(g, name))
        return nb_set_error(NB_ERR_ARG, "a node named '%s' already exists in this graph", name);
    return NB_OK;
}

/* Validates a leaf's shape: 0..NB_MAX_DIMS axes, each >= 1 or NB_BATCH where
 * allowed, and an element count that does not overflow. */
static nb_status leaf_shape(const char *what, const char *name, int ndim, const int64_t *dims,
                            int allow_batch, nb_shape *s1, nb_shape *s2)
{
    if (ndim < 0 || ndim > NB_MAX_DIMS || (ndim > 0 && !dims))
        return nb_set_error(NB_ERR_ARG, "%s '%s': %d axes given, expected 0 to %d", what,
                            name ? name : "", ndim, NB_MAX_DIMS);
    size_t total = 1;
    s1->ndim = s2->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t d = dims[i];
        if (d == NB_BATCH && allow_batch) {
            s1->d[i] = 1;
            s2->d[i] = 2;
            continue;
        }
        if (d < 1 || d > ((int64_t)1 << 40))
            return nb_set_error(NB_ERR_ARG, "%s '%s': axis %d has size %lld, expected >= 1%s", what,
                                name ? name : "", i, (long long)d,
                                allow_batch ? " or NB_BATCH" : "");
        if (!nb_mul_ok(total, (size_t)d, &total) || total > ((size_t)1 << 40))
            return nb_set_error(NB_ERR_ARG, "%s '%s': too many elements", what, name ? name : "");
        s1->d[i] = s2->d[i] = d;
    }
    return NB_OK;
}

/* Grows a float block (parameters or constants) to hold `more` floats;
 * returns the offset of the new region, or SIZE_MAX on failure. */
static size_t grow_block(nb_graph *g, float **data, float **grad, size_t *numel, size_t *cap,
                         size_t more)
{
    size_t need;
    if (!nb_add_ok(*numel, more, &need)) {
        nb_set_error(NB_ERR_NOMEM, "parameter block size overflows");
        return SIZE_MAX;
    }
    if (need > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < need) c *= 2;
        size_t bytes;
        if (!nb_mul_ok(c, sizeof(float), &bytes)) {
            nb_set_error(NB_ERR_NOMEM, "parameter block size overflows");
            return SIZE_MAX;
        }
        float *d = nb_realloc(*data, bytes);
        if (!d) return SIZE_MAX;
        *data = d;
        if (grad) {
            float *gr = nb_realloc(*grad, bytes);
            if (!gr) return SIZE_MAX;
            *grad = gr;
        }
        *cap = c;
    }
    size_t off = *numel;
    memset(*data + off, 0, more * sizeof(float));
    if (grad) memset(*grad + off, 0, more * sizeof(float));
    *numel = need;
    g->version++;
    return off;
}

static nb_node *new_leaf(nb_graph *g, nb_op_kind op, const char *what, const char *name, int ndim,
                         const int64_t *dims, int allow_batch)
{
    nb_shape s1, s2;
    nb_status st = leaf_shape(what, name, ndim, dims, allow_batch, &s1, &s2);
    if (st == NB_OK) st = check_name(g, name);
    if (st != NB_OK) return nb_graph_fail(g, st);
    nb_node *n = nb_calloc(1, sizeof *n);
    if (!n) return nb_graph_fail(g, NB_ERR_NOMEM);
    n->op = op;
    n->shape = s1;
    n->shape2 = s2;
    if (name && *name && !(n->name = nb_strdup(name))) {
        nb_free(n);
        return nb_graph_fail(g, NB_ERR_NOMEM);
    }
    return n;
}

nb_node *nb_input(nb_graph *g, const char *name, int ndim, const int64_t *shape)
{
    if (!g) return NULL;
    nb_node *n = new_leaf(g, NB_OP_INPUT, "input", name, ndim, shape, 1);
    return n ? append(g, n) : NULL;
}

nb_node *nb_param(nb_graph *g, const char *name, int ndim, const int64_t *shape)
{
    if (!g) return NULL;
    if (!name || !*name) {
        nb_set_error(NB_ERR_ARG, "param: a parameter needs a name (checkpoints refer to it)");
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    nb_node *n = new_leaf(g, NB_OP_PARAM, "param", name, ndim, shape, 0);
    if (!n) return NULL;
    if (g->n_params == g->cap_params) {
        int cap = g->cap_params ? 2 * g->cap_params : 16;
        nb_node **p = nb_realloc(g->params, (size_t)cap * sizeof *p);
        if (!p) goto fail;
        g->params = p;
        g->cap_params = cap;
    }
    n->off = grow_block(g, &g->pdata, &g->pgrad, &g->pnumel, &g->pcap, nb_shape_numel(&n->shape));
    if (n->off == SIZE_MAX) goto fail;
    n->requires_grad = 1;
    if (!append(g, n)) return NULL;
    g->params[g->n_params++] = n;
    return n;
fail:
    nb_free(n->name);
    nb_free(n);
    return nb_graph_fail(g, NB_ERR_NOMEM);
}

nb_node *nb_const(nb_graph *g, const char *name, int ndim, const int64_t *shape,
                  const float *values)
{
    if (!g) return NULL;
    nb_node *n = new_leaf(g, NB_OP_CONST, "const", name, ndim, shape, 0);
    if (!n) return NULL;
    size_t count = nb_shape_numel(&n->shape);
    n->off = grow_block(g, &g->cdata, NULL, &g->cnumel, &g->ccap, count);
    if (n->off == SIZE_MAX) {
        nb_free(n->name);
        nb_free(n);
        return nb_graph_fail(g, NB_ERR_NOMEM);
    }
    if (values) memcpy(g->cdata + n->off, values, count * sizeof(float));
    return append(g, n);
}

nb_node *nb_scalar(nb_graph *g, float value) { return nb_const(g, NULL, 0, NULL, &value); }

nb_node *nb_graph_add_node(nb_graph *g, nb_op_kind op, int n_in, nb_node *const *in,
                           const int64_t *ia, int n_ia, const float *fa, int n_fa)
{
    const nb_op_def *def = nb_op_table[op];
    /* Errors are sticky: after the first one, every builder returns NULL, so
     * an optional input that is NULL because it failed is never mistaken for
     * an absent one (e.g. conv2d's bias). */
    if (!g || g->status != NB_OK) return NULL;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) return NULL; /* an earlier builder failed; keep its message */
        if (in[i]->graph != g) {
            nb_set_error(NB_ERR_ARG, "%s: input %d belongs to another graph", def->name, i);
            return nb_graph_fail(g, NB_ERR_ARG);
        }
    }
    if (n_ia > NB_MAX_IATTR || n_fa > NB_MAX_FATTR) {
        nb_set_error(NB_ERR_ARG, "%s: too many attributes", def->name);
        return nb_graph_fail(g, NB_ERR_ARG);
    }
    nb_node *n = nb_calloc(1, sizeof *n);
    nb_node **ins = nb_calloc(n_in ? (size_t)n_in : 1, sizeof *ins);
    if (!n || !ins) {
        nb_free(n);
        nb_free(ins);
        return nb_graph_fail(g, NB_ERR_NOMEM);
    }
    n->op = op;
    n->n_in = n_in;
    n->in = ins;
    for (int i = 0; i < n_in; i++) {
        ins[i] = in[i];
        if (in[i]->requires_grad) n->requires_grad = 1;
    }
    for (int i = 0; i < n_ia; i++) n->ia[i] = ia[i];
    for (int i = 0; i < n_fa; i++) n->fa[i] = fa[i];

    /* infer the shape at batch size 1 and 2 */
    const nb_shape **s = nb_calloc(2 * (size_t)(n_in ? n_in : 1), sizeof *s);
    if (!s) {
        nb_free(ins);
        nb_free(n);
        return nb_graph_fail(g, NB_ERR_NOMEM);
    }
    for (int i = 0; i < n_in; i++) {
        s[i] = &in[i]->shape;
        s[n_in + i] = &in[i]->shape2;
    }
    nb_status st = def->shape(n, s, &n->shape);
    if (st == NB_OK) st = def->shape(n, s + n_in, &n->shape2);
    if (st == NB_OK && n->shape.ndim != n->shape2.ndim)
        st = nb_set_error(NB_ERR_SHAPE, "%s: the number of output axes depends on the batch size",
                          def->name);
    nb_free(s);
    if (st != NB_OK) {
        nb_free(ins);
        nb_free(n);
        return nb_graph_fail(g, st);
    }
    return append(g, n);
}

/* ---- node accessors -------------------------------------------------- */

const char *nb_node_name(const nb_node *n) { return (n && n->name) ? n->name : ""; }

nb_status nb_node_set_name(nb_node *n, const char *name)
{
    if (!n || !name) return nb_set_error(NB_ERR_ARG, "nb_node_set_name: NULL argument");
    nb_node *other = nb_graph_find(n->graph, name);
    if (other && other != n)
        return nb_set_error(NB_ERR_ARG, "a node named '%s' already exists in this graph", name);
    char *copy = nb_strdup(name);
    if (!copy) return NB_ERR_NOMEM;
    nb_free(n->name);
    n->name = copy;
    return NB_OK;
}

const char *nb_node_op(const nb_node *n) { return n ? nb_op_table[n->op]->name : ""; }
int nb_node_id(const nb_node *n) { return n ? n->id : -1; }
int nb_node_input_count(const nb_node *n) { return n ? n->n_in : 0; }
nb_node *nb_node_input(const nb_node *n, int i)
{
    return (n && i >= 0 && i < n->n_in) ? n->in[i] : NULL;
}

int nb_node_shape(const nb_node *n, int64_t shape[NB_MAX_DIMS])
{
    if (!n) return -1;
    for (int i = 0; i < n->shape.ndim; i++)
        shape[i] = n->shape.d[i] != n->shape2.d[i] ? NB_BATCH : n->shape.d[i];
    return n->shape.ndim;
}

size_t nb_node_numel(const nb_node *n) { return n ? nb_shape_numel(&n->shape) : 0; }
int nb_node_is_param(const nb_node *n) { return n && n->op == NB_OP_PARAM; }
int nb_node_requires_grad(const nb_node *n) { return n && n->requires_grad; }

float *nb_node_data(nb_node *n)
{
    if (!n) return NULL;
    if (n->op == NB_OP_PARAM) return n->graph->pdata + n->off;
    if (n->op == NB_OP_CONST) return n->graph->cdata + n->off;
    return NULL;
}

float *nb_node_grad(nb_node *n)
{
    return (n && n->op == NB_OP_PARAM) ? n->graph->pgrad + n->off : NULL;
}

void nb_node_keep(nb_node *n)
{
    if (n && !n->keep) {
        n->keep = 1;
        n->graph->version++;
    }
}

/* ---- parameters as one block --------------------------------------- */

int nb_graph_param_count(const nb_graph *g) { return g ? g->n_params : 0; }
nb_node *nb_graph_param(const nb_graph *g, int i)
{
    return (g && i >= 0 && i < g->n_params) ? g->params[i] : NULL;
}
size_t nb_graph_param_numel(const nb_graph *g) { return g ? g->pnumel : 0; }
float *nb_graph_param_data(nb_graph *g) { return g ? g->pdata : NULL; }
float *nb_graph_param_grad(nb_graph *g) { return g ? g->pgrad : NULL; }

static void zero_range(void *ctx, size_t lo, size_t hi)
{
    memset((float *)ctx + lo, 0, (hi - lo) * sizeof(float));
}

/* split over the graph's threads: a large model's gradient block is the
 * biggest serial pass of a training step otherwise */
void nb_graph_zero_grad(nb_graph *g)
{
    if (g && g->pgrad) nb_pool_for(g->pool, g->pnumel, (size_t)1 << 15, zero_range, g->pgrad);
}
