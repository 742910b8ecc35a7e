/*
 * plan.c - turning a graph into something that runs: shapes for one batch
 * size, the set of nodes backward must visit, buffer lifetimes, one arena
 * laid out ahead of time, then the forward and backward loops.
 *
 * Timeline. Node i runs forward at step i and backward at step T(i) = 2n-1-i,
 * so backward is the forward order reversed. Every buffer (a value or a
 * gradient) lives over an interval of steps; buffers whose intervals do not
 * overlap share memory. Views (reshape, flatten) own no memory: they alias
 * their input's value and gradient, and extend its interval.
 *
 * Gradients are accumulated (+=) by every consumer's backward, so each
 * gradient buffer is zeroed once, at the step of its first writer; unless
 * that writer's op can overwrite instead (NB_OPF_ASSIGN), which saves a pass
 * over the buffer and a read of it. Parameter gradients live in the graph's
 * block and are never zeroed here: they accumulate until
 * nb_graph_zero_grad(), as in PyTorch.
 *
 * Fusion. A relu whose input is the only use of an op that can apply it
 * itself (NB_OPF_ACT: conv2d, linear) is done by that op, on its output
 * while it is still in cache, and its gradient mask at the start of the op's
 * backward: two passes over memory fewer each way. The relu then runs
 * nothing and shares the op's value and gradient, like a view. Only where no
 * one can see the difference: never in a plan that keeps every value, nor
 * when the op's own output is kept or is the target.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB_ALIGN_FLOATS 16   /* 64-byte alignment of every buffer in the arena */

struct nb_plan {
    nb_graph *g;
    unsigned version;
    int n;                   /* nodes */
    int target;              /* node id, or -1 */
    int batch;
    unsigned flags;
    int training;
    int detect_anomaly;      /* check every op's output and gradients for NaN/Inf */
    nb_rng rng;
    uint64_t seed, step;     /* random masks: nb_plan_seed, nb_plan_set_step */
    int64_t batch_offset;    /* nb_plan_set_batch_offset */
    nb_sync sync;            /* cross-process reductions (has_sync) */
    int has_sync;
    nb_status bwd_status;    /* a backward op that failed reports here */
    nb_status (*hook)(void *user, int node);   /* after each backward step */
    void *hook_user;
    nb_tensor *t;            /* per node */
    nb_tensor **inptr;       /* per node, its inputs' tensors (offsets in in_off) */
    int *in_off;
    unsigned char *bwd;      /* node is visited by backward */
    void **saved;            /* per node, or NULL */
    void *scratch;
    size_t scratch_bytes, saved_bytes, arena_bytes;
    float *arena;
    char *saved_block;
    /* gradient buffers to zero before the backward step of node i:
     * zero_buf[zero_ptr[i] .. zero_ptr[i+1]) */
    int *zero_ptr;
    nb_tensor **zero_buf;
    /* per node: the NB_ACT_* its op applies to its own output, or FUSED for
     * an activation done by its producer */
    signed char *fuse;
    /* per node: bit k set when the node's backward is the first to write
     * input k's gradient, which it overwrites (nb_exec.fresh) */
    unsigned *fresh;
};

enum { FUSED = -1 };

/* ---- buffer placement ------------------------------------------------ */

typedef struct {
    size_t size;   /* floats, rounded up to the alignment */
    int start, end;
    size_t off;
    int id;
} nb_buf;

static int by_size_desc(const void *a, const void *b)
{
    const nb_buf *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id;
}

