/*
 * explain.c - one training step of a tiny network, in words and numbers a
 * learner can check by hand (nb_explain_step, see nabla.h).
 *
 * Every number written is one the library computed: values and gradients
 * are read from the plan (nb_plan_data, nb_plan_grad) after nb_plan_forward
 * and nb_plan_backward, and the new weights from the graph after
 * nb_optim_step. The op's formula is used only to PRESENT a local derivative
 * (sigmoid: y(1 - y) from the plan's y) and the products and sums that lead
 * to a value; the value itself, on the right of the last '=', is the
 * library's. The one exception is a value used in several places: each use
 * sends back a part of its gradient, and the library only keeps the total;
 * the parts are shown as computed here, and the total (the library's) after
 * the last of them.
 *
 * Lines are meant to be read by people and parsed by programs
 * (tests/explain_check.py recomputes them in float64):
 *   forward     "    z1[0,1] = 0.0000*0.3000 + 1.0000*0.8000 + (-0.2000) = 0.6000"
 *   backward    "    dL/dz2[0,0] = 0.2408 * 0.2979 = 0.0717   (0.2408 = ...)"
 *   update      "    W1[0,0] = 0.5000 - 0.5*0.0182 = 0.4909"
 *
 * All text goes to the caller's FILE*, and nowhere else.
 */
#include "../core/internal.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 48
#define DEFAULT_MAX_VALUES 256

/* ---- text: built in memory, written with fwrite ----------------------
 * Lines are assembled here (vsnprintf into a growing buffer, so columns can
 * be padded) and handed to the caller's stream once a block is complete.
 * Failures are sticky: 1 out of memory, 2 a write failed. */

typedef struct text_buf {
    char *buf;
    size_t len, cap;
    int failed;
} text_buf;