static int by_off(const void *a, const void *b)
{
    const nb_buf *x = *(nb_buf *const *)a, *y = *(nb_buf *const *)b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Greedy first fit, largest buffers first: each buffer takes the lowest
 * offset that no live-at-the-same-time buffer occupies. Returns the arena
 * size in floats. */
static size_t place_buffers(nb_buf *b, int nb, nb_buf **tmp)
{
    size_t total = 0;
    qsort(b, (size_t)nb, sizeof *b, by_size_desc);
    for (int i = 0; i < nb; i++) {
        int m = 0;
        for (int j = 0; j < i; j++)
            if (b[j].start <= b[i].end && b[i].start <= b[j].end) tmp[m++] = &b[j];
        qsort(tmp, (size_t)m, sizeof *tmp, by_off);
        size_t off = 0;
        for (int j = 0; j < m; j++) {
            if (tmp[j]->off >= off + b[i].size) break;
            if (tmp[j]->off + tmp[j]->size > off) off = tmp[j]->off + tmp[j]->size;
        }
        b[i].off = off;
        if (off + b[i].size > total) total = off + b[i].size;
    }
    return total;
}

static size_t round_up(size_t n) { return (n + NB_ALIGN_FLOATS - 1) / NB_ALIGN_FLOATS * NB_ALIGN_FLOATS; }

/* ---- create ---------------------------------------------------------- */

static nb_status infer_shapes(nb_plan *p)
{
    nb_graph *g = p->g;
    const nb_shape *stack_in[8];
    for (int i = 0; i < p->n; i++) {
        nb_node *nd = g->nodes[i];
        nb_tensor *t = &p->t[i];
        if (nd->n_in == 0) {
            t->s = nd->shape;
            for (int k = 0; k < t->s.ndim; k++)
                if (nd->shape.d[k] != nd->shape2.d[k]) t->s.d[k] = nd->shape.d[k] * p->batch;
        } else {
            const nb_shape **in = stack_in;
            if (nd->n_in > 8 && !(in = nb_calloc((size_t)nd->n_in, sizeof *in))) return NB_ERR_NOMEM;
            for (int k = 0; k < nd->n_in; k++) in[k] = &p->t[nd->in[k]->id].s;
            nb_status st = nb_op_table[nd->op]->shape(nd, in, &t->s);
            if (in != stack_in) nb_free(in);
            if (st != NB_OK) return st;
        }
        size_t count = 1;
        for (int k = 0; k < t->s.ndim; k++)
            if (!nb_mul_ok(count, (size_t)t->s.d[k], &count) || count > ((size_t)1 << 40))
                return nb_set_error(NB_ERR_NOMEM, "%s: output too large for batch size %d",
                                    nb_op_table[nd->op]->name, p->batch);
        t->n = count;
    }
    return NB_OK;
}

void nb_plan_free(nb_plan *p)
{
    if (!p) return;
    nb_free(p->t);
    nb_free(p->inptr);
    nb_free(p->in_off);
    nb_free(p->bwd);
    nb_free(p->saved);
    nb_free(p->scratch);
    nb_free(p->arena);
    nb_free(p->saved_block);
    nb_free(p->zero_ptr);
    nb_free(p->zero_buf);
    nb_free(p->fuse);
    nb_free(p->fresh);
    nb_free(p);
}

/* The gradient root r is first written by the backward step of node `at`.
 * When that op overwrites gradients it is told to (NB_OPF_ASSIGN) and
 * reaches r through exactly one of its inputs, the plan need not zero r:
 * returns that input's index, which goes into the node's `fresh` mask.
 * Else -1. The target's root is seeded before its step, so it never is. */
static int first_write(const nb_plan *p, const int *root, int at, int r)
{
    const nb_node *w = p->g->nodes[at];
    if (!(nb_op_table[w->op]->flags & NB_OPF_ASSIGN) || !p->bwd[at] || p->fuse[at] == FUSED ||
        (p->target >= 0 && root[p->target] == r))
        return -1;
    int k = -1;
    for (int j = 0; j < w->n_in; j++)
        if (root[w->in[j]->id] == r) {
            if (k >= 0 || !p->bwd[w->in[j]->id]) return -1;
            k = j;
        }
    return k < 32 ? k : -1;
}

/* Marks the relus their producers can apply (see Fusion above). */
static void fuse_activations(nb_plan *p)
{
    for (int i = 0; i < p->n; i++) {
        const nb_node *nd = p->g->nodes[i], *src = nd->op == NB_OP_RELU ? nd->in[0] : NULL;
        if (!src || !(nb_op_table[src->op]->flags & NB_OPF_ACT) || src->n_consumers != 1 || src->keep ||
            src->id == p->target || i == p->target || p->fuse[src->id] != NB_ACT_NONE)
            continue;
        p->fuse[src->id] = NB_ACT_RELU;
        p->fuse[i] = FUSED;
    }
}

nb_plan *nb_plan_create(nb_graph *g, nb_node *target, int batch, unsigned flags)
{
    if (!g) {
        nb_set_error(NB_ERR_ARG, "plan: NULL graph");
        return NULL;
    }
    if (g->status != NB_OK) {
        nb_set_error(g->status, "plan: the graph has a build error: %s", nb_graph_error(g));
        return NULL;
    }
    if (target && target->graph != g) {
        nb_set_error(NB_ERR_ARG, "plan: the target node belongs to another graph");
        return NULL;
    }
    if (batch < 1) {
        nb_set_error(NB_ERR_ARG, "plan: batch size %d, expected >= 1", batch);
        return NULL;
    }
    if (target && !(flags & NB_PLAN_TRAIN)) {
        nb_set_error(NB_ERR_ARG, "plan: a target was given without NB_PLAN_TRAIN");
        return NULL;
    }
    if ((flags & NB_PLAN_TRAIN) && (!target || !target->requires_grad)) {
        nb_set_error(NB_ERR_ARG, "plan: a training plan needs a target that depends on a parameter");
        return NULL;
    }

    /* the kernels' workspaces, one per thread of the graph's pool */
    if (nb_pool_reserve(g->pool) != NB_OK) {
        nb_set_error(NB_ERR_NOMEM, "plan: no memory for the kernels' workspaces (%d thread%s x %zu bytes)",
                     nb_pool_threads(g->pool), nb_pool_threads(g->pool) == 1 ? "" : "s",
                     nb_sgemm_workspace_floats() * sizeof(float));
        return NULL;
    }
    int n = g->n_nodes;
    nb_plan *p = nb_calloc(1, sizeof *p);
    nb_buf *bufs = NULL, **tmp = NULL;
    int *root = NULL, *vs = NULL, *ve = NULL, *gs = NULL, *ge = NULL;
    int ok = 0;
    if (!p) return NULL;
    p->g = g;
    p->version = g->version;
    p->n = n;
    p->target = target ? target->id : -1;
    p->batch = batch;
    p->flags = flags;
    p->training = (flags & NB_PLAN_TRAIN) != 0;
    nb_rng_seed(&p->rng, 0x6e61626c61ull);
    p->seed = 0x6e61626c61ull;

    size_t n_in_total = 0;
    for (int i = 0; i < n; i++) n_in_total += (size_t)g->nodes[i]->n_in;
    p->t = nb_calloc((size_t)n, sizeof *p->t);
    p->inptr = nb_calloc(n_in_total + 1, sizeof *p->inptr);
    p->in_off = nb_calloc((size_t)n + 1, sizeof *p->in_off);
    p->bwd = nb_calloc((size_t)n, 1);
    p->saved = nb_calloc((size_t)n, sizeof *p->saved);
    p->zero_ptr = nb_calloc((size_t)n + 1, sizeof *p->zero_ptr);
    p->zero_buf = nb_calloc((size_t)n + 1, sizeof *p->zero_buf);
    p->fuse = nb_calloc((size_t)n + 1, sizeof *p->fuse);
    p->fresh = nb_calloc((size_t)n + 1, sizeof *p->fresh);
    root = nb_calloc((size_t)n, sizeof *root);
    vs = nb_calloc((size_t)n, sizeof *vs);
    ve = nb_calloc((size_t)n, sizeof *ve);
    gs = nb_calloc((size_t)n, sizeof *gs);
    ge = nb_calloc((size_t)n, sizeof *ge);
    bufs = nb_calloc(2 * (size_t)n + 1, sizeof *bufs);
    tmp = nb_calloc(2 * (size_t)n + 1, sizeof *tmp);
    if (!p->t || !p->inptr || !p->in_off || !p->bwd || !p->saved || !p->zero_ptr ||
        !p->zero_buf || !p->fuse || !p->fresh || !root || !vs || !ve || !gs || !ge || !bufs || !tmp)
        goto fail;

    for (int i = 0, k = 0; i < n; i++) {
        p->in_off[i] = k;
        for (int j = 0; j < g->nodes[i]->n_in; j++) p->inptr[k++] = &p->t[g->nodes[i]->in[j]->id];
        p->in_off[i + 1] = k;
    }
    if (infer_shapes(p) != NB_OK) goto fail;

    /* Which nodes backward visits: the target and, walking back, every input
     * of a visited node that needs a gradient. */
    if (p->target >= 0) {
        p->bwd[p->target] = 1;
        for (int i = p->target; i >= 0; i--) {
            if (!p->bwd[i]) continue;
            nb_node *nd = g->nodes[i];
            for (int j = 0; j < nd->n_in; j++)
                if (nd->in[j]->requires_grad) p->bwd[nd->in[j]->id] = 1;
        }
    }

    /* Storage roots and lifetimes. */
    const int END = 2 * n, keep_all = (flags & NB_PLAN_KEEP) != 0;
    if (!keep_all) fuse_activations(p);
#define T(i) (2 * n - 1 - (i))
    for (int i = 0; i < n; i++) {
        nb_node *nd = g->nodes[i];
        int alias = (nb_op_table[nd->op]->flags & NB_OPF_VIEW) || p->fuse[i] == FUSED;
        root[i] = alias ? root[nd->in[0]->id] : i;
        vs[i] = nd->op == NB_OP_INPUT ? 0 : i;
        ve[i] = -1;
        gs[i] = END;
        ge[i] = -1;
    }
    for (int i = 0; i < n; i++) {
        nb_node *nd = g->nodes[i];
        int r = root[i];
        int end = i;
        if (keep_all || nd->keep || nd->n_consumers == 0 || nd->op == NB_OP_INPUT || i == p->target)
            end = END;
        if (p->bwd[i] && T(i) > end) end = T(i);
        if (end > ve[r]) ve[r] = end;
        for (int j = 0; j < nd->n_in; j++) {
            int in = nd->in[j]->id, rin = root[in];
            int use = p->bwd[i] ? T(i) : i; /* a visited consumer reads inputs in backward */
            if (use > ve[rin]) ve[rin] = use;
            if (p->bwd[i] && p->bwd[in]) { /* consumer i writes in's gradient at T(i) */
                if (T(i) < gs[root[in]]) gs[root[in]] = T(i);
            }
        }
        if (p->bwd[i]) {
            if (i == p->target && T(i) < gs[r]) gs[r] = T(i);
            int e = keep_all ? END : T(i);
            if (e > ge[r]) ge[r] = e;
        }
    }
#undef T

    /* Lay the arena out: values of roots that are op outputs or inputs, and
     * gradients of visited roots that are not parameters. */
    int nbuf = 0;
    for (int i = 0; i < n; i++) {
        if (root[i] != i) continue;
        nb_op_kind op = g->nodes[i]->op;
        if (op != NB_OP_PARAM && op != NB_OP_CONST)
            bufs[nbuf++] = (nb_buf){round_up(p->t[i].n), vs[i], ve[i], 0, 2 * i};
        if (p->bwd[i] && op != NB_OP_PARAM)
            bufs[nbuf++] = (nb_buf){round_up(p->t[i].n), gs[i], ge[i], 0, 2 * i + 1};
    }
    size_t arena_floats = place_buffers(bufs, nbuf, tmp);
    p->arena_bytes = arena_floats * sizeof(float);
    if (arena_floats && !(p->arena = nb_alloc(p->arena_bytes + 64))) goto fail;
    /* align the arena itself to 64 bytes */
    float *base = p->arena ? (float *)(((uintptr_t)p->arena + 63) & ~(uintptr_t)63) : NULL;
    for (int k = 0; k < nbuf; k++) {
        int i = bufs[k].id / 2;
        if (bufs[k].id & 1) p->t[i].g = base + bufs[k].off;
        else p->t[i].x = base + bufs[k].off;
    }
    for (int i = 0; i < n; i++) {
        nb_node *nd = g->nodes[i];
        if (nd->op == NB_OP_PARAM) {
            p->t[i].x = g->pdata + nd->off;
            if (p->bwd[i]) p->t[i].g = g->pgrad + nd->off;
        } else if (nd->op == NB_OP_CONST) {
            p->t[i].x = g->cdata + nd->off;
        }
        if (root[i] != i) {
            p->t[i].x = p->t[root[i]].x;
            p->t[i].g = p->bwd[i] ? p->t[root[i]].g : NULL;
        }
    }

    /* Zeroing schedule: each arena gradient root is zeroed just before the
     * backward step of its first writer, which is node 2n-1-gs; or not at
     * all, when that writer can overwrite it instead (see first_write). */
    {
        /* counting sort of roots by the node whose step zeroes them */
        int *cnt = nb_calloc((size_t)n + 1, sizeof *cnt);
        if (!cnt) goto fail;
        for (int r = 0; r < n; r++)
            if (root[r] == r && p->bwd[r] && g->nodes[r]->op != NB_OP_PARAM) {
                int at = 2 * n - 1 - gs[r], k = first_write(p, root, at, r);
                if (k >= 0) p->fresh[at] |= 1u << k;
                else cnt[at]++;
            }
        p->zero_ptr[0] = 0;
        for (int i = 0; i < n; i++) p->zero_ptr[i + 1] = p->zero_ptr[i] + cnt[i];
        memset(cnt, 0, ((size_t)n + 1) * sizeof *cnt);
        for (int r = 0; r < n; r++)
            if (root[r] == r && p->bwd[r] && g->nodes[r]->op != NB_OP_PARAM) {
                int at = 2 * n - 1 - gs[r];
                if (first_write(p, root, at, r) < 0) p->zero_buf[p->zero_ptr[at] + cnt[at]++] = &p->t[r];
            }
        nb_free(cnt);
    }

    /* Saved state per node, and one shared scratch buffer. */
    size_t saved_total = 0, scratch = 0;
    const nb_shape *stack_in[8];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            nb_node *nd = g->nodes[i];
            const nb_op_def *def = nb_op_table[nd->op];
            if (!def->saved_bytes && !def->scratch_bytes) continue;
            const nb_shape **in = stack_in;
            if (nd->n_in > 8 && !(in = nb_calloc((size_t)nd->n_in, sizeof *in))) goto fail;
            for (int k = 0; k < nd->n_in; k++) in[k] = &p->t[nd->in[k]->id].s;
            size_t sb = def->saved_bytes ? def->saved_bytes(nd, in, &p->t[i].s) : 0;
            size_t cb = def->scratch_bytes ? def->scratch_bytes(nd, in, &p->t[i].s) : 0;
            if (in != stack_in) nb_free(in);
            sb = (sb + 63) / 64 * 64;
            if (pass == 0) {
                saved_total += sb;
                if (cb > scratch) scratch = cb;
            } else if (sb) {
                p->saved[i] = p->saved_block + saved_total;
                saved_total += sb;
            }
        }
        if (pass == 0) {
            p->saved_bytes = saved_total;
            p->scratch_bytes = scratch;
            if (saved_total && !(p->saved_block = nb_alloc(saved_total))) goto fail;
            if (scratch && !(p->scratch = nb_alloc(scratch))) goto fail;
            saved_total = 0;
        }
    }

    ok = 1;
fail:
    nb_free(root);
    nb_free(vs);
    nb_free(ve);
    nb_free(gs);
    nb_free(ge);
    nb_free(bufs);
    nb_free(tmp);
    if (ok) return p;
    nb_plan_free(p);
    return NULL;
}

/* ---- run ------------------------------------------------------------- */

static nb_status check_fresh(const nb_plan *p)
{
    if (p->version != p->g->version)
        return nb_set_error(NB_ERR_STATE, "plan: the graph changed after this plan was built; "
                                          "create a new plan");
    return NB_OK;
}

static nb_exec exec_for(nb_plan *p, int i)
{
    nb_node *nd = p->g->nodes[i];
    nb_exec e = {nd, nd->n_in, p->inptr + p->in_off[i], &p->t[i], p->saved[i], p->scratch,
                 p->training, &p->rng, p->g->pool,
                 p->seed, p->step, p->batch_offset, p->has_sync ? &p->sync : NULL, &p->bwd_status,
                 p->fuse[i] > 0 ? p->fuse[i] : NB_ACT_NONE, p->fresh[i]};
    return e;
}

/* Index of the first non-finite value of x[0..n), or n. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k])) return k;
    return n;
}

/* "node 7 (relu 'h1') with inputs [64,128] [128]" into buf */
static const char *describe(const nb_plan *p, int i, char *buf, size_t size)
{
    const nb_node *nd = p->g->nodes[i];
    size_t used = (size_t)snprintf(buf, size, "node %d (%s%s%s%s) with input%s", i, nb_op_table[nd->op]->name,
                                   nd->name ? " '" : "", nd->name ? nd->name : "", nd->name ? "'" : "",
                                   nd->n_in == 1 ? "" : "s");
    for (int k = 0; k < nd->n_in && used < size; k++) {
        char s[96];
        used += (size_t)snprintf(buf + used, size - used, " %s", nb_shape_str(&p->t[nd->in[k]->id].s, s, sizeof s));
    }
    return buf;
}