static int grow(text_buf *t, size_t need)
{
    if (t->failed) return 0;
    if (t->len + need + 1 <= t->cap) return 1;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + need + 1) {
        if (cap > SIZE_MAX / 2) {
            t->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *b = nb_realloc(t->buf, cap);
    if (!b) {
        t->failed = 1;
        return 0;
    }
    t->buf = b;
    t->cap = cap;
    return 1;
}

static void text_add(text_buf *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void text_add(text_buf *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    if (t->failed) return;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = 1;
        return;
    }
    if (!grow(t, (size_t)n)) return;
    if ((size_t)n < sizeof small) {
        memcpy(t->buf + t->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

/* spaces until the current line (after the last newline) is col wide */
static void text_pad(text_buf *t, size_t col)
{
    size_t i = t->len;
    while (i > 0 && t->buf[i - 1] != '\n') i--;
    size_t c = t->len - i;
    if (c >= col || !grow(t, col - c)) return;
    memset(t->buf + t->len, ' ', col - c);
    t->len += col - c;
    t->buf[t->len] = '\0';
}

static int text_write(text_buf *t, FILE *f)
{
    if (t->failed) return -1;
    if (t->len && fwrite(t->buf, 1, t->len, f) != t->len) {
        t->failed = 2;
        return -1;
    }
    t->len = 0;
    return 0;
}

typedef struct ex {
    nb_graph *g;
    nb_plan *p;
    nb_node *loss;
    nb_optim *opt;
    FILE *f;
    int dec;
    size_t maxv;
    text_buf t;
    char (*names)[NAME_MAX_LEN];   /* display name per node id */
    int *parts;                    /* per node: uses that send a gradient back */
    int *left;                     /* per node: of those, still to be shown */
} ex;

/* ---- small helpers --------------------------------------------------- */

static const float *val(ex *e, const nb_node *n) { return nb_plan_data(e->p, n, NULL); }
static const float *grd(ex *e, const nb_node *n) { return nb_plan_grad(e->p, n, NULL); }
static size_t cnt(ex *e, const nb_node *n)
{
    size_t c = 0;
    nb_plan_data(e->p, n, &c);
    return c;
}
static const char *nm(ex *e, const nb_node *n) { return e->names[n->id]; }
static int is_leaf(const nb_node *n)
{
    return n->op == NB_OP_INPUT || n->op == NB_OP_PARAM || n->op == NB_OP_CONST;
}
static int is_loss_op(nb_op_kind op)
{
    return op == NB_OP_MSE || op == NB_OP_L1 || op == NB_OP_HUBER || op == NB_OP_BCE_LOGITS ||
           op == NB_OP_SOFTMAX_CE || op == NB_OP_NLL;
}

/* "%.*f" without a minus sign on a value that rounds to zero */
static const char *fmt(const ex *e, double v, char *buf, size_t size)
{
    snprintf(buf, size, "%.*f", e->dec, v);
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)) memmove(buf, buf + 1, strlen(buf));
    return buf;
}
/* a number */
static void num(ex *e, double v)
{
    char b[96];
    text_add(&e->t, "%s", fmt(e, v, b, sizeof b));
}
/* a number as a factor or term: negative ones in parentheses */
static void fac(ex *e, double v)
{
    char b[96];
    fmt(e, v, b, sizeof b);
    text_add(&e->t, b[0] == '-' ? "(%s)" : "%s", b);
}
/* a positive difference; "less than 0.0001" when it rounds to zero */
static void diff(ex *e, double d)
{
    if (d < 0.5 * pow(10.0, -e->dec)) text_add(&e->t, "less than %.*f", e->dec, pow(10.0, -e->dec));
    else num(e, d);
}
/* a number right-aligned in a column of numbers */
static void col(ex *e, double v)
{
    char b[96];
    text_add(&e->t, " %*s", e->dec + 3, fmt(e, v, b, sizeof b));
}

static int shape_of(ex *e, const nb_node *n, int64_t *s) { return nb_plan_shape(e->p, n, s); }

static void unravel(size_t flat, const int64_t *s, int nd, int64_t *idx)
{
    for (int k = nd - 1; k >= 0; k--) {
        idx[k] = s[k] ? (int64_t)(flat % (size_t)s[k]) : 0;
        flat = s[k] ? flat / (size_t)s[k] : 0;
    }
}

/* "name[i,j]" of element `flat` of n (just "name" for a 0-d value) */
static void ename(ex *e, const nb_node *n, size_t flat, char *buf, size_t size)
{
    int64_t s[NB_MAX_DIMS], idx[NB_MAX_DIMS];
    int nd = shape_of(e, n, s);
    size_t used = (size_t)snprintf(buf, size, "%s", nm(e, n));
    if (nd <= 0 || used >= size) return;
    unravel(flat, s, nd, idx);
    for (int k = 0; k < nd && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", k ? "," : "[", (long long)idx[k]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* width of the widest element name of n (the last element has the largest indices) */
static size_t ename_width(ex *e, const nb_node *n)
{
    char b[160];
    size_t c = cnt(e, n);
    ename(e, n, c ? c - 1 : 0, b, sizeof b);
    return strlen(b);
}

/* starts a line: indent, then "prefix" + element name, padded to width, then " = " */
static void lhs(ex *e, const char *prefix, const nb_node *n, size_t flat, size_t width)
{
    char b[160];
    ename(e, n, flat, b, sizeof b);
    text_add(&e->t, "    %s%s", prefix, b);
    text_pad(&e->t, 4 + strlen(prefix) + width);
    text_add(&e->t, " = ");
}

/* Output element o of a broadcasting op -> flat index into an input of shape is. */
static size_t bmap(const int64_t *os, int ond, const int64_t *is, int ind, size_t o)
{
    int64_t idx[NB_MAX_DIMS];
    unravel(o, os, ond, idx);
    size_t flat = 0;
    for (int k = 0; k < ind; k++) {
        int ko = k + (ond - ind);
        int64_t i = is[k] == 1 ? 0 : idx[ko];
        flat = flat * (size_t)is[k] + (size_t)i;
    }
    return flat;
}

/* Input element i of a reduction (sum, mean) -> its output element. */
static size_t rmap(ex *e, const nb_node *n, size_t i)
{
    int64_t s[NB_MAX_DIMS], idx[NB_MAX_DIMS];
    int nd = shape_of(e, n->in[0], s);
    unravel(i, s, nd, idx);
    size_t flat = 0;
    for (int k = 0; k < nd; k++)
        if (!(n->ia[0] >> k & 1)) flat = flat * (size_t)s[k] + (size_t)idx[k];
    return flat;
}

static int flush(ex *e) { return text_write(&e->t, e->f); }

/* ---- what explain can show ------------------------------------------ */

static nb_status check_node(ex *e, const nb_node *n)
{
    const char *op = nb_op_table[n->op]->name;
    switch (n->op) {
    case NB_OP_INPUT: case NB_OP_PARAM: case NB_OP_CONST:
    case NB_OP_ADD: case NB_OP_SUB: case NB_OP_MUL: case NB_OP_DIV:
    case NB_OP_NEG: case NB_OP_SCALE: case NB_OP_ADD_SCALAR: case NB_OP_EXP: case NB_OP_LOG:
    case NB_OP_SQRT: case NB_OP_POW: case NB_OP_ABS:
    case NB_OP_RELU: case NB_OP_LEAKY_RELU: case NB_OP_ELU: case NB_OP_GELU: case NB_OP_SIGMOID:
    case NB_OP_TANH: case NB_OP_SOFTPLUS:
    case NB_OP_RESHAPE: case NB_OP_SUM: case NB_OP_MEAN: case NB_OP_LINEAR:
    case NB_OP_MSE: case NB_OP_L1: case NB_OP_HUBER: case NB_OP_BCE_LOGITS: case NB_OP_SOFTMAX_CE:
    case NB_OP_NLL:
        break;
    case NB_OP_MATMUL: {
        int64_t s[NB_MAX_DIMS];
        if (shape_of(e, n->in[0], s) != 2 || shape_of(e, n->in[1], s) != 2)
            return nb_set_error(NB_ERR_ARG, "explain: node '%s' is a batched matmul; explain shows "
                                            "matmul of two 2-D matrices only", nm(e, n));
        break;
    }
    default:
        return nb_set_error(NB_ERR_ARG, "explain: node '%s' is a %s, an op explain cannot show yet "
                                        "(it shows linear, matmul, elementwise ops, activations, "
                                        "sum, mean, reshape and the losses)", nm(e, n), op);
    }
    if (cnt(e, n) > e->maxv)
        return nb_set_error(NB_ERR_ARG, "explain: node '%s' holds %zu values; explain is for tiny "
                                        "networks (at most %zu values per node)",
                            nm(e, n), cnt(e, n), e->maxv);
    return NB_OK;
}

/* With buffer reuse, a value may be gone by the time it is shown: every
 * value and gradient must have memory of its own (views share their input's). */
static nb_status check_keep(ex *e)
{
    int n = nb_graph_node_count(e->g);
    for (int i = 0; i < n; i++) {
        const nb_node *a = nb_graph_node(e->g, i);
        if (a->op == NB_OP_RESHAPE) continue;
        for (int wa = 0; wa < 2; wa++) {
            const float *pa = wa ? grd(e, a) : val(e, a);
            size_t ca = cnt(e, a);
            if (!pa || !ca) continue;
            for (int j = i; j < n; j++) {
                const nb_node *b = nb_graph_node(e->g, j);
                if (b->op == NB_OP_RESHAPE) continue;
                for (int wb = 0; wb < 2; wb++) {
                    if (j == i && wb <= wa) continue;
                    const float *pb = wb ? grd(e, b) : val(e, b);
                    size_t cb = cnt(e, b);
                    if (pb && cb && pa < pb + cb && pb < pa + ca)
                        return nb_set_error(NB_ERR_STATE,
                                            "explain: the plan reuses memory ('%s' and '%s' share "
                                            "it), so values would be gone before they are shown; "
                                            "create it with NB_PLAN_TRAIN | NB_PLAN_KEEP",
                                            nm(e, a), nm(e, b));
                }
            }
        }
    }
    return NB_OK;
}

/* Names: the node's own, else "loss" for the loss, else the op and a count. */
static nb_status make_names(ex *e)
{
    int n = nb_graph_node_count(e->g);
    int per_op[NB_OP_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        const nb_node *nd = nb_graph_node(e->g, i);
        const char *own = nb_node_name(nd);
        if (*own) snprintf(e->names[i], NAME_MAX_LEN, "%s", own);
        else if (nd == e->loss && !nb_graph_find(e->g, "loss")) snprintf(e->names[i], NAME_MAX_LEN, "loss");
        else snprintf(e->names[i], NAME_MAX_LEN, "%s%d", nb_op_table[nd->op]->name, ++per_op[nd->op]);
    }
    return NB_OK;
}

/* ---- leaves: what the step starts from ------------------------------- */

/* "name[i,:]" for row r of a leaf of 2 or more axes, "name" otherwise */
static void row_label(ex *e, const nb_node *n, size_t r, char *b, size_t size)
{
    int64_t s[NB_MAX_DIMS], idx[NB_MAX_DIMS];
    int nd = shape_of(e, n, s);
    size_t used = (size_t)snprintf(b, size, "%s", nm(e, n));
    if (nd < 2 || used >= size) return;
    unravel(r * (size_t)s[nd - 1], s, nd, idx);
    for (int k = 0; k < nd - 1 && used < size; k++)
        used += (size_t)snprintf(b + used, size - used, "%s%lld", k ? "," : "[", (long long)idx[k]);
    if (used < size) snprintf(b + used, size - used, ",:]");
}

static size_t row_len(ex *e, const nb_node *n)
{
    int64_t s[NB_MAX_DIMS];
    int nd = shape_of(e, n, s);
    return nd >= 1 ? (size_t)s[nd - 1] : 1;
}

static size_t leaf_width(ex *e, const nb_node *n)
{
    char b[160];
    size_t row = row_len(e, n), c = cnt(e, n);
    row_label(e, n, row && c ? c / row - 1 : 0, b, sizeof b);
    return strlen(b);
}

static void leaf_rows(ex *e, const nb_node *n, size_t width)
{
    const float *x = val(e, n);
    size_t c = cnt(e, n), row = row_len(e, n);
    if (!row) return;
    for (size_t r = 0; r * row < c; r++) {
        char b[160];
        row_label(e, n, r, b, sizeof b);
        text_add(&e->t, "  %s", b);
        text_pad(&e->t, 2 + width);
        text_add(&e->t, " =");
        for (size_t k = 0; k < row; k++) col(e, x[r * row + k]);
        text_add(&e->t, "\n");
    }
}

static void show_leaves(ex *e)
{
    static const char *const head[3] = {
        "The data (inputs and targets, one row per example):\n",
        "The weights (what the step changes):\n",
        "Constants:\n"};
    static const nb_op_kind kinds[3] = {NB_OP_INPUT, NB_OP_PARAM, NB_OP_CONST};
    int n = nb_graph_node_count(e->g);
    size_t width = 0;
    for (int i = 0; i < n; i++) {
        const nb_node *nd = nb_graph_node(e->g, i);
        if (is_leaf(nd) && leaf_width(e, nd) > width) width = leaf_width(e, nd);
    }
    for (int k = 0; k < 3; k++) {
        int any = 0;
        for (int i = 0; i < n; i++) {
            const nb_node *nd = nb_graph_node(e->g, i);
            if (nd->op != kinds[k] || !cnt(e, nd)) continue;
            if (!any++) text_add(&e->t, "%s", head[k]);
            leaf_rows(e, nd, width);
        }
        if (any) text_add(&e->t, "\n");
    }
}

/* ---- forward --------------------------------------------------------- */

static const char *act_words(nb_op_kind op)
{
    switch (op) {
    case NB_OP_RELU: return "relu(v) = max(v, 0): keeps positive values, turns negative ones into 0";
    case NB_OP_LEAKY_RELU: return "leaky_relu(v) = v if v > 0, else slope*v";
    case NB_OP_ELU: return "elu(v) = v if v > 0, else alpha*(e^v - 1)";
    case NB_OP_GELU: return "gelu(v) = v * Phi(v), Phi the normal distribution's CDF";
    case NB_OP_SIGMOID: return "sigmoid(v) = 1/(1 + e^-v): squashes any number into (0, 1)";
    case NB_OP_TANH: return "tanh(v) squashes any number into (-1, 1)";
    case NB_OP_SOFTPLUS: return "softplus(v) = log(1 + e^v): a smooth relu";
    default: return "";
    }
}

/* "h = tanh(z1)" and a few words on what the op does */
static void header(ex *e, const nb_node *n)
{
    const char *y = nm(e, n), *op = nb_op_table[n->op]->name;
    const char *a = n->n_in > 0 ? nm(e, n->in[0]) : "", *b = n->n_in > 1 ? nm(e, n->in[1]) : "";
    text_add(&e->t, "  %s = ", y);
    switch (n->op) {
    case NB_OP_ADD: text_add(&e->t, "%s + %s", a, b); break;
    case NB_OP_SUB: text_add(&e->t, "%s - %s", a, b); break;
    case NB_OP_MUL: text_add(&e->t, "%s * %s", a, b); break;
    case NB_OP_DIV: text_add(&e->t, "%s / %s", a, b); break;
    case NB_OP_NEG: text_add(&e->t, "-%s", a); break;
    case NB_OP_SCALE: text_add(&e->t, "%g * %s", (double)n->fa[0], a); break;
    case NB_OP_ADD_SCALAR: text_add(&e->t, "%s + %g", a, (double)n->fa[0]); break;
    case NB_OP_POW: text_add(&e->t, "%s^%g", a, (double)n->fa[0]); break;
    case NB_OP_ABS: text_add(&e->t, "|%s|", a); break;
    case NB_OP_MATMUL: text_add(&e->t, "%s @ %s (matrix product)", a, b); break;
    case NB_OP_LINEAR:
        text_add(&e->t, "linear(%s, %s%s%s)", a, b, n->n_in == 3 ? ", " : "",
                    n->n_in == 3 ? nm(e, n->in[2]) : "");
        break;
    default: text_add(&e->t, "%s(%s%s%s)", op, a, n->n_in > 1 ? ", " : "", b); break;
    }
    const char *w = act_words(n->op);
    if (*w) text_add(&e->t, "   %s", w);
    if (n->op == NB_OP_LEAKY_RELU) text_add(&e->t, ", slope %g", (double)n->fa[0]);
    if (n->op == NB_OP_ELU) text_add(&e->t, ", alpha %g", (double)n->fa[0]);
    text_add(&e->t, "\n");
    if (n->op == NB_OP_LINEAR || n->op == NB_OP_MATMUL) {
        /* the formula of one element */
        int64_t s[NB_MAX_DIMS];
        int nd = shape_of(e, n->in[0], s);
        int64_t K = s[nd - 1];
        const char *r = nd == 2 ? "n" : "...";
        const char *w_ = b;
        text_add(&e->t, "    each output: %s[%s,j] = ", y, r);
        if (K <= 4) {
            for (int64_t k = 0; k < K; k++) {
                if (n->op == NB_OP_LINEAR)
                    text_add(&e->t, "%s%s[%s,%lld]*%s[j,%lld]", k ? " + " : "", a, r, (long long)k, w_, (long long)k);
                else
                    text_add(&e->t, "%s%s[%s,%lld]*%s[%lld,j]", k ? " + " : "", a, r, (long long)k, w_, (long long)k);
            }
        } else {
            text_add(&e->t, n->op == NB_OP_LINEAR ? "sum over i of %s[%s,i]*%s[j,i]" : "sum over i of %s[%s,i]*%s[i,j]",
                        a, r, w_);
        }
        if (n->n_in == 3) text_add(&e->t, " + %s[j]", nm(e, n->in[2]));
        text_add(&e->t, "\n");
    }
    if (n->op == NB_OP_RESHAPE) {
        int64_t s[NB_MAX_DIMS];
        int nd = shape_of(e, n, s);
        text_add(&e->t, "    only the shape changes, to [");
        for (int k = 0; k < nd; k++) text_add(&e->t, k ? ",%lld" : "%lld", (long long)s[k]);
        text_add(&e->t, "]: the same numbers, in the same order\n");
    }
}

/* The right-hand side of one forward element, before "= value". */
static void fwd_expr(ex *e, const nb_node *n, size_t o)
{
    const float *x = n->n_in > 0 ? val(e, n->in[0]) : NULL;
    const float c = n->fa[0];
    switch (n->op) {
    case NB_OP_ADD: case NB_OP_SUB: case NB_OP_MUL: case NB_OP_DIV: {
        int64_t os[NB_MAX_DIMS], as[NB_MAX_DIMS], bs[NB_MAX_DIMS];
        int ond = shape_of(e, n, os), and_ = shape_of(e, n->in[0], as), bnd = shape_of(e, n->in[1], bs);
        static const char sym[] = {'+', '-', '*', '/'};
        fac(e, x[bmap(os, ond, as, and_, o)]);
        text_add(&e->t, " %c ", sym[n->op - NB_OP_ADD]);
        fac(e, val(e, n->in[1])[bmap(os, ond, bs, bnd, o)]);
        break;
    }
    case NB_OP_NEG: text_add(&e->t, "-"); fac(e, x[o]); break;
    case NB_OP_SCALE: text_add(&e->t, "%g*", (double)c); fac(e, x[o]); break;
    case NB_OP_ADD_SCALAR: fac(e, x[o]); text_add(&e->t, " + %g", (double)c); break;
    case NB_OP_POW: fac(e, x[o]); text_add(&e->t, "^%g", (double)c); break;
    case NB_OP_ABS: text_add(&e->t, "|"); num(e, x[o]); text_add(&e->t, "|"); break;
    case NB_OP_EXP: case NB_OP_LOG: case NB_OP_SQRT: case NB_OP_RELU: case NB_OP_LEAKY_RELU:
    case NB_OP_ELU: case NB_OP_GELU: case NB_OP_SIGMOID: case NB_OP_TANH: case NB_OP_SOFTPLUS:
        text_add(&e->t, "%s(", nb_op_table[n->op]->name);
        num(e, x[o]);
        text_add(&e->t, ")");
        break;
    case NB_OP_LINEAR: case NB_OP_MATMUL: {
        int64_t s[NB_MAX_DIMS], ys[NB_MAX_DIMS];
        int nd = shape_of(e, n->in[0], s);
        shape_of(e, n, ys);
        const size_t K = (size_t)s[nd - 1], J = (size_t)ys[nd - 1];
        const size_t r = o / J, j = o % J;
        const float *w = val(e, n->in[1]);
        for (size_t k = 0; k < K; k++) {
            if (k) text_add(&e->t, " + ");
            fac(e, x[r * K + k]);
            text_add(&e->t, "*");
            fac(e, n->op == NB_OP_LINEAR ? w[j * K + k] : w[k * J + j]);
        }
        if (n->n_in == 3) {
            text_add(&e->t, " + ");
            fac(e, val(e, n->in[2])[j]);
        }
        break;
    }
    case NB_OP_SUM: case NB_OP_MEAN: {
        size_t m = 0, c_in = cnt(e, n->in[0]);
        if (n->op == NB_OP_MEAN) text_add(&e->t, "(");
        for (size_t i = 0; i < c_in; i++)
            if (rmap(e, n, i) == o) {
                if (m++) text_add(&e->t, " + ");
                fac(e, x[i]);
            }
        if (n->op == NB_OP_MEAN) text_add(&e->t, ")/%zu", m);
        break;
    }
    default: break;
    }
}

/* A loss, value by value: how far off each guess is, then the mean. */
static void loss_detail(ex *e, const nb_node *n)
{
    const nb_node *P = n->in[0], *T = n->in[1];
    const float *p = val(e, P), *t = val(e, T);
    const size_t c = cnt(e, P);
    const double loss = val(e, n)[0];
    const float delta = n->fa[0];
    size_t rows = c, C = 1;
    if (n->op == NB_OP_SOFTMAX_CE || n->op == NB_OP_NLL) {
        int64_t s[NB_MAX_DIMS];
        shape_of(e, P, s);
        rows = (size_t)s[0];
        C = (size_t)s[1];
    }
    const char *pn = nm(e, P), *tn = nm(e, T);
    size_t width = ename_width(e, P);
    switch (n->op) {
    case NB_OP_MSE: text_add(&e->t, "  %s = mse(%s, %s): the mean of (guess - target)^2\n", nm(e, n), pn, tn); break;
    case NB_OP_L1: text_add(&e->t, "  %s = l1(%s, %s): the mean of |guess - target|\n", nm(e, n), pn, tn); break;
    case NB_OP_HUBER:
        text_add(&e->t, "  %s = huber(%s, %s): the mean of d^2/2 where |d| < %g, else %g*(|d| - %g/2), "
                           "d = guess - target\n", nm(e, n), pn, tn, (double)delta, (double)delta, (double)delta);
        break;
    case NB_OP_BCE_LOGITS:
        text_add(&e->t, "  %s = bce_with_logits(%s, %s): the guess is p = sigmoid(%s); the mean of "
                           "-(t*log(p) + (1 - t)*log(1 - p))\n", nm(e, n), pn, tn, pn);
        break;
    case NB_OP_SOFTMAX_CE:
        text_add(&e->t, "  %s = softmax_cross_entropy(%s, %s): softmax turns each row of scores into "
                           "probabilities p; the mean of -log(p[label])", nm(e, n), pn, tn);
        if (delta > 0)
            text_add(&e->t, ";\n    with label smoothing %g: %g*(-log(p[label])) + %g*(the mean of -log(p) over the "
                               "classes)", (double)delta, 1.0 - delta, (double)delta);
        text_add(&e->t, "\n");
        break;
    default: /* nll */
        text_add(&e->t, "  %s = nll(%s, %s): the mean of -%s[row, label]\n", nm(e, n), pn, tn, pn);
        break;
    }
    double *term = nb_calloc(rows ? rows : 1, sizeof *term);
    if (!term) {
        e->t.failed = 1;
        return;
    }
    for (size_t i = 0; i < rows; i++) {
        if (n->op == NB_OP_SOFTMAX_CE || n->op == NB_OP_NLL) {
            const float *z = p + i * C;
            const size_t y = (size_t)t[i];
            text_add(&e->t, "    row %zu: label %zu, ", i, y);
            if (n->op == NB_OP_NLL) {
                term[i] = -(double)z[y];
                text_add(&e->t, "-%s[%zu,%zu] = ", pn, i, y);
                num(e, term[i]);
            } else {
                double m = z[0], s = 0, zsum = 0;
                for (size_t k = 1; k < C; k++) m = z[k] > m ? z[k] : m;
                for (size_t k = 0; k < C; k++) s += exp((double)z[k] - m), zsum += z[k];
                const double lse = m + log(s);
                text_add(&e->t, "p = (");
                for (size_t k = 0; k < C; k++) {
                    if (k) text_add(&e->t, ", ");
                    num(e, exp((double)z[k] - lse));
                }
                text_add(&e->t, "), -log(p[%zu]) = ", y);
                num(e, lse - z[y]);
                term[i] = (1.0 - delta) * (lse - z[y]) + delta * (lse - zsum / (double)C);
                if (delta > 0) {
                    text_add(&e->t, ", smoothed %g*", 1.0 - delta);
                    num(e, lse - z[y]);
                    text_add(&e->t, " + %g*", (double)delta);
                    num(e, lse - zsum / (double)C);
                    text_add(&e->t, " = ");
                    num(e, term[i]);
                }
            }
        } else {
            const double d = (double)p[i] - (double)t[i], a = fabs(d);
            char b[160];
            ename(e, P, i, b, sizeof b);
            text_add(&e->t, "    %s:", b);
            text_pad(&e->t, 4 + width + 1);
            if (n->op == NB_OP_BCE_LOGITS) {
                const double pr = 1.0 / (1.0 + exp(-(double)p[i]));
                term[i] = (p[i] > 0 ? p[i] : 0) - (double)p[i] * t[i] + log1p(exp(-fabs((double)p[i])));
                text_add(&e->t, " p = sigmoid(");
                num(e, p[i]);
                text_add(&e->t, ") = ");
                num(e, pr);
                text_add(&e->t, ", target ");
                num(e, t[i]);
                text_add(&e->t, ", loss ");
                num(e, term[i]);
            } else {
                text_add(&e->t, " guess ");
                num(e, p[i]);
                text_add(&e->t, ", target ");
                num(e, t[i]);
                text_add(&e->t, ", off by %s", d < 0 ? "" : " ");
                num(e, d);
                if (n->op == NB_OP_MSE) {
                    term[i] = d * d;
                    text_add(&e->t, ", squared ");
                } else if (n->op == NB_OP_L1) {
                    term[i] = a;
                    text_add(&e->t, ", size ");
                } else {
                    term[i] = a < delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
                    text_add(&e->t, a < delta ? ", d^2/2 " : ", %g*(|d| - %g/2) ", (double)delta, (double)delta);
                }
                num(e, term[i]);
            }
        }
        text_add(&e->t, "\n");
    }
    text_add(&e->t, "    %s = ", nm(e, n));
    if (rows <= 16) {
        text_add(&e->t, "(");
        for (size_t i = 0; i < rows; i++) {
            if (i) text_add(&e->t, " + ");
            num(e, term[i]);
        }
        text_add(&e->t, ")/%zu = ", rows);
    } else {
        text_add(&e->t, "(the sum of the %zu values above)/%zu = ", rows, rows);
    }
    num(e, loss);
    text_add(&e->t, "\n");
    nb_free(term);
}

static void fwd_node(ex *e, const nb_node *n)
{
    if (is_loss_op(n->op)) {
        loss_detail(e, n);
        return;
    }
    header(e, n);
    if (n->op == NB_OP_RESHAPE) return;
    const float *y = val(e, n);
    size_t c = cnt(e, n), width = ename_width(e, n);
    for (size_t o = 0; o < c; o++) {
        lhs(e, "", n, o, width);
        fwd_expr(e, n, o);
        text_add(&e->t, " = ");
        num(e, y[o]);
        text_add(&e->t, "\n");
    }
}

/* ---- backward -------------------------------------------------------- */

/* Local derivative d out[o] / d in_j[...] of an elementwise op, a loss (per
 * element of its inputs) or a reduction; `why` gets how it is computed from
 * the plan's values (empty when the number says it all). */
static double local(ex *e, const nb_node *n, int j, size_t o, size_t i, char *why, size_t wsz)
{
    const float *y = val(e, n);
    const float *x = val(e, n->in[j]);
    const double c = n->fa[0];
    char a[96], b[96], d[96];
    why[0] = '\0';
    switch (n->op) {
    case NB_OP_ADD: return 1;
    case NB_OP_SUB: return j == 0 ? 1 : -1;
    case NB_OP_MUL: {
        int64_t os[NB_MAX_DIMS], s[NB_MAX_DIMS];
        int ond = shape_of(e, n, os), nd = shape_of(e, n->in[1 - j], s);
        return val(e, n->in[1 - j])[bmap(os, ond, s, nd, o)];
    }
    case NB_OP_DIV: {
        int64_t os[NB_MAX_DIMS], as[NB_MAX_DIMS], bs[NB_MAX_DIMS];
        int ond = shape_of(e, n, os), and_ = shape_of(e, n->in[0], as), bnd = shape_of(e, n->in[1], bs);
        const double av = val(e, n->in[0])[bmap(os, ond, as, and_, o)];
        const double bv = val(e, n->in[1])[bmap(os, ond, bs, bnd, o)];
        if (j == 0) {
            snprintf(why, wsz, "1/%s", fmt(e, bv, b, sizeof b));
            return 1.0 / bv;
        }
        snprintf(why, wsz, "-%s/%s^2", fmt(e, av, a, sizeof a), fmt(e, bv, b, sizeof b));
        return -av / (bv * bv);
    }
    case NB_OP_RESHAPE: case NB_OP_ADD_SCALAR: return 1;
    case NB_OP_NEG: return -1;
    case NB_OP_SCALE: return c;
    case NB_OP_EXP:
        snprintf(why, wsz, "e^%s, the output itself", fmt(e, x[i], a, sizeof a));
        return y[o];
    case NB_OP_LOG:
        snprintf(why, wsz, "1/%s", fmt(e, x[i], a, sizeof a));
        return 1.0 / x[i];
    case NB_OP_SQRT:
        snprintf(why, wsz, "1/(2*%s)", fmt(e, y[o], a, sizeof a));
        return 0.5 / y[o];
    case NB_OP_POW:
        if (c == 0) return 0;
        if (c == 2) snprintf(why, wsz, "2*%s", fmt(e, x[i], a, sizeof a));
        else snprintf(why, wsz, "%g*%s^%g", c, fmt(e, x[i], a, sizeof a), c - 1);
        return c * pow(x[i], c - 1);
    case NB_OP_ABS:
        snprintf(why, wsz, "the sign of %s", fmt(e, x[i], a, sizeof a));
        return x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0;
    case NB_OP_RELU:
        snprintf(why, wsz, x[i] > 0 ? "%s > 0" : "%s <= 0", fmt(e, x[i], a, sizeof a));
        return x[i] > 0 ? 1 : 0;
    case NB_OP_LEAKY_RELU:
        snprintf(why, wsz, x[i] > 0 ? "%s > 0" : "%s <= 0: the slope", fmt(e, x[i], a, sizeof a));
        return x[i] > 0 ? 1 : c;
    case NB_OP_ELU:
        if (x[i] > 0) {
            snprintf(why, wsz, "%s > 0", fmt(e, x[i], a, sizeof a));
            return 1;
        }
        snprintf(why, wsz, "%g*e^%s", c, fmt(e, x[i], a, sizeof a));
        return c * exp(x[i]);
    case NB_OP_GELU: {
        const double v = x[i];
        if (n->ia[0]) {
            const double k = 0.7978845608028654, t = tanh(k * (v + 0.044715 * v * v * v));
            snprintf(why, wsz, "gelu'(%s), tanh form", fmt(e, v, a, sizeof a));
            return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v);
        }
        snprintf(why, wsz, "Phi(%s) + %s*phi(%s)", fmt(e, v, a, sizeof a), a, a);
        return 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2 * 3.141592653589793);
    }
    case NB_OP_SIGMOID:
        fmt(e, y[o], a, sizeof a);
        snprintf(why, wsz, "%s*(1 - %s)", a, a);
        return (double)y[o] * (1.0 - (double)y[o]);
    case NB_OP_TANH:
        fmt(e, y[o], a, sizeof a);
        snprintf(why, wsz, y[o] < 0 ? "1 - (%s)^2" : "1 - %s^2", a);
        return 1.0 - (double)y[o] * (double)y[o];
    case NB_OP_SOFTPLUS: {
        const double bx = n->fa[0] * (double)x[i];
        if (bx > n->fa[1]) {
            snprintf(why, wsz, "past the threshold");
            return 1;
        }
        snprintf(why, wsz, "sigmoid(%s)", fmt(e, bx, a, sizeof a));
        return 1.0 / (1.0 + exp(-bx));
    }
    case NB_OP_SUM: return 1;
    case NB_OP_MEAN: {
        const size_t per = cnt(e, n->in[0]) / (cnt(e, n) ? cnt(e, n) : 1);
        snprintf(why, wsz, "1/%zu", per);
        return 1.0 / (double)per;
    }
    case NB_OP_MSE: case NB_OP_L1: case NB_OP_HUBER: case NB_OP_BCE_LOGITS: {
        const float *p = val(e, n->in[0]), *t = val(e, n->in[1]);
        const size_t N = cnt(e, n->in[0]);
        const double dd = (double)p[i] - (double)t[i], sgn = j == 0 ? 1 : -1;
        fmt(e, p[i], a, sizeof a);
        fmt(e, t[i], b, sizeof b);
        if (n->op == NB_OP_MSE) {
            snprintf(why, wsz, "%s2*(%s - %s)/%zu", j ? "-" : "", a, b, N);
            return sgn * 2.0 * dd / (double)N;
        }
        if (n->op == NB_OP_L1) {
            snprintf(why, wsz, "%sthe sign of (%s - %s), /%zu", j ? "minus " : "", a, b, N);
            return sgn * (dd > 0 ? 1 : dd < 0 ? -1 : 0) / (double)N;
        }
        if (n->op == NB_OP_HUBER) {
            const double cl = dd < -c ? -c : dd > c ? c : dd;
            snprintf(why, wsz, "%s(%s - %s kept within +-%g)/%zu", j ? "-" : "", a, b, c, N);
            return sgn * cl / (double)N;
        }
        if (j == 0) {
            const double pr = 1.0 / (1.0 + exp(-(double)p[i]));
            snprintf(why, wsz, "(sigmoid(%s) - %s)/%zu = (%s - %s)/%zu", a, b, N, fmt(e, pr, d, sizeof d), b, N);
            return (pr - t[i]) / (double)N;
        }
        snprintf(why, wsz, "-%s/%zu", a, N);
        return -(double)p[i] / (double)N;
    }
    case NB_OP_SOFTMAX_CE: case NB_OP_NLL: {
        int64_t s[NB_MAX_DIMS];
        shape_of(e, n->in[0], s);
        const size_t N = (size_t)s[0], C = (size_t)s[1], r = i / C, k = i % C;
        const size_t lab = (size_t)val(e, n->in[1])[r];
        if (n->op == NB_OP_NLL) {
            if (k != lab) return 0;
            snprintf(why, wsz, "-1/%zu on the label", N);
            return -1.0 / (double)N;
        }
        const float *z = val(e, n->in[0]) + r * C;
        double m = z[0], sum = 0;
        for (size_t q = 1; q < C; q++) m = z[q] > m ? z[q] : m;
        for (size_t q = 0; q < C; q++) sum += exp((double)z[q] - m);
        const double pk = exp((double)z[k] - m) / sum, eps = c;
        const double qk = (k == lab ? 1.0 - eps : 0.0) + eps / (double)C;
        snprintf(why, wsz, "(p - %s)/%zu = (%s - %s)/%zu", eps > 0 ? "q" : k == lab ? "1" : "0", N,
                 fmt(e, pk, a, sizeof a), fmt(e, qk, b, sizeof b), N);
        return (pk - qk) / (double)N;
    }
    default: return 0;
    }
}

/* columns of a 2-D node (classes of the scores of a classification loss) */
static size_t cnt_cols(ex *e, const nb_node *n)
{
    int64_t s[NB_MAX_DIMS];
    int nd = shape_of(e, n, s);
    return nd >= 1 && s[nd - 1] > 0 ? (size_t)s[nd - 1] : 1;
}

/* In words: what the local derivative of n with respect to input j is. */
static void local_words(ex *e, const nb_node *n, int j)
{
    const char *y = nm(e, n), *x = nm(e, n->in[j]);
    text_add(&e->t, "    to %s: ", x);
    switch (n->op) {
    case NB_OP_ADD: text_add(&e->t, "d%s/d%s = 1", y, x); break;
    case NB_OP_SUB: text_add(&e->t, "d%s/d%s = %s", y, x, j ? "-1" : "1"); break;
    case NB_OP_MUL: text_add(&e->t, "d%s/d%s = %s, the other factor", y, x, nm(e, n->in[1 - j])); break;
    case NB_OP_DIV:
        if (j) text_add(&e->t, "d%s/d%s = -%s/%s^2", y, x, nm(e, n->in[0]), x);
        else text_add(&e->t, "d%s/d%s = 1/%s", y, x, nm(e, n->in[1]));
        break;
    case NB_OP_RESHAPE: text_add(&e->t, "the gradients go back unchanged (local derivative 1)"); break;
    case NB_OP_NEG: text_add(&e->t, "d%s/d%s = -1", y, x); break;
    case NB_OP_SCALE: text_add(&e->t, "d%s/d%s = %g", y, x, (double)n->fa[0]); break;
    case NB_OP_ADD_SCALAR: text_add(&e->t, "d%s/d%s = 1", y, x); break;
    case NB_OP_EXP: text_add(&e->t, "d%s/d%s = e^%s = %s", y, x, x, y); break;
    case NB_OP_LOG: text_add(&e->t, "d%s/d%s = 1/%s", y, x, x); break;
    case NB_OP_SQRT: text_add(&e->t, "d%s/d%s = 1/(2*%s)", y, x, y); break;
    case NB_OP_POW:
        if (n->fa[0] == 2) text_add(&e->t, "d%s/d%s = 2*%s", y, x, x);
        else text_add(&e->t, "d%s/d%s = %g*%s^%g", y, x, (double)n->fa[0], x, (double)n->fa[0] - 1);
        break;
    case NB_OP_ABS: text_add(&e->t, "d%s/d%s = the sign of %s", y, x, x); break;
    case NB_OP_RELU: text_add(&e->t, "d%s/d%s = 1 where %s > 0, else 0", y, x, x); break;
    case NB_OP_LEAKY_RELU: text_add(&e->t, "d%s/d%s = 1 where %s > 0, else %g", y, x, x, (double)n->fa[0]); break;
    case NB_OP_ELU: text_add(&e->t, "d%s/d%s = 1 where %s > 0, else %g*e^%s", y, x, x, (double)n->fa[0], x); break;
    case NB_OP_GELU: text_add(&e->t, "d%s/d%s = Phi(%s) + %s*phi(%s)", y, x, x, x, x); break;
    case NB_OP_SIGMOID: text_add(&e->t, "d%s/d%s = %s*(1 - %s)", y, x, y, y); break;
    case NB_OP_TANH: text_add(&e->t, "d%s/d%s = 1 - %s^2", y, x, y); break;
    case NB_OP_SOFTPLUS: text_add(&e->t, "d%s/d%s = sigmoid(%s)", y, x, x); break;
    case NB_OP_SUM: text_add(&e->t, "d%s/d%s = 1 for every value that was added up", y, x); break;
    case NB_OP_MEAN: text_add(&e->t, "d%s/d%s = 1/count for every value that was averaged", y, x); break;
    case NB_OP_MSE: text_add(&e->t, "d%s/d%s = %s2*(guess - target)/count", y, x, j ? "-" : ""); break;
    case NB_OP_L1: text_add(&e->t, "d%s/d%s = %sthe sign of (guess - target), /count", y, x, j ? "minus " : ""); break;
    case NB_OP_HUBER: text_add(&e->t, "d%s/d%s = %s(guess - target, kept within +-%g)/count", y, x, j ? "-" : "", (double)n->fa[0]); break;
    case NB_OP_BCE_LOGITS:
        if (j == 0) text_add(&e->t, "d%s/d%s = (sigmoid(%s) - target)/count", y, x, x);
        else text_add(&e->t, "d%s/d%s = -%s/count", y, x, nm(e, n->in[0]));
        break;
    case NB_OP_SOFTMAX_CE:
        if (n->fa[0] > 0)
            text_add(&e->t, "d%s/d%s = (p - q)/rows, q the smoothed target: %g on the label, %g elsewhere",
                        y, x, 1.0 - n->fa[0] + n->fa[0] / (double)cnt_cols(e, n->in[0]),
                        n->fa[0] / (double)cnt_cols(e, n->in[0]));
        else
            text_add(&e->t, "d%s/d%s = (p - 1 on the label, p - 0 elsewhere)/rows", y, x);
        break;
    case NB_OP_NLL: text_add(&e->t, "d%s/d%s = -1/rows on the label, 0 elsewhere", y, x); break;
    case NB_OP_LINEAR:
        if (j == 0) text_add(&e->t, "d%s[n,j]/d%s[n,i] = %s[j,i]: sum over the outputs j", y, x, nm(e, n->in[1]));
        else if (j == 1) text_add(&e->t, "d%s[n,j]/d%s[j,i] = %s[n,i]: sum over the examples n", y, x, nm(e, n->in[0]));
        else text_add(&e->t, "d%s[n,j]/d%s[j] = 1: sum over the examples n", y, x);
        break;
    case NB_OP_MATMUL:
        if (j == 0) text_add(&e->t, "d%s[m,j]/d%s[m,i] = %s[i,j]: sum over j", y, x, nm(e, n->in[1]));
        else text_add(&e->t, "d%s[m,j]/d%s[i,j] = %s[m,i]: sum over m", y, x, nm(e, n->in[0]));
        break;
    default: break;
    }
    text_add(&e->t, "\n");
}

/* One term "local*upstream" of a sum. */
static void term(ex *e, int first, double l, double u)
{
    if (!first) text_add(&e->t, " + ");
    fac(e, l);
    text_add(&e->t, "*");
    fac(e, u);
}

/* The gradient lines for input j of n. */
static void bwd_input(ex *e, const nb_node *n, int j)
{
    const nb_node *in = n->in[j];
    const float *gin = grd(e, in), *up = grd(e, n);
    const size_t cin = cnt(e, in), cout = cnt(e, n);
    const int part = e->parts[in->id] > 1;
    char why[640];
    char pre[8] = "dL/d";
    size_t width = ename_width(e, in);
    local_words(e, n, j);

    if (n->op == NB_OP_LINEAR || n->op == NB_OP_MATMUL) {
        int64_t s[NB_MAX_DIMS], ys[NB_MAX_DIMS];
        int nd = shape_of(e, n->in[0], s);
        shape_of(e, n, ys);
        const size_t K = (size_t)s[nd - 1], J = (size_t)ys[nd - 1], R = cout / (J ? J : 1);
        const float *x = val(e, n->in[0]), *w = val(e, n->in[1]);
        const int lin = n->op == NB_OP_LINEAR;
        for (size_t i = 0; i < cin; i++) {
            double sum = 0;
            lhs(e, pre, in, i, width);
            if (j == 0) {          /* dx[r,k] = sum_j W[j,k] dy[r,j] */
                const size_t r = i / K, k = i % K;
                for (size_t q = 0; q < J; q++) {
                    const double l = lin ? w[q * K + k] : w[k * J + q], u = up[r * J + q];
                    term(e, q == 0, l, u);
                    sum += l * u;
                }
            } else if (j == 1) {   /* dW[q,k] = sum_r x[r,k] dy[r,q] */
                const size_t q = lin ? i / K : i % J, k = lin ? i % K : i / J;
                for (size_t r = 0; r < R; r++) {
                    const double l = x[r * K + k], u = up[r * J + q];
                    term(e, r == 0, l, u);
                    sum += l * u;
                }
            } else {               /* db[q] = sum_r dy[r,q] */
                for (size_t r = 0; r < R; r++) {
                    term(e, r == 0, 1, up[r * J + i]);
                    sum += up[r * J + i];
                }
            }
            text_add(&e->t, " = ");
            num(e, part ? sum : gin[i]);
            if (part) text_add(&e->t, "   (the part from %s)", nm(e, n));
            text_add(&e->t, "\n");
        }
        return;
    }

    /* elementwise ops, reductions and losses: each output element o reaches
     * one element of the input */
    int64_t os[NB_MAX_DIMS], is[NB_MAX_DIMS];
    int ond = shape_of(e, n, os), ind = shape_of(e, in, is);
    const int loss = is_loss_op(n->op), red = n->op == NB_OP_SUM || n->op == NB_OP_MEAN;
    const int bin = n->op >= NB_OP_ADD && n->op <= NB_OP_DIV;
    for (size_t i = 0; i < cin; i++) {
        double sum = 0, l = 0, u = 0;
        int terms = 0;
        lhs(e, pre, in, i, width);
        if (loss || red) {
            const size_t o = loss ? 0 : rmap(e, n, i);
            l = local(e, n, j, o, i, why, sizeof why);
            u = up[o];
            sum = l * u;
            terms = 1;
            fac(e, l);
            text_add(&e->t, " * ");
            fac(e, u);
        } else {
            for (size_t o = 0; o < cout; o++) {
                if ((bin ? bmap(os, ond, is, ind, o) : o) != i) continue;
                l = local(e, n, j, o, i, why, sizeof why);
                u = up[o];
                sum += l * u;
                if (cout == cin) {
                    fac(e, l);
                    text_add(&e->t, " * ");
                    fac(e, u);
                } else {
                    term(e, terms == 0, l, u);
                }
                terms++;
            }
        }
        text_add(&e->t, " = ");
        num(e, part ? sum : gin[i]);
        if (terms == 1 && why[0]) {
            text_pad(&e->t, width + 3 * (size_t)e->dec + 27);
            text_add(&e->t, "   (");
            num(e, l);
            text_add(&e->t, " = %s)", why);
        }
        if (part) text_add(&e->t, "   (the part from %s)", nm(e, n));
        text_add(&e->t, "\n");
    }
}

static void bwd_node(ex *e, const nb_node *n)
{
    if (is_loss_op(n->op)) text_add(&e->t, "  %s = %s(%s, %s)\n", nm(e, n), nb_op_table[n->op]->name,
                                       nm(e, n->in[0]), nm(e, n->in[1]));
    else header(e, n);
    for (int j = 0; j < n->n_in; j++) {
        const nb_node *in = n->in[j];
        if (!grd(e, in)) {
            const char *what = in->op == NB_OP_INPUT ? "is data" : in->op == NB_OP_CONST ? "is a constant"
                                                                                          : "depends on no weight";
            text_add(&e->t, "    to %s: it %s, so it needs no gradient\n", nm(e, in), what);
            continue;
        }
        bwd_input(e, n, j);
        if (--e->left[in->id] == 0 && e->parts[in->id] > 1) {
            const float *g = grd(e, in);
            size_t width = ename_width(e, in);
            text_add(&e->t, "    %s was used in %d places: its gradient is the sum of the parts\n",
                        nm(e, in), e->parts[in->id]);
            for (size_t i = 0; i < cnt(e, in); i++) {
                lhs(e, "dL/d", in, i, width);
                num(e, g[i]);
                text_add(&e->t, "\n");
            }
        }
    }
}

/* ---- the step ------------------------------------------------------- */

static const char *trend(double before, double after)
{
    if (!isfinite(after)) return "not a number";
    return after < before ? "lower" : after > before ? "HIGHER" : "unchanged";
}

static nb_status run_step(ex *e, int full, int step, double *before, double *after)
{
    nb_status st;
    const int n = nb_graph_node_count(e->g);
    const int np = nb_graph_param_count(e->g);
    const size_t pn = nb_graph_param_numel(e->g);
    float *old = NULL, *guess = NULL;
    const nb_node *P = is_loss_op(e->loss->op) ? e->loss->in[0] : NULL;
    const int elementwise_loss = P && e->loss->op != NB_OP_SOFTMAX_CE && e->loss->op != NB_OP_NLL;
    size_t gc = P ? cnt(e, P) : 0;

    /* forward and backward first, silently: the plan keeps every value, and
     * nothing is written for a loss that is not the plan's target */
    nb_graph_zero_grad(e->g);
    if ((st = nb_plan_forward(e->p)) != NB_OK) return st;
    *before = val(e, e->loss)[0];
    if ((st = nb_plan_backward(e->p, NULL)) != NB_OK) return st;
    if (grd(e, e->loss)[0] != 1.0f)
        return nb_set_error(NB_ERR_ARG, "explain: '%s' is not the node the plan runs backward from",
                            nm(e, e->loss));
    if (full) {
        text_add(&e->t, "Step %d\n", step);
        text_add(&e->t, "------\n");
        show_leaves(e);
        text_add(&e->t, "1. Forward pass: the inputs become guesses, one operation at a time.\n\n");
        for (int i = 0; i < n; i++) {
            const nb_node *nd = nb_graph_node(e->g, i);
            if (is_leaf(nd) || nd == e->loss) continue;
            fwd_node(e, nd);
            text_add(&e->t, "\n");
            if (flush(e)) return NB_ERR_IO;
        }
        text_add(&e->t, "2. Loss: one number that says how far off the guesses are.\n\n");
        fwd_node(e, e->loss);
        text_add(&e->t, "\n  The loss is ");
        num(e, *before);
        text_add(&e->t, ". Learning means making it smaller.\n\n");
        if (flush(e)) return NB_ERR_IO;
    }

    if (full) {
        text_add(&e->t, "3. Backward pass: the chain rule, from the loss back to every weight.\n"
                           "   dL/dv is how much the loss L moves when v moves a little. It is\n"
                           "   (local derivative: how much the op's output moves with v) * (upstream\n"
                           "   gradient: dL/d of that output), added up over every output v reaches.\n"
                           "   It starts at dL/d%s = 1.\n\n", nm(e, e->loss));
        for (int i = 0; i < n; i++) e->left[i] = e->parts[i];
        for (int i = n - 1; i >= 0; i--) {
            const nb_node *nd = nb_graph_node(e->g, i);
            if (is_leaf(nd) || !grd(e, nd)) continue;
            bwd_node(e, nd);
            text_add(&e->t, "\n");
            if (flush(e)) return NB_ERR_IO;
        }
        if (!(old = nb_alloc(pn * sizeof *old)) || (gc && !(guess = nb_alloc(gc * sizeof *guess)))) {
            nb_free(old);
            return NB_ERR_NOMEM;
        }
        memcpy(old, nb_graph_param_data(e->g), pn * sizeof *old);
        if (gc) memcpy(guess, val(e, P), gc * sizeof *guess);
    }

    if ((st = nb_optim_step(e->opt)) != NB_OK) {
        nb_free(old);
        nb_free(guess);
        return st;
    }

    if (full) {
        const float lr = nb_optim_lr(e->opt);
        const float *now = nb_graph_param_data(e->g), *gr = nb_graph_param_grad(e->g);
        int plain = !strcmp(nb_optim_name(e->opt), "sgd") && nb_optim_state_count(e->opt) == 0;
        for (size_t k = 0; plain && k < pn; k++) {
            const float want = old[k] + (-lr) * gr[k];
            if (fabsf(now[k] - want) > 4 * FLT_EPSILON * fmaxf(fabsf(want), 1e-30f)) plain = 0; /* e.g. weight decay */
        }
        if (plain)
            text_add(&e->t, "4. Update: every weight takes a small step against its gradient\n"
                               "   (downhill): new = old - lr * gradient, with learning rate lr = %g.\n\n",
                        (double)lr);
        else
            text_add(&e->t, "4. Update: the optimizer (%s, learning rate %g) moves every weight;\n"
                               "   its rule is more than new = old - lr * gradient, so old value,\n"
                               "   gradient and new value are shown.\n\n",
                        nb_optim_name(e->opt), (double)lr);
        size_t width = 0;
        for (int q = 0; q < np; q++) {
            size_t w = ename_width(e, nb_graph_param(e->g, q));
            width = w > width ? w : width;
        }
        for (int q = 0; q < np; q++) {
            nb_node *pr = nb_graph_param(e->g, q);
            const size_t off = (size_t)(nb_node_data(pr) - nb_graph_param_data(e->g));
            for (size_t k = 0; k < nb_node_numel(pr); k++) {
                char b[160];
                ename(e, pr, k, b, sizeof b);
                text_add(&e->t, "    %s", b);
                text_pad(&e->t, 4 + width);
                if (plain) {
                    char lrs[32];
                    snprintf(lrs, sizeof lrs, "%g", (double)lr);
                    text_add(&e->t, " =");
                    col(e, old[off + k]);
                    text_add(&e->t, " - %s*", lrs);
                    fac(e, gr[off + k]);
                    text_pad(&e->t, 4 + width + 2 + ((size_t)e->dec + 4) + 4 + strlen(lrs) + ((size_t)e->dec + 5));
                    text_add(&e->t, " =");
                    col(e, now[off + k]);
                    text_add(&e->t, "\n");
                    continue;
                } else {
                    text_add(&e->t, ": old ");
                    num(e, old[off + k]);
                    text_add(&e->t, ", gradient ");
                    num(e, gr[off + k]);
                    text_add(&e->t, ", new ");
                }
                num(e, now[off + k]);
                text_add(&e->t, "\n");
            }
        }
        text_add(&e->t, "\n");
        nb_free(old);
        old = NULL;
        if (flush(e)) {
            nb_free(guess);
            return NB_ERR_IO;
        }
    }

    if ((st = nb_plan_forward(e->p)) != NB_OK) {
        nb_free(guess);
        return st;
    }
    *after = val(e, e->loss)[0];
    if (!full) {
        text_add(&e->t, "step %4d   loss ", step);
        num(e, *before);
        text_add(&e->t, " -> ");
        num(e, *after);
        text_add(&e->t, "   %s", trend(*before, *after));
        if (np == 1 && pn == 1) {   /* one weight: show where it went */
            text_add(&e->t, "   %s = ", nm(e, nb_graph_param(e->g, 0)));
            num(e, nb_graph_param_data(e->g)[0]);
        }
        text_add(&e->t, "\n");
        nb_free(guess);
        return flush(e) ? NB_ERR_IO : NB_OK;
    }

    text_add(&e->t, "5. After the update: the same inputs through the network again.\n\n");
    if (elementwise_loss) {
        const float *y = val(e, P), *t = val(e, e->loss->in[1]);
        int further = 0;
        size_t width = ename_width(e, P);
        for (size_t i = 0; i < gc; i++) {
            char b[160];
            ename(e, P, i, b, sizeof b);
            text_add(&e->t, "    %s", b);
            text_pad(&e->t, 4 + width);
            text_add(&e->t, ": ");
            num(e, guess[i]);
            text_add(&e->t, " -> ");
            num(e, y[i]);
            text_add(&e->t, "   target ");
            num(e, t[i]);
            const double d0 = fabs((double)guess[i] - t[i]), d1 = fabs((double)y[i] - t[i]);
            text_add(&e->t, "%s\n", d1 < d0 ? "   closer" : d1 > d0 ? "   further" : "");
            further += d1 > d0;
        }
        if (further && isfinite(*after) && *after < *before)
            text_add(&e->t, "\n  Not every guess moved toward its target: a step lowers the loss, the\n"
                               "  total over all examples, and may trade a little on one for more on others.\n");
        text_add(&e->t, "\n");
    }
    nb_free(guess);
    text_add(&e->t, "  loss before the step ");
    num(e, *before);
    text_add(&e->t, ", after ");
    num(e, *after);
    text_add(&e->t, "\n");
    if (!isfinite(*after)) {
        text_add(&e->t, "  The loss is no longer a number: the step was far too large (lr %g).\n"
                           "  Try a smaller learning rate.\n",
                    (double)nb_optim_lr(e->opt));
    } else if (*after < *before) {
        text_add(&e->t, "  The loss is lower, by ");
        diff(e, *before - *after);
        text_add(&e->t, ": the step went downhill.\n  The network learned a little.\n");
    } else if (*after > *before) {
        text_add(&e->t, "  The loss went UP, by ");
        diff(e, *after - *before);
        text_add(&e->t, ".\n  The gradient only tells which way is downhill where the weights are now;\n"
                           "  a step of learning rate %g was too long and overshot the valley.\n"
                           "  Try a smaller learning rate.\n",
                    (double)nb_optim_lr(e->opt));
    } else {
        text_add(&e->t, "  The loss did not change: the gradients are zero (a flat spot) or the\n"
                           "  step is too small to change the float32 values.\n");
    }
    text_add(&e->t, "\n");
    return flush(e) ? NB_ERR_IO : NB_OK;
}

static void teardown(ex *e)
{
    nb_free(e->t.buf);
    nb_free(e->names);
    nb_free(e->parts);
    nb_free(e->left);
}

/* Checks the arguments and, for the full walk, that every node can be shown
 * and every value will still be there; names the nodes. */
static nb_status setup(ex *e, nb_graph *g, nb_plan *p, nb_node *loss, const nb_explain_opts *opts, int full)
{
    memset(e, 0, sizeof *e);
    if (!g || !p || !loss) return nb_set_error(NB_ERR_ARG, "explain: NULL graph, plan or loss");
    if (loss->graph != g) return nb_set_error(NB_ERR_ARG, "explain: the loss belongs to another graph");
    if (opts->decimals < 0 || opts->decimals > 8)
        return nb_set_error(NB_ERR_ARG, "explain: %d decimals, expected 0 (the default, 4) to 8", opts->decimals);
    e->g = g;
    e->p = p;
    e->loss = loss;
    e->dec = opts->decimals ? opts->decimals : 4;
    e->maxv = opts->max_values ? opts->max_values : DEFAULT_MAX_VALUES;
    if (!nb_plan_data(p, loss, NULL))
        return nb_set_error(NB_ERR_ARG, "explain: the loss is not a node of this plan's graph");
    if (cnt(e, loss) != 1 || !grd(e, loss))
        return nb_set_error(NB_ERR_ARG, "explain: the loss must be a single number that the plan "
                                        "runs backward from");
    const int n = nb_graph_node_count(g);
    e->names = nb_calloc((size_t)n, sizeof *e->names);
    e->parts = nb_calloc((size_t)n, sizeof *e->parts);
    e->left = nb_calloc((size_t)n, sizeof *e->left);
    if (!e->names || !e->parts || !e->left) return NB_ERR_NOMEM;
    make_names(e);
    if (!full) return NB_OK;
    nb_status st = NB_OK;
    for (int i = 0; i < n && st == NB_OK; i++) st = check_node(e, nb_graph_node(g, i));
    if (st == NB_OK) st = check_keep(e);
    /* who sends a gradient back to whom */
    for (int i = 0; i < n && st == NB_OK; i++) {
        const nb_node *nd = nb_graph_node(g, i);
        if (is_leaf(nd) || !grd(e, nd)) continue;
        for (int j = 0; j < nd->n_in; j++)
            if (grd(e, nd->in[j])) e->parts[nd->in[j]->id]++;
    }
    for (int i = 0; i < n && st == NB_OK; i++) {
        const nb_node *nd = nb_graph_node(g, i);
        if (nd->op == NB_OP_RESHAPE && grd(e, nd) && e->parts[nd->in[0]->id] > 1)
            st = nb_set_error(NB_ERR_ARG, "explain: '%s' is reshaped and also used elsewhere; "
                                          "explain cannot show the two gradients apart",
                              nm(e, nd->in[0]));
    }
    return st;
}

nb_status nb_explain_check(nb_graph *g, nb_plan *p, nb_node *loss, const nb_explain_opts *opts)
{
    static const nb_explain_opts defaults = {0};
    ex e;
    nb_status st = setup(&e, g, p, loss, opts ? opts : &defaults, !(opts && opts->brief));
    teardown(&e);
    return st;
}

nb_status nb_explain_step(nb_graph *g, nb_plan *p, nb_node *loss, nb_optim *opt, FILE *out,
                          const nb_explain_opts *opts, nb_explain_result *result)
{
    static const nb_explain_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (!opt || !out) return nb_set_error(NB_ERR_ARG, "explain: NULL optimizer or output");
    const int full = !opts->brief;
    ex e;
    nb_status st = setup(&e, g, p, loss, opts, full);
    if (st == NB_OK) {
        double before = 0, after = 0;
        e.opt = opt;
        e.f = out;
        st = run_step(&e, full, opts->step > 0 ? opts->step : 1, &before, &after);
        if (st == NB_ERR_NOMEM || e.t.failed == 1)
            st = nb_set_error(NB_ERR_NOMEM, "explain: out of memory");
        else if (st == NB_ERR_IO || e.t.failed == 2 || (st == NB_OK && (fflush(out) != 0 || ferror(out))))
            st = nb_set_error(NB_ERR_IO, "explain: writing the explanation failed");
        if (st == NB_OK && result) {
            result->loss_before = before;
            result->loss_after = after;
        }
    } else if (st == NB_ERR_NOMEM) {
        st = nb_set_error(NB_ERR_NOMEM, "explain: out of memory");
    }
    teardown(&e);
    return st;
}