static nb_status anomaly(const nb_plan *p, int i, const char *what, const nb_tensor *t, const float *x, size_t at)
{
    char d[400], s[96];
    return nb_set_error(NB_ERR_NUMERIC, "detect-anomaly: %s of %s is %s at element %zu of %s", what,
                        describe(p, i, d, sizeof d), isnan(x[at]) ? "NaN" : "infinite", at,
                        nb_shape_str(&t->s, s, sizeof s));
}

nb_status nb_plan_forward(nb_plan *p)
{
    if (!p) return nb_set_error(NB_ERR_ARG, "plan_forward: NULL plan");
    nb_status st = check_fresh(p);
    if (st != NB_OK) return st;
    for (int i = 0; i < p->n; i++) {
        const nb_op_def *def = nb_op_table[p->g->nodes[i]->op];
        if (!def->forward || p->fuse[i] == FUSED) continue; /* leaves, views, fused */
        nb_exec e = exec_for(p, i);
        if (p->detect_anomaly) e.act = NB_ACT_NONE; /* check the op's output, then activate */
        st = def->forward(&e);
        if (st != NB_OK) break;
        if (p->detect_anomaly) {
            size_t at = first_non_finite(p->t[i].x, p->t[i].n);
            if (at < p->t[i].n) {
                st = anomaly(p, i, "the output", &p->t[i], p->t[i].x, at);
                break;
            }
            if (p->fuse[i] > 0) nb_act_apply(p->g->pool, p->fuse[i], p->t[i].x, p->t[i].n);
        }
    }
    if (p->training) p->step++; /* the next pass draws new masks */
    return st;
}

nb_status nb_plan_backward(nb_plan *p, const float *seed_grad)
{
    if (!p) return nb_set_error(NB_ERR_ARG, "plan_backward: NULL plan");
    nb_status st = check_fresh(p);
    if (st != NB_OK) return st;
    if (p->target < 0)
        return nb_set_error(NB_ERR_STATE, "plan_backward: this plan was built without a target");
    p->bwd_status = NB_OK;
    for (int i = p->target; i >= 0; i--) {
        if (i < p->target && p->hook && (st = p->hook(p->hook_user, i + 1)) != NB_OK) return st;
        for (int k = p->zero_ptr[i]; k < p->zero_ptr[i + 1]; k++)
            memset(p->zero_buf[k]->g, 0, p->zero_buf[k]->n * sizeof(float));
        if (i == p->target) {
            nb_tensor *t = &p->t[i];
            for (size_t k = 0; k < t->n; k++) t->g[k] += seed_grad ? seed_grad[k] : 1.0f;
        }
        if (!p->bwd[i] || p->fuse[i] == FUSED) continue;
        const nb_op_def *def = nb_op_table[p->g->nodes[i]->op];
        if (!def->backward) continue;
        nb_exec e = exec_for(p, i);
        def->backward(&e);
        if (p->bwd_status != NB_OK) return p->bwd_status;
        if (p->detect_anomaly)
            for (int k = 0; k < e.n_in; k++) {
                const nb_tensor *in = e.in[k];
                size_t at = in->g ? first_non_finite(in->g, in->n) : in->n;
                if (at < in->n) {
                    char what[64];
                    snprintf(what, sizeof what, "the gradient for input %d from the backward pass", k);
                    return anomaly(p, i, what, in, in->g, at);
                }
            }
    }
    if (p->hook && (st = p->hook(p->hook_user, 0)) != NB_OK) return st;
    return NB_OK;
}

void nb_plan_set_detect_anomaly(nb_plan *p, int on)
{
    if (p) p->detect_anomaly = on != 0;
}

/* ---- access ---------------------------------------------------------- */

void nb_plan_poison(nb_plan *p)
{
    size_t n = p && p->arena ? p->arena_bytes / sizeof(float) : 0;
    float *base = n ? (float *)(((uintptr_t)p->arena + 63) & ~(uintptr_t)63) : NULL;
    for (size_t i = 0; i < n; i++) base[i] = NAN;
}

static int owns(const nb_plan *p, const nb_node *n)
{
    return p && n && n->graph == p->g && n->id < p->n && p->g->nodes[n->id] == n;
}

float *nb_plan_data(nb_plan *p, const nb_node *n, size_t *count)
{
    if (!owns(p, n)) return NULL;
    if (count) *count = p->t[n->id].n;
    return p->t[n->id].x;
}

float *nb_plan_grad(nb_plan *p, const nb_node *n, size_t *count)
{
    if (!owns(p, n)) return NULL;
    if (count) *count = p->t[n->id].n;
    return p->t[n->id].g;
}

nb_status nb_plan_set_input(nb_plan *p, nb_node *input, const float *values, size_t count)
{
    if (!owns(p, input) || input->op != NB_OP_INPUT)
        return nb_set_error(NB_ERR_ARG, "plan_set_input: '%s' is not an input of this plan",
                            input ? nb_node_name(input) : "(null)");
    nb_tensor *t = &p->t[input->id];
    if (count != t->n) {
        char buf[96];
        return nb_set_error(NB_ERR_SHAPE, "plan_set_input: input '%s' of shape %s takes %zu values, got %zu",
                            nb_node_name(input), nb_shape_str(&t->s, buf, sizeof buf), t->n, count);
    }
    memcpy(t->x, values, count * sizeof(float));
    return NB_OK;
}

int nb_plan_shape(const nb_plan *p, const nb_node *n, int64_t shape[NB_MAX_DIMS])
{
    if (!owns(p, n)) return -1;
    const nb_shape *s = &p->t[n->id].s;
    for (int i = 0; i < s->ndim; i++) shape[i] = s->d[i];
    return s->ndim;
}

size_t nb_plan_memory(const nb_plan *p)
{
    return p ? p->arena_bytes + p->saved_bytes + p->scratch_bytes : 0;
}

void nb_plan_set_training(nb_plan *p, int training)
{
    if (p) p->training = training != 0;
}

void nb_plan_seed(nb_plan *p, uint64_t seed)
{
    if (!p) return;
    nb_rng_seed(&p->rng, seed);
    p->seed = seed;
    p->step = 0;
}

void nb_plan_set_step(nb_plan *p, uint64_t step)
{
    if (p) p->step = step;
}

uint64_t nb_plan_step(const nb_plan *p) { return p ? p->step : 0; }

void nb_plan_set_batch_offset(nb_plan *p, int64_t offset)
{
    if (p) p->batch_offset = offset >= 0 ? offset : 0;
}

void nb_plan_set_sync(nb_plan *p, const nb_sync *s)
{
    if (!p) return;
    p->has_sync = s != NULL;
    if (s) p->sync = *s;
}

void nb_plan_set_backward_hook(nb_plan *p, nb_status (*hook)(void *user, int node), void *user)
{
    if (!p) return;
    p->hook = hook;
    p->hook_user = user;
}

nb_rng *nb_plan_rng(nb_plan *p) { return p ? &p->rng : NULL; }
